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

/// The NTLM settings the NTLM invariants run with.
fn ntlm_config(allow_v1: bool) -> std::sync::Arc<crate::ntlm::NtlmConfig> {
    std::sync::Arc::new(
        crate::ntlm::NtlmConfig::new("CORP", "CAS01", "corp.example", "cas01.corp.example")
            .dangerous_allow_ntlmv1(allow_v1)
            .with_extended_protection(crate::channel_binding::ExtendedProtection::Allow),
    )
}

/// A fixed time for the NTLM invariants.
const FUZZ_NOW: crate::ntlm::FileTime = crate::ntlm::FileTime(133_500_000_000_000_000);

/// `data` as a NEGOTIATE_MESSAGE: parsing never panics; a parsed message re-encodes to a
/// fixed point; the acceptor's CHALLENGE for it parses and grants no flag beyond those
/// asked for (plus the server's own `TARGET_INFO` and target type).
pub fn ntlm_negotiate(data: &[u8]) {
    use crate::ntlm::messages::{ChallengeMessage, NegotiateMessage};
    use crate::ntlm::{NegotiateFlags, NtlmAcceptor};
    let max = crate::ntlm::DEFAULT_MAX_MESSAGE_LEN;
    if let Ok(m) = NegotiateMessage::parse(data, max) {
        let enc = m.encode();
        let again = NegotiateMessage::parse(&enc, max).expect("encoded NEGOTIATE parses");
        assert_eq!(again.encode(), enc);
        assert_eq!(again.domain, m.domain);
        assert_eq!(again.workstation, m.workstation);
    }
    let mut acceptor = NtlmAcceptor::new(ntlm_config(false));
    match acceptor.handle_negotiate(data, [7; 8], FUZZ_NOW) {
        Ok(challenge) => {
            let c = ChallengeMessage::parse(&challenge, max).expect("our CHALLENGE parses");
            let requested = NegotiateMessage::parse(data, max)
                .expect("accepted NEGOTIATE parses")
                .flags;
            let server_set = NegotiateFlags::TARGET_INFO | NegotiateFlags::TARGET_TYPE_DOMAIN;
            assert_eq!(c.flags.0 & !(requested.0 | server_set.0), 0, "{c:?}");
            assert_eq!(c.encode(), challenge);
            assert!(acceptor.is_challenged());
        }
        Err(_) => assert!(!acceptor.is_challenged()),
    }
}

/// `data` as an AUTHENTICATE_MESSAGE after a fixed NEGOTIATE/CHALLENGE: parsing never
/// panics and a parsed message survives encode → parse; full verification (NTLMv2, and
/// NTLMv1 when enabled) never panics, never succeeds for anyone but `alice`, and ends the
/// exchange.
pub fn ntlm_authenticate(data: &[u8]) {
    use crate::ntlm::NtlmAcceptor;
    use crate::ntlm::messages::AuthenticateMessage;
    let max = crate::ntlm::DEFAULT_MAX_MESSAGE_LEN;
    if let Ok(m) = AuthenticateMessage::parse(data, max) {
        let again =
            AuthenticateMessage::parse(&m.encode(), max).expect("encoded AUTHENTICATE parses");
        assert_eq!(
            (
                &again.lm_response,
                &again.nt_response,
                &again.domain,
                &again.user
            ),
            (&m.lm_response, &m.nt_response, &m.domain, &m.user)
        );
        assert_eq!(
            (&again.workstation, &again.encrypted_session_key, again.mic),
            (&m.workstation, &m.encrypted_session_key, m.mic)
        );
    }
    let negotiate = b"NTLMSSP\0\x01\0\0\0\x37\x82\x08\xe2\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
    for allow_v1 in [false, true] {
        let mut acceptor = NtlmAcceptor::new(ntlm_config(allow_v1));
        acceptor
            .handle_negotiate(negotiate, [7; 8], FUZZ_NOW)
            .expect("fixed NEGOTIATE is accepted");
        if let Ok(ok) = acceptor.handle_authenticate(&FuzzStore, data, FUZZ_NOW) {
            assert_eq!(ok.user, USER);
        }
        assert!(acceptor.is_done());
        assert!(
            acceptor
                .handle_authenticate(&FuzzStore, data, FUZZ_NOW)
                .is_err()
        );
    }
}

