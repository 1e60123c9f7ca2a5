//! FETCH rendering: ENVELOPE, BODY / BODYSTRUCTURE, `BODY[section]<partial>`, `BINARY[part]`,
//! `BINARY.SIZE`, RFC822*, INTERNALDATE, RFC822.SIZE, FLAGS, UID and MODSEQ, into
//! `cas_imap_proto` response values.
//!
//! The MIME structure comes from `mail-parser`, run once over the message with its line ends
//! made CRLF (the form FETCH sends, so every offset, size and line count matches what the
//! client receives). What FETCH needs from the parse is kept in a [`ParsedMessage`]: the
//! envelope, both forms of the body structure, and a tree of byte ranges (header and body of
//! every part, header fields) that `BODY[section]` is cut from. Parsed messages live in a
//! bounded LRU [`MessageCache`] keyed by folder, UIDVALIDITY, UID and body format, so a
//! BODYSTRUCTURE after an ENVELOPE costs no parse; message bytes are read from disk only for
//! items that need them.
//!
//! # `MessageRetrievalMimeFormat`
//!
//! Under a format other than `BestBodyFormat` ([`FetchOptions::format`]) the message FETCH
//! serves is the stored one re-rendered by [`crate::mime::convert`] (the converter POP3's RETR
//! uses), with its line ends made CRLF. Every data item is then cut from, parsed from or
//! counted on that one converted message: `BODY[...]`, `BINARY[...]`, `RFC822*`, partial
//! ranges, `RFC822.SIZE`, `BODY`/`BODYSTRUCTURE`, `ENVELOPE` and `BINARY.SIZE` agree with each
//! other as they do for a stored message. The conversion is deterministic (its MIME boundaries
//! derive from the stored bytes), so a message converted again after leaving the cache is the
//! same bytes: clients cache message data by UID and must never see it change. Messages the
//! converter leaves alone (larger than [`crate::mime::MAX_CONVERTED_SIZE`], not parseable)
//! are served as stored, also deterministically. The message on disk is never changed.
//!
//! RFC822.SIZE is always the exact size of the converted message: Exchange's
//! `EnableExactRFC822Size = false` estimate (kept for POP3's LIST) does not apply, because
//! IMAP clients fetch `<offset.length>` pieces up to RFC822.SIZE and check what they got, so
//! an estimate would truncate messages. STATUS `SIZE` (RFC 8438) still sums the stored sizes
//! kept in the index: it is asked for folders that are not selected (LIST-STATUS asks it for
//! every folder), where converting every message would turn a cheap command into reading
//! the whole mailbox; a converted message larger than the stored one makes it an
//! underestimate.
//!
//! Converted bytes are kept in the same LRU as the structure, beside it, within a total byte
//! budget ([`super::Limits::cache_converted_bytes`]): a client that fetches a large message
//! in `<offset.length>` pieces, as Thunderbird does, gets every piece without a new
//! conversion, and memory stays bounded. Stored messages (`BestBodyFormat`) are read from
//! disk for each FETCH as before; only their structure is cached.

use std::borrow::Cow;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use cas_imap_proto::body::{
    Address, BodyExtension, BodyFields, BodyLanguage, BodyStructure, Disposition,
    DispositionExtension, Envelope, LanguageExtension, LocationExtension, MultiPartExtension,
    SinglePart, SinglePartExtension, SinglePartKind,
};
use cas_imap_proto::command::FetchAttribute;
use cas_imap_proto::response::FetchItem;
use cas_imap_proto::types::{IString, Literal, LiteralMode, ModSeq, NString, Section, SectionText};
use mail_parser::{HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType};

use super::flags::SystemFlags;
use super::index::into_crlf;
use super::{FlagOperation, FolderName, MessageFlags, MessageMeta, StoreError, UserStore, dates};
use crate::mime::{self, BodyFormat};

/// Per-call options of [`UserStore::fetch`].
#[derive(Clone, Debug, Default)]
pub struct FetchOptions<'a> {
    /// Set `\Seen` on messages whose body is fetched without `.PEEK` (false for EXAMINE).
    pub set_seen: bool,
    /// The caller's `\Recent` UIDs, sorted, for the FLAGS item.
    pub recent: &'a [u32],
    /// CONDSTORE `CHANGEDSINCE`: only messages with a higher modseq are returned.
    pub changed_since: Option<u64>,
    /// The `MessageRetrievalMimeFormat` messages are served in (the session's, fixed when
    /// the mailbox was selected); `BestBodyFormat` serves them as stored.
    pub format: BodyFormat,
}

/// One message's FETCH data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedMessage {
    /// Its UID.
    pub uid: u32,
    /// Its modseq after the fetch.
    pub modseq: u64,
    /// The data items, in the order asked (plus FLAGS when `\Seen` was set implicitly and
    /// FLAGS was not asked for, as RFC 9051 §6.4.5 requires).
    pub items: Vec<FetchItem<'static>>,
    /// `\Seen` was set by this fetch (other sessions were notified).
    pub seen_set: bool,
}

/// A node of the MIME tree: byte ranges in the CRLF form of the message.
#[derive(Clone, Debug)]
struct Node {
    /// The header block, its terminating empty line included.
    header: (usize, usize),
    /// The body.
    body: (usize, usize),
    /// Header fields: lower-case name and the range of the whole field (name to CRLF).
    fields: Vec<(String, (usize, usize))>,
    /// Content-Transfer-Encoding, lower-case, empty when absent.
    cte: String,
    kind: NodeKind,
}

