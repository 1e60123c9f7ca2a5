//! Shared harness for the in-memory session tests: a little `ncacn_http` RPC server (the
//! test backend), and a network that wires our [`Client`] to our proxy machines and the
//! backend under a virtual clock, delivering bytes in configurable chunks and honouring every
//! machine's back-pressure getters.
//!
//! Included by `sessions.rs` and `sessions_merged.rs` with `#[path]`; on its own it is an empty
//! test crate.
#![allow(dead_code, missing_docs)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use rpch_framing::channel::{
    Backend, Client, ClientChannelId, ClientConfig, ClientCookies, ClientEvent, CloseReason,
    InboundProxy, NCACN_HTTP_GREETING, OutboundProxy, Pairing, ProxyConfig, ProxyEvent,
    ReceiveWindow, SendWindow, VirtualConnectionTable,
};
use rpch_framing::codec::split_pdu;
use rpch_framing::http::ChannelMethod;
use rpch_framing::pdu::{Limits, PacketType};
use rpch_framing::rts::{
    Cookie, FlowControlAck, ForwardDestination, RtsCommand, RtsPdu, RtsPduKind,
};
use rpch_framing::target::RpcTarget;

// ---- RPC PDUs, hand-built (C706 §12.6) ---------------------------------------------------

fn header(ptype: u8, frag_len: usize, call_id: u32) -> BytesMut {
    let mut b = BytesMut::with_capacity(frag_len);
    b.put_slice(&[5, 0, ptype, 0x03, 0x10, 0, 0, 0]);
    b.put_u16_le(frag_len as u16);
    b.put_u16_le(0);
    b.put_u32_le(call_id);
    b
}

/// A bind PDU (PTYPE 11) with one presentation context.
pub fn bind(call_id: u32) -> Bytes {
    let mut b = header(11, 72, call_id);
    b.put_u16_le(5840);
    b.put_u16_le(5840);
    b.put_u32_le(0);
    b.put_u8(1); // n_context_elem
    b.put_slice(&[0, 0, 0]);
    b.put_u16_le(0); // p_cont_id
    b.put_u8(1);
    b.put_u8(0);
    b.put_slice(&[0x11; 16]); // abstract syntax
    b.put_u32_le(1);
    b.put_slice(&[
        0x04, 0x5d, 0x88, 0x8a, 0xeb, 0x1c, 0xc9, 0x11, 0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10, 0x48,
        0x60,
    ]);
    b.put_u32_le(2);
    assert_eq!(b.len(), 72);
    b.freeze()
}

/// A bind_ack (PTYPE 12) accepting one context.
pub fn bind_ack(call_id: u32) -> Bytes {
    let mut b = header(12, 56, call_id);
    b.put_u16_le(5840);
    b.put_u16_le(5840);
    b.put_u32_le(0x1234);
    b.put_u16_le(0); // sec_addr length
    b.put_slice(&[0, 0]); // pad to 4
    b.put_u8(1);
    b.put_slice(&[0, 0, 0]);
    b.put_u16_le(0);
    b.put_u16_le(0);
    b.put_slice(&[
        0x04, 0x5d, 0x88, 0x8a, 0xeb, 0x1c, 0xc9, 0x11, 0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10, 0x48,
        0x60,
    ]);
    b.put_u32_le(2);
    assert_eq!(b.len(), 56);
    b.freeze()
}

/// A request (PTYPE 0) carrying `stub`.
pub fn request(call_id: u32, stub: &[u8]) -> Bytes {
    let mut b = header(0, 24 + stub.len(), call_id);
    b.put_u32_le(stub.len() as u32);
    b.put_u16_le(0);
    b.put_u16_le(7);
    b.put_slice(stub);
    b.freeze()
}

/// The response (PTYPE 2) echoing a request's stub data.
pub fn echo_response(req: &[u8]) -> Bytes {
    let call_id = u32::from_le_bytes(req[12..16].try_into().unwrap());
    let stub = &req[24..];
    let mut b = header(2, 24 + stub.len(), call_id);
    b.put_u32_le(stub.len() as u32);
    b.put_u16_le(0);
    b.put_u8(0);
    b.put_u8(0);
    b.put_slice(stub);
    b.freeze()
}

/// What a local RPC server answers to one PDU: bind → bind_ack, request → echoing response.
pub fn answer(pdu: &[u8]) -> Option<Bytes> {
    let call_id = u32::from_le_bytes(pdu[12..16].try_into().unwrap());
    match pdu[2] {
        11 => Some(bind_ack(call_id)),
        0 => Some(echo_response(pdu)),
        _ => None,
    }
}

