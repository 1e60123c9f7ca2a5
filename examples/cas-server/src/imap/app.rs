//! [`ImapApp`]: one connection's application, answering the session's events.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use cas_imap_proto::code::ResponseCode;
use cas_imap_proto::server::{CommandId, Event, LoginOutcome, ServerSession, State};
use cas_policy::{Denial, Protocol};
use tokio::task::JoinHandle;

use super::ImapContext;
use super::mailbox::{self, MailboxJob, Selected};
use crate::access::{Reauthorization, Slot};
use crate::auth::{self, LoginRefusal, SaslExchange, SaslProgress, SaslRefusal, StartFailure};
use crate::driver::{Application, Directive};
use crate::pop3::Endpoints;
use crate::protolog::{LogEvent, REDACTED, SessionLog};

/// The result of one piece of background work (opaque outside this module).
pub struct Done(pub(super) Job);

/// Results of background work.
pub(super) enum Job {
    /// LOGIN checked (and the user's mailboxes opened when good).
    Login {
        id: CommandId,
        /// As presented, for the log.
        user: String,
        outcome: Outcome,
    },
    /// One SASL step ran; the mechanism is handed back.
    Sasl {
        id: CommandId,
        stepped: auth::SaslStepped<mailbox::UserMailboxes>,
    },
    /// A mailbox command ran against the store.
    Mailbox(MailboxJob),
    /// Background work panicked (a bug); the connection is closed.
    Panicked,
}

/// How a login attempt ended; what it opens is the user's mailboxes.
pub(super) type Outcome = auth::LoginOutcome<mailbox::UserMailboxes>;

/// The IMAP application for one connection.
pub struct ImapApp {
    pub(super) ctx: Arc<ImapContext>,
    pub(super) peer: String,
    client_addr: IpAddr,
    /// This connection's tracker slot (`None` for connections not admitted through a
    /// listener, as in tests with in-memory pipes).
    slot: Option<Slot>,
    pub(super) user: Option<String>,
    /// The logged-in user's mailboxes.
    pub(super) mailboxes: Option<mailbox::UserMailboxes>,
    /// The selected mailbox, watched for changes by others.
    pub(super) selected: Option<Selected>,
    reauth: Option<Reauthorization>,
    sasl: Option<SaslExchange>,
    /// The command's background job (one at a time: commands are serial).
    pending: Option<JoinHandle<Done>>,
    /// A FETCH served in batches, between its batches.
    pub(super) fetch_run: Option<mailbox::FetchRun>,
    /// Others' changes arrived while a command was under way: look again once it is done.
    pub(super) scan_deferred: bool,
    /// A scan of the selected mailbox for others' changes, beside the command's job.
    scan: Option<JoinHandle<Done>>,
    /// A notification arrived during a scan: scan again after it.
    rescan: bool,
    log: Option<SessionLog>,
}

/// The RFC 5530 code for a policy refusal (cas-policy's mapping).
pub fn denial_code(denial: &Denial) -> ResponseCode<'static> {
    match denial.imap_code() {
        "PRIVACYREQUIRED" => ResponseCode::PrivacyRequired,
        "CANNOT" => ResponseCode::Cannot,
        "UNAVAILABLE" => ResponseCode::Unavailable,
        "LIMIT" => ResponseCode::Limit,
        "AUTHORIZATIONFAILED" => ResponseCode::AuthorizationFailed,
        _ => ResponseCode::AuthenticationFailed,
    }
}

fn denied(denial: &Denial) -> LoginOutcome {
    LoginOutcome::Rejected {
        code: Some(denial_code(denial)),
        text: denial.message.clone(),
    }
}

fn temp_failure() -> LoginOutcome {
    LoginOutcome::Rejected {
        code: Some(ResponseCode::Unavailable),
        text: "Temporary failure, try again later".into(),
    }
}

