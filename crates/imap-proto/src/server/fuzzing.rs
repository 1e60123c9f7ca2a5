//! Invariants of the server session shared by the proptests and the `imap_server_session`
//! fuzz target: arbitrary client bytes run through a session whose scripted application
//! answers every event.
//!
//! Checked after every step: no panic; every command read gets exactly one final reply
//! (tagged, or `* BAD` when it had no readable tag); buffered input stays within the
//! limits; and every byte the session writes parses with the crate's own response parser.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::command::CommandBody;
use crate::fragmentizer::{self, Fragmentizer, Frame, Role};
use crate::response::{FetchItem, Status, parse_response};
use crate::types::{Atom, Capability, Flag, FlagFetch, ModSeq};

use super::{
    Change, Event, LoginOutcome, MessageInfo, SaslMechanism, SelectedMailbox, ServerConfig,
    ServerSession, SessionOptions,
};

/// Small limits so that the fuzzer reaches them with short inputs.
pub fn fuzz_config() -> ServerConfig {
    let mut config = ServerConfig {
        tls_available: true,
        // So that the scripted client gets past LOGIN without a real TLS handshake.
        allow_clear_text_without_tls: true,
        sasl_mechanisms: vec![
            SaslMechanism::new("PLAIN", true),
            SaslMechanism::new("NTLM", false),
        ],
        capabilities: [
            "UIDPLUS",
            "MOVE",
            "CONDSTORE",
            "QRESYNC",
            "UTF8=ACCEPT",
            "COMPRESS=DEFLATE",
        ]
        .into_iter()
        .filter_map(|c| Atom::new(c).ok().map(Capability::from_atom))
        .collect(),
        ..ServerConfig::default()
    };
    config.limits.framing.max_line = 1024;
    config.limits.framing.max_literal = 2048;
    config.limits.framing.max_append_literal = 4096;
    config.limits.framing.max_message = 16 * 1024;
    config.limits.max_sasl_line = 1024;
    config.limits.max_pipelined_input = 1024;
    config.limits.max_bad_commands = Some(50);
    config.limits.max_auth_failures = Some(5);
    config
}

/// What a scripted run produced.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Every byte the session wrote.
    pub output: Vec<u8>,
    /// Every event, as `Debug` text (secrets print redacted).
    pub events: Vec<String>,
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

fn snapshot(read_only: bool) -> SelectedMailbox {
    let messages = [1u32, 2, 4, 7, 8]
        .iter()
        .map(|&u| MessageInfo::new(nz(u), vec![Flag::Seen], u64::from(u) + 1))
        .collect();
    let mut mailbox = SelectedMailbox::new(nz(42), nz(9), ModSeq::new(9).ok(), messages);
    mailbox.read_only = read_only;
    mailbox
}

/// The scripted application: answers every pending event. `complete_tls` finishes a
/// STARTTLS handshake at once (a real driver would); with `false` the session stays
/// waiting and ignores later input, which keeps runs independent of chunking.
struct Script {
    complete_tls: bool,
    appended: u32,
}

impl Script {
    fn drain(&mut self, session: &mut ServerSession, now: Instant, outcome: &mut Outcome) {
        let mut rounds = 0;
        while let Some(event) = session.poll_event() {
            rounds += 1;
            if rounds > 100_000 {
                panic!("event loop does not terminate");
            }
            outcome.events.push(format!("{event:?}"));
            self.answer(session, now, event);
        }
    }

    fn answer(&mut self, session: &mut ServerSession, now: Instant, event: Event) {
        match event {
            Event::LoginRequested { id, password, .. } => {
                let outcome = if password.expose().as_slice() == b"secret" {
                    LoginOutcome::accepted("alice")
                } else {
                    LoginOutcome::rejected()
                };
                session
                    .finish_authentication(id, outcome)
                    .expect("pending LOGIN accepts an outcome");
            }
            Event::AuthenticateStarted {
                id,
                initial_response,
                ..
            } => match initial_response {
                Some(data) if data.expose().ends_with(b"secret") => session
                    .finish_authentication(id, LoginOutcome::accepted("alice"))
                    .expect("pending AUTHENTICATE accepts an outcome"),
                _ => session
                    .send_sasl_challenge(id, b"challenge")
                    .expect("pending AUTHENTICATE accepts a challenge"),
            },
            Event::SaslResponse { id, data } => {
                let outcome = if data.expose().ends_with(b"secret") {
                    LoginOutcome::accepted("alice")
                } else {
                    LoginOutcome::rejected()
                };
                session
                    .finish_authentication(id, outcome)
                    .expect("SASL exchange accepts an outcome");
            }
            Event::TlsRequested if self.complete_tls => {
                session.handle_tls_established(now);
            }
            Event::CompressionStarted => {
                // Identity "compression": the bytes are fed back as they are.
                let rest = session.take_compressed_input();
                session.handle_input(now, &rest);
            }
            Event::AppendReceived { id, messages, .. } => {
                for _ in &messages {
                    self.appended += 1;
                    session.mailbox_changed(Change::Appended(MessageInfo::new(
                        nz(100 + self.appended),
                        vec![],
                        100 + u64::from(self.appended),
                    )));
                }
                session
                    .finish(id, Status::Ok, None, "")
                    .expect("pending APPEND accepts a status");
            }
            Event::CommandReceived { id, command } => {
                self.command(session, id, command.body);
            }
            _ => {}
        }
    }

