//! Property tests of the server session: chunking invariance of whole sessions, arbitrary
//! bytes, and the selected-mailbox view against a simple model.

use std::num::NonZeroU32;

use cas_imap_proto::response::Data;
use cas_imap_proto::server::fuzzing::{fuzz_session, run_scripted};
use cas_imap_proto::server::view::UpdateRules;
use cas_imap_proto::server::{Change, MailboxView, MessageInfo, SelectedMailbox};
use cas_imap_proto::types::{SeqOrUid, SequenceSet};
use proptest::prelude::*;

/// Pieces of plausible client input, including literals, SASL and IDLE lines, state
/// changes and garbage.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    let fixed: Vec<&'static str> = vec![
        "a LOGIN alice secret\r\n",
        "a LOGIN alice wrong\r\n",
        "a LOGIN {5}\r\nalice {6+}\r\nsecret\r\n",
        "b SELECT INBOX\r\n",
        "b EXAMINE INBOX\r\n",
        "b SELECT INBOX (QRESYNC (42 1 1:20))\r\n",
        "b SELECT INBOX (CONDSTORE)\r\n",
        "c FETCH 1:* FLAGS\r\n",
        "c FETCH 9 FLAGS\r\n",
        "d UID FETCH 1:* (FLAGS) (CHANGEDSINCE 3)\r\n",
        "e STORE 1:2 +FLAGS (\\Seen)\r\n",
        "e UID STORE 1:* (UNCHANGEDSINCE 4) -FLAGS.SILENT (\\Seen)\r\n",
        "f EXPUNGE\r\n",
        "f UID EXPUNGE 1:3\r\n",
        "f UID MOVE 2:4 Trash\r\n",
        "f CLOSE\r\n",
        "f UNSELECT\r\n",
        "g IDLE\r\n",
        "DONE\r\n",
        "h APPEND INBOX {5}\r\nhello\r\n",
        "h APPEND INBOX (\\Seen) {3+}\r\nabc {2+}\r\nde\r\n",
        "h APPEND INBOX {9000}\r\n",
        "h APPEND INBOX {5000+}\r\n",
        "j NOOP\r\n",
        "j CHECK\r\n",
        "j CAPABILITY\r\n",
        "k AUTHENTICATE PLAIN\r\n",
        "k AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n",
        "k AUTHENTICATE NTLM =\r\n",
        "AGFsaWNlAHNlY3JldA==\r\n",
        "*\r\n",
        "l STARTTLS\r\n",
        "m ENABLE QRESYNC CONDSTORE UTF8=ACCEPT IMAP4rev2\r\n",
        "n COMPRESS DEFLATE\r\n",
        "o LIST \"\" *\r\n",
        "p SEARCH ALL\r\n",
        "q LOGOUT\r\n",
        "\r\n",
        "FROB\r\n",
        "r FROB\r\n",
    ];
    prop_oneof![
        8 => proptest::sample::select(fixed).prop_map(|s| s.as_bytes().to_vec()),
        1 => proptest::collection::vec(any::<u8>(), 0..40),
    ]
}

fn session_input() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(piece(), 0..24).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn session_output_does_not_depend_on_chunking(
        input in session_input(),
        splits in proptest::collection::vec(0usize..2000, 0..12),
    ) {
        let whole = run_scripted(&input, &[], false);
        let chunked = run_scripted(&input, &splits, false);
        prop_assert_eq!(&whole, &chunked);
        let bytewise: Vec<usize> = (0..input.len()).collect();
        prop_assert_eq!(&whole, &run_scripted(&input, &bytewise, false));
    }

    #[test]
    fn arbitrary_bytes_keep_the_invariants(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        fuzz_session(&data);
    }

    #[test]
    fn sessions_with_tls_keep_the_invariants(
        input in session_input(),
        splits in proptest::collection::vec(0usize..2000, 0..6),
    ) {
        run_scripted(&input, &splits, true);
    }
}

