//! Parser options and the primitive nom parsers (one per ABNF rule of RFC 3501 / RFC 9051
//! §9) shared by the command and response parsers.
//!
//! All parsers are *complete* parsers over one whole message (the fragmentizer has already
//! collected every literal): running out of input is an error of kind
//! [`ParseErrorKind::Incomplete`], never a request for more bytes. They classify bytes with
//! a lookup table, compare keywords case-insensitively on bytes, and borrow from the input.

use std::num::NonZeroU32;

use nom::IResult;

use crate::error::{ParseError, ParseErrorKind};
use crate::types::{
    AString, Atom, AtomExt, Capability, Charset, Date, DateTime, Flag, FlagFetch, FlagPerm,
    IString, ListMailbox, ListToken, Literal, LiteralMode, MONTHS, Mailbox, MailboxAttribute,
    MailboxName, ModSeq, NString, Partial, Quoted, Section, SectionText, SeqOrUid, SeqRange,
    SequenceSet, SequenceSetArg, Tag,
};

/// Default for [`ParseOptions::max_depth`]: 32 levels of parentheses are far beyond what real
/// clients send (SEARCH programs nest a handful deep; BODYSTRUCTURE rarely beyond 10).
pub const DEFAULT_MAX_DEPTH: usize = 32;

/// Options for the grammar-level parsers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ParseOptions {
    /// Largest nesting depth of parentheses (SEARCH keys, BODYSTRUCTURE, LIST data, ...).
    /// Deeper input fails with [`ParseErrorKind::TooDeep`] instead of recursing further.
    /// Default [`DEFAULT_MAX_DEPTH`].
    pub max_depth: usize,
    /// Accept UTF-8 mailbox names (RFC 6855 / RFC 9051 `UTF8=ACCEPT`). Off by default:
    /// without it 8-bit mailbox names are refused with [`ParseErrorKind::InvalidUtf8`].
    pub utf8_accept: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self {
            max_depth: DEFAULT_MAX_DEPTH,
            utf8_accept: false,
        }
    }
}

impl ParseOptions {
    /// The same options with `max_depth` set.
    pub fn with_max_depth(mut self, max_depth: usize) -> Self {
        self.max_depth = max_depth;
        self
    }

    /// The same options with `utf8_accept` set.
    pub fn with_utf8_accept(mut self, utf8_accept: bool) -> Self {
        self.utf8_accept = utf8_accept;
        self
    }
}

/// Byte classes of the IMAP grammar as a lookup table.
pub(crate) mod chars {
    /// `ATOM-CHAR = <any CHAR except atom-specials>`
    pub(crate) const ATOM: u8 = 1;
    /// `ASTRING-CHAR = ATOM-CHAR / resp-specials`
    pub(crate) const ASTRING: u8 = 2;
    /// `<any ASTRING-CHAR except "+">` (tag)
    pub(crate) const TAG: u8 = 4;
    /// `list-char = ATOM-CHAR / list-wildcards / resp-specials`
    pub(crate) const LIST: u8 = 8;
    /// `TEXT-CHAR = <any CHAR except CR and LF>`
    pub(crate) const TEXT: u8 = 16;
    /// `DIGIT`
    pub(crate) const DIGIT: u8 = 32;
    /// `BASE64-CHAR = ALPHA / DIGIT / "+" / "/"`
    pub(crate) const BASE64: u8 = 64;
    /// Keyword characters: letters, digits, `.`, `-`, `=` (`BODY.PEEK`, `SPECIAL-USE`,
    /// `AUTH=PLAIN`).
    pub(crate) const KEYWORD: u8 = 128;

    const fn build() -> [u8; 256] {
        let mut t = [0u8; 256];
        let mut b = 0usize;
        while b < 256 {
            let c = b as u8;
            let is_char = c >= 0x01 && c <= 0x7f;
            let ctl = c < 0x20 || c == 0x7f;
            let atom_special = c == b'('
                || c == b')'
                || c == b'{'
                || c == b' '
                || ctl
                || c == b'%'
                || c == b'*'
                || c == b'"'
                || c == b'\\'
                || c == b']';
            let mut v = 0u8;
            if is_char && !atom_special {
                v |= ATOM | ASTRING | LIST;
                if c != b'+' {
                    v |= TAG;
                }
            }
            if c == b']' {
                v |= ASTRING | TAG | LIST;
            }
            if c == b'%' || c == b'*' {
                v |= LIST;
            }
            if is_char && c != b'\r' && c != b'\n' {
                v |= TEXT;
            }
            if c.is_ascii_digit() {
                v |= DIGIT;
            }
            if c.is_ascii_alphanumeric() || c == b'+' || c == b'/' {
                v |= BASE64;
            }
            if c.is_ascii_alphanumeric() || c == b'.' || c == b'-' || c == b'=' {
                v |= KEYWORD;
            }
            t[b] = v;
            b += 1;
        }
        t
    }

    static TABLE: [u8; 256] = build();

    /// Whether `b` is in `class`.
    #[inline(always)]
    pub(crate) fn is(b: u8, class: u8) -> bool {
        TABLE[b as usize] & class != 0
    }

    /// Length of the longest prefix of `input` in `class`.
    #[inline]
    pub(crate) fn run(input: &[u8], class: u8) -> usize {
        input
            .iter()
            .position(|&b| !is(b, class))
            .unwrap_or(input.len())
    }
}

/// The error type of the crate's nom parsers: the kind and the remaining input where the
/// parser stopped (its offset is computed against the whole message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NomError<'a> {
    pub(crate) input: &'a [u8],
    pub(crate) kind: ParseErrorKind,
}

