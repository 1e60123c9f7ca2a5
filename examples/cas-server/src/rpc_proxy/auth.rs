//! Per-connection HTTP authentication for the endpoint: Basic, NTLM and Negotiate through
//! cas-auth, restricted to the policy's `IISAuthenticationMethods`, with Extended Protection
//! on TLS connections, the login throttle, and the user's policy after authentication.
//!
//! Each TCP connection has its own [`ConnectionAuth`]: NTLM binds its handshake to the
//! connection, and after an NTLM or Negotiate success the connection stays authenticated
//! for later requests without `Authorization`, as with IIS. Basic authenticates one request.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use cas_auth::http::{AuthScheme, HttpAuthConfig, HttpAuthOutcome, HttpAuthenticator};
use cas_auth::ntlm::FileTime;
use cas_policy::{AuthMechanism, Decision, Denial, HttpAuthMethod, Protocol};

use super::ProxyContext;
use crate::access::LoginFacts;

/// The Basic realm announced in challenges.
pub const REALM: &str = "cas-rs";

/// What the authentication of one request came to.
#[derive(Debug)]
pub enum AuthResult {
    /// Authenticated and allowed by the policy.
    Allowed {
        /// The canonical user name.
        user: String,
        /// How.
        mechanism: AuthMechanism,
        /// A final `WWW-Authenticate` value to send with the response (SPNEGO's last token).
        www_authenticate: Option<String>,
    },
    /// Answer `401` with these `WWW-Authenticate` values (a challenge or a refusal).
    Unauthorized {
        /// The challenges.
        challenges: Vec<String>,
        /// Why, for the log (`None` for the anonymous first leg and NTLM's middle leg).
        reason: Option<String>,
    },
    /// Authenticated, but the policy says no (or the throttle holds the user back).
    Denied {
        /// The user.
        user: String,
        /// The policy's reason.
        denial: Denial,
    },
    /// The credential store failed: `503`.
    Unavailable(String),
}

/// One connection's authentication state.
pub struct ConnectionAuth {
    authenticator: HttpAuthenticator,
    /// The IIS methods this connection was opened under (the policy can change; a
    /// connection keeps what it started with, as an IIS worker does until recycled).
    methods: Vec<HttpAuthMethod>,
    /// The user an NTLM/Negotiate handshake authenticated on this connection.
    connection_user: Option<(String, AuthMechanism)>,
    tls: bool,
    client_addr: IpAddr,
}

