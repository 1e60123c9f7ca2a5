//! Response codes: the bracketed `[CODE ...]` at the start of a status response's text.
//!
//! Covers every code of RFC 3501 §7.1, RFC 9051 §7.1 and RFC 5530, plus UIDPLUS (RFC 4315),
//! CONDSTORE/QRESYNC (RFC 7162), CATENATE's `TOOBIG` (RFC 4469), COMPRESS (RFC 4978),
//! SPECIAL-USE's `USEATTR` (RFC 6154), METADATA (RFC 5464), OBJECTID's `MAILBOXID`
//! (RFC 8474) and `REFERRAL` (RFC 2221). Anything else is kept as [`ResponseCode::Other`].

use std::borrow::Cow;
use std::num::NonZeroU32;

use crate::encode::{Encode, Encoder, paren_list};
use crate::error::{ParseErrorKind, ValidationError};
use crate::parse::byte;
use crate::parse::{
    PResult, capability, charset, flag_perm, mod_sequence_value, number, nz_number, sequence_set,
    sp,
};
use crate::response::helpers::fail;
use crate::types::{Capability, Charset, FlagPerm, ModSeq, SequenceSet};

/// `resp-text-code` (RFC 9051 §9 and the extensions listed in the module docs).
///
/// ```text
/// resp-text-code   = "ALERT" /
///                    "BADCHARSET" [SP "(" charset *(SP charset) ")" ] /
///                    capability-data / "PARSE" /
///                    "PERMANENTFLAGS" SP "(" [flag-perm *(SP flag-perm)] ")" /
///                    "READ-ONLY" / "READ-WRITE" / "TRYCREATE" /
///                    "UIDNEXT" SP nz-number / "UIDVALIDITY" SP nz-number /
///                    resp-code-apnd / resp-code-copy / "UIDNOTSTICKY" /
///                    "UNAVAILABLE" / "AUTHENTICATIONFAILED" / ... /
///                    atom [SP 1*<any TEXT-CHAR except "]">]
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResponseCode<'a> {
    /// `ALERT`: the text must be shown to the user.
    Alert,
    /// `BADCHARSET`: SEARCH charset not supported; lists the supported ones (may be empty).
    BadCharset(Vec<Charset<'a>>),
    /// `CAPABILITY`: capabilities, saving a separate CAPABILITY command.
    Capability(Vec<Capability<'a>>),
    /// `PARSE`: a message's headers or MIME structure could not be parsed.
    Parse,
    /// `PERMANENTFLAGS`: flags the client can change permanently.
    PermanentFlags(Vec<FlagPerm<'a>>),
    /// `READ-ONLY`: the mailbox is selected read-only.
    ReadOnly,
    /// `READ-WRITE`: the mailbox is selected read-write.
    ReadWrite,
    /// `TRYCREATE`: the target mailbox does not exist but could be created.
    TryCreate,
    /// `UIDNEXT`: the next UID.
    UidNext(NonZeroU32),
    /// `UIDVALIDITY`: the UID validity value.
    UidValidity(NonZeroU32),
    /// `UNSEEN`: the first unseen message's sequence number (RFC 3501 only).
    Unseen(NonZeroU32),
    /// `APPENDUID` (RFC 4315, RFC 9051): UIDVALIDITY and the appended message's UID(s).
    ///
    /// A set of UIDs only after MULTIAPPEND; the parser also accepts `*` although RFC 4315's
    /// `uid-set` has none, so that every parsed value re-encodes unchanged.
    AppendUid {
        /// UIDVALIDITY of the target mailbox.
        uid_validity: NonZeroU32,
        /// UID(s) assigned.
        uids: SequenceSet,
    },
    /// `COPYUID` (RFC 4315, RFC 9051): source UIDs and the UIDs they got in the target.
    CopyUid {
        /// UIDVALIDITY of the target mailbox.
        uid_validity: NonZeroU32,
        /// UIDs of the source messages.
        source: SequenceSet,
        /// UIDs in the target mailbox, in the same order.
        destination: SequenceSet,
    },
    /// `UIDNOTSTICKY` (RFC 4315): the mailbox does not keep UIDs.
    UidNotSticky,
    /// `UNAVAILABLE` (RFC 5530): temporary failure of a subsystem.
    Unavailable,
    /// `AUTHENTICATIONFAILED` (RFC 5530).
    AuthenticationFailed,
    /// `AUTHORIZATIONFAILED` (RFC 5530).
    AuthorizationFailed,
    /// `EXPIRED` (RFC 5530): credentials or account expired.
    Expired,
    /// `PRIVACYREQUIRED` (RFC 5530): needs TLS or similar.
    PrivacyRequired,
    /// `CONTACTADMIN` (RFC 5530).
    ContactAdmin,
    /// `NOPERM` (RFC 5530): access control forbids it.
    NoPerm,
    /// `INUSE` (RFC 5530): someone else is using the resource.
    InUse,
    /// `EXPUNGEISSUED` (RFC 5530): some messages were expunged meanwhile.
    ExpungeIssued,
    /// `CORRUPTION` (RFC 5530).
    Corruption,
    /// `SERVERBUG` (RFC 5530).
    ServerBug,
    /// `CLIENTBUG` (RFC 5530).
    ClientBug,
    /// `CANNOT` (RFC 5530): the operation violates an invariant.
    Cannot,
    /// `LIMIT` (RFC 5530): a soft limit was hit.
    Limit,
    /// `OVERQUOTA` (RFC 5530).
    OverQuota,
    /// `ALREADYEXISTS` (RFC 5530).
    AlreadyExists,
    /// `NONEXISTENT` (RFC 5530).
    NonExistent,
    /// `CLOSED` (RFC 7162, RFC 9051): the previous mailbox is now closed.
    Closed,
    /// `NOTSAVED` (RFC 9051): a SEARCHRES result was not saved.
    NotSaved,
    /// `HASCHILDREN` (RFC 9051): DELETE refused because of child mailboxes.
    HasChildren,
    /// `UNKNOWN-CTE` (RFC 3516, RFC 9051): cannot decode the Content-Transfer-Encoding.
    UnknownCte,
    /// `HIGHESTMODSEQ` (RFC 7162): the mailbox's highest mod-sequence.
    HighestModSeq(ModSeq),
    /// `NOMODSEQ` (RFC 7162): the mailbox has no persistent mod-sequences.
    NoModSeq,
    /// `MODIFIED` (RFC 7162): messages that failed the UNCHANGEDSINCE test.
    Modified(SequenceSet),
    /// `TOOBIG` (RFC 4469, RFC 7889): a message or literal is too big.
    TooBig,
    /// `COMPRESSIONACTIVE` (RFC 4978).
    CompressionActive,
    /// `USEATTR` (RFC 6154): the special-use attribute is not usable.
    UseAttr,
    /// `METADATA` (RFC 5464).
    Metadata(MetadataCode),
    /// `MAILBOXID` (RFC 8474): `"MAILBOXID" SP "(" objectid ")"`.
    MailboxId(ObjectId<'a>),
    /// `REFERRAL` (RFC 2221): an IMAP URL the client should try instead.
    Referral(CodeText<'a>),
    /// Any other code: `atom [SP 1*<any TEXT-CHAR except "]">]`.
    Other(OtherCode<'a>),
}

/// The argument of a `METADATA` response code (RFC 5464 §4.2.1, §4.3).
///
/// ```text
/// "METADATA" SP ("LONGENTRIES" SP number / "MAXSIZE" SP number / "TOOMANY" / "NOPRIVATE")
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetadataCode {
    /// `LONGENTRIES n`: entries longer than the client's MAXSIZE were skipped.
    LongEntries(u32),
    /// `MAXSIZE n`: the largest value the server accepts.
    MaxSize(u32),
    /// `TOOMANY`: too many annotations.
    TooMany,
    /// `NOPRIVATE`: private annotations are not supported.
    NoPrivate,
}

/// `objectid = 1*255(ALPHA / DIGIT / "_" / "-")` (RFC 8474).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectId<'a>(Cow<'a, [u8]>);

impl<'a> ObjectId<'a> {
    /// Validates an object id: 1 to 255 of `A-Z a-z 0-9 _ -`.
    pub fn new(id: impl Into<Cow<'a, [u8]>>) -> Result<Self, ValidationError> {
        let id = id.into();
        let ok = (1..=255).contains(&id.len())
            && id
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
        if ok {
            Ok(Self(id))
        } else {
            Err(ValidationError::new("object id"))
        }
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Copies the borrowed bytes.
    pub fn into_owned(self) -> ObjectId<'static> {
        ObjectId(Cow::Owned(self.0.into_owned()))
    }
}

/// `1*<any TEXT-CHAR except "]">`: the free text after an unknown (or `REFERRAL`) code.
///
/// Never empty, never holds CR, LF, NUL or `]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CodeText<'a>(Cow<'a, [u8]>);

impl<'a> CodeText<'a> {
    /// Validates code text: non-empty, no CR, LF, NUL or `]`.
    pub fn new(text: impl Into<Cow<'a, [u8]>>) -> Result<Self, ValidationError> {
        let text = text.into();
        let ok = !text.is_empty() && text.iter().all(|&b| is_code_text_char(b));
        if ok {
            Ok(Self(text))
        } else {
            Err(ValidationError::new("response code text"))
        }
    }

    /// The text's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Copies the borrowed bytes.
    pub fn into_owned(self) -> CodeText<'static> {
        CodeText(Cow::Owned(self.0.into_owned()))
    }
}

fn is_code_text_char(b: u8) -> bool {
    !matches!(b, b'\r' | b'\n' | 0 | b']')
}

/// A response code this crate has no variant for: `atom [SP 1*<any TEXT-CHAR except "]">]`.
///
/// The name is an atom that is not one of the codes with their own variant (otherwise it would
/// parse back as that variant), stored as sent (case kept).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OtherCode<'a> {
    name: Cow<'a, [u8]>,
    text: Option<CodeText<'a>>,
}

impl<'a> OtherCode<'a> {
    /// Validates an unknown code: `name` must be an atom without `]` and not a known code name.
    pub fn new(
        name: impl Into<Cow<'a, [u8]>>,
        text: Option<CodeText<'a>>,
    ) -> Result<Self, ValidationError> {
        let name = name.into();
        let ok = !name.is_empty()
            && name.iter().all(|&b| is_code_atom_char(b))
            && known_code(&name).is_none();
        if ok {
            Ok(Self { name, text })
        } else {
            Err(ValidationError::new("response code name"))
        }
    }

    /// The code's name as sent.
    pub fn name(&self) -> &[u8] {
        &self.name
    }

    /// The text after the name, if any.
    pub fn text(&self) -> Option<&CodeText<'a>> {
        self.text.as_ref()
    }

    /// Copies the borrowed bytes.
    pub fn into_owned(self) -> OtherCode<'static> {
        OtherCode {
            name: Cow::Owned(self.name.into_owned()),
            text: self.text.map(CodeText::into_owned),
        }
    }
}

/// `ATOM-CHAR` minus `]` (`resp-specials`), which would end the code early.
fn is_code_atom_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// Code names with their own variant, so that [`OtherCode`] cannot shadow them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Known {
    Alert,
    BadCharset,
    Capability,
    Parse,
    PermanentFlags,
    ReadOnly,
    ReadWrite,
    TryCreate,
    UidNext,
    UidValidity,
    Unseen,
    AppendUid,
    CopyUid,
    UidNotSticky,
    Unavailable,
    AuthenticationFailed,
    AuthorizationFailed,
    Expired,
    PrivacyRequired,
    ContactAdmin,
    NoPerm,
    InUse,
    ExpungeIssued,
    Corruption,
    ServerBug,
    ClientBug,
    Cannot,
    Limit,
    OverQuota,
    AlreadyExists,
    NonExistent,
    Closed,
    NotSaved,
    HasChildren,
    UnknownCte,
    HighestModSeq,
    NoModSeq,
    Modified,
    TooBig,
    CompressionActive,
    UseAttr,
    Metadata,
    MailboxId,
    Referral,
}

