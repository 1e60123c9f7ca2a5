//! The three NTLM messages (MS-NLMP §2.2.1), their AV pairs (§2.2.2.1) and VERSION
//! (§2.2.2.10): parsers that never panic and total encoders.

use std::fmt;

/// `"NTLMSSP\0"`, the first eight bytes of every NTLM message (MS-NLMP §2.2.1).
pub const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";

/// Size of the fixed part of a NEGOTIATE_MESSAGE without VERSION.
const NEGOTIATE_HEADER: usize = 32;
/// Size of the fixed part of a CHALLENGE_MESSAGE without VERSION.
const CHALLENGE_HEADER: usize = 48;
/// Size of the fixed part of an AUTHENTICATE_MESSAGE without VERSION and MIC.
const AUTHENTICATE_HEADER: usize = 64;
/// Offset of the MIC in an AUTHENTICATE_MESSAGE that carries VERSION and MIC.
pub(crate) const MIC_OFFSET: usize = 72;

/// The `NegotiateFlags` field (MS-NLMP §2.2.2.5), a set of `NTLMSSP_NEGOTIATE_*` bits.
///
/// `Debug` lists the names of the bits that are set.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NegotiateFlags(pub u32);

macro_rules! flags {
    ($($(#[$doc:meta])* $name:ident = $value:expr;)*) => {
        impl NegotiateFlags {
            $($(#[$doc])* pub const $name: NegotiateFlags = NegotiateFlags($value);)*

            const NAMES: &'static [(&'static str, u32)] = &[$((stringify!($name), $value)),*];
        }
    };
}

flags! {
    /// `NTLMSSP_NEGOTIATE_UNICODE` (A): strings are UTF-16LE.
    UNICODE = 0x0000_0001;
    /// `NTLM_NEGOTIATE_OEM` (B): strings are in the OEM code page.
    OEM = 0x0000_0002;
    /// `NTLMSSP_REQUEST_TARGET` (C): the CHALLENGE carries a TargetName.
    REQUEST_TARGET = 0x0000_0004;
    /// `NTLMSSP_NEGOTIATE_SIGN` (D): message integrity.
    SIGN = 0x0000_0010;
    /// `NTLMSSP_NEGOTIATE_SEAL` (E): message confidentiality.
    SEAL = 0x0000_0020;
    /// `NTLMSSP_NEGOTIATE_DATAGRAM` (F): connectionless NTLM (not supported here).
    DATAGRAM = 0x0000_0040;
    /// `NTLMSSP_NEGOTIATE_LM_KEY` (G): LAN Manager session key (never granted).
    LM_KEY = 0x0000_0080;
    /// `NTLMSSP_NEGOTIATE_NTLM` (H): NTLM v1 session security.
    NTLM = 0x0000_0200;
    /// Anonymous connection (J).
    ANONYMOUS = 0x0000_0800;
    /// `NTLMSSP_NEGOTIATE_OEM_DOMAIN_SUPPLIED` (K): the NEGOTIATE carries a domain name.
    OEM_DOMAIN_SUPPLIED = 0x0000_1000;
    /// `NTLMSSP_NEGOTIATE_OEM_WORKSTATION_SUPPLIED` (L): the NEGOTIATE carries a
    /// workstation name.
    OEM_WORKSTATION_SUPPLIED = 0x0000_2000;
    /// `NTLMSSP_NEGOTIATE_ALWAYS_SIGN` (M).
    ALWAYS_SIGN = 0x0000_8000;
    /// `NTLMSSP_TARGET_TYPE_DOMAIN` (N): TargetName is a domain name.
    TARGET_TYPE_DOMAIN = 0x0001_0000;
    /// `NTLMSSP_TARGET_TYPE_SERVER` (O): TargetName is a server name.
    TARGET_TYPE_SERVER = 0x0002_0000;
    /// `NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY` (P).
    EXTENDED_SESSIONSECURITY = 0x0008_0000;
    /// `NTLMSSP_NEGOTIATE_IDENTIFY` (Q).
    IDENTIFY = 0x0010_0000;
    /// `NTLMSSP_REQUEST_NON_NT_SESSION_KEY` (R) (never granted).
    REQUEST_NON_NT_SESSION_KEY = 0x0040_0000;
    /// `NTLMSSP_NEGOTIATE_TARGET_INFO` (S): the CHALLENGE carries TargetInfo.
    TARGET_INFO = 0x0080_0000;
    /// `NTLMSSP_NEGOTIATE_VERSION` (T): the VERSION field is present.
    VERSION = 0x0200_0000;
    /// `NTLMSSP_NEGOTIATE_128` (U): 128-bit session key.
    NEGOTIATE_128 = 0x2000_0000;
    /// `NTLMSSP_NEGOTIATE_KEY_EXCH` (V): the client sends an encrypted random session key.
    KEY_EXCH = 0x4000_0000;
    /// `NTLMSSP_NEGOTIATE_56` (W): 56-bit session key.
    NEGOTIATE_56 = 0x8000_0000;
}

impl NegotiateFlags {
    /// No flag set.
    pub const EMPTY: NegotiateFlags = NegotiateFlags(0);

    /// Whether every bit of `other` is set in `self`.
    pub const fn contains(self, other: NegotiateFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The bits set in both.
    pub const fn intersection(self, other: NegotiateFlags) -> NegotiateFlags {
        NegotiateFlags(self.0 & other.0)
    }

    /// The bits set in either.
    pub const fn union(self, other: NegotiateFlags) -> NegotiateFlags {
        NegotiateFlags(self.0 | other.0)
    }
}

impl std::ops::BitOr for NegotiateFlags {
    type Output = NegotiateFlags;
    fn bitor(self, rhs: NegotiateFlags) -> NegotiateFlags {
        self.union(rhs)
    }
}

impl std::ops::BitAnd for NegotiateFlags {
    type Output = NegotiateFlags;
    fn bitand(self, rhs: NegotiateFlags) -> NegotiateFlags {
        self.intersection(rhs)
    }
}

impl fmt::Debug for NegotiateFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NegotiateFlags({:#010x}", self.0)?;
        let mut rest = self.0;
        for (name, bit) in Self::NAMES {
            if self.0 & bit != 0 {
                write!(f, " {name}")?;
                rest &= !bit;
            }
        }
        if rest != 0 {
            write!(f, " {rest:#x}")?;
        }
        f.write_str(")")
    }
}

/// The VERSION structure (MS-NLMP §2.2.2.10): the sender's OS version, for debugging only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Version {
    /// `ProductMajorVersion`.
    pub major: u8,
    /// `ProductMinorVersion`.
    pub minor: u8,
    /// `ProductBuild`.
    pub build: u16,
    /// `NTLMRevisionCurrent`; 15 (`NTLMSSP_REVISION_W2K3`) for every current peer.
    pub ntlm_revision: u8,
}

impl Version {
    /// Windows Server 2008 R2 SP1 (6.1.7601), NTLM revision 15: what Exchange 2010 servers
    /// sent, and this crate's default.
    pub const WINDOWS_2008_R2: Version = Version {
        major: 6,
        minor: 1,
        build: 7601,
        ntlm_revision: 15,
    };

    fn parse(b: &[u8]) -> Option<Version> {
        Some(Version {
            major: *b.first()?,
            minor: *b.get(1)?,
            build: u16::from_le_bytes([*b.get(2)?, *b.get(3)?]),
            ntlm_revision: *b.get(7)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.major);
        out.push(self.minor);
        out.extend_from_slice(&self.build.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0, self.ntlm_revision]);
    }
}

/// A message field that a [`MessageError`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// NEGOTIATE `DomainName`, AUTHENTICATE `DomainName`.
    DomainName,
    /// NEGOTIATE and AUTHENTICATE `Workstation`.
    Workstation,
    /// CHALLENGE `TargetName`.
    TargetName,
    /// CHALLENGE `TargetInfo`.
    TargetInfo,
    /// AUTHENTICATE `LmChallengeResponse`.
    LmChallengeResponse,
    /// AUTHENTICATE `NtChallengeResponse`.
    NtChallengeResponse,
    /// AUTHENTICATE `UserName`.
    UserName,
    /// AUTHENTICATE `EncryptedRandomSessionKey`.
    EncryptedRandomSessionKey,
}

/// How an NTLM message is malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum MessageErrorKind {
    /// The message ends before its fixed header does.
    #[error("message truncated")]
    Truncated,
    /// The message is longer than the configured limit.
    #[error("message longer than {max} bytes")]
    TooLong {
        /// The limit in bytes.
        max: usize,
    },
    /// The first eight bytes are not `NTLMSSP\0`.
    #[error("bad signature (not NTLMSSP)")]
    BadSignature,
    /// `MessageType` is not the one expected at this point of the exchange.
    #[error("message type {found}, expected {expected}")]
    WrongMessageType {
        /// The expected type (1 NEGOTIATE, 2 CHALLENGE, 3 AUTHENTICATE).
        expected: u32,
        /// The type the message carries.
        found: u32,
    },
    /// A field's offset and length reach outside the message.
    #[error("{0:?} lies outside the message")]
    OutOfBounds(Field),
    /// A field points into the fixed header.
    #[error("{0:?} points into the message header")]
    InHeader(Field),
    /// Two fields share bytes.
    #[error("{0:?} overlaps {1:?}")]
    Overlap(Field, Field),
    /// A UTF-16LE string has an odd number of bytes.
    #[error("{0:?} has an odd length for UTF-16")]
    OddUnicodeLength(Field),
    /// A UTF-16LE string has an unpaired surrogate.
    #[error("{0:?} is not valid UTF-16")]
    InvalidUnicode(Field),
    /// An OEM string is not valid UTF-8 (the only OEM code page this crate reads; ASCII is
    /// valid UTF-8).
    #[error("{0:?} is not valid UTF-8/ASCII")]
    InvalidOem(Field),
    /// An AV pair runs past the end of its list.
    #[error("AV pair truncated")]
    AvPairTruncated,
    /// An AV pair of a fixed-size type has the wrong length.
    #[error("AV pair {id} has length {len}")]
    AvPairLength {
        /// The `AvId`.
        id: u16,
        /// The `AvLen` found.
        len: u16,
    },
    /// The NTLMv2 response is too short for its fixed part, or its `RespType` is not 1.
    #[error("malformed NTLMv2 response")]
    BadNtlmv2Response,
    /// The encrypted random session key is not 16 bytes long.
    #[error("encrypted random session key is not 16 bytes")]
    SessionKeyLength,
}

