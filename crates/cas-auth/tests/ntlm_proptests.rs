//! Property tests for NTLM, SPNEGO and HTTP Basic: encode → parse round trips for every
//! message type, and the fuzzing invariants over arbitrary and mutated messages.

use cas_auth::fuzzing;
use cas_auth::http::BasicCredentials;
use cas_auth::ntlm::messages::{
    AuthenticateMessage, AvPair, AvPairs, ChallengeMessage, NegotiateMessage, Version,
};
use cas_auth::ntlm::{DEFAULT_MAX_MESSAGE_LEN as MAX, NegotiateFlags};
use cas_auth::spnego;
use proptest::prelude::*;

fn version() -> impl Strategy<Value = Option<Version>> {
    proptest::option::of(
        (any::<u8>(), any::<u8>(), any::<u16>(), any::<u8>()).prop_map(
            |(major, minor, build, ntlm_revision)| Version {
                major,
                minor,
                build,
                ntlm_revision,
            },
        ),
    )
}

fn av_pairs() -> impl Strategy<Value = AvPairs> {
    proptest::collection::vec(
        (1u16..=12, proptest::collection::vec(any::<u8>(), 0..40)).prop_map(|(id, mut value)| {
            match id {
                6 => value.resize(4, 0),
                7 => value.resize(8, 0),
                10 => value.resize(16, 0),
                _ => {}
            }
            AvPair { id, value }
        }),
        0..8,
    )
    .prop_map(AvPairs)
}

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 .@\\\\é日-]{0,20}"
}

proptest! {
    #[test]
    fn negotiate_round_trip(
        flags in any::<u32>(),
        domain in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..30)),
        workstation in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..30)),
        version in version(),
    ) {
        let m = NegotiateMessage { flags: NegotiateFlags(flags), domain, workstation, version };
        let back = NegotiateMessage::parse(&m.encode(), MAX).unwrap();
        prop_assert_eq!(&back.domain, &m.domain);
        prop_assert_eq!(&back.workstation, &m.workstation);
        prop_assert_eq!(back.version, m.version);
        prop_assert_eq!(back.encode(), m.encode());
    }

    #[test]
    fn challenge_round_trip(
        flags in any::<u32>(),
        target_name in proptest::collection::vec(any::<u8>(), 0..30),
        server_challenge in any::<[u8; 8]>(),
        target_info in av_pairs(),
        version in version(),
    ) {
        let m = ChallengeMessage { flags: NegotiateFlags(flags), target_name, server_challenge, target_info, version };
        let enc = m.encode();
        let back = ChallengeMessage::parse(&enc, MAX).unwrap();
        prop_assert_eq!(&back.target_name, &m.target_name);
        prop_assert_eq!(&back.target_info, &m.target_info);
        prop_assert_eq!(back.server_challenge, m.server_challenge);
        prop_assert_eq!(back.version, m.version);
        prop_assert_eq!(back.encode(), enc);
    }

    #[test]
    fn av_pairs_round_trip(pairs in av_pairs()) {
        prop_assert_eq!(AvPairs::parse(&pairs.encode()).unwrap(), pairs);
    }

    #[test]
    fn authenticate_round_trip(
        unicode in any::<bool>(),
        flags in any::<u32>(),
        lm in proptest::collection::vec(any::<u8>(), 0..30),
        nt in proptest::collection::vec(any::<u8>(), 0..100),
        domain in text(), user in text(), workstation in text(),
        key in proptest::option::of(any::<[u8; 16]>()),
        version in version(),
        mic in proptest::option::of(any::<[u8; 16]>()),
    ) {
        let flags = if unicode { flags | 1 } else { flags & !1 };
        let m = AuthenticateMessage {
            flags: NegotiateFlags(flags), lm_response: lm, nt_response: nt, domain, user, workstation,
            encrypted_session_key: key.map(|k| k.to_vec()).unwrap_or_default(),
            // A MIC needs the VERSION slot before it.
            version: if mic.is_some() { version.or(Some(Version::WINDOWS_2008_R2)) } else { version },
            mic,
        };
        let enc = m.encode();
        let back = AuthenticateMessage::parse(&enc, MAX).unwrap();
        prop_assert_eq!(&back.user, &m.user);
        prop_assert_eq!(&back.domain, &m.domain);
        prop_assert_eq!(&back.workstation, &m.workstation);
        prop_assert_eq!(&back.lm_response, &m.lm_response);
        prop_assert_eq!(&back.nt_response, &m.nt_response);
        prop_assert_eq!(&back.encrypted_session_key, &m.encrypted_session_key);
        prop_assert_eq!(back.mic, m.mic);
        prop_assert_eq!(back.encode(), enc);
    }

    #[test]
    fn spnego_round_trip(
        token in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
        mic in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
        ntlm_first in any::<bool>(),
    ) {
        let krb: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02];
        let mechs: Vec<&[u8]> = if ntlm_first { vec![spnego::NTLM_OID, krb] } else { vec![krb, spnego::NTLM_OID] };
        let init = spnego::parse_client_token(&spnego::encode_init(&mechs, token.as_deref())).unwrap();
        prop_assert_eq!(init.ntlm_first, ntlm_first);
        prop_assert_eq!(&init.token, &token);
        let resp = spnego::encode_response(spnego::NegState::AcceptIncomplete, true, token.as_deref(), mic.as_deref());
        prop_assert_eq!(spnego::parse_response(&resp).unwrap(), (Some(1), token.clone(), mic.clone()));
        let c = spnego::parse_client_token(&resp).unwrap();
        prop_assert_eq!((c.token, c.mech_list_mic), (token, mic));
    }

    #[test]
    fn basic_round_trip(user in "[^:\\x00-\\x1f\\x7f-\\x9f]{1,40}", password in "[^\\x00-\\x1f\\x7f-\\x9f]{0,40}") {
        let c = BasicCredentials::new(user.clone(), password.clone());
        let back = BasicCredentials::decode(&c.encode()).unwrap();
        prop_assert_eq!(back.user_id(), user.as_str());
        prop_assert_eq!(back.password().expose(), &password);
        fuzzing::basic_header(format!("Basic {}", c.encode()).as_bytes());
    }

    #[test]
    fn ntlm_invariants_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        fuzzing::ntlm_negotiate(&data);
        fuzzing::ntlm_authenticate(&data);
        fuzzing::ntlm_initiator(&data);
        fuzzing::basic_header(&data);
    }

    #[test]
    fn initiator_invariants_on_mutated_challenges(at in 0usize..200, byte in any::<u8>(), cut in 0usize..200) {
        let mut m = acceptor_challenge();
        if let Some(b) = m.get_mut(at) {
            *b = byte;
        }
        m.truncate(cut.max(8));
        fuzzing::ntlm_initiator(&m);
    }

    #[test]
    fn ntlm_invariants_on_mutated_messages(at in 0usize..400, byte in any::<u8>(), cut in 0usize..400) {
        for seed in seeds() {
            let mut m = seed.clone();
            if let Some(b) = m.get_mut(at) {
                *b = byte;
            }
            m.truncate(cut.max(8));
            fuzzing::ntlm_negotiate(&m);
            fuzzing::ntlm_authenticate(&m);
            fuzzing::ntlm_initiator(&m);
        }
    }
}

