//! The Outlook POX request parser and the 2006a response writer.

use std::collections::BTreeMap;
use std::io;

use cas_policy::{EffectiveSettings, Policy, Protocol};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::reader::NsReader;

use super::{
    ADMIN_GROUP, AutodiscoverContext, HttpReply, MailEndpoint, MailboxIdentity, TransportSecurity,
    auth_package,
};

/// Namespace of the Outlook request (`<Autodiscover xmlns=…>`).
pub const OUTLOOK_REQUEST_SCHEMA: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006";
/// The only `AcceptableResponseSchema` served: Outlook's 2006a schema.
pub const OUTLOOK_RESPONSE_SCHEMA: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";
/// Namespace of the outer `<Autodiscover>` of every response.
pub const RESPONSE_SCHEMA: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006";

/// Deepest element nesting accepted. The request is three levels deep; unknown elements
/// are skipped, and this bounds what skipping them costs.
const MAX_DEPTH: usize = 16;
/// Longest `EMailAddress` / `LegacyDN` / `AcceptableResponseSchema` text, in bytes. An
/// address is at most 254 (RFC 5321 §4.5.3.1.3); a legacy DN is longer but well under this.
pub(super) const MAX_FIELD_LEN: usize = 1024;

/// What the request asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoxTarget {
    /// `<EMailAddress>`.
    EmailAddress(String),
    /// `<LegacyDN>`, which MS-OXDSCLI allows in place of the address.
    LegacyDn(String),
}

/// A parsed Outlook Autodiscover request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoxRequest {
    /// The mailbox asked about.
    pub target: PoxTarget,
    /// `<AcceptableResponseSchema>`, trimmed.
    pub acceptable_response_schema: String,
}

/// Why a body is not an Outlook Autodiscover request (all answered with error 600).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoxRequestError {
    /// Longer than the configured limit.
    #[error("request body of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Body length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not UTF-8 (the only encoding Outlook sends).
    #[error("request body is not UTF-8")]
    NotUtf8,
    /// Not well-formed XML.
    #[error("malformed XML: {0}")]
    Malformed(String),
    /// A `<!DOCTYPE>`: refused, so no entity can ever be declared or expanded.
    #[error("DTDs are not accepted")]
    DoctypeForbidden,
    /// A named entity other than the five predefined ones.
    #[error("undefined entity &{0};")]
    UndefinedEntity(String),
    /// Nested deeper than the parser accepts.
    #[error("elements nested deeper than {MAX_DEPTH}")]
    TooDeep,
    /// The root is not `<Autodiscover>` of the request namespace, or `<Request>` is missing.
    #[error(
        "not an Outlook Autodiscover request (expected <Autodiscover xmlns=\"{OUTLOOK_REQUEST_SCHEMA}\"><Request>)"
    )]
    WrongDocument,
    /// A field holds elements, is too long, or appears twice.
    #[error("invalid <{0}>")]
    InvalidField(&'static str),
    /// Neither `<EMailAddress>` nor `<LegacyDN>`.
    #[error("no <EMailAddress> or <LegacyDN>")]
    MissingAddress,
    /// No `<AcceptableResponseSchema>`.
    #[error("no <AcceptableResponseSchema>")]
    MissingSchema,
}

/// The request namespace, also in the `https:` spelling that Microsoft's own examples print
/// (clients copying them send it).
fn is_request_namespace(ns: &str) -> bool {
    ns == OUTLOOK_REQUEST_SCHEMA
        || ns.strip_prefix("https:") == OUTLOOK_REQUEST_SCHEMA.strip_prefix("http:")
}

/// Whether `schema` names the 2006a response schema (either spelling, see above).
fn is_response_schema(schema: &str) -> bool {
    schema == OUTLOOK_RESPONSE_SCHEMA
        || schema.strip_prefix("https:") == OUTLOOK_RESPONSE_SCHEMA.strip_prefix("http:")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Email,
    LegacyDn,
    Schema,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Email => "EMailAddress",
            Field::LegacyDn => "LegacyDN",
            Field::Schema => "AcceptableResponseSchema",
        }
    }
}

