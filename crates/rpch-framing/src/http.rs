//! The HTTP layer of RPC over HTTP v2 (MS-RPCH §2.1.2): RPC_IN_DATA / RPC_OUT_DATA request
//! heads, the echo request, the response heads a proxy sends, and channel lifetime
//! accounting against the request's Content-Length.
//!
//! An RPC over HTTP channel is one HTTP request whose body is the whole life of the channel:
//! the client declares a huge Content-Length (1 GiB for IN channels) and streams PDUs in it;
//! the proxy answers OUT channels with an equally huge response body. Nothing here is generic
//! HTTP: only the two RPC methods are accepted, bodies must be delimited by Content-Length
//! (a `Transfer-Encoding` is refused), and every size has a limit.
//!
//! # Order of checks for one request (the server's job, this module's pieces)
//!
//! 1. [`parse_request_head`] — the head, with its limits. An error knows its status
//!    ([`HttpError::status`]); answer with [`encode_error_response`] and close.
//! 2. Authentication (cas-auth), before anything else: the first request on each channel
//!    has `Content-Length: 0` and no `?server:port` and is answered by
//!    [`encode_unauthorized`] with the challenges, keeping the connection open.
//! 3. [`RequestHead::kind`]: an [`RequestKind::Echo`] is answered with
//!    [`encode_echo_response_head`] plus the 20-byte echo RTS PDU; otherwise the target
//!    ([`crate::target::parse_rpc_target`]) is parsed and checked against the
//!    [`AllowList`](crate::target::AllowList) before any backend connection.
//! 4. `HTTP/1.1 100 Continue` ([`encode_continue`]) only if [`RequestHead::expect_continue`]:
//!    impacket waits for it and compares it byte for byte; Samba's client breaks on it.
//! 5. For OUT channels, [`encode_rpc_response_head`]; then the channel machines run, with a
//!    [`ChannelLifetime`] per direction counting the body bytes.

use std::fmt;

/// Content-Length the proxy declares on an OUT channel response: 1 GiB, what Windows
/// proxies and clients use (MS-RPCH §2.1.2.1.4 allows 128 KiB..=2 GiB).
pub const OUT_CHANNEL_RESPONSE_CONTENT_LENGTH: u64 = 1 << 30;
/// Smallest IN channel Content-Length (MS-RPCH §2.1.2.1.1: 128 kilobytes).
pub const MIN_CHANNEL_CONTENT_LENGTH: u64 = 128 * 1024;
/// Largest channel Content-Length (MS-RPCH §2.1.2.1.1 and §2.1.2.1.4: 2 gigabytes).
pub const MAX_CHANNEL_CONTENT_LENGTH: u64 = 2 << 30;
/// Largest Content-Length of an echo request (MS-RPCH §2.1.2.1.5: "0 to 0x10").
pub const MAX_ECHO_CONTENT_LENGTH: u64 = 0x10;
/// Content-Length of an OUT channel request (MS-RPCH §2.1.2.1.2): the CONN/A1 PDU.
pub const OUT_CHANNEL_CONTENT_LENGTH: u64 = 76;
/// Content-Length of a replacement OUT channel request (MS-RPCH §2.1.2.1.2): OUT_R1/A3 or
/// OUT_R2/A3 (96 bytes) and then OUT_R1/A11 or OUT_R2/C1 (24 bytes).
pub const REPLACEMENT_OUT_CHANNEL_CONTENT_LENGTH: u64 = 120;
/// Body length of the echo response (MS-RPCH §2.1.2.1.6): the 20-byte echo RTS PDU.
pub const ECHO_RESPONSE_CONTENT_LENGTH: u64 = 20;
/// `Pragma: MinConnTimeout=T` range, in seconds (MS-RPCH §2.1.2.1.1).
pub const MIN_CONN_TIMEOUT_RANGE: std::ops::RangeInclusive<u32> = 120..=14_400;

/// Limits on a request head. Every field has a documented default and its source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// Longest request head (request line, headers and the blank line), in bytes.
    /// Default 16 KiB: http.sys's `MaxRequestBytes` default, the limit IIS itself applies in
    /// front of rpcproxy.dll. Large Kerberos `Authorization` headers may need more.
    pub max_head_len: usize,
    /// Most header fields. Default 64: RPC over HTTP clients send about ten (MS-RPCH
    /// §2.1.2.1.1 lists eight, plus Authorization, Expect and User-Agent).
    pub max_headers: usize,
    /// Largest Content-Length accepted. Default 2 GiB, MS-RPCH §2.1.2.1.1's upper bound.
    pub max_content_length: u64,
    /// Smallest Content-Length for an IN channel that is not an echo request. Default
    /// 128 KiB, MS-RPCH §2.1.2.1.1's lower bound.
    pub min_in_channel_content_length: u64,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_head_len: 16 * 1024,
            max_headers: 64,
            max_content_length: MAX_CHANNEL_CONTENT_LENGTH,
            min_in_channel_content_length: MIN_CHANNEL_CONTENT_LENGTH,
        }
    }
}

/// The two request methods of RPC over HTTP v2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChannelMethod {
    /// `RPC_IN_DATA`: the IN channel (client → server), or an echo request.
    RpcInData,
    /// `RPC_OUT_DATA`: the OUT channel (server → client), or an echo request.
    RpcOutData,
}

impl ChannelMethod {
    /// The method token (case-sensitive, RFC 9110 §9.1).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RpcInData => "RPC_IN_DATA",
            Self::RpcOutData => "RPC_OUT_DATA",
        }
    }

    fn parse(token: &str) -> Option<Self> {
        match token {
            "RPC_IN_DATA" => Some(Self::RpcInData),
            "RPC_OUT_DATA" => Some(Self::RpcOutData),
            _ => None,
        }
    }
}

impl fmt::Display for ChannelMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// HTTP version of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HttpVersion {
    /// HTTP/1.0 (no `Host` required; MS-RPCH echo requests may use it).
    Http10,
    /// HTTP/1.1.
    Http11,
}

/// What a valid request asks for, by method and Content-Length (MS-RPCH §2.1.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// Content-Length 0..=16: an echo request (§2.1.2.1.5), answered with the echo response.
    /// Before authentication this is also what the first, probing request looks like; the
    /// server answers 401 to any unauthenticated request whatever its kind.
    Echo,
    /// An `RPC_IN_DATA` channel (Content-Length 128 KiB..=2 GiB).
    InChannel,
    /// An `RPC_OUT_DATA` channel (Content-Length 76: the body is CONN/A1).
    OutChannel,
    /// A replacement `RPC_OUT_DATA` channel (Content-Length 120: OUT_R1/A3 or OUT_R2/A3,
    /// 96 bytes, followed by the 24-byte OUT_R1/A11 or OUT_R2/C1 that fills the body).
    ReplacementOutChannel,
}

