//! Admin commands: subcommands of `cas-server` in Exchange Management Shell vocabulary.
//!
//! | command | Exchange cmdlet |
//! |---|---|
//! | `get-casmailbox [USER \| --ou OU]` | `Get-CASMailbox` (`Get-Mailbox -OrganizationalUnit X \| Get-CASMailbox`) |
//! | `set-casmailbox USER \| --ou OU --pop-enabled false …` | `Set-CASMailbox` |
//! | `get-popsettings` / `set-popsettings …` | `Get-PopSettings` / `Set-PopSettings` |
//! | `get-imapsettings` / `set-imapsettings …` | `Get-ImapSettings` / `Set-ImapSettings` |
//! | `get-outlookanywhere`, `enable-outlookanywhere …`, `set-outlookanywhere …`, `disable-outlookanywhere` | `Get-/Enable-/Set-/Disable-OutlookAnywhere` |
//! | `new-mailbox USER [--ou OU]`, `remove-mailbox USER`, `set-mailbox-password USER` | `New-Mailbox`, `Remove-Mailbox`, `Set-Mailbox -Password` |
//!
//! Every parameter is the kebab-case form of the Exchange parameter (`-MaxConnectionFromSingleIP`
//! → `--max-connection-from-single-ip`); values are Exchange's (`true`/`false`, also
//! `$true`/`$false`; enumeration names case-insensitively; time spans as `hh:mm:ss`).
//!
//! Edits load `policy.toml` through `cas_policy::PolicyConfig`, apply the change (which
//! validates it: an out-of-range value fails with the key and the allowed range and nothing
//! is written), compile the result with `Policy::new`, and replace the file atomically
//! (temporary file, fsync, rename) under an exclusive lock, so two admins never lose each
//! other's change. A running server picks the new file up within about two seconds (or at
//! once on SIGHUP). Results print as `Format-List`/`Format-Table`-style text or `--json`.

pub mod output;
pub mod policy_file;
pub mod users;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use cas_policy::{
    CasMailbox, CasMailboxChange, ImapSettingsChange, OuPath, OutlookAnywhereChange, PolicyConfig,
    PopSettingsChange, Target,
};
use clap::builder::PossibleValuesParser;
use clap::{Args, Subcommand};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use self::output::Format;
use crate::config::Paths;

/// Why an admin command failed; printed as `cas-server <command>: <message>`.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A parameter value is not allowed.
    #[error("parameter -{parameter}: {message}")]
    InvalidArgument {
        /// Exchange parameter name.
        parameter: &'static str,
        /// What is wrong, with the allowed values.
        message: String,
    },
    /// The policy refused the change (names the key and the allowed range).
    #[error("{0}")]
    Policy(#[from] cas_policy::ConfigError),
    /// The object does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The object exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// File system trouble.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Anything else.
    #[error("{0}")]
    Failed(String),
}

impl AdminError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        AdminError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Output options shared by every command.
#[derive(Args, Debug, Clone, Default)]
pub struct OutputArgs {
    /// Print JSON (same as `--format json`).
    #[arg(long)]
    pub json: bool,
    /// `list` (Format-List), `table` (Format-Table) or `json`.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

impl OutputArgs {
    fn format(&self, default: Format) -> Format {
        if self.json {
            Format::Json
        } else {
            self.format.unwrap_or(default)
        }
    }
}

/// A Set-CASMailbox target: one user, or every mailbox under an OU.
#[derive(Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct TargetArgs {
    /// The mailbox (Identity).
    pub identity: Option<String>,
    /// Every mailbox under this organizational unit (e.g. `corp/sales`), like
    /// `Get-Mailbox -OrganizationalUnit corp/sales | Set-CASMailbox …`.
    #[arg(long = "ou", alias = "organizational-unit", value_name = "OU")]
    pub ou: Option<String>,
}

/// `$true`/`$false`/`true`/`false`/`1`/`0`, case-insensitive.
fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim_start_matches('$').to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("{s:?} is not a boolean; use true or false")),
    }
}

/// `true`, `false`, or `$null`/`null`/`unset` (use the organisation's value).
fn parse_opt_bool(s: &str) -> Result<Option<bool>, String> {
    match s.trim_start_matches('$').to_ascii_lowercase().as_str() {
        "null" | "unset" | "" => Ok(None),
        _ => parse_bool(s).map(Some),
    }
}

/// Exchange's `[d.]hh:mm:ss[.fffffff]`, or a whole number of seconds.
fn parse_timespan(s: &str) -> Result<cas_policy::TimeSpan, String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = s.parse().map_err(|_| format!("{s} seconds is too large"))?;
        return Ok(cas_policy::TimeSpan::from_secs(secs));
    }
    s.parse()
        .map_err(|e: cas_policy::ConfigError| e.to_string())
}

/// Checks a `true|false|$null` value (converted by [`parse_opt_bool`] later; clap cannot hold
/// an `Option<Option<bool>>` argument).
fn check_opt_bool(s: &str) -> Result<String, String> {
    parse_opt_bool(s).map(|_| s.to_owned())
}

/// Empty or `$null` clears an optional text setting.
fn opt_text(s: &Option<String>) -> Option<Option<String>> {
    s.as_deref().map(|s| match s {
        "" | "$null" => None,
        s => Some(s.to_owned()),
    })
}

/// An Exchange enumeration value from a name clap accepted (case-insensitively) from one
/// of the lists below, which mirror the policy crate's serde names (the unit tests check
/// that every listed name deserializes, so a mismatch is caught there).
fn enum_value<T: DeserializeOwned>(name: &str) -> T {
    let canonical = ENUM_NAMES
        .iter()
        .flat_map(|list| list.iter())
        .find(|n| n.eq_ignore_ascii_case(name))
        .copied()
        .unwrap_or(name);
    serde_json::from_value(Value::String(canonical.to_owned()))
        .unwrap_or_else(|e| panic!("enumeration value {name}: {e}"))
}

