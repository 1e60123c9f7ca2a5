//! The ClientSession against the crate's own ServerSession, in memory with a virtual clock:
//! a whole session (STARTTLS, CAPABILITY, AUTHENTICATE PLAIN with SASL-IR refused, LOGIN
//! with a literal password, SELECT, UID FETCH with BODY[], UID SEARCH, LIST, APPEND of a
//! large message, IDLE with a pushed EXISTS, LOGOUT) driven by a small in-memory mailbox
//! application, with the server's bytes handed to the client in several chunkings.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Instant;

use cas_imap_proto::client::{
    ClientCloseReason, ClientConfig, ClientOptions, ClientSession, ClientState, CommandHandle,
    Event,
};
use cas_imap_proto::code::ResponseCode;
use cas_imap_proto::command::{CommandBody, FetchAttribute, FetchAttributes};
use cas_imap_proto::response::{Data, Delimiter, FetchItem, MailboxList, Status};
use cas_imap_proto::server::{
    self, Change, LoginOutcome, MessageInfo, SaslMechanism, SelectedMailbox, ServerConfig,
    ServerSession, SessionOptions,
};
use cas_imap_proto::types::{
    AString, Atom, Capability, Flag, IString, ListMailbox, Mailbox, NString, SeqOrUid, SequenceSet,
};

const UID_VALIDITY: u32 = 42;
const PASSWORD: &[u8] = b"s3cr\"et\r\n";

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

/// The in-memory mailbox behind the server: INBOX only.
struct Mailstore {
    messages: Vec<(NonZeroU32, Vec<Flag<'static>>, Vec<u8>)>,
    next_uid: u32,
}

impl Mailstore {
    fn new() -> Self {
        Self {
            messages: vec![
                (
                    nz(1),
                    vec![Flag::Seen],
                    b"Subject: one\r\n\r\nfirst\r\n".to_vec(),
                ),
                (nz(2), vec![], b"Subject: two\r\n\r\nsecond\r\n".to_vec()),
            ],
            next_uid: 3,
        }
    }

    fn add(&mut self, body: Vec<u8>) -> MessageInfo {
        let uid = nz(self.next_uid);
        self.next_uid += 1;
        self.messages.push((uid, vec![], body));
        MessageInfo::new(uid, vec![], 0)
    }
}

struct Pair {
    now: Instant,
    client: ClientSession,
    server: ServerSession,
    store: Mailstore,
    /// Server→client bytes are delivered in pieces of this size.
    chunk: usize,
    events: Vec<Event>,
}

impl Pair {
    fn new(chunk: usize) -> Self {
        let now = Instant::now();
        let config = ServerConfig {
            tls_available: true,
            sasl_mechanisms: vec![SaslMechanism::new("PLAIN", true)],
            capabilities: ["UIDPLUS", "MOVE", "UNSELECT"]
                .into_iter()
                .map(|c| Capability::from_atom(Atom::new(c).unwrap()))
                .collect(),
            ..ServerConfig::default()
        };
        Self {
            now,
            client: ClientSession::new(
                Arc::new(ClientConfig::default()),
                now,
                ClientOptions { tls_active: false },
            ),
            server: ServerSession::new(Arc::new(config), now, SessionOptions::default()),
            store: Mailstore::new(),
            chunk,
            events: Vec::new(),
        }
    }

    /// Moves bytes and events until nothing happens any more.
    fn settle(&mut self) {
        loop {
            let mut moved = false;
            self.serve();
            let mut to_client = Vec::new();
            while self.server.poll_transmit(&mut to_client) > 0 {}
            for piece in to_client.chunks(self.chunk.max(1)) {
                self.client.handle_input(self.now, piece);
                moved = true;
            }
            while let Some(event) = self.client.poll_event() {
                if let Event::TlsHandshakeRequested { .. } = event {
                    // Both ends finish the (simulated) handshake.
                    self.client.handle_tls_established(self.now);
                }
                self.events.push(event);
                moved = true;
            }
            let mut to_server = Vec::new();
            while self.client.poll_transmit(&mut to_server) > 0 {}
            if !to_server.is_empty() {
                self.server.handle_input(self.now, &to_server);
                moved = true;
            }
            if !moved {
                return;
            }
        }
    }