/// Parses an Outlook Autodiscover request body of at most `max_len` bytes.
///
/// Namespaces are resolved (any prefix works); unknown elements inside `<Request>` are
/// skipped; comments and processing instructions are ignored; a DTD is refused; only the
/// five predefined entities and character references are expanded.
pub fn parse_pox_request(body: &[u8], max_len: usize) -> Result<PoxRequest, PoxRequestError> {
    if body.len() > max_len {
        return Err(PoxRequestError::TooLarge {
            len: body.len(),
            max: max_len,
        });
    }
    let text = std::str::from_utf8(body).map_err(|_| PoxRequestError::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = NsReader::from_str(text);
    reader.config_mut().check_end_names = true;

    // Element path as (is request namespace, local name) pairs.
    let mut stack: Vec<(bool, String)> = Vec::new();
    let mut root_done = false;
    let mut saw_request = false;
    let mut capture: Option<(Field, String)> = None;
    let mut email = None;
    let mut legacy_dn = None;
    let mut schema = None;
    loop {
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| PoxRequestError::Malformed(e.to_string()))?;
        let in_ns = matches!(ns, ResolveResult::Bound(Namespace(n)) if is_request_namespace(n));
        match event {
            Event::DocType(_) => return Err(PoxRequestError::DoctypeForbidden),
            Event::Start(ref start) | Event::Empty(ref start) => {
                let empty = matches!(event, Event::Empty(_));
                let local = start.local_name().as_ref().to_owned();
                if root_done {
                    return Err(PoxRequestError::Malformed(
                        "content after the root element".into(),
                    ));
                }
                if let Some((field, _)) = &capture {
                    return Err(PoxRequestError::InvalidField(field.name()));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(PoxRequestError::TooDeep);
                }
                let depth = stack.len();
                let known = |name: &str| in_ns && local == name;
                if depth == 0 && !known("Autodiscover") {
                    return Err(PoxRequestError::WrongDocument);
                }
                let parent_is_request =
                    depth == 2 && stack[0].0 && stack[1].0 && stack[1].1 == "Request";
                if depth == 1 && known("Request") {
                    if saw_request {
                        return Err(PoxRequestError::WrongDocument);
                    }
                    saw_request = true;
                }
                if parent_is_request {
                    let field = if known("EMailAddress") {
                        Some(Field::Email)
                    } else if known("LegacyDN") {
                        Some(Field::LegacyDn)
                    } else if known("AcceptableResponseSchema") {
                        Some(Field::Schema)
                    } else {
                        None
                    };
                    if let Some(field) = field {
                        let slot = match field {
                            Field::Email => &email,
                            Field::LegacyDn => &legacy_dn,
                            Field::Schema => &schema,
                        };
                        if slot.is_some() {
                            return Err(PoxRequestError::InvalidField(field.name()));
                        }
                        if empty {
                            finish_field(
                                field,
                                String::new(),
                                &mut email,
                                &mut legacy_dn,
                                &mut schema,
                            );
                        } else {
                            capture = Some((field, String::new()));
                        }
                    }
                }
                if empty {
                    if depth == 0 {
                        root_done = true;
                    }
                } else {
                    stack.push((in_ns, local));
                }
            }
            Event::End(_) => {
                stack.pop();
                if let Some((field, value)) = capture.take() {
                    finish_field(field, value, &mut email, &mut legacy_dn, &mut schema);
                }
                if stack.is_empty() {
                    root_done = true;
                }
            }
            Event::Text(t) => {
                if let Some((field, value)) = &mut capture {
                    push_bounded(value, &t.xml10_content(), *field)?;
                } else if stack.is_empty() && !t.trim().is_empty() {
                    return Err(PoxRequestError::Malformed(
                        "text outside the root element".into(),
                    ));
                }
            }
            Event::CData(c) => {
                let raw = c.into_inner();
                let s: &str = &raw;
                match &mut capture {
                    Some((field, value)) => push_bounded(value, s, *field)?,
                    None if stack.is_empty() => {
                        return Err(PoxRequestError::Malformed(
                            "CDATA outside the root element".into(),
                        ));
                    }
                    None => {}
                }
            }
            Event::GeneralRef(r) => {
                let ch = match r.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => match &*r {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        other => {
                            return Err(PoxRequestError::UndefinedEntity(
                                other.chars().take(32).collect(),
                            ));
                        }
                    },
                    Err(e) => return Err(PoxRequestError::Malformed(e.to_string())),
                };
                if let Some((field, value)) = &mut capture {
                    push_bounded(value, ch.encode_utf8(&mut [0; 4]), *field)?;
                } else if stack.is_empty() {
                    return Err(PoxRequestError::Malformed(
                        "reference outside the root element".into(),
                    ));
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    if !root_done || !stack.is_empty() {
        return Err(PoxRequestError::Malformed(
            "document ends inside an element".into(),
        ));
    }
    if !saw_request {
        return Err(PoxRequestError::WrongDocument);
    }
    let target = match (email, legacy_dn) {
        (Some(e), _) if !e.is_empty() => PoxTarget::EmailAddress(e),
        (_, Some(d)) if !d.is_empty() => PoxTarget::LegacyDn(d),
        _ => return Err(PoxRequestError::MissingAddress),
    };
    let acceptable_response_schema = schema
        .filter(|s| !s.is_empty())
        .ok_or(PoxRequestError::MissingSchema)?;
    Ok(PoxRequest {
        target,
        acceptable_response_schema,
    })
}

fn push_bounded(value: &mut String, more: &str, field: Field) -> Result<(), PoxRequestError> {
    if value.len() + more.len() > MAX_FIELD_LEN {
        return Err(PoxRequestError::InvalidField(field.name()));
    }
    value.push_str(more);
    Ok(())
}

fn finish_field(
    field: Field,
    value: String,
    email: &mut Option<String>,
    legacy_dn: &mut Option<String>,
    schema: &mut Option<String>,
) {
    let value = value.trim().to_owned();
    match field {
        Field::Email => *email = Some(value),
        Field::LegacyDn => *legacy_dn = Some(value),
        Field::Schema => *schema = Some(value),
    }
}

/// The request Outlook sends for `email_address` (the client half). The address is
/// escaped.
pub fn pox_request_body(email_address: &str) -> Vec<u8> {
    let escaped = quick_xml::escape::escape(email_address);
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n\
         <Autodiscover xmlns=\"{OUTLOOK_REQUEST_SCHEMA}\">\r\n\
         <Request>\r\n\
         <EMailAddress>{escaped}</EMailAddress>\r\n\
         <AcceptableResponseSchema>{OUTLOOK_RESPONSE_SCHEMA}</AcceptableResponseSchema>\r\n\
         </Request>\r\n\
         </Autodiscover>\r\n"
    )
    .into_bytes()
}

/// An Autodiscover response as a client reads it (the connectivity test's half): the
/// `Error` if there is one, the `User` fields, and each `Protocol` section's leaf elements
/// by local name (`Type`, `Server`, `SSL`, `AuthPackage`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoxResponse {
    /// `ErrorCode` and `Message` of an error response.
    pub error: Option<(String, String)>,
    /// `User` fields (`DisplayName`, `LegacyDN`, `AutoDiscoverSMTPAddress`, ...).
    pub user: BTreeMap<String, String>,
    /// `Account/Action` (`settings`, `redirectUrl`, `redirectAddr`).
    pub action: Option<String>,
    /// One map per `Protocol`, in document order.
    pub protocols: Vec<BTreeMap<String, String>>,
}

impl PoxResponse {
    /// The `Protocol` section whose `Type` is `kind` (`EXPR`, `EXCH`, `POP3`, `IMAP`).
    pub fn protocol(&self, kind: &str) -> Option<&BTreeMap<String, String>> {
        self.protocols
            .iter()
            .find(|p| p.get("Type").is_some_and(|t| t.eq_ignore_ascii_case(kind)))
    }
}

/// Parses an Autodiscover response of at most `max_len` bytes. Element names are matched by
/// local name whatever their namespace; a DTD or an undefined entity is refused.
pub fn parse_pox_response(xml: &[u8], max_len: usize) -> Result<PoxResponse, String> {
    if xml.len() > max_len {
        return Err(format!("response of {} bytes exceeds {max_len}", xml.len()));
    }
    let text = std::str::from_utf8(xml).map_err(|_| "response is not UTF-8".to_owned())?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = NsReader::from_str(text);
    reader.config_mut().expand_empty_elements = true;
    let mut path: Vec<String> = Vec::new();
    let mut leaf = String::new();
    let mut out = PoxResponse::default();
    let mut error = (None, None);
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("malformed XML: {e}"))?;
        match event {
            Event::DocType(_) => return Err("DTDs are not accepted".into()),
            Event::Start(e) => {
                if path.len() >= MAX_DEPTH {
                    return Err("elements nested too deep".into());
                }
                let name = e.local_name().as_ref().to_owned();
                if name == "Protocol" && path.last().is_some_and(|p| p == "Account") {
                    out.protocols.push(BTreeMap::new());
                }
                path.push(name);
                leaf.clear();
            }
            Event::End(_) => {
                let value = leaf.trim().to_owned();
                leaf.clear();
                let Some(name) = path.pop() else { break };
                let parent = path.last().map(String::as_str);
                match parent {
                    Some("Protocol") => {
                        if let Some(p) = out.protocols.last_mut() {
                            p.insert(name, value);
                        }
                    }
                    Some("User") => {
                        out.user.insert(name, value);
                    }
                    Some("Account") if name == "Action" => out.action = Some(value),
                    Some("Error") if name == "ErrorCode" => error.0 = Some(value),
                    Some("Error") if name == "Message" => error.1 = Some(value),
                    _ => {}
                }
            }
            Event::Text(t) => leaf.push_str(&t.xml10_content()),
            Event::CData(c) => leaf.push_str(&c.into_inner()),
            Event::GeneralRef(r) => {
                let ch = match r.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    _ => match &*r {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        other => return Err(format!("undefined entity &{other};")),
                    },
                };
                leaf.push(ch);
            }
            Event::Eof => break,
            _ => {}
        }
        if leaf.len() > MAX_FIELD_LEN {
            return Err(format!(
                "an element's text is longer than {MAX_FIELD_LEN} bytes"
            ));
        }
    }
    if let (Some(code), message) = error {
        out.error = Some((code, message.unwrap_or_default()));
    }
    Ok(out)
}

