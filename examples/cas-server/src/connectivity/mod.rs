//! Connectivity tests, as Exchange's `Test-PopConnectivity` / `Test-ImapConnectivity` and
//! Microsoft's Remote Connectivity Analyzer: `cas-server test-popconnectivity` and
//! `cas-server test-imapconnectivity` check a server from the outside, step by step, with
//! our own client sessions.
//!
//! Each step prints ✓ or ✗ with its time; a failed step says the cause in one line and a
//! hint; warnings (clear-text login offered without TLS, certificate expiring within
//! [`net::EXPIRY_WARNING_DAYS`] days, self-signed certificate accepted) do not fail the
//! test. Exit status: 0 when every step passed, 1 when one failed, 2 for usage errors.
//!
//! The framework, for every test:
//! - [`report`]: the step runner ([`Report`], [`Step`], [`Failure`]), human and JSON output.
//! - [`net`]: DNS resolution, TCP connect with a timeout, the TLS handshake with a
//!   certificate verdict that explains itself, and the [`net::Stream`] (plain or TLS).
//! - [`driver`]: one loop that drives any sans-IO client session over a stream.
//! - [`CommonArgs`]: the flags every test shares (target, credentials, security, CA file,
//!   `--accept-self-signed`, timeout, `--json`), [`Target`] parsing and password sources.
//!
//! The protocol tests: [`pop`] (POP3: greeting, CAPA, STLS, login, STAT, LIST, RETR of the
//! newest message, QUIT) and [`imap`] (IMAP: greeting and capabilities, STARTTLS, login,
//! LIST, SELECT INBOX, FETCH of the newest message's header, optional APPEND + delete,
//! LOGOUT).
//!
//! An email address as the target gives the host (its domain) and, without `--user`, the
//! user name. Autodiscover and Mozilla autoconfig lookups for POP and IMAP, and DNS SRV
//! records (RFC 6186), are not done: the host and port are given or derived from the
//! domain.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

pub mod driver;
pub mod imap;
pub mod net;
pub mod outlook;
pub mod pop;
pub mod report;
pub mod sasl;

pub use net::{Security, TlsOptions};
pub use report::{Failed, Failure, Format, Report, Step};

/// Default per-step timeout: 15 seconds (a remote connectivity analyzer waits about this
/// long before calling a server unreachable).
pub const DEFAULT_TIMEOUT_SECS: u64 = 15;

/// Exit status for usage errors (bad flags, missing password), as clap uses.
pub const EXIT_USAGE: u8 = 2;

/// The connectivity test subcommands.
#[derive(Subcommand, Debug, Clone)]
#[allow(missing_docs)]
pub enum ConnectivityCommand {
    /// Test-PopConnectivity: DNS, TCP, TLS and certificate, greeting and CAPA, STLS, login,
    /// STAT, LIST and RETR of the newest message, each step explained.
    #[command(name = "test-popconnectivity")]
    TestPopConnectivity {
        #[command(flatten)]
        args: Box<MailArgs>,
    },
    /// Test-ImapConnectivity: DNS, TCP, TLS and certificate, greeting and capabilities,
    /// STARTTLS, login, LIST, SELECT INBOX, FETCH of the newest message's header, and with
    /// --send-test-message an APPEND that is deleted again, each step explained.
    #[command(name = "test-imapconnectivity")]
    TestImapConnectivity {
        #[command(flatten)]
        args: Box<MailArgs>,
    },
    /// Test-OutlookConnectivity: DNS, TCP, TLS, Autodiscover (POX) for the user, the RPC
    /// proxy's HTTP authentication, the RPC over HTTP handshake, MGMT bind and call on each
    /// RPC port, and an RPC ping, each step explained.
    #[command(name = "test-outlookconnectivity")]
    TestOutlookConnectivity {
        #[command(flatten)]
        args: Box<outlook::OutlookArgs>,
    },
}

impl ConnectivityCommand {
    /// The subcommand's name.
    pub fn name(&self) -> &'static str {
        match self {
            ConnectivityCommand::TestPopConnectivity { .. } => "test-popconnectivity",
            ConnectivityCommand::TestImapConnectivity { .. } => "test-imapconnectivity",
            ConnectivityCommand::TestOutlookConnectivity { .. } => "test-outlookconnectivity",
        }
    }
}

