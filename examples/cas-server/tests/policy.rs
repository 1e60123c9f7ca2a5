//! Black-box tests of the client access policy: the real `cas-server` binary, its admin
//! subcommands editing `policy.toml`, live reloads, and independent clients (Python's
//! `poplib`, `curl`) over loopback.
//!
//! A test whose client is not installed prints `SKIP` and passes, unless
//! `CAS_REQUIRE_INTEROP=1` is set (as `.ci/run` does), in which case it fails.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};

use common::{Server, assert_success, client_available, python, run, script};
use serde_json::Value;

const POPLIB: &[&str] = &["-c", "import poplib, ssl, email"];

/// Runs `pop3_policy.py MODE` against the server's POP3S port.
fn policy_script(server: &Server, mode: &str, args: &[&str]) -> Output {
    run(Command::new(python())
        .arg(script("pop3_policy.py"))
        .arg(mode)
        .arg("localhost")
        .arg(server.pop3s_port.to_string())
        .arg(server.cert())
        .args(args))
}

fn json(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// A POP3S login of `user` that must end as `expect` (`ok` or a response code).
fn login(server: &Server, user: &str, expect: &str) -> Value {
    let out = policy_script(server, "login", &[user, &server.password(user), expect]);
    assert_success(&out, server);
    json(&out)
}

#[test]
fn pop_disabled_for_one_user_is_refused_with_auth_while_another_works() {
    if !client_available("policy_pop_disabled", &python(), POPLIB) {
        return;
    }
    let server = Server::start();
    login(&server, "alice", "ok");
    let table = server.admin_ok(&["set-casmailbox", "alice", "--pop-enabled", "false"]);
    assert!(
        table.contains("alice") && table.contains("False"),
        "{table}"
    );
    server.reload();
    let refused = login(&server, "alice", "AUTH");
    let reply = refused["reply"].as_str().unwrap();
    assert!(reply.contains("POP3 access is disabled"), "{reply}");
    login(&server, "bob", "ok");
    assert!(server.log().contains("POP3 login refused by policy"));
}

#[test]
fn ou_wide_change_applies_to_every_mailbox_under_the_ou() {
    if !client_available("policy_ou", &python(), POPLIB) {
        return;
    }
    let server = Server::start();
    let out = server.admin_ok(&[
        "set-casmailbox",
        "--ou",
        "corp",
        "--pop-enabled",
        "false",
        "--json",
    ]);
    let changed: Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = changed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    server.reload();
    login(&server, "alice", "AUTH");
    login(&server, "bob", "AUTH");
    // A deeper OU only: bob (corp/engineering) again, alice (corp/sales) still refused.
    server.admin_ok(&[
        "set-casmailbox",
        "--ou",
        "corp/engineering",
        "--pop-enabled",
        "true",
    ]);
    server.reload();
    login(&server, "bob", "ok");
    login(&server, "alice", "AUTH");
    let listing = server.admin_ok(&["get-casmailbox", "--ou", "corp/sales"]);
    assert!(
        listing.contains("alice") && !listing.contains("bob"),
        "{listing}"
    );
}

#[test]
fn third_connection_from_one_address_is_refused_with_a_clear_message() {
    if !client_available("policy_max_ip", &python(), POPLIB) {
        return;
    }
    let server = Server::start();
    server.admin_ok(&["set-popsettings", "--max-connection-from-single-ip", "2"]);
    server.reload();
    let out = policy_script(&server, "connections", &["3"]);
    assert_success(&out, &server);
    let greetings = json(&out)["greetings"].clone();
    let g: Vec<&str> = greetings
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(g[0].starts_with("+OK") && g[1].starts_with("+OK"), "{g:?}");
    assert!(
        g[2].starts_with("-ERR [SYS/TEMP]")
            && g[2].contains("Too many connections from your address"),
        "{g:?}"
    );
    // The refused and the closed connections released their slots.
    let out = policy_script(&server, "connections", &["2"]);
    let again = json(&out)["greetings"].to_string();
    assert!(!again.contains("-ERR"), "{again}");
}

fn curl_plain(server: &Server, mechanism: &str) -> Output {
    let user = format!("alice:{}", server.password("alice"));
    run(Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "30"])
        .args(["--user", &user, "--login-options", mechanism])
        .arg(format!("pop3://localhost:{}/", server.pop3_port)))
}

