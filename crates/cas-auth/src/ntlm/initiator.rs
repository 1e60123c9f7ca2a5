//! [`NtlmInitiator`]: the client side of one NTLM exchange (MS-NLMP §3.1).

use std::fmt;

use zeroize::Zeroizing;

use super::acceptor::{DEFAULT_MAX_MESSAGE_LEN, FileTime};
use super::crypto;
use super::messages::{
    AV_FLAG_MIC_PRESENT, AuthenticateMessage, AvPair, AvPairs, ChallengeMessage, MIC_OFFSET,
    MessageError, NegotiateFlags, NegotiateMessage, Version, av_id,
};
use super::session::{NtlmSession, Role};
use crate::channel_binding::ChannelBindings;
use crate::hash::{NtHash, nt_hash_of};
use crate::secret::Secret;

/// Who the initiator authenticates as: user name, domain and the NT hash of the password.
///
/// The NT hash is all NTLM needs (it is password-equivalent), so the password itself is not
/// kept. `Debug` shows the names only.
#[derive(Clone)]
pub struct NtlmCredentials {
    user: String,
    domain: String,
    nt_hash: Secret<NtHash>,
}

impl fmt::Debug for NtlmCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NtlmCredentials")
            .field("user", &self.user)
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

impl NtlmCredentials {
    /// Credentials from a password. `domain` may be empty (a UPN such as
    /// `user@example.com` goes in `user` with an empty domain, as Windows sends it).
    pub fn from_password(
        user: impl Into<String>,
        domain: impl Into<String>,
        password: &str,
    ) -> NtlmCredentials {
        NtlmCredentials::from_nt_hash(user, domain, nt_hash_of(password))
    }

    /// Credentials from an NT hash ([`nt_hash_of`] of the password).
    pub fn from_nt_hash(
        user: impl Into<String>,
        domain: impl Into<String>,
        nt_hash: NtHash,
    ) -> NtlmCredentials {
        NtlmCredentials {
            user: user.into(),
            domain: domain.into(),
            nt_hash: Secret::new(nt_hash),
        }
    }

    /// Credentials from an account name as users type it: `DOMAIN\user` is split at the
    /// backslash; anything else (`user`, `user@example.com`) is the user with an empty
    /// domain.
    pub fn from_account(account: &str, password: &str) -> NtlmCredentials {
        match account.split_once('\\') {
            Some((domain, user)) => NtlmCredentials::from_password(user, domain, password),
            None => NtlmCredentials::from_password(account, "", password),
        }
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The domain (possibly empty).
    pub fn domain(&self) -> &str {
        &self.domain
    }
}

/// Why the initiator could not answer a CHALLENGE.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NtlmInitiatorError {
    /// The CHALLENGE is malformed (or longer than the configured bound).
    #[error("malformed CHALLENGE: {0}")]
    Malformed(#[from] MessageError),
    /// A CHALLENGE arrived before the NEGOTIATE was produced, or after the exchange ended.
    #[error("NTLM message out of sequence")]
    UnexpectedMessage,
    /// The CHALLENGE selects neither Unicode nor OEM strings.
    #[error("CHALLENGE selects no character set")]
    NoCharacterSet,
}

/// The outcome of [`NtlmInitiator::handle_challenge`]: the AUTHENTICATE to send and the
/// security context for after the server accepts it.
#[non_exhaustive]
pub struct NtlmInitiated {
    /// The AUTHENTICATE_MESSAGE to send.
    pub authenticate: Vec<u8>,
    /// The flags both sides agreed on (those of the AUTHENTICATE).
    pub flags: NegotiateFlags,
    /// Whether the AUTHENTICATE carries a MIC (it does when the CHALLENGE had a
    /// timestamp).
    pub mic_sent: bool,
    /// Whether the response carries channel bindings.
    pub channel_bindings_sent: bool,
    /// The signing and sealing context (client role). Only meaningful once the server has
    /// accepted the AUTHENTICATE.
    pub session: NtlmSession,
}

impl fmt::Debug for NtlmInitiated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The AUTHENTICATE is offline-crackable material: its size only.
        f.debug_struct("NtlmInitiated")
            .field("authenticate_len", &self.authenticate.len())
            .field("flags", &self.flags)
            .field("mic_sent", &self.mic_sent)
            .field("channel_bindings_sent", &self.channel_bindings_sent)
            .field("session", &self.session)
            .finish()
    }
}

#[derive(Clone)]
enum State {
    Initial,
    Negotiated { negotiate: Vec<u8> },
    Done,
}

