//! [`ServerSession`]: the per-connection state machine.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::code::ResponseCode;
use crate::command::{
    AuthenticateData, Base64Data, Command, CommandBody, QResyncParameter, SelectParameter,
    parse_authenticate_data, parse_command_with, parse_idle_done,
};
use crate::encode::{Encode, Encoder, LiteralPolicy};
use crate::error::ParseErrorKind;
use crate::fragmentizer::{
    Fragmentizer, Frame, LimitExceeded, LiteralAnnouncement, Rejection, Role,
};
use crate::parse::ParseOptions;
use crate::response::{
    ContinueRequest, Data, FetchItem, Response, ResponseText, Status, StatusResponse, Text,
};
use crate::types::{Capability, Flag, FlagFetch, ModSeq, SequenceSetArg, Tag};

use super::config::{ServerConfig, SessionOptions};
use super::event::{
    AppendPayload, BodyItem, CloseReason, CommandId, Event, LoginOutcome, SendError, SendErrorKind,
    State,
};
use super::view::{MailboxView, MessageInfo, SelectedMailbox, UpdateRules};

/// Smallest transmit chunk.
const MIN_TRANSMIT_CHUNK: usize = 64;

/// The longest text of [`Event::CommandTraced`] / [`Event::ReplyTraced`], in characters.
pub const MAX_TRACE_LINE: usize = 200;

/// Extensions the session implements the mechanics of; it advertises them itself and drops
/// them from [`ServerConfig::capabilities`].
fn session_managed(capability: &Capability<'_>) -> bool {
    let name = capability.as_str();
    matches!(
        capability,
        Capability::Imap4Rev1
            | Capability::Imap4Rev2
            | Capability::StartTls
            | Capability::LoginDisabled
            | Capability::SaslIr
            | Capability::LiteralPlus
            | Capability::LiteralMinus
            | Capability::Enable
            | Capability::Idle
            | Capability::AuthPlain
            | Capability::AuthLogin
    ) || capability.auth_mechanism().is_some()
        || name.len() >= 12 && name[..12].eq_ignore_ascii_case("APPENDLIMIT=")
        || name.eq_ignore_ascii_case("APPENDLIMIT")
}

/// What the pending command waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Waiting {
    /// The application's answer.
    Application,
    /// The client's next SASL line (a challenge is out).
    SaslLine,
    /// The client's `DONE`.
    IdleDone,
}

/// The command kinds whose answers the session treats specially.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Login,
    Authenticate,
    Select {
        examine: bool,
        qresync: Option<Box<QResyncParameter>>,
    },
    /// FETCH, STORE or SEARCH (and SORT/THREAD): EXPUNGE may not be sent unless `uid`.
    NoExpunge {
        uid: bool,
    },
    Store {
        uid: bool,
        silent: bool,
    },
    /// EXPUNGE, UID EXPUNGE, MOVE: the application reports its own expunges.
    Expunging {
        uid: bool,
    },
    /// CLOSE or UNSELECT: the mailbox is deselected on `OK`.
    Deselect {
        close: bool,
    },
    Idle,
    Other {
        uid: bool,
    },
}

impl Kind {
    fn is_uid(&self) -> bool {
        match self {
            Self::NoExpunge { uid }
            | Self::Store { uid, .. }
            | Self::Expunging { uid }
            | Self::Other { uid } => *uid,
            _ => false,
        }
    }

    fn expunge_allowed(&self) -> bool {
        match self {
            Self::NoExpunge { uid } | Self::Store { uid, .. } => *uid,
            _ => true,
        }
    }
}

#[derive(Debug)]
struct Pending {
    id: CommandId,
    tag: Tag<'static>,
    name: &'static str,
    kind: Kind,
    waiting: Waiting,
}

/// Extensions the client turned on (ENABLE, or implicitly).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Enabled {
    condstore: bool,
    qresync: bool,
    utf8_accept: bool,
    imap4rev2: bool,
}

/// A sans-IO IMAP server session (one per connection).
///
/// Call order: feed input with the `handle_*` methods, answer events with the command
/// methods, and after every call drain [`ServerSession::poll_event`], then
/// [`ServerSession::poll_transmit`], then re-arm the timer with
/// [`ServerSession::poll_timeout`]. See the [module docs](super) for an example.
#[derive(Debug)]
pub struct ServerSession {
    config: Arc<ServerConfig>,
    state: State,
    tls_active: bool,
    /// STARTTLS answered; input is ignored until `handle_tls_established`.
    tls_pending: bool,
    compression_active: bool,
    /// Input that followed `COMPRESS DEFLATE`, still compressed.
    compressed_input: Option<Bytes>,
    user: Option<String>,
    enabled: Enabled,
    fragmentizer: Fragmentizer,
    pending: Option<Pending>,
    /// Boxed: most connections have no mailbox selected at any moment.
    view: Option<Box<MailboxView>>,
    /// The RFC 5182 `$` result, as UIDs.
    saved_search: Option<Vec<NonZeroU32>>,
    next_id: u64,
    events: VecDeque<Event>,
    /// Output segments; a large FETCH body is its own segment, shared with the application.
    out: VecDeque<Bytes>,
    /// Bytes of `out.front()` already handed out.
    out_pos: usize,
    /// Unsent bytes in `out`.
    queued: usize,
    bad_commands: u32,
    auth_failures: u32,
    last_activity: Instant,
    /// Commands read in command mode (parsed or not), for the reply invariant.
    commands_read: u64,
    /// Final replies queued: tagged statuses and the `* BAD` of commands without a tag.
    final_replies: u64,
}

impl ServerSession {
    /// A new session; the greeting (`* OK` or `* PREAUTH`, with the capabilities) is queued.
    pub fn new(config: Arc<ServerConfig>, now: Instant, options: SessionOptions) -> Self {
        let fragmentizer = Fragmentizer::new(Role::Server, config.limits.framing.clone());
        let mut session = Self {
            state: State::NotAuthenticated,
            tls_active: options.tls_active,
            tls_pending: false,
            compression_active: false,
            compressed_input: None,
            user: None,
            enabled: Enabled::default(),
            fragmentizer,
            pending: None,
            view: None,
            saved_search: None,
            next_id: 0,
            events: VecDeque::new(),
            out: VecDeque::new(),
            out_pos: 0,
            queued: 0,
            bad_commands: 0,
            auth_failures: 0,
            last_activity: now,
            commands_read: 0,
            final_replies: 0,
            config,
        };
        let status = if let Some(user) = options.preauth_user {
            session.user = Some(user);
            session.state = State::Authenticated;
            StatusResponse::PreAuth(ResponseText::with_code(
                ResponseCode::Capability(session.capabilities()),
                text(&session.config.greeting, "ready"),
            ))
        } else {
            StatusResponse::Untagged {
                status: Status::Ok,
                text: ResponseText::with_code(
                    ResponseCode::Capability(session.capabilities()),
                    text(&session.config.greeting, "ready"),
                ),
            }
        };
        session.apply_framing_limits(false);
        session.queue_status(status);
        session
    }

    // -----------------------------------------------------------------------------------
    // Inputs
    // -----------------------------------------------------------------------------------

