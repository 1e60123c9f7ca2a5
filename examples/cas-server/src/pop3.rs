//! POP3: `pop3_proto::ServerSession` plugged into the [driver](crate::driver), and the
//! application that answers its requests from a [`CredentialStore`] and a [`MailStore`],
//! under the client access policy ([`crate::access`]).
//!
//! The session does all of the protocol (greeting, parsing, CAPA, STAT/LIST/UIDL/DELE/RSET,
//! STLS, the SASL exchange framing, refusing clear-text logins before TLS, timers, limits,
//! dot-stuffing). This module only decides:
//!
//! - the session configuration from the policy in force when the connection starts
//!   ([`session_config`]): Banner, MaxCommandSize (the command-line limit),
//!   Pre/AuthenticatedConnectionTimeout (the timers), LoginType (whether clear-text logins
//!   are offered before TLS), EnableGSSAPIAndNTLMAuth (whether `AUTH NTLM` is offered);
//! - whether a login may proceed: the login throttle before the credentials are checked
//!   (`-ERR [LOGIN-DELAY]`), then argon2 verification on the blocking pool, then
//!   `authorize_login` (PopEnabled, client access rules, LoginType for the mechanism and TLS
//!   state) and MaxConnectionsPerUser, answering `-ERR [AUTH]`/`[IN-USE]` with the library's
//!   client-safe text;
//! - SASL PLAIN, LOGIN and NTLM through cas-auth's step machines (NTLM gets a fresh server
//!   challenge from the OS generator, the clock as FILETIME, and on TLS connections the
//!   certificate's `tls-server-end-point` channel bindings);
//! - the maildrop view: MessageRetrievalSortOrder (Descending numbers the newest message 1)
//!   and the sizes LIST/STAT report (see below);
//! - message bytes for RETR/TOP, read in 64 KiB chunks only while the session wants more, or
//!   re-rendered in MessageRetrievalMimeFormat ([`crate::mime`]);
//! - the deletions on QUIT, committed atomically by the store;
//! - before each command of a logged-in session (when client bytes arrive), whether a policy
//!   reload took the user's access away: then the session is closed with
//!   `-ERR [SYS/TEMP] <reason>` (pop3-proto's application-side close; it has no way to end a
//!   session with `[AUTH]`) and nothing is committed.
//!
//! **Sizes and conversion.** With `MessageRetrievalMimeFormat = BestBodyFormat` messages are
//! sent as stored and every size is exact. With another format, `EnableExactRFC822Size`
//! decides, as in Exchange: `false` (the default) reports the stored size in STAT/LIST and
//! RETR's `+OK` line (an estimate: the converted message may be larger or smaller; clients
//! use it only for progress), `true` converts every message at login to report the exact
//! size of what RETR will send (conversion is deterministic), at the cost of reading the
//! whole maildrop at login.
//!
//! Anything else (EOF, timeout, shutdown) just drops the maildrop: its lock is released and
//! nothing changes. Passwords and SASL payloads are never logged, in the server log or the
//! protocol log.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use cas_auth::CredentialStore;
use cas_auth::channel_binding::ChannelBindings;
use cas_auth::ntlm::NtlmConfig;
use cas_auth::sasl::Mechanism;
use cas_policy::{Denial, LoginType, Policy, Protocol, SortOrder};
use pop3_proto::{
    CommandId, Event, Expire, MaildropEntry, Reply, Request, ResponseCode, SaslMechanism,
    ServerConfig, ServerSession, State, Uid,
};
use tokio::task::JoinHandle;

use crate::access::{AccessControl, PerGeneration, Reauthorization, Slot};
use crate::auth::{
    self, Authorized, LoginRefusal, LoginServices, OpenFailure, SaslExchange, SaslProgress,
    SaslRefusal, StartFailure,
};
use crate::config::{Pop3Settings, apply_limit};
use crate::driver::{Application, Directive};
use crate::mime::{self, BodyFormat};
use crate::protolog::{LogEvent, REDACTED, SessionLog};
use crate::store::{MailStore, Maildrop, MessageReader, StoreError};

