//! `test-imapconnectivity`: an IMAP server checked step by step with
//! `cas_imap_proto::client::ClientSession`.
//!
//! Steps: DNS resolution, TCP connect, TLS handshake (implicit TLS), greeting and
//! capabilities, STARTTLS and its TLS handshake (`--security starttls`), login (the LOGIN
//! command or AUTHENTICATE PLAIN / LOGIN / NTLM), LIST, SELECT INBOX, FETCH of the newest
//! message's header; with `--send-test-message` APPEND of a test message, then its deletion
//! (`\Deleted` and UID EXPUNGE); LOGOUT.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use cas_imap_proto::client::{
    ClientCloseReason, ClientConfig, ClientOptions, ClientSession, CommandHandle, Event,
    MailboxSummary,
};
use cas_imap_proto::code::ResponseCode;
use cas_imap_proto::command::{CommandBody, FetchAttribute, FetchAttributes, StoreKind};
use cas_imap_proto::encode::to_bytes;
use cas_imap_proto::response::{Data, FetchItem, Status, Text};
use cas_imap_proto::types::{
    AString, Atom, Capability, Flag, ListMailbox, Mailbox, Section, SectionText, SequenceSet,
    SequenceSetArg,
};

use super::driver::{Conn, closed, drive_failure};
use super::net::{Security, Stream};
use super::report::{Failed, Failure, Report};
use super::sasl::SaslClient;
use super::{LoginMechanism, MailArgs, Settings};

/// IMAP's ports: 993 for implicit TLS (RFC 8314), 143 otherwise (RFC 9051).
pub fn default_port(security: Security) -> u16 {
    match security {
        Security::Tls => 993,
        Security::Plain | Security::Starttls => 143,
    }
}

type Imap = Conn<ClientSession>;

/// Runs the test and returns the exit status (0 passed, 1 failed).
pub async fn run(settings: &Settings, args: &MailArgs) -> u8 {
    let mut report = Report::to_stdout(
        "test-imapconnectivity",
        settings.describe(),
        settings.format,
    );
    let _ = steps(
        &mut report,
        settings,
        args.mechanism,
        args.send_test_message,
    )
    .await;
    report.conclude()
}

/// Runs the steps in order, stopping at the first failure.
pub async fn steps(
    report: &mut Report,
    settings: &Settings,
    mechanism: LoginMechanism,
    send_test_message: bool,
) -> Result<(), Failed> {
    let stream = settings.open(report).await?;
    let config = ClientConfig {
        allow_cleartext_credentials: settings.allow_clear_text,
        ..ClientConfig::default()
    };
    let session = ClientSession::new(
        Arc::new(config),
        Instant::now(),
        ClientOptions {
            tls_active: stream.is_tls(),
        },
    );
    let mut conn = Conn::new(session, stream);
    let result = session_steps(report, settings, mechanism, send_test_message, &mut conn).await;
    conn.shutdown().await;
    result
}

/// What a command ended with, and the untagged data that came with it.
struct Outcome {
    status: Status,
    code: Option<ResponseCode<'static>>,
    text: String,
    data: Vec<Data<'static>>,
    selected: Option<MailboxSummary>,
}

impl Outcome {
    fn line(&self) -> String {
        let status = match self.status {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
        };
        let code = self
            .code
            .as_ref()
            .map(|c| format!(" [{}]", String::from_utf8_lossy(&to_bytes(c))))
            .unwrap_or_default();
        format!("{status}{code} {}", self.text)
            .trim_end()
            .to_owned()
    }
}

