//! The policy file: [`PolicyConfig`], its TOML form, validation and admin changes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::mailbox::validate_user_name;
use crate::rules::validate_rules;
use crate::{
    CasMailbox, CasMailboxChange, ClientAccessRule, ConfigError, ImapSettings, ImapSettingsChange,
    OrganizationSettings, OuPath, OutlookAnywhereChange, OutlookAnywhereSettings, PopSettings,
    PopSettingsChange, Target, ThrottleConfig,
};

/// Largest accepted policy file, in bytes (4 MiB: tens of thousands of mailboxes).
pub const MAX_CONFIG_LEN: usize = 4 << 20;

/// The whole policy as an administrator writes it: every scope, every mailbox and the
/// client access rules.
///
/// TOML tables and keys use Exchange's parameter names verbatim:
///
/// ```toml
/// [Organization]
/// MapiHttpEnabled = true
///
/// [PopSettings]
/// LoginType = "SecureLogin"
/// MaxConnectionFromSingleIP = 20
///
/// [ImapSettings]
/// MaxCommandSize = 10240
///
/// [OutlookAnywhere]
/// ExternalHostname = "mail.example.com"
///
/// [LoginThrottle]
/// AddressFreeFailures = 5
///
/// [CASMailbox.alice]
/// OrganizationalUnit = "corp/sales"
/// PopEnabled = false
///
/// [[ClientAccessRule]]
/// Name = "block-legacy"
/// Action = "DenyAccess"
/// AnyOfProtocols = ["POP3"]
/// ```
///
/// Every table and key is optional (Exchange's defaults apply); unknown keys are
/// refused. [`from_toml_str`](Self::from_toml_str) validates everything once; the
/// decisions never re-check at run time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// `[Organization]`.
    #[serde(rename = "Organization")]
    pub organization: OrganizationSettings,
    /// `[PopSettings]`.
    #[serde(rename = "PopSettings")]
    pub pop: PopSettings,
    /// `[ImapSettings]`.
    #[serde(rename = "ImapSettings")]
    pub imap: ImapSettings,
    /// `[OutlookAnywhere]`.
    #[serde(rename = "OutlookAnywhere")]
    pub outlook_anywhere: OutlookAnywhereSettings,
    /// `[LoginThrottle]`.
    #[serde(rename = "LoginThrottle")]
    pub login_throttle: ThrottleConfig,
    /// `[CASMailbox.<user>]`: mailboxes by user name. Users without an entry have
    /// every default and no OU.
    #[serde(rename = "CASMailbox")]
    pub mailboxes: BTreeMap<String, CasMailbox>,
    /// `[[ClientAccessRule]]`, in file order.
    #[serde(rename = "ClientAccessRule")]
    pub rules: Vec<ClientAccessRule>,
}