/// The directives of the `Pragma` header fields MS-RPCH defines (§2.1.2.1.1); others are
/// ignored, as RFC 9111 §5.4 asks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pragmas<'a> {
    /// `no-cache` was present (clients MUST send it; proxies MUST ignore it).
    pub no_cache: bool,
    /// `MinConnTimeout=T` in seconds, clamped to 120..=14400; absent or not a number → `None`.
    pub min_conn_timeout: Option<u32>,
    /// `ResourceTypeUuid=R`, as sent (reserved for future use by MS-RPCH).
    pub resource_type_uuid: Option<&'a str>,
    /// `SessionId=S`, as sent (reserved for future use by MS-RPCH).
    pub session_id: Option<&'a str>,
}

/// A parsed RPC_IN_DATA / RPC_OUT_DATA request head. Borrows from the input buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead<'a> {
    /// The method.
    pub method: ChannelMethod,
    /// The request target as sent; parse it with [`crate::target::parse_request_target`].
    pub target: &'a [u8],
    /// HTTP/1.0 or HTTP/1.1.
    pub version: HttpVersion,
    /// The body length. Always present: requests without one are refused (411).
    pub content_length: u64,
    /// The request carries `Expect: 100-continue`; send [`encode_continue`] then, and only then.
    pub expect_continue: bool,
    /// The connection stays open after this request (HTTP/1.1 default, or
    /// `Connection: Keep-Alive` on HTTP/1.0; `Connection: close` clears it).
    pub keep_alive: bool,
    /// The `Host` header value (required, exactly once, on HTTP/1.1).
    pub host: Option<&'a [u8]>,
    /// The `Authorization` header value, for cas-auth.
    pub authorization: Option<&'a [u8]>,
    /// MS-RPCH's `Pragma` directives.
    pub pragma: Pragmas<'a>,
    /// Every header field in order, names as sent.
    pub headers: Vec<(&'a str, &'a [u8])>,
}

impl<'a> RequestHead<'a> {
    /// The first value of header `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// What the request asks for. [`parse_request_head`] has already refused Content-Lengths
    /// that fit none of the kinds.
    pub fn kind(&self) -> RequestKind {
        match (self.method, self.content_length) {
            (_, n) if n <= MAX_ECHO_CONTENT_LENGTH => RequestKind::Echo,
            (ChannelMethod::RpcInData, _) => RequestKind::InChannel,
            (ChannelMethod::RpcOutData, REPLACEMENT_OUT_CHANNEL_CONTENT_LENGTH) => {
                RequestKind::ReplacementOutChannel
            }
            (ChannelMethod::RpcOutData, _) => RequestKind::OutChannel,
        }
    }

    /// True for an echo request (Content-Length 0..=16).
    pub fn is_echo(&self) -> bool {
        self.kind() == RequestKind::Echo
    }
}

/// HTTP status codes this module answers errors with, each with its reason phrase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorStatus {
    /// 400: malformed request.
    BadRequest,
    /// 401: authentication required (use [`encode_unauthorized`] to add challenges).
    Unauthorized,
    /// 403: target not on the allow list.
    Forbidden,
    /// 404: not the RPC proxy path.
    NotFound,
    /// 405: a method other than RPC_IN_DATA / RPC_OUT_DATA.
    MethodNotAllowed,
    /// 411: no Content-Length (or a Transfer-Encoding instead).
    LengthRequired,
    /// 413: Content-Length above the limit.
    ContentTooLarge,
    /// 417: an `Expect` other than `100-continue`.
    ExpectationFailed,
    /// 431: head longer than the limit, or too many header fields.
    HeaderFieldsTooLarge,
    /// 503: the backend cannot be reached.
    ServiceUnavailable,
    /// 505: an HTTP version other than 1.0 or 1.1.
    VersionNotSupported,
}

impl ErrorStatus {
    /// The numeric status code.
    pub fn code(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::LengthRequired => 411,
            Self::ContentTooLarge => 413,
            Self::ExpectationFailed => 417,
            Self::HeaderFieldsTooLarge => 431,
            Self::ServiceUnavailable => 503,
            Self::VersionNotSupported => 505,
        }
    }

    /// The reason phrase (RFC 9110 §15 / RFC 6585 §5).
    pub fn reason(self) -> &'static str {
        match self {
            Self::BadRequest => "Bad Request",
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden => "Forbidden",
            Self::NotFound => "Not Found",
            Self::MethodNotAllowed => "Method Not Allowed",
            Self::LengthRequired => "Length Required",
            Self::ContentTooLarge => "Content Too Large",
            Self::ExpectationFailed => "Expectation Failed",
            Self::HeaderFieldsTooLarge => "Request Header Fields Too Large",
            Self::ServiceUnavailable => "Service Unavailable",
            Self::VersionNotSupported => "HTTP Version Not Supported",
        }
    }

    /// The status for a numeric code, if this module knows it.
    pub fn from_code(code: u16) -> Option<Self> {
        Some(match code {
            400 => Self::BadRequest,
            401 => Self::Unauthorized,
            403 => Self::Forbidden,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            411 => Self::LengthRequired,
            413 => Self::ContentTooLarge,
            417 => Self::ExpectationFailed,
            431 => Self::HeaderFieldsTooLarge,
            503 => Self::ServiceUnavailable,
            505 => Self::VersionNotSupported,
            _ => return None,
        })
    }
}

impl From<&crate::target::TargetError> for ErrorStatus {
    fn from(e: &crate::target::TargetError) -> Self {
        // TargetError::http_status only yields these three.
        match e.http_status() {
            404 => Self::NotFound,
            403 => Self::Forbidden,
            _ => Self::BadRequest,
        }
    }
}

