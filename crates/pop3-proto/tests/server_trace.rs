//! The opt-in dialogue trace (`ServerConfig::trace`): one event per command line read and per
//! status line queued, secrets redacted, and nothing at all when the trace is off.

mod util;

use base64::Engine as _;
use pop3_proto::{
    CommandId, Event, Limits, MAX_TRACE_LINE, Reply, Request, SaslMechanism, ServerConfig,
    SessionOptions,
};
use util::{T, data, entries};

/// Credentials used below; none may ever appear in a trace line.
const SECRETS: [&str; 4] = [
    "s3cr3t-pw",
    "c4c9334bac560ecc979e58001b3e22fb",
    "AGFsaWNl",
    "==",
];

fn traced(trace: bool, allow_clear_text: bool) -> T {
    T::new(
        ServerConfig {
            allow_clear_text_without_tls: allow_clear_text,
            apop_enabled: true,
            trace,
            limits: Limits {
                max_auth_failures: None,
                max_bad_commands: None,
                ..Limits::default()
            },
            sasl_mechanisms: vec![
                SaslMechanism::new("PLAIN", true),
                SaslMechanism::new("LOGIN", true),
            ],
            ..ServerConfig::default()
        },
        SessionOptions {
            tls_active: false,
            apop_timestamp: Some("<1896.697170952@dbc.mtview.ca.us>".into()),
        },
    )
}

/// Drains the events: trace lines as `C: ...` / `S: ...`, and the request, if any.
fn pump(t: &mut T) -> (Vec<String>, Option<(CommandId, Request)>) {
    let mut lines = Vec::new();
    let mut request = None;
    while let Some(ev) = t.s.poll_event() {
        match ev {
            Event::CommandTraced { line } => lines.push(format!("C: {line}")),
            Event::ReplyTraced { line } => lines.push(format!("S: {line}")),
            Event::CommandReceived { id, command } => {
                assert!(request.is_none(), "two requests at once");
                request = Some((id, command));
            }
            other => lines.push(format!("event: {other:?}")),
        }
    }
    (lines, request)
}

/// Sends `input`, then returns the trace lines and the request it raised.
fn say(t: &mut T, input: &[u8]) -> (Vec<String>, Option<(CommandId, Request)>) {
    t.c(input);
    let result = pump(t);
    t.out();
    result
}

#[track_caller]
fn assert_no_secret(lines: &[String]) {
    for line in lines {
        for secret in SECRETS {
            assert!(!line.contains(secret), "secret {secret:?} in {line:?}");
        }
    }
}

#[test]
fn commands_answered_by_the_session_are_traced_with_their_status_lines() {
    let mut t = traced(true, true);
    let mut log = Vec::new();
    let (lines, _) = pump(&mut t);
    log.extend(lines);
    t.out();
    let (lines, req) = say(&mut t, b"CAPA\r\nUSER alice\r\nPASS s3cr3t-pw\r\n");
    log.extend(lines);
    let (id, req) = req.expect("login request");
    assert!(matches!(req, Request::Login { .. }));
    let m1 = b"Subject: one\r\n\r\nbody\r\n";
    let m2 = b"Subject: two\r\n\r\nmore\r\n";
    t.reply(
        id,
        Reply::LoginAccepted {
            maildrop: entries(&[m1, m2]),
        },
    );
    log.extend(pump(&mut t).0);
    t.out();
    let (lines, req) = say(
        &mut t,
        b"STAT\r\nLIST\r\nLIST 2\r\nUIDL\r\nDELE 1\r\nRSET\r\nNOOP\r\nRETR 2\r\n",
    );
    log.extend(lines);
    let (id, _) = req.expect("retrieve request");
    t.reply(id, data(m2, true));
    log.extend(pump(&mut t).0);
    t.out();
    log.extend(pump(&mut t).0);
    let (lines, req) = say(&mut t, b"DELE 2\r\nQUIT\r\n");
    log.extend(lines);
    let (id, _) = req.expect("commit request");
    t.reply(id, Reply::CommitSucceeded);
    log.extend(pump(&mut t).0);
    assert_eq!(
        log,
        [
            "S: +OK cas-rs POP3 server ready <1896.697170952@dbc.mtview.ca.us>",
            "C: CAPA",
            "S: +OK Capability list follows",
            "C: USER alice",
            "S: +OK Send PASS",
            "C: PASS ****",
            "S: +OK alice's maildrop has 2 messages (44 octets)",
            "C: STAT",
            "S: +OK 2 44",
            "C: LIST",
            "S: +OK 2 messages (44 octets)",
            "C: LIST 2",
            "S: +OK 2 22",
            "C: UIDL",
            "S: +OK",
            "C: DELE 1",
            "S: +OK message 1 deleted",
            "C: RSET",
            "S: +OK maildrop has 2 messages (44 octets)",
            "C: NOOP",
            "S: +OK",
            "C: RETR 2",
            "S: +OK 22 octets",
            "C: DELE 2",
            "S: +OK message 2 deleted",
            "C: QUIT",
            "S: +OK POP3 server signing off (1 messages left)",
            "event: Closed { reason: Quit }",
        ]
    );
}

