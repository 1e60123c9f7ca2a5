//! The server in-process: real TCP (plain, STLS and implicit TLS) on ephemeral ports, and
//! in-memory pipes with paused time for the timers. A small line-oriented client checks
//! the exact bytes on the wire.

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cas_server::config::Pop3Settings;
use cas_server::driver::{Ending, MaybeTls};
use cas_server::maildir::MaildirStore;
use cas_server::pop3::{Endpoints, Pop3Context};
use cas_server::server::serve_pop3;
use cas_server::{Server, demo};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

mod common;

use common::inproc::{ALICE_PASSWORD, BOB_PASSWORD, DataDir, Running};

/// A data directory with cheap password hashes, the demo sample mail (in `new/`) and a
/// certificate, and the POP3 context over it.
struct Fixture {
    data: DataDir,
    ctx: Arc<Pop3Context>,
}

impl Fixture {
    fn new() -> Fixture {
        Self::with_settings(Pop3Settings::default())
    }

    fn with_settings(settings: Pop3Settings) -> Fixture {
        Self::with_policy(settings, "")
    }

    /// A fixture whose `policy.toml` holds `policy` (TOML in Exchange's vocabulary).
    fn with_policy(settings: Pop3Settings, policy: &str) -> Fixture {
        let data = DataDir::new(policy, false, |root, user| {
            for (i, message) in demo::sample_messages(user).iter().enumerate() {
                let name = format!("{}.M{i}.test", 1000 + i);
                fs::write(root.join(user).join("new").join(name), message).unwrap();
            }
        });
        let access = data.access(settings.allow_clear_text_without_tls);
        let ctx = Arc::new(
            Pop3Context::new(
                settings,
                true,
                data.credentials.clone(),
                Arc::new(MaildirStore::new(data.dir.join("maildir"))),
                None,
                None,
                access,
            )
            .unwrap(),
        );
        Fixture { data, ctx }
    }

    fn maildir(&self, user: &str) -> PathBuf {
        self.data.maildir(user)
    }

