use super::*;
use crate::imap_store::index::to_crlf;
use cas_imap_proto::encode::to_bytes;

const NESTED: &str = "From: Alice <alice@example.com>\n\
To: bob@example.com, \"Carol C.\" <carol@example.org>\n\
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\n\
Date: Wed, 17 Jul 1996 02:23:25 -0700\n\
Message-ID: <B27397-0100000@cac.washington.edu>\n\
MIME-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=\"outer\"\n\
\n\
preamble\n\
--outer\n\
Content-Type: text/plain; charset=us-ascii\n\
\n\
Hello\n\
--outer\n\
Content-Type: message/rfc822\n\
\n\
From: Dave <dave@example.net>\n\
Subject: inner\n\
Content-Type: multipart/alternative; boundary=\"inner\"\n\
\n\
--inner\n\
Content-Type: text/plain; charset=utf-8\n\
Content-Transfer-Encoding: quoted-printable\n\
\n\
caf=C3=A9\n\
--inner\n\
Content-Type: text/html\n\
\n\
<p>hi</p>\n\
--inner--\n\
--outer\n\
Content-Type: application/octet-stream; name=\"a.bin\"\n\
Content-Transfer-Encoding: base64\n\
Content-Disposition: attachment; filename=\"a.bin\"\n\
\n\
AAECAw==\n\
--outer--\n";

fn parsed(text: &str) -> (Vec<u8>, ParsedMessage) {
    let data = to_crlf(text.as_bytes()).into_owned();
    let p = parse_message(&data);
    (data, p)
}

