//! The built-in local RPC backend speaking `ncacn_http/1.0`: the DCE/RPC management
//! interface (`mgmt`) behind the Outlook Anywhere proxy (issue 7).
//!
//! Exchange's RPC Client Access service listens on ports such as 6001–6004 for the RPC
//! proxy; this backend plays that part for the demo and the tests. Every TCP connection is
//! greeted with exactly the 14 bytes `ncacn_http/1.0` (MS-RPCH §2.1.2.1.7); then the first
//! PDU decides what the connection is:
//!
//! - `CONN/A2` (from an outbound proxy): the OUT channel of an RPC over HTTP v2 virtual
//!   connection. We answer `CONN/C1` and send the association's responses on it, within the
//!   proxy's receive window (FlowControlAck from the proxy opens it again).
//! - `CONN/B2` (from an inbound proxy): the IN channel. We answer `CONN/B3`; the client's
//!   PDUs arrive on it and we acknowledge them with FlowControlAck; RTS PDUs with a
//!   Destination (the proxies' acks for each other and the client) are passed on to the OUT
//!   channel, as MS-RPCH §3.2.5 has the server do.
//! - Any other PDU (a `bind`): a legacy `ncacn_http` connection (RPC over HTTP v1, what
//!   impacket does with `ncacn_http:host[port]` and no `RpcProxy`): requests and responses
//!   share the connection.
//!
//! The protocol itself lives in the sans-IO [`Association`]: bind and alter_context with
//! presentation context negotiation, RPC-level NTLM / SPNEGO at connect, integrity and
//! privacy level ([`security`]), reassembly, and the `mgmt` operations ([`mgmt`]).
//!
//! Not done: IN and OUT channel recycling (`IN_R1`/`OUT_R1`); the proxy's 1 GiB channel
//! lifetime is far above what `mgmt` traffic uses, so a recycling request closes the
//! virtual connection, and the client reconnects.

pub mod association;
#[doc(hidden)]
pub mod fuzzing;
pub mod mgmt;
pub mod security;
pub mod settings;

