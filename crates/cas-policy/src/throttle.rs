//! Login-failure throttling: per client address first, then per user, with
//! exponential backoff, window decay and bounded memory.
//!
//! # Design
//!
//! Two tables count recent failures: one per client address ([`client_key`]: the IPv4
//! address or the IPv6 /64) and one per user. A record's failures are forgotten once
//! `Window` passes without a new failure. After `AddressFreeFailures` (or
//! `UserFreeFailures`) failures, each further failure sets a delay of
//! `BaseDelay × 2^(n − free − 1)`, capped at `AddressMaxDelay` (or `UserMaxDelay`);
//! until it passes, [`LoginThrottle::check`] refuses with
//! [`DenialReason::LoginDelay`] and the server does not verify credentials.
//!
//! Why an attacker on one address cannot lock a user out everywhere:
//!
//! - [`check`](LoginThrottle::check) looks at the address first, so the attacker's
//!   address is delayed (up to 15 minutes by default) long before the user's record
//!   matters.
//! - A failure counts against the user only while its address is still within its
//!   free failures. One address therefore adds at most `AddressFreeFailures` to a
//!   user's count per window, and `UserFreeFailures` must be at least that, so a single
//!   address can never delay a user at all. Only many addresses together can.
//! - Even then the per-user delay is short (`UserMaxDelay`, 30 s by default): it slows
//!   a distributed guessing attack without locking the owner out for long.
//! - A success clears the user's record but not the address's, so an attacker who
//!   owns one valid account cannot use it to wash its address clean.
//!
//! Memory is bounded: each table holds at most `Capacity` records; when full, the record
//! whose last failure is oldest is dropped (expired records go first).

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::mailbox::MAX_USER_NAME_LEN;
use crate::settings::{check_span, check_u32};
use crate::{ConfigError, Decision, Denial, DenialReason, TimeSpan, client_key};

/// Login throttle settings (`[LoginThrottle]`; not an Exchange cmdlet — Exchange
/// leaves this to IIS and AD lockout policies).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    /// `Enabled`: throttle at all; default true.
    #[serde(rename = "Enabled")]
    pub enabled: bool,
    /// `AddressFreeFailures`: failures from one address before delays start, 1 to
    /// 1000, default 5.
    #[serde(rename = "AddressFreeFailures")]
    pub address_free_failures: u32,
    /// `UserFreeFailures`: failures against one user before delays start, at least
    /// `AddressFreeFailures` and at most 10000, default 20.
    #[serde(rename = "UserFreeFailures")]
    pub user_free_failures: u32,
    /// `BaseDelay`: the first delay, 00:00:00.1 to 00:10:00, default 00:00:01.
    #[serde(rename = "BaseDelay")]
    pub base_delay: TimeSpan,
    /// `AddressMaxDelay`: cap of an address's delay, `BaseDelay` to 1.00:00:00,
    /// default 00:15:00.
    #[serde(rename = "AddressMaxDelay")]
    pub address_max_delay: TimeSpan,
    /// `UserMaxDelay`: cap of a user's delay, `BaseDelay` to 01:00:00, default 00:00:30.
    #[serde(rename = "UserMaxDelay")]
    pub user_max_delay: TimeSpan,
    /// `Window`: a record with no failure for this long is forgotten, 00:00:01 to
    /// 1.00:00:00, default 00:15:00.
    #[serde(rename = "Window")]
    pub window: TimeSpan,
    /// `Capacity`: most records per table (addresses, users), 1 to 1000000, default 10000.
    #[serde(rename = "Capacity")]
    pub capacity: u32,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            enabled: true,
            address_free_failures: 5,
            user_free_failures: 20,
            base_delay: TimeSpan::from_secs(1),
            address_max_delay: TimeSpan::from_secs(900),
            user_max_delay: TimeSpan::from_secs(30),
            window: TimeSpan::from_secs(900),
            capacity: 10_000,
        }
    }
}

