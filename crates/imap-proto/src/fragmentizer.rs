//! Incremental IMAP message framing: splits a byte stream into complete *messages*, each a
//! command or response line with every literal inline, exactly as the bytes came off the wire.
//!
//! `a1 LOGIN {5}\r\nalice {6+}\r\nsecret\r\n` is one message: a line ending in a literal
//! announcement (`{n}`, `{n+}`, `~{n}`, `~{n+}`, RFC 9051 §4.3, RFC 7888, RFC 3516) is followed by
//! exactly `n` literal bytes and then by the rest of the message, which is again a line.
//!
//! # How it works
//!
//! [`Fragmentizer::push`] appends received bytes; [`Fragmentizer::poll`] hands out what they
//! completed, one [`Frame`] per call, until it returns `None` (more input needed) or a
//! synchronizing literal waits for the caller's decision. Lines are searched for LF with
//! memchr from where the previous search stopped, so no byte is scanned twice however the
//! input is chunked; literal bodies are skipped by their announced length, never scanned.
//! The fragmentizer understands no grammar beyond the literal announcement at the end of a
//! line: the parsers ([`crate::command::parse_command`], [`crate::response::parse_response`])
//! run over the finished message, which is handed out as one [`Bytes`] without copying.
//!
//! # Roles
//!
//! In the [`Role::Server`] role the input is client commands. A synchronizing literal `{n}`
//! makes the client wait for a `+` continuation request, so the fragmentizer stops with
//! [`Frame::LiteralAnnounced`] and the session decides: [`Fragmentizer::accept_literal`]
//! (send `+`, expect `n` bytes) or [`Fragmentizer::reject_literal`] (answer `tag NO`/`BAD`; the
//! announcing message is dropped, and since the client never got `+` there is nothing to
//! discard). In the [`Role::Client`] role the input is server responses, whose literals are
//! sent without waiting, so every literal is framed at once.
//!
//! # Limits and what happens when one is exceeded
//!
//! Every limit is a field of [`Limits`] with a documented default. A message that exceeds one
//! is dropped and reported once as [`Frame::Rejected`], at the first byte that exceeds it
//! (so the outcome never depends on how the input was chunked), and the fragmentizer recovers
//! at the next boundary where the peer's bytes can be told apart from commands again:
//!
//! | what | recovery |
//! |---|---|
//! | a line longer than [`Limits::max_line`] | the rest of the line is discarded without buffering; if it ends in a literal the peer sends anyway, that literal and the rest of the message are discarded too |
//! | a synchronizing literal over a limit (server role) | refused: no `+` is sent, the peer waits, nothing to discard ([`Recovery::Refused`]) |
//! | a non-synchronizing literal (or any literal in the client role) over a limit | its `n` bytes are skipped by length, then the rest of the message is discarded ([`Recovery::Discarding`]): literal bytes are never taken for commands |
//!
//! Memory is bounded: while the caller drains [`Fragmentizer::poll`] after each
//! [`Fragmentizer::push`], the buffer holds at most one partial message of at most
//! [`Limits::max_message`] bytes plus the last chunk pushed, and bytes being discarded are
//! never buffered. Buffer capacity above a small idle size is released between messages.

use std::fmt;

use bytes::{Buf, Bytes, BytesMut};

/// Which side of the connection the input comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// A server framing client commands: synchronizing literals wait for the session's
    /// decision ([`Frame::LiteralAnnounced`]).
    Server,
    /// A client framing server responses: servers never wait for `+`, every literal is framed
    /// at once.
    Client,
}

