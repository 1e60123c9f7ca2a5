//! [`NtlmAcceptor`]: the server side of one NTLM exchange.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zeroize::Zeroizing;

use super::crypto;
use super::messages::{
    AV_FLAG_MIC_PRESENT, AuthenticateMessage, AvPairs, ChallengeMessage, MIC_OFFSET, MessageError,
    NegotiateFlags, NegotiateMessage, Ntlmv2Response, Version, av_id, encode_string,
};
use super::session::{NtlmSession, Role};
use crate::account::{AccountNameError, DomainPolicy};
use crate::channel_binding::{ChannelBindings, ExtendedProtection};
use crate::hash::NtHash;
use crate::secret::constant_time_eq;
use crate::store::{CredentialStore, StoreError};

/// Default bound on one NTLM message, in bytes: 16 KiB.
///
/// Windows AUTHENTICATE messages are about 1–3 KiB (the NTLMv2 blob echoes the server's
/// target info plus a few AV pairs of the client); NEGOTIATE and CHALLENGE are far smaller.
/// Sixteen KiB leaves room for long names and unusual clients while bounding the work and
/// memory an unauthenticated peer can cause.
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 16 * 1024;

/// Default time-skew window for the NTLMv2 timestamp: 36 hours either way, the
/// challenge/response lifetime Windows uses (MS-NLMP §3.2.1 `MaxLifetime`).
///
/// Freshness comes from the single-use server challenge, which the NTProofStr binds; the
/// timestamp is defence in depth. Clients that echo the CHALLENGE's `MsvAvTimestamp`
/// (Windows, pyspnego, impacket) carry the server's own time; curl sends its clock. NTLM is
/// what Windows falls back to when Kerberos fails, often because of clock skew, so a
/// Kerberos-like five minutes would lock those clients out.
pub const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::from_secs(36 * 3600);

/// A point in time as Windows FILETIME: 100-nanosecond ticks since 1601-01-01 UTC.
///
/// The crate reads no clock: the caller passes the current time, typically
/// `FileTime::from(SystemTime::now())`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FileTime(pub u64);

impl FileTime {
    /// FILETIME of the Unix epoch (1970-01-01).
    pub const UNIX_EPOCH: FileTime = FileTime(116_444_736_000_000_000);

    /// The distance between two times.
    pub fn abs_diff(self, other: FileTime) -> Duration {
        let ticks = self.0.abs_diff(other.0);
        Duration::from_secs(ticks / 10_000_000) + Duration::from_nanos((ticks % 10_000_000) * 100)
    }
}

impl From<SystemTime> for FileTime {
    /// Converts; times before 1970 saturate to the Unix epoch, times after year 30828 to
    /// the largest FILETIME.
    fn from(t: SystemTime) -> FileTime {
        let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        let ticks = since
            .as_secs()
            .saturating_mul(10_000_000)
            .saturating_add(u64::from(since.subsec_nanos() / 100));
        FileTime(FileTime::UNIX_EPOCH.0.saturating_add(ticks))
    }
}

/// Which NTLM response the client authenticated with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NtlmVersion {
    /// NTLMv2 (the only one accepted by default).
    V2,
    /// NTLMv1 with extended session security ("NTLM2 session response"); opt-in.
    V1ClientChallenge,
    /// Plain NTLMv1; opt-in.
    V1,
    /// Anonymous (empty user and responses); opt-in.
    Anonymous,
}

