//! Sans-IO IMAP4rev1 (RFC 3501) and IMAP4rev2 (RFC 9051) wire format. Work in progress.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod body;
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
pub mod types;
