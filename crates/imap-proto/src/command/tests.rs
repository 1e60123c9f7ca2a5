//! Known-answer tests: the example commands of RFC 3501 §6 and RFC 9051 §6, the extension
//! RFCs' examples, encoder output and error cases.

use super::*;
use crate::encode::{Fragment, LiteralPolicy, to_bytes, to_fragments};
use crate::types::{LiteralMode, Quoted, SectionText, SeqOrUid, SeqRange};

fn parse_ok(line: &[u8]) -> Command<'_> {
    match parse_command(line) {
        Ok(c) => {
            crate::fuzzing::command_roundtrip(line);
            c
        }
        Err(e) => panic!("{:?} failed: {e:?}", String::from_utf8_lossy(line)),
    }
}

/// Parses and checks that the encoder reproduces the input exactly.
fn canonical(line: &[u8]) -> Command<'_> {
    let c = parse_ok(line);
    assert_eq!(
        String::from_utf8_lossy(&to_bytes(&c)),
        String::from_utf8_lossy(line)
    );
    c
}

fn err(line: &[u8]) -> CommandParseError {
    match parse_command(line) {
        Ok(c) => panic!("{:?} parsed as {c:?}", String::from_utf8_lossy(line)),
        Err(e) => e,
    }
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

fn range(a: u32, b: u32) -> SeqRange {
    SeqRange::Range(SeqOrUid::Value(nz(a)), SeqOrUid::Value(nz(b)))
}

fn set(ranges: Vec<SeqRange>) -> SequenceSetArg {
    SequenceSetArg::Set(SequenceSet::new(ranges).unwrap())
}

fn atom_s(s: &str) -> AString<'_> {
    AString::Atom(crate::types::AtomExt::new(s).unwrap())
}

fn quoted_s(s: &str) -> AString<'_> {
    AString::String(IString::Quoted(Quoted::new(s.as_bytes()).unwrap()))
}

fn mbox(s: &str) -> Mailbox<'_> {
    Mailbox::from_wire(s.as_bytes()).unwrap()
}

#[test]
fn rfc3501_section6_any_and_nonauth_state() {
    // §6.1.1 - §6.1.3
    assert_eq!(
        canonical(b"abcd CAPABILITY\r\n").body,
        CommandBody::Capability
    );
    assert_eq!(canonical(b"a002 NOOP\r\n").body, CommandBody::Noop);
    assert_eq!(canonical(b"a047 NOOP\r\n").body, CommandBody::Noop);
    assert_eq!(canonical(b"A023 LOGOUT\r\n").body, CommandBody::Logout);
    // §6.2.1
    assert_eq!(canonical(b"a002 STARTTLS\r\n").body, CommandBody::StartTls);
    // §6.2.2
    let c = canonical(b"A001 AUTHENTICATE GSSAPI\r\n");
    assert!(matches!(
        c.body,
        CommandBody::Authenticate { ref mechanism, initial_response: None } if mechanism.as_str() == "GSSAPI"
    ));
    // §6.2.3
    let c = canonical(b"a001 LOGIN SMITH SESAME\r\n");
    assert_eq!(
        c.body,
        CommandBody::Login {
            username: atom_s("SMITH"),
            password: Secret::new(atom_s("SESAME"))
        }
    );
}

#[test]
fn rfc3501_section6_authenticated_state() {
    // §6.3.1, §6.3.2
    assert_eq!(
        canonical(b"A142 SELECT INBOX\r\n").body,
        CommandBody::Select {
            mailbox: Mailbox::Inbox,
            parameters: vec![]
        }
    );
    assert_eq!(
        canonical(b"A932 EXAMINE blurdybloop\r\n").body,
        CommandBody::Examine {
            mailbox: mbox("blurdybloop"),
            parameters: vec![]
        }
    );
    // §6.3.3 - §6.3.7
    canonical(b"A003 CREATE owatagusiam/\r\n");
    canonical(b"A004 CREATE owatagusiam/blurdybloop\r\n");
    assert_eq!(
        canonical(b"A683 DELETE blurdybloop\r\n").body,
        CommandBody::Delete {
            mailbox: mbox("blurdybloop")
        }
    );
    canonical(b"A684 DELETE foo\r\n");
    canonical(b"A685 DELETE foo/bar\r\n");
    assert_eq!(
        canonical(b"A683 RENAME blurdybloop sarasoop\r\n").body,
        CommandBody::Rename {
            from: mbox("blurdybloop"),
            to: mbox("sarasoop")
        }
    );
    assert_eq!(
        canonical(b"Z433 RENAME INBOX old-mail\r\n").body,
        CommandBody::Rename {
            from: Mailbox::Inbox,
            to: mbox("old-mail")
        }
    );
    canonical(b"A002 SUBSCRIBE #news.comp.mail.mime\r\n");
    canonical(b"A002 UNSUBSCRIBE #news.comp.mail.mime\r\n");
    // §6.3.8
    let c = canonical(b"A101 LIST \"\" \"\"\r\n");
    assert_eq!(
        c.body,
        CommandBody::List {
            selection: vec![],
            reference: Mailbox::from_astring(quoted_s("")).unwrap(),
            patterns: vec![ListMailbox::String(IString::Quoted(
                Quoted::new(&b""[..]).unwrap()
            ))],
            return_options: vec![],
        }
    );
    canonical(b"A102 LIST #news.comp.mail.misc \"\"\r\n");
    canonical(b"A103 LIST /usr/staff/jones \"\"\r\n");
    let c = canonical(b"A202 LIST ~/Mail/ %\r\n");
    assert!(
        matches!(c.body, CommandBody::List { ref patterns, .. } if patterns[0].as_bytes() == b"%")
    );
    canonical(b"A682 LIST \"\" *\r\n");
    // §6.3.9
    canonical(b"A002 LSUB \"#news.\" \"comp.mail.*\"\r\n");
    canonical(b"A003 LSUB \"#news.\" \"comp.%\"\r\n");
    // §6.3.10
    assert_eq!(
        canonical(b"A042 STATUS blurdybloop (UIDNEXT MESSAGES)\r\n").body,
        CommandBody::Status {
            mailbox: mbox("blurdybloop"),
            items: vec![StatusItem::UidNext, StatusItem::Messages]
        }
    );
}