/// Why an NTLM exchange failed.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NtlmError {
    /// The message is malformed.
    #[error(transparent)]
    Malformed(#[from] MessageError),
    /// A message arrived out of order: AUTHENTICATE without a CHALLENGE before it, or after
    /// the exchange ended (each challenge is good for one AUTHENTICATE).
    #[error("NTLM message out of sequence")]
    UnexpectedMessage,
    /// The NEGOTIATE asks for neither Unicode nor OEM strings.
    #[error("NEGOTIATE asks for no character set")]
    NoCharacterSet,
    /// An NTLMv1 response, refused unless
    /// [`dangerous_allow_ntlmv1`](NtlmConfig::dangerous_allow_ntlmv1): NTLMv1 responses
    /// are crackable to the NT hash.
    #[error("NTLMv1 is disabled")]
    Ntlmv1Refused,
    /// An LM-only response. Always refused: the credential store keeps no LM hash, and LM
    /// falls to brute force in minutes.
    #[error("LM authentication is not supported")]
    LmRefused,
    /// An anonymous AUTHENTICATE, refused unless
    /// [`dangerous_allow_anonymous`](NtlmConfig::dangerous_allow_anonymous).
    #[error("anonymous NTLM is disabled")]
    AnonymousRefused,
    /// The user name or domain names no account here.
    #[error(transparent)]
    AccountName(#[from] AccountNameError),
    /// Unknown user, user without NT hash, or wrong password; deliberately not told apart.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The NTLMv2 timestamp lies outside the configured window.
    #[error("NTLMv2 timestamp outside the allowed clock skew")]
    TimestampOutOfWindow,
    /// `MsvAvFlags` announces a MIC but the AUTHENTICATE has no MIC field.
    #[error("MIC announced but missing")]
    MicMissing,
    /// The MIC does not match the three messages (tampering, or a client bug).
    #[error("MIC mismatch")]
    MicMismatch,
    /// Extended Protection requires channel bindings and the client sent none (or the
    /// server has none for this connection).
    #[error("channel bindings required but missing")]
    ChannelBindingMissing,
    /// The client's channel bindings are not this connection's (a relayed
    /// authentication).
    #[error("channel bindings mismatch")]
    ChannelBindingMismatch,
    /// The credential store could not answer; temporary, not the client's fault.
    #[error("credential store unavailable")]
    StoreUnavailable(#[source] StoreError),
}

impl NtlmError {
    /// Whether the failure is a rejected login attempt (counts towards failed-login
    /// limits), as opposed to a malformed or out-of-order message or a store outage.
    pub fn is_rejected_login(&self) -> bool {
        !matches!(
            self,
            NtlmError::Malformed(_)
                | NtlmError::UnexpectedMessage
                | NtlmError::NoCharacterSet
                | NtlmError::StoreUnavailable(_)
        )
    }

    /// Whether the failure is temporary (the store could not answer).
    pub fn is_temporary(&self) -> bool {
        matches!(self, NtlmError::StoreUnavailable(_))
    }
}

/// Server settings for NTLM, shared by every exchange (`Arc`).
///
/// The names go into the CHALLENGE's target info, which clients hash into their response
/// and show to users; `nb_*` are NetBIOS names (15 characters, upper case by convention),
/// `dns_*` fully qualified. The [`DomainPolicy`] starts out accepting the NetBIOS and DNS
/// domain and computer names (the computer name for local accounts, as Windows does).
#[derive(Clone, Debug)]
pub struct NtlmConfig {
    nb_domain_name: String,
    nb_computer_name: String,
    dns_domain_name: String,
    dns_computer_name: String,
    dns_tree_name: Option<String>,
    version: Option<Version>,
    domains: DomainPolicy,
    max_message_len: usize,
    max_clock_skew: Duration,
    extended_protection: ExtendedProtection,
    allow_ntlmv1: bool,
    allow_anonymous: bool,
}

impl NtlmConfig {
    /// Settings for a server `nb_computer_name` (`dns_computer_name`) in domain
    /// `nb_domain_name` (`dns_domain_name`), with the defaults: NTLMv2 only, messages up to
    /// [`DEFAULT_MAX_MESSAGE_LEN`], clock skew up to [`DEFAULT_MAX_CLOCK_SKEW`], no
    /// Extended Protection, VERSION [`Version::WINDOWS_2008_R2`].
    pub fn new(
        nb_domain_name: impl Into<String>,
        nb_computer_name: impl Into<String>,
        dns_domain_name: impl Into<String>,
        dns_computer_name: impl Into<String>,
    ) -> NtlmConfig {
        let (nb_domain_name, nb_computer_name) = (nb_domain_name.into(), nb_computer_name.into());
        let (dns_domain_name, dns_computer_name) =
            (dns_domain_name.into(), dns_computer_name.into());
        let domains = DomainPolicy::new()
            .with_default_domain(nb_domain_name.clone())
            .with_domain(dns_domain_name.clone())
            .with_domain(nb_computer_name.clone())
            .with_domain(dns_computer_name.clone());
        NtlmConfig {
            nb_domain_name,
            nb_computer_name,
            dns_domain_name,
            dns_computer_name,
            dns_tree_name: None,
            version: Some(Version::WINDOWS_2008_R2),
            domains,
            max_message_len: DEFAULT_MAX_MESSAGE_LEN,
            max_clock_skew: DEFAULT_MAX_CLOCK_SKEW,
            extended_protection: ExtendedProtection::None,
            allow_ntlmv1: false,
            allow_anonymous: false,
        }
    }

    /// Adds `MsvAvDnsTreeName` (the forest) to the target info.
    pub fn with_dns_tree_name(mut self, name: impl Into<String>) -> NtlmConfig {
        self.dns_tree_name = Some(name.into());
        self
    }

    /// The VERSION sent to clients that ask for one; `None` sends zeros.
    pub fn with_version(mut self, version: Option<Version>) -> NtlmConfig {
        self.version = version;
        self
    }

    /// Replaces the domain policy (which domains' users are served).
    pub fn with_domain_policy(mut self, domains: DomainPolicy) -> NtlmConfig {
        self.domains = domains;
        self
    }

    /// The domain policy.
    pub fn domain_policy(&self) -> &DomainPolicy {
        &self.domains
    }

    /// Sets the message size limit (at least 1024 bytes).
    pub fn with_max_message_len(mut self, max: usize) -> NtlmConfig {
        self.max_message_len = max.max(1024);
        self
    }

    /// The message size limit.
    pub fn max_message_len(&self) -> usize {
        self.max_message_len
    }

    /// Sets the accepted distance between the NTLMv2 timestamp and the server's time.
    pub fn with_max_clock_skew(mut self, skew: Duration) -> NtlmConfig {
        self.max_clock_skew = skew;
        self
    }

    /// Sets the Extended Protection policy for channel bindings.
    pub fn with_extended_protection(mut self, policy: ExtendedProtection) -> NtlmConfig {
        self.extended_protection = policy;
        self
    }

    /// The Extended Protection policy.
    pub fn extended_protection(&self) -> ExtendedProtection {
        self.extended_protection
    }

    /// **Dangerous**: accepts NTLMv1 responses (with or without client challenge).
    ///
    /// NTLMv1 responses are DES under pieces of the NT hash: anyone who captures one can
    /// recover the NT hash (the password equivalent) with modest hardware, and with a
    /// fixed server challenge from rainbow tables. Enable only for a legacy client that
    /// cannot be fixed, on a TLS-protected channel.
    pub fn dangerous_allow_ntlmv1(mut self, allow: bool) -> NtlmConfig {
        self.allow_ntlmv1 = allow;
        self
    }

    /// **Dangerous**: accepts anonymous AUTHENTICATE messages (empty user and responses),
    /// which prove nothing. The result is [`NtlmVersion::Anonymous`] with an empty user:
    /// the application must not treat it as any account. The SASL mechanism refuses it
    /// regardless.
    pub fn dangerous_allow_anonymous(mut self, allow: bool) -> NtlmConfig {
        self.allow_anonymous = allow;
        self
    }

    fn target_info(&self, now: FileTime) -> AvPairs {
        let mut info = AvPairs::default();
        info.push_string(av_id::NB_DOMAIN_NAME, &self.nb_domain_name);
        info.push_string(av_id::NB_COMPUTER_NAME, &self.nb_computer_name);
        info.push_string(av_id::DNS_DOMAIN_NAME, &self.dns_domain_name);
        info.push_string(av_id::DNS_COMPUTER_NAME, &self.dns_computer_name);
        if let Some(tree) = &self.dns_tree_name {
            info.push_string(av_id::DNS_TREE_NAME, tree);
        }
        info.0.push(super::messages::AvPair {
            id: av_id::TIMESTAMP,
            value: now.0.to_le_bytes().to_vec(),
        });
        info
    }
}

/// A successful NTLM authentication.
#[derive(Debug)]
#[non_exhaustive]
pub struct NtlmAuthenticated {
    /// The account, spelled as the store spells it ([`CredentialStore::canonical_user`]);
    /// empty for [`NtlmVersion::Anonymous`].
    pub user: String,
    /// The user name as the client sent it.
    pub presented_user: String,
    /// The domain as the client sent it (may be empty).
    pub domain: String,
    /// The client's workstation name (informational; the client chooses it freely).
    pub workstation: String,
    /// Which response verified.
    pub version: NtlmVersion,
    /// The flags in force for the session.
    pub flags: NegotiateFlags,
    /// The SPN the client meant to reach (`MsvAvTargetName`), if it said (NTLMv2).
    pub target_name: Option<String>,
    /// Whether a MIC was present and verified.
    pub mic_verified: bool,
    /// Whether the client's channel bindings were present and matched this connection's.
    pub channel_bindings_verified: bool,
    /// The security context for signing and sealing (none for anonymous).
    pub session: Option<NtlmSession>,
}

#[derive(Clone)]
enum State {
    Initial,
    Challenged {
        negotiate: Vec<u8>,
        challenge: Vec<u8>,
        server_challenge: [u8; 8],
        flags: NegotiateFlags,
    },
    Done,
}

/// The server side of one NTLM exchange (MS-NLMP §3.2): NEGOTIATE → CHALLENGE →
/// AUTHENTICATE.
///
/// Create one per exchange (per TCP connection for HTTP, per `AUTH` command for SASL).
/// The caller supplies randomness (the 8-byte server challenge, from the OS generator) and
/// time; the acceptor keeps the NEGOTIATE and CHALLENGE bytes for the MIC and forgets the
/// challenge after one AUTHENTICATE, so a replayed AUTHENTICATE meets a new challenge and
/// fails. A new NEGOTIATE restarts the exchange (HTTP clients re-authenticate on the same
/// connection).
///
/// ```
/// use std::sync::Arc;
/// use cas_auth::ntlm::{FileTime, NtlmAcceptor, NtlmConfig};
///
/// let config = Arc::new(NtlmConfig::new("CORP", "CAS01", "corp.example", "cas01.corp.example"));
/// let mut acceptor = NtlmAcceptor::new(config);
/// // curl's NEGOTIATE (OEM only, no VERSION).
/// let negotiate = b"NTLMSSP\0\x01\0\0\0\x06\x82\x08\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
/// let challenge = acceptor.handle_negotiate(negotiate, [1, 2, 3, 4, 5, 6, 7, 8], FileTime(133_000_000_000_000_000))?;
/// assert_eq!(&challenge[..8], b"NTLMSSP\0");
/// // ... send it, then pass the client's AUTHENTICATE to `handle_authenticate`.
/// # Ok::<(), cas_auth::ntlm::NtlmError>(())
/// ```
pub struct NtlmAcceptor {
    config: Arc<NtlmConfig>,
    bindings: Option<[u8; 16]>,
    state: State,
}

impl fmt::Debug for NtlmAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Initial => "Initial",
            State::Challenged { .. } => "Challenged",
            State::Done => "Done",
        };
        f.debug_struct("NtlmAcceptor")
            .field("state", &state)
            .field("has_channel_bindings", &self.bindings.is_some())
            .finish_non_exhaustive()
    }
}

