#![no_main]
//! The invariants live in the crate (`cas_auth::fuzzing::ntlm_initiator`) so proptest checks the same ones.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cas_auth::fuzzing::ntlm_initiator(data);
});
