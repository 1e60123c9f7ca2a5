//! The server side: [`ServerSession`], its configuration and the request/reply protocol with
//! the application.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};

use crate::command::{Command, HEX, LangRange, SaslResponse};
use crate::error::{CloseReason, ConfigError, ProtocolError, SendError, SendErrorKind};
use crate::framer::{Frame, LineFramer};
use crate::response::{
    Capability, DropListing, Expire, LanguageListing, ResponseCode, ScanListing, StatusLine,
    TERMINATOR, Uid, UidListing, encode_capabilities, encode_continuation,
};
use crate::stuffing::DotStuffer;

/// Opaque id correlating an [`Event::CommandReceived`] with the application's [`Reply`].
///
/// A SASL exchange keeps the id of its `AUTH` command for every step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CommandId(u64);

/// A value that never prints: `Debug` shows `Secret(..)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a secret.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// Borrows the secret.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the secret.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// One message of the maildrop as the application hands it over at login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaildropEntry {
    /// Size in octets with every line end counted as CRLF (see [`crate::stuffing::crlf_size`]).
    pub size: u64,
    /// The message's unique-id (stable across sessions, never reused).
    pub uid: Uid,
}

/// Session limits. "Unlimited" is `None`, never `0`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest command line in octets, CRLF included. Default 255 (RFC 2449 §4);
    /// [`ServerConfig::validate`] enforces 40..=1024 (Exchange `MaxCommandSize` range).
    /// An overlong line is answered with `-ERR` and discarded up to the next LF.
    pub max_command_line: usize,
    /// Longest SASL continuation line in base64 octets (CRLF not counted). Default 8192: an
    /// NTLM AUTHENTICATE is 300–600+ base64 characters, Kerberos tickets more.
    pub max_sasl_response: usize,
    /// Bad commands (syntax errors, unknown commands, commands in the wrong state, refused
    /// clear-text logins) per session before the session is closed. Counted in total, not
    /// consecutively. Default `Some(10)`.
    pub max_bad_commands: Option<u32>,
    /// Failed logins per session before the session is closed. Default `Some(3)`.
    pub max_auth_failures: Option<u32>,
    /// Inactivity timeout before login. Default 60 s (Exchange
    /// `PreAuthenticatedConnectionTimeout`).
    pub pre_auth_timeout: Option<Duration>,
    /// Inactivity timeout after login. Default 1800 s (Exchange
    /// `AuthenticatedConnectionTimeout`; RFC 1939 §3 requires at least 10 minutes).
    pub authenticated_timeout: Option<Duration>,
    /// Most bytes one [`ServerSession::poll_transmit`] call appends. Default 16 KiB;
    /// values below 64 are treated as 64.
    pub transmit_chunk: usize,
    /// Input held while a command awaits the application (pipelining). More than this closes
    /// the session with [`CloseReason::InputLimitExceeded`]. Default 16 KiB; must be at
    /// least `max_command_line` and `max_sasl_response + 2`.
    pub max_buffered_input: usize,
    /// High-water mark of queued output (including message data handed over but not yet
    /// sent). Above it, [`ServerSession::wants_input`] and
    /// [`ServerSession::wants_message_data`] turn false. Default 64 KiB.
    pub max_buffered_output: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_command_line: 255,
            max_sasl_response: 8192,
            max_bad_commands: Some(10),
            max_auth_failures: Some(3),
            pre_auth_timeout: Some(Duration::from_secs(60)),
            authenticated_timeout: Some(Duration::from_secs(1800)),
            transmit_chunk: 16 * 1024,
            max_buffered_input: 16 * 1024,
            max_buffered_output: 64 * 1024,
        }
    }
}

/// A SASL mechanism the application implements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaslMechanism {
    /// Upper-case mechanism name, e.g. `PLAIN`.
    pub name: String,
    /// The mechanism sends the password in the clear (PLAIN, LOGIN): refused before TLS
    /// unless [`ServerConfig::allow_clear_text_without_tls`].
    pub clear_text: bool,
}

impl SaslMechanism {
    /// A mechanism entry.
    pub fn new(name: impl Into<String>, clear_text: bool) -> Self {
        Self {
            name: name.into(),
            clear_text,
        }
    }
}

/// Server configuration, shared by all sessions through an `Arc`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Limits and timers.
    pub limits: Limits,
    /// Greeting text after `+OK`. Default `cas-rs POP3 server ready`.
    pub greeting: String,
    /// `IMPLEMENTATION` capability text (RFC 2449 §6.9). Default `None`.
    pub implementation: Option<String>,
    /// The server has a certificate: offer `STLS` (RFC 2595). Default `false`.
    pub stls_available: bool,
    /// Allow USER/PASS and clear-text SASL mechanisms without TLS. Default `false`
    /// (Exchange `LoginType SecureLogin`).
    pub allow_clear_text_without_tls: bool,
    /// Offer USER/PASS. Default `true`.
    pub user_pass_enabled: bool,
    /// SASL mechanisms (RFC 5034). Default PLAIN and LOGIN, both clear text.
    pub sasl_mechanisms: Vec<SaslMechanism>,
    /// Offer APOP (RFC 1939 §7) when the session has a timestamp. Default `false`.
    pub apop_enabled: bool,
    /// `LOGIN-DELAY` capability (RFC 2449 §6.5). Default `None`.
    pub login_delay: Option<Duration>,
    /// `EXPIRE` capability (RFC 2449 §6.7). Default `None`.
    pub expire: Option<Expire>,
    /// Offer the `UTF8` command and capability (RFC 6856 §2). Default `false`.
    pub utf8_enabled: bool,
    /// Language tags for `LANG` (RFC 6856 §3); empty: `LANG` not offered. The first is the
    /// default. Default empty.
    pub languages: Vec<String>,
    /// Report the dialogue for a protocol log: every command line read as
    /// [`Event::CommandTraced`] and every status line queued as [`Event::ReplyTraced`],
    /// secrets redacted by the session (which alone knows which bytes are secret). Default
    /// `false`: no trace events at all. Usually enabled per connection on a clone of the
    /// shared configuration.
    pub trace: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            greeting: "cas-rs POP3 server ready".to_owned(),
            implementation: None,
            stls_available: false,
            allow_clear_text_without_tls: false,
            user_pass_enabled: true,
            sasl_mechanisms: vec![
                SaslMechanism::new("PLAIN", true),
                SaslMechanism::new("LOGIN", true),
            ],
            apop_enabled: false,
            login_delay: None,
            expire: None,
            utf8_enabled: false,
            languages: Vec::new(),
            trace: false,
        }
    }
}

fn valid_text(s: &str) -> bool {
    s.len() <= 200 && !s.chars().any(char::is_control)
}

