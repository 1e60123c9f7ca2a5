//! Black-box tests: the real `cas-server` binary, driven by independent POP3 clients
//! (Python's `poplib`, `curl`, `fetchmail`) over loopback.
//!
//! Each test starts its own server on free ports with its own demo data directory. A test whose
//! client is not installed prints `SKIP` and passes, unless `CAS_REQUIRE_INTEROP=1` is set
//! (as `.ci/run` does after installing every client), in which case it fails.

use std::fs;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// A running `cas-server` with its own data directory, killed and cleaned up on drop.
struct Server {
    child: Option<Child>,
    dir: PathBuf,
    pop3_port: u16,
    pop3s_port: u16,
}

impl Server {
    fn start() -> Server {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cas-interop-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let data_dir = dir.join("data");
        let pop3_port = free_port();
        let pop3s_port = free_port();
        let log = fs::File::create(dir.join("server.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_cas-server"))
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--pop3-listen")
            .arg(format!("127.0.0.1:{pop3_port}"))
            .arg("--pop3s-listen")
            .arg(format!("127.0.0.1:{pop3s_port}"))
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start cas-server");
        let mut server = Server {
            child: Some(child),
            dir,
            pop3_port,
            pop3s_port,
        };
        server.wait_listening();
        server
    }

    fn wait_listening(&mut self) {
        // The first start hashes the demo passwords and makes a certificate: allow for a slow
        // debug build on a loaded machine.
        let deadline = Instant::now() + Duration::from_secs(120);
        for port in [self.pop3_port, self.pop3s_port] {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                    panic!("cas-server exited early ({status}):\n{}", self.log());
                }
                assert!(
                    Instant::now() < deadline,
                    "cas-server did not listen:\n{}",
                    self.log()
                );
                sleep(Duration::from_millis(50));
            }
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn cert(&self) -> PathBuf {
        self.data_dir().join("tls").join("cert.pem")
    }

    /// The demo password of `user`, from the `user:password` lines of `credentials.txt`.
    fn password(&self, user: &str) -> String {
        let text = fs::read_to_string(self.data_dir().join("credentials.txt")).unwrap();
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .find_map(|line| line.strip_prefix(&format!("{user}:")))
            .unwrap_or_else(|| panic!("no demo password for {user} in:\n{text}"))
            .trim()
            .to_string()
    }

