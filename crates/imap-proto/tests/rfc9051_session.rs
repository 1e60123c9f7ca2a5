//! The RFC 9051 §8 sample IMAP4rev2 connection, byte for byte: the client's bytes go through a
//! server-role fragmentizer and the command parser, the server's bytes through a client-role
//! fragmentizer and the response parser; every message also round-trips through the encoder.
//!
//! The RFC wraps the long FETCH response over several lines for display; on the wire it is
//! one line. The ENVELOPE's message-id ends in `.ed>` in the RFC and is kept as printed.

use bytes::Bytes;
use cas_imap_proto::command::{
    AuthenticateData, CommandBody, FetchAttributes, StoreKind, parse_authenticate_data,
    parse_command,
};
use cas_imap_proto::fragmentizer::{Fragmentizer, Frame, Limits, Role};
use cas_imap_proto::fuzzing::{check_command, check_response};
use cas_imap_proto::parse::ParseOptions;
use cas_imap_proto::response::{
    ContinueRequest, Data, FetchItem, Response, Status, StatusResponse, parse_response,
};
use cas_imap_proto::types::{Flag, Mailbox};

/// The header the server sends for `a004 fetch 12 body[header]` (342 octets).
const HEADER: &[u8] = b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n\
From: Terry Gray <gray@cac.washington.edu>\r\n\
Subject: IMAP4rev2 WG mtg summary and minutes\r\n\
To: imap@cac.washington.edu\r\n\
cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\n\
Message-Id: <B27397-0100000@cac.washington.edu>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\
\r\n";

/// The client's lines, in order (after STARTTLS the same connection continues inside TLS).
const CLIENT: &[&[u8]] = &[
    b"a000 starttls\r\n",
    b"A001 AUTHENTICATE SCRAM-SHA-256 biwsbj11c2VyLHI9ck9wck5HZndFYmVSV2diTkVrcU8=\r\n",
    b"Yz1iaXdzLHI9ck9wck5HZndFYmVSV2diTkVrcU8laHZZRHBXVWEyUmFUQ0FmdXhGSWxqKWhObEYkazAscD1kSHpiWmFwV0lrNGpVaE4rVXRlOXl0YWc5empmTUhnc3FtbWl6N0FuZFZRPQ==\r\n",
    b"\r\n",
    b"babc ENABLE IMAP4rev2\r\n",
    b"a002 select inbox\r\n",
    b"a003 fetch 12 full\r\n",
    b"a004 fetch 12 body[header]\r\n",
    b"a005 store 12 +flags \\deleted\r\n",
    b"a006 logout\r\n",
];

/// The server's messages, in order.
fn server_messages() -> Vec<Vec<u8>> {
    let mut header_fetch = b"* 12 FETCH (BODY[HEADER] {342}\r\n".to_vec();
    header_fetch.extend_from_slice(HEADER);
    header_fetch.extend_from_slice(b")\r\n");
    vec![
        b"* OK [CAPABILITY STARTTLS AUTH=SCRAM-SHA-256 LOGINDISABLED IMAP4rev2] IMAP4rev2 Service Ready\r\n".to_vec(),
        b"a000 OK Proceed with TLS negotiation\r\n".to_vec(),
        b"+ cj1yT3ByTkdmd0ViZVJXZ2JORWtxTyVodllEcFdVYTJSYVRDQWZ1eEZJbGopaE5sRiRrMCxzPVcyMlphSjBTTlk3c29Fc1VFamI2Z1E9PSxpPTQwOTY=\r\n".to_vec(),
        b"+ dj02cnJpVFJCaTIzV3BSUi93dHVwK21NaFVaVW4vZEI1bkxUSlJzamw5NUc0PQ==\r\n".to_vec(),
        b"A001 OK SCRAM-SHA-256 authentication successful\r\n".to_vec(),
        b"* ENABLED IMAP4rev2\r\n".to_vec(),
        b"babc OK Some capabilities enabled\r\n".to_vec(),
        b"* 18 EXISTS\r\n".to_vec(),
        b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n".to_vec(),
        b"* OK [UIDVALIDITY 3857529045] UIDs valid\r\n".to_vec(),
        b"* LIST () \"/\" INBOX (\"OLDNAME\" (\"inbox\"))\r\n".to_vec(),
        b"a002 OK [READ-WRITE] SELECT completed\r\n".to_vec(),
        b"* 12 FETCH (FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 4286 ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev2 WG mtg summary and minutes\" ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((NIL NIL \"imap\" \"cac.washington.edu\")) ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\") (\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL \"<B27397-0100000@cac.washington.ed>\") BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92))\r\n".to_vec(),
        b"a003 OK FETCH completed\r\n".to_vec(),
        header_fetch,
        b"a004 OK FETCH completed\r\n".to_vec(),
        b"* 12 FETCH (FLAGS (\\Seen \\Deleted))\r\n".to_vec(),
        b"a005 OK +FLAGS completed\r\n".to_vec(),
        b"* BYE IMAP4rev2 server terminating connection\r\n".to_vec(),
        b"a006 OK LOGOUT completed\r\n".to_vec(),
    ]
}

