//! Black-box NTLM interop: the real `cas-server`, POP3 `AUTH NTLM` and the Outlook Anywhere
//! endpoint's HTTP `NTLM`, `Negotiate` and `Basic` (on RPC over HTTP echo requests, which
//! the endpoint answers only once authenticated), driven by pyspnego, requests-ntlm and
//! curl over loopback.
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
    // Right password over TLS, bindings ignored under the default policy.
    for mode in ["pop3s", "stls"] {
        let out = pyspnego_pop3(&server, mode, "alice", &alice, "ok", "none");
        assert_success(&out, &server);
    }
    // Before TLS, LoginType SecureLogin (the default) refuses every mechanism, NTLM too;
    // PlainTextAuthentication lets mechanisms that send no password (NTLM) run.
    let out = pyspnego_pop3(&server, "plain", "alice", &alice, "privacy", "none");
    assert_success(&out, &server);
    server.admin_ok(&["set-popsettings", "--login-type", "PlainTextAuthentication"]);
    server.reload();
    let out = pyspnego_pop3(&server, "plain", "alice", &alice, "ok", "none");
    assert_success(&out, &server);
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
    for (mode, bindings) in [("pop3s", "wrong"), ("pop3s", "none")] {
        let out = pyspnego_pop3(&server, mode, "alice", &alice, "fail", bindings);
        assert_success(&out, &server);
    }
    server.admin_ok(&["set-popsettings", "--login-type", "PlainTextAuthentication"]);
    server.reload();
    let out = pyspnego_pop3(&server, "plain", "alice", &alice, "fail", "none");
    assert_success(&out, &server);
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

/// The server with the Outlook Anywhere endpoint on HTTPS and plain HTTP, `[ntlm]
/// extended_protection` set to `extended_protection`; returns the two proxy URLs.
fn start_http(extended_protection: &str) -> (Server, String, String) {
    let setting = format!("[ntlm]\nextended_protection = \"{extended_protection}\"\n");
    let edit = move |text: &str| text.replacen("[ntlm]\n", &setting, 1);
    let server = Server::start_outlook_anywhere(Some(&edit));
    let http = format!("http://localhost:{}/rpc/rpcproxy.dll", server.http_port);
    let https = server.rpc_proxy_url();
    (server, http, https)
}

