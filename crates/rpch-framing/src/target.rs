//! The `/rpc/rpcproxy.dll?server:port` request target (MS-RPCH §2.2.2) and the proxy's
//! allow list of backend `server:port` pairs.
//!
//! An RPC over HTTP proxy is, by construction, a client-controlled TCP relay: the query
//! string names the host and port the proxy connects to. Everything in this module exists so
//! that a hostile query can never make the proxy connect anywhere an administrator did not
//! list. Two rules follow:
//!
//! 1. **Parse strictly, in one pass, over raw bytes.** The query may contain only the bytes a
//!    legitimate server name and port need: ASCII letters, digits, `-`, `.`, `_`, `:`, `[` and
//!    `]`. Every other byte is refused with its offset — in particular `%`: percent-encoding is
//!    **refused, not decoded**. No character a valid `server:port` needs has to be encoded, so
//!    an encoded query is either a client bug or an attempt to make two parsers (ours and
//!    whatever sits in front of or behind us) disagree about where the target points
//!    (`%00` truncation, `%2e` dot smuggling, `%25` double decoding, IPv6 zone identifiers).
//!    Refusing is simpler to reason about than decode-then-validate and costs no real client
//!    anything. `@` (userinfo), whitespace, control characters, `\`, `/`, `?`, `&`, `#`, `+`
//!    and every non-ASCII byte (homoglyphs) fall under the same rule.
//! 2. **Check before connecting.** [`AllowList::check`] runs on the parsed [`RpcTarget`] and
//!    must pass before any backend connection is attempted; a refusal maps to `403`.
//!
//! # Grammar (MS-RPCH §2.2.2)
//!
//! ```text
//! nocert-path   = "/rpc/rpcproxy.dll"
//! withcert-path = "/rpcwithcert/rpcproxy.dll"
//! abs-path      = nocert-path / withcert-path
//! query         = server-name ":" server-port
//! server-name   = DNS-Name / IP-literal-address / IPv6-literal-address / NetBIOS-Name
//! server-port   = 1*6(DIGIT)
//! ```
//!
//! with "the length of server-name MUST be less than 1,024 characters".
//!
//! # Deviations from MS-RPCH, and why
//!
//! - **IPv6 literals only in brackets** (`[2001:db8::1]:6001`). The grammar above allows a
//!   bare IPv6 literal before the last colon; we refuse it so that exactly one reading of the
//!   query exists (is `::1:6001` the address `::1:6001` with no port, or `::1` port 6001?).
//! - **NetBIOS names use the DNS-compatible subset** (letters, digits, `-`, `_`). RFC 1001
//!   NetBIOS names may contain punctuation such as `!`, `$`, `{` or `~`, none of which a
//!   production mailbox server name uses and several of which have URL meaning.
//! - **Numeric-looking names must be strict dotted-quad IPv4** (`10.0.0.1`): legacy
//!   `inet_aton` forms (`10.1`, `0x0a.0.0.1`, `012.0.0.1`, `167772161`) and names whose last
//!   label is numeric are refused, because resolvers disagree about what they mean.
//! - **No trailing dot** on DNS names, and DNS names are held to RFC 1035's 253 characters and
//!   63-character labels, well inside the 1,023-character ceiling above.
//! - The path is matched ASCII case-insensitively (as IIS does) and must be exactly one of the
//!   two paths above: no `%`-encoding, no dot segments, no trailing slash.
//! - Only the origin form of the request target (`/rpc/...`) is accepted: RPC over HTTP clients
//!   (Outlook, impacket, Samba) never send the absolute form to an RPC proxy.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::RangeInclusive;

/// Longest server name accepted, in characters: MS-RPCH §2.2.2, "The length of server-name
/// MUST be less than 1,024 characters."
pub const MAX_SERVER_NAME_LEN: usize = 1023;
/// Most digits in a port: MS-RPCH §2.2.2, `server-port = 1*6(DIGIT)`.
pub const MAX_PORT_DIGITS: usize = 6;
/// Longest DNS name in text form without the trailing dot (RFC 1035 §2.3.4: 255 octets on the
/// wire, which is 253 characters of text).
pub const MAX_DNS_NAME_LEN: usize = 253;
/// Longest DNS label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;
/// Longest NetBIOS computer name: 16 octets of which the last is the resource type
/// (RFC 1001 §14, MS-NBTE), so 15 characters.
pub const MAX_NETBIOS_NAME_LEN: usize = 15;

