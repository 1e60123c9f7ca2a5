//! Outlook Anywhere: the HTTPS endpoint with the RPC over HTTP v2 proxy
//! `/rpc/rpcproxy.dll` (MS-RPCH), the autodiscover routes, and their authentication,
//! policy, forwarding and logs (issue 7).
//!
//! # Listeners
//!
//! An HTTPS listener (rustls, the server's certificate; `[outlook_anywhere] https_listen`,
//! 8443 in the demo, 443 in production) and, for deployments where a TLS terminator sits in
//! front, an optional plain HTTP listener (`http_listen`). Plain HTTP is served only while
//! the policy's `SSLOffloading` is on (Exchange's default): without it, every authenticated
//! route answers `403` on plain HTTP (the anonymous Mozilla autoconfig still answers, because
//! Thunderbird fetches it over plain HTTP). HTTP/1.1 with keep-alive, so the NTLM legs share
//! one connection.
//!
//! # Routes
//!
//! | path (case-insensitive) | methods | authentication |
//! |---|---|---|
//! | `/rpc/rpcproxy.dll` | `RPC_IN_DATA`, `RPC_OUT_DATA` (others: `405`) | yes |
//! | `/autodiscover/autodiscover.xml` | `POST` | yes |
//! | `/.well-known/autoconfig/mail/config-v1.1.xml`, `/mail/config-v1.1.xml` | `GET` | no |
//! | anything else | | `404` |
//!
//! With Outlook Anywhere disabled (`Disable-OutlookAnywhere`, `[OutlookAnywhere] Enabled =
//! false`) the proxy path answers `404`, as an Exchange server without the RPC virtual
//! directory does, and nothing else changes: autodiscover keeps answering (Exchange keeps
//! it, and leaves the EXPR section out of its answer).
//!
//! # A proxy request, in order
//!
//! 1. The head is read within [`EndpointSettings::max_head_len`] /
//!    [`EndpointSettings::max_headers`] and parsed again by rpch-framing's strict
//!    `parse_request_head` (Content-Length rules, methods, `Expect`).
//! 2. SSL: plain HTTP only with `SSLOffloading`; the connection-level policy
//!    (`admit_connection`).
//! 3. Authentication ([`auth`]): the first request of each channel gets `401` with the
//!    challenges of the policy's `IISAuthenticationMethods` — `Negotiate`, `NTLM`, and
//!    `Basic` over TLS only (or behind an SSL offloader). NTLM goes through cas-auth with
//!    the certificate's channel bindings under the `[ntlm] extended_protection` setting. The
//!    throttle of failed logins applies.
//! 4. The user's policy: `authorize_login` for `OutlookAnywhere` (`MAPIEnabled`,
//!    `MAPIBlockOutlookRpcHttp`, client access rules, OU) → `403` with the reason in the log.
//! 5. Echo requests (Content-Length ≤ 16) get the echo response. Otherwise the
//!    `?server:port` target is parsed strictly and checked against `ValidPorts`
//!    **before any backend connection** → `403`.
//! 6. `100 Continue` only when the client asked for it (impacket waits for it; Samba breaks
//!    on it), then the channel machine runs ([`channel`]): backend connection with a
//!    timeout, the `ncacn_http/1.0` greeting, CONN/A–C, flow control, pings, `503 RPC Error`
//!    on backend failure. The IN and OUT channels of one virtual connection must belong to
//!    the same user.
//!
//! Every request gets a line in the protocol log `<log_dir>/rpchttp/rpchttp.log` (who, method,
//! channel, target, bytes each way, status/result, duration) — never credentials.
//!
//! # Resources
//!
//! [`ProxyStats`] counts live HTTP connections, channel tasks and backend sockets; tests
//! read it to prove that nothing leaks when a client or backend dies mid-call.

pub mod auth;
pub mod channel;
pub mod http;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cas_auth::CredentialStore;
use cas_auth::channel_binding::ChannelBindings;
use cas_auth::ntlm::NtlmConfig;
use cas_policy::{Decision, DenialReason, Protocol};
use rpch_framing::channel::{Backend, InboundProxy, OutboundProxy, ProxyConfig};
use rpch_framing::http::{ChannelMethod, HttpLimits, RequestKind};
use rpch_framing::rts::Cookie;
use rpch_framing::target::{RpcTarget, ServerName};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::AccessControl;
use crate::protolog::{LogEvent, ProtocolLog, Rotation, SessionLog};
use auth::{AuthResult, ConnectionAuth};
use http::{HeadError, Reply};

