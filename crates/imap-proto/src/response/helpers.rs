//! Small parsing helpers shared by the response, code and body parsers.

use crate::error::ParseErrorKind;
use crate::parse::{NomError, PResult, literal_any, nstring, string};
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
    if input.first() == Some(&b'~') {
        let (rest, l) = literal_any(input, true)?;
        return Ok((rest, IString::Literal(l)));
    }
    string(input)
}

/// `nstring = string / nil`, with `literal8` accepted as in [`string8`].
pub(crate) fn nstring8(input: &[u8]) -> PResult<'_, NString<'_>> {
    if input.first() == Some(&b'~') {
        let (rest, s) = string8(input)?;
        return Ok((rest, NString(Some(s))));
    }
    nstring(input)
}
