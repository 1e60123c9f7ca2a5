//! Black-box tests: the real `cas-server` binary, driven by independent POP3 clients
//! (Python's `poplib`, `curl`, `fetchmail`) over loopback.
//!
//! Each test starts its own server on free ports with its own demo data directory. A test whose
//! client is not installed prints `SKIP` and passes, unless `CAS_REQUIRE_INTEROP=1` is set
//! (as `.ci/run` does after installing every client), in which case it fails.

mod common;

use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output};

use common::{Server, assert_success, client_available, python, run, script};

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

    // Without TLS a clear-text password must not be accepted on the plain port. (curl's
    // default there is SASL NTLM, which sends no password and is allowed before TLS: see
    // interop_ntlm.rs.)
    for mechanism in ["AUTH=PLAIN", "AUTH=LOGIN"] {
        let plain = curl(
            &server,
            &format!("{stls}/"),
            &["--login-options", mechanism],
        );
        assert!(
            !plain.status.success(),
            "clear-text login was accepted ({mechanism})"
        );
    }

    let listing = curl(
        &server,
        &format!("{stls}/"),
        &["--ssl-reqd", "--login-options", "AUTH=PLAIN"],
    );
    assert_success(&listing, &server);
    let listing = parse_listing(&listing.stdout);
    assert!(listing.len() >= 2, "{listing:?}");

    // RETR each message over both transports (curl picks SASL NTLM, or LOGIN when told);
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
