//! The login steps every mail protocol shares (POP3 and IMAP today): SASL mechanisms from
//! cas-auth with the right time, challenge and channel bindings; the LoginType check of a
//! mechanism before any credential is read; the password check with the login throttle's
//! bookkeeping; and, once the user is known, the account's canonical name and the policy's
//! verdict ([`crate::access`]).
//!
//! The shape of a login job is shared too: a protocol's connection context implements
//! `LoginContext` (crate-internal), and `password_login` / `sasl_login` run on the blocking
//! pool from the credentials to a [`LoginOutcome`]; `start_sasl` opens an AUTH/AUTHENTICATE
//! exchange, [`SaslStepped::progress`] reads a finished step, and [`conclude`] binds an
//! accepted user to the connection (MaxConnectionsPerUser) and logs how the login ended.
//!
//! The protocol modules keep what differs: the wire replies, what is opened after a good
//! login (a locked POP3 maildrop, an IMAP mailbox store), and how a refusal is worded.
//! Everything here that may verify a password (argon2) runs on the blocking pool: callers
//! invoke it from `spawn_blocking`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use cas_auth::CredentialStore;
use cas_auth::channel_binding::ChannelBindings;
use cas_auth::ntlm::{FileTime, NtlmConfig};
use cas_auth::sasl::{LoginServer, Mechanism, NtlmServer, PlainServer, ServerMechanism, Step};
use cas_policy::{AuthMechanism, Decision, Denial, Protocol};

use crate::access::{AccessControl, LoginFacts, Reauthorization, Slot};

/// A SASL exchange in progress (one of cas-auth's step machines).
pub struct SaslExchange(Box<dyn ServerMechanism + Send>);

impl std::fmt::Debug for SaslExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SaslExchange")
            .field(&self.0.mechanism())
            .finish()
    }
}

impl SaslExchange {
    /// Runs one step on the client's response (`None`: no initial response). NTLM checks
    /// the client's timestamp against the time of this step.
    pub fn step(&mut self, store: &dyn CredentialStore, input: Option<&[u8]>) -> Step {
        self.0.set_time(now_filetime());
        self.0.step(store, input)
    }

    /// The client cancelled the exchange.
    pub fn abort(&mut self) {
        let _ = self.0.abort();
    }

    /// The identity the client presented, once known (for logs and the throttle).
    pub fn authentication_id(&self) -> Option<&str> {
        self.0.authentication_id()
    }

    /// The mechanism being run.
    pub fn mechanism(&self) -> Mechanism {
        self.0.mechanism()
    }

    /// The mechanism being run, as the policy names it (for `authorize_login`).
    pub fn policy_mechanism(&self) -> AuthMechanism {
        AuthMechanism::from_sasl_name(self.0.mechanism().name()).unwrap_or(AuthMechanism::SaslPlain)
    }
}

/// Why a SASL exchange could not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFailure {
    /// The mechanism is not implemented, or not configured (NTLM without `[ntlm]`).
    Unsupported,
    /// The OS random generator failed (no NTLM challenge): a temporary failure.
    NoRandomness,
}

/// The current time as NTLM wants it.
pub fn now_filetime() -> FileTime {
    FileTime::from(SystemTime::now())
}

/// Starts the cas-auth machine for `name` (case-insensitive). NTLM gets a fresh 8-byte
/// server challenge from the OS generator, the clock, and on TLS connections the
/// certificate's `tls-server-end-point` channel bindings.
pub fn start_mechanism(
    name: &str,
    ntlm: Option<&Arc<NtlmConfig>>,
    channel_bindings: Option<&ChannelBindings>,
    tls: bool,
) -> Result<SaslExchange, StartFailure> {
    match Mechanism::from_name(name) {
        Some(Mechanism::Plain) => Ok(SaslExchange(Box::new(PlainServer::new()))),
        Some(Mechanism::Login) => Ok(SaslExchange(Box::new(LoginServer::new()))),
        Some(Mechanism::Ntlm) => {
            let config = ntlm.ok_or(StartFailure::Unsupported)?.clone();
            let mut challenge = [0u8; 8];
            getrandom::getrandom(&mut challenge).map_err(|e| {
                tracing::error!(error = %e, "no randomness for the NTLM challenge");
                StartFailure::NoRandomness
            })?;
            let machine = NtlmServer::new(config, challenge, now_filetime());
            Ok(SaslExchange(Box::new(match (channel_bindings, tls) {
                (Some(bindings), true) => machine.with_channel_bindings(bindings),
                _ => machine,
            })))
        }
        _ => Err(StartFailure::Unsupported),
    }
}

