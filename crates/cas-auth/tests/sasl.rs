//! SASL PLAIN and LOGIN against a real FileCredentialStore: RFC 4616 §4 examples, negative
//! cases, authorization rules, completion and abort.

use std::sync::{Arc, Mutex};

use cas_auth::sasl::{
    LoginServer, MalformedKind, Mechanism, PASSWORD_CHALLENGE, PlainServer, SaslFailure,
    ServerMechanism, Step, USERNAME_CHALLENGE,
};
use cas_auth::{
    CredentialStore, FileCredentialStore, PasswordHashParams, Secret, StoreError,
    hash_password_with, nt_hash_of,
};

/// The accounts of RFC 4616 §4 plus one with a capitalized name.
fn store() -> FileCredentialStore {
    let p = PasswordHashParams::dangerous_low_cost();
    let line = |user: &str, pw: &str| {
        let phc = hash_password_with(pw.as_bytes(), b"per-test-salt-16", &p).unwrap();
        FileCredentialStore::render_line(user, &phc, Some(nt_hash_of(pw))).unwrap()
    };
    let text = [
        line("tim", "tanstaaftanstaaf"),
        line("Kurt", "xipj3plmq"),
        line("Ursel", "another password"),
        line("jörg", "pässwörd"),
    ]
    .join("\n");
    FileCredentialStore::parse(&text).unwrap()
}

fn success(step: Step) -> (String, String) {
    match step {
        Step::Success {
            authorization_id,
            authentication_id,
        } => (authorization_id, authentication_id),
        other => panic!("expected success, got {other:?}"),
    }
}

fn failure(step: Step) -> SaslFailure {
    match step {
        Step::Failure(f) => f,
        other => panic!("expected failure, got {other:?}"),
    }
}

fn plain(message: &[u8]) -> Step {
    PlainServer::new().step(&store(), Some(message))
}

#[test]
fn rfc4616_example_tim() {
    // §4: "\0tim\0tanstaaftanstaaf" — no authzid, so tim acts as tim.
    assert_eq!(
        success(plain(b"\0tim\0tanstaaftanstaaf")),
        ("tim".into(), "tim".into())
    );
}

#[test]
fn rfc4616_example_kurt_as_ursel() {
    // §4: "Ursel\0Kurt\0xipj3plmq" — Kurt authenticates and asks to act as Ursel. That is
    // proxy authorization: refused by default, allowed by a policy.
    let f = failure(plain(b"Ursel\0Kurt\0xipj3plmq"));
    match f {
        SaslFailure::AuthorizationRefused {
            authentication_id,
            authorization_id,
        } => {
            assert_eq!(authentication_id, "Kurt");
            assert_eq!(authorization_id, "Ursel");
        }
        other => panic!("{other:?}"),
    }

    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = Arc::clone(&seen);
    let mut server = PlainServer::with_authorization(move |authc, authz| {
        seen2
            .lock()
            .unwrap()
            .push((authc.to_owned(), authz.to_owned()));
        authc == "Kurt" && authz == "Ursel"
    });
    assert_eq!(
        success(server.step(&store(), Some(b"ursel\0KURT\0xipj3plmq"))),
        ("Ursel".into(), "Kurt".into())
    );
    // The policy saw the store's spellings.
    assert_eq!(*seen.lock().unwrap(), [("Kurt".into(), "Ursel".into())]);
}

#[test]
fn policy_is_not_consulted_for_bad_passwords() {
    let called = Arc::new(Mutex::new(false));
    let c = Arc::clone(&called);
    let mut server = PlainServer::with_authorization(move |_, _| {
        *c.lock().unwrap() = true;
        true
    });
    let f = failure(server.step(&store(), Some(b"Ursel\0Kurt\0wrong")));
    assert!(matches!(f, SaslFailure::InvalidCredentials));
    assert!(!*called.lock().unwrap());
}

