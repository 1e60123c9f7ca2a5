//! Server responses: status lines with RFC 2449 response codes, SASL continuations, the
//! capability list, STAT / LIST / UIDL listings and LANG listings. Every type has an encoder
//! (used by the server) and a parser (used by the client).
//!
//! Encoders are total. Text that cannot appear on the wire is made safe rather than refused:
//! CR, LF and NUL in free text become spaces, and characters that are not allowed in a token
//! (capability tags and parameters, mechanism names) become `_`. Lines of a multi-line
//! response that start with `.` are dot-stuffed.

use std::fmt;

use base64::Engine as _;
use nom::{IResult, Parser, bytes::complete::take_while1, combinator::verify};

use crate::command::{BASE64, decode_base64};
use crate::error::{InvalidUid, ParseError, ParseErrorKind};

/// The line that ends every multi-line response.
pub const TERMINATOR: &[u8] = b".\r\n";

/// `+OK` or `-ERR`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// `+OK`
    Ok,
    /// `-ERR`
    Err,
}

impl Status {
    /// The status indicator as sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "+OK",
            Self::Err => "-ERR",
        }
    }
}

/// An extension response code that this crate does not know by name, e.g. `X-FOO/BAR`.
///
/// Invariant: `resp-level *("/" resp-level)`, `resp-level = 1*rchar`,
/// `rchar = %x21-2E / %x30-5C / %x5E-7F` (RFC 2449 §8).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ExtensionCode(String);

impl ExtensionCode {
    /// Validates a code (without brackets).
    pub fn new(code: impl Into<String>) -> Result<Self, ParseError> {
        let code = code.into();
        let ok = !code.is_empty()
            && code
                .split('/')
                .all(|lvl| !lvl.is_empty() && lvl.bytes().all(is_rchar));
        if ok {
            Ok(Self(code))
        } else {
            Err(ParseError::new(ParseErrorKind::InvalidResponseCode, 0))
        }
    }

    /// The code text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A response code in brackets after `+OK` / `-ERR` (RFC 2449 §8).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResponseCode {
    /// `[IN-USE]`: the maildrop is locked by another session (RFC 2449 §8.1.1).
    InUse,
    /// `[LOGIN-DELAY]`: logged in too recently (RFC 2449 §8.1.2).
    LoginDelay,
    /// `[SYS/TEMP]`: temporary system problem (RFC 3206 §4).
    SysTemp,
    /// `[SYS/PERM]`: permanent system problem (RFC 3206 §4).
    SysPerm,
    /// `[AUTH]`: credentials problem (RFC 3206 §5).
    Auth,
    /// `[UTF8]`: the operation needs UTF-8 mode (RFC 6856 §2).
    Utf8,
    /// Any other code.
    Other(ExtensionCode),
}

impl ResponseCode {
    /// The code text without brackets.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InUse => "IN-USE",
            Self::LoginDelay => "LOGIN-DELAY",
            Self::SysTemp => "SYS/TEMP",
            Self::SysPerm => "SYS/PERM",
            Self::Auth => "AUTH",
            Self::Utf8 => "UTF8",
            Self::Other(c) => c.as_str(),
        }
    }

    fn from_text(s: &str) -> Result<Self, ParseError> {
        const KNOWN: [(&str, ResponseCode); 6] = [
            ("IN-USE", ResponseCode::InUse),
            ("LOGIN-DELAY", ResponseCode::LoginDelay),
            ("SYS/TEMP", ResponseCode::SysTemp),
            ("SYS/PERM", ResponseCode::SysPerm),
            ("AUTH", ResponseCode::Auth),
            ("UTF8", ResponseCode::Utf8),
        ];
        for (name, code) in KNOWN {
            if s.eq_ignore_ascii_case(name) {
                return Ok(code);
            }
        }
        ExtensionCode::new(s).map(Self::Other)
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn is_rchar(b: u8) -> bool {
    matches!(b, 0x21..=0x2e | 0x30..=0x5c | 0x5e..=0x7f)
}

/// A single-line status response: `single-line = status [SP text] CRLF`,
/// `text = *schar / resp-code *CHAR` (RFC 2449 §3, §8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusLine {
    /// `+OK` or `-ERR`.
    pub status: Status,
    /// Optional bracketed response code.
    pub code: Option<ResponseCode>,
    /// Human-readable text (may be empty). For `STAT` and single `LIST`/`UIDL` replies the
    /// text carries the listing.
    pub text: String,
}