/// Bytes read from a message file per step.
pub const MESSAGE_CHUNK: usize = 64 * 1024;

crate::driver::sans_io_session!(ServerSession, Event, shutdown(session, now) => {
    session.close(now, "server shutting down")
});

/// Builds the session configuration from the `[pop3]` settings alone (Exchange's default
/// policy). See [`session_config`].
pub fn server_config(
    settings: &Pop3Settings,
    stls_available: bool,
    ntlm: bool,
) -> Result<ServerConfig, pop3_proto::ConfigError> {
    let policy =
        Policy::new(cas_policy::PolicyConfig::default()).expect("the default policy is valid");
    session_config(settings, stls_available, ntlm, &policy)
}

/// Builds the session configuration from the policy's PopSettings, with explicit `[pop3]`
/// values of `cas-server.toml` (and `--allow-plaintext-auth`) taking precedence, so data
/// directories made before policies existed behave as before.
///
/// - Banner → greeting (a banner pop3-proto cannot send, longer than 200 characters, falls
///   back to the default greeting with a warning);
/// - MaxCommandSize → `limits.max_command_line`;
/// - PreAuthenticatedConnectionTimeout / AuthenticatedConnectionTimeout → the timers;
/// - LoginType `PlainTextLogin` → clear-text USER/PASS and SASL PLAIN/LOGIN offered before
///   TLS (`PlainTextAuthentication` and `SecureLogin` keep them for TLS; which non-clear-text
///   mechanism may run before TLS is then decided per login by `authorize_login`);
/// - EnableGSSAPIAndNTLMAuth → `SASL NTLM` offered (when NTLM is configured at all).
///
/// The result is validated by `ServerConfig::validate`.
pub fn session_config(
    settings: &Pop3Settings,
    stls_available: bool,
    ntlm: bool,
    policy: &Policy,
) -> Result<ServerConfig, pop3_proto::ConfigError> {
    let pop = policy.pop_settings();
    let mut config = ServerConfig::default();
    if ntlm && pop.enable_gssapi_and_ntlm_auth {
        config.sasl_mechanisms.push(SaslMechanism::new(
            Mechanism::Ntlm.name(),
            Mechanism::Ntlm.clear_text(),
        ));
    }
    let default_greeting = config.greeting.clone();
    if let Some(greeting) = settings.greeting.as_ref().or(pop.banner.as_ref()) {
        config.greeting = greeting.clone();
    }
    config.implementation = Some("cas-rs".to_owned());
    config.stls_available = stls_available;
    config.allow_clear_text_without_tls =
        settings.allow_clear_text_without_tls || pop.login_type == LoginType::PlainTextLogin;
    config.apop_enabled = settings.apop_enabled;
    config.login_delay = settings.login_delay;
    config.expire = settings.expire.map(|days| match days {
        None => Expire::Never,
        Some(d) => Expire::Days(d),
    });
    let limits = &mut config.limits;
    limits.max_command_line = settings
        .max_command_size
        .unwrap_or(pop.max_command_size as usize);
    limits.pre_auth_timeout = Some(pop.pre_authenticated_connection_timeout.as_duration());
    limits.authenticated_timeout = Some(pop.authenticated_connection_timeout.as_duration());
    apply_limit(&mut limits.pre_auth_timeout, settings.pre_auth_timeout);
    apply_limit(
        &mut limits.authenticated_timeout,
        settings.authenticated_timeout,
    );
    apply_limit(&mut limits.max_bad_commands, settings.max_bad_commands);
    apply_limit(&mut limits.max_auth_failures, settings.max_auth_failures);
    if config.validate() == Err(pop3_proto::ConfigError::InvalidText("greeting"))
        && settings.greeting.is_none()
    {
        tracing::warn!(
            "PopSettings.Banner is longer than 200 characters; using the default greeting"
        );
        config.greeting = default_greeting;
    }
    config.validate()?;
    Ok(config)
}

