//! Known-answer vectors: the RTS PDUs captured from Windows in impacket's
//! `tests/SMB_RPC/test_rpch.py` (CONN/A1, A2, A3, B2, C2, Ping, FlowControlAckWithDestination),
//! decoded with [`RtsPdu::decode`] and checked field by field, then re-encoded from the
//! decoded value; plus the byte size of every named RTS PDU of MS-RPCH §2.2.4 against our
//! constructors, and the echo response of §2.1.2.1.6.
//!
//! Only the bytes come from impacket; the checks are ours. Where Windows deviates from the
//! format (CONN/B2's IPv4 ClientAddress in the padding), re-encoding cannot reproduce the
//! capture and the test says exactly which bytes differ and why.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::BytesMut;
use rpch_framing::codec::split_pdu;
use rpch_framing::http::{ECHO_RESPONSE_CONTENT_LENGTH, encode_echo_response};
use rpch_framing::pdu::{Limits, PacketType, PduHeader, PfcFlags};
use rpch_framing::rts::{
    Cookie, FlowControlAck, ForwardDestination, RtsCommand, RtsFlags, RtsPdu, RtsPduKind,
};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    assert!(s.len().is_multiple_of(2));
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn cookie(s: &str) -> Cookie {
    Cookie(hex(s).try_into().unwrap())
}

// The captures, as hex (impacket test_rpch.py test_2 .. test_8).
const CONN_A1: &str = "05 00 14 03 10 00 00 00 4c 00 00 00 00 00 00 00 00 00 04 00
    06 00 00 00 01 00 00 00
    03 00 00 00 b0 f6 af 3d 77 62 98 07 9b 21 54 6e ec f4 22 53
    03 00 00 00 3a 24 7a 37 6d c1 ed 2c 68 5d 34 35 13 46 43 25
    00 00 00 00 00 00 04 00";
const CONN_A2: &str = "05 00 14 03 10 00 00 00 54 00 00 00 00 00 00 00 10 00 05 00
    06 00 00 00 01 00 00 00
    03 00 00 00 61 ec 8b b3 40 28 a8 46 ba fd 90 cf 6d 31 dc 29
    03 00 00 00 bc 38 10 35 a7 f0 3d 43 9c 3f 44 85 6e f1 c3 b0
    04 00 00 00 00 00 00 40
    00 00 00 00 00 00 01 00";
const CONN_A3: &str = "05 00 14 03 10 00 00 00 1c 00 00 00 00 00 00 00 00 00 01 00
    02 00 00 00 c0 d4 01 00";
const CONN_B2: &str = "05 00 14 03 10 00 00 00 80 00 00 00 00 00 00 00 08 00 07 00
    06 00 00 00 01 00 00 00
    03 00 00 00 61 ec 8b b3 40 28 a8 46 ba fd 90 cf 6d 31 dc 29
    03 00 00 00 20 ce 94 22 30 83 1b 45 94 ea 0d 7e 05 d2 a8 5a
    00 00 00 00 00 00 01 00
    02 00 00 00 c0 d4 01 00
    0c 00 00 00 df 28 b4 20 77 a4 70 42 b1 d1 4a 03 49 5f 6b 7b
    0b 00 00 00 00 00 00 00 00 00 00 00 c0 a8 02 fe 00 00 00 00 00 00 00 00";
const CONN_C2: &str = "05 00 14 03 10 00 00 00 2c 00 00 00 00 00 00 00 00 00 03 00
    06 00 00 00 01 00 00 00
    00 00 00 00 00 00 01 00
    02 00 00 00 c0 d4 01 00";
const PING: &str = "05 00 14 03 10 00 00 00 14 00 00 00 00 00 00 00 01 00 00 00";
const FCA_WITH_DESTINATION: &str = "05 00 14 03 10 00 00 00 38 00 00 00 00 00 00 00 02 00 02 00
    0d 00 00 00 00 00 00 00
    01 00 00 00 92 80 00 00 00 00 01 00 e3 79 6e 7c bc 68 a9 4d ab 8d 82 40 a0 05 72 32";

