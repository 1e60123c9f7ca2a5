//! `test-popconnectivity`: a POP3 server checked step by step with
//! `pop3_proto::ClientSession`.
//!
//! Steps: DNS resolution, TCP connect, TLS handshake (implicit TLS), greeting and
//! capabilities, STLS and its TLS handshake (`--security starttls`), login (USER/PASS or
//! SASL PLAIN / LOGIN / NTLM), STAT, LIST, RETR of the newest message, QUIT.

use std::sync::Arc;
use std::time::Instant;

use pop3_proto::client::Reply;
use pop3_proto::client::{ReplyError, RequestId};
use pop3_proto::command::{Mechanism, Param, PassText};
use pop3_proto::{
    Capability, ClientConfig, ClientEvent, ClientOptions, ClientSession, Command, Status,
    StatusLine,
};

use super::driver::{Conn, closed, drive_failure};
use super::net::{Security, Stream};
use super::report::{Failed, Failure, Report};
use super::{LoginMechanism, MailArgs, Settings};

/// POP3's ports: 995 for implicit TLS (RFC 8314), 110 otherwise (RFC 1939).
pub fn default_port(security: Security) -> u16 {
    match security {
        Security::Tls => 995,
        Security::Plain | Security::Starttls => 110,
    }
}

/// Runs the test and returns the exit status (0 passed, 1 failed).
pub async fn run(settings: &Settings, args: &MailArgs) -> u8 {
    let mut report =
        Report::to_stdout("test-popconnectivity", settings.describe(), settings.format);
    if args.send_test_message {
        report.note(
            "--send-test-message does not apply to POP3 (POP3 cannot deliver mail); the \
             retrieval steps run as usual",
        );
    }
    let _ = steps(&mut report, settings, args.mechanism).await;
    report.conclude()
}

/// One POP3 request's terminal answer.
enum Answer {
    Reply(Reply),
    Challenge(Vec<u8>),
    TlsReady,
}

type Pop = Conn<ClientSession>;

/// Runs the steps in order, stopping at the first failure.
pub async fn steps(
    report: &mut Report,
    settings: &Settings,
    mechanism: LoginMechanism,
) -> Result<(), Failed> {
    let stream = settings.open(report).await?;
    let session = ClientSession::new(
        Arc::new(ClientConfig::default()),
        Instant::now(),
        ClientOptions {
            tls_active: stream.is_tls(),
        },
    );
    let mut conn = Conn::new(session, stream);
    let result = session_steps(report, settings, mechanism, &mut conn).await;
    conn.shutdown().await;
    result
}

async fn session_steps(
    report: &mut Report,
    settings: &Settings,
    mechanism: LoginMechanism,
    conn: &mut Pop,
) -> Result<(), Failed> {
    // Greeting and capabilities.
    let mut step = report.start("Greeting and capabilities");
    let greeting = match greeting(conn, settings).await {
        Ok(g) => g,
        Err(f) => return Err(report.fail(step, f)),
    };
    let mut caps = match capabilities(conn, settings).await {
        Ok(c) => c,
        Err(f) => return Err(report.fail(step, f)),
    };
    if caps.is_none() {
        step.warn("the server does not answer CAPA (RFC 2449): capabilities unknown");
    }
    let tls = conn.stream().is_some_and(Stream::is_tls);
    if !tls {
        let offered = clear_text_offered(caps.as_deref());
        if !offered.is_empty() {
            step.warn(format!(
                "the server offers clear-text login ({}) on a connection without TLS",
                offered.join(", ")
            ));
        }
    }
    report.pass(
        step,
        format!("{greeting}; capabilities: {}", caps_text(caps.as_deref())),
    );

    if settings.security == Security::Starttls {
        caps = starttls(report, settings, conn, caps.as_deref()).await?;
    }

    login(report, settings, mechanism, conn, caps.as_deref()).await?;

    // STAT.
    let step = report.start("STAT");
    let (count, size) = match request(conn, settings, Command::Stat).await {
        Ok(Reply::Stat(d)) => (d.count, d.size),
        Ok(other) => return Err(report.fail(step, unexpected("STAT", &other))),
        Err(f) => return Err(report.fail(step, f)),
    };
    report.pass(
        step,
        format!("{count} message{}, {size} octets", plural(count)),
    );

    // LIST.
    let step = report.start("LIST");
    let listing = match request(conn, settings, Command::List(None)).await {
        Ok(Reply::Listing(l)) => l,
        Ok(other) => return Err(report.fail(step, unexpected("LIST", &other))),
        Err(f) => return Err(report.fail(step, f)),
    };
    let newest = listing.iter().max_by_key(|l| l.message).copied();
    let mut step = step;
    if u32::try_from(listing.len()).ok() != Some(count) {
        step.warn(format!(
            "LIST has {} entries but STAT counted {count}",
            listing.len()
        ));
    }
    report.pass(
        step,
        format!(
            "{} entr{}",
            listing.len(),
            if listing.len() == 1 { "y" } else { "ies" }
        ),
    );

    // RETR of the newest message.
    let step = report.start("RETR newest message");
    match newest {
        None => report.pass(step, "the mailbox is empty: nothing to retrieve"),
        Some(entry) => {
            let body = match request(conn, settings, Command::Retr(entry.message)).await {
                Ok(Reply::Message { body }) => body,
                Ok(other) => return Err(report.fail(step, unexpected("RETR", &other))),
                Err(f) => return Err(report.fail(step, f)),
            };
            let subject = header_value(&body, "subject").unwrap_or_else(|| "(no subject)".into());
            report.pass(
                step,
                format!(
                    "message {}: {} octets, Subject: {subject}",
                    entry.message,
                    body.len()
                ),
            );
        }
    }

    // QUIT.
    let step = report.start("QUIT");
    match request(conn, settings, Command::Quit).await {
        Ok(Reply::Status(s)) if s.status == Status::Ok => report.pass(step, status_text(&s)),
        Ok(other) => return Err(report.fail(step, unexpected("QUIT", &other))),
        Err(f) => return Err(report.fail(step, f)),
    }
    Ok(())
}