/// Which of the two MS-RPCH §2.2.2 paths the request used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProxyPath {
    /// `/rpc/rpcproxy.dll`: every client that does not authenticate with a certificate.
    NoCert,
    /// `/rpcwithcert/rpcproxy.dll`: "MUST be used whenever the client authenticates to the
    /// HTTP server using a client-side certificate".
    WithCert,
}

impl ProxyPath {
    /// The path as sent on the wire (lower case).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoCert => "/rpc/rpcproxy.dll",
            Self::WithCert => "/rpcwithcert/rpcproxy.dll",
        }
    }

    /// `abs-path`, matched ASCII case-insensitively (IIS treats paths so).
    fn parse(path: &[u8]) -> Option<Self> {
        [Self::NoCert, Self::WithCert]
            .into_iter()
            .find(|p| path.eq_ignore_ascii_case(p.as_str().as_bytes()))
    }
}

/// Why a request target or `server:port` was refused. Each error knows the HTTP status to
/// answer with ([`TargetError::http_status`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// The request target does not start with `/` (absolute form, `*`, or garbage).
    #[error("request target is not in origin form")]
    NotOriginForm,
    /// The path is not `/rpc/rpcproxy.dll` or `/rpcwithcert/rpcproxy.dll`.
    #[error("request path is not an RPC proxy path")]
    UnknownPath,
    /// The path has no `?server:port` query where one is required.
    #[error("request has no ?server:port query")]
    NoServerPort,
    /// The query holds a byte a server name or port never needs (see the module docs):
    /// `%`, `@`, whitespace, control characters, non-ASCII, `\`, `/`, `?`, `&`, `#`, `+`...
    #[error("byte 0x{byte:02x} not allowed at offset {offset} of the query")]
    ForbiddenByte {
        /// The refused byte.
        byte: u8,
        /// Its offset from the start of the query (after `?`).
        offset: usize,
    },
    /// The query has no `:` separating server and port.
    #[error("query has no :port")]
    MissingPort,
    /// The port is empty, not decimal digits, longer than six digits, zero, or above 65535.
    #[error("port is not a decimal number in 1..=65535")]
    InvalidPort,
    /// The server name is empty.
    #[error("server name is empty")]
    EmptyServerName,
    /// The server name is 1,024 characters or longer.
    #[error("server name is {len} characters, the limit is {MAX_SERVER_NAME_LEN}")]
    ServerNameTooLong {
        /// Length of the refused name.
        len: usize,
    },
    /// A bare IPv6 literal: MS-RPCH allows it, we require brackets (see the module docs).
    #[error("IPv6 literal must be in brackets")]
    UnbracketedIpv6,
    /// Brackets that do not hold exactly one valid IPv6 literal directly followed by `:port`.
    #[error("invalid bracketed IPv6 literal")]
    InvalidIpv6Literal,
    /// A colon inside a server name that is not an IPv6 literal.
    #[error("server name contains a colon")]
    ExtraColon,
    /// A numeric-looking name that is not a strict dotted-quad IPv4 address.
    #[error("numeric server name is not a dotted-quad IPv4 address")]
    InvalidIpv4Literal,
    /// A host name that breaks the label rules.
    #[error("invalid host name: {reason}")]
    InvalidHostName {
        /// Which rule it broke.
        reason: &'static str,
    },
    /// A well-formed target that is not on the proxy's allow list.
    #[error("{target} is not an allowed RPC server and port")]
    NotAllowed {
        /// The refused target, in `server:port` form.
        target: String,
    },
}

impl TargetError {
    /// The HTTP status code to answer with: 404 for a path that is not the RPC proxy, 403 for
    /// a target outside the allow list, 400 for everything malformed.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::UnknownPath => 404,
            Self::NotAllowed { .. } => 403,
            _ => 400,
        }
    }

    /// True for [`TargetError::NoServerPort`]: the bare path, which is not malformed in
    /// itself (the first, authentication-probing request on each channel has no query).
    pub fn is_no_server_port(&self) -> bool {
        matches!(self, Self::NoServerPort)
    }
}

/// A validated DNS host name or NetBIOS computer name: dot-separated labels of ASCII letters,
/// digits, `-` and `_`, each 1..=63 characters and not starting or ending with `-`, at most
/// 253 characters in all, no trailing dot, and a last label that is not numeric.
///
/// Equality and hashing ignore ASCII case, as DNS and NetBIOS do; [`HostName::as_str`] keeps
/// the spelling the peer used.
#[derive(Clone, Debug)]
pub struct HostName(Box<str>);

