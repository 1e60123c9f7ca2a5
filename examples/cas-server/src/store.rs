//! The mailbox backend seen by the protocol glue.
//!
//! A [`MailStore`] hands out [`Maildrop`]s: one user's mailbox, opened and locked exclusively
//! for the life of one POP3 session (RFC 1939 §8: the maildrop is locked from a successful
//! login until QUIT or the end of the connection). A maildrop is a snapshot: its message list
//! does not change while it is open, messages are read in bounded chunks through
//! [`MessageReader`], and the only change a session can make is to commit a set of deletions,
//! all or nothing.
//!
//! All methods do blocking file I/O; the async server calls them from
//! `tokio::task::spawn_blocking`.

use std::io::{self, Read};
use std::sync::Arc;

use bytes::Bytes;

/// A source of maildrops, one per user.
pub trait MailStore: Send + Sync + 'static {
    /// Opens `user`'s maildrop and takes its exclusive lock, which is held until the returned
    /// value (and every clone of the `Arc`) is dropped.
    ///
    /// Fails with [`StoreError::InUse`] when another session, in this process or another one,
    /// holds the lock.
    fn open_maildrop(&self, user: &str) -> Result<Arc<dyn Maildrop>, StoreError>;
}

/// What a maildrop says about one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageInfo {
    /// Unique id, stable across sessions and never reused (the POP3 UIDL string).
    pub uid: String,
    /// Size in octets with every line end counted as CRLF (what POP3 LIST reports).
    pub size: u64,
}

/// One user's locked mailbox, as a snapshot taken when it was opened.
pub trait Maildrop: Send + Sync + 'static {
    /// The messages, in the order of their POP3 message numbers (index 0 is message 1).
    fn messages(&self) -> &[MessageInfo];

    /// Opens message `index` (0-based) for reading.
    ///
    /// Fails with [`StoreError::NoSuchMessage`] when the index is out of range or the message
    /// has vanished from the store.
    fn open_message(&self, index: usize) -> Result<MessageReader, StoreError>;

    /// Deletes the messages at `indices` (0-based), atomically: after a crash, either none or
    /// all of them are gone once the maildrop is opened again.
    fn commit_deletions(&self, indices: &[usize]) -> Result<(), StoreError>;
}

/// Errors from a [`MailStore`] or [`Maildrop`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The maildrop is locked by another session.
    #[error("maildrop is in use by another session")]
    InUse,
    /// The user name cannot name a mailbox (empty, a path separator, ...).
    #[error("invalid mailbox name")]
    InvalidName,
    /// The message does not exist (any more).
    #[error("no such message")]
    NoSuchMessage,
    /// An I/O error from the underlying storage.
    #[error("mail storage I/O error: {0}")]
    Io(#[from] io::Error),
}

/// Reads one message's stored bytes in bounded chunks, so that a large message is never held
/// in memory whole.
pub struct MessageReader {
    inner: Box<dyn Read + Send>,
    remaining: u64,
}

impl std::fmt::Debug for MessageReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageReader")
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

impl MessageReader {
    /// Wraps a reader that yields exactly `len` bytes.
    pub fn new(inner: Box<dyn Read + Send>, len: u64) -> Self {
        Self {
            inner,
            remaining: len,
        }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Reads the next chunk of at most `max` bytes. Returns the chunk and whether it is the
    /// last one. A message that ends before its announced length is an error
    /// (`UnexpectedEof`), because the size was already promised to the client.
    pub fn read_chunk(&mut self, max: usize) -> io::Result<(Bytes, bool)> {
        let want = usize::try_from(self.remaining).map_or(max, |r| r.min(max));
        let mut buf = vec![0u8; want];
        self.inner.read_exact(&mut buf)?;
        self.remaining -= want as u64;
        Ok((Bytes::from(buf), self.remaining == 0))
    }
}
