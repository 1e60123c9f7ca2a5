//! Validated value types shared by commands and responses.
//!
//! Every type here can only hold bytes that encode to valid IMAP syntax: constructors
//! validate, and the few `*_unchecked` constructors say what the caller must guarantee.
//! Values borrow from the parsed message (`Cow::Borrowed`) unless unescaping a quoted string
//! forced a copy; `into_owned` detaches them from the message.

use std::borrow::Cow;
use std::fmt;
use std::num::{NonZeroU32, NonZeroU64};

use crate::encode::{Encode, Encoder};
use crate::error::ValidationError;
use crate::parse::chars;

/// How a literal is announced: synchronizing `{n}` (the sender waits for a `+` continuation
/// request) or non-synchronizing `{n+}` (RFC 7888 LITERAL+ / LITERAL-).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum LiteralMode {
    /// `{n}`: the client waits for the server's `+` before sending the bytes.
    #[default]
    Sync,
    /// `{n+}`: the bytes follow immediately.
    NonSync,
}

fn cow_bytes_into_owned(c: Cow<'_, [u8]>) -> Cow<'static, [u8]> {
    Cow::Owned(c.into_owned())
}

/// Checks that `bytes` is non-empty and every byte is in `class`.
fn check_token(bytes: &[u8], class: u8, what: &'static str) -> Result<(), ValidationError> {
    if bytes.is_empty() || !bytes.iter().all(|&b| chars::is(b, class)) {
        return Err(ValidationError::new(what));
    }
    Ok(())
}

/// Views validated token bytes as text. The token classes are ASCII-only, so after
/// validation the conversion cannot fail; the empty fallback is unreachable.
fn token_str(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

fn str_cow_to_bytes(c: Cow<'_, str>) -> Cow<'_, [u8]> {
    match c {
        Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
        Cow::Owned(s) => Cow::Owned(s.into_bytes()),
    }
}

macro_rules! token_newtype {
    ($(#[$doc:meta])* $name:ident, $class:expr, $what:literal) => {
        $(#[$doc])*
        // Stored as bytes so that parsing needs no UTF-8 check: the class is ASCII-only.
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name<'a>(Cow<'a, [u8]>);

        impl<'a> $name<'a> {
            /// Validates `value` and wraps it.
            pub fn new(value: impl Into<Cow<'a, str>>) -> Result<Self, ValidationError> {
                let value = str_cow_to_bytes(value.into());
                check_token(&value, $class, $what)?;
                Ok(Self(value))
            }

            /// Validates `bytes` and borrows them.
            pub fn try_from_bytes(bytes: &'a [u8]) -> Result<Self, ValidationError> {
                check_token(bytes, $class, $what)?;
                Ok(Self(Cow::Borrowed(bytes)))
            }

            /// Wraps `value` without validation. The caller guarantees that `value` is
            /// non-empty and made only of the characters the type's grammar allows;
            /// otherwise the encoder writes invalid syntax.
            pub fn new_unchecked(value: impl Into<Cow<'a, str>>) -> Self {
                Self(str_cow_to_bytes(value.into()))
            }

            /// Wraps bytes the crate's parser has already checked against the class.
            pub(crate) fn from_checked_bytes(bytes: &'a [u8]) -> Self {
                Self(Cow::Borrowed(bytes))
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                token_str(&self.0)
            }

            /// The text as bytes.
            pub fn as_bytes(&self) -> &[u8] {
                &self.0
            }

            /// Detaches the value from the parsed message.
            pub fn into_owned(self) -> $name<'static> {
                $name(cow_bytes_into_owned(self.0))
            }
        }

        impl fmt::Debug for $name<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.as_str())
            }
        }

        impl fmt::Display for $name<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Encode for $name<'_> {
            fn encode(&self, out: &mut Encoder) {
                out.push_bytes(&self.0);
            }
        }
    };
}

token_newtype!(
    /// A command tag: `tag = 1*<any ASTRING-CHAR except "+">`.
    Tag,
    chars::TAG,
    "tag"
);
token_newtype!(
    /// An atom: `atom = 1*ATOM-CHAR`.
    Atom,
    chars::ATOM,
    "atom"
);
token_newtype!(
    /// The atom form of an astring: `1*ASTRING-CHAR` (atom characters plus `]`).
    AtomExt,
    chars::ASTRING,
    "astring atom"
);
token_newtype!(
    /// The unquoted form of a LIST pattern: `1*list-char` (atom characters plus `%`, `*`, `]`).
    ListToken,
    chars::LIST,
    "list pattern"
);

impl Atom<'_> {
    /// Whether the atom equals `keyword`, ignoring ASCII case.
    pub fn eq_ignore_case(&self, keyword: &str) -> bool {
        self.0.eq_ignore_ascii_case(keyword.as_bytes())
    }
}

/// Whether `bytes` may appear inside a quoted string: no NUL, CR or LF, and 8-bit bytes only
/// as well-formed UTF-8 (RFC 9051 `QUOTED-CHAR` includes `UTF8-2` .. `UTF8-4`).
pub(crate) fn is_quotable(bytes: &[u8]) -> bool {
    let mut ascii = true;
    for &b in bytes {
        if b >= 0x80 {
            ascii = false;
        } else if !chars::is(b, chars::TEXT) {
            return false;
        }
    }
    ascii || std::str::from_utf8(bytes).is_ok()
}

/// The content of a quoted string (without the quotes, unescaped).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Quoted<'a>(Cow<'a, [u8]>);

impl<'a> Quoted<'a> {
    /// Validates that `value` can be written as a quoted string (no NUL, CR, LF; 8-bit only
    /// as UTF-8, which RFC 9051 allows and RFC 3501 peers may refuse).
    pub fn new(value: impl Into<Cow<'a, [u8]>>) -> Result<Self, ValidationError> {
        let value = value.into();
        if !is_quotable(&value) {
            return Err(ValidationError::new("quoted string"));
        }
        Ok(Self(value))
    }

    /// Wraps `value` without validation; the caller guarantees it contains no NUL, CR or LF
    /// and that 8-bit bytes form UTF-8.
    pub fn new_unchecked(value: impl Into<Cow<'a, [u8]>>) -> Self {
        Self(value.into())
    }

    /// The unescaped content.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Detaches the value from the parsed message.
    pub fn into_owned(self) -> Quoted<'static> {
        Quoted(cow_bytes_into_owned(self.0))
    }
}

impl fmt::Debug for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Quoted({:?})", String::from_utf8_lossy(&self.0))
    }
}

impl Encode for Quoted<'_> {
    fn encode(&self, out: &mut Encoder) {
        out.push_quoted(&self.0);
    }
}

