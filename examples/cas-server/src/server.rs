//! Listeners, per-connection tasks and graceful shutdown.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cas_policy::{Denial, Protocol};
use pop3_proto::{ServerSession, SessionOptions, StatusLine};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::{AccessControl, Slot};
use crate::config::Settings;
use crate::driver::{self, Ending, MaybeTls, TLS_HANDSHAKE_TIMEOUT};
use crate::imap::{ImapApp, ImapContext};
use crate::live::{LiveCredentials, LivePolicy};
use crate::maildir::MaildirStore;
use crate::pop3::{Endpoints, Pop3App, Pop3Context};
use crate::protolog::{LogEvent, SessionLog};

/// How long shutdown waits for sessions to say goodbye before the process exits anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Errors that stop the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The users file could not be loaded.
    #[error("cannot load users file {path}: {message}")]
    Users {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// TLS material could not be loaded.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The POP3 settings were refused by the protocol crate.
    #[error("invalid POP3 settings: {0}")]
    Pop3Config(String),
    /// The IMAP settings were refused by the protocol crate.
    #[error("invalid IMAP settings: {0}")]
    ImapConfig(String),
    /// The client access policy file does not load.
    #[error("invalid policy: {0}")]
    Policy(String),
    /// The Outlook Anywhere HTTPS endpoint could not start.
    #[error(transparent)]
    OutlookAnywhere(#[from] crate::rpc_proxy::EndpointError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
}

/// A bound, not yet running server.
pub struct Server {
    pop3: Option<TcpListener>,
    pop3s: Option<TcpListener>,
    imap: Option<TcpListener>,
    imaps: Option<TcpListener>,
    acceptor: Option<TlsAcceptor>,
    ctx: Arc<Pop3Context>,
    imap_ctx: Option<Arc<ImapContext>>,
    credentials: Option<Arc<LiveCredentials>>,
    /// The Outlook Anywhere HTTPS endpoint (RPC proxy, autodiscover), when configured.
    outlook_anywhere: Option<crate::rpc_proxy::Endpoint>,
    /// The built-in RPC backend and its bound listeners.
    rpc_backend: Option<(Arc<crate::rpc_backend::RpcBackend>, Vec<TcpListener>)>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("pop3", &self.pop3_addr())
            .field("pop3s", &self.pop3s_addr())
            .field("imap", &self.imap_addr())
            .field("imaps", &self.imaps_addr())
            .finish_non_exhaustive()
    }
}

