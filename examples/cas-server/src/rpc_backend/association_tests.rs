//! Transcript tests of the association: client PDUs in (hand-built from C706 / MS-RPCE, or
//! through rpch-framing's encoder), exact server PDUs out.

use super::*;
use crate::rpc_backend::mgmt::MGMT_INTERFACE;
use cas_auth::{CredentialStore, NtHash, Secret, StoreError, nt_hash_of};
use rpch_framing::pdu::{ContextResultCode, DecodedPdu, Request, Uuid};

pub(super) struct Store;

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
        Ok(user
            .eq_ignore_ascii_case("alice")
            .then(|| "alice".to_owned()))
    }
}

pub(super) const NOW: FileTime = FileTime(133_500_000_000_000_000);

pub(super) fn config_with(f: impl FnOnce(&mut AssociationConfig)) -> Arc<AssociationConfig> {
    let ntlm = cas_auth::ntlm::NtlmConfig::new("CAS", "CAS-SERVER", "localhost", "localhost");
    let mut c = AssociationConfig::new(SecurityConfig {
        ntlm: Some(Arc::new(ntlm)),
        store: Arc::new(Store),
        challenge: Arc::new(|| [1, 2, 3, 4, 5, 6, 7, 8]),
    });
    c.principal_name = "localhost".into();
    c.secondary_address = "6001".into();
    f(&mut c);
    Arc::new(c)
}

fn config() -> Arc<AssociationConfig> {
    config_with(|_| {})
}

pub(super) fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub(super) fn drain(a: &mut Association) -> Vec<Bytes> {
    let mut out = Vec::new();
    loop {
        let mut pdu = Vec::new();
        if a.poll_transmit(&mut pdu) == 0 {
            return out;
        }
        out.push(Bytes::from(pdu));
    }
}

pub(super) fn decode(b: &Bytes) -> DecodedPdu {
    Pdu::decode_with_header(b, &Limits::default()).unwrap()
}

pub(super) fn events(a: &mut Association) -> Vec<Event> {
    std::iter::from_fn(|| a.poll_event()).collect()
}

pub(super) fn header(t: PacketType, call_id: u32) -> PduHeader {
    let mut h = PduHeader::new(t, call_id);
    h.pfc_flags = PfcFlags::FIRST_AND_LAST;
    h
}

pub(super) fn encode(pdu: &Pdu, h: &PduHeader) -> Vec<u8> {
    let mut out = BytesMut::new();
    pdu.encode(h, &mut out).unwrap();
    out.to_vec()
}

pub(super) fn bind_pdu(contexts: Vec<ContextElement>, auth: Option<AuthVerifier>) -> Vec<u8> {
    encode(
        &Pdu::Bind(Bind {
            max_xmit_frag: 4280,
            max_recv_frag: 4280,
            assoc_group_id: 0,
            contexts,
            auth,
        }),
        &header(PacketType::Bind, 1),
    )
}

pub(super) fn mgmt_context(id: u16, transfer: SyntaxId) -> ContextElement {
    ContextElement {
        context_id: id,
        abstract_syntax: MGMT_INTERFACE,
        transfer_syntaxes: vec![transfer],
    }
}

pub(super) fn request(call_id: u32, opnum: u16, stub: &[u8]) -> Vec<u8> {
    encode(
        &Pdu::Request(Request {
            alloc_hint: stub.len() as u32,
            context_id: 0,
            opnum,
            object: None,
            stub_data: Bytes::copy_from_slice(stub),
            auth: None,
        }),
        &header(PacketType::Request, call_id),
    )
}

fn bound() -> Association {
    let mut a = Association::new(config(), 0x1234);
    a.handle_input(NOW, &bind_pdu(vec![mgmt_context(0, SyntaxId::NDR)], None));
    assert_eq!(drain(&mut a).len(), 1);
    events(&mut a);
    a
}

fn fault_status(b: &Bytes) -> FaultStatus {
    match decode(b).pdu {
        Pdu::Fault(f) => f.status,
        other => panic!("not a fault: {other:?}"),
    }
}

