//! Property tests: arbitrary input never panics (the same invariant functions the fuzz
//! targets run), and rendered passwd lines parse back to what was rendered.

use cas_auth::{AccountLine, FileCredentialStore, PasswordHashParams, fuzzing, hash_password_with};
use proptest::prelude::*;

fn cheap_phc(password: &str) -> String {
    hash_password_with(
        password.as_bytes(),
        b"proptest-salt-16",
        &PasswordHashParams::dangerous_low_cost(),
    )
    .unwrap()
}

/// Byte strings biased towards PLAIN-like shapes: pieces joined by NULs.
fn plain_like() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600),
        proptest::collection::vec(
            prop_oneof![
                Just(b"alice".to_vec()),
                Just(b"ALICE".to_vec()),
                Just(b"secret".to_vec()),
                Just(b"bob".to_vec()),
                Just(Vec::new()),
                proptest::collection::vec(any::<u8>(), 0..8),
            ],
            0..5
        )
        .prop_map(|parts| parts.join(&0u8)),
    ]
}

/// User names that follow the passwd rules.
fn user_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._@ é-]{0,20}[A-Za-z0-9é]"
        .prop_filter("valid", |u| cas_auth::validate_user_name(u).is_ok())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn sasl_never_panics(data in plain_like()) {
        fuzzing::sasl(&data);
    }

    #[test]
    fn passwd_file_never_panics(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        fuzzing::passwd_file(&data);
    }

    #[test]
    fn passwd_file_text_never_panics(text in "([a-z#: =\n\r\t$,0-9]|argon2id|v=19|m=8|nt=){0,60}") {
        fuzzing::passwd_file(text.as_bytes());
    }

    #[test]
    fn plain_against_real_store_never_panics(data in plain_like()) {
        // A real FileCredentialStore (cheap Argon2) behind both mechanisms.
        let text = format!("alice:{}\n", cheap_phc("secret"));
        let store = FileCredentialStore::parse(&text).unwrap();
        let step = cas_auth::sasl::PlainServer::new().step(&store, Some(&data));
        prop_assert!(step.is_final());
        let mut login = cas_auth::sasl::LoginServer::new();
        let _ = login.step(&store, Some(&data));
        let _ = login.step(&store, Some(&data));
        prop_assert!(login.is_complete());
    }

    #[test]
    fn render_then_parse_round_trips(
        users in proptest::collection::btree_set(user_name(), 1..5),
        nt in proptest::option::of(any::<[u8; 16]>()),
        ou in proptest::option::of("[^:\\p{Cc}]{0,20}"),
    ) {
        let phc = cheap_phc("pw");
        // Names equal ignoring ASCII case are duplicates; keep one of each.
        let mut seen = std::collections::BTreeSet::new();
        let users: Vec<String> = users.into_iter().filter(|u| seen.insert(u.to_ascii_lowercase())).collect();
        let mut lines = Vec::new();
        for user in &users {
            let mut line = AccountLine::new(user, &phc);
            if let Some(nt) = nt {
                line = line.nt_hash(nt);
            }
            if let Some(ou) = &ou {
                line = line.field("ou", ou);
            }
            lines.push(line.render().unwrap());
        }
        let store = FileCredentialStore::parse(&lines.join("\n")).unwrap();
        prop_assert_eq!(store.len(), users.len());
        for (user, line) in users.iter().zip(&lines) {
            let account = store.account(user).unwrap();
            prop_assert_eq!(account.user(), user.as_str());
            prop_assert_eq!(account.phc(), phc.as_str());
            prop_assert_eq!(account.nt_hash().map(|h| *h.expose()), nt);
            prop_assert_eq!(account.field("ou"), ou.as_deref());
            prop_assert_eq!(&account.to_line(), line);
        }
        fuzzing::passwd_file(lines.join("\r\n").as_bytes());
    }
}

#[test]
fn fuzz_seed_corpus_passes() {
    fuzzing::sasl(b"\0alice\0secret");
    fuzzing::sasl(b"alice\0alice\0secret");
    fuzzing::sasl(b"bob\0alice\0secret");
    fuzzing::sasl(b"alice\0secret");
    fuzzing::passwd_file(
        format!(
            "# demo\nalice:{}:nt=8846f7eaee8fb117ad06bdd830b7586c\n",
            cheap_phc("password")
        )
        .as_bytes(),
    );
}

/// Inputs that once broke an invariant under cargo-fuzz, kept as regression tests.
#[test]
fn fuzz_regressions() {
    // argon2 0.5.3 computed `8 * p` in u32 and overflowed (panic in debug builds).
    fuzzing::passwd_file(
        b"# demo\nalice:$argon2id$v=19$m=19456,p=1222222222$c2FsdHNhbHQ$AAAAAAAQAAAAAA:rt=8846f7eaee8fb117ad06bdd830b7586c:ou=corp/sales\n",
    );
}