async fn greeting(conn: &mut Pop, settings: &Settings) -> Result<String, Failure> {
    let deadline = settings.deadline();
    loop {
        match conn.next_event(deadline).await {
            Ok(ClientEvent::GreetingReceived { ok: true, text, .. }) => {
                return Ok(format!("+OK {text}").trim_end().to_owned());
            }
            Ok(ClientEvent::GreetingReceived {
                ok: false,
                text,
                code,
                ..
            }) => {
                let code = code.map(|c| format!("[{c}] ")).unwrap_or_default();
                return Err(Failure::new(
                    format!("the server refused the session: -ERR {code}{text}"),
                    "the server is busy, out of service or refuses this client; see its text",
                ));
            }
            Ok(ClientEvent::Closed { reason }) => return Err(closed(&reason)),
            Ok(_) => {}
            Err(e) => return Err(drive_failure(&e, settings.timeout, "greeting")),
        }
    }
}

/// `CAPA`; `None` when the server answers `-ERR` (RFC 2449 is optional).
async fn capabilities(
    conn: &mut Pop,
    settings: &Settings,
) -> Result<Option<Vec<Capability>>, Failure> {
    match request_any(conn, settings, Command::Capa).await? {
        Reply::Capabilities(c) => Ok(Some(c)),
        Reply::Status(s) if s.status == Status::Err => Ok(None),
        other => Err(unexpected("CAPA", &other)),
    }
}

async fn starttls(
    report: &mut Report,
    settings: &Settings,
    conn: &mut Pop,
    caps: Option<&[Capability]>,
) -> Result<Option<Vec<Capability>>, Failed> {
    let step = report.start("STLS");
    if let Some(caps) = caps
        && !caps.contains(&Capability::Stls)
    {
        return Err(report.fail(
            step,
            Failure::new(
                "the server does not offer STLS",
                "enable TLS on the server, or test with --security tls (port 995) if it offers implicit TLS",
            ),
        ));
    }
    let id = match send(conn, Command::Stls) {
        Ok(id) => id,
        Err(f) => return Err(report.fail(step, f)),
    };
    match answer(conn, settings, id).await {
        Ok(Answer::TlsReady) => {}
        Ok(Answer::Reply(Reply::Status(s))) => {
            return Err(report.fail(
                step,
                Failure::new(
                    format!("the server refused STLS: {}", status_text(&s)),
                    "check the server's TLS certificate configuration",
                ),
            ));
        }
        Ok(_) => {
            return Err(report.fail(
                step,
                Failure::new("unexpected answer to STLS", "report a bug"),
            ));
        }
        Err(f) => return Err(report.fail(step, f)),
    }
    if let Err(e) = conn.flush().await {
        return Err(report.fail(step, drive_failure(&e, settings.timeout, "STLS")));
    }
    report.pass(step, "+OK, starting TLS");
    conn.upgrade_tls(report, &settings.host, &settings.tls, settings.timeout)
        .await?;
    let step = report.start("Capabilities after TLS");
    match capabilities(conn, settings).await {
        Ok(caps) => {
            report.pass(step, caps_text(caps.as_deref()));
            Ok(caps)
        }
        Err(f) => Err(report.fail(step, f)),
    }
}

