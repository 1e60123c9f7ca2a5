//! The IMAP server session (sans-IO): [`ServerSession`] and its selected-mailbox view
//! ([`view::MailboxView`]).
//!
//! The session owns the *mechanics* of an IMAP4rev1/IMAP4rev2 connection: greeting and
//! capabilities, states (not authenticated / authenticated / selected / logout), framing
//! with literal checks before `+`, LITERAL+/LITERAL-, syntax and state errors, STARTTLS
//! (pipelined input discarded), the SASL exchange of AUTHENTICATE (SASL-IR, `*` cancels),
//! ENABLE, IDLE, COMPRESS signalling, the message sequence number ↔ UID map and the rules
//! for untagged EXISTS/EXPUNGE/VANISHED/FETCH, timers and limits. The application owns the
//! *meaning*: credentials, mailboxes, messages. It learns of work through [`Event`]s and
//! answers by [`CommandId`]; it never sees or writes a tag.
//!
//! # Call order
//!
//! | kind | methods |
//! |---|---|
//! | inputs | [`ServerSession::handle_input`], [`ServerSession::handle_eof`], [`ServerSession::handle_timeout`], [`ServerSession::handle_tls_established`] |
//! | answers | [`ServerSession::send`], [`ServerSession::send_fetch`], [`ServerSession::send_fetch_body`], [`ServerSession::send_untagged_status`], [`ServerSession::stored`], [`ServerSession::expunged`], [`ServerSession::select`], [`ServerSession::finish`], [`ServerSession::send_sasl_challenge`], [`ServerSession::finish_authentication`], [`ServerSession::mailbox_changed`], [`ServerSession::close`] |
//! | outputs | [`ServerSession::poll_event`], [`ServerSession::poll_transmit`], [`ServerSession::poll_timeout`] |
//! | getters | [`ServerSession::state`], [`ServerSession::wants_input`], [`ServerSession::is_closed`], [`ServerSession::selected`], ... |
//!
//! After every input or answer, drain `poll_event` (answering events may happen right
//! away), then `poll_transmit` until it returns 0, then re-arm the timer from
//! `poll_timeout`. Read input only while [`ServerSession::wants_input`].
//!
//! Commands are processed one at a time: while one waits for the application, further input
//! stays buffered (bounded by [`Limits::max_pipelined_input`]) and is processed when the
//! answer is finished. One command is in flight at a time, so every answer is correlated
//! with the one pending [`CommandId`].
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use cas_imap_proto::server::{
//!     Event, LoginOutcome, ServerConfig, ServerSession, SessionOptions, State,
//! };
//!
//! let config = Arc::new(ServerConfig::default());
//! let now = Instant::now(); // the driver's clock; the session never reads one
//! let options = SessionOptions { tls_active: true, ..SessionOptions::default() };
//! let mut session = ServerSession::new(config, now, options);
//! let mut wire = Vec::new();
//! while session.poll_transmit(&mut wire) > 0 {}
//! assert!(wire.starts_with(b"* OK [CAPABILITY IMAP4rev1 IMAP4rev2"));
//!
//! session.handle_input(now, b"a1 LOGIN alice secret\r\n");
//! let Some(Event::LoginRequested { id, username, password }) = session.poll_event() else {
//!     panic!()
//! };
//! assert_eq!((username.as_str(), password.expose().as_slice()), ("alice", &b"secret"[..]));
//! session.finish_authentication(id, LoginOutcome::accepted("alice")).unwrap();
//! assert_eq!(session.state(), State::Authenticated);
//!
//! wire.clear();
//! while session.poll_transmit(&mut wire) > 0 {}
//! assert!(wire.starts_with(b"a1 OK [CAPABILITY IMAP4rev1"));
//! ```
//!
//! # Deviations from imap-next
//!
//! imap-next's server hands every command out as it parses it and lets the application
//! pipeline; here the session keeps the command serial (as Dovecot does for all but a few
//! commands) so that it can own the selected-mailbox rules, which depend on which command
//! is in progress.

mod config;
mod event;
#[doc(hidden)]
pub mod fuzzing;
mod session;
pub mod view;

pub use config::{
    ConfigError, DEFAULT_MAX_SASL_LINE, Limits, SaslMechanism, ServerConfig, SessionOptions,
};
pub use event::{
    AppendPayload, BodyItem, CloseReason, CommandId, Event, LoginOutcome, SendError, SendErrorKind,
    State,
};
pub use session::{MAX_TRACE_LINE, ServerSession};
pub use view::{Change, MailboxView, MessageInfo, SelectedMailbox};
