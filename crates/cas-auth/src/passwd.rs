//! [`FileCredentialStore`]: accounts from a passwd-style text file.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::hash::{NtHash, StoredHash};
use crate::secret::Secret;
use crate::store::{CredentialStore, StoreError};

/// Longest user name accepted, in bytes.
pub const MAX_USER_NAME_LEN: usize = 256;

/// Longest field key accepted, in bytes.
pub const MAX_FIELD_KEY_LEN: usize = 64;

/// The reserved field key that carries the NT hash.
const NT_KEY: &str = "nt";

/// Why a user name is not valid in a passwd file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UserNameError {
    /// The name is empty.
    #[error("user name is empty")]
    Empty,
    /// The name is longer than [`MAX_USER_NAME_LEN`] bytes.
    #[error("user name is longer than {MAX_USER_NAME_LEN} bytes")]
    TooLong,
    /// The name contains `:` (the field separator) or a control character.
    #[error("user name contains ':' or a control character")]
    ForbiddenCharacter,
    /// The name starts with `#`, which would make its line a comment.
    #[error("user name starts with '#'")]
    LeadingHash,
    /// The name starts or ends with white space.
    #[error("user name starts or ends with white space")]
    SurroundingWhitespace,
}

/// Checks `user` against the rules for names in a passwd file: 1 to [`MAX_USER_NAME_LEN`]
/// bytes, no `:` and no control characters, no leading `#`, no leading or trailing white
/// space.
pub fn validate_user_name(user: &str) -> Result<(), UserNameError> {
    if user.is_empty() {
        return Err(UserNameError::Empty);
    }
    if user.len() > MAX_USER_NAME_LEN {
        return Err(UserNameError::TooLong);
    }
    if user.chars().any(|c| c == ':' || c.is_control()) {
        return Err(UserNameError::ForbiddenCharacter);
    }
    if user.starts_with('#') {
        return Err(UserNameError::LeadingHash);
    }
    if user.starts_with(char::is_whitespace) || user.ends_with(char::is_whitespace) {
        return Err(UserNameError::SurroundingWhitespace);
    }
    Ok(())
}

/// What is wrong with one account line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// The line has no `:` after the user name.
    #[error("expected 'user:hash', found no ':'")]
    MissingHash,
    /// The user name breaks a rule of [`validate_user_name`].
    #[error("invalid user name: {0}")]
    InvalidUserName(#[from] UserNameError),
    /// Another line already defines this user (names compare case-insensitively in ASCII).
    #[error("user {user:?} is already defined on line {first_line}")]
    DuplicateUser {
        /// The name as written on the second line.
        user: String,
        /// Line of the first definition (1-based).
        first_line: usize,
    },
    /// The password hash is not an Argon2 PHC string this crate can verify.
    #[error("invalid password hash: {0}")]
    InvalidHash(String),
    /// The `nt=` value is not 32 hexadecimal digits.
    #[error("invalid nt hash: expected 32 hexadecimal digits")]
    InvalidNtHash,
    /// A field is not `key=value`, or its key is not `[a-z][a-z0-9_-]*` (at most
    /// [`MAX_FIELD_KEY_LEN`] bytes).
    #[error("invalid field key {0:?}: expected key=value with a key matching [a-z][a-z0-9_-]*")]
    InvalidFieldKey(String),
    /// A field value contains `:` or a control character.
    #[error("value of field {0:?} contains ':' or a control character")]
    InvalidFieldValue(String),
    /// A field key appears twice on one line.
    #[error("field {0:?} appears twice")]
    DuplicateField(String),
}

/// A passwd file could not be parsed: which line, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {error}")]
pub struct PasswdError {
    line: usize,
    error: EntryError,
}

impl PasswdError {
    /// The offending line, counting from 1.
    pub fn line(&self) -> usize {
        self.line
    }

    /// What is wrong with it.
    pub fn error(&self) -> &EntryError {
        &self.error
    }
}

/// One account of a [`FileCredentialStore`].
///
/// `Debug` shows the user name, line and extra fields, never the hashes.
#[derive(Clone)]
pub struct Account {
    user: String,
    line: usize,
    phc: String,
    hash: StoredHash,
    nt_hash: Option<Secret<NtHash>>,
    fields: Vec<(String, String)>,
}