impl<'a> nom::error::ParseError<&'a [u8]> for NomError<'a> {
    fn from_error_kind(input: &'a [u8], _kind: nom::error::ErrorKind) -> Self {
        Self {
            input,
            kind: if input.is_empty() {
                ParseErrorKind::Incomplete
            } else {
                ParseErrorKind::Syntax
            },
        }
    }

    fn append(_input: &'a [u8], _kind: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
}

impl NomError<'_> {
    /// The public error, with the offset relative to `message`.
    pub(crate) fn into_parse_error(self, message: &[u8]) -> ParseError {
        ParseError::new(self.kind, message.len().saturating_sub(self.input.len()))
    }
}

/// Converts a nom result error into a [`ParseError`] relative to `message`.
pub(crate) fn to_parse_error(e: nom::Err<NomError<'_>>, message: &[u8]) -> ParseError {
    match e {
        nom::Err::Error(e) | nom::Err::Failure(e) => e.into_parse_error(message),
        nom::Err::Incomplete(_) => ParseError::new(ParseErrorKind::Incomplete, message.len()),
    }
}

/// Result of the crate's parsers.
pub(crate) type PResult<'a, T> = IResult<&'a [u8], T, NomError<'a>>;

/// A recoverable error: "this alternative does not match here" (`Incomplete` at the end).
#[inline]
pub(crate) fn fail<'a, T>(input: &'a [u8]) -> PResult<'a, T> {
    Err(nom::Err::Error(NomError {
        input,
        kind: if input.is_empty() {
            ParseErrorKind::Incomplete
        } else {
            ParseErrorKind::Syntax
        },
    }))
}

/// An unrecoverable error of `kind` (no backtracking past it).
#[inline]
pub(crate) fn failure<'a, T>(input: &'a [u8], kind: ParseErrorKind) -> PResult<'a, T> {
    Err(nom::Err::Failure(NomError { input, kind }))
}

/// Turns a recoverable error into an unrecoverable one (after a keyword committed us).
pub(crate) fn cut<'a, T>(r: PResult<'a, T>) -> PResult<'a, T> {
    match r {
        Err(nom::Err::Error(e)) => Err(nom::Err::Failure(e)),
        other => other,
    }
}

/// One literal byte `c`.
#[inline]
pub(crate) fn byte(input: &[u8], c: u8) -> PResult<'_, ()> {
    match input.first() {
        Some(&b) if b == c => Ok((&input[1..], ())),
        _ => fail(input),
    }
}

/// `SP`
#[inline]
pub(crate) fn sp(input: &[u8]) -> PResult<'_, ()> {
    byte(input, b' ')
}

/// `CRLF = CR LF`
#[inline]
pub(crate) fn crlf(input: &[u8]) -> PResult<'_, ()> {
    if input.starts_with(b"\r\n") {
        Ok((&input[2..], ()))
    } else if input.is_empty() || input == b"\r" {
        failure(input, ParseErrorKind::Incomplete)
    } else {
        fail(input)
    }
}

/// A case-insensitive keyword (ABNF quoted strings are case-insensitive).
#[inline]
pub(crate) fn keyword<'a>(input: &'a [u8], kw: &'static [u8]) -> PResult<'a, ()> {
    if input.len() >= kw.len() && input[..kw.len()].eq_ignore_ascii_case(kw) {
        Ok((&input[kw.len()..], ()))
    } else if input.len() < kw.len() && kw[..input.len()].eq_ignore_ascii_case(input) {
        failure(input, ParseErrorKind::Incomplete)
    } else {
        fail(input)
    }
}

/// The longest run of atom characters, possibly empty (for keyword dispatch).
#[inline]
pub(crate) fn atom_run(input: &[u8]) -> (&[u8], &[u8]) {
    let n = chars::run(input, chars::ATOM);
    (&input[n..], &input[..n])
}

/// A keyword folded to upper case and packed into an integer (big-endian, one byte per
/// character), so that a `match` over many keywords compiles to integer comparisons instead
/// of a chain of slice compares. Keywords longer than 16 bytes are not representable.
pub(crate) const fn kw(s: &str) -> u128 {
    let b = s.as_bytes();
    let mut k = 0u128;
    let mut i = 0;
    while i < b.len() {
        k = (k << 8) | b[i].to_ascii_uppercase() as u128;
        i += 1;
    }
    k
}

/// The run of keyword bytes (letters, digits, `.`, `-`, `=`) at `input`: the rest, the word
/// and its [`kw`] key (0 when the word is empty or longer than 16 bytes, which matches no
/// keyword). One pass, no copy.
#[inline]
pub(crate) fn keyword_key(input: &[u8]) -> (&[u8], &[u8], u128) {
    let mut key = 0u128;
    let mut n = 0;
    for &b in input {
        if !chars::is(b, chars::KEYWORD) {
            break;
        }
        key = (key << 8) | u128::from(b.to_ascii_uppercase());
        n += 1;
    }
    if n > 16 {
        key = 0;
    }
    (&input[n..], &input[..n], key)
}

fn digits(input: &[u8]) -> PResult<'_, &[u8]> {
    let n = chars::run(input, chars::DIGIT);
    if n == 0 {
        return fail(input);
    }
    Ok((&input[n..], &input[..n]))
}

fn digits_value<'a>(
    input: &'a [u8],
    digits: &[u8],
    max: u64,
) -> Result<u64, nom::Err<NomError<'a>>> {
    let mut v: u64 = 0;
    for &d in digits {
        v = match v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
        {
            Some(v) if v <= max => v,
            _ => {
                return Err(nom::Err::Failure(NomError {
                    input,
                    kind: ParseErrorKind::NumberOverflow,
                }));
            }
        };
    }
    Ok(v)
}

