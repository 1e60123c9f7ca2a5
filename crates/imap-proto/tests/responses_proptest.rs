//! Property tests for responses: generators cover the whole response grammar (every status
//! kind and response code, every untagged data kind, every FETCH item, nested BODYSTRUCTURE
//! with extension data, literals, literal8) and check `parse(encode(x)) == x`, plus that
//! arbitrary bytes never panic the parser.

use std::borrow::Cow;
use std::num::NonZeroU32;

use cas_imap_proto::body::{
    Address, BodyExtension, BodyFields, BodyLanguage, BodyStructure, Disposition,
    DispositionExtension, Envelope, LanguageExtension, LocationExtension, MultiPartExtension,
    SinglePart, SinglePartExtension, SinglePartKind,
};
use cas_imap_proto::code::{CodeText, MetadataCode, ObjectId, OtherCode, ResponseCode};
use cas_imap_proto::encode::to_bytes;
use cas_imap_proto::response::{
    Base64, ContinueRequest, Data, Delimiter, ESearch, ESearchItem, FetchItem, GmailLabel,
    ListExtendedItem, MailboxList, MetadataEntries, NamespaceDescription, QuotaUsage, Response,
    ResponseText, Status, StatusResponse, StatusValue, TaggedExtComp, TaggedExtValue, TaggedLabel,
    Text, Thread, parse_response, response_roundtrip,
};
use cas_imap_proto::types::{
    AString, Atom, AtomExt, Capability, Charset, Date, DateTime, Flag, FlagExtension, FlagFetch,
    FlagPerm, IString, Literal, LiteralMode, Mailbox, MailboxAttribute, MailboxName, ModSeq,
    NString, QuotaResource, Quoted, Section, SectionText, SeqOrUid, SeqRange, SequenceSet, Tag,
};
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;

fn nz() -> impl Strategy<Value = NonZeroU32> {
    prop_oneof![1u32..100, 1u32..=u32::MAX].prop_map(|n| NonZeroU32::new(n).unwrap())
}

fn num64() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..1000, 0u64..=ModSeq::MAX]
}

fn modseq() -> impl Strategy<Value = ModSeq> {
    prop_oneof![1u64..1000, 1u64..=ModSeq::MAX].prop_map(|n| ModSeq::new(n).unwrap())
}

fn atom_text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9$_.&-]{1,10}"
}

fn atom() -> impl Strategy<Value = Atom<'static>> {
    atom_text().prop_map(|s| Atom::new(s).unwrap())
}

fn quoted_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[ -~]{0,16}".prop_map(String::into_bytes),
        "[a-z\"\\\\ äß€]{0,8}".prop_map(String::into_bytes),
    ]
}

/// Quoted strings and literals without NUL: what `astring` (shared with commands) reads.
fn istring_text() -> BoxedStrategy<IString<'static>> {
    prop_oneof![
        4 => quoted_bytes().prop_map(|b| IString::Quoted(Quoted::new(b).unwrap())),
        1 => vec(1u8..=255, 0..24).prop_map(|b| IString::Literal(Literal::new(b, LiteralMode::Sync).unwrap())),
    ]
    .boxed()
}

/// Any string a response may carry, including `literal8` (NUL bytes).
fn istring() -> BoxedStrategy<IString<'static>> {
    prop_oneof![
        4 => quoted_bytes().prop_map(|b| IString::Quoted(Quoted::new(b).unwrap())),
        1 => (vec(1u8..=255, 0..24), any::<bool>()).prop_map(|(b, sync)| {
            let mode = if sync { LiteralMode::Sync } else { LiteralMode::NonSync };
            IString::Literal(Literal::new(b, mode).unwrap())
        }),
        1 => vec(any::<u8>(), 0..12)
            .prop_map(|b| IString::Literal(Literal::new_binary(b, LiteralMode::Sync))),
        1 => vec(any::<u8>(), 0..40).prop_map(IString::from_bytes),
    ]
    .boxed()
}

fn nstring() -> BoxedStrategy<NString<'static>> {
    prop_oneof![1 => Just(NString(None)), 4 => istring().prop_map(|s| NString(Some(s)))].boxed()
}

