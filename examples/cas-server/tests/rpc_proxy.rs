//! The Outlook Anywhere RPC proxy end to end: impacket 0.13.1 (`ncacn_http` with
//! `RpcProxy`) through cas-server's HTTPS endpoint to an `ncacn_http/1.0` RPC server.
//!
//! The RPC server here is a small scripted one in this file ([`TestBackend`]): it greets,
//! answers CONN/A2 and CONN/B2 with CONN/C1 and CONN/B3, accepts every bind, echoes request
//! stubs, acknowledges IN traffic with FlowControlAck, and can be told to die (opnum 7) or
//! hang (opnum 8) mid-call. It counts the TCP connections it accepted and holds open, so the
//! tests can prove that a refused target was never connected to and that nothing leaks.
//!
//! The impacket client is `tests/rpc_proxy/oa_client.py` (run with `$CAS_PYTHON`).
//! Refusals and fault tolerance are covered here; HTTP authentication details (NTLM,
//! Negotiate, Basic, Extended Protection with another certificate's bindings) are covered on
//! the same endpoint by `interop_ntlm.rs`.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rpch_framing::codec::split_pdu;
use rpch_framing::pdu::{
    BindAck, ContextResult, Limits, PacketType, Pdu, PduHeader, Response, SyntaxId,
};
use rpch_framing::rts::{Cookie, FlowControlAck, RtsCommand, RtsPdu, RtsPduKind};

use common::{Server, client_available, python, run};

/// The virtual connections the backend is setting up or serving, by cookie.
#[derive(Default)]
struct Pending {
    /// OUT connection (to write responses and CONN/C1 on).
    out: Option<TcpStream>,
    /// IN connection (to write CONN/B3 and acks on).
    input: Option<TcpStream>,
    opened: bool,
}

/// A scripted `ncacn_http/1.0` RPC server on a loopback port.
struct TestBackend {
    addr: SocketAddr,
    /// TCP connections accepted so far.
    accepted: Arc<AtomicUsize>,
    /// TCP connections still open on the backend side.
    open: Arc<AtomicUsize>,
    /// Request PDUs answered.
    calls: Arc<AtomicUsize>,
}

