//! ClientSession transcripts against scripted servers: exact bytes sent, exact events, with a
//! virtual clock. Greetings and capability lists are those of real servers (INTEROP.md and
//! the RFC 9051 §8 example).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cas_imap_proto::client::{
    AbortReason, ClientCloseReason, ClientConfig, ClientLimits, ClientOptions, ClientSession,
    ClientState, CommandHandle, Event, ProtocolViolation, SendErrorKind,
};
use cas_imap_proto::code::ResponseCode;
use cas_imap_proto::command::{CommandBody, FetchAttribute, FetchAttributes, SearchKey};
use cas_imap_proto::encode::LiteralPolicy;
use cas_imap_proto::fragmentizer::LimitExceeded;
use cas_imap_proto::response::{Data, FetchItem, Status};
use cas_imap_proto::types::{
    AString, Atom, Capability, Flag, ListMailbox, Mailbox, SeqOrUid, SequenceSet, SequenceSetArg,
};

fn config(tls_free_logins: bool) -> Arc<ClientConfig> {
    Arc::new(ClientConfig {
        limits: ClientLimits::default(),
        allow_cleartext_credentials: tls_free_logins,
    })
}

fn client(now: Instant, tls: bool) -> ClientSession {
    ClientSession::new(config(false), now, ClientOptions { tls_active: tls })
}

fn events(c: &mut ClientSession) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn sent(c: &mut ClientSession) -> Vec<u8> {
    let mut out = Vec::new();
    while c.poll_transmit(&mut out) > 0 {}
    out
}

fn sent_str(c: &mut ClientSession) -> String {
    String::from_utf8(sent(c)).expect("ASCII here")
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

fn astr(s: &[u8]) -> AString<'_> {
    AString::from_bytes(s)
}

/// Asserts `events` ends with a completion of `handle` with `status`, and returns the events
/// before it.
fn completed(events: &[Event], handle: CommandHandle, status: Status) -> &[Event] {
    match events.split_last() {
        Some((
            Event::Completed {
                handle: h,
                status: s,
                ..
            },
            rest,
        )) if *h == handle && *s == status => rest,
        _ => panic!("expected {handle} {status:?} last, got {events:#?}"),
    }
}

/// A client greeted by a Dovecot-like server over implicit TLS.
fn dovecot(now: Instant) -> ClientSession {
    let mut c = client(now, true);
    c.handle_input(
        now,
        b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN] Dovecot ready.\r\n",
    );
    let ev = events(&mut c);
    assert!(
        matches!(
            ev.as_slice(),
            [Event::GreetingReceived {
                preauth: false,
                code: Some(ResponseCode::Capability(_)),
                ..
            }]
        ),
        "{ev:?}"
    );
    assert_eq!(c.state(), ClientState::NotAuthenticated);
    c
}

/// Logged in to a Dovecot-like server.
fn logged_in(now: Instant) -> ClientSession {
    let mut c = dovecot(now);
    let h = c.login(now, astr(b"alice"), astr(b"pw")).unwrap();
    assert_eq!(sent_str(&mut c), "A1 LOGIN alice pw\r\n");
    c.handle_input(
        now,
        b"A1 OK [CAPABILITY IMAP4rev1 SASL-IR ID ENABLE IDLE SORT LITERAL+ UIDPLUS MOVE] Logged in\r\n",
    );
    completed(&events(&mut c), h, Status::Ok);
    assert_eq!(c.state(), ClientState::Authenticated);
    c
}

#[test]
fn nothing_is_sent_before_the_greeting_and_tags_increase() {
    let now = Instant::now();
    let mut c = client(now, true);
    let a = c.capability(now).unwrap();
    let b = c.noop(now).unwrap();
    assert!(a < b);
    assert!(sent(&mut c).is_empty());
    assert_eq!(c.poll_timeout(), Some(now + Duration::from_secs(120)));
    c.handle_input(now, b"* OK ready\r\n");
    assert_eq!(sent_str(&mut c), "A1 CAPABILITY\r\n");
    c.handle_input(
        now,
        b"* CAPABILITY IMAP4rev1 LITERAL+ IDLE\r\nA1 OK done\r\n",
    );
    let ev = events(&mut c);
    assert!(matches!(&ev[0], Event::GreetingReceived { .. }));
    assert!(matches!(
        &ev[1],
        Event::DataReceived { handle: Some(h), data: Data::Capability(caps) } if *h == a && caps.len() == 3
    ));
    completed(&ev[2..], a, Status::Ok);
    assert!(c.has_capability(&Capability::Idle));
    assert_eq!(c.literal_policy(), LiteralPolicy::LiteralPlus);
    // Serial: NOOP only now.
    assert_eq!(sent_str(&mut c), "A2 NOOP\r\n");
    c.handle_input(now, b"A2 OK NOOP completed\r\n");
    completed(&events(&mut c), b, Status::Ok);
    assert_eq!(c.poll_timeout(), None, "nothing outstanding");
}

