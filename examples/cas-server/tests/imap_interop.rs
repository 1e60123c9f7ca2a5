//! Black-box IMAP tests: the real `cas-server` binary, driven by independent IMAP clients
//! (Python's `imaplib`, `curl`, `mbsync` from isync, `fetchmail`, `interimap` syncing with
//! a Dovecot) over loopback, on both the STARTTLS and the implicit-TLS listener.
//!
//! Each test starts its own server with every listener on port 0 and reads the bound
//! addresses from `--port-file`, with its own demo data directory. A test whose client is not
//! installed prints `SKIP` and passes, unless `CAS_REQUIRE_INTEROP=1` is set (as `.ci/run`
//! does after installing every client), in which case it fails. The client scripts live in
//! `tests/imap_interop/`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Server, assert_success, client_available, python, run};

/// A running `cas-server` on port-0 listeners, stopped and cleaned up on drop.
/// A client script in `tests/imap_interop/`.
fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("imap_interop")
        .join(name)
}

fn imaplib(mode: &str) {
    let test = format!("imaplib_{mode}");
    if !client_available(&test, &python(), &["-c", "import imaplib, ssl"]) {
        return;
    }
    let server = Server::start();
    let port = if mode == "imaps" {
        server.imaps_port
    } else {
        server.imap_port
    };
    let output = run(Command::new(python())
        .arg(script("imaplib_client.py"))
        .arg(mode)
        .arg("localhost")
        .arg(port.to_string())
        .arg("alice")
        .arg(server.password("alice"))
        .arg(server.cert())
        .arg(server.maildir("alice")));
    assert_success(&output, &server);
}

#[test]
fn imaplib_over_imaps() {
    imaplib("imaps");
}

