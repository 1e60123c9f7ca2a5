//! Client access rules (`New-ClientAccessRule`): ordered allow/deny rules on protocol,
//! client address, user name, organizational unit and authentication type.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::{AuthMechanism, AuthenticationType, ConfigError, IpRange, OuPath, Protocol};

/// Most rules in one configuration.
pub const MAX_RULES: usize = 1_000;
/// Most entries in one condition list of a rule.
pub const MAX_CONDITION_ENTRIES: usize = 1_000;
/// Longest rule name and longest user-name pattern.
pub const MAX_RULE_TEXT_LEN: usize = 256;

/// What a matching rule does (`-Action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RuleAction {
    /// Allow the connection; later rules are not evaluated.
    AllowAccess,
    /// Refuse the connection.
    DenyAccess,
}

/// A protocol name of `AnyOfProtocols` / `ExceptAnyOfProtocols`, Exchange's vocabulary.
///
/// All of Exchange's values load, so rule sets exported from Exchange work; the ones
/// this tier does not serve never match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[allow(clippy::upper_case_acronyms)] // Exchange's spelling
pub enum RuleProtocol {
    /// Exchange ActiveSync.
    ExchangeActiveSync,
    /// The Exchange admin center (not served here).
    ExchangeAdminCenter,
    /// Exchange Web Services.
    ExchangeWebServices,
    /// IMAP4.
    IMAP4,
    /// The offline address book (not served here).
    OfflineAddressBook,
    /// Outlook Anywhere, including MAPI over HTTP.
    OutlookAnywhere,
    /// Outlook on the web.
    OutlookWebApp,
    /// POP3.
    POP3,
    /// PowerShell web services (not served here).
    PowerShellWebServices,
    /// Remote PowerShell (not served here).
    RemotePowerShell,
    /// REST APIs (not served here).
    REST,
    /// The new Outlook for Windows (not served here).
    UniversalOutlook,
}

crate::protocol::exchange_names!(
    RuleAction,
    "Action",
    [AllowAccess = "AllowAccess", DenyAccess = "DenyAccess"]
);
crate::protocol::exchange_names!(
    RuleProtocol,
    "AnyOfProtocols",
    [
        ExchangeActiveSync = "ExchangeActiveSync",
        ExchangeAdminCenter = "ExchangeAdminCenter",
        ExchangeWebServices = "ExchangeWebServices",
        IMAP4 = "IMAP4",
        OfflineAddressBook = "OfflineAddressBook",
        OutlookAnywhere = "OutlookAnywhere",
        OutlookWebApp = "OutlookWebApp",
        POP3 = "POP3",
        PowerShellWebServices = "PowerShellWebServices",
        RemotePowerShell = "RemotePowerShell",
        REST = "REST",
        UniversalOutlook = "UniversalOutlook",
    ]
);

/// A `UsernameMatchesAnyOfPatterns` entry: a user name with `*` wildcards (any run of
/// characters, possibly empty), compared case-insensitively in ASCII.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserPattern(String);

impl UserPattern {
    /// A pattern; at most [`MAX_RULE_TEXT_LEN`] bytes, not empty, no control characters.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        const KEY: &str = "UsernameMatchesAnyOfPatterns";
        if text.is_empty() || text.len() > MAX_RULE_TEXT_LEN {
            return Err(ConfigError::invalid(
                KEY,
                text,
                "a pattern is 1 to 256 bytes",
            ));
        }
        if text.chars().any(char::is_control) {
            return Err(ConfigError::invalid(
                KEY,
                text,
                "control characters are not allowed",
            ));
        }
        Ok(UserPattern(text.to_owned()))
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `user` matches. Runs in O(pattern × name) time at worst: the classic
    /// greedy matcher with one backtrack point, so hostile patterns cannot blow up.
    pub fn matches(&self, user: &str) -> bool {
        let p: Vec<char> = self.0.chars().map(|c| c.to_ascii_lowercase()).collect();
        let s: Vec<char> = user.chars().map(|c| c.to_ascii_lowercase()).collect();
        let (mut pi, mut si) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while si < s.len() {
            if pi < p.len() && p[pi] != '*' && p[pi] == s[si] {
                pi += 1;
                si += 1;
            } else if pi < p.len() && p[pi] == '*' {
                star = Some((pi, si));
                pi += 1;
            } else if let Some((sp, ss)) = star {
                pi = sp + 1;
                si = ss + 1;
                star = Some((sp, ss + 1));
            } else {
                return false;
            }
        }
        p[pi..].iter().all(|&c| c == '*')
    }
}

