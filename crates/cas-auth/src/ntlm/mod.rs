//! NTLM (MS-NLMP): the acceptor (NEGOTIATE → CHALLENGE → AUTHENTICATE, NTLMv2
//! verification, MIC, channel bindings, session keys, signing and sealing) and the
//! initiator that produces the client's messages.
//!
//! - [`NtlmAcceptor`] runs one exchange against a [`CredentialStore`](crate::CredentialStore)
//!   that hands out NT hashes. It is what the SASL mechanism
//!   ([`NtlmServer`](crate::sasl::NtlmServer)) and the HTTP authenticator
//!   ([`http::HttpAuthenticator`](crate::http::HttpAuthenticator)) drive.
//! - [`NtlmInitiator`] is the client side: NEGOTIATE, then the NTLMv2 AUTHENTICATE for
//!   a CHALLENGE (MIC when the server sent a timestamp, optional channel bindings, key
//!   exchange), built from the same messages and crypto; the connectivity tests and any
//!   proxy that logs in to a backend drive it.
//! - [`messages`] parses and encodes the three messages and their AV pairs; every
//!   malformed input is a typed [`MessageError`], never a panic, and input is bounded
//!   ([`DEFAULT_MAX_MESSAGE_LEN`]).
//! - [`crypto`] holds the one-way functions and key derivations, checked against the
//!   known answers of MS-NLMP §4.2.
//! - [`NtlmSession`] signs, verifies, seals and unseals after authentication (DCE/RPC
//!   packet integrity and privacy).
//!
//! # Security defaults
//!
//! Only NTLMv2 is accepted. NTLMv1 and anonymous logons are refused with their own error
//! ([`NtlmError::Ntlmv1Refused`], [`NtlmError::AnonymousRefused`]) unless enabled with
//! [`NtlmConfig::dangerous_allow_ntlmv1`] / [`NtlmConfig::dangerous_allow_anonymous`]; LM
//! is always refused ([`NtlmError::LmRefused`]) because the store keeps no LM hash. A wrong
//! password, an unknown user and a user without NT hash fail alike. The server challenge
//! is single-use, so a replayed AUTHENTICATE fails. The NT hash is password-equivalent for
//! NTLM: whoever reads it can authenticate as the user, so stores keep one only for users
//! who need NTLM.
//!
//! # Interoperability
//!
//! Follows what real clients do: the 32-byte OEM-only NEGOTIATE of curl and impacket;
//! AUTHENTICATE headers without VERSION and MIC (found from the smallest payload offset);
//! NTLMv2 blobs hashed exactly as received (impacket drops trailing zeros, Windows 7 adds
//! some); only flags the client asked for are granted; the MIC is checked when
//! `MsvAvFlags` says it is there and not required otherwise (curl never sends one); the
//! NTProofStr is retried with an empty domain; the target info carries NetBIOS and DNS
//! names and a timestamp.

mod acceptor;
pub mod crypto;
mod initiator;
pub mod messages;
mod session;

pub use acceptor::{
    DEFAULT_MAX_CLOCK_SKEW, DEFAULT_MAX_MESSAGE_LEN, FileTime, NtlmAcceptor, NtlmAuthenticated,
    NtlmConfig, NtlmError, NtlmVersion,
};
pub use initiator::{NtlmCredentials, NtlmInitiated, NtlmInitiator, NtlmInitiatorError};
pub use messages::{MessageError, MessageErrorKind, NegotiateFlags};
pub use session::{NtlmSession, Role, SIGNATURE_LEN, SignatureError};