/// What every POP3 connection of one server shares.
pub struct Pop3Context {
    /// `[pop3]` settings of `cas-server.toml` (explicit values override the policy).
    pub settings: Pop3Settings,
    /// A certificate is configured: STLS is offered.
    pub stls_available: bool,
    /// Mailboxes.
    pub store: Arc<dyn MailStore>,
    /// Accounts, NTLM, channel bindings and the access policy (NTLM `None`: `AUTH NTLM` is
    /// refused and not offered).
    pub login: LoginServices,
    /// The session configuration of the policy generation it was built for.
    config_cache: PerGeneration<ServerConfig>,
}

impl std::fmt::Debug for Pop3Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pop3Context").finish_non_exhaustive()
    }
}

impl Pop3Context {
    /// A context; the session configuration is checked against the policy in force.
    pub fn new(
        settings: Pop3Settings,
        stls_available: bool,
        credentials: Arc<dyn CredentialStore>,
        store: Arc<dyn MailStore>,
        ntlm: Option<Arc<NtlmConfig>>,
        channel_bindings: Option<ChannelBindings>,
        access: Arc<AccessControl>,
    ) -> Result<Self, pop3_proto::ConfigError> {
        let ctx = Self {
            settings,
            stls_available,
            store,
            login: LoginServices::new(credentials, ntlm, channel_bindings, access),
            config_cache: PerGeneration::default(),
        };
        ctx.session_config()?;
        Ok(ctx)
    }

    /// The session configuration for a new connection under the policy in force (built
    /// once per policy generation).
    pub fn session_config(&self) -> Result<Arc<ServerConfig>, pop3_proto::ConfigError> {
        let (settings, tls, ntlm) = (
            &self.settings,
            self.stls_available,
            self.login.ntlm.is_some(),
        );
        self.config_cache
            .get_or_build(&self.login.access, |policy| {
                session_config(settings, tls, ntlm, policy)
            })
    }
}

/// How a login attempt ended; what it opens is the user's locked maildrop and its view.
type LoginOutcome = auth::LoginOutcome<(Arc<dyn Maildrop>, MaildropView)>;

/// How the maildrop is shown to this session.
pub(crate) struct MaildropView {
    /// POP3 message number − 1 → maildrop index (MessageRetrievalSortOrder).
    order: Vec<usize>,
    /// What LIST/STAT report, in message-number order.
    listing: Vec<MaildropEntry>,
    /// The MessageRetrievalMimeFormat in force for the user.
    format: BodyFormat,
}

/// The result of one piece of background work (opaque outside this module).
pub struct Done(Job);

/// Results of background work.
enum Job {
    /// USER/PASS checked (and the maildrop opened when good).
    Login {
        id: CommandId,
        /// As presented, for the log.
        user: String,
        outcome: LoginOutcome,
    },
    /// One SASL step ran; the mechanism is handed back.
    Sasl {
        id: CommandId,
        stepped: auth::SaslStepped<(Arc<dyn Maildrop>, MaildropView)>,
    },
    /// A message chunk was read (or the message failed to open or read).
    Chunk {
        id: CommandId,
        /// Handed back for the next chunk.
        reader: Option<MessageReader>,
        result: Result<(Bytes, bool), StoreError>,
    },
    /// A whole message was read and re-rendered in the user's MIME format.
    Converted {
        id: CommandId,
        result: Result<Bytes, StoreError>,
    },
    /// QUIT's deletions were committed (or not).
    Committed {
        id: CommandId,
        result: Result<(), StoreError>,
    },
    /// Background work panicked (a bug); the connection is closed.
    Panicked,
}

/// A RETR/TOP being streamed.
struct Retrieval {
    id: CommandId,
    /// Maildrop index.
    index: usize,
    /// `None` before the first read, or while a read is in flight.
    reader: Option<MessageReader>,
    /// The converted message and how much of it was handed over.
    converted: Option<(Bytes, usize)>,
    started: bool,
}

/// The client's and the server's ends of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Endpoints {
    /// The client.
    pub remote: SocketAddr,
    /// The server's listening address.
    pub local: SocketAddr,
}

