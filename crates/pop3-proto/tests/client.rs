//! ClientSession transcripts: exact bytes sent, exact events, with a virtual clock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pop3_proto::client::{
    ClientCloseReason, ClientConfig, ClientEvent, ClientLimits, ClientOptions, ClientSession,
    ClientState, ProtocolViolation, Reply, ReplyError, RequestId,
};
use pop3_proto::command::{Mechanism, Param, PassText};
use pop3_proto::response::{DropListing, ScanListing, UidListing};
use pop3_proto::{Bytes, Capability, Command, ResponseCode, SendErrorKind, StatusLine, Uid};

fn client(limits: ClientLimits, now: Instant) -> ClientSession {
    ClientSession::new(
        Arc::new(ClientConfig { limits }),
        now,
        ClientOptions::default(),
    )
}

fn events(c: &mut ClientSession) -> Vec<ClientEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn sent(c: &mut ClientSession) -> String {
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    String::from_utf8(out).expect("commands are ASCII here")
}

fn ok(id: RequestId, text: &str) -> ClientEvent {
    ClientEvent::ReplyReceived {
        id,
        reply: Reply::Status(StatusLine::ok(text)),
    }
}

fn reply(id: RequestId, reply: Reply) -> ClientEvent {
    ClientEvent::ReplyReceived { id, reply }
}

fn uid(s: &str) -> Uid {
    Uid::new(s).expect("valid uid")
}

/// A greeted client (no APOP timestamp) with default limits.
fn greeted(now: Instant) -> ClientSession {
    let mut c = client(ClientLimits::default(), now);
    c.handle_input(now, b"+OK ready\r\n");
    assert!(matches!(
        events(&mut c).as_slice(),
        [ClientEvent::GreetingReceived { ok: true, .. }]
    ));
    c
}

#[test]
fn rfc1939_section10_example_session() {
    let now = Instant::now();
    let mut c = client(ClientLimits::default(), now);
    assert_eq!(c.state(), ClientState::AwaitingGreeting);
    assert_eq!(sent(&mut c), "");

    c.handle_input(
        now,
        b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n",
    );
    assert_eq!(
        events(&mut c),
        vec![ClientEvent::GreetingReceived {
            ok: true,
            code: None,
            text: "POP3 server ready <1896.697170952@dbc.mtview.ca.us>".into(),
            apop_timestamp: Some("<1896.697170952@dbc.mtview.ca.us>".into()),
        }]
    );
    assert_eq!(c.state(), ClientState::Authorization);
    assert_eq!(
        c.apop_timestamp(),
        Some("<1896.697170952@dbc.mtview.ca.us>")
    );

    // MD5("<1896.697170952@dbc.mtview.ca.us>tanstaaf") from RFC 1939 §7.
    let digest = [
        0xc4, 0xc9, 0x33, 0x4b, 0xac, 0x56, 0x0e, 0xcc, 0x97, 0x9e, 0x58, 0x00, 0x1b, 0x3e, 0x22,
        0xfb,
    ];
    let apop = c
        .send_command(
            now,
            Command::Apop {
                name: Param::new("mrose").unwrap(),
                digest,
            },
        )
        .unwrap();
    assert_eq!(
        sent(&mut c),
        "APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n"
    );
    c.handle_input(now, b"+OK mrose's maildrop has 2 messages (320 octets)\r\n");
    assert_eq!(
        events(&mut c),
        vec![ok(apop, "mrose's maildrop has 2 messages (320 octets)")]
    );
    assert_eq!(c.state(), ClientState::Transaction);

    let stat = c.stat(now).unwrap();
    assert_eq!(sent(&mut c), "STAT\r\n");
    c.handle_input(now, b"+OK 2 320\r\n");
    assert_eq!(
        events(&mut c),
        vec![reply(
            stat,
            Reply::Stat(DropListing {
                count: 2,
                size: 320
            })
        )]
    );

    let list = c.list(now, None).unwrap();
    assert_eq!(sent(&mut c), "LIST\r\n");
    c.handle_input(
        now,
        b"+OK 2 messages (320 octets)\r\n1 120\r\n2 200\r\n.\r\n",
    );
    assert_eq!(
        events(&mut c),
        vec![reply(
            list,
            Reply::Listing(vec![
                ScanListing {
                    message: 1,
                    size: 120
                },
                ScanListing {
                    message: 2,
                    size: 200
                },
            ])
        )]
    );

    let msg1 = format!("Subject: one\r\n\r\n{}\r\n", "x".repeat(102));
    let msg2 = format!("Subject: two\r\n\r\n{}\r\n", "y".repeat(182));
    assert_eq!((msg1.len(), msg2.len()), (120, 200));
    for (n, msg) in [(1u32, &msg1), (2, &msg2)] {
        let retr = c.retr(now, n).unwrap();
        assert_eq!(sent(&mut c), format!("RETR {n}\r\n"));
        c.handle_input(
            now,
            format!("+OK {} octets\r\n{msg}.\r\n", msg.len()).as_bytes(),
        );
        assert_eq!(
            events(&mut c),
            vec![reply(
                retr,
                Reply::Message {
                    body: Bytes::from(msg.clone().into_bytes())
                }
            )]
        );
        let dele = c.dele(now, n).unwrap();
        assert_eq!(sent(&mut c), format!("DELE {n}\r\n"));
        c.handle_input(now, format!("+OK message {n} deleted\r\n").as_bytes());
        assert_eq!(
            events(&mut c),
            vec![ok(dele, &format!("message {n} deleted"))]
        );
    }

    let quit = c.quit(now).unwrap();
    assert_eq!(sent(&mut c), "QUIT\r\n");
    assert_eq!(
        c.noop(now).map_err(|e| e.kind),
        Err(SendErrorKind::Closed),
        "nothing after QUIT"
    );
    c.handle_input(
        now,
        b"+OK dewey POP3 server signing off (maildrop empty)\r\n",
    );
    assert_eq!(
        events(&mut c),
        vec![
            ok(quit, "dewey POP3 server signing off (maildrop empty)"),
            ClientEvent::Closed {
                reason: ClientCloseReason::Quit
            },
        ]
    );
    assert!(c.is_closed());
    assert!(!c.wants_input());
    c.handle_eof(now);
    assert_eq!(events(&mut c), vec![]);
}

