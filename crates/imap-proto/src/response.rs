//! Server responses (RFC 9051 §7, RFC 3501 §7 and extensions): types, the client-side parser
//! and the server-side encoder.
//!
//! - [`parse_response`] reads one complete message (a line with every literal inline, as the
//!   fragmentizer hands it out, ending in CRLF) into a [`Response`] that borrows from it.
//! - `impl Encode for Response` writes it back; the encoder is total: every value the types
//!   can hold encodes to bytes that [`parse_response`] reads back to the same value (the few
//!   exceptions are named on the variants: an `Other` item spelled like a known one).
//!   A server encodes with [`crate::encode::LiteralPolicy::Sync`], because responses never
//!   carry non-synchronizing literals:
//!
//! ```
//! use cas_imap_proto::code::ResponseCode;
//! use cas_imap_proto::encode::{Encode, Encoder, LiteralPolicy};
//! use cas_imap_proto::response::{Response, Status, StatusResponse, Text, parse_response};
//! use cas_imap_proto::types::Tag;
//!
//! let done = StatusResponse::tagged(
//!     Tag::new("a1").unwrap(),
//!     Status::Ok,
//!     Some(ResponseCode::ReadWrite),
//!     Text::new(&b"SELECT completed"[..]).unwrap(),
//! );
//! let mut out = Encoder::with_policy(LiteralPolicy::Sync);
//! Response::Status(done.clone()).encode(&mut out);
//! let wire = out.into_bytes();
//! assert_eq!(wire, b"a1 OK [READ-WRITE] SELECT completed\r\n");
//! assert_eq!(parse_response(&wire).unwrap(), Response::Status(done));
//! ```
//!
//! What the parser accepts beyond the strict grammar, because real servers send it (each is
//! also what the encoder would never produce, so round trips stay exact):
//! - a bare LF instead of CRLF at the end;
//! - `* OK` with no text, and a code without the space after `]`;
//! - multipart `BODYSTRUCTURE` with spaces between the parts (the lax form);
//! - spaces between addresses in an envelope;
//! - a trailing space after the last capability;
//! - `MESSAGE/RFC822` parts without the envelope/body/lines, and `TEXT` parts without lines
//!   (read as basic parts);
//! - `* n FETCH ()` with no items, `* SEARCH (MODSEQ n)` with no numbers.

use std::borrow::Cow;
use std::num::NonZeroU32;

use crate::body::{BodyStructure, Envelope};
use crate::code::{ObjectId, ResponseCode};
use crate::error::{ParseError, ValidationError};
use crate::parse::ParseOptions;
use crate::types::{
    AString, Atom, Capability, DateTime, Flag, FlagFetch, IString, Mailbox, MailboxAttribute,
    ModSeq, NString, QuotaResource, Section, SequenceSet, Tag,
};

mod encoder;
pub(crate) mod helpers;
pub(crate) mod parser;

/// One server response: a status, untagged data, or a continuation request.
///
/// ```text
/// response        = *(continue-req / response-data) response-done
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Response<'a> {
    /// A tagged or untagged status response: OK, NO, BAD, PREAUTH, BYE.
    Status(StatusResponse<'a>),
    /// Untagged data (`* ...`) other than a status.
    Data(Data<'a>),
    /// A continuation request (`+ ...`).
    Continue(ContinueRequest<'a>),
}

impl Response<'_> {
    /// Copies every borrowed field so the value outlives the message.
    pub fn into_owned(self) -> Response<'static> {
        match self {
            Self::Status(s) => Response::Status(s.into_owned()),
            Self::Data(d) => Response::Data(d.into_owned()),
            Self::Continue(c) => Response::Continue(c.into_owned()),
        }
    }
}

/// Parses one complete response message (ending in CRLF, literals inline) with default
/// [`ParseOptions`].
pub fn parse_response(message: &[u8]) -> Result<Response<'_>, ParseError> {
    parse_response_with(message, &ParseOptions::default())
}

/// Parses one complete response message with explicit [`ParseOptions`] (nesting depth).
pub fn parse_response_with<'a>(
    message: &'a [u8],
    options: &ParseOptions,
) -> Result<Response<'a>, ParseError> {
    parser::response(message, options)
}

/// `OK`, `NO` or `BAD`: the result in `resp-cond-state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Success (or, untagged, information).
    Ok,
    /// Operational failure.
    No,
    /// Protocol error.
    Bad,
}