/// The POP3 application for one connection.
pub struct Pop3App {
    ctx: Arc<Pop3Context>,
    peer: String,
    client_addr: IpAddr,
    /// This connection's tracker slot (`None` for connections not admitted through a
    /// listener, as in tests with in-memory pipes).
    slot: Option<Slot>,
    user: Option<String>,
    maildrop: Option<Arc<dyn Maildrop>>,
    view: Option<MaildropView>,
    reauth: Option<Reauthorization>,
    sasl: Option<SaslExchange>,
    retrieval: Option<Retrieval>,
    pending: Option<JoinHandle<Done>>,
    /// Messages in the commit under way (for the log).
    deleting: usize,
    log: Option<SessionLog>,
}

fn response_code(denial: &Denial) -> ResponseCode {
    match denial.pop3_code() {
        "IN-USE" => ResponseCode::InUse,
        "LOGIN-DELAY" => ResponseCode::LoginDelay,
        "SYS/TEMP" => ResponseCode::SysTemp,
        "SYS/PERM" => ResponseCode::SysPerm,
        _ => ResponseCode::Auth,
    }
}

fn denied_reply(denial: &Denial) -> Reply {
    Reply::LoginRejected {
        code: Some(response_code(denial)),
        text: denial.message.clone(),
    }
}

impl Pop3App {
    /// A fresh application for a connection between `endpoints`, holding `slot` (released
    /// when the application is dropped).
    pub fn new(ctx: Arc<Pop3Context>, endpoints: Endpoints, slot: Option<Slot>) -> Self {
        let log = ctx.login.access.protocol_log(Protocol::Pop3).map(|log| {
            SessionLog::new(
                log,
                endpoints.local.to_string(),
                endpoints.remote.to_string(),
            )
        });
        Self {
            ctx,
            peer: endpoints.remote.to_string(),
            client_addr: endpoints.remote.ip(),
            slot,
            user: None,
            maildrop: None,
            view: None,
            reauth: None,
            sasl: None,
            retrieval: None,
            pending: None,
            deleting: 0,
            log,
        }
    }

    /// ProtocolLogEnabled was on at connect: the session must run with
    /// [`ServerConfig::trace`], whose events give the command and reply lines.
    pub fn logs_protocol(&self) -> bool {
        self.log.is_some()
    }

    /// Writes a protocol log line when ProtocolLogEnabled was on at connect.
    pub fn log(&mut self, event: LogEvent, data: &str, context: &str) {
        if let Some(log) = self.log.as_mut() {
            log.record(event, data, context);
        }
    }

    /// Sends `reply`. Status lines reach the protocol log through the session's
    /// `ReplyTraced` events; a SASL challenge is no status line, so it is logged here,
    /// redacted (NTLM challenges carry the server's nonce).
    fn reply(&mut self, session: &mut ServerSession, id: CommandId, reply: Reply) {
        if matches!(reply, Reply::SaslChallenge { .. }) {
            self.log(LogEvent::Sent, &format!("+ {REDACTED}"), "SASL challenge");
        }
        let _ = session.send(id, reply);
    }

    fn spawn(&mut self, work: impl FnOnce() -> Job + Send + 'static) {
        debug_assert!(self.pending.is_none(), "one background job at a time");
        self.pending = Some(tokio::task::spawn_blocking(move || Done(work())));
    }

