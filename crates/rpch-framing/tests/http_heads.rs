//! Request heads as the real RPC over HTTP clients send them, and what the proxy answers.
//!
//! Header sets are facts read from the clients' sources: impacket 0.13 (`rpch.py`
//! `RPCProxyClient.default_headers`, sent through Python's `http.client`, which puts `Host`
//! and `Accept-Encoding: identity` first), Samba 4.17 (`dcerpc_roh_channel_in.c` /
//! `dcerpc_roh_channel_out.c`: HTTP/1.0, no `Expect`), and the Windows client of MS-RPCH
//! §2.1.2.1.1 (pragmas). The byte strings are written here.

use rpch_framing::http::{
    ChannelMethod, HeaderValue, HttpLimits, HttpVersion, OUT_CHANNEL_RESPONSE_CONTENT_LENGTH,
    RequestKind, encode_continue, encode_rpc_response_head, encode_unauthorized,
    parse_request_head,
};
use rpch_framing::target::{
    AllowList, ProxyPath, RequestTarget, parse_request_target, parse_rpc_target,
};

fn parse(head: &[u8]) -> rpch_framing::http::RequestHead<'_> {
    let (h, len) = parse_request_head(head, &HttpLimits::default())
        .unwrap()
        .unwrap();
    assert_eq!(len, head.len());
    h
}

/// What a proxy sends before the body, by the rule of INTEROP.md: `100 Continue` only when
/// the request asked for it.
fn interim(head: &rpch_framing::http::RequestHead<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    if head.expect_continue {
        encode_continue(&mut out);
    }
    out
}

const IMPACKET_PROBE: &[u8] = b"RPC_IN_DATA /rpc/rpcproxy.dll HTTP/1.1\r\n\
Host: cas.example.org\r\nAccept-Encoding: identity\r\nUser-Agent: MSRPC\r\nCache-Control: no-cache\r\n\
Connection: Keep-Alive\r\nExpect: 100-continue\r\nAccept: application/rpc\r\nPragma: No-cache\r\n\
Content-Length: 0\r\nAuthorization: NTLM TlRMTVNTUAABAAAABoIIAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n";

const IMPACKET_OUT: &[u8] = b"RPC_OUT_DATA /rpc/rpcproxy.dll?MBX01:6001 HTTP/1.1\r\n\
Host: cas.example.org\r\nAccept-Encoding: identity\r\nUser-Agent: MSRPC\r\nCache-Control: no-cache\r\n\
Connection: Keep-Alive\r\nExpect: 100-continue\r\nAccept: application/rpc\r\nPragma: No-cache\r\n\
Content-Length: 76\r\nAuthorization: NTLM TlRMTVNTUAADAAAAGAAYAEAAAAA=\r\n\r\n";

const SAMBA_IN: &[u8] = b"RPC_IN_DATA /rpc/rpcproxy.dll?mbx01.corp.example:6001 HTTP/1.0\r\n\
Accept: application/rpc\r\nUser-Agent: MSRPC\r\nHost: cas.example.org\r\nConnection: keep-alive\r\n\
Content-Length: 1073741824\r\nCache-Control: no-cache\r\nPragma: no-cache\r\n\
Authorization: Negotiate TlRMTVNTUAADAAAA\r\n\r\n";

const SAMBA_OUT: &[u8] = b"RPC_OUT_DATA /rpc/rpcproxy.dll?mbx01.corp.example:6001 HTTP/1.0\r\n\
Accept: application/rpc\r\nUser-Agent: MSRPC\r\nHost: cas.example.org\r\nConnection: keep-alive\r\n\
Content-Length: 76\r\nCache-Control: no-cache\r\nPragma: no-cache\r\n\r\n";

const WINDOWS_IN: &[u8] = b"RPC_IN_DATA /rpc/rpcproxy.dll?mbx01.corp.example:6001 HTTP/1.1\r\n\
Accept: application/rpc\r\nCache-Control: no-cache\r\nConnection: Keep-Alive\r\n\
Content-Length: 1073741824\r\nUser-Agent: MSRPC\r\nHost: mail.example.org\r\n\
Pragma: No-cache\r\nPragma: MinConnTimeout=900\r\n\
Pragma: ResourceTypeUuid=a4f1db00-ca47-1067-b31f-00dd010662da, SessionId=fbb3a4f8-0f49-4b4a-8b0a-2c5f7a6e1d10\r\n\
Authorization: Negotiate TlRMTVNTUAADAAAA\r\n\r\n";