    fn command(
        &mut self,
        session: &mut ServerSession,
        id: super::CommandId,
        body: CommandBody<'static>,
    ) {
        match body {
            CommandBody::Select { .. } | CommandBody::Examine { .. } => {
                let read_only = matches!(body, CommandBody::Examine { .. });
                session
                    .select(id, snapshot(read_only))
                    .expect("pending SELECT accepts a snapshot");
                return;
            }
            CommandBody::Fetch {
                uid, sequence_set, ..
            } => {
                // Another session expunges meanwhile: the view must hold it back.
                session.mailbox_changed(Change::Expunged(vec![nz(2)]));
                for u in session.resolve(&sequence_set, uid) {
                    session
                        .send_fetch(
                            id,
                            u,
                            vec![FetchItem::Flags(vec![FlagFetch::Flag(Flag::Seen)])],
                        )
                        .expect("a resolved UID is in the view");
                }
            }
            CommandBody::Store {
                uid, sequence_set, ..
            } => {
                for u in session.resolve(&sequence_set, uid) {
                    session
                        .stored(id, MessageInfo::new(u, vec![Flag::Flagged], 50))
                        .expect("pending STORE accepts a result");
                }
            }
            CommandBody::Expunge | CommandBody::Close => {
                let first = session.selected().and_then(|v| v.uid(1));
                session
                    .expunged(id, first.into_iter().collect())
                    .expect("pending EXPUNGE/CLOSE accepts UIDs");
            }
            CommandBody::UidExpunge { sequence_set } | CommandBody::Move { sequence_set, .. } => {
                let uids = session.resolve(&sequence_set, true);
                session
                    .expunged(id, uids)
                    .expect("pending UID EXPUNGE/MOVE accepts UIDs");
            }
            _ => {}
        }
        session
            .finish(id, Status::Ok, None, "")
            .expect("pending command accepts a status");
    }
}

/// Feeds `input` split at `splits` (offsets, any order; out-of-range ones ignored) through
/// a session with the scripted application, checking the invariants after every step.
pub fn run_scripted(input: &[u8], splits: &[usize], complete_tls: bool) -> Outcome {
    let config = Arc::new(fuzz_config());
    let now = Instant::now();
    let mut session = ServerSession::new(config.clone(), now, SessionOptions::default());
    let mut script = Script {
        complete_tls,
        appended: 0,
    };
    let mut outcome = Outcome::default();
    let mut points: Vec<usize> = splits
        .iter()
        .copied()
        .filter(|&p| p < input.len())
        .collect();
    points.sort_unstable();
    points.dedup();
    points.push(input.len());
    let mut start = 0;
    drain_output(&mut session, &mut outcome);
    for end in points {
        let chunk = input.get(start..end).unwrap_or_default();
        start = end;
        session.handle_input(now, chunk);
        script.drain(&mut session, now, &mut outcome);
        drain_output(&mut session, &mut outcome);
        check_accounting(&session);
        let bound = config.limits.framing.max_message as usize
            + config.limits.max_pipelined_input * 2
            + input.len().min(1 << 20);
        assert!(
            session.buffered_input() <= bound,
            "buffered input {} above {bound}",
            session.buffered_input()
        );
    }
    // A spurious early timer is a no-op; the real one closes the session.
    session.handle_timeout(now);
    if let Some(deadline) = session.poll_timeout() {
        session.handle_timeout(deadline + Duration::from_secs(1));
        assert!(session.is_closed());
    }
    script.drain(&mut session, now, &mut outcome);
    drain_output(&mut session, &mut outcome);
    check_accounting(&session);
    check_output_parses(&outcome.output);
    outcome
}

fn drain_output(session: &mut ServerSession, outcome: &mut Outcome) {
    let mut guard = 0usize;
    while session.poll_transmit(&mut outcome.output) > 0 {
        guard += 1;
        assert!(guard < 10_000_000, "poll_transmit does not drain");
    }
}

fn check_accounting(session: &ServerSession) {
    let (read, replies, pending) = session.reply_accounting();
    assert!(
        replies <= read,
        "{replies} final replies for {read} commands"
    );
    if session.is_closed() {
        assert!(read - replies <= 1, "{read} commands, {replies} replies");
    } else {
        assert_eq!(
            read - replies,
            u64::from(pending),
            "every command gets exactly one final reply"
        );
    }
}

/// Every message the session wrote parses as a response.
pub fn check_output_parses(output: &[u8]) {
    let limits = fragmentizer::Limits {
        max_line: usize::MAX,
        max_literal: u64::MAX,
        max_append_literal: u64::MAX,
        max_non_sync_literal: None,
        max_literals: usize::MAX,
        max_message: u64::MAX,
    };
    let mut framer = Fragmentizer::new(Role::Client, limits);
    framer.push(output);
    while let Some(frame) = framer.poll() {
        match frame {
            Frame::Message(message) => {
                if let Err(e) = parse_response(&message) {
                    panic!(
                        "server output does not parse ({e:?}): {:?}",
                        String::from_utf8_lossy(&message)
                    );
                }
            }
            other => panic!("unexpected frame in server output: {other:?}"),
        }
    }
    assert_eq!(framer.buffered(), 0, "server output ends mid-message");
}

/// The fuzz target's body: no panic, invariants hold, and the outcome does not depend on
/// how the input was chunked (the first bytes choose the split points).
pub fn fuzz_session(data: &[u8]) {
    let (splits, input) = match data.split_first() {
        Some((&n, rest)) => {
            let n = usize::from(n % 8);
            let cut = rest.len().min(n * 2);
            let (head, input) = rest.split_at(cut);
            let splits: Vec<usize> = head
                .chunks(2)
                .map(|c| {
                    usize::from(c.first().copied().unwrap_or(0)) * 7
                        + usize::from(c.get(1).copied().unwrap_or(0))
                })
                .collect();
            (splits, input)
        }
        None => (Vec::new(), data),
    };
    let whole = run_scripted(input, &[], false);
    let chunked = run_scripted(input, &splits, false);
    assert_eq!(whole, chunked, "outcome depends on chunking");
    run_scripted(input, &splits, true);
}
