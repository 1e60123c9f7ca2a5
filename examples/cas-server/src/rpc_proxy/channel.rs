//! One forwarded RPC over HTTP channel: the socket side of rpch-framing's
//! [`InboundProxy`] / [`OutboundProxy`] machines.
//!
//! The HTTP server has authenticated the request, checked the user's policy and the target
//! against `ValidPorts`; here the machine gets the body bytes, asks for the backend
//! connection (made with a timeout), and the loop moves bytes between the client, the
//! machine and the backend, reading a socket only while the machine wants more (that is how
//! flow control reaches TCP), arming the machine's timer, and ending both sockets when the
//! machine reports `Closed` — or when the server shuts down. Every write has a deadline, so a
//! client or backend that stops reading cannot pin the task.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rpch_framing::channel::{CloseReason, InboundProxy, OutboundProxy, ProxyEvent};
use rpch_framing::rts::Cookie;
use rpch_framing::target::{RpcTarget, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::{Gauge, ProxyContext};
use crate::driver::now;

/// The two proxy machines behind one interface, so one loop drives both.
pub(crate) trait ProxyMachine {
    fn handle_input(&mut self, now: Instant, data: &[u8]);
    fn handle_eof(&mut self, now: Instant);
    fn handle_backend_connected(&mut self, now: Instant);
    fn handle_backend_input(&mut self, now: Instant, data: &[u8]);
    fn handle_backend_connect_failed(&mut self, now: Instant);
    fn handle_backend_eof(&mut self, now: Instant);
    fn handle_timeout(&mut self, now: Instant);
    fn close(&mut self, now: Instant);
    fn poll_event(&mut self) -> Option<ProxyEvent>;
    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize;
    fn poll_backend_transmit(&mut self, out: &mut Vec<u8>) -> usize;
    fn poll_timeout(&self) -> Option<Instant>;
    fn wants_input(&self) -> bool;
    fn wants_backend_input(&self) -> bool;
}

macro_rules! proxy_machine {
    ($t:ty) => {
        impl ProxyMachine for $t {
            fn handle_input(&mut self, now: Instant, data: &[u8]) {
                <$t>::handle_input(self, now, data)
            }
            fn handle_eof(&mut self, now: Instant) {
                <$t>::handle_eof(self, now)
            }
            fn handle_backend_connected(&mut self, now: Instant) {
                <$t>::handle_backend_connected(self, now)
            }
            fn handle_backend_input(&mut self, now: Instant, data: &[u8]) {
                <$t>::handle_backend_input(self, now, data)
            }
            fn handle_backend_connect_failed(&mut self, now: Instant) {
                <$t>::handle_backend_connect_failed(self, now)
            }
            fn handle_backend_eof(&mut self, now: Instant) {
                <$t>::handle_backend_eof(self, now)
            }
            fn handle_timeout(&mut self, now: Instant) {
                <$t>::handle_timeout(self, now)
            }
            fn close(&mut self, now: Instant) {
                <$t>::close(self, now)
            }
            fn poll_event(&mut self) -> Option<ProxyEvent> {
                <$t>::poll_event(self)
            }
            fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
                <$t>::poll_transmit(self, out)
            }
            fn poll_backend_transmit(&mut self, out: &mut Vec<u8>) -> usize {
                <$t>::poll_backend_transmit(self, out)
            }
            fn poll_timeout(&self) -> Option<Instant> {
                <$t>::poll_timeout(self)
            }
            fn wants_input(&self) -> bool {
                <$t>::wants_input(self)
            }
            fn wants_backend_input(&self) -> bool {
                <$t>::wants_backend_input(self)
            }
        }
    };
}

proxy_machine!(InboundProxy);
proxy_machine!(OutboundProxy);

/// How a channel ended, for the log line.
#[derive(Debug, Default, Clone)]
pub struct ChannelSummary {
    /// Body bytes received from the client.
    pub from_client: u64,
    /// Bytes sent to the client (response head included on OUT channels).
    pub to_client: u64,
    /// Bytes sent to the backend.
    pub to_backend: u64,
    /// Bytes received from the backend.
    pub from_backend: u64,
    /// Why it ended (`CloseReason` debug form, or the owner's reason).
    pub result: String,
    /// The virtual connection cookie, once known.
    pub virtual_connection: Option<Cookie>,
    /// The client got a `200` response head (an OUT channel that opened), as opposed to a
    /// `503 RPC Error`.
    pub opened_response: bool,
}

/// A virtual connection with live channels on this proxy: its owner, how many channels it
/// has here, and a token that ends them all.
#[derive(Debug)]
pub(crate) struct VirtualConnection {
    user: String,
    channels: usize,
    ended: CancellationToken,
}

/// Registration of a channel under its virtual connection cookie: IN and OUT channels of one
/// virtual connection must be the same user's, and when one of them ends (other than by
/// recycling) the others on this proxy end too, so a client that loses its OUT channel does
/// not leave its IN channel and backend connection behind. Released on drop.
pub(crate) struct VcRegistration {
    ctx: Arc<ProxyContext>,
    cookie: Cookie,
    ended: CancellationToken,
}

