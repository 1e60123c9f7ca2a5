//! Invariant checks for [`ClientSession`], shared by the proptests and the
//! `imap_client_session` cargo-fuzz target. Not a stable API.
//!
//! Every function panics when an invariant is broken and returns normally otherwise.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{
    ClientConfig, ClientLimits, ClientOptions, ClientSession, ClientState, CommandHandle, Event,
    MAX_TRANSMIT, SendErrorKind,
};
use crate::command::{CommandBody, FetchAttribute, FetchAttributes};
use crate::types::{AString, Atom, Flag, ListMailbox, Mailbox, SeqOrUid, SequenceSet};

/// Limits of the sessions driven here: small, so arbitrary input reaches them.
pub fn small_limits() -> ClientLimits {
    ClientLimits {
        max_line: 256,
        max_literal: 300,
        max_response: 600,
        max_literals: 4,
        max_depth: 8,
        response_timeout: Some(Duration::from_secs(60)),
    }
}

/// The commands the driven session queues, in order: a whole session with STARTTLS,
/// AUTHENTICATE (with and without an initial response), LOGIN with literals, SELECT, FETCH,
/// UID SEARCH, LIST, APPEND, IDLE and LOGOUT.
///
/// Without `starttls` the session must start on a TLS connection (credentials are sent only
/// over TLS).
pub fn script(starttls: bool) -> Vec<CommandBody<'static>> {
    let mut cmds = vec![CommandBody::Capability];
    if starttls {
        cmds.extend([CommandBody::StartTls, CommandBody::Capability]);
    }
    if let Ok(mechanism) = Atom::new("PLAIN") {
        cmds.push(CommandBody::Authenticate {
            mechanism: mechanism.clone(),
            initial_response: Some(crate::command::Base64Data::encode(b"\0alice\0pw")),
        });
        cmds.push(CommandBody::Authenticate {
            mechanism,
            initial_response: None,
        });
    }
    cmds.push(CommandBody::Login {
        username: AString::from_bytes(&b"al ice"[..]),
        password: AString::from_bytes(&b"p\"w\r\n\xff"[..]).into(),
    });
    cmds.push(CommandBody::Select {
        mailbox: Mailbox::Inbox,
        parameters: Vec::new(),
    });
    cmds.push(CommandBody::Fetch {
        uid: false,
        sequence_set: SequenceSet::range(SeqOrUid::Value(nz(1)), SeqOrUid::Asterisk).into(),
        attributes: FetchAttributes::List(vec![FetchAttribute::Flags, FetchAttribute::Uid]),
        modifiers: Vec::new(),
    });
    cmds.push(CommandBody::Search {
        uid: true,
        return_options: None,
        charset: None,
        criteria: Vec::new(),
    });
    cmds.push(CommandBody::List {
        selection: Vec::new(),
        reference: Mailbox::from_wire(&b""[..]).unwrap_or(Mailbox::Inbox),
        patterns: vec![ListMailbox::from_bytes(&b"*"[..])],
        return_options: Vec::new(),
    });
    if let Ok(data) = crate::types::Literal::new(vec![b'x'; 5000], crate::types::LiteralMode::Sync)
    {
        cmds.push(CommandBody::Append {
            mailbox: Mailbox::Inbox,
            messages: vec![crate::command::AppendMessage {
                flags: vec![Flag::Seen],
                date_time: None,
                data,
            }],
        });
    }
    cmds.extend([CommandBody::Idle, CommandBody::Noop, CommandBody::Logout]);
    cmds
}

fn nz(n: u32) -> std::num::NonZeroU32 {
    std::num::NonZeroU32::new(n).unwrap_or(std::num::NonZeroU32::MIN)
}

