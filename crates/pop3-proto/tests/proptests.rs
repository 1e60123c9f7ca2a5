//! Property tests: round trips over the whole grammar, chunking invariance, bounded buffers
//! under arbitrary input, spurious timeouts. The invariant functions are the ones the
//! cargo-fuzz targets call (`pop3_proto::fuzzing`).

mod util;

use proptest::prelude::*;
use util::response_code;

use pop3_proto::command::{LangRange, Mechanism, Param, PassText};
use pop3_proto::fuzzing::{self, AutoApp};
use pop3_proto::response::{DropListing, ScanListing, UidListing, encode_continuation};
use pop3_proto::{
    Capability, Command, Expire, Response, SaslResponse, SessionOptions, Status, StatusLine, Uid,
};

#[derive(Debug, Clone)]
enum C {
    User(String),
    Pass(Vec<u8>),
    Apop(String, [u8; 16]),
    Auth(String, Option<Vec<u8>>),
    AuthList,
    Stat,
    List(Option<u32>),
    Retr(u32),
    Dele(u32),
    Noop,
    Rset,
    Quit,
    Top(u32, u32),
    Uidl(Option<u32>),
    Capa,
    Stls,
    Utf8,
    Lang(Option<String>),
}

fn param() -> impl Strategy<Value = String> {
    prop_oneof!["[!-~]{1,20}", "[a-z\u{e9}\u{20ac}\u{1f600}]{1,8}"]
}

fn c_strategy() -> impl Strategy<Value = C> {
    let pass = proptest::collection::vec(
        any::<u8>().prop_filter("no CR LF NUL", |b| !matches!(b, b'\r' | b'\n' | 0)),
        1..30,
    );
    let mech = "[A-Za-z0-9_-]{1,20}";
    let lang = prop_oneof![
        Just("*".to_owned()),
        "[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8}){0,2}"
    ];
    prop_oneof![
        param().prop_map(C::User),
        pass.prop_map(C::Pass),
        (param(), any::<[u8; 16]>()).prop_map(|(n, d)| C::Apop(n, d)),
        (
            mech,
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40))
        )
            .prop_map(|(m, ir)| C::Auth(m, ir)),
        Just(C::AuthList),
        Just(C::Stat),
        proptest::option::of(any::<u32>()).prop_map(C::List),
        any::<u32>().prop_map(C::Retr),
        any::<u32>().prop_map(C::Dele),
        Just(C::Noop),
        Just(C::Rset),
        Just(C::Quit),
        (any::<u32>(), any::<u32>()).prop_map(|(a, b)| C::Top(a, b)),
        proptest::option::of(any::<u32>()).prop_map(C::Uidl),
        Just(C::Capa),
        Just(C::Stls),
        Just(C::Utf8),
        proptest::option::of(lang).prop_map(C::Lang),
    ]
}

fn build(c: &C) -> Command<'_> {
    match c {
        C::User(u) => Command::User(Param::new(u).expect("param")),
        C::Pass(p) => Command::Pass(PassText::new(p).expect("pass")),
        C::Apop(n, d) => Command::Apop {
            name: Param::new(n).expect("param"),
            digest: *d,
        },
        C::Auth(m, ir) => Command::Auth {
            mechanism: Mechanism::new(m).expect("mech"),
            initial_response: ir.clone(),
        },
        C::AuthList => Command::AuthList,
        C::Stat => Command::Stat,
        C::List(n) => Command::List(*n),
        C::Retr(n) => Command::Retr(*n),
        C::Dele(n) => Command::Dele(*n),
        C::Noop => Command::Noop,
        C::Rset => Command::Rset,
        C::Quit => Command::Quit,
        C::Top(a, b) => Command::Top {
            message: *a,
            lines: *b,
        },
        C::Uidl(n) => Command::Uidl(*n),
        C::Capa => Command::Capa,
        C::Stls => Command::Stls,
        C::Utf8 => Command::Utf8,
        C::Lang(l) => Command::Lang(l.as_deref().map(|l| LangRange::new(l).expect("lang"))),
    }
}