/// The RPC proxy path (MS-RPCH §2.1.2.1), compared case-insensitively as IIS does.
pub const RPC_PROXY_PATH: &str = "/rpc/rpcproxy.dll";
/// The Outlook POX autodiscover path.
pub const AUTODISCOVER_PATH: &str = "/autodiscover/autodiscover.xml";
/// The Mozilla autoconfig paths (Thunderbird asks the first on the mail domain's
/// `autoconfig.` host, the second on the domain itself).
pub const AUTOCONFIG_PATHS: [&str; 2] = [
    "/.well-known/autoconfig/mail/config-v1.1.xml",
    "/mail/config-v1.1.xml",
];

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// `[outlook_anywhere]` in the config file: the listeners and the HTTP limits. The Exchange
/// settings (Enabled, host names, authentication methods, SSLOffloading, ValidPorts) live in
/// policy.toml's `[OutlookAnywhere]` and are reloaded with it.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct OutlookAnywhereSection {
    /// HTTPS listener, IP:PORT; absent = no HTTPS endpoint.
    pub https_listen: Option<SocketAddr>,
    /// Plain HTTP listener for SSL offloading, IP:PORT; absent = none.
    pub http_listen: Option<SocketAddr>,
    /// Longest request head in bytes (default 16384).
    pub max_request_head_bytes: Option<usize>,
    /// Most header fields in a request (default 64).
    pub max_request_headers: Option<usize>,
    /// Largest request body read for autodiscover, in bytes (default 65536).
    pub max_request_body_bytes: Option<usize>,
    /// Seconds a connection may wait for a request, or a write may block (default 120).
    pub idle_timeout_secs: Option<u64>,
    /// Seconds to connect to an RPC backend (default 10).
    pub backend_connect_timeout_secs: Option<u64>,
    /// Most simultaneous HTTP connections (default 4096).
    pub max_connections: Option<usize>,
    /// Send TLS 1.3 session tickets on the HTTPS listener (default false).
    pub tls13_session_tickets: Option<bool>,
}

/// Resolved endpoint settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSettings {
    /// HTTPS listener.
    pub https_listen: Option<SocketAddr>,
    /// Plain HTTP listener (served only with SSLOffloading).
    pub http_listen: Option<SocketAddr>,
    /// Longest request head. Default 16 KiB: http.sys's `MaxRequestBytes` default, what IIS
    /// applies in front of rpcproxy.dll.
    pub max_head_len: usize,
    /// Most header fields. Default 64: RPC over HTTP clients send about ten.
    pub max_headers: usize,
    /// Largest body read for autodiscover. Default 64 KiB: Outlook's POX request is under
    /// 1 KiB.
    pub max_body: usize,
    /// Wait for a request head or body, or for a write to progress. Default 120 s, IIS's
    /// `connectionTimeout` default.
    pub idle_timeout: Duration,
    /// Backend TCP connect timeout. Default 10 s.
    pub backend_connect_timeout: Duration,
    /// Most simultaneous connections; more are closed at once. Default 4096.
    pub max_connections: usize,
    /// Whether the HTTPS listener sends TLS 1.3 session tickets. Default off: Samba's
    /// `ncacn_http` client (4.17) stalls on the first response after them, and RPC over
    /// HTTP channels live for hours, so resumption would save little.
    pub tls13_session_tickets: bool,
}

impl Default for EndpointSettings {
    fn default() -> Self {
        Self {
            https_listen: None,
            http_listen: None,
            max_head_len: 16 * 1024,
            max_headers: 64,
            max_body: 64 * 1024,
            idle_timeout: Duration::from_secs(120),
            backend_connect_timeout: Duration::from_secs(10),
            max_connections: 4096,
            tls13_session_tickets: false,
        }
    }
}

/// A setting of `[outlook_anywhere]` is out of range.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {key}: {message}")]
pub struct SettingsError {
    /// The dotted key, e.g. `outlook_anywhere.max_connections`.
    pub key: &'static str,
    /// Why.
    pub message: String,
}

impl EndpointSettings {
    /// Merges the file section with the command-line listeners and checks the ranges.
    pub fn resolve(
        s: &OutlookAnywhereSection,
        https_flag: Option<SocketAddr>,
        http_flag: Option<SocketAddr>,
    ) -> Result<Self, SettingsError> {
        let d = Self::default();
        let range = |key: &'static str, v: Option<usize>, min: usize, max: usize, def: usize| {
            let v = v.unwrap_or(def);
            if (min..=max).contains(&v) {
                Ok(v)
            } else {
                Err(SettingsError {
                    key,
                    message: format!("{v} is outside {min}..={max}"),
                })
            }
        };
        let secs = |key: &'static str, v: Option<u64>, def: Duration| match v {
            None => Ok(def),
            Some(n @ 1..=86_400) => Ok(Duration::from_secs(n)),
            Some(n) => Err(SettingsError {
                key,
                message: format!("{n} is outside 1..=86400 seconds"),
            }),
        };
        let out = Self {
            https_listen: https_flag.or(s.https_listen),
            http_listen: http_flag.or(s.http_listen),
            max_head_len: range(
                "outlook_anywhere.max_request_head_bytes",
                s.max_request_head_bytes,
                1024,
                1 << 20,
                d.max_head_len,
            )?,
            max_headers: range(
                "outlook_anywhere.max_request_headers",
                s.max_request_headers,
                8,
                1024,
                64,
            )?,
            max_body: range(
                "outlook_anywhere.max_request_body_bytes",
                s.max_request_body_bytes,
                1024,
                16 << 20,
                d.max_body,
            )?,
            idle_timeout: secs(
                "outlook_anywhere.idle_timeout_secs",
                s.idle_timeout_secs,
                d.idle_timeout,
            )?,
            backend_connect_timeout: secs(
                "outlook_anywhere.backend_connect_timeout_secs",
                s.backend_connect_timeout_secs,
                d.backend_connect_timeout,
            )?,
            max_connections: range(
                "outlook_anywhere.max_connections",
                s.max_connections,
                1,
                1 << 20,
                4096,
            )?,
            tls13_session_tickets: s.tls13_session_tickets.unwrap_or(d.tls13_session_tickets),
        };
        if let (Some(a), Some(b)) = (out.https_listen, out.http_listen)
            && a == b
            && a.port() != 0
        {
            return Err(SettingsError {
                key: "outlook_anywhere.http_listen",
                message: "must differ from https_listen".into(),
            });
        }
        Ok(out)
    }
}

