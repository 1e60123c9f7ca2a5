//! Byte-in/byte-out transcripts of the IMAP server session with a virtual clock.

mod server_util;

use cas_imap_proto::server::{CloseReason, Event, LoginOutcome, SessionOptions, State};
use server_util::{Harness, full_config};

const CAPS_AUTH: &str = "IMAP4rev1 IMAP4rev2 ENABLE IDLE LITERAL- APPENDLIMIT=26214400 \
UIDPLUS MOVE UNSELECT NAMESPACE ID CONDSTORE QRESYNC ESEARCH UTF8=ACCEPT COMPRESS=DEFLATE";

#[test]
fn greeting_capability_login_logout() {
    let mut h = Harness::tls();
    assert_eq!(
        h.output(),
        format!("* OK [CAPABILITY {CAPS_AUTH}] cas-rs IMAP server ready\r\n")
    );
    assert_eq!(
        h.input("a1 CAPABILITY\r\n"),
        format!("* CAPABILITY {CAPS_AUTH}\r\na1 OK CAPABILITY completed\r\n")
    );
    assert_eq!(h.input("a2 LOGIN alice \"s3cr et\"\r\n"), "");
    let Some(Event::LoginRequested {
        id,
        username,
        password,
    }) = h.event()
    else {
        panic!("expected LoginRequested")
    };
    assert_eq!(username, "alice");
    assert_eq!(password.expose(), b"s3cr et");
    assert_eq!(format!("{password:?}"), "<redacted>");
    h.session
        .finish_authentication(id, LoginOutcome::accepted("alice"))
        .unwrap();
    assert_eq!(
        h.output(),
        format!("a2 OK [CAPABILITY {CAPS_AUTH}] LOGIN completed\r\n")
    );
    assert_eq!(h.session.state(), State::Authenticated);
    assert_eq!(h.session.user(), Some("alice"));
    assert_eq!(
        h.input("a3 LOGOUT\r\n"),
        "* BYE Logging out\r\na3 OK LOGOUT completed\r\n"
    );
    assert!(matches!(
        h.event(),
        Some(Event::Closed {
            reason: CloseReason::Logout
        })
    ));
    assert!(h.session.is_closed());
    assert!(!h.session.wants_input());
}

