//! The embedded default: a demo data directory made on first run.
//!
//! ```text
//! <data-dir>/cas-server.toml      the config, commented
//! <data-dir>/users                passwd-file: alice, bob (argon2id + NT hash)
//! <data-dir>/credentials.txt      their generated passwords, `user:password` (mode 0600)
//! <data-dir>/policy.toml          client access policy: Exchange defaults, alice in OU
//!                                 corp/sales, bob in corp/engineering
//! <data-dir>/maildir/<user>/      Maildir with sample messages in cur/, and IMAP folders
//!                                 (.Sent, .Drafts, .Trash, .Junk, .Archive, .Archive.2025)
//! <data-dir>/tls/cert.pem         self-signed certificate for localhost and 127.0.0.1
//! <data-dir>/tls/key.pem          its key (mode 0600)
//! ```
//!
//! Every piece is made only when missing, the config file last: the server calls
//! [`ensure_demo_data`] only while `<data-dir>/cas-server.toml` does not exist, so later runs
//! reuse the directory as it is (and an admin may replace any piece by hand), while a first
//! run that was interrupted is completed by the next one.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use crate::config::CONFIG_FILE_NAME;
use crate::maildir::create_maildir;

/// The demo users.
pub const DEMO_USERS: [&str; 2] = ["alice", "bob"];
/// Name of the plaintext demo password file inside the data directory.
pub const CREDENTIALS_FILE: &str = "credentials.txt";
const PASSWORD_LEN: usize = 16;

/// Errors while making the demo data.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// File system trouble.
    #[error("cannot create demo data in {dir}: {source}")]
    Io {
        /// The data directory.
        dir: String,
        /// Why.
        source: io::Error,
    },
    /// Password hashing failed.
    #[error("cannot hash demo password: {0}")]
    Hash(String),
    /// Certificate generation failed.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The OS random generator failed.
    #[error("no randomness: {0}")]
    Random(getrandom::Error),
}

/// What [`ensure_demo_data`] made.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Created {
    /// The config file.
    pub config: bool,
    /// Users, credentials and their Maildirs.
    pub users: bool,
    /// Certificate and key.
    pub certificate: bool,
    /// The client access policy.
    pub policy: bool,
}

/// Makes whatever part of the demo data directory is missing.
pub fn ensure_demo_data(data_dir: &Path) -> Result<Created, DemoError> {
    let io_err = |source| DemoError::Io {
        dir: data_dir.display().to_string(),
        source,
    };
    let mut created = Created::default();
    fs::create_dir_all(data_dir).map_err(io_err)?;

    let users = data_dir.join("users");
    if !users.exists() {
        let mut passwd = String::from(
            "# cas-server users: name:argon2id-PHC-string[:nt=<NT hash, 32 hex>]\n\
             # Demo passwords are in credentials.txt. Add users with hashes made by\n\
             # cas_auth::hash_password; lines starting with # are comments.\n",
        );
        let mut plain = String::from("# Demo passwords (user:password). Delete once noted.\n");
        for user in DEMO_USERS {
            let password = random_password()?;
            let mut salt = [0u8; 16];
            getrandom::getrandom(&mut salt).map_err(DemoError::Random)?;
            let phc = cas_auth::hash_password(password.as_bytes(), &salt)
                .map_err(|e| DemoError::Hash(e.to_string()))?;
            let nt = cas_auth::nt_hash_of(&password);
            let line = cas_auth::FileCredentialStore::render_line(user, &phc, Some(nt))
                .map_err(|e| DemoError::Hash(e.to_string()))?;
            passwd.push_str(&line);
            passwd.push('\n');
            let _ = writeln!(plain, "{user}:{password}");
            let maildir = data_dir.join("maildir").join(user);
            create_maildir(&maildir).map_err(io_err)?;
            write_samples(&maildir.join("cur"), user).map_err(io_err)?;
            // IMAP folders (Sent, Drafts, Trash, Junk, Archive) with some sample mail.
            crate::imap_store::demo::populate_demo_folders(
                &data_dir.join("maildir"),
                user,
                &sample_messages(user),
            )
            .map_err(|e| io_err(io::Error::other(e.to_string())))?;
        }
        write_new(&data_dir.join(CREDENTIALS_FILE), plain.as_bytes(), true).map_err(io_err)?;
        // The users file last: its presence means the rest is complete.
        write_new(&users, passwd.as_bytes(), true).map_err(io_err)?;
        created.users = true;
    }

    let tls = data_dir.join("tls");
    let (cert, key) = (tls.join("cert.pem"), tls.join("key.pem"));
    if !cert.exists() || !key.exists() {
        fs::create_dir_all(&tls).map_err(io_err)?;
        let (cert_pem, key_pem) = crate::tls::generate_self_signed()?;
        write_new(&key, key_pem.as_bytes(), true).map_err(io_err)?;
        write_new(&cert, cert_pem.as_bytes(), false).map_err(io_err)?;
        created.certificate = true;
    }

    let policy = data_dir.join("policy.toml");
    if !policy.exists() {
        write_new(&policy, demo_policy().as_bytes(), false).map_err(io_err)?;
        created.policy = true;
    }

    // The config last: once it exists, later runs use the directory as it is.
    let config = data_dir.join(CONFIG_FILE_NAME);
    if !config.exists() {
        write_new(&config, DEMO_CONFIG.as_bytes(), false).map_err(io_err)?;
        created.config = true;
    }
    Ok(created)
}

