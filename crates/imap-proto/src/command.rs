//! Client commands: typed values, the parser (server side) and the encoder (client side).
//!
//! [`parse_command`] takes one complete message as the fragmentizer delivers it (the command
//! line from the tag to the final CRLF, literals inline) and returns a [`Command`] borrowing
//! from it. The command keyword is read once and matched case-insensitively as an integer key;
//! each command then has its own parser, one function per ABNF rule of RFC 3501 / RFC 9051 §9
//! and of the extensions below.
//!
//! Extensions covered: SASL-IR (RFC 4959), ENABLE (5161), IDLE (2177), UNSELECT (3691),
//! NAMESPACE (2342), ID (2971), MOVE (6851), UIDPLUS `UID EXPUNGE` (4315), LITERAL+/LITERAL-
//! (7888, through [`crate::encode::LiteralPolicy`]), BINARY literal8 and `BINARY[...]`
//! (3516), MULTIAPPEND (3502), CONDSTORE/QRESYNC (7162), LIST-EXTENDED (5258), LIST-STATUS
//! (5819), SPECIAL-USE and CREATE-SPECIAL-USE (6154), STATUS=SIZE (8438), APPENDLIMIT (7889),
//! ESEARCH (4731), SEARCHRES (5182), WITHIN (5032), OBJECTID fetch items (8474), COMPRESS
//! (4978), QUOTA (9208), SORT/THREAD (5256) with ESORT (5267) and SORT=DISPLAY (5957),
//! METADATA (5464), UNAUTHENTICATE (8437), UTF8=ACCEPT mailbox names (6855), and Gmail's
//! `X-GM-MSGID` / `X-GM-THRID` / `X-GM-LABELS` fetch items and `X-GM-RAW` & co. search keys
//! (not its `STORE X-GM-LABELS`).
//!
//! Deliberately left out: `APPEND ... UTF8 (literal8)` (RFC 6855, dropped by RFC 9051),
//! CATENATE (4469), NOTIFY (5465), generic LIST/SELECT/CREATE option extensions (RFC 4466
//! `option-extension`: unknown options are a syntax error so the server answers `BAD`), and
//! `$` inside a comma list (RFC 5182 only allows it on its own in practice).
//!
//! Semantics the grammar does not express are the session's job: e.g. VANISHED only in
//! `UID FETCH` with CHANGEDSINCE (RFC 7162 §3.2.6), `\Recent` not storable.
//!
//! ```
//! use cas_imap_proto::command::{parse_command, CommandBody};
//! use cas_imap_proto::encode::to_bytes;
//!
//! let cmd = parse_command(b"a1 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER])\r\n").unwrap();
//! assert_eq!(cmd.tag.as_str(), "a1");
//! assert!(matches!(cmd.body, CommandBody::Fetch { uid: true, .. }));
//! assert_eq!(to_bytes(&cmd), b"a1 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER])\r\n");
//!
//! let err = parse_command(b"a2 FROBNICATE\r\n").unwrap_err();
//! assert_eq!(err.tag.unwrap().as_str(), "a2"); // so the server can answer `a2 BAD`
//! ```

use std::borrow::Cow;
use std::num::NonZeroU32;

use crate::encode::{Encode, Encoder, paren_list};
use crate::error::{CommandParseError, ParseError, ParseErrorKind, ValidationError};
use crate::parse::{
    self, PResult, ParseOptions, astring, atom, byte, capability, chars, charset, crlf, cut, date,
    date_time, fail, failure, flag, flag_list, keyword, keyword_key, kw, list_mailbox, literal_any,
    mailbox, mailbox_attribute, mod_sequence_value, mod_sequence_valzer, nstring, number64,
    nz_number, quoted, section, section_binary, sequence_set, sequence_set_arg, sp, string, tag,
};
use crate::types::{
    AString, Atom, Capability, Charset, Date, DateTime, Flag, IString, ListMailbox, Literal,
    Mailbox, MailboxAttribute, ModSeq, NString, QuotaResource, Quoted, Secret, Section,
    SequenceSet, SequenceSetArg, StatusItem, Tag, ThreadAlgorithm, encode_part,
};

/// A tagged client command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command<'a> {
    /// The tag the server echoes in its completion response.
    pub tag: Tag<'a>,
    /// The command and its arguments.
    pub body: CommandBody<'a>,
}

impl<'a> Command<'a> {
    /// A command with `tag` and `body`.
    pub fn new(tag: Tag<'a>, body: CommandBody<'a>) -> Self {
        Self { tag, body }
    }

    /// Detaches the command from the parsed message.
    pub fn into_owned(self) -> Command<'static> {
        Command {
            tag: self.tag.into_owned(),
            body: self.body.into_owned(),
        }
    }
}

/// The commands of RFC 3501 and RFC 9051 and the extensions in the crate docs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandBody<'a> {
    /// `CAPABILITY`
    Capability,
    /// `NOOP`
    Noop,
    /// `LOGOUT`
    Logout,
    /// `STARTTLS`
    StartTls,
    /// `AUTHENTICATE mechanism [initial-response]` (RFC 4959 SASL-IR).
    Authenticate {
        /// SASL mechanism name (`auth-type = atom`).
        mechanism: Atom<'a>,
        /// SASL-IR initial response; `Some` of an empty value is sent as `=`.
        initial_response: Option<Base64Data<'a>>,
    },
    /// `LOGIN userid password`
    Login {
        /// User name.
        username: AString<'a>,
        /// Password (`Debug` shows `<redacted>`).
        password: Secret<AString<'a>>,
    },
    /// `ENABLE capability...` (RFC 5161): at least one.
    Enable {
        /// Capabilities to enable.
        capabilities: Vec<Capability<'a>>,
    },
    /// `SELECT mailbox [(params)]` (RFC 7162 CONDSTORE / QRESYNC parameters).
    Select {
        /// Mailbox to select.
        mailbox: Mailbox<'a>,
        /// Parameters; empty when none were given.
        parameters: Vec<SelectParameter>,
    },
    /// `EXAMINE mailbox [(params)]`
    Examine {
        /// Mailbox to examine.
        mailbox: Mailbox<'a>,
        /// Parameters; empty when none were given.
        parameters: Vec<SelectParameter>,
    },
    /// `CREATE mailbox [(USE (attrs))]` (RFC 6154 CREATE-SPECIAL-USE).
    Create {
        /// Mailbox to create.
        mailbox: Mailbox<'a>,
        /// Special-use attributes to assign; empty when none.
        special_use: Vec<MailboxAttribute<'a>>,
    },
    /// `DELETE mailbox`
    Delete {
        /// Mailbox to delete.
        mailbox: Mailbox<'a>,
    },
    /// `RENAME from to`
    Rename {
        /// Existing name.
        from: Mailbox<'a>,
        /// New name.
        to: Mailbox<'a>,
    },
    /// `SUBSCRIBE mailbox`
    Subscribe {
        /// Mailbox.
        mailbox: Mailbox<'a>,
    },
    /// `UNSUBSCRIBE mailbox`
    Unsubscribe {
        /// Mailbox.
        mailbox: Mailbox<'a>,
    },
    /// `LIST [(selection)] reference pattern(s) [RETURN (options)]` (RFC 5258 LIST-EXTENDED,
    /// RFC 6154 SPECIAL-USE, RFC 5819 LIST-STATUS).
    List {
        /// Selection options; empty for a basic LIST.
        selection: Vec<ListSelectionOption>,
        /// Reference name.
        reference: Mailbox<'a>,
        /// One or more patterns (several only with LIST-EXTENDED).
        patterns: Vec<ListMailbox<'a>>,
        /// Return options; empty when none were given.
        return_options: Vec<ListReturnOption>,
    },
    /// `LSUB reference pattern` (RFC 3501; obsolete in RFC 9051).
    Lsub {
        /// Reference name.
        reference: Mailbox<'a>,
        /// Pattern.
        pattern: ListMailbox<'a>,
    },
    /// `NAMESPACE` (RFC 2342)
    Namespace,
    /// `STATUS mailbox (items)`
    Status {
        /// Mailbox.
        mailbox: Mailbox<'a>,
        /// Requested items (at least one).
        items: Vec<StatusItem>,
    },
    /// `APPEND mailbox message...` (RFC 3502 MULTIAPPEND when more than one message).
    Append {
        /// Target mailbox.
        mailbox: Mailbox<'a>,
        /// Messages (at least one).
        messages: Vec<AppendMessage<'a>>,
    },
    /// `CHECK` (RFC 3501; obsolete in RFC 9051).
    Check,
    /// `CLOSE`
    Close,
    /// `UNSELECT` (RFC 3691)
    Unselect,
    /// `EXPUNGE`
    Expunge,
    /// `UID EXPUNGE uid-set` (RFC 4315 UIDPLUS)
    UidExpunge {
        /// UIDs to expunge.
        sequence_set: SequenceSetArg,
    },
    /// `IDLE` (RFC 2177); the client ends it with `DONE` (see [`parse_idle_done`]).
    Idle,
    /// `[UID] SEARCH [RETURN (opts)] [CHARSET charset] keys...` (RFC 4731 ESEARCH, RFC 5182
    /// SEARCHRES, RFC 7162 MODSEQ).
    Search {
        /// `UID SEARCH`
        uid: bool,
        /// `RETURN (...)`: `None` when absent (classic `* SEARCH` answer), `Some(empty)` for
        /// `RETURN ()`.
        return_options: Option<Vec<SearchReturnOption>>,
        /// `CHARSET` of the string arguments.
        charset: Option<Charset<'a>>,
        /// The keys, all of which must match (at least one; empty is encoded as `ALL`).
        criteria: Vec<SearchKey<'a>>,
    },
    /// `[UID] FETCH set items [(modifiers)]` (RFC 7162 CHANGEDSINCE / VANISHED).
    Fetch {
        /// `UID FETCH`
        uid: bool,
        /// Messages.
        sequence_set: SequenceSetArg,
        /// Requested data items.
        attributes: FetchAttributes<'a>,
        /// Modifiers; empty when none.
        modifiers: Vec<FetchModifier>,
    },
    /// `[UID] STORE set [(UNCHANGEDSINCE n)] [+|-]FLAGS[.SILENT] flags`
    Store {
        /// `UID STORE`
        uid: bool,
        /// Messages.
        sequence_set: SequenceSetArg,
        /// RFC 7162 `UNCHANGEDSINCE` modifier (`mod-sequence-valzer`, clamped to 2^63 - 1 on
        /// encoding).
        unchanged_since: Option<u64>,
        /// Replace, add or remove.
        kind: StoreKind,
        /// `.SILENT`
        silent: bool,
        /// The flags (may be empty).
        flags: Vec<Flag<'a>>,
    },
    /// `[UID] COPY set mailbox`
    Copy {
        /// `UID COPY`
        uid: bool,
        /// Messages.
        sequence_set: SequenceSetArg,
        /// Target mailbox.
        mailbox: Mailbox<'a>,
    },
    /// `[UID] MOVE set mailbox` (RFC 6851)
    Move {
        /// `UID MOVE`
        uid: bool,
        /// Messages.
        sequence_set: SequenceSetArg,
        /// Target mailbox.
        mailbox: Mailbox<'a>,
    },
    /// `ID (field value ...)` / `ID NIL` (RFC 2971)
    Id {
        /// Field/value pairs, `None` for `NIL`.
        parameters: Option<Vec<(IString<'a>, NString<'a>)>>,
    },
    /// `COMPRESS algorithm` (RFC 4978; `DEFLATE` is the only algorithm defined).
    Compress {
        /// Algorithm name.
        algorithm: Atom<'a>,
    },
    /// `GETQUOTA root` (RFC 9208)
    GetQuota {
        /// Quota root name.
        root: AString<'a>,
    },
    /// `GETQUOTAROOT mailbox` (RFC 9208)
    GetQuotaRoot {
        /// Mailbox.
        mailbox: Mailbox<'a>,
    },
    /// `SETQUOTA root (resource limit ...)` (RFC 9208)
    SetQuota {
        /// Quota root name.
        root: AString<'a>,
        /// Resource limits (may be empty: remove all limits); limits are `number64`, clamped
        /// to 2^63 - 1 on encoding.
        limits: Vec<(QuotaResource<'a>, u64)>,
    },
    /// `[UID] SORT [RETURN (opts)] (criteria) charset keys...` (RFC 5256, RFC 5267 ESORT,
    /// RFC 5957 SORT=DISPLAY).
    Sort {
        /// `UID SORT`
        uid: bool,
        /// ESORT `RETURN (...)`; `None` when absent.
        return_options: Option<Vec<SearchReturnOption>>,
        /// Sort criteria (at least one; empty is encoded as `(ARRIVAL)`).
        criteria: Vec<SortCriterion>,
        /// Charset of the search strings (required by SORT).
        charset: Charset<'a>,
        /// Search keys, all of which must match (at least one; empty is encoded as `ALL`).
        search: Vec<SearchKey<'a>>,
    },
    /// `[UID] THREAD algorithm charset keys...` (RFC 5256).
    Thread {
        /// `UID THREAD`
        uid: bool,
        /// Threading algorithm.
        algorithm: ThreadAlgorithm<'a>,
        /// Charset of the search strings.
        charset: Charset<'a>,
        /// Search keys (at least one; empty is encoded as `ALL`).
        search: Vec<SearchKey<'a>>,
    },
    /// `GETMETADATA [(options)] mailbox entries` (RFC 5464); the empty mailbox name means
    /// server annotations.
    GetMetadata {
        /// `MAXSIZE` / `DEPTH` options; empty when none.
        options: Vec<GetMetadataOption>,
        /// Mailbox.
        mailbox: Mailbox<'a>,
        /// Entry names such as `/private/comment` (at least one).
        entries: Vec<AString<'a>>,
    },
    /// `SETMETADATA mailbox (entry value ...)` (RFC 5464); a `NIL` value removes the entry.
    SetMetadata {
        /// Mailbox.
        mailbox: Mailbox<'a>,
        /// Entry/value pairs (at least one); values may be `literal8`.
        entries: Vec<(AString<'a>, NString<'a>)>,
    },
    /// `UNAUTHENTICATE` (RFC 8437)
    Unauthenticate,
}

