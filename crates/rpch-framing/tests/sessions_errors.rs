//! Proxy machines driven byte by byte through their failure paths: every fault is a typed
//! `Closed { reason }`, and a channel that has not answered its request yet answers
//! `503 RPC Error` (MS-RPCH §2.1.2.1.3).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rpch_framing::channel::{
    Backend, ChannelError, CloseReason, FlowError, InboundProxy, InboundState, NCACN_HTTP_GREETING,
    OutboundProxy, ProxyConfig, ProxyEvent, SendErrorKind,
};
use rpch_framing::pdu::PacketType;
use rpch_framing::rts::{Cookie, RtsPdu};
use rpch_framing::target::RpcTarget;

fn forward() -> Backend {
    Backend::Forward(RpcTarget::new(std::net::Ipv4Addr::LOCALHOST, 6001))
}

fn enc(p: &RtsPdu) -> Vec<u8> {
    let mut b = BytesMut::new();
    p.encode(&mut b);
    b.to_vec()
}

fn b1() -> Vec<u8> {
    enc(&RtsPdu::conn_b1(
        1,
        Cookie([1; 16]),
        Cookie([2; 16]),
        1 << 30,
        300_000,
        Cookie([3; 16]),
    ))
}

fn a1() -> Vec<u8> {
    enc(&RtsPdu::conn_a1(1, Cookie([1; 16]), Cookie([4; 16]), 65536))
}

fn events_in(p: &mut InboundProxy) -> Vec<ProxyEvent> {
    std::iter::from_fn(|| p.poll_event()).collect()
}

fn events_out(p: &mut OutboundProxy) -> Vec<ProxyEvent> {
    std::iter::from_fn(|| p.poll_event()).collect()
}

fn closed_reason(events: &[ProxyEvent]) -> Option<CloseReason> {
    events.iter().find_map(|e| match e {
        ProxyEvent::Closed { reason } => Some(reason.clone()),
        _ => None,
    })
}

fn request(len: usize) -> Vec<u8> {
    let mut b = vec![5, 0, 0, 3, 0x10, 0, 0, 0];
    b.extend_from_slice(&((24 + len) as u16).to_le_bytes());
    b.extend_from_slice(&[0, 0, 1, 0, 0, 0]);
    b.extend_from_slice(&(len as u32).to_le_bytes());
    b.extend_from_slice(&[0, 0, 0, 0]);
    b.resize(24 + len, 0xab);
    b
}

fn inbound_forwarding() -> (InboundProxy, Instant) {
    let now = Instant::now();
    let mut p = InboundProxy::new(
        Arc::new(ProxyConfig::default()),
        now,
        forward(),
        1 << 30,
        None,
    );
    p.handle_input(now, &b1());
    (p, now)
}

#[test]
fn bad_greeting_closes_with_503_server_unavailable() {
    let (mut p, now) = inbound_forwarding();
    let ev = events_in(&mut p);
    assert!(matches!(
        ev[0],
        ProxyEvent::VirtualConnectionIdentified { .. }
    ));
    assert!(
        ev.iter()
            .any(|e| matches!(e, ProxyEvent::BackendConnectRequested(_)))
    );
    // Nothing goes to the backend before the owner connected it.
    let mut out = Vec::new();
    assert_eq!(p.poll_backend_transmit(&mut out), 0);
    p.handle_backend_connected(now);
    assert!(p.poll_backend_transmit(&mut out) > 0);
    out.clear();
    p.handle_backend_input(now, b"ncacn_http/1.1");
    assert_eq!(
        closed_reason(&events_in(&mut p)),
        Some(CloseReason::BackendError(ChannelError::BadGreeting))
    );
    p.poll_transmit(&mut out);
    assert!(
        out.starts_with(b"HTTP/1.0 503 RPC Error: 6BA\r\n"),
        "{out:?}"
    );
}