/// A status response.
///
/// ```text
/// response-tagged = tag SP resp-cond-state CRLF
/// resp-cond-state = ("OK" / "NO" / "BAD") SP resp-text
/// resp-cond-auth  = ("OK" / "PREAUTH") SP resp-text
/// resp-cond-bye   = "BYE" SP resp-text
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StatusResponse<'a> {
    /// `tag OK/NO/BAD ...`: completes the command with that tag.
    Tagged {
        /// The command's tag.
        tag: Tag<'a>,
        /// Result.
        status: Status,
        /// Code and human-readable text.
        text: ResponseText<'a>,
    },
    /// `* OK/NO/BAD ...`: information, warning or error not tied to a command.
    Untagged {
        /// Kind.
        status: Status,
        /// Code and human-readable text.
        text: ResponseText<'a>,
    },
    /// `* PREAUTH ...`: greeting of an already authenticated connection.
    PreAuth(ResponseText<'a>),
    /// `* BYE ...`: the server is closing the connection.
    Bye(ResponseText<'a>),
}

impl<'a> StatusResponse<'a> {
    /// `tag OK/NO/BAD [code] text`.
    pub fn tagged(
        tag: Tag<'a>,
        status: Status,
        code: Option<ResponseCode<'a>>,
        text: Text<'a>,
    ) -> Self {
        Self::Tagged {
            tag,
            status,
            text: ResponseText { code, text },
        }
    }

    /// `* OK/NO/BAD [code] text`.
    pub fn untagged(status: Status, code: Option<ResponseCode<'a>>, text: Text<'a>) -> Self {
        Self::Untagged {
            status,
            text: ResponseText { code, text },
        }
    }

    /// `* BYE [code] text`.
    pub fn bye(code: Option<ResponseCode<'a>>, text: Text<'a>) -> Self {
        Self::Bye(ResponseText { code, text })
    }

    /// The code and text of any kind of status response.
    pub fn text(&self) -> &ResponseText<'a> {
        match self {
            Self::Tagged { text, .. } | Self::Untagged { text, .. } => text,
            Self::PreAuth(text) | Self::Bye(text) => text,
        }
    }

    /// The tag, for a tagged response.
    pub fn tag(&self) -> Option<&Tag<'a>> {
        match self {
            Self::Tagged { tag, .. } => Some(tag),
            _ => None,
        }
    }

    /// Copies every borrowed field.
    pub fn into_owned(self) -> StatusResponse<'static> {
        match self {
            Self::Tagged { tag, status, text } => StatusResponse::Tagged {
                tag: tag.into_owned(),
                status,
                text: text.into_owned(),
            },
            Self::Untagged { status, text } => StatusResponse::Untagged {
                status,
                text: text.into_owned(),
            },
            Self::PreAuth(t) => StatusResponse::PreAuth(t.into_owned()),
            Self::Bye(t) => StatusResponse::Bye(t.into_owned()),
        }
    }
}

/// `resp-text = ["[" resp-text-code "]" SP] [text]`
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct ResponseText<'a> {
    /// The bracketed response code, if any.
    pub code: Option<ResponseCode<'a>>,
    /// The human-readable text (may be empty).
    pub text: Text<'a>,
}

impl<'a> ResponseText<'a> {
    /// Text without a code.
    pub fn new(text: Text<'a>) -> Self {
        Self { code: None, text }
    }

    /// Text with a code.
    pub fn with_code(code: ResponseCode<'a>, text: Text<'a>) -> Self {
        Self {
            code: Some(code),
            text,
        }
    }

    /// Copies every borrowed field.
    pub fn into_owned(self) -> ResponseText<'static> {
        ResponseText {
            code: self.code.map(ResponseCode::into_owned),
            text: self.text.into_owned(),
        }
    }
}

/// `text = 1*(TEXT-CHAR / UTF8-2 / UTF8-3 / UTF8-4)`: human-readable text of a response.
///
/// Holds any bytes but CR, LF and NUL, and does not start with `[` (which would read as a
/// response code). It may be empty (RFC 9051 makes the text optional). UTF-8 is not checked:
/// RFC 3501 servers may send other charsets, and the text is for humans only.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Text<'a>(Cow<'a, [u8]>);

impl<'a> Text<'a> {
    /// Validates text: no CR, LF or NUL, and no leading `[`.
    pub fn new(text: impl Into<Cow<'a, [u8]>>) -> Result<Self, ValidationError> {
        let text = text.into();
        let ok =
            text.first() != Some(&b'[') && !text.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0));
        if ok {
            Ok(Self(text))
        } else {
            Err(ValidationError::new("text"))
        }
    }

    /// Text from bytes the caller guarantees free of CR, LF and NUL. A leading `[` is allowed
    /// here (the parser uses it after a code, and for text that failed to parse as a code);
    /// without a code it re-parses as a code when it looks like one.
    pub fn new_unchecked(text: impl Into<Cow<'a, [u8]>>) -> Self {
        Self(text.into())
    }

    /// The text's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The text as UTF-8, if it is.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// Copies the borrowed bytes.
    pub fn into_owned(self) -> Text<'static> {
        Text(Cow::Owned(self.0.into_owned()))
    }
}

impl<'a> TryFrom<&'a str> for Text<'a> {
    type Error = ValidationError;

    fn try_from(value: &'a str) -> Result<Self, ValidationError> {
        Self::new(value.as_bytes())
    }
}

