//! The IMAP view of the Maildir store: Maildir++ folders, persistent UIDs, flags, keywords,
//! modseq, FETCH rendering and SEARCH evaluation (issue 4).
//!
//! # Layout on disk
//!
//! ```text
//! <maildir_root>/<user>/                 INBOX (the Maildir root, shared with POP3)
//!     cur/ new/ tmp/                     Maildir
//!     cas-imap-index  cas-imap-lock      INBOX's index and lock (see [`index`])
//!     cas-imap-subscriptions             subscribed names, one UTF-8 name per line
//!     cas-imap-uidvalidity               the last UIDVALIDITY handed out to this user
//!     cas-imap-folders.lock              serializes CREATE / DELETE / RENAME / SUBSCRIBE
//!     .Sent/ .Archive.2024/ ...          Maildir++ subfolders ([`names`]), each with its
//!                                        own cur/ new/ tmp/, maildirfolder, index and lock
//! ```
//!
//! The IMAP hierarchy delimiter is `/` ([`names::DELIMITER`]); names are UTF-8 in this API
//! and modified UTF-7 on disk. POP3 ([`crate::maildir`]) keeps its own `cas-uidlist` for INBOX;
//! both stores agree in spirit (UIDs only grow and are never reused) but are numbered
//! independently. POP3 deleting messages on QUIT is seen here as an expunge by another program.
//!
//! # Concurrency
//!
//! Every operation is synchronous (call it from `spawn_blocking`) and takes the folder's
//! exclusive advisory lock for its duration, so sessions in this process and other
//! cas-server processes serialize per folder. Operations that touch two folders (COPY, MOVE)
//! never hold both locks at once: the messages are linked into the target's `tmp/` under the
//! source lock, committed under the target lock, and (MOVE) expunged from the source under
//! the source lock again. Writers signal the [`ChangeNotifier`]; mail delivered into `new/` by
//! other programs is found by the watcher ([`notify::spawn_watcher`]) within a second.
//!
//! # `\Recent`
//!
//! Supported for IMAP4rev1 clients as RFC 3501 describes it: a SELECT that asks for it
//! ([`UserStore::select`] with `claim_recent`) receives the messages no session has seen yet,
//! and no other session will get them as recent. IMAP4rev2 sessions pass `false`.

pub mod dates;
pub mod demo;
pub mod flags;
pub mod index;
pub mod names;
pub mod notify;
pub mod render;
pub mod search;

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

pub use flags::{FlagOperation, MessageFlags, SystemFlags};
pub use names::{DELIMITER, FolderName};
pub use notify::{ChangeNotifier, FolderChange};
pub use render::{FetchOptions, FetchedMessage, MessageCache};
pub use search::SearchContext;

use cas_imap_proto::code::ResponseCode;
use cas_imap_proto::types::MailboxAttribute;
use index::{IndexEntry, OpenFolder, create_folder_dirs, lock_file};

const SUBSCRIPTIONS_FILE: &str = "cas-imap-subscriptions";
const FOLDERS_LOCK: &str = "cas-imap-folders.lock";

/// Bounds of the store. Every one has a default; they exist so that no client can make the
/// server use unbounded disk, memory or time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest message APPEND accepts, in octets. Default 25 MiB: cas-imap-proto's
    /// `max_append_literal` (advertised as `APPENDLIMIT`), Exchange's default
    /// `MaxReceiveSize` class of limit.
    pub max_message_size: u64,
    /// Expunge tombstones kept per folder for QRESYNC `VANISHED`. Default 10 000; older
    /// expunges are summarized by the vanished floor ([`VanishedSince::complete`] false).
    pub max_tombstones: usize,
    /// Distinct keywords per folder. Default 256 (Dovecot's Maildir keeps 26; clients use a
    /// handful: `$Forwarded`, `$MDNSent`, `$Junk`, `$NotJunk`, labels).
    pub max_keywords: usize,
    /// Folders per user. Default 1 000.
    pub max_folders: usize,
    /// Parsed message structures kept in the FETCH cache, for all users. Default 4 096:
    /// enough for a `FETCH 1:* (ENVELOPE BODYSTRUCTURE)` sweep of a few-thousand-message
    /// folder to hit the cache the next time (at 512, a 1 000-message sweep evicted every
    /// entry before its reuse and ran 4x slower than Dovecot; with 4 096, on par). An entry
    /// is small: the MIME tree as byte ranges and the envelope, no message text.
    pub cache_entries: usize,
    /// Octets of messages converted to a `MessageRetrievalMimeFormat` kept in the FETCH
    /// cache beside their structure, for all users. Default
    /// [`render::DEFAULT_CONVERTED_BYTES`] (64 MiB).
    pub cache_converted_bytes: usize,
    /// Messages one MULTIAPPEND may carry. Default 1 000.
    pub max_append_messages: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_size: 25 * 1024 * 1024,
            max_tombstones: 10_000,
            max_keywords: 256,
            max_folders: 1_000,
            cache_entries: 4_096,
            cache_converted_bytes: render::DEFAULT_CONVERTED_BYTES,
            max_append_messages: 1_000,
        }
    }
}

/// Points where tests inject failures ([`StoreConfig::fault_injector`]).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultPoint {
    /// APPEND: after the message with this index was written to `tmp/`, before any rename.
    AppendAfterTmpWrite(usize),
    /// APPEND: after the message with this index was renamed into `cur/`.
    AppendAfterRename(usize),
    /// COPY/MOVE: the messages are in the target's `tmp/`, before the commit.
    CopyBeforeCommit,
    /// MOVE: the copies are committed, before the source messages are expunged.
    MoveBeforeSourceExpunge,
}

/// A test hook: called at each [`FaultPoint`]; an error makes the operation fail there.
#[doc(hidden)]
pub type FaultInjector = Arc<dyn Fn(FaultPoint) -> io::Result<()> + Send + Sync>;

/// Configuration of an [`ImapStore`].
#[derive(Clone, Default)]
pub struct StoreConfig {
    /// The bounds.
    pub limits: Limits,
    #[doc(hidden)]
    pub fault_injector: Option<FaultInjector>,
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("limits", &self.limits)
            .field("fault_injector", &self.fault_injector.is_some())
            .finish()
    }
}

impl StoreConfig {
    fn fault(&self, point: FaultPoint) -> io::Result<()> {
        match &self.fault_injector {
            Some(f) => f(point),
            None => Ok(()),
        }
    }
}

