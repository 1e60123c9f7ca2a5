//! Decisions and the reasons behind refusals, mapped to what goes on the wire.

use std::time::Duration;

use crate::{OutlookClientVersion, Protocol};

/// The outcome of a policy check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Refuse, for this reason.
    Deny(Denial),
}

impl Decision {
    /// True for [`Decision::Allow`].
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }

    /// The denial, if any.
    pub fn denial(&self) -> Option<&Denial> {
        match self {
            Decision::Allow => None,
            Decision::Deny(d) => Some(d),
        }
    }

    /// `Ok(())` for allow, `Err(denial)` otherwise, for `?`.
    pub fn into_result(self) -> Result<(), Denial> {
        match self {
            Decision::Allow => Ok(()),
            Decision::Deny(d) => Err(d),
        }
    }
}

/// Why access was refused.
///
/// The wire mappings ([`pop3_code`](Self::pop3_code), [`imap_code`](Self::imap_code),
/// [`http_status`](Self::http_status)):
///
/// | reason | POP3 `-ERR [..]` | IMAP `NO`/`BYE [..]` | HTTP |
/// |---|---|---|---|
/// | `PrivacyRequired` | `AUTH` | `PRIVACYREQUIRED` | 403 |
/// | `MechanismDisabled` | `AUTH` | `CANNOT` | 403 |
/// | `ProtocolDisabled`, `OutlookVersionBlocked`, `NonCachedModeBlocked`, `RuleDenied` | `AUTH` | `AUTHORIZATIONFAILED` | 403 |
/// | `ServiceDisabled` | `SYS/PERM` | `UNAVAILABLE` | 403 |
/// | `RpcTargetRefused` | `SYS/PERM` | `CANNOT` | 403 |
/// | `TooManyConnections`, `TooManyConnectionsFromAddress` | `SYS/TEMP` | `UNAVAILABLE` | 503 |
/// | `TooManyConnectionsForUser` | `IN-USE` | `LIMIT` | 429 |
/// | `LoginDelay` | `LOGIN-DELAY` | `UNAVAILABLE` | 429 |
///
/// POP3 codes are RFC 2449's `IN-USE`/`LOGIN-DELAY` and RFC 3206's `SYS/TEMP`,
/// `SYS/PERM` and `AUTH`; IMAP codes are RFC 5530's and RFC 3501's `PRIVACYREQUIRED`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DenialReason {
    /// The mechanism needs TLS first (`LoginType`, `ExternalClientsRequireSsl`).
    PrivacyRequired,
    /// The mechanism is switched off (`EnableGSSAPIAndNTLMAuth = false`, or not in
    /// `IISAuthenticationMethods`).
    MechanismDisabled,
    /// The mailbox may not use this protocol (`PopEnabled = false`, ...).
    ProtocolDisabled(Protocol),
    /// The service is off for everybody (`Disable-OutlookAnywhere`).
    ServiceDisabled(Protocol),
    /// The Outlook version is in the mailbox's `MAPIBlockOutlookVersions`.
    OutlookVersionBlocked(OutlookClientVersion),
    /// Outlook in online mode while `MAPIBlockOutlookNonCachedMode` is set.
    NonCachedModeBlocked,
    /// The Outlook Anywhere proxy may not reach that `server:port` (`ValidPorts`).
    RpcTargetRefused,
    /// A client access rule with `DenyAccess` matched. The rule name is for logs; it
    /// is not in the client-facing message.
    RuleDenied {
        /// The rule's `Name`.
        rule: String,
    },
    /// `MaxConnections` reached.
    TooManyConnections,
    /// `MaxConnectionFromSingleIP` reached.
    TooManyConnectionsFromAddress,
    /// `MaxConnectionsPerUser` reached.
    TooManyConnectionsForUser,
    /// Too many failed logins recently; try again after the delay.
    LoginDelay {
        /// How long until a new attempt is considered.
        retry_after: Duration,
    },
}