impl HostName {
    /// Validates `name` (see the type docs).
    pub fn parse(name: &[u8]) -> Result<Self, TargetError> {
        validate_host_name(name)?;
        // Validation admits only ASCII, so this never fails; no panic path either way.
        let s = std::str::from_utf8(name).map_err(|_| TargetError::InvalidHostName {
            reason: "not ASCII",
        })?;
        Ok(Self(s.into()))
    }

    /// The name as the peer spelled it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first label (`mbx01` of `mbx01.corp.example`).
    pub fn first_label(&self) -> &str {
        self.0.split('.').next().unwrap_or(&self.0)
    }

    /// True for a single-label name (a NetBIOS or short DNS name).
    pub fn is_single_label(&self) -> bool {
        !self.0.contains('.')
    }

    /// True if the name can be a NetBIOS computer name: one label of at most 15 characters.
    pub fn is_netbios_compatible(&self) -> bool {
        self.is_single_label() && self.0.len() <= MAX_NETBIOS_NAME_LEN
    }
}

impl PartialEq for HostName {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl Eq for HostName {}

impl Hash for HostName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for b in self.0.bytes() {
            state.write_u8(b.to_ascii_lowercase());
        }
        state.write_u8(0xff);
    }
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for HostName {
    type Err = TargetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s.as_bytes())
    }
}

/// `server-name` (MS-RPCH §2.2.2): a host name, an IPv4 literal, or a bracketed IPv6 literal.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ServerName {
    /// A DNS or NetBIOS name.
    Host(HostName),
    /// A dotted-quad IPv4 literal.
    Ipv4(Ipv4Addr),
    /// An IPv6 literal (written in brackets).
    Ipv6(Ipv6Addr),
}

impl ServerName {
    /// Parses a server name as it appears in the query (IPv6 in brackets).
    ///
    /// ```text
    /// server-name = DNS-Name / IP-literal-address / IPv6-literal-address / NetBIOS-Name
    /// ```
    pub fn parse(name: &[u8]) -> Result<Self, TargetError> {
        if let Some((offset, &byte)) = name.iter().enumerate().find(|(_, b)| !is_query_byte(**b)) {
            return Err(TargetError::ForbiddenByte { byte, offset });
        }
        parse_server_name(name)
    }

    /// Writes the name as it goes into a query: IPv6 in brackets.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.to_string().as_bytes());
    }
}

impl fmt::Display for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Host(h) => h.fmt(f),
            Self::Ipv4(a) => a.fmt(f),
            Self::Ipv6(a) => write!(f, "[{a}]"),
        }
    }
}

impl From<HostName> for ServerName {
    fn from(h: HostName) -> Self {
        Self::Host(h)
    }
}

impl From<Ipv4Addr> for ServerName {
    fn from(a: Ipv4Addr) -> Self {
        Self::Ipv4(a)
    }
}

impl From<Ipv6Addr> for ServerName {
    fn from(a: Ipv6Addr) -> Self {
        Self::Ipv6(a)
    }
}

impl std::str::FromStr for ServerName {
    type Err = TargetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s.as_bytes())
    }
}

/// The backend an RPC over HTTP channel asks for: `query = server-name ":" server-port`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RpcTarget {
    /// The RPC server's name or address.
    pub server: ServerName,
    /// The RPC server's TCP port (1..=65535; Exchange uses 6001–6004 and 593).
    pub port: u16,
}

impl RpcTarget {
    /// A target from its parts.
    pub fn new(server: impl Into<ServerName>, port: u16) -> Self {
        Self {
            server: server.into(),
            port,
        }
    }

    /// Parses a bare `server:port` query (without the leading `?`).
    ///
    /// ```text
    /// query = server-name ":" server-port
    /// ```
    pub fn parse_query(query: &[u8]) -> Result<Self, TargetError> {
        parse_query(query)
    }

    /// Writes `server:port` (IPv6 in brackets, port without leading zeros).
    pub fn encode_query(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.to_string().as_bytes());
    }

    /// Writes a whole request target: `path?server:port`, as a client sends it.
    pub fn encode_request_target(&self, path: ProxyPath, out: &mut Vec<u8>) {
        out.extend_from_slice(path.as_str().as_bytes());
        out.push(b'?');
        self.encode_query(out);
    }
}

