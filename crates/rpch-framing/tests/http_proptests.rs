//! Property tests for the HTTP layer: encode/parse round trips for request heads and
//! targets, prefix invariance of the head parser, the fuzz invariants on arbitrary bytes,
//! and channel lifetime accounting.

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use rpch_framing::http::{
    self, ChannelLifetime, ChannelMethod, ChannelRequest, HeaderValue, HttpLimits, RequestKind,
    encode_request_head, parse_request_head,
};
use rpch_framing::target::{
    HostName, ProxyPath, RequestTarget, RpcTarget, ServerName, parse_request_target,
};

fn label() -> impl Strategy<Value = String> {
    // Letters first so that no label is numeric; inner hyphens and underscores allowed.
    "[a-zA-Z][a-zA-Z0-9_-]{0,20}[a-zA-Z0-9]?"
}

fn host_name() -> impl Strategy<Value = HostName> {
    prop::collection::vec(label(), 1..5)
        .prop_filter_map("valid host name", |labels| labels.join(".").parse().ok())
}

fn server_name() -> impl Strategy<Value = ServerName> {
    prop_oneof![
        host_name().prop_map(ServerName::Host),
        any::<[u8; 4]>().prop_map(|o| ServerName::Ipv4(Ipv4Addr::from(o))),
        any::<[u16; 8]>().prop_map(|s| ServerName::Ipv6(Ipv6Addr::from(s))),
    ]
}

fn rpc_target() -> impl Strategy<Value = RpcTarget> {
    (server_name(), 1u16..).prop_map(|(s, p)| RpcTarget::new(s, p))
}

fn request_target() -> impl Strategy<Value = RequestTarget> {
    let path = prop_oneof![Just(ProxyPath::NoCert), Just(ProxyPath::WithCert)];
    (path, prop::option::of(rpc_target())).prop_map(|(path, t)| match t {
        None => RequestTarget::AuthProbe { path },
        Some(target) => RequestTarget::Rpc { path, target },
    })
}

fn header_value() -> impl Strategy<Value = HeaderValue> {
    "[!-~]([ -~]{0,60}[!-~])?".prop_map(|s| HeaderValue::new(s).unwrap())
}

fn channel_request() -> impl Strategy<Value = ChannelRequest> {
    let method = prop_oneof![
        Just(ChannelMethod::RpcInData),
        Just(ChannelMethod::RpcOutData)
    ];
    (
        method,
        request_target(),
        header_value(),
        any::<u64>(),
        any::<bool>(),
        prop::option::of(header_value()),
        prop::option::of(120u32..=14_400),
    )
        .prop_map(
            |(method, target, host, len_seed, expect_continue, authorization, min_conn_timeout)| {
                // Pick a Content-Length valid for the method: echo, or the channel's lengths.
                let content_length = match (method, len_seed % 3) {
                    (_, 0) => len_seed % 17,
                    (ChannelMethod::RpcInData, _) => {
                        http::MIN_CHANNEL_CONTENT_LENGTH
                            + len_seed
                                % (http::MAX_CHANNEL_CONTENT_LENGTH
                                    - http::MIN_CHANNEL_CONTENT_LENGTH
                                    + 1)
                    }
                    (ChannelMethod::RpcOutData, 1) => http::OUT_CHANNEL_CONTENT_LENGTH,
                    (ChannelMethod::RpcOutData, _) => http::REPLACEMENT_OUT_CHANNEL_CONTENT_LENGTH,
                };
                ChannelRequest {
                    method,
                    target,
                    host,
                    content_length,
                    expect_continue,
                    authorization,
                    min_conn_timeout,
                }
            },
        )
}

