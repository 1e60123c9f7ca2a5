//! SASL server mechanisms as step machines: [`PlainServer`] (RFC 4616), [`LoginServer`]
//! (draft-murchison-sasl-login) and [`NtlmServer`] (MS-NLMP through SASL, as Exchange's
//! POP3 and IMAP offer it).
//!
//! A mechanism consumes client responses and produces [`Step`]s. The protocol session
//! (POP3 `AUTH`, IMAP `AUTHENTICATE`) owns the framing: it base64-decodes what the client
//! sent, hands the bytes to [`step`](ServerMechanism::step), base64-encodes a
//! [`Step::Challenge`] into a continuation line, and turns the final [`Step::Success`] or
//! [`Step::Failure`] into its OK/error reply. A client's `*` cancellation is noticed by the
//! session; call [`abort`](ServerMechanism::abort) to finish the machine.
//!
//! Initial responses (RFC 4422 §5, SASL-IR, POP3 `AUTH PLAIN <base64>`) are passed to the
//! first `step` as `Some(bytes)`; `None` on the first call means the client sent none.
//! An empty initial response (`=`) is `Some(&[])` and differs from none.
//!
//! ```
//! use cas_auth::sasl::{Mechanism, PlainServer, Step};
//! use cas_auth::{hash_password_with, FileCredentialStore, PasswordHashParams};
//!
//! let phc = hash_password_with(b"tanstaaftanstaaf", b"an example salt", &PasswordHashParams::dangerous_low_cost())?;
//! let store = FileCredentialStore::parse(&format!("tim:{phc}\n"))?;
//!
//! assert_eq!(Mechanism::from_name("plain"), Some(Mechanism::Plain));
//! let mut plain = PlainServer::new();
//! // No initial response: the server sends an empty challenge ("+ " in POP3).
//! assert!(matches!(plain.step(&store, None), Step::Challenge(c) if c.is_empty()));
//! match plain.step(&store, Some(b"\0tim\0tanstaaftanstaaf")) {
//!     Step::Success { authorization_id, authentication_id } => {
//!         assert_eq!((authorization_id.as_str(), authentication_id.as_str()), ("tim", "tim"));
//!     }
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::str::FromStr;

use crate::store::{CredentialStore, StoreError};

mod login;
mod ntlm;
mod plain;

pub use login::{LoginServer, PASSWORD_CHALLENGE, USERNAME_CHALLENGE};
pub use ntlm::NtlmServer;
pub use plain::{PlainMessage, PlainServer};

/// Longest field (identity, password) a mechanism accepts by default, in octets.
///
/// RFC 4616 §2 requires servers to accept at least 255 octets per field; this default is
/// larger so that long passphrases (Windows allows 256 characters, up to 768 UTF-8 octets)
/// pass, while still bounding the work a client can cause.
pub const DEFAULT_MAX_FIELD_LEN: usize = 1024;

/// The least a field limit may be: RFC 4616 §2's "MUST accept up to 255 octets".
pub const MIN_MAX_FIELD_LEN: usize = 255;

/// What a mechanism wants next.
#[derive(Clone, Debug)]
#[must_use]
pub enum Step {
    /// Send these bytes as a challenge (a continuation line, base64-encoded by the
    /// session; empty challenges are `+ ` in POP3 and IMAP) and pass the client's answer
    /// to the next `step`.
    Challenge(Vec<u8>),
    /// The client has authenticated. The exchange is over.
    Success {
        /// The identity the client acts as (whose mailbox it opens).
        authorization_id: String,
        /// The identity whose credentials were verified, spelled as the store spells it
        /// ([`CredentialStore::canonical_user`]).
        authentication_id: String,
    },
    /// The exchange failed. It is over.
    Failure(SaslFailure),
}

impl Step {
    /// Whether this step ends the exchange (success or failure).
    pub fn is_final(&self) -> bool {
        !matches!(self, Step::Challenge(_))
    }
}

