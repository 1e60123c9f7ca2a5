//! Configuration: a TOML file (serde) plus command-line overrides (clap).
//!
//! Precedence: a command-line flag beats the file, the file beats the built-in default.
//! Relative paths in the file resolve against `server.data_dir`, which itself resolves
//! against the directory holding the config file (and defaults to it).
//!
//! With no `--config`, the file is `<data-dir>/cas-server.toml`; when it does not exist the
//! server creates the demo data directory first (see [`crate::demo`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

/// Name of the config file inside the data directory.
pub const CONFIG_FILE_NAME: &str = "cas-server.toml";
/// Default data directory when neither `--data-dir` nor `--config` is given.
pub const DEFAULT_DATA_DIR: &str = "cas-data";

/// Command-line flags.
#[derive(Parser, Debug, Clone, Default)]
#[command(
    name = "cas-server",
    version,
    about = "cas-rs client access server: POP3 (STLS), POP3S, IMAP (STARTTLS) and IMAPS over Maildir"
)]
pub struct Cli {
    /// Config file (TOML). Without it, DATA_DIR/cas-server.toml is used, and created with
    /// demo users, sample mail and a self-signed certificate if missing.
    #[arg(long, value_name = "PATH", global = true)]
    pub config: Option<PathBuf>,
    /// Data directory [default: ./cas-data, or the config file's server.data_dir].
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Plain POP3 listener with STLS, IP:PORT (port 0 picks a free one).
    #[arg(long, value_name = "ADDR")]
    pub pop3_listen: Option<SocketAddr>,
    /// POP3S listener (implicit TLS), IP:PORT (port 0 picks a free one).
    #[arg(long, value_name = "ADDR")]
    pub pop3s_listen: Option<SocketAddr>,
    /// Plain IMAP listener with STARTTLS, IP:PORT (port 0 picks a free one).
    #[arg(long, value_name = "ADDR")]
    pub imap_listen: Option<SocketAddr>,
    /// IMAPS listener (implicit TLS), IP:PORT (port 0 picks a free one).
    #[arg(long, value_name = "ADDR")]
    pub imaps_listen: Option<SocketAddr>,
    /// TLS certificate chain, PEM.
    #[arg(long, value_name = "PATH")]
    pub cert: Option<PathBuf>,
    /// TLS private key, PEM.
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,
    /// Accept USER/PASS, IMAP LOGIN and SASL PLAIN/LOGIN on connections without TLS,
    /// whatever policy.toml's PopSettings / ImapSettings LoginType says (an override for
    /// testing; prefer `set-popsettings --login-type PlainTextLogin`).
    #[arg(long)]
    pub allow_plaintext_auth: bool,
    /// Outlook Anywhere HTTPS listener (RPC proxy, autodiscover), IP:PORT (port 0 picks a
    /// free one).
    #[arg(long, value_name = "ADDR")]
    pub https_listen: Option<SocketAddr>,
    /// Plain HTTP listener behind an SSL-offloading terminator, IP:PORT (served only while
    /// the policy's OutlookAnywhere SSLOffloading is on).
    #[arg(long, value_name = "ADDR")]
    pub http_listen: Option<SocketAddr>,
    /// Built-in RPC backend listener, IP:PORT (port 0 picks a free one); repeat for more.
    /// Replaces `[rpc_backend] listen`.
    #[arg(long, value_name = "ADDR")]
    pub rpc_backend_listen: Vec<SocketAddr>,
    /// Write the bound listener addresses here as JSON once listening, e.g.
    /// {"pop3": "127.0.0.1:1110", "pop3s": "127.0.0.1:1995", "imap": "127.0.0.1:1143",
    /// "imaps": "127.0.0.1:1993"}.
    #[arg(long, value_name = "PATH")]
    pub port_file: Option<PathBuf>,
    /// An admin command (Exchange vocabulary); without one, the server runs.
    #[command(subcommand)]
    pub command: Option<crate::admin::AdminCommand>,
}

/// The config file as written.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `[server]`: where data lives.
    #[serde(default)]
    pub server: ServerSection,
    /// `[tls]`: certificate and key; absent = no STLS and no POP3S.
    pub tls: Option<TlsSection>,
    /// `[pop3]`: listeners and protocol settings.
    #[serde(default)]
    pub pop3: Pop3Section,
    /// `[imap]`: listeners and protocol settings.
    #[serde(default)]
    pub imap: ImapSection,
    /// `[ntlm]`: the NTLM acceptor (POP3 `AUTH NTLM`, IMAP `AUTHENTICATE NTLM`, HTTP
    /// `NTLM`/`Negotiate`).
    #[serde(default)]
    pub ntlm: NtlmSection,
    /// `[outlook_anywhere]`: the HTTPS endpoint's listeners and limits.
    #[serde(default)]
    pub outlook_anywhere: crate::rpc_proxy::OutlookAnywhereSection,
    /// `[rpc_backend]`: the built-in local RPC server behind the RPC proxy.
    #[serde(default)]
    pub rpc_backend: crate::rpc_backend::RpcBackendSection,
    /// `[autodiscover]`: e-mail domain and names of Autodiscover / autoconfig replies.
    #[serde(default)]
    pub autodiscover: crate::autodiscover::AutodiscoverSection,
}

/// `[server]`.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Base for the relative paths below; default: the config file's directory.
    pub data_dir: Option<PathBuf>,
    /// passwd-file of users (`user:$argon2id$...[:nt=...]`); default `users`.
    pub users_file: Option<PathBuf>,
    /// Directory holding one Maildir per user; default `maildir`.
    pub maildir_root: Option<PathBuf>,
    /// Client access policy (Exchange Set-CASMailbox / Set-PopSettings / ... values, edited
    /// by the admin commands, reloaded on change); default `policy.toml`. A missing file
    /// means Exchange's defaults.
    pub policy_file: Option<PathBuf>,
    /// Protocol logs go to `<log_dir>/<protocol>/`; default `logs`.
    pub log_dir: Option<PathBuf>,
    /// Largest protocol log file in bytes before it is rotated; default 10 MiB.
    pub log_max_file_size: Option<u64>,
    /// Rotated protocol log files kept per protocol; default 10.
    pub log_max_files: Option<u32>,
}

