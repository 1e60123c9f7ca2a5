//! Black-box NTLM interop: the real `cas-server` (POP3 `AUTH NTLM`) and the
//! `cas-http-auth-test` endpoint (HTTP `NTLM`, `Negotiate`, `Basic`), driven by pyspnego,
//! requests-ntlm and curl over loopback.
//!
//! Clients that are not installed make a test print `SKIP` and pass, unless
//! `CAS_REQUIRE_INTEROP=1` (see `common`). Passwords are the demo ones: ASCII, because curl
//! 7.88 hashes non-ASCII NTLM passwords wrongly.

mod common;

use std::process::{Command, Output};

use common::{Server, assert_success, client_available, python, run, script};

const PYSPNEGO_PROBE: &[&str] = &["-c", "import spnego, poplib, ssl"];

/// Runs `pop3_ntlm.py` against `server`.
fn pyspnego_pop3(
    server: &Server,
    mode: &str,
    user: &str,
    password: &str,
    expect: &str,
    bindings: &str,
) -> Output {
    let port = if mode == "pop3s" {
        server.pop3s_port
    } else {
        server.pop3_port
    };
    run(Command::new(python())
        .arg(script("pop3_ntlm.py"))
        .args([mode, "localhost", &port.to_string(), user, password])
        .arg(server.cert())
        .args([expect, bindings]))
}

#[test]
fn pyspnego_pop3_auth_ntlm() {
    if !client_available("pyspnego_pop3", &python(), PYSPNEGO_PROBE) {
        return;
    }
    let server = Server::start();
    let alice = server.password("alice");
    let bob = server.password("bob");
    // Right password over every transport (NTLM is offered before TLS too), bindings
    // ignored under the default policy.
    for mode in ["pop3s", "stls", "plain"] {
        let out = pyspnego_pop3(&server, mode, "alice", &alice, "ok", "none");
        assert_success(&out, &server);
    }
    let out = pyspnego_pop3(&server, "pop3s", "bob", &bob, "ok", "wrong");
    assert_success(&out, &server);
    // Wrong password, and an unknown user: -ERR [AUTH].
    let out = pyspnego_pop3(&server, "pop3s", "alice", &bob, "fail", "none");
    assert_success(&out, &server);
    let out = pyspnego_pop3(&server, "pop3s", "mallory", &alice, "fail", "none");
    assert_success(&out, &server);
    // The configured NetBIOS domain (any case) and the DNS domain map to the local user; a
    // foreign domain is refused even with the right password.
    for user in [r"CAS\alice", r"cas\alice", r"localhost\alice"] {
        let out = pyspnego_pop3(&server, "stls", user, &alice, "ok", "none");
        assert_success(&out, &server);
    }
    let out = pyspnego_pop3(&server, "pop3s", r"EVIL\alice", &alice, "fail", "none");
    assert_success(&out, &server);
    assert!(
        server.log().contains("SASL exchange failed"),
        "{}",
        server.log()
    );
}

#[test]
fn pyspnego_pop3_configured_domains_and_channel_bindings() {
    if !client_available("pyspnego_pop3_configured", &python(), PYSPNEGO_PROBE) {
        return;
    }
    let server = Server::start_with_config(
        "netbios_domain = \"EXAMPLE\"\naccepted_domains = [\"OLDCORP\"]\n",
    );
    let alice = server.password("alice");
    for user in [r"EXAMPLE\alice", r"OLDCORP\alice", "alice"] {
        let out = pyspnego_pop3(&server, "pop3s", user, &alice, "ok", "none");
        assert_success(&out, &server);
    }
    let out = pyspnego_pop3(&server, "pop3s", r"CAS\alice", &alice, "fail", "none");
    assert_success(&out, &server);

    // Extended Protection required: only the certificate's own bindings pass, and a
    // connection without TLS has none to offer.
    let server = Server::start_with_config("extended_protection = \"require\"\n");
    let alice = server.password("alice");
    let out = pyspnego_pop3(&server, "pop3s", "alice", &alice, "ok", "right");
    assert_success(&out, &server);
    let out = pyspnego_pop3(&server, "stls", "alice", &alice, "ok", "right");
    assert_success(&out, &server);
    for (mode, bindings) in [("pop3s", "wrong"), ("pop3s", "none"), ("plain", "none")] {
        let out = pyspnego_pop3(&server, mode, "alice", &alice, "fail", bindings);
        assert_success(&out, &server);
    }
}

fn curl(server: &Server, user: &str, password: &str, url: &str, extra: &[&str]) -> Output {
    run(Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "60"])
        .arg("--cacert")
        .arg(server.cert())
        .args(["--user", &format!("{user}:{password}")])
        .args(extra)
        .arg(url))
}

#[test]
fn curl_pop3_auth_ntlm() {
    if !client_available("curl_pop3_ntlm", "curl", &["--version"]) {
        return;
    }
    let server = Server::start();
    let alice = server.password("alice");
    let stls = format!("pop3://localhost:{}/", server.pop3_port);
    let implicit = format!("pop3s://localhost:{}/", server.pop3s_port);
    let ntlm = ["--login-options", "AUTH=NTLM"];
    for (url, tls) in [(&stls, Some("--ssl-reqd")), (&implicit, None)] {
        let mut extra = ntlm.to_vec();
        extra.extend(tls);
        let out = curl(&server, "alice", &alice, url, &extra);
        assert_success(&out, &server);
        assert!(
            String::from_utf8_lossy(&out.stdout).lines().count() >= 2,
            "no listing"
        );
        let out = curl(&server, "alice", "wrong-password", url, &extra);
        assert!(!out.status.success(), "wrong NTLM password accepted");
    }
    let log = server.log();
    assert!(log.contains("POP3 login succeeded"), "{log}");
    // No NTLM message ("NTLMSSP\0" in base64) reaches the log.
    assert!(!log.contains("TlRMTVNTUA"), "an NTLM token was logged");
}