impl TestBackend {
    fn start() -> TestBackend {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let calls = Arc::new(AtomicUsize::new(0));
        let vcs: Arc<Mutex<HashMap<Cookie, Pending>>> = Arc::default();
        let (a, o, c) = (accepted.clone(), open.clone(), calls.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                a.fetch_add(1, Ordering::SeqCst);
                o.fetch_add(1, Ordering::SeqCst);
                let (o, c, vcs) = (o.clone(), c.clone(), vcs.clone());
                thread::spawn(move || {
                    serve_backend(stream, &vcs, &c);
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        TestBackend {
            addr,
            accepted,
            open,
            calls,
        }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }
}

/// Sends CONN/B3 and CONN/C1 once both channels of `vc` arrived.
fn try_open(vcs: &Mutex<HashMap<Cookie, Pending>>, vc: Cookie) {
    let mut vcs = vcs.lock().unwrap();
    let p = vcs.entry(vc).or_default();
    if p.opened {
        return;
    }
    if let (Some(out), Some(input)) = (&p.out, &p.input) {
        let _ = (&*input).write_all(&RtsPdu::conn_b3(65_536, 1).to_bytes());
        let _ = (&*out).write_all(&RtsPdu::conn_c1(1, 65_536, 120_000).to_bytes());
        p.opened = true;
    }
}

fn serve_backend(
    mut stream: TcpStream,
    vcs: &Mutex<HashMap<Cookie, Pending>>,
    calls: &AtomicUsize,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(120)));
    if stream.write_all(b"ncacn_http/1.0").is_err() {
        return;
    }
    let limits = Limits::default();
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 16 * 1024];
    // (virtual connection, IN channel cookie) once CONN/A2 or CONN/B2 told us.
    let mut role: Option<(Cookie, Option<Cookie>)> = None;
    let mut received: u32 = 0;
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        while let Ok(Some(raw)) = split_pdu(&mut buf, &limits) {
            if let Some(rts) = raw.rts() {
                let Ok(rts) = rts else { return };
                let cookies = rts.cookies();
                match rts.kind() {
                    Some(RtsPduKind::ConnA2) => {
                        let vc = cookies[0];
                        vcs.lock().unwrap().entry(vc).or_default().out =
                            Some(stream.try_clone().unwrap());
                        role = Some((vc, None));
                        try_open(vcs, vc);
                    }
                    Some(RtsPduKind::ConnB2) => {
                        let vc = cookies[0];
                        vcs.lock().unwrap().entry(vc).or_default().input =
                            Some(stream.try_clone().unwrap());
                        role = Some((vc, Some(cookies[1])));
                        try_open(vcs, vc);
                    }
                    _ if rts
                        .commands
                        .iter()
                        .any(|c| matches!(c, RtsCommand::Destination(_))) =>
                    {
                        // The client's FlowControlAckWithDestination for the outbound proxy
                        // travels IN channel → server → OUT channel (MS-RPCH §3.2.5.5.3).
                        if let Some((vc, _)) = role {
                            let out = vcs
                                .lock()
                                .unwrap()
                                .get(&vc)
                                .and_then(|p| p.out.as_ref().map(|s| s.try_clone().unwrap()));
                            if let Some(mut out) = out {
                                let _ = out.write_all(&raw.bytes);
                            }
                        }
                    }
                    _ => {}
                }
                continue;
            }
            // An RPC PDU on the IN channel.
            let Some((vc, Some(in_cookie))) = role else {
                return;
            };
            received = received.wrapping_add(raw.bytes.len() as u32);
            let out = vcs
                .lock()
                .unwrap()
                .get(&vc)
                .and_then(|p| p.out.as_ref().map(|s| s.try_clone().unwrap()));
            let Some(mut out) = out else { return };
            match answer(&raw.header, &raw.bytes, &limits) {
                Answer::Reply(bytes) => {
                    calls.fetch_add(1, Ordering::SeqCst);
                    if out.write_all(&bytes).is_err() {
                        return;
                    }
                }
                Answer::Die => {
                    // Gone mid-call, both connections at once.
                    let _ = out.shutdown(Shutdown::Both);
                    let _ = stream.shutdown(Shutdown::Both);
                    return;
                }
                Answer::Hang => {}
            }
            // Acknowledge the IN traffic at once: the window never fills.
            let ack = RtsPdu::flow_control_ack(FlowControlAck {
                bytes_received: received,
                available_window: 65_536,
                channel_cookie: in_cookie,
            });
            if stream.write_all(&ack.to_bytes()).is_err() {
                return;
            }
        }
    }
    // A real RPC server tears the virtual connection down when either channel goes.
    if let Some((vc, _)) = role
        && let Some(p) = vcs.lock().unwrap().remove(&vc)
    {
        for s in [p.out, p.input].into_iter().flatten() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

enum Answer {
    Reply(BytesMut),
    Die,
    Hang,
}

fn answer(header: &PduHeader, bytes: &Bytes, limits: &Limits) -> Answer {
    let decoded = Pdu::decode_with_header(bytes, limits).expect("a valid PDU");
    let mut out = BytesMut::new();
    match decoded.pdu {
        Pdu::Bind(bind) | Pdu::AlterContext(bind) => {
            let ack = BindAck {
                max_xmit_frag: bind.max_xmit_frag,
                max_recv_frag: bind.max_recv_frag,
                assoc_group_id: 0x1234,
                secondary_address: Bytes::from_static(b"6001\0"),
                results: bind
                    .contexts
                    .iter()
                    .map(|c| ContextResult::accept(c.transfer_syntaxes[0]))
                    .collect(),
                auth: None,
            };
            let (pdu, ptype) = if header.packet_type == PacketType::Bind {
                (Pdu::BindAck(ack), PacketType::BindAck)
            } else {
                (Pdu::AlterContextResp(ack), PacketType::AlterContextResp)
            };
            pdu.encode(&PduHeader::new(ptype, header.call_id), &mut out)
                .unwrap();
        }
        Pdu::Request(req) => match req.opnum {
            7 => return Answer::Die,
            8 => return Answer::Hang,
            _ => {
                let resp = Response {
                    alloc_hint: req.stub_data.len() as u32,
                    context_id: req.context_id,
                    cancel_count: 0,
                    reserved: 0,
                    stub_data: req.stub_data,
                    auth: None,
                };
                Pdu::Response(resp)
                    .encode(
                        &PduHeader::new(PacketType::Response, header.call_id),
                        &mut out,
                    )
                    .unwrap();
            }
        },
        other => panic!("test backend got an unexpected PDU: {other:?}"),
    }
    let _ = SyntaxId::NDR;
    Answer::Reply(out)
}

fn client_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("rpc_proxy")
        .join("oa_client.py")
}