/// `number = 1*DIGIT ; Unsigned 32-bit integer (0 <= n < 4,294,967,296)`
pub(crate) fn number(input: &[u8]) -> PResult<'_, u32> {
    let (rest, d) = digits(input)?;
    let v = digits_value(input, d, u64::from(u32::MAX))?;
    Ok((rest, v as u32))
}

/// `number64 = 1*DIGIT ; Unsigned 63-bit integer (0 <= n <= 9,223,372,036,854,775,807)`
/// (RFC 9051).
pub(crate) fn number64(input: &[u8]) -> PResult<'_, u64> {
    let (rest, d) = digits(input)?;
    let v = digits_value(input, d, ModSeq::MAX)?;
    Ok((rest, v))
}

/// `nz-number = digit-nz *DIGIT ; Non-zero unsigned 32-bit integer`
pub(crate) fn nz_number(input: &[u8]) -> PResult<'_, NonZeroU32> {
    let (rest, n) = number(input)?;
    match NonZeroU32::new(n) {
        Some(n) => Ok((rest, n)),
        None => fail(input),
    }
}

/// `mod-sequence-value = 1*DIGIT ; Positive unsigned 63-bit integer` (RFC 7162)
pub(crate) fn mod_sequence_value(input: &[u8]) -> PResult<'_, ModSeq> {
    let (rest, n) = number64(input)?;
    match ModSeq::new(n) {
        Ok(m) => Ok((rest, m)),
        Err(_) => fail(input),
    }
}

/// `mod-sequence-valzer = "0" / mod-sequence-value` (RFC 7162)
pub(crate) fn mod_sequence_valzer(input: &[u8]) -> PResult<'_, u64> {
    number64(input)
}

/// `atom = 1*ATOM-CHAR`
pub(crate) fn atom(input: &[u8]) -> PResult<'_, Atom<'_>> {
    let (rest, a) = atom_run(input);
    if a.is_empty() {
        return fail(input);
    }
    Ok((rest, Atom::from_checked_bytes(a)))
}

/// `tag = 1*<any ASTRING-CHAR except "+">`
pub(crate) fn tag(input: &[u8]) -> PResult<'_, Tag<'_>> {
    let n = chars::run(input, chars::TAG);
    if n == 0 {
        return fail(input);
    }
    Ok((&input[n..], Tag::from_checked_bytes(&input[..n])))
}

/// `1*ASTRING-CHAR` (the bare form of `astring`)
pub(crate) fn astring_atom(input: &[u8]) -> PResult<'_, AtomExt<'_>> {
    let n = chars::run(input, chars::ASTRING);
    if n == 0 {
        return fail(input);
    }
    Ok((&input[n..], AtomExt::from_checked_bytes(&input[..n])))
}

/// Checks quoted-string content (already unescaped or escape-free): no NUL/CR/LF, 8-bit
/// only as UTF-8.
fn check_quoted_content<'a>(input: &'a [u8], content: &[u8]) -> Result<(), nom::Err<NomError<'a>>> {
    if crate::types::is_quotable(content) {
        return Ok(());
    }
    let kind = if content
        .iter()
        .all(|&b| b >= 0x80 || chars::is(b, chars::TEXT))
    {
        ParseErrorKind::InvalidUtf8
    } else {
        ParseErrorKind::Syntax
    };
    Err(nom::Err::Failure(NomError { input, kind }))
}

/// Quoted strings up to this length take the single-pass fast path in [`quoted`].
const SHORT_QUOTED: usize = 64;

/// `quoted = DQUOTE *QUOTED-CHAR DQUOTE`
///
/// `QUOTED-CHAR = <any TEXT-CHAR except quoted-specials> / "\" quoted-specials / UTF8-2 /
/// UTF8-3 / UTF8-4` (RFC 9051; RFC 3501 lacks the UTF-8 alternatives, accepted anyway as
/// real clients send them).
pub(crate) fn quoted(input: &[u8]) -> PResult<'_, Quoted<'_>> {
    if input.first() != Some(&b'"') {
        return fail(input);
    }
    let body = &input[1..];
    // Most quoted strings are short (mailbox and user names): one byte loop that finds the
    // closing quote and validates the content beats memchr's per-call setup plus a second
    // validation pass.
    let mut ascii_text = true;
    for (i, &b) in body.iter().take(SHORT_QUOTED).enumerate() {
        match b {
            b'"' if ascii_text => {
                return Ok((&body[i + 1..], Quoted::new_unchecked(&body[..i])));
            }
            b'"' | b'\\' | b'\r' | b'\n' => break,
            _ if b >= 0x80 || !chars::is(b, chars::TEXT) => ascii_text = false,
            _ => {}
        }
    }
    let Some(i) = memchr::memchr2(b'"', b'\\', body) else {
        // A CR or LF first means the closing quote is missing on this line.
        return match memchr::memchr2(b'\r', b'\n', body) {
            Some(_) => failure(input, ParseErrorKind::Syntax),
            None => failure(input, ParseErrorKind::Incomplete),
        };
    };
    if body[i] == b'"' {
        let content = &body[..i];
        check_quoted_content(input, content)?;
        return Ok((&body[i + 1..], Quoted::new_unchecked(content)));
    }
    // Escapes present: unescape into an owned buffer.
    let mut out = Vec::with_capacity(body.len().min(256));
    let mut pos = 0;
    loop {
        let Some(j) = memchr::memchr2(b'"', b'\\', &body[pos..]) else {
            return failure(input, ParseErrorKind::Incomplete);
        };
        out.extend_from_slice(&body[pos..pos + j]);
        let at = pos + j;
        if body[at] == b'"' {
            check_quoted_content(input, &out)?;
            return Ok((&body[at + 1..], Quoted::new_unchecked(out)));
        }
        match body.get(at + 1) {
            Some(&c @ (b'"' | b'\\')) => {
                out.push(c);
                pos = at + 2;
            }
            Some(_) => return failure(&body[at..], ParseErrorKind::Syntax),
            None => return failure(&body[at..], ParseErrorKind::Incomplete),
        }
    }
}

