//! Hostile `?server:port` values: every one must be refused before any backend connection,
//! with a 400 (malformed), 404 (not the proxy path) or 403 (not on the allow list).

use std::net::{Ipv4Addr, Ipv6Addr};

use rpch_framing::target::{
    AllowEntry, AllowList, HostName, PortRange, ProxyPath, RequestTarget, RpcTarget, ServerName,
    TargetError, parse_request_target, parse_rpc_target,
};

/// The allow list every case is checked against: an Exchange-style entry with its NetBIOS
/// alias on 6001-6004 and 593, and one IPv4 and one IPv6 backend.
fn allow_list() -> AllowList {
    let fqdn: HostName = "mbx01.corp.example".parse().unwrap();
    AllowList::new()
        .with(
            AllowEntry::new(
                fqdn,
                [
                    PortRange::new(6001, 6004).unwrap(),
                    PortRange::single(593).unwrap(),
                ],
            )
            .with_first_label_alias(),
        )
        .with(AllowEntry::new(
            Ipv4Addr::new(10, 0, 0, 9),
            [PortRange::single(6001).unwrap()],
        ))
        .with(AllowEntry::new(
            "2001:db8::9".parse::<Ipv6Addr>().unwrap(),
            [PortRange::single(6001).unwrap()],
        ))
}

/// Parses the query under the proxy path and checks it; `Err` with the status otherwise.
fn admit(query: &[u8]) -> Result<RpcTarget, (TargetError, u16)> {
    let mut target = b"/rpc/rpcproxy.dll?".to_vec();
    target.extend_from_slice(query);
    let parsed = parse_rpc_target(&target).map_err(|e| {
        let s = e.http_status();
        (e, s)
    })?;
    allow_list().check(&parsed).map_err(|e| {
        let s = e.http_status();
        (e, s)
    })?;
    Ok(parsed)
}

