//! Exchange `MessageRetrievalMimeFormat` on RETR/TOP: a stored message re-rendered as plain
//! text, HTML, both, text/enriched, or with a TNEF part.
//!
//! Parsing is `mail-parser` (Stalwart's RFC 5322/2045–2049 parser: charsets, encoded words,
//! quoted-printable/base64, nested multiparts, HTML↔text conversion), building is
//! `mail-builder` (transfer encodings chosen per part, header folding). Nothing MIME-specific
//! is hand-parsed here.
//!
//! The converted message keeps every top-level header of the original except the
//! `Content-*` ones and `MIME-Version`, byte for byte (line ends normalised to CRLF), then has
//! a new MIME body:
//!
//! | format | body |
//! |---|---|
//! | `TextOnly` | `text/plain` (HTML-only mail is converted to text) |
//! | `HtmlOnly` | `text/html` (text-only mail is converted to HTML) |
//! | `HtmlAndTextAlternative` | `multipart/alternative`: text, HTML |
//! | `TextEnrichedOnly` | `text/enriched` (RFC 1896) |
//! | `TextEnrichedAndTextAlternative` | `multipart/alternative`: text, enriched |
//! | `BestBodyFormat` | unchanged: the stored bytes |
//! | `Tnef` | `text/plain` plus `winmail.dat` (`application/ms-tnef`, MS-OXTNEF message attributes: class, subject, body) |
//!
//! Attachments are kept (as `multipart/mixed` parts after the body). The output is
//! deterministic (boundaries derive from a hash of the stored message), so converting twice
//! gives the same bytes and the same size — what `EnableExactRFC822Size` relies on.
//!
//! Messages larger than [`MAX_CONVERTED_SIZE`] and messages the parser cannot make sense of
//! are sent unchanged: a conversion must never cost unbounded memory or lose mail.

use std::borrow::Cow;

use mail_builder::headers::content_type::ContentType;
use mail_builder::mime::{BodyPart, MimePart};
use mail_parser::{MessageParser, MimeHeaders};

/// Largest stored message that is converted (the conversion holds it in memory, about three
/// times over); larger ones are sent as stored. 16 MiB.
pub const MAX_CONVERTED_SIZE: u64 = 16 * 1024 * 1024;

/// Exchange's `MessageRetrievalMimeFormat` values (the default is `BestBodyFormat`, as in
/// Exchange).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum BodyFormat {
    /// `TextOnly`.
    TextOnly,
    /// `HtmlOnly`.
    HtmlOnly,
    /// `HtmlAndTextAlternative`.
    HtmlAndTextAlternative,
    /// `TextEnrichedOnly`.
    TextEnrichedOnly,
    /// `TextEnrichedAndTextAlternative`.
    TextEnrichedAndTextAlternative,
    /// `BestBodyFormat`: the message as stored.
    #[default]
    BestBodyFormat,
    /// `Tnef`.
    Tnef,
}

impl BodyFormat {
    /// Whether messages are converted at all.
    pub fn converts(self) -> bool {
        self != BodyFormat::BestBodyFormat
    }
}

/// cas-policy's `MessageRetrievalMimeFormat` as the converter's format (POP3 and IMAP).
impl From<cas_policy::MimeFormat> for BodyFormat {
    fn from(format: cas_policy::MimeFormat) -> Self {
        use cas_policy::MimeFormat as M;
        match format {
            M::TextOnly => BodyFormat::TextOnly,
            M::HtmlOnly => BodyFormat::HtmlOnly,
            M::HtmlAndTextAlternative => BodyFormat::HtmlAndTextAlternative,
            M::TextEnrichedOnly => BodyFormat::TextEnrichedOnly,
            M::TextEnrichedAndTextAlternative => BodyFormat::TextEnrichedAndTextAlternative,
            M::Tnef => BodyFormat::Tnef,
            M::BestBodyFormat => BodyFormat::BestBodyFormat,
        }
    }
}

