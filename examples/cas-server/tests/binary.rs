//! The `cas-server` binary: first-run demo data, `--port-file` with ephemeral ports,
//! reuse on the next run, clear config errors, exit 0 on SIGTERM.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

fn start(data_dir: &Path, port_file: &Path) -> Child {
    let _ = fs::remove_file(port_file);
    Command::new(env!("CARGO_BIN_EXE_cas-server"))
        .arg("--data-dir")
        .arg(data_dir)
        .args([
            "--pop3-listen",
            "127.0.0.1:0",
            "--pop3s-listen",
            "127.0.0.1:0",
            "--imap-listen",
            "127.0.0.1:0",
            "--imaps-listen",
            "127.0.0.1:0",
            "--https-listen",
            "127.0.0.1:0",
            "--rpc-backend-listen",
            "127.0.0.1:0",
        ])
        .arg("--port-file")
        .arg(port_file)
        .env("CAS_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cas-server")
}

/// Waits for the port file and returns (pop3, pop3s) addresses.
fn ports(child: &mut Child, port_file: &Path) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(text) = fs::read_to_string(port_file) {
            let field = |name: &str| {
                let key = format!("\"{name}\": \"");
                let start = text.find(&key).unwrap() + key.len();
                text[start..].split('"').next().unwrap().to_owned()
            };
            return (field("pop3"), field("pop3s"));
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("cas-server exited early ({status}): {err}");
        }
        assert!(Instant::now() < deadline, "no port file");
        sleep(Duration::from_millis(50));
    }
}

fn terminate(mut child: Child) -> (std::process::ExitStatus, String) {
    let status = common::sigterm_and_wait(&mut child).expect("no exit after SIGTERM");
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    (status, out)
}

fn line(r: &mut impl BufRead) -> String {
    let mut s = String::new();
    r.read_line(&mut s).unwrap();
    s
}

#[test]
fn first_run_creates_demo_data_and_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let port_file = tmp.path().join("ports.json");
    let mut child = start(&data, &port_file);
    let (pop3, pop3s) = ports(&mut child, &port_file);
    assert!(pop3s.starts_with("127.0.0.1:"), "{pop3s}");

    for path in [
        "cas-server.toml",
        "users",
        "credentials.txt",
        "tls/cert.pem",
        "tls/key.pem",
        "maildir/alice/new",
        "maildir/bob/cur",
    ] {
        assert!(data.join(path).exists(), "{path} missing");
    }
    let creds = fs::read_to_string(data.join("credentials.txt")).unwrap();
    let alice = creds
        .lines()
        .find_map(|l| l.strip_prefix("alice:"))
        .unwrap()
        .to_owned();
    assert_eq!(alice.len(), 16);

    // Plain port: greeting, and clear-text login refused.
    let tcp = TcpStream::connect(&pop3).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut r = BufReader::new(tcp.try_clone().unwrap());
    let mut w = tcp;
    assert!(line(&mut r).starts_with("+OK"));
    w.write_all(b"USER alice\r\n").unwrap();
    let reply = line(&mut r);
    if reply.starts_with("+OK") {
        w.write_all(format!("PASS {alice}\r\n").as_bytes()).unwrap();
        assert!(line(&mut r).starts_with("-ERR [AUTH]"));
    } else {
        assert!(reply.starts_with("-ERR [AUTH]"), "{reply}");
    }
    w.write_all(b"QUIT\r\n").unwrap();
    assert!(line(&mut r).starts_with("+OK"));

    let (status, stdout) = terminate(child);
    assert!(status.success(), "{status}");
    assert!(stdout.contains(&format!("alice:{alice}")), "{stdout}");
    assert!(
        stdout.contains("curl --ssl-reqd -k pop3://localhost:"),
        "{stdout}"
    );

    // Second run reuses everything.
    let users = fs::read_to_string(data.join("users")).unwrap();
    let mut child = start(&data, &port_file);
    ports(&mut child, &port_file);
    let (status, _) = terminate(child);
    assert!(status.success());
    assert_eq!(fs::read_to_string(data.join("users")).unwrap(), users);
    assert_eq!(
        fs::read_to_string(data.join("credentials.txt")).unwrap(),
        creds
    );
}

#[test]
fn config_errors_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.toml");
    fs::write(
        &bad,
        "[pop3]\nlisten = \"127.0.0.1:0\"\nmax_command_size = 5000\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cas-server"))
        .arg("--config")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pop3.max_command_size"), "{err}");

    let out = Command::new(env!("CARGO_BIN_EXE_cas-server"))
        .arg("--config")
        .arg(tmp.path().join("missing.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config file"));
}
