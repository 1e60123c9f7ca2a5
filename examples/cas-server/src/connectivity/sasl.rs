//! The client side of the SASL mechanisms the tests log in with, shared by POP3 `AUTH` and
//! IMAP `AUTHENTICATE`: PLAIN (RFC 4616), LOGIN, and NTLM through cas-auth's
//! [`NtlmInitiator`] (with TLS channel bindings when the connection has TLS).
//!
//! The protocol sessions do the base64 and the continuation lines; this only produces the
//! decoded responses.

use std::time::SystemTime;

use cas_auth::channel_binding::ChannelBindings;
use cas_auth::ntlm::{FileTime, NtlmCredentials, NtlmInitiator};

use super::net::Stream;
use super::report::Failure;
use super::{LoginMechanism, Settings};

/// One SASL exchange, client side.
pub struct SaslClient {
    mechanism: LoginMechanism,
    user: String,
    password: cas_auth::Secret<String>,
    ntlm: Option<NtlmInitiator>,
    responses: u32,
}

impl std::fmt::Debug for SaslClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslClient")
            .field("mechanism", &self.mechanism)
            .field("user", &self.user)
            .field("responses", &self.responses)
            .finish_non_exhaustive()
    }
}

impl SaslClient {
    /// An exchange for `mechanism` (PLAIN, LOGIN or NTLM) with the settings' credentials;
    /// `stream` gives the TLS certificate for NTLM channel bindings.
    pub fn new(
        mechanism: LoginMechanism,
        settings: &Settings,
        stream: Option<&Stream>,
    ) -> Result<SaslClient, Failure> {
        let ntlm = match mechanism {
            LoginMechanism::Ntlm => {
                let credentials =
                    NtlmCredentials::from_account(&settings.user, settings.password.expose());
                let mut initiator = NtlmInitiator::new(credentials).with_workstation("CAS-TEST");
                if let Some(der) = stream.and_then(Stream::peer_certificate)
                    && let Ok(bindings) = ChannelBindings::tls_server_end_point(&der)
                {
                    initiator = initiator.with_channel_bindings(&bindings);
                }
                Some(initiator)
            }
            LoginMechanism::Plain | LoginMechanism::Login => None,
            LoginMechanism::User | LoginMechanism::Auto => {
                return Err(Failure::new(
                    "not a SASL mechanism",
                    "choose plain, login or ntlm",
                ));
            }
        };
        Ok(SaslClient {
            mechanism,
            user: settings.user.clone(),
            password: settings.password.clone(),
            ntlm,
            responses: 0,
        })
    }

    fn plain_message(&self) -> Vec<u8> {
        let mut m = Vec::with_capacity(self.user.len() + self.password.expose().len() + 2);
        m.push(0);
        m.extend_from_slice(self.user.as_bytes());
        m.push(0);
        m.extend_from_slice(self.password.expose().as_bytes());
        m
    }

    /// The initial response (RFC 4422 §5): PLAIN sends its message at once; LOGIN and NTLM
    /// wait for the server's first challenge.
    pub fn initial_response(&mut self) -> Option<Vec<u8>> {
        if self.mechanism == LoginMechanism::Plain {
            self.responses += 1;
            Some(self.plain_message())
        } else {
            None
        }
    }

