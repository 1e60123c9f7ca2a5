//! IMAP: `cas_imap_proto::server::ServerSession` plugged into the [driver](crate::driver),
//! and the application that answers its events from a [`CredentialStore`] and the IMAP
//! mailbox store ([`crate::imap_store`]), under the client access policy
//! ([`crate::access`]).
//!
//! The session does the protocol: greeting and capabilities (`LOGINDISABLED` and no
//! clear-text `AUTH=` before TLS under SecureLogin), framing with literal checks before `+`,
//! state checks, STARTTLS (pipelined input discarded), the SASL exchange framing, ENABLE,
//! IDLE, the COMPRESS switch, the sequence-number ↔ UID view and the rules for untagged
//! EXISTS/EXPUNGE/VANISHED, timers and limits. This module decides:
//!
//! - the session configuration from the policy in force when the connection starts
//!   ([`session_config`]): Banner, MaxCommandSize, the timers, LoginType,
//!   EnableGSSAPIAndNTLMAuth, and the extensions advertised ([`capabilities`]);
//! - whether a login may proceed, exactly as POP3 does it ([`crate::auth`]): the login
//!   throttle, argon2 on the blocking pool, `authorize_login` (ImapEnabled, client access
//!   rules, LoginType against the mechanism and TLS), MaxConnectionsPerUser; refusals carry
//!   the policy's RFC 5530 code (`NO [PRIVACYREQUIRED]`, `[CONTACTADMIN]`, ...);
//! - SASL PLAIN, LOGIN and NTLM through cas-auth's step machines;
//! - every mailbox command, answered from the store on the blocking pool (one job at a
//!   time, through the driver's `wait`/`complete`);
//! - the MessageRetrievalMimeFormat FETCH and SEARCH serve messages in: the user's effective
//!   ImapSettings value, taken at SELECT/EXAMINE and kept for the selection, so a policy
//!   reload never changes a message under a client within a session
//!   ([`crate::imap_store::render`] converts);
//! - push: while a mailbox is selected the store's change notifier is watched, and what
//!   other sessions or deliveries into `new/` changed reaches the session's view (at once
//!   during IDLE);
//! - before each command of a logged-in session, whether a policy reload took the user's
//!   access away: then the session ends with `* BYE`.
//!
//! Passwords and SASL payloads are never logged: the protocol log is written from the
//! session's trace, which redacts them.

use std::sync::Arc;
use std::time::Duration;

use cas_auth::CredentialStore;
use cas_auth::channel_binding::ChannelBindings;
use cas_auth::ntlm::NtlmConfig;
use cas_auth::sasl::Mechanism;
use cas_imap_proto::server::{ConfigError, Event, SaslMechanism, ServerConfig, ServerSession};
use cas_imap_proto::types::Capability;
use cas_policy::{LoginType, Policy};

use crate::access::{AccessControl, PerGeneration};
use crate::auth::LoginServices;
use crate::config::{Imap4Settings, apply_limit};
use crate::imap_store::{ImapStore, StoreConfig};

mod app;
mod mailbox;

pub use app::{ImapApp, denial_code};

crate::driver::sans_io_session!(ServerSession, Event, shutdown(session, now) => {
    session.close(now, "Server shutting down")
}, {
    fn take_buffered_input(&mut self) -> Vec<u8> {
        ServerSession::take_compressed_input(self).to_vec()
    }
});

/// The extensions the IMAP application implements, advertised after the ones the session
/// adds itself (IMAP4rev1, IMAP4rev2, STARTTLS, LOGINDISABLED, AUTH=, SASL-IR, LITERAL+,
/// ENABLE, IDLE, APPENDLIMIT=).
pub fn capabilities() -> Vec<Capability<'static>> {
    vec![
        Capability::UidPlus,
        Capability::Move,
        Capability::Unselect,
        Capability::Namespace,
        Capability::Id,
        Capability::Children,
        Capability::CondStore,
        Capability::QResync,
        Capability::SpecialUse,
        Capability::ESearch,
        Capability::SearchRes,
        Capability::ListExtended,
        Capability::ListStatus,
        Capability::StatusSize,
        Capability::MultiAppend,
        Capability::Binary,
        Capability::Utf8Accept,
        Capability::CompressDeflate,
    ]
}

