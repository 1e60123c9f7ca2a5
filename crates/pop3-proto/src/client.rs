//! The client side: [`ClientSession`] drives a POP3 server (RFC 1939, RFC 2449, RFC 2595
//! STLS, RFC 5034 AUTH, RFC 3206 response codes, RFC 6856 UTF8/LANG) for the connectivity
//! tester and proxy mode.
//!
//! Same shape as [`crate::ServerSession`]:
//!
//! | kind | methods |
//! |---|---|
//! | inputs | [`handle_input`], [`handle_eof`], [`handle_timeout`], [`handle_tls_established`] |
//! | commands | [`send_command`] and typed helpers ([`ClientSession::stat`], ...), [`sasl_respond`], [`sasl_cancel`], [`close`] |
//! | outputs | [`poll_event`], [`poll_transmit`], [`poll_timeout`] — drain in that order after every input or command |
//! | getters | [`state`], [`wants_input`], [`is_closed`], [`capabilities`], ... |
//!
//! [`handle_input`]: ClientSession::handle_input
//! [`handle_eof`]: ClientSession::handle_eof
//! [`handle_timeout`]: ClientSession::handle_timeout
//! [`handle_tls_established`]: ClientSession::handle_tls_established
//! [`send_command`]: ClientSession::send_command
//! [`sasl_respond`]: ClientSession::sasl_respond
//! [`sasl_cancel`]: ClientSession::sasl_cancel
//! [`close`]: ClientSession::close
//! [`poll_event`]: ClientSession::poll_event
//! [`poll_transmit`]: ClientSession::poll_transmit
//! [`poll_timeout`]: ClientSession::poll_timeout
//! [`state`]: ClientSession::state
//! [`wants_input`]: ClientSession::wants_input
//! [`is_closed`]: ClientSession::is_closed
//! [`capabilities`]: ClientSession::capabilities
//!
//! # Requests and replies
//!
//! Every command method returns a [`RequestId`]. Each id is answered by exactly one terminal
//! event: [`ClientEvent::ReplyReceived`], [`ClientEvent::ReplyFailed`] or (for `STLS`)
//! [`ClientEvent::TlsReady`]. [`ClientEvent::SaslChallengeReceived`] is intermediate: the
//! `AUTH` exchange stays open until the server's final `+OK` / `-ERR`.
//!
//! Commands are queued and released in order. Before the greeting nothing is sent. Without
//! `PIPELINING` in the last `CAPA` reply, one command is on the wire at a time; with it, up to
//! [`ClientLimits::pipeline_depth`]. `STLS` and `AUTH` are never pipelined: they wait until
//! every earlier reply is in, and nothing follows them until their exchange ends.
//!
//! The session does not second-guess the order of commands (it sends `STAT` before login if
//! asked; the server answers `-ERR`). It tracks what it must to parse replies: which reply
//! is multi-line, the SASL exchange, STLS, and the capabilities for pipelining.
//!
//! # Message bodies
//!
//! `RETR` and `TOP` bodies are delivered whole in one [`Reply::Message`], un-stuffed, with
//! line ends exactly as the server sent them (a conforming server — and cas-rs's — sends CRLF
//! everywhere and adds a final CRLF to a message that lacks one, so a body stored with bare
//! LFs comes back with CRLFs). A body larger than [`ClientLimits::max_message_size`] is
//! reported as [`ReplyError::MessageTooLarge`] as soon as the limit is crossed; the rest of it
//! is read and discarded so the session stays in step. There is no incremental (chunked)
//! delivery: the connectivity tester wants whole messages, and a proxy that must relay
//! arbitrarily large messages should relay bytes rather than re-parse them.
//!
//! # STLS
//!
//! After `+OK` to `STLS` the session reports [`ClientEvent::TlsReady`] and stops reading:
//! drain [`ClientSession::poll_transmit`], run the TLS handshake, then call
//! [`ClientSession::handle_tls_established`]. Plain-text bytes that arrive after the `+OK`
//! line and before the handshake completes cannot come from the server's TLS stack (it speaks
//! only after the client's hello); they are an injection attempt (STARTTLS response
//! injection) and are discarded and reported as [`ClientEvent::InjectionDiscarded`]. Cached
//! capabilities are forgotten once TLS is up (RFC 2595 §4): issue `CAPA` again. Commands
//! queued behind an `STLS` that the server refuses are not sent (they were meant for a
//! protected channel) and fail with [`ReplyError::NotSent`].
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use pop3_proto::client::{ClientConfig, ClientEvent, ClientOptions, ClientSession, Reply};
//!
//! let now = Instant::now();
//! let mut c = ClientSession::new(Arc::new(ClientConfig::default()), now, ClientOptions::default());
//! let stat = c.stat(now).unwrap(); // queued until the greeting has arrived
//! let list = c.list(now, None).unwrap();
//!
//! c.handle_input(now, b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n");
//! let Some(ClientEvent::GreetingReceived { ok: true, apop_timestamp, .. }) = c.poll_event()
//!     else { panic!("expected the greeting") };
//! assert_eq!(apop_timestamp.as_deref(), Some("<1896.697170952@dbc.mtview.ca.us>"));
//!
//! let mut wire = Vec::new();
//! c.poll_transmit(&mut wire);
//! assert_eq!(wire, b"STAT\r\n"); // no PIPELINING advertised: one at a time
//!
//! c.handle_input(now, b"+OK 2 320\r\n");
//! let Some(ClientEvent::ReplyReceived { id, reply: Reply::Stat(drop) }) = c.poll_event()
//!     else { panic!("expected STAT") };
//! assert_eq!((id, drop.count, drop.size), (stat, 2, 320));
//!
//! wire.clear();
//! c.poll_transmit(&mut wire);
//! assert_eq!(wire, b"LIST\r\n"); // released by the STAT reply
//! c.handle_input(now, b"+OK 2 messages\r\n1 120\r\n2 200\r\n.\r\n");
//! let Some(ClientEvent::ReplyReceived { id, reply: Reply::Listing(scan) }) = c.poll_event()
//!     else { panic!("expected LIST") };
//! assert_eq!((id, scan.len()), (list, 2));
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::command::{Command, Mechanism, SaslResponse};
use crate::error::{ParseError, ParseErrorKind, SendError, SendErrorKind};
use crate::framer::{Frame, LineFramer};
use crate::response::{
    Capability, DropListing, LanguageListing, Response, ResponseCode, ScanListing, Status,
    StatusLine, UidListing,
};
use crate::stuffing::DotUnstuffer;