/// Loads the credential store from the passwd-file (a fixed snapshot; the server itself uses
/// [`LiveCredentials`], which follows changes).
pub fn load_credentials(path: &Path) -> Result<cas_auth::FileCredentialStore, StartError> {
    let err = |message: String| StartError::Users {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    cas_auth::FileCredentialStore::parse(&text).map_err(|e| err(e.to_string()))
}

impl Server {
    /// Loads users, the policy and TLS material and binds the listeners.
    pub async fn bind(settings: &Settings) -> Result<Server, StartError> {
        let credentials = Arc::new(LiveCredentials::load(&settings.users_file).map_err(
            |message| StartError::Users {
                path: settings.users_file.display().to_string(),
                message,
            },
        )?);
        let policy = Arc::new(LivePolicy::load(&settings.policy_file).map_err(StartError::Policy)?);
        let access = Arc::new(
            AccessControl::new(
                policy,
                settings.log_dir.clone(),
                settings.log_rotation,
                settings.pop3.allow_clear_text_without_tls,
            )
            .with_imap_plaintext_override(settings.imap.allow_clear_text_without_tls),
        );
        let acceptor = match &settings.tls {
            Some(paths) => Some(crate::tls::load_acceptor(&paths.cert, &paths.key)?),
            None => None,
        };
        let ntlm = settings.ntlm.enabled;
        let channel_bindings = match &settings.tls {
            Some(paths) if ntlm => Some(crate::tls::channel_bindings(&paths.cert)?),
            _ => None,
        };
        let ntlm_config = ntlm.then(|| Arc::new(settings.ntlm.acceptor_config()));
        let imap_ctx = if settings.imap.listen.is_some() || settings.imap.tls_listen.is_some() {
            let store = crate::imap::open_store(&settings.maildir_root, &settings.imap);
            let ctx = ImapContext::new(
                settings.imap.clone(),
                acceptor.is_some(),
                credentials.clone(),
                store,
                ntlm_config.clone(),
                channel_bindings.clone(),
                access.clone(),
            )
            .map_err(|e| StartError::ImapConfig(e.to_string()))?;
            Some(Arc::new(ctx))
        } else {
            None
        };
        let ctx = Pop3Context::new(
            settings.pop3.clone(),
            acceptor.is_some(),
            credentials.clone(),
            Arc::new(MaildirStore::new(&settings.maildir_root)),
            ntlm_config.clone(),
            channel_bindings.clone(),
            access.clone(),
        )
        .map_err(|e| StartError::Pop3Config(e.to_string()))?;
        let oa_ctx = crate::rpc_proxy::ProxyContext::new(
            settings.outlook_anywhere.clone(),
            access,
            credentials.clone(),
            ntlm_config,
            channel_bindings,
            &settings.log_dir,
            settings.log_rotation,
        );
        let oa_acceptor = match &settings.tls {
            Some(paths) if !settings.outlook_anywhere.tls13_session_tickets => Some(
                crate::tls::load_acceptor_with_tickets(&paths.cert, &paths.key, false)?,
            ),
            _ => acceptor.clone(),
        };
        let outlook_anywhere =
            crate::rpc_proxy::Endpoint::bind(Arc::new(oa_ctx), oa_acceptor).await?;
        let mut server = Self::bind_with(
            Arc::new(ctx),
            acceptor,
            settings.pop3.listen,
            settings.pop3.tls_listen,
        )
        .await?;
        if let Some(imap_ctx) = imap_ctx {
            server
                .bind_imap(imap_ctx, settings.imap.listen, settings.imap.tls_listen)
                .await?;
        }
        if let Some(endpoint) = &outlook_anywhere {
            // Autodiscover describes the listeners as bound (ephemeral ports included).
            let mut config = settings.autodiscover.clone();
            config.pop3 = crate::autodiscover::MailEndpoint::of_listeners(
                server.pop3_addr(),
                server.pop3s_addr(),
                server.acceptor.is_some(),
            );
            config.imap = crate::autodiscover::MailEndpoint::of_listeners(
                server.imap_addr(),
                server.imaps_addr(),
                server.acceptor.is_some(),
            );
            match (endpoint.https_addr(), endpoint.http_addr()) {
                (Some(a), _) => (config.https_port, config.https_tls) = (a.port(), true),
                (None, Some(a)) => (config.https_port, config.https_tls) = (a.port(), false),
                (None, None) => {}
            }
            let ad = crate::autodiscover::AutodiscoverContext::new(
                config,
                server.ctx.login.access.live_policy().clone(),
                credentials.clone(),
            );
            let _ = endpoint.context().autodiscover.set(ad);
        }
        if !settings.rpc_backend.listen.is_empty() {
            let listeners = crate::rpc_backend::bind(&settings.rpc_backend)
                .await
                .map_err(|(addr, source)| StartError::Bind { addr, source })?;
            let backend = crate::rpc_backend::RpcBackend::new(
                settings.rpc_backend.clone(),
                ntlm.then(|| Arc::new(settings.ntlm.acceptor_config())),
                credentials.clone(),
            );
            server.rpc_backend = Some((backend, listeners));
        }
        server.credentials = Some(credentials);
        server.outlook_anywhere = outlook_anywhere;
        Ok(server)
    }

    /// Adds IMAP (STARTTLS) and IMAPS listeners served with `ctx` (IMAPS only when a
    /// certificate is configured).
    pub async fn bind_imap(
        &mut self,
        ctx: Arc<ImapContext>,
        imap: Option<SocketAddr>,
        imaps: Option<SocketAddr>,
    ) -> Result<(), StartError> {
        if let Some(addr) = imap {
            self.imap = Some(bind_listener(addr).await?);
        }
        if let Some(addr) = imaps.filter(|_| self.acceptor.is_some()) {
            self.imaps = Some(bind_listener(addr).await?);
        }
        self.imap_ctx = Some(ctx);
        Ok(())
    }

    /// Binds listeners for an already assembled context (tests use this with their own
    /// stores).
    pub async fn bind_with(
        ctx: Arc<Pop3Context>,
        acceptor: Option<TlsAcceptor>,
        pop3: Option<SocketAddr>,
        pop3s: Option<SocketAddr>,
    ) -> Result<Server, StartError> {
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind { addr, source })
        };
        let pop3 = match pop3 {
            Some(a) => Some(bind(a).await?),
            None => None,
        };
        let pop3s = match pop3s {
            Some(a) if acceptor.is_some() => Some(bind(a).await?),
            _ => None,
        };
        Ok(Server {
            pop3,
            pop3s,
            imap: None,
            imaps: None,
            acceptor,
            ctx,
            imap_ctx: None,
            credentials: None,
            outlook_anywhere: None,
            rpc_backend: None,
        })
    }

    /// The plain POP3 (STLS) listener's address.
    pub fn pop3_addr(&self) -> Option<SocketAddr> {
        self.pop3.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The POP3S listener's address.
    pub fn pop3s_addr(&self) -> Option<SocketAddr> {
        self.pop3s.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The Outlook Anywhere HTTPS listener's address.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.outlook_anywhere.as_ref().and_then(|e| e.https_addr())
    }

    /// The Outlook Anywhere plain HTTP (SSL offloading) listener's address.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.outlook_anywhere.as_ref().and_then(|e| e.http_addr())
    }

    /// The Outlook Anywhere endpoint's live resource counts (connections, channels,
    /// backend sockets), when it is configured.
    pub fn rpc_proxy_stats(&self) -> Option<Arc<crate::rpc_proxy::ProxyStats>> {
        self.outlook_anywhere
            .as_ref()
            .map(|e| e.context().stats.clone())
    }

    /// The plain IMAP (STARTTLS) listener's address.
    pub fn imap_addr(&self) -> Option<SocketAddr> {
        self.imap.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The IMAPS listener's address.
    pub fn imaps_addr(&self) -> Option<SocketAddr> {
        self.imaps.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The built-in RPC backend's listener addresses.
    pub fn rpc_backend_addrs(&self) -> Vec<SocketAddr> {
        self.rpc_backend
            .iter()
            .flat_map(|(_, ls)| ls.iter().filter_map(|l| l.local_addr().ok()))
            .collect()
    }

    /// The bound addresses as a JSON object, for `--port-file`.
    pub fn addresses_json(&self) -> String {
        let field =
            |name: &str, addr: Option<SocketAddr>| addr.map(|a| format!("\"{name}\": \"{a}\""));
        let rpc: Vec<String> = self
            .rpc_backend_addrs()
            .iter()
            .map(|a| format!("\"{a}\""))
            .collect();
        let rpc = (!rpc.is_empty()).then(|| format!("\"rpc_backend\": [{}]", rpc.join(", ")));
        let fields: Vec<String> = [
            field("pop3", self.pop3_addr()),
            field("pop3s", self.pop3s_addr()),
            field("https", self.https_addr()),
            field("http", self.http_addr()),
            field("imap", self.imap_addr()),
            field("imaps", self.imaps_addr()),
            rpc,
        ]
        .into_iter()
        .flatten()
        .collect();
        format!("{{{}}}\n", fields.join(", "))
    }

    /// The shared POP3 context (its policy can be swapped while running).
    pub fn context(&self) -> &Arc<Pop3Context> {
        &self.ctx
    }

    /// The shared IMAP context, when IMAP is served.
    pub fn imap_context(&self) -> Option<&Arc<ImapContext>> {
        self.imap_ctx.as_ref()
    }

    /// Accepts connections until `shutdown` is cancelled; then asks every session to close
    /// and waits up to [`SHUTDOWN_GRACE`] for them. Meanwhile the policy and the users file
    /// are reloaded on SIGHUP and on change.
    pub async fn run(self, shutdown: CancellationToken) {
        let tracker = TaskTracker::new();
        let Server {
            pop3,
            pop3s,
            imap,
            imaps,
            acceptor,
            ctx,
            imap_ctx,
            credentials,
            outlook_anywhere,
            rpc_backend,
        } = self;
        if let Some(endpoint) = outlook_anywhere {
            tracker.spawn(endpoint.run(shutdown.clone()));
        }
        if let Some((backend, listeners)) = rpc_backend {
            for listener in listeners {
                tracker.spawn(crate::rpc_backend::serve(
                    backend.clone(),
                    listener,
                    tracker.clone(),
                    shutdown.clone(),
                ));
            }
        }
        let watcher = tokio::spawn(crate::live::watch(
            ctx.login.access.live_policy().clone(),
            credentials,
            shutdown.clone(),
        ));
        // Mail delivered into a watched folder's new/ by other programs reaches IDLE-ing
        // clients through the store's watcher.
        let mail_watcher = imap_ctx.as_ref().map(|c| {
            crate::imap_store::notify::spawn_watcher(
                c.store.clone(),
                crate::imap_store::notify::WATCH_INTERVAL,
                shutdown.clone(),
            )
        });
        loop {
            let (tcp, peer, implicit, is_imap) = tokio::select! {
                r = accept(pop3.as_ref()) => match r {
                    Ok((tcp, peer)) => (tcp, peer, false, false),
                    Err(e) => { accept_failed(e).await; continue; }
                },
                r = accept(pop3s.as_ref()) => match r {
                    Ok((tcp, peer)) => (tcp, peer, true, false),
                    Err(e) => { accept_failed(e).await; continue; }
                },
                r = accept(imap.as_ref()) => match r {
                    Ok((tcp, peer)) => (tcp, peer, false, true),
                    Err(e) => { accept_failed(e).await; continue; }
                },
                r = accept(imaps.as_ref()) => match r {
                    Ok((tcp, peer)) => (tcp, peer, true, true),
                    Err(e) => { accept_failed(e).await; continue; }
                },
                () = shutdown.cancelled() => break,
            };
            let acceptor = acceptor.clone();
            let shutdown = shutdown.clone();
            if is_imap {
                let Some(imap_ctx) = imap_ctx.clone() else {
                    continue;
                };
                tracker.spawn(async move {
                    let _ = tcp.set_nodelay(true);
                    serve_imap_tcp(imap_ctx, tcp, peer, implicit, acceptor, shutdown).await;
                });
                continue;
            }
            let ctx = ctx.clone();
            tracker.spawn(async move {
                let _ = tcp.set_nodelay(true);
                serve_tcp(ctx, tcp, peer, implicit, acceptor, shutdown).await;
            });
        }
        drop((pop3, pop3s, imap, imaps));
        watcher.abort();
        if let Some(w) = mail_watcher {
            w.abort();
        }
        tracker.close();
        tracing::info!(
            connections = tracker.len(),
            "shutting down: listeners closed, asking sessions to close"
        );
        if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                connections = tracker.len(),
                "sessions still open after the grace period; exiting anyway"
            );
        }
    }
}

