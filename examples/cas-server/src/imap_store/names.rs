//! Folder names: the IMAP view (`Archive/2024`, UTF-8, `/` as the hierarchy delimiter) and the
//! Maildir++ directory that holds the folder (`<user>/.Archive.2024`).
//!
//! Each name component is written in modified UTF-7 (RFC 3501 §5.1.3), the Maildir++ custom
//! that Courier and Dovecot follow, so the directory names stay ASCII. `.` is the on-disk
//! hierarchy separator, so a `.` inside a component is written as `&AC4-`, the modified
//! UTF-7 form of U+002E: a canonical encoder never produces it (`.` is printable), so the
//! escape is unambiguous, and `/` cannot occur in a component at all.

use std::path::{Path, PathBuf};

use cas_imap_proto::mutf7;

use super::StoreError;

/// The IMAP hierarchy delimiter of this store.
pub const DELIMITER: char = '/';

/// The escape of `.` inside one on-disk component.
const DOT_ESCAPE: &str = "&AC4-";

/// Longest folder name accepted, in bytes of its UTF-8 form. The on-disk name (modified
/// UTF-7, a leading `.`) must fit in one 255-byte file name component, and UTF-7 can grow a
/// name by up to 8/3, so 80 UTF-8 bytes is always safe; ASCII names may be longer as long as
/// the encoded form fits.
pub const MAX_NAME_BYTES: usize = 250;

/// Deepest hierarchy accepted (`a/b/c/...`); a bound so that CREATE cannot make a path that
/// LIST later has to walk without end.
pub const MAX_DEPTH: usize = 16;

/// A validated folder name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FolderName {
    /// The user's INBOX: the Maildir root.
    Inbox,
    /// Any other folder: its components (never empty, never `INBOX` alone).
    Other(Vec<String>),
}

impl FolderName {
    /// Validates an IMAP name (already decoded to UTF-8, `/`-delimited). `INBOX` is matched
    /// case-insensitively (RFC 9051 §5.1). A trailing delimiter is dropped (`CREATE foo/`
    /// declares the intent to create children, RFC 9051 §6.3.4).
    pub fn parse(name: &str) -> Result<Self, StoreError> {
        let trimmed = name.strip_suffix(DELIMITER).unwrap_or(name);
        if trimmed.eq_ignore_ascii_case("INBOX") {
            return Ok(Self::Inbox);
        }
        if trimmed.is_empty() || trimmed.len() > MAX_NAME_BYTES {
            return Err(StoreError::InvalidName(name.to_owned()));
        }
        let parts: Vec<String> = trimmed.split(DELIMITER).map(str::to_owned).collect();
        if parts.len() > MAX_DEPTH
            || parts
                .iter()
                .any(|p| p.is_empty() || p.chars().any(char::is_control))
        {
            return Err(StoreError::InvalidName(name.to_owned()));
        }
        if parts[0].eq_ignore_ascii_case("INBOX") {
            // INBOX is the Maildir root; Maildir++ gives it no children of its own.
            return Err(StoreError::InvalidName(name.to_owned()));
        }
        let folder = Self::Other(parts);
        if folder.dir_name().is_some_and(|d| d.len() > 255) {
            return Err(StoreError::InvalidName(name.to_owned()));
        }
        Ok(folder)
    }

    /// The IMAP name.
    pub fn to_imap(&self) -> String {
        match self {
            Self::Inbox => "INBOX".to_owned(),
            Self::Other(parts) => parts.join("/"),
        }
    }

    /// The directory name under the user's Maildir (`.A.B`), `None` for INBOX.
    pub fn dir_name(&self) -> Option<String> {
        let Self::Other(parts) = self else {
            return None;
        };
        let mut out = String::new();
        for p in parts {
            out.push('.');
            out.push_str(&mutf7::encode(p).replace('.', DOT_ESCAPE));
        }
        Some(out)
    }