/// Why a request head was refused. Each error knows the status to answer with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The head is not complete within the head-length limit.
    #[error("request head longer than {limit} bytes")]
    HeadTooLarge {
        /// The limit.
        limit: usize,
    },
    /// More header fields than the limit.
    #[error("more than {limit} header fields")]
    TooManyHeaders {
        /// The limit.
        limit: usize,
    },
    /// The head is not valid HTTP/1.x syntax (as httparse reports it).
    #[error("malformed request head: {0}")]
    Malformed(&'static str),
    /// A version other than HTTP/1.0 or HTTP/1.1.
    #[error("unsupported HTTP version")]
    UnsupportedVersion,
    /// A method other than RPC_IN_DATA or RPC_OUT_DATA.
    #[error("method {method:?} is not RPC_IN_DATA or RPC_OUT_DATA")]
    MethodNotAllowed {
        /// The method as sent (at most 32 characters kept).
        method: String,
    },
    /// No Content-Length.
    #[error("request has no Content-Length")]
    MissingContentLength,
    /// A Transfer-Encoding header: RPC over HTTP bodies are Content-Length delimited, and a
    /// request with both is the classic request-smuggling shape.
    #[error("Transfer-Encoding is not accepted")]
    TransferEncoding {
        /// A Content-Length was present as well.
        with_content_length: bool,
    },
    /// Content-Length is not a plain decimal number that fits in 64 bits.
    #[error("invalid Content-Length")]
    InvalidContentLength,
    /// More than one Content-Length field (even with equal values).
    #[error("duplicate Content-Length")]
    DuplicateContentLength,
    /// Content-Length above the limit.
    #[error("Content-Length {length} above the limit {limit}")]
    ContentTooLarge {
        /// The declared length.
        length: u64,
        /// The limit.
        limit: u64,
    },
    /// A Content-Length that fits no MS-RPCH request kind: an IN channel between 17 bytes
    /// and the minimum, or an OUT channel other than 76 or 120.
    #[error("Content-Length {length} is not valid for {method}")]
    UnexpectedContentLength {
        /// The method.
        method: ChannelMethod,
        /// The declared length.
        length: u64,
    },
    /// An `Expect` value other than `100-continue`.
    #[error("unsupported expectation")]
    UnsupportedExpectation,
    /// HTTP/1.1 without exactly one `Host` field.
    #[error("HTTP/1.1 request without exactly one Host")]
    BadHost,
    /// More than one `Authorization` field.
    #[error("duplicate Authorization")]
    DuplicateAuthorization,
}

impl HttpError {
    /// The status to answer with.
    pub fn status(&self) -> ErrorStatus {
        match self {
            Self::HeadTooLarge { .. } | Self::TooManyHeaders { .. } => {
                ErrorStatus::HeaderFieldsTooLarge
            }
            Self::UnsupportedVersion => ErrorStatus::VersionNotSupported,
            Self::MethodNotAllowed { .. } => ErrorStatus::MethodNotAllowed,
            Self::MissingContentLength
            | Self::TransferEncoding {
                with_content_length: false,
            } => ErrorStatus::LengthRequired,
            Self::ContentTooLarge { .. } => ErrorStatus::ContentTooLarge,
            Self::UnsupportedExpectation => ErrorStatus::ExpectationFailed,
            _ => ErrorStatus::BadRequest,
        }
    }

    /// The numeric status code to answer with.
    pub fn http_status(&self) -> u16 {
        self.status().code()
    }
}

/// Parses a request head from the start of `buf`.
///
/// Returns `Ok(None)` while the head is incomplete and shorter than the limit, and
/// `Ok(Some((head, len)))` once it is complete, where `len` is the head's length including
/// the blank line: body bytes start at `buf[len..]`.
///
/// ```text
/// request-line = method SP request-target SP HTTP-version CRLF   ; RFC 9112 §3
/// method       = "RPC_IN_DATA" / "RPC_OUT_DATA"                    ; MS-RPCH §2.1.2.1
/// ```
///
/// Refused, with the status in the error: heads over [`HttpLimits::max_head_len`] or with more
/// than [`HttpLimits::max_headers`] fields (431); other methods (405); no Content-Length or a
/// Transfer-Encoding (411); duplicate, signed, non-decimal or overflowing Content-Length (400);
/// Content-Length above the limit (413) or fitting no request kind (400); `Expect` other than
/// `100-continue` (417); HTTP/1.1 without exactly one Host, duplicate Authorization (400).
pub fn parse_request_head<'a>(
    buf: &'a [u8],
    limits: &HttpLimits,
) -> Result<Option<(RequestHead<'a>, usize)>, HttpError> {
    let window = &buf[..buf.len().min(limits.max_head_len)];
    // Cheap completeness test first, so a head trickling in byte by byte costs a memchr
    // scan per read rather than a full parse.
    if memchr::memmem::find(window, b"\n\r\n").is_none()
        && memchr::memmem::find(window, b"\n\n").is_none()
    {
        return if buf.len() >= limits.max_head_len {
            Err(HttpError::HeadTooLarge {
                limit: limits.max_head_len,
            })
        } else {
            Ok(None)
        };
    }
    let mut storage = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut req = httparse::Request::new(&mut storage);
    let len = match req.parse(window) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= limits.max_head_len => {
            return Err(HttpError::HeadTooLarge {
                limit: limits.max_head_len,
            });
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HttpError::TooManyHeaders {
                limit: limits.max_headers,
            });
        }
        Err(httparse::Error::Version) => return Err(HttpError::UnsupportedVersion),
        Err(e) => return Err(HttpError::Malformed(e.description_str())),
    };
    let head = head_from(&req, limits)?;
    Ok(Some((head, len)))
}

/// Human-readable httparse error without allocating.
trait DescriptionStr {
    fn description_str(&self) -> &'static str;
}

impl DescriptionStr for httparse::Error {
    fn description_str(&self) -> &'static str {
        match self {
            httparse::Error::HeaderName => "invalid header name",
            httparse::Error::HeaderValue => "invalid header value",
            httparse::Error::NewLine => "invalid line ending",
            httparse::Error::Status => "invalid status",
            httparse::Error::Token => "invalid token",
            httparse::Error::TooManyHeaders => "too many headers",
            httparse::Error::Version => "invalid HTTP version",
        }
    }
}