/// `continue-req = "+" SP (resp-text / base64) CRLF`
///
/// Text and base64 look alike on the wire (`+ idle` is valid base64); the parser reads a
/// payload made only of base64 characters with valid padding as [`ContinueRequest::Base64`]
/// and anything else as [`ContinueRequest::Basic`]. A client that is not in an AUTHENTICATE
/// exchange should treat both as "go ahead" (see [`ContinueRequest::raw_text`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ContinueRequest<'a> {
    /// `resp-text`: optional code and human-readable text.
    Basic(ResponseText<'a>),
    /// SASL challenge data, still base64-encoded (the crate has no base64 dependency).
    Base64(Base64<'a>),
}

impl ContinueRequest<'_> {
    /// The bytes after `+ `: the text (without code) or the base64 characters.
    pub fn raw_text(&self) -> &[u8] {
        match self {
            Self::Basic(t) => t.text.as_bytes(),
            Self::Base64(b) => b.as_bytes(),
        }
    }

    /// Copies every borrowed field.
    pub fn into_owned(self) -> ContinueRequest<'static> {
        match self {
            Self::Basic(t) => ContinueRequest::Basic(t.into_owned()),
            Self::Base64(b) => ContinueRequest::Base64(b.into_owned()),
        }
    }
}

/// Base64 characters (RFC 4648 alphabet with padding), non-empty, length a multiple of 4.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Base64<'a>(Cow<'a, [u8]>);

impl<'a> Base64<'a> {
    /// Validates already-encoded base64 text.
    pub fn new(encoded: impl Into<Cow<'a, [u8]>>) -> Result<Self, ValidationError> {
        let encoded = encoded.into();
        if is_base64(&encoded) {
            Ok(Self(encoded))
        } else {
            Err(ValidationError::new("base64"))
        }
    }

    /// The encoded characters.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Copies the borrowed bytes.
    pub fn into_owned(self) -> Base64<'static> {
        Base64(Cow::Owned(self.0.into_owned()))
    }
}

