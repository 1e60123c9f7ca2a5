//! Protocols, authentication mechanisms and the Exchange enumerations shared by every scope.

use serde::{Deserialize, Serialize};

/// A client access protocol of the tier, as the decisions see it.
///
/// Client access rules name protocols with Exchange's `AnyOfProtocols` vocabulary
/// ([`RuleProtocol`](crate::RuleProtocol)); [`Protocol::rule_protocol`] maps between the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// POP3 (RFC 1939), configured by `Set-PopSettings`, per mailbox by `PopEnabled`.
    Pop3,
    /// IMAP4rev1/rev2, configured by `Set-ImapSettings`, per mailbox by `ImapEnabled`.
    Imap4,
    /// Outlook Anywhere: MAPI over RPC over HTTP (MS-RPCH), per mailbox by `MAPIEnabled`
    /// and `MAPIBlockOutlookRpcHttp`.
    OutlookAnywhere,
    /// MAPI over HTTP (MS-OXCMAPIHTTP), per mailbox by `MAPIEnabled` and `MapiHttpEnabled`.
    MapiHttp,
    /// Outlook on the web, per mailbox by `OWAEnabled`.
    Owa,
    /// Exchange ActiveSync, per mailbox by `ActiveSyncEnabled`.
    ActiveSync,
    /// Exchange Web Services, per mailbox by `EwsEnabled`.
    Ews,
}

impl Protocol {
    /// Every protocol, in declaration order.
    pub const ALL: [Protocol; 7] = [
        Protocol::Pop3,
        Protocol::Imap4,
        Protocol::OutlookAnywhere,
        Protocol::MapiHttp,
        Protocol::Owa,
        Protocol::ActiveSync,
        Protocol::Ews,
    ];

    /// The `AnyOfProtocols` value that matches this protocol in a client access rule.
    ///
    /// MAPI over HTTP maps to `OutlookAnywhere`, as Exchange documents for
    /// `New-ClientAccessRule` ("OutlookAnywhere (includes MAPI over HTTP)").
    pub fn rule_protocol(self) -> crate::RuleProtocol {
        use crate::RuleProtocol as R;
        match self {
            Protocol::Pop3 => R::POP3,
            Protocol::Imap4 => R::IMAP4,
            Protocol::OutlookAnywhere | Protocol::MapiHttp => R::OutlookAnywhere,
            Protocol::Owa => R::OutlookWebApp,
            Protocol::ActiveSync => R::ExchangeActiveSync,
            Protocol::Ews => R::ExchangeWebServices,
        }
    }

    /// A short display name (`"POP3"`, `"IMAP4"`, `"OutlookAnywhere"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Pop3 => "POP3",
            Protocol::Imap4 => "IMAP4",
            Protocol::OutlookAnywhere => "OutlookAnywhere",
            Protocol::MapiHttp => "MapiHttp",
            Protocol::Owa => "OWA",
            Protocol::ActiveSync => "ActiveSync",
            Protocol::Ews => "EWS",
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Gives an Exchange enumeration its names: `ALL`, `name()`, `Display` and a
/// case-insensitive `FromStr` (PowerShell takes `securelogin` for `SecureLogin`), for
/// command lines and tables. The TOML file uses the exact names.
macro_rules! exchange_names {
    ($ty:ident, $key:literal, [$($variant:ident = $name:literal),+ $(,)?]) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// Exchange's name of the value.
            pub fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)+
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = crate::ConfigError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $ty::ALL
                    .iter()
                    .copied()
                    .find(|v| v.name().eq_ignore_ascii_case(s.trim()))
                    .ok_or_else(|| {
                        let names: Vec<&str> = $ty::ALL.iter().map(|v| v.name()).collect();
                        crate::ConfigError::invalid($key, s, format!("one of {}", names.join(", ")))
                    })
            }
        }
    };
}

pub(crate) use exchange_names;