const KNOWN: &[(&[u8], Known)] = &[
    (b"ALERT", Known::Alert),
    (b"BADCHARSET", Known::BadCharset),
    (b"CAPABILITY", Known::Capability),
    (b"PARSE", Known::Parse),
    (b"PERMANENTFLAGS", Known::PermanentFlags),
    (b"READ-ONLY", Known::ReadOnly),
    (b"READ-WRITE", Known::ReadWrite),
    (b"TRYCREATE", Known::TryCreate),
    (b"UIDNEXT", Known::UidNext),
    (b"UIDVALIDITY", Known::UidValidity),
    (b"UNSEEN", Known::Unseen),
    (b"APPENDUID", Known::AppendUid),
    (b"COPYUID", Known::CopyUid),
    (b"UIDNOTSTICKY", Known::UidNotSticky),
    (b"UNAVAILABLE", Known::Unavailable),
    (b"AUTHENTICATIONFAILED", Known::AuthenticationFailed),
    (b"AUTHORIZATIONFAILED", Known::AuthorizationFailed),
    (b"EXPIRED", Known::Expired),
    (b"PRIVACYREQUIRED", Known::PrivacyRequired),
    (b"CONTACTADMIN", Known::ContactAdmin),
    (b"NOPERM", Known::NoPerm),
    (b"INUSE", Known::InUse),
    (b"EXPUNGEISSUED", Known::ExpungeIssued),
    (b"CORRUPTION", Known::Corruption),
    (b"SERVERBUG", Known::ServerBug),
    (b"CLIENTBUG", Known::ClientBug),
    (b"CANNOT", Known::Cannot),
    (b"LIMIT", Known::Limit),
    (b"OVERQUOTA", Known::OverQuota),
    (b"ALREADYEXISTS", Known::AlreadyExists),
    (b"NONEXISTENT", Known::NonExistent),
    (b"CLOSED", Known::Closed),
    (b"NOTSAVED", Known::NotSaved),
    (b"HASCHILDREN", Known::HasChildren),
    (b"UNKNOWN-CTE", Known::UnknownCte),
    (b"HIGHESTMODSEQ", Known::HighestModSeq),
    (b"NOMODSEQ", Known::NoModSeq),
    (b"MODIFIED", Known::Modified),
    (b"TOOBIG", Known::TooBig),
    (b"COMPRESSIONACTIVE", Known::CompressionActive),
    (b"USEATTR", Known::UseAttr),
    (b"METADATA", Known::Metadata),
    (b"MAILBOXID", Known::MailboxId),
    (b"REFERRAL", Known::Referral),
];