/// `base64 = *(4base64-char) [base64-terminal]`, non-empty.
pub(crate) fn is_base64(data: &[u8]) -> bool {
    if data.is_empty() || !data.len().is_multiple_of(4) {
        return false;
    }
    let body = data
        .strip_suffix(b"==")
        .or_else(|| data.strip_suffix(b"="))
        .unwrap_or(data);
    body.iter()
        .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// A mailbox hierarchy delimiter: `DQUOTE QUOTED-CHAR DQUOTE` in LIST and NAMESPACE.
///
/// Any character but CR, LF and NUL (RFC 9051 allows UTF-8); `"` and `\` are escaped on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Delimiter(char);

impl Delimiter {
    /// Validates a delimiter.
    pub fn new(c: char) -> Result<Self, ValidationError> {
        if matches!(c, '\r' | '\n' | '\0') {
            return Err(ValidationError::new("delimiter"));
        }
        Ok(Self(c))
    }

    /// The delimiter character.
    pub fn as_char(self) -> char {
        self.0
    }
}

/// Untagged response data (`response-data` other than status responses).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Data<'a> {
    /// `capability-data = "CAPABILITY" *(SP capability)`
    Capability(Vec<Capability<'a>>),
    /// `enable-data = "ENABLED" *(SP capability)` (RFC 5161)
    Enabled(Vec<Capability<'a>>),
    /// `"LIST" SP mailbox-list`
    List(MailboxList<'a>),
    /// `"LSUB" SP mailbox-list` (RFC 3501)
    Lsub(MailboxList<'a>),
    /// `"STATUS" SP mailbox SP "(" [status-att-list] ")"`
    Status {
        /// The mailbox.
        mailbox: Mailbox<'a>,
        /// Requested items, in server order.
        items: Vec<StatusValue<'a>>,
    },
    /// `"SEARCH" *(SP nz-number) [SP "(" "MODSEQ" SP mod-sequence-value ")"]` (RFC 3501, 7162)
    Search {
        /// Matching sequence numbers or UIDs.
        numbers: Vec<NonZeroU32>,
        /// Highest mod-sequence of the matches, when the search used MODSEQ (RFC 7162).
        mod_seq: Option<ModSeq>,
    },
    /// `esearch-response` (RFC 4731, RFC 9051)
    ESearch(ESearch<'a>),
    /// `"FLAGS" SP flag-list`
    Flags(Vec<Flag<'a>>),
    /// `number SP "EXISTS"`
    Exists(u32),
    /// `number SP "RECENT"` (RFC 3501)
    Recent(u32),
    /// `nz-number SP "EXPUNGE"`
    Expunge(NonZeroU32),
    /// `"VANISHED" [SP "(EARLIER)"] SP known-uids` (RFC 7162)
    Vanished {
        /// `(EARLIER)`: an answer to a FETCH/SELECT, not a fresh expunge.
        earlier: bool,
        /// The expunged UIDs.
        uids: SequenceSet,
    },
    /// `nz-number SP "FETCH" SP msg-att`
    Fetch {
        /// Message sequence number.
        seq: NonZeroU32,
        /// Data items, in server order.
        items: Vec<FetchItem<'a>>,
    },
    /// `namespace-response` (RFC 2342, RFC 9051); an empty list is `NIL`.
    Namespace {
        /// Personal namespaces.
        personal: Vec<NamespaceDescription<'a>>,
        /// Other users' namespaces.
        other: Vec<NamespaceDescription<'a>>,
        /// Shared namespaces.
        shared: Vec<NamespaceDescription<'a>>,
    },
    /// `id-response = "ID" SP id-params-list` (RFC 2971); `None` is `NIL`.
    Id(Option<Vec<(IString<'a>, NString<'a>)>>),
    /// `quota-response = "QUOTA" SP quota-root-name SP quota-list` (RFC 9208)
    Quota {
        /// The quota root.
        root: AString<'a>,
        /// Resources with usage and limit.
        resources: Vec<QuotaUsage<'a>>,
    },
    /// `metadata-resp = "METADATA" SP mailbox SP (entry-values / entry-list)` (RFC 5464);
    /// the empty mailbox name is the server's own metadata.
    Metadata {
        /// The mailbox.
        mailbox: Mailbox<'a>,
        /// Entries with values (answer to GETMETADATA) or names only (unsolicited change).
        entries: MetadataEntries<'a>,
    },
    /// `sort-data = "SORT" *(SP nz-number)` (RFC 5256)
    Sort(Vec<NonZeroU32>),
    /// `thread-data = "THREAD" [SP 1*thread-list]` (RFC 5256)
    Thread(Vec<Thread>),
    /// `quotaroot-response = "QUOTAROOT" SP mailbox *(SP quota-root-name)` (RFC 9208)
    QuotaRoot {
        /// The mailbox asked about.
        mailbox: Mailbox<'a>,
        /// Its quota roots.
        roots: Vec<AString<'a>>,
    },
}

/// `mailbox-list = "(" [mbx-list-flags] ")" SP (DQUOTE QUOTED-CHAR DQUOTE / nil) SP mailbox
/// [SP mbox-list-extended]`
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MailboxList<'a> {
    /// Mailbox attributes (`\Noselect`, `\HasChildren`, SPECIAL-USE ...).
    pub attributes: Vec<MailboxAttribute<'a>>,
    /// Hierarchy delimiter; `None` is `NIL` (flat namespace).
    pub delimiter: Option<Delimiter>,
    /// The mailbox name.
    pub mailbox: Mailbox<'a>,
    /// LIST-EXTENDED data items (RFC 5258); empty means none were sent.
    pub extended: Vec<ListExtendedItem<'a>>,
}

/// `mbox-list-extended-item = mbox-list-extended-item-tag SP tagged-ext-val` (RFC 5258, 9051)
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ListExtendedItem<'a> {
    /// `"CHILDINFO" SP "(" list-select-base-opt-quoted *(SP ...) ")"`: why a non-matching parent
    /// is listed, e.g. `("SUBSCRIBED")`.
    ChildInfo(Vec<IString<'a>>),
    /// `"OLDNAME" SP "(" mailbox ")"`: the name before a RENAME.
    OldName(Mailbox<'a>),
    /// Any other item. A tag of `CHILDINFO` or `OLDNAME` (any case) with a value of their
    /// form re-parses as those variants; the parser only yields this variant for them when
    /// the value does not fit.
    Other {
        /// `mbox-list-extended-item-tag = astring`
        tag: AString<'a>,
        /// The value.
        value: TaggedExtValue<'a>,
    },
}

/// `tagged-ext-val = tagged-ext-simple / "(" [tagged-ext-comp] ")"` (RFC 4466)
///
/// `tagged-ext-simple = sequence-set / number / number64`: digits alone read as
/// [`TaggedExtValue::Number`], so a one-number sequence set is a `Number`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TaggedExtValue<'a> {
    /// A number.
    Number(u64),
    /// A sequence set that is more than one number (ranges, lists, `*`).
    SequenceSet(SequenceSet),
    /// A parenthesized, possibly empty, list.
    Comp(Vec<TaggedExtComp<'a>>),
}

/// `tagged-ext-comp = astring / tagged-ext-comp *(SP tagged-ext-comp) / "(" tagged-ext-comp ")"`
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TaggedExtComp<'a> {
    /// A string.
    AString(AString<'a>),
    /// A parenthesized list.
    List(Vec<TaggedExtComp<'a>>),
}

/// `status-att-val` (RFC 9051, 3501, 7162, 7889, 8474, 9208)
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StatusValue<'a> {
    /// `"MESSAGES" SP number`
    Messages(u32),
    /// `"UIDNEXT" SP nz-number`
    UidNext(NonZeroU32),
    /// `"UIDVALIDITY" SP nz-number`
    UidValidity(NonZeroU32),
    /// `"UNSEEN" SP number`
    Unseen(u32),
    /// `"DELETED" SP number` (RFC 9051)
    Deleted(u32),
    /// `"SIZE" SP number64` (RFC 8438, RFC 9051)
    Size(u64),
    /// `"RECENT" SP number` (RFC 3501)
    Recent(u32),
    /// `"HIGHESTMODSEQ" SP mod-sequence-valzer` (RFC 7162)
    HighestModSeq(u64),
    /// `"APPENDLIMIT" SP (number / nil)` (RFC 7889); `None` is `NIL` (no limit).
    AppendLimit(Option<u32>),
    /// `"MAILBOXID" SP "(" objectid ")"` (RFC 8474)
    MailboxId(ObjectId<'a>),
    /// `"DELETED-STORAGE" SP number64` (RFC 9208)
    DeletedStorage(u64),
}

/// `esearch-response = "ESEARCH" [search-correlator] [SP "UID"] *(SP search-return-data)`
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ESearch<'a> {
    /// `search-correlator = SP "(" "TAG" SP tag-string ")"`: the command's tag.
    pub tag: Option<Tag<'a>>,
    /// The numbers are UIDs.
    pub uid: bool,
    /// Returned data, in server order.
    pub items: Vec<ESearchItem<'a>>,
}

/// `search-return-data` (RFC 4731, 7162, 9051)
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ESearchItem<'a> {
    /// `"MIN" SP nz-number`
    Min(NonZeroU32),
    /// `"MAX" SP nz-number`
    Max(NonZeroU32),
    /// `"ALL" SP sequence-set`
    All(SequenceSet),
    /// `"COUNT" SP number`
    Count(u32),
    /// `"MODSEQ" SP mod-sequence-value` (RFC 7162)
    ModSeq(ModSeq),
    /// `search-ret-data-ext = search-modifier-name SP search-return-value`
    ///
    /// The name must not be `MIN`, `MAX`, `ALL`, `COUNT`, `MODSEQ` or `UID` (any case):
    /// the encoder writes it as given, and the parser would read those names as the
    /// variants above (or fail), so such a value does not round-trip.
    Other {
        /// `search-modifier-name = tagged-ext-label`, not one of the names above.
        name: TaggedLabel<'a>,
        /// `search-return-value = tagged-ext-val`
        value: TaggedExtValue<'a>,
    },
}

/// `tagged-ext-label = tagged-label-fchar *tagged-label-char` (RFC 4466)
///
/// ```text
/// tagged-label-fchar = ALPHA / "-" / "_" / "."
/// tagged-label-char  = tagged-label-fchar / DIGIT / ":"
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TaggedLabel<'a>(Cow<'a, [u8]>);

impl<'a> TaggedLabel<'a> {
    /// Validates a label.
    pub fn new(label: impl Into<Cow<'a, [u8]>>) -> Result<Self, ValidationError> {
        let label = label.into();
        if is_tagged_label(&label) {
            Ok(Self(label))
        } else {
            Err(ValidationError::new("tagged-ext-label"))
        }
    }

    /// The label's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Copies the borrowed bytes.
    pub fn into_owned(self) -> TaggedLabel<'static> {
        TaggedLabel(Cow::Owned(self.0.into_owned()))
    }
}

pub(crate) fn is_tagged_label(label: &[u8]) -> bool {
    let fchar = |b: u8| b.is_ascii_alphabetic() || matches!(b, b'-' | b'_' | b'.');
    match label.split_first() {
        Some((&first, rest)) => {
            fchar(first)
                && rest
                    .iter()
                    .all(|&b| fchar(b) || b.is_ascii_digit() || b == b':')
        }
        None => false,
    }
}

/// `namespace-descr = "(" string SP (DQUOTE QUOTED-CHAR DQUOTE / nil)
/// [namespace-response-extensions] ")"`
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NamespaceDescription<'a> {
    /// The prefix, e.g. `""` or `"Other Users/"`.
    pub prefix: IString<'a>,
    /// Hierarchy delimiter; `None` is `NIL`.
    pub delimiter: Option<Delimiter>,
    /// `namespace-response-extension = SP string SP "(" string *(SP string) ")"`
    pub extensions: Vec<(IString<'a>, Vec<IString<'a>>)>,
}

/// The entries of a METADATA response (RFC 5464 §4.4).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MetadataEntries<'a> {
    /// `entry-values = "(" entry-value *(SP entry-value) ")"`, `entry-value = entry SP value`,
    /// `value = nstring / literal8`: entry names with their values (`NIL` removes one).
    Values(Vec<(AString<'a>, NString<'a>)>),
    /// `entry-list = entry *(SP entry)`: names of entries that changed.
    Names(Vec<AString<'a>>),
}

impl MetadataEntries<'_> {
    /// Copies every borrowed field.
    pub fn into_owned(self) -> MetadataEntries<'static> {
        match self {
            Self::Values(v) => MetadataEntries::Values(
                v.into_iter()
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect(),
            ),
            Self::Names(v) => {
                MetadataEntries::Names(v.into_iter().map(AString::into_owned).collect())
            }
        }
    }
}