const APPEND_MESSAGE: &[u8] = b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n\
From: Fred Foobar <foobar@Blurdybloop.COM>\r\n\
Subject: afternoon meeting\r\n\
To: mooch@owatagu.siam.edu\r\n\
Message-Id: <B27397-0100000@Blurdybloop.COM>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\
\r\n\
Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n";

#[test]
fn rfc3501_append_example() {
    // §6.3.11: 310 octets in RFC 3501's example.
    assert_eq!(APPEND_MESSAGE.len(), 310);
    let mut line = b"A003 APPEND saved-messages (\\Seen) {310}\r\n".to_vec();
    line.extend_from_slice(APPEND_MESSAGE);
    line.extend_from_slice(b"\r\n");
    let c = canonical(&line);
    let CommandBody::Append { mailbox, messages } = &c.body else {
        panic!("{c:?}")
    };
    assert_eq!(mailbox, &mbox("saved-messages"));
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].flags, vec![Flag::Seen]);
    assert_eq!(messages[0].date_time, None);
    assert_eq!(messages[0].data.data(), APPEND_MESSAGE);
    // Zero-copy: the literal borrows from the message.
    assert!(matches!(messages[0].data.data_cow(), Cow::Borrowed(_)));
    // A client encoder splits at the literal so it can wait for `+`.
    let frags = to_fragments(&c, LiteralPolicy::AsGiven);
    assert_eq!(
        frags[0],
        Fragment::Line(b"A003 APPEND saved-messages (\\Seen) {310}\r\n".to_vec())
    );
    assert_eq!(
        frags[1],
        Fragment::Literal {
            data: APPEND_MESSAGE.to_vec(),
            mode: LiteralMode::Sync
        }
    );
    assert_eq!(frags[2], Fragment::Line(b"\r\n".to_vec()));
    // With LITERAL+ the same command is announced non-synchronizing.
    let frags = to_fragments(&c, LiteralPolicy::LiteralPlus);
    assert_eq!(
        frags[0],
        Fragment::Line(b"A003 APPEND saved-messages (\\Seen) {310+}\r\n".to_vec())
    );
}

#[test]
fn append_with_date_time_multiappend_and_literal8() {
    let mut line =
        b"A003 APPEND saved-messages (\\Seen) \" 7-Feb-1994 21:52:25 -0800\" {310}\r\n".to_vec();
    line.extend_from_slice(APPEND_MESSAGE);
    line.extend_from_slice(b" ~{5+}\r\nhe\0lo\r\n");
    let c = canonical(&line);
    let CommandBody::Append { messages, .. } = &c.body else {
        panic!()
    };
    assert_eq!(messages.len(), 2);
    let dt = messages[0].date_time.unwrap();
    assert_eq!(
        (
            dt.date().day(),
            dt.date().month(),
            dt.hour(),
            dt.zone_minutes()
        ),
        (7, 2, 21, -480)
    );
    assert!(messages[1].data.is_binary());
    assert_eq!(messages[1].data.mode(), LiteralMode::NonSync);
    assert_eq!(messages[1].data.data(), b"he\0lo");
    // NUL needs literal8.
    assert_eq!(
        err(b"a APPEND x {5}\r\nhe\0lo\r\n").kind,
        ParseErrorKind::Syntax
    );
    // The literal must be complete.
    assert_eq!(
        err(b"a APPEND x {50}\r\nshort\r\n").kind,
        ParseErrorKind::Incomplete
    );
}

#[test]
fn rfc3501_section6_selected_state() {
    assert_eq!(canonical(b"FXXZ CHECK\r\n").body, CommandBody::Check);
    assert_eq!(canonical(b"A341 CLOSE\r\n").body, CommandBody::Close);
    assert_eq!(canonical(b"A202 EXPUNGE\r\n").body, CommandBody::Expunge);
    // §6.4.4
    let c = canonical(b"A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n");
    assert_eq!(
        c.body,
        CommandBody::Search {
            uid: false,
            return_options: None,
            charset: None,
            criteria: vec![
                SearchKey::Flagged,
                SearchKey::Since(Date::new(1994, 2, 1).unwrap()),
                SearchKey::Not(Box::new(SearchKey::From(quoted_s("Smith")))),
            ],
        }
    );
    canonical(b"A283 SEARCH TEXT \"string not in mailbox\"\r\n");
    let c = canonical(b"A284 SEARCH CHARSET UTF-8 TEXT {6}\r\nXXXXXX\r\n");
    let CommandBody::Search {
        charset, criteria, ..
    } = &c.body
    else {
        panic!()
    };
    assert_eq!(charset.as_ref().unwrap().as_bytes(), b"UTF-8");
    assert!(
        matches!(&criteria[0], SearchKey::Text(AString::String(IString::Literal(l))) if l.data() == b"XXXXXX")
    );
    // §6.4.5
    let c = canonical(b"A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])\r\n");
    assert_eq!(
        c.body,
        CommandBody::Fetch {
            uid: false,
            sequence_set: set(vec![range(2, 4)]),
            attributes: FetchAttributes::List(vec![
                FetchAttribute::Flags,
                FetchAttribute::BodySection {
                    peek: false,
                    section: Section::new(
                        vec![],
                        Some(SectionText::HeaderFields(vec![
                            atom_s("DATE"),
                            atom_s("FROM")
                        ]))
                    )
                    .unwrap(),
                    partial: None,
                },
            ]),
            modifiers: vec![],
        }
    );
    // §6.4.6
    assert_eq!(
        canonical(b"A003 STORE 2:4 +FLAGS (\\Deleted)\r\n").body,
        CommandBody::Store {
            uid: false,
            sequence_set: set(vec![range(2, 4)]),
            unchanged_since: None,
            kind: StoreKind::Add,
            silent: false,
            flags: vec![Flag::Deleted],
        }
    );
    // §6.4.7
    assert_eq!(
        canonical(b"A003 COPY 2:4 MEETING\r\n").body,
        CommandBody::Copy {
            uid: false,
            sequence_set: set(vec![range(2, 4)]),
            mailbox: mbox("MEETING")
        }
    );
    // §6.4.8
    let c = canonical(b"A999 UID FETCH 4827313:4828442 FLAGS\r\n");
    assert_eq!(
        c.body,
        CommandBody::Fetch {
            uid: true,
            sequence_set: set(vec![range(4827313, 4828442)]),
            attributes: FetchAttributes::List(vec![FetchAttribute::Flags]),
            modifiers: vec![],
        }
    );
}

