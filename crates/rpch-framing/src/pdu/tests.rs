//! Known-answer tests for the connection-oriented PDUs.

use bytes::{Bytes, BytesMut};

use super::*;

fn hex(s: &str) -> Bytes {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect::<Vec<_>>()
        .into()
}

fn encode(pdu: &Pdu, header: &PduHeader) -> Bytes {
    let mut out = BytesMut::new();
    pdu.encode(header, &mut out).unwrap();
    out.freeze()
}

const EPM: SyntaxId = SyntaxId {
    uuid: Uuid::from_fields(
        0xe1af_8308,
        0x5d1f,
        0x11c9,
        [0x91, 0xa4, 0x08, 0x00, 0x2b, 0x14, 0xa0, 0xfa],
    ),
    version: 3,
};

/// The endpoint mapper bind every ncacn_ip_tcp client sends first, laid out per C706
/// §12.6.4.3: little-endian, call_id 1, max frags 4280, one context (EPM v3 over NDR v2).
const EPM_BIND_LE: &str = "05000b03 10000000 48000000 01000000 b810b810 00000000 01000000
    00000100 0883afe1 1f5dc911 91a40800 2b14a0fa 03000000 045d888a eb1cc911 9fe80800
    2b104860 02000000";

/// The same bind from a big-endian sender: integers and the UUIDs' first three fields
/// byte-swapped, drep byte 0 = 0x00.
const EPM_BIND_BE: &str = "05000b03 00000000 00480000 00000001 10b810b8 00000000 01000000
    00000100 e1af8308 5d1f11c9 91a40800 2b14a0fa 00000003 8a885d04 1ceb11c9 9fe80800
    2b104860 00000002";

fn epm_bind() -> Bind {
    Bind {
        max_xmit_frag: 4280,
        max_recv_frag: 4280,
        assoc_group_id: 0,
        contexts: vec![ContextElement {
            context_id: 0,
            abstract_syntax: EPM,
            transfer_syntaxes: vec![SyntaxId::NDR],
        }],
        auth: None,
    }
}

#[test]
fn uuid_string_form() {
    assert_eq!(
        SyntaxId::NDR.uuid.to_string(),
        "8a885d04-1ceb-11c9-9fe8-08002b104860"
    );
    assert_eq!(
        SyntaxId::NDR64.uuid.to_string(),
        "71710533-beba-4937-8319-b5dbef9ccc36"
    );
    assert_eq!(
        Uuid::parse_str("71710533-BEBA-4937-8319-b5dbef9ccc36"),
        Some(SyntaxId::NDR64.uuid)
    );
    assert_eq!(Uuid::parse_str("71710533-beba-4937-8319-b5dbef9ccc3"), None);
    assert_eq!(
        Uuid::parse_str("71710533xbeba-4937-8319-b5dbef9ccc36"),
        None
    );
}

#[test]
fn epm_bind_known_answer_both_byte_orders() {
    let le = hex(EPM_BIND_LE);
    let d = Pdu::decode_with_header(&le, &Limits::default()).unwrap();
    assert_eq!(d.pdu, Pdu::Bind(epm_bind()));
    assert_eq!(d.header.call_id, 1);
    assert_eq!(encode(&d.pdu, &PduHeader::new(PacketType::Bind, 1)), le);

    let be = hex(EPM_BIND_BE);
    let d = Pdu::decode_with_header(&be, &Limits::default()).unwrap();
    assert_eq!(d.pdu, Pdu::Bind(epm_bind()));
    assert_eq!(d.header.call_id, 1);
    assert!(!d.header.is_little_endian());
    let header = PduHeader {
        data_rep: DataRepresentation::BIG_ENDIAN,
        ..PduHeader::new(PacketType::Bind, 1)
    };
    assert_eq!(encode(&d.pdu, &header), be);
}

#[test]
fn bind_ack_secondary_address_is_padded_to_four() {
    let ack = BindAck {
        max_xmit_frag: 4280,
        max_recv_frag: 4280,
        assoc_group_id: 0x1234,
        secondary_address: Bytes::from_static(b"135\0"),
        results: vec![ContextResult::accept(SyntaxId::NDR)],
        auth: None,
    };
    let bytes = encode(
        &Pdu::BindAck(ack.clone()),
        &PduHeader::new(PacketType::BindAck, 1),
    );
    // 16 header + 8 + 2 length + 4 address = 30, padded to 32, then 4 + 24 for one result.
    assert_eq!(bytes.len(), 60);
    assert_eq!(&bytes[24..32], b"\x04\x00135\0\0\0");
    assert_eq!(bytes[32], 1);
    assert_eq!(Pdu::decode(&bytes).unwrap(), Pdu::BindAck(ack.clone()));
    assert_eq!(ack.secondary_address_str(), b"135");
    // A zero-length address: 26 bytes padded to 28.
    let ack0 = BindAck {
        secondary_address: Bytes::new(),
        ..ack
    };
    let bytes = encode(
        &Pdu::AlterContextResp(ack0.clone()),
        &PduHeader::new(PacketType::AlterContextResp, 2),
    );
    assert_eq!(bytes.len(), 56);
    assert_eq!(Pdu::decode(&bytes).unwrap(), Pdu::AlterContextResp(ack0));
}

