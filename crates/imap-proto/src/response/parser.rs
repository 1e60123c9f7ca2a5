//! The response parser: one function per ABNF rule, over one complete message.
//!
//! Dispatch is on the first byte (`+`, `*`, tag) and then on one uppercase keyword compare, so
//! a response costs one pass over its bytes; values borrow from the message.

use std::num::NonZeroU32;

use super::helpers::{
    enter, fail, is_line_end, nstring8, nz_number_fast, string8, take_text, word,
};
use super::{
    Base64, ContinueRequest, Data, Delimiter, ESearch, ESearchItem, FetchItem, GmailLabel,
    ListExtendedItem, MailboxList, MetadataEntries, NamespaceDescription, QuotaUsage, Response,
    ResponseText, Status, StatusResponse, StatusValue, TaggedExtComp, TaggedExtValue, TaggedLabel,
    Text, Thread, is_base64,
};
use crate::body::{body, envelope};
use crate::code::{ObjectId, resp_text_code};
use crate::error::{ParseError, ParseErrorKind};
use crate::parse::{
    PResult, ParseOptions, astring, atom, byte, capability, date_time, flag, flag_fetch, keyword,
    mailbox, mailbox_attribute, mod_sequence_value, mod_sequence_valzer, nil, number, number64,
    nz_number, paren_list, section, section_binary, sequence_set, sp, tag, to_parse_error,
};
use crate::types::QuotaResource;

/// `response = continue-req / response-data / response-tagged` followed by CRLF, over a
/// complete message.
pub(super) fn response<'a>(
    message: &'a [u8],
    options: &ParseOptions,
) -> Result<Response<'a>, ParseError> {
    let depth = options.max_depth;
    let utf8 = options.utf8_accept;
    let parsed = match message.first() {
        Some(b'+') => continue_req(message).map(|(r, c)| (r, Response::Continue(c))),
        Some(b'*') => response_data(message, depth, utf8),
        Some(_) => response_tagged(message).map(|(r, s)| (r, Response::Status(s))),
        None => return Err(ParseError::new(ParseErrorKind::Incomplete, 0)),
    };
    let (rest, value) = parsed.map_err(|e| to_parse_error(e, message))?;
    let rest = match rest {
        [b'\r', b'\n', rest @ ..] | [b'\n', rest @ ..] => rest,
        [] | [b'\r'] => {
            return Err(ParseError::new(ParseErrorKind::Incomplete, message.len()));
        }
        _ => {
            return Err(ParseError::new(
                ParseErrorKind::Syntax,
                message.len() - rest.len(),
            ));
        }
    };
    if !rest.is_empty() {
        return Err(ParseError::new(
            ParseErrorKind::TrailingData,
            message.len() - rest.len(),
        ));
    }
    Ok(value)
}

/// `continue-req = "+" SP (resp-text / base64) CRLF`
///
/// Lenient: `+` directly followed by CRLF (no space) is an empty text.
fn continue_req(input: &[u8]) -> PResult<'_, ContinueRequest<'_>> {
    let (rest, _) = byte(input, b'+')?;
    if rest.first() != Some(&b' ') {
        if is_line_end(rest) {
            return Ok((rest, ContinueRequest::Basic(ResponseText::default())));
        }
        return fail(rest, ParseErrorKind::Syntax);
    }
    let after = &rest[1..];
    if after.first() != Some(&b'[') {
        let (r, raw) = take_text(after);
        if is_base64(raw) {
            return Ok((r, ContinueRequest::Base64(Base64(raw.into()))));
        }
    }
    let (rest, text) = resp_text_after_sp(after)?;
    Ok((rest, ContinueRequest::Basic(text)))
}

/// `response-tagged = tag SP resp-cond-state CRLF`
fn response_tagged(input: &[u8]) -> PResult<'_, StatusResponse<'_>> {
    let (rest, tag) = tag(input)?;
    let (rest, _) = sp(rest)?;
    let (rest, kw) = word(rest);
    let status = if kw.eq_ignore_ascii_case(b"OK") {
        Status::Ok
    } else if kw.eq_ignore_ascii_case(b"NO") {
        Status::No
    } else if kw.eq_ignore_ascii_case(b"BAD") {
        Status::Bad
    } else {
        return fail(input, ParseErrorKind::Syntax);
    };
    let (rest, text) = resp_text(rest)?;
    Ok((rest, StatusResponse::Tagged { tag, status, text }))
}

/// `SP resp-text`, leniently also nothing at all before CRLF.
///
/// `resp-text = ["[" resp-text-code "]" SP] [text]`
fn resp_text(input: &[u8]) -> PResult<'_, ResponseText<'_>> {
    match input {
        [b' ', rest @ ..] => resp_text_after_sp(rest),
        _ if is_line_end(input) => Ok((input, ResponseText::default())),
        _ => fail(input, ParseErrorKind::Syntax),
    }
}