impl ImapApp {
    /// A fresh application for a connection between `endpoints`, holding `slot` (released
    /// when the application is dropped).
    pub fn new(ctx: Arc<ImapContext>, endpoints: Endpoints, slot: Option<Slot>) -> Self {
        let log = ctx.login.access.protocol_log(Protocol::Imap4).map(|log| {
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
            mailboxes: None,
            selected: None,
            reauth: None,
            sasl: None,
            pending: None,
            fetch_run: None,
            scan_deferred: false,
            scan: None,
            rescan: false,
            log,
        }
    }

    /// ProtocolLogEnabled was on at connect: the session must run with
    /// `ServerConfig::trace`, whose events give the command and status lines.
    pub fn logs_protocol(&self) -> bool {
        self.log.is_some()
    }

    /// Writes a protocol log line when ProtocolLogEnabled was on at connect.
    pub fn log(&mut self, event: LogEvent, data: &str, context: &str) {
        if let Some(log) = self.log.as_mut() {
            log.record(event, data, context);
        }
    }

    /// Whether the command's background job is under way.
    pub(super) fn is_running(&self) -> bool {
        self.pending.is_some()
    }

    pub(super) fn spawn(&mut self, work: impl FnOnce() -> Job + Send + 'static) {
        debug_assert!(self.pending.is_none(), "one command job at a time");
        self.pending = Some(tokio::task::spawn_blocking(move || Done(work())));
    }

    /// Starts a change scan of the selected mailbox, or marks one to follow the scan under
    /// way.
    pub(super) fn spawn_scan(&mut self, work: impl FnOnce() -> Job + Send + 'static) {
        if self.scan.is_some() {
            self.rescan = true;
            return;
        }
        self.scan = Some(tokio::task::spawn_blocking(move || Done(work())));
    }

    /// A scan finished: whether another was asked for meanwhile.
    pub(super) fn take_rescan(&mut self) -> bool {
        std::mem::take(&mut self.rescan)
    }

    fn on_login(
        &mut self,
        session: &mut ServerSession,
        id: CommandId,
        user: String,
        password: Vec<u8>,
    ) {
        if let Err(d) = auth::check_login_throttle(&*self.ctx, &user, self.client_addr, &self.peer)
        {
            let _ = session.finish_authentication(id, denied(&d));
            return;
        }
        let ctx = self.ctx.clone();
        let (client_addr, tls) = (self.client_addr, session.is_tls_active());
        self.spawn(move || {
            let outcome = auth::password_login(&*ctx, &user, &password, tls, client_addr);
            Job::Login { id, user, outcome }
        });
    }

    fn on_authenticate(
        &mut self,
        session: &mut ServerSession,
        id: CommandId,
        mechanism: &str,
        initial_response: Option<Vec<u8>>,
    ) {
        let machine = match auth::start_sasl(
            &*self.ctx,
            mechanism,
            session.is_tls_active(),
            self.client_addr,
            &self.peer,
            "IMAP AUTHENTICATE",
        ) {
            Ok(machine) => machine,
            Err(SaslRefusal::Denied(d)) => {
                let _ = session.finish_authentication(id, denied(&d));
                return;
            }
            Err(SaslRefusal::Failed(StartFailure::NoRandomness)) => {
                let _ = session.finish_authentication(id, temp_failure());
                return;
            }
            Err(SaslRefusal::Failed(StartFailure::Unsupported)) => {
                let _ = session.finish_authentication(
                    id,
                    LoginOutcome::Rejected {
                        code: Some(ResponseCode::Cannot),
                        text: "Unsupported SASL mechanism".into(),
                    },
                );
                return;
            }
        };
        self.sasl_step(session, id, machine, initial_response);
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
        presented: &str,
        outcome: Outcome,
    ) {
        let answer = match auth::conclude(
            outcome,
            self.slot.as_ref(),
            &self.peer,
            presented,
            "IMAP",
        ) {
            Ok((authorized, mailboxes)) => {
                tracing::info!(peer = %self.peer, user = %authorized.user, "IMAP login succeeded");
                let user = authorized.user.clone();
                self.reauth = Some(authorized.reauthorization());
                self.user = Some(authorized.user);
                self.mailboxes = Some(mailboxes);
                LoginOutcome::accepted(user)
            }
            Err(LoginRefusal::BadCredentials) => LoginOutcome::rejected(),
            Err(LoginRefusal::Denied(d)) => denied(&d),
            // The IMAP store shares mailboxes between sessions; kept for completeness.
            Err(LoginRefusal::InUse) => LoginOutcome::Rejected {
                code: Some(ResponseCode::InUse),
                text: "Mailbox is in use by another session".into(),
            },
            Err(LoginRefusal::TemporaryFailure) => temp_failure(),
        };
        let _ = session.finish_authentication(id, answer);
    }

    fn complete_sasl(
        &mut self,
        session: &mut ServerSession,
        id: CommandId,
        stepped: auth::SaslStepped<mailbox::UserMailboxes>,
    ) {
        match stepped.progress(&self.peer) {
            SaslProgress::Challenge { exchange, data } => {
                self.sasl = Some(exchange);
                // A challenge is no status line: logged here, redacted (NTLM challenges
                // carry the server's nonce).
                self.log(LogEvent::Sent, &format!("+ {REDACTED}"), "SASL challenge");
                let _ = session.send_sasl_challenge(id, &data);
            }
            SaslProgress::Finished { user, outcome } => {
                self.finish_login(session, id, &user, outcome);
            }
        }
    }
}

impl Application<ServerSession> for ImapApp {
    type Done = Done;

