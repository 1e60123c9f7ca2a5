//! Arbitrary client and backend bytes, time steps and ends of stream into an inbound and an
//! outbound proxy machine (forwarding or merged) and arbitrary OUT channel bytes into a client
//! machine: no panic, bounded buffers, closed stays closed. The script format is documented in
//! `rpch_framing::channel::fuzzing::proxy_session`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rpch_framing::channel::fuzzing::proxy_session(data);
    rpch_framing::channel::fuzzing::client_out_channel(data);
});
