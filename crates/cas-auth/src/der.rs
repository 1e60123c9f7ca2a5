//! A minimal DER reader and writer: definite lengths only, single-byte tags, every length
//! checked against the input. Enough for X.509's signature algorithm and SPNEGO.

/// Why DER input was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum DerError {
    /// The input ends inside a tag, length or value.
    #[error("DER input truncated")]
    Truncated,
    /// An indefinite length (BER), a multi-byte tag, or a length over 2³² − 1.
    #[error("unsupported DER encoding")]
    Unsupported,
    /// A different tag than the grammar requires.
    #[error("unexpected DER tag {found:#04x}, expected {expected:#04x}")]
    UnexpectedTag {
        /// The tag required.
        expected: u8,
        /// The tag found.
        found: u8,
    },
    /// Bytes after the end of a value that must fill its container.
    #[error("trailing bytes after DER value")]
    Trailing,
}

/// Reads one TLV: returns `(tag, value, rest)`.
pub(crate) fn read_tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), DerError> {
    let (&tag, rest) = input.split_first().ok_or(DerError::Truncated)?;
    if tag & 0x1f == 0x1f {
        return Err(DerError::Unsupported);
    }
    let (&first, mut rest) = rest.split_first().ok_or(DerError::Truncated)?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err(DerError::Unsupported);
        }
        let bytes = rest.get(..n).ok_or(DerError::Truncated)?;
        rest = rest.get(n..).ok_or(DerError::Truncated)?;
        bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    let value = rest.get(..len).ok_or(DerError::Truncated)?;
    let rest = rest.get(len..).ok_or(DerError::Truncated)?;
    Ok((tag, value, rest))
}

/// Reads one TLV that must carry `expected`.
pub(crate) fn expect(input: &[u8], expected: u8) -> Result<(&[u8], &[u8]), DerError> {
    let (tag, value, rest) = read_tlv(input)?;
    if tag != expected {
        return Err(DerError::UnexpectedTag {
            expected,
            found: tag,
        });
    }
    Ok((value, rest))
}

/// Reads a TLV that must fill `input` exactly.
pub(crate) fn expect_only(input: &[u8], expected: u8) -> Result<&[u8], DerError> {
    let (value, rest) = expect(input, expected)?;
    if !rest.is_empty() {
        return Err(DerError::Trailing);
    }
    Ok(value)
}

/// Appends a TLV with a minimal-length encoding.
pub(crate) fn write_tlv(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    out.push(tag);
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (8 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(value);
}

/// A TLV as a new vector.
pub(crate) fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    write_tlv(&mut out, tag, value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        for len in [0usize, 1, 127, 128, 255, 256, 70000] {
            let v = vec![7u8; len];
            let enc = tlv(0x04, &v);
            let (tag, value, rest) = read_tlv(&enc).unwrap();
            assert_eq!((tag, value, rest), (0x04, &v[..], &[][..]));
        }
        assert_eq!(read_tlv(&[0x04, 0x80]), Err(DerError::Unsupported));
        assert_eq!(
            read_tlv(&[0x04, 0x85, 1, 1, 1, 1, 1]),
            Err(DerError::Unsupported)
        );
        assert_eq!(read_tlv(&[0x04, 0x82, 1]), Err(DerError::Truncated));
        assert_eq!(read_tlv(&[0x04, 3, 1]), Err(DerError::Truncated));
        assert_eq!(read_tlv(&[0x1f, 1, 1]), Err(DerError::Unsupported));
        assert_eq!(expect_only(&[0x04, 0, 0], 0x04), Err(DerError::Trailing));
    }
}