#[test]
fn greeting_is_checked_as_it_arrives() {
    let (mut p, now) = inbound_forwarding();
    events_in(&mut p);
    p.handle_backend_input(now, b"ncacn_");
    assert!(!p.is_closed());
    p.handle_backend_input(now, b"X");
    assert!(p.is_closed());
}

/// Regression (found by the chunking proptest): a greeting split into single bytes used to be
/// compared chunk by chunk against the greeting's start.
#[test]
fn greeting_split_byte_by_byte() {
    let (mut p, now) = inbound_forwarding();
    for b in NCACN_HTTP_GREETING {
        p.handle_backend_input(now, &[*b]);
        assert!(!p.is_closed());
    }
    p.handle_backend_input(now, &enc(&RtsPdu::conn_b3(65536, 1)));
    assert_eq!(p.state(), InboundState::Opened);
}

/// MS-RPCH §3.2.3.5.12: a proxy must not require the legacy server response.
#[test]
fn backend_without_greeting_is_accepted() {
    let (mut p, now) = inbound_forwarding();
    p.handle_backend_connected(now);
    p.handle_backend_input(now, &enc(&RtsPdu::conn_b3(65536, 1)));
    assert_eq!(p.state(), InboundState::Opened);
}

#[test]
fn greeting_then_b2_goes_out_then_b3_opens() {
    let (mut p, now) = inbound_forwarding();
    events_in(&mut p);
    p.handle_backend_connected(now);
    p.handle_backend_input(now, NCACN_HTTP_GREETING);
    let mut out = Vec::new();
    while p.poll_backend_transmit(&mut out) > 0 {}
    let b2 = RtsPdu::decode(&out).unwrap();
    assert_eq!(b2.kind(), Some(rpch_framing::rts::RtsPduKind::ConnB2));
    assert_eq!(b2.receive_window_size(), Some(65536));
    assert_eq!(b2.connection_timeout(), Some(120_000));
    assert_eq!(p.state(), InboundState::AwaitingB3);
    p.handle_backend_input(now, &enc(&RtsPdu::conn_b3(65536, 1)));
    assert_eq!(p.state(), InboundState::Opened);
}

#[test]
fn unreachable_backend_and_slow_backend() {
    let (mut p, now) = inbound_forwarding();
    p.handle_backend_connect_failed(now);
    assert!(events_in(&mut p).contains(&ProxyEvent::Closed {
        reason: CloseReason::BackendUnreachable
    }));

    let (mut p, now) = inbound_forwarding();
    events_in(&mut p);
    let deadline = p.poll_timeout().unwrap();
    assert_eq!(deadline, now + Duration::from_secs(30));
    p.handle_timeout(deadline - Duration::from_millis(1));
    assert!(!p.is_closed());
    p.handle_timeout(deadline);
    assert_eq!(
        closed_reason(&events_in(&mut p)),
        Some(CloseReason::BackendTimeout)
    );
}

#[test]
fn rpc_pdu_before_b1_is_a_protocol_error() {
    let now = Instant::now();
    let mut p = InboundProxy::new(
        Arc::new(ProxyConfig::default()),
        now,
        forward(),
        1 << 30,
        None,
    );
    p.handle_input(now, &request(10));
    assert_eq!(
        closed_reason(&events_in(&mut p)),
        Some(CloseReason::ClientError(ChannelError::UnexpectedRpc {
            packet_type: PacketType::Request,
            state: "Open_Start"
        }))
    );
    let mut out = Vec::new();
    p.poll_transmit(&mut out);
    assert!(out.starts_with(b"HTTP/1.0 503 RPC Error: 6C0\r\n"));
}

#[test]
fn client_overrunning_the_window_strict_mode() {
    let mut config = ProxyConfig::default();
    config.receive_window = 8192;
    config.strict_receive_window = true;
    let now = Instant::now();
    let mut p = InboundProxy::new(Arc::new(config), now, forward(), 1 << 30, None);
    p.handle_input(now, &b1());
    // Backend never answers: nothing can be forwarded, so the window fills up.
    for _ in 0..2 {
        p.handle_input(now, &request(4000));
    }
    assert!(!p.is_closed());
    p.handle_input(now, &request(4000));
    assert_eq!(
        closed_reason(&events_in(&mut p)),
        Some(CloseReason::ClientError(ChannelError::Flow(
            FlowError::WindowExceeded {
                len: 4024,
                available: 8192 - 2 * 4024
            }
        )))
    );
}