#[test]
fn secrets_never_appear_in_the_trace() {
    let mut t = traced(true, true);
    let mut log = pump(&mut t).0;
    t.out();
    // APOP digest.
    let (lines, req) = say(&mut t, b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n");
    log.extend(lines.clone());
    assert_eq!(lines, ["C: APOP mrose ****"]);
    let (id, _) = req.expect("apop request");
    t.reply(
        id,
        Reply::LoginRejected {
            code: None,
            text: "no".into(),
        },
    );
    log.extend(pump(&mut t).0);
    t.out();
    // AUTH PLAIN with an initial response.
    let plain = base64::engine::general_purpose::STANDARD.encode(b"\0alice\0s3cr3t-pw");
    let (lines, req) = say(&mut t, format!("AUTH PLAIN {plain}\r\n").as_bytes());
    assert_eq!(lines, ["C: AUTH PLAIN ****"]);
    log.extend(lines);
    let (id, _) = req.expect("auth request");
    t.reply(
        id,
        Reply::LoginRejected {
            code: None,
            text: "no".into(),
        },
    );
    log.extend(pump(&mut t).0);
    t.out();
    // AUTH LOGIN: every continuation line redacted, the challenges not traced.
    let (lines, req) = say(&mut t, b"auth login\r\n");
    assert_eq!(lines, ["C: AUTH login"]);
    let (id, _) = req.expect("auth request");
    t.reply(
        id,
        Reply::SaslChallenge {
            data: b"Username:".to_vec(),
        },
    );
    assert!(
        pump(&mut t).0.is_empty(),
        "a challenge is not a status line"
    );
    t.out();
    let (lines, req) = say(&mut t, b"YWxpY2U=\r\n");
    assert_eq!(lines, ["C: ****"]);
    let (id, _) = req.expect("sasl response");
    t.reply(
        id,
        Reply::SaslChallenge {
            data: b"Password:".to_vec(),
        },
    );
    t.out();
    let (lines, req) = say(&mut t, b"czNjcjN0LXB3\r\n");
    assert_eq!(lines, ["C: ****"]);
    let (id, _) = req.expect("sasl response");
    t.reply(
        id,
        Reply::SaslChallenge {
            data: b"more".to_vec(),
        },
    );
    t.out();
    // A cancellation is redacted too; the reply tells what happened.
    let (lines, _) = say(&mut t, b"*\r\n");
    assert_eq!(
        lines[..2],
        [
            "C: ****".to_owned(),
            "S: -ERR Authentication cancelled".to_owned()
        ]
    );
    log.extend(lines);
    // Malformed or oddly spaced PASS lines, and a base64 credential sent out of turn.
    let (lines, req) = say(&mut t, b"USER alice\r\npass\ts3cr3t-pw\r\n");
    assert!(req.is_none(), "a tab is not a separator");
    assert_eq!(
        lines,
        [
            "C: USER alice",
            "S: +OK Send PASS",
            "C: PASS ****",
            "S: -ERR Syntax error"
        ]
    );
    log.extend(lines);
    let (lines, req) = say(&mut t, b"PASS  s3cr3t-pw extra\r\n");
    assert_eq!(lines[0], "C: PASS ****");
    log.extend(lines);
    if let Some((id, _)) = req {
        t.reply(
            id,
            Reply::LoginRejected {
                code: None,
                text: "no".into(),
            },
        );
        log.extend(pump(&mut t).0);
        t.out();
    }
    let (lines, _) = say(&mut t, b"AGFsaWNlAHMzY3IzdC1wdw==\r\n");
    assert_eq!(lines[0], "C: (unrecognized command, 24 octets)");
    log.extend(lines);
    assert_no_secret(&log);
}

#[test]
fn refusals_and_errors_of_the_session_are_traced() {
    let mut t = T::new(
        ServerConfig {
            trace: true,
            limits: Limits {
                max_command_line: 64,
                ..Limits::default()
            },
            ..ServerConfig::default()
        },
        SessionOptions::default(),
    );
    pump(&mut t);
    t.out();
    let long = format!("NOOP {}\r\n", "x".repeat(100));
    let (lines, _) = say(&mut t, b"STAT\r\nUSER alice\r\nFOO\r\n");
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert_eq!(lines[0], "C: STAT");
    assert!(lines[1].starts_with("S: -ERR"), "{lines:?}");
    assert_eq!(lines[2], "C: USER alice");
    assert!(
        lines[3].starts_with("S: -ERR"),
        "clear text refused: {lines:?}"
    );
    assert_eq!(lines[4], "C: (unrecognized command, 3 octets)");
    assert!(lines[5].starts_with("S: -ERR"), "{lines:?}");
    let (lines, _) = say(&mut t, long.as_bytes());
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0], "C: (line too long)");
    assert!(lines[1].starts_with("S: -ERR"), "{lines:?}");
}

