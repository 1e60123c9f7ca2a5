//! The per-folder index: the persistent half of a folder's state, in `cas-imap-index` inside
//! the folder's Maildir directory.
//!
//! ```text
//! cas-imap-index 1 <uidvalidity> <uidnext> <highestmodseq> <first-recent-uid> <vanished-floor>
//! K <keyword>                                  keyword table; a message names keywords by index
//! M <uid> <modseq> <size> <internaldate> <keyword-indices|-> <file name in cur/>
//! V <uid> <modseq>                             expunge tombstones, oldest first
//! ```
//!
//! - System flags are not in the index: they are the Maildir info of the file name
//!   ([`super::flags::SystemFlags`]), so other Maildir programs see and change them. The index
//!   keeps the last file name it saw; a different info on the next scan is a flag change made
//!   by someone else and gets a new modseq.
//! - Keywords are a sidecar (the `K` table) rather than Dovecot's `a`–`z` file-name letters:
//!   no limit of 26, and no rename of the message file for a keyword change.
//! - `size` is the RFC822.SIZE: octets with every bare LF counted as CRLF, which is the form
//!   FETCH sends. `internaldate` is seconds since the Unix epoch (UTC).
//! - `first-recent-uid`: messages at or above it have not been announced as `\Recent` to any
//!   session yet (RFC 3501 §2.3.2); the first rev1 SELECT claims them.
//! - `vanished-floor`: tombstones up to this modseq were trimmed (the list is bounded), so a
//!   QRESYNC client asking about an older modseq gets every missing UID instead of an exact
//!   list ([`super::VanishedSince::complete`]).
//!
//! The file is rewritten whole with [`crate::fsutil::replace_file`] (synced temp file and
//! rename), always under the folder lock (`cas-imap-lock`, an exclusive `flock`, which
//! excludes other threads of this process as well as other processes: each lock holder opens
//! its own file description). A missing index starts a new UID space with a fresh
//! UIDVALIDITY; a damaged one does the same, so no client can mistake a new message for an
//! old UID.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::flags::{MessageFlags, SystemFlags};
use super::{StoreConfig, StoreError};
use crate::fsutil::replace_file;

pub(crate) const INDEX_FILE: &str = "cas-imap-index";
const INDEX_MAGIC: &str = "cas-imap-index 1";
pub(crate) const LOCK_FILE: &str = "cas-imap-lock";
/// Per user: the last UIDVALIDITY handed out, so a folder deleted and created again within
/// the same second still gets a new one.
pub(crate) const UIDVALIDITY_FILE: &str = "cas-imap-uidvalidity";
const UIDVALIDITY_LOCK: &str = "cas-imap-uidvalidity.lock";
const READ_CHUNK: usize = 64 * 1024;

/// One message of the index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub uid: u32,
    pub modseq: u64,
    pub size: u64,
    pub internal_date: i64,
    pub keywords: Vec<String>,
    /// Current file name in `cur/` (base name plus info).
    pub file_name: String,
}

impl IndexEntry {
    pub fn flags(&self) -> MessageFlags {
        MessageFlags {
            system: SystemFlags::from_file_name(&self.file_name),
            keywords: self.keywords.clone(),
        }
    }

    pub fn base_name(&self) -> &str {
        base_name(&self.file_name)
    }
}

/// The parsed index of one folder.
#[derive(Clone, Debug)]
pub(crate) struct FolderIndex {
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub highest_modseq: u64,
    pub first_recent_uid: u32,
    pub vanished_floor: u64,
    /// Every keyword ever used in the folder (PERMANENTFLAGS lists them).
    pub keyword_table: Vec<String>,
    /// Sorted by uid.
    pub messages: Vec<IndexEntry>,
    /// (uid, modseq of the expunge), oldest first.
    pub tombstones: VecDeque<(u32, u64)>,
}

impl FolderIndex {
    fn fresh(uidvalidity: u32) -> Self {
        Self {
            uidvalidity,
            uidnext: 1,
            highest_modseq: 1,
            first_recent_uid: 1,
            vanished_floor: 0,
            keyword_table: Vec::new(),
            messages: Vec::new(),
            tombstones: VecDeque::new(),
        }
    }