/// The client side of one NTLM exchange (MS-NLMP §3.1): NEGOTIATE → (CHALLENGE) →
/// AUTHENTICATE, NTLMv2 only.
///
/// The initiator asks for Unicode, extended session security, 128-bit keys, signing,
/// sealing and key exchange, and settles on what the CHALLENGE grants. Its AUTHENTICATE:
///
/// - an NTLMv2 response whose blob echoes the server's target info, with `MsvAvFlags`
///   announcing a MIC, and the MIC itself, when the CHALLENGE carries `MsvAvTimestamp`
///   (then the blob takes the server's time and the LM response is 24 zero bytes, as
///   MS-NLMP §3.1.5.1.2 says); otherwise the caller's time and an LMv2 response;
/// - `MsvAvChannelBindings` when bindings were given
///   ([`with_channel_bindings`](NtlmInitiator::with_channel_bindings)), for servers with
///   Extended Protection, and `MsvAvTargetName` when an SPN was given;
/// - the caller's random session key encrypted under the key exchange key when `KEY_EXCH`
///   was agreed (then it is the exported session key).
///
/// NTLMv1, LM and anonymous logons are never produced. Randomness (the client challenge
/// and random session key, from a cryptographic generator) and time come from the caller.
///
/// ```
/// use std::sync::Arc;
/// use cas_auth::ntlm::{FileTime, NtlmAcceptor, NtlmConfig, NtlmCredentials, NtlmInitiator};
///
/// let mut client = NtlmInitiator::new(NtlmCredentials::from_password("alice", "CORP", "Passw0rd!"));
/// let negotiate = client.negotiate()?;
/// // ... send it; the server answers with a CHALLENGE:
/// let config = Arc::new(NtlmConfig::new("CORP", "CAS01", "corp.example", "cas01.corp.example"));
/// let mut server = NtlmAcceptor::new(config);
/// let now = FileTime(133_500_000_000_000_000);
/// let challenge = server.handle_negotiate(&negotiate, [7; 8], now).unwrap();
/// let done = client.handle_challenge(&challenge, [0xaa; 8], [0x55; 16], now)?;
/// assert!(done.mic_sent);
/// // ... send `done.authenticate`; on success sign and seal with `done.session`.
/// # Ok::<(), cas_auth::ntlm::NtlmInitiatorError>(())
/// ```
pub struct NtlmInitiator {
    credentials: NtlmCredentials,
    workstation: String,
    target_name: Option<String>,
    bindings: Option<[u8; 16]>,
    version: Option<Version>,
    max_message_len: usize,
    state: State,
}