async fn login(
    report: &mut Report,
    settings: &Settings,
    requested: LoginMechanism,
    conn: &mut Pop,
    caps: Option<&[Capability]>,
) -> Result<(), Failed> {
    let step = report.start("Login");
    let sasl: Vec<String> = caps
        .unwrap_or_default()
        .iter()
        .find_map(|c| match c {
            Capability::Sasl(m) => Some(m.iter().map(|m| m.to_ascii_uppercase()).collect()),
            _ => None,
        })
        .unwrap_or_default();
    let offers_user = caps.is_none_or(|c| c.contains(&Capability::User));
    let offered = |m: &str| sasl.iter().any(|s| s == m);
    let mechanism = match requested {
        LoginMechanism::Auto if offered("PLAIN") => LoginMechanism::Plain,
        LoginMechanism::Auto if offered("LOGIN") => LoginMechanism::Login,
        LoginMechanism::Auto if offers_user => LoginMechanism::User,
        LoginMechanism::Auto if offered("NTLM") => LoginMechanism::Ntlm,
        LoginMechanism::Auto => {
            return Err(report.fail(
                step,
                Failure::new(
                    format!(
                        "the server offers no login method this test knows (SASL: {})",
                        if sasl.is_empty() { "none".to_owned() } else { sasl.join(" ") }
                    ),
                    "on a connection without TLS servers often hide their login methods: try --security starttls or tls",
                ),
            ));
        }
        m => m,
    };
    let name = mechanism_name(mechanism);
    let is_offered = match mechanism {
        LoginMechanism::User => offers_user,
        _ => offered(name),
    };
    if !is_offered {
        return Err(report.fail(
            step,
            Failure::new(
                format!(
                    "the server does not offer {}",
                    if mechanism == LoginMechanism::User { "USER/PASS".to_owned() } else { format!("SASL {name}") }
                ),
                format!(
                    "offered: SASL {}{}; choose one with --mechanism, or use TLS (servers hide clear-text methods without it)",
                    if sasl.is_empty() { "none".to_owned() } else { sasl.join(" ") },
                    if offers_user { ", USER" } else { "" }
                ),
            ),
        ));
    }
    let tls = conn.stream().is_some_and(Stream::is_tls);
    if let Err(f) = settings.check_clear_text(mechanism, name, tls) {
        return Err(report.fail(step, f));
    }
    let result = match mechanism {
        LoginMechanism::User => user_pass(conn, settings).await,
        LoginMechanism::Plain | LoginMechanism::Login | LoginMechanism::Ntlm => {
            sasl_login(conn, settings, mechanism).await
        }
        LoginMechanism::Auto => Err(Failure::new("no mechanism chosen", "report a bug")),
    };
    match result {
        Ok(()) => {
            report.pass(step, format!("logged in as {} with {name}", settings.user));
            Ok(())
        }
        Err(f) => Err(report.fail(step, f)),
    }
}

fn mechanism_name(m: LoginMechanism) -> &'static str {
    match m {
        LoginMechanism::Auto => "AUTO",
        LoginMechanism::Plain => "PLAIN",
        LoginMechanism::Login => "LOGIN",
        LoginMechanism::Ntlm => "NTLM",
        LoginMechanism::User => "USER",
    }
}

async fn user_pass(conn: &mut Pop, settings: &Settings) -> Result<(), Failure> {
    let user = Param::new(&settings.user).map_err(|_| {
        Failure::new(
            "the user name cannot be sent with USER (spaces or control characters)",
            "use --mechanism plain",
        )
    })?;
    match request_any(conn, settings, Command::User(user)).await? {
        Reply::Status(s) if s.status == Status::Ok => {}
        Reply::Status(s) => return Err(auth_failed(&s)),
        other => return Err(unexpected("USER", &other)),
    }
    let pass = PassText::new(settings.password.expose().as_bytes()).map_err(|_| {
        Failure::new(
            "the password cannot be sent with PASS (empty or control characters)",
            "use --mechanism plain",
        )
    })?;
    match request_any(conn, settings, Command::Pass(pass)).await? {
        Reply::Status(s) if s.status == Status::Ok => Ok(()),
        Reply::Status(s) => Err(auth_failed(&s)),
        other => Err(unexpected("PASS", &other)),
    }
}

