//! POP3 commands: the [`Command`] type, its parser (one function per ABNF rule, run over a
//! complete line without its line end) and its encoder.
//!
//! Keywords are case-insensitive. The parser is lenient where it costs nothing (several spaces
//! between arguments, trailing spaces, lower-case mechanism names, unpadded base64); the
//! encoder is strict (single spaces, upper-case keywords, canonical base64, CRLF).
//! Every value a [`Command`] can hold encodes to a line that parses back to the same value.

use std::fmt;

use base64::Engine as _;
use nom::{
    IResult, Parser,
    bytes::complete::{take_while, take_while1},
    combinator::{all_consuming, verify},
};

use crate::error::{ParseError, ParseErrorKind};

type In<'a> = &'a [u8];

/// A command argument: `param = 1*VCHAR` (RFC 2449 §3), widened to also admit the non-ASCII
/// octets of UTF-8 text (RFC 6856 §2 allows UTF-8 user names and passwords).
///
/// Invariant: non-empty, valid UTF-8, no ASCII control characters, no space.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Param<'a>(&'a str);

impl<'a> Param<'a> {
    /// Validates `s` as a parameter.
    pub fn new(s: &'a str) -> Result<Self, ParseError> {
        match s.bytes().position(|b| !is_param_octet(b)) {
            _ if s.is_empty() => Err(ParseError::new(ParseErrorKind::MissingArgument, 0)),
            Some(at) => Err(ParseError::new(ParseErrorKind::InvalidArgument, at)),
            None => Ok(Self(s)),
        }
    }

    /// The parameter text.
    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

impl fmt::Debug for Param<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

/// The argument of `PASS`: the rest of the line after `PASS `, spaces included
/// (RFC 1939 §7: "the server may treat spaces in the argument as part of the password").
///
/// Invariant: non-empty, no CR, LF or NUL. `Debug` never prints the content.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PassText<'a>(&'a [u8]);

impl<'a> PassText<'a> {
    /// Validates `s` as a password argument.
    pub fn new(s: &'a [u8]) -> Result<Self, ParseError> {
        if s.is_empty() {
            return Err(ParseError::new(ParseErrorKind::MissingArgument, 0));
        }
        match s.iter().position(|&b| matches!(b, b'\r' | b'\n' | 0)) {
            Some(at) => Err(ParseError::new(ParseErrorKind::InvalidArgument, at)),
            None => Ok(Self(s)),
        }
    }

    /// The password octets.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }
}

impl fmt::Debug for PassText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PassText(..)")
    }
}

/// A SASL mechanism name: `sasl-mech = 1*20mech-char`, `mech-char = UPPER-ALPHA / DIGIT /
/// "-" / "_"` (RFC 4422 §3.1). Lower-case letters are accepted on input; compare with
/// [`Mechanism::eq_ignore_case`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mechanism<'a>(&'a str);

impl<'a> Mechanism<'a> {
    /// Validates `s` as a mechanism name.
    pub fn new(s: &'a str) -> Result<Self, ParseError> {
        if s.is_empty() {
            return Err(ParseError::new(ParseErrorKind::MissingArgument, 0));
        }
        if s.len() > 20 {
            return Err(ParseError::new(ParseErrorKind::InvalidArgument, 20));
        }
        match s.bytes().position(|b| !is_mech_char(b)) {
            Some(at) => Err(ParseError::new(ParseErrorKind::InvalidArgument, at)),
            None => Ok(Self(s)),
        }
    }

    /// The name as received.
    pub fn as_str(&self) -> &'a str {
        self.0
    }

    /// Case-insensitive comparison with a configured name.
    pub fn eq_ignore_case(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }
}

impl fmt::Debug for Mechanism<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

/// The argument of `LANG` (RFC 6856 §3): a language tag or `*`.
/// Accepted form: `"*" / 1*8ALPHA *("-" 1*8alphanum)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LangRange<'a>(&'a str);

