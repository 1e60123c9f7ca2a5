//! Invariants shared by the fuzz target `autodiscover_request` and the tests: any bytes as
//! a POX body or autoconfig query give a reply, never a panic, and every 200 reply is
//! well-formed XML.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use cas_auth::{FileCredentialStore, PasswordHashParams, hash_password_with};
use cas_policy::Policy;

use super::{
    AutodiscoverConfig, AutodiscoverContext, AutodiscoverSection, MailEndpoint, StaticDirectory,
    parse_autoconfig_query, parse_pox_request, respond_autoconfig, respond_pox,
};
use crate::live::LivePolicy;

/// A fixed context: users `alice` and `bob@example.com`, Exchange's default policy,
/// POP3 and IMAP on their standard ports.
pub fn context() -> &'static AutodiscoverContext {
    static CONTEXT: OnceLock<AutodiscoverContext> = OnceLock::new();
    CONTEXT.get_or_init(|| {
        let phc = hash_password_with(
            b"pw",
            b"0123456789abcdef",
            &PasswordHashParams::dangerous_low_cost(),
        )
        .expect("fixed salt and parameters are valid");
        let store = FileCredentialStore::parse(&format!(
            "alice:{phc}:display_name=Alice\nbob@example.com:{phc}\n"
        ))
        .expect("fixed users file is valid");
        let ntlm = crate::config::NtlmSettings {
            dns_domain: "example.com".into(),
            ..Default::default()
        };
        let mut config = AutodiscoverConfig::resolve(AutodiscoverSection::default(), &ntlm)
            .expect("defaults are valid");
        config.pop3 = MailEndpoint::of_listeners(
            Some(([0, 0, 0, 0], 110).into()),
            Some(([0, 0, 0, 0], 995).into()),
            true,
        );
        config.imap = MailEndpoint::of_listeners(Some(([0, 0, 0, 0], 143).into()), None, true);
        let policy = Policy::new(Default::default()).expect("default policy is valid");
        AutodiscoverContext::new(
            config,
            Arc::new(LivePolicy::from_policy(Path::new("/nonexistent"), policy)),
            Arc::new(StaticDirectory(Arc::new(store))),
        )
    })
}

fn assert_well_formed(xml: &[u8]) {
    let text = std::str::from_utf8(xml).expect("replies are UTF-8");
    let mut reader = quick_xml::reader::NsReader::from_str(text);
    let mut depth = 0usize;
    loop {
        match reader.read_event().expect("replies are well-formed XML") {
            quick_xml::events::Event::Start(_) => depth += 1,
            quick_xml::events::Event::End(_) => depth -= 1,
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(depth, 0, "every element closed");
}

/// Feeds `data` to the POX parser and to [`respond_pox`] for both users, and to the
/// autoconfig query parser and [`respond_autoconfig`]; checks the invariants.
pub fn check(data: &[u8]) {
    let ctx = context();
    if let Ok(request) = parse_pox_request(data, ctx.config.max_request_bytes) {
        assert!(!request.acceptable_response_schema.is_empty());
        assert!(request.acceptable_response_schema.len() <= super::pox::MAX_FIELD_LEN);
    }
    for user in ["alice", "bob@example.com", "nobody"] {
        let reply = respond_pox(ctx, data, user);
        match reply.status {
            200 => assert_well_formed(&reply.body),
            413 => assert!(data.len() > ctx.config.max_request_bytes),
            other => panic!("unexpected status {other}"),
        }
    }
    if let Ok(query) = std::str::from_utf8(data) {
        let parsed = parse_autoconfig_query(query);
        let reply = respond_autoconfig(ctx, query);
        match reply.status {
            200 => assert_well_formed(&reply.body),
            400 => {}
            404 => assert!(parsed.is_ok()),
            other => panic!("unexpected status {other}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_hold_the_invariants() {
        let ns = super::super::OUTLOOK_REQUEST_SCHEMA;
        let schema = super::super::OUTLOOK_RESPONSE_SCHEMA;
        for seed in [
            format!(
                "<Autodiscover xmlns=\"{ns}\"><Request><EMailAddress>alice@example.com</EMailAddress><AcceptableResponseSchema>{schema}</AcceptableResponseSchema></Request></Autodiscover>"
            ),
            format!(
                "<Autodiscover xmlns=\"{ns}\"><Request><EMailAddress>bob@example.com</EMailAddress><AcceptableResponseSchema>{schema}</AcceptableResponseSchema></Request></Autodiscover>"
            ),
            "emailaddress=alice%40example.com".to_owned(),
            "<!DOCTYPE x [<!ENTITY a \"aaaa\">]><x>&a;</x>".to_owned(),
            String::new(),
        ] {
            check(seed.as_bytes());
        }
        check(&[0xff, 0x00, b'<']);
    }
}