impl StatusLine {
    /// `+OK text`.
    pub fn ok(text: impl Into<String>) -> Self {
        Self {
            status: Status::Ok,
            code: None,
            text: text.into(),
        }
    }

    /// `-ERR text`.
    pub fn err(text: impl Into<String>) -> Self {
        Self {
            status: Status::Err,
            code: None,
            text: text.into(),
        }
    }

    /// `-ERR [code] text`.
    pub fn err_with(code: ResponseCode, text: impl Into<String>) -> Self {
        Self {
            status: Status::Err,
            code: Some(code),
            text: text.into(),
        }
    }

    /// Appends the line and CRLF. CR, LF and NUL in the text are sent as spaces.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.status.as_str().as_bytes());
        if let Some(code) = &self.code {
            out.extend_from_slice(b" [");
            out.extend_from_slice(code.as_str().as_bytes());
            out.push(b']');
        }
        if !self.text.is_empty() {
            out.push(b' ');
            push_text(out, self.text.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }

    /// Parses a status line (without its line end). Status indicators are matched
    /// case-insensitively; a malformed bracket is kept as text.
    pub fn parse(line: &[u8]) -> Result<Self, ParseError> {
        let (rest, status) =
            status(line).map_err(|_| ParseError::new(ParseErrorKind::InvalidStatus, 0))?;
        let rest = match rest.split_first() {
            None => &[][..],
            Some((b' ', r)) => r,
            Some(_) => return Err(ParseError::new(ParseErrorKind::InvalidStatus, 0)),
        };
        let (code, text) = match resp_code(rest) {
            Ok((after, code)) => (Some(code), after.strip_prefix(b" ").unwrap_or(after)),
            Err(_) => (None, rest),
        };
        Ok(Self {
            status,
            code,
            text: String::from_utf8_lossy(text).into_owned(),
        })
    }
}

/// `status = "+OK" / "-ERR"` (RFC 2449 §3).
fn status(i: &[u8]) -> IResult<&[u8], Status> {
    let (rest, word) =
        take_while1(|b: u8| b == b'+' || b == b'-' || b.is_ascii_alphabetic()).parse(i)?;
    if word.eq_ignore_ascii_case(b"+OK") {
        Ok((rest, Status::Ok))
    } else if word.eq_ignore_ascii_case(b"-ERR") {
        Ok((rest, Status::Err))
    } else {
        Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Tag,
        )))
    }
}

/// `resp-code = "[" resp-level *("/" resp-level) "]"`, `resp-level = 1*rchar`
/// (RFC 2449 §8).
fn resp_code(i: &[u8]) -> IResult<&[u8], ResponseCode> {
    let fail = || nom::Err::Error(nom::error::Error::new(i, nom::error::ErrorKind::Verify));
    let inner = i.strip_prefix(b"[").ok_or_else(fail)?;
    let (rest, body) = take_while1(|b: u8| is_rchar(b) || b == b'/').parse(inner)?;
    let rest = rest.strip_prefix(b"]").ok_or_else(fail)?;
    let text = std::str::from_utf8(body).map_err(|_| fail())?;
    let code = ResponseCode::from_text(text).map_err(|_| fail())?;
    Ok((rest, code))
}

/// One line of a response as the client sees it before knowing whether a multi-line body
/// follows: a status line or a SASL continuation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// `+OK ...` / `-ERR ...`.
    Status(StatusLine),
    /// `continue-req = "+" SP [base64] CRLF` (RFC 5034 §4), decoded. Empty for `+ `.
    Continuation(Vec<u8>),
}

