//! Configuration errors.

/// Why a policy configuration or a change to it was refused.
///
/// Every variant names the offending key with its TOML path (for example
/// `PopSettings.MaxCommandSize` or `CASMailbox.alice.MAPIBlockOutlookVersions`) so an
/// administrator can find it, and out-of-range values state the allowed range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The text is not valid TOML, has an unknown key or a value of the wrong type. The
    /// message comes from the TOML parser and shows the line and the key.
    #[error("policy file: {message}")]
    Syntax {
        /// The parser's description, with line, column and the offending key.
        message: String,
    },
    /// A number or duration is outside the range Exchange allows.
    #[error("{key} = {value} is out of range; allowed: {allowed}")]
    OutOfRange {
        /// TOML path of the key.
        key: String,
        /// The value given.
        value: String,
        /// The allowed range, e.g. `40..=1024`.
        allowed: String,
    },
    /// A value has the right type but is not acceptable.
    #[error("{key} = {value:?} is invalid: {reason}")]
    Invalid {
        /// TOML path of the key.
        key: String,
        /// The value given.
        value: String,
        /// What is expected instead.
        reason: String,
    },
    /// A change names a mailbox the configuration does not have.
    #[error("no mailbox named {user:?}")]
    UnknownMailbox {
        /// The user name given.
        user: String,
    },
    /// A mailbox is added twice (user names compare case-insensitively in ASCII).
    #[error("mailbox {user:?} already exists")]
    DuplicateMailbox {
        /// The user name given.
        user: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(
        key: impl Into<String>,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            value: value.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn out_of_range(
        key: impl Into<String>,
        value: impl std::fmt::Display,
        allowed: impl Into<String>,
    ) -> Self {
        ConfigError::OutOfRange {
            key: key.into(),
            value: value.to_string(),
            allowed: allowed.into(),
        }
    }

    /// The TOML path of the offending key, when the error is about one key.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::OutOfRange { key, .. } | ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }

    /// Prefixes the key path with `prefix.` (used when a value parsed without context
    /// is validated inside a table).
    pub(crate) fn within(self, prefix: &str) -> Self {
        match self {
            ConfigError::OutOfRange {
                key,
                value,
                allowed,
            } => ConfigError::OutOfRange {
                key: format!("{prefix}.{key}"),
                value,
                allowed,
            },
            ConfigError::Invalid { key, value, reason } => ConfigError::Invalid {
                key: format!("{prefix}.{key}"),
                value,
                reason,
            },
            other => other,
        }
    }
}
