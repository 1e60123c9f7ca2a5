#![no_main]
//! DCE/RPC connection-oriented and RTS PDUs: the framer, every body decoder, reassembly and
//! the encode/decode round trip. The invariants live in the crate
//! (`rpch_framing::fuzzing::pdu_stream`) so proptest checks the same ones.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rpch_framing::fuzzing::pdu_stream(data);
    // The first byte picks chunk sizes for the chunking-invariance check.
    if let Some((&seed, rest)) = data.split_first() {
        let cuts: Vec<usize> = (0..16)
            .map(|i| 1 + usize::from(seed.rotate_left(i) % 37))
            .collect();
        rpch_framing::fuzzing::split_chunking(rest, &cuts);
    }
});
