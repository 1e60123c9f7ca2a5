//! The client side: [`ClientSession`] drives an IMAP4rev1 / IMAP4rev2 server (RFC 3501,
//! RFC 9051) without doing any I/O, for the connectivity tester, proxy mode and tests.
//!
//! Same shape as the other sessions of the workspace (see `pop3_proto::client`):
//!
//! | kind | methods |
//! |---|---|
//! | inputs | [`handle_input`], [`handle_eof`], [`handle_timeout`], [`handle_tls_established`] |
//! | commands | [`send`] (any [`CommandBody`]) and typed helpers ([`ClientSession::login`], [`ClientSession::select`], ...), [`sasl_respond`], [`sasl_cancel`], [`idle_done`], [`close`] |
//! | outputs | [`poll_event`], [`poll_transmit`], [`poll_timeout`] — drain in that order after every input or command |
//! | getters | [`state`], [`wants_input`], [`is_closed`], [`capabilities`], [`selected`], ... |
//!
//! [`handle_input`]: ClientSession::handle_input
//! [`handle_eof`]: ClientSession::handle_eof
//! [`handle_timeout`]: ClientSession::handle_timeout
//! [`handle_tls_established`]: ClientSession::handle_tls_established
//! [`send`]: ClientSession::send
//! [`sasl_respond`]: ClientSession::sasl_respond
//! [`sasl_cancel`]: ClientSession::sasl_cancel
//! [`idle_done`]: ClientSession::idle_done
//! [`close`]: ClientSession::close
//! [`poll_event`]: ClientSession::poll_event
//! [`poll_transmit`]: ClientSession::poll_transmit
//! [`poll_timeout`]: ClientSession::poll_timeout
//! [`state`]: ClientSession::state
//! [`wants_input`]: ClientSession::wants_input
//! [`is_closed`]: ClientSession::is_closed
//! [`capabilities`]: ClientSession::capabilities
//! [`selected`]: ClientSession::selected
//!
//! # Commands, handles and tags
//!
//! Every command method returns a [`CommandHandle`]; the session owns the tags (`A1`, `A2`,
//! ...), so the application never sees or copies one. Each handle ends with exactly one
//! terminal event: [`Event::Completed`] (the server's tagged `OK` / `NO` / `BAD`) or
//! [`Event::CommandAborted`] (never sent, or the connection ended first). Untagged data
//! arrives as [`Event::DataReceived`] / [`Event::StatusReceived`], attributed to the command
//! on the wire (or to none when the server sent it unsolicited).
//!
//! Commands are queued and sent **one at a time**: the next goes out when the previous one
//! has completed. IMAP allows pipelining, but RFC 9051 §5.5 forbids it for the many
//! commands whose meaning depends on message sequence numbers, and with one command on the
//! wire untagged data is never ambiguous; the cost is one round trip per command. Nothing is
//! sent before the greeting.
//!
//! The session does not second-guess the order of commands (it sends `FETCH` before login if
//! asked; the server answers `BAD`). It tracks what it must: the greeting, capabilities (from
//! the greeting, `CAPABILITY` data and `[CAPABILITY ...]` codes; forgotten after STARTTLS and
//! after authentication unless the server repeated them, RFC 9051 §6.2.2), the connection
//! state, the mailbox selected with SELECT/EXAMINE ([`MailboxSummary`]), ENABLEd extensions,
//! literals, SASL, IDLE and STARTTLS.
//!
//! # Literals
//!
//! Strings that cannot be quoted (CR, LF, bytes that are not UTF-8) and APPEND messages go
//! as literals, announced according to the server's capabilities: `{n+}` with
//! `LITERAL+`, `{n+}` up to 4096 octets with `LITERAL-` or `IMAP4rev2` (RFC 7888 §4, RFC 9051
//! §4.3), `{n}` otherwise. After a synchronizing `{n}` the session sends nothing more of the
//! command until the server's `+`; a server refusing the literal completes the command with
//! its `NO` / `BAD`, which is reported as usual, and the literal is never sent. While no
//! capabilities are known (after STARTTLS, or after a login the server did not answer with
//! them) every literal is synchronizing, which any server accepts; a `CAPABILITY` command
//! restores the faster forms.
//!
//! # AUTHENTICATE
//!
//! The SASL mechanism is the application's (e.g. `cas-auth`, or the connectivity tester's).
//! [`ClientSession::authenticate`] sends the initial response inline when the server
//! advertises `SASL-IR` (RFC 4959; empty is `=`), otherwise it answers the server's first,
//! empty, challenge with it. Further challenges arrive decoded as
//! [`Event::SaslChallengeReceived`]; answer with [`ClientSession::sasl_respond`] or cancel with
//! [`ClientSession::sasl_cancel`] (`*`, the server answers `BAD`).
//!
//! # STARTTLS
//!
//! After `OK` to `STARTTLS` the session reports [`Event::Completed`] then
//! [`Event::TlsHandshakeRequested`] and stops reading: drain [`ClientSession::poll_transmit`],
//! run the TLS handshake, then call [`ClientSession::handle_tls_established`]. Plain-text bytes
//! that came after the `OK` line (in the same read or later, before the handshake) cannot be
//! from the server's TLS stack: they are a response injection attempt (CVE-2011-1575 class)
//! and are discarded and reported as [`Event::InjectionDiscarded`]. Capabilities are
//! forgotten (RFC 9051 §6.2.1): issue `CAPABILITY` again. Commands queued behind a refused
//! STARTTLS are not sent (they were meant for a protected channel).
//!
//! # Credentials in clear text
//!
//! `LOGIN` and `AUTHENTICATE PLAIN` / `LOGIN` are sent only over TLS (implicit, or after
//! STARTTLS), unless [`ClientConfig::allow_cleartext_credentials`] says otherwise: sending
//! them fails with [`SendErrorKind::CleartextCredentials`], or, when they were queued behind a
//! STARTTLS, they end with [`AbortReason::NotSent`].
//!
//! # IDLE
//!
//! [`ClientSession::idle`] sends `IDLE`; the server's `+` is reported as
//! [`Event::IdleStarted`], pushed updates as [`Event::DataReceived`], and
//! [`ClientSession::idle_done`] sends `DONE` (at once, or as soon as the `+` arrives). No
//! response timeout runs while idling: the server may stay silent for its whole autologout
//! period; re-issue IDLE before that (RFC 9051 §6.3.13 suggests every 29 minutes).
//!
//! # Limits
//!
//! Responses are framed by the crate's [`Fragmentizer`] in the client role with the
//! [`ClientLimits`] below. A response over a limit is skipped without being buffered: untagged
//! data is reported as [`Event::ResponseDiscarded`] and the session carries on; a tagged
//! response or continuation over a limit cannot be understood and closes the session. Memory
//! held for input is at most one response of [`ClientLimits::max_response`] octets plus the
//! chunk last given to [`ClientSession::handle_input`]; output is handed out in chunks of at
//! most 64 KiB per [`ClientSession::poll_transmit`] call.
//!
//! `COMPRESS` is not supported by the client ([`SendErrorKind::Unsupported`]): switching the
//! stream to DEFLATE would need the compressed input handed back and forth, which none of its
//! users need.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use cas_imap_proto::client::{ClientConfig, ClientOptions, ClientSession, ClientState, Event};
//! use cas_imap_proto::response::Status;
//! use cas_imap_proto::types::{AString, Mailbox};
//!
//! let now = Instant::now();
//! let options = ClientOptions { tls_active: true }; // implicit TLS, port 993
//! let mut c = ClientSession::new(Arc::new(ClientConfig::default()), now, options);
//! let login = c.login(now, AString::from_bytes(&b"alice"[..]), AString::from_bytes(&b"pw"[..])).unwrap();
//! let select = c.select(now, Mailbox::Inbox).unwrap();
//!
//! c.handle_input(now, b"* OK [CAPABILITY IMAP4rev2 AUTH=PLAIN] ready\r\n");
//! assert!(matches!(c.poll_event(), Some(Event::GreetingReceived { preauth: false, .. })));
//! let mut wire = Vec::new();
//! c.poll_transmit(&mut wire);
//! assert_eq!(wire, b"A1 LOGIN alice pw\r\n");
//!
//! c.handle_input(now, b"A1 OK [CAPABILITY IMAP4rev2 IDLE] done\r\n");
//! let Some(Event::Completed { handle, status: Status::Ok, .. }) = c.poll_event() else { panic!() };
//! assert_eq!(handle, login);
//! wire.clear();
//! c.poll_transmit(&mut wire);
//! assert_eq!(wire, b"A2 SELECT INBOX\r\n");
//!
//! c.handle_input(now, b"* 3 EXISTS\r\n* OK [UIDVALIDITY 7] x\r\nA2 OK [READ-WRITE] done\r\n");
//! while let Some(event) = c.poll_event() {
//!     if let Event::MailboxSelected { summary, .. } = event {
//!         assert_eq!((summary.exists, summary.uid_validity.map(|v| v.get())), (3, Some(7)));
//!     }
//! }
//! assert_eq!(c.state(), ClientState::Selected);
//! assert_eq!(c.selected().map(|m| m.exists), Some(3));
//! # let _ = select;
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::code::ResponseCode;
use crate::command::{
    AppendMessage, AuthenticateData, Base64Data, Command, CommandBody, FetchAttributes, SearchKey,
};
use crate::encode::{Encode, Encoder, Fragment, LiteralMode, LiteralPolicy, to_bytes};
use crate::error::ParseError;
use crate::fragmentizer::{self, Fragmentizer, Frame, LimitExceeded, Role};
use crate::parse::{DEFAULT_MAX_DEPTH, ParseOptions};
use crate::response::{
    ContinueRequest, Data, ResponseText, Status, StatusResponse, Text, parse_response_with,
};
use crate::types::{
    AString, Atom, Capability, Flag, FlagPerm, ListMailbox, Literal, Mailbox, ModSeq,
    SequenceSetArg, Tag,
};

