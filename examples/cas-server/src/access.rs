//! Client access enforcement shared by every protocol: the live policy, one connection
//! tracker per protocol, the login throttle and the protocol logs.
//!
//! A protocol plugs in at three points, POP3 today and IMAP and the RPC proxy the same way:
//!
//! 1. on accept, [`AccessControl::admit`] runs the policy's connection-level rules
//!    (`admit_connection`) and takes a slot in the protocol's [`ConnectionTracker`]
//!    (MaxConnections, MaxConnectionFromSingleIP). The returned [`Slot`] releases itself when
//!    dropped, however the connection ends;
//! 2. around a login, [`AccessControl::check_throttle`] before the credentials are checked,
//!    [`AccessControl::login_failed`] / [`AccessControl::login_succeeded`] after, and
//!    [`AccessControl::authorize`] (`authorize_login`: the per-mailbox switch, client access
//!    rules, LoginType against TLS and the mechanism) once the user is known, then
//!    [`Slot::bind_user`] (MaxConnectionsPerUser);
//! 3. before each command of a logged-in session, [`Reauthorization::still_allowed`]
//!    re-runs `authorize_login` when the policy generation changed.
//!
//! The library decides; this module only keeps its mutable state (tracker, throttle) behind
//! mutexes and supplies the clock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cas_policy::{
    AuthMechanism, ConnectionLimits, ConnectionTicket, ConnectionTracker, Decision, Denial,
    LoginThrottle, MAX_CONNECTION_LIMIT, Policy, Protocol,
};

use crate::live::{LivePolicy, PolicyVersion};
use crate::protolog::{ProtocolLog, RollOver, Rotation};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// The connection limits of `protocol` in `policy`.
pub fn limits(policy: &Policy, protocol: Protocol) -> ConnectionLimits {
    match protocol {
        Protocol::Pop3 => ConnectionLimits::pop(policy.pop_settings()),
        Protocol::Imap4 => ConnectionLimits::imap(policy.imap_settings()),
        _ => ConnectionLimits {
            max_connections: MAX_CONNECTION_LIMIT,
            max_connection_from_single_ip: MAX_CONNECTION_LIMIT,
            max_connections_per_user: MAX_CONNECTION_LIMIT,
        },
    }
}

/// Where and how `protocol` logs under `policy`: `None` when ProtocolLogEnabled is off.
///
/// LogFileLocation (relative paths resolve against the server's log directory; default
/// `<log_dir>/<protocol>`), LogPerFileSizeQuota (0, Exchange's "unlimited", keeps the
/// server's rotation size, so a log is always bounded), LogFileRollOverSettings.
pub fn protocol_log_place(
    policy: &Policy,
    protocol: Protocol,
    log_dir: &std::path::Path,
    server_rotation: Rotation,
) -> Option<(PathBuf, Rotation)> {
    let (enabled, location, quota, roll_over) = match protocol {
        Protocol::Pop3 => {
            let p = policy.pop_settings();
            (
                p.protocol_log_enabled,
                &p.log_file_location,
                p.log_per_file_size_quota,
                p.log_file_roll_over_settings,
            )
        }
        Protocol::Imap4 => {
            let p = policy.imap_settings();
            (
                p.protocol_log_enabled,
                &p.log_file_location,
                p.log_per_file_size_quota,
                p.log_file_roll_over_settings,
            )
        }
        _ => return None,
    };
    if !enabled {
        return None;
    }
    let dir = match location {
        Some(l) => log_dir.join(l),
        None => log_dir.join(protocol.name().to_ascii_lowercase()),
    };
    let rotation = Rotation {
        max_file_size: if quota > 0 {
            quota
        } else {
            server_rotation.max_file_size
        },
        max_files: server_rotation.max_files,
        roll_over: match roll_over {
            cas_policy::LogFileRollOver::Hourly => RollOver::Hourly,
            cas_policy::LogFileRollOver::Weekly => RollOver::Weekly,
            cas_policy::LogFileRollOver::Monthly => RollOver::Monthly,
            _ => RollOver::Daily,
        },
    };
    Some((dir, rotation))
}

struct Trackers {
    generation: u64,
    by_protocol: HashMap<Protocol, ConnectionTracker>,
}

struct Throttle {
    generation: u64,
    throttle: LoginThrottle,
}