/// Why a store operation failed. [`StoreError::response_code`] gives the RFC 5530 code for
/// the tagged `NO`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The user name cannot be a directory name.
    #[error("invalid user name")]
    InvalidUser,
    /// The folder name is not acceptable (empty component, control character, too long,
    /// below INBOX).
    #[error("invalid folder name: {0:?}")]
    InvalidName(String),
    /// No such folder. For APPEND, COPY and MOVE targets the session should answer
    /// `NO [TRYCREATE]` (RFC 9051 §6.3.12) instead of this error's `[NONEXISTENT]`.
    #[error("no such folder")]
    NoSuchFolder,
    /// The folder (or the target of a RENAME) exists already.
    #[error("folder already exists")]
    AlreadyExists,
    /// DELETE of a folder that has subfolders (RFC 9051 §6.3.4 allows refusing it).
    #[error("folder has subfolders")]
    HasChildren,
    /// INBOX cannot be deleted.
    #[error("INBOX cannot be deleted")]
    CannotDeleteInbox,
    /// A flag a client may not set (`\Recent`, unknown `\Name`).
    #[error("flag {0} cannot be set")]
    InvalidFlag(String),
    /// The folder's keyword table is full ([`Limits::max_keywords`]).
    #[error("too many keywords in this folder")]
    TooManyKeywords,
    /// Too many folders ([`Limits::max_folders`]).
    #[error("too many folders")]
    TooManyFolders,
    /// An APPEND message is larger than [`Limits::max_message_size`], or a MULTIAPPEND has
    /// more messages than [`Limits::max_append_messages`].
    #[error("message too large")]
    TooBig,
    /// The folder's UID space is used up (2^32 - 1 messages); recreate the folder.
    #[error("UID space exhausted")]
    UidsExhausted,
    /// The message is gone (expunged since the caller's snapshot).
    #[error("message has been expunged")]
    Expunged,
    /// A BINARY fetch of a part whose Content-Transfer-Encoding is unknown (RFC 3516).
    #[error("unknown content transfer encoding")]
    UnknownCte,
    /// A section part number that the message does not have.
    #[error("no such message part")]
    NoSuchPart,
    /// File system trouble.
    #[error("mail store I/O error: {0}")]
    Io(#[from] io::Error),
}

impl StoreError {
    /// The response code for a tagged `NO` (RFC 5530, RFC 3516, RFC 7889).
    pub fn response_code(&self) -> Option<ResponseCode<'static>> {
        Some(match self {
            Self::InvalidUser | Self::InvalidName(_) | Self::InvalidFlag(_) => ResponseCode::Cannot,
            Self::NoSuchFolder => ResponseCode::NonExistent,
            Self::AlreadyExists => ResponseCode::AlreadyExists,
            Self::HasChildren => ResponseCode::HasChildren,
            Self::CannotDeleteInbox => ResponseCode::Cannot,
            Self::TooManyKeywords | Self::TooManyFolders | Self::UidsExhausted => {
                ResponseCode::Limit
            }
            Self::TooBig => ResponseCode::TooBig,
            Self::Expunged => ResponseCode::ExpungeIssued,
            Self::UnknownCte => ResponseCode::UnknownCte,
            Self::NoSuchPart => return None,
            Self::Io(_) => ResponseCode::ServerBug,
        })
    }
}

/// The IMAP mail store over all users' Maildirs. Cheap to clone; all clones share the
/// message cache and the notifier.
#[derive(Clone, Debug)]
pub struct ImapStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    config: StoreConfig,
    cache: MessageCache,
    notifier: ChangeNotifier,
}

impl ImapStore {
    /// A store over `root` (`root/<user>` is a user's Maildir, as for POP3).
    pub fn new(root: impl Into<PathBuf>, config: StoreConfig) -> Self {
        let root = root.into();
        let notifier = ChangeNotifier::with_auto_watch(root.clone(), config.clone());
        Self::with_notifier(&root, config, notifier)
    }

    /// A store signalling `notifier` (the watcher's per-poll store shares the real one's).
    fn with_notifier(root: &Path, config: StoreConfig, notifier: ChangeNotifier) -> Self {
        let cache = MessageCache::with_byte_budget(
            config.limits.cache_entries,
            config.limits.cache_converted_bytes,
        );
        Self {
            inner: Arc::new(Inner {
                root: root.to_path_buf(),
                config,
                cache,
                notifier,
            }),
        }
    }

    /// The change notifier every write signals; subscribe to a folder to learn of changes.
    pub fn notifier(&self) -> &ChangeNotifier {
        &self.inner.notifier
    }

    /// The configuration.
    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// The mailbox of `user`; its Maildir is created on first use.
    pub fn user(&self, user: &str) -> Result<UserStore, StoreError> {
        let valid = !user.is_empty()
            && user.len() <= 255
            && !user.starts_with('.')
            && !user.contains(['/', '\\', '\0', '\n', '\r']);
        if !valid {
            return Err(StoreError::InvalidUser);
        }
        Ok(UserStore {
            store: self.clone(),
            user: user.to_owned(),
            dir: self.inner.root.join(user),
        })
    }
}

/// One user's folders. Every method is a complete, locked operation on disk.
#[derive(Clone, Debug)]
pub struct UserStore {
    store: ImapStore,
    user: String,
    dir: PathBuf,
}

/// A folder as LIST shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderInfo {
    /// The IMAP name (UTF-8, `/`-delimited).
    pub name: String,
    /// The folder exists (else it is only a parent of existing folders or a subscription).
    pub exists: bool,
    /// Some folder exists below it.
    pub has_children: bool,
    /// It is subscribed.
    pub subscribed: bool,
    /// Its SPECIAL-USE (RFC 6154), by name: `Sent`, `Drafts`, `Trash`, `Junk`, `Archive` (and
    /// the usual variants such as `Sent Items`, `Deleted Items`, `Spam`) at the top level.
    pub special_use: Option<MailboxAttribute<'static>>,
}

impl FolderInfo {
    /// The LIST attributes: `\NonExistent` and `\Noselect` for names that are no folder,
    /// `\HasChildren`/`\HasNoChildren` (RFC 3348), `\Subscribed` (RFC 5258) and SPECIAL-USE.
    pub fn attributes(&self) -> Vec<MailboxAttribute<'static>> {
        let mut out = Vec::with_capacity(4);
        if !self.exists {
            out.push(MailboxAttribute::NonExistent);
            out.push(MailboxAttribute::NoSelect);
        }
        out.push(if self.has_children {
            MailboxAttribute::HasChildren
        } else {
            MailboxAttribute::HasNoChildren
        });
        if self.subscribed {
            out.push(MailboxAttribute::Subscribed);
        }
        if let Some(s) = &self.special_use {
            out.push(s.clone());
        }
        out
    }
}

