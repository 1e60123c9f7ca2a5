#![no_main]
//! RPC over HTTP request heads, `/rpc/rpcproxy.dll?server:port` targets and allow-list checks.
//! The invariants live in the crate (`rpch_framing::http::fuzzing::http_head`) so the
//! proptests check the same ones.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rpch_framing::http::fuzzing::http_head(data);
});