/// A malformed NTLM message: what is wrong and at which byte offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("malformed NTLM message at offset {offset}: {kind}")]
pub struct MessageError {
    /// What is wrong.
    pub kind: MessageErrorKind,
    /// The byte offset in the message that the error is about.
    pub offset: usize,
}

impl MessageError {
    fn new(kind: MessageErrorKind, offset: usize) -> Self {
        MessageError { kind, offset }
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([
        *b.get(at)?,
        *b.get(at.checked_add(1)?)?,
    ]))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    let s: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(s))
}

/// Checks the signature, the type and the size limit; returns the flags-independent header.
fn check_header(
    msg: &[u8],
    expected: u32,
    min_len: usize,
    max_len: usize,
) -> Result<(), MessageError> {
    if msg.len() > max_len {
        return Err(MessageError::new(
            MessageErrorKind::TooLong { max: max_len },
            max_len,
        ));
    }
    let sig_len = msg.len().min(8);
    if msg.get(..sig_len) != SIGNATURE.get(..sig_len) {
        return Err(MessageError::new(MessageErrorKind::BadSignature, 0));
    }
    let found = u32_at(msg, 8).ok_or(MessageError::new(MessageErrorKind::Truncated, msg.len()))?;
    if found != expected {
        return Err(MessageError::new(
            MessageErrorKind::WrongMessageType { expected, found },
            8,
        ));
    }
    if msg.len() < min_len {
        return Err(MessageError::new(MessageErrorKind::Truncated, msg.len()));
    }
    Ok(())
}