impl Serialize for UserPattern {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for UserPattern {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        UserPattern::parse(&text).map_err(serde::de::Error::custom)
    }
}

fn default_true() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// One client access rule (`[[ClientAccessRule]]`).
///
/// A rule matches when every condition it sets holds and no exception does; a
/// condition list matches when any entry does; an unset or empty list is no
/// condition. A rule without conditions matches every connection (a catch-all).
///
/// Rules are evaluated in ascending `Priority` (0 first); rules without a `Priority`
/// come after all prioritised ones, in file order. The first matching enabled rule
/// decides; when none matches, access is allowed — Exchange's semantics.
///
/// `AnyOfOrganizationalUnits` / `ExceptAnyOfOrganizationalUnits` stand in for
/// Exchange's `UserRecipientFilter` (an OPATH filter), covering its common use: a
/// user under one of these OUs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientAccessRule {
    /// `Name`: unique (case-insensitive), 1 to 256 bytes.
    #[serde(rename = "Name")]
    pub name: String,
    /// `Priority`: evaluation order, lowest first; unique when set.
    #[serde(rename = "Priority", default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    /// `Enabled`: a disabled rule is skipped; default true.
    #[serde(
        rename = "Enabled",
        default = "default_true",
        skip_serializing_if = "is_true"
    )]
    pub enabled: bool,
    /// `Action`.
    #[serde(rename = "Action")]
    pub action: RuleAction,
    /// `AnyOfProtocols`.
    #[serde(
        rename = "AnyOfProtocols",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub any_of_protocols: Vec<RuleProtocol>,
    /// `ExceptAnyOfProtocols`.
    #[serde(
        rename = "ExceptAnyOfProtocols",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub except_any_of_protocols: Vec<RuleProtocol>,
    /// `AnyOfClientIPAddressesOrRanges`.
    #[serde(
        rename = "AnyOfClientIPAddressesOrRanges",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub any_of_client_ip_addresses_or_ranges: Vec<IpRange>,
    /// `ExceptAnyOfClientIPAddressesOrRanges`.
    #[serde(
        rename = "ExceptAnyOfClientIPAddressesOrRanges",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub except_any_of_client_ip_addresses_or_ranges: Vec<IpRange>,
    /// `UsernameMatchesAnyOfPatterns`.
    #[serde(
        rename = "UsernameMatchesAnyOfPatterns",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub username_matches_any_of_patterns: Vec<UserPattern>,
    /// `ExceptUsernameMatchesAnyOfPatterns`.
    #[serde(
        rename = "ExceptUsernameMatchesAnyOfPatterns",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub except_username_matches_any_of_patterns: Vec<UserPattern>,
    /// `AnyOfOrganizationalUnits`: the user is in one of these OUs or below.
    #[serde(
        rename = "AnyOfOrganizationalUnits",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub any_of_organizational_units: Vec<OuPath>,
    /// `ExceptAnyOfOrganizationalUnits`.
    #[serde(
        rename = "ExceptAnyOfOrganizationalUnits",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub except_any_of_organizational_units: Vec<OuPath>,
    /// `AnyOfAuthenticationTypes`.
    #[serde(
        rename = "AnyOfAuthenticationTypes",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub any_of_authentication_types: Vec<AuthenticationType>,
    /// `ExceptAnyOfAuthenticationTypes`.
    #[serde(
        rename = "ExceptAnyOfAuthenticationTypes",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub except_any_of_authentication_types: Vec<AuthenticationType>,
}

/// What a rule sees of a connection. At connection time the user, OU and mechanism
/// are unknown (`None`), so rules that test them cannot be decided yet.
#[derive(Debug, Clone, Copy)]
pub struct RuleInput<'a> {
    /// The protocol.
    pub protocol: Protocol,
    /// The client address.
    pub client_addr: IpAddr,
    /// The user, once known.
    pub user: Option<&'a str>,
    /// The user's OU, once the user is known (`Some(None)`: known, in no OU).
    pub ou: Option<Option<&'a OuPath>>,
    /// The authentication mechanism, once known.
    pub mechanism: Option<AuthMechanism>,
}

