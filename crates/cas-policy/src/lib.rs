//! Exchange-style client access policy as pure decisions. Work in progress.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
