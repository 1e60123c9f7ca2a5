//! Server configuration: [`Limits`], [`ServerConfig`], [`SaslMechanism`] and the
//! per-connection [`SessionOptions`].

use std::time::Duration;

use crate::fragmentizer;
use crate::types::Capability;

/// Session limits. "Unlimited" is `None`, never `0`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Line, literal and message limits of the command framing (see
    /// [`fragmentizer::Limits`] for each default and its source). `max_append_literal` is
    /// advertised as `APPENDLIMIT=`; `max_non_sync_literal: None` advertises `LITERAL+`,
    /// `Some(_)` advertises `LITERAL-` (RFC 7888).
    pub framing: fragmentizer::Limits,
    /// Longest SASL continuation line during `AUTHENTICATE`, CRLF included. Default 16 KiB:
    /// an NTLM AUTHENTICATE message is 300–600+ base64 characters and a Kerberos ticket a
    /// few KiB, more than a command line needs.
    pub max_sasl_line: usize,
    /// Largest literal before authentication (LOGIN arguments, ID values; APPEND is not
    /// allowed yet). Default 8 KiB: an unauthenticated client cannot make the server buffer
    /// megabytes, and the whole pre-auth message is bounded by the line limit plus four such
    /// literals.
    pub pre_auth_max_literal: u64,
    /// Input bytes held while a command waits for the application (pipelining). While more
    /// are buffered, [`crate::server::ServerSession::wants_input`] is `false`; a driver that
    /// keeps feeding past twice this amount has the session closed with
    /// [`crate::server::CloseReason::InputLimitExceeded`]. Default 64 KiB: dozens of
    /// pipelined FETCH/STORE commands, as clients such as mbsync send them.
    pub max_pipelined_input: usize,
    /// Bad commands (syntax errors, unknown commands, commands in the wrong state) per
    /// session before it is closed with `BYE`. Counted in total. Default `Some(20)`: clients
    /// probe a few vendor commands (`XLIST`, `X-...`) that a strict server calls unknown.
    pub max_bad_commands: Option<u32>,
    /// Failed logins (LOGIN or AUTHENTICATE) per session before it is closed with `BYE`.
    /// Default `Some(3)`, as Exchange and Dovecot.
    pub max_auth_failures: Option<u32>,
    /// Inactivity timeout before authentication. Default 60 s (Exchange
    /// `PreAuthenticatedConnectionTimeout`).
    pub pre_auth_timeout: Option<Duration>,
    /// Inactivity timeout after authentication. Default 30 min, the minimum RFC 9051 §5.4
    /// allows; [`ServerConfig::validate`] refuses less.
    pub authenticated_timeout: Option<Duration>,
    /// Longest IDLE without client activity. Default 30 min: RFC 2177 §3 tells clients to
    /// re-issue IDLE at least every 29 minutes for this reason.
    pub idle_timeout: Option<Duration>,
    /// Most bytes one [`crate::server::ServerSession::poll_transmit`] call appends. Default
    /// 16 KiB; values below 64 are treated as 64.
    pub transmit_chunk: usize,
    /// High-water mark of queued output. Above it
    /// [`crate::server::ServerSession::wants_input`] turns `false`, so a client that does not
    /// read cannot make the server queue without bound. Default 256 KiB.
    pub max_buffered_output: usize,
}

/// Default [`Limits::max_sasl_line`].
pub const DEFAULT_MAX_SASL_LINE: usize = 16 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Self {
            framing: fragmentizer::Limits::default(),
            max_sasl_line: DEFAULT_MAX_SASL_LINE,
            pre_auth_max_literal: 8 * 1024,
            max_pipelined_input: 64 * 1024,
            max_bad_commands: Some(20),
            max_auth_failures: Some(3),
            pre_auth_timeout: Some(Duration::from_secs(60)),
            authenticated_timeout: Some(Duration::from_secs(30 * 60)),
            idle_timeout: Some(Duration::from_secs(30 * 60)),
            transmit_chunk: 16 * 1024,
            max_buffered_output: 256 * 1024,
        }
    }
}

/// A SASL mechanism the application implements (with cas-auth or otherwise).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaslMechanism {
    /// Upper-case mechanism name, e.g. `PLAIN`, `LOGIN`, `NTLM`.
    pub name: String,
    /// The mechanism sends the password in the clear (PLAIN, LOGIN): neither advertised nor
    /// accepted before TLS unless [`ServerConfig::allow_clear_text_without_tls`].
    pub clear_text: bool,
}

impl SaslMechanism {
    /// A mechanism entry; the name is upper-cased.
    pub fn new(name: impl Into<String>, clear_text: bool) -> Self {
        Self {
            name: name.into().to_ascii_uppercase(),
            clear_text,
        }
    }
}

/// Why a [`ServerConfig`] is unusable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `authenticated_timeout` is below the 30 minutes RFC 9051 §5.4 requires.
    #[error("authenticated timeout below the 30 minutes RFC 9051 requires")]
    AuthenticatedTimeoutTooShort,
    /// A limit is too small to carry any command.
    #[error("limit too small: {0}")]
    LimitTooSmall(&'static str),
    /// A SASL mechanism name is not a valid atom.
    #[error("invalid SASL mechanism name {0:?}")]
    InvalidMechanism(String),
    /// The greeting holds CR, LF or NUL.
    #[error("greeting holds CR, LF or NUL")]
    InvalidGreeting,
}