proptest! {
    #[test]
    fn target_round_trip(t in request_target()) {
        let mut enc = Vec::new();
        t.encode(&mut enc);
        prop_assert_eq!(parse_request_target(&enc), Ok(t.clone()));
        if let RequestTarget::Rpc { target, .. } = &t {
            let mut q = Vec::new();
            target.encode_query(&mut q);
            prop_assert_eq!(RpcTarget::parse_query(&q), Ok(target.clone()));
            prop_assert_eq!(String::from_utf8(q).unwrap(), target.to_string());
        }
    }

    #[test]
    fn host_name_case_is_ignored(h in host_name()) {
        let upper: HostName = h.as_str().to_ascii_uppercase().parse().unwrap();
        prop_assert_eq!(&upper, &h);
    }

    #[test]
    fn request_head_round_trip(req in channel_request(), body in prop::collection::vec(any::<u8>(), 0..32)) {
        let mut enc = Vec::new();
        encode_request_head(&mut enc, &req);
        let head_len = enc.len();
        enc.extend_from_slice(&body);
        let (head, len) = parse_request_head(&enc, &HttpLimits::default()).unwrap().unwrap();
        prop_assert_eq!(len, head_len);
        prop_assert_eq!(head.method, req.method);
        prop_assert_eq!(parse_request_target(head.target), Ok(req.target.clone()));
        prop_assert_eq!(head.content_length, req.content_length);
        prop_assert_eq!(head.expect_continue, req.expect_continue);
        prop_assert_eq!(head.host, Some(req.host.as_str().as_bytes()));
        prop_assert_eq!(head.authorization, req.authorization.as_ref().map(|a| a.as_str().as_bytes()));
        prop_assert_eq!(head.pragma.min_conn_timeout, req.min_conn_timeout);
        prop_assert!(head.pragma.no_cache);
        prop_assert!(head.keep_alive);
        let expected_kind = match (req.method, req.content_length) {
            (_, n) if n <= 16 => RequestKind::Echo,
            (ChannelMethod::RpcInData, _) => RequestKind::InChannel,
            (ChannelMethod::RpcOutData, 76) => RequestKind::OutChannel,
            _ => RequestKind::ReplacementOutChannel,
        };
        prop_assert_eq!(head.kind(), expected_kind);
    }

    /// Every proper prefix of a complete head is "incomplete"; the whole head parses the same
    /// whatever follows it.
    #[test]
    fn head_prefixes_are_incomplete(req in channel_request(), split in any::<prop::sample::Index>()) {
        let mut enc = Vec::new();
        encode_request_head(&mut enc, &req);
        let cut = split.index(enc.len());
        prop_assert_eq!(parse_request_head(&enc[..cut], &HttpLimits::default()), Ok(None));
    }

    #[test]
    fn arbitrary_bytes_keep_the_invariants(data in prop::collection::vec(any::<u8>(), 0..512)) {
        http::fuzzing::http_head(&data);
    }

    #[test]
    fn arbitrary_heads_keep_the_invariants(
        method in prop_oneof![
            Just("RPC_IN_DATA".to_owned()),
            Just("RPC_OUT_DATA".to_owned()),
            Just("GET".to_owned()),
            "[A-Z_]{1,12}",
        ],
        target in "[ -~]{0,80}",
        headers in prop::collection::vec(("[A-Za-z-]{1,16}", "[ -~]{0,40}"), 0..12),
    ) {
        let mut head = format!("{method} {target} HTTP/1.1\r\n");
        for (n, v) in &headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str("\r\n");
        http::fuzzing::http_head(head.as_bytes());
    }

    #[test]
    fn arbitrary_queries_keep_the_invariants(query in "[ -~]{0,80}") {
        http::fuzzing::check_target(format!("/rpc/rpcproxy.dll?{query}").as_bytes());
    }

    #[test]
    fn lifetime_never_passes_content_length(
        content_length in 0u64..1_000_000,
        chunks in prop::collection::vec(0usize..100_000, 0..64),
    ) {
        let mut l = ChannelLifetime::new(content_length);
        let mut accepted = 0u64;
        for c in chunks {
            let fits = l.fits(c);
            let before = l.transferred();
            match l.record(c) {
                Ok(()) => { prop_assert!(fits); accepted += c as u64; }
                Err(e) => {
                    prop_assert!(!fits);
                    prop_assert_eq!(l.transferred(), before);
                    prop_assert_eq!(e.remaining, l.remaining());
                }
            }
            prop_assert!(l.transferred() <= content_length);
            prop_assert_eq!(l.transferred(), accepted);
            prop_assert_eq!(l.remaining(), content_length - accepted);
        }
        if l.is_exhausted() {
            prop_assert!(l.should_recycle());
        }
    }
}
