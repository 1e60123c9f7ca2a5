//! Invariant checks shared by the proptests and the cargo-fuzz targets. Not a stable API.
//!
//! Every function panics when an invariant is broken and returns normally otherwise.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::command::Command;
use crate::error::SendErrorKind;
use crate::response::{Capability, Expire, Response, Uid};
use crate::server::{
    CommandId, Event, Limits, MAX_TRACE_LINE, MaildropEntry, Reply, Request, ServerConfig,
    ServerSession, SessionOptions, State,
};
use crate::stuffing::crlf_size;

/// Parses `data` as a command line; if it parses, encoding and re-parsing must give the same
/// command and the encoding must be canonical. Also checks the response-line and capability
/// round trips on the same bytes ([`response_roundtrip`]).
pub fn command_roundtrip(data: &[u8]) {
    if let Ok(cmd) = Command::parse(data) {
        let encoded = cmd.to_bytes();
        let Some(line) = encoded.strip_suffix(b"\r\n") else {
            panic!("encoding lacks CRLF: {encoded:?}");
        };
        assert!(
            !line.contains(&b'\n') && !line.contains(&b'\r'),
            "{encoded:?}"
        );
        match Command::parse(line) {
            Ok(again) => {
                assert_eq!(again, cmd, "re-parse of {encoded:?}");
                assert_eq!(again.to_bytes(), encoded, "encoding not canonical");
            }
            Err(e) => panic!("re-parse of {encoded:?} failed: {e}"),
        }
    }
    response_roundtrip(data);
}

/// If `data` (free of CR, LF and NUL) parses as a response line or a capability line, its
/// encoding parses back to the same value.
pub fn response_roundtrip(data: &[u8]) {
    if data.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return;
    }
    if let Ok(r) = Response::parse(data) {
        let mut enc = Vec::new();
        r.encode(&mut enc);
        let line = enc.strip_suffix(b"\r\n").unwrap_or(&enc);
        assert_eq!(Response::parse(line).as_ref(), Ok(&r), "{enc:?}");
    }
    if data.iter().all(|&b| b >= 0x20 && b != 0x7f)
        && let Ok(c) = Capability::parse(data)
    {
        let mut enc = Vec::new();
        c.encode(&mut enc);
        let line = enc.strip_suffix(b"\r\n").unwrap_or(&enc);
        // Multi-line bodies are dot-stuffed; undo that as a client would.
        let line = match line {
            [b'.', b'.', ..] => line.get(1..).unwrap_or_default(),
            _ => line,
        };
        assert_eq!(Capability::parse(line).as_ref(), Ok(&c), "{enc:?}");
    }
}

/// The sample maildrop the auto-answering application serves.
pub const MESSAGES: [&[u8]; 3] = [
    b"Subject: one\r\nFrom: a@example.org\r\n\r\nHello\r\n.dot line\r\nbye\r\n",
    b"Subject: two\n\n.\nbare LF body\n..two dots\nno final newline",
    b"Subject: three\r\n\r\n",
];

/// An application that answers every request the same way, for transcripts and invariants:
/// password `bad` (or SASL data `bad`) is rejected, user `busy` gets `[IN-USE]`, everything
/// else logs in to [`MESSAGES`]; message data goes out in `piece`-byte chunks as fast as
/// `wants_message_data` allows; commits succeed.
#[derive(Debug)]
pub struct AutoApp {
    /// The session under test.
    pub session: ServerSession,
    /// The virtual clock.
    pub now: Instant,
    /// Everything transmitted so far.
    pub output: Vec<u8>,
    /// `Debug` renderings of every event, in order.
    pub events: Vec<String>,
    /// Complete a requested TLS handshake once the `+OK` has been sent.
    pub complete_tls: bool,
    /// Size of the `MessageData` chunks.
    pub piece: usize,
    streaming: Option<(CommandId, Bytes)>,
    tls_requested: bool,
    closed_events: usize,
}

impl AutoApp {
    /// A session with `config`; the virtual clock starts at an arbitrary base.
    pub fn new(config: ServerConfig, options: SessionOptions) -> Self {
        // The only clock read in the crate: std has no constant `Instant`, so the harness
        // needs one base value. All later times are base + Duration.
        let now = Instant::now();
        Self::with_clock(config, options, now)
    }

