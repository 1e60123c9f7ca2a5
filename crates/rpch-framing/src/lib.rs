//! Sans-IO RPC over HTTP v2 (MS-RPCH) and DCE/RPC connection-oriented PDUs. Work in progress.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod channel;
pub mod codec;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod pdu;
pub mod rts;
pub mod target;
