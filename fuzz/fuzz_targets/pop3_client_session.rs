#![no_main]
//! The invariants live in the crate (`pop3_proto::fuzzing::client_session`) so proptest checks the same ones.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pop3_proto::fuzzing::client_session(data);
});