/// The virtual connection cookie shared by the CONN/A2 and CONN/B2 captures (one connection).
const VC_COOKIE: &str = "61ec8bb34028a846bafd90cf6d31dc29";

/// Decodes `bytes` both directly and through the framer, checks the common header, and
/// returns the PDU.
fn decode(bytes: &[u8]) -> RtsPdu {
    let header = PduHeader::parse(bytes, &Limits::default()).unwrap();
    assert_eq!(header.packet_type, PacketType::Rts);
    assert_eq!(header.pfc_flags, PfcFlags::FIRST_AND_LAST);
    assert_eq!(usize::from(header.frag_length), bytes.len());
    assert_eq!(header.auth_length, 0);
    assert_eq!(header.call_id, 0);
    assert!(header.is_little_endian());
    let direct = RtsPdu::decode(bytes).unwrap();
    // The framer splits the same bytes into one raw PDU that decodes to the same value, even
    // with the next PDU's first byte already buffered.
    let mut buf = BytesMut::from(bytes);
    buf.extend_from_slice(&[0x05]);
    let raw = split_pdu(&mut buf, &Limits::default()).unwrap().unwrap();
    assert_eq!(raw.bytes.as_ref(), bytes);
    assert_eq!(raw.rts().unwrap().unwrap(), direct);
    assert_eq!(buf.as_ref(), &[0x05]);
    direct
}

fn reencode(pdu: &RtsPdu) -> Vec<u8> {
    let mut out = BytesMut::new();
    pdu.try_encode(&mut out).unwrap();
    assert_eq!(out.len(), pdu.encoded_len());
    out.to_vec()
}

#[test]
fn conn_a1() {
    let bytes = hex(CONN_A1);
    assert_eq!(bytes.len(), 76);
    let pdu = decode(&bytes);
    assert_eq!(pdu.flags, RtsFlags::NONE);
    assert_eq!(
        pdu.commands,
        vec![
            RtsCommand::Version(1),
            RtsCommand::Cookie(cookie("b0f6af3d776298079b21546eecf42253")),
            RtsCommand::Cookie(cookie("3a247a376dc1ed2c685d343513464325")),
            RtsCommand::ReceiveWindowSize(262_144),
        ]
    );
    assert_eq!(pdu.kind(), Some(RtsPduKind::ConnA1));
    let built = RtsPdu::conn_a1(
        1,
        cookie("b0f6af3d776298079b21546eecf42253"),
        cookie("3a247a376dc1ed2c685d343513464325"),
        262_144,
    );
    assert_eq!(built, pdu);
    assert_eq!(reencode(&built), bytes);
}

#[test]
fn conn_a2() {
    let bytes = hex(CONN_A2);
    assert_eq!(bytes.len(), 84);
    let pdu = decode(&bytes);
    assert_eq!(pdu.flags, RtsFlags::OUT_CHANNEL);
    assert_eq!(pdu.version(), Some(1));
    assert_eq!(
        pdu.cookies(),
        vec![
            cookie(VC_COOKIE),
            cookie("bc381035a7f03d439c3f44856ef1c3b0")
        ]
    );
    assert_eq!(pdu.channel_lifetime(), Some(1_073_741_824));
    assert_eq!(pdu.receive_window_size(), Some(65_536));
    assert_eq!(pdu.kind(), Some(RtsPduKind::ConnA2));
    let built = RtsPdu::conn_a2(
        1,
        cookie(VC_COOKIE),
        cookie("bc381035a7f03d439c3f44856ef1c3b0"),
        1_073_741_824,
        65_536,
    );
    assert_eq!(built, pdu);
    assert_eq!(reencode(&built), bytes);
}

#[test]
fn conn_a3() {
    let bytes = hex(CONN_A3);
    assert_eq!(bytes.len(), 28);
    let pdu = decode(&bytes);
    assert_eq!(pdu.flags, RtsFlags::NONE);
    assert_eq!(pdu.commands, vec![RtsCommand::ConnectionTimeout(120_000)]);
    assert_eq!(pdu.kind(), Some(RtsPduKind::ConnA3));
    assert_eq!(reencode(&RtsPdu::conn_a3(120_000)), bytes);
}