#[test]
fn rfc3501_experimental_command_is_unknown_with_tag() {
    // §6.5.1: "A442 XPIG-LATIN" gets "A442 BAD".
    let e = err(b"A442 XPIG-LATIN\r\n");
    assert_eq!(e.kind, ParseErrorKind::UnknownCommand);
    assert_eq!(e.tag.unwrap().as_str(), "A442");
    assert_eq!(e.offset, 5);
}

#[test]
fn rfc9051_section6_examples() {
    // §6.2.2 with SASL-IR (RFC 4959) and the empty initial response.
    let c = canonical(b"A01 AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=\r\n");
    let CommandBody::Authenticate {
        initial_response: Some(ir),
        ..
    } = &c.body
    else {
        panic!()
    };
    assert_eq!(ir.decode().unwrap(), b"test\0test\0test");
    let c = canonical(b"A01 AUTHENTICATE EXTERNAL =\r\n");
    assert!(
        matches!(&c.body, CommandBody::Authenticate { initial_response: Some(ir), .. } if ir.is_empty())
    );
    // §6.3.1
    let c = canonical(b"t2 ENABLE CONDSTORE X-GOOD-IDEA\r\n");
    assert_eq!(
        c.body,
        CommandBody::Enable {
            capabilities: vec![
                Capability::CondStore,
                Capability::Other(Atom::new("X-GOOD-IDEA").unwrap())
            ]
        }
    );
    canonical(b"a1 ENABLE IMAP4rev2\r\n");
    // §6.3.9 (LIST-EXTENDED, LIST-STATUS, SPECIAL-USE)
    let c = parse_ok(b"A03 LIST () \"\" \"%\" RETURN (CHILDREN)\r\n");
    assert!(
        matches!(&c.body, CommandBody::List { selection, return_options, .. }
        if selection.is_empty() && return_options == &[ListReturnOption::Children])
    );
    canonical(b"A02 LIST (SUBSCRIBED) \"\" \"*\"\r\n");
    let c = canonical(b"A04 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\"\r\n");
    assert!(matches!(&c.body, CommandBody::List { selection, .. }
        if selection == &[ListSelectionOption::Subscribed, ListSelectionOption::RecursiveMatch]));
    canonical(b"A05 LIST (SUBSCRIBED REMOTE) \"\" \"*\" RETURN (CHILDREN)\r\n");
    let c = canonical(b"C01 LIST \"\" (\"INBOX\" \"Drafts\" \"Sent/%\")\r\n");
    assert!(matches!(&c.body, CommandBody::List { patterns, .. } if patterns.len() == 3));
    let c = canonical(b"A01 LIST \"\" % RETURN (STATUS (MESSAGES UNSEEN))\r\n");
    assert!(matches!(&c.body, CommandBody::List { return_options, .. }
        if return_options == &[ListReturnOption::Status(vec![StatusItem::Messages, StatusItem::Unseen])]));
    canonical(b"t1 LIST (SPECIAL-USE) \"\" \"*\"\r\n");
    canonical(b"t2 LIST \"\" \"%\" RETURN (SPECIAL-USE)\r\n");
    let c = canonical(b"t1 CREATE MySpecial (USE (\\Drafts \\Sent))\r\n");
    assert_eq!(
        c.body,
        CommandBody::Create {
            mailbox: mbox("MySpecial"),
            special_use: vec![MailboxAttribute::Drafts, MailboxAttribute::Sent]
        }
    );
    // §6.3.10 - §6.3.13
    assert_eq!(
        canonical(b"A001 NAMESPACE\r\n").body,
        CommandBody::Namespace
    );
    canonical(
        b"A042 STATUS blurdybloop (UIDNEXT MESSAGES SIZE DELETED HIGHESTMODSEQ APPENDLIMIT)\r\n",
    );
    assert_eq!(canonical(b"A002 IDLE\r\n").body, CommandBody::Idle);
    // §6.4.2
    assert_eq!(canonical(b"A342 UNSELECT\r\n").body, CommandBody::Unselect);
    // §6.4.4 (ESEARCH and SEARCHRES)
    let c = canonical(
        b"A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n",
    );
    assert!(
        matches!(&c.body, CommandBody::Search { return_options: Some(o), .. }
        if o == &[SearchReturnOption::Min, SearchReturnOption::Count])
    );
    let c = canonical(b"A283 SEARCH RETURN () FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n");
    assert!(matches!(&c.body, CommandBody::Search { return_options: Some(o), .. } if o.is_empty()));
    let c =
        canonical(b"A285 SEARCH CHARSET UTF-8 TEXT {8}\r\n\xd0\x9c\xd0\xb0\xd1\x88\xd0\xb0\r\n");
    assert!(matches!(
        &c.body,
        CommandBody::Search {
            charset: Some(_),
            ..
        }
    ));
    canonical(b"A286 SEARCH CHARSET WHATEVER TEXT \"foo\"\r\n");
    canonical(b"A300 SEARCH RETURN (SAVE) SINCE 1-Jan-2004 NOT FROM \"Smith\"\r\n");
    let c = canonical(b"A301 SEARCH $ SMALLER 4096\r\n");
    assert_eq!(
        c.body,
        CommandBody::Search {
            uid: false,
            return_options: None,
            charset: None,
            criteria: vec![
                SearchKey::SequenceSet(SequenceSetArg::SavedResult),
                SearchKey::Smaller(4096)
            ],
        }
    );
    canonical(b"A301 UID SEARCH UID $ SMALLER 4096\r\n");
    canonical(b"A302 UID FETCH $ (UID FLAGS)\r\n");
    canonical(b"A303 UID COPY $ \"Other Messages\"\r\n");
    canonical(
        b"A284 SEARCH RETURN (ALL) OR (FROM \"a\" SUBJECT \"b\") (TO c HEADER \"X-Foo\" \"\")\r\n",
    );
    // §6.4.8 MOVE, §6.4.9 UID EXPUNGE
    canonical(b"A003 MOVE 2:4 MEETING\r\n");
    let c = canonical(b"a UID MOVE 42:69 foo\r\n");
    assert!(matches!(c.body, CommandBody::Move { uid: true, .. }));
    assert_eq!(
        canonical(b"A202 UID EXPUNGE 3000:3002\r\n").body,
        CommandBody::UidExpunge {
            sequence_set: set(vec![range(3000, 3002)])
        }
    );
}

