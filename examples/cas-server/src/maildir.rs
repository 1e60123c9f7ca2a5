//! [`MailStore`] over Maildir directories: `<root>/<user>/{cur,new,tmp}`.
//!
//! Besides the three Maildir folders, each mailbox holds three files of ours:
//!
//! - `cas-lock`: locked with an exclusive advisory lock (`File::try_lock`, `flock(2)` on
//!   Unix) for as long as a session has the maildrop open. It works between processes and
//!   between two opens in one process, so a second POP3 session of the same user is refused.
//! - `cas-uidlist`: the unique ids. First line `cas-uidlist 1 <uidvalidity> <next-uid>`, then
//!   one line per message `<uid> <crlf-size> <base-name>`, where the base name is the file
//!   name up to the `:` that starts the Maildir info (flags may change, the base name does
//!   not). UIDs only grow and are never reused; if the file is lost or corrupt, a new
//!   uidvalidity makes every UIDL string new, so no old string can name another message.
//!   The POP3 UIDL string is Dovecot's default form `%08Xu%08Xv`: uid then uidvalidity,
//!   8 upper-case hex digits each.
//! - `cas-expunge`: the intent log of a deletion commit (one `cur/` file name per line). It
//!   is written and synced before the first unlink and removed after the last, so a crash in
//!   between is finished by the next open. A half-written log is only ever `cas-expunge.tmp`,
//!   which means nothing was deleted yet and is discarded.
//!
//! Opening a maildrop (under the lock) replays a leftover intent log, moves messages another
//! program delivered into `new/` over to `cur/` (adding the `:2,` info), assigns the next
//! uids to messages not yet listed (oldest first), counts their sizes with CRLF line ends
//! (plus the 2 octets of the CRLF that RETR adds to a message without a final line end,
//! so that LIST matches what clients receive),
//! and rewrites `cas-uidlist` atomically if anything changed. Reading never changes anything.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::store::{MailStore, Maildrop, MessageInfo, MessageReader, StoreError};

const LOCK_FILE: &str = "cas-lock";
const UIDLIST_FILE: &str = "cas-uidlist";
const UIDLIST_MAGIC: &str = "cas-uidlist 1";
const EXPUNGE_LOG: &str = "cas-expunge";
const EXPUNGE_LOG_TMP: &str = "cas-expunge.tmp";
const READ_CHUNK: usize = 64 * 1024;

/// A [`MailStore`] whose mailboxes are Maildir directories under one root.
#[derive(Clone, Debug)]
pub struct MaildirStore {
    root: PathBuf,
}

impl MaildirStore {
    /// A store rooted at `root`; user `u`'s mailbox is `root/u`. Missing mailboxes are
    /// created empty on first open.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The Maildir path of `user`, or `None` when the name cannot be a directory name.
    pub fn mailbox_path(&self, user: &str) -> Option<PathBuf> {
        valid_mailbox_name(user).then(|| self.root.join(user))
    }
}

/// A user name usable as one path component: no separators, no NUL, no leading dot.
fn valid_mailbox_name(user: &str) -> bool {
    !user.is_empty()
        && user.len() <= 255
        && !user.starts_with('.')
        && !user.contains(['/', '\\', '\0', '\n', '\r'])
}

impl MailStore for MaildirStore {
    fn open_maildrop(&self, user: &str) -> Result<Arc<dyn Maildrop>, StoreError> {
        let dir = self.mailbox_path(user).ok_or(StoreError::InvalidName)?;
        Ok(Arc::new(MaildirDrop::open(&dir)?))
    }
}

/// Creates `dir` as an empty Maildir (`cur`, `new`, `tmp`) if parts are missing.
pub fn create_maildir(dir: &Path) -> io::Result<()> {
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(dir.join(sub))?;
    }
    Ok(())
}

/// One message as recorded in the uid list and found in `cur/`.
#[derive(Clone, Debug)]
struct Entry {
    uid: u32,
    size: u64,
    /// Current file name in `cur/`.
    file_name: String,
}

/// An open, locked Maildir.
#[derive(Debug)]
struct MaildirDrop {
    dir: PathBuf,
    uidvalidity: u32,
    next_uid: u32,
    entries: Vec<Entry>,
    infos: Vec<MessageInfo>,
    /// Holds the advisory lock; dropping the file releases it.
    _lock: File,
}