#[test]
fn bind_time_feature_negotiation() {
    let s = SyntaxId::bind_time_feature_negotiation(BindTimeFeatures(3));
    assert_eq!(s.uuid.to_string(), "6cb71c2c-9812-4540-0300-000000000000");
    assert_eq!(s.as_bind_time_features(), Some(BindTimeFeatures(3)));
    assert_eq!(SyntaxId::NDR.as_bind_time_features(), None);
    let r = ContextResult::negotiate_ack(BindTimeFeatures::KEEP_CONNECTION_ON_ORPHAN);
    assert_eq!(
        (r.result, r.reason),
        (ContextResultCode::NEGOTIATE_ACK, ProviderReason(2))
    );
}

#[test]
fn request_with_object_and_ntlm_verifier() {
    let stub = Bytes::from_static(b"\x01\x02\x03\x04\x05");
    let req = Request {
        alloc_hint: 5,
        context_id: 1,
        opnum: 0x0a,
        object: Some(SyntaxId::NDR64.uuid),
        stub_data: stub.clone(),
        auth: Some(AuthVerifier {
            trailer: SecTrailer {
                auth_type: AuthType::NTLM,
                auth_level: AuthLevel::PKT_INTEGRITY,
                auth_pad_length: 3,
                auth_reserved: 0,
                auth_context_id: 79231,
            },
            credentials: Bytes::from_static(&[0xAB; 16]),
        }),
    };
    let bytes = encode(
        &Pdu::Request(req.clone()),
        &PduHeader::new(PacketType::Request, 7),
    );
    // 16 + 8 + 16 object + 5 stub + 3 pad = 48: the sec_trailer is 4-byte aligned.
    assert_eq!(bytes.len(), 48 + 8 + 16);
    assert_eq!(bytes[3], 0x83, "first, last and object flags");
    assert_eq!(&bytes[10..12], &[16, 0], "auth_length");
    assert_eq!(&bytes[48..56], &[0x0a, 5, 3, 0, 0x7f, 0x35, 0x01, 0]);
    let d = Pdu::decode_with_header(&bytes, &Limits::default()).unwrap();
    assert_eq!(d.pdu, Pdu::Request(req));
    let Pdu::Request(r) = d.pdu else {
        unreachable!()
    };
    // Zero-copy: the stub data points into the decoded buffer.
    assert_eq!(r.stub_data.as_ptr(), bytes[40..].as_ptr());
}

#[test]
fn auth_pad_longer_than_body_is_refused() {
    let mut bytes = encode(
        &Pdu::Auth3(Auth3 {
            pad: [0; 4],
            auth: Some(AuthVerifier {
                trailer: SecTrailer {
                    auth_type: AuthType::SPNEGO,
                    auth_level: AuthLevel::CONNECT,
                    auth_pad_length: 0,
                    auth_reserved: 0,
                    auth_context_id: 0,
                },
                credentials: Bytes::from_static(b"token"),
            }),
        }),
        &PduHeader::new(PacketType::Auth3, 3),
    )
    .to_vec();
    bytes[22] = 9; // auth_pad_length 9 > 4-byte body
    assert!(matches!(
        Pdu::decode(&bytes.into()),
        Err(PduError::InvalidValue { .. })
    ));
}

