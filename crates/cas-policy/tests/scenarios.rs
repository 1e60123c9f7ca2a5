//! End-to-end admin scenarios through the public API: load a policy file, change it the
//! way the admin commands do, write it back, reload, and check the decisions the
//! server will enforce.

use std::net::IpAddr;
use std::time::Duration;

use cas_policy::*;

const DEMO: &str = r#"
[PopSettings]
LoginType = "PlainTextLogin"

[ImapSettings]
LoginType = "PlainTextLogin"

[CASMailbox.alice]
OrganizationalUnit = "corp/sales"

[CASMailbox.bob]
OrganizationalUnit = "corp/engineering"

[CASMailbox.carol]
OrganizationalUnit = "corp/sales/emea"
"#;

const NOW: Duration = Duration::ZERO;

fn localhost() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

/// What the admin command does: edit, write, and the server reloads from the text.
fn edit_and_reload(text: &str, edit: impl FnOnce(&mut PolicyConfig)) -> (String, Policy) {
    let mut config = PolicyConfig::from_toml_str(text).unwrap();
    edit(&mut config);
    let written = config.to_toml_string();
    let policy = Policy::from_toml_str(&written).unwrap();
    assert_eq!(policy.config(), &config);
    (written, policy)
}

fn pop_login(policy: &Policy, user: &str) -> Decision {
    policy.authorize_login(
        user,
        Protocol::Pop3,
        AuthMechanism::UserPass,
        false,
        localhost(),
        NOW,
    )
}

#[test]
fn pop_disabled_for_one_user_only() {
    let (_, policy) = edit_and_reload(DEMO, |c| {
        c.set_cas_mailbox(
            &Target::User("alice".into()),
            &CasMailboxChange {
                pop_enabled: Some(false),
                ..Default::default()
            },
        )
        .unwrap();
    });
    let denial = pop_login(&policy, "alice").into_result().unwrap_err();
    assert_eq!(
        format!("-ERR [{}] {}", denial.pop3_code(), denial.message),
        "-ERR [AUTH] POP3 access is disabled for this account"
    );
    assert!(pop_login(&policy, "bob").is_allowed());
    // IMAP is untouched for alice.
    assert!(
        policy
            .authorize_login(
                "alice",
                Protocol::Imap4,
                AuthMechanism::UserPass,
                false,
                localhost(),
                NOW
            )
            .is_allowed()
    );
}

