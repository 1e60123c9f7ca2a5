//! The `cas-server` binary (being wired to pop3-proto's ServerSession).

fn main() {}