    /// Position of `uid` in `messages`.
    pub fn position(&self, uid: u32) -> Option<usize> {
        self.messages.binary_search_by_key(&uid, |m| m.uid).ok()
    }

    /// The next modseq; every change takes one.
    pub fn next_modseq(&mut self) -> u64 {
        self.highest_modseq += 1;
        self.highest_modseq
    }

    /// Takes the next UID.
    pub fn take_uid(&mut self) -> Result<u32, StoreError> {
        if self.uidnext == u32::MAX {
            // 4 billion messages in one folder: recreating the folder gives a new UID space.
            return Err(StoreError::UidsExhausted);
        }
        let uid = self.uidnext;
        self.uidnext += 1;
        Ok(uid)
    }

    /// Records that `uid` was expunged, trimming the tombstone list to `limit`.
    pub fn tombstone(&mut self, uid: u32, modseq: u64, limit: usize) {
        self.tombstones.push_back((uid, modseq));
        while self.tombstones.len() > limit {
            if let Some((_, m)) = self.tombstones.pop_front() {
                self.vanished_floor = self.vanished_floor.max(m);
            }
        }
    }

    /// Adds keywords of `flags` to the table, refusing to grow it past `limit`.
    pub fn declare_keywords(
        &mut self,
        flags: &MessageFlags,
        limit: usize,
    ) -> Result<(), StoreError> {
        for k in &flags.keywords {
            if !self.keyword_table.iter().any(|t| t.eq_ignore_ascii_case(k)) {
                if self.keyword_table.len() >= limit {
                    return Err(StoreError::TooManyKeywords);
                }
                self.keyword_table.push(k.clone());
            }
        }
        Ok(())
    }

    /// `flags` with each keyword in the spelling the table has (keywords are
    /// case-insensitive; the first spelling used in the folder is the one shown).
    pub fn canonical_keywords(&self, flags: &MessageFlags) -> MessageFlags {
        let mut out = MessageFlags::system(flags.system);
        for k in &flags.keywords {
            let spelled = self
                .keyword_table
                .iter()
                .find(|t| t.eq_ignore_ascii_case(k))
                .unwrap_or(k);
            out.add_keyword(spelled);
        }
        out
    }

    fn serialize(&self) -> String {
        let mut text = format!(
            "{INDEX_MAGIC} {} {} {} {} {}\n",
            self.uidvalidity,
            self.uidnext,
            self.highest_modseq,
            self.first_recent_uid,
            self.vanished_floor
        );
        let mut positions = HashMap::new();
        for (i, k) in self.keyword_table.iter().enumerate() {
            positions.insert(k.to_ascii_lowercase(), i);
            text.push_str("K ");
            text.push_str(k);
            text.push('\n');
        }
        for m in &self.messages {
            let kws: Vec<String> = m
                .keywords
                .iter()
                .filter_map(|k| {
                    positions
                        .get(&k.to_ascii_lowercase())
                        .map(|p| p.to_string())
                })
                .collect();
            let kws = if kws.is_empty() {
                "-".to_owned()
            } else {
                kws.join(",")
            };
            text.push_str(&format!(
                "M {} {} {} {} {} {}\n",
                m.uid, m.modseq, m.size, m.internal_date, kws, m.file_name
            ));
        }
        for (uid, modseq) in &self.tombstones {
            text.push_str(&format!("V {uid} {modseq}\n"));
        }
        text
    }

