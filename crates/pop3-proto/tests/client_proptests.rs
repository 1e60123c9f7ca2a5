//! Response round trip through the ClientSession: server replies generated as values,
//! encoded with the crate's server-side encoders (bodies dot-stuffed by `DotStuffer`), fed to
//! a `ClientSession` in arbitrary chunks; the parsed events must equal the generated values.
//! Plus the fuzz invariant over arbitrary bytes.

mod util;

use std::sync::Arc;
use std::time::Instant;
use util::response_code;

use proptest::prelude::*;

use pop3_proto::client::{
    ClientConfig, ClientEvent, ClientLimits, ClientOptions, ClientSession, Reply, RequestId,
};
use pop3_proto::response::{DropListing, ScanListing, TERMINATOR, UidListing, encode_capabilities};
use pop3_proto::stuffing::DotStuffer;
use pop3_proto::{Bytes, Capability, Command, Expire, Status, StatusLine, Uid};
use util::crlf_normalised;

/// One command and the server's reply to it.
#[derive(Clone, Debug)]
enum Exchange {
    Noop(StatusLine),
    Stat(DropListing),
    Capa(Vec<Capability>),
    List(Vec<ScanListing>),
    ListOne(ScanListing),
    Uidl(Vec<UidListing>),
    UidlOne(UidListing),
    Retr(Vec<u8>),
    Top(Vec<u8>),
    RetrRefused(StatusLine),
}

impl Exchange {
    fn command(&self) -> Command<'static> {
        match self {
            Self::Noop(_) => Command::Noop,
            Self::Stat(_) => Command::Stat,
            Self::Capa(_) => Command::Capa,
            Self::List(_) => Command::List(None),
            Self::ListOne(s) => Command::List(Some(s.message)),
            Self::Uidl(_) => Command::Uidl(None),
            Self::UidlOne(u) => Command::Uidl(Some(u.message)),
            Self::Retr(_) | Self::RetrRefused(_) => Command::Retr(1),
            Self::Top(_) => Command::Top {
                message: 1,
                lines: 5,
            },
        }
    }

    /// The reply as a server built with this crate sends it.
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Noop(s) | Self::RetrRefused(s) => s.encode(out),
            Self::Stat(d) => d.encode(out),
            Self::Capa(caps) => encode_capabilities(caps, out),
            Self::List(v) => {
                StatusLine::ok(format!("{} messages", v.len())).encode(out);
                v.iter().for_each(|s| s.encode(out));
                out.extend_from_slice(TERMINATOR);
            }
            Self::ListOne(s) => StatusLine::ok(format!("{} {}", s.message, s.size)).encode(out),
            Self::Uidl(v) => {
                StatusLine::ok("").encode(out);
                v.iter().for_each(|u| u.encode(out));
                out.extend_from_slice(TERMINATOR);
            }
            Self::UidlOne(u) => StatusLine::ok(format!("{} {}", u.message, u.uid)).encode(out),
            Self::Retr(body) | Self::Top(body) => {
                StatusLine::ok(format!("{} octets", body.len())).encode(out);
                let mut stuffer = DotStuffer::new(None);
                let mut rest = body.as_slice();
                while !rest.is_empty() {
                    let n = stuffer.encode(rest, out, usize::MAX);
                    rest = &rest[n..];
                }
                stuffer.finish(out);
            }
        }
    }

    fn expected(&self) -> Reply {
        match self {
            Self::Noop(s) | Self::RetrRefused(s) => Reply::Status(s.clone()),
            Self::Stat(d) => Reply::Stat(*d),
            Self::Capa(c) => Reply::Capabilities(c.clone()),
            Self::List(v) => Reply::Listing(v.clone()),
            Self::ListOne(s) => Reply::Listing(vec![*s]),
            Self::Uidl(v) => Reply::UidListing(v.clone()),
            Self::UidlOne(u) => Reply::UidListing(vec![u.clone()]),
            Self::Retr(b) | Self::Top(b) => Reply::Message {
                body: Bytes::from(crlf_normalised(b)),
            },
        }
    }
}

