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
    let key = |u| (PathBuf::from("/f"), 1, u, BodyFormat::BestBodyFormat);
    cache.insert(key(1), p.clone(), None);
    cache.insert(key(2), p.clone(), None);
    assert!(cache.get(&key(1)).is_some()); // 1 is now the most recent
    cache.insert(key(3), p.clone(), None);
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
        let rendered = render_item(&item, &meta, meta.size, false, Some(&p), Some(&data)).unwrap();
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
        meta.size,
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

/// A stored multipart/alternative message with an attachment, LF line ends (as Maildir
/// files often have them). "Quarterly" is only in the HTML markup's title attribute.
const ALTERNATIVE: &str = "From: Carol <carol@example.test>\n\
To: alice@example.test\n\
Subject: Agenda\n\
Date: Mon, 2 Mar 2026 09:00:00 +0000\n\
Message-ID: <agenda-1@example.test>\n\
MIME-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=\"outer\"\n\
\n\
--outer\n\
Content-Type: multipart/alternative; boundary=\"inner\"\n\
\n\
--inner\n\
Content-Type: text/plain; charset=utf-8\n\
Content-Transfer-Encoding: quoted-printable\n\
\n\
Agenda:=0A1. Caf=C3=A9 budget\n\
--inner\n\
Content-Type: text/html; charset=utf-8\n\
\n\
<html><body><h1 title=\"Quarterly\">Agenda</h1><p>1. Caf&eacute; budget</p></body></html>\n\
--inner--\n\
--outer\n\
Content-Type: text/csv; name=\"budget.csv\"\n\
Content-Disposition: attachment; filename=\"budget.csv\"\n\
Content-Transfer-Encoding: base64\n\
\n\
aXRlbSxhbW91bnQKY29mZmVlLDQyCg==\n\
--outer--\n";

use fuzzing::FORMATS;

/// Leaf parts of a body structure: (part path, "TYPE/SUBTYPE", octets).
fn leaves(bs: &BodyStructure<'_>, path: Vec<u32>, out: &mut Vec<(Vec<u32>, String, u32)>) {
    match bs {
        BodyStructure::Multi { parts, .. } => {
            for (i, p) in parts.iter().enumerate() {
                let mut sub = path.clone();
                sub.push(i as u32 + 1);
                leaves(p, sub, out);
            }
        }
        BodyStructure::Single { body, .. } => {
            let media = match &body.kind {
                SinglePartKind::Text { subtype, .. } => {
                    format!("TEXT/{}", String::from_utf8_lossy(subtype.as_bytes()))
                }
                SinglePartKind::Basic {
                    media_type,
                    subtype,
                } => format!(
                    "{}/{}",
                    String::from_utf8_lossy(media_type.as_bytes()),
                    String::from_utf8_lossy(subtype.as_bytes())
                ),
                SinglePartKind::Message { .. } => "MESSAGE/RFC822".to_owned(),
            };
            // A single-part message's only part is part 1.
            let path = if path.is_empty() { vec![1] } else { path };
            out.push((path, media, body.fields.octets));
        }
    }
}

/// The data of a rendered message-data item.
fn item_data(item: &FetchItem<'_>) -> Vec<u8> {
    let data = match item {
        FetchItem::BodySection { data, .. }
        | FetchItem::Binary { data, .. }
        | FetchItem::Rfc822(data)
        | FetchItem::Rfc822Header(data)
        | FetchItem::Rfc822Text(data) => data,
        other => panic!("not message data: {other:?}"),
    };
    match &data.0 {
        Some(s) => s.as_bytes().to_vec(),
        None => panic!("NIL message data"),
    }
}

/// Every FETCH item of `raw` served in `format`, the way `fetch` renders them.
struct Rendered {
    data: Vec<u8>,
    parsed: ParsedMessage,
    meta: MessageMeta,
}

impl Rendered {
    fn new(raw: &str, format: BodyFormat) -> Self {
        let stored_crlf = to_crlf(raw.as_bytes()).into_owned();
        let data = serve_form(raw.as_bytes().to_vec(), format);
        let parsed = parse_message(&data);
        let meta = MessageMeta {
            uid: 7,
            flags: MessageFlags::default(),
            modseq: 1,
            // The index's size: the stored message's.
            size: stored_crlf.len() as u64,
            internal_date: 0,
        };
        Self { data, parsed, meta }
    }

