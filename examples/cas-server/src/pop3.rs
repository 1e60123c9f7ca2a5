//! POP3: `pop3_proto::ServerSession` plugged into the [driver](crate::driver), and the
//! application that answers its requests from a [`CredentialStore`] and a [`MailStore`].
//!
//! The session does all of the protocol (greeting, parsing, CAPA, STAT/LIST/UIDL/DELE/RSET,
//! STLS, the SASL exchange framing, refusing clear-text logins before TLS, timers, limits,
//! dot-stuffing). This module only decides:
//!
//! - whether credentials are good (argon2 verification on the blocking pool), and then opens
//!   and locks the maildrop, answering `LoginAccepted` with its listing, or `LoginRejected`
//!   with `[AUTH]`, `[IN-USE]` or `[SYS/TEMP]`;
//! - SASL PLAIN, LOGIN and NTLM through cas-auth's step machines (NTLM gets a fresh server
//!   challenge from the OS generator, the clock as FILETIME, and on TLS connections the
//!   certificate's `tls-server-end-point` channel bindings);
//! - message bytes for RETR/TOP, read in 64 KiB chunks only while the session wants more;
//! - the deletions on QUIT, committed atomically by the store.
//!
//! Anything else (EOF, timeout, shutdown) just drops the maildrop: its lock is released and
//! nothing changes. Passwords and SASL payloads are never logged.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use cas_auth::CredentialStore;
use cas_auth::channel_binding::ChannelBindings;
use cas_auth::ntlm::{FileTime, NtlmConfig};
use cas_auth::sasl::{Mechanism, NtlmServer, ServerMechanism, Step};
use pop3_proto::{
    CommandId, Event, Expire, MaildropEntry, Reply, Request, ResponseCode, SaslMechanism,
    ServerConfig, ServerSession, Uid,
};
use tokio::task::JoinHandle;

use crate::config::{Limit, Pop3Settings};
use crate::driver::{Application, Directive, SansIoSession};
use crate::store::{MailStore, Maildrop, MessageReader, StoreError};

/// Bytes read from a message file per step.
pub const MESSAGE_CHUNK: usize = 64 * 1024;

impl SansIoSession for ServerSession {
    type Event = Event;

    fn handle_input(&mut self, now: Instant, data: &[u8]) {
        ServerSession::handle_input(self, now, data);
    }
    fn handle_eof(&mut self, now: Instant) {
        ServerSession::handle_eof(self, now);
    }
    fn handle_timeout(&mut self, now: Instant) {
        ServerSession::handle_timeout(self, now);
    }
    fn handle_tls_established(&mut self, now: Instant) {
        ServerSession::handle_tls_established(self, now);
    }
    fn shutdown(&mut self, now: Instant) {
        ServerSession::close(self, now, "server shutting down");
    }
    fn poll_event(&mut self) -> Option<Event> {
        ServerSession::poll_event(self)
    }
    fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> usize {
        ServerSession::poll_transmit(self, buf)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        ServerSession::poll_timeout(self)
    }
    fn wants_input(&self) -> bool {
        ServerSession::wants_input(self)
    }
    fn is_closed(&self) -> bool {
        ServerSession::is_closed(self)
    }
}

/// Builds the session configuration from the resolved settings.
///
/// Unset values keep `pop3_proto`'s documented defaults; the result is validated by
/// `ServerConfig::validate`. With `ntlm`, `SASL NTLM` is offered after PLAIN and LOGIN, also
/// before TLS (it is not a clear-text mechanism: the password never crosses the wire).
pub fn server_config(
    settings: &Pop3Settings,
    stls_available: bool,
    ntlm: bool,
) -> Result<ServerConfig, pop3_proto::ConfigError> {
    let mut config = ServerConfig::default();
    if ntlm {
        config.sasl_mechanisms.push(SaslMechanism::new(
            Mechanism::Ntlm.name(),
            Mechanism::Ntlm.clear_text(),
        ));
    }
    if let Some(greeting) = &settings.greeting {
        config.greeting = greeting.clone();
    }
    config.implementation = Some("cas-rs".to_owned());
    config.stls_available = stls_available;
    config.allow_clear_text_without_tls = settings.allow_clear_text_without_tls;
    config.apop_enabled = settings.apop_enabled;
    config.login_delay = settings.login_delay;
    config.expire = settings.expire.map(|days| match days {
        None => Expire::Never,
        Some(d) => Expire::Days(d),
    });
    let limits = &mut config.limits;
    if let Some(n) = settings.max_command_size {
        limits.max_command_line = n;
    }
    apply(&mut limits.pre_auth_timeout, settings.pre_auth_timeout);
    apply(
        &mut limits.authenticated_timeout,
        settings.authenticated_timeout,
    );
    apply(&mut limits.max_bad_commands, settings.max_bad_commands);
    apply(&mut limits.max_auth_failures, settings.max_auth_failures);
    config.validate()?;
    Ok(config)
}

