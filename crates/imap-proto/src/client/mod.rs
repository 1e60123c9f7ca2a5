//! The IMAP client session (sans-IO) (work in progress, issue 4).