#[test]
fn impacket_probe_gets_401_then_continue() {
    let head = parse(IMPACKET_PROBE);
    assert_eq!(head.method, ChannelMethod::RpcInData);
    assert_eq!(head.content_length, 0);
    assert_eq!(head.kind(), RequestKind::Echo);
    assert!(head.expect_continue);
    assert_eq!(
        parse_request_target(head.target),
        Ok(RequestTarget::AuthProbe {
            path: ProxyPath::NoCert
        })
    );
    assert!(head.authorization.unwrap().starts_with(b"NTLM "));

    // Unauthenticated: 401 with the challenge, connection kept (impacket reads the
    // WWW-Authenticate header and needs NTLM in it).
    let mut out = Vec::new();
    encode_unauthorized(
        &mut out,
        &[HeaderValue::new("NTLM TlRMTVNTUAACAAAADAAMADgAAAA=").unwrap()],
    );
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 401 Unauthorized\r\n"));
    assert!(text.contains("\r\nWWW-Authenticate: NTLM TlRMTVNTUAACAAAADAAMADgAAAA=\r\n"));
    assert!(text.contains("\r\nContent-Length: 0\r\n"));
    assert!(text.contains("\r\nConnection: Keep-Alive\r\n"));
}

#[test]
fn impacket_out_channel_gets_continue_then_200() {
    let head = parse(IMPACKET_OUT);
    assert_eq!(head.kind(), RequestKind::OutChannel);
    let target = parse_rpc_target(head.target).unwrap();
    let allow = AllowList::from_valid_ports("MBX01:6001-6004").unwrap();
    allow.check(&target).unwrap();
    // impacket compares its first recv against exactly this.
    assert_eq!(interim(&head), b"HTTP/1.1 100 Continue\r\n\r\n");
    let mut ok = Vec::new();
    encode_rpc_response_head(&mut ok, OUT_CHANNEL_RESPONSE_CONTENT_LENGTH);
    // impacket checks resp[9:12] == b"200" and looks for a chunked Transfer-Encoding.
    assert_eq!(&ok[9..12], b"200");
    assert!(!ok.windows(17).any(|w| w == b"Transfer-Encoding"));
}

#[test]
fn samba_gets_no_continue() {
    for (raw, kind, len) in [
        (SAMBA_IN, RequestKind::InChannel, 1u64 << 30),
        (SAMBA_OUT, RequestKind::OutChannel, 76),
    ] {
        let head = parse(raw);
        assert_eq!(head.version, HttpVersion::Http10);
        assert!(head.keep_alive, "HTTP/1.0 with Connection: keep-alive");
        assert!(!head.expect_continue);
        assert!(interim(&head).is_empty(), "Samba breaks on 100 Continue");
        assert_eq!(head.kind(), kind);
        assert_eq!(head.content_length, len);
        assert!(head.pragma.no_cache);
        let t = parse_rpc_target(head.target).unwrap();
        assert_eq!(t.to_string(), "mbx01.corp.example:6001");
    }
}

#[test]
fn windows_pragmas() {
    let head = parse(WINDOWS_IN);
    assert_eq!(head.kind(), RequestKind::InChannel);
    assert!(head.pragma.no_cache);
    assert_eq!(head.pragma.min_conn_timeout, Some(900));
    assert_eq!(
        head.pragma.resource_type_uuid,
        Some("a4f1db00-ca47-1067-b31f-00dd010662da")
    );
    assert_eq!(
        head.pragma.session_id,
        Some("fbb3a4f8-0f49-4b4a-8b0a-2c5f7a6e1d10")
    );
    assert_eq!(head.host, Some(&b"mail.example.org"[..]));
}

#[test]
fn heads_split_anywhere_parse_the_same() {
    for raw in [
        IMPACKET_PROBE,
        IMPACKET_OUT,
        SAMBA_IN,
        SAMBA_OUT,
        WINDOWS_IN,
    ] {
        let whole = parse(raw);
        let mut buf = Vec::new();
        let mut parsed = None;
        for (i, b) in raw.iter().enumerate() {
            buf.push(*b);
            match parse_request_head(&buf, &HttpLimits::default()).unwrap() {
                None => assert!(i + 1 < raw.len()),
                Some((h, len)) => {
                    assert_eq!(i + 1, raw.len());
                    assert_eq!(len, raw.len());
                    parsed = Some(format!("{h:?}"));
                }
            }
        }
        assert_eq!(parsed, Some(format!("{whole:?}")));
    }
}

#[test]
fn body_bytes_after_the_head_are_left_alone() {
    let mut buf = SAMBA_OUT.to_vec();
    // The CONN/A1 body often arrives in the same read as the head.
    buf.extend_from_slice(&[0x05, 0x00, 0x14, 0x03, 0x10, 0, 0, 0, 0x4c, 0]);
    let (_, len) = parse_request_head(&buf, &HttpLimits::default())
        .unwrap()
        .unwrap();
    assert_eq!(len, SAMBA_OUT.len());
    assert_eq!(&buf[len..len + 4], &[0x05, 0x00, 0x14, 0x03]);
}
