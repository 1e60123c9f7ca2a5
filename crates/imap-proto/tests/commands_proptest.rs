//! Property tests for commands: `parse(encode(x)) == x` over generators covering the whole
//! command grammar, encoding stability, literal-policy independence, and the shared
//! round-trip invariants (`fuzzing::command_roundtrip` / `fuzzing::command`, also run by the fuzz
//! targets) on
//! arbitrary and mutated input.

use std::num::NonZeroU32;

use proptest::prelude::*;

use cas_imap_proto::command::{
    AppendMessage, Base64Data, Command, CommandBody, EntryType, FetchAttribute, FetchAttributes,
    FetchModifier, GetMetadataOption, ListReturnOption, ListSelectionOption, MetadataDepth,
    ModSeqEntry, PartialRange, QResyncParameter, SearchKey, SearchReturnOption, SelectParameter,
    SortCriterion, SortKey, StoreKind, parse_command, parse_command_with,
};
use cas_imap_proto::encode::{Encoder, Fragment, LiteralPolicy, to_bytes, to_fragments};
use cas_imap_proto::mutf7;
use cas_imap_proto::parse::ParseOptions;
use cas_imap_proto::types::{
    AString, Atom, AtomExt, Capability, Charset, Date, DateTime, Flag, IString, ListMailbox,
    ListToken, Literal, LiteralMode, Mailbox, MailboxAttribute, ModSeq, NString, QuotaResource,
    Quoted, Section, SectionText, SeqOrUid, SeqRange, SequenceSet, SequenceSetArg, StatusItem, Tag,
    ThreadAlgorithm,
};

fn tag() -> impl Strategy<Value = Tag<'static>> {
    "[!#$&',\\-./0-9:;<=>?@A-Z\\[\\]^_`a-z|}~]{1,10}".prop_map(|s| Tag::new(s).unwrap())
}

fn atom() -> impl Strategy<Value = Atom<'static>> {
    "[!#$&'+,\\-./0-9:;<=>?@A-Z\\[^_`a-z|}~]{1,12}".prop_map(|s| Atom::new(s).unwrap())
}

fn literal_mode() -> impl Strategy<Value = LiteralMode> {
    prop_oneof![Just(LiteralMode::Sync), Just(LiteralMode::NonSync)]
}

/// Quotable text: TEXT-CHAR (including `"` and `\`, which get escaped) and some UTF-8.
fn quotable() -> impl Strategy<Value = String> {
    prop_oneof![
        "[\\x01-\\x09\\x0b\\x0c\\x0e-\\x7f]{0,20}",
        "[a-z \"\\\\\u{e9}\u{20ac}\u{1f600}]{0,8}",
    ]
}

fn quoted() -> impl Strategy<Value = Quoted<'static>> {
    quotable().prop_map(|s| Quoted::new(s.into_bytes()).unwrap())
}

fn literal() -> impl Strategy<Value = Literal<'static>> {
    (proptest::collection::vec(1u8..=255, 0..40), literal_mode())
        .prop_map(|(d, m)| Literal::new(d, m).unwrap())
}

fn istring() -> impl Strategy<Value = IString<'static>> {
    prop_oneof![
        quoted().prop_map(IString::Quoted),
        literal().prop_map(IString::Literal)
    ]
}

fn astring() -> impl Strategy<Value = AString<'static>> {
    prop_oneof![
        "[!#$&'+,\\-./0-9:;<=>?@A-Z\\[\\]^_`a-z|}~]{1,12}"
            .prop_map(|s| AString::Atom(AtomExt::new(s).unwrap())),
        istring().prop_map(AString::String),
    ]
}

/// An ASCII-only string in one of the three representations (for mailbox names).
fn ascii_astring(text: String) -> impl Strategy<Value = AString<'static>> {
    let t2 = text.clone();
    let t3 = text.clone();
    prop_oneof![
        Just(AString::from_bytes(text.into_bytes())),
        Just(AString::String(IString::Quoted(
            Quoted::new(t2.into_bytes()).unwrap()
        ))),
        literal_mode().prop_map(move |m| AString::String(IString::Literal(
            Literal::new(t3.clone().into_bytes(), m).unwrap()
        ))),
    ]
}