#[test]
fn dot_unstuffing_at_every_split() {
    let wire: &[u8] = b"+OK 40 octets\r\n..a\r\n...b\r\n..\r\nplain\r\n\r\n.\r\n+OK 1 1\r\n";
    let body: &[u8] = b".a\r\n..b\r\n.\r\nplain\r\n\r\n";
    let now = Instant::now();
    for cut1 in 0..=wire.len() {
        for cut2 in cut1..=wire.len() {
            let mut c = greeted(now);
            c.capa(now).unwrap();
            c.handle_input(now, b"+OK\r\nPIPELINING\r\n.\r\n");
            events(&mut c);
            sent(&mut c);
            let retr = c.retr(now, 1).unwrap();
            let stat = c.stat(now).unwrap();
            assert_eq!(sent(&mut c), "RETR 1\r\nSTAT\r\n");
            let mut got = Vec::new();
            for part in [&wire[..cut1], &wire[cut1..cut2], &wire[cut2..]] {
                c.handle_input(now, part);
                got.extend(events(&mut c));
            }
            assert_eq!(
                got,
                vec![
                    reply(
                        retr,
                        Reply::Message {
                            body: Bytes::from_static(body)
                        }
                    ),
                    reply(stat, Reply::Stat(DropListing { count: 1, size: 1 })),
                ],
                "cuts {cut1} {cut2}"
            );
        }
    }
}

#[test]
fn body_arriving_byte_by_byte_then_pipelined_stat() {
    let now = Instant::now();
    let mut c = greeted(now);
    let retr = c.retr(now, 1).unwrap();
    sent(&mut c);
    let wire = b"+OK\r\n.x\r\n\r\n..\r\nlast line without CRLF?\n.\r\n";
    for b in wire.iter() {
        c.handle_input(now, std::slice::from_ref(b));
    }
    assert_eq!(
        events(&mut c),
        vec![reply(
            retr,
            Reply::Message {
                body: Bytes::from_static(b"x\r\n\r\n.\r\nlast line without CRLF?\n")
            }
        )]
    );
    let stat = c.stat(now).unwrap();
    assert_eq!(sent(&mut c), "STAT\r\n");
    c.handle_input(now, b"+OK 0 0\r\n");
    assert_eq!(
        events(&mut c),
        vec![reply(stat, Reply::Stat(DropListing { count: 0, size: 0 }))]
    );
}