impl<'a> LangRange<'a> {
    /// Validates `s` as a language range.
    pub fn new(s: &'a str) -> Result<Self, ParseError> {
        match lang_range(s.as_bytes()) {
            Ok((b"", _)) => Ok(Self(s)),
            _ if s.is_empty() => Err(ParseError::new(ParseErrorKind::MissingArgument, 0)),
            _ => Err(ParseError::new(ParseErrorKind::InvalidArgument, 0)),
        }
    }

    /// The tag as received.
    pub fn as_str(&self) -> &'a str {
        self.0
    }

    /// `true` for the wildcard `*`.
    pub fn is_wildcard(&self) -> bool {
        self.0 == "*"
    }
}

impl fmt::Debug for LangRange<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

/// A POP3 client command, borrowing its arguments from the line it was parsed from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command<'a> {
    /// `USER name` (RFC 1939 §7).
    User(Param<'a>),
    /// `PASS string` (RFC 1939 §7), rest of line.
    Pass(PassText<'a>),
    /// `APOP name digest` (RFC 1939 §7); the digest as 16 octets (sent as 32 lower-case hex).
    Apop {
        /// Mailbox name.
        name: Param<'a>,
        /// MD5 digest of timestamp and shared secret.
        digest: [u8; 16],
    },
    /// `AUTH mechanism [initial-response]` (RFC 5034 §4). The initial response is decoded;
    /// `Some(vec![])` is the `=` form.
    Auth {
        /// Mechanism name.
        mechanism: Mechanism<'a>,
        /// Decoded initial response.
        initial_response: Option<Vec<u8>>,
    },
    /// `AUTH` without arguments: list the SASL mechanisms (pre-RFC 5034 clients send it).
    AuthList,
    /// `STAT` (RFC 1939 §5).
    Stat,
    /// `LIST [msg]` (RFC 1939 §5).
    List(Option<u32>),
    /// `RETR msg` (RFC 1939 §5).
    Retr(u32),
    /// `DELE msg` (RFC 1939 §5).
    Dele(u32),
    /// `NOOP` (RFC 1939 §5).
    Noop,
    /// `RSET` (RFC 1939 §5).
    Rset,
    /// `QUIT` (RFC 1939 §4, §6).
    Quit,
    /// `TOP msg n` (RFC 1939 §7).
    Top {
        /// Message number.
        message: u32,
        /// Number of body lines.
        lines: u32,
    },
    /// `UIDL [msg]` (RFC 1939 §7).
    Uidl(Option<u32>),
    /// `CAPA` (RFC 2449 §5).
    Capa,
    /// `STLS` (RFC 2595 §4).
    Stls,
    /// `UTF8` (RFC 6856 §2).
    Utf8,
    /// `LANG [lang-range]` (RFC 6856 §3).
    Lang(Option<LangRange<'a>>),
}

impl<'a> Command<'a> {
    /// Parses one complete command line (without its CRLF / LF).
    pub fn parse(line: &'a [u8]) -> Result<Self, ParseError> {
        parse_command(line)
    }

    /// The upper-case keyword.
    pub fn keyword(&self) -> &'static str {
        match self {
            Self::User(_) => "USER",
            Self::Pass(_) => "PASS",
            Self::Apop { .. } => "APOP",
            Self::Auth { .. } | Self::AuthList => "AUTH",
            Self::Stat => "STAT",
            Self::List(_) => "LIST",
            Self::Retr(_) => "RETR",
            Self::Dele(_) => "DELE",
            Self::Noop => "NOOP",
            Self::Rset => "RSET",
            Self::Quit => "QUIT",
            Self::Top { .. } => "TOP",
            Self::Uidl(_) => "UIDL",
            Self::Capa => "CAPA",
            Self::Stls => "STLS",
            Self::Utf8 => "UTF8",
            Self::Lang(_) => "LANG",
        }
    }

    /// Appends the command and its CRLF to `out`. Total: every value encodes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.keyword().as_bytes());
        match self {
            Self::User(p) => push_arg(out, p.as_str().as_bytes()),
            Self::Pass(p) => push_arg(out, p.as_bytes()),
            Self::Apop { name, digest } => {
                push_arg(out, name.as_str().as_bytes());
                out.push(b' ');
                for b in digest {
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 0x0f)]);
                }
            }
            Self::Auth {
                mechanism,
                initial_response,
            } => {
                push_arg(out, mechanism.as_str().as_bytes());
                if let Some(ir) = initial_response {
                    out.push(b' ');
                    if ir.is_empty() {
                        out.push(b'=');
                    } else {
                        out.extend_from_slice(BASE64.encode(ir).as_bytes());
                    }
                }
            }
            Self::List(Some(n)) | Self::Uidl(Some(n)) | Self::Retr(n) | Self::Dele(n) => {
                push_arg(out, n.to_string().as_bytes())
            }
            Self::Top { message, lines } => {
                push_arg(out, message.to_string().as_bytes());
                push_arg(out, lines.to_string().as_bytes());
            }
            Self::Lang(Some(l)) => push_arg(out, l.as_str().as_bytes()),
            Self::AuthList
            | Self::Stat
            | Self::List(None)
            | Self::Noop
            | Self::Rset
            | Self::Quit
            | Self::Uidl(None)
            | Self::Capa
            | Self::Stls
            | Self::Utf8
            | Self::Lang(None) => {}
        }
        out.extend_from_slice(b"\r\n");
    }

    /// The encoded command as a fresh vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }
}

