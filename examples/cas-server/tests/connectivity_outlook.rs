//! `cas-server test-outlookconnectivity` against the real demo server (issue 9 step 7):
//! Autodiscover, the RPC proxy's authentication, the RPC over HTTP handshake, MGMT on two
//! built-in backend ports and the RPC ping all pass; a wrong password fails at the
//! authentication step, a user blocked from Outlook Anywhere at Autodiscover, a port outside
//! ValidPorts at its endpoint step; usage errors exit 2.

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{Server, free_port};

/// The demo server with Outlook Anywhere on HTTPS and the RPC backend on two free ports that
/// ValidPorts allows.
struct Oa {
    server: Server,
    https: u16,
    rpc: [u16; 2],
}

fn admin(server: &Server, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_cas-server"))
        .arg("--data-dir")
        .arg(server.data_dir())
        .args(args)
        .output()
        .expect("run the admin command");
    assert!(
        out.status.success(),
        "cas-server {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn wait_port(server: &Server, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "port {port} never listened:\n{}",
            server.log()
        );
        sleep(Duration::from_millis(50));
    }
}

fn start() -> Oa {
    let (pop3, pop3s, https) = (free_port(), free_port(), free_port());
    let rpc = [free_port(), free_port()];
    let args = vec![
        "--pop3-listen".to_owned(),
        format!("127.0.0.1:{pop3}"),
        "--pop3s-listen".to_owned(),
        format!("127.0.0.1:{pop3s}"),
        "--imap-listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--imaps-listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--https-listen".to_owned(),
        format!("127.0.0.1:{https}"),
        "--rpc-backend-listen".to_owned(),
        format!("127.0.0.1:{}", rpc[0]),
        "--rpc-backend-listen".to_owned(),
        format!("127.0.0.1:{}", rpc[1]),
    ];
    let mut server = Server::start_program(env!("CARGO_BIN_EXE_cas-server"), &args, (pop3, pop3s));
    wait_port(&server, https);
    // The backend's ports are ephemeral: let the proxy reach them.
    let status = server.terminate();
    assert!(status.success(), "{}", server.log());
    admin(
        &server,
        &[
            "set-outlookanywhere",
            "--valid-ports",
            &format!("*:{},*:{}", rpc[0], rpc[1]),
        ],
    );
    server.restart();
    wait_port(&server, https);
    Oa { server, https, rpc }
}

fn password_file(server: &Server, user: &str, password: &str) -> PathBuf {
    let path = server.dir.join(format!("{user}.password"));
    fs::write(&path, format!("{password}\n")).unwrap();
    path
}

fn tester(args: &[String]) -> Output {
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

/// Runs the test as `user` with `password` and returns the exit code and the JSON report.
fn outlook(
    oa: &Oa,
    user: &str,
    password: &str,
    extra: &[&str],
) -> (Option<i32>, serde_json::Value) {
    let pw = password_file(&oa.server, user, password);
    let mut args: Vec<String> = vec![
        "test-outlookconnectivity".into(),
        format!("localhost:{}", oa.https),
        "--user".into(),
        user.into(),
        "--password-file".into(),
        pw.to_str().unwrap().into(),
        "--ca-file".into(),
        oa.server.cert().to_str().unwrap().into(),
        "--rpc-ports".into(),
        format!("{},{}", oa.rpc[0], oa.rpc[1]),
        "--timeout".into(),
        "30".into(),
        "--json".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = tester(&args);
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "the report is not JSON ({e}):\n{}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            oa.server.log()
        )
    });
    (out.status.code(), report)
}