#[test]
fn multi_line_capa_and_pipelining() {
    let now = Instant::now();
    let mut c = greeted(now);
    let capa = c.capa(now).unwrap();
    let user = c
        .send_command(now, Command::User(Param::new("alice").unwrap()))
        .unwrap();
    let pass = c
        .send_command(now, Command::Pass(PassText::new(b"open sesame").unwrap()))
        .unwrap();
    let stat = c.stat(now).unwrap();
    let uidl = c.uidl(now, None).unwrap();
    // Unknown capabilities: one at a time.
    assert_eq!(sent(&mut c), "CAPA\r\n");
    assert!(!c.is_pipelining());
    c.handle_input(
        now,
        b"+OK Capability list follows\r\nTOP\r\nUSER\r\nSASL PLAIN LOGIN\r\nRESP-CODES\r\n\
          PIPELINING\r\nIMPLEMENTATION cas-rs test\r\n..X-DOT a\r\n.\r\n",
    );
    let caps = vec![
        Capability::Top,
        Capability::User,
        Capability::Sasl(vec!["PLAIN".into(), "LOGIN".into()]),
        Capability::RespCodes,
        Capability::Pipelining,
        Capability::Implementation("cas-rs test".into()),
        Capability::Other {
            name: ".X-DOT".into(),
            params: vec!["a".into()],
        },
    ];
    assert_eq!(
        events(&mut c),
        vec![reply(capa, Reply::Capabilities(caps.clone()))]
    );
    assert_eq!(c.capabilities(), Some(caps.as_slice()));
    assert!(c.is_pipelining());
    // PIPELINING: everything queued goes out at once.
    assert_eq!(
        sent(&mut c),
        "USER alice\r\nPASS open sesame\r\nSTAT\r\nUIDL\r\n"
    );
    c.handle_input(
        now,
        b"+OK send PASS\r\n+OK logged in\r\n+OK 2 30\r\n+OK\r\n1 whqtswO00WBw418f9t5JxYwZ\r\n2 QhdPYR:00WBw1Ph7x7\r\n.\r\n",
    );
    assert_eq!(
        events(&mut c),
        vec![
            ok(user, "send PASS"),
            ok(pass, "logged in"),
            reply(stat, Reply::Stat(DropListing { count: 2, size: 30 })),
            reply(
                uidl,
                Reply::UidListing(vec![
                    UidListing {
                        message: 1,
                        uid: uid("whqtswO00WBw418f9t5JxYwZ")
                    },
                    UidListing {
                        message: 2,
                        uid: uid("QhdPYR:00WBw1Ph7x7")
                    },
                ])
            ),
        ]
    );
    assert_eq!(c.state(), ClientState::Transaction);
}

#[test]
fn pipeline_depth_is_respected() {
    let now = Instant::now();
    let mut c = client(
        ClientLimits {
            pipeline_depth: 2,
            ..ClientLimits::default()
        },
        now,
    );
    c.handle_input(now, b"+OK hi\r\n");
    c.capa(now).unwrap();
    c.handle_input(now, b"+OK\r\nPIPELINING\r\n.\r\n");
    events(&mut c);
    assert_eq!(sent(&mut c), "CAPA\r\n");
    let ids: Vec<_> = (0..5).map(|_| c.noop(now).unwrap()).collect();
    assert_eq!(sent(&mut c), "NOOP\r\nNOOP\r\n");
    c.handle_input(now, b"+OK\r\n");
    assert_eq!(events(&mut c), vec![ok(ids[0], "")]);
    assert_eq!(sent(&mut c), "NOOP\r\n");
    c.handle_input(now, b"+OK\r\n+OK\r\n");
    assert_eq!(sent(&mut c), "NOOP\r\nNOOP\r\n");
}

