//! End to end with impacket 0.13.1 (`$CAS_PYTHON`): its own `mgmt` module against the real
//! `cas-server` binary's built-in RPC backend, straight over `ncacn_http` (the legacy mode
//! of the backend port: greeting, then PDUs), at every RPC-level NTLM level, with a wrong
//! password, and with `require_auth_level` refusing unauthenticated calls.

mod common;

use std::fs;
use std::process::Command;

use common::{Server, client_available, free_port, python, run};

const IMPACKET: &[&str] = &["-c", "import impacket.dcerpc.v5.mgmt"];

fn script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rpc_e2e/impacket_mgmt.py")
}

/// The server with its RPC backend on a free port.
fn start() -> (Server, u16) {
    let (pop3, pop3s, rpc) = (free_port(), free_port(), free_port());
    let args = [
        "--pop3-listen".to_owned(),
        format!("127.0.0.1:{pop3}"),
        "--pop3s-listen".to_owned(),
        format!("127.0.0.1:{pop3s}"),
        "--https-listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--imap-listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--imaps-listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--rpc-backend-listen".to_owned(),
        format!("127.0.0.1:{rpc}"),
    ];
    let server = Server::start_program(env!("CARGO_BIN_EXE_cas-server"), &args, (pop3, pop3s));
    (server, rpc)
}

fn impacket(
    server: &Server,
    port: u16,
    user: &str,
    password: &str,
    level: &str,
    calls: u32,
    expect: &str,
) {
    let out = run(Command::new(python())
        .arg(script())
        .arg(format!("ncacn_http:127.0.0.1[{port}]"))
        .args([user, password, level, &calls.to_string(), expect]));
    assert!(
        out.status.success(),
        "impacket {level} expecting {expect} failed\nstdout: {}\nstderr: {}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
}

#[test]
fn impacket_mgmt_at_every_level() {
    if !client_available("impacket_mgmt_at_every_level", &python(), IMPACKET) {
        return;
    }
    let (server, port) = start();
    let alice = server.password("alice");
    for level in ["none", "connect", "integrity", "privacy"] {
        impacket(&server, port, "alice", &alice, level, 100, "ok");
    }
    impacket(
        &server,
        port,
        "alice",
        "not-the-password",
        "integrity",
        0,
        "auth_failed",
    );
    impacket(&server, port, "nobody", &alice, "privacy", 0, "auth_failed");
    let log = server.plain_log();
    for level in [2, 5, 6] {
        assert!(
            log.contains(&format!("user=\"alice\" auth_type=10 level={level}")),
            "level {level} not logged:\n{log}"
        );
    }
    assert!(log.contains("RPC-level authentication failed"), "{log}");
    // (The start-up banner prints the demo passwords; the backend's lines must not.)
    assert!(
        !log.lines()
            .any(|l| l.contains("rpc_backend") && l.contains(alice.as_str())),
        "the password reached the backend's log lines"
    );
}

#[test]
fn required_level_refuses_weaker_calls() {
    if !client_available("required_level_refuses_weaker_calls", &python(), IMPACKET) {
        return;
    }
    let (mut server, port) = start();
    let config = server.data_dir().join("cas-server.toml");
    let text = fs::read_to_string(&config).unwrap();
    let text = text.replace(
        "# require_auth_level = \"none\"",
        "require_auth_level = \"integrity\"",
    );
    assert!(text.contains("\nrequire_auth_level = \"integrity\""));
    fs::write(&config, text).unwrap();
    assert!(server.terminate().success());
    server.restart();
    let alice = server.password("alice");
    impacket(&server, port, "alice", &alice, "none", 0, "access_denied");
    impacket(
        &server,
        port,
        "alice",
        &alice,
        "connect",
        0,
        "access_denied",
    );
    impacket(&server, port, "alice", &alice, "integrity", 5, "ok");
    impacket(&server, port, "alice", &alice, "privacy", 5, "ok");
}
