//! cas-server: the thin tokio + rustls server of cas-rs.
//!
//! It wires the sans-IO protocol crates to sockets, TLS, a credential store and a Maildir
//! store, and nothing more: no protocol parsing or reply formatting lives here.
//!
//! - [`access`]: policy enforcement shared by every protocol (admission, login checks, logs).
//! - [`auth`]: the login steps POP3 and IMAP share (SASL mechanisms, password checks,
//!   the policy's verdict).
//! - [`admin`]: the admin subcommands (`get-casmailbox`, `set-popsettings`, ...).
//! - [`config`]: TOML config file and command-line overrides.
//! - [`demo`]: the demo data directory made on first run.
//! - [`driver`]: the generic per-connection loop any sans-IO session plugs into.
//! - [`http_auth_test`]: the HTTP(S) NTLM/Negotiate/Basic test endpoint
//!   (`cas-http-auth-test`), a test vehicle until the RPC proxy exists.
//! - [`live`]: the client access policy and users file, reloaded on change or SIGHUP.
//! - [`mime`]: MessageRetrievalMimeFormat conversions.
//! - [`imap`]: `cas_imap_proto::server::ServerSession` and the application answering its
//!   events from [`imap_store`].
//! - [`pop3`]: `pop3_proto::ServerSession` and the application answering its requests.
//! - [`protolog`]: rotating protocol logs (ProtocolLogEnabled).
//! - [`server`]: listeners, connection tasks, graceful shutdown.
//! - [`store`] / [`maildir`]: the mailbox backend trait and its Maildir implementation.
//! - [`tls`]: certificate loading and the demo self-signed certificate.

use std::fmt::Write as _;

use tokio_util::sync::CancellationToken;

pub mod access;
pub mod admin;
pub mod auth;
pub mod autodiscover;
pub mod config;
pub mod connectivity;
pub mod demo;
pub mod driver;
pub mod fsutil;
pub mod http_auth_test;
pub mod imap;
pub mod imap_store;
pub mod live;
pub mod maildir;
pub mod mime;
pub mod pop3;
pub mod protolog;
pub mod rpc_backend;
pub mod rpc_proxy;
pub mod server;
pub mod store;
pub mod tls;

pub use server::Server;

