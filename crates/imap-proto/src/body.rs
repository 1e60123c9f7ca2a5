//! `BODY` / `BODYSTRUCTURE` and `ENVELOPE` fetch data (RFC 9051 §7.5.2, RFC 3501 §7.4.2).
//!
//! The types mirror the formal syntax closely enough that every value encodes to exactly one
//! wire form and parses back to itself:
//!
//! - optional extension data is a chain (`md5` → disposition → language → location → further
//!   extensions), because the grammar only allows a later field when every earlier one is present;
//! - an empty parameter or address list stands for `NIL` (the grammar has no empty list there);
//! - multipart bodies are always written in the strict form `((..)(..) "MIXED")`, with no space
//!   between the parts (INTEROP.md: some clients break on the lax form).
//!
//! Parsing is lenient where real servers deviate: a `MESSAGE/RFC822` part without the envelope,
//! body and line count, or a `TEXT` part without a line count, is read as a basic part instead of
//! failing the whole `FETCH`.

use crate::encode::{Encode, Encoder};
use crate::error::ValidationError;
use crate::parse::{PResult, byte, nil, number, number64, sp};
use crate::response::helpers::{enter, nstring8, string8};
use crate::types::{IString, NString};

/// `body` (RFC 9051 §9): the structure of a message or of one of its parts.
///
/// ```text
/// body            = "(" (body-type-1part / body-type-mpart) ")"
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BodyStructure<'a> {
    /// A non-multipart part (`body-type-1part`).
    Single {
        /// Type, fields and type-specific data.
        body: SinglePart<'a>,
        /// Extension data; only in `BODYSTRUCTURE`, never in `BODY`.
        extension: Option<SinglePartExtension<'a>>,
    },
    /// A `multipart/*` part (`body-type-mpart`).
    Multi {
        /// The parts, at least one; an empty list encodes as one empty `text/plain` part is not
        /// possible, so [`BodyStructure::multi`] rejects it and the parser never yields it.
        parts: Vec<BodyStructure<'a>>,
        /// `media-subtype`, e.g. `MIXED` or `ALTERNATIVE`.
        subtype: IString<'a>,
        /// Extension data; only in `BODYSTRUCTURE`, never in `BODY`.
        extension: Option<MultiPartExtension<'a>>,
    },
}

impl<'a> BodyStructure<'a> {
    /// A multipart body; an error when `parts` is empty (the grammar needs at least one part).
    pub fn multi(
        parts: Vec<BodyStructure<'a>>,
        subtype: IString<'a>,
        extension: Option<MultiPartExtension<'a>>,
    ) -> Result<Self, ValidationError> {
        if parts.is_empty() {
            return Err(ValidationError::new("multipart body (no parts)"));
        }
        Ok(Self::Multi {
            parts,
            subtype,
            extension,
        })
    }

    /// Copies every borrowed field so the value outlives the message it was parsed from.
    pub fn into_owned(self) -> BodyStructure<'static> {
        match self {
            Self::Single { body, extension } => BodyStructure::Single {
                body: body.into_owned(),
                extension: extension.map(SinglePartExtension::into_owned),
            },
            Self::Multi {
                parts,
                subtype,
                extension,
            } => BodyStructure::Multi {
                parts: parts.into_iter().map(BodyStructure::into_owned).collect(),
                subtype: subtype.into_owned(),
                extension: extension.map(MultiPartExtension::into_owned),
            },
        }
    }
}

/// A non-multipart part: `body-type-basic / body-type-msg / body-type-text`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SinglePart<'a> {
    /// What kind of part this is, with the type-specific fields.
    pub kind: SinglePartKind<'a>,
    /// `body-fields`: parameters, id, description, encoding, size.
    pub fields: BodyFields<'a>,
}

impl SinglePart<'_> {
    /// Copies every borrowed field.
    pub fn into_owned(self) -> SinglePart<'static> {
        SinglePart {
            kind: self.kind.into_owned(),
            fields: self.fields.into_owned(),
        }
    }
}