/// Which SASL mechanism (or USER/PASS) logs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LoginMechanism {
    /// The strongest the server offers: NTLM over TLS is not preferred over PLAIN (both
    /// are fine under TLS); PLAIN, then LOGIN, then USER/PASS (POP3) or the LOGIN command
    /// (IMAP).
    Auto,
    /// SASL PLAIN (RFC 4616).
    Plain,
    /// SASL LOGIN.
    Login,
    /// SASL NTLM (MS-NLMP through SASL, as Exchange offers it).
    Ntlm,
    /// POP3 USER/PASS (RFC 1939); for IMAP the LOGIN command.
    User,
}

impl LoginMechanism {
    /// Whether the password crosses the wire readable (PLAIN, LOGIN, USER/PASS).
    pub fn is_clear_text(self) -> bool {
        !matches!(self, LoginMechanism::Ntlm)
    }
}

/// The flags every connectivity test shares.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// The server: HOST, HOST:PORT (IPv6 in brackets), or an email address (its domain is the
    /// host and, without --user, it is the user name).
    #[arg(value_name = "TARGET")]
    pub target: String,
    /// Port [default: by protocol and --security].
    #[arg(long)]
    pub port: Option<u16>,
    /// User name (DOMAIN\user works for NTLM).
    #[arg(long)]
    pub user: Option<String>,
    /// Password (visible in the process list: prefer --password-file or --password-env).
    #[arg(long, conflicts_with_all = ["password_file", "password_env"])]
    pub password: Option<String>,
    /// Read the password from the first line of this file.
    #[arg(long, value_name = "PATH", conflicts_with = "password_env")]
    pub password_file: Option<PathBuf>,
    /// Read the password from this environment variable.
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
    /// plain, starttls (STLS / STARTTLS before login) or tls (implicit TLS).
    #[arg(long, value_enum, default_value_t = Security::Tls)]
    pub security: Security,
    /// Trust the CA certificates in this PEM file instead of the system roots.
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
    /// Accept a self-signed server certificate (for demo servers; its name and validity
    /// are still checked).
    #[arg(long)]
    pub accept_self_signed: bool,
    /// Send a clear-text password (PLAIN, LOGIN, USER/PASS) over a connection without TLS.
    #[arg(long)]
    pub allow_clear_text: bool,
    /// Per-step timeout in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_TIMEOUT_SECS)]
    pub timeout: u64,
    /// One JSON document instead of the step-by-step text.
    #[arg(long)]
    pub json: bool,
}

/// The flags of the POP3 and IMAP tests.
#[derive(Args, Debug, Clone)]
#[allow(missing_docs)] // clap would show a doc comment on the flattened field
pub struct MailArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// How to log in.
    #[arg(long, value_enum, default_value_t = LoginMechanism::Auto)]
    pub mechanism: LoginMechanism,
    /// IMAP: APPEND a test message, then delete and expunge it (POP3 cannot send mail).
    #[arg(long)]
    pub send_test_message: bool,
}

/// Where to connect, after parsing the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Host name or IP address (without brackets).
    pub host: String,
    /// Port, if the target named one.
    pub port: Option<u16>,
    /// The email address, when the target was one.
    pub email: Option<String>,
}

impl Target {
    /// Parses `HOST`, `HOST:PORT`, `[V6]:PORT`, a bare IPv6 address, or `user@domain`.
    pub fn parse(target: &str) -> Result<Target, String> {
        let target = target.trim();
        if target.is_empty() {
            return Err("the target is empty".into());
        }
        if let Some((local, domain)) = target.rsplit_once('@') {
            if local.is_empty() || domain.is_empty() || domain.contains([':', '/', ' ']) {
                return Err(format!("{target:?} is not an email address"));
            }
            return Ok(Target {
                host: domain.to_owned(),
                port: None,
                email: Some(target.to_owned()),
            });
        }
        if let Some(rest) = target.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("{target:?}: missing ']'"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(parse_port(p)?),
                None if after.is_empty() => None,
                None => return Err(format!("{target:?}: junk after ']'")),
            };
            return Ok(Target {
                host: host.to_owned(),
                port,
                email: None,
            });
        }
        if target.parse::<std::net::Ipv6Addr>().is_ok() {
            return Ok(Target {
                host: target.to_owned(),
                port: None,
                email: None,
            });
        }
        let (host, port) = match target.rsplit_once(':') {
            Some((h, p)) => (h, Some(parse_port(p)?)),
            None => (target, None),
        };
        if host.is_empty() || host.contains(['/', ' ', '[', ']']) {
            return Err(format!("{target:?} is not a host name"));
        }
        Ok(Target {
            host: host.to_owned(),
            port,
            email: None,
        })
    }
}