    fn handle_event(
        &mut self,
        now: Instant,
        session: &mut ServerSession,
        event: Event,
    ) -> Directive {
        match event {
            Event::CommandReceived { id, command } => {
                self.on_command(now, session, id, command);
            }
            Event::AppendReceived {
                id,
                mailbox,
                messages,
            } => self.on_append(session, id, mailbox, messages),
            Event::LoginRequested {
                id,
                username,
                password,
            } => self.on_login(session, id, username, password.expose().clone()),
            Event::AuthenticateStarted {
                id,
                mechanism,
                initial_response,
            } => self.on_authenticate(
                session,
                id,
                &mechanism,
                initial_response.map(|r| r.expose().clone()),
            ),
            Event::SaslResponse { id, data } => match self.sasl.take() {
                Some(machine) => self.sasl_step(session, id, machine, Some(data.expose().clone())),
                None => {
                    let _ = session.finish_authentication(id, LoginOutcome::rejected());
                }
            },
            Event::SaslCancelled { .. } => {
                self.log(LogEvent::Info, "", "SASL exchange cancelled");
                if let Some(mut machine) = self.sasl.take() {
                    machine.abort();
                }
            }
            Event::TlsRequested => {
                self.log(LogEvent::Info, "", "TLS negotiation");
                return Directive::StartTls;
            }
            Event::CompressionStarted => {
                self.log(LogEvent::Info, "", "DEFLATE compression");
                return Directive::StartCompression;
            }
            Event::IdleStarted { .. } | Event::IdleDone { .. } => {}
            Event::MailboxClosed => self.selected = None,
            Event::CommandTraced { line } => self.log(LogEvent::Received, &line, ""),
            Event::ReplyTraced { line } => self.log(LogEvent::Sent, &line, ""),
            Event::Closed { reason } => {
                tracing::debug!(peer = %self.peer, user = ?self.user, ?reason, "IMAP session closed");
                let context = format!("{reason:?}");
                self.log(LogEvent::Disconnected, "", &context);
                self.selected = None;
                self.mailboxes = None;
                self.sasl = None;
            }
            _ => {}
        }
        Directive::Continue
    }

    fn before_input(&mut self, now: Instant, session: &mut ServerSession) {
        if !matches!(session.state(), State::Authenticated | State::Selected) {
            return;
        }
        let user = self.user.as_deref();
        if let Some(d) = auth::revoked(&*self.ctx, self.reauth.as_mut(), &self.peer, user) {
            self.log(
                LogEvent::Info,
                "",
                &format!("access revoked by a policy change: {}", d.message),
            );
            session.close(now, &d.message);
        }
    }

    fn poll_work(&mut self, _now: Instant, session: &mut ServerSession) {
        self.continue_fetch(session);
        self.resume_deferred_scan();
    }

    fn is_busy(&self) -> bool {
        self.pending.is_some()
            || self.scan.is_some()
            || self.selected.as_ref().is_some_and(Selected::is_watching)
    }

    async fn wait(&mut self) -> Done {
        enum Woke {
            Command(Result<Done, tokio::task::JoinError>),
            Scan(Result<Done, tokio::task::JoinError>),
            Changed(MailboxJob),
        }
        async fn join(
            handle: Option<&mut JoinHandle<Done>>,
        ) -> Result<Done, tokio::task::JoinError> {
            match handle {
                Some(h) => h.await,
                None => std::future::pending().await,
            }
        }
        async fn changed(selected: Option<&mut Selected>) -> MailboxJob {
            match selected {
                Some(s) => s.changed().await,
                None => std::future::pending().await,
            }
        }
        // A scan under way makes watching pointless until it is done (it sees the change).
        let watch = if self.scan.is_none() {
            self.selected.as_mut()
        } else {
            None
        };
        // Every branch is cancel-safe: a JoinHandle keeps its task, a broadcast receiver
        // its queue.
        let woke = tokio::select! {
            biased;
            r = join(self.pending.as_mut()) => Woke::Command(r),
            r = join(self.scan.as_mut()) => Woke::Scan(r),
            job = changed(watch) => Woke::Changed(job),
        };
        match woke {
            Woke::Command(r) => {
                self.pending = None;
                r.unwrap_or(Done(Job::Panicked))
            }
            Woke::Scan(r) => {
                self.scan = None;
                r.unwrap_or(Done(Job::Panicked))
            }
            Woke::Changed(job) => Done(Job::Mailbox(job)),
        }
    }

    fn complete(&mut self, now: Instant, session: &mut ServerSession, done: Done) {
        match done.0 {
            Job::Login { id, user, outcome } => self.finish_login(session, id, &user, outcome),
            Job::Sasl { id, stepped } => self.complete_sasl(session, id, stepped),
            Job::Mailbox(job) => self.complete_mailbox(now, session, job),
            Job::Panicked => {
                tracing::error!(peer = %self.peer, "background task panicked");
                session.close(now, "Internal error");
            }
        }
    }
}
