//! The LOGIN mechanism (draft-murchison-sasl-login-00).

use super::{
    DEFAULT_MAX_FIELD_LEN, MIN_MAX_FIELD_LEN, MalformedKind, Mechanism, SaslFailure,
    ServerMechanism, Step, verify,
};
use crate::store::CredentialStore;

/// The first LOGIN challenge.
///
/// The draft suggests "User Name"; deployed servers (and the clients that check) use
/// `Username:`, so this crate does too.
pub const USERNAME_CHALLENGE: &[u8] = b"Username:";

/// The second LOGIN challenge.
pub const PASSWORD_CHALLENGE: &[u8] = b"Password:";

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Start,
    AwaitingUser,
    AwaitingPassword,
    Done,
}

/// Server side of LOGIN: challenge `Username:`, read the user name; challenge `Password:`,
/// read the password; verify.
///
/// An initial response is taken as the user name (what clients that send one mean), and
/// the exchange continues with `Password:`. An empty initial response carries no user name
/// and is treated like none. The user name must be UTF-8 without NUL; the password is
/// passed to the store as the raw bytes received. There is no separate authorization
/// identity: a success authorizes the user as itself.
#[derive(Clone, Debug)]
pub struct LoginServer {
    state: State,
    max_field_len: usize,
    user: Option<String>,
}

impl Default for LoginServer {
    fn default() -> Self {
        LoginServer::new()
    }
}

impl LoginServer {
    /// A LOGIN exchange with fields limited to [`DEFAULT_MAX_FIELD_LEN`] octets.
    pub fn new() -> Self {
        LoginServer {
            state: State::Start,
            max_field_len: DEFAULT_MAX_FIELD_LEN,
            user: None,
        }
    }

    /// Sets the per-field limit in octets (raised to at least [`MIN_MAX_FIELD_LEN`]).
    pub fn with_max_field_len(mut self, max_field_len: usize) -> Self {
        self.max_field_len = max_field_len.max(MIN_MAX_FIELD_LEN);
        self
    }

    /// Feeds the client's response; `None` on the first call means "no initial response".
    /// See [`ServerMechanism::step`].
    pub fn step(&mut self, store: &dyn CredentialStore, input: Option<&[u8]>) -> Step {
        match self.state {
            State::Done => Step::Failure(SaslFailure::AlreadyCompleted),
            State::Start => match input {
                None | Some([]) => {
                    self.state = State::AwaitingUser;
                    Step::Challenge(USERNAME_CHALLENGE.to_vec())
                }
                Some(user) => self.take_user(user),
            },
            State::AwaitingUser => match input {
                None => self.fail(MalformedKind::MissingResponse.into()),
                Some(user) => self.take_user(user),
            },
            State::AwaitingPassword => match input {
                None => self.fail(MalformedKind::MissingResponse.into()),
                Some(password) => self.take_password(store, password),
            },
        }
    }

    fn fail(&mut self, failure: SaslFailure) -> Step {
        self.state = State::Done;
        Step::Failure(failure)
    }

    fn take_user(&mut self, user: &[u8]) -> Step {
        if user.len() > self.max_field_len {
            return self.fail(
                MalformedKind::TooLong {
                    max: self.max_field_len,
                }
                .into(),
            );
        }
        if user.contains(&0) {
            return self.fail(MalformedKind::UnexpectedNul.into());
        }
        let Ok(user) = std::str::from_utf8(user) else {
            return self.fail(MalformedKind::NotUtf8.into());
        };
        if user.is_empty() {
            return self.fail(MalformedKind::EmptyAuthenticationId.into());
        }
        self.user = Some(user.to_owned());
        self.state = State::AwaitingPassword;
        Step::Challenge(PASSWORD_CHALLENGE.to_vec())
    }

    fn take_password(&mut self, store: &dyn CredentialStore, password: &[u8]) -> Step {
        self.state = State::Done;
        if password.len() > self.max_field_len {
            return Step::Failure(
                MalformedKind::TooLong {
                    max: self.max_field_len,
                }
                .into(),
            );
        }
        if password.is_empty() {
            return Step::Failure(MalformedKind::EmptyPassword.into());
        }
        let user = self.user.as_deref().unwrap_or_default();
        match verify(store, user, password) {
            Ok(canonical) => Step::Success {
                authorization_id: canonical.clone(),
                authentication_id: canonical,
            },
            Err(failure) => Step::Failure(failure),
        }
    }

    /// Ends the exchange on client cancellation. See [`ServerMechanism::abort`].
    pub fn abort(&mut self) -> Step {
        if self.state == State::Done {
            return Step::Failure(SaslFailure::AlreadyCompleted);
        }
        self.fail(SaslFailure::Aborted)
    }

    /// Whether a final step has been returned.
    pub fn is_complete(&self) -> bool {
        self.state == State::Done
    }

    /// The user name the client sent, once it has.
    pub fn authentication_id(&self) -> Option<&str> {
        self.user.as_deref()
    }
}

impl ServerMechanism for LoginServer {
    fn mechanism(&self) -> Mechanism {
        Mechanism::Login
    }

    fn step(&mut self, store: &dyn CredentialStore, input: Option<&[u8]>) -> Step {
        LoginServer::step(self, store, input)
    }

    fn abort(&mut self) -> Step {
        LoginServer::abort(self)
    }

    fn is_complete(&self) -> bool {
        LoginServer::is_complete(self)
    }

    fn authentication_id(&self) -> Option<&str> {
        LoginServer::authentication_id(self)
    }
}