impl fmt::Debug for NtlmInitiator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Initial => "Initial",
            State::Negotiated { .. } => "Negotiated",
            State::Done => "Done",
        };
        f.debug_struct("NtlmInitiator")
            .field("credentials", &self.credentials)
            .field("workstation", &self.workstation)
            .field("target_name", &self.target_name)
            .field("has_channel_bindings", &self.bindings.is_some())
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl NtlmInitiator {
    /// The flags the NEGOTIATE asks for (Windows' set without `LM_KEY`): Unicode with OEM
    /// as fallback, target name, signing and sealing, extended session security, 128- and
    /// 56-bit keys, key exchange.
    pub const REQUESTED_FLAGS: NegotiateFlags = NegotiateFlags(
        NegotiateFlags::UNICODE.0
            | NegotiateFlags::OEM.0
            | NegotiateFlags::REQUEST_TARGET.0
            | NegotiateFlags::SIGN.0
            | NegotiateFlags::SEAL.0
            | NegotiateFlags::NTLM.0
            | NegotiateFlags::ALWAYS_SIGN.0
            | NegotiateFlags::EXTENDED_SESSIONSECURITY.0
            | NegotiateFlags::NEGOTIATE_128.0
            | NegotiateFlags::KEY_EXCH.0
            | NegotiateFlags::NEGOTIATE_56.0,
    );

    /// A fresh exchange for `credentials`, with no workstation name, no SPN, no channel
    /// bindings, VERSION [`Version::WINDOWS_2008_R2`] (informational only) and CHALLENGEs
    /// bounded by [`DEFAULT_MAX_MESSAGE_LEN`].
    pub fn new(credentials: NtlmCredentials) -> NtlmInitiator {
        NtlmInitiator {
            credentials,
            workstation: String::new(),
            target_name: None,
            bindings: None,
            version: Some(Version::WINDOWS_2008_R2),
            max_message_len: DEFAULT_MAX_MESSAGE_LEN,
            state: State::Initial,
        }
    }

    /// Sets the workstation name sent in the AUTHENTICATE.
    pub fn with_workstation(mut self, workstation: impl Into<String>) -> NtlmInitiator {
        self.workstation = workstation.into();
        self
    }

    /// Sets the SPN of the service (`MsvAvTargetName`), e.g. `HTTP/mail.example.com`.
    pub fn with_target_name(mut self, spn: impl Into<String>) -> NtlmInitiator {
        self.target_name = Some(spn.into());
        self
    }

    /// Binds the authentication to the TLS channel (`MsvAvChannelBindings`), from the
    /// certificate the server presented ([`ChannelBindings::tls_server_end_point`]).
    pub fn with_channel_bindings(mut self, bindings: &ChannelBindings) -> NtlmInitiator {
        self.bindings = Some(bindings.md5());
        self
    }

    /// Sets the VERSION sent (or none). A MIC needs the VERSION field's room in the
    /// header, so without a version that room is sent zeroed.
    pub fn with_version(mut self, version: Option<Version>) -> NtlmInitiator {
        self.version = version;
        self
    }

    /// Bounds the CHALLENGE the initiator accepts, in bytes.
    pub fn with_max_message_len(mut self, max: usize) -> NtlmInitiator {
        self.max_message_len = max;
        self
    }

    /// The credentials.
    pub fn credentials(&self) -> &NtlmCredentials {
        &self.credentials
    }

    /// Whether the NEGOTIATE was produced and a CHALLENGE is awaited.
    pub fn is_negotiated(&self) -> bool {
        matches!(self.state, State::Negotiated { .. })
    }

    /// Whether the exchange ended (the AUTHENTICATE was produced, or a CHALLENGE was bad).
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Produces the NEGOTIATE_MESSAGE (restarting the exchange if one was under way).
    ///
    /// Returns `Result` for symmetry with the other steps; it cannot fail today.
    pub fn negotiate(&mut self) -> Result<Vec<u8>, NtlmInitiatorError> {
        let negotiate = NegotiateMessage {
            flags: Self::REQUESTED_FLAGS,
            domain: None,
            workstation: None,
            version: self.version,
        }
        .encode();
        self.state = State::Negotiated {
            negotiate: negotiate.clone(),
        };
        Ok(negotiate)
    }

    /// Takes the server's CHALLENGE and produces the AUTHENTICATE.
    ///
    /// `client_challenge` (8 bytes) and `random_session_key` (16 bytes) must come fresh
    /// from a cryptographic generator; `now` is the client's time, used in the NTLMv2 blob
    /// only when the CHALLENGE carries no timestamp. The exchange is over afterwards,
    /// whatever the outcome.
    pub fn handle_challenge(
        &mut self,
        challenge: &[u8],
        client_challenge: [u8; 8],
        random_session_key: [u8; 16],
        now: FileTime,
    ) -> Result<NtlmInitiated, NtlmInitiatorError> {
        let State::Negotiated { negotiate } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Err(NtlmInitiatorError::UnexpectedMessage);
        };
        let parsed = ChallengeMessage::parse(challenge, self.max_message_len)?;
        let flags = Self::agreed_flags(parsed.flags, self.version.is_some())?;

        // MS-NLMP §3.1.5.1.2: with a server timestamp, use it, send a MIC and no LMv2.
        let server_time = parsed.target_info.timestamp();
        let mic_sent = server_time.is_some();
        let time = server_time.unwrap_or(now.0);
        let info = self.client_target_info(&parsed.target_info, mic_sent);
        let blob = ntlmv2_blob(time, &client_challenge, &info);

        let nt_hash = self.credentials.nt_hash.expose();
        let key = crypto::ntowf_v2(nt_hash, &self.credentials.user, &self.credentials.domain);
        let proof = crypto::ntlmv2_proof(&key, &parsed.server_challenge, &blob);
        let mut nt_response = Vec::with_capacity(proof.len() + blob.len());
        nt_response.extend_from_slice(&proof);
        nt_response.extend_from_slice(&blob);
        let lm_response = if mic_sent {
            vec![0; 24]
        } else {
            crypto::lmv2_response(&key, &parsed.server_challenge, &client_challenge).to_vec()
        };

        // NTLMv2: KeyExchangeKey = SessionBaseKey.
        let key_exchange_key = crypto::ntlmv2_session_base_key(&key, &proof);
        let (exported, encrypted_session_key) = if flags.contains(NegotiateFlags::KEY_EXCH) {
            let encrypted = crypto::rc4_once(&key_exchange_key, &random_session_key);
            (Zeroizing::new(random_session_key), encrypted.to_vec())
        } else {
            (key_exchange_key, Vec::new())
        };

        let mut authenticate = AuthenticateMessage {
            flags,
            lm_response,
            nt_response,
            domain: self.credentials.domain.clone(),
            user: self.credentials.user.clone(),
            workstation: self.workstation.clone(),
            encrypted_session_key,
            version: self.version,
            mic: mic_sent.then_some([0; 16]),
        }
        .encode();
        if mic_sent {
            let mic = crypto::mic(&exported, &negotiate, challenge, &authenticate);
            if let Some(field) = authenticate.get_mut(MIC_OFFSET..MIC_OFFSET + 16) {
                field.copy_from_slice(&mic);
            }
        }
        Ok(NtlmInitiated {
            authenticate,
            flags,
            mic_sent,
            channel_bindings_sent: self.bindings.is_some(),
            session: NtlmSession::new(&exported, flags, Role::Client),
        })
    }

    /// The AUTHENTICATE's flags: what the CHALLENGE granted of what was asked, one
    /// character set (Unicode preferred), `TARGET_INFO` as the server set it, `VERSION`
    /// when one is sent.
    fn agreed_flags(
        granted: NegotiateFlags,
        with_version: bool,
    ) -> Result<NegotiateFlags, NtlmInitiatorError> {
        type F = NegotiateFlags;
        let charset = if granted.contains(F::UNICODE) {
            F::UNICODE
        } else if granted.contains(F::OEM) {
            F::OEM
        } else {
            return Err(NtlmInitiatorError::NoCharacterSet);
        };
        let others = Self::REQUESTED_FLAGS.0 & !(F::UNICODE.0 | F::OEM.0);
        let mut flags = charset | (granted & (NegotiateFlags(others) | F::TARGET_INFO));
        if with_version {
            flags = flags | F::VERSION;
        }
        Ok(flags)
    }

    /// The server's target info as the blob echoes it, plus the client's own pairs:
    /// `MsvAvFlags` with the MIC bit, channel bindings, target name. Pairs the server
    /// should not have sent with those ids are replaced, not duplicated.
    fn client_target_info(&self, server: &AvPairs, mic: bool) -> AvPairs {
        let mut flags = server.flags();
        let mut pairs: Vec<AvPair> = server
            .0
            .iter()
            .filter(|p| {
                !matches!(
                    p.id,
                    av_id::FLAGS | av_id::CHANNEL_BINDINGS | av_id::TARGET_NAME
                )
            })
            .cloned()
            .collect();
        if mic {
            flags |= AV_FLAG_MIC_PRESENT;
        }
        if flags != 0 {
            pairs.push(AvPair {
                id: av_id::FLAGS,
                value: flags.to_le_bytes().to_vec(),
            });
        }
        if let Some(cb) = self.bindings {
            pairs.push(AvPair {
                id: av_id::CHANNEL_BINDINGS,
                value: cb.to_vec(),
            });
        }
        let mut info = AvPairs(pairs);
        if let Some(spn) = &self.target_name {
            info.push_string(av_id::TARGET_NAME, spn);
        }
        info
    }
}

