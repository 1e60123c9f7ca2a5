//! Message flags: the five system flags kept as Maildir info letters in the file name
//! (`:2,DFRST`), and keywords kept in the folder's index (see [`super::index`]).

use cas_imap_proto::types::{Atom, Flag, FlagFetch};

use super::StoreError;

/// The system flags a message can carry, as a small bit set.
///
/// On disk they are the Maildir info letters: `D` \Draft, `F` \Flagged, `R` \Answered
/// (replied), `S` \Seen, `T` \Deleted (trashed). Letters we do not map (`P` passed, Dovecot's
/// lower-case keyword letters) are kept untouched when a file is renamed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SystemFlags(u8);

impl SystemFlags {
    /// No flag.
    pub const NONE: Self = Self(0);
    /// `\Seen`
    pub const SEEN: Self = Self(1);
    /// `\Answered`
    pub const ANSWERED: Self = Self(2);
    /// `\Flagged`
    pub const FLAGGED: Self = Self(4);
    /// `\Deleted`
    pub const DELETED: Self = Self(8);
    /// `\Draft`
    pub const DRAFT: Self = Self(16);

    /// Every flag of `other` is set in `self`.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union.
    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// `self` without the flags of `other`.
    pub fn difference(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// No flag set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Maildir info letter ↔ flag, in the ASCII order the Maildir spec asks for.
    const LETTERS: [(char, SystemFlags); 5] = [
        ('D', Self::DRAFT),
        ('F', Self::FLAGGED),
        ('R', Self::ANSWERED),
        ('S', Self::SEEN),
        ('T', Self::DELETED),
    ];

    /// The flags named by the info part of a Maildir file name (`base:2,FS` → \Flagged \Seen).
    pub fn from_file_name(name: &str) -> Self {
        let Some(letters) = info_letters(name) else {
            return Self::NONE;
        };
        let mut flags = Self::NONE;
        for c in letters.chars() {
            if let Some((_, f)) = Self::LETTERS.iter().find(|(l, _)| *l == c) {
                flags = flags.union(*f);
            }
        }
        flags
    }

    /// The file name `name` renamed to carry `self`: the base name and unknown info letters
    /// stay, the five mapped letters are replaced, and the letters are sorted.
    pub fn apply_to_file_name(self, name: &str) -> String {
        let base = name.split_once(':').map_or(name, |(b, _)| b);
        let mut letters: Vec<char> = info_letters(name)
            .unwrap_or("")
            .chars()
            .filter(|c| !Self::LETTERS.iter().any(|(l, _)| l == c))
            .collect();
        for (l, f) in Self::LETTERS {
            if self.contains(f) {
                letters.push(l);
            }
        }
        letters.sort_unstable();
        letters.dedup();
        let mut out = String::with_capacity(base.len() + 4 + letters.len());
        out.push_str(base);
        out.push_str(":2,");
        out.extend(letters);
        out
    }

    /// The IMAP flags, in a fixed order.
    pub fn to_flags(self) -> Vec<Flag<'static>> {
        let mut out = Vec::with_capacity(5);
        for (f, flag) in [
            (Self::SEEN, Flag::Seen),
            (Self::ANSWERED, Flag::Answered),
            (Self::FLAGGED, Flag::Flagged),
            (Self::DELETED, Flag::Deleted),
            (Self::DRAFT, Flag::Draft),
        ] {
            if self.contains(f) {
                out.push(flag);
            }
        }
        out
    }
}

/// The letters after `:2,`, if the name has a version-2 info part.
fn info_letters(name: &str) -> Option<&str> {
    name.split_once(':')
        .and_then(|(_, info)| info.strip_prefix("2,"))
}

/// The flags of one message: system flags and keywords.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MessageFlags {
    /// `\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`.
    pub system: SystemFlags,
    /// Keywords (`$Forwarded`, `$Junk`, ...), sorted, without duplicates; compared
    /// case-insensitively (RFC 9051 §2.3.2) and kept in the case first used in the folder.
    pub keywords: Vec<String>,
}

