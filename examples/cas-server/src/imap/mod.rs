//! IMAP service: `cas_imap_proto::ServerSession` wired to the Maildir store (issue 4).