fn mailbox() -> impl Strategy<Value = Mailbox<'static>> {
    prop_oneof![
        1 => Just(Mailbox::Inbox),
        4 => "[a-zA-Z0-9 ./&_\u{e4}\u{f6}\u{53f0}\u{1f600}-]{0,12}"
            .prop_map(|s| mutf7::encode(&s))
            .prop_filter("INBOX", |s| !s.eq_ignore_ascii_case("INBOX"))
            .prop_flat_map(ascii_astring)
            .prop_map(|a| Mailbox::from_astring(a).unwrap()),
    ]
}

fn list_mailbox() -> impl Strategy<Value = ListMailbox<'static>> {
    prop_oneof![
        "[a-zA-Z0-9%*\\]/.]{1,10}".prop_map(|s| ListMailbox::Token(ListToken::new(s).unwrap())),
        "[a-zA-Z0-9%* /.]{0,10}".prop_map(|s| ListMailbox::String(IString::Quoted(
            Quoted::new(s.into_bytes()).unwrap()
        ))),
    ]
}

fn flag() -> impl Strategy<Value = Flag<'static>> {
    prop_oneof![
        Just(Flag::Seen),
        Just(Flag::Answered),
        Just(Flag::Flagged),
        Just(Flag::Deleted),
        Just(Flag::Draft),
        atom().prop_map(Flag::Keyword),
        atom().prop_map(Flag::from_backslash_atom),
    ]
}

fn flags() -> impl Strategy<Value = Vec<Flag<'static>>> {
    proptest::collection::vec(flag(), 0..4)
}

fn nz() -> impl Strategy<Value = NonZeroU32> {
    prop_oneof![1u32..20, 1u32..=u32::MAX].prop_map(|n| NonZeroU32::new(n).unwrap())
}

fn seq_or_uid() -> impl Strategy<Value = SeqOrUid> {
    prop_oneof![4 => nz().prop_map(SeqOrUid::Value), 1 => Just(SeqOrUid::Asterisk)]
}

fn sequence_set() -> impl Strategy<Value = SequenceSet> {
    proptest::collection::vec(
        prop_oneof![
            seq_or_uid().prop_map(SeqRange::Single),
            (seq_or_uid(), seq_or_uid()).prop_map(|(a, b)| SeqRange::Range(a, b)),
        ],
        1..5,
    )
    .prop_map(|v| SequenceSet::new(v).unwrap())
}

fn sequence_set_arg() -> impl Strategy<Value = SequenceSetArg> {
    prop_oneof![
        5 => sequence_set().prop_map(SequenceSetArg::Set),
        1 => Just(SequenceSetArg::SavedResult),
    ]
}

fn modseq() -> impl Strategy<Value = ModSeq> {
    prop_oneof![1u64..1000, 1u64..=ModSeq::MAX].prop_map(|n| ModSeq::new(n).unwrap())
}

fn number64() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..1000, 0u64..=ModSeq::MAX]
}

fn date() -> impl Strategy<Value = Date> {
    (0u16..=9999, 1u8..=12, 1u8..=28).prop_map(|(y, m, d)| Date::new(y, m, d).unwrap())
}

fn date_time() -> impl Strategy<Value = DateTime> {
    (date(), 0u8..24, 0u8..60, 0u8..=60, -5999i16..=5999)
        .prop_map(|(d, h, m, s, z)| DateTime::new(d, h, m, s, z).unwrap())
}

fn capability() -> impl Strategy<Value = Capability<'static>> {
    prop_oneof![
        atom().prop_map(Capability::from_atom),
        prop_oneof![
            Just("IMAP4rev2"),
            Just("CONDSTORE"),
            Just("QRESYNC"),
            Just("UTF8=ACCEPT"),
            Just("AUTH=PLAIN"),
            Just("LITERAL+"),
        ]
        .prop_map(|s| Capability::from_atom(Atom::new(s).unwrap())),
    ]
}