/// The type-specific part of a non-multipart body.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SinglePartKind<'a> {
    /// `body-type-basic = media-basic SP body-fields`: any type without extra fields.
    Basic {
        /// `media-type`, e.g. `APPLICATION`, `IMAGE`.
        media_type: IString<'a>,
        /// `media-subtype`, e.g. `PDF`.
        subtype: IString<'a>,
    },
    /// `body-type-text = media-text SP body-fields SP body-fld-lines` (`TEXT/*`).
    Text {
        /// `media-subtype`, e.g. `PLAIN`, `HTML`.
        subtype: IString<'a>,
        /// `body-fld-lines`: size of the body in text lines.
        lines: u64,
    },
    /// `body-type-msg = media-message SP body-fields SP envelope SP body SP body-fld-lines`
    /// (`MESSAGE/RFC822` or, RFC 9051, `MESSAGE/GLOBAL`).
    Message {
        /// `MESSAGE/GLOBAL` (RFC 6532) rather than `MESSAGE/RFC822`.
        global: bool,
        /// Envelope of the encapsulated message.
        envelope: Box<Envelope<'a>>,
        /// Structure of the encapsulated message.
        body: Box<BodyStructure<'a>>,
        /// `body-fld-lines` of the encapsulated message.
        lines: u64,
    },
}

impl SinglePartKind<'_> {
    /// Copies every borrowed field.
    pub fn into_owned(self) -> SinglePartKind<'static> {
        match self {
            Self::Basic {
                media_type,
                subtype,
            } => SinglePartKind::Basic {
                media_type: media_type.into_owned(),
                subtype: subtype.into_owned(),
            },
            Self::Text { subtype, lines } => SinglePartKind::Text {
                subtype: subtype.into_owned(),
                lines,
            },
            Self::Message {
                global,
                envelope,
                body,
                lines,
            } => SinglePartKind::Message {
                global,
                envelope: Box::new(envelope.into_owned()),
                body: Box::new(body.into_owned()),
                lines,
            },
        }
    }
}

/// `body-fields = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP body-fld-octets`
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BodyFields<'a> {
    /// `body-fld-param`: Content-Type parameters (attribute, value); empty is `NIL`.
    pub params: Vec<(IString<'a>, IString<'a>)>,
    /// `body-fld-id`: Content-ID.
    pub id: NString<'a>,
    /// `body-fld-desc`: Content-Description.
    pub description: NString<'a>,
    /// `body-fld-enc`: Content-Transfer-Encoding, e.g. `BASE64`.
    pub encoding: IString<'a>,
    /// `body-fld-octets`: size of the body in its transfer encoding.
    pub octets: u32,
}

impl BodyFields<'_> {
    /// Copies every borrowed field.
    pub fn into_owned(self) -> BodyFields<'static> {
        BodyFields {
            params: owned_params(self.params),
            id: self.id.into_owned(),
            description: self.description.into_owned(),
            encoding: self.encoding.into_owned(),
            octets: self.octets,
        }
    }
}

fn owned_params(
    params: Vec<(IString<'_>, IString<'_>)>,
) -> Vec<(IString<'static>, IString<'static>)> {
    params
        .into_iter()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// `body-ext-1part = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc *(SP body-extension)]]]`
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SinglePartExtension<'a> {
    /// `body-fld-md5`: Content-MD5.
    pub md5: NString<'a>,
    /// The rest of the chain, if present.
    pub tail: Option<DispositionExtension<'a>>,
}

impl SinglePartExtension<'_> {
    /// Copies every borrowed field.
    pub fn into_owned(self) -> SinglePartExtension<'static> {
        SinglePartExtension {
            md5: self.md5.into_owned(),
            tail: self.tail.map(DispositionExtension::into_owned),
        }
    }
}

/// `body-ext-mpart = body-fld-param [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc *(SP body-extension)]]]`
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MultiPartExtension<'a> {
    /// `body-fld-param`: Content-Type parameters of the multipart (e.g. `BOUNDARY`); empty is `NIL`.
    pub params: Vec<(IString<'a>, IString<'a>)>,
    /// The rest of the chain, if present.
    pub tail: Option<DispositionExtension<'a>>,
}

impl MultiPartExtension<'_> {
    /// Copies every borrowed field.
    pub fn into_owned(self) -> MultiPartExtension<'static> {
        MultiPartExtension {
            params: owned_params(self.params),
            tail: self.tail.map(DispositionExtension::into_owned),
        }
    }
}

/// `SP body-fld-dsp [SP body-fld-lang [...]]`: the disposition link of the extension chain.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DispositionExtension<'a> {
    /// `body-fld-dsp`; `None` is `NIL`.
    pub disposition: Option<Disposition<'a>>,
    /// The rest of the chain, if present.
    pub tail: Option<LanguageExtension<'a>>,
}

impl DispositionExtension<'_> {
    /// Copies every borrowed field.
    pub fn into_owned(self) -> DispositionExtension<'static> {
        DispositionExtension {
            disposition: self.disposition.map(Disposition::into_owned),
            tail: self.tail.map(LanguageExtension::into_owned),
        }
    }
}

