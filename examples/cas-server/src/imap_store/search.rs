//! SEARCH evaluation over `cas_imap_proto`'s [`SearchKey`].
//!
//! Flags, sizes, dates, UIDs, sequence numbers and modseqs are answered from the index; the
//! message is read and parsed only when a key needs its content (header, body and text
//! keys, and SENTBEFORE/SENTON/SENTSINCE), and only for messages the cheaper keys have not
//! already decided (AND and OR evaluate left to right and stop early).
//!
//! String keys match case-insensitively (Unicode lower-casing, RFC 9051 §6.4.4) as
//! substrings of both the raw header value and its decoded form (RFC 2047 words decoded by
//! mail-parser), and of the decoded text of the body parts (transfer encoding and charset
//! removed) as well as the raw body, so a client finds what the user sees.
//!
//! Under a `MessageRetrievalMimeFormat` other than `BestBodyFormat`
//! ([`SearchContext::format`]) the content keys (headers, BODY, TEXT, SENT*) and
//! LARGER/SMALLER look at the message as FETCH serves it, converted
//! ([`super::render::serve_form`]), not as stored: a client that finds a message by a word
//! must find that word when it fetches the message, and a client that asked for messages
//! LARGER than n must get RFC822.SIZE values above n. Converted messages come from and go to
//! the FETCH cache.

use cas_imap_proto::command::SearchKey;
use cas_imap_proto::types::{SequenceSet, SequenceSetArg};
use mail_parser::{Message, MessageParser, PartType};

use std::sync::Arc;

use super::flags::SystemFlags;
use super::render::{MessageLocation, served};
use super::{FolderName, MessageMeta, StoreError, UserStore, dates};
use crate::mime::BodyFormat;

/// What SEARCH needs from the session.
#[derive(Clone, Debug, Default)]
pub struct SearchContext<'a> {
    /// The session's messages in sequence-number order (`uids[0]` is message 1); only these
    /// are searched, and sequence-set keys are resolved against them.
    pub uids: &'a [u32],
    /// The session's `\Recent` UIDs, sorted.
    pub recent: &'a [u32],
    /// The saved search result (`$`, RFC 5182), as UIDs.
    pub saved: Option<&'a [u32]>,
    /// Now, seconds since the epoch, for OLDER and YOUNGER (RFC 5032).
    pub now: i64,
    /// The `MessageRetrievalMimeFormat` the session serves messages in: content and size
    /// keys look at the message in that form.
    pub format: BodyFormat,
}

pub(crate) fn search(
    user: &UserStore,
    name: &str,
    key: &SearchKey<'_>,
    context: &SearchContext<'_>,
) -> Result<(Vec<u32>, u64), StoreError> {
    let folder_name = FolderName::parse(name)?;
    let (metas, dir, max_uid, uidvalidity) = {
        let (mut folder, before) = user.open_folder(&folder_name)?;
        let mut metas = Vec::with_capacity(context.uids.len());
        for (i, &uid) in context.uids.iter().enumerate() {
            if let Some(pos) = folder.index.position(uid) {
                let e = &folder.index.messages[pos];
                metas.push((
                    i as u32 + 1,
                    MessageMeta::from_entry(e),
                    e.file_name.clone(),
                ));
            }
        }
        let max_uid = folder.index.messages.last().map_or(0, |m| m.uid);
        let uidvalidity = folder.index.uidvalidity;
        let dir = folder.dir.clone();
        user.finish_folder(&folder_name, &mut folder, before)?;
        (metas, dir, max_uid, uidvalidity)
    };
    let cache = &user.store().inner.cache;
    let format = context.format;
    let view = View {
        context,
        max_uid,
        messages: u32::try_from(context.uids.len()).unwrap_or(u32::MAX),
    };
    let mut matches = Vec::new();
    let mut highest = 0;
    for (msn, meta, file_name) in metas {
        let mut content = Content::Unread;
        let at = MessageLocation {
            dir: &dir,
            file_name: &file_name,
            uidvalidity,
            uid: meta.uid,
        };
        let source = Source {
            read: &|| {
                served(cache, &at, format, false, true)?
                    .and_then(|m| m.bytes)
                    .ok_or(StoreError::Expunged)
            },
            size: &|| {
                if !format.converts() {
                    return Ok(Some(meta.size));
                }
                Ok(served(cache, &at, format, true, false)?.map(|m| m.size(format, meta.size)))
            },
        };
        let hit = view.eval(key, msn, &meta, &mut content, &source)?;
        if hit {
            highest = highest.max(meta.modseq);
            matches.push(meta.uid);
        }
    }
    matches.sort_unstable();
    Ok((matches, highest))
}

