//! Organizational unit paths.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// Most levels in an OU path.
pub const MAX_OU_DEPTH: usize = 32;
/// Longest OU path segment (Active Directory limits an OU name to 64 characters).
pub const MAX_OU_SEGMENT_LEN: usize = 64;

/// An organizational unit as a `/`-separated path from the top, such as
/// `corp/sales/emea` (Exchange shows the same hierarchy as a canonical name,
/// `example.com/corp/sales/emea`; the domain part is left out here).
///
/// ```text
/// ou-path = segment *("/" segment)
/// segment = 1*64(any character except "/" and control characters), not all spaces
/// ```
///
/// Segments compare case-insensitively in ASCII, as Active Directory names do. The
/// spelling given is kept for display.
#[derive(Debug, Clone, Eq)]
pub struct OuPath(String);

impl OuPath {
    /// Parses an OU path; at most [`MAX_OU_DEPTH`] segments of [`MAX_OU_SEGMENT_LEN`]
    /// characters.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        const KEY: &str = "OrganizationalUnit";
        let bad = |why: &str| ConfigError::invalid(KEY, text, why);
        if text.is_empty() {
            return Err(bad("an OU path cannot be empty"));
        }
        let mut depth = 0;
        for segment in text.split('/') {
            depth += 1;
            if depth > MAX_OU_DEPTH {
                return Err(bad("more than 32 levels"));
            }
            if segment.trim().is_empty() {
                return Err(bad("empty segment (leading, trailing or doubled '/')"));
            }
            if segment.chars().count() > MAX_OU_SEGMENT_LEN {
                return Err(bad("a segment is longer than 64 characters"));
            }
            if segment.chars().any(char::is_control) {
                return Err(bad("control characters are not allowed"));
            }
        }
        Ok(OuPath(text.to_owned()))
    }

    /// The path as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path's segments from the top.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// Whether `other` is this OU or lies anywhere below it ("user under OU").
    ///
    /// `corp/sales` contains `corp/sales` and `corp/sales/emea`, not `corp/salesforce`.
    pub fn contains(&self, other: &OuPath) -> bool {
        let mut mine = self.segments();
        let mut theirs = other.segments();
        loop {
            match (mine.next(), theirs.next()) {
                (None, _) => return true,
                (Some(_), None) => return false,
                (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => {}
                _ => return false,
            }
        }
    }
}

impl PartialEq for OuPath {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl std::hash::Hash for OuPath {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for b in self.0.bytes() {
            state.write_u8(b.to_ascii_lowercase());
        }
    }
}

impl fmt::Display for OuPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for OuPath {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OuPath::parse(s)
    }
}

impl Serialize for OuPath {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for OuPath {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        OuPath::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ou(s: &str) -> OuPath {
        s.parse().unwrap()
    }

    #[test]
    fn containment() {
        assert!(ou("corp").contains(&ou("corp/sales/emea")));
        assert!(ou("corp/sales").contains(&ou("corp/sales")));
        assert!(ou("Corp/Sales").contains(&ou("corp/sales/emea")));
        assert!(!ou("corp/sales").contains(&ou("corp/salesforce")));
        assert!(!ou("corp/sales/emea").contains(&ou("corp/sales")));
        assert!(!ou("corp/sales").contains(&ou("other/sales")));
        assert_eq!(ou("CORP/x"), ou("corp/X"));
    }

    #[test]
    fn refusals() {
        for bad in ["", "/corp", "corp/", "corp//sales", " ", "a/\u{7}b"] {
            assert!(OuPath::parse(bad).is_err(), "{bad:?}");
        }
        assert!(OuPath::parse("a/".repeat(32).trim_end_matches('/')).is_ok());
        assert!(OuPath::parse(&["a"; 33].join("/")).is_err());
        assert!(OuPath::parse(&"x".repeat(65)).is_err());
    }
}