/// A CHALLENGE from the crate's acceptor (target info with timestamp, VERSION).
fn acceptor_challenge() -> Vec<u8> {
    use cas_auth::ntlm::{FileTime, NtlmAcceptor, NtlmConfig, NtlmCredentials, NtlmInitiator};
    let config = std::sync::Arc::new(NtlmConfig::new(
        "CORP",
        "CAS",
        "corp.example",
        "cas.corp.example",
    ));
    let negotiate = NtlmInitiator::new(NtlmCredentials::from_password("alice", "CORP", "secret"))
        .negotiate()
        .unwrap();
    NtlmAcceptor::new(config)
        .handle_negotiate(&negotiate, [7; 8], FileTime(133_500_000_000_000_000))
        .unwrap()
}

fn seeds() -> Vec<Vec<u8>> {
    let hex = |s: &str| -> Vec<u8> {
        let s = s.trim();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    };
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/ntlm");
    [
        "pyspnego_negotiate",
        "pyspnego_authenticate",
        "impacket_negotiate",
        "impacket_authenticate",
    ]
    .iter()
    .map(|n| hex(&std::fs::read_to_string(format!("{dir}/{n}.hex")).unwrap()))
    .collect()
}

#[test]
fn captured_messages_pass_the_invariants() {
    fuzzing::ntlm_initiator(&acceptor_challenge());
    for s in seeds() {
        fuzzing::ntlm_negotiate(&s);
        fuzzing::ntlm_authenticate(&s);
    }
    fuzzing::basic_header(b"Basic YWxpY2U6c2VjcmV0");
    fuzzing::basic_header(b"NTLM TlRMTVNTUAABAAAABoIIAAAAAAAAAAAAAAAAAAAAAAA=");
}
