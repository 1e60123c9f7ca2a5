//! Mozilla autoconfig (`clientConfig version="1.1"`, the Thunderbird ISPDB format).

use std::io;

use cas_policy::{Policy, Protocol};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use super::pox::mechanisms;
use super::{AutodiscoverContext, HttpReply, MailEndpoint, TransportSecurity, split_address};

/// Longest `emailaddress` accepted, decoded (RFC 5321's 254 plus slack for odd clients).
const MAX_ADDRESS_LEN: usize = 320;
/// Longest query string looked at.
const MAX_QUERY_LEN: usize = 4096;

/// The parsed autoconfig query.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AutoconfigQuery {
    /// `emailaddress=`, percent-decoded.
    pub email_address: Option<String>,
}

/// Parses the query of an autoconfig request: the part after `?` (or all of `query` when it
/// has none). `emailaddress` is matched case-insensitively and percent-decoded; `+` stays a
/// plus, as it is in addresses (Thunderbird escapes with `encodeURIComponent`). Other keys
/// are ignored.
pub fn parse_autoconfig_query(query: &str) -> Result<AutoconfigQuery, &'static str> {
    let query = query.split_once('?').map_or(query, |(_, q)| q);
    if query.len() > MAX_QUERY_LEN {
        return Err("query too long");
    }
    let mut out = AutoconfigQuery::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key.eq_ignore_ascii_case("emailaddress") {
            if out.email_address.is_some() {
                return Err("emailaddress given twice");
            }
            let decoded = percent_decode(value)?;
            if decoded.len() > MAX_ADDRESS_LEN {
                return Err("emailaddress too long");
            }
            out.email_address = Some(decoded);
        }
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Result<String, &'static str> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or("truncated percent escape")?;
            let hex = std::str::from_utf8(hex).map_err(|_| "bad percent escape")?;
            let v = u8::from_str_radix(hex, 16).map_err(|_| "bad percent escape")?;
            out.push(v);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "emailaddress is not UTF-8")
}

/// The `username` template every account can use: `%EMAILADDRESS%` when every user in the
/// users file is named by an address (so they log in with it), else `%EMAILLOCALPART%`.
/// Decided for the whole file, not per address, so the anonymous reply never tells which
/// addresses exist.
fn username_template(ctx: &AutodiscoverContext) -> &'static str {
    let store = ctx.directory.snapshot();
    let all_addresses =
        !store.is_empty() && store.accounts().all(|a| split_address(a.user()).is_some());
    if all_addresses {
        "%EMAILADDRESS%"
    } else {
        "%EMAILLOCALPART%"
    }
}

fn leaf(w: &mut Writer<Vec<u8>>, name: &str, text: &str) -> io::Result<()> {
    w.create_element(name)
        .write_text_content(BytesText::new(text))?;
    Ok(())
}

/// One `incomingServer` to announce.
struct Incoming {
    kind: &'static str,
    host: String,
    endpoint: MailEndpoint,
    cleartext: bool,
    ntlm: bool,
}

fn incoming(ctx: &AutodiscoverContext, policy: &Policy) -> Vec<Incoming> {
    let mut out = Vec::new();
    // IMAP first: Thunderbird takes the first server, and IMAP keeps mail on the server
    // for every device.
    for (kind, protocol, endpoints) in [
        ("imap", Protocol::Imap4, &ctx.config.imap),
        ("pop3", Protocol::Pop3, &ctx.config.pop3),
    ] {
        for e in endpoints {
            let tls = e.security != TransportSecurity::None;
            let (cleartext, ntlm) = mechanisms(ctx, policy, protocol, tls);
            if cleartext || ntlm {
                out.push(Incoming {
                    kind,
                    host: ctx.mail_host(policy, protocol),
                    endpoint: *e,
                    cleartext,
                    ntlm,
                });
            }
        }
    }
    out
}

fn socket_type(s: TransportSecurity) -> &'static str {
    match s {
        TransportSecurity::ImplicitTls => "SSL",
        TransportSecurity::StartTls => "STARTTLS",
        TransportSecurity::None => "plain",
    }
}