#[test]
fn trace_lines_are_bounded_and_printable() {
    let mut line = b"LIST ".to_vec();
    line.extend(std::iter::repeat_n(b'\x01', 20));
    line.extend([0xff, 0xfe]);
    line.extend(std::iter::repeat_n(b'9', 200));
    line.extend(b"\r\n");
    let mut t2 = T::new(
        ServerConfig {
            trace: true,
            allow_clear_text_without_tls: true,
            limits: Limits {
                max_command_line: 1024,
                ..Limits::default()
            },
            ..ServerConfig::default()
        },
        SessionOptions::default(),
    );
    pump(&mut t2);
    t2.out();
    let (lines, _) = say(&mut t2, &line);
    let command = lines[0].strip_prefix("C: ").expect("command line");
    assert!(command.starts_with("LIST ?????"), "{command:?}");
    assert!(command.contains('\u{fffd}'));
    assert!(command.ends_with("..."));
    assert_eq!(command.chars().count(), MAX_TRACE_LINE + 3);
    assert!(!command.chars().any(char::is_control));
}

#[test]
fn without_the_trace_no_trace_event_appears() {
    let mut t = traced(false, true);
    let script: &[&[u8]] = &[
        b"CAPA\r\nFOO\r\nAPOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n",
        b"USER alice\r\nPASS s3cr3t-pw\r\n",
        b"STAT\r\nLIST\r\nUIDL\r\nDELE 1\r\nRSET\r\nNOOP\r\nQUIT\r\n",
    ];
    let mut events = 0;
    for input in script {
        t.c(input);
        while let Some(ev) = t.s.poll_event() {
            events += 1;
            match ev {
                Event::CommandTraced { .. } | Event::ReplyTraced { .. } => {
                    panic!("trace event with the trace off: {ev:?}")
                }
                Event::CommandReceived { id, command } => {
                    let reply = match command {
                        Request::Commit { .. } => Reply::CommitSucceeded,
                        Request::Login { .. } => Reply::LoginAccepted {
                            maildrop: entries(&[b"a\r\n"]),
                        },
                        _ => Reply::LoginRejected {
                            code: None,
                            text: "no".into(),
                        },
                    };
                    t.reply(id, reply);
                }
                _ => {}
            }
            t.out();
        }
        t.out();
    }
    assert!(events >= 3, "the script reached the application");
}
