//! Merged mode: our [`Client`] ↔ our proxy machines acting as the RPC server themselves, the
//! two channels paired through a `VirtualConnectionTable`.

#[path = "sessions_support.rs"]
mod support;

use std::time::Duration;

use rpch_framing::channel::{
    Backend, ClientConfig, ClientState, CloseReason, InboundProxy, InboundState, OutboundProxy,
    OutboundState, ProxyConfig, ProxyEvent, SendErrorKind,
};
use rpch_framing::rts::{Cookie, RtsPdu};
use support::{Chunker, Net, bind};

fn configs() -> (ProxyConfig, ClientConfig) {
    let mut proxy = ProxyConfig::default();
    proxy.receive_window = 16384;
    let mut client = ClientConfig::default();
    client.receive_window = 16384;
    (proxy, client)
}

fn merged(chunker: Chunker) -> Net {
    let (p, c) = configs();
    let net = Net::new(p, c, 16384, true, chunker);
    assert_eq!(net.client.state(), ClientState::Opened);
    net
}

#[test]
fn a3_on_a1_and_c2_once_both_channels_arrived() {
    let now = std::time::Instant::now();
    let config = std::sync::Arc::new(ProxyConfig::default());
    let mut out = OutboundProxy::new(config.clone(), now, Backend::Local);
    let mut a1 = bytes::BytesMut::new();
    RtsPdu::conn_a1(1, Cookie([1; 16]), Cookie([2; 16]), 65536).encode(&mut a1);
    out.handle_input(now, &a1);
    let mut wire = Vec::new();
    while out.poll_transmit(&mut wire) > 0 {}
    let head_end = wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    // Head + CONN/A3 (28 bytes), no backend connection asked for.
    assert_eq!(wire.len() - head_end, 28);
    assert_eq!(
        RtsPdu::decode(&wire[head_end..]).unwrap(),
        RtsPdu::conn_a3(120_000)
    );
    assert_eq!(out.state(), OutboundState::AwaitingC1);
    let events: Vec<_> = std::iter::from_fn(|| out.poll_event()).collect();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ProxyEvent::BackendConnectRequested(_)))
    );
    // C2 only when the owner pairs the IN channel.
    let mut inp = InboundProxy::new(config, now, Backend::Local, 1 << 30, None);
    let mut b1 = bytes::BytesMut::new();
    RtsPdu::conn_b1(
        1,
        Cookie([1; 16]),
        Cookie([3; 16]),
        1 << 30,
        300_000,
        Cookie([4; 16]),
    )
    .encode(&mut b1);
    inp.handle_input(now, &b1);
    assert_eq!(inp.state(), InboundState::Opened);
    out.attach_in_channel(now).unwrap();
    wire.clear();
    while out.poll_transmit(&mut wire) > 0 {}
    assert_eq!(
        RtsPdu::decode(&wire).unwrap(),
        RtsPdu::conn_c2(1, 65536, 120_000)
    );
    assert_eq!(out.state(), OutboundState::Opened);
    assert_eq!(
        out.attach_in_channel(now).unwrap_err().kind,
        SendErrorKind::NotOpen
    );
}

#[test]
fn calls_through_merged_proxies_with_flow_control() {
    let mut net = merged(Chunker::whole());
    net.client.send_pdu(net.now, bind(1)).unwrap();
    net.run();
    assert_eq!(net.received[0][2], 12);
    net.call_many(2, 150, 5000);
    net.assert_responses(2, 150, 5000);
    let in_id = net.client.in_channel();
    assert!(net.inbound(in_id).acks_sent() > 10);
    assert!(net.client.acks_sent() > 10);
    assert!(net.client.acks_received() > 10);
    assert!(net.client.times_blocked() > 0);
    assert_eq!(
        net.conn_count(),
        0,
        "merged mode opens no backend connection"
    );
}

#[test]
fn merged_random_chunking() {
    for seed in [3u64, 17, 2024] {
        let mut net = merged(Chunker::random(seed, 61));
        net.call_many(1, 30, 2500);
        net.assert_responses(1, 30, 2500);
    }
}

#[test]
fn merged_in_channel_recycle() {
    let mut net = merged(Chunker::random(9, 400));
    let old = net.client.in_channel();
    net.call_many(1, 20, 3000);
    for i in 21..31 {
        net.client
            .send_pdu(net.now, support::request(i, &support::stub(i, 3000)))
            .ok();
    }
    let succ = net
        .client
        .recycle_in_channel(net.now, Cookie([0x55; 16]))
        .unwrap();
    net.run();
    net.call_many(31, 30, 3000);
    net.assert_responses(1, 60, 3000);
    assert_eq!(net.client.in_channel(), succ);
    assert!(net.inbound(old).is_closed());
    assert_eq!(net.inbound(succ).state(), InboundState::Opened);
}

#[test]
fn merged_out_channel_recycle() {
    let mut net = merged(Chunker::random(21, 400));
    let old = net.client.out_channel();
    net.call_many(1, 20, 3000);
    for i in 21..31 {
        net.client
            .send_pdu(net.now, support::request(i, &support::stub(i, 3000)))
            .ok();
    }
    let succ = net
        .client
        .recycle_out_channel(net.now, Cookie([0x44; 16]))
        .unwrap();
    net.run();
    net.call_many(31, 30, 3000);
    net.assert_responses(1, 60, 3000);
    assert_eq!(net.client.out_channel(), succ);
    assert!(net.outbound(old).is_closed());
    assert_eq!(net.outbound(succ).state(), OutboundState::Opened);
    assert!(net.proxy_events.iter().any(|(id, e)| *id == old
        && *e
            == ProxyEvent::Closed {
                reason: CloseReason::Recycled
            }));
}

#[test]
fn merged_keep_alive() {
    let mut net = merged(Chunker::whole());
    let out = net.client.out_channel();
    net.advance(Duration::from_secs(600));
    assert_eq!(net.outbound(out).pings_sent(), 10);
    assert!(!net.inbound(net.client.in_channel()).is_closed());
}