/// The message re-rendered in `format`, or `None` when it is to be sent as stored
/// (`BestBodyFormat`, too large, not parseable).
pub fn convert(raw: &[u8], format: BodyFormat) -> Option<Vec<u8>> {
    if !format.converts() || raw.len() as u64 > MAX_CONVERTED_SIZE {
        return None;
    }
    let message = MessageParser::default().parse(raw)?;
    let seed = fnv1a(raw);

    let text: String = message
        .body_text(0)
        .map(Cow::into_owned)
        .unwrap_or_default();
    // mail-parser's own text→HTML escapes only `<`; a real HTML part is used as it is.
    let has_html = message.html_part(0).is_some_and(|p| p.is_text_html());
    let html = || -> String {
        match message.body_html(0) {
            Some(h) if has_html => h.into_owned(),
            _ => text_to_html(&text),
        }
    };
    let alternative = |parts: Vec<MimePart<'static>>| {
        MimePart::new(
            ContentType::new("multipart/alternative")
                .attribute("boundary", format!("=_cas_alt_{seed:016x}")),
            BodyPart::Multipart(parts),
        )
    };
    let text_part = || MimePart::new("text/plain", text.clone());
    let mut body = match format {
        BodyFormat::TextOnly => text_part(),
        BodyFormat::HtmlOnly => MimePart::new("text/html", html()),
        BodyFormat::HtmlAndTextAlternative => {
            alternative(vec![text_part(), MimePart::new("text/html", html())])
        }
        BodyFormat::TextEnrichedOnly => MimePart::new("text/enriched", enriched(&text)),
        BodyFormat::TextEnrichedAndTextAlternative => alternative(vec![
            text_part(),
            MimePart::new("text/enriched", enriched(&text)),
        ]),
        BodyFormat::Tnef => {
            let subject = message.subject().unwrap_or_default();
            MimePart::new(
                ContentType::new("multipart/mixed")
                    .attribute("boundary", format!("=_cas_tnef_{seed:016x}")),
                BodyPart::Multipart(vec![
                    text_part(),
                    MimePart::new("application/ms-tnef", tnef(subject, &text))
                        .attachment("winmail.dat"),
                ]),
            )
        }
        BodyFormat::BestBodyFormat => return None,
    };

    let attachments: Vec<MimePart<'static>> = message
        .attachments()
        .map(|part| {
            let ctype = part.content_type().map_or_else(
                || "application/octet-stream".to_owned(),
                |c| match c.subtype() {
                    Some(sub) => format!("{}/{}", c.ctype(), sub),
                    None => c.ctype().to_owned(),
                },
            );
            let mut out = MimePart::new(ctype, BodyPart::Binary(part.contents().to_vec().into()));
            if let Some(name) = part.attachment_name() {
                out = out.attachment(name.to_owned());
            }
            if let Some(cid) = part.content_id() {
                out = out.cid(cid.to_owned());
            }
            out
        })
        .collect();
    if !attachments.is_empty() {
        let mut parts = vec![body];
        parts.extend(attachments);
        body = MimePart::new(
            ContentType::new("multipart/mixed")
                .attribute("boundary", format!("=_cas_mixed_{seed:016x}")),
            BodyPart::Multipart(parts),
        );
    }

    let mut out = Vec::with_capacity(raw.len() + 1024);
    for header in message.headers() {
        let name = header.name.as_str();
        // Bytes, not `str` slicing: a header name may hold non-ASCII characters, and
        // `name[..8]` inside one would panic.
        if name
            .as_bytes()
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"content-"))
            || name.eq_ignore_ascii_case("mime-version")
        {
            continue;
        }
        let field = raw.get(header.offset_field as usize..header.offset_end as usize)?;
        push_crlf_lines(&mut out, field);
    }
    out.extend_from_slice(b"MIME-Version: 1.0\r\n");
    body.write_part(&mut out);
    Some(out)
}

/// Appends `field` with every line end as CRLF and a final CRLF.
fn push_crlf_lines(out: &mut Vec<u8>, field: &[u8]) {
    let field = field.strip_suffix(b"\n").unwrap_or(field);
    let field = field.strip_suffix(b"\r").unwrap_or(field);
    for (i, line) in field.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
    }
    out.extend_from_slice(b"\r\n");
}

/// text/plain → text/enriched (RFC 1896 §2): `<` is written `<<`, and since one line break
/// means a space and n > 1 mean n − 1 breaks, every line break is doubled.
pub fn enriched(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '<' => out.push_str("<<"),
            '\n' => out.push_str("\n\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Plain text as a minimal HTML document, for messages without an HTML part.
fn text_to_html(text: &str) -> String {
    let mut out = String::from("<html><body>");
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' => out.push_str("<br>\n"),
            c => out.push(c),
        }
    }
    out.push_str("</body></html>");
    out
}