/// One `thread-list` of a THREAD response (RFC 5256 §4).
///
/// ```text
/// thread-list     = "(" (thread-members / thread-nested) ")"
/// thread-members  = nz-number *(SP nz-number) [SP thread-nested]
/// thread-nested   = 2*thread-list
/// ```
///
/// A thread is a chain of messages, each the parent of the next, that may end in two or more
/// branches. `(3 6 (4 23)(44 7 96))` is `members: [3, 6]` with two branches, `[4, 23]` and
/// `[44, 7, 96]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Thread {
    /// The chain of messages; empty for a thread that starts with branches (`((1)(2))`).
    pub members: Vec<NonZeroU32>,
    /// The sub-threads following the chain: two or more per RFC 5256, or none. The parser
    /// also accepts a single one (some servers send `(1 (2))`) and keeps it as sent.
    pub branches: Vec<Thread>,
}

/// A Gmail label in `X-GM-LABELS`: a system label (`\Inbox`, `\Important` ...) or a user
/// label (an astring).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GmailLabel<'a> {
    /// `"\" atom`
    System(Atom<'a>),
    /// `astring`
    Name(AString<'a>),
}

impl GmailLabel<'_> {
    /// Copies every borrowed field.
    pub fn into_owned(self) -> GmailLabel<'static> {
        match self {
            Self::System(a) => GmailLabel::System(a.into_owned()),
            Self::Name(a) => GmailLabel::Name(a.into_owned()),
        }
    }
}