use std::collections::HashMap;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use cas_auth::ntlm::{FileTime, NtlmConfig};
use rpch_framing::channel::{NCACN_HTTP_GREETING, ReceiveWindow, SendWindow};
use rpch_framing::codec::{RawPdu, split_pdu};
use rpch_framing::pdu::{Limits, PacketType};
use rpch_framing::rts::{Cookie, FlowControlAck, RtsPdu, RtsPduKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use association::{Association, AssociationConfig, CloseReason, Event};
pub use security::SecurityConfig;
pub use settings::{RpcBackendSection, RpcBackendSettings};

/// How long a new connection may take to send its first PDU, and the longest silence on a
/// legacy connection or IN channel. The proxy pings every connection timeout (120 s by
/// default) only towards the client, so the backend's bound is generous: 15 minutes, the
/// idle limit of Windows' RPC over HTTP server side.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(900);
/// How long a fresh connection has to send its first PDU: 30 s, as the proxy's own backend
/// timeout.
pub const FIRST_PDU_TIMEOUT: Duration = Duration::from_secs(30);
/// Most virtual connections waiting for or holding their OUT channel at once.
pub const MAX_VIRTUAL_CONNECTIONS: usize = 4096;
/// Bytes of responses the OUT channel queues while the proxy's window is closed before it
/// stops taking more from the association (which then stops reading the IN channel).
const OUT_HIGH_WATERMARK: usize = 256 * 1024;
/// ConnectionTimeout announced in CONN/C1: 120 s (MS-RPCH §2.2.3.5.3 minimum), in ms.
const CONNECTION_TIMEOUT_MS: u32 = 120_000;
/// Read buffer per connection.
const READ_CHUNK: usize = 16 * 1024;

/// What travels from the IN channel task to the OUT channel task of a virtual connection.
enum OutItem {
    /// An RPC PDU, counted against the outbound proxy's receive window.
    Rpc(Bytes),
    /// An RTS PDU passed on (not flow controlled).
    Rts(Bytes),
}

struct VirtualConnection {
    out: Option<mpsc::Sender<OutItem>>,
    done: CancellationToken,
}

/// State shared by every listener of the backend.
pub struct RpcBackend {
    settings: RpcBackendSettings,
    security: SecurityConfig,
    next_group: AtomicU32,
    table: Mutex<HashMap<Cookie, VirtualConnection>>,
}

impl std::fmt::Debug for RpcBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcBackend")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// An OS-random NTLM server challenge.
pub fn os_challenge() -> [u8; 8] {
    let mut c = [0u8; 8];
    if getrandom::getrandom(&mut c).is_err() {
        // No OS randomness: mix the clock so the challenge is at least not constant; a
        // challenge only needs to be unpredictable to an attacker who cannot read our clock.
        let t = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        c = (t as u64).to_le_bytes();
    }
    c
}

impl RpcBackend {
    /// The backend for `settings`, authenticating against `store` with `ntlm` (the same
    /// NTLM settings as HTTP; `None` refuses RPC-level authentication).
    pub fn new(
        settings: RpcBackendSettings,
        ntlm: Option<Arc<NtlmConfig>>,
        store: Arc<dyn cas_auth::CredentialStore + Send + Sync>,
    ) -> Arc<Self> {
        Arc::new(Self {
            settings,
            security: SecurityConfig {
                ntlm,
                store,
                challenge: Arc::new(os_challenge),
            },
            next_group: AtomicU32::new(0x1000),
            table: Mutex::new(HashMap::new()),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &RpcBackendSettings {
        &self.settings
    }

    /// The association configuration for a listener on `port`.
    pub fn association_config(&self, port: u16) -> Arc<AssociationConfig> {
        let mut c = AssociationConfig::new(self.security.clone());
        c.principal_name = self.settings.principal_name.clone();
        c.max_frag = self.settings.max_frag;
        c.secondary_address = port.to_string();
        c.min_auth_level = self.settings.require_auth_level.auth_level();
        Arc::new(c)
    }

    fn new_group_id(&self) -> u32 {
        self.next_group.fetch_add(1, Ordering::Relaxed).max(1)
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<Cookie, VirtualConnection>> {
        match self.table.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Number of virtual connections known (for tests counting leaks).
    pub fn virtual_connections(&self) -> usize {
        self.table().len()
    }
}

/// Binds the configured listeners; on failure, the address that failed and why.
pub async fn bind(
    settings: &RpcBackendSettings,
) -> Result<Vec<TcpListener>, (SocketAddr, io::Error)> {
    let mut out = Vec::with_capacity(settings.listen.len());
    for &a in &settings.listen {
        out.push(TcpListener::bind(a).await.map_err(|e| (a, e))?);
    }
    Ok(out)
}

/// Accepts connections on `listener` until `shutdown`; each runs in `tracker`.
pub async fn serve(
    backend: Arc<RpcBackend>,
    listener: TcpListener,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    let config = backend.association_config(port);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "rpc backend accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = tcp.set_nodelay(true);
        let backend = backend.clone();
        let config = config.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            match serve_connection(backend, config, tcp, peer, shutdown).await {
                Ok(()) => tracing::debug!(%peer, port, "rpc backend connection closed"),
                Err(e) => tracing::info!(%peer, port, error = %e, "rpc backend connection ended"),
            }
        });
    }
}

fn now() -> FileTime {
    FileTime::from(SystemTime::now())
}

fn io_err(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Reads until `buf` holds one whole PDU (or the timeout / EOF).
async fn read_pdu(
    tcp: &mut TcpStream,
    buf: &mut BytesMut,
    limits: &Limits,
    timeout: Duration,
) -> io::Result<Option<RawPdu>> {
    loop {
        if let Some(raw) = split_pdu(buf, limits).map_err(|e| io_err(e.to_string()))? {
            return Ok(Some(raw));
        }
        buf.reserve(READ_CHUNK);
        let n = match tokio::time::timeout(timeout, tcp.read_buf(buf)).await {
            Ok(r) => r?,
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "idle timeout")),
        };
        if n == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(io_err("connection closed inside a PDU"))
            };
        }
    }
}