/// Live resource counts of the endpoint (read them to find leaks).
#[derive(Debug, Default)]
pub struct ProxyStats {
    /// Open HTTP(S) connections.
    pub connections: AtomicUsize,
    /// RPC channels being forwarded (one task each).
    pub channels: AtomicUsize,
    /// Open TCP connections to RPC backends.
    pub backend_sockets: AtomicUsize,
    /// Requests answered since start.
    pub requests: AtomicU64,
}

impl ProxyStats {
    /// `(connections, channels, backend sockets)` now.
    pub fn snapshot(&self) -> (usize, usize, usize) {
        (
            self.connections.load(Ordering::SeqCst),
            self.channels.load(Ordering::SeqCst),
            self.backend_sockets.load(Ordering::SeqCst),
        )
    }
}

/// One unit of a [`ProxyStats`] gauge, given back on drop.
pub(crate) struct Gauge<'a>(&'a AtomicUsize);

impl<'a> Gauge<'a> {
    pub(crate) fn enter(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Gauge(counter)
    }
}

impl Drop for Gauge<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What every connection of the endpoint shares.
pub struct ProxyContext {
    /// Listener and limit settings.
    pub settings: EndpointSettings,
    /// The channel machines' configuration.
    pub proxy: Arc<ProxyConfig>,
    /// Policy enforcement (the live policy, throttle).
    pub access: Arc<AccessControl>,
    /// The users.
    pub credentials: Arc<dyn CredentialStore>,
    /// NTLM acceptor settings (`None`: NTLM and Negotiate are not offered).
    pub ntlm: Option<Arc<NtlmConfig>>,
    /// The certificate's channel bindings, for Extended Protection on TLS connections.
    pub channel_bindings: Option<ChannelBindings>,
    /// Live resource counts.
    pub stats: Arc<ProxyStats>,
    /// Owner (user) of each virtual connection with a live channel, and its channel count.
    pub(crate) virtual_connections: Mutex<HashMap<Cookie, channel::VirtualConnection>>,
    /// The autodiscover responders' context, set once the listeners are bound (their ports
    /// are part of the answers). Unset: the autodiscover routes answer `404`.
    pub autodiscover: std::sync::OnceLock<crate::autodiscover::AutodiscoverContext>,
    log: Arc<ProtocolLog>,
}

impl std::fmt::Debug for ProxyContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyContext")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl ProxyContext {
    /// A context; the request log goes to `<log_dir>/rpchttp/`.
    pub fn new(
        settings: EndpointSettings,
        access: Arc<AccessControl>,
        credentials: Arc<dyn CredentialStore>,
        ntlm: Option<Arc<NtlmConfig>>,
        channel_bindings: Option<ChannelBindings>,
        log_dir: &Path,
        rotation: Rotation,
    ) -> Self {
        Self {
            settings,
            proxy: Arc::new(ProxyConfig::default()),
            access,
            credentials,
            ntlm,
            channel_bindings,
            stats: Arc::new(ProxyStats::default()),
            virtual_connections: Mutex::new(HashMap::new()),
            autodiscover: std::sync::OnceLock::new(),
            log: Arc::new(ProtocolLog::new(
                log_dir.join("rpchttp"),
                "rpchttp",
                "RPC over HTTP Protocol Log",
                rotation,
            )),
        }
    }
}

/// The bound endpoint.
pub struct Endpoint {
    https: Option<(TcpListener, TlsAcceptor)>,
    http: Option<TcpListener>,
    ctx: Arc<ProxyContext>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("https", &self.https_addr())
            .field("http", &self.http_addr())
            .finish_non_exhaustive()
    }
}