/// impacket's bind to mgmt (captured layout: max frags 4280, one context, NDR 2.0), and the
/// exact bind_ack: max_xmit/max_recv 4280, group 0x1234, secondary address "6001\0",
/// two bytes of padding, one result accepting NDR.
#[test]
fn bind_known_answer() {
    let bind = hex(
        "05000b03 10000000 48000000 01000000 b810b810 00000000 01000000
         00000100 80bda8af 8a7dc911 bef40800 2b102989 01000000
         045d888a eb1cc911 9fe80800 2b104860 02000000",
    );
    assert_eq!(bind, bind_pdu(vec![mgmt_context(0, SyntaxId::NDR)], None));
    let mut a = Association::new(config(), 0x1234);
    a.handle_input(NOW, &bind);
    let out = drain(&mut a);
    assert_eq!(
        out[0].to_vec(),
        hex(
            "05000c03 10000000 3c000000 01000000 b810b810 34120000 0500 36303031 00 00
             01000000 00000000 045d888a eb1cc911 9fe80800 2b104860 02000000"
        )
    );
    assert_eq!(
        events(&mut a),
        vec![Event::Bound {
            assoc_group_id: 0x1234,
            accepted: 1,
            rejected: 0
        }]
    );
    assert!(a.is_bound() && !a.is_closed());
}

#[test]
fn presentation_context_negotiation() {
    let unknown = ContextElement {
        context_id: 1,
        abstract_syntax: SyntaxId::new(Uuid([7; 16]), 1, 0),
        transfer_syntaxes: vec![SyntaxId::NDR],
    };
    let wrong_major = ContextElement {
        context_id: 4,
        abstract_syntax: SyntaxId::new(MGMT_INTERFACE.uuid, 2, 0),
        transfer_syntaxes: vec![SyntaxId::NDR],
    };
    let btfn = SyntaxId::bind_time_feature_negotiation(BindTimeFeatures(3));
    let mut a = Association::new(config(), 9);
    a.handle_input(
        NOW,
        &bind_pdu(
            vec![
                mgmt_context(0, SyntaxId::NDR64),
                unknown,
                mgmt_context(2, btfn),
                mgmt_context(3, SyntaxId::NDR),
                wrong_major,
            ],
            None,
        ),
    );
    let out = drain(&mut a);
    let Pdu::BindAck(ack) = decode(&out[0]).pdu else {
        panic!()
    };
    let r = &ack.results;
    assert_eq!(r[0].result, ContextResultCode::PROVIDER_REJECTION);
    assert_eq!(r[0].reason, ProviderReason::TRANSFER_SYNTAXES_NOT_SUPPORTED);
    assert_eq!(r[1].reason, ProviderReason::ABSTRACT_SYNTAX_NOT_SUPPORTED);
    assert_eq!(r[2].result, ContextResultCode::NEGOTIATE_ACK);
    // Only "keep connection on orphan" is acknowledged.
    assert_eq!(r[2].reason, ProviderReason(2));
    assert_eq!(r[2].transfer_syntax, SyntaxId::NULL);
    assert_eq!(r[3], ContextResult::accept(SyntaxId::NDR));
    assert_eq!(r[4].reason, ProviderReason::ABSTRACT_SYNTAX_NOT_SUPPORTED);
    // Context 0 was refused: calls on it fault with nca_unk_if; context 3 works.
    a.handle_input(NOW, &request(2, 2, &[]));
    assert_eq!(fault_status(&drain(&mut a)[0]), FaultStatus::UNK_IF);
    let mut r = request(3, 2, &[]);
    r[20] = 3;
    a.handle_input(NOW, &r);
    assert!(matches!(decode(&drain(&mut a)[0]).pdu, Pdu::Response(_)));
}