fn status_items() -> impl Strategy<Value = Vec<StatusItem>> {
    proptest::collection::vec(proptest::sample::select(StatusItem::ALL.to_vec()), 1..5)
}

fn part() -> impl Strategy<Value = Vec<NonZeroU32>> {
    proptest::collection::vec(nz(), 0..4)
}

fn section() -> impl Strategy<Value = Section<'static>> {
    let header_list = || proptest::collection::vec(astring(), 1..3);
    (
        part(),
        proptest::option::of(prop_oneof![
            Just(SectionText::Header),
            Just(SectionText::Text),
            Just(SectionText::Mime),
            header_list().prop_map(SectionText::HeaderFields),
            header_list().prop_map(SectionText::HeaderFieldsNot),
        ]),
    )
        .prop_filter_map("MIME needs a part", |(p, t)| Section::new(p, t).ok())
}

fn partial_range() -> impl Strategy<Value = Option<PartialRange>> {
    proptest::option::of(
        (any::<u32>(), nz()).prop_map(|(offset, length)| PartialRange { offset, length }),
    )
}

fn fetch_attribute() -> impl Strategy<Value = FetchAttribute<'static>> {
    use FetchAttribute as F;
    prop_oneof![
        proptest::sample::select(vec![
            F::Envelope,
            F::Flags,
            F::InternalDate,
            F::Rfc822,
            F::Rfc822Header,
            F::Rfc822Size,
            F::Rfc822Text,
            F::Body,
            F::BodyStructure,
            F::Uid,
            F::ModSeq,
            F::EmailId,
            F::ThreadId,
            F::GmailMessageId,
            F::GmailThreadId,
            F::GmailLabels,
        ]),
        (any::<bool>(), section(), partial_range()).prop_map(|(peek, section, partial)| {
            F::BodySection {
                peek,
                section,
                partial,
            }
        }),
        (any::<bool>(), part(), partial_range()).prop_map(|(peek, part, partial)| F::Binary {
            peek,
            part,
            partial
        }),
        part().prop_map(|part| F::BinarySize { part }),
    ]
}

fn search_key() -> impl Strategy<Value = SearchKey<'static>> {
    use SearchKey as K;
    let leaf = prop_oneof![
        proptest::sample::select(vec![
            K::All,
            K::Answered,
            K::Deleted,
            K::Draft,
            K::Flagged,
            K::New,
            K::Old,
            K::Recent,
            K::Seen,
            K::Unanswered,
            K::Undeleted,
            K::Undraft,
            K::Unflagged,
            K::Unseen,
        ]),
        astring().prop_map(K::Bcc),
        astring().prop_map(K::GmailRaw),
        astring().prop_map(K::GmailLabels),
        number64().prop_map(K::GmailMessageId),
        number64().prop_map(K::GmailThreadId),
        astring().prop_map(K::Body),
        astring().prop_map(K::Cc),
        astring().prop_map(K::From),
        astring().prop_map(K::Subject),
        astring().prop_map(K::Text),
        astring().prop_map(K::To),
        (astring(), astring()).prop_map(|(h, v)| K::Header(h, v)),
        date().prop_map(K::Before),
        date().prop_map(K::On),
        date().prop_map(K::Since),
        date().prop_map(K::SentBefore),
        date().prop_map(K::SentOn),
        date().prop_map(K::SentSince),
        atom().prop_map(K::Keyword),
        atom().prop_map(K::Unkeyword),
        number64().prop_map(K::Larger),
        number64().prop_map(K::Smaller),
        nz().prop_map(K::Older),
        nz().prop_map(K::Younger),
        sequence_set_arg().prop_map(K::Uid),
        sequence_set_arg().prop_map(K::SequenceSet),
        (
            proptest::option::of((
                flag(),
                prop_oneof![
                    Just(EntryType::Private),
                    Just(EntryType::Shared),
                    Just(EntryType::All)
                ]
            )),
            number64()
        )
            .prop_map(|(e, mod_seq)| K::ModSeq {
                entry: e.map(|(flag, entry_type)| ModSeqEntry { flag, entry_type }),
                mod_seq
            }),
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|k| K::Not(Box::new(k))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| K::Or(Box::new(a), Box::new(b))),
            proptest::collection::vec(inner, 1..3).prop_map(K::And),
        ]
    })
}