impl Account {
    /// The user name as written in the file.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The line the account is defined on (1-based).
    pub fn line(&self) -> usize {
        self.line
    }

    /// The Argon2 PHC string. Not the password, but it allows an offline guessing attack:
    /// treat it as confidential.
    pub fn phc(&self) -> &str {
        &self.phc
    }

    /// The stored NT hash, if the line has an `nt=` field.
    pub fn nt_hash(&self) -> Option<&Secret<NtHash>> {
        self.nt_hash.as_ref()
    }

    /// The extra `key=value` fields (everything but `nt`), in file order.
    pub fn fields(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.fields.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The value of the extra field `key` (keys are lowercase), e.g. `field("ou")`.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The account as a passwd-file line (without a line end). Parsing it gives the same
    /// account back.
    pub fn to_line(&self) -> String {
        let mut line = AccountLine::new(&self.user, &self.phc);
        if let Some(nt) = &self.nt_hash {
            line = line.nt_hash(*nt.expose());
        }
        for (k, v) in &self.fields {
            line = line.field(k, v);
        }
        line.render_unchecked()
    }
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("user", &self.user)
            .field("line", &self.line)
            .field("phc", &"..")
            .field("nt_hash", &self.nt_hash)
            .field("fields", &self.fields)
            .finish()
    }
}

/// Accounts parsed from a passwd-style text file.
///
/// # Format
///
/// One account per line:
///
/// ```text
/// # comment
/// user:PHC-hash[:key=value...]
/// alice:$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>:nt=8846f7eaee8fb117ad06bdd830b7586c:ou=corp/sales
/// ```
///
/// - Lines end in LF or CRLF. Blank lines and lines whose first non-blank character is `#`
///   are ignored. Nothing else is trimmed: stray white space is an error, not a silent
///   change of a user name or hash.
/// - `user` follows [`validate_user_name`]. Names are unique, compared case-insensitively
///   in ASCII, the same rule lookups use (see [`CredentialStore`]).
/// - `PHC-hash` is an Argon2 (`argon2id`, `argon2i` or `argon2d`) PHC string, as made by
///   [`hash_password`](crate::hash_password). Its cost parameters are trusted (each check
///   costs what they say) up to sanity limits ([`MAX_MEMORY_KIB`](crate::MAX_MEMORY_KIB),
///   [`MAX_ITERATIONS`](crate::MAX_ITERATIONS)) that catch typos.
/// - `nt=` holds the NT hash as 32 hexadecimal digits (either case), for NTLM. Optional.
/// - Any other `key=value` field is kept and can be read with [`fields`](Self::fields) and
///   [`field`](Self::field), e.g. an organizational unit `ou=corp/sales` for policy. Keys
///   match `[a-z][a-z0-9_-]*`; values may contain anything but `:` and control characters.
///
/// The store does no I/O: read the file yourself and hand its text to
/// [`parse`](Self::parse). [`AccountLine`] writes lines in this format.
///
/// # Timing
///
/// For an unknown user, [`verify_password`](CredentialStore::verify_password) runs Argon2
/// against a dummy hash with the cost parameters of the first account in the file (OWASP's
/// when the file is empty), so that a file with one parameter set answers unknown and known
/// users in the same time.
#[derive(Clone)]
pub struct FileCredentialStore {
    accounts: Vec<Account>,
    /// ASCII-lowercased user name -> index into `accounts`.
    index: BTreeMap<String, usize>,
    dummy: StoredHash,
}

impl fmt::Debug for FileCredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileCredentialStore")
            .field("accounts", &self.accounts)
            .finish_non_exhaustive()
    }
}

impl Default for FileCredentialStore {
    /// A store without accounts.
    fn default() -> Self {
        FileCredentialStore {
            accounts: Vec::new(),
            index: BTreeMap::new(),
            dummy: StoredHash::default_dummy(),
        }
    }
}

fn user_key(user: &str) -> String {
    user.to_ascii_lowercase()
}

