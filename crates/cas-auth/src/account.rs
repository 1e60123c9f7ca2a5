//! [`DomainPolicy`]: how the names clients present (`DOMAIN\user`, `user@domain`, `user`)
//! map to one account, for HTTP Basic and NTLM alike.

/// Why a presented name maps to no account.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccountNameError {
    /// The user part is empty (`DOMAIN\`, `@domain`, or nothing).
    #[error("empty user name")]
    EmptyUser,
    /// The name is qualified with a domain this server does not serve.
    #[error("domain {0:?} is not served here")]
    ForeignDomain(String),
}

/// A presented name split into the account's user name and the domain it was qualified
/// with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountName<'a> {
    /// The user part, looked up in the [`CredentialStore`](crate::CredentialStore).
    pub user: &'a str,
    /// The domain the client named (NetBIOS or DNS form, as typed), or `None` for a bare
    /// user name.
    pub domain: Option<&'a str>,
}

/// The domains whose users this server authenticates, and how qualified names map to
/// accounts.
///
/// `CORP\alice`, `alice@corp.example` and `alice` all name the account `alice` when `CORP`
/// and `corp.example` are accepted domains; a name qualified with any other domain is
/// refused ([`AccountNameError::ForeignDomain`]) rather than silently stripped, so that
/// `alice@evil.example` never becomes `alice`. Domain names compare case-insensitively in
/// ASCII. With no accepted domain at all, only bare names pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DomainPolicy {
    accepted: Vec<String>,
    default_domain: Option<String>,
}

impl DomainPolicy {
    /// A policy that accepts bare user names only.
    pub fn new() -> DomainPolicy {
        DomainPolicy::default()
    }

    /// Also accepts names qualified with `domain` (a NetBIOS name like `CORP` or a DNS
    /// name like `corp.example`; add both forms).
    pub fn with_domain(mut self, domain: impl Into<String>) -> DomainPolicy {
        let domain = domain.into();
        if !domain.is_empty() && !self.accepts(&domain) {
            self.accepted.push(domain);
        }
        self
    }

    /// Sets the domain bare user names belong to (reported by [`default_domain`]); it is
    /// accepted as well.
    ///
    /// [`default_domain`]: DomainPolicy::default_domain
    pub fn with_default_domain(self, domain: impl Into<String>) -> DomainPolicy {
        let domain = domain.into();
        let mut policy = self.with_domain(domain.clone());
        policy.default_domain = (!domain.is_empty()).then_some(domain);
        policy
    }

    /// The domain bare user names belong to.
    pub fn default_domain(&self) -> Option<&str> {
        self.default_domain.as_deref()
    }

    /// The accepted domains.
    pub fn domains(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.accepted.iter().map(String::as_str)
    }

    /// Whether `domain` is accepted. The empty domain always is (it means "none given").
    pub fn accepts(&self, domain: &str) -> bool {
        domain.is_empty() || self.accepted.iter().any(|d| d.eq_ignore_ascii_case(domain))
    }

    /// Maps a login name as typed (HTTP Basic user-id): `DOMAIN\user`, `user@domain`
    /// (UPN, split at the last `@`) or `user`.
    ///
    /// ```
    /// use cas_auth::{AccountName, AccountNameError, DomainPolicy};
    ///
    /// let policy = DomainPolicy::new().with_default_domain("CORP").with_domain("corp.example");
    /// for login in [r"CORP\alice", "alice@corp.example", "alice", r"corp\alice"] {
    ///     assert_eq!(policy.resolve_login(login).unwrap().user, "alice");
    /// }
    /// assert_eq!(
    ///     policy.resolve_login("alice@evil.example"),
    ///     Err(AccountNameError::ForeignDomain("evil.example".into()))
    /// );
    /// ```
    pub fn resolve_login<'a>(&self, login: &'a str) -> Result<AccountName<'a>, AccountNameError> {
        self.resolve(login, "")
    }

    /// Maps a user name and a separate domain (NTLM's `UserName` and `DomainName`). An
    /// empty domain lets the user name carry one (`DOMAIN\user` or a UPN, as Windows
    /// sends for `user@domain` logons); a user name that is itself qualified must agree
    /// with the policy too.
    pub fn resolve<'a>(
        &self,
        user: &'a str,
        domain: &'a str,
    ) -> Result<AccountName<'a>, AccountNameError> {
        let check = |d: &str| {
            if self.accepts(d) {
                Ok(())
            } else {
                Err(AccountNameError::ForeignDomain(d.to_owned()))
            }
        };
        check(domain)?;
        let (user, qualified) = if let Some((d, u)) = user.split_once('\\') {
            check(d)?;
            (u, Some(d))
        } else if let Some((u, d)) = user.rsplit_once('@') {
            check(d)?;
            (u, Some(d))
        } else {
            (user, None)
        };
        if user.is_empty() {
            return Err(AccountNameError::EmptyUser);
        }
        let domain = qualified
            .filter(|d| !d.is_empty())
            .or((!domain.is_empty()).then_some(domain));
        Ok(AccountName { user, domain })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let p = DomainPolicy::new()
            .with_domain("CORP")
            .with_domain("corp.example");
        let ok = |u, d| p.resolve(u, d).map(|a| (a.user, a.domain));
        assert_eq!(ok("alice", ""), Ok(("alice", None)));
        assert_eq!(ok("alice", "corp"), Ok(("alice", Some("corp"))));
        assert_eq!(
            ok("alice@Corp.Example", ""),
            Ok(("alice", Some("Corp.Example")))
        );
        assert_eq!(ok(r"CORP\alice", ""), Ok(("alice", Some("CORP"))));
        assert_eq!(
            ok("a@b@corp.example", ""),
            Ok(("a@b", Some("corp.example")))
        );
        assert_eq!(
            ok("alice", "OTHER"),
            Err(AccountNameError::ForeignDomain("OTHER".into()))
        );
        assert_eq!(
            ok("alice@other.example", "CORP"),
            Err(AccountNameError::ForeignDomain("other.example".into()))
        );
        assert_eq!(ok("", "CORP"), Err(AccountNameError::EmptyUser));
        assert_eq!(ok(r"CORP\", ""), Err(AccountNameError::EmptyUser));
        assert_eq!(ok("@corp.example", ""), Err(AccountNameError::EmptyUser));
        // Without accepted domains only bare names pass.
        let bare = DomainPolicy::new();
        assert!(bare.resolve_login("alice").is_ok());
        assert!(bare.resolve_login(r"X\alice").is_err());
        assert_eq!(p.default_domain(), None);
        let d = DomainPolicy::new().with_default_domain("CORP");
        assert_eq!(d.default_domain(), Some("CORP"));
        assert!(d.accepts("corp"));
        assert_eq!(d.domains().count(), 1);
    }
}