#[doc(hidden)]
pub mod fuzzing;

/// Most octets handed out by one [`ClientSession::poll_transmit`] call: an APPEND literal of
/// many megabytes is copied to the caller piece by piece, never twice in memory.
pub const MAX_TRANSMIT: usize = 64 * 1024;

/// Output buffer capacity kept while idle.
const IDLE_CAPACITY: usize = 4096;

/// Limits of a [`ClientSession`]. "Unlimited" is `None`, never `0`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientLimits {
    /// Longest response line, LF included (a literal starts a new line count). Default
    /// 4 MiB: a `SEARCH` answer listing about 500 000 message numbers, or a `LIST-STATUS`/
    /// `FETCH` line of a large mailbox, fits; servers themselves limit command lines, not
    /// response lines (RFC 9051 §4 sets no bound).
    pub max_line: usize,
    /// Largest literal in a response (`BODY[]`, `BINARY[]` ...). Default 64 MiB: above the
    /// message size limits mail systems commonly set (Exchange 2010: 10 MiB by default,
    /// Dovecot: unlimited, Gmail: 25 MiB), small enough to hold in memory.
    pub max_literal: u64,
    /// Largest response, lines and literals together: what one response may make the
    /// session hold. Default 80 MiB: one message at `max_literal` plus its other items.
    pub max_response: u64,
    /// Most literals in one response. Default 1024 (a `FETCH` of many `BODY[...]` parts).
    pub max_literals: usize,
    /// Deepest parenthesis nesting the parser follows (`BODYSTRUCTURE` of nested
    /// multiparts, `THREAD`). Default [`DEFAULT_MAX_DEPTH`].
    pub max_depth: usize,
    /// How long the server may stay silent while the greeting or a command's response is
    /// outstanding; any received byte restarts it, so a slow but steady `FETCH` never times
    /// out. Default 120 s: twice the POP3 client's, since an IMAP `SEARCH` over a large
    /// mailbox legitimately takes longer before its first byte. Not armed while the
    /// application owes a SASL response, while idling, or while the TLS handshake runs.
    pub response_timeout: Option<Duration>,
}

impl Default for ClientLimits {
    fn default() -> Self {
        Self {
            max_line: 4 * 1024 * 1024,
            max_literal: 64 * 1024 * 1024,
            max_response: 80 * 1024 * 1024,
            max_literals: fragmentizer::DEFAULT_MAX_LITERALS,
            max_depth: DEFAULT_MAX_DEPTH,
            response_timeout: Some(Duration::from_secs(120)),
        }
    }
}

/// Configuration shared (via `Arc`) by client sessions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientConfig {
    /// Limits and timers.
    pub limits: ClientLimits,
    /// Send `LOGIN` and `AUTHENTICATE PLAIN` / `LOGIN` over a connection without TLS.
    /// Default `false`: a password in clear text is readable by anyone on the path. A test
    /// against a plain-text lab server may turn it on.
    pub allow_cleartext_credentials: bool,
}

/// Per-connection options of a [`ClientSession`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientOptions {
    /// The connection is already protected by TLS (implicit TLS, port 993, RFC 8314).
    pub tls_active: bool,
}

/// Correlates a command with its events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandHandle(u64);

impl CommandHandle {
    /// The numeric value (unique within one session, increasing; the tag is `A` + value).
    pub fn value(self) -> u64 {
        self.0
    }
}

impl fmt::Display for CommandHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Where a [`ClientSession`] stands (RFC 9051 §3 states, plus the waits of the session).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientState {
    /// Waiting for the server's greeting; commands are queued.
    AwaitingGreeting,
    /// Greeted with `OK`: not authenticated.
    NotAuthenticated,
    /// `OK` to `STARTTLS` received: waiting for [`ClientSession::handle_tls_established`].
    StartingTls,
    /// Authenticated (LOGIN / AUTHENTICATE succeeded, or a `PREAUTH` greeting).
    Authenticated,
    /// A mailbox is selected; see [`ClientSession::selected`].
    Selected,
    /// Ended; see [`Event::Closed`].
    Closed,
}

/// What a SELECT or EXAMINE reported about the mailbox (RFC 9051 §6.3.2), kept up to date
/// with later `EXISTS`, `EXPUNGE` and `VANISHED` responses while it stays selected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxSummary {
    /// The mailbox, as sent in the command.
    pub mailbox: Mailbox<'static>,
    /// `[READ-ONLY]` (or EXAMINE without a `[READ-WRITE]` code).
    pub read_only: bool,
    /// Number of messages (`EXISTS`).
    pub exists: u32,
    /// `RECENT` (IMAP4rev1 servers only).
    pub recent: Option<u32>,
    /// `FLAGS`: the flags defined in the mailbox.
    pub flags: Vec<Flag<'static>>,
    /// `[PERMANENTFLAGS (...)]`: the flags the client can change permanently.
    pub permanent_flags: Option<Vec<FlagPerm<'static>>>,
    /// `[UIDVALIDITY n]`.
    pub uid_validity: Option<NonZeroU32>,
    /// `[UIDNEXT n]`.
    pub uid_next: Option<NonZeroU32>,
    /// `[UNSEEN n]` (IMAP4rev1): the first unseen message.
    pub unseen: Option<NonZeroU32>,
    /// `[HIGHESTMODSEQ n]` (RFC 7162).
    pub highest_mod_seq: Option<ModSeq>,
    /// `[NOMODSEQ]`: the mailbox has no mod-sequences.
    pub no_mod_seq: bool,
}

