//! Autodiscover for Outlook (the "plain old XML" schema) and Mozilla autoconfig (issue 7).
//!
//! Two pure functions that the HTTPS router of [`crate::rpc_proxy`] calls; they do no I/O
//! beyond reading the live policy and users file, and return an [`HttpReply`] for the router
//! to write:
//!
//! - [`respond_pox`] answers `POST /autodiscover/autodiscover.xml` ([`is_pox_path`]) for a
//!   caller the router has already authenticated (the 401 legs are the router's). It parses
//!   the Outlook request schema (`…/outlook/requestschema/2006`) and answers with the
//!   Outlook response schema `…/outlook/responseschema/2006a`: a `User` section and an
//!   `Account` with `Protocol` sections `EXCH` + `EXPR` (Outlook Anywhere) and `POP3` /
//!   `IMAP`, each present only when policy lets the user use it. Errors use the forms of
//!   MS-OXDSCLI §2.2.4.1.1.3: 500 for an address that is not the caller's (or unknown),
//!   501 for a user with no protocol at all, 600 for a request that is not the schema,
//!   601 for an unsupported `AcceptableResponseSchema`. Like Exchange, error responses are
//!   HTTP 200 with the error in the XML.
//! - [`respond_autoconfig`] answers `GET /.well-known/autoconfig/mail/config-v1.1.xml` and
//!   `GET /mail/config-v1.1.xml` ([`is_autoconfig_path`]) anonymously with a Thunderbird
//!   `clientConfig` (version 1.1) listing the IMAP and POP3 servers.
//!
//! # Where the values come from
//!
//! | value | source |
//! |---|---|
//! | EXPR `Server` | `[OutlookAnywhere] ExternalHostname`, else [`AutodiscoverConfig::server_name`]; `:port` appended when the HTTPS listener is not on 443 |
//! | EXPR `AuthPackage` | `ExternalClientAuthenticationMethod` (`Basic` / `Ntlm` / `Negotiate`) |
//! | EXPR `SSL`, `CertPrincipalName` | `On` and `msstd:<host>` unless the listener is plain HTTP without `SSLOffloading` or `ExternalClientsRequireSsl` |
//! | EXCH `Server`, `AuthPackage` | `InternalHostname`, else the server name; `InternalClientAuthenticationMethod` |
//! | POP3/IMAP `Server` | `[PopSettings]`/`[ImapSettings] X509CertificateName`, else `ExternalHostname`, else the server name |
//! | POP3/IMAP `Port`, `Encryption` | the listeners ([`AutodiscoverConfig::pop3`], [`AutodiscoverConfig::imap`]): implicit TLS preferred, then STARTTLS |
//! | `DisplayName` | the users file field `display_name=`, else the user name |
//! | `AutoDiscoverSMTPAddress` | the users file field `email=`, else the user name when it is an address, else `user@`[`email_domain`](AutodiscoverConfig::email_domain) |
//! | `LoginName` | the user name as written in the users file (what the POP3/IMAP servers take) |
//!
//! A user whose `PopEnabled`/`ImapEnabled` is false gets no `POP3`/`IMAP` section; a user
//! for whom Outlook Anywhere is not allowed (`MAPIEnabled` false, `MAPIBlockOutlookRpcHttp`,
//! or Outlook Anywhere disabled) gets neither `EXPR` nor `EXCH`: cas-server reaches RPC
//! back ends only through its proxy, so `EXCH` alone would send Outlook to a server it
//! cannot reach. The router should call [`respond_pox`] for any authenticated user, also
//! one refused Outlook Anywhere, so that user still learns the POP3/IMAP settings.
//!
//! # Not served
//!
//! No EWS, OAB or availability URLs (`ASUrl`, `OABUrl`, ...) and no `ServerVersion`:
//! cas-server does not run those services, and a version number would make Outlook 2013+
//! expect MAPI over HTTP. No redirects (`redirectUrl`/`redirectAddr`): one server answers
//! for its own domains.

mod autoconfig;
#[doc(hidden)]
pub mod fuzzing;
mod pox;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use cas_auth::FileCredentialStore;
use cas_policy::{HttpAuthMethod, Policy, Protocol};
use serde::Deserialize;

use crate::live::{LiveCredentials, LivePolicy};