/// `body-fld-dsp = "(" string SP body-fld-param ")" / nil`, the non-`NIL` form.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Disposition<'a> {
    /// Disposition type, e.g. `attachment`, `inline`.
    pub kind: IString<'a>,
    /// Disposition parameters, e.g. `filename`; empty is `NIL`.
    pub params: Vec<(IString<'a>, IString<'a>)>,
}

impl Disposition<'_> {
    /// Copies every borrowed field.
    pub fn into_owned(self) -> Disposition<'static> {
        Disposition {
            kind: self.kind.into_owned(),
            params: owned_params(self.params),
        }
    }
}

/// `SP body-fld-lang [SP body-fld-loc *(SP body-extension)]`: the language link of the chain.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LanguageExtension<'a> {
    /// `body-fld-lang`: Content-Language.
    pub language: BodyLanguage<'a>,
    /// The rest of the chain, if present.
    pub tail: Option<LocationExtension<'a>>,
}

impl LanguageExtension<'_> {
    /// Copies every borrowed field.
    pub fn into_owned(self) -> LanguageExtension<'static> {
        LanguageExtension {
            language: self.language.into_owned(),
            tail: self.tail.map(LocationExtension::into_owned),
        }
    }
}

/// `body-fld-lang = nstring / "(" string *(SP string) ")"`
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BodyLanguage<'a> {
    /// A single tag or `NIL`.
    Single(NString<'a>),
    /// A parenthesized list; never empty ([`BodyLanguage::list`] enforces it).
    List(Vec<IString<'a>>),
}

impl<'a> BodyLanguage<'a> {
    /// The list form; an error when `tags` is empty (the grammar needs at least one).
    pub fn list(tags: Vec<IString<'a>>) -> Result<Self, ValidationError> {
        if tags.is_empty() {
            return Err(ValidationError::new("body language list (empty)"));
        }
        Ok(Self::List(tags))
    }

    /// Copies every borrowed field.
    pub fn into_owned(self) -> BodyLanguage<'static> {
        match self {
            Self::Single(s) => BodyLanguage::Single(s.into_owned()),
            Self::List(l) => BodyLanguage::List(l.into_iter().map(IString::into_owned).collect()),
        }
    }
}

/// `SP body-fld-loc *(SP body-extension)`: the last link of the chain.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LocationExtension<'a> {
    /// `body-fld-loc`: Content-Location.
    pub location: NString<'a>,
    /// Future extension data, kept verbatim in structure.
    pub extensions: Vec<BodyExtension<'a>>,
}

impl LocationExtension<'_> {
    /// Copies every borrowed field.
    pub fn into_owned(self) -> LocationExtension<'static> {
        LocationExtension {
            location: self.location.into_owned(),
            extensions: self
                .extensions
                .into_iter()
                .map(BodyExtension::into_owned)
                .collect(),
        }
    }
}

/// `body-extension = nstring / number / number64 / "(" body-extension *(SP body-extension) ")"`
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BodyExtension<'a> {
    /// A string or `NIL`.
    NString(NString<'a>),
    /// A number.
    Number(u64),
    /// A parenthesized list; never empty ([`BodyExtension::list`] enforces it).
    List(Vec<BodyExtension<'a>>),
}

impl<'a> BodyExtension<'a> {
    /// The list form; an error when `items` is empty (the grammar needs at least one).
    pub fn list(items: Vec<BodyExtension<'a>>) -> Result<Self, ValidationError> {
        if items.is_empty() {
            return Err(ValidationError::new("body extension list (empty)"));
        }
        Ok(Self::List(items))
    }

    /// Copies every borrowed field.
    pub fn into_owned(self) -> BodyExtension<'static> {
        match self {
            Self::NString(s) => BodyExtension::NString(s.into_owned()),
            Self::Number(n) => BodyExtension::Number(n),
            Self::List(l) => {
                BodyExtension::List(l.into_iter().map(BodyExtension::into_owned).collect())
            }
        }
    }
}

