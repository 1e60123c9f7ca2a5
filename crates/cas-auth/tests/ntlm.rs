//! The NTLM acceptor end to end: a minimal NTLMv2/NTLMv1 client written from MS-NLMP
//! §3.1.5 drives it, and captured messages from pyspnego and impacket prove interop.

use std::sync::Arc;
use std::time::Duration;

use cas_auth::channel_binding::{ChannelBindings, ExtendedProtection};
use cas_auth::ntlm::crypto;
use cas_auth::ntlm::messages::{
    AuthenticateMessage, AvPair, ChallengeMessage, NegotiateMessage, av_id,
};
use cas_auth::ntlm::{
    FileTime, NegotiateFlags, NtlmAcceptor, NtlmConfig, NtlmError, NtlmSession, NtlmVersion, Role,
};
use cas_auth::{CredentialStore, NtHash, Secret, StoreError, nt_hash_of};

/// Accounts: alice/Passw0rd! (with NT hash), bob (no NT hash).
struct Store;

impl CredentialStore for Store {
    fn verify_password(&self, _: &str, _: &[u8]) -> Result<bool, StoreError> {
        Ok(false)
    }

    fn nt_hash(&self, user: &str) -> Result<Option<Secret<NtHash>>, StoreError> {
        Ok(user
            .eq_ignore_ascii_case("alice")
            .then(|| Secret::new(nt_hash_of("Passw0rd!"))))
    }

    fn canonical_user(&self, user: &str) -> Result<Option<String>, StoreError> {
        Ok(["alice", "bob"]
            .into_iter()
            .find(|u| u.eq_ignore_ascii_case(user))
            .map(str::to_owned))
    }
}

const NOW: FileTime = FileTime(133_500_000_000_000_000);

fn config() -> NtlmConfig {
    NtlmConfig::new("CORP", "CAS01", "corp.example", "cas01.corp.example")
}

/// What the test client does.
#[derive(Clone)]
struct Client {
    user: &'static str,
    domain: &'static str,
    password: &'static str,
    flags: NegotiateFlags,
    timestamp: Option<FileTime>,
    mic: bool,
    bindings: Option<[u8; 16]>,
    random_session_key: Option<[u8; 16]>,
    v1: bool,
}

impl Default for Client {
    fn default() -> Self {
        Client {
            user: "alice",
            domain: "CORP",
            password: "Passw0rd!",
            // What Windows asks for.
            flags: NegotiateFlags(0xe208_8237),
            timestamp: None,
            mic: true,
            bindings: None,
            random_session_key: Some([0x33; 16]),
            v1: false,
        }
    }
}

struct Authenticate {
    negotiate: Vec<u8>,
    authenticate: Vec<u8>,
    exported_session_key: [u8; 16],
    flags: NegotiateFlags,
}

impl Client {
    fn negotiate(&self) -> Vec<u8> {
        NegotiateMessage {
            flags: self.flags,
            domain: None,
            workstation: None,
            version: None,
        }
        .encode()
    }

