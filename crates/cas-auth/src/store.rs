//! The [`CredentialStore`] trait: what authentication mechanisms ask of an account database.

use std::error::Error;
use std::sync::Arc;

use crate::hash::NtHash;
use crate::secret::Secret;

/// A store failed to answer. Mechanisms turn this into a temporary failure
/// ([`SaslFailure::StoreUnavailable`](crate::sasl::SaslFailure::StoreUnavailable)), which a
/// POP3 server reports as `-ERR [SYS/TEMP]` rather than as a wrong password.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backing service (directory, database) cannot be reached or timed out.
    #[error("credential store unavailable: {0}")]
    Unavailable(String),
    /// The account exists but its stored credential cannot be used (for example an Argon2
    /// parameter set the hasher rejects at verification time).
    #[error("stored credential is unusable: {0}")]
    Corrupt(String),
    /// Any other failure of a custom store.
    #[error("credential store error: {0}")]
    Other(#[source] Arc<dyn Error + Send + Sync>),
}

/// An account database that mechanisms consult.
///
/// Implementations answer two questions: does this password belong to this user (for
/// PLAIN, LOGIN, USER/PASS and HTTP Basic), and what is this user's NT hash (for the NTLM
/// acceptor, which never sees the password). A store that cannot answer the second returns
/// `Ok(None)`, and NTLM then fails for that user.
///
/// # User names and passwords
///
/// Implementations must follow the same matching rules, so that a user who can log in with
/// one mechanism can log in with all of them:
///
/// - **User names** match case-insensitively in ASCII (`Alice` = `alice`); other characters
///   must match exactly. No Unicode case folding or normalization (NFC/NFKC) is applied.
/// - **Passwords** match exactly, byte for byte. SASLprep (RFC 4013), which RFC 4616
///   recommends but does not require, is not applied: a password with non-ASCII characters
///   must be typed in the same normalization form it was set in.
///
/// # Timing
///
/// [`verify_password`](CredentialStore::verify_password) must take about as long for an
/// unknown user as for a known user with a wrong password, so that response times do not
/// reveal which accounts exist. Stores that hash (like
/// [`FileCredentialStore`](crate::FileCredentialStore)) do this by hashing the password
/// against a dummy hash when the user is unknown.
pub trait CredentialStore: Send + Sync {
    /// `Ok(true)` only if `user` exists and `password` is its password.
    ///
    /// Unknown users and wrong passwords both give `Ok(false)`, in about the same time.
    /// `Err` means the store could not decide.
    fn verify_password(&self, user: &str, password: &[u8]) -> Result<bool, StoreError>;

    /// The NT hash (MD4 of the UTF-16LE password, see [`nt_hash_of`](crate::nt_hash_of)) of
    /// `user`, for NTLM. `Ok(None)` when the user is unknown or has no NT hash stored.
    ///
    /// The NT hash is password-equivalent: whoever reads it can authenticate as the user
    /// over NTLM without knowing the password (pass-the-hash), and it is unsalted. Keep one
    /// only for users for whom NTLM is enabled (in a
    /// [`FileCredentialStore`](crate::FileCredentialStore), the optional `nt=` field), and
    /// protect the store like the passwords themselves. Users without one simply cannot
    /// use NTLM; they fail exactly like a wrong password.
    fn nt_hash(&self, user: &str) -> Result<Option<Secret<NtHash>>, StoreError>;

    /// The account name as the store spells it, if `user` names an existing account.
    ///
    /// Mechanisms report this spelling as the authenticated identity, so that `ALICE` and
    /// `alice` map to one mailbox. `Ok(None)` means "unknown, or the store does not
    /// normalize": the name is then used as presented. The default returns `Ok(None)`.
    fn canonical_user(&self, user: &str) -> Result<Option<String>, StoreError> {
        let _ = user;
        Ok(None)
    }
}

impl<S: CredentialStore + ?Sized> CredentialStore for Arc<S> {
    fn verify_password(&self, user: &str, password: &[u8]) -> Result<bool, StoreError> {
        (**self).verify_password(user, password)
    }

    fn nt_hash(&self, user: &str) -> Result<Option<Secret<NtHash>>, StoreError> {
        (**self).nt_hash(user)
    }

    fn canonical_user(&self, user: &str) -> Result<Option<String>, StoreError> {
        (**self).canonical_user(user)
    }
}

impl<S: CredentialStore + ?Sized> CredentialStore for &S {
    fn verify_password(&self, user: &str, password: &[u8]) -> Result<bool, StoreError> {
        (**self).verify_password(user, password)
    }

    fn nt_hash(&self, user: &str) -> Result<Option<Secret<NtHash>>, StoreError> {
        (**self).nt_hash(user)
    }

    fn canonical_user(&self, user: &str) -> Result<Option<String>, StoreError> {
        (**self).canonical_user(user)
    }
}
