//! The login steps every mail protocol shares (POP3 and IMAP today): SASL mechanisms from
//! cas-auth with the right time, challenge and channel bindings; the LoginType check of a
//! mechanism before any credential is read; the password check with the login throttle's
//! bookkeeping; and, once the user is known, the account's canonical name and the policy's
//! verdict ([`crate::access`]).
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

use crate::access::{AccessControl, LoginFacts};

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
}