impl PolicyConfig {
    /// Parses and validates a policy file.
    ///
    /// Errors: [`ConfigError::Syntax`] for TOML syntax, unknown keys and wrong types
    /// (the message shows the line and key); [`ConfigError::OutOfRange`] and
    /// [`ConfigError::Invalid`] naming the key and what is allowed.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        if text.len() > MAX_CONFIG_LEN {
            return Err(ConfigError::out_of_range(
                "policy file",
                format!("{} bytes", text.len()),
                format!("at most {MAX_CONFIG_LEN} bytes"),
            ));
        }
        let config: PolicyConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            message: e.to_string().trim_end().to_owned(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The configuration as TOML; [`from_toml_str`](Self::from_toml_str) reads it back
    /// equal.
    pub fn to_toml_string(&self) -> String {
        // Every type here serializes to TOML (string keys, no bare values, no None in
        // arrays), so the serializer cannot fail; fall back to an empty policy rather
        // than panic if that ever changes.
        toml::to_string(self).unwrap_or_default()
    }

    /// Checks every value. Called by [`from_toml_str`](Self::from_toml_str),
    /// [`Policy::new`](crate::Policy::new) and every change method.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.pop.validate()?;
        self.imap.validate()?;
        self.outlook_anywhere.validate()?;
        self.login_throttle.validate()?;
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        for (user, mailbox) in &self.mailboxes {
            validate_user_name(user)?;
            if let Some(first) = seen.insert(user.to_ascii_lowercase(), user) {
                return Err(ConfigError::invalid(
                    format!("CASMailbox.{user}"),
                    user.as_str(),
                    format!("the same user as CASMailbox.{first} (names are case-insensitive)"),
                ));
            }
            // Values built in code skip the parsers; re-check the ones with a grammar.
            if let Some(ou) = &mailbox.organizational_unit {
                OuPath::parse(ou.as_str()).map_err(|e| e.within(&format!("CASMailbox.{user}")))?;
            }
        }
        validate_rules(&self.rules)
    }

    /// The key in `mailboxes` of `user` (case-insensitive in ASCII).
    pub fn mailbox_key(&self, user: &str) -> Option<&str> {
        if let Some((k, _)) = self.mailboxes.get_key_value(user) {
            return Some(k);
        }
        self.mailboxes
            .keys()
            .find(|k| k.eq_ignore_ascii_case(user))
            .map(String::as_str)
    }

    /// The mailbox of `user`, if it has an entry.
    pub fn mailbox(&self, user: &str) -> Option<&CasMailbox> {
        self.mailbox_key(user).and_then(|k| self.mailboxes.get(k))
    }

    /// The user names a target selects, in name order: one existing mailbox, or every
    /// mailbox in the OU or below.
    pub fn select(&self, target: &Target) -> Result<Vec<String>, ConfigError> {
        match target {
            Target::User(user) => self
                .mailbox_key(user)
                .map(|k| vec![k.to_owned()])
                .ok_or_else(|| ConfigError::UnknownMailbox { user: user.clone() }),
            Target::OrganizationalUnit(ou) => Ok(self
                .mailboxes
                .iter()
                .filter(|(_, m)| m.is_under(ou))
                .map(|(k, _)| k.clone())
                .collect()),
        }
    }

    /// `Set-CASMailbox`: applies `change` to every mailbox `target` selects and
    /// returns their user names (empty when an OU holds no mailbox).
    pub fn set_cas_mailbox(
        &mut self,
        target: &Target,
        change: &CasMailboxChange,
    ) -> Result<Vec<String>, ConfigError> {
        let users = self.select(target)?;
        let mut next = self.clone();
        for user in &users {
            if let Some(m) = next.mailboxes.get_mut(user) {
                m.apply(change);
            }
        }
        next.validate()?;
        *self = next;
        Ok(users)
    }

    /// `Set-PopSettings`.
    pub fn set_pop_settings(&mut self, change: &PopSettingsChange) -> Result<(), ConfigError> {
        self.pop.apply(change)
    }

    /// `Set-ImapSettings`.
    pub fn set_imap_settings(&mut self, change: &ImapSettingsChange) -> Result<(), ConfigError> {
        self.imap.apply(change)
    }

    /// `Set-OutlookAnywhere` (and `Enable-`/`Disable-OutlookAnywhere` through
    /// [`OutlookAnywhereChange::enabled`]).
    pub fn set_outlook_anywhere(
        &mut self,
        change: &OutlookAnywhereChange,
    ) -> Result<(), ConfigError> {
        self.outlook_anywhere.apply(change)
    }

    /// Adds a mailbox with Exchange's defaults in `ou`.
    pub fn add_mailbox(&mut self, user: &str, ou: Option<OuPath>) -> Result<(), ConfigError> {
        validate_user_name(user)?;
        if self.mailbox_key(user).is_some() {
            return Err(ConfigError::DuplicateMailbox {
                user: user.to_owned(),
            });
        }
        self.mailboxes
            .insert(user.to_owned(), CasMailbox::in_ou(ou));
        Ok(())
    }

    /// Removes a mailbox and returns its settings.
    pub fn remove_mailbox(&mut self, user: &str) -> Result<CasMailbox, ConfigError> {
        let key = self.mailbox_key(user).map(str::to_owned).ok_or_else(|| {
            ConfigError::UnknownMailbox {
                user: user.to_owned(),
            }
        })?;
        self.mailboxes
            .remove(&key)
            .ok_or(ConfigError::UnknownMailbox { user: key })
    }

    /// Moves a mailbox to another OU (`None`: the top).
    pub fn set_organizational_unit(
        &mut self,
        user: &str,
        ou: Option<OuPath>,
    ) -> Result<(), ConfigError> {
        let key = self.mailbox_key(user).map(str::to_owned).ok_or_else(|| {
            ConfigError::UnknownMailbox {
                user: user.to_owned(),
            }
        })?;
        if let Some(m) = self.mailboxes.get_mut(&key) {
            m.organizational_unit = ou;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MimeFormat, RuleAction};

    const SAMPLE: &str = r#"
[Organization]
MapiHttpEnabled = false

[PopSettings]
LoginType = "PlainTextLogin"
MaxConnectionFromSingleIP = 2
PreAuthenticatedConnectionTimeout = "00:02:00"
AuthenticatedConnectionTimeout = 600
MessageRetrievalMimeFormat = "TextOnly"
Banner = "Welcome"
UnencryptedOrTLSBindings = ["127.0.0.1:1110"]

[OutlookAnywhere]
ExternalHostname = "mail.example.com"
ValidPorts = ["mbx01:6001-6004", "*:593"]

[CASMailbox.alice]
OrganizationalUnit = "corp/sales"
PopEnabled = false
MAPIBlockOutlookVersions = "-13.32767.65535;15.0.0-"

[CASMailbox.bob]
OrganizationalUnit = "corp/engineering"

[[ClientAccessRule]]
Name = "block-legacy"
Action = "DenyAccess"
AnyOfProtocols = ["POP3"]
AnyOfClientIPAddressesOrRanges = ["10.0.0.0/8"]
"#;

    #[test]
    fn sample_parses_and_round_trips() {
        let c = PolicyConfig::from_toml_str(SAMPLE).unwrap();
        assert!(!c.organization.mapi_http_enabled);
        assert_eq!(c.pop.max_connection_from_single_ip, 2);
        assert_eq!(
            c.pop
                .authenticated_connection_timeout
                .as_duration()
                .as_secs(),
            600
        );
        assert_eq!(c.pop.message_retrieval_mime_format, MimeFormat::TextOnly);
        assert!(!c.mailbox("ALICE").unwrap().pop_enabled);
        assert_eq!(c.rules[0].action, RuleAction::DenyAccess);
        let text = c.to_toml_string();
        assert_eq!(PolicyConfig::from_toml_str(&text).unwrap(), c, "{text}");
        let empty = PolicyConfig::from_toml_str("").unwrap();
        assert_eq!(empty, PolicyConfig::default());
        assert_eq!(
            PolicyConfig::from_toml_str(&empty.to_toml_string()).unwrap(),
            empty
        );
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (
                "[PopSettings]\nMaxCommandSize = 2000\n",
                "PopSettings.MaxCommandSize",
                "40..=1024",
            ),
            (
                "[ImapSettings]\nMaxCommandSize = 100\n",
                "ImapSettings.MaxCommandSize",
                "1024..=16384",
            ),
            (
                "[PopSettings]\nAuthenticatedConnectionTimeout = \"2.00:00:00\"\n",
                "PopSettings.AuthenticatedConnectionTimeout",
                "00:00:30 to 1.00:00:00",
            ),
            (
                "[PopSettings]\nMaxConnections = 0\n",
                "PopSettings.MaxConnections",
                "1..=2147483647",
            ),
            (
                "[PopSettings]\nMaxConnectionz = 5\n",
                "MaxConnectionz",
                "unknown field",
            ),
            ("[Bogus]\n", "Bogus", "unknown field"),
            (
                "[PopSettings]\nLoginType = \"Clear\"\n",
                "LoginType",
                "PlainTextLogin",
            ),
            (
                "[CASMailbox.alice]\nMAPIBlockOutlookVersions = \"15.0\"\n",
                "MAPIBlockOutlookVersions",
                "major.minor.build",
            ),
            (
                "[CASMailbox.alice]\nPopEnabled = \"no\"\n",
                "PopEnabled",
                "bool",
            ),
            (
                "[CASMailbox.alice]\n[CASMailbox.ALICE]\n",
                "CASMailbox.alice",
                "case-insensitive",
            ),
            (
                "[[ClientAccessRule]]\nName = \"x\"\nAction = \"DenyAccess\"\nAnyOfClientIPAddressesOrRanges = [\"10.0.0.0/40\"]\n",
                "AnyOfClientIPAddressesOrRanges",
                "0-32",
            ),
            (
                "[OutlookAnywhere]\nValidPorts = [\"mbx:0\"]\n",
                "ValidPorts",
                "1-65535",
            ),
            (
                "[LoginThrottle]\nCapacity = 0\n",
                "LoginThrottle.Capacity",
                "1..=1000000",
            ),
        ];
        for (text, key, allowed) in cases {
            let e = PolicyConfig::from_toml_str(text).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains(allowed), "{text:?}: {e}");
        }
    }

    #[test]
    fn set_cas_mailbox_by_user_and_ou() {
        let mut c = PolicyConfig::from_toml_str(SAMPLE).unwrap();
        c.add_mailbox("carol", Some("corp/sales/emea".parse().unwrap()))
            .unwrap();
        assert!(matches!(
            c.add_mailbox("Carol", None),
            Err(ConfigError::DuplicateMailbox { .. })
        ));
        let change = CasMailboxChange {
            imap_enabled: Some(false),
            ..Default::default()
        };
        let users = c
            .set_cas_mailbox(
                &Target::OrganizationalUnit("corp/sales".parse().unwrap()),
                &change,
            )
            .unwrap();
        assert_eq!(users, vec!["alice".to_string(), "carol".to_string()]);
        assert!(c.mailbox("bob").unwrap().imap_enabled);
        let users = c
            .set_cas_mailbox(&Target::User("BOB".into()), &change)
            .unwrap();
        assert_eq!(users, vec!["bob".to_string()]);
        assert!(!c.mailbox("bob").unwrap().imap_enabled);
        assert!(matches!(
            c.set_cas_mailbox(&Target::User("nobody".into()), &change),
            Err(ConfigError::UnknownMailbox { .. })
        ));
        assert!(
            c.set_cas_mailbox(
                &Target::OrganizationalUnit("nowhere".parse().unwrap()),
                &change
            )
            .unwrap()
            .is_empty()
        );
        c.remove_mailbox("CAROL").unwrap();
        assert!(c.mailbox("carol").is_none());
        c.set_organizational_unit("bob", None).unwrap();
        assert_eq!(c.mailbox("bob").unwrap().organizational_unit, None);
    }

    #[test]
    fn oversized_text_is_refused() {
        let text = "#".repeat(MAX_CONFIG_LEN + 1);
        assert!(matches!(
            PolicyConfig::from_toml_str(&text),
            Err(ConfigError::OutOfRange { .. })
        ));
    }
}