#[derive(Clone, Debug)]
enum NodeKind {
    Leaf,
    Multipart(Vec<Node>),
    /// message/rfc822 or message/global with its encapsulated message's root node; `None`
    /// when the encapsulated message was transfer-encoded (its parts are not byte ranges of
    /// this message, so only the part as a whole can be fetched).
    Message(Option<Box<Node>>),
}

/// What FETCH needs of a parsed message.
#[derive(Clone, Debug)]
pub struct ParsedMessage {
    envelope: Envelope<'static>,
    body_structure: BodyStructure<'static>,
    body: BodyStructure<'static>,
    root: Node,
    /// Octets of the message as served (the data parsed), for RFC822.SIZE of a converted
    /// message.
    size: u64,
}

/// Folder directory, UIDVALIDITY, UID and the format the message is served in: one stored
/// message has one entry per format in use, so sessions under different formats (a policy
/// reload, a per-mailbox override) never see each other's rendering.
type CacheKey = (PathBuf, u32, u32, BodyFormat);

/// Converted bytes kept in the cache by default, for all users: 64 MiB, four of the largest
/// messages the converter takes ([`crate::mime::MAX_CONVERTED_SIZE`]).
pub const DEFAULT_CONVERTED_BYTES: usize = 64 * 1024 * 1024;

/// A bounded LRU of parsed messages (and of converted message bytes), shared by all
/// sessions.
#[derive(Debug)]
pub struct MessageCache {
    capacity: usize,
    byte_budget: usize,
    inner: Mutex<CacheInner>,
}

#[derive(Debug)]
struct CacheEntry {
    parsed: Arc<ParsedMessage>,
    /// The served bytes of a converted message (never of a stored one: those are on disk).
    bytes: Option<Arc<Vec<u8>>>,
    used: u64,
}

#[derive(Debug, Default)]
struct CacheInner {
    tick: u64,
    map: HashMap<CacheKey, CacheEntry>,
    /// Sum of the `bytes` lengths held.
    bytes: usize,
}

impl CacheInner {
    fn remove(&mut self, key: &CacheKey) {
        if let Some(entry) = self.map.remove(key) {
            self.bytes -= entry.bytes.map_or(0, |b| b.len());
        }
    }
}

impl MessageCache {
    /// A cache of at most `capacity` messages (0 disables it), holding at most
    /// [`DEFAULT_CONVERTED_BYTES`] of converted message bytes.
    pub fn new(capacity: usize) -> Self {
        Self::with_byte_budget(capacity, DEFAULT_CONVERTED_BYTES)
    }

    /// A cache of at most `capacity` messages holding at most `byte_budget` octets of
    /// converted messages (a converted message larger than that is not kept, its structure
    /// is).
    pub fn with_byte_budget(capacity: usize, byte_budget: usize) -> Self {
        Self {
            capacity,
            byte_budget,
            inner: Mutex::new(CacheInner::default()),
        }
    }

    /// The entry for `key` (its `parsed` is always set).
    fn get(&self, key: &CacheKey) -> Option<Served> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.tick += 1;
        let tick = inner.tick;
        let entry = inner.map.get_mut(key)?;
        entry.used = tick;
        Some(Served {
            parsed: Some(entry.parsed.clone()),
            bytes: entry.bytes.clone(),
        })
    }

    fn insert(&self, key: CacheKey, parsed: Arc<ParsedMessage>, bytes: Option<Arc<Vec<u8>>>) {
        if self.capacity == 0 {
            return;
        }
        let bytes = bytes.filter(|b| b.len() <= self.byte_budget);
        let added = bytes.as_ref().map_or(0, |b| b.len());
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.tick += 1;
        let tick = inner.tick;
        inner.remove(&key);
        // O(capacity) eviction: the cache is small and a parse costs far more.
        while inner.map.len() >= self.capacity {
            let Some(oldest) = inner
                .map
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            inner.remove(&oldest);
        }
        // Over the byte budget, the least recently used converted bytes go first; their
        // structure stays (it is small, and RFC822.SIZE and BODYSTRUCTURE still need it).
        while inner.bytes + added > self.byte_budget {
            let Some(oldest) = inner
                .map
                .values_mut()
                .filter(|e| e.bytes.is_some())
                .min_by_key(|e| e.used)
            else {
                break;
            };
            let freed = oldest.bytes.take().map_or(0, |b| b.len());
            inner.bytes -= freed;
        }
        inner.bytes += added;
        inner.map.insert(
            key,
            CacheEntry {
                parsed,
                bytes,
                used: tick,
            },
        );
    }

    /// Number of cached messages.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map
            .len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Octets of converted messages held.
    pub fn converted_bytes(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .bytes
    }
}

/// A message as it is served: its parsed structure and its bytes, each when asked for.
pub(crate) struct Served {
    pub(crate) parsed: Option<Arc<ParsedMessage>>,
    pub(crate) bytes: Option<Arc<Vec<u8>>>,
}

impl Served {
    /// RFC822.SIZE of the served message: the stored size (`stored_size`, from the index)
    /// unless the message is converted, then the converted size (needs `parsed`).
    pub(crate) fn size(&self, format: BodyFormat, stored_size: u64) -> u64 {
        served_size(self.parsed.as_deref(), format, stored_size)
    }
}

/// RFC822.SIZE: `stored_size` (from the index) unless the message is converted, then the
/// size of the converted message `parsed` was parsed from.
fn served_size(parsed: Option<&ParsedMessage>, format: BodyFormat, stored_size: u64) -> u64 {
    match parsed {
        Some(p) if format.converts() => p.size,
        _ => stored_size,
    }
}