fn head_from<'a>(
    req: &httparse::Request<'_, 'a>,
    limits: &HttpLimits,
) -> Result<RequestHead<'a>, HttpError> {
    // httparse fills every field of a complete request.
    let (Some(method), Some(path), Some(version)) = (req.method, req.path, req.version) else {
        return Err(HttpError::Malformed("incomplete request line"));
    };
    let version = match version {
        0 => HttpVersion::Http10,
        1 => HttpVersion::Http11,
        _ => return Err(HttpError::UnsupportedVersion),
    };
    let method = ChannelMethod::parse(method).ok_or_else(|| HttpError::MethodNotAllowed {
        method: method.chars().take(32).collect(),
    })?;

    let mut content_length = None;
    let mut transfer_encoding = false;
    let mut expect_continue = false;
    let mut hosts = 0usize;
    let mut host = None;
    let mut authorization = None;
    let mut keep_alive = version == HttpVersion::Http11;
    let mut pragma = Pragmas::default();
    let mut headers = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let name = h.name;
        let value = h.value;
        headers.push((name, value));
        if name.eq_ignore_ascii_case("content-length") {
            if content_length.is_some() {
                return Err(HttpError::DuplicateContentLength);
            }
            content_length = Some(parse_content_length(value)?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = true;
        } else if name.eq_ignore_ascii_case("expect") {
            if trim_ows(value).eq_ignore_ascii_case(b"100-continue") {
                expect_continue = true;
            } else {
                return Err(HttpError::UnsupportedExpectation);
            }
        } else if name.eq_ignore_ascii_case("host") {
            hosts += 1;
            host = Some(value);
        } else if name.eq_ignore_ascii_case("authorization") {
            if authorization.is_some() {
                return Err(HttpError::DuplicateAuthorization);
            }
            authorization = Some(value);
        } else if name.eq_ignore_ascii_case("connection") {
            for option in value.split(|b| *b == b',').map(trim_ows) {
                if option.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if option.eq_ignore_ascii_case(b"keep-alive")
                    && version == HttpVersion::Http10
                {
                    keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("pragma") {
            parse_pragma(value, &mut pragma);
        }
    }
    if transfer_encoding {
        return Err(HttpError::TransferEncoding {
            with_content_length: content_length.is_some(),
        });
    }
    if version == HttpVersion::Http11 && hosts != 1 {
        return Err(HttpError::BadHost);
    }
    let content_length = content_length.ok_or(HttpError::MissingContentLength)?;
    if content_length > limits.max_content_length {
        return Err(HttpError::ContentTooLarge {
            length: content_length,
            limit: limits.max_content_length,
        });
    }
    let fits = content_length <= MAX_ECHO_CONTENT_LENGTH
        || match method {
            ChannelMethod::RpcInData => content_length >= limits.min_in_channel_content_length,
            ChannelMethod::RpcOutData => matches!(
                content_length,
                OUT_CHANNEL_CONTENT_LENGTH | REPLACEMENT_OUT_CHANNEL_CONTENT_LENGTH
            ),
        };
    if !fits {
        return Err(HttpError::UnexpectedContentLength {
            method,
            length: content_length,
        });
    }
    Ok(RequestHead {
        method,
        target: path.as_bytes(),
        version,
        content_length,
        expect_continue,
        keep_alive,
        host,
        authorization,
        pragma,
        headers,
    })
}

/// `Content-Length = 1*DIGIT` (RFC 9110 §8.6): no sign, no list, no inner spaces, no
/// overflow. httparse has already trimmed the surrounding whitespace.
fn parse_content_length(value: &[u8]) -> Result<u64, HttpError> {
    let value = trim_ows(value);
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(HttpError::InvalidContentLength);
    }
    value.iter().try_fold(0u64, |acc, d| {
        acc.checked_mul(10)
            .and_then(|a| a.checked_add(u64::from(d - b'0')))
            .ok_or(HttpError::InvalidContentLength)
    })
}

/// `Pragma = 1#pragma-directive` (RFC 9111 §5.4) with MS-RPCH's directives
/// `no-cache`, `MinConnTimeout=T`, `ResourceTypeUuid=R`, `SessionId=S`.
fn parse_pragma<'a>(value: &'a [u8], out: &mut Pragmas<'a>) {
    for directive in value.split(|b| *b == b',').map(trim_ows) {
        let (name, arg) = match memchr::memchr(b'=', directive) {
            Some(i) => (&directive[..i], Some(trim_ows(&directive[i + 1..]))),
            None => (directive, None),
        };
        let name = trim_ows(name);
        let arg_str = arg.and_then(|a| std::str::from_utf8(a).ok());
        if name.eq_ignore_ascii_case(b"no-cache") {
            out.no_cache = true;
        } else if name.eq_ignore_ascii_case(b"MinConnTimeout") {
            out.min_conn_timeout = arg
                .filter(|a| !a.is_empty() && a.len() <= 10 && a.iter().all(u8::is_ascii_digit))
                .and_then(|a| std::str::from_utf8(a).ok()?.parse::<u64>().ok())
                .map(|t| {
                    let (lo, hi) = (
                        *MIN_CONN_TIMEOUT_RANGE.start(),
                        *MIN_CONN_TIMEOUT_RANGE.end(),
                    );
                    u32::try_from(t.clamp(u64::from(lo), u64::from(hi))).unwrap_or(hi)
                });
        } else if name.eq_ignore_ascii_case(b"ResourceTypeUuid") {
            out.resource_type_uuid = arg_str;
        } else if name.eq_ignore_ascii_case(b"SessionId") {
            out.session_id = arg_str;
        }
    }
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// A header field value that is safe to write: visible ASCII, spaces and tabs only, no
/// leading or trailing whitespace (so no CR, LF or NUL can split the response).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HeaderValue(Box<str>);

/// A header value held a byte that cannot appear in one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("byte 0x{byte:02x} at offset {offset} is not allowed in a header value")]
pub struct InvalidHeaderValue {
    /// The refused byte.
    pub byte: u8,
    /// Its offset.
    pub offset: usize,
}

impl HeaderValue {
    /// Validates `value` (see the type docs). Empty values are allowed.
    pub fn new(value: impl AsRef<[u8]>) -> Result<Self, InvalidHeaderValue> {
        let value = value.as_ref();
        if let Some((offset, &byte)) = value
            .iter()
            .enumerate()
            .find(|(_, b)| !(b.is_ascii_graphic() || **b == b' ' || **b == b'\t'))
        {
            return Err(InvalidHeaderValue { byte, offset });
        }
        if let Some(&byte) = value.first().filter(|b| **b == b' ' || **b == b'\t') {
            return Err(InvalidHeaderValue { byte, offset: 0 });
        }
        if let Some(&byte) = value.last().filter(|b| **b == b' ' || **b == b'\t') {
            return Err(InvalidHeaderValue {
                byte,
                offset: value.len() - 1,
            });
        }
        // Only ASCII passed the checks above.
        let s = std::str::from_utf8(value).map_err(|_| InvalidHeaderValue {
            byte: 0x80,
            offset: 0,
        })?;
        Ok(Self(s.into()))
    }

    /// The value.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn push_content_length(out: &mut Vec<u8>, n: u64) {
    push_header(out, "Content-Length", &n.to_string());
}

/// Writes exactly `HTTP/1.1 100 Continue\r\n\r\n`. Send it only when
/// [`RequestHead::expect_continue`] is set, and on its own: impacket reads it with one
/// `recv` and compares the whole buffer.
pub fn encode_continue(out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
}

/// Writes the `200 Success` head of an RPC channel response (MS-RPCH §2.1.2.1.4): status
/// line `HTTP/1.1 200 Success`, `Content-Type: application/rpc`, `Content-Length`
/// ([`OUT_CHANNEL_RESPONSE_CONTENT_LENGTH`] for OUT channels), plus `Cache-Control: no-cache`,
/// `Pragma: no-cache` and `Connection: Keep-Alive`, so that no HTTP intermediary caches or
/// closes the long-lived body.
pub fn encode_rpc_response_head(out: &mut Vec<u8>, content_length: u64) {
    out.extend_from_slice(b"HTTP/1.1 200 Success\r\n");
    push_header(out, "Content-Type", "application/rpc");
    push_content_length(out, content_length);
    push_header(out, "Cache-Control", "no-cache");
    push_header(out, "Pragma", "no-cache");
    push_header(out, "Connection", "Keep-Alive");
    out.extend_from_slice(b"\r\n");
}

/// Writes the head of the echo response (MS-RPCH §2.1.2.1.6): `HTTP/1.1 200 Success`,
/// `Content-Type: application/rpc`, `Content-Length: 20`, `Connection: Keep-Alive`. The body
/// that must follow is the 20-byte echo RTS PDU (§2.2.4.48).
pub fn encode_echo_response_head(out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 200 Success\r\n");
    push_header(out, "Content-Type", "application/rpc");
    push_content_length(out, ECHO_RESPONSE_CONTENT_LENGTH);
    push_header(out, "Connection", "Keep-Alive");
    out.extend_from_slice(b"\r\n");
}

/// Writes the whole echo response: [`encode_echo_response_head`] followed by the echo RTS
/// PDU (§2.2.4.48, `RTS_FLAG_ECHO` and no commands).
pub fn encode_echo_response(out: &mut Vec<u8>) {
    encode_echo_response_head(out);
    out.extend_from_slice(&crate::rts::RtsPdu::echo().to_bytes());
}

/// Writes a `401 Unauthorized` with one `WWW-Authenticate` field per challenge (supplied by
/// the caller, from cas-auth: `NTLM <base64>`, `Negotiate`, `Basic realm="..."`),
/// `Content-Length: 0` and `Connection: Keep-Alive`: NTLM binds its handshake to the TCP
/// connection, so it must stay open.
pub fn encode_unauthorized(out: &mut Vec<u8>, challenges: &[HeaderValue]) {
    out.extend_from_slice(b"HTTP/1.1 401 Unauthorized\r\n");
    for c in challenges {
        push_header(out, "WWW-Authenticate", c.as_str());
    }
    push_content_length(out, 0);
    push_header(out, "Connection", "Keep-Alive");
    out.extend_from_slice(b"\r\n");
}

/// Writes an error response with `Content-Length: 0`. `close` adds `Connection: close`
/// (do so after any parse error: the rest of the stream cannot be trusted). A 405 carries
/// `Allow: RPC_IN_DATA, RPC_OUT_DATA` as RFC 9110 §15.5.6 requires; a 401 carries no
/// challenges here (use [`encode_unauthorized`]).
pub fn encode_error_response(out: &mut Vec<u8>, status: ErrorStatus, close: bool) {
    out.extend_from_slice(format!("HTTP/1.1 {} {}\r\n", status.code(), status.reason()).as_bytes());
    if status == ErrorStatus::MethodNotAllowed {
        push_header(out, "Allow", "RPC_IN_DATA, RPC_OUT_DATA");
    }
    push_content_length(out, 0);
    push_header(
        out,
        "Connection",
        if close { "close" } else { "Keep-Alive" },
    );
    out.extend_from_slice(b"\r\n");
}

/// Writes the IN/OUT channel failure response of MS-RPCH §2.1.2.1.3: `HTTP/1.0 503 RPC Error:
/// <hex error code>`, `Content-Length: 0`, `Connection: close`. impacket recognises a proxy
/// failure by the prefix `HTTP/1.0 503 RPC Error`. No extended error information is sent.
pub fn encode_rpc_error_response(out: &mut Vec<u8>, rpc_error: u32) {
    out.extend_from_slice(format!("HTTP/1.0 503 RPC Error: {rpc_error:X}\r\n").as_bytes());
    push_content_length(out, 0);
    push_header(out, "Connection", "close");
    out.extend_from_slice(b"\r\n");
}

/// A request head as a client sends it (MS-RPCH §2.1.2.1.1, §2.1.2.1.2, §2.1.2.1.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelRequest {
    /// The method.
    pub method: ChannelMethod,
    /// The request target.
    pub target: crate::target::RequestTarget,
    /// The proxy's host name (`Host` header).
    pub host: HeaderValue,
    /// The declared body length.
    pub content_length: u64,
    /// Send `Expect: 100-continue` (impacket does; Windows does not).
    pub expect_continue: bool,
    /// `Authorization` value, if any.
    pub authorization: Option<HeaderValue>,
    /// `Pragma: MinConnTimeout=T`, if any.
    pub min_conn_timeout: Option<u32>,
}