exchange_names!(
    LoginType,
    "LoginType",
    [
        PlainTextLogin = "PlainTextLogin",
        PlainTextAuthentication = "PlainTextAuthentication",
        SecureLogin = "SecureLogin"
    ]
);
exchange_names!(
    SortOrder,
    "MessageRetrievalSortOrder",
    [Ascending = "Ascending", Descending = "Descending"]
);
exchange_names!(
    CalendarItemRetrievalOption,
    "CalendarItemRetrievalOption",
    [
        ICalendar = "iCalendar",
        IntranetUrl = "IntranetUrl",
        InternetUrl = "InternetUrl",
        Custom = "Custom"
    ]
);
exchange_names!(
    ExtendedProtectionPolicy,
    "ExtendedProtectionPolicy",
    [None = "None", Allow = "Allow", Require = "Require"]
);
exchange_names!(
    HttpAuthMethod,
    "AuthenticationMethod",
    [Basic = "Basic", Ntlm = "Ntlm", Negotiate = "Negotiate"]
);
exchange_names!(
    AuthenticationType,
    "AnyOfAuthenticationTypes",
    [
        AdfsAuthentication = "AdfsAuthentication",
        BasicAuthentication = "BasicAuthentication",
        CertificateBasedAuthentication = "CertificateBasedAuthentication",
        NonBasicAuthentication = "NonBasicAuthentication",
        OAuthAuthentication = "OAuthAuthentication",
    ]
);

/// How a client proves who it is, as far as policy cares.
///
/// The policy needs two facts about a mechanism: whether the password crosses the wire
/// in a recoverable form (for [`LoginType`]) and which `AnyOfAuthenticationTypes` class
/// it belongs to (for client access rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMechanism {
    /// POP3 `USER`/`PASS` or IMAP `LOGIN`: the password in clear in a command.
    UserPass,
    /// SASL `PLAIN` (RFC 4616): the password base64-encoded, i.e. in clear.
    SaslPlain,
    /// SASL `LOGIN` (draft-murchison-sasl-login): the password base64-encoded.
    SaslLogin,
    /// HTTP `Basic` (RFC 7617): the password base64-encoded.
    HttpBasic,
    /// POP3 `APOP` (RFC 1939 §7): an MD5 digest over a shared secret.
    Apop,
    /// SASL `CRAM-MD5` (RFC 2195): a keyed digest of a challenge.
    CramMd5,
    /// NTLM (MS-NLMP), as SASL `NTLM` or HTTP `NTLM`.
    Ntlm,
    /// Kerberos through SASL `GSSAPI` (RFC 4752).
    Gssapi,
    /// HTTP `Negotiate` (RFC 4559): SPNEGO carrying Kerberos or NTLM.
    Negotiate,
    /// An OAuth 2.0 bearer token (SASL `XOAUTH2`/`OAUTHBEARER`, HTTP `Bearer`).
    OAuthBearer,
    /// A TLS client certificate (SASL `EXTERNAL`).
    ClientCertificate,
}

impl AuthMechanism {
    /// True when the mechanism sends the password itself (merely encoded) — what
    /// Exchange calls Basic authentication, allowed before TLS only under
    /// [`LoginType::PlainTextLogin`].
    pub fn sends_cleartext_password(self) -> bool {
        matches!(
            self,
            AuthMechanism::UserPass
                | AuthMechanism::SaslPlain
                | AuthMechanism::SaslLogin
                | AuthMechanism::HttpBasic
        )
    }

    /// True for the Windows integrated mechanisms that `EnableGSSAPIAndNTLMAuth` governs.
    pub fn is_integrated_windows(self) -> bool {
        matches!(
            self,
            AuthMechanism::Ntlm | AuthMechanism::Gssapi | AuthMechanism::Negotiate
        )
    }

    /// The client access rule class of this mechanism.
    pub fn authentication_type(self) -> AuthenticationType {
        match self {
            AuthMechanism::UserPass
            | AuthMechanism::SaslPlain
            | AuthMechanism::SaslLogin
            | AuthMechanism::HttpBasic => AuthenticationType::BasicAuthentication,
            AuthMechanism::OAuthBearer => AuthenticationType::OAuthAuthentication,
            AuthMechanism::ClientCertificate => AuthenticationType::CertificateBasedAuthentication,
            AuthMechanism::Apop
            | AuthMechanism::CramMd5
            | AuthMechanism::Ntlm
            | AuthMechanism::Gssapi
            | AuthMechanism::Negotiate => AuthenticationType::NonBasicAuthentication,
        }
    }

    /// The mechanism for a SASL mechanism name (case-insensitive), if policy knows it.
    pub fn from_sasl_name(name: &str) -> Option<Self> {
        const NAMES: [(&str, AuthMechanism); 8] = [
            ("PLAIN", AuthMechanism::SaslPlain),
            ("LOGIN", AuthMechanism::SaslLogin),
            ("CRAM-MD5", AuthMechanism::CramMd5),
            ("NTLM", AuthMechanism::Ntlm),
            ("GSSAPI", AuthMechanism::Gssapi),
            ("XOAUTH2", AuthMechanism::OAuthBearer),
            ("OAUTHBEARER", AuthMechanism::OAuthBearer),
            ("EXTERNAL", AuthMechanism::ClientCertificate),
        ];
        NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, m)| m)
    }
}