/// Size limits of a [`Fragmentizer`]. "Unlimited" is `None`, never `0`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest line, counted from the first byte of the line (or the byte after a literal) to
    /// its LF inclusive. Default 64 KiB, as in Dovecot's `imap_max_line_length`; RFC 7162 §4
    /// asks servers to accept command lines of at least 8192 octets.
    pub max_line: usize,
    /// Largest literal of any command except APPEND, and of any response in the client
    /// role. Default 25 MiB.
    pub max_literal: u64,
    /// Largest literal of an APPEND command (server role): the value a server advertises as
    /// `APPENDLIMIT=` (RFC 7889). Default 25 MiB. APPEND is recognised from the command name
    /// after the tag on the first line; every literal of that command is held to this limit.
    pub max_append_literal: u64,
    /// Largest non-synchronizing literal `{n+}` a client may send (server role). `Some(4096)`
    /// (the default) is LITERAL- (RFC 7888 §4), which IMAP4rev2 servers implement (RFC 9051
    /// §7.2.2); `None` is LITERAL+ (RFC 7888 §3), where only the literal limits apply.
    pub max_non_sync_literal: Option<u64>,
    /// Most literals in one message. Default 1024 (a MULTIAPPEND of 1024 messages).
    pub max_literals: usize,
    /// Largest message, lines and literals together; it bounds the memory one message can
    /// hold. Default 64 MiB: room for one APPEND at the default limits and for a
    /// MULTIAPPEND of a few large messages.
    pub max_message: u64,
}

/// Default [`Limits::max_line`].
pub const DEFAULT_MAX_LINE: usize = 64 * 1024;
/// Default [`Limits::max_literal`] and [`Limits::max_append_literal`].
pub const DEFAULT_MAX_LITERAL: u64 = 25 * 1024 * 1024;
/// The LITERAL- bound on non-synchronizing literals (RFC 7888 §4), as a literal length; the
/// value is [`crate::encode::LITERAL_MINUS_MAX`], which the encoder follows too.
pub const LITERAL_MINUS_MAX: u64 = crate::encode::LITERAL_MINUS_MAX as u64;
/// Default [`Limits::max_literals`].
pub const DEFAULT_MAX_LITERALS: usize = 1024;
/// Default [`Limits::max_message`].
pub const DEFAULT_MAX_MESSAGE: u64 = 64 * 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_line: DEFAULT_MAX_LINE,
            max_literal: DEFAULT_MAX_LITERAL,
            max_append_literal: DEFAULT_MAX_LITERAL,
            max_non_sync_literal: Some(LITERAL_MINUS_MAX),
            max_literals: DEFAULT_MAX_LITERALS,
            max_message: DEFAULT_MAX_MESSAGE,
        }
    }
}

/// One outcome of [`Fragmentizer::poll`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame {
    /// A complete message: every byte from its first to its final LF, literals inline.
    Message(Bytes),
    /// Server role: a synchronizing literal within the limits was announced. Nothing more
    /// is framed until the session calls [`Fragmentizer::accept_literal`] (and sends `+`) or
    /// [`Fragmentizer::reject_literal`] (and answers the tag with `NO` or `BAD`).
    LiteralAnnounced(LiteralAnnouncement),
    /// A message exceeded a limit and was dropped; see [`Rejection::recovery`].
    Rejected(Rejection),
}

/// A literal announcement `{n}`, `{n+}`, `~{n}` or `~{n+}` at the end of a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LiteralHeader {
    /// The announced length `n` (saturated at `u64::MAX` if the digits overflow).
    pub length: u64,
    /// `{n+}`: sent without waiting for `+` (RFC 7888).
    pub non_sync: bool,
    /// `~{n}`: a literal8 that may contain NUL (RFC 3516, RFC 9051).
    pub binary: bool,
}

/// A synchronizing literal waiting for the session's decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiteralAnnouncement {
    /// The announcement.
    pub literal: LiteralHeader,
    /// The message is an APPEND command (see [`Limits::max_append_literal`]), so the session
    /// can apply a per-user or per-mailbox APPENDLIMIT or quota.
    pub append: bool,
    /// How many literals of this message came before this one.
    pub index: usize,
    /// The first bytes of the message (at most [`HEAD_LEN`]), enough to find the tag.
    pub head: Bytes,
}

/// A dropped message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// Which limit was exceeded.
    pub limit: LimitExceeded,
    /// What the fragmentizer does with the rest of the message.
    pub recovery: Recovery,
    /// The first bytes of the message (at most [`HEAD_LEN`], and never beyond the offending
    /// byte), enough to find the tag for `tag BAD` / `tag NO [TOOBIG]`.
    pub head: Bytes,
}

/// How many bytes of a message [`LiteralAnnouncement::head`] and [`Rejection::head`] keep.
pub const HEAD_LEN: usize = 256;