/// A literal: `literal = "{" number ["+"] "}" CRLF *CHAR8`, or with `binary` set the RFC 3516
/// `literal8 = "~{" number ["+"] "}" CRLF *OCTET`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Literal<'a> {
    data: Cow<'a, [u8]>,
    mode: LiteralMode,
    binary: bool,
}

impl<'a> Literal<'a> {
    /// A text literal. `CHAR8` excludes NUL, so data containing NUL is refused (use
    /// [`Literal::new_binary`]).
    pub fn new(data: impl Into<Cow<'a, [u8]>>, mode: LiteralMode) -> Result<Self, ValidationError> {
        let data = data.into();
        if memchr::memchr(0, &data).is_some() {
            return Err(ValidationError::new("literal (contains NUL)"));
        }
        Ok(Self {
            data,
            mode,
            binary: false,
        })
    }

    /// A binary `literal8` (`~{n}`); any octets.
    pub fn new_binary(data: impl Into<Cow<'a, [u8]>>, mode: LiteralMode) -> Self {
        Self {
            data: data.into(),
            mode,
            binary: true,
        }
    }

    /// The literal's octets.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The literal's octets, as stored (borrowed from the message after parsing).
    pub fn data_cow(&self) -> &Cow<'a, [u8]> {
        &self.data
    }

    /// Synchronizing or not.
    pub fn mode(&self) -> LiteralMode {
        self.mode
    }

    /// The same literal announced with `mode`.
    pub fn with_mode(mut self, mode: LiteralMode) -> Self {
        self.mode = mode;
        self
    }

    /// Whether this is a `literal8` (`~{n}`).
    pub fn is_binary(&self) -> bool {
        self.binary
    }

    /// Detaches the value from the parsed message.
    pub fn into_owned(self) -> Literal<'static> {
        Literal {
            data: cow_bytes_into_owned(self.data),
            mode: self.mode,
            binary: self.binary,
        }
    }
}

impl fmt::Debug for Literal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Literal")
            .field("len", &self.data.len())
            .field("mode", &self.mode)
            .field("binary", &self.binary)
            .field(
                "data",
                &String::from_utf8_lossy(&self.data[..self.data.len().min(64)]),
            )
            .finish()
    }
}

impl Encode for Literal<'_> {
    fn encode(&self, out: &mut Encoder) {
        out.literal(&self.data, self.mode, self.binary);
    }
}

/// Above this length a string that could be quoted is sent as a literal anyway, so that a
/// long value does not push a command line over a server's line limit.
pub const MAX_QUOTED_CHOICE: usize = 1024;

/// `string = quoted / literal`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum IString<'a> {
    /// A quoted string.
    Quoted(Quoted<'a>),
    /// A literal.
    Literal(Literal<'a>),
}

impl<'a> IString<'a> {
    /// Like [`IString::from_bytes`], but refuses values containing NUL, which only a
    /// `literal8` can carry and which are therefore invalid wherever the grammar says
    /// `string` / `astring` (LOGIN arguments, SEARCH strings, mailbox names ...).
    pub fn new(bytes: impl Into<Cow<'a, [u8]>>) -> Result<Self, ValidationError> {
        let bytes = bytes.into();
        if memchr::memchr(0, &bytes).is_some() {
            return Err(ValidationError::new("string (contains NUL)"));
        }
        Ok(Self::from_bytes(bytes))
    }

    /// Chooses the representation for `bytes`: quoted when every byte may be quoted and the
    /// value is short, otherwise a synchronizing literal (the encoder's literal policy can
    /// turn it into `{n+}`). Values with NUL become a `literal8` (`~{n}`), which is valid
    /// only where the grammar allows `literal8` (APPEND data, METADATA values, BINARY
    /// FETCH data); use [`IString::new`] to refuse them instead.
    pub fn from_bytes(bytes: impl Into<Cow<'a, [u8]>>) -> Self {
        let bytes = bytes.into();
        // 8-bit text is only quotable for RFC 9051 peers; a literal is safe for everyone.
        if bytes.len() <= MAX_QUOTED_CHOICE && bytes.is_ascii() && is_quotable(&bytes) {
            Self::Quoted(Quoted(bytes))
        } else if memchr::memchr(0, &bytes).is_some() {
            Self::Literal(Literal::new_binary(bytes, LiteralMode::Sync))
        } else {
            Self::Literal(Literal {
                data: bytes,
                mode: LiteralMode::Sync,
                binary: false,
            })
        }
    }

    /// The string's content.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Quoted(q) => q.as_bytes(),
            Self::Literal(l) => l.data(),
        }
    }

    /// Detaches the value from the parsed message.
    pub fn into_owned(self) -> IString<'static> {
        match self {
            Self::Quoted(q) => IString::Quoted(q.into_owned()),
            Self::Literal(l) => IString::Literal(l.into_owned()),
        }
    }
}

impl Encode for IString<'_> {
    fn encode(&self, out: &mut Encoder) {
        match self {
            Self::Quoted(q) => q.encode(out),
            Self::Literal(l) => l.encode(out),
        }
    }
}

/// `astring = 1*ASTRING-CHAR / string`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AString<'a> {
    /// The bare form.
    Atom(AtomExt<'a>),
    /// A quoted string or literal.
    String(IString<'a>),
}

impl<'a> AString<'a> {
    /// Like [`AString::from_bytes`], but refuses values containing NUL (no `astring` form
    /// can carry NUL; see [`IString::new`]).
    pub fn new(bytes: impl Into<Cow<'a, [u8]>>) -> Result<Self, ValidationError> {
        let bytes = bytes.into();
        if memchr::memchr(0, &bytes).is_some() {
            return Err(ValidationError::new("astring (contains NUL)"));
        }
        Ok(Self::from_bytes(bytes))
    }

    /// Chooses the representation for `bytes`: atom if possible, else as
    /// [`IString::from_bytes`] (so the empty value becomes `""`, and NUL makes a `literal8`
    /// that only `literal8` positions accept; [`AString::new`] refuses it).
    pub fn from_bytes(bytes: impl Into<Cow<'a, [u8]>>) -> Self {
        let bytes = bytes.into();
        if !bytes.is_empty() && bytes.iter().all(|&b| chars::is(b, chars::ASTRING)) {
            return Self::Atom(AtomExt(bytes));
        }
        Self::String(IString::from_bytes(bytes))
    }

    /// The value's content.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Atom(a) => a.as_bytes(),
            Self::String(s) => s.as_bytes(),
        }
    }

    /// Detaches the value from the parsed message.
    pub fn into_owned(self) -> AString<'static> {
        match self {
            Self::Atom(a) => AString::Atom(a.into_owned()),
            Self::String(s) => AString::String(s.into_owned()),
        }
    }
}