fn apply<T>(field: &mut Option<T>, setting: Limit<T>) {
    match setting {
        Limit::Default => {}
        Limit::Unlimited => *field = None,
        Limit::Value(v) => *field = Some(v),
    }
}

/// What every POP3 connection of one server shares.
pub struct Pop3Context {
    /// Session configuration.
    pub config: Arc<ServerConfig>,
    /// Account database.
    pub credentials: Arc<dyn CredentialStore>,
    /// Mailboxes.
    pub store: Arc<dyn MailStore>,
    /// NTLM acceptor settings; `None`: `AUTH NTLM` is refused (and should not be offered).
    pub ntlm: Option<Arc<NtlmConfig>>,
    /// The certificate's `tls-server-end-point` bindings, given to NTLM on TLS connections.
    pub channel_bindings: Option<ChannelBindings>,
}

impl std::fmt::Debug for Pop3Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pop3Context").finish_non_exhaustive()
    }
}

/// A SASL exchange in progress.
struct Sasl(Box<dyn ServerMechanism + Send>);

impl Sasl {
    fn step(&mut self, store: &dyn CredentialStore, input: Option<&[u8]>) -> Step {
        // NTLM checks the client's timestamp against the time of this step.
        self.0.set_time(now_filetime());
        self.0.step(store, input)
    }

    fn abort(&mut self) {
        let _ = self.0.abort();
    }

    fn authentication_id(&self) -> Option<&str> {
        self.0.authentication_id()
    }
}

/// The current time as NTLM wants it.
fn now_filetime() -> FileTime {
    FileTime::from(SystemTime::now())
}

/// How a login attempt ended.
enum LoginOutcome {
    Accepted {
        user: String,
        maildrop: Arc<dyn Maildrop>,
    },
    BadCredentials,
    InUse {
        user: String,
    },
    TemporaryFailure(String),
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
        machine: Sasl,
        step: Step,
        /// The login outcome when the step succeeded.
        outcome: Option<LoginOutcome>,
    },
    /// A message chunk was read (or the message failed to open or read).
    Chunk {
        id: CommandId,
        /// Handed back for the next chunk.
        reader: Option<MessageReader>,
        result: Result<(bytes::Bytes, bool), StoreError>,
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
    index: usize,
    /// `None` before the first read, or while a read is in flight.
    reader: Option<MessageReader>,
    started: bool,
}

/// The POP3 application for one connection.
pub struct Pop3App {
    ctx: Arc<Pop3Context>,
    peer: String,
    user: Option<String>,
    maildrop: Option<Arc<dyn Maildrop>>,
    sasl: Option<Sasl>,
    retrieval: Option<Retrieval>,
    pending: Option<JoinHandle<Done>>,
    /// Messages in the commit under way (for the log).
    deleting: usize,
}

impl Pop3App {
    /// A fresh application for a connection from `peer` (used in logs only).
    pub fn new(ctx: Arc<Pop3Context>, peer: impl Into<String>) -> Self {
        Self {
            ctx,
            peer: peer.into(),
            user: None,
            maildrop: None,
            sasl: None,
            retrieval: None,
            pending: None,
            deleting: 0,
        }
    }

    fn spawn(&mut self, work: impl FnOnce() -> Job + Send + 'static) {
        debug_assert!(self.pending.is_none(), "one background job at a time");
        self.pending = Some(tokio::task::spawn_blocking(move || Done(work())));
    }