fn charset() -> impl Strategy<Value = Charset<'static>> {
    prop_oneof![
        atom().prop_map(Charset::Atom),
        quoted().prop_map(Charset::Quoted)
    ]
}

fn select_parameters() -> impl Strategy<Value = Vec<SelectParameter>> {
    let qresync = (
        nz(),
        modseq(),
        proptest::option::of(sequence_set()),
        proptest::option::of((sequence_set(), sequence_set())),
    )
        .prop_map(|(uid_validity, mod_seq, known_uids, seq_match)| {
            SelectParameter::QResync(QResyncParameter {
                uid_validity,
                mod_seq,
                known_uids,
                seq_match,
            })
        });
    proptest::collection::vec(prop_oneof![Just(SelectParameter::CondStore), qresync], 0..3)
}

fn list_selection() -> impl Strategy<Value = Vec<ListSelectionOption>> {
    proptest::collection::vec(
        proptest::sample::select(vec![
            ListSelectionOption::Subscribed,
            ListSelectionOption::Remote,
            ListSelectionOption::RecursiveMatch,
            ListSelectionOption::SpecialUse,
        ]),
        0..4,
    )
    .prop_filter("RECURSIVEMATCH needs a base option", |v| {
        !v.contains(&ListSelectionOption::RecursiveMatch)
            || v.iter().any(|o| {
                matches!(
                    o,
                    ListSelectionOption::Subscribed | ListSelectionOption::SpecialUse
                )
            })
    })
}

fn list_return() -> impl Strategy<Value = Vec<ListReturnOption>> {
    proptest::collection::vec(
        prop_oneof![
            Just(ListReturnOption::Subscribed),
            Just(ListReturnOption::Children),
            Just(ListReturnOption::SpecialUse),
            status_items().prop_map(ListReturnOption::Status),
        ],
        0..4,
    )
}

fn append_message() -> impl Strategy<Value = AppendMessage<'static>> {
    let data = prop_oneof![
        literal(),
        (
            proptest::collection::vec(any::<u8>(), 0..40),
            literal_mode()
        )
            .prop_map(|(d, m)| Literal::new_binary(d, m)),
    ];
    (flags(), proptest::option::of(date_time()), data).prop_map(|(flags, date_time, data)| {
        AppendMessage {
            flags,
            date_time,
            data,
        }
    })
}

