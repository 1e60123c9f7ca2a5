//! HTTP authentication (RFC 7235): `Authorization` parsing, `WWW-Authenticate` challenges,
//! Basic (RFC 7617) and NTLM / Negotiate (raw NTLM as Outlook sends it, or SPNEGO-wrapped
//! NTLM) driven by [`HttpAuthenticator`], one per TCP connection.
//!
//! ```
//! use std::sync::Arc;
//! use cas_auth::http::{HttpAuthConfig, HttpAuthenticator, HttpAuthOutcome};
//! use cas_auth::ntlm::{FileTime, NtlmConfig};
//! use cas_auth::{FileCredentialStore, DomainPolicy};
//!
//! let store = FileCredentialStore::parse("")?;
//! let ntlm = NtlmConfig::new("CORP", "CAS01", "corp.example", "cas01.corp.example");
//! let config = Arc::new(HttpAuthConfig::new().with_ntlm(Arc::new(ntlm)).with_negotiate(true).with_basic("CAS01"));
//! let mut auth = HttpAuthenticator::new(config);
//! // A request without Authorization: 401 with every challenge.
//! assert_eq!(auth.challenges(), ["Negotiate", "NTLM", "Basic realm=\"CAS01\", charset=\"UTF-8\""]);
//! // curl's NEGOTIATE: 401 with the CHALLENGE, keep the connection open.
//! let header = b"NTLM TlRMTVNTUAABAAAABoIIAAAAAAAAAAAAAAAAAAAAAAA=";
//! match auth.handle_authorization(&store, header, [7; 8], FileTime(133_000_000_000_000_000)) {
//!     HttpAuthOutcome::Continue { www_authenticate } => assert!(www_authenticate.starts_with("NTLM TlRMTVNTUAACAAAA")),
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};

use crate::account::{AccountNameError, DomainPolicy};
use crate::channel_binding::ChannelBindings;
use crate::ntlm::{FileTime, NtlmAcceptor, NtlmAuthenticated, NtlmConfig, NtlmError, NtlmVersion};
use crate::secret::Secret;
use crate::spnego::{self, NegState, SpnegoError};
use crate::store::{CredentialStore, StoreError};

/// Default bound on an `Authorization` header value, in bytes: 32 KiB, enough for the
/// base64 of a [`DEFAULT_MAX_MESSAGE_LEN`](crate::ntlm::DEFAULT_MAX_MESSAGE_LEN) NTLM
/// message inside SPNEGO (IIS's default header limit is 16 KiB per field).
pub const DEFAULT_MAX_AUTHORIZATION_LEN: usize = 32 * 1024;

/// Longest Basic user-id or password accepted, in bytes (as the SASL mechanisms).
pub const MAX_BASIC_FIELD_LEN: usize = crate::sasl::DEFAULT_MAX_FIELD_LEN;

/// Base64 that accepts input with or without `=` padding.
const LENIENT_B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// An authentication scheme this module handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthScheme {
    /// `Basic` (RFC 7617).
    Basic,
    /// `NTLM` (raw NTLM messages).
    Ntlm,
    /// `Negotiate` (RFC 4559): SPNEGO, or raw NTLM as Outlook sends it.
    Negotiate,
}

impl AuthScheme {
    /// The scheme's name as sent on the wire.
    pub fn name(self) -> &'static str {
        match self {
            AuthScheme::Basic => "Basic",
            AuthScheme::Ntlm => "NTLM",
            AuthScheme::Negotiate => "Negotiate",
        }
    }
}

