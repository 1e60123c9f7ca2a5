//! `cas-server test-popconnectivity` (and `test-imapconnectivity`) as an admin runs them:
//! the real binary against the demo server on every security mode it offers, against
//! Dovecot (our independent peer, see `connectivity_dovecot.rs`), and the failure
//! explanations: wrong password, self-signed certificate without the flag, certificate for
//! another host name, closed port, server offering only clear-text login; exit statuses 0,
//! 1 and 2.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Server, free_port};

/// Runs `cas-server ARGS` and returns its output.
fn tester(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_cas-server"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run cas-server");
    eprintln!(
        "cas-server {args:?}\nstatus {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The `--json` report of a run.
fn json_report(args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let output = tester(&all);
    let value = serde_json::from_slice(&output.stdout).expect("the report is JSON");
    (output.status.code(), value)
}

/// The failed step of a report: (name, cause).
fn failed_step(report: &serde_json::Value) -> (String, String) {
    let steps = report["steps"].as_array().expect("steps");
    let failed: Vec<_> = steps.iter().filter(|s| s["status"] == "failed").collect();
    assert_eq!(failed.len(), 1, "exactly one failed step: {report:#}");
    let last = steps.last().unwrap();
    assert_eq!(
        last["status"], "failed",
        "the failed step is the last: {report:#}"
    );
    assert!(
        last["hint"].as_str().is_some_and(|h| !h.is_empty()),
        "a hint: {report:#}"
    );
    (
        last["name"].as_str().unwrap().to_owned(),
        last["cause"].as_str().unwrap().to_owned(),
    )
}

fn step_names(report: &serde_json::Value) -> Vec<String> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

fn warnings(report: &serde_json::Value) -> Vec<String> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["warnings"].as_array().unwrap().clone())
        .map(|w| w.as_str().unwrap().to_owned())
        .collect()
}