/// By default a client that ignores the window (impacket) is tolerated up to `max_buffered`.
#[test]
fn client_overrunning_the_window_lenient_mode() {
    let mut config = ProxyConfig::default();
    config.receive_window = 8192;
    config.max_buffered = 64 * 1024;
    let now = Instant::now();
    let mut p = InboundProxy::new(Arc::new(config), now, forward(), 1 << 30, None);
    p.handle_input(now, &b1());
    for _ in 0..16 {
        p.handle_input(now, &request(4000));
    }
    assert!(!p.is_closed());
    assert_eq!(p.queued_bytes(), 16 * 4024);
    p.handle_input(now, &request(4000));
    assert_eq!(
        closed_reason(&events_in(&mut p)),
        Some(CloseReason::BufferLimit)
    );
}

#[test]
fn in_channel_lifetime_is_enforced() {
    let now = Instant::now();
    let mut p = InboundProxy::new(
        Arc::new(ProxyConfig::default()),
        now,
        Backend::Local,
        200,
        None,
    );
    p.handle_input(now, &b1());
    p.handle_input(now, &request(50));
    assert!(!p.is_closed());
    p.handle_input(now, &request(50));
    assert!(matches!(
        closed_reason(&events_in(&mut p)),
        Some(CloseReason::ClientError(ChannelError::LifetimeExceeded {
            lifetime: 200
        }))
    ));
}

#[test]
fn keep_alive_pdu_changes_the_backend_keepalive() {
    let (mut p, now) = inbound_forwarding();
    assert!(
        events_in(&mut p).contains(&ProxyEvent::BackendKeepaliveChanged(Duration::from_secs(
            300
        )))
    );
    p.handle_input(now, &enc(&RtsPdu::keep_alive(60_000)));
    assert_eq!(
        events_in(&mut p),
        [ProxyEvent::BackendKeepaliveChanged(Duration::from_secs(60))]
    );
    assert_eq!(p.backend_keepalive(), Some(Duration::from_secs(60)));
    // Pings from the client are accepted silently.
    p.handle_input(now, &enc(&RtsPdu::ping()));
    assert!(events_in(&mut p).is_empty());
    assert!(!p.is_closed());
}