pub use autoconfig::{AutoconfigQuery, parse_autoconfig_query};
pub use pox::{
    OUTLOOK_REQUEST_SCHEMA, OUTLOOK_RESPONSE_SCHEMA, PoxErrorCode, PoxRequest, PoxRequestError,
    PoxResponse, PoxTarget, RESPONSE_SCHEMA, parse_pox_request, parse_pox_response,
    pox_request_body,
};

/// Path of the Outlook POX Autodiscover endpoint (matched case-insensitively: IIS does, and
/// Outlook versions differ in capitalisation).
pub const POX_PATH: &str = "/autodiscover/autodiscover.xml";
/// Paths of Mozilla autoconfig: the `.well-known` form and the one Thunderbird asks of an
/// `autoconfig.<domain>` host.
pub const AUTOCONFIG_PATHS: [&str; 2] = [
    "/.well-known/autoconfig/mail/config-v1.1.xml",
    "/mail/config-v1.1.xml",
];

/// Largest POX request body accepted, in bytes (16 KiB). Outlook's request is about
/// 350 bytes; the limit leaves room for white space and comments, and a router should
/// refuse a longer `Content-Length` before reading the body.
pub const DEFAULT_MAX_POX_REQUEST_BYTES: usize = 16 * 1024;

/// The path part of a request target (the query cut off).
fn path_of(target: &str) -> &str {
    target.split_once('?').map_or(target, |(p, _)| p)
}

/// Whether a request target (path with an optional query) is the POX endpoint.
pub fn is_pox_path(target: &str) -> bool {
    path_of(target).eq_ignore_ascii_case(POX_PATH)
}

/// Whether a request target (path with an optional query) is a Mozilla autoconfig endpoint.
pub fn is_autoconfig_path(target: &str) -> bool {
    let path = path_of(target);
    AUTOCONFIG_PATHS
        .iter()
        .any(|p| path.eq_ignore_ascii_case(p))
}

/// An HTTP response for the router to send as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    /// Status code (200, 404, 413, ...).
    pub status: u16,
    /// `Content-Type`, if there is a body.
    pub content_type: Option<&'static str>,
    /// The body; the router adds `Content-Length`.
    pub body: Vec<u8>,
    /// More headers to send (`Cache-Control`, ...), name and value.
    pub headers: Vec<(&'static str, String)>,
}

/// `Content-Type` of the XML replies.
pub const XML_CONTENT_TYPE: &str = "text/xml; charset=utf-8";

impl HttpReply {
    /// A 200 reply with an XML body.
    fn xml(body: Vec<u8>, cache_control: &str) -> Self {
        HttpReply {
            status: 200,
            content_type: Some(XML_CONTENT_TYPE),
            body,
            headers: vec![
                ("Cache-Control", cache_control.to_owned()),
                ("X-Content-Type-Options", "nosniff".to_owned()),
            ],
        }
    }

    /// A reply with a short plain-text body.
    fn text(status: u16, text: &str) -> Self {
        HttpReply {
            status,
            content_type: Some("text/plain; charset=utf-8"),
            body: text.as_bytes().to_vec(),
            headers: Vec::new(),
        }
    }

    /// The standard reason phrase of [`status`](Self::status).
    pub fn reason(&self) -> &'static str {
        match self.status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            413 => "Payload Too Large",
            500 => "Internal Server Error",
            _ => "",
        }
    }
}

/// How a mail listener protects its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportSecurity {
    /// TLS from the first byte (POP3S 995, IMAPS 993; RFC 8314).
    ImplicitTls,
    /// Plain text with `STLS`/`STARTTLS` offered (TLS configured).
    StartTls,
    /// Plain text, no TLS available.
    None,
}

/// One POP3 or IMAP listener as clients should reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailEndpoint {
    /// The port clients connect to.
    pub port: u16,
    /// Its transport security.
    pub security: TransportSecurity,
}

impl MailEndpoint {
    /// The endpoints of a protocol's plain and implicit-TLS listeners; the plain one offers
    /// STARTTLS when `tls` (a certificate) is configured. Implicit TLS comes first: it is
    /// what RFC 8314 recommends and what the replies prefer.
    pub fn of_listeners(
        plain: Option<SocketAddr>,
        implicit_tls: Option<SocketAddr>,
        tls: bool,
    ) -> Vec<MailEndpoint> {
        let mut out = Vec::new();
        if let Some(a) = implicit_tls {
            out.push(MailEndpoint {
                port: a.port(),
                security: TransportSecurity::ImplicitTls,
            });
        }
        if let Some(a) = plain {
            out.push(MailEndpoint {
                port: a.port(),
                security: if tls {
                    TransportSecurity::StartTls
                } else {
                    TransportSecurity::None
                },
            });
        }
        out
    }
}