impl MailboxSummary {
    fn new(mailbox: Mailbox<'static>, read_only: bool) -> Self {
        Self {
            mailbox,
            read_only,
            exists: 0,
            recent: None,
            flags: Vec::new(),
            permanent_flags: None,
            uid_validity: None,
            uid_next: None,
            unseen: None,
            highest_mod_seq: None,
            no_mod_seq: false,
        }
    }

    /// Takes what a response says about the selected mailbox.
    fn apply_data(&mut self, data: &Data<'_>) {
        match data {
            Data::Exists(n) => self.exists = *n,
            Data::Recent(n) => self.recent = Some(*n),
            Data::Flags(flags) => {
                self.flags = flags.iter().cloned().map(Flag::into_owned).collect();
            }
            Data::Expunge(_) => self.exists = self.exists.saturating_sub(1),
            Data::Vanished {
                earlier: false,
                uids,
            } if !uids.uses_asterisk() => {
                let gone = u32::try_from(uids.count(u32::MAX)).unwrap_or(u32::MAX);
                self.exists = self.exists.saturating_sub(gone);
            }
            _ => {}
        }
    }

    fn apply_code(&mut self, code: &ResponseCode<'_>) {
        match code {
            ResponseCode::UidValidity(v) => self.uid_validity = Some(*v),
            ResponseCode::UidNext(v) => self.uid_next = Some(*v),
            ResponseCode::Unseen(v) => self.unseen = Some(*v),
            ResponseCode::PermanentFlags(f) => {
                self.permanent_flags = Some(f.iter().cloned().map(FlagPerm::into_owned).collect());
            }
            ResponseCode::HighestModSeq(m) => self.highest_mod_seq = Some(*m),
            ResponseCode::NoModSeq => self.no_mod_seq = true,
            ResponseCode::ReadOnly => self.read_only = true,
            ResponseCode::ReadWrite => self.read_only = false,
            _ => {}
        }
    }
}

/// Why a command ended without a tagged response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum AbortReason {
    /// The command was never sent: the session closed first, it was queued behind a
    /// STARTTLS the server refused, or it carries credentials that TLS did not come to
    /// protect.
    #[error("command not sent")]
    NotSent,
    /// The command was sent, but the session ended before its tagged response arrived. An
    /// [`Event::Closed`] with the reason follows.
    #[error("connection ended before the command completed")]
    ConnectionEnded,
}

/// How the server broke the protocol. The session cannot stay in step and closes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolViolation {
    /// The greeting is not `* OK`, `* PREAUTH` or `* BYE`.
    #[error("invalid greeting")]
    InvalidGreeting,
    /// A response could not be parsed and its tag could not be recovered.
    #[error("unparsable response: {0}")]
    Unparsable(ParseError),
    /// A tagged response carries a tag of no command on the wire.
    #[error("tagged response for an unknown tag")]
    UnknownTag,
    /// A `+` continuation request came when no command could use one.
    #[error("unexpected continuation request")]
    UnexpectedContinuation,
    /// A SASL challenge was neither base64 nor empty.
    #[error("invalid SASL challenge")]
    InvalidChallenge,
    /// A tagged response or continuation exceeded a limit, so its content is unknown.
    #[error("response over the limit: {0}")]
    ResponseTooLarge(LimitExceeded),
}

/// Why a [`ClientSession`] ended. Reported once, in [`Event::Closed`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientCloseReason {
    /// `LOGOUT` completed.
    #[error("logged out")]
    Logout,
    /// The greeting was `* BYE` (e.g. too many connections).
    #[error("greeting rejected")]
    GreetingRejected,
    /// The server sent `* BYE` and closed the connection (autologout, shutdown).
    #[error("closed by the server: {0:?}")]
    ClosedByServer(ResponseText<'static>),
    /// The server closed the connection (EOF) without `BYE`.
    #[error("server closed the connection")]
    PeerClosed,
    /// [`ClientLimits::response_timeout`] expired.
    #[error("response timeout")]
    Timeout,
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
pub enum Event {
    /// The server's greeting arrived (`* OK` or, with `preauth`, `* PREAUTH`). A `* BYE`
    /// greeting is reported as [`Event::ByeReceived`] and [`ClientCloseReason::GreetingRejected`].
    GreetingReceived {
        /// `* PREAUTH`: already authenticated.
        preauth: bool,
        /// Response code (often `[CAPABILITY ...]`).
        code: Option<ResponseCode<'static>>,
        /// Greeting text.
        text: Text<'static>,
    },
    /// Untagged data (`* 3 EXISTS`, `* LIST ...`, `* 1 FETCH ...`).
    DataReceived {
        /// The command on the wire when it arrived; `None` when none was (unsolicited).
        handle: Option<CommandHandle>,
        /// The data.
        data: Data<'static>,
    },
    /// An untagged `* OK` / `* NO` / `* BAD` (information, warning, error; e.g. `* OK
    /// [UIDVALIDITY 3]` during SELECT, `* NO` alerts).
    StatusReceived {
        /// The command on the wire when it arrived, if any.
        handle: Option<CommandHandle>,
        /// `OK`, `NO` or `BAD`.
        status: Status,
        /// Response code.
        code: Option<ResponseCode<'static>>,
        /// Text.
        text: Text<'static>,
    },
    /// `* BYE`: the server is about to close the connection.
    ByeReceived {
        /// Response code.
        code: Option<ResponseCode<'static>>,
        /// Text.
        text: Text<'static>,
    },
    /// An untagged response that could not be parsed (an unknown extension); skipped.
    UnparsedResponse {
        /// The command on the wire when it arrived, if any.
        handle: Option<CommandHandle>,
        /// Why it did not parse.
        error: ParseError,
        /// The response as received (within the limits).
        raw: Bytes,
    },
    /// An untagged response over a [`ClientLimits`] limit was skipped without buffering.
    ResponseDiscarded {
        /// The command on the wire when it arrived, if any.
        handle: Option<CommandHandle>,
        /// The limit exceeded.
        limit: LimitExceeded,
    },
    /// The mailbox a SELECT / EXAMINE opened, reported just before its [`Event::Completed`].
    MailboxSelected {
        /// The SELECT / EXAMINE.
        handle: CommandHandle,
        /// What the server reported.
        summary: MailboxSummary,
    },
    /// The server sent a SASL challenge (decoded; empty for `+ `). Answer with
    /// [`ClientSession::sasl_respond`] or [`ClientSession::sasl_cancel`].
    SaslChallengeReceived {
        /// The AUTHENTICATE.
        handle: CommandHandle,
        /// Decoded challenge.
        challenge: Vec<u8>,
    },
    /// The server accepted IDLE (`+ idling`): updates follow until
    /// [`ClientSession::idle_done`].
    IdleStarted {
        /// The IDLE.
        handle: CommandHandle,
    },
    /// The command completed with a tagged response.
    Completed {
        /// The command.
        handle: CommandHandle,
        /// `OK`, `NO` or `BAD`.
        status: Status,
        /// Response code (e.g. `[APPENDUID ...]`, `[TRYCREATE]`, `[AUTHENTICATIONFAILED]`).
        code: Option<ResponseCode<'static>>,
        /// Text.
        text: Text<'static>,
    },
    /// The command ended without a tagged response.
    CommandAborted {
        /// The command.
        handle: CommandHandle,
        /// Why.
        reason: AbortReason,
    },
    /// Follows the `OK` to STARTTLS: drain output, run the TLS handshake, then call
    /// [`ClientSession::handle_tls_established`].
    TlsHandshakeRequested {
        /// The STARTTLS.
        handle: CommandHandle,
    },
    /// Plain-text bytes received after `OK` to STARTTLS and before the TLS handshake were
    /// discarded (STARTTLS response injection).
    InjectionDiscarded {
        /// Number of octets dropped.
        len: usize,
    },
    /// The session ended. Every outstanding command has had its terminal event first.
    Closed {
        /// Why.
        reason: ClientCloseReason,
    },
}

/// Why a command was refused by [`ClientSession::send`] and friends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SendErrorKind {
    /// The session is closed, or LOGOUT has been queued.
    Closed,
    /// The handle names no command in the state the call needs (no challenge pending, not
    /// an IDLE in progress...).
    UnknownHandle,
    /// The command would send credentials without TLS; see
    /// [`ClientConfig::allow_cleartext_credentials`].
    CleartextCredentials,
    /// The client does not implement this command (`COMPRESS`; `DONE` is
    /// [`ClientSession::idle_done`]).
    Unsupported,
}