/// `quota-resource = resource-name SP resource-usage SP resource-limit` (RFC 9208)
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct QuotaUsage<'a> {
    /// `resource-name = atom`, e.g. `STORAGE`, `MESSAGE`.
    pub resource: QuotaResource<'a>,
    /// `resource-usage = number64`
    pub usage: u64,
    /// `resource-limit = number64`
    pub limit: u64,
}

/// One `msg-att` item of a FETCH response (RFC 9051 §7.5.2, RFC 3501 §7.4.2, RFC 7162, 8474).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FetchItem<'a> {
    /// `"FLAGS" SP "(" [flag-fetch *(SP flag-fetch)] ")"`
    Flags(Vec<FlagFetch<'a>>),
    /// `"INTERNALDATE" SP date-time`
    InternalDate(DateTime),
    /// `"RFC822.SIZE" SP number64`
    Rfc822Size(u64),
    /// `"ENVELOPE" SP envelope`
    Envelope(Box<Envelope<'a>>),
    /// `"BODY" SP body`: structure without extension data.
    Body(Box<BodyStructure<'a>>),
    /// `"BODYSTRUCTURE" SP body`: structure with extension data.
    BodyStructure(Box<BodyStructure<'a>>),
    /// `"BODY" section ["<" number ">"] SP nstring`
    BodySection {
        /// The section (`BODY[]` is the default section).
        section: Section<'a>,
        /// Start offset of a partial fetch.
        origin: Option<u32>,
        /// The data (often a literal, borrowed from the message).
        data: NString<'a>,
    },
    /// `"RFC822" SP nstring` (RFC 3501)
    Rfc822(NString<'a>),
    /// `"RFC822.HEADER" SP nstring` (RFC 3501)
    Rfc822Header(NString<'a>),
    /// `"RFC822.TEXT" SP nstring` (RFC 3501)
    Rfc822Text(NString<'a>),
    /// `"BINARY" section-binary SP (nstring / literal8)` (RFC 3516, 9051)
    Binary {
        /// `section-binary = "[" [section-part] "]"`: part numbers, empty for the whole message.
        section: Vec<NonZeroU32>,
        /// The decoded data; a literal8 (`~{n}`) when it holds NUL.
        data: NString<'a>,
    },
    /// `"BINARY.SIZE" section-binary SP number` (RFC 3516, 9051)
    BinarySize {
        /// Part numbers, empty for the whole message.
        section: Vec<NonZeroU32>,
        /// Decoded size.
        size: u32,
    },
    /// `"UID" SP uniqueid`
    Uid(NonZeroU32),
    /// `"MODSEQ" SP "(" permsg-modsequence ")"` (RFC 7162)
    ModSeq(ModSeq),
    /// `"EMAILID" SP "(" objectid ")"` (RFC 8474)
    EmailId(ObjectId<'a>),
    /// `"THREADID" SP ("(" objectid ")" / nil)` (RFC 8474)
    ThreadId(Option<ObjectId<'a>>),
    /// `"X-GM-MSGID" SP number64`: Gmail's message id.
    GmailMessageId(u64),
    /// `"X-GM-THRID" SP number64`: Gmail's thread id.
    GmailThreadId(u64),
    /// `"X-GM-LABELS" SP "(" [label *(SP label)] ")"`: Gmail's labels.
    GmailLabels(Vec<GmailLabel<'a>>),
}

fn owned_caps(caps: Vec<Capability<'_>>) -> Vec<Capability<'static>> {
    caps.into_iter().map(Capability::into_owned).collect()
}

impl Data<'_> {
    /// Copies every borrowed field so the value outlives the message.
    pub fn into_owned(self) -> Data<'static> {
        match self {
            Self::Capability(c) => Data::Capability(owned_caps(c)),
            Self::Enabled(c) => Data::Enabled(owned_caps(c)),
            Self::List(l) => Data::List(l.into_owned()),
            Self::Lsub(l) => Data::Lsub(l.into_owned()),
            Self::Status { mailbox, items } => Data::Status {
                mailbox: mailbox.into_owned(),
                items: items.into_iter().map(StatusValue::into_owned).collect(),
            },
            Self::Search { numbers, mod_seq } => Data::Search { numbers, mod_seq },
            Self::ESearch(e) => Data::ESearch(e.into_owned()),
            Self::Flags(f) => Data::Flags(f.into_iter().map(Flag::into_owned).collect()),
            Self::Exists(n) => Data::Exists(n),
            Self::Recent(n) => Data::Recent(n),
            Self::Expunge(n) => Data::Expunge(n),
            Self::Vanished { earlier, uids } => Data::Vanished { earlier, uids },
            Self::Fetch { seq, items } => Data::Fetch {
                seq,
                items: items.into_iter().map(FetchItem::into_owned).collect(),
            },
            Self::Namespace {
                personal,
                other,
                shared,
            } => {
                let owned = |l: Vec<NamespaceDescription<'_>>| {
                    l.into_iter()
                        .map(NamespaceDescription::into_owned)
                        .collect()
                };
                Data::Namespace {
                    personal: owned(personal),
                    other: owned(other),
                    shared: owned(shared),
                }
            }
            Self::Id(params) => Data::Id(params.map(|p| {
                p.into_iter()
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })),
            Self::Quota { root, resources } => Data::Quota {
                root: root.into_owned(),
                resources: resources.into_iter().map(QuotaUsage::into_owned).collect(),
            },
            Self::Metadata { mailbox, entries } => Data::Metadata {
                mailbox: mailbox.into_owned(),
                entries: entries.into_owned(),
            },
            Self::Sort(n) => Data::Sort(n),
            Self::Thread(t) => Data::Thread(t),
            Self::QuotaRoot { mailbox, roots } => Data::QuotaRoot {
                mailbox: mailbox.into_owned(),
                roots: roots.into_iter().map(AString::into_owned).collect(),
            },
        }
    }
}

impl MailboxList<'_> {
    /// Copies every borrowed field.
    pub fn into_owned(self) -> MailboxList<'static> {
        MailboxList {
            attributes: self
                .attributes
                .into_iter()
                .map(MailboxAttribute::into_owned)
                .collect(),
            delimiter: self.delimiter,
            mailbox: self.mailbox.into_owned(),
            extended: self
                .extended
                .into_iter()
                .map(ListExtendedItem::into_owned)
                .collect(),
        }
    }
}

impl ListExtendedItem<'_> {
    /// Copies every borrowed field.
    pub fn into_owned(self) -> ListExtendedItem<'static> {
        match self {
            Self::ChildInfo(v) => {
                ListExtendedItem::ChildInfo(v.into_iter().map(IString::into_owned).collect())
            }
            Self::OldName(m) => ListExtendedItem::OldName(m.into_owned()),
            Self::Other { tag, value } => ListExtendedItem::Other {
                tag: tag.into_owned(),
                value: value.into_owned(),
            },
        }
    }
}

impl TaggedExtValue<'_> {
    /// Copies every borrowed field.
    pub fn into_owned(self) -> TaggedExtValue<'static> {
        match self {
            Self::Number(n) => TaggedExtValue::Number(n),
            Self::SequenceSet(s) => TaggedExtValue::SequenceSet(s),
            Self::Comp(v) => {
                TaggedExtValue::Comp(v.into_iter().map(TaggedExtComp::into_owned).collect())
            }
        }
    }
}

impl TaggedExtComp<'_> {
    /// Copies every borrowed field.
    pub fn into_owned(self) -> TaggedExtComp<'static> {
        match self {
            Self::AString(s) => TaggedExtComp::AString(s.into_owned()),
            Self::List(v) => {
                TaggedExtComp::List(v.into_iter().map(TaggedExtComp::into_owned).collect())
            }
        }
    }
}

