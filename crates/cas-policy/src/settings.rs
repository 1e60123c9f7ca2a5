//! Server-wide scopes: `Set-OrganizationConfig`, `Set-PopSettings`, `Set-ImapSettings`
//! and `Set-OutlookAnywhere`.
//!
//! Defaults and ranges are Exchange Server 2013–2019's, from the learn.microsoft.com
//! pages of those cmdlets; where Exchange 2010 differed the field docs say so.
//! Sources: "Set connection limits for IMAP4" (Exchange 2013, bb123712: connection
//! limits 1–2,147,483,647 with defaults 2,147,483,647 / 2,147,483,647 / 16, IMAP
//! `MaxCommandSize` 1,024–16,384 default 10,240; the Exchange 2010 page lists 2,000 and
//! 16), the `Set-PopSettings` / `Set-ImapSettings` references (timeouts, POP
//! `MaxCommandSize` 40–1,024 default 512, `CalendarItemRetrievalOption` values),
//! "Configuring Authentication for POP3 and IMAP4" (aa997188, `LoginType`) and the
//! `Set-OutlookAnywhere` reference (`SSLOffloading` defaults to `$true`).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::net::{ANY_V4, ANY_V6, RpcPortRange, validate_host_name};
use crate::protocol::{
    CalendarItemRetrievalOption, ExtendedProtectionPolicy, HttpAuthMethod, LoginType, MimeFormat,
    SortOrder,
};
use crate::{ConfigError, TimeSpan};

/// Largest value of Exchange's connection-count parameters (`Int32.MaxValue`).
pub const MAX_CONNECTION_LIMIT: u32 = 2_147_483_647;
/// Longest accepted `Banner`, in bytes; one protocol line must hold it.
pub const MAX_BANNER_LEN: usize = 256;
/// Most entries in a bindings or `ValidPorts` list.
pub const MAX_LIST_ENTRIES: usize = 64;

/// `PreAuthenticatedConnectionTimeout`: 00:00:10 to 01:00:00, default 00:01:00.
pub const PRE_AUTH_TIMEOUT_RANGE: (TimeSpan, TimeSpan) =
    (TimeSpan::from_secs(10), TimeSpan::from_secs(3_600));
/// `AuthenticatedConnectionTimeout`: 00:00:30 to 1.00:00:00, default 00:30:00.
pub const AUTH_TIMEOUT_RANGE: (TimeSpan, TimeSpan) =
    (TimeSpan::from_secs(30), TimeSpan::from_secs(86_400));
/// POP3 `MaxCommandSize`: 40 to 1024 bytes, default 512.
pub const POP_MAX_COMMAND_SIZE_RANGE: (u32, u32) = (40, 1024);
/// IMAP4 `MaxCommandSize`: 1024 to 16384 bytes, default 10240.
pub const IMAP_MAX_COMMAND_SIZE_RANGE: (u32, u32) = (1024, 16_384);

pub(crate) fn check_u32(key: &str, value: u32, (low, high): (u32, u32)) -> Result<(), ConfigError> {
    if (low..=high).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::out_of_range(
            key,
            value,
            format!("{low}..={high}"),
        ))
    }
}

pub(crate) fn check_span(
    key: &str,
    value: TimeSpan,
    (low, high): (TimeSpan, TimeSpan),
) -> Result<(), ConfigError> {
    if (low..=high).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::out_of_range(
            key,
            value,
            format!("{low} to {high}"),
        ))
    }
}

fn check_banner(key: &str, banner: &Option<String>) -> Result<(), ConfigError> {
    let Some(b) = banner else { return Ok(()) };
    if b.len() > MAX_BANNER_LEN {
        return Err(ConfigError::out_of_range(
            key,
            format!("{} bytes", b.len()),
            format!("at most {MAX_BANNER_LEN} bytes"),
        ));
    }
    if b.chars().any(char::is_control) {
        // A CR or LF would let the banner inject protocol lines.
        return Err(ConfigError::invalid(
            key,
            b.as_str(),
            "control characters (CR, LF, ...) are not allowed",
        ));
    }
    Ok(())
}

/// Largest `LogPerFileSizeQuota` (4 GiB).
pub const MAX_LOG_FILE_SIZE_QUOTA: u64 = 4 << 30;
/// Longest `LogFileLocation`, in bytes.
pub const MAX_LOG_LOCATION_LEN: usize = 1024;