    /// The application side of the server.
    fn serve(&mut self) {
        while let Some(event) = self.server.poll_event() {
            let s = &mut self.server;
            match event {
                server::Event::TlsRequested => s.handle_tls_established(self.now),
                server::Event::LoginRequested {
                    id,
                    username,
                    password,
                } => {
                    let ok = username == "alice" && password.expose().as_slice() == PASSWORD;
                    let outcome = if ok {
                        LoginOutcome::accepted("alice")
                    } else {
                        LoginOutcome::rejected()
                    };
                    s.finish_authentication(id, outcome).unwrap();
                }
                server::Event::AuthenticateStarted { id, .. } => {
                    // This demo store accepts AUTHENTICATE from nobody.
                    s.finish_authentication(id, LoginOutcome::rejected())
                        .unwrap();
                }
                server::Event::CommandReceived { id, command } => match command.body {
                    CommandBody::Select {
                        mailbox: Mailbox::Inbox,
                        ..
                    } => {
                        let messages = self
                            .store
                            .messages
                            .iter()
                            .map(|(uid, flags, _)| MessageInfo::new(*uid, flags.clone(), 0))
                            .collect();
                        let snapshot = SelectedMailbox::new(
                            nz(UID_VALIDITY),
                            nz(self.store.next_uid),
                            None,
                            messages,
                        );
                        s.select(id, snapshot).unwrap();
                    }
                    CommandBody::Select { .. } => {
                        s.finish(id, Status::No, Some(ResponseCode::NonExistent), "no")
                            .unwrap();
                    }
                    CommandBody::Fetch {
                        uid, sequence_set, ..
                    } => {
                        for uid_value in s.resolve(&sequence_set, uid) {
                            let Some((_, flags, body)) =
                                self.store.messages.iter().find(|m| m.0 == uid_value)
                            else {
                                continue;
                            };
                            let items = vec![
                                FetchItem::Flags(flags.iter().cloned().map(Into::into).collect()),
                                FetchItem::BodySection {
                                    section: Default::default(),
                                    origin: None,
                                    data: NString(Some(IString::from_bytes(body.clone()))),
                                },
                            ];
                            s.send_fetch(id, uid_value, items).unwrap();
                        }
                        s.finish(id, Status::Ok, None, "").unwrap();
                    }
                    CommandBody::Search { .. } => {
                        let numbers = self.store.messages.iter().map(|m| m.0).collect();
                        s.send(
                            id,
                            Data::Search {
                                numbers,
                                mod_seq: None,
                            },
                        )
                        .unwrap();
                        s.finish(id, Status::Ok, None, "").unwrap();
                    }
                    CommandBody::List { .. } => {
                        for name in ["INBOX", "Archive"] {
                            s.send(
                                id,
                                Data::List(MailboxList {
                                    attributes: vec![],
                                    delimiter: Some(Delimiter::new('/').unwrap()),
                                    mailbox: Mailbox::from_name_utf8(name).unwrap(),
                                    extended: vec![],
                                }),
                            )
                            .unwrap();
                        }
                        s.finish(id, Status::Ok, None, "").unwrap();
                    }
                    _ => s.finish(id, Status::Ok, None, "").unwrap(),
                },
                server::Event::AppendReceived { id, messages, .. } => {
                    let mut uids = Vec::new();
                    for m in messages {
                        let info = self.store.add(m.data.to_vec());
                        uids.push(info.uid);
                        s.mailbox_changed(Change::Appended(info));
                    }
                    let code = ResponseCode::AppendUid {
                        uid_validity: nz(UID_VALIDITY),
                        uids: SequenceSet::single(uids[0]),
                    };
                    s.finish(id, Status::Ok, Some(code), "").unwrap();
                }
                server::Event::IdleStarted { .. } => {
                    // New mail from elsewhere while the client idles.
                    let info = self.store.add(b"Subject: pushed\r\n\r\nhi\r\n".to_vec());
                    s.mailbox_changed(Change::Appended(info));
                }
                _ => {}
            }
        }
    }

