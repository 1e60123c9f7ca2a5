//! IMAP benches, side by side with imap-codec 2.0.0-alpha.10 on the same inputs in the same
//! process: parsing complete command and response messages (bytes/s), and framing large
//! literals with the fragmentizer (bytes/s).
//!
//! Both parsers get exactly the bytes of one complete message (literals inline), as they do
//! behind their fragmentizers. The group names are `imap_command/<input>`,
//! `imap_response/<input>` and `imap_framing/<input>`; the functions are `cas` and
//! `imap-codec`. Inputs imap-codec does not understand run for `cas` only: the ESEARCH
//! response, and command lines it refuses (they are named on stderr), which are compared
//! without them and timed for `cas` alone as `<input>_all`.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use cas_imap_proto::command::parse_command;
use cas_imap_proto::fragmentizer::{Fragmentizer, Frame, Limits, Role};
use cas_imap_proto::response::parse_response;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use imap_codec::decode::Decoder;
use imap_codec::{CommandCodec, ResponseCodec};

/// The client lines of the RFC 9051 §8 sample session that are commands (the SASL
/// continuation data lines are not).
const RFC9051_SESSION: &[&[u8]] = &[
    b"a000 starttls\r\n",
    b"A001 AUTHENTICATE SCRAM-SHA-256 biwsbj11c2VyLHI9ck9wck5HZndFYmVSV2diTkVrcU8=\r\n",
    b"babc ENABLE IMAP4rev2\r\n",
    b"a002 select inbox\r\n",
    b"a003 fetch 12 full\r\n",
    b"a004 fetch 12 body[header]\r\n",
    b"a005 store 12 +flags \\deleted\r\n",
    b"a006 logout\r\n",
];

/// A message body of `size` bytes of typical mail text.
fn mail_body(size: usize) -> Vec<u8> {
    let mut body =
        b"From: Alice <alice@example.org>\r\nTo: Bob <bob@example.org>\r\nSubject: big\r\n\r\n"
            .to_vec();
    while body.len() < size {
        body.extend_from_slice(
            b"The quick brown fox jumps over the lazy dog, 0123456789 abcdefghijklmnopq\r\n",
        );
    }
    body.truncate(size);
    body
}

fn append_message(size: usize, non_sync: bool) -> Vec<u8> {
    let plus = if non_sync { "+" } else { "" };
    let mut message =
        format!("a6 APPEND INBOX (\\Seen) \"07-Feb-1994 21:52:25 -0800\" {{{size}{plus}}}\r\n")
            .into_bytes();
    message.extend_from_slice(&mail_body(size));
    message.extend_from_slice(b"\r\n");
    message
}

/// The command corpus: name and one complete message (or several, for the session).
fn commands() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    vec![
        ("noop", vec![b"a1 NOOP\r\n".to_vec()]),
        (
            "login",
            vec![b"a2 LOGIN alice.example \"correct horse battery staple\"\r\n".to_vec()],
        ),
        ("select", vec![b"a3 SELECT \"Archive/2024\"\r\n".to_vec()]),
        (
            "uid_search_complex",
            vec![
                b"a4 UID SEARCH CHARSET UTF-8 OR (FROM \"alice@example.org\" SUBJECT \"quarterly report\") (NOT SEEN SINCE 1-Feb-2024 LARGER 10000) UID 1:100,200:300,1000:* NOT DELETED HEADER \"X-Priority\" \"1\" BEFORE 31-Dec-2024 OR TO bob CC carol\r\n"
                    .to_vec(),
            ],
        ),
        (
            "uid_fetch_many_attributes",
            vec![
                b"a5 UID FETCH 1:4096,5000:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (DATE FROM TO CC SUBJECT MESSAGE-ID IN-REPLY-TO REFERENCES)] BODY.PEEK[1.2]<0.2048> BODY[TEXT] BINARY.PEEK[1] BINARY.SIZE[1])\r\n"
                    .to_vec(),
            ],
        ),
        ("append_1mb", vec![append_message(1 << 20, false)]),
        (
            "rfc9051_session",
            RFC9051_SESSION.iter().map(|l| l.to_vec()).collect(),
        ),
    ]
}

