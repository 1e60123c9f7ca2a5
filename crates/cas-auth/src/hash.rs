//! Password hashing: Argon2id PHC strings for password checks, NT hashes for NTLM.

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use md4::{Digest, Md4};
use zeroize::Zeroizing;

use crate::secret::constant_time_eq;

/// An NT hash (NTOWFv1 in MS-NLMP §3.3.1): MD4 of the UTF-16LE encoded password.
///
/// It is password-equivalent for NTLM, so stores hand it out wrapped in
/// [`Secret`](crate::Secret).
pub type NtHash = [u8; 16];

/// Length in bytes of the Argon2 output that [`hash_password`] stores in the PHC string.
pub const HASH_OUTPUT_LEN: usize = 32;

/// Shortest salt [`hash_password`] accepts, in bytes (Argon2's own minimum, RFC 9106 §3.1).
pub const MIN_SALT_LEN: usize = argon2::MIN_SALT_LEN;

/// Longest salt [`hash_password`] accepts, in bytes: the PHC string format holds at most 64
/// base64 characters of salt.
pub const MAX_SALT_LEN: usize = 48;

/// Highest Argon2 memory cost accepted, in KiB (4 GiB).
///
/// Twice RFC 9106's most memory-hungry recommendation (2 GiB); a stored hash above it is
/// more likely a typo than a choice, and would make every login allocate that much.
pub const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;

/// Highest Argon2 iteration count accepted. Far above any recommendation (OWASP: 2 to 5;
/// RFC 9106: 1 or 3); a stored hash above it would stall every login.
pub const MAX_ITERATIONS: u32 = 256;

/// Cost parameters for [`hash_password_with`].
///
/// The [`Default`] is the OWASP Password Storage Cheat Sheet's first Argon2id configuration
/// (m = 19456 KiB = 19 MiB, t = 2, p = 1), which is also the `argon2` crate's default. On a
/// current x86-64 core one verification takes some tens of milliseconds in a release build;
/// this is the work a brute-force attacker pays per guess, and the server pays per login.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PasswordHashParams {
    /// Memory cost in KiB (`m`). At least 8 × `parallelism`.
    pub memory_kib: u32,
    /// Number of passes over the memory (`t`). At least 1.
    pub iterations: u32,
    /// Degree of parallelism (`p`): lanes. The hash is computed on one thread regardless;
    /// this value only changes the result and the memory layout.
    pub parallelism: u32,
}

impl PasswordHashParams {
    /// OWASP's recommended Argon2id parameters: m = 19456 KiB, t = 2, p = 1.
    pub const OWASP: PasswordHashParams = PasswordHashParams {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    };

    /// The cheapest parameters Argon2 accepts (m = 8 KiB, t = 1, p = 1).
    ///
    /// **Only for tests and examples**: a hash made with these falls to brute force
    /// quickly. They exist so that test suites and doctests, which run in debug builds, can
    /// verify passwords in microseconds instead of seconds.
    pub const fn dangerous_low_cost() -> PasswordHashParams {
        PasswordHashParams {
            memory_kib: 8,
            iterations: 1,
            parallelism: 1,
        }
    }
}

impl Default for PasswordHashParams {
    fn default() -> Self {
        PasswordHashParams::OWASP
    }
}

/// Why [`hash_password`] could not produce a hash.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// The salt is shorter than [`MIN_SALT_LEN`] or longer than [`MAX_SALT_LEN`].
    #[error("salt must be {MIN_SALT_LEN} to {MAX_SALT_LEN} bytes long, got {len}")]
    SaltLength {
        /// Length of the rejected salt.
        len: usize,
    },
    /// Argon2 rejected the cost parameters.
    #[error("invalid Argon2 parameters: {0}")]
    Params(String),
    /// Argon2 failed while hashing (for example a password longer than 2³² − 1 bytes).
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// Hashes `password` with Argon2id at the [OWASP parameters](PasswordHashParams::OWASP) and
/// returns the PHC string, e.g. `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`.
///
/// The caller supplies the salt: 16 random bytes from the operating system's generator are
/// the norm (this crate does not draw randomness itself). The salt must be
/// [`MIN_SALT_LEN`]..=[`MAX_SALT_LEN`] bytes.
///
/// The result is what a [`FileCredentialStore`](crate::FileCredentialStore) line holds after
/// the user name.
pub fn hash_password(password: &[u8], salt: &[u8]) -> Result<String, HashError> {
    hash_password_with(password, salt, &PasswordHashParams::OWASP)
}