fn document(
    ctx: &AutodiscoverContext,
    domain: &str,
    servers: &[Incoming],
    username: &str,
) -> io::Result<Vec<u8>> {
    let cfg = &ctx.config;
    let mut w = Writer::new_with_indent(Vec::with_capacity(2048), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.create_element("clientConfig")
        .with_attribute(("version", "1.1"))
        .write_inner_content(|w| {
            w.create_element("emailProvider")
                .with_attribute(("id", domain))
                .write_inner_content(|w| {
                    leaf(w, "domain", &cfg.email_domain)?;
                    for d in &cfg.accepted_email_domains {
                        leaf(w, "domain", d)?;
                    }
                    leaf(w, "displayName", &format!("{domain} mail"))?;
                    leaf(w, "displayShortName", domain)?;
                    for s in servers {
                        w.create_element("incomingServer")
                            .with_attribute(("type", s.kind))
                            .write_inner_content(|w| {
                                leaf(w, "hostname", &s.host)?;
                                leaf(w, "port", &s.endpoint.port.to_string())?;
                                leaf(w, "socketType", socket_type(s.endpoint.security))?;
                                // In preference order: clients take the first they support.
                                if s.cleartext {
                                    leaf(w, "authentication", "password-cleartext")?;
                                }
                                if s.ntlm {
                                    leaf(w, "authentication", "NTLM")?;
                                }
                                leaf(w, "username", username)?;
                                Ok(())
                            })?;
                    }
                    if let Some(smtp) = &cfg.submission {
                        w.create_element("outgoingServer")
                            .with_attribute(("type", "smtp"))
                            .write_inner_content(|w| {
                                leaf(w, "hostname", &smtp.host)?;
                                leaf(w, "port", &smtp.port.to_string())?;
                                leaf(w, "socketType", socket_type(smtp.security))?;
                                leaf(w, "authentication", "password-cleartext")?;
                                leaf(w, "username", username)?;
                                Ok(())
                            })?;
                    }
                    Ok(())
                })?;
            Ok(())
        })?;
    Ok(w.into_inner())
}

/// [`super::respond_autoconfig`].
pub(super) fn respond(ctx: &AutodiscoverContext, query: &str) -> HttpReply {
    let query = match parse_autoconfig_query(query) {
        Ok(q) => q,
        Err(why) => return HttpReply::text(400, &format!("{why}\n")),
    };
    let domain = match &query.email_address {
        None => ctx.config.email_domain.clone(),
        Some(a) => match split_address(a.trim()) {
            Some((_, d)) => d.to_ascii_lowercase(),
            None => return HttpReply::text(400, "emailaddress is not an e-mail address\n"),
        },
    };
    if !ctx.config.serves_domain(&domain) {
        return HttpReply::text(404, "no configuration for this domain\n");
    }
    let version = ctx.policy.current();
    let servers = incoming(ctx, &version.policy);
    if servers.is_empty() {
        return HttpReply::text(404, "no POP3 or IMAP service is offered\n");
    }
    match document(ctx, &domain, &servers, username_template(ctx)) {
        Ok(body) => HttpReply::xml(body, "public, max-age=3600"),
        Err(_) => HttpReply::text(500, "internal error\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{MailEndpoint, respond_autoconfig};
    use super::*;

    #[test]
    fn queries_parse() {
        let q = |s: &str| parse_autoconfig_query(s).map(|q| q.email_address);
        assert_eq!(
            q("emailaddress=alice%40example.com"),
            Ok(Some("alice@example.com".into()))
        );
        assert_eq!(
            q("?EmailAddress=a+b%40example.com&x=1"),
            Ok(Some("a+b@example.com".into()))
        );
        assert_eq!(
            q("/mail/config-v1.1.xml?emailaddress=%C3%A9@example.com"),
            Ok(Some("é@example.com".into()))
        );
        assert_eq!(q(""), Ok(None));
        assert_eq!(q("foo=bar"), Ok(None));
        assert!(q("emailaddress=%4").is_err());
        assert!(q("emailaddress=%zz").is_err());
        assert!(q("emailaddress=%ff").is_err());
        assert!(q("emailaddress=a&emailaddress=b").is_err());
        assert!(q(&format!("emailaddress={}", "a".repeat(400))).is_err());
        assert!(q(&"a".repeat(5000)).is_err());
    }

    #[test]
    fn thunderbird_config_lists_imap_then_pop3() {
        let ctx = context("[OutlookAnywhere]\nExternalHostname = \"mail.example.com\"\n");
        let reply = respond_autoconfig(&ctx, "emailaddress=someone%40EXAMPLE.org");
        assert_eq!(reply.status, 200);
        assert_eq!(reply.content_type, Some(super::super::XML_CONTENT_TYPE));
        let root = parse_tree(&reply.body);
        assert_eq!(root.name, "clientConfig");
        assert_eq!(root.attr("version"), Some("1.1"));
        let provider = root.one("emailProvider");
        assert_eq!(provider.attr("id"), Some("example.org"));
        let domains: Vec<&str> = provider.all("domain").map(|d| d.text.as_str()).collect();
        assert_eq!(domains, ["example.com", "example.org"]);
        let servers: Vec<(String, String, String, String)> = provider
            .all("incomingServer")
            .map(|s| {
                (
                    s.attr("type").unwrap().to_owned(),
                    s.text_of("hostname").to_owned(),
                    s.text_of("port").to_owned(),
                    s.text_of("socketType").to_owned(),
                )
            })
            .collect();
        let row =
            |t: &str, p: &str, s: &str| (t.into(), "mail.example.com".into(), p.into(), s.into());
        assert_eq!(
            servers,
            [
                row("imap", "993", "SSL"),
                row("imap", "143", "STARTTLS"),
                row("pop3", "995", "SSL"),
                row("pop3", "110", "STARTTLS"),
            ]
        );
        for s in provider.all("incomingServer") {
            let auth: Vec<&str> = s.all("authentication").map(|a| a.text.as_str()).collect();
            assert_eq!(auth, ["password-cleartext", "NTLM"]);
            // The users file mixes plain names and an address: local parts.
            assert_eq!(s.text_of("username"), "%EMAILLOCALPART%");
        }
        let smtp = provider.one("outgoingServer");
        assert_eq!(smtp.attr("type"), Some("smtp"));
        assert_eq!(smtp.text_of("hostname"), "cas.example.com");
        assert_eq!(smtp.text_of("port"), "587");
        assert_eq!(smtp.text_of("socketType"), "STARTTLS");
    }

    #[test]
    fn unknown_domains_bad_addresses_and_no_service() {
        let ctx = context("");
        assert_eq!(
            respond_autoconfig(&ctx, "emailaddress=a%40other.example").status,
            404
        );
        assert_eq!(
            respond_autoconfig(&ctx, "emailaddress=nonsense").status,
            400
        );
        assert_eq!(respond_autoconfig(&ctx, "emailaddress=%").status, 400);
        let reply = respond_autoconfig(&ctx, "");
        assert_eq!(reply.status, 200);
        assert_eq!(
            parse_tree(&reply.body).one("emailProvider").attr("id"),
            Some("example.com")
        );
        // Plain listeners only, SecureLogin: nothing a client could log in to.
        let mut config = config();
        config.pop3 = MailEndpoint::of_listeners(Some("0.0.0.0:110".parse().unwrap()), None, false);
        config.imap.clear();
        let ctx = context_with("", config.clone());
        assert_eq!(respond_autoconfig(&ctx, "").status, 404);
        let ctx = context_with(
            "[PopSettings]\nLoginType = \"PlainTextAuthentication\"\n",
            config,
        );
        let root = parse_tree(&respond_autoconfig(&ctx, "").body);
        let pop = root.one("emailProvider").one("incomingServer").clone();
        assert_eq!(pop.text_of("socketType"), "plain");
        assert_eq!(pop.text_of("authentication"), "NTLM");
    }

    #[test]
    fn every_address_named_user_file_uses_the_full_address() {
        let phc = cas_auth::hash_password_with(
            b"pw",
            b"0123456789abcdef",
            &cas_auth::PasswordHashParams::dangerous_low_cost(),
        )
        .unwrap();
        let store = cas_auth::FileCredentialStore::parse(&format!(
            "a@example.com:{phc}\nb@example.com:{phc}\n"
        ))
        .unwrap();
        let mut ctx = context("");
        ctx.directory =
            std::sync::Arc::new(super::super::StaticDirectory(std::sync::Arc::new(store)));
        let root = parse_tree(&respond_autoconfig(&ctx, "emailaddress=x%40example.com").body);
        for s in root.one("emailProvider").all("incomingServer") {
            assert_eq!(s.text_of("username"), "%EMAILADDRESS%");
        }
    }
}
