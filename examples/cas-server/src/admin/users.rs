//! `new-mailbox`, `remove-mailbox` and `set-mailbox-password`: edits of the passwd-style
//! users file that keep every other line (comments, other accounts, extra fields) as written.
//!
//! The whole file is parsed by `cas_auth::FileCredentialStore` before and after the edit, so
//! an edit can never leave a file the server would refuse to load; it is then replaced
//! atomically ([`crate::fsutil::replace_file`]), keeping its permissions (0600 for a new file).

use std::fs;
use std::io;
use std::path::Path;

use cas_auth::{AccountLine, FileCredentialStore};

use super::AdminError;

/// Argon2id + NT hash line for `user` with `password` (fresh random salt).
fn account_line(
    user: &str,
    password: &str,
    keep: &[(String, String)],
) -> Result<String, AdminError> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt)
        .map_err(|e| AdminError::Failed(format!("no randomness: {e}")))?;
    let phc = cas_auth::hash_password(password.as_bytes(), &salt)
        .map_err(|e| AdminError::Failed(format!("cannot hash the password: {e}")))?;
    let mut line = AccountLine::new(user, &phc).nt_hash(cas_auth::nt_hash_of(password));
    for (k, v) in keep {
        line = line.field(k, v);
    }
    line.render().map_err(|e| AdminError::InvalidArgument {
        parameter: "Identity",
        message: e.to_string(),
    })
}

fn read_users(path: &Path) -> Result<(String, FileCredentialStore), AdminError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(AdminError::io(path, e)),
    };
    let store = FileCredentialStore::parse(&text).map_err(|e| {
        AdminError::Failed(format!("users file {} is invalid: {e}", path.display()))
    })?;
    Ok((text, store))
}

fn write_users(path: &Path, text: &str) -> Result<(), AdminError> {
    // Re-parse what is about to be written: the running server must be able to load it.
    FileCredentialStore::parse(text)
        .map_err(|e| AdminError::Failed(format!("refusing to write an invalid users file: {e}")))?;
    crate::fsutil::replace_file(path, text.as_bytes(), true).map_err(|e| AdminError::io(path, e))
}

/// Replaces line `line` (1-based) of `text` by `new` (`None`: deletes it).
fn edit_line(text: &str, line: usize, new: Option<&str>) -> String {
    let mut out = String::with_capacity(text.len() + 128);
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            if let Some(new) = new {
                out.push_str(new);
                out.push('\n');
            }
        } else {
            out.push_str(l);
        }
    }
    out
}

/// Adds `user` with `password` to the users file and creates their Maildir under
/// `maildir_root`. Fails when the user exists (names compare case-insensitively).
pub fn new_mailbox(
    users_file: &Path,
    maildir_root: &Path,
    user: &str,
    password: &str,
) -> Result<(), AdminError> {
    check_password(password)?;
    cas_auth::validate_user_name(user).map_err(|e| AdminError::InvalidArgument {
        parameter: "Name",
        message: e.to_string(),
    })?;
    if user.contains(['/', '\\']) || user == "." || user == ".." {
        return Err(AdminError::InvalidArgument {
            parameter: "Name",
            message: "a mailbox name cannot contain '/' or '\\' or be '.' or '..'".into(),
        });
    }
    let (mut text, store) = read_users(users_file)?;
    if let Some(existing) = store.account(user) {
        return Err(AdminError::AlreadyExists(format!(
            "a mailbox named {:?} already exists",
            existing.user()
        )));
    }
    let line = account_line(user, password, &[])?;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&line);
    text.push('\n');
    // The Maildir first: a user that exists in the file can log in at once.
    crate::maildir::create_maildir(&maildir_root.join(user))
        .map_err(|e| AdminError::io(&maildir_root.join(user), e))?;
    write_users(users_file, &text)
}

/// Removes `user` from the users file. The Maildir stays where it is (like a disconnected
/// mailbox in Exchange): deleting mail is left to the admin. Returns the name as written.
pub fn remove_mailbox(users_file: &Path, user: &str) -> Result<String, AdminError> {
    let (text, store) = read_users(users_file)?;
    let account = store.account(user).ok_or_else(|| not_found(user))?;
    let name = account.user().to_owned();
    write_users(users_file, &edit_line(&text, account.line(), None))?;
    Ok(name)
}