/// Like [`hash_password`], with explicit cost parameters.
///
/// ```
/// use cas_auth::{hash_password_with, PasswordHashParams};
///
/// let phc = hash_password_with(b"secret", b"0123456789abcdef", &PasswordHashParams::dangerous_low_cost())?;
/// assert!(phc.starts_with("$argon2id$v=19$m=8,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$"));
/// # Ok::<(), cas_auth::HashError>(())
/// ```
pub fn hash_password_with(
    password: &[u8],
    salt: &[u8],
    params: &PasswordHashParams,
) -> Result<String, HashError> {
    if !(MIN_SALT_LEN..=MAX_SALT_LEN).contains(&salt.len()) {
        return Err(HashError::SaltLength { len: salt.len() });
    }
    check_costs(params.memory_kib, params.iterations, params.parallelism)
        .map_err(HashError::Params)?;
    let salt = SaltString::encode_b64(salt).map_err(|e| HashError::Params(e.to_string()))?;
    let params = Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(HASH_OUTPUT_LEN),
    )
    .map_err(|e| HashError::Params(e.to_string()))?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let hash = argon2
        .hash_password(password, &salt)
        .map_err(|e| HashError::Hashing(e.to_string()))?;
    Ok(hash.to_string())
}

/// The NT hash of `password`: MD4 over its UTF-16LE encoding (MS-NLMP §3.3.1, NTOWFv1).
///
/// ```
/// // MS-NLMP §4.2.2.1.2: the NT hash of "Password".
/// let h = cas_auth::nt_hash_of("Password");
/// assert_eq!(h[..4], [0xa4, 0xf4, 0x9c, 0x40]);
/// ```
pub fn nt_hash_of(password: &str) -> NtHash {
    let mut utf16 = Zeroizing::new(Vec::with_capacity(password.len() * 2));
    for unit in password.encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    let mut out = [0u8; 16];
    out.copy_from_slice(&Md4::digest(utf16.as_slice()));
    out
}

/// Enforces [`MAX_MEMORY_KIB`], [`MAX_ITERATIONS`] and Argon2's own maximum parallelism
/// before `argon2::Params::new` sees the values: argon2 0.5.3 computes `8 * p` in `u32`
/// first, which overflows (a panic in debug builds) for `p` above 2²⁹.
fn check_costs(m: u32, t: u32, p: u32) -> Result<(), String> {
    if p > Params::MAX_P_COST {
        return Err(format!(
            "parallelism {p} exceeds the maximum {}",
            Params::MAX_P_COST
        ));
    }
    if m > MAX_MEMORY_KIB {
        return Err(format!(
            "memory cost {m} KiB exceeds the maximum {MAX_MEMORY_KIB} KiB"
        ));
    }
    if t > MAX_ITERATIONS {
        return Err(format!(
            "iteration count {t} exceeds the maximum {MAX_ITERATIONS}"
        ));
    }
    Ok(())
}

/// A PHC string decoded once, at load time, into what a verification needs.
#[derive(Clone)]
pub(crate) struct StoredHash {
    algorithm: Algorithm,
    version: Version,
    params: Params,
    salt: Vec<u8>,
    expected: Vec<u8>,
}

/// Salt of the dummy hash verified for unknown users. Its value does not matter.
const DUMMY_SALT: &[u8; 16] = b"cas-auth/dummy!!";