/// The parsed `cas-uidlist`.
#[derive(Debug, Default)]
struct UidList {
    uidvalidity: u32,
    next_uid: u32,
    /// base name -> (uid, crlf size)
    known: HashMap<String, (u32, u64)>,
}

impl MaildirDrop {
    fn open(dir: &Path) -> Result<Self, StoreError> {
        create_maildir(dir)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(dir.join(LOCK_FILE))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(StoreError::InUse),
            Err(TryLockError::Error(e)) => return Err(e.into()),
        }

        replay_expunge_log(dir)?;
        move_new_to_cur(dir)?;

        let (mut list, mut dirty) = match read_uidlist(dir)? {
            Some(list) => (list, false),
            None => (
                UidList {
                    uidvalidity: fresh_uidvalidity(0),
                    next_uid: 1,
                    known: HashMap::new(),
                },
                true,
            ),
        };

        let cur = dir.join("cur");
        let mut entries = Vec::new();
        let mut unlisted = Vec::new();
        for item in fs::read_dir(&cur)? {
            let item = item?;
            let Some(name) = item.file_name().to_str().map(str::to_owned) else {
                continue; // not representable in the uid list; never offered
            };
            if !is_message_name(&name) || !item.file_type()?.is_file() {
                continue;
            }
            match list.known.get(base_name(&name)) {
                Some(&(uid, size)) => entries.push(Entry {
                    uid,
                    size,
                    file_name: name,
                }),
                None => {
                    let mtime = item.metadata()?.modified().unwrap_or(UNIX_EPOCH);
                    unlisted.push((mtime, name));
                }
            }
        }
        if entries.len() != list.known.len() {
            dirty = true; // messages vanished: forget them (their uids stay used)
        }
        unlisted.sort();
        for (_, name) in unlisted {
            let uid = list.next_uid;
            if uid == u32::MAX {
                // 4 billion deliveries; an admin removing cas-uidlist starts a new uid space.
                return Err(io::Error::other("uid space exhausted; remove cas-uidlist").into());
            }
            list.next_uid = uid + 1;
            let size = crlf_size_of_file(&cur.join(&name))?;
            entries.push(Entry {
                uid,
                size,
                file_name: name,
            });
            dirty = true;
        }
        entries.sort_by_key(|e| e.uid);

        let drop = MaildirDrop {
            dir: dir.to_path_buf(),
            uidvalidity: list.uidvalidity,
            next_uid: list.next_uid,
            infos: entries
                .iter()
                .map(|e| MessageInfo {
                    uid: format!("{:08X}{:08X}", e.uid, list.uidvalidity),
                    size: e.size,
                })
                .collect(),
            entries,
            _lock: lock,
        };
        if dirty {
            drop.write_uidlist(&drop.entries)?;
        }
        Ok(drop)
    }

    fn write_uidlist(&self, entries: &[Entry]) -> io::Result<()> {
        let mut text = format!("{UIDLIST_MAGIC} {} {}\n", self.uidvalidity, self.next_uid);
        for e in entries {
            text.push_str(&format!(
                "{} {} {}\n",
                e.uid,
                e.size,
                base_name(&e.file_name)
            ));
        }
        write_atomically(&self.dir, UIDLIST_FILE, text.as_bytes())
    }
}

impl Maildrop for MaildirDrop {
    fn messages(&self) -> &[MessageInfo] {
        &self.infos
    }

    fn open_message(&self, index: usize) -> Result<MessageReader, StoreError> {
        let entry = self.entries.get(index).ok_or(StoreError::NoSuchMessage)?;
        let file = match File::open(self.dir.join("cur").join(&entry.file_name)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NoSuchMessage);
            }
            Err(e) => return Err(e.into()),
        };
        let len = file.metadata()?.len();
        Ok(MessageReader::new(Box::new(file), len))
    }

    fn commit_deletions(&self, indices: &[usize]) -> Result<(), StoreError> {
        let mut doomed = Vec::with_capacity(indices.len());
        for &i in indices {
            let entry = self.entries.get(i).ok_or(StoreError::NoSuchMessage)?;
            doomed.push(entry.file_name.as_str());
        }
        if doomed.is_empty() {
            return Ok(());
        }
        // Commit point: the log is in place (renamed, synced) before the first unlink.
        let mut log = String::new();
        for name in &doomed {
            log.push_str(name);
            log.push('\n');
        }
        write_synced(&self.dir.join(EXPUNGE_LOG_TMP), log.as_bytes())?;
        fs::rename(self.dir.join(EXPUNGE_LOG_TMP), self.dir.join(EXPUNGE_LOG))?;
        sync_dir(&self.dir)?;

        apply_deletions(&self.dir, doomed.iter().copied())?;

        let keep: Vec<Entry> = self
            .entries
            .iter()
            .enumerate()
            .filter(|(i, _)| !indices.contains(i))
            .map(|(_, e)| e.clone())
            .collect();
        self.write_uidlist(&keep)?;
        fs::remove_file(self.dir.join(EXPUNGE_LOG))?;
        sync_dir(&self.dir)?;
        Ok(())
    }
}