fn astring() -> BoxedStrategy<AString<'static>> {
    prop_oneof![
        "[A-Za-z0-9$_.&\\]-]{1,10}".prop_map(|s| AString::Atom(AtomExt::new(s).unwrap())),
        istring_text().prop_map(AString::String),
    ]
    .boxed()
}

fn mailbox() -> BoxedStrategy<Mailbox<'static>> {
    prop_oneof![
        Just(Mailbox::Inbox),
        prop_oneof![
            "[A-Za-z0-9/._-]{1,12}".prop_map(|s| AString::from_bytes(s.into_bytes())),
            // No `&`: it starts a modified UTF-7 sequence the parser validates.
            "[ -%'-~]{0,12}".prop_map(|s| AString::from_bytes(s.into_bytes())),
        ]
        .prop_filter_map("INBOX", |a| MailboxName::new(a).ok().map(Mailbox::Other)),
    ]
    .boxed()
}

fn tag() -> impl Strategy<Value = Tag<'static>> {
    "[A-Za-z0-9.]{1,8}".prop_map(|s| Tag::new(s).unwrap())
}

fn flag() -> impl Strategy<Value = Flag<'static>> {
    prop_oneof![
        Just(Flag::Seen),
        Just(Flag::Answered),
        Just(Flag::Flagged),
        Just(Flag::Deleted),
        Just(Flag::Draft),
        atom().prop_map(Flag::Keyword),
        "X[A-Za-z]{0,8}"
            .prop_map(|s| Flag::Extension(FlagExtension::new(Atom::new(s).unwrap()).unwrap())),
    ]
}

fn flag_fetch() -> impl Strategy<Value = FlagFetch<'static>> {
    prop_oneof![flag().prop_map(FlagFetch::Flag), Just(FlagFetch::Recent)]
}

fn flag_perm() -> impl Strategy<Value = FlagPerm<'static>> {
    prop_oneof![flag().prop_map(FlagPerm::Flag), Just(FlagPerm::Asterisk)]
}

fn capability() -> impl Strategy<Value = Capability<'static>> {
    prop_oneof![
        prop::sample::select(vec![
            "IMAP4rev1",
            "IMAP4rev2",
            "IDLE",
            "LITERAL+",
            "AUTH=PLAIN",
            "AUTH=NTLM",
            "CONDSTORE",
            "QRESYNC",
            "ESEARCH",
            "UTF8=ACCEPT",
            "COMPRESS=DEFLATE",
            "APPENDLIMIT=35882577",
        ])
        .prop_map(|s| Capability::from_atom(Atom::new(s).unwrap())),
        "X[A-Z0-9=+-]{1,10}".prop_map(|s| Capability::from_atom(Atom::new(s).unwrap())),
    ]
}

fn charset() -> impl Strategy<Value = Charset<'static>> {
    prop_oneof![
        atom().prop_map(Charset::Atom),
        quoted_bytes().prop_map(|b| Charset::Quoted(Quoted::new(b).unwrap())),
    ]
}

fn seq_or_uid() -> impl Strategy<Value = SeqOrUid> {
    prop_oneof![4 => nz().prop_map(SeqOrUid::Value), 1 => Just(SeqOrUid::Asterisk)]
}

fn seq_range() -> impl Strategy<Value = SeqRange> {
    prop_oneof![
        seq_or_uid().prop_map(SeqRange::Single),
        (seq_or_uid(), seq_or_uid()).prop_map(|(a, b)| SeqRange::Range(a, b)),
    ]
}

fn sequence_set() -> impl Strategy<Value = SequenceSet> {
    vec(seq_range(), 1..5).prop_map(|r| SequenceSet::new(r).unwrap())
}

fn object_id() -> impl Strategy<Value = ObjectId<'static>> {
    "[A-Za-z0-9_-]{1,24}".prop_map(|s| ObjectId::new(s.into_bytes()).unwrap())
}

fn code_text() -> impl Strategy<Value = CodeText<'static>> {
    "[ -\\\\^-~]{1,16}".prop_map(|s| CodeText::new(s.into_bytes()).unwrap())
}

