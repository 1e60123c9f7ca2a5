//! The mailbox scope: `Set-CASMailbox` values and organizational unit membership.

use serde::{Deserialize, Serialize};

use crate::{ConfigError, MimeFormat, OuPath, VersionRanges};

/// Longest accepted user name, in bytes.
pub const MAX_USER_NAME_LEN: usize = 256;

/// One mailbox's client access settings (`[CASMailbox.<user>]`, from `Set-CASMailbox`),
/// and the organizational unit it lives in.
///
/// Every `*Enabled` defaults to true and every block to false, as in Exchange. A
/// protocol whose `*Enabled` is false ignores every other setting of that protocol.
/// The per-mailbox POP3/IMAP values apply only when the matching `*UseProtocolDefaults`
/// is false; otherwise the server-wide [`PopSettings`](crate::PopSettings) /
/// [`ImapSettings`](crate::ImapSettings) values are used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CasMailbox {
    /// `OrganizationalUnit`: where the mailbox's user lives; unset means the top.
    #[serde(rename = "OrganizationalUnit", skip_serializing_if = "Option::is_none")]
    pub organizational_unit: Option<OuPath>,
    /// `PopEnabled`.
    #[serde(rename = "PopEnabled")]
    pub pop_enabled: bool,
    /// `PopUseProtocolDefaults`: use `[PopSettings]` instead of the `Pop*` values below.
    #[serde(rename = "PopUseProtocolDefaults")]
    pub pop_use_protocol_defaults: bool,
    /// `PopMessagesRetrievalMimeFormat`.
    #[serde(rename = "PopMessagesRetrievalMimeFormat")]
    pub pop_messages_retrieval_mime_format: MimeFormat,
    /// `PopEnableExactRFC822Size`.
    #[serde(rename = "PopEnableExactRFC822Size")]
    pub pop_enable_exact_rfc822_size: bool,
    /// `PopSuppressReadReceipt`.
    #[serde(rename = "PopSuppressReadReceipt")]
    pub pop_suppress_read_receipt: bool,
    /// `PopForceICalForCalendarRetrievalOption`: present calendar items as iCalendar
    /// whatever the server's `CalendarItemRetrievalOption`.
    #[serde(rename = "PopForceICalForCalendarRetrievalOption")]
    pub pop_force_ical_for_calendar_retrieval_option: bool,
    /// `ImapEnabled`.
    #[serde(rename = "ImapEnabled")]
    pub imap_enabled: bool,
    /// `ImapUseProtocolDefaults`: use `[ImapSettings]` instead of the `Imap*` values below.
    #[serde(rename = "ImapUseProtocolDefaults")]
    pub imap_use_protocol_defaults: bool,
    /// `ImapMessagesRetrievalMimeFormat`.
    #[serde(rename = "ImapMessagesRetrievalMimeFormat")]
    pub imap_messages_retrieval_mime_format: MimeFormat,
    /// `ImapEnableExactRFC822Size`.
    #[serde(rename = "ImapEnableExactRFC822Size")]
    pub imap_enable_exact_rfc822_size: bool,
    /// `ImapSuppressReadReceipt`.
    #[serde(rename = "ImapSuppressReadReceipt")]
    pub imap_suppress_read_receipt: bool,
    /// `ImapForceICalForCalendarRetrievalOption`.
    #[serde(rename = "ImapForceICalForCalendarRetrievalOption")]
    pub imap_force_ical_for_calendar_retrieval_option: bool,
    /// `MAPIEnabled`: Outlook (MAPI) access at all — both Outlook Anywhere and MAPI
    /// over HTTP.
    #[serde(rename = "MAPIEnabled")]
    pub mapi_enabled: bool,
    /// `MAPIBlockOutlookRpcHttp`: refuse Outlook Anywhere (RPC over HTTP).
    #[serde(rename = "MAPIBlockOutlookRpcHttp")]
    pub mapi_block_outlook_rpc_http: bool,
    /// `MAPIBlockOutlookNonCachedMode`: refuse Outlook in online (non-cached) mode.
    #[serde(rename = "MAPIBlockOutlookNonCachedMode")]
    pub mapi_block_outlook_non_cached_mode: bool,
    /// `MAPIBlockOutlookVersions`: Outlook versions refused, e.g. `-13.32767.65535;15.0.0-`.
    #[serde(
        rename = "MAPIBlockOutlookVersions",
        skip_serializing_if = "VersionRanges::is_empty"
    )]
    pub mapi_block_outlook_versions: VersionRanges,
    /// `MapiHttpEnabled`: MAPI over HTTP for this mailbox; unset (Exchange's `$null`)
    /// means the organization's `MapiHttpEnabled`.
    #[serde(rename = "MapiHttpEnabled", skip_serializing_if = "Option::is_none")]
    pub mapi_http_enabled: Option<bool>,
    /// `OWAEnabled`.
    #[serde(rename = "OWAEnabled")]
    pub owa_enabled: bool,
    /// `ActiveSyncEnabled`.
    #[serde(rename = "ActiveSyncEnabled")]
    pub active_sync_enabled: bool,
    /// `EwsEnabled`.
    #[serde(rename = "EwsEnabled")]
    pub ews_enabled: bool,
}

