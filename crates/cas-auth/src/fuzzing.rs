//! Invariant checks shared by the proptest suites and the cargo-fuzz targets in `fuzz/`.
//!
//! Each function takes arbitrary bytes, drives the crate with them and panics only if an
//! invariant breaks. Not part of the stable API.

use crate::hash::NtHash;
use crate::passwd::FileCredentialStore;
use crate::sasl::{LoginServer, MalformedKind, PlainMessage, PlainServer, SaslFailure, Step};
use crate::secret::Secret;
use crate::store::{CredentialStore, StoreError};

/// The only user of [`FuzzStore`], and its password.
const USER: &str = "alice";
const PASSWORD: &[u8] = b"secret";

/// A store with one account (`alice` / `secret`) that compares passwords directly, so a
/// fuzzer is not slowed down by Argon2.
struct FuzzStore;

impl CredentialStore for FuzzStore {
    fn verify_password(&self, user: &str, password: &[u8]) -> Result<bool, StoreError> {
        Ok(user.eq_ignore_ascii_case(USER) && crate::constant_time_eq(password, PASSWORD))
    }

    fn nt_hash(&self, user: &str) -> Result<Option<Secret<NtHash>>, StoreError> {
        Ok(user
            .eq_ignore_ascii_case(USER)
            .then(|| Secret::new(crate::nt_hash_of("secret"))))
    }

    fn canonical_user(&self, user: &str) -> Result<Option<String>, StoreError> {
        Ok(user.eq_ignore_ascii_case(USER).then(|| USER.to_owned()))
    }
}

fn assert_success_is_alice(step: &Step) {
    if let Step::Success {
        authorization_id,
        authentication_id,
    } = step
    {
        assert_eq!(authentication_id, USER);
        assert!(!authorization_id.is_empty());
    }
}

fn assert_finished_for_good(step: Step) {
    assert!(matches!(step, Step::Failure(SaslFailure::AlreadyCompleted)));
}

/// PLAIN with `data` as the message: with and without an initial response, with and
/// without a permissive proxy policy. Success only for `alice`/`secret`; every exchange
/// ends after the message; steps after the end fail without panicking.
pub fn sasl_plain(data: &[u8]) {
    let store = FuzzStore;
    let parsed = PlainMessage::parse(data, crate::sasl::DEFAULT_MAX_FIELD_LEN);
    for permissive in [false, true] {
        for initial_response in [true, false] {
            let mut server = if permissive {
                PlainServer::with_authorization(|_, _| true)
            } else {
                PlainServer::new()
            };
            if !initial_response {
                let step = server.step(&store, None);
                assert!(matches!(&step, Step::Challenge(c) if c.is_empty()));
                assert!(!server.is_complete());
            }
            let step = server.step(&store, Some(data));
            assert!(step.is_final());
            assert!(server.is_complete());
            assert_success_is_alice(&step);
            match (&parsed, &step) {
                (Err(kind), step) => assert!(
                    matches!(step, Step::Failure(SaslFailure::Malformed(k)) if k == kind),
                    "{step:?}"
                ),
                (
                    Ok(m),
                    Step::Success {
                        authorization_id, ..
                    },
                ) => {
                    assert!(m.authentication_id().eq_ignore_ascii_case(USER));
                    assert_eq!(m.password().as_bytes(), PASSWORD);
                    if !permissive {
                        assert_eq!(authorization_id, USER);
                    }
                }
                (Ok(m), Step::Failure(SaslFailure::AuthorizationRefused { .. })) => {
                    assert!(!permissive);
                    assert_eq!(m.password().as_bytes(), PASSWORD);
                }
                (Ok(_), Step::Failure(SaslFailure::InvalidCredentials)) => {}
                (Ok(_), other) => panic!("unexpected {other:?}"),
            }
            assert_finished_for_good(server.step(&store, Some(data)));
            assert_finished_for_good(server.step(&store, None));
            assert_finished_for_good(server.abort());
        }
    }
}

/// LOGIN with `data` split at NUL bytes into successive client responses (the first one
/// as the initial response). The exchange ends within two responses; success only for
/// `alice`/`secret`; steps after the end fail without panicking.
pub fn sasl_login(data: &[u8]) {
    let store = FuzzStore;
    for initial_response in [true, false] {
        let mut server = LoginServer::new();
        let mut responses = data.split(|&b| b == 0);
        let mut step = if initial_response {
            server.step(&store, responses.next())
        } else {
            server.step(&store, None)
        };
        let mut answered = 0;
        while let Step::Challenge(challenge) = &step {
            assert!(
                challenge == crate::sasl::USERNAME_CHALLENGE
                    || challenge == crate::sasl::PASSWORD_CHALLENGE
            );
            assert!(answered < 3, "LOGIN keeps asking");
            answered += 1;
            step = server.step(&store, Some(responses.next().unwrap_or_default()));
        }
        assert!(server.is_complete());
        assert_success_is_alice(&step);
        if let Step::Failure(SaslFailure::Malformed(kind)) = &step {
            assert_ne!(*kind, MalformedKind::MissingSeparator);
        }
        assert_finished_for_good(server.step(&store, Some(data)));
        assert_finished_for_good(server.abort());
    }
    // Aborting mid-exchange ends it.
    let mut server = LoginServer::new();
    let _ = server.step(&store, None);
    assert!(matches!(
        server.abort(),
        Step::Failure(SaslFailure::Aborted)
    ));
    assert_finished_for_good(server.step(&store, Some(data)));
}

/// Both SASL mechanisms over `data` (the `cas_auth_sasl` fuzz target).
pub fn sasl(data: &[u8]) {
    sasl_plain(data);
    sasl_login(data);
}

/// Parses `data` (lossily decoded as UTF-8) as a passwd file. On success every account is
/// found under its name in any ASCII case, and rendering the store and parsing it again
/// gives the same accounts; on failure the reported line exists.
pub fn passwd_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match FileCredentialStore::parse(&text) {
        Ok(store) => {
            for account in store.accounts() {
                let found = store.account(&account.user().to_ascii_uppercase());
                assert_eq!(found.map(|a| a.line()), Some(account.line()));
            }
            let rendered = store.to_text();
            let again = FileCredentialStore::parse(&rendered).expect("rendered store parses");
            assert_eq!(again.len(), store.len());
            for (a, b) in store.accounts().zip(again.accounts()) {
                assert_eq!(a.user(), b.user());
                assert_eq!(a.phc(), b.phc());
                assert_eq!(
                    a.nt_hash().map(|h| *h.expose()),
                    b.nt_hash().map(|h| *h.expose())
                );
                assert!(a.fields().eq(b.fields()));
            }
            assert_eq!(again.to_text(), rendered);
        }
        Err(e) => {
            assert!(e.line() >= 1 && e.line() <= text.lines().count());
            assert!(!e.to_string().is_empty());
        }
    }
}