/// A refused command or call, handing the value back.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", match .kind {
    SendErrorKind::Closed => "session closed",
    SendErrorKind::UnknownHandle => "no such command waiting for this call",
    SendErrorKind::CleartextCredentials => "credentials would be sent without TLS",
    SendErrorKind::Unsupported => "command not supported by the client",
})]
pub struct SendError<T> {
    /// Why.
    pub kind: SendErrorKind,
    /// The value given.
    pub value: T,
}

impl<T> fmt::Debug for SendError<T> {
    // The value may hold a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendError")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl<T> SendError<T> {
    fn new(kind: SendErrorKind, value: T) -> Self {
        Self { kind, value }
    }
}

/// What a command does to the session when it completes.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Plain,
    StartTls,
    Login,
    Authenticate,
    Select {
        mailbox: Mailbox<'static>,
        examine: bool,
    },
    Deselect,
    Idle,
    Logout,
    Unauthenticate,
}

impl Kind {
    fn of(body: &CommandBody<'_>) -> Self {
        match body {
            CommandBody::StartTls => Self::StartTls,
            CommandBody::Login { .. } => Self::Login,
            CommandBody::Authenticate { .. } => Self::Authenticate,
            CommandBody::Select { mailbox, .. } => Self::Select {
                mailbox: mailbox.clone().into_owned(),
                examine: false,
            },
            CommandBody::Examine { mailbox, .. } => Self::Select {
                mailbox: mailbox.clone().into_owned(),
                examine: true,
            },
            CommandBody::Close | CommandBody::Unselect => Self::Deselect,
            CommandBody::Idle => Self::Idle,
            CommandBody::Logout => Self::Logout,
            CommandBody::Unauthenticate => Self::Unauthenticate,
            _ => Self::Plain,
        }
    }
}

/// Whether the command carries a password in clear (LOGIN, or a SASL mechanism that does).
fn carries_cleartext_password(body: &CommandBody<'_>) -> bool {
    match body {
        CommandBody::Login { .. } => true,
        CommandBody::Authenticate { mechanism, .. } => {
            mechanism.eq_ignore_case("PLAIN") || mechanism.eq_ignore_case("LOGIN")
        }
        _ => false,
    }
}

/// A command waiting to be sent.
struct Queued {
    handle: CommandHandle,
    body: CommandBody<'static>,
}

/// Where the command on the wire stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the server (a `+` for a literal, challenges, or the tagged response).
    Waiting,
    /// A SASL challenge was reported; the application's response is due.
    ChallengePending,
    /// IDLE accepted; updates flow until DONE.
    Idling,
}

/// The command on the wire.
struct InFlight {
    handle: CommandHandle,
    tag: Tag<'static>,
    kind: Kind,
    phase: Phase,
    /// Fragments held back until the server's `+` (the first is a synchronizing literal).
    held: VecDeque<Fragment>,
    /// The initial response of an AUTHENTICATE sent without SASL-IR, for the first `+`.
    deferred_ir: Option<Vec<u8>>,
    /// The application asked for DONE before the server's `+` to IDLE.
    done_requested: bool,
    /// Capabilities arrived while this command ran (they survive authentication).
    capabilities_seen: bool,
    /// SELECT / EXAMINE: what the server reported so far.
    summary: Option<MailboxSummary>,
}

/// A sans-IO IMAP client connection. See the [module docs](self).
pub struct ClientSession {
    config: Arc<ClientConfig>,
    state: ClientState,
    fragmentizer: Fragmentizer,
    parse_options: ParseOptions,
    queue: VecDeque<Queued>,
    in_flight: Option<InFlight>,
    events: VecDeque<Event>,
    out: Vec<u8>,
    /// Octets of `out` already handed out.
    out_sent: usize,
    next_handle: u64,
    tls_active: bool,
    capabilities: Option<Vec<Capability<'static>>>,
    enabled: Vec<Capability<'static>>,
    selected: Option<MailboxSummary>,
    /// A `* BYE` arrived: the coming EOF is announced.
    bye: Option<ResponseText<'static>>,
    /// Start of the current response-timeout period.
    last_activity: Instant,
    /// LOGOUT has been queued: no further commands.
    logout_queued: bool,
}

impl fmt::Debug for ClientSession {
    // Buffers are left out: queued output may hold a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSession")
            .field("state", &self.state)
            .field("tls_active", &self.tls_active)
            .field("queued", &self.queue.len())
            .field("in_flight", &self.in_flight.as_ref().map(|f| f.handle))
            .field("pending_output", &self.pending_output())
            .finish_non_exhaustive()
    }
}

impl ClientSession {
    /// A session for a freshly opened connection; it waits for the greeting.
    pub fn new(config: Arc<ClientConfig>, now: Instant, options: ClientOptions) -> Self {
        let limits = &config.limits;
        let fragmentizer = Fragmentizer::new(
            Role::Client,
            fragmentizer::Limits {
                max_line: limits.max_line,
                max_literal: limits.max_literal,
                max_append_literal: limits.max_literal,
                max_non_sync_literal: None,
                max_literals: limits.max_literals,
                max_message: limits.max_response,
            },
        );
        let parse_options = ParseOptions::default().with_max_depth(limits.max_depth);
        Self {
            config,
            state: ClientState::AwaitingGreeting,
            fragmentizer,
            parse_options,
            queue: VecDeque::new(),
            in_flight: None,
            events: VecDeque::new(),
            out: Vec::new(),
            out_sent: 0,
            next_handle: 0,
            tls_active: options.tls_active,
            capabilities: None,
            enabled: Vec::new(),
            selected: None,
            bye: None,
            last_activity: now,
            logout_queued: false,
        }
    }

    // ---------------------------------------------------------------------------------------
    // Inputs