#[test]
fn header_errors() {
    let good = hex(EPM_BIND_LE);
    let limits = Limits::default();
    let mut b = good.to_vec();
    b[0] = 4;
    assert!(matches!(
        PduHeader::parse(&b, &limits),
        Err(PduError::UnsupportedVersion { major: 4, minor: 0 })
    ));
    let mut b = good.to_vec();
    b[1] = 2;
    assert!(matches!(
        PduHeader::parse(&b, &limits),
        Err(PduError::UnsupportedVersion { .. })
    ));
    let mut b = good.to_vec();
    b[2] = 1; // connectionless ping
    assert!(matches!(
        PduHeader::parse(&b, &limits),
        Err(PduError::UnknownPacketType(1))
    ));
    let mut b = good.to_vec();
    b[4] = 0x20;
    assert!(matches!(
        PduHeader::parse(&b, &limits),
        Err(PduError::UnsupportedDataRepresentation(_))
    ));
    let mut b = good.to_vec();
    b[8] = 15;
    b[9] = 0;
    assert!(matches!(
        PduHeader::parse(&b, &limits),
        Err(PduError::InvalidFragLength { .. })
    ));
    let mut b = good.to_vec();
    b[10] = 100; // auth_length 100 in a 72-byte PDU
    assert!(matches!(
        PduHeader::parse(&b, &limits),
        Err(PduError::InvalidFragLength { .. })
    ));
    let small = Limits {
        max_frag_length: 64,
        ..Limits::default()
    };
    assert!(matches!(
        PduHeader::parse(&good, &small),
        Err(PduError::FragTooLong {
            frag_length: 72,
            limit: 64
        })
    ));
    assert!(matches!(
        PduHeader::parse(&good[..15], &limits),
        Err(PduError::Truncated { .. })
    ));
    // Version 5.1 is accepted.
    let mut b = good.to_vec();
    b[1] = 1;
    assert_eq!(PduHeader::parse(&b, &limits).unwrap().rpc_vers_minor, 1);
}

#[test]
fn body_errors() {
    let good = hex(EPM_BIND_LE);
    // Two contexts announced, one present.
    let mut b = good.to_vec();
    b[24] = 2;
    assert!(matches!(
        Pdu::decode(&b.into()),
        Err(PduError::Truncated { .. })
    ));
    // Trailing bytes after the context list.
    let mut b = good.to_vec();
    b.extend_from_slice(&[0; 4]);
    b[8] = 76;
    assert!(matches!(
        Pdu::decode(&b.into()),
        Err(PduError::TrailingBytes { .. })
    ));
    // Buffer longer than frag_length.
    let mut b = good.to_vec();
    b.push(0);
    assert!(matches!(
        Pdu::decode(&b.into()),
        Err(PduError::TrailingBytes { .. })
    ));
    // Shutdown has no body.
    let mut b = encode(&Pdu::Shutdown, &PduHeader::new(PacketType::Shutdown, 0)).to_vec();
    assert_eq!(b.len(), 16);
    b.push(0);
    b[8] = 17;
    assert!(matches!(
        Pdu::decode(&b.into()),
        Err(PduError::TrailingBytes { .. })
    ));
}

#[test]
fn fault_and_bind_nak_round_trip() {
    let fault = Fault {
        alloc_hint: 32,
        context_id: 1,
        cancel_count: 0,
        flags: 0,
        status: FaultStatus::OP_RNG_ERROR,
        reserved: 0,
        stub_data: Bytes::new(),
        auth: None,
    };
    let header = PduHeader {
        pfc_flags: PfcFlags::FIRST_AND_LAST.with(PfcFlags::DID_NOT_EXECUTE),
        ..PduHeader::new(PacketType::Fault, 9)
    };
    let bytes = encode(&Pdu::Fault(fault.clone()), &header);
    assert_eq!(bytes.len(), 32);
    assert_eq!(&bytes[24..28], &[0x02, 0x00, 0x01, 0x1c]);
    assert_eq!(Pdu::decode(&bytes).unwrap(), Pdu::Fault(fault));

    let nak = BindNak {
        reject_reason: RejectReason::PROTOCOL_VERSION_NOT_SUPPORTED,
        versions: vec![(5, 0), (5, 1)],
        trailing: Bytes::new(),
    };
    let bytes = encode(
        &Pdu::BindNak(nak.clone()),
        &PduHeader::new(PacketType::BindNak, 1),
    );
    assert_eq!(&bytes[16..], &[4, 0, 2, 5, 0, 5, 1]);
    assert_eq!(Pdu::decode(&bytes).unwrap(), Pdu::BindNak(nak));
}

#[test]
fn encode_refuses_oversized_pdus_and_leaves_output_untouched() {
    let req = Request {
        alloc_hint: 0,
        context_id: 0,
        opnum: 0,
        object: None,
        stub_data: Bytes::from(vec![0; 70_000]),
        auth: None,
    };
    let mut out = BytesMut::from(&b"keep"[..]);
    assert!(matches!(
        Pdu::Request(req).encode(&PduHeader::new(PacketType::Request, 1), &mut out),
        Err(PduError::TooLargeToEncode { .. })
    ));
    assert_eq!(&out[..], b"keep");
}