/// `envelope` (RFC 9051 §7.5.2): the parsed header fields of a message.
///
/// ```text
/// envelope        = "(" env-date SP env-subject SP env-from SP env-sender SP
///                   env-reply-to SP env-to SP env-cc SP env-bcc SP
///                   env-in-reply-to SP env-message-id ")"
/// ```
///
/// Address lists use an empty `Vec` for `NIL` (`env-from = "(" 1*address ")" / nil`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Envelope<'a> {
    /// `env-date`: the Date header, unparsed.
    pub date: NString<'a>,
    /// `env-subject`: the Subject header, not decoded (RFC 2047 words stay as sent).
    pub subject: NString<'a>,
    /// `env-from`.
    pub from: Vec<Address<'a>>,
    /// `env-sender`.
    pub sender: Vec<Address<'a>>,
    /// `env-reply-to`.
    pub reply_to: Vec<Address<'a>>,
    /// `env-to`.
    pub to: Vec<Address<'a>>,
    /// `env-cc`.
    pub cc: Vec<Address<'a>>,
    /// `env-bcc`.
    pub bcc: Vec<Address<'a>>,
    /// `env-in-reply-to`.
    pub in_reply_to: NString<'a>,
    /// `env-message-id`.
    pub message_id: NString<'a>,
}

impl Envelope<'_> {
    /// Copies every borrowed field.
    pub fn into_owned(self) -> Envelope<'static> {
        let list = |l: Vec<Address<'_>>| l.into_iter().map(Address::into_owned).collect();
        Envelope {
            date: self.date.into_owned(),
            subject: self.subject.into_owned(),
            from: list(self.from),
            sender: list(self.sender),
            reply_to: list(self.reply_to),
            to: list(self.to),
            cc: list(self.cc),
            bcc: list(self.bcc),
            in_reply_to: self.in_reply_to.into_owned(),
            message_id: self.message_id.into_owned(),
        }
    }
}

/// `address = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")"`
///
/// RFC 5322 group syntax is a pair of addresses: a start (`host` `NIL`, `mailbox` the group
/// name) and an end (`mailbox` and `host` `NIL`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Address<'a> {
    /// `addr-name`: display name.
    pub name: NString<'a>,
    /// `addr-adl`: obsolete source route.
    pub adl: NString<'a>,
    /// `addr-mailbox`: local part (or group name).
    pub mailbox: NString<'a>,
    /// `addr-host`: domain.
    pub host: NString<'a>,
}