impl CommandBody<'_> {
    /// The command keyword as the encoder writes it (with the `UID ` prefix where set).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Capability => "CAPABILITY",
            Self::Noop => "NOOP",
            Self::Logout => "LOGOUT",
            Self::StartTls => "STARTTLS",
            Self::Authenticate { .. } => "AUTHENTICATE",
            Self::Login { .. } => "LOGIN",
            Self::Enable { .. } => "ENABLE",
            Self::Select { .. } => "SELECT",
            Self::Examine { .. } => "EXAMINE",
            Self::Create { .. } => "CREATE",
            Self::Delete { .. } => "DELETE",
            Self::Rename { .. } => "RENAME",
            Self::Subscribe { .. } => "SUBSCRIBE",
            Self::Unsubscribe { .. } => "UNSUBSCRIBE",
            Self::List { .. } => "LIST",
            Self::Lsub { .. } => "LSUB",
            Self::Namespace => "NAMESPACE",
            Self::Status { .. } => "STATUS",
            Self::Append { .. } => "APPEND",
            Self::Check => "CHECK",
            Self::Close => "CLOSE",
            Self::Unselect => "UNSELECT",
            Self::Expunge => "EXPUNGE",
            Self::UidExpunge { .. } => "UID EXPUNGE",
            Self::Idle => "IDLE",
            Self::Search { uid: false, .. } => "SEARCH",
            Self::Search { uid: true, .. } => "UID SEARCH",
            Self::Fetch { uid: false, .. } => "FETCH",
            Self::Fetch { uid: true, .. } => "UID FETCH",
            Self::Store { uid: false, .. } => "STORE",
            Self::Store { uid: true, .. } => "UID STORE",
            Self::Copy { uid: false, .. } => "COPY",
            Self::Copy { uid: true, .. } => "UID COPY",
            Self::Move { uid: false, .. } => "MOVE",
            Self::Move { uid: true, .. } => "UID MOVE",
            Self::Id { .. } => "ID",
            Self::Compress { .. } => "COMPRESS",
            Self::GetQuota { .. } => "GETQUOTA",
            Self::GetQuotaRoot { .. } => "GETQUOTAROOT",
            Self::SetQuota { .. } => "SETQUOTA",
            Self::Sort { uid: false, .. } => "SORT",
            Self::Sort { uid: true, .. } => "UID SORT",
            Self::Thread { uid: false, .. } => "THREAD",
            Self::Thread { uid: true, .. } => "UID THREAD",
            Self::GetMetadata { .. } => "GETMETADATA",
            Self::SetMetadata { .. } => "SETMETADATA",
            Self::Unauthenticate => "UNAUTHENTICATE",
        }
    }

    /// Detaches the value from the parsed message.
    pub fn into_owned(self) -> CommandBody<'static> {
        use CommandBody as C;
        match self {
            C::Capability => C::Capability,
            C::Noop => C::Noop,
            C::Logout => C::Logout,
            C::StartTls => C::StartTls,
            C::Authenticate {
                mechanism,
                initial_response,
            } => C::Authenticate {
                mechanism: mechanism.into_owned(),
                initial_response: initial_response.map(Base64Data::into_owned),
            },
            C::Login { username, password } => C::Login {
                username: username.into_owned(),
                password: Secret::new(password.into_inner().into_owned()),
            },
            C::Enable { capabilities } => C::Enable {
                capabilities: capabilities
                    .into_iter()
                    .map(Capability::into_owned)
                    .collect(),
            },
            C::Select {
                mailbox,
                parameters,
            } => C::Select {
                mailbox: mailbox.into_owned(),
                parameters,
            },
            C::Examine {
                mailbox,
                parameters,
            } => C::Examine {
                mailbox: mailbox.into_owned(),
                parameters,
            },
            C::Create {
                mailbox,
                special_use,
            } => C::Create {
                mailbox: mailbox.into_owned(),
                special_use: special_use
                    .into_iter()
                    .map(MailboxAttribute::into_owned)
                    .collect(),
            },
            C::Delete { mailbox } => C::Delete {
                mailbox: mailbox.into_owned(),
            },
            C::Rename { from, to } => C::Rename {
                from: from.into_owned(),
                to: to.into_owned(),
            },
            C::Subscribe { mailbox } => C::Subscribe {
                mailbox: mailbox.into_owned(),
            },
            C::Unsubscribe { mailbox } => C::Unsubscribe {
                mailbox: mailbox.into_owned(),
            },
            C::List {
                selection,
                reference,
                patterns,
                return_options,
            } => C::List {
                selection,
                reference: reference.into_owned(),
                patterns: patterns.into_iter().map(ListMailbox::into_owned).collect(),
                return_options,
            },
            C::Lsub { reference, pattern } => C::Lsub {
                reference: reference.into_owned(),
                pattern: pattern.into_owned(),
            },
            C::Namespace => C::Namespace,
            C::Status { mailbox, items } => C::Status {
                mailbox: mailbox.into_owned(),
                items,
            },
            C::Append { mailbox, messages } => C::Append {
                mailbox: mailbox.into_owned(),
                messages: messages
                    .into_iter()
                    .map(AppendMessage::into_owned)
                    .collect(),
            },
            C::Check => C::Check,
            C::Close => C::Close,
            C::Unselect => C::Unselect,
            C::Expunge => C::Expunge,
            C::UidExpunge { sequence_set } => C::UidExpunge { sequence_set },
            C::Idle => C::Idle,
            C::Search {
                uid,
                return_options,
                charset,
                criteria,
            } => C::Search {
                uid,
                return_options,
                charset: charset.map(Charset::into_owned),
                criteria: criteria.into_iter().map(SearchKey::into_owned).collect(),
            },
            C::Fetch {
                uid,
                sequence_set,
                attributes,
                modifiers,
            } => C::Fetch {
                uid,
                sequence_set,
                attributes: attributes.into_owned(),
                modifiers,
            },
            C::Store {
                uid,
                sequence_set,
                unchanged_since,
                kind,
                silent,
                flags,
            } => C::Store {
                uid,
                sequence_set,
                unchanged_since,
                kind,
                silent,
                flags: flags.into_iter().map(Flag::into_owned).collect(),
            },
            C::Copy {
                uid,
                sequence_set,
                mailbox,
            } => C::Copy {
                uid,
                sequence_set,
                mailbox: mailbox.into_owned(),
            },
            C::Move {
                uid,
                sequence_set,
                mailbox,
            } => C::Move {
                uid,
                sequence_set,
                mailbox: mailbox.into_owned(),
            },
            C::Id { parameters } => C::Id {
                parameters: parameters.map(|v| {
                    v.into_iter()
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect()
                }),
            },
            C::Compress { algorithm } => C::Compress {
                algorithm: algorithm.into_owned(),
            },
            C::GetQuota { root } => C::GetQuota {
                root: root.into_owned(),
            },
            C::GetQuotaRoot { mailbox } => C::GetQuotaRoot {
                mailbox: mailbox.into_owned(),
            },
            C::SetQuota { root, limits } => C::SetQuota {
                root: root.into_owned(),
                limits: limits
                    .into_iter()
                    .map(|(r, l)| (r.into_owned(), l))
                    .collect(),
            },
            C::Sort {
                uid,
                return_options,
                criteria,
                charset,
                search,
            } => C::Sort {
                uid,
                return_options,
                criteria,
                charset: charset.into_owned(),
                search: search.into_iter().map(SearchKey::into_owned).collect(),
            },
            C::Thread {
                uid,
                algorithm,
                charset,
                search,
            } => C::Thread {
                uid,
                algorithm: algorithm.into_owned(),
                charset: charset.into_owned(),
                search: search.into_iter().map(SearchKey::into_owned).collect(),
            },
            C::GetMetadata {
                options,
                mailbox,
                entries,
            } => C::GetMetadata {
                options,
                mailbox: mailbox.into_owned(),
                entries: entries.into_iter().map(AString::into_owned).collect(),
            },
            C::SetMetadata { mailbox, entries } => C::SetMetadata {
                mailbox: mailbox.into_owned(),
                entries: entries
                    .into_iter()
                    .map(|(e, v)| (e.into_owned(), v.into_owned()))
                    .collect(),
            },
            C::Unauthenticate => C::Unauthenticate,
        }
    }
}

/// Base64 text as sent in SASL exchanges (validated alphabet, length and padding; may be
/// empty). Kept encoded so the parser does not allocate; [`Base64Data::decode`] decodes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Base64Data<'a>(Cow<'a, [u8]>);

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_value(c: u8) -> Option<u32> {
    Some(u32::from(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    }))
}

impl<'a> Base64Data<'a> {
    /// Validates base64 text (RFC 4648 alphabet, padded to a multiple of 4).
    pub fn new(text: impl Into<Cow<'a, [u8]>>) -> Result<Self, ValidationError> {
        let text = text.into();
        match parse::base64(&text) {
            Ok((b"", _)) => Ok(Self(text)),
            _ => Err(ValidationError::new("base64")),
        }
    }

    /// Encodes `data` as base64.
    pub fn encode(data: &[u8]) -> Base64Data<'static> {
        let mut out = Vec::with_capacity(data.len().div_ceil(3) * 4);
        for chunk in data.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(B64[((n >> (18 - 6 * i)) & 63) as usize]);
                } else {
                    out.push(b'=');
                }
            }
        }
        Base64Data(Cow::Owned(out))
    }

    /// Decodes the text. Non-zero padding bits are refused so each value has one encoding.
    pub fn decode(&self) -> Result<Vec<u8>, ParseError> {
        let text = &self.0;
        let mut out = Vec::with_capacity(text.len() / 4 * 3);
        for (ci, chunk) in text.chunks(4).enumerate() {
            let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
            let last = (ci + 1) * 4 >= text.len();
            if chunk.len() != 4 || pad > 2 || (pad > 0 && !last) {
                return Err(ParseError::new(ParseErrorKind::InvalidBase64, ci * 4));
            }
            let mut n = 0u32;
            for (i, &c) in chunk.iter().enumerate() {
                let v = if i >= 4 - pad {
                    0
                } else {
                    b64_value(c)
                        .ok_or(ParseError::new(ParseErrorKind::InvalidBase64, ci * 4 + i))?
                };
                n = (n << 6) | v;
            }
            let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            let keep = 3 - pad;
            let unused_bits = match pad {
                1 => n & 0xff,
                2 => n & 0xffff,
                _ => 0,
            };
            if unused_bits != 0 {
                return Err(ParseError::new(ParseErrorKind::InvalidBase64, ci * 4));
            }
            out.extend_from_slice(&bytes[..keep]);
        }
        Ok(out)
    }

    /// The base64 text.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Detaches the value from the parsed message.
    pub fn into_owned(self) -> Base64Data<'static> {
        Base64Data(Cow::Owned(self.0.into_owned()))
    }
}

impl std::fmt::Debug for Base64Data<'_> {
    /// Shows only the length: SASL data carries credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Base64Data(<{} bytes>)", self.0.len())
    }
}

/// A client line during an `AUTHENTICATE` exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthenticateData<'a> {
    /// The next SASL response, base64 (possibly empty).
    Response(Base64Data<'a>),
    /// `*`: the client cancels the exchange (the server answers `BAD`).
    Cancel,
}

impl Encode for AuthenticateData<'_> {
    fn encode(&self, out: &mut Encoder) {
        match self {
            Self::Response(d) => out.push_bytes(d.as_bytes()),
            Self::Cancel => out.push_bytes(b"*"),
        }
        out.push_crlf();
    }
}

/// A SELECT/EXAMINE parameter (RFC 7162).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SelectParameter {
    /// `CONDSTORE`
    CondStore,
    /// `QRESYNC (uidvalidity modseq [known-uids] [seq-match-data])`
    QResync(QResyncParameter),
}

/// The arguments of the `QRESYNC` select parameter.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct QResyncParameter {
    /// The UIDVALIDITY the client has cached.
    pub uid_validity: NonZeroU32,
    /// The last known mod-sequence.
    pub mod_seq: ModSeq,
    /// UIDs the client knows (`known-uids`).
    pub known_uids: Option<SequenceSet>,
    /// `seq-match-data = "(" known-sequence-set SP known-uid-set ")"`.
    pub seq_match: Option<(SequenceSet, SequenceSet)>,
}

/// A LIST selection option (RFC 5258, RFC 6154).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ListSelectionOption {
    /// `SUBSCRIBED`
    Subscribed,
    /// `REMOTE`
    Remote,
    /// `RECURSIVEMATCH` (needs another base option, RFC 5258 §3.1)
    RecursiveMatch,
    /// `SPECIAL-USE` (RFC 6154)
    SpecialUse,
}

impl ListSelectionOption {
    fn as_str(self) -> &'static str {
        match self {
            Self::Subscribed => "SUBSCRIBED",
            Self::Remote => "REMOTE",
            Self::RecursiveMatch => "RECURSIVEMATCH",
            Self::SpecialUse => "SPECIAL-USE",
        }
    }
}

impl Encode for ListSelectionOption {
    fn encode(&self, out: &mut Encoder) {
        out.push_bytes(self.as_str().as_bytes());
    }
}

/// A LIST return option (RFC 5258, RFC 6154, RFC 5819).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ListReturnOption {
    /// `SUBSCRIBED`
    Subscribed,
    /// `CHILDREN`
    Children,
    /// `SPECIAL-USE`
    SpecialUse,
    /// `STATUS (items)` (RFC 5819 LIST-STATUS; at least one item)
    Status(Vec<StatusItem>),
}

impl Encode for ListReturnOption {
    fn encode(&self, out: &mut Encoder) {
        match self {
            Self::Subscribed => out.push_bytes(b"SUBSCRIBED"),
            Self::Children => out.push_bytes(b"CHILDREN"),
            Self::SpecialUse => out.push_bytes(b"SPECIAL-USE"),
            Self::Status(items) => {
                out.push_bytes(b"STATUS ");
                encode_status_items(items, out);
            }
        }
    }
}

fn encode_status_items(items: &[StatusItem], out: &mut Encoder) {
    if items.is_empty() {
        // status-att-list needs one item; MESSAGES is the cheapest meaningful one.
        out.push_bytes(b"(MESSAGES)");
    } else {
        paren_list(items, out);
    }
}

/// One message of an APPEND (`append-message = append-opts SP append-data`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendMessage<'a> {
    /// Flags to set (`[SP flag-list]`; empty when absent).
    pub flags: Vec<Flag<'a>>,
    /// Internal date (`[SP date-time]`).
    pub date_time: Option<DateTime>,
    /// The message, a literal or (RFC 3516 BINARY) a `literal8`.
    pub data: Literal<'a>,
}

impl AppendMessage<'_> {
    /// Detaches the value from the parsed message.
    pub fn into_owned(self) -> AppendMessage<'static> {
        AppendMessage {
            flags: self.flags.into_iter().map(Flag::into_owned).collect(),
            date_time: self.date_time,
            data: self.data.into_owned(),
        }
    }
}