fn command_body() -> impl Strategy<Value = CommandBody<'static>> {
    use CommandBody as C;
    let simple = proptest::sample::select(vec![
        C::Capability,
        C::Noop,
        C::Logout,
        C::StartTls,
        C::Namespace,
        C::Check,
        C::Close,
        C::Unselect,
        C::Expunge,
        C::Idle,
        C::Unauthenticate,
    ]);
    let auth = (
        atom(),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..30)),
    )
        .prop_map(|(mechanism, ir)| C::Authenticate {
            mechanism,
            initial_response: ir.map(|d| Base64Data::encode(&d)),
        });
    let mailbox_cmds = (0u8..5, mailbox()).prop_map(|(k, mailbox)| match k {
        0 => C::Delete { mailbox },
        1 => C::Subscribe { mailbox },
        2 => C::Unsubscribe { mailbox },
        3 => C::GetQuotaRoot { mailbox },
        _ => C::Create {
            mailbox,
            special_use: vec![],
        },
    });
    let create = (
        mailbox(),
        proptest::collection::vec(atom().prop_map(MailboxAttribute::from_atom), 0..3),
    )
        .prop_map(|(mailbox, special_use)| C::Create {
            mailbox,
            special_use,
        });
    let select = (any::<bool>(), mailbox(), select_parameters()).prop_map(|(e, mailbox, p)| {
        if e {
            C::Examine {
                mailbox,
                parameters: p,
            }
        } else {
            C::Select {
                mailbox,
                parameters: p,
            }
        }
    });
    let list = (
        list_selection(),
        mailbox(),
        proptest::collection::vec(list_mailbox(), 1..4),
        list_return(),
    )
        .prop_map(|(selection, reference, patterns, return_options)| C::List {
            selection,
            reference,
            patterns,
            return_options,
        });
    let search = (
        any::<bool>(),
        proptest::option::of(proptest::collection::vec(
            proptest::sample::select(vec![
                SearchReturnOption::Min,
                SearchReturnOption::Max,
                SearchReturnOption::All,
                SearchReturnOption::Count,
                SearchReturnOption::Save,
            ]),
            0..4,
        )),
        proptest::option::of(charset()),
        proptest::collection::vec(search_key(), 1..4),
    )
        .prop_map(|(uid, return_options, charset, criteria)| C::Search {
            uid,
            return_options,
            charset,
            criteria,
        });
    let fetch = (
        any::<bool>(),
        sequence_set_arg(),
        prop_oneof![
            Just(FetchAttributes::All),
            Just(FetchAttributes::Fast),
            Just(FetchAttributes::Full),
            proptest::collection::vec(fetch_attribute(), 1..5).prop_map(FetchAttributes::List),
        ],
        proptest::collection::vec(
            prop_oneof![
                modseq().prop_map(FetchModifier::ChangedSince),
                Just(FetchModifier::Vanished)
            ],
            0..3,
        ),
    )
        .prop_map(|(uid, sequence_set, attributes, modifiers)| C::Fetch {
            uid,
            sequence_set,
            attributes,
            modifiers,
        });
    let store = (
        any::<bool>(),
        sequence_set_arg(),
        proptest::option::of(number64()),
        proptest::sample::select(vec![StoreKind::Replace, StoreKind::Add, StoreKind::Remove]),
        any::<bool>(),
        flags(),
    )
        .prop_map(
            |(uid, sequence_set, unchanged_since, kind, silent, flags)| C::Store {
                uid,
                sequence_set,
                unchanged_since,
                kind,
                silent,
                flags,
            },
        );
    let copy_move = (any::<bool>(), any::<bool>(), sequence_set_arg(), mailbox()).prop_map(
        |(is_move, uid, sequence_set, mailbox)| {
            if is_move {
                C::Move {
                    uid,
                    sequence_set,
                    mailbox,
                }
            } else {
                C::Copy {
                    uid,
                    sequence_set,
                    mailbox,
                }
            }
        },
    );
    let id = proptest::option::of(proptest::collection::vec(
        (istring(), proptest::option::of(istring()).prop_map(NString)),
        0..4,
    ))
    .prop_map(|parameters| C::Id { parameters });
    let quota = prop_oneof![
        astring().prop_map(|root| C::GetQuota { root }),
        (
            astring(),
            proptest::collection::vec(
                (atom().prop_map(QuotaResource::from_atom), number64()),
                0..3
            )
        )
            .prop_map(|(root, limits)| C::SetQuota { root, limits }),
    ];
    let search_keys = || proptest::collection::vec(search_key(), 1..3);
    let sort = (
        any::<bool>(),
        proptest::option::of(proptest::collection::vec(
            proptest::sample::select(vec![
                SearchReturnOption::Min,
                SearchReturnOption::Max,
                SearchReturnOption::All,
                SearchReturnOption::Count,
            ]),
            0..3,
        )),
        proptest::collection::vec(
            (
                any::<bool>(),
                proptest::sample::select(vec![
                    SortKey::Arrival,
                    SortKey::Cc,
                    SortKey::Date,
                    SortKey::From,
                    SortKey::Size,
                    SortKey::Subject,
                    SortKey::To,
                    SortKey::DisplayFrom,
                    SortKey::DisplayTo,
                ]),
            )
                .prop_map(|(reverse, key)| SortCriterion { reverse, key }),
            1..4,
        ),
        charset(),
        search_keys(),
    )
        .prop_map(|(uid, return_options, criteria, charset, search)| C::Sort {
            uid,
            return_options,
            criteria,
            charset,
            search,
        });
    let thread = (any::<bool>(), atom(), charset(), search_keys()).prop_map(
        |(uid, algorithm, charset, search)| C::Thread {
            uid,
            algorithm: ThreadAlgorithm::from_atom(algorithm),
            charset,
            search,
        },
    );
    let metadata_value = prop_oneof![
        proptest::option::of(istring()).prop_map(NString),
        (
            proptest::collection::vec(any::<u8>(), 0..20),
            literal_mode()
        )
            .prop_map(|(d, m)| NString(Some(IString::Literal(Literal::new_binary(d, m))))),
    ];
    let metadata = prop_oneof![
        (
            proptest::collection::vec(
                prop_oneof![
                    any::<u32>().prop_map(GetMetadataOption::MaxSize),
                    proptest::sample::select(vec![
                        MetadataDepth::Zero,
                        MetadataDepth::One,
                        MetadataDepth::Infinity
                    ])
                    .prop_map(GetMetadataOption::Depth),
                ],
                0..3
            ),
            mailbox(),
            proptest::collection::vec(astring(), 1..3)
        )
            .prop_map(|(options, mailbox, entries)| C::GetMetadata {
                options,
                mailbox,
                entries
            }),
        (
            mailbox(),
            proptest::collection::vec((astring(), metadata_value), 1..3)
        )
            .prop_map(|(mailbox, entries)| C::SetMetadata { mailbox, entries }),
    ];
    prop_oneof![
        simple,
        sort,
        thread,
        metadata,
        auth,
        (astring(), astring()).prop_map(|(username, password)| C::Login {
            username,
            password: password.into()
        }),
        proptest::collection::vec(capability(), 1..4)
            .prop_map(|capabilities| C::Enable { capabilities }),
        select,
        mailbox_cmds,
        create,
        (mailbox(), mailbox()).prop_map(|(from, to)| C::Rename { from, to }),
        list,
        (mailbox(), list_mailbox()).prop_map(|(reference, pattern)| C::Lsub { reference, pattern }),
        (mailbox(), status_items()).prop_map(|(mailbox, items)| C::Status { mailbox, items }),
        (mailbox(), proptest::collection::vec(append_message(), 1..3))
            .prop_map(|(mailbox, messages)| C::Append { mailbox, messages }),
        sequence_set_arg().prop_map(|sequence_set| C::UidExpunge { sequence_set }),
        search,
        fetch,
        store,
        copy_move,
        id,
        atom().prop_map(|algorithm| C::Compress { algorithm }),
        quota,
    ]
}

