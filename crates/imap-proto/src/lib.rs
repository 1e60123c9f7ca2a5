//! Sans-IO IMAP4rev1 (RFC 3501) and IMAP4rev2 (RFC 9051) wire format. Work in progress.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
