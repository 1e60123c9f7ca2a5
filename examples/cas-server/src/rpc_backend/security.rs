//! RPC-level security (MS-RPCE §3.3.1.5.2, §2.2.2.11): the NTLM (`auth_type` 10) and
//! SPNEGO-wrapped NTLM (`auth_type` 9) security context of an association, and per-PDU
//! protection at the integrity (sign) and privacy (seal) levels.
//!
//! NTLM's legs ride on the PDUs: NEGOTIATE in `bind` (or `alter_context`), CHALLENGE in
//! `bind_ack` (`alter_context_resp`), AUTHENTICATE in `rpc_auth_3` or — the three-leg
//! variant Samba uses with SPNEGO, whose last leg needs an answer — in `alter_context`.
//!
//! With NTLM the signature covers the whole PDU up to the auth value: header, body, auth
//! padding and `sec_trailer`. NTLMSSP checksums read-only buffers too, so Windows, Samba and
//! impacket all sign the header whether or not `PFC_SUPPORT_HEADER_SIGN` was negotiated.
//! Sealing encrypts the stub data and its auth padding; the signature is computed over the
//! plaintext.

use std::sync::Arc;

use cas_auth::CredentialStore;
use cas_auth::ntlm::{FileTime, NtlmAcceptor, NtlmConfig, NtlmError, NtlmSession, SIGNATURE_LEN};
use cas_auth::spnego::{self, NegState};
use rpch_framing::pdu::{AuthLevel, AuthType, HEADER_LEN, SEC_TRAILER_LEN};

/// Why an RPC-level authentication failed. Never carries a credential.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthFailure {
    /// An `auth_type` other than NTLM (10) and SPNEGO (9).
    #[error("authentication type {0} not supported")]
    UnsupportedType(u8),
    /// An `auth_level` this server does not implement.
    #[error("authentication level {0} not supported")]
    UnsupportedLevel(u8),
    /// RPC-level authentication is switched off (no NTLM configuration).
    #[error("RPC-level authentication is disabled")]
    Disabled,
    /// The NTLM acceptor refused a message (wrong password, NTLMv1, malformed, ...).
    #[error("NTLM: {0}")]
    Ntlm(#[from] NtlmError),
    /// A SPNEGO token did not parse or offered no NTLM.
    #[error("SPNEGO: {0}")]
    Spnego(#[from] cas_auth::spnego::SpnegoError),
    /// SPNEGO's `mechListMIC` was missing where required, or wrong.
    #[error("SPNEGO mechListMIC missing or invalid")]
    MechListMic,
    /// A token arrived when the context expected none (or another one).
    #[error("unexpected security token")]
    Unexpected,
    /// An anonymous NTLM logon, which carries no identity to authorize.
    #[error("anonymous logon refused")]
    Anonymous,
    /// Integrity or privacy was asked for, but the client negotiated no session key.
    #[error("no session key for the requested protection level")]
    NoSessionKey,
}

/// The result of one security token.
#[derive(Debug)]
pub enum AuthStep {
    /// Send this token back (bind_ack / alter_context_resp) and wait for the next one.
    Continue(Vec<u8>),
    /// Authentication finished; send the final token if there is one (SPNEGO's
    /// accept-completed with our `mechListMIC`).
    Complete(Option<Vec<u8>>),
}

/// What the security context needs from the server, shared by all associations.
#[derive(Clone)]
pub struct SecurityConfig {
    /// The NTLM acceptor settings, the same as HTTP's. `None` refuses RPC-level auth.
    pub ntlm: Option<Arc<NtlmConfig>>,
    /// The users file.
    pub store: Arc<dyn CredentialStore + Send + Sync>,
    /// Fresh 8-byte server challenges (the OS generator in the server, fixed in tests).
    pub challenge: Arc<dyn Fn() -> [u8; 8] + Send + Sync>,
}

impl std::fmt::Debug for SecurityConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecurityConfig")
            .field("ntlm", &self.ntlm.is_some())
            .finish_non_exhaustive()
    }
}

enum Wrapping {
    Raw,
    Spnego {
        mech_types: Option<Vec<u8>>,
        mic_required: bool,
    },
}

enum State {
    Negotiating(Option<NtlmAcceptor>),
    Established,
    Failed,
}

/// One association's security context (MS-RPCE allows several per association; this
/// server keeps one, which is what impacket, Samba and Outlook use).
pub struct SecurityContext {
    auth_type: AuthType,
    level: AuthLevel,
    context_id: u32,
    wrapping: Wrapping,
    state: State,
    session: Option<NtlmSession>,
    user: Option<String>,
}

impl std::fmt::Debug for SecurityContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecurityContext")
            .field("auth_type", &self.auth_type)
            .field("level", &self.level)
            .field("context_id", &self.context_id)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Whether a level protects each PDU with a signature (packet, integrity) or seals it.