/// Every hostile query, with a note on what it tries.
const HOSTILE: &[(&[u8], &str)] = &[
    // percent-encoding, in every position
    (b"mbx01%2ecorp.example:6001", "encoded dot"),
    (b"mbx01.corp.example%3a6001", "encoded colon"),
    (b"mbx01%00.evil.example:6001", "encoded NUL truncation"),
    (b"mbx01.corp.example:6001%00", "trailing encoded NUL"),
    (b"%6dbx01.corp.example:6001", "encoded letter"),
    (b"mbx01.corp.example:%36001", "encoded digit in port"),
    (b"mbx01%252ecorp.example:6001", "double encoding"),
    (b"[fe80::1%25eth0]:6001", "IPv6 zone identifier"),
    (b"[fe80::1%eth0]:6001", "raw zone identifier"),
    (b"%", "lone percent"),
    // userinfo
    (b"user@mbx01.corp.example:6001", "userinfo"),
    (
        b"user:pass@mbx01.corp.example:6001",
        "userinfo with password",
    ),
    (
        b"mbx01.corp.example:6001@evil.example:80",
        "userinfo smuggling the real host",
    ),
    (b"@mbx01:6001", "empty userinfo"),
    // IPv6 without or with broken brackets
    (b"2001:db8::9:6001", "unbracketed IPv6"),
    (b"::1:6001", "unbracketed loopback"),
    (b"[2001:db8::9]", "bracketed IPv6 without port"),
    (b"[2001:db8::9:6001", "missing closing bracket"),
    (b"2001:db8::9]:6001", "missing opening bracket"),
    (b"[2001:db8::9]x:6001", "junk after bracket"),
    (b"[2001:db8::9]:6001]", "junk in port"),
    (b"[[2001:db8::9]]:6001", "double brackets"),
    (b"[]:6001", "empty brackets"),
    (b"[mbx01]:6001", "host name in brackets"),
    (b"[10.0.0.9]:6001", "IPv4 in brackets"),
    (b"[2001:db8::9]:6001:1", "extra colon after IPv6 port"),
    (b"mbx01[1]:6001", "bracket inside name"),
    (b"[v1.fe80::1]:6001", "IPvFuture"),
    (b"[2001:db8:0:0:0:0:0:0:9]:6001", "nine groups"),
    // overlong names
    (&[b'a'; 1024], "1024 characters, no port"),
    (b"", "empty query"),
    // whitespace and control characters
    (b"mbx01 :6001", "space before colon"),
    (b" mbx01:6001", "leading space"),
    (b"mbx01: 6001", "space in port"),
    (b"mbx01:6001 ", "trailing space"),
    (b"mbx01\t:6001", "tab"),
    (b"mbx01\r\n:6001", "CRLF"),
    (b"mbx01:6001\r\nHost: evil", "header injection"),
    (b"mbx01\n:6001", "LF"),
    (b"mbx01\0:6001", "raw NUL"),
    (b"mbx01\x7f:6001", "DEL"),
    (b"mbx01\x1b:6001", "ESC"),
    // ports: sign, zero, huge, overflowing, non-decimal
    (b"mbx01:-6001", "negative port"),
    (b"mbx01:+6001", "plus sign"),
    (b"mbx01:+80", "plus sign, small"),
    (b"mbx01:0", "zero"),
    (b"mbx01:00", "zeros"),
    (b"mbx01:000000", "six zeros"),
    (b"mbx01:65536", "just above u16"),
    (b"mbx01:71537", "wraps to 6001 in u16"),
    (b"mbx01:4294973297", "wraps to 6001 in u32"),
    (b"mbx01:18446744073709557617", "wraps to 6001 in u64"),
    (b"mbx01:0006001", "seven digits"),
    (b"mbx01:99999999999999999999999999", "huge"),
    (b"mbx01:0x50", "hex port"),
    (b"mbx01:0x1771", "hex 6001"),
    (b"mbx01:6001.0", "decimal point"),
    (b"mbx01:6e3", "exponent"),
    (
        b"mbx01:\xd9\xa6\xd9\xa0\xd9\xa0\xd9\xa1",
        "Arabic-Indic digits",
    ),
    (
        b"mbx01:\xef\xbc\x96\xef\xbc\x90\xef\xbc\x90\xef\xbc\x91",
        "fullwidth digits",
    ),
    // empty parts and colons
    (b":6001", "empty host"),
    (b"mbx01:", "empty port"),
    (b"mbx01", "no port"),
    (b":", "lone colon"),
    (b"mbx01::6001", "double colon"),
    (b"mbx01:6001:6002", "two ports"),
    (b"mbx01.corp.example:6001:", "trailing colon"),
    // valid host, port not allowed
    (b"mbx01.corp.example:135", "endpoint mapper"),
    (b"mbx01.corp.example:6005", "just past the range"),
    (b"mbx01.corp.example:6000", "just before the range"),
    (b"mbx01:445", "SMB on the NetBIOS alias"),
    (b"10.0.0.9:6002", "IPv4 backend, other port"),
    (b"[2001:db8::9]:593", "IPv6 backend, other port"),
    // valid syntax, host not allowed
    (b"mbx02.corp.example:6001", "other server"),
    (
        b"mbx01.corp.example.evil.example:6001",
        "allowed name as a prefix",
    ),
    (b"evil-mbx01.corp.example:6001", "allowed name as a suffix"),
    (b"corp.example:6001", "parent domain"),
    (b"mbx01.corp:6001", "truncated FQDN"),
    (b"127.0.0.1:6001", "loopback"),
    (b"169.254.169.254:6001", "cloud metadata"),
    (b"[::1]:6001", "IPv6 loopback"),
    (
        b"[::ffff:10.0.0.9]:6001",
        "IPv4-mapped form of an allowed address",
    ),
    (b"localhost:6001", "localhost"),
    // trailing dots and garbage, bad labels
    (b"mbx01.corp.example.:6001", "trailing dot"),
    (b"mbx01.corp.example..:6001", "two trailing dots"),
    (b".mbx01.corp.example:6001", "leading dot"),
    (b"mbx01..corp.example:6001", "empty label"),
    (b"-mbx01:6001", "leading hyphen"),
    (b"mbx01-:6001", "trailing hyphen"),
    (b"mbx01.corp.example/:6001", "slash"),
    (b"mbx01.corp.example:6001/", "trailing slash"),
    (b"mbx01.corp.example:6001/../", "dot segments"),
    (b"mbx01.corp.example:6001?", "second question mark"),
    (b"mbx01.corp.example:6001?x=1", "second query"),
    (b"mbx01.corp.example:6001;x", "semicolon"),
    (b"mbx01.corp.example:6001,mbx02:6001", "list"),
    (b"mbx01!:6001", "NetBIOS punctuation"),
    (b"mbx01$:6001", "dollar"),
    (b"mbx01~:6001", "tilde"),
    (b"mbx01*:6001", "wildcard"),
    (b"'mbx01':6001", "quotes"),
    (b"\"mbx01\":6001", "double quotes"),
    (b"mbx01=:6001", "equals"),
    // numeric tricks
    (b"10.0.0.09:6001", "leading zero octet"),
    (b"010.0.0.9:6001", "octal-looking octet"),
    (b"10.0.9:6001", "three-part IPv4"),
    (b"10.9:6001", "two-part IPv4"),
    (b"167772169:6001", "integer IPv4"),
    (b"0x0a.0.0.9:6001", "hex octet"),
    (b"0x0a000009:6001", "hex integer"),
    (b"10.0.0.9.:6001", "IPv4 with trailing dot"),
    (b"10.0.0.256:6001", "octet above 255"),
    (b"10.0.0.9.1:6001", "five parts"),
    (b"mbx01.123:6001", "numeric last label"),
    (b"mbx01.0x7f:6001", "hex last label"),
    // unicode homoglyphs and raw non-ASCII
    ("mbx01.c\u{043e}rp.example:6001".as_bytes(), "Cyrillic o"),
    (
        "mbx0\u{0131}.corp.example:6001".as_bytes(),
        "dotless i for 1",
    ),
    (
        "mbx01\u{3002}corp.example:6001".as_bytes(),
        "ideographic full stop",
    ),
    (
        "mbx01\u{ff0e}corp.example:6001".as_bytes(),
        "fullwidth full stop",
    ),
    (
        "mbx01.corp.example\u{ff1a}6001".as_bytes(),
        "fullwidth colon",
    ),
    ("\u{ff4d}bx01:6001".as_bytes(), "fullwidth m"),
    ("mbx01\u{200b}:6001".as_bytes(), "zero-width space"),
    ("mbx01\u{00a0}:6001".as_bytes(), "no-break space"),
    (b"mbx01\xff:6001", "invalid UTF-8"),
    (b"xn--mbx01-:6001", "punycode-ish with trailing hyphen"),
    // backslashes and separators
    (b"mbx01\\evil:6001", "backslash"),
    (b"\\\\mbx01:6001", "UNC prefix"),
    (b"mbx01.corp.example:6001&server=evil", "ampersand"),
    (b"mbx01.corp.example:6001#frag", "fragment"),
    (b"mbx01.corp.example#:6001", "fragment before port"),
    (b"mbx01&evil:6001", "ampersand in host"),
    (b"mbx01+evil:6001", "plus in host"),
    (b"mbx01|evil:6001", "pipe"),
    (b"mbx01<:6001", "angle bracket"),
    (b"mbx01{:6001", "brace"),
    (b"mbx01`:6001", "backtick"),
    (b"mbx01^:6001", "caret"),
];