/// Autodiscover error codes (MS-OXDSCLI §2.2.4.1.1.3.1) with Exchange's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoxErrorCode {
    /// 500: the address is not known (or not the caller's).
    AddressNotFound,
    /// 501: the address is known but has no configuration (no protocol allowed).
    NoConfiguration,
    /// 600: the request is not the schema.
    InvalidRequest,
    /// 601: the requested response schema is not served.
    UnsupportedSchema,
    /// 603: the server failed internally.
    InternalError,
}

impl PoxErrorCode {
    /// The numeric `ErrorCode`.
    pub fn code(self) -> u16 {
        match self {
            PoxErrorCode::AddressNotFound => 500,
            PoxErrorCode::NoConfiguration => 501,
            PoxErrorCode::InvalidRequest => 600,
            PoxErrorCode::UnsupportedSchema => 601,
            PoxErrorCode::InternalError => 603,
        }
    }

    /// The `Message` Exchange sends with it.
    pub fn message(self) -> &'static str {
        match self {
            PoxErrorCode::AddressNotFound => "The e-mail address cannot be found.",
            PoxErrorCode::NoConfiguration => "Bad Address",
            PoxErrorCode::InvalidRequest => "Invalid Request",
            PoxErrorCode::UnsupportedSchema => "The requested schema version is not supported",
            PoxErrorCode::InternalError => "Internal Server Error",
        }
    }
}

type Xml = Writer<Vec<u8>>;

fn start_document() -> io::Result<Xml> {
    let mut w = Writer::new_with_indent(Vec::with_capacity(2048), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))?;
    Ok(w)
}

fn leaf(w: &mut Xml, name: &str, text: &str) -> io::Result<()> {
    w.create_element(name)
        .write_text_content(BytesText::new(text))?;
    Ok(())
}

/// The `Id` attribute of errors: a hash of the server name (what Exchange sends).
fn server_id(ctx: &AutodiscoverContext) -> u32 {
    ctx.config.server_name.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Time of day, UTC, as the `Time` attribute's `hh:mm:ss.fffffff`.
fn time_of_day() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:07}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        now.subsec_nanos() / 100
    )
}

fn error_document(ctx: &AutodiscoverContext, code: PoxErrorCode) -> io::Result<Vec<u8>> {
    let mut w = start_document()?;
    let id = server_id(ctx).to_string();
    let time = time_of_day();
    w.create_element("Autodiscover")
        .with_attribute(("xmlns", RESPONSE_SCHEMA))
        .write_inner_content(|w| {
            w.create_element("Response").write_inner_content(|w| {
                w.create_element("Error")
                    .with_attribute(("Time", time.as_str()))
                    .with_attribute(("Id", id.as_str()))
                    .write_inner_content(|w| {
                        leaf(w, "ErrorCode", &code.code().to_string())?;
                        leaf(w, "Message", code.message())?;
                        w.create_element("DebugData").write_empty()?;
                        Ok(())
                    })?;
                Ok(())
            })?;
            Ok(())
        })?;
    Ok(w.into_inner())
}

/// Cache-Control of every POX reply: settings are per user.
const POX_CACHE_CONTROL: &str = "private, no-store";

fn error_reply(ctx: &AutodiscoverContext, code: PoxErrorCode) -> HttpReply {
    match error_document(ctx, code) {
        Ok(body) => HttpReply::xml(body, POX_CACHE_CONTROL),
        Err(_) => HttpReply::text(500, "internal error\n"),
    }
}