/// `[autodiscover]` in the config file.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct AutodiscoverSection {
    /// Domain of the users' e-mail addresses (`alice` → `alice@<email_domain>`); default the
    /// NTLM DNS domain (`[ntlm] dns_domain`).
    pub email_domain: Option<String>,
    /// More domains whose addresses belong to the same users (aliases).
    #[serde(default)]
    pub accepted_email_domains: Vec<String>,
    /// Host name clients reach this server by when the policy names none
    /// (`ExternalHostname`, `X509CertificateName`); default the NTLM DNS computer name.
    pub server_name: Option<String>,
    /// Exchange organization name in the `LegacyDN`s; default `First Organization`.
    pub organization: Option<String>,
    /// `DeploymentId` GUID; default one derived from the organization and e-mail domain,
    /// stable across restarts.
    pub deployment_id: Option<String>,
    /// SMTP submission server announced in autoconfig (Thunderbird refuses a file without
    /// one); default the server name. cas-server does not serve SMTP itself: name the relay.
    pub smtp_hostname: Option<String>,
    /// Its port; default 587 (RFC 6409 submission).
    pub smtp_port: Option<u16>,
    /// Its security: `"SSL"` (implicit TLS, port 465), `"STARTTLS"` (default) or `"plain"`.
    pub smtp_socket_type: Option<String>,
}

/// The SMTP submission server announced to autoconfig clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmissionServer {
    /// Host name.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Transport security.
    pub security: TransportSecurity,
}

/// The server-wide facts of the replies (everything but the live policy and users).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutodiscoverConfig {
    /// Primary e-mail domain.
    pub email_domain: String,
    /// Other e-mail domains of the same users.
    pub accepted_email_domains: Vec<String>,
    /// Host name used when the policy names none.
    pub server_name: String,
    /// NetBIOS name of this server, for `ServerDN`.
    pub netbios_computer: String,
    /// Exchange organization name, for `LegacyDN` and `ServerDN`.
    pub organization: String,
    /// `DeploymentId`.
    pub deployment_id: String,
    /// Port of the HTTPS listener serving `/rpc/rpcproxy.dll` (443 in production).
    pub https_port: u16,
    /// Whether that listener speaks TLS itself (false: plain HTTP behind an offloader).
    pub https_tls: bool,
    /// POP3 listeners, preferred first.
    pub pop3: Vec<MailEndpoint>,
    /// IMAP listeners, preferred first.
    pub imap: Vec<MailEndpoint>,
    /// SMTP submission server for autoconfig's `outgoingServer` (`None`: left out).
    pub submission: Option<SubmissionServer>,
    /// NTLM is offered at all (`[ntlm] enabled`).
    pub ntlm_enabled: bool,
    /// Clear-text login is accepted without TLS whatever `LoginType` says (the server's
    /// `--allow-plaintext-auth` override).
    pub plaintext_override: bool,
    /// `TTL` of the settings, in hours (Exchange sends 1).
    pub ttl_hours: u32,
    /// Largest POX request body.
    pub max_request_bytes: usize,
}

/// Why an `[autodiscover]` section is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting {key}: {message}")]
pub struct AutodiscoverConfigError {
    /// The dotted key, e.g. `autodiscover.email_domain`.
    pub key: &'static str,
    /// What is wrong.
    pub message: String,
}

