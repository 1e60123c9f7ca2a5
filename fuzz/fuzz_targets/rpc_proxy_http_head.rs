#![no_main]
//! Any bytes as a request head of the Outlook Anywhere HTTPS endpoint (the generic layer
//! that routes and authenticates before rpch-framing's strict parse): no panic, and a head
//! that parses keeps the invariants the router relies on.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(head) = cas_server::rpc_proxy::http::Head::parse(data, 64) {
        // The query is split off the path exactly once.
        assert!(!head.path.contains('?'));
        // httparse accepts only HTTP/1.0 and HTTP/1.1.
        assert!(head.minor_version <= 1);
        assert!(head.user_agent.len() <= 256 * 3);
        assert_eq!(head.body_len(), head.content_length.unwrap_or(0));
    }
});
