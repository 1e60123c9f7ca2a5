//! RPC over HTTP benches, all in bytes/s:
//!
//! - `rpch_pdu_decode` / `rpch_pdu_encode`: request calls with 4 KiB and 64 KiB stubs through
//!   the crate's codec (the 64 KiB call fragmented at 5840 bytes, as Windows sends it, and
//!   reassembled);
//! - `rpch_pdu_split`: the proxy's raw splitter over the same bytes (no body parsing);
//! - `rpch_rts`: decode and encode of a mix of RTS PDUs;
//! - `rpch_http`: an `RPC_IN_DATA` head, its `?server:port` and the allow-list check;
//! - `rpch_relay`: request/response traffic through the channel machines in memory —
//!   `Client` ↔ `InboundProxy` + `OutboundProxy` merged with a local echo server — counting
//!   RPC PDU bytes both ways, flow control and acks included.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rpch_framing::channel::{
    Backend, Client, ClientChannelId, ClientConfig, ClientCookies, ClientEvent, InboundProxy,
    OutboundProxy, ProxyConfig, ProxyEvent,
};
use rpch_framing::codec::{PduDecoder, split_pdu};
use rpch_framing::http::{ChannelMethod, HttpLimits, parse_request_head};
use rpch_framing::pdu::{
    Limits, Pdu, PduHeader, PfcFlags, Reassembled, Reassembler, Request, Response,
};
use rpch_framing::rts::{Cookie, FlowControlAck, ForwardDestination, RtsPdu};
use rpch_framing::target::{AllowList, parse_rpc_target};

/// Largest fragment Windows RPC sends by default (max_xmit_frag 5840).
const WINDOWS_MAX_FRAG: usize = 5840;
/// Request header (16) plus alloc_hint, p_cont_id and opnum (8).
const REQUEST_HEADER_LEN: usize = 24;

/// The fragments of one request call carrying `stub_len` stub bytes, each at most `max_frag`
/// bytes, as `Pdu` values with their headers.
fn request_fragments(stub_len: usize, max_frag: usize, call_id: u32) -> Vec<(PduHeader, Pdu)> {
    let stub = Bytes::from(vec![0x5a; stub_len]);
    let per_frag = max_frag - REQUEST_HEADER_LEN;
    let mut frags = Vec::new();
    let mut sent = 0;
    loop {
        let chunk = per_frag.min(stub_len - sent);
        let mut flags = PfcFlags(0);
        if sent == 0 {
            flags = flags.with(PfcFlags::FIRST_FRAG);
        }
        if sent + chunk == stub_len {
            flags = flags.with(PfcFlags::LAST_FRAG);
        }
        let header = PduHeader {
            pfc_flags: flags,
            ..PduHeader::new(rpch_framing::pdu::PacketType::Request, call_id)
        };
        let pdu = Pdu::Request(Request {
            alloc_hint: (stub_len - sent) as u32,
            context_id: 0,
            opnum: 0x0a,
            object: None,
            stub_data: stub.slice(sent..sent + chunk),
            auth: None,
        });
        frags.push((header, pdu));
        sent += chunk;
        if sent == stub_len {
            return frags;
        }
    }
}

fn encode_all(frags: &[(PduHeader, Pdu)]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for (h, p) in frags {
        p.encode(h, &mut out).unwrap();
    }
    out.to_vec()
}