impl fmt::Display for RpcTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.server, self.port)
    }
}

/// A parsed RPC proxy request target.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RequestTarget {
    /// The bare path with no query: the first request on each channel, which only probes
    /// for authentication (answer `401` with the challenges; INTEROP.md).
    AuthProbe {
        /// Which proxy path was used.
        path: ProxyPath,
    },
    /// The path with a valid `?server:port`.
    Rpc {
        /// Which proxy path was used.
        path: ProxyPath,
        /// The backend asked for; check it with [`AllowList::check`] before connecting.
        target: RpcTarget,
    },
}

impl RequestTarget {
    /// The proxy path of either form.
    pub fn path(&self) -> ProxyPath {
        match self {
            Self::AuthProbe { path } | Self::Rpc { path, .. } => *path,
        }
    }

    /// The backend, if the request names one.
    pub fn rpc_target(&self) -> Option<&RpcTarget> {
        match self {
            Self::AuthProbe { .. } => None,
            Self::Rpc { target, .. } => Some(target),
        }
    }

    /// Writes the request target as a client sends it.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::AuthProbe { path } => out.extend_from_slice(path.as_str().as_bytes()),
            Self::Rpc { path, target } => target.encode_request_target(*path, out),
        }
    }
}

/// Parses an HTTP request target (`RequestHead::target`) into either the bare,
/// authentication-probing path or a path with a validated `?server:port`.
///
/// ```text
/// request-target = abs-path [ "?" query ]
/// ```
pub fn parse_request_target(request_target: &[u8]) -> Result<RequestTarget, TargetError> {
    if request_target.first() != Some(&b'/') {
        return Err(TargetError::NotOriginForm);
    }
    let (path, query) = match memchr::memchr(b'?', request_target) {
        Some(q) => (&request_target[..q], Some(&request_target[q + 1..])),
        None => (request_target, None),
    };
    let path = ProxyPath::parse(path).ok_or(TargetError::UnknownPath)?;
    match query {
        None => Ok(RequestTarget::AuthProbe { path }),
        Some(query) => Ok(RequestTarget::Rpc {
            path,
            target: parse_query(query)?,
        }),
    }
}

/// Parses a request target that must name a backend: like [`parse_request_target`], but the
/// bare path is [`TargetError::NoServerPort`] (test with [`TargetError::is_no_server_port`]).
pub fn parse_rpc_target(request_target: &[u8]) -> Result<RpcTarget, TargetError> {
    match parse_request_target(request_target)? {
        RequestTarget::AuthProbe { .. } => Err(TargetError::NoServerPort),
        RequestTarget::Rpc { target, .. } => Ok(target),
    }
}

/// The bytes a `server:port` query may contain at all: ALPHA / DIGIT / "-" / "." / "_" /
/// ":" / "[" / "]". Everything else is refused before any structure is looked at.
fn is_query_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':' | b'[' | b']')
}

/// `query = server-name ":" server-port`
fn parse_query(query: &[u8]) -> Result<RpcTarget, TargetError> {
    if let Some((offset, &byte)) = query.iter().enumerate().find(|(_, b)| !is_query_byte(**b)) {
        return Err(TargetError::ForbiddenByte { byte, offset });
    }
    let (server, port) = if query.first() == Some(&b'[') {
        // IP-literal: the port separator is the colon right after the closing bracket.
        let close = memchr::memchr(b']', query).ok_or(TargetError::InvalidIpv6Literal)?;
        match query.get(close + 1) {
            Some(b':') => (&query[..=close], &query[close + 2..]),
            None => return Err(TargetError::MissingPort),
            Some(_) => return Err(TargetError::InvalidIpv6Literal),
        }
    } else {
        let colon = memchr::memrchr(b':', query).ok_or(TargetError::MissingPort)?;
        (&query[..colon], &query[colon + 1..])
    };
    let server = parse_server_name(server)?;
    let port = parse_port(port)?;
    Ok(RpcTarget { server, port })
}

/// `server-port = 1*6(DIGIT)`, with a value in 1..=65535. Leading zeros are allowed because
/// the grammar allows them; the value, never the text, goes to the connector.
fn parse_port(port: &[u8]) -> Result<u16, TargetError> {
    if port.is_empty() || port.len() > MAX_PORT_DIGITS || !port.iter().all(u8::is_ascii_digit) {
        return Err(TargetError::InvalidPort);
    }
    // At most six digits: fits a u32 without overflow.
    let value = port
        .iter()
        .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
    match u16::try_from(value) {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(TargetError::InvalidPort),
    }
}