/// A message's content, read on first need.
enum Content {
    Unread,
    /// Gone from disk since the index was read: content keys do not match.
    Missing,
    Read(Arc<Vec<u8>>),
}

/// How one message's served form is obtained, on first need.
struct Source<'a> {
    /// Its bytes (`Err(Expunged)` when gone).
    read: &'a dyn Fn() -> Result<Arc<Vec<u8>>, StoreError>,
    /// Its RFC822.SIZE (`None` when gone).
    size: &'a dyn Fn() -> Result<Option<u64>, StoreError>,
}

struct View<'c> {
    context: &'c SearchContext<'c>,
    max_uid: u32,
    messages: u32,
}

fn in_set(set: &SequenceSetArg, n: u32, largest: u32, saved: Option<&[u32]>, uid: u32) -> bool {
    match set {
        SequenceSetArg::Set(s) => contains(s, n, largest),
        SequenceSetArg::SavedResult => saved.is_some_and(|s| s.contains(&uid)),
    }
}

fn contains(set: &SequenceSet, n: u32, largest: u32) -> bool {
    set.contains(n, largest)
}

impl View<'_> {
    fn eval(
        &self,
        key: &SearchKey<'_>,
        msn: u32,
        meta: &MessageMeta,
        content: &mut Content,
        source: &Source<'_>,
    ) -> Result<bool, StoreError> {
        use SearchKey as K;
        let f = meta.flags.system;
        let recent = self.context.recent.binary_search(&meta.uid).is_ok();
        let day = meta.internal_date.div_euclid(86_400);
        Ok(match key {
            K::All => true,
            K::Answered => f.contains(SystemFlags::ANSWERED),
            K::Deleted => f.contains(SystemFlags::DELETED),
            K::Draft => f.contains(SystemFlags::DRAFT),
            K::Flagged => f.contains(SystemFlags::FLAGGED),
            K::Seen => f.contains(SystemFlags::SEEN),
            K::Unanswered => !f.contains(SystemFlags::ANSWERED),
            K::Undeleted => !f.contains(SystemFlags::DELETED),
            K::Undraft => !f.contains(SystemFlags::DRAFT),
            K::Unflagged => !f.contains(SystemFlags::FLAGGED),
            K::Unseen => !f.contains(SystemFlags::SEEN),
            K::Recent => recent,
            K::New => recent && !f.contains(SystemFlags::SEEN),
            K::Old => !recent,
            K::Keyword(k) => meta.flags.has_keyword(k.as_str()),
            K::Unkeyword(k) => !meta.flags.has_keyword(k.as_str()),
            K::Before(d) => day < dates::day_of(*d),
            K::On(d) => day == dates::day_of(*d),
            K::Since(d) => day >= dates::day_of(*d),
            K::Larger(n) => (source.size)()?.is_some_and(|size| size > *n),
            K::Smaller(n) => (source.size)()?.is_some_and(|size| size < *n),
            K::Older(secs) => meta.internal_date <= self.context.now - i64::from(secs.get()),
            K::Younger(secs) => meta.internal_date >= self.context.now - i64::from(secs.get()),
            K::Uid(set) => in_set(set, meta.uid, self.max_uid, self.context.saved, meta.uid),
            K::SequenceSet(set) => in_set(set, msn, self.messages, self.context.saved, meta.uid),
            K::ModSeq { mod_seq, .. } => meta.modseq >= *mod_seq,
            K::Not(k) => !self.eval(k, msn, meta, content, source)?,
            K::Or(a, b) => {
                self.eval(a, msn, meta, content, source)?
                    || self.eval(b, msn, meta, content, source)?
            }
            K::And(keys) => {
                for k in keys {
                    if !self.eval(k, msn, meta, content, source)? {
                        return Ok(false);
                    }
                }
                true
            }
            K::SentBefore(d) | K::SentOn(d) | K::SentSince(d) => {
                let Some(message) = load(content, source)? else {
                    return Ok(false);
                };
                let sent = sent_day(&message).unwrap_or(day);
                let want = dates::day_of(*d);
                match key {
                    K::SentBefore(_) => sent < want,
                    K::SentOn(_) => sent == want,
                    _ => sent >= want,
                }
            }
            K::From(s) => header_matches(content, source, "From", s.as_bytes())?,
            K::To(s) => header_matches(content, source, "To", s.as_bytes())?,
            K::Cc(s) => header_matches(content, source, "Cc", s.as_bytes())?,
            K::Bcc(s) => header_matches(content, source, "Bcc", s.as_bytes())?,
            K::Subject(s) => header_matches(content, source, "Subject", s.as_bytes())?,
            K::Header(field, s) => header_matches(
                content,
                source,
                &String::from_utf8_lossy(field.as_bytes()),
                s.as_bytes(),
            )?,
            K::Body(s) => {
                let Some(message) = load(content, source)? else {
                    return Ok(false);
                };
                body_matches(&message, &needle(s.as_bytes()))
            }
            K::Text(s) => {
                let Some(message) = load(content, source)? else {
                    return Ok(false);
                };
                let n = needle(s.as_bytes());
                let header_end = message.parts.first().map_or(0, |p| p.offset_body as usize);
                haystack_contains(
                    message.raw_message.get(..header_end).unwrap_or_default(),
                    &n,
                ) || all_headers_decoded(&message).contains(&n)
                    || body_matches(&message, &n)
            }
            // Gmail's extensions have no meaning in this store.
            _ => false,
        })
    }
}