    /// The AUTHENTICATE for `challenge` (per MS-NLMP §3.1.5.1.2).
    fn authenticate(&self, negotiate: Vec<u8>, challenge: Vec<u8>) -> Authenticate {
        let c = ChallengeMessage::parse(&challenge, 1 << 16).unwrap();
        let flags = c.flags;
        let nt = nt_hash_of(self.password);
        let (lm_response, nt_response, key_exchange_key) = if self.v1 {
            let cc = [0xaa; 8];
            let mut lm = vec![0u8; 24];
            lm[..8].copy_from_slice(&cc);
            let ess = flags.contains(NegotiateFlags::EXTENDED_SESSIONSECURITY);
            let resp = crypto::ntlmv1_response(&nt, &c.server_challenge, ess.then_some(&cc));
            let base = crypto::ntlmv1_session_base_key(&nt);
            let kx = crypto::ntlmv1_key_exchange_key(&base, &c.server_challenge, &lm, flags);
            (if ess { lm } else { resp.to_vec() }, resp.to_vec(), *kx)
        } else {
            let mut pairs = c.target_info.clone();
            let server_time = pairs.timestamp();
            if self.mic {
                pairs.0.push(AvPair {
                    id: av_id::FLAGS,
                    value: 2u32.to_le_bytes().to_vec(),
                });
            }
            if let Some(cb) = self.bindings {
                pairs.0.push(AvPair {
                    id: av_id::CHANNEL_BINDINGS,
                    value: cb.to_vec(),
                });
            }
            pairs.push_string(av_id::TARGET_NAME, "HTTP/cas01.corp.example");
            let time = self.timestamp.map(|t| t.0).or(server_time).unwrap();
            let mut blob = vec![1, 1, 0, 0, 0, 0, 0, 0];
            blob.extend_from_slice(&time.to_le_bytes());
            blob.extend_from_slice(&[0x5c; 8]);
            blob.extend_from_slice(&[0; 4]);
            blob.extend_from_slice(&pairs.encode());
            blob.extend_from_slice(&[0; 4]);
            let key = crypto::ntowf_v2(&nt, self.user, self.domain);
            let proof = crypto::ntlmv2_proof(&key, &c.server_challenge, &blob);
            let mut nt_response = proof.to_vec();
            nt_response.extend_from_slice(&blob);
            (
                vec![0; 24],
                nt_response,
                *crypto::ntlmv2_session_base_key(&key, &proof),
            )
        };
        let (encrypted_session_key, exported) = match self.random_session_key {
            Some(k) if flags.contains(NegotiateFlags::KEY_EXCH) => {
                // RC4 is symmetric: "decrypting" the random key produces its encryption.
                let enc = crypto::exported_session_key(&key_exchange_key, &k, flags);
                (enc.to_vec(), k)
            }
            _ => (Vec::new(), key_exchange_key),
        };
        let mut msg = AuthenticateMessage {
            flags,
            lm_response,
            nt_response,
            domain: self.domain.into(),
            user: self.user.into(),
            workstation: "WS01".into(),
            encrypted_session_key,
            version: None,
            mic: self.mic.then_some([0; 16]),
        };
        let mut authenticate = msg.encode();
        if self.mic {
            let mic = crypto::mic(&exported, &negotiate, &challenge, &authenticate);
            msg.mic = Some(mic);
            authenticate = msg.encode();
        }
        Authenticate {
            negotiate,
            authenticate,
            exported_session_key: exported,
            flags,
        }
    }

    /// Runs NEGOTIATE → CHALLENGE on `acceptor` and builds the AUTHENTICATE.
    fn start(&self, acceptor: &mut NtlmAcceptor, server_challenge: [u8; 8]) -> Authenticate {
        let negotiate = self.negotiate();
        let challenge = acceptor
            .handle_negotiate(&negotiate, server_challenge, NOW)
            .unwrap();
        self.authenticate(negotiate, challenge)
    }

    fn run(&self, config: NtlmConfig) -> Result<cas_auth::ntlm::NtlmAuthenticated, NtlmError> {
        let mut acceptor = NtlmAcceptor::new(Arc::new(config));
        let a = self.start(&mut acceptor, [9, 8, 7, 6, 5, 4, 3, 2]);
        acceptor.handle_authenticate(&Store, &a.authenticate, NOW)
    }
}

#[test]
fn ntlmv2_with_mic_and_key_exchange() {
    let mut acceptor = NtlmAcceptor::new(Arc::new(config()));
    let client = Client::default();
    let a = client.start(&mut acceptor, [1; 8]);
    let ok = acceptor
        .handle_authenticate(&Store, &a.authenticate, NOW)
        .unwrap();
    assert_eq!(ok.user, "alice");
    assert_eq!(ok.version, NtlmVersion::V2);
    assert!(ok.mic_verified);
    assert_eq!(ok.target_name.as_deref(), Some("HTTP/cas01.corp.example"));
    assert_eq!(ok.domain, "CORP");
    assert_eq!(ok.workstation, "WS01");
    // Both ends derived the same keys: messages cross in both directions.
    let mut server = ok.session.unwrap();
    let mut client_session = NtlmSession::new(&a.exported_session_key, a.flags, Role::Client);
    let mut data = b"stub data".to_vec();
    let sig = client_session.seal_parts(b"hdr", &mut data, b"trl");
    server
        .unseal_parts(b"hdr", &mut data, b"trl", &sig)
        .unwrap();
    assert_eq!(data, b"stub data");
    let sig = server.sign(b"reply");
    client_session.verify(b"reply", &sig).unwrap();
    // The exchange is over.
    assert!(acceptor.is_done());
    assert!(matches!(
        acceptor.handle_authenticate(&Store, &a.authenticate, NOW),
        Err(NtlmError::UnexpectedMessage)
    ));
}