impl Address<'_> {
    /// Copies every borrowed field.
    pub fn into_owned(self) -> Address<'static> {
        Address {
            name: self.name.into_owned(),
            adl: self.adl.into_owned(),
            mailbox: self.mailbox.into_owned(),
            host: self.host.into_owned(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parsers
// ---------------------------------------------------------------------------------------------

/// `body = "(" (body-type-1part / body-type-mpart) ")"`
///
/// `depth` is the remaining nesting budget; each `(` of a part (and of extension lists and
/// encapsulated messages) uses one level.
pub(crate) fn body(depth: usize) -> impl Fn(&[u8]) -> PResult<'_, BodyStructure<'_>> {
    move |input| body_at(input, depth)
}

fn body_at(input: &[u8], depth: usize) -> PResult<'_, BodyStructure<'_>> {
    let depth = enter(input, depth)?;
    let (rest, _) = byte(input, b'(')?;
    let (rest, value) = if rest.first() == Some(&b'(') {
        body_type_mpart(rest, depth)?
    } else {
        body_type_1part(rest, depth)?
    };
    let (rest, _) = byte(rest, b')')?;
    Ok((rest, value))
}

/// `body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]`
///
/// Lenient: a space between the parts (the lax form some servers send) is accepted.
fn body_type_mpart(input: &[u8], depth: usize) -> PResult<'_, BodyStructure<'_>> {
    let mut parts = Vec::new();
    let mut rest = input;
    loop {
        let (r, part) = body_at(rest, depth)?;
        parts.push(part);
        rest = r;
        match rest {
            [b'(', ..] => {}
            [b' ', b'(', ..] => rest = &rest[1..],
            _ => break,
        }
    }
    let (rest, _) = sp(rest)?;
    let (rest, subtype) = string8(rest)?;
    let (rest, extension) = match rest {
        [b' ', ..] => {
            let (r, ext) = body_ext_mpart(&rest[1..], depth)?;
            (r, Some(ext))
        }
        _ => (rest, None),
    };
    Ok((
        rest,
        BodyStructure::Multi {
            parts,
            subtype,
            extension,
        },
    ))
}

/// `body-type-1part = (body-type-basic / body-type-msg / body-type-text) [SP body-ext-1part]`
fn body_type_1part(input: &[u8], depth: usize) -> PResult<'_, BodyStructure<'_>> {
    let (rest, media_type) = string8(input)?;
    let (rest, _) = sp(rest)?;
    let (rest, subtype) = string8(rest)?;
    let (rest, _) = sp(rest)?;
    let (after_fields, fields) = body_fields(rest)?;

    let is_text = media_type.as_bytes().eq_ignore_ascii_case(b"TEXT");
    let message_global = if media_type.as_bytes().eq_ignore_ascii_case(b"MESSAGE") {
        if subtype.as_bytes().eq_ignore_ascii_case(b"RFC822") {
            Some(false)
        } else if subtype.as_bytes().eq_ignore_ascii_case(b"GLOBAL") {
            Some(true)
        } else {
            None
        }
    } else {
        None
    };

    // Try the specific forms first; fall back to body-type-basic when the extra fields are
    // missing (seen from real servers). The fallback is unambiguous: an extension's first
    // field is an nstring, never a number nor "(".
    let mut kind = None;
    let mut rest = after_fields;
    if is_text {
        if let Ok((r, lines)) = preceded_sp_number64(after_fields) {
            rest = r;
            kind = Some(SinglePartKind::Text {
                subtype: subtype.clone(),
                lines,
            });
        }
    } else if let Some(global) = message_global
        && let [b' ', b'(', ..] = after_fields
    {
        let (r, envelope) = envelope_at(&after_fields[1..], depth)?;
        let (r, _) = sp(r)?;
        let (r, inner) = body_at(r, depth)?;
        let (r, lines) = preceded_sp_number64(r)?;
        rest = r;
        kind = Some(SinglePartKind::Message {
            global,
            envelope: Box::new(envelope),
            body: Box::new(inner),
            lines,
        });
    }
    let kind = kind.unwrap_or(SinglePartKind::Basic {
        media_type,
        subtype,
    });
    let (rest, extension) = match rest {
        [b' ', ..] => {
            let (r, ext) = body_ext_1part(&rest[1..], depth)?;
            (r, Some(ext))
        }
        _ => (rest, None),
    };
    Ok((
        rest,
        BodyStructure::Single {
            body: SinglePart { kind, fields },
            extension,
        },
    ))
}

fn preceded_sp_number64(input: &[u8]) -> PResult<'_, u64> {
    let (rest, _) = sp(input)?;
    number64(rest)
}

/// `body-fields = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP body-fld-octets`
fn body_fields(input: &[u8]) -> PResult<'_, BodyFields<'_>> {
    let (rest, params) = body_fld_param(input)?;
    let (rest, _) = sp(rest)?;
    let (rest, id) = nstring8(rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, description) = nstring8(rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, encoding) = string8(rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, octets) = number(rest)?;
    Ok((
        rest,
        BodyFields {
            params,
            id,
            description,
            encoding,
            octets,
        },
    ))
}

/// `body-fld-param = "(" string SP string *(SP string SP string) ")" / nil`
fn body_fld_param(input: &[u8]) -> PResult<'_, Vec<(IString<'_>, IString<'_>)>> {
    if let Ok((rest, ())) = nil(input) {
        return Ok((rest, Vec::new()));
    }
    let (mut rest, _) = byte(input, b'(')?;
    let mut params = Vec::new();
    loop {
        let (r, key) = string8(rest)?;
        let (r, _) = sp(r)?;
        let (r, value) = string8(r)?;
        params.push((key, value));
        match r {
            [b' ', ..] => rest = &r[1..],
            _ => {
                rest = r;
                break;
            }
        }
    }
    let (rest, _) = byte(rest, b')')?;
    Ok((rest, params))
}

/// `body-ext-1part = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc *(SP body-extension)]]]`
fn body_ext_1part(input: &[u8], depth: usize) -> PResult<'_, SinglePartExtension<'_>> {
    let (rest, md5) = nstring8(input)?;
    let (rest, tail) = opt_disposition_ext(rest, depth)?;
    Ok((rest, SinglePartExtension { md5, tail }))
}

/// `body-ext-mpart = body-fld-param [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc *(SP body-extension)]]]`
fn body_ext_mpart(input: &[u8], depth: usize) -> PResult<'_, MultiPartExtension<'_>> {
    let (rest, params) = body_fld_param(input)?;
    let (rest, tail) = opt_disposition_ext(rest, depth)?;
    Ok((rest, MultiPartExtension { params, tail }))
}

fn opt_disposition_ext(
    input: &[u8],
    depth: usize,
) -> PResult<'_, Option<DispositionExtension<'_>>> {
    let [b' ', after @ ..] = input else {
        return Ok((input, None));
    };
    let (rest, disposition) = body_fld_dsp(after)?;
    let (rest, tail) = match rest {
        [b' ', after @ ..] => {
            let (r, language) = body_fld_lang(after)?;
            let (r, tail) = match r {
                [b' ', after @ ..] => {
                    let (mut r, location) = nstring8(after)?;
                    let mut extensions = Vec::new();
                    while let [b' ', after @ ..] = r {
                        let (r2, ext) = body_extension(after, depth)?;
                        extensions.push(ext);
                        r = r2;
                    }
                    (
                        r,
                        Some(LocationExtension {
                            location,
                            extensions,
                        }),
                    )
                }
                _ => (r, None),
            };
            (r, Some(LanguageExtension { language, tail }))
        }
        _ => (rest, None),
    };
    Ok((rest, Some(DispositionExtension { disposition, tail })))
}