async fn sasl_login(
    conn: &mut Pop,
    settings: &Settings,
    mechanism: LoginMechanism,
) -> Result<(), Failure> {
    let mut sasl = super::sasl::SaslClient::new(mechanism, settings, conn.stream())?;
    let name = mechanism_name(mechanism);
    let id = send(
        conn,
        Command::Auth {
            mechanism: Mechanism::new(name).map_err(|_| Failure::new("bad mechanism", "bug"))?,
            initial_response: sasl.initial_response(),
        },
    )?;
    loop {
        match answer(conn, settings, id).await? {
            Answer::Challenge(challenge) => {
                let response = sasl.respond(&challenge)?;
                if conn
                    .session
                    .sasl_respond(Instant::now(), id, &response)
                    .is_err()
                {
                    return Err(Failure::new(
                        "the SASL exchange ended early",
                        "report a bug",
                    ));
                }
            }
            Answer::Reply(Reply::Status(s)) if s.status == Status::Ok => return Ok(()),
            Answer::Reply(Reply::Status(s)) => return Err(auth_failed(&s)),
            Answer::Reply(other) => return Err(unexpected("AUTH", &other)),
            Answer::TlsReady => return Err(Failure::new("unexpected TLS switch", "report a bug")),
        }
    }
}

fn auth_failed(s: &StatusLine) -> Failure {
    let text = status_text(s);
    let hint = match s.code.as_ref().map(|c| c.as_str()) {
        Some("IN-USE") => "another client holds the mailbox: close it, or wait for it to finish",
        Some("LOGIN-DELAY") => "the server limits how often this user may log in: wait and retry",
        Some("SYS/TEMP") => "the server has a temporary problem: retry later, check its logs",
        Some("SYS/PERM") => "the server has a permanent problem with this mailbox: check its logs",
        _ if text.contains("TLS") => {
            "the server wants TLS before this login: use --security starttls or tls"
        }
        _ => "check the user name and password, and that the mailbox may use POP3 (PopEnabled)",
    };
    Failure::new(format!("authentication failed: {text}"), hint)
}

fn send(conn: &mut Pop, command: Command<'_>) -> Result<RequestId, Failure> {
    conn.session
        .send_command(Instant::now(), command)
        .map_err(|_| Failure::new("the session is already closed", "see the step before"))
}

/// Sends `command` and waits for its reply (`-ERR` is a failure).
async fn request(
    conn: &mut Pop,
    settings: &Settings,
    command: Command<'_>,
) -> Result<Reply, Failure> {
    let id = send(conn, command)?;
    expect_reply(conn, settings, id).await
}

/// Sends `command` and waits for its reply, `-ERR` included.
async fn request_any(
    conn: &mut Pop,
    settings: &Settings,
    command: Command<'_>,
) -> Result<Reply, Failure> {
    let id = send(conn, command)?;
    match answer(conn, settings, id).await? {
        Answer::Reply(r) => Ok(r),
        _ => Err(Failure::new("unexpected answer", "report a bug")),
    }
}

/// Waits for the terminal answer to `id`.
async fn answer(conn: &mut Pop, settings: &Settings, id: RequestId) -> Result<Answer, Failure> {
    let deadline = settings.deadline();
    loop {
        match conn.next_event(deadline).await {
            Ok(ClientEvent::ReplyReceived { id: got, reply }) if got == id => {
                return Ok(Answer::Reply(reply));
            }
            Ok(ClientEvent::ReplyFailed { id: got, error }) if got == id => {
                return Err(reply_failure(&error));
            }
            Ok(ClientEvent::SaslChallengeReceived { id: got, challenge }) if got == id => {
                return Ok(Answer::Challenge(challenge));
            }
            Ok(ClientEvent::TlsReady { id: got }) if got == id => return Ok(Answer::TlsReady),
            Ok(ClientEvent::Closed { reason }) => return Err(closed(&reason)),
            Ok(_) => {}
            Err(e) => return Err(drive_failure(&e, settings.timeout, "reply")),
        }
    }
}

