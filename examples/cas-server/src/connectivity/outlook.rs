//! `cas-server test-outlookconnectivity`: Outlook Anywhere checked from the outside, step
//! by step, as Exchange's `Test-OutlookConnectivity` and the Remote Connectivity
//! Analyzer's "Outlook Connectivity" test do.
//!
//! Steps, each shown with ✓/✗ and its time:
//!
//! 1. DNS resolution, TCP connect and TLS handshake to the Autodiscover host (the target).
//! 2. `Autodiscover: HTTP authentication`: the anonymous POST must be refused with `401`;
//!    then NTLM (or Negotiate carrying NTLM, or Basic) on the same connection.
//! 3. `Autodiscover (POX)`: the Outlook request for the user's address; the reply's `EXPR`
//!    section gives the RPC proxy (`Server`, `SSL`, `AuthPackage`), `EXCH` the RPC server.
//! 4. DNS, TCP and TLS to the RPC proxy when it is another host than the Autodiscover one.
//! 5. `HTTP auth probe`: an anonymous `RPC_IN_DATA /rpc/rpcproxy.dll` must get `401` with
//!    the scheme Autodiscover named.
//! 6. `RPC proxy: HTTP authentication`: the OUT channel of a virtual connection to the
//!    first RPC port authenticates and gets `200`.
//! 7. `RPC over HTTP handshake`: the IN channel opens and CONN/A1 … C2 completes
//!    (`rpch_framing::channel::Client`).
//! 8. `RPC endpoint SERVER:PORT`: bind to the DCE/RPC management interface (MGMT) and call
//!    `inq_if_ids`, on every port of `--rpc-ports` (a virtual connection each).
//! 9. `RPC ping`: MGMT `is_server_listening` on the first port's connection.
//!
//! HTTP authentication is per TCP connection (NTLM is connection-bound), so every channel
//! runs its own handshake. NTLM carries channel bindings of the server certificate over TLS
//! (Extended Protection). Basic is used only over TLS unless `--allow-clear-text`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use cas_auth::channel_binding::ChannelBindings;
use cas_auth::ntlm::{FileTime, NtlmCredentials, NtlmInitiator};
use clap::{Args, ValueEnum};
use rpch_framing::channel::{Client, ClientChannelId, ClientConfig, ClientCookies, ClientEvent};
use rpch_framing::http::ChannelMethod;
use rpch_framing::pdu::{
    Bind, ContextElement, ContextResultCode, Pdu, PduHeader, Request, SyntaxId, Uuid,
};
use rpch_framing::rts::Cookie;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::net::{self, Security, Stream};
use super::report::{Failed, Failure, Format, Report};
use super::{CommonArgs, Settings};
use crate::autodiscover::{PoxResponse, parse_pox_response, pox_request_body};

/// The RPC ports tried by default: Exchange 2010's RPC Client Access (6001), referral (6002)
/// and NSPI (6004) endpoints, what the Remote Connectivity Analyzer probes.
pub const DEFAULT_RPC_PORTS: [u16; 3] = [6001, 6002, 6004];
/// Largest HTTP response head read.
const MAX_HEAD: usize = 16 * 1024;
/// Largest Autodiscover response body read.
const MAX_POX_RESPONSE: usize = 1 << 20;
/// Largest other response body read (401/403/404 pages).
const MAX_ERROR_BODY: usize = 64 * 1024;
/// The DCE/RPC management interface `afa8bd80-7d8a-11c9-bef4-08002b102989` v1.0 (C706
/// appendix Q), which every DCE/RPC server offers.
const MGMT: SyntaxId = SyntaxId::new(
    Uuid::from_fields(
        0xafa8_bd80,
        0x7d8a,
        0x11c9,
        [0xbe, 0xf4, 0x08, 0x00, 0x2b, 0x10, 0x29, 0x89],
    ),
    1,
    0,
);
/// Fragment sizes offered in the bind (what Windows offers on TCP).
const MAX_FRAG: u16 = 5840;

/// Which HTTP authentication scheme to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum HttpAuth {
    /// What Autodiscover's `AuthPackage` names (NTLM for `Ntlm` and `Negotiate`).
    Auto,
    /// `NTLM`.
    Ntlm,
    /// `Negotiate` carrying a raw NTLM token.
    Negotiate,
    /// `Basic` (only over TLS unless `--allow-clear-text`).
    Basic,
}

/// The flags of `test-outlookconnectivity`.
#[derive(Args, Debug, Clone)]
#[allow(missing_docs)] // clap would show a doc comment on the flattened field
pub struct OutlookArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The mailbox address to autodiscover (default: the target when it is an address, else
    /// the user name when it is one, else USER@HOST).
    #[arg(long, value_name = "ADDRESS")]
    pub email: Option<String>,
    /// HTTP authentication scheme.
    #[arg(long, value_enum, default_value_t = HttpAuth::Auto)]
    pub auth: HttpAuth,
    /// RPC server name for the `?server:port` targets [default: Autodiscover's EXCH Server].
    #[arg(long, value_name = "NAME")]
    pub rpc_server: Option<String>,
    /// RPC ports to bind to, comma-separated.
    #[arg(long, value_name = "PORTS", value_delimiter = ',', default_values_t = DEFAULT_RPC_PORTS)]
    pub rpc_ports: Vec<u16>,
}

/// Default HTTPS (443) or HTTP (80) port.
pub fn default_port(security: Security) -> u16 {
    match security {
        Security::Plain => 80,
        _ => 443,
    }
}

/// Checks the Outlook-specific flags (usage errors).
pub fn check_args(args: &OutlookArgs) -> Result<(), String> {
    if args.common.security == Security::Starttls {
        return Err("--security starttls does not exist for HTTP: use tls or plain".into());
    }
    if args.rpc_ports.is_empty() || args.rpc_ports.contains(&0) {
        return Err("--rpc-ports needs at least one port between 1 and 65535".into());
    }
    Ok(())
}

/// Where an HTTP service is: host (for `Host:`, SNI and names), port, TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Endpoint {
    host: String,
    port: u16,
    tls: bool,
}