const BOOL: &str = "true|false";
const MIME_FORMATS: [&str; 7] = [
    "TextOnly",
    "HtmlOnly",
    "HtmlAndTextAlternative",
    "TextEnrichedOnly",
    "TextEnrichedAndTextAlternative",
    "BestBodyFormat",
    "Tnef",
];
const LOGIN_TYPES: [&str; 3] = ["PlainTextLogin", "PlainTextAuthentication", "SecureLogin"];
const SORT_ORDERS: [&str; 2] = ["Ascending", "Descending"];
const CALENDAR_OPTIONS: [&str; 4] = ["iCalendar", "IntranetUrl", "InternetUrl", "Custom"];
const EXTENDED_PROTECTION: [&str; 3] = ["None", "Allow", "Require"];
const HTTP_AUTH: [&str; 3] = ["Basic", "Ntlm", "Negotiate"];
const ROLL_OVER: [&str; 4] = ["Hourly", "Daily", "Weekly", "Monthly"];
const ENUM_NAMES: [&[&str]; 7] = [
    &MIME_FORMATS,
    &LOGIN_TYPES,
    &SORT_ORDERS,
    &CALENDAR_OPTIONS,
    &EXTENDED_PROTECTION,
    &HTTP_AUTH,
    &ROLL_OVER,
];

/// Set-CASMailbox parameters.
#[derive(Args, Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct CasMailboxArgs {
    /// PopEnabled: POP3 access for the mailbox.
    #[arg(long, value_name = BOOL, value_parser = parse_bool)]
    pub pop_enabled: Option<bool>,
    /// ImapEnabled: IMAP4 access.
    #[arg(long, value_name = BOOL, value_parser = parse_bool)]
    pub imap_enabled: Option<bool>,
    /// MAPIEnabled: Outlook (MAPI) access of any kind.
    #[arg(long, value_name = BOOL, value_parser = parse_bool)]
    pub mapi_enabled: Option<bool>,
    /// MAPIBlockOutlookRpcHttp: block Outlook Anywhere (RPC over HTTP).
    #[arg(long, value_name = BOOL, value_parser = parse_bool)]
    pub mapi_block_outlook_rpc_http: Option<bool>,
    /// MAPIBlockOutlookNonCachedMode: block Outlook in online (non-cached) mode.
    #[arg(long, value_name = BOOL, value_parser = parse_bool)]
    pub mapi_block_outlook_non_cached_mode: Option<bool>,
    /// MAPIBlockOutlookVersions: blocked Outlook versions, e.g. "-13.32767.65535;15.0.0-"
    /// (empty clears the list).
    #[arg(long, value_name = "RANGES", allow_hyphen_values = true)]
    pub mapi_block_outlook_versions: Option<String>,
    /// MapiHttpEnabled: MAPI over HTTP; `$null` uses the organisation's setting.
    #[arg(long, value_name = "true|false|$null", value_parser = check_opt_bool)]
    pub mapi_http_enabled: Option<String>,
    /// OWAEnabled: Outlook on the web.
    #[arg(long, value_name = BOOL, value_parser = parse_bool)]
    pub owa_enabled: Option<bool>,
    /// ActiveSyncEnabled: Exchange ActiveSync.
    #[arg(long, value_name = BOOL, value_parser = parse_bool)]
    pub active_sync_enabled: Option<bool>,
    /// EwsEnabled: Exchange Web Services.
    #[arg(long, value_name = BOOL, value_parser = parse_bool)]
    pub ews_enabled: Option<bool>,
    /// PopUseProtocolDefaults: false makes the four Pop* settings below apply.
    #[arg(long, value_name = BOOL, value_parser = parse_bool)]
    pub pop_use_protocol_defaults: Option<bool>,
    /// PopMessagesRetrievalMimeFormat.
    #[arg(long, value_parser = PossibleValuesParser::new(MIME_FORMATS), ignore_case = true)]
    pub pop_messages_retrieval_mime_format: Option<String>,
    /// PopEnableExactRFC822Size.
    #[arg(long, value_name = BOOL, value_parser = parse_bool)]
    pub pop_enable_exact_rfc822_size: Option<bool>,
    /// PopSuppressReadReceipt.
    #[arg(long, value_name = BOOL, value_parser = parse_bool)]
    pub pop_suppress_read_receipt: Option<bool>,
    /// PopForceICalForCalendarRetrievalOption.
    #[arg(long = "pop-force-ical-for-calendar-retrieval-option", value_name = BOOL, value_parser = parse_bool)]
    pub pop_force_ical: Option<bool>,
    /// ImapUseProtocolDefaults: false makes the four Imap* settings below apply.
    #[arg(long, value_name = BOOL, value_parser = parse_bool)]
    pub imap_use_protocol_defaults: Option<bool>,
    /// ImapMessagesRetrievalMimeFormat.
    #[arg(long, value_parser = PossibleValuesParser::new(MIME_FORMATS), ignore_case = true)]
    pub imap_messages_retrieval_mime_format: Option<String>,
    /// ImapEnableExactRFC822Size.
    #[arg(long, value_name = BOOL, value_parser = parse_bool)]
    pub imap_enable_exact_rfc822_size: Option<bool>,
    /// ImapSuppressReadReceipt.
    #[arg(long, value_name = BOOL, value_parser = parse_bool)]
    pub imap_suppress_read_receipt: Option<bool>,
    /// ImapForceICalForCalendarRetrievalOption.
    #[arg(long = "imap-force-ical-for-calendar-retrieval-option", value_name = BOOL, value_parser = parse_bool)]
    pub imap_force_ical: Option<bool>,
}

