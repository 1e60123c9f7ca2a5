//! cas-server: the thin tokio + rustls server of cas-rs.
//!
//! It wires the sans-IO protocol crates to sockets, TLS, a credential store and a Maildir
//! store, and nothing more: no protocol parsing or reply formatting lives here.
//!
//! - [`config`]: TOML config file and command-line overrides.
//! - [`demo`]: the demo data directory made on first run.
//! - [`driver`]: the generic per-connection loop any sans-IO session plugs into.
//! - [`pop3`]: `pop3_proto::ServerSession` and the application answering its requests.
//! - [`server`]: listeners, connection tasks, graceful shutdown.
//! - [`store`] / [`maildir`]: the mailbox backend trait and its Maildir implementation.
//! - [`tls`]: certificate loading and the demo self-signed certificate.

pub mod config;
pub mod demo;
pub mod driver;
pub mod maildir;
pub mod store;
pub mod tls;