/// Why an `Authorization` header was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpAuthError {
    /// Longer than the configured limit.
    #[error("Authorization header longer than {max} bytes")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// Not `<scheme> <token68>`.
    #[error("malformed Authorization header")]
    Malformed,
    /// A scheme this server does not offer.
    #[error("authentication scheme not offered")]
    SchemeNotOffered,
    /// The credentials are not valid base64.
    #[error("credentials are not valid base64")]
    BadBase64,
    /// Basic credentials without `:`.
    #[error("Basic credentials lack the ':' separator")]
    MissingColon,
    /// Basic credentials that are not UTF-8 (the charset this server announces).
    #[error("Basic credentials are not UTF-8")]
    NotUtf8,
    /// Basic credentials with a control character (RFC 7617 §2) or an empty user-id.
    #[error("Basic credentials contain control characters or an empty user-id")]
    InvalidCharacters,
    /// A Basic field longer than [`MAX_BASIC_FIELD_LEN`].
    #[error("Basic credentials too long")]
    BasicTooLong,
    /// The user-id names a foreign domain or no user.
    #[error(transparent)]
    AccountName(#[from] AccountNameError),
    /// Unknown user or wrong password (Basic).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The store could not answer.
    #[error("credential store unavailable")]
    StoreUnavailable(#[source] StoreError),
    /// NTLM refused the exchange.
    #[error(transparent)]
    Ntlm(#[from] NtlmError),
    /// The SPNEGO wrapping is malformed or offers no NTLM.
    #[error(transparent)]
    Spnego(#[from] SpnegoError),
    /// The SPNEGO `mechListMIC` is missing where RFC 4178 requires it, or wrong.
    #[error("SPNEGO mechListMIC missing or invalid")]
    MechListMic,
}

impl HttpAuthError {
    /// Whether this is a rejected login (counts towards failed-login limits).
    pub fn is_rejected_login(&self) -> bool {
        match self {
            HttpAuthError::InvalidCredentials
            | HttpAuthError::AccountName(_)
            | HttpAuthError::MechListMic => true,
            HttpAuthError::Ntlm(e) => e.is_rejected_login(),
            _ => false,
        }
    }

    /// Whether the failure is temporary (answer 503 rather than 401).
    pub fn is_temporary(&self) -> bool {
        match self {
            HttpAuthError::StoreUnavailable(_) => true,
            HttpAuthError::Ntlm(e) => e.is_temporary(),
            _ => false,
        }
    }
}

/// A parsed `Authorization` header: `credentials = auth-scheme [ 1*SP token68 ]`
/// (RFC 7235 §2.1; the `#auth-param` form is not used by these schemes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Authorization<'a> {
    /// The scheme; `None` for one this module does not know.
    pub scheme: Option<AuthScheme>,
    /// The scheme name as sent.
    pub scheme_name: &'a str,
    /// The token68, not decoded.
    pub token: &'a str,
}

/// Parses an `Authorization` header value of at most `max_len` bytes. Scheme names
/// compare case-insensitively; surrounding white space is ignored.
pub fn parse_authorization(
    value: &[u8],
    max_len: usize,
) -> Result<Authorization<'_>, HttpAuthError> {
    if value.len() > max_len {
        return Err(HttpAuthError::TooLong { max: max_len });
    }
    let value = std::str::from_utf8(value).map_err(|_| HttpAuthError::Malformed)?;
    let value = value.trim_matches([' ', '\t']);
    let (name, token) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    let token = token.trim_matches([' ', '\t']);
    let is_tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    let is_token68 = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    if name.is_empty() || !name.chars().all(is_tchar) || !token.chars().all(is_token68) {
        return Err(HttpAuthError::Malformed);
    }
    let scheme = [AuthScheme::Basic, AuthScheme::Ntlm, AuthScheme::Negotiate]
        .into_iter()
        .find(|s| s.name().eq_ignore_ascii_case(name));
    Ok(Authorization {
        scheme,
        scheme_name: name,
        token,
    })
}

/// Basic credentials (RFC 7617 §2): `user-id ":" password`, split at the first colon (a
/// colon in the password is kept). `Debug` hides the password.
#[derive(Clone)]
pub struct BasicCredentials {
    user_id: String,
    password: Secret<String>,
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("user_id", &self.user_id)
            .field("password", &self.password)
            .finish()
    }
}

impl BasicCredentials {
    /// Credentials from a user-id and a password.
    pub fn new(user_id: impl Into<String>, password: impl Into<String>) -> BasicCredentials {
        BasicCredentials {
            user_id: user_id.into(),
            password: Secret::new(password.into()),
        }
    }

