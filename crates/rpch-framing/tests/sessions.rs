//! Full in-memory sessions: our [`Client`] ↔ our inbound and outbound proxy machines ↔ a test
//! `ncacn_http` RPC server, under a virtual clock.

#[path = "sessions_support.rs"]
mod support;

use std::time::Duration;

use rpch_framing::channel::{
    ClientConfig, ClientEvent, ClientState, CloseReason, InboundState, OutboundState, ProxyConfig,
    ProxyEvent,
};
use rpch_framing::rts::Cookie;
use support::{Chunker, Net, bind};

/// Small windows so that a few calls engage flow control on every hop.
fn small_windows() -> (ProxyConfig, ClientConfig) {
    let mut proxy = ProxyConfig::default();
    proxy.receive_window = 16384;
    let mut client = ClientConfig::default();
    client.receive_window = 16384;
    (proxy, client)
}

fn opened(chunker: Chunker) -> Net {
    let (p, c) = small_windows();
    let net = Net::new(p, c, 16384, false, chunker);
    assert_eq!(net.client.state(), ClientState::Opened);
    net
}

#[test]
fn conn_sequence_opens_the_virtual_connection() {
    let net = opened(Chunker::whole());
    let in_id = net.client.in_channel();
    let out_id = net.client.out_channel();
    assert_eq!(net.inbound(in_id).state(), InboundState::Opened);
    assert_eq!(net.outbound(out_id).state(), OutboundState::Opened);
    // The server saw A2 and B2 (in some order), nothing else.
    let mut seen = net.server.rts_seen.clone();
    seen.sort();
    assert_eq!(seen, ["CONN/A2", "CONN/B2"]);
    // The OUT channel response: 200 Success, application/rpc, a 1 GiB Content-Length.
    let (_, head) = &net.http_heads[0];
    let head = String::from_utf8(head.clone()).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 Success\r\n"), "{head}");
    assert!(head.contains("Content-Type: application/rpc\r\n"), "{head}");
    assert!(head.contains("Content-Length: 1073741824\r\n"), "{head}");
    assert_eq!(
        net.client.connection_timeout(),
        Some(Duration::from_secs(120))
    );
    assert!(
        net.client_events
            .iter()
            .any(|e| matches!(e, ClientEvent::Opened))
    );
    // The client's ClientKeepalive (300 s) becomes TCP keep-alive on the IN backend connection.
    assert!(net.proxy_events.iter().any(|(id, e)| *id == in_id
        && *e == ProxyEvent::BackendKeepaliveChanged(Duration::from_secs(300))));
}

#[test]
fn out_channel_carries_head_a3_c2_and_nothing_between() {
    // INTEROP: after CONN/A1, the head, then CONN/A3, then CONN/C2 — exactly 44 + 44 bytes.
    let mut net = opened(Chunker::whole());
    let out_id = net.client.out_channel();
    assert_eq!(
        net.proxy_event_count(|e| matches!(e, ProxyEvent::Opened)),
        2
    );
    // Nothing has flowed yet but the two RTS PDUs: the client's window is untouched.
    let w = net.outbound(out_id).send_window().unwrap();
    assert_eq!(w.bytes_sent(), 0);
    net.run();
}

#[test]
fn many_calls_larger_than_the_windows_engage_flow_control() {
    let mut net = opened(Chunker::whole());
    net.client.send_pdu(net.now, bind(1)).unwrap();
    net.run();
    assert_eq!(net.received.len(), 1);
    assert_eq!(net.received[0][2], 12, "bind_ack");

    // 200 calls of 5000-byte stubs: about 1 MB each way through 16 KiB windows.
    net.call_many(2, 200, 5000);
    net.assert_responses(2, 200, 5000);

    let in_id = net.client.in_channel();
    let out_id = net.client.out_channel();
    // Every hop acknowledged: the client for OUT traffic (to the outbound proxy, through the
    // IN channel and the server), the inbound proxy for the client's traffic (to the client,
    // through the server and the outbound proxy), the server for the inbound proxy's, the
    // outbound proxy for the server's.
    assert!(
        net.client.acks_sent() > 10,
        "client acks {}",
        net.client.acks_sent()
    );
    assert!(net.client.acks_received() > 10);
    assert!(net.inbound(in_id).acks_sent() > 10);
    assert!(net.outbound(out_id).acks_sent() > 10);
    assert!(net.server.acks_sent > 10);
    assert!(net.server.acks_received > 10);
    // The client's sender hit the inbound proxy's window and resumed.
    assert!(net.client.times_blocked() > 0);
    assert!(!net.client.is_send_blocked());
    assert_eq!(net.client.queued_bytes(), 0);
    assert_eq!(net.outbound(out_id).queued_bytes(), 0);
}