/// Runs the impacket client.
#[allow(clippy::too_many_arguments)]
fn oa_client(
    url: &str,
    target: (&str, u16),
    user: &str,
    password: &str,
    auth: &str,
    mode: &str,
    args: &[&str],
) -> Output {
    run(Command::new(python())
        .arg(client_script())
        .args([
            mode,
            url,
            target.0,
            &target.1.to_string(),
            user,
            password,
            auth,
        ])
        .args(args))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn impacket_available(test: &str) -> bool {
    client_available(
        test,
        &python(),
        &[
            "-c",
            "import impacket.dcerpc.v5.rpch, impacket.dcerpc.v5.mgmt",
        ],
    )
}

/// The server with its ValidPorts limited to the backend at `port` (by IP and by name).
fn start_server(port: u16) -> Server {
    let server = Server::start_outlook_anywhere(None);
    let ports = format!("127.0.0.1:{port},localhost:{port}");
    server.admin_ok(&["set-outlookanywhere", "--valid-ports", &ports]);
    server.reload();
    server
}

fn request_log(server: &Server) -> String {
    std::fs::read_to_string(
        server
            .data_dir()
            .join("logs")
            .join("rpchttp")
            .join("rpchttp.log"),
    )
    .unwrap_or_default()
}

fn assert_ok(out: &Output, server: &Server) {
    assert!(
        out.status.success(),
        "client failed\nstdout: {}\nstderr: {}\nserver log:\n{}",
        stdout(out),
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
}

#[test]
fn impacket_ntlm_and_basic_calls_through_the_proxy() {
    if !impacket_available("rpc_proxy_calls") {
        return;
    }
    let backend = TestBackend::start();
    let server = start_server(backend.port());
    let url = server.rpc_proxy_url();
    let alice = server.password("alice");
    let target = ("127.0.0.1", backend.port());

    // HTTP-level NTLM on both channels; 160 calls of 4000 bytes: 640 kB each way, ten
    // times the 64 KiB receive windows, so flow control has to work in both directions.
    let out = oa_client(
        &url,
        target,
        "alice",
        &alice,
        "ntlm",
        "calls",
        &["160", "4000"],
    );
    assert_ok(&out, &server);
    assert!(stdout(&out).contains("ok 640000"), "{}", stdout(&out));
    // HTTP Basic (over TLS), by the name in ValidPorts.
    let out = oa_client(
        &url,
        ("localhost", backend.port()),
        "alice",
        &alice,
        "basic",
        "calls",
        &["20", "1000"],
    );
    assert_ok(&out, &server);
    assert!(backend.calls.load(Ordering::SeqCst) >= 182);

    let log = request_log(&server);
    let target = format!("target=127.0.0.1:{}", backend.port());
    for channel in ["IN", "OUT"] {
        let line = log
            .lines()
            .find(|l| l.contains(&format!("user=alice channel={channel} {target}")))
            .unwrap_or_else(|| panic!("no {channel} channel line in\n{log}"));
        assert!(line.contains("backend_sent="), "{line}");
    }
    assert!(
        log.contains("RPC_OUT_DATA /rpc/rpcproxy.dll user=alice channel=OUT"),
        "{log}"
    );
    assert!(!log.contains(&alice), "a password reached the request log");
    // (The server log also holds the demo's start-up banner, which lists the passwords.)
    assert!(
        !server
            .log()
            .lines()
            .any(|l| l.contains("rpc_proxy") && l.contains(&alice)),
        "a password reached the server log"
    );
    assert!(!log.contains("TlRMTVNTUA"), "an NTLM token was logged");
}

#[test]
fn impacket_mgmt_through_the_proxy_to_the_builtin_backend() {
    if !impacket_available("rpc_proxy_mgmt") {
        return;
    }
    // The demo's ValidPorts name this machine on 6001-6004 and 593; the test's built-in
    // backend listens on a free port, which replaces them.
    let server = Server::start_outlook_anywhere(None);
    let port = server.rpc_backend_port;
    let ports = format!("localhost:{port},127.0.0.1:{port}");
    server.admin_ok(&["set-outlookanywhere", "--valid-ports", &ports]);
    server.reload();
    let alice = server.password("alice");
    let url = server.rpc_proxy_url();
    for auth in ["ntlm", "basic"] {
        let out = oa_client(
            &url,
            ("localhost", port),
            "alice",
            &alice,
            auth,
            "mgmt",
            &[],
        );
        assert_ok(&out, &server);
        // inq_if_ids lists at least the management interface itself.
        assert!(stdout(&out).contains("if_id"), "{auth}: {}", stdout(&out));
    }
    // RPC-level NTLM inside the NTLM-authenticated tunnel: signed, then sealed PDUs, and
    // enough calls that the answers (~100 bytes each) exceed the 64 KiB receive window.
    for level in ["integrity", "privacy"] {
        let out = oa_client(
            &url,
            ("localhost", port),
            "alice",
            &alice,
            "ntlm",
            "mgmt",
            &[level, "1000"],
        );
        assert_ok(&out, &server);
        let text = stdout(&out);
        let received: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("received "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("{level}: no byte count in {text}"));
        assert!(
            received > 65_536,
            "{level}: only {received} bytes came back"
        );
    }
    // The backend logged RPC-level NTLM (auth type 10) at both levels (5 integrity, 6 privacy).
    let log = server.plain_log();
    for level in ["level=5", "level=6"] {
        assert!(
            log.lines()
                .any(|l| l.contains("RPC-level authentication succeeded")
                    && l.contains("alice")
                    && l.contains("auth_type=10")
                    && l.contains(level)),
            "{level} not in the backend's log:\n{log}"
        );
    }
}

#[test]
fn refusals_before_any_backend_connection() {
    if !impacket_available("rpc_proxy_refusals") {
        return;
    }
    let backend = TestBackend::start();
    // A second RPC server that is not in ValidPorts: nobody may reach it.
    let forbidden = TestBackend::start();
    let server = start_server(backend.port());
    let url = server.rpc_proxy_url();
    let alice = server.password("alice");
    let bob = server.password("bob");

    // A target outside the allow list: 403, and no connection to it was even attempted.
    for (host, port) in [
        ("127.0.0.1", forbidden.port()),
        ("localhost", forbidden.port()),
        ("evil.example", backend.port()),
    ] {
        let out = oa_client(&url, (host, port), "alice", &alice, "ntlm", "refused", &[]);
        assert_ok(&out, &server);
        assert!(stdout(&out).contains("403"), "{}", stdout(&out));
    }
    assert_eq!(forbidden.accepted.load(Ordering::SeqCst), 0);
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 0);
    assert!(
        request_log(&server).contains("target refused"),
        "{}",
        request_log(&server)
    );

    // A wrong password: 401, NTLM and Basic.
    let target = ("127.0.0.1", backend.port());
    for auth in ["ntlm", "basic"] {
        let out = oa_client(
            &url,
            target,
            "alice",
            "wrong-password",
            auth,
            "refused",
            &[],
        );
        assert_ok(&out, &server);
        assert!(stdout(&out).contains("401"), "{auth}: {}", stdout(&out));
    }

    // A user blocked by policy (MAPIBlockOutlookRpcHttp): authenticated, then 403, and the
    // log says why.
    server.admin_ok(&[
        "set-casmailbox",
        "bob",
        "--mapi-block-outlook-rpc-http",
        "true",
    ]);
    server.reload();
    let out = oa_client(&url, target, "bob", &bob, "ntlm", "refused", &[]);
    assert_ok(&out, &server);
    assert!(stdout(&out).contains("403"), "{}", stdout(&out));
    let log = request_log(&server);
    assert!(
        log.lines()
            .any(|l| l.contains("user=bob") && l.contains("refused by policy")),
        "{log}"
    );
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 0);

    // Basic over plain HTTP without SSL offloading: refused (403) before any credential
    // is looked at.
    server.admin_ok(&["set-outlookanywhere", "--ssl-offloading", "false"]);
    server.reload();
    let http = format!("http://localhost:{}/rpc/rpcproxy.dll", server.http_port);
    let out = oa_client(&http, target, "alice", &alice, "basic", "refused", &[]);
    assert_ok(&out, &server);
    assert!(stdout(&out).contains("403"), "{}", stdout(&out));

    // Outlook Anywhere disabled: the proxy path is not there (404).
    server.admin_ok(&["disable-outlookanywhere"]);
    server.reload();
    let out = oa_client(&url, target, "alice", &alice, "ntlm", "refused", &[]);
    assert_ok(&out, &server);
    assert!(stdout(&out).contains("404"), "{}", stdout(&out));
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 0);
}