/// `server-name`, already restricted to query bytes.
fn parse_server_name(name: &[u8]) -> Result<ServerName, TargetError> {
    if name.is_empty() {
        return Err(TargetError::EmptyServerName);
    }
    if name.len() > MAX_SERVER_NAME_LEN {
        return Err(TargetError::ServerNameTooLong { len: name.len() });
    }
    if let Some(inner) = name.strip_prefix(b"[") {
        let inner = inner
            .strip_suffix(b"]")
            .ok_or(TargetError::InvalidIpv6Literal)?;
        return parse_ipv6(inner)
            .map(ServerName::Ipv6)
            .ok_or(TargetError::InvalidIpv6Literal);
    }
    if name.contains(&b'[') || name.contains(&b']') {
        return Err(TargetError::InvalidIpv6Literal);
    }
    if name.contains(&b':') {
        return Err(if parse_ipv6(name).is_some() {
            TargetError::UnbracketedIpv6
        } else {
            TargetError::ExtraColon
        });
    }
    if name.iter().all(|b| b.is_ascii_digit() || *b == b'.') {
        return parse_ipv4(name)
            .map(ServerName::Ipv4)
            .ok_or(TargetError::InvalidIpv4Literal);
    }
    HostName::parse(name).map(ServerName::Host)
}

/// `IPv6address` (RFC 4291 §2.2) between the brackets. Zone identifiers cannot occur: `%` is
/// refused before this point.
fn parse_ipv6(text: &[u8]) -> Option<Ipv6Addr> {
    // The longest textual IPv6 address is 45 characters; refuse more before parsing.
    if text.len() > 45 {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// `IPv4address = dec-octet "." dec-octet "." dec-octet "." dec-octet` (RFC 3986 §3.2.2):
/// exactly four decimal parts, 0..=255, no leading zeros (which some resolvers read as octal).
fn parse_ipv4(text: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = text.split(|b| *b == b'.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || (part.len() > 1 && part[0] == b'0') {
            return None;
        }
        let v = part.iter().try_fold(0u16, |acc, d| {
            d.is_ascii_digit().then(|| acc * 10 + u16::from(d - b'0'))
        })?;
        *octet = u8::try_from(v).ok()?;
    }
    parts.next().is_none().then_some(Ipv4Addr::from(octets))
}

/// Host name rules (RFC 1123 §2.1 labels, RFC 1035 §2.3.4 lengths, the NetBIOS DNS-compatible
/// subset); see [`HostName`].
fn validate_host_name(name: &[u8]) -> Result<(), TargetError> {
    let bad = |reason| Err(TargetError::InvalidHostName { reason });
    if name.is_empty() {
        return Err(TargetError::EmptyServerName);
    }
    if name.len() > MAX_DNS_NAME_LEN {
        return bad("longer than 253 characters");
    }
    if name.last() == Some(&b'.') {
        return bad("trailing dot");
    }
    let mut last = &name[..0];
    for label in name.split(|b| *b == b'.') {
        if label.is_empty() {
            return bad("empty label");
        }
        if label.len() > MAX_LABEL_LEN {
            return bad("label longer than 63 characters");
        }
        if !label
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        {
            return bad("label holds a character other than a letter, digit, '-' or '_'");
        }
        if label.first() == Some(&b'-') || label.last() == Some(&b'-') {
            return bad("label starts or ends with '-'");
        }
        last = label;
    }
    // A numeric last label (or an inet_aton hex part) makes resolvers read the name as an
    // address; a real top-level domain is never numeric (RFC 3696 §2).
    let hex_number = last.len() > 1
        && last[0] == b'0'
        && last[1].eq_ignore_ascii_case(&b'x')
        && last[2..].iter().all(u8::is_ascii_hexdigit);
    if last.iter().all(u8::is_ascii_digit) || hex_number {
        return bad("last label is numeric");
    }
    Ok(())
}

/// An inclusive range of TCP ports, `first..=last`, with `1 <= first <= last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortRange {
    first: u16,
    last: u16,
}

impl PortRange {
    /// The range `first..=last`; `None` if `first` is 0 or `first > last`.
    pub fn new(first: u16, last: u16) -> Option<Self> {
        (first != 0 && first <= last).then_some(Self { first, last })
    }

