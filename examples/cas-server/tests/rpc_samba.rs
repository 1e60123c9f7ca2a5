//! Samba's `ncacn_http` client (Debian's `python3-samba`, 4.17: `samba.dcerpc.mgmt` with
//! `RpcProxy=` and `HttpAuthOption=`) through the real binary's Outlook Anywhere proxy to
//! its built-in RPC backend, over TLS on loopback.
//!
//! Samba is an independent implementation of every layer involved: its own HTTP client and
//! NTLM (libcli/http, gensec), its own RPC over HTTP v2 handshake (CONN/A1, B1, A3, C2), and
//! at the RPC level SPNEGO-wrapped NTLM with bind-time feature negotiation, header signing
//! and a verification trailer. The script is `tests/rpc_samba/samba_mgmt.py`, run with the
//! distribution's Python (`$CAS_SYSTEM_PYTHON`, default `/usr/bin/python3`), where apt puts
//! the bindings.
//!
//! Two things in Samba 4.17's client shape what is tested:
//! - It stalls on the first HTTP response after TLS 1.3 session tickets. The HTTPS listener
//!   therefore sends none by default (`[outlook_anywhere] tls13_session_tickets`); every run
//!   here uses TLS 1.3 (GnuTLS's default) with that default.
//! - After CONN/C2 it passes the OUT channel's bytes straight to its DCE/RPC layer: it never
//!   sends FlowControlAck (MS-RPCH §3.2.2.4.1 requires one whenever half its 64 KiB receive
//!   window is consumed). The RPC server rightly stops sending once the window is full, so
//!   a Samba session ends after about 64 KiB of responses.
//!   [`samba_stalls_at_its_receive_window`] shows this; the other runs stay below it.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{Server, client_available, run};

const SAMBA: &[&str] = &["-c", "import samba.dcerpc.mgmt"];

/// The interpreter python3-samba is installed for.
fn system_python() -> String {
    std::env::var("CAS_SYSTEM_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".to_string())
}

fn script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rpc_samba/samba_mgmt.py")
}

/// The server, its built-in backend's port allowed as `localhost` and `127.0.0.1`.
fn start() -> (Server, u16) {
    let server = Server::start_outlook_anywhere(None);
    let port = server.rpc_backend_port;
    let ports = format!("localhost:{port},127.0.0.1:{port}");
    server.admin_ok(&["set-outlookanywhere", "--valid-ports", &ports]);
    server.reload();
    (server, port)
}

/// One Samba client run: `target` is `(server, port)` as the binding names them.
struct Run<'a> {
    target: (&'a str, u16),
    user: &'a str,
    password: &'a str,
    http_auth: &'a str,
    rpc_flags: &'a str,
    calls: u32,
    expect: &'a str,
}

