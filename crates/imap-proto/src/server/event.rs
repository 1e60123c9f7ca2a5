//! What a [`crate::server::ServerSession`] tells the application, and the values the
//! application hands back.

use std::fmt;

use bytes::Bytes;

use crate::code::ResponseCode;
use crate::command::Command;
use std::num::NonZeroU32;

use crate::types::{DateTime, Flag, Mailbox, Secret, Section};

/// Opaque id correlating an [`Event`] with the application's answer.
///
/// A SASL exchange keeps the id of its `AUTHENTICATE` command for every step. Ids are never
/// reused within a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandId(pub(crate) u64);

/// IMAP connection states (RFC 9051 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Before login.
    NotAuthenticated,
    /// Logged in, no mailbox selected.
    Authenticated,
    /// A mailbox is selected ([`crate::server::ServerSession::selected`]).
    Selected,
    /// The session is over (output may still be draining).
    Logout,
}

/// One message of an `APPEND`, its data a slice of the received bytes (never copied).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendPayload {
    /// Flags to set (empty when none were given).
    pub flags: Vec<Flag<'static>>,
    /// The internal date, when given.
    pub date_time: Option<DateTime>,
    /// The message octets.
    pub data: Bytes,
    /// Sent as a `literal8` (`~{n}`, RFC 3516): may hold NUL.
    pub binary: bool,
}

/// Something the application learns from the session (past tense, owned).
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A command the application must answer: untagged data with
    /// [`crate::server::ServerSession::send`] / `send_fetch`, then the final status with
    /// [`crate::server::ServerSession::finish`] (or [`crate::server::ServerSession::select`]
    /// for a successful SELECT/EXAMINE).
    ///
    /// The session has already checked the state (e.g. FETCH only in Selected), the
    /// capabilities it gates, and, for non-UID sequence sets, that every number exists.
    /// Commands the session answers itself never arrive here: CAPABILITY, NOOP, CHECK,
    /// LOGOUT, STARTTLS, LOGIN/AUTHENTICATE (see [`Event::LoginRequested`] and
    /// [`Event::AuthenticateStarted`]), ENABLE, IDLE, COMPRESS (see
    /// [`Event::CompressionStarted`]), and APPEND ([`Event::AppendReceived`]).
    CommandReceived {
        /// Correlation id.
        id: CommandId,
        /// The command, detached from the received bytes.
        command: Command<'static>,
    },
    /// `APPEND` with every literal received: store the messages, then answer with
    /// [`crate::server::ServerSession::finish`] (`OK [APPENDUID ...]`, `NO [TRYCREATE]`,
    /// `NO [OVERQUOTA]` ...). A MULTIAPPEND is all or nothing (RFC 3502).
    AppendReceived {
        /// Correlation id.
        id: CommandId,
        /// Target mailbox.
        mailbox: Mailbox<'static>,
        /// The messages, at least one.
        messages: Vec<AppendPayload>,
    },
    /// `LOGIN`: check the password and answer with
    /// [`crate::server::ServerSession::finish_authentication`].
    LoginRequested {
        /// Correlation id.
        id: CommandId,
        /// The user name (UTF-8; other bytes are refused by the session).
        username: String,
        /// The password, never printed.
        password: Secret<Vec<u8>>,
    },
    /// `AUTHENTICATE` with a configured mechanism: start the mechanism, then answer with
    /// [`crate::server::ServerSession::send_sasl_challenge`] or
    /// [`crate::server::ServerSession::finish_authentication`].
    AuthenticateStarted {
        /// Correlation id, kept for the whole exchange.
        id: CommandId,
        /// Upper-case mechanism name, one of [`crate::server::ServerConfig::sasl_mechanisms`].
        mechanism: String,
        /// SASL-IR initial response, decoded (`Some(empty)` for `=`).
        initial_response: Option<Secret<Vec<u8>>>,
    },
    /// The client's answer to a challenge, decoded. Answer like
    /// [`Event::AuthenticateStarted`].
    SaslResponse {
        /// The `AUTHENTICATE` command's id.
        id: CommandId,
        /// Decoded response.
        data: Secret<Vec<u8>>,
    },
    /// The exchange ended without a result: the client sent `*` or a malformed or
    /// overlong line. The session already answered `BAD`; drop the mechanism state.
    SaslCancelled {
        /// The `AUTHENTICATE` command's id.
        id: CommandId,
    },
    /// `OK Begin TLS negotiation now` is queued: drain `poll_transmit`, run the TLS
    /// handshake, then call [`crate::server::ServerSession::handle_tls_established`].
    /// Input pipelined after `STARTTLS` was discarded (RFC 9051 §6.2.1) and input is ignored
    /// until then.
    TlsRequested,
    /// `OK DEFLATE active` is queued (RFC 4978): drain `poll_transmit` uncompressed, then
    /// compress everything written and inflate everything read from here on. Input that
    /// arrived after the `COMPRESS` command is already compressed: take it with
    /// [`crate::server::ServerSession::take_compressed_input`], inflate it and feed the
    /// result to `handle_input`.
    CompressionStarted,
    /// `IDLE` began (`+ idling` is queued): mailbox changes reported now are sent at once.
    IdleStarted {
        /// The IDLE command's id.
        id: CommandId,
    },
    /// `IDLE` ended with `DONE` (the session sent the tagged `OK`), or by a timeout or close.
    IdleDone {
        /// The IDLE command's id.
        id: CommandId,
    },
    /// The selected mailbox was deselected: a new SELECT/EXAMINE closed it (before the
    /// application is asked to open the new one), CLOSE/UNSELECT completed with `OK`, or the
    /// session ended. The application can stop watching the mailbox.
    MailboxClosed,
    /// The session ended. Drain `poll_transmit` until it returns 0, then close the transport.
    Closed {
        /// Why.
        reason: CloseReason,
    },
    /// Only with [`crate::server::ServerConfig::trace`]: one client command line, with
    /// secrets (LOGIN password, SASL data) redacted and literal data left out.
    CommandTraced {
        /// The redacted line, without CRLF.
        line: String,
    },
    /// Only with [`crate::server::ServerConfig::trace`]: a status line the session queued
    /// (tagged, `* OK/NO/BAD/BYE`, greeting), never data or SASL challenges.
    ReplyTraced {
        /// The line, without CRLF.
        line: String,
    },
}