/// LoginType (and EnableGSSAPIAndNTLMAuth) against `mechanism` and the TLS state, before any
/// credential is looked at. The plain-text override of the protocol counts as TLS for the
/// mechanisms that send the password.
pub fn mechanism_allowed(
    access: &AccessControl,
    protocol: Protocol,
    mechanism: AuthMechanism,
    tls: bool,
) -> Decision {
    let version = access.policy();
    let tls =
        tls || (access.plaintext_override_for(protocol) && mechanism.sends_cleartext_password());
    version.policy.mechanism_allowed(protocol, mechanism, tls)
}

/// The outcome of checking a user name and password.
#[derive(Debug)]
pub enum PasswordCheck {
    /// Right password (the throttle was told).
    Good,
    /// Wrong password or unknown user (the throttle was told).
    Bad,
    /// The store failed: a temporary failure.
    Unavailable(String),
}

/// Verifies a password (argon2: call from the blocking pool) and records the result with
/// the login throttle.
pub fn check_password(
    credentials: &dyn CredentialStore,
    access: &AccessControl,
    user: &str,
    password: &[u8],
    client_addr: IpAddr,
) -> PasswordCheck {
    match credentials.verify_password(user, password) {
        Ok(true) => {
            access.login_succeeded(user, client_addr);
            PasswordCheck::Good
        }
        Ok(false) => {
            access.login_failed(user, client_addr);
            PasswordCheck::Bad
        }
        Err(e) => PasswordCheck::Unavailable(e.to_string()),
    }
}

/// Runs one SASL step (may verify a password: call from the blocking pool) and records a
/// success or a definite failure with the login throttle.
pub fn sasl_step(
    exchange: &mut SaslExchange,
    credentials: &dyn CredentialStore,
    access: &AccessControl,
    input: Option<&[u8]>,
    client_addr: IpAddr,
) -> Step {
    let step = exchange.step(credentials, input);
    match &step {
        // The mechanisms refuse acting as someone else (no authorization policy is
        // installed), so the authorization identity is the verified user.
        Step::Success {
            authorization_id, ..
        } => access.login_succeeded(authorization_id, client_addr),
        Step::Failure(f) if !f.is_temporary() => {
            let user = exchange.authentication_id().unwrap_or("");
            access.login_failed(user, client_addr);
        }
        _ => {}
    }
    step
}

/// A user the policy lets in.
#[derive(Debug, Clone)]
pub struct Authorized {
    /// The account's canonical name.
    pub user: String,
    /// The login, kept for re-checks after policy reloads.
    pub facts: LoginFacts,
    /// The policy generation that allowed it.
    pub generation: u64,
}

/// Why an authenticated user is not let in.
#[derive(Debug, Clone)]
pub enum Refusal {
    /// The policy said no (the per-protocol switch, client access rules, LoginType).
    Denied(Denial),
    /// The credential store failed.
    Unavailable(String),
}

/// After good credentials: the account's canonical name, then the policy's verdict
/// (`authorize_login` with the protocol's plain-text override).
pub fn authorize_user(
    credentials: &dyn CredentialStore,
    access: &AccessControl,
    user: &str,
    protocol: Protocol,
    mechanism: AuthMechanism,
    tls: bool,
    client_addr: IpAddr,
) -> Result<Authorized, Refusal> {
    let user = match credentials.canonical_user(user) {
        Ok(canonical) => canonical.unwrap_or_else(|| user.to_owned()),
        Err(e) => return Err(Refusal::Unavailable(e.to_string())),
    };
    let version = access.policy();
    let facts = LoginFacts {
        user: user.clone(),
        protocol,
        mechanism,
        tls,
        client_addr,
    };
    if let Decision::Deny(d) = access.authorize(&version.policy, &facts) {
        return Err(Refusal::Denied(d));
    }
    Ok(Authorized {
        user,
        facts,
        generation: version.generation,
    })
}

impl Authorized {
    /// The re-check of this login after policy reloads.
    pub fn reauthorization(&self) -> Reauthorization {
        Reauthorization::new(self.facts.clone(), self.generation)
    }
}

/// What the logins of every mail protocol of one server share (held by each protocol's
/// context).
#[derive(Clone)]
pub struct LoginServices {
    /// Account database.
    pub credentials: Arc<dyn CredentialStore>,
    /// NTLM acceptor settings; `None`: NTLM is refused (and not offered).
    pub ntlm: Option<Arc<NtlmConfig>>,
    /// The certificate's `tls-server-end-point` bindings, given to NTLM on TLS connections.
    pub channel_bindings: Option<ChannelBindings>,
    /// The client access policy and its enforcement state.
    pub access: Arc<AccessControl>,
}

