//! Modified UTF-7 mailbox names (RFC 3501 §5.1.3), used by peers without UTF8=ACCEPT.
//!
//! Printable US-ASCII (0x20..=0x7E) stands for itself except `&`, written `&-`. Everything
//! else is UTF-16BE in base64 with `,` instead of `/`, no padding, between `&` and `-`.
//! The decoder is strict: it refuses every form the RFC says must not be produced (encoded
//! printable ASCII, two adjacent encoded runs, non-zero padding bits, a missing `-`), so one
//! name has exactly one wire form and names cannot be smuggled past access checks.

use std::borrow::Cow;

/// Why a byte string is not canonical modified UTF-7.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Mutf7Error {
    /// A byte outside printable US-ASCII appears outside a base64 run (or the name is not
    /// UTF-8 where UTF-8 was expected).
    #[error("byte outside printable US-ASCII")]
    NotAscii,
    /// A base64 run has a character outside the modified base64 alphabet.
    #[error("invalid modified base64")]
    InvalidBase64,
    /// A base64 run is not closed with `-`.
    #[error("unterminated base64 run")]
    Unterminated,
    /// The form is valid but not the one the RFC requires (encoded printable ASCII,
    /// adjacent encoded runs, non-zero padding bits, an odd number of octets).
    #[error("non-canonical modified UTF-7")]
    NonCanonical,
    /// The UTF-16 inside a base64 run has an unpaired surrogate.
    #[error("invalid UTF-16")]
    InvalidUtf16,
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn b64_value(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b',' => 63,
        _ => return None,
    } as u32)
}

fn is_direct(c: char) -> bool {
    (' '..='~').contains(&c)
}

/// Encodes the Unicode mailbox name `name` in modified UTF-7.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    let mut pending: Vec<u16> = Vec::new();
    for c in name.chars() {
        if is_direct(c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

fn flush(units: &mut Vec<u16>, out: &mut String) {
    if units.is_empty() {
        return;
    }
    out.push('&');
    let mut acc: u32 = 0;
    let mut bits = 0;
    for u in units.drain(..) {
        for byte in u.to_be_bytes() {
            acc = (acc << 8) | u32::from(byte);
            bits += 8;
            while bits >= 6 {
                bits -= 6;
                out.push(char::from(ALPHABET[((acc >> bits) & 0x3f) as usize]));
            }
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (6 - bits)) & 0x3f) as usize]));
    }
    out.push('-');
}

/// Decodes the wire name `bytes`, refusing non-canonical forms. Borrows when the name has
/// no `&`.
pub fn decode(bytes: &[u8]) -> Result<Cow<'_, str>, Mutf7Error> {
    if !bytes.iter().all(|&b| (0x20..=0x7e).contains(&b)) {
        return Err(Mutf7Error::NotAscii);
    }
    if memchr::memchr(b'&', bytes).is_none() {
        return std::str::from_utf8(bytes)
            .map(Cow::Borrowed)
            .map_err(|_| Mutf7Error::NotAscii);
    }
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    let mut last_run_end: Option<usize> = None;
    while i < bytes.len() {
        let c = bytes[i];
        if c != b'&' {
            out.push(char::from(c));
            i += 1;
            continue;
        }
        let Some(len) = memchr::memchr(b'-', &bytes[i + 1..]) else {
            return Err(Mutf7Error::Unterminated);
        };
        let run = &bytes[i + 1..i + 1 + len];
        if run.is_empty() {
            out.push('&');
        } else {
            if last_run_end == Some(i) {
                // Two encoded runs back to back must have been one run.
                return Err(Mutf7Error::NonCanonical);
            }
            decode_run(run, &mut out)?;
            last_run_end = Some(i + 2 + len);
        }
        i += len + 2;
    }
    Ok(Cow::Owned(out))
}

fn decode_run(run: &[u8], out: &mut String) -> Result<(), Mutf7Error> {
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut units: Vec<u16> = Vec::with_capacity(run.len() * 6 / 16);
    let mut hi: Option<u8> = None;
    for &c in run {
        let v = b64_value(c).ok_or(Mutf7Error::InvalidBase64)?;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            let byte = ((acc >> bits) & 0xff) as u8;
            match hi.take() {
                None => hi = Some(byte),
                Some(h) => units.push(u16::from_be_bytes([h, byte])),
            }
        }
    }
    // Leftover: fewer than 6 bits, all zero, and no half UTF-16 unit.
    if hi.is_some() || bits >= 6 || (acc & ((1 << bits) - 1)) != 0 {
        return Err(Mutf7Error::NonCanonical);
    }
    for r in char::decode_utf16(units.iter().copied()) {
        let c = r.map_err(|_| Mutf7Error::InvalidUtf16)?;
        if is_direct(c) {
            return Err(Mutf7Error::NonCanonical);
        }
        out.push(c);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3501_example() {
        // RFC 3501 §5.1.3: "~peter/mail/台北/日本語"
        let name = "~peter/mail/\u{53f0}\u{5317}/\u{65e5}\u{672c}\u{8a9e}";
        let wire = "~peter/mail/&U,BTFw-/&ZeVnLIqe-";
        assert_eq!(encode(name), wire);
        assert_eq!(decode(wire.as_bytes()).unwrap(), name);
    }

    #[test]
    fn ampersand_and_plain() {
        assert_eq!(encode("A&B"), "A&-B");
        assert_eq!(decode(b"A&-B").unwrap(), "A&B");
        assert!(matches!(decode(b"Sent").unwrap(), Cow::Borrowed("Sent")));
        assert_eq!(encode("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(decode(b"Entw&APw-rfe").unwrap(), "Entwürfe");
        // Astral plane (surrogate pair).
        let s = "\u{1F600}";
        assert_eq!(decode(encode(s).as_bytes()).unwrap(), s);
    }

    #[test]
    fn strictness() {
        // RFC 3501 counter-examples: "&Jjo!" (unterminated), "&U,BTFw-&ZeVnLIqe-" (adjacent runs).
        assert_eq!(decode(b"&Jjo!"), Err(Mutf7Error::Unterminated));
        assert_eq!(decode(b"&U,BTFw-&ZeVnLIqe-"), Err(Mutf7Error::NonCanonical));
        // "&AGE-" encodes 'a', which must be written directly.
        assert_eq!(decode(b"&AGE-"), Err(Mutf7Error::NonCanonical));
        // Non-zero padding bits.
        assert_eq!(decode(b"&APx-"), Err(Mutf7Error::NonCanonical));
        // Unpaired surrogate.
        assert_eq!(decode(b"&2D0-"), Err(Mutf7Error::InvalidUtf16));
        // Odd number of octets (half a UTF-16 unit).
        assert_eq!(decode(b"&AOQA-"), Err(Mutf7Error::NonCanonical));
        assert_eq!(decode(b"&A/w-"), Err(Mutf7Error::InvalidBase64));
        assert_eq!(decode("ü".as_bytes()), Err(Mutf7Error::NotAscii));
        assert_eq!(decode(b"a\tb"), Err(Mutf7Error::NotAscii));
    }
}