/// `(call_id, stub)` of a response.
pub fn response_parts(pdu: &[u8]) -> (u32, Vec<u8>) {
    assert_eq!(pdu[2], 2, "not a response");
    (
        u32::from_le_bytes(pdu[12..16].try_into().unwrap()),
        pdu[24..].to_vec(),
    )
}

/// A deterministic stub for call `i`, `len` bytes.
pub fn stub(i: u32, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i as usize * 31 + j * 7) as u8).collect()
}

// ---- the test backend: an ncacn_http RPC server (MS-RPCH §3.2.5), just enough ----------

/// One TCP connection from a proxy to the backend.
#[derive(Debug, Default)]
struct Conn {
    input: BytesMut,
    output: Vec<u8>,
    vc: Option<[u8; 16]>,
    eof: bool,
}

#[derive(Debug)]
struct VcState {
    in_conn: Option<usize>,
    out_conn: Option<usize>,
    in_cookie: Cookie,
    out_cookie: Cookie,
    in_proxy_window: u32,
    recv: ReceiveWindow,
    send: Option<SendWindow>,
    pending: VecDeque<Bytes>,
    c1_sent: bool,
    in_successor: Option<(usize, Cookie)>,
    out_successor: Option<(usize, Cookie, u32)>,
    /// A predecessor OUT channel still flushing after OUT_R1/A9: acks naming it go there.
    out_predecessor: Option<(usize, Cookie)>,
}

/// The backend RPC server. Connection ids are the caller's.
#[derive(Debug)]
pub struct TestServer {
    conns: BTreeMap<usize, Conn>,
    vcs: HashMap<[u8; 16], VcState>,
    /// The server's receive window for IN channel traffic (CONN/B3, IN_R1/B2).
    pub window: u32,
    pub connection_timeout_ms: u32,
    /// FlowControlAcks the server sent to inbound proxies.
    pub acks_sent: u64,
    /// FlowControlAcks the server received from outbound proxies.
    pub acks_received: u64,
    /// RTS PDUs received, by name (for assertions).
    pub rts_seen: Vec<&'static str>,
    /// Times a response waited for the outbound proxy's window.
    pub times_blocked: u64,
}

impl TestServer {
    pub fn new(window: u32) -> Self {
        Self {
            conns: BTreeMap::new(),
            vcs: HashMap::new(),
            window,
            connection_timeout_ms: 120_000,
            acks_sent: 0,
            acks_received: 0,
            rts_seen: Vec::new(),
            times_blocked: 0,
        }
    }

    /// A proxy connected: the server greets.
    pub fn accept(&mut self, conn: usize) {
        let mut c = Conn::default();
        c.output.extend_from_slice(NCACN_HTTP_GREETING);
        self.conns.insert(conn, c);
    }

    pub fn take_output(&mut self, conn: usize) -> Vec<u8> {
        self.conns
            .get_mut(&conn)
            .map(|c| std::mem::take(&mut c.output))
            .unwrap_or_default()
    }