impl ThrottleConfig {
    /// Checks the values; keys are named `LoginThrottle.<Key>`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let key = |k: &str| format!("LoginThrottle.{k}");
        check_u32(
            &key("AddressFreeFailures"),
            self.address_free_failures,
            (1, 1_000),
        )?;
        check_u32(
            &key("UserFreeFailures"),
            self.user_free_failures,
            (self.address_free_failures, 10_000),
        )?;
        let tenth = TimeSpan::from_duration(Duration::from_millis(100));
        check_span(
            &key("BaseDelay"),
            self.base_delay,
            (tenth, TimeSpan::from_secs(600)),
        )?;
        check_span(
            &key("AddressMaxDelay"),
            self.address_max_delay,
            (self.base_delay, TimeSpan::from_secs(86_400)),
        )?;
        check_span(
            &key("UserMaxDelay"),
            self.user_max_delay,
            (self.base_delay, TimeSpan::from_secs(3_600)),
        )?;
        check_span(
            &key("Window"),
            self.window,
            (TimeSpan::from_secs(1), TimeSpan::from_secs(86_400)),
        )?;
        check_u32(&key("Capacity"), self.capacity, (1, 1_000_000))?;
        Ok(())
    }

    /// The delay after `failures` failures with `free` free ones and cap `cap`.
    pub fn delay_after(&self, failures: u32, free: u32, cap: TimeSpan) -> Duration {
        if failures <= free {
            return Duration::ZERO;
        }
        // Exact in u128 nanoseconds: a shift that would drop bits is past any cap.
        let doublings = (failures - free - 1).min(64);
        let base = self.base_delay.as_duration().as_nanos();
        let cap = cap.as_duration();
        if doublings >= base.leading_zeros() {
            return cap;
        }
        let delay = base << doublings;
        if delay >= cap.as_nanos() {
            cap
        } else {
            // Below the cap, which is a Duration, so it fits.
            Duration::from_nanos(u64::try_from(delay).unwrap_or(u64::MAX))
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last_failure: Duration,
    blocked_until: Duration,
    seq: u64,
}

/// Failure records with an age index so the oldest can be evicted in O(log n).
#[derive(Debug, Clone)]
struct Table<K> {
    records: HashMap<K, Record>,
    by_age: BTreeMap<(Duration, u64), K>,
    next_seq: u64,
}

impl<K: Eq + Hash + Clone> Table<K> {
    fn new() -> Self {
        Table {
            records: HashMap::new(),
            by_age: BTreeMap::new(),
            next_seq: 0,
        }
    }

    /// The live record of `key`, if it has not expired at `now`.
    fn live(&self, key: &K, now: Duration, window: Duration) -> Option<&Record> {
        self.records
            .get(key)
            .filter(|r| now.saturating_sub(r.last_failure) < window)
    }

    fn remove(&mut self, key: &K) {
        if let Some(r) = self.records.remove(key) {
            self.by_age.remove(&(r.last_failure, r.seq));
        }
    }

    /// Drops expired records from the old end, then the oldest while over `capacity`.
    fn prune(&mut self, now: Duration, window: Duration, capacity: usize) {
        while let Some((&(last, seq), key)) = self.by_age.first_key_value() {
            let expired = now.saturating_sub(last) >= window;
            if !expired && self.records.len() < capacity {
                break;
            }
            let key = key.clone();
            self.by_age.remove(&(last, seq));
            self.records.remove(&key);
        }
    }

    /// Records one failure of `key` and returns its failure count before it.
    fn fail(
        &mut self,
        key: K,
        now: Duration,
        window: Duration,
        capacity: usize,
        delay: impl Fn(u32) -> Duration,
    ) -> u32 {
        let before = self.live(&key, now, window).map_or(0, |r| r.failures);
        let blocked_before = self
            .live(&key, now, window)
            .map_or(Duration::ZERO, |r| r.blocked_until);
        self.remove(&key);
        self.prune(now, window, capacity);
        let failures = before.saturating_add(1);
        let seq = self.next_seq;
        self.next_seq += 1;
        // A failure never shortens a delay already in force.
        let blocked_until = blocked_before.max(now.saturating_add(delay(failures)));
        self.records.insert(
            key.clone(),
            Record {
                failures,
                last_failure: now,
                blocked_until,
                seq,
            },
        );
        self.by_age.insert((now, seq), key);
        before
    }

    fn len(&self) -> usize {
        self.records.len()
    }
}

/// The login-failure throttle (see the [module docs](self) for the design).
///
/// `now` is a monotonic time since any origin the caller picks (e.g. the server's
/// start), passed in because this crate reads no clock. Time going backwards is
/// treated as no time passing.
#[derive(Debug, Clone)]
pub struct LoginThrottle {
    config: ThrottleConfig,
    addresses: Table<IpAddr>,
    users: Table<String>,
}

fn user_key(user: &str) -> String {
    let mut end = user.len().min(MAX_USER_NAME_LEN);
    while !user.is_char_boundary(end) {
        end -= 1;
    }
    user[..end].to_ascii_lowercase()
}

impl LoginThrottle {
    /// A throttle with `config` (validate it first; [`PolicyConfig`](crate::PolicyConfig)
    /// does).
    pub fn new(config: ThrottleConfig) -> Self {
        LoginThrottle {
            config,
            addresses: Table::new(),
            users: Table::new(),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    /// Replaces the settings (on a policy reload); existing records are kept and
    /// trimmed to the new capacity at the next failure.
    pub fn set_config(&mut self, config: ThrottleConfig) {
        self.config = config;
    }

    /// Whether a login of `user` from `client_addr` may be attempted at `now`: the
    /// address's delay first, then the user's.
    pub fn check(&self, user: &str, client_addr: IpAddr, now: Duration) -> Decision {
        if !self.config.enabled {
            return Decision::Allow;
        }
        let window = self.config.window.as_duration();
        let addr = self.addresses.live(&client_key(client_addr), now, window);
        let user = self.users.live(&user_key(user), now, window);
        for record in [addr, user].into_iter().flatten() {
            if record.blocked_until > now {
                return Decision::Deny(Denial::new(DenialReason::LoginDelay {
                    retry_after: record.blocked_until - now,
                }));
            }
        }
        Decision::Allow
    }

    /// Whether `client_addr` alone is delayed at `now` (before a user name is known,
    /// e.g. to refuse `AUTH` early).
    pub fn check_address(&self, client_addr: IpAddr, now: Duration) -> Decision {
        if !self.config.enabled {
            return Decision::Allow;
        }
        let window = self.config.window.as_duration();
        match self.addresses.live(&client_key(client_addr), now, window) {
            Some(r) if r.blocked_until > now => {
                Decision::Deny(Denial::new(DenialReason::LoginDelay {
                    retry_after: r.blocked_until - now,
                }))
            }
            _ => Decision::Allow,
        }
    }

    /// Records a failed login of `user` from `client_addr`.
    pub fn record_failure(&mut self, user: &str, client_addr: IpAddr, now: Duration) {
        if !self.config.enabled {
            return;
        }
        let c = self.config.clone();
        let window = c.window.as_duration();
        let capacity = c.capacity as usize;
        let before = self
            .addresses
            .fail(client_key(client_addr), now, window, capacity, |n| {
                c.delay_after(n, c.address_free_failures, c.address_max_delay)
            });
        // Only failures while the address is within its free ones count against the
        // user: one address can never push a user past UserFreeFailures.
        if before < c.address_free_failures {
            self.users.fail(user_key(user), now, window, capacity, |n| {
                c.delay_after(n, c.user_free_failures, c.user_max_delay)
            });
        }
    }

    /// Records a successful login: the user's record is cleared. The address's record
    /// stays (see the module docs).
    pub fn record_success(&mut self, user: &str, _client_addr: IpAddr, _now: Duration) {
        self.users.remove(&user_key(user));
    }

    /// Recent failures recorded for `client_addr` at `now`.
    pub fn address_failures(&self, client_addr: IpAddr, now: Duration) -> u32 {
        self.addresses
            .live(
                &client_key(client_addr),
                now,
                self.config.window.as_duration(),
            )
            .map_or(0, |r| r.failures)
    }

    /// Recent failures counted against `user` at `now`.
    pub fn user_failures(&self, user: &str, now: Duration) -> u32 {
        self.users
            .live(&user_key(user), now, self.config.window.as_duration())
            .map_or(0, |r| r.failures)
    }

    /// Records held: `(addresses, users)`; never above `Capacity` each.
    pub fn len(&self) -> (usize, usize) {
        (self.addresses.len(), self.users.len())
    }

    /// True when no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn backoff_doubles_and_caps() {
        let c = ThrottleConfig::default();
        c.validate().unwrap();
        let cap = c.address_max_delay;
        assert_eq!(c.delay_after(5, 5, cap), Duration::ZERO);
        assert_eq!(c.delay_after(6, 5, cap), S(1));
        assert_eq!(c.delay_after(7, 5, cap), S(2));
        assert_eq!(c.delay_after(10, 5, cap), S(16));
        assert_eq!(c.delay_after(20, 5, cap), S(900));
        assert_eq!(c.delay_after(u32::MAX, 5, cap), S(900));
    }

    #[test]
    fn address_is_delayed_and_user_is_not_from_one_address() {
        let mut t = LoginThrottle::new(ThrottleConfig::default());
        let attacker = ip("203.0.113.9");
        let owner = ip("198.51.100.7");
        let mut now = S(0);
        for _ in 0..200 {
            if t.check("alice", attacker, now).is_allowed() {
                t.record_failure("alice", attacker, now);
            }
            now += S(1);
        }
        assert!(!t.check("alice", attacker, now).is_allowed());
        assert!(
            t.check("alice", owner, now).is_allowed(),
            "the owner still gets in"
        );
        assert!(t.user_failures("alice", now) <= 5);
    }

    #[test]
    fn many_addresses_delay_the_user_briefly() {
        let mut t = LoginThrottle::new(ThrottleConfig::default());
        for i in 0..30u8 {
            t.record_failure("bob", IpAddr::from([192, 0, 2, i]), S(10));
        }
        let d = t.check("bob", ip("198.51.100.1"), S(10));
        match d.denial().map(|d| &d.reason) {
            Some(DenialReason::LoginDelay { retry_after }) => assert!(*retry_after <= S(30)),
            other => panic!("{other:?}"),
        }
        assert!(t.check("bob", ip("198.51.100.1"), S(41)).is_allowed());
        t.record_success("bob", ip("198.51.100.1"), S(41));
        assert_eq!(t.user_failures("bob", S(41)), 0);
    }

    #[test]
    fn window_forgets_and_capacity_bounds() {
        let mut t = LoginThrottle::new(ThrottleConfig {
            capacity: 3,
            ..ThrottleConfig::default()
        });
        for i in 0..10u8 {
            t.record_failure(
                &format!("u{i}"),
                IpAddr::from([10, 0, 0, i]),
                S(u64::from(i)),
            );
            assert!(t.len().0 <= 3 && t.len().1 <= 3);
        }
        let a = ip("10.9.9.9");
        for _ in 0..8 {
            t.record_failure("x", a, S(100));
        }
        assert!(!t.check_address(a, S(100)).is_allowed());
        assert_eq!(
            t.address_failures(a, S(100 + 900)),
            0,
            "forgotten after the window"
        );
        assert!(t.check("x", a, S(100 + 900)).is_allowed());
    }

    #[test]
    fn ipv6_counts_per_64() {
        let mut t = LoginThrottle::new(ThrottleConfig::default());
        for i in 0..10u16 {
            t.record_failure("u", IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, i]), S(0));
        }
        assert!(!t.check_address(ip("2001:db8:0:1::ffff"), S(0)).is_allowed());
        assert!(t.check_address(ip("2001:db8:0:2::1"), S(0)).is_allowed());
    }

    #[test]
    fn validation_names_keys() {
        let c = ThrottleConfig {
            user_free_failures: 2,
            ..ThrottleConfig::default()
        };
        let e = c.validate().unwrap_err();
        assert_eq!(e.key(), Some("LoginThrottle.UserFreeFailures"));
        assert!(e.to_string().contains("5..=10000"), "{e}");
    }
}
