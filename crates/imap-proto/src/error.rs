//! Error types of the wire-format layer: [`ParseError`] for any message, and
//! [`CommandParseError`], which also carries the command tag so a server can answer `tag BAD`.

use std::fmt;

use crate::types::Tag;

/// What went wrong while parsing a complete message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The message ended before the grammar was satisfied (a truncated line or literal).
    Incomplete,
    /// The bytes do not match the grammar.
    Syntax,
    /// Parentheses are nested deeper than [`crate::parse::ParseOptions::max_depth`].
    TooDeep,
    /// A number does not fit its type (e.g. more than `u32::MAX` for `number`).
    NumberOverflow,
    /// Text that must be UTF-8 is not, or 8-bit text where UTF-8 was not enabled.
    InvalidUtf8,
    /// The command keyword is not one this crate knows.
    UnknownCommand,
    /// Base64 data is malformed.
    InvalidBase64,
    /// A modified UTF-7 mailbox name is malformed or not in canonical form.
    InvalidMailboxName,
    /// A date or date-time has a value out of range (day 32, month "Foo", hour 25 ...).
    InvalidDate,
    /// Bytes remain after a complete message.
    TrailingData,
}

impl ParseErrorKind {
    fn describe(self) -> &'static str {
        match self {
            Self::Incomplete => "message incomplete",
            Self::Syntax => "syntax error",
            Self::TooDeep => "nesting too deep",
            Self::NumberOverflow => "number too large",
            Self::InvalidUtf8 => "invalid UTF-8",
            Self::UnknownCommand => "unknown command",
            Self::InvalidBase64 => "invalid base64",
            Self::InvalidMailboxName => "invalid mailbox name",
            Self::InvalidDate => "invalid date",
            Self::TrailingData => "trailing data",
        }
    }
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// A message could not be parsed: the kind, and the byte offset in the message where the
/// parser noticed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{kind} at offset {offset}")]
#[non_exhaustive]
pub struct ParseError {
    /// What went wrong.
    pub kind: ParseErrorKind,
    /// Byte offset into the message.
    pub offset: usize,
}

impl ParseError {
    /// A parse error of `kind` at `offset`.
    pub fn new(kind: ParseErrorKind, offset: usize) -> Self {
        Self { kind, offset }
    }
}

/// A command could not be parsed. When the tag itself was readable it is kept (as an owned
/// copy) so the server can answer `tag BAD ...`; otherwise the answer is the untagged
/// `* BAD ...`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{kind} at offset {offset}")]
#[non_exhaustive]
pub struct CommandParseError {
    /// The command's tag, if it could be read.
    pub tag: Option<Tag<'static>>,
    /// What went wrong.
    pub kind: ParseErrorKind,
    /// Byte offset into the message.
    pub offset: usize,
}

impl CommandParseError {
    /// A command parse error.
    pub fn new(tag: Option<Tag<'static>>, kind: ParseErrorKind, offset: usize) -> Self {
        Self { tag, kind, offset }
    }

    /// The same error without the tag.
    pub fn to_parse_error(&self) -> ParseError {
        ParseError::new(self.kind, self.offset)
    }
}

impl From<CommandParseError> for ParseError {
    fn from(e: CommandParseError) -> Self {
        e.to_parse_error()
    }
}

/// A value given to a validating constructor is not valid for its type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("invalid {what}")]
#[non_exhaustive]
pub struct ValidationError {
    /// Which type refused the value (e.g. `"atom"`, `"tag"`).
    pub what: &'static str,
}

impl ValidationError {
    pub(crate) const fn new(what: &'static str) -> Self {
        Self { what }
    }
}