fn frag(call_id: u32, flags: PfcFlags, opnum: u16, stub: &'static [u8]) -> DecodedPdu {
    DecodedPdu {
        header: PduHeader {
            pfc_flags: flags,
            ..PduHeader::new(PacketType::Request, call_id)
        },
        pdu: Pdu::Request(Request {
            alloc_hint: 0,
            context_id: 0,
            opnum,
            object: None,
            stub_data: Bytes::from_static(stub),
            auth: None,
        }),
    }
}

#[test]
fn reassembly_joins_fragments_and_enforces_order_and_limits() {
    let mut r = Reassembler::new(Limits::default());
    assert_eq!(
        r.push(frag(1, PfcFlags::FIRST_FRAG, 4, b"ab")).unwrap(),
        Reassembled::Pending
    );
    assert_eq!(
        r.push(frag(2, PfcFlags::FIRST_FRAG, 4, b"xy")).unwrap(),
        Reassembled::Pending
    );
    assert_eq!(
        r.push(frag(1, PfcFlags(0), 4, b"cd")).unwrap(),
        Reassembled::Pending
    );
    let Reassembled::Complete(call) = r.push(frag(1, PfcFlags::LAST_FRAG, 4, b"e")).unwrap() else {
        panic!()
    };
    assert_eq!(
        (&call.stub_data[..], call.fragments, call.opnum),
        (&b"abcde"[..], 3, 4)
    );
    assert_eq!(r.pending_calls(), 1);

    // Out of order: a middle fragment for an unknown call.
    assert!(matches!(
        r.push(frag(3, PfcFlags(0), 4, b"z")),
        Err(PduError::FragmentSequence { call_id: 3, .. })
    ));
    // Mismatched opnum drops the call.
    assert!(matches!(
        r.push(frag(2, PfcFlags::LAST_FRAG, 5, b"z")),
        Err(PduError::FragmentSequence { call_id: 2, .. })
    ));
    assert_eq!(r.pending_calls(), 0);
    // A second first fragment for a pending call.
    r.push(frag(4, PfcFlags::FIRST_FRAG, 0, b"a")).unwrap();
    assert!(matches!(
        r.push(frag(4, PfcFlags::FIRST_FRAG, 0, b"a")),
        Err(PduError::FragmentSequence { .. })
    ));

    // Single-fragment calls are zero-copy.
    let single = frag(5, PfcFlags::FIRST_AND_LAST, 0, b"whole");
    let Pdu::Request(ref req) = single.pdu else {
        unreachable!()
    };
    let ptr = req.stub_data.as_ptr();
    let Reassembled::Complete(call) = r.push(single).unwrap() else {
        panic!()
    };
    assert_eq!(call.stub_data.as_ptr(), ptr);

    // Limits.
    let limits = Limits {
        max_reassembled_stub: 4,
        max_fragments: 2,
        max_pending_calls: 1,
        ..Limits::default()
    };
    let mut r = Reassembler::new(limits);
    r.push(frag(1, PfcFlags::FIRST_FRAG, 0, b"ab")).unwrap();
    assert!(matches!(
        r.push(frag(2, PfcFlags::FIRST_FRAG, 0, b"a")),
        Err(PduError::ReassemblyLimit(_))
    ));
    assert!(matches!(
        r.push(frag(1, PfcFlags(0), 0, b"abc")),
        Err(PduError::ReassemblyLimit(_))
    ));
    r.push(frag(1, PfcFlags::FIRST_FRAG, 0, b"a")).unwrap();
    r.push(frag(1, PfcFlags(0), 0, b"a")).unwrap();
    assert!(matches!(
        r.push(frag(1, PfcFlags(0), 0, b"a")),
        Err(PduError::ReassemblyLimit(_))
    ));

    // A cancel for a pending call drops it and is handed back.
    let mut r = Reassembler::new(Limits::default());
    r.push(frag(1, PfcFlags::FIRST_FRAG, 0, b"a")).unwrap();
    let cancel = DecodedPdu {
        header: PduHeader::new(PacketType::CoCancel, 1),
        pdu: Pdu::CoCancel(CoCancel::default()),
    };
    assert_eq!(r.push(cancel.clone()).unwrap(), Reassembled::Other(cancel));
    assert_eq!(r.pending_calls(), 0);
}

#[test]
fn sec_trailer_padding() {
    assert_eq!(SecTrailer::pad_for(45, 4), 3);
    assert_eq!(SecTrailer::pad_for(48, 4), 0);
    assert_eq!(SecTrailer::pad_for(45, 16), 3);
    assert_eq!(SecTrailer::pad_for(33, 16), 15);
    assert_eq!(SecTrailer::pad_for(33, 0), 0);
}