/// An ESEARCH return option (RFC 4731, RFC 5182 `SAVE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SearchReturnOption {
    /// `MIN`
    Min,
    /// `MAX`
    Max,
    /// `ALL`
    All,
    /// `COUNT`
    Count,
    /// `SAVE` (RFC 5182 SEARCHRES)
    Save,
}

impl Encode for SearchReturnOption {
    fn encode(&self, out: &mut Encoder) {
        out.push_bytes(match self {
            Self::Min => b"MIN",
            Self::Max => b"MAX",
            Self::All => b"ALL",
            Self::Count => b"COUNT",
            Self::Save => b"SAVE",
        });
    }
}

/// The metadata item type of a `MODSEQ` search entry (RFC 7162 `entry-type-req`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryType {
    /// `priv`
    Private,
    /// `shared`
    Shared,
    /// `all`
    All,
}

/// The optional entry of a `MODSEQ` search key: `"/flags/<flag>"` and its type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ModSeqEntry<'a> {
    /// The flag whose metadata item is meant.
    pub flag: Flag<'a>,
    /// Private, shared or all.
    pub entry_type: EntryType,
}

/// A search key (RFC 3501 / RFC 9051 `search-key`, RFC 7162 `MODSEQ`, RFC 5032 `OLDER` /
/// `YOUNGER`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SearchKey<'a> {
    /// `ALL`
    All,
    /// `ANSWERED`
    Answered,
    /// `BCC string`
    Bcc(AString<'a>),
    /// `BEFORE date`
    Before(Date),
    /// `BODY string`
    Body(AString<'a>),
    /// `CC string`
    Cc(AString<'a>),
    /// `DELETED`
    Deleted,
    /// `DRAFT`
    Draft,
    /// `FLAGGED`
    Flagged,
    /// `FROM string`
    From(AString<'a>),
    /// `HEADER field-name string`
    Header(AString<'a>, AString<'a>),
    /// `KEYWORD flag-keyword`
    Keyword(Atom<'a>),
    /// `LARGER n` (`number64`; values above 2^63 - 1 are written as 2^63 - 1)
    Larger(u64),
    /// `NEW` (RFC 3501)
    New,
    /// `NOT key`
    Not(Box<SearchKey<'a>>),
    /// `OLD` (RFC 3501)
    Old,
    /// `OLDER seconds` (RFC 5032 WITHIN)
    Older(NonZeroU32),
    /// `ON date`
    On(Date),
    /// `OR key key`
    Or(Box<SearchKey<'a>>, Box<SearchKey<'a>>),
    /// `RECENT` (RFC 3501)
    Recent,
    /// `SEEN`
    Seen,
    /// `SENTBEFORE date`
    SentBefore(Date),
    /// `SENTON date`
    SentOn(Date),
    /// `SENTSINCE date`
    SentSince(Date),
    /// `SINCE date`
    Since(Date),
    /// `SMALLER n` (`number64`, clamped like `LARGER`)
    Smaller(u64),
    /// `SUBJECT string`
    Subject(AString<'a>),
    /// `TEXT string`
    Text(AString<'a>),
    /// `TO string`
    To(AString<'a>),
    /// `UID set`
    Uid(SequenceSetArg),
    /// `UNANSWERED`
    Unanswered,
    /// `UNDELETED`
    Undeleted,
    /// `UNDRAFT`
    Undraft,
    /// `UNFLAGGED`
    Unflagged,
    /// `UNKEYWORD flag-keyword`
    Unkeyword(Atom<'a>),
    /// `UNSEEN`
    Unseen,
    /// `YOUNGER seconds` (RFC 5032 WITHIN)
    Younger(NonZeroU32),
    /// `X-GM-RAW string`: Gmail search syntax (Gmail)
    GmailRaw(AString<'a>),
    /// `X-GM-MSGID n` (Gmail)
    GmailMessageId(u64),
    /// `X-GM-THRID n` (Gmail)
    GmailThreadId(u64),
    /// `X-GM-LABELS label` (Gmail)
    GmailLabels(AString<'a>),
    /// `MODSEQ [entry] n` (RFC 7162)
    ModSeq {
        /// The metadata entry, if given.
        entry: Option<ModSeqEntry<'a>>,
        /// Minimum mod-sequence (`mod-sequence-valzer`, clamped to 2^63 - 1 on encoding).
        mod_seq: u64,
    },
    /// A bare sequence set: message numbers.
    SequenceSet(SequenceSetArg),
    /// `"(" key *(SP key) ")"`: all must match (empty is encoded as `ALL`).
    And(Vec<SearchKey<'a>>),
}

impl SearchKey<'_> {
    /// Detaches the value from the parsed message.
    pub fn into_owned(self) -> SearchKey<'static> {
        use SearchKey as K;
        match self {
            K::All => K::All,
            K::Answered => K::Answered,
            K::Bcc(s) => K::Bcc(s.into_owned()),
            K::Before(d) => K::Before(d),
            K::Body(s) => K::Body(s.into_owned()),
            K::Cc(s) => K::Cc(s.into_owned()),
            K::Deleted => K::Deleted,
            K::Draft => K::Draft,
            K::Flagged => K::Flagged,
            K::From(s) => K::From(s.into_owned()),
            K::Header(h, s) => K::Header(h.into_owned(), s.into_owned()),
            K::Keyword(a) => K::Keyword(a.into_owned()),
            K::Larger(n) => K::Larger(n),
            K::New => K::New,
            K::Not(k) => K::Not(Box::new(k.into_owned())),
            K::Old => K::Old,
            K::Older(n) => K::Older(n),
            K::On(d) => K::On(d),
            K::Or(a, b) => K::Or(Box::new(a.into_owned()), Box::new(b.into_owned())),
            K::Recent => K::Recent,
            K::Seen => K::Seen,
            K::SentBefore(d) => K::SentBefore(d),
            K::SentOn(d) => K::SentOn(d),
            K::SentSince(d) => K::SentSince(d),
            K::Since(d) => K::Since(d),
            K::Smaller(n) => K::Smaller(n),
            K::Subject(s) => K::Subject(s.into_owned()),
            K::Text(s) => K::Text(s.into_owned()),
            K::To(s) => K::To(s.into_owned()),
            K::Uid(s) => K::Uid(s),
            K::Unanswered => K::Unanswered,
            K::Undeleted => K::Undeleted,
            K::Undraft => K::Undraft,
            K::Unflagged => K::Unflagged,
            K::Unkeyword(a) => K::Unkeyword(a.into_owned()),
            K::Unseen => K::Unseen,
            K::Younger(n) => K::Younger(n),
            K::GmailRaw(s) => K::GmailRaw(s.into_owned()),
            K::GmailMessageId(n) => K::GmailMessageId(n),
            K::GmailThreadId(n) => K::GmailThreadId(n),
            K::GmailLabels(s) => K::GmailLabels(s.into_owned()),
            K::ModSeq { entry, mod_seq } => K::ModSeq {
                entry: entry.map(|e| ModSeqEntry {
                    flag: e.flag.into_owned(),
                    entry_type: e.entry_type,
                }),
                mod_seq,
            },
            K::SequenceSet(s) => K::SequenceSet(s),
            K::And(v) => K::And(v.into_iter().map(SearchKey::into_owned).collect()),
        }
    }
}

/// What a FETCH asks for: a macro or a list of data items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchAttributes<'a> {
    /// `ALL` = `(FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)`
    All,
    /// `FAST` = `(FLAGS INTERNALDATE RFC822.SIZE)`
    Fast,
    /// `FULL` = `(FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY)`
    Full,
    /// Explicit items (one is written without parentheses; empty is encoded as `FAST`'s
    /// first item, `FLAGS`... see [`FetchAttributes::expand`]).
    List(Vec<FetchAttribute<'a>>),
}

impl<'a> FetchAttributes<'a> {
    /// The items the macro stands for (RFC 3501 §6.4.5), or the list itself.
    pub fn expand(&self) -> Cow<'_, [FetchAttribute<'a>]> {
        use FetchAttribute as F;
        match self {
            Self::All => Cow::Owned(vec![F::Flags, F::InternalDate, F::Rfc822Size, F::Envelope]),
            Self::Fast => Cow::Owned(vec![F::Flags, F::InternalDate, F::Rfc822Size]),
            Self::Full => Cow::Owned(vec![
                F::Flags,
                F::InternalDate,
                F::Rfc822Size,
                F::Envelope,
                F::Body,
            ]),
            Self::List(v) => Cow::Borrowed(v),
        }
    }

    /// Detaches the value from the parsed message.
    pub fn into_owned(self) -> FetchAttributes<'static> {
        match self {
            Self::All => FetchAttributes::All,
            Self::Fast => FetchAttributes::Fast,
            Self::Full => FetchAttributes::Full,
            Self::List(v) => {
                FetchAttributes::List(v.into_iter().map(FetchAttribute::into_owned).collect())
            }
        }
    }
}

/// A byte range of a FETCH body section: `"<" number "." nz-number ">"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PartialRange {
    /// First octet.
    pub offset: u32,
    /// Number of octets.
    pub length: NonZeroU32,
}

impl Encode for PartialRange {
    fn encode(&self, out: &mut Encoder) {
        out.push_bytes(b"<");
        out.push_number(u64::from(self.offset));
        out.push_bytes(b".");
        out.push_number(u64::from(self.length.get()));
        out.push_bytes(b">");
    }
}

/// A FETCH data item (`fetch-att`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FetchAttribute<'a> {
    /// `ENVELOPE`
    Envelope,
    /// `FLAGS`
    Flags,
    /// `INTERNALDATE`
    InternalDate,
    /// `RFC822` (RFC 3501)
    Rfc822,
    /// `RFC822.HEADER` (RFC 3501)
    Rfc822Header,
    /// `RFC822.SIZE`
    Rfc822Size,
    /// `RFC822.TEXT` (RFC 3501)
    Rfc822Text,
    /// `BODY` (non-extensible BODYSTRUCTURE)
    Body,
    /// `BODYSTRUCTURE`
    BodyStructure,
    /// `UID`
    Uid,
    /// `MODSEQ` (RFC 7162)
    ModSeq,
    /// `EMAILID` (RFC 8474)
    EmailId,
    /// `THREADID` (RFC 8474)
    ThreadId,
    /// `X-GM-MSGID` (Gmail)
    GmailMessageId,
    /// `X-GM-THRID` (Gmail)
    GmailThreadId,
    /// `X-GM-LABELS` (Gmail)
    GmailLabels,
    /// `BODY[section]<partial>` / `BODY.PEEK[section]<partial>`
    BodySection {
        /// `.PEEK`: do not set `\Seen`.
        peek: bool,
        /// The section.
        section: Section<'a>,
        /// Byte range.
        partial: Option<PartialRange>,
    },
    /// `BINARY[part]<partial>` / `BINARY.PEEK[part]<partial>` (RFC 3516)
    Binary {
        /// `.PEEK`
        peek: bool,
        /// Part path (empty: whole message).
        part: Vec<NonZeroU32>,
        /// Byte range.
        partial: Option<PartialRange>,
    },
    /// `BINARY.SIZE[part]` (RFC 3516)
    BinarySize {
        /// Part path.
        part: Vec<NonZeroU32>,
    },
}

impl FetchAttribute<'_> {
    /// Detaches the value from the parsed message.
    pub fn into_owned(self) -> FetchAttribute<'static> {
        use FetchAttribute as F;
        match self {
            F::Envelope => F::Envelope,
            F::Flags => F::Flags,
            F::InternalDate => F::InternalDate,
            F::Rfc822 => F::Rfc822,
            F::Rfc822Header => F::Rfc822Header,
            F::Rfc822Size => F::Rfc822Size,
            F::Rfc822Text => F::Rfc822Text,
            F::Body => F::Body,
            F::BodyStructure => F::BodyStructure,
            F::Uid => F::Uid,
            F::ModSeq => F::ModSeq,
            F::EmailId => F::EmailId,
            F::ThreadId => F::ThreadId,
            F::GmailMessageId => F::GmailMessageId,
            F::GmailThreadId => F::GmailThreadId,
            F::GmailLabels => F::GmailLabels,
            F::BodySection {
                peek,
                section,
                partial,
            } => F::BodySection {
                peek,
                section: section.into_owned(),
                partial,
            },
            F::Binary {
                peek,
                part,
                partial,
            } => F::Binary {
                peek,
                part,
                partial,
            },
            F::BinarySize { part } => F::BinarySize { part },
        }
    }
}

/// A FETCH modifier (RFC 7162).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FetchModifier {
    /// `CHANGEDSINCE modseq`
    ChangedSince(ModSeq),
    /// `VANISHED` (UID FETCH with QRESYNC)
    Vanished,
}

/// How STORE changes flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreKind {
    /// `FLAGS`: replace.
    Replace,
    /// `+FLAGS`: add.
    Add,
    /// `-FLAGS`: remove.
    Remove,
}

/// A SORT key (RFC 5256 `sort-key`, RFC 5957 `DISPLAYFROM` / `DISPLAYTO`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SortKey {
    /// `ARRIVAL`
    Arrival,
    /// `CC`
    Cc,
    /// `DATE`
    Date,
    /// `FROM`
    From,
    /// `SIZE`
    Size,
    /// `SUBJECT`
    Subject,
    /// `TO`
    To,
    /// `DISPLAYFROM` (RFC 5957)
    DisplayFrom,
    /// `DISPLAYTO` (RFC 5957)
    DisplayTo,
}

impl SortKey {
    fn as_bytes(self) -> &'static [u8] {
        match self {
            Self::Arrival => b"ARRIVAL",
            Self::Cc => b"CC",
            Self::Date => b"DATE",
            Self::From => b"FROM",
            Self::Size => b"SIZE",
            Self::Subject => b"SUBJECT",
            Self::To => b"TO",
            Self::DisplayFrom => b"DISPLAYFROM",
            Self::DisplayTo => b"DISPLAYTO",
        }
    }
}

/// `sort-criterion = ["REVERSE" SP] sort-key` (RFC 5256).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SortCriterion {
    /// `REVERSE`
    pub reverse: bool,
    /// The key.
    pub key: SortKey,
}

impl Encode for SortCriterion {
    fn encode(&self, out: &mut Encoder) {
        if self.reverse {
            out.push_bytes(b"REVERSE ");
        }
        out.push_bytes(self.key.as_bytes());
    }
}

/// How deep GETMETADATA looks below an entry (RFC 5464 `DEPTH`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetadataDepth {
    /// `0`: the entry only.
    Zero,
    /// `1`: the entry and its children.
    One,
    /// `infinity`: the whole subtree.
    Infinity,
}

/// A GETMETADATA option (RFC 5464).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GetMetadataOption {
    /// `MAXSIZE n`: omit values larger than n octets.
    MaxSize(u32),
    /// `DEPTH 0 / 1 / infinity`
    Depth(MetadataDepth),
}