fn status_line() -> impl Strategy<Value = StatusLine> {
    (
        prop_oneof![Just(Status::Ok), Just(Status::Err)],
        proptest::option::of(response_code()),
        "[ -~]{0,40}",
    )
        .prop_filter(
            "a leading bracket would read as a code",
            |(_, code, text)| code.is_some() || !text.starts_with('['),
        )
        .prop_map(|(status, code, text)| StatusLine { status, code, text })
}

fn err_line() -> impl Strategy<Value = StatusLine> {
    status_line().prop_map(|mut s| {
        s.status = Status::Err;
        s
    })
}

fn token() -> impl Strategy<Value = String> {
    "[!-~]{1,10}"
}

fn capability() -> impl Strategy<Value = Capability> {
    prop_oneof![
        Just(Capability::Top),
        Just(Capability::User),
        proptest::collection::vec("[A-Z0-9_-]{1,20}", 0..4).prop_map(Capability::Sasl),
        Just(Capability::RespCodes),
        (any::<u64>(), any::<bool>())
            .prop_map(|(seconds, per_user)| Capability::LoginDelay { seconds, per_user }),
        Just(Capability::Pipelining),
        (
            prop_oneof![Just(Expire::Never), any::<u32>().prop_map(Expire::Days)],
            any::<bool>()
        )
            .prop_map(|(policy, per_user)| Capability::Expire { policy, per_user }),
        Just(Capability::Uidl),
        "([!-~]([ -~]{0,20}[!-~])?)?".prop_map(Capability::Implementation),
        Just(Capability::Stls),
        Just(Capability::AuthRespCode),
        any::<bool>().prop_map(|user| Capability::Utf8 { user }),
        Just(Capability::Lang),
        (
            "(X-[A-Z0-9]{1,8}|\\.[A-Z.]{0,5})",
            proptest::collection::vec(token(), 0..3)
        )
            .prop_map(|(name, params)| Capability::Other { name, params }),
    ]
}

fn scan() -> impl Strategy<Value = ScanListing> {
    (any::<u32>(), any::<u64>()).prop_map(|(message, size)| ScanListing { message, size })
}

fn uid_listing() -> impl Strategy<Value = UidListing> {
    (any::<u32>(), "[!-~]{1,70}").prop_map(|(message, uid)| UidListing {
        message,
        uid: Uid::new(uid).expect("generated uid is valid"),
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            4 => any::<u8>(),
            2 => Just(b'.'),
            2 => Just(b'\n'),
            1 => Just(b'\r'),
        ],
        0..300,
    )
}

fn exchange() -> impl Strategy<Value = Exchange> {
    prop_oneof![
        status_line().prop_map(Exchange::Noop),
        (any::<u32>(), any::<u64>())
            .prop_map(|(count, size)| Exchange::Stat(DropListing { count, size })),
        proptest::collection::vec(capability(), 0..8).prop_map(Exchange::Capa),
        proptest::collection::vec(scan(), 0..8).prop_map(Exchange::List),
        scan().prop_map(Exchange::ListOne),
        proptest::collection::vec(uid_listing(), 0..8).prop_map(Exchange::Uidl),
        uid_listing().prop_map(Exchange::UidlOne),
        body().prop_map(Exchange::Retr),
        body().prop_map(Exchange::Top),
        err_line().prop_map(Exchange::RetrRefused),
    ]
}

fn session(now: Instant) -> ClientSession {
    ClientSession::new(
        Arc::new(ClientConfig {
            limits: ClientLimits {
                pipeline_depth: 64,
                ..ClientLimits::default()
            },
        }),
        now,
        ClientOptions::default(),
    )
}

/// Feeds `data` in pieces whose sizes cycle through `sizes`.
fn feed(c: &mut ClientSession, now: Instant, data: &[u8], sizes: &[usize]) {
    let mut rest = data;
    let mut i = 0usize;
    while !rest.is_empty() {
        let n = sizes
            .get(i % sizes.len().max(1))
            .copied()
            .unwrap_or(1)
            .max(1);
        let (chunk, tail) = rest.split_at(n.min(rest.len()));
        c.handle_input(now, chunk);
        rest = tail;
        i += 1;
    }
}