/// Why the endpoint cannot start.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// HTTPS asked for without a certificate.
    #[error("outlook_anywhere.https_listen needs a certificate ([tls] or --cert/--key)")]
    NoCertificate,
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

impl Endpoint {
    /// Binds the configured listeners; `Ok(None)` when neither is configured.
    pub async fn bind(
        ctx: Arc<ProxyContext>,
        acceptor: Option<TlsAcceptor>,
    ) -> Result<Option<Endpoint>, EndpointError> {
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| EndpointError::Bind { addr, source })
        };
        let https = match (ctx.settings.https_listen, acceptor) {
            (Some(a), Some(acc)) => Some((bind(a).await?, acc)),
            (Some(_), None) => return Err(EndpointError::NoCertificate),
            (None, _) => None,
        };
        let http = match ctx.settings.http_listen {
            Some(a) => Some(bind(a).await?),
            None => None,
        };
        if https.is_none() && http.is_none() {
            return Ok(None);
        }
        Ok(Some(Endpoint { https, http, ctx }))
    }

    /// The HTTPS listener's address.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// The plain HTTP listener's address.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The shared context (stats, settings).
    pub fn context(&self) -> &Arc<ProxyContext> {
        &self.ctx
    }

    /// Accepts connections until `shutdown`; then closes every channel and waits briefly.
    pub async fn run(self, shutdown: CancellationToken) {
        async fn accept(l: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
            match l {
                Some(l) => l.accept().await,
                None => std::future::pending().await,
            }
        }
        let Endpoint { https, http, ctx } = self;
        let tracker = TaskTracker::new();
        loop {
            let (tcp, peer, tls) = tokio::select! {
                r = accept(https.as_ref().map(|(l, _)| l)) => match r {
                    Ok((tcp, peer)) => (tcp, peer, true),
                    Err(e) => { accept_failed(e).await; continue; }
                },
                r = accept(http.as_ref()) => match r {
                    Ok((tcp, peer)) => (tcp, peer, false),
                    Err(e) => { accept_failed(e).await; continue; }
                },
                () = shutdown.cancelled() => break,
            };
            if ctx.stats.connections.load(Ordering::SeqCst) >= ctx.settings.max_connections {
                tracing::warn!(%peer, "HTTP connection refused: max_connections reached");
                continue;
            }
            let ctx = ctx.clone();
            let acceptor = https.as_ref().map(|(_, a)| a.clone());
            let shutdown = shutdown.clone();
            tracker.spawn(async move {
                let _ = tcp.set_nodelay(true);
                let local = tcp.local_addr().unwrap_or(peer);
                let _conn = Gauge::enter(&ctx.stats.connections);
                match (tls, acceptor) {
                    (true, Some(acceptor)) => {
                        let handshake = tokio::time::timeout(
                            crate::driver::TLS_HANDSHAKE_TIMEOUT,
                            acceptor.accept(tcp),
                        );
                        let stream = tokio::select! {
                            r = handshake => r,
                            () = shutdown.cancelled() => return,
                        };
                        match stream {
                            Ok(Ok(stream)) => {
                                serve_connection(&ctx, stream, peer, local, true, shutdown).await;
                            }
                            _ => tracing::debug!(%peer, "HTTPS: TLS handshake failed"),
                        }
                    }
                    _ => serve_connection(&ctx, tcp, peer, local, false, shutdown).await,
                }
            });
        }
        drop((https, http));
        tracker.close();
        if tokio::time::timeout(crate::server::SHUTDOWN_GRACE, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                connections = tracker.len(),
                "HTTPS connections still open after the grace period"
            );
        }
    }
}

async fn accept_failed(e: std::io::Error) {
    tracing::warn!(error = %e, "HTTP accept failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/rpc/rpcproxy.dll`.
    RpcProxy,
    /// `/autodiscover/autodiscover.xml`.
    Autodiscover,
    /// The Mozilla autoconfig paths.
    Autoconfig,
    /// Anything else.
    NotFound,
}

impl Route {
    /// The route of a request path (case-insensitive, as IIS matches paths).
    pub fn of(path: &str) -> Route {
        if path.eq_ignore_ascii_case(RPC_PROXY_PATH) {
            Route::RpcProxy
        } else if path.eq_ignore_ascii_case(AUTODISCOVER_PATH) {
            Route::Autodiscover
        } else if AUTOCONFIG_PATHS
            .iter()
            .any(|p| path.eq_ignore_ascii_case(p))
        {
            Route::Autoconfig
        } else {
            Route::NotFound
        }
    }
}

/// One request's log line, written when it is answered or its channel ends.
struct RequestRecord {
    started: Instant,
    method: String,
    path: String,
    user: String,
    channel: &'static str,
    target: String,
    status: u16,
    from_client: u64,
    to_client: u64,
    result: String,
}

impl RequestRecord {
    fn new(head: &http::Head) -> Self {
        Self {
            started: crate::driver::now(),
            method: head.method.chars().take(32).collect(),
            path: head.path.chars().take(128).collect(),
            user: String::new(),
            channel: "",
            target: String::new(),
            status: 0,
            from_client: 0,
            to_client: 0,
            result: String::new(),
        }
    }
}

/// Per-connection state of the request log.
struct ConnLog {
    log: SessionLog,
    peer: SocketAddr,
}

impl ConnLog {
    fn write(&mut self, r: &RequestRecord) {
        let ms = crate::driver::now()
            .saturating_duration_since(r.started)
            .as_millis();
        let user = if r.user.is_empty() { "-" } else { &r.user };
        let channel = if r.channel.is_empty() { "-" } else { r.channel };
        let target = if r.target.is_empty() { "-" } else { &r.target };
        let data = format!(
            "{} {} user={user} channel={channel} target={target} status={} client_bytes={} server_bytes={} duration_ms={ms}",
            r.method, r.path, r.status, r.from_client, r.to_client
        );
        tracing::info!(peer = %self.peer, method = %r.method, path = %r.path, user, channel, target, status = r.status,
            client_bytes = r.from_client, server_bytes = r.to_client, duration_ms = ms as u64, result = %r.result, "HTTP request");
        self.log.record(LogEvent::Info, &data, &r.result);
    }
}

/// Whether the connection carries another request after a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Read the next request on this connection.
    Continue,
    /// Close the connection.
    Close,
}

