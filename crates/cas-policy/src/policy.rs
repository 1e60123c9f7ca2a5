//! The compiled policy and its decisions.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use crate::rules::{RuleInput, RuleMatch, evaluation_order};
use crate::{
    AuthMechanism, CalendarItemRetrievalOption, CasMailbox, ConfigError, ConnectionLimits,
    Decision, Denial, DenialReason, HttpAuthMethod, ImapSettings, MimeFormat,
    OutlookAnywhereSettings, OutlookClientVersion, PolicyConfig, PopSettings, Protocol, RuleAction,
    SortOrder, VersionRanges,
};

/// A validated, immutable policy. Build one per configuration (at start and on each
/// reload) and share it (`Arc<Policy>`); every decision is a pure function of it and
/// its arguments.
#[derive(Debug, Clone)]
pub struct Policy {
    config: PolicyConfig,
    /// Lower-cased user name → key in `config.mailboxes`.
    index: HashMap<String, String>,
    /// Indexes into `config.rules` of the enabled rules, in evaluation order.
    rule_order: Vec<usize>,
    /// Settings of users without a mailbox entry.
    default_mailbox: CasMailbox,
}

/// What a protocol session of one user runs with, after the mailbox scope, the
/// protocol scope and `*UseProtocolDefaults` are combined.
///
/// When `enabled` is false the protocol is off for the user and the other fields
/// are the server-wide values, to be ignored: `*Enabled = false` short-circuits every
/// other setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveSettings {
    /// The protocol these settings are for.
    pub protocol: Protocol,
    /// Whether the user may use the protocol at all.
    pub enabled: bool,
    /// Body format of retrieved messages (POP3/IMAP; `BestBodyFormat` elsewhere).
    pub message_retrieval_mime_format: MimeFormat,
    /// Exact RFC 822 sizes (POP3/IMAP).
    pub enable_exact_rfc822_size: bool,
    /// No read receipts on retrieval (POP3/IMAP).
    pub suppress_read_receipt: bool,
    /// How calendar items are presented (POP3/IMAP); `iCalendar` when the mailbox's
    /// `*ForceICalForCalendarRetrievalOption` applies.
    pub calendar_item_retrieval_option: CalendarItemRetrievalOption,
    /// Message list order (POP3 only).
    pub message_retrieval_sort_order: Option<SortOrder>,
    /// `MaxCommandSize` (POP3/IMAP).
    pub max_command_size: Option<u32>,
    /// Outlook versions refused (Outlook Anywhere and MAPI over HTTP).
    pub blocked_outlook_versions: VersionRanges,
    /// Outlook online mode refused (Outlook Anywhere and MAPI over HTTP).
    pub block_non_cached_mode: bool,
}

/// What an Outlook client says about itself, for the MAPI checks. Unknown facts
/// (`None`) are not held against the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutlookClientInfo {
    /// The client's version (from `EcDoConnectEx` or the MAPI/HTTP `Connect` request).
    pub version: Option<OutlookClientVersion>,
    /// Whether the client runs in Cached Exchange Mode.
    pub cached_mode: Option<bool>,
}

fn deny(reason: DenialReason) -> Decision {
    Decision::Deny(Denial::new(reason))
}

impl Policy {
    /// Validates `config` and compiles it.
    pub fn new(config: PolicyConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let index = config
            .mailboxes
            .keys()
            .map(|k| (k.to_ascii_lowercase(), k.clone()))
            .collect();
        let rule_order = evaluation_order(&config.rules)
            .into_iter()
            .filter(|&i| config.rules[i].enabled)
            .collect();
        Ok(Policy {
            config,
            index,
            rule_order,
            default_mailbox: CasMailbox::default(),
        })
    }

