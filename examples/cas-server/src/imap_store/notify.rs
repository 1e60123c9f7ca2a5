//! Push: an in-process broadcast per user and folder that every write signals, and a watcher
//! that finds mail delivered into `new/` (or files changed) by other programs.
//!
//! The watcher polls only the folders somebody is subscribed to, once per interval (default
//! [`WATCH_INTERVAL`], 500 ms, so changes reach an IDLE-ing client well within the 2 s the
//! issue asks for). A poll compares the modification times of `new/` and `cur/` with the last
//! ones seen and rescans only when they moved (or when `new/` holds mail), so idle folders
//! cost two `stat` calls per interval. Polling was chosen over inotify: it needs no new
//! dependency, works on network file systems where inotify sees nothing, and the bounded set
//! of watched folders keeps it cheap.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::broadcast;

use super::{FolderName, ImapStore, StoreConfig};

/// How often the watcher polls watched folders.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// Queued notifications per folder before a slow subscriber starts missing some (it then
/// gets `RecvError::Lagged` and should rescan, which is what every notification means anyway).
const CHANNEL_CAPACITY: usize = 16;

/// A folder changed. Receivers call [`super::UserStore::changes_since`] with the modseq they
/// know to learn what changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderChange {
    /// The user.
    pub user: String,
    /// The folder (canonical IMAP name).
    pub folder: String,
    /// HIGHESTMODSEQ after the change; 0 when the folder was deleted or renamed away.
    pub highest_modseq: u64,
}

type Key = (String, String);
type Channels = Arc<Mutex<HashMap<Key, broadcast::Sender<FolderChange>>>>;
type Stamps = HashMap<Key, (Option<SystemTime>, Option<SystemTime>)>;

/// Per user and folder broadcast channels. Cheap to clone (shared state).
///
/// The notifier of an [`ImapStore`] starts the watcher by itself: the first subscription made
/// inside a tokio runtime spawns it on that runtime (again if the previous one ended), and it
/// stops once the store and all its clones are gone. [`spawn_watcher`] runs one explicitly.
#[derive(Clone, Debug, Default)]
pub struct ChangeNotifier {
    channels: Channels,
    auto: Option<Arc<AutoWatch>>,
}

/// What the automatic watcher needs to build a store of its own for each poll.
#[derive(Debug)]
struct AutoWatch {
    root: PathBuf,
    config: StoreConfig,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl ChangeNotifier {
    /// A notifier whose first subscription inside a tokio runtime starts the watcher over
    /// `root`.
    pub(crate) fn with_auto_watch(root: PathBuf, config: StoreConfig) -> Self {
        Self {
            channels: Channels::default(),
            auto: Some(Arc::new(AutoWatch {
                root,
                config,
                task: Mutex::new(None),
            })),
        }
    }

    /// Subscribes to changes of `folder` (canonical IMAP name; `INBOX` upper-case) of `user`.
    pub fn subscribe(&self, user: &str, folder: &str) -> broadcast::Receiver<FolderChange> {
        let folder = canonical(folder);
        let rx = {
            let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
            channels
                .entry((user.to_owned(), folder))
                .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
                .subscribe()
        };
        self.ensure_watcher();
        rx
    }

    /// Signals a change; channels nobody listens to any more are dropped.
    pub fn notify(&self, user: &str, folder: &str, highest_modseq: u64) {
        let key = (user.to_owned(), canonical(folder));
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = channels.get(&key) {
            let change = FolderChange {
                user: key.0.clone(),
                folder: key.1.clone(),
                highest_modseq,
            };
            if tx.send(change).is_err() {
                channels.remove(&key);
            }
        }
    }

    /// The folders with at least one subscriber.
    pub fn watched(&self) -> Vec<(String, String)> {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        channels.retain(|_, tx| tx.receiver_count() > 0);
        channels.keys().cloned().collect()
    }

    fn ensure_watcher(&self) {
        let Some(auto) = &self.auto else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // no runtime (a synchronous caller): rescans happen on the next operation
        };
        let mut task = auto.task.lock().unwrap_or_else(PoisonError::into_inner);
        if task.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        // Weak: the watcher must not keep the store's channels alive by itself.
        let channels = Arc::downgrade(&self.channels);
        let auto2 = auto.clone();
        *task = Some(runtime.spawn(async move {
            let mut seen = Stamps::new();
            let mut ticker = tokio::time::interval(WATCH_INTERVAL);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(channels) = channels.upgrade() else {
                    return;
                };
                let notifier = ChangeNotifier {
                    channels,
                    auto: None,
                };
                let store = ImapStore::with_notifier(&auto2.root, auto2.config.clone(), notifier);
                watch_tick(&store, &mut seen).await;
            }
        }));
    }
}

fn canonical(folder: &str) -> String {
    FolderName::parse(folder).map_or_else(|_| folder.to_owned(), |n| n.to_imap())
}

/// Spawns a watcher on the current tokio runtime: every `interval`, each watched folder
/// whose `new/` or `cur/` changed is rescanned (on the blocking pool), which signals its
/// subscribers when the scan found anything. Stops when `shutdown` is cancelled.
pub fn spawn_watcher(
    store: ImapStore,
    interval: Duration,
    shutdown: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen = Stamps::new();
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            watch_tick(&store, &mut seen).await;
        }
    })
}

/// One round of the watcher over the watched folders.
async fn watch_tick(store: &ImapStore, seen: &mut Stamps) {
    let watched = store.notifier().watched();
    seen.retain(|k, _| watched.contains(k));
    if watched.is_empty() {
        return;
    }
    let store2 = store.clone();
    let previous = seen.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let mut stamps = Vec::new();
        for key in watched {
            let Ok(user) = store2.user(&key.0) else {
                continue;
            };
            let Ok(name) = FolderName::parse(&key.1) else {
                continue;
            };
            let dir: PathBuf = user.folder_dir(&name);
            let stamp = (mtime(&dir.join("new")), mtime(&dir.join("cur")));
            let new_has_mail = std::fs::read_dir(dir.join("new"))
                .map(|mut d| d.next().is_some())
                .unwrap_or(false);
            if (previous.get(&key) != Some(&stamp) || new_has_mail)
                && let Err(e) = user.poll(&key.1)
            {
                tracing::debug!(user = %key.0, folder = %key.1, error = %e, "watcher poll failed");
            }
            // The stamp after the poll: our own move from new/ to cur/ is not news.
            stamps.push((key, (mtime(&dir.join("new")), mtime(&dir.join("cur")))));
        }
        stamps
    })
    .await;
    if let Ok(stamps) = checked {
        seen.extend(stamps);
    }
}

fn mtime(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