/// The MD5 of a random-looking but fixed key, used for unknown users so that they cost the
/// same HMACs as known ones.
const DUMMY_NT_HASH: NtHash = [0x5a; 16];

impl NtlmAcceptor {
    /// A fresh exchange under `config`.
    pub fn new(config: Arc<NtlmConfig>) -> NtlmAcceptor {
        NtlmAcceptor {
            config,
            bindings: None,
            state: State::Initial,
        }
    }

    /// Sets this connection's channel bindings (from the TLS certificate the server
    /// presented, [`ChannelBindings::tls_server_end_point`]), checked per the
    /// [`ExtendedProtection`] policy.
    pub fn with_channel_bindings(mut self, bindings: &ChannelBindings) -> NtlmAcceptor {
        self.bindings = Some(bindings.md5());
        self
    }

    /// The configuration.
    pub fn config(&self) -> &NtlmConfig {
        &self.config
    }

    /// Whether a CHALLENGE was sent and an AUTHENTICATE is awaited.
    pub fn is_challenged(&self) -> bool {
        matches!(self.state, State::Challenged { .. })
    }

    /// Whether the exchange ended (with success or failure).
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The flags the CHALLENGE grants for a NEGOTIATE asking for `requested`: only flags
    /// the client asked for (plus `TARGET_INFO` and the target type, which are the
    /// server's to set), never `LM_KEY`, `REQUEST_NON_NT_SESSION_KEY` or `DATAGRAM`.
    pub fn challenge_flags(requested: NegotiateFlags) -> Result<NegotiateFlags, NtlmError> {
        type F = NegotiateFlags;
        let charset = if requested.contains(F::UNICODE) {
            F::UNICODE
        } else if requested.contains(F::OEM) {
            F::OEM
        } else {
            return Err(NtlmError::NoCharacterSet);
        };
        let echoed = F::REQUEST_TARGET
            | F::SIGN
            | F::SEAL
            | F::NTLM
            | F::ALWAYS_SIGN
            | F::EXTENDED_SESSIONSECURITY
            | F::VERSION
            | F::NEGOTIATE_128
            | F::KEY_EXCH
            | F::NEGOTIATE_56;
        let mut flags = charset | (requested & echoed) | F::TARGET_INFO;
        if requested.contains(F::REQUEST_TARGET) {
            flags = flags | F::TARGET_TYPE_DOMAIN;
        }
        Ok(flags)
    }

