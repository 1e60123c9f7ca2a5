//! Shared harness of the black-box tests: the real binaries on free loopback ports with
//! their own demo data directory, and the external clients with SKIP handling.
//!
//! A test whose client is not installed prints `SKIP` and passes, unless
//! `CAS_REQUIRE_INTEROP=1` is set (as `.ci/run` does after installing every client), in which
//! case it fails.

// Each test binary uses a different part of the harness.
#![allow(dead_code)]

pub mod inproc;

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// A running `cas-server` with its own data directory, killed and cleaned up on drop.
pub struct Server {
    child: Option<Child>,
    /// Scratch directory: `data/` (the data directory), `server.log`.
    pub dir: PathBuf,
    /// Plain POP3 (STLS) port.
    pub pop3_port: u16,
    /// POP3S port.
    pub pop3s_port: u16,
    /// Outlook Anywhere HTTPS port (0: not listening).
    pub https_port: u16,
    /// Outlook Anywhere plain HTTP (SSL offloading) port (0: not listening).
    pub http_port: u16,
    /// The built-in RPC backend's port (0: an ephemeral one the test does not know).
    pub rpc_backend_port: u16,
    /// Plain IMAP (STARTTLS) port, an ephemeral one read from the port file (0: unknown).
    pub imap_port: u16,
    /// IMAPS port, likewise.
    pub imaps_port: u16,
    /// The program and its arguments, to restart it.
    command: Vec<std::ffi::OsString>,
}

impl Server {
    /// Starts `cas-server` with a fresh demo data directory.
    pub fn start() -> Server {
        Server::start_with_config("")
    }

    /// Starts `cas-server`; when `extra_toml` is not empty, stops it once the demo data
    /// exists, appends `extra_toml` to its `cas-server.toml` and starts it again.
    pub fn start_with_config(extra_toml: &str) -> Server {
        if extra_toml.is_empty() {
            Server::start_inner(None, false)
        } else {
            Server::start_inner(Some(&|text: &str| format!("{text}{extra_toml}")), false)
        }
    }

    /// Starts `cas-server` with the Outlook Anywhere HTTPS and plain HTTP listeners on free
    /// ports too; with `edit`, stops it once the demo data exists, rewrites its
    /// `cas-server.toml` with `edit` and starts it again.
    pub fn start_outlook_anywhere(edit: Option<&dyn Fn(&str) -> String>) -> Server {
        Server::start_inner(edit, true)
    }

    /// `outlook_anywhere`: listen on known HTTPS and HTTP ports; otherwise HTTPS goes to an
    /// ephemeral port (the demo config's 8443 would collide between tests).
    fn start_inner(edit: Option<&dyn Fn(&str) -> String>, outlook_anywhere: bool) -> Server {
        let dir = scratch_dir();
        let (pop3_port, pop3s_port) = (free_port(), free_port());
        let (https_port, http_port, rpc_backend_port) = if outlook_anywhere {
            (free_port(), free_port(), free_port())
        } else {
            (0, 0, 0)
        };
        let mut command: Vec<std::ffi::OsString> = vec![
            env!("CARGO_BIN_EXE_cas-server").into(),
            "--data-dir".into(),
            dir.join("data").into_os_string(),
            "--pop3-listen".into(),
            format!("127.0.0.1:{pop3_port}").into(),
            "--pop3s-listen".into(),
            format!("127.0.0.1:{pop3s_port}").into(),
            "--https-listen".into(),
            format!("127.0.0.1:{https_port}").into(),
            // The demo's RPC backend ports (6001, 6002, 6004) are fixed; tests run in parallel.
            "--rpc-backend-listen".into(),
            format!("127.0.0.1:{rpc_backend_port}").into(),
            // Likewise the demo's IMAP ports (1143, 1993).
            "--imap-listen".into(),
            "127.0.0.1:0".into(),
            "--imaps-listen".into(),
            "127.0.0.1:0".into(),
            "--port-file".into(),
            dir.join("ports.json").into_os_string(),
        ];
        if outlook_anywhere {
            command.push("--http-listen".into());
            command.push(format!("127.0.0.1:{http_port}").into());
        }
        let mut server = Server {
            child: None,
            dir,
            pop3_port,
            pop3s_port,
            https_port,
            http_port,
            rpc_backend_port,
            imap_port: 0,
            imaps_port: 0,
            command,
        };
        server.spawn();
        if let Some(edit) = edit {
            let status = server.terminate();
            assert!(status.success(), "{}", server.log());
            let config = server.data_dir().join("cas-server.toml");
            let text = fs::read_to_string(&config).unwrap();
            fs::write(&config, edit(&text)).unwrap();
            server.spawn();
        }
        server
    }