/// `literal = "{" number64 ["+"] "}" CRLF *CHAR8` and, when `allow_binary`,
/// `literal8 = "~{" number64 ["+"] "}" CRLF *OCTET` (RFC 3516 / RFC 9051).
pub(crate) fn literal_any(input: &[u8], allow_binary: bool) -> PResult<'_, Literal<'_>> {
    let (rest, binary) = match input.first() {
        Some(b'~') if allow_binary => (&input[1..], true),
        _ => (input, false),
    };
    let (rest, ()) = byte(rest, b'{')?;
    let (rest, n) = cut(number64(rest))?;
    let (rest, mode) = match rest.first() {
        Some(b'+') => (&rest[1..], LiteralMode::NonSync),
        _ => (rest, LiteralMode::Sync),
    };
    let (rest, ()) = cut(byte(rest, b'}'))?;
    let (rest, ()) = cut(crlf(rest))?;
    let n = match usize::try_from(n) {
        Ok(n) if n <= rest.len() => n,
        _ => return failure(rest, ParseErrorKind::Incomplete),
    };
    let data = &rest[..n];
    if binary {
        return Ok((&rest[n..], Literal::new_binary(data, mode)));
    }
    if let Some(z) = memchr::memchr(0, data) {
        // CHAR8 = %x01-ff: NUL needs literal8.
        return failure(&data[z..], ParseErrorKind::Syntax);
    }
    Ok((
        &rest[n..],
        Literal::new(data, mode).unwrap_or_else(|_| Literal::new_binary(data, mode)),
    ))
}

/// `literal = "{" number64 ["+"] "}" CRLF *CHAR8`
pub(crate) fn literal(input: &[u8]) -> PResult<'_, Literal<'_>> {
    literal_any(input, false)
}

/// `string = quoted / literal`
pub(crate) fn string(input: &[u8]) -> PResult<'_, IString<'_>> {
    match input.first() {
        Some(b'"') => quoted(input).map(|(r, q)| (r, IString::Quoted(q))),
        Some(b'{') => literal(input).map(|(r, l)| (r, IString::Literal(l))),
        _ => fail(input),
    }
}

/// `astring = 1*ASTRING-CHAR / string`
pub(crate) fn astring(input: &[u8]) -> PResult<'_, AString<'_>> {
    match input.first() {
        Some(b'"' | b'{') => string(input).map(|(r, s)| (r, AString::String(s))),
        _ => astring_atom(input).map(|(r, a)| (r, AString::Atom(a))),
    }
}

/// `nil = "NIL"`
pub(crate) fn nil(input: &[u8]) -> PResult<'_, ()> {
    keyword(input, b"NIL")
}

/// `nstring = string / nil`
pub(crate) fn nstring(input: &[u8]) -> PResult<'_, NString<'_>> {
    match input.first() {
        Some(b'"' | b'{') => string(input).map(|(r, s)| (r, NString(Some(s)))),
        _ => nil(input).map(|(r, ())| (r, NString(None))),
    }
}

/// `mailbox = "INBOX" / astring` — "INBOX" is case-insensitive. 8-bit names are refused
/// unless `utf8` (UTF8=ACCEPT) is set; without it, names containing `&` must be canonical
/// modified UTF-7 (RFC 3501 §5.1.3).
pub(crate) fn mailbox(input: &[u8], utf8: bool) -> PResult<'_, Mailbox<'_>> {
    // The most common mailbox by far: decide it without building the astring.
    if input.len() >= 5
        && input[..5].eq_ignore_ascii_case(b"INBOX")
        && !input.get(5).is_some_and(|&b| chars::is(b, chars::ASTRING))
    {
        return Ok((&input[5..], Mailbox::Inbox));
    }
    let (rest, name) = astring(input)?;
    let bytes = name.as_bytes();
    if bytes.eq_ignore_ascii_case(b"INBOX") {
        return Ok((rest, Mailbox::Inbox));
    }
    if !bytes.is_ascii() && (!utf8 || std::str::from_utf8(bytes).is_err()) {
        return failure(input, ParseErrorKind::InvalidUtf8);
    }
    // Without UTF8=ACCEPT names are modified UTF-7; refusing non-canonical forms here keeps
    // one wire form per name, so two spellings cannot reach the same mailbox.
    if !utf8 && bytes.contains(&b'&') && crate::mutf7::decode(bytes).is_err() {
        return failure(input, ParseErrorKind::InvalidMailboxName);
    }
    match MailboxName::new(name) {
        Ok(n) => Ok((rest, Mailbox::Other(n))),
        Err(_) => failure(input, ParseErrorKind::InvalidMailboxName),
    }
}

/// `list-mailbox = 1*list-char / string`
pub(crate) fn list_mailbox(input: &[u8], utf8: bool) -> PResult<'_, ListMailbox<'_>> {
    let (rest, lm) = match input.first() {
        Some(b'"' | b'{') => string(input).map(|(r, s)| (r, ListMailbox::String(s)))?,
        _ => {
            let n = chars::run(input, chars::LIST);
            if n == 0 {
                return fail(input);
            }
            (
                &input[n..],
                ListMailbox::Token(ListToken::from_checked_bytes(&input[..n])),
            )
        }
    };
    if !utf8 && !lm.as_bytes().is_ascii() {
        return failure(input, ParseErrorKind::InvalidUtf8);
    }
    Ok((rest, lm))
}