/// A `(Len, MaxLen, BufferOffset)` field descriptor, read but not yet resolved.
#[derive(Clone, Copy, Debug)]
struct FieldRef {
    field: Field,
    /// Where the descriptor sits in the header.
    at: usize,
    len: usize,
    offset: usize,
}

impl FieldRef {
    fn read(msg: &[u8], at: usize, field: Field) -> Option<FieldRef> {
        Some(FieldRef {
            field,
            at,
            len: usize::from(u16_at(msg, at)?),
            offset: usize::try_from(u32_at(msg, at + 4)?).ok()?,
        })
    }

    fn end(&self) -> Option<usize> {
        self.offset.checked_add(self.len)
    }

    /// The field's bytes; empty fields are never looked up (their offset is often junk).
    fn resolve<'a>(&self, msg: &'a [u8], header_end: usize) -> Result<&'a [u8], MessageError> {
        if self.len == 0 {
            return Ok(&[]);
        }
        if self.offset < header_end {
            return Err(MessageError::new(
                MessageErrorKind::InHeader(self.field),
                self.at,
            ));
        }
        self.end()
            .and_then(|end| msg.get(self.offset..end))
            .ok_or(MessageError::new(
                MessageErrorKind::OutOfBounds(self.field),
                self.at,
            ))
    }
}

/// Rejects non-empty fields that share bytes.
fn check_overlaps(fields: &[FieldRef]) -> Result<(), MessageError> {
    let mut spans: Vec<&FieldRef> = fields.iter().filter(|f| f.len > 0).collect();
    spans.sort_by_key(|f| f.offset);
    for pair in spans.windows(2) {
        if let [a, b] = pair {
            // Both ends were checked against the message length already.
            if a.end().is_none_or(|end| end > b.offset) {
                return Err(MessageError::new(
                    MessageErrorKind::Overlap(a.field, b.field),
                    b.at,
                ));
            }
        }
    }
    Ok(())
}

/// Decodes a string field: UTF-16LE when `unicode`, else OEM (read as UTF-8).
pub(crate) fn decode_string(
    bytes: &[u8],
    unicode: bool,
    field: Field,
    at: usize,
) -> Result<String, MessageError> {
    if unicode {
        if !bytes.len().is_multiple_of(2) {
            return Err(MessageError::new(
                MessageErrorKind::OddUnicodeLength(field),
                at,
            ));
        }
        let units = bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]));
        char::decode_utf16(units)
            .collect::<Result<String, _>>()
            .map_err(|_| MessageError::new(MessageErrorKind::InvalidUnicode(field), at))
    } else {
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| MessageError::new(MessageErrorKind::InvalidOem(field), at))
    }
}

/// Encodes a string as UTF-16LE or as OEM (UTF-8 bytes).
pub(crate) fn encode_string(s: &str, unicode: bool) -> Vec<u8> {
    if unicode {
        utf16le(s)
    } else {
        s.as_bytes().to_vec()
    }
}

/// UTF-16LE bytes of `s`.
pub(crate) fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// Appends payload fields after a header, filling in their descriptors.
struct PayloadWriter {
    out: Vec<u8>,
}

impl PayloadWriter {
    fn new(header_len: usize) -> Self {
        PayloadWriter {
            out: vec![0; header_len],
        }
    }

    /// Writes `data` at the end and its descriptor at `at`. Lengths above `u16::MAX` are
    /// cut to it: the wire format cannot say more.
    fn field(&mut self, at: usize, data: &[u8]) {
        let data = data.get(..usize::from(u16::MAX)).unwrap_or(data);
        let offset = u32::try_from(self.out.len()).unwrap_or(u32::MAX);
        let len = u16::try_from(data.len()).unwrap_or(u16::MAX);
        self.put(at, &len.to_le_bytes());
        self.put(at + 2, &len.to_le_bytes());
        self.put(at + 4, &offset.to_le_bytes());
        self.out.extend_from_slice(data);
    }