impl Encode for AString<'_> {
    fn encode(&self, out: &mut Encoder) {
        match self {
            Self::Atom(a) => a.encode(out),
            Self::String(s) => s.encode(out),
        }
    }
}

/// `nstring = string / nil`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct NString<'a>(pub Option<IString<'a>>);

impl NString<'_> {
    /// Detaches the value from the parsed message.
    pub fn into_owned(self) -> NString<'static> {
        NString(self.0.map(IString::into_owned))
    }

    /// The content, `None` for `NIL`.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        self.0.as_ref().map(IString::as_bytes)
    }
}

impl Encode for NString<'_> {
    fn encode(&self, out: &mut Encoder) {
        match &self.0 {
            Some(s) => s.encode(out),
            None => out.push_bytes(b"NIL"),
        }
    }
}

/// A mailbox name other than INBOX, in its wire form (modified UTF-7, or UTF-8 once
/// UTF8=ACCEPT is enabled). Never equal to `INBOX` in any case: that is [`Mailbox::Inbox`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MailboxName<'a>(AString<'a>);

impl<'a> MailboxName<'a> {
    /// Validates `name`: not INBOX (any case), and 8-bit bytes only as UTF-8.
    pub fn new(name: AString<'a>) -> Result<Self, ValidationError> {
        let bytes = name.as_bytes();
        if bytes.eq_ignore_ascii_case(b"INBOX")
            || (!bytes.is_ascii() && std::str::from_utf8(bytes).is_err())
        {
            return Err(ValidationError::new("mailbox name"));
        }
        Ok(Self(name))
    }

    /// The wire form.
    pub fn as_astring(&self) -> &AString<'a> {
        &self.0
    }

    /// The wire bytes of the name.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Detaches the value from the parsed message.
    pub fn into_owned(self) -> MailboxName<'static> {
        MailboxName(self.0.into_owned())
    }
}

/// `mailbox = "INBOX" / astring` (INBOX is case-insensitive).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Mailbox<'a> {
    /// The INBOX, whatever case it was sent in.
    Inbox,
    /// Any other mailbox.
    Other(MailboxName<'a>),
}

impl<'a> Mailbox<'a> {
    /// The mailbox with wire name `bytes` (already modified UTF-7, or UTF-8 when
    /// UTF8=ACCEPT is in effect); the representation (atom, quoted, literal) is chosen.
    pub fn from_wire(bytes: impl Into<Cow<'a, [u8]>>) -> Result<Self, ValidationError> {
        Self::from_astring(AString::from_bytes(bytes))
    }

    /// The mailbox named by `astring` as sent on the wire.
    pub fn from_astring(astring: AString<'a>) -> Result<Self, ValidationError> {
        if astring.as_bytes().eq_ignore_ascii_case(b"INBOX") {
            Ok(Self::Inbox)
        } else {
            MailboxName::new(astring).map(Self::Other)
        }
    }

    /// The mailbox with the human-readable (Unicode) name `name`, encoded in modified UTF-7
    /// (RFC 3501 §5.1.3) for peers without UTF8=ACCEPT.
    pub fn from_name_mutf7(name: &str) -> Result<Mailbox<'static>, ValidationError> {
        Mailbox::from_wire(crate::mutf7::encode(name).into_bytes())
    }

    /// The mailbox with the Unicode name `name` sent as UTF-8 (RFC 6855 / RFC 9051).
    pub fn from_name_utf8(name: &str) -> Result<Mailbox<'static>, ValidationError> {
        Mailbox::from_wire(name.as_bytes().to_vec())
    }

    /// The wire bytes of the name (`INBOX` for the inbox).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Inbox => b"INBOX",
            Self::Other(n) => n.as_bytes(),
        }
    }

    /// The human-readable name: the wire name decoded from modified UTF-7, or taken as UTF-8
    /// when `utf8` (UTF8=ACCEPT in effect).
    pub fn decode_name(&self, utf8: bool) -> Result<Cow<'_, str>, crate::mutf7::Mutf7Error> {
        let bytes = self.as_bytes();
        if utf8 {
            std::str::from_utf8(bytes)
                .map(Cow::Borrowed)
                .map_err(|_| crate::mutf7::Mutf7Error::NotAscii)
        } else {
            crate::mutf7::decode(bytes)
        }
    }

    /// Detaches the value from the parsed message.
    pub fn into_owned(self) -> Mailbox<'static> {
        match self {
            Self::Inbox => Mailbox::Inbox,
            Self::Other(n) => Mailbox::Other(n.into_owned()),
        }
    }
}

impl Encode for Mailbox<'_> {
    fn encode(&self, out: &mut Encoder) {
        match self {
            Self::Inbox => out.push_bytes(b"INBOX"),
            Self::Other(n) => n.0.encode(out),
        }
    }
}

/// `list-mailbox = 1*list-char / string`: a LIST/LSUB pattern with `%` and `*` wildcards.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ListMailbox<'a> {
    /// The bare form.
    Token(ListToken<'a>),
    /// A quoted string or literal.
    String(IString<'a>),
}

impl<'a> ListMailbox<'a> {
    /// Chooses the representation for `bytes`.
    pub fn from_bytes(bytes: impl Into<Cow<'a, [u8]>>) -> Self {
        let bytes = bytes.into();
        if !bytes.is_empty() && bytes.iter().all(|&b| chars::is(b, chars::LIST)) {
            return Self::Token(ListToken(bytes));
        }
        Self::String(IString::from_bytes(bytes))
    }

    /// The pattern's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Token(t) => t.as_bytes(),
            Self::String(s) => s.as_bytes(),
        }
    }

    /// Detaches the value from the parsed message.
    pub fn into_owned(self) -> ListMailbox<'static> {
        match self {
            Self::Token(t) => ListMailbox::Token(t.into_owned()),
            Self::String(s) => ListMailbox::String(s.into_owned()),
        }
    }
}

impl Encode for ListMailbox<'_> {
    fn encode(&self, out: &mut Encoder) {
        match self {
            Self::Token(t) => t.encode(out),
            Self::String(s) => s.encode(out),
        }
    }
}

/// The name of a `flag-extension` (`"\" atom`) that is not one of the five system flags
/// (those have their own [`Flag`] variants, so a value has exactly one representation).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FlagExtension<'a>(Atom<'a>);

const SYSTEM_FLAGS: [&str; 5] = ["Seen", "Answered", "Flagged", "Deleted", "Draft"];

impl<'a> FlagExtension<'a> {
    /// Validates that `atom` is not a system flag name (any case).
    pub fn new(atom: Atom<'a>) -> Result<Self, ValidationError> {
        if SYSTEM_FLAGS.iter().any(|s| atom.eq_ignore_case(s)) {
            return Err(ValidationError::new("flag extension"));
        }
        Ok(Self(atom))
    }