/// RFC 2449 §4: the first line of a response is at most 512 octets including CRLF; a smaller
/// line limit would refuse conforming servers.
const MIN_LINE: usize = 512;

/// RFC 2449 §4: a command line is at most 255 octets including CRLF. RFC 5034 §4: an AUTH
/// command whose initial response would exceed that is sent without it.
const MAX_COMMAND_LINE: usize = 255;

/// Input handed to the un-stuffer at once while discarding an oversized reply.
const DISCARD_PIECE: usize = 16 * 1024;

/// Output buffer capacity kept while idle.
const IDLE_CAPACITY: usize = 4096;

/// Limits of a [`ClientSession`]. "Unlimited" is `None`, never `0`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientLimits {
    /// Longest status, challenge or listing line, including its CRLF. Default 8192: status
    /// lines are at most 512 octets (RFC 2449 §4, also the effective minimum), but SASL
    /// challenges (e.g. an NTLM CHALLENGE with target info) are longer; same as the server's
    /// `max_sasl_response`. Does not apply to `RETR`/`TOP` bodies, whose lines are unbounded
    /// and count only towards `max_message_size`. An overlong status or challenge line
    /// closes the session (its end cannot be trusted); an overlong listing line fails that
    /// reply ([`ReplyError::LineTooLong`]).
    pub max_line: usize,
    /// Largest un-stuffed `RETR`/`TOP` body held in memory. Default 64 MiB: above the size
    /// limits mail systems commonly put on a message, small enough to buffer. Beyond it the
    /// reply fails with [`ReplyError::MessageTooLarge`] and the rest is discarded.
    pub max_message_size: Option<u64>,
    /// Largest un-stuffed multi-line listing (`CAPA`, `LIST`, `UIDL`, `LANG`, `AUTH`).
    /// Default 16 MiB: `UIDL` of 200 000 messages with 70-octet unique-ids. Beyond it the
    /// reply fails with [`ReplyError::ListingTooLarge`].
    pub max_listing_size: Option<u64>,
    /// How long the server may stay silent while a reply (or the greeting) is outstanding;
    /// any received byte restarts it, so a slow but steady `RETR` never times out. Default
    /// 60 s, the server side's pre-authentication timeout. Not armed while the application
    /// owes a SASL response or runs the TLS handshake.
    pub reply_timeout: Option<Duration>,
    /// Commands on the wire at once when the server advertises `PIPELINING` (RFC 2449 §6.6
    /// leaves the number to the client). Default 16: sixteen maximal 255-octet command lines
    /// fit the 16 KiB a cas-rs server buffers. Values below 1 act as 1.
    pub pipeline_depth: usize,
}

impl Default for ClientLimits {
    fn default() -> Self {
        Self {
            max_line: 8192,
            max_message_size: Some(64 * 1024 * 1024),
            max_listing_size: Some(16 * 1024 * 1024),
            reply_timeout: Some(Duration::from_secs(60)),
            pipeline_depth: 16,
        }
    }
}

/// Configuration shared (via `Arc`) by client sessions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientConfig {
    /// Limits and timers.
    pub limits: ClientLimits,
}

/// Per-connection options of a [`ClientSession`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientOptions {
    /// The connection is already protected by TLS (implicit TLS, port 995, RFC 8314).
    pub tls_active: bool,
}

/// Correlates a command with its reply events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(u64);

impl RequestId {
    /// The numeric value (unique within one session, increasing), e.g. for logs.
    pub fn value(self) -> u64 {
        self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Where a [`ClientSession`] stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientState {
    /// Waiting for the server's greeting; commands are queued.
    AwaitingGreeting,
    /// Greeted; not logged in.
    Authorization,
    /// `+OK` to `STLS` received: waiting for [`ClientSession::handle_tls_established`].
    StartingTls,
    /// Logged in (`+OK` to `PASS`, `APOP` or `AUTH`).
    Transaction,
    /// Ended; see [`ClientEvent::Closed`].
    Closed,
}

/// A server reply, typed by the command it answers.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply {
    /// A single-line reply without a payload to interpret: `+OK` to `USER`, `PASS`, `APOP`,
    /// `AUTH` (end of the exchange), `DELE`, `NOOP`, `RSET`, `UTF8`, `LANG tag` and `QUIT`;
    /// and `-ERR` to any command, with its RFC 2449 / RFC 3206 response code.
    Status(StatusLine),
    /// `+OK` to `CAPA`: the capability list (also kept, see [`ClientSession::capabilities`]).
    Capabilities(Vec<Capability>),
    /// `+OK` to `STAT`.
    Stat(DropListing),
    /// `+OK` to `LIST` (all entries) or `LIST n` (one entry).
    Listing(Vec<ScanListing>),
    /// `+OK` to `UIDL` (all entries) or `UIDL n` (one entry).
    UidListing(Vec<UidListing>),
    /// `+OK` to `RETR` / `TOP`: the un-stuffed body, line ends as received.
    Message {
        /// The message (or its first lines), without the terminating `.` line.
        body: Bytes,
    },
    /// `+OK` to `LANG` without argument (RFC 6856 §3).
    Languages(Vec<LanguageListing>),
    /// `+OK` to `AUTH` without argument: the SASL mechanisms, one per line (a pre-RFC 5034
    /// listing that many servers still answer).
    Mechanisms(Vec<String>),
}

impl Reply {
    /// `false` only for `-ERR`.
    pub fn is_ok(&self) -> bool {
        !matches!(self, Self::Status(s) if s.status == Status::Err)
    }
}

/// Why a request failed without a usable reply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// The `+OK` reply's payload did not parse (e.g. `STAT` text not `count size`, a `LIST`
    /// line that is not `msg size`). The rest of a multi-line reply was discarded.
    #[error("malformed reply: {0}")]
    Malformed(ParseError),
    /// A line of a multi-line listing exceeded [`ClientLimits::max_line`]; the rest of the
    /// reply was discarded.
    #[error("reply line longer than the limit")]
    LineTooLong,
    /// A `RETR`/`TOP` body exceeded [`ClientLimits::max_message_size`]; the rest was
    /// discarded.
    #[error("message larger than the limit of {limit} octets")]
    MessageTooLarge {
        /// The limit in force.
        limit: u64,
    },
    /// A multi-line listing exceeded [`ClientLimits::max_listing_size`]; the rest was
    /// discarded.
    #[error("listing larger than the limit of {limit} octets")]
    ListingTooLarge {
        /// The limit in force.
        limit: u64,
    },
    /// The command was sent, but the session closed before its reply was complete. A
    /// [`ClientEvent::Closed`] with the reason follows.
    #[error("session closed before the reply was complete")]
    Aborted,
    /// The command was never sent: the session closed first, or it was queued behind an
    /// `STLS` the server refused (it was meant for a protected channel).
    #[error("command not sent")]
    NotSent,
}