/// A client line during a SASL exchange (RFC 5034 §4): base64 data or `*` to cancel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SaslResponse {
    /// Decoded response (an empty line is an empty response).
    Data(Vec<u8>),
    /// `*`: the client cancels the exchange.
    Cancel,
}

impl SaslResponse {
    /// Parses a continuation line (without its line end).
    /// `continue-resp = base64 / cancel-response`, `cancel-response = "*"`.
    pub fn parse(line: &[u8]) -> Result<Self, ParseError> {
        let line = trim_trailing_ws(line);
        if line == b"*" {
            return Ok(Self::Cancel);
        }
        if line.is_empty() {
            return Ok(Self::Data(Vec::new()));
        }
        decode_base64(line).map(Self::Data)
    }

    /// Appends the line and its CRLF to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Cancel => out.push(b'*'),
            Self::Data(d) => out.extend_from_slice(BASE64.encode(d).as_bytes()),
        }
        out.extend_from_slice(b"\r\n");
    }
}

pub(crate) const HEX: &[u8; 16] = b"0123456789abcdef";

/// Standard base64 alphabet; padding optional on input, emitted on output.
pub(crate) const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Decodes base64 text as POP3 SASL uses it (RFC 5034 §4 `base64`).
pub(crate) fn decode_base64(text: &[u8]) -> Result<Vec<u8>, ParseError> {
    match all_consuming(base64).parse(text) {
        Ok(_) => BASE64
            .decode(text)
            .map_err(|_| ParseError::new(ParseErrorKind::InvalidBase64, 0)),
        Err(_) => Err(ParseError::new(ParseErrorKind::InvalidBase64, 0)),
    }
}

fn push_arg(out: &mut Vec<u8>, arg: &[u8]) {
    out.push(b' ');
    out.extend_from_slice(arg);
}

fn is_param_octet(b: u8) -> bool {
    b > 0x20 && b != 0x7f
}