    /// The name without the backslash.
    pub fn as_atom(&self) -> &Atom<'a> {
        &self.0
    }

    /// Detaches the value from the parsed message.
    pub fn into_owned(self) -> FlagExtension<'static> {
        FlagExtension(self.0.into_owned())
    }
}

/// `flag = "\Answered" / "\Flagged" / "\Deleted" / "\Seen" / "\Draft" / flag-keyword /
/// flag-extension`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Flag<'a> {
    /// `\Seen`
    Seen,
    /// `\Answered`
    Answered,
    /// `\Flagged`
    Flagged,
    /// `\Deleted`
    Deleted,
    /// `\Draft`
    Draft,
    /// `flag-keyword = atom` (e.g. `$Forwarded`, `$Junk`).
    Keyword(Atom<'a>),
    /// `flag-extension = "\" atom` (e.g. `\Recent` in a flag list, future system flags).
    Extension(FlagExtension<'a>),
}

impl<'a> Flag<'a> {
    /// The flag `\name`: a system flag when `name` is one (any case), else an extension.
    pub fn from_backslash_atom(name: Atom<'a>) -> Self {
        let s = name.as_str();
        if s.eq_ignore_ascii_case("Seen") {
            Self::Seen
        } else if s.eq_ignore_ascii_case("Answered") {
            Self::Answered
        } else if s.eq_ignore_ascii_case("Flagged") {
            Self::Flagged
        } else if s.eq_ignore_ascii_case("Deleted") {
            Self::Deleted
        } else if s.eq_ignore_ascii_case("Draft") {
            Self::Draft
        } else {
            Self::Extension(FlagExtension(name))
        }
    }

    /// A keyword flag (no backslash).
    pub fn keyword(name: &'a str) -> Result<Self, ValidationError> {
        Atom::new(name).map(Self::Keyword)
    }

    /// Detaches the value from the parsed message.
    pub fn into_owned(self) -> Flag<'static> {
        match self {
            Self::Seen => Flag::Seen,
            Self::Answered => Flag::Answered,
            Self::Flagged => Flag::Flagged,
            Self::Deleted => Flag::Deleted,
            Self::Draft => Flag::Draft,
            Self::Keyword(a) => Flag::Keyword(a.into_owned()),
            Self::Extension(e) => Flag::Extension(e.into_owned()),
        }
    }
}

impl Encode for Flag<'_> {
    fn encode(&self, out: &mut Encoder) {
        match self {
            Self::Seen => out.push_bytes(b"\\Seen"),
            Self::Answered => out.push_bytes(b"\\Answered"),
            Self::Flagged => out.push_bytes(b"\\Flagged"),
            Self::Deleted => out.push_bytes(b"\\Deleted"),
            Self::Draft => out.push_bytes(b"\\Draft"),
            Self::Keyword(a) => a.encode(out),
            Self::Extension(e) => {
                out.push_bytes(b"\\");
                e.0.encode(out);
            }
        }
    }
}

/// `flag-fetch = flag / "\Recent"`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FlagFetch<'a> {
    /// A flag.
    Flag(Flag<'a>),
    /// `\Recent` (RFC 3501; obsolete in RFC 9051).
    Recent,
}

impl<'a> From<Flag<'a>> for FlagFetch<'a> {
    /// Maps `\Recent` given as a flag extension to [`FlagFetch::Recent`].
    fn from(flag: Flag<'a>) -> Self {
        match flag {
            Flag::Extension(e) if e.0.eq_ignore_case("Recent") => Self::Recent,
            f => Self::Flag(f),
        }
    }
}

impl FlagFetch<'_> {
    /// Detaches the value from the parsed message.
    pub fn into_owned(self) -> FlagFetch<'static> {
        match self {
            Self::Flag(f) => FlagFetch::Flag(f.into_owned()),
            Self::Recent => FlagFetch::Recent,
        }
    }
}

impl Encode for FlagFetch<'_> {
    fn encode(&self, out: &mut Encoder) {
        match self {
            Self::Flag(f) => f.encode(out),
            Self::Recent => out.push_bytes(b"\\Recent"),
        }
    }
}

/// `flag-perm = flag / "\*"`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FlagPerm<'a> {
    /// A flag.
    Flag(Flag<'a>),
    /// `\*`: clients may create new keywords.
    Asterisk,
}

impl FlagPerm<'_> {
    /// Detaches the value from the parsed message.
    pub fn into_owned(self) -> FlagPerm<'static> {
        match self {
            Self::Flag(f) => FlagPerm::Flag(f.into_owned()),
            Self::Asterisk => FlagPerm::Asterisk,
        }
    }
}

impl Encode for FlagPerm<'_> {
    fn encode(&self, out: &mut Encoder) {
        match self {
            Self::Flag(f) => f.encode(out),
            Self::Asterisk => out.push_bytes(b"\\*"),
        }
    }
}

