//! POP3 benches: command parsing (commands/s) and RETR streaming of a 10 MB message with many
//! dot-lines (bytes/s), through the stuffer alone and through a whole `ServerSession`.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pop3_proto::stuffing::{DotStuffer, crlf_size};
use pop3_proto::{
    Bytes, Command, Event, MaildropEntry, Reply, Request, ServerConfig, ServerSession,
    SessionOptions, Uid,
};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

/// A realistic command mix, as a client sends it in one session.
const COMMANDS: &[&[u8]] = &[
    b"CAPA",
    b"USER alice.example",
    b"PASS correct horse battery staple",
    b"AUTH PLAIN AGFsaWNlAGNvcnJlY3QgaG9yc2UgYmF0dGVyeSBzdGFwbGU=",
    b"STAT",
    b"LIST",
    b"LIST 42",
    b"UIDL",
    b"UIDL 17",
    b"RETR 1",
    b"TOP 12 0",
    b"DELE 7",
    b"NOOP",
    b"RSET",
    b"APOP mrose c4c9334bac560ecc979e58001b3e22fb",
    b"QUIT",
];

/// A 10 MB message whose body has a line starting with `.` every third line.
fn dotted_message(size: usize) -> Vec<u8> {
    let mut message =
        b"From: Alice <alice@example.org>\r\nTo: Bob <bob@example.org>\r\nSubject: dots\r\n\r\n"
            .to_vec();
    let mut line = 0u64;
    while message.len() < size {
        if line.is_multiple_of(3) {
            message.extend_from_slice(b".");
        }
        message.extend_from_slice(
            b"The quick brown fox jumps over the lazy dog, 0123456789 abcdefghijklmnopq\r\n",
        );
        line += 1;
    }
    message
}

fn command_parsing(c: &mut Criterion) {
    let mut group = c.benchmark_group("pop3_command_parse");
    group.throughput(Throughput::Elements(COMMANDS.len() as u64));
    group.bench_function("mix", |b| {
        b.iter(|| {
            for line in COMMANDS {
                black_box(Command::parse(black_box(line)).ok());
            }
        })
    });
    group.finish();
}

fn retr_stuffing(c: &mut Criterion) {
    let message = dotted_message(10 * 1024 * 1024);
    let mut group = c.benchmark_group("pop3_retr_10mb");
    group.throughput(Throughput::Bytes(message.len() as u64));
    group.sample_size(20);
    group.bench_function("dot_stuffer_16k_chunks", |b| {
        let mut out = Vec::with_capacity(16 * 1024 + 8);
        b.iter(|| {
            let mut stuffer = DotStuffer::new(None);
            let mut input = &message[..];
            let mut written = 0usize;
            while !input.is_empty() {
                out.clear();
                let used = stuffer.encode(input, &mut out, 16 * 1024);
                written += out.len();
                input = &input[used..];
            }
            out.clear();
            stuffer.finish(&mut out);
            black_box(written + out.len())
        })
    });
    group.bench_function("server_session_64k_chunks", |b| {
        let message = Bytes::from(message.clone());
        let config = Arc::new(ServerConfig {
            allow_clear_text_without_tls: true,
            ..ServerConfig::default()
        });
        let entry = MaildropEntry {
            size: crlf_size(&message),
            uid: Uid::new("bench-1").unwrap(),
        };
        let mut out = Vec::with_capacity(32 * 1024);
        b.iter(|| {
            let now = Instant::now();
            let mut session = ServerSession::new(config.clone(), now, SessionOptions::default());
            session.handle_input(now, b"USER alice\r\nPASS secret\r\n");
            let Some(Event::CommandReceived { id, .. }) = session.poll_event() else {
                panic!("no login request");
            };
            session
                .send(
                    id,
                    Reply::LoginAccepted {
                        maildrop: vec![entry.clone()],
                    },
                )
                .unwrap();
            session.handle_input(now, b"RETR 1\r\n");
            let Some(Event::CommandReceived {
                id,
                command: Request::Retrieve { .. },
            }) = session.poll_event()
            else {
                panic!("no retrieve request");
            };
            // Feed the store's chunks only while the session wants them, and drain the socket
            // side as a driver would: the message is never held twice.
            let mut offset = 0usize;
            let mut sent = 0usize;
            loop {
                while offset < message.len() && session.wants_message_data() {
                    let end = (offset + 64 * 1024).min(message.len());
                    let chunk = message.slice(offset..end);
                    session
                        .send(
                            id,
                            Reply::MessageData {
                                chunk,
                                last: end == message.len(),
                            },
                        )
                        .unwrap();
                    offset = end;
                }
                out.clear();
                let n = session.poll_transmit(&mut out);
                if n == 0 && offset == message.len() {
                    break;
                }
                sent += n;
            }
            black_box(sent)
        })
    });
    group.finish();
}

criterion_group!(benches, command_parsing, retr_stuffing);
criterion_main!(benches);