    fn on_request(&mut self, session: &mut ServerSession, id: CommandId, request: Request) {
        match request {
            Request::Login { user, password } => {
                if let Err(d) =
                    auth::check_login_throttle(&*self.ctx, &user, self.client_addr, &self.peer)
                {
                    self.reply(session, id, denied_reply(&d));
                    return;
                }
                let ctx = self.ctx.clone();
                let (client_addr, tls) = (self.client_addr, session.is_tls_active());
                self.spawn(move || {
                    let outcome =
                        auth::password_login(&*ctx, &user, password.expose(), tls, client_addr);
                    Job::Login { id, user, outcome }
                });
            }
            Request::Apop { user, .. } => {
                // Not offered (config validation refuses apop_enabled): the passwd-file
                // store has no clear-text passwords to compute the digest from.
                tracing::info!(peer = %self.peer, user = %user, "APOP refused: not supported");
                self.reply(
                    session,
                    id,
                    Reply::LoginRejected {
                        code: Some(ResponseCode::Auth),
                        text: "APOP is not available".into(),
                    },
                );
            }
            Request::Authenticate {
                mechanism,
                initial_response,
            } => {
                let machine = match auth::start_sasl(
                    &*self.ctx,
                    &mechanism,
                    session.is_tls_active(),
                    self.client_addr,
                    &self.peer,
                    "POP3 AUTH",
                ) {
                    Ok(machine) => machine,
                    Err(SaslRefusal::Denied(d)) => {
                        self.reply(session, id, denied_reply(&d));
                        return;
                    }
                    Err(SaslRefusal::Failed(StartFailure::NoRandomness)) => {
                        self.reply(session, id, temp_failure());
                        return;
                    }
                    Err(SaslRefusal::Failed(StartFailure::Unsupported)) => {
                        self.reply(
                            session,
                            id,
                            Reply::LoginRejected {
                                code: None,
                                text: "unsupported SASL mechanism".into(),
                            },
                        );
                        return;
                    }
                };
                self.sasl_step(session, id, machine, initial_response);
            }
            Request::SaslResponse { data } => match self.sasl.take() {
                Some(machine) => self.sasl_step(session, id, machine, Some(data)),
                None => {
                    self.reply(
                        session,
                        id,
                        Reply::LoginRejected {
                            code: None,
                            text: "no authentication exchange in progress".into(),
                        },
                    );
                }
            },
            Request::Retrieve { message, .. } => {
                let number = message.saturating_sub(1) as usize;
                let index = self
                    .view
                    .as_ref()
                    .and_then(|v| v.order.get(number).copied())
                    .unwrap_or(number);
                self.retrieval = Some(Retrieval {
                    id,
                    index,
                    reader: None,
                    converted: None,
                    started: false,
                });
            }
            Request::Commit { deleted } => {
                let Some(maildrop) = self.maildrop.clone() else {
                    self.reply(session, id, Reply::CommitSucceeded);
                    return;
                };
                self.deleting = deleted.len();
                let indices: Vec<usize> = deleted
                    .iter()
                    .map(|&n| {
                        let number = n.saturating_sub(1) as usize;
                        self.view
                            .as_ref()
                            .and_then(|v| v.order.get(number).copied())
                            .unwrap_or(number)
                    })
                    .collect();
                self.spawn(move || Job::Committed {
                    id,
                    result: maildrop.commit_deletions(&indices),
                });
            }
            _ => {
                // A request kind added to pop3-proto later; not logged in detail because it
                // may carry credentials.
                tracing::warn!(peer = %self.peer, "unhandled POP3 request");
            }
        }
    }

    /// Runs one SASL step on the blocking pool (a step may verify a password).
    fn sasl_step(
        &mut self,
        session: &ServerSession,
        id: CommandId,
        machine: SaslExchange,
        input: Option<Vec<u8>>,
    ) {
        let ctx = self.ctx.clone();
        let (client_addr, tls) = (self.client_addr, session.is_tls_active());
        self.spawn(move || {
            let stepped = auth::sasl_login(&*ctx, machine, input.as_deref(), tls, client_addr);
            Job::Sasl { id, stepped }
        });
    }