impl Response {
    /// Parses one response line (without its line end).
    pub fn parse(line: &[u8]) -> Result<Self, ParseError> {
        match line {
            [b'+'] => Ok(Self::Continuation(Vec::new())),
            [b'+', b' ', data @ ..] => {
                let data = trim_end(data);
                if data.is_empty() {
                    Ok(Self::Continuation(Vec::new()))
                } else {
                    decode_base64(data)
                        .map(Self::Continuation)
                        .map_err(|e| ParseError::new(e.kind, e.offset.saturating_add(2)))
                }
            }
            _ => StatusLine::parse(line).map(Self::Status),
        }
    }

    /// Appends the line and CRLF.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Status(s) => s.encode(out),
            Self::Continuation(data) => encode_continuation(data, out),
        }
    }
}

/// Appends a SASL continuation `"+ " base64 CRLF` (`"+ " CRLF` when `data` is empty).
pub fn encode_continuation(data: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"+ ");
    out.extend_from_slice(BASE64.encode(data).as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn trim_end(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

fn push_text(out: &mut Vec<u8>, text: &[u8]) {
    out.extend(text.iter().map(|&b| {
        if matches!(b, b'\r' | b'\n' | 0) {
            b' '
        } else {
            b
        }
    }));
}

fn push_token(out: &mut Vec<u8>, tok: &str) {
    if tok.is_empty() {
        out.push(b'_');
    }
    out.extend(
        tok.bytes()
            .map(|b| if b > 0x20 && b != 0x7f { b } else { b'_' }),
    );
}

/// Starts a multi-line body line, dot-stuffing it when it begins with `.`.
fn start_body_line(out: &mut Vec<u8>, first: Option<u8>) {
    if first == Some(b'.') {
        out.push(b'.');
    }
}

/// A validated POP3 unique-id: 1..=70 octets in 0x21..=0x7E (RFC 1939 §7).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uid(String);

impl Uid {
    /// Validates a unique-id.
    pub fn new(uid: impl Into<String>) -> Result<Self, InvalidUid> {
        let uid = uid.into();
        if (1..=70).contains(&uid.len()) && uid.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            Ok(Self(uid))
        } else {
            Err(InvalidUid)
        }
    }

    /// The unique-id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A decimal number that fits `u32` / `u64` (`1*DIGIT`).
fn decimal<T: TryFrom<u64>>(i: &[u8]) -> IResult<&[u8], T> {
    let fail = || nom::Err::Error(nom::error::Error::new(i, nom::error::ErrorKind::Digit));
    let (rest, digits) = verify(take_while1(|b: u8| b.is_ascii_digit()), |d: &[u8]| {
        d.len() <= 20
    })
    .parse(i)?;
    let mut n: u64 = 0;
    for &d in digits {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .ok_or_else(fail)?;
    }
    T::try_from(n).map(|v| (rest, v)).map_err(|_| fail())
}

/// Splits `a SP b [SP anything]` into two numbers / tokens (RFC 1939 allows servers to append
/// information after a listing).
fn two_fields(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut it = line.split(|&b| b == b' ').filter(|f| !f.is_empty());
    Some((it.next()?, it.next()?))
}

fn full<'a, T>(f: impl Fn(&'a [u8]) -> IResult<&'a [u8], T>, i: &'a [u8]) -> Option<T> {
    match f(i) {
        Ok((b"", v)) => Some(v),
        _ => None,
    }
}

/// The `STAT` reply: `+OK count size` — a "drop listing" (RFC 1939 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DropListing {
    /// Number of (non-deleted) messages.
    pub count: u32,
    /// Their total size in octets, CRLF-counted.
    pub size: u64,
}

