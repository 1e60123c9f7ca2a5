//! Sans-IO IMAP4rev1 (RFC 3501) and IMAP4rev2 (RFC 9051) wire format: incremental framing,
//! zero-copy parsers and total encoders for commands and responses, on both sides of the
//! connection.
//!
//! # What it is, and is not
//!
//! This crate turns bytes into typed IMAP commands and responses and back. It does no I/O,
//! reads no clock, spawns nothing and holds no global state: the caller feeds it bytes and
//! sends the bytes it produces, over whatever transport it likes. It knows the grammar, not
//! the meaning: which mailbox exists, whether a password is right, or which state allows which
//! command belong to the application (and to a session layer built on top). TLS, `COMPRESS
//! DEFLATE` and SASL mechanisms (see the `cas-auth` crate) happen outside; the fragmentizer
//! only hands back the bytes that follow the switch ([`fragmentizer::Fragmentizer::take_buffered`]).
//!
//! Covered: IMAP4rev1 and IMAP4rev2 with IDLE, UIDPLUS, ENABLE, MOVE, SASL-IR, UNSELECT,
//! NAMESPACE, ID, LITERAL+/LITERAL-, BINARY (literal8), CONDSTORE/QRESYNC, SPECIAL-USE,
//! ESEARCH and SEARCHRES, LIST-EXTENDED and LIST-STATUS, STATUS=SIZE, CHILDREN, APPENDLIMIT,
//! MULTIAPPEND, COMPRESS, QUOTA (RFC 9208), every RFC 5530 response code, modified UTF-7
//! mailbox names ([`mutf7`]) and UTF-8 ones once `UTF8=ACCEPT` is enabled.
//!
//! # Layers
//!
//! 1. [`fragmentizer`] splits the byte stream into complete *messages*: a command or
//!    response line with every literal inline, exactly the bytes from the wire
//!    (`a1 LOGIN {5}\r\nalice {6+}\r\nsecret\r\n` is one message), each handed out as one
//!    [`bytes::Bytes`] without copying. It scans with memchr, never looks at a byte twice,
//!    skips literal bodies by length, enforces the limits below and, in a server, stops at each
//!    synchronizing literal so that the session can send `+` or refuse.
//! 2. Complete nom parsers run over one message: [`command::parse_command`] (commands, what
//!    a server reads) and [`response::parse_response`] (responses, what a client reads), one
//!    function per ABNF rule. Parsed values borrow from the message (`Cow`, owned only where
//!    unescaping forces a copy); a large payload such as an APPEND message or a FETCH `BODY[]`
//!    is a slice of the message that a session can keep with [`bytes::Bytes::slice_ref`], or
//!    detach with `into_owned`. Errors carry an offset and, for commands, the tag, so the
//!    answer can be `tag BAD`.
//! 3. Encoders are total ([`encode::Encode`]): validated newtypes ([`types`]) cannot hold
//!    bytes that would write invalid syntax (only the documented `*_unchecked` constructors
//!    can), strings become atoms, quoted strings or literals as their content requires, and
//!    [`encode::Encoder`] yields [`encode::Fragment`]s so that a client can wait for `+`
//!    before each synchronizing literal.
//! 4. [`server::ServerSession`] is the sans-IO server session on top: states, literal
//!    decisions, SASL, IDLE, STARTTLS/COMPRESS signalling, timers and limits, and the
//!    selected-mailbox view ([`server::view`]) that keeps sequence numbers and UIDs apart
//!    for the application.
//!
//! # Limits
//!
//! Every input bound has a default and can be changed; "unlimited" is `None`, never `0`.
//!
//! | limit | default | where |
//! |---|---|---|
//! | line length (LF included) | 64 KiB | [`fragmentizer::Limits::max_line`] |
//! | literal size | 25 MiB | [`fragmentizer::Limits::max_literal`] |
//! | APPEND literal size (advertise as `APPENDLIMIT=`) | 25 MiB | [`fragmentizer::Limits::max_append_literal`] |
//! | non-synchronizing literal size | 4096 (LITERAL-) | [`fragmentizer::Limits::max_non_sync_literal`] |
//! | literals per message | 1024 | [`fragmentizer::Limits::max_literals`] |
//! | message size | 64 MiB | [`fragmentizer::Limits::max_message`] |
//! | parenthesis nesting (SEARCH, BODYSTRUCTURE, ...) | 32 | [`parse::ParseOptions::max_depth`] |
//!
//! Exceeding a limit never panics and never buffers without bound: the fragmentizer reports
//! the message as rejected and either refuses a synchronizing literal (the client is still
//! waiting for `+`) or discards the rest of the message, skipping literal bytes by length so
//! that they are never taken for commands; the parser fails with
//! [`error::ParseErrorKind::TooDeep`].
//!
//! # Example
//!
//! A server frames what a client sent, parses the command and answers it.
//!
//! ```
//! use cas_imap_proto::command::{CommandBody, parse_command};
//! use cas_imap_proto::encode::to_bytes;
//! use cas_imap_proto::fragmentizer::{Fragmentizer, Frame, Limits, Role};
//! use cas_imap_proto::response::{Response, ResponseText, Status, StatusResponse, Text};
//!
//! let mut fragmentizer = Fragmentizer::new(Role::Server, Limits::default());
//! fragmentizer.push(b"a1 LOGIN {5}\r\n");
//! // A synchronizing literal: the session decides, then sends `+ Ready` to the client.
//! let Some(Frame::LiteralAnnounced(literal)) = fragmentizer.poll() else { panic!() };
//! assert_eq!(literal.literal.length, 5);
//! fragmentizer.accept_literal().unwrap();
//! fragmentizer.push(b"alice secret\r\n");
//! let Some(Frame::Message(message)) = fragmentizer.poll() else { panic!() };
//!
//! let command = parse_command(&message).unwrap();
//! let CommandBody::Login { username, .. } = &command.body else { panic!() };
//! assert_eq!(username.as_bytes(), b"alice");
//!
//! let reply = Response::Status(StatusResponse::Tagged {
//!     tag: command.tag.clone(),
//!     status: Status::Ok,
//!     text: ResponseText::new(Text::new(&b"LOGIN completed"[..]).unwrap()),
//! });
//! assert_eq!(to_bytes(&reply), b"a1 OK LOGIN completed\r\n");
//! ```
//!
//! # Design notes
//!
//! Compared with imap-codec, from which the fragmentizer-first layering is taken: a message
//! is one contiguous `Bytes` rather than a list of fragments, so the parsers borrow from it
//! directly and a session keeps payloads without copying; limits are checked at the first
//! offending byte, so the outcome never depends on how the input was chunked; and the
//! fragmentizer reports what happened (which limit, and whether the peer waits or the rest of
//! the message is being discarded) instead of leaving the caller to infer it.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod body;
pub mod client;
pub mod code;
pub mod command;
pub mod encode;
pub mod error;
pub mod fragmentizer;
#[doc(hidden)]
pub mod fuzzing;
pub mod mutf7;
pub mod parse;
pub mod response;
pub mod server;
pub mod types;

pub use bytes;