/// Where a message lives, for [`served`].
pub(crate) struct MessageLocation<'a> {
    pub(crate) dir: &'a std::path::Path,
    pub(crate) file_name: &'a str,
    pub(crate) uidvalidity: u32,
    pub(crate) uid: u32,
}

/// The message at `at` as served in `format`: its structure when `want_structure`, its
/// bytes when `want_bytes`; `None` when it is gone from disk. Goes through the cache: the
/// structure always, the bytes of converted messages within the cache's byte budget.
pub(crate) fn served(
    cache: &MessageCache,
    at: &MessageLocation<'_>,
    format: BodyFormat,
    want_structure: bool,
    want_bytes: bool,
) -> Result<Option<Served>, StoreError> {
    let key = (at.dir.to_path_buf(), at.uidvalidity, at.uid, format);
    let converts = format.converts();
    let mut parsed = None;
    let mut bytes = None;
    if (want_structure || (want_bytes && converts))
        && let Some(hit) = cache.get(&key)
    {
        parsed = hit.parsed;
        bytes = hit.bytes;
    }
    // A converted message's structure is cached with its bytes, whatever was asked: its
    // size alone needs the conversion.
    let need_parse = parsed.is_none() && (want_structure || converts);
    if (want_bytes && bytes.is_none()) || need_parse {
        let raw = match super::read_message(at.dir, at.file_name) {
            Ok(raw) => raw,
            // Gone since the metadata was read: nothing to serve.
            Err(StoreError::Expunged) => return Ok(None),
            Err(e) => return Err(e),
        };
        let data = Arc::new(serve_form(raw, format));
        if need_parse {
            parsed = Some(Arc::new(parse_message(&data)));
        }
        if (need_parse || converts)
            && let Some(p) = &parsed
        {
            // A converted message's bytes go in with its structure (a later BODY[] or
            // partial piece needs no new conversion); a stored message's stay on disk.
            cache.insert(key, p.clone(), converts.then(|| data.clone()));
        }
        bytes = Some(data);
    }
    Ok(Some(Served {
        parsed: parsed.filter(|_| want_structure),
        bytes: bytes.filter(|_| want_bytes),
    }))
}

/// The stored message `raw` as it is served in `format`, line ends CRLF: converted by
/// [`mime::convert`], or as stored when the format is `BestBodyFormat` or the converter
/// leaves the message alone (too large, not parseable). Deterministic.
pub fn serve_form(raw: Vec<u8>, format: BodyFormat) -> Vec<u8> {
    match mime::convert(&raw, format) {
        Some(converted) => into_crlf(converted),
        None => into_crlf(raw),
    }
}

/// Whether the item needs the message bytes (beyond the cached structure).
fn needs_bytes(item: &FetchAttribute<'_>) -> bool {
    matches!(
        item,
        FetchAttribute::BodySection { .. }
            | FetchAttribute::Binary { .. }
            | FetchAttribute::BinarySize { .. }
            | FetchAttribute::Rfc822
            | FetchAttribute::Rfc822Header
            | FetchAttribute::Rfc822Text
    )
}

/// Whether the item needs the parsed structure; RFC822.SIZE does when the message is
/// converted (the index knows only the stored size).
fn needs_structure(item: &FetchAttribute<'_>, format: BodyFormat) -> bool {
    needs_bytes(item)
        || matches!(
            item,
            FetchAttribute::Envelope | FetchAttribute::Body | FetchAttribute::BodyStructure
        )
        || (format.converts() && matches!(item, FetchAttribute::Rfc822Size))
}

/// Whether fetching the item sets `\Seen` (RFC 9051 §6.4.5: BODY[...] and BINARY[...] without
/// PEEK; RFC 3501: RFC822 and RFC822.TEXT).
fn sets_seen(item: &FetchAttribute<'_>) -> bool {
    match item {
        FetchAttribute::BodySection { peek, .. } | FetchAttribute::Binary { peek, .. } => !peek,
        FetchAttribute::Rfc822 | FetchAttribute::Rfc822Text => true,
        _ => false,
    }
}

