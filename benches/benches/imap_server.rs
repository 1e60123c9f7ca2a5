//! End-to-end IMAP serving benches over loopback: the real `cas-server` binary side by side
//! with Dovecot (the peer), both serving the same Maildir content to the same small blocking
//! client.
//!
//! Each group is one workload; its functions are `cas-server` and `dovecot`:
//!
//! - `imap_server/login_select_logout`: connect, greeting, `LOGIN`, `SELECT INBOX`, `LOGOUT`
//!   (until the server closes), a new connection per iteration; `imaps_login_select_logout`
//!   is the same over implicit TLS (the handshake included).
//! - `imap_server/uid_fetch_flags`: `UID FETCH 1:* (FLAGS UID RFC822.SIZE)` in a selected
//!   session.
//! - `imap_server/fetch_envelope_bodystructure`: `FETCH 1:* (ENVELOPE BODYSTRUCTURE)`.
//! - `imap_server/fetch_body_1_100`: `FETCH 1:100 BODY.PEEK[]`, as bytes of response per
//!   second; `imaps_fetch_body_1_100` is the same over implicit TLS.
//! - `imap_server/uid_search_text`: `UID SEARCH TEXT "zephyrine"` (a body word in one
//!   message of 37).
//!
//! The mailbox: 1000 messages of about 4 KiB (plain text, every 10th multipart/alternative,
//! every 25th multipart/mixed with a small attachment) and 5 of about 100 KiB (an attachment)
//! among the first 100, written into the INBOX Maildir before each server starts. Before
//! timing, every workload runs once against each server and the replies are checked (every
//! message answered, the same search hits on both), so a broken server cannot post a fast
//! number.
//!
//! `cas-server` is the release binary of this workspace: `CAS_SERVER_BIN` when set, otherwise
//! `cargo build --release -p cas-server` into this bench's target directory. It runs on its
//! demo data directory (made by a first start), with `--allow-plaintext-auth` so the plain
//! listener measures the IMAP path rather than TLS, and its default policy (no protocol log).
//! Dovecot is `/usr/sbin/dovecot` (or `CAS_DOVECOT`) with a throwaway config in a scratch
//! directory: a passwd-file user with cas-server's argon2id hash of the same password (both
//! servers verify the same OWASP-cost hash at each LOGIN), `maildir:`, the same certificate
//! on the IMAPS listener, otherwise its defaults (so a new `imap-login` process per
//! connection).
//! Without Dovecot the bench prints `SKIP dovecot` and measures `cas-server` alone.
//!
//! Both servers listen on loopback ports chosen by the OS (the port file for `cas-server`, a
//! just-freed ephemeral port for Dovecot) and are stopped, their scratch directories removed,
//! when the bench function returns or panics.
//!
//! Run: `cargo bench -p cas-benches --bench imap_server` (add `-- <filter>` to pick groups).

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

/// Messages of about 4 KiB.
const SMALL_MESSAGES: usize = 1000;
/// Positions (0-based) of the messages of about 100 KiB, inserted among the small ones.
const LARGE_AT: [usize; 5] = [9, 29, 49, 69, 89];
/// The word `UID SEARCH TEXT` looks for; in the body of every 37th message.
const SEARCH_WORD: &str = "zephyrine";
const USER: &str = "alice";
/// How long a server may take to start (the first cas-server start hashes the demo
/// passwords and makes a certificate).
const START_TIMEOUT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------
// The mailbox
// ---------------------------------------------------------------------------------------

/// A small deterministic generator (xorshift64*), so both servers and every run see the same
/// mail.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const WORDS: &[&str] = &[
    "meeting",
    "budget",
    "quarterly",
    "report",
    "schedule",
    "review",
    "project",
    "deadline",
    "customer",
    "invoice",
    "shipment",
    "release",
    "update",
    "agenda",
    "summary",
    "proposal",
    "contract",
    "draft",
    "feedback",
    "status",
    "server",
    "network",
    "storage",
    "backup",
    "the",
    "and",
    "for",
    "with",
    "this",
    "that",
    "from",
    "please",
    "thanks",
    "regards",
    "tomorrow",
    "morning",
    "afternoon",
    "office",
    "team",
    "plan",
    "numbers",
    "figures",
];
const NAMES: &[&str] = &[
    "Bob Smith",
    "Carol Jones",
    "Dave Miller",
    "Erin Brown",
    "Frank Wilson",
    "Grace Lee",
    "Heidi Clark",
    "Ivan Petrov",
    "Judy Martin",
    "Mallory Green",
];

