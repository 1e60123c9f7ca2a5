//! Pairing IN and OUT channels by virtual connection cookie (MS-RPCH §3.2.3.1 / §3.2.5.1, the
//! "virtual connection cookie table"). The channels arrive on separate TCP connections, in
//! either order; a merged server registers each as its first RTS PDU names the cookie.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::rts::Cookie;

/// Why a registration was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TableError {
    /// The virtual connection already has a channel of that direction (a replay, or a client
    /// reusing a cookie): recycling goes through [`VirtualConnectionTable::replace_in`] /
    /// [`VirtualConnectionTable::replace_out`].
    #[error("virtual connection already has that channel")]
    Duplicate,
    /// The table holds [`VirtualConnectionTable::capacity`] virtual connections.
    #[error("virtual connection table full")]
    Full,
    /// No virtual connection with that cookie (replacement of an unknown channel).
    #[error("unknown virtual connection")]
    Unknown,
}

/// The state of a virtual connection after a registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pairing<H> {
    /// Only one channel has arrived; wait for the other.
    Waiting,
    /// Both channels are here: the handles of the IN and OUT channel.
    Paired {
        /// The IN channel's handle.
        in_channel: H,
        /// The OUT channel's handle.
        out_channel: H,
    },
}

#[derive(Debug)]
struct Entry<H> {
    in_channel: Option<H>,
    out_channel: Option<H>,
    since: Instant,
}

/// Virtual connections by cookie, each with the caller's handle (a connection id, a channel
/// sender, ...) for its IN and OUT channel. Sans-IO: time is passed in for expiry.
#[derive(Debug)]
pub struct VirtualConnectionTable<H> {
    entries: HashMap<[u8; 16], Entry<H>>,
    capacity: usize,
}