    /// A single port; `None` for 0.
    pub fn single(port: u16) -> Option<Self> {
        Self::new(port, port)
    }

    /// The first port.
    pub fn first(&self) -> u16 {
        self.first
    }

    /// The last port (inclusive).
    pub fn last(&self) -> u16 {
        self.last
    }

    /// True if `port` lies in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }

    /// Parses `6001` or `6001-6004` (the Windows `ValidPorts` form).
    pub fn parse(text: &str) -> Option<Self> {
        let port = |t: &str| parse_port(t.trim().as_bytes()).ok();
        match text.split_once('-') {
            Some((a, b)) => Self::new(port(a)?, port(b)?),
            None => Self::single(port(text)?),
        }
    }
}

impl From<PortRange> for RangeInclusive<u16> {
    fn from(r: PortRange) -> Self {
        r.first..=r.last
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// One allowed backend: a server, optional NetBIOS aliases, and the ports allowed on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowEntry {
    server: ServerName,
    aliases: Vec<HostName>,
    ports: Vec<PortRange>,
}

impl AllowEntry {
    /// An entry for `server` on `ports`. Names match ASCII case-insensitively; addresses match
    /// exactly (no DNS resolution happens here: an IPv4 entry does not admit a name that
    /// resolves to it, nor the IPv4-mapped IPv6 form of the address).
    pub fn new(server: impl Into<ServerName>, ports: impl IntoIterator<Item = PortRange>) -> Self {
        Self {
            server: server.into(),
            aliases: Vec::new(),
            ports: ports.into_iter().collect(),
        }
    }

    /// Also admits `alias`, a NetBIOS name (one label, at most 15 characters), for the same
    /// ports: an entry `mbx01.corp.example` with alias `MBX01` admits `?MBX01:6001`.
    pub fn with_netbios_alias(mut self, alias: HostName) -> Result<Self, AllowListError> {
        if !alias.is_netbios_compatible() {
            return Err(AllowListError::NotNetbiosName {
                name: alias.to_string(),
            });
        }
        self.aliases.push(alias);
        Ok(self)
    }

    /// Also admits the first label of the entry's DNS name as its NetBIOS name, as Windows
    /// derives it (`mbx01.corp.example` → `MBX01`). A no-op for addresses, single-label names
    /// and first labels longer than 15 characters.
    pub fn with_first_label_alias(mut self) -> Self {
        if let ServerName::Host(h) = &self.server
            && !h.is_single_label()
            && h.first_label().len() <= MAX_NETBIOS_NAME_LEN
            && let Ok(alias) = HostName::parse(h.first_label().as_bytes())
        {
            self.aliases.push(alias);
        }
        self
    }

    /// The server of the entry.
    pub fn server(&self) -> &ServerName {
        &self.server
    }

    /// The NetBIOS aliases of the entry.
    pub fn aliases(&self) -> &[HostName] {
        &self.aliases
    }

    /// The allowed port ranges.
    pub fn ports(&self) -> &[PortRange] {
        &self.ports
    }

    /// True if `target` names this entry's server (or an alias) on an allowed port.
    pub fn admits(&self, target: &RpcTarget) -> bool {
        let name_matches = target.server == self.server
            || matches!(&target.server, ServerName::Host(h) if self.aliases.contains(h));
        name_matches && self.ports.iter().any(|r| r.contains(target.port))
    }
}

/// Why an allow-list configuration was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AllowListError {
    /// An alias given as a NetBIOS name is not one label of at most 15 characters.
    #[error("{name} is not a NetBIOS name (one label, at most 15 characters)")]
    NotNetbiosName {
        /// The refused alias.
        name: String,
    },
    /// An item of a `ValidPorts` string is malformed.
    #[error("ValidPorts item {index} ({item:?}) is not server:port or server:first-last")]
    InvalidItem {
        /// Zero-based position of the item.
        index: usize,
        /// The item's text.
        item: String,
    },
}

/// The backends a proxy may connect to. Empty by default: an empty list admits nothing.
///
/// Call [`AllowList::check`] on every parsed [`RpcTarget`] **before** opening a backend
/// connection; a refusal is [`TargetError::NotAllowed`] (HTTP 403).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<AllowEntry>,
}

impl AllowList {
    /// An empty list (admits nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry.
    pub fn push(&mut self, entry: AllowEntry) {
        self.entries.push(entry);
    }

    /// Adds an entry, builder style.
    pub fn with(mut self, entry: AllowEntry) -> Self {
        self.push(entry);
        self
    }