fn mailbox(name: &str) -> String {
    format!(
        "{}@example.org",
        name.to_ascii_lowercase().replace(' ', ".")
    )
}

fn address(name: &str) -> String {
    format!("{name} <{}>", mailbox(name))
}

/// Lines of text words (CRLF-terminated, at most ~76 columns) until `body` has grown by
/// `size` bytes; `word` (if any) goes into the first line.
fn text_lines(rng: &mut Rng, body: &mut String, size: usize, word: Option<&str>) {
    let end = body.len() + size;
    let mut line = word.map(str::to_owned).unwrap_or_default();
    while body.len() + line.len() < end {
        let next = rng.pick(WORDS);
        if line.len() + next.len() + 1 > 72 {
            body.push_str(&line);
            body.push_str(".\r\n");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(next);
    }
    body.push_str(&line);
    body.push_str("\r\n");
}

/// `len` bytes of base64-looking attachment data in 76-column lines.
fn base64_lines(rng: &mut Rng, body: &mut String, len: usize) {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut written = 0;
    while written < len {
        for _ in 0..76 {
            body.push(char::from(ALPHABET[rng.below(64)]));
        }
        body.push_str("\r\n");
        written += 78;
    }
}

/// Message number `n` (0-based): about `size` bytes, CRLF line ends throughout.
fn message(n: usize, size: usize) -> Vec<u8> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (n as u64 + 1).wrapping_mul(0x1000_0000_01B3));
    let from = rng.pick(NAMES);
    let to = rng.pick(NAMES);
    let subject: Vec<&str> = (0..4 + rng.below(5)).map(|_| rng.pick(WORDS)).collect();
    let word = (n % 37 == 5).then_some(SEARCH_WORD);
    let day = 1 + n % 28;
    let mut m = format!(
        "Return-Path: <{}>\r\n\
         Received: from mx.example.org (mx.example.org [192.0.2.25])\r\n\tby mail.example.org with ESMTPS id {n:08x}\r\n\tfor <alice@example.org>; Tue, {day} Nov 2023 10:{:02}:00 +0000\r\n\
         Date: Tue, {day} Nov 2023 10:{:02}:00 +0000\r\n\
         From: {}\r\n\
         To: Alice Example <alice@example.org>, {}\r\n",
        mailbox(from),
        n % 60,
        n % 60,
        address(from),
        address(to),
    );
    if n.is_multiple_of(3) {
        m.push_str(&format!("Cc: {}\r\n", address(rng.pick(NAMES))));
    }
    m.push_str(&format!(
        "Subject: {}\r\nMessage-ID: <bench-{n}@example.org>\r\nMIME-Version: 1.0\r\n",
        subject.join(" ")
    ));
    if n % 2 == 1 {
        m.push_str(&format!("In-Reply-To: <bench-{}@example.org>\r\n", n - 1));
    }
    let body_size = size.saturating_sub(m.len() + 100);
    if size > 50_000 || n.is_multiple_of(25) {
        // multipart/mixed: text and a base64 attachment.
        let boundary = format!("=_mixed_{n}");
        m.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n\
             This is a multi-part message in MIME format.\r\n\r\n--{boundary}\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
        ));
        text_lines(&mut rng, &mut m, 600, word);
        m.push_str(&format!(
            "\r\n--{boundary}\r\nContent-Type: application/pdf; name=\"report-{n}.pdf\"\r\n\
             Content-Disposition: attachment; filename=\"report-{n}.pdf\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n"
        ));
        base64_lines(&mut rng, &mut m, body_size.saturating_sub(900));
        m.push_str(&format!("\r\n--{boundary}--\r\n"));
    } else if n.is_multiple_of(10) {
        // multipart/alternative: text and HTML.
        let boundary = format!("=_alt_{n}");
        m.push_str(&format!(
            "Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n\
             --{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        ));
        text_lines(&mut rng, &mut m, body_size / 2, word);
        m.push_str(&format!(
            "\r\n--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>\r\n"
        ));
        text_lines(&mut rng, &mut m, body_size / 2, None);
        m.push_str(&format!("</p></body></html>\r\n\r\n--{boundary}--\r\n"));
    } else {
        m.push_str(
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n",
        );
        text_lines(&mut rng, &mut m, body_size, word);
    }
    m.into_bytes()
}

/// The INBOX, in order.
fn corpus() -> Vec<Vec<u8>> {
    let mut messages = Vec::with_capacity(SMALL_MESSAGES + LARGE_AT.len());
    let mut small = 0;
    while small < SMALL_MESSAGES || messages.len() < SMALL_MESSAGES + LARGE_AT.len() {
        let n = messages.len();
        if LARGE_AT.contains(&n) {
            messages.push(message(n, 100 * 1024));
        } else {
            messages.push(message(n, 4 * 1024));
            small += 1;
        }
    }
    messages
}

/// Writes `messages` into `maildir/cur` as seen mail (every 4th unseen, every 7th flagged),
/// named so that name order, time order and corpus order agree, which is the order both
/// servers give UIDs in.
fn write_maildir(maildir: &Path, messages: &[Vec<u8>]) {
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    for (n, data) in messages.iter().enumerate() {
        let mut flags = String::new();
        if n % 7 == 0 {
            flags.push('F');
        }
        if n % 4 != 0 {
            flags.push('S');
        }
        let time = 1_700_000_000 + n as u64;
        let name = format!("{time}.M{n:06}P1.bench,S={}:2,{flags}", data.len());
        let path = maildir.join("cur").join(name);
        fs::write(&path, data).unwrap();
        // Internal dates as the names say (both servers read the file time).
        let mtime = std::time::UNIX_EPOCH + Duration::from_secs(time);
        fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(mtime))
            .unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------

/// A scratch directory under the system temp dir, emptied first.
fn scratch_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cas-bench-{what}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Stops `child` with SIGTERM (a graceful shutdown), then SIGKILL if it lingers.
fn stop(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The `cas-server` release binary: `CAS_SERVER_BIN`, or built now next to this bench.
fn cas_server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("CAS_SERVER_BIN") {
        return PathBuf::from(path);
    }
    // This bench is <target>/release/deps/imap_server-<hash>.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let target_dir = profile_dir.parent().unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    eprintln!("building cas-server (cargo build --release -p cas-server)");
    let mut command = Command::new(cargo);
    // The variables cargo sets for this bench describe cas-benches; a build script that
    // watches one (ring's watches CARGO_MANIFEST_DIR) would otherwise see a change, and the
    // next `cargo bench` would rebuild it again.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
            "CARGO_PRIMARY_",
        ]
        .iter()
        .any(|p| name.starts_with(p))
            || name == "OUT_DIR"
        {
            command.env_remove(&*name);
        }
    }
    let status = command
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "cas-server",
            "--manifest-path",
        ])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .status()
        .expect("run cargo");
    assert!(
        status.success(),
        "cargo build --release -p cas-server failed"
    );
    let binary = profile_dir.join("cas-server");
    assert!(binary.exists(), "no {}", binary.display());
    binary
}