/// Builds the session configuration from the `[imap]` settings alone (Exchange's default
/// policy). See [`session_config`].
pub fn server_config(
    settings: &Imap4Settings,
    tls_available: bool,
    ntlm: bool,
) -> Result<ServerConfig, ConfigError> {
    let policy =
        Policy::new(cas_policy::PolicyConfig::default()).expect("the default policy is valid");
    session_config(settings, tls_available, ntlm, &policy)
}

/// Builds the session configuration from the policy's ImapSettings, with explicit `[imap]`
/// values of `cas-server.toml` (and `--allow-plaintext-auth`) taking precedence:
///
/// - Banner → greeting (one that cannot be sent falls back to the default with a warning);
/// - MaxCommandSize → the command-line limit (`limits.framing.max_line`);
/// - PreAuthenticatedConnectionTimeout / AuthenticatedConnectionTimeout → the timers (the
///   authenticated one raised to the 30 minutes RFC 9051 §5.4 requires, with a warning);
/// - LoginType `PlainTextLogin` → LOGIN and AUTHENTICATE PLAIN/LOGIN offered before TLS
///   (`PlainTextAuthentication` and `SecureLogin` keep them for TLS: `LOGINDISABLED`);
/// - EnableGSSAPIAndNTLMAuth → `AUTH=NTLM` offered (when NTLM is configured at all).
///
/// Literals: `LITERAL+` (RFC 7888) is advertised, bounded like every literal by
/// `framing.max_literal`; APPEND is bounded by `append_limit` (`APPENDLIMIT=`).
pub fn session_config(
    settings: &Imap4Settings,
    tls_available: bool,
    ntlm: bool,
    policy: &Policy,
) -> Result<ServerConfig, ConfigError> {
    let imap = policy.imap_settings();
    let mut config = ServerConfig {
        sasl_mechanisms: vec![
            SaslMechanism::new(Mechanism::Plain.name(), Mechanism::Plain.clear_text()),
            SaslMechanism::new(Mechanism::Login.name(), Mechanism::Login.clear_text()),
        ],
        ..ServerConfig::default()
    };
    if ntlm && imap.enable_gssapi_and_ntlm_auth {
        config.sasl_mechanisms.push(SaslMechanism::new(
            Mechanism::Ntlm.name(),
            Mechanism::Ntlm.clear_text(),
        ));
    }
    let default_greeting = config.greeting.clone();
    if let Some(greeting) = settings.greeting.as_ref().or(imap.banner.as_ref()) {
        config.greeting = greeting.clone();
    }
    config.tls_available = tls_available;
    config.allow_clear_text_without_tls =
        settings.allow_clear_text_without_tls || imap.login_type == LoginType::PlainTextLogin;
    config.capabilities = capabilities();
    let limits = &mut config.limits;
    limits.framing.max_line = settings
        .max_command_size
        .unwrap_or(imap.max_command_size as usize);
    limits.framing.max_non_sync_literal = None;
    if let Some(append) = settings.append_limit {
        limits.framing.max_append_literal = append;
        limits.framing.max_literal = limits.framing.max_literal.max(append);
        limits.framing.max_message = limits
            .framing
            .max_message
            .max(append.saturating_add(1024 * 1024));
    }
    limits.pre_auth_timeout = Some(imap.pre_authenticated_connection_timeout.as_duration());
    let authenticated = imap.authenticated_connection_timeout.as_duration();
    if authenticated < MIN_AUTHENTICATED_TIMEOUT {
        tracing::warn!(
            seconds = authenticated.as_secs(),
            "ImapSettings.AuthenticatedConnectionTimeout is below the 30 minutes RFC 9051 \
             requires; using 30 minutes"
        );
    }
    limits.authenticated_timeout = Some(authenticated.max(MIN_AUTHENTICATED_TIMEOUT));
    apply_limit(&mut limits.pre_auth_timeout, settings.pre_auth_timeout);
    apply_limit(
        &mut limits.authenticated_timeout,
        settings.authenticated_timeout,
    );
    apply_limit(&mut limits.idle_timeout, settings.idle_timeout);
    apply_limit(&mut limits.max_bad_commands, settings.max_bad_commands);
    apply_limit(&mut limits.max_auth_failures, settings.max_auth_failures);
    if config.validate() == Err(ConfigError::InvalidGreeting) && settings.greeting.is_none() {
        tracing::warn!("ImapSettings.Banner cannot be sent; using the default greeting");
        config.greeting = default_greeting;
    }
    config.validate()?;
    Ok(config)
}