async fn bind_listener(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

async fn accept(listener: Option<&TcpListener>) -> io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Out of file descriptors and the like: log, back off briefly, carry on.
async fn accept_failed(e: io::Error) {
    tracing::warn!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

async fn serve_tcp(
    ctx: Arc<Pop3Context>,
    tcp: TcpStream,
    peer: SocketAddr,
    implicit_tls: bool,
    acceptor: Option<TlsAcceptor>,
    shutdown: CancellationToken,
) {
    let listener = if implicit_tls { "pop3s" } else { "pop3" };
    let access = &ctx.login.access;
    let tls = implicit_tls.then_some(acceptor.as_ref());
    let opened = open_tcp(access, Protocol::Pop3, listener, tcp, peer, tls).await;
    let Some((stream, endpoints, admitted)) = opened else {
        return;
    };
    match admitted {
        Ok(slot) => {
            let ending = serve_pop3(ctx, stream, endpoints, Some(slot), acceptor, shutdown).await;
            log_ending(peer, listener, ending);
        }
        Err(denial) => refuse(&ctx, stream, endpoints, &denial).await,
    }
}

/// Answers a connection the policy refused with `-ERR [code] text` (the library's code and
/// client-safe text, encoded by pop3-proto) instead of the greeting, then closes it.
async fn refuse<T: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Pop3Context,
    stream: MaybeTls<T>,
    endpoints: Endpoints,
    denial: &Denial,
) {
    tracing::info!(peer = %endpoints.remote, reason = %denial, "POP3 connection refused by policy");
    let code = match denial.pop3_code() {
        "IN-USE" => pop3_proto::ResponseCode::InUse,
        "SYS/PERM" => pop3_proto::ResponseCode::SysPerm,
        "AUTH" => pop3_proto::ResponseCode::Auth,
        "LOGIN-DELAY" => pop3_proto::ResponseCode::LoginDelay,
        _ => pop3_proto::ResponseCode::SysTemp,
    };
    let mut line = Vec::new();
    StatusLine::err_with(code, denial.message.clone()).encode(&mut line);
    send_refusal(
        &ctx.login.access,
        Protocol::Pop3,
        "POP3",
        stream,
        endpoints,
        &line,
    )
    .await;
}

/// Sends `line` (a refusal instead of the greeting, recorded in the protocol log when that
/// is on, the connection named `context`), then closes the stream (5 s at most).
async fn send_refusal<T: AsyncRead + AsyncWrite + Unpin>(
    access: &AccessControl,
    protocol: Protocol,
    context: &str,
    mut stream: MaybeTls<T>,
    endpoints: Endpoints,
    line: &[u8],
) {
    if let Some(log) = access.protocol_log(protocol) {
        let mut log = SessionLog::new(
            log,
            endpoints.local.to_string(),
            endpoints.remote.to_string(),
        );
        log.record(LogEvent::Connected, "", context);
        let text = String::from_utf8_lossy(line);
        log.record(
            LogEvent::Sent,
            text.trim_end(),
            "connection refused by policy",
        );
        log.record(LogEvent::Disconnected, "", "refused");
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        stream.write_all(line).await?;
        stream.shutdown().await
    })
    .await;
}