/// `flag = "\Answered" / "\Flagged" / "\Deleted" / "\Seen" / "\Draft" / flag-keyword /
/// flag-extension`; `flag-keyword = atom`; `flag-extension = "\" atom`.
pub(crate) fn flag(input: &[u8]) -> PResult<'_, Flag<'_>> {
    if input.first() == Some(&b'\\') {
        let (rest, a) = atom(&input[1..])?;
        Ok((rest, Flag::from_backslash_atom(a)))
    } else {
        let (rest, a) = atom(input)?;
        Ok((rest, Flag::Keyword(a)))
    }
}

/// `flag-list = "(" [flag *(SP flag)] ")"`
pub(crate) fn flag_list(input: &[u8]) -> PResult<'_, Vec<Flag<'_>>> {
    paren_list(input, flag)
}

/// `flag-fetch = flag / "\Recent"`
pub(crate) fn flag_fetch(input: &[u8]) -> PResult<'_, FlagFetch<'_>> {
    let (rest, f) = flag(input)?;
    Ok((rest, FlagFetch::from(f)))
}

/// `flag-perm = flag / "\*"`
pub(crate) fn flag_perm(input: &[u8]) -> PResult<'_, FlagPerm<'_>> {
    if input.starts_with(b"\\*") {
        return Ok((&input[2..], FlagPerm::Asterisk));
    }
    let (rest, f) = flag(input)?;
    Ok((rest, FlagPerm::Flag(f)))
}

/// `mbx-list-flag = "\" atom` in all its named forms (`mbx-list-sflag`, `mbx-list-oflag`,
/// `child-mbox-flag`, `use-attr`): the [`MailboxAttribute`] named by the atom.
pub(crate) fn mailbox_attribute(input: &[u8]) -> PResult<'_, MailboxAttribute<'_>> {
    let (rest, ()) = byte(input, b'\\')?;
    let (rest, a) = atom(rest)?;
    Ok((rest, MailboxAttribute::from_atom(a)))
}

/// `"(" [item *(SP item)] ")"` with a non-recursive item parser.
pub(crate) fn paren_list<'a, T>(
    input: &'a [u8],
    item: impl FnMut(&'a [u8]) -> PResult<'a, T>,
) -> PResult<'a, Vec<T>> {
    // Room for typical lists up front; small enough that `(1) (1) ...` cannot amplify a
    // line into much more memory.
    paren_list_with_capacity(input, 4, item)
}

/// [`paren_list`] with the initial capacity chosen by the caller (FETCH item lists are
/// usually longer than other lists).
pub(crate) fn paren_list_with_capacity<'a, T>(
    input: &'a [u8],
    capacity: usize,
    mut item: impl FnMut(&'a [u8]) -> PResult<'a, T>,
) -> PResult<'a, Vec<T>> {
    let (mut rest, ()) = byte(input, b'(')?;
    if let Ok((r, ())) = byte(rest, b')') {
        return Ok((r, Vec::new()));
    }
    let mut out = Vec::with_capacity(capacity);
    loop {
        let (r, v) = item(rest)?;
        out.push(v);
        match r.first() {
            Some(b' ') => rest = &r[1..],
            Some(b')') => return Ok((&r[1..], out)),
            _ => return fail(r),
        }
    }
}

/// `"(" item *(SP item) ")"`: like [`paren_list`] but at least one item.
pub(crate) fn paren_list1<'a, T>(
    input: &'a [u8],
    item: impl FnMut(&'a [u8]) -> PResult<'a, T>,
) -> PResult<'a, Vec<T>> {
    let (rest, v) = paren_list(input, item)?;
    if v.is_empty() {
        return fail(input);
    }
    Ok((rest, v))
}

fn two_digits(input: &[u8]) -> PResult<'_, u8> {
    match input {
        [a, b, ..] if a.is_ascii_digit() && b.is_ascii_digit() => {
            Ok((&input[2..], (a - b'0') * 10 + (b - b'0')))
        }
        _ => fail(input),
    }
}

/// `date-month = "Jan" / "Feb" / ... / "Dec"`
pub(crate) fn date_month(input: &[u8]) -> PResult<'_, u8> {
    if input.len() < 3 {
        return fail(input);
    }
    match MONTHS
        .iter()
        .position(|m| input[..3].eq_ignore_ascii_case(&m[..]))
    {
        Some(i) => Ok((&input[3..], i as u8 + 1)),
        None => fail(input),
    }
}

/// `date-year = 4DIGIT`
fn date_year(input: &[u8]) -> PResult<'_, u16> {
    let (rest, hi) = two_digits(input)?;
    let (rest, lo) = two_digits(rest)?;
    Ok((rest, u16::from(hi) * 100 + u16::from(lo)))
}

/// `date-text = date-day "-" date-month "-" date-year`, `date-day = 1*2DIGIT`
fn date_text(input: &[u8]) -> PResult<'_, Date> {
    let (rest, d) = digits(input)?;
    if d.len() > 2 {
        return fail(input);
    }
    let day = d.iter().fold(0u8, |acc, &c| acc * 10 + (c - b'0'));
    let (rest, ()) = byte(rest, b'-')?;
    let (rest, month) = date_month(rest)?;
    let (rest, ()) = byte(rest, b'-')?;
    let (rest, year) = date_year(rest)?;
    match Date::new(year, month, day) {
        Ok(date) => Ok((rest, date)),
        Err(_) => failure(input, ParseErrorKind::InvalidDate),
    }
}

/// `date = date-text / DQUOTE date-text DQUOTE`
pub(crate) fn date(input: &[u8]) -> PResult<'_, Date> {
    if input.first() == Some(&b'"') {
        let (rest, d) = date_text(&input[1..])?;
        let (rest, ()) = byte(rest, b'"')?;
        Ok((rest, d))
    } else {
        date_text(input)
    }
}