    fn parse(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        let header = lines.next()?.strip_prefix(INDEX_MAGIC)?;
        let nums: Vec<u64> = header
            .split_ascii_whitespace()
            .map(|n| n.parse().ok())
            .collect::<Option<_>>()?;
        let [
            uidvalidity,
            uidnext,
            highest_modseq,
            first_recent_uid,
            vanished_floor,
        ] = nums[..]
        else {
            return None;
        };
        let mut index = Self {
            uidvalidity: u32::try_from(uidvalidity).ok().filter(|&v| v != 0)?,
            uidnext: u32::try_from(uidnext).ok().filter(|&v| v != 0)?,
            highest_modseq,
            first_recent_uid: u32::try_from(first_recent_uid).ok()?,
            vanished_floor,
            keyword_table: Vec::new(),
            messages: Vec::new(),
            tombstones: VecDeque::new(),
        };
        for line in lines {
            if let Some(k) = line.strip_prefix("K ") {
                index.keyword_table.push(k.to_owned());
            } else if let Some(m) = line.strip_prefix("M ") {
                let mut it = m.splitn(6, ' ');
                let uid: u32 = it.next()?.parse().ok()?;
                let modseq: u64 = it.next()?.parse().ok()?;
                let size: u64 = it.next()?.parse().ok()?;
                let internal_date: i64 = it.next()?.parse().ok()?;
                let kws = it.next()?;
                let file_name = it.next()?.to_owned();
                let keywords = if kws == "-" {
                    Vec::new()
                } else {
                    kws.split(',')
                        .map(|i| {
                            let i: usize = i.parse().ok()?;
                            index.keyword_table.get(i).cloned()
                        })
                        .collect::<Option<_>>()?
                };
                let ordered = index.messages.last().is_none_or(|l| l.uid < uid);
                if uid == 0 || uid >= index.uidnext || modseq > highest_modseq || !ordered {
                    return None;
                }
                if !is_message_name(&file_name) {
                    return None;
                }
                index.messages.push(IndexEntry {
                    uid,
                    modseq,
                    size,
                    internal_date,
                    keywords,
                    file_name,
                });
            } else if let Some(v) = line.strip_prefix("V ") {
                let (uid, modseq) = v.split_once(' ')?;
                index
                    .tombstones
                    .push_back((uid.parse().ok()?, modseq.parse().ok()?));
            } else {
                return None;
            }
        }
        Some(index)
    }
}

/// An exclusive lock on one folder (or another lock file); released on drop.
#[derive(Debug)]
pub(crate) struct Lock {
    _file: File,
}

/// Takes the exclusive advisory lock `dir/name`, waiting for other holders.
pub(crate) fn lock_file(dir: &Path, name: &str) -> io::Result<Lock> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(dir.join(name))?;
    file.lock()?;
    Ok(Lock { _file: file })
}

/// A locked folder with its loaded index.
#[derive(Debug)]
pub(crate) struct OpenFolder {
    pub dir: PathBuf,
    pub index: FolderIndex,
    /// The index differs from the file.
    pub dirty: bool,
    /// HIGHESTMODSEQ as read from the file, before the scan.
    loaded_modseq: u64,
    _lock: Lock,
}