#[test]
fn search_keys_all_forms() {
    let line = b"a UID SEARCH RETURN (MIN MAX ALL COUNT SAVE) CHARSET \"UTF-8\" ALL ANSWERED BCC x BEFORE 1-Feb-1994 \
BODY y CC z DELETED DRAFT FLAGGED FROM f HEADER Subject s KEYWORD $Junk LARGER 10 NEW NOT SEEN OLD \
OLDER 3600 ON 2-Mar-2000 OR RECENT UNSEEN SENTBEFORE 1-Jan-2001 SENTON 1-Jan-2001 SENTSINCE 1-Jan-2001 \
SINCE 31-Dec-1999 SMALLER 20 SUBJECT t TEXT u TO v UID 1:*,5 UNANSWERED UNDELETED UNDRAFT UNFLAGGED \
UNKEYWORD foo UNSEEN YOUNGER 60 1,2:3 (SEEN FLAGGED) MODSEQ 5 MODSEQ \"/flags/\\\\Seen\" priv 0\r\n";
    let c = canonical(line);
    let CommandBody::Search { criteria, .. } = &c.body else {
        panic!()
    };
    assert_eq!(criteria.len(), 39);
    assert_eq!(
        criteria[38],
        SearchKey::ModSeq {
            entry: Some(ModSeqEntry {
                flag: Flag::Seen,
                entry_type: EntryType::Private
            }),
            mod_seq: 0
        }
    );
    // RFC 7162 §3.1.5 example.
    let c = parse_ok(b"a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338\r\n");
    assert!(matches!(&c.body, CommandBody::Search { criteria, .. }
        if criteria[0] == SearchKey::ModSeq { entry: Some(ModSeqEntry { flag: Flag::Draft, entry_type: EntryType::All }), mod_seq: 620162338 }));
    // Keywords are case-insensitive; dates may be quoted.
    let c = parse_ok(b"a search since \"1-feb-1994\" or seen not deleted\r\n");
    assert_eq!(
        to_bytes(&c),
        b"a SEARCH SINCE 1-Feb-1994 OR SEEN NOT DELETED\r\n"
    );
}

#[test]
fn search_depth_is_bounded() {
    let deep = |n: usize| {
        let mut v = b"a SEARCH ".to_vec();
        v.extend(std::iter::repeat_n(b'(', n));
        v.extend_from_slice(b"ALL");
        v.extend(std::iter::repeat_n(b')', n));
        v.extend_from_slice(b"\r\n");
        v
    };
    assert!(parse_command(&deep(32)).is_ok());
    assert_eq!(err(&deep(33)).kind, ParseErrorKind::TooDeep);
    assert_eq!(err(&deep(100_000)).kind, ParseErrorKind::TooDeep);
    let mut nots = b"a SEARCH ".to_vec();
    for _ in 0..10_000 {
        nots.extend_from_slice(b"NOT ");
    }
    nots.extend_from_slice(b"ALL\r\n");
    assert_eq!(err(&nots).kind, ParseErrorKind::TooDeep);
    let mut ors = b"a SEARCH ".to_vec();
    for _ in 0..5000 {
        ors.extend_from_slice(b"OR ALL ");
    }
    ors.extend_from_slice(b"ALL\r\n");
    assert_eq!(err(&ors).kind, ParseErrorKind::TooDeep);
    let opts = ParseOptions::default().with_max_depth(2);
    assert!(parse_command_with(b"a SEARCH NOT NOT ALL\r\n", &opts).is_ok());
    assert!(parse_command_with(b"a SEARCH NOT NOT NOT ALL\r\n", &opts).is_err());
}