#[test]
fn conn_b2_ipv4_with_the_address_in_the_padding() {
    let bytes = hex(CONN_B2);
    assert_eq!(bytes.len(), 128);
    let pdu = decode(&bytes);
    assert_eq!(pdu.flags, RtsFlags::IN_CHANNEL);
    assert_eq!(pdu.kind(), Some(RtsPduKind::ConnB2));
    assert_eq!(pdu.version(), Some(1));
    assert_eq!(
        pdu.cookies(),
        vec![
            cookie(VC_COOKIE),
            cookie("20ce942230831b4594ea0d7e05d2a85a")
        ]
    );
    assert_eq!(pdu.receive_window_size(), Some(65_536));
    assert_eq!(pdu.connection_timeout(), Some(120_000));
    assert_eq!(
        pdu.association_group_id(),
        Some(cookie("df28b42077a47042b1d14a03495f6b7b"))
    );
    // Windows wrote AddressType 0 (IPv4), an all-zero address field, and 192.168.2.254 in the
    // first four of the twelve padding bytes. The decoder recovers the padding address.
    let client_address_offset = 128 - 24;
    assert_eq!(
        &bytes[client_address_offset..client_address_offset + 4],
        &[0x0b, 0, 0, 0]
    );
    assert_eq!(
        &bytes[client_address_offset + 8..client_address_offset + 12],
        &[0, 0, 0, 0]
    );
    assert_eq!(
        &bytes[client_address_offset + 12..client_address_offset + 16],
        &[192, 168, 2, 254]
    );
    assert_eq!(
        pdu.client_address(),
        Some(IpAddr::V4(Ipv4Addr::new(192, 168, 2, 254)))
    );

    // Re-encoding writes the address where MS-RPCH §2.2.3.2 puts it and zero padding, so the
    // output differs from the capture in exactly those eight bytes (same length, same
    // everything else).
    let built = RtsPdu::conn_b2(
        1,
        cookie(VC_COOKIE),
        cookie("20ce942230831b4594ea0d7e05d2a85a"),
        65_536,
        120_000,
        cookie("df28b42077a47042b1d14a03495f6b7b"),
        IpAddr::V4(Ipv4Addr::new(192, 168, 2, 254)),
    );
    assert_eq!(built, pdu);
    let ours = reencode(&built);
    assert_eq!(ours.len(), bytes.len());
    let differing: Vec<usize> = (0..ours.len()).filter(|&i| ours[i] != bytes[i]).collect();
    assert_eq!(
        differing,
        (client_address_offset + 8..client_address_offset + 16).collect::<Vec<_>>()
    );
    assert_eq!(
        &ours[client_address_offset + 8..client_address_offset + 12],
        &[192, 168, 2, 254]
    );
    assert_eq!(&ours[client_address_offset + 12..], &[0; 12]);
    // Our encoding decodes to the same value: the quirk is tolerated, never produced.
    assert_eq!(RtsPdu::decode(&ours).unwrap(), pdu);
}

#[test]
fn conn_c2() {
    let bytes = hex(CONN_C2);
    assert_eq!(bytes.len(), 44);
    let pdu = decode(&bytes);
    assert_eq!(pdu.flags, RtsFlags::NONE);
    assert_eq!(
        pdu.commands,
        vec![
            RtsCommand::Version(1),
            RtsCommand::ReceiveWindowSize(65_536),
            RtsCommand::ConnectionTimeout(120_000),
        ]
    );
    // CONN/C1 and CONN/C2 have the same shape (§2.2.4.8, §2.2.4.9); the channel tells them apart.
    assert!(pdu.is(RtsPduKind::ConnC2));
    assert!(pdu.is(RtsPduKind::ConnC1));
    assert_eq!(reencode(&RtsPdu::conn_c2(1, 65_536, 120_000)), bytes);
}