#[test]
fn list_and_uidl_single_and_errors() {
    let now = Instant::now();
    let mut c = greeted(now);
    let l2 = c.list(now, Some(2)).unwrap();
    assert_eq!(sent(&mut c), "LIST 2\r\n");
    c.handle_input(now, b"+OK 2 200\r\n");
    let u2 = c.uidl(now, Some(2)).unwrap();
    assert_eq!(sent(&mut c), "UIDL 2\r\n");
    c.handle_input(now, b"+OK 2 QhdPYR:00WBw1Ph7x7\r\n");
    let l9 = c.list(now, Some(9)).unwrap();
    c.handle_input(
        now,
        b"-ERR no such message, only 2 messages in maildrop\r\n",
    );
    let all = c.list(now, None).unwrap();
    c.handle_input(now, b"-ERR [SYS/TEMP] try later\r\n");
    let bad = c.stat(now).unwrap();
    c.handle_input(now, b"+OK lots\r\n");
    let bad_list = c.list(now, None).unwrap();
    c.handle_input(now, b"+OK\r\n1 120\r\nnot a listing\r\n2 200\r\n.\r\n");
    let after = c.noop(now).unwrap();
    c.handle_input(now, b"+OK\r\n");
    assert_eq!(
        events(&mut c),
        vec![
            reply(
                l2,
                Reply::Listing(vec![ScanListing {
                    message: 2,
                    size: 200
                }])
            ),
            reply(
                u2,
                Reply::UidListing(vec![UidListing {
                    message: 2,
                    uid: uid("QhdPYR:00WBw1Ph7x7")
                }])
            ),
            reply(
                l9,
                Reply::Status(StatusLine::err(
                    "no such message, only 2 messages in maildrop"
                ))
            ),
            reply(
                all,
                Reply::Status(StatusLine::err_with(ResponseCode::SysTemp, "try later"))
            ),
            ClientEvent::ReplyFailed {
                id: bad,
                error: ReplyError::Malformed(
                    DropListing::parse_text("lots").expect_err("malformed")
                )
            },
            ClientEvent::ReplyFailed {
                id: bad_list,
                error: ReplyError::Malformed(
                    ScanListing::parse(b"not a listing").expect_err("malformed")
                )
            },
            ok(after, ""),
        ]
    );
}

#[test]
fn err_in_use_with_response_code() {
    let now = Instant::now();
    let mut c = greeted(now);
    c.send_command(now, Command::User(Param::new("mrose").unwrap()))
        .unwrap();
    sent(&mut c);
    c.handle_input(now, b"+OK\r\n");
    let pass = c
        .send_command(now, Command::Pass(PassText::new(b"secret").unwrap()))
        .unwrap();
    assert_eq!(sent(&mut c), "PASS secret\r\n");
    c.handle_input(
        now,
        b"-ERR [IN-USE] Do you have another POP session running?\r\n",
    );
    let evs = events(&mut c);
    let expected = StatusLine::err_with(
        ResponseCode::InUse,
        "Do you have another POP session running?",
    );
    assert_eq!(
        evs.last(),
        Some(&reply(pass, Reply::Status(expected.clone())))
    );
    let ClientEvent::ReplyReceived { reply: r, .. } = &evs[1] else {
        panic!("{evs:?}")
    };
    assert!(!r.is_ok());
    assert_eq!(c.state(), ClientState::Authorization);
}

#[test]
fn greeting_rejected_closes() {
    let now = Instant::now();
    let mut c = client(ClientLimits::default(), now);
    let stat = c.stat(now).unwrap();
    c.handle_input(now, b"-ERR [SYS/TEMP] too many connections\r\n");
    assert_eq!(
        events(&mut c),
        vec![
            ClientEvent::GreetingReceived {
                ok: false,
                code: Some(ResponseCode::SysTemp),
                text: "too many connections".into(),
                apop_timestamp: None,
            },
            ClientEvent::ReplyFailed {
                id: stat,
                error: ReplyError::NotSent
            },
            ClientEvent::Closed {
                reason: ClientCloseReason::GreetingRejected
            },
        ]
    );
    assert_eq!(sent(&mut c), "");
    assert!(c.is_closed());
}

fn plain(authzid: &str, user: &str, pass: &str) -> Vec<u8> {
    format!("{authzid}\0{user}\0{pass}").into_bytes()
}

#[test]
fn sasl_plain_with_initial_response() {
    let now = Instant::now();
    let mut c = greeted(now);
    let auth = c
        .send_command(
            now,
            Command::Auth {
                mechanism: Mechanism::new("PLAIN").unwrap(),
                initial_response: Some(plain("", "tim", "tanstaaftanstaaf")),
            },
        )
        .unwrap();
    assert_eq!(sent(&mut c), "AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n");
    c.handle_input(now, b"+OK Maildrop locked and ready\r\n");
    assert_eq!(events(&mut c), vec![ok(auth, "Maildrop locked and ready")]);
    assert_eq!(c.state(), ClientState::Transaction);
}