/// Serves one POP3 connection on any stream (tests pass in-memory pipes).
///
/// `stream` is already TLS for implicit TLS; `stls` is the acceptor for an STLS upgrade;
/// `slot` is the connection's place in the POP3 connection tracker (released when the
/// session ends).
pub async fn serve_pop3<T>(
    ctx: Arc<Pop3Context>,
    stream: MaybeTls<T>,
    endpoints: Endpoints,
    slot: Option<Slot>,
    stls: Option<TlsAcceptor>,
    shutdown: CancellationToken,
) -> Ending
where
    T: AsyncRead + AsyncWrite + Unpin + Send,
{
    let options = SessionOptions {
        tls_active: stream.is_tls(),
        apop_timestamp: None,
    };
    let config = match ctx.session_config() {
        Ok(c) => c,
        Err(e) => {
            // The policy's ranges are pop3-proto's and an unsendable banner falls back to
            // the default greeting, so this is not expected; should a reloaded policy still
            // produce invalid settings, the connection gets working defaults.
            tracing::error!(error = %e, "POP3 settings of the policy in force are invalid; using defaults");
            Arc::new(pop3_proto::ServerConfig::default())
        }
    };
    let mut app = Pop3App::new(ctx, endpoints, slot);
    // The protocol log is written from the session's trace, which then includes the
    // commands the session answers itself (STAT, LIST, refusals, ...); other connections
    // keep sharing the configuration without it.
    let config = if app.logs_protocol() && !config.trace {
        let mut traced = (*config).clone();
        traced.trace = true;
        Arc::new(traced)
    } else {
        config
    };
    let session = ServerSession::new(config, driver::now(), options);
    let context = if stream.is_tls() { "POP3S" } else { "POP3" };
    app.log(LogEvent::Connected, "", context);
    driver::drive(session, app, stream, stls, shutdown).await
}

