//! Property tests: encode→decode round trips for every connection-oriented PDU and every RTS
//! command, framer chunking invariance, and arbitrary input never panicking.

use std::net::IpAddr;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use rpch_framing::codec::PduDecoder;
use rpch_framing::fuzzing;
use rpch_framing::pdu::*;
use rpch_framing::rts::*;

fn arb_bytes(max: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn arb_uuid() -> impl Strategy<Value = Uuid> {
    any::<[u8; 16]>().prop_map(Uuid)
}

fn arb_syntax() -> impl Strategy<Value = SyntaxId> {
    prop_oneof![
        Just(SyntaxId::NDR),
        Just(SyntaxId::NDR64),
        any::<u16>()
            .prop_map(|f| SyntaxId::bind_time_feature_negotiation(BindTimeFeatures(f & 0xff))),
        (arb_uuid(), any::<u32>()).prop_map(|(uuid, version)| SyntaxId { uuid, version }),
    ]
}

fn arb_auth() -> impl Strategy<Value = Option<AuthVerifier>> {
    prop::option::of(
        (
            any::<u8>(),
            0u8..8,
            0u8..16,
            any::<u8>(),
            any::<u32>(),
            prop::collection::vec(any::<u8>(), 1..80),
        )
            .prop_map(|(t, l, pad, reserved, ctx, credentials)| AuthVerifier {
                trailer: SecTrailer {
                    auth_type: AuthType(t),
                    auth_level: AuthLevel(l),
                    auth_pad_length: pad,
                    auth_reserved: reserved,
                    auth_context_id: ctx,
                },
                credentials: credentials.into(),
            }),
    )
}

fn arb_bind() -> impl Strategy<Value = Bind> {
    let ctx = (
        any::<u16>(),
        arb_syntax(),
        prop::collection::vec(arb_syntax(), 0..4),
    )
        .prop_map(
            |(context_id, abstract_syntax, transfer_syntaxes)| ContextElement {
                context_id,
                abstract_syntax,
                transfer_syntaxes,
            },
        );
    (
        any::<u16>(),
        any::<u16>(),
        any::<u32>(),
        prop::collection::vec(ctx, 0..5),
        arb_auth(),
    )
        .prop_map(
            |(max_xmit_frag, max_recv_frag, assoc_group_id, contexts, auth)| Bind {
                max_xmit_frag,
                max_recv_frag,
                assoc_group_id,
                contexts,
                auth,
            },
        )
}

fn arb_bind_ack() -> impl Strategy<Value = BindAck> {
    let result =
        (any::<u16>(), any::<u16>(), arb_syntax()).prop_map(|(r, reason, s)| ContextResult {
            result: ContextResultCode(r),
            reason: ProviderReason(reason),
            transfer_syntax: s,
        });
    (
        any::<u16>(),
        any::<u16>(),
        any::<u32>(),
        arb_bytes(40),
        prop::collection::vec(result, 0..5),
        arb_auth(),
    )
        .prop_map(|(x, r, a, secondary_address, results, auth)| BindAck {
            max_xmit_frag: x,
            max_recv_frag: r,
            assoc_group_id: a,
            secondary_address,
            results,
            auth,
        })
}

fn arb_cookie() -> impl Strategy<Value = Cookie> {
    any::<[u8; 16]>().prop_map(Cookie)
}

fn arb_destination() -> impl Strategy<Value = ForwardDestination> {
    (0u32..4).prop_map(|v| ForwardDestination::from_u32(v).unwrap())
}

/// Every RTS command with values in the ranges of MS-RPCH §2.2.3.5.
pub fn arb_rts_command() -> impl Strategy<Value = RtsCommand> {
    prop_oneof![
        RECEIVE_WINDOW_SIZE_RANGE.prop_map(RtsCommand::ReceiveWindowSize),
        (any::<u32>(), any::<u32>(), arb_cookie()).prop_map(|(b, a, c)| {
            RtsCommand::FlowControlAck(FlowControlAck {
                bytes_received: b,
                available_window: a,
                channel_cookie: c,
            })
        }),
        CONNECTION_TIMEOUT_RANGE.prop_map(RtsCommand::ConnectionTimeout),
        arb_cookie().prop_map(RtsCommand::Cookie),
        CHANNEL_LIFETIME_RANGE.prop_map(RtsCommand::ChannelLifetime),
        prop_oneof![Just(0u32), CLIENT_KEEPALIVE_MIN..=u32::MAX]
            .prop_map(RtsCommand::ClientKeepalive),
        any::<u32>().prop_map(RtsCommand::Version),
        Just(RtsCommand::Empty),
        (0u32..300).prop_map(RtsCommand::Padding),
        Just(RtsCommand::NegativeAnce),
        Just(RtsCommand::Ance),
        any::<[u8; 4]>()
            .prop_filter("the all-zero IPv4 address reads the padding", |a| *a
                != [0; 4])
            .prop_map(|a| RtsCommand::ClientAddress(IpAddr::from(a))),
        any::<[u8; 16]>().prop_map(|a| RtsCommand::ClientAddress(IpAddr::from(a))),
        arb_cookie().prop_map(RtsCommand::AssociationGroupId),
        arb_destination().prop_map(RtsCommand::Destination),
        any::<u32>().prop_map(RtsCommand::PingTrafficSentNotify),
    ]
}

fn arb_rts() -> impl Strategy<Value = RtsPdu> {
    (
        any::<u16>(),
        prop::collection::vec(arb_rts_command(), 0..10),
    )
        .prop_map(|(flags, commands)| RtsPdu::new(RtsFlags(flags), commands))
}

fn arb_pdu() -> impl Strategy<Value = Pdu> {
    prop_oneof![
        (
            any::<u32>(),
            any::<u16>(),
            any::<u16>(),
            prop::option::of(arb_uuid()),
            arb_bytes(300),
            arb_auth()
        )
            .prop_map(|(alloc_hint, context_id, opnum, object, stub_data, auth)| {
                Pdu::Request(Request {
                    alloc_hint,
                    context_id,
                    opnum,
                    object,
                    stub_data,
                    auth,
                })
            }),
        (
            any::<u32>(),
            any::<u16>(),
            any::<u8>(),
            any::<u8>(),
            arb_bytes(300),
            arb_auth()
        )
            .prop_map(
                |(alloc_hint, context_id, cancel_count, reserved, stub_data, auth)| {
                    Pdu::Response(Response {
                        alloc_hint,
                        context_id,
                        cancel_count,
                        reserved,
                        stub_data,
                        auth,
                    })
                }
            ),
        (
            any::<u32>(),
            any::<u16>(),
            any::<u8>(),
            any::<u8>(),
            any::<u32>(),
            any::<u32>(),
            arb_bytes(40),
            arb_auth()
        )
            .prop_map(
                |(
                    alloc_hint,
                    context_id,
                    cancel_count,
                    flags,
                    status,
                    reserved,
                    stub_data,
                    auth,
                )| {
                    Pdu::Fault(Fault {
                        alloc_hint,
                        context_id,
                        cancel_count,
                        flags,
                        status: FaultStatus(status),
                        reserved,
                        stub_data,
                        auth,
                    })
                }
            ),
        arb_bind().prop_map(Pdu::Bind),
        arb_bind().prop_map(Pdu::AlterContext),
        arb_bind_ack().prop_map(Pdu::BindAck),
        arb_bind_ack().prop_map(Pdu::AlterContextResp),
        (
            any::<u16>(),
            prop::collection::vec(any::<(u8, u8)>(), 0..4),
            arb_bytes(24)
        )
            .prop_map(|(r, versions, trailing)| Pdu::BindNak(BindNak {
                reject_reason: RejectReason(r),
                versions,
                trailing
            })),
        (any::<[u8; 4]>(), arb_auth()).prop_map(|(pad, auth)| Pdu::Auth3(Auth3 { pad, auth })),
        Just(Pdu::Shutdown),
        arb_auth().prop_map(|auth| Pdu::CoCancel(CoCancel { auth })),
        arb_auth().prop_map(|auth| Pdu::Orphaned(Orphaned { auth })),
        arb_rts().prop_map(Pdu::Rts),
    ]
}

fn arb_header() -> impl Strategy<Value = PduHeader> {
    (any::<bool>(), 0u8..2, any::<u8>(), any::<u32>()).prop_map(|(le, minor, flags, call_id)| {
        PduHeader {
            rpc_vers_minor: minor,
            pfc_flags: PfcFlags(flags),
            data_rep: if le {
                DataRepresentation::LITTLE_ENDIAN
            } else {
                DataRepresentation::BIG_ENDIAN
            },
            ..PduHeader::new(PacketType::Request, call_id)
        }
    })
}

fn encode(pdu: &Pdu, header: &PduHeader) -> Bytes {
    let mut out = BytesMut::new();
    pdu.encode(header, &mut out).unwrap();
    out.freeze()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_pdu_round_trips(pdu in arb_pdu(), header in arb_header()) {
        let bytes = encode(&pdu, &header);
        let decoded = Pdu::decode_with_header(&bytes, &Limits::default()).unwrap();
        prop_assert_eq!(&decoded.pdu, &pdu);
        prop_assert_eq!(decoded.header.packet_type, pdu.packet_type());
        prop_assert_eq!(usize::from(decoded.header.frag_length), bytes.len());
        if !matches!(pdu, Pdu::Rts(_)) {
            prop_assert_eq!(decoded.header.call_id, header.call_id);
            prop_assert_eq!(decoded.header.data_rep, header.data_rep);
            prop_assert_eq!(decoded.header.rpc_vers_minor, header.rpc_vers_minor);
        }
        fuzzing::pdu_roundtrip(&decoded);
    }

    #[test]
    fn every_rts_command_round_trips(cmd in arb_rts_command()) {
        let pdu = RtsPdu::new(RtsFlags::NONE, vec![cmd]);
        pdu.validate().unwrap();
        let bytes = pdu.to_bytes();
        prop_assert_eq!(bytes.len(), 20 + cmd.encoded_len());
        prop_assert_eq!(RtsPdu::decode(&bytes).unwrap(), pdu);
        let (again, used) = RtsCommand::decode(&bytes[20..]).unwrap();
        prop_assert_eq!(again, cmd);
        prop_assert_eq!(used, cmd.encoded_len());
    }

    #[test]
    fn rts_pdus_round_trip_and_keep_their_kind(pdu in arb_rts()) {
        let back = RtsPdu::decode(&pdu.to_bytes()).unwrap();
        prop_assert_eq!(back.kind(), pdu.kind());
        prop_assert_eq!(back, pdu);
    }

    #[test]
    fn framing_is_chunking_invariant(
        pdus in prop::collection::vec((arb_pdu(), arb_header()), 1..6),
        cuts in prop::collection::vec(1usize..200, 0..40),
        garbage in arb_bytes(40),
    ) {
        let mut stream = Vec::new();
        for (pdu, header) in &pdus {
            stream.extend_from_slice(&encode(pdu, header));
        }
        stream.extend_from_slice(&garbage);
        fuzzing::split_chunking(&stream, &cuts);

        // PduDecoder fed chunk by chunk yields every PDU in order.
        let mut decoder = PduDecoder::default();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut rest = &stream[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = cuts.get(i).copied().unwrap_or(rest.len()).clamp(1, rest.len());
            i += 1;
            buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            while let Ok(Some(d)) = decoder.decode(&mut buf) {
                got.push(d.pdu);
            }
        }
        let want: Vec<Pdu> = pdus.into_iter().map(|(p, _)| p).collect();
        prop_assert!(got.len() >= want.len());
        prop_assert_eq!(&got[..want.len()], &want[..]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..600)) {
        fuzzing::pdu_stream(&data);
    }

    #[test]
    fn mutated_pdus_never_panic(pdu in arb_pdu(), header in arb_header(), edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut bytes = encode(&pdu, &header).to_vec();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        fuzzing::pdu_stream(&bytes);
    }
}

#[test]
fn reassembly_of_a_fragmented_request_matches_the_whole() {
    let stub: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
    let mut stream = BytesMut::new();
    let chunks: Vec<&[u8]> = stub.chunks(1400).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let mut flags = PfcFlags(0);
        if i == 0 {
            flags = flags.with(PfcFlags::FIRST_FRAG);
        }
        if i == chunks.len() - 1 {
            flags = flags.with(PfcFlags::LAST_FRAG);
        }
        let req = Request {
            alloc_hint: stub.len() as u32,
            context_id: 1,
            opnum: 2,
            object: None,
            stub_data: Bytes::copy_from_slice(chunk),
            auth: None,
        };
        let header = PduHeader {
            pfc_flags: flags,
            ..PduHeader::new(PacketType::Request, 9)
        };
        Pdu::Request(req).encode(&header, &mut stream).unwrap();
    }
    let mut decoder = PduDecoder::default();
    let mut reassembler = Reassembler::default();
    let mut done = None;
    while let Some(d) = decoder.decode(&mut stream).unwrap() {
        if let Reassembled::Complete(call) = reassembler.push(d).unwrap() {
            done = Some(call);
        }
    }
    let call = done.expect("a complete call");
    assert_eq!(call.stub_data, stub);
    assert_eq!(
        (
            call.fragments,
            call.opnum,
            call.context_id,
            call.header.call_id
        ),
        (8, 2, 1, 9)
    );
}