impl DropListing {
    /// Appends `+OK count size CRLF`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(format!("+OK {} {}\r\n", self.count, self.size).as_bytes());
    }

    /// Parses the text of a `+OK` status line (`count SP size [...]`).
    pub fn parse_text(text: &str) -> Result<Self, ParseError> {
        let (a, b) = two_fields(text.as_bytes())
            .ok_or(ParseError::new(ParseErrorKind::MissingArgument, 0))?;
        match (full(decimal::<u32>, a), full(decimal::<u64>, b)) {
            (Some(count), Some(size)) => Ok(Self { count, size }),
            _ => Err(ParseError::new(ParseErrorKind::InvalidNumber, 0)),
        }
    }
}

/// A `LIST` entry: `scan-listing = msg SP size` (RFC 1939 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ScanListing {
    /// Message number.
    pub message: u32,
    /// Size in octets, CRLF-counted.
    pub size: u64,
}

impl ScanListing {
    /// Appends `msg SP size CRLF` (a line of the multi-line `LIST` reply).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(format!("{} {}\r\n", self.message, self.size).as_bytes());
    }

    /// Parses a listing line, or the text of a single-line `+OK` reply to `LIST n`.
    pub fn parse(line: &[u8]) -> Result<Self, ParseError> {
        let (a, b) = two_fields(line).ok_or(ParseError::new(ParseErrorKind::MissingArgument, 0))?;
        match (full(decimal::<u32>, a), full(decimal::<u64>, b)) {
            (Some(message), Some(size)) => Ok(Self { message, size }),
            _ => Err(ParseError::new(ParseErrorKind::InvalidNumber, 0)),
        }
    }
}

/// A `UIDL` entry: `unique-id-listing = msg SP unique-id` (RFC 1939 §7).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UidListing {
    /// Message number.
    pub message: u32,
    /// The message's unique-id.
    pub uid: Uid,
}

impl UidListing {
    /// Appends `msg SP unique-id CRLF`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(format!("{} {}\r\n", self.message, self.uid.as_str()).as_bytes());
    }

    /// Parses a listing line, or the text of a single-line `+OK` reply to `UIDL n`.
    pub fn parse(line: &[u8]) -> Result<Self, ParseError> {
        let (a, b) = two_fields(line).ok_or(ParseError::new(ParseErrorKind::MissingArgument, 0))?;
        let message =
            full(decimal::<u32>, a).ok_or(ParseError::new(ParseErrorKind::InvalidNumber, 0))?;
        let uid = std::str::from_utf8(b)
            .ok()
            .and_then(|s| Uid::new(s).ok())
            .ok_or(ParseError::new(ParseErrorKind::InvalidUid, 0))?;
        Ok(Self { message, uid })
    }
}

/// A line of the multi-line `LANG` reply: `language-listing = language-tag SP description`
/// (RFC 6856 §3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LanguageListing {
    /// The language tag.
    pub tag: String,
    /// Human-readable description.
    pub description: String,
}

impl LanguageListing {
    /// Appends the line (dot-stuffed if needed) and CRLF.
    pub fn encode(&self, out: &mut Vec<u8>) {
        start_body_line(out, self.tag.bytes().next());
        push_token(out, &self.tag);
        out.push(b' ');
        push_text(out, self.description.as_bytes());
        out.extend_from_slice(b"\r\n");
    }

    /// Parses an (un-stuffed) listing line.
    pub fn parse(line: &[u8]) -> Result<Self, ParseError> {
        let text = String::from_utf8_lossy(line);
        let (tag, description) = text.split_once(' ').unwrap_or((&text, ""));
        if tag.is_empty() {
            return Err(ParseError::new(ParseErrorKind::MissingArgument, 0));
        }
        Ok(Self {
            tag: tag.to_owned(),
            description: description.to_owned(),
        })
    }
}

/// The `EXPIRE` policy (RFC 2449 §6.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Expire {
    /// `NEVER`: the server never deletes messages on its own.
    Never,
    /// Messages may be deleted this many days after first retrieval (0: right after `QUIT`).
    Days(u32),
}