/// RFC 9051 §5.4: the autologout timer after login is at least 30 minutes.
const MIN_AUTHENTICATED_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// What every IMAP connection of one server shares.
pub struct ImapContext {
    /// `[imap]` settings of `cas-server.toml` (explicit values override the policy).
    pub settings: Imap4Settings,
    /// A certificate is configured: STARTTLS is offered on the plain listener.
    pub tls_available: bool,
    /// Mailboxes.
    pub store: ImapStore,
    /// Accounts, NTLM, channel bindings and the access policy (NTLM `None`: `AUTHENTICATE NTLM` is
    /// refused and not offered).
    pub login: LoginServices,
    /// The session configuration of the policy generation it was built for.
    config_cache: PerGeneration<ServerConfig>,
}

impl std::fmt::Debug for ImapContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapContext").finish_non_exhaustive()
    }
}

impl ImapContext {
    /// A context; the session configuration is checked against the policy in force.
    pub fn new(
        settings: Imap4Settings,
        tls_available: bool,
        credentials: Arc<dyn CredentialStore>,
        store: ImapStore,
        ntlm: Option<Arc<NtlmConfig>>,
        channel_bindings: Option<ChannelBindings>,
        access: Arc<AccessControl>,
    ) -> Result<Self, ConfigError> {
        let ctx = Self {
            settings,
            tls_available,
            store,
            login: LoginServices::new(credentials, ntlm, channel_bindings, access),
            config_cache: PerGeneration::default(),
        };
        ctx.session_config()?;
        Ok(ctx)
    }

    /// The session configuration for a new connection under the policy in force (built
    /// once per policy generation).
    pub fn session_config(&self) -> Result<Arc<ServerConfig>, ConfigError> {
        let (settings, tls, ntlm) = (
            &self.settings,
            self.tls_available,
            self.login.ntlm.is_some(),
        );
        self.config_cache
            .get_or_build(&self.login.access, |policy| {
                session_config(settings, tls, ntlm, policy)
            })
    }
}

impl crate::auth::LoginContext for ImapContext {
    type Opened = mailbox::UserMailboxes;
    const PROTOCOL: cas_policy::Protocol = cas_policy::Protocol::Imap4;
    const LOG_NAME: &'static str = "IMAP";

    fn login(&self) -> &LoginServices {
        &self.login
    }

    /// The user's mailboxes.
    fn open(
        &self,
        authorized: &crate::auth::Authorized,
    ) -> Result<Self::Opened, crate::auth::OpenFailure> {
        mailbox::UserMailboxes::open(self, &authorized.user)
            .map_err(crate::auth::OpenFailure::Unavailable)
    }
}

/// The IMAP store over `maildir_root`, its message size limit the APPEND limit of
/// `settings` (the store's default otherwise, equal to the session's `APPENDLIMIT=`).
pub fn open_store(maildir_root: &std::path::Path, settings: &Imap4Settings) -> ImapStore {
    let mut config = StoreConfig::default();
    if let Some(limit) = settings.append_limit {
        config.limits.max_message_size = limit;
    }
    ImapStore::new(maildir_root, config)
}