/// curl's final status line code and body.
fn curl_http(server: &Server, password: &str, url: &str, scheme: &str) -> (String, String) {
    let out = curl(
        server,
        "alice",
        password,
        url,
        &[
            scheme,
            "--request",
            "RPC_IN_DATA",
            "--header",
            "Content-Length: 0",
            "--write-out",
            "\n%{http_code}",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    (code.to_owned(), body.to_owned())
}

#[test]
fn curl_http_ntlm_and_basic() {
    if !client_available("curl_http_ntlm", "curl", &["--version"]) {
        return;
    }
    let (server, http, https) = start_http("none");
    let alice = server.password("alice");
    // SSLOffloading (Exchange's default) on: plain HTTP is served as if a TLS terminator
    // sat in front, Basic included.
    for url in [&http, &https] {
        let (code, body) = curl_http(&server, &alice, url, "--ntlm");
        assert_eq!(code, "200", "{url}\n{}", server.log());
        assert_eq!(body.len(), 20, "not the echo response: {body:?}");
        let (code, _) = curl_http(&server, "wrong-password", url, "--ntlm");
        assert_eq!(code, "401", "{url}");
    }
    let (code, _) = curl_http(&server, &alice, &https, "--basic");
    assert_eq!(code, "200", "{}", server.log());
    let (code, _) = curl_http(&server, "wrong-password", &https, "--basic");
    assert_eq!(code, "401");
    let (code, _) = curl_http(&server, &alice, &http, "--basic");
    assert_eq!(code, "200", "Basic refused behind an SSL offloader");
    // The 401 offers every scheme.
    let out = run(Command::new("curl")
        .args([
            "--silent",
            "--include",
            "--request",
            "RPC_IN_DATA",
            "--header",
            "Content-Length: 0",
            "--cacert",
        ])
        .arg(server.cert())
        .arg(&https));
    let head = String::from_utf8_lossy(&out.stdout);
    for offer in [
        "WWW-Authenticate: Negotiate\r\n",
        "WWW-Authenticate: NTLM\r\n",
        "WWW-Authenticate: Basic realm=\"cas-rs\", charset=\"UTF-8\"\r\n",
    ] {
        assert!(head.contains(offer), "{head}");
    }
    let log = server.log();
    assert!(log.contains("HTTP login succeeded"), "{log}");
    let requests = std::fs::read_to_string(
        server
            .data_dir()
            .join("logs")
            .join("rpchttp")
            .join("rpchttp.log"),
    )
    .unwrap();
    assert!(
        requests.contains("RPC_IN_DATA /rpc/rpcproxy.dll user=alice channel=IN"),
        "{requests}"
    );
    assert!(!requests.contains("TlRMTVNTUA"), "an NTLM token was logged");
    assert!(!log.contains("TlRMTVNTUA"), "an NTLM token was logged");
    assert!(!log.contains("Authorization"), "a header was logged");

    // Without SSLOffloading, plain HTTP is refused whatever the scheme: Basic would send
    // the password in clear.
    server.admin_ok(&["set-outlookanywhere", "--ssl-offloading", "false"]);
    server.reload();
    let (code, _) = curl_http(&server, &alice, &http, "--basic");
    assert_eq!(
        code, "403",
        "Basic accepted over plain HTTP without SSL offloading"
    );
    let (code, _) = curl_http(&server, &alice, &http, "--ntlm");
    assert_eq!(code, "403");
    let (code, _) = curl_http(&server, &alice, &https, "--basic");
    assert_eq!(code, "200");
}

fn http_client(server: &Server, client: &str, url: &str, password: &str, expect: u16) {
    let out = run(Command::new(python())
        .arg(script("http_ntlm.py"))
        .args([client, url, "alice", password])
        .arg(server.cert())
        .arg(expect.to_string()));
    assert_success(&out, server);
}

#[test]
fn requests_ntlm_with_extended_protection_required() {
    if !client_available(
        "requests_ntlm",
        &python(),
        &["-c", "import requests_ntlm, spnego"],
    ) {
        return;
    }
    let (server, http, https) = start_http("require");
    let alice = server.password("alice");
    // requests-ntlm sends the certificate's tls-server-end-point bindings.
    http_client(&server, "requests-ntlm", &https, &alice, 200);
    http_client(&server, "requests-ntlm", &https, "wrong-password", 401);
    // Plain HTTP (behind an SSL offloader) has no bindings to check: refused under Require.
    http_client(&server, "requests-ntlm", &http, &alice, 401);
    // pyspnego over one http.client connection: right bindings pass, another
    // certificate's bindings and none are refused.
    http_client(&server, "pyspnego-right", &https, &alice, 200);
    http_client(&server, "pyspnego-wrong", &https, &alice, 401);
    http_client(&server, "pyspnego-none", &https, &alice, 401);
    assert!(
        server.log().contains("HTTP login failed"),
        "{}",
        server.log()
    );

    // Allow: no bindings is fine, wrong ones are not.
    let (server, _, https) = start_http("allow");
    let alice = server.password("alice");
    http_client(&server, "pyspnego-none", &https, &alice, 200);
    http_client(&server, "pyspnego-wrong", &https, &alice, 401);
    http_client(&server, "requests-ntlm", &https, &alice, 200);
}

#[test]
fn pyspnego_http_negotiate_spnego_ntlm() {
    if !client_available("pyspnego_http_negotiate", &python(), PYSPNEGO_PROBE) {
        return;
    }
    // `Negotiate` with a NegTokenInit offering NTLM, the server's NegTokenResp with the
    // CHALLENGE, then the AUTHENTICATE with a mechListMIC; the 200 carries the server's
    // final NegTokenResp, whose mechListMIC pyspnego must accept.
    let (server, _, https) = start_http("allow");
    let alice = server.password("alice");
    http_client(&server, "negotiate-none", &https, &alice, 200);
    http_client(&server, "negotiate-right", &https, &alice, 200);
    http_client(&server, "negotiate-none", &https, "wrong-password", 401);
    http_client(&server, "negotiate-wrong", &https, &alice, 401);
    let log = server.log();
    assert!(log.contains("HTTP login failed"), "{log}");
    assert!(!log.contains("TlRMTVNTUA"), "an NTLM token was logged");

    // Extended Protection required: the bindings inside the SPNEGO-wrapped AUTHENTICATE
    // are checked as for raw NTLM.
    let (server, _, https) = start_http("require");
    let alice = server.password("alice");
    http_client(&server, "negotiate-right", &https, &alice, 200);
    http_client(&server, "negotiate-none", &https, &alice, 401);
}