impl Encode for GetMetadataOption {
    fn encode(&self, out: &mut Encoder) {
        match self {
            Self::MaxSize(n) => {
                out.push_bytes(b"MAXSIZE ");
                out.push_number(u64::from(*n));
            }
            Self::Depth(d) => out.push_bytes(match d {
                MetadataDepth::Zero => b"DEPTH 0",
                MetadataDepth::One => b"DEPTH 1",
                MetadataDepth::Infinity => b"DEPTH infinity",
            }),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------

// Keyword keys for the dispatching `match`es (see `parse::kw`).
const K_ALL: u128 = kw("ALL");
const K_ARRIVAL: u128 = kw("ARRIVAL");
const K_DATE: u128 = kw("DATE");
const K_DISPLAYFROM: u128 = kw("DISPLAYFROM");
const K_DISPLAYTO: u128 = kw("DISPLAYTO");
const K_GETMETADATA: u128 = kw("GETMETADATA");
const K_SETMETADATA: u128 = kw("SETMETADATA");
const K_SIZE: u128 = kw("SIZE");
const K_SORT: u128 = kw("SORT");
const K_THREAD: u128 = kw("THREAD");
const K_UNAUTHENTICATE: u128 = kw("UNAUTHENTICATE");
const K_X_GM_LABELS: u128 = kw("X-GM-LABELS");
const K_X_GM_MSGID: u128 = kw("X-GM-MSGID");
const K_X_GM_RAW: u128 = kw("X-GM-RAW");
const K_X_GM_THRID: u128 = kw("X-GM-THRID");
const K_ANSWERED: u128 = kw("ANSWERED");
const K_APPEND: u128 = kw("APPEND");
const K_AUTHENTICATE: u128 = kw("AUTHENTICATE");
const K_BCC: u128 = kw("BCC");
const K_BEFORE: u128 = kw("BEFORE");
const K_BINARY: u128 = kw("BINARY");
const K_BINARY_PEEK: u128 = kw("BINARY.PEEK");
const K_BINARY_SIZE: u128 = kw("BINARY.SIZE");
const K_BODY: u128 = kw("BODY");
const K_BODY_PEEK: u128 = kw("BODY.PEEK");
const K_BODYSTRUCTURE: u128 = kw("BODYSTRUCTURE");
const K_CAPABILITY: u128 = kw("CAPABILITY");
const K_CC: u128 = kw("CC");
const K_CHECK: u128 = kw("CHECK");
const K_CHILDREN: u128 = kw("CHILDREN");
const K_CLOSE: u128 = kw("CLOSE");
const K_COMPRESS: u128 = kw("COMPRESS");
const K_COPY: u128 = kw("COPY");
const K_COUNT: u128 = kw("COUNT");
const K_CREATE: u128 = kw("CREATE");
const K_DELETE: u128 = kw("DELETE");
const K_DELETED: u128 = kw("DELETED");
const K_DRAFT: u128 = kw("DRAFT");
const K_EMAILID: u128 = kw("EMAILID");
const K_ENABLE: u128 = kw("ENABLE");
const K_ENVELOPE: u128 = kw("ENVELOPE");
const K_EXAMINE: u128 = kw("EXAMINE");
const K_EXPUNGE: u128 = kw("EXPUNGE");
const K_FETCH: u128 = kw("FETCH");
const K_FLAGGED: u128 = kw("FLAGGED");
const K_FLAGS: u128 = kw("FLAGS");
const K_FROM: u128 = kw("FROM");
const K_GETQUOTA: u128 = kw("GETQUOTA");
const K_GETQUOTAROOT: u128 = kw("GETQUOTAROOT");
const K_HEADER: u128 = kw("HEADER");
const K_ID: u128 = kw("ID");
const K_IDLE: u128 = kw("IDLE");
const K_INTERNALDATE: u128 = kw("INTERNALDATE");
const K_KEYWORD: u128 = kw("KEYWORD");
const K_LARGER: u128 = kw("LARGER");
const K_LIST: u128 = kw("LIST");
const K_LOGIN: u128 = kw("LOGIN");
const K_LOGOUT: u128 = kw("LOGOUT");
const K_LSUB: u128 = kw("LSUB");
const K_MAX: u128 = kw("MAX");
const K_MIN: u128 = kw("MIN");
const K_MODSEQ: u128 = kw("MODSEQ");
const K_MOVE: u128 = kw("MOVE");
const K_NAMESPACE: u128 = kw("NAMESPACE");
const K_NEW: u128 = kw("NEW");
const K_NOOP: u128 = kw("NOOP");
const K_NOT: u128 = kw("NOT");
const K_OLD: u128 = kw("OLD");
const K_OLDER: u128 = kw("OLDER");
const K_ON: u128 = kw("ON");
const K_OR: u128 = kw("OR");
const K_RECENT: u128 = kw("RECENT");
const K_RECURSIVEMATCH: u128 = kw("RECURSIVEMATCH");
const K_REMOTE: u128 = kw("REMOTE");
const K_RENAME: u128 = kw("RENAME");
const K_RFC822: u128 = kw("RFC822");
const K_RFC822_HEADER: u128 = kw("RFC822.HEADER");
const K_RFC822_SIZE: u128 = kw("RFC822.SIZE");
const K_RFC822_TEXT: u128 = kw("RFC822.TEXT");
const K_SAVE: u128 = kw("SAVE");
const K_SEARCH: u128 = kw("SEARCH");
const K_SEEN: u128 = kw("SEEN");
const K_SELECT: u128 = kw("SELECT");
const K_SENTBEFORE: u128 = kw("SENTBEFORE");
const K_SENTON: u128 = kw("SENTON");
const K_SENTSINCE: u128 = kw("SENTSINCE");
const K_SETQUOTA: u128 = kw("SETQUOTA");
const K_SINCE: u128 = kw("SINCE");
const K_SMALLER: u128 = kw("SMALLER");
const K_SPECIAL_USE: u128 = kw("SPECIAL-USE");
const K_STARTTLS: u128 = kw("STARTTLS");
const K_STATUS: u128 = kw("STATUS");
const K_STORE: u128 = kw("STORE");
const K_SUBJECT: u128 = kw("SUBJECT");
const K_SUBSCRIBE: u128 = kw("SUBSCRIBE");
const K_SUBSCRIBED: u128 = kw("SUBSCRIBED");
const K_TEXT: u128 = kw("TEXT");
const K_THREADID: u128 = kw("THREADID");
const K_TO: u128 = kw("TO");
const K_UID: u128 = kw("UID");
const K_UNANSWERED: u128 = kw("UNANSWERED");
const K_UNDELETED: u128 = kw("UNDELETED");
const K_UNDRAFT: u128 = kw("UNDRAFT");
const K_UNFLAGGED: u128 = kw("UNFLAGGED");
const K_UNKEYWORD: u128 = kw("UNKEYWORD");
const K_UNSEEN: u128 = kw("UNSEEN");
const K_UNSELECT: u128 = kw("UNSELECT");
const K_UNSUBSCRIBE: u128 = kw("UNSUBSCRIBE");
const K_YOUNGER: u128 = kw("YOUNGER");

/// Parser context threaded through the command grammar.
#[derive(Clone, Copy)]
struct Ctx {
    utf8: bool,
    max_depth: usize,
}

/// Parses one complete command message (tag to final CRLF, literals inline) with default
/// [`ParseOptions`].
#[inline]
pub fn parse_command(message: &[u8]) -> Result<Command<'_>, CommandParseError> {
    parse_command_with(message, &ParseOptions::default())
}

/// Parses one complete command message with `options`.
///
/// On error the [`CommandParseError`] carries the tag when it was readable, so the server can
/// answer `tag BAD`; an unknown keyword gives [`ParseErrorKind::UnknownCommand`].
pub fn parse_command_with<'a>(
    message: &'a [u8],
    options: &ParseOptions,
) -> Result<Command<'a>, CommandParseError> {
    let offset = |rest: &[u8]| message.len() - rest.len();
    let (rest, tag) = match tag(message) {
        Ok(v) => v,
        Err(e) => {
            let e = parse::to_parse_error(e, message);
            return Err(CommandParseError::new(None, e.kind, e.offset));
        }
    };
    let err_with_tag = |kind, at| CommandParseError::new(Some(tag.clone().into_owned()), kind, at);
    let rest = match sp(rest) {
        Ok((r, ())) => r,
        Err(_) => {
            let kind = if rest.is_empty() {
                ParseErrorKind::Incomplete
            } else {
                ParseErrorKind::Syntax
            };
            return Err(err_with_tag(kind, offset(rest)));
        }
    };
    // Argument-less commands (NOOP, IDLE, CAPABILITY ...) are the most frequent ones on a
    // busy server: decide them without the grammar machinery.
    if let Some(body) = no_argument_command(rest) {
        return Ok(Command { tag, body });
    }
    let ctx = Ctx {
        utf8: options.utf8_accept,
        max_depth: options.max_depth,
    };
    let (r, body) = match command_body(rest, ctx) {
        Ok(v) => v,
        Err(e) => {
            let e = parse::to_parse_error(e, message);
            return Err(err_with_tag(e.kind, e.offset));
        }
    };
    match crlf(r) {
        Ok((b"", ())) => Ok(Command { tag, body }),
        Ok((r, ())) => Err(err_with_tag(ParseErrorKind::TrailingData, offset(r))),
        Err(e) => {
            let e = parse::to_parse_error(e, message);
            Err(err_with_tag(e.kind, e.offset))
        }
    }
}

/// `rest` is exactly an argument-less command keyword and CRLF: that command.
#[inline]
fn no_argument_command(rest: &[u8]) -> Option<CommandBody<'static>> {
    let line = rest.strip_suffix(b"\r\n")?;
    if line.len() > 10 {
        return None;
    }
    let (after, _, key) = keyword_key(line);
    if !after.is_empty() {
        return None;
    }
    Some(match key {
        K_NOOP => CommandBody::Noop,
        K_IDLE => CommandBody::Idle,
        K_CAPABILITY => CommandBody::Capability,
        K_LOGOUT => CommandBody::Logout,
        K_STARTTLS => CommandBody::StartTls,
        K_NAMESPACE => CommandBody::Namespace,
        K_CHECK => CommandBody::Check,
        K_CLOSE => CommandBody::Close,
        K_UNSELECT => CommandBody::Unselect,
        K_EXPUNGE => CommandBody::Expunge,
        _ => return None,
    })
}

/// A run of keyword characters: letters, digits, `.`, `-` and `=`.
fn word(input: &[u8]) -> (&[u8], &[u8]) {
    let n = input
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'=')))
        .unwrap_or(input.len());
    (&input[n..], &input[..n])
}

fn unknown_command<T>(input: &[u8]) -> PResult<'_, T> {
    failure(input, ParseErrorKind::UnknownCommand)
}

/// `command = tag SP (command-any / command-auth / command-nonauth / command-select) CRLF`
/// (everything after `tag SP`, before CRLF). Dispatches on the keyword's [`parse::kw`] key.
fn command_body(input: &[u8], ctx: Ctx) -> PResult<'_, CommandBody<'_>> {
    let (rest, kw, key) = keyword_key(input);
    if kw.is_empty() {
        return fail(input);
    }
    let body = match key {
        K_CAPABILITY => (rest, CommandBody::Capability),
        K_NOOP => (rest, CommandBody::Noop),
        K_LOGOUT => (rest, CommandBody::Logout),
        K_STARTTLS => (rest, CommandBody::StartTls),
        K_NAMESPACE => (rest, CommandBody::Namespace),
        K_CHECK => (rest, CommandBody::Check),
        K_CLOSE => (rest, CommandBody::Close),
        K_UNSELECT => (rest, CommandBody::Unselect),
        K_EXPUNGE => (rest, CommandBody::Expunge),
        K_IDLE => (rest, CommandBody::Idle),
        K_LOGIN => cut(login(rest))?,
        K_AUTHENTICATE => cut(authenticate(rest))?,
        K_ENABLE => cut(enable(rest))?,
        K_SELECT => cut(select(rest, ctx, false))?,
        K_EXAMINE => cut(select(rest, ctx, true))?,
        K_CREATE => cut(create(rest, ctx))?,
        K_DELETE => {
            cut(one_mailbox(rest, ctx)).map(|(r, mailbox)| (r, CommandBody::Delete { mailbox }))?
        }
        K_SUBSCRIBE => cut(one_mailbox(rest, ctx))
            .map(|(r, mailbox)| (r, CommandBody::Subscribe { mailbox }))?,
        K_UNSUBSCRIBE => cut(one_mailbox(rest, ctx))
            .map(|(r, mailbox)| (r, CommandBody::Unsubscribe { mailbox }))?,
        K_GETQUOTAROOT => cut(one_mailbox(rest, ctx))
            .map(|(r, mailbox)| (r, CommandBody::GetQuotaRoot { mailbox }))?,
        K_RENAME => cut(rename(rest, ctx))?,
        K_LIST => cut(list(rest, ctx))?,
        K_LSUB => cut(lsub(rest, ctx))?,
        K_STATUS => cut(status(rest, ctx))?,
        K_APPEND => cut(append(rest, ctx))?,
        K_SEARCH => cut(search(rest, ctx, false))?,
        K_FETCH => cut(fetch(rest, false))?,
        K_STORE => cut(store(rest, false))?,
        K_COPY => cut(copy_or_move(rest, ctx, false, false))?,
        K_MOVE => cut(copy_or_move(rest, ctx, false, true))?,
        K_UID => uid(rest, ctx)?,
        K_ID => cut(id(rest))?,
        K_COMPRESS => cut(compress(rest))?,
        K_GETQUOTA => cut(getquota(rest))?,
        K_SETQUOTA => cut(setquota(rest))?,
        K_SORT => cut(sort(rest, ctx, false))?,
        K_THREAD => cut(thread(rest, ctx, false))?,
        K_GETMETADATA => cut(getmetadata(rest, ctx))?,
        K_SETMETADATA => cut(setmetadata(rest, ctx))?,
        K_UNAUTHENTICATE => (rest, CommandBody::Unauthenticate),
        _ => return unknown_command(input),
    };
    Ok(body)
}

/// `uid = "UID" SP (copy / move / fetch / search / store / uid-expunge)`
fn uid(input: &[u8], ctx: Ctx) -> PResult<'_, CommandBody<'_>> {
    let (rest, ()) = cut(sp(input))?;
    let (after, _, key) = keyword_key(rest);
    cut(match key {
        K_FETCH => fetch(after, true),
        K_SEARCH => search(after, ctx, true),
        K_STORE => store(after, true),
        K_COPY => copy_or_move(after, ctx, true, false),
        K_MOVE => copy_or_move(after, ctx, true, true),
        K_EXPUNGE => uid_expunge(after),
        K_SORT => sort(after, ctx, true),
        K_THREAD => thread(after, ctx, true),
        _ => return unknown_command(rest),
    })
}

