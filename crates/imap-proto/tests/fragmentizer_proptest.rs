//! Property tests of the fragmentizer: any chunking gives the same frames, messages are exact
//! pieces of the input, memory stays within the limits (the checks live in
//! `cas_imap_proto::fuzzing`, shared with the `imap_fragmentizer` fuzz target).

use bytes::Bytes;
use cas_imap_proto::fragmentizer::{Fragmentizer, Frame, Limits, Role};
use cas_imap_proto::fuzzing::{Outcome, fragmentize, fragmentizer_chunking, small_limits};
use proptest::prelude::*;

/// One piece of IMAP-like input: a line, possibly announcing a literal whose body follows.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    let text = proptest::collection::vec(
        prop_oneof![
            8 => proptest::sample::select(b"aZ09 ()[]\\\"*".to_vec()),
            1 => proptest::sample::select(b"{}+~\r\n\0".to_vec()),
            1 => any::<u8>(),
        ],
        0..40,
    );
    let literal = (
        text.clone(),
        any::<bool>(),
        any::<bool>(),
        0usize..60,
        prop_oneof![4 => Just(0i8), 1 => -2i8..3],
        proptest::collection::vec(any::<u8>(), 0..70),
    )
        .prop_map(|(mut line, binary, plus, len, skew, body)| {
            if binary {
                line.push(b'~');
            }
            line.extend_from_slice(
                format!("{{{len}{}}}\r\n", if plus { "+" } else { "" }).as_bytes(),
            );
            // Sometimes the body is shorter or longer than announced.
            let n = len.saturating_add_signed(isize::from(skew)).min(body.len());
            line.extend_from_slice(&body[..n]);
            line
        });
    prop_oneof![
        3 => text.prop_map(|mut line| {
            line.extend_from_slice(b"\r\n");
            line
        }),
        2 => literal,
        1 => proptest::collection::vec(any::<u8>(), 0..30),
    ]
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(piece(), 0..12).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_chunking_gives_the_same_frames(data in input(), cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        let cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
        fragmentizer_chunking(&data, &cuts);
    }

    #[test]
    fn arbitrary_bytes_any_chunking(data in proptest::collection::vec(any::<u8>(), 0..300), cuts in proptest::collection::vec(0usize..300, 0..8)) {
        fragmentizer_chunking(&data, &cuts);
    }

    /// Well-formed commands with literals, pipelined: every one comes out whole.
    #[test]
    fn well_formed_messages_come_out_whole(
        commands in proptest::collection::vec(
            (proptest::collection::vec(proptest::sample::select(b"ABCxyz019 ".to_vec()), 1..30),
             proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..50), 0..3)),
            1..10),
        cuts in proptest::collection::vec(0usize..2000, 0..10),
    ) {
        let mut expected = Vec::new();
        for (line, literals) in &commands {
            let mut message = line.clone();
            for literal in literals {
                message.extend_from_slice(format!(" {{{}+}}\r\n", literal.len()).as_bytes());
                message.extend_from_slice(literal);
            }
            message.extend_from_slice(b"\r\n");
            expected.push(Outcome::Frame(Frame::Message(Bytes::from(message))));
        }
        let data: Vec<u8> = expected
            .iter()
            .flat_map(|o| match o {
                Outcome::Frame(Frame::Message(m)) => m.to_vec(),
                _ => Vec::new(),
            })
            .collect();
        for role in [Role::Server, Role::Client] {
            prop_assert_eq!(&fragmentize(role, &Limits::default(), &data, &cuts), &expected);
        }
    }

    /// Whatever arrives, a fragmentizer with small limits never holds more than the message
    /// limit plus the chunk just pushed.
    #[test]
    fn memory_stays_bounded(chunks in proptest::collection::vec(proptest::collection::vec(
        prop_oneof![4 => any::<u8>(), 1 => Just(b'\n'), 1 => Just(b'{')], 0..200), 0..30)) {
        let limits = small_limits();
        let mut f = Fragmentizer::new(Role::Client, limits.clone());
        for chunk in &chunks {
            f.push(chunk);
            prop_assert!(f.buffered() as u64 <= limits.max_message + chunk.len() as u64);
            while f.poll().is_some() {}
            prop_assert!(f.buffered() as u64 <= limits.max_message);
        }
    }
}