/// Serves one TCP connection: greeting, then a legacy association or one channel of an
/// RPC over HTTP v2 virtual connection.
pub async fn serve_connection(
    backend: Arc<RpcBackend>,
    config: Arc<AssociationConfig>,
    mut tcp: TcpStream,
    peer: SocketAddr,
    shutdown: CancellationToken,
) -> io::Result<()> {
    tcp.write_all(NCACN_HTTP_GREETING).await?;
    let limits = Limits::default();
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let first = tokio::select! {
        r = read_pdu(&mut tcp, &mut buf, &limits, FIRST_PDU_TIMEOUT) => r?,
        () = shutdown.cancelled() => return Ok(()),
    };
    let Some(first) = first else { return Ok(()) };
    if first.header.packet_type != PacketType::Rts {
        tracing::info!(%peer, "rpc backend: legacy ncacn_http connection");
        let mut pending = first.bytes.to_vec();
        pending.extend_from_slice(&buf);
        return serve_legacy(backend, config, tcp, peer, pending, shutdown).await;
    }
    let rts = RtsPdu::decode(&first.bytes).map_err(|e| io_err(e.to_string()))?;
    match rts.kind() {
        Some(RtsPduKind::ConnA2) => serve_out_channel(backend, tcp, peer, rts, buf, shutdown).await,
        Some(RtsPduKind::ConnB2) => {
            serve_in_channel(backend, config, tcp, peer, rts, buf, shutdown).await
        }
        other => Err(io_err(format!("unexpected first RTS PDU {other:?}"))),
    }
}

fn log_events(assoc: &mut Association, peer: SocketAddr) {
    while let Some(event) = assoc.poll_event() {
        match event {
            Event::Authenticated {
                user,
                auth_type,
                level,
            } => {
                tracing::info!(%peer, user, auth_type = auth_type.0, level = level.0, "rpc backend: RPC-level authentication succeeded")
            }
            Event::AuthenticationFailed { reason } => {
                tracing::info!(%peer, reason, "rpc backend: RPC-level authentication failed")
            }
            Event::Bound {
                assoc_group_id,
                accepted,
                rejected,
            } => tracing::debug!(%peer, assoc_group_id, accepted, rejected, "rpc backend: bound"),
            Event::CallCompleted {
                call_id,
                opnum,
                stub_in,
                stub_out,
                fault,
            } => {
                tracing::debug!(%peer, call_id, opnum, stub_in, stub_out, fault = ?fault.map(|f| f.0), "rpc backend: call")
            }
            Event::Closed { reason } => {
                tracing::debug!(%peer, %reason, "rpc backend: association closed")
            }
        }
    }
}

async fn serve_legacy(
    backend: Arc<RpcBackend>,
    config: Arc<AssociationConfig>,
    mut tcp: TcpStream,
    peer: SocketAddr,
    pending: Vec<u8>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let mut assoc = Association::new(config, backend.new_group_id());
    let mut out = Vec::new();
    let mut buf = vec![0u8; READ_CHUNK];
    assoc.handle_input(now(), &pending);
    loop {
        log_events(&mut assoc, peer);
        out.clear();
        while assoc.poll_transmit(&mut out) > 0 {}
        if !out.is_empty() {
            tcp.write_all(&out).await?;
        }
        if assoc.is_closed() {
            return Ok(());
        }
        let n = tokio::select! {
            r = tokio::time::timeout(IDLE_TIMEOUT, tcp.read(&mut buf)) => match r {
                Ok(r) => r?,
                Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "idle timeout")),
            },
            () = shutdown.cancelled() => return Ok(()),
        };
        if n == 0 {
            assoc.handle_eof();
            log_events(&mut assoc, peer);
            return Ok(());
        }
        assoc.handle_input(now(), &buf[..n]);
    }
}

/// Removes a virtual connection's entry and ends its other channel.
struct VcGuard {
    backend: Arc<RpcBackend>,
    cookie: Cookie,
    done: CancellationToken,
}

impl Drop for VcGuard {
    fn drop(&mut self) {
        self.done.cancel();
        self.backend.table().remove(&self.cookie);
    }
}