fn parse_port(p: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("{p:?} is not a port number")),
        Ok(n) => Ok(n),
    }
}

/// Everything a test needs, checked: what `CommonArgs` becomes.
#[derive(Clone)]
pub struct Settings {
    /// Host to resolve and to check the certificate against.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User name.
    pub user: String,
    /// Password (never printed).
    pub password: cas_auth::Secret<String>,
    /// Transport security.
    pub security: Security,
    /// Certificate checks.
    pub tls: TlsOptions,
    /// Clear-text passwords allowed without TLS.
    pub allow_clear_text: bool,
    /// Per-step timeout.
    pub timeout: Duration,
    /// Output format.
    pub format: Format,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("security", &self.security)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Checks `args`; `default_port` gives the port by security mode when the target
    /// names none. Errors are usage errors (exit status 2).
    pub fn from_args(
        args: &CommonArgs,
        default_port: impl Fn(Security) -> u16,
    ) -> Result<Settings, String> {
        let target = Target::parse(&args.target)?;
        let user = match (&args.user, &target.email) {
            (Some(u), _) => u.clone(),
            (None, Some(email)) => email.clone(),
            (None, None) => return Err("--user is required (or give an email address)".into()),
        };
        let password = read_password(args)?;
        if args.timeout == 0 {
            return Err("--timeout must be at least 1 second".into());
        }
        Ok(Settings {
            host: target.host,
            port: args
                .port
                .or(target.port)
                .unwrap_or_else(|| default_port(args.security)),
            user,
            password: cas_auth::Secret::new(password),
            security: args.security,
            tls: TlsOptions {
                ca_file: args.ca_file.clone(),
                accept_self_signed: args.accept_self_signed,
            },
            allow_clear_text: args.allow_clear_text,
            timeout: Duration::from_secs(args.timeout),
            format: if args.json {
                Format::Json
            } else {
                Format::Human
            },
        })
    }

    /// `host:port (security)`, for the report header.
    pub fn describe(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!(
            "{host}:{} ({}), user {}",
            self.port,
            self.security.name(),
            self.user
        )
    }

    /// A deadline `timeout` from now.
    pub fn deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.timeout
    }

    /// The steps up to a connection the protocol can speak on: DNS resolution, TCP
    /// connect and, with `--security tls`, the TLS handshake.
    pub async fn open(&self, report: &mut report::Report) -> Result<net::Stream, report::Failed> {
        let implicit_tls = self.security == Security::Tls;
        let (_, stream) = net::open(
            report,
            &self.host,
            self.port,
            implicit_tls,
            &self.tls,
            self.timeout,
        )
        .await?;
        Ok(stream)
    }

    /// A password is not sent in clear text (`mechanism` is shown as `name`) on a
    /// connection without TLS, unless `--allow-clear-text`.
    pub fn check_clear_text(
        &self,
        mechanism: LoginMechanism,
        name: &str,
        tls: bool,
    ) -> Result<(), report::Failure> {
        if tls || !mechanism.is_clear_text() || self.allow_clear_text {
            return Ok(());
        }
        Err(report::Failure::new(
            format!("refusing to send the password in clear text ({name}) without TLS"),
            "use --security starttls or tls; --allow-clear-text sends it anyway (test servers only)",
        ))
    }
}

