//! The named RTS PDUs the channel machines send and recognise (MS-RPCH §2.2.4), built from and
//! matched against their exact flags and command sequence.

use crate::rts::{Cookie, FlowControlAck, ForwardDestination, RtsCommand, RtsFlags, RtsPdu};

use super::flow::AckValues;

// The flag values live in `RtsFlags`; plain `u16`s here keep the exact-match patterns below short.
pub(crate) const NONE: u16 = RtsFlags::NONE.0;
pub(crate) const PING: u16 = RtsFlags::PING.0;
pub(crate) const OTHER_CMD: u16 = RtsFlags::OTHER_CMD.0;
pub(crate) const RECYCLE_CHANNEL: u16 = RtsFlags::RECYCLE_CHANNEL.0;
pub(crate) const OUT_CHANNEL: u16 = RtsFlags::OUT_CHANNEL.0;

/// Size of a Ping RTS PDU on the wire: the 20-byte RTS header and no command (§2.2.4.49).
pub(crate) const PING_LEN: u32 = 20;

fn ack_struct(ack: AckValues, cookie: Cookie) -> FlowControlAck {
    FlowControlAck {
        bytes_received: ack.bytes_received,
        available_window: ack.available_window,
        channel_cookie: cookie,
    }
}

/// FlowControlAck RTS PDU (§2.2.4.50): to a directly connected sender.
pub(crate) fn flow_control_ack(ack: AckValues, cookie: Cookie) -> RtsPdu {
    RtsPdu::flow_control_ack(ack_struct(ack, cookie))
}

/// FlowControlAckWithDestination RTS PDU (§2.2.4.51): forwarded to `dest` (§3.2.1.5.2).
pub(crate) fn flow_control_ack_to(
    dest: ForwardDestination,
    ack: AckValues,
    cookie: Cookie,
) -> RtsPdu {
    RtsPdu::flow_control_ack_with_destination(dest, ack_struct(ack, cookie))
}

/// Ping RTS PDU (§2.2.4.49).
pub(crate) fn ping() -> RtsPdu {
    RtsPdu::ping()
}

/// The flags of a PDU.
pub(crate) fn flags(p: &RtsPdu) -> u16 {
    p.flags.0
}

/// The forwarding destination of a PDU, if it has a Destination command (§3.2.1.5.2).
pub(crate) fn destination(p: &RtsPdu) -> Option<ForwardDestination> {
    p.commands.iter().find_map(|c| match c {
        RtsCommand::Destination(d) => Some(*d),
        _ => None,
    })
}

/// A FlowControlAck or FlowControlAckWithDestination: the acknowledgement it carries.
pub(crate) fn as_flow_control_ack(p: &RtsPdu) -> Option<(AckValues, Cookie)> {
    if flags(p) != OTHER_CMD {
        return None;
    }
    let ack = match p.commands.as_slice() {
        [RtsCommand::FlowControlAck(a)]
        | [RtsCommand::Destination(_), RtsCommand::FlowControlAck(a)] => a,
        _ => return None,
    };
    Some((
        AckValues {
            bytes_received: ack.bytes_received,
            available_window: ack.available_window,
        },
        ack.channel_cookie,
    ))
}

pub(crate) fn is_ping(p: &RtsPdu) -> bool {
    flags(p) & PING != 0 && p.commands.is_empty()
}

/// Keep-Alive RTS PDU (§2.2.4.47's neighbour, client to inbound proxy): the new interval in ms.
pub(crate) fn as_keep_alive(p: &RtsPdu) -> Option<u32> {
    match (flags(p), p.commands.as_slice()) {
        (OTHER_CMD, [RtsCommand::ClientKeepalive(ms)]) => Some(*ms),
        _ => None,
    }
}

/// CONN/A1 (§2.2.4.2).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnA1 {
    pub(crate) version: u32,
    pub(crate) virtual_connection: Cookie,
    pub(crate) out_channel: Cookie,
    pub(crate) receive_window: u32,
}