    /// The events of `handle`, from its first to its terminal one.
    fn of(&self, handle: CommandHandle) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|e| match e {
                Event::DataReceived { handle: h, .. } | Event::StatusReceived { handle: h, .. } => {
                    *h == Some(handle)
                }
                Event::Completed { handle: h, .. }
                | Event::CommandAborted { handle: h, .. }
                | Event::MailboxSelected { handle: h, .. }
                | Event::IdleStarted { handle: h }
                | Event::SaslChallengeReceived { handle: h, .. }
                | Event::TlsHandshakeRequested { handle: h } => *h == handle,
                _ => false,
            })
            .collect()
    }

    fn status(&self, handle: CommandHandle) -> (Status, Option<ResponseCode<'static>>) {
        self.events
            .iter()
            .find_map(|e| match e {
                Event::Completed {
                    handle: h,
                    status,
                    code,
                    ..
                } if *h == handle => Some((*status, code.clone())),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{handle} not completed: {:#?}", self.events))
    }
}

/// Runs the whole session with the server's output cut into `chunk`-byte pieces and returns
/// the client's events.
fn whole_session(chunk: usize) -> Vec<Event> {
    let mut p = Pair::new(chunk);
    let now = p.now;
    let starttls = p.client.starttls(now).unwrap();
    let caps = p.client.capability(now).unwrap();
    let plain = p
        .client
        .authenticate(now, Atom::new("PLAIN").unwrap(), Some(b"\0alice\0wrong"))
        .unwrap();
    let login = p
        .client
        .login(
            now,
            AString::from_bytes(&b"alice"[..]),
            AString::from_bytes(PASSWORD),
        )
        .unwrap();
    p.settle();
    assert!(p.client.is_tls_active());
    assert_eq!(p.status(starttls).0, Status::Ok);
    assert_eq!(p.status(caps).0, Status::Ok);
    assert_eq!(
        p.status(plain),
        (Status::No, Some(ResponseCode::AuthenticationFailed))
    );
    assert_eq!(p.status(login).0, Status::Ok);
    assert_eq!(p.client.state(), ClientState::Authenticated);
    // The server repeats its capabilities with the LOGIN completion.
    assert!(
        p.client.has_capability(&Capability::Idle),
        "{:?}",
        p.client.capabilities()
    );

    let select = p.client.select(now, Mailbox::Inbox).unwrap();
    let nope = p
        .client
        .select(now, Mailbox::from_name_utf8("Nope").unwrap())
        .unwrap();
    let select_again = p.client.select(now, Mailbox::Inbox).unwrap();
    p.settle();
    let summary = p
        .of(select)
        .into_iter()
        .find_map(|e| match e {
            Event::MailboxSelected { summary, .. } => Some(summary.clone()),
            _ => None,
        })
        .expect("SELECT summary");
    assert_eq!(summary.exists, 2);
    assert_eq!(summary.uid_validity, Some(nz(UID_VALIDITY)));
    assert_eq!(summary.uid_next, Some(nz(3)));
    assert!(!summary.read_only);
    assert!(summary.flags.contains(&Flag::Seen));
    assert_eq!(p.status(nope).0, Status::No);
    assert_eq!(p.status(select_again).0, Status::Ok);
    assert_eq!(p.client.state(), ClientState::Selected);

    let fetch = p
        .client
        .fetch(
            now,
            true,
            SequenceSet::range(SeqOrUid::Value(nz(1)), SeqOrUid::Asterisk).into(),
            FetchAttributes::List(vec![
                FetchAttribute::Flags,
                FetchAttribute::BodySection {
                    peek: true,
                    section: Default::default(),
                    partial: None,
                },
            ]),
        )
        .unwrap();
    let search = p.client.uid_search(now, vec![]).unwrap();
    let list = p
        .client
        .list(
            now,
            Mailbox::from_wire(&b""[..]).unwrap(),
            ListMailbox::from_bytes(&b"*"[..]),
        )
        .unwrap();
    p.settle();
    let bodies: Vec<Vec<u8>> = p
        .of(fetch)
        .into_iter()
        .filter_map(|e| match e {
            Event::DataReceived {
                data: Data::Fetch { items, .. },
                ..
            } => items.iter().find_map(|i| match i {
                FetchItem::BodySection { data, .. } => data.as_bytes().map(<[u8]>::to_vec),
                _ => None,
            }),
            _ => None,
        })
        .collect();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0], p.store.messages[0].2);
    assert_eq!(p.status(fetch).0, Status::Ok);
    assert!(p.of(search).iter().any(|e| matches!(e,
        Event::DataReceived { data: Data::Search { numbers, .. }, .. } if numbers.len() == 2)));
    assert_eq!(p.of(list).len(), 3, "two LIST lines and the completion");

    // A large APPEND: over LITERAL-'s 4096, so it waits for the server's `+`.
    let mut message = b"Subject: big\r\n\r\n".to_vec();
    message.resize(20_000, b'z');
    let append = p
        .client
        .append(now, Mailbox::Inbox, vec![Flag::Seen], &message)
        .unwrap();
    p.settle();
    assert!(matches!(
        p.status(append),
        (Status::Ok, Some(ResponseCode::AppendUid { .. }))
    ));
    assert_eq!(p.store.messages.last().unwrap().2, message);
    assert_eq!(p.client.selected().map(|s| s.exists), Some(3));

    let idle = p.client.idle(now).unwrap();
    p.settle();
    assert!(
        p.of(idle)
            .iter()
            .any(|e| matches!(e, Event::IdleStarted { .. }))
    );
    assert!(
        p.of(idle).iter().any(|e| matches!(
            e,
            Event::DataReceived {
                data: Data::Exists(4),
                ..
            }
        )),
        "{:#?}",
        p.of(idle)
    );
    p.client.idle_done(now, idle).unwrap();
    let logout = p.client.logout(now).unwrap();
    p.settle();
    assert_eq!(p.status(idle).0, Status::Ok);
    assert_eq!(p.status(logout).0, Status::Ok);
    assert!(matches!(
        p.events.last(),
        Some(Event::Closed {
            reason: ClientCloseReason::Logout
        })
    ));
    assert!(p.client.is_closed());
    assert_eq!(p.client.selected(), None);
    p.events
}

#[test]
fn whole_session_against_the_server_session() {
    let whole = whole_session(usize::MAX);
    for chunk in [1, 7, 64] {
        assert_eq!(whole_session(chunk), whole, "chunks of {chunk}");
    }
}
