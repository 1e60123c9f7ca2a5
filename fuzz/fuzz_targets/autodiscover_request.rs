#![no_main]
//! Any bytes as an Outlook POX request body (for three callers) and as an autoconfig query:
//! no panic, bounded work, and every 200 reply well-formed XML.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cas_server::autodiscover::fuzzing::check(data);
});