/// Everything a protocol needs to enforce the policy.
pub struct AccessControl {
    policy: Arc<LivePolicy>,
    trackers: Mutex<Trackers>,
    throttle: Mutex<Throttle>,
    logs: Mutex<HashMap<Protocol, Arc<ProtocolLog>>>,
    log_dir: PathBuf,
    rotation: Rotation,
    epoch: Instant,
    /// `--allow-plaintext-auth` / `allow_clear_text_without_tls`: clear-text logins before
    /// TLS are accepted whatever LoginType says.
    plaintext_override: bool,
    /// The same for IMAP (`[imap] allow_clear_text_without_tls`), when it differs from POP3.
    imap_plaintext_override: Option<bool>,
}

impl std::fmt::Debug for AccessControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessControl")
            .field("policy", &self.policy.path())
            .finish_non_exhaustive()
    }
}

impl AccessControl {
    /// Enforcement of `policy`; protocol logs go to `<log_dir>/<protocol>/`.
    pub fn new(
        policy: Arc<LivePolicy>,
        log_dir: PathBuf,
        rotation: Rotation,
        plaintext_override: bool,
    ) -> Self {
        let current = policy.current();
        Self {
            trackers: Mutex::new(Trackers {
                generation: current.generation,
                by_protocol: HashMap::new(),
            }),
            throttle: Mutex::new(Throttle {
                generation: current.generation,
                throttle: LoginThrottle::new(current.policy.config().login_throttle.clone()),
            }),
            logs: Mutex::new(HashMap::new()),
            policy,
            log_dir,
            rotation,
            epoch: crate::driver::now(),
            plaintext_override,
            imap_plaintext_override: None,
        }
    }

    /// Sets IMAP's plain-text override separately (the one given to [`new`](Self::new)
    /// applies to every protocol until then).
    pub fn with_imap_plaintext_override(mut self, allow: bool) -> Self {
        self.imap_plaintext_override = Some(allow);
        self
    }

