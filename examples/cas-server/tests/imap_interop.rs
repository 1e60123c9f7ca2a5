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
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{client_available, python, run, sigterm_and_wait};

/// A running `cas-server` on port-0 listeners, stopped and cleaned up on drop.
struct ImapServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// Plain IMAP (STARTTLS) port.
    imap_port: u16,
    /// IMAPS port.
    imaps_port: u16,
}

impl ImapServer {
    fn start() -> ImapServer {
        let dir = tempfile::Builder::new()
            .prefix("cas-imap-interop-")
            .tempdir()
            .unwrap();
        let port_file = dir.path().join("ports.json");
        let log = fs::File::create(dir.path().join("server.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_cas-server"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args([
                "--pop3-listen",
                "127.0.0.1:0",
                "--pop3s-listen",
                "127.0.0.1:0",
                "--https-listen",
                "127.0.0.1:0",
            ])
            .args([
                "--imap-listen",
                "127.0.0.1:0",
                "--imaps-listen",
                "127.0.0.1:0",
            ])
            // The demo's RPC backend ports are fixed too; tests run in parallel.
            .args(["--rpc-backend-listen", "127.0.0.1:0"])
            .arg("--port-file")
            .arg(&port_file)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start cas-server");
        let mut server = ImapServer {
            child: Some(child),
            dir,
            imap_port: 0,
            imaps_port: 0,
        };
        // The first start hashes the demo passwords and makes a certificate: allow for a
        // slow debug build on a loaded machine.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(text) = fs::read_to_string(&port_file)
                && let (Some(imap), Some(imaps)) = (port_of(&text, "imap"), port_of(&text, "imaps"))
            {
                server.imap_port = imap;
                server.imaps_port = imaps;
                return server;
            }
            if let Some(status) = server.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("cas-server exited early ({status}):\n{}", server.log());
            }
            assert!(
                Instant::now() < deadline,
                "no imap/imaps ports in the port file:\n{}",
                server.log()
            );
            sleep(Duration::from_millis(50));
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn cert(&self) -> PathBuf {
        self.data_dir().join("tls").join("cert.pem")
    }

    /// The user's INBOX Maildir (its `new/` is where other programs deliver).
    fn inbox(&self, user: &str) -> PathBuf {
        self.data_dir().join("maildir").join(user)
    }

    /// Messages in `user`'s INBOX (`cur/` and `new/`), by unique name without the info
    /// suffix, sorted.
    fn inbox_files(&self, user: &str) -> Vec<String> {
        let mut names = Vec::new();
        for sub in ["cur", "new"] {
            for entry in fs::read_dir(self.inbox(user).join(sub)).unwrap() {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                let unique = name.split_once(':').map_or(name.as_str(), |(u, _)| u);
                names.push(unique.to_string());
            }
        }
        names.sort();
        names
    }

    /// The demo password of `user`, from `credentials.txt`.
    fn password(&self, user: &str) -> String {
        let text = fs::read_to_string(self.data_dir().join("credentials.txt")).unwrap();
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .find_map(|line| line.strip_prefix(&format!("{user}:")))
            .unwrap_or_else(|| panic!("no demo password for {user} in:\n{text}"))
            .trim()
            .to_string()
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Runs an admin command of the binary on this server's data directory; it must succeed.
    fn admin_ok(&self, args: &[&str]) {
        let output = run(Command::new(env!("CARGO_BIN_EXE_cas-server"))
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(args)
            .stdin(Stdio::null()));
        assert!(output.status.success(), "cas-server {args:?} failed");
    }

    /// Sends SIGHUP and waits (up to 20 s) until the log shows one more policy reload.
    fn reload(&self) {
        let reloads = || self.log().matches("policy reloaded").count();
        let before = reloads();
        let pid = self.child.as_ref().unwrap().id();
        let status = Command::new("kill")
            .arg("-HUP")
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        while reloads() <= before {
            assert!(
                Instant::now() < deadline,
                "no policy reload logged:\n{}",
                self.log()
            );
            sleep(Duration::from_millis(50));
        }
    }

    fn assert_success(&self, output: &Output) {
        assert!(
            output.status.success(),
            "client failed\nstdout: {}\nstderr: {}\nserver log:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
    }
}

impl Drop for ImapServer {
    fn drop(&mut self) {
        // SIGTERM only a server that still runs (`kill` of a reaped pid fails); kill it if
        // it does not exit.
        if let Some(mut child) = self.child.take()
            && matches!(child.try_wait(), Ok(None))
            && sigterm_and_wait(&mut child).is_none()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("server log:\n{}", self.log());
        }
    }
}

/// The port of `"key": "ip:port"` in the port file's JSON object.
fn port_of(json: &str, key: &str) -> Option<u16> {
    let needle = format!("\"{key}\"");
    let at = json.find(&needle)?;
    let rest = json.get(at + needle.len()..)?;
    let value = rest.split('"').nth(1)?;
    value.rsplit(':').next()?.parse().ok()
}

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
    let server = ImapServer::start();
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
        .arg(server.inbox("alice")));
    server.assert_success(&output);
}

#[test]
fn imaplib_over_imaps() {
    imaplib("imaps");
}

#[test]
fn imaplib_over_starttls() {
    imaplib("starttls");
}

fn curl(server: &ImapServer, url: &str, extra: &[&str]) -> Output {
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
    let server = ImapServer::start();
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
        server.assert_success(&list);
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
    server.assert_success(&search);
    let text = String::from_utf8_lossy(&search.stdout);
    let numbers: Vec<u32> = text
        .lines()
        .find_map(|l| l.strip_prefix("* SEARCH"))
        .unwrap_or_else(|| panic!("no SEARCH result: {text}"))
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(numbers.len(), server.inbox_files("alice").len(), "{text}");
    for n in &numbers {
        let message = curl(
            &server,
            &format!("{plain}/INBOX/;MAILINDEX={n}"),
            &["--ssl-reqd"],
        );
        server.assert_success(&message);
        let body = String::from_utf8_lossy(&message.stdout);
        assert!(body.contains("Subject: "), "message {n}: {body}");
    }
    let header = curl(
        &server,
        &format!("{implicit}/INBOX/;UID=1;SECTION=HEADER.FIELDS%20(SUBJECT)"),
        &[],
    );
    server.assert_success(&header);
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
    server.assert_success(&search);
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
    let server = ImapServer::start();
    let port = if mode == "imaps" {
        server.imaps_port
    } else {
        server.imap_port
    };
    let work = server.dir.path().join(format!("mbsync-{mode}"));
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
    server.assert_success(&output);
}

#[test]
fn mbsync_roundtrip_over_imaps() {
    mbsync("imaps");
}

#[test]
fn mbsync_roundtrip_over_starttls() {
    mbsync("starttls");
}

fn fetchmail(server: &ImapServer, implicit_tls: bool, out_dir: &Path) -> Output {
    let rc = server
        .dir
        .path()
        .join(format!("fetchmailrc-{implicit_tls}"));
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
        .env("HOME", server.dir.path())
        .arg("--fetchmailrc")
        .arg(&rc)
        .args(["--nodetach", "--verbose"]))
}