impl MessageFlags {
    /// Builds flags from IMAP flags (STORE / APPEND arguments). `\Recent` and other
    /// backslash extension flags cannot be set by a client (RFC 3501 §2.3.2).
    pub fn from_imap(flags: &[Flag<'_>]) -> Result<Self, StoreError> {
        let mut out = Self::default();
        for flag in flags {
            match flag {
                Flag::Seen => out.system = out.system.union(SystemFlags::SEEN),
                Flag::Answered => out.system = out.system.union(SystemFlags::ANSWERED),
                Flag::Flagged => out.system = out.system.union(SystemFlags::FLAGGED),
                Flag::Deleted => out.system = out.system.union(SystemFlags::DELETED),
                Flag::Draft => out.system = out.system.union(SystemFlags::DRAFT),
                Flag::Keyword(atom) => out.add_keyword(atom.as_str()),
                Flag::Extension(e) => {
                    return Err(StoreError::InvalidFlag(format!(
                        "\\{}",
                        e.as_atom().as_str()
                    )));
                }
            }
        }
        Ok(out)
    }

    /// System flags only.
    pub fn system(system: SystemFlags) -> Self {
        Self {
            system,
            keywords: Vec::new(),
        }
    }

    /// Adds `keyword` unless present (any case).
    pub fn add_keyword(&mut self, keyword: &str) {
        if !self.has_keyword(keyword) {
            self.keywords.push(keyword.to_owned());
            self.keywords.sort_by_key(|k| k.to_ascii_lowercase());
        }
    }

    /// Whether `keyword` is set (any case).
    pub fn has_keyword(&self, keyword: &str) -> bool {
        self.keywords
            .iter()
            .any(|k| k.eq_ignore_ascii_case(keyword))
    }

    /// The IMAP flag list for FETCH FLAGS, with `\Recent` first when `recent`.
    pub fn to_fetch(&self, recent: bool) -> Vec<FlagFetch<'static>> {
        let mut out: Vec<FlagFetch<'static>> = Vec::with_capacity(6 + self.keywords.len());
        if recent {
            out.push(FlagFetch::Recent);
        }
        out.extend(self.system.to_flags().into_iter().map(FlagFetch::Flag));
        for k in &self.keywords {
            // Keywords were validated as atoms on the way in; a damaged index line that
            // smuggled anything else is skipped rather than written out as invalid syntax.
            if let Ok(atom) = Atom::new(k.clone()) {
                out.push(FlagFetch::Flag(Flag::Keyword(atom)));
            }
        }
        out
    }

    /// The IMAP flag list (no `\Recent`).
    pub fn to_flags(&self) -> Vec<Flag<'static>> {
        let mut out = self.system.to_flags();
        for k in &self.keywords {
            if let Ok(atom) = Atom::new(k.clone()) {
                out.push(Flag::Keyword(atom));
            }
        }
        out
    }
}

/// How STORE changes flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagOperation {
    /// `FLAGS`: replace the flags.
    Replace,
    /// `+FLAGS`: add.
    Add,
    /// `-FLAGS`: remove.
    Remove,
}

impl FlagOperation {
    /// The flags after applying `self` with `arg` to `current`.
    pub fn apply(self, current: &MessageFlags, arg: &MessageFlags) -> MessageFlags {
        match self {
            Self::Replace => arg.clone(),
            Self::Add => {
                let mut out = current.clone();
                out.system = out.system.union(arg.system);
                for k in &arg.keywords {
                    out.add_keyword(k);
                }
                out
            }
            Self::Remove => MessageFlags {
                system: current.system.difference(arg.system),
                keywords: current
                    .keywords
                    .iter()
                    .filter(|k| !arg.has_keyword(k))
                    .cloned()
                    .collect(),
            },
        }
    }
}

impl From<cas_imap_proto::command::StoreKind> for FlagOperation {
    fn from(kind: cas_imap_proto::command::StoreKind) -> Self {
        use cas_imap_proto::command::StoreKind;
        match kind {
            StoreKind::Replace => Self::Replace,
            StoreKind::Add => Self::Add,
            StoreKind::Remove => Self::Remove,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maildir_letters_round_trip() {
        let f = SystemFlags::from_file_name("123.abc.host:2,FPST");
        assert!(f.contains(SystemFlags::FLAGGED));
        assert!(f.contains(SystemFlags::SEEN));
        assert!(f.contains(SystemFlags::DELETED));
        assert!(!f.contains(SystemFlags::DRAFT));
        assert_eq!(
            SystemFlags::from_file_name("123.abc.host"),
            SystemFlags::NONE
        );
        assert_eq!(SystemFlags::from_file_name("x:1,S"), SystemFlags::NONE);
        // P and Dovecot keyword letters survive a flag change; letters stay sorted.
        let renamed = SystemFlags::DRAFT
            .union(SystemFlags::ANSWERED)
            .apply_to_file_name("123.abc.host:2,FPSab");
        assert_eq!(renamed, "123.abc.host:2,DPRab");
        assert_eq!(
            SystemFlags::SEEN.apply_to_file_name("1.x"),
            "1.x:2,S".to_owned()
        );
    }

    #[test]
    fn store_operations() {
        let cur = MessageFlags {
            system: SystemFlags::SEEN,
            keywords: vec!["$Forwarded".into()],
        };
        let arg = MessageFlags::from_imap(&[
            Flag::Flagged,
            Flag::Keyword(Atom::new("$forwarded").unwrap()),
            Flag::Keyword(Atom::new("Work").unwrap()),
        ])
        .unwrap();
        let added = FlagOperation::Add.apply(&cur, &arg);
        assert_eq!(added.system, SystemFlags::SEEN.union(SystemFlags::FLAGGED));
        assert_eq!(
            added.keywords,
            vec!["$Forwarded".to_owned(), "Work".to_owned()]
        );
        let removed = FlagOperation::Remove.apply(&added, &arg);
        assert_eq!(removed, MessageFlags::system(SystemFlags::SEEN));
        assert_eq!(FlagOperation::Replace.apply(&cur, &arg), arg);
        assert!(matches!(
            MessageFlags::from_imap(&[Flag::from_backslash_atom(Atom::new("Recent").unwrap())]),
            Err(StoreError::InvalidFlag(_))
        ));
    }
}