#[test]
fn frag_sizes_are_negotiated_and_refused_below_the_minimum() {
    let mut a = Association::new(config_with(|c| c.max_frag = 2048), 1);
    let mut bind = bind_pdu(vec![mgmt_context(0, SyntaxId::NDR)], None);
    bind[16..20].copy_from_slice(&hex("d016 0010")); // xmit 5840, recv 4096
    a.handle_input(NOW, &bind);
    let Pdu::BindAck(ack) = decode(&drain(&mut a)[0]).pdu else {
        panic!()
    };
    assert_eq!((ack.max_xmit_frag, ack.max_recv_frag), (2048, 2048));
    assert_eq!(a.max_xmit_frag(), 2048);

    let mut a = Association::new(config(), 1);
    let mut bind = bind_pdu(vec![mgmt_context(0, SyntaxId::NDR)], None);
    bind[16..18].copy_from_slice(&hex("0004")); // 1024
    a.handle_input(NOW, &bind);
    let Pdu::BindNak(nak) = decode(&drain(&mut a)[0]).pdu else {
        panic!()
    };
    assert_eq!(nak.reject_reason, RejectReason::LOCAL_LIMIT_EXCEEDED);
    assert!(a.is_closed());
}

#[test]
fn existing_group_is_joined_and_second_bind_refused() {
    let mut a = Association::new(config(), 1);
    let mut bind = bind_pdu(vec![mgmt_context(0, SyntaxId::NDR)], None);
    bind[20..24].copy_from_slice(&hex("78563412"));
    a.handle_input(NOW, &bind);
    let Pdu::BindAck(ack) = decode(&drain(&mut a)[0]).pdu else {
        panic!()
    };
    assert_eq!(ack.assoc_group_id, 0x1234_5678);
    a.handle_input(NOW, &bind);
    assert!(matches!(decode(&drain(&mut a)[0]).pdu, Pdu::BindNak(_)));
    assert!(a.is_closed());
}

#[test]
fn wrong_rpc_version_gets_bind_nak_with_our_version() {
    let mut a = Association::new(config(), 1);
    let mut bind = bind_pdu(vec![mgmt_context(0, SyntaxId::NDR)], None);
    bind[0] = 4;
    a.handle_input(NOW, &bind);
    let out = drain(&mut a);
    assert_eq!(
        out[0].to_vec(),
        hex("05000d03 10000000 15000000 00000000 0400 01 0500")
    );
    assert!(a.is_closed());
}