impl Endpoint {
    fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == if self.tls { 443 } else { 80 } {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Resolved addresses of an endpoint, for the connections after the first.
#[derive(Clone, Debug)]
struct Reach {
    endpoint: Endpoint,
    addrs: Vec<SocketAddr>,
}

/// A parsed HTTP response head.
#[derive(Debug, Clone, Default)]
struct ResponseHead {
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
}

impl ResponseHead {
    fn header(&self, name: &str) -> impl Iterator<Item = &str> {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn content_length(&self) -> Option<u64> {
        self.header("Content-Length").next()?.trim().parse().ok()
    }

    /// The schemes offered in `WWW-Authenticate` (one header per scheme, or comma-joined).
    fn schemes(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for value in self.header("WWW-Authenticate") {
            for part in value.split(',') {
                let scheme = part.trim().split(' ').next().unwrap_or_default();
                // `realm="x"` continuation parameters of Basic are not schemes.
                if !scheme.is_empty()
                    && !scheme.contains('=')
                    && !out.iter().any(|s| s.eq_ignore_ascii_case(scheme))
                {
                    out.push(scheme.to_owned());
                }
            }
        }
        out
    }

    /// The token after `scheme ` in `WWW-Authenticate`, if any.
    fn challenge(&self, scheme: &str) -> Option<Vec<u8>> {
        self.header("WWW-Authenticate").find_map(|v| {
            let (s, token) = v.trim().split_once(' ')?;
            if !s.eq_ignore_ascii_case(scheme) {
                return None;
            }
            base64::engine::general_purpose::STANDARD
                .decode(token.trim())
                .ok()
        })
    }
}

/// One HTTP/1.1 connection: a stream and what was read past the last head.
struct HttpConn {
    stream: Stream,
    buf: Vec<u8>,
    peer_cert: Option<Vec<u8>>,
}

fn io_failure(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::new(
        format!("{what}: {e}"),
        "check that the server is up and nothing between it and you drops the connection",
    )
}

impl HttpConn {
    fn new(stream: Stream) -> Self {
        let peer_cert = stream.peer_certificate();
        HttpConn {
            stream,
            buf: Vec::new(),
            peer_cert,
        }
    }

    async fn write(&mut self, bytes: &[u8], deadline: tokio::time::Instant) -> Result<(), Failure> {
        match tokio::time::timeout_at(deadline, self.stream.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(io_failure("sending the request failed", e)),
            Err(_) => Err(timeout_failure("sending the request")),
        }
    }

    /// Reads more bytes into `buf`; `Ok(false)` at end of stream.
    async fn fill(&mut self, deadline: tokio::time::Instant) -> Result<bool, Failure> {
        let mut chunk = [0u8; 8192];
        match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
            Ok(Ok(0)) => Ok(false),
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Ok(Err(e)) => Err(io_failure("reading the response failed", e)),
            Err(_) => Err(timeout_failure("waiting for the response")),
        }
    }

    async fn read_head(&mut self, deadline: tokio::time::Instant) -> Result<ResponseHead, Failure> {
        loop {
            if let Some(head) = parse_head(&mut self.buf)? {
                if head.status == 100 {
                    continue;
                }
                return Ok(head);
            }
            if self.buf.len() > MAX_HEAD {
                return Err(Failure::new(
                    format!("response head longer than {MAX_HEAD} bytes"),
                    "the server is not an HTTP server, or something in between mangles the reply",
                ));
            }
            if !self.fill(deadline).await? {
                return Err(Failure::new(
                    "the server closed the connection without an HTTP response",
                    "check the server's log; a TLS terminator may have dropped the request",
                ));
            }
        }
    }

    /// Reads a body of `Content-Length` bytes (at most `max`).
    async fn read_body(
        &mut self,
        head: &ResponseHead,
        max: usize,
        deadline: tokio::time::Instant,
    ) -> Result<Vec<u8>, Failure> {
        let len = head.content_length().unwrap_or(0);
        if len > max as u64 {
            return Err(Failure::new(
                format!("response body of {len} bytes is larger than {max}"),
                "the server answered with something other than the expected document",
            ));
        }
        let len = len as usize;
        while self.buf.len() < len {
            if !self.fill(deadline).await? {
                return Err(Failure::new(
                    "the connection closed in the middle of the response body",
                    "check the server's log",
                ));
            }
        }
        Ok(self.buf.drain(..len).collect())
    }

    fn channel_bindings(&self) -> Option<ChannelBindings> {
        self.peer_cert
            .as_deref()
            .and_then(|c| ChannelBindings::tls_server_end_point(c).ok())
    }
}

fn timeout_failure(what: &str) -> Failure {
    Failure::new(
        format!("timed out {what}"),
        "the server or a proxy in between is stuck or very slow; raise --timeout to wait longer",
    )
}

/// Parses a complete response head at the start of `buf` and removes it.
fn parse_head(buf: &mut Vec<u8>) -> Result<Option<ResponseHead>, Failure> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => {
            let head = ResponseHead {
                status: response.code.unwrap_or(0),
                reason: response.reason.unwrap_or_default().to_owned(),
                headers: response
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_owned(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect(),
            };
            buf.drain(..n);
            Ok(Some(head))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(Failure::new(
            format!("malformed HTTP response: {e}"),
            "the port may not be an HTTP(S) service, or TLS is expected (--security tls)",
        )),
    }
}

/// The HTTP authentication in use, with its credentials.
#[derive(Clone)]
struct Credentials {
    user: String,
    password: cas_auth::Secret<String>,
    scheme: Scheme,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    Ntlm,
    Negotiate,
    Basic,
}

impl Scheme {
    fn header_name(self) -> &'static str {
        match self {
            Scheme::Ntlm => "NTLM",
            Scheme::Negotiate => "Negotiate",
            Scheme::Basic => "Basic",
        }
    }
}

fn random<const N: usize>() -> Result<[u8; N], Failure> {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).map_err(|e| {
        Failure::new(
            format!("no randomness from the operating system: {e}"),
            "check the system's entropy source",
        )
    })?;
    Ok(b)
}

