//! Exchange-style client access policy for a mail client access tier, as pure
//! decisions.
//!
//! Administrators of this tier think in Exchange's vocabulary — `Set-CASMailbox`,
//! `Set-PopSettings`, `Set-ImapSettings`, `Set-OutlookAnywhere`,
//! `New-ClientAccessRule` — so this crate models exactly those settings, keeps their
//! names in its TOML file, and turns them into decisions a POP3, IMAP or Outlook
//! Anywhere server asks for at three moments: a connection arrives
//! ([`Policy::admit_connection`]), a user has proven who they are
//! ([`Policy::authorize_login`]), a session starts working
//! ([`Policy::effective_settings`]).
//!
//! What this crate is:
//!
//! - [`PolicyConfig`]: the policy file (TOML, Exchange's key names), validated once at
//!   load with errors that name the key and the allowed range, written back with
//!   [`PolicyConfig::to_toml_string`], and edited by the admin operations
//!   ([`PolicyConfig::set_cas_mailbox`] for one user or a whole organizational unit,
//!   [`PolicyConfig::set_pop_settings`], ...).
//! - [`Policy`]: the compiled, immutable policy that answers with a [`Decision`]; each
//!   [`Denial`] knows its POP3 and IMAP response codes and HTTP status.
//! - [`ConnectionTracker`]: live connection counts (total, per address, per user)
//!   against `MaxConnections`, `MaxConnectionFromSingleIP`, `MaxConnectionsPerUser`.
//! - [`LoginThrottle`]: failed-login backoff per address first, then per user, which
//!   cannot be used to lock a user out from everywhere (see [`throttle`]).
//! - Value types with their grammars: [`TimeSpan`] (`00:30:00`), [`VersionRanges`]
//!   (`-13.32767.65535;15.0.0-`), [`IpRange`] (`10.0.0.0/8`, `a-b`), [`OuPath`]
//!   (`corp/sales/emea`), [`RpcPortRange`] (`mbx01:6001-6004`).
//!
//! What it is not: it does no I/O (the server reads the file and passes its text),
//! reads no clock (`now` is a [`Duration`](std::time::Duration) since any origin the
//! caller picks, e.g. its start), keeps no global state and starts no threads. It does
//! not authenticate anyone ([`cas-auth`](https://docs.rs/cas-auth) does) and does not
//! convert message bodies for `MessageRetrievalMimeFormat`; it says which format
//! applies.
//!
//! # Example
//!
//! ```
//! use std::net::IpAddr;
//! use std::time::Duration;
//! use cas_policy::{
//!     AuthMechanism, CasMailboxChange, ConnectionLimits, ConnectionTracker, Decision,
//!     MimeFormat, Policy, PolicyConfig, Protocol, Target,
//! };
//!
//! let text = r#"
//! [PopSettings]
//! LoginType = "SecureLogin"
//! MaxConnectionFromSingleIP = 2
//!
//! [CASMailbox.alice]
//! OrganizationalUnit = "corp/sales"
//!
//! [CASMailbox.bob]
//! OrganizationalUnit = "corp/engineering"
//! ImapUseProtocolDefaults = false
//! ImapMessagesRetrievalMimeFormat = "TextOnly"
//!
//! [[ClientAccessRule]]
//! Name = "no-pop-from-outside"
//! Action = "DenyAccess"
//! AnyOfProtocols = ["POP3"]
//! ExceptAnyOfClientIPAddressesOrRanges = ["10.0.0.0/8", "127.0.0.1"]
//! "#;
//! let mut config = PolicyConfig::from_toml_str(text)?;
//!
//! // Get-Mailbox -OrganizationalUnit corp/sales | Set-CASMailbox -PopEnabled $false
//! let changed = config.set_cas_mailbox(
//!     &Target::OrganizationalUnit("corp/sales".parse()?),
//!     &CasMailboxChange { pop_enabled: Some(false), ..Default::default() },
//! )?;
//! assert_eq!(changed, ["alice"]);
//!
//! let policy = Policy::new(config)?;
//! let client: IpAddr = "127.0.0.1".parse()?;
//! let now = Duration::ZERO;
//!
//! // A connection arrives: count it, then ask the rules.
//! let mut pop = ConnectionTracker::new(ConnectionLimits::pop(policy.pop_settings()));
//! let ticket = pop.try_admit(client)?;
//! assert!(policy.admit_connection(Protocol::Pop3, client, false, now).is_allowed());
//!
//! // USER/PASS before STLS is refused by SecureLogin...
//! let d = policy.authorize_login("bob", Protocol::Pop3, AuthMechanism::UserPass, false, client, now);
//! assert_eq!(d.denial().map(|d| d.pop3_code()), Some("AUTH"));
//! // ...and after STLS alice is refused because POP3 is off for her.
//! let d = policy.authorize_login("alice", Protocol::Pop3, AuthMechanism::UserPass, true, client, now);
//! let Decision::Deny(denial) = d else { unreachable!() };
//! assert_eq!(format!("-ERR [{}] {}", denial.pop3_code(), denial.message),
//!            "-ERR [AUTH] POP3 access is disabled for this account");
//! pop.release(ticket);
//!
//! // bob's IMAP sessions send text only.
//! let s = policy.effective_settings("bob", Protocol::Imap4);
//! assert!(s.enabled);
//! assert_eq!(s.message_retrieval_mime_format, MimeFormat::TextOnly);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Exchange vocabulary
//!
//! | Exchange | here |
//! |---|---|
//! | `Set-CASMailbox -PopEnabled`, `-ImapEnabled`, `-MAPIEnabled`, `-OWAEnabled`, `-ActiveSyncEnabled`, `-EwsEnabled` | [`CasMailbox`] `pop_enabled`, ... (`[CASMailbox.<user>] PopEnabled`, ...) |
//! | `Set-CASMailbox -PopUseProtocolDefaults`, `-PopMessagesRetrievalMimeFormat`, `-PopEnableExactRFC822Size`, `-PopSuppressReadReceipt`, `-PopForceICalForCalendarRetrievalOption` (and `Imap*`) | [`CasMailbox`] fields of the same names |
//! | `Set-CASMailbox -MAPIBlockOutlookRpcHttp`, `-MAPIBlockOutlookNonCachedMode`, `-MAPIBlockOutlookVersions`, `-MapiHttpEnabled` | [`CasMailbox`] `mapi_block_*`, `mapi_http_enabled` ([`VersionRanges`]) |
//! | `Get-Mailbox -OrganizationalUnit X \| Set-CASMailbox` | [`PolicyConfig::set_cas_mailbox`] with [`Target::OrganizationalUnit`] |
//! | `Set-OrganizationConfig -MapiHttpEnabled` | [`OrganizationSettings`] (`[Organization]`) |
//! | `Set-PopSettings` / `Set-ImapSettings` `-LoginType`, `-MaxConnections`, `-MaxConnectionFromSingleIP`, `-MaxConnectionsPerUser`, `-PreAuthenticatedConnectionTimeout`, `-AuthenticatedConnectionTimeout`, `-MaxCommandSize`, `-EnableExactRFC822Size`, `-MessageRetrievalMimeFormat`, `-MessageRetrievalSortOrder`, `-SuppressReadReceipt`, `-CalendarItemRetrievalOption`, `-Banner`, `-ProtocolLogEnabled`, `-LogFileLocation`, `-LogFileRollOverSettings`, `-LogPerFileSizeQuota`, `-EnableGSSAPIAndNTLMAuth`, `-ExtendedProtectionPolicy`, `-X509CertificateName`, `-UnencryptedOrTLSBindings`, `-SSLBindings` | [`PopSettings`] / [`ImapSettings`] (`[PopSettings]`, `[ImapSettings]`), changed with [`PopSettingsChange`] / [`ImapSettingsChange`] |
//! | `Enable-` / `Disable-` / `Set-OutlookAnywhere` `-ExternalHostname`, `-InternalHostname`, `-ExternalClientAuthenticationMethod`, `-InternalClientAuthenticationMethod`, `-IISAuthenticationMethods`, `-DefaultAuthenticationMethod`, `-SSLOffloading`, `-ExternalClientsRequireSsl`, `-InternalClientsRequireSsl` | [`OutlookAnywhereSettings`] (`[OutlookAnywhere]`), [`OutlookAnywhereChange`] |
//! | RPC proxy `ValidPorts` registry value | [`OutlookAnywhereSettings::valid_ports`] ([`RpcPortRange`]) |
//! | `New-ClientAccessRule -Priority`, `-Enabled`, `-Action`, `-AnyOfProtocols`, `-AnyOfClientIPAddressesOrRanges`, `-UsernameMatchesAnyOfPatterns`, `-AnyOfAuthenticationTypes` and their `Except*` forms | [`ClientAccessRule`] (`[[ClientAccessRule]]`) |
//! | `New-ClientAccessRule -UserRecipientFilter` (OU membership) | [`ClientAccessRule::any_of_organizational_units`] |
//!
//! Defaults and ranges are those of Exchange 2013–2019 as documented on
//! learn.microsoft.com for each cmdlet; `LoginType` semantics are documented on
//! [`LoginType`].
//!
//! # Deviations from Exchange
//!
//! - Per-address limits and throttles count an IPv6 client by its /64 ([`client_key`]).
//! - `[LoginThrottle]` has no Exchange counterpart (Exchange relies on AD lockout).
//! - `UserRecipientFilter` is reduced to OU membership.
//!
//! # Deviations from the house style
//!
//! There is no session here, so no `handle_*`/`poll_*`: every decision is one call
//! that returns its answer.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod decision;
mod error;
mod mailbox;
mod net;
mod ou;
mod policy;
mod protocol;
mod rules;
mod settings;
pub mod throttle;
mod timespan;
mod tracker;
mod version;