    /// A session with `config`, starting at `now`.
    pub fn with_clock(config: ServerConfig, options: SessionOptions, now: Instant) -> Self {
        Self {
            session: ServerSession::new(Arc::new(config), now, options),
            now,
            output: Vec::new(),
            events: Vec::new(),
            complete_tls: true,
            piece: 7,
            streaming: None,
            tls_requested: false,
            closed_events: 0,
        }
    }

    /// The maildrop listing for [`MESSAGES`].
    pub fn maildrop() -> Vec<MaildropEntry> {
        MESSAGES
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                Some(MaildropEntry {
                    size: crlf_size(m),
                    uid: Uid::new(format!("uid-{i}")).ok()?,
                })
            })
            .collect()
    }

    /// Feeds client bytes and runs the application until nothing moves.
    pub fn input(&mut self, data: &[u8]) {
        self.session.handle_input(self.now, data);
        self.pump();
    }

    /// Advances the virtual clock and delivers a timer expiry if one is due.
    pub fn advance(&mut self, by: Duration) {
        self.now = self.now.checked_add(by).unwrap_or(self.now);
        if self.session.poll_timeout().is_some_and(|t| t <= self.now) {
            self.session.handle_timeout(self.now);
        }
        self.pump();
    }

    /// Delivers EOF.
    pub fn eof(&mut self) {
        self.session.handle_eof(self.now);
        self.pump();
    }

    /// Drains events, answers them, streams data and drains output until idle.
    pub fn pump(&mut self) {
        loop {
            let mut progress = false;
            while let Some(ev) = self.session.poll_event() {
                progress = true;
                self.events.push(format!("{ev:?}"));
                self.on_event(ev);
            }
            if let Some((id, body)) = self.streaming.as_mut() {
                let id = *id;
                while !body.is_empty() && self.session.wants_message_data() {
                    let n = self.piece.max(1).min(body.len());
                    let chunk = body.split_to(n);
                    let last = body.is_empty();
                    let r = self.session.send(id, Reply::MessageData { chunk, last });
                    assert!(r.is_ok(), "MessageData refused: {r:?}");
                    progress = true;
                }
                if body.is_empty() {
                    self.streaming = None;
                }
            }
            let limit = self.session_transmit_limit();
            let n = self.session.poll_transmit(&mut self.output);
            assert!(n <= limit, "poll_transmit returned {n} > {limit}");
            if n > 0 {
                progress = true;
            } else if let Some((id, _)) = self.streaming {
                if !self.session.wants_message_data() && self.session.buffered_output() == 0 {
                    // TOP cutoff reached or session closed: stop streaming.
                    let _ = self.session.send(
                        id,
                        Reply::MessageData {
                            chunk: Bytes::new(),
                            last: true,
                        },
                    );
                    self.streaming = None;
                    progress = true;
                }
            } else if self.tls_requested && self.complete_tls {
                self.tls_requested = false;
                self.session.handle_tls_established(self.now);
                progress = true;
            }
            if !progress {
                break;
            }
        }
    }

    fn session_transmit_limit(&self) -> usize {
        self.session.transmit_limit()
    }

    fn reply(&mut self, id: CommandId, reply: Reply) {
        let r = self.session.send(id, reply);
        assert!(r.is_ok(), "reply refused: {r:?}");
    }

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::CommandReceived { id, command } => match command {
                Request::Login { user, password } => {
                    if user == "busy" {
                        self.reply(
                            id,
                            Reply::LoginRejected {
                                code: Some(crate::ResponseCode::InUse),
                                text: "Maildrop locked by another session".into(),
                            },
                        );
                    } else if password.expose() == b"bad" {
                        self.reply(
                            id,
                            Reply::LoginRejected {
                                code: None,
                                text: "Invalid credentials".into(),
                            },
                        );
                    } else {
                        self.reply(
                            id,
                            Reply::LoginAccepted {
                                maildrop: Self::maildrop(),
                            },
                        );
                    }
                }
                Request::Apop { .. } => self.reply(
                    id,
                    Reply::LoginRejected {
                        code: None,
                        text: "APOP failed".into(),
                    },
                ),
                Request::Authenticate {
                    initial_response, ..
                } => match initial_response {
                    Some(ir) if ir == b"bad" => self.reply(
                        id,
                        Reply::LoginRejected {
                            code: None,
                            text: "Invalid credentials".into(),
                        },
                    ),
                    Some(ir) if !ir.is_empty() => self.reply(
                        id,
                        Reply::LoginAccepted {
                            maildrop: Self::maildrop(),
                        },
                    ),
                    _ => self.reply(
                        id,
                        Reply::SaslChallenge {
                            data: b"Username:".to_vec(),
                        },
                    ),
                },
                Request::SaslResponse { data } => {
                    if data == b"bad" {
                        self.reply(
                            id,
                            Reply::LoginRejected {
                                code: None,
                                text: "Invalid credentials".into(),
                            },
                        );
                    } else if data == b"more" {
                        self.reply(
                            id,
                            Reply::SaslChallenge {
                                data: b"Password:".to_vec(),
                            },
                        );
                    } else {
                        self.reply(
                            id,
                            Reply::LoginAccepted {
                                maildrop: Self::maildrop(),
                            },
                        );
                    }
                }
                Request::Retrieve { message, .. } => {
                    let body = usize::try_from(message)
                        .ok()
                        .and_then(|m| m.checked_sub(1))
                        .and_then(|i| MESSAGES.get(i));
                    match body {
                        Some(b) => self.streaming = Some((id, Bytes::from_static(b))),
                        None => self.reply(
                            id,
                            Reply::MessageUnavailable {
                                text: "gone".into(),
                            },
                        ),
                    }
                }
                Request::Commit { .. } => self.reply(id, Reply::CommitSucceeded),
            },
            Event::CommandTraced { line } | Event::ReplyTraced { line } => {
                assert!(
                    line.chars().count() <= MAX_TRACE_LINE + 3,
                    "trace line not bounded: {line:?}"
                );
                assert!(
                    !line.chars().any(char::is_control),
                    "control character in a trace line: {line:?}"
                );
            }
            Event::TlsRequested => self.tls_requested = true,
            Event::AuthenticationCancelled { .. } => {}
            Event::Closed { .. } => {
                self.closed_events = self.closed_events.saturating_add(1);
                assert_eq!(self.closed_events, 1, "Closed reported twice");
                self.streaming = None;
            }
        }
    }
}

