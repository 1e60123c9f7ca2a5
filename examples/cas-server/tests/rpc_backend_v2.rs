//! The built-in RPC backend behind rpch-framing's own proxy machines in forwarding mode: a
//! `Client` (the Outlook side), an `InboundProxy` and an `OutboundProxy` (what the HTTPS
//! endpoint runs) and real TCP connections to the backend, which must answer CONN/B2 with
//! B3 and CONN/A2 with C1, carry requests on the IN channel and responses on the OUT
//! channel, and keep both flow-control windows moving over many calls. Also the legacy
//! (RPC over HTTP v1) mode on the same port, and that nothing leaks when channels close.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use cas_server::rpc_backend::{self, RpcBackend, RpcBackendSettings};
use rpch_framing::channel::{
    Backend, Client, ClientChannelId, ClientConfig, ClientCookies, ClientEvent, InboundProxy,
    OutboundProxy, ProxyConfig, ProxyEvent,
};
use rpch_framing::pdu::{
    Bind, ContextElement, DataRepresentation, PacketType, Pdu, PduHeader, PfcFlags, Request,
    SyntaxId, Uuid,
};
use rpch_framing::rts::Cookie;
use rpch_framing::target::RpcTarget;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

struct NoUsers;

impl cas_auth::CredentialStore for NoUsers {
    fn verify_password(&self, _: &str, _: &[u8]) -> Result<bool, cas_auth::StoreError> {
        Ok(false)
    }
    fn nt_hash(
        &self,
        _: &str,
    ) -> Result<Option<cas_auth::Secret<cas_auth::NtHash>>, cas_auth::StoreError> {
        Ok(None)
    }
    fn canonical_user(&self, _: &str) -> Result<Option<String>, cas_auth::StoreError> {
        Ok(None)
    }
}

/// The backend on a free loopback port, served by its own runtime thread.
struct Running {
    addr: SocketAddr,
    backend: Arc<RpcBackend>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    fn start() -> Running {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let settings = RpcBackendSettings {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            // A long name makes inq_princ_name answers 1 KiB.
            principal_name: "p".repeat(1000),
            ..RpcBackendSettings::default()
        };
        let backend = RpcBackend::new(settings.clone(), None, Arc::new(NoUsers));
        let listener = runtime
            .block_on(rpc_backend::bind(&settings))
            .unwrap()
            .remove(0);
        let addr = listener.local_addr().unwrap();
        let tracker = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let (b, t, s) = (backend.clone(), tracker.clone(), shutdown.clone());
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                t.spawn(rpc_backend::serve(b, listener, t.clone(), s.clone()));
                s.cancelled().await;
                t.close();
                let _ = tokio::time::timeout(Duration::from_secs(5), t.wait()).await;
            });
        });
        Running {
            addr,
            backend,
            tracker,
            shutdown,
            thread: Some(thread),
        }
    }

    /// Connections still served (the accept loop is one task).
    fn connections(&self) -> usize {
        self.tracker.len() - 1
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn mgmt() -> SyntaxId {
    SyntaxId::new(
        Uuid::parse_str("afa8bd80-7d8a-11c9-bef4-08002b102989").unwrap(),
        1,
        0,
    )
}

fn encode(pdu: &Pdu, packet_type: PacketType, call_id: u32) -> Bytes {
    let mut h = PduHeader::new(packet_type, call_id);
    h.pfc_flags = PfcFlags::FIRST_AND_LAST;
    h.data_rep = DataRepresentation::LITTLE_ENDIAN;
    let mut out = BytesMut::new();
    pdu.encode(&h, &mut out).unwrap();
    out.freeze()
}

fn bind() -> Bytes {
    encode(
        &Pdu::Bind(Bind {
            max_xmit_frag: 5840,
            max_recv_frag: 5840,
            assoc_group_id: 0,
            contexts: vec![ContextElement {
                context_id: 0,
                abstract_syntax: mgmt(),
                transfer_syntaxes: vec![SyntaxId::NDR],
            }],
            auth: None,
        }),
        PacketType::Bind,
        1,
    )
}

/// `inq_stats` asking for 4 counters.
fn inq_stats(call_id: u32) -> Bytes {
    call(call_id, 1, 4u32.to_le_bytes().to_vec())
}

/// `inq_princ_name` for NTLM with room for 2000 bytes, and `pad` extra stub bytes (NDR lets
/// a server ignore them) to make the IN traffic large too.
fn inq_princ_name(call_id: u32, pad: usize) -> Bytes {
    let mut stub = 10u32.to_le_bytes().to_vec();
    stub.extend_from_slice(&2000u32.to_le_bytes());
    stub.resize(8 + pad, 0);
    call(call_id, 4, stub)
}

fn call(call_id: u32, opnum: u16, stub: Vec<u8>) -> Bytes {
    encode(
        &Pdu::Request(Request {
            alloc_hint: stub.len() as u32,
            context_id: 0,
            opnum,
            object: None,
            stub_data: Bytes::from(stub),
            auth: None,
        }),
        PacketType::Request,
        call_id,
    )
}

fn nonblocking(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_nonblocking(true).unwrap();
    s
}

/// Reads what is there; `None` at EOF.
fn read_some(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = [0u8; 65536];
    match s.read(&mut buf) {
        Ok(0) => None,
        Ok(n) => Some(buf[..n].to_vec()),
        Err(e) if e.kind() == ErrorKind::WouldBlock => Some(Vec::new()),
        Err(_) => None,
    }
}

fn write_all(s: &mut TcpStream, mut data: &[u8]) {
    while !data.is_empty() {
        match s.write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => panic!("write to backend: {e}"),
        }
    }
}

