//! Invariant checks shared by the proptests and the `rpch_proxy_session` fuzz target. Not a
//! stable API.
//!
//! Every function panics when an invariant is broken and returns normally otherwise.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::target::RpcTarget;

use super::{
    Backend, Client, ClientConfig, ClientCookies, InboundProxy, NCACN_HTTP_GREETING, OutboundProxy,
    ProxyConfig, ProxyEvent,
};
use crate::rts::Cookie;

/// The bound every proxy machine's buffers must stay under, for `config`: the configured hard
/// cap per stream plus one PDU per input stream plus one receive window of queued PDUs.
pub fn buffer_bound(config: &ProxyConfig) -> usize {
    2 * config.max_buffered
        + 2 * usize::from(config.pdu_limits.max_frag_length)
        + 2 * config.receive_window as usize
        + 64 * 1024
}

/// Drives an inbound and an outbound proxy machine with arbitrary bytes: the input is a script
/// of operations (which stream, how many bytes, time steps, ends of stream). Whatever the
/// bytes, no machine panics, buffers stay within [`buffer_bound`], timers never point into the
/// past once handled, and after `Closed` a machine is closed for good.
///
/// Script: byte 0 picks the mode (bit 0: merged), then repeated `op, len, bytes[len]`:
/// op % 8 = 0 client→IN, 1 client→OUT, 2 backend→IN, 3 backend→OUT, 4 advance time by `len`
/// seconds and fire due timers, 5 client EOF on one channel, 6 backend EOF, 7 backend greeting.
pub fn proxy_session(data: &[u8]) {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let config = Arc::new(ProxyConfig {
        // Small values so short inputs reach the limits.
        max_buffered: 64 * 1024,
        high_watermark: 16 * 1024,
        max_transmit_chunk: 4096,
        ..ProxyConfig::default()
    });
    let backend = if mode & 1 == 1 {
        Backend::Local
    } else {
        Backend::Forward(RpcTarget::new(std::net::Ipv4Addr::LOCALHOST, 6001))
    };
    let mut now = Instant::now();
    let mut inp = InboundProxy::new(config.clone(), now, backend.clone(), 1 << 30, None);
    let mut out = OutboundProxy::new(config.clone(), now, backend);
    let bound = buffer_bound(&config);
    let mut sink = Vec::new();
    let mut in_closed = false;
    let mut out_closed = false;
    while let [op, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (chunk, after) = tail.split_at(n);
        rest = after;
        match op % 8 {
            0 => inp.handle_input(now, chunk),
            1 => out.handle_input(now, chunk),
            2 => inp.handle_backend_input(now, chunk),
            3 => out.handle_backend_input(now, chunk),
            4 => {
                now += Duration::from_secs(u64::from(*len));
                if inp.poll_timeout().is_some_and(|t| t <= now) {
                    inp.handle_timeout(now);
                }
                if out.poll_timeout().is_some_and(|t| t <= now) {
                    out.handle_timeout(now);
                }
            }
            5 => {
                if len & 1 == 0 {
                    inp.handle_eof(now)
                } else {
                    out.handle_eof(now)
                }
            }
            6 => {
                if len & 1 == 0 {
                    inp.handle_backend_eof(now)
                } else {
                    out.handle_backend_eof(now)
                }
            }
            _ => {
                inp.handle_backend_input(now, NCACN_HTTP_GREETING);
                out.handle_backend_input(now, NCACN_HTTP_GREETING);
            }
        }
        // Drain as a driver would, then check.
        while let Some(ev) = inp.poll_event() {
            if let ProxyEvent::ForwardToOutChannel(rts) = ev {
                out.handle_forwarded_rts(now, rts);
            } else if matches!(ev, ProxyEvent::Closed { .. }) {
                assert!(!in_closed, "inbound proxy closed twice");
                in_closed = true;
            }
        }
        while let Some(ev) = out.poll_event() {
            if matches!(ev, ProxyEvent::Closed { .. }) {
                assert!(!out_closed, "outbound proxy closed twice");
                out_closed = true;
            }
        }
        // A slow peer: drain only one chunk per step, so the buffers fill.
        sink.clear();
        inp.poll_backend_transmit(&mut sink);
        out.poll_transmit(&mut sink);
        out.poll_backend_transmit(&mut sink);
        assert!(
            inp.buffered() <= bound,
            "inbound proxy holds {} bytes",
            inp.buffered()
        );
        assert!(
            out.buffered() <= bound,
            "outbound proxy holds {} bytes",
            out.buffered()
        );
        assert_eq!(in_closed, inp.is_closed());
        assert_eq!(out_closed, out.is_closed());
        if let Some(t) = inp.poll_timeout() {
            assert!(
                t + config.idle_timeout >= now,
                "inbound timer far in the past"
            );
        }
    }
}

/// Feeds arbitrary bytes to a [`Client`] as its OUT channel body, in the chunks the script
/// gives: no panic, bounded buffers, closed stays closed.
pub fn client_out_channel(data: &[u8]) {
    let config = Arc::new(ClientConfig::default());
    let now = Instant::now();
    let cookies = ClientCookies {
        virtual_connection: Cookie([1; 16]),
        in_channel: Cookie([2; 16]),
        out_channel: Cookie([3; 16]),
        association_group: Cookie([4; 16]),
    };
    let mut client = Client::new(config.clone(), now, cookies);
    let out_id = client.out_channel();
    let mut sink = Vec::new();
    for chunk in data.chunks(97) {
        client.handle_input(now, out_id, chunk);
        while client.poll_event().is_some() {}
        sink.clear();
        client.poll_transmit(client.in_channel(), &mut sink);
        assert!(
            client.buffered() <= config.max_buffered + config.max_queued + 2 * 65536,
            "client holds {} bytes",
            client.buffered()
        );
    }
}