impl FileCredentialStore {
    /// Parses the text of a passwd file. The first bad line is reported with its number.
    pub fn parse(text: &str) -> Result<FileCredentialStore, PasswdError> {
        let mut store = FileCredentialStore::default();
        for (i, line) in text.lines().enumerate() {
            let number = i + 1;
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let account = parse_line(line, number).map_err(|error| PasswdError {
                line: number,
                error,
            })?;
            let key = user_key(&account.user);
            if let Some(&first) = store.index.get(&key) {
                return Err(PasswdError {
                    line: number,
                    error: EntryError::DuplicateUser {
                        user: account.user,
                        first_line: store.accounts[first].line,
                    },
                });
            }
            if store.accounts.is_empty() {
                store.dummy = account.hash.dummy_like();
            }
            store.index.insert(key, store.accounts.len());
            store.accounts.push(account);
        }
        Ok(store)
    }

    /// Renders one passwd-file line (without a line end) from a user name, a PHC string
    /// and an optional NT hash. Use [`AccountLine`] to add more fields.
    ///
    /// ```
    /// use cas_auth::{hash_password_with, nt_hash_of, FileCredentialStore, PasswordHashParams};
    ///
    /// let phc = hash_password_with(b"password", b"demo-salt-0001", &PasswordHashParams::dangerous_low_cost())?;
    /// let line = FileCredentialStore::render_line("alice", &phc, Some(nt_hash_of("password")))?;
    /// assert!(line.ends_with(":nt=8846f7eaee8fb117ad06bdd830b7586c"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn render_line(
        user: &str,
        phc: &str,
        nt_hash: Option<NtHash>,
    ) -> Result<String, EntryError> {
        let mut line = AccountLine::new(user, phc);
        if let Some(nt) = nt_hash {
            line = line.nt_hash(nt);
        }
        line.render()
    }

    /// Number of accounts.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// Whether the store has no accounts.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// The account of `user` (matched case-insensitively in ASCII).
    pub fn account(&self, user: &str) -> Option<&Account> {
        self.index.get(&user_key(user)).map(|&i| &self.accounts[i])
    }

    /// All accounts, in file order.
    pub fn accounts(&self) -> impl ExactSizeIterator<Item = &Account> + '_ {
        self.accounts.iter()
    }

    /// The extra `key=value` fields of `user`, or `None` for an unknown user.
    pub fn fields(&self, user: &str) -> Option<impl ExactSizeIterator<Item = (&str, &str)> + '_> {
        self.account(user).map(Account::fields)
    }

    /// The value of field `key` for `user`.
    pub fn field(&self, user: &str, key: &str) -> Option<&str> {
        self.account(user).and_then(|a| a.field(key))
    }

    /// The whole store in passwd-file format, one line per account, each ending in LF.
    /// Comments and blank lines of the parsed text are not kept.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for account in &self.accounts {
            out.push_str(&account.to_line());
            out.push('\n');
        }
        out
    }
}

impl FromStr for FileCredentialStore {
    type Err = PasswdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FileCredentialStore::parse(s)
    }
}

impl CredentialStore for FileCredentialStore {
    fn verify_password(&self, user: &str, password: &[u8]) -> Result<bool, StoreError> {
        match self.account(user) {
            Some(account) => account.hash.verify(password).map_err(|e| {
                StoreError::Corrupt(format!(
                    "hash of {:?} (line {}): {e}",
                    account.user, account.line
                ))
            }),
            None => {
                // Spend the time a real check would, so unknown users cannot be told apart.
                let _ = std::hint::black_box(self.dummy.verify(password));
                Ok(false)
            }
        }
    }

    fn nt_hash(&self, user: &str) -> Result<Option<Secret<NtHash>>, StoreError> {
        Ok(self.account(user).and_then(|a| a.nt_hash.clone()))
    }

    fn canonical_user(&self, user: &str) -> Result<Option<String>, StoreError> {
        Ok(self.account(user).map(|a| a.user.clone()))
    }
}

fn parse_line(line: &str, number: usize) -> Result<Account, EntryError> {
    let mut parts = line.split(':');
    let user = parts.next().unwrap_or_default();
    validate_user_name(user)?;
    let phc = parts.next().ok_or(EntryError::MissingHash)?;
    let hash = StoredHash::parse(phc).map_err(EntryError::InvalidHash)?;
    let mut nt_hash = None;
    let mut fields: Vec<(String, String)> = Vec::new();
    for field in parts {
        let (key, value) = split_field(field)?;
        if key == NT_KEY {
            if nt_hash.is_some() {
                return Err(EntryError::DuplicateField(key.to_owned()));
            }
            nt_hash = Some(Secret::new(
                parse_hex16(value).ok_or(EntryError::InvalidNtHash)?,
            ));
        } else {
            if fields.iter().any(|(k, _)| k == key) {
                return Err(EntryError::DuplicateField(key.to_owned()));
            }
            fields.push((key.to_owned(), value.to_owned()));
        }
    }
    Ok(Account {
        user: user.to_owned(),
        line: number,
        phc: phc.to_owned(),
        hash,
        nt_hash,
        fields,
    })
}