/// A configuration with small limits so that arbitrary input reaches them.
pub fn small_config(flags: u8) -> ServerConfig {
    ServerConfig {
        limits: Limits {
            max_command_line: 64,
            max_sasl_response: 128,
            max_bad_commands: Some(12),
            max_auth_failures: Some(3),
            pre_auth_timeout: Some(Duration::from_secs(60)),
            authenticated_timeout: Some(Duration::from_secs(600)),
            transmit_chunk: 64,
            max_buffered_input: 512,
            max_buffered_output: 256,
        },
        implementation: Some("cas-rs fuzz".into()),
        stls_available: flags & 1 != 0,
        allow_clear_text_without_tls: flags & 2 != 0,
        apop_enabled: flags & 4 != 0,
        utf8_enabled: flags & 8 != 0,
        languages: if flags & 16 != 0 {
            vec!["en".into(), "de".into()]
        } else {
            Vec::new()
        },
        login_delay: (flags & 32 != 0).then(|| Duration::from_secs(300)),
        expire: (flags & 32 != 0).then_some(Expire::Days(30)),
        trace: flags & 128 != 0,
        ..ServerConfig::default()
    }
}

/// Feeds arbitrary client bytes to a [`ServerSession`] in an arbitrary chunking derived from
/// `data`, with an auto-answering application, timer calls and EOF. Checks: no panic, input
/// and output buffers stay within their limits, `poll_transmit` respects the chunk size,
/// spurious timeouts are no-ops, `Closed` is reported exactly once and a closed session
/// ignores input.
pub fn server_session(data: &[u8]) {
    let (head, mut input) = data.split_at(data.len().min(3));
    let flags = head.first().copied().unwrap_or(0);
    let mut seed = u32::from(head.get(1).copied().unwrap_or(1)) | 1;
    let timer_mode = head.get(2).copied().unwrap_or(0);
    let config = small_config(flags);
    let limits = config.limits.clone();
    let options = SessionOptions {
        tls_active: flags & 64 != 0,
        apop_timestamp: Some("<1896.697170952@dbc.mtview.ca.us>".into()),
    };
    let mut app = AutoApp::new(config, options);
    app.piece = usize::from(flags >> 4) + 1;
    let mut step = 0u32;
    while !input.is_empty() {
        // xorshift for chunk sizes 1..=64
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let size = usize::try_from(seed % 64).unwrap_or(0) + 1;
        let (chunk, rest) = input.split_at(size.min(input.len()));
        input = rest;
        let was_closed = app.session.state() == State::Closed;
        let out_before = app.output.len();
        app.input(chunk);
        if was_closed {
            assert_eq!(
                app.output.len(),
                out_before,
                "closed session produced output"
            );
        }
        check_bounds(&app, &limits);
        step = step.wrapping_add(1);
        if timer_mode & 3 == 1 && step.is_multiple_of(5) {
            spurious_timeout_is_noop(&mut app);
            app.advance(Duration::from_secs(30));
        } else if timer_mode & 3 == 2 && step.is_multiple_of(7) {
            app.advance(Duration::from_secs(4000));
        }
        check_bounds(&app, &limits);
    }
    if timer_mode & 4 != 0 {
        app.eof();
    } else {
        app.advance(Duration::from_secs(10_000));
    }
    check_bounds(&app, &limits);
    if app.session.state() == State::Closed {
        assert!(app.session.is_closed(), "closed session kept output");
        assert_eq!(app.closed_events, 1);
    }
}