#[test]
fn sender_blocks_on_an_exhausted_window_and_resumes_on_the_ack() {
    let mut net = opened(Chunker::whole());
    let in_id = net.client.in_channel();
    // Queue four 5 KiB requests without running the network: only three fit the inbound
    // proxy's 16 KiB window (3 × 5024 = 15072).
    for i in 0..4 {
        net.client
            .send_pdu(net.now, support::request(i, &support::stub(i, 5000)))
            .unwrap();
    }
    assert!(net.client.is_send_blocked());
    assert_eq!(net.client.queued_bytes(), 5024);
    // Running the network delivers them; the acks from the inbound proxy (through the server
    // and the outbound proxy) reopen the window.
    net.run();
    assert!(!net.client.is_send_blocked());
    assert_eq!(net.client.queued_bytes(), 0);
    assert!(net.inbound(in_id).acks_sent() >= 1);
    net.assert_responses(0, 4, 5000);
}

#[test]
fn random_chunking_gives_the_same_session() {
    for seed in [1u64, 7, 42, 1234, 99991] {
        let mut net = opened(Chunker::random(seed, 97));
        net.call_many(1, 40, 3000);
        net.assert_responses(1, 40, 3000);
    }
}

#[test]
fn out_channel_recycle_mid_stream_loses_and_duplicates_nothing() {
    let mut net = opened(Chunker::whole());
    let old_out = net.client.out_channel();
    net.call_many(1, 30, 4000);
    // Queue more calls and recycle while their responses are in flight.
    for i in 31..61 {
        net.client
            .send_pdu(net.now, support::request(i, &support::stub(i, 4000)))
            .ok();
    }
    let succ = net
        .client
        .recycle_out_channel(net.now, Cookie([0x77; 16]))
        .unwrap();
    net.run();
    net.call_many(61, 40, 4000);
    net.assert_responses(1, 100, 4000);
    assert_eq!(net.client.out_channel(), succ);
    assert_eq!(net.outbound(succ).state(), OutboundState::Opened);
    assert!(net.outbound(old_out).is_closed());
    assert!(net.proxy_events.iter().any(|(id, e)| *id == old_out
        && matches!(
            e,
            ProxyEvent::Closed {
                reason: CloseReason::Recycled
            }
        )));
    // The replacement OUT channel declared Content-Length 120 and sent OUT_R1/A3 + A11.
    assert!(net.client_events.iter().any(|e| matches!(
        e,
        ClientEvent::ChannelRequested { id, content_length: 120, .. } if *id == succ
    )));
    for name in ["OUT_R1/A4", "OUT_R1/A7"] {
        assert!(
            net.server.rts_seen.contains(&name),
            "{name} missing: {:?}",
            net.server.rts_seen
        );
    }
    assert!(
        net.client_events
            .iter()
            .any(|e| *e == ClientEvent::ChannelFinished(old_out))
    );
}

#[test]
fn in_channel_recycle_mid_stream_loses_and_duplicates_nothing() {
    let mut net = opened(Chunker::random(5, 300));
    let old_in = net.client.in_channel();
    net.call_many(1, 20, 4000);
    for i in 21..41 {
        net.client
            .send_pdu(net.now, support::request(i, &support::stub(i, 4000)))
            .ok();
    }
    let succ = net
        .client
        .recycle_in_channel(net.now, Cookie([0x66; 16]))
        .unwrap();
    net.run();
    net.call_many(41, 40, 4000);
    net.assert_responses(1, 80, 4000);
    assert_eq!(net.client.in_channel(), succ);
    assert_eq!(net.inbound(succ).state(), InboundState::Opened);
    assert!(net.inbound(old_in).is_closed());
    // IN_R1/A6 has IN_R1/A5's shape, so the recognizer names it A5.
    for name in ["IN_R1/A2", "IN_R1/A5", "IN_R1/B1"] {
        assert!(
            net.server.rts_seen.contains(&name),
            "{name} missing: {:?}",
            net.server.rts_seen
        );
    }
    // The successor keeps flow control going with its own cookie.
    assert!(net.inbound(succ).acks_sent() > 0);
}

#[test]
fn both_channels_recycled_twice() {
    let mut net = opened(Chunker::random(11, 500));
    let mut next = 1;
    for round in 0..2u8 {
        net.call_many(next, 10, 2000);
        next += 10;
        net.client
            .recycle_out_channel(net.now, Cookie([0x10 + round; 16]))
            .unwrap();
        net.call_many(next, 10, 2000);
        next += 10;
        net.run();
        net.client
            .recycle_in_channel(net.now, Cookie([0x20 + round; 16]))
            .unwrap();
        net.call_many(next, 10, 2000);
        next += 10;
    }
    net.assert_responses(1, next - 1, 2000);
    // The recycled channels' connections ended (their proxies closed) without ending the
    // virtual connection.
    assert_eq!(net.client.state(), ClientState::Opened);
    let finished = net
        .client_events
        .iter()
        .filter(|e| matches!(e, ClientEvent::ChannelFinished(_)))
        .count();
    assert_eq!(finished, 4);
}