#[test]
fn fetch_attributes_all_forms() {
    let c = canonical(b"a FETCH 1:* ALL\r\n");
    assert!(matches!(
        &c.body,
        CommandBody::Fetch {
            attributes: FetchAttributes::All,
            ..
        }
    ));
    canonical(b"a FETCH 1 FULL\r\n");
    canonical(b"a FETCH 1 FAST\r\n");
    let c = canonical(
        b"a FETCH 1 (ENVELOPE FLAGS INTERNALDATE RFC822 RFC822.HEADER RFC822.SIZE RFC822.TEXT BODY \
BODYSTRUCTURE UID MODSEQ EMAILID THREADID BODY[] BODY.PEEK[1.2.MIME] BODY[TEXT]<0.100> \
BODY[1.HEADER.FIELDS.NOT (Received)] BINARY.PEEK[1.2]<0.1024> BINARY.SIZE[1] BINARY[])\r\n",
    );
    let CommandBody::Fetch {
        attributes: FetchAttributes::List(items),
        ..
    } = &c.body
    else {
        panic!()
    };
    assert_eq!(items.len(), 20);
    assert_eq!(
        items[15],
        FetchAttribute::BodySection {
            peek: false,
            section: Section::new(vec![], Some(SectionText::Text)).unwrap(),
            partial: Some(PartialRange {
                offset: 0,
                length: nz(100)
            }),
        }
    );
    assert_eq!(
        items[17],
        FetchAttribute::Binary {
            peek: true,
            part: vec![nz(1), nz(2)],
            partial: Some(PartialRange {
                offset: 0,
                length: nz(1024)
            })
        }
    );
    // RFC 7162 modifiers.
    let c = parse_ok(b"s101 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n");
    assert!(matches!(&c.body, CommandBody::Fetch { modifiers, .. }
        if modifiers == &[FetchModifier::ChangedSince(ModSeq::new(12345).unwrap()), FetchModifier::Vanished]));
    // Single attribute without parentheses is canonical; `(FLAGS)` encodes as `FLAGS`.
    assert_eq!(
        to_bytes(&parse_ok(
            b"s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)\r\n"
        )),
        b"s100 UID FETCH 1:* FLAGS (CHANGEDSINCE 12345)\r\n"
    );
    // Bad forms.
    assert!(parse_command(b"a FETCH 1 BODY[MIME]\r\n").is_err());
    assert!(parse_command(b"a FETCH 1 BODY.PEEK\r\n").is_err());
    assert!(parse_command(b"a FETCH 1 BODY[]<5>\r\n").is_err());
    assert!(parse_command(b"a FETCH 1 (FLAGS\r\n").is_err());
    assert!(parse_command(b"a FETCH 1 ()\r\n").is_err());
    assert_eq!(err(b"a FETCH 0:3 FLAGS\r\n").kind, ParseErrorKind::Syntax);
    assert_eq!(
        err(b"a FETCH 4294967296 FLAGS\r\n").kind,
        ParseErrorKind::NumberOverflow
    );
}

#[test]
fn store_forms() {
    let c = canonical(
        b"a103 UID STORE 6,4,8 (UNCHANGEDSINCE 12121230045) +FLAGS.SILENT (\\Deleted)\r\n",
    );
    assert_eq!(
        c.body,
        CommandBody::Store {
            uid: true,
            sequence_set: set(vec![
                SeqRange::Single(SeqOrUid::Value(nz(6))),
                SeqRange::Single(SeqOrUid::Value(nz(4))),
                SeqRange::Single(SeqOrUid::Value(nz(8)))
            ]),
            unchanged_since: Some(12121230045),
            kind: StoreKind::Add,
            silent: true,
            flags: vec![Flag::Deleted],
        }
    );
    canonical(b"a104 STORE 7,5,9 (UNCHANGEDSINCE 0) FLAGS.SILENT (\\Seen)\r\n");
    let c = parse_ok(b"A004 STORE 1 -FLAGS \\Seen \\Flagged $Label1\r\n");
    assert_eq!(
        to_bytes(&c),
        b"A004 STORE 1 -FLAGS (\\Seen \\Flagged $Label1)\r\n"
    );
    canonical(b"a STORE 1:* FLAGS ()\r\n");
    assert!(parse_command(b"a STORE 1 FLAGS (\\*)\r\n").is_err());
    assert!(parse_command(b"a STORE 1 FLAGZ (\\Seen)\r\n").is_err());
}

#[test]
fn select_with_condstore_and_qresync() {
    let c = canonical(b"A160 SELECT INBOX (CONDSTORE)\r\n");
    assert_eq!(
        c.body,
        CommandBody::Select {
            mailbox: Mailbox::Inbox,
            parameters: vec![SelectParameter::CondStore]
        }
    );
    let c = canonical(
        b"A142 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n",
    );
    let CommandBody::Select { parameters, .. } = &c.body else {
        panic!()
    };
    let SelectParameter::QResync(q) = &parameters[0] else {
        panic!()
    };
    assert_eq!(q.uid_validity.get(), 67890007);
    assert_eq!(q.mod_seq.get(), 20050715194045000);
    assert_eq!(q.known_uids.as_ref().unwrap().ranges().len(), 3);
    assert!(q.seq_match.is_none());
    let c = canonical(
        b"B142 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))\r\n",
    );
    assert!(matches!(&c.body, CommandBody::Select { parameters, .. }
        if matches!(&parameters[0], SelectParameter::QResync(q) if q.seq_match.is_some())));
    canonical(b"a EXAMINE INBOX (QRESYNC (1 2 (1:3 4:6)))\r\n");
    assert!(parse_command(b"a SELECT INBOX (FOO)\r\n").is_err());
    assert!(parse_command(b"a SELECT INBOX (QRESYNC (0 1))\r\n").is_err());
}