fn date_time() -> impl Strategy<Value = DateTime> {
    (
        1900u16..2100,
        1u8..=12,
        1u8..=28,
        0u8..24,
        0u8..60,
        0u8..60,
        -720i16..=720,
    )
        .prop_map(|(y, mo, d, h, mi, s, z)| {
            DateTime::new(Date::new(y, mo, d).unwrap(), h, mi, s, z / 15 * 15).unwrap()
        })
}

fn section() -> BoxedStrategy<Section<'static>> {
    (
        vec(nz(), 0..3),
        of(prop_oneof![
            Just(SectionText::Header),
            Just(SectionText::Text),
            Just(SectionText::Mime),
            vec(astring(), 1..3).prop_map(SectionText::HeaderFields),
            vec(astring(), 1..3).prop_map(SectionText::HeaderFieldsNot),
        ]),
    )
        .prop_filter_map("MIME needs a part", |(p, t)| Section::new(p, t).ok())
        .boxed()
}

/// Text that is neither empty-with-no-code trouble nor a code: never starts with `[`.
fn text() -> impl Strategy<Value = Text<'static>> {
    "([ -Z\\\\-~][ -~]{0,30})?".prop_map(|s| Text::new(s.into_bytes()).unwrap())
}

fn response_code() -> BoxedStrategy<ResponseCode<'static>> {
    use ResponseCode as R;
    let simple = prop::sample::select(vec![
        R::Alert,
        R::Parse,
        R::ReadOnly,
        R::ReadWrite,
        R::TryCreate,
        R::UidNotSticky,
        R::Unavailable,
        R::AuthenticationFailed,
        R::AuthorizationFailed,
        R::Expired,
        R::PrivacyRequired,
        R::ContactAdmin,
        R::NoPerm,
        R::InUse,
        R::ExpungeIssued,
        R::Corruption,
        R::ServerBug,
        R::ClientBug,
        R::Cannot,
        R::Limit,
        R::OverQuota,
        R::AlreadyExists,
        R::NonExistent,
        R::Closed,
        R::NotSaved,
        R::HasChildren,
        R::UnknownCte,
        R::NoModSeq,
        R::TooBig,
        R::CompressionActive,
        R::UseAttr,
        R::Metadata(MetadataCode::TooMany),
        R::Metadata(MetadataCode::NoPrivate),
    ]);
    prop_oneof![
        4 => simple,
        1 => vec(charset(), 0..3).prop_map(R::BadCharset),
        1 => vec(capability(), 0..4).prop_map(R::Capability),
        1 => vec(flag_perm(), 0..4).prop_map(R::PermanentFlags),
        1 => nz().prop_map(R::UidNext),
        1 => nz().prop_map(R::UidValidity),
        1 => nz().prop_map(R::Unseen),
        1 => (nz(), sequence_set()).prop_map(|(v, s)| R::AppendUid { uid_validity: v, uids: s }),
        1 => (nz(), sequence_set(), sequence_set()).prop_map(|(v, s, d)| R::CopyUid {
            uid_validity: v,
            source: s,
            destination: d
        }),
        1 => modseq().prop_map(R::HighestModSeq),
        1 => sequence_set().prop_map(R::Modified),
        1 => any::<u32>().prop_map(|n| R::Metadata(MetadataCode::LongEntries(n))),
        1 => any::<u32>().prop_map(|n| R::Metadata(MetadataCode::MaxSize(n))),
        1 => object_id().prop_map(R::MailboxId),
        1 => code_text().prop_map(R::Referral),
        1 => ("X[A-Z0-9-]{0,10}", of(code_text())).prop_map(|(n, t)| R::Other(
            OtherCode::new(n.into_bytes(), t).unwrap()
        )),
    ]
    .boxed()
}

fn response_text() -> impl Strategy<Value = ResponseText<'static>> {
    (of(response_code()), text()).prop_map(|(code, text)| ResponseText { code, text })
}

fn status_response() -> BoxedStrategy<StatusResponse<'static>> {
    let status = prop::sample::select(vec![Status::Ok, Status::No, Status::Bad]);
    prop_oneof![
        (tag(), status.clone(), response_text())
            .prop_map(|(tag, status, text)| StatusResponse::Tagged { tag, status, text }),
        (status, response_text())
            .prop_map(|(status, text)| StatusResponse::Untagged { status, text }),
        response_text().prop_map(StatusResponse::PreAuth),
        response_text().prop_map(StatusResponse::Bye),
    ]
    .boxed()
}