#[test]
fn keep_alive_timing_on_an_idle_connection() {
    let mut net = opened(Chunker::whole());
    let out_id = net.client.out_channel();
    let in_id = net.client.in_channel();
    // The outbound proxy pings the client every 60 s (half the 120 s connection timeout);
    // the client pings on the IN channel every 60 s too; nobody times out in 10 minutes.
    net.advance(Duration::from_secs(59));
    assert_eq!(net.outbound(out_id).pings_sent(), 0);
    net.advance(Duration::from_secs(1));
    assert_eq!(net.outbound(out_id).pings_sent(), 1);
    net.advance(Duration::from_secs(540));
    assert_eq!(net.outbound(out_id).pings_sent(), 10);
    assert!(!net.inbound(in_id).is_closed());
    assert!(!net.outbound(out_id).is_closed());
    // Ping bytes are reported to the server for its OUT channel lifetime accounting once more
    // than 1031 have piled up (MS-RPCH <50>): after 52 pings of 20 bytes.
    let notifies = |net: &Net| {
        net.server
            .rts_seen
            .iter()
            .filter(|n| **n == "Ping Traffic Sent Notify")
            .count()
    };
    assert_eq!(notifies(&net), 0);
    net.advance(Duration::from_secs(60 * 42));
    assert_eq!(net.outbound(out_id).pings_sent(), 52);
    assert_eq!(notifies(&net), 1);
    assert!(!net.inbound(in_id).is_closed());
    // Traffic postpones pings.
    net.call_many(1, 5, 100);
    net.assert_responses(1, 5, 100);
}

#[test]
fn connection_timeout_closes_an_inbound_channel_whose_client_went_silent() {
    let mut net = opened(Chunker::whole());
    let in_id = net.client.in_channel();
    // Only the proxies' timers run: the client sends no pings.
    for _ in 0..239 {
        net.now += Duration::from_secs(1);
        net.fire_proxy_timers();
        net.run();
    }
    assert!(!net.inbound(in_id).is_closed());
    net.now += Duration::from_secs(1);
    net.fire_proxy_timers();
    net.run();
    assert!(net.inbound(in_id).is_closed());
    assert!(net.proxy_events.iter().any(|(id, e)| *id == in_id
        && *e
            == ProxyEvent::Closed {
                reason: CloseReason::IdleTimeout
            }));
}

#[test]
fn teardown_client_eof_and_backend_eof() {
    let mut net = opened(Chunker::whole());
    let in_id = net.client.in_channel();
    let out_id = net.client.out_channel();
    net.call_many(1, 3, 100);
    net.client_eof(in_id);
    assert!(net.inbound(in_id).is_closed());
    net.backend_eof(out_id);
    assert!(net.outbound(out_id).is_closed());
    let reasons: Vec<_> = net
        .proxy_events
        .iter()
        .filter_map(|(_, e)| match e {
            ProxyEvent::Closed { reason } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        reasons,
        [CloseReason::ClientClosed, CloseReason::BackendClosed]
    );
    // After close the machines ask for nothing and take nothing.
    assert!(!net.inbound(in_id).wants_input());
    assert_eq!(net.inbound(in_id).poll_timeout(), None);
    assert_eq!(net.outbound(out_id).poll_timeout(), None);
}

/// Channel lifetimes end: with 128 KiB Content-Lengths (the smallest MS-RPCH allows), a
/// megabyte each way recycles both channels again and again, on the client's initiative, with
/// nothing lost, duplicated or reordered.
#[test]
fn channel_lifetimes_drive_recycling() {
    let (mut proxy, mut client) = small_windows();
    proxy.out_channel_content_length = 128 * 1024;
    client.in_channel_lifetime = 128 * 1024;
    // What can still arrive after asking: the proxy's queue and what is in flight.
    client.out_channel_recycle_margin = 2 * 16384 + 8192;
    let mut net = Net::new(proxy, client, 16384, false, Chunker::random(77, 1500));
    net.auto_recycle = true;
    net.run();
    net.call_many(1, 250, 4000);
    net.assert_responses(1, 250, 4000);
    let finished = net
        .client_events
        .iter()
        .filter(|e| matches!(e, ClientEvent::ChannelFinished(_)))
        .count();
    assert!(finished >= 12, "only {finished} recycles");
    assert_eq!(net.client.state(), ClientState::Opened);
    // No proxy ever failed.
    assert!(!net.proxy_events.iter().any(|(_, e)| matches!(
        e,
        ProxyEvent::Closed { reason } if *reason != CloseReason::Recycled
    )));
}