impl StoredHash {
    /// Decodes an Argon2 PHC string (`$argon2id$`, `$argon2i$` or `$argon2d$`).
    pub(crate) fn parse(phc: &str) -> Result<StoredHash, String> {
        let hash = PasswordHash::new(phc).map_err(|e| e.to_string())?;
        let algorithm = Algorithm::try_from(hash.algorithm)
            .map_err(|_| format!("unsupported algorithm {:?}", hash.algorithm.as_str()))?;
        let version = match hash.version {
            Some(v) => Version::try_from(v).map_err(|_| format!("unsupported version {v}"))?,
            None => Version::default(),
        };
        let (mut m, mut t, mut p) = (0, 0, 0);
        for (ident, value) in hash.params.iter() {
            let slot = match ident.as_str() {
                "m" => &mut m,
                "t" => &mut t,
                "p" => &mut p,
                _ => continue,
            };
            *slot = value.decimal().map_err(|e| e.to_string())?;
        }
        check_costs(m, t, p)?;
        let params = Params::try_from(&hash).map_err(|e| e.to_string())?;
        let salt = hash.salt.ok_or("missing salt")?;
        let mut buf = [0u8; 64];
        let salt = salt
            .decode_b64(&mut buf)
            .map_err(|e| format!("salt: {e}"))?
            .to_vec();
        if salt.len() < MIN_SALT_LEN {
            return Err(format!("salt shorter than {MIN_SALT_LEN} bytes"));
        }
        let expected = hash.hash.ok_or("missing hash output")?.as_bytes().to_vec();
        Ok(StoredHash {
            algorithm,
            version,
            params,
            salt,
            expected,
        })
    }

    /// A hash with the same algorithm, parameters and output length as `self` that no
    /// password is expected to match. Verifying against it costs what a real check costs.
    pub(crate) fn dummy_like(&self) -> StoredHash {
        StoredHash {
            salt: DUMMY_SALT.to_vec(),
            expected: vec![0; self.expected.len()],
            ..self.clone()
        }
    }

    /// The dummy for a store without accounts: OWASP parameters.
    pub(crate) fn default_dummy() -> StoredHash {
        StoredHash {
            algorithm: Algorithm::Argon2id,
            version: Version::V0x13,
            params: Params::DEFAULT,
            salt: DUMMY_SALT.to_vec(),
            expected: vec![0; HASH_OUTPUT_LEN],
        }
    }