    /// Decodes the token68 of `Authorization: Basic <token68>`. Both fields must be
    /// UTF-8 (the charset this server announces), free of control characters, at most
    /// [`MAX_BASIC_FIELD_LEN`] bytes; the user-id must not be empty.
    pub fn decode(token: &str) -> Result<BasicCredentials, HttpAuthError> {
        if token.len() > (2 * MAX_BASIC_FIELD_LEN + 1).div_ceil(3) * 4 {
            return Err(HttpAuthError::BasicTooLong);
        }
        let raw = zeroize::Zeroizing::new(
            LENIENT_B64
                .decode(token)
                .map_err(|_| HttpAuthError::BadBase64)?,
        );
        let text = std::str::from_utf8(&raw).map_err(|_| HttpAuthError::NotUtf8)?;
        let (user_id, password) = text.split_once(':').ok_or(HttpAuthError::MissingColon)?;
        if user_id.len() > MAX_BASIC_FIELD_LEN || password.len() > MAX_BASIC_FIELD_LEN {
            return Err(HttpAuthError::BasicTooLong);
        }
        if user_id.is_empty() || text.chars().any(char::is_control) {
            return Err(HttpAuthError::InvalidCharacters);
        }
        Ok(BasicCredentials::new(user_id, password))
    }

    /// The token68 for these credentials (for clients and tests).
    pub fn encode(&self) -> String {
        let joined =
            zeroize::Zeroizing::new(format!("{}:{}", self.user_id, self.password.expose()));
        general_purpose::STANDARD.encode(joined.as_bytes())
    }

    /// The user-id as typed (`DOMAIN\user`, `user@domain` or `user`).
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The password.
    pub fn password(&self) -> &Secret<String> {
        &self.password
    }
}

/// The Basic challenge of RFC 7617 §2: `Basic realm="<realm>", charset="UTF-8"`, with `"`
/// and `\` in the realm escaped as a quoted-string.
pub fn basic_challenge(realm: &str) -> String {
    let mut escaped = String::with_capacity(realm.len());
    for c in realm.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    format!("Basic realm=\"{escaped}\", charset=\"UTF-8\"")
}

/// Which schemes a server offers, and their settings. Shared by every connection (`Arc`).
#[derive(Clone, Debug)]
pub struct HttpAuthConfig {
    ntlm: Option<Arc<NtlmConfig>>,
    negotiate: bool,
    basic_realm: Option<String>,
    basic_domains: Option<DomainPolicy>,
    max_header_len: usize,
}

impl Default for HttpAuthConfig {
    fn default() -> Self {
        HttpAuthConfig::new()
    }
}

impl HttpAuthConfig {
    /// No scheme offered yet; header limit [`DEFAULT_MAX_AUTHORIZATION_LEN`].
    pub fn new() -> HttpAuthConfig {
        HttpAuthConfig {
            ntlm: None,
            negotiate: false,
            basic_realm: None,
            basic_domains: None,
            max_header_len: DEFAULT_MAX_AUTHORIZATION_LEN,
        }
    }

    /// Offers `NTLM` with these settings.
    pub fn with_ntlm(mut self, config: Arc<NtlmConfig>) -> HttpAuthConfig {
        self.ntlm = Some(config);
        self
    }

    /// Also offers `Negotiate` (NTLM only, raw or SPNEGO-wrapped); needs
    /// [`with_ntlm`](Self::with_ntlm).
    pub fn with_negotiate(mut self, offer: bool) -> HttpAuthConfig {
        self.negotiate = offer;
        self
    }

    /// Offers Basic with this realm. Basic sends the password in clear: offer it only
    /// over TLS.
    pub fn with_basic(mut self, realm: impl Into<String>) -> HttpAuthConfig {
        self.basic_realm = Some(realm.into());
        self
    }

    /// The domain policy for Basic user-ids; by default the NTLM configuration's, or bare
    /// names only without NTLM.
    pub fn with_basic_domains(mut self, domains: DomainPolicy) -> HttpAuthConfig {
        self.basic_domains = Some(domains);
        self
    }