fn fetch_response() -> Vec<u8> {
    b"* 4711 FETCH (UID 98234 FLAGS (\\Seen $Forwarded) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 44827 ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev2 WG mtg summary and minutes\" ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((NIL NIL \"imap\" \"cac.washington.edu\")) ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\") (\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL \"<B27397-0100000@cac.washington.edu>\") BODYSTRUCTURE (((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"UTF-8\") NIL NIL \"QUOTED-PRINTABLE\" 1152 23 NIL NIL NIL NIL)(\"TEXT\" \"HTML\" (\"CHARSET\" \"UTF-8\") NIL NIL \"QUOTED-PRINTABLE\" 4096 80 NIL NIL NIL NIL) \"ALTERNATIVE\" (\"BOUNDARY\" \"b1\") NIL NIL NIL)(\"APPLICATION\" \"PDF\" (\"NAME\" \"report.pdf\") \"<part2@example.org>\" \"Quarterly report\" \"BASE64\" 38400 NIL (\"ATTACHMENT\" (\"FILENAME\" \"report.pdf\")) NIL NIL)(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 342 (\"Mon, 7 Feb 1994 21:52:25 -0800\" \"afternoon meeting\" ((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) NIL NIL ((NIL NIL \"mooch\" \"owatagu.siam.edu.example\")) NIL NIL NIL \"<B27397-0100000@Blurdybloop.example>\") (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 60 2) 12) \"MIXED\" (\"BOUNDARY\" \"b0\") NIL (\"EN\") NIL))\r\n"
        .to_vec()
}

fn esearch_response(ranges: u32) -> Vec<u8> {
    let mut line = b"* ESEARCH (TAG \"a7\") UID MIN 1 MAX 99999 COUNT 12345 ALL ".to_vec();
    for i in 0..ranges {
        if i > 0 {
            line.push(b',');
        }
        line.extend_from_slice(format!("{}:{}", i * 10 + 1, i * 10 + 4).as_bytes());
    }
    line.extend_from_slice(b"\r\n");
    line
}

fn search_response(numbers: u32) -> Vec<u8> {
    let mut line = b"* SEARCH".to_vec();
    for i in 0..numbers {
        line.extend_from_slice(format!(" {}", i * 3 + 1).as_bytes());
    }
    line.extend_from_slice(b"\r\n");
    line
}

fn list_responses() -> Vec<Vec<u8>> {
    [
        &b"* LIST (\\HasChildren) \"/\" INBOX\r\n"[..],
        b"* LIST (\\HasNoChildren \\Drafts) \"/\" Drafts\r\n",
        b"* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Items\"\r\n",
        b"* LIST (\\HasNoChildren \\Trash) \"/\" \"Deleted Items\"\r\n",
        b"* LIST (\\HasNoChildren \\Junk) \"/\" \"Junk E-mail\"\r\n",
        b"* LIST (\\HasNoChildren) \"/\" \"INBOX/Projects/2024/Q3 &AMk-t&AOk-\"\r\n",
        b"* LIST (\\Noselect \\HasChildren) \"/\" Archive\r\n",
        b"* LIST (\\HasNoChildren \\Archive) \"/\" \"Archive/2023\"\r\n",
    ]
    .iter()
    .map(|l| l.to_vec())
    .collect()
}

/// The response corpus; the flag says whether imap-codec parses it.
fn responses() -> Vec<(&'static str, Vec<Vec<u8>>, bool)> {
    vec![
        ("fetch_bodystructure_envelope", vec![fetch_response()], true),
        ("esearch_5000_ranges", vec![esearch_response(5000)], false),
        ("search_10000_numbers", vec![search_response(10_000)], true),
        ("list", list_responses(), true),
    ]
}

fn total_len(messages: &[Vec<u8>]) -> u64 {
    messages.iter().map(|m| m.len() as u64).sum()
}

fn command_parsing(c: &mut Criterion) {
    let mut group = c.benchmark_group("imap_command");
    let codec = CommandCodec::default();
    for (name, messages) in commands() {
        for m in &messages {
            if let Err(e) = parse_command(m) {
                panic!("cas fails on {name}: {e:?}");
            }
        }
        // Compare on the messages both parsers accept; time ours on the rest separately.
        let (shared, ours_only): (Vec<Vec<u8>>, Vec<Vec<u8>>) =
            messages.into_iter().partition(|m| codec.decode(m).is_ok());
        for m in &ours_only {
            eprintln!(
                "imap_command/{name}: imap-codec refuses {:?}",
                String::from_utf8_lossy(m)
            );
        }
        if !ours_only.is_empty() {
            let all: Vec<Vec<u8>> = shared.iter().chain(&ours_only).cloned().collect();
            group.throughput(Throughput::Bytes(total_len(&all)));
            let id = BenchmarkId::new("cas", format!("{name}_all"));
            group.bench_with_input(id, &all, |b, messages| {
                b.iter(|| {
                    for m in messages {
                        let _ = black_box(parse_command(black_box(m)));
                    }
                });
            });
        }
        assert!(!shared.is_empty(), "imap-codec parses nothing of {name}");
        group.throughput(Throughput::Bytes(total_len(&shared)));
        group.bench_with_input(BenchmarkId::new("cas", name), &shared, |b, messages| {
            b.iter(|| {
                for m in messages {
                    let _ = black_box(parse_command(black_box(m)));
                }
            });
        });
        group.bench_with_input(
            BenchmarkId::new("imap-codec", name),
            &shared,
            |b, messages| {
                b.iter(|| {
                    for m in messages {
                        let _ = black_box(codec.decode(black_box(m)));
                    }
                });
            },
        );
    }
    group.finish();
}