fn read_password(args: &CommonArgs) -> Result<String, String> {
    if let Some(p) = &args.password {
        return Ok(p.clone());
    }
    if let Some(path) = &args.password_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read --password-file {}: {e}", path.display()))?;
        return Ok(text.lines().next().unwrap_or_default().to_owned());
    }
    if let Some(var) = &args.password_env {
        return std::env::var(var).map_err(|_| format!("environment variable {var} is not set"));
    }
    Err("a password is required: --password-file, --password-env or --password".into())
}

/// Runs a connectivity command on its own runtime and returns the exit status.
pub fn main(command: &ConnectivityCommand) -> ExitCode {
    let name = command.name();
    let result = match command {
        ConnectivityCommand::TestPopConnectivity { args } => prepare(args, pop::default_port),
        ConnectivityCommand::TestImapConnectivity { args } => prepare(args, imap::default_port),
        ConnectivityCommand::TestOutlookConnectivity { args } => outlook::check_args(args)
            .and_then(|()| Settings::from_args(&args.common, outlook::default_port)),
    };
    let settings = match result {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cas-server {name}: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cas-server {name}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        match command {
            ConnectivityCommand::TestPopConnectivity { args } => pop::run(&settings, args).await,
            ConnectivityCommand::TestImapConnectivity { args } => imap::run(&settings, args).await,
            ConnectivityCommand::TestOutlookConnectivity { args } => {
                outlook::run(&settings, args).await
            }
        }
    });
    ExitCode::from(code)
}

fn prepare(args: &MailArgs, default_port: fn(Security) -> u16) -> Result<Settings, String> {
    Settings::from_args(&args.common, default_port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_forms() {
        let t = Target::parse("mail.example.com").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("mail.example.com", None));
        let t = Target::parse("mail.example.com:995").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("mail.example.com", Some(995)));
        let t = Target::parse("[::1]:993").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", Some(993)));
        let t = Target::parse("::1").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", None));
        let t = Target::parse("alice@example.com").unwrap();
        assert_eq!(t.host, "example.com");
        assert_eq!(t.email.as_deref(), Some("alice@example.com"));
        for bad in [
            "",
            "host:0",
            "host:x",
            "host:70000",
            "@x",
            "a@",
            "[::1",
            "a b",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    fn args(extra: &[&str]) -> Result<MailArgs, clap::Error> {
        #[derive(clap::Parser, Debug)]
        struct Cli {
            #[command(flatten)]
            args: MailArgs,
        }
        use clap::Parser;
        let mut argv = vec!["x"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).map(|c| c.args)
    }

    #[test]
    fn settings_from_flags() {
        let a = args(&["alice@example.com", "--password", "pw"]).unwrap();
        let s = Settings::from_args(&a.common, pop::default_port).unwrap();
        assert_eq!((s.host.as_str(), s.port), ("example.com", 995));
        assert_eq!(s.user, "alice@example.com");
        assert_eq!(s.password.expose(), "pw");
        assert!(!format!("{s:?}").contains("pw\""));

        let a = args(&[
            "h:1110",
            "--user",
            "u",
            "--password-env",
            "CAS_TEST_NO_SUCH_VAR_X",
        ])
        .unwrap();
        assert!(Settings::from_args(&a.common, pop::default_port).is_err());

        let a = args(&["h", "--user", "u"]).unwrap();
        let e = Settings::from_args(&a.common, pop::default_port).unwrap_err();
        assert!(e.contains("password"), "{e}");

        let a = args(&["h", "--password", "p"]).unwrap();
        assert!(Settings::from_args(&a.common, pop::default_port).is_err());

        let a = args(&[
            "h",
            "--user",
            "u",
            "--password",
            "p",
            "--security",
            "starttls",
        ])
        .unwrap();
        let s = Settings::from_args(&a.common, pop::default_port).unwrap();
        assert_eq!(s.port, 110);

        assert!(args(&["h", "--security", "bogus"]).is_err());
        assert!(args(&["h", "--password", "a", "--password-file", "f"]).is_err());
    }

    #[test]
    fn password_file_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret\nignored\n").unwrap();
        let a = args(&[
            "h",
            "--user",
            "u",
            "--password-file",
            path.to_str().unwrap(),
        ])
        .unwrap();
        let s = Settings::from_args(&a.common, pop::default_port).unwrap();
        assert_eq!(s.password.expose(), "s3cret");
    }
}