/// Waits until `done` holds, up to `limit`.
fn eventually(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// An in-process server (so the test can read its resource gauges) over a data directory
/// made like the binary's, with ValidPorts limited to `port`.
struct InProcess {
    runtime: tokio::runtime::Runtime,
    stats: Arc<cas_server::rpc_proxy::ProxyStats>,
    https: SocketAddr,
    shutdown: tokio_util::sync::CancellationToken,
    _dir: tempfile::TempDir,
    data: PathBuf,
}

impl InProcess {
    fn start(port: u16) -> InProcess {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let cli = cas_server::config::Cli {
            data_dir: Some(data.clone()),
            pop3_listen: Some(any),
            pop3s_listen: Some(any),
            https_listen: Some(any),
            rpc_backend_listen: vec![any],
            imap_listen: Some(any),
            imaps_listen: Some(any),
            ..Default::default()
        };
        let settings = cas_server::prepare(&cli).unwrap();
        let policy = data.join("policy.toml");
        let text = std::fs::read_to_string(&policy).unwrap();
        let text: String = text
            .lines()
            .map(|l| {
                if l.starts_with("ValidPorts") {
                    format!("ValidPorts = [\"127.0.0.1:{port}\"]\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(&policy, text).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = runtime
            .block_on(cas_server::Server::bind(&settings))
            .unwrap();
        let stats = server.rpc_proxy_stats().unwrap();
        let https = server.https_addr().unwrap();
        let shutdown = tokio_util::sync::CancellationToken::new();
        runtime.spawn(server.run(shutdown.clone()));
        InProcess {
            runtime,
            stats,
            https,
            shutdown,
            _dir: dir,
            data,
        }
    }

    fn url(&self) -> String {
        format!("https://localhost:{}/rpc/rpcproxy.dll", self.https.port())
    }

    fn password(&self, user: &str) -> String {
        cas_server::demo::read_credentials(&self.data)
            .into_iter()
            .find(|(u, _)| u == user)
            .unwrap()
            .1
    }

    /// No HTTP connection, channel task or backend socket left, on either side.
    fn assert_no_leaks(&self, backend: &TestBackend) {
        eventually(
            Duration::from_secs(15),
            "channels and sockets to close",
            || self.stats.snapshot() == (0, 0, 0) && backend.open.load(Ordering::SeqCst) == 0,
        );
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let _ = &self.runtime;
    }
}

#[test]
fn fault_tolerance_without_leaks() {
    if !impacket_available("rpc_proxy_faults") {
        return;
    }
    let backend = TestBackend::start();
    let server = InProcess::start(backend.port());
    let alice = server.password("alice");
    let target = ("127.0.0.1", backend.port());

    // A healthy virtual connection first, and everything is released after it.
    let out = oa_client(
        &server.url(),
        target,
        "alice",
        &alice,
        "ntlm",
        "calls",
        &["5", "100"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.assert_no_leaks(&backend);

    // The client kills its OUT channel in the middle of a call: the IN channel is closed by
    // the proxy well within the timeout, and nothing stays behind.
    let started = Instant::now();
    let out = oa_client(
        &server.url(),
        target,
        "alice",
        &alice,
        "ntlm",
        "kill-out",
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout(&out).contains("in-closed"), "{}", stdout(&out));
    assert!(started.elapsed() < Duration::from_secs(60));
    server.assert_no_leaks(&backend);

    // The backend dies mid-call: the client's call fails promptly, both channels close.
    let out = oa_client(
        &server.url(),
        target,
        "alice",
        &alice,
        "ntlm",
        "backend-dies",
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout(&out).contains("failed"), "{}", stdout(&out));
    server.assert_no_leaks(&backend);
    assert!(backend.accepted.load(Ordering::SeqCst) >= 6);
}