#[test]
fn curl_like_client_without_mic_version_or_key() {
    let client = Client {
        flags: NegotiateFlags(0x0008_8206),
        domain: "",
        mic: false,
        random_session_key: None,
        timestamp: Some(FileTime(NOW.0 + 10_000_000)),
        ..Client::default()
    };
    let ok = client.run(config()).unwrap();
    assert_eq!(ok.user, "alice");
    assert!(!ok.mic_verified);
    assert!(!ok.flags.contains(NegotiateFlags::UNICODE));
}

#[test]
fn user_name_case_and_upn_forms() {
    for (user, domain) in [
        ("ALICE", "corp"),
        ("alice@corp.example", ""),
        ("Alice", "cas01"),
    ] {
        let ok = Client {
            user,
            domain,
            ..Client::default()
        }
        .run(config())
        .unwrap();
        assert_eq!(ok.user, "alice", "{user} {domain}");
    }
    let foreign = Client {
        domain: "EVIL",
        ..Client::default()
    }
    .run(config());
    assert!(
        matches!(foreign, Err(NtlmError::AccountName(_))),
        "{foreign:?}"
    );
}

#[test]
fn empty_domain_retry() {
    // The client hashed with an empty domain but named one in the message (no MIC,
    // which would cover the domain field).
    let client = Client {
        domain: "",
        mic: false,
        ..Client::default()
    };
    let mut acceptor = NtlmAcceptor::new(Arc::new(config()));
    let a = client.start(&mut acceptor, [4; 8]);
    let mut msg = AuthenticateMessage::parse(&a.authenticate, 1 << 16).unwrap();
    msg.domain = "CORP".into();
    let ok = acceptor
        .handle_authenticate(&Store, &msg.encode(), NOW)
        .unwrap();
    assert_eq!(ok.user, "alice");
}

#[test]
fn wrong_password_and_unknown_users_fail_alike() {
    for client in [
        Client {
            password: "wrong",
            ..Client::default()
        },
        Client {
            user: "mallory",
            ..Client::default()
        },
        Client {
            user: "bob",
            ..Client::default()
        },
    ] {
        let err = client.run(config()).unwrap_err();
        assert!(matches!(err, NtlmError::InvalidCredentials), "{err:?}");
        assert!(err.is_rejected_login());
    }
}

#[test]
fn replay_on_a_new_challenge_is_refused() {
    let client = Client::default();
    let mut first = NtlmAcceptor::new(Arc::new(config()));
    let a = client.start(&mut first, [1; 8]);
    first
        .handle_authenticate(&Store, &a.authenticate, NOW)
        .unwrap();
    // An attacker replays the captured AUTHENTICATE on a new connection.
    for mic in [true, false] {
        let mut second = NtlmAcceptor::new(Arc::new(config()));
        second.handle_negotiate(&a.negotiate, [2; 8], NOW).unwrap();
        let replay = if mic {
            a.authenticate.clone()
        } else {
            let c = Client {
                mic: false,
                ..Client::default()
            };
            let mut acc = NtlmAcceptor::new(Arc::new(config()));
            let captured = c.start(&mut acc, [1; 8]).authenticate;
            second.handle_negotiate(&a.negotiate, [2; 8], NOW).unwrap();
            captured
        };
        let err = second
            .handle_authenticate(&Store, &replay, NOW)
            .unwrap_err();
        assert!(matches!(err, NtlmError::InvalidCredentials), "{err:?}");
    }
}

#[test]
fn timestamp_window() {
    let day = 24 * 3600 * 10_000_000u64;
    let old = Client {
        timestamp: Some(FileTime(NOW.0 - 2 * day)),
        ..Client::default()
    };
    assert!(matches!(
        old.run(config()),
        Err(NtlmError::TimestampOutOfWindow)
    ));
    let future = Client {
        timestamp: Some(FileTime(NOW.0 + 2 * day)),
        ..Client::default()
    };
    assert!(matches!(
        future.run(config()),
        Err(NtlmError::TimestampOutOfWindow)
    ));
    let slightly = Client {
        timestamp: Some(FileTime(NOW.0 - 600 * 10_000_000)),
        ..Client::default()
    };
    assert!(slightly.run(config()).is_ok());
    let tight = config().with_max_clock_skew(Duration::from_secs(300));
    assert!(matches!(
        slightly.run(tight),
        Err(NtlmError::TimestampOutOfWindow)
    ));
}