    /// Messages of `user`'s Maildir (`cur/` and `new/`) by unique name, without the `:2,`
    /// info suffix (a message moves from `new/` to `cur/` when first seen), sorted.
    fn maildir_files(&self, user: &str) -> Vec<String> {
        let mut names = Vec::new();
        for sub in ["cur", "new"] {
            let path = self.data_dir().join("maildir").join(user).join(sub);
            for entry in fs::read_dir(&path).unwrap() {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                let unique = name
                    .split_once(':')
                    .map_or(name.as_str(), |(unique, _)| unique);
                names.push(unique.to_string());
            }
        }
        names.sort();
        names
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Asks the server to shut down with SIGTERM and returns its exit status.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "no exit after SIGTERM:\n{}",
                self.log()
            );
            sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("server log kept in {}:\n{}", self.dir.display(), self.log());
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether the external client `program` can run; prints SKIP (or fails under
/// `CAS_REQUIRE_INTEROP=1`) when it cannot.
fn client_available(test: &str, program: &str, probe: &[&str]) -> bool {
    let works = Command::new(program)
        .args(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !works {
        if std::env::var("CAS_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("{test}: interop client `{program}` is missing and CAS_REQUIRE_INTEROP=1");
        }
        eprintln!("SKIP {test}: `{program}` is not installed");
    }
    works
}

fn python() -> String {
    std::env::var("CAS_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("interop")
        .join(name)
}

fn run(command: &mut Command) -> Output {
    let output = command.output().expect("run client");
    eprintln!(
        "{command:?}\nstatus {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn assert_success(output: &Output, server: &Server) {
    assert!(
        output.status.success(),
        "client failed\nstdout: {}\nstderr: {}\nserver log:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        server.log()
    );
}

fn poplib(mode: &str) {
    let test = format!("poplib_{mode}");
    if !client_available(&test, &python(), &["-c", "import poplib, ssl"]) {
        return;
    }
    let server = Server::start();
    let port = if mode == "pop3s" {
        server.pop3s_port
    } else {
        server.pop3_port
    };
    let before = server.maildir_files("alice");
    let output = run(Command::new(python())
        .arg(script("poplib_client.py"))
        .arg(mode)
        .arg("localhost")
        .arg(port.to_string())
        .arg("alice")
        .arg(server.password("alice"))
        .arg(server.cert()));
    assert_success(&output, &server);
    // Exactly one message file went away: the one deleted before QUIT.
    let after = server.maildir_files("alice");
    assert_eq!(after.len() + 1, before.len(), "{before:?} -> {after:?}");
}

#[test]
fn poplib_over_pop3s() {
    poplib("pop3s");
}

#[test]
fn poplib_over_stls() {
    poplib("stls");
}

#[test]
fn poplib_killed_connections_change_nothing() {
    if !client_available("poplib_abort", &python(), &["-c", "import poplib, ssl"]) {
        return;
    }
    let server = Server::start();
    let before = server.maildir_files("bob");
    let output = run(Command::new(python())
        .arg(script("poplib_abort.py"))
        .arg("localhost")
        .arg(server.pop3s_port.to_string())
        .arg("bob")
        .arg(server.password("bob"))
        .arg(server.cert()));
    assert_success(&output, &server);
    assert_eq!(server.maildir_files("bob"), before);
}

fn curl(server: &Server, url: &str, extra: &[&str]) -> Output {
    let user = format!("alice:{}", server.password("alice"));
    run(Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "60"])
        .arg("--cacert")
        .arg(server.cert())
        .args(["--user", &user])
        .args(extra)
        .arg(url))
}

/// `LIST` output as (number, size) pairs.
fn parse_listing(stdout: &[u8]) -> Vec<(u32, u64)> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|line| {
            let mut parts = line.split_whitespace();
            let num = parts.next().unwrap().parse().unwrap();
            let size = parts.next().unwrap().parse().unwrap();
            (num, size)
        })
        .collect()
}

#[test]
fn curl_pop3_stls_and_pop3s() {
    if !client_available("curl_pop3", "curl", &["--version"]) {
        return;
    }
    let server = Server::start();
    let stls = format!("pop3://localhost:{}", server.pop3_port);
    let implicit = format!("pop3s://localhost:{}", server.pop3s_port);

    // Without TLS the password must not be accepted on the plain port.
    let plain = curl(&server, &format!("{stls}/"), &[]);
    assert!(!plain.status.success(), "clear-text login was accepted");

    let listing = curl(&server, &format!("{stls}/"), &["--ssl-reqd"]);
    assert_success(&listing, &server);
    let listing = parse_listing(&listing.stdout);
    assert!(listing.len() >= 2, "{listing:?}");

    // RETR each message over both transports (curl picks SASL PLAIN, or LOGIN when told);
    // the un-stuffed body plus CRLF line ends must match LIST's size.
    for &(num, size) in &listing {
        for (base, extra) in [
            (&stls, vec!["--ssl-reqd"]),
            (&implicit, vec!["--login-options", "AUTH=LOGIN"]),
        ] {
            let retr = curl(&server, &format!("{base}/{num}"), &extra);
            assert_success(&retr, &server);
            let body = &retr.stdout;
            let bare_lf = body
                .iter()
                .enumerate()
                .filter(|&(i, &b)| b == b'\n' && (i == 0 || body[i - 1] != b'\r'))
                .count() as u64;
            assert_eq!(
                body.len() as u64 + bare_lf,
                size,
                "message {num} via {base}"
            );
        }
    }

    let uidl = curl(&server, &format!("{implicit}/"), &["--request", "UIDL"]);
    assert_success(&uidl, &server);
    assert_eq!(
        String::from_utf8_lossy(&uidl.stdout).lines().count(),
        listing.len()
    );

    // DELE through curl, then QUIT commits it.
    let dele = curl(
        &server,
        &format!("{implicit}/1"),
        &["--request", "DELE", "--head"],
    );
    assert_success(&dele, &server);
    let after = curl(&server, &format!("{implicit}/"), &[]);
    assert_success(&after, &server);
    assert_eq!(parse_listing(&after.stdout).len(), listing.len() - 1);
}

fn fetchmail(server: &Server, implicit_tls: bool, keep: bool, out_dir: &Path) -> Output {
    let rc = server
        .dir
        .join(format!("fetchmailrc-{implicit_tls}-{keep}"));
    let (port, tls) = if implicit_tls {
        (server.pop3s_port, "ssl")
    } else {
        (server.pop3_port, "sslproto 'tls1.2+'")
    };
    let keep = if keep { "keep" } else { "nokeep" };
    fs::write(
        &rc,
        format!(
            "set no syslog\n\
             poll localhost with proto POP3 port {port} timeout 30\n\
             \tuser \"alice\" there with password \"{password}\" is \"alice\" here\n\
             \t{tls} sslcertck sslcertfile \"{cert}\"\n\
             \t{keep} fetchall\n\
             \tmda \"/bin/sh -c 'cat > {out}/msg.$$'\"\n",
            password = server.password("alice"),
            cert = server.cert().display(),
            out = out_dir.display(),
        ),
    )
    .unwrap();
    let mut perms = fs::metadata(&rc).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    fs::set_permissions(&rc, perms).unwrap();
    run(Command::new("fetchmail")
        .env("HOME", &server.dir)
        .arg("--fetchmailrc")
        .arg(&rc)
        .arg("--idfile")
        .arg(server.dir.join("fetchids"))
        .arg("--pidfile")
        .arg(server.dir.join("fetchmail.pid"))
        .args(["--nodetach", "--verbose"]))
}

#[test]
fn fetchmail_retrieves_over_stls_and_pop3s() {
    if !client_available("fetchmail", "fetchmail", &["--version"]) {
        return;
    }
    let server = Server::start();
    let messages = server.maildir_files("alice").len();
    assert!(messages >= 2);

    // STLS, keeping the mail on the server: every message arrives, nothing is deleted.
    let kept = server.dir.join("kept");
    fs::create_dir_all(&kept).unwrap();
    let output = fetchmail(&server, false, true, &kept);
    assert_success(&output, &server);
    assert_eq!(fs::read_dir(&kept).unwrap().count(), messages);
    assert_eq!(server.maildir_files("alice").len(), messages);

    // Implicit TLS, deleting after retrieval: the maildrop ends empty.
    let fetched = server.dir.join("fetched");
    fs::create_dir_all(&fetched).unwrap();
    let output = fetchmail(&server, true, false, &fetched);
    assert_success(&output, &server);
    assert_eq!(fs::read_dir(&fetched).unwrap().count(), messages);
    assert!(server.maildir_files("alice").is_empty());

    // Every delivered message carries the sample mail's headers intact.
    for entry in fs::read_dir(&fetched).unwrap() {
        let mut text = String::new();
        fs::File::open(entry.unwrap().path())
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert!(text.contains("Subject:"), "{text}");
    }
}

#[test]
fn sigterm_shuts_down_cleanly() {
    let mut server = Server::start();
    let status = server.terminate();
    assert!(status.success(), "exit status {status}:\n{}", server.log());
}
