#![no_main]
//! Arbitrary server bytes into a `cas_imap_proto::client::ClientSession` that queued a whole
//! session (STARTTLS, AUTHENTICATE, LOGIN with literals, SELECT, FETCH, UID SEARCH, LIST,
//! APPEND, IDLE, LOGOUT). Invariants (in `client::fuzzing::client_session`, shared with the
//! crate's proptests): no panic, bounded input buffer and output chunks, every command
//! completed or aborted exactly once, `Closed` once and last.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cas_imap_proto::client::fuzzing::client_session(data);
});