    pub fn eof(&mut self, conn: usize) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.eof = true;
        }
    }

    fn send_rts(&mut self, conn: usize, rts: &RtsPdu) {
        let mut b = BytesMut::new();
        rts.encode(&mut b);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.output.extend_from_slice(&b);
        }
    }

    pub fn input(&mut self, conn: usize, data: &[u8]) {
        let c = self
            .conns
            .get_mut(&conn)
            .expect("unknown backend connection");
        c.input.extend_from_slice(data);
        loop {
            let c = self.conns.get_mut(&conn).unwrap();
            let Some(raw) = split_pdu(&mut c.input, &Limits::default()).expect("proxy sent junk")
            else {
                break;
            };
            if raw.header.packet_type == PacketType::Rts {
                let rts = raw.rts().unwrap().expect("bad RTS from proxy");
                self.on_rts(conn, rts);
            } else {
                self.on_rpc(conn, raw.bytes);
            }
        }
    }

    fn vc_of(&self, conn: usize) -> [u8; 16] {
        self.conns[&conn]
            .vc
            .expect("PDU before the channel was named")
    }

    fn on_rts(&mut self, conn: usize, rts: RtsPdu) {
        let kind = rts.kind();
        self.rts_seen.push(kind.map_or("?", |k| k.name()));
        match kind {
            Some(RtsPduKind::ConnA2) => {
                let c = rts.cookies();
                let (vc, out_cookie) = (c[0], c[1]);
                let op_window = rts.receive_window_size().unwrap();
                self.conns.get_mut(&conn).unwrap().vc = Some(vc.0);
                let st = self.vc_entry(vc);
                st.out_conn = Some(conn);
                st.out_cookie = out_cookie;
                st.send = Some(SendWindow::new(op_window));
                self.maybe_c1(vc.0);
            }
            Some(RtsPduKind::ConnB2) => {
                let c = rts.cookies();
                let (vc, in_cookie) = (c[0], c[1]);
                self.conns.get_mut(&conn).unwrap().vc = Some(vc.0);
                let window = self.window;
                let st = self.vc_entry(vc);
                st.in_conn = Some(conn);
                st.in_cookie = in_cookie;
                st.in_proxy_window = rts.receive_window_size().unwrap();
                self.send_rts(conn, &RtsPdu::conn_b3(window, 1));
                self.maybe_c1(vc.0);
            }
            Some(RtsPduKind::FlowControlAck) => {
                // From an outbound proxy, for our OUT traffic.
                let vc = self.vc_of(conn);
                let ack = rts.ack().unwrap();
                let st = self.vcs.get_mut(&vc).unwrap();
                if ack.channel_cookie == st.out_cookie && Some(conn) == st.out_conn {
                    st.send
                        .as_mut()
                        .unwrap()
                        .on_ack(rpch_framing::channel::AckValues {
                            bytes_received: ack.bytes_received,
                            available_window: ack.available_window,
                        })
                        .expect("invalid ack from the outbound proxy");
                    self.acks_received += 1;
                    self.pump(vc);
                }
            }
            Some(RtsPduKind::PingTrafficSentNotify | RtsPduKind::Ping) => {}
            Some(RtsPduKind::InR1A2) => {
                let c = rts.cookies();
                let (vc, succ) = (c[0], c[2]);
                self.conns.get_mut(&conn).unwrap().vc = Some(vc.0);
                let ip_window = rts.receive_window_size().unwrap();
                let st = self.vcs.get_mut(&vc.0).expect("IN_R1/A2 for an unknown VC");
                st.in_successor = Some((conn, succ));
                st.in_proxy_window = ip_window;
                let out = st.out_conn.unwrap();
                let timeout = self.connection_timeout_ms;
                self.send_rts(out, &RtsPdu::in_r1_a3(1, ip_window, timeout));
            }
            Some(RtsPduKind::InR1A6 | RtsPduKind::InR1A5) => {}
            Some(RtsPduKind::InR1B1) => {
                // The predecessor IN channel's last PDU: read the successor from now on.
                let vc = self.vc_of(conn);
                let window = self.window;
                let st = self.vcs.get_mut(&vc).unwrap();
                let (succ_conn, succ_cookie) = st.in_successor.take().expect("no successor");
                st.in_conn = Some(succ_conn);
                st.in_cookie = succ_cookie;
                st.recv = ReceiveWindow::new(window);
                self.send_rts(succ_conn, &RtsPdu::in_r1_b2(window));
            }
            Some(RtsPduKind::OutR1A4) => {
                let c = rts.cookies();
                let (vc, succ) = (c[0], c[2]);
                self.conns.get_mut(&conn).unwrap().vc = Some(vc.0);
                let op_window = rts.receive_window_size().unwrap();
                let st = self
                    .vcs
                    .get_mut(&vc.0)
                    .expect("OUT_R1/A4 for an unknown VC");
                st.out_successor = Some((conn, succ, op_window));
                let out = st.out_conn.unwrap();
                let timeout = self.connection_timeout_ms;
                self.send_rts(out, &RtsPdu::out_r1_a5(1, timeout));
            }
            Some(RtsPduKind::OutR1A7 | RtsPduKind::OutR1A8) => {
                // The client is ready: end the predecessor with A9, continue on the successor.
                let vc = self.vc_of(conn);
                let st = self.vcs.get_mut(&vc).unwrap();
                let (succ_conn, succ_cookie, window) =
                    st.out_successor.take().expect("no OUT successor");
                let old = st.out_conn.replace(succ_conn).unwrap();
                st.out_predecessor = Some((old, st.out_cookie));
                st.out_cookie = succ_cookie;
                st.send = Some(SendWindow::new(window));
                self.send_rts(old, &RtsPdu::out_r1_a9());
                self.pump(vc);
            }
            Some(RtsPduKind::FlowControlAckWithDestination) | Some(_)
                if rts.destination().is_some() =>
            {
                // Forwarding (§3.2.1.5.2): to the client or the outbound proxy, via the OUT
                // channel.
                let vc = self.vc_of(conn);
                let st = &self.vcs[&vc];
                // Route by the channel cookie an ack names (§3.2.1.5.1.2), so a predecessor OUT
                // channel still flushing after OUT_R1/A9 gets the client's acks for it.
                let out = match (rts.ack(), st.out_predecessor) {
                    (Some(ack), Some((old, cookie))) if ack.channel_cookie == cookie => old,
                    _ => st.out_conn.unwrap(),
                };
                assert!(matches!(
                    rts.destination(),
                    Some(ForwardDestination::Client | ForwardDestination::OutProxy)
                ));
                self.send_rts(out, &rts);
            }
            other => panic!("test backend: unexpected RTS {other:?} {rts:?}"),
        }
    }

    fn vc_entry(&mut self, vc: Cookie) -> &mut VcState {
        let window = self.window;
        self.vcs.entry(vc.0).or_insert_with(|| VcState {
            in_conn: None,
            out_conn: None,
            in_cookie: Cookie::default(),
            out_cookie: Cookie::default(),
            in_proxy_window: 0,
            recv: ReceiveWindow::new(window),
            send: None,
            pending: VecDeque::new(),
            c1_sent: false,
            in_successor: None,
            out_successor: None,
            out_predecessor: None,
        })
    }

    fn maybe_c1(&mut self, vc: [u8; 16]) {
        let st = self.vcs.get_mut(&vc).unwrap();
        if st.c1_sent || st.in_conn.is_none() || st.out_conn.is_none() {
            return;
        }
        st.c1_sent = true;
        let (out, w) = (st.out_conn.unwrap(), st.in_proxy_window);
        let timeout = self.connection_timeout_ms;
        self.send_rts(out, &RtsPdu::conn_c1(1, w, timeout));
    }

    fn on_rpc(&mut self, conn: usize, pdu: Bytes) {
        let vc = self.vc_of(conn);
        let st = self.vcs.get_mut(&vc).unwrap();
        assert_eq!(
            st.in_conn,
            Some(conn),
            "RPC PDU on a channel that is not the IN channel"
        );
        st.recv
            .on_received(pdu.len() as u32)
            .expect("inbound proxy overran the server's window");
        // Consumed at once: answer it.
        let ack = st.recv.on_consumed(pdu.len() as u32);
        let cookie = st.in_cookie;
        if let Some(r) = answer(&pdu) {
            st.pending.push_back(r);
        }
        if let Some(ack) = ack {
            self.acks_sent += 1;
            self.send_rts(
                conn,
                &RtsPdu::flow_control_ack(FlowControlAck {
                    bytes_received: ack.bytes_received,
                    available_window: ack.available_window,
                    channel_cookie: cookie,
                }),
            );
        }
        self.pump(vc);
    }

    fn pump(&mut self, vc: [u8; 16]) {
        let st = self.vcs.get_mut(&vc).unwrap();
        let Some(out) = st.out_conn else { return };
        let Some(send) = st.send.as_mut() else { return };
        while let Some(front) = st.pending.front() {
            if !send.can_send(front.len() as u32) {
                self.times_blocked += 1;
                break;
            }
            let pdu = st.pending.pop_front().unwrap();
            send.on_sent(pdu.len() as u32);
            self.conns
                .get_mut(&out)
                .unwrap()
                .output
                .extend_from_slice(&pdu);
        }
    }
}