#[test]
fn mic_tampering_is_refused() {
    let client = Client::default();
    let mut acceptor = NtlmAcceptor::new(Arc::new(config()));
    let a = client.start(&mut acceptor, [1; 8]);
    // Flip a flag in the AUTHENTICATE (a downgrade attempt): the MIC no longer matches.
    let mut tampered = a.authenticate.clone();
    tampered[60] &= !0x10;
    assert!(matches!(
        acceptor.handle_authenticate(&Store, &tampered, NOW),
        Err(NtlmError::MicMismatch)
    ));
    // A MIC of zeros.
    let mut acceptor = NtlmAcceptor::new(Arc::new(config()));
    let a = client.start(&mut acceptor, [1; 8]);
    let mut zero = a.authenticate.clone();
    zero[72..88].fill(0);
    assert!(matches!(
        acceptor.handle_authenticate(&Store, &zero, NOW),
        Err(NtlmError::MicMismatch)
    ));
    // MIC announced but the header has no room for one.
    let mut acceptor = NtlmAcceptor::new(Arc::new(config()));
    let a = client.start(&mut acceptor, [1; 8]);
    let mut msg = AuthenticateMessage::parse(&a.authenticate, 1 << 16).unwrap();
    msg.mic = None;
    assert!(matches!(
        acceptor.handle_authenticate(&Store, &msg.encode(), NOW),
        Err(NtlmError::MicMissing)
    ));
}

#[test]
fn ntlmv1_refused_by_default_and_verified_when_enabled() {
    for flags in [NegotiateFlags(0xe208_8237), NegotiateFlags(0xe200_8237)] {
        let v1 = Client {
            v1: true,
            mic: false,
            flags,
            ..Client::default()
        };
        assert!(matches!(v1.run(config()), Err(NtlmError::Ntlmv1Refused)));
        let enabled = config().dangerous_allow_ntlmv1(true);
        let ok = v1.run(enabled.clone()).unwrap();
        assert_eq!(ok.user, "alice");
        let ess = flags.contains(NegotiateFlags::EXTENDED_SESSIONSECURITY);
        assert_eq!(
            ok.version,
            if ess {
                NtlmVersion::V1ClientChallenge
            } else {
                NtlmVersion::V1
            }
        );
        let wrong = Client {
            password: "nope",
            ..v1.clone()
        };
        assert!(matches!(
            wrong.run(enabled),
            Err(NtlmError::InvalidCredentials)
        ));
    }
}

#[test]
fn anonymous_and_lm_refused() {
    let anon = |user: &str, lm: Vec<u8>| {
        let mut acceptor = NtlmAcceptor::new(Arc::new(config()));
        acceptor
            .handle_negotiate(&Client::default().negotiate(), [1; 8], NOW)
            .unwrap();
        let msg = AuthenticateMessage {
            flags: NegotiateFlags(0xe208_8a35),
            lm_response: lm,
            nt_response: vec![],
            domain: String::new(),
            user: user.into(),
            workstation: String::new(),
            encrypted_session_key: vec![],
            version: None,
            mic: None,
        };
        (acceptor, msg.encode())
    };
    let (mut a, m) = anon("", vec![0]);
    assert!(matches!(
        a.handle_authenticate(&Store, &m, NOW),
        Err(NtlmError::AnonymousRefused)
    ));
    let (_, m) = anon("", vec![]);
    let mut a = NtlmAcceptor::new(Arc::new(config().dangerous_allow_anonymous(true)));
    a.handle_negotiate(&Client::default().negotiate(), [1; 8], NOW)
        .unwrap();
    let ok = a.handle_authenticate(&Store, &m, NOW).unwrap();
    assert_eq!(ok.version, NtlmVersion::Anonymous);
    assert!(ok.user.is_empty() && ok.session.is_none());
    let (mut a, m) = anon("alice", vec![7; 24]);
    assert!(matches!(
        a.handle_authenticate(&Store, &m, NOW),
        Err(NtlmError::LmRefused)
    ));
}