fn base64_encode(data: &[u8]) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]);
            } else {
                out.push(b'=');
            }
        }
    }
    out
}

fn looks_like_base64(text: &[u8]) -> bool {
    !text.is_empty()
        && text.len().is_multiple_of(4)
        && text
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
}

fn continue_request() -> BoxedStrategy<ContinueRequest<'static>> {
    prop_oneof![
        response_text()
            .prop_filter("reads as base64", |t| t.code.is_some()
                || !looks_like_base64(t.text.as_bytes()))
            .prop_map(ContinueRequest::Basic),
        vec(any::<u8>(), 1..40)
            .prop_map(|d| ContinueRequest::Base64(Base64::new(base64_encode(&d)).unwrap())),
    ]
    .boxed()
}

fn delimiter() -> impl Strategy<Value = Option<Delimiter>> {
    of(
        prop::sample::select(vec!['/', '.', '"', '\\', '^', 'ä', '€'])
            .prop_map(|c| Delimiter::new(c).unwrap()),
    )
}

fn tagged_ext_comp() -> impl Strategy<Value = TaggedExtComp<'static>> {
    astring()
        .prop_map(TaggedExtComp::AString)
        .prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                astring().prop_map(TaggedExtComp::AString),
                vec(inner, 1..3).prop_map(TaggedExtComp::List),
            ]
        })
}

fn tagged_ext_value() -> BoxedStrategy<TaggedExtValue<'static>> {
    prop_oneof![
        num64().prop_map(TaggedExtValue::Number),
        sequence_set()
            .prop_filter("one number reads as a number", |s| !matches!(
                s.ranges(),
                [SeqRange::Single(SeqOrUid::Value(_))]
            ))
            .prop_map(TaggedExtValue::SequenceSet),
        vec(tagged_ext_comp(), 0..3).prop_map(TaggedExtValue::Comp),
    ]
    .boxed()
}

fn mailbox_attribute() -> impl Strategy<Value = MailboxAttribute<'static>> {
    prop_oneof![
        prop::sample::select(vec![
            "Noinferiors",
            "Noselect",
            "Marked",
            "Unmarked",
            "NonExistent",
            "Subscribed",
            "Remote",
            "HasChildren",
            "HasNoChildren",
            "All",
            "Archive",
            "Drafts",
            "Flagged",
            "Junk",
            "Sent",
            "Trash",
            "Important",
        ])
        .prop_map(|s| MailboxAttribute::from_atom(Atom::new(s).unwrap())),
        "X[A-Za-z]{1,8}".prop_map(|s| MailboxAttribute::from_atom(Atom::new(s).unwrap())),
    ]
}

fn list_extended_item() -> BoxedStrategy<ListExtendedItem<'static>> {
    prop_oneof![
        vec(istring(), 1..3).prop_map(ListExtendedItem::ChildInfo),
        mailbox().prop_map(ListExtendedItem::OldName),
        ("X-[A-Z]{1,6}", tagged_ext_value()).prop_map(|(t, value)| ListExtendedItem::Other {
            tag: AString::from_bytes(t.into_bytes()),
            value
        }),
    ]
    .boxed()
}

fn mailbox_list() -> BoxedStrategy<MailboxList<'static>> {
    (
        vec(mailbox_attribute(), 0..4),
        delimiter(),
        mailbox(),
        vec(list_extended_item(), 0..3),
    )
        .prop_map(|(attributes, delimiter, mailbox, extended)| MailboxList {
            attributes,
            delimiter,
            mailbox,
            extended,
        })
        .boxed()
}

fn status_value() -> impl Strategy<Value = StatusValue<'static>> {
    prop_oneof![
        any::<u32>().prop_map(StatusValue::Messages),
        nz().prop_map(StatusValue::UidNext),
        nz().prop_map(StatusValue::UidValidity),
        any::<u32>().prop_map(StatusValue::Unseen),
        any::<u32>().prop_map(StatusValue::Deleted),
        num64().prop_map(StatusValue::Size),
        any::<u32>().prop_map(StatusValue::Recent),
        num64().prop_map(StatusValue::HighestModSeq),
        of(any::<u32>()).prop_map(StatusValue::AppendLimit),
        object_id().prop_map(StatusValue::MailboxId),
        num64().prop_map(StatusValue::DeletedStorage),
    ]
}