fn split_field(field: &str) -> Result<(&str, &str), EntryError> {
    let (key, value) = field
        .split_once('=')
        .ok_or_else(|| EntryError::InvalidFieldKey(field.to_owned()))?;
    validate_key(key)?;
    validate_value(key, value)?;
    Ok((key, value))
}

fn validate_key(key: &str) -> Result<(), EntryError> {
    let mut bytes = key.bytes();
    let ok = key.len() <= MAX_FIELD_KEY_LEN
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(EntryError::InvalidFieldKey(key.to_owned()))
    }
}

fn validate_value(key: &str, value: &str) -> Result<(), EntryError> {
    if value.chars().any(|c| c == ':' || c.is_control()) {
        Err(EntryError::InvalidFieldValue(key.to_owned()))
    } else {
        Ok(())
    }
}

fn parse_hex16(s: &str) -> Option<[u8; 16]> {
    let s = s.as_bytes();
    if s.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (byte, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        *byte = (hi << 4 | lo) as u8;
    }
    Some(out)
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

/// Builds one passwd-file line, checking everything [`FileCredentialStore::parse`] checks
/// except uniqueness across lines.
///
/// ```
/// use cas_auth::{hash_password_with, AccountLine, FileCredentialStore, PasswordHashParams};
///
/// let phc = hash_password_with(b"s3cret", b"0123456789abcdef", &PasswordHashParams::dangerous_low_cost())?;
/// let line = AccountLine::new("bob", &phc).field("ou", "corp/sales").render()?;
/// let store = FileCredentialStore::parse(&line)?;
/// assert_eq!(store.field("BOB", "ou"), Some("corp/sales"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct AccountLine<'a> {
    user: &'a str,
    phc: &'a str,
    nt_hash: Option<Secret<NtHash>>,
    fields: Vec<(&'a str, &'a str)>,
}

impl<'a> AccountLine<'a> {
    /// A line for `user` with the Argon2 PHC string `phc`.
    pub fn new(user: &'a str, phc: &'a str) -> Self {
        AccountLine {
            user,
            phc,
            nt_hash: None,
            fields: Vec::new(),
        }
    }

    /// Adds the `nt=` field.
    pub fn nt_hash(mut self, nt_hash: NtHash) -> Self {
        self.nt_hash = Some(Secret::new(nt_hash));
        self
    }

    /// Adds an extra `key=value` field. Fields are written in the order added.
    pub fn field(mut self, key: &'a str, value: &'a str) -> Self {
        self.fields.push((key, value));
        self
    }

    /// Validates and renders the line (without a line end).
    pub fn render(&self) -> Result<String, EntryError> {
        validate_user_name(self.user)?;
        StoredHash::parse(self.phc).map_err(EntryError::InvalidHash)?;
        for (i, (key, value)) in self.fields.iter().enumerate() {
            validate_key(key)?;
            validate_value(key, value)?;
            let dup_nt = *key == NT_KEY && self.nt_hash.is_some();
            if dup_nt || self.fields[..i].iter().any(|(k, _)| k == key) {
                return Err(EntryError::DuplicateField((*key).to_owned()));
            }
            if *key == NT_KEY && parse_hex16(value).is_none() {
                return Err(EntryError::InvalidNtHash);
            }
        }
        Ok(self.render_unchecked())
    }