/// What a request handler decided.
enum Outcome {
    /// Send this response.
    Reply(Reply, Next),
    /// Send these bytes (a response already encoded).
    Raw(Vec<u8>, u16, Next),
    /// The request opened an RPC channel: it takes the connection over.
    Channel(ChannelStart),
}

/// An authorized channel request, ready to run.
struct ChannelStart {
    kind: RequestKind,
    target: RpcTarget,
    content_length: u64,
    expect_continue: bool,
    min_conn_timeout: Option<u32>,
    user: String,
}

/// Serves one HTTP connection: requests until the peer closes, a response that closes,
/// or a request that becomes an RPC channel (which then owns the connection to its end).
pub async fn serve_connection<S>(
    ctx: &Arc<ProxyContext>,
    mut stream: S,
    peer: SocketAddr,
    local: SocketAddr,
    tls: bool,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let offloading = ctx.access.policy().policy.outlook_anywhere().ssl_offloading;
    let secure = tls || offloading;
    let mut auth = ConnectionAuth::new(ctx, tls, secure, peer.ip());
    let mut log = ConnLog {
        log: SessionLog::new(ctx.log.clone(), local.to_string(), peer.to_string()),
        peer,
    };
    let settings = &ctx.settings;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    loop {
        let read = tokio::select! {
            r = http::read_head(&mut stream, &mut buf, settings.max_head_len, settings.max_headers, settings.idle_timeout) => r,
            () = shutdown.cancelled() => return,
        };
        let parsed = match read {
            Ok(Some(len)) => {
                let raw: Vec<u8> = buf.drain(..len).collect();
                http::Head::parse(&raw, settings.max_headers).map(|h| (h, raw))
            }
            Ok(None) => return,
            Err(e) => Err(e),
        };
        let (head, raw) = match parsed {
            Ok(p) => p,
            Err(HeadError::Io(e)) => {
                tracing::debug!(%peer, error = %e, "HTTP connection ended");
                return;
            }
            Err(HeadError::TooLarge) => {
                let _ = stream
                    .write_all(&Reply::empty(431).encode(false, true))
                    .await;
                return;
            }
            Err(HeadError::Malformed(why)) => {
                tracing::debug!(%peer, why, "malformed HTTP request");
                let _ = stream
                    .write_all(&Reply::empty(400).encode(false, true))
                    .await;
                return;
            }
        };
        ctx.stats.requests.fetch_add(1, Ordering::Relaxed);
        let mut record = RequestRecord::new(&head);
        let outcome = match Route::of(&head.path) {
            Route::RpcProxy => {
                rpc_request(
                    ctx,
                    &mut stream,
                    &mut buf,
                    &raw,
                    &head,
                    &mut auth,
                    &mut record,
                    secure,
                )
                .await
            }
            route => {
                other_request(
                    ctx,
                    &mut stream,
                    &mut buf,
                    &head,
                    &mut auth,
                    &mut record,
                    route,
                    secure,
                )
                .await
            }
        };
        let (bytes, status, next) = match outcome {
            Outcome::Reply(reply, next) => (
                reply.encode(head.is_head(), next == Next::Close),
                reply.status,
                next,
            ),
            Outcome::Raw(bytes, status, next) => (bytes, status, next),
            Outcome::Channel(start) => {
                run_channel(ctx, stream, buf, start, &mut record, peer, shutdown).await;
                log.write(&record);
                return;
            }
        };
        record.status = status;
        record.to_client = bytes.len() as u64;
        let written = tokio::time::timeout(settings.idle_timeout, stream.write_all(&bytes)).await;
        log.write(&record);
        if !matches!(written, Ok(Ok(()))) {
            return;
        }
        if next == Next::Close {
            let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
            return;
        }
    }
}