#[test]
fn id_compress_quota() {
    let c = canonical(
        b"a023 ID (\"name\" \"sodr\" \"version\" \"19.34\" \"vendor\" \"Pink Floyd Music Limited\")\r\n",
    );
    assert!(matches!(&c.body, CommandBody::Id { parameters: Some(p) } if p.len() == 3));
    assert_eq!(
        canonical(b"a024 ID NIL\r\n").body,
        CommandBody::Id { parameters: None }
    );
    canonical(b"a025 ID (\"name\" NIL)\r\n");
    assert!(matches!(
        canonical(b"a COMPRESS DEFLATE\r\n").body,
        CommandBody::Compress { ref algorithm } if algorithm.as_str() == "DEFLATE"
    ));
    // RFC 9208 §4.
    canonical(b"G0001 GETQUOTA \"!partition/sda4\"\r\n");
    canonical(b"G0002 GETQUOTAROOT INBOX\r\n");
    let c = canonical(b"S0000 SETQUOTA \"#user/alice\" (STORAGE 510)\r\n");
    assert_eq!(
        c.body,
        CommandBody::SetQuota {
            root: quoted_s("#user/alice"),
            limits: vec![(QuotaResource::Storage, 510)]
        }
    );
    canonical(b"S0001 SETQUOTA \"\" ()\r\n");
}

#[test]
fn login_with_literals() {
    let c = canonical(b"A001 LOGIN {11+}\r\nFRED FOOBAR {7+}\r\nfat man\r\n");
    let CommandBody::Login { username, password } = &c.body else {
        panic!()
    };
    assert_eq!(username.as_bytes(), b"FRED FOOBAR");
    assert_eq!(password.expose().as_bytes(), b"fat man");
    assert!(!format!("{c:?}").contains("fat man"));
    // Client side: LITERAL- only allows up to 4096 octets non-synchronizing.
    let frags = to_fragments(&c, LiteralPolicy::Sync);
    assert_eq!(frags[0], Fragment::Line(b"A001 LOGIN {11}\r\n".to_vec()));
    assert_eq!(frags.len(), 5);
    // The chosen representation: atom, quoted, literal.
    let login = |u: &[u8], p: &[u8]| {
        to_bytes(&Command::new(
            Tag::new("a").unwrap(),
            CommandBody::Login {
                username: AString::from_bytes(u.to_vec()),
                password: Secret::new(AString::from_bytes(p.to_vec())),
            },
        ))
    };
    assert_eq!(login(b"bob", b"a b\"c"), b"a LOGIN bob \"a b\\\"c\"\r\n");
    assert_eq!(login(b"", b"x\r\ny"), b"a LOGIN \"\" {4}\r\nx\r\ny\r\n");
    assert_eq!(
        login("jörg".as_bytes(), b"x"),
        "a LOGIN {5}\r\njörg x\r\n".as_bytes()
    );
}

#[test]
fn mailbox_names() {
    let c = canonical(b"a SELECT ~peter/mail/&U,BTFw-/&ZeVnLIqe-\r\n");
    let CommandBody::Select { mailbox, .. } = &c.body else {
        panic!()
    };
    assert_eq!(
        mailbox.decode_name(false).unwrap(),
        "~peter/mail/\u{53f0}\u{5317}/\u{65e5}\u{672c}\u{8a9e}"
    );
    assert_eq!(
        parse_ok(b"a SELECT inbox\r\n").body,
        parse_ok(b"a SELECT \"INBOX\"\r\n").body
    );
    // Non-canonical modified UTF-7 is refused without UTF8=ACCEPT.
    assert_eq!(
        err(b"a SELECT &AGE-\r\n").kind,
        ParseErrorKind::InvalidMailboxName
    );
    assert_eq!(
        err(b"a SELECT &Jjo\r\n").kind,
        ParseErrorKind::InvalidMailboxName
    );
    // 8-bit names only with UTF8=ACCEPT.
    let utf8 = "a SELECT \"~peter/mail/台北\"\r\n".as_bytes();
    assert_eq!(err(utf8).kind, ParseErrorKind::InvalidUtf8);
    let opts = ParseOptions::default().with_utf8_accept(true);
    let c = parse_command_with(utf8, &opts).unwrap();
    let CommandBody::Select { mailbox, .. } = &c.body else {
        panic!()
    };
    assert_eq!(mailbox.decode_name(true).unwrap(), "~peter/mail/台北");
    // Under UTF8=ACCEPT `&` is an ordinary character.
    assert!(parse_command_with(b"a SELECT &AGE-\r\n", &opts).is_ok());
    assert_eq!(
        parse_command_with(b"a SELECT \"\xc3\x28\"\r\n", &opts)
            .unwrap_err()
            .kind,
        ParseErrorKind::InvalidUtf8
    );
    // Round trip from a display name.
    let m = Mailbox::from_name_mutf7("Entwürfe").unwrap();
    assert_eq!(m.as_bytes(), b"Entw&APw-rfe");
}

#[test]
fn errors_carry_tag_and_offset() {
    let e = err(b"a LOGIN user\r\n");
    assert_eq!(
        (e.tag.as_ref().unwrap().as_str(), e.kind),
        ("a", ParseErrorKind::Syntax)
    );
    assert_eq!(err(b"a NOOP extra\r\n").kind, ParseErrorKind::Syntax);
    assert_eq!(
        err(b"a UID FROB 1\r\n").kind,
        ParseErrorKind::UnknownCommand
    );
    assert_eq!(err(b"a  NOOP\r\n").kind, ParseErrorKind::Syntax);
    let e = err(b" NOOP\r\n");
    assert_eq!((e.tag, e.offset), (None, 0));
    assert_eq!(err(b"").tag, None);
    assert_eq!(err(b"a NOOP").kind, ParseErrorKind::Incomplete);
    assert_eq!(
        err(b"a NOOP\r\nb NOOP\r\n").kind,
        ParseErrorKind::TrailingData
    );
    assert_eq!(err(b"a LOGIN \"a\rb\" c\r\n").kind, ParseErrorKind::Syntax);
    assert!(parse_command(b"a LOGIN ~{3}\r\nabc x\r\n").is_err());
    assert!(parse_command(b"a AUTHENTICATE PLAIN not!b64\r\n").is_err());
    assert!(parse_command(b"a STATUS INBOX ()\r\n").is_err());
    assert_eq!(
        err(b"a SEARCH MODSEQ 9223372036854775808\r\n").kind,
        ParseErrorKind::NumberOverflow
    );
    assert!(parse_command(b"a LIST (RECURSIVEMATCH) \"\" *\r\n").is_err());
    assert!(parse_command(b"a ENABLE\r\n").is_err());
    assert!(parse_command(b"a+ NOOP\r\n").is_err());
    assert_eq!(
        err(b"a FROBNICATEFROBNICATEFROBNICATE\r\n").kind,
        ParseErrorKind::UnknownCommand
    );
}