    fn render_unchecked(&self) -> String {
        let mut line = String::with_capacity(self.user.len() + self.phc.len() + 40);
        line.push_str(self.user);
        line.push(':');
        line.push_str(self.phc);
        if let Some(nt) = &self.nt_hash {
            line.push_str(":nt=");
            push_hex(&mut line, nt.expose());
        }
        for (key, value) in &self.fields {
            line.push(':');
            line.push_str(key);
            line.push('=');
            line.push_str(value);
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{PasswordHashParams, hash_password_with, nt_hash_of};

    const CHEAP: PasswordHashParams = PasswordHashParams::dangerous_low_cost();

    fn phc(password: &str) -> String {
        hash_password_with(password.as_bytes(), b"fixed-test-salt!", &CHEAP).unwrap()
    }

    fn err(text: &str) -> PasswdError {
        FileCredentialStore::parse(text).unwrap_err()
    }

    #[test]
    fn parses_accounts_comments_and_fields() {
        let text = format!(
            "# demo users\r\n\n   \nalice:{}:nt=8846F7EAEE8FB117AD06BDD830B7586C:ou=corp/sales\r\n  # indented comment\nBob:{}\n",
            phc("password"),
            phc("hunter2"),
        );
        let store = FileCredentialStore::parse(&text).unwrap();
        assert_eq!(store.len(), 2);
        let alice = store.account("ALICE").unwrap();
        assert_eq!(alice.user(), "alice");
        assert_eq!(alice.line(), 4);
        assert_eq!(alice.nt_hash().unwrap().expose(), &nt_hash_of("password"));
        assert_eq!(store.field("alice", "ou"), Some("corp/sales"));
        assert_eq!(
            store.fields("alice").unwrap().collect::<Vec<_>>(),
            [("ou", "corp/sales")]
        );
        assert!(store.fields("nobody").is_none());

        assert!(store.verify_password("alice", b"password").unwrap());
        assert!(store.verify_password("Alice", b"password").unwrap());
        assert!(!store.verify_password("alice", b"Password").unwrap());
        assert!(!store.verify_password("alice", b"password\n").unwrap());
        assert!(store.verify_password("bob", b"hunter2").unwrap());
        assert!(!store.verify_password("carol", b"password").unwrap());
        assert_eq!(store.canonical_user("BOB").unwrap().as_deref(), Some("Bob"));
        assert_eq!(store.canonical_user("carol").unwrap(), None);

        assert!(store.nt_hash("bob").unwrap().is_none());
        assert!(store.nt_hash("carol").unwrap().is_none());
        assert_eq!(
            store.nt_hash("ALICE").unwrap().unwrap().expose(),
            &nt_hash_of("password")
        );
    }

    #[test]
    fn non_ascii_names_are_exact() {
        let text = format!("Jörg:{}\n", phc("pw"));
        let store = FileCredentialStore::parse(&text).unwrap();
        assert!(store.account("jörg").is_some());
        assert!(store.account("JöRG").is_some());
        assert!(store.account("JÖRG").is_none());
    }

    #[test]
    fn debug_never_shows_hashes() {
        let text = format!("alice:{}:nt=8846f7eaee8fb117ad06bdd830b7586c\n", phc("pw"));
        let store = FileCredentialStore::parse(&text).unwrap();
        let debug = format!("{store:?}");
        assert!(debug.contains("alice"));
        assert!(!debug.contains("argon2"));
        assert!(!debug.contains("8846"));
    }

    #[test]
    fn dummy_uses_first_accounts_params() {
        let store = FileCredentialStore::parse(&format!("a:{}\n", phc("x"))).unwrap();
        assert!(!store.dummy.verify(b"x").unwrap());
        assert!(
            !FileCredentialStore::default()
                .verify_password("anyone", b"")
                .unwrap()
        );
    }

    #[test]
    fn typed_errors_with_line_numbers() {
        let good = phc("pw");
        let e = err(&format!("# c\nalice:{good}\nALICE:{good}\n"));
        assert_eq!(e.line(), 3);
        assert_eq!(
            e.error(),
            &EntryError::DuplicateUser {
                user: "ALICE".into(),
                first_line: 2
            }
        );
        assert_eq!(err("alice\n").error(), &EntryError::MissingHash);
        assert!(matches!(
            err("alice:nothash\n").error(),
            EntryError::InvalidHash(_)
        ));
        assert!(matches!(
            err(&format!("alice:{good} \n")).error(),
            EntryError::InvalidHash(_)
        ));
        assert_eq!(
            err(&format!(":{good}\n")).error(),
            &EntryError::InvalidUserName(UserNameError::Empty)
        );
        assert_eq!(
            err(&format!("{}:{good}\n", "u".repeat(257))).error(),
            &EntryError::InvalidUserName(UserNameError::TooLong)
        );
        assert!(FileCredentialStore::parse(&format!("{}:{good}\n", "u".repeat(256))).is_ok());
        assert_eq!(
            err(&format!("a\u{7}b:{good}\n")).error(),
            &EntryError::InvalidUserName(UserNameError::ForbiddenCharacter)
        );
        assert_eq!(
            err(&format!(" alice:{good}\n")).error(),
            &EntryError::InvalidUserName(UserNameError::SurroundingWhitespace)
        );
        for bad_nt in [
            "",
            "abc",
            "8846f7eaee8fb117ad06bdd830b7586",
            "8846f7eaee8fb117ad06bdd830b7586cc",
            "g846f7eaee8fb117ad06bdd830b7586c",
            "+846f7eaee8fb117ad06bdd830b7586c",
        ] {
            assert_eq!(
                err(&format!("alice:{good}:nt={bad_nt}\n")).error(),
                &EntryError::InvalidNtHash,
                "{bad_nt:?}"
            );
        }
        assert_eq!(
            err(&format!("alice:{good}:nt=8846f7eaee8fb117ad06bdd830b7586c:nt=8846f7eaee8fb117ad06bdd830b7586c\n")).error(),
            &EntryError::DuplicateField("nt".into())
        );
        assert_eq!(
            err(&format!("alice:{good}:ou=a:ou=b\n")).error(),
            &EntryError::DuplicateField("ou".into())
        );
        assert_eq!(
            err(&format!("alice:{good}:ou\n")).error(),
            &EntryError::InvalidFieldKey("ou".into())
        );
        assert_eq!(
            err(&format!("alice:{good}:OU=x\n")).error(),
            &EntryError::InvalidFieldKey("OU".into())
        );
        assert_eq!(
            err(&format!("alice:{good}:ou=a\tb\n")).error(),
            &EntryError::InvalidFieldValue("ou".into())
        );
        assert_eq!(
            err(&format!("alice:{good}:\n")).error(),
            &EntryError::InvalidFieldKey("".into())
        );
        assert_eq!(err("x\r\ny\n").line(), 1);
        assert_eq!(
            err("x").to_string(),
            "line 1: expected 'user:hash', found no ':'"
        );
    }

    #[test]
    fn render_validates_and_round_trips() {
        let good = phc("pw");
        let nt = nt_hash_of("pw");
        let line = FileCredentialStore::render_line("alice", &good, Some(nt)).unwrap();
        let line2 = AccountLine::new("bob", &good)
            .field("ou", "corp/sales")
            .field("display-name", "Bob = Builder")
            .render()
            .unwrap();
        let store = FileCredentialStore::parse(&format!("{line}\n{line2}")).unwrap();
        assert_eq!(store.account("alice").unwrap().to_line(), line);
        assert_eq!(store.account("bob").unwrap().to_line(), line2);
        assert_eq!(store.field("bob", "display-name"), Some("Bob = Builder"));
        assert_eq!(
            FileCredentialStore::parse(&store.to_text())
                .unwrap()
                .to_text(),
            store.to_text()
        );

        assert_eq!(
            FileCredentialStore::render_line("#root", &good, None),
            Err(EntryError::InvalidUserName(UserNameError::LeadingHash))
        );
        assert_eq!(
            FileCredentialStore::render_line("a:b", &good, None),
            Err(EntryError::InvalidUserName(
                UserNameError::ForbiddenCharacter
            ))
        );
        assert!(matches!(
            FileCredentialStore::render_line("a", "x", None),
            Err(EntryError::InvalidHash(_))
        ));
        assert_eq!(
            AccountLine::new("a", &good)
                .nt_hash(nt)
                .field("nt", "00")
                .render(),
            Err(EntryError::DuplicateField("nt".into()))
        );
        assert_eq!(
            AccountLine::new("a", &good).field("nt", "00").render(),
            Err(EntryError::InvalidNtHash)
        );
        assert_eq!(
            AccountLine::new("a", &good).field("ou", "a:b").render(),
            Err(EntryError::InvalidFieldValue("ou".into()))
        );
        assert_eq!(
            AccountLine::new("a", &good)
                .field("ou", "1")
                .field("ou", "2")
                .render(),
            Err(EntryError::DuplicateField("ou".into()))
        );
    }
}