impl AutodiscoverConfig {
    /// The settings of `section` with the defaults of the module docs; `ntlm` gives the
    /// default domain and server names. Listener facts are left empty (no POP3/IMAP, HTTPS
    /// on 443 with TLS): set them from the bound listeners.
    pub fn resolve(
        section: AutodiscoverSection,
        ntlm: &crate::config::NtlmSettings,
    ) -> Result<Self, AutodiscoverConfigError> {
        let bad = |key: &'static str, message: String| AutodiscoverConfigError { key, message };
        let email_domain = section
            .email_domain
            .unwrap_or_else(|| ntlm.dns_domain.clone())
            .to_ascii_lowercase();
        if !is_domain_name(&email_domain) {
            return Err(bad(
                "autodiscover.email_domain",
                format!("{email_domain:?} is not a domain name"),
            ));
        }
        let mut accepted = Vec::new();
        for d in section.accepted_email_domains {
            if !is_domain_name(&d) {
                return Err(bad(
                    "autodiscover.accepted_email_domains",
                    format!("{d:?} is not a domain name"),
                ));
            }
            accepted.push(d.to_ascii_lowercase());
        }
        let server_name = section
            .server_name
            .unwrap_or_else(|| ntlm.dns_computer.clone());
        if !is_domain_name(&server_name) {
            return Err(bad(
                "autodiscover.server_name",
                format!("{server_name:?} is not a host name"),
            ));
        }
        let organization = section
            .organization
            .unwrap_or_else(|| "First Organization".to_owned());
        if organization.is_empty()
            || organization.len() > 64
            || organization
                .chars()
                .any(|c| c.is_control() || c == '/' || c == '=')
        {
            return Err(bad(
                "autodiscover.organization",
                "must be 1..=64 characters without '/', '=' or control characters".to_owned(),
            ));
        }
        let deployment_id = match section.deployment_id {
            Some(id) if is_guid(&id) => id.to_ascii_lowercase(),
            Some(id) => {
                return Err(bad(
                    "autodiscover.deployment_id",
                    format!("{id:?} is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"),
                ));
            }
            None => derived_guid(&format!("{organization}\n{email_domain}")),
        };
        let smtp_host = section.smtp_hostname.unwrap_or_else(|| server_name.clone());
        if !is_domain_name(&smtp_host) {
            return Err(bad(
                "autodiscover.smtp_hostname",
                format!("{smtp_host:?} is not a host name"),
            ));
        }
        let smtp_security = match section.smtp_socket_type.as_deref() {
            None => TransportSecurity::StartTls,
            Some(t) if t.eq_ignore_ascii_case("STARTTLS") => TransportSecurity::StartTls,
            Some(t) if t.eq_ignore_ascii_case("SSL") => TransportSecurity::ImplicitTls,
            Some(t) if t.eq_ignore_ascii_case("plain") => TransportSecurity::None,
            Some(t) => {
                return Err(bad(
                    "autodiscover.smtp_socket_type",
                    format!("{t:?} is not one of SSL, STARTTLS, plain"),
                ));
            }
        };
        let submission = SubmissionServer {
            host: smtp_host,
            port: match section.smtp_port {
                Some(0) => {
                    return Err(bad(
                        "autodiscover.smtp_port",
                        "must be 1..=65535".to_owned(),
                    ));
                }
                Some(p) => p,
                None => 587,
            },
            security: smtp_security,
        };
        Ok(AutodiscoverConfig {
            email_domain,
            accepted_email_domains: accepted,
            server_name,
            netbios_computer: ntlm.netbios_computer.clone(),
            organization,
            deployment_id,
            https_port: 443,
            https_tls: true,
            pop3: Vec::new(),
            imap: Vec::new(),
            submission: Some(submission),
            ntlm_enabled: ntlm.enabled,
            plaintext_override: false,
            ttl_hours: 1,
            max_request_bytes: DEFAULT_MAX_POX_REQUEST_BYTES,
        })
    }

    /// Whether `domain` is one of the users' e-mail domains (case-insensitive).
    pub fn serves_domain(&self, domain: &str) -> bool {
        self.email_domain.eq_ignore_ascii_case(domain)
            || self
                .accepted_email_domains
                .iter()
                .any(|d| d.eq_ignore_ascii_case(domain))
    }
}