fn is_mech_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn trim_trailing_ws(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Grammar rules. Each returns nom's default error; `parse_command` maps failures to kinds.

/// `keyword = 3*4VCHAR` (RFC 2449 §3); commands this crate knows are alphanumeric.
fn keyword(i: In<'_>) -> IResult<In<'_>, In<'_>> {
    verify(
        take_while1(|b: u8| b.is_ascii_alphanumeric()),
        |k: &[u8]| (3..=4).contains(&k.len()),
    )
    .parse(i)
}

/// Separator between keyword and arguments: `SP` (RFC 2449 §3); several are tolerated.
fn sp(i: In<'_>) -> IResult<In<'_>, In<'_>> {
    take_while1(|b: u8| b == b' ').parse(i)
}

/// `param = 1*VCHAR` (RFC 2449 §3), plus UTF-8 octets (RFC 6856).
fn param(i: In<'_>) -> IResult<In<'_>, &str> {
    let (rest, raw) = take_while1(is_param_octet).parse(i)?;
    match std::str::from_utf8(raw) {
        Ok(s) => Ok((rest, s)),
        Err(_) => Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Verify,
        ))),
    }
}

/// A message number or line count: `1*DIGIT` (RFC 1939 §5 "msg", §7 "n") that fits `u32`.
fn number(i: In<'_>) -> IResult<In<'_>, u32> {
    let (rest, digits) = take_while1(|b: u8| b.is_ascii_digit()).parse(i)?;
    let mut n: u32 = 0;
    for &d in digits {
        n = match n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u32::from(d - b'0')))
        {
            Some(n) => n,
            None => {
                return Err(nom::Err::Error(nom::error::Error::new(
                    i,
                    nom::error::ErrorKind::TooLarge,
                )));
            }
        };
    }
    Ok((rest, n))
}

/// `digest = 32HEXDIG` — the APOP MD5 digest (RFC 1939 §7, sent in lower case; either case
/// is accepted).
fn digest(i: In<'_>) -> IResult<In<'_>, [u8; 16]> {
    let (rest, hex) = verify(take_while1(|b: u8| b.is_ascii_hexdigit()), |h: &[u8]| {
        h.len() == 32
    })
    .parse(i)?;
    let mut out = [0u8; 16];
    for (slot, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        if let [hi, lo] = pair {
            *slot = (hex_val(*hi) << 4) | hex_val(*lo);
        }
    }
    Ok((rest, out))
}

fn hex_val(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0,
    }
}

/// `sasl-mech = 1*20(UPPER-ALPHA / DIGIT / "-" / "_")` (RFC 4422 §3.1; lower case tolerated).
fn sasl_mech(i: In<'_>) -> IResult<In<'_>, &str> {
    let (rest, raw) = verify(take_while1(is_mech_char), |m: &[u8]| m.len() <= 20).parse(i)?;
    // Only ASCII passed the predicate.
    let s = std::str::from_utf8(raw).unwrap_or_default();
    Ok((rest, s))
}

/// `base64 = base64-terminal / ( 1*(4base64-char) [base64-terminal] )`,
/// `base64-char = ALPHA / DIGIT / "+" / "/"`,
/// `base64-terminal = (2base64-char "==") / (3base64-char "=")` (RFC 5034 §4);
/// unpadded trailing groups are tolerated.
fn base64(i: In<'_>) -> IResult<In<'_>, In<'_>> {
    let (rest, chars) =
        take_while1(|b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/').parse(i)?;
    let (rest, pad) = take_while(|b: u8| b == b'=').parse(rest)?;
    let ok = match pad.len() {
        0 => chars.len() % 4 != 1,
        1 => chars.len() % 4 == 3,
        2 => chars.len() % 4 == 2,
        _ => false,
    };
    if !ok {
        return Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Verify,
        )));
    }
    let used = chars.len().saturating_add(pad.len());
    Ok((rest, i.get(..used).unwrap_or(i)))
}

/// `initial-response = base64 / "="` (RFC 5034 §4); `=` is the empty response.
fn initial_response(i: In<'_>) -> IResult<In<'_>, Vec<u8>> {
    if let Some(rest) = i.strip_prefix(b"=")
        && matches!(rest.first(), None | Some(b' ' | b'\t'))
    {
        return Ok((rest, Vec::new()));
    }
    let (rest, text) = base64(i)?;
    match BASE64.decode(text) {
        Ok(v) => Ok((rest, v)),
        Err(_) => Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Verify,
        ))),
    }
}

