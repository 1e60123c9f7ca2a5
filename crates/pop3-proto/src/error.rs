//! Error types: parse failures, recoverable protocol errors that know their
//! `-ERR` reply, API misuse that hands the value back, and terminal close reasons.

use std::fmt;

use crate::response::{ResponseCode, Status, StatusLine};

/// What went wrong while parsing a complete line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The line was empty.
    Empty,
    /// The keyword is not a POP3 command this crate knows.
    UnknownCommand,
    /// A required argument is missing.
    MissingArgument,
    /// More arguments than the command takes.
    TooManyArguments,
    /// An argument has invalid syntax (control characters, wrong length, ...).
    InvalidArgument,
    /// A number is malformed or does not fit.
    InvalidNumber,
    /// Text that must be UTF-8 is not.
    InvalidUtf8,
    /// Base64 data is malformed.
    InvalidBase64,
    /// A response line does not start with `+OK`, `-ERR` or `+`.
    InvalidStatus,
    /// A bracketed response code is malformed.
    InvalidResponseCode,
    /// A capability line is malformed.
    InvalidCapability,
    /// A unique-id is malformed (RFC 1939 §7: 1..=70 octets in 0x21..=0x7E).
    InvalidUid,
    /// The line was longer than the configured limit.
    LineTooLong,
}

impl ParseErrorKind {
    fn describe(self) -> &'static str {
        match self {
            Self::Empty => "empty line",
            Self::UnknownCommand => "unknown command",
            Self::MissingArgument => "missing argument",
            Self::TooManyArguments => "too many arguments",
            Self::InvalidArgument => "invalid argument",
            Self::InvalidNumber => "invalid number",
            Self::InvalidUtf8 => "invalid UTF-8",
            Self::InvalidBase64 => "invalid base64",
            Self::InvalidStatus => "invalid status indicator",
            Self::InvalidResponseCode => "invalid response code",
            Self::InvalidCapability => "invalid capability",
            Self::InvalidUid => "invalid unique-id",
            Self::LineTooLong => "line too long",
        }
    }
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// A line could not be parsed: the kind and the byte offset in the line where it was noticed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{kind} at offset {offset}")]
#[non_exhaustive]
pub struct ParseError {
    /// What went wrong.
    pub kind: ParseErrorKind,
    /// Byte offset in the parsed line.
    pub offset: usize,
}

impl ParseError {
    /// A parse error of `kind` at `offset`.
    pub fn new(kind: ParseErrorKind, offset: usize) -> Self {
        Self { kind, offset }
    }
}

/// A recoverable protocol fault. The session answers it with [`ProtocolError::status_line`]
/// (a `-ERR` line, with an RFC 2449/3206 response code where one applies) and carries on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The command line did not parse.
    #[error("syntax error: {0}")]
    Syntax(ParseError),
    /// The command line exceeded the configured command-line limit.
    #[error("command line too long")]
    LineTooLong,
    /// The command is not valid in the current state.
    #[error("command not valid in this state")]
    WrongState,
    /// The command is known but switched off by configuration.
    #[error("command not available")]
    NotAvailable,
    /// `PASS` without a preceding successful `USER`.
    #[error("PASS without USER")]
    PassWithoutUser,
    /// The message number does not exist (or is 0).
    #[error("no such message")]
    NoSuchMessage,
    /// The message has been marked deleted in this session.
    #[error("message already deleted")]
    MessageDeleted,
    /// Clear-text authentication refused before TLS (RFC 3206 `[AUTH]`).
    #[error("TLS is required for clear-text authentication")]
    TlsRequired,
    /// `STLS` while TLS is already active.
    #[error("TLS already active")]
    TlsActive,
    /// `AUTH` named a mechanism the server does not offer.
    #[error("unsupported SASL mechanism")]
    UnsupportedMechanism,
    /// A SASL continuation line was not valid base64 or too long; the exchange is aborted.
    #[error("malformed SASL response")]
    BadSaslResponse,
    /// `LANG` named a language the server does not offer.
    #[error("unsupported language")]
    UnsupportedLanguage,
}

impl ProtocolError {
    /// The RFC 2449 / 3206 response code the `-ERR` reply carries, if any.
    pub fn code(&self) -> Option<ResponseCode> {
        match self {
            Self::TlsRequired => Some(ResponseCode::Auth),
            _ => None,
        }
    }