    fn item(&self, item: FetchAttribute<'static>, format: BodyFormat) -> FetchItem<'static> {
        let served = Served {
            parsed: Some(Arc::new(self.parsed.clone())),
            bytes: None,
        };
        let size = served.size(format, self.meta.size);
        render_item(
            &item,
            &self.meta,
            size,
            false,
            Some(&self.parsed),
            Some(&self.data),
        )
        .unwrap()
    }

    fn bytes_of(&self, item: FetchAttribute<'static>, format: BodyFormat) -> Vec<u8> {
        item_data(&self.item(item, format))
    }
}

fn body(spec: &[u32], text: Option<SectionText<'static>>) -> FetchAttribute<'static> {
    FetchAttribute::BodySection {
        peek: true,
        section: section(spec, text),
        partial: None,
    }
}

fn body_partial(offset: u32, length: u32) -> FetchAttribute<'static> {
    FetchAttribute::BodySection {
        peek: true,
        section: section(&[], None),
        partial: Some(cas_imap_proto::command::PartialRange {
            offset,
            length: NonZeroU32::new(length).unwrap(),
        }),
    }
}

#[test]
fn best_body_format_serves_the_stored_bytes() {
    let r = Rendered::new(ALTERNATIVE, BodyFormat::BestBodyFormat);
    let stored = to_crlf(ALTERNATIVE.as_bytes()).into_owned();
    assert_eq!(r.data, stored);
    assert_eq!(
        r.bytes_of(body(&[], None), BodyFormat::BestBodyFormat),
        stored
    );
    assert_eq!(
        r.item(FetchAttribute::Rfc822Size, BodyFormat::BestBodyFormat),
        FetchItem::Rfc822Size(stored.len() as u64)
    );
}

/// Under every format the FETCH items describe one message: the structure's parts are the
/// bytes BODY[n] sends, RFC822.SIZE is the length of BODY[], header + text = the whole,
/// partial pieces put together are the whole, BINARY.SIZE is the length of BINARY.
#[test]
fn every_format_renders_one_consistent_message() {
    let expected: [(BodyFormat, &[&str]); 7] = [
        (
            BodyFormat::BestBodyFormat,
            &["TEXT/PLAIN", "TEXT/HTML", "TEXT/CSV"],
        ),
        (BodyFormat::TextOnly, &["TEXT/PLAIN", "TEXT/CSV"]),
        (BodyFormat::HtmlOnly, &["TEXT/HTML", "TEXT/CSV"]),
        (
            BodyFormat::HtmlAndTextAlternative,
            &["TEXT/PLAIN", "TEXT/HTML", "TEXT/CSV"],
        ),
        (BodyFormat::TextEnrichedOnly, &["TEXT/ENRICHED", "TEXT/CSV"]),
        (
            BodyFormat::TextEnrichedAndTextAlternative,
            &["TEXT/PLAIN", "TEXT/ENRICHED", "TEXT/CSV"],
        ),
        (
            BodyFormat::Tnef,
            &["TEXT/PLAIN", "APPLICATION/MS-TNEF", "TEXT/CSV"],
        ),
    ];
    for (format, types) in expected {
        let r = Rendered::new(ALTERNATIVE, format);
        let whole = r.bytes_of(body(&[], None), format);
        assert_eq!(whole, r.data, "{format:?}");
        // CRLF only, as every offset and size assumes.
        assert!(
            !whole.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'),
            "{format:?}"
        );
        assert_eq!(
            r.item(FetchAttribute::Rfc822Size, format),
            FetchItem::Rfc822Size(whole.len() as u64),
            "{format:?}"
        );
        assert_eq!(r.bytes_of(FetchAttribute::Rfc822, format), whole);
        let mut joined = r.bytes_of(FetchAttribute::Rfc822Header, format);
        joined.extend(r.bytes_of(FetchAttribute::Rfc822Text, format));
        assert_eq!(joined, whole, "{format:?}");
        assert_eq!(
            r.bytes_of(body(&[], Some(SectionText::Header)), format),
            r.bytes_of(FetchAttribute::Rfc822Header, format)
        );

        // Partial pieces of 100 octets, put together, are BODY[].
        let mut pieces = Vec::new();
        let mut offset = 0u32;
        loop {
            let piece = r.bytes_of(body_partial(offset, 100), format);
            if piece.is_empty() {
                break;
            }
            pieces.extend(piece);
            offset += 100;
        }
        assert_eq!(pieces, whole, "{format:?}");

        // BODYSTRUCTURE and BODY list the parts the format gives, each with the octets
        // BODY[n] sends; BINARY.SIZE is the length of the decoded BINARY[n].
        let FetchItem::BodyStructure(structure) = r.item(FetchAttribute::BodyStructure, format)
        else {
            panic!()
        };
        let FetchItem::Body(basic) = r.item(FetchAttribute::Body, format) else {
            panic!()
        };
        let mut parts = Vec::new();
        leaves(&structure, Vec::new(), &mut parts);
        let mut basic_parts = Vec::new();
        leaves(&basic, Vec::new(), &mut basic_parts);
        assert_eq!(parts, basic_parts, "{format:?}");
        let names: Vec<&str> = parts.iter().map(|(_, t, _)| t.as_str()).collect();
        assert_eq!(names, types, "{format:?}");
        for (path, media, octets) in &parts {
            let sent = r.bytes_of(body(path, None), format);
            assert_eq!(sent.len(), *octets as usize, "{format:?} {path:?} {media}");
            let binary = r.bytes_of(
                FetchAttribute::Binary {
                    peek: true,
                    part: part(path),
                    partial: None,
                },
                format,
            );
            let FetchItem::BinarySize { size, .. } =
                r.item(FetchAttribute::BinarySize { part: part(path) }, format)
            else {
                panic!()
            };
            assert_eq!(size as usize, binary.len(), "{format:?} {path:?}");
            if media == "TEXT/CSV" {
                assert_eq!(binary, b"item,amount\ncoffee,42\n", "{format:?}");
            }
        }

        // ENVELOPE: the converted message keeps the stored one's headers.
        let FetchItem::Envelope(envelope) = r.item(FetchAttribute::Envelope, format) else {
            panic!()
        };
        assert_eq!(envelope.subject, nstring(b"Agenda"), "{format:?}");
        assert_eq!(
            envelope.message_id,
            nstring(b"<agenda-1@example.test>"),
            "{format:?}"
        );

        // Deterministic: converting again gives the same bytes (clients cache by UID).
        assert_eq!(
            serve_form(ALTERNATIVE.as_bytes().to_vec(), format),
            whole,
            "{format:?}"
        );
    }

    // The text is what the format promises.
    let text = Rendered::new(ALTERNATIVE, BodyFormat::TextOnly);
    let plain = text.bytes_of(
        FetchAttribute::Binary {
            peek: true,
            part: part(&[1]),
            partial: None,
        },
        BodyFormat::TextOnly,
    );
    assert!(
        String::from_utf8_lossy(&plain).contains("Café budget"),
        "{}",
        String::from_utf8_lossy(&plain)
    );
    assert!(!text.data.windows(9).any(|w| w == b"Quarterly"));
}

/// A message the converter leaves alone (no MIME structure it can use) is served as
/// stored under any format, with the stored size.
#[test]
fn unconvertible_message_is_served_as_stored() {
    let raw = "";
    for format in FORMATS {
        let r = Rendered::new(raw, format);
        assert_eq!(r.data, b"", "{format:?}");
        assert_eq!(
            r.item(FetchAttribute::Rfc822Size, format),
            FetchItem::Rfc822Size(0)
        );
    }
}

#[test]
fn cache_keeps_converted_bytes_within_its_budget() {
    let p = Arc::new(parse_message(b"Subject: a\r\n\r\nx"));
    let key = |u| (PathBuf::from("/f"), 1, u, BodyFormat::TextOnly);
    let cache = MessageCache::with_byte_budget(10, 100);
    cache.insert(key(1), p.clone(), Some(Arc::new(vec![0; 60])));
    assert_eq!(cache.converted_bytes(), 60);
    // 60 + 50 > 100: the least recently used bytes go, the structure stays.
    cache.insert(key(2), p.clone(), Some(Arc::new(vec![0; 50])));
    assert_eq!(cache.converted_bytes(), 50);
    assert!(cache.get(&key(1)).unwrap().bytes.is_none());
    assert!(cache.get(&key(2)).unwrap().bytes.is_some());
    // Larger than the whole budget: the structure is kept, the bytes are not.
    cache.insert(key(3), p.clone(), Some(Arc::new(vec![0; 101])));
    assert_eq!(cache.converted_bytes(), 50);
    assert!(cache.get(&key(3)).unwrap().bytes.is_none());
    // Replacing an entry accounts for the bytes it held.
    cache.insert(key(2), p.clone(), Some(Arc::new(vec![0; 10])));
    assert_eq!(cache.converted_bytes(), 10);
    assert_eq!(cache.len(), 3);
    // The entry count bound still holds (10 entries).
    for u in 4..20 {
        cache.insert(key(u), p.clone(), Some(Arc::new(vec![0; 10])));
    }
    assert_eq!(cache.len(), 10);
    assert_eq!(cache.converted_bytes(), 100);
    // The same message in another format is another entry.
    let other = (PathBuf::from("/f"), 1, 2, BodyFormat::HtmlOnly);
    assert!(cache.get(&other).is_none());
}

/// `served`: a converted message comes from the cache the second time (no new conversion),
/// is the same bytes again after it left the cache, and the file is never changed; a stored
/// message's bytes are never cached.
#[test]
fn served_messages_go_through_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("cur")).unwrap();
    std::fs::write(tmp.path().join("cur").join("m1"), ALTERNATIVE).unwrap();
    let at = MessageLocation {
        dir: tmp.path(),
        file_name: "m1",
        uidvalidity: 9,
        uid: 1,
    };
    let cache = MessageCache::with_byte_budget(4, 1 << 20);
    let format = BodyFormat::HtmlOnly;
    let first = served(&cache, &at, format, true, false).unwrap().unwrap();
    assert!(first.bytes.is_none());
    let size = first.size(format, 1);
    assert_eq!(cache.converted_bytes() as u64, size);
    let second = served(&cache, &at, format, true, true).unwrap().unwrap();
    let bytes = second.bytes.unwrap();
    assert_eq!(bytes.len() as u64, size);
    let third = served(&cache, &at, format, false, true).unwrap().unwrap();
    assert!(Arc::ptr_eq(&bytes, third.bytes.as_ref().unwrap()));

    // No cache at all: converted again, identical.
    let none = MessageCache::new(0);
    let again = served(&none, &at, format, true, true).unwrap().unwrap();
    assert_eq!(again.bytes.unwrap().as_slice(), bytes.as_slice());
    assert_eq!(again.parsed.unwrap().size, size);

    // BestBodyFormat: the stored bytes, only the structure cached.
    let stored = served(&cache, &at, BodyFormat::BestBodyFormat, true, true)
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.bytes.unwrap().as_slice(),
        &*to_crlf(ALTERNATIVE.as_bytes())
    );
    assert_eq!(cache.converted_bytes() as u64, size);
    assert_eq!(cache.len(), 2);

    assert_eq!(
        std::fs::read(tmp.path().join("cur").join("m1")).unwrap(),
        ALTERNATIVE.as_bytes()
    );
    std::fs::remove_file(tmp.path().join("cur").join("m1")).unwrap();
    let gone = MessageLocation { uid: 2, ..at };
    assert!(served(&cache, &gone, format, true, true).unwrap().is_none());
}