/// `resp-text` after its leading space. A bracket that does not hold a valid code is text.
fn resp_text_after_sp(input: &[u8]) -> PResult<'_, ResponseText<'_>> {
    if let [b'[', after @ ..] = input
        && let Ok((r, code)) = resp_text_code(after)
        && let [b']', r @ ..] = r
    {
        let r = r.strip_prefix(b" ").unwrap_or(r);
        let (r, text) = take_text(r);
        return Ok((
            r,
            ResponseText {
                code: Some(code),
                text: Text::new_unchecked(text),
            },
        ));
    }
    let (r, text) = take_text(input);
    Ok((r, ResponseText::new(Text::new_unchecked(text))))
}

/// `response-data = "*" SP (resp-cond-state / resp-cond-bye / mailbox-data / message-data /
/// capability-data / enable-data) CRLF`, plus `greeting`'s PREAUTH and the extension data.
fn response_data(input: &[u8], depth: usize, utf8: bool) -> PResult<'_, Response<'_>> {
    let (rest, _) = keyword(input, b"* ")?;
    if let Some(b'0'..=b'9') = rest.first() {
        return message_data(rest, depth).map(|(r, d)| (r, Response::Data(d)));
    }
    let (after, kw) = word(rest);
    let status = |s| {
        move |(r, text)| {
            (
                r,
                Response::Status(StatusResponse::Untagged { status: s, text }),
            )
        }
    };
    let data = |(r, d)| (r, Response::Data(d));
    match kw.len() {
        2 if kw.eq_ignore_ascii_case(b"OK") => resp_text(after).map(status(Status::Ok)),
        2 if kw.eq_ignore_ascii_case(b"NO") => resp_text(after).map(status(Status::No)),
        3 if kw.eq_ignore_ascii_case(b"BAD") => resp_text(after).map(status(Status::Bad)),
        3 if kw.eq_ignore_ascii_case(b"BYE") => {
            resp_text(after).map(|(r, t)| (r, Response::Status(StatusResponse::Bye(t))))
        }
        7 if kw.eq_ignore_ascii_case(b"PREAUTH") => {
            resp_text(after).map(|(r, t)| (r, Response::Status(StatusResponse::PreAuth(t))))
        }
        4 if kw.eq_ignore_ascii_case(b"LIST") => {
            let (r, _) = sp(after)?;
            mailbox_list(r, depth, utf8).map(|(r, l)| (r, Response::Data(Data::List(l))))
        }
        4 if kw.eq_ignore_ascii_case(b"LSUB") => {
            let (r, _) = sp(after)?;
            mailbox_list(r, depth, utf8).map(|(r, l)| (r, Response::Data(Data::Lsub(l))))
        }
        5 if kw.eq_ignore_ascii_case(b"FLAGS") => flags_data(after).map(data),
        6 if kw.eq_ignore_ascii_case(b"SEARCH") => search_data(after).map(data),
        6 if kw.eq_ignore_ascii_case(b"STATUS") => status_data(after, utf8).map(data),
        7 if kw.eq_ignore_ascii_case(b"ESEARCH") => esearch_data(after, depth).map(data),
        7 if kw.eq_ignore_ascii_case(b"ENABLED") => {
            capability_list(after).map(|(r, c)| (r, Response::Data(Data::Enabled(c))))
        }
        10 if kw.eq_ignore_ascii_case(b"CAPABILITY") => {
            capability_list(after).map(|(r, c)| (r, Response::Data(Data::Capability(c))))
        }
        8 if kw.eq_ignore_ascii_case(b"VANISHED") => vanished_data(after).map(data),
        9 if kw.eq_ignore_ascii_case(b"NAMESPACE") => namespace_data(after).map(data),
        2 if kw.eq_ignore_ascii_case(b"ID") => id_data(after).map(data),
        5 if kw.eq_ignore_ascii_case(b"QUOTA") => quota_data(after).map(data),
        9 if kw.eq_ignore_ascii_case(b"QUOTAROOT") => quotaroot_data(after, utf8).map(data),
        4 if kw.eq_ignore_ascii_case(b"SORT") => sort_data(after).map(data),
        8 if kw.eq_ignore_ascii_case(b"METADATA") => metadata_data(after, utf8).map(data),
        6 if kw.eq_ignore_ascii_case(b"THREAD") => thread_data(after, depth).map(data),
        _ => fail(rest, ParseErrorKind::Syntax),
    }
}

/// `message-data = nz-number SP ("EXPUNGE" / ("FETCH" SP msg-att))`, and the
/// `number SP ("EXISTS" / "RECENT")` forms of `mailbox-data`.
fn message_data(input: &[u8], depth: usize) -> PResult<'_, Data<'_>> {
    let (rest, n) = number(input)?;
    let (rest, _) = sp(rest)?;
    let (after, kw) = word(rest);
    if kw.eq_ignore_ascii_case(b"EXISTS") {
        return Ok((after, Data::Exists(n)));
    }
    if kw.eq_ignore_ascii_case(b"RECENT") {
        return Ok((after, Data::Recent(n)));
    }
    let Some(seq) = NonZeroU32::new(n) else {
        return fail(input, ParseErrorKind::Syntax);
    };
    if kw.eq_ignore_ascii_case(b"EXPUNGE") {
        return Ok((after, Data::Expunge(seq)));
    }
    if kw.eq_ignore_ascii_case(b"FETCH") {
        let (r, _) = sp(after)?;
        let (r, items) = msg_att(r, depth)?;
        return Ok((r, Data::Fetch { seq, items }));
    }
    fail(rest, ParseErrorKind::Syntax)
}