/// A client, both proxy channels and their two backend connections, pumped by hand.
struct VirtualConnection {
    client: Client,
    inbound: InboundProxy,
    outbound: OutboundProxy,
    in_tcp: Option<TcpStream>,
    out_tcp: Option<TcpStream>,
    addr: SocketAddr,
    out_head_seen: Vec<u8>,
    head_done: bool,
    received: Vec<Bytes>,
    opened: bool,
    in_closed: bool,
    out_closed: bool,
}

impl VirtualConnection {
    fn new(addr: SocketAddr) -> Self {
        let now = Instant::now();
        let cookies = ClientCookies {
            virtual_connection: Cookie([1; 16]),
            in_channel: Cookie([2; 16]),
            out_channel: Cookie([3; 16]),
            association_group: Cookie([4; 16]),
        };
        let target = RpcTarget::new(std::net::Ipv4Addr::LOCALHOST, addr.port());
        let config = Arc::new(ProxyConfig::default());
        Self {
            client: Client::new(Arc::new(ClientConfig::default()), now, cookies),
            inbound: InboundProxy::new(
                config.clone(),
                now,
                Backend::Forward(target.clone()),
                1 << 30,
                Some(std::net::Ipv4Addr::LOCALHOST.into()),
            ),
            outbound: OutboundProxy::new(config, now, Backend::Forward(target)),
            in_tcp: None,
            out_tcp: None,
            addr,
            out_head_seen: Vec::new(),
            head_done: false,
            received: Vec::new(),
            opened: false,
            in_closed: false,
            out_closed: false,
        }
    }

    fn in_id(&self) -> ClientChannelId {
        self.client.in_channel()
    }

    fn out_id(&self) -> ClientChannelId {
        self.client.out_channel()
    }

    /// One round of moving bytes everywhere; true if anything moved.
    fn pump(&mut self) -> bool {
        let now = Instant::now();
        let mut moved = false;
        while let Some(e) = self.client.poll_event() {
            match e {
                ClientEvent::Opened => self.opened = true,
                ClientEvent::PduReceived(p) => self.received.push(p),
                _ => {}
            }
        }
        // Client → proxies.
        let mut buf = Vec::new();
        let in_id = self.in_id();
        while self.client.poll_transmit(in_id, &mut buf) > 0 {}
        if !buf.is_empty() {
            self.inbound.handle_input(now, &buf);
            moved = true;
        }
        buf.clear();
        let out_id = self.out_id();
        while self.client.poll_transmit(out_id, &mut buf) > 0 {}
        if !buf.is_empty() {
            self.outbound.handle_input(now, &buf);
            moved = true;
        }
        // Proxy events: connect the backends.
        while let Some(e) = self.inbound.poll_event() {
            match e {
                ProxyEvent::BackendConnectRequested(_) => {
                    self.in_tcp = Some(nonblocking(self.addr));
                    self.inbound.handle_backend_connected(now);
                }
                ProxyEvent::Closed { reason } => panic!("IN channel closed: {reason:?}"),
                _ => {}
            }
        }
        while let Some(e) = self.outbound.poll_event() {
            match e {
                ProxyEvent::BackendConnectRequested(_) => {
                    self.out_tcp = Some(nonblocking(self.addr));
                    self.outbound.handle_backend_connected(now);
                }
                ProxyEvent::Closed { reason } if !self.out_closed => {
                    panic!("OUT channel closed: {reason:?}")
                }
                _ => {}
            }
        }
        // Proxies → backend and back.
        for inbound in [true, false] {
            let mut buf = Vec::new();
            if inbound {
                while self.inbound.poll_backend_transmit(&mut buf) > 0 {}
            } else {
                while self.outbound.poll_backend_transmit(&mut buf) > 0 {}
            }
            let tcp = if inbound {
                &mut self.in_tcp
            } else {
                &mut self.out_tcp
            };
            let Some(tcp) = tcp.as_mut() else { continue };
            if !buf.is_empty() {
                write_all(tcp, &buf);
                moved = true;
            }
            match read_some(tcp) {
                Some(data) if !data.is_empty() => {
                    moved = true;
                    if inbound {
                        self.inbound.handle_backend_input(now, &data);
                    } else {
                        self.outbound.handle_backend_input(now, &data);
                    }
                }
                Some(_) => {}
                None => {
                    if inbound && !self.in_closed {
                        self.in_closed = true;
                        self.inbound.handle_backend_eof(now);
                    } else if !inbound && !self.out_closed {
                        self.out_closed = true;
                        self.outbound.handle_backend_eof(now);
                    }
                }
            }
        }
        // Proxies → client (the OUT channel's HTTP head is the HTTP layer's, not the client
        // machine's).
        let mut buf = Vec::new();
        while self.outbound.poll_transmit(&mut buf) > 0 {}
        if !buf.is_empty() {
            moved = true;
            let body = if self.head_done {
                buf
            } else {
                self.out_head_seen.extend_from_slice(&buf);
                match self.out_head_seen.windows(4).position(|w| w == b"\r\n\r\n") {
                    Some(i) => {
                        self.head_done = true;
                        self.out_head_seen.split_off(i + 4)
                    }
                    None => Vec::new(),
                }
            };
            if !body.is_empty() {
                self.client.handle_input(now, out_id, &body);
            }
        }
        let mut sink = Vec::new();
        while self.inbound.poll_transmit(&mut sink) > 0 {}
        moved
    }