/// Writes a client request head: request line, `Accept: application/rpc`,
/// `Cache-Control: no-cache`, `Connection: Keep-Alive`, `Content-Length`, `Host`,
/// `Pragma: No-cache[, MinConnTimeout=T]`, `User-Agent: MSRPC`, then `Expect` and
/// `Authorization` when set.
pub fn encode_request_head(out: &mut Vec<u8>, req: &ChannelRequest) {
    out.extend_from_slice(req.method.as_str().as_bytes());
    out.push(b' ');
    req.target.encode(out);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    push_header(out, "Accept", "application/rpc");
    push_header(out, "Cache-Control", "no-cache");
    push_header(out, "Connection", "Keep-Alive");
    push_content_length(out, req.content_length);
    push_header(out, "Host", req.host.as_str());
    match req.min_conn_timeout {
        Some(t) => push_header(out, "Pragma", &format!("No-cache, MinConnTimeout={t}")),
        None => push_header(out, "Pragma", "No-cache"),
    }
    push_header(out, "User-Agent", "MSRPC");
    if req.expect_continue {
        push_header(out, "Expect", "100-continue");
    }
    if let Some(a) = &req.authorization {
        push_header(out, "Authorization", a.as_str());
    }
    out.extend_from_slice(b"\r\n");
}

