//! Sans-IO authentication for the client access tier of a mail system.
//!
//! What this crate is:
//!
//! - [`sasl`]: server-side SASL mechanisms as step machines — [`PLAIN`](sasl::PlainServer)
//!   (RFC 4616), [`LOGIN`](sasl::LoginServer) (draft-murchison-sasl-login) and
//!   [`NTLM`](sasl::NtlmServer) — that a protocol session (POP3 `AUTH`, IMAP
//!   `AUTHENTICATE`) drives with the decoded client responses.
//! - [`ntlm`]: the NTLM acceptor (MS-NLMP) — NEGOTIATE → CHALLENGE → AUTHENTICATE, NTLMv2
//!   verification with MIC, time-skew window and channel bindings (Extended Protection),
//!   session keys and [`NtlmSession`](ntlm::NtlmSession) signing and sealing for DCE/RPC;
//!   and the client side, [`NtlmInitiator`](ntlm::NtlmInitiator) (NTLMv2 with MIC and
//!   channel bindings).
//!   NTLMv1 and anonymous logons are refused unless explicitly enabled; LM always.
//! - [`http`]: `Authorization` / `WWW-Authenticate` for Basic (RFC 7617), NTLM and
//!   Negotiate (raw NTLM as Outlook sends it, or SPNEGO-wrapped, via [`spnego`]), one
//!   [`HttpAuthenticator`](http::HttpAuthenticator) per TCP connection.
//! - [`channel_binding`]: RFC 5929 `tls-server-end-point` bindings from the server's
//!   certificate, and their MD5 as NTLM carries it.
//! - [`DomainPolicy`]: `DOMAIN\user`, `user@domain` and `user` mapped to one account; names
//!   qualified with a foreign domain refused.
//! - [`CredentialStore`]: what mechanisms ask of an account database — "is this the
//!   password?" and "what is the NT hash?" (for the NTLM acceptor, which never sees
//!   passwords) — with rules for user-name matching and timing that every store follows.
//! - [`FileCredentialStore`]: a store parsed from a passwd-style text file of Argon2id PHC
//!   hashes, optional NT hashes and extra `key=value` fields.
//! - [`hash_password`] (Argon2id, OWASP parameters, caller-supplied salt) and
//!   [`nt_hash_of`] (MD4 of UTF-16LE) to make those files.
//! - [`Secret`], which never prints, and [`constant_time_eq`].
//!
//! What it is not: it does no I/O (the application reads the passwd file and hands over
//! its text), reads no clock (times are passed in, as [`ntlm::FileTime`]) and draws no
//! randomness (salts and NTLM server challenges come from the caller), and it does not
//! frame SASL on the wire (base64, continuation lines and `*` cancellation belong to the
//! protocol session) nor HTTP (the server sends the 401s and keeps the connection).
//! Cryptographic primitives come from the RustCrypto crates (MD4, MD5, HMAC, RC4, DES,
//! SHA-2); none is written here.
//!
//! # Example: PLAIN against a passwd file
//!
//! ```
//! use cas_auth::sasl::{PlainServer, SaslFailure, Step};
//! use cas_auth::{hash_password_with, nt_hash_of, FileCredentialStore, PasswordHashParams};
//!
//! // Provisioning (done once, e.g. by the server's demo-data generator). Real code uses
//! // `hash_password` (OWASP cost) and 16 random salt bytes; the cheap parameters keep this
//! // example fast in a debug build.
//! let params = PasswordHashParams::dangerous_low_cost();
//! let phc = hash_password_with(b"tanstaaftanstaaf", b"salt-from-the-os-rng", &params)?;
//! let line = FileCredentialStore::render_line("tim", &phc, Some(nt_hash_of("tanstaaftanstaaf")))?;
//! let passwd_file = format!("# users\n{line}\n");
//!
//! // At startup: the application reads the file and parses its text.
//! let store = FileCredentialStore::parse(&passwd_file)?;
//!
//! // Per login: the POP3/IMAP session hands over the decoded client response
//! // (RFC 4616 §4's first example, "tim" with password "tanstaaftanstaaf").
//! let mut plain = PlainServer::new();
//! match plain.step(&store, Some(b"\0tim\0tanstaaftanstaaf")) {
//!     Step::Success { authorization_id, authentication_id } => {
//!         assert_eq!(authorization_id, "tim");
//!         assert_eq!(authentication_id, "tim");
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//!
//! // A wrong password and an unknown user fail alike, in about the same time.
//! let mut plain = PlainServer::new();
//! let step = plain.step(&store, Some(b"\0tim\0wrong"));
//! assert!(matches!(step, Step::Failure(SaslFailure::InvalidCredentials)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # User names, passwords, timing
//!
//! User names match case-insensitively in ASCII and exactly otherwise; passwords match
//! byte for byte (no SASLprep). Unknown users cost an Argon2 run like known ones. See
//! [`CredentialStore`] for the full rules.
//!
//! # Deviations from the house style
//!
//! The mechanisms are not sessions: they have no `handle_*`/`poll_*` pair because each
//! client response yields exactly one [`sasl::Step`] at once, so `step` returns it (the
//! shape imap-next's SASL handling and most SASL libraries use).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod account;
pub mod channel_binding;
mod der;
mod hash;
pub mod http;
pub mod ntlm;
mod passwd;
pub mod sasl;
mod secret;
pub mod spnego;
mod store;

#[doc(hidden)]
pub mod fuzzing;

pub use account::{AccountName, AccountNameError, DomainPolicy};
pub use der::DerError;
pub use hash::{
    HASH_OUTPUT_LEN, HashError, MAX_ITERATIONS, MAX_MEMORY_KIB, MAX_SALT_LEN, MIN_SALT_LEN, NtHash,
    PasswordHashParams, hash_password, hash_password_with, nt_hash_of,
};
pub use passwd::{
    Account, AccountLine, EntryError, FileCredentialStore, MAX_FIELD_KEY_LEN, MAX_USER_NAME_LEN,
    PasswdError, UserNameError, validate_user_name,
};
pub use secret::{Secret, constant_time_eq};
pub use store::{CredentialStore, StoreError};