    fn put(&mut self, at: usize, bytes: &[u8]) {
        if let Some(dst) = self.out.get_mut(at..at + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
    }
}

/// NEGOTIATE_MESSAGE (MS-NLMP §2.2.1.1), sent by the client first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NegotiateMessage {
    /// The flags the client asks for.
    pub flags: NegotiateFlags,
    /// The client's domain (OEM), present when `OEM_DOMAIN_SUPPLIED` is set.
    pub domain: Option<Vec<u8>>,
    /// The client's workstation name (OEM), present when `OEM_WORKSTATION_SUPPLIED` is set.
    pub workstation: Option<Vec<u8>>,
    /// The client's OS version, present when the header has room for it.
    pub version: Option<Version>,
}

impl NegotiateMessage {
    /// Parses a NEGOTIATE_MESSAGE of at most `max_len` bytes.
    ///
    /// Accepts the 32-byte form curl and impacket send (no VERSION) and the 40-byte form
    /// with VERSION. Domain and workstation descriptors are only read when their
    /// `OEM_*_SUPPLIED` flag is set; otherwise the spec says to ignore them. A 16-byte
    /// message (flags only, as very old clients sent) is accepted too.
    pub fn parse(msg: &[u8], max_len: usize) -> Result<NegotiateMessage, MessageError> {
        check_header(msg, 1, 16, max_len)?;
        let flags = NegotiateFlags(u32_at(msg, 12).unwrap_or(0));
        if msg.len() > 16 && msg.len() < NEGOTIATE_HEADER {
            return Err(MessageError::new(MessageErrorKind::Truncated, msg.len()));
        }
        let mut refs = Vec::with_capacity(2);
        if msg.len() >= NEGOTIATE_HEADER {
            if flags.contains(NegotiateFlags::OEM_DOMAIN_SUPPLIED) {
                refs.extend(FieldRef::read(msg, 16, Field::DomainName));
            }
            if flags.contains(NegotiateFlags::OEM_WORKSTATION_SUPPLIED) {
                refs.extend(FieldRef::read(msg, 24, Field::Workstation));
            }
        }
        let payload_start = refs
            .iter()
            .filter(|f| f.len > 0)
            .map(|f| f.offset)
            .min()
            .unwrap_or(msg.len());
        let header_end =
            if payload_start >= NEGOTIATE_HEADER + 8 && msg.len() >= NEGOTIATE_HEADER + 8 {
                NEGOTIATE_HEADER + 8
            } else {
                NEGOTIATE_HEADER.min(msg.len())
            };
        let version = (header_end == NEGOTIATE_HEADER + 8
            && flags.contains(NegotiateFlags::VERSION))
        .then(|| msg.get(NEGOTIATE_HEADER..).and_then(Version::parse))
        .flatten();
        check_overlaps(&refs)?;
        let mut domain = None;
        let mut workstation = None;
        for r in &refs {
            let bytes = r.resolve(msg, header_end)?.to_vec();
            match r.field {
                Field::DomainName => domain = Some(bytes),
                _ => workstation = Some(bytes),
            }
        }
        Ok(NegotiateMessage {
            flags,
            domain,
            workstation,
            version,
        })
    }

    /// Encodes the message. The `OEM_*_SUPPLIED` flags are set from the presence of the
    /// strings, and `VERSION` from the presence of the version (and the VERSION field is
    /// then written), so the result parses back to the same value.
    pub fn encode(&self) -> Vec<u8> {
        let mut flags = self.flags;
        for (present, flag) in [
            (self.domain.is_some(), NegotiateFlags::OEM_DOMAIN_SUPPLIED),
            (
                self.workstation.is_some(),
                NegotiateFlags::OEM_WORKSTATION_SUPPLIED,
            ),
            (self.version.is_some(), NegotiateFlags::VERSION),
        ] {
            flags.0 = if present {
                flags.0 | flag.0
            } else {
                flags.0 & !flag.0
            };
        }
        let header = NEGOTIATE_HEADER + 8;
        let mut w = PayloadWriter::new(header);
        w.put(0, SIGNATURE);
        w.put(8, &1u32.to_le_bytes());
        w.put(12, &flags.0.to_le_bytes());
        if let Some(v) = &self.version {
            let mut b = Vec::with_capacity(8);
            v.encode(&mut b);
            w.put(NEGOTIATE_HEADER, &b);
        }
        // An empty string still needs its descriptor to point past the header.
        for (at, s) in [(16, &self.domain), (24, &self.workstation)] {
            w.field(at, s.as_deref().unwrap_or_default());
        }
        w.out
    }
}