/// How the server broke the protocol. The session cannot stay in step and closes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolViolation {
    /// A line where a status line was due is not `+OK` / `-ERR`.
    #[error("invalid status line: {0}")]
    InvalidStatusLine(ParseError),
    /// A status or challenge line exceeded [`ClientLimits::max_line`].
    #[error("status line too long")]
    LineTooLong,
    /// Data other than an `-ERR` line arrived while no reply was outstanding, or other than
    /// a status line while the client owed a SASL response.
    #[error("unsolicited data from the server")]
    UnexpectedData,
    /// A `+ ` continuation answered a command other than `AUTH`.
    #[error("SASL continuation outside an AUTH exchange")]
    UnexpectedContinuation,
    /// A SASL challenge was not valid base64.
    #[error("invalid SASL challenge: {0}")]
    InvalidChallenge(ParseError),
}

/// Why a [`ClientSession`] ended. Reported once, in [`ClientEvent::Closed`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientCloseReason {
    /// The server answered `QUIT` (`+OK`, or `-ERR` when it could not commit).
    #[error("QUIT answered")]
    Quit,
    /// The greeting was `-ERR` (e.g. `[IN-USE]`, `[SYS/TEMP]`, too many connections).
    #[error("greeting rejected")]
    GreetingRejected,
    /// The server closed the connection (EOF) before `QUIT` was answered.
    #[error("server closed the connection")]
    PeerClosed,
    /// [`ClientLimits::reply_timeout`] expired.
    #[error("reply timeout")]
    Timeout,
    /// The server announced that it is closing with an unsolicited `-ERR` while no reply
    /// was outstanding (inactivity timeout, shutdown: e.g. `-ERR [SYS/TEMP] ...`). Close the
    /// socket.
    #[error("closed by the server: {}", .0.text)]
    ClosedByServer(StatusLine),
    /// The server broke the protocol.
    #[error("protocol violation: {0}")]
    ProtocolViolation(ProtocolViolation),
    /// The application called [`ClientSession::close`].
    #[error("closed by the application")]
    Aborted,
}

/// What happened; drain with [`ClientSession::poll_event`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The server's greeting arrived. `-ERR` is followed by
    /// [`ClientCloseReason::GreetingRejected`].
    GreetingReceived {
        /// `+OK` (`true`) or `-ERR`.
        ok: bool,
        /// RFC 2449 / RFC 3206 response code, if any.
        code: Option<ResponseCode>,
        /// Greeting text after the status (and code).
        text: String,
        /// The APOP timestamp `<...>` from a `+OK` greeting (RFC 1939 §7), brackets
        /// included — the exact string to hash with the shared secret.
        apop_timestamp: Option<String>,
    },
    /// The final reply to a request.
    ReplyReceived {
        /// The request answered.
        id: RequestId,
        /// The typed reply.
        reply: Reply,
    },
    /// A request ended without a usable reply.
    ReplyFailed {
        /// The request.
        id: RequestId,
        /// What went wrong.
        error: ReplyError,
    },
    /// The server sent a SASL challenge (decoded; empty for `+ `). Answer with
    /// [`ClientSession::sasl_respond`] or [`ClientSession::sasl_cancel`].
    SaslChallengeReceived {
        /// The `AUTH` request.
        id: RequestId,
        /// Decoded challenge.
        challenge: Vec<u8>,
    },
    /// `+OK` to `STLS`: drain output, run the TLS handshake, then call
    /// [`ClientSession::handle_tls_established`].
    TlsReady {
        /// The `STLS` request.
        id: RequestId,
    },
    /// Plain-text bytes received after `+OK` to `STLS` and before the TLS handshake were
    /// discarded (STARTTLS response injection).
    InjectionDiscarded {
        /// Number of bytes dropped.
        len: usize,
    },
    /// The session ended. Every outstanding request has had its `ReplyFailed` first.
    Closed {
        /// Why.
        reason: ClientCloseReason,
    },
}

/// What shape of reply a command expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Status,
    /// `PASS` / `APOP`: `+OK` enters TRANSACTION.
    Login,
    Quit,
    Stat,
    ScanAll,
    ScanOne,
    UidAll,
    UidOne,
    Message,
    Capa,
    Stls,
    Sasl,
    Languages,
    Mechanisms,
}

