#![no_main]
// Placeholder until the crate lands; replaced by the crate's owner.
libfuzzer_sys::fuzz_target!(|_data: &[u8]| {});