/// The `AvId` values of MS-NLMP §2.2.2.1.
pub mod av_id {
    /// `MsvAvEOL`: end of the list.
    pub const EOL: u16 = 0;
    /// `MsvAvNbComputerName`: the server's NetBIOS computer name (UTF-16LE).
    pub const NB_COMPUTER_NAME: u16 = 1;
    /// `MsvAvNbDomainName`: the server's NetBIOS domain name (UTF-16LE).
    pub const NB_DOMAIN_NAME: u16 = 2;
    /// `MsvAvDnsComputerName`: the server's FQDN (UTF-16LE).
    pub const DNS_COMPUTER_NAME: u16 = 3;
    /// `MsvAvDnsDomainName`: the FQDN of the domain (UTF-16LE).
    pub const DNS_DOMAIN_NAME: u16 = 4;
    /// `MsvAvDnsTreeName`: the FQDN of the forest (UTF-16LE).
    pub const DNS_TREE_NAME: u16 = 5;
    /// `MsvAvFlags`: a 32-bit flag set (0x2: the AUTHENTICATE carries a MIC).
    pub const FLAGS: u16 = 6;
    /// `MsvAvTimestamp`: FILETIME of the server.
    pub const TIMESTAMP: u16 = 7;
    /// `MsvAvSingleHost`: the client's Single_Host_Data.
    pub const SINGLE_HOST: u16 = 8;
    /// `MsvAvTargetName`: the SPN the client targeted (UTF-16LE).
    pub const TARGET_NAME: u16 = 9;
    /// `MsvAvChannelBindings`: MD5 of the `gss_channel_bindings_struct`.
    pub const CHANNEL_BINDINGS: u16 = 10;
}

/// `MsvAvFlags` bit: the AUTHENTICATE_MESSAGE carries a MIC.
pub const AV_FLAG_MIC_PRESENT: u32 = 0x0000_0002;

/// One AV_PAIR (MS-NLMP §2.2.2.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AvPair {
    /// `AvId`; see [`av_id`].
    pub id: u16,
    /// The value, as it appears on the wire.
    pub value: Vec<u8>,
}

/// A list of AV pairs, without the terminating `MsvAvEOL` (added by
/// [`encode`](AvPairs::encode), removed by [`parse`](AvPairs::parse)).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct AvPairs(pub Vec<AvPair>);

impl AvPairs {
    /// Parses AV pairs up to `MsvAvEOL`. Bytes after the EOL are ignored (a Windows 7 NTLMv2
    /// blob carries eight of them); a list that ends without EOL is accepted as ending
    /// there. Fixed-size pairs (`MsvAvFlags` 4 bytes, `MsvAvTimestamp` 8,
    /// `MsvAvChannelBindings` 16) must have their size.
    pub fn parse(b: &[u8]) -> Result<AvPairs, MessageError> {
        let mut pairs = Vec::new();
        let mut at = 0usize;
        while at < b.len() {
            let (Some(id), Some(len)) = (u16_at(b, at), u16_at(b, at + 2)) else {
                return Err(MessageError::new(MessageErrorKind::AvPairTruncated, at));
            };
            if id == av_id::EOL {
                break;
            }
            let start = at + 4;
            let end = start + usize::from(len);
            let value = b
                .get(start..end)
                .ok_or(MessageError::new(MessageErrorKind::AvPairTruncated, at))?;
            let fixed = match id {
                av_id::FLAGS => Some(4),
                av_id::TIMESTAMP => Some(8),
                av_id::CHANNEL_BINDINGS => Some(16),
                _ => None,
            };
            if fixed.is_some_and(|n| n != len) {
                return Err(MessageError::new(
                    MessageErrorKind::AvPairLength { id, len },
                    at,
                ));
            }
            pairs.push(AvPair {
                id,
                value: value.to_vec(),
            });
            at = end;
        }
        Ok(AvPairs(pairs))
    }

    /// Encodes the pairs followed by `MsvAvEOL`. Values longer than 65535 bytes are cut to
    /// that length; pairs with `AvId` `MsvAvEOL` are skipped.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for p in &self.0 {
            if p.id == av_id::EOL {
                continue;
            }
            let value = p.value.get(..usize::from(u16::MAX)).unwrap_or(&p.value);
            out.extend_from_slice(&p.id.to_le_bytes());
            out.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_le_bytes());
            out.extend_from_slice(value);
        }
        out.extend_from_slice(&[0, 0, 0, 0]);
        out
    }

    /// The value of the first pair with this `AvId`.
    pub fn get(&self, id: u16) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.value.as_slice())
    }

    /// The value of a UTF-16LE string pair, decoded (lossily).
    pub fn get_string(&self, id: u16) -> Option<String> {
        let v = self.get(id)?;
        let units = v.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
        Some(
            char::decode_utf16(units)
                .map(|c| c.unwrap_or('\u{fffd}'))
                .collect(),
        )
    }

    /// `MsvAvFlags`, or 0 when absent.
    pub fn flags(&self) -> u32 {
        self.get(av_id::FLAGS)
            .and_then(|v| u32_at(v, 0))
            .unwrap_or(0)
    }

    /// `MsvAvTimestamp`.
    pub fn timestamp(&self) -> Option<u64> {
        self.get(av_id::TIMESTAMP).and_then(|v| u64_at(v, 0))
    }

    /// `MsvAvChannelBindings`.
    pub fn channel_bindings(&self) -> Option<[u8; 16]> {
        self.get(av_id::CHANNEL_BINDINGS)?.try_into().ok()
    }

    /// Appends a UTF-16LE string pair.
    pub fn push_string(&mut self, id: u16, value: &str) {
        self.0.push(AvPair {
            id,
            value: utf16le(value),
        });
    }
}