#[test]
fn sasl_empty_initial_response_and_challenges() {
    let now = Instant::now();
    let mut c = greeted(now);
    let stat = c.stat(now).unwrap();
    sent(&mut c);
    c.handle_input(now, b"+OK 0 0\r\n");
    events(&mut c);
    let auth = c
        .send_command(
            now,
            Command::Auth {
                mechanism: Mechanism::new("PLAIN").unwrap(),
                initial_response: Some(Vec::new()),
            },
        )
        .unwrap();
    let noop = c.noop(now).unwrap();
    // `=` is the empty initial response (RFC 5034 §4); AUTH is never pipelined.
    assert_eq!(sent(&mut c), "AUTH PLAIN =\r\n");
    assert!(c.poll_timeout().is_some());
    c.handle_input(now, b"+ \r\n");
    assert_eq!(
        events(&mut c),
        vec![ClientEvent::SaslChallengeReceived {
            id: auth,
            challenge: Vec::new()
        }]
    );
    // The application's turn: no timer, and no other id can answer.
    assert_eq!(c.poll_timeout(), None);
    assert_eq!(
        c.sasl_respond(now, stat, b"x").map_err(|e| e.kind),
        Err(SendErrorKind::UnknownId)
    );
    c.sasl_respond(now, auth, &plain("", "tim", "tanstaaftanstaaf"))
        .unwrap();
    assert_eq!(sent(&mut c), "AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n");
    assert_eq!(
        c.sasl_respond(now, auth, b"again").map_err(|e| e.kind),
        Err(SendErrorKind::UnknownId)
    );
    c.handle_input(now, b"-ERR [AUTH] Invalid credentials\r\n");
    assert_eq!(
        events(&mut c),
        vec![reply(
            auth,
            Reply::Status(StatusLine::err_with(
                ResponseCode::Auth,
                "Invalid credentials"
            ))
        )]
    );
    assert_eq!(sent(&mut c), "NOOP\r\n");
    c.handle_input(now, b"+OK\r\n");
    assert_eq!(events(&mut c), vec![ok(noop, "")]);
}

#[test]
fn sasl_login_challenges_and_cancel() {
    let now = Instant::now();
    let mut c = greeted(now);
    let auth = c
        .send_command(
            now,
            Command::Auth {
                mechanism: Mechanism::new("LOGIN").unwrap(),
                initial_response: None,
            },
        )
        .unwrap();
    assert_eq!(sent(&mut c), "AUTH LOGIN\r\n");
    c.handle_input(now, b"+ VXNlcm5hbWU6\r\n");
    assert_eq!(
        events(&mut c),
        vec![ClientEvent::SaslChallengeReceived {
            id: auth,
            challenge: b"Username:".to_vec()
        }]
    );
    c.sasl_respond(now, auth, b"tim").unwrap();
    assert_eq!(sent(&mut c), "dGlt\r\n");
    c.handle_input(now, b"+ UGFzc3dvcmQ6\r\n");
    assert_eq!(
        events(&mut c),
        vec![ClientEvent::SaslChallengeReceived {
            id: auth,
            challenge: b"Password:".to_vec()
        }]
    );
    c.sasl_cancel(now, auth).unwrap();
    assert_eq!(sent(&mut c), "*\r\n");
    c.handle_input(now, b"-ERR Authentication cancelled\r\n");
    assert_eq!(
        events(&mut c),
        vec![reply(
            auth,
            Reply::Status(StatusLine::err("Authentication cancelled"))
        )]
    );
    // The server may also end an exchange while the client's answer is due.
    let auth = c
        .send_command(
            now,
            Command::Auth {
                mechanism: Mechanism::new("LOGIN").unwrap(),
                initial_response: None,
            },
        )
        .unwrap();
    c.handle_input(now, b"+ VXNlcm5hbWU6\r\n-ERR [SYS/TEMP] timeout\r\n");
    assert_eq!(
        events(&mut c),
        vec![
            ClientEvent::SaslChallengeReceived {
                id: auth,
                challenge: b"Username:".to_vec()
            },
            reply(
                auth,
                Reply::Status(StatusLine::err_with(ResponseCode::SysTemp, "timeout"))
            ),
        ]
    );
    assert!(c.sasl_respond(now, auth, b"tim").is_err());
    assert_eq!(sent(&mut c), "AUTH LOGIN\r\n");
}

#[test]
fn long_initial_response_waits_for_empty_challenge() {
    let now = Instant::now();
    let mut c = greeted(now);
    let ir = vec![b'a'; 200]; // 268 base64 characters: the line would exceed 255 octets
    let auth = c
        .send_command(
            now,
            Command::Auth {
                mechanism: Mechanism::new("PLAIN").unwrap(),
                initial_response: Some(ir.clone()),
            },
        )
        .unwrap();
    assert_eq!(sent(&mut c), "AUTH PLAIN\r\n");
    c.handle_input(now, b"+ \r\n");
    assert_eq!(events(&mut c), vec![]);
    let mut want = Vec::new();
    pop3_proto::SaslResponse::Data(ir).encode(&mut want);
    assert_eq!(sent(&mut c).into_bytes(), want);
    c.handle_input(now, b"+OK\r\n");
    assert_eq!(events(&mut c), vec![ok(auth, "")]);
}