    /// Takes the client's NEGOTIATE and returns the CHALLENGE to send.
    ///
    /// `server_challenge` must be 8 fresh random bytes from a cryptographic generator;
    /// `now` goes into `MsvAvTimestamp`. Any earlier state is discarded.
    pub fn handle_negotiate(
        &mut self,
        negotiate: &[u8],
        server_challenge: [u8; 8],
        now: FileTime,
    ) -> Result<Vec<u8>, NtlmError> {
        self.state = State::Done;
        let parsed = NegotiateMessage::parse(negotiate, self.config.max_message_len)?;
        let flags = Self::challenge_flags(parsed.flags)?;
        let unicode = flags.contains(NegotiateFlags::UNICODE);
        let challenge = ChallengeMessage {
            flags,
            target_name: if flags.contains(NegotiateFlags::REQUEST_TARGET) {
                encode_string(&self.config.nb_domain_name, unicode)
            } else {
                Vec::new()
            },
            server_challenge,
            target_info: self.config.target_info(now),
            version: flags.contains(NegotiateFlags::VERSION).then_some(
                self.config.version.unwrap_or(Version {
                    major: 0,
                    minor: 0,
                    build: 0,
                    ntlm_revision: 15,
                }),
            ),
        }
        .encode();
        self.state = State::Challenged {
            negotiate: negotiate.to_vec(),
            challenge: challenge.clone(),
            server_challenge,
            flags,
        };
        Ok(challenge)
    }

