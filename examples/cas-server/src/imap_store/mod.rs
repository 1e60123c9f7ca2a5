//! The IMAP view of the Maildir store: Maildir++ folders, persistent UIDs, flags, keywords, modseq, and message rendering for FETCH (issue 4).