    fn finish_login(
        &mut self,
        session: &mut ServerSession,
        id: CommandId,
        user: &str,
        outcome: LoginOutcome,
    ) {
        let reply = match auth::conclude(outcome, self.slot.as_ref(), &self.peer, user, "POP3") {
            Ok((authorized, (maildrop, view))) => {
                tracing::info!(
                    peer = %self.peer,
                    user = %authorized.user,
                    messages = view.listing.len(),
                    format = ?view.format,
                    "POP3 login succeeded"
                );
                let listing = view.listing.clone();
                self.reauth = Some(authorized.reauthorization());
                self.user = Some(authorized.user);
                self.maildrop = Some(maildrop);
                self.view = Some(view);
                Reply::LoginAccepted { maildrop: listing }
            }
            Err(LoginRefusal::BadCredentials) => Reply::LoginRejected {
                code: Some(ResponseCode::Auth),
                text: "authentication failed".into(),
            },
            Err(LoginRefusal::Denied(d)) => denied_reply(&d),
            Err(LoginRefusal::InUse) => Reply::LoginRejected {
                code: Some(ResponseCode::InUse),
                text: "maildrop is locked by another session".into(),
            },
            Err(LoginRefusal::TemporaryFailure) => temp_failure(),
        };
        self.reply(session, id, reply);
    }

    /// The next piece of a converted message, handed over without a background job.
    fn send_converted(&mut self, session: &mut ServerSession) {
        let Some(retrieval) = self.retrieval.as_mut() else {
            return;
        };
        let Some((bytes, pos)) = retrieval.converted.as_mut() else {
            return;
        };
        let end = (*pos + MESSAGE_CHUNK).min(bytes.len());
        let chunk = bytes.slice(*pos..end);
        *pos = end;
        let last = end == bytes.len();
        let id = retrieval.id;
        retrieval.started = true;
        if last {
            self.retrieval = None;
        }
        let _ = session.send(id, Reply::MessageData { chunk, last });
    }
}

fn temp_failure() -> Reply {
    Reply::LoginRejected {
        code: Some(ResponseCode::SysTemp),
        text: "temporary failure, try again later".into(),
    }
}

impl auth::LoginContext for Pop3Context {
    type Opened = (Arc<dyn Maildrop>, MaildropView);
    const PROTOCOL: Protocol = Protocol::Pop3;
    const LOG_NAME: &'static str = "POP3";

    fn login(&self) -> &LoginServices {
        &self.login
    }

    /// The user's locked maildrop and the view the user's effective settings ask for.
    fn open(&self, authorized: &Authorized) -> Result<Self::Opened, OpenFailure> {
        let user = &authorized.user;
        let effective = self
            .login
            .access
            .policy()
            .policy
            .effective_settings(user, Protocol::Pop3);
        let maildrop = match self.store.open_maildrop(user) {
            Ok(maildrop) => maildrop,
            Err(StoreError::InUse) => return Err(OpenFailure::InUse),
            Err(e) => return Err(OpenFailure::Unavailable(e.to_string())),
        };
        let format = BodyFormat::from(effective.message_retrieval_mime_format);
        let descending = effective.message_retrieval_sort_order == Some(SortOrder::Descending);
        let exact = effective.enable_exact_rfc822_size && format.converts();
        let view = maildrop_view(maildrop.as_ref(), format, descending, exact)
            .map_err(OpenFailure::Unavailable)?;
        Ok((maildrop, view))
    }
}

/// Message numbering and sizes for one session.
fn maildrop_view(
    maildrop: &dyn Maildrop,
    format: BodyFormat,
    descending: bool,
    exact: bool,
) -> Result<MaildropView, String> {
    let messages = maildrop.messages();
    let mut order: Vec<usize> = (0..messages.len()).collect();
    if descending {
        order.reverse();
    }
    let mut listing = Vec::with_capacity(order.len());
    for &i in &order {
        let m = &messages[i];
        let mut size = m.size;
        if exact && m.size <= mime::MAX_CONVERTED_SIZE {
            let stored = read_whole(maildrop, i).map_err(|e| e.to_string())?;
            if let Some(converted) = mime::convert(&stored, format) {
                size = pop3_proto::stuffing::crlf_size(&converted);
            }
        }
        let uid = Uid::new(m.uid.clone()).map_err(|_| "maildrop produced an invalid UID")?;
        listing.push(MaildropEntry { size, uid });
    }
    Ok(MaildropView {
        order,
        listing,
        format,
    })
}