async fn session_steps(
    report: &mut Report,
    settings: &Settings,
    mechanism: LoginMechanism,
    send_test_message: bool,
    conn: &mut Imap,
) -> Result<(), Failed> {
    let mut step = report.start("Greeting and capabilities");
    let greeting = match greeting(conn, settings).await {
        Ok(g) => g,
        Err(f) => return Err(report.fail(step, f)),
    };
    let caps = match capabilities(conn, settings).await {
        Ok(c) => c,
        Err(f) => return Err(report.fail(step, f)),
    };
    if !conn.stream().is_some_and(Stream::is_tls) {
        let offered = clear_text_offered(&caps);
        if !offered.is_empty() {
            step.warn(format!(
                "the server offers clear-text login ({}) on a connection without TLS",
                offered.join(", ")
            ));
        }
    }
    report.pass(
        step,
        format!("{greeting}; capabilities: {}", caps_text(&caps)),
    );

    let caps = if settings.security == Security::Starttls {
        starttls(report, settings, conn, &caps).await?
    } else {
        caps
    };

    login(report, settings, mechanism, conn, &caps).await?;

    // LIST.
    let step = report.start("LIST");
    let handle = conn.session.list(
        Instant::now(),
        Mailbox::from_name_utf8("").unwrap_or(Mailbox::Inbox),
        ListMailbox::from_bytes(&b"*"[..]),
    );
    let outcome = match complete(conn, settings, handle.map_err(|_| ())).await {
        Ok(o) if o.status == Status::Ok => o,
        Ok(o) => return Err(report.fail(step, refused("LIST", &o))),
        Err(f) => return Err(report.fail(step, f)),
    };
    let names: Vec<String> = outcome
        .data
        .iter()
        .filter_map(|d| match d {
            Data::List(l) => Some(mailbox_name(&l.mailbox)),
            _ => None,
        })
        .collect();
    let mut step = step;
    if !names.iter().any(|n| n.eq_ignore_ascii_case("INBOX")) {
        step.warn("LIST did not return INBOX");
    }
    let shown: Vec<&str> = names.iter().take(8).map(String::as_str).collect();
    report.pass(
        step,
        format!(
            "{} mailbox{}: {}{}",
            names.len(),
            if names.len() == 1 { "" } else { "es" },
            shown.join(", "),
            if names.len() > shown.len() {
                ", ..."
            } else {
                ""
            }
        ),
    );

    // SELECT INBOX.
    let step = report.start("SELECT INBOX");
    let handle = conn.session.select(Instant::now(), Mailbox::Inbox);
    let summary = match complete(conn, settings, handle.map_err(|_| ())).await {
        Ok(o) if o.status == Status::Ok => o.selected,
        Ok(o) => return Err(report.fail(step, refused("SELECT INBOX", &o))),
        Err(f) => return Err(report.fail(step, f)),
    };
    let exists = summary.as_ref().map_or(0, |s| s.exists);
    let validity = summary
        .as_ref()
        .and_then(|s| s.uid_validity)
        .map(|v| format!(", UIDVALIDITY {v}"))
        .unwrap_or_default();
    let read_only = summary.as_ref().is_some_and(|s| s.read_only);
    report.pass(
        step,
        format!(
            "{exists} message{}{validity}{}",
            if exists == 1 { "" } else { "s" },
            if read_only { ", read-only" } else { "" }
        ),
    );

    // FETCH of the newest message's header.
    let step = report.start("FETCH newest message header");
    match NonZeroU32::new(exists) {
        None => report.pass(step, "INBOX is empty: nothing to fetch"),
        Some(newest) => {
            let attributes = FetchAttributes::List(vec![
                FetchAttribute::Uid,
                FetchAttribute::Rfc822Size,
                header_attribute(),
            ]);
            let handle = conn.session.fetch(
                Instant::now(),
                false,
                SequenceSetArg::Set(SequenceSet::single(newest)),
                attributes,
            );
            let outcome = match complete(conn, settings, handle.map_err(|_| ())).await {
                Ok(o) if o.status == Status::Ok => o,
                Ok(o) => return Err(report.fail(step, refused("FETCH", &o))),
                Err(f) => return Err(report.fail(step, f)),
            };
            let Some((uid, size, header)) = fetched(&outcome.data, newest) else {
                return Err(report.fail(
                    step,
                    Failure::new(
                        format!("FETCH {newest} completed without the message's header"),
                        "the server did not return BODY[HEADER]; check its logs",
                    ),
                ));
            };
            let subject = super::pop::header_value(&header, "subject")
                .unwrap_or_else(|| "(no subject)".into());
            report.pass(
                step,
                format!(
                    "message {newest}{}{}: {} octets of header, Subject: {subject}",
                    uid.map(|u| format!(" (UID {u})")).unwrap_or_default(),
                    size.map(|s| format!(", {s} octets")).unwrap_or_default(),
                    header.len()
                ),
            );
        }
    }

    if send_test_message {
        test_message(report, settings, conn).await?;
    }

    // LOGOUT.
    let step = report.start("LOGOUT");
    let handle = conn.session.logout(Instant::now());
    match complete(conn, settings, handle.map_err(|_| ())).await {
        Ok(o) if o.status == Status::Ok => report.pass(step, o.line()),
        Ok(o) => return Err(report.fail(step, refused("LOGOUT", &o))),
        Err(f) => return Err(report.fail(step, f)),
    }
    Ok(())
}