/// After a response to a request whose body was not read, the connection can go on only
/// when there is no body (otherwise the rest of the stream is that body).
fn keep_if_no_body(head: &http::Head) -> Next {
    if head.body_len() == 0 && head.keep_alive && !head.transfer_encoding {
        Next::Continue
    } else {
        Next::Close
    }
}

/// The reply for an authentication that did not allow the request; the record gets the
/// user (if known) and the reason.
fn refusal(result: AuthResult, record: &mut RequestRecord) -> Reply {
    let (reply, user, why) = match result {
        AuthResult::Unauthorized { challenges, reason } => (
            Reply::unauthorized(challenges),
            String::new(),
            reason.unwrap_or_else(|| "authentication required".into()),
        ),
        AuthResult::Denied { user, denial } => {
            let status = denial.reason.http_status();
            let mut reply = Reply::text(status, &format!("{}\n", denial.message));
            if let DenialReason::LoginDelay { .. } = denial.reason {
                reply = reply.with_header("Retry-After", "60");
            }
            (reply, user, format!("refused by policy: {denial}"))
        }
        AuthResult::Unavailable(why) => (Reply::empty(503), String::new(), why),
        AuthResult::Allowed { user, .. } => (Reply::empty(500), user, "internal error".into()),
    };
    record.user = user;
    record.result = why;
    reply
}

/// Autodiscover, autoconfig and unknown paths.
#[allow(clippy::too_many_arguments)]
async fn other_request<S>(
    ctx: &Arc<ProxyContext>,
    stream: &mut S,
    buf: &mut Vec<u8>,
    head: &http::Head,
    auth: &mut ConnectionAuth,
    record: &mut RequestRecord,
    route: Route,
    secure: bool,
) -> Outcome
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let reply = |r: Reply| Outcome::Reply(r, keep_if_no_body(head));
    match route {
        Route::Autodiscover => {
            if head.method != "POST" {
                return reply(Reply::empty(405).with_header("Allow", "POST"));
            }
            if !secure {
                record.result = "plain HTTP without SSLOffloading: SSL required".into();
                return reply(Reply::text(403, "SSL required\n"));
            }
            if head.transfer_encoding {
                return Outcome::Reply(Reply::empty(411), Next::Close);
            }
            let body_len = head.body_len();
            if body_len > ctx.settings.max_body as u64 {
                return Outcome::Reply(Reply::empty(413), Next::Close);
            }
            // Autodiscover answers whether or not Outlook Anywhere is on for the user: the
            // answer itself says which protocols the user may use.
            match auth
                .authenticate(ctx, None, head.authorization.as_deref())
                .await
            {
                AuthResult::Allowed {
                    user,
                    www_authenticate,
                    ..
                } => {
                    record.user = user.clone();
                    let Ok(body) =
                        http::read_body(stream, buf, body_len as usize, ctx.settings.idle_timeout)
                            .await
                    else {
                        return Outcome::Reply(Reply::empty(400), Next::Close);
                    };
                    let mut r = autodiscover_pox(ctx, &body, &user);
                    if let Some(w) = www_authenticate {
                        r = r.with_header("WWW-Authenticate", w);
                    }
                    let next = if head.keep_alive {
                        Next::Continue
                    } else {
                        Next::Close
                    };
                    Outcome::Reply(r, next)
                }
                other => {
                    // Drain the body so the connection survives the 401: NTLM clients
                    // (requests-ntlm, Outlook) resend the POST with each handshake leg on
                    // the same connection.
                    let refused = refusal(other, record);
                    let drained =
                        http::read_body(stream, buf, body_len as usize, ctx.settings.idle_timeout)
                            .await
                            .is_ok();
                    let next = if drained && head.keep_alive {
                        Next::Continue
                    } else {
                        Next::Close
                    };
                    Outcome::Reply(refused, next)
                }
            }
        }
        Route::Autoconfig => {
            if head.method != "GET" && head.method != "HEAD" {
                return reply(Reply::empty(405).with_header("Allow", "GET, HEAD"));
            }
            reply(autoconfig(ctx, &head.query))
        }
        Route::RpcProxy | Route::NotFound => reply(Reply::empty(404)),
    }
}

/// `POST /autodiscover/autodiscover.xml` for an authenticated `user`.
fn autodiscover_pox(ctx: &ProxyContext, body: &[u8], user: &str) -> Reply {
    match ctx.autodiscover.get() {
        Some(ad) => from_http_reply(crate::autodiscover::respond_pox(ad, body, user)),
        None => Reply::empty(404),
    }
}

/// The anonymous Mozilla autoconfig.
fn autoconfig(ctx: &ProxyContext, query: &str) -> Reply {
    match ctx.autodiscover.get() {
        Some(ad) => from_http_reply(crate::autodiscover::respond_autoconfig(ad, query)),
        None => Reply::empty(404),
    }
}