async fn expect_reply(
    conn: &mut Pop,
    settings: &Settings,
    id: RequestId,
) -> Result<Reply, Failure> {
    match answer(conn, settings, id).await? {
        Answer::Reply(Reply::Status(s)) if s.status == Status::Err => Err(Failure::new(
            format!("the server answered {}", status_text(&s)),
            "see the server's text; its logs may say more",
        )),
        Answer::Reply(r) => Ok(r),
        _ => Err(Failure::new("unexpected answer", "report a bug")),
    }
}

fn reply_failure(error: &ReplyError) -> Failure {
    Failure::new(
        format!("no usable reply: {error}"),
        "the server's reply broke the protocol or a limit; check the server",
    )
}

fn unexpected(command: &str, reply: &Reply) -> Failure {
    let text = match reply {
        Reply::Status(s) => status_text(s),
        other => format!("{other:?}"),
    };
    Failure::new(
        format!("unexpected reply to {command}: {text}"),
        "the server does not follow RFC 1939 here",
    )
}

fn status_text(s: &StatusLine) -> String {
    let status = if s.status == Status::Ok {
        "+OK"
    } else {
        "-ERR"
    };
    let code = s
        .code
        .as_ref()
        .map(|c| format!(" [{c}]"))
        .unwrap_or_default();
    format!("{status}{code} {}", s.text).trim_end().to_owned()
}

fn caps_text(caps: Option<&[Capability]>) -> String {
    let Some(caps) = caps else {
        return "unknown (no CAPA)".into();
    };
    let names: Vec<String> = caps
        .iter()
        .map(|c| {
            let mut line = Vec::new();
            c.encode(&mut line);
            String::from_utf8_lossy(&line).trim_end().to_owned()
        })
        .collect();
    names.join(", ")
}

/// The clear-text login methods offered: USER, SASL PLAIN, SASL LOGIN.
fn clear_text_offered(caps: Option<&[Capability]>) -> Vec<&'static str> {
    let mut out = Vec::new();
    for c in caps.unwrap_or_default() {
        match c {
            Capability::User => out.push("USER"),
            Capability::Sasl(m) => {
                if m.iter().any(|m| m.eq_ignore_ascii_case("PLAIN")) {
                    out.push("SASL PLAIN");
                }
                if m.iter().any(|m| m.eq_ignore_ascii_case("LOGIN")) {
                    out.push("SASL LOGIN");
                }
            }
            _ => {}
        }
    }
    out
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The first header field `name` of a message, unfolded, cut at 100 characters.
pub(crate) fn header_value(message: &[u8], name: &str) -> Option<String> {
    let end = memfind(message, b"\r\n\r\n")
        .or_else(|| memfind(message, b"\n\n"))
        .unwrap_or(message.len());
    let head = String::from_utf8_lossy(message.get(..end).unwrap_or_default()).into_owned();
    let mut value: Option<String> = None;
    for line in head.lines() {
        if let Some(v) = value.as_mut() {
            if line.starts_with([' ', '\t']) {
                v.push(' ');
                v.push_str(line.trim());
                continue;
            }
            break;
        }
        if let Some((field, rest)) = line.split_once(':')
            && field.eq_ignore_ascii_case(name)
        {
            value = Some(rest.trim().to_owned());
        }
    }
    value.map(|v| v.chars().take(100).collect())
}

fn memfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values() {
        let m = b"From: a\r\nSubject: Hello\r\n  world\r\nX: y\r\n\r\nSubject: body\r\n";
        assert_eq!(header_value(m, "subject").as_deref(), Some("Hello world"));
        assert_eq!(header_value(m, "x").as_deref(), Some("y"));
        assert_eq!(header_value(m, "to"), None);
        assert_eq!(
            header_value(b"Subject: lf\n\nbody", "Subject").as_deref(),
            Some("lf")
        );
    }

    #[test]
    fn clear_text_detection() {
        let caps = vec![
            Capability::Top,
            Capability::User,
            Capability::Sasl(vec!["PLAIN".into(), "NTLM".into()]),
        ];
        assert_eq!(clear_text_offered(Some(&caps)), ["USER", "SASL PLAIN"]);
        assert!(clear_text_offered(Some(&[Capability::Stls])).is_empty());
        assert_eq!(caps_text(Some(&caps)), "TOP, USER, SASL PLAIN NTLM");
    }

    #[test]
    fn ports() {
        assert_eq!(default_port(Security::Tls), 995);
        assert_eq!(default_port(Security::Starttls), 110);
        assert_eq!(default_port(Security::Plain), 110);
    }
}
