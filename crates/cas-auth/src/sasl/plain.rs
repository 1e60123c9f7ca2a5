//! The PLAIN mechanism (RFC 4616).

use std::fmt;

use super::{
    DEFAULT_MAX_FIELD_LEN, MIN_MAX_FIELD_LEN, MalformedKind, Mechanism, SaslFailure,
    ServerMechanism, Step, verify,
};
use crate::store::CredentialStore;

/// A decoded PLAIN message (RFC 4616 §2):
///
/// ```text
/// message   = [authzid] UTF8NUL authcid UTF8NUL passwd
/// authcid   = 1*SAFE ; MUST accept up to 255 octets
/// authzid   = 1*SAFE ; MUST accept up to 255 octets
/// passwd    = 1*SAFE ; MUST accept up to 255 octets
/// UTF8NUL   = %x00 ; UTF-8 encoded NUL character
/// SAFE      = UTF1 / UTF2 / UTF3 / UTF4 ; any UTF-8 encoded Unicode character except NUL
/// ```
///
/// `Debug` hides the password.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PlainMessage<'a> {
    authorization_id: &'a str,
    authentication_id: &'a str,
    password: &'a str,
}

impl<'a> PlainMessage<'a> {
    /// Parses `message`, allowing each field up to `max_field_len` octets.
    pub fn parse(message: &'a [u8], max_field_len: usize) -> Result<Self, MalformedKind> {
        let too_long = MalformedKind::TooLong { max: max_field_len };
        // Bound the scan before looking at the bytes: three fields and two separators.
        if message.len() > max_field_len.saturating_mul(3).saturating_add(2) {
            return Err(too_long);
        }
        let mut parts = message.splitn(3, |&b| b == 0);
        let authzid = parts.next().unwrap_or_default();
        let authcid = parts.next().ok_or(MalformedKind::MissingSeparator)?;
        let passwd = parts.next().ok_or(MalformedKind::MissingSeparator)?;
        if passwd.contains(&0) {
            return Err(MalformedKind::UnexpectedNul);
        }
        if [authzid, authcid, passwd]
            .iter()
            .any(|f| f.len() > max_field_len)
        {
            return Err(too_long);
        }
        let utf8 = |f| std::str::from_utf8(f).map_err(|_| MalformedKind::NotUtf8);
        let (authorization_id, authentication_id, password) =
            (utf8(authzid)?, utf8(authcid)?, utf8(passwd)?);
        if authentication_id.is_empty() {
            return Err(MalformedKind::EmptyAuthenticationId);
        }
        if password.is_empty() {
            return Err(MalformedKind::EmptyPassword);
        }
        Ok(PlainMessage {
            authorization_id,
            authentication_id,
            password,
        })
    }

    /// The requested authorization identity; empty when the client sent none.
    pub fn authorization_id(&self) -> &'a str {
        self.authorization_id
    }

    /// The authentication identity (user name).
    pub fn authentication_id(&self) -> &'a str {
        self.authentication_id
    }

    /// The password.
    pub fn password(&self) -> &'a str {
        self.password
    }
}

impl fmt::Debug for PlainMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainMessage")
            .field("authorization_id", &self.authorization_id)
            .field("authentication_id", &self.authentication_id)
            .field("password", &"..")
            .finish()
    }
}

type AuthorizationPolicy = Box<dyn Fn(&str, &str) -> bool + Send + Sync>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Start,
    AwaitingResponse,
    Done,
}

/// Server side of PLAIN (RFC 4616).
///
/// One message carries everything: `[authzid] NUL authcid NUL passwd`. Without an initial
/// response the server first sends an empty challenge. The password is checked with
/// [`CredentialStore::verify_password`]; then the authorization identity is decided:
///
/// - empty, or naming the same account as the authentication identity (per
///   [`CredentialStore::canonical_user`] or exact equality): the client acts as itself;
/// - anything else is proxy authorization, refused with
///   [`SaslFailure::AuthorizationRefused`] unless a policy given to
///   [`with_authorization`](Self::with_authorization) allows it.
///
/// Authorization is decided only after the password checked out, so an unauthenticated
/// client learns nothing about the policy.
pub struct PlainServer {
    state: State,
    max_field_len: usize,
    policy: Option<AuthorizationPolicy>,
    authentication_id: Option<String>,
}

impl fmt::Debug for PlainServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainServer")
            .field("state", &self.state)
            .field("max_field_len", &self.max_field_len)
            .field("proxy_policy", &self.policy.is_some())
            .field("authentication_id", &self.authentication_id)
            .finish()
    }
}