    /// Bytes received from the client (after TLS and decompression).
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        if self.is_closed() || self.tls_pending || data.is_empty() {
            return;
        }
        self.last_activity = now;
        self.fragmentizer.push(data);
        if self.blocked_on_application()
            && self.fragmentizer.buffered()
                > self.config.limits.max_pipelined_input.saturating_mul(2)
        {
            self.close_with(
                CloseReason::InputLimitExceeded,
                None,
                "Too much pipelined input",
            );
            return;
        }
        self.process();
    }

    /// The client closed its side of the connection.
    pub fn handle_eof(&mut self, _now: Instant) {
        if self.is_closed() {
            return;
        }
        self.end_idle_event();
        self.finish_close(CloseReason::PeerClosed);
    }

    /// The timer from [`ServerSession::poll_timeout`] fired (spurious calls are no-ops).
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.poll_timeout() else {
            return;
        };
        if now < deadline {
            return;
        }
        self.end_idle_event();
        self.close_with(CloseReason::Timeout, None, "Autologout; idle for too long");
    }

    /// The TLS handshake after [`Event::TlsRequested`] completed: the session continues
    /// over TLS, with the capabilities recomputed (RFC 9051 §6.2.1: the client must ask
    /// again).
    pub fn handle_tls_established(&mut self, now: Instant) {
        if !self.tls_pending {
            return;
        }
        self.tls_pending = false;
        self.tls_active = true;
        self.last_activity = now;
    }

    // -----------------------------------------------------------------------------------
    // Commands from the application
    // -----------------------------------------------------------------------------------

    /// Sends untagged data for command `id` (LIST, STATUS, SEARCH, ESEARCH, NAMESPACE, ID,
    /// the `VANISHED (EARLIER)` of a `UID FETCH ... (CHANGEDSINCE n VANISHED)`, the LIST
    /// that RFC 9051 §6.3.2 wants before a SELECT's tagged OK, ...). `EXISTS`, `RECENT`,
    /// `EXPUNGE` and a plain `VANISHED` are refused: they go through the selected-mailbox
    /// view ([`ServerSession::mailbox_changed`],
    /// [`ServerSession::expunged`]); for FETCH prefer [`ServerSession::send_fetch`], which
    /// computes the sequence number.
    pub fn send<'a>(&mut self, id: CommandId, data: Data<'a>) -> Result<(), SendError<Data<'a>>> {
        if let Err(kind) = self.check_answer(id) {
            return Err(SendError::new(kind, data));
        }
        if matches!(
            data,
            Data::Exists(_)
                | Data::Recent(_)
                | Data::Expunge(_)
                | Data::Vanished { earlier: false, .. }
        ) {
            return Err(SendError::new(SendErrorKind::UnexpectedAnswer, data));
        }
        self.queue_response(&Response::Data(data));
        Ok(())
    }

    /// Sends an untagged status for command `id`, e.g. MOVE's `* OK [COPYUID ...]`
    /// (RFC 6851) or a `* NO` warning.
    pub fn send_untagged_status(
        &mut self,
        id: CommandId,
        status: Status,
        code: Option<ResponseCode<'_>>,
        message: &str,
    ) -> Result<(), SendError<Status>> {
        if let Err(kind) = self.check_answer(id) {
            return Err(SendError::new(kind, status));
        }
        self.queue_status(StatusResponse::untagged(
            status,
            code,
            text(message, "note"),
        ));
        Ok(())
    }

    /// Sends `* n FETCH (items)` for the message with `uid`, with `n` from the view. `UID`
    /// is added when the command was a UID command or QRESYNC is enabled (RFC 9051 §6.4.9,
    /// RFC 7162 §3.2.4) and the items lack it. Refused if the client does not know `uid`.
    pub fn send_fetch<'a>(
        &mut self,
        id: CommandId,
        uid: NonZeroU32,
        mut items: Vec<FetchItem<'a>>,
    ) -> Result<(), SendError<Vec<FetchItem<'a>>>> {
        if let Err(kind) = self.check_answer(id) {
            return Err(SendError::new(kind, items));
        }
        let Some(seq) = self.view.as_ref().and_then(|v| v.msn(uid.get())) else {
            return Err(SendError::new(SendErrorKind::UnexpectedAnswer, items));
        };
        let uid_command = self.pending.as_ref().is_some_and(|p| p.kind.is_uid());
        if (uid_command || self.enabled.qresync)
            && !items.iter().any(|i| matches!(i, FetchItem::Uid(_)))
        {
            items.push(FetchItem::Uid(uid));
        }
        let data = Data::Fetch { seq, items };
        self.queue_response(&Response::Data(data));
        Ok(())
    }

    /// Like [`ServerSession::send_fetch`], with one large item last (a message body, a MIME
    /// part) whose `data` is queued as it is, never copied: memory holds the body once,
    /// shared with the application's buffer, while `poll_transmit` hands it out in chunks.
    /// A `BINARY[...]` body holding NUL is sent as a `literal8` (`~{n}`, RFC 3516).
    pub fn send_fetch_body(
        &mut self,
        id: CommandId,
        uid: NonZeroU32,
        mut items: Vec<FetchItem<'_>>,
        body: BodyItem<'_>,
        data: Bytes,
    ) -> Result<(), SendError<Bytes>> {
        if let Err(kind) = self.check_answer(id) {
            return Err(SendError::new(kind, data));
        }
        let Some(seq) = self.view.as_ref().and_then(|v| v.msn(uid.get())) else {
            return Err(SendError::new(SendErrorKind::UnexpectedAnswer, data));
        };
        let uid_command = self.pending.as_ref().is_some_and(|p| p.kind.is_uid());
        if (uid_command || self.enabled.qresync)
            && !items.iter().any(|i| matches!(i, FetchItem::Uid(_)))
        {
            items.push(FetchItem::Uid(uid));
        }
        let any_items = !items.is_empty();
        let mut out = Encoder::with_policy(LiteralPolicy::Sync);
        Response::Data(Data::Fetch { seq, items }).encode(&mut out);
        let mut head = out.into_bytes();
        // `* n FETCH (items)\r\n`: reopen the list to append the body item.
        head.truncate(head.len().saturating_sub(3));
        if any_items {
            head.push(b' ');
        }
        let mut out = Encoder::with_policy(LiteralPolicy::Sync);
        let binary = match &body {
            BodyItem::Section { section, origin } => {
                out.push_bytes(b"BODY");
                section.encode(&mut out);
                if let Some(origin) = origin {
                    out.push_bytes(b"<");
                    out.push_number(u64::from(*origin));
                    out.push_bytes(b">");
                }
                false
            }
            BodyItem::Binary { section } => {
                out.push_bytes(b"BINARY[");
                crate::types::encode_part(section, &mut out);
                out.push_bytes(b"]");
                memchr::memchr(0, &data).is_some()
            }
            BodyItem::Rfc822 => {
                out.push_bytes(b"RFC822");
                false
            }
            BodyItem::Rfc822Header => {
                out.push_bytes(b"RFC822.HEADER");
                false
            }
            BodyItem::Rfc822Text => {
                out.push_bytes(b"RFC822.TEXT");
                false
            }
        };
        out.push_sp();
        if binary {
            out.push_bytes(b"~");
        }
        out.push_bytes(b"{");
        out.push_number(data.len() as u64);
        out.push_bytes(b"}");
        out.push_crlf();
        head.extend_from_slice(out.as_bytes());
        self.queue_bytes(head);
        self.queue_bytes(data);
        self.queue_bytes(Bytes::from_static(b")\r\n"));
        Ok(())
    }

    /// Reports the result of the client's own STORE on one message. The session echoes
    /// `* n FETCH (FLAGS ...)` unless `.SILENT` was given; with CONDSTORE enabled a
    /// `.SILENT` store still reports `MODSEQ` (RFC 7162 §3.1.3). Messages that failed
    /// `UNCHANGEDSINCE` go into the final `OK [MODIFIED set]` instead.
    pub fn stored(
        &mut self,
        id: CommandId,
        message: MessageInfo,
    ) -> Result<(), SendError<MessageInfo>> {
        if let Err(kind) = self.check_answer(id) {
            return Err(SendError::new(kind, message));
        }
        let (uid_command, silent) = match self.pending.as_ref().map(|p| &p.kind) {
            Some(Kind::Store { uid, silent }) => (*uid, *silent),
            _ => return Err(SendError::new(SendErrorKind::UnexpectedAnswer, message)),
        };
        let rules = self.update_rules(false);
        let Some(view) = self.view.as_mut() else {
            return Err(SendError::new(SendErrorKind::UnexpectedAnswer, message));
        };
        let uid = message.uid;
        let modseq = message.modseq;
        let Some(data) = view.stored(message, uid_command, rules) else {
            return Ok(());
        };
        if !silent {
            self.queue_response(&Response::Data(data));
        } else if self.enabled.condstore
            && let Data::Fetch { seq, .. } = data
            && let Ok(modseq) = ModSeq::new(modseq)
        {
            let mut items = Vec::with_capacity(2);
            if uid_command || self.enabled.qresync {
                items.push(FetchItem::Uid(uid));
            }
            items.push(FetchItem::ModSeq(modseq));
            self.queue_response(&Response::Data(Data::Fetch { seq, items }));
        }
        Ok(())
    }

    /// Reports the client's own EXPUNGE, UID EXPUNGE or MOVE: the messages with these UIDs
    /// are gone. The session sends `EXPUNGE` (decreasing sequence numbers) or `VANISHED`
    /// (QRESYNC) at once, together with any expunge by others still queued. For CLOSE the
    /// view is updated silently (RFC 9051 §6.4.1: CLOSE sends no EXPUNGE).
    pub fn expunged(
        &mut self,
        id: CommandId,
        uids: Vec<NonZeroU32>,
    ) -> Result<(), SendError<Vec<NonZeroU32>>> {
        if let Err(kind) = self.check_answer(id) {
            return Err(SendError::new(kind, uids));
        }
        let announce = match self.pending.as_ref().map(|p| &p.kind) {
            Some(Kind::Expunging { .. }) => true,
            Some(Kind::Deselect { close: true }) => false,
            _ => return Err(SendError::new(SendErrorKind::UnexpectedAnswer, uids)),
        };
        let Some(view) = self.view.as_mut() else {
            return Err(SendError::new(SendErrorKind::UnexpectedAnswer, uids));
        };
        view.apply(super::view::Change::Expunged(uids));
        if announce {
            let rules = self.update_rules(true);
            self.flush_updates(rules);
        }
        Ok(())
    }

    /// Completes a successful SELECT/EXAMINE with the mailbox's snapshot: the session sends
    /// `EXISTS`, `RECENT` (IMAP4rev1), `FLAGS`, `OK [PERMANENTFLAGS]`, `OK [UIDVALIDITY]`,
    /// `OK [UIDNEXT]`, `OK [UNSEEN]` (IMAP4rev1), `OK [HIGHESTMODSEQ]`/`OK [NOMODSEQ]`
    /// (CONDSTORE), the QRESYNC `VANISHED (EARLIER)` and `FETCH` answers (RFC 7162 §3.2.5),
    /// and the tagged `OK [READ-WRITE]` / `OK [READ-ONLY]`. The mailbox is selected from
    /// here on. A failed SELECT is answered with [`ServerSession::finish`] and `NO`.
    pub fn select(
        &mut self,
        id: CommandId,
        mailbox: SelectedMailbox,
    ) -> Result<(), SendError<SelectedMailbox>> {
        if let Err(kind) = self.check_answer(id) {
            return Err(SendError::new(kind, mailbox));
        }
        let Some(Pending {
            kind: Kind::Select { examine, qresync },
            ..
        }) = self.pending.as_ref()
        else {
            return Err(SendError::new(SendErrorKind::UnexpectedAnswer, mailbox));
        };
        let examine = *examine;
        let qresync = qresync.clone();
        let mut mailbox = mailbox;
        mailbox.messages.sort_by_key(|m| m.uid);
        mailbox.messages.dedup_by_key(|m| m.uid);
        if examine {
            mailbox.read_only = true;
        }
        let view = MailboxView::new(&mailbox);
        let rev1 = !self.enabled.imap4rev2;
        // The order of RFC 9051 §6.3.2's example.
        self.queue_response(&Response::Data(Data::Exists(view.exists())));
        if rev1 {
            self.queue_response(&Response::Data(Data::Recent(mailbox.recent)));
        }
        self.queue_untagged_ok(
            ResponseCode::UidValidity(mailbox.uid_validity),
            "UIDs valid",
        );
        if let Some(next) = NonZeroU32::new(view.uid_next()) {
            self.queue_untagged_ok(ResponseCode::UidNext(next), "Predicted next UID");
        }
        self.queue_response(&Response::Data(Data::Flags(mailbox.flags.clone())));
        let permanent = if mailbox.read_only {
            Vec::new()
        } else {
            mailbox.permanent_flags.clone()
        };
        self.queue_untagged_ok(ResponseCode::PermanentFlags(permanent), "Flags permitted");
        if rev1
            && let Some(first_unseen) = mailbox
                .messages
                .iter()
                .position(|m| !m.flags.contains(&Flag::Seen))
                .and_then(|i| u32::try_from(i + 1).ok())
                .and_then(NonZeroU32::new)
        {
            self.queue_untagged_ok(ResponseCode::Unseen(first_unseen), "First unseen");
        }
        if self.config.has_capability(&Capability::CondStore) {
            match ModSeq::new(view.highest_modseq()) {
                Ok(m) if mailbox.highest_modseq.is_some() => {
                    self.queue_untagged_ok(ResponseCode::HighestModSeq(m), "Highest")
                }
                _ => self.queue_untagged_ok(ResponseCode::NoModSeq, "Sorry, no modseqs"),
            }
        }
        if let Some(q) = qresync
            && q.uid_validity == mailbox.uid_validity
        {
            self.queue_qresync(&mailbox, &q);
        }
        let code = if mailbox.read_only {
            ResponseCode::ReadOnly
        } else {
            ResponseCode::ReadWrite
        };
        self.view = Some(Box::new(view));
        self.state = State::Selected;
        let Some(pending) = self.pending.take() else {
            return Ok(());
        };
        self.queue_status(StatusResponse::tagged(
            pending.tag,
            Status::Ok,
            Some(code),
            completed(pending.name),
        ));
        self.process();
        Ok(())
    }

    /// Sends the final tagged status of command `id`: `OK`, `NO` or `BAD`, with an optional
    /// response code and text (an empty text becomes `<COMMAND> completed`; CR/LF become
    /// spaces). Queued mailbox changes are announced first, as far as the command allows.
    /// CLOSE and UNSELECT completed with `OK` deselect the mailbox. LOGIN/AUTHENTICATE end
    /// with [`ServerSession::finish_authentication`], a successful SELECT with
    /// [`ServerSession::select`].
    pub fn finish(
        &mut self,
        id: CommandId,
        status: Status,
        code: Option<ResponseCode<'_>>,
        message: &str,
    ) -> Result<(), SendError<Status>> {
        if let Err(kind) = self.check_answer(id) {
            return Err(SendError::new(kind, status));
        }
        let Some(pending) = self.pending.as_ref() else {
            return Err(SendError::new(SendErrorKind::UnknownId, status));
        };
        match &pending.kind {
            Kind::Login | Kind::Authenticate | Kind::Idle => {
                return Err(SendError::new(SendErrorKind::UnexpectedAnswer, status));
            }
            Kind::Select { .. } if status == Status::Ok => {
                return Err(SendError::new(SendErrorKind::UnexpectedAnswer, status));
            }
            _ => {}
        }
        let Some(pending) = self.pending.take() else {
            return Err(SendError::new(SendErrorKind::UnknownId, status));
        };
        match pending.kind {
            Kind::Deselect { .. } if status == Status::Ok => self.deselect(),
            _ => {
                let rules = self.update_rules(pending.kind.expunge_allowed());
                self.flush_updates(rules);
            }
        }
        let message = if message.is_empty() {
            completed(pending.name)
        } else {
            text(message, "completed")
        };
        self.queue_status(StatusResponse::tagged(pending.tag, status, code, message));
        if status == Status::Bad {
            self.count_bad_command();
        }
        self.process();
        Ok(())
    }

    /// Sends a SASL challenge (`+ base64`) in the AUTHENTICATE exchange `id`; the client's
    /// answer arrives as [`Event::SaslResponse`].
    pub fn send_sasl_challenge(
        &mut self,
        id: CommandId,
        challenge: &[u8],
    ) -> Result<(), SendError<Vec<u8>>> {
        if let Err(kind) = self.check_answer(id) {
            return Err(SendError::new(kind, challenge.to_vec()));
        }
        let Some(pending) = self.pending.as_mut() else {
            return Err(SendError::new(SendErrorKind::UnknownId, challenge.to_vec()));
        };
        if pending.kind != Kind::Authenticate {
            return Err(SendError::new(
                SendErrorKind::UnexpectedAnswer,
                challenge.to_vec(),
            ));
        }
        pending.waiting = Waiting::SaslLine;
        let mut line = Vec::with_capacity(challenge.len().div_ceil(3) * 4 + 4);
        line.extend_from_slice(b"+ ");
        line.extend_from_slice(Base64Data::encode(challenge).as_bytes());
        line.extend_from_slice(b"\r\n");
        self.queue_bytes(line);
        self.apply_framing_limits(true);
        self.process();
        Ok(())
    }

    /// Ends a LOGIN or AUTHENTICATE: `Accepted` enters Authenticated state and answers
    /// `OK [CAPABILITY ...]`; `Rejected` answers `NO` and counts toward
    /// [`super::Limits::max_auth_failures`], closing the session with `BYE` past it.
    pub fn finish_authentication(
        &mut self,
        id: CommandId,
        outcome: LoginOutcome,
    ) -> Result<(), SendError<LoginOutcome>> {
        if let Err(kind) = self.check_answer_any_wait(id) {
            return Err(SendError::new(kind, outcome));
        }
        if !matches!(
            self.pending.as_ref().map(|p| &p.kind),
            Some(Kind::Login | Kind::Authenticate)
        ) {
            return Err(SendError::new(SendErrorKind::UnexpectedAnswer, outcome));
        }
        let Some(pending) = self.pending.take() else {
            return Err(SendError::new(SendErrorKind::UnknownId, outcome));
        };
        self.apply_framing_limits(false);
        match outcome {
            LoginOutcome::Accepted { user } => {
                self.user = Some(user);
                self.state = State::Authenticated;
                self.apply_framing_limits(false);
                let caps = self.capabilities();
                self.queue_status(StatusResponse::tagged(
                    pending.tag,
                    Status::Ok,
                    Some(ResponseCode::Capability(caps)),
                    completed(pending.name),
                ));
            }
            LoginOutcome::Rejected { code, text: t } => {
                let counts = !matches!(code, Some(ResponseCode::Unavailable));
                let code = code.unwrap_or(ResponseCode::AuthenticationFailed);
                self.queue_status(StatusResponse::tagged(
                    pending.tag,
                    Status::No,
                    Some(code),
                    text(&t, "Authentication failed"),
                ));
                if counts {
                    self.auth_failures = self.auth_failures.saturating_add(1);
                    if self
                        .config
                        .limits
                        .max_auth_failures
                        .is_some_and(|max| self.auth_failures >= max)
                    {
                        self.close_with(
                            CloseReason::TooManyAuthFailures,
                            None,
                            "Too many authentication failures",
                        );
                        return Ok(());
                    }
                }
            }
        }
        self.process();
        Ok(())
    }

    /// Reports a change to the selected mailbox made by someone else. It is announced at
    /// once during IDLE, otherwise at the end of the next command that may carry it (see
    /// [`super::view`]). Ignored when no mailbox is selected.
    pub fn mailbox_changed(&mut self, change: super::view::Change) {
        if self.is_closed() {
            return;
        }
        let Some(view) = self.view.as_mut() else {
            return;
        };
        view.apply(change);
        if self
            .pending
            .as_ref()
            .is_some_and(|p| p.waiting == Waiting::IdleDone)
        {
            let rules = self.update_rules(true);
            self.flush_updates(rules);
        }
    }

    /// Saves a SEARCH result for RFC 5182 `$` (SEARCHRES), as UIDs.
    pub fn save_search_result(&mut self, uids: Vec<NonZeroU32>) {
        self.saved_search = Some(uids);
    }

    /// Resolves a command's message set to UIDs, ascending without duplicates (see
    /// [`MailboxView::resolve`]); `$` is the saved SEARCH result (empty if none). Empty when
    /// no mailbox is selected or a sequence number is out of range (the session already
    /// answered `BAD` to such commands before they reached the application).
    pub fn resolve(&self, set: &SequenceSetArg, uid: bool) -> Vec<NonZeroU32> {
        let Some(view) = self.view.as_ref() else {
            return Vec::new();
        };
        match set {
            SequenceSetArg::Set(set) => view.resolve(set, uid).unwrap_or_default(),
            SequenceSetArg::SavedResult => {
                let mut uids = self.saved_search.clone().unwrap_or_default();
                uids.retain(|u| view.msn(u.get()).is_some());
                uids
            }
        }
    }

    /// Ends the session: `* BYE text`, then [`Event::Closed`] with
    /// [`CloseReason::Server`] (e.g. shutdown, account disabled).
    pub fn close(&mut self, _now: Instant, message: &str) {
        if self.is_closed() {
            return;
        }
        self.end_idle_event();
        self.close_with(CloseReason::Server(message.to_owned()), None, message);
    }

    /// Takes the bytes that followed `COMPRESS DEFLATE` (already compressed), once, after
    /// [`Event::CompressionStarted`]: inflate them and feed the result to `handle_input`.
    pub fn take_compressed_input(&mut self) -> Bytes {
        self.compressed_input.take().unwrap_or_default()
    }

    // -----------------------------------------------------------------------------------
    // Outputs
    // -----------------------------------------------------------------------------------

    /// The next event, in order.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Appends at most [`super::Limits::transmit_chunk`] bytes of output to `buf` and
    /// returns how many; 0 when nothing is queued. Once the output falls back under
    /// [`super::Limits::max_buffered_output`], input held back meanwhile is processed, which
    /// may queue events: drain `poll_event` again after transmitting.
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> usize {
        let chunk = self.config.limits.transmit_chunk.max(MIN_TRANSMIT_CHUNK);
        let mut written = 0;
        while written < chunk {
            let Some(front) = self.out.front() else { break };
            let rest = front.get(self.out_pos..).unwrap_or_default();
            let take = rest.len().min(chunk - written);
            buf.extend_from_slice(rest.get(..take).unwrap_or_default());
            written += take;
            self.out_pos += take;
            if self.out_pos >= front.len() {
                self.out.pop_front();
                self.out_pos = 0;
            }
        }
        self.queued = self.queued.saturating_sub(written);
        if written > 0
            && self.queued <= self.config.limits.max_buffered_output
            && self.fragmentizer.buffered() > 0
        {
            // Input held back while output was backed up (see `process`).
            self.process();
        }
        written
    }

    /// When [`ServerSession::handle_timeout`] should be called: the inactivity deadline of
    /// the current state. `None` when closed or while the application works on a command.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_closed() || self.tls_pending {
            return None;
        }
        let limits = &self.config.limits;
        let timeout = match self.pending.as_ref().map(|p| p.waiting) {
            Some(Waiting::Application) => return None,
            Some(Waiting::IdleDone) => limits.idle_timeout,
            _ if self.state == State::NotAuthenticated => limits.pre_auth_timeout,
            _ => limits.authenticated_timeout,
        }?;
        self.last_activity.checked_add(timeout)
    }

    // -----------------------------------------------------------------------------------
    // Getters
    // -----------------------------------------------------------------------------------

    /// The connection state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether the driver should read more input: `false` once closed, during the TLS
    /// switch, while output is backed up past [`super::Limits::max_buffered_output`], or
    /// while pipelined input past [`super::Limits::max_pipelined_input`] waits for the
    /// application.
    pub fn wants_input(&self) -> bool {
        !self.is_closed()
            && !self.tls_pending
            && self.compressed_input.is_none()
            && self.queued <= self.config.limits.max_buffered_output
            && (!self.blocked_on_application()
                || self.fragmentizer.buffered() < self.config.limits.max_pipelined_input)
    }

    /// The session has ended (drain `poll_transmit`, then close the transport).
    pub fn is_closed(&self) -> bool {
        self.state == State::Logout
    }

    /// TLS is active (implicit TLS or after STARTTLS).
    pub fn is_tls_active(&self) -> bool {
        self.tls_active
    }

    /// `COMPRESS DEFLATE` is in effect.
    pub fn is_compression_active(&self) -> bool {
        self.compression_active
    }

    /// The authenticated user.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The selected mailbox's view (MSN ↔ UID map), in Selected state.
    pub fn selected(&self) -> Option<&MailboxView> {
        self.view.as_deref()
    }

    /// CONDSTORE is enabled (ENABLE, a CONDSTORE-enabling command, or QRESYNC).
    pub fn is_condstore_enabled(&self) -> bool {
        self.enabled.condstore
    }

    /// QRESYNC is enabled.
    pub fn is_qresync_enabled(&self) -> bool {
        self.enabled.qresync
    }

    /// `UTF8=ACCEPT` is enabled: mailbox names and strings are UTF-8 (RFC 6855).
    pub fn is_utf8_enabled(&self) -> bool {
        self.enabled.utf8_accept
    }

    /// `ENABLE IMAP4rev2` was issued: IMAP4rev2 responses (no RECENT, ESEARCH answers to
    /// SEARCH, ...).
    pub fn is_imap4rev2_enabled(&self) -> bool {
        self.enabled.imap4rev2
    }

    /// Bytes of output queued and not yet handed out by `poll_transmit`.
    pub fn queued_output(&self) -> usize {
        self.queued
    }

    /// Input bytes buffered and not yet processed (a partial command, or pipelined input).
    pub fn buffered_input(&self) -> usize {
        self.fragmentizer.buffered()
    }

    /// For the fuzzing invariants: (commands read, final replies queued, a command is in
    /// progress).
    #[doc(hidden)]
    pub fn reply_accounting(&self) -> (u64, u64, bool) {
        (
            self.commands_read,
            self.final_replies,
            self.pending.is_some(),
        )
    }

    /// The capability list for the current state, as CAPABILITY would send it.
    pub fn capabilities(&self) -> Vec<Capability<'static>> {
        let config = &*self.config;
        let mut caps = vec![Capability::Imap4Rev1];
        if config.imap4rev2 {
            caps.push(Capability::Imap4Rev2);
        }
        if self.state == State::NotAuthenticated {
            let clear_ok = self.tls_active || config.allow_clear_text_without_tls;
            if config.tls_available && !self.tls_active {
                caps.push(Capability::StartTls);
            }
            if !clear_ok || !config.login_enabled {
                caps.push(Capability::LoginDisabled);
            }
            let mut any_mechanism = false;
            for mechanism in &config.sasl_mechanisms {
                if (clear_ok || !mechanism.clear_text)
                    && let Ok(atom) = crate::types::Atom::new(format!("AUTH={}", mechanism.name))
                {
                    caps.push(Capability::from_atom(atom));
                    any_mechanism = true;
                }
            }
            if any_mechanism {
                caps.push(Capability::SaslIr);
            }
        }
        caps.push(Capability::Enable);
        caps.push(Capability::Idle);
        caps.push(if config.limits.framing.max_non_sync_literal.is_none() {
            Capability::LiteralPlus
        } else {
            Capability::LiteralMinus
        });
        if let Ok(atom) = crate::types::Atom::new(format!(
            "APPENDLIMIT={}",
            config
                .limits
                .framing
                .max_append_literal
                .min(u64::from(u32::MAX))
        )) {
            caps.push(Capability::from_atom(atom));
        }
        for capability in &config.capabilities {
            if session_managed(capability) {
                continue;
            }
            if self.compression_active && *capability == Capability::CompressDeflate {
                continue;
            }
            caps.push(capability.clone());
        }
        caps
    }

    // -----------------------------------------------------------------------------------
    // Input processing
    // -----------------------------------------------------------------------------------

    fn blocked_on_application(&self) -> bool {
        self.pending
            .as_ref()
            .is_some_and(|p| p.waiting == Waiting::Application)
    }

    /// Frames and handles input until a command waits for the application or input runs out.
    fn process(&mut self) {
        // Commands the session answers itself (CAPABILITY, NOOP, errors) are not read while
        // output is backed up, so a client that pipelines them without reading cannot make
        // the server queue without bound; `poll_transmit` resumes.
        while !self.is_closed()
            && !self.tls_pending
            && self.compressed_input.is_none()
            && !self.blocked_on_application()
            && self.queued <= self.config.limits.max_buffered_output
        {
            let Some(frame) = self.fragmentizer.poll() else {
                break;
            };
            match frame {
                Frame::Message(message) => self.handle_message(message),
                Frame::LiteralAnnounced(announcement) => self.handle_literal(announcement),
                Frame::Rejected(rejection) => self.handle_rejection(rejection),
            }
        }
    }

    fn handle_literal(&mut self, _announcement: LiteralAnnouncement) {
        match self.pending.as_ref().map(|p| p.waiting) {
            None => {
                // Within the size limits (the fragmentizer checked them): ask for it.
                if self.fragmentizer.accept_literal().is_ok() {
                    self.queue_response(&Response::Continue(ContinueRequest::Basic(
                        ResponseText::new(Text::new_unchecked(&b"Ready for literal data"[..])),
                    )));
                }
            }
            Some(_) => {
                // A SASL line or `DONE` never ends in a literal: refuse it, and treat the
                // line as malformed.
                let _ = self.fragmentizer.reject_literal();
                self.malformed_continuation();
            }
        }
    }

    fn handle_rejection(&mut self, rejection: Rejection) {
        if self.pending.is_some() {
            // An overlong SASL line or `DONE` line.
            self.malformed_continuation();
            return;
        }
        self.commands_read += 1;
        let tag = tag_of(&rejection.head);
        let (status, code, message) = match rejection.limit {
            LimitExceeded::LiteralTooLarge { .. } => {
                (Status::No, Some(ResponseCode::TooBig), "Literal too large")
            }
            LimitExceeded::NonSyncLiteralTooLarge { .. } => (
                Status::Bad,
                Some(ResponseCode::TooBig),
                "Non-synchronizing literal too large (LITERAL-)",
            ),
            LimitExceeded::MessageTooLarge { .. } => {
                (Status::No, Some(ResponseCode::TooBig), "Command too large")
            }
            LimitExceeded::TooManyLiterals { .. } => {
                (Status::Bad, Some(ResponseCode::Limit), "Too many literals")
            }
            LimitExceeded::LineTooLong { .. } => (Status::Bad, None, "Command line too long"),
        };
        self.trace_command(|| "(command over a limit, dropped)".to_owned());
        if tag.is_none() {
            self.final_replies += 1;
        }
        self.queue_status(match tag {
            Some(tag) => StatusResponse::tagged(tag, status, code, text(message, "")),
            None => StatusResponse::untagged(status, code, text(message, "")),
        });
        if status == Status::Bad {
            self.count_bad_command();
        }
    }

    /// A SASL exchange or IDLE got a line it cannot use: end it with `BAD`.
    fn malformed_continuation(&mut self) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        self.apply_framing_limits(false);
        match pending.waiting {
            Waiting::SaslLine => {
                self.events
                    .push_back(Event::SaslCancelled { id: pending.id });
                self.queue_status(StatusResponse::tagged(
                    pending.tag,
                    Status::Bad,
                    None,
                    text("Invalid SASL response", ""),
                ));
            }
            Waiting::IdleDone => {
                self.events.push_back(Event::IdleDone { id: pending.id });
                self.queue_status(StatusResponse::tagged(
                    pending.tag,
                    Status::Bad,
                    None,
                    text("Expected DONE", ""),
                ));
            }
            Waiting::Application => {
                self.pending = Some(pending);
                return;
            }
        }
        self.count_bad_command();
    }

    fn handle_message(&mut self, message: Bytes) {
        match self.pending.as_ref().map(|p| p.waiting) {
            Some(Waiting::SaslLine) => self.handle_sasl_line(&message),
            Some(Waiting::IdleDone) => self.handle_idle_line(&message),
            Some(Waiting::Application) => {}
            None => self.handle_command(message),
        }
    }

    fn handle_sasl_line(&mut self, line: &[u8]) {
        self.trace_command(|| "****".to_owned());
        let Some(id) = self.pending.as_ref().map(|p| p.id) else {
            return;
        };
        match parse_authenticate_data(line) {
            Ok(AuthenticateData::Response(data)) => match data.decode() {
                Ok(decoded) => {
                    if let Some(p) = self.pending.as_mut() {
                        p.waiting = Waiting::Application;
                    }
                    self.events.push_back(Event::SaslResponse {
                        id,
                        data: decoded.into(),
                    });
                }
                Err(_) => self.malformed_continuation(),
            },
            Ok(AuthenticateData::Cancel) => {
                let Some(pending) = self.pending.take() else {
                    return;
                };
                self.apply_framing_limits(false);
                self.events.push_back(Event::SaslCancelled { id });
                self.queue_status(StatusResponse::tagged(
                    pending.tag,
                    Status::Bad,
                    None,
                    text("Authentication cancelled", ""),
                ));
                // RFC 4959 / RFC 9051 §6.2.2: a cancelled exchange counts as a failed one.
                self.count_auth_failure();
            }
            Err(_) => self.malformed_continuation(),
        }
    }

    fn handle_idle_line(&mut self, line: &[u8]) {
        self.trace_command(|| trace_text(line.strip_suffix(b"\r\n").unwrap_or(line)));
        if parse_idle_done(line).is_err() {
            self.malformed_continuation();
            return;
        }
        let Some(pending) = self.pending.take() else {
            return;
        };
        self.events.push_back(Event::IdleDone { id: pending.id });
        let rules = self.update_rules(true);
        self.flush_updates(rules);
        self.queue_status(StatusResponse::tagged(
            pending.tag,
            Status::Ok,
            None,
            text("IDLE terminated", ""),
        ));
    }

    fn handle_command(&mut self, message: Bytes) {
        self.commands_read += 1;
        let options = ParseOptions::default().with_utf8_accept(self.enabled.utf8_accept);
        let command = match parse_command_with(&message, &options) {
            Ok(command) => command,
            Err(error) => {
                self.trace_command(|| format!("(unparsable command, {} octets)", message.len()));
                let reason = match error.kind {
                    ParseErrorKind::UnknownCommand => "Unknown command",
                    ParseErrorKind::TooDeep => "Command nested too deeply",
                    _ => "Error in IMAP command: syntax error",
                };
                self.bad(error.tag, reason);
                return;
            }
        };
        self.trace_command(|| traced_command(&command, &message));
        self.dispatch(command, &message);
    }

    fn new_id(&mut self) -> CommandId {
        let id = CommandId(self.next_id);
        self.next_id += 1;
        id
    }

    /// Hands `kind` of command to the application.
    fn forward(&mut self, command: Command<'_>, kind: Kind) {
        let id = self.new_id();
        let tag = command.tag.clone().into_owned();
        let name = command.body.name();
        self.pending = Some(Pending {
            id,
            tag,
            name,
            kind,
            waiting: Waiting::Application,
        });
        self.events.push_back(Event::CommandReceived {
            id,
            command: command.into_owned(),
        });
    }

    fn dispatch(&mut self, command: Command<'_>, message: &Bytes) {
        use CommandBody as C;
        let authenticated = matches!(self.state, State::Authenticated | State::Selected);
        let selected = self.state == State::Selected;
        let tag = command.tag.clone().into_owned();
        match &command.body {
            C::Capability => {
                let caps = self.capabilities();
                self.queue_response(&Response::Data(Data::Capability(caps)));
                self.ok(tag, "CAPABILITY completed");
            }
            C::Noop | C::Check => {
                if matches!(command.body, C::Check) && !selected {
                    self.bad(Some(tag), "No mailbox selected");
                    return;
                }
                let rules = self.update_rules(true);
                self.flush_updates(rules);
                self.ok(tag, completed_str(command.body.name()));
            }
            C::Logout => {
                self.queue_status(StatusResponse::bye(None, text("Logging out", "")));
                self.ok(tag, "LOGOUT completed");
                self.finish_close(CloseReason::Logout);
            }
            C::StartTls => {
                if authenticated {
                    self.bad(Some(tag), "Already authenticated");
                } else if self.tls_active {
                    self.bad(Some(tag), "TLS is already active");
                } else if !self.config.tls_available {
                    self.bad(Some(tag), "STARTTLS is not available");
                } else {
                    self.ok(tag, "Begin TLS negotiation now");
                    // RFC 9051 §6.2.1: input pipelined after STARTTLS must not be executed
                    // (CVE-2011-0411 class injection).
                    self.fragmentizer.clear();
                    self.tls_pending = true;
                    self.events.push_back(Event::TlsRequested);
                }
            }
            C::Login { username, password } => {
                if authenticated {
                    self.bad(Some(tag), "Already authenticated");
                } else if !self.config.login_enabled {
                    self.no(
                        tag,
                        Some(ResponseCode::Cannot),
                        "LOGIN is disabled; use AUTHENTICATE",
                    );
                } else if !self.clear_text_allowed() {
                    self.no(
                        tag,
                        Some(ResponseCode::PrivacyRequired),
                        "Clear-text login is not allowed before STARTTLS",
                    );
                    self.count_bad_command();
                } else {
                    match std::str::from_utf8(username.as_bytes()) {
                        Ok(user) => {
                            let id = self.new_id();
                            self.pending = Some(Pending {
                                id,
                                tag,
                                name: "LOGIN",
                                kind: Kind::Login,
                                waiting: Waiting::Application,
                            });
                            self.events.push_back(Event::LoginRequested {
                                id,
                                username: user.to_owned(),
                                password: password.expose().as_bytes().to_vec().into(),
                            });
                        }
                        Err(_) => {
                            self.no(
                                tag,
                                Some(ResponseCode::AuthenticationFailed),
                                "Invalid user name",
                            );
                            self.count_auth_failure();
                        }
                    }
                }
            }
            C::Authenticate {
                mechanism,
                initial_response,
            } => {
                let name = mechanism.as_str().to_ascii_uppercase();
                let configured = self
                    .config
                    .sasl_mechanisms
                    .iter()
                    .find(|m| m.name == name)
                    .cloned();
                if authenticated {
                    self.bad(Some(tag), "Already authenticated");
                } else if let Some(mechanism) = configured {
                    if mechanism.clear_text && !self.clear_text_allowed() {
                        self.no(
                            tag,
                            Some(ResponseCode::PrivacyRequired),
                            "Clear-text mechanism not allowed before STARTTLS",
                        );
                        return;
                    }
                    let initial = match initial_response.as_ref().map(Base64Data::decode) {
                        None => None,
                        Some(Ok(data)) => Some(data.into()),
                        Some(Err(_)) => {
                            self.bad(Some(tag), "Invalid base64 in initial response");
                            return;
                        }
                    };
                    let id = self.new_id();
                    self.pending = Some(Pending {
                        id,
                        tag,
                        name: "AUTHENTICATE",
                        kind: Kind::Authenticate,
                        waiting: Waiting::Application,
                    });
                    self.events.push_back(Event::AuthenticateStarted {
                        id,
                        mechanism: mechanism.name,
                        initial_response: initial,
                    });
                } else {
                    self.no(
                        tag,
                        Some(ResponseCode::Cannot),
                        "Unsupported authentication mechanism",
                    );
                }
            }
            C::Enable { capabilities } => {
                if !authenticated {
                    self.bad(Some(tag), "Not authenticated");
                    return;
                }
                let mut newly = Vec::new();
                for capability in capabilities {
                    if let Some(c) = self.enable(capability) {
                        newly.push(c);
                    }
                }
                self.queue_response(&Response::Data(Data::Enabled(newly)));
                self.ok(tag, "ENABLE completed");
            }
            C::Select { parameters, .. } | C::Examine { parameters, .. } => {
                if !authenticated {
                    self.bad(Some(tag), "Not authenticated");
                    return;
                }
                let examine = matches!(command.body, C::Examine { .. });
                let mut qresync = None;
                for parameter in parameters {
                    match parameter {
                        SelectParameter::CondStore => {
                            if !self.config.has_capability(&Capability::CondStore) {
                                self.bad(Some(tag), "CONDSTORE is not supported");
                                return;
                            }
                            self.enabled.condstore = true;
                        }
                        SelectParameter::QResync(q) => {
                            if !self.enabled.qresync {
                                self.bad(Some(tag), "QRESYNC is not enabled");
                                return;
                            }
                            qresync = Some(Box::new(q.clone()));
                        }
                    }
                }
                if selected {
                    // RFC 9051 §6.3.2, RFC 7162 §3.2.11: the old mailbox is closed (without
                    // expunging) before the new one is opened.
                    self.deselect();
                    self.queue_untagged_ok(ResponseCode::Closed, "Previous mailbox closed");
                }
                self.forward(command, Kind::Select { examine, qresync });
            }
            C::Append { mailbox, messages } => {
                if !authenticated {
                    self.bad(Some(tag), "Not authenticated");
                    return;
                }
                let payloads = messages
                    .iter()
                    .map(|m| AppendPayload {
                        flags: m.flags.iter().cloned().map(Flag::into_owned).collect(),
                        date_time: m.date_time,
                        data: match m.data.data_cow() {
                            std::borrow::Cow::Borrowed(slice) => message.slice_ref(slice),
                            std::borrow::Cow::Owned(vec) => Bytes::from(vec.clone()),
                        },
                        binary: m.data.is_binary(),
                    })
                    .collect();
                let id = self.new_id();
                self.pending = Some(Pending {
                    id,
                    tag,
                    name: "APPEND",
                    kind: Kind::Other { uid: false },
                    waiting: Waiting::Application,
                });
                self.events.push_back(Event::AppendReceived {
                    id,
                    mailbox: mailbox.clone().into_owned(),
                    messages: payloads,
                });
            }
            C::Idle => {
                if !authenticated {
                    self.bad(Some(tag), "Not authenticated");
                    return;
                }
                let id = self.new_id();
                self.pending = Some(Pending {
                    id,
                    tag,
                    name: "IDLE",
                    kind: Kind::Idle,
                    waiting: Waiting::IdleDone,
                });
                self.queue_response(&Response::Continue(ContinueRequest::Basic(
                    ResponseText::new(Text::new_unchecked(&b"idling"[..])),
                )));
                self.events.push_back(Event::IdleStarted { id });
                let rules = self.update_rules(true);
                self.flush_updates(rules);
            }
            C::Compress { algorithm } => {
                if !self.config.has_capability(&Capability::CompressDeflate) {
                    self.bad(Some(tag), "Unknown command");
                } else if !authenticated {
                    self.bad(Some(tag), "Not authenticated");
                } else if self.compression_active {
                    self.no(
                        tag,
                        Some(ResponseCode::CompressionActive),
                        "Already compressing",
                    );
                } else if !algorithm.as_str().eq_ignore_ascii_case("DEFLATE") {
                    self.bad(Some(tag), "Unknown compression algorithm");
                } else {
                    self.ok(tag, "DEFLATE active");
                    self.compression_active = true;
                    self.compressed_input = Some(self.fragmentizer.take_buffered());
                    self.events.push_back(Event::CompressionStarted);
                }
            }
            C::Close | C::Unselect | C::Expunge | C::UidExpunge { .. } => {
                if !selected {
                    self.bad(Some(tag), "No mailbox selected");
                    return;
                }
                let kind = match command.body {
                    C::Close => Kind::Deselect { close: true },
                    C::Unselect => Kind::Deselect { close: false },
                    C::UidExpunge { .. } => Kind::Expunging { uid: true },
                    _ => Kind::Expunging { uid: false },
                };
                self.forward(command, kind);
            }
            C::Fetch {
                uid, sequence_set, ..
            }
            | C::Store {
                uid, sequence_set, ..
            }
            | C::Copy {
                uid, sequence_set, ..
            }
            | C::Move {
                uid, sequence_set, ..
            } => {
                if !selected {
                    self.bad(Some(tag), "No mailbox selected");
                    return;
                }
                let uid = *uid;
                if !uid
                    && let SequenceSetArg::Set(set) = sequence_set
                    && let Some(view) = self.view.as_ref()
                    && view.check_sequence_set(set).is_err()
                {
                    self.bad(Some(tag), "Invalid message sequence number");
                    return;
                }
                let kind = match &command.body {
                    C::Fetch { .. } => Kind::NoExpunge { uid },
                    C::Store { silent, .. } => Kind::Store {
                        uid,
                        silent: *silent,
                    },
                    C::Move { .. } => Kind::Expunging { uid },
                    _ => Kind::Other { uid },
                };
                if let C::Store {
                    unchanged_since: Some(_),
                    ..
                } = command.body
                {
                    self.enable_condstore_implicitly();
                }
                if let C::Fetch { modifiers, .. } = &command.body
                    && !modifiers.is_empty()
                {
                    self.enable_condstore_implicitly();
                }
                self.forward(command, kind);
            }
            C::Search { uid, .. } | C::Sort { uid, .. } | C::Thread { uid, .. } => {
                if !selected {
                    self.bad(Some(tag), "No mailbox selected");
                    return;
                }
                let kind = Kind::NoExpunge { uid: *uid };
                self.forward(command, kind);
            }
            C::Id { .. } => self.forward(command, Kind::Other { uid: false }),
            C::Unauthenticate => self.bad(Some(tag), "Unknown command"),
            _ => {
                if !authenticated {
                    self.bad(Some(tag), "Not authenticated");
                    return;
                }
                self.forward(command, Kind::Other { uid: false });
            }
        }
    }

    /// Turns on one capability named in ENABLE; returns it when newly enabled.
    fn enable(&mut self, capability: &Capability<'_>) -> Option<Capability<'static>> {
        let offered = |c: &Capability<'_>| self.config.has_capability(c);
        match capability {
            Capability::CondStore if offered(&Capability::CondStore) => {
                if self.enabled.condstore {
                    return None;
                }
                self.enabled.condstore = true;
                Some(Capability::CondStore)
            }
            Capability::QResync if offered(&Capability::QResync) => {
                if self.enabled.qresync {
                    return None;
                }
                // RFC 7162 §3.2.3: QRESYNC implies CONDSTORE.
                self.enabled.qresync = true;
                self.enabled.condstore = true;
                Some(Capability::QResync)
            }
            Capability::Utf8Accept if offered(&Capability::Utf8Accept) => {
                if self.enabled.utf8_accept {
                    return None;
                }
                self.enabled.utf8_accept = true;
                Some(Capability::Utf8Accept)
            }
            Capability::Imap4Rev2 if self.config.imap4rev2 => {
                if self.enabled.imap4rev2 {
                    return None;
                }
                self.enabled.imap4rev2 = true;
                Some(Capability::Imap4Rev2)
            }
            _ => None,
        }
    }

    /// RFC 7162 §3.1: a CONDSTORE-enabling command (FETCH MODSEQ / CHANGEDSINCE, STORE
    /// UNCHANGEDSINCE, SEARCH MODSEQ, SELECT (CONDSTORE)) turns CONDSTORE on.
    fn enable_condstore_implicitly(&mut self) {
        if self.config.has_capability(&Capability::CondStore) {
            self.enabled.condstore = true;
        }
    }

    /// The framing limits for the current state: before authentication literals are held
    /// to [`super::Limits::pre_auth_max_literal`] (an unauthenticated client cannot make the
    /// server buffer an APPEND), and while a SASL response is awaited lines may be
    /// [`super::Limits::max_sasl_line`] long.
    fn apply_framing_limits(&mut self, sasl_line: bool) {
        let limits = &self.config.limits;
        let mut framing = limits.framing.clone();
        if self.state == State::NotAuthenticated {
            framing.max_literal = framing.max_literal.min(limits.pre_auth_max_literal);
            framing.max_append_literal =
                framing.max_append_literal.min(limits.pre_auth_max_literal);
            // A LOGIN line with two literals, with room to spare.
            let bound = (framing.max_line as u64)
                .saturating_add(limits.pre_auth_max_literal.saturating_mul(4));
            framing.max_message = framing.max_message.min(bound);
        }
        if sasl_line {
            framing.max_line = limits.max_sasl_line;
        }
        *self.fragmentizer.limits_mut() = framing;
    }

    fn clear_text_allowed(&self) -> bool {
        self.tls_active || self.config.allow_clear_text_without_tls
    }

    fn deselect(&mut self) {
        if self.view.take().is_some() {
            self.events.push_back(Event::MailboxClosed);
        }
        self.saved_search = None;
        if self.state == State::Selected {
            self.state = State::Authenticated;
        }
    }

    fn update_rules(&self, expunge_allowed: bool) -> UpdateRules {
        UpdateRules {
            expunge_allowed,
            qresync: self.enabled.qresync,
            condstore: self.enabled.condstore,
        }
    }

    fn flush_updates(&mut self, rules: UpdateRules) {
        let Some(view) = self.view.as_mut() else {
            return;
        };
        if !view.has_updates() {
            return;
        }
        for data in view.take_updates(rules) {
            self.queue_response(&Response::Data(data));
        }
    }

    /// RFC 7162 §3.2.5.1: after a QRESYNC SELECT, the expunged UIDs the client knows of
    /// (`VANISHED (EARLIER)`) and the messages changed since its mod-sequence (`FETCH`).
    fn queue_qresync(&mut self, mailbox: &SelectedMailbox, q: &QResyncParameter) {
        let largest_known = mailbox.uid_next.get().saturating_sub(1);
        let present: Vec<u32> = mailbox.messages.iter().map(|m| m.uid.get()).collect();
        // Which of the UIDs the client may know are gone: its known-uids (or every UID
        // below UIDNEXT) minus the present ones, as ranges, never enumerated one by one.
        let mut vanished: Vec<(u32, u32)> = Vec::new();
        let known: Vec<(u32, u32)> = match &q.known_uids {
            Some(set) => {
                let mut ranges: Vec<(u32, u32)> = set
                    .ranges()
                    .iter()
                    .map(|r| r.bounds(largest_known.max(1)))
                    .collect();
                ranges.sort_unstable();
                ranges
            }
            None if largest_known > 0 => vec![(1, largest_known)],
            None => Vec::new(),
        };
        let mut covered_to = 0u32;
        for (lo, hi) in known {
            let lo = lo.max(covered_to.saturating_add(1));
            let hi = hi.min(largest_known);
            if lo > hi {
                continue;
            }
            covered_to = hi;
            let start = present.partition_point(|&u| u < lo);
            let mut next = lo;
            for &uid in present.get(start..).unwrap_or_default() {
                if uid > hi {
                    break;
                }
                if uid > next {
                    vanished.push((next, uid - 1));
                }
                next = uid.saturating_add(1);
            }
            if next <= hi {
                vanished.push((next, hi));
            }
        }
        if let Some(expunged) = &mailbox.expunged_since_qresync {
            vanished = intersect_ranges(&vanished, expunged);
        }
        let ranges: Vec<crate::types::SeqRange> = vanished
            .into_iter()
            .filter_map(|(a, b)| {
                let a = NonZeroU32::new(a)?;
                let b = NonZeroU32::new(b)?;
                Some(if a == b {
                    crate::types::SeqRange::Single(crate::types::SeqOrUid::Value(a))
                } else {
                    crate::types::SeqRange::Range(
                        crate::types::SeqOrUid::Value(a),
                        crate::types::SeqOrUid::Value(b),
                    )
                })
            })
            .collect();
        if let Ok(uids) = crate::types::SequenceSet::new(ranges) {
            self.queue_response(&Response::Data(Data::Vanished {
                earlier: true,
                uids,
            }));
        }
        let since = q.mod_seq.get();
        for (i, m) in mailbox.messages.iter().enumerate() {
            if m.modseq <= since {
                continue;
            }
            let Some(seq) = u32::try_from(i + 1).ok().and_then(NonZeroU32::new) else {
                continue;
            };
            let mut items = vec![
                FetchItem::Uid(m.uid),
                FetchItem::Flags(m.flags.iter().cloned().map(FlagFetch::Flag).collect()),
            ];
            if let Ok(modseq) = ModSeq::new(m.modseq) {
                items.push(FetchItem::ModSeq(modseq));
            }
            self.queue_response(&Response::Data(Data::Fetch { seq, items }));
        }
    }

    // -----------------------------------------------------------------------------------
    // Answers and output
    // -----------------------------------------------------------------------------------

    fn check_answer(&self, id: CommandId) -> Result<(), SendErrorKind> {
        if self.is_closed() {
            return Err(SendErrorKind::Closed);
        }
        match self.pending.as_ref() {
            Some(p) if p.id == id && p.waiting == Waiting::Application => Ok(()),
            Some(p) if p.id == id => Err(SendErrorKind::UnexpectedAnswer),
            _ => Err(SendErrorKind::UnknownId),
        }
    }

    /// Like `check_answer`, but the application may end a SASL exchange while the client
    /// is still to answer a challenge.
    fn check_answer_any_wait(&self, id: CommandId) -> Result<(), SendErrorKind> {
        if self.is_closed() {
            return Err(SendErrorKind::Closed);
        }
        match self.pending.as_ref() {
            Some(p) if p.id == id => Ok(()),
            _ => Err(SendErrorKind::UnknownId),
        }
    }

    fn ok(&mut self, tag: Tag<'static>, message: &str) {
        self.queue_status(StatusResponse::tagged(
            tag,
            Status::Ok,
            None,
            text(message, "completed"),
        ));
    }

    fn no(&mut self, tag: Tag<'static>, code: Option<ResponseCode<'static>>, message: &str) {
        self.queue_status(StatusResponse::tagged(
            tag,
            Status::No,
            code,
            text(message, "failed"),
        ));
    }

    /// `tag BAD` (or `* BAD` without a tag), counted toward the bad-command limit.
    fn bad(&mut self, tag: Option<Tag<'static>>, message: &str) {
        let message = text(message, "error");
        if tag.is_none() {
            self.final_replies += 1;
        }
        self.queue_status(match tag {
            Some(tag) => StatusResponse::tagged(tag, Status::Bad, None, message),
            None => StatusResponse::untagged(Status::Bad, None, message),
        });
        self.count_bad_command();
    }

    fn count_bad_command(&mut self) {
        self.bad_commands = self.bad_commands.saturating_add(1);
        if self
            .config
            .limits
            .max_bad_commands
            .is_some_and(|max| self.bad_commands >= max)
        {
            self.close_with(
                CloseReason::TooManyBadCommands,
                None,
                "Too many invalid commands",
            );
        }
    }

    fn count_auth_failure(&mut self) {
        self.auth_failures = self.auth_failures.saturating_add(1);
        if self
            .config
            .limits
            .max_auth_failures
            .is_some_and(|max| self.auth_failures >= max)
        {
            self.close_with(
                CloseReason::TooManyAuthFailures,
                None,
                "Too many authentication failures",
            );
        }
    }

    fn queue_untagged_ok(&mut self, code: ResponseCode<'_>, message: &str) {
        self.queue_status(StatusResponse::untagged(
            Status::Ok,
            Some(code),
            text(message, "ok"),
        ));
    }

    fn queue_status(&mut self, status: StatusResponse<'_>) {
        if matches!(status, StatusResponse::Tagged { .. }) {
            self.final_replies += 1;
        }
        if self.config.trace {
            let mut out = Encoder::with_policy(LiteralPolicy::Sync);
            status.encode(&mut out);
            let bytes = out.as_bytes();
            let line = bytes.strip_suffix(b"\r\n").unwrap_or(bytes);
            self.events.push_back(Event::ReplyTraced {
                line: trace_text(line),
            });
        }
        self.queue_response(&Response::Status(status));
    }

    fn queue_response(&mut self, response: &Response<'_>) {
        let mut out = Encoder::with_policy(LiteralPolicy::Sync);
        response.encode(&mut out);
        self.queue_bytes(out.into_bytes());
    }

    fn queue_bytes(&mut self, bytes: impl Into<Bytes>) {
        let bytes = bytes.into();
        if bytes.is_empty() || self.is_closed() {
            return;
        }
        self.queued = self.queued.saturating_add(bytes.len());
        self.out.push_back(bytes);
    }

    fn trace_command(&mut self, line: impl FnOnce() -> String) {
        if self.config.trace {
            self.events.push_back(Event::CommandTraced { line: line() });
        }
    }

    fn end_idle_event(&mut self) {
        if let Some(p) = self.pending.as_ref()
            && p.waiting == Waiting::IdleDone
        {
            self.events.push_back(Event::IdleDone { id: p.id });
        }
    }

    /// `* BYE text` and close.
    fn close_with(&mut self, reason: CloseReason, code: Option<ResponseCode<'_>>, message: &str) {
        if self.is_closed() {
            return;
        }
        self.queue_status(StatusResponse::bye(code, text(message, "closing")));
        self.finish_close(reason);
    }

    fn finish_close(&mut self, reason: CloseReason) {
        if self.is_closed() {
            return;
        }
        if self.view.take().is_some() {
            self.events.push_back(Event::MailboxClosed);
        }
        self.pending = None;
        self.fragmentizer.clear();
        self.compressed_input = None;
        self.state = State::Logout;
        self.events.push_back(Event::Closed { reason });
    }
}