impl LoginServices {
    /// The services from their parts.
    pub fn new(
        credentials: Arc<dyn CredentialStore>,
        ntlm: Option<Arc<NtlmConfig>>,
        channel_bindings: Option<ChannelBindings>,
        access: Arc<AccessControl>,
    ) -> Self {
        Self {
            credentials,
            ntlm,
            channel_bindings,
            access,
        }
    }
}

impl std::fmt::Debug for LoginServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginServices")
            .field("ntlm", &self.ntlm.is_some())
            .field("channel_bindings", &self.channel_bindings.is_some())
            .finish_non_exhaustive()
    }
}

/// A protocol's per-server context as the shared login steps see it.
pub(crate) trait LoginContext: Send + Sync + 'static {
    /// What a good login opens for the session (POP3: the locked maildrop and its view;
    /// IMAP: the user's mailboxes).
    type Opened: Send + 'static;
    /// The protocol whose policy applies.
    const PROTOCOL: Protocol;
    /// The protocol's name in log lines (`"POP3"`).
    const LOG_NAME: &'static str;
    /// The server's login services.
    fn login(&self) -> &LoginServices;
    /// Opens what the authorized user's session works on (runs on the blocking pool).
    fn open(&self, authorized: &Authorized) -> Result<Self::Opened, OpenFailure>;
}

/// Why what a login opens could not be opened.
#[derive(Debug)]
pub enum OpenFailure {
    /// Another session holds it (POP3's maildrop lock).
    InUse,
    /// The store failed: a temporary failure.
    Unavailable(String),
}

/// How a login attempt ended.
#[derive(Debug)]
pub enum LoginOutcome<T> {
    /// The user is in, and what the session works on is open.
    Accepted {
        /// Who, and the policy generation that let them in.
        authorized: Authorized,
        /// What the protocol's `LoginContext::open` opened.
        opened: T,
    },
    /// Wrong password, unknown user or a failed SASL exchange.
    BadCredentials,
    /// The policy (per-protocol switch, rules, LoginType, throttle) refused the login.
    Denied(Denial),
    /// What the login opens is held by another session.
    InUse {
        /// The account's canonical name.
        user: String,
    },
    /// A store failed: try again later.
    TemporaryFailure(String),
}

/// After good credentials: the account's canonical name and the policy's verdict
/// ([`authorize_user`]), then what the session works on (`LoginContext::open`).
pub(crate) fn authorize_and_open<C: LoginContext>(
    ctx: &C,
    user: &str,
    mechanism: AuthMechanism,
    tls: bool,
    client_addr: IpAddr,
) -> LoginOutcome<C::Opened> {
    let login = ctx.login();
    let authorized = match authorize_user(
        login.credentials.as_ref(),
        &login.access,
        user,
        C::PROTOCOL,
        mechanism,
        tls,
        client_addr,
    ) {
        Ok(a) => a,
        Err(Refusal::Denied(d)) => return LoginOutcome::Denied(d),
        Err(Refusal::Unavailable(e)) => return LoginOutcome::TemporaryFailure(e),
    };
    match ctx.open(&authorized) {
        Ok(opened) => LoginOutcome::Accepted { authorized, opened },
        Err(OpenFailure::InUse) => LoginOutcome::InUse {
            user: authorized.user,
        },
        Err(OpenFailure::Unavailable(e)) => LoginOutcome::TemporaryFailure(e),
    }
}

/// A user name and password login (POP3 USER/PASS, IMAP LOGIN), on the blocking pool: the
/// password check with the throttle's bookkeeping, then [`authorize_and_open`].
pub(crate) fn password_login<C: LoginContext>(
    ctx: &C,
    user: &str,
    password: &[u8],
    tls: bool,
    client_addr: IpAddr,
) -> LoginOutcome<C::Opened> {
    let login = ctx.login();
    match check_password(
        login.credentials.as_ref(),
        &login.access,
        user,
        password,
        client_addr,
    ) {
        PasswordCheck::Good => {
            authorize_and_open(ctx, user, AuthMechanism::UserPass, tls, client_addr)
        }
        PasswordCheck::Bad => LoginOutcome::BadCredentials,
        PasswordCheck::Unavailable(e) => LoginOutcome::TemporaryFailure(e),
    }
}

/// The login throttle before a user name and password are checked.
pub(crate) fn check_login_throttle<C: LoginContext>(
    ctx: &C,
    user: &str,
    client_addr: IpAddr,
    peer: &str,
) -> Result<(), Denial> {
    let label = C::LOG_NAME;
    match ctx.login().access.check_throttle(user, client_addr) {
        Decision::Deny(d) => {
            tracing::info!(peer = %peer, user = %user, reason = %d, "{label} login throttled");
            Err(d)
        }
        _ => Ok(()),
    }
}