/// The outcome of testing one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleMatch {
    /// Every condition holds and no exception does.
    Matches,
    /// Some known condition fails or some known exception holds.
    NoMatch,
    /// The known parts hold but a condition on the user or mechanism is not yet known.
    Undecided,
}

impl ClientAccessRule {
    /// A rule with no conditions.
    pub fn new(name: impl Into<String>, action: RuleAction) -> Self {
        ClientAccessRule {
            name: name.into(),
            priority: None,
            enabled: true,
            action,
            any_of_protocols: Vec::new(),
            except_any_of_protocols: Vec::new(),
            any_of_client_ip_addresses_or_ranges: Vec::new(),
            except_any_of_client_ip_addresses_or_ranges: Vec::new(),
            username_matches_any_of_patterns: Vec::new(),
            except_username_matches_any_of_patterns: Vec::new(),
            any_of_organizational_units: Vec::new(),
            except_any_of_organizational_units: Vec::new(),
            any_of_authentication_types: Vec::new(),
            except_any_of_authentication_types: Vec::new(),
        }
    }

    /// Tests the rule against what is known of a connection (ignores `Enabled`).
    pub fn evaluate(&self, input: &RuleInput<'_>) -> RuleMatch {
        // Each condition yields Some(true/false) when decidable, None when not.
        let proto = input.protocol.rule_protocol();
        let ip = input.client_addr;
        let user_cond =
            |list: &[UserPattern]| input.user.map(|u| list.iter().any(|p| p.matches(u)));
        let ou_cond = |list: &[OuPath]| {
            input
                .ou
                .map(|ou| ou.is_some_and(|ou| list.iter().any(|top| top.contains(ou))))
        };
        let auth_cond = |list: &[AuthenticationType]| {
            input
                .mechanism
                .map(|m| list.contains(&m.authentication_type()))
        };
        // (is the list set?, does any entry match?) for conditions, then exceptions.
        let conditions = [
            (
                !self.any_of_protocols.is_empty(),
                Some(self.any_of_protocols.contains(&proto)),
            ),
            (
                !self.any_of_client_ip_addresses_or_ranges.is_empty(),
                Some(
                    self.any_of_client_ip_addresses_or_ranges
                        .iter()
                        .any(|r| r.contains(ip)),
                ),
            ),
            (
                !self.username_matches_any_of_patterns.is_empty(),
                user_cond(&self.username_matches_any_of_patterns),
            ),
            (
                !self.any_of_organizational_units.is_empty(),
                ou_cond(&self.any_of_organizational_units),
            ),
            (
                !self.any_of_authentication_types.is_empty(),
                auth_cond(&self.any_of_authentication_types),
            ),
        ];
        let exceptions = [
            (
                !self.except_any_of_protocols.is_empty(),
                Some(self.except_any_of_protocols.contains(&proto)),
            ),
            (
                !self.except_any_of_client_ip_addresses_or_ranges.is_empty(),
                Some(
                    self.except_any_of_client_ip_addresses_or_ranges
                        .iter()
                        .any(|r| r.contains(ip)),
                ),
            ),
            (
                !self.except_username_matches_any_of_patterns.is_empty(),
                user_cond(&self.except_username_matches_any_of_patterns),
            ),
            (
                !self.except_any_of_organizational_units.is_empty(),
                ou_cond(&self.except_any_of_organizational_units),
            ),
            (
                !self.except_any_of_authentication_types.is_empty(),
                auth_cond(&self.except_any_of_authentication_types),
            ),
        ];
        let mut undecided = false;
        for (set, holds) in conditions {
            match (set, holds) {
                (false, _) | (true, Some(true)) => {}
                (true, Some(false)) => return RuleMatch::NoMatch,
                (true, None) => undecided = true,
            }
        }
        for (set, holds) in exceptions {
            match (set, holds) {
                (false, _) | (true, Some(false)) => {}
                (true, Some(true)) => return RuleMatch::NoMatch,
                (true, None) => undecided = true,
            }
        }
        if undecided {
            RuleMatch::Undecided
        } else {
            RuleMatch::Matches
        }
    }