fn check_log_location(key: &str, location: &Option<String>) -> Result<(), ConfigError> {
    let Some(l) = location else { return Ok(()) };
    if l.is_empty() || l.len() > MAX_LOG_LOCATION_LEN || l.chars().any(char::is_control) {
        return Err(ConfigError::invalid(
            key,
            l.as_str(),
            "a path of 1 to 1024 bytes without control characters",
        ));
    }
    Ok(())
}

/// `LogFileRollOverSettings`: how often the protocol log starts a new file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum LogFileRollOver {
    /// Every hour.
    Hourly,
    /// Every day.
    #[default]
    Daily,
    /// Every week.
    Weekly,
    /// Every month.
    Monthly,
}

crate::protocol::exchange_names!(
    LogFileRollOver,
    "LogFileRollOverSettings",
    [
        Hourly = "Hourly",
        Daily = "Daily",
        Weekly = "Weekly",
        Monthly = "Monthly"
    ]
);

fn check_bindings(key: &str, bindings: &[SocketAddr]) -> Result<(), ConfigError> {
    if bindings.len() > MAX_LIST_ENTRIES {
        return Err(ConfigError::out_of_range(
            key,
            format!("{} entries", bindings.len()),
            format!("at most {MAX_LIST_ENTRIES} entries"),
        ));
    }
    for (i, b) in bindings.iter().enumerate() {
        if b.port() == 0 {
            return Err(ConfigError::invalid(
                key,
                b.to_string(),
                "a binding needs a port 1-65535",
            ));
        }
        if bindings[..i].contains(b) {
            return Err(ConfigError::invalid(key, b.to_string(), "listed twice"));
        }
    }
    Ok(())
}

fn check_optional_host(key: &str, host: &Option<String>) -> Result<(), ConfigError> {
    match host {
        Some(h) => validate_host_name(key, h),
        None => Ok(()),
    }
}

/// Organization-wide settings (`[Organization]`, from `Set-OrganizationConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OrganizationSettings {
    /// `MapiHttpEnabled`: whether MAPI over HTTP is on for mailboxes that do not set
    /// their own `MapiHttpEnabled`. Default true (Exchange 2016 and later).
    #[serde(rename = "MapiHttpEnabled")]
    pub mapi_http_enabled: bool,
}

impl Default for OrganizationSettings {
    fn default() -> Self {
        OrganizationSettings {
            mapi_http_enabled: true,
        }
    }
}

