//! The generic HTTP/1.1 layer of the HTTPS endpoint: reading one request head within the
//! limits, reading a small body, and writing a response.
//!
//! The RPC methods get a second, stricter parse by `rpch_framing::http::parse_request_head`
//! once the router knows the request is for the proxy; this layer only has to be good enough
//! to route, authenticate and answer the other paths (autodiscover, autoconfig, 404s).
//! Heads are parsed with `httparse`, which borrows from the buffer; what the server keeps is
//! copied into a small [`Head`].

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Why a request head could not be read.
#[derive(Debug)]
pub enum HeadError {
    /// The socket failed, timed out or closed in the middle of a head.
    Io(io::Error),
    /// Longer than the head limit or more header fields than allowed: `431`.
    TooLarge,
    /// Not HTTP/1.x syntax, or contradictory framing headers: `400`.
    Malformed(&'static str),
}

/// The parts of a request head the router, the authentication and the handlers use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The method token as sent.
    pub method: String,
    /// The path of the request target, before any `?`.
    pub path: String,
    /// The query after `?` (empty when there is none).
    pub query: String,
    /// `1` for HTTP/1.1, `0` for HTTP/1.0.
    pub minor_version: u8,
    /// The `Content-Length` value, if the request has one.
    pub content_length: Option<u64>,
    /// A `Transfer-Encoding` header was present (bodies here are Content-Length delimited).
    pub transfer_encoding: bool,
    /// The connection may carry another request after this one.
    pub keep_alive: bool,
    /// The `Authorization` header value.
    pub authorization: Option<Vec<u8>>,
    /// `Expect: 100-continue` was sent.
    pub expect_continue: bool,
    /// The `User-Agent` value (lossy UTF-8, for the log).
    pub user_agent: String,
}

impl Head {
    /// The body length to read or skip (0 without a Content-Length).
    pub fn body_len(&self) -> u64 {
        self.content_length.unwrap_or(0)
    }

    /// Whether the method is `HEAD` (responses carry no body).
    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }

    /// Parses a complete head, `buf` holding exactly the head (request line to blank line).
    pub fn parse(buf: &[u8], max_headers: usize) -> Result<Head, HeadError> {
        let mut headers = vec![httparse::EMPTY_HEADER; max_headers];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(buf) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(HeadError::Malformed("incomplete head")),
            Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
            Err(_) => return Err(HeadError::Malformed("not an HTTP/1.x request head")),
        }
        let minor_version = req.version.unwrap_or(1);
        let target = req.path.unwrap_or("");
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut head = Head {
            method: req.method.unwrap_or("").to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            minor_version,
            content_length: None,
            transfer_encoding: false,
            keep_alive: minor_version >= 1,
            authorization: None,
            expect_continue: false,
            user_agent: String::new(),
        };
        for h in req.headers.iter() {
            let name = h.name;
            if name.eq_ignore_ascii_case("authorization") {
                // Two credentials in one request cannot both be meant.
                if head.authorization.replace(h.value.to_vec()).is_some() {
                    return Err(HeadError::Malformed("duplicate Authorization"));
                }
            } else if name.eq_ignore_ascii_case("content-length") {
                let n = std::str::from_utf8(h.value)
                    .ok()
                    .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or(HeadError::Malformed("invalid Content-Length"))?;
                // Any second Content-Length is the request-smuggling shape: refuse it.
                if head.content_length.replace(n).is_some() {
                    return Err(HeadError::Malformed("duplicate Content-Length"));
                }
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                head.transfer_encoding = true;
            } else if name.eq_ignore_ascii_case("expect") {
                head.expect_continue = h.value.eq_ignore_ascii_case(b"100-continue");
            } else if name.eq_ignore_ascii_case("user-agent") {
                head.user_agent =
                    String::from_utf8_lossy(&h.value[..h.value.len().min(256)]).into_owned();
            } else if name.eq_ignore_ascii_case("connection") {
                for token in h.value.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    if token.eq_ignore_ascii_case(b"close") {
                        head.keep_alive = false;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        head.keep_alive = true;
                    }
                }
            }
        }
        if head.transfer_encoding && head.content_length.is_some() {
            return Err(HeadError::Malformed(
                "both Transfer-Encoding and Content-Length",
            ));
        }
        Ok(head)
    }
}