/// `text` as response text: CR, LF and NUL become spaces, a leading `[` is escaped by a
/// space, and an empty text becomes `fallback`.
fn text(message: &str, fallback: &str) -> Text<'static> {
    let source = if message.is_empty() {
        fallback
    } else {
        message
    };
    let mut bytes: Vec<u8> = source
        .bytes()
        .map(|b| {
            if matches!(b, b'\r' | b'\n' | 0) {
                b' '
            } else {
                b
            }
        })
        .collect();
    if bytes.first() == Some(&b'[') {
        bytes.insert(0, b' ');
    }
    if bytes.is_empty() {
        bytes.extend_from_slice(b"ok");
    }
    Text::new_unchecked(bytes)
}

fn completed(name: &str) -> Text<'static> {
    text(completed_str(name), "completed")
}

fn completed_str(name: &str) -> &'static str {
    // The common names, without allocating; others get a generic text.
    match name {
        "NOOP" => "NOOP completed",
        "CHECK" => "CHECK completed",
        "LOGIN" => "LOGIN completed",
        "AUTHENTICATE" => "AUTHENTICATE completed",
        "SELECT" => "SELECT completed",
        "EXAMINE" => "EXAMINE completed",
        "FETCH" | "UID FETCH" => "FETCH completed",
        "STORE" | "UID STORE" => "STORE completed",
        "SEARCH" | "UID SEARCH" => "SEARCH completed",
        "APPEND" => "APPEND completed",
        _ => "Completed",
    }
}