/// `lang-range = "*" / language-tag`, with the tag checked as
/// `1*8ALPHA *("-" 1*8alphanum)` (RFC 6856 §3, RFC 5646).
fn lang_range(i: In<'_>) -> IResult<In<'_>, &str> {
    if let Some(rest) = i.strip_prefix(b"*") {
        return Ok((rest, "*"));
    }
    let (rest, raw) = take_while1(|b: u8| b.is_ascii_alphanumeric() || b == b'-').parse(i)?;
    let mut subtags = raw.split(|&b| b == b'-');
    let first_ok = subtags
        .next()
        .is_some_and(|t| (1..=8).contains(&t.len()) && t.iter().all(u8::is_ascii_alphabetic));
    let rest_ok = subtags.all(|t| (1..=8).contains(&t.len()));
    if !(first_ok && rest_ok) {
        return Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Verify,
        )));
    }
    Ok((rest, std::str::from_utf8(raw).unwrap_or_default()))
}

// ---------------------------------------------------------------------------------------------
// Command assembly

/// Cursor over the argument part of a line that reports errors with line offsets.
struct Args<'a> {
    line_len: usize,
    rest: In<'a>,
}

impl<'a> Args<'a> {
    fn offset(&self) -> usize {
        self.line_len.saturating_sub(self.rest.len())
    }

    fn err(&self, kind: ParseErrorKind) -> ParseError {
        ParseError::new(kind, self.offset())
    }

    /// Is there another (non-blank) argument?
    fn has_more(&self) -> bool {
        self.rest.iter().any(|&b| b != b' ' && b != b'\t')
    }

    /// Consumes the separator before an argument; missing argument if nothing follows.
    fn separator(&mut self) -> Result<(), ParseError> {
        if !self.has_more() {
            return Err(self.err(ParseErrorKind::MissingArgument));
        }
        match sp(self.rest) {
            Ok((rest, _)) => {
                self.rest = rest;
                Ok(())
            }
            Err(_) => Err(self.err(ParseErrorKind::InvalidArgument)),
        }
    }