impl Expect {
    fn of(command: &Command<'_>) -> Self {
        match command {
            Command::User(_)
            | Command::Dele(_)
            | Command::Noop
            | Command::Rset
            | Command::Utf8
            | Command::Lang(Some(_)) => Self::Status,
            Command::Pass(_) | Command::Apop { .. } => Self::Login,
            Command::Auth { .. } => Self::Sasl,
            Command::AuthList => Self::Mechanisms,
            Command::Stat => Self::Stat,
            Command::List(None) => Self::ScanAll,
            Command::List(Some(_)) => Self::ScanOne,
            Command::Retr(_) | Command::Top { .. } => Self::Message,
            Command::Quit => Self::Quit,
            Command::Uidl(None) => Self::UidAll,
            Command::Uidl(Some(_)) => Self::UidOne,
            Command::Capa => Self::Capa,
            Command::Stls => Self::Stls,
            Command::Lang(None) => Self::Languages,
        }
    }

    /// Commands that change how the following bytes are read: never pipelined.
    fn is_barrier(self) -> bool {
        matches!(self, Self::Stls | Self::Sasl)
    }
}

/// A command waiting to be sent.
struct Queued {
    id: RequestId,
    expect: Expect,
    line: Vec<u8>,
    /// RFC 5034 §4: an initial response too long for the command line, sent after the
    /// server's empty challenge instead.
    deferred_ir: Option<Vec<u8>>,
}

/// A command on the wire, awaiting its reply.
struct InFlight {
    id: RequestId,
    expect: Expect,
    /// A SASL challenge was reported; the application's response is due.
    awaiting_client: bool,
    deferred_ir: Option<Vec<u8>>,
}

/// The multi-line reply being received.
struct Body {
    id: RequestId,
    unstuffer: DotUnstuffer,
    kind: BodyKind,
    /// Message bytes, or the incomplete last line of a listing.
    buf: Vec<u8>,
    /// Un-stuffed octets so far.
    size: u64,
    /// Failure already reported: read to the terminator and drop.
    failed: bool,
}

enum BodyKind {
    Message,
    Capa(Vec<Capability>),
    Scan(Vec<ScanListing>),
    Uid(Vec<UidListing>),
    Languages(Vec<LanguageListing>),
    Mechanisms(Vec<String>),
}

impl BodyKind {
    fn for_expect(expect: Expect) -> Option<Self> {
        Some(match expect {
            Expect::Message => Self::Message,
            Expect::Capa => Self::Capa(Vec::new()),
            Expect::ScanAll => Self::Scan(Vec::new()),
            Expect::UidAll => Self::Uid(Vec::new()),
            Expect::Languages => Self::Languages(Vec::new()),
            Expect::Mechanisms => Self::Mechanisms(Vec::new()),
            _ => return None,
        })
    }

    /// Parses one complete, un-stuffed listing line (without its line end).
    fn push_line(&mut self, line: &[u8]) -> Result<(), ParseError> {
        match self {
            Self::Message => {}
            Self::Capa(v) => v.push(Capability::parse(line)?),
            Self::Scan(v) => v.push(ScanListing::parse(line)?),
            Self::Uid(v) => v.push(UidListing::parse(line)?),
            Self::Languages(v) => v.push(LanguageListing::parse(line)?),
            Self::Mechanisms(v) => {
                let text = std::str::from_utf8(line)
                    .map_err(|e| ParseError::new(ParseErrorKind::InvalidUtf8, e.valid_up_to()))?;
                let name = Mechanism::new(text.trim_matches([' ', '\t']))?;
                v.push(name.as_str().to_owned());
            }
        }
        Ok(())
    }
}

/// A sans-IO POP3 client connection. See the [module docs](self).
pub struct ClientSession {
    config: Arc<ClientConfig>,
    state: ClientState,
    framer: LineFramer,
    body: Option<Body>,
    queue: VecDeque<Queued>,
    in_flight: VecDeque<InFlight>,
    events: VecDeque<ClientEvent>,
    out: Vec<u8>,
    next_id: u64,
    tls_active: bool,
    capabilities: Option<Vec<Capability>>,
    apop_timestamp: Option<String>,
    /// Start of the current reply-timeout period.
    last_activity: Instant,
    /// `QUIT` has been queued: no further commands.
    quit_queued: bool,
}

impl fmt::Debug for ClientSession {
    // Buffers are left out: queued output may hold a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSession")
            .field("state", &self.state)
            .field("tls_active", &self.tls_active)
            .field("queued", &self.queue.len())
            .field("in_flight", &self.in_flight.len())
            .field("receiving_body", &self.body.is_some())
            .field("pending_output", &self.out.len())
            .finish_non_exhaustive()
    }
}

impl ClientSession {
    /// A session for a freshly opened connection; it waits for the greeting.
    pub fn new(config: Arc<ClientConfig>, now: Instant, options: ClientOptions) -> Self {
        Self {
            config,
            state: ClientState::AwaitingGreeting,
            framer: LineFramer::new(),
            body: None,
            queue: VecDeque::new(),
            in_flight: VecDeque::new(),
            events: VecDeque::new(),
            out: Vec::new(),
            next_id: 0,
            tls_active: options.tls_active,
            capabilities: None,
            apop_timestamp: None,
            last_activity: now,
            quit_queued: false,
        }
    }

    // ---------------------------------------------------------------------------------------
    // Inputs