    /// The folder's Maildir directory under `user_dir`.
    pub fn path(&self, user_dir: &Path) -> PathBuf {
        match self.dir_name() {
            None => user_dir.to_path_buf(),
            Some(d) => user_dir.join(d),
        }
    }

    /// The name from a directory name found on disk (`.A.B`), `None` when the directory is
    /// not a folder of ours (not a dot name, undecodable, or our own scratch names).
    pub fn from_dir_name(dir: &str) -> Option<Self> {
        let rest = dir.strip_prefix('.')?;
        if rest.is_empty() || rest.starts_with('.') {
            return None; // `.`, `..`, and `..deleted-*` scratch directories
        }
        let mut parts = Vec::new();
        for comp in rest.split('.') {
            if comp.is_empty() {
                return None;
            }
            let decoded = mutf7::decode(comp.replace(DOT_ESCAPE, ".").as_bytes())
                .ok()?
                .into_owned();
            if decoded.contains(DELIMITER) || decoded.chars().any(char::is_control) {
                return None;
            }
            parts.push(decoded);
        }
        if parts[0].eq_ignore_ascii_case("INBOX") || parts.len() > MAX_DEPTH {
            return None;
        }
        Some(Self::Other(parts))
    }

    /// The parent folder, `None` at the top level.
    pub fn parent(&self) -> Option<Self> {
        match self {
            Self::Other(parts) if parts.len() > 1 => {
                Some(Self::Other(parts[..parts.len() - 1].to_vec()))
            }
            _ => None,
        }
    }

    /// Whether `self` is below `ancestor` in the hierarchy (not equal).
    pub fn is_below(&self, ancestor: &Self) -> bool {
        match (self, ancestor) {
            (Self::Other(a), Self::Other(b)) => a.len() > b.len() && a[..b.len()] == b[..],
            _ => false,
        }
    }

    /// `self` with the prefix `from` replaced by `to` (for RENAME of a subtree).
    pub fn rebase(&self, from: &Self, to: &Self) -> Option<Self> {
        match (self, from, to) {
            (Self::Other(a), Self::Other(f), Self::Other(t)) if a.starts_with(f) => {
                let mut parts = t.clone();
                parts.extend_from_slice(&a[f.len()..]);
                Some(Self::Other(parts))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_maildir_plus_plus() {
        let n = FolderName::parse("Archive/2024").unwrap();
        assert_eq!(n.dir_name().unwrap(), ".Archive.2024");
        let n = FolderName::parse("Entwürfe/v1.2 & more").unwrap();
        let dir = n.dir_name().unwrap();
        assert_eq!(dir, ".Entw&APw-rfe.v1&AC4-2 &- more");
        assert_eq!(FolderName::from_dir_name(&dir), Some(n));
        assert_eq!(FolderName::parse("inbox").unwrap(), FolderName::Inbox);
        assert_eq!(FolderName::parse("INBOX/").unwrap(), FolderName::Inbox);
        assert_eq!(
            FolderName::parse("Sent/").unwrap(),
            FolderName::Other(vec!["Sent".into()])
        );
        for bad in ["", "/", "a//b", "/a", "INBOX/x", "a\nb", &"x".repeat(300)] {
            assert!(FolderName::parse(bad).is_err(), "{bad:?}");
        }
        for not_ours in [".", "..", "..deleted-1", "cur", ".a..b", ".INBOX", ".&Jjo"] {
            assert_eq!(FolderName::from_dir_name(not_ours), None, "{not_ours}");
        }
    }

    #[test]
    fn hierarchy_helpers() {
        let a = FolderName::parse("a").unwrap();
        let ab = FolderName::parse("a/b").unwrap();
        let abc = FolderName::parse("a/b/c").unwrap();
        assert!(abc.is_below(&a) && abc.is_below(&ab) && !ab.is_below(&ab));
        assert_eq!(abc.parent(), Some(ab.clone()));
        let x = FolderName::parse("x").unwrap();
        assert_eq!(abc.rebase(&a, &x).unwrap().to_imap(), "x/b/c");
    }
}