/// The NTLMv2 client blob `temp` (MS-NLMP §3.3.2): RespType 1, HiRespType 1, six zero
/// bytes, the time, the client challenge, four zero bytes, the AV pairs with their EOL,
/// four zero bytes.
fn ntlmv2_blob(time: u64, client_challenge: &[u8; 8], info: &AvPairs) -> Vec<u8> {
    let pairs = info.encode();
    let mut blob = Vec::with_capacity(28 + pairs.len() + 4);
    blob.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 0]);
    blob.extend_from_slice(&time.to_le_bytes());
    blob.extend_from_slice(client_challenge);
    blob.extend_from_slice(&[0; 4]);
    blob.extend_from_slice(&pairs);
    blob.extend_from_slice(&[0; 4]);
    blob
}

#[cfg(test)]
mod tests {
    //! Known answers from MS-NLMP §4.2.4 (NTLMv2, user "User", domain "Domain", password
    //! "Password", server challenge 0123456789abcdef, client challenge aa×8, random session
    //! key 55×16, time 0, workstation "COMPUTER").
    use super::*;
    use crate::ntlm::crypto::tests_support::{hex, v2_blob};
    use crate::ntlm::messages::utf16le;

    const SERVER_CHALLENGE: [u8; 8] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];

    /// §4.2.4.3's CHALLENGE_MESSAGE, rebuilt from its fields.
    fn spec_challenge() -> Vec<u8> {
        let mut info = AvPairs::default();
        info.push_string(av_id::NB_DOMAIN_NAME, "Domain");
        info.push_string(av_id::NB_COMPUTER_NAME, "Server");
        ChallengeMessage {
            flags: NegotiateFlags(0xe28a_8233),
            target_name: utf16le("Server"),
            server_challenge: SERVER_CHALLENGE,
            target_info: info,
            version: Some(Version {
                major: 6,
                minor: 0,
                build: 6000,
                ntlm_revision: 15,
            }),
        }
        .encode()
    }

    /// §4.2.4.3's AUTHENTICATE_MESSAGE.
    const SPEC_AUTHENTICATE: &str = "
        4e544c4d53535000030000001800180 06c00000054005400840000000c000c00
        480000000800080054000000100010005c00000010001000d8000000358288e2
        0501280a0000000f44006f006d00610069006e00550073006500720043004f00
        4d005000550054004500520086c35097ac9cec102554764a57cccc19aaaaaaaa
        aaaaaaaa68cd0ab851e51c96aabc927bebef6a1c010100000000000000000000
        00000000aaaaaaaaaaaaaaaa0000000002000c0044006f006d00610069006e00
        01000c005300650072007600650072000000000000000000c5dad2544fc97990
        94ce1ce90bc9d03e";

    fn spec_initiator() -> NtlmInitiator {
        NtlmInitiator::new(NtlmCredentials::from_password("User", "Domain", "Password"))
            .with_workstation("COMPUTER")
    }

    #[test]
    fn ntlmv2_known_answers_4_2_4() {
        let mut client = spec_initiator();
        client.negotiate().unwrap();
        let done = client
            .handle_challenge(&spec_challenge(), [0xaa; 8], [0x55; 16], FileTime(0))
            .unwrap();
        assert!(!done.mic_sent, "the spec's CHALLENGE has no timestamp");
        let ours = AuthenticateMessage::parse(&done.authenticate, 4096).unwrap();
        let spec = AuthenticateMessage::parse(&hex(SPEC_AUTHENTICATE), 4096).unwrap();
        assert_eq!(ours.lm_response, spec.lm_response);
        assert_eq!(ours.nt_response, spec.nt_response);
        assert_eq!(ours.nt_response[16..], v2_blob()[..]);
        assert_eq!(ours.encrypted_session_key, spec.encrypted_session_key);
        assert_eq!(
            (
                ours.user.as_str(),
                ours.domain.as_str(),
                ours.workstation.as_str()
            ),
            ("User", "Domain", "COMPUTER")
        );
        assert_eq!(ours.user, spec.user);
        assert!(ours.flags.contains(NegotiateFlags::UNICODE));
        assert!(ours.flags.contains(NegotiateFlags::KEY_EXCH));
        assert_eq!(ours.mic, None);
        // §4.2.4.4: the client seals "Plaintext" with the exported key 55×16.
        let mut session = done.session;
        assert_eq!(session.exported_session_key().expose(), &[0x55; 16]);
        let mut data = utf16le("Plaintext");
        let signature = session.seal(&mut data);
        assert_eq!(data, hex("54e50165bf1936dc996020c1811b0f06fb5f"));
        assert_eq!(signature.to_vec(), hex("010000007fb38ec5c55d497600000000"));
    }

    #[test]
    fn without_key_exchange_the_base_key_is_exported() {
        let mut client = spec_initiator();
        client.negotiate().unwrap();
        let mut challenge = ChallengeMessage::parse(&spec_challenge(), 4096).unwrap();
        challenge.flags = NegotiateFlags(challenge.flags.0 & !NegotiateFlags::KEY_EXCH.0);
        let done = client
            .handle_challenge(&challenge.encode(), [0xaa; 8], [0x55; 16], FileTime(0))
            .unwrap();
        let parsed = AuthenticateMessage::parse(&done.authenticate, 4096).unwrap();
        assert!(parsed.encrypted_session_key.is_empty());
        assert_eq!(
            done.session.exported_session_key().expose().to_vec(),
            hex("8de40ccadbc14a82f15cb0ad0de95ca3")
        );
    }

    #[test]
    fn server_timestamp_brings_mic_and_zero_lm() {
        let mut client = spec_initiator()
            .with_target_name("HTTP/mail.example.com")
            .with_channel_bindings(&ChannelBindings::from_application_data(b"x".to_vec()));
        let negotiate = client.negotiate().unwrap();
        let mut challenge = ChallengeMessage::parse(&spec_challenge(), 4096).unwrap();
        challenge.target_info.0.push(AvPair {
            id: av_id::TIMESTAMP,
            value: 1234u64.to_le_bytes().to_vec(),
        });
        let challenge = challenge.encode();
        let done = client
            .handle_challenge(&challenge, [0xaa; 8], [0x55; 16], FileTime(99))
            .unwrap();
        assert!(done.mic_sent && done.channel_bindings_sent);
        let parsed = AuthenticateMessage::parse(&done.authenticate, 4096).unwrap();
        assert_eq!(parsed.lm_response, vec![0; 24]);
        let blob = &parsed.nt_response[16..];
        assert_eq!(blob[8..16], 1234u64.to_le_bytes(), "server time is echoed");
        let info = AvPairs::parse(&blob[28..]).unwrap();
        assert_eq!(info.flags(), AV_FLAG_MIC_PRESENT);
        assert_eq!(
            info.channel_bindings(),
            Some(ChannelBindings::from_application_data(b"x".to_vec()).md5())
        );
        assert_eq!(
            info.get_string(av_id::TARGET_NAME).as_deref(),
            Some("HTTP/mail.example.com")
        );
        // The MIC covers all three messages with its own field zeroed.
        let mut zeroed = done.authenticate.clone();
        zeroed[MIC_OFFSET..MIC_OFFSET + 16].fill(0);
        let expected = crypto::mic(&[0x55; 16], &negotiate, &challenge, &zeroed);
        assert_eq!(parsed.mic, Some(expected));
    }

    #[test]
    fn out_of_sequence_and_malformed() {
        let mut client = spec_initiator();
        assert_eq!(
            client
                .handle_challenge(&spec_challenge(), [0; 8], [0; 16], FileTime(0))
                .unwrap_err(),
            NtlmInitiatorError::UnexpectedMessage
        );
        client.negotiate().unwrap();
        assert!(client.is_negotiated());
        assert!(matches!(
            client.handle_challenge(b"NTLMSSP\0\x02", [0; 8], [0; 16], FileTime(0)),
            Err(NtlmInitiatorError::Malformed(_))
        ));
        assert!(client.is_done());
        // One CHALLENGE per NEGOTIATE.
        assert_eq!(
            client
                .handle_challenge(&spec_challenge(), [0; 8], [0; 16], FileTime(0))
                .unwrap_err(),
            NtlmInitiatorError::UnexpectedMessage
        );
        let mut client = spec_initiator().with_max_message_len(40);
        client.negotiate().unwrap();
        assert!(matches!(
            client.handle_challenge(&spec_challenge(), [0; 8], [0; 16], FileTime(0)),
            Err(NtlmInitiatorError::Malformed(_))
        ));
        let mut client = spec_initiator();
        client.negotiate().unwrap();
        let mut challenge = ChallengeMessage::parse(&spec_challenge(), 4096).unwrap();
        challenge.flags = NegotiateFlags(
            challenge.flags.0 & !(NegotiateFlags::UNICODE.0 | NegotiateFlags::OEM.0),
        );
        assert_eq!(
            client
                .handle_challenge(&challenge.encode(), [0; 8], [0; 16], FileTime(0))
                .unwrap_err(),
            NtlmInitiatorError::NoCharacterSet
        );
    }

    #[test]
    fn account_forms_and_debug() {
        let c = NtlmCredentials::from_account("CORP\\alice", "pw");
        assert_eq!((c.user(), c.domain()), ("alice", "CORP"));
        let c = NtlmCredentials::from_account("alice@corp.example", "pw");
        assert_eq!((c.user(), c.domain()), ("alice@corp.example", ""));
        let shown = format!("{:?}", NtlmInitiator::new(c));
        assert!(shown.contains("alice@corp.example"));
        assert!(!shown.contains("nt_hash"));
        let negotiate =
            NegotiateMessage::parse(&spec_initiator().negotiate().unwrap(), 64).unwrap();
        assert!(negotiate.flags.contains(NtlmInitiator::REQUESTED_FLAGS));
        assert!(!negotiate.flags.contains(NegotiateFlags::LM_KEY));
    }
}