impl ServerConfig {
    /// Checks limits and texts. [`ServerSession::new`] does not validate; call this once
    /// when loading the configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        if !(40..=1024).contains(&l.max_command_line) {
            return Err(ConfigError::CommandLineLimit(l.max_command_line));
        }
        if l.max_sasl_response == 0 {
            return Err(ConfigError::Zero("max_sasl_response"));
        }
        if l.max_bad_commands == Some(0) {
            return Err(ConfigError::Zero("max_bad_commands"));
        }
        if l.max_auth_failures == Some(0) {
            return Err(ConfigError::Zero("max_auth_failures"));
        }
        if l.pre_auth_timeout == Some(Duration::ZERO) {
            return Err(ConfigError::Zero("pre_auth_timeout"));
        }
        if l.authenticated_timeout == Some(Duration::ZERO) {
            return Err(ConfigError::Zero("authenticated_timeout"));
        }
        if l.transmit_chunk == 0 {
            return Err(ConfigError::Zero("transmit_chunk"));
        }
        if l.max_buffered_output == 0 {
            return Err(ConfigError::Zero("max_buffered_output"));
        }
        if l.max_buffered_input < l.max_command_line
            || l.max_buffered_input < l.max_sasl_response.saturating_add(2)
        {
            return Err(ConfigError::BufferedInputTooSmall);
        }
        if !valid_text(&self.greeting) {
            return Err(ConfigError::InvalidText("greeting"));
        }
        if let Some(i) = &self.implementation
            && !valid_text(i)
        {
            return Err(ConfigError::InvalidText("implementation"));
        }
        for m in &self.sasl_mechanisms {
            let ok = (1..=20).contains(&m.name.len())
                && m.name.bytes().all(|b| {
                    b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                });
            if !ok {
                return Err(ConfigError::InvalidMechanism(m.name.clone()));
            }
        }
        for lang in &self.languages {
            match LangRange::new(lang) {
                Ok(r) if !r.is_wildcard() => {}
                _ => return Err(ConfigError::InvalidLanguage(lang.clone())),
            }
        }
        if !self.user_pass_enabled && self.sasl_mechanisms.is_empty() && !self.apop_enabled {
            return Err(ConfigError::NoLoginMethod);
        }
        Ok(())
    }
}

/// Per-connection options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionOptions {
    /// TLS is already active (implicit TLS, port 995, RFC 8314).
    pub tls_active: bool,
    /// APOP timestamp `<pid.clock@host>` (RFC 1939 §7), made by the application with fresh
    /// randomness. Announced in the greeting only when [`ServerConfig::apop_enabled`].
    pub apop_timestamp: Option<String>,
}

/// RFC 1939 session states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Before login.
    Authorization,
    /// Logged in.
    Transaction,
    /// `QUIT` received in TRANSACTION; the commit is with the application.
    Update,
    /// The session is over (output may still be draining).
    Closed,
}

/// Something the application learns from the session (past tense, owned).
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// The application must answer `command` with [`ServerSession::send`] and this id.
    CommandReceived {
        /// Correlation id.
        id: CommandId,
        /// What to do.
        command: Request,
    },
    /// `+OK Begin TLS negotiation` has been queued; drain `poll_transmit`, run the TLS
    /// handshake, then call [`ServerSession::handle_tls_established`]. Pipelined bytes after
    /// `STLS` were discarded, and input is ignored until then.
    TlsRequested,
    /// A SASL exchange ended without a result: the client cancelled it (`*`) or sent a
    /// malformed or overlong response. The session already sent `-ERR`.
    AuthenticationCancelled {
        /// The id of the `AUTH` command.
        id: CommandId,
    },
    /// The session ended. Drain `poll_transmit` until [`ServerSession::is_closed`].
    Closed {
        /// Why.
        reason: CloseReason,
    },
    /// Only with [`ServerConfig::trace`]: the session read one client line, reported before
    /// whatever it causes (including lines the session answers itself, such as `STAT` or a
    /// refused command). Secrets are replaced by `****`: the argument of `PASS`, the digest
    /// of `APOP`, the initial response of `AUTH` and every SASL continuation line; a line
    /// that does not start with a POP3 command name is reported as
    /// `(unrecognized command, N octets)` because it may be a desynchronised credential.
    /// Invalid UTF-8 is replaced, control characters become `?`, and the text is cut at
    /// [`MAX_TRACE_LINE`] characters. An overlong line, whose bytes were dropped, is
    /// reported as `(line too long)`.
    CommandTraced {
        /// The redacted line, without CRLF.
        line: String,
    },
    /// Only with [`ServerConfig::trace`]: the session queued a status line (`+OK ...` or
    /// `-ERR ...`), from the greeting to the last line, whether the application's reply or
    /// the session's own answer. For multi-line answers (`LIST`, `UIDL`, `CAPA`, `RETR`, ...)
    /// only the status line is reported, never listings or message bodies; SASL challenges
    /// (`+ ...`) are not reported. Cut at [`MAX_TRACE_LINE`] characters.
    ReplyTraced {
        /// The status line, without CRLF.
        line: String,
    },
}

/// The longest text, in characters, of [`Event::CommandTraced`] and [`Event::ReplyTraced`]
/// (longer lines are cut and end with `...`): a log line per command stays bounded whatever
/// the client sends, and 200 characters hold any RFC 1939 command (255 octets at most with
/// its CRLF) except an overlong argument.
pub const MAX_TRACE_LINE: usize = 200;

/// Shown instead of a secret in trace events.
const TRACE_REDACTED: &str = "****";

/// POP3 command names (RFC 1939, RFC 2449, RFC 2595, RFC 5034, RFC 6856) that a trace shows
/// as received; anything else may be a credential sent out of turn.
const TRACE_KNOWN_COMMANDS: [&[u8]; 17] = [
    b"USER", b"PASS", b"APOP", b"AUTH", b"CAPA", b"STLS", b"QUIT", b"STAT", b"LIST", b"RETR",
    b"DELE", b"NOOP", b"RSET", b"TOP", b"UIDL", b"UTF8", b"LANG",
];

/// Lossy UTF-8, control characters as `?`, at most [`MAX_TRACE_LINE`] characters.
fn trace_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len().min(MAX_TRACE_LINE.saturating_add(3)));
    for (n, c) in text.chars().enumerate() {
        if n >= MAX_TRACE_LINE {
            out.push_str("...");
            break;
        }
        out.push(if c.is_control() { '?' } else { c });
    }
    out
}

