//! Byte-exact server transcripts with a virtual clock.

mod util;

use std::time::Duration;

use pop3_proto::{
    CloseReason, Event, Expire, Limits, Reply, Request, ResponseCode, SaslMechanism, SendErrorKind,
    ServerConfig, SessionOptions, State,
};
use util::{T, data, entries, entry};

const GREETING: &str = "+OK cas-rs POP3 server ready\r\n";

fn msg_of_size(n: usize, tag: &str) -> Vec<u8> {
    let mut m = format!("Subject: {tag}\r\n\r\n").into_bytes();
    m.resize(n - 2, b'x');
    m.extend_from_slice(b"\r\n");
    m
}

#[test]
fn rfc1939_section10_example() {
    let mut t = T::new(
        ServerConfig {
            greeting: "POP3 server ready".into(),
            apop_enabled: true,
            ..ServerConfig::default()
        },
        SessionOptions {
            tls_active: false,
            apop_timestamp: Some("<1896.697170952@dbc.mtview.ca.us>".into()),
        },
    );
    t.expect("+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n");
    t.c(b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n");
    let (id, req) = t.request();
    match req {
        Request::Apop {
            user,
            digest,
            timestamp,
        } => {
            assert_eq!(user, "mrose");
            assert_eq!(digest, "c4c9334bac560ecc979e58001b3e22fb");
            assert_eq!(timestamp, "<1896.697170952@dbc.mtview.ca.us>");
        }
        other => panic!("{other:?}"),
    }
    let m1 = msg_of_size(120, "one");
    let m2 = msg_of_size(200, "two");
    t.reply(
        id,
        Reply::LoginAccepted {
            maildrop: entries(&[&m1, &m2]),
        },
    );
    t.expect("+OK mrose's maildrop has 2 messages (320 octets)\r\n");
    assert_eq!(t.s.state(), State::Transaction);
    assert_eq!(t.s.user(), Some("mrose"));
    t.c(b"STAT\r\n");
    t.expect("+OK 2 320\r\n");
    t.c(b"LIST\r\n");
    t.expect("+OK 2 messages (320 octets)\r\n1 120\r\n2 200\r\n.\r\n");
    t.c(b"RETR 1\r\n");
    let (id, req) = t.request();
    assert!(matches!(
        req,
        Request::Retrieve {
            message: 1,
            top_lines: None,
            ..
        }
    ));
    t.reply(id, data(&m1, true));
    let m1s = String::from_utf8(m1.clone()).unwrap_or_default();
    t.expect(&format!("+OK 120 octets\r\n{m1s}.\r\n"));
    t.c(b"DELE 1\r\n");
    t.expect("+OK message 1 deleted\r\n");
    t.c(b"RETR 2\r\n");
    let (id, _) = t.request();
    t.reply(id, data(&m2, true));
    let m2s = String::from_utf8(m2.clone()).unwrap_or_default();
    t.expect(&format!("+OK 200 octets\r\n{m2s}.\r\n"));
    t.c(b"DELE 2\r\n");
    t.expect("+OK message 2 deleted\r\n");
    t.c(b"QUIT\r\n");
    let (id, req) = t.request();
    assert!(matches!(req, Request::Commit { ref deleted } if deleted == &[1, 2]));
    assert_eq!(t.s.state(), State::Update);
    t.reply(id, Reply::CommitSucceeded);
    t.expect("+OK POP3 server signing off (maildrop empty)\r\n");
    assert_eq!(t.closed(), CloseReason::Quit);
    assert!(t.s.is_closed());
}

const MSG: &[u8] = b"Subject: a\r\nFrom: b\r\n\r\nline 1\r\nline 2\r\nline 3\r\n";

#[test]
fn top_zero_is_headers_and_blank_line() {
    let mut t = T::plain();
    t.login(entries(&[MSG]));
    t.c(b"TOP 1 0\r\n");
    let (id, req) = t.request();
    assert!(matches!(
        req,
        Request::Retrieve {
            message: 1,
            top_lines: Some(0),
            ..
        }
    ));
    t.reply(id, data(MSG, true));
    t.expect("+OK top of message follows\r\nSubject: a\r\nFrom: b\r\n\r\n.\r\n");
}

#[test]
fn top_n_across_every_chunk_boundary() {
    let lf: Vec<u8> = MSG.iter().copied().filter(|&b| b != b'\r').collect();
    for msg in [MSG.to_vec(), lf] {
        for cut1 in 0..msg.len() {
            let cut2 = (cut1 + 5).min(msg.len());
            let mut t = T::plain();
            t.login(entries(&[&msg]));
            t.c(b"TOP 1 2\r\n");
            let (id, _) = t.request();
            t.reply(id, data(&msg[..cut1], false));
            let mut got = t.out();
            if t.s.wants_message_data() {
                t.reply(id, data(&msg[cut1..cut2], false));
                got += &t.out();
            }
            if t.s.wants_message_data() {
                t.reply(id, data(&msg[cut2..], true));
            } else {
                // Cutoff reached: the rest is accepted and ignored.
                t.reply(id, data(&msg[cut2..], true));
            }
            got += &t.out();
            assert_eq!(
                got,
                "+OK top of message follows\r\nSubject: a\r\nFrom: b\r\n\r\nline 1\r\nline 2\r\n.\r\n",
                "cut at {cut1}"
            );
            t.c(b"NOOP\r\n");
            t.expect("+OK\r\n");
        }
    }
}

#[test]
fn stuffing_after_lf_and_crlf_and_unterminated_last_line() {
    let msg: &[u8] = b"A: b\n\n.one\r\n.two\n..three\r\nlast";
    let mut t = T::plain();
    t.login(entries(&[msg]));
    t.c(b"RETR 1\r\n");
    let (id, _) = t.request();
    t.reply(id, data(&msg[..7], false));
    t.reply(id, data(&msg[7..], true));
    // size: 30 bytes + 3 bare LFs + the CRLF supplied to the unterminated last line
    t.expect("+OK 35 octets\r\nA: b\r\n\r\n..one\r\n..two\r\n...three\r\nlast\r\n.\r\n");
}

#[test]
fn dele_then_rset() {
    let mut t = T::plain();
    t.login(vec![entry(10, "a"), entry(20, "b"), entry(30, "c")]);
    t.c(b"DELE 2\r\nSTAT\r\nLIST\r\nUIDL\r\nLIST 2\r\nUIDL 2\r\nRETR 2\r\nTOP 2 1\r\nDELE 2\r\n");
    t.no_event();
    t.expect(
        "+OK message 2 deleted\r\n\
         +OK 2 40\r\n\
         +OK 2 messages (40 octets)\r\n1 10\r\n3 30\r\n.\r\n\
         +OK\r\n1 a\r\n3 c\r\n.\r\n\
         -ERR Message already deleted\r\n\
         -ERR Message already deleted\r\n\
         -ERR Message already deleted\r\n\
         -ERR Message already deleted\r\n\
         -ERR Message already deleted\r\n",
    );
    t.c(b"RSET\r\nSTAT\r\nLIST 2\r\nUIDL 3\r\nLIST 0\r\nLIST 4\r\nNOOP\r\n");
    t.expect(
        "+OK maildrop has 3 messages (60 octets)\r\n\
         +OK 3 60\r\n\
         +OK 2 20\r\n\
         +OK 3 c\r\n\
         -ERR No such message\r\n\
         -ERR No such message\r\n\
         +OK\r\n",
    );
    t.c(b"DELE 3\r\nQUIT\r\n");
    let (id, req) = t.request();
    assert!(matches!(req, Request::Commit { ref deleted } if deleted == &[3]));
    t.reply(id, Reply::CommitSucceeded);
    t.expect("+OK message 3 deleted\r\n+OK POP3 server signing off (2 messages left)\r\n");
}

#[test]
fn quit_from_authorization_commits_nothing() {
    let mut t = T::plain();
    t.c(b"USER alice\r\nQUIT\r\nNOOP\r\n");
    t.expect(&format!(
        "{GREETING}+OK Send PASS\r\n+OK POP3 server signing off\r\n"
    ));
    assert_eq!(t.closed(), CloseReason::Quit);
    t.no_event();
    assert!(t.s.is_closed());
    t.c(b"STAT\r\n");
    t.expect("");
}

#[test]
fn eof_in_transaction_commits_nothing() {
    let mut t = T::plain();
    t.login(entries(&[MSG]));
    t.c(b"DELE 1\r\n");
    t.expect("+OK message 1 deleted\r\n");
    t.s.handle_eof(t.now);
    assert_eq!(t.closed(), CloseReason::PeerClosed);
    t.no_event();
    assert!(t.s.is_closed());
    assert_eq!(t.s.poll_timeout(), None);
}

#[test]
fn pre_auth_timeout() {
    let mut t = T::plain();
    t.expect(GREETING);
    assert_eq!(t.s.poll_timeout(), Some(t.base + Duration::from_secs(60)));
    t.at(30);
    t.c(b"CAPA\r\n");
    t.out();
    assert_eq!(t.s.poll_timeout(), Some(t.base + Duration::from_secs(90)));
    t.at(89);
    t.s.handle_timeout(t.now); // spurious
    t.no_event();
    t.expect("");
    t.at(90);
    t.s.handle_timeout(t.now);
    t.expect("-ERR Autologout: no login in time, closing connection\r\n");
    assert_eq!(t.closed(), CloseReason::Timeout);
    assert!(t.s.is_closed());
}

#[test]
fn authenticated_timeout_and_no_commit() {
    let mut t = T::plain();
    t.at(10);
    t.login(entries(&[MSG]));
    t.c(b"DELE 1\r\n");
    t.out();
    assert_eq!(t.s.poll_timeout(), Some(t.base + Duration::from_secs(1810)));
    t.at(1809);
    t.s.handle_timeout(t.now);
    t.no_event();
    t.at(1810);
    t.s.handle_timeout(t.now);
    t.expect("-ERR Autologout: idle for too long, closing connection\r\n");
    assert_eq!(t.closed(), CloseReason::Timeout);
    t.no_event();
}

/// Logs in with one 1 MiB message and starts RETR, queuing as much as the session takes
/// without the client reading anything.
fn retr_large_unread(t: &mut T) -> pop3_proto::CommandId {
    let big = vec![b'x'; 1024 * 1024];
    t.login(vec![entry(big.len() as u64, "big")]);
    t.c(b"RETR 1\r\n");
    let (id, _) = t.request();
    t.reply(id, data(&big[..256 * 1024], false));
    assert!(!t.s.wants_message_data(), "above the high-water mark");
    id
}

#[test]
fn client_that_stops_reading_is_timed_out_and_its_output_dropped() {
    let mut t = T::plain();
    t.out();
    retr_large_unread(&mut t);
    t.at(1800);
    t.s.handle_timeout(t.now);
    // Nothing can be delivered to a client that does not read: no reply, buffers freed.
    assert_eq!(t.closed(), CloseReason::Timeout);
    assert!(t.s.is_closed());
    assert_eq!(t.out(), "");
    assert_eq!(t.s.poll_timeout(), None);
}

#[test]
fn slow_reader_keeps_the_transfer_alive() {
    let mut t = T::plain();
    t.out();
    let id = retr_large_unread(&mut t);
    // The client reads one chunk per timeout period: never idle, never closed.
    let mut buf = Vec::new();
    for period in 1..=3u64 {
        assert!(t.s.poll_transmit(&mut buf) > 0);
        t.at(1800 * period);
        t.s.handle_timeout(t.now);
        t.no_event();
        assert_eq!(
            t.s.poll_timeout(),
            Some(t.base + Duration::from_secs(1800 * (period + 1)))
        );
    }
    assert_eq!(t.s.state(), State::Transaction);
    // The application can still finish the message.
    while !t.s.wants_message_data() {
        assert!(t.s.poll_transmit(&mut buf) > 0);
    }
    t.reply(id, data(b"", true));
}

#[test]
fn small_replies_do_not_extend_the_pre_auth_timer() {
    let mut t = T::plain();
    t.out(); // the greeting, taken by the peer's kernel whether or not the client reads
    t.at(60);
    t.s.handle_timeout(t.now);
    t.expect("-ERR Autologout: no login in time, closing connection\r\n");
    assert_eq!(t.closed(), CloseReason::Timeout);
}

#[test]
fn timer_rearms_while_waiting_for_the_application() {
    let mut t = T::plain();
    t.out();
    t.c(b"USER a\r\nPASS b\r\n");
    let (id, _) = t.request();
    t.at(61);
    t.s.handle_timeout(t.now);
    t.no_event();
    assert_eq!(t.s.poll_timeout(), Some(t.base + Duration::from_secs(121)));
    t.reply(id, Reply::LoginAccepted { maildrop: vec![] });
    t.expect("+OK Send PASS\r\n+OK a's maildrop has 0 messages (0 octets)\r\n");
}

fn stls_config() -> ServerConfig {
    ServerConfig {
        stls_available: true,
        ..ServerConfig::default()
    }
}

#[test]
fn stls_discards_pipelined_injection() {
    let mut t = T::new(stls_config(), SessionOptions::default());
    t.c(b"STLS\r\nUSER evil\r\nPASS evil\r\n");
    t.expect(&format!("{GREETING}+OK Begin TLS negotiation\r\n"));
    assert!(matches!(t.event(), Event::TlsRequested));
    t.no_event();
    assert!(!t.s.wants_input());
    t.c(b"USER more-evil\r\n"); // still plain text: ignored
    t.no_event();
    t.expect("");
    t.s.handle_tls_established(t.now);
    assert!(t.s.is_tls_active());
    assert!(t.s.wants_input());
    t.c(b"PASS evil\r\n");
    t.expect("-ERR No username given, send USER first\r\n");
    t.no_event();
    t.c(b"STLS\r\n");
    t.expect("-ERR TLS already active\r\n");
    t.c(b"USER alice\r\nPASS secret\r\n");
    let (_, req) = t.request();
    assert!(matches!(req, Request::Login { ref user, .. } if user == "alice"));
}

#[test]
fn stls_refused_in_transaction_and_when_unavailable() {
    let mut t = T::plain();
    t.c(b"STLS\r\n");
    t.expect(&format!("{GREETING}-ERR Command not available\r\n"));
    t.no_event();
    let mut t = T::new(
        ServerConfig {
            stls_available: true,
            allow_clear_text_without_tls: true,
            ..ServerConfig::default()
        },
        SessionOptions::default(),
    );
    t.login(vec![]);
    t.c(b"STLS\r\n");
    t.expect("-ERR Command not valid in this state\r\n");
    t.no_event();
}

#[test]
fn clear_text_refused_before_tls() {
    let mut t = T::new(stls_config(), SessionOptions::default());
    t.c(b"CAPA\r\nUSER alice\r\nPASS secret\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nAUTH LOGIN\r\n");
    let refusal = "-ERR [AUTH] TLS is required for clear-text authentication, use STLS first\r\n";
    t.expect(&format!(
        "{GREETING}+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n\
         PIPELINING\r\nSTLS\r\n.\r\n{refusal}{refusal}{refusal}{refusal}"
    ));
    t.no_event();
    // A non-clear-text mechanism is allowed.
    let mut t = T::new(
        ServerConfig {
            sasl_mechanisms: vec![
                SaslMechanism::new("PLAIN", true),
                SaslMechanism::new("NTLM", false),
            ],
            ..ServerConfig::default()
        },
        SessionOptions::default(),
    );
    t.c(b"CAPA\r\nAUTH NTLM\r\n");
    t.expect(&format!(
        "{GREETING}+OK Capability list follows\r\nTOP\r\nUIDL\r\nSASL NTLM\r\nRESP-CODES\r\n\
         AUTH-RESP-CODE\r\nPIPELINING\r\n.\r\n"
    ));
    let (id, req) = t.request();
    assert!(matches!(
        req,
        Request::Authenticate { ref mechanism, initial_response: None } if mechanism == "NTLM"
    ));
    t.reply(id, Reply::SaslChallenge { data: vec![] });
    t.expect("+ \r\n");
}

#[test]
fn capa_before_and_after_tls_and_login() {
    let config = ServerConfig {
        stls_available: true,
        implementation: Some("cas-rs".into()),
        login_delay: Some(Duration::from_secs(900)),
        expire: Some(Expire::Never),
        utf8_enabled: true,
        languages: vec!["en".into()],
        ..ServerConfig::default()
    };
    let mut t = T::new(config, SessionOptions::default());
    t.out();
    t.c(b"CAPA\r\n");
    t.expect(
        "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n\
         PIPELINING\r\nSTLS\r\nLOGIN-DELAY 900\r\nEXPIRE NEVER\r\nUTF8 USER\r\nLANG\r\n\
         IMPLEMENTATION cas-rs\r\n.\r\n",
    );
    t.c(b"STLS\r\n");
    t.out();
    let _ = t.event();
    t.s.handle_tls_established(t.now);
    t.c(b"CAPA\r\n");
    t.expect(
        "+OK Capability list follows\r\nTOP\r\nUIDL\r\nUSER\r\nSASL PLAIN LOGIN\r\n\
         RESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nLOGIN-DELAY 900\r\nEXPIRE NEVER\r\n\
         UTF8 USER\r\nLANG\r\nIMPLEMENTATION cas-rs\r\n.\r\n",
    );
    t.login(vec![]);
    t.c(b"CAPA\r\n");
    t.expect(
        "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\n\
         LOGIN-DELAY 900\r\nEXPIRE NEVER\r\nLANG\r\nIMPLEMENTATION cas-rs\r\n.\r\n",
    );
}

#[test]
fn auth_plain_with_initial_response() {
    let mut t = T::plain();
    t.out();
    t.c(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n");
    let (id, req) = t.request();
    match req {
        Request::Authenticate {
            mechanism,
            initial_response,
        } => {
            assert_eq!(mechanism, "PLAIN");
            assert_eq!(initial_response.as_deref(), Some(&b"\0alice\0secret"[..]));
        }
        other => panic!("{other:?}"),
    }
    t.reply(
        id,
        Reply::LoginAccepted {
            maildrop: vec![entry(5, "x")],
        },
    );
    t.expect("+OK maildrop has 1 messages (5 octets)\r\n");
    assert_eq!(t.s.user(), None);
    assert_eq!(t.s.state(), State::Transaction);
}

#[test]
fn auth_plain_with_empty_initial_response() {
    let mut t = T::plain();
    t.out();
    t.c(b"auth plain =\r\n");
    let (id, req) = t.request();
    assert!(matches!(
        req,
        Request::Authenticate { initial_response: Some(ref ir), .. } if ir.is_empty()
    ));
    t.reply(id, Reply::SaslChallenge { data: vec![] });
    t.expect("+ \r\n");
    t.c(b"AGFsaWNlAHNlY3JldA==\r\n");
    let (id2, req) = t.request();
    assert_eq!(id2, id);
    assert!(matches!(req, Request::SaslResponse { ref data } if data == b"\0alice\0secret"));
    t.reply(
        id,
        Reply::LoginRejected {
            code: None,
            text: "Authentication failed".into(),
        },
    );
    t.expect("-ERR [AUTH] Authentication failed\r\n");
    assert_eq!(t.s.state(), State::Authorization);
}

#[test]
fn auth_cancelled_with_star() {
    let mut t = T::plain();
    t.out();
    t.c(b"AUTH PLAIN\r\n");
    let (id, _) = t.request();
    t.reply(id, Reply::SaslChallenge { data: vec![] });
    t.c(b"*\r\nNOOP\r\n");
    t.expect("+ \r\n-ERR Authentication cancelled\r\n-ERR Command not valid in this state\r\n");
    assert!(matches!(t.event(), Event::AuthenticationCancelled { id: c } if c == id));
    t.no_event();
}

#[test]
fn sasl_login_multi_step() {
    let mut t = T::plain();
    t.out();
    t.c(b"AUTH LOGIN\r\n");
    let (id, req) = t.request();
    assert!(
        matches!(req, Request::Authenticate { ref mechanism, initial_response: None } if mechanism == "LOGIN")
    );
    t.reply(
        id,
        Reply::SaslChallenge {
            data: b"Username:".to_vec(),
        },
    );
    t.expect("+ VXNlcm5hbWU6\r\n");
    t.c(b"YWxpY2U=\r\n");
    let (_, req) = t.request();
    assert!(matches!(req, Request::SaslResponse { ref data } if data == b"alice"));
    t.reply(
        id,
        Reply::SaslChallenge {
            data: b"Password:".to_vec(),
        },
    );
    t.expect("+ UGFzc3dvcmQ6\r\n");
    t.c(b"c2VjcmV0\r\n");
    let (_, req) = t.request();
    assert!(matches!(req, Request::SaslResponse { ref data } if data == b"secret"));
    t.reply(id, Reply::LoginAccepted { maildrop: vec![] });
    t.expect("+OK maildrop has 0 messages (0 octets)\r\n");
}

#[test]
fn sasl_line_limits_and_bad_base64() {
    let mut t = T::plain();
    t.out();
    t.c(b"AUTH LOGIN\r\n");
    let (id, _) = t.request();
    t.reply(id, Reply::SaslChallenge { data: vec![] });
    // A continuation line longer than the command limit but within the SASL limit is fine.
    let long = "QUFB".repeat(500);
    t.c(format!("{long}\r\n").as_bytes());
    let (_, req) = t.request();
    assert!(matches!(req, Request::SaslResponse { ref data } if data.len() == 1500));
    t.reply(id, Reply::SaslChallenge { data: vec![] });
    t.c(b"!!!\r\n");
    t.expect("+ \r\n+ \r\n-ERR Malformed authentication response, exchange aborted\r\n");
    assert!(matches!(t.event(), Event::AuthenticationCancelled { .. }));
    t.c(b"AUTH LOGIN\r\n");
    let (id, _) = t.request();
    t.reply(id, Reply::SaslChallenge { data: vec![] });
    t.c(format!("{}\r\nCAPA\r\n", "A".repeat(9000)).as_bytes());
    let out = t.out();
    assert!(
        out.starts_with("+ \r\n-ERR Malformed authentication response, exchange aborted\r\n+OK Capability list follows\r\n"),
        "{out}"
    );
    assert!(matches!(t.event(), Event::AuthenticationCancelled { .. }));
}

#[test]
fn overlong_command_line() {
    let mut t = T::plain();
    t.out();
    let long = "X".repeat(300);
    t.c(format!("{long}\r\nCAPA\r\n").as_bytes());
    let out = t.out();
    assert!(out.starts_with("-ERR Command line too long\r\n+OK Capability list follows\r\n"));
    // Split across chunks: the partial line is never buffered beyond the limit.
    t.c(&[b'Y'; 200]);
    t.c(&[b'Y'; 200]);
    t.c(&[b'Y'; 5000]);
    t.expect("-ERR Command line too long\r\n");
    t.c(b"YYY\r\nQUIT\r\n");
    t.expect("+OK POP3 server signing off\r\n");
    // A 255-octet line (CRLF included) is accepted.
    let mut t = T::plain();
    t.out();
    t.c(format!("USER {}\r\n", "u".repeat(248)).as_bytes());
    t.expect("+OK Send PASS\r\n");
    t.c(format!("USER {}\r\n", "u".repeat(249)).as_bytes());
    t.expect("-ERR Command line too long\r\n");
}

#[test]
fn too_many_bad_commands() {
    let mut t = T::plain();
    t.out();
    for _ in 0..9 {
        t.c(b"XYZZY\r\n");
        t.expect("-ERR Unknown command\r\n");
    }
    t.c(b"STAT\r\n");
    t.expect("-ERR Too many bad commands, closing connection\r\n");
    assert_eq!(t.closed(), CloseReason::TooManyBadCommands);
    assert!(t.s.is_closed());
}

#[test]
fn in_use_rejection_is_not_an_auth_failure() {
    let mut t = T::plain();
    t.out();
    for _ in 0..5 {
        t.c(b"USER alice\r\nPASS secret\r\n");
        let (id, _) = t.request();
        t.reply(
            id,
            Reply::LoginRejected {
                code: Some(ResponseCode::InUse),
                text: "Do you have another POP session running?".into(),
            },
        );
        t.expect("+OK Send PASS\r\n-ERR [IN-USE] Do you have another POP session running?\r\n");
    }
    t.no_event();
    assert_eq!(t.s.state(), State::Authorization);
}

#[test]
fn too_many_auth_failures() {
    let mut t = T::plain();
    t.out();
    for i in 0..3 {
        t.c(b"USER alice\r\nPASS wrong password\r\n");
        let (id, req) = t.request();
        match req {
            Request::Login { password, .. } => {
                assert_eq!(password.expose(), b"wrong password");
                assert_eq!(format!("{password:?}"), "Secret(..)");
            }
            other => panic!("{other:?}"),
        }
        t.reply(
            id,
            Reply::LoginRejected {
                code: Some(ResponseCode::Auth),
                text: "Bad login".into(),
            },
        );
        if i < 2 {
            t.expect("+OK Send PASS\r\n-ERR [AUTH] Bad login\r\n");
        }
    }
    t.expect(
        "+OK Send PASS\r\n-ERR [AUTH] Too many authentication failures, closing connection\r\n",
    );
    assert_eq!(t.closed(), CloseReason::TooManyAuthFailures);
}

#[test]
fn pass_without_user_and_user_after_failure() {
    let mut t = T::plain();
    t.out();
    t.c(b"PASS x\r\n");
    t.expect("-ERR No username given, send USER first\r\n");
    t.c(b"USER a\r\nPASS  two  spaces \r\n");
    let (id, req) = t.request();
    assert!(
        matches!(req, Request::Login { ref password, .. } if password.expose() == b" two  spaces ")
    );
    t.reply(
        id,
        Reply::LoginRejected {
            code: None,
            text: "no".into(),
        },
    );
    t.c(b"PASS again\r\n");
    t.expect("+OK Send PASS\r\n-ERR [AUTH] no\r\n-ERR No username given, send USER first\r\n");
}

#[test]
fn utf8_and_lang_state_rules() {
    let mut t = T::plain();
    t.out();
    t.c(b"UTF8\r\nLANG\r\n");
    t.expect("-ERR Command not available\r\n-ERR Command not available\r\n");
    let mut t = T::new(
        ServerConfig {
            allow_clear_text_without_tls: true,
            utf8_enabled: true,
            languages: vec!["en".into(), "de".into()],
            ..ServerConfig::default()
        },
        SessionOptions::default(),
    );
    t.out();
    t.c(b"UTF8\r\nLANG\r\nLANG DE\r\nLANG fr\r\nLANG *\r\n");
    t.expect(
        "+OK UTF8 enabled\r\n\
         +OK Language listing follows\r\nen en\r\nde de\r\n.\r\n\
         +OK de Language changed\r\n\
         -ERR Unsupported language\r\n\
         +OK en Language changed\r\n",
    );
    assert!(t.s.is_utf8());
    assert_eq!(t.s.language(), Some("en"));
    t.c("USER j\u{f6}rg\r\nPASS p\r\n".as_bytes());
    let (id, req) = t.request();
    assert!(matches!(req, Request::Login { ref user, .. } if user == "j\u{f6}rg"));
    t.reply(id, Reply::LoginAccepted { maildrop: vec![] });
    t.out();
    t.c(b"UTF8\r\nLANG de\r\n");
    t.expect("-ERR Command not valid in this state\r\n+OK de Language changed\r\n");
}

#[test]
fn apop_off_by_default() {
    let mut t = T::new(
        ServerConfig::default(),
        SessionOptions {
            tls_active: false,
            apop_timestamp: Some("<1.2@host>".into()),
        },
    );
    t.c(b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n");
    t.expect(&format!("{GREETING}-ERR Command not available\r\n"));
    t.no_event();
}

#[test]
fn apop_on_without_timestamp_is_unavailable() {
    let mut t = T::new(
        ServerConfig {
            apop_enabled: true,
            ..ServerConfig::default()
        },
        SessionOptions::default(),
    );
    t.c(b"APOP mrose C4C9334BAC560ECC979E58001B3E22FB\r\n");
    t.expect(&format!("{GREETING}-ERR Command not available\r\n"));
}

#[test]
fn send_misuse_hands_the_value_back() {
    let mut t = T::plain();
    t.out();
    t.c(b"USER a\r\nPASS b\r\n");
    let (id, _) = t.request();
    let err =
        t.s.send(id, data(b"x", true))
            .expect_err("MessageData for a login");
    assert_eq!(err.kind, SendErrorKind::UnexpectedReply);
    assert!(matches!(err.into_inner(), Reply::MessageData { .. }));
    t.reply(id, Reply::LoginAccepted { maildrop: vec![] });
    let err =
        t.s.send(id, Reply::CommitSucceeded)
            .expect_err("id already answered");
    assert_eq!(err.kind, SendErrorKind::UnknownId);
    t.s.close(t.now, "server shutting down");
    t.expect("+OK Send PASS\r\n+OK a's maildrop has 0 messages (0 octets)\r\n-ERR [SYS/TEMP] server shutting down\r\n");
    assert_eq!(
        t.closed(),
        CloseReason::Shutdown("server shutting down".into())
    );
    let err = t.s.send(id, Reply::CommitSucceeded).expect_err("closed");
    assert_eq!(err.kind, SendErrorKind::Closed);
}

#[test]
fn close_with_code_sends_the_applications_code_and_commits_nothing() {
    let mut t = T::plain();
    t.login(vec![entry(3, "a")]);
    t.c(b"DELE 1\r\n");
    t.out();
    t.s.close_with_code(t.now, ResponseCode::Auth, "POP3 access is disabled");
    t.expect("-ERR [AUTH] POP3 access is disabled\r\n");
    assert_eq!(
        t.closed(),
        CloseReason::Shutdown("POP3 access is disabled".into())
    );
}

#[test]
fn message_unavailable_and_commit_failed() {
    let mut t = T::plain();
    t.login(vec![entry(3, "a")]);
    t.c(b"RETR 1\r\nDELE 1\r\nQUIT\r\n");
    let (id, _) = t.request();
    t.no_event();
    t.reply(
        id,
        Reply::MessageUnavailable {
            text: "Message could not be read".into(),
        },
    );
    let (id, req) = t.request();
    assert!(matches!(req, Request::Commit { ref deleted } if deleted == &[1]));
    t.reply(
        id,
        Reply::CommitFailed {
            text: "some deleted messages not removed".into(),
        },
    );
    t.expect(
        "-ERR Message could not be read\r\n+OK message 1 deleted\r\n\
         -ERR [SYS/TEMP] some deleted messages not removed\r\n",
    );
    assert_eq!(t.closed(), CloseReason::Quit);
}

#[test]
fn pipelined_commands_wait_for_the_retrieval() {
    let mut t = T::plain();
    t.login(entries(&[b"a\r\n", b"b\r\n"]));
    t.c(b"RETR 1\r\nSTAT\r\nRETR 2\r\n");
    let (id, _) = t.request();
    t.no_event();
    assert!(!t.s.wants_input());
    assert!(t.s.wants_message_data());
    t.reply(id, data(b"a\r\n", true));
    let (id2, req) = t.request();
    assert!(matches!(req, Request::Retrieve { message: 2, .. }));
    t.reply(id2, data(b"b\r\n", true));
    t.expect("+OK 3 octets\r\na\r\n.\r\n+OK 2 6\r\n+OK 3 octets\r\nb\r\n.\r\n");
}

#[test]
fn back_pressure_and_bounded_transmit() {
    let mut t = T::new(
        ServerConfig {
            allow_clear_text_without_tls: true,
            limits: Limits {
                transmit_chunk: 1000,
                max_buffered_output: 4000,
                ..Limits::default()
            },
            ..ServerConfig::default()
        },
        SessionOptions::default(),
    );
    let line = b".0123456789012345678901234567890123456789012345678901234567890123456789\n";
    let msg: Vec<u8> = line
        .iter()
        .copied()
        .cycle()
        .take(line.len() * 1000)
        .collect();
    t.login(entries(&[&msg]));
    t.c(b"RETR 1\r\n");
    let (id, _) = t.request();
    let mut out = Vec::new();
    let mut sent = 0;
    let mut max_queued_chunks = 0;
    while sent < msg.len() {
        let mut chunks = 0;
        while t.s.wants_message_data() && sent < msg.len() {
            let end = (sent + 999).min(msg.len());
            t.reply(id, data(&msg[sent..end], end == msg.len()));
            sent = end;
            chunks += 1;
        }
        max_queued_chunks = max_queued_chunks.max(chunks);
        let n = t.s.poll_transmit(&mut out);
        assert!(n <= 1000, "{n}");
    }
    assert!(max_queued_chunks <= 5, "{max_queued_chunks}");
    while t.s.poll_transmit(&mut out) > 0 {}
    let header = format!("+OK {} octets\r\n", msg.len() + 1000);
    assert!(out.starts_with(header.as_bytes()));
    let body = &out[header.len()..];
    assert_eq!(body.len(), msg.len() + 2000 + 3);
    assert!(body.starts_with(b"..0123"));
    assert!(body.ends_with(b"789\r\n.\r\n"));
    assert!(t.s.wants_input());
}

#[test]
fn buffered_input_limit_closes() {
    let mut t = T::new(
        ServerConfig {
            allow_clear_text_without_tls: true,
            limits: Limits {
                max_buffered_input: 1024,
                max_sasl_response: 512,
                ..Limits::default()
            },
            ..ServerConfig::default()
        },
        SessionOptions::default(),
    );
    t.login(entries(&[b"a\r\n"]));
    let mut flood = b"RETR 1\r\n".to_vec();
    flood.extend(b"NOOP\r\n".repeat(300));
    t.c(&flood);
    let (_, _) = t.request();
    assert_eq!(t.closed(), CloseReason::InputLimitExceeded);
    t.expect("-ERR Too much pipelined input, closing connection\r\n");
}

#[test]
fn commands_in_the_wrong_state() {
    let mut t = T::plain();
    t.out();
    t.c(b"STAT\r\nLIST\r\nRETR 1\r\nNOOP\r\n");
    t.expect(&"-ERR Command not valid in this state\r\n".repeat(4));
    t.login(vec![]);
    t.c(b"USER a\r\nPASS b\r\nAUTH PLAIN\r\nAPOP a c4c9334bac560ecc979e58001b3e22fb\r\n");
    t.expect(&"-ERR Command not valid in this state\r\n".repeat(4));
    t.no_event();
}

#[test]
fn auth_list_and_unknown_mechanism() {
    let mut t = T::plain();
    t.out();
    t.c(b"AUTH\r\nAUTH CRAM-MD5\r\n");
    t.expect(
        "+OK SASL mechanisms follow\r\nPLAIN\r\nLOGIN\r\n.\r\n\
         -ERR Unsupported authentication mechanism\r\n",
    );
}

#[test]
fn implicit_tls_allows_clear_text() {
    let mut t = T::new(
        stls_config(),
        SessionOptions {
            tls_active: true,
            apop_timestamp: None,
        },
    );
    t.c(b"STLS\r\nUSER a\r\n");
    t.expect(&format!(
        "{GREETING}-ERR TLS already active\r\n+OK Send PASS\r\n"
    ));
}

#[test]
fn config_validation() {
    assert_eq!(ServerConfig::default().validate(), Ok(()));
    let mut c = ServerConfig::default();
    c.limits.max_command_line = 39;
    assert!(c.validate().is_err());
    c.limits.max_command_line = 1024;
    assert_eq!(c.validate(), Ok(()));
    c.limits.max_command_line = 1025;
    assert!(c.validate().is_err());
    let mut c = ServerConfig::default();
    c.limits.max_bad_commands = Some(0);
    assert!(c.validate().is_err());
    let mut c = ServerConfig::default();
    c.sasl_mechanisms
        .push(SaslMechanism::new("bad name", false));
    assert!(c.validate().is_err());
    let c = ServerConfig {
        greeting: "a\r\nb".into(),
        ..ServerConfig::default()
    };
    assert!(c.validate().is_err());
    let c = ServerConfig {
        languages: vec!["*".into()],
        ..ServerConfig::default()
    };
    assert!(c.validate().is_err());
}