impl DenialReason {
    /// The POP3 extended response code (without brackets).
    pub fn pop3_code(&self) -> &'static str {
        match self {
            DenialReason::PrivacyRequired
            | DenialReason::MechanismDisabled
            | DenialReason::ProtocolDisabled(_)
            | DenialReason::OutlookVersionBlocked(_)
            | DenialReason::NonCachedModeBlocked
            | DenialReason::RuleDenied { .. } => "AUTH",
            DenialReason::ServiceDisabled(_) | DenialReason::RpcTargetRefused => "SYS/PERM",
            DenialReason::TooManyConnections | DenialReason::TooManyConnectionsFromAddress => {
                "SYS/TEMP"
            }
            DenialReason::TooManyConnectionsForUser => "IN-USE",
            DenialReason::LoginDelay { .. } => "LOGIN-DELAY",
        }
    }

    /// The IMAP response code (without brackets).
    pub fn imap_code(&self) -> &'static str {
        match self {
            DenialReason::PrivacyRequired => "PRIVACYREQUIRED",
            DenialReason::MechanismDisabled | DenialReason::RpcTargetRefused => "CANNOT",
            DenialReason::ProtocolDisabled(_)
            | DenialReason::OutlookVersionBlocked(_)
            | DenialReason::NonCachedModeBlocked
            | DenialReason::RuleDenied { .. } => "AUTHORIZATIONFAILED",
            DenialReason::ServiceDisabled(_)
            | DenialReason::TooManyConnections
            | DenialReason::TooManyConnectionsFromAddress
            | DenialReason::LoginDelay { .. } => "UNAVAILABLE",
            DenialReason::TooManyConnectionsForUser => "LIMIT",
        }
    }

    /// The HTTP status for Outlook Anywhere, MAPI over HTTP and the other HTTP protocols.
    pub fn http_status(&self) -> u16 {
        match self {
            DenialReason::TooManyConnections | DenialReason::TooManyConnectionsFromAddress => 503,
            DenialReason::TooManyConnectionsForUser | DenialReason::LoginDelay { .. } => 429,
            _ => 403,
        }
    }

    /// True when retrying later may succeed without an administrator's change.
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            DenialReason::TooManyConnections
                | DenialReason::TooManyConnectionsFromAddress
                | DenialReason::TooManyConnectionsForUser
                | DenialReason::LoginDelay { .. }
        )
    }

    /// A sentence safe to send to the client: it names no rule, user or setting value.
    pub fn client_message(&self) -> String {
        match self {
            DenialReason::PrivacyRequired => {
                "Plain-text authentication requires a TLS connection".into()
            }
            DenialReason::MechanismDisabled => {
                "This authentication mechanism is not enabled".into()
            }
            DenialReason::ProtocolDisabled(p) => format!("{p} access is disabled for this account"),
            DenialReason::ServiceDisabled(p) => format!("{p} is disabled on this server"),
            DenialReason::OutlookVersionBlocked(_) => {
                "This version of Outlook is blocked for this account".into()
            }
            DenialReason::NonCachedModeBlocked => {
                "Outlook must use Cached Exchange Mode for this account".into()
            }
            DenialReason::RpcTargetRefused => {
                "The requested RPC server or port is not allowed".into()
            }
            DenialReason::RuleDenied { .. } => "Access denied by a client access rule".into(),
            DenialReason::TooManyConnections => {
                "Too many connections to the server; try again later".into()
            }
            DenialReason::TooManyConnectionsFromAddress => {
                "Too many connections from your address; try again later".into()
            }
            DenialReason::TooManyConnectionsForUser => {
                "Too many connections for this account; try again later".into()
            }
            DenialReason::LoginDelay { retry_after } => {
                format!(
                    "Too many failed logins; try again in {} seconds",
                    retry_after.as_secs().max(1)
                )
            }
        }
    }
}

/// A refusal: the typed reason and a message safe to send to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// Why.
    pub reason: DenialReason,
    /// [`DenialReason::client_message`], ready to send.
    pub message: String,
}

impl Denial {
    /// A denial with the reason's client message.
    pub fn new(reason: DenialReason) -> Self {
        let message = reason.client_message();
        Denial { reason, message }
    }

    /// See [`DenialReason::pop3_code`].
    pub fn pop3_code(&self) -> &'static str {
        self.reason.pop3_code()
    }

    /// See [`DenialReason::imap_code`].
    pub fn imap_code(&self) -> &'static str {
        self.reason.imap_code()
    }

    /// See [`DenialReason::http_status`].
    pub fn http_status(&self) -> u16 {
        self.reason.http_status()
    }
}

impl From<DenialReason> for Denial {
    fn from(reason: DenialReason) -> Self {
        Denial::new(reason)
    }
}

impl From<Denial> for Decision {
    fn from(d: Denial) -> Self {
        Decision::Deny(d)
    }
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Denial {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_mappings() {
        let d = Denial::new(DenialReason::ProtocolDisabled(Protocol::Pop3));
        assert_eq!(
            (d.pop3_code(), d.imap_code(), d.http_status()),
            ("AUTH", "AUTHORIZATIONFAILED", 403)
        );
        assert_eq!(d.message, "POP3 access is disabled for this account");
        let d = Denial::new(DenialReason::PrivacyRequired);
        assert_eq!((d.pop3_code(), d.imap_code()), ("AUTH", "PRIVACYREQUIRED"));
        let d = Denial::new(DenialReason::TooManyConnectionsFromAddress);
        assert_eq!(
            (d.pop3_code(), d.imap_code(), d.http_status()),
            ("SYS/TEMP", "UNAVAILABLE", 503)
        );
        let d = Denial::new(DenialReason::TooManyConnectionsForUser);
        assert_eq!(
            (d.pop3_code(), d.imap_code(), d.http_status()),
            ("IN-USE", "LIMIT", 429)
        );
        let d = Denial::new(DenialReason::LoginDelay {
            retry_after: Duration::from_millis(1500),
        });
        assert_eq!(d.pop3_code(), "LOGIN-DELAY");
        assert!(d.message.contains("1 seconds"));
        let d = Denial::new(DenialReason::RuleDenied {
            rule: "secret-rule".into(),
        });
        assert!(!d.message.contains("secret-rule"));
        assert!(Decision::Allow.is_allowed());
        assert!(Decision::from(d).into_result().is_err());
    }
}