/// Reads and parses the message if no key has yet; `None` when it is gone.
fn load<'c>(
    content: &'c mut Content,
    source: &Source<'_>,
) -> Result<Option<Message<'c>>, StoreError> {
    if matches!(content, Content::Unread) {
        *content = match (source.read)() {
            Ok(bytes) => Content::Read(bytes),
            Err(StoreError::Expunged) => Content::Missing,
            Err(e) => return Err(e),
        };
    }
    Ok(match content {
        Content::Read(bytes) => Some(
            MessageParser::default()
                .parse(bytes.as_slice())
                .unwrap_or_else(|| Message {
                    raw_message: bytes.as_slice().into(),
                    ..Message::default()
                }),
        ),
        _ => None,
    })
}

fn needle(s: &[u8]) -> String {
    String::from_utf8_lossy(s).to_lowercase()
}

fn haystack_contains(hay: &[u8], needle: &str) -> bool {
    needle.is_empty() || String::from_utf8_lossy(hay).to_lowercase().contains(needle)
}

fn sent_day(message: &Message<'_>) -> Option<i64> {
    let d = message.date()?;
    if !(1..=12).contains(&d.month) || d.day == 0 || d.day > 31 {
        return None;
    }
    Some(dates::days_from_civil(
        i64::from(d.year),
        u32::from(d.month),
        u32::from(d.day),
    ))
}

fn header_matches(
    content: &mut Content,
    source: &Source<'_>,
    name: &str,
    value: &[u8],
) -> Result<bool, StoreError> {
    let Some(message) = load(content, source)? else {
        return Ok(false);
    };
    let n = needle(value);
    let Some(root) = message.parts.first() else {
        return Ok(false);
    };
    let raw = message.raw_message.as_ref();
    Ok(root
        .headers
        .iter()
        .filter(|h| h.name.as_str().eq_ignore_ascii_case(name))
        .any(|h| {
            let raw_value = raw
                .get(h.offset_start as usize..h.offset_end as usize)
                .unwrap_or_default();
            haystack_contains(raw_value, &n) || decoded_value(&h.value).to_lowercase().contains(&n)
        }))
}

/// A header value as text after mail-parser's decoding (encoded words, address lists).
fn decoded_value(value: &mail_parser::HeaderValue<'_>) -> String {
    use mail_parser::HeaderValue as V;
    match value {
        V::Text(t) => t.to_string(),
        V::TextList(l) => l.join(" "),
        V::Address(a) => a
            .iter()
            .map(|a| {
                format!(
                    "{} <{}>",
                    a.name.as_deref().unwrap_or(""),
                    a.address.as_deref().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
        V::DateTime(d) => d.to_rfc822(),
        _ => String::new(),
    }
}

fn all_headers_decoded(message: &Message<'_>) -> String {
    message
        .parts
        .first()
        .map(|p| {
            p.headers
                .iter()
                .map(|h| decoded_value(&h.value))
                .collect::<Vec<_>>()
                .join("\n")
                .to_lowercase()
        })
        .unwrap_or_default()
}

fn body_matches(message: &Message<'_>, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    let header_end = message.parts.first().map_or(0, |p| p.offset_body as usize);
    if haystack_contains(
        message.raw_message.get(header_end..).unwrap_or_default(),
        needle,
    ) {
        return true;
    }
    message.parts.iter().any(|p| match &p.body {
        PartType::Text(t) | PartType::Html(t) => t.to_lowercase().contains(needle),
        PartType::Message(inner) => body_matches(inner, needle),
        _ => false,
    })
}