/// A request head: `method target`, `Host`, the given headers and `Content-Length`.
fn request_head(
    method: &str,
    target: &str,
    endpoint: &Endpoint,
    extra: &[(&str, String)],
    content_length: u64,
) -> Vec<u8> {
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {}\r\nContent-Length: {content_length}\r\n",
        endpoint.authority()
    );
    for (k, v) in extra {
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// What an authenticated request leg returns: the response head, or nothing yet for
/// requests whose response comes only on error (the IN channel).
enum Sent {
    Head(ResponseHead),
    Streaming,
}

/// Sends `method target` with credentials on `conn`: for NTLM/Negotiate a NEGOTIATE leg with
/// an empty body (its 401 CHALLENGE read), then the real request with the AUTHENTICATE; for
/// Basic the real request at once. `body` follows the final head; `await_head` reads the
/// response head (false for the IN channel, whose response comes only on error).
#[allow(clippy::too_many_arguments)]
async fn authenticated_request(
    conn: &mut HttpConn,
    creds: &Credentials,
    endpoint: &Endpoint,
    method: &str,
    target: &str,
    extra: &[(&str, String)],
    content_length: u64,
    body: &[u8],
    await_head: bool,
    deadline: tokio::time::Instant,
) -> Result<Sent, Failure> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let authorization = match creds.scheme {
        Scheme::Basic => {
            let token = b64.encode(format!("{}:{}", creds.user, creds.password.expose()));
            format!("Basic {token}")
        }
        Scheme::Ntlm | Scheme::Negotiate => {
            let mut initiator = NtlmInitiator::new(NtlmCredentials::from_account(
                &creds.user,
                creds.password.expose(),
            ));
            if let Some(cb) = conn.channel_bindings() {
                initiator = initiator.with_channel_bindings(&cb);
            }
            initiator = initiator.with_target_name(format!("HTTP/{}", endpoint.host));
            let negotiate = initiator
                .negotiate()
                .map_err(|e| Failure::new(format!("NTLM: {e}"), "this is a bug in the tester"))?;
            let name = creds.scheme.header_name();
            let mut headers: Vec<(&str, String)> = extra.to_vec();
            headers.push(("Authorization", format!("{name} {}", b64.encode(negotiate))));
            conn.write(
                &request_head(method, target, endpoint, &headers, 0),
                deadline,
            )
            .await?;
            let head = conn.read_head(deadline).await?;
            conn.read_body(&head, MAX_ERROR_BODY, deadline).await?;
            if head.status != 401 {
                return Err(unexpected_status(&head, "the NTLM NEGOTIATE"));
            }
            let Some(challenge) = head.challenge(name) else {
                return Err(Failure::new(
                    format!(
                        "no {name} CHALLENGE in the 401 answer to NEGOTIATE (offered: {})",
                        head.schemes().join(", ")
                    ),
                    format!(
                        "the server does not accept {name}; try --auth with one of the offered schemes"
                    ),
                ));
            };
            let initiated = initiator
                .handle_challenge(
                    &challenge,
                    random::<8>()?,
                    random::<16>()?,
                    FileTime::from(SystemTime::now()),
                )
                .map_err(|e| {
                    Failure::new(
                        format!("the server's NTLM CHALLENGE is invalid: {e}"),
                        "the server's NTLM implementation is broken",
                    )
                })?;
            format!("{name} {}", b64.encode(&initiated.authenticate))
        }
    };
    let mut headers: Vec<(&str, String)> = extra.to_vec();
    headers.push(("Authorization", authorization));
    let mut bytes = request_head(method, target, endpoint, &headers, content_length);
    bytes.extend_from_slice(body);
    conn.write(&bytes, deadline).await?;
    if !await_head {
        return Ok(Sent::Streaming);
    }
    Ok(Sent::Head(conn.read_head(deadline).await?))
}

fn unexpected_status(head: &ResponseHead, after: &str) -> Failure {
    let hint = match head.status {
        401 => {
            "the credentials were refused: check the user name and password (and DOMAIN\\user for NTLM)"
        }
        403 => {
            "the user is authenticated but not allowed (Outlook Anywhere blocked by policy for this user?)"
        }
        404 => "the path is not served: Outlook Anywhere or Autodiscover is disabled on the server",
        500..=599 => "the server failed: look at its log",
        _ => "the server answered something a Windows Outlook Anywhere server would not",
    };
    Failure::new(
        format!("HTTP {} {} after {after}", head.status, head.reason),
        hint,
    )
}

/// The RPC ping and `inq_if_ids` results for one port.
#[derive(Debug)]
struct Interfaces(Vec<(Uuid, u16, u16)>);

/// Connects (TCP, then TLS when the endpoint says so) without report steps: the first
/// connection's steps already checked name, reachability and certificate.
async fn reconnect(reach: &Reach, settings: &Settings) -> Result<HttpConn, Failure> {
    // A scratch report: the certificate verdict was shown on the first connection.
    let mut scratch = Report::new("", "", Format::Json, Box::new(std::io::sink()));
    let tcp = net::connect(&mut scratch, &reach.addrs, settings.timeout)
        .await
        .map_err(|Failed| last_failure(&scratch))?;
    let stream = net::secure(
        &mut scratch,
        tcp,
        reach.endpoint.tls,
        &reach.endpoint.host,
        &settings.tls,
        settings.timeout,
    )
    .await
    .map_err(|Failed| last_failure(&scratch))?;
    Ok(HttpConn::new(stream))
}

fn last_failure(report: &Report) -> Failure {
    report
        .steps()
        .iter()
        .rev()
        .find_map(|s| match &s.outcome {
            super::report::Outcome::Failed(f) => Some(f.clone()),
            _ => None,
        })
        .unwrap_or_else(|| Failure::new("connection failed", "check the server"))
}

/// The visible DNS / TCP / TLS steps for an endpoint (names suffixed with `label`).
async fn open_first(
    report: &mut Report,
    endpoint: &Endpoint,
    settings: &Settings,
) -> Result<(Reach, HttpConn), Failed> {
    let (addrs, stream) = net::open(
        report,
        &endpoint.host,
        endpoint.port,
        endpoint.tls,
        &settings.tls,
        settings.timeout,
    )
    .await?;
    Ok((
        Reach {
            endpoint: endpoint.clone(),
            addrs,
        },
        HttpConn::new(stream),
    ))
}

/// The address to autodiscover.
fn email_of(settings: &Settings, args: &OutlookArgs) -> String {
    if let Some(e) = &args.email {
        return e.clone();
    }
    if let Ok(t) = super::Target::parse(&args.common.target)
        && let Some(e) = t.email
    {
        return e;
    }
    let bare = settings
        .user
        .split_once('\\')
        .map_or(settings.user.as_str(), |(_, u)| u);
    if bare.contains('@') {
        bare.to_owned()
    } else {
        format!("{bare}@{}", settings.host)
    }
}

fn pick_scheme(
    wanted: HttpAuth,
    offered: &[String],
    tls: bool,
    allow_clear_text: bool,
    auth_package: Option<&str>,
) -> Result<Scheme, Failure> {
    let has = |s: &str| offered.iter().any(|o| o.eq_ignore_ascii_case(s));
    let basic_ok = tls || allow_clear_text;
    let choice = match wanted {
        HttpAuth::Ntlm => Scheme::Ntlm,
        HttpAuth::Negotiate => Scheme::Negotiate,
        HttpAuth::Basic => Scheme::Basic,
        HttpAuth::Auto => {
            let prefer_basic = auth_package.is_some_and(|p| p.eq_ignore_ascii_case("Basic"));
            if prefer_basic && has("Basic") && basic_ok {
                Scheme::Basic
            } else if has("NTLM") {
                Scheme::Ntlm
            } else if has("Negotiate") {
                Scheme::Negotiate
            } else if has("Basic") && basic_ok {
                Scheme::Basic
            } else {
                return Err(Failure::new(
                    format!(
                        "no usable authentication scheme offered (offered: {})",
                        if offered.is_empty() {
                            "none".to_owned()
                        } else {
                            offered.join(", ")
                        }
                    ),
                    if has("Basic") {
                        "only Basic is offered and the connection has no TLS: use --security tls, or --allow-clear-text on a trusted network"
                    } else {
                        "enable NTLM, Negotiate or Basic on the server"
                    },
                ));
            }
        }
    };
    if choice == Scheme::Basic && !basic_ok {
        return Err(Failure::new(
            "Basic authentication would send the password in clear text without TLS",
            "use --security tls, or --allow-clear-text if a TLS terminator is not in between",
        ));
    }
    if !has(choice.header_name()) {
        return Err(Failure::new(
            format!(
                "the server does not offer {} (offered: {})",
                choice.header_name(),
                offered.join(", ")
            ),
            "choose one of the offered schemes with --auth",
        ));
    }
    Ok(choice)
}