/// `data` as the server's CHALLENGE_MESSAGE to the initiator (client side): never panics;
/// an AUTHENTICATE it produces parses back with the initiator's credentials, an NTLMv2
/// response and only flags the initiator asked for (plus the server's `TARGET_INFO` and
/// `VERSION`), and its size is bounded by the CHALLENGE's; the exchange is over afterwards.
pub fn ntlm_initiator(data: &[u8]) {
    use crate::ntlm::messages::AuthenticateMessage;
    use crate::ntlm::{NegotiateFlags, NtlmCredentials, NtlmInitiator, NtlmInitiatorError};
    let max = crate::ntlm::DEFAULT_MAX_MESSAGE_LEN;
    let mut initiator =
        NtlmInitiator::new(NtlmCredentials::from_password("alice", "CORP", "secret"))
            .with_workstation("WS")
            .with_target_name("HTTP/cas.corp.example");
    initiator.negotiate().expect("NEGOTIATE is always produced");
    if let Ok(done) = initiator.handle_challenge(data, [1; 8], [2; 16], FUZZ_NOW) {
        let m =
            AuthenticateMessage::parse(&done.authenticate, max).expect("our AUTHENTICATE parses");
        assert_eq!((m.user.as_str(), m.domain.as_str()), ("alice", "CORP"));
        assert_eq!(m.workstation, "WS");
        assert!(m.nt_response.len() > 24, "always NTLMv2");
        let allowed =
            NtlmInitiator::REQUESTED_FLAGS | NegotiateFlags::TARGET_INFO | NegotiateFlags::VERSION;
        assert_eq!(m.flags.0 & !allowed.0, 0, "{:?}", m.flags);
        assert_eq!(m.mic.is_some(), done.mic_sent);
        // The blob echoes the target info plus a few pairs of our own.
        assert!(done.authenticate.len() <= data.len() + 512);
    }
    assert!(initiator.is_done());
    assert!(matches!(
        initiator.handle_challenge(data, [1; 8], [2; 16], FUZZ_NOW),
        Err(NtlmInitiatorError::UnexpectedMessage)
    ));
}

/// `data` as an `Authorization` header value: parsing never panics; Basic credentials
/// that decode re-encode to the same credentials; a Basic login succeeds only for
/// `alice`/`secret`; the whole HTTP authenticator (Basic, NTLM, Negotiate with SPNEGO)
/// never panics on it, twice in a row.
pub fn basic_header(data: &[u8]) {
    use crate::http::{
        BasicCredentials, HttpAuthConfig, HttpAuthOutcome, HttpAuthenticator, parse_authorization,
    };
    if let Ok(auth) = parse_authorization(data, crate::http::DEFAULT_MAX_AUTHORIZATION_LEN)
        && let Ok(creds) = BasicCredentials::decode(auth.token)
    {
        let back = BasicCredentials::decode(&creds.encode()).expect("encoded Basic decodes");
        assert_eq!(back.user_id(), creds.user_id());
        assert_eq!(back.password().expose(), creds.password().expose());
    }
    let _ = crate::spnego::parse_client_token(data);
    let config = std::sync::Arc::new(
        HttpAuthConfig::new()
            .with_ntlm(ntlm_config(false))
            .with_negotiate(true)
            .with_basic("fuzz"),
    );
    let mut auth = HttpAuthenticator::new(config);
    for _ in 0..2 {
        if let HttpAuthOutcome::Authenticated { user, .. } =
            auth.handle_authorization(&FuzzStore, data, [3; 8], FUZZ_NOW)
        {
            assert_eq!(user, USER);
        }
    }
}
