//! Shared harness of the server transcript tests: a session, a virtual clock, and helpers
//! that feed client bytes and collect server bytes and events.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use cas_imap_proto::server::{Event, ServerConfig, ServerSession, SessionOptions};
use cas_imap_proto::types::Capability;

/// A session under test with a virtual clock.
pub struct Harness {
    pub session: ServerSession,
    pub now: Instant,
}

impl Harness {
    pub fn new(config: ServerConfig, options: SessionOptions) -> Self {
        let now = Instant::now();
        let session = ServerSession::new(Arc::new(config), now, options);
        Self { session, now }
    }

    /// A TLS session with the default config plus the usual extensions.
    pub fn tls() -> Self {
        Self::new(
            full_config(),
            SessionOptions {
                tls_active: true,
                ..SessionOptions::default()
            },
        )
    }

    pub fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    /// Feeds `input` and returns everything the session wrote since the last call.
    pub fn input(&mut self, input: &str) -> String {
        self.session.handle_input(self.now, input.as_bytes());
        self.output()
    }

    pub fn output(&mut self) -> String {
        let mut out = Vec::new();
        while self.session.poll_transmit(&mut out) > 0 {}
        String::from_utf8(out).expect("test output is UTF-8")
    }

    pub fn event(&mut self) -> Option<Event> {
        self.session.poll_event()
    }

    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.session.poll_event()).collect()
    }
}

pub fn full_config() -> ServerConfig {
    ServerConfig {
        capabilities: [
            "UIDPLUS",
            "MOVE",
            "UNSELECT",
            "NAMESPACE",
            "ID",
            "CONDSTORE",
            "QRESYNC",
            "ESEARCH",
            "UTF8=ACCEPT",
            "COMPRESS=DEFLATE",
        ]
        .into_iter()
        .map(|c| Capability::from_atom(cas_imap_proto::types::Atom::new(c).unwrap()))
        .collect(),
        ..ServerConfig::default()
    }
}
