#![no_main]
//! The invariants live in the crate (`cas_imap_proto::fuzzing::command_roundtrip`) so proptest checks the same ones.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cas_imap_proto::fuzzing::command_roundtrip(data);
});