/// The demo users' organizational units.
pub const DEMO_OUS: [(&str, &str); 2] = [("alice", "corp/sales"), ("bob", "corp/engineering")];

/// The RPC backends the demo's Outlook Anywhere proxy may reach: this machine only, by the
/// names a client may use for it (impacket, given no server name, uses the NetBIOS computer
/// name from the NTLM challenge), on Exchange's RPC ports and the endpoint mapper: the
/// library default (`localhost`, `127.0.0.1`) plus the NetBIOS name.
pub const DEMO_VALID_PORTS: [&str; 6] = [
    "localhost:6001-6004",
    "localhost:593",
    "127.0.0.1:6001-6004",
    "127.0.0.1:593",
    "CAS-SERVER:6001-6004",
    "CAS-SERVER:593",
];

/// The demo policy: Exchange's defaults, with the demo users in their OUs and Outlook
/// Anywhere's `ValidPorts` limited to this machine ([`DEMO_VALID_PORTS`]).
pub fn demo_policy() -> String {
    let mut config = cas_policy::PolicyConfig::default();
    config.outlook_anywhere.valid_ports = DEMO_VALID_PORTS
        .iter()
        .map(|p| cas_policy::RpcPortRange::parse(p).expect("demo ValidPorts entries are valid"))
        .collect();
    for (user, ou) in DEMO_OUS {
        let ou = ou.parse().expect("demo OU names are valid");
        config
            .add_mailbox(user, Some(ou))
            .expect("demo user names are valid and distinct");
    }
    format!(
        "# cas-server client access policy (Exchange vocabulary), generated on first run.\n\
         # Change it with `cas-server set-casmailbox alice --pop-enabled false`,\n\
         # `cas-server set-popsettings --login-type PlainTextLogin`, ... or by hand; the server\n\
         # reloads it within ~2 s of a change, or at once on SIGHUP.\n\n{}",
        config.to_toml_string()
    )
}