/// `date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE`
///
/// `date-day-fixed = (SP DIGIT) / 2DIGIT`, `time = 2DIGIT ":" 2DIGIT ":" 2DIGIT`,
/// `zone = ("+" / "-") 4DIGIT`.
pub(crate) fn date_time(input: &[u8]) -> PResult<'_, DateTime> {
    let (rest, ()) = byte(input, b'"')?;
    let (rest, day) = match rest {
        [b' ', d, ..] if d.is_ascii_digit() => (&rest[2..], d - b'0'),
        _ => two_digits(rest)?,
    };
    let (rest, ()) = byte(rest, b'-')?;
    let (rest, month) = date_month(rest)?;
    let (rest, ()) = byte(rest, b'-')?;
    let (rest, year) = date_year(rest)?;
    let (rest, ()) = sp(rest)?;
    let (rest, hour) = two_digits(rest)?;
    let (rest, ()) = byte(rest, b':')?;
    let (rest, minute) = two_digits(rest)?;
    let (rest, ()) = byte(rest, b':')?;
    let (rest, second) = two_digits(rest)?;
    let (rest, ()) = sp(rest)?;
    let (rest, negative) = match rest.first() {
        Some(b'+') => (&rest[1..], false),
        Some(b'-') => (&rest[1..], true),
        _ => return fail(rest),
    };
    let (rest, zh) = two_digits(rest)?;
    let (rest, zm) = two_digits(rest)?;
    let (rest, ()) = byte(rest, b'"')?;
    if zm > 59 {
        return failure(input, ParseErrorKind::InvalidDate);
    }
    let zone = (i16::from(zh) * 60 + i16::from(zm)) * if negative { -1 } else { 1 };
    let dt = Date::new(year, month, day).and_then(|d| DateTime::new(d, hour, minute, second, zone));
    match dt {
        Ok(dt) => Ok((rest, dt)),
        Err(_) => failure(input, ParseErrorKind::InvalidDate),
    }
}

/// `seq-number = nz-number / "*"`
pub(crate) fn seq_number(input: &[u8]) -> PResult<'_, SeqOrUid> {
    if input.first() == Some(&b'*') {
        return Ok((&input[1..], SeqOrUid::Asterisk));
    }
    let (rest, n) = nz_number(input)?;
    Ok((rest, SeqOrUid::Value(n)))
}

/// `seq-range = seq-number ":" seq-number`, or a single `seq-number`.
pub(crate) fn seq_range(input: &[u8]) -> PResult<'_, SeqRange> {
    let (rest, a) = seq_number(input)?;
    if rest.first() == Some(&b':') {
        let (rest, b) = seq_number(&rest[1..])?;
        Ok((rest, SeqRange::Range(a, b)))
    } else {
        Ok((rest, SeqRange::Single(a)))
    }
}

/// `sequence-set = (seq-number / seq-range) ["," sequence-set]`
pub(crate) fn sequence_set(input: &[u8]) -> PResult<'_, SequenceSet> {
    let (mut rest, first) = seq_range(input)?;
    let mut v = Vec::with_capacity(4);
    v.push(first);
    while rest.first() == Some(&b',') {
        let (r, next) = seq_range(&rest[1..])?;
        v.push(next);
        rest = r;
    }
    match SequenceSet::new(v) {
        Ok(s) => Ok((rest, s)),
        Err(_) => fail(input),
    }
}

/// `sequence-set =/ seq-last-command`, `seq-last-command = "$"` (RFC 5182).
pub(crate) fn sequence_set_arg(input: &[u8]) -> PResult<'_, SequenceSetArg> {
    if input.first() == Some(&b'$') {
        return Ok((&input[1..], SequenceSetArg::SavedResult));
    }
    let (rest, s) = sequence_set(input)?;
    Ok((rest, SequenceSetArg::Set(s)))
}

/// `section-part = nz-number *("." nz-number)`: stops before a `.` not followed by a digit
/// (that dot introduces `section-text`).
pub(crate) fn section_part(input: &[u8]) -> PResult<'_, Vec<NonZeroU32>> {
    let (mut rest, first) = nz_number(input)?;
    let mut v = Vec::with_capacity(4);
    v.push(first);
    while rest.first() == Some(&b'.') && rest.get(1).is_some_and(u8::is_ascii_digit) {
        let (r, n) = nz_number(&rest[1..])?;
        v.push(n);
        rest = r;
    }
    Ok((rest, v))
}

/// `header-list = "(" header-fld-name *(SP header-fld-name) ")"`, `header-fld-name = astring`
pub(crate) fn header_list(input: &[u8]) -> PResult<'_, Vec<AString<'_>>> {
    // Clients ask for 5 to 15 header fields at once.
    let (rest, v) = paren_list_with_capacity(input, 16, astring)?;
    if v.is_empty() {
        return fail(input);
    }
    Ok((rest, v))
}

/// `section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"`, and with
/// `mime` also `section-text = section-msgtext / "MIME"`.
pub(crate) fn section_text(input: &[u8], mime: bool) -> PResult<'_, SectionText<'_>> {
    if let Ok((rest, ())) = keyword(input, b"HEADER.FIELDS.NOT ") {
        let (rest, l) = header_list(rest)?;
        return Ok((rest, SectionText::HeaderFieldsNot(l)));
    }
    if let Ok((rest, ())) = keyword(input, b"HEADER.FIELDS ") {
        let (rest, l) = header_list(rest)?;
        return Ok((rest, SectionText::HeaderFields(l)));
    }
    if let Ok((rest, ())) = keyword(input, b"HEADER") {
        return Ok((rest, SectionText::Header));
    }
    if let Ok((rest, ())) = keyword(input, b"TEXT") {
        return Ok((rest, SectionText::Text));
    }
    if mime && let Ok((rest, ())) = keyword(input, b"MIME") {
        return Ok((rest, SectionText::Mime));
    }
    fail(input)
}