/// CHALLENGE_MESSAGE (MS-NLMP §2.2.1.2), the server's answer to NEGOTIATE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChallengeMessage {
    /// The negotiated flags.
    pub flags: NegotiateFlags,
    /// `TargetName` as sent (UTF-16LE or OEM per `flags`), empty when not requested.
    pub target_name: Vec<u8>,
    /// The 8-byte server challenge (a fresh random value per exchange).
    pub server_challenge: [u8; 8],
    /// `TargetInfo`, present when `flags` has `TARGET_INFO`.
    pub target_info: AvPairs,
    /// The server's version, written when present.
    pub version: Option<Version>,
}

impl ChallengeMessage {
    /// Encodes the message. `TARGET_INFO` and `VERSION` are set from the presence of the
    /// target info and the version, so the result parses back to the same value.
    pub fn encode(&self) -> Vec<u8> {
        let mut flags = self.flags;
        for (present, flag) in [
            (!self.target_info.0.is_empty(), NegotiateFlags::TARGET_INFO),
            (self.version.is_some(), NegotiateFlags::VERSION),
        ] {
            flags.0 = if present {
                flags.0 | flag.0
            } else {
                flags.0 & !flag.0
            };
        }
        let mut w = PayloadWriter::new(CHALLENGE_HEADER + 8);
        w.put(0, SIGNATURE);
        w.put(8, &2u32.to_le_bytes());
        w.put(20, &flags.0.to_le_bytes());
        w.put(24, &self.server_challenge);
        if let Some(v) = &self.version {
            let mut b = Vec::with_capacity(8);
            v.encode(&mut b);
            w.put(CHALLENGE_HEADER, &b);
        }
        w.field(12, &self.target_name);
        if flags.contains(NegotiateFlags::TARGET_INFO) {
            w.field(40, &self.target_info.encode());
        } else {
            w.field(40, &[]);
        }
        w.out
    }

    /// Parses a CHALLENGE_MESSAGE (for clients and tests).
    pub fn parse(msg: &[u8], max_len: usize) -> Result<ChallengeMessage, MessageError> {
        check_header(msg, 2, CHALLENGE_HEADER, max_len)?;
        let truncated = || MessageError::new(MessageErrorKind::Truncated, msg.len());
        let flags = NegotiateFlags(u32_at(msg, 20).ok_or_else(truncated)?);
        let mut server_challenge = [0u8; 8];
        server_challenge.copy_from_slice(msg.get(24..32).ok_or_else(truncated)?);
        let name = FieldRef::read(msg, 12, Field::TargetName).ok_or_else(truncated)?;
        let info = FieldRef::read(msg, 40, Field::TargetInfo).ok_or_else(truncated)?;
        let mut refs = vec![name];
        if flags.contains(NegotiateFlags::TARGET_INFO) {
            refs.push(info);
        }
        let header_end = header_end(msg, &refs, CHALLENGE_HEADER, &[8]);
        check_overlaps(&refs)?;
        let version = (header_end >= CHALLENGE_HEADER + 8
            && flags.contains(NegotiateFlags::VERSION))
        .then(|| msg.get(CHALLENGE_HEADER..).and_then(Version::parse))
        .flatten();
        let target_name = name.resolve(msg, header_end)?.to_vec();
        let target_info = if flags.contains(NegotiateFlags::TARGET_INFO) {
            let bytes = info.resolve(msg, header_end)?;
            AvPairs::parse(bytes)
                .map_err(|e| MessageError::new(e.kind, info.offset.saturating_add(e.offset)))?
        } else {
            AvPairs::default()
        };
        Ok(ChallengeMessage {
            flags,
            target_name,
            server_challenge,
            target_info,
            version,
        })
    }
}

/// Where the fixed header ends: the smallest offset of a non-empty payload field (or the
/// message length), rounded down to the longest optional-tail layout that fits. Real
/// clients omit VERSION and MIC without saying so in the flags (curl, impacket), so the
/// offsets are the only reliable guide.
fn header_end(msg: &[u8], refs: &[FieldRef], base: usize, optional: &[usize]) -> usize {
    let payload_start = refs
        .iter()
        .filter(|f| f.len > 0)
        .map(|f| f.offset)
        .min()
        .unwrap_or(msg.len())
        .min(msg.len());
    let mut end = base;
    for extra in optional {
        let next = end + extra;
        if payload_start >= next {
            end = next;
        } else {
            break;
        }
    }
    end
}

/// AUTHENTICATE_MESSAGE (MS-NLMP §2.2.1.3), the client's proof.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthenticateMessage {
    /// The flags the client settled on.
    pub flags: NegotiateFlags,
    /// `LmChallengeResponse`.
    pub lm_response: Vec<u8>,
    /// `NtChallengeResponse`: 24 bytes for NTLMv1, longer for NTLMv2, empty for anonymous.
    pub nt_response: Vec<u8>,
    /// The user's domain as sent (may be empty).
    pub domain: String,
    /// The user name as sent.
    pub user: String,
    /// The client's workstation name.
    pub workstation: String,
    /// `EncryptedRandomSessionKey` (16 bytes when the client sent one).
    pub encrypted_session_key: Vec<u8>,
    /// The client's version, when the header carries one.
    pub version: Option<Version>,
    /// The MIC, when the header carries one.
    pub mic: Option<[u8; 16]>,
}