/// The limit a [`Rejection`] exceeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LimitExceeded {
    /// A line exceeded [`Limits::max_line`].
    LineTooLong {
        /// The limit.
        limit: usize,
    },
    /// A literal exceeded [`Limits::max_literal`] or, for APPEND, [`Limits::max_append_literal`]
    /// (answer `NO [TOOBIG]`, RFC 4469 / RFC 7889).
    LiteralTooLarge {
        /// The announcement.
        literal: LiteralHeader,
        /// The limit applied.
        limit: u64,
        /// The message is an APPEND command.
        append: bool,
    },
    /// A non-synchronizing literal exceeded [`Limits::max_non_sync_literal`] (LITERAL-): RFC
    /// 7888 §4 asks for a tagged `BAD [TOOBIG]`; the session may also close the connection.
    NonSyncLiteralTooLarge {
        /// The announcement.
        literal: LiteralHeader,
        /// The limit.
        limit: u64,
    },
    /// The message announced more than [`Limits::max_literals`] literals.
    TooManyLiterals {
        /// The limit.
        limit: usize,
    },
    /// The message grew past [`Limits::max_message`].
    MessageTooLarge {
        /// The limit.
        limit: u64,
    },
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LineTooLong { limit } => write!(f, "line longer than {limit} bytes"),
            Self::LiteralTooLarge { literal, limit, .. } => {
                write!(f, "literal of {} bytes exceeds {limit}", literal.length)
            }
            Self::NonSyncLiteralTooLarge { literal, limit } => write!(
                f,
                "non-synchronizing literal of {} bytes exceeds {limit}",
                literal.length
            ),
            Self::TooManyLiterals { limit } => write!(f, "more than {limit} literals"),
            Self::MessageTooLarge { limit } => write!(f, "message larger than {limit} bytes"),
        }
    }
}

/// What happens to the rest of a [`Rejection`]'s message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Recovery {
    /// A synchronizing literal was refused: the peer waits for `+` and sends nothing more of
    /// this message, so the next byte starts a new message. The session must answer now.
    Refused,
    /// The rest of the message is discarded as it arrives (the rest of an overlong line,
    /// the bytes of a literal sent without waiting, the lines and literals after it) without
    /// being buffered; framing resumes after it.
    Discarding,
}

/// Misuse of [`Fragmentizer::accept_literal`] / [`Fragmentizer::reject_literal`]: no
/// synchronizing literal is waiting for a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no synchronizing literal is waiting for a decision")]
pub struct NoPendingLiteral;

/// The bytes at the end of a line that can hold a literal announcement: `~{` + 20 digits
/// (the largest `u64`) + `+}` CR LF is 26; a few more let leading zeros through.
const TAIL_LEN: usize = 32;

/// The most buffer space reserved ahead of literal bytes that have not arrived yet.
const RESERVE_AHEAD: usize = 1024 * 1024;

/// Capacity kept between messages; anything above is released.
const IDLE_CAPACITY: usize = 8 * 1024;

/// Where the fragmentizer stands in the current message. Indexes are into `buf`, whose first
/// byte is the first byte of the current message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Looking for the LF ending the line that starts at `line_start`; the bytes before `scan`
    /// hold none.
    Line { line_start: usize, scan: usize },
    /// Taking literal bytes into the message up to `end`.
    Literal { end: usize },
    /// Server role: the line ending just before `line_end` announced a synchronizing literal
    /// that would end at `end`; waiting for the session's decision.
    Decision {
        line_end: usize,
        end: usize,
        literal: LiteralHeader,
    },
    /// Dropping the rest of a rejected message without buffering it.
    Discard(Discard),
}

impl State {
    const START: Self = Self::Line {
        line_start: 0,
        scan: 0,
    };
}

/// What is being dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Discard {
    /// The rest of a line; the tail keeps its last bytes to spot a literal announcement.
    Line(Tail),
    /// `remaining` literal bytes.
    Literal { remaining: u64 },
}

/// The last [`TAIL_LEN`] bytes of a line being discarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tail {
    bytes: [u8; TAIL_LEN],
    len: usize,
}