/// `msg-att = "(" (msg-att-dynamic / msg-att-static) *(SP (msg-att-dynamic / msg-att-static)) ")"`
fn msg_att(input: &[u8], depth: usize) -> PResult<'_, Vec<FetchItem<'_>>> {
    let depth = enter(input, depth)?;
    let (mut rest, _) = byte(input, b'(')?;
    let mut items = Vec::new();
    if let [b')', r @ ..] = rest {
        return Ok((r, items));
    }
    loop {
        let (r, item) = fetch_item(rest, depth)?;
        items.push(item);
        match r {
            [b' ', r @ ..] => rest = r,
            [b')', r @ ..] => return Ok((r, items)),
            _ => return fail(r, ParseErrorKind::Syntax),
        }
    }
}

/// One `msg-att-dynamic / msg-att-static` item.
///
/// ```text
/// msg-att-dynamic = "FLAGS" SP "(" [flag-fetch *(SP flag-fetch)] ")"
/// msg-att-static  = "ENVELOPE" SP envelope / "INTERNALDATE" SP date-time /
///                   "RFC822.SIZE" SP number64 / "BODY" ["STRUCTURE"] SP body /
///                   "BODY" section ["<" number ">"] SP nstring /
///                   "BINARY" section-binary SP (nstring / literal8) /
///                   "BINARY.SIZE" section-binary SP number / "UID" SP uniqueid
/// ```
fn fetch_item(input: &[u8], depth: usize) -> PResult<'_, FetchItem<'_>> {
    let (rest, kw) = word(input);
    let is = |k: &[u8]| kw.len() == k.len() && kw.eq_ignore_ascii_case(k);
    if is(b"BODY") {
        if rest.first() == Some(&b'[') {
            let (r, section) = section(rest)?;
            let (r, origin) = match r {
                [b'<', after @ ..] => {
                    let (r, n) = number(after)?;
                    let (r, _) = byte(r, b'>')?;
                    (r, Some(n))
                }
                _ => (r, None),
            };
            let (r, _) = sp(r)?;
            let (r, data) = nstring8(r)?;
            return Ok((
                r,
                FetchItem::BodySection {
                    section,
                    origin,
                    data,
                },
            ));
        }
        let (r, _) = sp(rest)?;
        let (r, b) = body(depth)(r)?;
        return Ok((r, FetchItem::Body(Box::new(b))));
    }
    let (rest, _) = if rest.first() == Some(&b'[') {
        (rest, ())
    } else {
        sp(rest)?
    };
    let item = if is(b"FLAGS") {
        let (r, flags) = paren_list(rest, flag_fetch)?;
        (r, FetchItem::Flags(flags))
    } else if is(b"UID") {
        let (r, n) = nz_number(rest)?;
        (r, FetchItem::Uid(n))
    } else if is(b"BODYSTRUCTURE") {
        let (r, b) = body(depth)(rest)?;
        (r, FetchItem::BodyStructure(Box::new(b)))
    } else if is(b"ENVELOPE") {
        let (r, e) = envelope(depth)(rest)?;
        (r, FetchItem::Envelope(Box::new(e)))
    } else if is(b"INTERNALDATE") {
        let (r, d) = date_time(rest)?;
        (r, FetchItem::InternalDate(d))
    } else if is(b"RFC822.SIZE") {
        let (r, n) = number64(rest)?;
        (r, FetchItem::Rfc822Size(n))
    } else if is(b"MODSEQ") {
        let (r, _) = byte(rest, b'(')?;
        let (r, n) = mod_sequence_value(r)?;
        let (r, _) = byte(r, b')')?;
        (r, FetchItem::ModSeq(n))
    } else if is(b"RFC822") {
        let (r, s) = nstring8(rest)?;
        (r, FetchItem::Rfc822(s))
    } else if is(b"RFC822.HEADER") {
        let (r, s) = nstring8(rest)?;
        (r, FetchItem::Rfc822Header(s))
    } else if is(b"RFC822.TEXT") {
        let (r, s) = nstring8(rest)?;
        (r, FetchItem::Rfc822Text(s))
    } else if is(b"BINARY") {
        let (r, section) = section_binary(rest)?;
        let (r, _) = sp(r)?;
        // (nstring / literal8)
        let (r, data) = nstring8(r)?;
        (r, FetchItem::Binary { section, data })
    } else if is(b"BINARY.SIZE") {
        let (r, section) = section_binary(rest)?;
        let (r, _) = sp(r)?;
        let (r, size) = number(r)?;
        (r, FetchItem::BinarySize { section, size })
    } else if is(b"EMAILID") {
        let (r, id) = paren_objectid(rest)?;
        (r, FetchItem::EmailId(id))
    } else if is(b"THREADID") {
        if let Ok((r, ())) = nil(rest) {
            (r, FetchItem::ThreadId(None))
        } else {
            let (r, id) = paren_objectid(rest)?;
            (r, FetchItem::ThreadId(Some(id)))
        }
    } else if is(b"X-GM-MSGID") {
        let (r, n) = number64(rest)?;
        (r, FetchItem::GmailMessageId(n))
    } else if is(b"X-GM-THRID") {
        let (r, n) = number64(rest)?;
        (r, FetchItem::GmailThreadId(n))
    } else if is(b"X-GM-LABELS") {
        let (r, labels) = paren_list(rest, gmail_label)?;
        (r, FetchItem::GmailLabels(labels))
    } else {
        return fail(input, ParseErrorKind::Syntax);
    };
    Ok(item)
}