/// A TNEF stream (MS-OXTNEF §2.1.3) with the message attributes a reader needs: version, OEM
/// code page (UTF-8), message class `IPM.Microsoft Mail.Note`, subject and body.
pub fn tnef(subject: &str, body: &str) -> Vec<u8> {
    const SIGNATURE: u32 = 0x223E_9F78;
    const LVL_MESSAGE: u8 = 0x01;
    // Attribute ids: (type << 16) | id, MS-OXTNEF §2.1.3.3.
    const ATT_TNEF_VERSION: u32 = 0x0008_9006;
    const ATT_OEM_CODEPAGE: u32 = 0x0006_9007;
    const ATT_MESSAGE_CLASS: u32 = 0x0007_8008;
    const ATT_SUBJECT: u32 = 0x0001_8004;
    const ATT_BODY: u32 = 0x0002_800C;

    fn attribute(out: &mut Vec<u8>, id: u32, data: &[u8]) {
        out.push(LVL_MESSAGE);
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        // Checksum: the sum of the data bytes modulo 65536 (§2.1.3.2).
        let sum = data.iter().fold(0u16, |s, &b| s.wrapping_add(u16::from(b)));
        out.extend_from_slice(&sum.to_le_bytes());
    }
    fn zstr(s: &str) -> Vec<u8> {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        v
    }

    let mut out = Vec::with_capacity(body.len() + subject.len() + 128);
    out.extend_from_slice(&SIGNATURE.to_le_bytes());
    // Legacy key: any value; readers ignore it.
    out.extend_from_slice(&0x0001u16.to_le_bytes());
    attribute(&mut out, ATT_TNEF_VERSION, &0x0001_0000u32.to_le_bytes());
    let mut codepage = 65001u32.to_le_bytes().to_vec();
    codepage.extend_from_slice(&0u32.to_le_bytes());
    attribute(&mut out, ATT_OEM_CODEPAGE, &codepage);
    attribute(
        &mut out,
        ATT_MESSAGE_CLASS,
        &zstr("IPM.Microsoft Mail.Note"),
    );
    attribute(&mut out, ATT_SUBJECT, &zstr(subject));
    attribute(&mut out, ATT_BODY, body.as_bytes());
    out
}