fn esearch_item() -> BoxedStrategy<ESearchItem<'static>> {
    prop_oneof![
        nz().prop_map(ESearchItem::Min),
        nz().prop_map(ESearchItem::Max),
        sequence_set().prop_map(ESearchItem::All),
        any::<u32>().prop_map(ESearchItem::Count),
        modseq().prop_map(ESearchItem::ModSeq),
        ("X-[A-Za-z.:_-]{1,8}", tagged_ext_value()).prop_map(|(n, value)| ESearchItem::Other {
            name: TaggedLabel::new(n.into_bytes()).unwrap(),
            value
        }),
    ]
    .boxed()
}

fn namespace_list() -> BoxedStrategy<Vec<NamespaceDescription<'static>>> {
    vec(
        (
            istring(),
            delimiter(),
            vec((istring(), vec(istring(), 1..3)), 0..2),
        )
            .prop_map(|(prefix, delimiter, extensions)| NamespaceDescription {
                prefix,
                delimiter,
                extensions,
            }),
        0..3,
    )
    .boxed()
}

fn address() -> BoxedStrategy<Address<'static>> {
    (nstring(), nstring(), nstring(), nstring())
        .prop_map(|(name, adl, mailbox, host)| Address {
            name,
            adl,
            mailbox,
            host,
        })
        .boxed()
}

fn envelope() -> BoxedStrategy<Envelope<'static>> {
    let list = || vec(address(), 0..3);
    (
        (nstring(), nstring()),
        (list(), list(), list(), list(), list(), list()),
        (nstring(), nstring()),
    )
        .prop_map(
            |(
                (date, subject),
                (from, sender, reply_to, to, cc, bcc),
                (in_reply_to, message_id),
            )| {
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
                }
            },
        )
        .boxed()
}

fn params() -> BoxedStrategy<Vec<(IString<'static>, IString<'static>)>> {
    vec((istring(), istring()), 0..3).boxed()
}

fn body_extension() -> BoxedStrategy<BodyExtension<'static>> {
    prop_oneof![
        nstring().prop_map(BodyExtension::NString),
        num64().prop_map(BodyExtension::Number),
    ]
    .prop_recursive(3, 10, 3, |inner| {
        prop_oneof![
            nstring().prop_map(BodyExtension::NString),
            vec(inner, 1..3).prop_map(BodyExtension::List),
        ]
    })
    .boxed()
}

fn disposition_ext() -> BoxedStrategy<Option<DispositionExtension<'static>>> {
    let location = (nstring(), vec(body_extension(), 0..3)).prop_map(|(location, extensions)| {
        LocationExtension {
            location,
            extensions,
        }
    });
    let language = (
        prop_oneof![
            nstring().prop_map(BodyLanguage::Single),
            vec(istring(), 1..3).prop_map(BodyLanguage::List),
        ],
        of(location),
    )
        .prop_map(|(language, tail)| LanguageExtension { language, tail });
    let disposition =
        of((istring(), params()).prop_map(|(kind, params)| Disposition { kind, params }));
    of((disposition, of(language))
        .prop_map(|(disposition, tail)| DispositionExtension { disposition, tail }))
    .boxed()
}

fn single_ext() -> BoxedStrategy<SinglePartExtension<'static>> {
    (nstring(), disposition_ext())
        .prop_map(|(md5, tail)| SinglePartExtension { md5, tail })
        .boxed()
}

fn body_fields() -> BoxedStrategy<BodyFields<'static>> {
    (params(), nstring(), nstring(), istring(), any::<u32>())
        .prop_map(|(params, id, description, encoding, octets)| BodyFields {
            params,
            id,
            description,
            encoding,
            octets,
        })
        .boxed()
}

fn media_name() -> impl Strategy<Value = IString<'static>> {
    prop_oneof![
        prop::sample::select(vec![
            "APPLICATION",
            "IMAGE",
            "AUDIO",
            "VIDEO",
            "MESSAGE",
            "FONT"
        ])
        .prop_map(|s| IString::from_bytes(s.as_bytes().to_vec())),
        istring(),
    ]
}