// ---- the network ------------------------------------------------------------------------

/// A proxy machine of either direction, with the client channel it serves.
pub enum Proxy {
    In(InboundProxy),
    Out(OutboundProxy),
}

/// Bytes on their way from one party to another, delivered in chunks.
#[derive(Default)]
struct Pipe {
    bytes: VecDeque<u8>,
}

/// Chunk sizes: a repeating pseudo-random sequence, or whole buffers.
#[derive(Clone)]
pub struct Chunker {
    state: u64,
    max: usize,
}

impl Chunker {
    /// Every delivery in one piece.
    pub fn whole() -> Self {
        Self { state: 0, max: 0 }
    }

    /// Pieces of 1..=max bytes from a seeded sequence.
    pub fn random(seed: u64, max: usize) -> Self {
        Self {
            state: seed | 1,
            max: max.max(1),
        }
    }

    fn next(&mut self, available: usize) -> usize {
        if self.max == 0 {
            return available;
        }
        // xorshift64
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        (1 + (self.state as usize) % self.max).min(available)
    }
}

/// The virtual connection under test: client ↔ proxies ↔ backend (or merged proxies).
pub struct Net {
    pub now: Instant,
    pub client: Client,
    pub proxies: BTreeMap<ClientChannelId, Proxy>,
    pub server: TestServer,
    pub merged: bool,
    pub table: VirtualConnectionTable<ClientChannelId>,
    pub config: Arc<ProxyConfig>,
    /// Client channel → proxy (request body).
    up: BTreeMap<ClientChannelId, Pipe>,
    /// Proxy → client (response, head stripped).
    down: BTreeMap<ClientChannelId, Pipe>,
    /// Head bytes of each OUT response, until its end.
    heads: BTreeMap<ClientChannelId, Vec<u8>>,
    /// Proxy → backend, backend → proxy, by client channel id (= backend connection id).
    to_server: BTreeMap<ClientChannelId, Pipe>,
    from_server: BTreeMap<ClientChannelId, Pipe>,
    connected: Vec<ClientChannelId>,
    pub chunker: Chunker,
    /// Responses the client received, in order.
    pub received: Vec<Bytes>,
    pub client_events: Vec<ClientEvent>,
    pub proxy_events: Vec<(ClientChannelId, ProxyEvent)>,
    pub http_heads: Vec<(ClientChannelId, Vec<u8>)>,
    out_successor: Option<ClientChannelId>,
    /// Channels whose proxy closed: the client sees the end of the connection once it has
    /// read everything before it, as TCP would deliver it.
    pending_eof: Vec<ClientChannelId>,
    /// Recycle channels when the client asks for it.
    pub auto_recycle: bool,
    next_cookie: u8,
}

