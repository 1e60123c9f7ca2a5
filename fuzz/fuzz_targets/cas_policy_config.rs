//! Arbitrary text as a cas-policy file and as the value grammars inside it
//! (`MAPIBlockOutlookVersions`, IP ranges, OU paths, TimeSpans, ValidPorts): never
//! panics, and whatever loads round-trips through `to_toml_string`.
//!
//! The first byte selects the check (see `cas_policy::fuzzing::check_bytes`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cas_policy::fuzzing::check_bytes(data);
});