/// Tracks the commands of a [`ClientSession`] and checks the event invariants.
pub struct Driver {
    /// The session.
    pub session: ClientSession,
    /// The virtual clock.
    pub now: Instant,
    /// Commands without a terminal event yet.
    pub open: Vec<CommandHandle>,
    /// Commands that had their terminal event.
    pub done: Vec<CommandHandle>,
    /// `Closed` was seen.
    pub closed: bool,
    /// A TLS handshake is due.
    pub tls_due: bool,
    /// Every event, in order (for chunking comparisons).
    pub log: Vec<Event>,
    /// Every octet sent, in order.
    pub sent: Vec<u8>,
    seed: u32,
}

impl Driver {
    /// A driver over a fresh session with `limits`, its choices seeded by `seed`, on a
    /// connection already protected by TLS when `tls_active`.
    pub fn new(limits: ClientLimits, seed: u32, now: Instant, tls_active: bool) -> Self {
        let config = ClientConfig {
            limits,
            allow_cleartext_credentials: false,
        };
        Self {
            session: ClientSession::new(Arc::new(config), now, ClientOptions { tls_active }),
            now,
            open: Vec::new(),
            done: Vec::new(),
            closed: false,
            tls_due: false,
            log: Vec::new(),
            sent: Vec::new(),
            seed: seed | 1,
        }
    }

    /// Queues every command of [`script`].
    pub fn queue_script(&mut self, starttls: bool) {
        for body in script(starttls) {
            match self.session.send(self.now, body) {
                Ok(handle) => self.open.push(handle),
                Err(e) => panic!("command refused before any input: {e}"),
            }
        }
    }

    fn rand(&mut self) -> u32 {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 17;
        self.seed ^= self.seed << 5;
        self.seed
    }

    fn settle(&mut self, handle: CommandHandle) {
        assert!(
            !self.done.contains(&handle),
            "command {handle} completed twice"
        );
        let pos = self.open.iter().position(|&o| o == handle);
        assert!(
            pos.is_some(),
            "terminal event for {handle}, which is not open"
        );
        if let Some(p) = pos {
            self.open.remove(p);
        }
        self.done.push(handle);
    }

    /// Drains events (answering challenges, ending IDLE), then output, checking invariants.
    /// With `deterministic` it never answers: an answer's effect would depend on where the
    /// input was cut (the server's next bytes may arrive in the same read as its challenge).
    pub fn drain(&mut self, deterministic: bool) {
        while let Some(ev) = self.session.poll_event() {
            assert!(!self.closed, "event after Closed: {ev:?}");
            self.log.push(ev.clone());
            match ev {
                Event::Completed { handle, .. } | Event::CommandAborted { handle, .. } => {
                    self.settle(handle);
                }
                Event::TlsHandshakeRequested { handle } => {
                    assert!(self.done.contains(&handle), "TLS before completion");
                    assert!(!self.session.wants_input());
                    self.tls_due = true;
                }
                Event::SaslChallengeReceived { handle, .. } => {
                    assert!(
                        self.open.contains(&handle),
                        "challenge for {handle}, not open"
                    );
                    if deterministic {
                        continue;
                    }
                    let cancel = self.rand().is_multiple_of(4);
                    let now = self.now;
                    let r = if cancel {
                        self.session.sasl_cancel(now, handle)
                    } else {
                        self.session.sasl_respond(now, handle, b"alice")
                    };
                    // Events are drained after the whole read: the completion may already
                    // have followed the challenge, and then the answer is rightly refused.
                    match r {
                        Ok(()) => {}
                        Err(ref e)
                            if matches!(
                                e.kind,
                                SendErrorKind::Closed | SendErrorKind::UnknownHandle
                            ) => {}
                        Err(e) => panic!("SASL answer refused: {e}"),
                    }
                    assert!(
                        self.session.sasl_respond(now, handle, b"again").is_err(),
                        "second answer to one challenge accepted"
                    );
                }
                Event::IdleStarted { handle } => {
                    assert!(self.open.contains(&handle), "IDLE {handle} not open");
                    if deterministic {
                        continue;
                    }
                    let now = self.now;
                    let _ = self.session.idle_done(now, handle);
                    assert!(
                        self.session.idle_done(now, handle).is_err(),
                        "DONE accepted twice"
                    );
                }
                Event::DataReceived { handle, .. }
                | Event::StatusReceived { handle, .. }
                | Event::UnparsedResponse { handle, .. }
                | Event::ResponseDiscarded { handle, .. } => {
                    if let Some(h) = handle {
                        assert!(self.open.contains(&h), "data for {h}, not open");
                    }
                }
                Event::MailboxSelected { handle, .. } => {
                    assert!(
                        self.open.contains(&handle),
                        "selected for {handle}, not open"
                    );
                }
                Event::Closed { .. } => {
                    self.closed = true;
                    assert!(
                        self.open.is_empty(),
                        "closed with open commands {:?}",
                        self.open
                    );
                }
                _ => {}
            }
        }
        let limits = small_limits();
        let held = self.session.buffered_input();
        let bound = usize::try_from(limits.max_response)
            .unwrap_or(usize::MAX)
            .saturating_add(64);
        assert!(held <= bound, "input buffer {held} > {bound}");
        loop {
            let before = self.sent.len();
            let n = self.session.poll_transmit(&mut self.sent);
            assert_eq!(n, self.sent.len().saturating_sub(before));
            assert!(n <= MAX_TRANSMIT, "poll_transmit returned {n}");
            if n == 0 {
                break;
            }
        }
        if self.closed {
            assert!(self.session.is_closed() && !self.session.wants_input());
        }
    }