    /// Checks the rule's values; keys are named `ClientAccessRule[<index>].<Key>`.
    pub fn validate(&self, index: usize) -> Result<(), ConfigError> {
        let key = |k: &str| format!("ClientAccessRule[{index}].{k}");
        if self.name.is_empty()
            || self.name.len() > MAX_RULE_TEXT_LEN
            || self.name.chars().any(char::is_control)
        {
            return Err(ConfigError::invalid(
                key("Name"),
                self.name.as_str(),
                "1 to 256 bytes, no control characters",
            ));
        }
        let lens = [
            ("AnyOfProtocols", self.any_of_protocols.len()),
            ("ExceptAnyOfProtocols", self.except_any_of_protocols.len()),
            (
                "AnyOfClientIPAddressesOrRanges",
                self.any_of_client_ip_addresses_or_ranges.len(),
            ),
            (
                "ExceptAnyOfClientIPAddressesOrRanges",
                self.except_any_of_client_ip_addresses_or_ranges.len(),
            ),
            (
                "UsernameMatchesAnyOfPatterns",
                self.username_matches_any_of_patterns.len(),
            ),
            (
                "ExceptUsernameMatchesAnyOfPatterns",
                self.except_username_matches_any_of_patterns.len(),
            ),
            (
                "AnyOfOrganizationalUnits",
                self.any_of_organizational_units.len(),
            ),
            (
                "ExceptAnyOfOrganizationalUnits",
                self.except_any_of_organizational_units.len(),
            ),
            (
                "AnyOfAuthenticationTypes",
                self.any_of_authentication_types.len(),
            ),
            (
                "ExceptAnyOfAuthenticationTypes",
                self.except_any_of_authentication_types.len(),
            ),
        ];
        for (name, len) in lens {
            if len > MAX_CONDITION_ENTRIES {
                return Err(ConfigError::out_of_range(
                    key(name),
                    format!("{len} entries"),
                    format!("at most {MAX_CONDITION_ENTRIES} entries"),
                ));
            }
        }
        for p in self
            .username_matches_any_of_patterns
            .iter()
            .chain(&self.except_username_matches_any_of_patterns)
        {
            UserPattern::parse(p.as_str())
                .map_err(|e| e.within(&format!("ClientAccessRule[{index}]")))?;
        }
        Ok(())
    }
}

/// Rules in evaluation order: ascending priority, unprioritised last in file order.
pub(crate) fn evaluation_order(rules: &[ClientAccessRule]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rules.len()).collect();
    order.sort_by_key(|&i| {
        (
            rules[i].priority.unwrap_or(u32::MAX),
            rules[i].priority.is_none(),
            i,
        )
    });
    order
}