/// A Gmail label: `"\\" atom / astring`.
fn gmail_label(input: &[u8]) -> PResult<'_, GmailLabel<'_>> {
    if let [b'\\', r @ ..] = input {
        let (r, a) = atom(r)?;
        return Ok((r, GmailLabel::System(a)));
    }
    astring(input).map(|(r, a)| (r, GmailLabel::Name(a)))
}

/// `metadata-resp = "METADATA" SP mailbox SP (entry-values / entry-list)` (RFC 5464)
///
/// Lenient: an empty `()` value list, and no entries at all (read as an empty name list).
fn metadata_data(input: &[u8], utf8: bool) -> PResult<'_, Data<'_>> {
    let (rest, _) = sp(input)?;
    let (rest, mailbox) = mailbox(rest, utf8)?;
    let (rest, entries) = match rest {
        [b' ', r @ ..] if r.first() == Some(&b'(') => {
            let (r, values) = paren_list(r, |i| {
                let (i, name) = astring(i)?;
                let (i, _) = sp(i)?;
                let (i, value) = nstring8(i)?;
                Ok((i, (name, value)))
            })?;
            (r, MetadataEntries::Values(values))
        }
        _ => {
            let mut names = Vec::new();
            let mut rest = rest;
            while let [b' ', r @ ..] = rest {
                let (r, name) = astring(r)?;
                names.push(name);
                rest = r;
            }
            (rest, MetadataEntries::Names(names))
        }
    };
    Ok((rest, Data::Metadata { mailbox, entries }))
}

/// `sort-data = "SORT" *(SP nz-number)` (RFC 5256); leniently with a trailing space.
fn sort_data(input: &[u8]) -> PResult<'_, Data<'_>> {
    let mut rest = input;
    let mut numbers = Vec::new();
    while let [b' ', r @ ..] = rest {
        if is_line_end(r) {
            rest = r;
            break;
        }
        let (r, n) = nz_number_fast(r)?;
        numbers.push(n);
        rest = r;
    }
    Ok((rest, Data::Sort(numbers)))
}

/// `thread-data = "THREAD" [SP 1*thread-list]` (RFC 5256)
fn thread_data(input: &[u8], depth: usize) -> PResult<'_, Data<'_>> {
    let mut threads = Vec::new();
    let mut rest = input;
    if let [b' ', r @ ..] = rest {
        rest = r;
        while rest.first() == Some(&b'(') {
            let (r, t) = thread_list(rest, depth)?;
            threads.push(t);
            rest = r;
        }
    }
    Ok((rest, Data::Thread(threads)))
}

/// `thread-list = "(" (thread-members / thread-nested) ")"`,
/// `thread-members = nz-number *(SP nz-number) [SP thread-nested]`,
/// `thread-nested = 2*thread-list`
///
/// Lenient: a single nested list (`(1 (2))`, sent by some servers) and an empty list are
/// accepted and kept as they are, so they re-encode unchanged.
fn thread_list(input: &[u8], depth: usize) -> PResult<'_, Thread> {
    let depth = enter(input, depth)?;
    let (mut rest, _) = byte(input, b'(')?;
    let mut thread = Thread::default();
    loop {
        match rest {
            [b'0'..=b'9', ..] => {
                let (r, n) = nz_number(rest)?;
                thread.members.push(n);
                rest = r.strip_prefix(b" ").unwrap_or(r);
            }
            [b'(', ..] => {
                let (r, t) = thread_list(rest, depth)?;
                thread.branches.push(t);
                // Lenient: a space between branches.
                rest = r.strip_prefix(b" ").unwrap_or(r);
            }
            [b')', r @ ..] => {
                rest = r;
                break;
            }
            _ => return fail(rest, ParseErrorKind::Syntax),
        }
    }
    Ok((rest, thread))
}