/// One line of the `CAPA` reply: `capability = capa-tag *(SP param) CRLF` (RFC 2449 §5).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Capability {
    /// `TOP` (RFC 2449 §6.1).
    Top,
    /// `USER` (RFC 2449 §6.2).
    User,
    /// `SASL mech...` (RFC 2449 §6.3, RFC 5034).
    Sasl(Vec<String>),
    /// `RESP-CODES` (RFC 2449 §6.4).
    RespCodes,
    /// `LOGIN-DELAY seconds [USER]` (RFC 2449 §6.5); `per_user` only in AUTHORIZATION.
    LoginDelay {
        /// Minimum seconds between logins.
        seconds: u64,
        /// The delay may vary per user.
        per_user: bool,
    },
    /// `PIPELINING` (RFC 2449 §6.6).
    Pipelining,
    /// `EXPIRE policy [USER]` (RFC 2449 §6.7); `per_user` only in AUTHORIZATION.
    Expire {
        /// Retention policy.
        policy: Expire,
        /// The policy may vary per user.
        per_user: bool,
    },
    /// `UIDL` (RFC 2449 §6.8).
    Uidl,
    /// `IMPLEMENTATION text` (RFC 2449 §6.9).
    Implementation(String),
    /// `STLS` (RFC 2595 §4).
    Stls,
    /// `AUTH-RESP-CODE` (RFC 3206 §6).
    AuthRespCode,
    /// `UTF8 [USER]` (RFC 6856 §2); `user`: USER/PASS accept UTF-8 without the UTF8 command.
    Utf8 {
        /// The `USER` argument was present.
        user: bool,
    },
    /// `LANG` (RFC 6856 §3).
    Lang,
    /// Any other capability.
    Other {
        /// The capability tag.
        name: String,
        /// Its parameters.
        params: Vec<String>,
    },
}