#[test]
fn every_hostile_query_is_refused() {
    for (query, what) in HOSTILE {
        match admit(query) {
            Ok(t) => panic!(
                "{what}: {:?} was admitted as {t}",
                String::from_utf8_lossy(query)
            ),
            Err((e, status)) => assert!(
                matches!(status, 400 | 403),
                "{what}: status {status} for {e}"
            ),
        }
    }
}

#[test]
fn overlong_names_are_refused_whatever_their_shape() {
    for len in [1024usize, 1025, 2000, 64 * 1024] {
        let mut q = vec![b'a'; len];
        q.extend_from_slice(b":6001");
        let (e, status) = admit(&q).unwrap_err();
        assert_eq!(status, 400);
        assert_eq!(e, TargetError::ServerNameTooLong { len }, "{len}");
        // Dotted, so every label is short: still refused.
        let dotted: Vec<u8> = (0..len)
            .map(|i| if i % 4 == 3 { b'.' } else { b'a' })
            .chain(*b"a:6001")
            .collect();
        assert_eq!(admit(&dotted).unwrap_err().1, 400);
    }
    // The longest DNS name (253) passes the syntax check; the allow list then refuses it.
    let longest: String = [&"a".repeat(63)[..]; 4].join(".")[..253].to_string();
    let (e, status) = admit(format!("{longest}:6001").as_bytes()).unwrap_err();
    assert_eq!(status, 403, "{e}");
    let (_, status) = admit(format!("{longest}a:6001").as_bytes()).unwrap_err();
    assert_eq!(status, 400);
}

#[test]
fn refusal_reasons_are_specific() {
    let reason = |q: &[u8]| admit(q).unwrap_err().0;
    assert_eq!(
        reason(b"mbx01%2ecorp:6001"),
        TargetError::ForbiddenByte {
            byte: b'%',
            offset: 5
        }
    );
    assert_eq!(
        reason(b"u@mbx01:6001"),
        TargetError::ForbiddenByte {
            byte: b'@',
            offset: 1
        }
    );
    assert_eq!(reason(b"2001:db8::9:6001"), TargetError::UnbracketedIpv6);
    assert_eq!(reason(b"mbx01:6001:6002"), TargetError::ExtraColon);
    assert_eq!(reason(b"mbx01"), TargetError::MissingPort);
    assert_eq!(reason(b":6001"), TargetError::EmptyServerName);
    assert_eq!(reason(b"mbx01:"), TargetError::InvalidPort);
    assert_eq!(reason(b"mbx01:65536"), TargetError::InvalidPort);
    assert_eq!(reason(b"10.0.9:6001"), TargetError::InvalidIpv4Literal);
    assert_eq!(reason(b"[10.0.0.9]:6001"), TargetError::InvalidIpv6Literal);
    assert!(matches!(
        reason(b"mbx01.:6001"),
        TargetError::InvalidHostName { .. }
    ));
    assert!(matches!(
        reason(b"mbx01:6005"),
        TargetError::NotAllowed { target } if target == "mbx01:6005"
    ));
}

