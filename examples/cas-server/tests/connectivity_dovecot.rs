//! `test-popconnectivity` and `test-imapconnectivity` against Dovecot, our independent
//! server peer: a throwaway Dovecot 2.3 (passwd-file user, a Maildir with one message, a
//! generated certificate, every path in a scratch directory, loopback ports) started by the
//! test and stopped at the end. Both tests pass over STARTTLS and implicit TLS with each
//! login method Dovecot offers; a wrong password fails at the login step.
//!
//! Dovecot is looked for at `/usr/sbin/dovecot` (apt `dovecot-imapd dovecot-pop3d`); without
//! it the test prints SKIP, or fails under `CAS_REQUIRE_INTEROP=1`.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{client_available, free_port, sigterm_and_wait};

const DOVECOT: &str = "/usr/sbin/dovecot";
const PASSWORD: &str = "dove-Pass-1";
const SAMPLE: &str = "From: <bob@example.com>\r\nTo: <alice@example.com>\r\n\
    Subject: Dovecot sample\r\nMessage-ID: <sample-1@example.com>\r\n\
    Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n\r\nHello from the Dovecot peer.\r\n";

struct Dovecot {
    child: Option<Child>,
    dir: PathBuf,
    pop3: u16,
    pop3s: u16,
    imap: u16,
    imaps: u16,
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take()
            && sigterm_and_wait(&mut child).is_none()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `(name, uid, gid)` of the passwd entry with `uid`, or of the user `name`.
fn passwd_entry(pred: impl Fn(&str, u32) -> bool) -> Option<(String, u32, u32)> {
    let text = fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        let (name, uid, gid) = (f.first()?, f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?);
        pred(name, uid).then(|| ((*name).to_owned(), uid, gid))
    })
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    if path.is_dir() {
        for entry in fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), uid, gid);
        }
    }
}

impl Dovecot {
    fn start() -> Dovecot {
        let dir = std::env::temp_dir().join(format!("cas-dovecot-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("run")).unwrap();
        fs::create_dir_all(dir.join("state")).unwrap();
        // Login and mail processes run as other users when we are root: let them in.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();

        let me = fs::metadata(&dir).unwrap().uid();
        let (my_name, _, my_gid) = passwd_entry(|_, uid| uid == me).expect("my passwd entry");
        // Dovecot refuses to run login processes or mail access as root: then use the
        // users its package creates.
        let (login_user, mail_uid, mail_gid) = if me == 0 {
            let login = passwd_entry(|n, _| n == "dovenull")
                .or_else(|| passwd_entry(|n, _| n == "nobody"))
                .expect("a dovenull or nobody user");
            let mail = passwd_entry(|n, _| n == "dovecot").unwrap_or(login.clone());
            (login.0, mail.1, mail.2)
        } else {
            (my_name.clone(), me, my_gid)
        };

        let maildir = dir.join("home").join("alice").join("Maildir");
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir_all(maildir.join(sub)).unwrap();
        }
        fs::write(
            maildir.join("cur").join("1700000000.M1P1.cas-test:2,S"),
            SAMPLE,
        )
        .unwrap();
        chown_tree(&dir.join("home"), mail_uid, mail_gid);
        fs::write(dir.join("passwd"), format!("alice:{{PLAIN}}{PASSWORD}\n")).unwrap();

        let key = rcgen::KeyPair::generate().unwrap();
        let cert =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .unwrap()
                .self_signed(&key)
                .unwrap();
        fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        fs::set_permissions(dir.join("key.pem"), fs::Permissions::from_mode(0o600)).unwrap();

        let (pop3, pop3s, imap, imaps) = (free_port(), free_port(), free_port(), free_port());
        let d = dir.display();
        let config = format!(
            "base_dir = {d}/run\n\
             state_dir = {d}/state\n\
             log_path = {d}/dovecot.log\n\
             instance_name = cas-test-{pid}\n\
             default_internal_user = {my_name}\n\
             default_internal_group = {my_group}\n\
             default_login_user = {login_user}\n\
             first_valid_uid = 1\n\
             protocols = imap pop3\n\
             listen = 127.0.0.1\n\
             ssl = yes\n\
             ssl_cert = <{d}/cert.pem\n\
             ssl_key = <{d}/key.pem\n\
             disable_plaintext_auth = yes\n\
             auth_mechanisms = plain login\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {d}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid={mail_uid} gid={mail_gid} home={d}/home/%u\n}}\n\
             mail_location = maildir:~/Maildir\n\
             pop3_uidl_format = %08Xu%08Xv\n\
             service imap-login {{\n  chroot =\n  inet_listener imap {{\n    port = {imap}\n  }}\n  inet_listener imaps {{\n    port = {imaps}\n    ssl = yes\n  }}\n}}\n\
             service pop3-login {{\n  chroot =\n  inet_listener pop3 {{\n    port = {pop3}\n  }}\n  inet_listener pop3s {{\n    port = {pop3s}\n    ssl = yes\n  }}\n}}\n\
             service anvil {{\n  chroot =\n}}\n",
            pid = std::process::id(),
            my_group = group_name(my_gid).unwrap_or_else(|| my_name.clone()),
        );
        fs::write(dir.join("dovecot.conf"), config).unwrap();
        let log = fs::File::create(dir.join("stdout.log")).unwrap();
        let child = Command::new(DOVECOT)
            .arg("-F")
            .arg("-c")
            .arg(dir.join("dovecot.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start dovecot");
        let mut dovecot = Dovecot {
            child: Some(child),
            dir,
            pop3,
            pop3s,
            imap,
            imaps,
        };
        dovecot.wait_listening();
        dovecot
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for port in [self.pop3, self.pop3s, self.imap, self.imaps] {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                    panic!("dovecot exited early ({status}):\n{}", self.log());
                }
                assert!(
                    Instant::now() < deadline,
                    "dovecot did not listen:\n{}",
                    self.log()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    fn log(&self) -> String {
        let mut text = String::new();
        for name in ["stdout.log", "dovecot.log"] {
            text.push_str(&fs::read_to_string(self.dir.join(name)).unwrap_or_default());
        }
        text
    }

    fn cert(&self) -> String {
        self.dir.join("cert.pem").to_str().unwrap().to_owned()
    }

    fn messages(&self) -> usize {
        let maildir = self.dir.join("home").join("alice").join("Maildir");
        ["cur", "new"]
            .iter()
            .map(|s| fs::read_dir(maildir.join(s)).map_or(0, |d| d.count()))
            .sum()
    }
}

fn group_name(gid: u32) -> Option<String> {
    let text = fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.get(2)?.parse::<u32>().ok()? == gid).then(|| f[0].to_owned())
    })
}

fn tester(args: &[&str]) -> (Output, serde_json::Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let output = Command::new(env!("CARGO_BIN_EXE_cas-server"))
        .args(&all)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run cas-server");
    eprintln!(
        "cas-server {all:?}\nstatus {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let value = serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
    (output, value)
}

fn assert_passed(output: &Output, report: &serde_json::Value, dovecot: &Dovecot) {
    assert!(
        output.status.code() == Some(0) && report["result"] == "passed",
        "{report:#}\ndovecot log:\n{}",
        dovecot.log()
    );
}

fn detail<'a>(report: &'a serde_json::Value, step: &str) -> &'a str {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == step)
        .and_then(|s| s["detail"].as_str())
        .unwrap_or_else(|| panic!("no step {step}: {report:#}"))
}