fn capability() -> impl Strategy<Value = Capability> {
    let known = [
        "TOP",
        "USER",
        "SASL",
        "RESP-CODES",
        "LOGIN-DELAY",
        "PIPELINING",
        "EXPIRE",
        "UIDL",
        "IMPLEMENTATION",
        "STLS",
        "AUTH-RESP-CODE",
        "UTF8",
        "LANG",
    ];
    prop_oneof![
        Just(Capability::Top),
        Just(Capability::User),
        proptest::collection::vec("[A-Z0-9_-]{1,20}", 0..4).prop_map(Capability::Sasl),
        Just(Capability::RespCodes),
        (any::<u64>(), any::<bool>())
            .prop_map(|(seconds, per_user)| Capability::LoginDelay { seconds, per_user }),
        Just(Capability::Pipelining),
        (proptest::option::of(any::<u32>()), any::<bool>()).prop_map(|(d, per_user)| {
            Capability::Expire {
                policy: d.map_or(Expire::Never, Expire::Days),
                per_user,
            }
        }),
        Just(Capability::Uidl),
        "([!-~]([ -~]{0,30}[!-~])?)?".prop_map(Capability::Implementation),
        Just(Capability::Stls),
        Just(Capability::AuthRespCode),
        any::<bool>().prop_map(|user| Capability::Utf8 { user }),
        Just(Capability::Lang),
        (
            "X-[A-Z0-9-]{1,10}",
            proptest::collection::vec("[!-~]{1,10}", 0..4)
        )
            .prop_filter("not a known tag", move |(n, _)| !known
                .contains(&n.as_str()))
            .prop_map(|(name, params)| Capability::Other { name, params }),
    ]
}

/// Lines a client might send, valid and not, for the session properties.
fn client_line() -> impl Strategy<Value = Vec<u8>> {
    let fixed: Vec<&'static [u8]> = vec![
        b"USER alice\r\n",
        b"USER busy\r\n",
        b"PASS secret\r\n",
        b"PASS bad\r\n",
        b"APOP alice c4c9334bac560ecc979e58001b3e22fb\r\n",
        b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n",
        b"AUTH PLAIN =\r\n",
        b"AUTH LOGIN\r\n",
        b"bW9yZQ==\r\n",
        b"YmFk\r\n",
        b"*\r\n",
        b"STAT\r\n",
        b"LIST\r\n",
        b"LIST 2\n",
        b"UIDL\r\n",
        b"UIDL 3\r\n",
        b"RETR 1\r\n",
        b"RETR 2\r\n",
        b"TOP 1 0\r\n",
        b"TOP 2 1\r\n",
        b"TOP 3 5\r\n",
        b"DELE 1\r\n",
        b"RSET\r\n",
        b"NOOP\r\n",
        b"CAPA\r\n",
        b"STLS\r\n",
        b"UTF8\r\n",
        b"LANG\r\n",
        b"LANG de\r\n",
        b"QUIT\r\n",
        b"XYZZY\r\n",
        b"\r\n",
    ];
    prop_oneof![
        8 => proptest::sample::select(fixed).prop_map(<[u8]>::to_vec),
        1 => "[ -~]{0,80}\r\n".prop_map(String::into_bytes),
    ]
}

fn script() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(client_line(), 0..25)
        .prop_map(|lines| lines.concat())
        .prop_filter("within the pipelining limit", |s| s.len() < 500)
}