fn register(
    backend: &Arc<RpcBackend>,
    cookie: Cookie,
    out: Option<mpsc::Sender<OutItem>>,
) -> io::Result<VcGuard> {
    let mut table = backend.table();
    let done = match table.get_mut(&cookie) {
        Some(vc) => {
            if out.is_some() {
                if vc.out.is_some() {
                    return Err(io_err("second OUT channel for a virtual connection"));
                }
                vc.out = out;
            }
            vc.done.clone()
        }
        None => {
            if table.len() >= MAX_VIRTUAL_CONNECTIONS {
                return Err(io_err("too many virtual connections"));
            }
            let done = CancellationToken::new();
            table.insert(
                cookie,
                VirtualConnection {
                    out,
                    done: done.clone(),
                },
            );
            done
        }
    };
    Ok(VcGuard {
        backend: backend.clone(),
        cookie,
        done,
    })
}

async fn serve_out_channel(
    backend: Arc<RpcBackend>,
    mut tcp: TcpStream,
    peer: SocketAddr,
    a2: RtsPdu,
    mut buf: BytesMut,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let cookies = a2.cookies();
    let (Some(&vc), Some(&channel)) = (cookies.first(), cookies.get(1)) else {
        return Err(io_err("CONN/A2 without cookies"));
    };
    let window = a2.receive_window_size().unwrap_or(DEFAULT_PROXY_WINDOW);
    let (tx, mut rx) = mpsc::channel::<OutItem>(64);
    let guard = register(&backend, vc, Some(tx))?;
    tracing::info!(%peer, "rpc backend: OUT channel opened");
    let mut c1 = BytesMut::new();
    RtsPdu::conn_c1(
        rpch_framing::rts::RTS_VERSION,
        backend.settings.receive_window,
        CONNECTION_TIMEOUT_MS,
    )
    .encode(&mut c1);
    tcp.write_all(&c1).await?;
    let mut send = SendWindow::new(window);
    let mut queue: VecDeque<Bytes> = VecDeque::new();
    let mut queued = 0usize;
    let limits = Limits::default();
    let mut rx_open = true;
    loop {
        // Send what the window allows.
        let mut out = Vec::new();
        while let Some(front) = queue.front() {
            let len = front.len() as u32;
            if !send.can_send(len) {
                break;
            }
            send.on_sent(len);
            queued -= front.len();
            out.extend_from_slice(front);
            queue.pop_front();
        }
        if !out.is_empty() {
            tcp.write_all(&out).await?;
        }
        if !rx_open && queue.is_empty() {
            // The IN channel ended and everything was delivered.
            return Ok(());
        }
        let take = rx_open && queued < OUT_HIGH_WATERMARK;
        buf.reserve(READ_CHUNK);
        tokio::select! {
            item = rx.recv(), if take => match item {
                Some(OutItem::Rpc(pdu)) => {
                    queued += pdu.len();
                    queue.push_back(pdu);
                }
                Some(OutItem::Rts(pdu)) => tcp.write_all(&pdu).await?,
                None => rx_open = false,
            },
            r = tokio::time::timeout(IDLE_TIMEOUT, tcp.read_buf(&mut buf)) => {
                let n = match r {
                    Ok(r) => r?,
                    Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "idle timeout")),
                };
                if n == 0 {
                    return Ok(());
                }
                while let Some(raw) = split_pdu(&mut buf, &limits).map_err(|e| io_err(e.to_string()))? {
                    let rts = raw
                        .rts()
                        .ok_or_else(|| io_err("RPC PDU on the OUT channel"))?
                        .map_err(|e| io_err(e.to_string()))?;
                    if let Some(ack) = rts.ack() {
                        if ack.channel_cookie == channel {
                            send.on_ack(rpch_framing::channel::AckValues {
                                bytes_received: ack.bytes_received,
                                available_window: ack.available_window,
                            })
                            .map_err(|e| io_err(e.to_string()))?;
                        }
                    } else if rts.ping_traffic_sent().is_some() || rts.is(RtsPduKind::Ping) {
                        // Channel lifetime accounting of the proxy; nothing to do here.
                    } else {
                        return Err(io_err(format!("unexpected RTS on the OUT channel: {:?}", rts.kind())));
                    }
                }
            },
            () = guard.done.cancelled(), if rx_open => rx_open = false,
            () = shutdown.cancelled() => return Ok(()),
        }
    }
}