    /// Sets the `Authorization` length limit.
    pub fn with_max_header_len(mut self, max: usize) -> HttpAuthConfig {
        self.max_header_len = max;
        self
    }

    fn offers(&self, scheme: AuthScheme) -> bool {
        match scheme {
            AuthScheme::Basic => self.basic_realm.is_some(),
            AuthScheme::Ntlm => self.ntlm.is_some(),
            AuthScheme::Negotiate => self.negotiate && self.ntlm.is_some(),
        }
    }
}

/// What to answer an `Authorization` header with.
#[derive(Debug)]
#[non_exhaustive]
pub enum HttpAuthOutcome {
    /// NTLM handshake in progress: answer `401` with this one `WWW-Authenticate` value,
    /// keep the connection open (`Content-Length: 0`), and pass the client's next
    /// `Authorization` to the same authenticator.
    Continue {
        /// The `WWW-Authenticate` value.
        www_authenticate: String,
    },
    /// The client is authenticated. Serve the request; send `www_authenticate` with the
    /// response when present (the final SPNEGO token).
    Authenticated {
        /// The account, spelled as the store spells it.
        user: String,
        /// The scheme that authenticated it.
        scheme: AuthScheme,
        /// A final `WWW-Authenticate` value for the successful response.
        www_authenticate: Option<String>,
        /// NTLM details and session (NTLM and Negotiate only).
        ntlm: Option<Box<NtlmAuthenticated>>,
    },
    /// Refused: answer `401` with [`HttpAuthenticator::challenges`] (or 503 when
    /// [`HttpAuthError::is_temporary`]), and count a failed login when
    /// [`HttpAuthError::is_rejected_login`].
    Rejected {
        /// Why.
        error: HttpAuthError,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wrapping {
    Raw,
    Spnego { mic_required: bool },
}

/// Per-connection HTTP authentication state (the NTLM handshake is bound to one TCP
/// connection).
pub struct HttpAuthenticator {
    config: Arc<HttpAuthConfig>,
    bindings: Option<ChannelBindings>,
    ntlm: Option<NtlmAcceptor>,
    scheme: AuthScheme,
    wrapping: Wrapping,
    mech_types: Option<Vec<u8>>,
}

impl fmt::Debug for HttpAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpAuthenticator")
            .field("ntlm", &self.ntlm)
            .field("scheme", &self.scheme)
            .field("wrapping", &self.wrapping)
            .finish_non_exhaustive()
    }
}

impl HttpAuthenticator {
    /// State for a new connection.
    pub fn new(config: Arc<HttpAuthConfig>) -> HttpAuthenticator {
        HttpAuthenticator {
            config,
            bindings: None,
            ntlm: None,
            scheme: AuthScheme::Ntlm,
            wrapping: Wrapping::Raw,
            mech_types: None,
        }
    }

    /// Sets the connection's channel bindings (the TLS certificate's
    /// `tls-server-end-point`), for Extended Protection.
    pub fn with_channel_bindings(mut self, bindings: ChannelBindings) -> HttpAuthenticator {
        self.bindings = Some(bindings);
        self
    }

    /// The `WWW-Authenticate` values of a plain 401, one header each, in order of
    /// preference: `Negotiate`, `NTLM`, `Basic realm=…`.
    pub fn challenges(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.config.offers(AuthScheme::Negotiate) {
            out.push("Negotiate".to_owned());
        }
        if self.config.offers(AuthScheme::Ntlm) {
            out.push("NTLM".to_owned());
        }
        if let Some(realm) = &self.config.basic_realm {
            out.push(basic_challenge(realm));
        }
        out
    }

    /// Processes one `Authorization` header value. `server_challenge` (8 fresh random
    /// bytes) is used only if the header starts an NTLM handshake; `now` is the server's
    /// time.
    pub fn handle_authorization(
        &mut self,
        store: &dyn CredentialStore,
        header_value: &[u8],
        server_challenge: [u8; 8],
        now: FileTime,
    ) -> HttpAuthOutcome {
        match self.authorize(store, header_value, server_challenge, now) {
            Ok(outcome) => outcome,
            Err(error) => {
                self.ntlm = None;
                HttpAuthOutcome::Rejected { error }
            }
        }
    }