#[test]
fn authenticate_continuation_and_idle_done() {
    assert_eq!(
        parse_authenticate_data(b"*\r\n").unwrap(),
        AuthenticateData::Cancel
    );
    let AuthenticateData::Response(d) =
        parse_authenticate_data(b"dGVzdAB0ZXN0AHRlc3Q=\r\n").unwrap()
    else {
        panic!()
    };
    assert_eq!(d.decode().unwrap(), b"test\0test\0test");
    assert!(
        matches!(parse_authenticate_data(b"\r\n").unwrap(), AuthenticateData::Response(d) if d.is_empty())
    );
    assert_eq!(
        parse_authenticate_data(b"abc\r\n").unwrap_err().kind,
        ParseErrorKind::InvalidBase64
    );
    assert!(parse_authenticate_data(b"ab!=\r\n").is_err());
    assert!(parse_authenticate_data(b"YQ==").is_err());
    // RFC 3501 §6.2.2 GSSAPI continuation (first line).
    assert!(parse_authenticate_data(b"YIIB+wYJKoZIhvcSAQICAQBuggHqMIIB5qADAgEFoQMCAQ6iBwMFACAAAACjggEmYYIBIjCCAR6gAwIBBaESGxB1Lndhc2hpbmd0b24uZWR1oi0wK6ADAgEDoSQwIhsEaW1hcBsac2hpdmFtcy5jYWMud2FzaGluZ3Rvbi5lZHWjgdMwgdCgAwIBAaEDAgEDooHDBIHAdqmrBHrmWAzBbUIIuR3Qc48Q5PqW8FlZNspHHOQ0vLGDsfx6SXaQBXxMAiCwrX05mmTOoHyu6aXfHqo8v9KmMn6ar5ySNZq0jfFIGTzePQRDXgM8lVzxhdpSx6PR6hxLkhoGGJYsQOCW8VWq8T6uPtk8lpgGrTGEUEwwDTLqcP2ReFOnD1ZMrbSmovPqQ5gPdlJpG85TkH8sICwVQ0Y3xPhBKqVjvOLEDRwSdwn1fSK5d0QPjUjM8SklbjZxH2lYdvRlcFIg\r\n").is_ok());
    assert_eq!(
        to_bytes(&AuthenticateData::Response(Base64Data::encode(
            b"\0tim\0tanstaaftanstaaf"
        ))),
        b"AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n"
    );
    assert!(parse_idle_done(b"DONE\r\n").is_ok());
    assert!(parse_idle_done(b"done\r\n").is_ok());
    assert!(parse_idle_done(b"DONE \r\n").is_err());
    assert_eq!(
        parse_idle_done(b"DON").unwrap_err().kind,
        ParseErrorKind::Incomplete
    );
}

#[test]
fn base64_round_trip_and_strictness() {
    for len in 0..10 {
        let data: Vec<u8> = (0..len).map(|i| (i * 37) as u8).collect();
        let enc = Base64Data::encode(&data);
        assert_eq!(
            Base64Data::new(enc.as_bytes()).unwrap().decode().unwrap(),
            data
        );
    }
    // Non-zero padding bits.
    assert!(Base64Data::new(&b"YR=="[..]).unwrap().decode().is_err());
}

#[test]
fn encoder_is_total_for_degenerate_values() {
    let t = || Tag::new("x").unwrap();
    let empty_search = Command::new(
        t(),
        CommandBody::Search {
            uid: true,
            return_options: None,
            charset: None,
            criteria: vec![SearchKey::And(vec![])],
        },
    );
    let bytes = to_bytes(&empty_search);
    assert_eq!(bytes, b"x UID SEARCH ALL\r\n");
    assert!(parse_command(&bytes).is_ok());
    for body in [
        CommandBody::Enable {
            capabilities: vec![],
        },
        CommandBody::Status {
            mailbox: Mailbox::Inbox,
            items: vec![],
        },
        CommandBody::Append {
            mailbox: Mailbox::Inbox,
            messages: vec![],
        },
        CommandBody::Fetch {
            uid: false,
            sequence_set: SequenceSetArg::SavedResult,
            attributes: FetchAttributes::List(vec![]),
            modifiers: vec![],
        },
        CommandBody::List {
            selection: vec![],
            reference: Mailbox::Inbox,
            patterns: vec![],
            return_options: vec![ListReturnOption::Status(vec![])],
        },
        CommandBody::Search {
            uid: false,
            return_options: Some(vec![]),
            charset: None,
            criteria: vec![],
        },
    ] {
        let bytes = to_bytes(&Command::new(t(), body));
        assert!(
            parse_command(&bytes).is_ok(),
            "{:?}",
            String::from_utf8_lossy(&bytes)
        );
    }
}

#[test]
fn zero_copy_on_hot_paths() {
    let c = parse_command(b"a1 LOGIN alice \"secret\"\r\n").unwrap();
    let CommandBody::Login { username, password } = &c.body else {
        panic!()
    };
    assert!(matches!(username, AString::Atom(_)));
    assert!(matches!(
        password.expose(),
        AString::String(IString::Quoted(_))
    ));
    let owned = c.clone().into_owned();
    assert_eq!(owned, c);
}