/// A running `cas-server` on its own demo data directory, stopped and removed on drop.
struct CasServer {
    child: Option<Child>,
    dir: PathBuf,
    args: Vec<std::ffi::OsString>,
    imap: SocketAddr,
    imaps: SocketAddr,
    password: String,
    /// Alice's argon2id PHC string from the users file, for Dovecot's passdb.
    password_hash: String,
}

impl CasServer {
    fn start(binary: &Path, messages: &[Vec<u8>]) -> CasServer {
        let dir = scratch_dir("cas-server");
        let data = dir.join("data");
        let mut args: Vec<std::ffi::OsString> = vec!["--data-dir".into(), data.clone().into()];
        for flag in [
            "--pop3-listen",
            "--pop3s-listen",
            "--https-listen",
            "--rpc-backend-listen",
            "--imap-listen",
            "--imaps-listen",
        ] {
            args.push(flag.into());
            args.push("127.0.0.1:0".into());
        }
        args.push("--allow-plaintext-auth".into());
        args.push("--port-file".into());
        args.push(dir.join("ports.json").into());
        let mut server = CasServer {
            child: None,
            dir,
            args,
            imap: SocketAddr::from(([127, 0, 0, 1], 0)),
            imaps: SocketAddr::from(([127, 0, 0, 1], 0)),
            password: String::new(),
            password_hash: String::new(),
        };
        // The first start makes the demo data directory (users, certificate, Maildirs).
        server.spawn(binary);
        stop(server.child.as_mut().unwrap());
        server.child = None;
        // Alice's INBOX becomes the bench mailbox; her other folders stay as they are.
        let inbox = data.join("maildir").join(USER);
        for sub in ["cur", "new"] {
            for entry in fs::read_dir(inbox.join(sub)).unwrap() {
                fs::remove_file(entry.unwrap().path()).unwrap();
            }
        }
        let _ = fs::remove_file(inbox.join("cas-imap-index"));
        write_maildir(&inbox, messages);
        let credentials = fs::read_to_string(data.join("credentials.txt")).unwrap();
        server.password = credentials
            .lines()
            .find_map(|l| l.strip_prefix("alice:"))
            .expect("alice's demo password")
            .trim()
            .to_owned();
        let users = fs::read_to_string(data.join("users")).unwrap();
        server.password_hash = users
            .lines()
            .find_map(|l| l.strip_prefix("alice:"))
            .and_then(|rest| rest.split(':').next())
            .expect("alice's users entry")
            .to_owned();
        server.spawn(binary);
        server
    }