fn signs(level: AuthLevel) -> bool {
    matches!(
        level,
        AuthLevel::PKT | AuthLevel::PKT_INTEGRITY | AuthLevel::PKT_PRIVACY
    )
}

impl SecurityContext {
    /// Starts a context from the first auth verifier of an association.
    pub fn new(
        auth_type: AuthType,
        level: AuthLevel,
        context_id: u32,
    ) -> Result<Self, AuthFailure> {
        let wrapping = match auth_type {
            AuthType::NTLM => Wrapping::Raw,
            AuthType::SPNEGO => Wrapping::Spnego {
                mech_types: None,
                mic_required: false,
            },
            other => return Err(AuthFailure::UnsupportedType(other.0)),
        };
        // Connect (2), packet (4: signed like integrity, as Samba does), integrity (5),
        // privacy (6). Call level (3) has no meaning on connection-oriented transports.
        if !matches!(
            level,
            AuthLevel::CONNECT | AuthLevel::PKT | AuthLevel::PKT_INTEGRITY | AuthLevel::PKT_PRIVACY
        ) {
            return Err(AuthFailure::UnsupportedLevel(level.0));
        }
        Ok(Self {
            auth_type,
            level,
            context_id,
            wrapping,
            state: State::Negotiating(None),
            session: None,
            user: None,
        })
    }

    /// The `auth_type`.
    pub fn auth_type(&self) -> AuthType {
        self.auth_type
    }

    /// The `auth_level`.
    pub fn level(&self) -> AuthLevel {
        self.level
    }

    /// The `auth_context_id`.
    pub fn context_id(&self) -> u32 {
        self.context_id
    }

    /// The authenticated user, once established.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Whether authentication finished successfully.
    pub fn is_established(&self) -> bool {
        matches!(self.state, State::Established)
    }

    /// Whether authentication failed (every later call is refused).
    pub fn is_failed(&self) -> bool {
        matches!(self.state, State::Failed)
    }

    /// Marks the context failed (an `rpc_auth_3` that did not verify).
    pub fn mark_failed(&mut self) {
        self.state = State::Failed;
        self.session = None;
    }

    /// Whether each request and response carries a signature (and maybe sealing).
    pub fn protects_packets(&self) -> bool {
        signs(self.level)
    }

    /// Processes one token from a bind, alter_context or auth3.
    pub fn step(
        &mut self,
        config: &SecurityConfig,
        token: &[u8],
        now: FileTime,
    ) -> Result<AuthStep, AuthFailure> {
        let result = self.step_inner(config, token, now);
        if result.is_err() {
            self.state = State::Failed;
            self.session = None;
        }
        result
    }

    fn step_inner(
        &mut self,
        config: &SecurityConfig,
        token: &[u8],
        now: FileTime,
    ) -> Result<AuthStep, AuthFailure> {
        let ntlm_config = config.ntlm.clone().ok_or(AuthFailure::Disabled)?;
        let State::Negotiating(acceptor) = &mut self.state else {
            return Err(AuthFailure::Unexpected);
        };
        let (message, mic) = match &mut self.wrapping {
            Wrapping::Raw => (token.to_vec(), None),
            Wrapping::Spnego {
                mech_types,
                mic_required,
            } => {
                let client = spnego::parse_client_token(token)?;
                if let Some(types) = client.mech_types {
                    if !client.ntlm_offered {
                        return Err(AuthFailure::Spnego(cas_auth::spnego::SpnegoError::NoNtlm));
                    }
                    *mech_types = Some(types);
                    *mic_required = !client.ntlm_first;
                    *acceptor = None;
                    if !client.ntlm_first || client.token.is_none() {
                        // The optimistic token is for another mechanism: ask for NTLM.
                        return Ok(AuthStep::Continue(spnego::encode_response(
                            NegState::AcceptIncomplete,
                            true,
                            None,
                            None,
                        )));
                    }
                }
                (client.token.unwrap_or_default(), client.mech_list_mic)
            }
        };
        let is_negotiate = message.get(8..12) == Some(&1u32.to_le_bytes()[..]);
        if is_negotiate {
            let mut fresh = NtlmAcceptor::new(ntlm_config);
            let challenge = fresh.handle_negotiate(&message, (config.challenge)(), now)?;
            *acceptor = Some(fresh);
            return Ok(AuthStep::Continue(match &self.wrapping {
                Wrapping::Raw => challenge,
                Wrapping::Spnego { .. } => spnego::encode_response(
                    NegState::AcceptIncomplete,
                    true,
                    Some(&challenge),
                    None,
                ),
            }));
        }
        let mut acceptor = acceptor.take().ok_or(AuthFailure::Unexpected)?;
        let mut ok = acceptor.handle_authenticate(config.store.as_ref(), &message, now)?;
        if ok.version == cas_auth::ntlm::NtlmVersion::Anonymous {
            return Err(AuthFailure::Anonymous);
        }
        let mut session = ok.session.take();
        if signs(self.level) && session.is_none() {
            return Err(AuthFailure::NoSessionKey);
        }
        let final_token = match &self.wrapping {
            Wrapping::Raw => None,
            Wrapping::Spnego {
                mech_types,
                mic_required,
            } => {
                let our_mic = match (&mut session, mech_types, mic) {
                    (Some(s), Some(types), Some(mic)) => {
                        s.verify(types, &mic)
                            .map_err(|_| AuthFailure::MechListMic)?;
                        let ours = s.sign(types);
                        // MS-SPNG §3.3.5.1: the first protected PDU reuses the RC4
                        // state the MICs started from, with the next sequence numbers.
                        s.restart_rc4_after_mech_list_mic();
                        Some(ours)
                    }
                    _ if *mic_required => return Err(AuthFailure::MechListMic),
                    _ => None,
                };
                Some(spnego::encode_response(
                    NegState::AcceptCompleted,
                    false,
                    None,
                    our_mic.as_ref().map(|m| &m[..]),
                ))
            }
        };
        self.session = session;
        self.user = Some(ok.user);
        self.state = State::Established;
        Ok(AuthStep::Complete(final_token))
    }