impl Tail {
    const EMPTY: Self = Self {
        bytes: [0; TAIL_LEN],
        len: 0,
    };

    fn of(data: &[u8]) -> Self {
        let mut tail = Self::EMPTY;
        tail.extend(data);
        tail
    }

    fn extend(&mut self, data: &[u8]) {
        if data.len() >= TAIL_LEN {
            let start = data.len().saturating_sub(TAIL_LEN);
            self.bytes
                .copy_from_slice(data.get(start..).unwrap_or_default());
            self.len = TAIL_LEN;
            return;
        }
        let keep = self.len.min(TAIL_LEN.saturating_sub(data.len()));
        self.bytes
            .copy_within(self.len.saturating_sub(keep)..self.len, 0);
        if let Some(dst) = self.bytes.get_mut(keep..keep.saturating_add(data.len())) {
            dst.copy_from_slice(data);
        }
        self.len = keep.saturating_add(data.len());
    }

    fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

/// The literal announcement ending `line` (which includes its LF), if any: `{n}`, `{n+}`,
/// `~{n}` or `~{n+}` followed by CRLF (a bare LF is accepted too, so that the literal bytes
/// of a sloppy peer are never taken for a command; the parser then rejects the message).
///
/// ```text
/// literal  = "{" number64 ["+"] "}" CRLF *CHAR8      ; RFC 9051, "+" from RFC 7888
/// literal8 = "~{" number64 ["+"] "}" CRLF *OCTET     ; RFC 3516 / RFC 9051
/// ```
///
/// Only the last 32 bytes are looked at, the same whether the line was buffered or
/// discarded, so the answer never depends on chunking.
pub fn literal_header(line: &[u8]) -> Option<LiteralHeader> {
    let window = line
        .get(line.len().saturating_sub(TAIL_LEN)..)
        .unwrap_or_default();
    let rest = window.strip_suffix(b"\n")?;
    let rest = rest.strip_suffix(b"\r").unwrap_or(rest);
    let rest = rest.strip_suffix(b"}")?;
    let (rest, non_sync) = match rest.strip_suffix(b"+") {
        Some(rest) => (rest, true),
        None => (rest, false),
    };
    let digits_start = rest
        .iter()
        .rposition(|b| !b.is_ascii_digit())
        .map_or(0, |i| i.saturating_add(1));
    let digits = rest.get(digits_start..).unwrap_or_default();
    if digits.is_empty() {
        return None;
    }
    let rest = rest
        .get(..digits_start)
        .unwrap_or_default()
        .strip_suffix(b"{")?;
    let binary = rest.last() == Some(&b'~');
    let length = digits.iter().fold(0u64, |n, d| {
        n.saturating_mul(10)
            .saturating_add(u64::from(d.wrapping_sub(b'0')))
    });
    Some(LiteralHeader {
        length,
        non_sync,
        binary,
    })
}

/// Whether the first line of a command names APPEND: `tag SP "APPEND" SP` (RFC 9051
/// `append`), case-insensitively.
fn is_append(first_line: &[u8]) -> bool {
    let Some(sp) = memchr::memchr(b' ', first_line) else {
        return false;
    };
    first_line
        .get(sp.saturating_add(1)..sp.saturating_add(8))
        .is_some_and(|word| word.eq_ignore_ascii_case(b"APPEND "))
}

/// The incremental fragmentizer; see the [module docs](self).
#[derive(Debug)]
pub struct Fragmentizer {
    role: Role,
    limits: Limits,
    /// The current message from its first byte, followed by input not yet framed. Empty
    /// while discarding, unless input arrived before [`Fragmentizer::poll`] got to it.
    buf: BytesMut,
    state: State,
    /// Literals announced so far in the current message.
    literals: usize,
    /// The current message is an APPEND command (decided on its first literal).
    append: bool,
}

impl Fragmentizer {
    /// A fragmentizer for `role` with `limits`.
    pub fn new(role: Role, limits: Limits) -> Self {
        Self {
            role,
            limits,
            buf: BytesMut::new(),
            state: State::START,
            literals: 0,
            append: false,
        }
    }