#[test]
fn channel_binding_policies() {
    let ours = ChannelBindings::from_application_data(b"tls-server-end-point:ours".to_vec());
    let theirs = ChannelBindings::from_application_data(b"tls-server-end-point:theirs".to_vec());
    let run = |policy, client_cb: Option<[u8; 16]>, server: Option<&ChannelBindings>| {
        let mut acceptor = NtlmAcceptor::new(Arc::new(config().with_extended_protection(policy)));
        if let Some(s) = server {
            acceptor = acceptor.with_channel_bindings(s);
        }
        let client = Client {
            bindings: client_cb,
            ..Client::default()
        };
        let a = client.start(&mut acceptor, [3; 8]);
        acceptor.handle_authenticate(&Store, &a.authenticate, NOW)
    };
    use ExtendedProtection::{Allow, Require};
    let good = Some(ours.md5());
    let bad = Some(theirs.md5());
    assert!(
        run(Require, good, Some(&ours))
            .unwrap()
            .channel_bindings_verified
    );
    assert!(matches!(
        run(Require, bad, Some(&ours)),
        Err(NtlmError::ChannelBindingMismatch)
    ));
    assert!(matches!(
        run(Require, None, Some(&ours)),
        Err(NtlmError::ChannelBindingMissing)
    ));
    assert!(matches!(
        run(Require, Some([0; 16]), Some(&ours)),
        Err(NtlmError::ChannelBindingMissing)
    ));
    assert!(matches!(
        run(Require, good, None),
        Err(NtlmError::ChannelBindingMissing)
    ));
    assert!(
        run(Allow, good, Some(&ours))
            .unwrap()
            .channel_bindings_verified
    );
    assert!(matches!(
        run(Allow, bad, Some(&ours)),
        Err(NtlmError::ChannelBindingMismatch)
    ));
    assert!(
        !run(Allow, None, Some(&ours))
            .unwrap()
            .channel_bindings_verified
    );
    assert!(run(ExtendedProtection::None, bad, Some(&ours)).is_ok());
}

#[test]
fn challenge_grants_only_requested_flags() {
    let mut acceptor = NtlmAcceptor::new(Arc::new(config()));
    let curl = NegotiateMessage::parse(
        b"NTLMSSP\0\x01\0\0\0\x06\x82\x08\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
        1024,
    )
    .unwrap();
    let challenge = acceptor
        .handle_negotiate(&curl.encode(), [7; 8], NOW)
        .unwrap();
    let c = ChallengeMessage::parse(&challenge, 4096).unwrap();
    assert_eq!(
        c.flags,
        NegotiateFlags::OEM
            | NegotiateFlags::REQUEST_TARGET
            | NegotiateFlags::NTLM
            | NegotiateFlags::ALWAYS_SIGN
            | NegotiateFlags::EXTENDED_SESSIONSECURITY
            | NegotiateFlags::TARGET_INFO
            | NegotiateFlags::TARGET_TYPE_DOMAIN
    );
    assert_eq!(c.target_name, b"CORP");
    assert_eq!(c.version, None);
    let info = &c.target_info;
    assert_eq!(
        info.get_string(av_id::NB_DOMAIN_NAME).as_deref(),
        Some("CORP")
    );
    assert_eq!(
        info.get_string(av_id::NB_COMPUTER_NAME).as_deref(),
        Some("CAS01")
    );
    assert_eq!(
        info.get_string(av_id::DNS_DOMAIN_NAME).as_deref(),
        Some("corp.example")
    );
    assert_eq!(
        info.get_string(av_id::DNS_COMPUTER_NAME).as_deref(),
        Some("cas01.corp.example")
    );
    assert_eq!(info.timestamp(), Some(NOW.0));
    assert_eq!(c.server_challenge, [7; 8]);
    // Neither character set: refused.
    let mut bad = curl.clone();
    bad.flags = NegotiateFlags::NTLM;
    assert!(matches!(
        acceptor.handle_negotiate(&bad.encode(), [7; 8], NOW),
        Err(NtlmError::NoCharacterSet)
    ));
}

#[test]
fn authenticate_before_negotiate_is_out_of_sequence() {
    let mut acceptor = NtlmAcceptor::new(Arc::new(config()));
    assert!(matches!(
        acceptor.handle_authenticate(&Store, b"NTLMSSP\0\x03\0\0\0", NOW),
        Err(NtlmError::UnexpectedMessage)
    ));
}

/// Captured exchanges: NEGOTIATE and AUTHENTICATE from a real client, CHALLENGE from this
/// acceptor with server challenge 1122334455667788 at [`NOW`], user `CORP\alice`, password
/// `Passw0rd!`. pyspnego 0.12.4 (with channel bindings for the application data
/// `tls-server-end-point:` + SHA-256("fake certificate")) and impacket 0.13.1.
fn captured(client: &str) -> [Vec<u8>; 3] {
    let read = |m: &str| {
        let path = format!(
            "{}/tests/data/ntlm/{client}_{m}.hex",
            env!("CARGO_MANIFEST_DIR")
        );
        let hex = std::fs::read_to_string(path).unwrap();
        (0..hex.trim().len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>()
    };
    [read("negotiate"), read("challenge"), read("authenticate")]
}

const CAPTURE_CHALLENGE: [u8; 8] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];