#[test]
fn authzid_naming_the_same_account_is_not_proxying() {
    for msg in [
        &b"tim\0tim\0tanstaaftanstaaf"[..],
        b"TIM\0tim\0tanstaaftanstaaf",
        b"tim\0TIM\0tanstaaftanstaaf",
    ] {
        assert_eq!(success(plain(msg)), ("tim".into(), "tim".into()), "{msg:?}");
    }
    // The canonical spelling is reported, not the client's.
    assert_eq!(
        success(plain(b"\0kurt\0xipj3plmq")),
        ("Kurt".into(), "Kurt".into())
    );
    // Non-ASCII names are exact apart from ASCII letters.
    assert_eq!(
        success(plain("\0JöRG\0pässwörd".as_bytes())),
        ("jörg".into(), "jörg".into())
    );
    assert!(matches!(
        failure(plain("\0JÖRG\0pässwörd".as_bytes())),
        SaslFailure::InvalidCredentials
    ));
}

#[test]
fn unknown_user_and_wrong_password_look_alike() {
    for msg in [
        &b"\0tim\0tanstaaf"[..],
        b"\0tim\0TANSTAAFTANSTAAF",
        b"\0tim\0tanstaaftanstaaf ",
        b"\0nobody\0tanstaaftanstaaf",
        b"\0tim \0tanstaaftanstaaf",
    ] {
        assert!(
            matches!(failure(plain(msg)), SaslFailure::InvalidCredentials),
            "{msg:?}"
        );
    }
}

#[test]
fn malformed_plain_messages() {
    let cases: &[(&[u8], MalformedKind)] = &[
        (b"", MalformedKind::MissingSeparator),
        (b"tim", MalformedKind::MissingSeparator),
        (b"tim\0tanstaaftanstaaf", MalformedKind::MissingSeparator),
        (b"\0tim\0tans\0taaf", MalformedKind::UnexpectedNul),
        (b"\0tim\0tanstaaftanstaaf\0", MalformedKind::UnexpectedNul),
        (b"\0\0\0", MalformedKind::UnexpectedNul),
        (b"\0\0pw", MalformedKind::EmptyAuthenticationId),
        (b"\0tim\0", MalformedKind::EmptyPassword),
        (b"\0t\xffm\0pw", MalformedKind::NotUtf8),
        (b"\xc3\0tim\0pw", MalformedKind::NotUtf8),
        (b"\0tim\0\xed\xa0\x80", MalformedKind::NotUtf8), // UTF-8 encoded surrogate
    ];
    for (msg, kind) in cases {
        match failure(plain(msg)) {
            SaslFailure::Malformed(k) => assert_eq!(k, *kind, "{msg:?}"),
            other => panic!("{msg:?}: {other:?}"),
        }
    }
}

#[test]
fn plain_field_limits() {
    // RFC 4616: every field up to 255 octets must be accepted, even with the smallest limit.
    let long = "p".repeat(255);
    let msg = format!("\0tim\0{long}");
    let f = failure(
        PlainServer::new()
            .with_max_field_len(10)
            .step(&store(), Some(msg.as_bytes())),
    );
    assert!(matches!(f, SaslFailure::InvalidCredentials));

    let too_long = format!("\0tim\0{}", "p".repeat(1025));
    assert!(matches!(
        failure(plain(too_long.as_bytes())),
        SaslFailure::Malformed(MalformedKind::TooLong { max: 1024 })
    ));
    let huge = vec![b'a'; 1 << 20];
    assert!(matches!(
        failure(plain(&huge)),
        SaslFailure::Malformed(MalformedKind::TooLong { .. })
    ));
    let mut server = PlainServer::new().with_max_field_len(300);
    let f = failure(server.step(
        &store(),
        Some(format!("\0tim\0{}", "p".repeat(301)).as_bytes()),
    ));
    assert!(matches!(
        f,
        SaslFailure::Malformed(MalformedKind::TooLong { max: 300 })
    ));
}