pub(crate) fn as_conn_a1(p: &RtsPdu) -> Option<ConnA1> {
    match (flags(p), p.commands.as_slice()) {
        (
            NONE,
            [
                RtsCommand::Version(v),
                RtsCommand::Cookie(vc),
                RtsCommand::Cookie(oc),
                RtsCommand::ReceiveWindowSize(w),
            ],
        ) => Some(ConnA1 {
            version: *v,
            virtual_connection: *vc,
            out_channel: *oc,
            receive_window: *w,
        }),
        _ => None,
    }
}

pub(crate) fn conn_a1(a: ConnA1) -> RtsPdu {
    RtsPdu::conn_a1(
        a.version,
        a.virtual_connection,
        a.out_channel,
        a.receive_window,
    )
}

pub(crate) fn as_conn_a3(p: &RtsPdu) -> Option<u32> {
    match (flags(p), p.commands.as_slice()) {
        (NONE, [RtsCommand::ConnectionTimeout(t)]) => Some(*t),
        _ => None,
    }
}

/// CONN/B1 (§2.2.4.5).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnB1 {
    pub(crate) version: u32,
    pub(crate) virtual_connection: Cookie,
    pub(crate) in_channel: Cookie,
    pub(crate) channel_lifetime: u32,
    pub(crate) client_keepalive: u32,
    pub(crate) association_group: Cookie,
}

pub(crate) fn as_conn_b1(p: &RtsPdu) -> Option<ConnB1> {
    match (flags(p), p.commands.as_slice()) {
        (
            NONE,
            [
                RtsCommand::Version(v),
                RtsCommand::Cookie(vc),
                RtsCommand::Cookie(ic),
                RtsCommand::ChannelLifetime(l),
                RtsCommand::ClientKeepalive(k),
                RtsCommand::AssociationGroupId(g),
            ],
        ) => Some(ConnB1 {
            version: *v,
            virtual_connection: *vc,
            in_channel: *ic,
            channel_lifetime: *l,
            client_keepalive: *k,
            association_group: *g,
        }),
        _ => None,
    }
}

pub(crate) fn conn_b1(b: ConnB1) -> RtsPdu {
    RtsPdu::conn_b1(
        b.version,
        b.virtual_connection,
        b.in_channel,
        b.channel_lifetime,
        b.client_keepalive,
        b.association_group,
    )
}

/// CONN/B2 (§2.2.4.6): inbound proxy to server.
pub(crate) fn conn_b2(
    b1: &ConnB1,
    receive_window: u32,
    connection_timeout_ms: u32,
    client_address: Option<std::net::IpAddr>,
) -> RtsPdu {
    let address = client_address.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    RtsPdu::conn_b2(
        b1.version.min(super::PROTOCOL_VERSION),
        b1.virtual_connection,
        b1.in_channel,
        receive_window,
        connection_timeout_ms,
        b1.association_group,
        address,
    )
}

/// CONN/B3 (§2.2.4.7): server to inbound proxy: the server's receive window and version.
pub(crate) fn as_conn_b3(p: &RtsPdu) -> Option<(u32, u32)> {
    match (flags(p), p.commands.as_slice()) {
        (NONE, [RtsCommand::ReceiveWindowSize(w), RtsCommand::Version(v)]) => Some((*w, *v)),
        _ => None,
    }
}

/// CONN/C1 (§2.2.4.8) and CONN/C2 (§2.2.4.9) share their layout: version, receive window of
/// the inbound proxy, connection timeout.
pub(crate) fn as_conn_c(p: &RtsPdu) -> Option<(u32, u32, u32)> {
    match (flags(p), p.commands.as_slice()) {
        (
            NONE,
            [
                RtsCommand::Version(v),
                RtsCommand::ReceiveWindowSize(w),
                RtsCommand::ConnectionTimeout(t),
            ],
        ) => Some((*v, *w, *t)),
        _ => None,
    }
}