macro_rules! keyword_enum {
    (
        $(#[$doc:meta])* $name:ident, ext: $ext:ident,
        { $( $(#[$vdoc:meta])* $variant:ident = $kw:literal ),* $(,)? }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name<'a> {
            $( $(#[$vdoc])* $variant, )*
            /// Any other name; never one of the names above (see `from_atom`).
            $ext(Atom<'a>),
        }

        impl<'a> $name<'a> {
            /// The value named `atom`, case-insensitively; unknown names become the
            /// extension variant.
            pub fn from_atom(atom: Atom<'a>) -> Self {
                $( if atom.eq_ignore_case($kw) { return Self::$variant; } )*
                Self::$ext(atom)
            }

            /// The name as written by the encoder.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $kw, )*
                    Self::$ext(a) => a.as_str(),
                }
            }

            /// Detaches the value from the parsed message.
            pub fn into_owned(self) -> $name<'static> {
                match self {
                    $( Self::$variant => $name::$variant, )*
                    Self::$ext(a) => $name::$ext(a.into_owned()),
                }
            }
        }
    };
}

keyword_enum!(
    /// A LIST mailbox attribute (`mbx-list-flags`, RFC 3501/9051, RFC 5258 LIST-EXTENDED,
    /// RFC 3348 CHILDREN, RFC 6154 SPECIAL-USE, RFC 8457 `\Important`), written with a
    /// leading backslash.
    MailboxAttribute, ext: Extension, {
        /// `\Noinferiors`
        NoInferiors = "Noinferiors",
        /// `\Noselect`
        NoSelect = "Noselect",
        /// `\Marked`
        Marked = "Marked",
        /// `\Unmarked`
        Unmarked = "Unmarked",
        /// `\NonExistent` (RFC 5258)
        NonExistent = "NonExistent",
        /// `\Subscribed` (RFC 5258)
        Subscribed = "Subscribed",
        /// `\Remote` (RFC 5258)
        Remote = "Remote",
        /// `\HasChildren` (RFC 3348)
        HasChildren = "HasChildren",
        /// `\HasNoChildren` (RFC 3348)
        HasNoChildren = "HasNoChildren",
        /// `\All` (RFC 6154)
        All = "All",
        /// `\Archive` (RFC 6154)
        Archive = "Archive",
        /// `\Drafts` (RFC 6154)
        Drafts = "Drafts",
        /// `\Flagged` (RFC 6154)
        Flagged = "Flagged",
        /// `\Junk` (RFC 6154)
        Junk = "Junk",
        /// `\Sent` (RFC 6154)
        Sent = "Sent",
        /// `\Trash` (RFC 6154)
        Trash = "Trash",
        /// `\Important` (RFC 8457)
        Important = "Important",
    }
);

impl Encode for MailboxAttribute<'_> {
    fn encode(&self, out: &mut Encoder) {
        out.push_bytes(b"\\");
        out.push_bytes(self.as_str().as_bytes());
    }
}

keyword_enum!(
    /// A capability name (`capability = ("AUTH=" auth-type) / atom`). Known names have their
    /// own variants; `AUTH=`, `COMPRESS=` and friends carry their parameter.
    Capability, ext: Other, {
        /// `IMAP4rev1` (RFC 3501)
        Imap4Rev1 = "IMAP4rev1",
        /// `IMAP4rev2` (RFC 9051)
        Imap4Rev2 = "IMAP4rev2",
        /// `STARTTLS`
        StartTls = "STARTTLS",
        /// `LOGINDISABLED`
        LoginDisabled = "LOGINDISABLED",
        /// `IDLE` (RFC 2177)
        Idle = "IDLE",
        /// `LITERAL+` (RFC 7888)
        LiteralPlus = "LITERAL+",
        /// `LITERAL-` (RFC 7888)
        LiteralMinus = "LITERAL-",
        /// `SASL-IR` (RFC 4959)
        SaslIr = "SASL-IR",
        /// `ENABLE` (RFC 5161)
        Enable = "ENABLE",
        /// `MOVE` (RFC 6851)
        Move = "MOVE",
        /// `UIDPLUS` (RFC 4315)
        UidPlus = "UIDPLUS",
        /// `UNSELECT` (RFC 3691)
        Unselect = "UNSELECT",
        /// `NAMESPACE` (RFC 2342)
        Namespace = "NAMESPACE",
        /// `ID` (RFC 2971)
        Id = "ID",
        /// `CHILDREN` (RFC 3348)
        Children = "CHILDREN",
        /// `CONDSTORE` (RFC 7162)
        CondStore = "CONDSTORE",
        /// `QRESYNC` (RFC 7162)
        QResync = "QRESYNC",
        /// `SPECIAL-USE` (RFC 6154)
        SpecialUse = "SPECIAL-USE",
        /// `CREATE-SPECIAL-USE` (RFC 6154)
        CreateSpecialUse = "CREATE-SPECIAL-USE",
        /// `ESEARCH` (RFC 4731)
        ESearch = "ESEARCH",
        /// `SEARCHRES` (RFC 5182)
        SearchRes = "SEARCHRES",
        /// `LIST-EXTENDED` (RFC 5258)
        ListExtended = "LIST-EXTENDED",
        /// `LIST-STATUS` (RFC 5819)
        ListStatus = "LIST-STATUS",
        /// `STATUS=SIZE` (RFC 8438)
        StatusSize = "STATUS=SIZE",
        /// `APPENDLIMIT` without a value (RFC 7889)
        AppendLimit = "APPENDLIMIT",
        /// `MULTIAPPEND` (RFC 3502)
        MultiAppend = "MULTIAPPEND",
        /// `BINARY` (RFC 3516)
        Binary = "BINARY",
        /// `UTF8=ACCEPT` (RFC 6855)
        Utf8Accept = "UTF8=ACCEPT",
        /// `UTF8=ONLY` (RFC 6855)
        Utf8Only = "UTF8=ONLY",
        /// `COMPRESS=DEFLATE` (RFC 4978)
        CompressDeflate = "COMPRESS=DEFLATE",
        /// `QUOTA` (RFC 9208)
        Quota = "QUOTA",
        /// `QUOTASET` (RFC 9208)
        QuotaSet = "QUOTASET",
        /// `WITHIN` (RFC 5032)
        Within = "WITHIN",
        /// `SASL-IR`'s sibling `AUTH=PLAIN` is common enough to name.
        AuthPlain = "AUTH=PLAIN",
        /// `AUTH=LOGIN`
        AuthLogin = "AUTH=LOGIN",
    }
);

impl Capability<'_> {
    /// For `AUTH=<mech>` capabilities, the mechanism name.
    pub fn auth_mechanism(&self) -> Option<&str> {
        match self {
            Self::AuthPlain => Some("PLAIN"),
            Self::AuthLogin => Some("LOGIN"),
            Self::Other(a) => {
                let s = a.as_str();
                (s.len() > 5 && s[..5].eq_ignore_ascii_case("AUTH=")).then(|| &s[5..])
            }
            _ => None,
        }
    }
}

impl Encode for Capability<'_> {
    fn encode(&self, out: &mut Encoder) {
        out.push_bytes(self.as_str().as_bytes());
    }
}

/// `charset = atom / quoted`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Charset<'a> {
    /// Bare form, e.g. `UTF-8`.
    Atom(Atom<'a>),
    /// Quoted form.
    Quoted(Quoted<'a>),
}

impl Charset<'_> {
    /// The charset name.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Atom(a) => a.as_bytes(),
            Self::Quoted(q) => q.as_bytes(),
        }
    }

    /// Detaches the value from the parsed message.
    pub fn into_owned(self) -> Charset<'static> {
        match self {
            Self::Atom(a) => Charset::Atom(a.into_owned()),
            Self::Quoted(q) => Charset::Quoted(q.into_owned()),
        }
    }
}

impl Encode for Charset<'_> {
    fn encode(&self, out: &mut Encoder) {
        match self {
            Self::Atom(a) => a.encode(out),
            Self::Quoted(q) => q.encode(out),
        }
    }
}

/// One end of a sequence range: a message number / UID, or `*` (the largest in use).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SeqOrUid {
    /// `nz-number`
    Value(NonZeroU32),
    /// `*`
    Asterisk,
}

impl SeqOrUid {
    /// Resolves `*` to `largest` (the highest message number or UID in the mailbox).
    pub fn resolve(self, largest: u32) -> u32 {
        match self {
            Self::Value(v) => v.get(),
            Self::Asterisk => largest,
        }
    }
}