/// STATUS data of a folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderStatus {
    /// `MESSAGES`
    pub messages: u32,
    /// `UIDNEXT`
    pub uidnext: u32,
    /// `UIDVALIDITY`
    pub uidvalidity: u32,
    /// `UNSEEN`: messages without `\Seen`.
    pub unseen: u32,
    /// `DELETED`: messages with `\Deleted` (RFC 9051).
    pub deleted: u32,
    /// `SIZE`: sum of RFC822.SIZE (RFC 8438).
    pub size: u64,
    /// `HIGHESTMODSEQ` (RFC 7162).
    pub highest_modseq: u64,
    /// `RECENT` (RFC 3501): messages no session has been told about as recent yet.
    pub recent: u32,
}

/// One message's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageMeta {
    /// UID.
    pub uid: u32,
    /// Flags and keywords.
    pub flags: MessageFlags,
    /// Modification sequence of the last change (RFC 7162).
    pub modseq: u64,
    /// RFC822.SIZE: octets as FETCH sends them (line ends CRLF).
    pub size: u64,
    /// INTERNALDATE, seconds since the Unix epoch (UTC).
    pub internal_date: i64,
}

impl MessageMeta {
    fn from_entry(e: &IndexEntry) -> Self {
        Self {
            uid: e.uid,
            flags: e.flags(),
            modseq: e.modseq,
            size: e.size,
            internal_date: e.internal_date,
        }
    }
}

/// What SELECT / EXAMINE needs: the whole folder at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The folder name (canonical form, `INBOX` upper-case).
    pub folder: String,
    /// `UIDVALIDITY`.
    pub uidvalidity: u32,
    /// `UIDNEXT`.
    pub uidnext: u32,
    /// `HIGHESTMODSEQ`.
    pub highest_modseq: u64,
    /// The messages in UID (= sequence number) order.
    pub messages: Vec<MessageMeta>,
    /// UIDs that are `\Recent` for this session (empty unless claimed).
    pub recent: Vec<u32>,
    /// Keywords in use in this folder, for the FLAGS and PERMANENTFLAGS responses; any new
    /// keyword may be created too (`\*`) until [`Limits::max_keywords`].
    pub keywords: Vec<String>,
    /// With [`UserStore::select_qresync`]: the UIDs expunged after the client's mod-sequence.
    pub vanished: Option<VanishedSince>,
}

/// Expunged UIDs since some modseq (for QRESYNC `VANISHED (EARLIER)` and for sessions that
/// catch up).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VanishedSince {
    /// Inclusive UID ranges, ascending, not overlapping.
    pub ranges: Vec<(u32, u32)>,
    /// `true`: exactly the UIDs expunged after the modseq. `false`: the tombstones for that
    /// time were trimmed, so `ranges` holds every UID below UIDNEXT that does not exist now
    /// (RFC 7162 §3.2.5.2 allows reporting UIDs the client never knew).
    pub complete: bool,
}

impl VanishedSince {
    /// Whether `uid` is in the set.
    pub fn contains(&self, uid: u32) -> bool {
        self.ranges.iter().any(|&(a, b)| (a..=b).contains(&uid))
    }

    /// Every UID, ascending.
    pub fn uids(&self) -> impl Iterator<Item = u32> + '_ {
        self.ranges.iter().flat_map(|&(a, b)| a..=b)
    }

    fn from_sorted(uids: impl IntoIterator<Item = u32>) -> Vec<(u32, u32)> {
        let mut ranges: Vec<(u32, u32)> = Vec::new();
        for uid in uids {
            match ranges.last_mut() {
                Some((_, hi)) if hi.checked_add(1) == Some(uid) => *hi = uid,
                Some((_, hi)) if *hi >= uid => {}
                _ => ranges.push((uid, uid)),
            }
        }
        ranges
    }
}

/// What changed in a folder since a modseq.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Changes {
    /// `UIDVALIDITY` now; if it differs from the caller's, everything is new.
    pub uidvalidity: u32,
    /// `UIDNEXT` now.
    pub uidnext: u32,
    /// `HIGHESTMODSEQ` now.
    pub highest_modseq: u64,
    /// Messages changed or added after the modseq, in UID order, with their current state.
    pub changed: Vec<MessageMeta>,
    /// Messages expunged after the modseq.
    pub vanished: VanishedSince,
    /// Number of messages now.
    pub exists: u32,
}

/// One message for [`UserStore::append`].
#[derive(Clone, Debug)]
pub struct AppendRequest<'a> {
    /// The complete message as the client sent it.
    pub data: &'a [u8],
    /// Flags to set.
    pub flags: MessageFlags,
    /// INTERNALDATE (seconds since the epoch); the current time when `None`.
    pub internal_date: Option<i64>,
}

/// `APPENDUID` data (RFC 4315).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendUid {
    /// UIDVALIDITY of the target folder.
    pub uidvalidity: u32,
    /// The new UIDs, in the order of the messages.
    pub uids: Vec<u32>,
}

/// `COPYUID` data (RFC 4315) of a COPY or MOVE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyUid {
    /// UIDVALIDITY of the target folder.
    pub uidvalidity: u32,
    /// (source UID, target UID) pairs in source UID order. Source UIDs that no longer exist
    /// are left out (RFC 9051 §6.4.7: a UID COPY of non-existent UIDs is not an error).
    pub pairs: Vec<(u32, u32)>,
}

/// The outcome of [`UserStore::store_flags`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreOutcome {
    /// Messages whose flags changed, with their new state (send them as FETCH).
    pub changed: Vec<MessageMeta>,
    /// Messages that passed the test but whose flags were already as asked.
    pub unchanged: Vec<MessageMeta>,
    /// UNCHANGEDSINCE failures: UIDs whose modseq is above the given value (the `MODIFIED`
    /// response code, RFC 7162 §3.1.3).
    pub modified: Vec<u32>,
    /// UIDs that no longer exist.
    pub expunged: Vec<u32>,
    /// `HIGHESTMODSEQ` after the operation.
    pub highest_modseq: u64,
}