    /// Verifies the client's AUTHENTICATE against `store`; `now` is the server's time for
    /// the timestamp check. The exchange is over afterwards, whatever the outcome.
    ///
    /// Order of checks: syntax; response kind (NTLMv1/LM/anonymous refused unless enabled);
    /// domain policy; NTProofStr (retried once with an empty domain, as Windows servers
    /// do); timestamp window; MIC when `MsvAvFlags` announces one; channel bindings per the
    /// Extended Protection policy; then the store's spelling of the user. Unknown users
    /// and users without an NT hash cost the same HMACs as a wrong password and fail the
    /// same way ([`NtlmError::InvalidCredentials`]).
    pub fn handle_authenticate(
        &mut self,
        store: &dyn CredentialStore,
        authenticate: &[u8],
        now: FileTime,
    ) -> Result<NtlmAuthenticated, NtlmError> {
        let state = std::mem::replace(&mut self.state, State::Done);
        let State::Challenged {
            negotiate,
            challenge,
            server_challenge,
            flags: challenge_flags,
        } = state
        else {
            return Err(NtlmError::UnexpectedMessage);
        };
        let msg = AuthenticateMessage::parse(authenticate, self.config.max_message_len)?;
        // curl echoes every flag; only those both sides agreed on count.
        let flags = msg.flags & challenge_flags;
        let ctx = Exchange {
            config: &self.config,
            bindings: self.bindings,
            negotiate: &negotiate,
            challenge: &challenge,
            authenticate,
            server_challenge,
            flags,
            now,
        };

        if msg.nt_response.is_empty() {
            let lm_empty = msg.lm_response.iter().all(|&b| b == 0) && msg.lm_response.len() <= 1;
            if msg.user.is_empty() && lm_empty {
                if !self.config.allow_anonymous {
                    return Err(NtlmError::AnonymousRefused);
                }
                return Ok(NtlmAuthenticated {
                    user: String::new(),
                    presented_user: String::new(),
                    domain: msg.domain,
                    workstation: msg.workstation,
                    version: NtlmVersion::Anonymous,
                    flags,
                    target_name: None,
                    mic_verified: false,
                    channel_bindings_verified: false,
                    session: None,
                });
            }
            return Err(NtlmError::LmRefused);
        }
        if msg.nt_response.len() == 24 {
            if !self.config.allow_ntlmv1 {
                return Err(NtlmError::Ntlmv1Refused);
            }
            return ctx.verify_v1(store, msg);
        }
        let response = Ntlmv2Response::parse(&msg.nt_response)
            .map_err(|kind| MessageError { kind, offset: 20 })?;
        ctx.verify_v2(store, &msg, &response)
    }
}