#[test]
fn scripted_session_reaches_every_state() {
    let input = b"a LOGIN alice secret\r\nb SELECT INBOX\r\nc FETCH 1:* FLAGS\r\n\
        g IDLE\r\nDONE\r\nf EXPUNGE\r\nq LOGOUT\r\n";
    let outcome = run_scripted(input, &[], false);
    let output = String::from_utf8_lossy(&outcome.output);
    for expected in [
        "a OK [CAPABILITY",
        "* 5 EXISTS\r\n",
        "b OK [READ-WRITE] SELECT completed\r\n",
        "* 5 FETCH (FLAGS (\\Seen))\r\nc OK FETCH completed\r\n",
        "+ idling\r\n* 2 EXPUNGE\r\ng OK IDLE terminated\r\n",
        "* 1 EXPUNGE\r\nf OK Completed\r\n",
        "* BYE Logging out\r\nq OK LOGOUT completed\r\n",
    ] {
        assert!(
            output.contains(expected),
            "{expected:?} missing from {output}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// MailboxView against a model
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    Append(u8),
    Expunge(Vec<usize>),
    Flags(usize),
    Flush { expunge_allowed: bool },
    Resolve,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1u8..4).prop_map(Op::Append),
        3 => proptest::collection::vec(0usize..64, 1..4).prop_map(Op::Expunge),
        2 => (0usize..64).prop_map(Op::Flags),
        3 => any::<bool>().prop_map(|expunge_allowed| Op::Flush { expunge_allowed }),
        1 => Just(Op::Resolve),
    ]
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

fn all() -> SequenceSet {
    SequenceSet::range(SeqOrUid::Value(nz(1)), SeqOrUid::Asterisk)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn view_matches_model(
        initial in proptest::collection::btree_set(1u32..50, 0..10),
        ops in proptest::collection::vec(op(), 0..40),
        qresync in any::<bool>(),
    ) {
        let initial: Vec<u32> = initial.into_iter().collect();
        let next = initial.last().copied().unwrap_or(0) + 1;
        let snapshot = SelectedMailbox::new(
            nz(1),
            nz(next),
            None,
            initial.iter().map(|&u| MessageInfo::new(nz(u), vec![], 0)).collect(),
        );
        let mut view = MailboxView::new(&snapshot);
        // The truth (what the mailbox holds) and what the client was told.
        let mut server: Vec<u32> = initial.clone();
        let mut client: Vec<u32> = initial;
        let mut next_uid = next;
        for op in ops {
            match op {
                Op::Append(n) => {
                    for _ in 0..n {
                        view.apply(Change::Appended(MessageInfo::new(nz(next_uid), vec![], 0)));
                        server.push(next_uid);
                        next_uid += 1;
                    }
                }
                Op::Expunge(picks) => {
                    if server.is_empty() {
                        continue;
                    }
                    let mut gone: Vec<u32> =
                        picks.iter().map(|p| server[p % server.len()]).collect();
                    gone.sort_unstable();
                    gone.dedup();
                    server.retain(|u| !gone.contains(u));
                    view.apply(Change::Expunged(gone.into_iter().map(nz).collect()));
                }
                Op::Flags(pick) => {
                    if server.is_empty() {
                        continue;
                    }
                    let uid = server[pick % server.len()];
                    view.apply(Change::FlagsChanged(MessageInfo::new(nz(uid), vec![], 0)));
                }
                Op::Flush { expunge_allowed } => {
                    let rules = UpdateRules { expunge_allowed, qresync, condstore: false };
                    for data in view.take_updates(rules) {
                        match data {
                            Data::Expunge(n) => {
                                prop_assert!(expunge_allowed && !qresync);
                                let i = n.get() as usize;
                                prop_assert!(i >= 1 && i <= client.len());
                                let uid = client.remove(i - 1);
                                prop_assert!(!server.contains(&uid));
                            }
                            Data::Vanished { earlier, uids } => {
                                prop_assert!(expunge_allowed && qresync && !earlier);
                                let largest = client.last().copied().unwrap_or(0);
                                let gone: Vec<u32> = uids.iter(largest).collect();
                                for uid in &gone {
                                    prop_assert!(client.contains(uid));
                                    prop_assert!(!server.contains(uid));
                                }
                                client.retain(|u| !gone.contains(u));
                            }
                            Data::Exists(n) => {
                                let n = n as usize;
                                prop_assert!(n >= client.len(), "EXISTS decreased");
                                let known = client.last().copied().unwrap_or(0);
                                client.extend(server.iter().copied().filter(|&u| u > known));
                                prop_assert_eq!(n, client.len());
                            }
                            Data::Fetch { seq, .. } => {
                                prop_assert!(seq.get() as usize <= client.len());
                            }
                            other => prop_assert!(false, "unexpected {:?}", other),
                        }
                    }
                    if expunge_allowed {
                        prop_assert_eq!(&client, &server);
                    }
                }
                Op::Resolve => {
                    let by_uid: Vec<u32> =
                        view.resolve(&all(), true).unwrap().into_iter().map(NonZeroU32::get).collect();
                    prop_assert_eq!(&by_uid, &client);
                    if !client.is_empty() {
                        let by_seq: Vec<u32> = view
                            .resolve(&all(), false)
                            .unwrap()
                            .into_iter()
                            .map(NonZeroU32::get)
                            .collect();
                        prop_assert_eq!(&by_seq, &client);
                    }
                }
            }
            // The view's numbering is always the client's.
            prop_assert_eq!(view.exists() as usize, client.len());
            for (i, &uid) in client.iter().enumerate() {
                prop_assert_eq!(view.uid(i as u32 + 1), Some(nz(uid)));
                prop_assert_eq!(view.msn(uid), Some(nz(i as u32 + 1)));
            }
        }
    }
}