/// Runs the TLS handshake of an implicit-TLS connection (bounded by
/// [`TLS_HANDSHAKE_TIMEOUT`]); `None` when it failed (logged).
async fn tls_handshake(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: Option<&TlsAcceptor>,
) -> Option<MaybeTls<TcpStream>> {
    let acc = acceptor?;
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acc.accept(tcp)).await {
        Ok(Ok(tls)) => Some(MaybeTls::Tls(Box::new(tls))),
        Ok(Err(e)) => {
            tracing::info!(%peer, error = %e, "TLS handshake failed; connection closed");
            None
        }
        Err(_) => {
            tracing::info!(%peer, "TLS handshake timed out; connection closed");
            None
        }
    }
}

async fn serve_imap_tcp(
    ctx: Arc<ImapContext>,
    tcp: TcpStream,
    peer: SocketAddr,
    implicit_tls: bool,
    acceptor: Option<TlsAcceptor>,
    shutdown: CancellationToken,
) {
    let listener = if implicit_tls { "imaps" } else { "imap" };
    let access = &ctx.login.access;
    let tls = implicit_tls.then_some(acceptor.as_ref());
    let opened = open_tcp(access, Protocol::Imap4, listener, tcp, peer, tls).await;
    let Some((stream, endpoints, admitted)) = opened else {
        return;
    };
    match admitted {
        Ok(slot) => {
            let ending = serve_imap(ctx, stream, endpoints, Some(slot), acceptor, shutdown).await;
            log_ending(peer, listener, ending);
        }
        Err(denial) => refuse_imap(&ctx, stream, endpoints, &denial).await,
    }
}