impl Default for CasMailbox {
    fn default() -> Self {
        CasMailbox {
            organizational_unit: None,
            pop_enabled: true,
            pop_use_protocol_defaults: true,
            pop_messages_retrieval_mime_format: MimeFormat::BestBodyFormat,
            pop_enable_exact_rfc822_size: false,
            pop_suppress_read_receipt: false,
            pop_force_ical_for_calendar_retrieval_option: false,
            imap_enabled: true,
            imap_use_protocol_defaults: true,
            imap_messages_retrieval_mime_format: MimeFormat::BestBodyFormat,
            imap_enable_exact_rfc822_size: false,
            imap_suppress_read_receipt: false,
            imap_force_ical_for_calendar_retrieval_option: false,
            mapi_enabled: true,
            mapi_block_outlook_rpc_http: false,
            mapi_block_outlook_non_cached_mode: false,
            mapi_block_outlook_versions: VersionRanges::default(),
            mapi_http_enabled: None,
            owa_enabled: true,
            active_sync_enabled: true,
            ews_enabled: true,
        }
    }
}

impl CasMailbox {
    /// A mailbox with Exchange's defaults in organizational unit `ou`.
    pub fn in_ou(ou: Option<OuPath>) -> Self {
        CasMailbox {
            organizational_unit: ou,
            ..CasMailbox::default()
        }
    }

    /// Whether the mailbox lies in `ou` or below it. A mailbox without an OU lies in
    /// no OU.
    pub fn is_under(&self, ou: &OuPath) -> bool {
        self.organizational_unit
            .as_ref()
            .is_some_and(|mine| ou.contains(mine))
    }

    /// Sets the fields `change` sets.
    pub fn apply(&mut self, change: &CasMailboxChange) {
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = &change.$f { self.$f = v.clone(); } )* };
        }
        set!(
            pop_enabled,
            pop_use_protocol_defaults,
            pop_messages_retrieval_mime_format,
            pop_enable_exact_rfc822_size,
            pop_suppress_read_receipt,
            pop_force_ical_for_calendar_retrieval_option,
            imap_enabled,
            imap_use_protocol_defaults,
            imap_messages_retrieval_mime_format,
            imap_enable_exact_rfc822_size,
            imap_suppress_read_receipt,
            imap_force_ical_for_calendar_retrieval_option,
            mapi_enabled,
            mapi_block_outlook_rpc_http,
            mapi_block_outlook_non_cached_mode,
            mapi_block_outlook_versions,
            mapi_http_enabled,
            owa_enabled,
            active_sync_enabled,
            ews_enabled
        );
    }
}