    /// Message files in cur/ and new/, sorted.
    fn files(&self, user: &str) -> Vec<String> {
        let mut names = Vec::new();
        for sub in ["cur", "new"] {
            for e in fs::read_dir(self.maildir(user).join(sub)).unwrap() {
                names.push(e.unwrap().file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        names
    }

    async fn start(&self) -> Running {
        let server = Server::bind_with(
            self.ctx.clone(),
            Some(self.data.acceptor.clone()),
            Some("127.0.0.1:0".parse().unwrap()),
            Some("127.0.0.1:0".parse().unwrap()),
        )
        .await
        .unwrap();
        let pop3 = server.pop3_addr().unwrap();
        let pop3s = server.pop3s_addr().unwrap();
        Running::spawn(server, pop3, pop3s, &self.data.cert_pem)
    }
}

type Stream = Box<dyn Io>;
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl Running {
    async fn plain(&self) -> Client {
        Client::new(Box::new(TcpStream::connect(self.plain).await.unwrap())).await
    }

    async fn tls(&self) -> Client {
        Client::new(Box::new(self.connect_tls().await)).await
    }

    /// Logs in over POP3S, retrying while an earlier killed session still holds the lock.
    async fn login_retrying(&self, user: &str, password: &str) -> Client {
        for _ in 0..100 {
            let mut c = self.tls().await;
            c.ok(&format!("USER {user}")).await;
            let reply = c.cmd(&format!("PASS {password}")).await;
            if reply.starts_with("+OK") {
                return c;
            }
            assert!(reply.contains("[IN-USE]"), "{reply}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("maildrop stayed locked");
    }
}

/// A line-oriented POP3 client for tests.
struct Client {
    io: BufReader<Stream>,
    greeting: String,
    /// How long to wait for the server (virtual time in paused tests, where it must
    /// exceed the session timers under test).
    patience: Duration,
}

impl Client {
    async fn new(io: Stream) -> Client {
        let mut c = Client {
            io: BufReader::new(io),
            greeting: String::new(),
            patience: Duration::from_secs(30),
        };
        c.greeting = c.line().await;
        assert!(c.greeting.starts_with("+OK"), "{}", c.greeting);
        c
    }

    /// One line without its CRLF; panics on a bare LF or EOF.
    async fn line(&mut self) -> String {
        let mut buf = Vec::new();
        let n = tokio::time::timeout(self.patience, self.io.read_until(b'\n', &mut buf))
            .await
            .expect("reply in time")
            .unwrap();
        assert!(n > 0, "unexpected EOF");
        assert!(buf.ends_with(b"\r\n"), "line without CRLF: {buf:?}");
        buf.truncate(buf.len() - 2);
        String::from_utf8(buf).unwrap()
    }

    async fn send(&mut self, line: &str) {
        self.io
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
        self.io.get_mut().flush().await.unwrap();
    }

    async fn cmd(&mut self, line: &str) -> String {
        self.send(line).await;
        self.line().await
    }

    async fn ok(&mut self, line: &str) -> String {
        let reply = self.cmd(line).await;
        assert!(reply.starts_with("+OK"), "{line} -> {reply}");
        reply
    }

    /// The raw bytes of a multi-line body up to and including ".\r\n".
    async fn body(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let start = out.len();
            self.io.read_until(b'\n', &mut out).await.unwrap();
            assert!(out.len() > start, "EOF in a multi-line reply");
            if &out[start..] == b".\r\n" {
                return out;
            }
        }
    }

    async fn multi(&mut self, line: &str) -> Vec<String> {
        self.ok(line).await;
        let body = self.body().await;
        let text = String::from_utf8(body).unwrap();
        let mut lines: Vec<String> = text.split("\r\n").map(str::to_owned).collect();
        assert_eq!(lines.pop().as_deref(), Some(""));
        assert_eq!(lines.pop().as_deref(), Some("."));
        lines
    }

    async fn login(&mut self, user: &str, password: &str) {
        self.ok(&format!("USER {user}")).await;
        self.ok(&format!("PASS {password}")).await;
    }

    /// Reads until the server closes; returns what came.
    async fn rest(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        tokio::time::timeout(self.patience, self.io.read_to_end(&mut out))
            .await
            .expect("server closes")
            .unwrap_or(0);
        out
    }
}

/// What RETR must send for `stored`: CRLF line ends, dot-stuffing, a final CRLF if missing,
/// then the terminator. Written independently of pop3-proto.
fn expected_retr(stored: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let text = stored.strip_suffix(b"\n").unwrap_or(stored);
    for line in text.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// LIST's size: the octets a client receives before the terminator, un-stuffed.
fn crlf_size(stored: &[u8]) -> u64 {
    let sent = expected_retr(stored);
    (sent.len() - 3 - dots(stored)) as u64
}

/// How many lines start with a dot (each gets one stuffing dot).
fn dots(stored: &[u8]) -> usize {
    stored
        .split(|&b| b == b'\n')
        .filter(|l| l.first() == Some(&b'.'))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pop3s_stat_list_uidl_retr_exact_bytes() {
    let fx = Fixture::new();
    let server = fx.start().await;
    let samples = demo::sample_messages("alice");
    let mut c = server.tls().await;
    c.login("alice", ALICE_PASSWORD).await;

    let total: u64 = samples.iter().map(|m| crlf_size(m)).sum();
    assert_eq!(c.ok("STAT").await, format!("+OK {} {total}", samples.len()));

    let list = c.multi("LIST").await;
    let expect: Vec<String> = samples
        .iter()
        .enumerate()
        .map(|(i, m)| format!("{} {}", i + 1, crlf_size(m)))
        .collect();
    assert_eq!(list, expect);

    let uidl = c.multi("UIDL").await;
    assert_eq!(uidl.len(), samples.len());
    for (i, line) in uidl.iter().enumerate() {
        let (n, uid) = line.split_once(' ').unwrap();
        assert_eq!(n, (i + 1).to_string());
        assert_eq!(uid.len(), 16);
        assert_eq!(&uid[..8], format!("{:08X}", i + 1));
    }

    for (i, stored) in samples.iter().enumerate() {
        c.ok(&format!("RETR {}", i + 1)).await;
        let body = c.body().await;
        assert!(body == expected_retr(stored), "message {} differs", i + 1);
    }
    // TOP n 0: the header and the blank line.
    c.ok("TOP 4 0").await;
    let top = c.body().await;
    let header_end = samples[3].windows(2).position(|w| w == b"\n\n").unwrap() + 2;
    assert_eq!(top, expected_retr(&samples[3][..header_end]));

    // TOP on the 2 MB message stops early; the session goes on with the next command.
    c.ok("TOP 3 2").await;
    let top = c.body().await;
    assert!(top.len() < 2_000, "{}", top.len());
    assert!(top.ends_with(b"\r\n.\r\n"));
    assert!(c.ok("STAT").await.starts_with("+OK 6 "));
    c.ok("RETR 1").await;
    assert!(c.body().await == expected_retr(&samples[0]));

    c.ok("QUIT").await;
    assert!(c.rest().await.is_empty());
    // Nothing was deleted; new/ moved to cur/.
    assert_eq!(fx.files("alice").len(), samples.len());
    assert!(
        fs::read_dir(fx.maildir("alice").join("new"))
            .unwrap()
            .next()
            .is_none()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dele_and_quit_persist_and_uids_stay() {
    let fx = Fixture::new();
    let server = fx.start().await;
    let mut c = server.tls().await;
    c.login("alice", ALICE_PASSWORD).await;
    let before = c.multi("UIDL").await;
    c.ok("DELE 1").await;
    c.ok("DELE 3").await;
    assert!(c.cmd("RETR 1").await.starts_with("-ERR"));
    c.ok("QUIT").await;
    c.rest().await;

    let mut c = server.tls().await;
    c.login("alice", ALICE_PASSWORD).await;
    let after = c.multi("UIDL").await;
    let uid = |l: &String| l.split_once(' ').unwrap().1.to_owned();
    let kept: Vec<String> = before
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 0 && *i != 2)
        .map(|(_, l)| uid(l))
        .collect();
    assert_eq!(after.iter().map(uid).collect::<Vec<_>>(), kept);
    c.ok("QUIT").await;
    assert_eq!(fx.files("alice").len(), before.len() - 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connections_change_nothing() {
    let fx = Fixture::new();
    let server = fx.start().await;
    let mut c = server.tls().await;
    c.login("bob", BOB_PASSWORD).await;
    let uidl = c.multi("UIDL").await;
    c.ok("QUIT").await;
    let files = fx.files("bob");

    // Killed in the middle of RETR of the ~2 MB message.
    let mut c = server.login_retrying("bob", BOB_PASSWORD).await;
    let reply = c.ok("RETR 3").await;
    let size: usize = reply.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(size > 2_000_000, "{reply}");
    let mut some = vec![0u8; 100_000];
    c.io.read_exact(&mut some).await.unwrap();
    drop(c);

    // DELE everything, then killed before QUIT.
    let mut c = server.login_retrying("bob", BOB_PASSWORD).await;
    for n in 1..=uidl.len() {
        c.ok(&format!("DELE {n}")).await;
    }
    assert_eq!(c.ok("STAT").await, "+OK 0 0");
    drop(c);

    let mut c = server.login_retrying("bob", BOB_PASSWORD).await;
    assert_eq!(c.multi("UIDL").await, uidl);
    c.ok("QUIT").await;
    assert_eq!(fx.files("bob"), files);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_session_gets_in_use() {
    let fx = Fixture::new();
    let server = fx.start().await;
    let mut first = server.tls().await;
    first.login("alice", ALICE_PASSWORD).await;
    let mut second = server.tls().await;
    second.ok("USER alice").await;
    let reply = second.cmd(&format!("PASS {ALICE_PASSWORD}")).await;
    assert!(reply.starts_with("-ERR [IN-USE]"), "{reply}");
    // Another user is not affected, and a wrong password is [AUTH], not [IN-USE].
    let mut third = server.tls().await;
    third.login("bob", BOB_PASSWORD).await;
    let mut fourth = server.tls().await;
    fourth.ok("USER alice").await;
    let reply = fourth.cmd("PASS wrong").await;
    assert!(reply.starts_with("-ERR [AUTH]"), "{reply}");
    first.ok("QUIT").await;
    first.rest().await;
    second.ok("USER alice").await;
    second.ok(&format!("PASS {ALICE_PASSWORD}")).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_text_refused_before_stls_then_login_works() {
    let fx = Fixture::new();
    let server = fx.start().await;
    let mut c = server.plain().await;
    let capa = c.multi("CAPA").await;
    assert!(capa.iter().any(|l| l == "STLS"), "{capa:?}");
    assert!(!capa.iter().any(|l| l == "USER"), "{capa:?}");
    // Refused with [AUTH] either at USER or at PASS.
    let user = c.cmd("USER alice").await;
    let refusal = if user.starts_with("+OK") {
        c.cmd(&format!("PASS {ALICE_PASSWORD}")).await
    } else {
        user
    };
    assert!(refusal.starts_with("-ERR [AUTH]"), "{refusal}");
    let auth = c.cmd("AUTH PLAIN AGFsaWNlAGFsaWNlLVNlY3JldC0x").await;
    assert!(auth.starts_with("-ERR"), "{auth}");

    c.ok("STLS").await;
    let Client { io, .. } = c;
    let tcp = io.into_inner();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = server.connector.connect(name, tcp).await.unwrap();
    let mut c = Client {
        io: BufReader::new(Box::new(tls)),
        greeting: String::new(),
        patience: Duration::from_secs(30),
    };
    let capa = c.multi("CAPA").await;
    assert!(!capa.iter().any(|l| l == "STLS"), "{capa:?}");
    assert!(capa.iter().any(|l| l == "USER"), "{capa:?}");
    // SASL PLAIN with an initial response: "\0alice\0alice-Secret-1".
    c.ok("AUTH PLAIN AGFsaWNlAGFsaWNlLVNlY3JldC0x").await;
    assert!(c.ok("STAT").await.starts_with("+OK 6 "));
    c.ok("QUIT").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_login_and_plain_without_initial_response() {
    let fx = Fixture::new();
    let server = fx.start().await;
    let mut c = server.tls().await;
    // AUTH LOGIN: "Username:" / "Password:" challenges, base64.
    assert_eq!(c.cmd("AUTH LOGIN").await, "+ VXNlcm5hbWU6");
    assert_eq!(c.cmd("Ym9i").await, "+ UGFzc3dvcmQ6");
    let reply = c.cmd("Ym9iIHNlY3JldCB3aXRoIHNwYWNlcw==").await;
    assert!(reply.starts_with("+OK"), "{reply}");
    c.ok("QUIT").await;

    let mut c = server.tls().await;
    assert_eq!(c.cmd("AUTH PLAIN").await.trim_end(), "+");
    // "\0alice\0wrong"
    let reply = c.cmd("AGFsaWNlAHdyb25n").await;
    assert!(reply.starts_with("-ERR [AUTH]"), "{reply}");
    // Cancelled exchange.
    assert_eq!(c.cmd("AUTH LOGIN").await, "+ VXNlcm5hbWU6");
    assert!(c.cmd("*").await.starts_with("-ERR"));
    c.login("alice", ALICE_PASSWORD).await;
    c.ok("QUIT").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_mail_shows_up_at_next_login() {
    let fx = Fixture::new();
    let server = fx.start().await;
    let mut c = server.tls().await;
    c.login("alice", ALICE_PASSWORD).await;
    let before = c.multi("UIDL").await;
    fs::write(
        fx.maildir("alice").join("new").join("9999.late.test"),
        b"Subject: late\n\nhello\n",
    )
    .unwrap();
    assert_eq!(c.multi("UIDL").await, before, "snapshot while logged in");
    c.ok("QUIT").await;
    let mut c = server.tls().await;
    c.login("alice", ALICE_PASSWORD).await;
    let after = c.multi("UIDL").await;
    assert_eq!(&after[..before.len()], &before[..]);
    assert_eq!(after.len(), before.len() + 1);
    c.ok(&format!("RETR {}", after.len())).await;
    assert_eq!(c.body().await, b"Subject: late\r\n\r\nhello\r\n.\r\n");
    c.ok("QUIT").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_sessions_without_committing() {
    let fx = Fixture::new();
    let server = fx.start().await;
    let mut c = server.tls().await;
    c.login("alice", ALICE_PASSWORD).await;
    let files = fx.files("alice");
    c.ok("DELE 1").await;
    let pop3 = server.plain;
    server.stop().await;
    let rest = String::from_utf8(c.rest().await).unwrap();
    assert!(rest.starts_with("-ERR"), "{rest}");
    assert_eq!(fx.files("alice"), files);
    assert!(TcpStream::connect(pop3).await.is_err(), "listener closed");
}

// ---- paused time, over in-memory pipes ----

/// Runs one session over a duplex pipe (clear text, so the fixture must allow clear-text
/// logins); returns the client end and the session task.
fn pipe_session(
    fx: &Fixture,
    shutdown: &CancellationToken,
) -> (tokio::io::DuplexStream, tokio::task::JoinHandle<Ending>) {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let task = tokio::spawn(serve_pop3(
        fx.ctx.clone(),
        MaybeTls::Plain(server),
        Endpoints {
            remote: "127.0.0.1:40000".parse().unwrap(),
            local: "127.0.0.1:110".parse().unwrap(),
        },
        None,
        None,
        shutdown.clone(),
    ));
    (client, task)
}

#[tokio::test(start_paused = true)]
async fn pre_auth_timeout_closes_idle_connection() {
    let fx = Fixture::with_settings(Pop3Settings {
        pre_auth_timeout: cas_server::config::Limit::Value(Duration::from_secs(60)),
        allow_clear_text_without_tls: true,
        ..Pop3Settings::default()
    });
    let shutdown = CancellationToken::new();
    let (client, task) = pipe_session(&fx, &shutdown);
    let mut c = Client::new(Box::new(client)).await;
    c.patience = Duration::from_secs(24 * 3600);
    let started = tokio::time::Instant::now();
    let rest = String::from_utf8(c.rest().await).unwrap();
    assert!(rest.starts_with("-ERR"), "{rest}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(60) && waited < Duration::from_secs(62),
        "{waited:?}"
    );
    assert_eq!(task.await.unwrap(), Ending::Closed);
}

/// Paused time: alice logged in over a pipe (600 s idle timeout) with message 1 marked
/// deleted. Returns the fixture, her message files before, the client and the session task.
async fn logged_in_with_600s_timeout_and_a_deletion() -> (
    Fixture,
    Vec<String>,
    Client,
    tokio::task::JoinHandle<Ending>,
) {
    let fx = Fixture::with_settings(Pop3Settings {
        authenticated_timeout: cas_server::config::Limit::Value(Duration::from_secs(600)),
        allow_clear_text_without_tls: true,
        ..Pop3Settings::default()
    });
    let files = fx.files("alice");
    let shutdown = CancellationToken::new();
    let (client, task) = pipe_session(&fx, &shutdown);
    let mut c = Client::new(Box::new(client)).await;
    c.patience = Duration::from_secs(24 * 3600);
    c.login("alice", ALICE_PASSWORD).await;
    c.ok("DELE 1").await;
    (fx, files, c, task)
}

/// The maildrop lock was released and nothing was deleted.
fn assert_nothing_committed(fx: &Fixture, files: &[String]) {
    let store = MaildirStore::new(fx.data.dir.join("maildir"));
    let m = cas_server::store::MailStore::open_maildrop(&store, "alice").unwrap();
    assert_eq!(m.messages().len(), files.len());
}

#[tokio::test(start_paused = true)]
async fn authenticated_timeout_commits_nothing() {
    let (fx, files, mut c, task) = logged_in_with_600s_timeout_and_a_deletion().await;
    // Activity resets the idle timer.
    tokio::time::sleep(Duration::from_secs(500)).await;
    c.ok("NOOP").await;
    let started = tokio::time::Instant::now();
    let rest = String::from_utf8(c.rest().await).unwrap();
    assert!(rest.starts_with("-ERR"), "{rest}");
    assert!(started.elapsed() >= Duration::from_secs(600));
    assert_eq!(task.await.unwrap(), Ending::Closed);
    assert_nothing_committed(&fx, &files);
}

#[tokio::test(start_paused = true)]
async fn client_that_stops_reading_mid_retr_is_dropped_and_commits_nothing() {
    let (fx, files, mut c, task) = logged_in_with_600s_timeout_and_a_deletion().await;
    let listing = c.multi("LIST").await;
    let largest = listing
        .iter()
        .filter_map(|line| line.split_once(' '))
        .max_by_key(|(_, size)| size.parse::<u64>().unwrap())
        .map(|(num, _)| num.to_string())
        .unwrap();
    // Ask for the ~2 MB message and never read it: the pipe and the buffers fill up.
    c.send(&format!("RETR {largest}")).await;
    let started = tokio::time::Instant::now();
    let ending = tokio::time::timeout(Duration::from_secs(3600), task)
        .await
        .expect("a client that stops reading must not hold the session forever")
        .unwrap();
    // The session measures progress per timer period: the transfer moved in the first one,
    // so the stall is detected at the end of the second, then the final flush is abandoned.
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(600) && waited <= Duration::from_secs(1210),
        "{waited:?} ({ending:?})"
    );
    assert_nothing_committed(&fx, &files);
    drop(c);
}

#[tokio::test(start_paused = true)]
async fn policy_reload_closes_a_revoked_session_at_its_next_command_without_committing() {
    let (fx, files, mut c, task) = logged_in_with_600s_timeout_and_a_deletion().await;
    // A command still works under the policy in force.
    c.ok("NOOP").await;
    let revoked = cas_policy::Policy::from_toml_str(
        "[CASMailbox.alice]\nOrganizationalUnit = \"corp/sales\"\nPopEnabled = false\n",
    )
    .unwrap();
    fx.ctx.login.access.live_policy().install(revoked);
    let reply = c.cmd("STAT").await;
    assert!(
        reply.starts_with("-ERR [AUTH]") && reply.contains("POP3 access is disabled"),
        "{reply}"
    );
    let rest = c.rest().await;
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    assert_eq!(task.await.unwrap(), Ending::Closed);
    assert_nothing_committed(&fx, &files);
}

#[tokio::test(start_paused = true)]
async fn sort_order_and_mime_format_from_the_policy_over_a_pipe() {
    let fx = Fixture::with_policy(
        Pop3Settings {
            allow_clear_text_without_tls: true,
            ..Pop3Settings::default()
        },
        "[PopSettings]\nMessageRetrievalSortOrder = \"Descending\"\n\
         MessageRetrievalMimeFormat = \"TextOnly\"\nEnableExactRFC822Size = true\n",
    );
    let shutdown = CancellationToken::new();
    let (client, _task) = pipe_session(&fx, &shutdown);
    let mut c = Client::new(Box::new(client)).await;
    c.patience = Duration::from_secs(3600);
    c.login("alice", ALICE_PASSWORD).await;
    let samples = demo::sample_messages("alice");
    let listing = c.multi("LIST").await;
    assert_eq!(listing.len(), samples.len());
    // Message 2 of the reversed drop is the second newest sample (stored with CRLF is the
    // newest); its exact size is that of the converted message RETR sends.
    let size: usize = listing[0].split_once(' ').unwrap().1.parse().unwrap();
    c.ok("RETR 1").await;
    let body = c.body().await;
    // Undo the terminator and the dot-stuffing: what remains is the converted message.
    let message = String::from_utf8_lossy(&body[..body.len() - 3]).replace("\r\n..", "\r\n.");
    assert_eq!(message.len(), size, "LIST size differs from what RETR sent");
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("Subject: Stored with CRLF"), "{text}");
    assert!(text.contains("Content-Type: text/plain"), "{text}");
    // The multipart sample is message number samples.len() - 1 in descending order.
    c.ok(&format!("RETR {}", samples.len() - 1)).await;
    let body = String::from_utf8_lossy(&c.body().await).into_owned();
    assert!(body.contains("Subject: Agenda and budget (MIME)"), "{body}");
    assert!(!body.contains("text/html"), "{body}");
    assert!(body.contains("budget.csv"), "{body}");
}

#[tokio::test(start_paused = true)]
async fn failed_logins_are_throttled_per_address_with_login_delay() {
    let fx = Fixture::with_policy(
        Pop3Settings {
            allow_clear_text_without_tls: true,
            ..Pop3Settings::default()
        },
        "[LoginThrottle]\nAddressFreeFailures = 1\nBaseDelay = \"00:00:10\"\n",
    );
    let shutdown = CancellationToken::new();
    let (client, _task) = pipe_session(&fx, &shutdown);
    let mut c = Client::new(Box::new(client)).await;
    c.patience = Duration::from_secs(3600);
    // One failure is free (AddressFreeFailures = 1); the second starts the backoff.
    for _ in 0..2 {
        c.ok("USER alice").await;
        let reply = c.cmd("PASS wrong").await;
        assert!(reply.starts_with("-ERR [AUTH]"), "{reply}");
    }
    // The next attempt from the same address, even with the right password, must wait.
    c.ok("USER alice").await;
    let reply = c.cmd(&format!("PASS {ALICE_PASSWORD}")).await;
    assert!(reply.starts_with("-ERR [LOGIN-DELAY]"), "{reply}");
    tokio::time::sleep(Duration::from_secs(30)).await;
    // A new session: this one has used up its failed logins.
    let (client, _task) = pipe_session(&fx, &shutdown);
    let mut c = Client::new(Box::new(client)).await;
    c.login("alice", ALICE_PASSWORD).await;
}
