//! The NTLM SASL mechanism (as POP3 `AUTH NTLM` and IMAP `AUTHENTICATE NTLM` use it,
//! MS-POP3 / MS-OXIMAP): an empty challenge, then NEGOTIATE → CHALLENGE → AUTHENTICATE.

use std::fmt;
use std::sync::Arc;

use super::{MalformedKind, Mechanism, SaslFailure, ServerMechanism, Step};
use crate::channel_binding::ChannelBindings;
use crate::ntlm::messages::AuthenticateMessage;
use crate::ntlm::{FileTime, NtlmAcceptor, NtlmAuthenticated, NtlmConfig, NtlmError, NtlmVersion};
use crate::store::CredentialStore;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Start,
    AwaitingNegotiate,
    AwaitingAuthenticate,
    Done,
}

/// Server side of SASL NTLM, driving an [`NtlmAcceptor`].
///
/// The exchange on the wire (the session base64-encodes and -decodes):
///
/// ```text
/// C: AUTH NTLM                      (no initial response)
/// S: +                              Step::Challenge(empty)
/// C: <NEGOTIATE>
/// S: + <CHALLENGE>                  Step::Challenge(challenge)
/// C: <AUTHENTICATE>
/// S: +OK                            Step::Success
/// ```
///
/// An initial response (IMAP SASL-IR, `AUTH NTLM <b64>`) is taken as the NEGOTIATE; an
/// empty one asks for the empty challenge like none. The server challenge (8 random bytes
/// from the OS generator) and the time are given at construction, since
/// [`ServerMechanism::step`] carries neither; [`set_time`](NtlmServer::set_time) updates the
/// time before the AUTHENTICATE if the exchange was slow. After success,
/// [`take_authenticated`](NtlmServer::take_authenticated) hands out the verified details
/// and the session keys. Anonymous NTLM is refused here even when the configuration allows
/// it: a mail login needs an account.
pub struct NtlmServer {
    acceptor: NtlmAcceptor,
    server_challenge: [u8; 8],
    now: FileTime,
    state: State,
    authentication_id: Option<String>,
    authenticated: Option<NtlmAuthenticated>,
}

impl fmt::Debug for NtlmServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NtlmServer")
            .field("state", &self.state)
            .field("authentication_id", &self.authentication_id)
            .finish_non_exhaustive()
    }
}

impl NtlmServer {
    /// A new exchange under `config`, with a fresh random `server_challenge` and the
    /// current time `now`.
    pub fn new(config: Arc<NtlmConfig>, server_challenge: [u8; 8], now: FileTime) -> NtlmServer {
        NtlmServer {
            acceptor: NtlmAcceptor::new(config),
            server_challenge,
            now,
            state: State::Start,
            authentication_id: None,
            authenticated: None,
        }
    }

    /// Sets the connection's channel bindings (POP3S/IMAPS: the server certificate's
    /// `tls-server-end-point`).
    pub fn with_channel_bindings(mut self, bindings: &ChannelBindings) -> NtlmServer {
        self.acceptor = self.acceptor.with_channel_bindings(bindings);
        self
    }

    /// Updates the time used to check the AUTHENTICATE's timestamp.
    pub fn set_time(&mut self, now: FileTime) {
        self.now = now;
    }

    /// Feeds the next client response. See [`ServerMechanism::step`].
    pub fn step(&mut self, store: &dyn CredentialStore, input: Option<&[u8]>) -> Step {
        match (self.state, input) {
            (State::Done, _) => Step::Failure(SaslFailure::AlreadyCompleted),
            (State::Start, None) => {
                self.state = State::AwaitingNegotiate;
                Step::Challenge(Vec::new())
            }
            (State::Start, Some([])) => {
                self.state = State::AwaitingNegotiate;
                Step::Challenge(Vec::new())
            }
            (State::AwaitingNegotiate | State::AwaitingAuthenticate, None) => {
                self.state = State::Done;
                Step::Failure(MalformedKind::MissingResponse.into())
            }
            (State::Start | State::AwaitingNegotiate, Some(negotiate)) => {
                match self
                    .acceptor
                    .handle_negotiate(negotiate, self.server_challenge, self.now)
                {
                    Ok(challenge) => {
                        self.state = State::AwaitingAuthenticate;
                        Step::Challenge(challenge)
                    }
                    Err(e) => self.fail(e),
                }
            }
            (State::AwaitingAuthenticate, Some(authenticate)) => {
                self.state = State::Done;
                if let Ok(m) = AuthenticateMessage::parse(
                    authenticate,
                    self.acceptor.config().max_message_len(),
                ) {
                    self.authentication_id = Some(m.user);
                }
                match self
                    .acceptor
                    .handle_authenticate(store, authenticate, self.now)
                {
                    Ok(ok) if ok.version == NtlmVersion::Anonymous => {
                        self.fail(NtlmError::AnonymousRefused)
                    }
                    Ok(ok) => {
                        let user = ok.user.clone();
                        self.authentication_id = Some(user.clone());
                        self.authenticated = Some(ok);
                        Step::Success {
                            authorization_id: user.clone(),
                            authentication_id: user,
                        }
                    }
                    Err(e) => self.fail(e),
                }
            }
        }
    }

    fn fail(&mut self, e: NtlmError) -> Step {
        self.state = State::Done;
        Step::Failure(e.into())
    }

    /// The verified details and the NTLM session, once after success.
    pub fn take_authenticated(&mut self) -> Option<NtlmAuthenticated> {
        self.authenticated.take()
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

    /// The user name from the AUTHENTICATE (the store's spelling after success).
    pub fn authentication_id(&self) -> Option<&str> {
        self.authentication_id.as_deref()
    }
}

impl From<NtlmError> for SaslFailure {
    fn from(e: NtlmError) -> SaslFailure {
        match e {
            NtlmError::InvalidCredentials => SaslFailure::InvalidCredentials,
            NtlmError::StoreUnavailable(s) => SaslFailure::StoreUnavailable(s),
            other => SaslFailure::Ntlm(other),
        }
    }
}

impl ServerMechanism for NtlmServer {
    fn mechanism(&self) -> Mechanism {
        Mechanism::Ntlm
    }

    fn step(&mut self, store: &dyn CredentialStore, input: Option<&[u8]>) -> Step {
        NtlmServer::step(self, store, input)
    }

    fn abort(&mut self) -> Step {
        NtlmServer::abort(self)
    }

    fn is_complete(&self) -> bool {
        NtlmServer::is_complete(self)
    }

    fn authentication_id(&self) -> Option<&str> {
        NtlmServer::authentication_id(self)
    }

    fn set_time(&mut self, now: FileTime) {
        NtlmServer::set_time(self, now);
    }
}