/// A whole message (callers bound its size).
fn read_whole(maildrop: &dyn Maildrop, index: usize) -> Result<Vec<u8>, StoreError> {
    let mut reader = maildrop.open_message(index)?;
    let mut out = Vec::with_capacity(usize::try_from(reader.remaining()).unwrap_or(0));
    loop {
        let (chunk, last) = reader.read_chunk(MESSAGE_CHUNK)?;
        out.extend_from_slice(&chunk);
        if last {
            return Ok(out);
        }
    }
}

impl Application<ServerSession> for Pop3App {
    type Done = Done;

    fn handle_event(
        &mut self,
        _now: Instant,
        session: &mut ServerSession,
        event: Event,
    ) -> Directive {
        match event {
            Event::CommandReceived { id, command } => self.on_request(session, id, command),
            Event::CommandTraced { line } => self.log(LogEvent::Received, &line, ""),
            Event::ReplyTraced { line } => self.log(LogEvent::Sent, &line, ""),
            Event::TlsRequested => {
                self.log(LogEvent::Info, "", "TLS negotiation");
                return Directive::StartTls;
            }
            Event::AuthenticationCancelled { .. } => {
                self.log(LogEvent::Info, "", "SASL exchange cancelled");
                if let Some(mut machine) = self.sasl.take() {
                    machine.abort();
                }
            }
            Event::Closed { reason } => {
                tracing::debug!(peer = %self.peer, user = ?self.user, ?reason, "POP3 session closed");
                let context = format!("{reason:?}");
                self.log(LogEvent::Disconnected, "", &context);
                // Without a commit nothing changes; dropping the maildrop releases the lock.
                self.maildrop = None;
                self.retrieval = None;
                self.sasl = None;
            }
            _ => {}
        }
        Directive::Continue
    }

    fn before_input(&mut self, now: Instant, session: &mut ServerSession) {
        if session.state() != State::Transaction {
            return;
        }
        let user = self.user.as_deref();
        if let Some(d) = auth::revoked(&*self.ctx, self.reauth.as_mut(), &self.peer, user) {
            self.log(
                LogEvent::Info,
                "",
                &format!("access revoked by a policy change: {}", d.message),
            );
            // Nothing is committed: the session ends without UPDATE.
            session.close_with_code(now, response_code(&d), &d.message);
        }
    }

    fn poll_work(&mut self, _now: Instant, session: &mut ServerSession) {
        if self.pending.is_some() {
            return;
        }
        let Some(retrieval) = self.retrieval.as_mut() else {
            return;
        };
        // Also false once TOP's cutoff is reached: the session then needs no more data and
        // the retrieval is dropped when the next one starts or the session ends.
        if !session.wants_message_data() {
            return;
        }
        if retrieval.converted.is_some() {
            self.send_converted(session);
            return;
        }
        let id = retrieval.id;
        let index = retrieval.index;
        let maildrop = self.maildrop.clone();
        let format = self
            .view
            .as_ref()
            .map_or(BodyFormat::BestBodyFormat, |v| v.format);
        if !retrieval.started && retrieval.reader.is_none() && format.converts() {
            let size = maildrop
                .as_ref()
                .and_then(|m| m.messages().get(index).map(|i| i.size))
                .unwrap_or(u64::MAX);
            if size <= mime::MAX_CONVERTED_SIZE {
                self.spawn(move || {
                    let result =
                        match maildrop {
                            Some(m) => read_whole(m.as_ref(), index).map(|stored| {
                                match mime::convert(&stored, format) {
                                    Some(converted) => Bytes::from(converted),
                                    None => Bytes::from(stored),
                                }
                            }),
                            None => Err(StoreError::NoSuchMessage),
                        };
                    Job::Converted { id, result }
                });
                return;
            }
        }
        let reader = retrieval.reader.take();
        self.spawn(move || {
            let mut reader = match (reader, maildrop) {
                (Some(r), _) => r,
                (None, Some(m)) => match m.open_message(index) {
                    Ok(r) => r,
                    Err(e) => {
                        return Job::Chunk {
                            id,
                            reader: None,
                            result: Err(e),
                        };
                    }
                },
                (None, None) => {
                    return Job::Chunk {
                        id,
                        reader: None,
                        result: Err(StoreError::NoSuchMessage),
                    };
                }
            };
            let result = reader.read_chunk(MESSAGE_CHUNK).map_err(StoreError::from);
            Job::Chunk {
                id,
                reader: Some(reader),
                result,
            }
        });
    }

