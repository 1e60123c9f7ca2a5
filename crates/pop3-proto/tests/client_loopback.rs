//! ClientSession against ServerSession in memory (quinn's `Pair` idea): the client's output
//! is the server's input and vice versa, with a virtual clock. The server side is the
//! auto-answering application from `pop3_proto::fuzzing` serving `fuzzing::MESSAGES`.

mod util;

use std::sync::Arc;
use std::time::{Duration, Instant};

use pop3_proto::client::{
    ClientCloseReason, ClientConfig, ClientEvent, ClientOptions, ClientSession, ClientState, Reply,
    RequestId,
};
use pop3_proto::command::{Mechanism, Param, PassText};
use pop3_proto::fuzzing::{AutoApp, MESSAGES};
use pop3_proto::response::{DropListing, ScanListing, UidListing};
use pop3_proto::stuffing::crlf_size;
use pop3_proto::{
    Bytes, Capability, Command, ResponseCode, ServerConfig, SessionOptions, State, Status,
    StatusLine, Uid,
};
use util::crlf_normalised;

struct Pair {
    client: ClientSession,
    server: AutoApp,
    /// Server output already delivered to the client.
    delivered: usize,
    events: Vec<ClientEvent>,
    /// Answers to SASL challenges, in order (`None` cancels).
    sasl_answers: Vec<Option<Vec<u8>>>,
}

impl Pair {
    fn new(config: ServerConfig) -> Self {
        let server = AutoApp::new(
            config,
            SessionOptions {
                tls_active: false,
                apop_timestamp: Some("<1896.697170952@dbc.mtview.ca.us>".into()),
            },
        );
        let client = ClientSession::new(
            Arc::new(ClientConfig::default()),
            server.now,
            ClientOptions::default(),
        );
        let mut pair = Self {
            client,
            server,
            delivered: 0,
            events: Vec::new(),
            sasl_answers: Vec::new(),
        };
        pair.drive();
        pair
    }

    fn now(&self) -> Instant {
        self.server.now
    }

    /// Moves bytes both ways and answers client events until nothing moves.
    fn drive(&mut self) {
        loop {
            let now = self.now();
            let mut progress = false;
            self.server.pump();
            let mut wire = Vec::new();
            if self.client.poll_transmit(&mut wire) > 0 {
                self.server.input(&wire);
                progress = true;
            }
            if self.server.output.len() > self.delivered {
                let new = self.server.output[self.delivered..].to_vec();
                self.delivered = self.server.output.len();
                // Deliver in odd-sized pieces, as a network would.
                for piece in new.chunks(13) {
                    self.client.handle_input(now, piece);
                }
                progress = true;
            }
            while let Some(ev) = self.client.poll_event() {
                progress = true;
                match &ev {
                    // In memory the "handshake" is instant; the server side completes its
                    // half once its +OK is out (AutoApp::complete_tls).
                    ClientEvent::TlsReady { .. } => self.client.handle_tls_established(now),
                    ClientEvent::SaslChallengeReceived { id, .. } => {
                        let answer = if self.sasl_answers.is_empty() {
                            None
                        } else {
                            self.sasl_answers.remove(0)
                        };
                        let r = match answer {
                            Some(data) => self.client.sasl_respond(now, *id, &data),
                            None => self.client.sasl_cancel(now, *id),
                        };
                        assert!(r.is_ok(), "{r:?}");
                    }
                    _ => {}
                }
                self.events.push(ev);
            }
            if !progress {
                break;
            }
        }
    }

    fn send(&mut self, command: Command<'_>) -> RequestId {
        let now = self.now();
        self.client.send_command(now, command).expect("open")
    }

    fn take_events(&mut self) -> Vec<ClientEvent> {
        std::mem::take(&mut self.events)
    }

    /// The single terminal reply of `id` among `events`.
    fn reply_of(events: &[ClientEvent], id: RequestId) -> Reply {
        let found: Vec<&Reply> = events
            .iter()
            .filter_map(|e| match e {
                ClientEvent::ReplyReceived { id: i, reply } if *i == id => Some(reply),
                _ => None,
            })
            .collect();
        assert_eq!(found.len(), 1, "replies of {id:?} in {events:#?}");
        found[0].clone()
    }
}

fn maildrop_size() -> u64 {
    MESSAGES.iter().map(|m| crlf_size(m)).sum()
}