/// IN_R1/A1 and IN_R2/A1 (§2.2.4.10, §2.2.4.18): client to the successor inbound proxy.
#[derive(Clone, Copy, Debug)]
pub(crate) struct InRecycleA1 {
    pub(crate) version: u32,
    pub(crate) virtual_connection: Cookie,
    pub(crate) predecessor: Cookie,
    pub(crate) successor: Cookie,
}

pub(crate) fn as_in_r_a1(p: &RtsPdu) -> Option<InRecycleA1> {
    match (flags(p), p.commands.as_slice()) {
        (
            RECYCLE_CHANNEL,
            [
                RtsCommand::Version(v),
                RtsCommand::Cookie(vc),
                RtsCommand::Cookie(pred),
                RtsCommand::Cookie(succ),
            ],
        ) => Some(InRecycleA1 {
            version: *v,
            virtual_connection: *vc,
            predecessor: *pred,
            successor: *succ,
        }),
        _ => None,
    }
}

pub(crate) fn in_r_a1(a: InRecycleA1) -> RtsPdu {
    RtsPdu::in_r1_a1(a.version, a.virtual_connection, a.predecessor, a.successor)
}

/// OUT_R1/A3 and OUT_R2/A3 (§2.2.4.25, §2.2.4.36): client to the successor outbound proxy,
/// the first PDU of a replacement OUT channel (whose request has Content-Length 120: this PDU,
/// 96 bytes, then OUT_R1/A11 or OUT_R2/C1, 24 bytes).
#[derive(Clone, Copy, Debug)]
pub(crate) struct OutRecycleA3 {
    pub(crate) version: u32,
    pub(crate) virtual_connection: Cookie,
    pub(crate) predecessor: Cookie,
    pub(crate) successor: Cookie,
    pub(crate) client_window: u32,
}

pub(crate) fn as_out_r_a3(p: &RtsPdu) -> Option<OutRecycleA3> {
    match (flags(p), p.commands.as_slice()) {
        (
            RECYCLE_CHANNEL,
            [
                RtsCommand::Version(v),
                RtsCommand::Cookie(vc),
                RtsCommand::Cookie(pred),
                RtsCommand::Cookie(succ),
                RtsCommand::ReceiveWindowSize(w),
            ],
        ) => Some(OutRecycleA3 {
            version: *v,
            virtual_connection: *vc,
            predecessor: *pred,
            successor: *succ,
            client_window: *w,
        }),
        _ => None,
    }
}

pub(crate) fn out_r_a3(a: OutRecycleA3) -> RtsPdu {
    RtsPdu::out_r1_a3(
        a.version,
        a.virtual_connection,
        a.predecessor,
        a.successor,
        a.client_window,
    )
}

/// OUT_R1/A11 and OUT_R2/C1 (§2.2.4.33, §2.2.4.44): ANCE, the client's "successor OUT channel
/// established" on the successor channel.
pub(crate) fn is_ance(p: &RtsPdu) -> bool {
    matches!(
        (flags(p), p.commands.as_slice()),
        (NONE, [RtsCommand::Ance])
    )
}