impl Encode for SeqOrUid {
    fn encode(&self, out: &mut Encoder) {
        match self {
            Self::Value(v) => out.push_number(u64::from(v.get())),
            Self::Asterisk => out.push_bytes(b"*"),
        }
    }
}

/// `seq-number / seq-range`: one element of a sequence set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SeqRange {
    /// A single number or `*`.
    Single(SeqOrUid),
    /// `seq-range = seq-number ":" seq-number` (either order; both ends included).
    Range(SeqOrUid, SeqOrUid),
}

impl SeqRange {
    /// The inclusive bounds, with `*` resolved to `largest`, lower first.
    pub fn bounds(self, largest: u32) -> (u32, u32) {
        let (a, b) = match self {
            Self::Single(x) => (x.resolve(largest), x.resolve(largest)),
            Self::Range(x, y) => (x.resolve(largest), y.resolve(largest)),
        };
        if a <= b { (a, b) } else { (b, a) }
    }

    /// Whether `n` lies in this element, with `*` standing for `largest`.
    pub fn contains(self, n: u32, largest: u32) -> bool {
        let (lo, hi) = self.bounds(largest);
        lo <= n && n <= hi
    }
}

impl Encode for SeqRange {
    fn encode(&self, out: &mut Encoder) {
        match self {
            Self::Single(x) => x.encode(out),
            Self::Range(a, b) => {
                a.encode(out);
                out.push_bytes(b":");
                b.encode(out);
            }
        }
    }
}

/// `sequence-set = (seq-number / seq-range) ["," sequence-set]`: never empty.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SequenceSet(Vec<SeqRange>);

impl SequenceSet {
    /// Validates that `ranges` is non-empty.
    pub fn new(ranges: Vec<SeqRange>) -> Result<Self, ValidationError> {
        if ranges.is_empty() {
            return Err(ValidationError::new("sequence set (empty)"));
        }
        Ok(Self(ranges))
    }

    /// A set holding one number.
    pub fn single(n: NonZeroU32) -> Self {
        Self(vec![SeqRange::Single(SeqOrUid::Value(n))])
    }

    /// A set holding `lo:hi`.
    pub fn range(lo: SeqOrUid, hi: SeqOrUid) -> Self {
        Self(vec![SeqRange::Range(lo, hi)])
    }

    /// The elements.
    pub fn ranges(&self) -> &[SeqRange] {
        &self.0
    }

    /// Whether `n` is in the set, with `*` standing for `largest`.
    pub fn contains(&self, n: u32, largest: u32) -> bool {
        self.0.iter().any(|r| r.contains(n, largest))
    }

    /// Whether any element uses `*`.
    pub fn uses_asterisk(&self) -> bool {
        self.0.iter().any(|r| match r {
            SeqRange::Single(x) => *x == SeqOrUid::Asterisk,
            SeqRange::Range(a, b) => *a == SeqOrUid::Asterisk || *b == SeqOrUid::Asterisk,
        })
    }

    /// Iterates over the numbers in the set in the order given, with `*` resolved to
    /// `largest`; duplicates are not removed. Counting is overflow-free (`u32` bounds).
    pub fn iter(&self, largest: u32) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().flat_map(move |r| {
            let (lo, hi) = r.bounds(largest);
            lo..=hi
        })
    }

    /// The number of values the set names, with `*` resolved to `largest` (duplicates
    /// counted), saturating at `u64::MAX`.
    pub fn count(&self, largest: u32) -> u64 {
        self.0.iter().fold(0u64, |acc, r| {
            let (lo, hi) = r.bounds(largest);
            acc.saturating_add(u64::from(hi - lo) + 1)
        })
    }
}

impl Encode for SequenceSet {
    fn encode(&self, out: &mut Encoder) {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                out.push_bytes(b",");
            }
            r.encode(out);
        }
    }
}

/// A sequence set as commands take it: a set, or RFC 5182 `$` (the result saved by the last
/// `SEARCH RETURN (SAVE)`). `$` is accepted only on its own, not inside a list.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SequenceSetArg {
    /// A literal sequence set.
    Set(SequenceSet),
    /// `seq-last-command = "$"`.
    SavedResult,
}

impl Encode for SequenceSetArg {
    fn encode(&self, out: &mut Encoder) {
        match self {
            Self::Set(s) => s.encode(out),
            Self::SavedResult => out.push_bytes(b"$"),
        }
    }
}

impl From<SequenceSet> for SequenceSetArg {
    fn from(s: SequenceSet) -> Self {
        Self::Set(s)
    }
}

/// A mod-sequence value (RFC 7162 `mod-sequence-value`: a positive 63-bit integer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModSeq(NonZeroU64);

impl ModSeq {
    /// The largest mod-sequence value, 2^63 - 1.
    pub const MAX: u64 = i64::MAX as u64;

    /// Validates `1 <= value <= 2^63 - 1`.
    pub fn new(value: u64) -> Result<Self, ValidationError> {
        match NonZeroU64::new(value) {
            Some(v) if value <= Self::MAX => Ok(Self(v)),
            _ => Err(ValidationError::new("mod-sequence value")),
        }
    }

    /// The value.
    pub fn get(self) -> u64 {
        self.0.get()
    }
}

impl Encode for ModSeq {
    fn encode(&self, out: &mut Encoder) {
        out.push_number(self.0.get());
    }
}

/// Month names as written in IMAP dates.
pub(crate) const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `date-text = date-day "-" date-month "-" date-year` (SEARCH dates).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

impl Date {
    /// Validates a calendar date: 4-digit year, month 1..=12, day within the month.
    pub fn new(year: u16, month: u8, day: u8) -> Result<Self, ValidationError> {
        if year > 9999 || !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month)
        {
            return Err(ValidationError::new("date"));
        }
        Ok(Self { year, month, day })
    }

    /// Year.
    pub fn year(self) -> u16 {
        self.year
    }
    /// Month, 1..=12.
    pub fn month(self) -> u8 {
        self.month
    }
    /// Day of month, 1..=31.
    pub fn day(self) -> u8 {
        self.day
    }
}

impl Encode for Date {
    fn encode(&self, out: &mut Encoder) {
        out.push_number(u64::from(self.day));
        out.push_bytes(b"-");
        out.push_bytes(MONTHS[usize::from(self.month - 1)]);
        out.push_bytes(b"-");
        out.push_digits(u32::from(self.year), 4);
    }
}

/// `date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DateTime {
    date: Date,
    hour: u8,
    minute: u8,
    second: u8,
    zone_minutes: i16,
}