fn command() -> impl Strategy<Value = Command<'static>> {
    (tag(), command_body()).prop_map(|(tag, body)| Command::new(tag, body))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn parse_encode_round_trip(cmd in command()) {
        let bytes = to_bytes(&cmd);
        let parsed = parse_command(&bytes);
        prop_assert!(parsed.is_ok(), "{:?} -> {:?}", String::from_utf8_lossy(&bytes), parsed);
        let parsed = parsed.unwrap();
        prop_assert_eq!(&parsed, &cmd);
        prop_assert_eq!(to_bytes(&parsed), bytes.clone());
        cas_imap_proto::fuzzing::command_roundtrip(&bytes);
        cas_imap_proto::fuzzing::check_command(&parsed, &ParseOptions::default());
        // Owned copies compare equal.
        prop_assert_eq!(parsed.into_owned(), cmd);
    }

    #[test]
    fn fragments_concatenate_to_the_bytes(cmd in command()) {
        let bytes = to_bytes(&cmd);
        let mut joined = Vec::new();
        for f in to_fragments(&cmd, LiteralPolicy::AsGiven) {
            match f {
                Fragment::Line(l) => {
                    // Every line fragment ends with CRLF (a literal announcement or the end).
                    prop_assert!(l.ends_with(b"\r\n"));
                    joined.extend_from_slice(&l);
                }
                Fragment::Literal { data, .. } => joined.extend_from_slice(&data),
            }
        }
        prop_assert_eq!(joined, bytes);
    }

    #[test]
    fn literal_policies_only_change_announcements(cmd in command()) {
        for policy in [LiteralPolicy::Sync, LiteralPolicy::LiteralPlus, LiteralPolicy::LiteralMinus] {
            let mut out = Encoder::with_policy(policy);
            cmd.encode_to(&mut out);
            let bytes = out.into_bytes();
            let parsed = parse_command(&bytes);
            prop_assert!(parsed.is_ok());
            // Same command once literal modes are ignored: re-encoding with the same policy
            // gives the same bytes.
            let mut again = Encoder::with_policy(policy);
            parsed.unwrap().encode_to(&mut again);
            prop_assert_eq!(again.into_bytes(), bytes);
        }
    }

    #[test]
    fn utf8_accept_parses_everything_default_does(cmd in command()) {
        let bytes = to_bytes(&cmd);
        let opts = ParseOptions::default().with_utf8_accept(true);
        let parsed = parse_command_with(&bytes, &opts);
        prop_assert!(parsed.is_ok());
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        cas_imap_proto::fuzzing::command_roundtrip(&data);
        cas_imap_proto::fuzzing::command(&data);
    }

    #[test]
    fn mutated_commands_never_panic(cmd in command(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = to_bytes(&cmd);
        let i = at.index(bytes.len());
        bytes[i] = byte;
        cas_imap_proto::fuzzing::command_roundtrip(&bytes);
        let mut truncated = to_bytes(&cmd);
        truncated.truncate(i);
        cas_imap_proto::fuzzing::command_roundtrip(&truncated);
    }
}