/// `"(" objectid ")"` (RFC 8474)
pub(crate) fn paren_objectid(input: &[u8]) -> PResult<'_, ObjectId<'_>> {
    let (rest, _) = byte(input, b'(')?;
    let end = rest
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
        .unwrap_or(rest.len());
    let Ok(id) = ObjectId::new(&rest[..end]) else {
        return fail(rest, ParseErrorKind::Syntax);
    };
    let (rest, _) = byte(&rest[end..], b')')?;
    Ok((rest, id))
}

/// `*(SP capability)`, leniently with one trailing space.
fn capability_list(input: &[u8]) -> PResult<'_, Vec<crate::types::Capability<'_>>> {
    let mut rest = input;
    let mut caps = Vec::new();
    while let [b' ', r @ ..] = rest {
        if is_line_end(r) {
            return Ok((r, caps));
        }
        let (r, c) = capability(r)?;
        caps.push(c);
        rest = r;
    }
    Ok((rest, caps))
}

/// `"FLAGS" SP flag-list`, `flag-list = "(" [flag *(SP flag)] ")"`
fn flags_data(input: &[u8]) -> PResult<'_, Data<'_>> {
    let (rest, _) = sp(input)?;
    let (rest, flags) = paren_list(rest, flag)?;
    Ok((rest, Data::Flags(flags)))
}

/// `"SEARCH" *(SP nz-number) [SP "(" "MODSEQ" SP mod-sequence-value ")"]`
///
/// Lenient: a trailing space.
fn search_data(input: &[u8]) -> PResult<'_, Data<'_>> {
    let mut rest = input;
    let mut numbers = Vec::new();
    let mut mod_seq = None;
    while let [b' ', r @ ..] = rest {
        match r.first() {
            Some(b'(') => {
                let (r, _) = byte(r, b'(')?;
                let (r, _) = keyword(r, b"MODSEQ ")?;
                let (r, m) = mod_sequence_value(r)?;
                let (r, _) = byte(r, b')')?;
                mod_seq = Some(m);
                rest = r;
                break;
            }
            Some(b'0'..=b'9') => {
                let (r, n) = nz_number_fast(r)?;
                numbers.push(n);
                rest = r;
            }
            _ if is_line_end(r) => {
                rest = r;
                break;
            }
            _ => return fail(r, ParseErrorKind::Syntax),
        }
    }
    Ok((rest, Data::Search { numbers, mod_seq }))
}

/// `"STATUS" SP mailbox SP "(" [status-att-list] ")"`
fn status_data(input: &[u8], utf8: bool) -> PResult<'_, Data<'_>> {
    let (rest, _) = sp(input)?;
    let (rest, mailbox) = mailbox(rest, utf8)?;
    let (rest, _) = sp(rest)?;
    let (rest, items) = paren_list(rest, status_att_val)?;
    Ok((rest, Data::Status { mailbox, items }))
}

/// `status-att-val` (RFC 9051 plus RECENT, HIGHESTMODSEQ, APPENDLIMIT, MAILBOXID,
/// DELETED-STORAGE).
fn status_att_val(input: &[u8]) -> PResult<'_, StatusValue<'_>> {
    let (rest, kw) = word(input);
    let (rest, _) = sp(rest)?;
    let is = |k: &[u8]| kw.len() == k.len() && kw.eq_ignore_ascii_case(k);
    if is(b"MESSAGES") {
        number(rest).map(|(r, n)| (r, StatusValue::Messages(n)))
    } else if is(b"UIDNEXT") {
        nz_number(rest).map(|(r, n)| (r, StatusValue::UidNext(n)))
    } else if is(b"UIDVALIDITY") {
        nz_number(rest).map(|(r, n)| (r, StatusValue::UidValidity(n)))
    } else if is(b"UNSEEN") {
        number(rest).map(|(r, n)| (r, StatusValue::Unseen(n)))
    } else if is(b"DELETED") {
        number(rest).map(|(r, n)| (r, StatusValue::Deleted(n)))
    } else if is(b"SIZE") {
        number64(rest).map(|(r, n)| (r, StatusValue::Size(n)))
    } else if is(b"RECENT") {
        number(rest).map(|(r, n)| (r, StatusValue::Recent(n)))
    } else if is(b"HIGHESTMODSEQ") {
        mod_sequence_valzer(rest).map(|(r, n)| (r, StatusValue::HighestModSeq(n)))
    } else if is(b"APPENDLIMIT") {
        if let Ok((r, ())) = nil(rest) {
            Ok((r, StatusValue::AppendLimit(None)))
        } else {
            number(rest).map(|(r, n)| (r, StatusValue::AppendLimit(Some(n))))
        }
    } else if is(b"MAILBOXID") {
        paren_objectid(rest).map(|(r, id)| (r, StatusValue::MailboxId(id)))
    } else if is(b"DELETED-STORAGE") {
        number64(rest).map(|(r, n)| (r, StatusValue::DeletedStorage(n)))
    } else {
        fail(input, ParseErrorKind::Syntax)
    }
}