impl OpenFolder {
    /// Locks the folder at `dir` (which must exist), loads its index and brings it up to
    /// date with the directory (new mail, external flag changes and deletions).
    pub fn open(dir: &Path, user_dir: &Path, config: &StoreConfig) -> Result<Self, StoreError> {
        if !dir.join("cur").is_dir() {
            return Err(StoreError::NoSuchFolder);
        }
        for sub in ["new", "tmp"] {
            fs::create_dir_all(dir.join(sub))?;
        }
        let lock = lock_file(dir, LOCK_FILE)?;
        let (index, dirty) = match fs::read_to_string(dir.join(INDEX_FILE)) {
            Ok(text) => match FolderIndex::parse(&text) {
                Some(index) => (index, false),
                None => {
                    tracing::warn!(folder = %dir.display(), "damaged {INDEX_FILE}; starting a new UID space");
                    (FolderIndex::fresh(next_uidvalidity(user_dir)?), true)
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                (FolderIndex::fresh(next_uidvalidity(user_dir)?), true)
            }
            Err(e) => return Err(e.into()),
        };
        let mut folder = Self {
            dir: dir.to_path_buf(),
            loaded_modseq: index.highest_modseq,
            index,
            dirty,
            _lock: lock,
        };
        folder.rescan(config)?;
        Ok(folder)
    }

    /// HIGHESTMODSEQ before this open's scan: a higher value at the end means the folder
    /// changed.
    pub fn loaded_modseq(&self) -> u64 {
        self.loaded_modseq
    }

    pub fn cur(&self) -> PathBuf {
        self.dir.join("cur")
    }

    /// Brings the index up to date with `new/` and `cur/`.
    fn rescan(&mut self, config: &StoreConfig) -> Result<(), StoreError> {
        move_new_to_cur(&self.dir)?;
        let cur = self.cur();
        let mut by_base: HashMap<String, String> = HashMap::new();
        for item in fs::read_dir(&cur)? {
            let item = item?;
            let Some(name) = item.file_name().to_str().map(str::to_owned) else {
                continue; // not representable in the index; never offered
            };
            if !is_message_name(&name) || !item.file_type()?.is_file() {
                continue;
            }
            by_base.insert(base_name(&name).to_owned(), name);
        }

        // Known messages: gone (expunged by someone else) or renamed (flags changed).
        let mut kept = Vec::with_capacity(self.index.messages.len());
        let messages = std::mem::take(&mut self.index.messages);
        for mut m in messages {
            match by_base.remove(m.base_name()) {
                None => {
                    let modseq = self.index.next_modseq();
                    self.index
                        .tombstone(m.uid, modseq, config.limits.max_tombstones);
                    self.dirty = true;
                }
                Some(name) => {
                    if name != m.file_name {
                        if SystemFlags::from_file_name(&name)
                            != SystemFlags::from_file_name(&m.file_name)
                        {
                            m.modseq = self.index.next_modseq();
                        }
                        m.file_name = name;
                        self.dirty = true;
                    }
                    kept.push(m);
                }
            }
        }
        self.index.messages = kept;

        // New messages, oldest first so UIDs follow delivery order.
        if !by_base.is_empty() {
            let mut found = Vec::with_capacity(by_base.len());
            for (_, name) in by_base {
                let path = cur.join(&name);
                let meta = match fs::metadata(&path) {
                    Ok(m) => m,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e.into()),
                };
                let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
                found.push((mtime, name));
            }
            found.sort();
            for (mtime, name) in found {
                let size = match crlf_size_of_file(&cur.join(&name)) {
                    Ok(s) => s,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e.into()),
                };
                let uid = self.index.take_uid()?;
                let modseq = self.index.next_modseq();
                self.index.messages.push(IndexEntry {
                    uid,
                    modseq,
                    size,
                    internal_date: unix_seconds(mtime),
                    keywords: Vec::new(),
                    file_name: name,
                });
                self.dirty = true;
            }
        }
        Ok(())
    }

    /// Writes the index if it changed.
    pub fn save(&mut self) -> Result<(), StoreError> {
        if self.dirty {
            replace_file(
                &self.dir.join(INDEX_FILE),
                self.index.serialize().as_bytes(),
                false,
            )?;
            self.dirty = false;
        }
        Ok(())
    }
}

/// Creates the Maildir directories of a folder (and the Maildir++ `maildirfolder` marker for
/// subfolders).
pub(crate) fn create_folder_dirs(dir: &Path, subfolder: bool) -> io::Result<()> {
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(dir.join(sub))?;
    }
    if subfolder {
        File::create(dir.join("maildirfolder"))?;
    }
    Ok(())
}

/// A UIDVALIDITY from the clock, above every one handed out before for this user.
fn next_uidvalidity(user_dir: &Path) -> io::Result<u32> {
    fs::create_dir_all(user_dir)?;
    let _lock = lock_file(user_dir, UIDVALIDITY_LOCK)?;
    let path = user_dir.join(UIDVALIDITY_FILE);
    let last: u32 = fs::read_to_string(&path)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    let now = unix_seconds(SystemTime::now()).clamp(1, i64::from(u32::MAX - 1)) as u32;
    let next = now.max(last.saturating_add(1)).max(1);
    replace_file(&path, format!("{next}\n").as_bytes(), false)?;
    Ok(next)
}

