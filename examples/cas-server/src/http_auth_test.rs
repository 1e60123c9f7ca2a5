//! A small HTTP(S) endpoint that only authenticates: a **test vehicle** for HTTP NTLM,
//! Negotiate and Basic (binary `cas-http-auth-test`) until the RPC proxy adds the real
//! `/rpc/rpcproxy.dll`.
//!
//! Any method, any path, HTTP/1.1 with keep-alive, plain HTTP and HTTPS (the same
//! certificate as POP3S). Each TCP connection gets its own
//! [`HttpAuthenticator`], because the NTLM handshake is
//! bound to one connection; all authentication logic is cas-auth's. A request without
//! credentials gets `401` with `WWW-Authenticate: Negotiate`, `NTLM` and (over TLS, or with
//! `--basic-without-tls`) `Basic realm="cas-rs", charset="UTF-8"`; a finished handshake gets
//! `200` with a body naming the user. After an NTLM or Negotiate success the connection
//! stays authenticated, as with IIS. Over TLS the certificate's `tls-server-end-point`
//! channel bindings are checked according to the Extended Protection setting.
//!
//! Request heads are parsed with `httparse` (at most [`MAX_HEAD`] bytes and
//! [`MAX_HEADERS`] headers); `Content-Length` bodies up to [`MAX_BODY`] are read and
//! discarded; chunked bodies are refused. Credentials and tokens are never logged.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cas_auth::CredentialStore;
use cas_auth::channel_binding::ChannelBindings;
use cas_auth::http::{HttpAuthConfig, HttpAuthOutcome, HttpAuthenticator};
use cas_auth::ntlm::{FileTime, NtlmConfig};
use clap::Parser;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::config::ExtendedProtectionSetting;

/// Longest request head (request line and headers), in bytes.
pub const MAX_HEAD: usize = 16 * 1024;
/// Most headers in one request.
pub const MAX_HEADERS: usize = 64;
/// Longest `Content-Length` body read (and discarded).
pub const MAX_BODY: u64 = 1024 * 1024;
/// How long a connection may wait between requests or inside one.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The Basic realm.
pub const REALM: &str = "cas-rs";

/// Command-line flags of `cas-http-auth-test`.
#[derive(Parser, Debug, Clone, Default)]
#[command(
    name = "cas-http-auth-test",
    version,
    about = "Test endpoint for HTTP NTLM / Negotiate / Basic authentication (cas-rs)"
)]
pub struct Args {
    /// Config file (TOML), as for cas-server: users file, `[tls]` and `[ntlm]` are used.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Data directory, as for cas-server (demo data is made when missing).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Plain HTTP listener, IP:PORT.
    #[arg(long, value_name = "ADDR")]
    pub http_listen: Option<SocketAddr>,
    /// HTTPS listener, IP:PORT (needs the `[tls]` certificate).
    #[arg(long, value_name = "ADDR")]
    pub https_listen: Option<SocketAddr>,
    /// Channel-binding policy; overrides `[ntlm] extended_protection`.
    #[arg(long, value_enum, value_name = "POLICY")]
    pub extended_protection: Option<ExtendedProtectionSetting>,
    /// Also offer Basic on plain HTTP (it sends the password in clear).
    #[arg(long)]
    pub basic_without_tls: bool,
}

/// What every connection shares.
pub struct HttpTestContext {
    credentials: Arc<dyn CredentialStore>,
    plain: Arc<HttpAuthConfig>,
    tls: Arc<HttpAuthConfig>,
    channel_bindings: Option<ChannelBindings>,
}

impl std::fmt::Debug for HttpTestContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTestContext").finish_non_exhaustive()
    }
}