/// `section-spec = section-msgtext / (section-part ["." section-text])`
pub(crate) fn section_spec(input: &[u8]) -> PResult<'_, Section<'_>> {
    let (rest, part, text) = if input.first().is_some_and(u8::is_ascii_digit) {
        let (rest, part) = section_part(input)?;
        if rest.first() == Some(&b'.') {
            let (rest, t) = section_text(&rest[1..], true)?;
            (rest, part, Some(t))
        } else {
            (rest, part, None)
        }
    } else {
        let (rest, t) = section_text(input, false)?;
        (rest, Vec::new(), Some(t))
    };
    match Section::new(part, text) {
        Ok(s) => Ok((rest, s)),
        Err(_) => fail(input),
    }
}

/// `section = "[" [section-spec] "]"`
pub(crate) fn section(input: &[u8]) -> PResult<'_, Section<'_>> {
    let (rest, ()) = byte(input, b'[')?;
    if let Ok((rest, ())) = byte(rest, b']') {
        return Ok((rest, Section::default()));
    }
    let (rest, s) = section_spec(rest)?;
    let (rest, ()) = byte(rest, b']')?;
    Ok((rest, s))
}

/// `section-binary = "[" [section-part] "]"` (RFC 3516 / RFC 9051)
pub(crate) fn section_binary(input: &[u8]) -> PResult<'_, Vec<NonZeroU32>> {
    let (rest, ()) = byte(input, b'[')?;
    if let Ok((rest, ())) = byte(rest, b']') {
        return Ok((rest, Vec::new()));
    }
    let (rest, p) = section_part(rest)?;
    let (rest, ()) = byte(rest, b']')?;
    Ok((rest, p))
}

/// `partial = "<" number "." nz-number ">"` (commands) or `"<" number ">"` (the origin in
/// FETCH responses).
pub(crate) fn partial(input: &[u8]) -> PResult<'_, Partial> {
    let (rest, ()) = byte(input, b'<')?;
    let (rest, offset) = number(rest)?;
    let (rest, length) = if rest.first() == Some(&b'.') {
        let (r, l) = nz_number(&rest[1..])?;
        (r, Some(l))
    } else {
        (rest, None)
    };
    let (rest, ()) = byte(rest, b'>')?;
    Ok((rest, Partial { offset, length }))
}

/// `charset = atom / quoted`
pub(crate) fn charset(input: &[u8]) -> PResult<'_, Charset<'_>> {
    if input.first() == Some(&b'"') {
        let (rest, q) = quoted(input)?;
        Ok((rest, Charset::Quoted(q)))
    } else {
        let (rest, a) = atom(input)?;
        Ok((rest, Charset::Atom(a)))
    }
}

/// `capability = ("AUTH=" auth-type) / cap-enable / atom`
pub(crate) fn capability(input: &[u8]) -> PResult<'_, Capability<'_>> {
    let (rest, a) = atom(input)?;
    Ok((rest, Capability::from_atom(a)))
}

/// `base64 = *(4base64-char) [base64-terminal]`: the run of base64 characters and `=`
/// padding, validated for length and padding position.
pub(crate) fn base64(input: &[u8]) -> PResult<'_, &[u8]> {
    let n = chars::run(input, chars::BASE64);
    let pad = input[n..]
        .iter()
        .take(2)
        .take_while(|&&b| b == b'=')
        .count();
    let total = n + pad;
    if !total.is_multiple_of(4) {
        return failure(input, ParseErrorKind::InvalidBase64);
    }
    Ok((&input[total..], &input[..total]))
}

