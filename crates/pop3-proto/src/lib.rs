//! Sans-IO POP3: the wire format, a server session and a client session.
//!
//! # What this crate is
//!
//! - [`command`], [`response`]: parsers and total encoders for every POP3 command and
//!   response of RFC 1939, RFC 2449 (CAPA, RESP-CODES, PIPELINING, LOGIN-DELAY, EXPIRE,
//!   IMPLEMENTATION, TOP, UIDL, USER, SASL), RFC 2595 (STLS), RFC 5034 (AUTH with initial
//!   response), RFC 3206 (`[SYS/TEMP]`, `[SYS/PERM]`, `[AUTH]`, AUTH-RESP-CODE) and RFC 6856
//!   (UTF8, LANG).
//! - [`framer`]: an incremental line framer (memchr, resumes where it stopped, per-line
//!   limit, overlong lines discarded without buffering).
//! - [`stuffing`]: lazy dot-stuffing with TOP's body-line cutoff, un-stuffing, CRLF-counted
//!   sizes ([`stuffing::crlf_size`], [`stuffing::CrlfSizeCounter`]).
//! - [`ServerSession`]: the mechanics of a POP3 server connection — greeting, framing,
//!   syntax and state errors, STLS, SASL exchange framing, CAPA, STAT/LIST/UIDL/DELE/RSET/NOOP
//!   over the maildrop listing the application hands over at login, RETR/TOP streaming,
//!   timers and limits.
//!
//! # What it is not
//!
//! It does no I/O, reads no clock, spawns nothing and holds no global state: time comes in as
//! `now: Instant`, bytes come in through `handle_input` and go out through `poll_transmit`.
//! It does not check passwords, run SASL mechanisms, compute APOP digests, read mailboxes or
//! perform TLS: the application does, answering [`Request`]s with [`Reply`]s.
//!
//! # Call order
//!
//! Inputs: [`ServerSession::handle_input`], [`ServerSession::handle_eof`],
//! [`ServerSession::handle_timeout`], [`ServerSession::handle_tls_established`]. Commands:
//! [`ServerSession::send`], [`ServerSession::close`]. After every input or command, drain in
//! this order:
//!
//! 1. [`ServerSession::poll_event`] until `None` (answer requests with `send`);
//! 2. [`ServerSession::poll_transmit`] until it returns 0, writing each chunk to the socket —
//!    after a write, go back to step 1: draining output may let the session resume commands
//!    the client pipelined;
//! 3. [`ServerSession::poll_timeout`] to arm the timer.
//!
//! Read from the socket only while [`ServerSession::wants_input`]; stream message data only
//! while [`ServerSession::wants_message_data`]; close the socket once
//! [`ServerSession::is_closed`]. On [`Event::TlsRequested`], finish writing, run the TLS
//! handshake, then call `handle_tls_established`.
//!
//! # Limits
//!
//! All limits live in [`Limits`] (inside the `Arc`-shared [`ServerConfig`]) with documented
//! defaults: command line 255 octets (RFC 2449), SASL line 8192, pipelined input 16 KiB,
//! queued output high-water 64 KiB, transmit chunk 16 KiB, 10 bad commands, 3 failed logins,
//! 60 s before login and 30 min after. A message body is never held twice: the application's
//! chunks are stuffed as `poll_transmit` drains them.
//!
//! # Policy decisions
//!
//! - A clear-text login (USER/PASS, or a SASL mechanism flagged `clear_text`) before TLS, when
//!   [`ServerConfig::allow_clear_text_without_tls`] is false, is answered `-ERR [AUTH] TLS is
//!   required ...`. It counts as a bad command, not as an authentication failure (no
//!   credentials were checked).
//! - Bad commands are counted in total per session, not consecutively.
//! - `LoginRejected` with `IN-USE`, `LOGIN-DELAY` or `SYS/*` does not count as an
//!   authentication failure.
//! - Inactivity timers are re-armed, not fired, while a request waits for the application or
//!   a large reply is being read (a long RETR is not idleness). A client that leaves output
//!   unread for a whole timeout has stopped reading: the session closes without a reply and
//!   drops the queued output.
//! - Deviation from quinn: `close` takes the reason text directly instead of an error code.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use pop3_proto::{
//!     Bytes, Event, MaildropEntry, Reply, Request, ServerConfig, ServerSession,
//!     SessionOptions, Uid,
//! };
//!
//! let config = Arc::new(ServerConfig {
//!     allow_clear_text_without_tls: true,
//!     ..ServerConfig::default()
//! });
//! let now = Instant::now();
//! let mut s = ServerSession::new(config, now, SessionOptions::default());
//!
//! s.handle_input(now, b"USER alice\r\nPASS open sesame\r\n");
//! let Some(Event::CommandReceived { id, command: Request::Login { user, password } }) =
//!     s.poll_event() else { panic!("expected a login") };
//! assert_eq!((user.as_str(), password.expose().as_slice()), ("alice", &b"open sesame"[..]));
//! let message = b"Subject: hi\r\n\r\n.hi\r\n";
//! let entry = MaildropEntry {
//!     size: pop3_proto::stuffing::crlf_size(message),
//!     uid: Uid::new("msg-1").unwrap(),
//! };
//! s.send(id, Reply::LoginAccepted { maildrop: vec![entry] }).unwrap();
//!
//! s.handle_input(now, b"STAT\r\nRETR 1\r\nQUIT\r\n");
//! let Some(Event::CommandReceived { id, command: Request::Retrieve { message: 1, .. } }) =
//!     s.poll_event() else { panic!("expected RETR") };
//! s.send(id, Reply::MessageData { chunk: Bytes::from_static(message), last: true }).unwrap();
//! let Some(Event::CommandReceived { id, command: Request::Commit { deleted } }) =
//!     s.poll_event() else { panic!("expected the commit") };
//! assert!(deleted.is_empty());
//! s.send(id, Reply::CommitSucceeded).unwrap();
//! assert!(matches!(s.poll_event(), Some(Event::Closed { .. })));
//!
//! let mut out = Vec::new();
//! while s.poll_transmit(&mut out) > 0 {}
//! assert_eq!(
//!     String::from_utf8(out).unwrap(),
//!     "+OK cas-rs POP3 server ready\r\n\
//!      +OK Send PASS\r\n\
//!      +OK alice's maildrop has 1 messages (20 octets)\r\n\
//!      +OK 1 20\r\n\
//!      +OK 20 octets\r\n\
//!      Subject: hi\r\n\r\n..hi\r\n.\r\n\
//!      +OK POP3 server signing off (1 messages left)\r\n"
//! );
//! assert!(s.is_closed());
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;
pub mod command;
pub mod error;
pub mod framer;
#[doc(hidden)]
pub mod fuzzing;
pub mod response;
pub mod server;
pub mod stuffing;

pub use bytes::Bytes;
pub use client::{ClientConfig, ClientEvent, ClientLimits, ClientOptions, ClientSession};
pub use command::{Command, SaslResponse};
pub use error::{
    CloseReason, ConfigError, InvalidUid, ParseError, ParseErrorKind, ProtocolError, SendError,
    SendErrorKind,
};
pub use response::{Capability, Expire, Response, ResponseCode, Status, StatusLine, Uid};
pub use server::{
    CommandId, Event, Limits, MAX_TRACE_LINE, MaildropEntry, Reply, Request, SaslMechanism, Secret,
    ServerConfig, ServerSession, SessionOptions, State,
};