impl fmt::Debug for AuthenticateMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Responses and keys are offline-crackable material: show sizes only.
        f.debug_struct("AuthenticateMessage")
            .field("flags", &self.flags)
            .field("lm_response_len", &self.lm_response.len())
            .field("nt_response_len", &self.nt_response.len())
            .field("domain", &self.domain)
            .field("user", &self.user)
            .field("workstation", &self.workstation)
            .field(
                "encrypted_session_key_len",
                &self.encrypted_session_key.len(),
            )
            .field("version", &self.version)
            .field("mic", &self.mic.map(|_| ".."))
            .finish()
    }
}

impl AuthenticateMessage {
    /// Parses an AUTHENTICATE_MESSAGE of at most `max_len` bytes.
    ///
    /// Whether VERSION and MIC are present is decided from the smallest payload offset, not
    /// from the flags (curl and impacket send a 64-byte header without either). Strings are
    /// UTF-16LE when the message's flags have `UNICODE`, else OEM (read as UTF-8). Every
    /// non-empty field must lie inside the message, after the header, and apart from the
    /// others.
    pub fn parse(msg: &[u8], max_len: usize) -> Result<AuthenticateMessage, MessageError> {
        check_header(msg, 3, AUTHENTICATE_HEADER, max_len)?;
        let truncated = || MessageError::new(MessageErrorKind::Truncated, msg.len());
        let read = |at, field| FieldRef::read(msg, at, field).ok_or_else(truncated);
        let refs = [
            read(12, Field::LmChallengeResponse)?,
            read(20, Field::NtChallengeResponse)?,
            read(28, Field::DomainName)?,
            read(36, Field::UserName)?,
            read(44, Field::Workstation)?,
            read(52, Field::EncryptedRandomSessionKey)?,
        ];
        let flags = NegotiateFlags(u32_at(msg, 60).ok_or_else(truncated)?);
        let header_end = header_end(msg, &refs, AUTHENTICATE_HEADER, &[8, 16]);
        for r in &refs {
            r.resolve(msg, header_end)?;
        }
        check_overlaps(&refs)?;
        let bytes = |i: usize| -> Result<&[u8], MessageError> {
            refs.get(i)
                .map_or(Ok(&[][..]), |r| r.resolve(msg, header_end))
        };
        let unicode = flags.contains(NegotiateFlags::UNICODE);
        let string = |i: usize| -> Result<String, MessageError> {
            let r = refs.get(i).ok_or_else(truncated)?;
            decode_string(bytes(i)?, unicode, r.field, r.at)
        };
        let version = (header_end >= AUTHENTICATE_HEADER + 8)
            .then(|| msg.get(AUTHENTICATE_HEADER..).and_then(Version::parse))
            .flatten();
        let mic = (header_end >= MIC_OFFSET + 16)
            .then(|| {
                msg.get(MIC_OFFSET..MIC_OFFSET + 16)
                    .and_then(|m| m.try_into().ok())
            })
            .flatten();
        let encrypted_session_key = bytes(5)?.to_vec();
        if !encrypted_session_key.is_empty() && encrypted_session_key.len() != 16 {
            return Err(MessageError::new(MessageErrorKind::SessionKeyLength, 52));
        }
        Ok(AuthenticateMessage {
            flags,
            lm_response: bytes(0)?.to_vec(),
            nt_response: bytes(1)?.to_vec(),
            domain: string(2)?,
            user: string(3)?,
            workstation: string(4)?,
            encrypted_session_key,
            version,
            mic,
        })
    }

    /// Encodes the message (for clients and tests). VERSION is written when present; the
    /// MIC field is written when `mic` is present (so a MIC can be computed over the
    /// message with a zero MIC and then filled in). Strings are encoded per `UNICODE`.
    pub fn encode(&self) -> Vec<u8> {
        let header = if self.mic.is_some() {
            MIC_OFFSET + 16
        } else if self.version.is_some() {
            AUTHENTICATE_HEADER + 8
        } else {
            AUTHENTICATE_HEADER
        };
        let mut flags = self.flags;
        if self.version.is_some() {
            flags.0 |= NegotiateFlags::VERSION.0;
        }
        let unicode = flags.contains(NegotiateFlags::UNICODE);
        let mut w = PayloadWriter::new(header);
        w.put(0, SIGNATURE);
        w.put(8, &3u32.to_le_bytes());
        w.put(60, &flags.0.to_le_bytes());
        if let Some(v) = &self.version {
            let mut b = Vec::with_capacity(8);
            v.encode(&mut b);
            w.put(AUTHENTICATE_HEADER, &b);
        }
        if let Some(mic) = &self.mic {
            w.put(MIC_OFFSET, mic);
        }
        // Windows' order: domain, user, workstation, LM, NT, session key.
        w.field(28, &encode_string(&self.domain, unicode));
        w.field(36, &encode_string(&self.user, unicode));
        w.field(44, &encode_string(&self.workstation, unicode));
        w.field(12, &self.lm_response);
        w.field(20, &self.nt_response);
        w.field(52, &self.encrypted_session_key);
        w.out
    }
}

/// The parts of an NTLMv2 response (MS-NLMP §2.2.2.8): `NTProofStr` and the client blob
/// (`NTLMv2_CLIENT_CHALLENGE`, kept exactly as received, because it is what was hashed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Ntlmv2Response<'a> {
    pub(crate) proof: &'a [u8],
    pub(crate) blob: &'a [u8],
    pub(crate) timestamp: u64,
    pub(crate) client_challenge: [u8; 8],
    pub(crate) av_pairs: AvPairs,
}