fn response_parsing(c: &mut Criterion) {
    let mut group = c.benchmark_group("imap_response");
    for (name, messages, codec_parses) in responses() {
        for m in &messages {
            if let Err(e) = parse_response(m) {
                panic!("cas fails on {name}: {e:?}");
            }
            if codec_parses && let Err(e) = ResponseCodec::default().decode(m) {
                panic!(
                    "imap-codec fails on {name}: {e:?} ({})",
                    String::from_utf8_lossy(m)
                );
            }
        }
        group.throughput(Throughput::Bytes(total_len(&messages)));
        group.bench_with_input(BenchmarkId::new("cas", name), &messages, |b, messages| {
            b.iter(|| {
                for m in messages {
                    let _ = black_box(parse_response(black_box(m)));
                }
            });
        });
        if codec_parses {
            let codec = ResponseCodec::default();
            group.bench_with_input(
                BenchmarkId::new("imap-codec", name),
                &messages,
                |b, messages| {
                    b.iter(|| {
                        for m in messages {
                            let _ = black_box(codec.decode(black_box(m)));
                        }
                    });
                },
            );
        }
    }
    group.finish();
}

/// Frames `stream` pushed in `chunk`-byte reads; returns the number of messages.
fn frame_ours(stream: &[u8], chunk: usize, role: Role) -> usize {
    let limits = Limits {
        max_non_sync_literal: None,
        ..Limits::default()
    };
    let mut fragmentizer = Fragmentizer::new(role, limits);
    let mut messages = 0;
    for piece in stream.chunks(chunk) {
        fragmentizer.push(piece);
        while let Some(frame) = fragmentizer.poll() {
            match frame {
                Frame::Message(m) => {
                    black_box(&m);
                    messages += 1;
                }
                Frame::LiteralAnnounced(_) => {
                    let _ = fragmentizer.accept_literal();
                }
                _ => {}
            }
        }
    }
    messages
}

/// The same with imap-codec's fragmentizer.
fn frame_codec(stream: &[u8], chunk: usize) -> usize {
    let mut fragmentizer = imap_codec::fragmentizer::Fragmentizer::without_max_message_size();
    let mut messages = 0;
    for piece in stream.chunks(chunk) {
        fragmentizer.enqueue_bytes(piece);
        while fragmentizer.progress().is_some() {
            if fragmentizer.is_message_complete() {
                black_box(fragmentizer.message_bytes());
                messages += 1;
            }
        }
    }
    messages
}

fn literal_framing(c: &mut Criterion) {
    let mut group = c.benchmark_group("imap_framing");
    // Ten 1 MiB APPENDs, as a LITERAL+ client pipelines them, read 64 KiB at a time.
    let appends: Vec<u8> = (0..10)
        .flat_map(|_| append_message(1 << 20, true))
        .collect();
    // A client fetching ten 1 MiB messages.
    let mut fetches = Vec::new();
    for i in 1..=10 {
        fetches.extend_from_slice(
            format!("* {i} FETCH (UID {i} BODY[] {{{}}}\r\n", 1 << 20).as_bytes(),
        );
        fetches.extend_from_slice(&mail_body(1 << 20));
        fetches.extend_from_slice(b")\r\n");
    }
    let chunk = 64 * 1024;
    for (name, stream, role) in [
        ("append_10x1mib_server", &appends, Role::Server),
        ("fetch_10x1mib_client", &fetches, Role::Client),
    ] {
        assert_eq!(frame_ours(stream, chunk, role), 10);
        assert_eq!(frame_codec(stream, chunk), 10);
        group.throughput(Throughput::Bytes(stream.len() as u64));
        group.bench_with_input(BenchmarkId::new("cas", name), stream, |b, stream| {
            b.iter(|| frame_ours(black_box(stream), chunk, role));
        });
        group.bench_with_input(BenchmarkId::new("imap-codec", name), stream, |b, stream| {
            b.iter(|| frame_codec(black_box(stream), chunk));
        });
    }
    // Many small pipelined commands: the line-scanning path.
    let small: Vec<u8> = commands()
        .into_iter()
        .filter(|(name, _)| *name != "append_1mb")
        .flat_map(|(_, messages)| messages.concat())
        .collect::<Vec<u8>>()
        .repeat(100);
    group.throughput(Throughput::Bytes(small.len() as u64));
    group.bench_with_input(
        BenchmarkId::new("cas", "commands_pipelined"),
        &small,
        |b, s| {
            b.iter(|| frame_ours(black_box(s), chunk, Role::Server));
        },
    );
    group.bench_with_input(
        BenchmarkId::new("imap-codec", "commands_pipelined"),
        &small,
        |b, s| {
            b.iter(|| frame_codec(black_box(s), chunk));
        },
    );
    group.finish();
}

criterion_group!(benches, command_parsing, response_parsing, literal_framing);
criterion_main!(benches);