pub(crate) fn fetch(
    user: &UserStore,
    name: &str,
    uids: &[u32],
    items: &[FetchAttribute<'_>],
    options: &FetchOptions<'_>,
) -> Result<Vec<FetchedMessage>, StoreError> {
    let folder_name = FolderName::parse(name)?;
    let marks_seen = options.set_seen && items.iter().any(sets_seen);

    // \Seen first (a STORE of its own, which notifies other sessions), so FLAGS shows it.
    let seen_set: Vec<u32> = if marks_seen {
        user.store_flags(
            &folder_name.to_imap(),
            uids,
            FlagOperation::Add,
            &MessageFlags::system(SystemFlags::SEEN),
            None,
        )?
        .changed
        .iter()
        .map(|m| m.uid)
        .collect()
    } else {
        Vec::new()
    };

    // Metadata under the folder lock; content is read after it is released.
    let (metas, file_names, uidvalidity, dir) = {
        let (mut folder, before) = user.open_folder(&folder_name)?;
        let mut metas = Vec::with_capacity(uids.len());
        let mut names = Vec::with_capacity(uids.len());
        for &uid in uids {
            let Some(pos) = folder.index.position(uid) else {
                continue;
            };
            let entry = &folder.index.messages[pos];
            if options.changed_since.is_some_and(|c| entry.modseq <= c) {
                continue;
            }
            metas.push((MessageMeta::from_entry(entry), seen_set.contains(&uid)));
            names.push(entry.file_name.clone());
        }
        let uidvalidity = folder.index.uidvalidity;
        let dir = folder.dir.clone();
        user.finish_folder(&folder_name, &mut folder, before)?;
        (metas, names, uidvalidity, dir)
    };

    let cache = &user.store().inner.cache;
    let format = options.format;
    let want_structure = items.iter().any(|i| needs_structure(i, format));
    let want_bytes = items.iter().any(needs_bytes);
    let mut result = Vec::with_capacity(metas.len());
    for ((meta, seen_set), file_name) in metas.into_iter().zip(file_names) {
        let message = if want_structure || want_bytes {
            let at = MessageLocation {
                dir: &dir,
                file_name: &file_name,
                uidvalidity,
                uid: meta.uid,
            };
            match served(cache, &at, format, want_structure, want_bytes)? {
                Some(m) => m,
                None => continue,
            }
        } else {
            Served {
                parsed: None,
                bytes: None,
            }
        };
        let size = message.size(format, meta.size);
        let mut rendered = Vec::with_capacity(items.len() + 1);
        let recent = options.recent.binary_search(&meta.uid).is_ok();
        for item in items {
            rendered.push(render_item(
                item,
                &meta,
                size,
                recent,
                message.parsed.as_deref(),
                message.bytes.as_deref().map(Vec::as_slice),
            )?);
        }
        if seen_set && !items.iter().any(|i| matches!(i, FetchAttribute::Flags)) {
            rendered.push(FetchItem::Flags(meta.flags.to_fetch(recent)));
        }
        result.push(FetchedMessage {
            uid: meta.uid,
            modseq: meta.modseq,
            items: rendered,
            seen_set,
        });
    }
    Ok(result)
}

fn nstring(bytes: &[u8]) -> NString<'static> {
    NString(Some(IString::from_bytes(bytes.to_vec())))
}

/// Message data (`BODY[...]`, `BINARY[...]`, `RFC822`, `RFC822.HEADER`, `RFC822.TEXT`) is
/// always sent as a literal, never quoted, however short: fetchmail 6.4 reads only a literal
/// there and stalls on `BODY[TEXT] "..."` until its timeout, and Dovecot does the same. Data
/// holding NUL stays a `literal8` (`~{n}`), the only form that can carry it.
fn message_data(bytes: &[u8]) -> NString<'static> {
    let literal = Literal::new(bytes.to_vec(), LiteralMode::Sync)
        .unwrap_or_else(|_| Literal::new_binary(bytes.to_vec(), LiteralMode::Sync));
    NString(Some(IString::Literal(literal)))
}

fn nstring_opt(value: Option<&str>) -> NString<'static> {
    match value {
        Some(v) => nstring(v.as_bytes()),
        None => NString(None),
    }
}

fn istring(value: &str) -> IString<'static> {
    IString::from_bytes(value.as_bytes().to_vec())
}

/// One data item of a message; `size` is its RFC822.SIZE as served, `parsed` and `bytes`
/// are the served message (converted or stored) when the item needs them.
fn render_item(
    item: &FetchAttribute<'_>,
    meta: &MessageMeta,
    size: u64,
    recent: bool,
    parsed: Option<&ParsedMessage>,
    bytes: Option<&[u8]>,
) -> Result<FetchItem<'static>, StoreError> {
    let data = bytes.unwrap_or_default();
    let missing = || StoreError::Io(std::io::Error::other("message structure unavailable"));
    Ok(match item {
        FetchAttribute::Flags => FetchItem::Flags(meta.flags.to_fetch(recent)),
        FetchAttribute::InternalDate => {
            FetchItem::InternalDate(dates::date_time_of(meta.internal_date))
        }
        FetchAttribute::Rfc822Size => FetchItem::Rfc822Size(size),
        FetchAttribute::Uid => FetchItem::Uid(NonZeroU32::new(meta.uid).ok_or_else(missing)?),
        FetchAttribute::ModSeq => {
            FetchItem::ModSeq(ModSeq::new(meta.modseq.max(1)).map_err(|_| missing())?)
        }
        FetchAttribute::Envelope => {
            FetchItem::Envelope(Box::new(parsed.ok_or_else(missing)?.envelope.clone()))
        }
        FetchAttribute::Body => FetchItem::Body(Box::new(parsed.ok_or_else(missing)?.body.clone())),
        FetchAttribute::BodyStructure => {
            FetchItem::BodyStructure(Box::new(parsed.ok_or_else(missing)?.body_structure.clone()))
        }
        FetchAttribute::Rfc822 => FetchItem::Rfc822(message_data(data)),
        FetchAttribute::Rfc822Header => {
            let root = &parsed.ok_or_else(missing)?.root;
            FetchItem::Rfc822Header(message_data(slice(data, root.header)))
        }
        FetchAttribute::Rfc822Text => {
            let root = &parsed.ok_or_else(missing)?.root;
            FetchItem::Rfc822Text(message_data(slice(data, root.body)))
        }
        FetchAttribute::BodySection {
            section, partial, ..
        } => {
            let root = &parsed.ok_or_else(missing)?.root;
            let content = section_bytes(root, data, section);
            let origin = partial.map(|p| p.offset);
            let data = match content {
                None => NString(None),
                Some(c) => {
                    let c = apply_partial(&c, partial.map(|p| (p.offset, p.length.get())));
                    message_data(c)
                }
            };
            FetchItem::BodySection {
                section: section.clone().into_owned(),
                origin,
                data,
            }
        }
        FetchAttribute::Binary { part, partial, .. } => {
            let root = &parsed.ok_or_else(missing)?.root;
            let decoded = binary_bytes(root, data, part)?;
            let decoded = apply_partial(&decoded, partial.map(|p| (p.offset, p.length.get())));
            // The wire form BINARY<origin> is written by the session only when partial;
            // cas-imap-proto's item carries the part and the data.
            FetchItem::Binary {
                section: part.clone(),
                data: message_data(decoded),
            }
        }
        FetchAttribute::BinarySize { part } => {
            let root = &parsed.ok_or_else(missing)?.root;
            let decoded = binary_bytes(root, data, part)?;
            FetchItem::BinarySize {
                section: part.clone(),
                size: u32::try_from(decoded.len()).unwrap_or(u32::MAX),
            }
        }
        // Object ids (RFC 8474) and Gmail items are not offered by this store.
        _ => return Err(StoreError::NoSuchPart),
    })
}