/// Reads `user:password` lines from `<data_dir>/credentials.txt`, if it exists.
pub fn read_credentials(data_dir: &Path) -> Vec<(String, String)> {
    fs::read_to_string(data_dir.join(CREDENTIALS_FILE))
        .map(|text| {
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| l.split_once(':'))
                .map(|(u, p)| (u.to_owned(), p.trim().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// 16 ASCII letters and digits from the OS generator (about 95 bits).
pub(crate) fn random_password() -> Result<String, DemoError> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(PASSWORD_LEN);
    let mut buf = [0u8; 64];
    while out.len() < PASSWORD_LEN {
        getrandom::getrandom(&mut buf).map_err(DemoError::Random)?;
        // Rejection sampling keeps every character equally likely: 248 = 4 * 62.
        for &b in buf.iter().filter(|&&b| b < 248) {
            if out.len() < PASSWORD_LEN {
                out.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
            }
        }
    }
    Ok(out)
}

/// Creates `path` (failing if it exists), private to the owner when `private`.
fn write_new(path: &Path, data: &[u8], private: bool) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path)?;
    file.write_all(data)?;
    file.sync_all()
}

/// Stores the sample messages in `cur/` (already delivered, no flags), oldest first, with
/// Maildir-style unique names. Being in `cur/` already, their file names never change, which
/// lets black-box tests compare the Maildir before and after a session; mail that another
/// program delivers into `new/` is moved to `cur/` at the next login.
fn write_samples(cur: &Path, user: &str) -> io::Result<()> {
    for (i, message) in sample_messages(user).iter().enumerate() {
        let name = format!("{}.M{i}P0.cas-demo:2,", 1_763_884_800 + i as u64 * 3600);
        write_new(&cur.join(name), message, false)?;
    }
    Ok(())
}

/// The sample mail: plain text, MIME multipart, a ~2 MB message, dot-stuffing cases, a
/// message without a final line end, and one stored with CRLF line ends.
pub fn sample_messages(user: &str) -> Vec<Vec<u8>> {
    let to = format!("{user}@example.test");
    let head = |n: u32, from: &str, subject: &str, extra: &str| {
        format!(
            "Return-Path: <{from}>\n\
             From: {from}\n\
             To: {to}\n\
             Subject: {subject}\n\
             Date: Sun, 23 Nov 2025 0{n}:00:00 +0000\n\
             Message-ID: <demo-{n}.{user}@example.test>\n\
             MIME-Version: 1.0\n{extra}"
        )
    };
    let mut messages = Vec::new();

    messages.push(
        format!(
            "{}Content-Type: text/plain; charset=utf-8\n\n\
             Hello {user},\n\n\
             this mailbox was created by cas-server's first run. Fetch it with any POP3\n\
             client over POP3S (port 1995) or POP3 with STLS (port 1110).\n\n\
             -- \ncas-rs\n",
            head(1, "postmaster@example.test", "Welcome to cas-server", "")
        )
        .into_bytes(),
    );

    messages.push(
        format!(
            "{}Content-Type: multipart/mixed; boundary=\"=-outer-7f3a\"\n\n\
             This is a multi-part message in MIME format.\n\n\
             --=-outer-7f3a\n\
             Content-Type: multipart/alternative; boundary=\"=-inner-19c2\"\n\n\
             --=-inner-19c2\n\
             Content-Type: text/plain; charset=utf-8\n\
             Content-Transfer-Encoding: quoted-printable\n\n\
             Agenda for Monday:=0A1. Caf=C3=A9 budget=0A2. Server move\n\n\
             --=-inner-19c2\n\
             Content-Type: text/html; charset=utf-8\n\n\
             <html><body><h1>Agenda</h1><ol><li>Caf&eacute; budget</li>\
             <li>Server move</li></ol></body></html>\n\n\
             --=-inner-19c2--\n\n\
             --=-outer-7f3a\n\
             Content-Type: text/csv; name=\"budget.csv\"\n\
             Content-Disposition: attachment; filename=\"budget.csv\"\n\
             Content-Transfer-Encoding: base64\n\n\
             aXRlbSxhbW91bnQKY29mZmVlLDEyMC41MAptaWxrLDE4LjIwCg==\n\n\
             --=-outer-7f3a--\n",
            head(2, "carol@example.test", "Agenda and budget (MIME)", "")
        )
        .into_bytes(),
    );

    // ~2 MB: a base64 "attachment" of deterministic pseudo-random bytes, 76-char lines.
    let mut big = head(
        3,
        "reports@example.test",
        "Quarterly archive (large message)",
        "Content-Type: multipart/mixed; boundary=\"=-big-0001\"\n",
    );
    big.push_str(
        "\n--=-big-0001\nContent-Type: text/plain\n\nThe archive is attached.\n\n\
         --=-big-0001\nContent-Type: application/octet-stream; name=\"archive.bin\"\n\
         Content-Disposition: attachment; filename=\"archive.bin\"\n\
         Content-Transfer-Encoding: base64\n\n",
    );
    let mut state: u32 = 0x9E37_79B9;
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for _ in 0..27_000 {
        for _ in 0..76 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            big.push(char::from(B64[(state % 64) as usize]));
        }
        big.push('\n');
    }
    big.push_str("--=-big-0001--\n");
    messages.push(big.into_bytes());

    messages.push(
        format!(
            "{}Content-Type: text/plain\n\n\
             Lines below start with dots, which POP3 must dot-stuff:\n\
             .single dot at the start\n\
             ..two dots at the start\n\
             .\n\
             (the line above is a lone dot; the next is two dots)\n\
             ..\n\
             ...three\n\
             end.\n",
            head(4, "dots@example.test", "Dots at line starts", "")
        )
        .into_bytes(),
    );

    messages.push(
        format!(
            "{}Content-Type: text/plain\n\n\
             This message has no line end after its last line.",
            head(5, "editor@example.test", "No final newline", "")
        )
        .into_bytes(),
    );

    messages.push(
        format!(
            "{}Content-Type: text/plain\n\n\
             This message is stored with CRLF line ends.\n\
             Its POP3 size equals its file size.\n",
            head(6, "windows@example.test", "Stored with CRLF", "")
        )
        .replace('\n', "\r\n")
        .into_bytes(),
    );

    messages
}