/// FNV-1a, 64 bit: a stable seed for the MIME boundaries of one message.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use mail_parser::MessageParser;

    use super::*;

    const ALTERNATIVE: &[u8] = b"From: carol@example.test\nTo: alice@example.test\nSubject: Agenda\n\
Message-ID: <m1@example.test>\nMIME-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=\"outer\"\n\n\
--outer\nContent-Type: multipart/alternative; boundary=\"inner\"\n\n\
--inner\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n\
Agenda:=0A1. Caf=C3=A9 <budget>\n\
--inner\nContent-Type: text/html; charset=utf-8\n\n\
<html><body><h1>Agenda</h1><p>Caf&eacute;</p></body></html>\n\
--inner--\n\
--outer\nContent-Type: text/csv; name=\"budget.csv\"\nContent-Disposition: attachment; filename=\"budget.csv\"\n\
Content-Transfer-Encoding: base64\n\naXRlbSxhbW91bnQK\n--outer--\n";

    fn parse(bytes: &[u8]) -> mail_parser::Message<'_> {
        MessageParser::default().parse(bytes).unwrap()
    }

    fn content_types(bytes: &[u8]) -> Vec<String> {
        parse(bytes)
            .parts
            .iter()
            .filter_map(|p| p.content_type())
            .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")))
            .collect()
    }

    #[test]
    fn every_format() {
        assert_eq!(convert(ALTERNATIVE, BodyFormat::BestBodyFormat), None);
        let cases = [
            (
                BodyFormat::TextOnly,
                vec!["multipart/mixed", "text/plain", "text/csv"],
            ),
            (
                BodyFormat::HtmlOnly,
                vec!["multipart/mixed", "text/html", "text/csv"],
            ),
            (
                BodyFormat::HtmlAndTextAlternative,
                vec![
                    "multipart/mixed",
                    "multipart/alternative",
                    "text/plain",
                    "text/html",
                    "text/csv",
                ],
            ),
            (
                BodyFormat::TextEnrichedOnly,
                vec!["multipart/mixed", "text/enriched", "text/csv"],
            ),
            (
                BodyFormat::TextEnrichedAndTextAlternative,
                vec![
                    "multipart/mixed",
                    "multipart/alternative",
                    "text/plain",
                    "text/enriched",
                    "text/csv",
                ],
            ),
            (
                BodyFormat::Tnef,
                vec![
                    "multipart/mixed",
                    "multipart/mixed",
                    "text/plain",
                    "application/ms-tnef",
                    "text/csv",
                ],
            ),
        ];
        for (format, types) in cases {
            let out = convert(ALTERNATIVE, format).unwrap();
            assert_eq!(content_types(&out), types, "{format:?}");
            let m = parse(&out);
            assert_eq!(m.subject(), Some("Agenda"), "{format:?}");
            assert_eq!(m.message_id(), Some("m1@example.test"));
            let csv = m
                .attachments()
                .find(|a| a.attachment_name() == Some("budget.csv"));
            assert_eq!(csv.unwrap().contents(), b"item,amount\n", "{format:?}");
            // Deterministic: the same bytes twice (EnableExactRFC822Size relies on it).
            assert_eq!(convert(ALTERNATIVE, format).unwrap(), out);
            // CRLF only.
            assert!(
                !out.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'),
                "{format:?}"
            );
        }
        let text = convert(ALTERNATIVE, BodyFormat::TextOnly).unwrap();
        assert!(parse(&text).body_text(0).unwrap().contains("Café <budget>"));
        let enriched_msg = convert(ALTERNATIVE, BodyFormat::TextEnrichedOnly).unwrap();
        let m = parse(&enriched_msg);
        assert!(
            m.part(1)
                .unwrap()
                .text_contents()
                .unwrap()
                .contains("Café <<budget>")
        );
    }

    #[test]
    fn html_only_mail_becomes_text() {
        let raw = b"Subject: h\r\nContent-Type: text/html\r\n\r\n<p>Hello <b>world</b></p>\r\n";
        let out = convert(raw, BodyFormat::TextOnly).unwrap();
        assert_eq!(content_types(&out), ["text/plain"]);
        assert!(parse(&out).body_text(0).unwrap().contains("Hello world"));
        let out = convert(b"Subject: t\n\nplain <text>\n", BodyFormat::HtmlOnly).unwrap();
        assert_eq!(content_types(&out), ["text/html"]);
        let html = parse(&out).body_html(0).unwrap().into_owned();
        assert!(html.contains("plain &lt;text&gt;"), "{html}");
    }

    #[test]
    fn tnef_stream_layout() {
        let t = tnef("Hi", "Body");
        assert_eq!(&t[..4], &[0x78, 0x9F, 0x3E, 0x22]);
        // version attribute: level 1, id, length 4, data, checksum 1.
        assert_eq!(t[6], 1);
        assert_eq!(&t[7..11], &0x0008_9006u32.to_le_bytes());
        assert_eq!(&t[11..15], &4u32.to_le_bytes());
        assert_eq!(&t[19..21], &1u16.to_le_bytes());
        assert!(t.ends_with(b"Body\x8e\x01"));
    }

    /// Regression (found by the IMAP render proptest): a header name with a multi-byte
    /// character across its 8th byte made the `Content-` check slice inside it and panic.
    #[test]
    fn non_ascii_header_name_does_not_panic() {
        let raw = "Subject: s\nabcdefg\u{e9}: x\nXy-\u{20ac}\u{20ac}: y\n\nbody\n";
        for format in [BodyFormat::TextOnly, BodyFormat::HtmlOnly, BodyFormat::Tnef] {
            let out = convert(raw.as_bytes(), format).unwrap();
            assert!(parse(&out).body_text(0).unwrap().contains("body"));
        }
    }

    #[test]
    fn enriched_rules() {
        assert_eq!(enriched("a<b\nc"), "a<<b\n\nc");
        assert_eq!(enriched("x\r\ny"), "x\n\ny");
    }
}