impl CasMailboxArgs {
    fn change(&self) -> Result<CasMailboxChange, AdminError> {
        let versions = match &self.mapi_block_outlook_versions {
            None => None,
            Some(text) => Some(text.parse().map_err(AdminError::Policy)?),
        };
        Ok(CasMailboxChange {
            pop_enabled: self.pop_enabled,
            pop_use_protocol_defaults: self.pop_use_protocol_defaults,
            pop_messages_retrieval_mime_format: self
                .pop_messages_retrieval_mime_format
                .as_deref()
                .map(enum_value),
            pop_enable_exact_rfc822_size: self.pop_enable_exact_rfc822_size,
            pop_suppress_read_receipt: self.pop_suppress_read_receipt,
            pop_force_ical_for_calendar_retrieval_option: self.pop_force_ical,
            imap_enabled: self.imap_enabled,
            imap_use_protocol_defaults: self.imap_use_protocol_defaults,
            imap_messages_retrieval_mime_format: self
                .imap_messages_retrieval_mime_format
                .as_deref()
                .map(enum_value),
            imap_enable_exact_rfc822_size: self.imap_enable_exact_rfc822_size,
            imap_suppress_read_receipt: self.imap_suppress_read_receipt,
            imap_force_ical_for_calendar_retrieval_option: self.imap_force_ical,
            mapi_enabled: self.mapi_enabled,
            mapi_block_outlook_rpc_http: self.mapi_block_outlook_rpc_http,
            mapi_block_outlook_non_cached_mode: self.mapi_block_outlook_non_cached_mode,
            mapi_block_outlook_versions: versions,
            mapi_http_enabled: self
                .mapi_http_enabled
                .as_deref()
                .map(|s| parse_opt_bool(s).unwrap_or(None)),
            owa_enabled: self.owa_enabled,
            active_sync_enabled: self.active_sync_enabled,
            ews_enabled: self.ews_enabled,
        })
    }
}

/// Set-PopSettings / Set-ImapSettings parameters common to both.
#[derive(Args, Debug, Clone, Default)]
pub struct ProtocolSettingsArgs {
    /// LoginType: what may authenticate before TLS.
    #[arg(long, value_parser = PossibleValuesParser::new(LOGIN_TYPES), ignore_case = true)]
    pub login_type: Option<String>,
    /// MaxConnections: connections in total.
    #[arg(long, value_name = "N")]
    pub max_connections: Option<u32>,
    /// MaxConnectionFromSingleIP: connections from one client address.
    #[arg(long = "max-connection-from-single-ip", value_name = "N")]
    pub max_connection_from_single_ip: Option<u32>,
    /// MaxConnectionsPerUser: logged-in connections of one user.
    #[arg(long, value_name = "N")]
    pub max_connections_per_user: Option<u32>,
    /// PreAuthenticatedConnectionTimeout, hh:mm:ss or seconds (00:00:10 to 01:00:00).
    #[arg(long, value_name = "TIMESPAN", value_parser = parse_timespan)]
    pub pre_authenticated_connection_timeout: Option<cas_policy::TimeSpan>,
    /// AuthenticatedConnectionTimeout, hh:mm:ss or seconds (00:00:30 to 1.00:00:00).
    #[arg(long, value_name = "TIMESPAN", value_parser = parse_timespan)]
    pub authenticated_connection_timeout: Option<cas_policy::TimeSpan>,
    /// MaxCommandSize in bytes (POP3 40-1024, IMAP4 1024-16384).
    #[arg(long, value_name = "BYTES")]
    pub max_command_size: Option<u32>,
    /// EnableExactRFC822Size: report sizes of the converted message.
    #[arg(long = "enable-exact-rfc822-size", value_name = BOOL, value_parser = parse_bool)]
    pub enable_exact_rfc822_size: Option<bool>,
    /// MessageRetrievalMimeFormat.
    #[arg(long, value_parser = PossibleValuesParser::new(MIME_FORMATS), ignore_case = true)]
    pub message_retrieval_mime_format: Option<String>,
    /// SuppressReadReceipt.
    #[arg(long, value_name = BOOL, value_parser = parse_bool)]
    pub suppress_read_receipt: Option<bool>,
    /// CalendarItemRetrievalOption.
    #[arg(long, value_parser = PossibleValuesParser::new(CALENDAR_OPTIONS), ignore_case = true)]
    pub calendar_item_retrieval_option: Option<String>,
    /// Banner: greeting text ("" or $null restores the default).
    #[arg(long, value_name = "TEXT")]
    pub banner: Option<String>,
    /// ProtocolLogEnabled: write protocol logs under DATA_DIR/logs/PROTOCOL/.
    #[arg(long, value_name = BOOL, value_parser = parse_bool)]
    pub protocol_log_enabled: Option<bool>,
    /// LogFileLocation: protocol log directory, absolute or relative to the data directory
    /// ("" restores DATA_DIR/logs/PROTOCOL).
    #[arg(long, value_name = "DIR")]
    pub log_file_location: Option<String>,
    /// LogFileRollOverSettings: when the protocol log starts a new file.
    #[arg(long, value_parser = PossibleValuesParser::new(ROLL_OVER), ignore_case = true)]
    pub log_file_roll_over_settings: Option<String>,
    /// LogPerFileSizeQuota in bytes (0: the server's default rotation size).
    #[arg(long, value_name = "BYTES")]
    pub log_per_file_size_quota: Option<u64>,
    /// EnableGSSAPIAndNTLMAuth: offer AUTH NTLM (and GSSAPI).
    #[arg(long = "enable-gssapi-and-ntlm-auth", value_name = BOOL, value_parser = parse_bool)]
    pub enable_gssapi_and_ntlm_auth: Option<bool>,
    /// ExtendedProtectionPolicy (channel binding for NTLM over TLS).
    #[arg(long, value_parser = PossibleValuesParser::new(EXTENDED_PROTECTION), ignore_case = true)]
    pub extended_protection_policy: Option<String>,
    /// X509CertificateName ("" clears it).
    #[arg(long = "x509-certificate-name", value_name = "HOST")]
    pub x509_certificate_name: Option<String>,
    /// UnencryptedOrTLSBindings, comma-separated IP:PORT list.
    #[arg(
        long = "unencrypted-or-tls-bindings",
        value_name = "ADDRS",
        value_delimiter = ','
    )]
    pub unencrypted_or_tls_bindings: Option<Vec<std::net::SocketAddr>>,
    /// SSLBindings, comma-separated IP:PORT list.
    #[arg(long = "ssl-bindings", value_name = "ADDRS", value_delimiter = ',')]
    pub ssl_bindings: Option<Vec<std::net::SocketAddr>>,
}