    /// Bytes received from the server. Ignored once closed; discarded (and reported) between
    /// `OK` to STARTTLS and [`ClientSession::handle_tls_established`].
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        if self.state == ClientState::Closed || data.is_empty() {
            return;
        }
        self.last_activity = now;
        if self.state == ClientState::StartingTls {
            self.report_injection(data.len());
            return;
        }
        self.fragmentizer.push(data);
        self.drain_frames(now);
        self.pump(now);
    }

    /// The server closed the connection. Outstanding commands are aborted; the session
    /// closes with [`ClientCloseReason::ClosedByServer`] after a `* BYE`, else
    /// [`ClientCloseReason::PeerClosed`].
    pub fn handle_eof(&mut self, _now: Instant) {
        let reason = match self.bye.take() {
            Some(text) => ClientCloseReason::ClosedByServer(text),
            None => ClientCloseReason::PeerClosed,
        };
        self.close_with(reason);
    }

    /// The timer from [`ClientSession::poll_timeout`] fired. Spurious or early calls are
    /// no-ops.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|deadline| deadline <= now) {
            self.close_with(ClientCloseReason::Timeout);
        }
    }

    /// The TLS handshake after [`Event::TlsHandshakeRequested`] completed: the following
    /// input is the decrypted stream. Forgets cached capabilities (RFC 9051 §6.2.1) and
    /// releases queued commands. A no-op in any other state.
    pub fn handle_tls_established(&mut self, now: Instant) {
        if self.state != ClientState::StartingTls {
            return;
        }
        self.state = ClientState::NotAuthenticated;
        self.tls_active = true;
        self.capabilities = None;
        self.fragmentizer.clear();
        self.last_activity = now;
        self.pump(now);
    }

    // ---------------------------------------------------------------------------------------
    // Commands

    /// Queues any command; it goes out once the greeting is in and every earlier command has
    /// completed. The session picks the tag and the literal forms. Refused when the session
    /// is closed or LOGOUT is queued ([`SendErrorKind::Closed`]), for `COMPRESS`
    /// ([`SendErrorKind::Unsupported`]), and for credentials that would travel without TLS
    /// ([`SendErrorKind::CleartextCredentials`], unless a STARTTLS is queued before them).
    pub fn send<'a>(
        &mut self,
        now: Instant,
        body: CommandBody<'a>,
    ) -> Result<CommandHandle, SendError<CommandBody<'a>>> {
        if self.state == ClientState::Closed || self.logout_queued {
            return Err(SendError::new(SendErrorKind::Closed, body));
        }
        if matches!(body, CommandBody::Compress { .. }) {
            return Err(SendError::new(SendErrorKind::Unsupported, body));
        }
        if carries_cleartext_password(&body) && !self.credentials_protected(true) {
            return Err(SendError::new(SendErrorKind::CleartextCredentials, body));
        }
        self.next_handle = self.next_handle.wrapping_add(1);
        let handle = CommandHandle(self.next_handle);
        if matches!(body, CommandBody::Logout) {
            self.logout_queued = true;
        }
        self.queue.push_back(Queued {
            handle,
            body: body.into_owned(),
        });
        self.pump(now);
        Ok(handle)
    }

    /// `CAPABILITY`.
    pub fn capability(
        &mut self,
        now: Instant,
    ) -> Result<CommandHandle, SendError<CommandBody<'static>>> {
        self.send(now, CommandBody::Capability)
    }

    /// `NOOP` (also the way to poll for updates without IDLE).
    pub fn noop(&mut self, now: Instant) -> Result<CommandHandle, SendError<CommandBody<'static>>> {
        self.send(now, CommandBody::Noop)
    }

    /// `STARTTLS` (RFC 9051 §6.2.1); see the [module docs](self#starttls).
    pub fn starttls(
        &mut self,
        now: Instant,
    ) -> Result<CommandHandle, SendError<CommandBody<'static>>> {
        self.send(now, CommandBody::StartTls)
    }

    /// `LOGIN user password`; each is sent as an atom, a quoted string or a literal as its
    /// content requires.
    pub fn login<'a>(
        &mut self,
        now: Instant,
        username: AString<'a>,
        password: AString<'a>,
    ) -> Result<CommandHandle, SendError<CommandBody<'a>>> {
        self.send(
            now,
            CommandBody::Login {
                username,
                password: password.into(),
            },
        )
    }

    /// `AUTHENTICATE mechanism`, with `initial_response` inline when the server advertises
    /// SASL-IR, else as the answer to its first challenge (see the
    /// [module docs](self#authenticate)).
    pub fn authenticate(
        &mut self,
        now: Instant,
        mechanism: Atom<'_>,
        initial_response: Option<&[u8]>,
    ) -> Result<CommandHandle, SendError<CommandBody<'static>>> {
        self.send(
            now,
            CommandBody::Authenticate {
                mechanism: mechanism.into_owned(),
                initial_response: initial_response.map(Base64Data::encode),
            },
        )
    }

    /// `SELECT mailbox`.
    pub fn select<'a>(
        &mut self,
        now: Instant,
        mailbox: Mailbox<'a>,
    ) -> Result<CommandHandle, SendError<CommandBody<'a>>> {
        self.send(
            now,
            CommandBody::Select {
                mailbox,
                parameters: Vec::new(),
            },
        )
    }

    /// `EXAMINE mailbox` (read-only SELECT).
    pub fn examine<'a>(
        &mut self,
        now: Instant,
        mailbox: Mailbox<'a>,
    ) -> Result<CommandHandle, SendError<CommandBody<'a>>> {
        self.send(
            now,
            CommandBody::Examine {
                mailbox,
                parameters: Vec::new(),
            },
        )
    }

    /// `LIST reference pattern`.
    pub fn list<'a>(
        &mut self,
        now: Instant,
        reference: Mailbox<'a>,
        pattern: ListMailbox<'a>,
    ) -> Result<CommandHandle, SendError<CommandBody<'a>>> {
        self.send(
            now,
            CommandBody::List {
                selection: Vec::new(),
                reference,
                patterns: vec![pattern],
                return_options: Vec::new(),
            },
        )
    }

    /// `FETCH set items` or, with `uid`, `UID FETCH set items`.
    pub fn fetch<'a>(
        &mut self,
        now: Instant,
        uid: bool,
        sequence_set: SequenceSetArg,
        attributes: FetchAttributes<'a>,
    ) -> Result<CommandHandle, SendError<CommandBody<'a>>> {
        self.send(
            now,
            CommandBody::Fetch {
                uid,
                sequence_set,
                attributes,
                modifiers: Vec::new(),
            },
        )
    }

    /// `UID SEARCH criteria` (all must match; empty is `ALL`).
    pub fn uid_search<'a>(
        &mut self,
        now: Instant,
        criteria: Vec<SearchKey<'a>>,
    ) -> Result<CommandHandle, SendError<CommandBody<'a>>> {
        self.send(
            now,
            CommandBody::Search {
                uid: true,
                return_options: None,
                charset: None,
                criteria,
            },
        )
    }

    /// `APPEND mailbox [(flags)] {n}` with `message` as a literal (non-synchronizing when the
    /// server allows it).
    pub fn append<'a>(
        &mut self,
        now: Instant,
        mailbox: Mailbox<'a>,
        flags: Vec<Flag<'a>>,
        message: &'a [u8],
    ) -> Result<CommandHandle, SendError<CommandBody<'a>>> {
        // A message with NUL needs literal8 (RFC 3516), which only BINARY servers accept;
        // such a server answers BAD otherwise, which the caller then sees.
        let data = Literal::new(message, LiteralMode::Sync)
            .unwrap_or_else(|_| Literal::new_binary(message, LiteralMode::Sync));
        self.send(
            now,
            CommandBody::Append {
                mailbox,
                messages: vec![AppendMessage {
                    flags,
                    date_time: None,
                    data,
                }],
            },
        )
    }

    /// `IDLE` (RFC 2177); see the [module docs](self#idle).
    pub fn idle(&mut self, now: Instant) -> Result<CommandHandle, SendError<CommandBody<'static>>> {
        self.send(now, CommandBody::Idle)
    }

    /// `LOGOUT`. Its completion closes the session with [`ClientCloseReason::Logout`].
    pub fn logout(
        &mut self,
        now: Instant,
    ) -> Result<CommandHandle, SendError<CommandBody<'static>>> {
        self.send(now, CommandBody::Logout)
    }

    /// Ends the IDLE `handle`: sends `DONE` now if the server has accepted it, or as soon as
    /// its `+` arrives. Fails with [`SendErrorKind::UnknownHandle`] when `handle` is not an
    /// IDLE on the wire (or DONE was already asked for).
    pub fn idle_done(
        &mut self,
        now: Instant,
        handle: CommandHandle,
    ) -> Result<(), SendError<CommandHandle>> {
        if self.state == ClientState::Closed {
            return Err(SendError::new(SendErrorKind::Closed, handle));
        }
        let Some(f) = self
            .in_flight
            .as_mut()
            .filter(|f| f.handle == handle && f.kind == Kind::Idle && !f.done_requested)
        else {
            return Err(SendError::new(SendErrorKind::UnknownHandle, handle));
        };
        f.done_requested = true;
        if f.phase == Phase::Idling {
            f.phase = Phase::Waiting;
            self.out.extend_from_slice(b"DONE\r\n");
            // The wait for the tagged OK starts now.
            self.last_activity = now;
        }
        Ok(())
    }

    /// Answers the pending [`Event::SaslChallengeReceived`] of `handle` with `data`
    /// (base64-encoded on the wire). Fails with [`SendErrorKind::UnknownHandle`] when no
    /// challenge of `handle` awaits an answer.
    pub fn sasl_respond(
        &mut self,
        now: Instant,
        handle: CommandHandle,
        data: &[u8],
    ) -> Result<(), SendError<CommandHandle>> {
        self.sasl_line(
            now,
            handle,
            AuthenticateData::Response(Base64Data::encode(data)),
        )
    }

    /// Cancels the SASL exchange of `handle` (`*`, RFC 9051 §6.2.2); the server's `BAD`
    /// follows as its completion.
    pub fn sasl_cancel(
        &mut self,
        now: Instant,
        handle: CommandHandle,
    ) -> Result<(), SendError<CommandHandle>> {
        self.sasl_line(now, handle, AuthenticateData::Cancel)
    }

    /// Abandons the session without LOGOUT (e.g. the tester gives up): outstanding commands
    /// are aborted, queued output is dropped, and [`ClientCloseReason::Aborted`] is reported.
    /// Close the socket afterwards.
    pub fn close(&mut self, _now: Instant) {
        self.close_with(ClientCloseReason::Aborted);
    }

    // ---------------------------------------------------------------------------------------
    // Outputs

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Appends up to [`MAX_TRANSMIT`] queued octets for the server to `buf` and returns how
    /// many; 0 when there is nothing to send. Call until it returns 0.
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> usize {
        let pending = self.out.get(self.out_sent..).unwrap_or_default();
        let n = pending.len().min(MAX_TRANSMIT);
        buf.extend_from_slice(pending.get(..n).unwrap_or_default());
        self.out_sent = self.out_sent.saturating_add(n);
        if self.out_sent >= self.out.len() {
            self.out.clear();
            self.out_sent = 0;
            if self.out.capacity() > IDLE_CAPACITY {
                self.out = Vec::new();
            }
        }
        n
    }

    /// When to call [`ClientSession::handle_timeout`]: while the greeting or a response is
    /// outstanding, [`ClientLimits::response_timeout`] after the last received octet (or the
    /// moment the wait began).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timeout = self.config.limits.response_timeout?;
        let waiting = match self.state {
            ClientState::Closed | ClientState::StartingTls => false,
            ClientState::AwaitingGreeting => true,
            _ => self
                .in_flight
                .as_ref()
                .is_some_and(|f| f.phase == Phase::Waiting),
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
        self.state == ClientState::Closed && self.pending_output() == 0
    }

    /// The server's capabilities as last reported; `None` before any arrived, after TLS was
    /// established, and after authentication unless the server reported them again.
    pub fn capabilities(&self) -> Option<&[Capability<'static>]> {
        self.capabilities.as_deref()
    }

    /// Whether the last reported capabilities include `capability`.
    pub fn has_capability(&self, capability: &Capability<'_>) -> bool {
        self.capabilities.as_deref().is_some_and(|caps| {
            caps.iter()
                .any(|c| c.as_str().eq_ignore_ascii_case(capability.as_str()))
        })
    }

    /// Extensions the server confirmed with `* ENABLED` (RFC 5161).
    pub fn enabled(&self) -> &[Capability<'static>] {
        &self.enabled
    }

    /// The selected mailbox, while in [`ClientState::Selected`].
    pub fn selected(&self) -> Option<&MailboxSummary> {
        self.selected.as_ref()
    }

    /// TLS protects the connection (implicit TLS or a completed STARTTLS).
    pub fn is_tls_active(&self) -> bool {
        self.tls_active
    }

    /// How literals are announced to this server (from its capabilities).
    pub fn literal_policy(&self) -> LiteralPolicy {
        if self.has_capability(&Capability::LiteralPlus) {
            LiteralPolicy::LiteralPlus
        } else if self.has_capability(&Capability::LiteralMinus)
            || self.has_capability(&Capability::Imap4Rev2)
        {
            LiteralPolicy::LiteralMinus
        } else {
            LiteralPolicy::Sync
        }
    }

    /// Octets queued for the server and not yet handed out by `poll_transmit`.
    pub fn pending_output(&self) -> usize {
        self.out.len().saturating_sub(self.out_sent)
    }

    /// Octets held in the input buffer (at most one partial response).
    pub fn buffered_input(&self) -> usize {
        self.fragmentizer.buffered()
    }

    // ---------------------------------------------------------------------------------------
    // Internals

    /// Whether credentials may go out now (`queued`: or once a STARTTLS queued before them
    /// has done its work).
    fn credentials_protected(&self, queued: bool) -> bool {
        self.tls_active
            || self.config.allow_cleartext_credentials
            || (queued
                && (self.state == ClientState::StartingTls
                    || self
                        .in_flight
                        .as_ref()
                        .is_some_and(|f| f.kind == Kind::StartTls)
                    || self
                        .queue
                        .iter()
                        .any(|q| matches!(q.body, CommandBody::StartTls))))
    }

    fn sasl_line(
        &mut self,
        now: Instant,
        handle: CommandHandle,
        line: AuthenticateData<'_>,
    ) -> Result<(), SendError<CommandHandle>> {
        if self.state == ClientState::Closed {
            return Err(SendError::new(SendErrorKind::Closed, handle));
        }
        match self.in_flight.as_mut() {
            Some(f) if f.handle == handle && f.phase == Phase::ChallengePending => {
                f.phase = Phase::Waiting;
            }
            _ => return Err(SendError::new(SendErrorKind::UnknownHandle, handle)),
        }
        self.out.extend_from_slice(&to_bytes(&line));
        self.last_activity = now;
        Ok(())
    }

    fn report_injection(&mut self, len: usize) {
        if len > 0 {
            self.events.push_back(Event::InjectionDiscarded { len });
        }
    }

    /// Sends the next queued command when nothing is on the wire and the state allows.
    fn pump(&mut self, now: Instant) {
        while self.in_flight.is_none()
            && matches!(
                self.state,
                ClientState::NotAuthenticated | ClientState::Authenticated | ClientState::Selected
            )
        {
            let Some(next) = self.queue.pop_front() else {
                return;
            };
            if carries_cleartext_password(&next.body) && !self.credentials_protected(false) {
                self.events.push_back(Event::CommandAborted {
                    handle: next.handle,
                    reason: AbortReason::NotSent,
                });
                continue;
            }
            self.release(now, next);
        }
    }

    /// Puts `queued` on the wire, up to its first synchronizing literal.
    fn release(&mut self, now: Instant, queued: Queued) {
        let Queued { handle, mut body } = queued;
        let kind = Kind::of(&body);
        let mut deferred_ir = None;
        if let CommandBody::Authenticate {
            initial_response, ..
        } = &mut body
            && !self.has_capability(&Capability::SaslIr)
            && let Some(ir) = initial_response.take()
        {
            // RFC 4959 absent: the initial response answers the first, empty, challenge.
            // Base64Data built by the session always decodes; a caller-built one that does
            // not is sent as the empty response the server will reject.
            deferred_ir = Some(ir.decode().unwrap_or_default());
        }
        // Tags are `A` + the handle number: unique, and never `+` (RFC 9051 `tag`).
        let tag = Tag::new(format!("A{}", handle.0))
            .unwrap_or_else(|_| Tag::new_unchecked("A0".to_owned()));
        let mut encoder = Encoder::with_policy(self.literal_policy());
        Command::new(tag.clone(), body).encode(&mut encoder);
        let mut held: VecDeque<Fragment> = encoder.into_fragments().into();
        self.send_until_sync_literal(&mut held);
        if matches!(kind, Kind::Select { .. }) {
            // RFC 9051 §6.3.2: a SELECT first deselects the current mailbox, even if it fails.
            self.selected = None;
            if self.state == ClientState::Selected {
                self.state = ClientState::Authenticated;
            }
        }
        let summary = match &kind {
            Kind::Select { mailbox, examine } => {
                Some(MailboxSummary::new(mailbox.clone(), *examine))
            }
            _ => None,
        };
        self.in_flight = Some(InFlight {
            handle,
            tag,
            kind,
            phase: Phase::Waiting,
            held,
            deferred_ir,
            done_requested: false,
            capabilities_seen: false,
            summary,
        });
        // The wait for the response starts now.
        self.last_activity = now;
    }

    /// Moves fragments to the output until a synchronizing literal, which stays first in
    /// `held` until the server's `+`.
    fn send_until_sync_literal(&mut self, held: &mut VecDeque<Fragment>) {
        while let Some(fragment) = held.front() {
            match fragment {
                Fragment::Line(line) => self.out.extend_from_slice(line),
                Fragment::Literal {
                    mode: LiteralMode::Sync,
                    ..
                } => return,
                Fragment::Literal { data, .. } => self.out.extend_from_slice(data),
            }
            held.pop_front();
        }
    }

    fn drain_frames(&mut self, now: Instant) {
        while matches!(
            self.state,
            ClientState::AwaitingGreeting
                | ClientState::NotAuthenticated
                | ClientState::Authenticated
                | ClientState::Selected
        ) {
            let Some(frame) = self.fragmentizer.poll() else {
                return;
            };
            match frame {
                Frame::Message(message) => {
                    self.handle_message(now, &message);
                    // The next command goes out before the next response is read, so what
                    // follows is attributed the same however the input was cut.
                    self.pump(now);
                }
                Frame::Rejected(rejection) => {
                    if rejection.head.first() == Some(&b'*')
                        && self.state != ClientState::AwaitingGreeting
                    {
                        let handle = self.in_flight.as_ref().map(|f| f.handle);
                        self.events.push_back(Event::ResponseDiscarded {
                            handle,
                            limit: rejection.limit,
                        });
                    } else {
                        self.violation(ProtocolViolation::ResponseTooLarge(rejection.limit));
                    }
                }
                // Only the server role announces literals; nothing to decide in a client.
                Frame::LiteralAnnounced(_) => {}
            }
            if self.state == ClientState::StartingTls {
                // Whatever followed the OK to STARTTLS in this read is not the server's.
                let rest = self.fragmentizer.take_buffered();
                self.fragmentizer.clear();
                self.report_injection(rest.len());
            }
        }
    }

    fn handle_message(&mut self, now: Instant, message: &Bytes) {
        let response = match parse_response_with(message, &self.parse_options) {
            Ok(r) => r,
            Err(error) => {
                self.handle_unparsable(message, error);
                return;
            }
        };
        if self.state == ClientState::AwaitingGreeting {
            self.handle_greeting(response.into_owned());
            return;
        }
        match response {
            crate::response::Response::Status(status) => self.handle_status(now, status),
            crate::response::Response::Data(data) => self.handle_data(data),
            crate::response::Response::Continue(cont) => self.handle_continue(cont),
        }
    }

    fn handle_greeting(&mut self, response: crate::response::Response<'static>) {
        let crate::response::Response::Status(status) = response else {
            self.violation(ProtocolViolation::InvalidGreeting);
            return;
        };
        match status {
            StatusResponse::Untagged {
                status: Status::Ok,
                text,
            } => {
                self.note_code_capabilities(text.code.as_ref());
                self.state = ClientState::NotAuthenticated;
                self.events.push_back(Event::GreetingReceived {
                    preauth: false,
                    code: text.code,
                    text: text.text,
                });
            }
            StatusResponse::PreAuth(text) => {
                self.note_code_capabilities(text.code.as_ref());
                self.state = ClientState::Authenticated;
                self.events.push_back(Event::GreetingReceived {
                    preauth: true,
                    code: text.code,
                    text: text.text,
                });
            }
            StatusResponse::Bye(text) => {
                self.events.push_back(Event::ByeReceived {
                    code: text.code,
                    text: text.text,
                });
                self.close_with(ClientCloseReason::GreetingRejected);
            }
            _ => self.violation(ProtocolViolation::InvalidGreeting),
        }
    }

    /// A response the parser refused: untagged ones are reported and skipped; a tagged one
    /// still completes its command when `tag SP status` can be read.
    fn handle_unparsable(&mut self, message: &Bytes, error: ParseError) {
        if self.state == ClientState::AwaitingGreeting {
            self.violation(ProtocolViolation::InvalidGreeting);
            return;
        }
        match message.first() {
            Some(b'*') => {
                let handle = self.in_flight.as_ref().map(|f| f.handle);
                self.events.push_back(Event::UnparsedResponse {
                    handle,
                    error,
                    raw: message.clone(),
                });
            }
            Some(b'+') => self.violation(ProtocolViolation::Unparsable(error)),
            _ => match lenient_tagged(message) {
                Some((tag, status, text)) => {
                    if self
                        .in_flight
                        .as_ref()
                        .is_some_and(|f| f.tag.as_bytes() == tag)
                    {
                        self.complete(status, ResponseText::new(text));
                    } else {
                        self.violation(ProtocolViolation::UnknownTag);
                    }
                }
                None => self.violation(ProtocolViolation::Unparsable(error)),
            },
        }
    }

    fn handle_status(&mut self, _now: Instant, status: StatusResponse<'_>) {
        match status {
            StatusResponse::Tagged { tag, status, text } => {
                if self
                    .in_flight
                    .as_ref()
                    .is_some_and(|f| f.tag.as_bytes() == tag.as_bytes())
                {
                    self.complete(status, text.into_owned());
                } else {
                    self.violation(ProtocolViolation::UnknownTag);
                }
            }
            StatusResponse::Untagged { status, text } => {
                let text = text.into_owned();
                self.note_code_capabilities(text.code.as_ref());
                if let Some(f) = self.in_flight.as_mut() {
                    if let (Some(summary), Some(code)) = (f.summary.as_mut(), text.code.as_ref()) {
                        summary.apply_code(code);
                    }
                } else if let (Some(summary), Some(code)) =
                    (self.selected.as_mut(), text.code.as_ref())
                {
                    // Unsolicited, e.g. `* OK [HIGHESTMODSEQ n]` after an update.
                    summary.apply_code(code);
                }
                let handle = self.in_flight.as_ref().map(|f| f.handle);
                self.events.push_back(Event::StatusReceived {
                    handle,
                    status,
                    code: text.code,
                    text: text.text,
                });
            }
            StatusResponse::Bye(text) => {
                let text = text.into_owned();
                self.bye = Some(text.clone());
                self.events.push_back(Event::ByeReceived {
                    code: text.code,
                    text: text.text,
                });
            }
            StatusResponse::PreAuth(_) => self.violation(ProtocolViolation::InvalidGreeting),
        }
    }

    fn handle_data(&mut self, data: Data<'_>) {
        let data = data.into_owned();
        match &data {
            Data::Capability(caps) => {
                self.capabilities = Some(caps.clone());
                if let Some(f) = self.in_flight.as_mut() {
                    f.capabilities_seen = true;
                }
            }
            Data::Enabled(caps) => {
                for cap in caps {
                    if !self.enabled.contains(cap) {
                        self.enabled.push(cap.clone());
                    }
                }
            }
            _ => {}
        }
        match self.in_flight.as_mut().and_then(|f| f.summary.as_mut()) {
            Some(summary) => summary.apply_data(&data),
            None => {
                if let Some(summary) = self.selected.as_mut() {
                    summary.apply_data(&data);
                }
            }
        }
        let handle = self.in_flight.as_ref().map(|f| f.handle);
        self.events.push_back(Event::DataReceived { handle, data });
    }

    fn handle_continue(&mut self, cont: ContinueRequest<'_>) {
        let Some(mut f) = self.in_flight.take() else {
            self.violation(ProtocolViolation::UnexpectedContinuation);
            return;
        };
        if f.phase != Phase::Waiting {
            self.in_flight = Some(f);
            self.violation(ProtocolViolation::UnexpectedContinuation);
            return;
        }
        if let Some(Fragment::Literal { data, .. }) = f.held.pop_front() {
            // The server is ready for the synchronizing literal.
            self.out.extend_from_slice(&data);
            self.send_until_sync_literal(&mut f.held);
            self.in_flight = Some(f);
            return;
        }
        match f.kind {
            Kind::Authenticate => {
                let challenge = match &cont {
                    ContinueRequest::Base64(b) => Base64Data::new(b.as_bytes())
                        .ok()
                        .and_then(|d| d.decode().ok()),
                    ContinueRequest::Basic(t)
                        if t.code.is_none() && t.text.as_bytes().is_empty() =>
                    {
                        Some(Vec::new())
                    }
                    ContinueRequest::Basic(_) => None,
                };
                let Some(challenge) = challenge else {
                    self.in_flight = Some(f);
                    self.violation(ProtocolViolation::InvalidChallenge);
                    return;
                };
                if let Some(ir) = f.deferred_ir.take()
                    && challenge.is_empty()
                {
                    let line = AuthenticateData::Response(Base64Data::encode(&ir));
                    self.out.extend_from_slice(&to_bytes(&line));
                    self.in_flight = Some(f);
                    return;
                }
                f.deferred_ir = None;
                f.phase = Phase::ChallengePending;
                let handle = f.handle;
                self.in_flight = Some(f);
                self.events
                    .push_back(Event::SaslChallengeReceived { handle, challenge });
            }
            Kind::Idle => {
                let handle = f.handle;
                if f.done_requested {
                    self.out.extend_from_slice(b"DONE\r\n");
                } else {
                    f.phase = Phase::Idling;
                }
                self.in_flight = Some(f);
                self.events.push_back(Event::IdleStarted { handle });
            }
            _ => {
                self.in_flight = Some(f);
                self.violation(ProtocolViolation::UnexpectedContinuation);
            }
        }
    }

    /// The tagged response of the command on the wire arrived.
    fn complete(&mut self, status: Status, text: ResponseText<'static>) {
        let Some(f) = self.in_flight.take() else {
            return;
        };
        let ok = status == Status::Ok;
        let code_caps = matches!(text.code, Some(ResponseCode::Capability(_)));
        self.note_code_capabilities(text.code.as_ref());
        let handle = f.handle;
        let mut after = None;
        match f.kind {
            Kind::Login | Kind::Authenticate if ok => {
                self.state = ClientState::Authenticated;
                // RFC 9051 §6.2.2: capabilities may change with authentication; keep them
                // only if the server sent them during or with the completion.
                if !(code_caps || f.capabilities_seen) {
                    self.capabilities = None;
                }
            }
            Kind::Select { .. } => {
                if ok {
                    if let Some(mut summary) = f.summary {
                        if let Some(code) = text.code.as_ref() {
                            summary.apply_code(code);
                        }
                        self.selected = Some(summary.clone());
                        self.state = ClientState::Selected;
                        self.events
                            .push_back(Event::MailboxSelected { handle, summary });
                    }
                } else if status == Status::No {
                    self.selected = None;
                    if self.state == ClientState::Selected {
                        self.state = ClientState::Authenticated;
                    }
                }
            }
            Kind::Deselect if ok => {
                self.selected = None;
                self.state = ClientState::Authenticated;
            }
            Kind::Unauthenticate if ok => {
                self.selected = None;
                self.capabilities = None;
                self.state = ClientState::NotAuthenticated;
            }
            Kind::StartTls if ok => after = Some(Kind::StartTls),
            Kind::StartTls => {
                // Refused: what was queued behind it must not go out in clear text.
                self.logout_queued = false;
                while let Some(q) = self.queue.pop_front() {
                    self.events.push_back(Event::CommandAborted {
                        handle: q.handle,
                        reason: AbortReason::NotSent,
                    });
                }
            }
            Kind::Logout => after = Some(Kind::Logout),
            _ => {}
        }
        self.events.push_back(Event::Completed {
            handle,
            status,
            code: text.code,
            text: text.text,
        });
        match after {
            Some(Kind::StartTls) => {
                self.state = ClientState::StartingTls;
                self.events
                    .push_back(Event::TlsHandshakeRequested { handle });
            }
            Some(Kind::Logout) => self.close_with(ClientCloseReason::Logout),
            _ => {}
        }
    }

    fn note_code_capabilities(&mut self, code: Option<&ResponseCode<'_>>) {
        if let Some(ResponseCode::Capability(caps)) = code {
            self.capabilities = Some(caps.iter().cloned().map(Capability::into_owned).collect());
            if let Some(f) = self.in_flight.as_mut() {
                f.capabilities_seen = true;
            }
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
        if let Some(f) = self.in_flight.take() {
            self.events.push_back(Event::CommandAborted {
                handle: f.handle,
                reason: AbortReason::ConnectionEnded,
            });
        }
        while let Some(q) = self.queue.pop_front() {
            self.events.push_back(Event::CommandAborted {
                handle: q.handle,
                reason: AbortReason::NotSent,
            });
        }
        self.selected = None;
        self.fragmentizer.clear();
        // Output already queued still goes out (e.g. commands that were on their way when a
        // LOGOUT completed or the server misbehaved), unless the connection is gone or
        // abandoned.
        if matches!(
            reason,
            ClientCloseReason::Aborted | ClientCloseReason::PeerClosed | ClientCloseReason::Timeout
        ) {
            self.out = Vec::new();
            self.out_sent = 0;
        }
        self.events.push_back(Event::Closed { reason });
    }
}