#[test]
fn plain_without_initial_response() {
    let store = store();
    let mut server = PlainServer::new();
    assert!(matches!(server.step(&store, None), Step::Challenge(c) if c.is_empty()));
    assert!(!server.is_complete());
    assert!(server.authentication_id().is_none());
    let (authz, authc) = success(server.step(&store, Some(b"\0tim\0tanstaaftanstaaf")));
    assert_eq!((authz.as_str(), authc.as_str()), ("tim", "tim"));
    assert!(server.is_complete());
    assert_eq!(server.authentication_id(), Some("tim"));
}

#[test]
fn plain_empty_initial_response_is_malformed() {
    // "AUTH PLAIN =" sends a zero-length initial response, which is not a PLAIN message.
    assert!(matches!(
        failure(plain(b"")),
        SaslFailure::Malformed(MalformedKind::MissingSeparator)
    ));
    // A missing response after the empty challenge is a caller error, reported as such.
    let mut server = PlainServer::new();
    let _ = server.step(&store(), None);
    assert!(matches!(
        failure(server.step(&store(), None)),
        SaslFailure::Malformed(MalformedKind::MissingResponse)
    ));
}

#[test]
fn steps_after_completion_and_abort() {
    let store = store();
    let mut server = PlainServer::new();
    let _ = success(server.step(&store, Some(b"\0tim\0tanstaaftanstaaf")));
    for _ in 0..3 {
        assert!(matches!(
            failure(server.step(&store, Some(b"\0tim\0tanstaaftanstaaf"))),
            SaslFailure::AlreadyCompleted
        ));
    }
    assert!(matches!(
        failure(server.abort()),
        SaslFailure::AlreadyCompleted
    ));

    let mut server = PlainServer::new();
    let _ = server.step(&store, None);
    assert!(matches!(failure(server.abort()), SaslFailure::Aborted));
    assert!(server.is_complete());
    assert!(matches!(
        failure(server.step(&store, Some(b"\0tim\0tanstaaftanstaaf"))),
        SaslFailure::AlreadyCompleted
    ));

    let mut login = LoginServer::new();
    assert!(matches!(failure(login.abort()), SaslFailure::Aborted));
    assert!(matches!(
        failure(login.step(&store, Some(b"tim"))),
        SaslFailure::AlreadyCompleted
    ));
}

#[test]
fn login_exchange() {
    let store = store();
    let mut login = LoginServer::new();
    assert!(matches!(login.step(&store, None), Step::Challenge(c) if c == USERNAME_CHALLENGE));
    assert!(
        matches!(login.step(&store, Some(b"TIM")), Step::Challenge(c) if c == PASSWORD_CHALLENGE)
    );
    assert_eq!(login.authentication_id(), Some("TIM"));
    assert_eq!(
        success(login.step(&store, Some(b"tanstaaftanstaaf"))),
        ("tim".into(), "tim".into())
    );
    assert!(login.is_complete());
    assert!(matches!(
        failure(login.step(&store, Some(b"x"))),
        SaslFailure::AlreadyCompleted
    ));
}

#[test]
fn login_initial_response_is_the_user_name() {
    let store = store();
    let mut login = LoginServer::new();
    assert!(
        matches!(login.step(&store, Some(b"Kurt")), Step::Challenge(c) if c == PASSWORD_CHALLENGE)
    );
    assert_eq!(
        success(login.step(&store, Some(b"xipj3plmq"))),
        ("Kurt".into(), "Kurt".into())
    );
    // An empty initial response names nobody: the server asks.
    let mut login = LoginServer::new();
    assert!(matches!(login.step(&store, Some(b"")), Step::Challenge(c) if c == USERNAME_CHALLENGE));
}