fn body_structure() -> BoxedStrategy<BodyStructure<'static>> {
    let basic = (media_name(), istring()).prop_filter_map("specific type", |(t, s)| {
        let b = t.as_bytes();
        let text = b.eq_ignore_ascii_case(b"TEXT");
        let msg = b.eq_ignore_ascii_case(b"MESSAGE")
            && (s.as_bytes().eq_ignore_ascii_case(b"RFC822")
                || s.as_bytes().eq_ignore_ascii_case(b"GLOBAL"));
        (!text && !msg).then_some(SinglePartKind::Basic {
            media_type: t,
            subtype: s,
        })
    });
    let text =
        (istring(), num64()).prop_map(|(subtype, lines)| SinglePartKind::Text { subtype, lines });
    let leaf = (prop_oneof![basic, text], body_fields(), of(single_ext())).prop_map(
        |(kind, fields, extension)| BodyStructure::Single {
            body: SinglePart { kind, fields },
            extension,
        },
    );
    leaf.prop_recursive(4, 24, 4, move |inner| {
        let multi_ext = (params(), disposition_ext())
            .prop_map(|(params, tail)| MultiPartExtension { params, tail });
        prop_oneof![
            (vec(inner.clone(), 1..4), istring(), of(multi_ext)).prop_map(
                |(parts, subtype, extension)| {
                    BodyStructure::multi(parts, subtype, extension).unwrap()
                }
            ),
            (
                any::<bool>(),
                body_fields(),
                envelope(),
                inner,
                num64(),
                of(single_ext())
            )
                .prop_map(|(global, fields, envelope, body, lines, extension)| {
                    BodyStructure::Single {
                        body: SinglePart {
                            kind: SinglePartKind::Message {
                                global,
                                envelope: Box::new(envelope),
                                body: Box::new(body),
                                lines,
                            },
                            fields,
                        },
                        extension,
                    }
                }),
        ]
    })
    .boxed()
}

fn fetch_item() -> BoxedStrategy<FetchItem<'static>> {
    let part = || vec(nz(), 0..3);
    prop_oneof![
        vec(flag_fetch(), 0..4).prop_map(FetchItem::Flags),
        date_time().prop_map(FetchItem::InternalDate),
        num64().prop_map(FetchItem::Rfc822Size),
        envelope().prop_map(|e| FetchItem::Envelope(Box::new(e))),
        body_structure().prop_map(|b| FetchItem::Body(Box::new(b))),
        body_structure().prop_map(|b| FetchItem::BodyStructure(Box::new(b))),
        (section(), of(any::<u32>()), nstring()).prop_map(|(section, origin, data)| {
            FetchItem::BodySection {
                section,
                origin,
                data,
            }
        }),
        nstring().prop_map(FetchItem::Rfc822),
        nstring().prop_map(FetchItem::Rfc822Header),
        nstring().prop_map(FetchItem::Rfc822Text),
        (part(), nstring()).prop_map(|(section, data)| FetchItem::Binary { section, data }),
        (part(), any::<u32>()).prop_map(|(section, size)| FetchItem::BinarySize { section, size }),
        nz().prop_map(FetchItem::Uid),
        modseq().prop_map(FetchItem::ModSeq),
        object_id().prop_map(FetchItem::EmailId),
        of(object_id()).prop_map(FetchItem::ThreadId),
        num64().prop_map(FetchItem::GmailMessageId),
        num64().prop_map(FetchItem::GmailThreadId),
        vec(
            prop_oneof![
                atom().prop_map(GmailLabel::System),
                astring().prop_map(GmailLabel::Name),
            ],
            0..4
        )
        .prop_map(FetchItem::GmailLabels),
    ]
    .boxed()
}

fn thread() -> BoxedStrategy<Thread> {
    vec(nz(), 0..4)
        .prop_map(|members| Thread {
            members,
            branches: vec![],
        })
        .prop_recursive(4, 16, 3, |inner| {
            (vec(nz(), 0..3), vec(inner, 0..3))
                .prop_map(|(members, branches)| Thread { members, branches })
        })
        .boxed()
}