impl Run<'_> {
    fn command(&self, server: &Server) -> Command {
        let mut command = Command::new(system_python());
        command.arg(script()).args([
            server.https_port.to_string(),
            self.target.0.to_string(),
            self.target.1.to_string(),
            self.user.to_string(),
            self.password.to_string(),
            self.http_auth.to_string(),
            self.rpc_flags.to_string(),
            self.calls.to_string(),
            self.expect.to_string(),
        ]);
        command
    }

    fn output(&self, server: &Server) -> Output {
        run(&mut self.command(server))
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_ok(what: &str, out: &Output, server: &Server) {
    assert!(
        out.status.success(),
        "{what} failed\nstdout: {}\nstderr (last 4 KiB): {}\nserver log:\n{}",
        stdout(out),
        tail(&String::from_utf8_lossy(&out.stderr), 4096),
        server.log()
    );
}

fn tail(text: &str, n: usize) -> &str {
    let mut start = text.len().saturating_sub(n);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[test]
fn samba_mgmt_through_the_proxy() {
    if !client_available("samba_mgmt_through_the_proxy", &system_python(), SAMBA) {
        return;
    }
    let (server, port) = start();
    let alice = server.password("alice");
    // HTTP-level NTLM, Negotiate (SPNEGO-wrapped NTLM: no realm, so no Kerberos) and Basic;
    // at the RPC level Samba's default (SPNEGO/NTLM, packet integrity), then privacy (seal)
    // and connect. 200 calls stay under the receive window.
    for (http_auth, rpc_flags) in [
        ("ntlm", ""),
        ("negotiate", ""),
        ("basic", ""),
        ("ntlm", "seal"),
        ("ntlm", "connect"),
    ] {
        let run = Run {
            target: ("localhost", port),
            user: "alice",
            password: &alice,
            http_auth,
            rpc_flags,
            calls: 200,
            expect: "ok",
        };
        let out = run.output(&server);
        let what = format!("samba {http_auth} {rpc_flags:?}");
        assert_ok(&what, &out, &server);
        let text = stdout(&out);
        assert!(text.contains("connected"), "{what}: {text}");
        assert!(text.contains("calls 200 ok"), "{what}: {text}");
    }
    let log = server.plain_log();
    // SPNEGO (auth type 9) at integrity (5), privacy (6) and connect (2).
    for level in ["level=5", "level=6", "level=2"] {
        assert!(
            log.lines()
                .any(|l| l.contains("RPC-level authentication succeeded")
                    && l.contains("alice")
                    && l.contains("auth_type=9")
                    && l.contains(level)),
            "SPNEGO {level} not in the backend's log:\n{log}"
        );
    }
    for scheme in [
        "scheme=\"NTLM\"",
        "scheme=\"Negotiate\"",
        "scheme=\"Basic\"",
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains("HTTP login succeeded") && l.contains(scheme)),
            "{scheme} login not logged:\n{log}"
        );
    }
    // (The start-up banner prints the demo passwords; no tracing line may.)
    assert!(
        !log.lines()
            .any(|l| l.contains("cas_server") && l.contains(alice.as_str())),
        "the password reached a log line"
    );
}

#[test]
fn samba_refusals() {
    if !client_available("samba_refusals", &system_python(), SAMBA) {
        return;
    }
    let (server, port) = start();
    let alice = server.password("alice");
    let refused = |target: (&str, u16), password: &str, http_auth: &str| {
        let run = Run {
            target,
            user: "alice",
            password,
            http_auth,
            rpc_flags: "",
            calls: 0,
            expect: "refused",
        };
        let out = run.output(&server);
        assert_ok(&format!("refusal of {target:?} {http_auth}"), &out, &server);
        assert!(stdout(&out).contains("refused"), "{}", stdout(&out));
    };
    refused(("localhost", port), "not-the-password", "ntlm");
    refused(("localhost", port), "not-the-password", "basic");
    // A port outside ValidPorts: refused before any backend connection.
    let closed = common::free_port();
    refused(("localhost", closed), &alice, "ntlm");
    let log = server.plain_log();
    assert!(log.contains("HTTP login failed"), "{log}");
    assert!(
        !log.contains("rpc backend: IN channel opened"),
        "a refused client reached the backend:\n{log}"
    );
}

/// Samba never acknowledges what it received (no FlowControlAck), so once its 64 KiB receive
/// window is full the RPC server waits, as MS-RPCH requires: the session stops after
/// roughly 600 `inq_if_ids` answers of about 100 bytes. This shows the client bug the issue
/// asks to show. If a later Samba acknowledges, this test fails and can go.
#[test]
fn samba_stalls_at_its_receive_window() {
    if !client_available(
        "samba_stalls_at_its_receive_window",
        &system_python(),
        SAMBA,
    ) {
        return;
    }
    let (server, port) = start();
    let alice = server.password("alice");
    let run = Run {
        target: ("localhost", port),
        user: "alice",
        password: &alice,
        http_auth: "ntlm",
        rpc_flags: "",
        calls: 5000,
        expect: "ok",
    };
    let mut child = run
        .command(&server)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = BufReader::new(child.stdout.take().unwrap());
    thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    // Progress lines come every 50 calls; 5 s without one is a stall.
    let mut calls = 0u32;
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
        if let Some(n) = line.strip_prefix("progress ") {
            calls = n.trim().parse().unwrap();
        }
        lines.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        lines.iter().any(|l| l == "connected"),
        "Samba did not connect: {lines:?}\n{}",
        server.log()
    );
    assert!(
        (400..2000).contains(&calls),
        "expected a stall after ~64 KiB of answers, got {calls} calls: {lines:?}"
    );
    // The server keeps serving others: a fresh Samba session completes.
    let again = Run { calls: 10, ..run };
    assert_ok(
        "a session after the stalled one",
        &again.output(&server),
        &server,
    );
}