impl DateTime {
    /// Validates the fields: time 00:00:00 ..= 23:59:60 (leap second), zone offset within
    /// ±99:59 with minutes below 60.
    pub fn new(
        date: Date,
        hour: u8,
        minute: u8,
        second: u8,
        zone_minutes: i16,
    ) -> Result<Self, ValidationError> {
        let zone_ok = zone_minutes.unsigned_abs() <= 99 * 60 + 59;
        if hour > 23 || minute > 59 || second > 60 || !zone_ok {
            return Err(ValidationError::new("date-time"));
        }
        Ok(Self {
            date,
            hour,
            minute,
            second,
            zone_minutes,
        })
    }

    /// The date part.
    pub fn date(self) -> Date {
        self.date
    }
    /// Hour, 0..=23.
    pub fn hour(self) -> u8 {
        self.hour
    }
    /// Minute, 0..=59.
    pub fn minute(self) -> u8 {
        self.minute
    }
    /// Second, 0..=60.
    pub fn second(self) -> u8 {
        self.second
    }
    /// Zone offset from UTC in minutes (east positive).
    pub fn zone_minutes(self) -> i16 {
        self.zone_minutes
    }
}

impl Encode for DateTime {
    fn encode(&self, out: &mut Encoder) {
        out.push_bytes(b"\"");
        let day = self.date.day;
        if day < 10 {
            out.push_bytes(b" ");
        }
        out.push_number(u64::from(day));
        out.push_bytes(b"-");
        out.push_bytes(MONTHS[usize::from(self.date.month - 1)]);
        out.push_bytes(b"-");
        out.push_digits(u32::from(self.date.year), 4);
        out.push_bytes(b" ");
        out.push_digits(u32::from(self.hour), 2);
        out.push_bytes(b":");
        out.push_digits(u32::from(self.minute), 2);
        out.push_bytes(b":");
        out.push_digits(u32::from(self.second), 2);
        out.push_bytes(if self.zone_minutes < 0 { b" -" } else { b" +" });
        let z = self.zone_minutes.unsigned_abs();
        out.push_digits(u32::from(z / 60), 2);
        out.push_digits(u32::from(z % 60), 2);
        out.push_bytes(b"\"");
    }
}

/// The text part of a section specifier (`section-msgtext` / `section-text`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SectionText<'a> {
    /// `HEADER`
    Header,
    /// `HEADER.FIELDS (names)`
    HeaderFields(Vec<AString<'a>>),
    /// `HEADER.FIELDS.NOT (names)`
    HeaderFieldsNot(Vec<AString<'a>>),
    /// `TEXT`
    Text,
    /// `MIME` (only after a part number)
    Mime,
}

impl SectionText<'_> {
    /// Detaches the value from the parsed message.
    pub fn into_owned(self) -> SectionText<'static> {
        match self {
            Self::Header => SectionText::Header,
            Self::HeaderFields(v) => {
                SectionText::HeaderFields(v.into_iter().map(AString::into_owned).collect())
            }
            Self::HeaderFieldsNot(v) => {
                SectionText::HeaderFieldsNot(v.into_iter().map(AString::into_owned).collect())
            }
            Self::Text => SectionText::Text,
            Self::Mime => SectionText::Mime,
        }
    }
}

/// `section = "[" [section-spec] "]"`: a part path (`1.2.3`) and an optional text specifier.
/// The empty section `[]` is the whole message.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Section<'a> {
    part: Vec<NonZeroU32>,
    text: Option<SectionText<'a>>,
}

impl<'a> Section<'a> {
    /// Validates the combination: `MIME` needs a part number, and `HEADER.FIELDS(.NOT)` needs
    /// at least one field name.
    pub fn new(
        part: Vec<NonZeroU32>,
        text: Option<SectionText<'a>>,
    ) -> Result<Self, ValidationError> {
        match &text {
            Some(SectionText::Mime) if part.is_empty() => {
                return Err(ValidationError::new("section (MIME without part)"));
            }
            Some(SectionText::HeaderFields(v) | SectionText::HeaderFieldsNot(v))
                if v.is_empty() =>
            {
                return Err(ValidationError::new("section (empty header list)"));
            }
            _ => {}
        }
        Ok(Self { part, text })
    }

    /// The part path (empty for the whole message).
    pub fn part(&self) -> &[NonZeroU32] {
        &self.part
    }

    /// The text specifier.
    pub fn text(&self) -> Option<&SectionText<'a>> {
        self.text.as_ref()
    }

    /// Detaches the value from the parsed message.
    pub fn into_owned(self) -> Section<'static> {
        Section {
            part: self.part,
            text: self.text.map(SectionText::into_owned),
        }
    }
}

impl Encode for Section<'_> {
    /// Writes `[...]` including the brackets.
    fn encode(&self, out: &mut Encoder) {
        out.push_bytes(b"[");
        encode_part(&self.part, out);
        if let Some(text) = &self.text {
            if !self.part.is_empty() {
                out.push_bytes(b".");
            }
            match text {
                SectionText::Header => out.push_bytes(b"HEADER"),
                SectionText::Text => out.push_bytes(b"TEXT"),
                SectionText::Mime => out.push_bytes(b"MIME"),
                SectionText::HeaderFields(v) | SectionText::HeaderFieldsNot(v) => {
                    out.push_bytes(if matches!(text, SectionText::HeaderFields(_)) {
                        b"HEADER.FIELDS ("
                    } else {
                        b"HEADER.FIELDS.NOT ("
                    });
                    for (i, f) in v.iter().enumerate() {
                        if i > 0 {
                            out.push_bytes(b" ");
                        }
                        f.encode(out);
                    }
                    out.push_bytes(b")");
                }
            }
        }
        out.push_bytes(b"]");
    }
}

/// Writes `section-part = nz-number *("." nz-number)`.
pub(crate) fn encode_part(part: &[NonZeroU32], out: &mut Encoder) {
    for (i, p) in part.iter().enumerate() {
        if i > 0 {
            out.push_bytes(b".");
        }
        out.push_number(u64::from(p.get()));
    }
}

/// A partial range: `"<" number ["." nz-number] ">"`. Commands always carry a length
/// (`<0.1024>`); FETCH responses only the origin (`BODY[]<0>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Partial {
    /// First octet.
    pub offset: u32,
    /// Number of octets (commands) or `None` (responses).
    pub length: Option<NonZeroU32>,
}

impl Encode for Partial {
    fn encode(&self, out: &mut Encoder) {
        out.push_bytes(b"<");
        out.push_number(u64::from(self.offset));
        if let Some(l) = self.length {
            out.push_bytes(b".");
            out.push_number(u64::from(l.get()));
        }
        out.push_bytes(b">");
    }
}

