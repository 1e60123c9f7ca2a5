//! cas-server: the thin tokio + rustls server of cas-rs.
//!
//! It wires the sans-IO protocol crates to sockets, TLS, a credential store and a Maildir
//! store, and nothing more: no protocol parsing or reply formatting lives here.
//!
//! - [`config`]: TOML config file and command-line overrides.
//! - [`driver`]: the generic per-connection loop any sans-IO session plugs into.
//! - [`store`] / [`maildir`]: the mailbox backend trait and its Maildir implementation.
//! - [`tls`]: certificate loading and the demo self-signed certificate.

pub mod config;
pub mod driver;
pub mod store;
pub mod tls;