    /// Whether clear-text logins before TLS are forced on for `protocol`.
    pub fn plaintext_override_for(&self, protocol: Protocol) -> bool {
        match protocol {
            Protocol::Imap4 => self
                .imap_plaintext_override
                .unwrap_or(self.plaintext_override),
            _ => self.plaintext_override,
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<PolicyVersion> {
        self.policy.current()
    }

    /// The reloadable policy.
    pub fn live_policy(&self) -> &Arc<LivePolicy> {
        &self.policy
    }

    /// Whether clear-text logins before TLS are forced on.
    pub fn plaintext_override(&self) -> bool {
        self.plaintext_override
    }

    /// The library's clock: time since the server started (tokio's clock, so tests with
    /// paused time control it).
    pub fn now(&self) -> Duration {
        crate::driver::now().saturating_duration_since(self.epoch)
    }

    /// Connection-level rules, then a tracker slot.
    pub fn admit(
        self: &Arc<Self>,
        protocol: Protocol,
        client_addr: IpAddr,
        tls: bool,
    ) -> Result<Slot, Denial> {
        let version = self.policy();
        if let Decision::Deny(d) =
            version
                .policy
                .admit_connection(protocol, client_addr, tls, self.now())
        {
            return Err(d);
        }
        let mut trackers = lock(&self.trackers);
        if trackers.generation != version.generation {
            // New limits apply to new connections at once; existing ones are never cut.
            trackers.generation = version.generation;
            for (p, t) in trackers.by_protocol.iter_mut() {
                t.set_limits(limits(&version.policy, *p));
            }
        }
        let tracker = trackers
            .by_protocol
            .entry(protocol)
            .or_insert_with(|| ConnectionTracker::new(limits(&version.policy, protocol)));
        let ticket = tracker.try_admit(client_addr)?;
        Ok(Slot {
            access: self.clone(),
            protocol,
            ticket,
        })
    }

    /// Open connections of `protocol` (for tests and logs).
    pub fn connections(&self, protocol: Protocol) -> usize {
        lock(&self.trackers)
            .by_protocol
            .get(&protocol)
            .map_or(0, ConnectionTracker::total)
    }

    fn throttle(&self) -> MutexGuard<'_, Throttle> {
        let version = self.policy();
        let mut t = lock(&self.throttle);
        if t.generation != version.generation {
            t.generation = version.generation;
            t.throttle
                .set_config(version.policy.config().login_throttle.clone());
        }
        t
    }

    /// Whether a login attempt of `user` (empty: not known yet) from `client_addr` may go
    /// ahead: the address's backoff first, then the user's.
    pub fn check_throttle(&self, user: &str, client_addr: IpAddr) -> Decision {
        let now = self.now();
        let t = self.throttle();
        if user.is_empty() {
            t.throttle.check_address(client_addr, now)
        } else {
            t.throttle.check(user, client_addr, now)
        }
    }

    /// Records a failed login (bad password, unknown user).
    pub fn login_failed(&self, user: &str, client_addr: IpAddr) {
        let now = self.now();
        self.throttle()
            .throttle
            .record_failure(user, client_addr, now);
    }

    /// Records a good password.
    pub fn login_succeeded(&self, user: &str, client_addr: IpAddr) {
        let now = self.now();
        self.throttle()
            .throttle
            .record_success(user, client_addr, now);
    }

    /// `authorize_login` with the plain-text override applied: when it is on, the
    /// LoginType check sees the connection as if it were TLS.
    pub fn authorize(&self, policy: &Policy, login: &LoginFacts) -> Decision {
        policy.authorize_login(
            &login.user,
            login.protocol,
            login.mechanism,
            login.tls
                || (self.plaintext_override_for(login.protocol)
                    && login.mechanism.sends_cleartext_password()),
            login.client_addr,
            self.now(),
        )
    }

    /// The protocol log of `protocol` when ProtocolLogEnabled is on in the policy in force
    /// (a new writer when the policy moved or re-sized it).
    pub fn protocol_log(&self, protocol: Protocol) -> Option<Arc<ProtocolLog>> {
        let (dir, rotation) = protocol_log_place(
            &self.policy().policy,
            protocol,
            &self.log_dir,
            self.rotation,
        )?;
        let mut logs = lock(&self.logs);
        if let Some(log) = logs.get(&protocol)
            && log.dir() == dir
            && log.rotation() == rotation
        {
            return Some(log.clone());
        }
        let name = protocol.name().to_ascii_lowercase();
        let log = Arc::new(ProtocolLog::new(
            dir,
            &name,
            &format!("{} Protocol Log", protocol.name()),
            rotation,
        ));
        logs.insert(protocol, log.clone());
        Some(log)
    }
}

/// A value built from the policy in force (a protocol's session configuration), kept until
/// a reload brings a new policy generation.
pub struct PerGeneration<T> {
    cache: Mutex<Option<(u64, Arc<T>)>>,
}

impl<T> Default for PerGeneration<T> {
    fn default() -> Self {
        Self {
            cache: Mutex::new(None),
        }
    }
}

impl<T> std::fmt::Debug for PerGeneration<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerGeneration").finish_non_exhaustive()
    }
}

impl<T> PerGeneration<T> {
    /// The value for the policy generation in force, built by `build` once per generation
    /// (a failed build is not kept).
    pub fn get_or_build<E>(
        &self,
        access: &AccessControl,
        build: impl FnOnce(&Policy) -> Result<T, E>,
    ) -> Result<Arc<T>, E> {
        let version = access.policy();
        let mut cache = match self.cache.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some((generation, value)) = cache.as_ref()
            && *generation == version.generation
        {
            return Ok(value.clone());
        }
        let value = Arc::new(build(&version.policy)?);
        *cache = Some((version.generation, value.clone()));
        Ok(value)
    }
}

/// A connection's place in its protocol's tracker; released on drop.
pub struct Slot {
    access: Arc<AccessControl>,
    protocol: Protocol,
    ticket: ConnectionTicket,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("protocol", &self.protocol)
            .field("ticket", &self.ticket)
            .finish()
    }
}