/// `[tls]`.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// Certificate chain, PEM.
    pub cert: PathBuf,
    /// Private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// A limit: a number, or the word `"unlimited"`.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(untagged)]
pub enum LimitValue {
    /// A positive number.
    Number(u64),
    /// `"unlimited"` (any other word is rejected by validation).
    Word(WordUnlimited),
}

/// The word `"unlimited"`.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WordUnlimited {
    /// No limit.
    Unlimited,
}

/// `pop3.expire`: days, or `"never"` (RFC 2449 EXPIRE).
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(untagged)]
pub enum ExpireValue {
    /// Messages may be deleted by the server this many days after retrieval.
    Days(u32),
    /// The word `"never"`.
    Word(WordNever),
}

/// The word `"never"`.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WordNever {
    /// Never expires.
    Never,
}

/// `[pop3]`.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct Pop3Section {
    /// Plain listener (STLS offered when TLS is configured); absent = disabled.
    pub listen: Option<SocketAddr>,
    /// Implicit-TLS listener (RFC 8314); absent = disabled.
    pub tls_listen: Option<SocketAddr>,
    /// Greeting text after `+OK` (Exchange: Banner).
    #[serde(alias = "banner")]
    pub greeting: Option<String>,
    /// Accept clear-text logins without TLS (default false = Exchange LoginType SecureLogin).
    #[serde(default)]
    pub allow_clear_text_without_tls: bool,
    /// Longest command line in octets, 40..=1024 (Exchange MaxCommandSize).
    pub max_command_size: Option<usize>,
    /// Seconds before login (Exchange PreAuthenticatedConnectionTimeout), or "unlimited".
    pub pre_auth_timeout_secs: Option<LimitValue>,
    /// Idle seconds after login (Exchange AuthenticatedConnectionTimeout), or "unlimited".
    pub authenticated_timeout_secs: Option<LimitValue>,
    /// Bad commands before the connection is closed, or "unlimited".
    pub max_bad_commands: Option<LimitValue>,
    /// Failed logins before the connection is closed, or "unlimited".
    pub max_auth_failures: Option<LimitValue>,
    /// Offer APOP. The passwd-file store keeps only hashes, so this must stay false.
    #[serde(default)]
    pub apop_enabled: bool,
    /// Seconds announced as CAPA LOGIN-DELAY (RFC 2449).
    #[serde(alias = "login_delay")]
    pub login_delay_secs: Option<u64>,
    /// Announced as CAPA EXPIRE: days or "never" (RFC 2449).
    pub expire: Option<ExpireValue>,
}

/// `[imap]`.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct ImapSection {
    /// Plain listener (STARTTLS offered when TLS is configured); absent = disabled.
    pub listen: Option<SocketAddr>,
    /// Implicit-TLS listener (RFC 8314); absent = disabled.
    pub tls_listen: Option<SocketAddr>,
    /// Greeting text after `* OK` (Exchange: Banner).
    #[serde(alias = "banner")]
    pub greeting: Option<String>,
    /// Accept clear-text logins without TLS (default false = Exchange LoginType SecureLogin).
    #[serde(default)]
    pub allow_clear_text_without_tls: bool,
    /// Longest command line in octets, 1024..=16384 (Exchange MaxCommandSize; literals are
    /// bounded separately).
    pub max_command_size: Option<usize>,
    /// Largest message APPEND accepts, in octets (advertised as `APPENDLIMIT=`).
    pub append_limit: Option<u64>,
    /// Seconds before login (Exchange PreAuthenticatedConnectionTimeout), or "unlimited".
    pub pre_auth_timeout_secs: Option<LimitValue>,
    /// Idle seconds after login (Exchange AuthenticatedConnectionTimeout), at least 1800
    /// (RFC 9051 §5.4), or "unlimited".
    pub authenticated_timeout_secs: Option<LimitValue>,
    /// Seconds an IDLE may last without client traffic, or "unlimited".
    pub idle_timeout_secs: Option<LimitValue>,
    /// Bad commands before the connection is closed, or "unlimited".
    pub max_bad_commands: Option<LimitValue>,
    /// Failed logins before the connection is closed, or "unlimited".
    pub max_auth_failures: Option<LimitValue>,
}

/// Extended Protection for Authentication: when NTLM channel bindings are checked
/// (Exchange/IIS `ExtendedProtectionTokenChecking`).
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ExtendedProtectionSetting {
    /// Bindings are not looked at (curl sends none).
    #[default]
    None,
    /// A client that sends bindings must send the right ones; none is accepted.
    Allow,
    /// Every client must send the bindings of this server's certificate; fails without TLS.
    Require,
}

impl From<ExtendedProtectionSetting> for cas_auth::channel_binding::ExtendedProtection {
    fn from(s: ExtendedProtectionSetting) -> Self {
        match s {
            ExtendedProtectionSetting::None => Self::None,
            ExtendedProtectionSetting::Allow => Self::Allow,
            ExtendedProtectionSetting::Require => Self::Require,
        }
    }
}