#[test]
fn ping() {
    let bytes = hex(PING);
    assert_eq!(bytes.len(), 20);
    let pdu = decode(&bytes);
    assert_eq!(pdu.flags, RtsFlags::PING);
    assert!(pdu.commands.is_empty());
    assert_eq!(pdu.kind(), Some(RtsPduKind::Ping));
    assert_eq!(reencode(&RtsPdu::ping()), bytes);
}

#[test]
fn flow_control_ack_with_destination() {
    let bytes = hex(FCA_WITH_DESTINATION);
    assert_eq!(bytes.len(), 56);
    let pdu = decode(&bytes);
    assert_eq!(pdu.flags, RtsFlags::OTHER_CMD);
    let ack = FlowControlAck {
        bytes_received: 32_914,
        available_window: 65_536,
        channel_cookie: cookie("e3796e7cbc68a94dab8d8240a0057232"),
    };
    assert_eq!(
        pdu.commands,
        vec![
            RtsCommand::Destination(ForwardDestination::Client),
            RtsCommand::FlowControlAck(ack),
        ]
    );
    assert_eq!(pdu.kind(), Some(RtsPduKind::FlowControlAckWithDestination));
    assert_eq!(
        reencode(&RtsPdu::flow_control_ack_with_destination(
            ForwardDestination::Client,
            ack
        )),
        bytes
    );
}