/// `BODY.PEEK[HEADER]` (never sets `\Seen`); `RFC822.HEADER` should the section ever be
/// refused by validation (it is valid: no part number, HEADER).
fn header_attribute() -> FetchAttribute<'static> {
    match Section::new(Vec::new(), Some(SectionText::Header)) {
        Ok(section) => FetchAttribute::BodySection {
            peek: true,
            section,
            partial: None,
        },
        Err(_) => FetchAttribute::Rfc822Header,
    }
}

/// The UID, RFC822.SIZE and header of message `seq` from FETCH data.
fn fetched(data: &[Data<'static>], seq: NonZeroU32) -> Option<(Option<u32>, Option<u64>, Vec<u8>)> {
    let mut uid = None;
    let mut size = None;
    let mut header = None;
    for d in data {
        if let Data::Fetch { seq: s, items } = d
            && *s == seq
        {
            for item in items {
                match item {
                    FetchItem::Uid(u) => uid = Some(u.get()),
                    FetchItem::Rfc822Size(n) => size = Some(*n),
                    FetchItem::BodySection { data, .. } => {
                        header = Some(data.as_bytes().unwrap_or_default().to_vec());
                    }
                    FetchItem::Rfc822Header(data) => {
                        header = Some(data.as_bytes().unwrap_or_default().to_vec());
                    }
                    _ => {}
                }
            }
        }
    }
    header.map(|h| (uid, size, h))
}

/// APPENDs a test message to INBOX, then marks it `\Deleted` and expunges it by UID.
async fn test_message(
    report: &mut Report,
    settings: &Settings,
    conn: &mut Imap,
) -> Result<(), Failed> {
    let step = report.start("APPEND test message");
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let message_id = format!("<cas-connectivity-{stamp}@{}>", settings.host);
    let message = format!(
        "From: <{user}>\r\nTo: <{user}>\r\nSubject: cas-server test-imapconnectivity\r\n\
         Message-ID: {message_id}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
         Test message of cas-server test-imapconnectivity; it deletes it again.\r\n",
        user = settings.user
    );
    let handle = conn.session.append(
        Instant::now(),
        Mailbox::Inbox,
        Vec::new(),
        message.as_bytes(),
    );
    let outcome = match complete(conn, settings, handle.map_err(|_| ())).await {
        Ok(o) if o.status == Status::Ok => o,
        Ok(o) => return Err(report.fail(step, refused("APPEND", &o))),
        Err(f) => return Err(report.fail(step, f)),
    };
    let appended_uid = match &outcome.code {
        Some(ResponseCode::AppendUid { uids, .. }) => uids
            .ranges()
            .first()
            .map(|r| r.bounds(u32::MAX).0)
            .and_then(NonZeroU32::new),
        _ => None,
    };
    report.pass(
        step,
        format!(
            "{} octets appended to INBOX{}",
            message.len(),
            appended_uid
                .map(|u| format!(" as UID {u}"))
                .unwrap_or_default()
        ),
    );

    let mut step = report.start("Delete test message");
    // Without APPENDUID (no UIDPLUS), find the message by its Message-ID.
    let uid = match appended_uid {
        Some(u) => Some(u),
        None => {
            let key = cas_imap_proto::command::SearchKey::Header(
                AString::from_bytes(&b"Message-ID"[..]),
                AString::from_bytes(message_id.as_bytes()),
            );
            let handle = conn.session.uid_search(Instant::now(), vec![key]);
            match complete(conn, settings, handle.map_err(|_| ())).await {
                Ok(o) if o.status == Status::Ok => o.data.iter().find_map(|d| match d {
                    Data::Search { numbers, .. } => numbers.iter().max().copied(),
                    _ => None,
                }),
                Ok(o) => return Err(report.fail(step, refused("UID SEARCH", &o))),
                Err(f) => return Err(report.fail(step, f)),
            }
        }
    };
    let Some(uid) = uid else {
        return Err(report.fail(
            step,
            Failure::new(
                "the appended test message cannot be found (no APPENDUID, UID SEARCH found nothing)",
                "delete the message with the subject \"cas-server test-imapconnectivity\" by hand",
            ),
        ));
    };
    let store = CommandBody::Store {
        uid: true,
        sequence_set: SequenceSetArg::Set(SequenceSet::single(uid)),
        unchanged_since: None,
        kind: StoreKind::Add,
        silent: true,
        flags: vec![Flag::Deleted],
    };
    let handle = conn.session.send(Instant::now(), store);
    match complete(conn, settings, handle.map_err(|_| ())).await {
        Ok(o) if o.status == Status::Ok => {}
        Ok(o) => return Err(report.fail(step, refused("UID STORE +FLAGS (\\Deleted)", &o))),
        Err(f) => return Err(report.fail(step, f)),
    }
    let uidplus = conn.session.has_capability(&Capability::UidPlus)
        || conn.session.has_capability(&Capability::Imap4Rev2);
    if !uidplus {
        // A plain EXPUNGE would also remove whatever else the user marked \Deleted.
        step.warn(
            "the server has no UIDPLUS: the test message is marked \\Deleted but not expunged",
        );
        report.pass(step, format!("UID {uid} marked \\Deleted"));
        return Ok(());
    }
    let handle = conn.session.send(
        Instant::now(),
        CommandBody::UidExpunge {
            sequence_set: SequenceSetArg::Set(SequenceSet::single(uid)),
        },
    );
    match complete(conn, settings, handle.map_err(|_| ())).await {
        Ok(o) if o.status == Status::Ok => {
            report.pass(step, format!("UID {uid} marked \\Deleted and expunged"));
            Ok(())
        }
        Ok(o) => Err(report.fail(step, refused("UID EXPUNGE", &o))),
        Err(f) => Err(report.fail(step, f)),
    }
}

async fn greeting(conn: &mut Imap, settings: &Settings) -> Result<String, Failure> {
    let deadline = settings.deadline();
    loop {
        match conn.next_event(deadline).await {
            Ok(Event::GreetingReceived { preauth, text, .. }) => {
                let kind = if preauth { "PREAUTH" } else { "OK" };
                return Ok(format!("* {kind} {}", text_str(&text))
                    .trim_end()
                    .to_owned());
            }
            Ok(Event::ByeReceived { text, .. }) => {
                return Err(Failure::new(
                    format!("the server refused the session: * BYE {}", text_str(&text)),
                    "the server is busy, out of service or refuses this client; see its text",
                ));
            }
            Ok(Event::Closed { reason }) => return Err(closed(&reason)),
            Ok(_) => {}
            Err(e) => return Err(drive_failure(&e, settings.timeout, "greeting")),
        }
    }
}

/// The capabilities: from the greeting's code if it had them, else `CAPABILITY`.
async fn capabilities(
    conn: &mut Imap,
    settings: &Settings,
) -> Result<Vec<Capability<'static>>, Failure> {
    if let Some(caps) = conn.session.capabilities() {
        return Ok(caps.to_vec());
    }
    let handle = conn.session.capability(Instant::now());
    let outcome = complete(conn, settings, handle.map_err(|_| ())).await?;
    if outcome.status != Status::Ok {
        return Err(refused("CAPABILITY", &outcome));
    }
    Ok(conn
        .session
        .capabilities()
        .map(<[_]>::to_vec)
        .unwrap_or_default())
}