#[test]
fn stls_sasl_plain_retrieve_delete_quit() {
    let mut p = Pair::new(ServerConfig {
        stls_available: true,
        apop_enabled: true,
        ..ServerConfig::default()
    });
    let evs = p.take_events();
    assert!(matches!(
        evs.as_slice(),
        [ClientEvent::GreetingReceived { ok: true, apop_timestamp: Some(ts), .. }]
            if ts == "<1896.697170952@dbc.mtview.ca.us>"
    ));

    let capa = p.send(Command::Capa);
    let stls = p.send(Command::Stls);
    let capa2 = p.send(Command::Capa);
    let auth = p.send(Command::Auth {
        mechanism: Mechanism::new("PLAIN").unwrap(),
        initial_response: Some(b"\0alice\0open sesame".to_vec()),
    });
    p.drive();
    let evs = p.take_events();
    let Reply::Capabilities(before) = Pair::reply_of(&evs, capa) else {
        panic!("{evs:#?}")
    };
    assert!(before.contains(&Capability::Stls));
    assert!(
        !before.iter().any(|c| matches!(c, Capability::Sasl(_))),
        "clear-text SASL hidden before TLS: {before:?}"
    );
    assert!(evs.contains(&ClientEvent::TlsReady { id: stls }));
    assert!(
        !evs.iter()
            .any(|e| matches!(e, ClientEvent::InjectionDiscarded { .. }))
    );
    assert!(p.client.is_tls_active() && p.server.session.is_tls_active());
    let Reply::Capabilities(after) = Pair::reply_of(&evs, capa2) else {
        panic!("{evs:#?}")
    };
    assert!(!after.contains(&Capability::Stls));
    assert!(after.contains(&Capability::Sasl(vec!["PLAIN".into(), "LOGIN".into()])));
    assert!(after.contains(&Capability::Pipelining));
    assert!(Pair::reply_of(&evs, auth).is_ok());
    assert_eq!(p.client.state(), ClientState::Transaction);
    assert_eq!(p.server.session.state(), State::Transaction);
    assert!(p.client.is_pipelining());

    // Pipelined from here on.
    let stat = p.send(Command::Stat);
    let list = p.send(Command::List(None));
    let uidl = p.send(Command::Uidl(None));
    let list2 = p.send(Command::List(Some(2)));
    let uidl2 = p.send(Command::Uidl(Some(2)));
    let retrs: Vec<RequestId> = (1..=3).map(|n| p.send(Command::Retr(n))).collect();
    let top = p.send(Command::Top {
        message: 1,
        lines: 0,
    });
    let top2 = p.send(Command::Top {
        message: 2,
        lines: 1,
    });
    let missing = p.send(Command::Retr(9));
    let dele = p.send(Command::Dele(1));
    let list1 = p.send(Command::List(Some(1)));
    let stat2 = p.send(Command::Stat);
    p.drive();
    let evs = p.take_events();
    let sizes: Vec<u64> = MESSAGES.iter().map(|m| crlf_size(m)).collect();
    assert_eq!(
        Pair::reply_of(&evs, stat),
        Reply::Stat(DropListing {
            count: 3,
            size: maildrop_size()
        })
    );
    assert_eq!(
        Pair::reply_of(&evs, list),
        Reply::Listing(
            (1u32..)
                .zip(&sizes)
                .map(|(message, &size)| ScanListing { message, size })
                .collect()
        )
    );
    assert_eq!(
        Pair::reply_of(&evs, uidl),
        Reply::UidListing(
            (1u32..=3)
                .map(|message| UidListing {
                    message,
                    uid: Uid::new(format!("uid-{}", message - 1)).unwrap()
                })
                .collect()
        )
    );
    assert_eq!(
        Pair::reply_of(&evs, list2),
        Reply::Listing(vec![ScanListing {
            message: 2,
            size: sizes[1]
        }])
    );
    assert_eq!(
        Pair::reply_of(&evs, uidl2),
        Reply::UidListing(vec![UidListing {
            message: 2,
            uid: Uid::new("uid-1").unwrap()
        }])
    );
    for (id, msg) in retrs.iter().zip(MESSAGES) {
        let Reply::Message { body } = Pair::reply_of(&evs, *id) else {
            panic!("{evs:#?}")
        };
        assert_eq!(body, Bytes::from(crlf_normalised(msg)));
        // The size the server announced is the size the client received.
        assert_eq!(u64::try_from(body.len()).unwrap(), crlf_size(msg));
    }
    assert_eq!(
        Pair::reply_of(&evs, top),
        Reply::Message {
            body: Bytes::from_static(b"Subject: one\r\nFrom: a@example.org\r\n\r\n")
        }
    );
    assert_eq!(
        Pair::reply_of(&evs, top2),
        Reply::Message {
            body: Bytes::from_static(b"Subject: two\r\n\r\n.\r\n")
        }
    );
    assert!(!Pair::reply_of(&evs, missing).is_ok());
    assert!(Pair::reply_of(&evs, dele).is_ok());
    assert!(!Pair::reply_of(&evs, list1).is_ok());
    assert_eq!(
        Pair::reply_of(&evs, stat2),
        Reply::Stat(DropListing {
            count: 2,
            size: maildrop_size() - sizes[0]
        })
    );

    let quit = p.send(Command::Quit);
    p.drive();
    let evs = p.take_events();
    assert!(Pair::reply_of(&evs, quit).is_ok());
    assert_eq!(
        evs.last(),
        Some(&ClientEvent::Closed {
            reason: ClientCloseReason::Quit
        })
    );
    assert!(p.client.is_closed());
    assert!(p.server.session.is_closed());
    assert!(
        p.server
            .events
            .iter()
            .any(|e| e.contains("Commit") && e.contains("deleted: [1]")),
        "{:#?}",
        p.server.events
    );
}