#[test]
fn ou_wide_change_reaches_every_user_below() {
    let (text, policy) = edit_and_reload(DEMO, |c| {
        let users = c
            .set_cas_mailbox(
                &Target::OrganizationalUnit("corp/sales".parse().unwrap()),
                &CasMailboxChange {
                    imap_enabled: Some(false),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(users, ["alice", "carol"]);
    });
    for user in ["alice", "carol"] {
        let d = policy.authorize_login(
            user,
            Protocol::Imap4,
            AuthMechanism::UserPass,
            false,
            localhost(),
            NOW,
        );
        assert_eq!(
            d.denial().unwrap().imap_code(),
            "AUTHORIZATIONFAILED",
            "{user}"
        );
    }
    assert!(
        policy
            .authorize_login(
                "bob",
                Protocol::Imap4,
                AuthMechanism::UserPass,
                false,
                localhost(),
                NOW
            )
            .is_allowed()
    );
    assert!(text.contains("ImapEnabled = false"));
}

#[test]
fn third_connection_from_one_address_is_refused() {
    let (_, policy) = edit_and_reload(DEMO, |c| {
        c.set_pop_settings(&PopSettingsChange {
            max_connection_from_single_ip: Some(2),
            ..Default::default()
        })
        .unwrap();
    });
    let mut tracker = ConnectionTracker::new(ConnectionLimits::pop(policy.pop_settings()));
    let first = tracker.try_admit(localhost()).unwrap();
    let _second = tracker.try_admit(localhost()).unwrap();
    let third = tracker.try_admit(localhost()).unwrap_err();
    assert_eq!(
        format!("-ERR [{}] {}", third.pop3_code(), third.message),
        "-ERR [SYS/TEMP] Too many connections from your address; try again later"
    );
    tracker.release(first);
    assert!(
        tracker.try_admit(localhost()).is_ok(),
        "a released slot is free again"
    );
}

#[test]
fn secure_login_versus_plain_text_login() {
    let (_, secure) = edit_and_reload(DEMO, |c| {
        c.set_pop_settings(&PopSettingsChange {
            login_type: Some(LoginType::SecureLogin),
            ..Default::default()
        })
        .unwrap();
        c.set_imap_settings(&ImapSettingsChange {
            login_type: Some(LoginType::SecureLogin),
            ..Default::default()
        })
        .unwrap();
    });
    let plain = Policy::from_toml_str(DEMO).unwrap();
    for protocol in [Protocol::Pop3, Protocol::Imap4] {
        let d = secure.authorize_login(
            "bob",
            protocol,
            AuthMechanism::UserPass,
            false,
            localhost(),
            NOW,
        );
        let denial = d.denial().unwrap();
        assert_eq!(denial.reason, DenialReason::PrivacyRequired);
        assert!(
            secure
                .authorize_login(
                    "bob",
                    protocol,
                    AuthMechanism::UserPass,
                    true,
                    localhost(),
                    NOW
                )
                .is_allowed()
        );
        assert!(
            plain
                .authorize_login(
                    "bob",
                    protocol,
                    AuthMechanism::UserPass,
                    false,
                    localhost(),
                    NOW
                )
                .is_allowed()
        );
    }
    assert!(
        secure.imap_settings().login_type.cleartext_disabled(false),
        "IMAP advertises LOGINDISABLED before STARTTLS"
    );
}

#[test]
fn reload_keeps_live_counts_and_applies_new_limits() {
    let policy = Policy::from_toml_str(DEMO).unwrap();
    let mut tracker = ConnectionTracker::new(ConnectionLimits::imap(policy.imap_settings()));
    let tickets: Vec<_> = (0..3)
        .map(|_| tracker.try_admit(localhost()).unwrap())
        .collect();
    for t in &tickets {
        tracker.bind_user(*t, "bob").unwrap();
    }
    let (_, reloaded) = edit_and_reload(DEMO, |c| {
        c.set_imap_settings(&ImapSettingsChange {
            max_connections_per_user: Some(2),
            ..Default::default()
        })
        .unwrap();
    });
    tracker.set_limits(ConnectionLimits::imap(reloaded.imap_settings()));
    assert_eq!(
        tracker.of_user("bob"),
        3,
        "existing sessions are not cut by a lower limit"
    );
    let fourth = tracker.try_admit(localhost()).unwrap();
    let e = tracker.bind_user(fourth, "bob").unwrap_err();
    assert_eq!(e.imap_code(), "LIMIT");
    for t in tickets.into_iter().chain([fourth]) {
        tracker.release(t);
    }
    assert_eq!(tracker.footprint(), (0, 0, 0));
}

#[test]
fn bad_edits_are_refused_and_leave_the_config_alone() {
    let mut config = PolicyConfig::from_toml_str(DEMO).unwrap();
    let before = config.clone();
    let e = config
        .set_pop_settings(&PopSettingsChange {
            max_command_size: Some(2048),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "PopSettings.MaxCommandSize = 2048 is out of range; allowed: 40..=1024"
    );
    let e = config
        .set_cas_mailbox(&Target::User("nobody".into()), &CasMailboxChange::default())
        .unwrap_err();
    assert_eq!(
        e,
        ConfigError::UnknownMailbox {
            user: "nobody".into()
        }
    );
    assert_eq!(config, before);
}

#[test]
fn exchange_style_rules_file() {
    let text = format!(
        "{DEMO}\n{}",
        r#"
[[ClientAccessRule]]
Name = "Always allow admins"
Priority = 0
Action = "AllowAccess"
UsernameMatchesAnyOfPatterns = ["admin*"]

[[ClientAccessRule]]
Name = "Block basic auth from the internet"
Priority = 1
Action = "DenyAccess"
AnyOfAuthenticationTypes = ["BasicAuthentication"]
ExceptAnyOfClientIPAddressesOrRanges = ["127.0.0.0/8", "10.0.0.0/8", "::1"]
"#
    );
    let policy = Policy::from_toml_str(&text).unwrap();
    let outside = IpAddr::from([203, 0, 113, 5]);
    assert!(
        policy
            .admit_connection(Protocol::Pop3, outside, true, NOW)
            .is_allowed()
    );
    let d = policy.authorize_login(
        "bob",
        Protocol::Pop3,
        AuthMechanism::UserPass,
        true,
        outside,
        NOW,
    );
    assert_eq!(
        d.denial().unwrap().reason,
        DenialReason::RuleDenied {
            rule: "Block basic auth from the internet".into()
        }
    );
    assert!(
        policy
            .authorize_login(
                "bob",
                Protocol::Pop3,
                AuthMechanism::Ntlm,
                true,
                outside,
                NOW
            )
            .is_allowed()
    );
    assert!(
        policy
            .authorize_login(
                "admin",
                Protocol::Pop3,
                AuthMechanism::UserPass,
                true,
                outside,
                NOW
            )
            .is_allowed()
    );
    assert!(
        policy
            .authorize_login(
                "bob",
                Protocol::Pop3,
                AuthMechanism::UserPass,
                true,
                localhost(),
                NOW
            )
            .is_allowed()
    );
    let d = policy.authorize_login(
        "bob",
        Protocol::MapiHttp,
        AuthMechanism::HttpBasic,
        true,
        outside,
        NOW,
    );
    assert_eq!(d.denial().unwrap().http_status(), 403);
}

#[test]
fn regression_fuzz_seeds_do_not_panic() {
    // The hand-written fuzz seeds, run through the same invariants.
    for text in [
        "\u{0}-13.32767.65535;15.0.0-",
        "\u{2}[PopSettings]\nMaxCommandSize = 39\n",
        "\u{1}10.0.0.0/8\n::/0\ncorp//x\n99999999.00:00:00",
        "\u{3}[CASMailbox.\"a b\"]\n",
    ] {
        cas_policy::fuzzing::check_bytes(text.as_bytes());
    }
}

#[test]
fn written_file_reads_like_the_exchange_shell() {
    let mut config = PolicyConfig::from_toml_str(DEMO).unwrap();
    config
        .rules
        .push(ClientAccessRule::new("deny-all", RuleAction::DenyAccess));
    let text = config.to_toml_string();
    println!("{text}");
    for needle in [
        "[PopSettings]",
        "LoginType = \"PlainTextLogin\"",
        "MaxConnectionsPerUser = 16",
        "PreAuthenticatedConnectionTimeout = \"00:01:00\"",
        "MessageRetrievalMimeFormat = \"BestBodyFormat\"",
        "[CASMailbox.alice]",
        "OrganizationalUnit = \"corp/sales\"",
        "[[ClientAccessRule]]",
        "Action = \"DenyAccess\"",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
}

#[test]
fn policy_types_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Policy>();
    shareable::<PolicyConfig>();
    shareable::<ConnectionTracker>();
    shareable::<LoginThrottle>();
    shareable::<Denial>();
}