fn check_bounds(app: &AutoApp, limits: &Limits) {
    assert!(
        app.session.buffered_input() <= limits.max_buffered_input,
        "input buffer {} > {}",
        app.session.buffered_input(),
        limits.max_buffered_input
    );
    // One response may be queued on top of the high-water mark.
    let bound = limits.max_buffered_output.saturating_add(1024);
    assert!(
        app.session.buffered_output() <= bound,
        "output buffer {} > {bound}",
        app.session.buffered_output()
    );
}

/// Calls `handle_timeout` before the deadline and checks that nothing changed.
pub fn spurious_timeout_is_noop(app: &mut AutoApp) {
    let before = app.session.snapshot();
    let early = match app.session.poll_timeout() {
        Some(deadline) => deadline
            .checked_sub(Duration::from_millis(1))
            .unwrap_or(app.now),
        None => app.now,
    };
    if app.session.poll_timeout().is_some_and(|d| early >= d) {
        return;
    }
    app.session.handle_timeout(early);
    assert_eq!(
        app.session.snapshot(),
        before,
        "spurious timeout changed the session"
    );
}

// ---------------------------------------------------------------------------------------------
// Client side

/// The commands [`client_session`] issues, in order: a whole session including STLS, SASL
/// with a challenge, SASL with an initial response too long for the command line, every
/// listing and retrieval command, and QUIT.
fn client_script() -> Vec<Command<'static>> {
    use crate::command::{LangRange, Mechanism, Param, PassText};
    let mut cmds = vec![Command::Capa];
    if let Ok(name) = Param::new("mrose") {
        cmds.push(Command::Apop {
            name,
            digest: [0xc4; 16],
        });
    }
    cmds.extend([
        Command::Stat,
        Command::List(None),
        Command::Retr(1),
        Command::Uidl(None),
    ]);
    if let Ok(mechanism) = Mechanism::new("LOGIN") {
        cmds.push(Command::Auth {
            mechanism,
            initial_response: None,
        });
    }
    cmds.extend([
        Command::List(Some(1)),
        Command::Uidl(Some(1)),
        Command::Top {
            message: 1,
            lines: 0,
        },
        Command::AuthList,
        Command::Lang(None),
        Command::Stls,
        Command::Capa,
    ]);
    if let (Ok(user), Ok(pass)) = (Param::new("alice"), PassText::new(b"open sesame")) {
        cmds.extend([Command::User(user), Command::Pass(pass)]);
    }
    if let Ok(mechanism) = Mechanism::new("PLAIN") {
        cmds.push(Command::Auth {
            mechanism,
            initial_response: Some(vec![b'x'; 300]),
        });
    }
    cmds.extend([
        Command::Dele(1),
        Command::Noop,
        Command::Rset,
        Command::Utf8,
    ]);
    if let Ok(lang) = LangRange::new("en") {
        cmds.push(Command::Lang(Some(lang)));
    }
    cmds.push(Command::Quit);
    cmds
}