fn replay_capture(
    client: &str,
    config: NtlmConfig,
    bindings: Option<&ChannelBindings>,
    server_challenge: [u8; 8],
) -> Result<cas_auth::ntlm::NtlmAuthenticated, NtlmError> {
    let [negotiate, challenge, authenticate] = captured(client);
    let mut acceptor = NtlmAcceptor::new(Arc::new(config));
    if let Some(b) = bindings {
        acceptor = acceptor.with_channel_bindings(b);
    }
    let ours = acceptor
        .handle_negotiate(&negotiate, server_challenge, NOW)
        .unwrap();
    if server_challenge == CAPTURE_CHALLENGE {
        // The acceptor is deterministic: it answers exactly what the client saw.
        assert_eq!(ours, challenge);
    }
    acceptor.handle_authenticate(&Store, &authenticate, NOW)
}

fn pyspnego_bindings() -> ChannelBindings {
    let mut data = b"tls-server-end-point:".to_vec();
    data.extend_from_slice(
        &cas_auth::channel_binding::EndPointHash::Sha256.digest(b"fake certificate"),
    );
    ChannelBindings::from_application_data(data)
}

#[test]
fn pyspnego_exchange_verifies_with_mic_and_bindings() {
    let cb = pyspnego_bindings();
    let config = config().with_extended_protection(ExtendedProtection::Require);
    let ok = replay_capture("pyspnego", config, Some(&cb), CAPTURE_CHALLENGE).unwrap();
    assert_eq!(ok.user, "alice");
    assert_eq!(ok.version, NtlmVersion::V2);
    assert!(
        ok.mic_verified,
        "pyspnego sends a MIC when the target info has a timestamp"
    );
    assert!(ok.channel_bindings_verified);
    assert!(ok.flags.contains(NegotiateFlags::KEY_EXCH));
    assert!(ok.session.is_some());
}

#[test]
fn pyspnego_capture_refused_for_other_certificate_and_new_challenge() {
    let other = ChannelBindings::from_application_data(b"tls-server-end-point:xxxx".to_vec());
    let config = config().with_extended_protection(ExtendedProtection::Require);
    assert!(matches!(
        replay_capture("pyspnego", config, Some(&other), CAPTURE_CHALLENGE),
        Err(NtlmError::ChannelBindingMismatch)
    ));
    assert!(matches!(
        replay_capture(
            "pyspnego",
            NtlmConfig::clone(&self::config()),
            None,
            [0x12; 8]
        ),
        Err(NtlmError::InvalidCredentials)
    ));
}

#[test]
fn impacket_exchange_verifies() {
    let ok = replay_capture("impacket", config(), None, CAPTURE_CHALLENGE).unwrap();
    assert_eq!(ok.user, "alice");
    assert_eq!(ok.version, NtlmVersion::V2);
    assert_eq!(ok.domain, "CORP");
    let [negotiate, ..] = captured("impacket");
    assert_eq!(negotiate.len(), 32, "impacket's short NEGOTIATE");
    assert!(matches!(
        replay_capture("impacket", config(), None, [0x12; 8]),
        Err(NtlmError::InvalidCredentials)
    ));
}

mod sasl_and_http {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD as B64;
    use cas_auth::http::{
        AuthScheme, HttpAuthConfig, HttpAuthError, HttpAuthOutcome, HttpAuthenticator,
    };
    use cas_auth::sasl::{Mechanism, NtlmServer, SaslFailure, ServerMechanism, Step};
    use cas_auth::spnego;