    fn is_busy(&self) -> bool {
        self.pending.is_some()
    }

    async fn wait(&mut self) -> Done {
        let result = match self.pending.as_mut() {
            Some(handle) => handle.await,
            None => std::future::pending().await,
        };
        self.pending = None;
        result.unwrap_or(Done(Job::Panicked))
    }

    fn complete(&mut self, now: Instant, session: &mut ServerSession, done: Done) {
        match done.0 {
            Job::Login { id, user, outcome } => self.finish_login(session, id, &user, outcome),
            Job::Sasl { id, stepped } => match stepped.progress(&self.peer) {
                SaslProgress::Challenge { exchange, data } => {
                    self.sasl = Some(exchange);
                    self.reply(session, id, Reply::SaslChallenge { data });
                }
                SaslProgress::Finished { user, outcome } => {
                    self.finish_login(session, id, &user, outcome);
                }
            },
            Job::Chunk { id, reader, result } => {
                let Some(retrieval) = self.retrieval.as_mut().filter(|r| r.id == id) else {
                    return; // the session closed meanwhile
                };
                match result {
                    Ok((chunk, last)) => {
                        retrieval.started = true;
                        retrieval.reader = reader;
                        if last {
                            self.retrieval = None;
                        }
                        // The status line reaches the protocol log as a ReplyTraced event.
                        let _ = session.send(id, Reply::MessageData { chunk, last });
                    }
                    Err(e) if !retrieval.started => {
                        self.retrieval = None;
                        tracing::warn!(peer = %self.peer, error = %e, "message unavailable");
                        self.reply(
                            session,
                            id,
                            Reply::MessageUnavailable {
                                text: "message is no longer available".into(),
                            },
                        );
                    }
                    Err(e) => {
                        // The size was promised already: the only honest end is to drop the
                        // connection, committing nothing.
                        self.retrieval = None;
                        tracing::error!(peer = %self.peer, error = %e, "message read failed mid-transfer");
                        session.close(now, "message read failed");
                    }
                }
            }
            Job::Converted { id, result } => {
                let Some(retrieval) = self.retrieval.as_mut().filter(|r| r.id == id) else {
                    return;
                };
                match result {
                    Ok(bytes) => {
                        let format = self.view.as_ref().map(|v| v.format);
                        let context =
                            format!("message converted, {} octets as {format:?}", bytes.len());
                        retrieval.converted = Some((bytes, 0));
                        self.log(LogEvent::Info, "", &context);
                        self.send_converted(session);
                    }
                    Err(e) => {
                        self.retrieval = None;
                        tracing::warn!(peer = %self.peer, error = %e, "message unavailable");
                        self.reply(
                            session,
                            id,
                            Reply::MessageUnavailable {
                                text: "message is no longer available".into(),
                            },
                        );
                    }
                }
            }
            Job::Committed { id, result } => {
                let user = self.user.clone().unwrap_or_default();
                let reply = match result {
                    Ok(()) => {
                        tracing::info!(
                            peer = %self.peer,
                            user = %user,
                            deleted = self.deleting,
                            "POP3 session committed"
                        );
                        Reply::CommitSucceeded
                    }
                    Err(e) => {
                        tracing::error!(peer = %self.peer, user = %user, error = %e, "POP3 commit failed");
                        Reply::CommitFailed {
                            text: "deletions could not be committed".into(),
                        }
                    }
                };
                self.maildrop = None;
                self.reply(session, id, reply);
            }
            Job::Panicked => {
                tracing::error!(peer = %self.peer, "background task panicked");
                self.maildrop = None;
                session.close(now, "internal error");
            }
        }
    }
}