/// `[ntlm]`.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct NtlmSection {
    /// Offer NTLM (default true). Only users whose passwd line has an `nt=` hash can use it.
    pub enabled: Option<bool>,
    /// NetBIOS domain name sent in the CHALLENGE (default `CAS`); also the default domain.
    pub netbios_domain: Option<String>,
    /// NetBIOS computer name sent in the CHALLENGE (default `CAS-SERVER`).
    pub netbios_computer: Option<String>,
    /// DNS domain name sent in the CHALLENGE (default `localhost`).
    pub dns_domain: Option<String>,
    /// DNS computer name sent in the CHALLENGE (default `localhost`).
    pub dns_computer: Option<String>,
    /// More domains whose `DOMAIN\user` / `user@domain` names map to local users, besides
    /// the four names above. A name qualified with any other domain is refused.
    #[serde(default)]
    pub accepted_domains: Vec<String>,
    /// Accepted distance between the client's NTLMv2 timestamp and the server clock, in
    /// seconds (default 129600 = 36 h, as Windows).
    pub max_clock_skew_secs: Option<u64>,
    /// Channel-binding check: "none" (default), "allow" or "require".
    pub extended_protection: Option<ExtendedProtectionSetting>,
}

/// Resolved `[ntlm]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NtlmSettings {
    /// NTLM is offered.
    pub enabled: bool,
    /// NetBIOS domain name.
    pub netbios_domain: String,
    /// NetBIOS computer name.
    pub netbios_computer: String,
    /// DNS domain name.
    pub dns_domain: String,
    /// DNS computer name.
    pub dns_computer: String,
    /// Extra accepted domains.
    pub accepted_domains: Vec<String>,
    /// Timestamp skew window.
    pub max_clock_skew: Duration,
    /// Channel-binding policy.
    pub extended_protection: ExtendedProtectionSetting,
}

impl Default for NtlmSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            netbios_domain: "CAS".into(),
            netbios_computer: "CAS-SERVER".into(),
            dns_domain: "localhost".into(),
            dns_computer: "localhost".into(),
            accepted_domains: Vec::new(),
            max_clock_skew: cas_auth::ntlm::DEFAULT_MAX_CLOCK_SKEW,
            extended_protection: ExtendedProtectionSetting::None,
        }
    }
}

impl NtlmSettings {
    /// The acceptor configuration: these names in the target info, a domain policy that
    /// accepts them and [`accepted_domains`](Self::accepted_domains), NTLMv2 only.
    pub fn acceptor_config(&self) -> cas_auth::ntlm::NtlmConfig {
        let config = cas_auth::ntlm::NtlmConfig::new(
            &self.netbios_domain,
            &self.netbios_computer,
            &self.dns_domain,
            &self.dns_computer,
        );
        let mut domains = config.domain_policy().clone();
        for d in &self.accepted_domains {
            domains = domains.with_domain(d.clone());
        }
        config
            .with_domain_policy(domains)
            .with_max_clock_skew(self.max_clock_skew)
            .with_extended_protection(self.extended_protection.into())
    }

    fn resolve(s: NtlmSection) -> Result<Self, ConfigError> {
        let d = Self::default();
        let out = Self {
            enabled: s.enabled.unwrap_or(d.enabled),
            netbios_domain: s.netbios_domain.unwrap_or(d.netbios_domain),
            netbios_computer: s.netbios_computer.unwrap_or(d.netbios_computer),
            dns_domain: s.dns_domain.unwrap_or(d.dns_domain),
            dns_computer: s.dns_computer.unwrap_or(d.dns_computer),
            accepted_domains: s.accepted_domains,
            max_clock_skew: match s.max_clock_skew_secs {
                None => d.max_clock_skew,
                Some(0) => return Err(invalid("ntlm.max_clock_skew_secs", "must be at least 1")),
                Some(n) => Duration::from_secs(n),
            },
            extended_protection: s.extended_protection.unwrap_or_default(),
        };
        let name_ok = |n: &str, max: usize| {
            !n.is_empty()
                && n.chars().count() <= max
                && !n
                    .chars()
                    .any(|c| c.is_control() || c == '\\' || c == '@' || c == ' ')
        };
        for (key, name, max) in [
            ("ntlm.netbios_domain", &out.netbios_domain, 15),
            ("ntlm.netbios_computer", &out.netbios_computer, 15),
            ("ntlm.dns_domain", &out.dns_domain, 255),
            ("ntlm.dns_computer", &out.dns_computer, 255),
        ] {
            if !name_ok(name, max) {
                return Err(invalid(
                    key,
                    format!("must be 1..={max} characters without spaces, '\\' or '@'"),
                ));
            }
        }
        if let Some(bad) = out.accepted_domains.iter().find(|d| !name_ok(d, 255)) {
            return Err(invalid(
                "ntlm.accepted_domains",
                format!("{bad:?} is not a domain name"),
            ));
        }
        Ok(out)
    }
}

/// A resolved limit setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Limit<T> {
    /// Use the protocol crate's documented default.
    #[default]
    Default,
    /// No limit.
    Unlimited,
    /// This value.
    Value(T),
}

/// Overrides a protocol crate's limit `field` (`None`: unlimited) with `setting`;
/// [`Limit::Default`] keeps the crate's value.
pub fn apply_limit<T>(field: &mut Option<T>, setting: Limit<T>) {
    match setting {
        Limit::Default => {}
        Limit::Unlimited => *field = None,
        Limit::Value(v) => *field = Some(v),
    }
}

/// Resolved POP3 settings (defaults left to `pop3_proto` where marked [`Limit::Default`] or
/// `None`).
#[derive(Debug, Clone, Default)]
pub struct Pop3Settings {
    /// Plain listener.
    pub listen: Option<SocketAddr>,
    /// Implicit-TLS listener.
    pub tls_listen: Option<SocketAddr>,
    /// Greeting text, `None` = protocol default.
    pub greeting: Option<String>,
    /// See [`Pop3Section::allow_clear_text_without_tls`].
    pub allow_clear_text_without_tls: bool,
    /// `None` = protocol default.
    pub max_command_size: Option<usize>,
    /// Pre-login timeout.
    pub pre_auth_timeout: Limit<Duration>,
    /// Post-login idle timeout.
    pub authenticated_timeout: Limit<Duration>,
    /// Bad command limit.
    pub max_bad_commands: Limit<u32>,
    /// Failed login limit.
    pub max_auth_failures: Limit<u32>,
    /// APOP offered.
    pub apop_enabled: bool,
    /// CAPA LOGIN-DELAY.
    pub login_delay: Option<Duration>,
    /// CAPA EXPIRE: `Some(None)` = NEVER, `Some(Some(d))` = days.
    pub expire: Option<Option<u32>>,
}