/// The generated config file. `[ntlm]` stays the last section: the black-box tests append
/// `[ntlm]` keys to the end of the file.
const DEMO_CONFIG: &str = r#"# cas-server configuration (TOML), generated on first run.
# Relative paths resolve against server.data_dir, which defaults to this file's directory.
# Command-line flags override this file; see `cas-server --help`.

[server]
# data_dir = "."
users_file = "users"         # passwd-file: name:$argon2id$...[:nt=<32 hex>]
maildir_root = "maildir"     # one Maildir per user: maildir/<user>/{cur,new,tmp}
policy_file = "policy.toml"  # client access policy (Set-CASMailbox, Set-PopSettings, ...)
log_dir = "logs"             # protocol logs (Pop/ImapSettings.ProtocolLogEnabled): logs/pop3/, logs/imap4/
# log_max_file_size = 10485760   # bytes per protocol log file before rotation
# log_max_files = 10             # rotated files kept per protocol

[tls]
cert = "tls/cert.pem"        # self-signed for localhost and 127.0.0.1
key = "tls/key.pem"

[pop3]
listen = "127.0.0.1:1110"        # POP3 with STLS; remove to disable
tls_listen = "127.0.0.1:1995"    # POP3S, implicit TLS (RFC 8314); remove to disable
# The Exchange settings (Banner, LoginType, MaxCommandSize, timeouts, connection limits,
# MIME format...) live in policy.toml: `cas-server get-popsettings` / `set-popsettings`.
# The keys below, when set, override policy.toml (kept for older data directories).
# greeting = "cas-rs POP3 server ready"
# true forces clear-text logins before TLS on, whatever LoginType says.
allow_clear_text_without_tls = false
# max_command_size = 512             # octets, 40..=1024 (Exchange MaxCommandSize)
# pre_auth_timeout_secs = 60         # or "unlimited"
# authenticated_timeout_secs = 1800  # or "unlimited"
# max_bad_commands = 10              # or "unlimited"
# max_auth_failures = 3              # or "unlimited"
# login_delay_secs = 0               # CAPA LOGIN-DELAY
# expire = "never"                   # CAPA EXPIRE: days or "never"
apop_enabled = false                 # needs clear-text passwords: unsupported here