#[doc(hidden)]
pub mod fuzzing;

pub use config::{MAX_CONFIG_LEN, PolicyConfig};
pub use decision::{Decision, Denial, DenialReason};
pub use error::ConfigError;
pub use mailbox::{CasMailbox, CasMailboxChange, MAX_USER_NAME_LEN, Target};
pub use net::{IpRange, MAX_SERVER_NAME_LEN, RpcPortRange, canonical_ip, client_key};
pub use ou::{MAX_OU_DEPTH, MAX_OU_SEGMENT_LEN, OuPath};
pub use policy::{EffectiveSettings, OutlookClientInfo, Policy};
pub use protocol::{
    AuthMechanism, AuthenticationType, CalendarItemRetrievalOption, ExtendedProtectionPolicy,
    HttpAuthMethod, LoginType, MimeFormat, Protocol, SortOrder,
};
pub use rules::{
    ClientAccessRule, MAX_CONDITION_ENTRIES, MAX_RULE_TEXT_LEN, MAX_RULES, RuleAction, RuleInput,
    RuleMatch, RuleProtocol, UserPattern,
};
pub use settings::{
    AUTH_TIMEOUT_RANGE, IMAP_MAX_COMMAND_SIZE_RANGE, ImapSettings, ImapSettingsChange,
    LogFileRollOver, MAX_BANNER_LEN, MAX_CONNECTION_LIMIT, MAX_LIST_ENTRIES,
    MAX_LOG_FILE_SIZE_QUOTA, MAX_LOG_LOCATION_LEN, OrganizationSettings, OutlookAnywhereChange,
    OutlookAnywhereSettings, POP_MAX_COMMAND_SIZE_RANGE, PRE_AUTH_TIMEOUT_RANGE, PopSettings,
    PopSettingsChange,
};
pub use throttle::{LoginThrottle, ThrottleConfig};
pub use timespan::TimeSpan;
pub use tracker::{ConnectionLimits, ConnectionTicket, ConnectionTracker};
pub use version::{
    MAX_VERSION_RANGES, MAX_VERSION_RANGES_LEN, OutlookClientVersion, VersionRange, VersionRanges,
};