/// Bytes would pass the channel's declared Content-Length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{attempted} more bytes exceed the channel's remaining {remaining} of {content_length}")]
pub struct LifetimeExceeded {
    /// Bytes offered.
    pub attempted: u64,
    /// Bytes the channel still had.
    pub remaining: u64,
    /// The channel's Content-Length.
    pub content_length: u64,
}

/// Byte accounting for one direction of one channel against its Content-Length (for the
/// proxy: received bytes of an IN channel request body; sent bytes of an OUT channel response
/// body; for a client the reverse).
///
/// MS-RPCH §3.2.2.4.2 / §3.2.3.5.x: the sender recycles a channel when its byte count
/// "approaches the channel lifetime", early enough that the successor is open before the
/// predecessor runs out; the receiver never accepts bytes past the Content-Length. The
/// recycle point is `content_length - recycle_margin`; the default margin is
/// [`ChannelLifetime::DEFAULT_RECYCLE_MARGIN`], capped at half the Content-Length so short
/// channels recycle half-way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelLifetime {
    content_length: u64,
    transferred: u64,
    recycle_margin: u64,
}

impl ChannelLifetime {
    /// Default recycle margin: 512 KiB, twice the 256 KiB receive window Windows and impacket
    /// clients advertise in CONN/A1, so a full window of data can still be in flight while the
    /// successor channel opens.
    pub const DEFAULT_RECYCLE_MARGIN: u64 = 512 * 1024;

    /// A fresh channel with `content_length` bytes to carry.
    pub fn new(content_length: u64) -> Self {
        Self {
            content_length,
            transferred: 0,
            recycle_margin: Self::DEFAULT_RECYCLE_MARGIN.min(content_length / 2),
        }
    }

    /// Sets the recycle margin (capped at the Content-Length).
    pub fn with_recycle_margin(mut self, margin: u64) -> Self {
        self.recycle_margin = margin.min(self.content_length);
        self
    }

    /// The declared Content-Length.
    pub fn content_length(&self) -> u64 {
        self.content_length
    }

    /// Bytes carried so far.
    pub fn transferred(&self) -> u64 {
        self.transferred
    }

    /// Bytes the channel may still carry.
    pub fn remaining(&self) -> u64 {
        self.content_length - self.transferred
    }

    /// True if `n` more bytes fit.
    pub fn fits(&self, n: usize) -> bool {
        (n as u64) <= self.remaining()
    }

    /// Counts `n` bytes. Refuses (and counts nothing) if they would pass the Content-Length:
    /// a proxy receiving them must close the channel.
    pub fn record(&mut self, n: usize) -> Result<(), LifetimeExceeded> {
        let n = n as u64;
        if n > self.remaining() {
            return Err(LifetimeExceeded {
                attempted: n,
                remaining: self.remaining(),
                content_length: self.content_length,
            });
        }
        self.transferred += n;
        Ok(())
    }

    /// True once every declared byte has been carried.
    pub fn is_exhausted(&self) -> bool {
        self.transferred == self.content_length
    }

    /// True once the remaining bytes are at or below the recycle margin: the sender must
    /// start recycling the channel now.
    pub fn should_recycle(&self) -> bool {
        self.remaining() <= self.recycle_margin
    }
}

#[doc(hidden)]
pub mod fuzzing {
    //! Invariants shared by the proptests and the `rpch_http_head` fuzz target.

    use super::*;
    use crate::target::{AllowList, RequestTarget, parse_request_target};

    /// Parses `data` as a request head (default and tiny limits), then its target, then checks
    /// the target against a fixed allow list. Panics only if an invariant breaks: no panic,
    /// head length within the limit and the input, statuses in the documented set, every
    /// accepted target re-encodes to a request target that parses to the same value, and only
    /// allowed targets pass the list.
    pub fn http_head(data: &[u8]) {
        let tiny = HttpLimits {
            max_head_len: 256,
            max_headers: 4,
            ..HttpLimits::default()
        };
        for limits in [HttpLimits::default(), tiny] {
            match parse_request_head(data, &limits) {
                Ok(Some((head, len))) => {
                    assert!(len <= data.len() && len <= limits.max_head_len);
                    assert!(head.content_length <= limits.max_content_length);
                    assert!(head.headers.len() <= limits.max_headers);
                    let _ = head.kind();
                    check_target(head.target);
                }
                Ok(None) => assert!(data.len() < limits.max_head_len),
                Err(e) => {
                    assert!(matches!(
                        e.http_status(),
                        400 | 405 | 411 | 413 | 417 | 431 | 505
                    ));
                }
            }
        }
        check_target(data);
        let mut at = data.splitn(2, |b| *b == b'\n');
        if let Some(first) = at.next() {
            check_target(first);
        }
    }

    fn allow_list() -> AllowList {
        AllowList::from_valid_ports("mbx01.corp.example:6001-6004;MBX01:6001-6004")
            .expect("constant allow list parses")
    }