fn events(c: &mut ClientSession) -> Vec<ClientEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Lock step: each reply is fed (chunked) after its command went out.
    #[test]
    fn replies_round_trip_one_at_a_time(
        exchanges in proptest::collection::vec(exchange(), 1..8),
        sizes in proptest::collection::vec(1usize..40, 1..8),
    ) {
        let now = Instant::now();
        let mut c = session(now);
        feed(&mut c, now, b"+OK POP3 ready\r\n", &sizes);
        let greeted = matches!(events(&mut c).as_slice(), [ClientEvent::GreetingReceived { ok: true, .. }]);
        prop_assert!(greeted, "no greeting");
        for ex in &exchanges {
            let id = c.send_command(now, ex.command()).expect("open session");
            let mut wire = Vec::new();
            c.poll_transmit(&mut wire);
            prop_assert_eq!(wire, ex.command().to_bytes());
            let mut reply = Vec::new();
            ex.encode(&mut reply);
            feed(&mut c, now, &reply, &sizes);
            prop_assert_eq!(
                events(&mut c),
                vec![ClientEvent::ReplyReceived { id, reply: ex.expected() }],
                "wire {:?}", String::from_utf8_lossy(&reply)
            );
        }
    }

    /// Pipelined: every command goes out at once, all replies arrive as one stream split
    /// anywhere.
    #[test]
    fn replies_round_trip_pipelined(
        exchanges in proptest::collection::vec(exchange(), 1..12),
        sizes in proptest::collection::vec(1usize..64, 1..8),
    ) {
        let now = Instant::now();
        let mut c = session(now);
        let capa = c.capa(now).expect("open");
        feed(&mut c, now, b"+OK POP3 ready\r\n", &sizes);
        let mut server = Vec::new();
        encode_capabilities(&[Capability::Pipelining], &mut server);
        feed(&mut c, now, &server, &sizes);
        let evs = events(&mut c);
        prop_assert_eq!(
            evs.get(1),
            Some(&ClientEvent::ReplyReceived { id: capa, reply: Reply::Capabilities(vec![Capability::Pipelining]) })
        );
        let mut wire = Vec::new();
        c.poll_transmit(&mut wire);
        let ids: Vec<RequestId> = exchanges
            .iter()
            .map(|ex| c.send_command(now, ex.command()).expect("open"))
            .collect();
        wire.clear();
        c.poll_transmit(&mut wire);
        let all: Vec<u8> = exchanges.iter().flat_map(|ex| ex.command().to_bytes()).collect();
        prop_assert_eq!(wire, all);
        let mut replies = Vec::new();
        exchanges.iter().for_each(|ex| ex.encode(&mut replies));
        feed(&mut c, now, &replies, &sizes);
        let want: Vec<ClientEvent> = ids
            .iter()
            .zip(&exchanges)
            .map(|(&id, ex)| ClientEvent::ReplyReceived { id, reply: ex.expected() })
            .collect();
        prop_assert_eq!(events(&mut c), want);
    }

    /// Arbitrary server bytes never panic and never grow buffers past the limits.
    #[test]
    fn arbitrary_server_bytes(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        pop3_proto::fuzzing::client_session(&data);
    }

    /// Mostly well-formed server bytes: reply lines glued together and corrupted a little, so
    /// deeper states (bodies, SASL, STLS) are reached.
    #[test]
    fn plausible_server_bytes(
        pieces in proptest::collection::vec(
            prop_oneof![
                Just(&b"+OK hi <1.2@h>\r\n"[..]),
                Just(&b"+OK\r\nPIPELINING\r\nSTLS\r\n.\r\n"[..]),
                Just(&b"+OK 2 320\r\n"[..]),
                Just(&b"+OK\r\n1 120\r\n..x\r\n.\r\n"[..]),
                Just(&b"-ERR [IN-USE] busy\r\n"[..]),
                Just(&b"+ VXNlcm5hbWU6\r\n"[..]),
                Just(&b"+ \r\n"[..]),
                Just(&b"+OK Begin TLS\r\n"[..]),
                Just(&b"\r\n"[..]),
                Just(&b"."[..]),
            ],
            0..40,
        ),
        flip in any::<(usize, u8)>(),
    ) {
        let mut data: Vec<u8> = pieces.concat();
        if !data.is_empty() {
            let i = flip.0 % data.len();
            data[i] ^= flip.1;
        }
        pop3_proto::fuzzing::client_session(&data);
    }
}
