//! ClientSession properties: any chunking of the server's bytes gives the same events and the
//! same bytes sent; arbitrary server bytes keep every invariant of
//! `client::fuzzing::client_session` (the same checks as the `imap_client_session` fuzz
//! target).

use cas_imap_proto::client::fuzzing::{client_session, run_chunked};
use proptest::prelude::*;

/// Server lines that drive the scripted session (tags `A1`.. in command order), valid and
/// broken ones, so random concatenations reach every path.
const PIECES: &[&[u8]] = &[
    b"* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ IDLE AUTH=PLAIN] ready\r\n",
    b"* OK [CAPABILITY IMAP4rev2] ready\r\n",
    b"* OK ready\r\n",
    b"* PREAUTH hi\r\n",
    b"* BYE go away\r\n",
    b"* CAPABILITY IMAP4rev1 LITERAL+\r\n",
    b"A1 OK done\r\n",
    b"A2 OK [CAPABILITY IMAP4rev1 IDLE] in\r\n",
    b"A2 NO [AUTHENTICATIONFAILED] no\r\n",
    b"A3 BAD cancelled\r\n",
    b"A3 OK fine\r\n",
    b"A4 OK logged in\r\n",
    b"A5 OK [READ-WRITE] selected\r\n",
    b"A6 OK fetched\r\n",
    b"A7 OK searched\r\n",
    b"A8 OK listed\r\n",
    b"A9 NO [TOOBIG] no\r\n",
    b"A9 OK [APPENDUID 1 5] appended\r\n",
    b"A10 OK idle done\r\n",
    b"A11 OK noop\r\n",
    b"A12 OK bye\r\n",
    b"+ \r\n",
    b"+ idling\r\n",
    b"+ YWJj\r\n",
    b"+ Ready\r\n",
    b"* 3 EXISTS\r\n",
    b"* 1 EXPUNGE\r\n",
    b"* OK [UIDVALIDITY 7] v\r\n",
    b"* OK [UIDNEXT 9] n\r\n",
    b"* FLAGS (\\Seen \\Deleted)\r\n",
    b"* 1 FETCH (UID 4 FLAGS (\\Seen) BODY[] {5}\r\nhello)\r\n",
    b"* 1 FETCH (BODY[] {400}\r\n",
    b"* SEARCH 1 2 3\r\n",
    b"* LIST () \"/\" INBOX\r\n",
    b"* XUNKNOWN stuff\r\n",
    b"* ENABLED QRESYNC\r\n",
    b"A99 OK stray\r\n",
    b"{3}\r\n",
    b"\r\n",
];

fn transcript() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(PIECES).prop_map(<[u8]>::to_vec),
            1 => prop::collection::vec(any::<u8>(), 0..40),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_chunking_gives_the_same_events_and_output(
        data in transcript(),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
        let whole = run_chunked(&data, &[]);
        let bytewise: Vec<usize> = (0..data.len()).collect();
        for other in [run_chunked(&data, &cuts), run_chunked(&data, &bytewise)] {
            prop_assert_eq!(&whole, &other);
        }
    }

    #[test]
    fn arbitrary_server_bytes_keep_the_invariants(data in transcript()) {
        client_session(&data);
    }

    #[test]
    fn random_bytes_keep_the_invariants(data in prop::collection::vec(any::<u8>(), 0..600)) {
        client_session(&data);
    }
}

/// The good path of the scripted session, start to end, so the properties above are known to
/// reach far into it.
#[test]
fn scripted_good_path_runs_to_logout() {
    use cas_imap_proto::client::{ClientCloseReason, Event};
    let mut data = Vec::new();
    for piece in [
        &b"* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ IDLE AUTH=PLAIN] ready\r\n"[..],
        b"A1 OK done\r\n",
        b"A2 OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ IDLE] in\r\n",
        b"+ \r\n",
        b"A3 NO [AUTHENTICATIONFAILED] x\r\n",
        b"A4 OK logged in\r\n",
        b"* 3 EXISTS\r\nA5 OK [READ-WRITE] selected\r\n",
        b"* 1 FETCH (UID 4 FLAGS (\\Seen))\r\nA6 OK fetched\r\n",
        b"* SEARCH 4\r\nA7 OK searched\r\n",
        b"* LIST () \"/\" INBOX\r\nA8 OK listed\r\n",
        b"A9 OK [APPENDUID 1 5] appended\r\n",
        b"+ idling\r\n* 4 EXISTS\r\nA10 OK idle done\r\n",
        b"A11 OK noop\r\n",
        b"* BYE bye\r\nA12 OK bye\r\n",
    ] {
        data.extend_from_slice(piece);
    }
    let (events, sent) = run_chunked(&data, &[]);
    assert!(
        matches!(
            events.last(),
            Some(Event::Closed {
                reason: ClientCloseReason::Logout
            })
        ),
        "{events:#?}"
    );
    let completed = events
        .iter()
        .filter(|e| matches!(e, Event::Completed { .. }))
        .count();
    assert_eq!(completed, 12);
    let sent = String::from_utf8_lossy(&sent);
    assert!(
        sent.starts_with(
            "A1 CAPABILITY\r\nA2 AUTHENTICATE PLAIN AGFsaWNlAHB3\r\nA3 AUTHENTICATE PLAIN\r\n"
        ),
        "{sent}"
    );
    assert!(
        sent.contains("A4 LOGIN \"al ice\" {6+}\r\np\"w\r\n\u{fffd}\r\nA5 SELECT INBOX\r\n"),
        "{sent}"
    );
    // Capabilities are forgotten with the LOGIN (none came with it): no LITERAL+ any more,
    // so the APPEND waits for a `+` that this server never sends (it just answers OK).
    assert!(
        sent.contains("A9 APPEND INBOX (\\Seen) {5000}\r\nA10 IDLE"),
        "{sent}"
    );
    assert!(
        sent.ends_with("A10 IDLE\r\nA11 NOOP\r\nA12 LOGOUT\r\n"),
        "{sent}"
    );
    client_session(&data);
}