    /// The entries.
    pub fn entries(&self) -> &[AllowEntry] {
        &self.entries
    }

    /// True if some entry admits `target`.
    pub fn is_allowed(&self, target: &RpcTarget) -> bool {
        self.entries.iter().any(|e| e.admits(target))
    }

    /// `Ok` if some entry admits `target`, else [`TargetError::NotAllowed`] (HTTP 403).
    pub fn check(&self, target: &RpcTarget) -> Result<(), TargetError> {
        if self.is_allowed(target) {
            Ok(())
        } else {
            Err(TargetError::NotAllowed {
                target: target.to_string(),
            })
        }
    }

    /// Parses the Windows RPC proxy `ValidPorts` registry format that Exchange writes:
    /// `server:ports` items separated by `;`, where ports is one port or `first-last`, e.g.
    /// `MBX01:593;MBX01:6001-6004;mbx01.corp.example:593;mbx01.corp.example:6001-6004`.
    /// Each name form is its own item, as Exchange lists both. Blank items are skipped;
    /// wildcards are not supported (a `*` item is refused).
    pub fn from_valid_ports(text: &str) -> Result<Self, AllowListError> {
        let mut list = Self::new();
        for (index, item) in text.split(';').enumerate() {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let invalid = || AllowListError::InvalidItem {
                index,
                item: item.to_owned(),
            };
            let (server, ports) = if item.starts_with('[') {
                let close = item.find(']').ok_or_else(invalid)?;
                let rest = item[close + 1..].strip_prefix(':').ok_or_else(invalid)?;
                (&item[..=close], rest)
            } else {
                item.rsplit_once(':').ok_or_else(invalid)?
            };
            let server = ServerName::parse(server.as_bytes()).map_err(|_| invalid())?;
            let ports = PortRange::parse(ports).ok_or_else(invalid)?;
            list.push(AllowEntry::new(server, [ports]));
        }
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(s: &str) -> ServerName {
        ServerName::Host(s.parse().unwrap())
    }

    #[test]
    fn parses_exchange_targets() {
        let t = parse_rpc_target(b"/rpc/rpcproxy.dll?mbx01.corp.example:6001").unwrap();
        assert_eq!(t, RpcTarget::new(host("mbx01.corp.example"), 6001));
        let t = parse_rpc_target(b"/RPC/RpcProxy.DLL?MBX01:593").unwrap();
        assert_eq!(t.port, 593);
        assert_eq!(t.server.to_string(), "MBX01");
        let t = parse_rpc_target(b"/rpc/rpcproxy.dll?10.0.0.5:6004").unwrap();
        assert_eq!(t.server, ServerName::Ipv4(Ipv4Addr::new(10, 0, 0, 5)));
        let t = parse_rpc_target(b"/rpc/rpcproxy.dll?[2001:db8::1]:6001").unwrap();
        assert_eq!(t.server, ServerName::Ipv6("2001:db8::1".parse().unwrap()));
        assert_eq!(t.to_string(), "[2001:db8::1]:6001");
    }

    #[test]
    fn bare_path_is_auth_probe() {
        assert_eq!(
            parse_request_target(b"/rpc/rpcproxy.dll").unwrap(),
            RequestTarget::AuthProbe {
                path: ProxyPath::NoCert
            }
        );
        assert_eq!(
            parse_request_target(b"/rpcwithcert/rpcproxy.dll")
                .unwrap()
                .path(),
            ProxyPath::WithCert
        );
        let e = parse_rpc_target(b"/rpc/rpcproxy.dll").unwrap_err();
        assert!(e.is_no_server_port());
        assert_eq!(e.http_status(), 400);
    }

    #[test]
    fn statuses() {
        assert_eq!(parse_rpc_target(b"/owa/").unwrap_err().http_status(), 404);
        assert_eq!(
            parse_rpc_target(b"http://x/rpc/rpcproxy.dll?a:1").unwrap_err(),
            TargetError::NotOriginForm
        );
        assert_eq!(
            parse_rpc_target(b"/rpc/rpcproxy.dll?a%3a:1").unwrap_err(),
            TargetError::ForbiddenByte {
                byte: b'%',
                offset: 1
            }
        );
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port(b"1"), Ok(1));
        assert_eq!(parse_port(b"65535"), Ok(65535));
        assert_eq!(parse_port(b"006001"), Ok(6001));
        for bad in [
            &b""[..],
            b"0",
            b"000000",
            b"65536",
            b"0065536",
            b"1000000",
            b"99999999999999999999",
        ] {
            assert_eq!(parse_port(bad), Err(TargetError::InvalidPort), "{bad:?}");
        }
    }