/// Why an AUTH/AUTHENTICATE command is answered without an exchange.
#[derive(Debug)]
pub enum SaslRefusal {
    /// The login throttle, or LoginType against the mechanism and TLS.
    Denied(Denial),
    /// The mechanism could not start.
    Failed(StartFailure),
}

/// Starts an AUTH/AUTHENTICATE exchange: the login throttle, LoginType against the
/// mechanism and TLS before any credential is looked at, then the cas-auth machine
/// ([`start_mechanism`]). `command` names the command in log lines (`"POP3 AUTH"`).
pub(crate) fn start_sasl<C: LoginContext>(
    ctx: &C,
    mechanism: &str,
    tls: bool,
    client_addr: IpAddr,
    peer: &str,
    command: &str,
) -> Result<SaslExchange, SaslRefusal> {
    let login = ctx.login();
    if let Decision::Deny(d) = login.access.check_throttle("", client_addr) {
        tracing::info!(peer = %peer, reason = %d, "{command} throttled");
        return Err(SaslRefusal::Denied(d));
    }
    if let Some(kind) = AuthMechanism::from_sasl_name(mechanism)
        && let Decision::Deny(d) = mechanism_allowed(&login.access, C::PROTOCOL, kind, tls)
    {
        tracing::info!(peer = %peer, mechanism = %mechanism, reason = %d, "{command} refused by policy");
        return Err(SaslRefusal::Denied(d));
    }
    start_mechanism(
        mechanism,
        login.ntlm.as_ref(),
        login.channel_bindings.as_ref(),
        tls,
    )
    .map_err(SaslRefusal::Failed)
}

/// One SASL step that ran on the blocking pool; the exchange is handed back.
#[derive(Debug)]
pub struct SaslStepped<T> {
    /// The exchange, for the next step.
    pub exchange: SaslExchange,
    /// What the step produced.
    pub step: Step,
    /// The login outcome when the step succeeded.
    pub outcome: Option<LoginOutcome<T>>,
}

/// One SASL step on the blocking pool ([`sasl_step`]); when it succeeds,
/// [`authorize_and_open`] with the exchange's mechanism.
pub(crate) fn sasl_login<C: LoginContext>(
    ctx: &C,
    mut exchange: SaslExchange,
    input: Option<&[u8]>,
    tls: bool,
    client_addr: IpAddr,
) -> SaslStepped<C::Opened> {
    let login = ctx.login();
    let step = sasl_step(
        &mut exchange,
        login.credentials.as_ref(),
        &login.access,
        input,
        client_addr,
    );
    let outcome = match &step {
        Step::Success {
            authorization_id, ..
        } => Some(authorize_and_open(
            ctx,
            authorization_id,
            exchange.policy_mechanism(),
            tls,
            client_addr,
        )),
        _ => None,
    };
    SaslStepped {
        exchange,
        step,
        outcome,
    }
}

/// Where a SASL exchange stands after a step.
#[derive(Debug)]
pub enum SaslProgress<T> {
    /// Send `data` as a challenge; the exchange waits for the client's answer.
    Challenge {
        /// The exchange, for the next step.
        exchange: SaslExchange,
        /// The challenge.
        data: Vec<u8>,
    },
    /// The exchange is over; `user` is who to name in the log.
    Finished {
        /// The identity presented (or `(unknown)`, `(sasl)`).
        user: String,
        /// How the login ended.
        outcome: LoginOutcome<T>,
    },
}

impl<T> SaslStepped<T> {
    /// Where the exchange stands. A failure's reason (wrong password, foreign domain,
    /// channel bindings, clock skew...) is logged here and never reaches the client.
    pub fn progress(self, peer: &str) -> SaslProgress<T> {
        match (self.step, self.outcome) {
            (Step::Challenge(data), _) => SaslProgress::Challenge {
                exchange: self.exchange,
                data,
            },
            (
                Step::Success {
                    authorization_id, ..
                },
                Some(outcome),
            ) => SaslProgress::Finished {
                user: authorization_id,
                outcome,
            },
            (Step::Failure(failure), _) => {
                let user = self
                    .exchange
                    .authentication_id()
                    .unwrap_or("(unknown)")
                    .to_owned();
                let outcome = if failure.is_temporary() {
                    LoginOutcome::TemporaryFailure(failure.to_string())
                } else {
                    tracing::info!(peer = %peer, user = %user, reason = %failure, "SASL exchange failed");
                    LoginOutcome::BadCredentials
                };
                SaslProgress::Finished { user, outcome }
            }
            (Step::Success { .. }, None) => SaslProgress::Finished {
                user: "(sasl)".to_owned(),
                outcome: LoginOutcome::BadCredentials,
            },
        }
    }
}