fn slice(data: &[u8], (a, b): (usize, usize)) -> &[u8] {
    data.get(a..b.min(data.len())).unwrap_or_default()
}

fn apply_partial(data: &[u8], partial: Option<(u32, u32)>) -> &[u8] {
    match partial {
        None => data,
        Some((offset, length)) => {
            let start = (offset as usize).min(data.len());
            let end = start.saturating_add(length as usize).min(data.len());
            &data[start..end]
        }
    }
}

/// The part a path names (RFC 9051 §6.4.5): each number indexes the parts of a multipart, or
/// is `1` for the body of a single-part message; a message/rfc822 part in the middle of the
/// path is entered.
fn resolve<'n>(root: &'n Node, path: &[NonZeroU32]) -> Option<&'n Node> {
    let mut container = root;
    let mut part = root;
    for (i, n) in path.iter().enumerate() {
        let n = n.get() as usize;
        if i > 0 {
            container = match &part.kind {
                NodeKind::Message(Some(inner)) => inner,
                NodeKind::Multipart(_) => part,
                _ => return None,
            };
        }
        part = match &container.kind {
            NodeKind::Multipart(children) => children.get(n - 1)?,
            _ if n == 1 => container,
            _ => return None,
        };
    }
    Some(part)
}

/// The message a HEADER/TEXT specifier after `path` applies to: the top-level message, or
/// the encapsulated message of a message/rfc822 part.
fn message_at<'n>(root: &'n Node, path: &[NonZeroU32]) -> Option<&'n Node> {
    if path.is_empty() {
        return Some(root);
    }
    match &resolve(root, path)?.kind {
        NodeKind::Message(Some(inner)) => Some(inner),
        _ => None,
    }
}

/// The bytes of BODY[section]; `None` when the message has no such part (sent as NIL).
fn section_bytes<'d>(root: &Node, data: &'d [u8], section: &Section<'_>) -> Option<Cow<'d, [u8]>> {
    let path = section.part();
    Some(match section.text() {
        None if path.is_empty() => Cow::Borrowed(data),
        None => Cow::Borrowed(slice(data, resolve(root, path)?.body)),
        Some(SectionText::Mime) => Cow::Borrowed(slice(data, resolve(root, path)?.header)),
        Some(SectionText::Header) => Cow::Borrowed(slice(data, message_at(root, path)?.header)),
        Some(SectionText::Text) => Cow::Borrowed(slice(data, message_at(root, path)?.body)),
        Some(SectionText::HeaderFields(names)) | Some(SectionText::HeaderFieldsNot(names)) => {
            let not = matches!(section.text(), Some(SectionText::HeaderFieldsNot(_)));
            let msg = message_at(root, path)?;
            let wanted: Vec<String> = names
                .iter()
                .map(|n| String::from_utf8_lossy(n.as_bytes()).to_ascii_lowercase())
                .collect();
            let mut out = Vec::new();
            for (name, range) in &msg.fields {
                if wanted.iter().any(|w| w == name) != not {
                    out.extend_from_slice(slice(data, *range));
                }
            }
            out.extend_from_slice(b"\r\n");
            Cow::Owned(out)
        }
    })
}

/// BINARY[part]: the part's body with its Content-Transfer-Encoding removed (RFC 3516).
fn binary_bytes<'d>(
    root: &Node,
    data: &'d [u8],
    path: &[NonZeroU32],
) -> Result<Cow<'d, [u8]>, StoreError> {
    if path.is_empty() {
        return Ok(Cow::Borrowed(data));
    }
    let node = resolve(root, path).ok_or(StoreError::NoSuchPart)?;
    let body = slice(data, node.body);
    match node.cte.as_str() {
        "" | "7bit" | "8bit" | "binary" => Ok(Cow::Borrowed(body)),
        "base64" => Ok(Cow::Owned(
            mail_parser::decoders::base64::base64_decode(body).unwrap_or_default(),
        )),
        "quoted-printable" => Ok(Cow::Owned(
            mail_parser::decoders::quoted_printable::quoted_printable_decode(body)
                .unwrap_or_default(),
        )),
        _ => Err(StoreError::UnknownCte),
    }
}