fn from_http_reply(r: crate::autodiscover::HttpReply) -> Reply {
    let mut headers: Vec<(String, String)> = Vec::with_capacity(r.headers.len() + 1);
    if let Some(ct) = r.content_type {
        headers.push(("Content-Type".to_owned(), ct.to_owned()));
    }
    headers.extend(r.headers.into_iter().map(|(n, v)| (n.to_owned(), v)));
    Reply {
        status: r.status,
        headers,
        body: r.body,
    }
}

/// A request on the proxy path: everything up to the channel start (see the module docs
/// for the order of the checks).
#[allow(clippy::too_many_arguments)]
async fn rpc_request<S>(
    ctx: &Arc<ProxyContext>,
    stream: &mut S,
    buf: &mut Vec<u8>,
    raw_head: &[u8],
    head: &http::Head,
    auth: &mut ConnectionAuth,
    record: &mut RequestRecord,
    secure: bool,
) -> Outcome
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let reply = |r: Reply| Outcome::Reply(r, keep_if_no_body(head));
    let policy = ctx.access.policy();
    let oa = policy.policy.outlook_anywhere();
    if !oa.enabled {
        record.result = "Outlook Anywhere is disabled".into();
        return reply(Reply::empty(404));
    }
    if head.method != "RPC_IN_DATA" && head.method != "RPC_OUT_DATA" {
        record.result = "method not allowed".into();
        return reply(Reply::empty(405).with_header("Allow", "RPC_IN_DATA, RPC_OUT_DATA"));
    }
    // The strict MS-RPCH parse of the head (Content-Length kinds, Expect, Host).
    let limits = HttpLimits {
        max_head_len: ctx.settings.max_head_len,
        max_headers: ctx.settings.max_headers,
        ..HttpLimits::default()
    };
    let rpc_head = match rpch_framing::http::parse_request_head(raw_head, &limits) {
        Ok(Some((h, _))) => h,
        Ok(None) => {
            record.result = "incomplete head".into();
            return Outcome::Reply(Reply::empty(400), Next::Close);
        }
        Err(e) => {
            record.result = format!("bad request: {e}");
            return Outcome::Reply(Reply::empty(e.http_status()), Next::Close);
        }
    };
    record.channel = match rpc_head.method {
        ChannelMethod::RpcInData => "IN",
        ChannelMethod::RpcOutData => "OUT",
    };
    let kind = rpc_head.kind();
    let content_length = rpc_head.content_length;
    let expect_continue = rpc_head.expect_continue;
    let min_conn_timeout = rpc_head.pragma.min_conn_timeout;
    let target_bytes = rpc_head.target.to_vec();
    if !secure {
        record.result = "plain HTTP without SSLOffloading: SSL required".into();
        return reply(Reply::text(403, "SSL required\n"));
    }
    if let Decision::Deny(d) = policy.policy.admit_connection(
        Protocol::OutlookAnywhere,
        auth.client_addr(),
        secure,
        ctx.access.now(),
    ) {
        record.result = format!("refused by policy: {d}");
        return reply(Reply::text(
            d.reason.http_status(),
            &format!("{}\n", d.message),
        ));
    }
    drop(policy);

    // Authentication, then the user's policy.
    let (user, final_token) = match auth
        .authenticate(
            ctx,
            Some(Protocol::OutlookAnywhere),
            head.authorization.as_deref(),
        )
        .await
    {
        AuthResult::Allowed {
            user,
            www_authenticate,
            ..
        } => (user, www_authenticate),
        other => return reply(refusal(other, record)),
    };
    record.user = user.clone();

    if kind == RequestKind::Echo {
        // MS-RPCH §2.1.2.1.5: the echo request gets the echo response; its 0–16 body
        // bytes are read and dropped.
        if http::read_body(
            stream,
            buf,
            content_length as usize,
            ctx.settings.idle_timeout,
        )
        .await
        .is_err()
        {
            return Outcome::Raw(Vec::new(), 0, Next::Close);
        }
        let mut out = Vec::new();
        rpch_framing::http::encode_echo_response_head(&mut out);
        if let Some(token) = final_token {
            // SPNEGO's last token (with the server's mechListMIC) goes with the response
            // that ends the handshake.
            out.truncate(out.len() - 2);
            out.extend_from_slice(format!("WWW-Authenticate: {token}\r\n\r\n").as_bytes());
        }
        out.extend_from_slice(&rpch_framing::rts::RtsPdu::echo().to_bytes());
        record.result = "echo".into();
        let next = if head.keep_alive {
            Next::Continue
        } else {
            Next::Close
        };
        return Outcome::Raw(out, 200, next);
    }

    // The target, checked against ValidPorts before anything else touches it.
    let target = match rpch_framing::target::parse_rpc_target(&target_bytes) {
        Ok(t) => t,
        Err(e) => {
            record.result = format!("bad target: {e}");
            return Outcome::Reply(Reply::empty(e.http_status()), Next::Close);
        }
    };
    record.target = target.to_string();
    let policy = ctx.access.policy();
    if let Decision::Deny(d) = policy
        .policy
        .authorize_rpc_target(&policy_server_name(&target), target.port)
    {
        tracing::warn!(%user, target = %target, "RPC target refused: not in ValidPorts");
        record.result = format!("target refused: {d}");
        return Outcome::Reply(Reply::empty(403), Next::Close);
    }
    Outcome::Channel(ChannelStart {
        kind,
        target,
        content_length,
        expect_continue,
        min_conn_timeout,
        user,
    })
}