    fn run_until(&mut self, what: &str, mut done: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            if !self.pump() {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

fn response_stub(pdu: &Bytes) -> Bytes {
    match Pdu::decode(pdu).unwrap() {
        Pdu::Response(r) => r.stub_data,
        other => panic!("expected a response, got {other:?}"),
    }
}

#[test]
fn mgmt_over_rpc_over_http_v2_with_many_calls() {
    let server = Running::start();
    let mut vc = VirtualConnection::new(server.addr);
    vc.run_until("CONN/C2", |vc| vc.opened);

    vc.client.send_pdu(Instant::now(), bind()).unwrap();
    vc.run_until("bind_ack", |vc| !vc.received.is_empty());
    assert!(matches!(
        Pdu::decode(&vc.received[0]).unwrap(),
        Pdu::BindAck(_)
    ));

    // 600 calls of 1 KiB each way: 600 KiB through the IN channel and the server's 64 KiB
    // window, as much back through the outbound proxy's 64 KiB window.
    const CALLS: u32 = 600;
    let mut sent = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while vc.received.len() < 1 + CALLS as usize {
        assert!(
            Instant::now() < deadline,
            "calls stalled at {}",
            vc.received.len()
        );
        while sent < CALLS && vc.client.wants_pdu() {
            sent += 1;
            vc.client
                .send_pdu(Instant::now(), inq_princ_name(sent + 1, 1000))
                .unwrap();
        }
        if !vc.pump() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    for (i, pdu) in vc.received[1..].iter().enumerate() {
        let d = rpch_framing::pdu::PduHeader::parse(pdu, &Default::default()).unwrap();
        assert_eq!(d.call_id, i as u32 + 2, "responses in order");
        let stub = response_stub(pdu);
        // max_count, offset, actual_count, the name and its NUL, padding, status.
        assert_eq!(&stub[8..12], &1001u32.to_le_bytes());
        assert_eq!(&stub[stub.len() - 4..], &[0, 0, 0, 0]);
    }
    // More than a window went each way, so the backend's FlowControlAcks reopened the
    // inbound proxy's window and it honoured the outbound proxy's acks.
    assert!(vc.inbound.send_window().unwrap().bytes_sent() > 4 * 65536);
    assert!(vc.outbound.acks_sent() > 4);

    // The client goes away: both backend connections end, nothing stays behind.
    vc.in_tcp = None;
    vc.out_tcp = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.connections() > 0 || server.backend.virtual_connections() > 0 {
        assert!(Instant::now() < deadline, "backend connections leaked");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn legacy_connection_on_the_same_port() {
    let server = Running::start();
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut greeting = [0u8; 14];
    s.read_exact(&mut greeting).unwrap();
    assert_eq!(&greeting, b"ncacn_http/1.0");
    s.write_all(&bind()).unwrap();
    let mut header = [0u8; 16];
    s.read_exact(&mut header).unwrap();
    assert_eq!(header[2], 12, "bind_ack");
    let len = u16::from_le_bytes([header[8], header[9]]) as usize;
    let mut rest = vec![0u8; len - 16];
    s.read_exact(&mut rest).unwrap();
    s.write_all(&inq_stats(2)).unwrap();
    s.read_exact(&mut header).unwrap();
    assert_eq!(header[2], 2, "response");
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.connections() > 0 {
        assert!(Instant::now() < deadline, "connection task leaked");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn silent_or_foreign_first_pdu_is_dropped() {
    let server = Running::start();
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut greeting = [0u8; 14];
    s.read_exact(&mut greeting).unwrap();
    // An RTS PDU that opens nothing (a Ping): the connection is closed.
    let mut ping = BytesMut::new();
    rpch_framing::rts::RtsPdu::ping().encode(&mut ping);
    s.write_all(&ping).unwrap();
    let mut rest = Vec::new();
    assert_eq!(s.read_to_end(&mut rest).unwrap(), 0);
}