pub fn cookies() -> ClientCookies {
    ClientCookies {
        virtual_connection: Cookie([0xa1; 16]),
        in_channel: Cookie([0xb2; 16]),
        out_channel: Cookie([0xc3; 16]),
        association_group: Cookie([0xd4; 16]),
    }
}

impl Net {
    pub fn new(
        proxy_config: ProxyConfig,
        client_config: ClientConfig,
        server_window: u32,
        merged: bool,
        chunker: Chunker,
    ) -> Self {
        let now = Instant::now();
        let client = Client::new(Arc::new(client_config), now, cookies());
        let mut net = Self {
            now,
            client,
            proxies: BTreeMap::new(),
            server: TestServer::new(server_window),
            merged,
            table: VirtualConnectionTable::new(16),
            config: Arc::new(proxy_config),
            up: BTreeMap::new(),
            down: BTreeMap::new(),
            heads: BTreeMap::new(),
            to_server: BTreeMap::new(),
            from_server: BTreeMap::new(),
            connected: Vec::new(),
            chunker,
            received: Vec::new(),
            client_events: Vec::new(),
            proxy_events: Vec::new(),
            http_heads: Vec::new(),
            out_successor: None,
            pending_eof: Vec::new(),
            auto_recycle: false,
            next_cookie: 0x30,
        };
        net.run();
        net
    }

    fn backend(&self) -> Backend {
        if self.merged {
            Backend::Local
        } else {
            Backend::Forward(RpcTarget::new(std::net::Ipv4Addr::LOCALHOST, 6001))
        }
    }

    /// Moves bytes and events until nothing moves.
    pub fn run(&mut self) {
        for _ in 0..100_000 {
            if !self.step() {
                return;
            }
        }
        panic!("network did not settle");
    }

