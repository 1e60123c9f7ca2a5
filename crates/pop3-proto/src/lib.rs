//! Sans-IO POP3: wire format, server session and client session.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod command;
pub mod error;
pub mod framer;
pub mod response;
pub mod stuffing;

pub use bytes::Bytes;
pub use command::{Command, SaslResponse};
pub use error::{
    CloseReason, ConfigError, InvalidUid, ParseError, ParseErrorKind, ProtocolError, SendError,
    SendErrorKind,
};
pub use response::{Capability, Expire, Response, ResponseCode, Status, StatusLine, Uid};