/// Parses `data` (CRLF line ends) into what FETCH needs. Never fails: a message mail-parser
/// cannot make sense of is one text/plain part with an empty envelope.
pub(crate) fn parse_message(data: &[u8]) -> ParsedMessage {
    match MessageParser::default().parse(data) {
        Some(message) if !message.parts.is_empty() => {
            let root = build_node(&message, 0, 0, data.len());
            ParsedMessage {
                envelope: envelope_of(&message),
                body_structure: structure_of(&message, 0, true),
                body: structure_of(&message, 0, false),
                root,
                size: data.len() as u64,
            }
        }
        _ => {
            let header_end = find_header_end(data);
            let root = Node {
                header: (0, header_end),
                body: (header_end, data.len()),
                fields: Vec::new(),
                cte: String::new(),
                kind: NodeKind::Leaf,
            };
            let body = BodyStructure::Single {
                body: SinglePart {
                    kind: SinglePartKind::Text {
                        subtype: istring("PLAIN"),
                        lines: count_lines(&data[header_end..]),
                    },
                    fields: BodyFields {
                        params: vec![(istring("CHARSET"), istring("US-ASCII"))],
                        id: NString(None),
                        description: NString(None),
                        encoding: istring("7BIT"),
                        octets: u32::try_from(data.len() - header_end).unwrap_or(u32::MAX),
                    },
                },
                extension: None,
            };
            ParsedMessage {
                envelope: Envelope::default(),
                body_structure: body.clone(),
                body,
                root,
                size: data.len() as u64,
            }
        }
    }
}

/// End of the header block (after the empty line), or the whole data when there is none.
fn find_header_end(data: &[u8]) -> usize {
    if data.starts_with(b"\r\n") {
        return 2;
    }
    memchr::memmem::find(data, b"\r\n\r\n").map_or(data.len(), |p| p + 4)
}

/// Text lines of a body: its line ends, plus a last line that has none (the CRLF before a
/// MIME boundary belongs to the boundary, so a part's last line usually has none).
fn count_lines(body: &[u8]) -> u64 {
    let ends = memchr::memchr_iter(b'\n', body).count() as u64;
    ends + u64::from(body.last().is_some_and(|&b| b != b'\n'))
}

/// The tree node of part `id` of `message`. `base` is where `message`'s offsets start in the
/// top-level data (0: mail-parser reports offsets of inline encapsulated messages in the
/// top-level buffer already), `limit` the data length.
fn build_node(message: &Message<'_>, id: usize, base: usize, limit: usize) -> Node {
    let part = &message.parts[id];
    let at = |o: u32| (base + o as usize).min(limit);
    let header = (at(part.offset_header), at(part.offset_body));
    let body = (
        at(part.offset_body),
        at(part.offset_end).max(at(part.offset_body)),
    );
    let fields = part
        .headers
        .iter()
        .map(|h| {
            (
                h.name.as_str().to_ascii_lowercase(),
                (at(h.offset_field), at(h.offset_end)),
            )
        })
        .collect();
    let cte = part
        .content_transfer_encoding()
        .map(|c| c.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let kind = match &part.body {
        PartType::Multipart(children) => NodeKind::Multipart(
            children
                .iter()
                .map(|&c| build_node(message, c as usize, base, limit))
                .collect(),
        ),
        PartType::Message(inner) => {
            // An inline encapsulated message shares the top-level buffer; a transfer-encoded
            // one was decoded into a buffer of its own, whose offsets mean nothing here.
            let inline =
                inner.raw_message.len() == message.raw_message.len() && !inner.parts.is_empty();
            NodeKind::Message(inline.then(|| Box::new(build_node(inner, 0, base, limit))))
        }
        _ => NodeKind::Leaf,
    };
    Node {
        header,
        body,
        fields,
        cte,
        kind,
    }
}

fn raw_header<'m>(part: &'m MessagePart<'_>, raw: &'m [u8], name: &str) -> Option<&'m [u8]> {
    part.headers
        .iter()
        .find(|h| h.name.as_str().eq_ignore_ascii_case(name))
        .and_then(|h| raw.get(h.offset_start as usize..h.offset_end as usize))
}

/// A raw header value as ENVELOPE shows it: unfolded, trimmed, not decoded (RFC 9051 §7.5.2).
fn raw_value(part: &MessagePart<'_>, raw: &[u8], name: &str) -> NString<'static> {
    match raw_header(part, raw, name) {
        None => NString(None),
        Some(v) => {
            let mut out = Vec::with_capacity(v.len());
            for &b in v {
                if b != b'\r' && b != b'\n' {
                    out.push(b);
                }
            }
            let trimmed = out.trim_ascii();
            nstring(trimmed)
        }
    }
}

fn envelope_of(message: &Message<'_>) -> Envelope<'static> {
    let part = &message.parts[0];
    let raw = message.raw_message.as_ref();
    let addresses = |name: &str| -> Vec<Address<'static>> {
        part.headers
            .iter()
            .find(|h| h.name.as_str().eq_ignore_ascii_case(name))
            .and_then(|h| h.value.as_address())
            .map(address_list)
            .unwrap_or_default()
    };
    let from = addresses("From");
    let sender = addresses("Sender");
    let reply_to = addresses("Reply-To");
    Envelope {
        date: raw_value(part, raw, "Date"),
        subject: raw_value(part, raw, "Subject"),
        // RFC 9051 §7.5.2: missing Sender and Reply-To default to From.
        sender: if sender.is_empty() {
            from.clone()
        } else {
            sender
        },
        reply_to: if reply_to.is_empty() {
            from.clone()
        } else {
            reply_to
        },
        from,
        to: addresses("To"),
        cc: addresses("Cc"),
        bcc: addresses("Bcc"),
        in_reply_to: raw_value(part, raw, "In-Reply-To"),
        message_id: raw_value(part, raw, "Message-ID"),
    }
}

/// A display name for the envelope: ASCII as is, anything else as an RFC 2047 encoded word
/// (mail-parser hands names back decoded; ENVELOPE strings must stay 7-bit for IMAP4rev1).
fn display_name(name: Option<&str>) -> NString<'static> {
    match name {
        None => NString(None),
        Some(n) if n.is_ascii() => nstring(n.as_bytes()),
        Some(n) => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(n.as_bytes());
            nstring(format!("=?utf-8?b?{encoded}?=").as_bytes())
        }
    }
}