fn known_code(name: &[u8]) -> Option<Known> {
    KNOWN
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|&(_, v)| v)
}

impl ResponseCode<'_> {
    /// Copies every borrowed field.
    pub fn into_owned(self) -> ResponseCode<'static> {
        use ResponseCode as R;
        match self {
            Self::Alert => R::Alert,
            Self::BadCharset(c) => R::BadCharset(c.into_iter().map(Charset::into_owned).collect()),
            Self::Capability(c) => {
                R::Capability(c.into_iter().map(Capability::into_owned).collect())
            }
            Self::Parse => R::Parse,
            Self::PermanentFlags(f) => {
                R::PermanentFlags(f.into_iter().map(FlagPerm::into_owned).collect())
            }
            Self::ReadOnly => R::ReadOnly,
            Self::ReadWrite => R::ReadWrite,
            Self::TryCreate => R::TryCreate,
            Self::UidNext(n) => R::UidNext(n),
            Self::UidValidity(n) => R::UidValidity(n),
            Self::Unseen(n) => R::Unseen(n),
            Self::AppendUid { uid_validity, uids } => R::AppendUid { uid_validity, uids },
            Self::CopyUid {
                uid_validity,
                source,
                destination,
            } => R::CopyUid {
                uid_validity,
                source,
                destination,
            },
            Self::UidNotSticky => R::UidNotSticky,
            Self::Unavailable => R::Unavailable,
            Self::AuthenticationFailed => R::AuthenticationFailed,
            Self::AuthorizationFailed => R::AuthorizationFailed,
            Self::Expired => R::Expired,
            Self::PrivacyRequired => R::PrivacyRequired,
            Self::ContactAdmin => R::ContactAdmin,
            Self::NoPerm => R::NoPerm,
            Self::InUse => R::InUse,
            Self::ExpungeIssued => R::ExpungeIssued,
            Self::Corruption => R::Corruption,
            Self::ServerBug => R::ServerBug,
            Self::ClientBug => R::ClientBug,
            Self::Cannot => R::Cannot,
            Self::Limit => R::Limit,
            Self::OverQuota => R::OverQuota,
            Self::AlreadyExists => R::AlreadyExists,
            Self::NonExistent => R::NonExistent,
            Self::Closed => R::Closed,
            Self::NotSaved => R::NotSaved,
            Self::HasChildren => R::HasChildren,
            Self::UnknownCte => R::UnknownCte,
            Self::HighestModSeq(m) => R::HighestModSeq(m),
            Self::NoModSeq => R::NoModSeq,
            Self::Modified(s) => R::Modified(s),
            Self::TooBig => R::TooBig,
            Self::CompressionActive => R::CompressionActive,
            Self::UseAttr => R::UseAttr,
            Self::Metadata(m) => R::Metadata(m),
            Self::MailboxId(id) => R::MailboxId(id.into_owned()),
            Self::Referral(t) => R::Referral(t.into_owned()),
            Self::Other(o) => R::Other(o.into_owned()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------------

/// `resp-text-code` (see [`ResponseCode`]), from just after `[` up to (not including) `]`.
pub(crate) fn resp_text_code(input: &[u8]) -> PResult<'_, ResponseCode<'_>> {
    let end = input
        .iter()
        .position(|&b| !is_code_atom_char(b))
        .unwrap_or(input.len());
    let name = &input[..end];
    let rest = &input[end..];
    let Some(known) = known_code(name) else {
        if name.is_empty() {
            return fail(input, ParseErrorKind::Syntax);
        }
        // atom [SP 1*<any TEXT-CHAR except "]">]
        let (rest, text) = match rest {
            [b' ', after @ ..] => {
                let (r, t) = code_text(after)?;
                (r, Some(t))
            }
            _ => (rest, None),
        };
        let code = OtherCode {
            name: Cow::Borrowed(name),
            text,
        };
        return Ok((rest, ResponseCode::Other(code)));
    };
    use ResponseCode as R;
    let simple = |code| Ok((rest, code));
    match known {
        Known::Alert => simple(R::Alert),
        Known::Parse => simple(R::Parse),
        Known::ReadOnly => simple(R::ReadOnly),
        Known::ReadWrite => simple(R::ReadWrite),
        Known::TryCreate => simple(R::TryCreate),
        Known::UidNotSticky => simple(R::UidNotSticky),
        Known::Unavailable => simple(R::Unavailable),
        Known::AuthenticationFailed => simple(R::AuthenticationFailed),
        Known::AuthorizationFailed => simple(R::AuthorizationFailed),
        Known::Expired => simple(R::Expired),
        Known::PrivacyRequired => simple(R::PrivacyRequired),
        Known::ContactAdmin => simple(R::ContactAdmin),
        Known::NoPerm => simple(R::NoPerm),
        Known::InUse => simple(R::InUse),
        Known::ExpungeIssued => simple(R::ExpungeIssued),
        Known::Corruption => simple(R::Corruption),
        Known::ServerBug => simple(R::ServerBug),
        Known::ClientBug => simple(R::ClientBug),
        Known::Cannot => simple(R::Cannot),
        Known::Limit => simple(R::Limit),
        Known::OverQuota => simple(R::OverQuota),
        Known::AlreadyExists => simple(R::AlreadyExists),
        Known::NonExistent => simple(R::NonExistent),
        Known::Closed => simple(R::Closed),
        Known::NotSaved => simple(R::NotSaved),
        Known::HasChildren => simple(R::HasChildren),
        Known::UnknownCte => simple(R::UnknownCte),
        Known::NoModSeq => simple(R::NoModSeq),
        Known::TooBig => simple(R::TooBig),
        Known::CompressionActive => simple(R::CompressionActive),
        Known::UseAttr => simple(R::UseAttr),
        // "BADCHARSET" [SP "(" charset *(SP charset) ")" ]
        Known::BadCharset => match rest {
            [b' ', after @ ..] => {
                let (r, list) = paren_list_nonempty(after, charset)?;
                Ok((r, R::BadCharset(list)))
            }
            _ => simple(R::BadCharset(Vec::new())),
        },
        // capability-data = "CAPABILITY" *(SP capability)
        Known::Capability => {
            let mut caps = Vec::new();
            let mut rest = rest;
            while let [b' ', after @ ..] = rest {
                let (r, c) = capability(after)?;
                caps.push(c);
                rest = r;
            }
            Ok((rest, R::Capability(caps)))
        }
        // "PERMANENTFLAGS" SP "(" [flag-perm *(SP flag-perm)] ")"
        Known::PermanentFlags => {
            let (r, _) = sp(rest)?;
            let (r, _) = byte(r, b'(')?;
            let mut flags = Vec::new();
            let mut r = r;
            if let [b')', after @ ..] = r {
                return Ok((after, R::PermanentFlags(flags)));
            }
            loop {
                let (r2, f) = flag_perm(r)?;
                flags.push(f);
                match r2 {
                    [b' ', after @ ..] => r = after,
                    [b')', after @ ..] => return Ok((after, R::PermanentFlags(flags))),
                    _ => return fail(r2, ParseErrorKind::Syntax),
                }
            }
        }
        Known::UidNext => sp_then(rest, nz_number).map(|(r, n)| (r, R::UidNext(n))),
        Known::UidValidity => sp_then(rest, nz_number).map(|(r, n)| (r, R::UidValidity(n))),
        Known::Unseen => sp_then(rest, nz_number).map(|(r, n)| (r, R::Unseen(n))),
        // resp-code-apnd = "APPENDUID" SP nz-number SP append-uid
        Known::AppendUid => {
            let (r, uid_validity) = sp_then(rest, nz_number)?;
            let (r, uids) = sp_then(r, sequence_set)?;
            Ok((r, R::AppendUid { uid_validity, uids }))
        }
        // resp-code-copy = "COPYUID" SP nz-number SP uid-set SP uid-set
        Known::CopyUid => {
            let (r, uid_validity) = sp_then(rest, nz_number)?;
            let (r, source) = sp_then(r, sequence_set)?;
            let (r, destination) = sp_then(r, sequence_set)?;
            Ok((
                r,
                R::CopyUid {
                    uid_validity,
                    source,
                    destination,
                },
            ))
        }
        // "HIGHESTMODSEQ" SP mod-sequence-value
        Known::HighestModSeq => {
            sp_then(rest, mod_sequence_value).map(|(r, m)| (r, R::HighestModSeq(m)))
        }
        // "MODIFIED" SP sequence-set
        Known::Modified => sp_then(rest, sequence_set).map(|(r, s)| (r, R::Modified(s))),
        // "METADATA" SP ("LONGENTRIES" SP number / "MAXSIZE" SP number / "TOOMANY" / "NOPRIVATE")
        Known::Metadata => {
            let (r, _) = sp(rest)?;
            let (r2, word) = crate::response::helpers::word(r);
            let code = if word.eq_ignore_ascii_case(b"LONGENTRIES") {
                let (r3, n) = sp_then(r2, number)?;
                return Ok((r3, R::Metadata(MetadataCode::LongEntries(n))));
            } else if word.eq_ignore_ascii_case(b"MAXSIZE") {
                let (r3, n) = sp_then(r2, number)?;
                return Ok((r3, R::Metadata(MetadataCode::MaxSize(n))));
            } else if word.eq_ignore_ascii_case(b"TOOMANY") {
                MetadataCode::TooMany
            } else if word.eq_ignore_ascii_case(b"NOPRIVATE") {
                MetadataCode::NoPrivate
            } else {
                return fail(r, ParseErrorKind::Syntax);
            };
            Ok((r2, R::Metadata(code)))
        }
        // "MAILBOXID" SP "(" objectid ")"
        Known::MailboxId => {
            let (r, _) = sp(rest)?;
            crate::response::parser::paren_objectid(r).map(|(r, id)| (r, R::MailboxId(id)))
        }
        // "REFERRAL" SP imap-url, kept as text
        Known::Referral => {
            let (r, _) = sp(rest)?;
            code_text(r).map(|(r, t)| (r, R::Referral(t)))
        }
    }
}

/// `1*<any TEXT-CHAR except "]">`
fn code_text(input: &[u8]) -> PResult<'_, CodeText<'_>> {
    let end = input
        .iter()
        .position(|&b| !is_code_text_char(b))
        .unwrap_or(input.len());
    if end == 0 {
        return fail(input, ParseErrorKind::Syntax);
    }
    Ok((&input[end..], CodeText(Cow::Borrowed(&input[..end]))))
}

fn sp_then<'a, T>(input: &'a [u8], parser: impl Fn(&'a [u8]) -> PResult<'a, T>) -> PResult<'a, T> {
    let (rest, _) = sp(input)?;
    parser(rest)
}

/// `"(" x *(SP x) ")"`
fn paren_list_nonempty<'a, T>(
    input: &'a [u8],
    item: impl Fn(&'a [u8]) -> PResult<'a, T>,
) -> PResult<'a, Vec<T>> {
    let (mut rest, _) = byte(input, b'(')?;
    let mut items = Vec::new();
    loop {
        let (r, v) = item(rest)?;
        items.push(v);
        match r {
            [b' ', after @ ..] => rest = after,
            [b')', after @ ..] => return Ok((after, items)),
            _ => return fail(r, ParseErrorKind::Syntax),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Encoder
// ---------------------------------------------------------------------------------------------

impl Encode for ResponseCode<'_> {
    /// Writes the code without the brackets.
    fn encode(&self, out: &mut Encoder) {
        use ResponseCode as R;
        let simple: &[u8] = match self {
            R::Alert => b"ALERT",
            R::Parse => b"PARSE",
            R::ReadOnly => b"READ-ONLY",
            R::ReadWrite => b"READ-WRITE",
            R::TryCreate => b"TRYCREATE",
            R::UidNotSticky => b"UIDNOTSTICKY",
            R::Unavailable => b"UNAVAILABLE",
            R::AuthenticationFailed => b"AUTHENTICATIONFAILED",
            R::AuthorizationFailed => b"AUTHORIZATIONFAILED",
            R::Expired => b"EXPIRED",
            R::PrivacyRequired => b"PRIVACYREQUIRED",
            R::ContactAdmin => b"CONTACTADMIN",
            R::NoPerm => b"NOPERM",
            R::InUse => b"INUSE",
            R::ExpungeIssued => b"EXPUNGEISSUED",
            R::Corruption => b"CORRUPTION",
            R::ServerBug => b"SERVERBUG",
            R::ClientBug => b"CLIENTBUG",
            R::Cannot => b"CANNOT",
            R::Limit => b"LIMIT",
            R::OverQuota => b"OVERQUOTA",
            R::AlreadyExists => b"ALREADYEXISTS",
            R::NonExistent => b"NONEXISTENT",
            R::Closed => b"CLOSED",
            R::NotSaved => b"NOTSAVED",
            R::HasChildren => b"HASCHILDREN",
            R::UnknownCte => b"UNKNOWN-CTE",
            R::NoModSeq => b"NOMODSEQ",
            R::TooBig => b"TOOBIG",
            R::CompressionActive => b"COMPRESSIONACTIVE",
            R::UseAttr => b"USEATTR",
            R::BadCharset(list) => {
                out.push_bytes(b"BADCHARSET");
                if !list.is_empty() {
                    out.push_sp();
                    paren_list(list, out);
                }
                return;
            }
            R::Capability(caps) => {
                out.push_bytes(b"CAPABILITY");
                for c in caps {
                    out.push_sp();
                    c.encode(out);
                }
                return;
            }
            R::PermanentFlags(flags) => {
                out.push_bytes(b"PERMANENTFLAGS ");
                paren_list(flags, out);
                return;
            }
            R::UidNext(n) | R::UidValidity(n) | R::Unseen(n) => {
                out.push_bytes(match self {
                    R::UidNext(_) => b"UIDNEXT ",
                    R::UidValidity(_) => b"UIDVALIDITY ",
                    _ => b"UNSEEN ",
                });
                out.push_number(u64::from(n.get()));
                return;
            }
            R::AppendUid { uid_validity, uids } => {
                out.push_bytes(b"APPENDUID ");
                out.push_number(u64::from(uid_validity.get()));
                out.push_sp();
                uids.encode(out);
                return;
            }
            R::CopyUid {
                uid_validity,
                source,
                destination,
            } => {
                out.push_bytes(b"COPYUID ");
                out.push_number(u64::from(uid_validity.get()));
                out.push_sp();
                source.encode(out);
                out.push_sp();
                destination.encode(out);
                return;
            }
            R::HighestModSeq(m) => {
                out.push_bytes(b"HIGHESTMODSEQ ");
                m.encode(out);
                return;
            }
            R::Modified(set) => {
                out.push_bytes(b"MODIFIED ");
                set.encode(out);
                return;
            }
            R::Metadata(m) => {
                out.push_bytes(b"METADATA ");
                match m {
                    MetadataCode::LongEntries(n) => {
                        out.push_bytes(b"LONGENTRIES ");
                        out.push_number(u64::from(*n));
                    }
                    MetadataCode::MaxSize(n) => {
                        out.push_bytes(b"MAXSIZE ");
                        out.push_number(u64::from(*n));
                    }
                    MetadataCode::TooMany => out.push_bytes(b"TOOMANY"),
                    MetadataCode::NoPrivate => out.push_bytes(b"NOPRIVATE"),
                }
                return;
            }
            R::MailboxId(id) => {
                out.push_bytes(b"MAILBOXID (");
                out.push_bytes(id.as_bytes());
                out.push_bytes(b")");
                return;
            }
            R::Referral(text) => {
                out.push_bytes(b"REFERRAL ");
                out.push_bytes(text.as_bytes());
                return;
            }
            R::Other(other) => {
                out.push_bytes(&other.name);
                if let Some(text) = &other.text {
                    out.push_sp();
                    out.push_bytes(text.as_bytes());
                }
                return;
            }
        };
        out.push_bytes(simple);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::to_bytes;

    fn parse(code: &str) -> ResponseCode<'_> {
        let (rest, code) = resp_text_code(code.as_bytes()).unwrap();
        assert_eq!(rest, b"]", "left over");
        code
    }

    #[test]
    fn every_known_name_round_trips() {
        for (name, _) in KNOWN {
            let wire = match *name {
                b"BADCHARSET" | b"CAPABILITY" => format!("{}]", String::from_utf8_lossy(name)),
                b"PERMANENTFLAGS" => "PERMANENTFLAGS ()]".to_owned(),
                b"UIDNEXT" | b"UIDVALIDITY" | b"UNSEEN" | b"HIGHESTMODSEQ" => {
                    format!("{} 5]", String::from_utf8_lossy(name))
                }
                b"APPENDUID" => "APPENDUID 1 2]".to_owned(),
                b"COPYUID" => "COPYUID 1 2:3 4:5]".to_owned(),
                b"MODIFIED" => "MODIFIED 1,3]".to_owned(),
                b"METADATA" => "METADATA TOOMANY]".to_owned(),
                b"MAILBOXID" => "MAILBOXID (abc)]".to_owned(),
                b"REFERRAL" => "REFERRAL imap://x/]".to_owned(),
                _ => format!("{}]", String::from_utf8_lossy(name)),
            };
            let code = parse(&wire);
            assert!(!matches!(code, ResponseCode::Other(_)), "{wire}");
            assert_eq!(to_bytes(&code), wire.trim_end_matches(']').as_bytes());
        }
    }

    #[test]
    fn other_codes_cannot_shadow_known_ones() {
        assert!(OtherCode::new(&b"ALERT"[..], None).is_err());
        assert!(OtherCode::new(&b"alert"[..], None).is_err());
        assert!(OtherCode::new(&b"X]"[..], None).is_err());
        assert!(OtherCode::new(&b""[..], None).is_err());
        let text = CodeText::new(&b"some text"[..]).unwrap();
        let code = ResponseCode::Other(OtherCode::new(&b"X-FOO"[..], Some(text)).unwrap());
        assert_eq!(to_bytes(&code), b"X-FOO some text");
        assert!(CodeText::new(&b"a]b"[..]).is_err());
        assert!(CodeText::new(&b""[..]).is_err());
        assert!(ObjectId::new(&b"a b"[..]).is_err());
        assert!(ObjectId::new(vec![b'a'; 256]).is_err());
    }

    #[test]
    fn malformed_arguments_are_errors() {
        for bad in [
            &b"UIDNEXT 0]"[..],
            b"UIDNEXT]",
            b"PERMANENTFLAGS (\\Seen]",
            b"COPYUID 1 2]",
            b"METADATA FOO]",
            b"HIGHESTMODSEQ 0]",
        ] {
            let ok = matches!(resp_text_code(bad), Ok((b"]", _)));
            assert!(!ok, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