impl std::fmt::Debug for ConnectionAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionAuth")
            .field("methods", &self.methods)
            .field("user", &self.connection_user.as_ref().map(|(u, _)| u))
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl ConnectionAuth {
    /// State for a new connection. `tls`: the connection itself is TLS (channel bindings
    /// apply); `secure`: TLS, or plain HTTP behind an SSL-offloading terminator (Basic may
    /// be offered).
    pub fn new(ctx: &ProxyContext, tls: bool, secure: bool, client_addr: IpAddr) -> Self {
        let policy = ctx.access.policy();
        let methods = policy
            .policy
            .outlook_anywhere()
            .iis_authentication_methods
            .clone();
        let mut config = HttpAuthConfig::new();
        let wants_ntlm =
            methods.contains(&HttpAuthMethod::Ntlm) || methods.contains(&HttpAuthMethod::Negotiate);
        if let (true, Some(ntlm)) = (wants_ntlm, &ctx.ntlm) {
            config = config
                .with_ntlm(ntlm.clone())
                .with_negotiate(methods.contains(&HttpAuthMethod::Negotiate));
        }
        // Basic sends the password itself: only over TLS (ours or the offloader's).
        if secure && methods.contains(&HttpAuthMethod::Basic) {
            config = config.with_basic(REALM);
        }
        let mut authenticator = HttpAuthenticator::new(Arc::new(config));
        if let (true, Some(cb)) = (tls, &ctx.channel_bindings) {
            authenticator = authenticator.with_channel_bindings(cb.clone());
        }
        ConnectionAuth {
            authenticator,
            methods,
            connection_user: None,
            tls: secure,
            client_addr,
        }
    }

    /// The `WWW-Authenticate` values of a plain 401.
    pub fn challenges(&self) -> Vec<String> {
        let raw_ntlm = self.methods.contains(&HttpAuthMethod::Ntlm);
        self.authenticator
            .challenges()
            .into_iter()
            // Negotiate needs cas-auth's NTLM machinery, which also offers raw NTLM: hide it
            // when IISAuthenticationMethods leaves NTLM out.
            .filter(|c| raw_ntlm || c != "NTLM")
            .collect()
    }

    /// The user this connection is already authenticated as (NTLM/Negotiate).
    pub fn connection_user(&self) -> Option<&str> {
        self.connection_user.as_ref().map(|(u, _)| u.as_str())
    }

    /// The client's address.
    pub fn client_addr(&self) -> IpAddr {
        self.client_addr
    }

    /// Authenticates one request and, when `protocol` is given, checks the user's policy
    /// for it (`None` for autodiscover, which answers every authenticated user).
    pub async fn authenticate(
        &mut self,
        ctx: &ProxyContext,
        protocol: Option<Protocol>,
        authorization: Option<&[u8]>,
    ) -> AuthResult {
        let Some(value) = authorization else {
            return match self.connection_user.clone() {
                Some((user, mechanism)) => self.authorize(ctx, protocol, user, mechanism, None),
                None => AuthResult::Unauthorized {
                    challenges: self.challenges(),
                    reason: None,
                },
            };
        };
        // A new Authorization starts over, whoever the connection was before.
        self.connection_user = None;
        let scheme = cas_auth::http::parse_authorization(value, usize::MAX)
            .ok()
            .and_then(|a| a.scheme);
        if scheme == Some(AuthScheme::Ntlm) && !self.methods.contains(&HttpAuthMethod::Ntlm) {
            return self.refused("NTLM is not in IISAuthenticationMethods");
        }
        if let Decision::Deny(d) = ctx.access.check_throttle("", self.client_addr) {
            return AuthResult::Denied {
                user: String::new(),
                denial: d,
            };
        }
        let mut challenge = [0u8; 8];
        if getrandom::getrandom(&mut challenge).is_err() {
            return AuthResult::Unavailable("no randomness for the NTLM challenge".into());
        }
        // Basic verifies an Argon2 hash: keep it off the async workers. The authenticator
        // moves into the blocking task and back.
        let store = ctx.credentials.clone();
        let value = value.to_vec();
        let placeholder = HttpAuthenticator::new(Arc::new(HttpAuthConfig::new()));
        let mut authenticator = std::mem::replace(&mut self.authenticator, placeholder);
        let joined = tokio::task::spawn_blocking(move || {
            let now = FileTime::from(SystemTime::now());
            let outcome =
                authenticator.handle_authorization(store.as_ref(), &value, challenge, now);
            (authenticator, outcome)
        })
        .await;
        let Ok((authenticator, outcome)) = joined else {
            return AuthResult::Unavailable("authentication task failed".into());
        };
        self.authenticator = authenticator;
        match outcome {
            HttpAuthOutcome::Continue { www_authenticate } => AuthResult::Unauthorized {
                challenges: vec![www_authenticate],
                reason: None,
            },
            HttpAuthOutcome::Authenticated {
                user,
                scheme,
                www_authenticate,
                ..
            } => {
                let mechanism = match scheme {
                    AuthScheme::Basic => AuthMechanism::HttpBasic,
                    AuthScheme::Ntlm => AuthMechanism::Ntlm,
                    _ => AuthMechanism::Negotiate,
                };
                if let Decision::Deny(d) = ctx.access.check_throttle(&user, self.client_addr) {
                    return AuthResult::Denied { user, denial: d };
                }
                tracing::info!(peer = %self.client_addr, %user, scheme = scheme.name(), "HTTP login succeeded");
                ctx.access.login_succeeded(&user, self.client_addr);
                if scheme != AuthScheme::Basic {
                    self.connection_user = Some((user.clone(), mechanism));
                }
                self.authorize(ctx, protocol, user, mechanism, www_authenticate)
            }
            HttpAuthOutcome::Rejected { error } => {
                tracing::info!(peer = %self.client_addr, reason = %error, "HTTP login failed");
                if error.is_temporary() {
                    return AuthResult::Unavailable(error.to_string());
                }
                if error.is_rejected_login() {
                    ctx.access.login_failed("", self.client_addr);
                }
                self.refused(&error.to_string())
            }
            other => self.refused(&format!("unexpected outcome {other:?}")),
        }
    }

    fn refused(&self, reason: &str) -> AuthResult {
        AuthResult::Unauthorized {
            challenges: self.challenges(),
            reason: Some(reason.to_owned()),
        }
    }

    /// The policy for an authenticated user: `authorize_login` (the mechanism against
    /// IISAuthenticationMethods, SSL, client access rules, MAPIEnabled and
    /// MAPIBlockOutlookRpcHttp).
    fn authorize(
        &self,
        ctx: &ProxyContext,
        protocol: Option<Protocol>,
        user: String,
        mechanism: AuthMechanism,
        www_authenticate: Option<String>,
    ) -> AuthResult {
        let Some(protocol) = protocol else {
            return AuthResult::Allowed {
                user,
                mechanism,
                www_authenticate,
            };
        };
        let version = ctx.access.policy();
        let facts = LoginFacts {
            user: user.clone(),
            protocol,
            mechanism,
            tls: self.tls,
            client_addr: self.client_addr,
        };
        match ctx.access.authorize(&version.policy, &facts) {
            Decision::Allow => AuthResult::Allowed {
                user,
                mechanism,
                www_authenticate,
            },
            Decision::Deny(denial) => AuthResult::Denied { user, denial },
        }
    }
}
