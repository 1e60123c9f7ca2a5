//! Autodiscover against the real binary over TLS (issue 7): Python (`$CAS_PYTHON` with
//! `requests` + `requests_ntlm`) posts Outlook's standard POX request with NTLM and with
//! Basic, validates the 2006a XML the way Outlook reads it, checks the 500 error for an
//! unknown address and the anonymous 401, and fetches Mozilla autoconfig.

mod common;

use std::path::Path;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{Server, client_available, free_port, python, run};

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/autodiscover_client.py")
}

#[test]
fn python_outlook_client_reads_the_settings() {
    if !client_available(
        "python_outlook_client_reads_the_settings",
        &python(),
        &["-c", "import requests, requests_ntlm"],
    ) {
        return;
    }
    let (pop3, pop3s, https) = (free_port(), free_port(), free_port());
    let args = vec![
        "--pop3-listen".to_owned(),
        format!("127.0.0.1:{pop3}"),
        "--pop3s-listen".to_owned(),
        format!("127.0.0.1:{pop3s}"),
        "--imap-listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--imaps-listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--https-listen".to_owned(),
        format!("127.0.0.1:{https}"),
        "--rpc-backend-listen".to_owned(),
        format!("127.0.0.1:{}", free_port()),
    ];
    let server = Server::start_program(env!("CARGO_BIN_EXE_cas-server"), &args, (pop3, pop3s));
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::net::TcpStream::connect(("127.0.0.1", https)).is_err() {
        assert!(Instant::now() < deadline, "{}", server.log());
        sleep(Duration::from_millis(50));
    }
    let base = format!("https://localhost:{https}");
    let password = server.password("alice");
    for method in ["ntlm", "basic"] {
        let out = run(Command::new(python())
            .arg(script())
            .arg(&base)
            .arg(server.cert())
            .args(["alice", &password, "alice@localhost", method]));
        assert!(
            out.status.success(),
            "{method}: {}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            server.log()
        );
        let found: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let challenges: Vec<&str> = found["challenges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert!(challenges.contains(&"NTLM"), "{found:#}");
        assert!(challenges.contains(&"Negotiate"), "{found:#}");
        let user = &found["user"];
        assert_eq!(user["AutoDiscoverSMTPAddress"], "alice@localhost");
        assert_eq!(user["DisplayName"], "alice");
        assert!(
            user["LegacyDN"]
                .as_str()
                .unwrap()
                .ends_with("/cn=Recipients/cn=alice"),
            "{found:#}"
        );
        let p = &found["protocols"];
        // Exchange's defaults: Negotiate for external clients, NTLM inside.
        assert_eq!(p["EXPR"]["Server"], format!("localhost:{https}"));
        assert_eq!(p["EXPR"]["SSL"], "On");
        assert_eq!(p["EXPR"]["AuthPackage"], "Negotiate");
        assert_eq!(p["EXPR"]["CertPrincipalName"], "msstd:localhost");
        assert_eq!(p["EXCH"]["Server"], "localhost");
        assert_eq!(p["EXCH"]["AuthPackage"], "Ntlm");
        assert_eq!(p["POP3"]["Port"], pop3s.to_string());
        assert_eq!(p["POP3"]["Encryption"], "SSL");
        assert_eq!(p["POP3"]["LoginName"], "alice");
        assert_eq!(
            found["unknown_address_error"],
            serde_json::json!(["500", "The e-mail address cannot be found."])
        );
        let pop3_servers: Vec<(String, String)> = found["autoconfig"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["type"] == "pop3")
            .map(|s| {
                (
                    s["port"].as_str().unwrap().to_owned(),
                    s["socketType"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            pop3_servers,
            [
                (pop3s.to_string(), "SSL".to_owned()),
                (pop3.to_string(), "STARTTLS".to_owned())
            ],
            "{found:#}"
        );
    }

    // A wrong password never reaches the responder.
    let out = run(Command::new(python())
        .arg(script())
        .arg(&base)
        .arg(server.cert())
        .args(["alice", "wrong-password", "alice@localhost", "ntlm"]));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