/// Reads until `buf` holds a complete request head and returns its length (the head is
/// `buf[..len]`, body bytes follow). `Ok(None)`: the peer closed cleanly between requests.
/// Waits at most `idle` for each read.
pub async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    max_head_len: usize,
    max_headers: usize,
    idle: Duration,
) -> Result<Option<usize>, HeadError> {
    let mut scanned: usize = 0;
    loop {
        // Look for the blank line only in the bytes not scanned yet (3 bytes of overlap), so
        // a head arriving byte by byte costs linear time.
        let from = scanned.saturating_sub(3);
        if let Some(end) = find_head_end(&buf[from..]) {
            let len = from + end;
            if len > max_head_len {
                return Err(HeadError::TooLarge);
            }
            // httparse counts the fields; more than the limit is a 431 like a long head.
            let mut headers = vec![httparse::EMPTY_HEADER; max_headers];
            return match httparse::Request::new(&mut headers).parse(&buf[..len]) {
                Ok(_) => Ok(Some(len)),
                Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooLarge),
                Err(_) => Err(HeadError::Malformed("not an HTTP/1.x request head")),
            };
        }
        scanned = buf.len();
        if buf.len() >= max_head_len {
            return Err(HeadError::TooLarge);
        }
        let mut chunk = [0u8; 4096];
        let want = chunk.len().min(max_head_len + 4 - buf.len());
        let n = match tokio::time::timeout(idle, stream.read(&mut chunk[..want])).await {
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

/// The length of the head in `data` (through `\r\n\r\n` or a bare `\n\n`), if complete.
fn find_head_end(data: &[u8]) -> Option<usize> {
    let crlf = memchr_find(data, b"\r\n\r\n").map(|i| i + 4);
    let lf = memchr_find(data, b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn memchr_find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads exactly `len` body bytes, first from `buf` (which keeps what follows them).
pub async fn read_body<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    len: usize,
    idle: Duration,
) -> io::Result<Vec<u8>> {
    let mut chunk = [0u8; 8192];
    while buf.len() < len {
        let want = (len - buf.len()).min(chunk.len());
        let n = tokio::time::timeout(idle, stream.read(&mut chunk[..want]))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let rest = buf.split_off(len);
    Ok(std::mem::replace(buf, rest))
}

/// An HTTP response of this endpoint: status, extra headers and a body sent with
/// `Content-Length`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Header fields besides `Content-Length` and `Connection` (which [`encode`](Self::encode)
    /// writes).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// A reply with no body.
    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A `text/plain` reply.
    pub fn text(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![(
                "Content-Type".to_owned(),
                "text/plain; charset=utf-8".to_owned(),
            )],
            body: body.as_bytes().to_vec(),
        }
    }

    /// `401` with one `WWW-Authenticate` field per challenge.
    pub fn unauthorized(challenges: Vec<String>) -> Reply {
        Reply {
            status: 401,
            headers: challenges
                .into_iter()
                .map(|c| ("WWW-Authenticate".to_owned(), c))
                .collect(),
            body: Vec::new(),
        }
    }

    /// Adds a header field.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// The wire form: status line, headers, `Content-Length`, `Connection`, body (left out
    /// when `head_only`, as for `HEAD`).
    pub fn encode(&self, head_only: bool, close: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.body.len());
        out.extend_from_slice(
            format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status)).as_bytes(),
        );
        for (name, value) in &self.headers {
            // Values come from this server; a line break would split the response, so drop
            // any field that has one rather than send it.
            if value.bytes().any(|b| b == b'\r' || b == b'\n') {
                continue;
            }
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        out.extend_from_slice(if close {
            b"Connection: close\r\n".as_slice()
        } else {
            b"Connection: Keep-Alive\r\n".as_slice()
        });
        out.extend_from_slice(b"\r\n");
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// The reason phrase of the statuses this endpoint sends (RFC 9110 §15, RFC 6585).
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        417 => "Expectation Failed",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn heads_are_read_parsed_and_bounded() {
        let mut buf = Vec::new();
        let mut input: &[u8] = b"POST /Autodiscover/Autodiscover.xml?x=1 HTTP/1.1\r\nHost: h\r\nAuthorization: NTLM abc\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nxyzGET";
        let len = read_head(&mut input, &mut buf, 16384, 64, IDLE)
            .await
            .unwrap()
            .unwrap();
        let head = Head::parse(&buf[..len], 64).unwrap();
        assert_eq!(head.method, "POST");
        assert_eq!(head.path, "/Autodiscover/Autodiscover.xml");
        assert_eq!(head.query, "x=1");
        assert_eq!(head.authorization.as_deref(), Some(&b"NTLM abc"[..]));
        assert_eq!(head.content_length, Some(3));
        assert!(head.keep_alive && head.expect_continue);
        buf.drain(..len);
        let mut empty: &[u8] = b"";
        let body = read_body(&mut empty, &mut buf, 3, IDLE).await.unwrap();
        assert_eq!(body, b"xyz");
        assert_eq!(buf, b"GET");

        let mut input: &[u8] = b"GET / HTTP/1.0\r\n\r\n";
        let mut buf = Vec::new();
        let len = read_head(&mut input, &mut buf, 16384, 64, IDLE)
            .await
            .unwrap()
            .unwrap();
        assert!(!Head::parse(&buf[..len], 64).unwrap().keep_alive);

        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "A: b\r\n".repeat(65));
        let mut input = many.as_bytes();
        assert!(matches!(
            read_head(&mut input, &mut Vec::new(), 16384, 64, IDLE).await,
            Err(HeadError::TooLarge)
        ));
        let big = format!("GET / HTTP/1.1\r\nA: {}", "b".repeat(20000));
        let mut input = big.as_bytes();
        assert!(matches!(
            read_head(&mut input, &mut Vec::new(), 16384, 64, IDLE).await,
            Err(HeadError::TooLarge)
        ));
        let mut input: &[u8] = b"";
        assert!(matches!(
            read_head(&mut input, &mut Vec::new(), 16384, 64, IDLE).await,
            Ok(None)
        ));
        let mut input: &[u8] = b"GET / HT";
        assert!(matches!(
            read_head(&mut input, &mut Vec::new(), 16384, 64, IDLE).await,
            Err(HeadError::Io(_))
        ));
    }

    #[test]
    fn framing_headers_are_strict() {
        for bad in [
            &b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        ] {
            assert!(
                matches!(Head::parse(bad, 64), Err(HeadError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let head = Head::parse(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 64).unwrap();
        assert!(head.keep_alive);
        let head = Head::parse(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 64).unwrap();
        assert!(!head.keep_alive);
    }

    #[test]
    fn replies_are_encoded_without_injected_lines() {
        let r = Reply::unauthorized(vec!["NTLM".into(), "Basic realm=\"x\"".into()])
            .with_header("X-Evil", "a\r\nSet-Cookie: b");
        let text = String::from_utf8(r.encode(false, false)).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: NTLM\r\nWWW-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\nConnection: Keep-Alive\r\n\r\n"
        );
        let r = Reply::text(404, "nope");
        let text = String::from_utf8(r.encode(true, true)).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(text.contains("Content-Length: 4\r\nConnection: close\r\n\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
    }
}
