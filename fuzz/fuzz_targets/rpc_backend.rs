#![no_main]
//! The built-in RPC backend's association machine on arbitrary PDUs; the invariants live in
//! `cas_server::rpc_backend::fuzzing` so the unit tests check the same ones.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cas_server::rpc_backend::fuzzing::association(data);
});