    /// Bytes received from the server. Ignored once closed; discarded (and reported) between
    /// `+OK` to `STLS` and [`ClientSession::handle_tls_established`].
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        if self.state == ClientState::Closed || data.is_empty() {
            return;
        }
        self.last_activity = now;
        if self.state == ClientState::StartingTls {
            self.report_injection(data.len());
            return;
        }
        let mut rest = data;
        if self.body.is_some() {
            let n = self.feed_body(rest);
            rest = rest.get(n..).unwrap_or_default();
        }
        if self.body.is_none() && !rest.is_empty() {
            self.framer.push(rest);
            self.drain_frames();
        }
        self.pump(now);
    }

    /// The server closed the connection. Outstanding requests fail; the session closes
    /// with [`ClientCloseReason::PeerClosed`] unless it already closed.
    pub fn handle_eof(&mut self, _now: Instant) {
        self.close_with(ClientCloseReason::PeerClosed);
    }

    /// The timer from [`ClientSession::poll_timeout`] fired. Spurious or early calls are
    /// no-ops.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|deadline| deadline <= now) {
            self.close_with(ClientCloseReason::Timeout);
        }
    }

    /// The TLS handshake after [`ClientEvent::TlsReady`] completed: the following input is
    /// the decrypted stream. Forgets cached capabilities (RFC 2595 §4) and releases queued
    /// commands. A no-op in any other state.
    pub fn handle_tls_established(&mut self, now: Instant) {
        if self.state != ClientState::StartingTls {
            return;
        }
        self.state = ClientState::Authorization;
        self.tls_active = true;
        self.capabilities = None;
        self.framer.clear();
        self.last_activity = now;
        self.pump(now);
    }

    // ---------------------------------------------------------------------------------------
    // Commands

    /// Queues `command`; it goes out as soon as the greeting is in and the pipelining rules
    /// allow (see the [module docs](self)). Fails with [`SendErrorKind::Closed`] once the
    /// session is closed or `QUIT` has been queued.
    ///
    /// An `AUTH` whose initial response would make the line longer than 255 octets is sent
    /// without it, and the response follows the server's empty challenge (RFC 5034 §4).
    pub fn send_command<'a>(
        &mut self,
        now: Instant,
        command: Command<'a>,
    ) -> Result<RequestId, SendError<Command<'a>>> {
        if self.state == ClientState::Closed || self.quit_queued {
            return Err(SendError::new(SendErrorKind::Closed, command));
        }
        let expect = Expect::of(&command);
        let mut line = command.to_bytes();
        let mut deferred_ir = None;
        if let Command::Auth {
            mechanism,
            initial_response: Some(ir),
        } = &command
            && line.len() > MAX_COMMAND_LINE
        {
            line = Command::Auth {
                mechanism: *mechanism,
                initial_response: None,
            }
            .to_bytes();
            deferred_ir = Some(ir.clone());
        }
        self.next_id = self.next_id.wrapping_add(1);
        let id = RequestId(self.next_id);
        if expect == Expect::Quit {
            self.quit_queued = true;
        }
        self.queue.push_back(Queued {
            id,
            expect,
            line,
            deferred_ir,
        });
        self.pump(now);
        Ok(id)
    }

    /// `CAPA` (RFC 2449 §5).
    pub fn capa(&mut self, now: Instant) -> Result<RequestId, SendError<Command<'static>>> {
        self.send_command(now, Command::Capa)
    }

    /// `STLS` (RFC 2595 §4).
    pub fn stls(&mut self, now: Instant) -> Result<RequestId, SendError<Command<'static>>> {
        self.send_command(now, Command::Stls)
    }

    /// `STAT`.
    pub fn stat(&mut self, now: Instant) -> Result<RequestId, SendError<Command<'static>>> {
        self.send_command(now, Command::Stat)
    }

    /// `LIST` (`None`) or `LIST n`.
    pub fn list(
        &mut self,
        now: Instant,
        message: Option<u32>,
    ) -> Result<RequestId, SendError<Command<'static>>> {
        self.send_command(now, Command::List(message))
    }

    /// `UIDL` (`None`) or `UIDL n`.
    pub fn uidl(
        &mut self,
        now: Instant,
        message: Option<u32>,
    ) -> Result<RequestId, SendError<Command<'static>>> {
        self.send_command(now, Command::Uidl(message))
    }

    /// `RETR n`.
    pub fn retr(
        &mut self,
        now: Instant,
        message: u32,
    ) -> Result<RequestId, SendError<Command<'static>>> {
        self.send_command(now, Command::Retr(message))
    }

    /// `TOP n lines`.
    pub fn top(
        &mut self,
        now: Instant,
        message: u32,
        lines: u32,
    ) -> Result<RequestId, SendError<Command<'static>>> {
        self.send_command(now, Command::Top { message, lines })
    }

    /// `DELE n`.
    pub fn dele(
        &mut self,
        now: Instant,
        message: u32,
    ) -> Result<RequestId, SendError<Command<'static>>> {
        self.send_command(now, Command::Dele(message))
    }

    /// `NOOP`.
    pub fn noop(&mut self, now: Instant) -> Result<RequestId, SendError<Command<'static>>> {
        self.send_command(now, Command::Noop)
    }

    /// `RSET`.
    pub fn rset(&mut self, now: Instant) -> Result<RequestId, SendError<Command<'static>>> {
        self.send_command(now, Command::Rset)
    }

    /// `UTF8` (RFC 6856 §2).
    pub fn utf8(&mut self, now: Instant) -> Result<RequestId, SendError<Command<'static>>> {
        self.send_command(now, Command::Utf8)
    }

    /// `QUIT`. Its reply closes the session with [`ClientCloseReason::Quit`].
    pub fn quit(&mut self, now: Instant) -> Result<RequestId, SendError<Command<'static>>> {
        self.send_command(now, Command::Quit)
    }

    /// Answers the pending [`ClientEvent::SaslChallengeReceived`] of `id` with `data`
    /// (base64-encoded on the wire; an empty response is an empty line). Fails with
    /// [`SendErrorKind::UnknownId`] when no challenge of `id` awaits an answer.
    pub fn sasl_respond(
        &mut self,
        now: Instant,
        id: RequestId,
        data: &[u8],
    ) -> Result<(), SendError<RequestId>> {
        self.sasl_line(now, id, SaslResponse::Data(data.to_vec()))
    }

    /// Cancels the SASL exchange of `id` (`*`, RFC 5034 §4); the server's `-ERR` follows as
    /// its reply.
    pub fn sasl_cancel(&mut self, now: Instant, id: RequestId) -> Result<(), SendError<RequestId>> {
        self.sasl_line(now, id, SaslResponse::Cancel)
    }

    /// Abandons the session without `QUIT` (e.g. the tester gives up): outstanding requests
    /// fail, queued output is dropped, and [`ClientCloseReason::Aborted`] is reported. Close
    /// the socket afterwards.
    pub fn close(&mut self, _now: Instant) {
        self.close_with(ClientCloseReason::Aborted);
    }

    // ---------------------------------------------------------------------------------------
    // Outputs

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Appends every queued byte for the server to `buf` (commands are small: at most
    /// `pipeline_depth` lines of a few hundred octets, or one SASL line) and returns how many;
    /// 0 when there is nothing to send.
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> usize {
        let n = self.out.len();
        buf.extend_from_slice(&self.out);
        self.out.clear();
        if self.out.capacity() > IDLE_CAPACITY {
            self.out = Vec::new();
        }
        n
    }

    /// When to call [`ClientSession::handle_timeout`]: while the greeting or a reply is
    /// outstanding, [`ClientLimits::reply_timeout`] after the last received byte (or the
    /// moment the wait began).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timeout = self.config.limits.reply_timeout?;
        let waiting = match self.state {
            ClientState::Closed | ClientState::StartingTls => false,
            ClientState::AwaitingGreeting => true,
            ClientState::Authorization | ClientState::Transaction => {
                self.body.is_some() || self.in_flight.iter().any(|f| !f.awaiting_client)
            }
        };
        if waiting {
            self.last_activity.checked_add(timeout)
        } else {
            None
        }
    }

    // ---------------------------------------------------------------------------------------
    // Getters

    /// Where the session stands.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// Whether the driver should read from the socket: `false` once closed and while the
    /// TLS handshake is due.
    pub fn wants_input(&self) -> bool {
        !matches!(self.state, ClientState::Closed | ClientState::StartingTls)
    }

    /// Closed and nothing left to send: the driver may close the socket.
    pub fn is_closed(&self) -> bool {
        self.state == ClientState::Closed && self.out.is_empty()
    }

    /// The capabilities from the last `CAPA` reply; `None` before one arrived and after TLS
    /// was established.
    pub fn capabilities(&self) -> Option<&[Capability]> {
        self.capabilities.as_deref()
    }

    /// The last `CAPA` reply advertised `PIPELINING`.
    pub fn is_pipelining(&self) -> bool {
        self.capabilities
            .as_deref()
            .is_some_and(|c| c.contains(&Capability::Pipelining))
    }

    /// TLS protects the connection (implicit TLS or a completed `STLS`).
    pub fn is_tls_active(&self) -> bool {
        self.tls_active
    }

    /// The APOP timestamp from the greeting, brackets included.
    pub fn apop_timestamp(&self) -> Option<&str> {
        self.apop_timestamp.as_deref()
    }

    /// Bytes held in input buffers (partial line, body or listing line being received).
    pub(crate) fn buffered_input(&self) -> usize {
        self.framer
            .buffered()
            .saturating_add(self.body.as_ref().map_or(0, |b| b.buf.len()))
    }

    // ---------------------------------------------------------------------------------------
    // Internals

    fn max_line(&self) -> usize {
        self.config.limits.max_line.max(MIN_LINE)
    }

    fn sasl_line(
        &mut self,
        now: Instant,
        id: RequestId,
        response: SaslResponse,
    ) -> Result<(), SendError<RequestId>> {
        if self.state == ClientState::Closed {
            return Err(SendError::new(SendErrorKind::Closed, id));
        }
        match self.in_flight.front_mut() {
            Some(f) if f.id == id && f.expect == Expect::Sasl && f.awaiting_client => {
                f.awaiting_client = false;
            }
            _ => return Err(SendError::new(SendErrorKind::UnknownId, id)),
        }
        response.encode(&mut self.out);
        self.last_activity = now;
        Ok(())
    }

    fn report_injection(&mut self, len: usize) {
        if len > 0 {
            self.events
                .push_back(ClientEvent::InjectionDiscarded { len });
        }
    }

    /// Sends queued commands as far as the greeting, STLS and pipelining allow.
    fn pump(&mut self, now: Instant) {
        if !matches!(
            self.state,
            ClientState::Authorization | ClientState::Transaction
        ) {
            return;
        }
        let pipelining = self.is_pipelining();
        let depth = self.config.limits.pipeline_depth.max(1);
        while let Some(next) = self.queue.front() {
            let outstanding = self
                .in_flight
                .len()
                .saturating_add(usize::from(self.body.is_some()));
            if outstanding > 0 {
                let last_is_barrier = self.in_flight.back().is_some_and(|f| f.expect.is_barrier());
                if !pipelining
                    || outstanding >= depth
                    || last_is_barrier
                    || next.expect.is_barrier()
                {
                    break;
                }
            } else {
                // The wait for a reply starts now.
                self.last_activity = now;
            }
            let Some(next) = self.queue.pop_front() else {
                break;
            };
            self.out.extend_from_slice(&next.line);
            self.in_flight.push_back(InFlight {
                id: next.id,
                expect: next.expect,
                awaiting_client: false,
                deferred_ir: next.deferred_ir,
            });
        }
    }

    /// Processes complete lines held by the framer, handing over to the body decoder when a
    /// multi-line reply starts.
    fn drain_frames(&mut self) {
        loop {
            match self.state {
                ClientState::Closed => return,
                ClientState::StartingTls => {
                    // Bytes that followed the +OK to STLS in the same read.
                    let n = self.framer.buffered();
                    self.framer.clear();
                    self.report_injection(n);
                    return;
                }
                _ => {}
            }
            let Some(frame) = self.framer.next_frame(self.max_line()) else {
                return;
            };
            match frame {
                Frame::TooLong => {
                    self.violation(ProtocolViolation::LineTooLong);
                    return;
                }
                Frame::Line(line) => {
                    self.handle_line(&line);
                    if self.body.is_some() {
                        let rest = self.framer.take_buffered();
                        let n = self.feed_body(&rest);
                        if self.body.is_some() {
                            return;
                        }
                        self.framer.push(rest.get(n..).unwrap_or_default());
                    }
                }
            }
        }
    }

    fn handle_line(&mut self, line: &[u8]) {
        if self.state == ClientState::AwaitingGreeting {
            self.handle_greeting(line);
            return;
        }
        let Some(front) = self.in_flight.front_mut() else {
            // Servers announce an inactivity timeout or a shutdown with an unsolicited -ERR
            // before closing (RFC 1939 §3 autologout; `-ERR [SYS/TEMP] ...`).
            match StatusLine::parse(line) {
                Ok(status) if status.status == Status::Err => {
                    self.close_with(ClientCloseReason::ClosedByServer(status));
                }
                _ => self.violation(ProtocolViolation::UnexpectedData),
            }
            return;
        };
        let (id, expect) = (front.id, front.expect);
        if front.awaiting_client {
            // Only a status line may come while the client owes a SASL response: the server
            // ended the exchange (e.g. its timer fired). Anything else is out of turn.
            match StatusLine::parse(line) {
                Ok(status) => {
                    self.in_flight.pop_front();
                    self.reply(id, Reply::Status(status));
                }
                Err(_) => self.violation(ProtocolViolation::UnexpectedData),
            }
            return;
        }
        if expect == Expect::Sasl {
            match Response::parse(line) {
                Ok(Response::Continuation(challenge)) => {
                    if challenge.is_empty()
                        && let Some(ir) = front.deferred_ir.take()
                    {
                        // RFC 5034 §4: the long initial response answers the empty challenge.
                        SaslResponse::Data(ir).encode(&mut self.out);
                        return;
                    }
                    front.deferred_ir = None;
                    front.awaiting_client = true;
                    self.events
                        .push_back(ClientEvent::SaslChallengeReceived { id, challenge });
                }
                Ok(Response::Status(status)) => {
                    self.in_flight.pop_front();
                    if status.status == Status::Ok {
                        self.state = ClientState::Transaction;
                    }
                    self.reply(id, Reply::Status(status));
                }
                Err(e) if is_continuation(line) => {
                    self.violation(ProtocolViolation::InvalidChallenge(e));
                }
                Err(e) => self.violation(ProtocolViolation::InvalidStatusLine(e)),
            }
            return;
        }
        let status = match StatusLine::parse(line) {
            Ok(s) => s,
            Err(_) if is_continuation(line) => {
                self.violation(ProtocolViolation::UnexpectedContinuation);
                return;
            }
            Err(e) => {
                self.violation(ProtocolViolation::InvalidStatusLine(e));
                return;
            }
        };
        self.in_flight.pop_front();
        if status.status == Status::Err {
            self.reply(id, Reply::Status(status));
            match expect {
                Expect::Stls => self.drop_queued(),
                Expect::Quit => self.close_with(ClientCloseReason::Quit),
                _ => {}
            }
            return;
        }
        match expect {
            Expect::Status | Expect::Sasl => self.reply(id, Reply::Status(status)),
            Expect::Login => {
                self.state = ClientState::Transaction;
                self.reply(id, Reply::Status(status));
            }
            Expect::Quit => {
                self.reply(id, Reply::Status(status));
                self.close_with(ClientCloseReason::Quit);
            }
            Expect::Stat => match DropListing::parse_text(&status.text) {
                Ok(d) => self.reply(id, Reply::Stat(d)),
                Err(e) => self.fail(id, ReplyError::Malformed(e)),
            },
            Expect::ScanOne => match ScanListing::parse(status.text.as_bytes()) {
                Ok(s) => self.reply(id, Reply::Listing(vec![s])),
                Err(e) => self.fail(id, ReplyError::Malformed(e)),
            },
            Expect::UidOne => match UidListing::parse(status.text.as_bytes()) {
                Ok(u) => self.reply(id, Reply::UidListing(vec![u])),
                Err(e) => self.fail(id, ReplyError::Malformed(e)),
            },
            Expect::Stls => {
                self.state = ClientState::StartingTls;
                self.events.push_back(ClientEvent::TlsReady { id });
            }
            Expect::ScanAll
            | Expect::UidAll
            | Expect::Message
            | Expect::Capa
            | Expect::Languages
            | Expect::Mechanisms => {
                if let Some(kind) = BodyKind::for_expect(expect) {
                    self.body = Some(Body {
                        id,
                        unstuffer: DotUnstuffer::new(),
                        kind,
                        buf: Vec::new(),
                        size: 0,
                        failed: false,
                    });
                }
            }
        }
    }

    fn handle_greeting(&mut self, line: &[u8]) {
        let status = match StatusLine::parse(line) {
            Ok(s) => s,
            Err(e) => {
                self.violation(ProtocolViolation::InvalidStatusLine(e));
                return;
            }
        };
        let ok = status.status == Status::Ok;
        let apop_timestamp = if ok {
            find_apop_timestamp(&status.text)
        } else {
            None
        };
        self.apop_timestamp.clone_from(&apop_timestamp);
        self.events.push_back(ClientEvent::GreetingReceived {
            ok,
            code: status.code,
            text: status.text,
            apop_timestamp,
        });
        if ok {
            self.state = ClientState::Authorization;
        } else {
            self.close_with(ClientCloseReason::GreetingRejected);
        }
    }

    /// Feeds body bytes to the un-stuffer; returns how many were consumed (all of `data`, or
    /// up to and including the terminating line). Finishes the reply at the terminator.
    fn feed_body(&mut self, data: &[u8]) -> usize {
        let max_line = self.max_line();
        let limits = &self.config.limits;
        let (max_message, max_listing) = (limits.max_message_size, limits.max_listing_size);
        let Some(body) = self.body.as_mut() else {
            return 0;
        };
        let mut consumed = 0usize;
        let mut failure = None;
        while !body.unstuffer.is_done() {
            let rest = data.get(consumed..).unwrap_or_default();
            if rest.is_empty() {
                break;
            }
            // Piece sizes keep `buf` bounded: un-stuffing never produces more than it takes.
            let piece_len = if body.failed {
                DISCARD_PIECE
            } else if matches!(body.kind, BodyKind::Message) {
                max_message.map_or(usize::MAX, |limit| {
                    let room = limit.saturating_sub(body.size);
                    usize::try_from(room).unwrap_or(usize::MAX).max(1)
                })
            } else {
                max_line
            };
            let piece = rest.get(..piece_len.min(rest.len())).unwrap_or(rest);
            let before = body.buf.len();
            let n = body.unstuffer.decode(piece, &mut body.buf);
            if n == 0 {
                break;
            }
            consumed = consumed.saturating_add(n);
            let produced = body.buf.len().saturating_sub(before);
            body.size = body
                .size
                .saturating_add(u64::try_from(produced).unwrap_or(u64::MAX));
            if body.failed {
                body.buf.clear();
                continue;
            }
            let error = match &mut body.kind {
                BodyKind::Message => max_message
                    .filter(|&limit| body.size > limit)
                    .map(|limit| ReplyError::MessageTooLarge { limit }),
                kind => match max_listing.filter(|&limit| body.size > limit) {
                    Some(limit) => Some(ReplyError::ListingTooLarge { limit }),
                    None => take_lines(kind, &mut body.buf, max_line).err(),
                },
            };
            if let Some(error) = error {
                body.failed = true;
                body.buf = Vec::new();
                body.kind = BodyKind::Message;
                failure = Some((body.id, error));
            }
        }
        let done = body.unstuffer.is_done();
        if let Some((id, error)) = failure {
            self.fail(id, error);
        }
        if done && let Some(body) = self.body.take() {
            self.finish_body(body);
        }
        consumed
    }

    fn finish_body(&mut self, body: Body) {
        if body.failed {
            return;
        }
        let reply = match body.kind {
            BodyKind::Message => Reply::Message {
                body: Bytes::from(body.buf),
            },
            BodyKind::Capa(caps) => {
                self.capabilities = Some(caps.clone());
                Reply::Capabilities(caps)
            }
            BodyKind::Scan(v) => Reply::Listing(v),
            BodyKind::Uid(v) => Reply::UidListing(v),
            BodyKind::Languages(v) => Reply::Languages(v),
            BodyKind::Mechanisms(v) => Reply::Mechanisms(v),
        };
        self.reply(body.id, reply);
    }

    fn reply(&mut self, id: RequestId, reply: Reply) {
        self.events
            .push_back(ClientEvent::ReplyReceived { id, reply });
    }

    fn fail(&mut self, id: RequestId, error: ReplyError) {
        self.events
            .push_back(ClientEvent::ReplyFailed { id, error });
    }

    /// STLS was refused: what was queued behind it must not go out in clear text.
    fn drop_queued(&mut self) {
        self.quit_queued = false;
        while let Some(q) = self.queue.pop_front() {
            self.fail(q.id, ReplyError::NotSent);
        }
    }

    fn violation(&mut self, v: ProtocolViolation) {
        self.close_with(ClientCloseReason::ProtocolViolation(v));
    }

    fn close_with(&mut self, reason: ClientCloseReason) {
        if self.state == ClientState::Closed {
            return;
        }
        self.state = ClientState::Closed;
        if let Some(body) = self.body.take()
            && !body.failed
        {
            self.fail(body.id, ReplyError::Aborted);
        }
        while let Some(f) = self.in_flight.pop_front() {
            self.fail(f.id, ReplyError::Aborted);
        }
        while let Some(q) = self.queue.pop_front() {
            self.fail(q.id, ReplyError::NotSent);
        }
        self.framer.clear();
        self.out = Vec::new();
        self.events.push_back(ClientEvent::Closed { reason });
    }
}