    /// The response to the server's (decoded) `challenge`.
    pub fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, Failure> {
        self.responses += 1;
        let too_many = || {
            Failure::new(
                "the server keeps sending SASL challenges",
                "the server's SASL implementation misbehaves; try another --mechanism",
            )
        };
        match self.mechanism {
            LoginMechanism::Plain if self.responses <= 2 => Ok(self.plain_message()),
            LoginMechanism::Login => {
                // "Username:" then "Password:" (some servers send other prompts, or none:
                // the order is what counts).
                let text = String::from_utf8_lossy(challenge).to_ascii_lowercase();
                if text.starts_with("password") || self.responses == 2 {
                    Ok(self.password.expose().as_bytes().to_vec())
                } else if self.responses == 1 {
                    Ok(self.user.as_bytes().to_vec())
                } else {
                    Err(too_many())
                }
            }
            LoginMechanism::Ntlm => {
                let initiator = self.ntlm.as_mut().ok_or_else(too_many)?;
                if challenge.is_empty() && !initiator.is_negotiated() && !initiator.is_done() {
                    return initiator
                        .negotiate()
                        .map_err(|e| Failure::new(e.to_string(), "report a bug"));
                }
                if initiator.is_done() {
                    return Err(too_many());
                }
                let mut client_challenge = [0u8; 8];
                let mut session_key = [0u8; 16];
                getrandom::getrandom(&mut client_challenge)
                    .and_then(|()| getrandom::getrandom(&mut session_key))
                    .map_err(|e| Failure::new(format!("no randomness: {e}"), "check the OS"))?;
                let done = initiator
                    .handle_challenge(
                        challenge,
                        client_challenge,
                        session_key,
                        FileTime::from(SystemTime::now()),
                    )
                    .map_err(|e| {
                        Failure::new(
                            format!("the server's NTLM CHALLENGE is unusable: {e}"),
                            "the server's NTLM implementation misbehaves; try --mechanism plain",
                        )
                    })?;
                Ok(done.authenticate)
            }
            _ => Err(too_many()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use cas_auth::ntlm::{NtlmAcceptor, NtlmConfig};
    use cas_auth::{CredentialStore, NtHash, Secret, StoreError, nt_hash_of};

    use super::*;
    use crate::connectivity::{Format, Security, TlsOptions};

    fn settings(user: &str, password: &str) -> Settings {
        Settings {
            host: "localhost".into(),
            port: 110,
            user: user.into(),
            password: Secret::new(password.into()),
            security: Security::Tls,
            tls: TlsOptions::default(),
            allow_clear_text: false,
            timeout: Duration::from_secs(1),
            format: Format::Json,
        }
    }

    #[test]
    fn plain_is_an_initial_response() {
        let mut c =
            SaslClient::new(LoginMechanism::Plain, &settings("tim", "tanstaaf"), None).unwrap();
        assert_eq!(c.initial_response().unwrap(), b"\0tim\0tanstaaf");
        // A server that ignores the initial response and sends an empty challenge.
        assert_eq!(c.respond(b"").unwrap(), b"\0tim\0tanstaaf");
        assert!(c.respond(b"").is_err(), "no endless loop");
    }

    #[test]
    fn login_answers_user_then_password() {
        let mut c = SaslClient::new(LoginMechanism::Login, &settings("tim", "pw"), None).unwrap();
        assert_eq!(c.initial_response(), None);
        assert_eq!(c.respond(b"Username:").unwrap(), b"tim");
        assert_eq!(c.respond(b"Password:").unwrap(), b"pw");
        assert!(c.respond(b"More:").is_err());
        let mut c = SaslClient::new(LoginMechanism::Login, &settings("tim", "pw"), None).unwrap();
        assert_eq!(c.respond(b"VXNlcm5hbWU6").unwrap(), b"tim");
        assert_eq!(c.respond(b"").unwrap(), b"pw");
    }

    #[test]
    fn user_is_not_sasl() {
        assert!(SaslClient::new(LoginMechanism::User, &settings("a", "b"), None).is_err());
        assert!(SaslClient::new(LoginMechanism::Auto, &settings("a", "b"), None).is_err());
    }

    struct Store;

    impl CredentialStore for Store {
        fn verify_password(&self, _: &str, _: &[u8]) -> Result<bool, StoreError> {
            Ok(false)
        }
        fn nt_hash(&self, user: &str) -> Result<Option<Secret<NtHash>>, StoreError> {
            Ok((user == "alice").then(|| Secret::new(nt_hash_of("Passw0rd"))))
        }
        fn canonical_user(&self, user: &str) -> Result<Option<String>, StoreError> {
            Ok((user == "alice").then(|| user.to_owned()))
        }
    }

    fn ntlm_against_acceptor(password: &str) -> bool {
        let config = Arc::new(NtlmConfig::new(
            "CORP",
            "CAS",
            "corp.example",
            "cas.corp.example",
        ));
        let mut server = NtlmAcceptor::new(config);
        let mut c = SaslClient::new(
            LoginMechanism::Ntlm,
            &settings("CORP\\alice", password),
            None,
        )
        .unwrap();
        assert_eq!(c.initial_response(), None);
        let negotiate = c.respond(b"").unwrap();
        let now = FileTime::from(SystemTime::now());
        let challenge = server.handle_negotiate(&negotiate, [3; 8], now).unwrap();
        let authenticate = c.respond(&challenge).unwrap();
        assert!(c.respond(b"x").is_err(), "one AUTHENTICATE per exchange");
        server
            .handle_authenticate(&Store, &authenticate, now)
            .is_ok()
    }

    #[test]
    fn ntlm_through_sasl() {
        assert!(ntlm_against_acceptor("Passw0rd"));
        assert!(!ntlm_against_acceptor("wrong"));
    }

    #[test]
    fn debug_hides_the_password() {
        let c = SaslClient::new(LoginMechanism::Plain, &settings("tim", "hunter2"), None).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