/// `SP mailbox`
fn one_mailbox(input: &[u8], ctx: Ctx) -> PResult<'_, Mailbox<'_>> {
    let (rest, ()) = sp(input)?;
    mailbox(rest, ctx.utf8)
}

/// `login = "LOGIN" SP userid SP password`, `userid = astring`, `password = astring`
fn login(input: &[u8]) -> PResult<'_, CommandBody<'_>> {
    let (rest, ()) = sp(input)?;
    let (rest, username) = astring(rest)?;
    let (rest, ()) = sp(rest)?;
    let (rest, password) = astring(rest)?;
    Ok((
        rest,
        CommandBody::Login {
            username,
            password: Secret::new(password),
        },
    ))
}

/// `authenticate = "AUTHENTICATE" SP auth-type [SP initial-resp]`,
/// `initial-resp = (base64 / "=")` (RFC 4959)
fn authenticate(input: &[u8]) -> PResult<'_, CommandBody<'_>> {
    let (rest, ()) = sp(input)?;
    let (rest, mechanism) = atom(rest)?;
    let (rest, initial_response) = if let Ok((r, ())) = sp(rest) {
        if let Ok((r, ())) = byte(r, b'=')
            && !r
                .first()
                .is_some_and(|&b| chars::is(b, chars::BASE64) || b == b'=')
        {
            (r, Some(Base64Data(Cow::Borrowed(&[][..]))))
        } else {
            let (r, b) = parse::base64(r)?;
            if b.is_empty() {
                return fail(r);
            }
            (r, Some(Base64Data(Cow::Borrowed(b))))
        }
    } else {
        (rest, None)
    };
    Ok((
        rest,
        CommandBody::Authenticate {
            mechanism,
            initial_response,
        },
    ))
}

/// `enable = "ENABLE" 1*(SP capability)` (RFC 5161)
fn enable(input: &[u8]) -> PResult<'_, CommandBody<'_>> {
    let mut capabilities = Vec::new();
    let mut rest = input;
    while let Ok((r, ())) = sp(rest) {
        let (r, c) = capability(r)?;
        capabilities.push(c);
        rest = r;
    }
    if capabilities.is_empty() {
        return fail(rest);
    }
    Ok((rest, CommandBody::Enable { capabilities }))
}

/// `select = "SELECT" SP mailbox [select-params]`, `examine = "EXAMINE" SP mailbox
/// [select-params]`, `select-params = SP "(" select-param *(SP select-param) ")"` (RFC 4466)
fn select(input: &[u8], ctx: Ctx, examine: bool) -> PResult<'_, CommandBody<'_>> {
    let (rest, mailbox) = one_mailbox(input, ctx)?;
    let (rest, parameters) = match sp(rest) {
        Ok((r, ())) => parse::paren_list(r, select_param)?,
        Err(_) => (rest, Vec::new()),
    };
    Ok((
        rest,
        if examine {
            CommandBody::Examine {
                mailbox,
                parameters,
            }
        } else {
            CommandBody::Select {
                mailbox,
                parameters,
            }
        },
    ))
}

/// `select-param = condstore-param / qresync-param` (RFC 7162),
/// `condstore-param = "CONDSTORE"`,
/// `qresync-param = "QRESYNC" SP "(" uidvalidity SP mod-sequence-value [SP known-uids]
/// [SP seq-match-data] ")"`
fn select_param(input: &[u8]) -> PResult<'_, SelectParameter> {
    if let Ok((rest, ())) = keyword(input, b"CONDSTORE") {
        return Ok((rest, SelectParameter::CondStore));
    }
    let (rest, ()) = keyword(input, b"QRESYNC")?;
    let (rest, ()) = sp(rest)?;
    let (rest, ()) = byte(rest, b'(')?;
    let (rest, uid_validity) = nz_number(rest)?;
    let (rest, ()) = sp(rest)?;
    let (mut rest, mod_seq) = mod_sequence_value(rest)?;
    let mut known_uids = None;
    let mut seq_match = None;
    if let Ok((r, ())) = sp(rest)
        && r.first() != Some(&b'(')
    {
        let (r, s) = sequence_set(r)?;
        known_uids = Some(s);
        rest = r;
    }
    if let Ok((r, ())) = sp(rest) {
        let (r, m) = seq_match_data(r)?;
        seq_match = Some(m);
        rest = r;
    }
    let (rest, ()) = byte(rest, b')')?;
    Ok((
        rest,
        SelectParameter::QResync(QResyncParameter {
            uid_validity,
            mod_seq,
            known_uids,
            seq_match,
        }),
    ))
}

/// `seq-match-data = "(" known-sequence-set SP known-uid-set ")"` (RFC 7162)
fn seq_match_data(input: &[u8]) -> PResult<'_, (SequenceSet, SequenceSet)> {
    let (rest, ()) = byte(input, b'(')?;
    let (rest, a) = sequence_set(rest)?;
    let (rest, ()) = sp(rest)?;
    let (rest, b) = sequence_set(rest)?;
    let (rest, ()) = byte(rest, b')')?;
    Ok((rest, (a, b)))
}

/// `create = "CREATE" SP mailbox [create-params]`,
/// `create-params = SP "(" create-param *(SP create-param) ")"` (RFC 4466),
/// `create-param =/ "USE" SP "(" [use-attr *(SP use-attr)] ")"` (RFC 6154)
fn create(input: &[u8], ctx: Ctx) -> PResult<'_, CommandBody<'_>> {
    let (rest, mailbox) = one_mailbox(input, ctx)?;
    let (rest, special_use) = match sp(rest) {
        Ok((r, ())) => {
            let (r, ()) = byte(r, b'(')?;
            let (r, ()) = keyword(r, b"USE ")?;
            let (r, attrs) = parse::paren_list(r, mailbox_attribute)?;
            let (r, ()) = byte(r, b')')?;
            (r, attrs)
        }
        Err(_) => (rest, Vec::new()),
    };
    Ok((
        rest,
        CommandBody::Create {
            mailbox,
            special_use,
        },
    ))
}

/// `rename = "RENAME" SP mailbox SP mailbox`
fn rename(input: &[u8], ctx: Ctx) -> PResult<'_, CommandBody<'_>> {
    let (rest, from) = one_mailbox(input, ctx)?;
    let (rest, to) = one_mailbox(rest, ctx)?;
    Ok((rest, CommandBody::Rename { from, to }))
}

/// `list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]`
/// (RFC 5258), `mbox-or-pat = list-mailbox / patterns`,
/// `patterns = "(" list-mailbox *(SP list-mailbox) ")"`
fn list(input: &[u8], ctx: Ctx) -> PResult<'_, CommandBody<'_>> {
    let (mut rest, ()) = sp(input)?;
    let mut selection = Vec::new();
    if rest.first() == Some(&b'(') {
        let (r, s) = list_select_opts(rest)?;
        let (r, ()) = sp(r)?;
        selection = s;
        rest = r;
    }
    let (rest, reference) = mailbox(rest, ctx.utf8)?;
    let (rest, ()) = sp(rest)?;
    let (mut rest, patterns) = if rest.first() == Some(&b'(') {
        parse::paren_list1(rest, |i| list_mailbox(i, ctx.utf8))?
    } else {
        let (r, p) = list_mailbox(rest, ctx.utf8)?;
        (r, vec![p])
    };
    let mut return_options = Vec::new();
    if let Ok((r, ())) = sp(rest) {
        let (r, o) = list_return_opts(r)?;
        return_options = o;
        rest = r;
    }
    Ok((
        rest,
        CommandBody::List {
            selection,
            reference,
            patterns,
            return_options,
        },
    ))
}

/// `list-select-opts = "(" [(*(list-select-opt SP) list-select-base-opt
/// *(SP list-select-opt)) / (list-select-independent-opt *(SP list-select-independent-opt))]
/// ")"` (RFC 5258): `RECURSIVEMATCH` needs a base option (`SUBSCRIBED`, `SPECIAL-USE`).
fn list_select_opts(input: &[u8]) -> PResult<'_, Vec<ListSelectionOption>> {
    let (rest, opts) = parse::paren_list(input, |i| {
        let (r, _, key) = keyword_key(i);
        let opt = match key {
            K_SUBSCRIBED => ListSelectionOption::Subscribed,
            K_REMOTE => ListSelectionOption::Remote,
            K_RECURSIVEMATCH => ListSelectionOption::RecursiveMatch,
            K_SPECIAL_USE => ListSelectionOption::SpecialUse,
            _ => return fail(i),
        };
        Ok((r, opt))
    })?;
    let recursive = opts.contains(&ListSelectionOption::RecursiveMatch);
    let base = opts.iter().any(|o| {
        matches!(
            o,
            ListSelectionOption::Subscribed | ListSelectionOption::SpecialUse
        )
    });
    if recursive && !base {
        return fail(input);
    }
    Ok((rest, opts))
}

/// `list-return-opts = "RETURN" SP "(" [return-option *(SP return-option)] ")"` (RFC 5258),
/// `return-option =/ "STATUS" SP "(" status-att *(SP status-att) ")"` (RFC 5819)
fn list_return_opts(input: &[u8]) -> PResult<'_, Vec<ListReturnOption>> {
    let (rest, ()) = keyword(input, b"RETURN ")?;
    parse::paren_list(rest, |i| {
        let (r, _, key) = keyword_key(i);
        match key {
            K_SUBSCRIBED => Ok((r, ListReturnOption::Subscribed)),
            K_CHILDREN => Ok((r, ListReturnOption::Children)),
            K_SPECIAL_USE => Ok((r, ListReturnOption::SpecialUse)),
            K_STATUS => {
                let (r, ()) = sp(r)?;
                let (r, items) = status_att_list(r)?;
                Ok((r, ListReturnOption::Status(items)))
            }
            _ => fail(i),
        }
    })
}

/// `lsub = "LSUB" SP mailbox SP list-mailbox`
fn lsub(input: &[u8], ctx: Ctx) -> PResult<'_, CommandBody<'_>> {
    let (rest, reference) = one_mailbox(input, ctx)?;
    let (rest, ()) = sp(rest)?;
    let (rest, pattern) = list_mailbox(rest, ctx.utf8)?;
    Ok((rest, CommandBody::Lsub { reference, pattern }))
}

/// `status-att = "MESSAGES" / "UIDNEXT" / "UIDVALIDITY" / "UNSEEN" / "DELETED" / "SIZE" /
/// "RECENT" / "HIGHESTMODSEQ" / "APPENDLIMIT" / "DELETED-STORAGE"`
fn status_att(input: &[u8]) -> PResult<'_, StatusItem> {
    let (rest, w) = word(input);
    match StatusItem::from_keyword(w) {
        Some(i) => Ok((rest, i)),
        None => fail(input),
    }
}

/// `"(" status-att *(SP status-att) ")"`
fn status_att_list(input: &[u8]) -> PResult<'_, Vec<StatusItem>> {
    parse::paren_list1(input, status_att)
}

/// `status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")"`
fn status(input: &[u8], ctx: Ctx) -> PResult<'_, CommandBody<'_>> {
    let (rest, mailbox) = one_mailbox(input, ctx)?;
    let (rest, ()) = sp(rest)?;
    let (rest, items) = status_att_list(rest)?;
    Ok((rest, CommandBody::Status { mailbox, items }))
}

/// `append = "APPEND" SP mailbox 1*append-message` (RFC 3502),
/// `append-message = append-opts SP append-data`,
/// `append-opts = [SP flag-list] [SP date-time]`,
/// `append-data = literal / literal8` (RFC 3516 / RFC 9051)
fn append(input: &[u8], ctx: Ctx) -> PResult<'_, CommandBody<'_>> {
    let (mut rest, mailbox) = one_mailbox(input, ctx)?;
    let mut messages = Vec::with_capacity(1);
    while let Ok((r, ())) = sp(rest) {
        let (r, m) = append_message(r)?;
        messages.push(m);
        rest = r;
    }
    if messages.is_empty() {
        return fail(rest);
    }
    Ok((rest, CommandBody::Append { mailbox, messages }))
}

/// `append-message` after its leading SP: `[flag-list SP] [date-time SP] append-data`.
fn append_message(input: &[u8]) -> PResult<'_, AppendMessage<'_>> {
    let mut rest = input;
    let mut flags = Vec::new();
    if rest.first() == Some(&b'(') {
        let (r, f) = flag_list(rest)?;
        let (r, ()) = sp(r)?;
        flags = f;
        rest = r;
    }
    let mut date = None;
    if rest.first() == Some(&b'"') {
        let (r, d) = date_time(rest)?;
        let (r, ()) = sp(r)?;
        date = Some(d);
        rest = r;
    }
    let (rest, data) = literal_any(rest, true)?;
    Ok((
        rest,
        AppendMessage {
            flags,
            date_time: date,
            data,
        },
    ))
}

/// `uid-expunge = "UID" SP "EXPUNGE" SP sequence-set` (RFC 4315 / RFC 9051)
fn uid_expunge(input: &[u8]) -> PResult<'_, CommandBody<'_>> {
    let (rest, ()) = sp(input)?;
    let (rest, sequence_set) = sequence_set_arg(rest)?;
    Ok((rest, CommandBody::UidExpunge { sequence_set }))
}

/// `search = "SEARCH" [search-return-opts] SP search-program` (RFC 9051),
/// `search-program = ["CHARSET" SP charset SP] search-key *(SP search-key)`
fn search(input: &[u8], ctx: Ctx, uid: bool) -> PResult<'_, CommandBody<'_>> {
    let (rest, ()) = sp(input)?;
    let (mut rest, return_options) = search_return_opts(rest)?;
    let mut charset_value = None;
    if let Ok((r, ())) = keyword(rest, b"CHARSET ") {
        let (r, c) = charset(r)?;
        let (r, ()) = sp(r)?;
        charset_value = Some(c);
        rest = r;
    }
    let (rest, criteria) = search_keys(rest, ctx)?;
    Ok((
        rest,
        CommandBody::Search {
            uid,
            return_options,
            charset: charset_value,
            criteria,
        },
    ))
}

/// `search-key *(SP search-key)`
fn search_keys(input: &[u8], ctx: Ctx) -> PResult<'_, Vec<SearchKey<'_>>> {
    let (mut rest, first) = search_key(input, ctx.max_depth)?;
    let mut keys = Vec::with_capacity(4);
    keys.push(first);
    while let Ok((r, ())) = sp(rest) {
        let (r, k) = search_key(r, ctx.max_depth)?;
        keys.push(k);
        rest = r;
    }
    Ok((rest, keys))
}