#[test]
fn login_failures() {
    let store = store();
    let run = |responses: &[&[u8]]| {
        let mut login = LoginServer::new();
        let mut step = login.step(&store, None);
        for r in responses {
            step = login.step(&store, Some(r));
        }
        failure(step)
    };
    assert!(matches!(
        run(&[b"tim", b"wrong"]),
        SaslFailure::InvalidCredentials
    ));
    assert!(matches!(
        run(&[b"nobody", b"tanstaaftanstaaf"]),
        SaslFailure::InvalidCredentials
    ));
    assert!(matches!(
        run(&[b""]),
        SaslFailure::Malformed(MalformedKind::EmptyAuthenticationId)
    ));
    assert!(matches!(
        run(&[b"t\0im"]),
        SaslFailure::Malformed(MalformedKind::UnexpectedNul)
    ));
    assert!(matches!(
        run(&[b"t\xffm"]),
        SaslFailure::Malformed(MalformedKind::NotUtf8)
    ));
    assert!(matches!(
        run(&[b"tim", b""]),
        SaslFailure::Malformed(MalformedKind::EmptyPassword)
    ));
    let long = vec![b'u'; 1025];
    assert!(matches!(
        run(&[&long]),
        SaslFailure::Malformed(MalformedKind::TooLong { max: 1024 })
    ));
    assert!(matches!(
        run(&[b"tim", &long]),
        SaslFailure::Malformed(MalformedKind::TooLong { max: 1024 })
    ));
    let mut login = LoginServer::new();
    let _ = login.step(&store, None);
    assert!(matches!(
        failure(login.step(&store, None)),
        SaslFailure::Malformed(MalformedKind::MissingResponse)
    ));
}

#[test]
fn login_password_is_raw_bytes() {
    // LOGIN passes the password bytes through, so a UTF-8 password works unchanged.
    let store = store();
    let mut login = LoginServer::new();
    let _ = login.step(&store, Some("jörg".as_bytes()));
    assert_eq!(
        success(login.step(&store, Some("pässwörd".as_bytes()))),
        ("jörg".into(), "jörg".into())
    );
}

/// A store whose backend is down.
struct DownStore;

impl CredentialStore for DownStore {
    fn verify_password(&self, _: &str, _: &[u8]) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable("ldap timeout".into()))
    }
    fn nt_hash(&self, _: &str) -> Result<Option<Secret<[u8; 16]>>, StoreError> {
        Err(StoreError::Unavailable("ldap timeout".into()))
    }
}

#[test]
fn store_errors_are_temporary_failures() {
    let f = failure(PlainServer::new().step(&DownStore, Some(b"\0tim\0pw")));
    assert!(f.is_temporary());
    assert!(!f.is_rejected_login());
    assert!(matches!(
        f,
        SaslFailure::StoreUnavailable(StoreError::Unavailable(_))
    ));
    let mut login = LoginServer::new();
    let _ = login.step(&DownStore, Some(b"tim"));
    assert!(failure(login.step(&DownStore, Some(b"pw"))).is_temporary());
}

#[test]
fn boxed_mechanisms() {
    let store = Arc::new(store());
    let mut machines: Vec<Box<dyn ServerMechanism>> =
        vec![Box::new(PlainServer::new()), Box::new(LoginServer::new())];
    assert_eq!(machines[0].mechanism(), Mechanism::Plain);
    assert_eq!(machines[1].mechanism(), Mechanism::Login);
    let step = machines[0].step(&store, Some(b"\0tim\0tanstaaftanstaaf"));
    assert!(step.is_final());
    assert!(machines[0].is_complete());
    let step = machines[1].step(&store, None);
    assert!(!step.is_final());
    assert!(matches!(
        machines[1].abort(),
        Step::Failure(SaslFailure::Aborted)
    ));
    assert_eq!(machines[0].authentication_id(), Some("tim"));
}

#[test]
fn nt_hash_is_available_for_ntlm() {
    let store = store();
    let h = store.nt_hash("TIM").unwrap().unwrap();
    assert_eq!(h.expose(), &nt_hash_of("tanstaaftanstaaf"));
    assert_eq!(format!("{h:?}"), "Secret(..)");
    assert!(store.nt_hash("nobody").unwrap().is_none());
}