impl Default for PlainServer {
    fn default() -> Self {
        PlainServer::new()
    }
}

impl PlainServer {
    /// A PLAIN exchange that refuses proxy authorization, with fields limited to
    /// [`DEFAULT_MAX_FIELD_LEN`] octets.
    pub fn new() -> Self {
        PlainServer {
            state: State::Start,
            max_field_len: DEFAULT_MAX_FIELD_LEN,
            policy: None,
            authentication_id: None,
        }
    }

    /// A PLAIN exchange that lets `policy(authentication_id, authorization_id)` decide
    /// whether a verified user may act as a different identity (for example an
    /// administrator opening a shared mailbox). Both names are as the store spells them
    /// when it knows them.
    pub fn with_authorization(policy: impl Fn(&str, &str) -> bool + Send + Sync + 'static) -> Self {
        PlainServer {
            policy: Some(Box::new(policy)),
            ..PlainServer::new()
        }
    }

    /// Sets the per-field limit in octets. Values below [`MIN_MAX_FIELD_LEN`] (255, the
    /// RFC 4616 minimum) are raised to it.
    pub fn with_max_field_len(mut self, max_field_len: usize) -> Self {
        self.max_field_len = max_field_len.max(MIN_MAX_FIELD_LEN);
        self
    }

    /// Feeds the client's response; `None` on the first call means "no initial response"
    /// and gets an empty challenge. See [`ServerMechanism::step`].
    pub fn step(&mut self, store: &dyn CredentialStore, input: Option<&[u8]>) -> Step {
        match (self.state, input) {
            (State::Done, _) => Step::Failure(SaslFailure::AlreadyCompleted),
            (State::Start, None) => {
                self.state = State::AwaitingResponse;
                Step::Challenge(Vec::new())
            }
            (State::AwaitingResponse, None) => {
                self.state = State::Done;
                Step::Failure(MalformedKind::MissingResponse.into())
            }
            (State::Start | State::AwaitingResponse, Some(message)) => {
                self.state = State::Done;
                match self.finish(store, message) {
                    Ok(step) => step,
                    Err(failure) => Step::Failure(failure),
                }
            }
        }
    }

    fn finish(&mut self, store: &dyn CredentialStore, message: &[u8]) -> Result<Step, SaslFailure> {
        let message = PlainMessage::parse(message, self.max_field_len)?;
        let authcid = message.authentication_id();
        self.authentication_id = Some(authcid.to_owned());
        let canonical = verify(store, authcid, message.password().as_bytes())?;

        let authzid = message.authorization_id();
        if authzid.is_empty() || authzid == authcid || authzid == canonical {
            return Ok(Step::Success {
                authorization_id: canonical.clone(),
                authentication_id: canonical,
            });
        }
        let authzid = match store
            .canonical_user(authzid)
            .map_err(SaslFailure::StoreUnavailable)?
        {
            Some(same) if same == canonical => {
                return Ok(Step::Success {
                    authorization_id: canonical.clone(),
                    authentication_id: canonical,
                });
            }
            Some(other) => other,
            None => authzid.to_owned(),
        };
        if self
            .policy
            .as_ref()
            .is_some_and(|p| p(&canonical, &authzid))
        {
            Ok(Step::Success {
                authorization_id: authzid,
                authentication_id: canonical,
            })
        } else {
            Err(SaslFailure::AuthorizationRefused {
                authentication_id: canonical,
                authorization_id: authzid,
            })
        }
    }

    /// Ends the exchange on client cancellation. See [`ServerMechanism::abort`].
    pub fn abort(&mut self) -> Step {
        if self.state == State::Done {
            return Step::Failure(SaslFailure::AlreadyCompleted);
        }
        self.state = State::Done;
        Step::Failure(SaslFailure::Aborted)
    }

    /// Whether a final step has been returned.
    pub fn is_complete(&self) -> bool {
        self.state == State::Done
    }

    /// The authentication identity the client sent, once a well-formed message arrived.
    pub fn authentication_id(&self) -> Option<&str> {
        self.authentication_id.as_deref()
    }
}

impl ServerMechanism for PlainServer {
    fn mechanism(&self) -> Mechanism {
        Mechanism::Plain
    }

    fn step(&mut self, store: &dyn CredentialStore, input: Option<&[u8]>) -> Step {
        PlainServer::step(self, store, input)
    }

    fn abort(&mut self) -> Step {
        PlainServer::abort(self)
    }

    fn is_complete(&self) -> bool {
        PlainServer::is_complete(self)
    }

    fn authentication_id(&self) -> Option<&str> {
        PlainServer::authentication_id(self)
    }
}