fn data() -> BoxedStrategy<Data<'static>> {
    prop_oneof![
        vec(capability(), 0..5).prop_map(Data::Capability),
        vec(capability(), 0..3).prop_map(Data::Enabled),
        mailbox_list().prop_map(Data::List),
        mailbox_list().prop_map(Data::Lsub),
        (mailbox(), vec(status_value(), 0..5))
            .prop_map(|(mailbox, items)| Data::Status { mailbox, items }),
        (vec(nz(), 0..8), of(modseq()))
            .prop_map(|(numbers, mod_seq)| Data::Search { numbers, mod_seq }),
        (of(tag()), any::<bool>(), vec(esearch_item(), 0..4))
            .prop_map(|(tag, uid, items)| Data::ESearch(ESearch { tag, uid, items })),
        vec(flag(), 0..5).prop_map(Data::Flags),
        any::<u32>().prop_map(Data::Exists),
        any::<u32>().prop_map(Data::Recent),
        nz().prop_map(Data::Expunge),
        (any::<bool>(), sequence_set())
            .prop_map(|(earlier, uids)| Data::Vanished { earlier, uids }),
        (nz(), vec(fetch_item(), 0..4)).prop_map(|(seq, items)| Data::Fetch { seq, items }),
        (namespace_list(), namespace_list(), namespace_list()).prop_map(
            |(personal, other, shared)| Data::Namespace {
                personal,
                other,
                shared
            }
        ),
        of(vec((istring(), nstring()), 0..4)).prop_map(Data::Id),
        (
            astring(),
            vec(
                ("[A-Z-]{1,10}", num64(), num64()).prop_map(|(r, usage, limit)| QuotaUsage {
                    resource: QuotaResource::from_atom(Atom::new(r).unwrap()),
                    usage,
                    limit
                }),
                0..3
            )
        )
            .prop_map(|(root, resources)| Data::Quota { root, resources }),
        (mailbox(), vec(astring(), 0..3))
            .prop_map(|(mailbox, roots)| Data::QuotaRoot { mailbox, roots }),
        vec(nz(), 0..6).prop_map(Data::Sort),
        (
            mailbox(),
            prop_oneof![
                vec((astring(), nstring()), 0..3).prop_map(MetadataEntries::Values),
                vec(astring(), 0..3).prop_map(MetadataEntries::Names),
            ]
        )
            .prop_map(|(mailbox, entries)| Data::Metadata { mailbox, entries }),
        vec(thread(), 0..4).prop_map(Data::Thread),
    ]
    .boxed()
}

fn response() -> BoxedStrategy<Response<'static>> {
    prop_oneof![
        2 => status_response().prop_map(Response::Status),
        5 => data().prop_map(Response::Data),
        1 => continue_request().prop_map(Response::Continue),
    ]
    .boxed()
}

fn check(response: &Response<'static>) -> Result<(), TestCaseError> {
    let encoded = to_bytes(response);
    let parsed = parse_response(&encoded).map_err(|e| {
        TestCaseError::fail(format!(
            "{response:?} encodes to {:?}, which fails: {e}",
            String::from_utf8_lossy(&encoded)
        ))
    })?;
    prop_assert_eq!(&parsed, response, "{:?}", String::from_utf8_lossy(&encoded));
    response_roundtrip(&encoded);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_response_round_trips(r in response()) {
        check(&r)?;
    }

    #[test]
    fn fetch_round_trips(seq in nz(), items in vec(fetch_item(), 1..6)) {
        check(&Response::Data(Data::Fetch { seq, items }))?;
    }

    #[test]
    fn status_round_trips(s in status_response()) {
        check(&Response::Status(s))?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in vec(any::<u8>(), 0..200)) {
        response_roundtrip(&data);
    }

    #[test]
    fn mutated_responses_never_panic(r in response(), cut in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = to_bytes(&r);
        let i = cut.index(bytes.len());
        bytes[i] = byte;
        response_roundtrip(&bytes);
        response_roundtrip(&bytes[..i]);
    }
}

#[test]
fn base64_helper_matches_known_vector() {
    assert_eq!(base64_encode(b"foobar"), b"Zm9vYmFy");
    assert_eq!(base64_encode(b"fo"), b"Zm8=");
    assert_eq!(Cow::Borrowed(&b"x"[..]).len(), 1);
}