impl VcRegistration {
    /// Ends the other channels of the virtual connection.
    fn end_virtual_connection(&self) {
        self.ended.cancel();
    }
}

impl Drop for VcRegistration {
    fn drop(&mut self) {
        let mut owners = super::lock(&self.ctx.virtual_connections);
        if let Some(vc) = owners.get_mut(&self.cookie) {
            vc.channels -= 1;
            if vc.channels == 0 {
                owners.remove(&self.cookie);
            }
        }
    }
}

/// Records `user` as the owner of `cookie`, or refuses when another user owns it.
pub(crate) fn register_virtual_connection(
    ctx: &Arc<ProxyContext>,
    cookie: Cookie,
    user: &str,
) -> Option<VcRegistration> {
    let mut owners = super::lock(&ctx.virtual_connections);
    let vc = owners.entry(cookie).or_insert_with(|| VirtualConnection {
        user: user.to_owned(),
        channels: 0,
        ended: CancellationToken::new(),
    });
    if !vc.user.eq_ignore_ascii_case(user) {
        return None;
    }
    vc.channels += 1;
    Some(VcRegistration {
        ctx: ctx.clone(),
        cookie,
        ended: vc.ended.clone(),
    })
}

type Connecting = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>>;

/// Opens the TCP connection to an allowed target within `timeout`.
fn connect(target: &RpcTarget, timeout: Duration) -> Connecting {
    let port = target.port;
    let server = target.server.clone();
    Box::pin(async move {
        let attempt = async {
            match &server {
                ServerName::Host(h) => TcpStream::connect((h.as_str(), port)).await,
                ServerName::Ipv4(a) => TcpStream::connect(SocketAddr::from((*a, port))).await,
                ServerName::Ipv6(a) => TcpStream::connect(SocketAddr::from((*a, port))).await,
            }
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(io::ErrorKind::TimedOut.into()),
        }
    })
}

/// TCP keep-alive on the backend connection at the client's keep-alive interval
/// (ClientKeepalive in CONN/B1, or a Keep-Alive RTS PDU): MS-RPCH has no RTS keep-alive on
/// the proxy-to-server leg, and firewalls between proxy and server drop silent connections.
fn set_keepalive(stream: &TcpStream, interval: Duration, peer: SocketAddr) {
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(interval)
        .with_interval(interval);
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive) {
        tracing::debug!(%peer, error = %e, "cannot set TCP keep-alive on the backend socket");
    }
}

