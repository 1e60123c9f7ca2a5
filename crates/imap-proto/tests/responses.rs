//! Known-answer tests for server responses: every example response of RFC 3501 §7 and
//! RFC 9051 §7 (plus the extension RFCs the crate covers), parsed to the expected value and
//! encoded back to the same bytes.

use std::num::NonZeroU32;

use cas_imap_proto::body::{BodyStructure, SinglePartKind};
use cas_imap_proto::code::ResponseCode;
use cas_imap_proto::encode::{Encoder, Fragment, LiteralPolicy, to_bytes};
use cas_imap_proto::error::ParseErrorKind;
use cas_imap_proto::parse::ParseOptions;
use cas_imap_proto::response::{
    ContinueRequest, Data, ESearchItem, FetchItem, ListExtendedItem, MetadataEntries, Response,
    Status, StatusResponse, StatusValue, TaggedExtValue, parse_response, parse_response_with,
};
use cas_imap_proto::types::{
    Capability, Flag, FlagFetch, FlagPerm, Mailbox, MailboxAttribute, ModSeq, SectionText,
};

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

/// Parses `line` (CRLF appended), checks that encoding gives the same bytes back, and
/// returns the value.
fn kat(line: &str) -> Response<'static> {
    let wire = format!("{line}\r\n");
    let parsed = parse_response(wire.as_bytes())
        .unwrap_or_else(|e| panic!("{line:?}: {e}"))
        .into_owned();
    let encoded = to_bytes(&parsed);
    assert_eq!(
        String::from_utf8_lossy(&encoded),
        wire,
        "re-encoding of {line:?}"
    );
    parsed
}

/// Like [`kat`] for input that is not in canonical form: re-encoding gives `canonical`.
fn kat_canonical(line: &str, canonical: &str) -> Response<'static> {
    let wire = format!("{line}\r\n");
    let parsed = parse_response(wire.as_bytes())
        .unwrap_or_else(|e| panic!("{line:?}: {e}"))
        .into_owned();
    assert_eq!(
        String::from_utf8_lossy(&to_bytes(&parsed)),
        format!("{canonical}\r\n")
    );
    assert_eq!(kat(canonical), parsed);
    parsed
}

/// Raw messages with literals: parse, compare re-encoding byte for byte.
fn kat_raw(wire: &[u8]) -> Response<'_> {
    let parsed = parse_response(wire).unwrap_or_else(|e| panic!("{wire:?}: {e}"));
    assert_eq!(to_bytes(&parsed), wire);
    parsed
}

fn status<'b, 'a>(r: &'b Response<'a>) -> &'b StatusResponse<'a> {
    match r {
        Response::Status(s) => s,
        other => panic!("not a status: {other:?}"),
    }
}