/// The sections a user gets, decided from the live policy.
struct Sections<'a> {
    outlook_anywhere: bool,
    pop3: Option<(&'a MailEndpoint, String, bool)>,
    imap: Option<(&'a MailEndpoint, String, bool)>,
}

/// The endpoint to announce for `protocol`, its host and whether SPA (NTLM) is to be used:
/// the first listener on which some mechanism the user can use is allowed. Clear text is
/// preferred where TLS protects it (it works for every account); SPA only where nothing
/// else is allowed, because only accounts with an NT hash can use NTLM.
fn mail_section<'a>(
    ctx: &'a AutodiscoverContext,
    policy: &Policy,
    protocol: Protocol,
    effective: &EffectiveSettings,
    endpoints: &'a [MailEndpoint],
) -> Option<(&'a MailEndpoint, String, bool)> {
    if !effective.enabled {
        return None;
    }
    endpoints.iter().find_map(|e| {
        let tls = e.security != TransportSecurity::None;
        let (plain, ntlm) = mechanisms(ctx, policy, protocol, tls);
        match (plain, ntlm) {
            (true, _) => Some((e, ctx.mail_host(policy, protocol), false)),
            (false, true) => Some((e, ctx.mail_host(policy, protocol), true)),
            (false, false) => None,
        }
    })
}