/// `body-fld-dsp = "(" string SP body-fld-param ")" / nil`
fn body_fld_dsp(input: &[u8]) -> PResult<'_, Option<Disposition<'_>>> {
    if let Ok((rest, ())) = nil(input) {
        return Ok((rest, None));
    }
    let (rest, _) = byte(input, b'(')?;
    let (rest, kind) = string8(rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, params) = body_fld_param(rest)?;
    let (rest, _) = byte(rest, b')')?;
    Ok((rest, Some(Disposition { kind, params })))
}

/// `body-fld-lang = nstring / "(" string *(SP string) ")"`
fn body_fld_lang(input: &[u8]) -> PResult<'_, BodyLanguage<'_>> {
    if input.first() != Some(&b'(') {
        let (rest, s) = nstring8(input)?;
        return Ok((rest, BodyLanguage::Single(s)));
    }
    let mut rest = &input[1..];
    let mut tags = Vec::new();
    loop {
        let (r, tag) = string8(rest)?;
        tags.push(tag);
        match r {
            [b' ', after @ ..] => rest = after,
            _ => {
                rest = r;
                break;
            }
        }
    }
    let (rest, _) = byte(rest, b')')?;
    Ok((rest, BodyLanguage::List(tags)))
}

/// `body-extension = nstring / number / number64 / "(" body-extension *(SP body-extension) ")"`
fn body_extension(input: &[u8], depth: usize) -> PResult<'_, BodyExtension<'_>> {
    match input.first() {
        Some(b'0'..=b'9') => {
            let (rest, n) = number64(input)?;
            Ok((rest, BodyExtension::Number(n)))
        }
        Some(b'(') => {
            let depth = enter(input, depth)?;
            let mut rest = &input[1..];
            let mut items = Vec::new();
            loop {
                let (r, item) = body_extension(rest, depth)?;
                items.push(item);
                match r {
                    [b' ', after @ ..] => rest = after,
                    _ => {
                        rest = r;
                        break;
                    }
                }
            }
            let (rest, _) = byte(rest, b')')?;
            Ok((rest, BodyExtension::List(items)))
        }
        _ => {
            let (rest, s) = nstring8(input)?;
            Ok((rest, BodyExtension::NString(s)))
        }
    }
}

/// `envelope = "(" env-date SP env-subject SP env-from SP env-sender SP env-reply-to SP env-to
/// SP env-cc SP env-bcc SP env-in-reply-to SP env-message-id ")"`
pub(crate) fn envelope(depth: usize) -> impl Fn(&[u8]) -> PResult<'_, Envelope<'_>> {
    move |input| envelope_at(input, depth)
}

fn envelope_at(input: &[u8], depth: usize) -> PResult<'_, Envelope<'_>> {
    enter(input, depth)?;
    let (rest, _) = byte(input, b'(')?;
    let (rest, date) = nstring8(rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, subject) = nstring8(rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, from) = address_list(rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, sender) = address_list(rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, reply_to) = address_list(rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, to) = address_list(rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, cc) = address_list(rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, bcc) = address_list(rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, in_reply_to) = nstring8(rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, message_id) = nstring8(rest)?;
    let (rest, _) = byte(rest, b')')?;
    Ok((
        rest,
        Envelope {
            date,
            subject,
            from,
            sender,
            reply_to,
            to,
            cc,
            bcc,
            in_reply_to,
            message_id,
        },
    ))
}

/// `env-from = "(" 1*address ")" / nil` (and the other address lists).
///
/// Lenient: spaces between addresses (some servers emit them) are skipped.
fn address_list(input: &[u8]) -> PResult<'_, Vec<Address<'_>>> {
    if let Ok((rest, ())) = nil(input) {
        return Ok((rest, Vec::new()));
    }
    let (mut rest, _) = byte(input, b'(')?;
    let mut list = Vec::new();
    loop {
        let (r, a) = address(rest)?;
        list.push(a);
        rest = match r {
            [b' ', after @ ..] => after,
            _ => r,
        };
        if rest.first() != Some(&b'(') {
            break;
        }
    }
    let (rest, _) = byte(rest, b')')?;
    Ok((rest, list))
}