impl<H: Clone + PartialEq> VirtualConnectionTable<H> {
    /// A table for at most `capacity` virtual connections.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            capacity,
        }
    }

    /// Maximum number of virtual connections.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of virtual connections held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn register(
        &mut self,
        now: Instant,
        cookie: Cookie,
        handle: H,
        is_in: bool,
    ) -> Result<Pairing<H>, TableError> {
        if !self.entries.contains_key(&cookie.0) && self.entries.len() >= self.capacity {
            return Err(TableError::Full);
        }
        let entry = self.entries.entry(cookie.0).or_insert(Entry {
            in_channel: None,
            out_channel: None,
            since: now,
        });
        let slot = if is_in {
            &mut entry.in_channel
        } else {
            &mut entry.out_channel
        };
        if slot.is_some() {
            return Err(TableError::Duplicate);
        }
        *slot = Some(handle);
        Ok(Self::pairing(entry))
    }

    fn pairing(entry: &Entry<H>) -> Pairing<H> {
        match (&entry.in_channel, &entry.out_channel) {
            (Some(i), Some(o)) => Pairing::Paired {
                in_channel: i.clone(),
                out_channel: o.clone(),
            },
            _ => Pairing::Waiting,
        }
    }

    /// Registers the IN channel (CONN/B1 arrived).
    pub fn attach_in(
        &mut self,
        now: Instant,
        cookie: Cookie,
        handle: H,
    ) -> Result<Pairing<H>, TableError> {
        self.register(now, cookie, handle, true)
    }

    /// Registers the OUT channel (CONN/A1 arrived).
    pub fn attach_out(
        &mut self,
        now: Instant,
        cookie: Cookie,
        handle: H,
    ) -> Result<Pairing<H>, TableError> {
        self.register(now, cookie, handle, false)
    }

    /// Replaces the IN channel of an existing virtual connection (IN channel recycling);
    /// returns the predecessor's handle.
    pub fn replace_in(&mut self, cookie: Cookie, handle: H) -> Result<Option<H>, TableError> {
        let entry = self.entries.get_mut(&cookie.0).ok_or(TableError::Unknown)?;
        Ok(entry.in_channel.replace(handle))
    }

    /// Replaces the OUT channel of an existing virtual connection (OUT channel recycling);
    /// returns the predecessor's handle.
    pub fn replace_out(&mut self, cookie: Cookie, handle: H) -> Result<Option<H>, TableError> {
        let entry = self.entries.get_mut(&cookie.0).ok_or(TableError::Unknown)?;
        Ok(entry.out_channel.replace(handle))
    }

    /// The handles registered for a virtual connection: `(in, out)`.
    pub fn get(&self, cookie: &Cookie) -> Option<(Option<&H>, Option<&H>)> {
        self.entries
            .get(&cookie.0)
            .map(|e| (e.in_channel.as_ref(), e.out_channel.as_ref()))
    }

    /// The IN channel of a virtual connection.
    pub fn in_channel(&self, cookie: &Cookie) -> Option<&H> {
        self.entries.get(&cookie.0)?.in_channel.as_ref()
    }

    /// The OUT channel of a virtual connection.
    pub fn out_channel(&self, cookie: &Cookie) -> Option<&H> {
        self.entries.get(&cookie.0)?.out_channel.as_ref()
    }

    /// Removes `handle` from its virtual connection (its channel closed). The virtual
    /// connection goes when neither channel is left. A handle that was already replaced by a
    /// successor is ignored, so a predecessor closing never unregisters its successor.
    pub fn detach(&mut self, cookie: &Cookie, handle: &H) {
        if let Some(entry) = self.entries.get_mut(&cookie.0) {
            if entry.in_channel.as_ref() == Some(handle) {
                entry.in_channel = None;
            }
            if entry.out_channel.as_ref() == Some(handle) {
                entry.out_channel = None;
            }
            if entry.in_channel.is_none() && entry.out_channel.is_none() {
                self.entries.remove(&cookie.0);
            }
        }
    }

    /// Drops virtual connections still waiting for their second channel after `max_wait`, and
    /// returns the handles of the channels they held so the caller can close them.
    pub fn expire(&mut self, now: Instant, max_wait: Duration) -> Vec<H> {
        let mut dropped = Vec::new();
        self.entries.retain(|_, e| {
            let half_open = e.in_channel.is_none() || e.out_channel.is_none();
            let stale = now.saturating_duration_since(e.since) >= max_wait;
            if half_open && stale {
                dropped.extend(e.in_channel.take());
                dropped.extend(e.out_channel.take());
                false
            } else {
                true
            }
        });
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_in_either_order_and_expires_half_open() {
        let t0 = Instant::now();
        let mut t = VirtualConnectionTable::new(2);
        let a = Cookie([1; 16]);
        let b = Cookie([2; 16]);
        assert_eq!(t.attach_out(t0, a, 10), Ok(Pairing::Waiting));
        assert_eq!(
            t.attach_in(t0, a, 11),
            Ok(Pairing::Paired {
                in_channel: 11,
                out_channel: 10
            })
        );
        assert_eq!(t.attach_in(t0, a, 12), Err(TableError::Duplicate));
        assert_eq!(t.attach_in(t0, b, 20), Ok(Pairing::Waiting));
        assert_eq!(t.attach_in(t0, Cookie([3; 16]), 30), Err(TableError::Full));
        assert_eq!(t.replace_in(a, 13), Ok(Some(11)));
        t.detach(&a, &11); // the predecessor closing leaves the successor in place
        assert_eq!(t.in_channel(&a), Some(&13));
        assert_eq!(
            t.expire(t0 + Duration::from_secs(5), Duration::from_secs(10)),
            vec![]
        );
        assert_eq!(
            t.expire(t0 + Duration::from_secs(10), Duration::from_secs(10)),
            vec![20]
        );
        assert_eq!(t.len(), 1);
        t.detach(&a, &13);
        t.detach(&a, &10);
        assert!(t.is_empty());
    }
}