impl Capability {
    /// Appends the capability line (dot-stuffed if needed) and CRLF.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let simple = |out: &mut Vec<u8>, s: &str| out.extend_from_slice(s.as_bytes());
        match self {
            Self::Top => simple(out, "TOP"),
            Self::User => simple(out, "USER"),
            Self::Sasl(mechs) => {
                simple(out, "SASL");
                for m in mechs {
                    out.push(b' ');
                    push_token(out, m);
                }
            }
            Self::RespCodes => simple(out, "RESP-CODES"),
            Self::LoginDelay { seconds, per_user } => {
                simple(out, &format!("LOGIN-DELAY {seconds}"));
                if *per_user {
                    simple(out, " USER");
                }
            }
            Self::Pipelining => simple(out, "PIPELINING"),
            Self::Expire { policy, per_user } => {
                match policy {
                    Expire::Never => simple(out, "EXPIRE NEVER"),
                    Expire::Days(d) => simple(out, &format!("EXPIRE {d}")),
                }
                if *per_user {
                    simple(out, " USER");
                }
            }
            Self::Uidl => simple(out, "UIDL"),
            Self::Implementation(text) => {
                simple(out, "IMPLEMENTATION");
                if !text.is_empty() {
                    out.push(b' ');
                    push_text(out, text.as_bytes());
                }
            }
            Self::Stls => simple(out, "STLS"),
            Self::AuthRespCode => simple(out, "AUTH-RESP-CODE"),
            Self::Utf8 { user } => simple(out, if *user { "UTF8 USER" } else { "UTF8" }),
            Self::Lang => simple(out, "LANG"),
            Self::Other { name, params } => {
                start_body_line(out, name.bytes().next());
                push_token(out, name);
                for p in params {
                    out.push(b' ');
                    push_token(out, p);
                }
            }
        }
        out.extend_from_slice(b"\r\n");
    }

    /// Parses one (un-stuffed) capability line. Tags are case-insensitive; a known tag with
    /// unexpected parameters is returned as [`Capability::Other`].
    pub fn parse(line: &[u8]) -> Result<Self, ParseError> {
        let text = std::str::from_utf8(line)
            .map_err(|e| ParseError::new(ParseErrorKind::InvalidUtf8, e.valid_up_to()))?;
        let text = text.trim_end_matches([' ', '\t']);
        let (tag, rest) = text.split_once(' ').unwrap_or((text, ""));
        if tag.is_empty() || tag.bytes().any(|b| b <= 0x20 || b == 0x7f) {
            return Err(ParseError::new(ParseErrorKind::InvalidCapability, 0));
        }
        let params: Vec<&str> = rest.split(' ').filter(|p| !p.is_empty()).collect();
        let upper = tag.to_ascii_uppercase();
        let parsed = match (upper.as_str(), params.as_slice()) {
            ("TOP", []) => Some(Self::Top),
            ("USER", []) => Some(Self::User),
            ("SASL", mechs) => Some(Self::Sasl(mechs.iter().map(|m| (*m).to_owned()).collect())),
            ("RESP-CODES", []) => Some(Self::RespCodes),
            ("LOGIN-DELAY", [secs, user @ ..]) if user.len() <= 1 => {
                let per_user = match user {
                    [] => Some(false),
                    [u] if u.eq_ignore_ascii_case("USER") => Some(true),
                    _ => None,
                };
                match (full(decimal::<u64>, secs.as_bytes()), per_user) {
                    (Some(seconds), Some(per_user)) => Some(Self::LoginDelay { seconds, per_user }),
                    _ => None,
                }
            }
            ("PIPELINING", []) => Some(Self::Pipelining),
            ("EXPIRE", [policy, user @ ..]) if user.len() <= 1 => {
                let per_user = match user {
                    [] => Some(false),
                    [u] if u.eq_ignore_ascii_case("USER") => Some(true),
                    _ => None,
                };
                let policy = if policy.eq_ignore_ascii_case("NEVER") {
                    Some(Expire::Never)
                } else {
                    full(decimal::<u32>, policy.as_bytes()).map(Expire::Days)
                };
                match (policy, per_user) {
                    (Some(policy), Some(per_user)) => Some(Self::Expire { policy, per_user }),
                    _ => None,
                }
            }
            ("UIDL", []) => Some(Self::Uidl),
            ("IMPLEMENTATION", _) => Some(Self::Implementation(rest.to_owned())),
            ("STLS", []) => Some(Self::Stls),
            ("AUTH-RESP-CODE", []) => Some(Self::AuthRespCode),
            ("UTF8", []) => Some(Self::Utf8 { user: false }),
            ("UTF8", [u]) if u.eq_ignore_ascii_case("USER") => Some(Self::Utf8 { user: true }),
            ("LANG", []) => Some(Self::Lang),
            _ => None,
        };
        Ok(parsed.unwrap_or_else(|| Self::Other {
            name: tag.to_owned(),
            params: params.iter().map(|p| (*p).to_owned()).collect(),
        }))
    }
}