impl HttpTestContext {
    /// NTLM and Negotiate when `ntlm` is given; Basic over TLS (and without TLS when
    /// `basic_without_tls`); `channel_bindings` for TLS connections.
    pub fn new(
        credentials: Arc<dyn CredentialStore>,
        ntlm: Option<Arc<NtlmConfig>>,
        basic_without_tls: bool,
        channel_bindings: Option<ChannelBindings>,
    ) -> HttpTestContext {
        let mut base = HttpAuthConfig::new();
        if let Some(ntlm) = ntlm {
            base = base.with_ntlm(ntlm).with_negotiate(true);
        }
        let tls = base.clone().with_basic(REALM);
        let plain = if basic_without_tls { tls.clone() } else { base };
        HttpTestContext {
            credentials,
            plain: Arc::new(plain),
            tls: Arc::new(tls),
            channel_bindings,
        }
    }
}

/// The parts of a request head this endpoint uses.
struct Head {
    method: String,
    authorization: Option<Vec<u8>>,
    content_length: u64,
    chunked: bool,
    keep_alive: bool,
}

/// Why a request head could not be read.
enum HeadError {
    Io(io::Error),
    TooLarge,
    Malformed,
}

/// Reads one request head into `buf` (which keeps any bytes after it). `Ok(None)`: the
/// peer closed between requests.
async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> Result<Option<Head>, HeadError> {
    loop {
        if !buf.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let head = head_of(&req)?;
                    buf.drain(..len);
                    return Ok(Some(head));
                }
                Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
                    return Err(HeadError::TooLarge);
                }
                Ok(httparse::Status::Partial) => {}
                Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
                Err(_) => return Err(HeadError::Malformed),
            }
        }
        let mut chunk = [0u8; 4096];
        let n = match tokio::time::timeout(IDLE_TIMEOUT, stream.read(&mut chunk)).await {
            Ok(r) => r.map_err(HeadError::Io)?,
            Err(_) => return Err(HeadError::Io(io::ErrorKind::TimedOut.into())),
        };
        if n == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(HeadError::Io(io::ErrorKind::UnexpectedEof.into()))
            };
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn head_of(req: &httparse::Request<'_, '_>) -> Result<Head, HeadError> {
    let version = req.version.unwrap_or(1);
    let mut head = Head {
        method: req.method.unwrap_or("").to_owned(),
        authorization: None,
        content_length: 0,
        chunked: false,
        keep_alive: version >= 1,
    };
    let mut seen_length = false;
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("authorization") {
            // Only one Authorization is meaningful; two are a malformed request.
            if head.authorization.replace(h.value.to_vec()).is_some() {
                return Err(HeadError::Malformed);
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or(HeadError::Malformed)?;
            if seen_length && n != head.content_length {
                return Err(HeadError::Malformed);
            }
            seen_length = true;
            head.content_length = n;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = true;
        } else if name.eq_ignore_ascii_case("connection") {
            let value = String::from_utf8_lossy(h.value).to_ascii_lowercase();
            for token in value.split(',').map(str::trim) {
                match token {
                    "close" => head.keep_alive = false,
                    "keep-alive" => head.keep_alive = true,
                    _ => {}
                }
            }
        }
    }
    Ok(head)
}

/// Reads and drops `len` body bytes, first from `buf`.
async fn discard_body<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    len: u64,
) -> io::Result<()> {
    let from_buf = usize::try_from(len).unwrap_or(usize::MAX).min(buf.len());
    buf.drain(..from_buf);
    let mut left = len - from_buf as u64;
    let mut chunk = [0u8; 8192];
    while left > 0 {
        let want = usize::try_from(left)
            .unwrap_or(chunk.len())
            .min(chunk.len());
        let n = tokio::time::timeout(IDLE_TIMEOUT, stream.read(&mut chunk[..want]))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        left -= n as u64;
    }
    Ok(())
}

/// A response: status line, headers, `Content-Length`, body (omitted for HEAD).
struct Response {
    status: u16,
    reason: &'static str,
    www_authenticate: Vec<String>,
    body: String,
}

impl Response {
    fn new(status: u16, reason: &'static str, body: impl Into<String>) -> Response {
        Response {
            status,
            reason,
            www_authenticate: Vec::new(),
            body: body.into(),
        }
    }