/// Runs an authorized channel on the connection to its end and fills the log record.
async fn run_channel<S>(
    ctx: &Arc<ProxyContext>,
    mut stream: S,
    buf: Vec<u8>,
    start: ChannelStart,
    record: &mut RequestRecord,
    peer: SocketAddr,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if start.expect_continue {
        let mut out = Vec::new();
        rpch_framing::http::encode_continue(&mut out);
        if stream.write_all(&out).await.is_err() {
            record.result = "client gone before 100 Continue".into();
            return;
        }
    }
    let now = crate::driver::now();
    let backend = Backend::Forward(start.target);
    let timeout = start
        .min_conn_timeout
        .map(|t| Duration::from_secs(u64::from(t)));
    let summary = if start.kind == RequestKind::InChannel {
        let mut m = InboundProxy::new(
            ctx.proxy.clone(),
            now,
            backend,
            start.content_length,
            Some(peer.ip()),
        );
        if let Some(t) = timeout {
            m.set_connection_timeout(t);
        }
        channel::run(ctx.clone(), m, stream, buf, &start.user, peer, shutdown).await
    } else {
        let mut m = OutboundProxy::new(ctx.proxy.clone(), now, backend);
        if let Some(t) = timeout {
            m.set_connection_timeout(t);
        }
        channel::run(ctx.clone(), m, stream, buf, &start.user, peer, shutdown).await
    };
    // The OUT channel's response is the machine's `200 Success`; an IN channel answers
    // only with a `503 RPC Error` when it fails before opening.
    record.status = if summary.to_client == 0 {
        0
    } else if summary.opened_response {
        200
    } else {
        503
    };
    record.from_client = summary.from_client;
    record.to_client = summary.to_client;
    record.result = format!(
        "{}; backend_sent={} backend_received={}",
        summary.result, summary.to_backend, summary.from_backend
    );
}

/// The name `ValidPorts` entries are compared with: the server name as sent, IPv6 without
/// brackets.
fn policy_server_name(target: &RpcTarget) -> String {
    match &target.server {
        ServerName::Ipv6(a) => a.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_case_insensitive() {
        assert_eq!(Route::of("/rpc/rpcproxy.dll"), Route::RpcProxy);
        assert_eq!(Route::of("/RPC/RpcProxy.dll"), Route::RpcProxy);
        assert_eq!(
            Route::of("/Autodiscover/Autodiscover.xml"),
            Route::Autodiscover
        );
        assert_eq!(
            Route::of("/.well-known/autoconfig/mail/config-v1.1.xml"),
            Route::Autoconfig
        );
        assert_eq!(Route::of("/mail/config-v1.1.xml"), Route::Autoconfig);
        assert_eq!(Route::of("/rpc/rpcproxy.dll/"), Route::NotFound);
        assert_eq!(Route::of("/rpcwithcert/rpcproxy.dll"), Route::NotFound);
        assert_eq!(Route::of("/"), Route::NotFound);
    }

    #[test]
    fn ipv6_targets_compare_without_brackets() {
        let t = RpcTarget::parse_query(b"[::1]:6001").unwrap();
        assert_eq!(policy_server_name(&t), "::1");
        let t = RpcTarget::parse_query(b"mbx01.example.com:6001").unwrap();
        assert_eq!(policy_server_name(&t), "mbx01.example.com");
    }

    #[test]
    fn settings_resolve_with_ranges() {
        let s = EndpointSettings::resolve(&OutlookAnywhereSection::default(), None, None).unwrap();
        assert_eq!(s, EndpointSettings::default());
        let bad = OutlookAnywhereSection {
            max_request_head_bytes: Some(10),
            ..Default::default()
        };
        assert!(EndpointSettings::resolve(&bad, None, None).is_err());
        let a: SocketAddr = "127.0.0.1:8443".parse().unwrap();
        assert!(
            EndpointSettings::resolve(&OutlookAnywhereSection::default(), Some(a), Some(a))
                .is_err()
        );
        let zero = OutlookAnywhereSection {
            idle_timeout_secs: Some(0),
            ..Default::default()
        };
        assert!(EndpointSettings::resolve(&zero, None, None).is_err());
    }
}
