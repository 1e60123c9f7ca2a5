//! Invariant checks shared by the proptests and the cargo-fuzz targets. Not a stable API.
//!
//! Every function panics when an invariant is broken and returns normally otherwise.

use bytes::Bytes;

use crate::fragmentizer::{Fragmentizer, Frame, Limits, LiteralHeader, Role};

/// One thing a driven [`Fragmentizer`] did, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// [`Fragmentizer::poll`] returned this frame.
    Frame(Frame),
    /// The driver answered a [`Frame::LiteralAnnounced`] with accept (`true`) or reject.
    Decided(bool),
}

/// The literal decision the drivers make, a fixed function of the announcement so that every
/// chunking sees the same decisions: refuse lengths ≡ 3 (mod 4), accept the rest.
pub fn accepts(literal: &LiteralHeader) -> bool {
    literal.length % 4 != 3
}

/// Small limits that make every kind of rejection reachable with short inputs.
pub fn small_limits() -> Limits {
    Limits {
        max_line: 48,
        max_literal: 40,
        max_append_literal: 90,
        max_non_sync_literal: Some(16),
        max_literals: 3,
        max_message: 200,
    }
}

/// Feeds `data` to a fragmentizer in the chunks that `cuts` (offsets, any order, clamped)
/// mark, draining [`Fragmentizer::poll`] after every chunk and deciding literals with
/// [`accepts`]. Checks on the way that memory stays within the limits: whenever `poll`
/// returns `None` with no decision pending, at most one partial message within
/// [`Limits::max_message`] is buffered, and nothing while discarding.
pub fn fragmentize(role: Role, limits: &Limits, data: &[u8], cuts: &[usize]) -> Vec<Outcome> {
    let mut cuts: Vec<usize> = cuts
        .iter()
        .map(|&c| c.min(data.len()))
        .chain([data.len()])
        .collect();
    cuts.sort_unstable();
    let mut fragmentizer = Fragmentizer::new(role, limits.clone());
    let mut outcomes = Vec::new();
    let mut start = 0;
    for cut in cuts {
        fragmentizer.push(data.get(start..cut).unwrap_or_default());
        start = cut;
        drain(&mut fragmentizer, &mut outcomes);
    }
    outcomes
}

fn drain(fragmentizer: &mut Fragmentizer, outcomes: &mut Vec<Outcome>) {
    loop {
        match fragmentizer.poll() {
            Some(Frame::LiteralAnnounced(announcement)) => {
                let accept = accepts(&announcement.literal);
                outcomes.push(Outcome::Frame(Frame::LiteralAnnounced(announcement)));
                let decided = if accept {
                    fragmentizer.accept_literal()
                } else {
                    fragmentizer.reject_literal()
                };
                assert_eq!(decided, Ok(()), "decision refused");
                outcomes.push(Outcome::Decided(accept));
            }
            Some(frame) => outcomes.push(Outcome::Frame(frame)),
            None => {
                if fragmentizer.pending_literal().is_none() {
                    let limit = fragmentizer.limits().max_message;
                    assert!(
                        fragmentizer.buffered() as u64 <= limit,
                        "{} bytes buffered, limit {limit}",
                        fragmentizer.buffered()
                    );
                    if fragmentizer.is_discarding() {
                        assert_eq!(fragmentizer.buffered(), 0, "discarded bytes buffered");
                    }
                }
                return;
            }
        }
    }
}

/// Checks the outcomes of one run over `data`: messages are exact, ordered, non-overlapping
/// pieces of the input, each ending in LF and within the limits.
fn check_messages(data: &[u8], limits: &Limits, outcomes: &[Outcome]) {
    let mut cursor = 0;
    for outcome in outcomes {
        if let Outcome::Frame(Frame::Message(message)) = outcome {
            assert_eq!(message.last(), Some(&b'\n'), "message without LF");
            assert!(message.len() as u64 <= limits.max_message);
            let rest = data.get(cursor..).unwrap_or_default();
            let Some(at) = memchr::memmem::find(rest, message) else {
                panic!("message {message:?} is not a piece of the input after {cursor}");
            };
            cursor = cursor.saturating_add(at).saturating_add(message.len());
        }
    }
}

/// Any chunking of `data` (at the offsets in `cuts`) gives the same outcomes as one push
/// and as byte-by-byte pushes, in both roles, with the default and with [`small_limits`].
pub fn fragmentizer_chunking(data: &[u8], cuts: &[usize]) {
    let byte_cuts: Vec<usize> = (0..data.len()).collect();
    for role in [Role::Server, Role::Client] {
        for limits in [Limits::default(), small_limits()] {
            let whole = fragmentize(role, &limits, data, &[]);
            check_messages(data, &limits, &whole);
            let chunked = fragmentize(role, &limits, data, cuts);
            assert_eq!(chunked, whole, "chunking {cuts:?} changed the outcomes");
            if data.len() <= 4096 {
                let bytewise = fragmentize(role, &limits, data, &byte_cuts);
                assert_eq!(bytewise, whole, "byte-by-byte input changed the outcomes");
            }
        }
    }
}

/// [`fragmentizer_chunking`] with cut points derived from the input itself (for fuzzing
/// with plain byte strings).
pub fn fragmentizer(data: &[u8]) {
    let mut cuts = Vec::new();
    let mut state: usize = data.len();
    for (i, &b) in data.iter().enumerate() {
        state = state.wrapping_mul(31).wrapping_add(usize::from(b));
        if state.is_multiple_of(7) {
            cuts.push(i);
        }
    }
    fragmentizer_chunking(data, &cuts);
}

/// The messages of `data` framed in the server role with default limits, accepting every
/// literal: the command framing a server session does.
pub fn messages(data: &[u8]) -> Vec<Bytes> {
    let mut fragmentizer = Fragmentizer::new(Role::Server, Limits::default());
    fragmentizer.push(data);
    let mut messages = Vec::new();
    while let Some(frame) = fragmentizer.poll() {
        match frame {
            Frame::Message(message) => messages.push(message),
            Frame::LiteralAnnounced(_) => {
                let accepted = fragmentizer.accept_literal();
                assert_eq!(accepted, Ok(()));
            }
            Frame::Rejected(_) => {}
        }
    }
    messages
}