    /// Target invariants: parse never panics; accepted values round-trip through their
    /// encoding; the allow list admits only `mbx01[.corp.example]` on 6001..=6004.
    pub fn check_target(target: &[u8]) {
        let Ok(parsed) = parse_request_target(target) else {
            return;
        };
        let mut enc = Vec::new();
        parsed.encode(&mut enc);
        assert_eq!(parse_request_target(&enc).as_ref(), Ok(&parsed));
        if let RequestTarget::Rpc { target: t, .. } = &parsed {
            let allowed = allow_list().check(t).is_ok();
            let name = t.server.to_string().to_ascii_lowercase();
            let expect = (name == "mbx01" || name == "mbx01.corp.example")
                && (6001..=6004).contains(&t.port);
            assert_eq!(allowed, expect, "{t}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMPACKET_IN: &[u8] = b"RPC_IN_DATA /rpc/rpcproxy.dll?MBX01:6001 HTTP/1.1\r\n\
Host: cas.example\r\nAccept-Encoding: identity\r\nUser-Agent: MSRPC\r\nCache-Control: no-cache\r\n\
Connection: Keep-Alive\r\nExpect: 100-continue\r\nAccept: application/rpc\r\nPragma: No-cache\r\n\
Content-Length: 1073741824\r\nAuthorization: NTLM TlRMTVNTUAADAAAA\r\n\r\n";

    fn parse(buf: &[u8]) -> Result<Option<(RequestHead<'_>, usize)>, HttpError> {
        parse_request_head(buf, &HttpLimits::default())
    }

    fn err(buf: &[u8]) -> HttpError {
        parse(buf).unwrap_err()
    }

    #[test]
    fn impacket_in_channel() {
        let (head, len) = parse(IMPACKET_IN).unwrap().unwrap();
        assert_eq!(len, IMPACKET_IN.len());
        assert_eq!(head.method, ChannelMethod::RpcInData);
        assert_eq!(head.target, b"/rpc/rpcproxy.dll?MBX01:6001");
        assert_eq!(head.content_length, 1 << 30);
        assert!(head.expect_continue);
        assert!(head.keep_alive);
        assert!(head.pragma.no_cache);
        assert_eq!(head.authorization, Some(&b"NTLM TlRMTVNTUAADAAAA"[..]));
        assert_eq!(head.host, Some(&b"cas.example"[..]));
        assert_eq!(head.kind(), RequestKind::InChannel);
        assert_eq!(head.header("user-agent"), Some(&b"MSRPC"[..]));
    }

    #[test]
    fn incomplete_then_complete() {
        for cut in 0..IMPACKET_IN.len() {
            assert_eq!(parse(&IMPACKET_IN[..cut]), Ok(None), "{cut}");
        }
        let mut with_body = IMPACKET_IN.to_vec();
        with_body.extend_from_slice(&[5, 0, 20, 3]);
        assert_eq!(parse(&with_body).unwrap().unwrap().1, IMPACKET_IN.len());
    }

    #[test]
    fn kinds_by_length() {
        let head = |m: &str, n: u64| {
            format!("{m} /rpc/rpcproxy.dll HTTP/1.1\r\nHost: h\r\nContent-Length: {n}\r\n\r\n")
        };
        let kind = |m: &str, n: u64| parse(head(m, n).as_bytes()).map(|r| r.unwrap().0.kind());
        assert_eq!(kind("RPC_IN_DATA", 0), Ok(RequestKind::Echo));
        assert_eq!(kind("RPC_OUT_DATA", 16), Ok(RequestKind::Echo));
        assert_eq!(kind("RPC_OUT_DATA", 76), Ok(RequestKind::OutChannel));
        assert_eq!(
            kind("RPC_OUT_DATA", 120),
            Ok(RequestKind::ReplacementOutChannel)
        );
        assert_eq!(kind("RPC_IN_DATA", 131072), Ok(RequestKind::InChannel));
        assert_eq!(kind("RPC_IN_DATA", 2 << 30), Ok(RequestKind::InChannel));
        assert!(matches!(
            kind("RPC_IN_DATA", 17),
            Err(HttpError::UnexpectedContentLength { .. })
        ));
        assert!(matches!(
            kind("RPC_OUT_DATA", 77),
            Err(HttpError::UnexpectedContentLength { .. })
        ));
        assert_eq!(
            kind("RPC_IN_DATA", (2 << 30) + 1)
                .unwrap_err()
                .http_status(),
            413
        );
    }

    #[test]
    fn refusals_and_statuses() {
        let cases: &[(&[u8], u16)] = &[
            (b"GET /rpc/rpcproxy.dll HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", 405),
            (b"rpc_in_data /rpc/rpcproxy.dll HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", 405),
            (b"RPC_IN_DATA /rpc/rpcproxy.dll HTTP/1.1\r\nHost: h\r\n\r\n", 411),
            (b"RPC_IN_DATA /rpc/rpcproxy.dll HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", 411),
            (b"RPC_IN_DATA /rpc/rpcproxy.dll HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n", 400),
            (b"RPC_IN_DATA /rpc/rpcproxy.dll HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n", 400),
            (b"RPC_IN_DATA /rpc/rpcproxy.dll HTTP/1.1\r\nHost: h\r\nContent-Length: +0\r\n\r\n", 400),
            (b"RPC_IN_DATA /rpc/rpcproxy.dll HTTP/1.1\r\nHost: h\r\nContent-Length: 0, 0\r\n\r\n", 400),
            (b"RPC_IN_DATA /rpc/rpcproxy.dll HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400),
            (b"RPC_IN_DATA /rpc/rpcproxy.dll HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n", 400),
            (b"RPC_IN_DATA /rpc/rpcproxy.dll HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nExpect: 200-ok\r\n\r\n", 417),
            (b"RPC_IN_DATA /rpc/rpcproxy.dll HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 400),
            (b"RPC_IN_DATA /rpc/rpcproxy.dll HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: 0\r\n\r\n", 400),
            (b"RPC_IN_DATA /rpc/rpcproxy.dll HTTP/1.1\r\nHost: a\r\nAuthorization: a\r\nAuthorization: b\r\nContent-Length: 0\r\n\r\n", 400),
            (b"RPC_IN_DATA /rpc/rpcproxy.dll HTTP/2.0\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 505),
            (b"RPC_IN_DATA /rpc/rpcproxy.dll HTTP/1.1\r\nHost: a\r\n Folded: x\r\nContent-Length: 0\r\n\r\n", 400),
        ];
        for (input, status) in cases {
            assert_eq!(
                err(input).http_status(),
                *status,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn http10_echo_without_host() {
        let (head, _) = parse(b"RPC_IN_DATA /rpc/rpcproxy.dll HTTP/1.0\r\nContent-Length: 4\r\nConnection: Keep-Alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(head.version, HttpVersion::Http10);
        assert!(head.keep_alive);
        assert!(head.is_echo());
        assert!(!head.expect_continue);
    }

    #[test]
    fn limits() {
        let limits = HttpLimits {
            max_head_len: 64,
            max_headers: 2,
            ..HttpLimits::default()
        };
        let long = vec![b'A'; 64];
        assert_eq!(
            parse_request_head(&long, &limits)
                .unwrap_err()
                .http_status(),
            431
        );
        assert_eq!(parse_request_head(&long[..63], &limits), Ok(None));
        let many = b"RPC_IN_DATA / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        assert_eq!(
            parse_request_head(many, &limits).unwrap_err(),
            HttpError::TooManyHeaders { limit: 2 }
        );
    }

    #[test]
    fn pragmas() {
        let (head, _) = parse(
            b"RPC_OUT_DATA /rpc/rpcproxy.dll HTTP/1.1\r\nHost: h\r\nContent-Length: 76\r\n\
Pragma: No-cache, MinConnTimeout=900\r\nPragma: ResourceTypeUuid=44e265dd-7daf-42cd-8560-3cdb6e7a2729, SessionId=fbb3a4f8\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            head.pragma,
            Pragmas {
                no_cache: true,
                min_conn_timeout: Some(900),
                resource_type_uuid: Some("44e265dd-7daf-42cd-8560-3cdb6e7a2729"),
                session_id: Some("fbb3a4f8"),
            }
        );
        let mut p = Pragmas::default();
        parse_pragma(b"MinConnTimeout=5", &mut p);
        assert_eq!(p.min_conn_timeout, Some(120));
        parse_pragma(b"MinConnTimeout=99999999999", &mut p);
        assert_eq!(p.min_conn_timeout, None);
        parse_pragma(b"MinConnTimeout=100000", &mut p);
        assert_eq!(p.min_conn_timeout, Some(14_400));
    }

    #[test]
    fn response_heads() {
        let mut out = Vec::new();
        encode_continue(&mut out);
        assert_eq!(out, b"HTTP/1.1 100 Continue\r\n\r\n");
        out.clear();
        encode_rpc_response_head(&mut out, OUT_CHANNEL_RESPONSE_CONTENT_LENGTH);
        assert_eq!(
            out,
            &b"HTTP/1.1 200 Success\r\nContent-Type: application/rpc\r\nContent-Length: 1073741824\r\n\
Cache-Control: no-cache\r\nPragma: no-cache\r\nConnection: Keep-Alive\r\n\r\n"[..]
        );
        assert_eq!(&out[9..12], b"200");
        out.clear();
        encode_echo_response_head(&mut out);
        assert!(out.starts_with(b"HTTP/1.1 200 Success\r\n"));
        assert!(out.windows(20).any(|w| w == b"Content-Length: 20\r\n"));
        out.clear();
        let challenges = [
            HeaderValue::new("NTLM TlRMTVNTUAACAAAA").unwrap(),
            HeaderValue::new("Basic realm=\"cas\"").unwrap(),
        ];
        encode_unauthorized(&mut out, &challenges);
        assert_eq!(
            out,
            &b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: NTLM TlRMTVNTUAACAAAA\r\n\
WWW-Authenticate: Basic realm=\"cas\"\r\nContent-Length: 0\r\nConnection: Keep-Alive\r\n\r\n"[..]
        );
        out.clear();
        encode_error_response(&mut out, ErrorStatus::MethodNotAllowed, true);
        assert_eq!(
            out,
            &b"HTTP/1.1 405 Method Not Allowed\r\nAllow: RPC_IN_DATA, RPC_OUT_DATA\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"[..]
        );
        out.clear();
        encode_rpc_error_response(&mut out, 0x6ba);
        assert!(out.starts_with(b"HTTP/1.0 503 RPC Error: 6BA\r\n"));
    }

    #[test]
    fn header_values_cannot_split() {
        for bad in [
            &b"a\r\nSet-Cookie: x"[..],
            b"a\nb",
            b"a\0",
            b" a",
            b"a\t",
            "é".as_bytes(),
        ] {
            assert!(HeaderValue::new(bad).is_err(), "{bad:?}");
        }
        assert!(HeaderValue::new("NTLM abc+/=").is_ok());
        assert!(HeaderValue::new("").is_ok());
    }

    #[test]
    fn statuses_round_trip() {
        for code in [400, 401, 403, 404, 405, 411, 413, 417, 431, 503, 505] {
            assert_eq!(
                ErrorStatus::from_code(code).map(ErrorStatus::code),
                Some(code)
            );
        }
        assert_eq!(ErrorStatus::from_code(200), None);
    }

    #[test]
    fn lifetime() {
        let mut l = ChannelLifetime::new(1 << 30);
        assert_eq!(l.remaining(), 1 << 30);
        assert!(!l.should_recycle());
        l.record((1 << 30) - 512 * 1024 - 1).unwrap();
        assert!(!l.should_recycle());
        l.record(1).unwrap();
        assert!(l.should_recycle());
        assert!(l.fits(512 * 1024));
        assert!(!l.fits(512 * 1024 + 1));
        let e = l.record(512 * 1024 + 1).unwrap_err();
        assert_eq!(e.remaining, 512 * 1024);
        assert_eq!(l.transferred(), (1 << 30) - 512 * 1024);
        l.record(512 * 1024).unwrap();
        assert!(l.is_exhausted());
        assert!(l.record(1).is_err());
        assert!(l.record(0).is_ok());

        // A replacement OUT channel request body (120 bytes): recycles half-way by default.
        let mut small = ChannelLifetime::new(120);
        small.record(59).unwrap();
        assert!(!small.should_recycle());
        small.record(1).unwrap();
        assert!(small.should_recycle());
        let custom = ChannelLifetime::new(1000).with_recycle_margin(5000);
        assert!(custom.should_recycle());
    }

    #[test]
    fn client_request_round_trip() {
        let target =
            crate::target::parse_request_target(b"/rpc/rpcproxy.dll?mbx01.corp.example:6001")
                .unwrap();
        let req = ChannelRequest {
            method: ChannelMethod::RpcOutData,
            target,
            host: HeaderValue::new("cas.example").unwrap(),
            content_length: 76,
            expect_continue: true,
            authorization: Some(HeaderValue::new("NTLM TlRMTVNTUAADAAAA").unwrap()),
            min_conn_timeout: Some(900),
        };
        let mut out = Vec::new();
        encode_request_head(&mut out, &req);
        let (head, len) = parse(&out).unwrap().unwrap();
        assert_eq!(len, out.len());
        assert_eq!(head.method, req.method);
        assert_eq!(
            crate::target::parse_request_target(head.target),
            Ok(req.target.clone())
        );
        assert_eq!(head.content_length, 76);
        assert!(head.expect_continue);
        assert_eq!(head.pragma.min_conn_timeout, Some(900));
        assert_eq!(head.authorization, Some(&b"NTLM TlRMTVNTUAADAAAA"[..]));
        assert_eq!(head.kind(), RequestKind::OutChannel);
    }
}