/// Resolved IMAP settings (defaults left to `cas_imap_proto` and the policy where marked
/// [`Limit::Default`] or `None`).
#[derive(Debug, Clone, Default)]
pub struct Imap4Settings {
    /// Plain listener.
    pub listen: Option<SocketAddr>,
    /// Implicit-TLS listener.
    pub tls_listen: Option<SocketAddr>,
    /// Greeting text, `None` = the policy's Banner or the protocol default.
    pub greeting: Option<String>,
    /// See [`ImapSection::allow_clear_text_without_tls`].
    pub allow_clear_text_without_tls: bool,
    /// `None` = the policy's MaxCommandSize.
    pub max_command_size: Option<usize>,
    /// `None` = the protocol default.
    pub append_limit: Option<u64>,
    /// Pre-login timeout.
    pub pre_auth_timeout: Limit<Duration>,
    /// Post-login idle timeout.
    pub authenticated_timeout: Limit<Duration>,
    /// IDLE timeout.
    pub idle_timeout: Limit<Duration>,
    /// Bad command limit.
    pub max_bad_commands: Limit<u32>,
    /// Failed login limit.
    pub max_auth_failures: Limit<u32>,
}

/// Resolved certificate and key paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPaths {
    /// Certificate chain, PEM.
    pub cert: PathBuf,
    /// Private key, PEM.
    pub key: PathBuf,
}

/// Where the server's files are, resolved against the data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// Data directory (absolute or relative to the working directory).
    pub data_dir: PathBuf,
    /// passwd-file.
    pub users_file: PathBuf,
    /// Maildir root.
    pub maildir_root: PathBuf,
    /// Client access policy file.
    pub policy_file: PathBuf,
    /// Protocol log root.
    pub log_dir: PathBuf,
}

/// Everything the server needs to start, after merging file, flags and defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Data directory (absolute or relative to the working directory).
    pub data_dir: PathBuf,
    /// passwd-file.
    pub users_file: PathBuf,
    /// Maildir root.
    pub maildir_root: PathBuf,
    /// Client access policy file (`policy.toml`).
    pub policy_file: PathBuf,
    /// Protocol log root (`logs`).
    pub log_dir: PathBuf,
    /// Protocol log rotation.
    pub log_rotation: crate::protolog::Rotation,
    /// TLS material, if any.
    pub tls: Option<TlsPaths>,
    /// POP3.
    pub pop3: Pop3Settings,
    /// IMAP.
    pub imap: Imap4Settings,
    /// NTLM.
    pub ntlm: NtlmSettings,
    /// The Outlook Anywhere HTTPS endpoint.
    pub outlook_anywhere: crate::rpc_proxy::EndpointSettings,
    /// The built-in RPC backend.
    pub rpc_backend: crate::rpc_backend::RpcBackendSettings,
    /// Autodiscover and autoconfig (listener ports filled in once bound).
    pub autodiscover: crate::autodiscover::AutodiscoverConfig,
    /// Where to report bound addresses.
    pub port_file: Option<PathBuf>,
    /// The config came from the data directory (not `--config`): demo hints are printed.
    pub from_data_dir: bool,
}

/// Configuration errors, worded for the admin.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has wrong keys/types.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// toml's explanation, with line and column.
        message: String,
    },
    /// A value is out of range or settings contradict each other.
    #[error("invalid setting {key}: {message}")]
    Invalid {
        /// Dotted key, e.g. `pop3.max_command_size`.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

impl FileConfig {
    /// Parses TOML text; `path` is only used in the error.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }
}

impl Cli {
    /// The config file to use, and whether it is the data directory's own one.
    pub fn config_path(&self) -> (PathBuf, bool) {
        match &self.config {
            Some(p) => (p.clone(), false),
            None => (self.default_data_dir().join(CONFIG_FILE_NAME), true),
        }
    }

    /// `--data-dir` or `./cas-data`.
    pub fn default_data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
    }
}

/// The file locations of `file` (read from `config_path`) and the flags; no validation of
/// listeners, so the admin commands can use it.
pub fn resolve_paths(cli: &Cli, file: &FileConfig, config_path: &Path) -> Paths {
    let config_dir = config_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let data_dir = match (&cli.data_dir, &file.server.data_dir) {
        (Some(d), _) => d.clone(),
        (None, Some(d)) => config_dir.join(d),
        (None, None) => config_dir.to_path_buf(),
    };
    let under = |p: &Option<PathBuf>, default: &str| {
        data_dir.join(p.as_deref().unwrap_or(Path::new(default)))
    };
    Paths {
        users_file: under(&file.server.users_file, "users"),
        maildir_root: under(&file.server.maildir_root, "maildir"),
        policy_file: under(&file.server.policy_file, "policy.toml"),
        log_dir: under(&file.server.log_dir, "logs"),
        data_dir,
    }
}