/// Drives one channel until it closes. `leftover` are body bytes already read with the head.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run<M, S>(
    ctx: Arc<ProxyContext>,
    mut machine: M,
    mut client: S,
    leftover: Vec<u8>,
    user: &str,
    peer: SocketAddr,
    shutdown: CancellationToken,
) -> ChannelSummary
where
    M: ProxyMachine,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _channel = Gauge::enter(&ctx.stats.channels);
    let settings = &ctx.settings;
    let write_timeout = settings.idle_timeout;
    let mut summary = ChannelSummary::default();
    let mut backend: Option<(TcpStream, Gauge<'_>)> = None;
    let mut connecting: Option<Connecting> = None;
    let mut registration: Option<VcRegistration> = None;
    let mut client_eof = false;
    let mut backend_eof = false;
    let mut closed: Option<String> = None;
    let mut recycled = false;
    // Cancelled when another channel of the virtual connection ends; a fresh token (never
    // cancelled) until the first RTS PDU names the virtual connection.
    let mut vc_ended = CancellationToken::new();
    // The client's keep-alive interval, applied to the backend socket as TCP keep-alive.
    let mut keepalive: Option<Duration> = None;
    let mut out = Vec::with_capacity(16 * 1024);
    let mut client_buf = vec![0u8; 16 * 1024];
    let mut backend_buf = vec![0u8; 16 * 1024];

    if !leftover.is_empty() {
        summary.from_client += leftover.len() as u64;
        machine.handle_input(now(), &leftover);
    }
    loop {
        // Outputs, in rpch-framing's drain order: events, client bytes, backend bytes.
        while let Some(event) = machine.poll_event() {
            match event {
                ProxyEvent::BackendConnectRequested(target)
                    if connecting.is_none() && backend.is_none() =>
                {
                    connecting = Some(connect(&target, settings.backend_connect_timeout));
                }
                ProxyEvent::VirtualConnectionIdentified {
                    virtual_connection, ..
                } => {
                    summary.virtual_connection = Some(virtual_connection);
                    if registration.is_none() {
                        match register_virtual_connection(&ctx, virtual_connection, user) {
                            Some(r) => {
                                vc_ended = r.ended.clone();
                                registration = Some(r);
                            }
                            None => {
                                tracing::warn!(%peer, %user, "channel refused: its virtual connection belongs to another user");
                                // Nothing of this channel may reach the client or the
                                // backend: drop the machine's output and end here.
                                let _ = client.shutdown().await;
                                summary.result =
                                    "refused: virtual connection of another user".into();
                                return summary;
                            }
                        }
                    }
                }
                ProxyEvent::BackendKeepaliveChanged(interval) => {
                    tracing::debug!(%peer, ?interval, "client keep-alive interval");
                    keepalive = Some(interval);
                    if let Some((stream, _)) = &backend {
                        set_keepalive(stream, interval, peer);
                    }
                }
                ProxyEvent::Opened => tracing::debug!(%peer, "channel open"),
                ProxyEvent::Closed { reason } if closed.is_none() => {
                    recycled = reason == CloseReason::Recycled;
                    closed = Some(describe(&reason));
                }
                _ => {}
            }
        }
        loop {
            out.clear();
            let n = machine.poll_transmit(&mut out);
            if n == 0 {
                break;
            }
            if summary.to_client == 0 {
                summary.opened_response = out.starts_with(b"HTTP/1.1 200");
            }
            match tokio::time::timeout(write_timeout, client.write_all(&out)).await {
                Ok(Ok(())) => summary.to_client += n as u64,
                _ => {
                    machine.close(now());
                    closed.get_or_insert_with(|| "client write failed".into());
                    break;
                }
            }
        }
        if let Some((stream, _)) = backend.as_mut() {
            loop {
                out.clear();
                let n = machine.poll_backend_transmit(&mut out);
                if n == 0 {
                    break;
                }
                match tokio::time::timeout(write_timeout, stream.write_all(&out)).await {
                    Ok(Ok(())) => summary.to_backend += n as u64,
                    _ => {
                        machine.close(now());
                        closed.get_or_insert_with(|| "backend write failed".into());
                        break;
                    }
                }
            }
        }
        if let Some(result) = closed.take() {
            summary.result = result;
            break;
        }

        let deadline = machine.poll_timeout().map(tokio::time::Instant::from_std);
        let read_client = !client_eof && machine.wants_input();
        let read_backend = !backend_eof && backend.is_some() && machine.wants_backend_input();
        tokio::select! {
            r = client.read(&mut client_buf), if read_client => match r {
                Ok(0) | Err(_) => {
                    client_eof = true;
                    machine.handle_eof(now());
                }
                Ok(n) => {
                    summary.from_client += n as u64;
                    machine.handle_input(now(), &client_buf[..n]);
                }
            },
            r = async { backend.as_mut().map(|(s, _)| s).expect("guarded").read(&mut backend_buf).await }, if read_backend => match r {
                Ok(0) | Err(_) => {
                    backend_eof = true;
                    machine.handle_backend_eof(now());
                }
                Ok(n) => {
                    summary.from_backend += n as u64;
                    machine.handle_backend_input(now(), &backend_buf[..n]);
                }
            },
            r = async { connecting.as_mut().expect("guarded").await }, if connecting.is_some() => {
                connecting = None;
                match r {
                    Ok(stream) => {
                        let _ = stream.set_nodelay(true);
                        if let Some(interval) = keepalive {
                            set_keepalive(&stream, interval, peer);
                        }
                        backend = Some((stream, Gauge::enter(&ctx.stats.backend_sockets)));
                        machine.handle_backend_connected(now());
                    }
                    Err(e) => {
                        tracing::info!(%peer, error = %e, "backend connection failed");
                        machine.handle_backend_connect_failed(now());
                    }
                }
            },
            () = sleep_until(deadline), if deadline.is_some() => machine.handle_timeout(now()),
            () = vc_ended.cancelled() => {
                machine.close(now());
                closed.get_or_insert_with(|| "the other channel of the virtual connection ended".into());
            },
            () = shutdown.cancelled() => {
                machine.close(now());
                closed.get_or_insert_with(|| "server shutting down".into());
            },
        }
    }
    if let (Some(r), false) = (&registration, recycled) {
        r.end_virtual_connection();
    }
    if let Some((mut stream, _gauge)) = backend.take() {
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), client.shutdown()).await;
    summary
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// A short name for the log: why the channel ended.
fn describe(reason: &CloseReason) -> String {
    match reason {
        CloseReason::ClientClosed => "client closed".into(),
        CloseReason::BackendClosed => "backend closed".into(),
        CloseReason::ClientError(e) => format!("client error: {e}"),
        CloseReason::BackendError(e) => format!("backend error: {e}"),
        CloseReason::IdleTimeout => "idle timeout".into(),
        CloseReason::BackendTimeout => "backend timeout".into(),
        CloseReason::BackendUnreachable => "backend unreachable".into(),
        CloseReason::BufferLimit => "buffer limit".into(),
        CloseReason::Recycled => "recycled".into(),
        CloseReason::Local => "closed by the server".into(),
        other => format!("{other:?}"),
    }
}