/// The trace text of a command line read outside a SASL exchange, secrets redacted.
/// Works on the raw bytes, before parsing, so that a malformed `PASS` line is redacted too.
fn traced_command(line: &[u8]) -> String {
    let is_blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = line.iter().position(|b| !is_blank(b)).unwrap_or(line.len());
    let line = line.get(start..).unwrap_or_default();
    let keyword_len = line
        .iter()
        .position(|b| !b.is_ascii_alphanumeric())
        .unwrap_or(line.len());
    let (keyword, rest) = line.split_at(keyword_len);
    if !TRACE_KNOWN_COMMANDS
        .iter()
        .any(|k| keyword.eq_ignore_ascii_case(k))
    {
        return format!("(unrecognized command, {} octets)", line.len());
    }
    let keyword_text = keyword.to_ascii_uppercase();
    let keyword_text = String::from_utf8_lossy(&keyword_text);
    // The argument after the one separator the grammar allows (and any stray blanks).
    let args = rest
        .get(rest.iter().position(|b| !is_blank(b)).unwrap_or(rest.len())..)
        .unwrap_or_default();
    let first_len = args.iter().position(is_blank).unwrap_or(args.len());
    let (first, after_first) = args.split_at(first_len);
    let has_second = after_first.iter().any(|b| !is_blank(b));
    if keyword.eq_ignore_ascii_case(b"PASS") {
        return if args.is_empty() {
            keyword_text.into_owned()
        } else {
            format!("{keyword_text} {TRACE_REDACTED}")
        };
    }
    if keyword.eq_ignore_ascii_case(b"AUTH") || keyword.eq_ignore_ascii_case(b"APOP") {
        // `AUTH mechanism [initial-response]`, `APOP name digest`: the second argument is
        // the secret.
        let mut out = keyword_text.into_owned();
        if !first.is_empty() {
            out.push(' ');
            out.push_str(&trace_text(first));
        }
        if has_second {
            out.push(' ');
            out.push_str(TRACE_REDACTED);
        }
        return out;
    }
    trace_text(line)
}

/// Work for the application, answered with [`ServerSession::send`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Request {
    /// `USER` + `PASS`: check the password. Answer `LoginAccepted` or `LoginRejected`.
    Login {
        /// From `USER`.
        user: String,
        /// From `PASS` (rest of the line, spaces included).
        password: Secret<Vec<u8>>,
    },
    /// `APOP`: check `digest == md5(timestamp + secret)`. Answer like `Login`.
    Apop {
        /// Mailbox name.
        user: String,
        /// 32 lower-case hex digits.
        digest: String,
        /// The timestamp from the greeting.
        timestamp: String,
    },
    /// `AUTH`: start a SASL exchange. Answer `SaslChallenge`, `LoginAccepted` or
    /// `LoginRejected`.
    Authenticate {
        /// Upper-case name of a configured mechanism.
        mechanism: String,
        /// Decoded initial response; `Some(vec![])` for `=`.
        initial_response: Option<Vec<u8>>,
    },
    /// The client's answer to a challenge (decoded). Answer like `Authenticate`.
    SaslResponse {
        /// Decoded response.
        data: Vec<u8>,
    },
    /// `RETR` (`top_lines: None`) or `TOP`: stream the message with `MessageData`, or answer
    /// `MessageUnavailable`. Send the whole message; the session applies TOP's cutoff.
    Retrieve {
        /// 1-based message number.
        message: u32,
        /// Its unique-id.
        uid: Uid,
        /// TOP's body-line count.
        top_lines: Option<u32>,
    },
    /// `QUIT` in TRANSACTION: delete these messages and release the maildrop. Answer
    /// `CommitSucceeded` or `CommitFailed`.
    Commit {
        /// 1-based message numbers, ascending (may be empty).
        deleted: Vec<u32>,
    },
}

/// The application's answer to a [`Request`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Reply {
    /// Login succeeded: the maildrop listing, in message-number order. Enters TRANSACTION.
    LoginAccepted {
        /// The messages.
        maildrop: Vec<MaildropEntry>,
    },
    /// Login failed: `-ERR [code] text`. `None` sends `[AUTH]` (RFC 3206). Counts toward
    /// `max_auth_failures` unless the code is `IN-USE`, `LOGIN-DELAY`, `SYS/TEMP` or
    /// `SYS/PERM`.
    LoginRejected {
        /// Response code.
        code: Option<ResponseCode>,
        /// Human-readable text.
        text: String,
    },
    /// A SASL challenge: sent as `+ base64` (`+ ` when empty).
    SaslChallenge {
        /// Raw challenge.
        data: Vec<u8>,
    },
    /// Message bytes in any chunking. The first chunk makes the session send `+OK`; the
    /// session dot-stuffs lazily and applies the TOP cutoff. Set `last` on the final chunk
    /// (it may be empty). Respect [`ServerSession::wants_message_data`].
    MessageData {
        /// The bytes.
        chunk: Bytes,
        /// No more data follows.
        last: bool,
    },
    /// The message cannot be read: `-ERR text` (only before any `MessageData`).
    MessageUnavailable {
        /// Human-readable text.
        text: String,
    },
    /// Deletions committed: `+OK ... signing off`, then `Closed { Quit }`.
    CommitSucceeded,
    /// Deletions failed: `-ERR [SYS/TEMP] text`, then `Closed { Quit }`.
    CommitFailed {
        /// Human-readable text.
        text: String,
    },
}

#[derive(Debug)]
struct Msg {
    size: u64,
    uid: Uid,
    deleted: bool,
}

#[derive(Debug)]
enum PendingKind {
    Login {
        user: String,
    },
    Sasl,
    Retrieve {
        started: bool,
        index: usize,
        top: Option<u32>,
    },
    Commit,
}

#[derive(Debug)]
struct Pending {
    id: CommandId,
    kind: PendingKind,
}

#[derive(Debug)]
struct MessageOut {
    stuffer: DotStuffer,
    chunks: VecDeque<Bytes>,
    /// All data has been handed over (or the TOP cutoff made the rest irrelevant).
    complete: bool,
    /// The retrieval this segment belongs to.
    id: CommandId,
}

#[derive(Debug)]
enum Segment {
    Raw { data: Vec<u8>, pos: usize },
    Message(Box<MessageOut>),
}

/// Smallest transmit chunk: the end of a body (CRLF `.` CRLF) must always fit.
const MIN_TRANSMIT_CHUNK: usize = 64;