    /// The role given to [`Fragmentizer::new`].
    pub fn role(&self) -> Role {
        self.role
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Changes the limits, e.g. a per-user APPENDLIMIT after login, LITERAL+ once advertised,
    /// or a larger line limit for SASL data during AUTHENTICATE. They apply from the next
    /// check on; a literal already accepted is not checked again.
    pub fn limits_mut(&mut self) -> &mut Limits {
        &mut self.limits
    }

    /// Appends received bytes. Call [`Fragmentizer::poll`] until it returns `None` before
    /// pushing more, so that memory stays bounded by the limits plus one chunk.
    pub fn push(&mut self, mut data: &[u8]) {
        // The bytes of a dropped message are consumed straight from the input, never copied.
        if self.buf.is_empty() {
            while let State::Discard(discard) = self.state {
                if data.is_empty() {
                    return;
                }
                let used = self.discard(discard, data);
                data = data.get(used..).unwrap_or_default();
            }
        }
        if !data.is_empty() {
            self.buf.extend_from_slice(data);
        }
    }

    /// The next outcome of the input pushed so far, or `None` when more input is needed or a
    /// [`Frame::LiteralAnnounced`] waits for [`Fragmentizer::accept_literal`] /
    /// [`Fragmentizer::reject_literal`].
    pub fn poll(&mut self) -> Option<Frame> {
        loop {
            match self.state {
                State::Line { line_start, scan } => {
                    let unscanned = self.buf.get(scan..).unwrap_or_default();
                    let Some(found) = memchr::memchr(b'\n', unscanned) else {
                        let end = self.buf.len();
                        if let Some(frame) = self.check_line(line_start, end, false) {
                            return Some(frame);
                        }
                        self.state = State::Line {
                            line_start,
                            scan: end,
                        };
                        return None;
                    };
                    let line_end = scan.saturating_add(found).saturating_add(1);
                    if let Some(frame) = self.check_line(line_start, line_end, true) {
                        return Some(frame);
                    }
                    let line = self.buf.get(line_start..line_end).unwrap_or_default();
                    match literal_header(line) {
                        None => return Some(self.finish_message(line_end)),
                        Some(literal) => {
                            if let Some(frame) = self.announce(line_end, literal) {
                                return Some(frame);
                            }
                        }
                    }
                }
                State::Literal { end } => {
                    if self.buf.len() < end {
                        return None;
                    }
                    self.state = State::Line {
                        line_start: end,
                        scan: end,
                    };
                }
                State::Decision { .. } => return None,
                State::Discard(discard) => {
                    if self.buf.is_empty() {
                        return None;
                    }
                    let mut data = std::mem::take(&mut self.buf);
                    let used = self.discard(discard, &data);
                    data.advance(used);
                    self.buf = data;
                    if !matches!(self.state, State::Discard(_)) {
                        self.release(0);
                    }
                }
            }
        }
    }

    /// Server role, after [`Frame::LiteralAnnounced`]: the literal is welcome. The session
    /// sends a `+` continuation request; the literal bytes then belong to the message.
    pub fn accept_literal(&mut self) -> Result<(), NoPendingLiteral> {
        let State::Decision { end, .. } = self.state else {
            return Err(NoPendingLiteral);
        };
        self.reserve_literal(end);
        self.state = State::Literal { end };
        Ok(())
    }

    /// Server role, after [`Frame::LiteralAnnounced`]: the literal is refused and the
    /// announcing message dropped. The session answers the tag with `NO` (e.g. `[TOOBIG]`,
    /// `[OVERQUOTA]`) or `BAD` and sends no `+`; the client, which waits for one, sends
    /// nothing more of this message, so the next byte starts a new message.
    pub fn reject_literal(&mut self) -> Result<(), NoPendingLiteral> {
        let State::Decision { line_end, .. } = self.state else {
            return Err(NoPendingLiteral);
        };
        self.buf.advance(line_end.min(self.buf.len()));
        self.state = State::START;
        self.release(line_end);
        Ok(())
    }

    /// The synchronizing literal waiting for a decision, if any.
    pub fn pending_literal(&self) -> Option<LiteralHeader> {
        match self.state {
            State::Decision { literal, .. } => Some(literal),
            _ => None,
        }
    }

    /// `true` while the rest of a rejected message is being dropped.
    pub fn is_discarding(&self) -> bool {
        matches!(self.state, State::Discard(_))
    }

    /// `true` between messages: nothing of a message has been framed and no byte is
    /// buffered (the moment to switch to TLS or compression).
    pub fn is_idle(&self) -> bool {
        self.state == State::START && self.buf.is_empty()
    }

    /// Bytes held: the partial message and input not yet framed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Bytes of memory the buffer holds (at least [`Fragmentizer::buffered`]); it falls back
    /// to a few KiB between messages.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Removes and returns every buffered byte not yet handed out as a message (a partial
    /// message included) and starts afresh, e.g. to feed the input that followed
    /// `COMPRESS DEFLATE` to a decompressor. A discard in progress is abandoned.
    pub fn take_buffered(&mut self) -> Bytes {
        self.reset();
        self.buf.split().freeze()
    }

    /// Drops everything buffered and starts afresh, e.g. the input a client pipelined after
    /// `STARTTLS`, which must not be executed (RFC 9051 §6.2.1, CVE-2011-0411 class).
    pub fn clear(&mut self) {
        self.reset();
        self.buf = BytesMut::new();
    }

    fn reset(&mut self) {
        self.state = State::START;
        self.literals = 0;
        self.append = false;
    }

    /// Checks the line from `line_start` to `end` (its LF included when `complete`) against
    /// the line and message limits. A violation is placed at the first byte that exceeds a
    /// limit, so it is found, and reported the same, however the input was chunked.
    fn check_line(&mut self, line_start: usize, end: usize, complete: bool) -> Option<Frame> {
        let line_over = (end.saturating_sub(line_start) > self.limits.max_line).then(|| {
            (
                line_start.saturating_add(self.limits.max_line),
                LimitExceeded::LineTooLong {
                    limit: self.limits.max_line,
                },
            )
        });
        let max_message = self.limits.max_message;
        let message_over = (end as u64 > max_message).then(|| {
            (
                usize::try_from(max_message).unwrap_or(usize::MAX),
                LimitExceeded::MessageTooLarge { limit: max_message },
            )
        });
        let (at, limit) = match (line_over, message_over) {
            (Some(line), Some(message)) if message.0 < line.0 => message,
            (Some(line), _) => line,
            (None, Some(message)) => message,
            (None, None) => return None,
        };
        let head = self.head(at);
        let tail = Tail::of(
            self.buf
                .get(line_start.max(end.saturating_sub(TAIL_LEN))..end)
                .unwrap_or_default(),
        );
        self.buf.advance(end.min(self.buf.len()));
        self.reset();
        if complete {
            self.line_dropped(tail.as_slice());
        } else {
            self.state = State::Discard(Discard::Line(tail));
        }
        self.release(end);
        Some(Frame::Rejected(Rejection {
            limit,
            recovery: Recovery::Discarding,
            head,
        }))
    }

    /// A complete line of a dropped message has been discarded; `tail` is its end. If it
    /// announces a literal whose bytes will come anyway, they are dropped next.
    fn line_dropped(&mut self, tail: &[u8]) {
        self.state = match literal_header(tail) {
            Some(literal) if literal.non_sync || self.role == Role::Client => {
                State::Discard(Discard::Literal {
                    remaining: literal.length,
                })
            }
            // No literal, or a synchronizing one the peer waits to be invited to send: the
            // message ends here.
            _ => State::START,
        };
    }

    /// Drops bytes of a rejected message from `data`; returns how many it consumed (all of
    /// `data` unless the message ended inside it).
    fn discard(&mut self, discard: Discard, data: &[u8]) -> usize {
        match discard {
            Discard::Line(mut tail) => match memchr::memchr(b'\n', data) {
                None => {
                    tail.extend(data);
                    self.state = State::Discard(Discard::Line(tail));
                    data.len()
                }
                Some(lf) => {
                    let used = lf.saturating_add(1);
                    tail.extend(data.get(..used).unwrap_or_default());
                    self.line_dropped(tail.as_slice());
                    used
                }
            },
            Discard::Literal { remaining } => {
                let used = usize::try_from(remaining)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                let remaining = remaining.saturating_sub(used as u64);
                self.state = State::Discard(if remaining == 0 {
                    Discard::Line(Tail::EMPTY)
                } else {
                    Discard::Literal { remaining }
                });
                used
            }
        }
    }

    /// The line ending just before `line_end` announced `literal`: check it against the
    /// limits, then take its bytes, ask the session, or reject the message.
    fn announce(&mut self, line_end: usize, literal: LiteralHeader) -> Option<Frame> {
        if self.literals == 0 && self.role == Role::Server {
            self.append = is_append(self.buf.get(..line_end).unwrap_or_default());
        }
        let index = self.literals;
        self.literals = self.literals.saturating_add(1);
        let literal_limit = if self.append {
            self.limits.max_append_literal
        } else {
            self.limits.max_literal
        };
        let waits = self.role == Role::Server && !literal.non_sync;
        let end = usize::try_from(literal.length)
            .ok()
            .and_then(|length| line_end.checked_add(length));
        let violation = if self.literals > self.limits.max_literals {
            Some(LimitExceeded::TooManyLiterals {
                limit: self.limits.max_literals,
            })
        } else if literal.length > literal_limit {
            Some(LimitExceeded::LiteralTooLarge {
                literal,
                limit: literal_limit,
                append: self.append,
            })
        } else if let Some(limit) = self.limits.max_non_sync_literal.filter(|&limit| {
            self.role == Role::Server && literal.non_sync && literal.length > limit
        }) {
            Some(LimitExceeded::NonSyncLiteralTooLarge { literal, limit })
        } else if end.is_none_or(|end| end as u64 > self.limits.max_message) {
            Some(LimitExceeded::MessageTooLarge {
                limit: self.limits.max_message,
            })
        } else {
            None
        };
        let head = self.head(line_end);
        if let Some(limit) = violation {
            self.buf.advance(line_end.min(self.buf.len()));
            self.reset();
            let recovery = if waits {
                Recovery::Refused
            } else {
                self.state = State::Discard(Discard::Literal {
                    remaining: literal.length,
                });
                Recovery::Discarding
            };
            self.release(line_end);
            return Some(Frame::Rejected(Rejection {
                limit,
                recovery,
                head,
            }));
        }
        let end = end.unwrap_or(line_end);
        if waits {
            self.state = State::Decision {
                line_end,
                end,
                literal,
            };
            return Some(Frame::LiteralAnnounced(LiteralAnnouncement {
                literal,
                append: self.append,
                index,
                head,
            }));
        }
        self.reserve_literal(end);
        self.state = State::Literal { end };
        None
    }

    /// Makes room for a literal ending at `end`, so that its bytes are not copied again as
    /// the buffer grows; at most [`RESERVE_AHEAD`] at a time, so that an announcement alone
    /// cannot make the fragmentizer allocate the whole limit.
    fn reserve_literal(&mut self, end: usize) {
        self.buf
            .reserve(end.saturating_sub(self.buf.len()).min(RESERVE_AHEAD));
    }

    fn finish_message(&mut self, end: usize) -> Frame {
        let message = self.buf.split_to(end.min(self.buf.len())).freeze();
        self.reset();
        self.release(end);
        Frame::Message(message)
    }

    /// A copy of the first bytes of the current message, stopping before `at`.
    fn head(&self, at: usize) -> Bytes {
        Bytes::copy_from_slice(
            self.buf
                .get(..at.min(HEAD_LEN).min(self.buf.len()))
                .unwrap_or_default(),
        )
    }

    /// Called when a message of `size` bytes has left the buffer: give back memory a large
    /// message needed, so that idle connections stay small.
    fn release(&mut self, size: usize) {
        if self.buf.is_empty() {
            if self.buf.capacity() > IDLE_CAPACITY {
                self.buf = BytesMut::new();
            }
        } else if size > IDLE_CAPACITY
            || self.buf.capacity() > IDLE_CAPACITY.max(self.buf.len().saturating_mul(4))
        {
            // The remainder shares the large allocation; copy it out so it can be freed.
            self.buf = BytesMut::from(&self.buf[..]);
        }
    }
}