/// Appends the complete `CAPA` reply: `+OK Capability list follows`, one line per
/// capability, and the terminating `.`.
pub fn encode_capabilities(caps: &[Capability], out: &mut Vec<u8>) {
    StatusLine::ok("Capability list follows").encode(out);
    for c in caps {
        c.encode(out);
    }
    out.extend_from_slice(TERMINATOR);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut v = Vec::new();
        f(&mut v);
        v
    }

    #[test]
    fn status_lines() {
        let table: Vec<(&[u8], StatusLine, &[u8])> = vec![
            (b"+OK", StatusLine::ok(""), b"+OK\r\n"),
            (b"+OK ", StatusLine::ok(""), b"+OK\r\n"),
            (
                b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>",
                StatusLine::ok("POP3 server ready <1896.697170952@dbc.mtview.ca.us>"),
                b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n",
            ),
            (
                b"-ERR no such message",
                StatusLine::err("no such message"),
                b"-ERR no such message\r\n",
            ),
            (b"+ok fine", StatusLine::ok("fine"), b"+OK fine\r\n"),
            (
                b"-ERR [IN-USE] Do you have another POP session running?",
                StatusLine::err_with(
                    ResponseCode::InUse,
                    "Do you have another POP session running?",
                ),
                b"-ERR [IN-USE] Do you have another POP session running?\r\n",
            ),
            (
                b"-ERR [LOGIN-DELAY] wait",
                StatusLine::err_with(ResponseCode::LoginDelay, "wait"),
                b"-ERR [LOGIN-DELAY] wait\r\n",
            ),
            (
                b"-ERR [SYS/TEMP] try later",
                StatusLine::err_with(ResponseCode::SysTemp, "try later"),
                b"-ERR [SYS/TEMP] try later\r\n",
            ),
            (
                b"-ERR [sys/perm] gone",
                StatusLine::err_with(ResponseCode::SysPerm, "gone"),
                b"-ERR [SYS/PERM] gone\r\n",
            ),
            (
                b"-ERR [AUTH] bad credentials",
                StatusLine::err_with(ResponseCode::Auth, "bad credentials"),
                b"-ERR [AUTH] bad credentials\r\n",
            ),
            (
                b"-ERR [UTF8]",
                StatusLine::err_with(ResponseCode::Utf8, ""),
                b"-ERR [UTF8]\r\n",
            ),
            (
                b"-ERR [X-FOO/BAR] odd",
                StatusLine::err_with(
                    ResponseCode::Other(
                        ExtensionCode::new("X-FOO/BAR").unwrap_or_else(|_| unreachable!()),
                    ),
                    "odd",
                ),
                b"-ERR [X-FOO/BAR] odd\r\n",
            ),
            (
                b"-ERR [not a code",
                StatusLine::err("[not a code"),
                b"-ERR [not a code\r\n",
            ),
        ];
        for (input, value, encoded) in table {
            assert_eq!(StatusLine::parse(input).as_ref(), Ok(&value));
            assert_eq!(enc(|o| value.encode(o)), encoded);
        }
        assert_eq!(enc(|o| StatusLine::ok("a\r\nb").encode(o)), b"+OK a  b\r\n");
        for bad in [&b""[..], b"OK", b"+OKAY", b"-ER", b"* OK"] {
            assert_eq!(
                StatusLine::parse(bad).map_err(|e| e.kind),
                Err(ParseErrorKind::InvalidStatus)
            );
        }
        assert!(ExtensionCode::new("A]B").is_err());
        assert!(ExtensionCode::new("A//B").is_err());
    }

    #[test]
    fn continuations() {
        assert_eq!(Response::parse(b"+ "), Ok(Response::Continuation(vec![])));
        assert_eq!(Response::parse(b"+"), Ok(Response::Continuation(vec![])));
        assert_eq!(
            Response::parse(b"+ VXNlcm5hbWU6"),
            Ok(Response::Continuation(b"Username:".to_vec()))
        );
        assert_eq!(
            Response::parse(b"+OK"),
            Ok(Response::Status(StatusLine::ok("")))
        );
        assert_eq!(
            Response::parse(b"+ !!").map_err(|e| e.kind),
            Err(ParseErrorKind::InvalidBase64)
        );
        assert_eq!(enc(|o| encode_continuation(b"", o)), b"+ \r\n");
        assert_eq!(
            enc(|o| Response::Continuation(b"Password:".to_vec()).encode(o)),
            b"+ UGFzc3dvcmQ6\r\n"
        );
    }

    #[test]
    fn listings() {
        assert_eq!(
            enc(|o| DropListing {
                count: 2,
                size: 320
            }
            .encode(o)),
            b"+OK 2 320\r\n"
        );
        assert_eq!(
            DropListing::parse_text("2 320"),
            Ok(DropListing {
                count: 2,
                size: 320
            })
        );
        assert!(DropListing::parse_text("2").is_err());
        assert!(DropListing::parse_text("x 3").is_err());
        let s = ScanListing {
            message: 1,
            size: 120,
        };
        assert_eq!(enc(|o| s.encode(o)), b"1 120\r\n");
        assert_eq!(ScanListing::parse(b"1 120"), Ok(s));
        assert_eq!(ScanListing::parse(b"1 120 extra info"), Ok(s));
        assert!(ScanListing::parse(b"1").is_err());
        assert!(ScanListing::parse(b"1 -5").is_err());
        let uid = Uid::new("whqtswO00WBw418f9t5JxYwZ").unwrap_or_else(|_| unreachable!());
        let u = UidListing { message: 1, uid };
        assert_eq!(enc(|o| u.encode(o)), b"1 whqtswO00WBw418f9t5JxYwZ\r\n");
        assert_eq!(UidListing::parse(b"1 whqtswO00WBw418f9t5JxYwZ"), Ok(u));
        assert_eq!(
            UidListing::parse(b"1 ").map_err(|e| e.kind),
            Err(ParseErrorKind::MissingArgument)
        );
        assert!(Uid::new("").is_err());
        assert!(Uid::new("a b").is_err());
        assert!(Uid::new("x".repeat(71)).is_err());
        assert!(Uid::new("x".repeat(70)).is_ok());
        let l = LanguageListing {
            tag: "en".into(),
            description: "English".into(),
        };
        assert_eq!(enc(|o| l.encode(o)), b"en English\r\n");
        assert_eq!(LanguageListing::parse(b"en English"), Ok(l));
    }

    #[test]
    fn capabilities() {
        let table: Vec<(&[u8], Capability)> = vec![
            (b"TOP", Capability::Top),
            (b"USER", Capability::User),
            (
                b"SASL PLAIN LOGIN",
                Capability::Sasl(vec!["PLAIN".into(), "LOGIN".into()]),
            ),
            (b"RESP-CODES", Capability::RespCodes),
            (
                b"LOGIN-DELAY 900",
                Capability::LoginDelay {
                    seconds: 900,
                    per_user: false,
                },
            ),
            (
                b"LOGIN-DELAY 0 USER",
                Capability::LoginDelay {
                    seconds: 0,
                    per_user: true,
                },
            ),
            (b"PIPELINING", Capability::Pipelining),
            (
                b"EXPIRE NEVER",
                Capability::Expire {
                    policy: Expire::Never,
                    per_user: false,
                },
            ),
            (
                b"EXPIRE 60 USER",
                Capability::Expire {
                    policy: Expire::Days(60),
                    per_user: true,
                },
            ),
            (b"UIDL", Capability::Uidl),
            (
                b"IMPLEMENTATION cas-rs 0.1",
                Capability::Implementation("cas-rs 0.1".into()),
            ),
            (b"STLS", Capability::Stls),
            (b"AUTH-RESP-CODE", Capability::AuthRespCode),
            (b"UTF8", Capability::Utf8 { user: false }),
            (b"UTF8 USER", Capability::Utf8 { user: true }),
            (b"LANG", Capability::Lang),
            (
                b"X-FOO a b",
                Capability::Other {
                    name: "X-FOO".into(),
                    params: vec!["a".into(), "b".into()],
                },
            ),
        ];
        for (line, cap) in table {
            assert_eq!(Capability::parse(line).as_ref(), Ok(&cap));
            let mut want = line.to_vec();
            want.extend_from_slice(b"\r\n");
            assert_eq!(enc(|o| cap.encode(o)), want);
        }
        assert_eq!(Capability::parse(b"top"), Ok(Capability::Top));
        assert_eq!(
            Capability::parse(b"EXPIRE soon"),
            Ok(Capability::Other {
                name: "EXPIRE".into(),
                params: vec!["soon".into()]
            })
        );
        assert!(Capability::parse(b"").is_err());
        assert_eq!(
            enc(|o| encode_capabilities(&[Capability::Top, Capability::Uidl], o)),
            b"+OK Capability list follows\r\nTOP\r\nUIDL\r\n.\r\n"
        );
        assert_eq!(
            enc(|o| Capability::Other {
                name: ".X".into(),
                params: vec!["a b".into()]
            }
            .encode(o)),
            b"..X a_b\r\n"
        );
    }
}