/// Unlinks `cur/<name>` for each name (already-missing files are fine) and syncs `cur/`.
fn apply_deletions<'a>(dir: &Path, names: impl Iterator<Item = &'a str>) -> io::Result<()> {
    let cur = dir.join("cur");
    for name in names {
        match fs::remove_file(cur.join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    sync_dir(&cur)
}

/// Finishes a deletion commit that a crash interrupted.
fn replay_expunge_log(dir: &Path) -> io::Result<()> {
    // An unfinished log (never renamed into place): nothing had been deleted yet.
    let _ = fs::remove_file(dir.join(EXPUNGE_LOG_TMP));
    let log = match fs::read_to_string(dir.join(EXPUNGE_LOG)) {
        Ok(log) => log,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    tracing::info!(maildir = %dir.display(), "finishing an interrupted deletion commit");
    // Only plain file names are honoured, so a damaged log cannot reach outside cur/.
    apply_deletions(dir, log.lines().filter(|n| is_message_name(n)))?;
    fs::remove_file(dir.join(EXPUNGE_LOG))?;
    sync_dir(dir)
}

/// Moves every message in `new/` to `cur/` with an empty `:2,` info.
fn move_new_to_cur(dir: &Path) -> io::Result<()> {
    let new = dir.join("new");
    let cur = dir.join("cur");
    let mut moved = false;
    for item in fs::read_dir(&new)? {
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
        // The IMAP store (its new/ watcher) moves the same files; losing that race is fine.
        match fs::rename(new.join(&name), cur.join(target)) {
            Ok(()) => moved = true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    if moved {
        sync_dir(&cur)?;
        sync_dir(&new)?;
    }
    Ok(())
}

/// Reads `cas-uidlist`; `None` when it is missing or unreadable (a new uid space follows).
fn read_uidlist(dir: &Path) -> io::Result<Option<UidList>> {
    let file = match File::open(dir.join(UIDLIST_FILE)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    // Whatever uidvalidity the damaged file held was chosen no later than its last write.
    let written = file
        .metadata()?
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as u32);
    let mut lines = BufReader::new(file).lines();
    let header = lines.next().transpose()?.unwrap_or_default();
    let parsed = header
        .strip_prefix(UIDLIST_MAGIC)
        .and_then(|rest| {
            let mut it = rest.split_ascii_whitespace();
            let v = it.next()?.parse::<u32>().ok()?;
            let n = it.next()?.parse::<u32>().ok()?;
            Some((v, n))
        })
        .filter(|&(v, n)| v != 0 && n != 0);
    let Some((uidvalidity, next_uid)) = parsed else {
        return Ok(Some(corrupt_uidlist(dir, written)));
    };
    let mut list = UidList {
        uidvalidity,
        next_uid,
        known: HashMap::new(),
    };
    for line in lines {
        let line = line?;
        let mut it = line.splitn(3, ' ');
        let entry = (|| {
            let uid = it.next()?.parse::<u32>().ok()?;
            let size = it.next()?.parse::<u64>().ok()?;
            let name = it.next()?.to_owned();
            (uid < next_uid && !name.is_empty()).then_some((name, (uid, size)))
        })();
        match entry {
            Some((name, v)) => {
                list.known.insert(name, v);
            }
            None => return Ok(Some(corrupt_uidlist(dir, uidvalidity.max(written)))),
        }
    }
    Ok(Some(list))
}

/// A new uid space after damage: its uidvalidity is above `at_least_above`, so no UIDL string
/// of the old space can come back.
fn corrupt_uidlist(dir: &Path, at_least_above: u32) -> UidList {
    tracing::warn!(maildir = %dir.display(), "corrupt cas-uidlist; starting a new uid space");
    UidList {
        uidvalidity: fresh_uidvalidity(at_least_above),
        next_uid: 1,
        known: HashMap::new(),
    }
}

/// A uidvalidity from the clock, different from (and after) `old`, never 0.
fn fresh_uidvalidity(old: u32) -> u32 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_secs() as u32);
    now.max(old.wrapping_add(1)).max(1)
}

/// The part of a Maildir file name before the info (`:2,FLAGS`).
fn base_name(name: &str) -> &str {
    name.split_once(':').map_or(name, |(base, _)| base)
}

/// Maildir message files: no dot files, nothing that cannot live on one uid-list line.
fn is_message_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\n', '\r', '\0'])
}

/// The message's POP3 size (pop3-proto's CRLF-counted size, which includes the line end
/// RETR supplies to an unterminated last line), read in bounded chunks.
fn crlf_size_of_file(path: &Path) -> io::Result<u64> {
    let mut file = File::open(path)?;
    let mut counter = pop3_proto::stuffing::CrlfSizeCounter::new();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(counter.total());
        }
        counter.update(&buf[..n]);
    }
}