#[test]
fn pop_and_imap_pass_against_dovecot() {
    if !client_available("pop_and_imap_pass_against_dovecot", DOVECOT, &["--version"]) {
        return;
    }
    let dovecot = Dovecot::start();
    let cert = dovecot.cert();
    let target = |port: u16| format!("localhost:{port}");

    // POP3 over implicit TLS and STLS, with each login method.
    for (security, port, mechanism) in [
        ("tls", dovecot.pop3s, "auto"),
        ("starttls", dovecot.pop3, "plain"),
        ("starttls", dovecot.pop3, "login"),
        ("tls", dovecot.pop3s, "user"),
    ] {
        let (out, report) = tester(&[
            "test-popconnectivity",
            &target(port),
            "--security",
            security,
            "--user",
            "alice",
            "--password",
            PASSWORD,
            "--ca-file",
            &cert,
            "--mechanism",
            mechanism,
        ]);
        assert_passed(&out, &report, &dovecot);
        assert_eq!(
            detail(&report, "STAT"),
            format!("1 message, {} octets", SAMPLE.len()),
            "{report:#}"
        );
        assert!(
            detail(&report, "RETR newest message").ends_with("Subject: Dovecot sample"),
            "{report:#}"
        );
        if security == "starttls" {
            // Dovecot (disable_plaintext_auth = yes) still lists USER and SASL PLAIN before TLS.
            let greeting = &report["steps"][2];
            assert_eq!(greeting["name"], "Greeting and capabilities");
        }
    }

    // IMAP over implicit TLS and STARTTLS; APPEND + delete of a test message once each.
    for (security, port, mechanism, send) in [
        ("tls", dovecot.imaps, "auto", true),
        ("starttls", dovecot.imap, "user", true),
        ("starttls", dovecot.imap, "login", false),
    ] {
        let mut args = vec![
            "test-imapconnectivity",
            &target(port),
            "--security",
            security,
            "--user",
            "alice",
            "--password",
            PASSWORD,
            "--ca-file",
            &cert,
            "--mechanism",
            mechanism,
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
        if send {
            args.push("--send-test-message".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (out, report) = tester(&args);
        assert_passed(&out, &report, &dovecot);
        assert!(detail(&report, "LIST").contains("INBOX"), "{report:#}");
        assert!(
            detail(&report, "SELECT INBOX").starts_with("1 message"),
            "{report:#}"
        );
        assert!(
            detail(&report, "FETCH newest message header").ends_with("Subject: Dovecot sample"),
            "{report:#}"
        );
        if send {
            assert!(
                detail(&report, "Delete test message").contains("expunged"),
                "{report:#}"
            );
        }
    }
    // The test messages are gone again.
    assert_eq!(dovecot.messages(), 1, "{}", dovecot.log());

    // A wrong password fails at the login step.
    for command in ["test-popconnectivity", "test-imapconnectivity"] {
        let port = if command == "test-popconnectivity" {
            dovecot.pop3s
        } else {
            dovecot.imaps
        };
        let (out, report) = tester(&[
            command,
            &target(port),
            "--user",
            "alice",
            "--password",
            "wrong-password",
            "--ca-file",
            &cert,
        ]);
        assert_eq!(out.status.code(), Some(1), "{report:#}");
        let last = report["steps"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["name"], "Login", "{report:#}");
        assert!(
            last["cause"]
                .as_str()
                .unwrap()
                .starts_with("authentication failed"),
            "{report:#}"
        );
    }
}