/// Client access rule authentication classes (`AnyOfAuthenticationTypes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AuthenticationType {
    /// AD FS authentication (never produced by this tier; accepted so Exchange rule sets load).
    AdfsAuthentication,
    /// Basic authentication: the password in clear or base64.
    BasicAuthentication,
    /// Certificate-based authentication.
    CertificateBasedAuthentication,
    /// Everything else that is not Basic: NTLM, Kerberos, digests.
    NonBasicAuthentication,
    /// OAuth bearer tokens.
    OAuthAuthentication,
}

/// When clear-text credentials may be used (`Set-PopSettings`/`Set-ImapSettings -LoginType`).
///
/// Exchange 2010's "Configuring Authentication for POP3 and IMAP4" (learn.microsoft.com,
/// aa997188) defines the three values; this crate enforces them as follows, where
/// *clear-text* means [`AuthMechanism::sends_cleartext_password`] (POP3 `USER`/`PASS`,
/// IMAP `LOGIN`, SASL `PLAIN`/`LOGIN`) and *TLS* means implicit TLS or after
/// `STLS`/`STARTTLS`:
///
/// | value | clear-text before TLS | other mechanisms before TLS | after TLS |
/// |---|---|---|---|
/// | `PlainTextLogin` (1) | allowed | allowed | everything |
/// | `PlainTextAuthentication` (2) | refused | allowed (NTLM, GSSAPI, CRAM-MD5, APOP) | everything |
/// | `SecureLogin` (3, default) | refused | refused | everything |
///
/// Exchange describes `PlainTextAuthentication` as "TLS encryption is not required …
/// However, Basic authentication is permitted only on a port that uses TLS or SSL
/// encryption", and `SecureLogin` as requiring TLS before authenticating at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum LoginType {
    /// Clear-text credentials are accepted without TLS.
    PlainTextLogin,
    /// TLS is optional, but clear-text credentials require it.
    PlainTextAuthentication,
    /// Every authentication requires TLS (Exchange's default).
    #[default]
    SecureLogin,
}

impl LoginType {
    /// Whether `mechanism` may authenticate on a connection whose TLS state is `tls`.
    pub fn permits(self, mechanism: AuthMechanism, tls: bool) -> bool {
        if tls {
            return true;
        }
        match self {
            LoginType::PlainTextLogin => true,
            LoginType::PlainTextAuthentication => !mechanism.sends_cleartext_password(),
            LoginType::SecureLogin => false,
        }
    }

    /// Whether IMAP should advertise `LOGINDISABLED` (and POP3 omit `USER` from `CAPA`)
    /// on a connection whose TLS state is `tls`.
    pub fn cleartext_disabled(self, tls: bool) -> bool {
        !self.permits(AuthMechanism::UserPass, tls)
    }
}

/// The body format of retrieved messages (`MessageRetrievalMimeFormat`,
/// `PopMessagesRetrievalMimeFormat`, `ImapMessagesRetrievalMimeFormat`).
///
/// Exchange's numeric values are the declaration order (0 = `TextOnly` … 6 = `Tnef`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum MimeFormat {
    /// `text/plain` only (0).
    TextOnly,
    /// `text/html` only (1).
    HtmlOnly,
    /// `multipart/alternative` with `text/plain` and `text/html` (2).
    HtmlAndTextAlternative,
    /// `text/enriched` only (3).
    TextEnrichedOnly,
    /// `multipart/alternative` with `text/plain` and `text/enriched` (4).
    TextEnrichedAndTextAlternative,
    /// The best format the message has, unchanged (5, Exchange's default).
    #[default]
    BestBodyFormat,
    /// Transport Neutral Encapsulation Format (`application/ms-tnef`) (6).
    Tnef,
}

exchange_names!(
    MimeFormat,
    "MessageRetrievalMimeFormat",
    [
        TextOnly = "TextOnly",
        HtmlOnly = "HtmlOnly",
        HtmlAndTextAlternative = "HtmlAndTextAlternative",
        TextEnrichedOnly = "TextEnrichedOnly",
        TextEnrichedAndTextAlternative = "TextEnrichedAndTextAlternative",
        BestBodyFormat = "BestBodyFormat",
        Tnef = "Tnef",
    ]
);

impl MimeFormat {
    /// Exchange's numeric value (0–6).
    pub fn exchange_value(self) -> u8 {
        self as u8
    }
}