/// Checks a whole rule list: each rule, unique names and unique priorities.
pub(crate) fn validate_rules(rules: &[ClientAccessRule]) -> Result<(), ConfigError> {
    if rules.len() > MAX_RULES {
        return Err(ConfigError::out_of_range(
            "ClientAccessRule",
            format!("{} rules", rules.len()),
            format!("at most {MAX_RULES} rules"),
        ));
    }
    for (i, rule) in rules.iter().enumerate() {
        rule.validate(i)?;
        for earlier in &rules[..i] {
            if earlier.name.eq_ignore_ascii_case(&rule.name) {
                return Err(ConfigError::invalid(
                    format!("ClientAccessRule[{i}].Name"),
                    rule.name.as_str(),
                    "another rule has this name",
                ));
            }
            if rule.priority.is_some() && earlier.priority == rule.priority {
                return Err(ConfigError::invalid(
                    format!("ClientAccessRule[{i}].Priority"),
                    rule.priority.map(|p| p.to_string()).unwrap_or_default(),
                    format!("rule {:?} has the same priority", earlier.name),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(protocol: Protocol, ip: &str) -> RuleInput<'a> {
        RuleInput {
            protocol,
            client_addr: ip.parse().unwrap(),
            user: None,
            ou: None,
            mechanism: None,
        }
    }

    #[test]
    fn wildcards() {
        let p = |s: &str| UserPattern::parse(s).unwrap();
        assert!(p("*@example.com").matches("Alice@Example.com"));
        assert!(p("a*e").matches("alice"));
        assert!(p("a*e").matches("ae"));
        assert!(!p("a*e").matches("alicea"));
        assert!(p("*").matches(""));
        assert!(p("a**b*c").matches("axxbyyc"));
        assert!(!p("alice").matches("alice2"));
        assert!(p("*a*a*a*a*a*a*a*b").matches(&format!("{}b", "a".repeat(200))));
        assert!(!p("*a*a*a*a*a*a*a*b").matches(&"a".repeat(200)));
    }

    #[test]
    fn conditions_and_exceptions() {
        let mut r = ClientAccessRule::new("r", RuleAction::DenyAccess);
        r.any_of_protocols = vec![RuleProtocol::POP3];
        r.any_of_client_ip_addresses_or_ranges = vec!["10.0.0.0/8".parse().unwrap()];
        r.except_any_of_client_ip_addresses_or_ranges = vec!["10.1.0.0/16".parse().unwrap()];
        assert_eq!(
            r.evaluate(&input(Protocol::Pop3, "10.2.0.1")),
            RuleMatch::Matches
        );
        assert_eq!(
            r.evaluate(&input(Protocol::Pop3, "10.1.0.1")),
            RuleMatch::NoMatch
        );
        assert_eq!(
            r.evaluate(&input(Protocol::Imap4, "10.2.0.1")),
            RuleMatch::NoMatch
        );
        assert_eq!(
            r.evaluate(&input(Protocol::Pop3, "192.0.2.1")),
            RuleMatch::NoMatch
        );
        r.any_of_authentication_types = vec![AuthenticationType::BasicAuthentication];
        assert_eq!(
            r.evaluate(&input(Protocol::Pop3, "10.2.0.1")),
            RuleMatch::Undecided
        );
        let mut known = input(Protocol::Pop3, "10.2.0.1");
        known.mechanism = Some(AuthMechanism::Ntlm);
        assert_eq!(r.evaluate(&known), RuleMatch::NoMatch);
        known.mechanism = Some(AuthMechanism::UserPass);
        assert_eq!(r.evaluate(&known), RuleMatch::Matches);
        // A known failing condition wins over an unknown one.
        assert_eq!(
            r.evaluate(&input(Protocol::Imap4, "10.2.0.1")),
            RuleMatch::NoMatch
        );
    }

    #[test]
    fn ou_conditions() {
        let mut r = ClientAccessRule::new("ou", RuleAction::DenyAccess);
        r.any_of_organizational_units = vec!["corp/sales".parse().unwrap()];
        let emea: OuPath = "corp/sales/emea".parse().unwrap();
        let eng: OuPath = "corp/engineering".parse().unwrap();
        let mut i = input(Protocol::Imap4, "192.0.2.1");
        assert_eq!(r.evaluate(&i), RuleMatch::Undecided);
        i.user = Some("alice");
        i.ou = Some(Some(&emea));
        assert_eq!(r.evaluate(&i), RuleMatch::Matches);
        i.ou = Some(Some(&eng));
        assert_eq!(r.evaluate(&i), RuleMatch::NoMatch);
        i.ou = Some(None);
        assert_eq!(r.evaluate(&i), RuleMatch::NoMatch);
    }

    #[test]
    fn mapi_http_is_outlook_anywhere() {
        let mut r = ClientAccessRule::new("oa", RuleAction::DenyAccess);
        r.any_of_protocols = vec![RuleProtocol::OutlookAnywhere];
        assert_eq!(
            r.evaluate(&input(Protocol::MapiHttp, "192.0.2.1")),
            RuleMatch::Matches
        );
    }

    #[test]
    fn order_and_validation() {
        let mut a = ClientAccessRule::new("a", RuleAction::AllowAccess);
        let mut b = ClientAccessRule::new("b", RuleAction::DenyAccess);
        let c = ClientAccessRule::new("c", RuleAction::DenyAccess);
        b.priority = Some(1);
        a.priority = Some(5);
        let rules = vec![a.clone(), b.clone(), c];
        assert_eq!(evaluation_order(&rules), vec![1, 0, 2]);
        validate_rules(&rules).unwrap();
        let mut dup = rules.clone();
        dup[2].priority = Some(5);
        assert_eq!(
            validate_rules(&dup).unwrap_err().key(),
            Some("ClientAccessRule[2].Priority")
        );
        let mut dup = rules;
        dup[2].name = "A".into();
        assert_eq!(
            validate_rules(&dup).unwrap_err().key(),
            Some("ClientAccessRule[2].Name")
        );
    }
}