/// A partial update of [`CasMailbox`] (the parameters of one `Set-CASMailbox` call):
/// `None` leaves a value as it is. `mapi_http_enabled: Some(None)` resets the mailbox
/// to the organization's value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CasMailboxChange {
    /// New `PopEnabled`.
    pub pop_enabled: Option<bool>,
    /// New `PopUseProtocolDefaults`.
    pub pop_use_protocol_defaults: Option<bool>,
    /// New `PopMessagesRetrievalMimeFormat`.
    pub pop_messages_retrieval_mime_format: Option<MimeFormat>,
    /// New `PopEnableExactRFC822Size`.
    pub pop_enable_exact_rfc822_size: Option<bool>,
    /// New `PopSuppressReadReceipt`.
    pub pop_suppress_read_receipt: Option<bool>,
    /// New `PopForceICalForCalendarRetrievalOption`.
    pub pop_force_ical_for_calendar_retrieval_option: Option<bool>,
    /// New `ImapEnabled`.
    pub imap_enabled: Option<bool>,
    /// New `ImapUseProtocolDefaults`.
    pub imap_use_protocol_defaults: Option<bool>,
    /// New `ImapMessagesRetrievalMimeFormat`.
    pub imap_messages_retrieval_mime_format: Option<MimeFormat>,
    /// New `ImapEnableExactRFC822Size`.
    pub imap_enable_exact_rfc822_size: Option<bool>,
    /// New `ImapSuppressReadReceipt`.
    pub imap_suppress_read_receipt: Option<bool>,
    /// New `ImapForceICalForCalendarRetrievalOption`.
    pub imap_force_ical_for_calendar_retrieval_option: Option<bool>,
    /// New `MAPIEnabled`.
    pub mapi_enabled: Option<bool>,
    /// New `MAPIBlockOutlookRpcHttp`.
    pub mapi_block_outlook_rpc_http: Option<bool>,
    /// New `MAPIBlockOutlookNonCachedMode`.
    pub mapi_block_outlook_non_cached_mode: Option<bool>,
    /// New `MAPIBlockOutlookVersions`.
    pub mapi_block_outlook_versions: Option<VersionRanges>,
    /// New `MapiHttpEnabled`.
    pub mapi_http_enabled: Option<Option<bool>>,
    /// New `OWAEnabled`.
    pub owa_enabled: Option<bool>,
    /// New `ActiveSyncEnabled`.
    pub active_sync_enabled: Option<bool>,
    /// New `EwsEnabled`.
    pub ews_enabled: Option<bool>,
}

impl CasMailboxChange {
    /// True when the change sets nothing.
    pub fn is_empty(&self) -> bool {
        *self == CasMailboxChange::default()
    }
}

/// Whom a `Set-CASMailbox` change applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// One mailbox, by user name (case-insensitive in ASCII).
    User(String),
    /// Every mailbox in this OU or below it, like
    /// `Get-Mailbox -OrganizationalUnit X | Set-CASMailbox …`.
    OrganizationalUnit(OuPath),
}

/// Checks a user name used as a mailbox key.
pub(crate) fn validate_user_name(user: &str) -> Result<(), ConfigError> {
    let key = format!("CASMailbox.{user}");
    if user.is_empty() {
        return Err(ConfigError::invalid(
            "CASMailbox",
            "",
            "a user name cannot be empty",
        ));
    }
    if user.len() > MAX_USER_NAME_LEN {
        return Err(ConfigError::out_of_range(
            key,
            format!("{} bytes", user.len()),
            format!("user names are at most {MAX_USER_NAME_LEN} bytes"),
        ));
    }
    if user.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ConfigError::invalid(
            key,
            user,
            "user names cannot hold spaces or control characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_sets_only_given_fields() {
        let mut m = CasMailbox::default();
        m.apply(&CasMailboxChange {
            pop_enabled: Some(false),
            mapi_http_enabled: Some(Some(false)),
            ..Default::default()
        });
        assert!(!m.pop_enabled && m.imap_enabled);
        assert_eq!(m.mapi_http_enabled, Some(false));
        m.apply(&CasMailboxChange {
            mapi_http_enabled: Some(None),
            ..Default::default()
        });
        assert_eq!(m.mapi_http_enabled, None);
        assert!(CasMailboxChange::default().is_empty());
    }

    #[test]
    fn under_ou() {
        let m = CasMailbox::in_ou(Some("corp/sales/emea".parse().unwrap()));
        assert!(m.is_under(&"corp".parse().unwrap()));
        assert!(!m.is_under(&"corp/engineering".parse().unwrap()));
        assert!(!CasMailbox::default().is_under(&"corp".parse().unwrap()));
    }

    #[test]
    fn user_names() {
        assert!(validate_user_name("alice@example.com").is_ok());
        assert!(validate_user_name("").is_err());
        assert!(validate_user_name("a b").is_err());
        assert!(validate_user_name(&"a".repeat(257)).is_err());
    }
}