/// `esearch-response = "ESEARCH" [search-correlator] [SP "UID"] *(SP search-return-data)`
fn esearch_data(input: &[u8], depth: usize) -> PResult<'_, Data<'_>> {
    let mut rest = input;
    let mut result = ESearch {
        tag: None,
        uid: false,
        items: Vec::new(),
    };
    // search-correlator = SP "(" "TAG" SP tag-string ")"
    if let [b' ', b'(', r @ ..] = rest {
        let (r, _) = keyword(r, b"TAG ")?;
        let (r, t) = tag_string(r)?;
        let (r, _) = byte(r, b')')?;
        result.tag = Some(t);
        rest = r;
    }
    if let [b' ', r @ ..] = rest {
        let (r2, kw) = word(r);
        if kw.eq_ignore_ascii_case(b"UID") {
            result.uid = true;
            rest = r2;
        }
    }
    while let [b' ', r @ ..] = rest {
        if is_line_end(r) {
            rest = r;
            break;
        }
        let (r, item) = search_return_data(r, depth)?;
        result.items.push(item);
        rest = r;
    }
    Ok((rest, Data::ESearch(result)))
}

/// `tag-string = astring` (RFC 9051; RFC 4466 says `string`), holding a command tag.
fn tag_string(input: &[u8]) -> PResult<'_, crate::types::Tag<'_>> {
    if input.first() == Some(&b'"') {
        let (rest, _) = byte(input, b'"')?;
        let (after, t) = tag(rest)?;
        let (after, _) = byte(after, b'"')?;
        return Ok((after, t));
    }
    tag(input)
}

/// `search-return-data = "MIN" SP nz-number / "MAX" SP nz-number / "ALL" SP sequence-set /
/// "COUNT" SP number / "MODSEQ" SP mod-sequence-value / search-ret-data-ext`
fn search_return_data(input: &[u8], depth: usize) -> PResult<'_, ESearchItem<'_>> {
    let (rest, name) = label(input)?;
    let (rest, _) = sp(rest)?;
    let is = |k: &[u8]| name.len() == k.len() && name.eq_ignore_ascii_case(k);
    if is(b"MIN") {
        nz_number(rest).map(|(r, n)| (r, ESearchItem::Min(n)))
    } else if is(b"MAX") {
        nz_number(rest).map(|(r, n)| (r, ESearchItem::Max(n)))
    } else if is(b"ALL") {
        sequence_set(rest).map(|(r, s)| (r, ESearchItem::All(s)))
    } else if is(b"COUNT") {
        number(rest).map(|(r, n)| (r, ESearchItem::Count(n)))
    } else if is(b"MODSEQ") {
        mod_sequence_value(rest).map(|(r, n)| (r, ESearchItem::ModSeq(n)))
    } else if is(b"UID") {
        // Only valid right after the correlator; elsewhere it would not re-encode unambiguously.
        fail(input, ParseErrorKind::Syntax)
    } else {
        let (r, value) = tagged_ext_val(rest, depth)?;
        Ok((
            r,
            ESearchItem::Other {
                name: TaggedLabel(name.into()),
                value,
            },
        ))
    }
}

/// `tagged-ext-label = tagged-label-fchar *tagged-label-char`
fn label(input: &[u8]) -> PResult<'_, &[u8]> {
    let end = input
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')))
        .unwrap_or(input.len());
    let l = &input[..end];
    if !super::is_tagged_label(l) {
        return fail(input, ParseErrorKind::Syntax);
    }
    Ok((&input[end..], l))
}

/// `tagged-ext-val = tagged-ext-simple / "(" [tagged-ext-comp] ")"`
pub(crate) fn tagged_ext_val(input: &[u8], depth: usize) -> PResult<'_, TaggedExtValue<'_>> {
    if input.first() == Some(&b'(') {
        let depth = enter(input, depth)?;
        let (rest, comp) = tagged_ext_comp_seq(&input[1..], depth)?;
        let (rest, _) = byte(rest, b')')?;
        return Ok((rest, TaggedExtValue::Comp(comp)));
    }
    // tagged-ext-simple = sequence-set / number / number64: digits alone are a number.
    let end = input
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(input.len());
    if end > 0 && !matches!(input.get(end), Some(b':' | b',')) {
        let (rest, n) = number64(input)?;
        return Ok((rest, TaggedExtValue::Number(n)));
    }
    let (rest, set) = sequence_set(input)?;
    Ok((rest, TaggedExtValue::SequenceSet(set)))
}

/// `tagged-ext-comp *(SP tagged-ext-comp)`, possibly empty (inside parentheses).
fn tagged_ext_comp_seq(input: &[u8], depth: usize) -> PResult<'_, Vec<TaggedExtComp<'_>>> {
    let mut items = Vec::new();
    let mut rest = input;
    if rest.first() == Some(&b')') {
        return Ok((rest, items));
    }
    loop {
        let (r, item) = if rest.first() == Some(&b'(') {
            let depth = enter(rest, depth)?;
            let (r, inner) = tagged_ext_comp_seq(&rest[1..], depth)?;
            let (r, _) = byte(r, b')')?;
            (r, TaggedExtComp::List(inner))
        } else {
            let (r, s) = astring(rest)?;
            (r, TaggedExtComp::AString(s))
        };
        items.push(item);
        match r {
            [b' ', r2 @ ..] => rest = r2,
            _ => return Ok((r, items)),
        }
    }
}