#[test]
fn login_type_secure_login_versus_plain_text_login_with_curl() {
    if !client_available("policy_login_type", "curl", &["--version"]) {
        return;
    }
    let server = Server::start();
    // SecureLogin (the default): no clear-text login without TLS.
    for mechanism in ["AUTH=PLAIN", "AUTH=LOGIN"] {
        let out = curl_plain(&server, mechanism);
        assert!(
            !out.status.success(),
            "{mechanism} accepted under SecureLogin"
        );
    }
    let shown = server.admin_ok(&["get-popsettings"]);
    assert!(
        shown.contains("LoginType") && shown.contains("SecureLogin"),
        "{shown}"
    );
    server.admin_ok(&["set-popsettings", "--login-type", "PlainTextLogin"]);
    server.reload();
    for mechanism in ["AUTH=PLAIN", "AUTH=LOGIN"] {
        let out = curl_plain(&server, mechanism);
        assert_success(&out, &server);
        assert!(
            String::from_utf8_lossy(&out.stdout).lines().count() >= 2,
            "no listing with {mechanism}"
        );
    }
    // And back: a reload takes it away again for new connections.
    server.admin_ok(&["set-popsettings", "--login-type", "SecureLogin"]);
    server.reload();
    assert!(!curl_plain(&server, "AUTH=PLAIN").status.success());
}