/// What Autodiscover told us.
struct Discovered {
    proxy: Endpoint,
    rpc_server: String,
    auth_package: Option<String>,
}

fn parse_host_port(server: &str, tls: bool) -> Result<(String, u16), Failure> {
    let default = if tls { 443 } else { 80 };
    let bad = || {
        Failure::new(
            format!("EXPR Server {server:?} is not a host name"),
            "fix the Outlook Anywhere ExternalHostname on the server",
        )
    };
    if let Some(rest) = server.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad())?,
            None => default,
        };
        return Ok((host.to_owned(), port));
    }
    match server.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Ok((h.to_owned(), p.parse().map_err(|_| bad())?)),
        _ if server.is_empty() || server.contains(['/', ' ']) => Err(bad()),
        _ => Ok((server.to_owned(), default)),
    }
}

fn discovered_from(response: &PoxResponse, user: &str) -> Result<(Discovered, String), Failure> {
    if let Some((code, message)) = &response.error {
        let hint = match code.as_str() {
            "500" => {
                "the address is not the authenticated user's, or has no mailbox: check --email and --user"
            }
            "501" => "the user has no protocol enabled (Set-CASMailbox)",
            "600" | "601" => "the server did not understand the Outlook request",
            _ => "look at the server's log",
        };
        return Err(Failure::new(
            format!("Autodiscover error {code}: {message}"),
            hint,
        ));
    }
    let Some(expr) = response.protocol("EXPR") else {
        return Err(Failure::new(
            format!("no Outlook Anywhere (EXPR) settings for {user}"),
            "Outlook Anywhere is disabled on the server or blocked for this user (MAPIBlockOutlookRpcHttp)",
        ));
    };
    let server = expr.get("Server").map(String::as_str).unwrap_or_default();
    let tls = expr
        .get("SSL")
        .is_none_or(|s| !s.eq_ignore_ascii_case("Off"));
    let (host, port) = parse_host_port(server, tls)?;
    let rpc_server = response
        .protocol("EXCH")
        .and_then(|p| p.get("Server"))
        .cloned()
        .unwrap_or_else(|| host.clone());
    let auth_package = expr.get("AuthPackage").cloned();
    let detail = format!(
        "RPC proxy {}://{}/rpc/rpcproxy.dll, auth {}, RPC server {rpc_server}",
        if tls { "https" } else { "http" },
        Endpoint {
            host: host.clone(),
            port,
            tls
        }
        .authority(),
        auth_package.as_deref().unwrap_or("unspecified"),
    );
    Ok((
        Discovered {
            proxy: Endpoint { host, port, tls },
            rpc_server,
            auth_package,
        },
        detail,
    ))
}

/// The HTTP headers Outlook's RPC over HTTP client sends on its channels.
fn channel_headers() -> Vec<(&'static str, String)> {
    vec![
        ("Accept", "application/rpc".to_owned()),
        ("User-Agent", "MSRPC".to_owned()),
        ("Cache-Control", "no-cache".to_owned()),
        ("Connection", "Keep-Alive".to_owned()),
        ("Pragma", "no-cache".to_owned()),
    ]
}

/// One virtual connection to `server:port` through the proxy.
struct VirtualConnection {
    client: Client,
    in_conn: HttpConn,
    out_conn: HttpConn,
    in_id: ClientChannelId,
    out_id: ClientChannelId,
    received: VecDeque<Bytes>,
    next_call_id: u32,
}

fn rpc_target(server: &str, port: u16) -> String {
    format!("/rpc/rpcproxy.dll?{server}:{port}")
}

fn cookie() -> Result<Cookie, Failure> {
    Ok(Cookie(random::<16>()?))
}

/// The OUT channel: authenticated `RPC_OUT_DATA` with CONN/A1, up to the `200` head.
async fn open_out_channel(
    reach: &Reach,
    settings: &Settings,
    creds: &Credentials,
    target: &str,
    first: Option<HttpConn>,
) -> Result<(Client, HttpConn, ClientChannelId, ClientChannelId), Failure> {
    let cookies = ClientCookies {
        virtual_connection: cookie()?,
        in_channel: cookie()?,
        out_channel: cookie()?,
        association_group: cookie()?,
    };
    let mut client = Client::new(Arc::new(ClientConfig::default()), Instant::now(), cookies);
    let (mut in_req, mut out_req) = (None, None);
    while let Some(event) = client.poll_event() {
        if let ClientEvent::ChannelRequested {
            id,
            method,
            content_length,
        } = event
        {
            match method {
                ChannelMethod::RpcOutData => out_req = Some((id, content_length)),
                ChannelMethod::RpcInData => in_req = Some((id, content_length)),
            }
        }
    }
    let (Some((out_id, out_len)), Some((in_id, _))) = (out_req, in_req) else {
        return Err(Failure::new(
            "the RPC over HTTP client did not ask for its channels",
            "this is a bug in the tester",
        ));
    };
    let mut body = Vec::new();
    while client.poll_transmit(out_id, &mut body) > 0 {}
    let deadline = settings.deadline();
    let mut out_conn = match first {
        Some(c) => c,
        None => reconnect(reach, settings).await?,
    };
    let sent = authenticated_request(
        &mut out_conn,
        creds,
        &reach.endpoint,
        ChannelMethod::RpcOutData.as_str(),
        target,
        &channel_headers(),
        out_len,
        &body,
        true,
        deadline,
    )
    .await?;
    let Sent::Head(head) = sent else {
        unreachable!("await_head is true");
    };
    if head.status != 200 {
        let _ = out_conn.read_body(&head, MAX_ERROR_BODY, deadline).await;
        return Err(unexpected_status(
            &head,
            &format!("{} authentication", creds.scheme.header_name()),
        ));
    }
    if let Some(len) = head.content_length() {
        client.set_out_channel_content_length(out_id, len);
    }
    // Body bytes that arrived with the head (CONN/A3 often does) belong to the machine.
    let early = std::mem::take(&mut out_conn.buf);
    if !early.is_empty() {
        client.handle_input(Instant::now(), out_id, &early);
    }
    Ok((client, out_conn, in_id, out_id))
}

impl VirtualConnection {
    /// Writes what the client has for each channel.
    async fn flush(&mut self, deadline: tokio::time::Instant) -> Result<(), Failure> {
        for id in [self.in_id, self.out_id] {
            let mut buf = Vec::new();
            while self.client.poll_transmit(id, &mut buf) > 0 {}
            if !buf.is_empty() {
                let conn = if id == self.in_id {
                    &mut self.in_conn
                } else {
                    &mut self.out_conn
                };
                conn.write(&buf, deadline).await?;
            }
        }
        Ok(())
    }