/// Merges `file` (read from `config_path`) with the flags and validates the result.
pub fn resolve(cli: &Cli, file: FileConfig, config_path: &Path) -> Result<Settings, ConfigError> {
    let Paths {
        data_dir,
        users_file,
        maildir_root,
        policy_file,
        log_dir,
    } = resolve_paths(cli, &file, config_path);
    let defaults = crate::protolog::Rotation::default();
    let log_rotation = crate::protolog::Rotation {
        max_file_size: file
            .server
            .log_max_file_size
            .unwrap_or(defaults.max_file_size),
        max_files: file.server.log_max_files.unwrap_or(defaults.max_files),
        roll_over: defaults.roll_over,
    };
    if log_rotation.max_file_size < 1024 {
        return Err(invalid(
            "server.log_max_file_size",
            "must be at least 1024 bytes",
        ));
    }

    let file_tls = file.tls.as_ref();
    let cert = cli
        .cert
        .clone()
        .or_else(|| file_tls.map(|t| data_dir.join(&t.cert)));
    let key = cli
        .key
        .clone()
        .or_else(|| file_tls.map(|t| data_dir.join(&t.key)));
    let tls = match (cert, key) {
        (Some(cert), Some(key)) => Some(TlsPaths { cert, key }),
        (None, None) => None,
        (Some(_), None) => return Err(invalid("tls.key", "a certificate needs a key (--key)")),
        (None, Some(_)) => return Err(invalid("tls.cert", "a key needs a certificate (--cert)")),
    };

    let p = file.pop3;
    let pop3 = Pop3Settings {
        listen: cli.pop3_listen.or(p.listen),
        tls_listen: cli.pop3s_listen.or(p.tls_listen),
        greeting: p.greeting,
        allow_clear_text_without_tls: cli.allow_plaintext_auth || p.allow_clear_text_without_tls,
        max_command_size: p.max_command_size,
        pre_auth_timeout: MailSection::Pop3.seconds(p.pre_auth_timeout_secs)?,
        authenticated_timeout: MailSection::Pop3.idle_seconds(p.authenticated_timeout_secs)?,
        max_bad_commands: MailSection::Pop3.bad_commands(p.max_bad_commands)?,
        max_auth_failures: MailSection::Pop3.auth_failures(p.max_auth_failures)?,
        apop_enabled: p.apop_enabled,
        login_delay: p.login_delay_secs.map(Duration::from_secs),
        expire: p.expire.map(|e| match e {
            ExpireValue::Days(d) => Some(d),
            ExpireValue::Word(WordNever::Never) => None,
        }),
    };

    let i = file.imap;
    let imap = Imap4Settings {
        listen: cli.imap_listen.or(i.listen),
        tls_listen: cli.imaps_listen.or(i.tls_listen),
        greeting: i.greeting,
        allow_clear_text_without_tls: cli.allow_plaintext_auth || i.allow_clear_text_without_tls,
        max_command_size: i.max_command_size,
        append_limit: i.append_limit,
        pre_auth_timeout: MailSection::Imap.seconds(i.pre_auth_timeout_secs)?,
        authenticated_timeout: MailSection::Imap.idle_seconds(i.authenticated_timeout_secs)?,
        idle_timeout: seconds(i.idle_timeout_secs, "imap.idle_timeout_secs")?,
        max_bad_commands: MailSection::Imap.bad_commands(i.max_bad_commands)?,
        max_auth_failures: MailSection::Imap.auth_failures(i.max_auth_failures)?,
    };

    let ntlm = NtlmSettings::resolve(file.ntlm)?;
    let rpc_backend = crate::rpc_backend::RpcBackendSettings::resolve(
        file.rpc_backend,
        &cli.rpc_backend_listen,
        &ntlm.dns_computer,
    )?;
    let autodiscover = crate::autodiscover::AutodiscoverConfig::resolve(file.autodiscover, &ntlm)
        .map_err(|e| invalid(e.key, e.message))?;
    let settings = Settings {
        data_dir,
        users_file,
        maildir_root,
        policy_file,
        log_dir,
        log_rotation,
        tls,
        pop3,
        imap,
        outlook_anywhere: crate::rpc_proxy::EndpointSettings::resolve(
            &file.outlook_anywhere,
            cli.https_listen,
            cli.http_listen,
        )
        .map_err(|e| invalid(e.key, e.message))?,
        ntlm,
        rpc_backend,
        autodiscover,
        port_file: cli.port_file.clone(),
        from_data_dir: cli.config.is_none(),
    };
    settings.validate()?;
    Ok(settings)
}

fn seconds(v: Option<LimitValue>, key: &'static str) -> Result<Limit<Duration>, ConfigError> {
    Ok(match v {
        None => Limit::Default,
        Some(LimitValue::Word(WordUnlimited::Unlimited)) => Limit::Unlimited,
        Some(LimitValue::Number(0)) => {
            return Err(invalid(key, "must be at least 1 (or \"unlimited\")"));
        }
        Some(LimitValue::Number(n)) => Limit::Value(Duration::from_secs(n)),
    })
}

fn count(v: Option<LimitValue>, key: &'static str) -> Result<Limit<u32>, ConfigError> {
    Ok(match v {
        None => Limit::Default,
        Some(LimitValue::Word(WordUnlimited::Unlimited)) => Limit::Unlimited,
        Some(LimitValue::Number(n)) => match u32::try_from(n) {
            Ok(0) | Err(_) => {
                return Err(invalid(
                    key,
                    "must be between 1 and 4294967295 (or \"unlimited\")",
                ));
            }
            Ok(n) => Limit::Value(n),
        },
    })
}

/// A mail protocol's section of the file (`[pop3]`, `[imap]`): the parsing and checks of
/// the settings they share, with the section's dotted keys in errors.
#[derive(Debug, Clone, Copy)]
enum MailSection {
    Pop3,
    Imap,
}

/// The dotted key `<section>.<field>` of a [`MailSection`], as a `&'static str`.
macro_rules! section_key {
    ($section:expr, $field:literal) => {
        match $section {
            MailSection::Pop3 => concat!("pop3.", $field),
            MailSection::Imap => concat!("imap.", $field),
        }
    };
}