#[test]
fn hostile_paths() {
    for (target, status) in [
        (&b"/rpc/rpcproxy.dll/?mbx01:6001"[..], 404),
        (b"/rpc/rpcproxy.dll;x?mbx01:6001", 404),
        (b"/rpc/../rpc/rpcproxy.dll?mbx01:6001", 404),
        (b"/rpc//rpcproxy.dll?mbx01:6001", 404),
        (b"/rpc/rpcproxy%2edll?mbx01:6001", 404),
        (b"/rpc%2frpcproxy.dll?mbx01:6001", 404),
        (b"/rpc/rpcproxy.dll%3fmbx01:6001", 404),
        (b"/rpc/rpcproxy.dl?mbx01:6001", 404),
        (b"/owa/?mbx01:6001", 404),
        (b"/", 404),
        (b"rpc/rpcproxy.dll?mbx01:6001", 400),
        (b"http://cas/rpc/rpcproxy.dll?mbx01:6001", 400),
        (b"//evil/rpc/rpcproxy.dll?mbx01:6001", 404),
        (b"*", 400),
        (b"", 400),
        (b"/rpc/rpcproxy.dll??mbx01:6001", 400),
        (b"/rpc/rpcproxy.dll?", 400),
    ] {
        let e = parse_request_target(target).unwrap_err();
        assert_eq!(
            e.http_status(),
            status,
            "{:?}: {e}",
            String::from_utf8_lossy(target)
        );
    }
}

#[test]
fn accepted_queries() {
    let cases: &[(&[u8], ServerName, u16)] = &[
        (
            b"mbx01.corp.example:6001",
            ServerName::Host("mbx01.corp.example".parse().unwrap()),
            6001,
        ),
        (
            b"MBX01.CORP.EXAMPLE:6004",
            ServerName::Host("mbx01.corp.example".parse().unwrap()),
            6004,
        ),
        (
            b"MBX01:593",
            ServerName::Host("mbx01".parse().unwrap()),
            593,
        ),
        (
            b"mbx01:6002",
            ServerName::Host("MBX01".parse().unwrap()),
            6002,
        ),
        (
            b"mbx01:006003",
            ServerName::Host("mbx01".parse().unwrap()),
            6003,
        ),
        (
            b"10.0.0.9:6001",
            ServerName::Ipv4(Ipv4Addr::new(10, 0, 0, 9)),
            6001,
        ),
        (
            b"[2001:db8::9]:6001",
            ServerName::Ipv6("2001:db8::9".parse().unwrap()),
            6001,
        ),
        (
            b"[2001:DB8:0:0:0:0:0:9]:6001",
            ServerName::Ipv6("2001:db8::9".parse().unwrap()),
            6001,
        ),
    ];
    for (query, server, port) in cases {
        let t =
            admit(query).unwrap_or_else(|e| panic!("{:?}: {e:?}", String::from_utf8_lossy(query)));
        assert_eq!(&t.server, server);
        assert_eq!(t.port, *port);
    }
}

#[test]
fn withcert_path_and_case_insensitive_path() {
    for path in [
        &b"/rpc/rpcproxy.dll"[..],
        b"/RPC/RPCPROXY.DLL",
        b"/Rpc/RpcProxy.dll",
    ] {
        assert_eq!(
            parse_request_target(path),
            Ok(RequestTarget::AuthProbe {
                path: ProxyPath::NoCert
            })
        );
    }
    let t = parse_request_target(b"/RpcWithCert/rpcproxy.dll?mbx01:6001").unwrap();
    assert_eq!(t.path(), ProxyPath::WithCert);
    assert_eq!(t.rpc_target().unwrap().port, 6001);
    // The bare path is not a target: parse_rpc_target says so distinctly.
    assert!(
        parse_rpc_target(b"/rpc/rpcproxy.dll")
            .unwrap_err()
            .is_no_server_port()
    );
}

#[test]
fn syntactically_valid_names_still_need_the_list() {
    let list = allow_list();
    for q in ["a:1", "x-y_z.example:65535", "1host.example:2"] {
        let t = RpcTarget::parse_query(q.as_bytes()).unwrap();
        assert!(list.check(&t).is_err(), "{q}");
    }
    assert!(
        AllowList::new()
            .check(&RpcTarget::parse_query(b"mbx01:6001").unwrap())
            .is_err()
    );
}