/// Whether clear-text login and NTLM are allowed on `protocol` with this TLS state.
pub(super) fn mechanisms(
    ctx: &AutodiscoverContext,
    policy: &Policy,
    protocol: Protocol,
    tls: bool,
) -> (bool, bool) {
    use cas_policy::AuthMechanism;
    let plain = ctx.config.plaintext_override
        || policy
            .mechanism_allowed(protocol, AuthMechanism::UserPass, tls)
            .is_allowed();
    let ntlm = ctx.config.ntlm_enabled
        && policy
            .mechanism_allowed(protocol, AuthMechanism::Ntlm, tls)
            .is_allowed();
    (plain, ntlm)
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

fn settings_document(
    ctx: &AutodiscoverContext,
    policy: &Policy,
    who: &MailboxIdentity,
    sections: &Sections<'_>,
) -> io::Result<Vec<u8>> {
    let cfg = &ctx.config;
    let ttl = cfg.ttl_hours.to_string();
    let mut w = start_document()?;
    w.create_element("Autodiscover")
        .with_attribute(("xmlns", RESPONSE_SCHEMA))
        .write_inner_content(|w| {
            w.create_element("Response")
                .with_attribute(("xmlns", OUTLOOK_RESPONSE_SCHEMA))
                .write_inner_content(|w| {
                    w.create_element("User").write_inner_content(|w| {
                        leaf(w, "DisplayName", &who.display_name)?;
                        leaf(w, "LegacyDN", &who.legacy_dn)?;
                        leaf(w, "AutoDiscoverSMTPAddress", &who.smtp_address)?;
                        leaf(w, "DeploymentId", &cfg.deployment_id)?;
                        Ok(())
                    })?;
                    w.create_element("Account").write_inner_content(|w| {
                        leaf(w, "AccountType", "email")?;
                        leaf(w, "Action", "settings")?;
                        if sections.outlook_anywhere {
                            write_exch(ctx, policy, w, &ttl)?;
                            write_expr(ctx, policy, w, &ttl)?;
                        }
                        if let Some((e, host, spa)) = &sections.imap {
                            write_mail(w, "IMAP", e, host, *spa, &who.user, &ttl)?;
                        }
                        if let Some((e, host, spa)) = &sections.pop3 {
                            write_mail(w, "POP3", e, host, *spa, &who.user, &ttl)?;
                        }
                        Ok(())
                    })?;
                    Ok(())
                })?;
            Ok(())
        })?;
    Ok(w.into_inner())
}

/// `EXCH`: the mailbox server behind the proxy, as Outlook names it inside the network.
fn write_exch(
    ctx: &AutodiscoverContext,
    policy: &Policy,
    w: &mut Xml,
    ttl: &str,
) -> io::Result<()> {
    let oa = policy.outlook_anywhere();
    let cfg = &ctx.config;
    let server = oa
        .internal_hostname
        .clone()
        .unwrap_or_else(|| cfg.server_name.clone());
    let server_dn = format!(
        "/o={}/ou={ADMIN_GROUP}/cn=Configuration/cn=Servers/cn={}",
        cfg.organization, cfg.netbios_computer
    );
    w.create_element("Protocol").write_inner_content(|w| {
        leaf(w, "Type", "EXCH")?;
        leaf(w, "Server", &server)?;
        leaf(w, "ServerDN", &server_dn)?;
        leaf(w, "MdbDN", &format!("{server_dn}/cn=Microsoft Private MDB"))?;
        leaf(w, "Port", "0")?;
        leaf(w, "DirectoryPort", "0")?;
        leaf(w, "ReferralPort", "0")?;
        leaf(
            w,
            "AuthPackage",
            auth_package(oa.internal_client_authentication_method),
        )?;
        leaf(w, "TTL", ttl)?;
        Ok(())
    })?;
    Ok(())
}

/// `EXPR`: Outlook Anywhere for clients outside the network.
fn write_expr(
    ctx: &AutodiscoverContext,
    policy: &Policy,
    w: &mut Xml,
    ttl: &str,
) -> io::Result<()> {
    let oa = policy.outlook_anywhere();
    let cfg = &ctx.config;
    // Clients speak HTTPS unless the listener is plain HTTP with nothing in front doing TLS.
    let ssl = cfg.https_tls || oa.ssl_offloading || oa.external_clients_require_ssl;
    let server = ctx.rpc_proxy_server(policy);
    let host = oa
        .external_hostname
        .clone()
        .unwrap_or_else(|| cfg.server_name.clone());
    w.create_element("Protocol").write_inner_content(|w| {
        leaf(w, "Type", "EXPR")?;
        leaf(w, "Server", &server)?;
        leaf(w, "SSL", if ssl { "On" } else { "Off" })?;
        leaf(
            w,
            "AuthPackage",
            auth_package(oa.external_client_authentication_method),
        )?;
        leaf(w, "ServerExclusiveConnect", "On")?;
        if ssl {
            leaf(w, "CertPrincipalName", &format!("msstd:{host}"))?;
        }
        leaf(w, "TTL", ttl)?;
        Ok(())
    })?;
    Ok(())
}

fn write_mail(
    w: &mut Xml,
    kind: &str,
    e: &MailEndpoint,
    host: &str,
    spa: bool,
    login: &str,
    ttl: &str,
) -> io::Result<()> {
    let encryption = match e.security {
        TransportSecurity::ImplicitTls => "SSL",
        TransportSecurity::StartTls => "TLS",
        TransportSecurity::None => "None",
    };
    w.create_element("Protocol").write_inner_content(|w| {
        leaf(w, "Type", kind)?;
        leaf(w, "Server", host)?;
        leaf(w, "Port", &e.port.to_string())?;
        leaf(w, "LoginName", login)?;
        leaf(w, "DomainRequired", "off")?;
        leaf(w, "SPA", on_off(spa))?;
        // `SSL` predates `Encryption`; clients that know `Encryption` let it win.
        leaf(
            w,
            "SSL",
            on_off(e.security == TransportSecurity::ImplicitTls),
        )?;
        leaf(w, "Encryption", encryption)?;
        leaf(w, "AuthRequired", "on")?;
        leaf(w, "TTL", ttl)?;
        Ok(())
    })?;
    Ok(())
}

/// [`super::respond_pox`].
pub(super) fn respond(
    ctx: &AutodiscoverContext,
    body: &[u8],
    authenticated_user: &str,
) -> HttpReply {
    let request = match parse_pox_request(body, ctx.config.max_request_bytes) {
        Ok(r) => r,
        Err(PoxRequestError::TooLarge { .. }) => {
            return HttpReply::text(413, "autodiscover request too large\n");
        }
        Err(e) => {
            tracing::debug!(user = authenticated_user, error = %e, "autodiscover: invalid request");
            return error_reply(ctx, PoxErrorCode::InvalidRequest);
        }
    };
    if !is_response_schema(&request.acceptable_response_schema) {
        return error_reply(ctx, PoxErrorCode::UnsupportedSchema);
    }
    let store = ctx.directory.snapshot();
    let Some(who) = ctx.identity(&store, authenticated_user) else {
        tracing::info!(
            user = authenticated_user,
            "autodiscover: caller has no mailbox"
        );
        return error_reply(ctx, PoxErrorCode::AddressNotFound);
    };
    let owns = match &request.target {
        PoxTarget::EmailAddress(a) => ctx.address_matches(&who, a),
        PoxTarget::LegacyDn(dn) => dn.eq_ignore_ascii_case(&who.legacy_dn),
    };
    if !owns {
        tracing::info!(
            user = %who.user,
            "autodiscover: requested address is not the caller's"
        );
        return error_reply(ctx, PoxErrorCode::AddressNotFound);
    }
    let version = ctx.policy.current();
    let policy = &version.policy;
    let pop = policy.effective_settings(&who.user, Protocol::Pop3);
    let imap = policy.effective_settings(&who.user, Protocol::Imap4);
    let oa = policy.effective_settings(&who.user, Protocol::OutlookAnywhere);
    let sections = Sections {
        outlook_anywhere: oa.enabled,
        pop3: mail_section(ctx, policy, Protocol::Pop3, &pop, &ctx.config.pop3),
        imap: mail_section(ctx, policy, Protocol::Imap4, &imap, &ctx.config.imap),
    };
    if !sections.outlook_anywhere && sections.pop3.is_none() && sections.imap.is_none() {
        return error_reply(ctx, PoxErrorCode::NoConfiguration);
    }
    match settings_document(ctx, policy, &who, &sections) {
        Ok(body) => HttpReply::xml(body, POX_CACHE_CONTROL),
        Err(_) => error_reply(ctx, PoxErrorCode::InternalError),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{MailEndpoint, respond_pox};
    use super::*;

    fn request(address: &str) -> Vec<u8> {
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n\
             <Autodiscover xmlns=\"{OUTLOOK_REQUEST_SCHEMA}\">\r\n\
             <Request>\r\n\
             <EMailAddress>{address}</EMailAddress>\r\n\
             <AcceptableResponseSchema>{OUTLOOK_RESPONSE_SCHEMA}</AcceptableResponseSchema>\r\n\
             </Request>\r\n\
             </Autodiscover>\r\n"
        )
        .into_bytes()
    }

    fn parse(body: &str) -> Result<PoxRequest, PoxRequestError> {
        parse_pox_request(body.as_bytes(), 16 * 1024)
    }

    #[test]
    fn client_half_round_trips() {
        let ctx = context("[OutlookAnywhere]\nExternalHostname = \"mail.example.com\"\n");
        let body = pox_request_body("alice@example.com");
        assert_eq!(
            parse_pox_request(&body, 16 * 1024).unwrap().target,
            PoxTarget::EmailAddress("alice@example.com".into())
        );
        let reply = respond_pox(&ctx, &body, "alice");
        let r = parse_pox_response(&reply.body, 1 << 20).unwrap();
        assert_eq!(r.error, None);
        assert_eq!(r.action.as_deref(), Some("settings"));
        assert_eq!(r.user["AutoDiscoverSMTPAddress"], "alice@example.com");
        assert_eq!(r.protocol("EXPR").unwrap()["Server"], "mail.example.com");
        assert_eq!(r.protocol("exch").unwrap()["Server"], "cas.example.com");
        assert_eq!(r.protocol("POP3").unwrap()["Port"], "995");
        let reply = respond_pox(&ctx, &pox_request_body("bob@example.com"), "alice");
        let r = parse_pox_response(&reply.body, 1 << 20).unwrap();
        assert_eq!(
            r.error,
            Some(("500".into(), "The e-mail address cannot be found.".into()))
        );
        assert!(parse_pox_response(b"<!DOCTYPE x><x/>", 100).is_err());
        assert!(parse_pox_response(b"<x>&e;</x>", 100).is_err());
        assert!(parse_pox_response(&[b' '; 101], 100).is_err());
        assert!(parse_pox_response(b"<a><b></a>", 100).is_err());
    }

    #[test]
    fn outlooks_request_parses() {
        let r = parse_pox_request(&request("alice@example.com"), 16 * 1024).unwrap();
        assert_eq!(
            r.target,
            PoxTarget::EmailAddress("alice@example.com".into())
        );
        assert_eq!(r.acceptable_response_schema, OUTLOOK_RESPONSE_SCHEMA);
    }

    #[test]
    fn namespaces_prefixes_entities_cdata_and_unknown_elements() {
        let r = parse(&format!(
            "\u{feff}<!-- hi --><a:Autodiscover xmlns:a=\"{OUTLOOK_REQUEST_SCHEMA}\"><a:Request>\
             <a:Unknown><x>skipped</x></a:Unknown>\
             <a:EMailAddress> al&#105;ce&#x40;example.com </a:EMailAddress>\
             <a:AcceptableResponseSchema><![CDATA[{OUTLOOK_RESPONSE_SCHEMA}]]></a:AcceptableResponseSchema>\
             </a:Request></a:Autodiscover>"
        ))
        .unwrap();
        assert_eq!(
            r.target,
            PoxTarget::EmailAddress("alice@example.com".into())
        );
        assert_eq!(r.acceptable_response_schema, OUTLOOK_RESPONSE_SCHEMA);
        let r = parse(
            "<Autodiscover xmlns=\"https://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\">\
             <Request><LegacyDN>/o=First Organization/cn=a&amp;b</LegacyDN>\
             <AcceptableResponseSchema>x</AcceptableResponseSchema></Request></Autodiscover>"
        )
        .unwrap();
        assert_eq!(
            r.target,
            PoxTarget::LegacyDn("/o=First Organization/cn=a&b".into())
        );
    }

    #[test]
    fn malformed_requests_are_typed_errors() {
        use PoxRequestError as E;
        let ns = OUTLOOK_REQUEST_SCHEMA;
        let ok_fields = format!(
            "<EMailAddress>a@b.c</EMailAddress><AcceptableResponseSchema>{OUTLOOK_RESPONSE_SCHEMA}</AcceptableResponseSchema>"
        );
        type Check = fn(&E) -> bool;
        let cases: Vec<(String, Check)> = vec![
            (String::new(), |e| matches!(e, E::Malformed(_))),
            ("<Autodiscover>".into(), |e| matches!(e, E::WrongDocument)),
            (
                format!(
                    "<Autodiscover xmlns=\"urn:other\"><Request>{ok_fields}</Request></Autodiscover>"
                ),
                |e| matches!(e, E::WrongDocument),
            ),
            (
                format!("<Autodiscover xmlns=\"{ns}\">{ok_fields}</Autodiscover>"),
                |e| matches!(e, E::WrongDocument),
            ),
            (
                format!("<Autodiscover xmlns=\"{ns}\"><Request>{ok_fields}</Request>"),
                |e| matches!(e, E::Malformed(_)),
            ),
            (
                format!(
                    "<Autodiscover xmlns=\"{ns}\"><Request>{ok_fields}</Requst></Autodiscover>"
                ),
                |e| matches!(e, E::Malformed(_)),
            ),
            (
                format!(
                    "<!DOCTYPE a [<!ENTITY x \"y\">]><Autodiscover xmlns=\"{ns}\"><Request>{ok_fields}</Request></Autodiscover>"
                ),
                |e| matches!(e, E::DoctypeForbidden),
            ),
            (
                format!(
                    "<Autodiscover xmlns=\"{ns}\"><Request><EMailAddress>&x;</EMailAddress></Request></Autodiscover>"
                ),
                |e| matches!(e, E::UndefinedEntity(n) if n == "x"),
            ),
            (
                format!(
                    "<Autodiscover xmlns=\"{ns}\"><Request><AcceptableResponseSchema>s</AcceptableResponseSchema></Request></Autodiscover>"
                ),
                |e| matches!(e, E::MissingAddress),
            ),
            (
                format!(
                    "<Autodiscover xmlns=\"{ns}\"><Request><EMailAddress>a@b.c</EMailAddress></Request></Autodiscover>"
                ),
                |e| matches!(e, E::MissingSchema),
            ),
            (
                format!(
                    "<Autodiscover xmlns=\"{ns}\"><Request>{ok_fields}<EMailAddress>x@y.z</EMailAddress></Request></Autodiscover>"
                ),
                |e| matches!(e, E::InvalidField("EMailAddress")),
            ),
            (
                format!(
                    "<Autodiscover xmlns=\"{ns}\"><Request><EMailAddress><b/></EMailAddress></Request></Autodiscover>"
                ),
                |e| matches!(e, E::InvalidField("EMailAddress")),
            ),
            (
                format!(
                    "<Autodiscover xmlns=\"{ns}\"><Request><EMailAddress>{}</EMailAddress></Request></Autodiscover>",
                    "a".repeat(MAX_FIELD_LEN + 1)
                ),
                |e| matches!(e, E::InvalidField("EMailAddress")),
            ),
            (
                format!(
                    "<Autodiscover xmlns=\"{ns}\"><Request>{}</Request></Autodiscover>",
                    "<x>".repeat(20)
                ),
                |e| matches!(e, E::TooDeep),
            ),
            (
                format!(
                    "<Autodiscover xmlns=\"{ns}\"><Request>{ok_fields}</Request></Autodiscover><Autodiscover/>"
                ),
                |e| matches!(e, E::Malformed(_)),
            ),
            (
                format!(
                    "<Autodiscover xmlns=\"{ns}\"><Request>{ok_fields}</Request></Autodiscover>trailing"
                ),
                |e| matches!(e, E::Malformed(_)),
            ),
            (
                format!(
                    "<Autodiscover xmlns=\"{ns}\"><Request>{ok_fields}</Request><Request/></Autodiscover>"
                ),
                |e| matches!(e, E::WrongDocument),
            ),
        ];
        for (body, expected) in cases {
            let err = parse(&body).expect_err(&body);
            assert!(expected(&err), "{body}: {err:?}");
        }
        assert!(matches!(
            parse_pox_request(&[0xff, 0xfe], 100),
            Err(E::NotUtf8)
        ));
        assert!(matches!(
            parse_pox_request(&[b' '; 101], 100),
            Err(E::TooLarge { len: 101, max: 100 })
        ));
    }

    fn reply_tree(reply: &HttpReply) -> Node {
        assert_eq!(reply.status, 200);
        assert_eq!(reply.content_type, Some(super::super::XML_CONTENT_TYPE));
        parse_tree(&reply.body)
    }

    fn error_code(reply: &HttpReply) -> (String, String) {
        let root = reply_tree(reply);
        assert_eq!(root.name, "Autodiscover");
        assert_eq!(root.ns, RESPONSE_SCHEMA);
        let error = root.one("Response").one("Error");
        assert!(error.attr("Id").is_some_and(|id| id.parse::<u32>().is_ok()));
        let time = error.attr("Time").unwrap();
        assert_eq!(time.len(), 16, "{time}");
        assert_eq!(&time[2..3], ":");
        error.one("DebugData");
        (
            error.text_of("ErrorCode").to_owned(),
            error.text_of("Message").to_owned(),
        )
    }

    #[test]
    fn full_settings_for_alice() {
        let ctx = context(
            "[OutlookAnywhere]\n\
             ExternalHostname = \"mail.example.com\"\n\
             InternalHostname = \"cas01.corp.example.com\"\n\
             ExternalClientAuthenticationMethod = \"Ntlm\"\n\
             InternalClientAuthenticationMethod = \"Negotiate\"\n",
        );
        let reply = respond_pox(&ctx, &request("Alice@Example.com"), "alice");
        assert!(
            reply
                .headers
                .iter()
                .any(|(k, v)| *k == "Cache-Control" && v.contains("private"))
        );
        let root = reply_tree(&reply);
        assert_eq!(
            (root.ns.as_str(), root.name.as_str()),
            (RESPONSE_SCHEMA, "Autodiscover")
        );
        let response = root.one("Response");
        assert_eq!(response.ns, OUTLOOK_RESPONSE_SCHEMA);
        let user = response.one("User");
        assert_eq!(user.text_of("DisplayName"), "Alice Liddell");
        assert_eq!(
            user.text_of("LegacyDN"),
            "/o=First Organization/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=alice"
        );
        assert_eq!(user.text_of("AutoDiscoverSMTPAddress"), "alice@example.com");
        assert_eq!(user.text_of("DeploymentId"), ctx.config.deployment_id);
        let account = response.one("Account");
        assert_eq!(account.text_of("AccountType"), "email");
        assert_eq!(account.text_of("Action"), "settings");
        let types: Vec<&str> = account.all("Protocol").map(|p| p.text_of("Type")).collect();
        assert_eq!(types, ["EXCH", "EXPR", "IMAP", "POP3"]);

        let exch = account.protocol("EXCH").unwrap();
        assert_eq!(exch.text_of("Server"), "cas01.corp.example.com");
        assert_eq!(
            exch.text_of("ServerDN"),
            "/o=First Organization/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Configuration/cn=Servers/cn=CAS-SERVER"
        );
        assert!(
            exch.text_of("MdbDN")
                .ends_with("/cn=CAS-SERVER/cn=Microsoft Private MDB")
        );
        assert_eq!(exch.text_of("AuthPackage"), "Negotiate");
        assert_eq!(exch.text_of("TTL"), "1");

        let expr = account.protocol("EXPR").unwrap();
        assert_eq!(expr.text_of("Server"), "mail.example.com");
        assert_eq!(expr.text_of("SSL"), "On");
        assert_eq!(expr.text_of("AuthPackage"), "Ntlm");
        assert_eq!(expr.text_of("CertPrincipalName"), "msstd:mail.example.com");
        assert_eq!(expr.text_of("ServerExclusiveConnect"), "On");

        let imap = account.protocol("IMAP").unwrap();
        assert_eq!(imap.text_of("Server"), "mail.example.com");
        assert_eq!(imap.text_of("Port"), "993");
        assert_eq!(imap.text_of("SSL"), "on");
        assert_eq!(imap.text_of("Encryption"), "SSL");
        assert_eq!(imap.text_of("SPA"), "off");
        assert_eq!(imap.text_of("LoginName"), "alice");
        assert_eq!(imap.text_of("AuthRequired"), "on");
        assert_eq!(imap.text_of("DomainRequired"), "off");
        let pop = account.protocol("POP3").unwrap();
        assert_eq!(pop.text_of("Port"), "995");
        assert_eq!(pop.text_of("Encryption"), "SSL");
    }

    #[test]
    fn defaults_basic_auth_and_starttls_and_x509_names() {
        let mut config = config();
        config.pop3 = MailEndpoint::of_listeners(Some("0.0.0.0:110".parse().unwrap()), None, true);
        config.https_port = 8443;
        let ctx = context_with(
            "[OutlookAnywhere]\nExternalClientAuthenticationMethod = \"Basic\"\n\
             [PopSettings]\nX509CertificateName = \"pop.example.com\"\n",
            config,
        );
        let root = reply_tree(&respond_pox(&ctx, &request("bob@example.org"), "bob"));
        let account = root.one("Response").one("Account");
        let expr = account.protocol("EXPR").unwrap();
        assert_eq!(expr.text_of("Server"), "cas.example.com:8443");
        assert_eq!(expr.text_of("AuthPackage"), "Basic");
        assert_eq!(expr.text_of("CertPrincipalName"), "msstd:cas.example.com");
        let exch = account.protocol("EXCH").unwrap();
        assert_eq!(exch.text_of("Server"), "cas.example.com");
        assert_eq!(exch.text_of("AuthPackage"), "Ntlm");
        let pop = account.protocol("POP3").unwrap();
        assert_eq!(pop.text_of("Server"), "pop.example.com");
        assert_eq!(pop.text_of("Port"), "110");
        assert_eq!(pop.text_of("SSL"), "off");
        assert_eq!(pop.text_of("Encryption"), "TLS");
        assert_eq!(
            account.protocol("IMAP").unwrap().text_of("Server"),
            "cas.example.com"
        );
    }

    #[test]
    fn plain_http_without_offloading_is_ssl_off() {
        let mut config = config();
        config.https_tls = false;
        let ctx = context_with("[OutlookAnywhere]\nSSLOffloading = false\n", config);
        let root = reply_tree(&respond_pox(&ctx, &request("bob@example.com"), "bob"));
        let expr = root
            .one("Response")
            .one("Account")
            .protocol("EXPR")
            .unwrap()
            .clone();
        assert_eq!(expr.text_of("SSL"), "Off");
        assert!(expr.all("CertPrincipalName").next().is_none());
    }

    #[test]
    fn policy_removes_sections() {
        let ctx = context(
            "[CASMailbox.alice]\nMAPIBlockOutlookRpcHttp = true\nPopEnabled = false\n\
             [CASMailbox.bob]\nImapEnabled = false\nMAPIEnabled = false\n",
        );
        let types = |user: &str| {
            let root = reply_tree(&respond_pox(
                &ctx,
                &request(&format!("{user}@example.com")),
                user,
            ));
            root.one("Response")
                .one("Account")
                .all("Protocol")
                .map(|p| p.text_of("Type").to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(types("alice"), ["IMAP"]);
        assert_eq!(types("bob"), ["POP3"]);
        let ctx = context("[OutlookAnywhere]\nEnabled = false\n");
        let root = reply_tree(&respond_pox(&ctx, &request("alice@example.com"), "alice"));
        assert!(
            root.one("Response")
                .one("Account")
                .protocol("EXPR")
                .is_none()
        );
        let ctx = context(
            "[CASMailbox.alice]\nMAPIEnabled = false\nPopEnabled = false\nImapEnabled = false\n",
        );
        let reply = respond_pox(&ctx, &request("alice@example.com"), "alice");
        assert_eq!(error_code(&reply), ("501".into(), "Bad Address".into()));
    }

    #[test]
    fn login_type_and_ntlm_pick_the_pop_endpoint() {
        let mut config = config();
        config.pop3 = MailEndpoint::of_listeners(Some("0.0.0.0:110".parse().unwrap()), None, false);
        config.imap.clear();
        // SecureLogin (default) without TLS: nothing usable, so no POP3 section.
        let ctx = context_with("", config.clone());
        let root = reply_tree(&respond_pox(&ctx, &request("alice@example.com"), "alice"));
        assert!(
            root.one("Response")
                .one("Account")
                .protocol("POP3")
                .is_none()
        );
        // PlainTextAuthentication allows NTLM without TLS: SPA on.
        let ctx = context_with(
            "[PopSettings]\nLoginType = \"PlainTextAuthentication\"\n",
            config.clone(),
        );
        let root = reply_tree(&respond_pox(&ctx, &request("alice@example.com"), "alice"));
        let pop = root
            .one("Response")
            .one("Account")
            .protocol("POP3")
            .unwrap()
            .clone();
        assert_eq!(
            (pop.text_of("SPA"), pop.text_of("Encryption")),
            ("on", "None")
        );
        // PlainTextLogin: clear text works, SPA off.
        let ctx = context_with("[PopSettings]\nLoginType = \"PlainTextLogin\"\n", config);
        let root = reply_tree(&respond_pox(&ctx, &request("alice@example.com"), "alice"));
        let pop = root
            .one("Response")
            .one("Account")
            .protocol("POP3")
            .unwrap()
            .clone();
        assert_eq!(pop.text_of("SPA"), "off");
    }

    #[test]
    fn error_replies() {
        let ctx = context("");
        let not_found = (
            "500".to_owned(),
            "The e-mail address cannot be found.".to_owned(),
        );
        // Someone else's address, an unknown address, an unknown caller.
        assert_eq!(
            error_code(&respond_pox(&ctx, &request("bob@example.com"), "alice")),
            not_found
        );
        assert_eq!(
            error_code(&respond_pox(&ctx, &request("nobody@example.com"), "alice")),
            not_found
        );
        assert_eq!(
            error_code(&respond_pox(&ctx, &request("alice@other.example"), "alice")),
            not_found
        );
        assert_eq!(
            error_code(&respond_pox(
                &ctx,
                &request("mallory@example.com"),
                "mallory"
            )),
            not_found
        );
        assert_eq!(
            error_code(&respond_pox(&ctx, b"<not-xml", "alice")),
            ("600".into(), "Invalid Request".into())
        );
        let mobilesync = format!(
            "<Autodiscover xmlns=\"{OUTLOOK_REQUEST_SCHEMA}\"><Request><EMailAddress>alice@example.com</EMailAddress>\
             <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006</AcceptableResponseSchema>\
             </Request></Autodiscover>"
        );
        assert_eq!(
            error_code(&respond_pox(&ctx, mobilesync.as_bytes(), "alice")),
            (
                "601".into(),
                "The requested schema version is not supported".into()
            )
        );
        let big = vec![b' '; ctx.config.max_request_bytes + 1];
        assert_eq!(respond_pox(&ctx, &big, "alice").status, 413);
    }

    #[test]
    fn legacy_dn_requests_and_address_users() {
        let ctx = context("");
        let dn = ctx.identity(&users(), "alice").unwrap().legacy_dn;
        let body = format!(
            "<Autodiscover xmlns=\"{OUTLOOK_REQUEST_SCHEMA}\"><Request><LegacyDN>{dn}</LegacyDN>\
             <AcceptableResponseSchema>{OUTLOOK_RESPONSE_SCHEMA}</AcceptableResponseSchema></Request></Autodiscover>"
        );
        let root = reply_tree(&respond_pox(&ctx, body.as_bytes(), "alice"));
        assert_eq!(
            root.one("Response")
                .one("User")
                .text_of("AutoDiscoverSMTPAddress"),
            "alice@example.com"
        );
        assert_eq!(
            error_code(&respond_pox(&ctx, body.as_bytes(), "bob")).0,
            "500"
        );
        let root = reply_tree(&respond_pox(
            &ctx,
            &request("carol@example.org"),
            "carol@example.org",
        ));
        let account = root.one("Response").one("Account");
        assert_eq!(
            account.protocol("IMAP").unwrap().text_of("LoginName"),
            "carol@example.org"
        );
    }

    #[test]
    fn values_are_escaped() {
        let phc = cas_auth::hash_password_with(
            b"pw",
            b"0123456789abcdef",
            &cas_auth::PasswordHashParams::dangerous_low_cost(),
        )
        .unwrap();
        let store = cas_auth::FileCredentialStore::parse(&format!(
            "eve:{phc}:display_name=<Eve & \"Co\">\n"
        ))
        .unwrap();
        let mut ctx = context("");
        ctx.directory =
            std::sync::Arc::new(super::super::StaticDirectory(std::sync::Arc::new(store)));
        let reply = respond_pox(&ctx, &request("eve@example.com"), "eve");
        let text = String::from_utf8(reply.body.clone()).unwrap();
        assert!(!text.contains("<Eve"), "{text}");
        let root = reply_tree(&reply);
        assert_eq!(
            root.one("Response").one("User").text_of("DisplayName"),
            "<Eve & \"Co\">"
        );
    }
}