#[test]
fn login_disabled_before_tls() {
    let mut config = full_config();
    config.tls_available = true;
    config.sasl_mechanisms = vec![
        cas_imap_proto::server::SaslMechanism::new("PLAIN", true),
        cas_imap_proto::server::SaslMechanism::new("NTLM", false),
    ];
    let mut h = Harness::new(config, SessionOptions::default());
    let greeting = h.output();
    assert!(
        greeting.starts_with(
            "* OK [CAPABILITY IMAP4rev1 IMAP4rev2 STARTTLS LOGINDISABLED AUTH=NTLM SASL-IR ENABLE"
        ),
        "{greeting}"
    );
    assert!(!greeting.contains("AUTH=PLAIN"));
    assert_eq!(
        h.input("a1 LOGIN alice secret\r\n"),
        "a1 NO [PRIVACYREQUIRED] Clear-text login is not allowed before STARTTLS\r\n"
    );
    assert!(h.events().is_empty());
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

use std::num::NonZeroU32;
use std::time::Duration;

use cas_imap_proto::code::ResponseCode;
use cas_imap_proto::command::CommandBody;
use cas_imap_proto::response::{FetchItem, Status};
use cas_imap_proto::server::{
    Change, CommandId, MessageInfo, SaslMechanism, SelectedMailbox, ServerConfig,
};
use cas_imap_proto::types::{Flag, FlagFetch, ModSeq};

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

fn login(h: &mut Harness) {
    h.output();
    h.input("L1 LOGIN alice secret\r\n");
    let Some(Event::LoginRequested { id, .. }) = h.event() else {
        panic!("expected LoginRequested")
    };
    h.session
        .finish_authentication(id, LoginOutcome::accepted("alice"))
        .unwrap();
    assert!(h.output().starts_with("L1 OK"));
}

/// The next CommandReceived event.
fn command(h: &mut Harness) -> (CommandId, CommandBody<'static>) {
    match h.event() {
        Some(Event::CommandReceived { id, command }) => (id, command.body),
        other => panic!("expected CommandReceived, got {other:?}"),
    }
}

fn mailbox(uids: &[u32]) -> SelectedMailbox {
    let messages = uids
        .iter()
        .map(|&u| MessageInfo::new(nz(u), vec![Flag::Seen], u64::from(u)))
        .collect();
    let next = uids.last().copied().unwrap_or(0) + 1;
    SelectedMailbox::new(
        nz(3_857_529_045),
        nz(next),
        Some(ModSeq::new(u64::from(next)).unwrap()),
        messages,
    )
}

/// Logs in and selects a mailbox holding `uids`; returns the SELECT output.
fn select(h: &mut Harness, uids: &[u32]) -> String {
    login(h);
    h.input("S1 SELECT INBOX\r\n");
    let (id, body) = command(h);
    assert!(matches!(body, CommandBody::Select { .. }));
    h.session.select(id, mailbox(uids)).unwrap();
    h.output()
}

// ---------------------------------------------------------------------------------------
// RFC 9051 §8
// ---------------------------------------------------------------------------------------

#[test]
fn rfc9051_sample_session() {
    let config = ServerConfig {
        tls_available: true,
        greeting: "IMAP4rev2 Service Ready".into(),
        sasl_mechanisms: vec![SaslMechanism::new("SCRAM-SHA-256", false)],
        // The RFC's client logs in over clear text, as the example predates the TLS
        // rules; allow it so the transcript is the RFC's.
        allow_clear_text_without_tls: true,
        ..ServerConfig::default()
    };
    let mut h = Harness::new(config, SessionOptions::default());
    let greeting = h.output();
    assert!(greeting.starts_with("* OK [CAPABILITY IMAP4rev1 IMAP4rev2 STARTTLS "));
    assert!(greeting.ends_with("] IMAP4rev2 Service Ready\r\n"));

    assert_eq!(h.input("a001 login mrc secret\r\n"), "");
    let Some(Event::LoginRequested { id, username, .. }) = h.event() else {
        panic!()
    };
    assert_eq!(username, "mrc");
    h.session
        .finish_authentication(id, LoginOutcome::accepted("mrc"))
        .unwrap();
    assert!(
        h.output()
            .starts_with("a001 OK [CAPABILITY IMAP4rev1 IMAP4rev2 ")
    );

    assert_eq!(
        h.input("a001b enable IMAP4rev2\r\n"),
        "* ENABLED IMAP4rev2\r\na001b OK ENABLE completed\r\n"
    );

    assert_eq!(h.input("a002 select inbox\r\n"), "");
    let (id, _) = command(&mut h);
    let uids: Vec<u32> = (1..=18).map(|n| n * 10).collect();
    let mut snapshot = mailbox(&uids);
    snapshot.highest_modseq = None;
    h.session.select(id, snapshot).unwrap();
    assert_eq!(
        h.output(),
        "* 18 EXISTS\r\n\
         * OK [UIDVALIDITY 3857529045] UIDs valid\r\n\
         * OK [UIDNEXT 181] Predicted next UID\r\n\
         * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
         * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted\r\n\
         a002 OK [READ-WRITE] SELECT completed\r\n"
    );

    assert_eq!(h.input("a003 fetch 12 (flags rfc822.size)\r\n"), "");
    let (id, body) = command(&mut h);
    let CommandBody::Fetch {
        uid: false,
        sequence_set,
        ..
    } = body
    else {
        panic!()
    };
    assert_eq!(h.session.resolve(&sequence_set, false), vec![nz(120)]);
    h.session
        .send_fetch(
            id,
            nz(120),
            vec![
                FetchItem::Flags(vec![FlagFetch::Flag(Flag::Seen)]),
                FetchItem::Rfc822Size(4286),
            ],
        )
        .unwrap();
    h.session.finish(id, Status::Ok, None, "").unwrap();
    assert_eq!(
        h.output(),
        "* 12 FETCH (FLAGS (\\Seen) RFC822.SIZE 4286)\r\na003 OK FETCH completed\r\n"
    );

    assert_eq!(h.input("a005 store 12 +flags \\deleted\r\n"), "");
    let (id, _) = command(&mut h);
    h.session
        .stored(
            id,
            MessageInfo::new(nz(120), vec![Flag::Seen, Flag::Deleted], 200),
        )
        .unwrap();
    h.session
        .finish(id, Status::Ok, None, "+FLAGS completed")
        .unwrap();
    assert_eq!(
        h.output(),
        "* 12 FETCH (FLAGS (\\Seen \\Deleted))\r\na005 OK +FLAGS completed\r\n"
    );

    assert_eq!(
        h.input("a006 logout\r\n"),
        "* BYE Logging out\r\na006 OK LOGOUT completed\r\n"
    );
    assert!(h.session.is_closed());
}

// ---------------------------------------------------------------------------------------
// Literals
// ---------------------------------------------------------------------------------------

#[test]
fn synchronizing_literal_gets_continuation_after_check() {
    let mut h = Harness::tls();
    h.output();
    assert_eq!(h.input("a1 LOGIN {5}\r\n"), "+ Ready for literal data\r\n");
    assert_eq!(h.input("alice {6}\r\n"), "+ Ready for literal data\r\n");
    assert_eq!(h.input("sec"), "");
    assert_eq!(h.input("ret\r\n"), "");
    let Some(Event::LoginRequested {
        username, password, ..
    }) = h.event()
    else {
        panic!()
    };
    assert_eq!(username, "alice");
    assert_eq!(password.expose(), b"secret");
}

#[test]
fn non_synchronizing_literal_within_literal_minus_needs_no_continuation() {
    let mut h = Harness::tls();
    h.output();
    assert_eq!(h.input("a1 LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n"), "");
    assert!(matches!(h.event(), Some(Event::LoginRequested { .. })));
}

#[test]
fn oversized_literal_refused_without_continuation() {
    let mut config = full_config();
    config.limits.framing.max_literal = 1000;
    config.limits.framing.max_append_literal = 2000;
    let mut h = Harness::new(
        config,
        SessionOptions {
            tls_active: true,
            ..SessionOptions::default()
        },
    );
    login(&mut h);
    // No `+`: the client keeps waiting, and its next line is a new command.
    assert_eq!(
        h.input("a2 APPEND INBOX {2001}\r\n"),
        "a2 NO [TOOBIG] Literal too large\r\n"
    );
    assert_eq!(
        h.input("a3 LOGIN {1001}\r\n"),
        "a3 NO [TOOBIG] Literal too large\r\n"
    );
    assert_eq!(h.input("a4 NOOP\r\n"), "a4 OK NOOP completed\r\n");
    assert!(!h.session.is_closed());
}

#[test]
fn non_synchronizing_literal_over_literal_minus_is_skipped() {
    let mut h = Harness::tls();
    login(&mut h);
    // Above LITERAL-'s 4096: BAD [TOOBIG], and the literal's bytes are skipped by length,
    // never taken for commands, even when they look like commands.
    let mut input = String::from("a5 APPEND INBOX {5000+}\r\n");
    let body = "a9 LOGOUT\r\n".repeat(500);
    input.push_str(&body[..5000]);
    input.push_str("\r\n");
    assert_eq!(
        h.input(&input),
        "a5 BAD [TOOBIG] Non-synchronizing literal too large (LITERAL-)\r\n"
    );
    assert!(!h.session.is_closed());
    assert_eq!(h.input("a6 NOOP\r\n"), "a6 OK NOOP completed\r\n");
}

#[test]
fn append_hands_over_the_message_as_a_slice() {
    let mut h = Harness::tls();
    login(&mut h);
    assert_eq!(
        h.input("a1 APPEND Drafts (\\Draft) {11}\r\n"),
        "+ Ready for literal data\r\n"
    );
    assert_eq!(h.input("Hello\r\nBody\r\n"), "");
    let Some(Event::AppendReceived {
        id,
        mailbox,
        messages,
    }) = h.event()
    else {
        panic!()
    };
    assert_eq!(mailbox.as_bytes(), b"Drafts");
    assert_eq!(messages.len(), 1);
    assert_eq!(&messages[0].data[..], b"Hello\r\nBody");
    assert_eq!(messages[0].flags, vec![Flag::Draft]);
    h.session
        .finish(
            id,
            Status::Ok,
            Some(ResponseCode::AppendUid {
                uid_validity: nz(7),
                uids: cas_imap_proto::types::SequenceSet::single(nz(42)),
            }),
            "APPEND completed",
        )
        .unwrap();
    assert_eq!(h.output(), "a1 OK [APPENDUID 7 42] APPEND completed\r\n");
}

// ---------------------------------------------------------------------------------------
// IDLE
// ---------------------------------------------------------------------------------------

#[test]
fn idle_pushes_exists_and_expunge_until_done() {
    let mut h = Harness::tls();
    select(&mut h, &[1, 2, 3]);
    assert_eq!(h.input("i1 IDLE\r\n"), "+ idling\r\n");
    let Some(Event::IdleStarted { id }) = h.event() else {
        panic!()
    };
    h.session
        .mailbox_changed(Change::Appended(MessageInfo::new(nz(4), vec![], 4)));
    assert_eq!(h.output(), "* 4 EXISTS\r\n");
    h.session.mailbox_changed(Change::Expunged(vec![nz(2)]));
    assert_eq!(h.output(), "* 2 EXPUNGE\r\n");
    h.session
        .mailbox_changed(Change::FlagsChanged(MessageInfo::new(
            nz(4),
            vec![Flag::Flagged],
            5,
        )));
    assert_eq!(h.output(), "* 3 FETCH (FLAGS (\\Flagged))\r\n");
    // Answers are refused while idling: the session owns IDLE.
    assert!(h.session.finish(id, Status::Ok, None, "").is_err());
    assert_eq!(h.input("done\r\n"), "i1 OK IDLE terminated\r\n");
    assert!(matches!(h.event(), Some(Event::IdleDone { id: done }) if done == id));
    assert_eq!(h.session.selected().unwrap().exists(), 3);
}

#[test]
fn idle_times_out() {
    let mut h = Harness::tls();
    select(&mut h, &[1]);
    h.input("i1 IDLE\r\n");
    h.events();
    let deadline = h.session.poll_timeout().unwrap();
    assert_eq!(deadline, h.now + Duration::from_secs(30 * 60));
    h.session.handle_timeout(deadline - Duration::from_secs(1));
    assert!(!h.session.is_closed(), "an early timer is a no-op");
    h.session.handle_timeout(deadline);
    assert_eq!(h.output(), "* BYE Autologout; idle for too long\r\n");
    let events = h.events();
    assert!(matches!(events[0], Event::IdleDone { .. }));
    assert!(matches!(
        events.last(),
        Some(Event::Closed {
            reason: CloseReason::Timeout
        })
    ));
}

#[test]
fn idle_rejects_anything_but_done() {
    let mut h = Harness::tls();
    select(&mut h, &[1]);
    h.input("i1 IDLE\r\n");
    assert_eq!(h.input("i2 NOOP\r\n"), "i1 BAD Expected DONE\r\n");
    assert_eq!(h.input("i3 NOOP\r\n"), "i3 OK NOOP completed\r\n");
}

// ---------------------------------------------------------------------------------------
// Selected-mailbox rules
// ---------------------------------------------------------------------------------------

#[test]
fn expunge_is_held_back_during_fetch_and_sent_after_noop() {
    let mut h = Harness::tls();
    select(&mut h, &[10, 20, 30]);
    h.input("f1 FETCH 1:* (FLAGS)\r\n");
    let (id, _) = command(&mut h);
    // Another session expunges message 2 while the FETCH runs.
    h.session.mailbox_changed(Change::Expunged(vec![nz(20)]));
    for uid in [10, 20, 30] {
        h.session
            .send_fetch(id, nz(uid), vec![FetchItem::Flags(vec![])])
            .unwrap();
    }
    h.session.finish(id, Status::Ok, None, "").unwrap();
    assert_eq!(
        h.output(),
        "* 1 FETCH (FLAGS ())\r\n* 2 FETCH (FLAGS ())\r\n* 3 FETCH (FLAGS ())\r\nf1 OK FETCH completed\r\n"
    );
    assert!(h.session.selected().unwrap().is_expunged(20));
    // Nothing is sent when no command is in progress.
    assert_eq!(h.output(), "");
    // STORE and SEARCH hold it back too.
    h.input("f2 SEARCH ALL\r\n");
    let (id, _) = command(&mut h);
    h.session.finish(id, Status::Ok, None, "").unwrap();
    assert_eq!(h.output(), "f2 OK SEARCH completed\r\n");
    // A UID command may send it.
    h.input("f3 UID FETCH 1:* (FLAGS)\r\n");
    let (id, _) = command(&mut h);
    h.session.finish(id, Status::Ok, None, "").unwrap();
    assert_eq!(h.output(), "* 2 EXPUNGE\r\nf3 OK FETCH completed\r\n");
    assert_eq!(h.session.selected().unwrap().exists(), 2);
}

#[test]
fn exists_never_decreases_without_expunge() {
    let mut h = Harness::tls();
    select(&mut h, &[1, 2]);
    h.input("f1 FETCH 1 (FLAGS)\r\n");
    let (id, _) = command(&mut h);
    h.session
        .mailbox_changed(Change::Expunged(vec![nz(1), nz(2)]));
    h.session
        .mailbox_changed(Change::Appended(MessageInfo::new(nz(3), vec![], 3)));
    h.session.finish(id, Status::Ok, None, "").unwrap();
    // The expunged messages still count; the new one is the third.
    assert_eq!(h.output(), "* 3 EXISTS\r\nf1 OK FETCH completed\r\n");
    assert_eq!(
        h.input("n1 NOOP\r\n"),
        "* 2 EXPUNGE\r\n* 1 EXPUNGE\r\nn1 OK NOOP completed\r\n"
    );
    assert_eq!(h.session.selected().unwrap().uid(1), Some(nz(3)));
}

#[test]
fn own_expunge_reports_decreasing_sequence_numbers() {
    let mut h = Harness::tls();
    select(&mut h, &[1, 2, 3, 4, 5]);
    h.input("e1 EXPUNGE\r\n");
    let (id, _) = command(&mut h);
    h.session.expunged(id, vec![nz(2), nz(4), nz(5)]).unwrap();
    h.session.finish(id, Status::Ok, None, "").unwrap();
    assert_eq!(
        h.output(),
        "* 5 EXPUNGE\r\n* 4 EXPUNGE\r\n* 2 EXPUNGE\r\ne1 OK Completed\r\n"
    );
    assert_eq!(h.session.selected().unwrap().exists(), 2);
}

#[test]
fn qresync_uses_vanished() {
    let mut h = Harness::tls();
    login(&mut h);
    assert_eq!(
        h.input("q1 ENABLE QRESYNC\r\n"),
        "* ENABLED QRESYNC\r\nq1 OK ENABLE completed\r\n"
    );
    h.input("q2 SELECT INBOX (QRESYNC (3857529045 3 1:9))\r\n");
    let (id, _) = command(&mut h);
    let mut snapshot = mailbox(&[1, 2, 5, 6]);
    snapshot.uid_next = nz(10);
    snapshot.messages[3].modseq = 8;
    snapshot.highest_modseq = Some(ModSeq::new(8).unwrap());
    h.session.select(id, snapshot).unwrap();
    let out = h.output();
    assert!(out.contains("* VANISHED (EARLIER) 3:4,7:9\r\n"), "{out}");
    assert!(
        out.contains("* 4 FETCH (UID 6 FLAGS (\\Seen) MODSEQ (8))\r\n"),
        "{out}"
    );
    assert!(out.contains("* OK [HIGHESTMODSEQ 8] Highest\r\n"), "{out}");
    h.input("e1 UID EXPUNGE 1:2\r\n");
    let (id, _) = command(&mut h);
    h.session.expunged(id, vec![nz(1), nz(2)]).unwrap();
    h.session.finish(id, Status::Ok, None, "").unwrap();
    assert_eq!(h.output(), "* VANISHED 1:2\r\ne1 OK Completed\r\n");
}

#[test]
fn qresync_vanished_limited_to_what_the_application_knows_was_expunged_since() {
    // UIDs 3, 4, 7, 8 and 9 are missing; the application knows only 4 and 8:20 went after
    // the client's mod-sequence 3, so only those of the client's known UIDs are reported.
    for (expunged, expected) in [
        (
            vec![(4, 4), (8, 20)],
            Some("* VANISHED (EARLIER) 4,8:9\r\n"),
        ),
        (vec![], None),
    ] {
        let mut h = Harness::tls();
        login(&mut h);
        h.input("q1 ENABLE QRESYNC\r\n");
        h.input("q2 SELECT INBOX (QRESYNC (3857529045 3 1:9))\r\n");
        let (id, _) = command(&mut h);
        let mut snapshot = mailbox(&[1, 2, 5, 6]);
        snapshot.uid_next = nz(10);
        snapshot.expunged_since_qresync = Some(expunged.into_boxed_slice());
        h.session.select(id, snapshot).unwrap();
        let out = h.output();
        match expected {
            Some(line) => assert!(out.contains(line), "{out}"),
            None => assert!(!out.contains("VANISHED"), "{out}"),
        }
        assert!(out.contains("q2 OK [READ-WRITE]"), "{out}");
    }
}

#[test]
fn silent_store_echoes_only_modseq_under_condstore() {
    let mut h = Harness::tls();
    select(&mut h, &[1, 2]);
    h.input("s1 STORE 1 +FLAGS.SILENT (\\Seen)\r\n");
    let (id, _) = command(&mut h);
    h.session
        .stored(id, MessageInfo::new(nz(1), vec![Flag::Seen], 9))
        .unwrap();
    h.session.finish(id, Status::Ok, None, "").unwrap();
    assert_eq!(h.output(), "s1 OK STORE completed\r\n");
    h.input("s2 UID STORE 2 (UNCHANGEDSINCE 5) +FLAGS.SILENT (\\Seen)\r\n");
    let (id, _) = command(&mut h);
    assert!(h.session.is_condstore_enabled());
    h.session
        .stored(id, MessageInfo::new(nz(2), vec![Flag::Seen], 10))
        .unwrap();
    h.session.finish(id, Status::Ok, None, "").unwrap();
    assert_eq!(
        h.output(),
        "* 2 FETCH (UID 2 MODSEQ (10))\r\ns2 OK STORE completed\r\n"
    );
}

#[test]
fn sequence_numbers_out_of_range_are_bad() {
    let mut h = Harness::tls();
    select(&mut h, &[1, 2]);
    assert_eq!(
        h.input("f1 FETCH 3 FLAGS\r\n"),
        "f1 BAD Invalid message sequence number\r\n"
    );
    assert!(h.events().is_empty());
    // UID sets are not checked: unknown UIDs are simply left out.
    h.input("f2 UID FETCH 1:100 FLAGS\r\n");
    let (_, body) = command(&mut h);
    let CommandBody::Fetch { sequence_set, .. } = body else {
        panic!()
    };
    assert_eq!(h.session.resolve(&sequence_set, true), vec![nz(1), nz(2)]);
}

#[test]
fn commands_in_the_wrong_state_are_refused_by_the_session() {
    let mut h = Harness::tls();
    h.output();
    assert_eq!(
        h.input("a1 SELECT INBOX\r\n"),
        "a1 BAD Not authenticated\r\n"
    );
    login(&mut h);
    assert_eq!(
        h.input("a2 FETCH 1 FLAGS\r\n"),
        "a2 BAD No mailbox selected\r\n"
    );
    assert_eq!(
        h.input("a3 LOGIN a b\r\n"),
        "a3 BAD Already authenticated\r\n"
    );
    assert_eq!(h.input("a4 FROB\r\n"), "a4 BAD Unknown command\r\n");
    assert!(h.events().is_empty());
}

#[test]
fn reselect_closes_the_previous_mailbox() {
    let mut h = Harness::tls();
    select(&mut h, &[1]);
    assert_eq!(
        h.input("s2 EXAMINE Archive\r\n"),
        "* OK [CLOSED] Previous mailbox closed\r\n"
    );
    assert!(matches!(h.event(), Some(Event::MailboxClosed)));
    let (id, _) = command(&mut h);
    assert_eq!(h.session.state(), State::Authenticated);
    h.session
        .finish(
            id,
            Status::No,
            Some(ResponseCode::NonExistent),
            "No such mailbox",
        )
        .unwrap();
    assert_eq!(h.output(), "s2 NO [NONEXISTENT] No such mailbox\r\n");
    assert_eq!(h.session.state(), State::Authenticated);
}

// ---------------------------------------------------------------------------------------
// STARTTLS, SASL
// ---------------------------------------------------------------------------------------

#[test]
fn starttls_discards_pipelined_commands() {
    let mut config = full_config();
    config.tls_available = true;
    let mut h = Harness::new(config, SessionOptions::default());
    h.output();
    // CVE-2011-0411: a command injected behind STARTTLS in the same packet.
    assert_eq!(
        h.input("a1 STARTTLS\r\na2 LOGIN mallory x\r\n"),
        "a1 OK Begin TLS negotiation now\r\n"
    );
    assert!(matches!(h.event(), Some(Event::TlsRequested)));
    assert!(!h.session.wants_input());
    assert_eq!(h.input("a3 NOOP\r\n"), "");
    h.session.handle_tls_established(h.now);
    assert!(
        h.events().is_empty(),
        "nothing of the injected command survives"
    );
    let caps = h.input("a4 CAPABILITY\r\n");
    assert!(
        !caps.contains("STARTTLS") && !caps.contains("LOGINDISABLED"),
        "{caps}"
    );
    assert_eq!(
        h.input("a5 STARTTLS\r\n"),
        "a5 BAD TLS is already active\r\n"
    );
}

fn sasl_harness() -> Harness {
    let mut config = full_config();
    config.sasl_mechanisms = vec![SaslMechanism::new("PLAIN", true)];
    Harness::new(
        config,
        SessionOptions {
            tls_active: true,
            ..SessionOptions::default()
        },
    )
}

#[test]
fn authenticate_plain_with_sasl_ir() {
    let mut h = sasl_harness();
    assert!(h.output().contains(" AUTH=PLAIN SASL-IR "));
    assert_eq!(
        h.input("a1 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n"),
        ""
    );
    let Some(Event::AuthenticateStarted {
        id,
        mechanism,
        initial_response,
    }) = h.event()
    else {
        panic!()
    };
    assert_eq!(mechanism, "PLAIN");
    assert_eq!(initial_response.unwrap().expose(), b"\0alice\0secret");
    h.session
        .finish_authentication(id, LoginOutcome::accepted("alice"))
        .unwrap();
    assert!(
        h.output()
            .starts_with("a1 OK [CAPABILITY IMAP4rev1 IMAP4rev2 ENABLE")
    );
    assert_eq!(h.session.state(), State::Authenticated);
}

#[test]
fn authenticate_plain_with_continuation() {
    let mut h = sasl_harness();
    h.output();
    assert_eq!(h.input("a1 AUTHENTICATE plain\r\n"), "");
    let Some(Event::AuthenticateStarted {
        id,
        initial_response: None,
        ..
    }) = h.event()
    else {
        panic!()
    };
    h.session.send_sasl_challenge(id, b"").unwrap();
    assert_eq!(h.output(), "+ \r\n");
    assert_eq!(h.input("AGFsaWNlAHdyb25n\r\n"), "");
    let Some(Event::SaslResponse { id: same, data }) = h.event() else {
        panic!()
    };
    assert_eq!(same, id);
    assert_eq!(data.expose(), b"\0alice\0wrong");
    h.session
        .finish_authentication(id, LoginOutcome::rejected())
        .unwrap();
    assert_eq!(
        h.output(),
        "a1 NO [AUTHENTICATIONFAILED] Authentication failed\r\n"
    );
    // Cancelled with `*`.
    h.input("a2 AUTHENTICATE PLAIN\r\n");
    let Some(Event::AuthenticateStarted { id, .. }) = h.event() else {
        panic!()
    };
    h.session.send_sasl_challenge(id, b"").unwrap();
    h.output();
    assert_eq!(h.input("*\r\n"), "a2 BAD Authentication cancelled\r\n");
    assert!(matches!(h.event(), Some(Event::SaslCancelled { .. })));
    assert_eq!(h.session.state(), State::NotAuthenticated);
}

#[test]
fn auth_failures_close_the_session() {
    let mut h = Harness::tls();
    h.output();
    for n in 1..=3 {
        h.input(&format!("a{n} LOGIN alice wrong\r\n"));
        let Some(Event::LoginRequested { id, .. }) = h.event() else {
            panic!()
        };
        h.session
            .finish_authentication(id, LoginOutcome::rejected())
            .unwrap();
    }
    let out = h.output();
    assert!(
        out.ends_with("* BYE Too many authentication failures\r\n"),
        "{out}"
    );
    assert!(matches!(
        h.events().last(),
        Some(Event::Closed {
            reason: CloseReason::TooManyAuthFailures
        })
    ));
}

#[test]
fn bad_commands_close_the_session() {
    let mut config = full_config();
    config.limits.max_bad_commands = Some(3);
    let mut h = Harness::new(config, SessionOptions::default());
    h.output();
    let out = h.input("1 FOO\r\n2 BAR\r\n\r\n4 NOOP\r\n");
    assert_eq!(
        out,
        "1 BAD Unknown command\r\n2 BAD Unknown command\r\n* BAD Error in IMAP command: syntax error\r\n* BYE Too many invalid commands\r\n"
    );
    assert!(h.session.is_closed());
}

#[test]
fn pre_auth_and_authenticated_timeouts() {
    let mut h = Harness::tls();
    h.output();
    assert_eq!(
        h.session.poll_timeout(),
        Some(h.now + Duration::from_secs(60))
    );
    login(&mut h);
    assert_eq!(
        h.session.poll_timeout(),
        Some(h.now + Duration::from_secs(30 * 60))
    );
    h.input("f1 SELECT INBOX\r\n");
    assert_eq!(h.session.poll_timeout(), None, "the application is working");
}

#[test]
fn pipelined_commands_wait_for_the_application() {
    let mut h = Harness::tls();
    login(&mut h);
    assert_eq!(
        h.input("p1 LIST \"\" *\r\np2 NOOP\r\np3 CAPABILITY\r\n"),
        ""
    );
    let (id, _) = command(&mut h);
    assert!(h.session.wants_input());
    h.session
        .finish(id, Status::Ok, None, "LIST completed")
        .unwrap();
    let out = h.output();
    assert!(
        out.starts_with("p1 OK LIST completed\r\np2 OK NOOP completed\r\n* CAPABILITY"),
        "{out}"
    );
    // Past the pipelining limit the driver is told to stop reading.
    h.input("p4 LIST \"\" *\r\n");
    let _ = command(&mut h);
    let filler = "p5 NOOP\r\n".repeat(64 * 1024 / 9 + 1);
    h.input(&filler);
    assert!(!h.session.wants_input());
}

#[test]
fn compress_hands_over_the_bytes_that_follow() {
    let mut h = Harness::tls();
    login(&mut h);
    assert_eq!(
        h.input("c1 COMPRESS DEFLATE\r\n\x78\x01"),
        "c1 OK DEFLATE active\r\n"
    );
    assert!(matches!(h.event(), Some(Event::CompressionStarted)));
    assert!(!h.session.wants_input());
    assert_eq!(&h.session.take_compressed_input()[..], b"\x78\x01");
    assert!(h.session.wants_input());
    assert!(h.session.is_compression_active());
    assert_eq!(
        h.input("c2 COMPRESS DEFLATE\r\n"),
        "c2 NO [COMPRESSIONACTIVE] Already compressing\r\n"
    );
}

#[test]
fn preauth_greeting() {
    let mut h = Harness::new(
        full_config(),
        SessionOptions {
            tls_active: true,
            preauth_user: Some("bob".into()),
        },
    );
    assert!(h.output().starts_with("* PREAUTH [CAPABILITY IMAP4rev1"));
    assert_eq!(h.session.state(), State::Authenticated);
    assert_eq!(h.session.user(), Some("bob"));
}

#[test]
fn output_backlog_pauses_command_processing() {
    let mut config = full_config();
    config.limits.max_buffered_output = 1024;
    config.limits.transmit_chunk = 256;
    let mut h = Harness::new(
        config,
        SessionOptions {
            tls_active: true,
            ..SessionOptions::default()
        },
    );
    h.output();
    let input = "c CAPABILITY\r\n".repeat(200);
    h.session.handle_input(h.now, input.as_bytes());
    // One CAPABILITY answer is about 200 bytes: processing stopped near the mark.
    assert!(
        h.session.queued_output() < 1024 + 400,
        "{}",
        h.session.queued_output()
    );
    assert!(!h.session.wants_input());
    // Draining the output resumes the held-back commands, all of them answered once.
    let out = h.output();
    assert_eq!(out.matches("c OK CAPABILITY completed\r\n").count(), 200);
    assert!(h.session.wants_input());
}

#[test]
fn overlapping_ranges_resolve_to_each_message_once() {
    let mut h = Harness::tls();
    let uids: Vec<u32> = (1..=1000).collect();
    select(&mut h, &uids);
    let set = vec!["1:*"; 3000].join(",");
    h.input(&format!("f1 UID FETCH {set} FLAGS\r\n"));
    let (_, body) = command(&mut h);
    let CommandBody::Fetch { sequence_set, .. } = body else {
        panic!()
    };
    assert_eq!(h.session.resolve(&sequence_set, true).len(), 1000);
    assert_eq!(h.session.resolve(&sequence_set, false).len(), 1000);
}

#[test]
fn a_session_is_small() {
    // Many thousands of mostly idle connections: the session itself stays small.
    let size = std::mem::size_of::<cas_imap_proto::server::ServerSession>();
    assert!(size <= 512, "{size}");
}

#[test]
fn large_fetch_bodies_are_sent_from_the_applications_buffer() {
    use cas_imap_proto::server::BodyItem;
    let mut config = full_config();
    config.limits.transmit_chunk = 64;
    let mut h = Harness::new(
        config,
        SessionOptions {
            tls_active: true,
            ..SessionOptions::default()
        },
    );
    select(&mut h, &[4, 9]);
    h.input("f1 UID FETCH 9 (FLAGS BODY.PEEK[])\r\n");
    let (id, _) = command(&mut h);
    let body = bytes::Bytes::from(vec![b'x'; 1000]);
    let section = cas_imap_proto::types::Section::new(vec![], None).unwrap();
    h.session
        .send_fetch_body(
            id,
            nz(9),
            vec![FetchItem::Flags(vec![])],
            BodyItem::Section {
                section,
                origin: None,
            },
            body.clone(),
        )
        .unwrap();
    h.session
        .send_fetch_body(
            id,
            nz(4),
            vec![],
            BodyItem::Binary {
                section: vec![nz(1)],
            },
            bytes::Bytes::from_static(b"a\0b"),
        )
        .unwrap();
    h.session.finish(id, Status::Ok, None, "").unwrap();
    let mut chunk = Vec::new();
    assert_eq!(h.session.poll_transmit(&mut chunk), 64, "bounded chunks");
    let out = format!("{}{}", String::from_utf8(chunk).unwrap(), h.output());
    assert_eq!(
        out,
        format!(
            "* 2 FETCH (FLAGS () UID 9 BODY[] {{1000}}\r\n{})\r\n\
             * 1 FETCH (UID 4 BINARY[1] ~{{3}}\r\na\0b)\r\nf1 OK FETCH completed\r\n",
            "x".repeat(1000)
        )
    );
    cas_imap_proto::server::fuzzing::check_output_parses(out.as_bytes());
}

#[test]
fn literals_before_authentication_are_small() {
    let mut h = Harness::tls();
    h.output();
    assert_eq!(
        h.input("a1 LOGIN {100000}\r\n"),
        "a1 NO [TOOBIG] Literal too large\r\n"
    );
    assert_eq!(
        h.input("a2 APPEND INBOX {20000}\r\n"),
        "a2 NO [TOOBIG] Literal too large\r\n"
    );
    login(&mut h);
    assert_eq!(
        h.input("a3 APPEND INBOX {100000}\r\n"),
        "+ Ready for literal data\r\n"
    );
}