#[test]
fn imaplib_over_starttls() {
    imaplib("starttls");
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

#[test]
fn curl_imap_starttls_and_imaps() {
    if !client_available("curl_imap", "curl", &["--version"]) {
        return;
    }
    let server = Server::start();
    let plain = format!("imap://localhost:{}", server.imap_port);
    let implicit = format!("imaps://localhost:{}", server.imaps_port);

    // Without TLS a clear-text password must not be accepted on the plain port.
    for mechanism in ["AUTH=PLAIN", "AUTH=LOGIN", "AUTH=+LOGIN"] {
        let refused = curl(
            &server,
            &format!("{plain}/"),
            &["--login-options", mechanism],
        );
        assert!(
            !refused.status.success(),
            "clear-text login was accepted ({mechanism})"
        );
    }

    // LIST over both transports: INBOX and the demo folders.
    for (base, extra) in [(&plain, &["--ssl-reqd"][..]), (&implicit, &[][..])] {
        let list = curl(&server, &format!("{base}/"), extra);
        assert_success(&list, &server);
        let text = String::from_utf8_lossy(&list.stdout);
        assert!(
            text.lines()
                .any(|l| l.starts_with("* LIST") && l.ends_with("INBOX")),
            "{text}"
        );
        assert!(text.lines().count() >= 3, "demo folders missing: {text}");
    }

    // SEARCH, then fetch every message found, by sequence number and by UID.
    let search = curl(&server, &format!("{implicit}/INBOX?ALL"), &[]);
    assert_success(&search, &server);
    let text = String::from_utf8_lossy(&search.stdout);
    let numbers: Vec<u32> = text
        .lines()
        .find_map(|l| l.strip_prefix("* SEARCH"))
        .unwrap_or_else(|| panic!("no SEARCH result: {text}"))
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(numbers.len(), server.maildir_files("alice").len(), "{text}");
    for n in &numbers {
        let message = curl(
            &server,
            &format!("{plain}/INBOX/;MAILINDEX={n}"),
            &["--ssl-reqd"],
        );
        assert_success(&message, &server);
        let body = String::from_utf8_lossy(&message.stdout);
        assert!(body.contains("Subject: "), "message {n}: {body}");
    }
    let header = curl(
        &server,
        &format!("{implicit}/INBOX/;UID=1;SECTION=HEADER.FIELDS%20(SUBJECT)"),
        &[],
    );
    assert_success(&header, &server);
    assert!(
        String::from_utf8_lossy(&header.stdout).starts_with("Subject: "),
        "{:?}",
        String::from_utf8_lossy(&header.stdout)
    );
    let search = curl(
        &server,
        &format!("{implicit}/INBOX?SUBJECT%20%22no%20such%20subject%20here%22"),
        &[],
    );
    assert_success(&search, &server);
    assert_eq!(
        String::from_utf8_lossy(&search.stdout).trim_end(),
        "* SEARCH"
    );
}

fn mbsync(mode: &str) {
    let test = format!("mbsync_{mode}");
    if !client_available(&test, "mbsync", &["--version"])
        || !client_available(&test, &python(), &["-c", "import imaplib, ssl"])
    {
        return;
    }
    let server = Server::start();
    let port = if mode == "imaps" {
        server.imaps_port
    } else {
        server.imap_port
    };
    let work = server.dir.join(format!("mbsync-{mode}"));
    fs::create_dir_all(&work).unwrap();
    let output = run(Command::new(python())
        .arg(script("mbsync_roundtrip.py"))
        .arg(mode)
        .arg("localhost")
        .arg(port.to_string())
        .arg("alice")
        .arg(server.password("alice"))
        .arg(server.cert())
        .arg(&work));
    assert_success(&output, &server);
}

#[test]
fn mbsync_roundtrip_over_imaps() {
    mbsync("imaps");
}

#[test]
fn mbsync_roundtrip_over_starttls() {
    mbsync("starttls");
}

fn fetchmail(server: &Server, implicit_tls: bool, out_dir: &Path) -> Output {
    let rc = server.dir.join(format!("fetchmailrc-{implicit_tls}"));
    let (port, tls) = if implicit_tls {
        (server.imaps_port, "ssl")
    } else {
        (server.imap_port, "sslproto 'tls1.2+'")
    };
    fs::write(
        &rc,
        format!(
            "set no syslog\n\
             poll localhost with proto IMAP port {port} auth password timeout 30\n\
             \tuser \"alice\" there with password \"{password}\" is \"alice\" here\n\
             \t{tls} sslcertck sslcertfile \"{cert}\"\n\
             \tkeep fetchall\n\
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
        .args(["--nodetach", "--verbose"]))
}

#[test]
fn fetchmail_imap_keep_over_imaps_and_starttls() {
    if !client_available("fetchmail_imap", "fetchmail", &["--version"]) {
        return;
    }
    let server = Server::start();
    let before = server.maildir_files("alice");
    for implicit_tls in [true, false] {
        let out = server.dir.join(format!("fetched-{implicit_tls}"));
        fs::create_dir_all(&out).unwrap();
        let output = fetchmail(&server, implicit_tls, &out);
        assert_success(&output, &server);
        let fetched: Vec<Vec<u8>> = fs::read_dir(&out)
            .unwrap()
            .map(|e| fs::read(e.unwrap().path()).unwrap())
            .collect();
        assert_eq!(
            fetched.len(),
            before.len(),
            "fetchmail (implicit TLS {implicit_tls}) delivered {} of {}",
            fetched.len(),
            before.len()
        );
        assert!(
            fetched
                .iter()
                .all(|m| m.windows(9).any(|w| w == b"Subject: ")),
            "a fetched message has no Subject"
        );
        // `keep`: nothing left the server.
        assert_eq!(server.maildir_files("alice"), before);
    }
}

/// What `imap_mime.py` saw of the demo's MIME message.
struct MimeView {
    size: u64,
    bodystructure: String,
    body: Vec<u8>,
    types: Vec<String>,
}

fn imap_mime(server: &Server) -> MimeView {
    let output = run(Command::new(python())
        .arg(script("imap_mime.py"))
        .arg("localhost")
        .arg(server.imaps_port.to_string())
        .arg("alice")
        .arg(server.password("alice"))
        .arg(server.cert())
        .arg("Agenda and budget"));
    assert_success(&output, server);
    let text = String::from_utf8_lossy(&output.stdout);
    let json: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    use base64::Engine as _;
    MimeView {
        size: json["size"].as_u64().unwrap(),
        bodystructure: json["bodystructure"].as_str().unwrap().to_owned(),
        body: base64::engine::general_purpose::STANDARD
            .decode(json["body"].as_str().unwrap())
            .unwrap(),
        types: json["types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect(),
    }
}

/// `set-imapsettings --message-retrieval-mime-format TextOnly` and a reload: imaplib sees
/// the MIME message as text/plain plus its attachment, with RFC822.SIZE, BODYSTRUCTURE,
/// BODY[] and partial pieces agreeing (checked by the script and Python's email parser);
/// back to BestBodyFormat it gets the stored bytes again. The file is never changed.
#[test]
fn imaplib_sees_the_imap_mime_format() {
    if !client_available(
        "imaplib_mime_format",
        &python(),
        &["-c", "import imaplib, ssl, email"],
    ) {
        return;
    }
    let server = Server::start();
    let stored_path = ["cur", "new"]
        .iter()
        .flat_map(|sub| fs::read_dir(server.maildir("alice").join(sub)).unwrap())
        .map(|e| e.unwrap().path())
        .find(|p| fs::read_to_string(p).is_ok_and(|t| t.contains("Subject: Agenda and budget")))
        .expect("the demo's MIME message");
    let stored = fs::read(&stored_path).unwrap();
    let stored_crlf = String::from_utf8(stored.clone())
        .unwrap()
        .replace("\r\n", "\n")
        .replace('\n', "\r\n")
        .into_bytes();

    let original = imap_mime(&server);
    assert_eq!(original.body, stored_crlf);
    assert!(
        original.types.contains(&"text/html".to_owned()),
        "{:?}",
        original.types
    );

    server.admin_ok(&[
        "set-imapsettings",
        "--message-retrieval-mime-format",
        "TextOnly",
    ]);
    server.reload();
    let text = imap_mime(&server);
    assert_eq!(text.types, ["multipart/mixed", "text/plain", "text/csv"]);
    assert_eq!(text.size as usize, text.body.len());
    assert!(
        text.bodystructure.contains("\"PLAIN\"") && !text.bodystructure.contains("\"HTML\""),
        "{}",
        text.bodystructure
    );
    assert!(String::from_utf8_lossy(&text.body).contains("Server move"));
    assert_ne!(text.body, original.body);

    server.admin_ok(&[
        "set-imapsettings",
        "--message-retrieval-mime-format",
        "BestBodyFormat",
    ]);
    server.reload();
    let back = imap_mime(&server);
    assert_eq!(back.body, stored_crlf);
    assert_eq!(back.size, original.size);
    assert_eq!(back.bodystructure, original.bodystructure);
    assert_eq!(fs::read(&stored_path).unwrap(), stored);
}

/// interimap: stateful two-way sync over QRESYNC between this server and a Dovecot reached
/// as a pre-authenticated tunnel. It relies on MODSEQ, VANISHED, UIDPLUS, LIST-EXTENDED and
/// LIST-STATUS being right; the script checks that both sides converge after changes on
/// each (including a flag conflict and a new folder) and that a further sync is a no-op.
#[test]
fn interimap_two_way_sync_with_dovecot() {
    let test = "interimap_sync";
    if !client_available(test, "interimap", &["--version"])
        || !client_available(test, &python(), &["-c", "import imaplib, ssl"])
        || !client_available(test, "test", &["-x", "/usr/lib/dovecot/imap"])
    {
        return;
    }
    let server = Server::start();
    let scratch = server.dir.join("interimap");
    fs::create_dir_all(&scratch).unwrap();
    let output = run(Command::new(python())
        .arg(script("interimap_sync.py"))
        .arg(server.imaps_port.to_string())
        .arg(server.cert())
        .arg("alice")
        .arg(server.password("alice"))
        .arg(&scratch));
    assert_success(&output, &server);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("interimap sync ok"),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}
