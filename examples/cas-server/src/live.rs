//! Live configuration: the client access policy and the users file, reloaded without a
//! restart on SIGHUP and when the file changes (its modification time, size or inode, polled
//! every [`POLL_INTERVAL`]).
//!
//! A reload builds the new value completely (`PolicyConfig::from_toml_str` + `Policy::new`,
//! or `FileCredentialStore::parse`) and only then swaps the `Arc` behind a `RwLock`; a file
//! that does not load is logged and the old value stays in force. Readers take a cheap
//! `Arc` clone and never see a half-applied change. Each policy swap bumps a generation
//! number, which sessions compare before every command to re-check their user's access
//! (see [`crate::pop3`]).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use cas_auth::{CredentialStore, FileCredentialStore};
use cas_policy::{Policy, PolicyConfig};
use tokio_util::sync::CancellationToken;

/// How often the files' metadata is checked.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// What identifies one version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> io::Result<Option<Stamp>> {
    match fs::metadata(path) {
        Ok(m) => {
            #[cfg(unix)]
            let inode = std::os::unix::fs::MetadataExt::ino(&m);
            #[cfg(not(unix))]
            let inode = 0;
            Ok(Some(Stamp {
                modified: m.modified().ok(),
                len: m.len(),
                inode,
            }))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The policy in force, with its generation.
#[derive(Debug)]
pub struct PolicyVersion {
    /// The compiled policy.
    pub policy: Policy,
    /// Starts at 1, +1 per successful reload.
    pub generation: u64,
}

/// How a reload went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// The file is as it was.
    Unchanged,
    /// A new version is in force.
    Reloaded,
    /// The file does not load; the previous version stays.
    Failed(String),
}

/// The reloadable client access policy.
#[derive(Debug)]
pub struct LivePolicy {
    path: PathBuf,
    current: RwLock<Arc<PolicyVersion>>,
    generation: AtomicU64,
    stamp: Mutex<Option<Stamp>>,
}

fn read_policy(path: &Path) -> Result<Policy, String> {
    let config = match fs::read_to_string(path) {
        Ok(text) => PolicyConfig::from_toml_str(&text).map_err(|e| e.to_string())?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => PolicyConfig::default(),
        Err(e) => return Err(e.to_string()),
    };
    let open: Vec<String> = config
        .outlook_anywhere
        .valid_ports
        .iter()
        .filter(|p| p.server == "*")
        .map(|p| p.to_string())
        .collect();
    if !open.is_empty() {
        tracing::warn!(
            entries = %open.join(","),
            "OutlookAnywhere.ValidPorts allows any server: every authenticated user can reach \
             any host on these ports through the RPC proxy; list the RPC servers by name"
        );
    }
    Policy::new(config).map_err(|e| e.to_string())
}

impl LivePolicy {
    /// Loads `path` (missing: Exchange's defaults). A bad file is an error here: the server
    /// refuses to start rather than run with a policy the admin did not write.
    pub fn load(path: &Path) -> Result<Self, String> {
        let stamp = stamp(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let policy = read_policy(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Self::with(path, policy, stamp))
    }

    /// A fixed policy (tests), still reloadable from `path`.
    pub fn from_policy(path: &Path, policy: Policy) -> Self {
        Self::with(path, policy, None)
    }

    fn with(path: &Path, policy: Policy, stamp: Option<Stamp>) -> Self {
        Self {
            path: path.to_path_buf(),
            current: RwLock::new(Arc::new(PolicyVersion {
                policy,
                generation: 1,
            })),
            generation: AtomicU64::new(1),
            stamp: Mutex::new(stamp),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The version in force.
    pub fn current(&self) -> Arc<PolicyVersion> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The generation in force (cheaper than [`current`](Self::current)).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Installs `policy` as the next generation.
    pub fn install(&self, policy: Policy) {
        let mut guard = match self.current.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let generation = guard.generation + 1;
        *guard = Arc::new(PolicyVersion { policy, generation });
        self.generation.store(generation, Ordering::Release);
    }

    /// Reloads when the file changed (`force`: in any case, as on SIGHUP).
    pub fn reload(&self, force: bool) -> Reload {
        let mut last = match self.stamp.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let now = match stamp(&self.path) {
            Ok(s) => s,
            Err(e) => return Reload::Failed(e.to_string()),
        };
        if !force && now == *last {
            return Reload::Unchanged;
        }
        // Remembered even when the file is bad: the error is logged once, not every poll.
        *last = now;
        match read_policy(&self.path) {
            Ok(policy) => {
                self.install(policy);
                Reload::Reloaded
            }
            Err(e) => Reload::Failed(e),
        }
    }
}

/// The users file as a [`CredentialStore`] that can be swapped while sessions use it.
#[derive(Debug)]
pub struct LiveCredentials {
    path: PathBuf,
    current: RwLock<Arc<FileCredentialStore>>,
    stamp: Mutex<Option<Stamp>>,
}

impl LiveCredentials {
    /// Loads the users file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let stamp = stamp(path).map_err(|e| e.to_string())?;
        let text = fs::read_to_string(path).map_err(|e| e.to_string())?;
        let store = FileCredentialStore::parse(&text).map_err(|e| e.to_string())?;
        Ok(Self {
            path: path.to_path_buf(),
            current: RwLock::new(Arc::new(store)),
            stamp: Mutex::new(stamp),
        })
    }

    /// The users file in force (for lookups beyond credentials: names, extra fields).
    pub fn snapshot(&self) -> Arc<FileCredentialStore> {
        self.store()
    }

    fn store(&self) -> Arc<FileCredentialStore> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Reloads when the file changed (`force`: in any case).
    pub fn reload(&self, force: bool) -> Reload {
        let mut last = match self.stamp.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let now = match stamp(&self.path) {
            Ok(s) => s,
            Err(e) => return Reload::Failed(e.to_string()),
        };
        if !force && now == *last {
            return Reload::Unchanged;
        }
        *last = now;
        let parsed = fs::read_to_string(&self.path)
            .map_err(|e| e.to_string())
            .and_then(|t| FileCredentialStore::parse(&t).map_err(|e| e.to_string()));
        match parsed {
            Ok(store) => {
                match self.current.write() {
                    Ok(mut g) => *g = Arc::new(store),
                    Err(p) => *p.into_inner() = Arc::new(store),
                }
                Reload::Reloaded
            }
            Err(e) => Reload::Failed(e),
        }
    }
}

impl CredentialStore for LiveCredentials {
    fn verify_password(&self, user: &str, password: &[u8]) -> Result<bool, cas_auth::StoreError> {
        self.store().verify_password(user, password)
    }

    fn nt_hash(
        &self,
        user: &str,
    ) -> Result<Option<cas_auth::Secret<cas_auth::NtHash>>, cas_auth::StoreError> {
        self.store().nt_hash(user)
    }

    fn canonical_user(&self, user: &str) -> Result<Option<String>, cas_auth::StoreError> {
        self.store().canonical_user(user)
    }
}

fn log_outcome(what: &str, path: &Path, outcome: &Reload, generation: Option<u64>) {
    match outcome {
        Reload::Unchanged => {}
        Reload::Reloaded => {
            tracing::info!(file = %path.display(), ?generation, "{what} reloaded");
        }
        Reload::Failed(e) => tracing::error!(
            file = %path.display(),
            error = %e,
            "{what} not reloaded; the previous version stays in force"
        ),
    }
}

/// Reloads on SIGHUP and polls for file changes until `shutdown`.
pub async fn watch(
    policy: Arc<LivePolicy>,
    credentials: Option<Arc<LiveCredentials>>,
    shutdown: CancellationToken,
) {
    #[cfg(unix)]
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGHUP; only file changes reload");
            None
        }
    };
    let mut ticker = tokio::time::interval(POLL_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        #[cfg(unix)]
        let hup = async {
            match hangup.as_mut() {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hup = std::future::pending::<Option<()>>();
        let force = tokio::select! {
            _ = ticker.tick() => false,
            _ = hup => {
                tracing::info!("SIGHUP: reloading the policy and the users file");
                true
            }
            () = shutdown.cancelled() => return,
        };
        let p = policy.clone();
        let c = credentials.clone();
        // File reads and argon2-free parsing are quick, but still blocking I/O.
        let done = tokio::task::spawn_blocking(move || {
            let outcome = p.reload(force);
            log_outcome("policy", p.path(), &outcome, Some(p.generation()));
            if let Some(c) = c {
                let outcome = c.reload(force);
                log_outcome("users file", &c.path, &outcome, None);
            }
        });
        let _ = done.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reload_keeps_the_old_policy_on_a_bad_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        let live = LivePolicy::load(&path).unwrap();
        assert_eq!(live.generation(), 1);
        assert_eq!(live.reload(false), Reload::Unchanged);
        fs::write(&path, "[PopSettings]\nMaxCommandSize = 100\n").unwrap();
        assert_eq!(live.reload(false), Reload::Reloaded);
        assert_eq!(live.generation(), 2);
        assert_eq!(live.current().policy.pop_settings().max_command_size, 100);
        fs::write(&path, "[PopSettings]\nMaxCommandSize = 5000\n").unwrap();
        let Reload::Failed(e) = live.reload(false) else {
            panic!("bad file accepted")
        };
        assert!(e.contains("MaxCommandSize"), "{e}");
        assert_eq!(live.generation(), 2);
        assert_eq!(live.current().policy.pop_settings().max_command_size, 100);
        // Logged once, not at every poll.
        assert_eq!(live.reload(false), Reload::Unchanged);
        assert!(matches!(live.reload(true), Reload::Failed(_)));
    }
}