fn data(r: Response<'static>) -> Data<'static> {
    match r {
        Response::Data(d) => d,
        other => panic!("not data: {other:?}"),
    }
}

fn code(r: &Response<'_>) -> Option<ResponseCode<'static>> {
    status(r).text().code.clone().map(ResponseCode::into_owned)
}

fn text(r: &Response<'_>) -> String {
    String::from_utf8_lossy(status(r).text().text.as_bytes()).into_owned()
}

// --- RFC 3501 §7.1 / RFC 9051 §7.1: status responses --------------------------------------

#[test]
fn rfc3501_7_1_status_responses() {
    let r = kat("* OK IMAP4rev1 server ready");
    assert!(matches!(
        status(&r),
        StatusResponse::Untagged {
            status: Status::Ok,
            ..
        }
    ));
    assert_eq!(text(&r), "IMAP4rev1 server ready");

    let r = kat("A001 OK LOGIN completed");
    assert_eq!(status(&r).tag().unwrap().as_str(), "A001");

    let r = kat("* NO Disk is 98% full, please delete unnecessary data");
    assert!(matches!(
        status(&r),
        StatusResponse::Untagged {
            status: Status::No,
            ..
        }
    ));
    kat("A222 COPY completed".replace("COPY", "OK COPY").as_str());
    kat("A223 NO COPY failed: disk is full");
    kat("* BAD Command line too long");
    kat("* BAD Empty command line");
    kat("A443 BAD Expected SP after tag");

    let r = kat("* PREAUTH IMAP4rev1 server logged in as Smith");
    assert!(matches!(status(&r), StatusResponse::PreAuth(_)));
    let r = kat("* BYE Autologout; idle for too long");
    assert!(matches!(status(&r), StatusResponse::Bye(_)));
}

#[test]
fn rfc3501_7_1_response_codes() {
    let r = kat("* OK [ALERT] System shutdown in 10 minutes");
    assert_eq!(code(&r), Some(ResponseCode::Alert));
    assert_eq!(text(&r), "System shutdown in 10 minutes");

    let r = kat("* OK [UNSEEN 12] Message 12 is first unseen");
    assert_eq!(code(&r), Some(ResponseCode::Unseen(nz(12))));
    let r = kat("* OK [UIDVALIDITY 3857529045] UIDs valid");
    assert_eq!(code(&r), Some(ResponseCode::UidValidity(nz(3857529045))));
    let r = kat("* OK [UIDNEXT 4392] Predicted next UID");
    assert_eq!(code(&r), Some(ResponseCode::UidNext(nz(4392))));
    let r = kat("* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited");
    assert_eq!(
        code(&r),
        Some(ResponseCode::PermanentFlags(vec![
            FlagPerm::Flag(Flag::Deleted),
            FlagPerm::Flag(Flag::Seen),
            FlagPerm::Asterisk
        ]))
    );
    let r = kat("A142 OK [READ-WRITE] SELECT completed");
    assert_eq!(code(&r), Some(ResponseCode::ReadWrite));
    let r = kat("A932 OK [READ-ONLY] EXAMINE completed");
    assert_eq!(code(&r), Some(ResponseCode::ReadOnly));
    let r = kat("A003 NO [TRYCREATE] APPEND failed");
    assert_eq!(code(&r), Some(ResponseCode::TryCreate));
    let r = kat("A004 NO [PARSE] Message headers are malformed");
    assert_eq!(code(&r), Some(ResponseCode::Parse));
    let r = kat("A005 NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
    assert!(matches!(code(&r), Some(ResponseCode::BadCharset(v)) if v.len() == 2));
    let r = kat("A006 NO [BADCHARSET] Unsupported charset");
    assert_eq!(code(&r), Some(ResponseCode::BadCharset(vec![])));
    let r = kat("* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR AUTH=PLAIN] Dovecot ready.");
    assert_eq!(
        code(&r),
        Some(ResponseCode::Capability(vec![
            Capability::Imap4Rev1,
            Capability::LiteralPlus,
            Capability::SaslIr,
            Capability::AuthPlain
        ]))
    );
}

#[test]
fn rfc9051_7_1_response_codes() {
    for (line, expected) in [
        (
            "a NO [UNAVAILABLE] User's backend down for maintenance",
            ResponseCode::Unavailable,
        ),
        (
            "a NO [AUTHENTICATIONFAILED] Authentication failed",
            ResponseCode::AuthenticationFailed,
        ),
        (
            "a NO [AUTHORIZATIONFAILED] No such authorization-ID",
            ResponseCode::AuthorizationFailed,
        ),
        (
            "a NO [EXPIRED] That password isn't valid any more",
            ResponseCode::Expired,
        ),
        (
            "a NO [PRIVACYREQUIRED] Connection offers no privacy",
            ResponseCode::PrivacyRequired,
        ),
        (
            "a NO [CONTACTADMIN] You need to contact the system admin",
            ResponseCode::ContactAdmin,
        ),
        ("a NO [NOPERM] Access denied", ResponseCode::NoPerm),
        ("a NO [INUSE] Mailbox in use", ResponseCode::InUse),
        (
            "a OK [EXPUNGEISSUED] Search completed",
            ResponseCode::ExpungeIssued,
        ),
        (
            "a NO [CORRUPTION] Cannot open mailbox",
            ResponseCode::Corruption,
        ),
        (
            "a NO [SERVERBUG] UID FETCH temporarily failed",
            ResponseCode::ServerBug,
        ),
        ("a NO [CLIENTBUG] Done", ResponseCode::ClientBug),
        (
            "a NO [CANNOT] Cannot create mailbox with that name",
            ResponseCode::Cannot,
        ),
        (
            "a NO [LIMIT] At most 32 flags in one mailbox supported",
            ResponseCode::Limit,
        ),
        ("a NO [OVERQUOTA] Sorry", ResponseCode::OverQuota),
        (
            "a NO [ALREADYEXISTS] Mailbox \"that\" already exists",
            ResponseCode::AlreadyExists,
        ),
        (
            "a NO [NONEXISTENT] No such mailbox",
            ResponseCode::NonExistent,
        ),
        (
            "a OK [CLOSED] Previous mailbox closed",
            ResponseCode::Closed,
        ),
        (
            "a NO [NOTSAVED] Search result not saved",
            ResponseCode::NotSaved,
        ),
        (
            "a NO [HASCHILDREN] Mailbox has children",
            ResponseCode::HasChildren,
        ),
        (
            "a NO [UNKNOWN-CTE] Can't decode this part",
            ResponseCode::UnknownCte,
        ),
        (
            "a NO [UIDNOTSTICKY] Non-persistent UIDs",
            ResponseCode::UidNotSticky,
        ),
        (
            "* OK [NOMODSEQ] Sorry, this mailbox format doesn't support modsequences",
            ResponseCode::NoModSeq,
        ),
        ("a NO [TOOBIG] Message too big", ResponseCode::TooBig),
        (
            "a NO [COMPRESSIONACTIVE] DEFLATE active via TLS",
            ResponseCode::CompressionActive,
        ),
        ("a NO [USEATTR] \\All not supported", ResponseCode::UseAttr),
    ] {
        assert_eq!(code(&kat(line)), Some(expected), "{line}");
    }
}

#[test]
fn uidplus_and_condstore_codes() {
    // RFC 4315 §3 and RFC 9051 §7.1
    let r = kat("A003 OK [APPENDUID 38505 3955] APPEND completed");
    assert!(matches!(
        code(&r),
        Some(ResponseCode::AppendUid { uid_validity, .. }) if uid_validity.get() == 38505
    ));
    let r = kat("A004 OK [COPYUID 38505 304,319:320 3956:3958] Done");
    let Some(ResponseCode::CopyUid {
        source,
        destination,
        ..
    }) = code(&r)
    else {
        panic!()
    };
    assert_eq!(source.ranges().len(), 2);
    assert_eq!(destination.ranges().len(), 1);
    kat("A005 OK [APPENDUID 38505 3955:3957] MULTIAPPEND completed");
    // RFC 7162
    let r = kat("* OK [HIGHESTMODSEQ 715194045007] Highest");
    assert_eq!(
        code(&r),
        Some(ResponseCode::HighestModSeq(
            ModSeq::new(715194045007).unwrap()
        ))
    );
    let r = kat("d105 OK [MODIFIED 7,9] Conditional STORE failed");
    assert!(matches!(code(&r), Some(ResponseCode::Modified(s)) if s.ranges().len() == 2));
    // RFC 5464, RFC 8474, RFC 2221
    kat("a OK [METADATA LONGENTRIES 2199] GETMETADATA complete");
    kat("a NO [METADATA MAXSIZE 1024] Annotation too large");
    kat("a NO [METADATA TOOMANY] Too many annotations");
    kat("a NO [METADATA NOPRIVATE] Private annotations not supported");
    kat("a OK [MAILBOXID (F2212ea87-6097-4256-9d51-71338625)] Created");
    kat("a NO [REFERRAL IMAP://user;AUTH=*@SERVER2/] Remote mailbox");
}

#[test]
fn unknown_and_malformed_codes() {
    let r = kat("* OK [XYZZY some text here] hello");
    let Some(ResponseCode::Other(o)) = code(&r) else {
        panic!()
    };
    assert_eq!(o.name(), b"XYZZY");
    assert_eq!(o.text().unwrap().as_bytes(), b"some text here");
    let r = kat("* OK [X-GM-OK] hi");
    assert!(matches!(code(&r), Some(ResponseCode::Other(o)) if o.text().is_none()));
    // A bracket that holds no valid code is text.
    let r = kat("* OK [UIDNEXT abc] weird");
    assert_eq!(code(&r), None);
    assert_eq!(text(&r), "[UIDNEXT abc] weird");
    let r = kat("* OK [unterminated");
    assert_eq!(text(&r), "[unterminated");
    // Known names compare case-insensitively and re-encode in upper case.
    let r = kat_canonical("a OK [read-write] done", "a OK [READ-WRITE] done");
    assert_eq!(code(&r), Some(ResponseCode::ReadWrite));
}

#[test]
fn lenient_status_forms() {
    // RFC 9051 makes the text optional; servers also omit the space.
    let r = kat_canonical("* OK", "* OK ");
    assert_eq!(text(&r), "");
    let r = kat_canonical("a1 OK [READ-WRITE]", "a1 OK [READ-WRITE] ");
    assert_eq!(code(&r), Some(ResponseCode::ReadWrite));
    let r = kat_canonical("a1 OK [ALERT]text", "a1 OK [ALERT] text");
    assert_eq!(text(&r), "text");
    // Bare LF.
    assert!(parse_response(b"* OK hi\n").is_ok());
}

// --- RFC 3501 §7.2-7.3 / RFC 9051 §7.2-7.4: server and mailbox status ----------------------

#[test]
fn capability_and_enabled() {
    let d = data(kat(
        "* CAPABILITY IMAP4rev1 STARTTLS AUTH=GSSAPI LOGINDISABLED",
    ));
    let Data::Capability(caps) = d else { panic!() };
    assert_eq!(caps.len(), 4);
    assert_eq!(caps[2].auth_mechanism(), Some("GSSAPI"));
    kat("* CAPABILITY IMAP4rev2 STARTTLS AUTH=GSSAPI XPIG-LATIN");
    // Trailing space from sloppy servers.
    kat_canonical(
        "* CAPABILITY IMAP4rev1 IDLE ",
        "* CAPABILITY IMAP4rev1 IDLE",
    );
    let d = data(kat("* ENABLED CONDSTORE QRESYNC"));
    assert_eq!(
        d,
        Data::Enabled(vec![Capability::CondStore, Capability::QResync])
    );
    kat("* ENABLED");
}

#[test]
fn list_and_lsub() {
    let Data::List(l) = data(kat("* LIST (\\Noselect) \"/\" ~/Mail/foo")) else {
        panic!()
    };
    assert_eq!(l.attributes, vec![MailboxAttribute::NoSelect]);
    assert_eq!(l.delimiter.unwrap().as_char(), '/');
    assert_eq!(l.mailbox.as_bytes(), b"~/Mail/foo");
    kat("* LIST () \"/\" ~/Mail/meetings");
    kat("* LIST (\\Noselect) \"/\" \"\"");
    kat("* LIST (\\Noselect) \".\" #news.");
    kat("* LIST (\\Noselect) \"/\" /");
    let Data::List(l) = data(kat("* LIST () NIL INBOX")) else {
        panic!()
    };
    assert_eq!((l.delimiter, l.mailbox), (None, Mailbox::Inbox));
    kat("* LIST (\\Marked \\HasNoChildren) \"\\\\\" \"Sent Items\"");
    // RFC 3501 LSUB
    kat("* LSUB () \".\" #news.comp.mail.misc");
    kat_canonical(
        "* LSUB (\\NoSelect) \".\" #news.comp.mail",
        "* LSUB (\\Noselect) \".\" #news.comp.mail",
    );
    // RFC 6154 SPECIAL-USE
    let Data::List(l) = data(kat("* LIST (\\HasNoChildren \\Drafts) \"/\" Drafts")) else {
        panic!()
    };
    assert_eq!(
        l.attributes,
        vec![MailboxAttribute::HasNoChildren, MailboxAttribute::Drafts]
    );
    // RFC 5258 LIST-EXTENDED: CHILDINFO, RFC 9051: OLDNAME
    let Data::List(l) = data(kat(
        "* LIST () \"/\" Fruit (\"CHILDINFO\" (\"SUBSCRIBED\"))",
    )) else {
        panic!()
    };
    assert!(matches!(&l.extended[..], [ListExtendedItem::ChildInfo(v)] if v.len() == 1));
    kat_canonical(
        "* LIST () \"/\" Fruit (CHILDINFO (\"SUBSCRIBED\" \"RECURSIVEMATCH\"))",
        "* LIST () \"/\" Fruit (\"CHILDINFO\" (\"SUBSCRIBED\" \"RECURSIVEMATCH\"))",
    );
    let Data::List(l) = data(kat(
        "* LIST () \"/\" NewMailbox (\"OLDNAME\" (\"OldMailbox\"))",
    )) else {
        panic!()
    };
    assert!(
        matches!(&l.extended[..], [ListExtendedItem::OldName(m)] if m.as_bytes() == b"OldMailbox")
    );
    kat("* LIST (\\Subscribed \\NonExistent) \"/\" Vegetable/Broccoli");
    kat("* LIST () \"/\" Foo (X-EXT 42 X-SET 1:5 X-LIST (a (b \"c d\")) X-EMPTY ())");
}

#[test]
fn status_data() {
    let Data::Status { mailbox, items } =
        data(kat("* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)"))
    else {
        panic!()
    };
    assert_eq!(mailbox.as_bytes(), b"blurdybloop");
    assert_eq!(
        items,
        vec![StatusValue::Messages(231), StatusValue::UidNext(nz(44292))]
    );
    kat(concat!(
        "* STATUS INBOX (MESSAGES 17 UNSEEN 16 RECENT 0 UIDVALIDITY 1 DELETED 2 SIZE 123456789012 ",
        "HIGHESTMODSEQ 0 APPENDLIMIT 10240 DELETED-STORAGE 77 MAILBOXID (abc-1_2))"
    ));
    kat("* STATUS \"a b\" (APPENDLIMIT NIL)");
    kat("* STATUS \"a b\" ()");
}

#[test]
fn search_and_esearch() {
    let d = data(kat("* SEARCH 2 3 6"));
    assert_eq!(
        d,
        Data::Search {
            numbers: vec![nz(2), nz(3), nz(6)],
            mod_seq: None
        }
    );
    kat("* SEARCH");
    kat_canonical("* SEARCH ", "* SEARCH");
    // RFC 7162 §3.1.5
    let d = data(kat("* SEARCH 2 5 6 7 11 12 18 19 20 23 (MODSEQ 917162500)"));
    assert!(matches!(d, Data::Search { mod_seq: Some(m), .. } if m.get() == 917162500));

    // RFC 4731 / RFC 9051 §7.3.4
    let Data::ESearch(e) = data(kat("* ESEARCH (TAG \"A282\") MIN 2 COUNT 3")) else {
        panic!()
    };
    assert_eq!(e.tag.as_ref().unwrap().as_str(), "A282");
    assert!(!e.uid);
    assert_eq!(
        e.items,
        vec![ESearchItem::Min(nz(2)), ESearchItem::Count(3)]
    );
    kat("* ESEARCH (TAG \"A283\") ALL 2,10:11");
    kat("* ESEARCH (TAG \"A284\") MIN 4");
    let Data::ESearch(e) = data(kat("* ESEARCH (TAG \"A285\") UID MIN 7 MAX 3800")) else {
        panic!()
    };
    assert!(e.uid);
    kat("* ESEARCH (TAG \"A286\") COUNT 15");
    kat("* ESEARCH (TAG \"A301\") UID");
    kat("* ESEARCH UID COUNT 5 ALL 4:19,21,28");
    kat("* ESEARCH");
    kat_canonical(
        "* ESEARCH (TAG A1) COUNT 0",
        "* ESEARCH (TAG \"A1\") COUNT 0",
    );
    // RFC 7162 MODSEQ and extension data (RFC 4466)
    kat("* ESEARCH (TAG \"a\") ALL 1:3,5 MODSEQ 1236");
    let Data::ESearch(e) = data(kat("* ESEARCH (TAG \"t\") X-EXT (1 2) X-NUM 7 X-SET 1:*")) else {
        panic!()
    };
    assert!(matches!(
        &e.items[1],
        ESearchItem::Other {
            value: TaggedExtValue::Number(7),
            ..
        }
    ));
    assert!(matches!(
        &e.items[2],
        ESearchItem::Other {
            value: TaggedExtValue::SequenceSet(_),
            ..
        }
    ));
}

#[test]
fn flags_exists_recent_expunge_vanished() {
    let d = data(kat(
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
    ));
    assert_eq!(
        d,
        Data::Flags(vec![
            Flag::Answered,
            Flag::Flagged,
            Flag::Deleted,
            Flag::Seen,
            Flag::Draft
        ])
    );
    kat("* FLAGS ($Forwarded $Junk \\X-Custom)");
    assert_eq!(data(kat("* 23 EXISTS")), Data::Exists(23));
    assert_eq!(data(kat("* 0 EXISTS")), Data::Exists(0));
    assert_eq!(data(kat("* 5 RECENT")), Data::Recent(5));
    assert_eq!(data(kat("* 44 EXPUNGE")), Data::Expunge(nz(44)));
    assert!(parse_response(b"* 0 EXPUNGE\r\n").is_err());
    // RFC 7162 §3.2.10
    let d = data(kat("* VANISHED (EARLIER) 41,43:116,118,120:211,214:540"));
    assert!(matches!(d, Data::Vanished { earlier: true, uids } if uids.ranges().len() == 5));
    let d = data(kat("* VANISHED 405,407,410,425"));
    assert!(matches!(d, Data::Vanished { earlier: false, .. }));
}

#[test]
fn namespace_id_quota() {
    // RFC 2342 / RFC 9051 §7.3.5 examples
    kat("* NAMESPACE ((\"\" \"/\")) NIL NIL");
    kat("* NAMESPACE NIL NIL ((\"\" \".\"))");
    kat("* NAMESPACE ((\"\" \"/\")) NIL ((\"Public Folders/\" \"/\"))");
    kat(
        "* NAMESPACE ((\"\" \"/\")) ((\"~\" \"/\")) ((\"#shared/\" \"/\")(\"#public/\" \"/\")(\"#ftp/\" \"/\")(\"#news.\" \".\"))",
    );
    let Data::Namespace { personal, .. } = data(kat(
        "* NAMESPACE ((\"\" \"/\")(\"#mh/\" \"/\" \"X-PARAM\" (\"FLAG1\" \"FLAG2\"))) NIL NIL",
    )) else {
        panic!()
    };
    assert_eq!(personal[1].extensions.len(), 1);
    assert_eq!(personal[1].extensions[0].1.len(), 2);
    kat("* NAMESPACE ((\"INBOX.\" NIL)) NIL NIL");

    // RFC 2971
    let Data::Id(Some(params)) = data(kat(
        "* ID (\"name\" \"Cyrus\" \"version\" \"1.5\" \"os\" \"sunos\" \"os-version\" \"5.5\" \"support-url\" \"mailto:cyrus-bugs+@andrew.cmu.edu\")",
    )) else {
        panic!()
    };
    assert_eq!(params.len(), 5);
    assert_eq!(data(kat("* ID NIL")), Data::Id(None));
    kat("* ID (\"name\" NIL)");

    // RFC 9208
    let Data::QuotaRoot { mailbox, roots } = data(kat("* QUOTAROOT INBOX \"\"")) else {
        panic!()
    };
    assert_eq!((mailbox, roots.len()), (Mailbox::Inbox, 1));
    kat("* QUOTAROOT comp.mail.mime");
    let Data::Quota { resources, .. } = data(kat("* QUOTA \"\" (STORAGE 10 512)")) else {
        panic!()
    };
    assert_eq!((resources[0].usage, resources[0].limit), (10, 512));
    kat("* QUOTA \"#user/alice\" (STORAGE 54 111 MESSAGE 42 1000)");
}

// --- RFC 3501 §7.4 / RFC 9051 §7.5: FETCH --------------------------------------------------

const RFC3501_FETCH: &str = concat!(
    "* 12 FETCH (FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" ",
    "RFC822.SIZE 4286 ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" ",
    "\"IMAP4rev1 WG mtg summary and minutes\" ",
    "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ",
    "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ",
    "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ",
    "((NIL NIL \"imap\" \"cac.washington.edu\")) ",
    "((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) ",
    "NIL NIL \"<B27397-0100000@cac.washington.edu>\") ",
    "BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92))"
);

#[test]
fn rfc3501_fetch_example() {
    let Data::Fetch { seq, items } = data(kat(RFC3501_FETCH)) else {
        panic!()
    };
    assert_eq!(seq.get(), 12);
    assert_eq!(items.len(), 5);
    assert_eq!(
        items[0],
        FetchItem::Flags(vec![FlagFetch::Flag(Flag::Seen)])
    );
    assert_eq!(items[2], FetchItem::Rfc822Size(4286));
    let FetchItem::Envelope(env) = &items[3] else {
        panic!()
    };
    assert_eq!(
        env.subject.as_bytes(),
        Some(&b"IMAP4rev1 WG mtg summary and minutes"[..])
    );
    assert_eq!(env.cc.len(), 2);
    assert_eq!(env.cc[1].mailbox.as_bytes(), Some(&b"KLENSIN"[..]));
    assert!(env.bcc.is_empty());
    let FetchItem::Body(body) = &items[4] else {
        panic!()
    };
    let BodyStructure::Single { body, extension } = &**body else {
        panic!()
    };
    assert!(extension.is_none());
    assert_eq!(body.fields.octets, 3028);
    assert!(matches!(body.kind, SinglePartKind::Text { lines: 92, .. }));
}

#[test]
fn fetch_flags_uid_modseq() {
    // RFC 3501 §6.4.6 / §7.4.2
    kat("* 23 FETCH (FLAGS (\\Seen) RFC822.SIZE 44827)");
    kat("* 2 FETCH (FLAGS (\\Deleted \\Seen))");
    kat("* 3 FETCH (FLAGS (\\Deleted \\Seen \\Recent) UID 4827313)");
    kat("* 4 FETCH (FLAGS ())");
    // RFC 7162 §3.1.4
    let Data::Fetch { items, .. } = data(kat("* 1 FETCH (UID 4 MODSEQ (65402) FLAGS (\\Seen))"))
    else {
        panic!()
    };
    assert_eq!(items[1], FetchItem::ModSeq(ModSeq::new(65402).unwrap()));
    // RFC 8474
    kat("* 1 FETCH (EMAILID (M6d99ac3275bb4e) THREADID (T64b478a75b7ea9))");
    kat("* 2 FETCH (THREADID NIL)");
}

#[test]
fn fetch_body_sections_with_literals() {
    // RFC 3501 §6.4.5: BODY[HEADER] as a literal
    let header = b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\nFrom: Terry Gray <gray@cac.washington.edu>\r\nSubject: IMAP4rev1 WG mtg summary and minutes\r\n\r\n";
    let mut wire = format!(
        "* 12 FETCH (FLAGS (\\Seen) BODY[HEADER] {{{}}}\r\n",
        header.len()
    )
    .into_bytes();
    wire.extend_from_slice(header);
    wire.extend_from_slice(b")\r\n");
    let r = kat_raw(&wire);
    let Response::Data(Data::Fetch { items, .. }) = &r else {
        panic!()
    };
    let FetchItem::BodySection {
        section,
        origin,
        data,
    } = &items[1]
    else {
        panic!()
    };
    assert_eq!(section.text(), Some(&SectionText::Header));
    assert_eq!(*origin, None);
    assert_eq!(data.as_bytes(), Some(&header[..]));

    kat_raw(b"* 1 FETCH (BODY[] {5}\r\nhello UID 7)\r\n");
    kat_raw(b"* 1 FETCH (BODY[1.2.TEXT]<100> \"partial\")\r\n");
    kat_raw(b"* 1 FETCH (BODY[HEADER.FIELDS (FROM \"TO\")] {4}\r\nab\r\n)\r\n");
    kat_raw(b"* 1 FETCH (BODY[2.MIME] NIL)\r\n");
    kat_raw(b"* 1 FETCH (RFC822 {3}\r\nabc RFC822.HEADER \"h\" RFC822.TEXT NIL)\r\n");
    // RFC 3516 / RFC 9051: BINARY and BINARY.SIZE, literal8
    let r = kat_raw(b"* 172 FETCH (BINARY[1.3] ~{7}\r\nab\0cd\0e BINARY.SIZE[3] 4286)\r\n");
    let Response::Data(Data::Fetch { items, .. }) = &r else {
        panic!()
    };
    assert!(matches!(&items[0], FetchItem::Binary { section, data }
        if section.len() == 2 && data.as_bytes() == Some(&b"ab\0cd\0e"[..])));
    kat_raw(b"* 1 FETCH (BINARY[] {4}\r\ntext)\r\n");
}

// --- BODYSTRUCTURE -------------------------------------------------------------------------

#[test]
fn rfc3501_bodystructure_multipart() {
    // RFC 3501 §7.4.2 example, in the strict form.
    let line = concat!(
        "* 1 FETCH (BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1152 23)",
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\" \"NAME\" \"cc.diff\") ",
        "\"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" \"BASE64\" 4554 73) \"MIXED\"))"
    );
    let Data::Fetch { items, .. } = data(kat(line)) else {
        panic!()
    };
    let FetchItem::BodyStructure(b) = &items[0] else {
        panic!()
    };
    let BodyStructure::Multi { parts, subtype, .. } = &**b else {
        panic!()
    };
    assert_eq!(parts.len(), 2);
    assert_eq!(subtype.as_bytes(), b"MIXED");
    // The lax form with a space between parts is read and written strictly.
    let lax = line
        .replace(") (\"TEXT\"", ")(\"TEXT\"")
        .replacen("23)(", "23) (", 1);
    assert_ne!(lax, line);
    kat_canonical(&lax, line);
}

#[test]
fn real_world_nested_bodystructure() {
    // multipart/mixed { multipart/alternative { text/plain, text/html }, application/pdf,
    // message/rfc822 { text/plain } } with full extension data, as Gmail/Dovecot send it.
    let line = concat!(
        "* 7 FETCH (UID 1234 BODYSTRUCTURE (",
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"UTF-8\") NIL NIL \"QUOTED-PRINTABLE\" 1234 40 NIL NIL NIL NIL)",
        "(\"TEXT\" \"HTML\" (\"CHARSET\" \"UTF-8\") NIL NIL \"QUOTED-PRINTABLE\" 5678 120 NIL NIL NIL NIL)",
        " \"ALTERNATIVE\" (\"BOUNDARY\" \"000000000000abc\") NIL NIL NIL)",
        "(\"APPLICATION\" \"PDF\" (\"NAME\" \"report.pdf\") \"<f_abc123>\" NIL \"BASE64\" 102400 NIL ",
        "(\"ATTACHMENT\" (\"FILENAME\" \"report.pdf\")) NIL NIL)",
        "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 2048 ",
        "(\"Mon, 7 Feb 1994 21:52:25 -0800\" \"fwd\" ((\"Fred\" NIL \"fred\" \"example.org\")) NIL NIL ",
        "((NIL NIL \"joe\" \"example.com\")) NIL NIL NIL \"<1@example.org>\") ",
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1024 20 NIL NIL NIL NIL) 50 ",
        "NIL (\"INLINE\" NIL) (\"EN\" \"DE\") \"http://example.org/x\" 42 (1 \"x\" (NIL)))",
        " \"MIXED\" (\"BOUNDARY\" \"000000000000def\") NIL (\"en\") NIL))"
    );
    let Data::Fetch { items, .. } = data(kat(line)) else {
        panic!()
    };
    let FetchItem::BodyStructure(b) = &items[1] else {
        panic!()
    };
    let BodyStructure::Multi {
        parts, extension, ..
    } = &**b
    else {
        panic!()
    };
    assert_eq!(parts.len(), 3);
    assert!(matches!(&parts[0], BodyStructure::Multi { parts, .. } if parts.len() == 2));
    let BodyStructure::Single {
        body,
        extension: Some(ext),
    } = &parts[2]
    else {
        panic!()
    };
    assert!(matches!(
        &body.kind,
        SinglePartKind::Message {
            lines: 50,
            global: false,
            ..
        }
    ));
    let loc = ext
        .tail
        .as_ref()
        .unwrap()
        .tail
        .as_ref()
        .unwrap()
        .tail
        .as_ref()
        .unwrap();
    assert_eq!(loc.extensions.len(), 2);
    let ext = extension.as_ref().unwrap();
    assert_eq!(ext.params.len(), 1);
}

#[test]
fn bodystructure_lenient_forms() {
    // message/rfc822 without envelope/body/lines (seen from real servers) is a basic part.
    kat("* 1 FETCH (BODYSTRUCTURE (\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 100 NIL))");
    // text/* without a line count.
    kat("* 1 FETCH (BODY (\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 100))");
    // message/global (RFC 9051).
    kat(concat!(
        "* 1 FETCH (BODY (\"MESSAGE\" \"GLOBAL\" NIL NIL NIL \"8BIT\" 10 ",
        "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) (\"TEXT\" \"PLAIN\" NIL NIL NIL \"8BIT\" 3 1) 1))"
    ));
    // Spaces between envelope addresses.
    kat_canonical(
        "* 1 FETCH (ENVELOPE (NIL NIL ((NIL NIL \"a\" \"b\") (NIL NIL \"c\" \"d\")) NIL NIL NIL NIL NIL NIL NIL))",
        "* 1 FETCH (ENVELOPE (NIL NIL ((NIL NIL \"a\" \"b\")(NIL NIL \"c\" \"d\")) NIL NIL NIL NIL NIL NIL NIL))",
    );
}

#[test]
fn nesting_depth_is_bounded() {
    let mut line = String::from("* 1 FETCH (BODYSTRUCTURE ");
    let depth = 40;
    for _ in 0..depth {
        line.push('(');
    }
    line.push_str("\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1");
    for _ in 0..depth {
        line.push_str(") \"MIXED\"");
        line.push(')');
    }
    line.push_str(")\r\n");
    let e = parse_response(line.as_bytes()).unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::TooDeep);
    let opts = ParseOptions::default().with_max_depth(100);
    let _ = parse_response_with(line.as_bytes(), &opts);
    // Deep body-extension lists too.
    let mut line = String::from(
        "* 1 FETCH (BODYSTRUCTURE (\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1 NIL NIL NIL NIL ",
    );
    line.push_str(&"(".repeat(1000));
    line.push('1');
    line.push_str(&")".repeat(1000));
    line.push_str("))\r\n");
    assert_eq!(
        parse_response(line.as_bytes()).unwrap_err().kind,
        ParseErrorKind::TooDeep
    );
}

// --- Continuation requests -----------------------------------------------------------------

#[test]
fn continuation_requests() {
    let r = kat("+ Ready for additional command text");
    assert!(matches!(r, Response::Continue(ContinueRequest::Basic(_))));
    let r = kat(
        "+ YGgGCSqGSIb3EgECAgIAb1kwV6ADAgEFoQMCAQ+iSzBJoAMCAQGiQgRAtHTEuOP2BXb9sBYFR4SJlDZxmg39IxmRBOhXRKdDA0uHTCOT9Bq3OsUTXUlk0CsFLoa8j+gvGDlgHuqzWHPSQg==",
    );
    assert!(matches!(r, Response::Continue(ContinueRequest::Base64(_))));
    let r = kat("+ ");
    assert!(matches!(&r, Response::Continue(c) if c.raw_text().is_empty()));
    kat_canonical("+", "+ ");
    let r = kat("+ [ALERT] go ahead");
    assert!(
        matches!(r, Response::Continue(ContinueRequest::Basic(t)) if t.code == Some(ResponseCode::Alert))
    );
}

// --- Errors --------------------------------------------------------------------------------

#[test]
fn errors_are_typed() {
    for (input, kind) in [
        (&b""[..], ParseErrorKind::Incomplete),
        (b"* OK hi", ParseErrorKind::Incomplete),
        (
            b"* 1 FETCH (BODY[] {10}\r\nabc)\r\n",
            ParseErrorKind::Incomplete,
        ),
        (b"* FOO bar\r\n", ParseErrorKind::Syntax),
        (b"a1 MAYBE ok\r\n", ParseErrorKind::Syntax),
        (b"* 1 FETCH (X-UNKNOWN 1)\r\n", ParseErrorKind::Syntax),
        (b"* OK hi\r\n* OK again\r\n", ParseErrorKind::TrailingData),
        (b"* 99999999999 EXISTS\r\n", ParseErrorKind::NumberOverflow),
        (b"* OK a\0b\r\n", ParseErrorKind::Syntax),
    ] {
        let e = parse_response(input).unwrap_err();
        assert_eq!(e.kind, kind, "{input:?}");
        assert!(e.offset <= input.len());
    }
}

#[test]
fn fragments_split_at_literals() {
    let r = parse_response(b"* 1 FETCH (BODY[] {5}\r\nhello)\r\n").unwrap();
    let mut out = Encoder::with_policy(LiteralPolicy::Sync);
    use cas_imap_proto::encode::Encode;
    r.encode(&mut out);
    let frags = out.into_fragments();
    assert_eq!(frags.len(), 3);
    assert_eq!(
        frags[0],
        Fragment::Line(b"* 1 FETCH (BODY[] {5}\r\n".to_vec())
    );
    assert!(matches!(&frags[1], Fragment::Literal { data, .. } if data == b"hello"));
    assert_eq!(frags[2], Fragment::Line(b")\r\n".to_vec()));
}

// --- RFC 9051 §6.3 example exchanges (server side) -----------------------------------------

#[test]
fn rfc9051_select_response_block() {
    let block = [
        "* 172 EXISTS",
        "* OK [UIDVALIDITY 3857529045] UIDs valid",
        "* OK [UIDNEXT 4392] Predicted next UID",
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
        "* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited",
        "* LIST () \"/\" INBOX",
        "A142 OK [READ-WRITE] SELECT completed",
    ];
    let parsed: Vec<_> = block.iter().map(|l| kat(l)).collect();
    assert_eq!(parsed[0], Response::Data(Data::Exists(172)));
    assert!(matches!(&parsed[5], Response::Data(Data::List(l)) if l.mailbox == Mailbox::Inbox));
}

#[test]
fn rfc9051_list_extended_examples() {
    kat("* CAPABILITY STARTTLS AUTH=GSSAPI IMAP4rev2 LOGINDISABLED XPIG-LATIN");
    kat("* LIST () \"/\" blurdybloop");
    kat("* LIST (\\Noselect) \"/\" foo");
    kat("* LIST () \"/\" foo/bar");
    kat_canonical(
        "* LIST (\\Marked \\NoInferiors) \"/\" \"inbox\"",
        "* LIST (\\Marked \\Noinferiors) \"/\" INBOX",
    );
    kat("* LIST (\\Subscribed) \"/\" \"Fruit/Banana\"");
    kat("* LIST (\\Subscribed \\NonExistent) \"/\" \"Fruit/Peach\"");
    kat("* LIST (\\HasChildren) \"/\" \"Tofu\"");
    kat("* LIST (\\Subscribed \\HasNoChildren) \"/\" \"Tofu/Tofu\"");
    kat("* LIST (\\Subscribed \\Remote) \"/\" \"Bread\"");
    kat("* LIST (\\NonExistent \\HasChildren) \"/\" \"Foo\" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
    // RFC 5819 LIST-STATUS answers: LIST then STATUS for the same mailbox.
    kat("* LIST () \".\" \"INBOX.Sent\"");
    kat("* STATUS \"INBOX.Sent\" (MESSAGES 7 UNSEEN 0 SIZE 123456)");
    // UTF-8 names only with UTF8=ACCEPT.
    let utf8 = "* LIST () \"/\" \"Entwürfe\"\r\n".as_bytes();
    assert_eq!(
        parse_response(utf8).unwrap_err().kind,
        ParseErrorKind::InvalidUtf8
    );
    let opts = ParseOptions::default().with_utf8_accept(true);
    assert!(parse_response_with(utf8, &opts).is_ok());
}

// --- RFC 5256 SORT/THREAD and Gmail FETCH items -------------------------------------------

#[test]
fn sort_and_thread() {
    assert_eq!(
        data(kat("* SORT 2 84 882")),
        Data::Sort(vec![nz(2), nz(84), nz(882)])
    );
    kat("* SORT");
    // RFC 5256 §4 example.
    let Data::Thread(threads) = data(kat("* THREAD (2)(3 6 (4 23)(44 7 96))")) else {
        panic!()
    };
    assert_eq!(threads.len(), 2);
    assert_eq!(threads[1].members, vec![nz(3), nz(6)]);
    assert_eq!(threads[1].branches.len(), 2);
    assert_eq!(threads[1].branches[1].members, vec![nz(44), nz(7), nz(96)]);
    kat("* THREAD ((3)(5))");
    kat("* THREAD");
    kat_canonical("* THREAD (1 (2) (3))", "* THREAD (1 (2)(3))");
    kat("* THREAD (1 (2))");
}

#[test]
fn gmail_fetch_items() {
    let Data::Fetch { items, .. } = data(kat(
        "* 1 FETCH (X-GM-THRID 1278455344230334865 X-GM-MSGID 1278455344230334865 X-GM-LABELS (\\Inbox \\Sent Important \"Muy Importante\") UID 4)",
    )) else {
        panic!()
    };
    assert_eq!(items[0], FetchItem::GmailThreadId(1278455344230334865));
    assert!(matches!(&items[2], FetchItem::GmailLabels(l) if l.len() == 4));
    kat("* 2 FETCH (X-GM-LABELS ())");
}

#[test]
fn metadata_responses() {
    // RFC 5464 §4.4 examples
    let Data::Metadata { mailbox, entries } = data(kat_canonical(
        "* METADATA \"INBOX\" (/private/comment \"My own comment\")",
        "* METADATA INBOX (/private/comment \"My own comment\")",
    )) else {
        panic!()
    };
    assert_eq!(mailbox, Mailbox::Inbox);
    assert!(matches!(entries, MetadataEntries::Values(v) if v.len() == 1));
    kat("* METADATA \"\" (/shared/comment \"Shared comment\" /shared/admin NIL)");
    kat_raw(b"* METADATA \"\" (/shared/comment ~{4}\r\nab\0c)\r\n");
    let Data::Metadata { entries, .. } =
        data(kat("* METADATA INBOX /shared/comment /private/comment"))
    else {
        panic!()
    };
    assert!(matches!(entries, MetadataEntries::Names(v) if v.len() == 2));
}