fn steps(report: &serde_json::Value) -> Vec<(String, String)> {
    report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn failed(report: &serde_json::Value) -> Vec<(String, String, String)> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "failed")
        .map(|s| {
            assert!(
                s["hint"].as_str().is_some_and(|h| !h.is_empty()),
                "a failed step has a hint: {s}"
            );
            (
                s["name"].as_str().unwrap().to_owned(),
                s["cause"].as_str().unwrap().to_owned(),
                s["hint"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn every_step_passes_against_the_demo_server_and_failures_explain_themselves() {
    let oa = start();
    let password = oa.server.password("alice");

    let (code, report) = outlook(&oa, "alice", &password, &[]);
    let names: Vec<String> = steps(&report).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        code,
        Some(0),
        "{report:#}\nserver log:\n{}",
        oa.server.log()
    );
    assert!(failed(&report).is_empty(), "{report:#}");
    let expected_prefixes = [
        "DNS resolution",
        "TCP connect",
        "TLS handshake",
        "Autodiscover: HTTP authentication",
        "Autodiscover (POX)",
        "HTTP auth probe",
        "RPC proxy: HTTP authentication",
        "RPC over HTTP handshake",
        "RPC endpoint localhost:",
        "RPC ping",
        "RPC endpoint localhost:",
    ];
    assert_eq!(names.len(), expected_prefixes.len(), "{names:#?}");
    for (name, prefix) in names.iter().zip(expected_prefixes) {
        assert!(name.starts_with(prefix), "{name} is not {prefix}…");
    }
    let detail = |prefix: &str| -> String {
        report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"].as_str().unwrap().starts_with(prefix))
            .and_then(|s| s["detail"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let pox = detail("Autodiscover (POX)");
    assert!(
        pox.contains(&format!("https://localhost:{}/rpc/rpcproxy.dll", oa.https)),
        "{pox}"
    );
    assert!(
        detail("RPC endpoint").contains("afa8bd80-7d8a-11c9-bef4-08002b102989"),
        "{report:#}"
    );
    assert!(detail("RPC ping").contains("listening"), "{report:#}");

    // Basic over TLS works too.
    let (code, report) = outlook(&oa, "alice", &password, &["--auth", "basic"]);
    assert_eq!(code, Some(0), "{report:#}");

    // A wrong password fails at Autodiscover's authentication, saying so.
    let (code, report) = outlook(&oa, "alice", "not-the-password", &[]);
    assert_eq!(code, Some(1), "{report:#}");
    let f = failed(&report);
    assert_eq!(f.len(), 1, "{report:#}");
    assert!(
        f[0].0.starts_with("Autodiscover: HTTP authentication"),
        "{f:?}"
    );
    assert!(f[0].1.contains("refused the credentials"), "{f:?}");
    assert!(f[0].2.contains("password"), "{f:?}");

    // A user blocked from Outlook Anywhere gets no EXPR section.
    admin(
        &oa.server,
        &[
            "set-casmailbox",
            "bob",
            "--mapi-block-outlook-rpc-http",
            "true",
        ],
    );
    // The policy reloads within its 2 s poll.
    let deadline = Instant::now() + Duration::from_secs(20);
    let bob = oa.server.password("bob");
    loop {
        let (code, report) = outlook(&oa, "bob", &bob, &[]);
        let f = failed(&report);
        if code == Some(1)
            && f.first()
                .is_some_and(|f| f.0.starts_with("Autodiscover (POX)"))
        {
            assert!(f[0].1.contains("EXPR"), "{f:?}");
            assert!(f[0].2.contains("MAPIBlockOutlookRpcHttp"), "{f:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "policy change not seen: {report:#}"
        );
        sleep(Duration::from_millis(500));
    }

    // A port outside ValidPorts fails at its endpoint step.
    let closed = free_port();
    let (code, report) = outlook(
        &oa,
        "alice",
        &password,
        &["--rpc-ports", &format!("{},{closed}", oa.rpc[0])],
    );
    assert_eq!(code, Some(1), "{report:#}");
    let f = failed(&report);
    assert_eq!(f.len(), 1, "{report:#}");
    assert!(
        f[0].0
            .ends_with(&format!(":{closed}: MGMT bind + inq_if_ids")),
        "{f:?}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cas-server"))
            .args(args)
            .output()
            .unwrap()
            .status
            .code()
    };
    assert_eq!(
        run(&["test-outlookconnectivity", "localhost", "--user", "a"]),
        Some(2),
        "no password"
    );
    assert_eq!(
        run(&[
            "test-outlookconnectivity",
            "localhost",
            "--user",
            "a",
            "--password",
            "p",
            "--security",
            "starttls"
        ]),
        Some(2)
    );
    assert_eq!(
        run(&[
            "test-outlookconnectivity",
            "localhost",
            "--user",
            "a",
            "--password",
            "p",
            "--rpc-ports",
            "0"
        ]),
        Some(2)
    );
}