[imap]
listen = "127.0.0.1:1143"        # IMAP with STARTTLS; remove to disable
tls_listen = "127.0.0.1:1993"    # IMAPS, implicit TLS (RFC 8314); remove to disable
# The Exchange settings (Banner, LoginType, MaxCommandSize, timeouts, connection limits,
# ProtocolLogEnabled...) live in policy.toml: `cas-server get-imapsettings` /
# `set-imapsettings`. The keys below, when set, override policy.toml.
# greeting = "cas-rs IMAP server ready"
# true forces clear-text logins (LOGIN, AUTHENTICATE PLAIN/LOGIN) before TLS on.
allow_clear_text_without_tls = false
# max_command_size = 10240           # octets, 1024..=16384 (Exchange MaxCommandSize)
# append_limit = 26214400            # largest APPEND in octets (APPENDLIMIT=)
# pre_auth_timeout_secs = 60         # or "unlimited"
# authenticated_timeout_secs = 1800  # at least 1800 (RFC 9051), or "unlimited"
# idle_timeout_secs = 1800           # longest IDLE without client traffic, or "unlimited"
# max_bad_commands = 10              # or "unlimited"
# max_auth_failures = 3              # or "unlimited"

[outlook_anywhere]
# The HTTPS endpoint: RPC over HTTP proxy https://localhost:8443/rpc/rpcproxy.dll and
# autodiscover. The Exchange settings (Enabled, host names, authentication methods,
# SSLOffloading, ValidPorts) live in policy.toml: `cas-server get-outlookanywhere`.
https_listen = "127.0.0.1:8443"
# http_listen = "127.0.0.1:8080"      # plain HTTP behind a TLS terminator (needs SSLOffloading)
# max_request_head_bytes = 16384      # http.sys MaxRequestBytes default
# max_request_headers = 64
# max_request_body_bytes = 65536      # autodiscover request bodies
# idle_timeout_secs = 120             # IIS connectionTimeout default
# backend_connect_timeout_secs = 10
# max_connections = 4096
# tls13_session_tickets = false       # on: TLS 1.3 resumption, but Samba's ncacn_http client stalls
[rpc_backend]
# The built-in RPC server behind the Outlook Anywhere proxy: the DCE/RPC management
# interface (mgmt) on Exchange's RPC ports, reachable through the proxy as
# `localhost[6001]` (policy.toml's OutlookAnywhere.ValidPorts allows localhost,
# 127.0.0.1 and CAS-SERVER on 6001-6004 and 593). It
# greets with `ncacn_http/1.0`; RPC-level NTLM uses the [ntlm] settings and the users file.
listen = ["127.0.0.1:6001", "127.0.0.1:6002", "127.0.0.1:6004"]
# principal_name = "localhost"       # what mgmt inq_princ_name returns (default: dns_computer)
# require_auth_level = "none"        # or "connect", "integrity", "privacy"
# max_frag = 5840                    # largest fragment, 1432..=65535
# receive_window = 65536             # RPC over HTTP receive window, 8192..=262144

[autodiscover]
# Outlook Autodiscover (POST /autodiscover/autodiscover.xml) and Thunderbird autoconfig
# (GET /.well-known/autoconfig/mail/config-v1.1.xml) on the Outlook Anywhere listener.
# Host names, ports and auth methods come from the listeners and policy.toml's
# [OutlookAnywhere]; a user's display name and address from the users file fields
# display_name= and email=.
# email_domain = "localhost"         # users' addresses are user@email_domain (default: ntlm.dns_domain)
# accepted_email_domains = []        # alias domains of the same users
# server_name = "localhost"          # host clients use when ExternalHostname is unset (default: ntlm.dns_computer)
# organization = "First Organization" # Exchange organization in LegacyDN / ServerDN
# deployment_id = "..."              # GUID; default derived from organization and email_domain
# smtp_hostname = "localhost"        # SMTP submission relay for autoconfig (cas-server serves none)
# smtp_port = 587
# smtp_socket_type = "STARTTLS"      # or "SSL", "plain"