    /// Completes a due TLS handshake.
    pub fn finish_tls(&mut self) {
        if self.tls_due {
            self.tls_due = false;
            self.session.handle_tls_established(self.now);
        }
    }
}

/// FNV-1a over `data`: seeds the chunking and the driver's choices from the input itself.
pub fn seed_of(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5_u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Feeds arbitrary server bytes, in a chunking derived from a hash of `data`, to a session
/// that queued [`script`]; answers challenges (or cancels them), ends IDLE, completes TLS
/// handshakes (sometimes only after more input, to exercise injection), fires timers and
/// ends with EOF.
///
/// Checks: no panic; the input buffer stays within the response limit; each
/// `poll_transmit` is bounded; every command gets exactly one terminal event (never
/// completed twice) and data only names open commands; `Closed` comes once, last, and only
/// when no command is open; a closed session ignores input; spurious timeouts are no-ops.
pub fn client_session(data: &[u8]) {
    // The only clock read here: std has no constant `Instant`. Later times are base + n.
    let mut d = Driver::new(small_limits(), seed_of(data), Instant::now(), false);
    d.queue_script(true);
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
        d.drain(false);
        if d.tls_due && d.rand().is_multiple_of(2) {
            d.finish_tls();
            d.drain(false);
        }
        match d.rand() % 16 {
            0 => {
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
                    d.drain(false);
                }
            }
            _ => {}
        }
    }
    d.session.handle_eof(d.now);
    d.drain(false);
    assert!(d.closed, "EOF did not close the session");
    assert!(d.open.is_empty());
    d.session.handle_input(d.now, b"* OK late\r\n");
    d.session.handle_eof(d.now);
    assert!(d.session.poll_event().is_none(), "closed session reacted");
}

/// Runs `data` through a session on an implicit-TLS connection (STARTTLS discards what
/// follows it in a read, so it is left out) in the chunks `cuts` marks, without answering
/// challenges or ending IDLE, and returns the events and the octets sent, for
/// chunking-invariance checks.
pub fn run_chunked(data: &[u8], cuts: &[usize]) -> (Vec<Event>, Vec<u8>) {
    let mut cuts: Vec<usize> = cuts
        .iter()
        .map(|&c| c.min(data.len()))
        .chain([data.len()])
        .collect();
    cuts.sort_unstable();
    let mut d = Driver::new(small_limits(), 1, Instant::now(), true);
    d.queue_script(false);
    let mut start = 0;
    for cut in cuts {
        d.session
            .handle_input(d.now, data.get(start..cut).unwrap_or_default());
        start = cut;
        d.drain(true);
    }
    d.session.handle_eof(d.now);
    d.drain(true);
    (d.log, d.sent)
}
