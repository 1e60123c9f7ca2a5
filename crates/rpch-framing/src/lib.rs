//! Sans-IO RPC over HTTP v2 (MS-RPCH) and DCE/RPC connection-oriented PDUs. Work in progress.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
