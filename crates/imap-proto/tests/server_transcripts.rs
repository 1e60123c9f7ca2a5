//! Byte-in/byte-out transcripts of the IMAP server session with a virtual clock.

mod server_util;

use cas_imap_proto::server::{CloseReason, Event, LoginOutcome, SessionOptions, State};
use server_util::{Harness, full_config};

const CAPS_AUTH: &str = "IMAP4rev1 IMAP4rev2 ENABLE IDLE LITERAL- APPENDLIMIT=26214400 \
UIDPLUS MOVE UNSELECT NAMESPACE ID CONDSTORE QRESYNC ESEARCH UTF8=ACCEPT COMPRESS=DEFLATE";

#[test]
fn greeting_capability_login_logout() {
    let mut h = Harness::tls();
    assert_eq!(
        h.output(),
        format!("* OK [CAPABILITY {CAPS_AUTH}] cas-rs IMAP server ready\r\n")
    );
    assert_eq!(
        h.input("a1 CAPABILITY\r\n"),
        format!("* CAPABILITY {CAPS_AUTH}\r\na1 OK CAPABILITY completed\r\n")
    );
    assert_eq!(h.input("a2 LOGIN alice \"s3cr et\"\r\n"), "");
    let Some(Event::LoginRequested {
        id,
        username,
        password,
    }) = h.event()
    else {
        panic!("expected LoginRequested")
    };
    assert_eq!(username, "alice");
    assert_eq!(password.expose(), b"s3cr et");
    assert_eq!(format!("{password:?}"), "<redacted>");
    h.session
        .finish_authentication(id, LoginOutcome::accepted("alice"))
        .unwrap();
    assert_eq!(
        h.output(),
        format!("a2 OK [CAPABILITY {CAPS_AUTH}] LOGIN completed\r\n")
    );
    assert_eq!(h.session.state(), State::Authenticated);
    assert_eq!(h.session.user(), Some("alice"));
    assert_eq!(
        h.input("a3 LOGOUT\r\n"),
        "* BYE Logging out\r\na3 OK LOGOUT completed\r\n"
    );
    assert!(matches!(
        h.event(),
        Some(Event::Closed {
            reason: CloseReason::Logout
        })
    ));
    assert!(h.session.is_closed());
    assert!(!h.session.wants_input());
}

#[test]
fn login_disabled_before_tls() {
    let mut config = full_config();
    config.tls_available = true;
    config.sasl_mechanisms = vec![
        cas_imap_proto::server::SaslMechanism::new("PLAIN", true),
        cas_imap_proto::server::SaslMechanism::new("NTLM", false),
    ];
    let mut h = Harness::new(config, SessionOptions::default());
    let greeting = h.output();
    assert!(
        greeting.starts_with(
            "* OK [CAPABILITY IMAP4rev1 IMAP4rev2 STARTTLS LOGINDISABLED AUTH=NTLM SASL-IR ENABLE"
        ),
        "{greeting}"
    );
    assert!(!greeting.contains("AUTH=PLAIN"));
    assert_eq!(
        h.input("a1 LOGIN alice secret\r\n"),
        "a1 NO [PRIVACYREQUIRED] Clear-text login is not allowed before STARTTLS\r\n"
    );
    assert!(h.events().is_empty());
}