#[test]
fn stls_discards_injected_bytes() {
    let now = Instant::now();
    let mut c = greeted(now);
    c.capa(now).unwrap();
    c.handle_input(now, b"+OK\r\nSTLS\r\nPIPELINING\r\n.\r\n");
    events(&mut c);
    sent(&mut c);
    let stls = c.stls(now).unwrap();
    let capa = c.capa(now).unwrap();
    // STLS is a barrier even with PIPELINING.
    assert_eq!(sent(&mut c), "STLS\r\n");
    c.handle_input(now, b"+OK Begin TLS negotiation\r\n+OK fake\r\n");
    assert_eq!(
        events(&mut c),
        vec![
            ClientEvent::TlsReady { id: stls },
            ClientEvent::InjectionDiscarded { len: 10 },
        ]
    );
    assert_eq!(c.state(), ClientState::StartingTls);
    assert!(!c.wants_input());
    assert_eq!(c.poll_timeout(), None);
    c.handle_input(now, b"-ERR x\r\n");
    assert_eq!(
        events(&mut c),
        vec![ClientEvent::InjectionDiscarded { len: 8 }]
    );
    assert_eq!(sent(&mut c), "");
    c.handle_tls_established(now);
    assert!(c.is_tls_active());
    assert_eq!(
        c.capabilities(),
        None,
        "RFC 2595 §4: capabilities forgotten"
    );
    assert_eq!(c.state(), ClientState::Authorization);
    assert_eq!(sent(&mut c), "CAPA\r\n");
    c.handle_input(now, b"+OK\r\nUSER\r\n.\r\n");
    assert_eq!(
        events(&mut c),
        vec![reply(capa, Reply::Capabilities(vec![Capability::User]))]
    );
    // A second handshake notification is a no-op.
    c.handle_tls_established(now);
    assert_eq!(events(&mut c), vec![]);
}

#[test]
fn refused_stls_keeps_queued_commands_off_the_wire() {
    let now = Instant::now();
    let mut c = greeted(now);
    let stls = c.stls(now).unwrap();
    let user = c
        .send_command(now, Command::User(Param::new("alice").unwrap()))
        .unwrap();
    let pass = c
        .send_command(now, Command::Pass(PassText::new(b"secret").unwrap()))
        .unwrap();
    assert_eq!(sent(&mut c), "STLS\r\n");
    c.handle_input(now, b"-ERR Command not available\r\n");
    assert_eq!(
        events(&mut c),
        vec![
            reply(
                stls,
                Reply::Status(StatusLine::err("Command not available"))
            ),
            ClientEvent::ReplyFailed {
                id: user,
                error: ReplyError::NotSent
            },
            ClientEvent::ReplyFailed {
                id: pass,
                error: ReplyError::NotSent
            },
        ]
    );
    assert_eq!(sent(&mut c), "");
    assert!(!c.is_tls_active());
    assert_eq!(c.state(), ClientState::Authorization);
}

#[test]
fn server_closes_mid_multi_line() {
    let now = Instant::now();
    let mut c = greeted(now);
    let retr = c.retr(now, 1).unwrap();
    let noop = c.noop(now).unwrap();
    sent(&mut c);
    c.handle_input(now, b"+OK 120 octets\r\nSubject: cut\r\n\r\npart");
    assert_eq!(events(&mut c), vec![]);
    c.handle_eof(now);
    assert_eq!(
        events(&mut c),
        vec![
            ClientEvent::ReplyFailed {
                id: retr,
                error: ReplyError::Aborted
            },
            ClientEvent::ReplyFailed {
                id: noop,
                error: ReplyError::NotSent
            },
            ClientEvent::Closed {
                reason: ClientCloseReason::PeerClosed
            },
        ]
    );
    assert!(c.is_closed());
    assert_eq!(c.noop(now).map_err(|e| e.kind), Err(SendErrorKind::Closed));
}