/// Runs `parser` over the whole `message`, requiring it to consume everything.
pub(crate) fn complete<'a, T>(
    message: &'a [u8],
    parser: impl FnOnce(&'a [u8]) -> PResult<'a, T>,
) -> Result<T, ParseError> {
    match parser(message) {
        Ok((b"", v)) => Ok(v),
        Ok((rest, _)) => Err(ParseError::new(
            ParseErrorKind::TrailingData,
            message.len() - rest.len(),
        )),
        Err(e) => Err(to_parse_error(e, message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok<'a, T>(r: PResult<'a, T>) -> (&'a [u8], T) {
        match r {
            Ok(v) => v,
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }

    fn kind<T: std::fmt::Debug>(r: PResult<'_, T>) -> ParseErrorKind {
        match r {
            Err(nom::Err::Error(e) | nom::Err::Failure(e)) => e.kind,
            other => panic!("expected error, got {other:?}"),
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(ok(number(b"4294967295 ")), (&b" "[..], u32::MAX));
        assert_eq!(kind(number(b"4294967296")), ParseErrorKind::NumberOverflow);
        assert_eq!(ok(number(b"007")).1, 7);
        assert!(nz_number(b"0").is_err());
        assert_eq!(ok(number64(b"9223372036854775807")).1, ModSeq::MAX);
        assert_eq!(
            kind(number64(b"9223372036854775808")),
            ParseErrorKind::NumberOverflow
        );
        assert_eq!(kind(number(b"")), ParseErrorKind::Incomplete);
    }

    #[test]
    fn quoted_forms() {
        let (r, q) = ok(quoted(b"\"abc\" x"));
        assert_eq!((r, q.as_bytes()), (&b" x"[..], &b"abc"[..]));
        let (_, q) = ok(quoted(b"\"a\\\"b\\\\c\""));
        assert_eq!(q.as_bytes(), b"a\"b\\c");
        assert!(quoted(b"\"a\\xb\"").is_err());
        assert!(quoted(b"\"a\r\nb\"").is_err());
        assert_eq!(kind(quoted(b"\"abc")), ParseErrorKind::Incomplete);
        assert_eq!(
            ok(quoted("\"Grüße\"".as_bytes())).1.as_bytes(),
            "Grüße".as_bytes()
        );
        assert_eq!(kind(quoted(b"\"\xff\"")), ParseErrorKind::InvalidUtf8);
    }

    #[test]
    fn literals() {
        let (r, l) = ok(literal(b"{3}\r\nabc rest"));
        assert_eq!(
            (r, l.data(), l.mode()),
            (&b" rest"[..], &b"abc"[..], LiteralMode::Sync)
        );
        let (_, l) = ok(literal(b"{0+}\r\n"));
        assert_eq!((l.data(), l.mode()), (&b""[..], LiteralMode::NonSync));
        assert_eq!(kind(literal(b"{5}\r\nabc")), ParseErrorKind::Incomplete);
        assert!(literal(b"{1}\r\n\0").is_err());
        let (_, l) = ok(literal_any(b"~{1}\r\n\0", true));
        assert!(l.is_binary());
        assert!(literal(b"~{1}\r\n\0").is_err());
        assert_eq!(
            kind(literal(b"{99999999999999999999}\r\n")),
            ParseErrorKind::NumberOverflow
        );
    }

    #[test]
    fn astrings_and_mailboxes() {
        assert!(matches!(ok(astring(b"a]b")).1, AString::Atom(_)));
        assert!(astring(b"(").is_err());
        assert_eq!(ok(mailbox(b"inbox", false)).1, Mailbox::Inbox);
        assert_eq!(ok(mailbox(b"\"InBoX\"", false)).1, Mailbox::Inbox);
        assert_eq!(
            kind(mailbox("\"Grüße\"".as_bytes(), false)),
            ParseErrorKind::InvalidUtf8
        );
        assert!(mailbox("\"Grüße\"".as_bytes(), true).is_ok());
        assert_eq!(ok(list_mailbox(b"%/*]", false)).1.as_bytes(), b"%/*]");
    }

    #[test]
    fn flags() {
        assert_eq!(ok(flag(b"\\seen")).1, Flag::Seen);
        assert!(matches!(ok(flag(b"$Junk")).1, Flag::Keyword(_)));
        assert_eq!(ok(flag_fetch(b"\\Recent")).1, FlagFetch::Recent);
        assert_eq!(ok(flag_perm(b"\\*")).1, FlagPerm::Asterisk);
        assert_eq!(ok(flag_list(b"()")).1, vec![]);
        assert_eq!(
            ok(flag_list(b"(\\Seen \\Deleted)")).1,
            vec![Flag::Seen, Flag::Deleted]
        );
        assert!(flag_list(b"(\\Seen ").is_err());
        assert_eq!(
            ok(mailbox_attribute(b"\\HasNoChildren")).1,
            MailboxAttribute::HasNoChildren
        );
    }

    #[test]
    fn dates() {
        let (_, d) = ok(date(b"1-Feb-1994"));
        assert_eq!((d.year(), d.month(), d.day()), (1994, 2, 1));
        assert_eq!(ok(date(b"\"01-feb-1994\"")).1, d);
        assert_eq!(kind(date(b"30-Feb-1994")), ParseErrorKind::InvalidDate);
        let (_, dt) = ok(date_time(b"\" 7-Feb-1994 21:52:25 -0800\""));
        assert_eq!(
            (dt.date().day(), dt.hour(), dt.zone_minutes()),
            (7, 21, -480)
        );
        assert_eq!(ok(date_time(b"\"07-Feb-1994 21:52:25 -0800\"")).1, dt);
        assert!(date_time(b"\"7-Feb-1994 21:52:25 -0800\"").is_err());
        assert_eq!(
            kind(date_time(b"\"07-Feb-1994 25:52:25 -0800\"")),
            ParseErrorKind::InvalidDate
        );
    }

    #[test]
    fn sequence_sets() {
        let (r, s) = ok(sequence_set(b"1:*,5,7:3 "));
        assert_eq!(r, b" ");
        assert_eq!(s.ranges().len(), 3);
        assert!(sequence_set(b"0").is_err());
        assert_eq!(
            kind(sequence_set(b"1:4294967296")),
            ParseErrorKind::NumberOverflow
        );
        assert_eq!(ok(sequence_set_arg(b"$")).1, SequenceSetArg::SavedResult);
    }

    #[test]
    fn sections() {
        assert_eq!(ok(section(b"[]")).1, Section::default());
        let (_, s) = ok(section(b"[1.2.HEADER.FIELDS (From \"To\")]"));
        assert_eq!(s.part().len(), 2);
        assert!(matches!(s.text(), Some(SectionText::HeaderFields(v)) if v.len() == 2));
        let (_, s) = ok(section(b"[3.MIME]"));
        assert_eq!(s.text(), Some(&SectionText::Mime));
        assert!(section(b"[MIME]").is_err());
        assert!(section(b"[HEADER.FIELDS ()]").is_err());
        assert_eq!(ok(section_binary(b"[1.2]")).1.len(), 2);
        let p = ok(partial(b"<0.1024>")).1;
        assert_eq!((p.offset, p.length.map(NonZeroU32::get)), (0, Some(1024)));
        assert!(partial(b"<0.0>").is_err());
    }

    #[test]
    fn base64_validation() {
        assert_eq!(ok(base64(b"AGZvbwBiYXI=\r\n")).1, b"AGZvbwBiYXI=");
        assert_eq!(kind(base64(b"abc\r\n")), ParseErrorKind::InvalidBase64);
        assert_eq!(ok(base64(b"\r\n")).1, b"");
    }
}
