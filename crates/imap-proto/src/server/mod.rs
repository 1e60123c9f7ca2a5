//! The IMAP server session (sans-IO) and its selected-mailbox view (work in progress, issue 4).