    /// Checks (integrity) or unseals and checks (privacy) one received request PDU in
    /// place. `pdu` is the whole fragment; `stub_start` where its stub data begins. The
    /// caller has checked that the PDU carries a verifier of this context.
    pub fn unprotect(&mut self, pdu: &mut [u8], stub_start: usize) -> Result<(), ProtectError> {
        let session = self.session.as_mut().ok_or(ProtectError::NotEstablished)?;
        let (auth_length, trailer_at) = verifier_bounds(pdu)?;
        if auth_length != SIGNATURE_LEN {
            return Err(ProtectError::Malformed);
        }
        let sig_at = pdu.len() - SIGNATURE_LEN;
        let (signed, signature) = pdu.split_at_mut(sig_at);
        let result = if self.level == AuthLevel::PKT_PRIVACY {
            if stub_start > trailer_at {
                return Err(ProtectError::Malformed);
            }
            let (before, rest) = signed.split_at_mut(stub_start);
            let (data, after) = rest.split_at_mut(trailer_at - stub_start);
            session.unseal_parts(before, data, after, signature)
        } else {
            session.verify_parts(&[signed], signature)
        };
        result.map_err(|_| ProtectError::BadSignature)
    }

    /// Signs or seals one outgoing PDU in place: `pdu` was encoded with a 16-byte zero
    /// auth value and this context's `sec_trailer`; `stub_start` is where its stub begins.
    pub fn protect(&mut self, pdu: &mut [u8], stub_start: usize) -> Result<(), ProtectError> {
        let session = self.session.as_mut().ok_or(ProtectError::NotEstablished)?;
        let (_, trailer_at) = verifier_bounds(pdu)?;
        let sig_at = pdu.len() - SIGNATURE_LEN;
        let (signed, signature) = pdu.split_at_mut(sig_at);
        let sig = if self.level == AuthLevel::PKT_PRIVACY {
            let (before, rest) = signed.split_at_mut(stub_start);
            let (data, after) = rest.split_at_mut(trailer_at - stub_start);
            session.seal_parts(before, data, after)
        } else {
            session.sign_parts(&[signed])
        };
        signature.copy_from_slice(&sig);
        Ok(())
    }
}

/// Why a PDU's protection failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtectError {
    /// No session keys (authentication not finished).
    #[error("security context not established")]
    NotEstablished,
    /// The verifier is not a 16-byte NTLM signature, or the PDU is too short for it.
    #[error("malformed auth verifier")]
    Malformed,
    /// The signature did not verify: the session is unusable from now on.
    #[error("bad signature")]
    BadSignature,
}

/// `(auth_length, offset of the sec_trailer)` of a PDU with a verifier.
fn verifier_bounds(pdu: &[u8]) -> Result<(usize, usize), ProtectError> {
    if pdu.len() < HEADER_LEN {
        return Err(ProtectError::Malformed);
    }
    let little = pdu[4] & 0xF0 == 0x10;
    let raw = [pdu[10], pdu[11]];
    let auth_length = usize::from(if little {
        u16::from_le_bytes(raw)
    } else {
        u16::from_be_bytes(raw)
    });
    let trailer_at = pdu
        .len()
        .checked_sub(auth_length + SEC_TRAILER_LEN)
        .filter(|&t| t >= HEADER_LEN)
        .ok_or(ProtectError::Malformed)?;
    Ok((auth_length, trailer_at))
}