/// Writes `data` to `dir/name` via a synced temporary file and a rename, then syncs `dir`.
fn write_atomically(dir: &Path, name: &str, data: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    write_synced(&tmp, data)?;
    fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

fn write_synced(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// Makes renames and unlinks in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deliver(dir: &Path, sub: &str, name: &str, body: &[u8]) {
        fs::write(dir.join(sub).join(name), body).unwrap();
    }

    fn setup() -> (tempfile::TempDir, MaildirStore, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let store = MaildirStore::new(tmp.path());
        let dir = tmp.path().join("alice");
        create_maildir(&dir).unwrap();
        (tmp, store, dir)
    }

    fn uids(drop: &Arc<dyn Maildrop>) -> Vec<String> {
        drop.messages().iter().map(|m| m.uid.clone()).collect()
    }

    fn read_all(drop: &Arc<dyn Maildrop>, index: usize) -> Vec<u8> {
        let mut r = drop.open_message(index).unwrap();
        let mut out = Vec::new();
        loop {
            let (chunk, last) = r.read_chunk(3).unwrap();
            out.extend_from_slice(&chunk);
            if last {
                return out;
            }
        }
    }

    #[test]
    fn uids_are_stable_across_reopen_and_never_reused() {
        let (_tmp, store, dir) = setup();
        deliver(&dir, "new", "1.a.host", b"Subject: a\n\nA\n");
        deliver(&dir, "cur", "2.b.host:2,S", b"Subject: b\n\nB\n");
        let first = uids(&store.open_maildrop("alice").unwrap());
        assert_eq!(first.len(), 2);
        assert!(
            first
                .iter()
                .all(|u| u.len() == 16 && u.bytes().all(|b| b.is_ascii_hexdigit()))
        );
        assert_ne!(first[0], first[1]);
        assert_eq!(&first[0][..8], "00000001");

        let again = store.open_maildrop("alice").unwrap();
        assert_eq!(uids(&again), first);
        again.commit_deletions(&[1]).unwrap();
        drop(again);

        // A new message must not get the deleted message's uid.
        deliver(&dir, "new", "3.c.host", b"Subject: c\n\nC\n");
        let after = uids(&store.open_maildrop("alice").unwrap());
        assert_eq!(after.len(), 2);
        assert_eq!(after[0], first[0]);
        assert!(!first.contains(&after[1]));
        assert_eq!(&after[1][..8], "00000003");
    }

    #[test]
    fn new_mail_is_picked_up_at_open() {
        let (_tmp, store, dir) = setup();
        deliver(&dir, "new", "1.a.host", b"one\n");
        let m = store.open_maildrop("alice").unwrap();
        assert_eq!(m.messages().len(), 1);
        // Delivered while a session is open: not in that session's snapshot.
        deliver(&dir, "new", "2.b.host", b"two\n");
        assert_eq!(m.messages().len(), 1);
        drop(m);
        let m = store.open_maildrop("alice").unwrap();
        assert_eq!(m.messages().len(), 2);
        assert_eq!(read_all(&m, 1), b"two\n");
        assert!(dir.join("cur/1.a.host:2,").exists());
        assert!(dir.join("cur/2.b.host:2,").exists());
        assert_eq!(fs::read_dir(dir.join("new")).unwrap().count(), 0);
    }

    #[test]
    fn sizes_count_crlf() {
        let (_tmp, store, dir) = setup();
        deliver(&dir, "new", "1", b"a\nb\n");
        deliver(&dir, "new", "2", b"a\r\nb\r\n");
        deliver(&dir, "new", "3", b"a\nno final newline");
        let big: Vec<u8> = b"0123456789abcdefghijklmnopqrstuvwxyz\n".repeat(10_000);
        deliver(&dir, "new", "4", &big);
        let m = store.open_maildrop("alice").unwrap();
        let sizes: Vec<u64> = m.messages().iter().map(|m| m.size).collect();
        assert_eq!(sizes, vec![6, 6, 21, big.len() as u64 + 10_000]);
        // Sizes are remembered in the uid list, not recounted.
        drop(m);
        let list = fs::read_to_string(dir.join(UIDLIST_FILE)).unwrap();
        assert!(list.lines().any(|l| l.ends_with(" 21 3")), "{list}");
        assert_eq!(read_all(&store.open_maildrop("alice").unwrap(), 3), big);
    }

    #[test]
    fn deletions_commit() {
        let (_tmp, store, dir) = setup();
        for i in 1..=4 {
            deliver(&dir, "new", &format!("{i}.x"), format!("m{i}\n").as_bytes());
        }
        let m = store.open_maildrop("alice").unwrap();
        let before = uids(&m);
        m.commit_deletions(&[0, 2]).unwrap();
        drop(m);
        assert!(!dir.join(EXPUNGE_LOG).exists());
        let m = store.open_maildrop("alice").unwrap();
        assert_eq!(uids(&m), vec![before[1].clone(), before[3].clone()]);
        assert_eq!(read_all(&m, 0), b"m2\n");
        assert_eq!(
            m.open_message(2).unwrap_err().to_string(),
            "no such message"
        );
    }

    #[test]
    fn unfinished_commit_is_replayed() {
        let (_tmp, store, dir) = setup();
        for i in 1..=3 {
            deliver(&dir, "new", &format!("{i}.x"), b"m\n");
        }
        let before = uids(&store.open_maildrop("alice").unwrap());
        // A crash after the intent log was in place and one of two unlinks was done.
        fs::write(dir.join(EXPUNGE_LOG), "1.x:2,\n3.x:2,\n../../etc/passwd\n").unwrap();
        fs::remove_file(dir.join("cur/1.x:2,")).unwrap();
        // And a crash while writing another log: it never took effect.
        fs::write(dir.join(EXPUNGE_LOG_TMP), "2.x:2,\n").unwrap();
        let m = store.open_maildrop("alice").unwrap();
        assert_eq!(uids(&m), vec![before[1].clone()]);
        assert!(!dir.join(EXPUNGE_LOG).exists());
        assert!(!dir.join(EXPUNGE_LOG_TMP).exists());
        assert!(dir.join("cur/2.x:2,").exists());
    }

    #[test]
    fn lock_is_exclusive() {
        let (_tmp, store, dir) = setup();
        deliver(&dir, "new", "1", b"m\n");
        let first = store.open_maildrop("alice").unwrap();
        assert!(matches!(
            store.open_maildrop("alice"),
            Err(StoreError::InUse)
        ));
        // Another user is independent.
        store.open_maildrop("bob").unwrap();
        drop(first);
        store.open_maildrop("alice").unwrap();
    }

    #[test]
    fn bad_names_and_corrupt_uidlist() {
        let (_tmp, store, dir) = setup();
        for bad in ["", "..", "a/b", ".hidden", "x\ny"] {
            assert!(
                matches!(store.open_maildrop(bad), Err(StoreError::InvalidName)),
                "{bad:?}"
            );
        }
        deliver(&dir, "new", "1", b"m\n");
        let before = uids(&store.open_maildrop("alice").unwrap());
        fs::write(dir.join(UIDLIST_FILE), "garbage\n").unwrap();
        let after = uids(&store.open_maildrop("alice").unwrap());
        assert_eq!(after.len(), 1);
        assert_ne!(after, before, "a corrupt list must start a new uid space");
    }
}
