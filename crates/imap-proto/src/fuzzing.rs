//! Invariant checks shared by the proptests and the cargo-fuzz targets. Not a stable API.
//!
//! Every function panics when an invariant is broken and returns normally otherwise.

use bytes::Bytes;

use crate::command::{Command, parse_command, parse_command_with};
use crate::encode::{Fragment, LiteralPolicy, to_bytes, to_fragments};
use crate::fragmentizer::{Fragmentizer, Frame, Limits, LiteralHeader, Role};
use crate::parse::ParseOptions;
use crate::response::{Response, parse_response, parse_response_with};

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
            if data.len() <= 1024 {
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

/// The messages of `data` framed in `role` with default limits (LITERAL+), accepting every
/// literal: the framing a session does before parsing.
pub fn messages(role: Role, data: &[u8]) -> Vec<Bytes> {
    let limits = Limits {
        max_non_sync_literal: None,
        ..Limits::default()
    };
    let mut fragmentizer = Fragmentizer::new(role, limits);
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

/// Options with UTF-8 mailbox names accepted, to reach the `UTF8=ACCEPT` paths too.
fn utf8_options() -> ParseOptions {
    ParseOptions {
        utf8_accept: true,
        ..ParseOptions::default()
    }
}

/// `data` itself and every message a server would frame from it.
fn candidates(role: Role, data: &[u8]) -> Vec<Bytes> {
    let mut all = vec![Bytes::copy_from_slice(data)];
    all.extend(messages(role, data));
    all
}

/// Parsing arbitrary bytes as a command never panics, and errors point into the message.
/// A tag reported with an error is the one the message starts with, so `tag BAD` goes to the
/// right command.
pub fn command(data: &[u8]) {
    for message in candidates(Role::Server, data) {
        for result in [
            parse_command(&message),
            parse_command_with(&message, &utf8_options()),
        ] {
            if let Err(e) = result {
                assert!(
                    e.offset <= message.len(),
                    "{e:?} past the end of {message:?}"
                );
                if let Some(tag) = &e.tag {
                    assert!(
                        message.starts_with(tag.as_bytes()),
                        "{tag:?} is not the tag of {message:?}"
                    );
                }
            }
        }
    }
}

/// Parsing arbitrary bytes as a response never panics, and errors point into the message.
pub fn response(data: &[u8]) {
    for message in candidates(Role::Client, data) {
        for result in [
            parse_response(&message),
            parse_response_with(&message, &utf8_options()),
        ] {
            if let Err(e) = result {
                assert!(
                    e.offset <= message.len(),
                    "{e:?} past the end of {message:?}"
                );
            }
        }
    }
}

/// Checks what every encoding must satisfy: the fragments concatenate to the bytes, lines
/// end where the fragmentizer expects, and the fragmentizer frames the bytes as exactly one
/// message in `role`.
fn check_encoding(encoded: &[u8], fragments: &[Fragment], role: Role) {
    let mut joined = Vec::new();
    for fragment in fragments {
        match fragment {
            Fragment::Line(line) => {
                assert!(
                    line.ends_with(b"\r\n"),
                    "line fragment without CRLF: {line:?}"
                );
                joined.extend_from_slice(line);
            }
            Fragment::Literal { data, .. } => joined.extend_from_slice(data),
        }
    }
    assert_eq!(joined, encoded, "fragments do not add up to the encoding");
    assert_eq!(
        messages(role, encoded),
        vec![Bytes::copy_from_slice(encoded)],
        "the encoding does not frame as one message"
    );
}

/// Every command that parses encodes to bytes that parse back to the same command, and that
/// encoding is stable (encoding the re-parsed command gives the same bytes) and frames as
/// one message.
pub fn command_roundtrip(data: &[u8]) {
    for message in candidates(Role::Server, data) {
        for options in [ParseOptions::default(), utf8_options()] {
            let Ok(command) = parse_command_with(&message, &options) else {
                continue;
            };
            check_command(&command, &options);
        }
    }
}

/// The round trip of one parsed or generated command (also used by the proptests).
pub fn check_command(command: &Command<'_>, options: &ParseOptions) {
    let encoded = to_bytes(command);
    let again = match parse_command_with(&encoded, options) {
        Ok(again) => again,
        Err(e) => panic!("{command:?} encodes to {encoded:?}, which fails: {e:?}"),
    };
    assert_eq!(&again, command, "re-parse of {encoded:?}");
    assert_eq!(to_bytes(&again), encoded, "encoding not stable");
    check_encoding(
        &encoded,
        &to_fragments(command, LiteralPolicy::AsGiven),
        Role::Server,
    );
    assert_eq!(
        command.clone().into_owned(),
        *command,
        "into_owned changed the value"
    );
}

/// Every response that parses encodes to bytes that parse back to the same response; the
/// encoding is stable and frames as one message (plus the response module's own checks,
/// [`crate::response::response_roundtrip`], e.g. the all-synchronizing encoding).
pub fn response_roundtrip(data: &[u8]) {
    for message in candidates(Role::Client, data) {
        crate::response::response_roundtrip(&message);
        for options in [ParseOptions::default(), utf8_options()] {
            let Ok(response) = parse_response_with(&message, &options) else {
                continue;
            };
            check_response(&response, &options);
        }
    }
}

/// The round trip of one parsed or generated response (also used by the proptests).
pub fn check_response(response: &Response<'_>, options: &ParseOptions) {
    let encoded = to_bytes(response);
    let again = match parse_response_with(&encoded, options) {
        Ok(again) => again,
        Err(e) => panic!("{response:?} encodes to {encoded:?}, which fails: {e:?}"),
    };
    assert_eq!(&again, response, "re-parse of {encoded:?}");
    assert_eq!(to_bytes(&again), encoded, "encoding not stable");
    check_encoding(
        &encoded,
        &to_fragments(response, LiteralPolicy::AsGiven),
        Role::Client,
    );
    assert_eq!(
        response.clone().into_owned(),
        *response,
        "into_owned changed the value"
    );
}
