#![no_main]
//! The invariants live in the crate (`pop3_proto::fuzzing::command_roundtrip`) so proptest checks the same ones.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pop3_proto::fuzzing::command_roundtrip(data);
});