/// Sets a new password (argon2id and NT hash) for `user`, keeping the line's other fields.
pub fn set_mailbox_password(
    users_file: &Path,
    user: &str,
    password: &str,
) -> Result<String, AdminError> {
    check_password(password)?;
    let (text, store) = read_users(users_file)?;
    let account = store.account(user).ok_or_else(|| not_found(user))?;
    let name = account.user().to_owned();
    let keep: Vec<(String, String)> = account
        .fields()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let line = account_line(&name, password, &keep)?;
    write_users(users_file, &edit_line(&text, account.line(), Some(&line)))?;
    Ok(name)
}

fn not_found(user: &str) -> AdminError {
    AdminError::NotFound(format!("no mailbox named {user:?} in the users file"))
}

/// A password must be non-empty and fit on one line (it is read from one line of stdin).
fn check_password(password: &str) -> Result<(), AdminError> {
    if password.is_empty() || password.len() > 1024 || password.contains(['\r', '\n', '\0']) {
        return Err(AdminError::InvalidArgument {
            parameter: "Password",
            message: "must be 1 to 1024 bytes on one line".into(),
        });
    }
    Ok(())
}

/// Reads a password from the first line of `input` (trailing CR/LF removed).
pub fn read_password_line(mut input: impl io::BufRead) -> Result<String, AdminError> {
    let mut line = String::new();
    input
        .read_line(&mut line)
        .map_err(|e| AdminError::Failed(format!("cannot read the password from stdin: {e}")))?;
    let trimmed = line.trim_end_matches(['\r', '\n']).to_owned();
    check_password(&trimmed)?;
    Ok(trimmed)
}

#[cfg(test)]
mod tests {
    use cas_auth::CredentialStore;

    use super::*;

    fn store(path: &Path) -> FileCredentialStore {
        FileCredentialStore::parse(&fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn add_change_remove_keep_other_lines() {
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users");
        let root = dir.path().join("maildir");
        fs::write(&users, "# comment\n").unwrap();
        new_mailbox(&users, &root, "carol", "pw-one").unwrap();
        new_mailbox(&users, &root, "dave", "pw-two").unwrap();
        assert!(root.join("carol/cur").is_dir());
        assert!(store(&users).verify_password("carol", b"pw-one").unwrap());
        assert!(matches!(
            new_mailbox(&users, &root, "CAROL", "x"),
            Err(AdminError::AlreadyExists(_))
        ));
        assert_eq!(
            set_mailbox_password(&users, "Carol", "pw-new").unwrap(),
            "carol"
        );
        let s = store(&users);
        assert!(s.verify_password("carol", b"pw-new").unwrap());
        assert!(!s.verify_password("carol", b"pw-one").unwrap());
        assert!(s.nt_hash("carol").unwrap().is_some());
        assert_eq!(remove_mailbox(&users, "carol").unwrap(), "carol");
        let text = fs::read_to_string(&users).unwrap();
        assert!(text.starts_with("# comment\n"));
        assert!(!text.contains("carol"));
        assert!(text.contains("dave:"));
        assert!(matches!(
            remove_mailbox(&users, "carol"),
            Err(AdminError::NotFound(_))
        ));
        assert!(matches!(
            set_mailbox_password(&users, "nobody", "x"),
            Err(AdminError::NotFound(_))
        ));
    }

    #[test]
    fn bad_names_and_passwords() {
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users");
        let root = dir.path().join("maildir");
        for bad in ["", "a:b", "../x", "#x", " x"] {
            let err = new_mailbox(&users, &root, bad, "pw").unwrap_err();
            assert!(err.to_string().contains("Name"), "{bad:?}: {err}");
        }
        assert!(
            new_mailbox(&users, &root, "x", "")
                .unwrap_err()
                .to_string()
                .contains("Password")
        );
        assert!(!users.exists());
        assert_eq!(
            read_password_line(&b"secret\r\nrest"[..]).unwrap(),
            "secret"
        );
        assert!(read_password_line(&b"\n"[..]).is_err());
    }

    #[test]
    fn extra_fields_survive_a_password_change() {
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users");
        let root = dir.path().join("maildir");
        new_mailbox(&users, &root, "erin", "pw").unwrap();
        let text = fs::read_to_string(&users).unwrap();
        fs::write(&users, text.replace('\n', ":quota=10\n")).unwrap();
        set_mailbox_password(&users, "erin", "pw2").unwrap();
        assert_eq!(store(&users).field("erin", "quota"), Some("10"));
    }
}