impl StatusValue<'_> {
    /// Copies every borrowed field.
    pub fn into_owned(self) -> StatusValue<'static> {
        match self {
            Self::Messages(n) => StatusValue::Messages(n),
            Self::UidNext(n) => StatusValue::UidNext(n),
            Self::UidValidity(n) => StatusValue::UidValidity(n),
            Self::Unseen(n) => StatusValue::Unseen(n),
            Self::Deleted(n) => StatusValue::Deleted(n),
            Self::Size(n) => StatusValue::Size(n),
            Self::Recent(n) => StatusValue::Recent(n),
            Self::HighestModSeq(n) => StatusValue::HighestModSeq(n),
            Self::AppendLimit(n) => StatusValue::AppendLimit(n),
            Self::MailboxId(id) => StatusValue::MailboxId(id.into_owned()),
            Self::DeletedStorage(n) => StatusValue::DeletedStorage(n),
        }
    }
}

impl ESearch<'_> {
    /// Copies every borrowed field.
    pub fn into_owned(self) -> ESearch<'static> {
        ESearch {
            tag: self.tag.map(Tag::into_owned),
            uid: self.uid,
            items: self
                .items
                .into_iter()
                .map(ESearchItem::into_owned)
                .collect(),
        }
    }
}

impl ESearchItem<'_> {
    /// Copies every borrowed field.
    pub fn into_owned(self) -> ESearchItem<'static> {
        match self {
            Self::Min(n) => ESearchItem::Min(n),
            Self::Max(n) => ESearchItem::Max(n),
            Self::All(s) => ESearchItem::All(s),
            Self::Count(n) => ESearchItem::Count(n),
            Self::ModSeq(m) => ESearchItem::ModSeq(m),
            Self::Other { name, value } => ESearchItem::Other {
                name: name.into_owned(),
                value: value.into_owned(),
            },
        }
    }
}