    fn step(&mut self) -> bool {
        let mut moved = false;
        // Client events.
        while let Some(ev) = self.client.poll_event() {
            moved = true;
            match &ev {
                ClientEvent::ChannelRequested {
                    id,
                    method,
                    content_length,
                } => {
                    let proxy = match method {
                        ChannelMethod::RpcInData => Proxy::In(InboundProxy::new(
                            self.config.clone(),
                            self.now,
                            self.backend(),
                            *content_length,
                            None,
                        )),
                        ChannelMethod::RpcOutData => Proxy::Out(OutboundProxy::new(
                            self.config.clone(),
                            self.now,
                            self.backend(),
                        )),
                    };
                    self.proxies.insert(*id, proxy);
                    self.heads.insert(*id, Vec::new());
                }
                ClientEvent::PduReceived(pdu) => self.received.push(pdu.clone()),
                ClientEvent::InChannelRecycleNeeded if self.auto_recycle => {
                    self.next_cookie += 1;
                    self.client
                        .recycle_in_channel(self.now, Cookie([self.next_cookie; 16]))
                        .expect("IN recycle refused");
                }
                ClientEvent::OutChannelRecycleNeeded if self.auto_recycle => {
                    self.next_cookie += 1;
                    self.client
                        .recycle_out_channel(self.now, Cookie([self.next_cookie; 16]))
                        .expect("OUT recycle refused");
                }
                _ => {}
            }
            self.client_events.push(ev);
        }
        // Client → proxies.
        let ids: Vec<_> = self.proxies.keys().copied().collect();
        for id in &ids {
            let mut buf = Vec::new();
            while self.client.poll_transmit(*id, &mut buf) > 0 {}
            if !buf.is_empty() {
                moved = true;
                self.up.entry(*id).or_default().bytes.extend(buf);
            }
        }
        for id in &ids {
            moved |= self.deliver_up(*id);
        }
        // Proxies: events and output.
        for id in &ids {
            moved |= self.drive_proxy(*id);
        }
        // Backend.
        if !self.merged {
            for id in &ids {
                if !self.connected.contains(id) {
                    continue;
                }
                let conn = id.0 as usize;
                let pipe = self.to_server.entry(*id).or_default();
                while !pipe.bytes.is_empty() {
                    let n = self.chunker.next(pipe.bytes.len());
                    let chunk: Vec<u8> = pipe.bytes.drain(..n).collect();
                    self.server.input(conn, &chunk);
                    moved = true;
                }
                let out = self.server.take_output(conn);
                if !out.is_empty() {
                    moved = true;
                    self.from_server.entry(*id).or_default().bytes.extend(out);
                }
                moved |= self.deliver_from_server(*id);
            }
        }
        // Proxies → client.
        for id in &ids {
            moved |= self.deliver_down(*id);
        }
        let ready: Vec<_> = self
            .pending_eof
            .iter()
            .copied()
            .filter(|id| self.down.get(id).is_none_or(|p| p.bytes.is_empty()))
            .collect();
        for id in ready {
            self.pending_eof.retain(|x| *x != id);
            self.client.handle_eof(self.now, id);
            moved = true;
        }
        moved
    }

    fn deliver_up(&mut self, id: ClientChannelId) -> bool {
        let Some(pipe) = self.up.get_mut(&id) else {
            return false;
        };
        let mut moved = false;
        while !pipe.bytes.is_empty() {
            let Some(proxy) = self.proxies.get_mut(&id) else {
                return moved;
            };
            let wants = match proxy {
                Proxy::In(p) => p.wants_input(),
                Proxy::Out(p) => p.wants_input(),
            };
            if !wants {
                break;
            }
            let n = self.chunker.next(pipe.bytes.len());
            let chunk: Vec<u8> = pipe.bytes.drain(..n).collect();
            match proxy {
                Proxy::In(p) => p.handle_input(self.now, &chunk),
                Proxy::Out(p) => p.handle_input(self.now, &chunk),
            }
            moved = true;
        }
        moved
    }

    fn deliver_from_server(&mut self, id: ClientChannelId) -> bool {
        let Some(pipe) = self.from_server.get_mut(&id) else {
            return false;
        };
        let mut moved = false;
        while !pipe.bytes.is_empty() {
            let Some(proxy) = self.proxies.get_mut(&id) else {
                return moved;
            };
            let wants = match proxy {
                Proxy::In(p) => p.wants_backend_input(),
                Proxy::Out(p) => p.wants_backend_input(),
            };
            if !wants {
                break;
            }
            let n = self.chunker.next(pipe.bytes.len());
            let chunk: Vec<u8> = pipe.bytes.drain(..n).collect();
            match proxy {
                Proxy::In(p) => p.handle_backend_input(self.now, &chunk),
                Proxy::Out(p) => p.handle_backend_input(self.now, &chunk),
            }
            moved = true;
        }
        moved
    }

    fn deliver_down(&mut self, id: ClientChannelId) -> bool {
        let Some(pipe) = self.down.get_mut(&id) else {
            return false;
        };
        let mut moved = false;
        while !pipe.bytes.is_empty() {
            let n = self.chunker.next(pipe.bytes.len());
            let chunk: Vec<u8> = pipe.bytes.drain(..n).collect();
            // Strip the HTTP response head, as the client's HTTP layer would.
            let head = self.heads.entry(id).or_default();
            let body: Vec<u8> = if head.ends_with(b"\r\n\r\n") {
                chunk
            } else {
                let mut rest = Vec::new();
                for (i, b) in chunk.iter().enumerate() {
                    head.push(*b);
                    if head.ends_with(b"\r\n\r\n") {
                        rest.extend_from_slice(&chunk[i + 1..]);
                        self.http_heads.push((id, head.clone()));
                        let text = String::from_utf8_lossy(head).to_string();
                        if let Some(len) = text
                            .lines()
                            .find_map(|l| l.strip_prefix("Content-Length: "))
                            .and_then(|v| v.trim().parse().ok())
                        {
                            self.client.set_out_channel_content_length(id, len);
                        }
                        break;
                    }
                }
                rest
            };
            if !body.is_empty() {
                self.client.handle_input(self.now, id, &body);
            }
            moved = true;
        }
        moved
    }