async fn starttls(
    report: &mut Report,
    settings: &Settings,
    conn: &mut Imap,
    caps: &[Capability<'static>],
) -> Result<Vec<Capability<'static>>, Failed> {
    let step = report.start("STARTTLS");
    if !caps.contains(&Capability::StartTls) {
        return Err(report.fail(
            step,
            Failure::new(
                "the server does not offer STARTTLS",
                "enable TLS on the server, or test with --security tls (port 993) if it offers implicit TLS",
            ),
        ));
    }
    let handle = match conn.session.starttls(Instant::now()) {
        Ok(h) => h,
        Err(_) => return Err(report.fail(step, Failure::new("the session is closed", "see above"))),
    };
    let deadline = settings.deadline();
    let mut completed = None;
    loop {
        match conn.next_event(deadline).await {
            Ok(Event::Completed {
                handle: h,
                status,
                code,
                text,
            }) if h == handle => {
                if status != Status::Ok {
                    let o = Outcome {
                        status,
                        code,
                        text: text_str(&text),
                        data: Vec::new(),
                        selected: None,
                    };
                    return Err(report.fail(
                        step,
                        Failure::new(
                            format!("the server refused STARTTLS: {}", o.line()),
                            "check the server's TLS certificate configuration",
                        ),
                    ));
                }
                completed = Some(text_str(&text));
            }
            Ok(Event::TlsHandshakeRequested { handle: h }) if h == handle => break,
            Ok(Event::Closed { reason }) => return Err(report.fail(step, closed(&reason))),
            Ok(_) => {}
            Err(e) => {
                return Err(
                    report.fail(step, drive_failure(&e, settings.timeout, "STARTTLS reply"))
                );
            }
        }
    }
    if let Err(e) = conn.flush().await {
        return Err(report.fail(step, drive_failure(&e, settings.timeout, "STARTTLS")));
    }
    report.pass(
        step,
        format!("OK {}", completed.unwrap_or_default())
            .trim_end()
            .to_owned(),
    );
    conn.upgrade_tls(report, &settings.host, &settings.tls, settings.timeout)
        .await?;
    let step = report.start("Capabilities after TLS");
    match capabilities(conn, settings).await {
        Ok(caps) => {
            report.pass(step, caps_text(&caps));
            Ok(caps)
        }
        Err(f) => Err(report.fail(step, f)),
    }
}