/// Why a finished login is refused, for the protocol to word.
#[derive(Debug)]
pub enum LoginRefusal {
    /// Wrong password, unknown user or a failed SASL exchange.
    BadCredentials,
    /// The policy refused the login, or MaxConnectionsPerUser.
    Denied(Denial),
    /// What the login opens is held by another session.
    InUse,
    /// A store failed: try again later.
    TemporaryFailure,
}

/// Ends a login: an accepted user is bound to the connection's `slot`
/// (MaxConnectionsPerUser); every refusal is logged here, naming `presented` (or the
/// canonical user) and the protocol (`label`, `"POP3"`). The protocol logs the success
/// itself, with what it opened.
pub fn conclude<T>(
    outcome: LoginOutcome<T>,
    slot: Option<&Slot>,
    peer: &str,
    presented: &str,
    label: &str,
) -> Result<(Authorized, T), LoginRefusal> {
    match outcome {
        LoginOutcome::Accepted { authorized, opened } => {
            let bound = match slot {
                Some(slot) => slot.bind_user(&authorized.user),
                None => Ok(()),
            };
            match bound {
                Ok(()) => Ok((authorized, opened)),
                Err(d) => {
                    tracing::info!(peer = %peer, user = %authorized.user, reason = %d, "{label} login refused: MaxConnectionsPerUser");
                    Err(LoginRefusal::Denied(d))
                }
            }
        }
        LoginOutcome::BadCredentials => {
            tracing::info!(peer = %peer, user = %presented, "{label} login failed");
            Err(LoginRefusal::BadCredentials)
        }
        LoginOutcome::Denied(d) => {
            tracing::info!(peer = %peer, user = %presented, reason = %d, "{label} login refused by policy");
            Err(LoginRefusal::Denied(d))
        }
        LoginOutcome::InUse { user } => {
            tracing::info!(peer = %peer, user = %user, "{label} login refused: maildrop in use");
            Err(LoginRefusal::InUse)
        }
        LoginOutcome::TemporaryFailure(why) => {
            tracing::warn!(peer = %peer, user = %presented, error = %why, "{label} login failed temporarily");
            Err(LoginRefusal::TemporaryFailure)
        }
    }
}

/// Before each command of a logged-in session: whether a policy reload took the user's
/// access away (logged).
pub(crate) fn revoked<C: LoginContext>(
    ctx: &C,
    reauth: Option<&mut Reauthorization>,
    peer: &str,
    user: Option<&str>,
) -> Option<Denial> {
    let label = C::LOG_NAME;
    let d = reauth?.still_allowed(&ctx.login().access).err()?;
    tracing::info!(peer = %peer, user = ?user, reason = %d, "{label} session closed: access revoked by a policy change");
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanisms_start_by_name() {
        assert_eq!(
            start_mechanism("plain", None, None, false)
                .unwrap()
                .mechanism(),
            Mechanism::Plain
        );
        assert_eq!(
            start_mechanism("LOGIN", None, None, true)
                .unwrap()
                .mechanism(),
            Mechanism::Login
        );
        // NTLM only when configured; unknown names never.
        assert_eq!(
            start_mechanism("NTLM", None, None, true).unwrap_err(),
            StartFailure::Unsupported
        );
        let ntlm = Arc::new(NtlmConfig::new(
            "CAS",
            "CAS-SERVER",
            "localhost",
            "localhost",
        ));
        assert_eq!(
            start_mechanism("ntlm", Some(&ntlm), None, false)
                .unwrap()
                .mechanism(),
            Mechanism::Ntlm
        );
        assert_eq!(
            start_mechanism("CRAM-MD5", Some(&ntlm), None, false).unwrap_err(),
            StartFailure::Unsupported
        );
    }

    #[test]
    fn exchanges_name_their_policy_mechanism() {
        let ntlm = Arc::new(NtlmConfig::new(
            "CAS",
            "CAS-SERVER",
            "localhost",
            "localhost",
        ));
        for (name, expected) in [
            ("PLAIN", AuthMechanism::SaslPlain),
            ("login", AuthMechanism::SaslLogin),
            ("NTLM", AuthMechanism::Ntlm),
        ] {
            let exchange = start_mechanism(name, Some(&ntlm), None, false).unwrap();
            assert_eq!(exchange.policy_mechanism(), expected, "{name}");
        }
    }
}