    #[test]
    fn sasl_ntlm_with_impacket_capture() {
        let [negotiate, challenge, authenticate] = captured("impacket");
        let mut server = NtlmServer::new(Arc::new(config()), CAPTURE_CHALLENGE, NOW);
        assert_eq!(server.mechanism(), Mechanism::Ntlm);
        assert!(matches!(server.step(&Store, None), Step::Challenge(c) if c.is_empty()));
        assert!(
            matches!(server.step(&Store, Some(&negotiate)), Step::Challenge(c) if c == challenge)
        );
        match server.step(&Store, Some(&authenticate)) {
            Step::Success {
                authorization_id,
                authentication_id,
            } => assert_eq!(
                (authorization_id.as_str(), authentication_id.as_str()),
                ("alice", "alice")
            ),
            other => panic!("{other:?}"),
        }
        assert!(server.is_complete());
        assert!(server.take_authenticated().unwrap().session.is_some());
        assert!(matches!(
            server.step(&Store, Some(&authenticate)),
            Step::Failure(SaslFailure::AlreadyCompleted)
        ));
        // The same AUTHENTICATE on another challenge: an ordinary failed login.
        let mut other = NtlmServer::new(Arc::new(config()), [0x42; 8], NOW);
        let _ = other.step(&Store, Some(&negotiate));
        let step = other.step(&Store, Some(&authenticate));
        assert!(
            matches!(&step, Step::Failure(SaslFailure::InvalidCredentials)),
            "{step:?}"
        );
        assert_eq!(other.authentication_id(), Some("alice"));
        // NTLMv1 refusal keeps its reason and counts as a rejected login.
        let mut v1 = NtlmServer::new(Arc::new(config()), [0x42; 8], NOW);
        let client = Client {
            v1: true,
            mic: false,
            ..Client::default()
        };
        let Step::Challenge(c) = v1.step(&Store, Some(&client.negotiate())) else {
            panic!()
        };
        let a = client.authenticate(client.negotiate(), c);
        match v1.step(&Store, Some(&a.authenticate)) {
            Step::Failure(f @ SaslFailure::Ntlm(NtlmError::Ntlmv1Refused)) => {
                assert!(f.is_rejected_login())
            }
            other => panic!("{other:?}"),
        }
        // Garbage instead of a NEGOTIATE.
        let mut bad = NtlmServer::new(Arc::new(config()), [1; 8], NOW);
        assert!(matches!(
            bad.step(&Store, Some(b"hello")),
            Step::Failure(SaslFailure::Ntlm(NtlmError::Malformed(_)))
        ));
    }

    fn http_config() -> Arc<HttpAuthConfig> {
        Arc::new(
            HttpAuthConfig::new()
                .with_ntlm(Arc::new(config()))
                .with_negotiate(true)
                .with_basic("CAS01"),
        )
    }

    fn header(scheme: &str, bytes: &[u8]) -> Vec<u8> {
        format!("{scheme} {}", B64.encode(bytes)).into_bytes()
    }