/// MIME-ish messages: header lines, boundaries, encodings and bodies in any order, with
/// arbitrary bytes between them.
fn mime_like() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    let pieces = prop::sample::select(vec![
        "Subject: s\n",
        "From: Ann <a@example.test>\n",
        "MIME-Version: 1.0\n",
        "Content-Type: multipart/alternative; boundary=\"b\"\n",
        "Content-Type: multipart/mixed; boundary=\"m\"\n",
        "Content-Type: text/html; charset=utf-8\n",
        "Content-Type: text/plain; charset=iso-8859-1\n",
        "Content-Type: message/rfc822\n",
        "Content-Type: application/pdf; name=\"a.pdf\"\n",
        "Content-Disposition: attachment; filename=\"a.pdf\"\n",
        "Content-Transfer-Encoding: base64\n",
        "Content-Transfer-Encoding: quoted-printable\n",
        "\n",
        "\r\n",
        "--b\n",
        "--b--\n",
        "--m\n",
        "--m--\n",
        "<p>x &amp; <b>y</b></p>\n",
        "caf=C3=A9 =\n",
        "aGVsbG8gd29ybGQ=\n",
        "plain text line\n",
        "caf\u{e9} <tag>\n",
    ]);
    let piece = prop_oneof![
        4 => pieces.prop_map(|s| s.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..6),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(96))]

    /// For any stored message and every format, the served message is consistent
    /// ([`fuzzing::check_served`], also the `imap_fetch_render` fuzz target).
    #[test]
    fn any_message_is_served_consistently(raw in mime_like()) {
        fuzzing::check_served(&raw);
    }
}