macro_rules! settings_change {
    ($args:expr, $change:ident { $($extra:tt)* }) => {{
        let a: &ProtocolSettingsArgs = $args;
        $change {
            login_type: a.login_type.as_deref().map(enum_value),
            max_connections: a.max_connections,
            max_connection_from_single_ip: a.max_connection_from_single_ip,
            max_connections_per_user: a.max_connections_per_user,
            pre_authenticated_connection_timeout: a.pre_authenticated_connection_timeout,
            authenticated_connection_timeout: a.authenticated_connection_timeout,
            max_command_size: a.max_command_size,
            enable_exact_rfc822_size: a.enable_exact_rfc822_size,
            message_retrieval_mime_format: a.message_retrieval_mime_format.as_deref().map(enum_value),
            suppress_read_receipt: a.suppress_read_receipt,
            calendar_item_retrieval_option: a.calendar_item_retrieval_option.as_deref().map(enum_value),
            banner: opt_text(&a.banner),
            protocol_log_enabled: a.protocol_log_enabled,
            log_file_location: opt_text(&a.log_file_location),
            log_file_roll_over_settings: a.log_file_roll_over_settings.as_deref().map(enum_value),
            log_per_file_size_quota: a.log_per_file_size_quota,
            enable_gssapi_and_ntlm_auth: a.enable_gssapi_and_ntlm_auth,
            extended_protection_policy: a.extended_protection_policy.as_deref().map(enum_value),
            x509_certificate_name: opt_text(&a.x509_certificate_name),
            unencrypted_or_tls_bindings: a.unencrypted_or_tls_bindings.clone(),
            ssl_bindings: a.ssl_bindings.clone(),
            $($extra)*
        }
    }};
}

/// Enable-OutlookAnywhere / Set-OutlookAnywhere parameters.
#[derive(Args, Debug, Clone, Default)]
pub struct OutlookAnywhereArgs {
    /// ExternalHostname ("" clears it).
    #[arg(long, value_name = "HOST")]
    pub external_hostname: Option<String>,
    /// InternalHostname ("" clears it).
    #[arg(long, value_name = "HOST")]
    pub internal_hostname: Option<String>,
    /// DefaultAuthenticationMethod: sets both client methods and IISAuthenticationMethods.
    #[arg(long, value_parser = PossibleValuesParser::new(HTTP_AUTH), ignore_case = true)]
    pub default_authentication_method: Option<String>,
    /// ExternalClientAuthenticationMethod.
    #[arg(long, value_parser = PossibleValuesParser::new(HTTP_AUTH), ignore_case = true)]
    pub external_client_authentication_method: Option<String>,
    /// InternalClientAuthenticationMethod.
    #[arg(long, value_parser = PossibleValuesParser::new(HTTP_AUTH), ignore_case = true)]
    pub internal_client_authentication_method: Option<String>,
    /// IISAuthenticationMethods, comma-separated.
    #[arg(long = "iis-authentication-methods", value_delimiter = ',', value_parser = PossibleValuesParser::new(HTTP_AUTH), ignore_case = true)]
    pub iis_authentication_methods: Option<Vec<String>>,
    /// SSLOffloading: TLS ends at a load balancer in front of the server.
    #[arg(long = "ssl-offloading", value_name = BOOL, value_parser = parse_bool)]
    pub ssl_offloading: Option<bool>,
    /// ExternalClientsRequireSsl.
    #[arg(long, value_name = BOOL, value_parser = parse_bool)]
    pub external_clients_require_ssl: Option<bool>,
    /// InternalClientsRequireSsl.
    #[arg(long, value_name = BOOL, value_parser = parse_bool)]
    pub internal_clients_require_ssl: Option<bool>,
    /// Valid RPC proxy targets (the ValidPorts registry value), e.g.
    /// "mbx01:6001-6004,mbx01.example.com:6001-6004,mbx01:593". A `*` server lets any user
    /// reach any host on those ports.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub valid_ports: Option<Vec<cas_policy::RpcPortRange>>,
}

impl OutlookAnywhereArgs {
    fn change(&self, enabled: Option<bool>) -> OutlookAnywhereChange {
        OutlookAnywhereChange {
            enabled,
            external_hostname: opt_text(&self.external_hostname),
            internal_hostname: opt_text(&self.internal_hostname),
            default_authentication_method: self
                .default_authentication_method
                .as_deref()
                .map(enum_value),
            external_client_authentication_method: self
                .external_client_authentication_method
                .as_deref()
                .map(enum_value),
            internal_client_authentication_method: self
                .internal_client_authentication_method
                .as_deref()
                .map(enum_value),
            iis_authentication_methods: self
                .iis_authentication_methods
                .as_ref()
                .map(|v| v.iter().map(|s| enum_value(s)).collect()),
            ssl_offloading: self.ssl_offloading,
            external_clients_require_ssl: self.external_clients_require_ssl,
            internal_clients_require_ssl: self.internal_clients_require_ssl,
            valid_ports: self.valid_ports.clone(),
        }
    }
}