    fn authorize(
        &mut self,
        store: &dyn CredentialStore,
        header_value: &[u8],
        server_challenge: [u8; 8],
        now: FileTime,
    ) -> Result<HttpAuthOutcome, HttpAuthError> {
        let auth = parse_authorization(header_value, self.config.max_header_len)?;
        let scheme = auth
            .scheme
            .filter(|s| self.config.offers(*s))
            .ok_or(HttpAuthError::SchemeNotOffered)?;
        if scheme == AuthScheme::Basic {
            return self.basic(store, auth.token);
        }
        let ntlm_config = self
            .config
            .ntlm
            .clone()
            .ok_or(HttpAuthError::SchemeNotOffered)?;
        let token = LENIENT_B64
            .decode(auth.token)
            .map_err(|_| HttpAuthError::BadBase64)?;
        let (message, mic) = if scheme == AuthScheme::Negotiate && spnego::is_spnego(&token) {
            let client = spnego::parse_client_token(&token)?;
            if let Some(types) = client.mech_types {
                // A new NegTokenInit starts over.
                self.ntlm = None;
                self.mech_types = Some(types);
                self.wrapping = Wrapping::Spnego {
                    mic_required: !client.ntlm_first,
                };
                if !client.ntlm_first || client.token.is_none() {
                    // The optimistic token (if any) is for another mechanism: ask for NTLM.
                    self.scheme = scheme;
                    return Ok(self.continue_with(None));
                }
            }
            (client.token.unwrap_or_default(), client.mech_list_mic)
        } else {
            self.wrapping = Wrapping::Raw;
            (token, None)
        };
        self.scheme = scheme;

        let is_negotiate = message.get(8..12) == Some(&1u32.to_le_bytes()[..]);
        if is_negotiate || self.ntlm.is_none() {
            let mut acceptor = NtlmAcceptor::new(ntlm_config);
            if let Some(b) = &self.bindings {
                acceptor = acceptor.with_channel_bindings(b);
            }
            let challenge = acceptor.handle_negotiate(&message, server_challenge, now)?;
            self.ntlm = Some(acceptor);
            return Ok(self.continue_with(Some(&challenge)));
        }
        let mut acceptor = self.ntlm.take().ok_or(NtlmError::UnexpectedMessage)?;
        let mut ok = acceptor.handle_authenticate(store, &message, now)?;
        if ok.version == NtlmVersion::Anonymous {
            return Err(NtlmError::AnonymousRefused.into());
        }
        let www_authenticate = match self.wrapping {
            Wrapping::Raw => None,
            Wrapping::Spnego { mic_required } => {
                let our_mic = match (&mut ok.session, &self.mech_types, mic) {
                    (Some(session), Some(types), Some(mic)) => {
                        session
                            .verify(types, &mic)
                            .map_err(|_| HttpAuthError::MechListMic)?;
                        let ours = session.sign(types);
                        session.restart_rc4_after_mech_list_mic();
                        Some(ours)
                    }
                    _ if mic_required => return Err(HttpAuthError::MechListMic),
                    _ => None,
                };
                let resp = spnego::encode_response(
                    NegState::AcceptCompleted,
                    false,
                    None,
                    our_mic.as_ref().map(|m| &m[..]),
                );
                Some(format!(
                    "Negotiate {}",
                    general_purpose::STANDARD.encode(resp)
                ))
            }
        };
        Ok(HttpAuthOutcome::Authenticated {
            user: ok.user.clone(),
            scheme: self.scheme,
            www_authenticate,
            ntlm: Some(Box::new(ok)),
        })
    }

    fn continue_with(&self, ntlm_token: Option<&[u8]>) -> HttpAuthOutcome {
        let bytes = match self.wrapping {
            Wrapping::Raw => ntlm_token.unwrap_or_default().to_vec(),
            Wrapping::Spnego { .. } => {
                spnego::encode_response(NegState::AcceptIncomplete, true, ntlm_token, None)
            }
        };
        HttpAuthOutcome::Continue {
            www_authenticate: format!(
                "{} {}",
                self.scheme.name(),
                general_purpose::STANDARD.encode(bytes)
            ),
        }
    }