/// `label(.label)*` of letters, digits and hyphens, at most 253 characters.
fn is_domain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A GUID derived from `seed` (two FNV-1a 64 hashes), marked as an RFC 9562 version 8
/// ("custom") UUID. An identifier, not a secret: it only has to be stable.
fn derived_guid(seed: &str) -> String {
    fn fnv1a(seed: &str, basis: u64) -> u64 {
        seed.bytes().fold(basis, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }
    let hi = fnv1a(seed, 0xcbf2_9ce4_8422_2325);
    let lo = fnv1a(seed, 0x6c62_272e_07bb_0142);
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&hi.to_be_bytes());
    b[8..].copy_from_slice(&lo.to_be_bytes());
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Where the users come from: anything that can hand out the current users file.
pub trait UserDirectory: Send + Sync + fmt::Debug {
    /// The users file in force.
    fn snapshot(&self) -> Arc<FileCredentialStore>;
}

impl UserDirectory for LiveCredentials {
    fn snapshot(&self) -> Arc<FileCredentialStore> {
        LiveCredentials::snapshot(self)
    }
}

/// A fixed users file (tests, tools).
#[derive(Debug, Clone)]
pub struct StaticDirectory(pub Arc<FileCredentialStore>);

impl UserDirectory for StaticDirectory {
    fn snapshot(&self) -> Arc<FileCredentialStore> {
        self.0.clone()
    }
}

/// Everything the two responders need: the server facts, the live policy and the users.
#[derive(Debug, Clone)]
pub struct AutodiscoverContext {
    /// Server-wide facts.
    pub config: AutodiscoverConfig,
    /// The client access policy in force (reloaded behind this handle).
    pub policy: Arc<LivePolicy>,
    /// The users file in force.
    pub directory: Arc<dyn UserDirectory>,
}

/// Who a mailbox is, as Autodiscover describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxIdentity {
    /// The account name in the users file: what the user logs in with.
    pub user: String,
    /// `DisplayName`.
    pub display_name: String,
    /// Primary SMTP address (`AutoDiscoverSMTPAddress`).
    pub smtp_address: String,
    /// `LegacyDN`: `/o=<org>/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=<user>`.
    pub legacy_dn: String,
}

/// The administrative group every Exchange 2007+ object lives in (a fixed name, the
/// Caesar-shifted "EXCHANGE12ROCKS").
const ADMIN_GROUP: &str = "Exchange Administrative Group (FYDIBOHF23SPDLT)";

/// `local@domain` with a domain name and a local part of printable ASCII without spaces.
fn split_address(address: &str) -> Option<(&str, &str)> {
    let (local, domain) = address.rsplit_once('@')?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'(' | b')' | b','));
    (local_ok && is_domain_name(domain)).then_some((local, domain))
}

impl AutodiscoverContext {
    /// A context over the live policy and users file.
    pub fn new(
        config: AutodiscoverConfig,
        policy: Arc<LivePolicy>,
        directory: Arc<dyn UserDirectory>,
    ) -> Self {
        AutodiscoverContext {
            config,
            policy,
            directory,
        }
    }

    /// The identity of `user` in `store` (case-insensitive, a `DOMAIN\` prefix ignored), if
    /// the users file has them.
    pub fn identity(&self, store: &FileCredentialStore, user: &str) -> Option<MailboxIdentity> {
        let account = store.account(user).or_else(|| {
            let (_, bare) = user.split_once('\\')?;
            store.account(bare)
        })?;
        let name = account.user();
        let smtp_address = account
            .field("email")
            .filter(|e| split_address(e).is_some())
            .map(str::to_owned)
            .or_else(|| split_address(name).map(|_| name.to_owned()))
            .unwrap_or_else(|| format!("{name}@{}", self.config.email_domain));
        let display_name = account
            .field("display_name")
            .filter(|d| !d.trim().is_empty())
            .unwrap_or(name)
            .to_owned();
        let cn: String = name
            .chars()
            .map(|c| if c == '/' || c == '=' { '_' } else { c })
            .collect();
        Some(MailboxIdentity {
            user: name.to_owned(),
            display_name,
            smtp_address,
            legacy_dn: format!(
                "/o={}/ou={ADMIN_GROUP}/cn=Recipients/cn={cn}",
                self.config.organization
            ),
        })
    }

    /// Whether `address` names `identity`: its primary address, or its user name at one of
    /// the served domains (ASCII case-insensitive).
    pub fn address_matches(&self, identity: &MailboxIdentity, address: &str) -> bool {
        if address.eq_ignore_ascii_case(&identity.smtp_address)
            || address.eq_ignore_ascii_case(&identity.user)
        {
            return true;
        }
        let Some((local, domain)) = split_address(address) else {
            return false;
        };
        let Some((primary_local, _)) = split_address(&identity.smtp_address) else {
            return false;
        };
        self.config.serves_domain(domain)
            && (local.eq_ignore_ascii_case(&identity.user)
                || local.eq_ignore_ascii_case(primary_local))
    }

    /// Host name clients use for `protocol` (POP3 or IMAP).
    fn mail_host(&self, policy: &Policy, protocol: Protocol) -> String {
        let x509 = match protocol {
            Protocol::Pop3 => policy.pop_settings().x509_certificate_name.clone(),
            _ => policy.imap_settings().x509_certificate_name.clone(),
        };
        x509.or_else(|| policy.outlook_anywhere().external_hostname.clone())
            .unwrap_or_else(|| self.config.server_name.clone())
    }