/// Why a SASL exchange failed.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SaslFailure {
    /// The client's response does not follow the mechanism's syntax.
    #[error("malformed client response: {0}")]
    Malformed(#[from] MalformedKind),
    /// Unknown user or wrong password; deliberately not told apart.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The credentials are good, but the authenticated user may not act as the requested
    /// authorization identity.
    #[error("{authentication_id:?} may not act as {authorization_id:?}")]
    AuthorizationRefused {
        /// The verified identity.
        authentication_id: String,
        /// The identity asked for.
        authorization_id: String,
    },
    /// The client cancelled the exchange (`*`), or the application aborted it.
    #[error("authentication exchange aborted")]
    Aborted,
    /// The credential store could not answer; a temporary condition, not a wrong password.
    #[error("credential store unavailable")]
    StoreUnavailable(#[source] StoreError),
    /// `step` was called after the exchange had ended.
    #[error("authentication exchange has already completed")]
    AlreadyCompleted,
    /// NTLM refused the exchange for a reason of its own (malformed message, NTLMv1 or
    /// anonymous disabled, foreign domain, MIC or channel-binding failure, clock skew).
    /// Wrong passwords and store outages use [`InvalidCredentials`] and
    /// [`StoreUnavailable`].
    ///
    /// [`InvalidCredentials`]: SaslFailure::InvalidCredentials
    /// [`StoreUnavailable`]: SaslFailure::StoreUnavailable
    #[error("NTLM: {0}")]
    Ntlm(#[source] crate::ntlm::NtlmError),
}

impl SaslFailure {
    /// Whether the failure is temporary (the store could not answer) rather than the
    /// client's fault. POP3 servers answer it with `-ERR [SYS/TEMP]` (RFC 3206), IMAP
    /// servers with `NO [UNAVAILABLE]` (RFC 5530), and neither counts it as a failed login.
    pub fn is_temporary(&self) -> bool {
        matches!(self, SaslFailure::StoreUnavailable(_))
    }

    /// Whether the failure is a rejected login (bad credentials or authorization), the kind
    /// that counts towards a failed-login limit and gets `-ERR [AUTH]` / `NO
    /// [AUTHENTICATIONFAILED]`.
    pub fn is_rejected_login(&self) -> bool {
        match self {
            SaslFailure::InvalidCredentials | SaslFailure::AuthorizationRefused { .. } => true,
            SaslFailure::Ntlm(e) => e.is_rejected_login(),
            _ => false,
        }
    }
}

/// How a client response breaks the mechanism's syntax.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MalformedKind {
    /// PLAIN: fewer than two NUL separators.
    #[error("missing NUL separator")]
    MissingSeparator,
    /// PLAIN: more than two NULs (a NUL inside the password); LOGIN: a NUL in the user name.
    #[error("unexpected NUL")]
    UnexpectedNul,
    /// A field is not valid UTF-8.
    #[error("not valid UTF-8")]
    NotUtf8,
    /// The authentication identity (user name) is empty.
    #[error("empty authentication identity")]
    EmptyAuthenticationId,
    /// The password is empty.
    #[error("empty password")]
    EmptyPassword,
    /// A field, or the whole message, exceeds the configured limit.
    #[error("response longer than the limit of {max} octets per field")]
    TooLong {
        /// The per-field limit in octets.
        max: usize,
    },
    /// A response was required but the caller passed `None` after the first step.
    #[error("missing client response")]
    MissingResponse,
}

/// A server-side SASL mechanism driven step by step.
///
/// [`PlainServer`] and [`LoginServer`] implement it (their inherent methods do the same),
/// so a session can hold a `Box<dyn ServerMechanism>` for whichever mechanism the client
/// chose.
pub trait ServerMechanism: Send {
    /// The mechanism this machine runs.
    fn mechanism(&self) -> Mechanism;

    /// Feeds the next client response (`None`: no initial response) and returns what to
    /// do next. After a final step, further calls return
    /// [`SaslFailure::AlreadyCompleted`]; they never panic.
    fn step(&mut self, store: &dyn CredentialStore, input: Option<&[u8]>) -> Step;

    /// Ends the exchange because the client cancelled it. Returns
    /// `Step::Failure(SaslFailure::Aborted)`, or `AlreadyCompleted` if it had ended.
    fn abort(&mut self) -> Step;

    /// Whether a final step has been returned.
    fn is_complete(&self) -> bool;

    /// The authentication identity the client presented, once known (for logs and
    /// failed-login throttling), even if the exchange then failed.
    fn authentication_id(&self) -> Option<&str>;

    /// The current time, for mechanisms that check timestamps (NTLM's NTLMv2 timestamp
    /// window). Call it before each [`step`](ServerMechanism::step); mechanisms that do not
    /// use time ignore it (the default).
    fn set_time(&mut self, now: crate::ntlm::FileTime) {
        let _ = now;
    }
}

/// The SASL mechanisms this crate implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Mechanism {
    /// `PLAIN` (RFC 4616).
    Plain,
    /// `LOGIN` (draft-murchison-sasl-login-00; obsolete but widely used).
    Login,
    /// `NTLM` (MS-NLMP through SASL; Exchange's POP3 and IMAP, curl's default when
    /// offered). Needs the users' NT hashes in the store.
    Ntlm,
}