    /// Recomputes the hash for `password` and compares it in constant time.
    pub(crate) fn verify(&self, password: &[u8]) -> Result<bool, argon2::Error> {
        let mut out = Zeroizing::new(vec![0u8; self.expected.len()]);
        Argon2::new(self.algorithm, self.version, self.params.clone())
            .hash_password_into(password, &self.salt, &mut out)?;
        Ok(constant_time_eq(&out, &self.expected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn nt_hash_known_answers() {
        // MS-NLMP §4.2.2.1.2 (NTOWFv1("Password")), also used by §4.2.4.1.1.
        assert_eq!(
            hex(&nt_hash_of("Password")),
            "a4f49c406510bdcab6824ee7c30fd852"
        );
        // The empty password's NT hash, well known from Windows account databases.
        assert_eq!(hex(&nt_hash_of("")), "31d6cfe0d16ae931b73c59d7e0c089c0");
        assert_eq!(
            hex(&nt_hash_of("password")),
            "8846f7eaee8fb117ad06bdd830b7586c"
        );
    }

    #[test]
    fn nt_hash_uses_utf16_not_utf8() {
        // "é" is one UTF-16 unit (0x00E9) but two UTF-8 bytes; a supplementary-plane
        // character is a surrogate pair. Neither may hash like its UTF-8 bytes read as Latin-1.
        assert_ne!(nt_hash_of("é"), nt_hash_of("Ã©"));
        let mut expected = Md4::new();
        expected.update([0x3d, 0xd8, 0x00, 0xde]); // U+1F600 as UTF-16LE surrogates
        assert_eq!(nt_hash_of("\u{1F600}")[..], expected.finalize()[..]);
    }

    #[test]
    fn phc_round_trip() {
        let p = PasswordHashParams::dangerous_low_cost();
        let phc = hash_password_with(b"correct horse", b"saltsaltsaltsalt", &p).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$"));
        let stored = StoredHash::parse(&phc).unwrap();
        assert!(stored.verify(b"correct horse").unwrap());
        assert!(!stored.verify(b"correct horse ").unwrap());
        assert!(!stored.verify(b"").unwrap());
        assert!(!stored.dummy_like().verify(b"correct horse").unwrap());
        // Same inputs, same string: hashing is deterministic given the salt.
        assert_eq!(
            phc,
            hash_password_with(b"correct horse", b"saltsaltsaltsalt", &p).unwrap()
        );
    }

    #[test]
    fn default_params_are_owasp() {
        let d = PasswordHashParams::default();
        assert_eq!((d.memory_kib, d.iterations, d.parallelism), (19456, 2, 1));
        let dummy = StoredHash::default_dummy();
        assert_eq!(dummy.params.m_cost(), 19456);
        assert_eq!(dummy.params.t_cost(), 2);
    }

    #[test]
    fn reference_implementation_known_answer() {
        // The example in the Argon2 reference implementation's README:
        // `echo -n "password" | ./argon2 somesalt -t 2 -m 16 -p 4 -l 24` (Argon2i, v=19).
        let phc = "$argon2i$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";
        let stored = StoredHash::parse(phc).unwrap();
        assert_eq!(stored.expected.len(), 24);
        assert!(stored.verify(b"password").unwrap());
        assert!(!stored.verify(b"Password").unwrap());
    }

    #[test]
    fn hash_password_rejects_bad_input() {
        let p = PasswordHashParams::dangerous_low_cost();
        assert_eq!(
            hash_password_with(b"pw", b"short", &p),
            Err(HashError::SaltLength { len: 5 })
        );
        assert_eq!(
            hash_password_with(b"pw", &[0u8; 49], &p),
            Err(HashError::SaltLength { len: 49 })
        );
        assert!(hash_password_with(b"pw", &[0u8; 48], &p).is_ok());
        let bad = PasswordHashParams {
            memory_kib: 8,
            iterations: 0,
            parallelism: 1,
        };
        assert!(matches!(
            hash_password_with(b"pw", &[0u8; 16], &bad),
            Err(HashError::Params(_))
        ));
        // Parallelism whose 8 * p overflows u32 inside argon2 must be an error, not a panic.
        for parallelism in [Params::MAX_P_COST + 1, 1 << 29, u32::MAX] {
            let huge = PasswordHashParams {
                memory_kib: 8,
                iterations: 1,
                parallelism,
            };
            assert!(matches!(
                hash_password_with(b"pw", &[0u8; 16], &huge),
                Err(HashError::Params(_))
            ));
        }
    }

    #[test]
    fn stored_hash_rejects_non_argon2() {
        for bad in [
            "",
            "plain",
            "$6$rounds=5000$salt$hash",
            "$pbkdf2-sha256$i=1000$c2FsdA$aGFzaA",
            "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ",
            "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$AAAAAAAAAAAAAAAAAAAAAA",
            "$argon2id$v=18$m=8,t=1,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
            "$argon2id$v=19$m=8,t=0,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
            "$argon2id$v=19$m=8,t=1,p=1,x=3$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
            // Fuzz finding: p = 1222222222 overflowed `8 * p` inside argon2 0.5.3.
            "$argon2id$v=19$m=19456,p=1222222222$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
            "$argon2id$v=19$m=19456,t=2,p=4294967295$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
            // Costs that would make every verification allocate 4 TiB or run for hours.
            "$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
            "$argon2id$v=19$m=8,t=4294967295,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert!(StoredHash::parse(bad).is_err(), "{bad:?}");
        }
    }
}