    fn on_request(&mut self, session: &mut ServerSession, id: CommandId, request: Request) {
        match request {
            Request::Login { user, password } => {
                let ctx = self.ctx.clone();
                self.spawn(move || {
                    let outcome = match ctx.credentials.verify_password(&user, password.expose()) {
                        Ok(true) => open_maildrop(&ctx, &user),
                        Ok(false) => LoginOutcome::BadCredentials,
                        Err(e) => LoginOutcome::TemporaryFailure(e.to_string()),
                    };
                    Job::Login { id, user, outcome }
                });
            }
            Request::Apop { user, .. } => {
                // Not offered (config validation refuses apop_enabled): the passwd-file
                // store has no clear-text passwords to compute the digest from.
                tracing::info!(peer = %self.peer, user = %user, "APOP refused: not supported");
                let _ = session.send(
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
                let machine = match Mechanism::from_name(&mechanism) {
                    Some(Mechanism::Plain) => Sasl(Box::new(cas_auth::sasl::PlainServer::new())),
                    Some(Mechanism::Login) => Sasl(Box::new(cas_auth::sasl::LoginServer::new())),
                    Some(Mechanism::Ntlm) if self.ctx.ntlm.is_some() => {
                        match self.ntlm_machine(session.is_tls_active()) {
                            Some(m) => Sasl(Box::new(m)),
                            None => {
                                let _ = session.send(id, temp_failure());
                                return;
                            }
                        }
                    }
                    _ => {
                        let _ = session.send(
                            id,
                            Reply::LoginRejected {
                                code: None,
                                text: "unsupported SASL mechanism".into(),
                            },
                        );
                        return;
                    }
                };
                self.sasl_step(id, machine, initial_response);
            }
            Request::SaslResponse { data } => match self.sasl.take() {
                Some(machine) => self.sasl_step(id, machine, Some(data)),
                None => {
                    let _ = session.send(
                        id,
                        Reply::LoginRejected {
                            code: None,
                            text: "no authentication exchange in progress".into(),
                        },
                    );
                }
            },
            Request::Retrieve { message, .. } => {
                self.retrieval = Some(Retrieval {
                    id,
                    index: message.saturating_sub(1) as usize,
                    reader: None,
                    started: false,
                });
            }
            Request::Commit { deleted } => {
                let Some(maildrop) = self.maildrop.clone() else {
                    let _ = session.send(id, Reply::CommitSucceeded);
                    return;
                };
                self.deleting = deleted.len();
                let indices: Vec<usize> = deleted
                    .iter()
                    .map(|&n| n.saturating_sub(1) as usize)
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

    /// A new NTLM exchange: fresh challenge, current time, and the certificate's channel
    /// bindings on a TLS connection. `None` when the OS generator fails.
    fn ntlm_machine(&self, tls: bool) -> Option<NtlmServer> {
        let config = self.ctx.ntlm.clone()?;
        let mut challenge = [0u8; 8];
        if let Err(e) = getrandom::getrandom(&mut challenge) {
            tracing::error!(peer = %self.peer, error = %e, "no randomness for the NTLM challenge");
            return None;
        }
        let machine = NtlmServer::new(config, challenge, now_filetime());
        Some(match (&self.ctx.channel_bindings, tls) {
            (Some(bindings), true) => machine.with_channel_bindings(bindings),
            _ => machine,
        })
    }

    /// Runs one SASL step on the blocking pool (a step may verify a password).
    fn sasl_step(&mut self, id: CommandId, mut machine: Sasl, input: Option<Vec<u8>>) {
        let ctx = self.ctx.clone();
        self.spawn(move || {
            let step = machine.step(ctx.credentials.as_ref(), input.as_deref());
            // The mechanisms refuse acting as someone else (no authorization policy is
            // installed), so the authorization identity is the verified user.
            let outcome = match &step {
                Step::Success {
                    authorization_id, ..
                } => Some(open_maildrop(&ctx, authorization_id)),
                _ => None,
            };
            Job::Sasl {
                id,
                machine,
                step,
                outcome,
            }
        });
    }

    fn finish_login(
        &mut self,
        session: &mut ServerSession,
        id: CommandId,
        user: &str,
        outcome: LoginOutcome,
    ) {
        let reply = match outcome {
            LoginOutcome::Accepted { user, maildrop } => {
                let listing: Result<Vec<MaildropEntry>, _> = maildrop
                    .messages()
                    .iter()
                    .map(|m| Uid::new(m.uid.clone()).map(|uid| MaildropEntry { size: m.size, uid }))
                    .collect();
                match listing {
                    Ok(listing) => {
                        tracing::info!(
                            peer = %self.peer,
                            user = %user,
                            messages = listing.len(),
                            "POP3 login succeeded"
                        );
                        self.user = Some(user);
                        self.maildrop = Some(maildrop);
                        Reply::LoginAccepted { maildrop: listing }
                    }
                    Err(_) => {
                        tracing::error!(user = %user, "maildrop produced an invalid UID");
                        temp_failure()
                    }
                }
            }
            LoginOutcome::BadCredentials => {
                tracing::info!(peer = %self.peer, user = %user, "POP3 login failed");
                Reply::LoginRejected {
                    code: Some(ResponseCode::Auth),
                    text: "authentication failed".into(),
                }
            }
            LoginOutcome::InUse { user } => {
                tracing::info!(peer = %self.peer, user = %user, "POP3 login refused: maildrop in use");
                Reply::LoginRejected {
                    code: Some(ResponseCode::InUse),
                    text: "maildrop is locked by another session".into(),
                }
            }
            LoginOutcome::TemporaryFailure(why) => {
                tracing::warn!(peer = %self.peer, user = %user, error = %why, "POP3 login failed temporarily");
                temp_failure()
            }
        };
        let _ = session.send(id, reply);
    }
}

fn temp_failure() -> Reply {
    Reply::LoginRejected {
        code: Some(ResponseCode::SysTemp),
        text: "temporary failure, try again later".into(),
    }
}

/// After a good password: the account's canonical name, then its locked maildrop.
fn open_maildrop(ctx: &Pop3Context, user: &str) -> LoginOutcome {
    let user = match ctx.credentials.canonical_user(user) {
        Ok(canonical) => canonical.unwrap_or_else(|| user.to_owned()),
        Err(e) => return LoginOutcome::TemporaryFailure(e.to_string()),
    };
    match ctx.store.open_maildrop(&user) {
        Ok(maildrop) => LoginOutcome::Accepted { user, maildrop },
        Err(StoreError::InUse) => LoginOutcome::InUse { user },
        Err(e) => LoginOutcome::TemporaryFailure(e.to_string()),
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
            Event::TlsRequested => return Directive::StartTls,
            Event::AuthenticationCancelled { .. } => {
                if let Some(mut machine) = self.sasl.take() {
                    machine.abort();
                }
            }
            Event::Closed { reason } => {
                tracing::debug!(peer = %self.peer, user = ?self.user, ?reason, "POP3 session closed");
                // Without a commit nothing changes; dropping the maildrop releases the lock.
                self.maildrop = None;
                self.retrieval = None;
                self.sasl = None;
            }
            _ => {}
        }
        Directive::Continue
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
        let id = retrieval.id;
        let reader = retrieval.reader.take();
        let index = retrieval.index;
        let maildrop = self.maildrop.clone();
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
            Job::Sasl {
                id,
                machine,
                step,
                outcome,
            } => match (step, outcome) {
                (Step::Challenge(data), _) => {
                    self.sasl = Some(machine);
                    let _ = session.send(id, Reply::SaslChallenge { data });
                }
                (
                    Step::Success {
                        authorization_id, ..
                    },
                    Some(outcome),
                ) => {
                    self.finish_login(session, id, &authorization_id, outcome);
                }
                (Step::Failure(failure), _) => {
                    let user = machine
                        .authentication_id()
                        .unwrap_or("(unknown)")
                        .to_owned();
                    let outcome = if failure.is_temporary() {
                        LoginOutcome::TemporaryFailure(failure.to_string())
                    } else {
                        // The reason (wrong password, foreign domain, channel bindings,
                        // clock skew...) is for the log only; the client learns nothing.
                        tracing::info!(peer = %self.peer, user = %user, reason = %failure, "SASL exchange failed");
                        LoginOutcome::BadCredentials
                    };
                    self.finish_login(session, id, &user, outcome);
                }
                _ => {
                    self.finish_login(session, id, "(sasl)", LoginOutcome::BadCredentials);
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
                        let _ = session.send(id, Reply::MessageData { chunk, last });
                    }
                    Err(e) if !retrieval.started => {
                        self.retrieval = None;
                        tracing::warn!(peer = %self.peer, error = %e, "message unavailable");
                        let _ = session.send(
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
                let _ = session.send(id, reply);
            }
            Job::Panicked => {
                tracing::error!(peer = %self.peer, "background task panicked");
                self.maildrop = None;
                session.close(now, "internal error");
            }
        }
    }
}