/// A new connection on `listener`: logged, admitted by the policy's connection limits for
/// `protocol` before any TLS handshake (so the limits also bound handshake work), then the
/// handshake when `implicit_tls` holds an acceptor (`Some(None)`: implicit TLS without a
/// certificate). `None` when the handshake failed (logged).
async fn open_tcp(
    access: &Arc<AccessControl>,
    protocol: Protocol,
    listener: &str,
    tcp: TcpStream,
    peer: SocketAddr,
    implicit_tls: Option<Option<&TlsAcceptor>>,
) -> Option<(MaybeTls<TcpStream>, Endpoints, Result<Slot, Denial>)> {
    tracing::info!(%peer, listener, "connection opened");
    let endpoints = Endpoints {
        remote: peer,
        local: tcp.local_addr().unwrap_or(peer),
    };
    let admitted = access.admit(protocol, peer.ip(), implicit_tls.is_some());
    let stream = match implicit_tls {
        Some(acceptor) => tls_handshake(tcp, peer, acceptor).await?,
        None => MaybeTls::Plain(tcp),
    };
    Some((stream, endpoints, admitted))
}

/// The server log's line for how a connection on `listener` ended.
fn log_ending(peer: SocketAddr, listener: &str, ending: Ending) {
    match ending {
        Ending::Closed => tracing::info!(%peer, listener, "connection closed"),
        Ending::Broken(why) => {
            tracing::info!(%peer, listener, reason = %why, "connection closed abruptly");
        }
    }
}

/// Answers an IMAP connection the policy refused with `* BYE [code] text` (RFC 9051 §7.1.5:
/// a greeting may be BYE; the code from the library's mapping, UNAVAILABLE for connection
/// limits) instead of the greeting, then closes it.
async fn refuse_imap<T: AsyncRead + AsyncWrite + Unpin>(
    ctx: &ImapContext,
    stream: MaybeTls<T>,
    endpoints: Endpoints,
    denial: &Denial,
) {
    use cas_imap_proto::encode::to_bytes;
    use cas_imap_proto::response::{Response, StatusResponse, Text};
    tracing::info!(peer = %endpoints.remote, reason = %denial, "IMAP connection refused by policy");
    let message: String = denial
        .message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let message = message.trim_start_matches('[');
    let text = Text::new(message.as_bytes())
        .unwrap_or_else(|_| Text::new_unchecked(&b"Connection refused"[..]));
    let code = crate::imap::denial_code(denial);
    let line = to_bytes(&Response::Status(StatusResponse::bye(Some(code), text)));
    send_refusal(
        &ctx.login.access,
        Protocol::Imap4,
        "IMAP4",
        stream,
        endpoints,
        &line,
    )
    .await;
}

/// Serves one IMAP connection on any stream (tests pass in-memory pipes).
///
/// `stream` is already TLS for implicit TLS; `starttls` is the acceptor for a STARTTLS
/// upgrade; `slot` is the connection's place in the IMAP4 connection tracker (released when
/// the session ends).
pub async fn serve_imap<T>(
    ctx: Arc<ImapContext>,
    stream: MaybeTls<T>,
    endpoints: Endpoints,
    slot: Option<Slot>,
    starttls: Option<TlsAcceptor>,
    shutdown: CancellationToken,
) -> Ending
where
    T: AsyncRead + AsyncWrite + Unpin + Send,
{
    let options = cas_imap_proto::server::SessionOptions {
        tls_active: stream.is_tls(),
        preauth_user: None,
    };
    let config = match ctx.session_config() {
        Ok(c) => c,
        Err(e) => {
            // The policy's ranges fit the session's and an unsendable banner falls back to
            // the default greeting, so this is not expected; should a reloaded policy still
            // produce invalid settings, the connection gets working defaults.
            tracing::error!(error = %e, "IMAP settings of the policy in force are invalid; using defaults");
            Arc::new(cas_imap_proto::server::ServerConfig {
                tls_available: ctx.tls_available,
                capabilities: crate::imap::capabilities(),
                ..Default::default()
            })
        }
    };
    let mut app = ImapApp::new(ctx, endpoints, slot);
    // The protocol log is written from the session's trace; other connections keep sharing
    // the configuration without it.
    let config = if app.logs_protocol() && !config.trace {
        let mut traced = (*config).clone();
        traced.trace = true;
        Arc::new(traced)
    } else {
        config
    };
    let session = cas_imap_proto::server::ServerSession::new(config, driver::now(), options);
    let context = if stream.is_tls() { "IMAPS" } else { "IMAP4" };
    app.log(LogEvent::Connected, "", context);
    driver::drive(session, app, stream, starttls, shutdown).await
}