impl Mechanism {
    /// Every mechanism, in order of preference for advertising.
    pub const ALL: &'static [Mechanism] = &[Mechanism::Plain, Mechanism::Login, Mechanism::Ntlm];

    /// The registered name, upper case (`"PLAIN"`).
    pub const fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::Ntlm => "NTLM",
        }
    }

    /// Whether the password crosses the wire in clear text, so that the mechanism is to be
    /// offered only under TLS (RFC 4616 §5; Exchange's `SecureLogin` login type).
    pub const fn clear_text(self) -> bool {
        match self {
            Mechanism::Plain | Mechanism::Login => true,
            Mechanism::Ntlm => false,
        }
    }

    /// Looks a mechanism up by name, ignoring ASCII case (RFC 4422 §3.1 names are upper
    /// case, but clients send `auth plain` too).
    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::ALL
            .iter()
            .copied()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A mechanism name that [`Mechanism::from_name`] does not know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unsupported SASL mechanism {0:?}")]
pub struct UnknownMechanism(pub String);

impl FromStr for Mechanism {
    type Err = UnknownMechanism;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mechanism::from_name(s).ok_or_else(|| UnknownMechanism(s.to_owned()))
    }
}

/// Verifies `password` for `authentication_id` and resolves the canonical spelling.
/// Shared by the password mechanisms.
fn verify(
    store: &dyn CredentialStore,
    authentication_id: &str,
    password: &[u8],
) -> Result<String, SaslFailure> {
    match store.verify_password(authentication_id, password) {
        Ok(true) => {}
        Ok(false) => return Err(SaslFailure::InvalidCredentials),
        Err(e) => return Err(SaslFailure::StoreUnavailable(e)),
    }
    Ok(store
        .canonical_user(authentication_id)
        .map_err(SaslFailure::StoreUnavailable)?
        .unwrap_or_else(|| authentication_id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanism_registry() {
        assert_eq!(Mechanism::from_name("PLAIN"), Some(Mechanism::Plain));
        assert_eq!(Mechanism::from_name("pLaIn"), Some(Mechanism::Plain));
        assert_eq!(Mechanism::from_name("login"), Some(Mechanism::Login));
        assert_eq!(Mechanism::from_name("ntlm"), Some(Mechanism::Ntlm));
        assert_eq!(Mechanism::from_name(""), None);
        assert_eq!(Mechanism::from_name("PLAIN "), None);
        assert_eq!("LOGIN".parse::<Mechanism>(), Ok(Mechanism::Login));
        assert_eq!(
            "X".parse::<Mechanism>(),
            Err(UnknownMechanism("X".to_owned()))
        );
        assert!(Mechanism::Plain.clear_text() && Mechanism::Login.clear_text());
        assert!(!Mechanism::Ntlm.clear_text());
        assert_eq!(Mechanism::Plain.to_string(), "PLAIN");
    }

    #[test]
    fn failure_classes() {
        assert!(SaslFailure::StoreUnavailable(StoreError::Unavailable("x".into())).is_temporary());
        assert!(SaslFailure::InvalidCredentials.is_rejected_login());
        assert!(!SaslFailure::Malformed(MalformedKind::NotUtf8).is_rejected_login());
        assert!(!SaslFailure::Aborted.is_temporary());
    }
}