[ntlm]
# POP3 AUTH NTLM and IMAP AUTHENTICATE NTLM (offered before TLS too: NTLM never sends the password) and HTTP NTLM /
# Negotiate. NTLMv2 only. A user can log in with NTLM only if the users file holds an
# `nt=` hash for them. An NT hash is password-equivalent for NTLM (whoever reads it can log
# in as the user without knowing the password): keep one only for users who need NTLM, and
# protect the users file like a password file.
enabled = true
# Names sent in the CHALLENGE's target info (NetBIOS names: up to 15 characters).
# netbios_domain = "CAS"             # also the default domain of bare user names
# netbios_computer = "CAS-SERVER"
# dns_domain = "localhost"
# dns_computer = "localhost"
# `DOMAIN\user` and `user@domain` map to the local `user` when the domain is one of the
# four names above or listed here; any other domain is refused.
# accepted_domains = ["EXAMPLE"]
# max_clock_skew_secs = 129600       # NTLMv2 timestamp window (36 h, as Windows)
# Channel bindings (Extended Protection) on TLS connections: "none", "allow", "require".
# The binding is the tls-server-end-point hash of the certificate above.
# extended_protection = "none"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_alphanumeric() {
        let p = random_password().unwrap();
        assert_eq!(p.len(), PASSWORD_LEN);
        assert!(p.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(p, random_password().unwrap());
    }

    #[test]
    fn demo_config_parses() {
        let file =
            crate::config::FileConfig::parse(DEMO_CONFIG, Path::new("cas-server.toml")).unwrap();
        let s = crate::config::resolve(
            &crate::config::Cli::default(),
            file,
            Path::new("d/cas-server.toml"),
        )
        .unwrap();
        assert_eq!(s.users_file, Path::new("d/users"));
        assert!(s.tls.is_some());
        assert_eq!(s.imap.listen, Some("127.0.0.1:1143".parse().unwrap()));
        assert_eq!(s.imap.tls_listen, Some("127.0.0.1:1993".parse().unwrap()));
    }

    #[test]
    fn demo_directory_is_complete_and_reused() {
        use cas_auth::CredentialStore;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let created = ensure_demo_data(&dir).unwrap();
        assert!(created.config && created.users && created.certificate && created.policy);
        let policy = cas_policy::PolicyConfig::from_toml_str(
            &fs::read_to_string(dir.join("policy.toml")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            policy
                .mailbox("alice")
                .unwrap()
                .organizational_unit
                .as_ref()
                .unwrap()
                .as_str(),
            "corp/sales"
        );
        let creds = read_credentials(&dir);
        assert_eq!(creds.len(), 2);
        assert_eq!(creds[0].0, "alice");
        let store =
            cas_auth::FileCredentialStore::parse(&fs::read_to_string(dir.join("users")).unwrap())
                .unwrap();
        assert!(
            store
                .verify_password("alice", creds[0].1.as_bytes())
                .unwrap()
        );
        assert!(store.nt_hash("bob").unwrap().is_some());
        for user in DEMO_USERS {
            let cur = dir.join("maildir").join(user).join("cur");
            assert_eq!(
                fs::read_dir(cur).unwrap().count(),
                sample_messages(user).len()
            );
        }
        #[cfg(unix)]
        for private in ["credentials.txt", "users", "tls/key.pem"] {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.join(private))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{private} is readable by others");
        }
        crate::tls::load_acceptor(&dir.join("tls/cert.pem"), &dir.join("tls/key.pem")).unwrap();
        // A second run keeps everything.
        assert_eq!(ensure_demo_data(&dir).unwrap(), Created::default());
        assert_eq!(read_credentials(&dir), creds);
    }

    #[test]
    fn samples_cover_the_cases() {
        let m = sample_messages("alice");
        assert!(m.iter().all(|m| m.windows(9).any(|w| w == b"Subject: ")));
        assert!(m.iter().any(|m| m.len() > 2_000_000));
        assert!(m.iter().any(|m| m.last() != Some(&b'\n')));
        assert!(m.iter().any(|m| m.windows(4).any(|w| w == b"\n..\n")));
    }
}