/// The outbound proxy's window when CONN/A2 carries none (it always does): 64 KiB.
const DEFAULT_PROXY_WINDOW: u32 = 65_536;

async fn serve_in_channel(
    backend: Arc<RpcBackend>,
    config: Arc<AssociationConfig>,
    mut tcp: TcpStream,
    peer: SocketAddr,
    b2: RtsPdu,
    mut buf: BytesMut,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let cookies = b2.cookies();
    let (Some(&vc), Some(&channel)) = (cookies.first(), cookies.get(1)) else {
        return Err(io_err("CONN/B2 without cookies"));
    };
    let guard = register(&backend, vc, None)?;
    tracing::info!(%peer, client = ?b2.client_address(), "rpc backend: IN channel opened");
    let mut b3 = BytesMut::new();
    RtsPdu::conn_b3(
        backend.settings.receive_window,
        rpch_framing::rts::RTS_VERSION,
    )
    .encode(&mut b3);
    tcp.write_all(&b3).await?;
    let mut window = ReceiveWindow::new(backend.settings.receive_window);
    let mut assoc = Association::new(config, backend.new_group_id());
    let mut out_tx: Option<mpsc::Sender<OutItem>> = None;
    let limits = Limits::default();
    loop {
        let raw = tokio::select! {
            r = read_pdu(&mut tcp, &mut buf, &limits, IDLE_TIMEOUT) => r?,
            () = guard.done.cancelled() => return Ok(()),
            () = shutdown.cancelled() => return Ok(()),
        };
        let Some(raw) = raw else {
            assoc.handle_eof();
            log_events(&mut assoc, peer);
            return Ok(());
        };
        if out_tx.is_none() {
            out_tx = backend.table().get(&vc).and_then(|v| v.out.clone());
        }
        if raw.is_rts() {
            let rts = RtsPdu::decode(&raw.bytes).map_err(|e| io_err(e.to_string()))?;
            if rts.destination().is_some() {
                // An ack for the client or the outbound proxy: it travels on the OUT channel.
                let tx = out_tx
                    .as_ref()
                    .ok_or_else(|| io_err("no OUT channel yet"))?;
                if tx.send(OutItem::Rts(raw.bytes)).await.is_err() {
                    return Ok(());
                }
            } else if rts.is(RtsPduKind::Ping) {
            } else {
                return Err(io_err(format!(
                    "unsupported RTS on the IN channel: {:?}",
                    rts.kind()
                )));
            }
            continue;
        }
        let len = raw.bytes.len() as u32;
        // Like the proxy, tolerate a sender that overruns the window (bounded by the
        // association's back-pressure, which stops this loop from reading).
        window.on_received_overrun(len);
        assoc.handle_input(now(), &raw.bytes);
        log_events(&mut assoc, peer);
        let tx = out_tx
            .as_ref()
            .ok_or_else(|| io_err("no OUT channel for this virtual connection"))?;
        loop {
            let mut pdu = Vec::new();
            if assoc.poll_transmit(&mut pdu) == 0 {
                break;
            }
            if tx.send(OutItem::Rpc(Bytes::from(pdu))).await.is_err() {
                return Ok(());
            }
        }
        if let Some(ack) = window.on_consumed(len) {
            let mut a = BytesMut::new();
            RtsPdu::flow_control_ack(FlowControlAck {
                bytes_received: ack.bytes_received,
                available_window: ack.available_window,
                channel_cookie: channel,
            })
            .encode(&mut a);
            tcp.write_all(&a).await?;
        }
        if assoc.is_closed() {
            // Let the OUT channel deliver the last PDUs (a fault, a bind_nak) before the
            // virtual connection ends.
            drop(out_tx);
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(5)) => {}
                () = guard.done.cancelled() => {}
            }
            return Ok(());
        }
    }
}