/// The outcome of [`UserStore::expunge`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expunged {
    /// The expunged UIDs, ascending.
    pub uids: Vec<u32>,
    /// `HIGHESTMODSEQ` after the operation.
    pub highest_modseq: u64,
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// A Maildir unique file name: `<secs>.M<micros>P<pid>Q<counter>R<random>.cas`.
fn unique_name() -> String {
    let now = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut random = [0u8; 8];
    // Without randomness the pid and counter still make the name unique in this process;
    // the random part only guards against pid reuse across restarts within a microsecond.
    let _ = getrandom::getrandom(&mut random);
    format!(
        "{}.M{}P{}Q{}R{:016x}.cas",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        UNIQUE.fetch_add(1, Ordering::Relaxed),
        u64::from_le_bytes(random)
    )
}

/// Removes files, ignoring those already gone.
fn remove_all(paths: &[PathBuf]) {
    for p in paths {
        if let Err(e) = fs::remove_file(p)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %p.display(), error = %e, "cannot remove a partial message");
        }
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn special_use_of(name: &FolderName) -> Option<MailboxAttribute<'static>> {
    let FolderName::Other(parts) = name else {
        return None;
    };
    if parts.len() != 1 {
        return None;
    }
    let n = parts[0].to_ascii_lowercase();
    Some(match n.as_str() {
        "sent" | "sent items" | "sent messages" | "sent mail" => MailboxAttribute::Sent,
        "drafts" => MailboxAttribute::Drafts,
        "trash" | "deleted items" | "deleted messages" => MailboxAttribute::Trash,
        "junk" | "spam" | "junk e-mail" | "junk email" => MailboxAttribute::Junk,
        "archive" | "archives" => MailboxAttribute::Archive,
        _ => return None,
    })
}

impl UserStore {
    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    fn config(&self) -> &StoreConfig {
        &self.store.inner.config
    }

    /// Locks and loads `name` (creating INBOX's Maildir on first use).
    fn open(&self, name: &FolderName) -> Result<OpenFolder, StoreError> {
        if *name == FolderName::Inbox {
            crate::maildir::create_maildir(&self.dir)?;
        }
        OpenFolder::open(&name.path(&self.dir), &self.dir, self.config())
    }

    /// Saves the index and tells subscribers when the folder changed.
    fn finish(
        &self,
        name: &FolderName,
        folder: &mut OpenFolder,
        before: u64,
    ) -> Result<(), StoreError> {
        folder.save()?;
        if folder.index.highest_modseq != before {
            self.store.inner.notifier.notify(
                &self.user,
                &name.to_imap(),
                folder.index.highest_modseq,
            );
        }
        Ok(())
    }

