//! Listeners, per-connection tasks and graceful shutdown.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pop3_proto::{ServerSession, SessionOptions};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Settings;
use crate::driver::{self, Ending, MaybeTls, TLS_HANDSHAKE_TIMEOUT};
use crate::maildir::MaildirStore;
use crate::pop3::{Pop3App, Pop3Context, server_config};

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
    acceptor: Option<TlsAcceptor>,
    ctx: Arc<Pop3Context>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("pop3", &self.pop3_addr())
            .field("pop3s", &self.pop3s_addr())
            .finish_non_exhaustive()
    }
}

/// Loads the credential store from the passwd-file.
pub fn load_credentials(path: &Path) -> Result<cas_auth::FileCredentialStore, StartError> {
    let err = |message: String| StartError::Users {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    cas_auth::FileCredentialStore::parse(&text).map_err(|e| err(e.to_string()))
}

impl Server {
    /// Loads users and TLS material and binds the listeners.
    pub async fn bind(settings: &Settings) -> Result<Server, StartError> {
        let credentials = load_credentials(&settings.users_file)?;
        let acceptor = match &settings.tls {
            Some(paths) => Some(crate::tls::load_acceptor(&paths.cert, &paths.key)?),
            None => None,
        };
        let ntlm = settings.ntlm.enabled;
        let config = server_config(&settings.pop3, acceptor.is_some(), ntlm)
            .map_err(|e| StartError::Pop3Config(e.to_string()))?;
        let channel_bindings = match &settings.tls {
            Some(paths) if ntlm => Some(crate::tls::channel_bindings(&paths.cert)?),
            _ => None,
        };
        let ctx = Arc::new(Pop3Context {
            config: Arc::new(config),
            credentials: Arc::new(credentials),
            store: Arc::new(MaildirStore::new(&settings.maildir_root)),
            ntlm: ntlm.then(|| Arc::new(settings.ntlm.acceptor_config())),
            channel_bindings,
        });
        Self::bind_with(
            ctx,
            acceptor,
            settings.pop3.listen,
            settings.pop3.tls_listen,
        )
        .await
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
            acceptor,
            ctx,
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

    /// The bound addresses as a JSON object, for `--port-file`.
    pub fn addresses_json(&self) -> String {
        let field =
            |name: &str, addr: Option<SocketAddr>| addr.map(|a| format!("\"{name}\": \"{a}\""));
        let fields: Vec<String> = [
            field("pop3", self.pop3_addr()),
            field("pop3s", self.pop3s_addr()),
        ]
        .into_iter()
        .flatten()
        .collect();
        format!("{{{}}}\n", fields.join(", "))
    }

    /// Accepts connections until `shutdown` is cancelled; then asks every session to close
    /// and waits up to [`SHUTDOWN_GRACE`] for them.
    pub async fn run(self, shutdown: CancellationToken) {
        let tracker = TaskTracker::new();
        let Server {
            pop3,
            pop3s,
            acceptor,
            ctx,
        } = self;
        loop {
            let (tcp, peer, implicit) = tokio::select! {
                r = accept(pop3.as_ref()) => match r {
                    Ok((tcp, peer)) => (tcp, peer, false),
                    Err(e) => { accept_failed(e).await; continue; }
                },
                r = accept(pop3s.as_ref()) => match r {
                    Ok((tcp, peer)) => (tcp, peer, true),
                    Err(e) => { accept_failed(e).await; continue; }
                },
                () = shutdown.cancelled() => break,
            };
            let ctx = ctx.clone();
            let acceptor = acceptor.clone();
            let shutdown = shutdown.clone();
            tracker.spawn(async move {
                let _ = tcp.set_nodelay(true);
                serve_tcp(ctx, tcp, peer, implicit, acceptor, shutdown).await;
            });
        }
        drop((pop3, pop3s));
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
    tracing::info!(%peer, listener, "connection opened");
    let stream = if implicit_tls {
        let Some(acc) = acceptor.as_ref() else {
            return;
        };
        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acc.accept(tcp)).await {
            Ok(Ok(tls)) => MaybeTls::Tls(Box::new(tls)),
            Ok(Err(e)) => {
                tracing::info!(%peer, error = %e, "TLS handshake failed; connection closed");
                return;
            }
            Err(_) => {
                tracing::info!(%peer, "TLS handshake timed out; connection closed");
                return;
            }
        }
    } else {
        MaybeTls::Plain(tcp)
    };
    let ending = serve_pop3(ctx, stream, peer.to_string(), acceptor, shutdown).await;
    match ending {
        Ending::Closed => tracing::info!(%peer, listener, "connection closed"),
        Ending::Broken(why) => {
            tracing::info!(%peer, listener, reason = %why, "connection closed abruptly");
        }
    }
}

/// Serves one POP3 connection on any stream (tests pass in-memory pipes).
///
/// `stream` is already TLS for implicit TLS; `stls` is the acceptor for an STLS upgrade.
pub async fn serve_pop3<T>(
    ctx: Arc<Pop3Context>,
    stream: MaybeTls<T>,
    peer: String,
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
    let session = ServerSession::new(ctx.config.clone(), driver::now(), options);
    let app = Pop3App::new(ctx, peer);
    driver::drive(session, app, stream, stls, shutdown).await
}