    fn unauthorized(www_authenticate: Vec<String>) -> Response {
        Response {
            www_authenticate,
            ..Response::new(401, "Unauthorized", "")
        }
    }

    fn encode(&self, head_only: bool, close: bool) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} {}\r\n", self.status, self.reason);
        for value in &self.www_authenticate {
            out.push_str("WWW-Authenticate: ");
            out.push_str(value);
            out.push_str("\r\n");
        }
        if !self.body.is_empty() {
            out.push_str("Content-Type: text/plain; charset=utf-8\r\n");
        }
        out.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        if close {
            out.push_str("Connection: close\r\n");
        }
        out.push_str("\r\n");
        if !head_only {
            out.push_str(&self.body);
        }
        out.into_bytes()
    }
}

/// Serves one connection until the peer closes, an error, or a response that closes it.
pub async fn serve_connection<S>(ctx: Arc<HttpTestContext>, mut stream: S, tls: bool, peer: String)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let config = if tls { &ctx.tls } else { &ctx.plain };
    let mut auth = HttpAuthenticator::new(config.clone());
    if let (true, Some(cb)) = (tls, &ctx.channel_bindings) {
        auth = auth.with_channel_bindings(cb.clone());
    }
    let mut auth = Some(auth);
    let mut connection_user: Option<String> = None;
    let mut buf = Vec::with_capacity(4096);
    loop {
        let head = match read_head(&mut stream, &mut buf).await {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(HeadError::Io(e)) => {
                tracing::debug!(%peer, error = %e, "HTTP connection ended");
                return;
            }
            Err(HeadError::TooLarge) => {
                let r = Response::new(431, "Request Header Fields Too Large", "");
                let _ = stream.write_all(&r.encode(false, true)).await;
                return;
            }
            Err(HeadError::Malformed) => {
                let r = Response::new(400, "Bad Request", "");
                let _ = stream.write_all(&r.encode(false, true)).await;
                return;
            }
        };
        let head_only = head.method.eq_ignore_ascii_case("HEAD");
        if head.chunked || head.content_length > MAX_BODY {
            let r = if head.chunked {
                Response::new(501, "Not Implemented", "chunked bodies are not supported\n")
            } else {
                Response::new(413, "Content Too Large", "")
            };
            let _ = stream.write_all(&r.encode(head_only, true)).await;
            return;
        }
        if let Err(e) = discard_body(&mut stream, &mut buf, head.content_length).await {
            tracing::debug!(%peer, error = %e, "HTTP body unreadable");
            return;
        }

        let response = match head.authorization {
            None => match &connection_user {
                Some(user) => ok(user, "connection"),
                None => Response::unauthorized(challenges(&auth)),
            },
            Some(value) => {
                let Some(mut authenticator) = auth.take() else {
                    return;
                };
                let mut challenge = [0u8; 8];
                if let Err(e) = getrandom::getrandom(&mut challenge) {
                    tracing::error!(error = %e, "no randomness for the NTLM challenge");
                    let r = Response::new(500, "Internal Server Error", "");
                    let _ = stream.write_all(&r.encode(head_only, true)).await;
                    return;
                }
                let store = ctx.credentials.clone();
                // Basic verifies an Argon2 hash: keep it off the async workers.
                let joined = tokio::task::spawn_blocking(move || {
                    let now = FileTime::from(SystemTime::now());
                    let outcome =
                        authenticator.handle_authorization(store.as_ref(), &value, challenge, now);
                    (authenticator, outcome)
                })
                .await;
                let Ok((authenticator, outcome)) = joined else {
                    tracing::error!(%peer, "authentication task panicked");
                    return;
                };
                auth = Some(authenticator);
                match outcome {
                    HttpAuthOutcome::Continue { www_authenticate } => {
                        Response::unauthorized(vec![www_authenticate])
                    }
                    HttpAuthOutcome::Authenticated {
                        user,
                        scheme,
                        www_authenticate,
                        ..
                    } => {
                        tracing::info!(%peer, user = %user, scheme = scheme.name(), "HTTP login succeeded");
                        if scheme != cas_auth::http::AuthScheme::Basic {
                            connection_user = Some(user.clone());
                        }
                        let mut r = ok(&user, scheme.name());
                        r.www_authenticate.extend(www_authenticate);
                        r
                    }
                    HttpAuthOutcome::Rejected { error } => {
                        tracing::info!(%peer, reason = %error, "HTTP login failed");
                        connection_user = None;
                        if error.is_temporary() {
                            Response::new(503, "Service Unavailable", "")
                        } else {
                            Response::unauthorized(challenges(&auth))
                        }
                    }
                    _ => Response::unauthorized(challenges(&auth)),
                }
            }
        };
        tracing::debug!(%peer, method = %head.method, status = response.status, "HTTP request");
        let close = !head.keep_alive;
        if let Err(e) = stream.write_all(&response.encode(head_only, close)).await {
            tracing::debug!(%peer, error = %e, "HTTP write failed");
            return;
        }
        if close {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

fn challenges(auth: &Option<HttpAuthenticator>) -> Vec<String> {
    auth.as_ref().map(|a| a.challenges()).unwrap_or_default()
}

fn ok(user: &str, scheme: &str) -> Response {
    Response::new(200, "OK", format!("authenticated as {user} ({scheme})\n"))
}

/// Accepts connections on the listeners until `shutdown` is cancelled.
pub async fn serve(
    ctx: Arc<HttpTestContext>,
    http: Option<TcpListener>,
    https: Option<(TcpListener, TlsAcceptor)>,
    shutdown: CancellationToken,
) {
    async fn accept(l: Option<&TcpListener>) -> io::Result<(tokio::net::TcpStream, SocketAddr)> {
        match l {
            Some(l) => l.accept().await,
            None => std::future::pending().await,
        }
    }
    let tracker = tokio_util::task::TaskTracker::new();
    loop {
        let (tcp, peer, tls) = tokio::select! {
            r = accept(http.as_ref()) => match r {
                Ok((tcp, peer)) => (tcp, peer, false),
                Err(_) => { tokio::time::sleep(Duration::from_millis(100)).await; continue; }
            },
            r = accept(https.as_ref().map(|(l, _)| l)) => match r {
                Ok((tcp, peer)) => (tcp, peer, true),
                Err(_) => { tokio::time::sleep(Duration::from_millis(100)).await; continue; }
            },
            () = shutdown.cancelled() => break,
        };
        let ctx = ctx.clone();
        let acceptor = https.as_ref().map(|(_, a)| a.clone());
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let _ = tcp.set_nodelay(true);
            let peer = peer.to_string();
            let serve = async {
                match (tls, acceptor) {
                    (true, Some(acceptor)) => {
                        match tokio::time::timeout(IDLE_TIMEOUT, acceptor.accept(tcp)).await {
                            Ok(Ok(stream)) => serve_connection(ctx, stream, true, peer).await,
                            _ => tracing::debug!(%peer, "TLS handshake failed"),
                        }
                    }
                    _ => serve_connection(ctx, tcp, false, peer).await,
                }
            };
            tokio::select! {
                () = serve => {}
                () = shutdown.cancelled() => {}
            }
        });
    }
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(1), tracker.wait()).await;
}