/// `address = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")"`
fn address(input: &[u8]) -> PResult<'_, Address<'_>> {
    let (rest, _) = byte(input, b'(')?;
    let (rest, name) = nstring8(rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, adl) = nstring8(rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, mailbox) = nstring8(rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, host) = nstring8(rest)?;
    let (rest, _) = byte(rest, b')')?;
    Ok((
        rest,
        Address {
            name,
            adl,
            mailbox,
            host,
        },
    ))
}

// ---------------------------------------------------------------------------------------------
// Encoders
// ---------------------------------------------------------------------------------------------

impl Encode for BodyStructure<'_> {
    fn encode(&self, out: &mut Encoder) {
        out.push_bytes(b"(");
        match self {
            Self::Single { body, extension } => {
                body.encode(out);
                if let Some(ext) = extension {
                    out.push_sp();
                    ext.md5.encode(out);
                    encode_disposition_ext(ext.tail.as_ref(), out);
                }
            }
            Self::Multi {
                parts,
                subtype,
                extension,
            } => {
                // Strict form: parts back to back, no separating space.
                for part in parts {
                    part.encode(out);
                }
                out.push_sp();
                subtype.encode(out);
                if let Some(ext) = extension {
                    out.push_sp();
                    encode_params(&ext.params, out);
                    encode_disposition_ext(ext.tail.as_ref(), out);
                }
            }
        }
        out.push_bytes(b")");
    }
}

impl Encode for SinglePart<'_> {
    fn encode(&self, out: &mut Encoder) {
        match &self.kind {
            SinglePartKind::Basic {
                media_type,
                subtype,
            } => {
                media_type.encode(out);
                out.push_sp();
                subtype.encode(out);
                out.push_sp();
                self.fields.encode(out);
            }
            SinglePartKind::Text { subtype, lines } => {
                out.push_bytes(b"\"TEXT\" ");
                subtype.encode(out);
                out.push_sp();
                self.fields.encode(out);
                out.push_sp();
                out.push_number(*lines);
            }
            SinglePartKind::Message {
                global,
                envelope,
                body,
                lines,
            } => {
                out.push_bytes(if *global {
                    b"\"MESSAGE\" \"GLOBAL\" "
                } else {
                    b"\"MESSAGE\" \"RFC822\" "
                });
                self.fields.encode(out);
                out.push_sp();
                envelope.encode(out);
                out.push_sp();
                body.encode(out);
                out.push_sp();
                out.push_number(*lines);
            }
        }
    }
}

impl Encode for BodyFields<'_> {
    fn encode(&self, out: &mut Encoder) {
        encode_params(&self.params, out);
        out.push_sp();
        self.id.encode(out);
        out.push_sp();
        self.description.encode(out);
        out.push_sp();
        self.encoding.encode(out);
        out.push_sp();
        out.push_number(u64::from(self.octets));
    }
}

fn encode_params(params: &[(IString<'_>, IString<'_>)], out: &mut Encoder) {
    if params.is_empty() {
        out.push_bytes(b"NIL");
        return;
    }
    out.push_bytes(b"(");
    for (i, (key, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push_sp();
        }
        key.encode(out);
        out.push_sp();
        value.encode(out);
    }
    out.push_bytes(b")");
}

fn encode_disposition_ext(ext: Option<&DispositionExtension<'_>>, out: &mut Encoder) {
    let Some(ext) = ext else { return };
    out.push_sp();
    match &ext.disposition {
        None => out.push_bytes(b"NIL"),
        Some(d) => {
            out.push_bytes(b"(");
            d.kind.encode(out);
            out.push_sp();
            encode_params(&d.params, out);
            out.push_bytes(b")");
        }
    }
    let Some(lang) = &ext.tail else { return };
    out.push_sp();
    lang.language.encode(out);
    let Some(loc) = &lang.tail else { return };
    out.push_sp();
    loc.location.encode(out);
    for ext in &loc.extensions {
        out.push_sp();
        ext.encode(out);
    }
}

impl Encode for BodyLanguage<'_> {
    fn encode(&self, out: &mut Encoder) {
        match self {
            Self::Single(s) => s.encode(out),
            Self::List(tags) => {
                out.push_bytes(b"(");
                for (i, tag) in tags.iter().enumerate() {
                    if i > 0 {
                        out.push_sp();
                    }
                    tag.encode(out);
                }
                out.push_bytes(b")");
            }
        }
    }
}

