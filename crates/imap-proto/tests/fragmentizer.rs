//! Fragmentizer transcripts: bytes in, frames out, decisions in between.

use bytes::Bytes;
use cas_imap_proto::fragmentizer::{
    Fragmentizer, Frame, LimitExceeded, Limits, LiteralHeader, NoPendingLiteral, Recovery, Role,
    literal_header,
};

fn server(limits: Limits) -> Fragmentizer {
    Fragmentizer::new(Role::Server, limits)
}

fn drain(f: &mut Fragmentizer) -> Vec<Frame> {
    std::iter::from_fn(|| f.poll()).collect()
}

fn message(bytes: &[u8]) -> Frame {
    Frame::Message(Bytes::copy_from_slice(bytes))
}

fn rejected(frame: &Frame) -> (LimitExceeded, Recovery, &[u8]) {
    match frame {
        Frame::Rejected(r) => (r.limit, r.recovery, &r.head[..]),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn announced(frame: &Frame) -> (LiteralHeader, bool, usize, &[u8]) {
    match frame {
        Frame::LiteralAnnounced(a) => (a.literal, a.append, a.index, &a.head[..]),
        other => panic!("expected an announcement, got {other:?}"),
    }
}

fn sync(length: u64) -> LiteralHeader {
    LiteralHeader {
        length,
        non_sync: false,
        binary: false,
    }
}

fn non_sync(length: u64) -> LiteralHeader {
    LiteralHeader {
        length,
        non_sync: true,
        binary: false,
    }
}

#[test]
fn pipelined_lines() {
    let mut f = server(Limits::default());
    f.push(b"a1 NOOP\r\na2 CAPABILITY\r\na3 LOG");
    assert_eq!(
        drain(&mut f),
        vec![message(b"a1 NOOP\r\n"), message(b"a2 CAPABILITY\r\n")]
    );
    assert_eq!(f.buffered(), 6);
    f.push(b"OUT\r\n");
    assert_eq!(drain(&mut f), vec![message(b"a3 LOGOUT\r\n")]);
    assert!(f.is_idle());
}

#[test]
fn bare_lf_ends_a_line_and_a_literal_announcement() {
    let mut f = server(Limits {
        max_non_sync_literal: None,
        ..Limits::default()
    });
    f.push(b"a1 NOOP\na2 LOGIN {3+}\nbob pw\n");
    assert_eq!(
        drain(&mut f),
        vec![message(b"a1 NOOP\n"), message(b"a2 LOGIN {3+}\nbob pw\n")]
    );
}

#[test]
fn synchronizing_literals_wait_for_the_decision() {
    let mut f = server(Limits::default());
    f.push(b"a1 LOGIN {5}\r\n");
    let frames = drain(&mut f);
    assert_eq!(frames.len(), 1);
    let (literal, append, index, head) = announced(&frames[0]);
    assert_eq!(literal, sync(5));
    assert!(!append);
    assert_eq!(index, 0);
    assert_eq!(head, b"a1 LOGIN {5}\r\n");
    assert_eq!(f.pending_literal(), Some(sync(5)));
    // Nothing moves until the session decides.
    f.push(b"alice {6}\r\n");
    assert_eq!(f.poll(), None);
    f.accept_literal().unwrap();
    let frames = drain(&mut f);
    let (literal, _, index, _) = announced(&frames[0]);
    assert_eq!((literal, index), (sync(6), 1));
    f.accept_literal().unwrap();
    f.push(b"sec");
    assert_eq!(f.poll(), None);
    f.push(b"ret\r\na2 NOOP\r\n");
    assert_eq!(
        drain(&mut f),
        vec![
            message(b"a1 LOGIN {5}\r\nalice {6}\r\nsecret\r\n"),
            message(b"a2 NOOP\r\n")
        ]
    );
}

#[test]
fn decisions_without_a_pending_literal_are_errors() {
    let mut f = server(Limits::default());
    assert_eq!(f.accept_literal(), Err(NoPendingLiteral));
    assert_eq!(f.reject_literal(), Err(NoPendingLiteral));
    f.push(b"a1 NOOP\r\n");
    assert_eq!(drain(&mut f), vec![message(b"a1 NOOP\r\n")]);
    assert_eq!(f.accept_literal(), Err(NoPendingLiteral));
}

#[test]
fn rejected_literal_drops_the_message_and_the_next_byte_starts_a_command() {
    let mut f = server(Limits::default());
    f.push(b"a1 APPEND INBOX {99999}\r\n");
    let frames = drain(&mut f);
    let (literal, append, _, _) = announced(&frames[0]);
    assert_eq!(literal, sync(99999));
    assert!(append);
    f.reject_literal().unwrap();
    assert_eq!(f.reject_literal(), Err(NoPendingLiteral));
    assert!(f.is_idle());
    f.push(b"a2 NOOP\r\n");
    assert_eq!(drain(&mut f), vec![message(b"a2 NOOP\r\n")]);
}

#[test]
fn non_synchronizing_literals_need_no_decision() {
    let mut f = server(Limits::default());
    f.push(b"a1 LOGIN {5+}\r\nalice {4096+}\r\n");
    f.push(&[b'x'; 4096]);
    f.push(b"\r\n");
    let frames = drain(&mut f);
    assert_eq!(frames.len(), 1);
    let Frame::Message(m) = &frames[0] else {
        panic!("{frames:?}")
    };
    assert_eq!(m.len(), 15 + 15 + 4096 + 2);
}

#[test]
fn literal_minus_refuses_large_non_synchronizing_literals_and_skips_their_bytes() {
    let mut f = server(Limits::default());
    // The literal holds text that looks like commands; it must never be framed as one.
    let mut body = b"a9 DELETE INBOX\r\n".repeat(300);
    body.truncate(4097);
    f.push(b"a1 APPEND INBOX {4097+}\r\n");
    f.push(&body[..100]);
    let frames = drain(&mut f);
    assert_eq!(frames.len(), 1);
    let (limit, recovery, head) = rejected(&frames[0]);
    assert_eq!(
        limit,
        LimitExceeded::NonSyncLiteralTooLarge {
            literal: non_sync(4097),
            limit: 4096
        }
    );
    assert_eq!(recovery, Recovery::Discarding);
    assert_eq!(head, b"a1 APPEND INBOX {4097+}\r\n");
    assert!(f.is_discarding());
    assert_eq!(f.buffered(), 0);
    f.push(&body[100..]);
    assert_eq!(f.buffered(), 0);
    // The rest of the message, including a second literal, is discarded as well.
    f.push(b" more {3+}\r\na9 \r\na2 NOOP\r\n");
    assert_eq!(drain(&mut f), vec![message(b"a2 NOOP\r\n")]);
}

#[test]
fn literal_plus_accepts_large_non_synchronizing_literals() {
    let mut f = server(Limits {
        max_non_sync_literal: None,
        ..Limits::default()
    });
    f.push(b"a1 APPEND INBOX {10000+}\r\n");
    f.push(&[b'y'; 10000]);
    f.push(b"\r\n");
    let frames = drain(&mut f);
    assert!(matches!(&frames[..], [Frame::Message(m)] if m.len() == 26 + 10002));
}

#[test]
fn literal8_may_hold_nul_and_line_ends() {
    let mut f = server(Limits::default());
    f.push(b"a1 APPEND INBOX ~{6}\r\n");
    let frames = drain(&mut f);
    let (literal, append, _, _) = announced(&frames[0]);
    assert_eq!(
        literal,
        LiteralHeader {
            length: 6,
            non_sync: false,
            binary: true
        }
    );
    assert!(append);
    f.accept_literal().unwrap();
    f.push(b"\0\r\n\0\n}\r\n");
    assert_eq!(
        drain(&mut f),
        vec![message(b"a1 APPEND INBOX ~{6}\r\n\0\r\n\0\n}\r\n")]
    );
}

#[test]
fn empty_literal() {
    let mut f = server(Limits::default());
    f.push(b"a1 LOGIN {0+}\r\n {0+}\r\n\r\n");
    assert_eq!(
        drain(&mut f),
        vec![message(b"a1 LOGIN {0+}\r\n {0+}\r\n\r\n")]
    );
}

#[test]
fn overlong_line_is_reported_at_once_and_discarded_without_buffering() {
    let mut f = server(Limits {
        max_line: 20,
        ..Limits::default()
    });
    f.push(b"a1 SEARCH TEXT xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    let frames = drain(&mut f);
    let (limit, recovery, head) = rejected(&frames[0]);
    assert_eq!(limit, LimitExceeded::LineTooLong { limit: 20 });
    assert_eq!(recovery, Recovery::Discarding);
    assert_eq!(head, b"a1 SEARCH TEXT xxxxx");
    assert_eq!(f.buffered(), 0);
    f.push(&[b'x'; 100_000]);
    assert_eq!(f.buffered(), 0);
    assert_eq!(drain(&mut f), vec![]);
    f.push(b"x\r\na2 NOOP\r\n");
    assert_eq!(drain(&mut f), vec![message(b"a2 NOOP\r\n")]);
}

#[test]
fn line_limit_counts_the_line_end() {
    let mut f = server(Limits {
        max_line: 9,
        ..Limits::default()
    });
    f.push(b"a1 NOOP\r\na2 NOOP \r\na3 NOOP\r\n");
    let frames = drain(&mut f);
    assert_eq!(frames.len(), 3);
    assert_eq!(frames[0], message(b"a1 NOOP\r\n"));
    assert_eq!(
        rejected(&frames[1]).0,
        LimitExceeded::LineTooLong { limit: 9 }
    );
    assert_eq!(frames[2], message(b"a3 NOOP\r\n"));
}

#[test]
fn overlong_line_ending_in_a_non_synchronizing_literal_skips_the_literal() {
    let mut f = server(Limits {
        max_line: 16,
        max_non_sync_literal: None,
        ..Limits::default()
    });
    f.push(b"a1 APPEND INBOX (\\Seen) {11+}\r\na2 LOGOUT\r\n\r\na3 NOOP\r\n");
    let frames = drain(&mut f);
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(
        rejected(&frames[0]).0,
        LimitExceeded::LineTooLong { limit: 16 }
    );
    assert_eq!(frames[1], message(b"a3 NOOP\r\n"));
}

#[test]
fn overlong_line_ending_in_a_synchronizing_literal_ends_the_message() {
    // The client waits for `+`, which never comes: its next bytes are a new command.
    let mut f = server(Limits {
        max_line: 16,
        ..Limits::default()
    });
    f.push(b"a1 APPEND INBOX (\\Seen) {11}\r\na2 NOOP\r\n");
    let frames = drain(&mut f);
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[1], message(b"a2 NOOP\r\n"));
}

#[test]
fn too_large_synchronizing_literal_is_refused_without_continuation() {
    let mut f = server(Limits {
        max_literal: 10,
        ..Limits::default()
    });
    f.push(b"a1 LOGIN {11}\r\na2 NOOP\r\n");
    let frames = drain(&mut f);
    assert_eq!(frames.len(), 2);
    let (limit, recovery, head) = rejected(&frames[0]);
    assert_eq!(
        limit,
        LimitExceeded::LiteralTooLarge {
            literal: sync(11),
            limit: 10,
            append: false
        }
    );
    assert_eq!(recovery, Recovery::Refused);
    assert_eq!(head, b"a1 LOGIN {11}\r\n");
    assert_eq!(frames[1], message(b"a2 NOOP\r\n"));
}

#[test]
fn append_has_its_own_literal_limit() {
    let limits = Limits {
        max_literal: 10,
        max_append_literal: 100,
        ..Limits::default()
    };
    let mut f = server(limits);
    f.push(b"a1 append INBOX {50}\r\n");
    let frames = drain(&mut f);
    let (literal, append, _, _) = announced(&frames[0]);
    assert_eq!((literal, append), (sync(50), true));
    f.reject_literal().unwrap();
    f.push(b"a2 APPEND INBOX {101}\r\n");
    let (limit, recovery, _) = rejected(&drain(&mut f)[0]).to_owned();
    assert_eq!(
        limit,
        LimitExceeded::LiteralTooLarge {
            literal: sync(101),
            limit: 100,
            append: true
        }
    );
    assert_eq!(recovery, Recovery::Refused);
    // Not APPEND: the general limit.
    f.push(b"a3 APPENDX INBOX {50}\r\n");
    let frames = drain(&mut f);
    assert!(matches!(
        rejected(&frames[0]).0,
        LimitExceeded::LiteralTooLarge {
            limit: 10,
            append: false,
            ..
        }
    ));
}

#[test]
fn too_many_literals() {
    let mut f = server(Limits {
        max_literals: 2,
        max_non_sync_literal: None,
        ..Limits::default()
    });
    f.push(b"a1 X {1+}\r\na {1+}\r\nb {1+}\r\nc\r\na2 NOOP\r\n");
    let frames = drain(&mut f);
    assert_eq!(frames.len(), 2);
    let (limit, recovery, head) = rejected(&frames[0]);
    assert_eq!(limit, LimitExceeded::TooManyLiterals { limit: 2 });
    assert_eq!(recovery, Recovery::Discarding);
    assert_eq!(head, b"a1 X {1+}\r\na {1+}\r\nb {1+}\r\n");
    assert_eq!(frames[1], message(b"a2 NOOP\r\n"));
}

#[test]
fn message_size_limit_covers_lines_and_literals() {
    let mut f = server(Limits {
        max_message: 40,
        ..Limits::default()
    });
    f.push(b"a1 LOGIN {5+}\r\nalice {30+}\r\n");
    let frames = drain(&mut f);
    assert_eq!(
        rejected(&frames[0]).0,
        LimitExceeded::MessageTooLarge { limit: 40 }
    );
    f.push(&[b'z'; 30]);
    f.push(b"\r\na2 LOGIN {5+}\r\nalice bobbobbobbobbobbobbob\r\na3 NOOP\r\n");
    let frames = drain(&mut f);
    assert_eq!(frames.len(), 2, "{frames:?}");
    let (limit, _, head) = rejected(&frames[0]);
    assert_eq!(limit, LimitExceeded::MessageTooLarge { limit: 40 });
    assert_eq!(head.len(), 40);
    assert_eq!(frames[1], message(b"a3 NOOP\r\n"));
}

#[test]
fn client_role_frames_server_literals_without_decisions() {
    let mut f = Fragmentizer::new(Role::Client, Limits::default());
    f.push(b"* 1 FETCH (UID 7 BODY[] {5}\r\nhello BODY[1] ~{2}\r\n\0\0)\r\n+ Ready\r\n");
    assert_eq!(
        drain(&mut f),
        vec![
            message(b"* 1 FETCH (UID 7 BODY[] {5}\r\nhello BODY[1] ~{2}\r\n\0\0)\r\n"),
            message(b"+ Ready\r\n"),
        ]
    );
}

#[test]
fn client_role_skips_too_large_literals() {
    let mut f = Fragmentizer::new(
        Role::Client,
        Limits {
            max_literal: 4,
            ..Limits::default()
        },
    );
    f.push(b"* 1 FETCH (BODY[] {5}\r\n* BYE)\r\n* 2 EXISTS\r\n");
    let frames = drain(&mut f);
    assert_eq!(frames.len(), 2);
    let (limit, recovery, _) = rejected(&frames[0]);
    assert!(matches!(limit, LimitExceeded::LiteralTooLarge { .. }));
    assert_eq!(recovery, Recovery::Discarding);
    assert_eq!(frames[1], message(b"* 2 EXISTS\r\n"));
}

#[test]
fn literal_bodies_are_not_scanned_for_line_ends() {
    let mut f = Fragmentizer::new(Role::Client, Limits::default());
    f.push(b"* 1 FETCH (BODY[] {12}\r\n\r\n{3}\r\n\r\n\n\n\n)\r\n");
    assert_eq!(
        drain(&mut f),
        vec![message(
            b"* 1 FETCH (BODY[] {12}\r\n\r\n{3}\r\n\r\n\n\n\n)\r\n"
        )]
    );
}

#[test]
fn byte_by_byte_input_gives_the_same_messages() {
    let input: &[u8] = b"a1 LOGIN {5+}\r\nalice {6+}\r\nsecret\r\na2 SELECT INBOX\r\n";
    let mut f = server(Limits::default());
    let mut frames = Vec::new();
    for b in input {
        f.push(std::slice::from_ref(b));
        frames.extend(drain(&mut f));
    }
    assert_eq!(
        frames,
        vec![
            message(b"a1 LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n"),
            message(b"a2 SELECT INBOX\r\n")
        ]
    );
}

#[test]
fn memory_is_released_after_a_large_message() {
    let mut f = server(Limits {
        max_non_sync_literal: None,
        ..Limits::default()
    });
    f.push(b"a1 APPEND INBOX {1000000+}\r\n");
    assert_eq!(f.poll(), None);
    for _ in 0..100 {
        f.push(&[b'm'; 10_000]);
        assert_eq!(f.poll(), None);
    }
    f.push(b"\r\na2 NO");
    let frames = drain(&mut f);
    assert!(matches!(&frames[..], [Frame::Message(m)] if m.len() == 28 + 1_000_000 + 2));
    drop(frames);
    assert_eq!(f.buffered(), 5);
    assert!(f.capacity() < 64 * 1024, "capacity {}", f.capacity());
    f.push(b"OP\r\n");
    assert_eq!(drain(&mut f), vec![message(b"a2 NOOP\r\n")]);
    assert!(f.capacity() < 64 * 1024);
}

#[test]
fn take_buffered_and_clear() {
    let mut f = server(Limits::default());
    f.push(b"a1 COMPRESS DEFLATE\r\n\x78\x9c\x01\x02");
    assert_eq!(drain(&mut f), vec![message(b"a1 COMPRESS DEFLATE\r\n")]);
    assert_eq!(&f.take_buffered()[..], b"\x78\x9c\x01\x02");
    assert!(f.is_idle());
    f.push(b"a2 STARTTLS\r\na3 LOGIN a b\r\n");
    assert_eq!(f.poll(), Some(message(b"a2 STARTTLS\r\n")));
    f.clear();
    assert_eq!(f.poll(), None);
    assert!(f.is_idle());
}

#[test]
fn limits_can_change_between_messages() {
    let mut f = server(Limits::default());
    f.limits_mut().max_append_literal = 3;
    f.push(b"a1 APPEND INBOX {4}\r\n");
    assert!(matches!(
        rejected(&drain(&mut f)[0]).0,
        LimitExceeded::LiteralTooLarge { limit: 3, .. }
    ));
    assert_eq!(f.limits().max_append_literal, 3);
    assert_eq!(f.role(), Role::Server);
}

#[test]
fn literal_header_known_answers() {
    let h = |s: &[u8]| literal_header(s);
    assert_eq!(h(b"a LOGIN {5}\r\n"), Some(sync(5)));
    assert_eq!(h(b"{5+}\r\n"), Some(non_sync(5)));
    assert_eq!(h(b"{05}\n"), Some(sync(5)));
    assert_eq!(
        h(b"x ~{7+}\r\n"),
        Some(LiteralHeader {
            length: 7,
            non_sync: true,
            binary: true
        })
    );
    assert_eq!(
        h(b"{99999999999999999999999}\r\n").map(|l| l.length),
        Some(u64::MAX)
    );
    for no in [
        &b"a NOOP\r\n"[..],
        b"{}\r\n",
        b"{+}\r\n",
        b"{5 }\r\n",
        b"{5}\r\n ",
        b"5}\r\n",
        b"{5}}\r\n",
        b"{-5}\r\n",
        b"{5++}\r\n",
        b"{5}",
        b"",
        // Too many leading zeros to fit the window the fragmentizer keeps.
        b"{000000000000000000000000000000005}\r\n",
    ] {
        assert_eq!(h(no), None, "{no:?}");
    }
}

#[test]
fn limit_display() {
    assert_eq!(
        LimitExceeded::LineTooLong { limit: 8 }.to_string(),
        "line longer than 8 bytes"
    );
    assert_eq!(
        LimitExceeded::NonSyncLiteralTooLarge {
            literal: non_sync(5000),
            limit: 4096
        }
        .to_string(),
        "non-synchronizing literal of 5000 bytes exceeds 4096"
    );
}

#[test]
fn an_announcement_alone_does_not_allocate_the_literal() {
    let mut f = server(Limits {
        max_non_sync_literal: None,
        ..Limits::default()
    });
    f.push(b"a1 APPEND INBOX {20000000+}\r\n");
    assert_eq!(f.poll(), None);
    assert!(f.capacity() <= 2 * 1024 * 1024, "capacity {}", f.capacity());
}