#[test]
fn login_with_literals_waits_for_continuation_without_literal_plus() {
    let now = Instant::now();
    let mut c = client(now, true);
    c.handle_input(now, b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\n");
    events(&mut c);
    // A password with CR LF needs a literal; a user with a space a quoted string.
    let h = c.login(now, astr(b"al ice"), astr(b"p\r\nw")).unwrap();
    assert_eq!(sent_str(&mut c), "A1 LOGIN \"al ice\" {4}\r\n");
    c.handle_input(now, b"+ Ready for literal data\r\n");
    assert_eq!(sent(&mut c), b"p\r\nw\r\n");
    assert!(events(&mut c).is_empty(), "the + is not an event");
    c.handle_input(
        now,
        b"A1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
    );
    let ev = events(&mut c);
    assert!(matches!(
        ev.as_slice(),
        [Event::Completed { handle, status: Status::No, code: Some(ResponseCode::AuthenticationFailed), .. }] if *handle == h
    ));
    assert_eq!(c.state(), ClientState::NotAuthenticated);
}

#[test]
fn literal_plus_and_literal_minus_send_at_once() {
    let now = Instant::now();
    let mut c = dovecot(now);
    c.login(now, astr(b"alice"), astr(b"p\r\nw")).unwrap();
    assert_eq!(sent(&mut c), b"A1 LOGIN alice {4+}\r\np\r\nw\r\n");

    // IMAP4rev2 implies LITERAL-: non-synchronizing up to 4096 octets only.
    let mut c = client(now, true);
    c.handle_input(now, b"* OK [CAPABILITY IMAP4rev2] hi\r\n");
    let small = c
        .append(now, Mailbox::Inbox, vec![], b"Subject: x\r\n\r\nhi\r\n")
        .unwrap();
    assert_eq!(
        sent(&mut c),
        b"A1 APPEND INBOX {18+}\r\nSubject: x\r\n\r\nhi\r\n\r\n"
    );
    c.handle_input(now, b"A1 OK [APPENDUID 38505 3955] APPEND completed\r\n");
    let ev = events(&mut c);
    assert!(matches!(
        ev.as_slice(),
        [_, Event::Completed { handle, status: Status::Ok, code: Some(ResponseCode::AppendUid { .. }), .. }] if *handle == small
    ));
    let big = vec![b'x'; 5000];
    c.append(now, Mailbox::Inbox, vec![Flag::Seen], &big)
        .unwrap();
    assert_eq!(sent_str(&mut c), "A2 APPEND INBOX (\\Seen) {5000}\r\n");
}

#[test]
fn refused_synchronizing_literal_completes_with_the_servers_answer() {
    let now = Instant::now();
    let mut c = client(now, true);
    c.handle_input(now, b"* OK [CAPABILITY IMAP4rev1] hi\r\n");
    events(&mut c);
    let message = vec![b'm'; 100];
    let h = c.append(now, Mailbox::Inbox, vec![], &message).unwrap();
    assert_eq!(sent_str(&mut c), "A1 APPEND INBOX {100}\r\n");
    c.handle_input(now, b"A1 NO [TOOBIG] Message too large\r\n");
    let ev = events(&mut c);
    assert!(matches!(
        ev.as_slice(),
        [Event::Completed { handle, status: Status::No, code: Some(ResponseCode::TooBig), .. }] if *handle == h
    ));
    assert!(sent(&mut c).is_empty(), "the literal must never be sent");
    // The next command goes out normally.
    c.noop(now).unwrap();
    assert_eq!(sent_str(&mut c), "A2 NOOP\r\n");
}

#[test]
fn append_with_synchronizing_literal_and_timeout_while_waiting_for_plus() {
    let now = Instant::now();
    let mut c = client(now, true);
    c.handle_input(now, b"* OK hi\r\n");
    let h = c.append(now, Mailbox::Inbox, vec![], b"abc").unwrap();
    assert_eq!(sent_str(&mut c), "A1 APPEND INBOX {3}\r\n");
    let deadline = c.poll_timeout().unwrap();
    assert_eq!(deadline, now + Duration::from_secs(120));
    c.handle_timeout(deadline - Duration::from_millis(1));
    assert!(
        events(&mut c).len() == 1,
        "only the greeting; early timeout is a no-op"
    );
    c.handle_timeout(deadline);
    let ev = events(&mut c);
    assert_eq!(
        ev,
        vec![
            Event::CommandAborted {
                handle: h,
                reason: AbortReason::ConnectionEnded
            },
            Event::Closed {
                reason: ClientCloseReason::Timeout
            }
        ]
    );
    assert!(c.is_closed());
    assert!(c.noop(now).is_err());
}

#[test]
fn exchange_2010_before_tls_refuses_cleartext_login_and_starttls_upgrades() {
    let now = Instant::now();
    let mut c = client(now, false);
    c.handle_input(
        now,
        b"* OK The Microsoft Exchange IMAP4 service is ready.\r\n",
    );
    events(&mut c);
    let caps = c.capability(now).unwrap();
    assert_eq!(sent_str(&mut c), "A1 CAPABILITY\r\n");
    c.handle_input(
        now,
        b"* CAPABILITY IMAP4 IMAP4rev1 AUTH=NTLM AUTH=GSSAPI AUTH=PLAIN STARTTLS LOGINDISABLED IDLE NAMESPACE LITERAL+\r\nA1 OK CAPABILITY completed.\r\n",
    );
    completed(&events(&mut c)[1..], caps, Status::Ok);
    assert!(c.has_capability(&Capability::LoginDisabled));

    // No TLS, no STARTTLS queued: the password would travel in clear.
    let err = c.login(now, astr(b"alice"), astr(b"pw")).unwrap_err();
    assert_eq!(err.kind, SendErrorKind::CleartextCredentials);
    assert!(
        !format!("{err:?}").contains("pw"),
        "Debug must not show the password"
    );
    let plain = Atom::new("PLAIN").unwrap();
    let err = c
        .authenticate(now, plain.clone(), Some(b"\0alice\0pw"))
        .unwrap_err();
    assert_eq!(err.kind, SendErrorKind::CleartextCredentials);

    // Queued behind STARTTLS, it is allowed, and goes out only inside TLS.
    let tls = c.starttls(now).unwrap();
    let login = c.login(now, astr(b"alice"), astr(b"pw")).unwrap();
    assert_eq!(sent_str(&mut c), "A2 STARTTLS\r\n");
    // The response injection: bytes after the OK line in the same read.
    c.handle_input(
        now,
        b"A2 OK Begin TLS negotiation now.\r\n* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\nA3 OK injected\r\n",
    );
    let ev = events(&mut c);
    assert_eq!(
        ev[1..],
        [
            Event::TlsHandshakeRequested { handle: tls },
            Event::InjectionDiscarded { len: 51 },
        ]
    );
    completed(&ev[..1], tls, Status::Ok);
    assert_eq!(c.state(), ClientState::StartingTls);
    assert!(!c.wants_input());
    assert_eq!(c.poll_timeout(), None);
    assert!(sent(&mut c).is_empty(), "LOGIN waits for TLS");
    // Later plain-text bytes before the handshake: discarded too.
    c.handle_input(now, b"* OK more\r\n");
    assert_eq!(events(&mut c), [Event::InjectionDiscarded { len: 11 }]);

    c.handle_tls_established(now);
    assert!(c.is_tls_active());
    assert_eq!(
        c.capabilities(),
        None,
        "capabilities are forgotten after STARTTLS"
    );
    assert_eq!(sent_str(&mut c), "A3 LOGIN alice pw\r\n");
    c.handle_input(now, b"A3 OK LOGIN completed.\r\n");
    completed(&events(&mut c), login, Status::Ok);
    assert_eq!(c.state(), ClientState::Authenticated);
}

#[test]
fn refused_starttls_drops_what_was_queued_behind_it() {
    let now = Instant::now();
    let mut c = client(now, false);
    c.handle_input(now, b"* OK [CAPABILITY IMAP4rev1 STARTTLS] hi\r\n");
    events(&mut c);
    let tls = c.starttls(now).unwrap();
    let login = c.login(now, astr(b"alice"), astr(b"pw")).unwrap();
    sent(&mut c);
    c.handle_input(now, b"A1 NO TLS not available\r\n");
    let ev = events(&mut c);
    assert_eq!(
        ev[0],
        Event::CommandAborted {
            handle: login,
            reason: AbortReason::NotSent
        }
    );
    completed(&ev[1..], tls, Status::No);
    assert!(sent(&mut c).is_empty());
    assert_eq!(c.state(), ClientState::NotAuthenticated);
}

#[test]
fn authenticate_plain_with_sasl_ir() {
    let now = Instant::now();
    let mut c = dovecot(now);
    let plain = Atom::new("PLAIN").unwrap();
    let h = c.authenticate(now, plain, Some(b"\0alice\0pw")).unwrap();
    assert_eq!(sent_str(&mut c), "A1 AUTHENTICATE PLAIN AGFsaWNlAHB3\r\n");
    c.handle_input(now, b"A1 OK Logged in\r\n");
    completed(&events(&mut c), h, Status::Ok);
    assert_eq!(c.state(), ClientState::Authenticated);
    assert_eq!(
        c.capabilities(),
        None,
        "capabilities not repeated with the login are stale"
    );
}

#[test]
fn authenticate_plain_empty_initial_response_is_equals_sign() {
    let now = Instant::now();
    let mut c = dovecot(now);
    let ext = Atom::new("EXTERNAL").unwrap();
    c.authenticate(now, ext, Some(b"")).unwrap();
    assert_eq!(sent_str(&mut c), "A1 AUTHENTICATE EXTERNAL =\r\n");
}

#[test]
fn authenticate_plain_with_continuation_without_sasl_ir() {
    let now = Instant::now();
    let mut c = client(now, true);
    c.handle_input(now, b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\n");
    events(&mut c);
    let plain = Atom::new("PLAIN").unwrap();
    let h = c.authenticate(now, plain, Some(b"\0alice\0pw")).unwrap();
    assert_eq!(sent_str(&mut c), "A1 AUTHENTICATE PLAIN\r\n");
    c.handle_input(now, b"+ \r\n");
    assert!(
        events(&mut c).is_empty(),
        "the empty challenge is answered by the session"
    );
    assert_eq!(sent_str(&mut c), "AGFsaWNlAHB3\r\n");
    c.handle_input(now, b"A1 OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n");
    completed(&events(&mut c), h, Status::Ok);
    assert!(
        c.has_capability(&Capability::Idle),
        "kept: sent with the completion"
    );
}

#[test]
fn authenticate_multi_step_challenges_and_cancel() {
    let now = Instant::now();
    let mut c = dovecot(now);
    let ntlm = Atom::new("NTLM").unwrap();
    let h = c.authenticate(now, ntlm, None).unwrap();
    assert_eq!(sent_str(&mut c), "A1 AUTHENTICATE NTLM\r\n");
    c.handle_input(now, b"+ \r\n");
    assert_eq!(
        events(&mut c),
        [Event::SaslChallengeReceived {
            handle: h,
            challenge: vec![]
        }]
    );
    assert_eq!(c.poll_timeout(), None, "the application owes the answer");
    c.sasl_respond(now, h, b"x").unwrap();
    assert_eq!(sent_str(&mut c), "eA==\r\n");
    assert!(c.poll_timeout().is_some());
    assert_eq!(
        c.sasl_respond(now, h, b"y").unwrap_err().kind,
        SendErrorKind::UnknownHandle
    );
    c.handle_input(now, b"+ TlRMTVNTUAACAAAA\r\n");
    assert_eq!(
        events(&mut c),
        [Event::SaslChallengeReceived {
            handle: h,
            challenge: b"NTLMSSP\0\x02\0\0\0".to_vec()
        }]
    );
    c.sasl_cancel(now, h).unwrap();
    assert_eq!(sent_str(&mut c), "*\r\n");
    c.handle_input(now, b"A1 BAD Authentication aborted by client.\r\n");
    completed(&events(&mut c), h, Status::Bad);
    assert_eq!(c.state(), ClientState::NotAuthenticated);
}

#[test]
fn invalid_sasl_challenge_is_a_violation() {
    let now = Instant::now();
    let mut c = dovecot(now);
    let h = c
        .authenticate(now, Atom::new("NTLM").unwrap(), None)
        .unwrap();
    sent(&mut c);
    c.handle_input(now, b"+ not base64!\r\n");
    assert_eq!(
        events(&mut c),
        [
            Event::CommandAborted {
                handle: h,
                reason: AbortReason::ConnectionEnded
            },
            Event::Closed {
                reason: ClientCloseReason::ProtocolViolation(ProtocolViolation::InvalidChallenge)
            }
        ]
    );
}

#[test]
fn preauth_and_bye_greetings() {
    let now = Instant::now();
    let mut c = client(now, true);
    c.handle_input(now, b"* PREAUTH [CAPABILITY IMAP4rev2] welcome\r\n");
    assert!(matches!(
        events(&mut c).as_slice(),
        [Event::GreetingReceived { preauth: true, .. }]
    ));
    assert_eq!(c.state(), ClientState::Authenticated);

    let mut c = client(now, true);
    let h = c.noop(now).unwrap();
    c.handle_input(now, b"* BYE [UNAVAILABLE] Too many connections\r\n");
    let ev = events(&mut c);
    assert!(matches!(
        &ev[0],
        Event::ByeReceived {
            code: Some(ResponseCode::Unavailable),
            ..
        }
    ));
    assert_eq!(
        ev[1..],
        [
            Event::CommandAborted {
                handle: h,
                reason: AbortReason::NotSent
            },
            Event::Closed {
                reason: ClientCloseReason::GreetingRejected
            }
        ]
    );

    let mut c = client(now, true);
    c.handle_input(now, b"A1 OK not a greeting\r\n");
    assert_eq!(
        events(&mut c),
        [Event::Closed {
            reason: ClientCloseReason::ProtocolViolation(ProtocolViolation::InvalidGreeting)
        }]
    );
}

#[test]
fn select_collects_the_mailbox_summary() {
    let now = Instant::now();
    let mut c = logged_in(now);
    let h = c.select(now, Mailbox::Inbox).unwrap();
    assert_eq!(sent_str(&mut c), "A2 SELECT INBOX\r\n");
    // RFC 9051 §6.3.2 example (with RFC 3501's RECENT and UNSEEN, as Dovecot sends).
    c.handle_input(
        now,
        b"* 172 EXISTS\r\n\
* 1 RECENT\r\n\
* OK [UNSEEN 12] Message 12 is first unseen\r\n\
* OK [UIDVALIDITY 3857529045] UIDs valid\r\n\
* OK [UIDNEXT 4392] Predicted next UID\r\n\
* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n\
* OK [HIGHESTMODSEQ 715194045007] Highest\r\n\
* LIST () \"/\" INBOX\r\n\
A2 OK [READ-WRITE] SELECT completed\r\n",
    );
    let ev = events(&mut c);
    let rest = completed(&ev, h, Status::Ok);
    let Some((Event::MailboxSelected { handle, summary }, data)) = rest.split_last() else {
        panic!("{rest:?}")
    };
    assert_eq!(*handle, h);
    assert_eq!(data.len(), 9, "every untagged response is reported too");
    assert!(data.iter().all(|e| matches!(e,
        Event::DataReceived { handle: Some(x), .. } | Event::StatusReceived { handle: Some(x), .. } if *x == h)));
    assert_eq!(summary.mailbox, Mailbox::Inbox);
    assert!(!summary.read_only);
    assert_eq!(summary.exists, 172);
    assert_eq!(summary.recent, Some(1));
    assert_eq!(summary.unseen, Some(nz(12)));
    assert_eq!(summary.uid_validity, Some(nz(3_857_529_045)));
    assert_eq!(summary.uid_next, Some(nz(4392)));
    assert_eq!(summary.flags.len(), 5);
    assert_eq!(summary.permanent_flags.as_ref().map(Vec::len), Some(3));
    assert_eq!(
        summary.highest_mod_seq.map(|m| m.get()),
        Some(715_194_045_007)
    );
    assert_eq!(c.state(), ClientState::Selected);
    assert_eq!(c.selected(), Some(summary));

    // EXAMINE another: read-only; a failing SELECT then leaves no mailbox selected.
    let e = c
        .examine(now, Mailbox::from_name_utf8("Archive").unwrap())
        .unwrap();
    assert_eq!(sent_str(&mut c), "A3 EXAMINE Archive\r\n");
    assert_eq!(c.selected(), None, "SELECT/EXAMINE deselects at once");
    c.handle_input(
        now,
        b"* OK [CLOSED] previous closed\r\n* 0 EXISTS\r\nA3 OK [READ-ONLY] done\r\n",
    );
    let ev = events(&mut c);
    completed(&ev, e, Status::Ok);
    assert!(c.selected().is_some_and(|s| s.read_only && s.exists == 0));
    let s = c
        .select(now, Mailbox::from_name_utf8("Nope").unwrap())
        .unwrap();
    sent(&mut c);
    c.handle_input(now, b"A4 NO [NONEXISTENT] Mailbox doesn't exist: Nope\r\n");
    completed(&events(&mut c), s, Status::No);
    assert_eq!(c.state(), ClientState::Authenticated);
    assert_eq!(c.selected(), None);
}

fn selected(now: Instant) -> ClientSession {
    let mut c = logged_in(now);
    c.select(now, Mailbox::Inbox).unwrap();
    sent(&mut c);
    c.handle_input(
        now,
        b"* 2 EXISTS\r\n* OK [UIDVALIDITY 1] x\r\n* OK [UIDNEXT 3] x\r\nA2 OK [READ-WRITE] done\r\n",
    );
    events(&mut c);
    c
}

#[test]
fn fetch_body_literal_and_uid_search_and_list() {
    let now = Instant::now();
    let mut c = selected(now);
    let f = c
        .fetch(
            now,
            true,
            SequenceSetArg::from(SequenceSet::range(
                SeqOrUid::Value(nz(1)),
                SeqOrUid::Asterisk,
            )),
            FetchAttributes::List(vec![
                FetchAttribute::Uid,
                FetchAttribute::Flags,
                FetchAttribute::BodySection {
                    peek: true,
                    section: Default::default(),
                    partial: None,
                },
            ]),
        )
        .unwrap();
    assert_eq!(
        sent_str(&mut c),
        "A3 UID FETCH 1:* (UID FLAGS BODY.PEEK[])\r\n"
    );
    // Split inside the literal: framing waits for all of it.
    c.handle_input(
        now,
        b"* 1 FETCH (UID 1 FLAGS (\\Seen) BODY[] {11}\r\nSubject: ",
    );
    assert!(events(&mut c).is_empty());
    c.handle_input(now, b"hi)\r\nA3 OK Fetch completed.\r\n");
    let ev = events(&mut c);
    let rest = completed(&ev, f, Status::Ok);
    let [
        Event::DataReceived {
            handle: Some(h),
            data: Data::Fetch { seq, items },
        },
    ] = rest
    else {
        panic!("{rest:?}")
    };
    assert_eq!((*h, seq.get()), (f, 1));
    assert!(items.iter().any(|i| matches!(i,
        FetchItem::BodySection { data, .. } if data.as_bytes() == Some(&b"Subject: hi"[..]))));

    let s = c.uid_search(now, vec![SearchKey::Unseen]).unwrap();
    assert_eq!(sent_str(&mut c), "A4 UID SEARCH UNSEEN\r\n");
    c.handle_input(now, b"* SEARCH 2 84 882\r\nA4 OK SEARCH completed\r\n");
    let ev = events(&mut c);
    let rest = completed(&ev, s, Status::Ok);
    assert!(
        matches!(rest, [Event::DataReceived { data: Data::Search { numbers, .. }, .. }] if numbers.len() == 3)
    );

    let l = c
        .list(
            now,
            Mailbox::from_wire(&b""[..]).unwrap(),
            ListMailbox::from_bytes(&b"*"[..]),
        )
        .unwrap();
    assert_eq!(sent_str(&mut c), "A5 LIST \"\" *\r\n");
    c.handle_input(
        now,
        b"* LIST (\\HasNoChildren) \"/\" INBOX\r\n* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\nA5 OK LIST completed\r\n",
    );
    let ev = events(&mut c);
    let rest = completed(&ev, l, Status::Ok);
    assert_eq!(rest.len(), 2);
}

#[test]
fn idle_with_pushed_exists_and_expunge() {
    let now = Instant::now();
    let mut c = selected(now);
    let h = c.idle(now).unwrap();
    assert_eq!(sent_str(&mut c), "A3 IDLE\r\n");
    c.handle_input(now, b"+ idling\r\n");
    assert_eq!(events(&mut c), [Event::IdleStarted { handle: h }]);
    assert_eq!(c.poll_timeout(), None, "no response timeout while idling");
    let later = now + Duration::from_secs(600);
    c.handle_input(later, b"* 3 EXISTS\r\n* 1 EXPUNGE\r\n");
    let ev = events(&mut c);
    assert!(matches!(&ev[..], [
        Event::DataReceived { handle: Some(a), data: Data::Exists(3) },
        Event::DataReceived { handle: Some(b), data: Data::Expunge(_) },
    ] if *a == h && *b == h));
    assert_eq!(c.selected().map(|s| s.exists), Some(2));
    // Commands queued during IDLE wait for its end.
    let n = c.noop(later).unwrap();
    assert!(sent(&mut c).is_empty());
    c.idle_done(later, h).unwrap();
    assert_eq!(
        c.idle_done(later, h).unwrap_err().kind,
        SendErrorKind::UnknownHandle
    );
    assert_eq!(sent_str(&mut c), "DONE\r\n");
    assert_eq!(c.poll_timeout(), Some(later + Duration::from_secs(120)));
    c.handle_input(later, b"A3 OK Idle completed.\r\n");
    completed(&events(&mut c), h, Status::Ok);
    assert_eq!(sent_str(&mut c), "A4 NOOP\r\n");
    c.handle_input(later, b"A4 OK NOOP\r\n");
    completed(&events(&mut c), n, Status::Ok);
}

#[test]
fn idle_done_before_the_continuation_is_sent_after_it() {
    let now = Instant::now();
    let mut c = selected(now);
    let h = c.idle(now).unwrap();
    sent(&mut c);
    c.idle_done(now, h).unwrap();
    assert!(sent(&mut c).is_empty(), "DONE only after the server's +");
    c.handle_input(now, b"+ idling\r\n");
    assert_eq!(events(&mut c), [Event::IdleStarted { handle: h }]);
    assert_eq!(sent_str(&mut c), "DONE\r\n");
    c.handle_input(now, b"A3 OK done\r\n");
    completed(&events(&mut c), h, Status::Ok);

    // A server refusing IDLE completes it directly.
    let h = c.idle(now).unwrap();
    sent(&mut c);
    c.handle_input(now, b"A4 BAD IDLE not supported\r\n");
    completed(&events(&mut c), h, Status::Bad);
}

#[test]
fn logout_closes_after_bye_and_ok() {
    let now = Instant::now();
    let mut c = selected(now);
    let h = c.logout(now).unwrap();
    assert_eq!(
        c.noop(now).unwrap_err().kind,
        SendErrorKind::Closed,
        "nothing after LOGOUT"
    );
    assert_eq!(sent_str(&mut c), "A3 LOGOUT\r\n");
    c.handle_input(now, b"* BYE Logging out\r\nA3 OK Logout completed.\r\n");
    let ev = events(&mut c);
    assert!(matches!(&ev[0], Event::ByeReceived { .. }));
    assert_eq!(
        ev[2..],
        [Event::Closed {
            reason: ClientCloseReason::Logout
        }]
    );
    completed(&ev[..2], h, Status::Ok);
    assert!(c.is_closed());
    c.handle_input(now, b"* OK late\r\n");
    c.handle_eof(now);
    assert!(events(&mut c).is_empty());
}

#[test]
fn bye_then_eof_is_closed_by_server_and_plain_eof_is_peer_closed() {
    let now = Instant::now();
    let mut c = selected(now);
    c.handle_input(now, b"* BYE Autologout; idle for too long\r\n");
    assert!(matches!(
        events(&mut c).as_slice(),
        [Event::ByeReceived { .. }]
    ));
    c.handle_eof(now);
    let ev = events(&mut c);
    assert!(matches!(
        ev.as_slice(),
        [Event::Closed { reason: ClientCloseReason::ClosedByServer(t) }] if t.text.as_bytes() == b"Autologout; idle for too long"
    ));

    let mut c = selected(now);
    let h = c.noop(now).unwrap();
    c.handle_eof(now);
    assert_eq!(
        events(&mut c),
        [
            Event::CommandAborted {
                handle: h,
                reason: AbortReason::ConnectionEnded
            },
            Event::Closed {
                reason: ClientCloseReason::PeerClosed
            }
        ]
    );
}

#[test]
fn unknown_tag_and_unexpected_continuation_are_violations() {
    let now = Instant::now();
    let mut c = selected(now);
    c.noop(now).unwrap();
    c.handle_input(now, b"X9 OK who?\r\n");
    assert!(matches!(
        events(&mut c).last(),
        Some(Event::Closed {
            reason: ClientCloseReason::ProtocolViolation(ProtocolViolation::UnknownTag)
        })
    ));

    let mut c = selected(now);
    c.noop(now).unwrap();
    c.handle_input(now, b"+ go ahead\r\n");
    assert!(matches!(
        events(&mut c).last(),
        Some(Event::Closed {
            reason: ClientCloseReason::ProtocolViolation(ProtocolViolation::UnexpectedContinuation)
        })
    ));
}

#[test]
fn unparsable_untagged_is_skipped_and_lenient_tagged_completes() {
    let now = Instant::now();
    let mut c = selected(now);
    let h = c.noop(now).unwrap();
    sent(&mut c);
    c.handle_input(
        now,
        b"* 1 FETCH (FLAGS (\\Seen)\r\n* XAPPLEPUSHSERVICE x\r\nA3 OK [BROKEN \x01] fine\r\n",
    );
    let ev = events(&mut c);
    let rest = completed(&ev, h, Status::Ok);
    assert_eq!(rest.len(), 2);
    assert!(
        rest.iter()
            .all(|e| matches!(e, Event::UnparsedResponse { handle: Some(x), .. } if *x == h))
    );
    assert_eq!(c.state(), ClientState::Selected);
}

#[test]
fn oversized_untagged_response_is_discarded_and_the_session_continues() {
    let now = Instant::now();
    let limits = ClientLimits {
        max_literal: 10,
        ..ClientLimits::default()
    };
    let mut c = ClientSession::new(
        Arc::new(ClientConfig {
            limits,
            allow_cleartext_credentials: false,
        }),
        now,
        ClientOptions { tls_active: true },
    );
    c.handle_input(now, b"* OK hi\r\n");
    events(&mut c);
    let h = c
        .send(
            now,
            CommandBody::Fetch {
                uid: false,
                sequence_set: SequenceSet::single(nz(1)).into(),
                attributes: FetchAttributes::List(vec![FetchAttribute::Rfc822]),
                modifiers: vec![],
            },
        )
        .unwrap();
    sent(&mut c);
    c.handle_input(
        now,
        b"* 1 FETCH (RFC822 {20}\r\n01234567890123456789)\r\nA1 OK done\r\n",
    );
    let ev = events(&mut c);
    let rest = completed(&ev, h, Status::Ok);
    assert!(matches!(
        rest,
        [Event::ResponseDiscarded { handle: Some(x), limit: LimitExceeded::LiteralTooLarge { limit: 10, .. } }] if *x == h
    ));
}

#[test]
fn unsolicited_updates_without_a_command_keep_the_summary_current() {
    let now = Instant::now();
    let mut c = selected(now);
    c.handle_input(now, b"* 5 EXISTS\r\n* OK [UIDNEXT 9] next\r\n");
    let ev = events(&mut c);
    assert!(matches!(
        &ev[..],
        [
            Event::DataReceived {
                handle: None,
                data: Data::Exists(5)
            },
            Event::StatusReceived {
                handle: None,
                status: Status::Ok,
                ..
            },
        ]
    ));
    let s = c.selected().unwrap();
    assert_eq!((s.exists, s.uid_next), (5, Some(nz(9))));
}

#[test]
fn compress_is_refused_and_close_aborts_everything() {
    let now = Instant::now();
    let mut c = selected(now);
    let err = c
        .send(
            now,
            CommandBody::Compress {
                algorithm: Atom::new("DEFLATE").unwrap(),
            },
        )
        .unwrap_err();
    assert_eq!(err.kind, SendErrorKind::Unsupported);
    let a = c.noop(now).unwrap();
    let b = c.noop(now).unwrap();
    c.close(now);
    assert_eq!(
        events(&mut c),
        [
            Event::CommandAborted {
                handle: a,
                reason: AbortReason::ConnectionEnded
            },
            Event::CommandAborted {
                handle: b,
                reason: AbortReason::NotSent
            },
            Event::Closed {
                reason: ClientCloseReason::Aborted
            }
        ]
    );
    assert!(c.is_closed());
}

#[test]
fn large_append_goes_out_in_bounded_chunks() {
    let now = Instant::now();
    let mut c = dovecot(now);
    let message = vec![b'a'; 300_000];
    c.append(now, Mailbox::Inbox, vec![], &message).unwrap();
    let mut total = 0;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = c.poll_transmit(&mut buf);
        assert!(n <= cas_imap_proto::client::MAX_TRANSMIT);
        if n == 0 {
            break;
        }
        total += n;
    }
    assert_eq!(total, "A1 APPEND INBOX {300000+}\r\n".len() + 300_000 + 2);
}

#[test]
fn cleartext_credentials_allowed_by_configuration() {
    let now = Instant::now();
    let mut c = ClientSession::new(config(true), now, ClientOptions::default());
    c.handle_input(now, b"* OK hi\r\n");
    c.login(now, astr(b"alice"), astr(b"pw")).unwrap();
    assert_eq!(sent_str(&mut c), "A1 LOGIN alice pw\r\n");
}

#[test]
fn enable_is_tracked() {
    let now = Instant::now();
    let mut c = logged_in(now);
    let h = c
        .send(
            now,
            CommandBody::Enable {
                capabilities: vec![Capability::QResync],
            },
        )
        .unwrap();
    assert_eq!(sent_str(&mut c), "A2 ENABLE QRESYNC\r\n");
    c.handle_input(now, b"* ENABLED QRESYNC\r\nA2 OK Enabled\r\n");
    completed(&events(&mut c)[1..], h, Status::Ok);
    assert_eq!(c.enabled(), [Capability::QResync]);
}

/// The RFC 9051 §8 sample connection from the client's side, with the session's own tags
/// (`A1`.. instead of the RFC's `a000`..): the client bytes must match the RFC's lines, the
/// SCRAM-SHA-256 challenges arrive decoded, the SELECT summary and the FETCH data are
/// reported, and LOGOUT closes the session.
#[test]
fn rfc9051_section8_session_from_the_client_side() {
    use cas_imap_proto::command::{Base64Data, StoreKind};
    let now = Instant::now();
    let mut c = client(now, false);
    let tls = c.starttls(now).unwrap();
    c.handle_input(
        now,
        b"* OK [CAPABILITY STARTTLS AUTH=SCRAM-SHA-256 LOGINDISABLED IMAP4rev2] IMAP4rev2 Service Ready\r\n",
    );
    assert_eq!(sent_str(&mut c), "A1 STARTTLS\r\n");
    c.handle_input(now, b"A1 OK Proceed with TLS negotiation\r\n");
    let ev = events(&mut c);
    assert!(matches!(ev.last(), Some(Event::TlsHandshakeRequested { handle }) if *handle == tls));
    c.handle_tls_established(now);

    // The RFC's capability list lacks SASL-IR although its client sends the initial
    // response inline; a CAPABILITY response adding it makes this client do the same.
    c.handle_input(
        now,
        b"* CAPABILITY IMAP4rev2 SASL-IR AUTH=SCRAM-SHA-256\r\n",
    );
    events(&mut c);
    let client_first = Base64Data::new(&b"biwsbj11c2VyLHI9ck9wck5HZndFYmVSV2diTkVrcU8="[..])
        .unwrap()
        .decode()
        .unwrap();
    let auth = c
        .authenticate(
            now,
            Atom::new("SCRAM-SHA-256").unwrap(),
            Some(&client_first),
        )
        .unwrap();
    assert_eq!(
        sent_str(&mut c),
        "A2 AUTHENTICATE SCRAM-SHA-256 biwsbj11c2VyLHI9ck9wck5HZndFYmVSV2diTkVrcU8=\r\n"
    );
    c.handle_input(
        now,
        b"+ cj1yT3ByTkdmd0ViZVJXZ2JORWtxTyVodllEcFdVYTJSYVRDQWZ1eEZJbGopaE5sRiRrMCxzPVcyMlphSjBTTlk3c29Fc1VFamI2Z1E9PSxpPTQwOTY=\r\n",
    );
    let ev: [Event; 1] = events(&mut c).try_into().unwrap();
    let [Event::SaslChallengeReceived { handle, challenge }] = ev else {
        panic!()
    };
    assert_eq!(handle, auth);
    assert!(challenge.starts_with(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s="));
    let client_final = Base64Data::new(&b"Yz1iaXdzLHI9ck9wck5HZndFYmVSV2diTkVrcU8laHZZRHBXVWEyUmFUQ0FmdXhGSWxqKWhObEYkazAscD1kSHpiWmFwV0lrNGpVaE4rVXRlOXl0YWc5empmTUhnc3FtbWl6N0FuZFZRPQ=="[..]).unwrap().decode().unwrap();
    c.sasl_respond(now, auth, &client_final).unwrap();
    assert_eq!(
        sent_str(&mut c),
        "Yz1iaXdzLHI9ck9wck5HZndFYmVSV2diTkVrcU8laHZZRHBXVWEyUmFUQ0FmdXhGSWxqKWhObEYkazAscD1kSHpiWmFwV0lrNGpVaE4rVXRlOXl0YWc5empmTUhnc3FtbWl6N0FuZFZRPQ==\r\n"
    );
    c.handle_input(
        now,
        b"+ dj02cnJpVFJCaTIzV3BSUi93dHVwK21NaFVaVW4vZEI1bkxUSlJzamw5NUc0PQ==\r\n",
    );
    assert!(matches!(
        events(&mut c).as_slice(),
        [Event::SaslChallengeReceived { challenge, .. }] if challenge.starts_with(b"v=")
    ));
    c.sasl_respond(now, auth, b"").unwrap();
    assert_eq!(sent_str(&mut c), "\r\n");
    c.handle_input(now, b"A2 OK SCRAM-SHA-256 authentication successful\r\n");
    completed(&events(&mut c), auth, Status::Ok);

    let enable = c
        .send(
            now,
            CommandBody::Enable {
                capabilities: vec![Capability::Imap4Rev2],
            },
        )
        .unwrap();
    let select = c.select(now, Mailbox::Inbox).unwrap();
    assert_eq!(sent_str(&mut c), "A3 ENABLE IMAP4rev2\r\n");
    c.handle_input(
        now,
        b"* ENABLED IMAP4rev2\r\nA3 OK Some capabilities enabled\r\n",
    );
    completed(&events(&mut c)[1..], enable, Status::Ok);
    assert_eq!(sent_str(&mut c), "A4 SELECT INBOX\r\n");
    c.handle_input(
        now,
        b"* 18 EXISTS\r\n* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
* OK [UIDVALIDITY 3857529045] UIDs valid\r\n* LIST () \"/\" INBOX (\"OLDNAME\" (\"inbox\"))\r\n\
A4 OK [READ-WRITE] SELECT completed\r\n",
    );
    completed(&events(&mut c), select, Status::Ok);
    let s = c.selected().unwrap();
    assert_eq!((s.exists, s.uid_validity), (18, Some(nz(3_857_529_045))));

    let full = c
        .fetch(
            now,
            false,
            SequenceSet::single(nz(12)).into(),
            FetchAttributes::Full,
        )
        .unwrap();
    assert_eq!(sent_str(&mut c), "A5 FETCH 12 FULL\r\n");
    c.handle_input(now, b"* 12 FETCH (FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 4286 ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev2 WG mtg summary and minutes\" ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((NIL NIL \"imap\" \"cac.washington.edu\")) ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\") (\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL \"<B27397-0100000@cac.washington.ed>\") BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92))\r\nA5 OK FETCH completed\r\n");
    let ev = events(&mut c);
    let rest = completed(&ev, full, Status::Ok);
    assert!(
        matches!(rest, [Event::DataReceived { data: Data::Fetch { items, .. }, .. }] if items.len() == 5)
    );

    let store = c
        .send(
            now,
            CommandBody::Store {
                uid: false,
                sequence_set: SequenceSet::single(nz(12)).into(),
                unchanged_since: None,
                kind: StoreKind::Add,
                silent: false,
                flags: vec![Flag::Deleted],
            },
        )
        .unwrap();
    let logout = c.logout(now).unwrap();
    assert_eq!(sent_str(&mut c), "A6 STORE 12 +FLAGS (\\Deleted)\r\n");
    c.handle_input(
        now,
        b"* 12 FETCH (FLAGS (\\Seen \\Deleted))\r\nA6 OK +FLAGS completed\r\n",
    );
    completed(&events(&mut c)[1..], store, Status::Ok);
    assert_eq!(sent_str(&mut c), "A7 LOGOUT\r\n");
    c.handle_input(
        now,
        b"* BYE IMAP4rev2 server terminating connection\r\nA7 OK LOGOUT completed\r\n",
    );
    let ev = events(&mut c);
    completed(&ev[..2], logout, Status::Ok);
    assert_eq!(
        ev[2],
        Event::Closed {
            reason: ClientCloseReason::Logout
        }
    );
}