impl Encode for BodyExtension<'_> {
    fn encode(&self, out: &mut Encoder) {
        match self {
            Self::NString(s) => s.encode(out),
            Self::Number(n) => out.push_number(*n),
            Self::List(items) => {
                out.push_bytes(b"(");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_sp();
                    }
                    item.encode(out);
                }
                out.push_bytes(b")");
            }
        }
    }
}

impl Encode for Envelope<'_> {
    fn encode(&self, out: &mut Encoder) {
        out.push_bytes(b"(");
        self.date.encode(out);
        out.push_sp();
        self.subject.encode(out);
        for list in [
            &self.from,
            &self.sender,
            &self.reply_to,
            &self.to,
            &self.cc,
            &self.bcc,
        ] {
            out.push_sp();
            encode_address_list(list, out);
        }
        out.push_sp();
        self.in_reply_to.encode(out);
        out.push_sp();
        self.message_id.encode(out);
        out.push_bytes(b")");
    }
}

fn encode_address_list(list: &[Address<'_>], out: &mut Encoder) {
    if list.is_empty() {
        out.push_bytes(b"NIL");
        return;
    }
    out.push_bytes(b"(");
    for address in list {
        address.encode(out);
    }
    out.push_bytes(b")");
}

impl Encode for Address<'_> {
    fn encode(&self, out: &mut Encoder) {
        out.push_bytes(b"(");
        self.name.encode(out);
        out.push_sp();
        self.adl.encode(out);
        out.push_sp();
        self.mailbox.encode(out);
        out.push_sp();
        self.host.encode(out);
        out.push_bytes(b")");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::to_bytes;

    fn round_trip(wire: &str) -> BodyStructure<'_> {
        let (rest, b) = body(8)(wire.as_bytes()).unwrap();
        assert!(rest.is_empty(), "left over {rest:?}");
        assert_eq!(String::from_utf8(to_bytes(&b)).unwrap(), wire);
        b
    }

    #[test]
    fn extension_chain_stops_anywhere() {
        let base = "(\"IMAGE\" \"PNG\" NIL NIL NIL \"BASE64\" 10";
        for (tail, depth) in [
            ("", 0),
            (" \"md5\"", 1),
            (" NIL NIL", 2),
            (" NIL (\"inline\" NIL) \"en\"", 3),
            (" NIL NIL (\"en\" \"de\") \"loc\"", 4),
            (" NIL NIL NIL NIL 1 (2 (NIL \"x\"))", 5),
        ] {
            let wire = format!("{base}{tail})");
            let b = round_trip(&wire);
            let BodyStructure::Single { extension, .. } = b else {
                panic!()
            };
            let reached = match extension {
                None => 0,
                Some(SinglePartExtension { tail: None, .. }) => 1,
                Some(SinglePartExtension {
                    tail: Some(DispositionExtension { tail: None, .. }),
                    ..
                }) => 2,
                Some(SinglePartExtension {
                    tail:
                        Some(DispositionExtension {
                            tail: Some(LanguageExtension { tail: None, .. }),
                            ..
                        }),
                    ..
                }) => 3,
                Some(SinglePartExtension {
                    tail:
                        Some(DispositionExtension {
                            tail:
                                Some(LanguageExtension {
                                    tail: Some(LocationExtension { extensions, .. }),
                                    ..
                                }),
                            ..
                        }),
                    ..
                }) => 4 + usize::from(!extensions.is_empty()),
            };
            assert_eq!(reached, depth, "{tail}");
        }
    }

    #[test]
    fn nil_lists_are_empty() {
        let b = round_trip("(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0)");
        let BodyStructure::Single { body, .. } = b else {
            panic!()
        };
        assert!(body.fields.params.is_empty());
        let (_, env) = envelope(2)(b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)").unwrap();
        assert_eq!(env, Envelope::default());
        assert_eq!(to_bytes(&env), b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
    }

    #[test]
    fn multipart_is_strict_and_bounded() {
        round_trip(
            "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1)(\"TEXT\" \"HTML\" NIL NIL NIL \"7BIT\" 1 1) \"ALTERNATIVE\")",
        );
        // Depth 2 allows one multipart level around a leaf, not two.
        let nested = b"(((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1) \"A\") \"B\")";
        assert!(body(3)(nested).is_ok());
        assert!(matches!(
            body(2)(nested),
            Err(nom::Err::Failure(e)) if e.kind == crate::error::ParseErrorKind::TooDeep
        ));
        assert!(BodyStructure::multi(vec![], IString::from_bytes(&b"MIXED"[..]), None).is_err());
    }
}