/// OUT_R1/A10 and OUT_R1/A11 (ANCE alone).
pub(crate) fn ance() -> RtsPdu {
    RtsPdu::out_r1_a10()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rts::RtsPduKind;

    const C: Cookie = Cookie([7; 16]);
    const D: Cookie = Cookie([8; 16]);

    /// Our builders produce exactly the named PDU (as rpch-pdu's recognizer sees it), and our
    /// recognizers take what rpch-pdu's constructors build and nothing else.
    #[test]
    fn builders_and_recognizers_agree_with_the_named_pdus() {
        let a1 = ConnA1 {
            version: 1,
            virtual_connection: C,
            out_channel: D,
            receive_window: 65536,
        };
        assert_eq!(conn_a1(a1).kind(), Some(RtsPduKind::ConnA1));
        assert!(as_conn_a1(&conn_a1(a1)).is_some_and(|x| x.out_channel == D));
        let b1 = ConnB1 {
            version: 1,
            virtual_connection: C,
            in_channel: D,
            channel_lifetime: 1 << 30,
            client_keepalive: 300_000,
            association_group: C,
        };
        assert_eq!(conn_b1(b1).kind(), Some(RtsPduKind::ConnB1));
        assert!(as_conn_b1(&conn_b1(b1)).is_some_and(|x| x.in_channel == D));
        let b2 = conn_b2(&b1, 65536, 120_000, None);
        assert_eq!(b2.kind(), Some(RtsPduKind::ConnB2));
        assert_eq!(b2.encoded_len(), 128);
        assert_eq!(as_conn_b3(&RtsPdu::conn_b3(65536, 1)), Some((65536, 1)));
        assert_eq!(
            as_conn_c(&RtsPdu::conn_c1(1, 65536, 120_000)),
            Some((1, 65536, 120_000))
        );
        assert_eq!(as_conn_a3(&RtsPdu::conn_a3(120_000)), Some(120_000));
        let ir = InRecycleA1 {
            version: 1,
            virtual_connection: C,
            predecessor: C,
            successor: D,
        };
        assert_eq!(in_r_a1(ir).kind(), Some(RtsPduKind::InR1A1));
        assert!(as_in_r_a1(&RtsPdu::in_r2_a1(1, C, C, D)).is_some());
        let or = OutRecycleA3 {
            version: 1,
            virtual_connection: C,
            predecessor: C,
            successor: D,
            client_window: 65536,
        };
        assert_eq!(out_r_a3(or).kind(), Some(RtsPduKind::OutR1A3));
        assert_eq!(out_r_a3(or).encoded_len(), 96);
        assert!(as_out_r_a3(&RtsPdu::out_r2_a3(1, C, C, D, 65536)).is_some());
        for ance_pdu in [
            RtsPdu::out_r1_a9(),
            RtsPdu::out_r1_a10(),
            RtsPdu::out_r1_a11(),
        ] {
            assert!(is_ance(&ance_pdu));
        }
        // 96 + 24: the Content-Length of a replacement OUT channel (§2.1.2.1.2).
        assert_eq!(out_r_a3(or).encoded_len() + ance().encoded_len(), 120);
        let ack = AckValues {
            bytes_received: 10,
            available_window: 20,
        };
        assert_eq!(
            flow_control_ack(ack, C).kind(),
            Some(RtsPduKind::FlowControlAck)
        );
        let with_dest = flow_control_ack_to(ForwardDestination::OutProxy, ack, C);
        assert_eq!(
            with_dest.kind(),
            Some(RtsPduKind::FlowControlAckWithDestination)
        );
        assert_eq!(as_flow_control_ack(&with_dest), Some((ack, C)));
        assert_eq!(destination(&with_dest), Some(ForwardDestination::OutProxy));
        assert_eq!(as_keep_alive(&RtsPdu::keep_alive(60_000)), Some(60_000));
        assert!(is_ping(&ping()) && ping().kind() == Some(RtsPduKind::Ping));
        assert_eq!(ping().encoded_len() as u32, PING_LEN);
        // Shapes that differ by flags or commands are not taken for one another.
        assert!(as_conn_a1(&RtsPdu::conn_a3(120_000)).is_none());
        assert!(as_conn_c(&RtsPdu::conn_b3(65536, 1)).is_none());
        assert!(as_in_r_a1(&RtsPdu::out_r1_a3(1, C, C, D, 65536)).is_none());
        assert!(as_flow_control_ack(&RtsPdu::ping_traffic_sent_notify(20)).is_none());
        assert!(!is_ance(&RtsPdu::out_r2_b3()));
    }
}