/// Configuration shared by every session of a listener (`Arc`-shared).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Limits and timers.
    pub limits: Limits,
    /// Text of the `* OK` / `* PREAUTH` greeting. Default `"cas-rs IMAP server ready"`.
    pub greeting: String,
    /// `STARTTLS` is offered (the listener has a certificate and the connection is not
    /// already TLS). Default `false`.
    pub tls_available: bool,
    /// Accept `LOGIN` and clear-text SASL mechanisms without TLS. Default `false`: before
    /// TLS the capability list shows `LOGINDISABLED` and no clear-text `AUTH=` (RFC 9051
    /// §6.2.3, Exchange's `SecureLogin`).
    pub allow_clear_text_without_tls: bool,
    /// The `LOGIN` command is available (subject to TLS as above). Default `true`.
    pub login_enabled: bool,
    /// SASL mechanisms for `AUTHENTICATE`, advertised as `AUTH=<name>`. Default empty.
    pub sasl_mechanisms: Vec<SaslMechanism>,
    /// Advertise `IMAP4rev2` (RFC 9051) next to `IMAP4rev1`. Default `true`.
    pub imap4rev2: bool,
    /// Extensions the application implements, advertised after the base capabilities, e.g.
    /// `UIDPLUS`, `MOVE`, `NAMESPACE`, `ID`, `UNSELECT`, `CONDSTORE`, `QRESYNC`,
    /// `SPECIAL-USE`, `ESEARCH`, `LIST-EXTENDED`, `LIST-STATUS`, `STATUS=SIZE`, `CHILDREN`,
    /// `MULTIAPPEND`, `UTF8=ACCEPT`, `COMPRESS=DEFLATE`.
    ///
    /// The session itself adds `IMAP4rev1`, `IMAP4rev2`, `STARTTLS`, `LOGINDISABLED`,
    /// `AUTH=...`, `SASL-IR`, `LITERAL+`/`LITERAL-`, `ENABLE`, `IDLE` and `APPENDLIMIT=`
    /// (those it implements the mechanics of), and drops them from this list. The session
    /// gates commands on this list: `COMPRESS` without `COMPRESS=DEFLATE`, `ENABLE
    /// CONDSTORE` without `CONDSTORE` and so on are refused.
    pub capabilities: Vec<Capability<'static>>,
    /// Report every command and status line as [`crate::server::Event::CommandTraced`] /
    /// [`crate::server::Event::ReplyTraced`] (secrets redacted), for protocol logs.
    /// Default `false`.
    pub trace: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            greeting: "cas-rs IMAP server ready".to_owned(),
            tls_available: false,
            allow_clear_text_without_tls: false,
            login_enabled: true,
            sasl_mechanisms: Vec::new(),
            imap4rev2: true,
            capabilities: Vec::new(),
            trace: false,
        }
    }
}

impl ServerConfig {
    /// Checks the configuration for values a session cannot work with.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self
            .limits
            .authenticated_timeout
            .is_some_and(|t| t < Duration::from_secs(30 * 60))
        {
            return Err(ConfigError::AuthenticatedTimeoutTooShort);
        }
        // RFC 7162 §4 asks servers to take command lines of at least 8192 octets.
        if self.limits.framing.max_line < 1024 {
            return Err(ConfigError::LimitTooSmall(
                "framing.max_line (at least 1024)",
            ));
        }
        if self.limits.max_sasl_line < 1024 {
            return Err(ConfigError::LimitTooSmall("max_sasl_line (at least 1024)"));
        }
        if self.limits.max_pipelined_input < 1024 {
            return Err(ConfigError::LimitTooSmall(
                "max_pipelined_input (at least 1024)",
            ));
        }
        for mechanism in &self.sasl_mechanisms {
            if crate::types::Atom::new(mechanism.name.as_str()).is_err() {
                return Err(ConfigError::InvalidMechanism(mechanism.name.clone()));
            }
        }
        if self
            .greeting
            .bytes()
            .any(|b| matches!(b, b'\r' | b'\n' | 0))
        {
            return Err(ConfigError::InvalidGreeting);
        }
        Ok(())
    }

    /// Whether `capability` is in [`ServerConfig::capabilities`] (case-insensitive).
    pub fn has_capability(&self, capability: &Capability<'_>) -> bool {
        self.capabilities
            .iter()
            .any(|c| c.as_str().eq_ignore_ascii_case(capability.as_str()))
    }
}

/// Per-connection options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionOptions {
    /// TLS is already active (implicit TLS on port 993, RFC 8314): no `STARTTLS`, clear-text
    /// logins allowed.
    pub tls_active: bool,
    /// Start authenticated as this user and greet with `* PREAUTH` (RFC 9051 §7.1.4), e.g.
    /// for a connection the transport already authenticated.
    pub preauth_user: Option<String>,
}