/// A sans-IO POP3 server session (one per connection). See the crate docs for the call and
/// drain order.
#[derive(Debug)]
pub struct ServerSession {
    config: Arc<ServerConfig>,
    state: State,
    tls_active: bool,
    tls_pending: bool,
    apop_timestamp: Option<String>,
    /// Name from `USER`, waiting for `PASS`.
    user_given: Option<String>,
    /// Logged-in user (USER/PASS or APOP).
    user: Option<String>,
    utf8: bool,
    language: Option<String>,
    maildrop: Vec<Msg>,
    framer: LineFramer,
    /// A SASL exchange waits for the client's next line.
    sasl_awaiting_client: Option<CommandId>,
    pending: Option<Pending>,
    /// A TOP whose cutoff was reached: further `MessageData` for it is accepted and dropped.
    draining: Option<CommandId>,
    next_id: u64,
    events: VecDeque<Event>,
    out: VecDeque<Segment>,
    /// Unsent raw bytes plus message bytes not yet stuffed.
    queued: usize,
    bad_commands: u32,
    auth_failures: u32,
    last_activity: Instant,
    /// A large reply made progress since the timer was armed (message bytes, or output with
    /// more still queued, were handed out): the client is reading. Small replies do not
    /// count, since the peer's kernel accepts them whether or not the client reads.
    transmitted: bool,
}

impl ServerSession {
    /// A new session; the greeting is queued.
    pub fn new(config: Arc<ServerConfig>, now: Instant, options: SessionOptions) -> Self {
        let apop_timestamp = options.apop_timestamp.filter(|_| config.apop_enabled);
        let mut s = Self {
            config,
            state: State::Authorization,
            tls_active: options.tls_active,
            tls_pending: false,
            apop_timestamp,
            user_given: None,
            user: None,
            utf8: false,
            language: None,
            maildrop: Vec::new(),
            framer: LineFramer::new(),
            sasl_awaiting_client: None,
            pending: None,
            draining: None,
            next_id: 0,
            events: VecDeque::new(),
            out: VecDeque::new(),
            queued: 0,
            bad_commands: 0,
            auth_failures: 0,
            last_activity: now,
            transmitted: false,
        };
        let mut text = s.config.greeting.clone();
        if let Some(ts) = &s.apop_timestamp {
            text.push(' ');
            text.push_str(ts);
        }
        s.queue_line(&StatusLine::ok(text));
        s
    }

    // ------------------------------------------------------------------ inputs

