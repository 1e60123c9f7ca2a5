//! The IMAP service in-process over real loopback sockets (IMAP with STARTTLS, IMAPS):
//! raw transcripts checked line by line, the Maildir checked on disk, policy enforced.
//! A small IMAP client below reads responses with their literals and speaks TLS and
//! DEFLATE (flate2) itself, independently of the server's code.

use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cas_server::access::AccessControl;
use cas_server::config::{Imap4Settings, Pop3Settings};
use cas_server::imap::ImapContext;
use cas_server::maildir::MaildirStore;
use cas_server::pop3::Pop3Context;
use cas_server::{Server, demo};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

mod common;

use common::inproc::{ALICE_PASSWORD, BOB_PASSWORD, DataDir, Running};

/// How long any single server answer may take.
const PATIENCE: Duration = Duration::from_secs(20);

/// A data directory with cheap password and NT hashes, the demo mail (INBOX and folders)
/// and a certificate.
struct Fixture {
    data: DataDir,
    access: Arc<AccessControl>,
    settings: Imap4Settings,
}

impl Fixture {
    fn new() -> Fixture {
        Self::with("", Imap4Settings::default())
    }

    /// A fixture whose `policy.toml` holds `policy` (Exchange vocabulary).
    fn with(policy: &str, settings: Imap4Settings) -> Fixture {
        let data = DataDir::new(policy, true, |root, user| {
            let messages = demo::sample_messages(user);
            for (i, message) in messages.iter().enumerate() {
                let name = format!("{}.M{i}.test:2,", 1000 + i);
                fs::write(root.join(user).join("cur").join(name), message).unwrap();
            }
            // Sent, Drafts, Trash, Junk, Archive and Archive/2025, as the demo has them.
            cas_server::imap_store::demo::populate_demo_folders(root, user, &messages).unwrap();
        });
        let access = data.access(false);
        Fixture {
            data,
            access,
            settings,
        }
    }

    fn maildir(&self, user: &str) -> PathBuf {
        self.data.maildir(user)
    }

    /// The Maildir++ directory of an IMAP folder (`""` = INBOX, `/` becomes `.`).
    fn folder_dir(&self, user: &str, folder: &str) -> PathBuf {
        if folder.is_empty() {
            self.maildir(user)
        } else {
            self.maildir(user)
                .join(format!(".{}", folder.replace('/', ".")))
        }
    }

    /// Message files of a Maildir folder (`""` = INBOX) in cur/ and new/, sorted.
    fn files(&self, user: &str, folder: &str) -> Vec<String> {
        let base = self.folder_dir(user, folder);
        let mut names = Vec::new();
        for sub in ["cur", "new"] {
            for e in fs::read_dir(base.join(sub)).unwrap() {
                names.push(e.unwrap().file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        names
    }

    /// Contents of every message file of a folder.
    fn contents(&self, user: &str, folder: &str) -> Vec<Vec<u8>> {
        let base = self.folder_dir(user, folder);
        let mut out = Vec::new();
        for sub in ["cur", "new"] {
            for e in fs::read_dir(base.join(sub)).unwrap() {
                out.push(fs::read(e.unwrap().path()).unwrap());
            }
        }
        out
    }

    /// A server on ephemeral ports (IMAP and IMAPS only).
    async fn start(&self) -> Running {
        let pop3 = Arc::new(
            Pop3Context::new(
                Pop3Settings::default(),
                true,
                self.data.credentials.clone(),
                Arc::new(MaildirStore::new(self.data.dir.join("maildir"))),
                None,
                None,
                self.access.clone(),
            )
            .unwrap(),
        );
        let store = cas_server::imap::open_store(&self.data.dir.join("maildir"), &self.settings);
        let imap = Arc::new(
            ImapContext::new(
                self.settings.clone(),
                true,
                self.data.credentials.clone(),
                store,
                Some(Arc::new(cas_auth::ntlm::NtlmConfig::new(
                    "CAS",
                    "CAS-SERVER",
                    "localhost",
                    "localhost",
                ))),
                None,
                self.access.clone(),
            )
            .unwrap(),
        );
        let mut server = Server::bind_with(pop3, Some(self.data.acceptor.clone()), None, None)
            .await
            .unwrap();
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        server.bind_imap(imap, Some(any), Some(any)).await.unwrap();
        let imap = server.imap_addr().unwrap();
        let imaps = server.imaps_addr().unwrap();
        Running::spawn(server, imap, imaps, &self.data.cert_pem)
    }
}

impl Running {
    /// A plain connection, greeting read.
    async fn plain(&self) -> Client {
        let tcp = TcpStream::connect(self.plain).await.unwrap();
        Client::new(Conn::Plain(tcp), self.connector.clone()).await
    }

    /// An IMAPS connection, greeting read.
    async fn tls(&self) -> Client {
        let tls = self.connect_tls().await;
        Client::new(Conn::Tls(Box::new(tls)), self.connector.clone()).await
    }

    /// An IMAPS connection logged in as `user`.
    async fn login(&self, user: &str, password: &str) -> Client {
        let mut c = self.tls().await;
        let reply = c.ok(&format!("LOGIN {user} \"{password}\"")).await;
        assert!(reply.last().unwrap().contains("[CAPABILITY "), "{reply:?}");
        c
    }
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    Gone,
}

impl Conn {
    async fn read(&mut self, buf: &mut [u8]) -> usize {
        match self {
            Conn::Plain(s) => s.read(buf).await.unwrap_or(0),
            Conn::Tls(s) => s.read(buf).await.unwrap_or(0),
            Conn::Gone => 0,
        }
    }

    async fn write(&mut self, data: &[u8]) {
        match self {
            Conn::Plain(s) => {
                s.write_all(data).await.unwrap();
                s.flush().await.unwrap();
            }
            Conn::Tls(s) => {
                s.write_all(data).await.unwrap();
                s.flush().await.unwrap();
            }
            Conn::Gone => panic!("connection gone"),
        }
    }
}

/// Raw deflate both ways, done by the test itself (RFC 4978).
struct Deflate {
    compress: Compress,
    decompress: Decompress,
}

/// A minimal IMAP client: tagged commands, responses read line by line with their literals
/// inline.
struct Client {
    conn: Conn,
    connector: TlsConnector,
    /// Bytes received (inflated when compression is on), not yet returned.
    buf: Vec<u8>,
    deflate: Option<Deflate>,
    next_tag: u32,
    greeting: String,
}

impl Client {
    async fn new(conn: Conn, connector: TlsConnector) -> Client {
        let mut c = Client {
            conn,
            connector,
            buf: Vec::new(),
            deflate: None,
            next_tag: 1,
            greeting: String::new(),
        };
        c.greeting = c.line().await;
        c
    }

    async fn fill(&mut self) -> bool {
        let mut raw = vec![0u8; 16 * 1024];
        let n = self.conn.read(&mut raw).await;
        if n == 0 {
            return false;
        }
        match self.deflate.as_mut() {
            None => self.buf.extend_from_slice(&raw[..n]),
            Some(d) => {
                let mut input = &raw[..n];
                while !input.is_empty() {
                    let mut out = vec![0u8; 64 * 1024];
                    let (i, o) = (d.decompress.total_in(), d.decompress.total_out());
                    d.decompress
                        .decompress(input, &mut out, FlushDecompress::Sync)
                        .unwrap();
                    let used = (d.decompress.total_in() - i) as usize;
                    let made = (d.decompress.total_out() - o) as usize;
                    self.buf.extend_from_slice(&out[..made]);
                    input = &input[used..];
                }
            }
        }
        true
    }

    /// One response line, literals inline, without the final CRLF; panics on EOF.
    async fn line(&mut self) -> String {
        String::from_utf8_lossy(&self.raw_line().await).into_owned()
    }

    async fn try_raw_line(&mut self) -> Option<Vec<u8>> {
        let mut line = Vec::new();
        loop {
            let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") else {
                let more = tokio::time::timeout(PATIENCE, self.fill())
                    .await
                    .expect("server answers in time");
                if !more {
                    return None;
                }
                continue;
            };
            let part: Vec<u8> = self.buf.drain(..end + 2).collect();
            line.extend_from_slice(&part[..end]);
            // A literal announcement at the end of the line: its bytes follow.
            let literal = literal_size(&line);
            match literal {
                None => return Some(line),
                Some(size) => {
                    line.extend_from_slice(b"\r\n");
                    while self.buf.len() < size {
                        let more = tokio::time::timeout(PATIENCE, self.fill())
                            .await
                            .expect("literal in time");
                        assert!(more, "EOF in a literal");
                    }
                    line.extend(self.buf.drain(..size));
                }
            }
        }
    }

    async fn raw_line(&mut self) -> Vec<u8> {
        self.try_raw_line().await.expect("unexpected EOF")
    }

    async fn send_raw(&mut self, data: &[u8]) {
        match self.deflate.as_mut() {
            None => self.conn.write(data).await,
            Some(d) => {
                let mut out = Vec::with_capacity(data.len() + 64);
                let mut input = data;
                loop {
                    out.reserve(input.len() + 64);
                    let before = d.compress.total_in();
                    d.compress
                        .compress_vec(input, &mut out, FlushCompress::Sync)
                        .unwrap();
                    input = &input[(d.compress.total_in() - before) as usize..];
                    if input.is_empty() && out.len() < out.capacity() {
                        break;
                    }
                }
                self.conn.write(&out).await;
            }
        }
    }

    fn tag(&mut self) -> String {
        let tag = format!("t{}", self.next_tag);
        self.next_tag += 1;
        tag
    }

    /// Sends `command` with a fresh tag; returns every line up to and including the tagged
    /// one (the tag stripped from it).
    async fn cmd(&mut self, command: &str) -> Vec<String> {
        let tag = self.tag();
        self.send_raw(format!("{tag} {command}\r\n").as_bytes())
            .await;
        self.until_tag(&tag).await
    }

    async fn until_tag(&mut self, tag: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line().await;
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                lines.push(rest.to_owned());
                return lines;
            }
            lines.push(line);
        }
    }