    fn spawn(&mut self, binary: &Path) {
        let port_file = self.dir.join("ports.json");
        let _ = fs::remove_file(&port_file);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .unwrap();
        let child = Command::new(binary)
            .args(&self.args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start cas-server");
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        let ports = loop {
            if let Ok(text) = fs::read_to_string(&port_file)
                && text.ends_with('\n')
            {
                break text;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("cas-server exited early ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "cas-server did not start:\n{}",
                self.log()
            );
            sleep(Duration::from_millis(50));
        };
        self.imap = json_address(&ports, "imap");
        self.imaps = json_address(&ports, "imaps");
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for CasServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop(&mut child);
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The address of `"name": "ip:port"` in the port file's JSON object.
fn json_address(json: &str, name: &str) -> SocketAddr {
    let key = format!("\"{name}\": \"");
    let start = json
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {json}"))
        + key.len();
    let end = start + json[start..].find('"').unwrap();
    json[start..end].parse().unwrap()
}

/// A loopback port that was free a moment ago (Dovecot has no port file).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `(name, uid, gid)` of the first passwd entry `pred` accepts.
fn passwd_entry(pred: impl Fn(&str, u32) -> bool) -> Option<(String, u32, u32)> {
    let text = fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        let (name, uid, gid) = (f.first()?, f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?);
        pred(name, uid).then(|| ((*name).to_owned(), uid, gid))
    })
}

fn group_name(gid: u32) -> Option<String> {
    let text = fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.get(2)?.parse::<u32>().ok()? == gid).then(|| f[0].to_owned())
    })
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    if path.is_dir() {
        for entry in fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), uid, gid);
        }
    }
}

/// A throwaway Dovecot serving `alice`'s Maildir, stopped and removed on drop.
struct Dovecot {
    child: Option<Child>,
    dir: PathBuf,
    imap: SocketAddr,
    imaps: SocketAddr,
}

impl Dovecot {
    /// Starts Dovecot on `messages` with the certificate and key at `cert`, `key`, and
    /// `password_hash` (an argon2id PHC string, the cas-server users file's, so both servers
    /// pay the same for a login) as alice's password; `None` when it is not installed.
    fn start(
        messages: &[Vec<u8>],
        cert: &Path,
        key: &Path,
        password_hash: &str,
    ) -> Option<Dovecot> {
        let binary = std::env::var("CAS_DOVECOT").unwrap_or_else(|_| "/usr/sbin/dovecot".into());
        let installed = Command::new(&binary)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            return None;
        }
        let dir = scratch_dir("dovecot");
        fs::create_dir_all(dir.join("run")).unwrap();
        fs::create_dir_all(dir.join("state")).unwrap();
        // Login and mail processes run as other users when we are root: let them in.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let me = std::os::unix::fs::MetadataExt::uid(&fs::metadata(&dir).unwrap());
        let (my_name, _, my_gid) = passwd_entry(|_, uid| uid == me).expect("my passwd entry");
        // Dovecot refuses to run login processes or mail access as root: then use the users
        // its package creates.
        let (login_user, mail_uid, mail_gid) = if me == 0 {
            let login = passwd_entry(|n, _| n == "dovenull")
                .or_else(|| passwd_entry(|n, _| n == "nobody"))
                .expect("a dovenull or nobody user");
            let mail = passwd_entry(|n, _| n == "dovecot").unwrap_or(login.clone());
            (login.0, mail.1, mail.2)
        } else {
            (my_name.clone(), me, my_gid)
        };
        let maildir = dir.join("home").join(USER).join("Maildir");
        write_maildir(&maildir, messages);
        chown_tree(&dir.join("home"), mail_uid, mail_gid);
        fs::write(
            dir.join("passwd"),
            format!("{USER}:{{ARGON2ID}}{password_hash}\n"),
        )
        .unwrap();
        fs::copy(cert, dir.join("cert.pem")).unwrap();
        fs::copy(key, dir.join("key.pem")).unwrap();
        fs::set_permissions(dir.join("key.pem"), fs::Permissions::from_mode(0o600)).unwrap();

