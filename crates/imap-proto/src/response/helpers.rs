//! Small parsing helpers shared by the response, code and body parsers.

use crate::error::ParseErrorKind;
use crate::parse::{NomError, PResult, literal_any, nil, quoted};
use crate::types::{IString, NString};

/// A recoverable error of `kind` at `input` (an alternative may still match).
#[inline]
pub(crate) fn fail<T>(input: &[u8], kind: ParseErrorKind) -> PResult<'_, T> {
    let kind = if input.is_empty() {
        ParseErrorKind::Incomplete
    } else {
        kind
    };
    Err(nom::Err::Error(NomError { input, kind }))
}

/// Uses one level of the nesting budget at `input` (an opening parenthesis): the remaining
/// budget, or [`ParseErrorKind::TooDeep`], which no caller recovers from.
#[inline]
pub(crate) fn enter(input: &[u8], depth: usize) -> Result<usize, nom::Err<NomError<'_>>> {
    match depth.checked_sub(1) {
        Some(d) => Ok(d),
        None => Err(nom::Err::Failure(NomError {
            input,
            kind: ParseErrorKind::TooDeep,
        })),
    }
}

/// Whether `input` is at the end of the line (CR, LF) or of the message.
#[inline]
pub(crate) fn is_line_end(input: &[u8]) -> bool {
    matches!(input.first(), None | Some(b'\r' | b'\n'))
}

/// The possibly empty run of text bytes (anything but CR, LF and NUL) at `input`.
#[inline]
pub(crate) fn take_text(input: &[u8]) -> (&[u8], &[u8]) {
    let n = memchr::memchr3(b'\r', b'\n', 0, input).unwrap_or(input.len());
    (&input[n..], &input[..n])
}

/// The run of keyword bytes (letters, digits, `.`, `-`, `_`) at `input`, possibly empty, and
/// the rest. Keywords are compared case-insensitively by the callers.
#[inline]
pub(crate) fn word(input: &[u8]) -> (&[u8], &[u8]) {
    let n = input
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')))
        .unwrap_or(input.len());
    (&input[n..], &input[..n])
}

/// `string = quoted / literal`, and leniently `literal8` (`~{n}`): a value built with
/// [`crate::types::IString::from_bytes`] holding NUL encodes as `literal8`, so responses
/// read it back wherever a string may appear.
pub(crate) fn string8(input: &[u8]) -> PResult<'_, IString<'_>> {
    match input.first() {
        Some(b'"') => quoted(input).map(|(r, q)| (r, IString::Quoted(q))),
        Some(b'{' | b'~') => literal_any(input, true).map(|(r, l)| (r, IString::Literal(l))),
        _ => crate::parse::fail(input),
    }
}

/// `nstring = string / nil`, with `literal8` accepted as in [`string8`].
#[inline]
pub(crate) fn nstring8(input: &[u8]) -> PResult<'_, NString<'_>> {
    match input.first() {
        Some(b'"' | b'{' | b'~') => string8(input).map(|(r, s)| (r, NString(Some(s)))),
        _ => nil(input).map(|(r, ())| (r, NString(None))),
    }
}

/// `nz-number` on the hot path of long SEARCH/SORT lists: one pass over the digits, no
/// error values built on success. Same result as [`crate::parse::nz_number`], which it
/// defers to on anything unusual (so errors are reported the same way).
#[inline]
pub(crate) fn nz_number_fast(input: &[u8]) -> PResult<'_, std::num::NonZeroU32> {
    let mut value: u64 = 0;
    let mut len = 0;
    // At most 10 digits fit a u32; longer runs take the slow path for the overflow error.
    while len < 10
        && let Some(&d) = input.get(len)
        && d.is_ascii_digit()
    {
        value = value * 10 + u64::from(d - b'0');
        len += 1;
    }
    let ends = !matches!(input.get(len), Some(b'0'..=b'9'));
    if ends
        && let Ok(v) = u32::try_from(value)
        && let Some(n) = std::num::NonZeroU32::new(v)
    {
        return Ok((&input[len..], n));
    }
    crate::parse::nz_number(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_nz_number_agrees_with_the_primitive() {
        for input in [
            &b"1"[..],
            b"42 ",
            b"0",
            b"00",
            b"007)",
            b"4294967295",
            b"4294967296",
            b"99999999999",
            b"0000000000001",
            b"",
            b"x",
            b"12345678901 ",
        ] {
            let fast = nz_number_fast(input).map_err(|e| format!("{e:?}"));
            let slow = crate::parse::nz_number(input).map_err(|e| format!("{e:?}"));
            assert_eq!(fast, slow, "{:?}", String::from_utf8_lossy(input));
        }
    }
}