/// `"VANISHED" [SP "(EARLIER)"] SP known-uids` (RFC 7162)
fn vanished_data(input: &[u8]) -> PResult<'_, Data<'_>> {
    let (mut rest, _) = sp(input)?;
    let mut earlier = false;
    if rest.first() == Some(&b'(') {
        let (r, _) = keyword(rest, b"(EARLIER) ")?;
        earlier = true;
        rest = r;
    }
    let (rest, uids) = sequence_set(rest)?;
    Ok((rest, Data::Vanished { earlier, uids }))
}

/// `mailbox-list = "(" [mbx-list-flags] ")" SP (DQUOTE QUOTED-CHAR DQUOTE / nil) SP mailbox
/// [SP mbox-list-extended]`
fn mailbox_list(input: &[u8], depth: usize, utf8: bool) -> PResult<'_, MailboxList<'_>> {
    let (rest, attributes) = paren_list(input, mailbox_attribute)?;
    let (rest, _) = sp(rest)?;
    let (rest, delimiter) = delimiter(rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, mailbox) = mailbox(rest, utf8)?;
    let (rest, extended) = match rest {
        [b' ', r @ ..] => mbox_list_extended(r, depth, utf8)?,
        _ => (rest, Vec::new()),
    };
    Ok((
        rest,
        MailboxList {
            attributes,
            delimiter,
            mailbox,
            extended,
        },
    ))
}

/// `DQUOTE QUOTED-CHAR DQUOTE / nil`, `QUOTED-CHAR = <any TEXT-CHAR except quoted-specials> /
/// "\" quoted-specials / UTF8-2 / UTF8-3 / UTF8-4`
pub(crate) fn delimiter(input: &[u8]) -> PResult<'_, Option<Delimiter>> {
    if let Ok((rest, ())) = nil(input) {
        return Ok((rest, None));
    }
    let (rest, _) = byte(input, b'"')?;
    let (rest, c) = match rest {
        [b'\\', c @ (b'"' | b'\\'), r @ ..] => (r, char::from(*c)),
        [c, r @ ..] if c.is_ascii() && !matches!(c, b'"' | b'\\' | b'\r' | b'\n' | 0) => {
            (r, char::from(*c))
        }
        [c, ..] if *c >= 0xc2 => {
            let len = match c {
                0xc2..=0xdf => 2,
                0xe0..=0xef => 3,
                _ => 4,
            };
            let Some(ch) = rest
                .get(..len)
                .and_then(|b| std::str::from_utf8(b).ok())
                .and_then(|s| s.chars().next())
            else {
                return fail(rest, ParseErrorKind::InvalidUtf8);
            };
            (&rest[len..], ch)
        }
        _ => return fail(rest, ParseErrorKind::Syntax),
    };
    let (rest, _) = byte(rest, b'"')?;
    Ok((rest, Delimiter::new(c).ok()))
}

/// `mbox-list-extended = "(" [mbox-list-extended-item *(SP mbox-list-extended-item)] ")"`
fn mbox_list_extended(
    input: &[u8],
    depth: usize,
    utf8: bool,
) -> PResult<'_, Vec<ListExtendedItem<'_>>> {
    let depth = enter(input, depth)?;
    let (mut rest, _) = byte(input, b'(')?;
    let mut items = Vec::new();
    if let [b')', r @ ..] = rest {
        return Ok((r, items));
    }
    loop {
        let (r, item) = mbox_list_extended_item(rest, depth, utf8)?;
        items.push(item);
        match r {
            [b' ', r @ ..] => rest = r,
            [b')', r @ ..] => return Ok((r, items)),
            _ => return fail(r, ParseErrorKind::Syntax),
        }
    }
}

/// `mbox-list-extended-item = mbox-list-extended-item-tag SP tagged-ext-val`, with
/// `"CHILDINFO" SP "(" list-select-base-opt-quoted *(SP ...) ")"` and
/// `"OLDNAME" SP "(" mailbox ")"` read into their own variants.
fn mbox_list_extended_item(
    input: &[u8],
    depth: usize,
    utf8: bool,
) -> PResult<'_, ListExtendedItem<'_>> {
    let (rest, tag) = astring(input)?;
    let (rest, _) = sp(rest)?;
    let name = tag.as_bytes();
    if name.eq_ignore_ascii_case(b"CHILDINFO")
        && let Ok((r, opts)) = paren_list(rest, string8)
        && !opts.is_empty()
    {
        return Ok((r, ListExtendedItem::ChildInfo(opts)));
    }
    if name.eq_ignore_ascii_case(b"OLDNAME")
        && let Ok((r, _)) = byte(rest, b'(')
        && let Ok((r, m)) = mailbox(r, utf8)
        && let Ok((r, _)) = byte(r, b')')
    {
        return Ok((r, ListExtendedItem::OldName(m)));
    }
    let (rest, value) = tagged_ext_val(rest, depth)?;
    Ok((rest, ListExtendedItem::Other { tag, value }))
}

