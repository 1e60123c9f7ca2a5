//! Transcript helpers: a session driven with literal bytes and a virtual clock.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use pop3_proto::{
    Bytes, CommandId, Event, MaildropEntry, Reply, Request, ServerConfig, ServerSession,
    SessionOptions, Uid,
};

pub struct T {
    pub s: ServerSession,
    pub base: Instant,
    pub now: Instant,
}

impl T {
    pub fn new(config: ServerConfig, options: SessionOptions) -> Self {
        let base = Instant::now();
        Self {
            s: ServerSession::new(Arc::new(config), base, options),
            base,
            now: base,
        }
    }

    /// Clear text allowed, no TLS.
    pub fn plain() -> Self {
        Self::new(
            ServerConfig {
                allow_clear_text_without_tls: true,
                ..ServerConfig::default()
            },
            SessionOptions::default(),
        )
    }

    pub fn at(&mut self, secs: u64) {
        self.now = self.base + Duration::from_secs(secs);
    }

    /// Client sends bytes.
    pub fn c(&mut self, data: &[u8]) {
        self.s.handle_input(self.now, data);
    }

    /// Everything the server has to send now.
    pub fn out(&mut self) -> String {
        let mut buf = Vec::new();
        while self.s.poll_transmit(&mut buf) > 0 {}
        String::from_utf8(buf).expect("utf-8 output")
    }

    /// Asserts the exact bytes the server sends now.
    #[track_caller]
    pub fn expect(&mut self, want: &str) {
        assert_eq!(self.out(), want);
    }

    #[track_caller]
    pub fn event(&mut self) -> Event {
        self.s.poll_event().expect("an event")
    }

    #[track_caller]
    pub fn no_event(&mut self) {
        if let Some(e) = self.s.poll_event() {
            panic!("unexpected event {e:?}");
        }
    }

    #[track_caller]
    pub fn request(&mut self) -> (CommandId, Request) {
        match self.event() {
            Event::CommandReceived { id, command } => (id, command),
            other => panic!("expected a request, got {other:?}"),
        }
    }

    #[track_caller]
    pub fn reply(&mut self, id: CommandId, reply: Reply) {
        self.s.send(id, reply).expect("reply accepted");
    }

    /// USER/PASS login accepted with `maildrop`; output drained.
    #[track_caller]
    pub fn login(&mut self, maildrop: Vec<MaildropEntry>) {
        self.out();
        self.c(b"USER alice\r\nPASS secret\r\n");
        let (id, req) = self.request();
        assert!(matches!(req, Request::Login { .. }), "{req:?}");
        self.reply(id, Reply::LoginAccepted { maildrop });
        self.out();
    }

    #[track_caller]
    pub fn closed(&mut self) -> pop3_proto::CloseReason {
        match self.event() {
            Event::Closed { reason } => reason,
            other => panic!("expected Closed, got {other:?}"),
        }
    }
}

pub fn entry(size: u64, uid: &str) -> MaildropEntry {
    MaildropEntry {
        size,
        uid: Uid::new(uid).expect("uid"),
    }
}

pub fn entries(msgs: &[&[u8]]) -> Vec<MaildropEntry> {
    msgs.iter()
        .enumerate()
        .map(|(i, m)| entry(pop3_proto::stuffing::crlf_size(m), &format!("u{}", i + 1)))
        .collect()
}

pub fn data(chunk: &[u8], last: bool) -> Reply {
    Reply::MessageData {
        chunk: Bytes::copy_from_slice(chunk),
        last,
    }
}

/// What a client un-stuffs from RETR, as an oracle independent of the stuffer: every line
/// end CRLF, an unterminated last line ended with CRLF (LF after a final CR).
pub fn crlf_normalised(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 2);
    let mut prev_cr = false;
    for &b in body {
        if b == b'\n' && !prev_cr {
            out.push(b'\r');
        }
        out.push(b);
        prev_cr = b == b'\r';
    }
    if prev_cr {
        out.push(b'\n');
    } else if !out.is_empty() && !out.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Every response code, including extension codes with hierarchy levels.
pub fn response_code() -> impl proptest::strategy::Strategy<Value = pop3_proto::ResponseCode> {
    use pop3_proto::ResponseCode;
    use pop3_proto::response::ExtensionCode;
    use proptest::prelude::*;
    prop_oneof![
        Just(ResponseCode::InUse),
        Just(ResponseCode::LoginDelay),
        Just(ResponseCode::SysTemp),
        Just(ResponseCode::SysPerm),
        Just(ResponseCode::Auth),
        Just(ResponseCode::Utf8),
        "X-[A-Z0-9]{1,6}(/[A-Z0-9-]{1,6}){0,2}"
            .prop_filter_map("valid code", |s| ExtensionCode::new(s).ok())
            .prop_map(ResponseCode::Other),
    ]
}