/// Moves every message in `new/` to `cur/`, adding an empty `:2,` info. Another process
/// moving the same file first is not an error.
pub(crate) fn move_new_to_cur(dir: &Path) -> io::Result<bool> {
    let new = dir.join("new");
    let cur = dir.join("cur");
    let mut moved = false;
    let entries = match fs::read_dir(&new) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    for item in entries {
        let item = item?;
        let Some(name) = item.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !is_message_name(&name) || !item.file_type()?.is_file() {
            continue;
        }
        let target = if name.contains(':') {
            name.clone()
        } else {
            format!("{name}:2,")
        };
        match fs::rename(new.join(&name), cur.join(target)) {
            Ok(()) => moved = true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    if moved {
        File::open(&cur)?.sync_all()?;
    }
    Ok(moved)
}

/// The part of a Maildir file name before the info (`:2,FLAGS`).
pub(crate) fn base_name(name: &str) -> &str {
    name.split_once(':').map_or(name, |(base, _)| base)
}

/// Maildir message files: no dot files, nothing that cannot live on one index line.
pub(crate) fn is_message_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && !name.contains(['/', '\n', '\r', '\0'])
}

/// Seconds since the epoch (negative before 1970).
pub(crate) fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Octets of `data` with every bare LF counted as CRLF.
pub(crate) fn crlf_size(data: &[u8]) -> u64 {
    let mut counter = CrlfCounter::default();
    counter.update(data);
    counter.total
}

/// Counts CRLF-normalized octets over chunks (a CR at a chunk end is remembered).
#[derive(Default)]
struct CrlfCounter {
    total: u64,
    last_was_cr: bool,
}

impl CrlfCounter {
    fn update(&mut self, data: &[u8]) {
        let mut prev_cr = self.last_was_cr;
        for &b in data {
            if b == b'\n' && !prev_cr {
                self.total += 1;
            }
            prev_cr = b == b'\r';
        }
        self.total += data.len() as u64;
        self.last_was_cr = prev_cr;
    }
}

fn crlf_size_of_file(path: &Path) -> io::Result<u64> {
    let mut file = File::open(path)?;
    let mut counter = CrlfCounter::default();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(counter.total);
        }
        counter.update(&buf[..n]);
    }
}

/// `data` with every bare LF turned into CRLF (borrowed when already canonical).
pub(crate) fn to_crlf(data: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if crlf_size(data) == data.len() as u64 {
        return std::borrow::Cow::Borrowed(data);
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 32);
    let mut prev = 0u8;
    for &b in data {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    std::borrow::Cow::Owned(out)
}

/// `data` with CRLF line ends, without a copy when it has them already (the common case for
/// mail that arrived over IMAP or SMTP).
pub(crate) fn into_crlf(data: Vec<u8>) -> Vec<u8> {
    match to_crlf(&data) {
        std::borrow::Cow::Borrowed(_) => data,
        std::borrow::Cow::Owned(converted) => converted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_counting() {
        assert_eq!(crlf_size(b"a\nb\r\n"), 6);
        assert_eq!(crlf_size(b"no newline"), 10);
        assert_eq!(&*to_crlf(b"a\nb\r\nc\n"), b"a\r\nb\r\nc\r\n");
        let mut c = CrlfCounter::default();
        c.update(b"a\r");
        c.update(b"\nb\n");
        assert_eq!(c.total, 6);
    }

    #[test]
    fn index_round_trip() {
        let mut index = FolderIndex::fresh(7);
        index.keyword_table = vec!["$Forwarded".into(), "Work".into()];
        index.uidnext = 5;
        index.highest_modseq = 9;
        index.messages.push(IndexEntry {
            uid: 2,
            modseq: 3,
            size: 100,
            internal_date: -5,
            keywords: vec!["Work".into()],
            file_name: "1.x.host:2,S".into(),
        });
        index.messages.push(IndexEntry {
            uid: 4,
            modseq: 9,
            size: 1,
            internal_date: 1_700_000_000,
            keywords: vec![],
            file_name: "name with space:2,".into(),
        });
        index.tombstone(3, 8, 10);
        let text = index.serialize();
        let back = FolderIndex::parse(&text).unwrap();
        assert_eq!(back.serialize(), text);
        assert_eq!(back.messages, index.messages);
        // Damage is detected, not half-read.
        for bad in [
            text.replace("M 4 9", "M 1 9"),
            text.replace("M 4 9", "M 9 9"),
            text.replace("cas-imap-index 1", "cas-imap-index 2"),
            text.replace("K Work\n", ""),
            format!("{text}garbage\n"),
        ] {
            assert!(FolderIndex::parse(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn tombstones_are_bounded() {
        let mut index = FolderIndex::fresh(1);
        for uid in 1..=5 {
            index.tombstone(uid, u64::from(uid) + 10, 3);
        }
        assert_eq!(index.tombstones.len(), 3);
        assert_eq!(index.vanished_floor, 12);
    }
}