impl MailSection {
    /// `pre_auth_timeout_secs`.
    fn seconds(self, v: Option<LimitValue>) -> Result<Limit<Duration>, ConfigError> {
        seconds(v, section_key!(self, "pre_auth_timeout_secs"))
    }

    /// `authenticated_timeout_secs`.
    fn idle_seconds(self, v: Option<LimitValue>) -> Result<Limit<Duration>, ConfigError> {
        seconds(v, section_key!(self, "authenticated_timeout_secs"))
    }

    /// `max_bad_commands`.
    fn bad_commands(self, v: Option<LimitValue>) -> Result<Limit<u32>, ConfigError> {
        count(v, section_key!(self, "max_bad_commands"))
    }

    /// `max_auth_failures`.
    fn auth_failures(self, v: Option<LimitValue>) -> Result<Limit<u32>, ConfigError> {
        count(v, section_key!(self, "max_auth_failures"))
    }

    /// Implicit TLS needs a certificate, and the two listeners differ.
    fn check_listeners(
        self,
        listen: Option<SocketAddr>,
        tls_listen: Option<SocketAddr>,
        tls_configured: bool,
    ) -> Result<(), ConfigError> {
        if tls_listen.is_some() && !tls_configured {
            return Err(invalid(
                section_key!(self, "tls_listen"),
                "implicit TLS needs a certificate: add a [tls] section or --cert/--key",
            ));
        }
        if let (Some(a), Some(b)) = (listen, tls_listen)
            && a == b
            && a.port() != 0
        {
            let message = match self {
                MailSection::Pop3 => "must differ from pop3.listen",
                MailSection::Imap => "must differ from imap.listen",
            };
            return Err(invalid(section_key!(self, "tls_listen"), message));
        }
        Ok(())
    }

    /// `max_command_size` within `low..=high` (Exchange's MaxCommandSize range).
    fn check_max_command_size(
        self,
        n: Option<usize>,
        low: usize,
        high: usize,
    ) -> Result<(), ConfigError> {
        match n {
            Some(n) if !(low..=high).contains(&n) => Err(invalid(
                section_key!(self, "max_command_size"),
                format!("{n} is outside {low}..={high} (Exchange MaxCommandSize range)"),
            )),
            _ => Ok(()),
        }
    }

    /// `greeting`: 1..=200 characters of printable text on one line (IMAP: not starting
    /// with `[`, which would read as a response code).
    fn check_greeting(self, greeting: Option<&str>) -> Result<(), ConfigError> {
        let Some(g) = greeting else {
            return Ok(());
        };
        let imap = matches!(self, MailSection::Imap);
        if g.is_empty()
            || g.len() > 200
            || g.chars().any(|c| c.is_control())
            || (imap && g.starts_with('['))
        {
            let message = if imap {
                "must be 1..=200 characters of printable text on one line, not starting \
                 with '['"
            } else {
                "must be 1..=200 characters of printable text on one line"
            };
            return Err(invalid(section_key!(self, "greeting"), message));
        }
        Ok(())
    }
}

