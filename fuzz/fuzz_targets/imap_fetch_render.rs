#![no_main]
//! Any bytes as a stored message, served by IMAP FETCH in every MessageRetrievalMimeFormat:
//! no panic, deterministic conversion, and every data item describing the same message
//! (RFC822.SIZE, BODY[], header + text, partial pieces).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cas_server::imap_store::render::fuzzing::check_served(data);
});