/// The admin subcommands.
#[derive(Subcommand, Debug, Clone)]
// The flattened argument groups are documented on their types; doc comments on the fields
// would change clap's help output.
#[allow(missing_docs)]
pub enum AdminCommand {
    /// Get-CASMailbox: client access settings of one mailbox, every mailbox under an OU, or all.
    #[command(name = "get-casmailbox")]
    GetCasMailbox {
        /// The mailbox (Identity); all mailboxes when omitted.
        identity: Option<String>,
        /// Only mailboxes under this organizational unit.
        #[arg(
            long = "ou",
            alias = "organizational-unit",
            value_name = "OU",
            conflicts_with = "identity"
        )]
        ou: Option<String>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Set-CASMailbox: change client access settings of one mailbox or of every mailbox under an OU.
    #[command(name = "set-casmailbox")]
    SetCasMailbox {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        settings: Box<CasMailboxArgs>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Get-PopSettings.
    #[command(name = "get-popsettings")]
    GetPopSettings {
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Set-PopSettings.
    #[command(name = "set-popsettings")]
    SetPopSettings {
        #[command(flatten)]
        settings: Box<ProtocolSettingsArgs>,
        /// MessageRetrievalSortOrder: Descending numbers the newest message 1.
        #[arg(long, value_parser = PossibleValuesParser::new(SORT_ORDERS), ignore_case = true)]
        message_retrieval_sort_order: Option<String>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Get-ImapSettings.
    #[command(name = "get-imapsettings")]
    GetImapSettings {
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Set-ImapSettings.
    #[command(name = "set-imapsettings")]
    SetImapSettings {
        #[command(flatten)]
        settings: Box<ProtocolSettingsArgs>,
        /// ShowHiddenFoldersEnabled.
        #[arg(long, value_name = BOOL, value_parser = parse_bool)]
        show_hidden_folders_enabled: Option<bool>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Get-OutlookAnywhere.
    #[command(name = "get-outlookanywhere")]
    GetOutlookAnywhere {
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Enable-OutlookAnywhere: turn RPC over HTTP on, with the given settings.
    #[command(name = "enable-outlookanywhere")]
    EnableOutlookAnywhere {
        #[command(flatten)]
        settings: Box<OutlookAnywhereArgs>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Set-OutlookAnywhere: change settings without enabling or disabling.
    #[command(name = "set-outlookanywhere")]
    SetOutlookAnywhere {
        #[command(flatten)]
        settings: Box<OutlookAnywhereArgs>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Disable-OutlookAnywhere.
    #[command(name = "disable-outlookanywhere")]
    DisableOutlookAnywhere {
        #[command(flatten)]
        output: OutputArgs,
    },
    /// New-Mailbox: a user in the users file, a Maildir, and a CAS mailbox entry.
    #[command(name = "new-mailbox")]
    NewMailbox {
        /// The user name (Name).
        name: String,
        /// OrganizationalUnit, e.g. corp/sales.
        #[arg(long = "ou", alias = "organizational-unit", value_name = "OU")]
        ou: Option<String>,
        /// Read the password from the first line of stdin; without it a random password is
        /// generated and printed once.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Remove-Mailbox: the user leaves the users file and the policy; the Maildir is kept.
    #[command(name = "remove-mailbox")]
    RemoveMailbox {
        /// The mailbox (Identity).
        identity: String,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Set-Mailbox -Password: a new password (argon2id and NT hash).
    #[command(name = "set-mailbox-password")]
    SetMailboxPassword {
        /// The mailbox (Identity).
        identity: String,
        /// Read the password from the first line of stdin; without it a random password is
        /// generated and printed once.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Connectivity tests: test-popconnectivity, test-imapconnectivity (run by
    /// `connectivity::main`, with their own exit statuses).
    #[command(flatten)]
    Connectivity(crate::connectivity::ConnectivityCommand),
}

/// Columns of `get-casmailbox`'s table, like Exchange's default view plus the OU.
const CAS_TABLE: [&str; 8] = [
    "Name",
    "OrganizationalUnit",
    "ActiveSyncEnabled",
    "OWAEnabled",
    "PopEnabled",
    "ImapEnabled",
    "MAPIEnabled",
    "EwsEnabled",
];

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// A CASMailbox record with its name first (and every key shown, also the unset ones).
fn mailbox_record(name: &str, mailbox: &CasMailbox) -> Value {
    let mut record = serde_json::Map::new();
    record.insert("Name".into(), json!(name));
    record.insert(
        "OrganizationalUnit".into(),
        mailbox
            .organizational_unit
            .as_ref()
            .map_or(Value::Null, |ou| json!(ou.as_str())),
    );
    if let Value::Object(fields) = to_value(mailbox) {
        for (k, v) in fields {
            if k != "OrganizationalUnit" {
                record.insert(k, v);
            }
        }
    }
    record
        .entry("MAPIBlockOutlookVersions")
        .or_insert(Value::Null);
    record.entry("MapiHttpEnabled").or_insert(Value::Null);
    Value::Object(record)
}

fn parse_ou(text: &str) -> Result<OuPath, AdminError> {
    text.parse().map_err(AdminError::Policy)
}

/// Every known mailbox: the users file's accounts and the policy's CASMailbox entries.
fn all_mailboxes(
    paths: &Paths,
    config: &PolicyConfig,
) -> Result<Vec<(String, CasMailbox)>, AdminError> {
    let mut names: Vec<String> = config.mailboxes.keys().cloned().collect();
    if let Ok(text) = std::fs::read_to_string(&paths.users_file)
        && let Ok(store) = cas_auth::FileCredentialStore::parse(&text)
    {
        for a in store.accounts() {
            if !names.iter().any(|n| n.eq_ignore_ascii_case(a.user())) {
                names.push(a.user().to_owned());
            }
        }
    }
    names.sort();
    Ok(names
        .into_iter()
        .map(|n| {
            let m = config.mailboxes.get(&n).cloned().unwrap_or_default();
            (n, m)
        })
        .collect())
}

fn new_password(from_stdin: bool) -> Result<(String, bool), AdminError> {
    if from_stdin {
        Ok((users::read_password_line(std::io::stdin().lock())?, false))
    } else {
        let p = crate::demo::random_password().map_err(|e| AdminError::Failed(e.to_string()))?;
        Ok((p, true))
    }
}

/// Runs `command` against the files in `paths`; returns what to print on stdout.
pub fn run(command: &AdminCommand, paths: &Paths) -> Result<String, AdminError> {
    use AdminCommand as C;
    let policy = &paths.policy_file;
    match command {
        C::GetCasMailbox {
            identity,
            ou,
            output,
        } => {
            let config = policy_file::load(policy)?;
            let all = all_mailboxes(paths, &config)?;
            let selected: Vec<Value> = match (identity, ou) {
                (Some(id), _) => {
                    let (name, m) = all
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(id))
                        .ok_or_else(|| AdminError::NotFound(format!("no mailbox named {id:?}")))?;
                    vec![mailbox_record(name, m)]
                }
                (None, Some(ou)) => {
                    let ou = parse_ou(ou)?;
                    all.iter()
                        .filter(|(_, m)| m.is_under(&ou))
                        .map(|(n, m)| mailbox_record(n, m))
                        .collect()
                }
                (None, None) => all.iter().map(|(n, m)| mailbox_record(n, m)).collect(),
            };
            let default = if identity.is_some() {
                Format::List
            } else {
                Format::Table
            };
            Ok(output::render(
                &selected,
                output.format(default),
                &CAS_TABLE,
                identity.is_some(),
            ))
        }
        C::SetCasMailbox {
            target,
            settings,
            output,
        } => {
            let change = settings.change()?;
            if change.is_empty() {
                return Err(AdminError::InvalidArgument {
                    parameter: "Parameters",
                    message: "give at least one setting, e.g. --pop-enabled false".into(),
                });
            }
            let target = match (&target.identity, &target.ou) {
                (Some(user), _) => Target::User(user.clone()),
                (None, Some(ou)) => Target::OrganizationalUnit(parse_ou(ou)?),
                (None, None) => unreachable!("clap requires one of identity and --ou"),
            };
            let mut changed = Vec::new();
            let config = policy_file::update(policy, |config| {
                if let Target::User(user) = &target
                    && !config
                        .mailboxes
                        .keys()
                        .any(|k| k.eq_ignore_ascii_case(user))
                    && user_exists(paths, user)
                {
                    // A user of the users file without a policy entry yet gets one (default OU).
                    config.add_mailbox(user, None)?;
                }
                changed = config.set_cas_mailbox(&target, &change)?;
                Ok(())
            })?;
            let records: Vec<Value> = changed
                .iter()
                .filter_map(|n| config.mailboxes.get(n).map(|m| mailbox_record(n, m)))
                .collect();
            if records.is_empty() {
                return Err(AdminError::NotFound(match target {
                    Target::User(u) => format!("no mailbox named {u:?}"),
                    Target::OrganizationalUnit(ou) => {
                        format!("no mailbox under organizational unit {ou}")
                    }
                }));
            }
            Ok(output::render(
                &records,
                output.format(Format::Table),
                &CAS_TABLE,
                false,
            ))
        }
        C::GetPopSettings { output } => {
            let config = policy_file::load(policy)?;
            Ok(output::render(
                &[to_value(&config.pop)],
                output.format(Format::List),
                &[],
                true,
            ))
        }
        C::SetPopSettings {
            settings,
            message_retrieval_sort_order,
            output,
        } => {
            let change = settings_change!(
                settings,
                PopSettingsChange {
                    message_retrieval_sort_order: message_retrieval_sort_order
                        .as_deref()
                        .map(enum_value),
                }
            );
            if change == PopSettingsChange::default() {
                return Err(no_setting("--login-type SecureLogin"));
            }
            let config = policy_file::update(policy, |c| c.set_pop_settings(&change))?;
            Ok(output::render(
                &[to_value(&config.pop)],
                output.format(Format::List),
                &[],
                true,
            ))
        }
        C::GetImapSettings { output } => {
            let config = policy_file::load(policy)?;
            Ok(output::render(
                &[to_value(&config.imap)],
                output.format(Format::List),
                &[],
                true,
            ))
        }
        C::SetImapSettings {
            settings,
            show_hidden_folders_enabled,
            output,
        } => {
            let change = settings_change!(
                settings,
                ImapSettingsChange {
                    show_hidden_folders_enabled: *show_hidden_folders_enabled,
                }
            );
            if change == ImapSettingsChange::default() {
                return Err(no_setting("--login-type SecureLogin"));
            }
            let config = policy_file::update(policy, |c| c.set_imap_settings(&change))?;
            Ok(output::render(
                &[to_value(&config.imap)],
                output.format(Format::List),
                &[],
                true,
            ))
        }
        C::GetOutlookAnywhere { output } => {
            let config = policy_file::load(policy)?;
            Ok(outlook_anywhere(&config, output))
        }
        C::EnableOutlookAnywhere { settings, output } => {
            let change = settings.change(Some(true));
            let config = policy_file::update(policy, |c| c.set_outlook_anywhere(&change))?;
            Ok(outlook_anywhere(&config, output))
        }
        C::SetOutlookAnywhere { settings, output } => {
            let change = settings.change(None);
            if change == OutlookAnywhereChange::default() {
                return Err(no_setting("--external-hostname mail.example.com"));
            }
            let config = policy_file::update(policy, |c| c.set_outlook_anywhere(&change))?;
            Ok(outlook_anywhere(&config, output))
        }
        C::DisableOutlookAnywhere { output } => {
            let change = OutlookAnywhereChange {
                enabled: Some(false),
                ..OutlookAnywhereChange::default()
            };
            let config = policy_file::update(policy, |c| c.set_outlook_anywhere(&change))?;
            Ok(outlook_anywhere(&config, output))
        }
        C::NewMailbox {
            name,
            ou,
            password_stdin,
            output,
        } => {
            let ou = ou.as_deref().map(parse_ou).transpose()?;
            // The policy entry first (it validates the name and refuses duplicates), then
            // the account; if the account fails, the entry is taken back.
            let config = policy_file::update(policy, |c| {
                if c.mailboxes.keys().any(|k| k.eq_ignore_ascii_case(name)) {
                    // An entry left by an earlier remove of the account only: reuse it.
                    return Ok(());
                }
                c.add_mailbox(name, ou.clone())
            })?;
            let (password, generated) = new_password(*password_stdin)?;
            if let Err(e) =
                users::new_mailbox(&paths.users_file, &paths.maildir_root, name, &password)
            {
                let _ = policy_file::update(policy, |c| c.remove_mailbox(name).map(drop));
                return Err(e);
            }
            let mailbox = config
                .mailboxes
                .get(name.as_str())
                .cloned()
                .unwrap_or_default();
            let mut record = mailbox_record(name, &mailbox);
            if generated && let Value::Object(m) = &mut record {
                m.insert("Password".into(), json!(password));
            }
            Ok(output::render(
                &[record],
                output.format(Format::List),
                &[],
                true,
            ))
        }
        C::RemoveMailbox { identity, output } => {
            let removed = users::remove_mailbox(&paths.users_file, identity);
            let policy_removed = policy_file::update(policy, |c| {
                match c
                    .mailboxes
                    .keys()
                    .find(|k| k.eq_ignore_ascii_case(identity))
                    .cloned()
                {
                    Some(k) => c.remove_mailbox(&k).map(drop),
                    None => Ok(()),
                }
            });
            let name = match (removed, policy_removed) {
                (Ok(name), Ok(_)) => name,
                (Err(e), _) => return Err(e),
                (Ok(_), Err(e)) => return Err(e),
            };
            let record = json!({
                "Name": name,
                "Removed": true,
                "MaildirKept": paths.maildir_root.join(&name).display().to_string(),
            });
            Ok(output::render(
                &[record],
                output.format(Format::List),
                &[],
                true,
            ))
        }
        C::SetMailboxPassword {
            identity,
            password_stdin,
            output,
        } => {
            let (password, generated) = new_password(*password_stdin)?;
            let name = users::set_mailbox_password(&paths.users_file, identity, &password)?;
            let mut record = json!({"Name": name, "PasswordChanged": true});
            if generated && let Value::Object(m) = &mut record {
                m.insert("Password".into(), json!(password));
            }
            Ok(output::render(
                &[record],
                output.format(Format::List),
                &[],
                true,
            ))
        }
        // They stream their steps and have their own exit statuses: `main` hands them to
        // `connectivity::main` before admin commands run.
        C::Connectivity(test) => Err(AdminError::InvalidArgument {
            parameter: "Command",
            message: format!("{} runs through connectivity::main", test.name()),
        }),
    }
}

fn no_setting(example: &str) -> AdminError {
    AdminError::InvalidArgument {
        parameter: "Parameters",
        message: format!("give at least one setting, e.g. {example}"),
    }
}

fn user_exists(paths: &Paths, user: &str) -> bool {
    std::fs::read_to_string(&paths.users_file)
        .ok()
        .and_then(|t| cas_auth::FileCredentialStore::parse(&t).ok())
        .is_some_and(|s| s.account(user).is_some())
}

fn outlook_anywhere(config: &PolicyConfig, output: &OutputArgs) -> String {
    output::render(
        &[to_value(&config.outlook_anywhere)],
        output.format(Format::List),
        &[],
        true,
    )
}

/// Runs `command`, printing the result to stdout or the error to stderr; returns whether it
/// succeeded.
pub fn main(command: &AdminCommand, paths: &Paths) -> bool {
    match run(command, paths) {
        Ok(text) => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
            true
        }
        Err(e) => {
            eprintln!("cas-server {}: {e}", command_name(command));
            false
        }
    }
}

fn command_name(command: &AdminCommand) -> &'static str {
    use AdminCommand as C;
    match command {
        C::GetCasMailbox { .. } => "get-casmailbox",
        C::SetCasMailbox { .. } => "set-casmailbox",
        C::GetPopSettings { .. } => "get-popsettings",
        C::SetPopSettings { .. } => "set-popsettings",
        C::GetImapSettings { .. } => "get-imapsettings",
        C::SetImapSettings { .. } => "set-imapsettings",
        C::GetOutlookAnywhere { .. } => "get-outlookanywhere",
        C::EnableOutlookAnywhere { .. } => "enable-outlookanywhere",
        C::SetOutlookAnywhere { .. } => "set-outlookanywhere",
        C::DisableOutlookAnywhere { .. } => "disable-outlookanywhere",
        C::NewMailbox { .. } => "new-mailbox",
        C::RemoveMailbox { .. } => "remove-mailbox",
        C::SetMailboxPassword { .. } => "set-mailbox-password",
        C::Connectivity(test) => test.name(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enumeration_names_match_the_policy_crate() {
        for n in MIME_FORMATS {
            let _: cas_policy::MimeFormat = enum_value(n);
        }
        for n in LOGIN_TYPES {
            let _: cas_policy::LoginType = enum_value(n);
        }
        for n in SORT_ORDERS {
            let _: cas_policy::SortOrder = enum_value(n);
        }
        for n in CALENDAR_OPTIONS {
            let _: cas_policy::CalendarItemRetrievalOption = enum_value(n);
        }
        for n in EXTENDED_PROTECTION {
            let _: cas_policy::ExtendedProtectionPolicy = enum_value(n);
        }
        for n in HTTP_AUTH {
            let _: cas_policy::HttpAuthMethod = enum_value(n);
        }
        for n in ROLL_OVER {
            let _: cas_policy::LogFileRollOver = enum_value(n);
        }
    }

    fn parse(args: &[&str]) -> AdminCommand {
        use clap::Parser;
        let mut argv = vec!["cas-server"];
        argv.extend(args);
        crate::config::Cli::try_parse_from(argv)
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .command
            .unwrap()
    }

    #[test]
    fn every_parameter_parses() {
        use clap::CommandFactory;
        crate::config::Cli::command().debug_assert();
        let AdminCommand::SetCasMailbox { settings, .. } = parse(&[
            "set-casmailbox",
            "--ou",
            "corp",
            "--pop-enabled",
            "false",
            "--imap-enabled",
            "$true",
            "--mapi-enabled",
            "true",
            "--mapi-block-outlook-rpc-http",
            "true",
            "--mapi-block-outlook-non-cached-mode",
            "true",
            "--mapi-block-outlook-versions",
            "-13.32767.65535;15.0.0-",
            "--mapi-http-enabled",
            "$null",
            "--owa-enabled",
            "false",
            "--active-sync-enabled",
            "false",
            "--ews-enabled",
            "false",
            "--pop-use-protocol-defaults",
            "false",
            "--pop-messages-retrieval-mime-format",
            "textonly",
            "--pop-enable-exact-rfc822-size",
            "true",
            "--pop-suppress-read-receipt",
            "true",
            "--pop-force-ical-for-calendar-retrieval-option",
            "true",
            "--imap-use-protocol-defaults",
            "false",
            "--imap-messages-retrieval-mime-format",
            "Tnef",
            "--imap-enable-exact-rfc822-size",
            "true",
            "--imap-suppress-read-receipt",
            "true",
            "--imap-force-ical-for-calendar-retrieval-option",
            "true",
        ]) else {
            panic!("wrong command")
        };
        let change = settings.change().unwrap();
        assert_eq!(change.pop_enabled, Some(false));
        assert_eq!(change.mapi_http_enabled, Some(None));
        assert_eq!(
            change.imap_messages_retrieval_mime_format,
            Some(cas_policy::MimeFormat::Tnef)
        );
        assert!(change.mapi_block_outlook_versions.is_some());
        let AdminCommand::SetPopSettings { settings, .. } = parse(&[
            "set-popsettings",
            "--login-type",
            "securelogin",
            "--max-connections",
            "100",
            "--max-connection-from-single-ip",
            "2",
            "--max-connections-per-user",
            "16",
            "--pre-authenticated-connection-timeout",
            "00:01:00",
            "--authenticated-connection-timeout",
            "1800",
            "--max-command-size",
            "512",
            "--enable-exact-rfc822-size",
            "true",
            "--message-retrieval-mime-format",
            "HtmlOnly",
            "--suppress-read-receipt",
            "true",
            "--calendar-item-retrieval-option",
            "iCalendar",
            "--banner",
            "hello",
            "--protocol-log-enabled",
            "true",
            "--log-file-location",
            "",
            "--log-file-roll-over-settings",
            "hourly",
            "--log-per-file-size-quota",
            "1000000",
            "--enable-gssapi-and-ntlm-auth",
            "false",
            "--extended-protection-policy",
            "Require",
            "--x509-certificate-name",
            "mail.example.com",
            "--unencrypted-or-tls-bindings",
            "0.0.0.0:110,[::]:110",
            "--ssl-bindings",
            "0.0.0.0:995",
            "--message-retrieval-sort-order",
            "Descending",
        ]) else {
            panic!("wrong command")
        };
        let change = settings_change!(
            &settings,
            PopSettingsChange {
                message_retrieval_sort_order: None,
            }
        );
        assert_eq!(change.banner, Some(Some("hello".into())));
        assert_eq!(change.log_file_location, Some(None));
        assert_eq!(change.unencrypted_or_tls_bindings.unwrap().len(), 2);
        let AdminCommand::EnableOutlookAnywhere { settings, .. } = parse(&[
            "enable-outlookanywhere",
            "--external-hostname",
            "mail.example.com",
            "--internal-hostname",
            "$null",
            "--default-authentication-method",
            "ntlm",
            "--external-client-authentication-method",
            "Negotiate",
            "--internal-client-authentication-method",
            "Ntlm",
            "--iis-authentication-methods",
            "Basic,Ntlm,Negotiate",
            "--ssl-offloading",
            "false",
            "--external-clients-require-ssl",
            "true",
            "--internal-clients-require-ssl",
            "false",
            "--valid-ports",
            "*:6001-6004,*:593",
        ]) else {
            panic!("wrong command")
        };
        let change = settings.change(Some(true));
        assert_eq!(
            change.external_hostname,
            Some(Some("mail.example.com".into()))
        );
        assert_eq!(change.internal_hostname, Some(None));
        assert_eq!(change.iis_authentication_methods.unwrap().len(), 3);
        assert_eq!(change.valid_ports.unwrap().len(), 2);
        for args in [
            &["get-casmailbox", "--ou", "corp", "--json"][..],
            &["get-casmailbox", "alice", "--format", "list"],
            &["get-imapsettings", "--format", "table"],
            &["set-imapsettings", "--show-hidden-folders-enabled", "true"],
            &["get-outlookanywhere"],
            &["disable-outlookanywhere"],
            &["set-outlookanywhere", "--ssl-offloading", "true"],
            &[
                "new-mailbox",
                "carol",
                "--ou",
                "corp/sales",
                "--password-stdin",
            ],
            &["remove-mailbox", "carol"],
            &["set-mailbox-password", "carol", "--password-stdin"],
        ] {
            parse(args);
        }
    }

    #[test]
    fn enumeration_values_ignore_case() {
        let v: cas_policy::SortOrder = enum_value("descending");
        assert_eq!(v, cas_policy::SortOrder::Descending);
        let v: cas_policy::LoginType = enum_value("PLAINTEXTLOGIN");
        assert_eq!(v, cas_policy::LoginType::PlainTextLogin);
        let v: cas_policy::CalendarItemRetrievalOption = enum_value("icalendar");
        assert_eq!(v, cas_policy::CalendarItemRetrievalOption::ICalendar);
    }

    #[test]
    fn booleans() {
        assert_eq!(parse_bool("$False"), Ok(false));
        assert_eq!(parse_bool("TRUE"), Ok(true));
        assert!(parse_bool("maybe").is_err());
        assert_eq!(parse_opt_bool("$null"), Ok(None));
        assert_eq!(parse_opt_bool("false"), Ok(Some(false)));
    }
}