impl<'a> Ntlmv2Response<'a> {
    /// Offset of the AV pairs in the blob.
    const AV_PAIRS_AT: usize = 28;

    pub(crate) fn parse(nt: &'a [u8]) -> Result<Ntlmv2Response<'a>, MessageErrorKind> {
        let bad = MessageErrorKind::BadNtlmv2Response;
        let (proof, blob) = (nt.get(..16).ok_or(bad)?, nt.get(16..).ok_or(bad)?);
        // RespType and HiRespType must be 1; the rest of the fixed part is reserved.
        if blob.len() < Self::AV_PAIRS_AT || blob.first() != Some(&1) {
            return Err(bad);
        }
        let timestamp = u64_at(blob, 8).ok_or(bad)?;
        let client_challenge = blob
            .get(16..24)
            .and_then(|c| c.try_into().ok())
            .ok_or(bad)?;
        let av_pairs = AvPairs::parse(blob.get(Self::AV_PAIRS_AT..).unwrap_or_default())
            .map_err(|e| e.kind)?;
        Ok(Ntlmv2Response {
            proof,
            blob,
            timestamp,
            client_challenge,
            av_pairs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> Vec<u8> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.decode(s).unwrap()
    }

    #[test]
    fn curl_negotiate() {
        let msg = b64("TlRMTVNTUAABAAAABoIIAAAAAAAAAAAAAAAAAAAAAAA=");
        assert_eq!(msg.len(), 32);
        let n = NegotiateMessage::parse(&msg, 1024).unwrap();
        assert_eq!(n.flags, NegotiateFlags(0x0008_8206));
        assert!(n.flags.contains(NegotiateFlags::OEM));
        assert!(!n.flags.contains(NegotiateFlags::UNICODE));
        assert_eq!((n.domain, n.workstation, n.version), (None, None, None));
    }

    #[test]
    fn negotiate_with_oem_domain_and_workstation() {
        let n = NegotiateMessage {
            flags: NegotiateFlags::UNICODE | NegotiateFlags::NTLM,
            domain: Some(b"DOMAIN".to_vec()),
            workstation: Some(b"WS".to_vec()),
            version: Some(Version::WINDOWS_2008_R2),
        };
        let bytes = n.encode();
        let back = NegotiateMessage::parse(&bytes, 1024).unwrap();
        assert_eq!(back.domain.as_deref(), Some(&b"DOMAIN"[..]));
        assert_eq!(back.workstation.as_deref(), Some(&b"WS"[..]));
        assert_eq!(back.version, Some(Version::WINDOWS_2008_R2));
        assert_eq!(back.encode(), bytes);
    }

    #[test]
    fn negotiate_errors() {
        let good = b64("TlRMTVNTUAABAAAABoIIAAAAAAAAAAAAAAAAAAAAAAA=");
        let kind = |m: &[u8]| NegotiateMessage::parse(m, 64).unwrap_err().kind;
        assert_eq!(kind(b"NTLMSSQ\0\x01\0\0\0"), MessageErrorKind::BadSignature);
        assert_eq!(kind(b"NTLM"), MessageErrorKind::Truncated);
        assert_eq!(kind(&good[..20]), MessageErrorKind::Truncated);
        let mut wrong = good.clone();
        wrong[8] = 3;
        assert_eq!(
            kind(&wrong),
            MessageErrorKind::WrongMessageType {
                expected: 1,
                found: 3
            }
        );
        assert_eq!(kind(&[0u8; 65]), MessageErrorKind::TooLong { max: 64 });
        // Domain supplied, pointing past the end.
        let mut out = good.clone();
        out[13] |= 0x10;
        out[16] = 4;
        out[20] = 40;
        assert_eq!(kind(&out), MessageErrorKind::OutOfBounds(Field::DomainName));
    }

    #[test]
    fn av_pairs_round_trip_and_errors() {
        let mut pairs = AvPairs::default();
        pairs.push_string(av_id::NB_DOMAIN_NAME, "Domain");
        pairs.0.push(AvPair {
            id: av_id::TIMESTAMP,
            value: 7u64.to_le_bytes().to_vec(),
        });
        let enc = pairs.encode();
        assert_eq!(AvPairs::parse(&enc).unwrap(), pairs);
        assert_eq!(pairs.timestamp(), Some(7));
        assert_eq!(
            pairs.get_string(av_id::NB_DOMAIN_NAME).as_deref(),
            Some("Domain")
        );
        // Trailing bytes after EOL are ignored; a list without EOL ends at its end.
        let mut extra = enc.clone();
        extra.extend_from_slice(&[9; 8]);
        assert_eq!(AvPairs::parse(&extra).unwrap(), pairs);
        assert_eq!(AvPairs::parse(&enc[..enc.len() - 4]).unwrap(), pairs);
        assert_eq!(
            AvPairs::parse(&enc[..5]).unwrap_err().kind,
            MessageErrorKind::AvPairTruncated
        );
        assert_eq!(
            AvPairs::parse(&[7, 0, 4, 0, 0, 0, 0, 0]).unwrap_err().kind,
            MessageErrorKind::AvPairLength { id: 7, len: 4 }
        );
    }
}