    /// `host[:port]` of the RPC proxy for external clients.
    pub fn rpc_proxy_server(&self, policy: &Policy) -> String {
        let host = policy
            .outlook_anywhere()
            .external_hostname
            .clone()
            .unwrap_or_else(|| self.config.server_name.clone());
        if self.config.https_port == 443 {
            host
        } else {
            format!("{host}:{}", self.config.https_port)
        }
    }
}

/// The name Autodiscover uses for an HTTP authentication method (`AuthPackage`).
pub fn auth_package(method: HttpAuthMethod) -> &'static str {
    match method {
        HttpAuthMethod::Basic => "Basic",
        HttpAuthMethod::Ntlm => "Ntlm",
        HttpAuthMethod::Negotiate => "Negotiate",
    }
}

/// Answers `POST /autodiscover/autodiscover.xml` for `authenticated_user` (the account
/// name the router's authentication produced) with the request `body`.
///
/// Always a 200 reply with an XML body, except 413 for a body over
/// [`AutodiscoverConfig::max_request_bytes`]. An address other than the caller's own gets
/// the same 500 error as an unknown one, so the endpoint cannot be used to probe which
/// addresses exist.
pub fn respond_pox(ctx: &AutodiscoverContext, body: &[u8], authenticated_user: &str) -> HttpReply {
    pox::respond(ctx, body, authenticated_user)
}

/// Answers `GET` of a Mozilla autoconfig path with its `query` (the part after `?`, or the
/// whole target; `emailaddress=` is read, percent-decoded).
///
/// Anonymous, so it reveals nothing per user: the reply depends only on the address's
/// domain. 404 when the domain is not one of the users' e-mail domains or no POP3/IMAP
/// listener is usable; 400 for a malformed address.
pub fn respond_autoconfig(ctx: &AutodiscoverContext, query: &str) -> HttpReply {
    autoconfig::respond(ctx, query)
}

#[cfg(test)]
pub(crate) mod test_support {
    //! A context over a small users file and a policy given as TOML.

    use super::*;
    use std::path::Path;

    /// Users: alice (display name, NT hash), bob, carol@example.org (an address name),
    /// dave (email= alias).
    pub(crate) fn users() -> FileCredentialStore {
        let phc = cas_auth::hash_password_with(
            b"pw",
            b"0123456789abcdef",
            &cas_auth::PasswordHashParams::dangerous_low_cost(),
        )
        .unwrap();
        let text = format!(
            "alice:{phc}:display_name=Alice Liddell\n\
             bob:{phc}\n\
             carol@example.org:{phc}\n\
             dave:{phc}:email=d.smith@example.com\n"
        );
        FileCredentialStore::parse(&text).unwrap()
    }

    pub(crate) fn config() -> AutodiscoverConfig {
        let ntlm = crate::config::NtlmSettings {
            dns_domain: "example.com".into(),
            dns_computer: "cas.example.com".into(),
            ..Default::default()
        };
        let mut c = AutodiscoverConfig::resolve(
            AutodiscoverSection {
                accepted_email_domains: vec!["example.org".into()],
                ..Default::default()
            },
            &ntlm,
        )
        .unwrap();
        c.https_port = 443;
        c.pop3 = MailEndpoint::of_listeners(
            Some("0.0.0.0:110".parse().unwrap()),
            Some("0.0.0.0:995".parse().unwrap()),
            true,
        );
        c.imap = MailEndpoint::of_listeners(
            Some("0.0.0.0:143".parse().unwrap()),
            Some("0.0.0.0:993".parse().unwrap()),
            true,
        );
        c
    }

    pub(crate) fn context_with(
        policy_toml: &str,
        config: AutodiscoverConfig,
    ) -> AutodiscoverContext {
        let policy = Policy::from_toml_str(policy_toml).unwrap();
        AutodiscoverContext::new(
            config,
            Arc::new(LivePolicy::from_policy(Path::new("/nonexistent"), policy)),
            Arc::new(StaticDirectory(Arc::new(users()))),
        )
    }

    pub(crate) fn context(policy_toml: &str) -> AutodiscoverContext {
        context_with(policy_toml, config())
    }