impl NamespaceDescription<'_> {
    /// Copies every borrowed field.
    pub fn into_owned(self) -> NamespaceDescription<'static> {
        NamespaceDescription {
            prefix: self.prefix.into_owned(),
            delimiter: self.delimiter,
            extensions: self
                .extensions
                .into_iter()
                .map(|(k, v)| {
                    (
                        k.into_owned(),
                        v.into_iter().map(IString::into_owned).collect(),
                    )
                })
                .collect(),
        }
    }
}

impl QuotaUsage<'_> {
    /// Copies every borrowed field.
    pub fn into_owned(self) -> QuotaUsage<'static> {
        QuotaUsage {
            resource: self.resource.into_owned(),
            usage: self.usage,
            limit: self.limit,
        }
    }
}

impl FetchItem<'_> {
    /// Copies every borrowed field.
    pub fn into_owned(self) -> FetchItem<'static> {
        match self {
            Self::Flags(f) => FetchItem::Flags(f.into_iter().map(FlagFetch::into_owned).collect()),
            Self::InternalDate(d) => FetchItem::InternalDate(d),
            Self::Rfc822Size(n) => FetchItem::Rfc822Size(n),
            Self::Envelope(e) => FetchItem::Envelope(Box::new(e.into_owned())),
            Self::Body(b) => FetchItem::Body(Box::new(b.into_owned())),
            Self::BodyStructure(b) => FetchItem::BodyStructure(Box::new(b.into_owned())),
            Self::BodySection {
                section,
                origin,
                data,
            } => FetchItem::BodySection {
                section: section.into_owned(),
                origin,
                data: data.into_owned(),
            },
            Self::Rfc822(d) => FetchItem::Rfc822(d.into_owned()),
            Self::Rfc822Header(d) => FetchItem::Rfc822Header(d.into_owned()),
            Self::Rfc822Text(d) => FetchItem::Rfc822Text(d.into_owned()),
            Self::Binary { section, data } => FetchItem::Binary {
                section,
                data: data.into_owned(),
            },
            Self::BinarySize { section, size } => FetchItem::BinarySize { section, size },
            Self::Uid(n) => FetchItem::Uid(n),
            Self::ModSeq(m) => FetchItem::ModSeq(m),
            Self::EmailId(id) => FetchItem::EmailId(id.into_owned()),
            Self::ThreadId(id) => FetchItem::ThreadId(id.map(ObjectId::into_owned)),
            Self::GmailMessageId(n) => FetchItem::GmailMessageId(n),
            Self::GmailThreadId(n) => FetchItem::GmailThreadId(n),
            Self::GmailLabels(l) => {
                FetchItem::GmailLabels(l.into_iter().map(GmailLabel::into_owned).collect())
            }
        }
    }
}

/// Round-trip invariant shared by the proptests and the `imap_response_roundtrip` fuzz
/// target. Panics when broken; returns normally otherwise (also for unparsable input).
///
/// If `data` parses as a response (with default options, and again with UTF8=ACCEPT):
/// encoding it and parsing the encoding gives the same value; that encoding is stable
/// (encoding the re-parsed value gives the same bytes); the owned copy equals the borrowed
/// value; the fragments concatenate to the bytes; and an encoding with every literal made
/// synchronizing (what a server sends) parses too.
#[doc(hidden)]
pub fn response_roundtrip(data: &[u8]) {
    use crate::encode::{Encode, Encoder, Fragment, LiteralPolicy, to_bytes};

    for options in [
        ParseOptions::default(),
        ParseOptions::default().with_utf8_accept(true),
    ] {
        let Ok(parsed) = parse_response_with(data, &options) else {
            continue;
        };
        let encoded = to_bytes(&parsed);
        let again = match parse_response_with(&encoded, &options) {
            Ok(again) => again,
            Err(e) => panic!(
                "re-parse of {:?} failed: {e}",
                String::from_utf8_lossy(&encoded)
            ),
        };
        assert_eq!(
            again,
            parsed,
            "re-parse of {:?}",
            String::from_utf8_lossy(&encoded)
        );
        assert_eq!(to_bytes(&again), encoded, "encoding not stable");
        assert_eq!(parsed.clone().into_owned(), parsed);

        let mut out = Encoder::new();
        parsed.encode(&mut out);
        let joined: Vec<u8> = out
            .into_fragments()
            .into_iter()
            .flat_map(|f| match f {
                Fragment::Line(l) => l,
                Fragment::Literal { data, .. } => data,
            })
            .collect();
        assert_eq!(joined, encoded, "fragments differ from bytes");

        let mut out = Encoder::with_policy(LiteralPolicy::Sync);
        parsed.encode(&mut out);
        let sync = out.into_bytes();
        if let Err(e) = parse_response_with(&sync, &options) {
            panic!(
                "sync encoding {:?} failed: {e}",
                String::from_utf8_lossy(&sync)
            );
        }
    }
}