/// `search-return-opts = SP "RETURN" SP "(" [search-return-opt *(SP search-return-opt)] ")"`
/// after its leading SP, followed by SP (RFC 4466 / RFC 5267 for SORT).
fn search_return_opts(input: &[u8]) -> PResult<'_, Option<Vec<SearchReturnOption>>> {
    match keyword(input, b"RETURN ") {
        Ok((r, ())) => {
            let (r, opts) = parse::paren_list(r, search_return_opt)?;
            let (r, ()) = sp(r)?;
            Ok((r, Some(opts)))
        }
        Err(_) => Ok((input, None)),
    }
}

/// `sort = ["UID" SP] "SORT" [search-return-opts] SP sort-criteria SP search-criteria`,
/// `sort-criteria = "(" sort-criterion *(SP sort-criterion) ")"`,
/// `search-criteria = charset 1*(SP search-key)` (RFC 5256, RFC 5267)
fn sort(input: &[u8], ctx: Ctx, uid: bool) -> PResult<'_, CommandBody<'_>> {
    let (rest, ()) = sp(input)?;
    let (rest, return_options) = search_return_opts(rest)?;
    let (rest, criteria) = parse::paren_list1(rest, sort_criterion)?;
    let (rest, ()) = sp(rest)?;
    let (rest, charset) = charset(rest)?;
    let (rest, ()) = sp(rest)?;
    let (rest, search) = search_keys(rest, ctx)?;
    Ok((
        rest,
        CommandBody::Sort {
            uid,
            return_options,
            criteria,
            charset,
            search,
        },
    ))
}

/// `sort-criterion = ["REVERSE" SP] sort-key`, `sort-key = "ARRIVAL" / "CC" / "DATE" /
/// "FROM" / "SIZE" / "SUBJECT" / "TO"` (RFC 5256) `/ "DISPLAYFROM" / "DISPLAYTO"` (RFC 5957)
fn sort_criterion(input: &[u8]) -> PResult<'_, SortCriterion> {
    let (rest, reverse) = match keyword(input, b"REVERSE ") {
        Ok((r, ())) => (r, true),
        Err(_) => (input, false),
    };
    let (after, _, key) = keyword_key(rest);
    let key = match key {
        K_ARRIVAL => SortKey::Arrival,
        K_CC => SortKey::Cc,
        K_DATE => SortKey::Date,
        K_FROM => SortKey::From,
        K_SIZE => SortKey::Size,
        K_SUBJECT => SortKey::Subject,
        K_TO => SortKey::To,
        K_DISPLAYFROM => SortKey::DisplayFrom,
        K_DISPLAYTO => SortKey::DisplayTo,
        _ => return fail(rest),
    };
    Ok((after, SortCriterion { reverse, key }))
}

/// `thread = ["UID" SP] "THREAD" SP thread-alg SP search-criteria`,
/// `thread-alg = "ORDEREDSUBJECT" / "REFERENCES" / thread-alg-ext`, `thread-alg-ext = atom`
/// (RFC 5256)
fn thread(input: &[u8], ctx: Ctx, uid: bool) -> PResult<'_, CommandBody<'_>> {
    let (rest, ()) = sp(input)?;
    let (rest, algorithm) = atom(rest)?;
    let (rest, ()) = sp(rest)?;
    let (rest, charset) = charset(rest)?;
    let (rest, ()) = sp(rest)?;
    let (rest, search) = search_keys(rest, ctx)?;
    Ok((
        rest,
        CommandBody::Thread {
            uid,
            algorithm: ThreadAlgorithm::from_atom(algorithm),
            charset,
            search,
        },
    ))
}

/// `getmetadata = "GETMETADATA" [SP getmetadata-options] SP mailbox SP entries`,
/// `getmetadata-options = "(" getmetadata-option *(SP getmetadata-option) ")"`,
/// `entries = entry / "(" entry *(SP entry) ")"`, `entry = astring` (RFC 5464)
fn getmetadata(input: &[u8], ctx: Ctx) -> PResult<'_, CommandBody<'_>> {
    let (mut rest, ()) = sp(input)?;
    let mut options = Vec::new();
    if rest.first() == Some(&b'(') {
        let (r, o) = parse::paren_list1(rest, getmetadata_option)?;
        let (r, ()) = sp(r)?;
        options = o;
        rest = r;
    }
    let (rest, mailbox) = mailbox(rest, ctx.utf8)?;
    let (rest, ()) = sp(rest)?;
    let (rest, entries) = if rest.first() == Some(&b'(') {
        parse::paren_list1(rest, astring)?
    } else {
        let (r, e) = astring(rest)?;
        (r, vec![e])
    };
    Ok((
        rest,
        CommandBody::GetMetadata {
            options,
            mailbox,
            entries,
        },
    ))
}

/// `getmetadata-option = maxsize-opt / scope-opt`, `maxsize-opt = "MAXSIZE" SP number`,
/// `scope-opt = "DEPTH" SP ("0" / "1" / "infinity")` (RFC 5464)
fn getmetadata_option(input: &[u8]) -> PResult<'_, GetMetadataOption> {
    if let Ok((rest, ())) = keyword(input, b"MAXSIZE ") {
        let (rest, n) = parse::number(rest)?;
        return Ok((rest, GetMetadataOption::MaxSize(n)));
    }
    let (rest, ()) = keyword(input, b"DEPTH ")?;
    let (after, w, _) = keyword_key(rest);
    let depth = match w {
        b"0" => MetadataDepth::Zero,
        b"1" => MetadataDepth::One,
        w if w.eq_ignore_ascii_case(b"infinity") => MetadataDepth::Infinity,
        _ => return fail(rest),
    };
    Ok((after, GetMetadataOption::Depth(depth)))
}

/// `setmetadata = "SETMETADATA" SP mailbox SP entry-values`,
/// `entry-values = "(" entry-value *(SP entry-value) ")"`, `entry-value = entry SP value`,
/// `value = nstring / literal8` (RFC 5464)
fn setmetadata(input: &[u8], ctx: Ctx) -> PResult<'_, CommandBody<'_>> {
    let (rest, mailbox) = one_mailbox(input, ctx)?;
    let (rest, ()) = sp(rest)?;
    let (rest, entries) = parse::paren_list1(rest, |i| {
        let (r, entry) = astring(i)?;
        let (r, ()) = sp(r)?;
        let (r, value) = if r.first() == Some(&b'~') {
            let (r, l) = literal_any(r, true)?;
            (r, NString(Some(IString::Literal(l))))
        } else {
            nstring(r)?
        };
        Ok((r, (entry, value)))
    })?;
    Ok((rest, CommandBody::SetMetadata { mailbox, entries }))
}

/// `search-return-opt = "MIN" / "MAX" / "ALL" / "COUNT" / "SAVE"` (RFC 4731, RFC 5182)
fn search_return_opt(input: &[u8]) -> PResult<'_, SearchReturnOption> {
    let (rest, _, key) = keyword_key(input);
    let o = match key {
        K_MIN => SearchReturnOption::Min,
        K_MAX => SearchReturnOption::Max,
        K_ALL => SearchReturnOption::All,
        K_COUNT => SearchReturnOption::Count,
        K_SAVE => SearchReturnOption::Save,
        _ => return fail(input),
    };
    Ok((rest, o))
}

/// `SP` followed by whatever `parse` reads.
fn after_sp<'a, T>(
    input: &'a [u8],
    parse: impl FnOnce(&'a [u8]) -> PResult<'a, T>,
) -> PResult<'a, T> {
    let (rest, ()) = sp(input)?;
    parse(rest)
}

fn sp_astring(input: &[u8]) -> PResult<'_, AString<'_>> {
    after_sp(input, astring)
}

fn sp_date(input: &[u8]) -> PResult<'_, Date> {
    after_sp(input, date)
}

/// `search-key = "ALL" / "ANSWERED" / "BCC" SP astring / "BEFORE" SP date / "BODY" SP astring
/// / "CC" SP astring / "DELETED" / "FLAGGED" / "FROM" SP astring / "KEYWORD" SP flag-keyword
/// / "NEW" / "OLD" / "ON" SP date / "RECENT" / "SEEN" / "SINCE" SP date / "SUBJECT" SP
/// astring / "TEXT" SP astring / "TO" SP astring / "UNANSWERED" / "UNDELETED" / "UNFLAGGED" /
/// "UNKEYWORD" SP flag-keyword / "UNSEEN" / "DRAFT" / "HEADER" SP header-fld-name SP astring
/// / "LARGER" SP number64 / "NOT" SP search-key / "OR" SP search-key SP search-key /
/// "SENTBEFORE" SP date / "SENTON" SP date / "SENTSINCE" SP date / "SMALLER" SP number64 /
/// "UID" SP sequence-set / "UNDRAFT" / sequence-set / "(" search-key *(SP search-key) ")"`
/// plus `search-modsequence` (RFC 7162), `"OLDER" / "YOUNGER" SP nz-number` (RFC 5032) and
/// Gmail's `"X-GM-RAW" / "X-GM-LABELS" SP astring`, `"X-GM-MSGID" / "X-GM-THRID" SP
/// number64`.
///
/// `depth` bounds the recursion through `NOT`, `OR` and parentheses.
fn search_key(input: &[u8], depth: usize) -> PResult<'_, SearchKey<'_>> {
    match input.first() {
        Some(b'0'..=b'9' | b'*' | b'$') => {
            let (rest, s) = sequence_set_arg(input)?;
            return Ok((rest, SearchKey::SequenceSet(s)));
        }
        Some(b'(') => {
            let Some(inner) = depth.checked_sub(1) else {
                return failure(input, ParseErrorKind::TooDeep);
            };
            let (rest, keys) = parse::paren_list1(input, |i| search_key(i, inner))?;
            return Ok((rest, SearchKey::And(keys)));
        }
        _ => {}
    }
    let (rest, _, key) = keyword_key(input);
    use SearchKey as K;
    let key = match key {
        K_ALL => (rest, K::All),
        K_ANSWERED => (rest, K::Answered),
        K_DELETED => (rest, K::Deleted),
        K_DRAFT => (rest, K::Draft),
        K_FLAGGED => (rest, K::Flagged),
        K_NEW => (rest, K::New),
        K_OLD => (rest, K::Old),
        K_RECENT => (rest, K::Recent),
        K_SEEN => (rest, K::Seen),
        K_UNANSWERED => (rest, K::Unanswered),
        K_UNDELETED => (rest, K::Undeleted),
        K_UNDRAFT => (rest, K::Undraft),
        K_UNFLAGGED => (rest, K::Unflagged),
        K_UNSEEN => (rest, K::Unseen),
        K_BCC => sp_astring(rest).map(|(r, s)| (r, K::Bcc(s)))?,
        K_BODY => sp_astring(rest).map(|(r, s)| (r, K::Body(s)))?,
        K_CC => sp_astring(rest).map(|(r, s)| (r, K::Cc(s)))?,
        K_FROM => sp_astring(rest).map(|(r, s)| (r, K::From(s)))?,
        K_SUBJECT => sp_astring(rest).map(|(r, s)| (r, K::Subject(s)))?,
        K_TEXT => sp_astring(rest).map(|(r, s)| (r, K::Text(s)))?,
        K_TO => sp_astring(rest).map(|(r, s)| (r, K::To(s)))?,
        K_HEADER => {
            let (r, name) = sp_astring(rest)?;
            let (r, value) = sp_astring(r)?;
            (r, K::Header(name, value))
        }
        K_BEFORE => sp_date(rest).map(|(r, d)| (r, K::Before(d)))?,
        K_ON => sp_date(rest).map(|(r, d)| (r, K::On(d)))?,
        K_SINCE => sp_date(rest).map(|(r, d)| (r, K::Since(d)))?,
        K_SENTBEFORE => sp_date(rest).map(|(r, d)| (r, K::SentBefore(d)))?,
        K_SENTON => sp_date(rest).map(|(r, d)| (r, K::SentOn(d)))?,
        K_SENTSINCE => sp_date(rest).map(|(r, d)| (r, K::SentSince(d)))?,
        K_KEYWORD => after_sp(rest, atom).map(|(r, a)| (r, K::Keyword(a)))?,
        K_UNKEYWORD => after_sp(rest, atom).map(|(r, a)| (r, K::Unkeyword(a)))?,
        K_LARGER => after_sp(rest, number64).map(|(r, n)| (r, K::Larger(n)))?,
        K_SMALLER => after_sp(rest, number64).map(|(r, n)| (r, K::Smaller(n)))?,
        K_OLDER => after_sp(rest, nz_number).map(|(r, n)| (r, K::Older(n)))?,
        K_YOUNGER => after_sp(rest, nz_number).map(|(r, n)| (r, K::Younger(n)))?,
        K_UID => {
            let (r, ()) = sp(rest)?;
            let (r, s) = sequence_set_arg(r)?;
            (r, K::Uid(s))
        }
        K_NOT => {
            let Some(inner) = depth.checked_sub(1) else {
                return failure(input, ParseErrorKind::TooDeep);
            };
            let (r, ()) = sp(rest)?;
            let (r, k) = search_key(r, inner)?;
            (r, K::Not(Box::new(k)))
        }
        K_OR => {
            let Some(inner) = depth.checked_sub(1) else {
                return failure(input, ParseErrorKind::TooDeep);
            };
            let (r, ()) = sp(rest)?;
            let (r, a) = search_key(r, inner)?;
            let (r, ()) = sp(r)?;
            let (r, b) = search_key(r, inner)?;
            (r, K::Or(Box::new(a), Box::new(b)))
        }
        K_MODSEQ => search_modsequence(rest)?,
        K_X_GM_RAW => sp_astring(rest).map(|(r, s)| (r, K::GmailRaw(s)))?,
        K_X_GM_LABELS => {
            let (r, ()) = sp(rest)?;
            let (r, label) = gmail_label(r)?;
            (r, K::GmailLabels(label))
        }
        K_X_GM_MSGID | K_X_GM_THRID => {
            let (r, ()) = sp(rest)?;
            let (r, n) = number64(r)?;
            (
                r,
                if key == K_X_GM_MSGID {
                    K::GmailMessageId(n)
                } else {
                    K::GmailThreadId(n)
                },
            )
        }
        _ => return fail(input),
    };
    Ok(key)
}