fn section(spec: &[u32], text: Option<SectionText<'static>>) -> Section<'static> {
    Section::new(
        spec.iter().map(|&n| NonZeroU32::new(n).unwrap()).collect(),
        text,
    )
    .unwrap()
}

fn part(p: &[u32]) -> Vec<NonZeroU32> {
    p.iter().map(|&n| NonZeroU32::new(n).unwrap()).collect()
}

fn get(data: &[u8], p: &ParsedMessage, spec: &[u32], text: Option<SectionText<'static>>) -> String {
    let s = section(spec, text);
    String::from_utf8(section_bytes(&p.root, data, &s).unwrap().into_owned()).unwrap()
}

#[test]
fn sections_of_a_nested_message() {
    let (data, p) = parsed(NESTED);
    assert_eq!(get(&data, &p, &[1], None), "Hello");
    assert_eq!(
        get(&data, &p, &[1], Some(SectionText::Mime)),
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
    );
    assert_eq!(
        get(&data, &p, &[2], Some(SectionText::Header)),
        "From: Dave <dave@example.net>\r\nSubject: inner\r\n\
         Content-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n"
    );
    assert!(get(&data, &p, &[2], None).starts_with("From: Dave"));
    assert!(get(&data, &p, &[2], Some(SectionText::Text)).starts_with("--inner\r\n"));
    assert_eq!(get(&data, &p, &[2, 1], None), "caf=C3=A9");
    assert_eq!(get(&data, &p, &[2, 2], None), "<p>hi</p>");
    assert_eq!(
        get(&data, &p, &[2, 1], Some(SectionText::Mime)),
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    );
    assert_eq!(get(&data, &p, &[3], None), "AAECAw==");
    assert_eq!(
        &*binary_bytes(&p.root, &data, &part(&[3])).unwrap(),
        &[0, 1, 2, 3]
    );
    assert_eq!(
        &*binary_bytes(&p.root, &data, &part(&[2, 1])).unwrap(),
        "café".as_bytes()
    );
    assert!(section_bytes(&p.root, &data, &section(&[4], None)).is_none());
    assert!(section_bytes(&p.root, &data, &section(&[1], Some(SectionText::Header))).is_none());
    assert!(section_bytes(&p.root, &data, &section(&[1, 1], None)).is_none());
    // HEADER.FIELDS keeps the message's order and ends with the empty line.
    let fields = SectionText::HeaderFields(vec![
        cas_imap_proto::types::AString::new(&b"subject"[..])
            .unwrap()
            .into_owned(),
        cas_imap_proto::types::AString::new(&b"FROM"[..])
            .unwrap()
            .into_owned(),
    ]);
    assert_eq!(
        get(&data, &p, &[], Some(fields)),
        "From: Alice <alice@example.com>\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\n"
    );
    let not = SectionText::HeaderFieldsNot(vec![
        cas_imap_proto::types::AString::new(&b"content-type"[..])
            .unwrap()
            .into_owned(),
        cas_imap_proto::types::AString::new(&b"to"[..])
            .unwrap()
            .into_owned(),
        cas_imap_proto::types::AString::new(&b"date"[..])
            .unwrap()
            .into_owned(),
        cas_imap_proto::types::AString::new(&b"message-id"[..])
            .unwrap()
            .into_owned(),
        cas_imap_proto::types::AString::new(&b"mime-version"[..])
            .unwrap()
            .into_owned(),
        cas_imap_proto::types::AString::new(&b"from"[..])
            .unwrap()
            .into_owned(),
    ]);
    assert_eq!(
        get(&data, &p, &[], Some(not)),
        "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\n"
    );
    assert_eq!(
        get(
            &data,
            &p,
            &[2],
            Some(SectionText::HeaderFields(vec![
                cas_imap_proto::types::AString::new(&b"Subject"[..])
                    .unwrap()
                    .into_owned()
            ]))
        ),
        "Subject: inner\r\n\r\n"
    );
}

#[test]
fn envelope_and_bodystructure_known_answers() {
    let (_, p) = parsed(NESTED);
    assert_eq!(
        String::from_utf8(to_bytes(&FetchItem::Envelope(Box::new(p.envelope.clone())))).unwrap(),
        "ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700\" \"=?utf-8?q?Gr=C3=BC=C3=9Fe?=\" \
         ((\"Alice\" NIL \"alice\" \"example.com\")) ((\"Alice\" NIL \"alice\" \"example.com\")) \
         ((\"Alice\" NIL \"alice\" \"example.com\")) \
         ((NIL NIL \"bob\" \"example.com\")(\"Carol C.\" NIL \"carol\" \"example.org\")) \
         NIL NIL NIL \"<B27397-0100000@cac.washington.edu>\")"
    );
    assert_eq!(
        String::from_utf8(to_bytes(&FetchItem::Body(Box::new(p.body.clone())))).unwrap(),
        "BODY ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 5 1)\
         (\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 268 \
         (NIL \"inner\" ((\"Dave\" NIL \"dave\" \"example.net\")) ((\"Dave\" NIL \"dave\" \"example.net\")) \
         ((\"Dave\" NIL \"dave\" \"example.net\")) NIL NIL NIL NIL NIL) \
         ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 9 1)\
         (\"TEXT\" \"HTML\" NIL NIL NIL \"7BIT\" 9 1) \"ALTERNATIVE\") 14)\
         (\"APPLICATION\" \"OCTET-STREAM\" (\"NAME\" \"a.bin\") NIL NIL \"BASE64\" 8) \"MIXED\")"
    );
    let bs = String::from_utf8(to_bytes(&FetchItem::BodyStructure(Box::new(
        p.body_structure.clone(),
    ))))
    .unwrap();
    assert!(
        bs.contains("\"BASE64\" 8 NIL (\"ATTACHMENT\" (\"FILENAME\" \"a.bin\")) NIL NIL)"),
        "{bs}"
    );
    assert!(
        bs.ends_with("\"MIXED\" (\"BOUNDARY\" \"outer\") NIL NIL NIL)"),
        "{bs}"
    );
}

/// RFC 3501 §6.4.5 example structure: BODY[1.2.HEADER] addresses the header of a
/// message/rfc822 that is the second part of the first (multipart) part.
#[test]
fn body_1_2_header() {
    let text = "Subject: top\n\
Content-Type: multipart/mixed; boundary=\"a\"\n\
\n\
--a\n\
Content-Type: multipart/mixed; boundary=\"b\"\n\
\n\
--b\n\
Content-Type: text/plain\n\
\n\
first\n\
--b\n\
Content-Type: message/rfc822\n\
\n\
Subject: deep\n\
\n\
deep body\n\
--b--\n\
--a\n\
Content-Type: text/plain\n\
\n\
second\n\
--a--\n";
    let (data, p) = parsed(text);
    assert_eq!(
        get(&data, &p, &[1, 2], Some(SectionText::Header)),
        "Subject: deep\r\n\r\n"
    );
    assert_eq!(
        get(&data, &p, &[1, 2], Some(SectionText::Text)),
        "deep body"
    );
    assert_eq!(get(&data, &p, &[1, 2, 1], None), "deep body");
    assert_eq!(get(&data, &p, &[1, 1], None), "first");
    assert_eq!(get(&data, &p, &[2], None), "second");
    assert!(get(&data, &p, &[1], None).starts_with("--b\r\n"));
}

#[test]
fn single_part_and_unknown_cte() {
    let text = "Subject: x\nContent-Transfer-Encoding: x-uuencode\n\nbegin 644 f\n`\nend\n";
    let (data, p) = parsed(text);
    assert_eq!(get(&data, &p, &[1], None), "begin 644 f\r\n`\r\nend\r\n");
    assert!(matches!(
        binary_bytes(&p.root, &data, &part(&[1])),
        Err(StoreError::UnknownCte)
    ));
    assert_eq!(
        get(&data, &p, &[], Some(SectionText::Text)),
        "begin 644 f\r\n`\r\nend\r\n"
    );
    let (data, p) = parsed("no header at all");
    assert_eq!(get(&data, &p, &[], None), "no header at all");
    let (data, p) = parsed("");
    assert_eq!(get(&data, &p, &[], None), "");
    let _ = p;
    let _ = data;
}

#[test]
fn partials() {
    assert_eq!(apply_partial(b"0123456789", Some((2, 3))), b"234");
    assert_eq!(apply_partial(b"0123456789", Some((8, 30))), b"89");
    assert_eq!(apply_partial(b"0123456789", Some((20, 3))), b"");
    assert_eq!(apply_partial(b"0123", None), b"0123");
}

#[test]
fn cache_is_bounded_lru() {
    let cache = MessageCache::new(2);
    let p = Arc::new(parse_message(b"Subject: a\r\n\r\nx"));
    let key = |u| (PathBuf::from("/f"), 1, u);
    cache.insert(key(1), p.clone());
    cache.insert(key(2), p.clone());
    assert!(cache.get(&key(1)).is_some()); // 1 is now the most recent
    cache.insert(key(3), p.clone());
    assert_eq!(cache.len(), 2);
    assert!(cache.get(&key(2)).is_none());
    assert!(cache.get(&key(1)).is_some());
}

/// Regression (fetchmail interop): message data is a literal even when it is short and
/// quotable. fetchmail 6.4 waited 30 s on `BODY[TEXT] "This message has no line end..."`.
#[test]
fn message_data_is_always_a_literal() {
    let (data, p) = parsed("Subject: short\n\nThis message has no line end after its last line.");
    let meta = MessageMeta {
        uid: 5,
        flags: MessageFlags::default(),
        modseq: 1,
        size: data.len() as u64,
        internal_date: 0,
    };
    let render = |item: FetchAttribute<'static>| {
        let rendered = render_item(&item, &meta, false, Some(&p), Some(&data)).unwrap();
        String::from_utf8(to_bytes(&rendered)).unwrap()
    };
    let body_section = |text: Option<SectionText<'static>>, partial| FetchAttribute::BodySection {
        peek: true,
        section: section(&[], text),
        partial,
    };
    let text = "This message has no line end after its last line.";
    assert_eq!(
        render(body_section(Some(SectionText::Text), None)),
        format!("BODY[TEXT] {{{}}}\r\n{text}", text.len())
    );
    assert_eq!(
        render(body_section(Some(SectionText::Header), None)),
        "BODY[HEADER] {18}\r\nSubject: short\r\n\r\n"
    );
    let partial = Some(cas_imap_proto::command::PartialRange {
        offset: 5,
        length: NonZeroU32::new(7).unwrap(),
    });
    assert_eq!(
        render(body_section(Some(SectionText::Text), partial)),
        "BODY[TEXT]<5> {7}\r\nmessage"
    );
    // An empty section is still a literal (`{0}`), not `""`.
    let (empty, p_empty) = parsed("Subject: none\n\n");
    let rendered = render_item(
        &body_section(Some(SectionText::Text), None),
        &meta,
        false,
        Some(&p_empty),
        Some(&empty),
    )
    .unwrap();
    assert_eq!(to_bytes(&rendered), b"BODY[TEXT] {0}\r\n");
    assert_eq!(
        render(FetchAttribute::Rfc822Text),
        format!("RFC822.TEXT {{{}}}\r\n{text}", text.len())
    );
    assert_eq!(
        render(FetchAttribute::Rfc822Header),
        "RFC822.HEADER {18}\r\nSubject: short\r\n\r\n"
    );
    assert!(render(FetchAttribute::Rfc822).starts_with(&format!("RFC822 {{{}}}\r\n", data.len())));
    assert_eq!(
        render(FetchAttribute::Binary {
            peek: true,
            part: part(&[1]),
            partial: None,
        }),
        format!("BINARY[1] {{{}}}\r\n{text}", text.len())
    );
    // A section that does not exist is still NIL.
    assert_eq!(
        render(FetchAttribute::BodySection {
            peek: true,
            section: section(&[3], None),
            partial: None,
        }),
        "BODY[3] NIL"
    );
}

/// Binary content with NUL keeps the `literal8` form, the only one that can carry it.
#[test]
fn message_data_with_nul_is_a_literal8() {
    let NString(Some(IString::Literal(literal))) = message_data(b"a\0b") else {
        panic!("message data must be a literal");
    };
    assert!(literal.is_binary());
    let NString(Some(IString::Literal(literal))) = message_data(b"ab") else {
        panic!("message data must be a literal");
    };
    assert!(!literal.is_binary());
}