/// Limits of the session [`client_session`] drives: small, so arbitrary input reaches them.
const CLIENT_MAX_LINE: usize = 512;
const CLIENT_MAX_BODY: u64 = 300;

/// Tracks the requests of a [`crate::ClientSession`] and checks the event invariants.
struct ClientDriver {
    session: crate::ClientSession,
    now: Instant,
    /// Requests without a terminal event yet.
    open: Vec<crate::client::RequestId>,
    closed: bool,
    tls_due: bool,
    seed: u32,
}

impl ClientDriver {
    fn rand(&mut self) -> u32 {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 17;
        self.seed ^= self.seed << 5;
        self.seed
    }

    fn settle(&mut self, id: crate::client::RequestId) {
        let pos = self.open.iter().position(|&o| o == id);
        assert!(
            pos.is_some(),
            "terminal event for {id:?}, which is not open"
        );
        if let Some(p) = pos {
            self.open.remove(p);
        }
    }

    /// Drains events (answering challenges), then output, checking the invariants.
    fn drain(&mut self) {
        use crate::client::{ClientEvent, Reply};
        while let Some(ev) = self.session.poll_event() {
            assert!(!self.closed, "event after Closed: {ev:?}");
            match ev {
                ClientEvent::ReplyReceived { id, reply } => {
                    self.settle(id);
                    let entries = match &reply {
                        Reply::Message { body } => {
                            let len = u64::try_from(body.len()).unwrap_or(u64::MAX);
                            assert!(len <= CLIENT_MAX_BODY, "body of {len} octets delivered");
                            0
                        }
                        Reply::Listing(v) => v.len(),
                        Reply::UidListing(v) => v.len(),
                        Reply::Capabilities(v) => v.len(),
                        Reply::Languages(v) => v.len(),
                        Reply::Mechanisms(v) => v.len(),
                        _ => 0,
                    };
                    // Every entry takes at least two octets ("x\n") of the listing limit.
                    assert!(u64::try_from(entries).unwrap_or(u64::MAX) <= CLIENT_MAX_BODY / 2);
                }
                ClientEvent::ReplyFailed { id, .. } => self.settle(id),
                ClientEvent::TlsReady { id } => {
                    self.settle(id);
                    self.tls_due = true;
                    assert!(!self.session.wants_input());
                }
                ClientEvent::SaslChallengeReceived { id, .. } => {
                    assert!(self.open.contains(&id), "challenge for {id:?}, not open");
                    let now = self.now;
                    let r = if self.rand().is_multiple_of(4) {
                        self.session.sasl_cancel(now, id)
                    } else {
                        self.session.sasl_respond(now, id, b"alice")
                    };
                    // Events are drained after the whole read: the server's final reply to
                    // the AUTH, or its closing the connection, may follow the challenge in
                    // the same read. The stale answer is then refused, which is correct.
                    match r {
                        Ok(()) => {}
                        Err(ref e)
                            if matches!(
                                e.kind,
                                SendErrorKind::Closed | SendErrorKind::UnknownId
                            ) => {}
                        Err(e) => panic!("SASL answer refused: {e:?}"),
                    }
                    assert!(
                        self.session.sasl_respond(now, id, b"again").is_err(),
                        "second answer to one challenge accepted"
                    );
                }
                ClientEvent::Closed { .. } => {
                    self.closed = true;
                    assert!(
                        self.open.is_empty(),
                        "closed with open requests {:?}",
                        self.open
                    );
                }
                _ => {}
            }
        }
        let bound = CLIENT_MAX_LINE
            .saturating_add(usize::try_from(CLIENT_MAX_BODY).unwrap_or(usize::MAX))
            .max(CLIENT_MAX_LINE.saturating_mul(2));
        let held = self.session.buffered_input();
        assert!(held <= bound, "input buffer {held} > {bound}");
        let mut wire = Vec::new();
        let n = self.session.poll_transmit(&mut wire);
        assert_eq!(n, wire.len());
        assert!(n <= 4096, "poll_transmit returned {n}");
        if self.closed {
            assert!(self.session.is_closed() && !self.session.wants_input());
        }
    }
}