impl Settings {
    /// Checks what the types cannot: ranges and combinations.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let p = &self.pop3;
        let i = &self.imap;
        if p.listen.is_none()
            && p.tls_listen.is_none()
            && i.listen.is_none()
            && i.tls_listen.is_none()
        {
            return Err(invalid(
                "pop3.listen",
                "no listener configured: set pop3.listen, pop3.tls_listen, imap.listen \
                 and/or imap.tls_listen",
            ));
        }
        self.validate_imap()?;
        let pop3 = MailSection::Pop3;
        pop3.check_listeners(p.listen, p.tls_listen, self.tls.is_some())?;
        pop3.check_max_command_size(p.max_command_size, 40, 1024)?;
        pop3.check_greeting(p.greeting.as_deref())?;
        if p.apop_enabled {
            return Err(invalid(
                "pop3.apop_enabled",
                "APOP needs clear-text passwords on the server; the passwd-file store keeps \
                 only argon2id and NT hashes",
            ));
        }
        Ok(())
    }

    fn validate_imap(&self) -> Result<(), ConfigError> {
        let i = &self.imap;
        let imap = MailSection::Imap;
        imap.check_listeners(i.listen, i.tls_listen, self.tls.is_some())?;
        let pop3 = [self.pop3.listen, self.pop3.tls_listen];
        for (key, addr) in [("imap.listen", i.listen), ("imap.tls_listen", i.tls_listen)] {
            if let Some(a) = addr
                && a.port() != 0
                && pop3.contains(&Some(a))
            {
                return Err(invalid(key, format!("{a} is already a POP3 listener")));
            }
        }
        let (low, high) = cas_policy::IMAP_MAX_COMMAND_SIZE_RANGE;
        imap.check_max_command_size(i.max_command_size, low as usize, high as usize)?;
        if i.append_limit == Some(0) {
            return Err(invalid("imap.append_limit", "must be at least 1 octet"));
        }
        if let Limit::Value(t) = i.authenticated_timeout
            && t < Duration::from_secs(30 * 60)
        {
            return Err(invalid(
                "imap.authenticated_timeout_secs",
                "must be at least 1800 (RFC 9051 §5.4 autologout timer)",
            ));
        }
        imap.check_greeting(i.greeting.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli() -> Cli {
        Cli::default()
    }

    fn parse(text: &str) -> Result<FileConfig, ConfigError> {
        FileConfig::parse(text, Path::new("/etc/cas/cas-server.toml"))
    }

    #[test]
    fn limits_override_only_when_set() {
        let mut field = Some(5u32);
        apply_limit(&mut field, Limit::Default);
        assert_eq!(field, Some(5));
        apply_limit(&mut field, Limit::Value(7));
        assert_eq!(field, Some(7));
        apply_limit(&mut field, Limit::Unlimited);
        assert_eq!(field, None);
    }

    #[test]
    fn full_file_resolves() {
        let file = parse(
            r#"
            [server]
            data_dir = "/srv/cas"
            users_file = "passwd"
            [tls]
            cert = "tls/c.pem"
            key = "/abs/k.pem"
            [pop3]
            listen = "127.0.0.1:110"
            tls_listen = "127.0.0.1:995"
            banner = "hello"
            max_command_size = 512
            pre_auth_timeout_secs = 30
            authenticated_timeout_secs = "unlimited"
            max_bad_commands = 5
            login_delay = 300
            expire = "never"
            "#,
        )
        .unwrap();
        let s = resolve(&cli(), file, Path::new("/etc/cas/cas-server.toml")).unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/srv/cas"));
        assert_eq!(s.users_file, PathBuf::from("/srv/cas/passwd"));
        assert_eq!(s.maildir_root, PathBuf::from("/srv/cas/maildir"));
        let tls = s.tls.unwrap();
        assert_eq!(tls.cert, PathBuf::from("/srv/cas/tls/c.pem"));
        assert_eq!(tls.key, PathBuf::from("/abs/k.pem"));
        assert_eq!(s.pop3.greeting.as_deref(), Some("hello"));
        assert_eq!(
            s.pop3.pre_auth_timeout,
            Limit::Value(Duration::from_secs(30))
        );
        assert_eq!(s.pop3.authenticated_timeout, Limit::Unlimited);
        assert_eq!(s.pop3.max_bad_commands, Limit::Value(5));
        assert_eq!(s.pop3.max_auth_failures, Limit::Default);
        assert_eq!(s.pop3.expire, Some(None));
        assert_eq!(s.pop3.login_delay, Some(Duration::from_secs(300)));
        assert!(!s.pop3.allow_clear_text_without_tls);
    }

    #[test]
    fn flags_override_file() {
        let file = parse("[pop3]\nlisten = \"127.0.0.1:110\"\n").unwrap();
        let c = Cli {
            data_dir: Some("/tmp/d".into()),
            pop3_listen: Some("127.0.0.1:0".parse().unwrap()),
            pop3s_listen: Some("127.0.0.1:0".parse().unwrap()),
            cert: Some("/c.pem".into()),
            key: Some("/k.pem".into()),
            allow_plaintext_auth: true,
            ..Cli::default()
        };
        let s = resolve(&c, file, Path::new("x.toml")).unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/tmp/d"));
        assert_eq!(s.pop3.listen, Some("127.0.0.1:0".parse().unwrap()));
        assert!(s.pop3.allow_clear_text_without_tls);
        assert_eq!(s.tls.unwrap().cert, PathBuf::from("/c.pem"));
    }

    #[test]
    fn relative_data_dir_follows_config_file() {
        let file = parse("[pop3]\nlisten = \"127.0.0.1:110\"\n").unwrap();
        let s = resolve(&cli(), file, Path::new("conf/cas-server.toml")).unwrap();
        assert_eq!(s.users_file, PathBuf::from("conf/users"));
        let file = parse("[pop3]\nlisten = \"127.0.0.1:110\"\n").unwrap();
        let s = resolve(&cli(), file, Path::new("cas-server.toml")).unwrap();
        assert_eq!(s.users_file, PathBuf::from("./users"));
    }

    #[test]
    fn shared_settings_name_their_section() {
        let key = |text: &str| match resolve(&cli(), parse(text).unwrap(), Path::new("c.toml")) {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("expected an invalid setting, got {other:?}"),
        };
        for section in ["pop3", "imap"] {
            let head = format!("[{section}]\nlisten = \"127.0.0.1:1\"\n");
            for (line, field) in [
                ("pre_auth_timeout_secs = 0", "pre_auth_timeout_secs"),
                (
                    "authenticated_timeout_secs = 0",
                    "authenticated_timeout_secs",
                ),
                ("max_bad_commands = 0", "max_bad_commands"),
                ("max_auth_failures = 0", "max_auth_failures"),
                ("max_command_size = 20000", "max_command_size"),
                ("greeting = \"\"", "greeting"),
                ("tls_listen = \"127.0.0.1:2\"", "tls_listen"),
            ] {
                assert_eq!(
                    key(&format!("{head}{line}\n")),
                    format!("{section}.{field}")
                );
            }
        }
        // A response-code-like greeting is for IMAP only a problem.
        let bracket = "greeting = \"[x] hello\"\n";
        assert!(
            resolve(
                &cli(),
                parse(&format!("[pop3]\nlisten = \"127.0.0.1:1\"\n{bracket}")).unwrap(),
                Path::new("c.toml")
            )
            .is_ok()
        );
        assert_eq!(
            key(&format!("[imap]\nlisten = \"127.0.0.1:1\"\n{bracket}")),
            "imap.greeting"
        );
    }

    #[test]
    fn errors_are_clear() {
        let err = |text: &str| {
            let file = parse(text)?;
            resolve(&cli(), file, Path::new("c.toml")).map(|_| ())
        };
        let msg = |text: &str| err(text).unwrap_err().to_string();
        assert!(msg("[pop3]\nlisten = \"nonsense\"\n").contains("invalid config file"));
        assert!(msg("[pop3]\nlistn = \"127.0.0.1:1\"\n").contains("unknown field"));
        assert!(msg("").contains("no listener"));
        assert!(msg("[pop3]\ntls_listen = \"127.0.0.1:1\"\n").contains("certificate"));
        assert!(
            msg("[pop3]\nlisten = \"127.0.0.1:1\"\nmax_command_size = 39\n").contains("40..=1024")
        );
        assert!(
            msg("[pop3]\nlisten = \"127.0.0.1:1\"\npre_auth_timeout_secs = 0\n")
                .contains("pre_auth_timeout_secs")
        );
        assert!(
            msg("[pop3]\nlisten = \"127.0.0.1:1\"\nmax_auth_failures = \"lots\"\n")
                .contains("invalid config file")
        );
        assert!(msg("[pop3]\nlisten = \"127.0.0.1:1\"\napop_enabled = true\n").contains("APOP"));
        assert!(msg("[tls]\ncert = \"c\"\n").contains("key"));
        assert!(err("[pop3]\nlisten = \"127.0.0.1:1\"\nexpire = 30\n").is_ok());
        assert!(
            msg("[pop3]\nlisten = \"127.0.0.1:1\"\n[ntlm]\nnetbios_domain = \"A-NAME-LONGER-THAN-15\"\n")
                .contains("ntlm.netbios_domain")
        );
        assert!(
            msg("[pop3]\nlisten = \"127.0.0.1:1\"\n[ntlm]\naccepted_domains = [\"a\\\\b\"]\n")
                .contains("ntlm.accepted_domains")
        );
        assert!(
            msg("[pop3]\nlisten = \"127.0.0.1:1\"\n[ntlm]\nextended_protection = \"maybe\"\n")
                .contains("invalid config file")
        );
    }

    #[test]
    fn imap_section() {
        let file = parse(
            r#"
            [tls]
            cert = "c.pem"
            key = "k.pem"
            [imap]
            listen = "127.0.0.1:143"
            tls_listen = "127.0.0.1:993"
            banner = "IMAP here"
            max_command_size = 2048
            append_limit = 1048576
            pre_auth_timeout_secs = 20
            authenticated_timeout_secs = 1800
            idle_timeout_secs = "unlimited"
            max_bad_commands = 4
            "#,
        )
        .unwrap();
        let s = resolve(&cli(), file, Path::new("c.toml")).unwrap();
        assert_eq!(s.pop3.listen, None);
        assert_eq!(s.imap.listen, Some("127.0.0.1:143".parse().unwrap()));
        assert_eq!(s.imap.tls_listen, Some("127.0.0.1:993".parse().unwrap()));
        assert_eq!(s.imap.greeting.as_deref(), Some("IMAP here"));
        assert_eq!(s.imap.max_command_size, Some(2048));
        assert_eq!(s.imap.append_limit, Some(1_048_576));
        assert_eq!(
            s.imap.pre_auth_timeout,
            Limit::Value(Duration::from_secs(20))
        );
        assert_eq!(s.imap.idle_timeout, Limit::Unlimited);
        assert_eq!(s.imap.max_bad_commands, Limit::Value(4));
        assert_eq!(s.imap.max_auth_failures, Limit::Default);
        assert!(!s.imap.allow_clear_text_without_tls);

        let c = Cli {
            imap_listen: Some("127.0.0.1:0".parse().unwrap()),
            imaps_listen: Some("127.0.0.1:0".parse().unwrap()),
            cert: Some("/c.pem".into()),
            key: Some("/k.pem".into()),
            allow_plaintext_auth: true,
            ..Cli::default()
        };
        let s = resolve(&c, parse("").unwrap(), Path::new("c.toml")).unwrap();
        assert_eq!(s.imap.listen, Some("127.0.0.1:0".parse().unwrap()));
        assert!(s.imap.allow_clear_text_without_tls);
    }

    #[test]
    fn imap_errors_are_clear() {
        let msg = |text: &str| {
            parse(text)
                .and_then(|file| resolve(&cli(), file, Path::new("c.toml")))
                .unwrap_err()
                .to_string()
        };
        assert!(msg("[imap]\ntls_listen = \"127.0.0.1:1\"\n").contains("imap.tls_listen"));
        assert!(
            msg("[imap]\nlisten = \"127.0.0.1:1\"\nmax_command_size = 100\n")
                .contains("1024..=16384")
        );
        assert!(
            msg("[imap]\nlisten = \"127.0.0.1:1\"\nauthenticated_timeout_secs = 5\n")
                .contains("RFC 9051")
        );
        assert!(
            msg("[imap]\nlisten = \"127.0.0.1:1\"\nappend_limit = 0\n").contains("append_limit")
        );
        assert!(
            msg("[imap]\nlisten = \"127.0.0.1:1\"\ngreeting = \"[ALERT] hi\"\n")
                .contains("imap.greeting")
        );
        assert!(
            msg("[pop3]\nlisten = \"127.0.0.1:7\"\n[imap]\nlisten = \"127.0.0.1:7\"\n")
                .contains("already a POP3 listener")
        );
        assert!(msg("[imap]\nlistn = \"127.0.0.1:1\"\n").contains("unknown field"));
    }

    #[test]
    fn ntlm_section() {
        let file = parse("[pop3]\nlisten = \"127.0.0.1:1\"\n").unwrap();
        let s = resolve(&cli(), file, Path::new("c.toml")).unwrap();
        assert_eq!(s.ntlm, NtlmSettings::default());
        assert!(s.ntlm.enabled);
        let file = parse(
            r#"
            [pop3]
            listen = "127.0.0.1:1"
            [ntlm]
            enabled = false
            netbios_domain = "CORP"
            dns_domain = "corp.example"
            accepted_domains = ["OLDCORP"]
            max_clock_skew_secs = 300
            extended_protection = "require"
            "#,
        )
        .unwrap();
        let s = resolve(&cli(), file, Path::new("c.toml")).unwrap();
        assert!(!s.ntlm.enabled);
        assert_eq!(s.ntlm.max_clock_skew, Duration::from_secs(300));
        let config = s.ntlm.acceptor_config();
        let policy = config.domain_policy();
        assert!(
            policy.accepts("corp") && policy.accepts("oldcorp") && policy.accepts("CAS-SERVER")
        );
        assert!(!policy.accepts("EVIL"));
        assert_eq!(
            config.extended_protection(),
            cas_auth::channel_binding::ExtendedProtection::Require
        );
    }
}