/// `+ ...` or a bare `+`: a SASL continuation, not `+OK`.
fn is_continuation(line: &[u8]) -> bool {
    matches!(line, [b'+'] | [b'+', b' ', ..])
}

/// Splits complete lines off the front of `buf` (un-stuffed listing data) and parses them;
/// blank lines are skipped. Leaves the incomplete last line in `buf`.
fn take_lines(kind: &mut BodyKind, buf: &mut Vec<u8>, max_line: usize) -> Result<(), ReplyError> {
    let mut start = 0usize;
    while let Some(pos) = memchr::memchr(b'\n', buf.get(start..).unwrap_or_default()) {
        let end = start.saturating_add(pos);
        if pos.saturating_add(1) > max_line {
            return Err(ReplyError::LineTooLong);
        }
        let mut line = buf.get(start..end).unwrap_or_default();
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        if !line.iter().all(|&b| b == b' ' || b == b'\t') {
            kind.push_line(line).map_err(ReplyError::Malformed)?;
        }
        start = end.saturating_add(1);
    }
    buf.drain(..start.min(buf.len()));
    if buf.len() >= max_line {
        return Err(ReplyError::LineTooLong);
    }
    Ok(())
}

/// The first `<...>` in a greeting whose inside is 1 or more printable, non-space ASCII
/// characters other than `<` (RFC 1939 §7: "the timestamp ... syntax of a msg-id").
fn find_apop_timestamp(text: &str) -> Option<String> {
    let mut from = 0usize;
    while let Some(rel) = text.get(from..)?.find('<') {
        let start = from.saturating_add(rel);
        let after = text.get(start.saturating_add(1)..)?;
        let inner_len = after.find('>')?;
        let inner = after.get(..inner_len)?;
        if !inner.is_empty()
            && inner
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b'<')
        {
            return text
                .get(start..start.saturating_add(inner_len).saturating_add(2))
                .map(str::to_owned);
        }
        from = start.saturating_add(1);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apop_timestamps() {
        let cases = [
            (
                "POP3 server ready <1896.697170952@dbc.mtview.ca.us>",
                Some("<1896.697170952@dbc.mtview.ca.us>"),
            ),
            ("ready", None),
            ("a <b c> <x@y> z", Some("<x@y>")),
            ("<<x@y>", Some("<x@y>")),
            ("<>", None),
            ("<unterminated", None),
            ("\u{e9}<\u{e9}> <ok>", Some("<ok>")),
        ];
        for (text, want) in cases {
            assert_eq!(find_apop_timestamp(text).as_deref(), want, "{text:?}");
        }
    }

    #[test]
    fn continuation_detection() {
        assert!(is_continuation(b"+"));
        assert!(is_continuation(b"+ abc"));
        assert!(!is_continuation(b"+OK"));
        assert!(!is_continuation(b"-ERR"));
    }
}
