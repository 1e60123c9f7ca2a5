#![no_main]
//! Arbitrary client bytes through an IMAP server session whose scripted application answers
//! every command; the invariants live in `cas_imap_proto::server::fuzzing` (no panic, one
//! final reply per command, bounded buffers, output that parses, chunking invariance).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cas_imap_proto::server::fuzzing::fuzz_session(data);
});