#[test]
fn fetchmail_imap_keep_over_imaps_and_starttls() {
    if !client_available("fetchmail_imap", "fetchmail", &["--version"]) {
        return;
    }
    let server = ImapServer::start();
    let before = server.inbox_files("alice");
    for implicit_tls in [true, false] {
        let out = server.dir.path().join(format!("fetched-{implicit_tls}"));
        fs::create_dir_all(&out).unwrap();
        let output = fetchmail(&server, implicit_tls, &out);
        server.assert_success(&output);
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
        assert_eq!(server.inbox_files("alice"), before);
    }
}

/// What `imap_mime.py` saw of the demo's MIME message.
struct MimeView {
    size: u64,
    bodystructure: String,
    body: Vec<u8>,
    types: Vec<String>,
}

fn imap_mime(server: &ImapServer) -> MimeView {
    let output = run(Command::new(python())
        .arg(script("imap_mime.py"))
        .arg("localhost")
        .arg(server.imaps_port.to_string())
        .arg("alice")
        .arg(server.password("alice"))
        .arg(server.cert())
        .arg("Agenda and budget"));
    server.assert_success(&output);
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
    let server = ImapServer::start();
    let stored_path = ["cur", "new"]
        .iter()
        .flat_map(|sub| fs::read_dir(server.inbox("alice").join(sub)).unwrap())
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
    let server = ImapServer::start();
    let scratch = server.dir.path().join("interimap");
    fs::create_dir_all(&scratch).unwrap();
    let output = run(Command::new(python())
        .arg(script("interimap_sync.py"))
        .arg(server.imaps_port.to_string())
        .arg(server.cert())
        .arg("alice")
        .arg(server.password("alice"))
        .arg(&scratch));
    server.assert_success(&output);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("interimap sync ok"),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}