/// Feeds arbitrary server bytes, in a chunking derived from a hash of `data` (so the bytes
/// themselves stay a plain server transcript), to a [`crate::ClientSession`] that has queued
/// `client_script`; answers SASL challenges (or cancels them), completes TLS handshakes
/// (sometimes only after more input, to exercise injection), fires timers and ends with EOF.
///
/// Checks: no panic; input buffers stay within `max_line + max(max_message_size, max_line)`;
/// each `poll_transmit` is small; every request gets exactly one terminal event and
/// challenges arrive only for open requests; `Closed` comes once, last, and only when no
/// request is open; a closed session ignores input; spurious timeouts are no-ops; delivered
/// bodies and listings respect their limits.
pub fn client_session(data: &[u8]) {
    use crate::client::{ClientConfig, ClientLimits, ClientOptions, ClientSession, ClientState};

    let limits = ClientLimits {
        max_line: CLIENT_MAX_LINE,
        max_message_size: Some(CLIENT_MAX_BODY),
        max_listing_size: Some(CLIENT_MAX_BODY),
        reply_timeout: Some(Duration::from_secs(60)),
        pipeline_depth: 3,
    };
    // FNV-1a over the input seeds the chunking and the driver's choices.
    let seed = data.iter().fold(0x811c_9dc5_u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    }) | 1;
    // The only clock read here: std has no constant `Instant`. Later times are base + n.
    let now = Instant::now();
    let mut d = ClientDriver {
        session: ClientSession::new(
            Arc::new(ClientConfig { limits }),
            now,
            ClientOptions::default(),
        ),
        now,
        open: Vec::new(),
        closed: false,
        tls_due: false,
        seed,
    };
    for cmd in client_script() {
        match d.session.send_command(now, cmd) {
            Ok(id) => d.open.push(id),
            Err(e) => panic!("command refused before any input: {e}"),
        }
    }
    let mut input = data;
    while !input.is_empty() {
        let size = usize::try_from(d.rand() % 48)
            .unwrap_or(0)
            .saturating_add(1);
        let (chunk, rest) = input.split_at(size.min(input.len()));
        input = rest;
        let was_closed = d.session.state() == ClientState::Closed;
        d.session.handle_input(d.now, chunk);
        if was_closed {
            assert!(
                d.session.poll_event().is_none(),
                "closed session produced an event"
            );
        }
        d.drain();
        if d.tls_due && d.rand().is_multiple_of(2) {
            d.tls_due = false;
            d.session.handle_tls_established(d.now);
            d.drain();
        }
        match d.rand() % 16 {
            0 => {
                // Spurious: just before the deadline, or with none armed.
                let early = d
                    .session
                    .poll_timeout()
                    .and_then(|t| t.checked_sub(Duration::from_millis(1)))
                    .unwrap_or(d.now)
                    .max(d.now);
                if d.session.poll_timeout().is_none_or(|t| early < t) {
                    d.session.handle_timeout(early);
                    assert!(
                        d.session.poll_event().is_none(),
                        "spurious timeout had an effect"
                    );
                }
            }
            1 => {
                d.now = d.now.checked_add(Duration::from_secs(61)).unwrap_or(d.now);
                if d.session.poll_timeout().is_some_and(|t| t <= d.now) {
                    d.session.handle_timeout(d.now);
                    assert_eq!(d.session.state(), ClientState::Closed);
                    d.drain();
                }
            }
            _ => {}
        }
    }
    d.session.handle_eof(d.now);
    d.drain();
    assert!(d.closed, "EOF did not close the session");
    assert!(d.open.is_empty());
    d.session.handle_input(d.now, b"+OK late\r\n");
    d.session.handle_eof(d.now);
    assert!(d.session.poll_event().is_none(), "closed session reacted");
}