fn addr(name: Option<&str>, address: Option<&str>) -> Address<'static> {
    let (mailbox, host) = match address {
        Some(a) => match a.rsplit_once('@') {
            Some((m, h)) => (Some(m), Some(h)),
            // RFC 9051 §7.5.2: host NIL means group syntax, so an address without a domain
            // gets an empty host.
            None => (Some(a), Some("")),
        },
        None => (None, Some("")),
    };
    Address {
        name: display_name(name),
        adl: NString(None),
        mailbox: nstring_opt(mailbox),
        host: nstring_opt(host),
    }
}

fn address_list(value: &mail_parser::Address<'_>) -> Vec<Address<'static>> {
    match value {
        mail_parser::Address::List(list) => list
            .iter()
            .map(|a| addr(a.name.as_deref(), a.address.as_deref()))
            .collect(),
        mail_parser::Address::Group(groups) => {
            let mut out = Vec::new();
            for g in groups {
                match &g.name {
                    // A group: start marker (mailbox = group name, host NIL), members, end
                    // marker (mailbox and host NIL).
                    Some(name) => {
                        out.push(Address {
                            name: NString(None),
                            adl: NString(None),
                            mailbox: nstring(name.as_bytes()),
                            host: NString(None),
                        });
                        out.extend(
                            g.addresses
                                .iter()
                                .map(|a| addr(a.name.as_deref(), a.address.as_deref())),
                        );
                        out.push(Address::default());
                    }
                    None => out.extend(
                        g.addresses
                            .iter()
                            .map(|a| addr(a.name.as_deref(), a.address.as_deref())),
                    ),
                }
            }
            out
        }
    }
}

fn upper(s: &str) -> IString<'static> {
    istring(&s.to_ascii_uppercase())
}

fn params_of(
    ct: Option<&mail_parser::ContentType<'_>>,
) -> Vec<(IString<'static>, IString<'static>)> {
    ct.and_then(|c| c.attributes.as_ref())
        .map(|attrs| {
            attrs
                .iter()
                .map(|a| (upper(&a.name), istring(&a.value)))
                .collect()
        })
        .unwrap_or_default()
}

