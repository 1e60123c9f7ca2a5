//! Concurrent connection accounting: total, per client address and per user.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::mailbox::MAX_USER_NAME_LEN;
use crate::{Denial, DenialReason, ImapSettings, MAX_CONNECTION_LIMIT, PopSettings, client_key};

/// The three limits of one protocol (`MaxConnections`, `MaxConnectionFromSingleIP`,
/// `MaxConnectionsPerUser`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most connections in total.
    pub max_connections: u32,
    /// Most connections from one client address ([`client_key`]).
    pub max_connection_from_single_ip: u32,
    /// Most connections bound to one user.
    pub max_connections_per_user: u32,
}

impl ConnectionLimits {
    /// No limit at all (every count at [`MAX_CONNECTION_LIMIT`]), for protocols
    /// without connection settings.
    pub const UNLIMITED: ConnectionLimits = ConnectionLimits {
        max_connections: MAX_CONNECTION_LIMIT,
        max_connection_from_single_ip: MAX_CONNECTION_LIMIT,
        max_connections_per_user: MAX_CONNECTION_LIMIT,
    };

    /// The POP3 limits of `settings`.
    pub fn pop(settings: &PopSettings) -> Self {
        ConnectionLimits {
            max_connections: settings.max_connections,
            max_connection_from_single_ip: settings.max_connection_from_single_ip,
            max_connections_per_user: settings.max_connections_per_user,
        }
    }

    /// The IMAP4 limits of `settings`.
    pub fn imap(settings: &ImapSettings) -> Self {
        ConnectionLimits {
            max_connections: settings.max_connections,
            max_connection_from_single_ip: settings.max_connection_from_single_ip,
            max_connections_per_user: settings.max_connections_per_user,
        }
    }
}

/// Proof of one admitted connection; give it back with
/// [`ConnectionTracker::release`] when the connection ends, however it ends.
///
/// A ticket is a plain id (`Copy`): releasing it twice, or releasing a ticket of a
/// connection already released, does nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionTicket(u64);

#[derive(Debug, Clone)]
struct Connection {
    address: IpAddr,
    user: Option<String>,
}

/// Counts live connections of one protocol against its [`ConnectionLimits`].
///
/// Call order per connection: [`try_admit`](Self::try_admit) on accept,
/// [`bind_user`](Self::bind_user) after a successful login,
/// [`release`](Self::release) when the connection closes. The server must release on
/// every exit path (a drop guard around the ticket does it); the tracker holds only
/// live connections, so its memory is bounded by `MaxConnections`.
///
/// Counts never go negative: they are derived from the set of live tickets, and a
/// ticket that is not live changes nothing.
#[derive(Debug, Clone)]
pub struct ConnectionTracker {
    limits: ConnectionLimits,
    next_id: u64,
    live: HashMap<u64, Connection>,
    per_address: HashMap<IpAddr, u32>,
    per_user: HashMap<String, u32>,
}

fn user_key(user: &str) -> String {
    let mut end = user.len().min(MAX_USER_NAME_LEN);
    while !user.is_char_boundary(end) {
        end -= 1;
    }
    user[..end].to_ascii_lowercase()
}