#[test]
fn user_pass_pipelined_login_and_in_use() {
    let config = ServerConfig {
        allow_clear_text_without_tls: true,
        ..ServerConfig::default()
    };
    let mut p = Pair::new(config.clone());
    p.take_events();
    let capa = p.send(Command::Capa);
    p.drive();
    assert!(Pair::reply_of(&p.take_events(), capa).is_ok());
    let user = p.send(Command::User(Param::new("busy").unwrap()));
    let pass = p.send(Command::Pass(PassText::new(b"whatever").unwrap()));
    p.drive();
    let evs = p.take_events();
    assert!(Pair::reply_of(&evs, user).is_ok());
    let Reply::Status(StatusLine {
        status: Status::Err,
        code: Some(ResponseCode::InUse),
        ..
    }) = Pair::reply_of(&evs, pass)
    else {
        panic!("{evs:#?}")
    };
    assert_eq!(p.client.state(), ClientState::Authorization);

    // AUTH LOGIN: two challenges answered, then accepted.
    let mut p = Pair::new(config);
    p.take_events();
    p.sasl_answers = vec![Some(b"more".to_vec()), Some(b"open sesame".to_vec())];
    let auth = p.send(Command::Auth {
        mechanism: Mechanism::new("LOGIN").unwrap(),
        initial_response: None,
    });
    let stat = p.send(Command::Stat);
    p.drive();
    let evs = p.take_events();
    let challenges: Vec<&[u8]> = evs
        .iter()
        .filter_map(|e| match e {
            ClientEvent::SaslChallengeReceived { id, challenge } if *id == auth => {
                Some(challenge.as_slice())
            }
            _ => None,
        })
        .collect();
    assert_eq!(challenges, [&b"Username:"[..], &b"Password:"[..]]);
    assert!(Pair::reply_of(&evs, auth).is_ok());
    assert!(matches!(Pair::reply_of(&evs, stat), Reply::Stat(d) if d.count == 3));
}

#[test]
fn sasl_cancel_and_server_timeout() {
    let mut p = Pair::new(ServerConfig {
        allow_clear_text_without_tls: true,
        ..ServerConfig::default()
    });
    p.take_events();
    let auth = p.send(Command::Auth {
        mechanism: Mechanism::new("PLAIN").unwrap(),
        initial_response: None,
    });
    p.drive();
    let evs = p.take_events();
    assert!(!Pair::reply_of(&evs, auth).is_ok(), "cancelled: {evs:#?}");

    // NOOP is a TRANSACTION command: -ERR, but the session goes on.
    let noop = p.send(Command::Noop);
    p.drive();
    assert!(!Pair::reply_of(&p.take_events(), noop).is_ok());

    // The server's pre-auth timer ends the session with an unsolicited -ERR.
    // (The server re-arms once if it transmitted since the last tick.)
    for _ in 0..3 {
        if p.server.session.is_closed() {
            break;
        }
        p.server.advance(Duration::from_secs(3600));
        p.drive();
    }
    assert!(p.server.session.is_closed());
    let evs = p.take_events();
    let Some(ClientEvent::Closed {
        reason: ClientCloseReason::ClosedByServer(status),
    }) = evs.last()
    else {
        panic!("{evs:#?}")
    };
    assert_eq!(status.status, Status::Err);
    assert!(p.client.is_closed());
    p.client.handle_eof(p.now());
    p.drive();
    assert_eq!(p.take_events(), vec![]);
}