fn pdu_codec(c: &mut Criterion) {
    let calls = [("request_4k", 4 * 1024), ("request_64k", 64 * 1024)];

    let mut group = c.benchmark_group("rpch_pdu_decode");
    for (name, stub) in calls {
        let wire = encode_all(&request_fragments(stub, WINDOWS_MAX_FRAG, 7));
        group.throughput(Throughput::Bytes(wire.len() as u64));
        group.bench_function(name, |b| {
            let limits = Limits::default();
            b.iter(|| {
                let mut decoder = PduDecoder::new(limits.clone());
                let mut reassembler = Reassembler::new(limits.clone());
                let mut buf = BytesMut::from(&wire[..]);
                let mut stub_bytes = 0;
                while let Some(decoded) = decoder.decode(&mut buf).unwrap() {
                    if let Reassembled::Complete(call) = reassembler.push(decoded).unwrap() {
                        stub_bytes += call.stub_data.len();
                    }
                }
                assert_eq!(stub_bytes, stub);
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("rpch_pdu_encode");
    for (name, stub) in calls {
        let frags = request_fragments(stub, WINDOWS_MAX_FRAG, 7);
        let len = encode_all(&frags).len();
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(name, |b| {
            let mut out = BytesMut::with_capacity(len);
            b.iter(|| {
                out.clear();
                for (h, p) in &frags {
                    p.encode(h, &mut out).unwrap();
                }
                black_box(out.len())
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("rpch_pdu_split");
    for (name, stub) in calls {
        let wire = encode_all(&request_fragments(stub, WINDOWS_MAX_FRAG, 7));
        group.throughput(Throughput::Bytes(wire.len() as u64));
        group.bench_function(name, |b| {
            let limits = Limits::default();
            b.iter(|| {
                let mut buf = BytesMut::from(&wire[..]);
                let mut frags = 0;
                while let Some(raw) = split_pdu(&mut buf, &limits).unwrap() {
                    black_box(&raw);
                    frags += 1;
                }
                frags
            })
        });
    }
    group.finish();
}

fn rts_pdus() -> Vec<RtsPdu> {
    let c = Cookie([0x42; 16]);
    vec![
        RtsPdu::conn_a1(1, c, c, 262_144),
        RtsPdu::conn_b1(1, c, c, 1 << 30, 300_000, c),
        RtsPdu::conn_c2(1, 65_536, 120_000),
        RtsPdu::flow_control_ack_with_destination(
            ForwardDestination::Client,
            FlowControlAck {
                bytes_received: 131_072,
                available_window: 65_536,
                channel_cookie: c,
            },
        ),
        RtsPdu::ping(),
        RtsPdu::keep_alive(300_000),
    ]
}

fn rts(c: &mut Criterion) {
    let pdus = rts_pdus();
    let wire: Vec<Vec<u8>> = pdus.iter().map(|p| p.to_bytes().to_vec()).collect();
    let total: usize = wire.iter().map(Vec::len).sum();
    let mut group = c.benchmark_group("rpch_rts");
    group.throughput(Throughput::Bytes(total as u64));
    group.bench_function("decode_mix", |b| {
        b.iter(|| {
            for w in &wire {
                black_box(RtsPdu::decode(black_box(w)).unwrap());
            }
        })
    });
    group.bench_function("encode_mix", |b| {
        let mut out = BytesMut::with_capacity(total);
        b.iter(|| {
            out.clear();
            for p in &pdus {
                p.encode(&mut out);
            }
            black_box(out.len())
        })
    });
    group.finish();
}

const IN_CHANNEL_HEAD: &[u8] = b"RPC_IN_DATA /rpc/rpcproxy.dll?mbx01.corp.example:6001 HTTP/1.1\r\n\
Host: cas.example\r\nUser-Agent: MSRPC\r\nCache-Control: no-cache\r\nConnection: Keep-Alive\r\n\
Expect: 100-continue\r\nAccept: application/rpc\r\nPragma: No-cache\r\nContent-Length: 1073741824\r\n\
Authorization: NTLM TlRMTVNTUAADAAAAGAAYAEAAAAAYABgAWAAAAAAAAABwAAAACgAKAHAAAAAKAAoAegAAAAAAAACEAAAABYKIogoAOTgAAAAP\r\n\r\n";

fn http_head(c: &mut Criterion) {
    let limits = HttpLimits::default();
    let allow =
        AllowList::from_valid_ports("MBX01:6001-6004;mbx01.corp.example:6001-6004;MBX01:593")
            .unwrap();
    let mut group = c.benchmark_group("rpch_http");
    group.throughput(Throughput::Bytes(IN_CHANNEL_HEAD.len() as u64));
    group.bench_function("in_channel_head_target_allow", |b| {
        b.iter(|| {
            let (head, len) = parse_request_head(black_box(IN_CHANNEL_HEAD), &limits)
                .unwrap()
                .unwrap();
            let target = parse_rpc_target(head.target).unwrap();
            allow.check(&target).unwrap();
            len
        })
    });
    group.finish();
}

/// A client, an inbound and an outbound proxy merged with a local server that answers every
/// request with a response carrying a stub of the same size, wired together in memory.
struct Relay {
    now: Instant,
    client: Client,
    inbound: InboundProxy,
    outbound: OutboundProxy,
    in_id: ClientChannelId,
    out_id: ClientChannelId,
    /// The OUT channel's response head has been stripped (the owner's job, as in a server).
    out_head_seen: bool,
    out_head_buf: Vec<u8>,
    /// Responses waiting for the outbound proxy's queue.
    to_send: VecDeque<Bytes>,
    /// RPC PDU bytes the client has received.
    received: usize,
    buf: Vec<u8>,
}

impl Relay {
    fn new() -> Self {
        let now = Instant::now();
        let proxy = Arc::new(ProxyConfig::default());
        let cookies = ClientCookies {
            virtual_connection: Cookie([1; 16]),
            in_channel: Cookie([2; 16]),
            out_channel: Cookie([3; 16]),
            association_group: Cookie([4; 16]),
        };
        let mut client = Client::new(Arc::new(ClientConfig::default()), now, cookies);
        let (mut in_id, mut out_id) = (None, None);
        while let Some(ev) = client.poll_event() {
            if let ClientEvent::ChannelRequested { id, method, .. } = ev {
                match method {
                    ChannelMethod::RpcInData => in_id = Some(id),
                    ChannelMethod::RpcOutData => out_id = Some(id),
                }
            }
        }
        let mut relay = Self {
            now,
            client,
            inbound: InboundProxy::new(proxy.clone(), now, Backend::Local, 1 << 30, None),
            outbound: OutboundProxy::new(proxy, now, Backend::Local),
            in_id: in_id.expect("IN channel requested"),
            out_id: out_id.expect("OUT channel requested"),
            out_head_seen: false,
            out_head_buf: Vec::new(),
            to_send: VecDeque::new(),
            received: 0,
            buf: Vec::with_capacity(64 * 1024),
        };
        relay.run();
        assert!(relay.client.wants_pdu(), "virtual connection open");
        relay
    }

    /// Moves bytes and events until nothing moves; true if anything moved.
    fn run(&mut self) -> bool {
        let mut moved = false;
        loop {
            let mut progress = false;
            let now = self.now;

            self.buf.clear();
            if self.client.poll_transmit(self.out_id, &mut self.buf) > 0 {
                self.outbound.handle_input(now, &self.buf);
                progress = true;
            }
            self.buf.clear();
            if self.client.poll_transmit(self.in_id, &mut self.buf) > 0 {
                self.inbound.handle_input(now, &self.buf);
                progress = true;
            }
            while let Some(ev) = self.inbound.poll_event() {
                progress = true;
                match ev {
                    ProxyEvent::RpcPduReceived(pdu) => self.to_send.push_back(answer(&pdu)),
                    ProxyEvent::ForwardToOutChannel(rts) => {
                        self.outbound.handle_forwarded_rts(now, rts)
                    }
                    ProxyEvent::VirtualConnectionIdentified { .. } => {
                        // One virtual connection: pair directly (a server uses the table).
                        let _ = self.outbound.attach_in_channel(now);
                    }
                    _ => {}
                }
            }
            while self.outbound.wants_pdu() {
                let Some(pdu) = self.to_send.pop_front() else {
                    break;
                };
                if let Err(e) = self.outbound.send_pdu(now, pdu) {
                    self.to_send.push_front(e.value);
                    break;
                }
                progress = true;
            }
            while self.outbound.poll_event().is_some() {
                progress = true;
            }
            self.buf.clear();
            if self.outbound.poll_transmit(&mut self.buf) > 0 {
                progress = true;
                let body = if self.out_head_seen {
                    &self.buf[..]
                } else {
                    self.out_head_buf.extend_from_slice(&self.buf);
                    match self.out_head_buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        Some(end) => {
                            self.out_head_seen = true;
                            self.buf = self.out_head_buf.split_off(end + 4);
                            &self.buf[..]
                        }
                        None => &[][..],
                    }
                };
                self.client.handle_input(now, self.out_id, body);
            }
            while let Some(ev) = self.client.poll_event() {
                progress = true;
                if let ClientEvent::PduReceived(pdu) = ev {
                    self.received += pdu.len();
                }
            }
            if !progress {
                return moved;
            }
            moved = true;
        }
    }

    /// Sends `requests` (queueing as the client allows) and runs until every response is back.
    /// Panics if the machines stall, so a bench can never spin forever.
    fn exchange(&mut self, requests: &[Bytes]) -> usize {
        let start = self.received;
        let expected: usize = requests.iter().map(Bytes::len).sum();
        let mut pending: VecDeque<Bytes> = requests.iter().cloned().collect();
        while !pending.is_empty() || self.received - start < expected {
            let mut queued = false;
            while self.client.wants_pdu() {
                let Some(pdu) = pending.pop_front() else {
                    break;
                };
                if let Err(e) = self.client.send_pdu(self.now, pdu) {
                    pending.push_front(e.value);
                    break;
                }
                queued = true;
            }
            assert!(
                self.run() || queued,
                "relay stalled with {} requests unsent",
                pending.len()
            );
        }
        self.received - start
    }
}

/// The local server: a response with the same call id and a stub as large as the request's.
fn answer(request: &Bytes) -> Bytes {
    let stub_len = request.len() - REQUEST_HEADER_LEN;
    let call_id = u32::from_le_bytes(request[12..16].try_into().unwrap());
    let pdu = Pdu::Response(Response {
        alloc_hint: stub_len as u32,
        context_id: 0,
        cancel_count: 0,
        reserved: 0,
        stub_data: Bytes::from(vec![0xa5; stub_len]),
        auth: None,
    });
    let header = PduHeader::new(rpch_framing::pdu::PacketType::Response, call_id);
    let mut out = BytesMut::new();
    pdu.encode(&header, &mut out).unwrap();
    out.freeze()
}

fn relay(c: &mut Criterion) {
    let mut group = c.benchmark_group("rpch_relay");
    for (name, stub, calls) in [
        ("request_4k_x64", 4 * 1024, 64),
        (
            "fragment_5840_x64",
            WINDOWS_MAX_FRAG - REQUEST_HEADER_LEN,
            64,
        ),
    ] {
        let requests: Vec<Bytes> = (0..calls)
            .map(|i| {
                Bytes::from(encode_all(&request_fragments(
                    stub,
                    WINDOWS_MAX_FRAG,
                    i + 1,
                )))
            })
            .collect();
        let one_way: usize = requests.iter().map(Bytes::len).sum();
        // Requests in, responses of the same size out.
        group.throughput(Throughput::Bytes(2 * one_way as u64));
        // A fresh virtual connection per iteration (set-up not timed): one connection would
        // exhaust its 1 GiB IN channel lifetime within a few thousand iterations and need
        // recycling, which is not what this measures.
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                Relay::new,
                |relay| {
                    let back = relay.exchange(&requests);
                    assert_eq!(back, one_way);
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, pdu_codec, rts, http_head, relay);
criterion_main!(benches);