    fn drive_proxy(&mut self, id: ClientChannelId) -> bool {
        let mut moved = false;
        let mut events = Vec::new();
        let mut to_client = Vec::new();
        let mut to_backend = Vec::new();
        {
            let Some(proxy) = self.proxies.get_mut(&id) else {
                return false;
            };
            match proxy {
                Proxy::In(p) => {
                    while let Some(ev) = p.poll_event() {
                        events.push(ev);
                    }
                    while p.poll_backend_transmit(&mut to_backend) > 0 {}
                }
                Proxy::Out(p) => {
                    while let Some(ev) = p.poll_event() {
                        events.push(ev);
                    }
                    while p.poll_transmit(&mut to_client) > 0 {}
                    while p.poll_backend_transmit(&mut to_backend) > 0 {}
                }
            }
        }
        for ev in events {
            moved = true;
            self.on_proxy_event(id, &ev);
            self.proxy_events.push((id, ev));
        }
        if !to_client.is_empty() {
            moved = true;
            self.down.entry(id).or_default().bytes.extend(to_client);
        }
        if !to_backend.is_empty() {
            moved = true;
            self.to_server
                .entry(id)
                .or_default()
                .bytes
                .extend(to_backend);
        }
        moved
    }

    fn on_proxy_event(&mut self, id: ClientChannelId, ev: &ProxyEvent) {
        if matches!(ev, ProxyEvent::Closed { .. }) {
            self.pending_eof.push(id);
        }
        match ev {
            ProxyEvent::BackendConnectRequested(_) => {
                self.server.accept(id.0 as usize);
                self.connected.push(id);
                match self.proxies.get_mut(&id) {
                    Some(Proxy::In(p)) => p.handle_backend_connected(self.now),
                    Some(Proxy::Out(p)) => p.handle_backend_connected(self.now),
                    None => {}
                }
            }
            ProxyEvent::VirtualConnectionIdentified {
                virtual_connection,
                replaces,
                ..
            } if self.merged => {
                let is_in = matches!(self.proxies.get(&id), Some(Proxy::In(_)));
                if replaces.is_some() {
                    if is_in {
                        self.table
                            .replace_in(*virtual_connection, id)
                            .expect("replacement of an unknown virtual connection");
                    } else {
                        // The OUT channel switches when the predecessor has finished.
                        self.out_successor = Some(id);
                    }
                    return;
                }
                let pairing = if is_in {
                    self.table.attach_in(self.now, *virtual_connection, id)
                } else {
                    self.table.attach_out(self.now, *virtual_connection, id)
                }
                .expect("table refused a channel");
                if let Pairing::Paired { out_channel, .. } = pairing
                    && let Some(Proxy::Out(p)) = self.proxies.get_mut(&out_channel)
                {
                    p.attach_in_channel(self.now)
                        .expect("OUT channel not waiting");
                }
            }
            ProxyEvent::RpcPduReceived(pdu) => {
                let vc = cookies().virtual_connection;
                let out = *self.table.out_channel(&vc).expect("no OUT channel");
                if let Some(r) = answer(pdu)
                    && let Some(Proxy::Out(p)) = self.proxies.get_mut(&out)
                {
                    p.send_pdu(self.now, r)
                        .expect("OUT channel refused a response");
                }
            }
            ProxyEvent::ForwardToOutChannel(rts) => {
                let vc = cookies().virtual_connection;
                let out = *self.table.out_channel(&vc).expect("no OUT channel");
                let mut events = Vec::new();
                if let Some(Proxy::Out(p)) = self.proxies.get_mut(&out) {
                    p.handle_forwarded_rts(self.now, rts.clone());
                    while let Some(ev) = p.poll_event() {
                        events.push(ev);
                    }
                }
                for ev in events {
                    self.on_proxy_event(out, &ev);
                    self.proxy_events.push((out, ev));
                }
            }
            ProxyEvent::Closed {
                reason: CloseReason::Recycled,
            } if self.merged && matches!(self.proxies.get(&id), Some(Proxy::Out(_))) => {
                let vc = cookies().virtual_connection;
                if let Some(succ) = self.out_successor.take() {
                    self.table.replace_out(vc, succ).unwrap();
                }
            }
            ProxyEvent::Closed {
                reason: CloseReason::Recycled,
            } if self.merged => {
                // The successor IN channel may release what it held.
                let vc = cookies().virtual_connection;
                if let Some(succ) = self.table.in_channel(&vc).copied()
                    && succ != id
                    && let Some(Proxy::In(p)) = self.proxies.get_mut(&succ)
                {
                    p.handle_predecessor_finished(self.now);
                }
            }
            _ => {}
        }
    }

