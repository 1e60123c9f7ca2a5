//! [`Secret`], a wrapper that keeps sensitive values out of logs, and [`constant_time_eq`].

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// A sensitive value (password, NT hash, key) that never prints.
///
/// `Debug` writes `Secret(..)` and `Display` writes `[redacted]`, so a `Secret` can sit in
/// structs that are logged with `{:?}` without leaking its contents. Reading the value takes
/// an explicit [`expose`](Secret::expose) call, which is easy to find in review.
///
/// The value is overwritten with zeros when the `Secret` is dropped (through the
/// [`zeroize`] crate), which is why `T` must implement [`Zeroize`]: `Vec<u8>`, `String`,
/// byte arrays and the integer types all do. Zeroizing is best effort: copies made before
/// the value was wrapped, or by reallocation of a growing `Vec`, are not reached.
///
/// ```
/// use cas_auth::Secret;
///
/// let password = Secret::new(b"hunter2".to_vec());
/// assert_eq!(format!("{password:?}"), "Secret(..)");
/// assert_eq!(password.to_string(), "[redacted]");
/// assert_eq!(password.expose(), b"hunter2");
/// ```
pub struct Secret<T: Zeroize>(T);

impl<T: Zeroize> Secret<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The wrapped value. Every call site is a place where the secret may escape: keep them
    /// few and obvious.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T: Zeroize> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Secret(value)
    }
}

impl<T: Zeroize + Clone> Clone for Secret<T> {
    fn clone(&self) -> Self {
        Secret(self.0.clone())
    }
}

impl<T: Zeroize + Default> Default for Secret<T> {
    fn default() -> Self {
        Secret(T::default())
    }
}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl<T: Zeroize> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Compares two byte strings in time that depends only on their lengths, not on where they
/// first differ.
///
/// Use it for anything an attacker can probe byte by byte: password hashes, MACs, NTLM
/// proofs. Slices of different lengths compare unequal at once, so the length itself is not
/// hidden; compare fixed-size values (hash outputs) where that matters.
///
/// ```
/// assert!(cas_auth::constant_time_eq(b"abc", b"abc"));
/// assert!(!cas_auth::constant_time_eq(b"abc", b"abd"));
/// assert!(!cas_auth::constant_time_eq(b"abc", b"abcd"));
/// ```
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // `subtle` already answers "not equal" for different lengths without looking at the
    // contents; the comparison of equal-length slices is branch-free.
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::from(String::from("p4ssw0rd"));
        assert_eq!(format!("{s:?}"), "Secret(..)");
        assert_eq!(format!("{s:#?}"), "Secret(..)");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(s.expose(), "p4ssw0rd");
        let nested = Some(Secret::new([7u8; 16]));
        assert_eq!(format!("{nested:?}"), "Some(Secret(..))");
    }

    #[test]
    fn secret_clone_is_independent() {
        let a = Secret::new(vec![1u8, 2, 3]);
        let b = a.clone();
        drop(a);
        assert_eq!(b.expose(), &[1, 2, 3]);
        assert!(Secret::<Vec<u8>>::default().expose().is_empty());
    }

    #[test]
    fn constant_time_eq_cases() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"same", b"same"));
        assert!(!constant_time_eq(b"same", b"Same"));
        assert!(!constant_time_eq(b"same", b"sam"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