    fn existing_folders(&self) -> Result<Vec<FolderName>, StoreError> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e.into()),
        };
        for item in entries {
            let item = item?;
            let Some(dir) = item.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if let Some(name) = FolderName::from_dir_name(&dir)
                && item.file_type()?.is_dir()
                && item.path().join("cur").is_dir()
            {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }

    fn folder_exists(&self, name: &FolderName) -> bool {
        match name {
            FolderName::Inbox => true,
            other => other.path(&self.dir).join("cur").is_dir(),
        }
    }

    /// Every folder, with implied parents and subscribed names that do not exist, sorted
    /// (INBOX first). LIST pattern matching is the caller's (it knows the reference and the
    /// pattern syntax); this is the complete set it matches against.
    pub fn list(&self) -> Result<Vec<FolderInfo>, StoreError> {
        let existing = self.existing_folders()?;
        let subscribed = self.subscriptions()?;
        let mut all: Vec<FolderName> = vec![FolderName::Inbox];
        for name in &existing {
            let mut p = name.parent();
            while let Some(parent) = p {
                p = parent.parent();
                all.push(parent);
            }
            all.push(name.clone());
        }
        for s in &subscribed {
            if let Ok(name) = FolderName::parse(s) {
                all.push(name);
            }
        }
        all.sort();
        all.dedup();
        let infos = all
            .iter()
            .map(|name| {
                let exists = *name == FolderName::Inbox || existing.contains(name);
                FolderInfo {
                    name: name.to_imap(),
                    exists,
                    has_children: existing.iter().any(|e| e.is_below(name)),
                    subscribed: subscribed
                        .iter()
                        .any(|s| FolderName::parse(s).is_ok_and(|n| n == *name)),
                    special_use: special_use_of(name),
                }
            })
            .collect();
        Ok(infos)
    }

    /// CREATE: makes `name` and any missing parents (RFC 9051 §6.3.4).
    pub fn create(&self, name: &str) -> Result<(), StoreError> {
        let name = FolderName::parse(name)?;
        if name == FolderName::Inbox {
            return Err(StoreError::AlreadyExists);
        }
        crate::maildir::create_maildir(&self.dir)?;
        let _lock = lock_file(&self.dir, FOLDERS_LOCK)?;
        if self.folder_exists(&name) {
            return Err(StoreError::AlreadyExists);
        }
        let existing = self.existing_folders()?;
        let mut needed = vec![name.clone()];
        let mut p = name.parent();
        while let Some(parent) = p {
            p = parent.parent();
            if !existing.contains(&parent) {
                needed.push(parent);
            }
        }
        if existing.len() + needed.len() > self.config().limits.max_folders {
            return Err(StoreError::TooManyFolders);
        }
        for n in needed.iter().rev() {
            create_folder_dirs(&n.path(&self.dir), true)?;
            // Give the folder its UIDVALIDITY now, so it is fixed from the start.
            let mut folder = self.open(n)?;
            folder.save()?;
        }
        sync_dir(&self.dir)?;
        Ok(())
    }

    /// DELETE: removes the folder and its messages. INBOX cannot be deleted, nor a folder
    /// with subfolders (`NO [HASCHILDREN]`, RFC 9051 §6.3.4). Subscriptions are kept.
    pub fn delete(&self, name: &str) -> Result<(), StoreError> {
        let name = FolderName::parse(name)?;
        if name == FolderName::Inbox {
            return Err(StoreError::CannotDeleteInbox);
        }
        let _lock = lock_file(&self.dir, FOLDERS_LOCK)?;
        let existing = self.existing_folders()?;
        if !existing.contains(&name) {
            return Err(StoreError::NoSuchFolder);
        }
        if existing.iter().any(|e| e.is_below(&name)) {
            return Err(StoreError::HasChildren);
        }
        let path = name.path(&self.dir);
        // Renamed out of the folder namespace first, so the deletion is atomic for LIST and
        // a crash leaves a scratch directory (skipped by LIST), never half a folder.
        let scratch = self.dir.join(format!("..deleted-{}", unique_name()));
        {
            let _folder_lock = lock_file(&path, index::LOCK_FILE)?;
            fs::rename(&path, &scratch)?;
        }
        sync_dir(&self.dir)?;
        fs::remove_dir_all(&scratch)?;
        self.store
            .inner
            .notifier
            .notify(&self.user, &name.to_imap(), 0);
        Ok(())
    }

    /// RENAME: renames the folder and every folder below it, keeping UIDVALIDITY and UIDs.
    /// Renaming INBOX moves its messages into a new folder and leaves INBOX empty
    /// (RFC 9051 §6.3.6). Missing parents of the new name are created.
    pub fn rename(&self, from: &str, to: &str) -> Result<(), StoreError> {
        let from = FolderName::parse(from)?;
        let to = FolderName::parse(to)?;
        if to == FolderName::Inbox {
            return Err(StoreError::AlreadyExists);
        }
        if from == FolderName::Inbox {
            self.create(&to.to_imap())?;
            let uids: Vec<u32> = self
                .select("INBOX", false)?
                .messages
                .iter()
                .map(|m| m.uid)
                .collect();
            self.move_messages("INBOX", &uids, &to.to_imap())?;
            return Ok(());
        }
        if to.is_below(&from) || to == from {
            return Err(StoreError::InvalidName(to.to_imap()));
        }
        crate::maildir::create_maildir(&self.dir)?;
        let _lock = lock_file(&self.dir, FOLDERS_LOCK)?;
        let existing = self.existing_folders()?;
        if !existing.contains(&from) {
            return Err(StoreError::NoSuchFolder);
        }
        if existing.iter().any(|e| *e == to || e.is_below(&to)) {
            return Err(StoreError::AlreadyExists);
        }
        let mut p = to.parent();
        while let Some(parent) = p {
            p = parent.parent();
            if !existing.contains(&parent) {
                create_folder_dirs(&parent.path(&self.dir), true)?;
            }
        }
        let mut moved = Vec::new();
        for name in existing.iter().filter(|e| **e == from || e.is_below(&from)) {
            let Some(target) = name.rebase(&from, &to) else {
                continue;
            };
            fs::rename(name.path(&self.dir), target.path(&self.dir))?;
            moved.push(name.to_imap());
        }
        sync_dir(&self.dir)?;
        for old in moved {
            self.store.inner.notifier.notify(&self.user, &old, 0);
        }
        Ok(())
    }

    /// The subscribed names, as stored (UTF-8, `/`-delimited).
    pub fn subscriptions(&self) -> Result<Vec<String>, StoreError> {
        match fs::read_to_string(self.dir.join(SUBSCRIPTIONS_FILE)) {
            Ok(text) => Ok(text
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// SUBSCRIBE (the name need not exist, RFC 9051 §6.3.7).
    pub fn subscribe(&self, name: &str) -> Result<(), StoreError> {
        let name = FolderName::parse(name)?.to_imap();
        self.edit_subscriptions(|subs| {
            if !subs.contains(&name) {
                subs.push(name.clone());
            }
        })
    }

    /// UNSUBSCRIBE.
    pub fn unsubscribe(&self, name: &str) -> Result<(), StoreError> {
        let name = FolderName::parse(name)?.to_imap();
        self.edit_subscriptions(|subs| subs.retain(|s| *s != name))
    }

    fn edit_subscriptions(&self, edit: impl FnOnce(&mut Vec<String>)) -> Result<(), StoreError> {
        crate::maildir::create_maildir(&self.dir)?;
        let _lock = lock_file(&self.dir, FOLDERS_LOCK)?;
        let mut subs = self.subscriptions()?;
        let before = subs.clone();
        edit(&mut subs);
        if subs.len() > self.config().limits.max_folders {
            return Err(StoreError::TooManyFolders);
        }
        if subs != before {
            let mut text = String::new();
            for s in &subs {
                text.push_str(s);
                text.push('\n');
            }
            crate::fsutil::replace_file(
                &self.dir.join(SUBSCRIPTIONS_FILE),
                text.as_bytes(),
                false,
            )?;
        }
        Ok(())
    }

    /// STATUS of a folder.
    pub fn status(&self, name: &str) -> Result<FolderStatus, StoreError> {
        let name = FolderName::parse(name)?;
        let mut folder = self.open(&name)?;
        let before = folder.loaded_modseq();
        let ix = &folder.index;
        let mut status = FolderStatus {
            messages: u32::try_from(ix.messages.len()).unwrap_or(u32::MAX),
            uidnext: ix.uidnext,
            uidvalidity: ix.uidvalidity,
            unseen: 0,
            deleted: 0,
            size: 0,
            highest_modseq: ix.highest_modseq,
            recent: 0,
        };
        for m in &ix.messages {
            let f = SystemFlags::from_file_name(&m.file_name);
            status.unseen += u32::from(!f.contains(SystemFlags::SEEN));
            status.deleted += u32::from(f.contains(SystemFlags::DELETED));
            status.size += m.size;
            status.recent += u32::from(m.uid >= ix.first_recent_uid);
        }
        self.finish(&name, &mut folder, before)?;
        Ok(status)
    }

    /// SELECT / EXAMINE: the folder now. `claim_recent` (IMAP4rev1 SELECT) takes the
    /// messages no session has seen as `\Recent` for this caller.
    pub fn select(&self, name: &str, claim_recent: bool) -> Result<Snapshot, StoreError> {
        self.select_qresync(name, claim_recent, None)
    }

    /// [`UserStore::select`] for a QRESYNC SELECT: with `qresync_modseq`, the snapshot also
    /// holds the UIDs expunged after it (from the same index read, so they agree).
    pub fn select_qresync(
        &self,
        name: &str,
        claim_recent: bool,
        qresync_modseq: Option<u64>,
    ) -> Result<Snapshot, StoreError> {
        let name = FolderName::parse(name)?;
        let mut folder = self.open(&name)?;
        let before = folder.loaded_modseq();
        let ix = &mut folder.index;
        let recent: Vec<u32> = if claim_recent {
            let r: Vec<u32> = ix
                .messages
                .iter()
                .map(|m| m.uid)
                .filter(|&u| u >= ix.first_recent_uid)
                .collect();
            if ix.first_recent_uid != ix.uidnext {
                ix.first_recent_uid = ix.uidnext;
                folder.dirty = true;
            }
            r
        } else {
            Vec::new()
        };
        let ix = &folder.index;
        let snapshot = Snapshot {
            folder: name.to_imap(),
            uidvalidity: ix.uidvalidity,
            uidnext: ix.uidnext,
            highest_modseq: ix.highest_modseq,
            messages: ix.messages.iter().map(MessageMeta::from_entry).collect(),
            recent,
            keywords: ix.keyword_table.clone(),
            vanished: qresync_modseq.map(|m| vanished_since(ix, m)),
        };
        self.finish(&name, &mut folder, before)?;
        Ok(snapshot)
    }

    /// Changes since `modseq`: changed or new messages and expunged UIDs. A session calls it
    /// on a notification, at NOOP/IDLE, and for QRESYNC / CHANGEDSINCE. `claim_recent` as for
    /// [`UserStore::select`]: new messages not yet recent for anyone become recent for the
    /// caller (returned in `Changes::changed`; the caller knows which UIDs are new to it).
    pub fn changes_since(&self, name: &str, modseq: u64) -> Result<Changes, StoreError> {
        let name = FolderName::parse(name)?;
        let mut folder = self.open(&name)?;
        let before = folder.loaded_modseq();
        let ix = &folder.index;
        let changes = Changes {
            uidvalidity: ix.uidvalidity,
            uidnext: ix.uidnext,
            highest_modseq: ix.highest_modseq,
            changed: ix
                .messages
                .iter()
                .filter(|m| m.modseq > modseq)
                .map(MessageMeta::from_entry)
                .collect(),
            vanished: vanished_since(ix, modseq),
            exists: u32::try_from(ix.messages.len()).unwrap_or(u32::MAX),
        };
        self.finish(&name, &mut folder, before)?;
        Ok(changes)
    }

    /// Claims the `\Recent` flag for messages at or above `from_uid` that no session has
    /// seen yet (a rev1 session calls it when it learns of new mail); returns their UIDs.
    pub fn claim_recent(&self, name: &str) -> Result<Vec<u32>, StoreError> {
        let name = FolderName::parse(name)?;
        let mut folder = self.open(&name)?;
        let before = folder.loaded_modseq();
        let ix = &mut folder.index;
        let first = ix.first_recent_uid;
        let recent: Vec<u32> = ix
            .messages
            .iter()
            .map(|m| m.uid)
            .filter(|&u| u >= first)
            .collect();
        if ix.first_recent_uid != ix.uidnext {
            ix.first_recent_uid = ix.uidnext;
            folder.dirty = true;
        }
        self.finish(&name, &mut folder, before)?;
        Ok(recent)
    }

    /// APPEND / MULTIAPPEND: all messages or none. Each is written to `tmp/` and synced
    /// before anything becomes visible; then all are renamed into `cur/` and the index is
    /// written; a failure at any step removes every file written so far.
    pub fn append(
        &self,
        name: &str,
        messages: &[AppendRequest<'_>],
    ) -> Result<AppendUid, StoreError> {
        let name = FolderName::parse(name)?;
        let limits = &self.config().limits;
        if messages.len() > limits.max_append_messages
            || messages
                .iter()
                .any(|m| m.data.len() as u64 > limits.max_message_size)
        {
            return Err(StoreError::TooBig);
        }
        for m in messages {
            for k in &m.flags.keywords {
                if cas_imap_proto::types::Atom::new(k.as_str()).is_err() {
                    return Err(StoreError::InvalidFlag(k.clone()));
                }
            }
        }
        if !self.folder_exists(&name) {
            return Err(StoreError::NoSuchFolder);
        }
        let dir = name.path(&self.dir);
        if name == FolderName::Inbox {
            crate::maildir::create_maildir(&dir)?;
        }
        let now = index::unix_seconds(SystemTime::now());

        // 1. tmp/: nothing is visible yet.
        let mut staged: Vec<(PathBuf, String)> = Vec::with_capacity(messages.len());
        let result = (|| -> Result<(), StoreError> {
            for (i, m) in messages.iter().enumerate() {
                let unique = unique_name();
                let tmp = dir.join("tmp").join(&unique);
                staged.push((tmp.clone(), unique));
                let mut f = File::create(&tmp)?;
                f.write_all(m.data)?;
                let date = m.internal_date.unwrap_or(now);
                let _ = f.set_modified(system_time(date));
                f.sync_all()?;
                self.config().fault(FaultPoint::AppendAfterTmpWrite(i))?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            remove_all(&staged.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>());
            return Err(e);
        }

        // 2. cur/ and the index, under the folder lock.
        let mut committed: Vec<PathBuf> = Vec::new();
        let outcome = (|| -> Result<AppendUid, StoreError> {
            let mut folder = self.open(&name)?;
            let before = folder.loaded_modseq();
            let mut uids = Vec::with_capacity(messages.len());
            for (i, (m, (tmp, unique))) in messages.iter().zip(&staged).enumerate() {
                folder
                    .index
                    .declare_keywords(&m.flags, limits.max_keywords)?;
                let flags = folder.index.canonical_keywords(&m.flags);
                let file_name = flags.system.apply_to_file_name(unique);
                let target = folder.cur().join(&file_name);
                fs::rename(tmp, &target)?;
                committed.push(target);
                self.config().fault(FaultPoint::AppendAfterRename(i))?;
                let uid = folder.index.take_uid()?;
                let modseq = folder.index.next_modseq();
                folder.index.messages.push(IndexEntry {
                    uid,
                    modseq,
                    size: index::crlf_size(m.data),
                    internal_date: m.internal_date.unwrap_or(now),
                    keywords: flags.keywords,
                    file_name,
                });
                folder.dirty = true;
                uids.push(uid);
            }
            sync_dir(&folder.cur())?;
            self.finish(&name, &mut folder, before)?;
            Ok(AppendUid {
                uidvalidity: folder.index.uidvalidity,
                uids,
            })
        })();
        if outcome.is_err() {
            // The index was not written (finish is the last fallible step), so removing the
            // files restores the folder exactly.
            remove_all(&committed);
            remove_all(&staged.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>());
        }
        outcome
    }

    /// STORE: changes flags of `uids` (UID order not required). With `unchanged_since`
    /// (CONDSTORE), messages changed after that modseq are left alone and reported in
    /// [`StoreOutcome::modified`].
    pub fn store_flags(
        &self,
        name: &str,
        uids: &[u32],
        operation: FlagOperation,
        flags: &MessageFlags,
        unchanged_since: Option<u64>,
    ) -> Result<StoreOutcome, StoreError> {
        let name = FolderName::parse(name)?;
        for k in &flags.keywords {
            if cas_imap_proto::types::Atom::new(k.as_str()).is_err() {
                return Err(StoreError::InvalidFlag(k.clone()));
            }
        }
        let mut folder = self.open(&name)?;
        let before = folder.loaded_modseq();
        let limits = self.config().limits.clone();
        if operation != FlagOperation::Remove {
            folder.index.declare_keywords(flags, limits.max_keywords)?;
        }
        let arg = folder.index.canonical_keywords(flags);
        let mut outcome = StoreOutcome::default();
        let mut sorted = uids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let cur = folder.cur();
        for uid in sorted {
            let Some(pos) = folder.index.position(uid) else {
                outcome.expunged.push(uid);
                continue;
            };
            let entry = &folder.index.messages[pos];
            if unchanged_since.is_some_and(|u| entry.modseq > u) {
                outcome.modified.push(uid);
                continue;
            }
            let current = entry.flags();
            let new = operation.apply(&current, &arg);
            if new == current {
                outcome.unchanged.push(MessageMeta::from_entry(entry));
                continue;
            }
            let new_name = new.system.apply_to_file_name(&entry.file_name);
            if new_name != entry.file_name {
                match fs::rename(cur.join(&entry.file_name), cur.join(&new_name)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        // Deleted by another program since the scan.
                        outcome.expunged.push(uid);
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            let modseq = folder.index.next_modseq();
            let entry = &mut folder.index.messages[pos];
            entry.file_name = new_name;
            entry.keywords = new.keywords;
            entry.modseq = modseq;
            folder.dirty = true;
            outcome.changed.push(MessageMeta::from_entry(entry));
        }
        outcome.highest_modseq = folder.index.highest_modseq;
        self.finish(&name, &mut folder, before)?;
        Ok(outcome)
    }

    /// EXPUNGE / UID EXPUNGE: removes the messages flagged `\Deleted` (only those in `uids`
    /// when given).
    pub fn expunge(&self, name: &str, uids: Option<&[u32]>) -> Result<Expunged, StoreError> {
        let name = FolderName::parse(name)?;
        let mut folder = self.open(&name)?;
        let before = folder.loaded_modseq();
        let doomed: Vec<u32> = folder
            .index
            .messages
            .iter()
            .filter(|m| SystemFlags::from_file_name(&m.file_name).contains(SystemFlags::DELETED))
            .filter(|m| uids.is_none_or(|set| set.contains(&m.uid)))
            .map(|m| m.uid)
            .collect();
        let expunged = self.remove_messages(&mut folder, &doomed)?;
        let highest_modseq = folder.index.highest_modseq;
        self.finish(&name, &mut folder, before)?;
        Ok(Expunged {
            uids: expunged,
            highest_modseq,
        })
    }

    /// Unlinks and forgets `uids` (which must be sorted); returns those that existed.
    fn remove_messages(
        &self,
        folder: &mut OpenFolder,
        uids: &[u32],
    ) -> Result<Vec<u32>, StoreError> {
        let cur = folder.cur();
        let mut removed = Vec::with_capacity(uids.len());
        let max_tombstones = self.config().limits.max_tombstones;
        for &uid in uids {
            let Some(pos) = folder.index.position(uid) else {
                continue;
            };
            match fs::remove_file(cur.join(&folder.index.messages[pos].file_name)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    // What was unlinked so far must still be recorded.
                    let _ = self.forget(folder, &removed, max_tombstones);
                    return Err(e.into());
                }
            }
            removed.push(uid);
        }
        sync_dir(&cur)?;
        self.forget(folder, &removed, max_tombstones)?;
        Ok(removed)
    }

    fn forget(
        &self,
        folder: &mut OpenFolder,
        uids: &[u32],
        max_tombstones: usize,
    ) -> Result<(), StoreError> {
        if uids.is_empty() {
            return Ok(());
        }
        for &uid in uids {
            if let Some(pos) = folder.index.position(uid) {
                folder.index.messages.remove(pos);
                let modseq = folder.index.next_modseq();
                folder.index.tombstone(uid, modseq, max_tombstones);
            }
        }
        folder.dirty = true;
        Ok(())
    }

    /// COPY: copies `uids` from `from` to `to`, all or nothing, keeping flags, keywords and
    /// INTERNALDATE. Files are hard links where the file system allows (messages are
    /// immutable in Maildir), else copies.
    pub fn copy(&self, from: &str, uids: &[u32], to: &str) -> Result<CopyUid, StoreError> {
        let from = FolderName::parse(from)?;
        let to = FolderName::parse(to)?;
        self.copy_inner(&from, uids, &to)
    }

    fn copy_inner(
        &self,
        from: &FolderName,
        uids: &[u32],
        to: &FolderName,
    ) -> Result<CopyUid, StoreError> {
        if !self.folder_exists(to) {
            return Err(StoreError::NoSuchFolder);
        }
        let to_dir = to.path(&self.dir);
        let limits = self.config().limits.clone();
        let mut sorted = uids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();

        // 1. Under the source lock: link each message into the target's tmp/.
        let mut staged: Vec<(u32, IndexEntry, PathBuf, String)> = Vec::new();
        let stage = (|| -> Result<(), StoreError> {
            let mut source = self.open(from)?;
            let before = source.loaded_modseq();
            let cur = source.cur();
            for &uid in &sorted {
                let Some(pos) = source.index.position(uid) else {
                    continue;
                };
                let entry = source.index.messages[pos].clone();
                let unique = unique_name();
                let tmp = to_dir.join("tmp").join(&unique);
                let src = cur.join(&entry.file_name);
                if fs::hard_link(&src, &tmp).is_err() {
                    fs::copy(&src, &tmp)?;
                    File::open(&tmp)?.sync_all()?;
                }
                staged.push((uid, entry, tmp, unique));
            }
            self.finish(from, &mut source, before)
        })();
        let tmp_paths = |staged: &[(u32, IndexEntry, PathBuf, String)]| -> Vec<PathBuf> {
            staged.iter().map(|s| s.2.clone()).collect()
        };
        if let Err(e) =
            stage.and_then(|()| Ok(self.config().fault(FaultPoint::CopyBeforeCommit)?))
        {
            remove_all(&tmp_paths(&staged));
            return Err(e);
        }

        // 2. Under the target lock: commit.
        let mut committed = Vec::new();
        let outcome = (|| -> Result<CopyUid, StoreError> {
            let mut target = self.open(to)?;
            let before = target.loaded_modseq();
            let mut pairs = Vec::with_capacity(staged.len());
            for (uid, entry, tmp, unique) in &staged {
                let flags = entry.flags();
                target.index.declare_keywords(&flags, limits.max_keywords)?;
                let flags = target.index.canonical_keywords(&flags);
                let file_name = flags.system.apply_to_file_name(unique);
                let dest = target.cur().join(&file_name);
                fs::rename(tmp, &dest)?;
                committed.push(dest);
                let new_uid = target.index.take_uid()?;
                let modseq = target.index.next_modseq();
                target.index.messages.push(IndexEntry {
                    uid: new_uid,
                    modseq,
                    size: entry.size,
                    internal_date: entry.internal_date,
                    keywords: flags.keywords,
                    file_name,
                });
                target.dirty = true;
                pairs.push((*uid, new_uid));
            }
            sync_dir(&target.cur())?;
            self.finish(to, &mut target, before)?;
            Ok(CopyUid {
                uidvalidity: target.index.uidvalidity,
                pairs,
            })
        })();
        if outcome.is_err() {
            remove_all(&committed);
            remove_all(&tmp_paths(&staged));
        }
        outcome
    }

    /// MOVE: COPY, then expunge the sources. If the sources cannot be removed, the copies
    /// are removed again, so a failure neither loses nor duplicates a message. Returns the
    /// COPYUID data; the expunged source UIDs are its source UIDs.
    pub fn move_messages(&self, from: &str, uids: &[u32], to: &str) -> Result<CopyUid, StoreError> {
        let from = FolderName::parse(from)?;
        let to = FolderName::parse(to)?;
        let copied = self.copy_inner(&from, uids, &to)?;
        let expunge = (|| -> Result<(), StoreError> {
            self.config().fault(FaultPoint::MoveBeforeSourceExpunge)?;
            let mut source = self.open(&from)?;
            let before = source.loaded_modseq();
            let sources: Vec<u32> = copied.pairs.iter().map(|p| p.0).collect();
            self.remove_messages(&mut source, &sources)?;
            self.finish(&from, &mut source, before)
        })();
        if let Err(e) = expunge {
            let copies: Vec<u32> = copied.pairs.iter().map(|p| p.1).collect();
            let undo = (|| -> Result<(), StoreError> {
                let mut target = self.open(&to)?;
                let before = target.loaded_modseq();
                self.remove_messages(&mut target, &copies)?;
                self.finish(&to, &mut target, before)
            })();
            if let Err(undo) = undo {
                tracing::error!(user = %self.user, error = %undo, "MOVE failed and its copies could not be removed; the messages exist in both folders");
            }
            return Err(e);
        }
        Ok(copied)
    }

    /// FETCH: renders `items` for each UID (in the given order). Messages that no longer
    /// exist are left out. With [`FetchOptions::set_seen`], a non-PEEK body fetch sets
    /// `\Seen` and the result carries the new FLAGS (RFC 9051 §6.4.5).
    pub fn fetch(
        &self,
        name: &str,
        uids: &[u32],
        items: &[cas_imap_proto::command::FetchAttribute<'_>],
        options: &FetchOptions<'_>,
    ) -> Result<Vec<FetchedMessage>, StoreError> {
        render::fetch(self, name, uids, items, options)
    }

    /// FETCH in bounded steps: the data of a leading part of `uids` whose message data
    /// comes to about `max_data_bytes`, and how many of `uids` that part covers (see
    /// [`UserStore::fetch`]; the rest is for the next call).
    pub fn fetch_batch(
        &self,
        name: &str,
        uids: &[u32],
        items: &[cas_imap_proto::command::FetchAttribute<'_>],
        options: &FetchOptions<'_>,
        max_data_bytes: u64,
    ) -> Result<(Vec<FetchedMessage>, usize), StoreError> {
        render::fetch_batch(self, name, uids, items, options, max_data_bytes)
    }

    /// SEARCH: the UIDs of `context.uids` that match `key`, ascending, and the highest
    /// modseq among them (for the `(MODSEQ n)` of a CONDSTORE search).
    pub fn search(
        &self,
        name: &str,
        key: &cas_imap_proto::command::SearchKey<'_>,
        context: &SearchContext<'_>,
    ) -> Result<(Vec<u32>, u64), StoreError> {
        search::search(self, name, key, context)
    }

    /// The watcher's check: rescans `name` and signals subscribers if something changed
    /// (mail delivered into `new/`, files changed by other programs).
    pub fn poll(&self, name: &str) -> Result<(), StoreError> {
        let name = FolderName::parse(name)?;
        let mut folder = self.open(&name)?;
        let before = folder.loaded_modseq();
        self.finish(&name, &mut folder, before)
    }

    pub(crate) fn folder_dir(&self, name: &FolderName) -> PathBuf {
        name.path(&self.dir)
    }

    pub(crate) fn store(&self) -> &ImapStore {
        &self.store
    }

    pub(crate) fn open_folder(&self, name: &FolderName) -> Result<(OpenFolder, u64), StoreError> {
        let folder = self.open(name)?;
        let before = folder.loaded_modseq();
        Ok((folder, before))
    }

    pub(crate) fn finish_folder(
        &self,
        name: &FolderName,
        folder: &mut OpenFolder,
        before: u64,
    ) -> Result<(), StoreError> {
        self.finish(name, folder, before)
    }
}

fn vanished_since(ix: &index::FolderIndex, modseq: u64) -> VanishedSince {
    if modseq >= ix.vanished_floor {
        let mut uids: Vec<u32> = ix
            .tombstones
            .iter()
            .filter(|(_, m)| *m > modseq)
            .map(|(u, _)| *u)
            .collect();
        uids.sort_unstable();
        VanishedSince {
            ranges: VanishedSince::from_sorted(uids),
            complete: true,
        }
    } else {
        let mut ranges = Vec::new();
        let mut next = 1u32;
        for m in &ix.messages {
            if m.uid > next {
                ranges.push((next, m.uid - 1));
            }
            next = m.uid + 1;
        }
        if ix.uidnext > next {
            ranges.push((next, ix.uidnext - 1));
        }
        VanishedSince {
            ranges,
            complete: false,
        }
    }
}

fn system_time(unix: i64) -> SystemTime {
    let base = std::time::UNIX_EPOCH;
    if unix >= 0 {
        base + std::time::Duration::from_secs(unix as u64)
    } else {
        base - std::time::Duration::from_secs(unix.unsigned_abs())
    }
}

/// A message's bytes on demand, guarded against the message disappearing meanwhile.
pub(crate) fn read_message(dir: &Path, file_name: &str) -> Result<Vec<u8>, StoreError> {
    match fs::read(dir.join("cur").join(file_name)) {
        Ok(d) => Ok(d),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::Expunged),
        Err(e) => Err(e.into()),
    }
}