/// inq_if_ids answered in full: response header (alloc_hint 40, context 0) and the NDR.
#[test]
fn inq_if_ids_known_answer() {
    let mut a = bound();
    a.handle_input(NOW, &request(2, 0, &[]));
    let out = drain(&mut a);
    assert_eq!(
        out[0].to_vec(),
        hex("05000203 10000000 40000000 02000000 28000000 00000000
             00000200 01000000 01000000 04000200
             80bda8af 8a7dc911 bef40800 2b102989 01000000 00000000")
    );
    assert!(matches!(
        events(&mut a)[..],
        [Event::CallCompleted {
            call_id: 2,
            opnum: 0,
            stub_out: 40,
            fault: None,
            ..
        }]
    ));
}

#[test]
fn big_endian_client_gets_big_endian_answers() {
    let mut a = Association::new(config(), 1);
    let mut h = header(PacketType::Bind, 1);
    h.data_rep = DataRepresentation::BIG_ENDIAN;
    a.handle_input(
        NOW,
        &encode(
            &Pdu::Bind(Bind {
                max_xmit_frag: 4280,
                max_recv_frag: 4280,
                assoc_group_id: 0,
                contexts: vec![mgmt_context(0, SyntaxId::NDR)],
                auth: None,
            }),
            &h,
        ),
    );
    assert_eq!(drain(&mut a)[0][4], 0x00);
    let mut h = header(PacketType::Request, 2);
    h.data_rep = DataRepresentation::BIG_ENDIAN;
    let req = Pdu::Request(Request {
        alloc_hint: 4,
        context_id: 0,
        opnum: 1,
        object: None,
        stub_data: Bytes::from_static(&[0, 0, 0, 2]),
        auth: None,
    });
    a.handle_input(NOW, &encode(&req, &h));
    let Pdu::Response(r) = decode(&drain(&mut a)[0]).pdu else {
        panic!()
    };
    assert_eq!(&r.stub_data[..8], &[0, 0, 0, 2, 0, 0, 0, 2]);
}

#[test]
fn faults_for_unknown_opnum_and_bad_stub() {
    let mut a = bound();
    a.handle_input(NOW, &request(2, 9, &[]));
    let out = drain(&mut a);
    assert_eq!(
        out[0].to_vec(),
        hex("05000323 10000000 20000000 02000000 00000000 00000000 02000 11c 00000000")
    );
    a.handle_input(NOW, &request(3, 4, &[1, 2, 3]));
    assert_eq!(fault_status(&drain(&mut a)[0]), FaultStatus::BAD_STUB_DATA);
    // The association carries on.
    a.handle_input(NOW, &request(4, 2, &[]));
    assert!(matches!(decode(&drain(&mut a)[0]).pdu, Pdu::Response(_)));
    assert!(!a.is_closed());
}

#[test]
fn request_before_bind_faults_and_closes() {
    let mut a = Association::new(config(), 1);
    a.handle_input(NOW, &request(1, 0, &[]));
    assert_eq!(fault_status(&drain(&mut a)[0]), FaultStatus::PROTO_ERROR);
    assert!(a.is_closed());
    assert!(matches!(
        events(&mut a)[..],
        [Event::Closed {
            reason: CloseReason::ProtocolError(_)
        }]
    ));
}

fn fragment(call_id: u32, opnum: u16, stub: &[u8], flags: PfcFlags) -> Vec<u8> {
    let mut h = header(PacketType::Request, call_id);
    h.pfc_flags = flags;
    encode(
        &Pdu::Request(Request {
            alloc_hint: 0,
            context_id: 0,
            opnum,
            object: None,
            stub_data: Bytes::copy_from_slice(stub),
            auth: None,
        }),
        &h,
    )
}

#[test]
fn fragmented_requests_are_reassembled_byte_by_byte() {
    let mut a = bound();
    let mut input = fragment(5, 4, &hex("0a000000"), PfcFlags::FIRST_FRAG);
    input.extend(fragment(5, 4, &hex("00010000"), PfcFlags::LAST_FRAG));
    for b in &input {
        a.handle_input(NOW, std::slice::from_ref(b));
    }
    let Pdu::Response(r) = decode(&drain(&mut a)[0]).pdu else {
        panic!()
    };
    assert_eq!(&r.stub_data[8..12], &hex("0a000000"));
    assert_eq!(&r.stub_data[12..22], b"localhost\0");
}

#[test]
fn reassembly_limit_faults_once() {
    let mut a = Association::new(config_with(|c| c.limits.max_reassembled_stub = 3000), 1);
    a.handle_input(NOW, &bind_pdu(vec![mgmt_context(0, SyntaxId::NDR)], None));
    drain(&mut a);
    let chunk = vec![0u8; 2000];
    a.handle_input(NOW, &fragment(7, 0, &chunk, PfcFlags::FIRST_FRAG));
    a.handle_input(NOW, &fragment(7, 0, &chunk, PfcFlags::default()));
    a.handle_input(NOW, &fragment(7, 0, &chunk, PfcFlags::LAST_FRAG));
    let out = drain(&mut a);
    assert_eq!(out.len(), 1);
    assert_eq!(fault_status(&out[0]), FaultStatus::SERVER_TOO_BUSY);
    // A fragment without its first one is a protocol error of that call only.
    a.handle_input(NOW, &fragment(8, 0, &chunk, PfcFlags::LAST_FRAG));
    assert_eq!(fault_status(&drain(&mut a)[0]), FaultStatus::PROTO_ERROR);
    assert!(!a.is_closed());
}

#[test]
fn large_responses_are_fragmented_at_max_xmit_frag() {
    let ifs: Vec<SyntaxId> = std::iter::once(MGMT_INTERFACE)
        .chain((0..199u8).map(|i| SyntaxId::new(Uuid([i; 16]), 1, 0)))
        .collect();
    let mut a = Association::new(config_with(|c| c.interfaces = ifs), 1);
    let mut bind = bind_pdu(vec![mgmt_context(0, SyntaxId::NDR)], None);
    bind[18..20].copy_from_slice(&1432u16.to_le_bytes());
    a.handle_input(NOW, &bind);
    drain(&mut a);
    a.handle_input(NOW, &request(2, 0, &[]));
    let out = drain(&mut a);
    assert!(out.len() > 3);
    let mut stub = Vec::new();
    for (i, f) in out.iter().enumerate() {
        assert!(f.len() <= 1432);
        let d = decode(f);
        assert_eq!(d.header.pfc_flags.contains(PfcFlags::FIRST_FRAG), i == 0);
        assert_eq!(
            d.header.pfc_flags.contains(PfcFlags::LAST_FRAG),
            i == out.len() - 1
        );
        let Pdu::Response(r) = d.pdu else { panic!() };
        stub.extend_from_slice(&r.stub_data);
    }
    // 4 + 8 + 200 pointers + 200 × 20 + status.
    assert_eq!(stub.len(), 4 + 8 + 800 + 4000 + 4);
}

#[test]
fn unexpected_pdus_close_and_garbage_is_bounded() {
    let mut a = bound();
    a.handle_input(
        NOW,
        &encode(&Pdu::Shutdown, &header(PacketType::Shutdown, 0)),
    );
    assert!(a.is_closed());
    let mut a = bound();
    a.handle_input(NOW, &[0xff; 64]);
    assert!(a.is_closed());
    assert_eq!(a.buffered_input(), 0);
    a.handle_input(NOW, &[0xff; 64]);
    assert!(drain(&mut a).is_empty());
}

#[test]
fn required_auth_level_refuses_unauthenticated_calls() {
    let mut a = Association::new(
        config_with(|c| c.min_auth_level = AuthLevel::PKT_INTEGRITY),
        1,
    );
    a.handle_input(NOW, &bind_pdu(vec![mgmt_context(0, SyntaxId::NDR)], None));
    drain(&mut a);
    a.handle_input(NOW, &request(2, 0, &[]));
    assert_eq!(fault_status(&drain(&mut a)[0]), FaultStatus::ACCESS_DENIED);
}

#[test]
fn cancel_and_orphan_drop_a_partial_call() {
    let mut a = bound();
    a.handle_input(NOW, &fragment(9, 0, &[0; 8], PfcFlags::FIRST_FRAG));
    a.handle_input(
        NOW,
        &encode(
            &Pdu::Orphaned(rpch_framing::pdu::Orphaned { auth: None }),
            &header(PacketType::Orphaned, 9),
        ),
    );
    a.handle_input(NOW, &fragment(9, 0, &[0; 8], PfcFlags::LAST_FRAG));
    assert_eq!(fault_status(&drain(&mut a)[0]), FaultStatus::PROTO_ERROR);
}

// ------------------------------------------------------------------ RPC-level security

mod security {
    //! A minimal NTLMv2 client written from MS-NLMP §3.1.5 drives the association through
    //! bind/auth3 (impacket's shape) and bind/alter_context with SPNEGO (Samba's shape);
    //! requests are signed or sealed with cas-auth's `NtlmSession` in the client role, and
    //! the server's responses must verify / unseal with it.

    use super::*;
    use cas_auth::ntlm::messages::{AuthenticateMessage, ChallengeMessage, NegotiateMessage};
    use cas_auth::ntlm::{NegotiateFlags, NtlmSession, Role, crypto};
    use cas_auth::spnego;

    /// impacket's flags: Unicode, NTLM, sign, seal, always sign, extended session security,
    /// target info, 128-bit, key exchange, 56-bit.
    const FLAGS: NegotiateFlags = NegotiateFlags(0xe208_8235);

    fn negotiate() -> Vec<u8> {
        NegotiateMessage {
            flags: FLAGS,
            domain: None,
            workstation: None,
            version: None,
        }
        .encode()
    }

    /// The AUTHENTICATE for `challenge` and the client's session.
    fn authenticate(challenge: &[u8], password: &str) -> (Vec<u8>, NtlmSession) {
        let c = ChallengeMessage::parse(challenge, 1 << 16).unwrap();
        let nt = nt_hash_of(password);
        let mut blob = vec![1, 1, 0, 0, 0, 0, 0, 0];
        blob.extend_from_slice(&c.target_info.timestamp().unwrap().to_le_bytes());
        blob.extend_from_slice(&[0x5c; 8]);
        blob.extend_from_slice(&[0; 4]);
        blob.extend_from_slice(&c.target_info.encode());
        blob.extend_from_slice(&[0; 4]);
        let key = crypto::ntowf_v2(&nt, "alice", "CAS");
        let proof = crypto::ntlmv2_proof(&key, &c.server_challenge, &blob);
        let base = crypto::ntlmv2_session_base_key(&key, &proof);
        let random = [0x42; 16];
        // RC4 is symmetric: "decrypting" the random key under the base key encrypts it.
        let encrypted = crypto::exported_session_key(&base, &random, c.flags);
        let mut nt_response = proof.to_vec();
        nt_response.extend_from_slice(&blob);
        let msg = AuthenticateMessage {
            flags: c.flags,
            lm_response: vec![0; 24],
            nt_response,
            domain: "CAS".into(),
            user: "alice".into(),
            workstation: "WS01".into(),
            encrypted_session_key: encrypted.to_vec(),
            version: None,
            mic: None,
        };
        (
            msg.encode(),
            NtlmSession::new(&random, c.flags, Role::Client),
        )
    }

    fn verifier(auth_type: AuthType, level: AuthLevel, token: Vec<u8>) -> AuthVerifier {
        AuthVerifier {
            trailer: SecTrailer {
                auth_type,
                auth_level: level,
                auth_pad_length: 0,
                auth_reserved: 0,
                auth_context_id: 79231,
            },
            credentials: Bytes::from(token),
        }
    }

    fn token_of(b: &Bytes) -> (AuthVerifier, Pdu) {
        let pdu = decode(b).pdu;
        let auth = match &pdu {
            Pdu::BindAck(a) | Pdu::AlterContextResp(a) => a.auth.clone().unwrap(),
            other => panic!("no verifier in {other:?}"),
        };
        (auth, pdu)
    }

    /// A request protected at `level` with the client's session.
    fn protected_request(
        session: &mut NtlmSession,
        auth_type: AuthType,
        level: AuthLevel,
        call_id: u32,
        opnum: u16,
        stub: &[u8],
    ) -> Vec<u8> {
        let pad = SecTrailer::pad_for(stub.len(), 16);
        let mut v = verifier(auth_type, level, vec![0; 16]);
        v.trailer.auth_pad_length = pad;
        let mut bytes = encode(
            &Pdu::Request(Request {
                alloc_hint: stub.len() as u32,
                context_id: 0,
                opnum,
                object: None,
                stub_data: Bytes::copy_from_slice(stub),
                auth: Some(v),
            }),
            &header(PacketType::Request, call_id),
        );
        let len = bytes.len();
        let trailer_at = len - 16 - 8;
        let (signed, sig) = bytes.split_at_mut(len - 16);
        let s = if level == AuthLevel::PKT_PRIVACY {
            let (before, rest) = signed.split_at_mut(24);
            let (data, after) = rest.split_at_mut(trailer_at - 24);
            session.seal_parts(before, data, after)
        } else {
            session.sign_parts(&[signed])
        };
        sig.copy_from_slice(&s);
        bytes
    }

    /// The stub of a protected response, checked with the client's session.
    fn open_response(session: &mut NtlmSession, level: AuthLevel, pdu: &Bytes) -> Bytes {
        let mut bytes = pdu.to_vec();
        let len = bytes.len();
        let auth_length = u16::from_le_bytes([bytes[10], bytes[11]]) as usize;
        assert_eq!(auth_length, 16);
        let trailer_at = len - 16 - 8;
        let (signed, sig) = bytes.split_at_mut(len - 16);
        if level == AuthLevel::PKT_PRIVACY {
            let (before, rest) = signed.split_at_mut(24);
            let (data, after) = rest.split_at_mut(trailer_at - 24);
            session.unseal_parts(before, data, after, sig).unwrap();
        } else {
            session.verify_parts(&[signed], sig).unwrap();
        }
        match decode(&Bytes::from(bytes)).pdu {
            Pdu::Response(r) => r.stub_data,
            other => panic!("{other:?}"),
        }
    }

    /// bind(NEGOTIATE) → bind_ack(CHALLENGE) → auth3(AUTHENTICATE), as impacket does.
    fn ntlm_association(level: AuthLevel, password: &str) -> (Association, NtlmSession) {
        let mut a = Association::new(config(), 1);
        let mut bind = bind_pdu(
            vec![mgmt_context(0, SyntaxId::NDR)],
            Some(verifier(AuthType::NTLM, level, negotiate())),
        );
        bind[3] |= PfcFlags::SUPPORT_HEADER_SIGN.0;
        a.handle_input(NOW, &bind);
        let out = drain(&mut a);
        let (auth, pdu) = token_of(&out[0]);
        assert_eq!(auth.trailer.auth_type, AuthType::NTLM);
        assert_eq!(auth.trailer.auth_context_id, 79231);
        assert_eq!(&auth.credentials[..8], b"NTLMSSP\0");
        // Header signing is echoed when the client offers it.
        assert!(
            decode(&out[0])
                .header
                .pfc_flags
                .contains(PfcFlags::SUPPORT_HEADER_SIGN)
        );
        let Pdu::BindAck(ack) = pdu else { panic!() };
        assert_eq!(ack.results[0], ContextResult::accept(SyntaxId::NDR));
        let (token, session) = authenticate(&auth.credentials, password);
        a.handle_input(
            NOW,
            &encode(
                &Pdu::Auth3(rpch_framing::pdu::Auth3 {
                    pad: [0; 4],
                    auth: Some(verifier(AuthType::NTLM, level, token)),
                }),
                &header(PacketType::Auth3, 1),
            ),
        );
        // rpc_auth_3 has no answer.
        assert!(drain(&mut a).is_empty());
        (a, session)
    }

    #[test]
    fn ntlm_integrity_and_privacy_round_trips() {
        for level in [AuthLevel::PKT_INTEGRITY, AuthLevel::PKT_PRIVACY] {
            let (mut a, mut client) = ntlm_association(level, "Passw0rd!");
            assert!(matches!(
                &events(&mut a)[..],
                [Event::Bound { .. }, Event::Authenticated { user, level: l, .. }]
                    if user == "alice" && *l == level
            ));
            assert_eq!(a.user(), Some("alice"));
            // Several calls: the sequence numbers advance in step on both sides.
            for call_id in 2..6 {
                let req = protected_request(
                    &mut client,
                    AuthType::NTLM,
                    level,
                    call_id,
                    4,
                    &hex("0a000000 00010000"),
                );
                a.handle_input(NOW, &req);
                let out = drain(&mut a);
                let stub = open_response(&mut client, level, &out[0]);
                assert_eq!(&stub[12..22], b"localhost\0", "level {level:?}");
            }
            // A flipped bit in the stub: sec_pkg_error fault, and the association ends
            // (its RC4 state is spent).
            let mut req = protected_request(&mut client, AuthType::NTLM, level, 9, 0, &[0; 4]);
            req[25] ^= 1;
            a.handle_input(NOW, &req);
            let out = drain(&mut a);
            assert_eq!(fault_status(&out[0]), FaultStatus::SEC_PKG_ERROR);
            assert!(a.is_closed());
        }
    }

    #[test]
    fn unsigned_request_on_a_signing_context_is_refused() {
        let (mut a, _) = ntlm_association(AuthLevel::PKT_INTEGRITY, "Passw0rd!");
        a.handle_input(NOW, &request(2, 0, &[]));
        assert_eq!(fault_status(&drain(&mut a)[0]), FaultStatus::ACCESS_DENIED);
    }

    #[test]
    fn connect_level_needs_no_verifier() {
        let (mut a, _) = ntlm_association(AuthLevel::CONNECT, "Passw0rd!");
        a.handle_input(NOW, &request(2, 0, &[]));
        let out = drain(&mut a);
        let d = decode(&out[0]);
        assert_eq!(d.header.auth_length, 0);
        assert!(matches!(d.pdu, Pdu::Response(_)));
    }

    #[test]
    fn wrong_password_refuses_the_following_calls() {
        let (mut a, mut client) = ntlm_association(AuthLevel::PKT_INTEGRITY, "wrong");
        assert!(events(&mut a).iter().any(|e| matches!(
            e,
            Event::AuthenticationFailed { reason } if reason.contains("credentials")
        )));
        let req = protected_request(
            &mut client,
            AuthType::NTLM,
            AuthLevel::PKT_INTEGRITY,
            2,
            0,
            &[],
        );
        a.handle_input(NOW, &req);
        assert_eq!(fault_status(&drain(&mut a)[0]), FaultStatus::ACCESS_DENIED);
    }

    #[test]
    fn unknown_auth_type_and_level_get_bind_nak() {
        for (t, l) in [
            (AuthType::KERBEROS, AuthLevel::PKT_INTEGRITY),
            (AuthType::NTLM, AuthLevel::CALL),
        ] {
            let mut a = Association::new(config(), 1);
            a.handle_input(
                NOW,
                &bind_pdu(
                    vec![mgmt_context(0, SyntaxId::NDR)],
                    Some(verifier(t, l, negotiate())),
                ),
            );
            let Pdu::BindNak(nak) = decode(&drain(&mut a)[0]).pdu else {
                panic!()
            };
            assert_eq!(
                nak.reject_reason,
                RejectReason::AUTHENTICATION_TYPE_NOT_RECOGNIZED
            );
        }
    }

    /// Samba's shape: SPNEGO (auth_type 9) at privacy, a BTFN context, the third leg in
    /// alter_context with mechListMIC, and our mechListMIC in alter_context_resp.
    #[test]
    fn spnego_through_alter_context() {
        let level = AuthLevel::PKT_PRIVACY;
        let mut a = Association::new(config(), 1);
        let init = spnego::encode_init(&[spnego::NTLM_OID], Some(&negotiate()));
        a.handle_input(
            NOW,
            &bind_pdu(
                vec![
                    mgmt_context(0, SyntaxId::NDR),
                    mgmt_context(
                        1,
                        SyntaxId::bind_time_feature_negotiation(BindTimeFeatures(3)),
                    ),
                ],
                Some(verifier(AuthType::SPNEGO, level, init)),
            ),
        );
        let (auth, pdu) = token_of(&drain(&mut a)[0]);
        let Pdu::BindAck(ack) = pdu else { panic!() };
        assert_eq!(ack.results[1].result, ContextResultCode::NEGOTIATE_ACK);
        let (state, token, _) = spnego::parse_response(&auth.credentials).unwrap();
        assert_eq!(state, Some(1), "accept-incomplete");
        let (auth_msg, mut client) = authenticate(&token.unwrap(), "Passw0rd!");
        // mechTypes as DER: SEQUENCE { OID NTLMSSP }, what the MIC covers.
        let mut mech_types = vec![0x30, 2 + spnego::NTLM_OID.len() as u8, 0x06];
        mech_types.push(spnego::NTLM_OID.len() as u8);
        mech_types.extend_from_slice(spnego::NTLM_OID);
        let mic = client.sign(&mech_types);
        let resp = spnego::encode_response(
            spnego::NegState::AcceptIncomplete,
            false,
            Some(&auth_msg),
            Some(&mic),
        );
        let alter = Pdu::AlterContext(Bind {
            max_xmit_frag: 4280,
            max_recv_frag: 4280,
            assoc_group_id: 0,
            contexts: vec![mgmt_context(0, SyntaxId::NDR)],
            auth: Some(verifier(AuthType::SPNEGO, level, resp)),
        });
        a.handle_input(NOW, &encode(&alter, &header(PacketType::AlterContext, 2)));
        let (auth, _) = token_of(&drain(&mut a)[0]);
        let (state, _, server_mic) = spnego::parse_response(&auth.credentials).unwrap();
        assert_eq!(state, Some(0), "accept-completed");
        client.verify(&mech_types, &server_mic.unwrap()).unwrap();
        client.restart_rc4_after_mech_list_mic();
        let req = protected_request(&mut client, AuthType::SPNEGO, level, 3, 0, &[]);
        a.handle_input(NOW, &req);
        let stub = open_response(&mut client, level, &drain(&mut a)[0]);
        assert_eq!(stub.len(), 40);
    }
}