fn language_of(part: &MessagePart<'_>) -> Option<BodyLanguage<'static>> {
    match part.content_language() {
        HeaderValue::Text(t) => Some(BodyLanguage::Single(nstring(t.as_bytes()))),
        HeaderValue::TextList(list) if !list.is_empty() => {
            BodyLanguage::list(list.iter().map(|t| istring(t)).collect()).ok()
        }
        _ => None,
    }
}

fn disposition_tail(part: &MessagePart<'_>) -> DispositionExtension<'static> {
    let disposition = part.content_disposition().map(|d| Disposition {
        kind: upper(&d.c_type),
        params: params_of(Some(d)),
    });
    DispositionExtension {
        disposition,
        tail: Some(LanguageExtension {
            language: language_of(part).unwrap_or(BodyLanguage::Single(NString(None))),
            tail: Some(LocationExtension {
                location: nstring_opt(part.content_location()),
                extensions: Vec::<BodyExtension<'static>>::new(),
            }),
        }),
    }
}

/// BODYSTRUCTURE (`extended`) or BODY of part `id`.
fn structure_of(message: &Message<'_>, id: usize, extended: bool) -> BodyStructure<'static> {
    let part = &message.parts[id];
    let raw = message.raw_message.as_ref();
    let ct = part.content_type();
    let (c_type, c_subtype) = match ct {
        Some(c) => (
            c.c_type.to_ascii_uppercase(),
            c.c_subtype.as_deref().unwrap_or("").to_ascii_uppercase(),
        ),
        None => (String::new(), String::new()),
    };
    if let PartType::Multipart(children) = &part.body {
        let parts: Vec<_> = children
            .iter()
            .map(|&c| structure_of(message, c as usize, extended))
            .collect();
        let subtype = if c_subtype.is_empty() {
            "MIXED".to_owned()
        } else {
            c_subtype.clone()
        };
        let extension = extended.then(|| MultiPartExtension {
            params: params_of(ct),
            tail: Some(disposition_tail(part)),
        });
        if let Ok(multi) = BodyStructure::multi(parts, istring(&subtype), extension) {
            return multi;
        }
        // A multipart without parts (mail-parser never yields one, but the type allows it)
        // falls through to a basic part.
    }
    let body_len = (part.offset_end.saturating_sub(part.offset_body)) as usize;
    let body_bytes = raw
        .get(part.offset_body as usize..part.offset_end as usize)
        .unwrap_or_default();
    let mut params = params_of(ct);
    let (media_type, subtype) = if c_type.is_empty() {
        // RFC 2045 §5.2 default.
        if params.is_empty() {
            params.push((istring("CHARSET"), istring("US-ASCII")));
        }
        ("TEXT".to_owned(), "PLAIN".to_owned())
    } else {
        (
            c_type,
            if c_subtype.is_empty() {
                "PLAIN".to_owned()
            } else {
                c_subtype
            },
        )
    };
    let encoding = part
        .content_transfer_encoding()
        .map(|e| e.trim().to_ascii_uppercase())
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| "7BIT".to_owned());
    let fields = BodyFields {
        params,
        id: nstring_opt(
            part.content_id()
                .map(|i| i.trim())
                .map(|i| {
                    // mail-parser strips the angle brackets; IMAP shows the header value.
                    if i.starts_with('<') {
                        i.to_owned()
                    } else {
                        format!("<{i}>")
                    }
                })
                .as_deref(),
        ),
        description: raw_value(part, raw, "Content-Description"),
        encoding: istring(&encoding),
        octets: u32::try_from(body_len).unwrap_or(u32::MAX),
    };
    let kind = match &part.body {
        PartType::Message(inner) if media_type == "MESSAGE" && !inner.parts.is_empty() => {
            SinglePartKind::Message {
                global: subtype == "GLOBAL",
                envelope: Box::new(envelope_of(inner)),
                body: Box::new(structure_of(inner, 0, extended)),
                lines: count_lines(body_bytes),
            }
        }
        _ if media_type == "TEXT" => SinglePartKind::Text {
            subtype: istring(&subtype),
            lines: count_lines(body_bytes),
        },
        _ => SinglePartKind::Basic {
            media_type: istring(&media_type),
            subtype: istring(&subtype),
        },
    };
    let extension = extended.then(|| SinglePartExtension {
        md5: raw_value(part, raw, "Content-MD5"),
        tail: Some(disposition_tail(part)),
    });
    BodyStructure::Single {
        body: SinglePart { kind, fields },
        extension,
    }
}

/// Invariants of serving a stored message in every format, shared by the proptest in this
/// module's tests and the `imap_fetch_render` fuzz target.
#[doc(hidden)]
pub mod fuzzing {
    use std::num::NonZeroU32;

    use cas_imap_proto::command::{FetchAttribute, PartialRange};
    use cas_imap_proto::response::FetchItem;
    use cas_imap_proto::types::Section;

    use super::{BodyFormat, MessageFlags, MessageMeta, into_crlf, parse_message, render_item};
    use super::{serve_form, served_size};

    /// Every `MessageRetrievalMimeFormat` (BestBodyFormat first).
    pub const FORMATS: [BodyFormat; 7] = [
        BodyFormat::BestBodyFormat,
        BodyFormat::TextOnly,
        BodyFormat::HtmlOnly,
        BodyFormat::HtmlAndTextAlternative,
        BodyFormat::TextEnrichedOnly,
        BodyFormat::TextEnrichedAndTextAlternative,
        BodyFormat::Tnef,
    ];

    fn data_of(item: &FetchItem<'_>) -> Vec<u8> {
        match item {
            FetchItem::BodySection { data, .. }
            | FetchItem::Rfc822(data)
            | FetchItem::Rfc822Header(data)
            | FetchItem::Rfc822Text(data) => data
                .0
                .as_ref()
                .map_or_else(Vec::new, |s| s.as_bytes().to_vec()),
            other => panic!("not message data: {other:?}"),
        }
    }

    /// For the stored message `raw` and every format: serving never panics and is
    /// deterministic, BestBodyFormat serves the stored bytes (CRLF), and the served message
    /// is self-consistent: RFC822.SIZE = BODY[] length, RFC822.HEADER + RFC822.TEXT = RFC822,
    /// partial pieces put together = BODY[], and BODYSTRUCTURE, BODY and ENVELOPE render.
    /// Panics when an invariant does not hold.
    pub fn check_served(raw: &[u8]) {
        let stored = into_crlf(raw.to_vec());
        for format in FORMATS {
            let data = serve_form(raw.to_vec(), format);
            assert_eq!(serve_form(raw.to_vec(), format), data, "{format:?}");
            if !format.converts() {
                assert_eq!(data, stored);
            }
            let parsed = parse_message(&data);
            let meta = MessageMeta {
                uid: 1,
                flags: MessageFlags::default(),
                modseq: 1,
                size: stored.len() as u64,
                internal_date: 0,
            };
            let size = served_size(Some(&parsed), format, meta.size);
            let render = |item: FetchAttribute<'static>| {
                render_item(&item, &meta, size, false, Some(&parsed), Some(&data))
                    .unwrap_or_else(|e| panic!("{format:?} {item:?}: {e}"))
            };
            let whole = |partial| FetchAttribute::BodySection {
                peek: true,
                section: Section::new(Vec::new(), None).expect("the whole message"),
                partial,
            };
            assert_eq!(
                render(FetchAttribute::Rfc822Size),
                FetchItem::Rfc822Size(data.len() as u64)
            );
            assert_eq!(data_of(&render(whole(None))), data, "{format:?}");
            assert_eq!(data_of(&render(FetchAttribute::Rfc822)), data);
            let mut joined = data_of(&render(FetchAttribute::Rfc822Header));
            joined.extend(data_of(&render(FetchAttribute::Rfc822Text)));
            assert_eq!(joined, data, "{format:?}");
            const PIECE: u32 = 37;
            let mut pieces = Vec::new();
            for offset in (0..=data.len() as u32).step_by(PIECE as usize) {
                let length = NonZeroU32::new(PIECE).expect("non-zero");
                pieces.extend(data_of(&render(whole(Some(PartialRange {
                    offset,
                    length,
                })))));
            }
            assert_eq!(pieces, data, "{format:?}");
            render(FetchAttribute::BodyStructure);
            render(FetchAttribute::Body);
            render(FetchAttribute::Envelope);
        }
    }
}

#[cfg(test)]
mod tests;