/// A STATUS data item name (`status-att`, RFC 3501/9051, RFC 7162 HIGHESTMODSEQ, RFC 8438
/// SIZE, RFC 7889 APPENDLIMIT, RFC 9208 DELETED-STORAGE).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StatusItem {
    /// `MESSAGES`
    Messages,
    /// `RECENT` (RFC 3501 only)
    Recent,
    /// `UIDNEXT`
    UidNext,
    /// `UIDVALIDITY`
    UidValidity,
    /// `UNSEEN`
    Unseen,
    /// `DELETED` (RFC 9051)
    Deleted,
    /// `SIZE` (RFC 8438 / RFC 9051)
    Size,
    /// `HIGHESTMODSEQ` (RFC 7162)
    HighestModSeq,
    /// `APPENDLIMIT` (RFC 7889)
    AppendLimit,
    /// `DELETED-STORAGE` (RFC 9208)
    DeletedStorage,
}

impl StatusItem {
    /// Every item, in the order above.
    pub const ALL: [StatusItem; 10] = [
        Self::Messages,
        Self::Recent,
        Self::UidNext,
        Self::UidValidity,
        Self::Unseen,
        Self::Deleted,
        Self::Size,
        Self::HighestModSeq,
        Self::AppendLimit,
        Self::DeletedStorage,
    ];

    /// The keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Messages => "MESSAGES",
            Self::Recent => "RECENT",
            Self::UidNext => "UIDNEXT",
            Self::UidValidity => "UIDVALIDITY",
            Self::Unseen => "UNSEEN",
            Self::Deleted => "DELETED",
            Self::Size => "SIZE",
            Self::HighestModSeq => "HIGHESTMODSEQ",
            Self::AppendLimit => "APPENDLIMIT",
            Self::DeletedStorage => "DELETED-STORAGE",
        }
    }

    /// The item named `keyword` (ASCII case-insensitive).
    pub fn from_keyword(keyword: &[u8]) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|i| i.as_str().as_bytes().eq_ignore_ascii_case(keyword))
    }
}

impl Encode for StatusItem {
    fn encode(&self, out: &mut Encoder) {
        out.push_bytes(self.as_str().as_bytes());
    }
}

keyword_enum!(
    /// A quota resource name (RFC 9208 `resource-name`).
    QuotaResource, ext: Other, {
        /// `STORAGE` (KiB)
        Storage = "STORAGE",
        /// `MESSAGE`
        Message = "MESSAGE",
        /// `MAILBOX`
        Mailbox = "MAILBOX",
        /// `ANNOTATION-STORAGE`
        AnnotationStorage = "ANNOTATION-STORAGE",
    }
);

keyword_enum!(
    /// A THREAD algorithm (RFC 5256 `thread-alg`).
    ThreadAlgorithm, ext: Other, {
        /// `ORDEREDSUBJECT`
        OrderedSubject = "ORDEREDSUBJECT",
        /// `REFERENCES`
        References = "REFERENCES",
    }
);

impl Encode for ThreadAlgorithm<'_> {
    fn encode(&self, out: &mut Encoder) {
        out.push_bytes(self.as_str().as_bytes());
    }
}

impl Encode for QuotaResource<'_> {
    fn encode(&self, out: &mut Encoder) {
        out.push_bytes(self.as_str().as_bytes());
    }
}

/// A value that must not end up in logs (a password): `Debug` prints `<redacted>`; the
/// value itself is reached through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret value.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the secret value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<T: Encode> Encode for Secret<T> {
    fn encode(&self, out: &mut Encoder) {
        self.0.encode(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_validation() {
        assert!(Tag::new("a001").is_ok());
        assert!(Tag::new("a+1").is_err());
        assert!(Tag::new("").is_err());
        assert!(Tag::new("a b").is_err());
        assert!(Tag::new("x]").is_ok());
    }

    #[test]
    fn astring_choice() {
        assert!(matches!(AString::from_bytes(&b"abc"[..]), AString::Atom(_)));
        assert!(matches!(
            AString::from_bytes(&b""[..]),
            AString::String(IString::Quoted(_))
        ));
        assert!(matches!(
            AString::from_bytes(&b"a b"[..]),
            AString::String(IString::Quoted(_))
        ));
        assert!(matches!(
            AString::from_bytes(&b"a\r\nb"[..]),
            AString::String(IString::Literal(_))
        ));
        assert!(matches!(
            AString::from_bytes("ä".as_bytes()),
            AString::String(IString::Literal(_))
        ));
    }

    #[test]
    fn mailbox_inbox_is_case_insensitive() {
        assert_eq!(Mailbox::from_wire(&b"iNbOx"[..]).unwrap(), Mailbox::Inbox);
        assert!(MailboxName::new(AString::from_bytes(&b"INBOX"[..])).is_err());
    }

    #[test]
    fn flags_normalize() {
        assert_eq!(
            Flag::from_backslash_atom(Atom::new("SEEN").unwrap()),
            Flag::Seen
        );
        assert!(FlagExtension::new(Atom::new("draft").unwrap()).is_err());
        let recent = Flag::from_backslash_atom(Atom::new("Recent").unwrap());
        assert_eq!(FlagFetch::from(recent), FlagFetch::Recent);
    }

    #[test]
    fn dates_validate() {
        assert!(Date::new(2024, 2, 29).is_ok());
        assert!(Date::new(2023, 2, 29).is_err());
        assert!(Date::new(2023, 13, 1).is_err());
        let d = Date::new(1994, 2, 1).unwrap();
        assert!(DateTime::new(d, 24, 0, 0, 0).is_err());
        assert!(DateTime::new(d, 23, 59, 60, -480).is_ok());
    }

    #[test]
    fn seq_set_helpers() {
        let s = SequenceSet::new(vec![
            SeqRange::Range(
                SeqOrUid::Asterisk,
                SeqOrUid::Value(NonZeroU32::new(5).unwrap()),
            ),
            SeqRange::Single(SeqOrUid::Value(NonZeroU32::new(2).unwrap())),
        ])
        .unwrap();
        assert!(s.contains(7, 9));
        assert!(!s.contains(3, 9));
        assert_eq!(s.count(9), 6);
        assert_eq!(s.iter(6).collect::<Vec<_>>(), vec![5, 6, 2]);
        assert!(SequenceSet::new(vec![]).is_err());
        assert_eq!(SequenceSet::single(NonZeroU32::MAX).count(u32::MAX), 1);
    }

    #[test]
    fn modseq_bounds() {
        assert!(ModSeq::new(0).is_err());
        assert!(ModSeq::new(ModSeq::MAX).is_ok());
        assert!(ModSeq::new(ModSeq::MAX + 1).is_err());
    }
}