/// Reads `tag SP ("OK" / "NO" / "BAD") [SP text]` from a tagged response the strict parser
/// refused (a malformed code, 8-bit text...), so that the command still completes.
fn lenient_tagged(message: &[u8]) -> Option<(&[u8], Status, Text<'static>)> {
    let line = message.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let sp = memchr::memchr(b' ', line)?;
    let tag = line.get(..sp)?;
    let rest = line.get(sp.saturating_add(1)..)?;
    let (word, text) = match memchr::memchr(b' ', rest) {
        Some(i) => (rest.get(..i)?, rest.get(i.saturating_add(1)..)?),
        None => (rest, &b""[..]),
    };
    let status = if word.eq_ignore_ascii_case(b"OK") {
        Status::Ok
    } else if word.eq_ignore_ascii_case(b"NO") {
        Status::No
    } else if word.eq_ignore_ascii_case(b"BAD") {
        Status::Bad
    } else {
        return None;
    };
    // Text cannot hold NUL or start with `[` (a code that did not parse): keep what is
    // printable after the code, or nothing.
    let text = Text::new(text.to_vec())
        .or_else(|_| {
            let after = memchr::memchr(b']', text).map_or(text, |i| {
                text.get(i.saturating_add(1)..).unwrap_or_default()
            });
            Text::new(after.trim_ascii_start().to_vec())
        })
        .unwrap_or_default();
    Some((tag, status, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_tagged_reads_status() {
        let (tag, status, text) = lenient_tagged(b"A1 NO [BOGUS CODE \x00] failed\r\n").unwrap();
        assert_eq!((tag, status), (&b"A1"[..], Status::No));
        assert_eq!(text.as_bytes(), b"failed");
        let (_, status, text) = lenient_tagged(b"A2 ok\n").unwrap();
        assert_eq!((status, text.as_bytes()), (Status::Ok, &b""[..]));
        assert!(lenient_tagged(b"A3 MAYBE x\r\n").is_none());
        assert!(lenient_tagged(b"A4\r\n").is_none());
    }
}