/// Anything that stops the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// Demo data could not be made.
    #[error(transparent)]
    Demo(#[from] demo::DemoError),
    /// Users, TLS or listeners failed.
    #[error(transparent)]
    Start(#[from] server::StartError),
    /// The port file could not be written.
    #[error("cannot write port file {path}: {source}")]
    PortFile {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Logs to stderr with the filter from `CAS_LOG`, then `RUST_LOG`, else `info`: one setup
/// for every binary of the package.
pub fn init_logging() {
    let filter = std::env::var("CAS_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .and_then(|s| tracing_subscriber::EnvFilter::try_new(s).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// The file locations an admin command works on: from `--config`, or
/// `<data-dir>/cas-server.toml` when it exists, else the defaults under the data directory
/// (nothing is created: the commands make the files they write).
pub fn admin_paths(cli: &config::Cli) -> Result<config::Paths, Error> {
    let (config_path, in_data_dir) = cli.config_path();
    let file = if in_data_dir && !config_path.exists() {
        config::FileConfig::default()
    } else {
        config::FileConfig::load(&config_path)?
    };
    Ok(config::resolve_paths(cli, &file, &config_path))
}

/// Resolves the settings from the flags, making the demo data directory first when there is
/// no `--config` and no `<data-dir>/cas-server.toml` yet.
pub fn prepare(cli: &config::Cli) -> Result<config::Settings, Error> {
    let (config_path, in_data_dir) = cli.config_path();
    if in_data_dir && !config_path.exists() {
        let data_dir = cli.default_data_dir();
        let created = demo::ensure_demo_data(&data_dir)?;
        tracing::info!(data_dir = %data_dir.display(), ?created, "created demo data");
    }
    let file = config::FileConfig::load(&config_path)?;
    Ok(config::resolve(cli, file, &config_path)?)
}

/// Starts the server described by `settings`, reports where it listens (stdout and the port
/// file), and serves until `shutdown` is cancelled.
pub async fn run(settings: config::Settings, shutdown: CancellationToken) -> Result<(), Error> {
    let server = Server::bind(&settings).await?;
    if let Some(path) = &settings.port_file {
        fsutil::replace_file(path, server.addresses_json().as_bytes(), false).map_err(
            |source| Error::PortFile {
                path: path.display().to_string(),
                source,
            },
        )?;
    }
    tracing::info!(
        pop3 = ?server.pop3_addr(),
        pop3s = ?server.pop3s_addr(),
        imap = ?server.imap_addr(),
        imaps = ?server.imaps_addr(),
        "listening"
    );
    print!("{}", connect_hints(&settings, &server));
    server.run(shutdown).await;
    Ok(())
}

/// The "how to connect" text printed at start.
pub fn connect_hints(settings: &config::Settings, server: &Server) -> String {
    let mut out = String::from("\ncas-server is running.\n");
    if let Some(a) = server.pop3_addr() {
        let _ = writeln!(out, "  POP3 (STLS)        {a}");
    }
    if let Some(a) = server.pop3s_addr() {
        let _ = writeln!(out, "  POP3S (implicit)   {a}");
    }
    if let Some(a) = server.imap_addr() {
        let _ = writeln!(out, "  IMAP (STARTTLS)    {a}");
    }
    if let Some(a) = server.imaps_addr() {
        let _ = writeln!(out, "  IMAPS (implicit)   {a}");
    }
    let creds = if settings.from_data_dir {
        demo::read_credentials(&settings.data_dir)
    } else {
        Vec::new()
    };
    if creds.is_empty() {
        out.push('\n');
        return out;
    }
    let _ = writeln!(
        out,
        "\nDemo users (from {}):",
        settings.data_dir.join(demo::CREDENTIALS_FILE).display()
    );
    for (user, password) in &creds {
        let _ = writeln!(out, "  {user:<8} {password}");
    }
    let (user, password) = &creds[0];
    let cert = settings
        .tls
        .as_ref()
        .map(|t| t.cert.display().to_string())
        .unwrap_or_default();
    out.push_str("\nTry:\n");
    if let Some(a) = server.pop3_addr() {
        let _ = writeln!(
            out,
            "  curl --ssl-reqd -k pop3://localhost:{}/ -u {user}:{password}",
            a.port()
        );
        let _ = writeln!(
            out,
            "  openssl s_client -quiet -starttls pop3 -connect localhost:{}",
            a.port()
        );
    }
    if let Some(a) = server.pop3s_addr() {
        let _ = writeln!(
            out,
            "  curl --cacert {cert} pop3s://localhost:{}/1 -u {user}:{password}",
            a.port()
        );
        let _ = writeln!(
            out,
            "  openssl s_client -quiet -connect localhost:{}   (then: USER {user}, PASS {password}, STAT, RETR 1, QUIT)",
            a.port()
        );
    }
    if let Some(a) = server.imap_addr() {
        let _ = writeln!(
            out,
            "  curl --ssl-reqd -k 'imap://localhost:{}/INBOX;UID=1' -u {user}:{password}",
            a.port()
        );
        let _ = writeln!(
            out,
            "  openssl s_client -quiet -starttls imap -connect localhost:{}",
            a.port()
        );
    }
    if let Some(a) = server.imaps_addr() {
        let _ = writeln!(
            out,
            "  curl --cacert {cert} imaps://localhost:{}/ -u {user}:{password}   (lists the folders)",
            a.port()
        );
        let _ = writeln!(
            out,
            "  openssl s_client -quiet -connect localhost:{}   (then: a LOGIN {user} {password}, b SELECT INBOX, c FETCH 1 BODY[], d LOGOUT)",
            a.port()
        );
        let _ = writeln!(
            out,
            "  any IMAP client (Thunderbird, mutt, mbsync): server localhost, port {}, SSL/TLS, user {user}",
            a.port()
        );
    }
    out.push('\n');
    out
}