    /// Advances the virtual clock by `d`, firing every timer that falls due on the way (in
    /// one-second steps so the order of timers is realistic), and runs the network.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            let step = Duration::from_secs(1).min(end - self.now);
            self.now += step;
            self.fire_timers();
            self.run();
        }
    }

    /// Fires due timers of the proxies only (a client that went silent).
    pub fn fire_proxy_timers(&mut self) {
        for p in self.proxies.values_mut() {
            match p {
                Proxy::In(p) => {
                    if p.poll_timeout().is_some_and(|t| t <= self.now) {
                        p.handle_timeout(self.now)
                    }
                }
                Proxy::Out(p) => {
                    if p.poll_timeout().is_some_and(|t| t <= self.now) {
                        p.handle_timeout(self.now)
                    }
                }
            }
        }
    }

    pub fn fire_timers(&mut self) {
        if self.client.poll_timeout().is_some_and(|t| t <= self.now) {
            self.client.handle_timeout(self.now);
        }
        self.fire_proxy_timers();
    }

    pub fn inbound(&self, id: ClientChannelId) -> &InboundProxy {
        match &self.proxies[&id] {
            Proxy::In(p) => p,
            Proxy::Out(_) => panic!("{id:?} is an OUT channel"),
        }
    }

    pub fn outbound(&self, id: ClientChannelId) -> &OutboundProxy {
        match &self.proxies[&id] {
            Proxy::Out(p) => p,
            Proxy::In(_) => panic!("{id:?} is an IN channel"),
        }
    }

    /// Sends `n` requests with `len`-byte stubs starting at call id `first`, as fast as the
    /// client takes them, running the network whenever its queue is full.
    pub fn call_many(&mut self, first: u32, n: u32, len: usize) {
        for i in first..first + n {
            let mut pdu = request(i, &stub(i, len));
            loop {
                match self.client.send_pdu(self.now, pdu) {
                    Ok(()) => break,
                    Err(e) => {
                        pdu = e.value;
                        self.run();
                    }
                }
            }
        }
        self.run();
    }

    /// Checks that the responses to calls `first..first+n` arrived exactly once, in order.
    pub fn assert_responses(&self, first: u32, n: u32, len: usize) {
        let responses: Vec<_> = self
            .received
            .iter()
            .filter(|p| p[2] == 2)
            .map(|p| response_parts(p))
            .collect();
        let want: Vec<_> = (first..first + n).map(|i| (i, stub(i, len))).collect();
        let got: Vec<_> = responses
            .into_iter()
            .filter(|(id, _)| (first..first + n).contains(id))
            .collect();
        assert_eq!(got.len(), want.len(), "number of responses");
        assert!(
            got == want,
            "responses differ (lost, duplicated or reordered bytes)"
        );
    }

    /// Whether every channel's machine saw an event matching `f`.
    pub fn proxy_event_count(&self, f: impl Fn(&ProxyEvent) -> bool) -> usize {
        self.proxy_events.iter().filter(|(_, e)| f(e)).count()
    }

    pub fn conn_count(&self) -> usize {
        self.connected.len()
    }

    /// Delivers an end of stream from the client on channel `id` to its proxy.
    pub fn client_eof(&mut self, id: ClientChannelId) {
        match self.proxies.get_mut(&id) {
            Some(Proxy::In(p)) => p.handle_eof(self.now),
            Some(Proxy::Out(p)) => p.handle_eof(self.now),
            None => {}
        }
        self.run();
    }

    /// Delivers an end of stream from the backend on channel `id`'s connection.
    pub fn backend_eof(&mut self, id: ClientChannelId) {
        self.server.eof(id.0 as usize);
        match self.proxies.get_mut(&id) {
            Some(Proxy::In(p)) => p.handle_backend_eof(self.now),
            Some(Proxy::Out(p)) => p.handle_backend_eof(self.now),
            None => {}
        }
        self.run();
    }
}

/// Unused-import guards for helpers some test files do not use.
pub fn _unused(_: RtsCommand, b: &mut Bytes) {
    b.advance(0);
}