/// Starts `pop3_policy.py hold` for `user`; returns the child once it logged in.
fn hold(server: &Server, user: &str) -> std::process::Child {
    let mut child = Command::new(python())
        .arg(script("pop3_policy.py"))
        .args(["hold", "localhost", &server.pop3s_port.to_string()])
        .arg(server.cert())
        .args([user, &server.password(user)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "READY", "{}", server.log());
    child
}

/// Lets a held session send its next command; returns what it saw.
fn release(mut child: std::process::Child) -> Value {
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

#[test]
fn reload_while_sessions_are_open_closes_revoked_ones_at_their_next_command() {
    if !client_available("policy_reload", &python(), POPLIB) {
        return;
    }
    let server = Server::start();
    let before = server.maildir_files("alice");
    let alice = hold(&server, "alice");
    let bob = hold(&server, "bob");
    // SIGHUP.
    server.admin_ok(&["set-casmailbox", "alice", "--pop-enabled", "false"]);
    server.reload();
    let seen = release(alice);
    assert_eq!(seen["closed"], Value::Bool(true), "{seen}");
    let reply = seen["reply"].as_str().unwrap_or_default();
    assert!(reply.contains("POP3 access is disabled"), "{seen}");
    let seen = release(bob);
    assert_eq!(seen["closed"], Value::Bool(false), "{seen}");
    assert_eq!(server.maildir_files("alice"), before);
    login(&server, "alice", "AUTH");

    // A file change alone (no signal): the poll picks it up within ~2 s.
    let bob = hold(&server, "bob");
    let reloads = server.policy_reloads();
    server.admin_ok(&["set-casmailbox", "bob", "--pop-enabled", "false"]);
    server.wait_for_reload(reloads);
    let seen = release(bob);
    assert_eq!(seen["closed"], Value::Bool(true), "{seen}");
    login(&server, "bob", "AUTH");

    // A broken file is logged and the policy in force stays.
    let policy = server.data_dir().join("policy.toml");
    let good = fs::read_to_string(&policy).unwrap();
    fs::write(&policy, "[PopSettings]\nMaxCommandSize = 99999\n").unwrap();
    server.reload_expecting_failure();
    login(&server, "bob", "AUTH");
    fs::write(
        &policy,
        good.replace("PopEnabled = false", "PopEnabled = true"),
    )
    .unwrap();
    server.reload();
    login(&server, "alice", "ok");
}

#[test]
fn protocol_log_has_the_commands_and_no_passwords() {
    if !client_available("policy_protocol_log", &python(), POPLIB) {
        return;
    }
    let server = Server::start();
    server.admin_ok(&["set-popsettings", "--protocol-log-enabled", "true"]);
    server.reload();
    let out = policy_script(&server, "retr", &["alice", &server.password("alice")]);
    assert_success(&out, &server);
    login(&server, "bob", "ok");
    let out = policy_script(&server, "login", &["bob", "wrong-password", "AUTH"]);
    assert_success(&out, &server);
    let log = fs::read_to_string(server.data_dir().join("logs/pop3/pop3.log")).unwrap();
    eprintln!("{log}");
    assert!(log.starts_with("#Software: cas-server"), "{log}");
    assert!(log.contains("#Fields: date-time,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context"));
    for expected in [
        ",+,,POP3S",
        ",<,USER alice,",
        ",<,PASS ****,",
        ",<,STAT,",
        ",<,UIDL,",
        ",<,LIST,",
        ",<,RETR 1,",
        ",<,QUIT,",
        ",>,+OK alice's maildrop has ",
        ",-,,",
    ] {
        assert!(log.contains(expected), "missing {expected:?} in\n{log}");
    }
    assert!(log.contains("-ERR [AUTH] authentication failed"), "{log}");
    // One line per command and per status line: alice logged in once, bob twice.
    assert_eq!(log.matches(",<,USER alice,").count(), 1, "{log}");
    assert_eq!(log.matches(",<,PASS ****,").count(), 3, "{log}");
    assert_eq!(log.matches(",<,RETR 1,").count(), 1, "{log}");
    assert_eq!(log.matches(",>,+OK 438 octets,").count(), 1, "{log}");
    for user in ["alice", "bob"] {
        let password = server.password(user);
        assert!(
            !log.contains(&password),
            "the password of {user} is in the protocol log"
        );
    }
    assert!(!log.contains("wrong-password"));
}

#[test]
fn admin_commands_print_tables_json_and_clear_errors() {
    let server = Server::start();
    let table = server.admin_ok(&["get-casmailbox"]);
    let lines: Vec<&str> = table.lines().filter(|l| !l.is_empty()).collect();
    assert!(
        lines[0].starts_with("Name") && lines[0].contains("PopEnabled"),
        "{table}"
    );
    assert!(lines[1].starts_with("----"), "{table}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("alice") && l.contains("corp/sales")),
        "{table}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("bob") && l.contains("corp/engineering")),
        "{table}"
    );

    let one: Value =
        serde_json::from_str(&server.admin_ok(&["get-casmailbox", "alice", "--json"])).unwrap();
    assert_eq!(one["Name"], "alice");
    assert_eq!(one["PopEnabled"], true);
    assert_eq!(one["OrganizationalUnit"], "corp/sales");
    let list = server.admin_ok(&["get-casmailbox", "bob"]);
    assert!(
        list.contains("OrganizationalUnit") && list.contains(": corp/engineering"),
        "{list}"
    );

    let pop: Value =
        serde_json::from_str(&server.admin_ok(&["get-popsettings", "--json"])).unwrap();
    assert_eq!(pop["LoginType"], "SecureLogin");
    assert_eq!(pop["MaxCommandSize"], 512);
    let set: Value = serde_json::from_str(&server.admin_ok(&[
        "set-popsettings",
        "--max-connections-per-user",
        "16",
        "--message-retrieval-sort-order",
        "descending",
        "--authenticated-connection-timeout",
        "00:20:00",
        "--json",
    ]))
    .unwrap();
    assert_eq!(set["MaxConnectionsPerUser"], 16);
    assert_eq!(set["MessageRetrievalSortOrder"], "Descending");
    assert_eq!(set["AuthenticatedConnectionTimeout"], "00:20:00");
    let imap = server.admin_ok(&["set-imapsettings", "--max-command-size", "4096"]);
    assert!(
        imap.contains("MaxCommandSize") && imap.contains("4096"),
        "{imap}"
    );

    let oa = server.admin_ok(&[
        "enable-outlookanywhere",
        "--external-hostname",
        "mail.example.com",
        "--default-authentication-method",
        "Ntlm",
        "--ssl-offloading",
        "false",
    ]);
    assert!(
        oa.contains("mail.example.com") && oa.contains("Ntlm"),
        "{oa}"
    );
    let oa: Value =
        serde_json::from_str(&server.admin_ok(&["disable-outlookanywhere", "--json"])).unwrap();
    assert_eq!(oa["Enabled"], false);
    assert_eq!(oa["SSLOffloading"], false);
    let blocked = server.admin_ok(&[
        "set-casmailbox",
        "bob",
        "--mapi-block-outlook-rpc-http",
        "true",
        "--mapi-block-outlook-versions",
        "-13.32767.65535;15.0.0-",
        "--json",
    ]);
    let blocked: Value = serde_json::from_str(&blocked).unwrap();
    assert_eq!(blocked[0]["MAPIBlockOutlookRpcHttp"], true);
    assert_eq!(
        blocked[0]["MAPIBlockOutlookVersions"],
        "-13.32767.65535;15.0.0-"
    );

    // Errors name the parameter and the allowed range, and change nothing.
    let policy = fs::read_to_string(server.data_dir().join("policy.toml")).unwrap();
    let err = |args: &[&str]| {
        let out = server.admin(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8(out.stderr).unwrap()
    };
    let e = err(&["set-popsettings", "--max-command-size", "2000"]);
    assert!(
        e.contains("MaxCommandSize") && e.contains("40..=1024"),
        "{e}"
    );
    let e = err(&["set-imapsettings", "--max-command-size", "100"]);
    assert!(
        e.contains("MaxCommandSize") && e.contains("1024..=16384"),
        "{e}"
    );
    let e = err(&[
        "set-popsettings",
        "--pre-authenticated-connection-timeout",
        "02:00:00",
    ]);
    assert!(e.contains("PreAuthenticatedConnectionTimeout"), "{e}");
    let e = err(&["set-popsettings", "--login-type", "Sometimes"]);
    assert!(e.contains("SecureLogin"), "{e}");
    let e = err(&["set-casmailbox", "nobody", "--pop-enabled", "false"]);
    assert!(e.contains("nobody"), "{e}");
    let e = err(&["set-casmailbox", "alice", "--pop-enabled", "maybe"]);
    assert!(e.contains("true or false"), "{e}");
    let e = err(&[
        "set-casmailbox",
        "alice",
        "--mapi-block-outlook-versions",
        "15.x-",
    ]);
    assert!(e.contains("MAPIBlockOutlookVersions"), "{e}");
    let e = err(&["set-casmailbox", "alice"]);
    assert!(e.contains("at least one setting"), "{e}");
    assert_eq!(
        fs::read_to_string(server.data_dir().join("policy.toml")).unwrap(),
        policy
    );
}

#[test]
fn mailbox_admin_commands_take_effect_on_the_running_server() {
    if !client_available("policy_mailboxes", &python(), POPLIB) {
        return;
    }
    let server = Server::start();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cas-server"))
        .arg("--data-dir")
        .arg(server.data_dir())
        .args([
            "new-mailbox",
            "carol",
            "--ou",
            "corp/sales",
            "--password-stdin",
            "--json",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"carol-Pass-1\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["OrganizationalUnit"], "corp/sales");
    assert!(created.get("Password").is_none());
    server.reload();
    let out = policy_script(&server, "login", &["carol", "carol-Pass-1", "ok"]);
    assert_success(&out, &server);
    // An OU-wide change reaches the new mailbox too.
    server.admin_ok(&[
        "set-casmailbox",
        "--ou",
        "corp/sales",
        "--pop-enabled",
        "false",
    ]);
    server.reload();
    let out = policy_script(&server, "login", &["carol", "carol-Pass-1", "AUTH"]);
    assert_success(&out, &server);
    // A generated password is printed once and works.
    server.admin_ok(&["set-casmailbox", "carol", "--pop-enabled", "true"]);
    let changed: Value =
        serde_json::from_str(&server.admin_ok(&["set-mailbox-password", "carol", "--json"]))
            .unwrap();
    let password = changed["Password"].as_str().unwrap().to_owned();
    server.reload();
    let out = policy_script(&server, "login", &["carol", &password, "ok"]);
    assert_success(&out, &server);
    let removed = server.admin_ok(&["remove-mailbox", "carol"]);
    assert!(removed.contains("carol"), "{removed}");
    server.reload();
    let out = policy_script(&server, "login", &["carol", &password, "AUTH"]);
    assert_success(&out, &server);
    let e = server.admin(&["remove-mailbox", "carol"]);
    assert!(!e.status.success());
}

#[test]
fn mime_format_and_sort_order_on_retr() {
    if !client_available("policy_mime", &python(), POPLIB) {
        return;
    }
    let server = Server::start();
    let stored = policy_script(&server, "retr", &["alice", &server.password("alice")]);
    assert_success(&stored, &server);
    let stored = json(&stored);
    let agenda = &stored["messages"][1];
    assert_eq!(agenda["subject"], "Agenda and budget (MIME)");
    assert!(
        agenda["types"].to_string().contains("text/html"),
        "{agenda}"
    );

    server.admin_ok(&[
        "set-popsettings",
        "--message-retrieval-mime-format",
        "TextOnly",
        "--message-retrieval-sort-order",
        "Descending",
    ]);
    server.reload();
    let out = policy_script(&server, "retr", &["alice", &server.password("alice")]);
    assert_success(&out, &server);
    let seen = json(&out);
    let messages = seen["messages"].as_array().unwrap();
    // Descending: message 1 is the newest (the last sample).
    assert_eq!(messages[0]["subject"], "Stored with CRLF");
    let agenda = messages
        .iter()
        .find(|m| m["subject"] == "Agenda and budget (MIME)")
        .unwrap();
    let types = agenda["types"].to_string();
    assert!(
        types.contains("text/plain") && !types.contains("text/html"),
        "{agenda}"
    );
    assert!(
        agenda["text"].as_str().unwrap().contains("Café budget"),
        "{agenda}"
    );
    assert_eq!(agenda["attachments"][0], "budget.csv");

    // HtmlOnly for alice alone (PopUseProtocolDefaults false), with exact sizes.
    server.admin_ok(&[
        "set-casmailbox",
        "alice",
        "--pop-use-protocol-defaults",
        "false",
        "--pop-messages-retrieval-mime-format",
        "HtmlOnly",
        "--pop-enable-exact-rfc822-size",
        "true",
    ]);
    server.reload();
    let out = policy_script(&server, "retr", &["alice", &server.password("alice")]);
    assert_success(&out, &server);
    let seen = json(&out);
    for (i, m) in seen["messages"].as_array().unwrap().iter().enumerate() {
        let types = m["types"].to_string();
        assert!(
            types.contains("\"text/html\"") && !types.contains("\"text/plain\""),
            "{m}"
        );
        // Exact sizes: LIST reports what RETR sends.
        assert_eq!(seen["sizes"][i], m["size"], "{m}");
    }
    // bob keeps the protocol default (TextOnly).
    let out = policy_script(&server, "retr", &["bob", &server.password("bob")]);
    let bob = json(&out);
    let agenda = bob["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["subject"] == "Agenda and budget (MIME)")
        .unwrap()
        .clone();
    assert!(
        !agenda["types"].to_string().contains("text/html"),
        "{agenda}"
    );
}

#[test]
fn a_data_directory_without_policy_file_runs_with_exchange_defaults() {
    if !client_available("policy_missing_file", &python(), POPLIB) {
        return;
    }
    let mut server = Server::start();
    server.terminate();
    fs::remove_file(server.data_dir().join("policy.toml")).unwrap();
    server.restart();
    login(&server, "alice", "ok");
    let shown = server.admin_ok(&["get-casmailbox", "alice", "--json"]);
    let alice: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(alice["PopEnabled"], true);
    assert_eq!(alice["OrganizationalUnit"], Value::Null);
    // The first edit writes the file; the running server follows it.
    server.admin_ok(&["set-casmailbox", "alice", "--pop-enabled", "false"]);
    assert!(server.data_dir().join("policy.toml").exists());
    server.reload();
    login(&server, "alice", "AUTH");
    // The defaults let the RPC proxy reach this machine only; a `*` server is warned about.
    let shown = server.admin_ok(&["get-outlookanywhere", "--json"]);
    let oa: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(
        oa["ValidPorts"],
        serde_json::json!([
            "localhost:6001-6004",
            "localhost:593",
            "127.0.0.1:6001-6004",
            "127.0.0.1:593"
        ])
    );
    assert!(!server.log().contains("allows any server"));
    server.admin_ok(&[
        "set-outlookanywhere",
        "--valid-ports",
        "*:6001-6004,mbx01:593",
    ]);
    server.reload();
    let log = server.log();
    assert!(
        log.lines()
            .any(|l| l.contains("allows any server") && l.contains("*:6001-6004")),
        "{log}"
    );
}