impl Slot {
    /// Counts the connection against `user`'s MaxConnectionsPerUser.
    pub fn bind_user(&self, user: &str) -> Result<(), Denial> {
        let mut trackers = lock(&self.access.trackers);
        match trackers.by_protocol.get_mut(&self.protocol) {
            Some(t) => t.bind_user(self.ticket, user),
            None => Ok(()),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut trackers = lock(&self.access.trackers);
        if let Some(t) = trackers.by_protocol.get_mut(&self.protocol) {
            t.release(self.ticket);
        }
    }
}

/// What is known about a successful authentication, kept for re-checks.
#[derive(Debug, Clone)]
pub struct LoginFacts {
    /// The canonical user name.
    pub user: String,
    /// The protocol.
    pub protocol: Protocol,
    /// How the user authenticated.
    pub mechanism: AuthMechanism,
    /// TLS was active.
    pub tls: bool,
    /// The client's address.
    pub client_addr: IpAddr,
}

/// Re-checks a logged-in session's right to continue after policy reloads.
#[derive(Debug)]
pub struct Reauthorization {
    facts: LoginFacts,
    checked_generation: u64,
}

impl Reauthorization {
    /// Starts watching after a login allowed under `generation`.
    pub fn new(facts: LoginFacts, generation: u64) -> Self {
        Self {
            facts,
            checked_generation: generation,
        }
    }

    /// The login.
    pub fn facts(&self) -> &LoginFacts {
        &self.facts
    }

    /// `Ok` while the policy in force still allows the login; the denial once it does not.
    /// Cheap when nothing was reloaded (one atomic load).
    pub fn still_allowed(&mut self, access: &AccessControl) -> Result<(), Denial> {
        if access.live_policy().generation() == self.checked_generation {
            return Ok(());
        }
        let version = access.policy();
        self.checked_generation = version.generation;
        access.authorize(&version.policy, &self.facts).into_result()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn access(toml: &str) -> Arc<AccessControl> {
        let policy = Policy::from_toml_str(toml).unwrap();
        let live = Arc::new(LivePolicy::from_policy(
            Path::new("/nonexistent/policy.toml"),
            policy,
        ));
        Arc::new(AccessControl::new(
            live,
            "/nonexistent".into(),
            Rotation::default(),
            false,
        ))
    }

    #[test]
    fn slots_are_released_on_drop() {
        let a = access("[PopSettings]\nMaxConnectionFromSingleIP = 2\n");
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let s1 = a.admit(Protocol::Pop3, ip, false).unwrap();
        let _s2 = a.admit(Protocol::Pop3, ip, false).unwrap();
        let denied = a.admit(Protocol::Pop3, ip, false).unwrap_err();
        assert_eq!(denied.pop3_code(), "SYS/TEMP");
        assert!(
            a.admit(Protocol::Pop3, "192.0.2.2".parse().unwrap(), false)
                .is_ok()
        );
        drop(s1);
        assert_eq!(a.connections(Protocol::Pop3), 1);
        let _s3 = a.admit(Protocol::Pop3, ip, false).unwrap();
    }

    #[test]
    fn per_user_limit_and_reauthorization() {
        let a = access(
            "[PopSettings]\nMaxConnectionsPerUser = 1\n[CASMailbox.alice]\nOrganizationalUnit = \"corp/sales\"\n",
        );
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let s1 = a.admit(Protocol::Pop3, ip, true).unwrap();
        let s2 = a.admit(Protocol::Pop3, ip, true).unwrap();
        s1.bind_user("alice").unwrap();
        assert_eq!(s2.bind_user("alice").unwrap_err().pop3_code(), "IN-USE");
        let facts = LoginFacts {
            user: "alice".into(),
            protocol: Protocol::Pop3,
            mechanism: AuthMechanism::UserPass,
            tls: true,
            client_addr: ip,
        };
        let version = a.policy();
        assert!(a.authorize(&version.policy, &facts).is_allowed());
        let mut re = Reauthorization::new(facts, version.generation);
        assert!(re.still_allowed(&a).is_ok());
        a.live_policy()
            .install(Policy::from_toml_str("[CASMailbox.alice]\nPopEnabled = false\n").unwrap());
        assert_eq!(re.still_allowed(&a).unwrap_err().pop3_code(), "AUTH");
    }

    #[test]
    fn secure_login_and_the_override() {
        let a = access("");
        let facts = LoginFacts {
            user: "bob".into(),
            protocol: Protocol::Pop3,
            mechanism: AuthMechanism::UserPass,
            tls: false,
            client_addr: "127.0.0.1".parse().unwrap(),
        };
        let policy = Policy::from_toml_str("").unwrap();
        assert!(!a.authorize(&policy, &facts).is_allowed());
        let live = Arc::new(LivePolicy::from_policy(Path::new("/x"), policy.clone()));
        let open = AccessControl::new(live, "/x".into(), Rotation::default(), true);
        assert!(open.authorize(&policy, &facts).is_allowed());
    }
}