/// The tag at the start of a rejected message's head, if it has one followed by a space.
fn tag_of(head: &[u8]) -> Option<Tag<'static>> {
    let (rest, tag) = crate::parse::tag(head).ok()?;
    (rest.first() == Some(&b' ')).then(|| tag.into_owned())
}

/// Lossy UTF-8, control characters as `?`, at most [`MAX_TRACE_LINE`] characters.
fn trace_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len().min(MAX_TRACE_LINE + 3));
    for (n, c) in text.chars().enumerate() {
        if n >= MAX_TRACE_LINE {
            out.push_str("...");
            break;
        }
        out.push(if c.is_control() { '?' } else { c });
    }
    out
}

/// The trace line of a parsed command: its first line with literals shown as `{n}`, and
/// LOGIN's password and AUTHENTICATE's initial response as `****`.
fn traced_command(command: &Command<'_>, message: &[u8]) -> String {
    match &command.body {
        CommandBody::Login { username, .. } => format!(
            "{} LOGIN {} ****",
            command.tag.as_str(),
            trace_text(username.as_bytes())
        ),
        CommandBody::Authenticate {
            mechanism,
            initial_response,
        } => format!(
            "{} AUTHENTICATE {}{}",
            command.tag.as_str(),
            mechanism.as_str(),
            if initial_response.is_some() {
                " ****"
            } else {
                ""
            }
        ),
        _ => {
            let first = memchr::memchr(b'\n', message)
                .map_or(message, |i| message.get(..i).unwrap_or(message));
            let first = first.strip_suffix(b"\r").unwrap_or(first);
            trace_text(first)
        }
    }
}

/// The UIDs in both lists of inclusive ranges (each ascending and non-overlapping, as the
/// result is).
fn intersect_ranges(a: &[(u32, u32)], b: &[(u32, u32)]) -> Vec<(u32, u32)> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while let (Some(&(a_lo, a_hi)), Some(&(b_lo, b_hi))) = (a.get(i), b.get(j)) {
        let (lo, hi) = (a_lo.max(b_lo), a_hi.min(b_hi));
        if lo <= hi {
            out.push((lo, hi));
        }
        if a_hi < b_hi {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}