    /// `cmd`, asserting a tagged OK.
    async fn ok(&mut self, command: &str) -> Vec<String> {
        let lines = self.cmd(command).await;
        assert!(
            lines.last().unwrap().starts_with("OK"),
            "{command} -> {lines:#?}"
        );
        lines
    }

    /// `cmd`, asserting a tagged NO or BAD starting with `status`.
    async fn fails(&mut self, command: &str, status: &str) -> Vec<String> {
        let lines = self.cmd(command).await;
        assert!(
            lines.last().unwrap().starts_with(status),
            "{command} -> {lines:#?}"
        );
        lines
    }

    /// STARTTLS on a plain connection.
    async fn starttls(&mut self) {
        self.ok("STARTTLS").await;
        assert!(self.buf.is_empty());
        let Conn::Plain(tcp) = std::mem::replace(&mut self.conn, Conn::Gone) else {
            panic!("already TLS");
        };
        let name = ServerName::try_from("localhost").unwrap();
        let tls = self.connector.connect(name, tcp).await.unwrap();
        self.conn = Conn::Tls(Box::new(tls));
    }

    /// COMPRESS DEFLATE, then everything is deflated both ways.
    async fn compress(&mut self) {
        self.ok("COMPRESS DEFLATE").await;
        assert!(self.buf.is_empty());
        self.deflate = Some(Deflate {
            compress: Compress::new(Compression::default(), false),
            decompress: Decompress::new(false),
        });
    }

    /// Reads until the server closes; returns the lines that came.
    async fn rest(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        while let Some(line) = self.try_raw_line().await {
            lines.push(String::from_utf8_lossy(&line).into_owned());
        }
        lines
    }

    /// Drops the connection without LOGOUT.
    fn drop_connection(mut self) {
        self.conn = Conn::Gone;
    }
}