#[test]
fn every_capture_is_refused_when_truncated_or_extended() {
    for v in [
        CONN_A1,
        CONN_A2,
        CONN_A3,
        CONN_B2,
        CONN_C2,
        PING,
        FCA_WITH_DESTINATION,
    ] {
        let bytes = hex(v);
        for cut in 0..bytes.len() {
            assert!(RtsPdu::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(RtsPdu::decode(&longer).is_err());
    }
}

/// Byte sizes of every named RTS PDU, computed here from the field lists of MS-RPCH §2.2.4
/// (20-byte RTS header; Version, ReceiveWindowSize, ConnectionTimeout, ChannelLifetime,
/// ClientKeepalive, Destination and PingTrafficSentNotify 8 bytes; Cookie and
/// AssociationGroupId 20; FlowControlAck 28; Empty, ANCE and NegativeANCE 4; IPv4
/// ClientAddress 24, IPv6 36).
#[test]
fn every_named_pdu_has_its_spec_size() {
    let c = Cookie([7; 16]);
    let ack = FlowControlAck {
        bytes_received: 1,
        available_window: 65_536,
        channel_cookie: c,
    };
    let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    let (rws, ct, life, ver) = (65_536, 120_000, 1 << 30, 1);
    let cases: Vec<(RtsPdu, RtsPduKind, usize)> = vec![
        (
            RtsPdu::conn_a1(ver, c, c, rws),
            RtsPduKind::ConnA1,
            20 + 8 + 20 + 20 + 8,
        ),
        (
            RtsPdu::conn_a2(ver, c, c, life, rws),
            RtsPduKind::ConnA2,
            20 + 8 + 20 + 20 + 8 + 8,
        ),
        (RtsPdu::conn_a3(ct), RtsPduKind::ConnA3, 20 + 8),
        (
            RtsPdu::conn_b1(ver, c, c, life, 300_000, c),
            RtsPduKind::ConnB1,
            20 + 8 + 20 + 20 + 8 + 8 + 20,
        ),
        (
            RtsPdu::conn_b2(ver, c, c, rws, ct, c, v4),
            RtsPduKind::ConnB2,
            20 + 8 + 20 + 20 + 8 + 8 + 20 + 24,
        ),
        (
            RtsPdu::conn_b2(ver, c, c, rws, ct, c, v6),
            RtsPduKind::ConnB2,
            20 + 8 + 20 + 20 + 8 + 8 + 20 + 36,
        ),
        (RtsPdu::conn_b3(rws, ver), RtsPduKind::ConnB3, 20 + 8 + 8),
        (
            RtsPdu::conn_c1(ver, rws, ct),
            RtsPduKind::ConnC1,
            20 + 8 + 8 + 8,
        ),
        (
            RtsPdu::conn_c2(ver, rws, ct),
            RtsPduKind::ConnC2,
            20 + 8 + 8 + 8,
        ),
        (
            RtsPdu::in_r1_a1(ver, c, c, c),
            RtsPduKind::InR1A1,
            20 + 8 + 3 * 20,
        ),
        (
            RtsPdu::in_r1_a2(ver, c, c, c, rws, ct),
            RtsPduKind::InR1A2,
            20 + 8 + 3 * 20 + 8 + 8,
        ),
        (
            RtsPdu::in_r1_a3(ver, rws, ct),
            RtsPduKind::InR1A3,
            20 + 8 + 8 + 8 + 8,
        ),
        (
            RtsPdu::in_r1_a4(ver, rws, ct),
            RtsPduKind::InR1A4,
            20 + 8 + 8 + 8 + 8,
        ),
        (RtsPdu::in_r1_a5(c), RtsPduKind::InR1A5, 20 + 20),
        (RtsPdu::in_r1_a6(c), RtsPduKind::InR1A6, 20 + 20),
        (RtsPdu::in_r1_b1(), RtsPduKind::InR1B1, 20 + 4),
        (RtsPdu::in_r1_b2(rws), RtsPduKind::InR1B2, 20 + 8),
        (
            RtsPdu::in_r2_a1(ver, c, c, c),
            RtsPduKind::InR2A1,
            20 + 8 + 3 * 20,
        ),
        (RtsPdu::in_r2_a2(c), RtsPduKind::InR2A2, 20 + 20),
        (RtsPdu::in_r2_a3(), RtsPduKind::InR2A3, 20 + 8),
        (RtsPdu::in_r2_a4(), RtsPduKind::InR2A4, 20 + 8),
        (RtsPdu::in_r2_a5(c), RtsPduKind::InR2A5, 20 + 20),
        (RtsPdu::out_r1_a1(), RtsPduKind::OutR1A1, 20 + 8),
        (RtsPdu::out_r1_a2(), RtsPduKind::OutR1A2, 20 + 8),
        (
            RtsPdu::out_r1_a3(ver, c, c, c, rws),
            RtsPduKind::OutR1A3,
            20 + 8 + 3 * 20 + 8,
        ),
        (
            RtsPdu::out_r1_a4(ver, c, c, c, life, rws, ct),
            RtsPduKind::OutR1A4,
            20 + 8 + 3 * 20 + 8 + 8 + 8,
        ),
        (
            RtsPdu::out_r1_a5(ver, ct),
            RtsPduKind::OutR1A5,
            20 + 8 + 8 + 8,
        ),
        (
            RtsPdu::out_r1_a6(ver, ct),
            RtsPduKind::OutR1A6,
            20 + 8 + 8 + 8,
        ),
        (RtsPdu::out_r1_a7(c), RtsPduKind::OutR1A7, 20 + 8 + 20),
        (RtsPdu::out_r1_a8(c), RtsPduKind::OutR1A8, 20 + 8 + 20),
        (RtsPdu::out_r1_a9(), RtsPduKind::OutR1A9, 20 + 4),
        (RtsPdu::out_r1_a10(), RtsPduKind::OutR1A10, 20 + 4),
        (RtsPdu::out_r1_a11(), RtsPduKind::OutR1A11, 20 + 4),
        (RtsPdu::out_r2_a1(), RtsPduKind::OutR2A1, 20 + 8),
        (RtsPdu::out_r2_a2(), RtsPduKind::OutR2A2, 20 + 8),
        (
            RtsPdu::out_r2_a3(ver, c, c, c, rws),
            RtsPduKind::OutR2A3,
            20 + 8 + 3 * 20 + 8,
        ),
        (RtsPdu::out_r2_a4(c), RtsPduKind::OutR2A4, 20 + 20),
        (RtsPdu::out_r2_a5(), RtsPduKind::OutR2A5, 20 + 8 + 4),
        (RtsPdu::out_r2_a6(), RtsPduKind::OutR2A6, 20 + 8 + 4),
        (
            RtsPdu::out_r2_a7(c, ver),
            RtsPduKind::OutR2A7,
            20 + 8 + 20 + 8,
        ),
        (RtsPdu::out_r2_a8(c), RtsPduKind::OutR2A8, 20 + 8 + 20),
        (RtsPdu::out_r2_b1(), RtsPduKind::OutR2B1, 20 + 4),
        (RtsPdu::out_r2_b2(), RtsPduKind::OutR2B2, 20 + 4),
        (RtsPdu::out_r2_b3(), RtsPduKind::OutR2B3, 20 + 4),
        (RtsPdu::out_r2_c1(), RtsPduKind::OutR2C1, 20 + 4),
        (RtsPdu::keep_alive(300_000), RtsPduKind::KeepAlive, 20 + 8),
        (
            RtsPdu::ping_traffic_sent_notify(4096),
            RtsPduKind::PingTrafficSentNotify,
            20 + 8,
        ),
        (RtsPdu::echo(), RtsPduKind::Echo, 20),
        (RtsPdu::ping(), RtsPduKind::Ping, 20),
        (
            RtsPdu::flow_control_ack(ack),
            RtsPduKind::FlowControlAck,
            20 + 28,
        ),
        (
            RtsPdu::flow_control_ack_with_destination(ForwardDestination::Server, ack),
            RtsPduKind::FlowControlAckWithDestination,
            20 + 8 + 28,
        ),
    ];
    let mut seen = std::collections::HashSet::new();
    for (pdu, kind, size) in &cases {
        let bytes = reencode(pdu);
        assert_eq!(bytes.len(), *size, "{kind}");
        assert_eq!(
            u16::from_le_bytes([bytes[8], bytes[9]]) as usize,
            *size,
            "{kind} frag_length"
        );
        assert!(pdu.is(*kind), "{kind} not recognised");
        assert_eq!(&RtsPdu::decode(&bytes).unwrap(), pdu, "{kind}");
        seen.insert(*kind);
    }
    assert_eq!(seen.len(), RtsPduKind::ALL.len(), "every named PDU covered");

    // The HTTP Content-Lengths of MS-RPCH §2.1.2.1.2 are these sizes: a new OUT channel's body
    // is CONN/A1 (76); a replacement's is OUT_R1/A3 or OUT_R2/A3 (96) plus the 24-byte
    // OUT_R1/A11 or OUT_R2/C1 that fills it to 120.
    use rpch_framing::http::{OUT_CHANNEL_CONTENT_LENGTH, REPLACEMENT_OUT_CHANNEL_CONTENT_LENGTH};
    assert_eq!(
        RtsPdu::conn_a1(ver, c, c, rws).encoded_len() as u64,
        OUT_CHANNEL_CONTENT_LENGTH
    );
    assert_eq!(
        (RtsPdu::out_r1_a3(ver, c, c, c, rws).encoded_len() + RtsPdu::out_r1_a11().encoded_len())
            as u64,
        REPLACEMENT_OUT_CHANNEL_CONTENT_LENGTH
    );
    assert_eq!(
        (RtsPdu::out_r2_a3(ver, c, c, c, rws).encoded_len() + RtsPdu::out_r2_c1().encoded_len())
            as u64,
        REPLACEMENT_OUT_CHANNEL_CONTENT_LENGTH
    );
}

#[test]
fn echo_response_is_head_plus_the_echo_pdu() {
    let mut out = Vec::new();
    encode_echo_response(&mut out);
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let (head, body) = out.split_at(split);
    assert!(head.starts_with(b"HTTP/1.1 200 Success\r\n"));
    assert_eq!(body.len() as u64, ECHO_RESPONSE_CONTENT_LENGTH);
    assert_eq!(
        body,
        hex("05 00 14 03 10 00 00 00 14 00 00 00 00 00 00 00 40 00 00 00")
    );
    assert_eq!(RtsPdu::decode(body).unwrap().kind(), Some(RtsPduKind::Echo));
}