/// The application's verdict on a `LOGIN` or `AUTHENTICATE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Credentials good: the session enters Authenticated state as `user` and answers
    /// `OK [CAPABILITY ...]`.
    Accepted {
        /// The authenticated user name (as the application wants it reported).
        user: String,
    },
    /// Credentials bad or login not allowed: `NO [code] text`. `None` sends
    /// `[AUTHENTICATIONFAILED]`. Counts toward
    /// [`crate::server::Limits::max_auth_failures`] unless the code is `UNAVAILABLE`.
    Rejected {
        /// Response code.
        code: Option<ResponseCode<'static>>,
        /// Human-readable text.
        text: String,
    },
}

impl LoginOutcome {
    /// `Accepted` for `user`.
    pub fn accepted(user: impl Into<String>) -> Self {
        Self::Accepted { user: user.into() }
    }

    /// `Rejected` with `[AUTHENTICATIONFAILED] Authentication failed`.
    pub fn rejected() -> Self {
        Self::Rejected {
            code: None,
            text: "Authentication failed".to_owned(),
        }
    }
}

/// Why the session ended. Terminal: reported once in [`Event::Closed`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client sent `LOGOUT`.
    #[error("client logged out")]
    Logout,
    /// An inactivity timer fired (pre-auth, authenticated or IDLE).
    #[error("inactivity timeout")]
    Timeout,
    /// The peer closed the connection (EOF) without `LOGOUT`.
    #[error("peer closed the connection")]
    PeerClosed,
    /// [`crate::server::Limits::max_bad_commands`] was reached.
    #[error("too many bad commands")]
    TooManyBadCommands,
    /// [`crate::server::Limits::max_auth_failures`] was reached.
    #[error("too many authentication failures")]
    TooManyAuthFailures,
    /// The driver kept feeding input past [`crate::server::Limits::max_pipelined_input`]
    /// while the session asked it to stop.
    #[error("input limit exceeded")]
    InputLimitExceeded,
    /// The application called [`crate::server::ServerSession::close`].
    #[error("closed by the server: {0}")]
    Server(String),
}

/// What was wrong with an answer the application handed to the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendErrorKind {
    /// No command with this id is waiting for an answer.
    UnknownId,
    /// The answer does not fit the pending command (e.g. `select` for a FETCH, a SASL
    /// challenge outside AUTHENTICATE, a FETCH for a UID not in the view, EXPUNGE/EXISTS data
    /// that must go through the selected-mailbox view).
    UnexpectedAnswer,
    /// The session is closed.
    Closed,
}

impl fmt::Display for SendErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnknownId => "no pending command with this id",
            Self::UnexpectedAnswer => "answer does not fit the pending command",
            Self::Closed => "session is closed",
        })
    }
}

/// API misuse: the value is handed back unchanged.
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct SendError<T: fmt::Debug> {
    /// Why the value was refused.
    pub kind: SendErrorKind,
    /// The refused value.
    pub value: T,
}

impl<T: fmt::Debug> SendError<T> {
    /// Wraps a refused value.
    pub fn new(kind: SendErrorKind, value: T) -> Self {
        Self { kind, value }
    }

    /// Takes the refused value back.
    pub fn into_inner(self) -> T {
        self.value
    }
}

/// The large item of [`crate::server::ServerSession::send_fetch_body`]: its name; the data
/// is passed separately as `Bytes`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodyItem<'a> {
    /// `BODY[section]<origin>` (also the answer to `BODY.PEEK[...]`).
    Section {
        /// The section.
        section: Section<'a>,
        /// Start offset of a partial fetch.
        origin: Option<u32>,
    },
    /// `BINARY[part]` (RFC 3516, RFC 9051): the decoded part.
    Binary {
        /// Part numbers, empty for the whole message.
        section: Vec<NonZeroU32>,
    },
    /// `RFC822` (RFC 3501).
    Rfc822,
    /// `RFC822.HEADER` (RFC 3501).
    Rfc822Header,
    /// `RFC822.TEXT` (RFC 3501).
    Rfc822Text,
}