    fn continue_token(outcome: HttpAuthOutcome, scheme: &str) -> Vec<u8> {
        match outcome {
            HttpAuthOutcome::Continue { www_authenticate } => {
                let (s, t) = www_authenticate.split_once(' ').unwrap();
                assert_eq!(s, scheme);
                B64.decode(t).unwrap()
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn http_ntlm_and_raw_negotiate_with_impacket_capture() {
        let [negotiate, challenge, authenticate] = captured("impacket");
        for scheme in ["NTLM", "Negotiate"] {
            let mut auth = HttpAuthenticator::new(http_config());
            let out = auth.handle_authorization(
                &Store,
                &header(scheme, &negotiate),
                CAPTURE_CHALLENGE,
                NOW,
            );
            assert_eq!(continue_token(out, scheme), challenge);
            match auth.handle_authorization(&Store, &header(scheme, &authenticate), [0; 8], NOW) {
                HttpAuthOutcome::Authenticated {
                    user,
                    www_authenticate,
                    ntlm,
                    ..
                } => {
                    assert_eq!(user, "alice");
                    assert_eq!(www_authenticate, None);
                    assert!(ntlm.is_some());
                }
                other => panic!("{other:?}"),
            }
            // A second AUTHENTICATE without a new handshake is refused.
            let again =
                auth.handle_authorization(&Store, &header(scheme, &authenticate), [0; 8], NOW);
            assert!(
                matches!(again, HttpAuthOutcome::Rejected { .. }),
                "{again:?}"
            );
        }
    }

    #[test]
    fn http_spnego_with_mech_list_mic() {
        let mech_types = {
            let mut oid = vec![0x06, spnego::NTLM_OID.len() as u8];
            oid.extend_from_slice(spnego::NTLM_OID);
            let mut seq = vec![0x30, oid.len() as u8];
            seq.extend_from_slice(&oid);
            seq
        };
        let client = Client::default();
        let mut auth = HttpAuthenticator::new(http_config());
        let init = spnego::encode_init(&[spnego::NTLM_OID], Some(&client.negotiate()));
        let resp = continue_token(
            auth.handle_authorization(&Store, &header("Negotiate", &init), [5; 8], NOW),
            "Negotiate",
        );
        let (state, challenge, _) = spnego::parse_response(&resp).unwrap();
        assert_eq!(state, Some(1));
        let a = client.authenticate(client.negotiate(), challenge.unwrap());
        let mut session = NtlmSession::new(&a.exported_session_key, a.flags, Role::Client);
        let mic = session.sign(&mech_types);
        let resp = spnego::encode_response(
            spnego::NegState::AcceptIncomplete,
            false,
            Some(&a.authenticate),
            Some(&mic),
        );
        match auth.handle_authorization(&Store, &header("Negotiate", &resp), [0; 8], NOW) {
            HttpAuthOutcome::Authenticated {
                user,
                scheme,
                www_authenticate,
                ..
            } => {
                assert_eq!((user.as_str(), scheme), ("alice", AuthScheme::Negotiate));
                let token = B64
                    .decode(
                        www_authenticate
                            .unwrap()
                            .strip_prefix("Negotiate ")
                            .unwrap(),
                    )
                    .unwrap();
                let (state, _, server_mic) = spnego::parse_response(&token).unwrap();
                assert_eq!(state, Some(0));
                session.verify(&mech_types, &server_mic.unwrap()).unwrap();
            }
            other => panic!("{other:?}"),
        }
        // A wrong mechListMIC is refused.
        let mut auth = HttpAuthenticator::new(http_config());
        let resp = continue_token(
            auth.handle_authorization(&Store, &header("Negotiate", &init), [5; 8], NOW),
            "Negotiate",
        );
        let a = client.authenticate(
            client.negotiate(),
            spnego::parse_response(&resp).unwrap().1.unwrap(),
        );
        let bad = spnego::encode_response(
            spnego::NegState::AcceptIncomplete,
            false,
            Some(&a.authenticate),
            Some(&[1; 16]),
        );
        let out = auth.handle_authorization(&Store, &header("Negotiate", &bad), [0; 8], NOW);
        assert!(
            matches!(
                out,
                HttpAuthOutcome::Rejected {
                    error: HttpAuthError::MechListMic
                }
            ),
            "{out:?}"
        );
    }

    #[test]
    fn http_basic_and_challenges() {
        use cas_auth::{FileCredentialStore, PasswordHashParams, hash_password_with};
        let phc = hash_password_with(
            b"pa:ss",
            b"basic-test-salt!",
            &PasswordHashParams::dangerous_low_cost(),
        )
        .unwrap();
        let store = FileCredentialStore::parse(&format!("Alice:{phc}\n")).unwrap();
        let auth_for = |login: &str, pw: &str| {
            let mut auth = HttpAuthenticator::new(http_config());
            let token = B64.encode(format!("{login}:{pw}"));
            auth.handle_authorization(&store, format!("basic {token}").as_bytes(), [0; 8], NOW)
        };
        for login in [r"CORP\alice", "alice@corp.example", "ALICE"] {
            match auth_for(login, "pa:ss") {
                HttpAuthOutcome::Authenticated { user, scheme, .. } => {
                    assert_eq!((user.as_str(), scheme), ("Alice", AuthScheme::Basic));
                }
                other => panic!("{login}: {other:?}"),
            }
        }
        for (login, pw) in [
            ("alice", "wrong"),
            ("nobody", "pa:ss"),
            ("alice@evil.example", "pa:ss"),
        ] {
            match auth_for(login, pw) {
                HttpAuthOutcome::Rejected { error } => {
                    assert!(error.is_rejected_login(), "{error:?}")
                }
                other => panic!("{other:?}"),
            }
        }
        let auth = HttpAuthenticator::new(Arc::new(HttpAuthConfig::new().with_basic("x")));
        assert_eq!(auth.challenges(), [r#"Basic realm="x", charset="UTF-8""#]);
        let mut auth = HttpAuthenticator::new(Arc::new(HttpAuthConfig::new().with_basic("x")));
        assert!(matches!(
            auth.handle_authorization(
                &store,
                b"NTLM TlRMTVNTUAABAAAABoIIAAAAAAAAAAAAAAAAAAAAAAA=",
                [0; 8],
                NOW
            ),
            HttpAuthOutcome::Rejected {
                error: HttpAuthError::SchemeNotOffered
            }
        ));
    }
}
