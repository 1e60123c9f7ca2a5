#![no_main]
//! The invariants live in the crate (`cas_imap_proto::fuzzing::response`) so proptest checks the same ones.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cas_imap_proto::fuzzing::response(data);
});