    /// Human-readable text of the `-ERR` reply.
    pub fn reply_text(&self) -> &'static str {
        match self {
            Self::Syntax(e) => match e.kind {
                ParseErrorKind::UnknownCommand => "Unknown command",
                ParseErrorKind::Empty => "Empty command",
                ParseErrorKind::MissingArgument => "Syntax error: missing argument",
                ParseErrorKind::TooManyArguments => "Syntax error: too many arguments",
                ParseErrorKind::InvalidNumber => "Syntax error: invalid number",
                ParseErrorKind::InvalidBase64 => "Syntax error: invalid base64",
                _ => "Syntax error",
            },
            Self::LineTooLong => "Command line too long",
            Self::WrongState => "Command not valid in this state",
            Self::NotAvailable => "Command not available",
            Self::PassWithoutUser => "No username given, send USER first",
            Self::NoSuchMessage => "No such message",
            Self::MessageDeleted => "Message already deleted",
            Self::TlsRequired => "TLS is required for clear-text authentication, use STLS first",
            Self::TlsActive => "TLS already active",
            Self::UnsupportedMechanism => "Unsupported authentication mechanism",
            Self::BadSaslResponse => "Malformed authentication response, exchange aborted",
            Self::UnsupportedLanguage => "Unsupported language",
        }
    }

    /// The complete `-ERR` status line for this error.
    pub fn status_line(&self) -> StatusLine {
        StatusLine {
            status: Status::Err,
            code: self.code(),
            text: self.reply_text().to_owned(),
        }
    }
}

/// Why [`crate::ServerSession::send`] refused a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SendErrorKind {
    /// No request with this id is awaiting an answer.
    UnknownId,
    /// The reply does not answer the pending request (e.g. `MessageData` for a `Login`).
    UnexpectedReply,
    /// The session is closed.
    Closed,
}

impl fmt::Display for SendErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnknownId => "no pending request with this id",
            Self::UnexpectedReply => "reply does not fit the pending request",
            Self::Closed => "session is closed",
        })
    }
}

/// API misuse: the value is handed back unchanged.
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
#[non_exhaustive]
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

/// Why a session ended. Terminal: reported once in `Event::Closed`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client sent `QUIT` (in TRANSACTION state the commit has been answered).
    #[error("client quit")]
    Quit,
    /// An inactivity timer fired.
    #[error("inactivity timeout")]
    Timeout,
    /// The peer closed the connection (EOF) without `QUIT`.
    #[error("peer closed the connection")]
    PeerClosed,
    /// `Limits::max_bad_commands` was reached.
    #[error("too many bad commands")]
    TooManyBadCommands,
    /// `Limits::max_auth_failures` was reached.
    #[error("too many authentication failures")]
    TooManyAuthFailures,
    /// More pipelined input arrived than `Limits::max_buffered_input` allows.
    #[error("input limit exceeded")]
    InputLimitExceeded,
    /// The application closed the session (`ServerSession::close`).
    #[error("shut down by the application: {0}")]
    Shutdown(String),
}

/// A `ServerConfig` failed validation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `Limits::max_command_line` outside 40..=1024.
    #[error("max_command_line must be within 40..=1024, got {0}")]
    CommandLineLimit(usize),
    /// A limit that must be positive is zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// `max_buffered_input` smaller than a single command or SASL line.
    #[error("max_buffered_input must be at least max_command_line and max_sasl_response")]
    BufferedInputTooSmall,
    /// The greeting or implementation text contains control characters or is too long.
    #[error("invalid text in {0}")]
    InvalidText(&'static str),
    /// A SASL mechanism name is not 1..=20 of A-Z 0-9 - _ (RFC 4422).
    #[error("invalid SASL mechanism name {0:?}")]
    InvalidMechanism(String),
    /// A language tag is not a plausible RFC 5646 tag.
    #[error("invalid language tag {0:?}")]
    InvalidLanguage(String),
    /// No way to log in is enabled.
    #[error("no login method enabled")]
    NoLoginMethod,
}

/// A unique-id was rejected (RFC 1939 §7: 1..=70 octets in 0x21..=0x7E).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid unique-id: must be 1..=70 octets in 0x21..=0x7E")]
#[non_exhaustive]
pub struct InvalidUid;