/// `Encode::encode` spelled as a method, so the tests read naturally.
trait EncodeTo {
    fn encode_to(&self, out: &mut Encoder);
}

impl EncodeTo for Command<'_> {
    fn encode_to(&self, out: &mut Encoder) {
        cas_imap_proto::encode::Encode::encode(self, out);
    }
}

proptest! {
    #[test]
    fn mutf7_round_trip(name in "\\PC{0,16}") {
        let wire = mutf7::encode(&name);
        prop_assert!(wire.bytes().all(|b| (0x20..=0x7e).contains(&b)));
        prop_assert_eq!(mutf7::decode(wire.as_bytes()).unwrap(), name);
    }

    #[test]
    fn mutf7_decode_accepts_only_canonical_forms(wire in "[ -~]{0,16}") {
        // Whatever decodes must encode back to the same bytes: one wire form per name.
        if let Ok(name) = mutf7::decode(wire.as_bytes()) {
            prop_assert_eq!(mutf7::encode(&name), wire);
        }
    }

    #[test]
    fn astring_choice_always_parses(bytes in prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40),
        proptest::collection::vec(1u8..=255, 0..40),
    ]) {
        // The representation chosen for any bytes encodes to valid syntax that reads back
        // the same bytes (LOGIN takes two astrings).
        let Ok(a) = AString::new(bytes.clone()) else {
            // Only NUL is refused: no astring form can carry it.
            prop_assert!(bytes.contains(&0));
            prop_assert!(matches!(
                AString::from_bytes(bytes.clone()),
                AString::String(IString::Literal(l)) if l.is_binary()
            ));
            return Ok(());
        };
        let cmd = Command::new(
            Tag::new("t").unwrap(),
            CommandBody::Login { username: a.clone(), password: a.into() },
        );
        let encoded = to_bytes(&cmd);
        let parsed = parse_command(&encoded);
        prop_assert!(parsed.is_ok(), "{:?}", encoded);
        let CommandBody::Login { username, .. } = parsed.unwrap().body else {
            panic!("not LOGIN");
        };
        prop_assert_eq!(username.as_bytes(), &bytes[..]);
    }

    #[test]
    fn base64_round_trip(data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let enc = Base64Data::encode(&data);
        prop_assert_eq!(enc.decode().unwrap(), data);
        let mut line = enc.as_bytes().to_vec();
        line.extend_from_slice(b"\r\n");
        let parsed = cas_imap_proto::command::parse_authenticate_data(&line).unwrap();
        prop_assert_eq!(
            parsed,
            cas_imap_proto::command::AuthenticateData::Response(enc)
        );
    }
}