/// A Gmail label: `astring`, or a system label written like a flag (`\Important`, as Gmail
/// itself sends them), kept as the string `\Important` (encoded quoted).
fn gmail_label(input: &[u8]) -> PResult<'_, AString<'_>> {
    if input.first() == Some(&b'\\') {
        let (rest, a) = atom(&input[1..])?;
        let text = &input[..1 + a.as_bytes().len()];
        return Ok((
            rest,
            AString::String(IString::Quoted(Quoted::new_unchecked(text))),
        ));
    }
    astring(input)
}

/// `search-modsequence = "MODSEQ" [search-modseq-ext] SP mod-sequence-valzer`,
/// `search-modseq-ext = SP entry-name SP entry-type-req`,
/// `entry-name = entry-flag-name`, `entry-flag-name = DQUOTE "/flags/" attr-flag DQUOTE`,
/// `entry-type-req = entry-type-resp / "all"`, `entry-type-resp = "priv" / "shared"`
/// (RFC 7162; the input starts after `MODSEQ`).
fn search_modsequence(input: &[u8]) -> PResult<'_, SearchKey<'_>> {
    let (rest, ()) = sp(input)?;
    let (rest, entry) = if rest.first() == Some(&b'"') {
        let (r, name) = quoted(rest)?;
        let Some(flag_text) = name
            .as_bytes()
            .get(..7)
            .filter(|p| p.eq_ignore_ascii_case(b"/flags/"))
            .map(|_| &name.as_bytes()[7..])
        else {
            return fail(rest);
        };
        let parsed = match flag(flag_text) {
            Ok((b"", f)) => f.into_owned(),
            _ => return fail(rest),
        };
        let (r, ()) = sp(r)?;
        let (r, w) = word(r);
        let entry_type = if w.eq_ignore_ascii_case(b"priv") {
            EntryType::Private
        } else if w.eq_ignore_ascii_case(b"shared") {
            EntryType::Shared
        } else if w.eq_ignore_ascii_case(b"all") {
            EntryType::All
        } else {
            return fail(r);
        };
        let (r, ()) = sp(r)?;
        (
            r,
            Some(ModSeqEntry {
                flag: parsed,
                entry_type,
            }),
        )
    } else {
        (rest, None)
    };
    let (rest, mod_seq) = mod_sequence_valzer(rest)?;
    Ok((rest, SearchKey::ModSeq { entry, mod_seq }))
}

/// `fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att /
/// "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers]` (RFC 3501, RFC 4466, RFC 7162)
fn fetch(input: &[u8], uid: bool) -> PResult<'_, CommandBody<'_>> {
    let (rest, ()) = sp(input)?;
    let (rest, sequence_set) = sequence_set_arg(rest)?;
    let (rest, ()) = sp(rest)?;
    let (rest, attributes) = if rest.first() == Some(&b'(') {
        let (r, v) = parse::paren_list_with_capacity(rest, 12, fetch_att)?;
        if v.is_empty() {
            return fail(rest);
        }
        (r, FetchAttributes::List(v))
    } else {
        let (r, w) = word(rest);
        if w.eq_ignore_ascii_case(b"ALL") {
            (r, FetchAttributes::All)
        } else if w.eq_ignore_ascii_case(b"FAST") {
            (r, FetchAttributes::Fast)
        } else if w.eq_ignore_ascii_case(b"FULL") {
            (r, FetchAttributes::Full)
        } else {
            let (r, a) = fetch_att(rest)?;
            (r, FetchAttributes::List(vec![a]))
        }
    };
    let (rest, modifiers) = match sp(rest) {
        Ok((r, ())) => parse::paren_list1(r, fetch_modifier)?,
        Err(_) => (rest, Vec::new()),
    };
    Ok((
        rest,
        CommandBody::Fetch {
            uid,
            sequence_set,
            attributes,
            modifiers,
        },
    ))
}

/// `fetch-modifier = chgsince-fetch-mod / "VANISHED"`,
/// `chgsince-fetch-mod = "CHANGEDSINCE" SP mod-sequence-value` (RFC 7162)
fn fetch_modifier(input: &[u8]) -> PResult<'_, FetchModifier> {
    if let Ok((rest, ())) = keyword(input, b"CHANGEDSINCE ") {
        let (rest, m) = mod_sequence_value(rest)?;
        return Ok((rest, FetchModifier::ChangedSince(m)));
    }
    let (rest, ()) = keyword(input, b"VANISHED")?;
    Ok((rest, FetchModifier::Vanished))
}

/// `"<" number "." nz-number ">"` as a command's partial range.
fn partial_range(input: &[u8]) -> PResult<'_, Option<PartialRange>> {
    if input.first() != Some(&b'<') {
        return Ok((input, None));
    }
    let (rest, p) = parse::partial(input)?;
    match p.length {
        Some(length) => Ok((
            rest,
            Some(PartialRange {
                offset: p.offset,
                length,
            }),
        )),
        None => fail(input),
    }
}

/// `fetch-att = "ENVELOPE" / "FLAGS" / "INTERNALDATE" / "RFC822" [".HEADER" / ".SIZE" /
/// ".TEXT"] / "BODY" ["STRUCTURE"] / "UID" / "BODY" section [partial] / "BODY.PEEK" section
/// [partial] / "BINARY" [".PEEK"] section-binary [partial] / "BINARY.SIZE" section-binary`
/// plus `"MODSEQ"` (RFC 7162), `"EMAILID" / "THREADID"` (RFC 8474) and Gmail's
/// `"X-GM-MSGID" / "X-GM-THRID" / "X-GM-LABELS"`.
fn fetch_att(input: &[u8]) -> PResult<'_, FetchAttribute<'_>> {
    let (rest, w, key) = keyword_key(input);
    use FetchAttribute as F;
    let att = match key {
        K_ENVELOPE => (rest, F::Envelope),
        K_FLAGS => (rest, F::Flags),
        K_INTERNALDATE => (rest, F::InternalDate),
        K_RFC822 => (rest, F::Rfc822),
        K_RFC822_HEADER => (rest, F::Rfc822Header),
        K_RFC822_SIZE => (rest, F::Rfc822Size),
        K_RFC822_TEXT => (rest, F::Rfc822Text),
        K_BODYSTRUCTURE => (rest, F::BodyStructure),
        K_UID => (rest, F::Uid),
        K_MODSEQ => (rest, F::ModSeq),
        K_EMAILID => (rest, F::EmailId),
        K_THREADID => (rest, F::ThreadId),
        K_X_GM_MSGID => (rest, F::GmailMessageId),
        K_X_GM_THRID => (rest, F::GmailThreadId),
        K_X_GM_LABELS => (rest, F::GmailLabels),
        K_BODY | K_BODY_PEEK => {
            let peek = w.len() > 4;
            if rest.first() != Some(&b'[') {
                if peek {
                    return fail(rest);
                }
                return Ok((rest, F::Body));
            }
            let (r, section) = section(rest)?;
            let (r, partial) = partial_range(r)?;
            (
                r,
                F::BodySection {
                    peek,
                    section,
                    partial,
                },
            )
        }
        K_BINARY | K_BINARY_PEEK => {
            let (r, part) = section_binary(rest)?;
            let (r, partial) = partial_range(r)?;
            (
                r,
                F::Binary {
                    peek: w.len() > 6,
                    part,
                    partial,
                },
            )
        }
        K_BINARY_SIZE => {
            let (r, part) = section_binary(rest)?;
            (r, F::BinarySize { part })
        }
        _ => return fail(input),
    };
    Ok(att)
}

/// `store = "STORE" SP sequence-set [store-modifiers] SP store-att-flags`,
/// `store-modifiers = SP "(" "UNCHANGEDSINCE" SP mod-sequence-valzer ")"` (RFC 7162),
/// `store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP (flag-list / (flag *(SP flag)))`
fn store(input: &[u8], uid: bool) -> PResult<'_, CommandBody<'_>> {
    let (rest, ()) = sp(input)?;
    let (rest, sequence_set) = sequence_set_arg(rest)?;
    let (mut rest, ()) = sp(rest)?;
    let mut unchanged_since = None;
    if rest.first() == Some(&b'(') {
        let (r, ()) = byte(rest, b'(')?;
        let (r, ()) = keyword(r, b"UNCHANGEDSINCE ")?;
        let (r, n) = mod_sequence_valzer(r)?;
        let (r, ()) = byte(r, b')')?;
        let (r, ()) = sp(r)?;
        unchanged_since = Some(n);
        rest = r;
    }
    let (rest, kind) = match rest.first() {
        Some(b'+') => (&rest[1..], StoreKind::Add),
        Some(b'-') => (&rest[1..], StoreKind::Remove),
        _ => (rest, StoreKind::Replace),
    };
    let (rest, ()) = keyword(rest, b"FLAGS")?;
    let (rest, silent) = match keyword(rest, b".SILENT") {
        Ok((r, ())) => (r, true),
        Err(_) => (rest, false),
    };
    let (rest, ()) = sp(rest)?;
    let (rest, flags) = if rest.first() == Some(&b'(') {
        flag_list(rest)?
    } else {
        let (mut r, f) = flag(rest)?;
        let mut v = vec![f];
        while let Ok((r2, ())) = sp(r) {
            let (r2, f) = flag(r2)?;
            v.push(f);
            r = r2;
        }
        (r, v)
    };
    Ok((
        rest,
        CommandBody::Store {
            uid,
            sequence_set,
            unchanged_since,
            kind,
            silent,
            flags,
        },
    ))
}

/// `copy = "COPY" SP sequence-set SP mailbox`, `move = "MOVE" SP sequence-set SP mailbox`
/// (RFC 6851)
fn copy_or_move(input: &[u8], ctx: Ctx, uid: bool, is_move: bool) -> PResult<'_, CommandBody<'_>> {
    let (rest, ()) = sp(input)?;
    let (rest, sequence_set) = sequence_set_arg(rest)?;
    let (rest, mailbox) = one_mailbox(rest, ctx)?;
    Ok((
        rest,
        if is_move {
            CommandBody::Move {
                uid,
                sequence_set,
                mailbox,
            }
        } else {
            CommandBody::Copy {
                uid,
                sequence_set,
                mailbox,
            }
        },
    ))
}

/// `id = "ID" SP id-params-list`,
/// `id-params-list = "(" [string SP nstring *(SP string SP nstring)] ")" / nil` (RFC 2971)
fn id(input: &[u8]) -> PResult<'_, CommandBody<'_>> {
    let (rest, ()) = sp(input)?;
    if let Ok((r, ())) = parse::nil(rest) {
        return Ok((r, CommandBody::Id { parameters: None }));
    }
    let (rest, pairs) = parse::paren_list(rest, |i| {
        let (r, k) = string(i)?;
        let (r, ()) = sp(r)?;
        let (r, v) = nstring(r)?;
        Ok((r, (k, v)))
    })?;
    Ok((
        rest,
        CommandBody::Id {
            parameters: Some(pairs),
        },
    ))
}

/// `compress = "COMPRESS" SP algorithm`, `algorithm = "DEFLATE"` (RFC 4978; other atoms are
/// passed on so the server can answer `NO` as the RFC asks).
fn compress(input: &[u8]) -> PResult<'_, CommandBody<'_>> {
    let (rest, ()) = sp(input)?;
    let (rest, algorithm) = atom(rest)?;
    Ok((rest, CommandBody::Compress { algorithm }))
}

/// `getquota = "GETQUOTA" SP quota-root-name`, `quota-root-name = astring` (RFC 9208)
fn getquota(input: &[u8]) -> PResult<'_, CommandBody<'_>> {
    let (rest, root) = sp_astring(input)?;
    Ok((rest, CommandBody::GetQuota { root }))
}

/// `setquota = "SETQUOTA" SP quota-root-name SP setquota-list`,
/// `setquota-list = "(" [setquota-resource *(SP setquota-resource)] ")"`,
/// `setquota-resource = resource-name SP resource-limit`, `resource-limit = number64`
/// (RFC 9208)
fn setquota(input: &[u8]) -> PResult<'_, CommandBody<'_>> {
    let (rest, root) = sp_astring(input)?;
    let (rest, ()) = sp(rest)?;
    let (rest, limits) = parse::paren_list(rest, |i| {
        let (r, name) = atom(i)?;
        let (r, ()) = sp(r)?;
        let (r, limit) = number64(r)?;
        Ok((r, (QuotaResource::from_atom(name), limit)))
    })?;
    Ok((rest, CommandBody::SetQuota { root, limits }))
}

/// Parses a client line during `AUTHENTICATE`: `base64 CRLF` or `"*" CRLF` (cancel).
pub fn parse_authenticate_data(line: &[u8]) -> Result<AuthenticateData<'_>, ParseError> {
    parse::complete(line, |input| {
        if let Ok((rest, ())) = byte(input, b'*') {
            let (rest, ()) = crlf(rest)?;
            return Ok((rest, AuthenticateData::Cancel));
        }
        let (rest, b) = parse::base64(input)?;
        let (rest, ()) = crlf(rest)?;
        Ok((
            rest,
            AuthenticateData::Response(Base64Data(Cow::Borrowed(b))),
        ))
    })
}

/// Parses the line that ends IDLE: `idle-done = "DONE" CRLF` (case-insensitive).
pub fn parse_idle_done(line: &[u8]) -> Result<(), ParseError> {
    parse::complete(line, |input| {
        let (rest, ()) = keyword(input, b"DONE")?;
        crlf(rest)
    })
}

// ---------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------

impl Encode for Command<'_> {
    fn encode(&self, out: &mut Encoder) {
        self.tag.encode(out);
        out.push_sp();
        self.body.encode(out);
        out.push_crlf();
    }
}

fn sp_then<T: Encode + ?Sized>(value: &T, out: &mut Encoder) {
    out.push_sp();
    value.encode(out);
}