        let (imap, imaps) = (free_port(), free_port());
        let d = dir.display();
        let config = format!(
            "base_dir = {d}/run\n\
             state_dir = {d}/state\n\
             log_path = {d}/dovecot.log\n\
             instance_name = cas-bench-{pid}\n\
             default_internal_user = {my_name}\n\
             default_internal_group = {my_group}\n\
             default_login_user = {login_user}\n\
             first_valid_uid = 1\n\
             protocols = imap\n\
             listen = 127.0.0.1\n\
             ssl = yes\n\
             ssl_cert = <{d}/cert.pem\n\
             ssl_key = <{d}/key.pem\n\
             disable_plaintext_auth = no\n\
             auth_mechanisms = plain\n\
             passdb {{\n  driver = passwd-file\n  args = username_format=%u {d}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid={mail_uid} gid={mail_gid} home={d}/home/%u\n}}\n\
             mail_location = maildir:~/Maildir\n\
             protocol imap {{\n  mail_max_userip_connections = 1000\n}}\n\
             service imap-login {{\n  chroot =\n  inet_listener imap {{\n    port = {imap}\n  }}\n  inet_listener imaps {{\n    port = {imaps}\n    ssl = yes\n  }}\n}}\n\
             service anvil {{\n  chroot =\n}}\n",
            pid = std::process::id(),
            my_group = group_name(my_gid).unwrap_or_else(|| my_name.clone()),
        );
        fs::write(dir.join("dovecot.conf"), config).unwrap();
        let log = fs::File::create(dir.join("stdout.log")).unwrap();
        let child = Command::new(&binary)
            .arg("-F")
            .arg("-c")
            .arg(dir.join("dovecot.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start dovecot");
        let mut dovecot = Dovecot {
            child: Some(child),
            dir,
            imap: SocketAddr::from(([127, 0, 0, 1], imap)),
            imaps: SocketAddr::from(([127, 0, 0, 1], imaps)),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        for addr in [dovecot.imap, dovecot.imaps] {
            while TcpStream::connect(addr).is_err() {
                if let Some(status) = dovecot.child.as_mut().unwrap().try_wait().unwrap() {
                    panic!("dovecot exited early ({status}):\n{}", dovecot.log());
                }
                assert!(
                    Instant::now() < deadline,
                    "dovecot did not listen:\n{}",
                    dovecot.log()
                );
                sleep(Duration::from_millis(50));
            }
        }
        Some(dovecot)
    }

    fn log(&self) -> String {
        ["stdout.log", "dovecot.log"]
            .iter()
            .map(|name| fs::read_to_string(self.dir.join(name)).unwrap_or_default())
            .collect()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop(&mut child);
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------

/// A byte stream the client talks over: TCP or TLS over TCP.
trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

/// How to reach one server: where, as whom, and the TLS client settings for IMAPS.
#[derive(Clone)]
struct Target {
    imap: SocketAddr,
    imaps: SocketAddr,
    password: String,
    tls: Arc<rustls::ClientConfig>,
}

/// One tagged command's reply: the untagged responses before it and the bytes read.
struct Reply {
    untagged: usize,
    bytes: usize,
}

/// A minimal blocking IMAP client: sends a command, reads untagged responses (literals
/// included, by their announced length) until the tagged status, checks it is OK.
struct Client {
    reader: BufReader<Box<dyn Stream>>,
    tag: u32,
    buf: Vec<u8>,
}

impl Client {
    /// Connects and reads the greeting; over TLS when `tls`.
    fn connect(target: &Target, tls: bool) -> io::Result<Client> {
        let stream: Box<dyn Stream> = if tls {
            let tcp = TcpStream::connect(target.imaps)?;
            tcp.set_nodelay(true)?;
            let name = ServerName::try_from("localhost").unwrap();
            let conn = rustls::ClientConnection::new(target.tls.clone(), name)
                .map_err(io::Error::other)?;
            Box::new(rustls::StreamOwned::new(conn, tcp))
        } else {
            let tcp = TcpStream::connect(target.imap)?;
            tcp.set_nodelay(true)?;
            Box::new(tcp)
        };
        let mut client = Client {
            reader: BufReader::with_capacity(64 * 1024, stream),
            tag: 0,
            buf: Vec::with_capacity(1 << 20),
        };
        client.reader.read_until(b'\n', &mut client.buf)?;
        if !client.buf.starts_with(b"* OK") {
            return Err(io::Error::other(format!(
                "greeting: {}",
                String::from_utf8_lossy(&client.buf)
            )));
        }
        Ok(client)
    }

    /// Connects, logs in and selects INBOX.
    fn open(target: &Target, tls: bool) -> io::Result<Client> {
        let mut client = Client::connect(target, tls)?;
        client.run(&format!("LOGIN {USER} \"{}\"", target.password))?;
        client.run("SELECT INBOX")?;
        Ok(client)
    }

    /// Sends `command` and reads its whole reply into `self.buf`.
    fn run(&mut self, command: &str) -> io::Result<Reply> {
        self.tag += 1;
        let tag = format!("b{}", self.tag);
        let stream = self.reader.get_mut();
        stream.write_all(format!("{tag} {command}\r\n").as_bytes())?;
        stream.flush()?;
        self.buf.clear();
        let mut untagged = 0;
        let mut response_start = 0;
        loop {
            let line_start = self.buf.len();
            if self.reader.read_until(b'\n', &mut self.buf)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            if let Some(len) = literal_length(&self.buf[line_start..]) {
                let at = self.buf.len();
                self.buf.resize(at + len, 0);
                self.reader.read_exact(&mut self.buf[at..])?;
                continue;
            }
            let response = &self.buf[response_start..];
            if response.starts_with(tag.as_bytes()) && response.get(tag.len()) == Some(&b' ') {
                let status = &response[tag.len() + 1..];
                if !status.starts_with(b"OK") {
                    return Err(io::Error::other(format!(
                        "{command}: {}",
                        String::from_utf8_lossy(status).trim_end()
                    )));
                }
                return Ok(Reply {
                    untagged,
                    bytes: self.buf.len(),
                });
            }
            if response.starts_with(b"* ") {
                untagged += 1;
            }
            response_start = self.buf.len();
        }
    }

    /// `LOGOUT`, then reads until the server closes the connection.
    fn logout(mut self) -> io::Result<()> {
        self.run("LOGOUT")?;
        let mut rest = Vec::new();
        self.reader.read_to_end(&mut rest)?;
        Ok(())
    }
}

/// The length of the literal `{N}` / `{N+}` that ends `line` (CRLF included), if any.
fn literal_length(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"}\r\n")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    let digits = &line[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The numbers of the `* SEARCH` response in a reply.
fn search_hits(reply: &[u8]) -> Vec<u32> {
    let text = String::from_utf8_lossy(reply);
    text.lines()
        .filter_map(|l| l.strip_prefix("* SEARCH"))
        .flat_map(|rest| rest.split_whitespace().filter_map(|n| n.parse().ok()))
        .collect()
}

/// TLS client settings trusting exactly the servers' certificate.
fn tls_config(cert: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for der in CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(der.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    Arc::new(config)
}

// ---------------------------------------------------------------------------------------
// The benches
// ---------------------------------------------------------------------------------------

/// The workloads run in a selected session: group name and command.
const SESSION_WORKLOADS: [(&str, &str, bool); 5] = [
    (
        "uid_fetch_flags",
        "UID FETCH 1:* (FLAGS UID RFC822.SIZE)",
        false,
    ),
    (
        "fetch_envelope_bodystructure",
        "FETCH 1:* (ENVELOPE BODYSTRUCTURE)",
        false,
    ),
    ("fetch_body_1_100", "FETCH 1:100 BODY.PEEK[]", false),
    ("imaps_fetch_body_1_100", "FETCH 1:100 BODY.PEEK[]", true),
    ("uid_search_text", "UID SEARCH TEXT \"zephyrine\"", false),
];

/// Runs every workload once against `target` and checks the replies; returns the bytes of
/// the `FETCH 1:100 BODY.PEEK[]` reply and the search hits.
fn check(name: &str, target: &Target, total: usize) -> (usize, Vec<u32>) {
    Client::open(target, false).unwrap().logout().unwrap();
    Client::open(target, true).unwrap().logout().unwrap();
    let mut client = Client::open(target, false).unwrap();
    let reply = client.run("UID FETCH 1:* (FLAGS UID RFC822.SIZE)").unwrap();
    assert_eq!(reply.untagged, total, "{name}: UID FETCH 1:*");
    let reply = client.run("FETCH 1:* (ENVELOPE BODYSTRUCTURE)").unwrap();
    assert_eq!(
        reply.untagged, total,
        "{name}: FETCH ENVELOPE BODYSTRUCTURE"
    );
    let reply = client.run("FETCH 1:100 BODY.PEEK[]").unwrap();
    assert_eq!(reply.untagged, 100, "{name}: FETCH BODY.PEEK[]");
    let body_bytes = reply.bytes;
    client
        .run(&format!("UID SEARCH TEXT \"{SEARCH_WORD}\""))
        .unwrap();
    let hits = search_hits(&client.buf);
    client.logout().unwrap();
    (body_bytes, hits)
}

fn imap_server(c: &mut Criterion) {
    let messages = corpus();
    let total = messages.len();
    let binary = cas_server_binary();
    let cas = CasServer::start(&binary, &messages);
    let cert = cas.dir.join("data").join("tls").join("cert.pem");
    let key = cas.dir.join("data").join("tls").join("key.pem");
    let tls = tls_config(&cert);
    let dovecot = Dovecot::start(&messages, &cert, &key, &cas.password_hash);
    if dovecot.is_none() {
        println!("SKIP dovecot: /usr/sbin/dovecot (or CAS_DOVECOT) is not installed");
    }

    let mut targets = vec![(
        "cas-server",
        Target {
            imap: cas.imap,
            imaps: cas.imaps,
            password: cas.password.clone(),
            tls: tls.clone(),
        },
    )];
    if let Some(dovecot) = &dovecot {
        targets.push((
            "dovecot",
            Target {
                imap: dovecot.imap,
                imaps: dovecot.imaps,
                password: cas.password.clone(),
                tls: tls.clone(),
            },
        ));
    }

    let mailbox_bytes: usize = messages.iter().map(Vec::len).sum();
    eprintln!(
        "mailbox: {total} messages, {mailbox_bytes} bytes; first 100: {} bytes",
        messages[..100].iter().map(Vec::len).sum::<usize>()
    );
    let mut body_bytes = Vec::new();
    let mut all_hits = Vec::new();
    for (name, target) in &targets {
        let (bytes, hits) = check(name, target, total);
        eprintln!(
            "{name}: FETCH 1:100 BODY.PEEK[] reply {bytes} bytes; SEARCH TEXT {} hits",
            hits.len()
        );
        body_bytes.push(bytes);
        all_hits.push(hits);
    }
    let expected_hits = (0..total).filter(|n| n % 37 == 5).count();
    for (hits, (name, _)) in all_hits.iter().zip(&targets) {
        assert_eq!(
            hits.len(),
            expected_hits,
            "{name}: SEARCH TEXT hits {hits:?}"
        );
    }

    for (group_name, tls) in [
        ("login_select_logout", false),
        ("imaps_login_select_logout", true),
    ] {
        let mut group = c.benchmark_group(format!("imap_server/{group_name}"));
        for (name, target) in &targets {
            group.bench_function(*name, |b| {
                b.iter(|| Client::open(target, tls).unwrap().logout().unwrap())
            });
        }
        group.finish();
    }

    for (group_name, command, tls) in SESSION_WORKLOADS {
        let mut group = c.benchmark_group(format!("imap_server/{group_name}"));
        for (i, (name, target)) in targets.iter().enumerate() {
            if group_name.ends_with("fetch_body_1_100") {
                group.throughput(Throughput::Bytes(body_bytes[i] as u64));
            }
            let mut client = Client::open(target, tls).unwrap();
            group.bench_function(*name, |b| b.iter(|| client.run(command).unwrap().bytes));
            client.logout().unwrap();
        }
        group.finish();
    }
    // The servers stop here (Drop), also when a bench panics.
    drop(dovecot);
    drop(cas);
}

fn config() -> Criterion {
    // Two shared cores: few samples, short measurements (override on the command line).
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
}

criterion_group! {
    name = benches;
    config = config();
    targets = imap_server
}
criterion_main!(benches);