#[test]
fn garbage_on_the_out_channel_gets_503() {
    let now = Instant::now();
    let mut p = OutboundProxy::new(Arc::new(ProxyConfig::default()), now, forward());
    p.handle_input(
        now,
        &[
            5, 0, 20, 3, 0x10, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
    );
    assert!(matches!(
        closed_reason(&events_out(&mut p)),
        Some(CloseReason::ClientError(_))
    ));
    let mut out = Vec::new();
    p.poll_transmit(&mut out);
    assert!(
        out.starts_with(b"HTTP/1.0 503 RPC Error: 6C0\r\n"),
        "{out:?}"
    );
}

#[test]
fn out_r1_a2_from_the_backend_never_reaches_the_client() {
    let now = Instant::now();
    let mut p = OutboundProxy::new(Arc::new(ProxyConfig::default()), now, forward());
    p.handle_input(now, &a1());
    let mut wire = Vec::new();
    while p.poll_transmit(&mut wire) > 0 {}
    p.handle_backend_input(now, NCACN_HTTP_GREETING);
    p.handle_backend_input(now, &enc(&RtsPdu::conn_c1(1, 65536, 120_000)));
    wire.clear();
    while p.poll_transmit(&mut wire) > 0 {}
    assert_eq!(wire, enc(&RtsPdu::conn_c2(1, 65536, 120_000)));
    events_out(&mut p);
    p.handle_backend_input(now, &enc(&RtsPdu::out_r1_a1()));
    assert_eq!(events_out(&mut p), [ProxyEvent::RecycleRequestSuppressed]);
    wire.clear();
    p.poll_transmit(&mut wire);
    assert!(wire.is_empty());
    // Other PDUs for the client pass (IN_R1/A3 → A4).
    let a3 = enc(&RtsPdu::in_r1_a3(1, 65536, 120_000));
    p.handle_backend_input(now, &a3);
    p.poll_transmit(&mut wire);
    assert_eq!(wire, a3);
    assert!(!p.is_closed());
}

#[test]
fn commands_refused_in_the_wrong_mode_hand_the_value_back() {
    let now = Instant::now();
    let mut p = OutboundProxy::new(Arc::new(ProxyConfig::default()), now, forward());
    let pdu = bytes::Bytes::from(request(8));
    let e = p.send_pdu(now, pdu.clone()).unwrap_err();
    assert_eq!(e.kind, SendErrorKind::WrongMode);
    assert_eq!(e.value, pdu);
    let mut m = OutboundProxy::new(Arc::new(ProxyConfig::default()), now, Backend::Local);
    assert_eq!(
        m.send_pdu(now, pdu.clone()).unwrap_err().kind,
        SendErrorKind::NotOpen
    );
    m.handle_input(now, &a1());
    m.attach_in_channel(now).unwrap();
    assert_eq!(
        m.send_pdu(now, bytes::Bytes::from_static(b"not a pdu"))
            .unwrap_err()
            .kind,
        SendErrorKind::NotAPdu
    );
    assert_eq!(
        m.send_pdu(now, bytes::Bytes::from(enc(&RtsPdu::ping())))
            .unwrap_err()
            .kind,
        SendErrorKind::NotAPdu
    );
    m.send_pdu(now, pdu).unwrap();
}

#[test]
fn ack_with_an_invalid_window_closes_the_out_channel() {
    let now = Instant::now();
    let mut m = OutboundProxy::new(Arc::new(ProxyConfig::default()), now, Backend::Local);
    m.handle_input(now, &a1());
    m.attach_in_channel(now).unwrap();
    let ack = RtsPdu::flow_control_ack_with_destination(
        rpch_framing::rts::ForwardDestination::OutProxy,
        rpch_framing::rts::FlowControlAck {
            bytes_received: 0,
            available_window: 70000,
            channel_cookie: Cookie([4; 16]),
        },
    );
    m.handle_forwarded_rts(now, ack.clone());
    assert!(m.is_closed());
    // The same ack naming another channel is discarded (§3.2.1.5.1.2).
    let mut m = OutboundProxy::new(Arc::new(ProxyConfig::default()), now, Backend::Local);
    m.handle_input(now, &a1());
    m.attach_in_channel(now).unwrap();
    let mut other = ack;
    if let rpch_framing::rts::RtsCommand::FlowControlAck(a) = &mut other.commands[1] {
        a.channel_cookie = Cookie([9; 16]);
    }
    m.handle_forwarded_rts(now, other);
    assert!(!m.is_closed());
}

#[test]
fn client_gives_up_when_the_connection_does_not_open() {
    use rpch_framing::channel::{Client, ClientConfig, ClientCookies, ClientEvent};
    let now = Instant::now();
    let cookies = ClientCookies {
        virtual_connection: Cookie([1; 16]),
        in_channel: Cookie([2; 16]),
        out_channel: Cookie([3; 16]),
        association_group: Cookie([4; 16]),
    };
    let mut c = Client::new(Arc::new(ClientConfig::default()), now, cookies);
    let deadline = c.poll_timeout().unwrap();
    assert_eq!(deadline, now + Duration::from_secs(30));
    c.handle_timeout(deadline);
    assert!(c.is_closed());
    let events: Vec<_> = std::iter::from_fn(|| c.poll_event()).collect();
    assert!(events.contains(&ClientEvent::Closed {
        reason: CloseReason::BackendTimeout
    }));
}