/// Frames `stream` read in `chunk`-byte pieces; no literal may be refused.
fn frame(role: Role, stream: &[u8], chunk: usize) -> Vec<Bytes> {
    let mut f = Fragmentizer::new(role, Limits::default());
    let mut out = Vec::new();
    for piece in stream.chunks(chunk) {
        f.push(piece);
        while let Some(frame) = f.poll() {
            match frame {
                Frame::Message(m) => out.push(m),
                Frame::LiteralAnnounced(a) => panic!("unexpected announcement {a:?}"),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert!(f.is_idle());
    out
}

#[test]
fn client_side_frames_into_the_rfc_lines_for_any_read_size() {
    let stream = CLIENT.concat();
    for chunk in [1, 2, 7, 64, stream.len()] {
        let messages = frame(Role::Server, &stream, chunk);
        let expected: Vec<Bytes> = CLIENT.iter().map(|l| Bytes::from_static(l)).collect();
        assert_eq!(messages, expected, "read size {chunk}");
    }
}

#[test]
fn client_commands_parse_to_the_expected_values() {
    let mut commands = Vec::new();
    for (i, line) in CLIENT.iter().enumerate() {
        // Lines 2 and 3 answer the server's SASL challenges; they are not commands.
        if i == 2 || i == 3 {
            let data = parse_authenticate_data(line).unwrap();
            assert!(matches!(data, AuthenticateData::Response(_)), "{data:?}");
            continue;
        }
        let command = parse_command(line).unwrap_or_else(|e| panic!("{line:?}: {e:?}"));
        check_command(&command, &ParseOptions::default());
        commands.push(command);
    }
    let tags: Vec<&str> = commands.iter().map(|c| c.tag.as_str()).collect();
    assert_eq!(
        tags,
        [
            "a000", "A001", "babc", "a002", "a003", "a004", "a005", "a006"
        ]
    );
    assert!(matches!(commands[0].body, CommandBody::StartTls));
    match &commands[1].body {
        CommandBody::Authenticate {
            mechanism,
            initial_response,
        } => {
            assert!(mechanism.eq_ignore_case("SCRAM-SHA-256"));
            assert!(initial_response.is_some());
        }
        other => panic!("{other:?}"),
    }
    match &commands[2].body {
        CommandBody::Enable { capabilities } => assert_eq!(capabilities.len(), 1),
        other => panic!("{other:?}"),
    }
    match &commands[3].body {
        CommandBody::Select {
            mailbox,
            parameters,
        } => {
            assert_eq!(*mailbox, Mailbox::Inbox);
            assert!(parameters.is_empty());
        }
        other => panic!("{other:?}"),
    }
    match &commands[4].body {
        CommandBody::Fetch {
            uid, attributes, ..
        } => {
            assert!(!uid);
            assert_eq!(*attributes, FetchAttributes::Full);
        }
        other => panic!("{other:?}"),
    }
    match &commands[5].body {
        CommandBody::Fetch { attributes, .. } => {
            assert!(matches!(attributes, FetchAttributes::List(list) if list.len() == 1));
        }
        other => panic!("{other:?}"),
    }
    match &commands[6].body {
        CommandBody::Store {
            uid,
            kind,
            silent,
            flags,
            unchanged_since,
            ..
        } => {
            assert!(!uid);
            assert_eq!(*kind, StoreKind::Add);
            assert!(!silent);
            assert_eq!(*flags, vec![Flag::Deleted]);
            assert_eq!(*unchanged_since, None);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(commands[7].body, CommandBody::Logout));
}

#[test]
fn server_side_frames_into_the_rfc_responses_for_any_read_size() {
    let expected = server_messages();
    let stream = expected.concat();
    for chunk in [1, 3, 100, stream.len()] {
        let messages = frame(Role::Client, &stream, chunk);
        assert_eq!(messages, expected, "read size {chunk}");
    }
}

#[test]
fn server_responses_parse_to_the_expected_values() {
    let messages = server_messages();
    let responses: Vec<Response<'_>> = messages
        .iter()
        .map(|m| parse_response(m).unwrap_or_else(|e| panic!("{m:?}: {e:?}")))
        .collect();
    for response in &responses {
        check_response(response, &ParseOptions::default());
    }
    let tagged = |r: &Response<'_>| match r {
        Response::Status(StatusResponse::Tagged { tag, status, .. }) => {
            Some((tag.as_str().to_owned(), *status))
        }
        _ => None,
    };
    assert_eq!(tagged(&responses[1]), Some(("a000".into(), Status::Ok)));
    assert_eq!(tagged(&responses[4]), Some(("A001".into(), Status::Ok)));
    assert_eq!(tagged(&responses[19]), Some(("a006".into(), Status::Ok)));
    assert!(matches!(
        &responses[0],
        Response::Status(StatusResponse::Untagged {
            status: Status::Ok,
            text
        }) if text.code.is_some()
    ));
    assert!(matches!(
        &responses[2],
        Response::Continue(ContinueRequest::Base64(_))
    ));
    assert!(matches!(&responses[5], Response::Data(Data::Enabled(c)) if c.len() == 1));
    assert!(matches!(&responses[7], Response::Data(Data::Exists(18))));
    assert!(matches!(&responses[8], Response::Data(Data::Flags(f)) if f.len() == 5));
    assert!(matches!(&responses[10], Response::Data(Data::List(_))));
    match &responses[12] {
        Response::Data(Data::Fetch { seq, items }) => {
            assert_eq!(seq.get(), 12);
            assert!(
                items
                    .iter()
                    .any(|i| matches!(i, FetchItem::Rfc822Size(4286)))
            );
            assert!(items.iter().any(|i| matches!(i, FetchItem::Envelope(_))));
            assert!(items.iter().any(|i| matches!(i, FetchItem::Body(_))));
        }
        other => panic!("{other:?}"),
    }
    match &responses[14] {
        Response::Data(Data::Fetch { seq, items }) => {
            assert_eq!(seq.get(), 12);
            match &items[..] {
                [FetchItem::BodySection { data, origin, .. }] => {
                    assert_eq!(*origin, None);
                    assert_eq!(data.as_bytes(), Some(HEADER));
                }
                other => panic!("{other:?}"),
            }
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        &responses[18],
        Response::Status(StatusResponse::Bye(_))
    ));
}

#[test]
fn literal_data_is_borrowed_from_the_framed_message() {
    let stream = server_messages().concat();
    let messages = frame(Role::Client, &stream, 50);
    let message = &messages[14];
    let Response::Data(Data::Fetch { items, .. }) = parse_response(message).unwrap() else {
        panic!("not a FETCH");
    };
    let [FetchItem::BodySection { data, .. }] = &items[..] else {
        panic!("{items:?}");
    };
    let body = data.as_bytes().unwrap();
    // Zero copy: the parsed header is a slice of the message, which a session can keep.
    let range = message.as_ptr_range();
    assert!(range.contains(&body.as_ptr()));
    assert_eq!(&message.slice_ref(body)[..], HEADER);
}