async fn login(
    report: &mut Report,
    settings: &Settings,
    requested: LoginMechanism,
    conn: &mut Imap,
    caps: &[Capability<'static>],
) -> Result<(), Failed> {
    let step = report.start("Login");
    let mechs: Vec<String> = caps
        .iter()
        .filter_map(|c| c.auth_mechanism().map(str::to_ascii_uppercase))
        .collect();
    let login_allowed = !caps.contains(&Capability::LoginDisabled);
    let offered = |m: &str| mechs.iter().any(|s| s == m);
    let mechanism = match requested {
        LoginMechanism::Auto if offered("PLAIN") => LoginMechanism::Plain,
        LoginMechanism::Auto if login_allowed => LoginMechanism::User,
        LoginMechanism::Auto if offered("LOGIN") => LoginMechanism::Login,
        LoginMechanism::Auto if offered("NTLM") => LoginMechanism::Ntlm,
        LoginMechanism::Auto => {
            return Err(report.fail(
                step,
                Failure::new(
                    "the server offers no login method (LOGINDISABLED and no AUTH= this test knows)",
                    "on a connection without TLS servers disable login: try --security starttls or tls",
                ),
            ));
        }
        m => m,
    };
    let name = match mechanism {
        LoginMechanism::User => "LOGIN command",
        LoginMechanism::Plain => "PLAIN",
        LoginMechanism::Login => "LOGIN",
        LoginMechanism::Ntlm => "NTLM",
        LoginMechanism::Auto => "AUTO",
    };
    let is_offered = match mechanism {
        LoginMechanism::User => login_allowed,
        _ => offered(name),
    };
    if !is_offered {
        return Err(report.fail(
            step,
            Failure::new(
                if mechanism == LoginMechanism::User {
                    "the server disables the LOGIN command (LOGINDISABLED)".to_owned()
                } else {
                    format!("the server does not offer AUTH={name}")
                },
                format!(
                    "offered: {}{}; choose one with --mechanism, or use TLS (servers hide clear-text methods without it)",
                    if mechs.is_empty() { "no AUTH=".to_owned() } else { mechs.iter().map(|m| format!("AUTH={m}")).collect::<Vec<_>>().join(" ") },
                    if login_allowed { ", LOGIN command" } else { "" }
                ),
            ),
        ));
    }
    let tls = conn.stream().is_some_and(Stream::is_tls);
    if let Err(f) = settings.check_clear_text(mechanism, name, tls) {
        return Err(report.fail(step, f));
    }
    let result = match mechanism {
        LoginMechanism::User => {
            let handle = conn.session.login(
                Instant::now(),
                AString::from_bytes(settings.user.as_bytes()),
                AString::from_bytes(settings.password.expose().as_bytes()),
            );
            complete(conn, settings, handle.map_err(|_| ())).await
        }
        _ => authenticate(conn, settings, mechanism, name).await,
    };
    match result {
        Ok(o) if o.status == Status::Ok => {
            report.pass(step, format!("logged in as {} with {name}", settings.user));
            Ok(())
        }
        Ok(o) => Err(report.fail(step, auth_failed(&o))),
        Err(f) => Err(report.fail(step, f)),
    }
}

async fn authenticate(
    conn: &mut Imap,
    settings: &Settings,
    mechanism: LoginMechanism,
    name: &str,
) -> Result<Outcome, Failure> {
    let mut sasl = SaslClient::new(mechanism, settings, conn.stream())?;
    let atom = Atom::new(name).map_err(|_| Failure::new("bad mechanism name", "report a bug"))?;
    let initial = sasl.initial_response();
    let handle = conn
        .session
        .authenticate(Instant::now(), atom, initial.as_deref())
        .map_err(|_| Failure::new("the session refused AUTHENTICATE", "report a bug"))?;
    let deadline = settings.deadline();
    let mut data = Vec::new();
    loop {
        match conn.next_event(deadline).await {
            Ok(Event::SaslChallengeReceived {
                handle: h,
                challenge,
            }) if h == handle => {
                let response = sasl.respond(&challenge)?;
                if conn
                    .session
                    .sasl_respond(Instant::now(), handle, &response)
                    .is_err()
                {
                    return Err(Failure::new(
                        "the SASL exchange ended early",
                        "report a bug",
                    ));
                }
            }
            Ok(Event::DataReceived {
                handle: Some(h),
                data: d,
            }) if h == handle => data.push(d),
            Ok(Event::Completed {
                handle: h,
                status,
                code,
                text,
            }) if h == handle => {
                return Ok(Outcome {
                    status,
                    code,
                    text: text_str(&text),
                    data,
                    selected: None,
                });
            }
            Ok(Event::CommandAborted { handle: h, reason }) if h == handle => {
                return Err(Failure::new(
                    format!("AUTHENTICATE did not complete: {reason}"),
                    "the connection ended; the server's logs say why",
                ));
            }
            Ok(Event::Closed { reason }) => return Err(closed(&reason)),
            Ok(_) => {}
            Err(e) => return Err(drive_failure(&e, settings.timeout, "reply")),
        }
    }
}

/// Waits for `handle` to complete, collecting its untagged data.
async fn complete(
    conn: &mut Imap,
    settings: &Settings,
    handle: Result<CommandHandle, ()>,
) -> Result<Outcome, Failure> {
    let handle = handle.map_err(|()| {
        Failure::new(
            "the client session refused the command (closed, or credentials without TLS)",
            "see the step before",
        )
    })?;
    let deadline = settings.deadline();
    let mut data = Vec::new();
    let mut selected = None;
    loop {
        match conn.next_event(deadline).await {
            Ok(Event::DataReceived {
                handle: Some(h),
                data: d,
            }) if h == handle => data.push(d),
            Ok(Event::MailboxSelected { handle: h, summary }) if h == handle => {
                selected = Some(summary);
            }
            Ok(Event::Completed {
                handle: h,
                status,
                code,
                text,
            }) if h == handle => {
                return Ok(Outcome {
                    status,
                    code,
                    text: text_str(&text),
                    data,
                    selected,
                });
            }
            Ok(Event::CommandAborted { handle: h, reason }) if h == handle => {
                return Err(Failure::new(
                    format!("the command did not complete: {reason}"),
                    "the connection ended; the server's logs say why",
                ));
            }
            Ok(Event::Closed {
                reason: ClientCloseReason::Logout,
            }) => {
                // LOGOUT's completion comes first; nothing else is pending.
            }
            Ok(Event::Closed { reason }) => return Err(closed(&reason)),
            Ok(_) => {}
            Err(e) => return Err(drive_failure(&e, settings.timeout, "reply")),
        }
    }
}

fn auth_failed(o: &Outcome) -> Failure {
    let line = o.line();
    let hint = if line.contains("TLS") || line.contains("PRIVACYREQUIRED") {
        "the server wants TLS before this login: use --security starttls or tls"
    } else if line.contains("UNAVAILABLE") {
        "the server has a temporary problem: retry later, check its logs"
    } else {
        "check the user name and password, and that the mailbox may use IMAP (ImapEnabled)"
    };
    Failure::new(format!("authentication failed: {line}"), hint)
}

fn refused(command: &str, o: &Outcome) -> Failure {
    Failure::new(
        format!("{command} failed: {}", o.line()),
        "see the server's text; its logs may say more",
    )
}

fn text_str(text: &Text<'_>) -> String {
    String::from_utf8_lossy(text.as_bytes()).into_owned()
}

fn mailbox_name(m: &Mailbox<'_>) -> String {
    match m {
        Mailbox::Inbox => "INBOX".to_owned(),
        other => String::from_utf8_lossy(&to_bytes(other))
            .trim_matches('"')
            .to_owned(),
    }
}

fn caps_text(caps: &[Capability<'_>]) -> String {
    if caps.is_empty() {
        return "none announced".into();
    }
    caps.iter()
        .map(|c| c.as_str().to_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The clear-text login methods offered: the LOGIN command (unless LOGINDISABLED),
/// AUTH=PLAIN, AUTH=LOGIN.
fn clear_text_offered(caps: &[Capability<'_>]) -> Vec<&'static str> {
    let mut out = Vec::new();
    if !caps.contains(&Capability::LoginDisabled) {
        out.push("LOGIN command");
    }
    for c in caps {
        match c.auth_mechanism().map(str::to_ascii_uppercase).as_deref() {
            Some("PLAIN") => out.push("AUTH=PLAIN"),
            Some("LOGIN") => out.push("AUTH=LOGIN"),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clear_text_detection() {
        let caps = vec![Capability::Imap4Rev1, Capability::AuthPlain];
        assert_eq!(clear_text_offered(&caps), ["LOGIN command", "AUTH=PLAIN"]);
        let caps = vec![Capability::StartTls, Capability::LoginDisabled];
        assert!(clear_text_offered(&caps).is_empty());
        assert_eq!(caps_text(&caps), "STARTTLS LOGINDISABLED");
    }

    #[test]
    fn ports_and_sections() {
        assert_eq!(default_port(Security::Tls), 993);
        assert_eq!(default_port(Security::Starttls), 143);
        assert!(matches!(
            header_attribute(),
            FetchAttribute::BodySection { peek: true, .. }
        ));
    }

    #[test]
    fn mailbox_names() {
        assert_eq!(mailbox_name(&Mailbox::Inbox), "INBOX");
        assert_eq!(
            mailbox_name(&Mailbox::from_name_utf8("Sent").unwrap()),
            "Sent"
        );
    }
}