fn run(flags: u8, input: &[u8], cuts: &[usize]) -> (Vec<u8>, Vec<String>) {
    let mut app = AutoApp::new(
        fuzzing::small_config(flags),
        SessionOptions {
            tls_active: flags & 64 != 0,
            apop_timestamp: Some("<1.2@host>".into()),
        },
    );
    // Never completing TLS keeps the discard-after-STLS rule independent of chunking.
    app.complete_tls = false;
    let mut start = 0;
    for &cut in cuts {
        let cut = cut.clamp(start, input.len());
        app.input(&input[start..cut]);
        start = cut;
    }
    app.input(&input[start..]);
    app.eof();
    (app.output, app.events)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512),
        ..ProptestConfig::default()
    })]

    #[test]
    fn command_encode_parse_round_trip(c in c_strategy()) {
        let cmd = build(&c);
        let encoded = cmd.to_bytes();
        prop_assert!(encoded.ends_with(b"\r\n"));
        let line = &encoded[..encoded.len() - 2];
        prop_assert_eq!(Command::parse(line), Ok(cmd.clone()));
        fuzzing::command_roundtrip(line);
    }

    #[test]
    fn command_parser_total_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..120)) {
        fuzzing::command_roundtrip(&data);
    }

    #[test]
    fn command_parser_total_after_keywords(
        kw in proptest::sample::select(vec!["USER", "PASS", "APOP", "AUTH", "LIST", "RETR", "TOP", "UIDL", "LANG", "DELE"]),
        tail in "[ -~\t\u{80}-\u{ff}]{0,40}",
    ) {
        fuzzing::command_roundtrip(format!("{kw}{tail}").as_bytes());
        fuzzing::command_roundtrip(format!("{kw} {tail}").as_bytes());
    }

    #[test]
    fn sasl_response_round_trip(data in proptest::collection::vec(any::<u8>(), 0..200), cancel in any::<bool>()) {
        let r = if cancel { SaslResponse::Cancel } else { SaslResponse::Data(data) };
        let mut out = Vec::new();
        r.encode(&mut out);
        prop_assert_eq!(SaslResponse::parse(&out[..out.len() - 2]), Ok(r));
    }

    #[test]
    fn status_line_round_trip(
        ok in any::<bool>(),
        code in proptest::option::of(response_code()),
        text in "[ -~\u{e9}]{0,60}",
    ) {
        prop_assume!(code.is_some() || !text.starts_with('['));
        let line = StatusLine { status: if ok { Status::Ok } else { Status::Err }, code, text };
        let mut out = Vec::new();
        line.encode(&mut out);
        let parsed = Response::parse(&out[..out.len() - 2]);
        prop_assert_eq!(parsed, Ok(Response::Status(line)));
    }

    #[test]
    fn continuation_round_trip(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut out = Vec::new();
        encode_continuation(&data, &mut out);
        prop_assert_eq!(Response::parse(&out[..out.len() - 2]), Ok(Response::Continuation(data)));
    }

    #[test]
    fn capability_round_trip(cap in capability()) {
        let mut out = Vec::new();
        cap.encode(&mut out);
        prop_assert_eq!(Capability::parse(&out[..out.len() - 2]), Ok(cap));
    }

    #[test]
    fn listing_round_trips(
        count in any::<u32>(), size in any::<u64>(), uid in "[!-~]{1,70}",
    ) {
        let mut out = Vec::new();
        DropListing { count, size }.encode(&mut out);
        let Ok(Response::Status(s)) = Response::parse(&out[..out.len() - 2]) else {
            return Err(TestCaseError::fail("not a status line"));
        };
        prop_assert_eq!(DropListing::parse_text(&s.text), Ok(DropListing { count, size }));
        let scan = ScanListing { message: count, size };
        out.clear();
        scan.encode(&mut out);
        prop_assert_eq!(ScanListing::parse(&out[..out.len() - 2]), Ok(scan));
        let u = UidListing { message: count, uid: Uid::new(uid).expect("uid") };
        out.clear();
        u.encode(&mut out);
        prop_assert_eq!(UidListing::parse(&out[..out.len() - 2]), Ok(u));
    }

    #[test]
    fn chunking_invariance(
        flags in any::<u8>(),
        input in script(),
        cuts in proptest::collection::vec(0usize..500, 0..12),
    ) {
        let mut cuts = cuts;
        cuts.sort_unstable();
        let whole = run(flags, &input, &[]);
        let bytewise: Vec<usize> = (1..input.len()).collect();
        let split = run(flags, &input, &cuts);
        prop_assert_eq!(&split, &whole);
        let one_by_one = run(flags, &input, &bytewise);
        prop_assert_eq!(&one_by_one, &whole);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_stay_bounded(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        fuzzing::server_session(&data);
    }

    #[test]
    fn scripted_sessions_stay_bounded(flags in any::<u8>(), seed in any::<u8>(), timer in any::<u8>(), input in script()) {
        let mut data = vec![flags, seed, timer];
        data.extend_from_slice(&input);
        fuzzing::server_session(&data);
    }

    #[test]
    fn spurious_timeouts_are_no_ops(flags in any::<u8>(), input in script(), cut in 0usize..500) {
        let mut app = AutoApp::new(fuzzing::small_config(flags), SessionOptions::default());
        let cut = cut.min(input.len());
        app.input(&input[..cut]);
        fuzzing::spurious_timeout_is_noop(&mut app);
        app.input(&input[cut..]);
        fuzzing::spurious_timeout_is_noop(&mut app);
    }
}

#[test]
fn seed_corpus_regressions() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    for target in ["pop3_command", "pop3_server_session"] {
        let Ok(entries) = std::fs::read_dir(dir.join(target)) else {
            continue;
        };
        for e in entries.flatten() {
            let data = std::fs::read(e.path()).unwrap_or_default();
            fuzzing::command_roundtrip(&data);
            fuzzing::server_session(&data);
        }
    }
}