    /// The RPC proxy URL on the HTTPS listener.
    pub fn rpc_proxy_url(&self) -> String {
        format!("https://localhost:{}/rpc/rpcproxy.dll", self.https_port)
    }

    /// Starts another program of this package the same way:
    /// `--data-dir` is added, `ports` are what it must listen on before this returns.
    pub fn start_program(program: &str, args: &[String], ports: (u16, u16)) -> Server {
        let dir = scratch_dir();
        let mut command: Vec<std::ffi::OsString> = vec![
            program.into(),
            "--data-dir".into(),
            dir.join("data").into_os_string(),
        ];
        command.extend(args.iter().map(Into::into));
        let mut server = Server {
            child: None,
            dir,
            pop3_port: ports.0,
            pop3s_port: ports.1,
            https_port: 0,
            http_port: 0,
            rpc_backend_port: 0,
            imap_port: 0,
            imaps_port: 0,
            command,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        // A restart binds new ephemeral ports: the old port file must not be read.
        let _ = fs::remove_file(self.dir.join("ports.json"));
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .unwrap();
        let child = Command::new(&self.command[0])
            .args(&self.command[1..])
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the server");
        self.child = Some(child);
        self.wait_listening();
    }

    fn wait_listening(&mut self) {
        // The first start hashes the demo passwords and makes a certificate: allow for a slow
        // debug build on a loaded machine.
        let deadline = Instant::now() + Duration::from_secs(120);
        let ports = [
            self.pop3_port,
            self.pop3s_port,
            self.https_port,
            self.http_port,
            self.rpc_backend_port,
        ];
        for port in ports.into_iter().filter(|&p| p != 0) {
            self.wait_until(deadline, "cas-server did not listen", |_| {
                TcpStream::connect(("127.0.0.1", port)).is_ok()
            });
        }
        // The IMAP listeners are on ephemeral ports: the port file names them once bound.
        let port_file = self.dir.join("ports.json");
        if self.command.iter().any(|a| a == port_file.as_os_str()) {
            self.wait_until(deadline, "no imap/imaps ports in the port file", |server| {
                let text = fs::read_to_string(&port_file).unwrap_or_default();
                match (port_of(&text, "imap"), port_of(&text, "imaps")) {
                    (Some(imap), Some(imaps)) => {
                        (server.imap_port, server.imaps_port) = (imap, imaps);
                        true
                    }
                    _ => false,
                }
            });
        }
    }

    /// Polls `ready` every 50 ms until it holds; fails with the server log when the server
    /// exits or `deadline` passes (saying `what`).
    fn wait_until(
        &mut self,
        deadline: Instant,
        what: &str,
        mut ready: impl FnMut(&mut Server) -> bool,
    ) {
        while !ready(self) {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("cas-server exited early ({status}):\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "{what}:\n{}", self.log());
            sleep(Duration::from_millis(50));
        }
    }

    /// Starts the server again on the same data directory and ports (after `terminate`).
    pub fn restart(&mut self) {
        self.spawn();
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// `user`'s Maildir (the INBOX).
    pub fn maildir(&self, user: &str) -> PathBuf {
        self.data_dir().join("maildir").join(user)
    }

    pub fn cert(&self) -> PathBuf {
        self.data_dir().join("tls").join("cert.pem")
    }

    /// The demo password of `user`, from the `user:password` lines of `credentials.txt`.
    pub fn password(&self, user: &str) -> String {
        let text = fs::read_to_string(self.data_dir().join("credentials.txt")).unwrap();
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .find_map(|line| line.strip_prefix(&format!("{user}:")))
            .unwrap_or_else(|| panic!("no demo password for {user} in:\n{text}"))
            .trim()
            .to_string()
    }

    /// Messages of `user`'s Maildir (`cur/` and `new/`) by unique name, without the `:2,`
    /// info suffix (a message moves from `new/` to `cur/` when first seen), sorted.
    pub fn maildir_files(&self, user: &str) -> Vec<String> {
        let mut names = Vec::new();
        for sub in ["cur", "new"] {
            let path = self.data_dir().join("maildir").join(user).join(sub);
            for entry in fs::read_dir(&path).unwrap() {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                let unique = name
                    .split_once(':')
                    .map_or(name.as_str(), |(unique, _)| unique);
                names.push(unique.to_string());
            }
        }
        names.sort();
        names
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// The log without terminal colour codes (tracing may put them between a field's name
    /// and its value, so `user="alice"` is only found in this form).
    pub fn plain_log(&self) -> String {
        let log = self.log();
        let mut out = String::with_capacity(log.len());
        let mut chars = log.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    /// Runs an admin command of the binary on this server's data directory.
    pub fn admin(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cas-server"));
        command
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(args)
            .stdin(Stdio::null());
        run(&mut command)
    }

    /// Runs an admin command that must succeed; returns its stdout.
    pub fn admin_ok(&self, args: &[&str]) -> String {
        let out = self.admin(args);
        assert!(
            out.status.success(),
            "cas-server {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// How many times the server log says the policy was reloaded.
    pub fn policy_reloads(&self) -> usize {
        self.log().matches("policy reloaded").count()
    }

    /// Sends SIGHUP and waits until the server logged one more policy reload.
    pub fn reload(&self) {
        let before = self.policy_reloads();
        let pid = self.child.as_ref().unwrap().id();
        let status = Command::new("kill")
            .arg("-HUP")
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success());
        self.wait_for_reload(before);
    }

    /// Sends SIGHUP and waits until the server logged that the policy did not reload.
    pub fn reload_expecting_failure(&self) {
        let failures = || self.log().matches("policy not reloaded").count();
        let before = failures();
        let pid = self.child.as_ref().unwrap().id();
        let status = Command::new("kill")
            .arg("-HUP")
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        while failures() <= before {
            assert!(
                Instant::now() < deadline,
                "no failed reload logged:\n{}",
                self.log()
            );
            sleep(Duration::from_millis(50));
        }
    }

    /// Waits (up to 20 s) until the log shows more than `before` policy reloads.
    pub fn wait_for_reload(&self, before: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.policy_reloads() <= before {
            assert!(
                Instant::now() < deadline,
                "no policy reload logged:\n{}",
                self.log()
            );
            sleep(Duration::from_millis(50));
        }
    }

    /// Asks the server to shut down with SIGTERM and returns its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        sigterm_and_wait(&mut child)
            .unwrap_or_else(|| panic!("no exit after SIGTERM:\n{}", self.log()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("server log kept in {}:\n{}", self.dir.display(), self.log());
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

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether the external client `program` can run; prints SKIP (or fails under
/// `CAS_REQUIRE_INTEROP=1`) when it cannot.
pub fn client_available(test: &str, program: &str, probe: &[&str]) -> bool {
    let works = Command::new(program)
        .args(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        // Success, not just a spawned process: `python3 -c "import impacket"` runs and fails
        // when only the module is missing.
        .is_ok_and(|status| status.success());
    if !works {
        if std::env::var("CAS_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("{test}: interop client `{program}` is missing and CAS_REQUIRE_INTEROP=1");
        }
        eprintln!(
            "SKIP {test}: `{program} {}` failed: not installed",
            probe.join(" ")
        );
    }
    works
}

/// The Python to run client scripts with: `$CAS_PYTHON` or `python3`.
pub fn python() -> String {
    std::env::var("CAS_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// A client script in `tests/interop/`.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("interop")
        .join(name)
}

/// Runs a client and prints what it did.
pub fn run(command: &mut Command) -> Output {
    let output = command.output().expect("run client");
    eprintln!(
        "{command:?}\nstatus {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Fails with the client's output and the server log unless the client succeeded.
pub fn assert_success(output: &Output, server: &Server) {
    assert!(
        output.status.success(),
        "client failed\nstdout: {}\nstderr: {}\nserver log:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        server.log()
    );
}

fn scratch_dir() -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "cas-interop-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Sends SIGTERM to `child` and waits up to 20 s for it to exit; `None` if it did not.
pub fn sigterm_and_wait(child: &mut std::process::Child) -> Option<std::process::ExitStatus> {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        sleep(Duration::from_millis(50));
    }
    None
}