/// The order POP3 lists messages in (`Set-PopSettings -MessageRetrievalSortOrder`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum SortOrder {
    /// Oldest first (Exchange's default).
    #[default]
    Ascending,
    /// Newest first.
    Descending,
}

/// `CalendarItemRetrievalOption`: how calendar items are presented to POP3/IMAP clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum CalendarItemRetrievalOption {
    /// As an iCalendar attachment (Exchange's default).
    #[default]
    #[serde(rename = "iCalendar")]
    ICalendar,
    /// As a link to the item on the intranet Outlook on the web URL (Exchange's docs
    /// spell it `intranetUrl`; both load).
    #[serde(alias = "intranetUrl")]
    IntranetUrl,
    /// As a link to the item on the internet Outlook on the web URL.
    InternetUrl,
    /// As a link to the custom `OwaServerUrl`.
    Custom,
}

/// Extended Protection for Authentication (channel binding) policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ExtendedProtectionPolicy {
    /// Channel binding is not checked (Exchange's default).
    #[default]
    None,
    /// Checked when the client supplies it.
    Allow,
    /// Required: clients without channel binding are refused.
    Require,
}

/// HTTP authentication methods of Outlook Anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum HttpAuthMethod {
    /// HTTP Basic (RFC 7617).
    Basic,
    /// NTLM over HTTP.
    Ntlm,
    /// HTTP Negotiate (Kerberos or NTLM in SPNEGO).
    Negotiate,
}

impl HttpAuthMethod {
    /// The method an authentication mechanism arrives as on HTTP, if any.
    pub fn of_mechanism(mechanism: AuthMechanism) -> Option<Self> {
        match mechanism {
            AuthMechanism::HttpBasic => Some(HttpAuthMethod::Basic),
            AuthMechanism::Ntlm => Some(HttpAuthMethod::Ntlm),
            AuthMechanism::Negotiate | AuthMechanism::Gssapi => Some(HttpAuthMethod::Negotiate),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_type_matrix() {
        use AuthMechanism::*;
        use LoginType::*;
        // Before TLS.
        assert!(PlainTextLogin.permits(UserPass, false));
        assert!(PlainTextLogin.permits(Ntlm, false));
        assert!(!PlainTextAuthentication.permits(UserPass, false));
        assert!(!PlainTextAuthentication.permits(SaslPlain, false));
        assert!(PlainTextAuthentication.permits(Ntlm, false));
        assert!(PlainTextAuthentication.permits(CramMd5, false));
        assert!(!SecureLogin.permits(Ntlm, false));
        assert!(!SecureLogin.permits(UserPass, false));
        // After TLS everything is allowed.
        for lt in [PlainTextLogin, PlainTextAuthentication, SecureLogin] {
            for m in [UserPass, SaslPlain, SaslLogin, Ntlm, Gssapi, Apop] {
                assert!(lt.permits(m, true));
            }
        }
        assert!(SecureLogin.cleartext_disabled(false));
        assert!(!SecureLogin.cleartext_disabled(true));
        assert!(!PlainTextLogin.cleartext_disabled(false));
    }

    #[test]
    fn mime_format_values() {
        for (i, &m) in MimeFormat::ALL.iter().enumerate() {
            assert_eq!(usize::from(m.exchange_value()), i);
            assert_eq!(m.name().parse::<MimeFormat>().unwrap(), m);
        }
        assert!("RichText".parse::<MimeFormat>().is_err());
        assert_eq!(
            "securelogin".parse::<LoginType>().unwrap(),
            LoginType::SecureLogin
        );
        assert_eq!(
            "icalendar".parse::<CalendarItemRetrievalOption>().unwrap(),
            CalendarItemRetrievalOption::ICalendar
        );
        let e = "Kerberos"
            .parse::<HttpAuthMethod>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("one of Basic, Ntlm, Negotiate"), "{e}");
        assert_eq!(LoginType::SecureLogin.to_string(), "SecureLogin");
    }

    #[test]
    fn sasl_names() {
        assert_eq!(
            AuthMechanism::from_sasl_name("plain"),
            Some(AuthMechanism::SaslPlain)
        );
        assert_eq!(
            AuthMechanism::from_sasl_name("NTLM"),
            Some(AuthMechanism::Ntlm)
        );
        assert_eq!(AuthMechanism::from_sasl_name("SCRAM-SHA-1"), None);
        assert_eq!(
            AuthMechanism::Ntlm.authentication_type(),
            AuthenticationType::NonBasicAuthentication
        );
        assert_eq!(
            AuthMechanism::UserPass.authentication_type(),
            AuthenticationType::BasicAuthentication
        );
    }
}