/// Everything one AUTHENTICATE is checked against.
struct Exchange<'a> {
    config: &'a NtlmConfig,
    bindings: Option<[u8; 16]>,
    negotiate: &'a [u8],
    challenge: &'a [u8],
    authenticate: &'a [u8],
    server_challenge: [u8; 8],
    flags: NegotiateFlags,
    now: FileTime,
}

impl Exchange<'_> {
    /// The NT hash of the account, or a dummy (and `false`) when there is none.
    fn nt_hash(
        &self,
        store: &dyn CredentialStore,
        account: &str,
    ) -> Result<(Zeroizing<NtHash>, bool), NtlmError> {
        match store
            .nt_hash(account)
            .map_err(NtlmError::StoreUnavailable)?
        {
            Some(h) => Ok((Zeroizing::new(*h.expose()), true)),
            None => Ok((Zeroizing::new(DUMMY_NT_HASH), false)),
        }
    }

    fn canonical(&self, store: &dyn CredentialStore, account: &str) -> Result<String, NtlmError> {
        Ok(store
            .canonical_user(account)
            .map_err(NtlmError::StoreUnavailable)?
            .unwrap_or_else(|| account.to_owned()))
    }

    fn verify_v2(
        &self,
        store: &dyn CredentialStore,
        msg: &AuthenticateMessage,
        response: &Ntlmv2Response<'_>,
    ) -> Result<NtlmAuthenticated, NtlmError> {
        let account = self.config.domains.resolve(&msg.user, &msg.domain)?;
        let (nt_hash, known) = self.nt_hash(store, account.user)?;

        let mut verified = None;
        let domains: &[&str] = if msg.domain.is_empty() {
            &[""]
        } else {
            &[&msg.domain, ""]
        };
        for domain in domains {
            let key = crypto::ntowf_v2(&nt_hash, &msg.user, domain);
            let proof = crypto::ntlmv2_proof(&key, &self.server_challenge, response.blob);
            if constant_time_eq(&proof, response.proof) && known {
                verified = Some(crypto::ntlmv2_session_base_key(&key, &proof));
                break;
            }
        }
        let Some(session_base_key) = verified else {
            return Err(NtlmError::InvalidCredentials);
        };

        if FileTime(response.timestamp).abs_diff(self.now) > self.config.max_clock_skew {
            return Err(NtlmError::TimestampOutOfWindow);
        }

        // NTLMv2: KeyExchangeKey = SessionBaseKey.
        let exported =
            crypto::exported_session_key(&session_base_key, &msg.encrypted_session_key, self.flags);
        let mic_verified = self.check_mic(&exported, msg, response.av_pairs.flags())?;
        let channel_bindings_verified =
            self.check_bindings(response.av_pairs.channel_bindings())?;

        Ok(NtlmAuthenticated {
            user: self.canonical(store, account.user)?,
            presented_user: msg.user.clone(),
            domain: msg.domain.clone(),
            workstation: msg.workstation.clone(),
            version: NtlmVersion::V2,
            flags: self.flags,
            target_name: response.av_pairs.get_string(av_id::TARGET_NAME),
            mic_verified,
            channel_bindings_verified,
            session: Some(NtlmSession::new(&exported, self.flags, Role::Server)),
        })
    }

    fn verify_v1(
        &self,
        store: &dyn CredentialStore,
        msg: AuthenticateMessage,
    ) -> Result<NtlmAuthenticated, NtlmError> {
        let account = self.config.domains.resolve(&msg.user, &msg.domain)?;
        let (nt_hash, known) = self.nt_hash(store, account.user)?;
        // With extended session security the LM field carries the client challenge padded
        // with 16 zero bytes (MS-NLMP §3.3.1).
        let client_challenge = match msg.lm_response.get(..8) {
            Some(cc)
                if self
                    .flags
                    .contains(NegotiateFlags::EXTENDED_SESSIONSECURITY)
                    && msg.lm_response.len() == 24
                    && msg
                        .lm_response
                        .get(8..)
                        .is_some_and(|z| z.iter().all(|&b| b == 0)) =>
            {
                <[u8; 8]>::try_from(cc).ok()
            }
            _ => None,
        };
        let expected =
            crypto::ntlmv1_response(&nt_hash, &self.server_challenge, client_challenge.as_ref());
        if !(constant_time_eq(&expected, &msg.nt_response) && known) {
            return Err(NtlmError::InvalidCredentials);
        }
        let mut flags = self.flags;
        if client_challenge.is_none() {
            // Without the client challenge the response used no extended session
            // security, so neither do the keys.
            flags.0 &= !NegotiateFlags::EXTENDED_SESSIONSECURITY.0;
        }
        let base = crypto::ntlmv1_session_base_key(&nt_hash);
        let kx =
            crypto::ntlmv1_key_exchange_key(&base, &self.server_challenge, &msg.lm_response, flags);
        let exported = crypto::exported_session_key(&kx, &msg.encrypted_session_key, flags);
        let mic_verified = match msg.mic {
            // NTLMv1 has no MsvAvFlags; check a MIC only if one is there and non-zero.
            Some(mic) if mic != [0; 16] => self.check_mic(&exported, &msg, AV_FLAG_MIC_PRESENT)?,
            _ => false,
        };
        self.check_bindings(None)?;
        Ok(NtlmAuthenticated {
            user: self.canonical(store, account.user)?,
            presented_user: msg.user,
            domain: msg.domain,
            workstation: msg.workstation,
            version: if client_challenge.is_some() {
                NtlmVersion::V1ClientChallenge
            } else {
                NtlmVersion::V1
            },
            flags,
            target_name: None,
            mic_verified,
            channel_bindings_verified: false,
            session: Some(NtlmSession::new(&exported, flags, Role::Server)),
        })
    }

    /// Checks the MIC when `av_flags` announces it.
    fn check_mic(
        &self,
        exported: &[u8; 16],
        msg: &AuthenticateMessage,
        av_flags: u32,
    ) -> Result<bool, NtlmError> {
        if av_flags & AV_FLAG_MIC_PRESENT == 0 {
            return Ok(false);
        }
        let Some(mic) = msg.mic else {
            return Err(NtlmError::MicMissing);
        };
        let mut zeroed = self.authenticate.to_vec();
        if let Some(field) = zeroed.get_mut(MIC_OFFSET..MIC_OFFSET + 16) {
            field.fill(0);
        }
        let expected = crypto::mic(exported, self.negotiate, self.challenge, &zeroed);
        if constant_time_eq(&expected, &mic) {
            Ok(true)
        } else {
            Err(NtlmError::MicMismatch)
        }
    }

    /// Applies the Extended Protection policy to the client's `MsvAvChannelBindings`.
    fn check_bindings(&self, client: Option<[u8; 16]>) -> Result<bool, NtlmError> {
        // Sixteen zero bytes mean "no bindings" (clients without TLS information).
        let client = client.filter(|c| *c != [0; 16]);
        match (self.config.extended_protection, client, self.bindings) {
            (ExtendedProtection::None, _, _) => Ok(false),
            (_, Some(c), Some(ours)) => {
                if constant_time_eq(&c, &ours) {
                    Ok(true)
                } else {
                    Err(NtlmError::ChannelBindingMismatch)
                }
            }
            // A client binding to a channel the server cannot vouch for.
            (ExtendedProtection::Allow, Some(_), None) => Err(NtlmError::ChannelBindingMismatch),
            (ExtendedProtection::Allow, None, _) => Ok(false),
            (ExtendedProtection::Require, _, _) => Err(NtlmError::ChannelBindingMissing),
        }
    }
}