    /// Parses, validates and compiles a policy file.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        Policy::new(PolicyConfig::from_toml_str(text)?)
    }

    /// The configuration this policy was built from.
    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// `[PopSettings]`.
    pub fn pop_settings(&self) -> &PopSettings {
        &self.config.pop
    }

    /// `[ImapSettings]`.
    pub fn imap_settings(&self) -> &ImapSettings {
        &self.config.imap
    }

    /// `[OutlookAnywhere]`.
    pub fn outlook_anywhere(&self) -> &OutlookAnywhereSettings {
        &self.config.outlook_anywhere
    }

    /// The connection limits of `protocol`: `[PopSettings]` / `[ImapSettings]`, and
    /// [`ConnectionLimits::UNLIMITED`] for the protocols Exchange does not limit this way.
    pub fn connection_limits(&self, protocol: Protocol) -> ConnectionLimits {
        match protocol {
            Protocol::Pop3 => ConnectionLimits::pop(&self.config.pop),
            Protocol::Imap4 => ConnectionLimits::imap(&self.config.imap),
            _ => ConnectionLimits::UNLIMITED,
        }
    }

    /// The `LoginType` of `protocol` (POP3/IMAP); `None` for the HTTP protocols, where
    /// [`mechanism_allowed`](Self::mechanism_allowed) consults `IISAuthenticationMethods`.
    pub fn login_type(&self, protocol: Protocol) -> Option<crate::LoginType> {
        match protocol {
            Protocol::Pop3 => Some(self.config.pop.login_type),
            Protocol::Imap4 => Some(self.config.imap.login_type),
            _ => None,
        }
    }

    /// The mailbox settings of `user` (case-insensitive); Exchange's defaults for users
    /// without an entry.
    pub fn mailbox(&self, user: &str) -> &CasMailbox {
        self.index
            .get(&user.to_ascii_lowercase())
            .and_then(|k| self.config.mailboxes.get(k))
            .unwrap_or(&self.default_mailbox)
    }

    /// Whether `user` has a mailbox entry.
    pub fn has_mailbox(&self, user: &str) -> bool {
        self.index.contains_key(&user.to_ascii_lowercase())
    }

    /// Whether a mechanism may be used on `protocol` with this TLS state, independent
    /// of the user: `LoginType` and `EnableGSSAPIAndNTLMAuth` for POP3/IMAP,
    /// `IISAuthenticationMethods` for Outlook Anywhere and MAPI over HTTP. Servers use
    /// it to build `CAPA`/`CAPABILITY` (`LOGINDISABLED`, `AUTH=` lists) and to refuse
    /// a mechanism before reading credentials.
    pub fn mechanism_allowed(
        &self,
        protocol: Protocol,
        mechanism: AuthMechanism,
        tls: bool,
    ) -> Decision {
        let (login_type, integrated) = match protocol {
            Protocol::Pop3 => (
                self.config.pop.login_type,
                self.config.pop.enable_gssapi_and_ntlm_auth,
            ),
            Protocol::Imap4 => (
                self.config.imap.login_type,
                self.config.imap.enable_gssapi_and_ntlm_auth,
            ),
            Protocol::OutlookAnywhere | Protocol::MapiHttp => {
                let oa = &self.config.outlook_anywhere;
                let offered = HttpAuthMethod::of_mechanism(mechanism)
                    .is_some_and(|m| oa.iis_authentication_methods.contains(&m));
                if !offered {
                    return deny(DenialReason::MechanismDisabled);
                }
                return Decision::Allow;
            }
            Protocol::Owa | Protocol::ActiveSync | Protocol::Ews => return Decision::Allow,
        };
        if !login_type.permits(mechanism, tls) {
            return deny(DenialReason::PrivacyRequired);
        }
        if mechanism.is_integrated_windows() && !integrated {
            return deny(DenialReason::MechanismDisabled);
        }
        Decision::Allow
    }

    /// Whether a new connection may proceed, before anyone logs in.
    ///
    /// Checks, in order: the service is on (`[OutlookAnywhere] Enabled`), HTTPS is
    /// used when required (`ExternalClientsRequireSsl` without `SSLOffloading`), and
    /// the client access rules. A rule that tests the user, OU or authentication type
    /// cannot be decided yet: evaluation stops there and the connection is allowed,
    /// to be decided by [`authorize_login`](Self::authorize_login) — otherwise an
    /// earlier `AllowAccess` rule could be skipped.
    ///
    /// Connection counts are the [`ConnectionTracker`](crate::ConnectionTracker)'s job.
    /// `now` is unused today (rules are not time-dependent) and keeps the signature
    /// stable.
    pub fn admit_connection(
        &self,
        protocol: Protocol,
        client_addr: IpAddr,
        tls: bool,
        now: Duration,
    ) -> Decision {
        let _ = now;
        if matches!(protocol, Protocol::OutlookAnywhere | Protocol::MapiHttp) {
            let oa = &self.config.outlook_anywhere;
            if protocol == Protocol::OutlookAnywhere && !oa.enabled {
                return deny(DenialReason::ServiceDisabled(protocol));
            }
            if !tls && !oa.ssl_offloading && oa.external_clients_require_ssl {
                return deny(DenialReason::PrivacyRequired);
            }
        }
        self.evaluate_rules(&RuleInput {
            protocol,
            client_addr,
            user: None,
            ou: None,
            mechanism: None,
        })
    }

    /// Whether `user`, authenticated with `mechanism`, may use `protocol`.
    ///
    /// Call it after the credentials have been verified, so that a refusal does not
    /// tell an attacker which user names exist. Checks, in order: the mechanism
    /// ([`mechanism_allowed`](Self::mechanism_allowed)), the connection-level checks
    /// of [`admit_connection`](Self::admit_connection), the client access rules with
    /// everything known, and the mailbox's protocol switches
    /// ([`effective_settings`](Self::effective_settings)`.enabled`).
    pub fn authorize_login(
        &self,
        user: &str,
        protocol: Protocol,
        mechanism: AuthMechanism,
        tls: bool,
        client_addr: IpAddr,
        now: Duration,
    ) -> Decision {
        if let d @ Decision::Deny(_) = self.mechanism_allowed(protocol, mechanism, tls) {
            return d;
        }
        if let d @ Decision::Deny(_) = self.admit_connection(protocol, client_addr, tls, now) {
            return d;
        }
        let mailbox = self.mailbox(user);
        let input = RuleInput {
            protocol,
            client_addr,
            user: Some(user),
            ou: Some(mailbox.organizational_unit.as_ref()),
            mechanism: Some(mechanism),
        };
        if let d @ Decision::Deny(_) = self.evaluate_rules(&input) {
            return d;
        }
        if !self.protocol_enabled(mailbox, protocol) {
            return deny(DenialReason::ProtocolDisabled(protocol));
        }
        Decision::Allow
    }

    /// The MAPI checks of an Outlook client for `user` on Outlook Anywhere or MAPI over
    /// HTTP: `MAPIBlockOutlookVersions` and `MAPIBlockOutlookNonCachedMode`. Call it
    /// once the client has said who it is (after [`authorize_login`](Self::authorize_login)).
    pub fn authorize_outlook_client(&self, user: &str, client: &OutlookClientInfo) -> Decision {
        let mailbox = self.mailbox(user);
        if let Some(v) = &client.version
            && mailbox.mapi_block_outlook_versions.blocks(v)
        {
            return deny(DenialReason::OutlookVersionBlocked(*v));
        }
        if mailbox.mapi_block_outlook_non_cached_mode && client.cached_mode == Some(false) {
            return deny(DenialReason::NonCachedModeBlocked);
        }
        Decision::Allow
    }

    /// Whether the Outlook Anywhere proxy may forward to `server:port` (`ValidPorts`).
    pub fn authorize_rpc_target(&self, server: &str, port: u16) -> Decision {
        if self.config.outlook_anywhere.allows_rpc_target(server, port) {
            Decision::Allow
        } else {
            deny(DenialReason::RpcTargetRefused)
        }
    }

    fn protocol_enabled(&self, m: &CasMailbox, protocol: Protocol) -> bool {
        match protocol {
            Protocol::Pop3 => m.pop_enabled,
            Protocol::Imap4 => m.imap_enabled,
            Protocol::OutlookAnywhere => {
                m.mapi_enabled
                    && !m.mapi_block_outlook_rpc_http
                    && self.config.outlook_anywhere.enabled
            }
            Protocol::MapiHttp => {
                m.mapi_enabled
                    && m.mapi_http_enabled
                        .unwrap_or(self.config.organization.mapi_http_enabled)
            }
            Protocol::Owa => m.owa_enabled,
            Protocol::ActiveSync => m.active_sync_enabled,
            Protocol::Ews => m.ews_enabled,
        }
    }

    /// The settings `user`'s sessions of `protocol` run with (see [`EffectiveSettings`]).
    ///
    /// POP3/IMAP: when the mailbox's `*UseProtocolDefaults` is true (the default) the
    /// format, exact-size and read-receipt values come from `[PopSettings]` /
    /// `[ImapSettings]`; when false, from the mailbox's `Pop*`/`Imap*` values.
    /// `*ForceICalForCalendarRetrievalOption` likewise applies only then.
    pub fn effective_settings(&self, user: &str, protocol: Protocol) -> EffectiveSettings {
        let m = self.mailbox(user);
        let enabled = self.protocol_enabled(m, protocol);
        let mut s = EffectiveSettings {
            protocol,
            enabled,
            message_retrieval_mime_format: MimeFormat::BestBodyFormat,
            enable_exact_rfc822_size: false,
            suppress_read_receipt: false,
            calendar_item_retrieval_option: CalendarItemRetrievalOption::ICalendar,
            message_retrieval_sort_order: None,
            max_command_size: None,
            blocked_outlook_versions: VersionRanges::default(),
            block_non_cached_mode: false,
        };
        match protocol {
            Protocol::Pop3 => {
                let p = &self.config.pop;
                s.message_retrieval_sort_order = Some(p.message_retrieval_sort_order);
                s.max_command_size = Some(p.max_command_size);
                s.calendar_item_retrieval_option = p.calendar_item_retrieval_option;
                let own = enabled && !m.pop_use_protocol_defaults;
                s.message_retrieval_mime_format = if own {
                    m.pop_messages_retrieval_mime_format
                } else {
                    p.message_retrieval_mime_format
                };
                s.enable_exact_rfc822_size = if own {
                    m.pop_enable_exact_rfc822_size
                } else {
                    p.enable_exact_rfc822_size
                };
                s.suppress_read_receipt = if own {
                    m.pop_suppress_read_receipt
                } else {
                    p.suppress_read_receipt
                };
                if own && m.pop_force_ical_for_calendar_retrieval_option {
                    s.calendar_item_retrieval_option = CalendarItemRetrievalOption::ICalendar;
                }
            }
            Protocol::Imap4 => {
                let p = &self.config.imap;
                s.max_command_size = Some(p.max_command_size);
                s.calendar_item_retrieval_option = p.calendar_item_retrieval_option;
                let own = enabled && !m.imap_use_protocol_defaults;
                s.message_retrieval_mime_format = if own {
                    m.imap_messages_retrieval_mime_format
                } else {
                    p.message_retrieval_mime_format
                };
                s.enable_exact_rfc822_size = if own {
                    m.imap_enable_exact_rfc822_size
                } else {
                    p.enable_exact_rfc822_size
                };
                s.suppress_read_receipt = if own {
                    m.imap_suppress_read_receipt
                } else {
                    p.suppress_read_receipt
                };
                if own && m.imap_force_ical_for_calendar_retrieval_option {
                    s.calendar_item_retrieval_option = CalendarItemRetrievalOption::ICalendar;
                }
            }
            Protocol::OutlookAnywhere | Protocol::MapiHttp if enabled => {
                s.blocked_outlook_versions = m.mapi_block_outlook_versions.clone();
                s.block_non_cached_mode = m.mapi_block_outlook_non_cached_mode;
            }
            _ => {}
        }
        s
    }

    /// Runs the client access rules: the first matching enabled rule decides; an
    /// undecidable rule (needs the user) stops evaluation with Allow; no match allows.
    fn evaluate_rules(&self, input: &RuleInput<'_>) -> Decision {
        for &i in &self.rule_order {
            let rule = &self.config.rules[i];
            match rule.evaluate(input) {
                RuleMatch::NoMatch => continue,
                RuleMatch::Undecided => return Decision::Allow,
                RuleMatch::Matches => {
                    return match rule.action {
                        RuleAction::AllowAccess => Decision::Allow,
                        RuleAction::DenyAccess => deny(DenialReason::RuleDenied {
                            rule: rule.name.clone(),
                        }),
                    };
                }
            }
        }
        Decision::Allow
    }

    /// The name of the rule that decides for this fully known login, if any
    /// (for logs and `Test-ClientAccessRule`-style tooling).
    pub fn matching_rule(
        &self,
        user: &str,
        protocol: Protocol,
        mechanism: AuthMechanism,
        client_addr: IpAddr,
    ) -> Option<&str> {
        let mailbox = self.mailbox(user);
        let input = RuleInput {
            protocol,
            client_addr,
            user: Some(user),
            ou: Some(mailbox.organizational_unit.as_ref()),
            mechanism: Some(mechanism),
        };
        self.rule_order
            .iter()
            .map(|&i| &self.config.rules[i])
            .find(|r| r.evaluate(&input) == RuleMatch::Matches)
            .map(|r| r.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Duration = Duration::ZERO;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn policy(text: &str) -> Policy {
        Policy::from_toml_str(text).unwrap()
    }

    #[test]
    fn pop_disabled_for_one_user() {
        let p = policy(
            "[PopSettings]\nLoginType = \"PlainTextLogin\"\n[CASMailbox.alice]\nPopEnabled = false\n[CASMailbox.bob]\n",
        );
        let d = p.authorize_login(
            "alice",
            Protocol::Pop3,
            AuthMechanism::UserPass,
            false,
            ip("127.0.0.1"),
            NOW,
        );
        let denial = d.denial().unwrap();
        assert_eq!(
            denial.reason,
            DenialReason::ProtocolDisabled(Protocol::Pop3)
        );
        assert_eq!(denial.pop3_code(), "AUTH");
        assert!(
            p.authorize_login(
                "bob",
                Protocol::Pop3,
                AuthMechanism::UserPass,
                false,
                ip("127.0.0.1"),
                NOW
            )
            .is_allowed()
        );
        assert!(
            p.authorize_login(
                "ALICE",
                Protocol::Imap4,
                AuthMechanism::UserPass,
                true,
                ip("127.0.0.1"),
                NOW
            )
            .is_allowed()
        );
        assert!(!p.effective_settings("alice", Protocol::Pop3).enabled);
        assert!(
            p.effective_settings("nobody", Protocol::Pop3).enabled,
            "users without an entry get the defaults"
        );
    }

    #[test]
    fn login_type_and_integrated_auth() {
        let p = policy(
            "[ImapSettings]\nLoginType = \"PlainTextAuthentication\"\nEnableGSSAPIAndNTLMAuth = false\n",
        );
        let a = ip("192.0.2.1");
        let d = p.authorize_login("u", Protocol::Imap4, AuthMechanism::UserPass, false, a, NOW);
        assert_eq!(d.denial().unwrap().imap_code(), "PRIVACYREQUIRED");
        assert!(
            p.authorize_login("u", Protocol::Imap4, AuthMechanism::UserPass, true, a, NOW)
                .is_allowed()
        );
        let d = p.authorize_login("u", Protocol::Imap4, AuthMechanism::Ntlm, true, a, NOW);
        assert_eq!(d.denial().unwrap().reason, DenialReason::MechanismDisabled);
        assert!(
            p.mechanism_allowed(Protocol::Imap4, AuthMechanism::CramMd5, false)
                .is_allowed()
        );
        // Defaults: SecureLogin for POP3.
        assert!(
            !p.mechanism_allowed(Protocol::Pop3, AuthMechanism::Ntlm, false)
                .is_allowed()
        );
    }

    #[test]
    fn effective_settings_follow_use_protocol_defaults() {
        let p = policy(
            "[PopSettings]\nMessageRetrievalMimeFormat = \"HtmlOnly\"\nEnableExactRFC822Size = true\n\
             [CASMailbox.a]\nPopMessagesRetrievalMimeFormat = \"TextOnly\"\n\
             [CASMailbox.b]\nPopUseProtocolDefaults = false\nPopMessagesRetrievalMimeFormat = \"TextOnly\"\nPopForceICalForCalendarRetrievalOption = true\n",
        );
        let a = p.effective_settings("a", Protocol::Pop3);
        assert_eq!(
            a.message_retrieval_mime_format,
            MimeFormat::HtmlOnly,
            "defaults win while UseProtocolDefaults"
        );
        assert!(a.enable_exact_rfc822_size);
        let b = p.effective_settings("b", Protocol::Pop3);
        assert_eq!(b.message_retrieval_mime_format, MimeFormat::TextOnly);
        assert!(!b.enable_exact_rfc822_size);
        assert_eq!(b.max_command_size, Some(512));
        assert_eq!(b.message_retrieval_sort_order, Some(SortOrder::Ascending));
        let i = p.effective_settings("b", Protocol::Imap4);
        assert_eq!(i.max_command_size, Some(10_240));
        assert_eq!(i.message_retrieval_sort_order, None);
    }

    #[test]
    fn mapi_switches() {
        let p = policy(
            "[Organization]\nMapiHttpEnabled = false\n\
             [CASMailbox.a]\nMapiHttpEnabled = true\nMAPIBlockOutlookVersions = \"-13.32767.65535\"\nMAPIBlockOutlookNonCachedMode = true\n\
             [CASMailbox.b]\nMAPIBlockOutlookRpcHttp = true\n\
             [CASMailbox.c]\nMAPIEnabled = false\nMapiHttpEnabled = true\n",
        );
        assert!(
            p.effective_settings("a", Protocol::MapiHttp).enabled,
            "mailbox overrides the organization"
        );
        assert!(
            !p.effective_settings("b", Protocol::MapiHttp).enabled,
            "unset means the organization's false"
        );
        assert!(!p.effective_settings("b", Protocol::OutlookAnywhere).enabled);
        assert!(
            !p.effective_settings("c", Protocol::MapiHttp).enabled,
            "MAPIEnabled=false short-circuits"
        );
        assert!(!p.effective_settings("c", Protocol::OutlookAnywhere).enabled);
        let old = OutlookClientInfo {
            version: Some("12.0.6672.5000".parse().unwrap()),
            cached_mode: Some(true),
        };
        assert!(matches!(
            p.authorize_outlook_client("a", &old)
                .denial()
                .map(|d| &d.reason),
            Some(DenialReason::OutlookVersionBlocked(_))
        ));
        let online = OutlookClientInfo {
            version: Some("16.0.1.1".parse().unwrap()),
            cached_mode: Some(false),
        };
        assert_eq!(
            p.authorize_outlook_client("a", &online)
                .denial()
                .unwrap()
                .reason,
            DenialReason::NonCachedModeBlocked
        );
        assert!(p.authorize_outlook_client("b", &online).is_allowed());
        let e = p.effective_settings("a", Protocol::OutlookAnywhere);
        assert!(e.block_non_cached_mode && !e.blocked_outlook_versions.is_empty());
    }

    #[test]
    fn outlook_anywhere_service_and_methods() {
        let p = policy("[OutlookAnywhere]\nEnabled = false\n");
        assert_eq!(
            p.admit_connection(Protocol::OutlookAnywhere, ip("192.0.2.1"), true, NOW)
                .denial()
                .unwrap()
                .reason,
            DenialReason::ServiceDisabled(Protocol::OutlookAnywhere)
        );
        let p = policy(
            "[OutlookAnywhere]\nIISAuthenticationMethods = [\"Ntlm\"]\nExternalClientAuthenticationMethod = \"Ntlm\"\nInternalClientAuthenticationMethod = \"Ntlm\"\nSSLOffloading = false\nExternalClientsRequireSsl = true\n",
        );
        let a = ip("192.0.2.1");
        assert_eq!(
            p.admit_connection(Protocol::OutlookAnywhere, a, false, NOW)
                .denial()
                .unwrap()
                .reason,
            DenialReason::PrivacyRequired
        );
        assert!(
            p.admit_connection(Protocol::OutlookAnywhere, a, true, NOW)
                .is_allowed()
        );
        let d = p.authorize_login(
            "u",
            Protocol::OutlookAnywhere,
            AuthMechanism::HttpBasic,
            true,
            a,
            NOW,
        );
        assert_eq!(d.denial().unwrap().http_status(), 403);
        assert!(
            p.authorize_login(
                "u",
                Protocol::OutlookAnywhere,
                AuthMechanism::Ntlm,
                true,
                a,
                NOW
            )
            .is_allowed()
        );
        // The default ValidPorts: this machine only.
        assert!(p.authorize_rpc_target("localhost", 6001).is_allowed());
        assert!(p.authorize_rpc_target("127.0.0.1", 593).is_allowed());
        assert!(!p.authorize_rpc_target("localhost", 135).is_allowed());
        assert!(!p.authorize_rpc_target("mbx", 6001).is_allowed());
    }

    #[test]
    fn rules_first_match_wins_and_defer_on_user_conditions() {
        let p = policy(
            r#"
[CASMailbox.alice]
OrganizationalUnit = "corp/sales"
[CASMailbox.bob]
OrganizationalUnit = "corp/engineering"

[[ClientAccessRule]]
Name = "admins-anywhere"
Priority = 0
Action = "AllowAccess"
UsernameMatchesAnyOfPatterns = ["admin*"]

[[ClientAccessRule]]
Name = "no-pop-outside"
Priority = 1
Action = "DenyAccess"
AnyOfProtocols = ["POP3"]
ExceptAnyOfClientIPAddressesOrRanges = ["10.0.0.0/8"]

[[ClientAccessRule]]
Name = "sales-no-basic"
Action = "DenyAccess"
AnyOfOrganizationalUnits = ["corp/sales"]
AnyOfAuthenticationTypes = ["BasicAuthentication"]

[[ClientAccessRule]]
Name = "disabled"
Enabled = false
Action = "DenyAccess"
"#,
        );
        let outside = ip("203.0.113.1");
        let inside = ip("10.1.2.3");
        // The admin rule needs the user: undecided at connect time, so allowed then.
        assert!(
            p.admit_connection(Protocol::Pop3, outside, true, NOW)
                .is_allowed()
        );
        assert!(
            p.authorize_login(
                "admin1",
                Protocol::Pop3,
                AuthMechanism::UserPass,
                true,
                outside,
                NOW
            )
            .is_allowed()
        );
        let d = p.authorize_login(
            "bob",
            Protocol::Pop3,
            AuthMechanism::UserPass,
            true,
            outside,
            NOW,
        );
        assert_eq!(
            d.denial().unwrap().reason,
            DenialReason::RuleDenied {
                rule: "no-pop-outside".into()
            }
        );
        assert!(
            p.authorize_login(
                "bob",
                Protocol::Pop3,
                AuthMechanism::UserPass,
                true,
                inside,
                NOW
            )
            .is_allowed()
        );
        assert!(
            !p.authorize_login(
                "alice",
                Protocol::Imap4,
                AuthMechanism::SaslPlain,
                true,
                inside,
                NOW
            )
            .is_allowed()
        );
        assert!(
            p.authorize_login(
                "alice",
                Protocol::Imap4,
                AuthMechanism::Ntlm,
                true,
                inside,
                NOW
            )
            .is_allowed()
        );
        assert_eq!(
            p.matching_rule("bob", Protocol::Pop3, AuthMechanism::UserPass, outside),
            Some("no-pop-outside")
        );
        assert_eq!(
            p.matching_rule("bob", Protocol::Imap4, AuthMechanism::UserPass, outside),
            None
        );
    }

    #[test]
    fn connection_level_rule_without_user_conditions() {
        let p = policy(
            "[[ClientAccessRule]]\nName = \"block\"\nAction = \"DenyAccess\"\nAnyOfClientIPAddressesOrRanges = [\"192.0.2.0/24\"]\n",
        );
        let d = p.admit_connection(Protocol::Imap4, ip("192.0.2.9"), true, NOW);
        assert_eq!(d.denial().unwrap().imap_code(), "AUTHORIZATIONFAILED");
        assert!(
            p.admit_connection(Protocol::Imap4, ip("198.51.100.1"), true, NOW)
                .is_allowed()
        );
    }
}