    /// Bytes received from the client. Ignored once closed and while a TLS handshake is
    /// pending.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        if self.state == State::Closed || self.tls_pending {
            return;
        }
        if !data.is_empty() {
            self.last_activity = now;
        }
        let max = self.config.limits.max_buffered_input.max(1);
        let mut data = data;
        loop {
            let room = max.saturating_sub(self.framer.buffered());
            let (now_part, rest) = data.split_at(room.min(data.len()));
            self.framer.push(now_part);
            data = rest;
            self.process();
            if self.state == State::Closed || self.tls_pending || data.is_empty() {
                return;
            }
            if self.framer.buffered() >= max {
                self.finish(
                    CloseReason::InputLimitExceeded,
                    Some(StatusLine::err(
                        "Too much pipelined input, closing connection",
                    )),
                );
                return;
            }
        }
    }

    /// The client closed its side. Commits nothing: an open TRANSACTION ends without
    /// deleting anything. A commit already requested by `QUIT` still completes.
    pub fn handle_eof(&mut self, _now: Instant) {
        match self.state {
            State::Closed | State::Update => {}
            State::Authorization | State::Transaction => {
                self.finish(CloseReason::PeerClosed, None);
            }
        }
    }

    /// Timer expiry. Calls before [`ServerSession::poll_timeout`]'s deadline are no-ops.
    ///
    /// Output drained since the timer was armed (a long RETR the client is reading) re-arms
    /// it, and so does a request the application has not answered yet. Output queued that
    /// the client did not read for a whole timeout means it stopped reading: the session
    /// closes without a reply (none could be delivered) and drops the queued output, so the
    /// connection and its buffers are released.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.poll_timeout() else {
            return;
        };
        if now < deadline {
            return;
        }
        if std::mem::take(&mut self.transmitted) {
            self.last_activity = now;
            return;
        }
        // Waiting on the application (a login being checked, message data not yet read
        // from the store) is not the client's idleness.
        let waiting_for_application = match &self.pending {
            None => false,
            Some(Pending {
                kind: PendingKind::Retrieve { .. },
                ..
            }) => self.wants_message_data(),
            Some(_) => true,
        };
        if waiting_for_application {
            self.last_activity = now;
            return;
        }
        if !self.out.is_empty() {
            self.finish(CloseReason::Timeout, None);
            self.out.clear();
            self.queued = 0;
            return;
        }
        if self.tls_pending {
            // Mid-handshake: plain text would corrupt the TLS stream.
            self.finish(CloseReason::Timeout, None);
            return;
        }
        let text = if self.state == State::Authorization {
            "Autologout: no login in time, closing connection"
        } else {
            "Autologout: idle for too long, closing connection"
        };
        self.finish(CloseReason::Timeout, Some(StatusLine::err(text)));
    }

    /// The TLS handshake requested by [`Event::TlsRequested`] completed. The session forgets
    /// what the client said before (RFC 2595 §4) and reads commands again.
    pub fn handle_tls_established(&mut self, now: Instant) {
        if !self.tls_pending || self.state == State::Closed {
            return;
        }
        self.tls_pending = false;
        self.tls_active = true;
        self.last_activity = now;
        self.user_given = None;
        self.utf8 = false;
        self.language = None;
        self.framer.clear();
    }

    // ------------------------------------------------------------------ commands

    /// Answers the request `id`. Misuse (unknown id, a reply that does not fit, a closed
    /// session) hands the reply back.
    pub fn send(&mut self, id: CommandId, reply: Reply) -> Result<(), SendError<Reply>> {
        if self.state == State::Closed {
            return Err(SendError::new(SendErrorKind::Closed, reply));
        }
        if self.draining == Some(id) {
            return match reply {
                Reply::MessageData { last, .. } => {
                    if last {
                        self.draining = None;
                    }
                    Ok(())
                }
                other => Err(SendError::new(SendErrorKind::UnexpectedReply, other)),
            };
        }
        let Some(pending) = self.pending.take_if(|p| p.id == id) else {
            return Err(SendError::new(SendErrorKind::UnknownId, reply));
        };
        match (pending.kind, reply) {
            (PendingKind::Login { user }, Reply::LoginAccepted { maildrop }) => {
                self.login_accepted(Some(user), maildrop);
            }
            (PendingKind::Sasl, Reply::LoginAccepted { maildrop }) => {
                self.login_accepted(None, maildrop);
            }
            (
                PendingKind::Login { .. } | PendingKind::Sasl,
                Reply::LoginRejected { code, text },
            ) => {
                self.login_rejected(code, text);
            }
            (PendingKind::Sasl, Reply::SaslChallenge { data }) => {
                let mut line = Vec::new();
                encode_continuation(&data, &mut line);
                self.queue_bytes(&line);
                self.sasl_awaiting_client = Some(id);
            }
            (
                PendingKind::Retrieve {
                    started,
                    index,
                    top,
                },
                Reply::MessageData { chunk, last },
            ) => {
                if !started {
                    self.start_message(id, index, top);
                }
                self.push_message_data(id, chunk, last);
                if !last {
                    self.pending = Some(Pending {
                        id,
                        kind: PendingKind::Retrieve {
                            started: true,
                            index,
                            top,
                        },
                    });
                }
            }
            (PendingKind::Retrieve { started: false, .. }, Reply::MessageUnavailable { text }) => {
                self.queue_line(&StatusLine::err(text));
            }
            (PendingKind::Commit, Reply::CommitSucceeded) => {
                let left = self.maildrop.iter().filter(|m| !m.deleted).count();
                let text = if left == 0 {
                    "POP3 server signing off (maildrop empty)".to_owned()
                } else {
                    format!("POP3 server signing off ({left} messages left)")
                };
                self.finish(CloseReason::Quit, Some(StatusLine::ok(text)));
                return Ok(());
            }
            (PendingKind::Commit, Reply::CommitFailed { text }) => {
                self.finish(
                    CloseReason::Quit,
                    Some(StatusLine::err_with(ResponseCode::SysTemp, text)),
                );
                return Ok(());
            }
            (kind, reply) => {
                self.pending = Some(Pending { id, kind });
                return Err(SendError::new(SendErrorKind::UnexpectedReply, reply));
            }
        }
        self.process();
        Ok(())
    }

    /// Ends the session from the application side (e.g. server shutdown): queues
    /// `-ERR [SYS/TEMP] text` (unless a message body is half sent) and reports
    /// `Closed { Shutdown }`. Commits nothing.
    pub fn close(&mut self, now: Instant, text: &str) {
        self.close_with_code(now, ResponseCode::SysTemp, text);
    }

    /// Like [`close`](Self::close), with the response code the application chose: a
    /// session whose access was revoked by a policy change ends with `-ERR [AUTH] text`
    /// rather than a temporary-failure code that invites the client to retry at once.
    pub fn close_with_code(&mut self, _now: Instant, code: ResponseCode, text: &str) {
        self.finish(
            CloseReason::Shutdown(text.to_owned()),
            Some(StatusLine::err_with(code, text)),
        );
    }

    // ------------------------------------------------------------------ outputs

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Appends at most `limits.transmit_chunk` bytes of output to `buf` and returns how many
    /// (0: nothing to send now). Message bodies are dot-stuffed here, lazily. Draining output
    /// may let the session resume pipelined commands: poll events again afterwards.
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> usize {
        let limit = self.config.limits.transmit_chunk.max(MIN_TRANSMIT_CHUNK);
        let start = buf.len();
        let mut message_progress = false;
        while let Some(seg) = self.out.front_mut() {
            let room = limit.saturating_sub(buf.len().saturating_sub(start));
            if room == 0 {
                break;
            }
            match seg {
                Segment::Raw { data, pos } => {
                    let rest = data.get(*pos..).unwrap_or_default();
                    let n = rest.len().min(room);
                    buf.extend_from_slice(rest.get(..n).unwrap_or_default());
                    *pos = pos.saturating_add(n);
                    self.queued = self.queued.saturating_sub(n);
                    if *pos >= data.len() {
                        self.out.pop_front();
                    }
                }
                Segment::Message(m) => {
                    message_progress = true;
                    if let Some(chunk) = m.chunks.front_mut() {
                        let consumed = m.stuffer.encode(chunk, buf, room);
                        chunk.advance(consumed.min(chunk.len()));
                        self.queued = self.queued.saturating_sub(consumed);
                        if chunk.is_empty() {
                            m.chunks.pop_front();
                        }
                        if m.stuffer.is_done() {
                            let id = m.id;
                            let dropped: usize = m.chunks.iter().map(Bytes::len).sum();
                            self.queued = self.queued.saturating_sub(dropped);
                            m.chunks.clear();
                            if !m.complete {
                                m.complete = true;
                                if self.pending.as_ref().is_some_and(|p| p.id == id) {
                                    self.pending = None;
                                    self.draining = Some(id);
                                }
                            }
                        } else if consumed == 0 {
                            break; // not enough room for progress
                        }
                    } else if m.complete {
                        if room < 5 {
                            break;
                        }
                        m.stuffer.finish(buf);
                        self.out.pop_front();
                    } else {
                        break; // waiting for the application
                    }
                }
            }
        }
        let n = buf.len().saturating_sub(start);
        if n > 0 {
            if message_progress || !self.out.is_empty() {
                self.transmitted = true;
            }
            self.process();
        }
        n
    }

    /// When [`ServerSession::handle_timeout`] should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timeout = match self.state {
            State::Closed => return None,
            State::Authorization => self.config.limits.pre_auth_timeout,
            State::Transaction | State::Update => self.config.limits.authenticated_timeout,
        }?;
        self.last_activity.checked_add(timeout)
    }

    // ------------------------------------------------------------------ getters

    /// The RFC 1939 state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Back-pressure gate: `false` while closed, during the TLS handshake, while a request
    /// awaits the application, or while queued output is above the high-water mark.
    pub fn wants_input(&self) -> bool {
        self.state != State::Closed
            && !self.tls_pending
            && self.pending.is_none()
            && self.queued <= self.config.limits.max_buffered_output
            && self.framer.buffered() < self.config.limits.max_buffered_input
    }

    /// `true` while a `Retrieve` is streaming, queued output is below the high-water mark and
    /// the TOP cutoff has not been reached.
    pub fn wants_message_data(&self) -> bool {
        self.state != State::Closed
            && matches!(
                self.pending,
                Some(Pending {
                    kind: PendingKind::Retrieve { .. },
                    ..
                })
            )
            && self.queued < self.config.limits.max_buffered_output
    }

    /// Closed and all output drained: the driver may close the socket.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed && self.out.is_empty()
    }

    /// TLS is active (implicit, or after `STLS`).
    pub fn is_tls_active(&self) -> bool {
        self.tls_active
    }

    /// The logged-in user for USER/PASS and APOP logins (SASL identities are known only to
    /// the application).
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The language selected with `LANG`, if any.
    pub fn language(&self) -> Option<&str> {
        self.language.as_deref()
    }

    /// The client sent `UTF8` (RFC 6856).
    pub fn is_utf8(&self) -> bool {
        self.utf8
    }

    pub(crate) fn buffered_input(&self) -> usize {
        self.framer.buffered()
    }

    pub(crate) fn buffered_output(&self) -> usize {
        self.queued
    }

    pub(crate) fn transmit_limit(&self) -> usize {
        self.config.limits.transmit_chunk.max(MIN_TRANSMIT_CHUNK)
    }

    /// Observable state for the "spurious timeout is a no-op" check.
    pub(crate) fn snapshot(&self) -> impl PartialEq + fmt::Debug + use<> {
        (
            self.state,
            self.queued,
            self.out.len(),
            self.events.len(),
            self.last_activity,
            self.pending.as_ref().map(|p| p.id),
            self.framer.buffered(),
            self.bad_commands,
            self.auth_failures,
        )
    }

    // ------------------------------------------------------------------ internals

    fn can_process(&self) -> bool {
        self.state != State::Closed
            && self.state != State::Update
            && !self.tls_pending
            && self.pending.is_none()
            && self.queued <= self.config.limits.max_buffered_output
    }

    fn process(&mut self) {
        while self.can_process() {
            let limit = if self.sasl_awaiting_client.is_some() {
                self.config.limits.max_sasl_response.saturating_add(2)
            } else {
                self.config.limits.max_command_line
            };
            match self.framer.next_frame(limit.max(1)) {
                None => break,
                Some(Frame::TooLong) => {
                    self.trace_command(|| "(line too long)".to_owned());
                    match self.sasl_awaiting_client.take() {
                        Some(id) => self.sasl_aborted(id),
                        None => self.bad_command(ProtocolError::LineTooLong),
                    }
                }
                Some(Frame::Line(line)) => match self.sasl_awaiting_client.take() {
                    Some(id) => {
                        // SASL continuation lines carry credentials; a cancellation
                        // (`*`) shows in the reply that follows.
                        self.trace_command(|| TRACE_REDACTED.to_owned());
                        self.on_sasl_line(id, &line);
                    }
                    None => {
                        self.trace_command(|| traced_command(&line));
                        self.on_line(&line);
                    }
                },
            }
        }
    }

    fn next_id(&mut self) -> CommandId {
        let id = CommandId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    fn request(&mut self, id: CommandId, kind: PendingKind, command: Request) {
        self.pending = Some(Pending { id, kind });
        self.events
            .push_back(Event::CommandReceived { id, command });
    }

    /// Reports a command line read when tracing; `line` is only built then.
    fn trace_command(&mut self, line: impl FnOnce() -> String) {
        if self.config.trace {
            self.events.push_back(Event::CommandTraced { line: line() });
        }
    }

    fn queue_bytes(&mut self, bytes: &[u8]) {
        // Every response the session queues starts with its status line (listings are
        // queued whole, message bodies go through `Segment::Message`), except SASL
        // challenges (`+ `), which the trace leaves out.
        if self.config.trace && (bytes.starts_with(b"+OK") || bytes.starts_with(b"-ERR")) {
            let end = bytes
                .windows(2)
                .position(|w| w == b"\r\n")
                .unwrap_or(bytes.len());
            let line = trace_text(bytes.get(..end).unwrap_or_default());
            self.events.push_back(Event::ReplyTraced { line });
        }
        self.queued = self.queued.saturating_add(bytes.len());
        if let Some(Segment::Raw { data, .. }) = self.out.back_mut() {
            data.extend_from_slice(bytes);
        } else {
            self.out.push_back(Segment::Raw {
                data: bytes.to_vec(),
                pos: 0,
            });
        }
    }

    fn queue_line(&mut self, line: &StatusLine) {
        let mut v = Vec::new();
        line.encode(&mut v);
        self.queue_bytes(&v);
    }

    fn ok(&mut self, text: impl Into<String>) {
        self.queue_line(&StatusLine::ok(text));
    }

    /// Ends the session: optional last line, `Closed` event, nothing more read.
    fn finish(&mut self, reason: CloseReason, line: Option<StatusLine>) {
        if self.state == State::Closed {
            return;
        }
        // A half-sent body cannot be followed by a status line: cut it off.
        let mut cut = false;
        if let Some(at) = self
            .out
            .iter()
            .position(|s| matches!(s, Segment::Message(m) if !m.complete))
        {
            self.out.truncate(at);
            self.queued = self
                .out
                .iter()
                .map(|s| match s {
                    Segment::Raw { data, pos } => data.len().saturating_sub(*pos),
                    Segment::Message(m) => m.chunks.iter().map(Bytes::len).sum(),
                })
                .sum();
            cut = true;
        }
        if let (Some(line), false) = (line, cut) {
            self.queue_line(&line);
        }
        self.state = State::Closed;
        self.pending = None;
        self.draining = None;
        self.sasl_awaiting_client = None;
        self.tls_pending = false;
        self.framer.clear();
        self.events.push_back(Event::Closed { reason });
    }

    fn bad_command(&mut self, err: ProtocolError) {
        self.bad_commands = self.bad_commands.saturating_add(1);
        if let Some(max) = self.config.limits.max_bad_commands
            && self.bad_commands >= max
        {
            self.finish(
                CloseReason::TooManyBadCommands,
                Some(StatusLine::err("Too many bad commands, closing connection")),
            );
            return;
        }
        self.queue_line(&err.status_line());
    }

    fn clear_text_allowed(&self) -> bool {
        self.tls_active || self.config.allow_clear_text_without_tls
    }

    fn offered_mechanisms(&self) -> Vec<String> {
        let clear = self.clear_text_allowed();
        self.config
            .sasl_mechanisms
            .iter()
            .filter(|m| clear || !m.clear_text)
            .map(|m| m.name.clone())
            .collect()
    }

    fn capabilities(&self) -> Vec<Capability> {
        let authz = self.state == State::Authorization;
        let cfg = &self.config;
        let mut caps = vec![Capability::Top, Capability::Uidl];
        if authz && cfg.user_pass_enabled && self.clear_text_allowed() {
            caps.push(Capability::User);
        }
        if authz {
            let mechs = self.offered_mechanisms();
            if !mechs.is_empty() {
                caps.push(Capability::Sasl(mechs));
            }
        }
        caps.push(Capability::RespCodes);
        if authz {
            caps.push(Capability::AuthRespCode);
        }
        caps.push(Capability::Pipelining);
        if authz && cfg.stls_available && !self.tls_active {
            caps.push(Capability::Stls);
        }
        if let Some(d) = cfg.login_delay {
            caps.push(Capability::LoginDelay {
                seconds: d.as_secs(),
                per_user: false,
            });
        }
        if let Some(policy) = cfg.expire {
            caps.push(Capability::Expire {
                policy,
                per_user: false,
            });
        }
        if authz && cfg.utf8_enabled {
            caps.push(Capability::Utf8 { user: true });
        }
        if !cfg.languages.is_empty() {
            caps.push(Capability::Lang);
        }
        if let Some(text) = &cfg.implementation {
            caps.push(Capability::Implementation(text.clone()));
        }
        caps
    }

    fn live(&self) -> (u32, u64) {
        self.maildrop
            .iter()
            .filter(|m| !m.deleted)
            .fold((0u32, 0u64), |(n, s), m| {
                (n.saturating_add(1), s.saturating_add(m.size))
            })
    }

    /// Index of a live message, or the error to send.
    fn message_index(&self, n: u32) -> Result<usize, ProtocolError> {
        let idx = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .ok_or(ProtocolError::NoSuchMessage)?;
        match self.maildrop.get(idx) {
            None => Err(ProtocolError::NoSuchMessage),
            Some(m) if m.deleted => Err(ProtocolError::MessageDeleted),
            Some(_) => Ok(idx),
        }
    }

    fn on_line(&mut self, line: &[u8]) {
        let cmd = match Command::parse(line) {
            Ok(c) => c,
            Err(e) => return self.bad_command(ProtocolError::Syntax(e)),
        };
        match self.state {
            State::Authorization => self.authorization(cmd),
            State::Transaction => self.transaction(cmd),
            State::Update | State::Closed => {}
        }
    }

    fn authorization(&mut self, cmd: Command<'_>) {
        let cfg = Arc::clone(&self.config);
        match cmd {
            Command::User(name) => {
                if !cfg.user_pass_enabled {
                    return self.bad_command(ProtocolError::NotAvailable);
                }
                if !self.clear_text_allowed() {
                    return self.bad_command(ProtocolError::TlsRequired);
                }
                self.user_given = Some(name.as_str().to_owned());
                self.ok("Send PASS");
            }
            Command::Pass(pw) => {
                if !cfg.user_pass_enabled {
                    return self.bad_command(ProtocolError::NotAvailable);
                }
                if !self.clear_text_allowed() {
                    return self.bad_command(ProtocolError::TlsRequired);
                }
                let Some(user) = self.user_given.take() else {
                    return self.bad_command(ProtocolError::PassWithoutUser);
                };
                let id = self.next_id();
                let command = Request::Login {
                    user: user.clone(),
                    password: Secret::new(pw.as_bytes().to_vec()),
                };
                self.request(id, PendingKind::Login { user }, command);
            }
            Command::Apop { name, digest } => {
                let Some(timestamp) = self.apop_timestamp.clone() else {
                    return self.bad_command(ProtocolError::NotAvailable);
                };
                self.user_given = None;
                let mut hex = String::with_capacity(32);
                for b in digest {
                    hex.push(char::from(HEX[usize::from(b >> 4)]));
                    hex.push(char::from(HEX[usize::from(b & 0x0f)]));
                }
                let user = name.as_str().to_owned();
                let id = self.next_id();
                let command = Request::Apop {
                    user: user.clone(),
                    digest: hex,
                    timestamp,
                };
                self.request(id, PendingKind::Login { user }, command);
            }
            Command::Auth {
                mechanism,
                initial_response,
            } => {
                let Some(m) = cfg
                    .sasl_mechanisms
                    .iter()
                    .find(|m| mechanism.eq_ignore_case(&m.name))
                else {
                    return self.bad_command(ProtocolError::UnsupportedMechanism);
                };
                if m.clear_text && !self.clear_text_allowed() {
                    return self.bad_command(ProtocolError::TlsRequired);
                }
                self.user_given = None;
                let id = self.next_id();
                let command = Request::Authenticate {
                    mechanism: m.name.clone(),
                    initial_response,
                };
                self.request(id, PendingKind::Sasl, command);
            }
            Command::AuthList => {
                let mut v = Vec::new();
                StatusLine::ok("SASL mechanisms follow").encode(&mut v);
                for m in self.offered_mechanisms() {
                    v.extend_from_slice(m.as_bytes());
                    v.extend_from_slice(b"\r\n");
                }
                v.extend_from_slice(TERMINATOR);
                self.queue_bytes(&v);
            }
            Command::Capa => self.capa(),
            Command::Stls => {
                if self.tls_active {
                    return self.bad_command(ProtocolError::TlsActive);
                }
                if !cfg.stls_available {
                    return self.bad_command(ProtocolError::NotAvailable);
                }
                self.ok("Begin TLS negotiation");
                self.tls_pending = true;
                // RFC 2595 §4: nothing the client pipelined behind STLS may be used.
                self.framer.clear();
                self.user_given = None;
                self.events.push_back(Event::TlsRequested);
            }
            Command::Utf8 => {
                if !cfg.utf8_enabled {
                    return self.bad_command(ProtocolError::NotAvailable);
                }
                self.utf8 = true;
                self.ok("UTF8 enabled");
            }
            Command::Lang(arg) => self.lang(arg),
            Command::Quit => {
                self.finish(
                    CloseReason::Quit,
                    Some(StatusLine::ok("POP3 server signing off")),
                );
            }
            Command::Stat
            | Command::List(_)
            | Command::Retr(_)
            | Command::Dele(_)
            | Command::Noop
            | Command::Rset
            | Command::Top { .. }
            | Command::Uidl(_) => self.bad_command(ProtocolError::WrongState),
        }
    }

    fn transaction(&mut self, cmd: Command<'_>) {
        match cmd {
            Command::Stat => {
                let (count, size) = self.live();
                let mut v = Vec::new();
                DropListing { count, size }.encode(&mut v);
                self.queue_bytes(&v);
            }
            Command::List(None) => {
                let (count, size) = self.live();
                let mut v = Vec::new();
                StatusLine::ok(format!("{count} messages ({size} octets)")).encode(&mut v);
                for (i, m) in self.maildrop.iter().enumerate() {
                    if !m.deleted {
                        let message = u32::try_from(i.saturating_add(1)).unwrap_or(u32::MAX);
                        ScanListing {
                            message,
                            size: m.size,
                        }
                        .encode(&mut v);
                    }
                }
                v.extend_from_slice(TERMINATOR);
                self.queue_bytes(&v);
            }
            Command::List(Some(n)) => match self.message_index(n) {
                Ok(i) => {
                    let size = self.maildrop.get(i).map_or(0, |m| m.size);
                    self.ok(format!("{n} {size}"));
                }
                Err(e) => self.queue_line(&e.status_line()),
            },
            Command::Uidl(None) => {
                let mut v = Vec::new();
                StatusLine::ok("").encode(&mut v);
                for (i, m) in self.maildrop.iter().enumerate() {
                    if !m.deleted {
                        let message = u32::try_from(i.saturating_add(1)).unwrap_or(u32::MAX);
                        UidListing {
                            message,
                            uid: m.uid.clone(),
                        }
                        .encode(&mut v);
                    }
                }
                v.extend_from_slice(TERMINATOR);
                self.queue_bytes(&v);
            }
            Command::Uidl(Some(n)) => match self.message_index(n) {
                Ok(i) => {
                    let uid = self.maildrop.get(i).map(|m| m.uid.to_string());
                    self.ok(format!("{n} {}", uid.unwrap_or_default()));
                }
                Err(e) => self.queue_line(&e.status_line()),
            },
            Command::Retr(n) => self.retrieve(n, None),
            Command::Top { message, lines } => self.retrieve(message, Some(lines)),
            Command::Dele(n) => match self.message_index(n) {
                Ok(i) => {
                    if let Some(m) = self.maildrop.get_mut(i) {
                        m.deleted = true;
                    }
                    self.ok(format!("message {n} deleted"));
                }
                Err(e) => self.queue_line(&e.status_line()),
            },
            Command::Rset => {
                for m in &mut self.maildrop {
                    m.deleted = false;
                }
                let (count, size) = self.live();
                self.ok(format!("maildrop has {count} messages ({size} octets)"));
            }
            Command::Noop => self.ok(""),
            Command::Capa => self.capa(),
            Command::Lang(arg) => self.lang(arg),
            Command::Quit => {
                self.state = State::Update;
                let deleted = self
                    .maildrop
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| m.deleted)
                    .map(|(i, _)| u32::try_from(i.saturating_add(1)).unwrap_or(u32::MAX))
                    .collect();
                let id = self.next_id();
                self.request(id, PendingKind::Commit, Request::Commit { deleted });
            }
            Command::User(_)
            | Command::Pass(_)
            | Command::Apop { .. }
            | Command::Auth { .. }
            | Command::AuthList
            | Command::Stls
            | Command::Utf8 => self.bad_command(ProtocolError::WrongState),
        }
    }

    fn retrieve(&mut self, n: u32, top_lines: Option<u32>) {
        match self.message_index(n) {
            Ok(i) => {
                let uid = match self.maildrop.get(i) {
                    Some(m) => m.uid.clone(),
                    None => return,
                };
                let id = self.next_id();
                self.request(
                    id,
                    PendingKind::Retrieve {
                        started: false,
                        index: i,
                        top: top_lines,
                    },
                    Request::Retrieve {
                        message: n,
                        uid,
                        top_lines,
                    },
                );
            }
            Err(e) => self.queue_line(&e.status_line()),
        }
    }

    fn capa(&mut self) {
        let mut v = Vec::new();
        encode_capabilities(&self.capabilities(), &mut v);
        self.queue_bytes(&v);
    }

    fn lang(&mut self, arg: Option<LangRange<'_>>) {
        let langs = &self.config.languages;
        if langs.is_empty() {
            return self.bad_command(ProtocolError::NotAvailable);
        }
        match arg {
            None => {
                let mut v = Vec::new();
                StatusLine::ok("Language listing follows").encode(&mut v);
                for tag in langs {
                    LanguageListing {
                        tag: tag.clone(),
                        description: tag.clone(),
                    }
                    .encode(&mut v);
                }
                v.extend_from_slice(TERMINATOR);
                self.queue_bytes(&v);
            }
            Some(range) => {
                let chosen = if range.is_wildcard() {
                    langs.first().cloned()
                } else {
                    langs
                        .iter()
                        .find(|l| l.eq_ignore_ascii_case(range.as_str()))
                        .cloned()
                };
                match chosen {
                    Some(tag) => {
                        self.ok(format!("{tag} Language changed"));
                        self.language = Some(tag);
                    }
                    None => self.queue_line(&ProtocolError::UnsupportedLanguage.status_line()),
                }
            }
        }
    }

    fn on_sasl_line(&mut self, id: CommandId, line: &[u8]) {
        match SaslResponse::parse(line) {
            Ok(SaslResponse::Cancel) => {
                self.queue_line(&StatusLine::err("Authentication cancelled"));
                self.events.push_back(Event::AuthenticationCancelled { id });
            }
            Ok(SaslResponse::Data(data)) => {
                self.request(id, PendingKind::Sasl, Request::SaslResponse { data });
            }
            Err(_) => self.sasl_aborted(id),
        }
    }

    fn sasl_aborted(&mut self, id: CommandId) {
        self.events.push_back(Event::AuthenticationCancelled { id });
        self.bad_command(ProtocolError::BadSaslResponse);
    }

    fn login_accepted(&mut self, user: Option<String>, maildrop: Vec<MaildropEntry>) {
        self.state = State::Transaction;
        self.user_given = None;
        self.maildrop = maildrop
            .into_iter()
            .map(|e| Msg {
                size: e.size,
                uid: e.uid,
                deleted: false,
            })
            .collect();
        let (count, size) = self.live();
        let text = match &user {
            Some(u) => format!("{u}'s maildrop has {count} messages ({size} octets)"),
            None => format!("maildrop has {count} messages ({size} octets)"),
        };
        self.user = user;
        self.ok(text);
    }

    fn login_rejected(&mut self, code: Option<ResponseCode>, text: String) {
        let code = code.unwrap_or(ResponseCode::Auth);
        let counts = !matches!(
            code,
            ResponseCode::InUse
                | ResponseCode::LoginDelay
                | ResponseCode::SysTemp
                | ResponseCode::SysPerm
        );
        if counts {
            self.auth_failures = self.auth_failures.saturating_add(1);
            if let Some(max) = self.config.limits.max_auth_failures
                && self.auth_failures >= max
            {
                self.finish(
                    CloseReason::TooManyAuthFailures,
                    Some(StatusLine::err_with(
                        ResponseCode::Auth,
                        "Too many authentication failures, closing connection",
                    )),
                );
                return;
            }
        }
        self.queue_line(&StatusLine::err_with(code, text));
    }

    fn start_message(&mut self, id: CommandId, idx: usize, top: Option<u32>) {
        let text = match top {
            None => format!("{} octets", self.maildrop.get(idx).map_or(0, |m| m.size)),
            Some(_) => "top of message follows".to_owned(),
        };
        self.ok(text);
        self.out.push_back(Segment::Message(Box::new(MessageOut {
            stuffer: DotStuffer::new(top),
            chunks: VecDeque::new(),
            complete: false,
            id,
        })));
    }

    fn push_message_data(&mut self, id: CommandId, chunk: Bytes, last: bool) {
        let Some(Segment::Message(m)) = self.out.back_mut() else {
            return;
        };
        if m.id != id {
            return;
        }
        if !chunk.is_empty() && !m.stuffer.is_done() {
            self.queued = self.queued.saturating_add(chunk.len());
            m.chunks.push_back(chunk);
        }
        if last {
            m.complete = true;
        }
    }
}