    /// An element of a parsed reply: namespace, local name, attributes, text, children.
    #[derive(Debug, Clone, Default)]
    pub(crate) struct Node {
        pub ns: String,
        pub name: String,
        pub attrs: Vec<(String, String)>,
        pub text: String,
        pub children: Vec<Node>,
    }

    impl Node {
        /// Children named `name`.
        pub fn all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a Node> + 'a {
            let name = name.to_owned();
            self.children.iter().filter(move |c| c.name == name)
        }
        /// The one child named `name`.
        pub fn one(&self, name: &str) -> &Node {
            let mut it = self.all(name);
            let n = it
                .next()
                .unwrap_or_else(|| panic!("no <{name}> in <{}>", self.name));
            assert!(it.next().is_none(), "two <{name}> in <{}>", self.name);
            n
        }
        /// Text of the one child named `name`.
        pub fn text_of(&self, name: &str) -> &str {
            &self.one(name).text
        }
        /// The `Protocol` child whose `Type` is `kind`.
        pub fn protocol(&self, kind: &str) -> Option<&Node> {
            self.all("Protocol").find(|p| p.text_of("Type") == kind)
        }
        /// An attribute.
        pub fn attr(&self, name: &str) -> Option<&str> {
            self.attrs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        }
    }

    /// Parses a reply with quick-xml's namespace-aware reader into a tree (the root).
    pub(crate) fn parse_tree(xml: &[u8]) -> Node {
        use quick_xml::events::Event;
        use quick_xml::name::{Namespace, ResolveResult};
        let text = std::str::from_utf8(xml).unwrap();
        let mut reader = quick_xml::reader::NsReader::from_str(text);
        // `<a/>` as Start + End, so every element closes through one path.
        reader.config_mut().expand_empty_elements = true;
        let mut stack: Vec<Node> = vec![Node::default()];
        loop {
            let (ns, event) = reader.read_resolved_event().unwrap();
            let ns = match ns {
                ResolveResult::Bound(Namespace(n)) => n.to_owned(),
                _ => String::new(),
            };
            match event {
                Event::Start(e) | Event::Empty(e) => {
                    let node = Node {
                        ns,
                        name: e.local_name().as_ref().to_owned(),
                        attrs: e
                            .attributes()
                            .map(|a| {
                                let a = a.unwrap();
                                (
                                    a.key.as_ref().to_owned(),
                                    a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                        .unwrap()
                                        .into_owned(),
                                )
                            })
                            .collect(),
                        ..Default::default()
                    };
                    stack.push(node);
                }
                Event::End(_) => {
                    let mut n = stack.pop().unwrap();
                    n.text = n.text.trim().to_owned();
                    stack.last_mut().unwrap().children.push(n);
                }
                Event::Text(t) => stack.last_mut().unwrap().text.push_str(&t.xml10_content()),
                Event::GeneralRef(r) => {
                    let c = match &*r {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        _ => r.resolve_char_ref().unwrap().unwrap(),
                    };
                    stack.last_mut().unwrap().text.push(c);
                }
                Event::Eof => break,
                _ => {}
            }
        }
        let mut doc = stack.pop().unwrap();
        assert!(stack.is_empty());
        assert_eq!(doc.children.len(), 1, "one root");
        doc.children.pop().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn paths_match_case_insensitively_and_ignore_queries() {
        assert!(is_pox_path("/autodiscover/autodiscover.xml"));
        assert!(is_pox_path("/Autodiscover/Autodiscover.xml"));
        assert!(is_pox_path("/AutoDiscover/AutoDiscover.xml?x=1"));
        assert!(!is_pox_path("/autodiscover/autodiscover.svc"));
        assert!(is_autoconfig_path(
            "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=a%40b.c"
        ));
        assert!(is_autoconfig_path("/mail/config-v1.1.xml"));
        assert!(!is_autoconfig_path("/mail/config-v1.0.xml"));
    }

    #[test]
    fn identities_come_from_the_users_file() {
        let ctx = context("");
        let store = users();
        let alice = ctx.identity(&store, "ALICE").unwrap();
        assert_eq!(alice.user, "alice");
        assert_eq!(alice.display_name, "Alice Liddell");
        assert_eq!(alice.smtp_address, "alice@example.com");
        assert_eq!(
            alice.legacy_dn,
            "/o=First Organization/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=alice"
        );
        let carol = ctx.identity(&store, "carol@example.org").unwrap();
        assert_eq!(carol.smtp_address, "carol@example.org");
        assert_eq!(carol.display_name, "carol@example.org");
        let dave = ctx.identity(&store, "CAS\\dave").unwrap();
        assert_eq!(dave.smtp_address, "d.smith@example.com");
        assert!(ctx.identity(&store, "mallory").is_none());
    }

    #[test]
    fn addresses_match_only_their_owner() {
        let ctx = context("");
        let store = users();
        let alice = ctx.identity(&store, "alice").unwrap();
        for yes in [
            "alice@example.com",
            "Alice@Example.COM",
            "alice@example.org",
            "alice",
        ] {
            assert!(ctx.address_matches(&alice, yes), "{yes}");
        }
        for no in [
            "bob@example.com",
            "alice@evil.example",
            "alice@",
            "",
            "alice@example.com ",
        ] {
            assert!(!ctx.address_matches(&alice, no), "{no}");
        }
        let dave = ctx.identity(&store, "dave").unwrap();
        assert!(ctx.address_matches(&dave, "d.smith@example.com"));
        assert!(ctx.address_matches(&dave, "dave@example.com"));
        assert!(ctx.address_matches(&dave, "d.smith@example.org"));
    }

    #[test]
    fn config_defaults_and_validation() {
        let ntlm = crate::config::NtlmSettings::default();
        let c = AutodiscoverConfig::resolve(AutodiscoverSection::default(), &ntlm).unwrap();
        assert_eq!(c.email_domain, "localhost");
        assert_eq!(c.server_name, "localhost");
        assert_eq!(c.organization, "First Organization");
        assert!(is_guid(&c.deployment_id), "{}", c.deployment_id);
        assert_eq!(&c.deployment_id[14..15], "8", "version 8 UUID");
        let again = AutodiscoverConfig::resolve(AutodiscoverSection::default(), &ntlm).unwrap();
        assert_eq!(c.deployment_id, again.deployment_id, "stable");
        let err = |s: AutodiscoverSection| AutodiscoverConfig::resolve(s, &ntlm).unwrap_err().key;
        assert_eq!(
            err(AutodiscoverSection {
                email_domain: Some("bad domain".into()),
                ..Default::default()
            }),
            "autodiscover.email_domain"
        );
        assert_eq!(
            err(AutodiscoverSection {
                deployment_id: Some("1234".into()),
                ..Default::default()
            }),
            "autodiscover.deployment_id"
        );
        assert_eq!(
            err(AutodiscoverSection {
                organization: Some("a/b".into()),
                ..Default::default()
            }),
            "autodiscover.organization"
        );
        assert_eq!(
            err(AutodiscoverSection {
                accepted_email_domains: vec!["x..y".into()],
                ..Default::default()
            }),
            "autodiscover.accepted_email_domains"
        );
        let ok = AutodiscoverConfig::resolve(
            AutodiscoverSection {
                deployment_id: Some("644560B8-A1CE-429C-8ACE-23395843F701".into()),
                ..Default::default()
            },
            &ntlm,
        )
        .unwrap();
        assert_eq!(ok.deployment_id, "644560b8-a1ce-429c-8ace-23395843f701");
    }

    #[test]
    fn endpoints_from_listeners() {
        let e = MailEndpoint::of_listeners(
            Some("127.0.0.1:1110".parse().unwrap()),
            Some("127.0.0.1:1995".parse().unwrap()),
            true,
        );
        assert_eq!(
            e,
            vec![
                MailEndpoint {
                    port: 1995,
                    security: TransportSecurity::ImplicitTls
                },
                MailEndpoint {
                    port: 1110,
                    security: TransportSecurity::StartTls
                }
            ]
        );
        let e = MailEndpoint::of_listeners(Some("127.0.0.1:110".parse().unwrap()), None, false);
        assert_eq!(e[0].security, TransportSecurity::None);
    }

    #[test]
    fn rpc_proxy_server_carries_a_non_default_port() {
        let mut c = config();
        let ctx = context_with("", c.clone());
        let policy = ctx.policy.current();
        assert_eq!(ctx.rpc_proxy_server(&policy.policy), "cas.example.com");
        c.https_port = 8443;
        let ctx = context_with(
            "[OutlookAnywhere]\nExternalHostname = \"mail.example.com\"\n",
            c,
        );
        let policy = ctx.policy.current();
        assert_eq!(
            ctx.rpc_proxy_server(&policy.policy),
            "mail.example.com:8443"
        );
    }
}