impl Encode for CommandBody<'_> {
    /// Writes the command without tag and CRLF.
    fn encode(&self, out: &mut Encoder) {
        out.push_bytes(self.name().as_bytes());
        match self {
            Self::Capability
            | Self::Noop
            | Self::Logout
            | Self::StartTls
            | Self::Namespace
            | Self::Check
            | Self::Close
            | Self::Unselect
            | Self::Expunge
            | Self::Idle => {}
            Self::Authenticate {
                mechanism,
                initial_response,
            } => {
                sp_then(mechanism, out);
                if let Some(ir) = initial_response {
                    out.push_sp();
                    if ir.is_empty() {
                        out.push_bytes(b"=");
                    } else {
                        out.push_bytes(ir.as_bytes());
                    }
                }
            }
            Self::Login { username, password } => {
                sp_then(username, out);
                sp_then(password, out);
            }
            Self::Enable { capabilities } => {
                if capabilities.is_empty() {
                    // ENABLE needs one capability; IMAP4rev2 is harmless to request.
                    out.push_bytes(b" IMAP4rev2");
                }
                for c in capabilities {
                    sp_then(c, out);
                }
            }
            Self::Select {
                mailbox,
                parameters,
            }
            | Self::Examine {
                mailbox,
                parameters,
            } => {
                sp_then(mailbox, out);
                if !parameters.is_empty() {
                    out.push_sp();
                    paren_list(parameters, out);
                }
            }
            Self::Create {
                mailbox,
                special_use,
            } => {
                sp_then(mailbox, out);
                if !special_use.is_empty() {
                    out.push_bytes(b" (USE ");
                    paren_list(special_use, out);
                    out.push_bytes(b")");
                }
            }
            Self::Delete { mailbox }
            | Self::Subscribe { mailbox }
            | Self::Unsubscribe { mailbox }
            | Self::GetQuotaRoot { mailbox } => sp_then(mailbox, out),
            Self::Rename { from, to } => {
                sp_then(from, out);
                sp_then(to, out);
            }
            Self::List {
                selection,
                reference,
                patterns,
                return_options,
            } => {
                if !selection.is_empty() {
                    out.push_sp();
                    paren_list(selection, out);
                }
                sp_then(reference, out);
                out.push_sp();
                match patterns.as_slice() {
                    [] => out.push_bytes(b"\"\""),
                    [one] => one.encode(out),
                    many => paren_list(many, out),
                }
                if !return_options.is_empty() {
                    out.push_bytes(b" RETURN ");
                    paren_list(return_options, out);
                }
            }
            Self::Lsub { reference, pattern } => {
                sp_then(reference, out);
                sp_then(pattern, out);
            }
            Self::Status { mailbox, items } => {
                sp_then(mailbox, out);
                out.push_sp();
                encode_status_items(items, out);
            }
            Self::Append { mailbox, messages } => {
                sp_then(mailbox, out);
                if messages.is_empty() {
                    // append needs one message; an empty one is the only neutral choice.
                    out.push_sp();
                    out.literal(b"", crate::types::LiteralMode::Sync, false);
                }
                for m in messages {
                    out.push_sp();
                    if !m.flags.is_empty() {
                        paren_list(&m.flags, out);
                        out.push_sp();
                    }
                    if let Some(d) = &m.date_time {
                        d.encode(out);
                        out.push_sp();
                    }
                    m.data.encode(out);
                }
            }
            Self::UidExpunge { sequence_set } => sp_then(sequence_set, out),
            Self::Search {
                uid: _,
                return_options,
                charset,
                criteria,
            } => {
                encode_return_options(return_options.as_deref(), out);
                if let Some(c) = charset {
                    out.push_bytes(b" CHARSET ");
                    c.encode(out);
                }
                encode_search_keys(criteria, out);
            }
            Self::Fetch {
                uid: _,
                sequence_set,
                attributes,
                modifiers,
            } => {
                sp_then(sequence_set, out);
                sp_then(attributes, out);
                if !modifiers.is_empty() {
                    out.push_sp();
                    paren_list(modifiers, out);
                }
            }
            Self::Store {
                uid: _,
                sequence_set,
                unchanged_since,
                kind,
                silent,
                flags,
            } => {
                sp_then(sequence_set, out);
                if let Some(n) = unchanged_since {
                    out.push_bytes(b" (UNCHANGEDSINCE ");
                    out.push_number64(*n);
                    out.push_bytes(b")");
                }
                out.push_bytes(match kind {
                    StoreKind::Replace => b" FLAGS",
                    StoreKind::Add => b" +FLAGS",
                    StoreKind::Remove => b" -FLAGS",
                });
                if *silent {
                    out.push_bytes(b".SILENT");
                }
                out.push_sp();
                paren_list(flags, out);
            }
            Self::Copy {
                uid: _,
                sequence_set,
                mailbox,
            }
            | Self::Move {
                uid: _,
                sequence_set,
                mailbox,
            } => {
                sp_then(sequence_set, out);
                sp_then(mailbox, out);
            }
            Self::Id { parameters } => match parameters {
                None => out.push_bytes(b" NIL"),
                Some(pairs) => {
                    out.push_bytes(b" (");
                    for (i, (k, v)) in pairs.iter().enumerate() {
                        if i > 0 {
                            out.push_sp();
                        }
                        k.encode(out);
                        sp_then(v, out);
                    }
                    out.push_bytes(b")");
                }
            },
            Self::Compress { algorithm } => sp_then(algorithm, out),
            Self::Unauthenticate => {}
            Self::Sort {
                uid: _,
                return_options,
                criteria,
                charset,
                search,
            } => {
                encode_return_options(return_options.as_deref(), out);
                out.push_sp();
                if criteria.is_empty() {
                    out.push_bytes(b"(ARRIVAL)");
                } else {
                    paren_list(criteria, out);
                }
                sp_then(charset, out);
                encode_search_keys(search, out);
            }
            Self::Thread {
                uid: _,
                algorithm,
                charset,
                search,
            } => {
                sp_then(algorithm, out);
                sp_then(charset, out);
                encode_search_keys(search, out);
            }
            Self::GetMetadata {
                options,
                mailbox,
                entries,
            } => {
                if !options.is_empty() {
                    out.push_sp();
                    paren_list(options, out);
                }
                sp_then(mailbox, out);
                out.push_sp();
                match entries.as_slice() {
                    // entries needs one; the RFC 5464 shared comment is a harmless stand-in.
                    [] => out.push_bytes(b"/shared/comment"),
                    [one] => one.encode(out),
                    many => paren_list(many, out),
                }
            }
            Self::SetMetadata { mailbox, entries } => {
                sp_then(mailbox, out);
                out.push_bytes(b" (");
                if entries.is_empty() {
                    // entry-values needs one pair; removing the shared comment is the
                    // neutral stand-in.
                    out.push_bytes(b"/shared/comment NIL");
                }
                for (i, (e, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_sp();
                    }
                    e.encode(out);
                    sp_then(v, out);
                }
                out.push_bytes(b")");
            }
            Self::GetQuota { root } => sp_then(root, out),
            Self::SetQuota { root, limits } => {
                sp_then(root, out);
                out.push_bytes(b" (");
                for (i, (r, l)) in limits.iter().enumerate() {
                    if i > 0 {
                        out.push_sp();
                    }
                    r.encode(out);
                    out.push_sp();
                    out.push_number64(*l);
                }
                out.push_bytes(b")");
            }
        }
    }
}

impl Encode for SelectParameter {
    fn encode(&self, out: &mut Encoder) {
        match self {
            Self::CondStore => out.push_bytes(b"CONDSTORE"),
            Self::QResync(q) => {
                out.push_bytes(b"QRESYNC (");
                out.push_number(u64::from(q.uid_validity.get()));
                sp_then(&q.mod_seq, out);
                if let Some(k) = &q.known_uids {
                    sp_then(k, out);
                }
                if let Some((a, b)) = &q.seq_match {
                    out.push_bytes(b" (");
                    a.encode(out);
                    sp_then(b, out);
                    out.push_bytes(b")");
                }
                out.push_bytes(b")");
            }
        }
    }
}

impl Encode for SearchKey<'_> {
    fn encode(&self, out: &mut Encoder) {
        use SearchKey as K;
        let simple: &[u8] = match self {
            K::All => b"ALL",
            K::Answered => b"ANSWERED",
            K::Deleted => b"DELETED",
            K::Draft => b"DRAFT",
            K::Flagged => b"FLAGGED",
            K::New => b"NEW",
            K::Old => b"OLD",
            K::Recent => b"RECENT",
            K::Seen => b"SEEN",
            K::Unanswered => b"UNANSWERED",
            K::Undeleted => b"UNDELETED",
            K::Undraft => b"UNDRAFT",
            K::Unflagged => b"UNFLAGGED",
            K::Unseen => b"UNSEEN",
            _ => b"",
        };
        if !simple.is_empty() {
            out.push_bytes(simple);
            return;
        }
        match self {
            K::Bcc(s) => kw_then(b"BCC", s, out),
            K::Body(s) => kw_then(b"BODY", s, out),
            K::Cc(s) => kw_then(b"CC", s, out),
            K::From(s) => kw_then(b"FROM", s, out),
            K::Subject(s) => kw_then(b"SUBJECT", s, out),
            K::Text(s) => kw_then(b"TEXT", s, out),
            K::To(s) => kw_then(b"TO", s, out),
            K::Header(h, v) => {
                kw_then(b"HEADER", h, out);
                sp_then(v, out);
            }
            K::Before(d) => kw_then(b"BEFORE", d, out),
            K::On(d) => kw_then(b"ON", d, out),
            K::Since(d) => kw_then(b"SINCE", d, out),
            K::SentBefore(d) => kw_then(b"SENTBEFORE", d, out),
            K::SentOn(d) => kw_then(b"SENTON", d, out),
            K::SentSince(d) => kw_then(b"SENTSINCE", d, out),
            K::Keyword(a) => kw_then(b"KEYWORD", a, out),
            K::Unkeyword(a) => kw_then(b"UNKEYWORD", a, out),
            K::Larger(n) | K::Smaller(n) => {
                out.push_bytes(if matches!(self, K::Larger(_)) {
                    b"LARGER "
                } else {
                    b"SMALLER "
                });
                out.push_number64(*n);
            }
            K::Older(n) | K::Younger(n) => {
                out.push_bytes(if matches!(self, K::Older(_)) {
                    b"OLDER "
                } else {
                    b"YOUNGER "
                });
                out.push_number(u64::from(n.get()));
            }
            K::Uid(s) => kw_then(b"UID", s, out),
            K::GmailRaw(s) => kw_then(b"X-GM-RAW", s, out),
            K::GmailLabels(s) => kw_then(b"X-GM-LABELS", s, out),
            K::GmailMessageId(n) | K::GmailThreadId(n) => {
                out.push_bytes(if matches!(self, K::GmailMessageId(_)) {
                    b"X-GM-MSGID "
                } else {
                    b"X-GM-THRID "
                });
                out.push_number64(*n);
            }
            K::Not(k) => kw_then(b"NOT", k.as_ref(), out),
            K::Or(a, b) => {
                kw_then(b"OR", a.as_ref(), out);
                sp_then(b.as_ref(), out);
            }
            K::ModSeq { entry, mod_seq } => {
                out.push_bytes(b"MODSEQ ");
                if let Some(e) = entry {
                    let mut name = b"/flags/".to_vec();
                    let mut flag_enc = Encoder::new();
                    e.flag.encode(&mut flag_enc);
                    name.extend_from_slice(flag_enc.as_bytes());
                    out.push_quoted(&name);
                    out.push_bytes(match e.entry_type {
                        EntryType::Private => b" priv ",
                        EntryType::Shared => b" shared ",
                        EntryType::All => b" all ",
                    });
                }
                out.push_number64(*mod_seq);
            }
            K::SequenceSet(s) => s.encode(out),
            K::And(keys) => {
                if keys.is_empty() {
                    out.push_bytes(b"ALL");
                } else {
                    paren_list(keys, out);
                }
            }
            _ => {}
        }
    }
}

/// ` RETURN (...)` when present.
fn encode_return_options(options: Option<&[SearchReturnOption]>, out: &mut Encoder) {
    if let Some(opts) = options {
        out.push_bytes(b" RETURN ");
        paren_list(opts, out);
    }
}

/// ` key key ...`; an empty list is written ` ALL` (the grammar needs one key).
fn encode_search_keys(keys: &[SearchKey<'_>], out: &mut Encoder) {
    if keys.is_empty() {
        out.push_bytes(b" ALL");
    }
    for k in keys {
        sp_then(k, out);
    }
}

fn kw_then<T: Encode + ?Sized>(kw: &[u8], value: &T, out: &mut Encoder) {
    out.push_bytes(kw);
    sp_then(value, out);
}

impl Encode for FetchAttributes<'_> {
    fn encode(&self, out: &mut Encoder) {
        match self {
            Self::All => out.push_bytes(b"ALL"),
            Self::Fast => out.push_bytes(b"FAST"),
            Self::Full => out.push_bytes(b"FULL"),
            Self::List(v) => match v.as_slice() {
                // fetch-att-list needs an item; FLAGS is the cheapest.
                [] => out.push_bytes(b"FLAGS"),
                [one] => one.encode(out),
                many => paren_list(many, out),
            },
        }
    }
}

impl Encode for FetchAttribute<'_> {
    fn encode(&self, out: &mut Encoder) {
        use FetchAttribute as F;
        match self {
            F::Envelope => out.push_bytes(b"ENVELOPE"),
            F::Flags => out.push_bytes(b"FLAGS"),
            F::InternalDate => out.push_bytes(b"INTERNALDATE"),
            F::Rfc822 => out.push_bytes(b"RFC822"),
            F::Rfc822Header => out.push_bytes(b"RFC822.HEADER"),
            F::Rfc822Size => out.push_bytes(b"RFC822.SIZE"),
            F::Rfc822Text => out.push_bytes(b"RFC822.TEXT"),
            F::Body => out.push_bytes(b"BODY"),
            F::BodyStructure => out.push_bytes(b"BODYSTRUCTURE"),
            F::Uid => out.push_bytes(b"UID"),
            F::ModSeq => out.push_bytes(b"MODSEQ"),
            F::EmailId => out.push_bytes(b"EMAILID"),
            F::ThreadId => out.push_bytes(b"THREADID"),
            F::GmailMessageId => out.push_bytes(b"X-GM-MSGID"),
            F::GmailThreadId => out.push_bytes(b"X-GM-THRID"),
            F::GmailLabels => out.push_bytes(b"X-GM-LABELS"),
            F::BodySection {
                peek,
                section,
                partial,
            } => {
                out.push_bytes(if *peek { b"BODY.PEEK" } else { b"BODY" });
                section.encode(out);
                if let Some(p) = partial {
                    p.encode(out);
                }
            }
            F::Binary {
                peek,
                part,
                partial,
            } => {
                out.push_bytes(if *peek { b"BINARY.PEEK[" } else { b"BINARY[" });
                encode_part(part, out);
                out.push_bytes(b"]");
                if let Some(p) = partial {
                    p.encode(out);
                }
            }
            F::BinarySize { part } => {
                out.push_bytes(b"BINARY.SIZE[");
                encode_part(part, out);
                out.push_bytes(b"]");
            }
        }
    }
}

impl Encode for FetchModifier {
    fn encode(&self, out: &mut Encoder) {
        match self {
            Self::ChangedSince(m) => kw_then(b"CHANGEDSINCE", m, out),
            Self::Vanished => out.push_bytes(b"VANISHED"),
        }
    }
}

#[cfg(test)]
mod tests;