macro_rules! protocol_settings {
    (
        $(#[$meta:meta])*
        $name:ident, $change:ident, $section:literal, $cmd_range:ident, $cmd_default:expr,
        $plain_port:expr, $tls_port:expr,
        { $( $(#[$xmeta:meta])* $xfield:ident : $xty:ty = $xkey:literal, $xdefault:expr; )* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct $name {
            /// `LoginType`: when clear-text credentials may be used; default `SecureLogin`.
            #[serde(rename = "LoginType")]
            pub login_type: LoginType,
            /// `MaxConnections`: concurrent connections to the service, 1 to
            /// 2147483647, default 2147483647 (Exchange 2010: 2000).
            #[serde(rename = "MaxConnections")]
            pub max_connections: u32,
            /// `MaxConnectionFromSingleIP`: concurrent connections from one client
            /// address (an IPv6 /64, see [`client_key`](crate::client_key)), 1 to
            /// 2147483647, default 2147483647 (Exchange 2010: 20).
            #[serde(rename = "MaxConnectionFromSingleIP")]
            pub max_connection_from_single_ip: u32,
            /// `MaxConnectionsPerUser`: concurrent authenticated connections of one
            /// user, 1 to 2147483647, default 16 (Exchange 2010: 10).
            #[serde(rename = "MaxConnectionsPerUser")]
            pub max_connections_per_user: u32,
            /// `PreAuthenticatedConnectionTimeout`: idle time allowed before
            /// authentication, 00:00:10 to 01:00:00, default 00:01:00.
            #[serde(rename = "PreAuthenticatedConnectionTimeout")]
            pub pre_authenticated_connection_timeout: TimeSpan,
            /// `AuthenticatedConnectionTimeout`: idle time allowed after
            /// authentication, 00:00:30 to 1.00:00:00, default 00:30:00.
            #[serde(rename = "AuthenticatedConnectionTimeout")]
            pub authenticated_connection_timeout: TimeSpan,
            /// `MaxCommandSize`: longest command line in bytes.
            #[serde(rename = "MaxCommandSize")]
            pub max_command_size: u32,
            /// `EnableExactRFC822Size`: report exact message sizes (costs a conversion);
            /// default false (estimated sizes).
            #[serde(rename = "EnableExactRFC822Size")]
            pub enable_exact_rfc822_size: bool,
            /// `MessageRetrievalMimeFormat`: body format of retrieved messages; default
            /// `BestBodyFormat`.
            #[serde(rename = "MessageRetrievalMimeFormat")]
            pub message_retrieval_mime_format: MimeFormat,
            /// `SuppressReadReceipt`: do not send read receipts when a message is
            /// retrieved; default false.
            #[serde(rename = "SuppressReadReceipt")]
            pub suppress_read_receipt: bool,
            /// `CalendarItemRetrievalOption`: how calendar items are presented; default
            /// `iCalendar`.
            #[serde(rename = "CalendarItemRetrievalOption")]
            pub calendar_item_retrieval_option: CalendarItemRetrievalOption,
            /// `Banner`: greeting text; unset means the server's own. At most
            /// 256 bytes, no control characters.
            #[serde(rename = "Banner", skip_serializing_if = "Option::is_none")]
            pub banner: Option<String>,
            /// `ProtocolLogEnabled`: write a protocol log; default false.
            #[serde(rename = "ProtocolLogEnabled")]
            pub protocol_log_enabled: bool,
            /// `LogFileLocation`: directory of the protocol log; unset means the
            /// server's default. The server interprets the path.
            #[serde(rename = "LogFileLocation", skip_serializing_if = "Option::is_none")]
            pub log_file_location: Option<String>,
            /// `LogFileRollOverSettings`: when the protocol log starts a new file;
            /// default `Daily`.
            #[serde(rename = "LogFileRollOverSettings")]
            pub log_file_roll_over_settings: LogFileRollOver,
            /// `LogPerFileSizeQuota`: bytes after which the protocol log starts a new
            /// file; 0 (Exchange's `Unlimited`, the default) means no size limit. At most
            /// 4 GiB.
            #[serde(rename = "LogPerFileSizeQuota")]
            pub log_per_file_size_quota: u64,
            /// `EnableGSSAPIAndNTLMAuth`: offer the integrated Windows mechanisms (NTLM,
            /// GSSAPI); default true.
            #[serde(rename = "EnableGSSAPIAndNTLMAuth")]
            pub enable_gssapi_and_ntlm_auth: bool,
            /// `ExtendedProtectionPolicy`: channel binding for NTLM/GSSAPI; default `None`.
            #[serde(rename = "ExtendedProtectionPolicy")]
            pub extended_protection_policy: ExtendedProtectionPolicy,
            /// `X509CertificateName`: host name of the certificate to present; unset
            /// means the server's default certificate.
            #[serde(rename = "X509CertificateName", skip_serializing_if = "Option::is_none")]
            pub x509_certificate_name: Option<String>,
            /// `UnencryptedOrTLSBindings`: plain-text listeners (with STARTTLS/STLS).
            #[serde(rename = "UnencryptedOrTLSBindings")]
            pub unencrypted_or_tls_bindings: Vec<SocketAddr>,
            /// `SSLBindings`: implicit-TLS listeners.
            #[serde(rename = "SSLBindings")]
            pub ssl_bindings: Vec<SocketAddr>,
            $( $(#[$xmeta])* #[serde(rename = $xkey)] pub $xfield: $xty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name {
                    login_type: LoginType::SecureLogin,
                    max_connections: MAX_CONNECTION_LIMIT,
                    max_connection_from_single_ip: MAX_CONNECTION_LIMIT,
                    max_connections_per_user: 16,
                    pre_authenticated_connection_timeout: TimeSpan::from_secs(60),
                    authenticated_connection_timeout: TimeSpan::from_secs(1_800),
                    max_command_size: $cmd_default,
                    enable_exact_rfc822_size: false,
                    message_retrieval_mime_format: MimeFormat::BestBodyFormat,
                    suppress_read_receipt: false,
                    calendar_item_retrieval_option: CalendarItemRetrievalOption::ICalendar,
                    banner: None,
                    protocol_log_enabled: false,
                    log_file_location: None,
                    log_file_roll_over_settings: LogFileRollOver::Daily,
                    log_per_file_size_quota: 0,
                    enable_gssapi_and_ntlm_auth: true,
                    extended_protection_policy: ExtendedProtectionPolicy::None,
                    x509_certificate_name: None,
                    unencrypted_or_tls_bindings: vec![
                        SocketAddr::new(ANY_V6, $plain_port),
                        SocketAddr::new(ANY_V4, $plain_port),
                    ],
                    ssl_bindings: vec![
                        SocketAddr::new(ANY_V6, $tls_port),
                        SocketAddr::new(ANY_V4, $tls_port),
                    ],
                    $( $xfield: $xdefault, )*
                }
            }
        }

        impl $name {
            /// Checks every value against Exchange's ranges; the error names the key as
            #[doc = concat!("`", $section, ".<Key>`.")]
            pub fn validate(&self) -> Result<(), ConfigError> {
                let key = |k: &str| format!("{}.{}", $section, k);
                let limit = (1, MAX_CONNECTION_LIMIT);
                check_u32(&key("MaxConnections"), self.max_connections, limit)?;
                check_u32(&key("MaxConnectionFromSingleIP"), self.max_connection_from_single_ip, limit)?;
                check_u32(&key("MaxConnectionsPerUser"), self.max_connections_per_user, limit)?;
                check_span(&key("PreAuthenticatedConnectionTimeout"), self.pre_authenticated_connection_timeout, PRE_AUTH_TIMEOUT_RANGE)?;
                check_span(&key("AuthenticatedConnectionTimeout"), self.authenticated_connection_timeout, AUTH_TIMEOUT_RANGE)?;
                check_u32(&key("MaxCommandSize"), self.max_command_size, $cmd_range)?;
                check_banner(&key("Banner"), &self.banner)?;
                check_log_location(&key("LogFileLocation"), &self.log_file_location)?;
                if self.log_per_file_size_quota > MAX_LOG_FILE_SIZE_QUOTA {
                    return Err(ConfigError::out_of_range(key("LogPerFileSizeQuota"), self.log_per_file_size_quota, format!("0 (unlimited)..={MAX_LOG_FILE_SIZE_QUOTA}")));
                }
                check_optional_host(&key("X509CertificateName"), &self.x509_certificate_name)?;
                check_bindings(&key("UnencryptedOrTLSBindings"), &self.unencrypted_or_tls_bindings)?;
                check_bindings(&key("SSLBindings"), &self.ssl_bindings)?;
                Ok(())
            }

            /// Applies a change (only the fields it sets) and validates the result; on
            /// error `self` is left unchanged.
            pub fn apply(&mut self, change: &$change) -> Result<(), ConfigError> {
                let mut next = self.clone();
                if let Some(v) = change.login_type { next.login_type = v; }
                if let Some(v) = change.max_connections { next.max_connections = v; }
                if let Some(v) = change.max_connection_from_single_ip { next.max_connection_from_single_ip = v; }
                if let Some(v) = change.max_connections_per_user { next.max_connections_per_user = v; }
                if let Some(v) = change.pre_authenticated_connection_timeout { next.pre_authenticated_connection_timeout = v; }
                if let Some(v) = change.authenticated_connection_timeout { next.authenticated_connection_timeout = v; }
                if let Some(v) = change.max_command_size { next.max_command_size = v; }
                if let Some(v) = change.enable_exact_rfc822_size { next.enable_exact_rfc822_size = v; }
                if let Some(v) = change.message_retrieval_mime_format { next.message_retrieval_mime_format = v; }
                if let Some(v) = change.suppress_read_receipt { next.suppress_read_receipt = v; }
                if let Some(v) = change.calendar_item_retrieval_option { next.calendar_item_retrieval_option = v; }
                if let Some(v) = &change.banner { next.banner = v.clone(); }
                if let Some(v) = change.protocol_log_enabled { next.protocol_log_enabled = v; }
                if let Some(v) = &change.log_file_location { next.log_file_location = v.clone(); }
                if let Some(v) = change.log_file_roll_over_settings { next.log_file_roll_over_settings = v; }
                if let Some(v) = change.log_per_file_size_quota { next.log_per_file_size_quota = v; }
                if let Some(v) = change.enable_gssapi_and_ntlm_auth { next.enable_gssapi_and_ntlm_auth = v; }
                if let Some(v) = change.extended_protection_policy { next.extended_protection_policy = v; }
                if let Some(v) = &change.x509_certificate_name { next.x509_certificate_name = v.clone(); }
                if let Some(v) = &change.unencrypted_or_tls_bindings { next.unencrypted_or_tls_bindings = v.clone(); }
                if let Some(v) = &change.ssl_bindings { next.ssl_bindings = v.clone(); }
                $( if let Some(v) = &change.$xfield { next.$xfield = v.clone(); } )*
                next.validate()?;
                *self = next;
                Ok(())
            }
        }

        #[doc = concat!("A partial update of [`", stringify!($name), "`]: `None` leaves a value as it is.")]
        ///
        /// For the optional values (`banner`, `x509_certificate_name`), `Some(None)`
        /// clears the value and `Some(Some(v))` sets it.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct $change {
            /// New `LoginType`.
            pub login_type: Option<LoginType>,
            /// New `MaxConnections`.
            pub max_connections: Option<u32>,
            /// New `MaxConnectionFromSingleIP`.
            pub max_connection_from_single_ip: Option<u32>,
            /// New `MaxConnectionsPerUser`.
            pub max_connections_per_user: Option<u32>,
            /// New `PreAuthenticatedConnectionTimeout`.
            pub pre_authenticated_connection_timeout: Option<TimeSpan>,
            /// New `AuthenticatedConnectionTimeout`.
            pub authenticated_connection_timeout: Option<TimeSpan>,
            /// New `MaxCommandSize`.
            pub max_command_size: Option<u32>,
            /// New `EnableExactRFC822Size`.
            pub enable_exact_rfc822_size: Option<bool>,
            /// New `MessageRetrievalMimeFormat`.
            pub message_retrieval_mime_format: Option<MimeFormat>,
            /// New `SuppressReadReceipt`.
            pub suppress_read_receipt: Option<bool>,
            /// New `CalendarItemRetrievalOption`.
            pub calendar_item_retrieval_option: Option<CalendarItemRetrievalOption>,
            /// New `Banner`.
            pub banner: Option<Option<String>>,
            /// New `ProtocolLogEnabled`.
            pub protocol_log_enabled: Option<bool>,
            /// New `LogFileLocation`.
            pub log_file_location: Option<Option<String>>,
            /// New `LogFileRollOverSettings`.
            pub log_file_roll_over_settings: Option<LogFileRollOver>,
            /// New `LogPerFileSizeQuota`.
            pub log_per_file_size_quota: Option<u64>,
            /// New `EnableGSSAPIAndNTLMAuth`.
            pub enable_gssapi_and_ntlm_auth: Option<bool>,
            /// New `ExtendedProtectionPolicy`.
            pub extended_protection_policy: Option<ExtendedProtectionPolicy>,
            /// New `X509CertificateName`.
            pub x509_certificate_name: Option<Option<String>>,
            /// New `UnencryptedOrTLSBindings`.
            pub unencrypted_or_tls_bindings: Option<Vec<SocketAddr>>,
            /// New `SSLBindings`.
            pub ssl_bindings: Option<Vec<SocketAddr>>,
            $( #[doc = concat!("New `", $xkey, "`.")] pub $xfield: Option<$xty>, )*
        }
    };
}

protocol_settings! {
    /// POP3 service settings (`[PopSettings]`, from `Set-PopSettings`).
    ///
    /// Default bindings: `[::]:110`, `0.0.0.0:110` and `[::]:995`, `0.0.0.0:995`.
    /// `MaxCommandSize`: 40 to 1024, default 512.
    PopSettings, PopSettingsChange, "PopSettings", POP_MAX_COMMAND_SIZE_RANGE, 512, 110, 995,
    {
        /// `MessageRetrievalSortOrder`: order of the message list; default `Ascending`.
        message_retrieval_sort_order: SortOrder = "MessageRetrievalSortOrder", SortOrder::Ascending;
    }
}

protocol_settings! {
    /// IMAP4 service settings (`[ImapSettings]`, from `Set-ImapSettings`).
    ///
    /// Default bindings: `[::]:143`, `0.0.0.0:143` and `[::]:993`, `0.0.0.0:993`.
    /// `MaxCommandSize`: 1024 to 16384, default 10240.
    ImapSettings, ImapSettingsChange, "ImapSettings", IMAP_MAX_COMMAND_SIZE_RANGE, 10_240, 143, 993,
    {
        /// `ShowHiddenFoldersEnabled`: list folders marked hidden; default false.
        show_hidden_folders_enabled: bool = "ShowHiddenFoldersEnabled", false;
    }
}

/// Outlook Anywhere settings (`[OutlookAnywhere]`, from `Enable-OutlookAnywhere`,
/// `Set-OutlookAnywhere` and `Disable-OutlookAnywhere`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutlookAnywhereSettings {
    /// `Enabled`: whether the RPC over HTTP proxy serves clients (`Enable-` /
    /// `Disable-OutlookAnywhere`). Default true: Exchange 2013 and later always have it on
    /// (Exchange 2010 shipped it off).
    #[serde(rename = "Enabled")]
    pub enabled: bool,
    /// `ExternalHostname`: the name clients outside the network use.
    #[serde(rename = "ExternalHostname", skip_serializing_if = "Option::is_none")]
    pub external_hostname: Option<String>,
    /// `InternalHostname`: the name clients inside the network use.
    #[serde(rename = "InternalHostname", skip_serializing_if = "Option::is_none")]
    pub internal_hostname: Option<String>,
    /// `ExternalClientAuthenticationMethod`: what Autodiscover tells external clients
    /// to use; default `Negotiate`. Must be one of `IISAuthenticationMethods`.
    #[serde(rename = "ExternalClientAuthenticationMethod")]
    pub external_client_authentication_method: HttpAuthMethod,
    /// `InternalClientAuthenticationMethod`: the same for internal clients; default
    /// `Ntlm`. Must be one of `IISAuthenticationMethods`.
    #[serde(rename = "InternalClientAuthenticationMethod")]
    pub internal_client_authentication_method: HttpAuthMethod,
    /// `IISAuthenticationMethods`: the methods the proxy accepts; default `Basic`,
    /// `Ntlm`, `Negotiate`. Not empty, no repeats.
    #[serde(rename = "IISAuthenticationMethods")]
    pub iis_authentication_methods: Vec<HttpAuthMethod>,
    /// `SSLOffloading`: TLS is terminated in front of the server, so plain HTTP is
    /// accepted as if it were HTTPS; default true.
    #[serde(rename = "SSLOffloading")]
    pub ssl_offloading: bool,
    /// `ExternalClientsRequireSsl`: clients must use HTTPS; default false.
    #[serde(rename = "ExternalClientsRequireSsl")]
    pub external_clients_require_ssl: bool,
    /// `InternalClientsRequireSsl`: the same for internal clients; default false.
    #[serde(rename = "InternalClientsRequireSsl")]
    pub internal_clients_require_ssl: bool,
    /// `ValidPorts`: the back-end `server:ports` the proxy may reach. Default: this
    /// machine only (`localhost` and `127.0.0.1` on 6001-6004, Exchange's RPC ports, and
    /// 593, the endpoint mapper), as Exchange fills it with the local server's names. A
    /// `*` server lets every authenticated user reach any host on those ports.
    #[serde(rename = "ValidPorts")]
    pub valid_ports: Vec<RpcPortRange>,
}

impl Default for OutlookAnywhereSettings {
    fn default() -> Self {
        OutlookAnywhereSettings {
            enabled: true,
            external_hostname: None,
            internal_hostname: None,
            external_client_authentication_method: HttpAuthMethod::Negotiate,
            internal_client_authentication_method: HttpAuthMethod::Ntlm,
            iis_authentication_methods: vec![
                HttpAuthMethod::Basic,
                HttpAuthMethod::Ntlm,
                HttpAuthMethod::Negotiate,
            ],
            ssl_offloading: true,
            external_clients_require_ssl: false,
            internal_clients_require_ssl: false,
            valid_ports: ["localhost", "127.0.0.1"]
                .into_iter()
                .flat_map(|server| {
                    [(6001, 6004), (593, 593)].map(|(low, high)| RpcPortRange {
                        server: server.into(),
                        low,
                        high,
                    })
                })
                .collect(),
        }
    }
}

impl OutlookAnywhereSettings {
    /// Checks the values; the error names the key as `OutlookAnywhere.<Key>`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        const S: &str = "OutlookAnywhere";
        check_optional_host(&format!("{S}.ExternalHostname"), &self.external_hostname)?;
        check_optional_host(&format!("{S}.InternalHostname"), &self.internal_hostname)?;
        let iis = &self.iis_authentication_methods;
        let key = format!("{S}.IISAuthenticationMethods");
        if iis.is_empty() {
            return Err(ConfigError::invalid(
                key,
                "[]",
                "at least one of Basic, Ntlm, Negotiate",
            ));
        }
        for (i, m) in iis.iter().enumerate() {
            if iis[..i].contains(m) {
                return Err(ConfigError::invalid(key, format!("{m:?}"), "listed twice"));
            }
        }
        for (name, m) in [
            (
                "ExternalClientAuthenticationMethod",
                self.external_client_authentication_method,
            ),
            (
                "InternalClientAuthenticationMethod",
                self.internal_client_authentication_method,
            ),
        ] {
            if !iis.contains(&m) {
                return Err(ConfigError::invalid(
                    format!("{S}.{name}"),
                    format!("{m:?}"),
                    "must be one of IISAuthenticationMethods",
                ));
            }
        }
        let key = format!("{S}.ValidPorts");
        if self.valid_ports.len() > MAX_LIST_ENTRIES {
            return Err(ConfigError::out_of_range(
                key,
                format!("{} entries", self.valid_ports.len()),
                format!("at most {MAX_LIST_ENTRIES} entries"),
            ));
        }
        for p in &self.valid_ports {
            // Entries built in code skip the parser; re-check them.
            if RpcPortRange::parse(&p.to_string()).as_ref() != Ok(p) {
                return Err(ConfigError::invalid(
                    key,
                    p.to_string(),
                    "expected server:port or server:low-high",
                ));
            }
        }
        Ok(())
    }

    /// Whether the proxy may forward a request for `server:port` (`ValidPorts`).
    pub fn allows_rpc_target(&self, server: &str, port: u16) -> bool {
        self.valid_ports.iter().any(|p| p.allows(server, port))
    }

    /// Applies a change and validates the result; on error `self` is unchanged.
    pub fn apply(&mut self, change: &OutlookAnywhereChange) -> Result<(), ConfigError> {
        let mut next = self.clone();
        if let Some(v) = change.enabled {
            next.enabled = v;
        }
        if let Some(v) = &change.external_hostname {
            next.external_hostname = v.clone();
        }
        if let Some(v) = &change.internal_hostname {
            next.internal_hostname = v.clone();
        }
        if let Some(v) = change.default_authentication_method {
            // Enable-OutlookAnywhere -DefaultAuthenticationMethod sets the client
            // methods and narrows IIS to that one method.
            next.external_client_authentication_method = v;
            next.internal_client_authentication_method = v;
            next.iis_authentication_methods = vec![v];
        }
        if let Some(v) = change.external_client_authentication_method {
            next.external_client_authentication_method = v;
        }
        if let Some(v) = change.internal_client_authentication_method {
            next.internal_client_authentication_method = v;
        }
        if let Some(v) = &change.iis_authentication_methods {
            next.iis_authentication_methods = v.clone();
        }
        if let Some(v) = change.ssl_offloading {
            next.ssl_offloading = v;
        }
        if let Some(v) = change.external_clients_require_ssl {
            next.external_clients_require_ssl = v;
        }
        if let Some(v) = change.internal_clients_require_ssl {
            next.internal_clients_require_ssl = v;
        }
        if let Some(v) = &change.valid_ports {
            next.valid_ports = v.clone();
        }
        next.validate()?;
        *self = next;
        Ok(())
    }
}

/// A partial update of [`OutlookAnywhereSettings`]: `None` leaves a value as it is;
/// for host names `Some(None)` clears and `Some(Some(name))` sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutlookAnywhereChange {
    /// New `Enabled`.
    pub enabled: Option<bool>,
    /// New `ExternalHostname`.
    pub external_hostname: Option<Option<String>>,
    /// New `InternalHostname`.
    pub internal_hostname: Option<Option<String>>,
    /// `Enable-OutlookAnywhere -DefaultAuthenticationMethod`: sets both client methods
    /// and `IISAuthenticationMethods` to this one method (applied before the others).
    pub default_authentication_method: Option<HttpAuthMethod>,
    /// New `ExternalClientAuthenticationMethod`.
    pub external_client_authentication_method: Option<HttpAuthMethod>,
    /// New `InternalClientAuthenticationMethod`.
    pub internal_client_authentication_method: Option<HttpAuthMethod>,
    /// New `IISAuthenticationMethods`.
    pub iis_authentication_methods: Option<Vec<HttpAuthMethod>>,
    /// New `SSLOffloading`.
    pub ssl_offloading: Option<bool>,
    /// New `ExternalClientsRequireSsl`.
    pub external_clients_require_ssl: Option<bool>,
    /// New `InternalClientsRequireSsl`.
    pub internal_clients_require_ssl: Option<bool>,
    /// New `ValidPorts`.
    pub valid_ports: Option<Vec<RpcPortRange>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_exchange_like() {
        let pop = PopSettings::default();
        pop.validate().unwrap();
        assert_eq!(pop.max_command_size, 512);
        assert_eq!(pop.login_type, LoginType::SecureLogin);
        assert_eq!(pop.ssl_bindings[1].to_string(), "0.0.0.0:995");
        let imap = ImapSettings::default();
        imap.validate().unwrap();
        assert_eq!(imap.max_command_size, 10_240);
        assert_eq!(imap.unencrypted_or_tls_bindings[0].to_string(), "[::]:143");
        OutlookAnywhereSettings::default().validate().unwrap();
    }

    #[test]
    fn ranges_name_the_key() {
        let mut pop = PopSettings::default();
        let e = pop
            .apply(&PopSettingsChange {
                max_command_size: Some(39),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(e.key(), Some("PopSettings.MaxCommandSize"));
        assert!(e.to_string().contains("40..=1024"), "{e}");
        assert_eq!(pop, PopSettings::default(), "unchanged on error");
        let mut imap = ImapSettings::default();
        let e = imap
            .apply(&ImapSettingsChange {
                max_command_size: Some(16_385),
                ..Default::default()
            })
            .unwrap_err();
        assert!(
            e.to_string().contains("ImapSettings.MaxCommandSize")
                && e.to_string().contains("1024..=16384"),
            "{e}"
        );
        let e = imap
            .apply(&ImapSettingsChange {
                pre_authenticated_connection_timeout: Some(TimeSpan::from_secs(9)),
                ..Default::default()
            })
            .unwrap_err();
        assert!(e.to_string().contains("00:00:10 to 01:00:00"), "{e}");
        let e = imap
            .apply(&ImapSettingsChange {
                max_connections: Some(0),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(e.key(), Some("ImapSettings.MaxConnections"));
        let e = imap
            .apply(&ImapSettingsChange {
                banner: Some(Some("hi\r\n* BYE".into())),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(e.key(), Some("ImapSettings.Banner"));
    }

    #[test]
    fn outlook_anywhere_changes() {
        let mut oa = OutlookAnywhereSettings::default();
        oa.apply(&OutlookAnywhereChange {
            external_hostname: Some(Some("mail.example.com".into())),
            default_authentication_method: Some(HttpAuthMethod::Ntlm),
            ssl_offloading: Some(false),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(oa.iis_authentication_methods, vec![HttpAuthMethod::Ntlm]);
        assert_eq!(
            oa.external_client_authentication_method,
            HttpAuthMethod::Ntlm
        );
        let e = oa
            .apply(&OutlookAnywhereChange {
                external_client_authentication_method: Some(HttpAuthMethod::Basic),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(
            e.key(),
            Some("OutlookAnywhere.ExternalClientAuthenticationMethod")
        );
        let e = oa
            .apply(&OutlookAnywhereChange {
                external_hostname: Some(Some("bad host".into())),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(e.key(), Some("OutlookAnywhere.ExternalHostname"));
        // The default ValidPorts: this machine only.
        assert!(oa.allows_rpc_target("localhost", 6001));
        assert!(oa.allows_rpc_target("127.0.0.1", 593));
        assert!(!oa.allows_rpc_target("localhost", 445));
        assert!(!oa.allows_rpc_target("mbx01", 6001));
    }
}
