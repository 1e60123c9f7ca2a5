#![no_main]
//! Placeholder: replaced by the target's owner.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = data;
});