    fn basic(
        &mut self,
        store: &dyn CredentialStore,
        token: &str,
    ) -> Result<HttpAuthOutcome, HttpAuthError> {
        let creds = BasicCredentials::decode(token)?;
        let fallback;
        let domains = match (&self.config.basic_domains, &self.config.ntlm) {
            (Some(d), _) => d,
            (None, Some(n)) => n.domain_policy(),
            (None, None) => {
                fallback = DomainPolicy::new();
                &fallback
            }
        };
        let account = domains.resolve_login(creds.user_id())?;
        let good = store
            .verify_password(account.user, creds.password().expose().as_bytes())
            .map_err(HttpAuthError::StoreUnavailable)?;
        if !good {
            return Err(HttpAuthError::InvalidCredentials);
        }
        let user = store
            .canonical_user(account.user)
            .map_err(HttpAuthError::StoreUnavailable)?
            .unwrap_or_else(|| account.user.to_owned());
        Ok(HttpAuthOutcome::Authenticated {
            user,
            scheme: AuthScheme::Basic,
            www_authenticate: None,
            ntlm: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_syntax() {
        let a = parse_authorization(b"  negotiate  YWJj==  ", 100).unwrap();
        assert_eq!(a.scheme, Some(AuthScheme::Negotiate));
        assert_eq!(a.token, "YWJj==");
        assert_eq!(parse_authorization(b"Digest", 100).unwrap().scheme, None);
        assert!(matches!(
            parse_authorization(b"NTLM a b", 100),
            Err(HttpAuthError::Malformed)
        ));
        assert!(matches!(
            parse_authorization(b"", 100),
            Err(HttpAuthError::Malformed)
        ));
        assert!(matches!(
            parse_authorization(b"NTLM \xff", 100),
            Err(HttpAuthError::Malformed)
        ));
        assert!(matches!(
            parse_authorization(&[b'a'; 101], 100),
            Err(HttpAuthError::TooLong { max: 100 })
        ));
    }

    #[test]
    fn basic_rfc7617_example() {
        // RFC 7617 §2: Aladdin / open sesame.
        let c = BasicCredentials::decode("QWxhZGRpbjpvcGVuIHNlc2FtZQ==").unwrap();
        assert_eq!(c.user_id(), "Aladdin");
        assert_eq!(c.password().expose(), "open sesame");
        assert_eq!(c.encode(), "QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert!(!format!("{c:?}").contains("sesame"));
        // Colons stay in the password; no padding is fine.
        let c =
            BasicCredentials::decode(&general_purpose::STANDARD_NO_PAD.encode("u:p:w:")).unwrap();
        assert_eq!(c.password().expose(), "p:w:");
        let bad =
            |s: &[u8]| BasicCredentials::decode(&general_purpose::STANDARD.encode(s)).unwrap_err();
        assert!(matches!(bad(b"nocolon"), HttpAuthError::MissingColon));
        assert!(matches!(bad(b"us\xffer:pw"), HttpAuthError::NotUtf8));
        assert!(matches!(bad(b":pw"), HttpAuthError::InvalidCharacters));
        assert!(matches!(bad(b"u:p\nw"), HttpAuthError::InvalidCharacters));
        assert!(matches!(
            BasicCredentials::decode("!!"),
            Err(HttpAuthError::BadBase64)
        ));
        assert!(matches!(
            bad(&[&[b'a'; 1100][..], b":x"].concat()),
            HttpAuthError::BasicTooLong
        ));
        let huge = general_purpose::STANDARD.encode([b'a'; 4000]);
        assert!(matches!(
            BasicCredentials::decode(&huge),
            Err(HttpAuthError::BasicTooLong)
        ));
    }

    #[test]
    fn challenge_escaping() {
        assert_eq!(
            basic_challenge("a\"b\\c"),
            r#"Basic realm="a\"b\\c", charset="UTF-8""#
        );
    }
}