/// Writes `alice`'s demo password to a file (so it is not on the command line).
fn password_file(server: &Server, user: &str) -> PathBuf {
    let path = server.dir.join(format!("{user}.password"));
    fs::write(&path, format!("{}\n", server.password(user))).unwrap();
    path
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn pop_passes_against_the_demo_server_on_every_security_mode() {
    let server = Server::start();
    let pw = password_file(&server, "alice");
    let tls_target = format!("localhost:{}", server.pop3s_port);
    let plain_target = format!("localhost:{}", server.pop3_port);
    let cert = server.cert();

    // Implicit TLS with the self-signed flag, human output.
    let out = tester(&[
        "test-popconnectivity",
        &tls_target,
        "--user",
        "alice",
        "--password-file",
        path(&pw),
        "--accept-self-signed",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "✓ DNS resolution",
        "✓ TCP connect",
        "✓ TLS handshake",
        "warning: the certificate is self-signed; accepted because of --accept-self-signed",
        "✓ Greeting and capabilities",
        "✓ Login",
        "logged in as alice with PLAIN",
        "✓ STAT",
        "✓ LIST",
        "✓ RETR newest message",
        "✓ QUIT",
        "PASSED: 9 steps",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }

    // STLS, each login mechanism, the demo CA as --ca-file; JSON.
    for mechanism in ["plain", "login", "ntlm", "user"] {
        let (code, report) = json_report(&[
            "test-popconnectivity",
            &plain_target,
            "--security",
            "starttls",
            "--user",
            "alice",
            "--password-file",
            path(&pw),
            "--ca-file",
            path(&cert),
            "--mechanism",
            mechanism,
        ]);
        assert_eq!(code, Some(0), "{mechanism}: {report:#}");
        assert_eq!(report["result"], "passed");
        assert_eq!(
            step_names(&report),
            [
                "DNS resolution",
                "TCP connect",
                "Greeting and capabilities",
                "STLS",
                "TLS handshake",
                "Capabilities after TLS",
                "Login",
                "STAT",
                "LIST",
                "RETR newest message",
                "QUIT"
            ]
        );
        let login = &report["steps"][6]["detail"];
        assert!(
            login
                .as_str()
                .unwrap()
                .ends_with(&format!("with {}", mechanism.to_uppercase())),
            "{login}"
        );
        assert!(
            report["steps"][7]["detail"]
                .as_str()
                .unwrap()
                .contains("messages"),
            "{report:#}"
        );
    }

    // Plain POP3 with NTLM (no clear-text password): the demo server's LoginType
    // (SecureLogin) wants TLS before any login, and the report says so.
    let (code, report) = json_report(&[
        "test-popconnectivity",
        &plain_target,
        "--security",
        "plain",
        "--user",
        "alice",
        "--password-file",
        path(&pw),
        "--mechanism",
        "ntlm",
    ]);
    assert_eq!(code, Some(1), "{report:#}");
    let (step, cause) = failed_step(&report);
    assert_eq!(step, "Login");
    assert!(cause.contains("requires a TLS connection"), "{cause}");
    let hint = report["steps"].as_array().unwrap().last().unwrap()["hint"].clone();
    assert!(
        hint.as_str().unwrap().contains("--security starttls"),
        "{hint}"
    );
}

#[test]
fn pop_failure_explanations_against_the_demo_server() {
    let server = Server::start();
    let pw = password_file(&server, "alice");
    let tls_target = format!("localhost:{}", server.pop3s_port);

    // Wrong password: the login step, "authentication failed".
    let (code, report) = json_report(&[
        "test-popconnectivity",
        &tls_target,
        "--user",
        "alice",
        "--password",
        "not-the-password",
        "--accept-self-signed",
    ]);
    assert_eq!(code, Some(1));
    let (step, cause) = failed_step(&report);
    assert_eq!(step, "Login");
    assert!(cause.starts_with("authentication failed"), "{cause}");

    // Self-signed without the flag: the TLS step.
    let (code, report) = json_report(&[
        "test-popconnectivity",
        &tls_target,
        "--user",
        "alice",
        "--password-file",
        path(&pw),
    ]);
    assert_eq!(code, Some(1));
    let (step, cause) = failed_step(&report);
    assert_eq!(step, "TLS handshake");
    assert!(cause.starts_with("certificate is self-signed"), "{cause}");

    // Plain POP3 against the TLS port: no greeting in plain text; the hint says why.
    let (code, report) = json_report(&[
        "test-popconnectivity",
        &tls_target,
        "--security",
        "plain",
        "--user",
        "alice",
        "--password-file",
        path(&pw),
        "--timeout",
        "2",
    ]);
    assert_eq!(code, Some(1));
    let (step, cause) = failed_step(&report);
    assert_eq!(step, "Greeting and capabilities");
    assert!(
        cause.starts_with("no greeting from the server within 2 s"),
        "{cause}"
    );
}

#[test]
fn certificate_for_another_host_name() {
    // The demo server with a certificate for other.example, trusted through --ca-file.
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["other.example".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cert_path, key_path) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    fs::write(&cert_path, cert.pem()).unwrap();
    fs::write(&key_path, key.serialize_pem()).unwrap();
    let (pop3, pop3s) = (free_port(), free_port());
    let server = Server::start_program(
        env!("CARGO_BIN_EXE_cas-server"),
        &[
            "--pop3-listen".into(),
            format!("127.0.0.1:{pop3}"),
            "--pop3s-listen".into(),
            format!("127.0.0.1:{pop3s}"),
            "--https-listen".into(),
            "127.0.0.1:0".into(),
            "--cert".into(),
            path(&cert_path).into(),
            "--key".into(),
            path(&key_path).into(),
            // The demo's other listeners are on fixed ports; tests run in parallel.
            "--imap-listen".into(),
            "127.0.0.1:0".into(),
            "--imaps-listen".into(),
            "127.0.0.1:0".into(),
            "--rpc-backend-listen".into(),
            "127.0.0.1:0".into(),
        ],
        (pop3, pop3s),
    );
    let (code, report) = json_report(&[
        "test-popconnectivity",
        &format!("localhost:{pop3s}"),
        "--user",
        "alice",
        "--password",
        &server.password("alice"),
        "--ca-file",
        path(&cert_path),
    ]);
    assert_eq!(code, Some(1));
    let (step, cause) = failed_step(&report);
    assert_eq!(step, "TLS handshake");
    assert_eq!(cause, "certificate is for other.example, not localhost");

    // --accept-self-signed does not excuse the wrong name.
    let (code, report) = json_report(&[
        "test-popconnectivity",
        &format!("localhost:{pop3s}"),
        "--user",
        "alice",
        "--password",
        "x",
        "--accept-self-signed",
    ]);
    assert_eq!(code, Some(1));
    assert_eq!(
        failed_step(&report).1,
        "certificate is for other.example, not localhost"
    );
}

#[test]
fn closed_port_and_usage_errors() {
    let port = free_port();
    let (code, report) = json_report(&[
        "test-popconnectivity",
        &format!("127.0.0.1:{port}"),
        "--user",
        "alice",
        "--password",
        "x",
    ]);
    assert_eq!(code, Some(1));
    let (step, cause) = failed_step(&report);
    assert_eq!(step, "TCP connect");
    assert!(cause.starts_with("connection refused"), "{cause}");
    assert_eq!(
        report["steps"][0]["detail"],
        "127.0.0.1 is an IP address, no lookup needed"
    );

    // Usage errors exit 2 and print no report.
    for args in [
        &["test-popconnectivity", "localhost", "--user", "alice"][..],
        &[
            "test-popconnectivity",
            "localhost:0",
            "--user",
            "a",
            "--password",
            "x",
        ],
        &["test-popconnectivity", "localhost", "--password", "x"],
        &["test-popconnectivity", "localhost", "--security", "ssl"],
        &[
            "test-popconnectivity",
            "localhost",
            "--user",
            "a",
            "--password-file",
            "/nonexistent/pw",
        ],
    ] {
        let out = tester(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

/// A POP3 server that offers only USER/PASS and no STLS, answering every login `-ERR`.
fn clear_text_only_server() -> (u16, std::thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        writer.write_all(b"+OK fake POP3 ready\r\n").unwrap();
        let mut seen = Vec::new();
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            let command = line.trim_end().to_owned();
            line.clear();
            let reply: &[u8] = match command.to_ascii_uppercase().as_str() {
                "CAPA" => b"+OK\r\nUSER\r\nSASL PLAIN\r\nUIDL\r\n.\r\n",
                "QUIT" => b"+OK bye\r\n",
                _ => b"-ERR [AUTH] no\r\n",
            };
            seen.push(command.clone());
            writer.write_all(reply).unwrap();
            if command.eq_ignore_ascii_case("QUIT") {
                break;
            }
        }
        seen
    });
    (port, handle)
}

#[test]
fn clear_text_only_server_gets_a_warning_and_no_password() {
    let (port, server) = clear_text_only_server();
    let (code, report) = json_report(&[
        "test-popconnectivity",
        &format!("127.0.0.1:{port}"),
        "--security",
        "plain",
        "--user",
        "alice",
        "--password",
        "secret-password",
    ]);
    assert_eq!(code, Some(1));
    let (step, cause) = failed_step(&report);
    assert_eq!(step, "Login");
    assert!(
        cause.starts_with("refusing to send the password in clear text"),
        "{cause}"
    );
    assert!(
        warnings(&report)
            .iter()
            .any(|w| w.contains("clear-text login (USER, SASL PLAIN) on a connection without TLS")),
        "{report:#}"
    );
    let seen = server.join().unwrap();
    assert!(
        seen.iter()
            .all(|c| !c.contains("secret") && !c.starts_with("PASS")),
        "{seen:?}"
    );
}

/// The demo server with IMAP listeners too: `(server, imap port, imaps port)`.
fn demo_with_imap() -> (Server, u16, u16) {
    let (imap, imaps) = (free_port(), free_port());
    let server = Server::start_program(
        env!("CARGO_BIN_EXE_cas-server"),
        &[
            "--pop3-listen".into(),
            "127.0.0.1:0".into(),
            "--pop3s-listen".into(),
            "127.0.0.1:0".into(),
            "--https-listen".into(),
            "127.0.0.1:0".into(),
            "--imap-listen".into(),
            format!("127.0.0.1:{imap}"),
            "--imaps-listen".into(),
            format!("127.0.0.1:{imaps}"),
            "--rpc-backend-listen".into(),
            "127.0.0.1:0".into(),
        ],
        (imap, imaps),
    );
    (server, imap, imaps)
}

#[test]
fn imap_passes_against_the_demo_server_on_every_security_mode() {
    let (server, imap, imaps) = demo_with_imap();
    let pw = password_file(&server, "alice");
    let cert = server.cert();
    let before = server.maildir_files("alice");

    // Implicit TLS, the self-signed flag, APPEND + delete of a test message.
    let (code, report) = json_report(&[
        "test-imapconnectivity",
        &format!("localhost:{imaps}"),
        "--user",
        "alice",
        "--password-file",
        path(&pw),
        "--accept-self-signed",
        "--send-test-message",
    ]);
    assert_eq!(code, Some(0), "{report:#}\n{}", server.log());
    assert_eq!(
        step_names(&report),
        [
            "DNS resolution",
            "TCP connect",
            "TLS handshake",
            "Greeting and capabilities",
            "Login",
            "LIST",
            "SELECT INBOX",
            "FETCH newest message header",
            "APPEND test message",
            "Delete test message",
            "LOGOUT"
        ]
    );

    // STARTTLS with each login method and the demo certificate as --ca-file.
    for mechanism in ["plain", "login", "ntlm", "user"] {
        let (code, report) = json_report(&[
            "test-imapconnectivity",
            &format!("localhost:{imap}"),
            "--security",
            "starttls",
            "--user",
            "alice",
            "--password-file",
            path(&pw),
            "--ca-file",
            path(&cert),
            "--mechanism",
            mechanism,
        ]);
        assert_eq!(code, Some(0), "{mechanism}: {report:#}\n{}", server.log());
        let select = report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "SELECT INBOX")
            .unwrap();
        assert!(
            select["detail"].as_str().unwrap().contains("message"),
            "{report:#}"
        );
    }
    // The test message is gone again.
    assert_eq!(server.maildir_files("alice"), before);

    // A wrong password fails at the login step.
    let (code, report) = json_report(&[
        "test-imapconnectivity",
        &format!("localhost:{imaps}"),
        "--user",
        "alice",
        "--password",
        "wrong",
        "--accept-self-signed",
    ]);
    assert_eq!(code, Some(1));
    let (step, cause) = failed_step(&report);
    assert_eq!(step, "Login");
    assert!(cause.starts_with("authentication failed"), "{cause}");
}