#[test]
fn reply_timeout() {
    let t0 = Instant::now();
    let mut c = client(ClientLimits::default(), t0);
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(60)));
    c.handle_timeout(t0 + Duration::from_secs(59));
    assert_eq!(events(&mut c), vec![]);
    let t1 = t0 + Duration::from_secs(10);
    c.handle_input(t1, b"+OK hi\r\n");
    events(&mut c);
    // Greeted, nothing outstanding: no timer.
    assert_eq!(c.poll_timeout(), None);
    let t2 = t1 + Duration::from_secs(100);
    let retr = c.retr(t2, 1).unwrap();
    assert_eq!(c.poll_timeout(), Some(t2 + Duration::from_secs(60)));
    // Progress restarts the timer.
    let t3 = t2 + Duration::from_secs(50);
    c.handle_input(t3, b"+OK\r\nslow");
    assert_eq!(c.poll_timeout(), Some(t3 + Duration::from_secs(60)));
    c.handle_timeout(t3 + Duration::from_secs(59));
    assert_eq!(events(&mut c), vec![]);
    c.handle_timeout(t3 + Duration::from_secs(60));
    assert_eq!(
        events(&mut c),
        vec![
            ClientEvent::ReplyFailed {
                id: retr,
                error: ReplyError::Aborted
            },
            ClientEvent::Closed {
                reason: ClientCloseReason::Timeout
            },
        ]
    );
    assert_eq!(c.poll_timeout(), None);
    c.handle_timeout(t3 + Duration::from_secs(600));
    assert_eq!(events(&mut c), vec![]);
}

#[test]
fn message_too_large_is_reported_and_discarded() {
    let now = Instant::now();
    let mut c = client(
        ClientLimits {
            max_message_size: Some(10),
            ..ClientLimits::default()
        },
        now,
    );
    c.handle_input(now, b"+OK\r\n");
    events(&mut c);
    let exact = c.retr(now, 1).unwrap();
    sent(&mut c);
    c.handle_input(now, b"+OK\r\n123456789\n.\r\n");
    let big = c.retr(now, 2).unwrap();
    assert_eq!(sent(&mut c), "RETR 2\r\n");
    c.handle_input(now, b"+OK\r\n12345");
    c.handle_input(now, b"67890\r\n..more\r\n");
    assert_eq!(
        events(&mut c),
        vec![
            reply(
                exact,
                Reply::Message {
                    body: Bytes::from_static(b"123456789\n")
                }
            ),
            ClientEvent::ReplyFailed {
                id: big,
                error: ReplyError::MessageTooLarge { limit: 10 }
            },
        ]
    );
    c.handle_input(now, &vec![b'z'; 100_000]);
    c.handle_input(now, b"\r\n.\r\n");
    assert_eq!(events(&mut c), vec![]);
    let stat = c.stat(now).unwrap();
    assert_eq!(sent(&mut c), "STAT\r\n");
    c.handle_input(now, b"+OK 1 2\r\n");
    assert_eq!(
        events(&mut c),
        vec![reply(stat, Reply::Stat(DropListing { count: 1, size: 2 }))]
    );
}

#[test]
fn listing_limits() {
    let now = Instant::now();
    let mut c = client(
        ClientLimits {
            max_listing_size: Some(20),
            ..ClientLimits::default()
        },
        now,
    );
    c.handle_input(now, b"+OK\r\n");
    events(&mut c);
    let list = c.list(now, None).unwrap();
    c.handle_input(now, b"+OK\r\n1 1\r\n2 2\r\n3 3\r\n4 4\r\n5 5\r\n.\r\n");
    let long = c.uidl(now, None).unwrap();
    let mut wire = b"+OK\r\n1 ".to_vec();
    wire.extend(vec![b'u'; 9000]);
    wire.extend_from_slice(b"\r\n.\r\n");
    c.handle_input(now, &wire);
    assert_eq!(
        events(&mut c),
        vec![
            ClientEvent::ReplyFailed {
                id: list,
                error: ReplyError::ListingTooLarge { limit: 20 }
            },
            ClientEvent::ReplyFailed {
                id: long,
                error: ReplyError::ListingTooLarge { limit: 20 }
            },
        ]
    );
    let mut c = greeted(now);
    let long = c.uidl(now, None).unwrap();
    c.handle_input(now, &wire);
    assert_eq!(
        events(&mut c),
        vec![ClientEvent::ReplyFailed {
            id: long,
            error: ReplyError::LineTooLong
        }]
    );
    assert_eq!(c.state(), ClientState::Authorization);
}