fn decrement<K: std::hash::Hash + Eq>(map: &mut HashMap<K, u32>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl ConnectionTracker {
    /// An empty tracker.
    pub fn new(limits: ConnectionLimits) -> Self {
        ConnectionTracker {
            limits,
            next_id: 0,
            live: HashMap::new(),
            per_address: HashMap::new(),
            per_user: HashMap::new(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> ConnectionLimits {
        self.limits
    }

    /// New limits (on a policy reload). Live connections stay; new admissions and
    /// bindings are checked against the new limits.
    pub fn set_limits(&mut self, limits: ConnectionLimits) {
        self.limits = limits;
    }

    /// Admits a new connection from `client_addr`, or refuses it with
    /// [`DenialReason::TooManyConnections`] / [`DenialReason::TooManyConnectionsFromAddress`].
    pub fn try_admit(&mut self, client_addr: IpAddr) -> Result<ConnectionTicket, Denial> {
        let address = client_key(client_addr);
        if self.live.len() >= self.limits.max_connections as usize {
            return Err(Denial::new(DenialReason::TooManyConnections));
        }
        let from_address = self.per_address.get(&address).copied().unwrap_or(0);
        if from_address >= self.limits.max_connection_from_single_ip {
            return Err(Denial::new(DenialReason::TooManyConnectionsFromAddress));
        }
        let id = self.next_id;
        self.next_id += 1;
        self.live.insert(
            id,
            Connection {
                address,
                user: None,
            },
        );
        *self.per_address.entry(address).or_insert(0) += 1;
        Ok(ConnectionTicket(id))
    }

    /// Counts the connection against `user` after a successful login, or refuses with
    /// [`DenialReason::TooManyConnectionsForUser`] (the connection stays admitted and
    /// unbound; the server closes it and releases the ticket).
    ///
    /// Binding again to the same user (case-insensitive) does nothing; binding to
    /// another user moves the count. A ticket that is not live is ignored.
    pub fn bind_user(&mut self, ticket: ConnectionTicket, user: &str) -> Result<(), Denial> {
        let key = user_key(user);
        let Some(conn) = self.live.get(&ticket.0) else {
            return Ok(());
        };
        if conn.user.as_deref() == Some(key.as_str()) {
            return Ok(());
        }
        let count = self.per_user.get(&key).copied().unwrap_or(0);
        if count >= self.limits.max_connections_per_user {
            return Err(Denial::new(DenialReason::TooManyConnectionsForUser));
        }
        let previous = self
            .live
            .get_mut(&ticket.0)
            .and_then(|c| c.user.replace(key.clone()));
        if let Some(previous) = previous {
            decrement(&mut self.per_user, &previous);
        }
        *self.per_user.entry(key).or_insert(0) += 1;
        Ok(())
    }

    /// Ends a connection. Returns false (and changes nothing) when the ticket is not
    /// live: already released, or never issued by this tracker.
    pub fn release(&mut self, ticket: ConnectionTicket) -> bool {
        let Some(conn) = self.live.remove(&ticket.0) else {
            return false;
        };
        decrement(&mut self.per_address, &conn.address);
        if let Some(user) = &conn.user {
            decrement(&mut self.per_user, user);
        }
        true
    }

    /// Live connections.
    pub fn total(&self) -> usize {
        self.live.len()
    }

    /// Live connections from `client_addr`'s [`client_key`].
    pub fn from_address(&self, client_addr: IpAddr) -> u32 {
        self.per_address
            .get(&client_key(client_addr))
            .copied()
            .unwrap_or(0)
    }

    /// Live connections bound to `user`.
    pub fn of_user(&self, user: &str) -> u32 {
        self.per_user.get(&user_key(user)).copied().unwrap_or(0)
    }

    /// The user a live ticket is bound to (lower-cased), if any.
    pub fn user_of(&self, ticket: ConnectionTicket) -> Option<&str> {
        self.live.get(&ticket.0).and_then(|c| c.user.as_deref())
    }

    /// Whether the ticket is live.
    pub fn is_live(&self, ticket: ConnectionTicket) -> bool {
        self.live.contains_key(&ticket.0)
    }

    /// Sizes of the internal maps `(connections, addresses, users)`, for leak checks.
    pub fn footprint(&self) -> (usize, usize, usize) {
        (self.live.len(), self.per_address.len(), self.per_user.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: u32, ip: u32, user: u32) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: total,
            max_connection_from_single_ip: ip,
            max_connections_per_user: user,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_address_limit_and_release() {
        let mut t = ConnectionTracker::new(limits(100, 2, 10));
        let a = t.try_admit(ip("127.0.0.1")).unwrap();
        let _b = t.try_admit(ip("::ffff:127.0.0.1")).unwrap();
        let e = t.try_admit(ip("127.0.0.1")).unwrap_err();
        assert_eq!(e.reason, DenialReason::TooManyConnectionsFromAddress);
        assert!(t.try_admit(ip("127.0.0.2")).is_ok());
        assert!(t.release(a));
        assert!(!t.release(a), "second release is a no-op");
        assert!(t.try_admit(ip("127.0.0.1")).is_ok());
        assert_eq!(t.from_address(ip("127.0.0.1")), 2);
    }

    #[test]
    fn total_limit() {
        let mut t = ConnectionTracker::new(limits(2, 10, 10));
        t.try_admit(ip("10.0.0.1")).unwrap();
        t.try_admit(ip("10.0.0.2")).unwrap();
        assert_eq!(
            t.try_admit(ip("10.0.0.3")).unwrap_err().reason,
            DenialReason::TooManyConnections
        );
    }

    #[test]
    fn per_user_after_login() {
        let mut t = ConnectionTracker::new(limits(100, 100, 2));
        let tickets: Vec<_> = (0..3)
            .map(|_| t.try_admit(ip("10.0.0.1")).unwrap())
            .collect();
        t.bind_user(tickets[0], "Alice").unwrap();
        t.bind_user(tickets[0], "alice").unwrap();
        t.bind_user(tickets[1], "alice").unwrap();
        assert_eq!(t.of_user("ALICE"), 2);
        let e = t.bind_user(tickets[2], "alice").unwrap_err();
        assert_eq!(e.reason, DenialReason::TooManyConnectionsForUser);
        t.release(tickets[0]);
        t.bind_user(tickets[2], "alice").unwrap();
        t.bind_user(tickets[2], "bob").unwrap();
        assert_eq!((t.of_user("alice"), t.of_user("bob")), (1, 1));
        for tk in tickets {
            t.release(tk);
        }
        assert_eq!(t.footprint(), (0, 0, 0));
        t.bind_user(ConnectionTicket(999), "alice").unwrap();
        assert_eq!(t.footprint(), (0, 0, 0), "stale tickets change nothing");
    }
}