/// `{n}` or `{n+}` / `~{n}` at the end of a response line.
fn literal_size(line: &[u8]) -> Option<usize> {
    let rest = line.strip_suffix(b"}")?;
    let open = rest.iter().rposition(|&b| b == b'{')?;
    let digits = &rest[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The capability list of a CAPABILITY response or `[CAPABILITY ...]` code.
fn capabilities(lines: &[String]) -> Vec<String> {
    for line in lines {
        let rest = line
            .strip_prefix("* CAPABILITY ")
            .or_else(|| line.split_once("[CAPABILITY ").map(|(_, r)| r));
        if let Some(rest) = rest {
            let list = rest.split(']').next().unwrap();
            return list.split(' ').map(str::to_owned).collect();
        }
    }
    panic!("no capabilities in {lines:#?}");
}

/// The number in `* n EXISTS`.
fn exists(lines: &[String]) -> Option<u32> {
    lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("* ")?.strip_suffix(" EXISTS")?.parse().ok())
}

/// The UIDs of a `* SEARCH` response.
fn search(lines: &[String]) -> Vec<u32> {
    lines
        .iter()
        .find_map(|l| l.strip_prefix("* SEARCH"))
        .map(|rest| {
            rest.split_whitespace()
                .map(|n| n.parse().unwrap())
                .collect()
        })
        .unwrap_or_default()
}

fn has(lines: &[String], needle: &str) -> bool {
    lines.iter().any(|l| l.contains(needle))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capabilities_follow_tls_and_login() {
    let fx = Fixture::new();
    let server = fx.start().await;

    // Plain, before TLS: STARTTLS offered, LOGINDISABLED (SecureLogin), no clear-text AUTH=.
    let mut c = server.plain().await;
    assert!(
        c.greeting.starts_with("* OK [CAPABILITY "),
        "{}",
        c.greeting
    );
    let caps = capabilities(&c.ok("CAPABILITY").await);
    for cap in ["IMAP4rev1", "IMAP4rev2", "STARTTLS", "LOGINDISABLED"] {
        assert!(caps.iter().any(|c| c == cap), "{cap} missing from {caps:?}");
    }
    assert!(!caps.iter().any(|c| c == "AUTH=PLAIN"), "{caps:?}");
    let refused = c.cmd(&format!("LOGIN alice \"{ALICE_PASSWORD}\"")).await;
    assert!(
        refused.last().unwrap().starts_with("NO") || refused.last().unwrap().starts_with("BAD"),
        "{refused:?}"
    );

    // After STARTTLS: no STARTTLS, no LOGINDISABLED, AUTH=PLAIN and SASL-IR.
    c.starttls().await;
    let caps = capabilities(&c.ok("CAPABILITY").await);
    assert!(
        !caps.iter().any(|c| c == "STARTTLS" || c == "LOGINDISABLED"),
        "{caps:?}"
    );
    for cap in ["AUTH=PLAIN", "AUTH=LOGIN", "SASL-IR"] {
        assert!(caps.iter().any(|c| c == cap), "{cap} missing from {caps:?}");
    }

    // After login: the extensions of the issue.
    let login = c.ok(&format!("LOGIN alice \"{ALICE_PASSWORD}\"")).await;
    let caps = capabilities(&login);
    for cap in [
        "IMAP4rev1",
        "IMAP4rev2",
        "IDLE",
        "UIDPLUS",
        "ENABLE",
        "MOVE",
        "UNSELECT",
        "NAMESPACE",
        "ID",
        "LITERAL+",
        "CONDSTORE",
        "QRESYNC",
        "SPECIAL-USE",
        "ESEARCH",
        "LIST-EXTENDED",
        "LIST-STATUS",
        "STATUS=SIZE",
        "CHILDREN",
        "MULTIAPPEND",
        "UTF8=ACCEPT",
        "COMPRESS=DEFLATE",
    ] {
        assert!(caps.iter().any(|c| c == cap), "{cap} missing from {caps:?}");
    }
    assert!(
        caps.iter().any(|c| c.starts_with("APPENDLIMIT=")),
        "{caps:?}"
    );
    assert!(!caps.iter().any(|c| c.starts_with("AUTH=")), "{caps:?}");
    c.ok("LOGOUT").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_authenticate_plain() {
    let fx = Fixture::new();
    let server = fx.start().await;
    // IMAPS: clear-text logins allowed at once.
    let mut c = server.tls().await;
    let caps = capabilities(std::slice::from_ref(&c.greeting));
    assert!(
        !caps.iter().any(|c| c == "STARTTLS" || c == "LOGINDISABLED"),
        "{caps:?}"
    );
    c.fails("LOGIN alice wrong-password", "NO [AUTHENTICATIONFAILED]")
        .await;
    c.ok(&format!("LOGIN alice \"{ALICE_PASSWORD}\"")).await;
    c.ok("LOGOUT").await;

    // SASL-IR: the initial response on the command line.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut c = server.tls().await;
    let ir = b64.encode(format!("\0bob\0{BOB_PASSWORD}"));
    let reply = c.ok(&format!("AUTHENTICATE PLAIN {ir}")).await;
    assert!(reply.last().unwrap().contains("[CAPABILITY "), "{reply:?}");
    c.ok("SELECT INBOX").await;
    c.ok("LOGOUT").await;

    // Without SASL-IR: an empty continuation, then the response.
    let mut c = server.tls().await;
    c.send_raw(b"a1 AUTHENTICATE PLAIN\r\n").await;
    assert_eq!(c.line().await, "+ ");
    c.send_raw(format!("{}\r\n", b64.encode(format!("\0alice\0{ALICE_PASSWORD}"))).as_bytes())
        .await;
    let done = c.until_tag("a1").await;
    assert!(done.last().unwrap().starts_with("OK"), "{done:?}");
    // A cancelled exchange.
    let mut c = server.tls().await;
    c.send_raw(b"a2 AUTHENTICATE PLAIN\r\n").await;
    assert_eq!(c.line().await, "+ ");
    c.send_raw(b"*\r\n").await;
    let done = c.until_tag("a2").await;
    assert!(done.last().unwrap().starts_with("BAD"), "{done:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_namespace_status_and_special_use() {
    let fx = Fixture::new();
    let server = fx.start().await;
    let mut c = server.login("alice", ALICE_PASSWORD).await;
    let list = c.ok("LIST \"\" \"*\"").await;
    for (name, attr) in [
        ("INBOX", ""),
        ("Sent", "\\Sent"),
        ("Drafts", "\\Drafts"),
        ("Trash", "\\Trash"),
        ("Junk", "\\Junk"),
        ("Archive", "\\Archive"),
        ("Archive/2025", "\\HasNoChildren"),
    ] {
        let line = list
            .iter()
            .find(|l| {
                l.starts_with("* LIST")
                    && (l.ends_with(&format!(" {name}")) || l.ends_with(&format!(" \"{name}\"")))
            })
            .unwrap_or_else(|| panic!("no {name} in {list:#?}"));
        assert!(line.contains(attr), "{line}");
    }
    let special = c.ok("LIST (SPECIAL-USE) \"\" \"*\"").await;
    let listed = special.iter().filter(|l| l.starts_with("* LIST")).count();
    assert_eq!(listed, 5, "{special:#?}");
    let status = c
        .ok("LIST \"\" \"*\" RETURN (STATUS (MESSAGES UIDNEXT SIZE))")
        .await;
    assert!(
        status.iter().any(|l| l.starts_with("* STATUS")
            && l.contains("Archive/2025")
            && l.contains("MESSAGES 2")),
        "{status:#?}"
    );
    let ns = c.ok("NAMESPACE").await;
    assert!(
        ns[0].starts_with("* NAMESPACE ((\"\" \"/\")) NIL NIL"),
        "{ns:?}"
    );
    let st = c
        .ok("STATUS INBOX (MESSAGES UNSEEN UIDNEXT UIDVALIDITY SIZE)")
        .await;
    let expected_messages = demo::sample_messages("alice").len();
    assert!(
        st[0].contains(&format!("MESSAGES {expected_messages}")),
        "{st:?}"
    );
    let id = c.ok("ID (\"name\" \"test\")").await;
    assert!(
        id[0].starts_with("* ID (") && id[0].contains("\"name\""),
        "{id:?}"
    );
    c.fails("SELECT Nonexistent", "NO").await;
    c.ok("LOGOUT").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_round_trip_is_on_disk() {
    let fx = Fixture::new();
    let server = fx.start().await;
    let samples = demo::sample_messages("alice");
    let mut c = server.login("alice", ALICE_PASSWORD).await;
    let select = c.ok("SELECT INBOX").await;
    assert_eq!(exists(&select), Some(samples.len() as u32), "{select:#?}");
    assert!(
        select.last().unwrap().contains("[READ-WRITE]"),
        "{select:?}"
    );

    // BODY[] of message 1 is the stored message, byte for byte.
    let fetch = c.ok("FETCH 1 (UID FLAGS RFC822.SIZE BODY.PEEK[])").await;
    let first = fetch.iter().find(|l| l.starts_with("* 1 FETCH")).unwrap();
    let body = String::from_utf8_lossy(&samples[0]).into_owned();
    assert!(
        first.contains(&body.replace('\n', "\r\n")) || first.contains(&body),
        "{first}"
    );
    let structure = c.ok("FETCH 2 (BODYSTRUCTURE ENVELOPE)").await;
    assert!(
        has(&structure, "\"mixed\"") || has(&structure, "\"MIXED\""),
        "{structure:#?}"
    );
    assert!(has(&structure, "Agenda and budget"), "{structure:#?}");

    // STORE \Seen and \Flagged: the file name's info flags follow.
    c.ok("STORE 1 +FLAGS (\\Seen \\Flagged)").await;
    let files = fx.files("alice", "");
    assert!(
        files
            .iter()
            .any(|f| f.starts_with("1000.M0.test") && f.ends_with(":2,FS")),
        "{files:?}"
    );

    // COPY to Archive, MOVE to Trash with COPYUID.
    let copy = c.ok("COPY 1 Archive").await;
    assert!(copy.last().unwrap().contains("[COPYUID "), "{copy:?}");
    assert_eq!(fx.files("alice", "Archive").len(), 1);
    let moved = c.ok("UID MOVE 2 Trash").await;
    assert!(has(&moved, "[COPYUID "), "{moved:?}");
    assert!(has(&moved, "* 2 EXPUNGE"), "{moved:?}");
    assert_eq!(fx.files("alice", "Trash").len(), 1);
    assert_eq!(fx.files("alice", "").len(), samples.len() - 1);

    // APPEND with a synchronizing literal: APPENDUID, the file exists with its flags.
    let message = b"From: a@example.test\r\nSubject: appended\r\n\r\nHello\r\n";
    c.send_raw(format!("a1 APPEND Drafts (\\Draft) {{{}}}\r\n", message.len()).as_bytes())
        .await;
    assert!(c.line().await.starts_with("+"));
    c.send_raw(message).await;
    c.send_raw(b"\r\n").await;
    let appended = c.until_tag("a1").await;
    assert!(
        appended.last().unwrap().contains("[APPENDUID "),
        "{appended:?}"
    );
    assert_eq!(fx.contents("alice", "Drafts"), vec![message.to_vec()]);
    assert!(fx.files("alice", "Drafts")[0].ends_with(":2,D"));
    // LITERAL+ needs no continuation.
    c.ok(&format!(
        "APPEND Drafts {{{}+}}\r\n{}",
        message.len(),
        String::from_utf8_lossy(message)
    ))
    .await;
    assert_eq!(fx.files("alice", "Drafts").len(), 2);

    // EXPUNGE removes only \Deleted messages.
    c.ok("STORE 3 +FLAGS.SILENT (\\Deleted)").await;
    let expunge = c.ok("EXPUNGE").await;
    assert!(has(&expunge, "* 3 EXPUNGE"), "{expunge:?}");
    assert_eq!(fx.files("alice", "").len(), samples.len() - 2);
    // CLOSE expunges silently.
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    let close = c.ok("CLOSE").await;
    assert!(!has(&close, "EXPUNGE"), "{close:?}");
    assert_eq!(fx.files("alice", "").len(), samples.len() - 3);

    // UID SEARCH, ESEARCH and CONDSTORE.
    c.ok("SELECT Archive/2025 (CONDSTORE)").await;
    let found = c.ok("UID SEARCH SUBJECT \"Agenda\"").await;
    assert_eq!(search(&found).len(), 1, "{found:?}");
    let es = c.ok("SEARCH RETURN (COUNT MIN MAX) ALL").await;
    assert!(has(&es, "* ESEARCH (TAG ") && has(&es, "COUNT 2"), "{es:?}");
    let modseq = c.ok("FETCH 1:* (MODSEQ) (CHANGEDSINCE 1)").await;
    assert!(has(&modseq, "MODSEQ ("), "{modseq:?}");
    c.ok("LOGOUT").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uids_are_stable_across_a_restart() {
    let fx = Fixture::new();
    let server = fx.start().await;
    let mut c = server.login("alice", ALICE_PASSWORD).await;
    let before = c.ok("SELECT INBOX").await;
    let uids = c.ok("UID SEARCH ALL").await;
    c.ok("LOGOUT").await;
    server.stop().await;

    let server = fx.start().await;
    let mut c = server.login("alice", ALICE_PASSWORD).await;
    let after = c.ok("SELECT INBOX").await;
    let validity = |lines: &[String]| {
        lines
            .iter()
            .find(|l| l.contains("[UIDVALIDITY "))
            .cloned()
            .unwrap()
    };
    assert_eq!(validity(&before), validity(&after));
    assert_eq!(search(&uids), search(&c.ok("UID SEARCH ALL").await));
    c.ok("LOGOUT").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sees_appends_and_deliveries_within_two_seconds() {
    let fx = Fixture::new();
    let server = fx.start().await;
    let mut idler = server.login("alice", ALICE_PASSWORD).await;
    let select = idler.ok("SELECT INBOX").await;
    let count = exists(&select).unwrap();
    idler.send_raw(b"i1 IDLE\r\n").await;
    assert!(idler.line().await.starts_with("+ "));

    // An APPEND from a second connection.
    let mut other = server.login("alice", ALICE_PASSWORD).await;
    let message = b"Subject: pushed\r\n\r\nhi\r\n";
    other
        .ok(&format!(
            "APPEND INBOX {{{}+}}\r\n{}",
            message.len(),
            String::from_utf8_lossy(message)
        ))
        .await;
    let line = tokio::time::timeout(Duration::from_secs(2), idler.line())
        .await
        .expect("EXISTS within 2 s of an APPEND");
    assert_eq!(line, format!("* {} EXISTS", count + 1));

    // A file dropped into new/ by another program.
    let tmp = fx.maildir("alice").join("tmp").join("9999.delivery.test");
    fs::write(&tmp, b"Subject: delivered\r\n\r\nby hand\r\n").unwrap();
    fs::rename(
        &tmp,
        fx.maildir("alice").join("new").join("9999.delivery.test"),
    )
    .unwrap();
    let line = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            let line = idler.line().await;
            if line.ends_with(" EXISTS") {
                return line;
            }
        }
    })
    .await
    .expect("EXISTS within 2 s of a delivery into new/");
    assert_eq!(line, format!("* {} EXISTS", count + 2));

    // An expunge by the other session reaches the idler as EXPUNGE.
    other.ok("SELECT INBOX").await;
    other.ok("STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    other.ok("EXPUNGE").await;
    let line = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            let line = idler.line().await;
            if line.ends_with(" EXPUNGE") {
                return line;
            }
        }
    })
    .await
    .expect("EXPUNGE within 2 s");
    assert_eq!(line, "* 1 EXPUNGE");
    idler.send_raw(b"DONE\r\n").await;
    let done = idler.until_tag("i1").await;
    assert!(done.last().unwrap().starts_with("OK"), "{done:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_literal_is_refused_without_continuation() {
    let fx = Fixture::with(
        "",
        Imap4Settings {
            append_limit: Some(1000),
            ..Imap4Settings::default()
        },
    );
    let server = fx.start().await;
    let mut c = server.login("alice", ALICE_PASSWORD).await;
    let caps = capabilities(&c.ok("CAPABILITY").await);
    assert!(caps.iter().any(|c| c == "APPENDLIMIT=1000"), "{caps:?}");
    c.send_raw(b"a1 APPEND INBOX {5000}\r\n").await;
    let reply = c.line().await;
    assert!(!reply.starts_with('+'), "a continuation was sent: {reply}");
    assert!(
        reply.starts_with("a1 NO") || reply.starts_with("a1 BAD"),
        "{reply}"
    );
    assert!(
        reply.contains("TOOBIG") || reply.contains("LIMIT"),
        "{reply}"
    );
    // The session goes on.
    c.ok("NOOP").await;
    let before = fx.files("alice", "").len();
    assert_eq!(fx.files("alice", "").len(), before);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_discards_injected_commands() {
    let fx = Fixture::with(
        "",
        Imap4Settings {
            allow_clear_text_without_tls: true,
            ..Imap4Settings::default()
        },
    );
    let server = fx.start().await;
    let mut c = server.plain().await;
    // The classic injection: a command pipelined after STARTTLS in the same packet.
    c.send_raw(format!("s1 STARTTLS\r\nx1 LOGIN alice \"{ALICE_PASSWORD}\"\r\n").as_bytes())
        .await;
    let reply = c.until_tag("s1").await;
    assert!(reply.last().unwrap().starts_with("OK"), "{reply:?}");
    let Conn::Plain(tcp) = std::mem::replace(&mut c.conn, Conn::Gone) else {
        panic!()
    };
    let name = ServerName::try_from("localhost").unwrap();
    c.conn = Conn::Tls(Box::new(
        c.connector.clone().connect(name, tcp).await.unwrap(),
    ));
    // Not logged in: the injected LOGIN was dropped, and its tag never answered.
    let reply = c.cmd("SELECT INBOX").await;
    assert!(
        reply.last().unwrap().starts_with("BAD") || reply.last().unwrap().starts_with("NO"),
        "{reply:?}"
    );
    assert!(!has(&reply, "x1 "), "{reply:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compress_deflate_carries_the_session() {
    let fx = Fixture::new();
    let server = fx.start().await;
    let mut c = server.login("alice", ALICE_PASSWORD).await;
    c.compress().await;
    let select = c.ok("SELECT INBOX").await;
    assert!(exists(&select).is_some(), "{select:?}");
    // The large sample message arrives whole through the compressed stream.
    let samples = demo::sample_messages("alice");
    let (index, big) = samples
        .iter()
        .enumerate()
        .max_by_key(|(_, m)| m.len())
        .unwrap();
    let fetch = c
        .ok(&format!("FETCH {} (RFC822.SIZE BODY.PEEK[])", index + 1))
        .await;
    let line = fetch.iter().find(|l| l.contains("BODY[]")).unwrap();
    assert!(line.len() > big.len(), "{} < {}", line.len(), big.len());
    let again = c.fails("COMPRESS DEFLATE", "NO").await;
    assert!(has(&again, "COMPRESSIONACTIVE"), "{again:?}");
    c.ok("LOGOUT").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_disabled_and_connection_limits_are_refused() {
    let fx = Fixture::with(
        "[ImapSettings]\nMaxConnectionFromSingleIP = 2\n\n[CASMailbox.bob]\nImapEnabled = false\n",
        Imap4Settings::default(),
    );
    let server = fx.start().await;
    let mut bob = server.tls().await;
    let refused = bob.cmd(&format!("LOGIN bob \"{BOB_PASSWORD}\"")).await;
    assert!(
        refused
            .last()
            .unwrap()
            .starts_with("NO [AUTHORIZATIONFAILED]"),
        "{refused:?}"
    );
    let _alice = server.login("alice", ALICE_PASSWORD).await;
    // Third connection from 127.0.0.1: BYE instead of a greeting.
    let tcp = TcpStream::connect(server.tls).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = server.connector.connect(name, tcp).await.unwrap();
    let mut third = Client {
        conn: Conn::Tls(Box::new(tls)),
        connector: server.connector.clone(),
        buf: Vec::new(),
        deflate: None,
        next_tag: 1,
        greeting: String::new(),
    };
    let lines = third.rest().await;
    assert!(lines[0].starts_with("* BYE [UNAVAILABLE]"), "{lines:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_append_leaves_nothing() {
    let fx = Fixture::new();
    let server = fx.start().await;
    let before = fx.files("alice", "");
    let mut c = server.login("alice", ALICE_PASSWORD).await;
    c.send_raw(b"a1 APPEND INBOX {100000}\r\n").await;
    assert!(c.line().await.starts_with('+'));
    c.send_raw(&[b'x'; 50_000]).await;
    c.drop_connection();
    // Give the server a moment to notice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fx.files("alice", ""), before);
    let tmp: Vec<_> = fs::read_dir(fx.maildir("alice").join("tmp"))
        .unwrap()
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_says_bye() {
    let fx = Fixture::new();
    let server = fx.start().await;
    let mut c = server.login("alice", ALICE_PASSWORD).await;
    c.ok("SELECT INBOX").await;
    server.begin_shutdown();
    let lines = c.rest().await;
    assert!(lines.iter().any(|l| l.starts_with("* BYE")), "{lines:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_to_the_selected_mailbox_is_announced_before_ok() {
    let fx = Fixture::new();
    let server = fx.start().await;
    let mut c = server.login("bob", BOB_PASSWORD).await;
    let count = exists(&c.ok("SELECT INBOX").await).unwrap();
    let message = b"Subject: to myself\r\n\r\nnote\r\n";
    let appended = c
        .ok(&format!(
            "APPEND INBOX (\\Flagged) {{{}+}}\r\n{}",
            message.len(),
            String::from_utf8_lossy(message)
        ))
        .await;
    // EXISTS comes with the APPEND, before its OK (RFC 9051 §6.3.12).
    assert_eq!(exists(&appended), Some(count + 1), "{appended:?}");
    let new_uid: u32 = appended
        .last()
        .unwrap()
        .split("[APPENDUID ")
        .nth(1)
        .and_then(|r| r.split(']').next())
        .and_then(|r| r.split(' ').nth(1))
        .and_then(|u| u.parse().ok())
        .expect("APPENDUID");
    let flagged = c.ok("UID SEARCH FLAGGED").await;
    assert!(search(&flagged).contains(&new_uid), "{flagged:?}");
    // COPY into the selected mailbox itself.
    let copied = c.ok(&format!("UID COPY {new_uid} INBOX")).await;
    assert_eq!(exists(&copied), Some(count + 2), "{copied:?}");
    c.ok("LOGOUT").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_login_type_allows_login_before_tls() {
    let fx = Fixture::with(
        "[ImapSettings]\nLoginType = \"PlainTextLogin\"\n",
        Imap4Settings::default(),
    );
    let server = fx.start().await;
    let mut c = server.plain().await;
    let caps = capabilities(&c.ok("CAPABILITY").await);
    assert!(!caps.iter().any(|c| c == "LOGINDISABLED"), "{caps:?}");
    assert!(caps.iter().any(|c| c == "AUTH=PLAIN"), "{caps:?}");
    c.ok(&format!("LOGIN alice \"{ALICE_PASSWORD}\"")).await;
    c.ok("SELECT INBOX").await;
    c.ok("LOGOUT").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_log_has_commands_and_no_secrets() {
    let fx = Fixture::with(
        "[ImapSettings]\nProtocolLogEnabled = true\n",
        Imap4Settings::default(),
    );
    let server = fx.start().await;
    let mut c = server.login("alice", ALICE_PASSWORD).await;
    c.ok("SELECT INBOX").await;
    c.ok("FETCH 1 (FLAGS)").await;
    c.ok("LOGOUT").await;
    use base64::Engine as _;
    let ir = base64::engine::general_purpose::STANDARD.encode(format!("\0bob\0{BOB_PASSWORD}"));
    let mut c = server.tls().await;
    c.ok(&format!("AUTHENTICATE PLAIN {ir}")).await;
    c.ok("LOGOUT").await;
    server.stop().await;
    let mut log = String::new();
    for entry in fs::read_dir(fx.data.dir.join("logs").join("imap4")).unwrap() {
        log.push_str(&fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    for expected in ["SELECT INBOX", "FETCH 1 (FLAGS)", "LOGIN alice", "OK"] {
        assert!(log.contains(expected), "missing {expected:?} in\n{log}");
    }
    for secret in [ALICE_PASSWORD, BOB_PASSWORD, ir.as_str()] {
        assert!(
            !log.contains(secret),
            "a secret is in the protocol log:\n{log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_change_ends_a_logged_in_session() {
    let fx = Fixture::new();
    let server = fx.start().await;
    let mut c = server.login("alice", ALICE_PASSWORD).await;
    c.ok("SELECT INBOX").await;
    fs::write(
        fx.data.dir.join("policy.toml"),
        "[CASMailbox.alice]\nImapEnabled = false\n",
    )
    .unwrap();
    fx.access.live_policy().reload(true);
    c.send_raw(b"n1 NOOP\r\n").await;
    let lines = c.rest().await;
    assert!(lines.iter().any(|l| l.starts_with("* BYE")), "{lines:?}");
    assert!(!lines.iter().any(|l| l.starts_with("n1 OK")), "{lines:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_subscriptions_searchres_and_qresync() {
    let fx = Fixture::new();
    let server = fx.start().await;
    let mut c = server.login("alice", ALICE_PASSWORD).await;

    // CREATE (with a parent), SUBSCRIBE, LSUB, LIST (SUBSCRIBED), RENAME, DELETE.
    c.ok("CREATE Projects/2026").await;
    assert!(fx.folder_dir("alice", "Projects/2026").join("cur").is_dir());
    c.fails("CREATE Projects/2026", "NO [ALREADYEXISTS]").await;
    c.ok("SUBSCRIBE Projects/2026").await;
    let lsub = c.ok("LSUB \"\" \"Projects/*\"").await;
    assert!(has(&lsub, "* LSUB () \"/\" Projects/2026"), "{lsub:#?}");
    let subscribed = c.ok("LIST (SUBSCRIBED) \"\" \"*\"").await;
    assert!(
        subscribed
            .iter()
            .any(|l| l.contains("\\Subscribed") && l.ends_with(" Projects/2026")),
        "{subscribed:#?}"
    );
    let children = c.ok("LIST \"\" \"Projects/%\" RETURN (CHILDREN)").await;
    assert!(has(&children, "Projects/2026"), "{children:#?}");
    c.ok("RENAME Projects/2026 Projects/Done").await;
    assert!(fx.folder_dir("alice", "Projects/Done").is_dir());
    c.ok("DELETE Projects/Done").await;
    c.fails("SELECT Projects/Done", "NO").await;
    c.fails("DELETE INBOX", "NO").await;
    let delimiter = c.ok("LIST \"\" \"\"").await;
    assert!(
        has(&delimiter, "* LIST (\\Noselect) \"/\" \"\""),
        "{delimiter:#?}"
    );

    // SEARCHRES: SAVE, then use `$`.
    c.ok("SELECT INBOX").await;
    let saved = c.ok("SEARCH RETURN (SAVE) SUBJECT \"Dots\"").await;
    assert!(!has(&saved, "ESEARCH"), "{saved:?}");
    let fetched = c.ok("FETCH $ (FLAGS)").await;
    assert_eq!(
        fetched
            .iter()
            .filter(|l| l.starts_with("* ") && l.contains(" FETCH "))
            .count(),
        1,
        "{fetched:?}"
    );

    // UID EXPUNGE removes only the named \Deleted messages.
    c.ok("STORE 1:2 +FLAGS.SILENT (\\Deleted)").await;
    let uid1 = search(&c.ok("UID SEARCH 1").await)[0];
    let expunged = c.ok(&format!("UID EXPUNGE {uid1}")).await;
    assert!(has(&expunged, "* 1 EXPUNGE"), "{expunged:?}");
    assert_eq!(
        fx.files("alice", "").len(),
        demo::sample_messages("alice").len() - 1
    );
    c.ok("LOGOUT").await;

    // QRESYNC: the second session learns of the expunge as VANISHED (EARLIER).
    let mut q = server.login("alice", ALICE_PASSWORD).await;
    q.ok("ENABLE QRESYNC").await;
    let first = q.ok("SELECT INBOX").await;
    let line = first
        .iter()
        .find(|l| l.contains("[UIDVALIDITY "))
        .unwrap()
        .clone();
    let validity: u32 = line
        .split("[UIDVALIDITY ")
        .nth(1)
        .unwrap()
        .split(']')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let modseq_line = first
        .iter()
        .find(|l| l.contains("[HIGHESTMODSEQ "))
        .unwrap_or_else(|| panic!("{first:#?}"))
        .clone();
    let modseq: u64 = modseq_line
        .split("[HIGHESTMODSEQ ")
        .nth(1)
        .unwrap()
        .split(']')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // Another session expunges one more message.
    let mut other = server.login("alice", ALICE_PASSWORD).await;
    other.ok("SELECT INBOX").await;
    other.ok("EXPUNGE").await;
    other.ok("LOGOUT").await;
    q.ok("UNSELECT").await;
    let resync = q
        .ok(&format!("SELECT INBOX (QRESYNC ({validity} {modseq}))"))
        .await;
    assert!(has(&resync, "* VANISHED (EARLIER) "), "{resync:#?}");
    let changed = q
        .ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
        .await;
    assert!(has(&changed, "* VANISHED (EARLIER) "), "{changed:#?}");
    q.ok("LOGOUT").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticate_ntlm_with_sasl_ir() {
    use base64::Engine as _;
    use cas_auth::ntlm::{FileTime, NtlmCredentials, NtlmInitiator};
    let b64 = base64::engine::general_purpose::STANDARD;
    let fx = Fixture::new();
    let server = fx.start().await;
    for (password, good) in [(BOB_PASSWORD, true), ("not the password", false)] {
        let mut c = server.tls().await;
        let caps = capabilities(std::slice::from_ref(&c.greeting));
        assert!(caps.iter().any(|c| c == "AUTH=NTLM"), "{caps:?}");
        let mut initiator =
            NtlmInitiator::new(NtlmCredentials::from_password("bob", "CAS", password));
        let negotiate = initiator.negotiate().unwrap();
        c.send_raw(format!("n1 AUTHENTICATE NTLM {}\r\n", b64.encode(negotiate)).as_bytes())
            .await;
        let challenge_line = c.line().await;
        let challenge = b64
            .decode(challenge_line.strip_prefix("+ ").expect("a challenge"))
            .unwrap();
        let done = initiator
            .handle_challenge(
                &challenge,
                [7; 8],
                [9; 16],
                FileTime::from(std::time::SystemTime::now()),
            )
            .unwrap();
        c.send_raw(format!("{}\r\n", b64.encode(done.authenticate)).as_bytes())
            .await;
        let reply = c.until_tag("n1").await;
        if good {
            assert!(reply.last().unwrap().starts_with("OK"), "{reply:?}");
            c.ok("SELECT INBOX").await;
        } else {
            assert!(
                reply
                    .last()
                    .unwrap()
                    .starts_with("NO [AUTHENTICATIONFAILED]"),
                "{reply:?}"
            );
        }
    }
    server.stop().await;
}

/// The literal of the one FETCH data item `name` in `line` (`* n FETCH (... NAME {k}\r\n...`).
fn fetch_literal(line: &str, name: &str) -> String {
    let at = line
        .find(&format!("{name} {{"))
        .unwrap_or_else(|| panic!("no {name} literal in {line}"));
    let rest = &line[at + name.len() + 2..];
    let close = rest.find('}').unwrap();
    let size: usize = rest[..close].parse().unwrap();
    let data = &rest[close + 3..];
    assert!(data.len() >= size, "short literal in {line}");
    data[..size].to_owned()
}

/// The number after `name ` in a FETCH line.
fn fetch_number(line: &str, name: &str) -> u64 {
    let at = line
        .find(&format!("{name} "))
        .unwrap_or_else(|| panic!("no {name} in {line}"));
    line[at + name.len() + 1..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// `UID FETCH uid (RFC822.SIZE BODYSTRUCTURE BODY.PEEK[])`: (size, structure line, body).
async fn fetch_served(c: &mut Client, uid: u32) -> (u64, String, String) {
    let lines = c
        .ok(&format!(
            "UID FETCH {uid} (RFC822.SIZE BODYSTRUCTURE BODY.PEEK[])"
        ))
        .await;
    let line = lines.iter().find(|l| l.contains(" FETCH (")).unwrap();
    let size = fetch_number(line, "RFC822.SIZE");
    let body = fetch_literal(line, "BODY[]");
    let structure =
        line[line.find("BODYSTRUCTURE").unwrap()..line.find("BODY[]").unwrap()].to_owned();
    (size, structure, body)
}

/// ImapSettings MessageRetrievalMimeFormat: FETCH serves the converted message (its size,
/// structure and bytes agree), the format is fixed when the mailbox is selected (a reload
/// applies at the next SELECT), SEARCH looks at what the client sees, the Maildir is never
/// changed and APPEND stores what the client sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mime_format_applies_per_selection() {
    let fx = Fixture::with(
        "[ImapSettings]\nMessageRetrievalMimeFormat = \"TextOnly\"\n",
        Imap4Settings::default(),
    );
    let stored_before = fx.contents("alice", "");
    let server = fx.start().await;
    let mut c = server.login("alice", ALICE_PASSWORD).await;
    c.ok("SELECT INBOX").await;
    let found = c.ok("UID SEARCH SUBJECT \"Agenda and budget\"").await;
    let uid = search(&found)[0];

    let (size, structure, body) = fetch_served(&mut c, uid).await;
    assert_eq!(size as usize, body.len(), "{body}");
    assert!(structure.contains("(\"TEXT\" \"PLAIN\""), "{structure}");
    assert!(!structure.contains("\"HTML\""), "{structure}");
    assert!(structure.contains("\"CSV\""), "{structure}");
    assert!(!body.contains("text/html") && body.contains("Subject: Agenda and budget"));
    // SEARCH sees the converted text: the HTML markup is gone.
    assert!(search(&c.ok("UID SEARCH BODY \"<h1>\"").await).is_empty());
    assert_eq!(
        search(&c.ok("UID SEARCH BODY \"Server move\"").await),
        [uid]
    );
    let larger = c
        .ok(&format!("UID SEARCH UID {uid} LARGER {}", size - 1))
        .await;
    assert_eq!(search(&larger), [uid]);
    assert!(search(&c.ok(&format!("UID SEARCH UID {uid} LARGER {size}")).await).is_empty());
    // Parts as BODY[n] sends them agree with the structure; BODY[1] is the plain text.
    let lines = c
        .ok(&format!("UID FETCH {uid} (BODY.PEEK[1] BINARY.SIZE[1])"))
        .await;
    let line = lines.iter().find(|l| l.contains(" FETCH (")).unwrap();
    assert!(
        fetch_literal(line, "BODY[1]").contains("Server move"),
        "{line}"
    );

    // A reload to HtmlOnly: this selection keeps TextOnly.
    fs::write(
        fx.data.dir.join("policy.toml"),
        "[ImapSettings]\nMessageRetrievalMimeFormat = \"HtmlOnly\"\n",
    )
    .unwrap();
    fx.access.live_policy().reload(true);
    assert_eq!(
        fetch_served(&mut c, uid).await,
        (size, structure.clone(), body.clone())
    );
    // The next SELECT takes the new format.
    c.ok("SELECT INBOX").await;
    let (html_size, html_structure, html_body) = fetch_served(&mut c, uid).await;
    assert_eq!(html_size as usize, html_body.len());
    assert!(html_structure.contains("\"HTML\""), "{html_structure}");
    assert!(!html_structure.contains("\"PLAIN\""), "{html_structure}");
    assert_eq!(search(&c.ok("UID SEARCH BODY \"<h1>\"").await), [uid]);

    // Back to BestBodyFormat: the stored bytes (CRLF).
    fs::write(fx.data.dir.join("policy.toml"), "").unwrap();
    fx.access.live_policy().reload(true);
    c.ok("EXAMINE INBOX").await;
    let (stored_size, _, stored_body) = fetch_served(&mut c, uid).await;
    let original = demo::sample_messages("alice")[1].clone();
    let original = String::from_utf8(original).unwrap().replace('\n', "\r\n");
    assert_eq!(stored_body, original);
    assert_eq!(stored_size as usize, original.len());

    // APPEND under a converting format stores what the client sent.
    fs::write(
        fx.data.dir.join("policy.toml"),
        "[ImapSettings]\nMessageRetrievalMimeFormat = \"TextEnrichedOnly\"\n",
    )
    .unwrap();
    fx.access.live_policy().reload(true);
    c.ok("SELECT Drafts").await;
    let message =
        b"From: a@example.test\r\nSubject: draft\r\nContent-Type: text/html\r\n\r\n<p>Hi</p>\r\n";
    c.ok(&format!(
        "APPEND Drafts {{{}+}}\r\n{}",
        message.len(),
        String::from_utf8_lossy(message)
    ))
    .await;
    assert_eq!(fx.contents("alice", "Drafts"), vec![message.to_vec()]);
    let lines = c.ok("FETCH 1 (BODYSTRUCTURE)").await;
    assert!(has(&lines, "\"ENRICHED\""), "{lines:?}");
    c.ok("LOGOUT").await;
    server.stop().await;
    // The Maildir holds the messages as stored.
    let mut after = fx.contents("alice", "");
    let mut before = stored_before;
    after.sort();
    before.sort();
    assert_eq!(after, before);
}