    /// Drains events; `Ok(true)` once the virtual connection is open.
    fn drain(&mut self) -> Result<bool, Failure> {
        let mut opened = false;
        while let Some(event) = self.client.poll_event() {
            match event {
                ClientEvent::Opened => opened = true,
                ClientEvent::PduReceived(pdu) => self.received.push_back(pdu),
                ClientEvent::Closed { reason } => {
                    return Err(Failure::new(
                        format!("the virtual connection closed: {reason:?}"),
                        "the proxy could not reach the RPC server, or refused the target: check ValidPorts and that the RPC service runs",
                    ));
                }
                // Recycling needs ~1 GiB of traffic; a test never gets there.
                _ => {}
            }
        }
        Ok(opened)
    }

    /// Runs the machine until `done` holds (checked after every drain) or the deadline.
    async fn run_until(
        &mut self,
        deadline: tokio::time::Instant,
        mut done: impl FnMut(&mut Self, bool) -> bool,
    ) -> Result<(), Failure> {
        loop {
            let opened = self.drain()?;
            self.flush(deadline).await?;
            if done(self, opened) {
                return Ok(());
            }
            let wake = self
                .client
                .poll_timeout()
                .map(|t| tokio::time::Instant::from_std(t).min(deadline))
                .unwrap_or(deadline);
            let mut out_chunk = [0u8; 16 * 1024];
            let mut in_chunk = [0u8; 4096];
            tokio::select! {
                r = self.out_conn.stream.read(&mut out_chunk) => match r {
                    Ok(0) => {
                        self.client.handle_eof(Instant::now(), self.out_id);
                        let _ = self.drain();
                        return Err(Failure::new(
                            "the proxy closed the OUT channel",
                            "look at the proxy's log: the RPC server may be down or the target refused",
                        ));
                    }
                    Ok(n) => self.client.handle_input(Instant::now(), self.out_id, &out_chunk[..n]),
                    Err(e) => return Err(io_failure("reading the OUT channel failed", e)),
                },
                r = self.in_conn.stream.read(&mut in_chunk) => match r {
                    // The proxy answers an IN channel only to end it (MS-RPCH §2.1.2.1.3).
                    Ok(0) => return Err(Failure::new(
                        "the proxy closed the IN channel",
                        "look at the proxy's log",
                    )),
                    Ok(n) => {
                        self.in_conn.buf.extend_from_slice(&in_chunk[..n]);
                        let head = parse_head(&mut self.in_conn.buf)?;
                        return Err(match head {
                            Some(h) => unexpected_status(&h, "the IN channel request"),
                            None => Failure::new("the proxy answered the IN channel request", "look at the proxy's log"),
                        });
                    }
                    Err(e) => return Err(io_failure("the IN channel failed", e)),
                },
                () = tokio::time::sleep_until(wake) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(timeout_failure("for the RPC over HTTP exchange"));
                    }
                    self.client.handle_timeout(Instant::now());
                }
            }
        }
    }

    /// Sends one RPC PDU and waits for the PDU answering `call_id`.
    async fn call(&mut self, pdu: Pdu, deadline: tokio::time::Instant) -> Result<Pdu, Failure> {
        let call_id = self.next_call_id;
        self.next_call_id += 1;
        let mut out = BytesMut::new();
        pdu.encode(&PduHeader::new(pdu.packet_type(), call_id), &mut out)
            .map_err(|e| {
                Failure::new(
                    format!("cannot encode the PDU: {e}"),
                    "this is a bug in the tester",
                )
            })?;
        self.client
            .send_pdu(Instant::now(), out.freeze())
            .map_err(|e| {
                Failure::new(
                    format!("cannot send the PDU: {e:?}"),
                    "the virtual connection is not open",
                )
            })?;
        let mut answer = None;
        self.run_until(deadline, |vc, _| {
            while let Some(bytes) = vc.received.pop_front() {
                let decoded =
                    rpch_framing::pdu::Pdu::decode_with_header(&bytes, &Default::default());
                match decoded {
                    Ok(d) if d.header.call_id == call_id => {
                        answer = Some(Ok(d.pdu));
                        return true;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        answer = Some(Err(Failure::new(
                            format!("malformed RPC PDU from the server: {e}"),
                            "the RPC server or the proxy corrupts PDUs",
                        )));
                        return true;
                    }
                }
            }
            false
        })
        .await?;
        answer.unwrap_or_else(|| Err(Failure::new("no answer", "look at the server's log")))
    }

    /// Binds the MGMT interface (presentation context 0, NDR).
    async fn bind_mgmt(&mut self, deadline: tokio::time::Instant) -> Result<String, Failure> {
        let bind = Pdu::Bind(Bind {
            max_xmit_frag: MAX_FRAG,
            max_recv_frag: MAX_FRAG,
            assoc_group_id: 0,
            contexts: vec![ContextElement {
                context_id: 0,
                abstract_syntax: MGMT,
                transfer_syntaxes: vec![SyntaxId::NDR],
            }],
            auth: None,
        });
        match self.call(bind, deadline).await? {
            Pdu::BindAck(ack) => match ack.results.first() {
                Some(r) if r.result == ContextResultCode::ACCEPTANCE => Ok(format!(
                    "bound to MGMT, max fragment {}",
                    ack.max_recv_frag.min(ack.max_xmit_frag)
                )),
                Some(r) => Err(Failure::new(
                    format!(
                        "MGMT presentation context refused: {:?} {:?}",
                        r.result, r.reason
                    ),
                    "the RPC server does not offer the management interface with NDR",
                )),
                None => Err(Failure::new(
                    "bind_ack without results",
                    "the RPC server is broken",
                )),
            },
            Pdu::BindNak(nak) => Err(Failure::new(
                format!("bind refused: {:?}", nak.reject_reason),
                "the RPC server may require RPC-level authentication",
            )),
            other => Err(Failure::new(
                format!("unexpected {:?} in answer to bind", other.packet_type()),
                "the RPC server is broken",
            )),
        }
    }

    /// Calls MGMT operation `opnum` with an empty stub and returns the response stub.
    async fn mgmt_call(
        &mut self,
        opnum: u16,
        deadline: tokio::time::Instant,
    ) -> Result<Bytes, Failure> {
        let request = Pdu::Request(Request {
            alloc_hint: 0,
            context_id: 0,
            opnum,
            object: None,
            stub_data: Bytes::new(),
            auth: None,
        });
        match self.call(request, deadline).await? {
            Pdu::Response(r) => Ok(r.stub_data),
            Pdu::Fault(f) => Err(Failure::new(
                format!("the call failed with fault {:?}", f.status),
                "the RPC server refused the management call (access denied needs RPC-level authentication)",
            )),
            other => Err(Failure::new(
                format!(
                    "unexpected {:?} in answer to a request",
                    other.packet_type()
                ),
                "the RPC server is broken",
            )),
        }
    }
}