/// `namespace-response = "NAMESPACE" SP namespace SP namespace SP namespace`
fn namespace_data(input: &[u8]) -> PResult<'_, Data<'_>> {
    let (rest, _) = sp(input)?;
    let (rest, personal) = namespace(rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, other) = namespace(rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, shared) = namespace(rest)?;
    Ok((
        rest,
        Data::Namespace {
            personal,
            other,
            shared,
        },
    ))
}

/// `namespace = nil / "(" 1*namespace-descr ")"`
fn namespace(input: &[u8]) -> PResult<'_, Vec<NamespaceDescription<'_>>> {
    if let Ok((rest, ())) = nil(input) {
        return Ok((rest, Vec::new()));
    }
    let (mut rest, _) = byte(input, b'(')?;
    let mut list = Vec::new();
    loop {
        let (r, d) = namespace_descr(rest)?;
        list.push(d);
        // Lenient: some servers separate the descriptions with a space.
        rest = r.strip_prefix(b" ").unwrap_or(r);
        if let [b')', r @ ..] = rest {
            return Ok((r, list));
        }
    }
}

/// `namespace-descr = "(" string SP (DQUOTE QUOTED-CHAR DQUOTE / nil)
/// [namespace-response-extensions] ")"`
fn namespace_descr(input: &[u8]) -> PResult<'_, NamespaceDescription<'_>> {
    let (rest, _) = byte(input, b'(')?;
    let (rest, prefix) = string8(rest)?;
    let (rest, _) = sp(rest)?;
    let (mut rest, delimiter) = delimiter(rest)?;
    let mut extensions = Vec::new();
    // namespace-response-extension = SP string SP "(" string *(SP string) ")"
    while let [b' ', r @ ..] = rest {
        let (r, name) = string8(r)?;
        let (r, _) = sp(r)?;
        let (r, values) = paren_list(r, string8)?;
        extensions.push((name, values));
        rest = r;
    }
    let (rest, _) = byte(rest, b')')?;
    Ok((
        rest,
        NamespaceDescription {
            prefix,
            delimiter,
            extensions,
        },
    ))
}

/// `id-response = "ID" SP id-params-list`,
/// `id-params-list = "(" [string SP nstring *(SP string SP nstring)] ")" / nil`
fn id_data(input: &[u8]) -> PResult<'_, Data<'_>> {
    let (rest, _) = sp(input)?;
    if let Ok((rest, ())) = nil(rest) {
        return Ok((rest, Data::Id(None)));
    }
    let (mut rest, _) = byte(rest, b'(')?;
    let mut params = Vec::new();
    if let [b')', r @ ..] = rest {
        return Ok((r, Data::Id(Some(params))));
    }
    loop {
        let (r, key) = string8(rest)?;
        let (r, _) = sp(r)?;
        let (r, value) = nstring8(r)?;
        params.push((key, value));
        match r {
            [b' ', r @ ..] => rest = r,
            [b')', r @ ..] => return Ok((r, Data::Id(Some(params)))),
            _ => return fail(r, ParseErrorKind::Syntax),
        }
    }
}

/// `quota-response = "QUOTA" SP quota-root-name SP quota-list`,
/// `quota-list = "(" quota-resource *(SP quota-resource) ")"`
fn quota_data(input: &[u8]) -> PResult<'_, Data<'_>> {
    let (rest, _) = sp(input)?;
    let (rest, root) = astring(rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, resources) = paren_list(rest, quota_resource)?;
    Ok((rest, Data::Quota { root, resources }))
}

/// `quota-resource = resource-name SP resource-usage SP resource-limit`
fn quota_resource(input: &[u8]) -> PResult<'_, QuotaUsage<'_>> {
    let (rest, name) = atom(input)?;
    let resource = QuotaResource::from_atom(name);
    let (rest, _) = sp(rest)?;
    let (rest, usage) = number64(rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, limit) = number64(rest)?;
    Ok((
        rest,
        QuotaUsage {
            resource,
            usage,
            limit,
        },
    ))
}

/// `quotaroot-response = "QUOTAROOT" SP mailbox *(SP quota-root-name)`
fn quotaroot_data(input: &[u8], utf8: bool) -> PResult<'_, Data<'_>> {
    let (rest, _) = sp(input)?;
    let (mut rest, mailbox) = mailbox(rest, utf8)?;
    let mut roots = Vec::new();
    while let [b' ', r @ ..] = rest {
        let (r, root) = astring(r)?;
        roots.push(root);
        rest = r;
    }
    Ok((rest, Data::QuotaRoot { mailbox, roots }))
}