#[test]
fn sort_and_thread_rfc5256_examples() {
    let c = canonical(b"A283 SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994\r\n");
    assert_eq!(
        c.body,
        CommandBody::Sort {
            uid: false,
            return_options: None,
            criteria: vec![SortCriterion {
                reverse: false,
                key: SortKey::Subject
            }],
            charset: Charset::Atom(Atom::new("UTF-8").unwrap()),
            search: vec![SearchKey::Since(Date::new(1994, 2, 1).unwrap())],
        }
    );
    canonical(b"A284 SORT (SUBJECT) US-ASCII TEXT \"not in mailbox\"\r\n");
    let c = canonical(b"A285 SORT (SUBJECT REVERSE DATE) UTF-8 ALL\r\n");
    assert!(matches!(&c.body, CommandBody::Sort { criteria, .. }
        if criteria[1] == SortCriterion { reverse: true, key: SortKey::Date }));
    // RFC 5267 ESORT and RFC 5957 SORT=DISPLAY.
    let c = canonical(
        b"A301 UID SORT RETURN (MIN MAX) (DISPLAYFROM REVERSE ARRIVAL) UTF-8 UNDELETED\r\n",
    );
    assert!(
        matches!(&c.body, CommandBody::Sort { uid: true, return_options: Some(o), .. } if o.len() == 2)
    );
    let c = parse_ok(b"A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000\r\n");
    assert_eq!(
        c.body,
        CommandBody::Thread {
            uid: false,
            algorithm: ThreadAlgorithm::OrderedSubject,
            charset: Charset::Atom(Atom::new("UTF-8").unwrap()),
            search: vec![SearchKey::Since(Date::new(2000, 3, 5).unwrap())],
        }
    );
    let c = canonical(b"A284 THREAD REFERENCES US-ASCII TEXT \"gewp\"\r\n");
    assert!(matches!(
        &c.body,
        CommandBody::Thread {
            algorithm: ThreadAlgorithm::References,
            ..
        }
    ));
    canonical(b"a UID THREAD X-REFS UTF-8 ALL\r\n");
    // SORT needs a charset and at least one criterion.
    // The charset is mandatory: here "ALL" is taken as the charset and the keys are missing.
    assert!(parse_command(b"a SORT (SUBJECT) ALL\r\n").is_err());
    assert!(parse_command(b"a SORT (SUBJECT) UTF-8\r\n").is_err());
    assert!(parse_command(b"a SORT () UTF-8 ALL\r\n").is_err());
    assert!(parse_command(b"a SORT (WEIGHT) UTF-8 ALL\r\n").is_err());
}

#[test]
fn metadata_rfc5464_examples() {
    let c = canonical(b"a GETMETADATA \"\" /shared/comment\r\n");
    assert!(
        matches!(&c.body, CommandBody::GetMetadata { options, entries, .. }
        if options.is_empty() && entries.len() == 1)
    );
    canonical(b"a GETMETADATA INBOX /private/comment\r\n");
    canonical(b"a GETMETADATA INBOX (/shared/comment /private/comment)\r\n");
    let c = canonical(b"a GETMETADATA (MAXSIZE 1024 DEPTH infinity) INBOX /private/comment\r\n");
    assert!(matches!(&c.body, CommandBody::GetMetadata { options, .. }
        if options == &[GetMetadataOption::MaxSize(1024), GetMetadataOption::Depth(MetadataDepth::Infinity)]));
    canonical(b"a GETMETADATA (DEPTH 1) INBOX /private/filters/values\r\n");
    let c = canonical(
        b"a SETMETADATA INBOX (/private/comment {33}\r\nMy new comment across\r\ntwo lines.)\r\n",
    );
    assert!(matches!(&c.body, CommandBody::SetMetadata { entries, .. }
        if entries[0].1.as_bytes() == Some(&b"My new comment across\r\ntwo lines."[..])));
    let c = canonical(b"a SETMETADATA INBOX (/private/comment NIL)\r\n");
    assert!(
        matches!(&c.body, CommandBody::SetMetadata { entries, .. } if entries[0].1 == NString(None))
    );
    canonical(
        b"a SETMETADATA \"\" (/shared/comment \"Shared comment\" /shared/x ~{2}\r\n\0\x01)\r\n",
    );
    assert!(parse_command(b"a GETMETADATA (DEPTH 2) INBOX /a\r\n").is_err());
    assert!(parse_command(b"a SETMETADATA INBOX ()\r\n").is_err());
}

#[test]
fn unauthenticate() {
    assert_eq!(
        canonical(b"a UNAUTHENTICATE\r\n").body,
        CommandBody::Unauthenticate
    );
}

#[test]
fn gmail_extensions() {
    let c = canonical(b"a UID FETCH 1:* (UID X-GM-MSGID X-GM-THRID X-GM-LABELS)\r\n");
    assert!(
        matches!(&c.body, CommandBody::Fetch { attributes: FetchAttributes::List(v), .. }
        if v[1..] == [FetchAttribute::GmailMessageId, FetchAttribute::GmailThreadId, FetchAttribute::GmailLabels])
    );
    let c = parse_ok(
        b"a UID SEARCH X-GM-RAW \"has:attachment in:unread\" X-GM-MSGID 1278455344230334865 X-GM-THRID 1266894439832287888 X-GM-LABELS \\Important\r\n",
    );
    let CommandBody::Search { criteria, .. } = &c.body else {
        panic!()
    };
    assert_eq!(criteria[1], SearchKey::GmailMessageId(1278455344230334865));
    assert!(matches!(&criteria[3], SearchKey::GmailLabels(l) if l.as_bytes() == b"\\Important"));
    assert!(to_bytes(&c).ends_with(b"X-GM-LABELS \"\\\\Important\"\r\n"));
    canonical(b"a SEARCH X-GM-LABELS Work/Project\r\n");
}