#[test]
fn lang_and_auth_listings() {
    let now = Instant::now();
    let mut c = greeted(now);
    let lang = c.send_command(now, Command::Lang(None)).unwrap();
    c.handle_input(
        now,
        b"+OK Language listing follows\r\nen English\r\nde Deutsch\r\n.\r\n",
    );
    let mechs = c.send_command(now, Command::AuthList).unwrap();
    assert_eq!(sent(&mut c), "LANG\r\nAUTH\r\n");
    c.handle_input(now, b"+OK\r\nPLAIN\r\nNTLM\r\n.\r\n");
    let utf8 = c.utf8(now).unwrap();
    c.handle_input(now, b"+OK UTF8 enabled\r\n");
    let evs = events(&mut c);
    assert!(
        matches!(&evs[0], ClientEvent::ReplyReceived { id, reply: Reply::Languages(l) }
        if *id == lang && l.len() == 2 && l[1].tag == "de" && l[1].description == "Deutsch")
    );
    assert_eq!(
        evs[1..],
        [
            reply(
                mechs,
                Reply::Mechanisms(vec!["PLAIN".into(), "NTLM".into()])
            ),
            ok(utf8, "UTF8 enabled"),
        ]
    );
}

#[test]
fn protocol_violations_close() {
    let now = Instant::now();
    let cases: Vec<(&[u8], ClientCloseReason)> = vec![
        (
            b"* OK IMAP4rev1\r\n",
            ClientCloseReason::ProtocolViolation(ProtocolViolation::InvalidStatusLine(
                StatusLine::parse(b"* OK IMAP4rev1").expect_err("not POP3"),
            )),
        ),
        (
            b"+OK hi\r\n+OK unsolicited\r\n",
            ClientCloseReason::ProtocolViolation(ProtocolViolation::UnexpectedData),
        ),
        (
            b"+OK hi\r\n-ERR [SYS/TEMP] Disconnected for inactivity\r\n",
            ClientCloseReason::ClosedByServer(StatusLine::err_with(
                ResponseCode::SysTemp,
                "Disconnected for inactivity",
            )),
        ),
    ];
    for (input, reason) in cases {
        let mut c = client(ClientLimits::default(), now);
        c.handle_input(now, input);
        let evs = events(&mut c);
        assert_eq!(evs.last(), Some(&ClientEvent::Closed { reason }));
    }
    // A continuation to NOOP, and an overlong status line.
    let mut c = greeted(now);
    let noop = c.noop(now).unwrap();
    c.handle_input(now, b"+ abcd\r\n");
    assert_eq!(
        events(&mut c),
        vec![
            ClientEvent::ReplyFailed {
                id: noop,
                error: ReplyError::Aborted
            },
            ClientEvent::Closed {
                reason: ClientCloseReason::ProtocolViolation(
                    ProtocolViolation::UnexpectedContinuation
                )
            },
        ]
    );
    let mut c = greeted(now);
    c.noop(now).unwrap();
    c.handle_input(now, &vec![b'+'; 10_000]);
    assert!(matches!(
        events(&mut c).last(),
        Some(ClientEvent::Closed {
            reason: ClientCloseReason::ProtocolViolation(ProtocolViolation::LineTooLong)
        })
    ));
    // Bad base64 in a challenge.
    let mut c = greeted(now);
    c.send_command(
        now,
        Command::Auth {
            mechanism: Mechanism::new("LOGIN").unwrap(),
            initial_response: None,
        },
    )
    .unwrap();
    c.handle_input(now, b"+ !!!\r\n");
    assert!(matches!(
        events(&mut c).last(),
        Some(ClientEvent::Closed {
            reason: ClientCloseReason::ProtocolViolation(ProtocolViolation::InvalidChallenge(_))
        })
    ));
}

#[test]
fn close_by_application() {
    let now = Instant::now();
    let mut c = greeted(now);
    let noop = c.noop(now).unwrap();
    c.close(now);
    assert_eq!(
        events(&mut c),
        vec![
            ClientEvent::ReplyFailed {
                id: noop,
                error: ReplyError::Aborted
            },
            ClientEvent::Closed {
                reason: ClientCloseReason::Aborted
            },
        ]
    );
    assert_eq!(sent(&mut c), "", "queued output dropped");
    assert!(c.is_closed());
}

#[test]
fn debug_never_shows_queued_password() {
    let now = Instant::now();
    let mut c = greeted(now);
    c.send_command(now, Command::Pass(PassText::new(b"hunter2").unwrap()))
        .unwrap();
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
fn fuzz_seed_corpus() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fuzz/corpus/pop3_client_session"
    );
    for entry in std::fs::read_dir(dir).expect("seed corpus") {
        let path = entry.expect("entry").path();
        let data = std::fs::read(&path).expect("seed");
        pop3_proto::fuzzing::client_session(&data);
    }
}