    fn arg<T>(
        &mut self,
        mut rule: impl FnMut(In<'a>) -> IResult<In<'a>, T>,
        kind: ParseErrorKind,
    ) -> Result<T, ParseError> {
        self.separator()?;
        match rule(self.rest) {
            // An argument must end at a space or at the end of the line.
            Ok((rest, v)) if matches!(rest.first(), None | Some(b' ' | b'\t')) => {
                self.rest = rest;
                Ok(v)
            }
            _ => Err(self.err(kind)),
        }
    }

    fn opt_arg<T>(
        &mut self,
        rule: impl FnMut(In<'a>) -> IResult<In<'a>, T>,
        kind: ParseErrorKind,
    ) -> Result<Option<T>, ParseError> {
        if self.has_more() {
            self.arg(rule, kind).map(Some)
        } else {
            Ok(None)
        }
    }

    fn end(&self) -> Result<(), ParseError> {
        if self.has_more() {
            Err(self.err(ParseErrorKind::TooManyArguments))
        } else {
            Ok(())
        }
    }
}

/// `command = keyword *(SP param) CRLF` (RFC 2449 §3), dispatched on the keyword.
fn parse_command(line: In<'_>) -> Result<Command<'_>, ParseError> {
    if trim_trailing_ws(line).is_empty() {
        return Err(ParseError::new(ParseErrorKind::Empty, 0));
    }
    let (rest, kw) =
        keyword(line).map_err(|_| ParseError::new(ParseErrorKind::UnknownCommand, 0))?;
    if !matches!(rest.first(), None | Some(b' ' | b'\t')) {
        return Err(ParseError::new(ParseErrorKind::UnknownCommand, 0));
    }
    let mut kw_up = [0u8; 4];
    for (d, s) in kw_up.iter_mut().zip(kw) {
        *d = s.to_ascii_uppercase();
    }
    let kw_up = kw_up.get(..kw.len()).unwrap_or_default();
    let mut a = Args {
        line_len: line.len(),
        rest,
    };
    use ParseErrorKind::{InvalidArgument as Inv, InvalidNumber as Num};
    let cmd = match kw_up {
        b"USER" => Command::User(Param(a.arg(param, Inv)?)),
        b"PASS" => {
            // The password is everything after the first space (RFC 1939 §7).
            let pw = match a.rest.split_first() {
                Some((b' ', pw)) => pw,
                Some(_) => return Err(a.err(Inv)),
                None => return Err(a.err(ParseErrorKind::MissingArgument)),
            };
            let off = a.offset().saturating_add(1);
            let text = PassText::new(pw)
                .map_err(|e| ParseError::new(e.kind, e.offset.saturating_add(off)))?;
            return Ok(Command::Pass(text));
        }
        b"APOP" => {
            let name = Param(a.arg(param, Inv)?);
            let digest = a.arg(digest, Inv)?;
            Command::Apop { name, digest }
        }
        b"AUTH" => match a.opt_arg(sasl_mech, Inv)? {
            None => Command::AuthList,
            Some(m) => Command::Auth {
                mechanism: Mechanism(m),
                initial_response: a.opt_arg(initial_response, ParseErrorKind::InvalidBase64)?,
            },
        },
        b"STAT" => Command::Stat,
        b"LIST" => Command::List(a.opt_arg(number, Num)?),
        b"RETR" => Command::Retr(a.arg(number, Num)?),
        b"DELE" => Command::Dele(a.arg(number, Num)?),
        b"NOOP" => Command::Noop,
        b"RSET" => Command::Rset,
        b"QUIT" => Command::Quit,
        b"TOP" => {
            let message = a.arg(number, Num)?;
            let lines = a.arg(number, Num)?;
            Command::Top { message, lines }
        }
        b"UIDL" => Command::Uidl(a.opt_arg(number, Num)?),
        b"CAPA" => Command::Capa,
        b"STLS" => Command::Stls,
        b"UTF8" => Command::Utf8,
        b"LANG" => Command::Lang(a.opt_arg(lang_range, Inv)?.map(LangRange)),
        _ => return Err(ParseError::new(ParseErrorKind::UnknownCommand, 0)),
    };
    a.end()?;
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &[u8]) -> Command<'_> {
        match Command::parse(s) {
            Ok(c) => c,
            Err(e) => panic!("{:?} failed: {e}", String::from_utf8_lossy(s)),
        }
    }

    fn kind(s: &[u8]) -> ParseErrorKind {
        match Command::parse(s) {
            Ok(c) => panic!("{:?} parsed as {c:?}", String::from_utf8_lossy(s)),
            Err(e) => e.kind,
        }
    }

    const DIGEST: [u8; 16] = [
        0xc4, 0xc9, 0x33, 0x4b, 0xac, 0x56, 0x0e, 0xcc, 0x97, 0x9e, 0x58, 0x00, 0x1b, 0x3e, 0x22,
        0xfb,
    ];

    /// (input, expected value, canonical encoding)
    fn table() -> Vec<(&'static [u8], Command<'static>, &'static [u8])> {
        vec![
            (
                b"USER mrose",
                Command::User(Param("mrose")),
                b"USER mrose\r\n",
            ),
            (
                b"user  mrose ",
                Command::User(Param("mrose")),
                b"USER mrose\r\n",
            ),
            (
                "USER j\u{f6}rg".as_bytes(),
                Command::User(Param("j\u{f6}rg")),
                "USER j\u{f6}rg\r\n".as_bytes(),
            ),
            (
                b"PASS secret word ",
                Command::Pass(PassText(b"secret word ")),
                b"PASS secret word \r\n",
            ),
            (b"pass  x", Command::Pass(PassText(b" x")), b"PASS  x\r\n"),
            (
                b"APOP mrose c4c9334bac560ecc979e58001b3e22fb",
                Command::Apop {
                    name: Param("mrose"),
                    digest: DIGEST,
                },
                b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n",
            ),
            (
                b"APOP mrose C4C9334BAC560ECC979E58001B3E22FB",
                Command::Apop {
                    name: Param("mrose"),
                    digest: DIGEST,
                },
                b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n",
            ),
            (
                b"AUTH PLAIN",
                Command::Auth {
                    mechanism: Mechanism("PLAIN"),
                    initial_response: None,
                },
                b"AUTH PLAIN\r\n",
            ),
            (
                b"auth plain AGZvbwBiYXI=",
                Command::Auth {
                    mechanism: Mechanism("plain"),
                    initial_response: Some(b"\0foo\0bar".to_vec()),
                },
                b"AUTH plain AGZvbwBiYXI=\r\n",
            ),
            (
                b"AUTH PLAIN AGZvbwBiYXI",
                Command::Auth {
                    mechanism: Mechanism("PLAIN"),
                    initial_response: Some(b"\0foo\0bar".to_vec()),
                },
                b"AUTH PLAIN AGZvbwBiYXI=\r\n",
            ),
            (
                b"AUTH X-OAUTH_2 =",
                Command::Auth {
                    mechanism: Mechanism("X-OAUTH_2"),
                    initial_response: Some(Vec::new()),
                },
                b"AUTH X-OAUTH_2 =\r\n",
            ),
            (b"AUTH", Command::AuthList, b"AUTH\r\n"),
            (b"STAT", Command::Stat, b"STAT\r\n"),
            (b"stat  ", Command::Stat, b"STAT\r\n"),
            (b"LIST", Command::List(None), b"LIST\r\n"),
            (b"LIST 2", Command::List(Some(2)), b"LIST 2\r\n"),
            (b"LIST 007", Command::List(Some(7)), b"LIST 7\r\n"),
            (b"RETR 1", Command::Retr(1), b"RETR 1\r\n"),
            (
                b"RETR 4294967295",
                Command::Retr(u32::MAX),
                b"RETR 4294967295\r\n",
            ),
            (b"DELE 0", Command::Dele(0), b"DELE 0\r\n"),
            (b"NOOP", Command::Noop, b"NOOP\r\n"),
            (b"RSET", Command::Rset, b"RSET\r\n"),
            (b"QUIT", Command::Quit, b"QUIT\r\n"),
            (
                b"TOP 1 10",
                Command::Top {
                    message: 1,
                    lines: 10,
                },
                b"TOP 1 10\r\n",
            ),
            (
                b"top 2  0",
                Command::Top {
                    message: 2,
                    lines: 0,
                },
                b"TOP 2 0\r\n",
            ),
            (b"UIDL", Command::Uidl(None), b"UIDL\r\n"),
            (b"UIDL 3", Command::Uidl(Some(3)), b"UIDL 3\r\n"),
            (b"CAPA", Command::Capa, b"CAPA\r\n"),
            (b"STLS", Command::Stls, b"STLS\r\n"),
            (b"UTF8", Command::Utf8, b"UTF8\r\n"),
            (b"LANG", Command::Lang(None), b"LANG\r\n"),
            (
                b"LANG *",
                Command::Lang(Some(LangRange("*"))),
                b"LANG *\r\n",
            ),
            (
                b"LANG en-US",
                Command::Lang(Some(LangRange("en-US"))),
                b"LANG en-US\r\n",
            ),
        ]
    }

    #[test]
    fn known_answers_parse_and_encode() {
        for (input, value, encoded) in table() {
            assert_eq!(
                p(input),
                value,
                "parse {:?}",
                String::from_utf8_lossy(input)
            );
            assert_eq!(
                value.to_bytes(),
                encoded,
                "encode {value:?} -> {:?}",
                String::from_utf8_lossy(encoded)
            );
            let without_crlf = encoded.strip_suffix(b"\r\n").unwrap_or(encoded);
            assert_eq!(p(without_crlf), value, "re-parse");
        }
    }

    #[test]
    fn rejections() {
        use ParseErrorKind::*;
        let cases: &[(&[u8], ParseErrorKind)] = &[
            (b"", Empty),
            (b"   ", Empty),
            (b"XYZZY", UnknownCommand),
            (b"US", UnknownCommand),
            (b"USERS x", UnknownCommand),
            (b"USER", MissingArgument),
            (b"USER ", MissingArgument),
            (b"USER a b", TooManyArguments),
            (b"USER a\x01b", InvalidArgument),
            (b"PASS", MissingArgument),
            (b"PASS ", MissingArgument),
            (b"PASS a\rb", InvalidArgument),
            (b"APOP mrose", MissingArgument),
            (b"APOP mrose c4c9", InvalidArgument),
            (
                b"APOP mrose c4c9334bac560ecc979e58001b3e22fbff",
                InvalidArgument,
            ),
            (b"AUTH PL@IN", InvalidArgument),
            (b"AUTH ABCDEFGHIJKLMNOPQRSTU", InvalidArgument),
            (b"AUTH PLAIN !!!", InvalidBase64),
            (b"AUTH PLAIN A", InvalidBase64),
            (b"AUTH PLAIN AA=== ", InvalidBase64),
            (b"AUTH PLAIN = x", TooManyArguments),
            (b"STAT 1", TooManyArguments),
            (b"LIST x", InvalidNumber),
            (b"LIST -1", InvalidNumber),
            (b"LIST 1 2", TooManyArguments),
            (b"RETR", MissingArgument),
            (b"RETR 4294967296", InvalidNumber),
            (b"RETR 1x", InvalidNumber),
            (b"TOP 1", MissingArgument),
            (b"TOP 1 2 3", TooManyArguments),
            (b"LANG 123", InvalidArgument),
            (b"LANG abcdefghi", InvalidArgument),
            (b"QUIT now", TooManyArguments),
        ];
        for (input, k) in cases {
            assert_eq!(kind(input), *k, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn error_offsets() {
        assert_eq!(
            Command::parse(b"RETR x"),
            Err(ParseError::new(ParseErrorKind::InvalidNumber, 5))
        );
        assert_eq!(
            Command::parse(b"STAT 1"),
            Err(ParseError::new(ParseErrorKind::TooManyArguments, 4))
        );
    }

    #[test]
    fn password_never_printed() {
        let c = p(b"PASS hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn sasl_response_lines() {
        assert_eq!(SaslResponse::parse(b"*"), Ok(SaslResponse::Cancel));
        assert_eq!(SaslResponse::parse(b""), Ok(SaslResponse::Data(vec![])));
        assert_eq!(
            SaslResponse::parse(b"dGVzdA=="),
            Ok(SaslResponse::Data(b"test".to_vec()))
        );
        assert_eq!(
            SaslResponse::parse(b"dGVzdA"),
            Ok(SaslResponse::Data(b"test".to_vec()))
        );
        assert_eq!(
            SaslResponse::parse(b"dGV*"),
            Err(ParseError::new(ParseErrorKind::InvalidBase64, 0))
        );
        let mut out = Vec::new();
        SaslResponse::Data(b"test".to_vec()).encode(&mut out);
        SaslResponse::Cancel.encode(&mut out);
        SaslResponse::Data(vec![]).encode(&mut out);
        assert_eq!(out, b"dGVzdA==\r\n*\r\n\r\n");
    }

    #[test]
    fn validated_constructors() {
        assert!(Param::new("a b").is_err());
        assert!(Param::new("").is_err());
        assert!(Param::new("alice@example.org").is_ok());
        assert!(PassText::new(b"a\nb").is_err());
        assert!(PassText::new(b" spaced ").is_ok());
        assert!(Mechanism::new("SCRAM-SHA-256").is_ok());
        assert!(Mechanism::new("NO SPACE").is_err());
        assert!(LangRange::new("i-default").is_ok());
        assert!(LangRange::new("-x").is_err());
    }
}