/// Decodes the `inq_if_ids` response stub (little-endian NDR): a unique pointer to
/// `{max_count, count, [count] unique pointers}`, the deferred `rpc_if_id_t`s, and the
/// status.
fn decode_inq_if_ids(stub: &[u8]) -> Result<Interfaces, String> {
    let mut at = 0usize;
    let u32_at = |at: &mut usize| -> Result<u32, String> {
        let b = stub
            .get(*at..*at + 4)
            .ok_or("inq_if_ids response truncated")?;
        *at += 4;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let referent = u32_at(&mut at)?;
    let mut out = Vec::new();
    if referent != 0 {
        let max_count = u32_at(&mut at)?;
        let count = u32_at(&mut at)?;
        if count > max_count || count > 1024 {
            return Err(format!(
                "inq_if_ids count {count} / max {max_count} is invalid"
            ));
        }
        let mut present = Vec::new();
        for _ in 0..count {
            present.push(u32_at(&mut at)? != 0);
        }
        for p in present {
            if !p {
                continue;
            }
            let b = stub
                .get(at..at + 20)
                .ok_or("inq_if_ids interface truncated")?;
            let mut tail = [0u8; 8];
            tail.copy_from_slice(&b[8..16]);
            let uuid = Uuid::from_fields(
                u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                u16::from_le_bytes([b[4], b[5]]),
                u16::from_le_bytes([b[6], b[7]]),
                tail,
            );
            let major = u16::from_le_bytes([b[16], b[17]]);
            let minor = u16::from_le_bytes([b[18], b[19]]);
            out.push((uuid, major, minor));
            at += 20;
        }
    }
    let status = u32_at(&mut at)?;
    if status != 0 {
        return Err(format!("inq_if_ids returned status {status}"));
    }
    Ok(Interfaces(out))
}

/// Decodes the `is_server_listening` response stub: `status`, then the `boolean32`.
fn decode_is_listening(stub: &[u8]) -> Result<bool, String> {
    let b = stub
        .get(..8)
        .ok_or("is_server_listening response truncated")?;
    let status = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let listening = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    if status != 0 {
        return Err(format!("is_server_listening returned status {status}"));
    }
    Ok(listening != 0)
}

fn describe_interfaces(i: &Interfaces) -> String {
    let list: Vec<String> =
        i.0.iter()
            .map(|(u, major, minor)| format!("{u} v{major}.{minor}"))
            .collect();
    format!("{} interface(s): {}", list.len(), list.join(", "))
}

/// Runs the test; returns the exit status (0 all passed, 1 a step failed).
pub async fn run(settings: &Settings, args: &OutlookArgs) -> u8 {
    let mut report = Report::to_stdout(
        "test-outlookconnectivity",
        settings.describe(),
        settings.format,
    );
    let _ = steps(&mut report, settings, args).await;
    report.conclude()
}

async fn steps(report: &mut Report, settings: &Settings, args: &OutlookArgs) -> Result<(), Failed> {
    let tls = settings.security != Security::Plain;
    let email = email_of(settings, args);
    let ad_endpoint = Endpoint {
        host: settings.host.clone(),
        port: settings.port,
        tls,
    };
    let (ad_reach, mut conn) = open_first(report, &ad_endpoint, settings).await?;
    let deadline = settings.deadline();

    // Autodiscover: anonymous first (must be refused), then authenticated.
    let step = report.start(format!(
        "Autodiscover: HTTP authentication ({})",
        settings.user
    ));
    let body = pox_request_body(&email);
    let xml = [("Content-Type", "text/xml; charset=utf-8".to_owned())];
    let anonymous = async {
        conn.write(
            &request_head(
                "POST",
                crate::autodiscover::POX_PATH,
                &ad_endpoint,
                &xml,
                body.len() as u64,
            ),
            deadline,
        )
        .await?;
        conn.write(&body, deadline).await?;
        let head = conn.read_head(deadline).await?;
        conn.read_body(&head, MAX_POX_RESPONSE, deadline).await?;
        Ok::<_, Failure>(head)
    }
    .await;
    let head = match anonymous {
        Ok(h) => h,
        Err(f) => return Err(report.fail(step, f)),
    };
    if head.status != 401 {
        let failure = if (200..300).contains(&head.status) {
            Failure::new(
                "the Autodiscover endpoint answered an anonymous request",
                "Autodiscover must require authentication: it returns per-user settings",
            )
        } else {
            unexpected_status(&head, "the anonymous Autodiscover request")
        };
        return Err(report.fail(step, failure));
    }
    let ad_offered = head.schemes();
    let scheme = match pick_scheme(args.auth, &ad_offered, tls, settings.allow_clear_text, None) {
        Ok(s) => s,
        Err(f) => return Err(report.fail(step, f)),
    };
    let creds = Credentials {
        user: settings.user.clone(),
        password: settings.password.clone(),
        scheme,
    };
    // A fresh connection: a server may close after refusing a request with a body.
    conn = match reconnect(&ad_reach, settings).await {
        Ok(c) => c,
        Err(f) => return Err(report.fail(step, f)),
    };
    let sent = authenticated_request(
        &mut conn,
        &creds,
        &ad_endpoint,
        "POST",
        crate::autodiscover::POX_PATH,
        &xml,
        body.len() as u64,
        &body,
        true,
        deadline,
    )
    .await;
    let head = match sent {
        Ok(Sent::Head(h)) => h,
        Ok(Sent::Streaming) => unreachable!("await_head is true"),
        Err(f) => return Err(report.fail(step, f)),
    };
    if head.status == 401 {
        return Err(report.fail(
            step,
            Failure::new(
                format!(
                    "the server refused the credentials of {} ({} → 401)",
                    settings.user,
                    scheme.header_name()
                ),
                "check the user name and password (DOMAIN\\user or user@domain for NTLM)",
            ),
        ));
    }
    report.pass(
        step,
        format!(
            "{} accepted (offered: {})",
            scheme.header_name(),
            ad_offered.join(", ")
        ),
    );

    let step = report.start(format!("Autodiscover (POX) for {email}"));
    if head.status != 200 {
        let _ = conn.read_body(&head, MAX_ERROR_BODY, deadline).await;
        return Err(report.fail(step, unexpected_status(&head, "the Autodiscover request")));
    }
    let parsed = match conn.read_body(&head, MAX_POX_RESPONSE, deadline).await {
        Ok(b) => parse_pox_response(&b, MAX_POX_RESPONSE).map_err(|e| {
            Failure::new(
                format!("the Autodiscover response is not valid: {e}"),
                "look at the server's log",
            )
        }),
        Err(f) => Err(f),
    };
    let discovered = match parsed.and_then(|r| discovered_from(&r, &settings.user)) {
        Ok((d, detail)) => {
            report.pass(step, detail);
            d
        }
        Err(f) => return Err(report.fail(step, f)),
    };
    drop(conn);

    // The RPC proxy: the same host as Autodiscover, or a new one to reach.
    let proxy_reach = if discovered.proxy == ad_reach.endpoint {
        ad_reach.clone()
    } else {
        let (reach, _) = open_first(report, &discovered.proxy, settings).await?;
        reach
    };
    let rpc_server = args
        .rpc_server
        .clone()
        .unwrap_or(discovered.rpc_server.clone());

    // Anonymous probe.
    let step = report.start("HTTP auth probe (anonymous RPC_IN_DATA)");
    let probe = async {
        let mut c = reconnect(&proxy_reach, settings).await?;
        let deadline = settings.deadline();
        c.write(
            &request_head(
                "RPC_IN_DATA",
                "/rpc/rpcproxy.dll",
                &proxy_reach.endpoint,
                &channel_headers(),
                0,
            ),
            deadline,
        )
        .await?;
        let head = c.read_head(deadline).await?;
        Ok::<_, Failure>(head)
    }
    .await;
    let probe_head = match probe {
        Ok(h) => h,
        Err(f) => return Err(report.fail(step, f)),
    };
    let offered = probe_head.schemes();
    match probe_head.status {
        401 => {}
        s if (200..300).contains(&s) => {
            return Err(report.fail(
                step,
                Failure::new(
                    "the RPC proxy accepted an anonymous request",
                    "the proxy must require authentication before forwarding anything",
                ),
            ));
        }
        _ => {
            return Err(report.fail(
                step,
                unexpected_status(&probe_head, "the anonymous RPC_IN_DATA"),
            ));
        }
    }
    let scheme = match pick_scheme(
        args.auth,
        &offered,
        proxy_reach.endpoint.tls,
        settings.allow_clear_text,
        discovered.auth_package.as_deref(),
    ) {
        Ok(s) => s,
        Err(f) => return Err(report.fail(step, f)),
    };
    let mut probe_step = step;
    if let Some(pkg) = &discovered.auth_package {
        let expected = if pkg.eq_ignore_ascii_case("Basic") {
            "Basic"
        } else if pkg.eq_ignore_ascii_case("Negotiate") {
            "Negotiate"
        } else {
            "NTLM"
        };
        if !offered.iter().any(|o| o.eq_ignore_ascii_case(expected)) {
            return Err(report.fail(
                probe_step,
                Failure::new(
                    format!(
                        "Autodiscover names {pkg} but the proxy offers {}",
                        offered.join(", ")
                    ),
                    "make ExternalClientAuthenticationMethod one of IISAuthenticationMethods",
                ),
            ));
        }
    }
    if !proxy_reach.endpoint.tls && offered.iter().any(|o| o.eq_ignore_ascii_case("Basic")) {
        probe_step.warn("Basic is offered on a connection without TLS");
    }
    report.pass(probe_step, format!("401, offered: {}", offered.join(", ")));
    let creds = Credentials { scheme, ..creds };

    // The first port: authentication, handshake, bind + call, ping as separate steps.
    let first_port = args.rpc_ports[0];
    let target = rpc_target(&rpc_server, first_port);
    let step = report.start(format!(
        "RPC proxy: HTTP authentication ({})",
        scheme.header_name()
    ));
    let (client, out_conn, in_id, out_id) =
        match open_out_channel(&proxy_reach, settings, &creds, &target, None).await {
            Ok(v) => v,
            Err(f) => return Err(report.fail(step, f)),
        };
    report.pass(
        step,
        format!(
            "{} accepted for {}, OUT channel open",
            scheme.header_name(),
            settings.user
        ),
    );

    let step = report.start(format!(
        "RPC over HTTP handshake (CONN/A1…C2) to {rpc_server}:{first_port}"
    ));
    let mut vc = match open_in_channel(
        &proxy_reach,
        settings,
        &creds,
        &target,
        client,
        out_conn,
        in_id,
        out_id,
    )
    .await
    {
        Ok(vc) => vc,
        Err(f) => return Err(report.fail(step, f)),
    };
    report.pass(step, "virtual connection open");

    let step = report.start(format!(
        "RPC endpoint {rpc_server}:{first_port}: MGMT bind + inq_if_ids"
    ));
    let deadline = settings.deadline();
    let result = async {
        let bound = vc.bind_mgmt(deadline).await?;
        let stub = vc.mgmt_call(0, deadline).await?;
        let ifs = decode_inq_if_ids(&stub)
            .map_err(|e| Failure::new(e, "the RPC server's MGMT answer is malformed"))?;
        Ok::<_, Failure>(format!("{bound}; {}", describe_interfaces(&ifs)))
    }
    .await;
    report.finish_with(step, result)?;

    let step = report.start("RPC ping (MGMT is_server_listening)");
    let result = async {
        let started = Instant::now();
        let stub = vc.mgmt_call(2, settings.deadline()).await?;
        match decode_is_listening(&stub) {
            Ok(true) => Ok(format!(
                "listening, round trip {} ms",
                started.elapsed().as_millis()
            )),
            Ok(false) => Err(Failure::new(
                "the RPC server says it is not listening",
                "the RPC service is shutting down or paused",
            )),
            Err(e) => Err(Failure::new(e, "the RPC server's MGMT answer is malformed")),
        }
    }
    .await;
    report.finish_with(step, result)?;
    drop(vc);

    // The other ports, one step each.
    let mut failed = None;
    for &port in &args.rpc_ports[1..] {
        let step = report.start(format!(
            "RPC endpoint {rpc_server}:{port}: MGMT bind + inq_if_ids"
        ));
        let target = rpc_target(&rpc_server, port);
        let result = async {
            let (client, out_conn, in_id, out_id) =
                open_out_channel(&proxy_reach, settings, &creds, &target, None).await?;
            let mut vc = open_in_channel(
                &proxy_reach,
                settings,
                &creds,
                &target,
                client,
                out_conn,
                in_id,
                out_id,
            )
            .await?;
            let deadline = settings.deadline();
            vc.bind_mgmt(deadline).await?;
            let stub = vc.mgmt_call(0, deadline).await?;
            let ifs = decode_inq_if_ids(&stub)
                .map_err(|e| Failure::new(e, "the RPC server's MGMT answer is malformed"))?;
            Ok::<_, Failure>(describe_interfaces(&ifs))
        }
        .await;
        if let Err(f) = report.finish_with(step, result) {
            failed = Some(f);
        }
    }
    match failed {
        Some(f) => Err(f),
        None => Ok(()),
    }
}

/// The IN channel: authenticated `RPC_IN_DATA` with CONN/B1, then the handshake until
/// CONN/C2.
#[allow(clippy::too_many_arguments)]
async fn open_in_channel(
    reach: &Reach,
    settings: &Settings,
    creds: &Credentials,
    target: &str,
    mut client: Client,
    out_conn: HttpConn,
    in_id: ClientChannelId,
    out_id: ClientChannelId,
) -> Result<VirtualConnection, Failure> {
    let deadline = settings.deadline();
    let mut body = Vec::new();
    while client.poll_transmit(in_id, &mut body) > 0 {}
    let mut in_conn = reconnect(reach, settings).await?;
    let in_len = u64::from(ClientConfig::default().in_channel_lifetime);
    authenticated_request(
        &mut in_conn,
        creds,
        &reach.endpoint,
        ChannelMethod::RpcInData.as_str(),
        target,
        &channel_headers(),
        in_len,
        &body,
        false,
        deadline,
    )
    .await?;
    let mut vc = VirtualConnection {
        client,
        in_conn,
        out_conn,
        in_id,
        out_id,
        received: VecDeque::new(),
        next_call_id: 1,
    };
    vc.run_until(deadline, |_, opened| opened).await?;
    Ok(vc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inq_if_ids_decodes_the_windows_layout() {
        // ptr, max_count 1, count 1, ptr, MGMT uuid, 1, 0, status 0.
        let mut stub = vec![
            0x00, 0x00, 0x02, 0x00, 1, 0, 0, 0, 1, 0, 0, 0, 0x04, 0x00, 0x02, 0x00,
        ];
        stub.extend_from_slice(&[
            0x80, 0xbd, 0xa8, 0xaf, 0x8a, 0x7d, 0xc9, 0x11, 0xbe, 0xf4, 0x08, 0x00, 0x2b, 0x10,
            0x29, 0x89,
        ]);
        stub.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
        let ifs = decode_inq_if_ids(&stub).unwrap();
        assert_eq!(ifs.0, vec![(MGMT.uuid, 1, 0)]);
        assert!(describe_interfaces(&ifs).contains("afa8bd80-7d8a-11c9-bef4-08002b102989 v1.0"));
        assert!(decode_inq_if_ids(&stub[..20]).is_err());
        let mut bad = stub.clone();
        let n = bad.len();
        bad[n - 4] = 5;
        assert!(decode_inq_if_ids(&bad).unwrap_err().contains("status 5"));
        // A null vector and status 0.
        assert!(
            decode_inq_if_ids(&[0, 0, 0, 0, 0, 0, 0, 0])
                .unwrap()
                .0
                .is_empty()
        );
    }

    #[test]
    fn is_listening_decodes() {
        assert_eq!(decode_is_listening(&[0, 0, 0, 0, 1, 0, 0, 0]), Ok(true));
        assert_eq!(decode_is_listening(&[0, 0, 0, 0, 0, 0, 0, 0]), Ok(false));
        assert!(decode_is_listening(&[5, 0, 0, 0, 1, 0, 0, 0]).is_err());
        assert!(decode_is_listening(&[0, 0]).is_err());
    }

    #[test]
    fn schemes_and_challenges_from_headers() {
        let mut buf = b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\nWWW-Authenticate: NTLM\r\nWWW-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\n\r\nrest".to_vec();
        let head = parse_head(&mut buf).unwrap().unwrap();
        assert_eq!(buf, b"rest");
        assert_eq!(head.status, 401);
        assert_eq!(head.schemes(), ["Negotiate", "NTLM", "Basic"]);
        let mut buf = b"HTTP/1.1 401 x\r\nWWW-Authenticate: NTLM TlRMTVNTUAACAAAA\r\n\r\n".to_vec();
        let head = parse_head(&mut buf).unwrap().unwrap();
        assert_eq!(head.challenge("ntlm").unwrap(), b"NTLMSSP\0\x02\0\0\0");
        assert!(head.challenge("Negotiate").is_none());
        let mut partial = b"HTTP/1.1 200 OK\r\n".to_vec();
        assert!(parse_head(&mut partial).unwrap().is_none());
        assert!(parse_head(&mut b"garbage\r\n\r\n".to_vec()).is_err());
    }

    #[test]
    fn scheme_choice() {
        let offered = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let all = offered(&["Negotiate", "NTLM", "Basic"]);
        assert_eq!(
            pick_scheme(HttpAuth::Auto, &all, true, false, None).unwrap(),
            Scheme::Ntlm
        );
        assert_eq!(
            pick_scheme(HttpAuth::Auto, &all, true, false, Some("Basic")).unwrap(),
            Scheme::Basic
        );
        assert_eq!(
            pick_scheme(HttpAuth::Auto, &all, false, false, Some("Basic")).unwrap(),
            Scheme::Ntlm
        );
        assert!(pick_scheme(HttpAuth::Basic, &all, false, false, None).is_err());
        assert_eq!(
            pick_scheme(HttpAuth::Basic, &all, false, true, None).unwrap(),
            Scheme::Basic
        );
        assert!(pick_scheme(HttpAuth::Auto, &offered(&["Basic"]), false, false, None).is_err());
        assert!(pick_scheme(HttpAuth::Ntlm, &offered(&["Basic"]), true, false, None).is_err());
        assert_eq!(
            pick_scheme(HttpAuth::Auto, &offered(&["Negotiate"]), true, false, None).unwrap(),
            Scheme::Negotiate
        );
    }

    #[test]
    fn expr_servers_and_endpoints() {
        assert_eq!(
            parse_host_port("mail.example.com", true).unwrap(),
            ("mail.example.com".into(), 443)
        );
        assert_eq!(
            parse_host_port("localhost:8443", true).unwrap(),
            ("localhost".into(), 8443)
        );
        assert_eq!(parse_host_port("mail", false).unwrap(), ("mail".into(), 80));
        assert_eq!(
            parse_host_port("[::1]:8443", true).unwrap(),
            ("::1".into(), 8443)
        );
        assert!(parse_host_port("", true).is_err());
        assert!(parse_host_port("a b", true).is_err());
        assert!(parse_host_port("host:x", true).is_err());
        let e = Endpoint {
            host: "h".into(),
            port: 443,
            tls: true,
        };
        assert_eq!(e.authority(), "h");
        let e = Endpoint {
            host: "::1".into(),
            port: 8443,
            tls: true,
        };
        assert_eq!(e.authority(), "[::1]:8443");
        assert_eq!(rpc_target("cas", 6001), "/rpc/rpcproxy.dll?cas:6001");
    }

    #[test]
    fn autodiscover_errors_and_missing_expr_explain_themselves() {
        let r = PoxResponse {
            error: Some(("500".into(), "The e-mail address cannot be found.".into())),
            ..Default::default()
        };
        let f = discovered_from(&r, "alice").err().unwrap();
        assert!(
            f.cause.contains("500") && f.hint.contains("--email"),
            "{f:?}"
        );
        let r = PoxResponse::default();
        let f = discovered_from(&r, "alice").err().unwrap();
        assert!(f.cause.contains("EXPR") && f.hint.contains("MAPIBlockOutlookRpcHttp"));
        let mut expr = std::collections::BTreeMap::new();
        expr.insert("Type".to_owned(), "EXPR".to_owned());
        expr.insert("Server".to_owned(), "localhost:8443".to_owned());
        expr.insert("SSL".to_owned(), "On".to_owned());
        expr.insert("AuthPackage".to_owned(), "Ntlm".to_owned());
        let r = PoxResponse {
            protocols: vec![expr],
            ..Default::default()
        };
        let (d, detail) = discovered_from(&r, "alice").ok().unwrap();
        assert_eq!(
            d.proxy,
            Endpoint {
                host: "localhost".into(),
                port: 8443,
                tls: true
            }
        );
        assert_eq!(d.rpc_server, "localhost");
        assert!(
            detail.contains("https://localhost:8443/rpc/rpcproxy.dll"),
            "{detail}"
        );
    }
}