/// Errors that stop the endpoint from starting.
#[derive(Debug, thiserror::Error)]
pub enum HttpTestError {
    /// Config, users or TLS.
    #[error(transparent)]
    Server(#[from] crate::Error),
    /// HTTPS asked for without a certificate.
    #[error("--https-listen needs a certificate ([tls] in the config)")]
    NoCertificate,
    /// Neither listener given.
    #[error("give --http-listen and/or --https-listen")]
    NoListener,
}

/// Loads the users, certificate and `[ntlm]` settings as cas-server does, binds the
/// listeners, prints them, and serves until `shutdown` is cancelled.
pub async fn run(args: Args, shutdown: CancellationToken) -> Result<(), HttpTestError> {
    if args.http_listen.is_none() && args.https_listen.is_none() {
        return Err(HttpTestError::NoListener);
    }
    let cli = crate::config::Cli {
        config: args.config.clone(),
        data_dir: args.data_dir.clone(),
        ..crate::config::Cli::default()
    };
    let mut settings = crate::prepare(&cli)?;
    if let Some(ep) = args.extended_protection {
        settings.ntlm.extended_protection = ep;
    }
    let start = |e: crate::server::StartError| HttpTestError::Server(e.into());
    let credentials = crate::server::load_credentials(&settings.users_file).map_err(start)?;
    let ntlm = settings
        .ntlm
        .enabled
        .then(|| Arc::new(settings.ntlm.acceptor_config()));
    let (acceptor, bindings) = match &settings.tls {
        Some(paths) => (
            Some(crate::tls::load_acceptor(&paths.cert, &paths.key).map_err(|e| start(e.into()))?),
            Some(crate::tls::channel_bindings(&paths.cert).map_err(|e| start(e.into()))?),
        ),
        None => (None, None),
    };
    let ctx = Arc::new(HttpTestContext::new(
        Arc::new(credentials),
        ntlm,
        args.basic_without_tls,
        bindings,
    ));
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| start(crate::server::StartError::Bind { addr, source }))
    };
    let http = match args.http_listen {
        Some(a) => Some(bind(a).await?),
        None => None,
    };
    let https = match (args.https_listen, acceptor) {
        (Some(a), Some(acceptor)) => Some((bind(a).await?, acceptor)),
        (Some(_), None) => return Err(HttpTestError::NoCertificate),
        (None, _) => None,
    };
    let addr = |l: Option<&TcpListener>| l.and_then(|l| l.local_addr().ok());
    tracing::info!(
        http = ?addr(http.as_ref()),
        https = ?addr(https.as_ref().map(|(l, _)| l)),
        extended_protection = ?settings.ntlm.extended_protection,
        "HTTP auth test endpoint listening"
    );
    serve(ctx, http, https, shutdown).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn heads_are_parsed_and_bounded() {
        let mut buf = Vec::new();
        let mut input: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: NTLM abc\r\nContent-Length: 3\r\n\r\nxyzGET";
        let head = read_head(&mut input, &mut buf)
            .await
            .ok()
            .flatten()
            .unwrap();
        assert_eq!(head.authorization.as_deref(), Some(&b"NTLM abc"[..]));
        assert_eq!(head.content_length, 3);
        assert!(head.keep_alive);
        let mut empty: &[u8] = b"";
        discard_body(&mut empty, &mut buf, 3).await.unwrap();
        assert_eq!(buf, b"GET");

        let mut input: &[u8] = b"GET / HTTP/1.0\r\n\r\n";
        let head = read_head(&mut input, &mut Vec::new())
            .await
            .ok()
            .flatten()
            .unwrap();
        assert!(!head.keep_alive);

        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "A: b\r\n".repeat(MAX_HEADERS + 1)
        );
        let mut input = many.as_bytes();
        assert!(matches!(
            read_head(&mut input, &mut Vec::new()).await,
            Err(HeadError::TooLarge)
        ));
        let big = format!("GET / HTTP/1.1\r\nA: {}", "b".repeat(MAX_HEAD));
        let mut input = big.as_bytes();
        assert!(matches!(
            read_head(&mut input, &mut Vec::new()).await,
            Err(HeadError::TooLarge)
        ));
        let mut input: &[u8] = b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n";
        assert!(matches!(
            read_head(&mut input, &mut Vec::new()).await,
            Err(HeadError::Malformed)
        ));
    }
}