    #[test]
    fn ipv4_is_strict() {
        assert_eq!(parse_ipv4(b"0.0.0.0"), Some(Ipv4Addr::UNSPECIFIED));
        assert_eq!(parse_ipv4(b"255.255.255.255"), Some(Ipv4Addr::BROADCAST));
        for bad in [
            &b"010.0.0.1"[..],
            b"1.2.3",
            b"1.2.3.4.5",
            b"256.0.0.1",
            b"1..2.3",
            b"1.2.3.",
            b"2130706433",
            b"1.2.3.0004",
        ] {
            assert_eq!(parse_ipv4(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn host_names() {
        for good in [
            "MBX01",
            "mbx-01.corp.example",
            "a",
            "x_y.example",
            "3com.example",
        ] {
            assert!(HostName::parse(good.as_bytes()).is_ok(), "{good}");
        }
        for bad in [
            "-a",
            "a-",
            "a..b",
            ".a",
            "a.",
            "a.1",
            "a.0x7f",
            "a b",
            &"a".repeat(64),
            &format!("{}.example", "a.".repeat(130)),
        ] {
            assert!(HostName::parse(bad.as_bytes()).is_err(), "{bad}");
        }
        let a: HostName = "MBX01".parse().unwrap();
        let b: HostName = "mbx01".parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "MBX01");
    }

    #[test]
    fn allow_list_netbios_and_fqdn() {
        let fqdn: HostName = "mbx01.corp.example".parse().unwrap();
        let list = AllowList::new()
            .with(
                AllowEntry::new(
                    fqdn,
                    [
                        PortRange::new(6001, 6004).unwrap(),
                        PortRange::single(593).unwrap(),
                    ],
                )
                .with_first_label_alias(),
            )
            .with(AllowEntry::new(
                Ipv4Addr::new(10, 0, 0, 9),
                [PortRange::single(6001).unwrap()],
            ));
        let ok = |q: &str| list.check(&RpcTarget::parse_query(q.as_bytes()).unwrap());
        assert!(ok("MBX01.CORP.EXAMPLE:6001").is_ok());
        assert!(ok("mbx01:6004").is_ok());
        assert!(ok("Mbx01:593").is_ok());
        assert!(ok("10.0.0.9:6001").is_ok());
        let refused = ok("mbx01:6005").unwrap_err();
        assert_eq!(refused.http_status(), 403);
        assert!(ok("mbx01.corp.example:135").is_err());
        assert!(ok("mbx02:6001").is_err());
        assert!(ok("mbx01.corp.example.evil:6001").is_err());
        assert!(ok("10.0.0.9:6002").is_err());
        assert!(ok("[::ffff:10.0.0.9]:6001").is_err());
        assert!(
            AllowList::new()
                .check(&RpcTarget::new(host("a"), 1))
                .is_err()
        );
    }

    #[test]
    fn valid_ports_format() {
        let list = AllowList::from_valid_ports(
            "MBX01:593;MBX01:6001-6004; mbx01.corp.example:6001-6004;[::1]:6001;",
        )
        .unwrap();
        assert_eq!(list.entries().len(), 4);
        let t = |q: &str| RpcTarget::parse_query(q.as_bytes()).unwrap();
        assert!(list.is_allowed(&t("mbx01:6002")));
        assert!(list.is_allowed(&t("[::1]:6001")));
        assert!(!list.is_allowed(&t("mbx01:6005")));
        for bad in [
            "MBX01",
            "MBX01:0",
            "MBX01:6004-6001",
            "*.corp.example:593",
            "MBX01:a-b",
            "[::1]6001",
        ] {
            assert!(AllowList::from_valid_ports(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn netbios_alias_must_be_short() {
        let e = AllowEntry::new(host("mbx01.corp.example"), [PortRange::single(1).unwrap()]);
        assert!(
            e.clone()
                .with_netbios_alias("MBX01".parse().unwrap())
                .is_ok()
        );
        assert!(
            e.clone()
                .with_netbios_alias("a.b".parse().unwrap())
                .is_err()
        );
        assert!(
            e.with_netbios_alias("ABCDEFGHIJKLMNOP".parse().unwrap())
                .is_err()
        );
    }
}
