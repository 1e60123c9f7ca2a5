//! Bodies of the connection-oriented PDUs (C706 §12.6.4, MS-RPCE §2.2.2) and the auth
//! verifier (C706 §13.2.6.1, MS-RPCE §2.2.2.11).

use bytes::{Bytes, BytesMut};

use super::header::{HEADER_LEN, PacketType, PduHeader, PfcFlags};
use super::wire::{Reader, Writer};
use super::{PduError, SEC_TRAILER_LEN, Uuid};
use crate::rts::RtsPdu;

/// One decoded connection-oriented PDU (a single fragment; see [`super::Reassembler`] for
/// whole calls). [`super::DecodedPdu`] pairs it with its header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pdu {
    /// `request` (PTYPE 0), C706 §12.6.4.9.
    Request(Request),
    /// `response` (PTYPE 2), C706 §12.6.4.10.
    Response(Response),
    /// `fault` (PTYPE 3), C706 §12.6.4.7, MS-RPCE §2.2.2.
    Fault(Fault),
    /// `bind` (PTYPE 11), C706 §12.6.4.3.
    Bind(Bind),
    /// `bind_ack` (PTYPE 12), C706 §12.6.4.4.
    BindAck(BindAck),
    /// `bind_nak` (PTYPE 13), C706 §12.6.4.5.
    BindNak(BindNak),
    /// `alter_context` (PTYPE 14), C706 §12.6.4.1: the same body as `bind`.
    AlterContext(Bind),
    /// `alter_context_resp` (PTYPE 15), C706 §12.6.4.2: the same body as `bind_ack`.
    AlterContextResp(BindAck),
    /// `rpc_auth_3` (PTYPE 16), MS-RPCE §2.2.2.10.
    Auth3(Auth3),
    /// `shutdown` (PTYPE 17), C706 §12.6.4.11: no body.
    Shutdown,
    /// `co_cancel` (PTYPE 18), C706 §12.6.4.6.
    CoCancel(CoCancel),
    /// `orphaned` (PTYPE 19), C706 §12.6.4.8.
    Orphaned(Orphaned),
    /// `rts` (PTYPE 20), MS-RPCH §2.2.3.6.
    Rts(RtsPdu),
}

/// `auth_type` (MS-RPCE §2.2.1.1.7). Values this crate has no name for are kept as numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AuthType(pub u8);

impl AuthType {
    /// `RPC_C_AUTHN_NONE`.
    pub const NONE: AuthType = AuthType(0x00);
    /// `RPC_C_AUTHN_GSS_NEGOTIATE` (SPNEGO).
    pub const SPNEGO: AuthType = AuthType(0x09);
    /// `RPC_C_AUTHN_WINNT` (NTLM).
    pub const NTLM: AuthType = AuthType(0x0A);
    /// `RPC_C_AUTHN_GSS_SCHANNEL`.
    pub const SCHANNEL: AuthType = AuthType(0x0E);
    /// `RPC_C_AUTHN_GSS_KERBEROS`.
    pub const KERBEROS: AuthType = AuthType(0x10);
    /// `RPC_C_AUTHN_NETLOGON`.
    pub const NETLOGON: AuthType = AuthType(0x44);
    /// `RPC_C_AUTHN_DEFAULT`.
    pub const DEFAULT: AuthType = AuthType(0xFF);
}

/// `auth_level` (MS-RPCE §2.2.1.1.8). Unknown values are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AuthLevel(pub u8);

impl AuthLevel {
    /// `RPC_C_AUTHN_LEVEL_DEFAULT`.
    pub const DEFAULT: AuthLevel = AuthLevel(0);
    /// `RPC_C_AUTHN_LEVEL_NONE`.
    pub const NONE: AuthLevel = AuthLevel(1);
    /// `RPC_C_AUTHN_LEVEL_CONNECT`.
    pub const CONNECT: AuthLevel = AuthLevel(2);
    /// `RPC_C_AUTHN_LEVEL_CALL`.
    pub const CALL: AuthLevel = AuthLevel(3);
    /// `RPC_C_AUTHN_LEVEL_PKT`.
    pub const PKT: AuthLevel = AuthLevel(4);
    /// `RPC_C_AUTHN_LEVEL_PKT_INTEGRITY`.
    pub const PKT_INTEGRITY: AuthLevel = AuthLevel(5);
    /// `RPC_C_AUTHN_LEVEL_PKT_PRIVACY`.
    pub const PKT_PRIVACY: AuthLevel = AuthLevel(6);
}

/// The `sec_trailer` (C706 §13.2.6.1, MS-RPCE §2.2.2.11), 8 bytes before the auth verifier's
/// credentials, at `frag_length − auth_length − 8`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SecTrailer {
    /// `auth_type`.
    pub auth_type: AuthType,
    /// `auth_level`.
    pub auth_level: AuthLevel,
    /// `auth_pad_length`: zero bytes between the body (stub data) and this trailer. The
    /// encoder writes this many zero bytes; MS-RPCE §2.2.2.11 requires the trailer to be
    /// 4-byte aligned (Windows pads stub data to 16 bytes for sealing).
    pub auth_pad_length: u8,
    /// `auth_reserved`.
    pub auth_reserved: u8,
    /// `auth_context_id`.
    pub auth_context_id: u32,
}

impl SecTrailer {
    /// The `auth_pad_length` that puts the `sec_trailer` of a PDU whose body ends `body_end`
    /// bytes after the start of the PDU (header included) on an `align`-byte boundary.
    /// MS-RPCE §2.2.2.11 requires 4; Windows pads stub data to 16 when sealing. An `align`
    /// of 0 or above 256 is treated as 1 (no padding).
    pub const fn pad_for(body_end: usize, align: usize) -> u8 {
        if align == 0 || align > 256 {
            return 0;
        }
        ((align - body_end % align) % align) as u8
    }
}

/// An auth verifier: the `sec_trailer` and the security provider's token (`auth_value`),
/// a zero-copy slice of the PDU. The credentials are never empty on the wire (an
/// `auth_length` of 0 means no verifier), so encoding an empty one is an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthVerifier {
    /// The `sec_trailer`.
    pub trailer: SecTrailer,
    /// The credentials (`auth_length` bytes): an NTLM or SPNEGO token, or a signature.
    pub credentials: Bytes,
}

/// A presentation syntax identifier `p_syntax_id_t` (C706 §12.6.3.1): an interface or
/// transfer syntax UUID and a 32-bit version whose low 16 bits are the major version and high
/// 16 bits the minor version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SyntaxId {
    /// `if_uuid`.
    pub uuid: Uuid,
    /// `if_version`.
    pub version: u32,
}

impl SyntaxId {
    /// NDR 2.0 transfer syntax `8a885d04-1ceb-11c9-9fe8-08002b104860` version 2 (C706 §14).
    pub const NDR: SyntaxId = SyntaxId {
        uuid: Uuid::from_fields(
            0x8a88_5d04,
            0x1ceb,
            0x11c9,
            [0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10, 0x48, 0x60],
        ),
        version: 2,
    };
    /// NDR64 transfer syntax `71710533-beba-4937-8319-b5dbef9ccc36` version 1 (MS-RPCE §2.2.5).
    pub const NDR64: SyntaxId = SyntaxId {
        uuid: Uuid::from_fields(
            0x7171_0533,
            0xbeba,
            0x4937,
            [0x83, 0x19, 0xb5, 0xdb, 0xef, 0x9c, 0xcc, 0x36],
        ),
        version: 1,
    };
    /// The all-zero syntax used in results that carry no transfer syntax.
    pub const NULL: SyntaxId = SyntaxId {
        uuid: Uuid::NIL,
        version: 0,
    };

    /// A syntax with `major.minor` version.
    pub const fn new(uuid: Uuid, major: u16, minor: u16) -> Self {
        Self {
            uuid,
            version: (minor as u32) << 16 | major as u32,
        }
    }

    /// The major version (low 16 bits).
    pub const fn major(&self) -> u16 {
        self.version as u16
    }

    /// The minor version (high 16 bits).
    pub const fn minor(&self) -> u16 {
        (self.version >> 16) as u16
    }

    /// The bind-time feature negotiation syntax `6cb71c2c-9812-4540-xxxx-xxxxxxxxxxxx`
    /// version 1 (MS-RPCE §3.3.1.5.3): the last 8 bytes carry the requested
    /// [`BindTimeFeatures`] in the first byte, the rest zero.
    pub const fn bind_time_feature_negotiation(features: BindTimeFeatures) -> Self {
        Self {
            uuid: Uuid::from_fields(
                0x6cb7_1c2c,
                0x9812,
                0x4540,
                [features.0 as u8, 0, 0, 0, 0, 0, 0, 0],
            ),
            version: 1,
        }
    }

    /// If this is a bind-time feature negotiation syntax, the features it requests.
    pub fn as_bind_time_features(&self) -> Option<BindTimeFeatures> {
        let (a, b, c, d) = self.uuid.to_fields();
        (a == 0x6cb7_1c2c && b == 0x9812 && c == 0x4540)
            .then(|| BindTimeFeatures(u16::from_le_bytes([d[0], d[1]])))
    }
}

/// Bind-time feature bits (MS-RPCE §2.2.2.14), offered in the negotiation syntax UUID and
/// accepted in the `reason` field of a `negotiate_ack` result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct BindTimeFeatures(pub u16);

impl BindTimeFeatures {
    /// Security context multiplexing supported.
    pub const SECURITY_CONTEXT_MULTIPLEXING: BindTimeFeatures = BindTimeFeatures(0x0001);
    /// Keep the connection open on orphaned calls.
    pub const KEEP_CONNECTION_ON_ORPHAN: BindTimeFeatures = BindTimeFeatures(0x0002);
}

/// One presentation context element `p_cont_elem_t` (C706 §12.6.3.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextElement {
    /// `p_cont_id`.
    pub context_id: u16,
    /// The interface.
    pub abstract_syntax: SyntaxId,
    /// Proposed transfer syntaxes, at least one on the wire is customary; at most 255.
    pub transfer_syntaxes: Vec<SyntaxId>,
}

/// `bind` and `alter_context` bodies (C706 §12.6.4.3, §12.6.4.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bind {
    /// `max_xmit_frag`: the largest fragment the client will send (C706 §12.6.3.1,
    /// MS-RPCE §3.3.1.5.3: at least 1432; Windows offers 5840 on TCP).
    pub max_xmit_frag: u16,
    /// `max_recv_frag`: the largest fragment the client can receive.
    pub max_recv_frag: u16,
    /// `assoc_group_id`: 0 for a new association group.
    pub assoc_group_id: u32,
    /// The presentation context list (at most 255 elements).
    pub contexts: Vec<ContextElement>,
    /// The auth verifier, if any.
    pub auth: Option<AuthVerifier>,
}

/// `p_cont_def_result_t` (C706 §12.6.3.1, MS-RPCE §2.2.2.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ContextResultCode(pub u16);

impl ContextResultCode {
    /// `acceptance`.
    pub const ACCEPTANCE: ContextResultCode = ContextResultCode(0);
    /// `user_rejection`.
    pub const USER_REJECTION: ContextResultCode = ContextResultCode(1);
    /// `provider_rejection`.
    pub const PROVIDER_REJECTION: ContextResultCode = ContextResultCode(2);
    /// `negotiate_ack` (MS-RPCE §2.2.2.4): answer to a bind-time feature negotiation.
    pub const NEGOTIATE_ACK: ContextResultCode = ContextResultCode(3);
}

/// `p_provider_reason_t` (C706 §12.6.3.1). For a `negotiate_ack` result the same 16 bits are
/// the accepted [`BindTimeFeatures`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProviderReason(pub u16);

impl ProviderReason {
    /// `reason_not_specified`.
    pub const NOT_SPECIFIED: ProviderReason = ProviderReason(0);
    /// `abstract_syntax_not_supported`.
    pub const ABSTRACT_SYNTAX_NOT_SUPPORTED: ProviderReason = ProviderReason(1);
    /// `proposed_transfer_syntaxes_not_supported`.
    pub const TRANSFER_SYNTAXES_NOT_SUPPORTED: ProviderReason = ProviderReason(2);
    /// `local_limit_exceeded`.
    pub const LOCAL_LIMIT_EXCEEDED: ProviderReason = ProviderReason(3);
}

/// One `p_result_t` (C706 §12.6.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ContextResult {
    /// `result`.
    pub result: ContextResultCode,
    /// `reason`.
    pub reason: ProviderReason,
    /// The accepted transfer syntax ([`SyntaxId::NULL`] when rejected).
    pub transfer_syntax: SyntaxId,
}

impl ContextResult {
    /// An acceptance of `transfer_syntax`.
    pub const fn accept(transfer_syntax: SyntaxId) -> Self {
        Self {
            result: ContextResultCode::ACCEPTANCE,
            reason: ProviderReason::NOT_SPECIFIED,
            transfer_syntax,
        }
    }

    /// A provider rejection for `reason`.
    pub const fn reject(reason: ProviderReason) -> Self {
        Self {
            result: ContextResultCode::PROVIDER_REJECTION,
            reason,
            transfer_syntax: SyntaxId::NULL,
        }
    }

    /// A `negotiate_ack` accepting `features` (MS-RPCE §3.3.1.5.3).
    pub const fn negotiate_ack(features: BindTimeFeatures) -> Self {
        Self {
            result: ContextResultCode::NEGOTIATE_ACK,
            reason: ProviderReason(features.0),
            transfer_syntax: SyntaxId::NULL,
        }
    }
}

/// `bind_ack` and `alter_context_resp` bodies (C706 §12.6.4.4, §12.6.4.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindAck {
    /// `max_xmit_frag` chosen by the server.
    pub max_xmit_frag: u16,
    /// `max_recv_frag` chosen by the server.
    pub max_recv_frag: u16,
    /// `assoc_group_id`.
    pub assoc_group_id: u32,
    /// `sec_addr.port_spec` as on the wire, its terminating NUL included when present
    /// (e.g. `b"49153\0"` or `b"\\PIPE\\lsass\0"`); empty for a zero-length address, which is
    /// what `alter_context_resp` usually carries. At most 65535 bytes. The body is padded to a
    /// 4-byte boundary after it (C706 §12.6.4.4 `pad2`).
    pub secondary_address: Bytes,
    /// The result list, one per proposed context.
    pub results: Vec<ContextResult>,
    /// The auth verifier, if any.
    pub auth: Option<AuthVerifier>,
}

impl BindAck {
    /// The secondary address without its terminating NUL.
    pub fn secondary_address_str(&self) -> &[u8] {
        self.secondary_address
            .strip_suffix(b"\0")
            .unwrap_or(&self.secondary_address)
    }
}

/// `p_reject_reason_t` of a `bind_nak` (C706 §12.6.3.1, MS-RPCE §2.2.2.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RejectReason(pub u16);

impl RejectReason {
    /// `reason_not_specified`.
    pub const NOT_SPECIFIED: RejectReason = RejectReason(0);
    /// `temporary_congestion`.
    pub const TEMPORARY_CONGESTION: RejectReason = RejectReason(1);
    /// `local_limit_exceeded`.
    pub const LOCAL_LIMIT_EXCEEDED: RejectReason = RejectReason(2);
    /// `called_paddr_unknown`.
    pub const CALLED_PADDR_UNKNOWN: RejectReason = RejectReason(3);
    /// `protocol_version_not_supported`.
    pub const PROTOCOL_VERSION_NOT_SUPPORTED: RejectReason = RejectReason(4);
    /// `default_context_not_supported`.
    pub const DEFAULT_CONTEXT_NOT_SUPPORTED: RejectReason = RejectReason(5);
    /// `user_data_not_readable`.
    pub const USER_DATA_NOT_READABLE: RejectReason = RejectReason(6);
    /// `no_psap_available`.
    pub const NO_PSAP_AVAILABLE: RejectReason = RejectReason(7);
    /// `authentication_type_not_recognized` (MS-RPCE).
    pub const AUTHENTICATION_TYPE_NOT_RECOGNIZED: RejectReason = RejectReason(8);
    /// `invalid_checksum` (MS-RPCE).
    pub const INVALID_CHECKSUM: RejectReason = RejectReason(9);
}

/// `bind_nak` body (C706 §12.6.4.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindNak {
    /// `provider_reject_reason`.
    pub reject_reason: RejectReason,
    /// `versions`: the supported (major, minor) protocol versions (at most 255).
    pub versions: Vec<(u8, u8)>,
    /// Bytes after the version list, kept verbatim (MS-RPCE §2.2.2 allows a signature and
    /// extended error information there).
    pub trailing: Bytes,
}

/// `request` body (C706 §12.6.4.9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// `alloc_hint`: the total stub size of the call, if known (0 otherwise).
    pub alloc_hint: u32,
    /// `p_cont_id`.
    pub context_id: u16,
    /// `opnum`.
    pub opnum: u16,
    /// The object UUID; present exactly when `PFC_OBJECT_UUID` is set (the encoder sets the
    /// flag from this field).
    pub object: Option<Uuid>,
    /// Stub data of this fragment.
    pub stub_data: Bytes,
    /// The auth verifier, if any.
    pub auth: Option<AuthVerifier>,
}

/// `response` body (C706 §12.6.4.10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// `alloc_hint`.
    pub alloc_hint: u32,
    /// `p_cont_id`.
    pub context_id: u16,
    /// `cancel_count`.
    pub cancel_count: u8,
    /// `reserved`.
    pub reserved: u8,
    /// Stub data of this fragment.
    pub stub_data: Bytes,
    /// The auth verifier, if any.
    pub auth: Option<AuthVerifier>,
}

/// A fault status (C706 appendix E, MS-RPCE §2.2.2). Unknown values are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FaultStatus(pub u32);

impl FaultStatus {
    /// `nca_s_op_rng_error`: opnum out of range.
    pub const OP_RNG_ERROR: FaultStatus = FaultStatus(0x1C01_0002);
    /// `nca_s_unk_if`: unknown interface.
    pub const UNK_IF: FaultStatus = FaultStatus(0x1C01_0003);
    /// `nca_s_proto_error`: protocol error.
    pub const PROTO_ERROR: FaultStatus = FaultStatus(0x1C01_000B);
    /// `nca_s_server_too_busy`.
    pub const SERVER_TOO_BUSY: FaultStatus = FaultStatus(0x1C01_0014);
    /// `nca_s_unsupported_type`.
    pub const UNSUPPORTED_TYPE: FaultStatus = FaultStatus(0x1C01_0017);
    /// `nca_s_fault_context_mismatch`.
    pub const CONTEXT_MISMATCH: FaultStatus = FaultStatus(0x1C00_001A);
    /// `ERROR_ACCESS_DENIED` (MS-RPCE uses Win32 codes for access faults).
    pub const ACCESS_DENIED: FaultStatus = FaultStatus(0x0000_0005);
    /// `RPC_X_BAD_STUB_DATA` (1783).
    pub const BAD_STUB_DATA: FaultStatus = FaultStatus(0x0000_06F7);
    /// `RPC_S_CALL_CANCELLED` (1818).
    pub const CALL_CANCELLED: FaultStatus = FaultStatus(0x0000_071A);
    /// `RPC_S_SEC_PKG_ERROR` (1825), `nca_s_fault_sec_pkg_error` in MS-RPCE.
    pub const SEC_PKG_ERROR: FaultStatus = FaultStatus(0x0000_0721);
}

/// `fault` body (C706 §12.6.4.7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// `alloc_hint`.
    pub alloc_hint: u32,
    /// `p_cont_id`.
    pub context_id: u16,
    /// `cancel_count`.
    pub cancel_count: u8,
    /// The byte C706 reserves; MS-RPCE uses bit 0x01 to flag extended error information.
    pub flags: u8,
    /// `status`.
    pub status: FaultStatus,
    /// `reserved` (4 bytes after the status).
    pub reserved: u32,
    /// Stub data (extended error information, usually empty).
    pub stub_data: Bytes,
    /// The auth verifier, if any.
    pub auth: Option<AuthVerifier>,
}

/// `rpc_auth_3` body (MS-RPCE §2.2.2.10): 4 ignored bytes, then the auth verifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Auth3 {
    /// The 4 bytes before the trailer ("pad", ignored by receivers), kept for round trips.
    pub pad: [u8; 4],
    /// The auth verifier (an `rpc_auth_3` always carries one on the wire).
    pub auth: Option<AuthVerifier>,
}

/// `co_cancel` body (C706 §12.6.4.6): only an optional auth verifier.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CoCancel {
    /// The auth verifier, if any.
    pub auth: Option<AuthVerifier>,
}

/// `orphaned` body (C706 §12.6.4.8): only an optional auth verifier.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Orphaned {
    /// The auth verifier, if any.
    pub auth: Option<AuthVerifier>,
}

// ---------------------------------------------------------------- decoding

/// Splits off the auth verifier: returns the end of the body (before any auth padding) and
/// the verifier.
fn split_auth(
    header: &PduHeader,
    bytes: &Bytes,
) -> Result<(usize, Option<AuthVerifier>), PduError> {
    let len = usize::from(header.frag_length);
    if header.auth_length == 0 {
        return Ok((len, None));
    }
    // PduHeader::parse guarantees frag_length ≥ 16 + 8 + auth_length.
    let trailer_at = len - usize::from(header.auth_length) - SEC_TRAILER_LEN;
    let le = header.is_little_endian();
    let mut r = Reader::new(bytes, trailer_at, len, le);
    let trailer = SecTrailer {
        auth_type: AuthType(r.u8("sec_trailer")?),
        auth_level: AuthLevel(r.u8("sec_trailer")?),
        auth_pad_length: r.u8("sec_trailer")?,
        auth_reserved: r.u8("sec_trailer")?,
        auth_context_id: r.u32("sec_trailer")?,
    };
    let credentials = r.bytes(usize::from(header.auth_length), "auth_value")?;
    let pad = usize::from(trailer.auth_pad_length);
    if trailer_at < HEADER_LEN + pad {
        return Err(PduError::InvalidValue {
            what: "auth_pad_length (larger than the body, MS-RPCE §2.2.2.11)",
            value: pad as u64,
        });
    }
    Ok((
        trailer_at - pad,
        Some(AuthVerifier {
            trailer,
            credentials,
        }),
    ))
}

fn syntax(r: &mut Reader<'_>, what: &'static str) -> Result<SyntaxId, PduError> {
    Ok(SyntaxId {
        uuid: r.uuid(what)?,
        version: r.u32(what)?,
    })
}

fn no_trailing(r: &Reader<'_>, what: &'static str) -> Result<(), PduError> {
    match r.remaining() {
        0 => Ok(()),
        count => Err(PduError::TrailingBytes { what, count }),
    }
}

pub(super) fn decode_body(header: &PduHeader, bytes: &Bytes) -> Result<Pdu, PduError> {
    if header.packet_type == PacketType::Rts {
        return RtsPdu::decode_body(header, bytes).map(Pdu::Rts);
    }
    let le = header.is_little_endian();
    let (body_end, auth) = if matches!(
        header.packet_type,
        PacketType::Shutdown | PacketType::BindNak
    ) {
        // C706 §12.6.4.5, §12.6.4.11: these two carry no auth verifier.
        if header.auth_length != 0 {
            return Err(PduError::InvalidValue {
                what: "auth_length on a shutdown or bind_nak (C706 §12.6.4)",
                value: u64::from(header.auth_length),
            });
        }
        (usize::from(header.frag_length), None)
    } else {
        split_auth(header, bytes)?
    };
    let mut r = Reader::new(bytes, HEADER_LEN, body_end, le);
    Ok(match header.packet_type {
        PacketType::Request => {
            let alloc_hint = r.u32("request alloc_hint")?;
            let context_id = r.u16("request p_cont_id")?;
            let opnum = r.u16("request opnum")?;
            let object = if header.pfc_flags.contains(PfcFlags::OBJECT_UUID) {
                Some(r.uuid("request object")?)
            } else {
                None
            };
            let stub_data = r.bytes(r.remaining(), "stub data")?;
            Pdu::Request(Request {
                alloc_hint,
                context_id,
                opnum,
                object,
                stub_data,
                auth,
            })
        }
        PacketType::Response => {
            let alloc_hint = r.u32("response alloc_hint")?;
            let context_id = r.u16("response p_cont_id")?;
            let cancel_count = r.u8("response cancel_count")?;
            let reserved = r.u8("response reserved")?;
            let stub_data = r.bytes(r.remaining(), "stub data")?;
            Pdu::Response(Response {
                alloc_hint,
                context_id,
                cancel_count,
                reserved,
                stub_data,
                auth,
            })
        }
        PacketType::Fault => {
            let alloc_hint = r.u32("fault alloc_hint")?;
            let context_id = r.u16("fault p_cont_id")?;
            let cancel_count = r.u8("fault cancel_count")?;
            let flags = r.u8("fault flags")?;
            let status = FaultStatus(r.u32("fault status")?);
            let reserved = r.u32("fault reserved")?;
            let stub_data = r.bytes(r.remaining(), "stub data")?;
            Pdu::Fault(Fault {
                alloc_hint,
                context_id,
                cancel_count,
                flags,
                status,
                reserved,
                stub_data,
                auth,
            })
        }
        PacketType::Bind | PacketType::AlterContext => {
            let max_xmit_frag = r.u16("bind max_xmit_frag")?;
            let max_recv_frag = r.u16("bind max_recv_frag")?;
            let assoc_group_id = r.u32("bind assoc_group_id")?;
            let n = r.u8("p_context_elem n_context_elem")?;
            r.skip(3, "p_context_elem reserved")?;
            // 44 bytes is the smallest element, so `n` cannot allocate beyond the PDU.
            let mut contexts = Vec::with_capacity(usize::from(n).min(r.remaining() / 44));
            for _ in 0..n {
                let context_id = r.u16("p_cont_elem p_cont_id")?;
                let n_ts = r.u8("p_cont_elem n_transfer_syn")?;
                r.skip(1, "p_cont_elem reserved")?;
                let abstract_syntax = syntax(&mut r, "abstract_syntax")?;
                let mut transfer_syntaxes =
                    Vec::with_capacity(usize::from(n_ts).min(r.remaining() / 20));
                for _ in 0..n_ts {
                    transfer_syntaxes.push(syntax(&mut r, "transfer_syntaxes")?);
                }
                contexts.push(ContextElement {
                    context_id,
                    abstract_syntax,
                    transfer_syntaxes,
                });
            }
            no_trailing(&r, "bind")?;
            let bind = Bind {
                max_xmit_frag,
                max_recv_frag,
                assoc_group_id,
                contexts,
                auth,
            };
            if header.packet_type == PacketType::Bind {
                Pdu::Bind(bind)
            } else {
                Pdu::AlterContext(bind)
            }
        }
        PacketType::BindAck | PacketType::AlterContextResp => {
            let max_xmit_frag = r.u16("bind_ack max_xmit_frag")?;
            let max_recv_frag = r.u16("bind_ack max_recv_frag")?;
            let assoc_group_id = r.u32("bind_ack assoc_group_id")?;
            let addr_len = r.u16("sec_addr length")?;
            let secondary_address = r.bytes(usize::from(addr_len), "sec_addr port_spec")?;
            r.align(4, "bind_ack pad2")?;
            let n = r.u8("p_result_list n_results")?;
            r.skip(3, "p_result_list reserved")?;
            let mut results = Vec::with_capacity(usize::from(n).min(r.remaining() / 24));
            for _ in 0..n {
                results.push(ContextResult {
                    result: ContextResultCode(r.u16("p_result_t result")?),
                    reason: ProviderReason(r.u16("p_result_t reason")?),
                    transfer_syntax: syntax(&mut r, "p_result_t transfer_syntax")?,
                });
            }
            no_trailing(&r, "bind_ack")?;
            let ack = BindAck {
                max_xmit_frag,
                max_recv_frag,
                assoc_group_id,
                secondary_address,
                results,
                auth,
            };
            if header.packet_type == PacketType::BindAck {
                Pdu::BindAck(ack)
            } else {
                Pdu::AlterContextResp(ack)
            }
        }
        PacketType::BindNak => {
            let reject_reason = RejectReason(r.u16("bind_nak provider_reject_reason")?);
            let n = r.u8("bind_nak n_protocols")?;
            let mut versions = Vec::with_capacity(usize::from(n).min(r.remaining() / 2));
            for _ in 0..n {
                versions.push((r.u8("bind_nak version")?, r.u8("bind_nak version")?));
            }
            let trailing = r.bytes(r.remaining(), "bind_nak trailing")?;
            Pdu::BindNak(BindNak {
                reject_reason,
                versions,
                trailing,
            })
        }
        PacketType::Auth3 => {
            let mut pad = [0u8; 4];
            for b in &mut pad {
                *b = r.u8("rpc_auth_3 pad")?;
            }
            no_trailing(&r, "rpc_auth_3")?;
            Pdu::Auth3(Auth3 { pad, auth })
        }
        PacketType::Shutdown => {
            no_trailing(&r, "shutdown")?;
            Pdu::Shutdown
        }
        PacketType::CoCancel => {
            no_trailing(&r, "co_cancel")?;
            Pdu::CoCancel(CoCancel { auth })
        }
        PacketType::Orphaned => {
            no_trailing(&r, "orphaned")?;
            Pdu::Orphaned(Orphaned { auth })
        }
        PacketType::Rts => unreachable!("handled above"),
    })
}

// ---------------------------------------------------------------- encoding

fn write_syntax(w: &mut Writer<'_>, s: &SyntaxId) {
    w.uuid(&s.uuid);
    w.u32(s.version);
}

fn count_u8(n: usize, what: &'static str) -> Result<u8, PduError> {
    u8::try_from(n).map_err(|_| PduError::TooLargeToEncode { what })
}

pub(super) fn encode_pdu(
    pdu: &Pdu,
    header: &PduHeader,
    out: &mut BytesMut,
) -> Result<(), PduError> {
    if let Pdu::Rts(rts) = pdu {
        return rts.try_encode(out);
    }
    let start = out.len();
    let result = encode_non_rts(pdu, header, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn encode_non_rts(pdu: &Pdu, header: &PduHeader, out: &mut BytesMut) -> Result<(), PduError> {
    let mut h = *header;
    h.packet_type = pdu.packet_type();
    if let Pdu::Request(req) = pdu {
        h.pfc_flags = if req.object.is_some() {
            h.pfc_flags.with(PfcFlags::OBJECT_UUID)
        } else {
            h.pfc_flags.without(PfcFlags::OBJECT_UUID)
        };
    }
    let le = h.is_little_endian();
    let mut w = Writer::new(out, le);
    h.write(&mut w);
    let auth = match pdu {
        Pdu::Request(p) => {
            w.u32(p.alloc_hint);
            w.u16(p.context_id);
            w.u16(p.opnum);
            if let Some(o) = &p.object {
                w.uuid(o);
            }
            w.slice(&p.stub_data);
            p.auth.as_ref()
        }
        Pdu::Response(p) => {
            w.u32(p.alloc_hint);
            w.u16(p.context_id);
            w.u8(p.cancel_count);
            w.u8(p.reserved);
            w.slice(&p.stub_data);
            p.auth.as_ref()
        }
        Pdu::Fault(p) => {
            w.u32(p.alloc_hint);
            w.u16(p.context_id);
            w.u8(p.cancel_count);
            w.u8(p.flags);
            w.u32(p.status.0);
            w.u32(p.reserved);
            w.slice(&p.stub_data);
            p.auth.as_ref()
        }
        Pdu::Bind(p) | Pdu::AlterContext(p) => {
            w.u16(p.max_xmit_frag);
            w.u16(p.max_recv_frag);
            w.u32(p.assoc_group_id);
            w.u8(count_u8(p.contexts.len(), "presentation context list")?);
            w.zeros(3);
            for c in &p.contexts {
                w.u16(c.context_id);
                w.u8(count_u8(c.transfer_syntaxes.len(), "transfer syntax list")?);
                w.u8(0);
                write_syntax(&mut w, &c.abstract_syntax);
                for t in &c.transfer_syntaxes {
                    write_syntax(&mut w, t);
                }
            }
            p.auth.as_ref()
        }
        Pdu::BindAck(p) | Pdu::AlterContextResp(p) => {
            w.u16(p.max_xmit_frag);
            w.u16(p.max_recv_frag);
            w.u32(p.assoc_group_id);
            let len = u16::try_from(p.secondary_address.len()).map_err(|_| {
                PduError::TooLargeToEncode {
                    what: "secondary address",
                }
            })?;
            w.u16(len);
            w.slice(&p.secondary_address);
            w.align(4);
            w.u8(count_u8(p.results.len(), "result list")?);
            w.zeros(3);
            for res in &p.results {
                w.u16(res.result.0);
                w.u16(res.reason.0);
                write_syntax(&mut w, &res.transfer_syntax);
            }
            p.auth.as_ref()
        }
        Pdu::BindNak(p) => {
            w.u16(p.reject_reason.0);
            w.u8(count_u8(p.versions.len(), "bind_nak version list")?);
            for (major, minor) in &p.versions {
                w.u8(*major);
                w.u8(*minor);
            }
            w.slice(&p.trailing);
            None
        }
        Pdu::Auth3(p) => {
            w.slice(&p.pad);
            p.auth.as_ref()
        }
        Pdu::Shutdown => None,
        Pdu::CoCancel(p) => p.auth.as_ref(),
        Pdu::Orphaned(p) => p.auth.as_ref(),
        Pdu::Rts(_) => unreachable!("encoded by encode_pdu"),
    };
    let mut auth_length = 0u16;
    if let Some(a) = auth {
        if a.credentials.is_empty() {
            // auth_length 0 means "no verifier" (C706 §12.6.1), so an empty one cannot be sent.
            return Err(PduError::InvalidValue {
                what: "auth verifier with empty credentials",
                value: 0,
            });
        }
        auth_length =
            u16::try_from(a.credentials.len()).map_err(|_| PduError::TooLargeToEncode {
                what: "auth verifier",
            })?;
        w.zeros(usize::from(a.trailer.auth_pad_length));
        w.u8(a.trailer.auth_type.0);
        w.u8(a.trailer.auth_level.0);
        w.u8(a.trailer.auth_pad_length);
        w.u8(a.trailer.auth_reserved);
        w.u32(a.trailer.auth_context_id);
        w.slice(&a.credentials);
    }
    let frag_length =
        u16::try_from(w.offset()).map_err(|_| PduError::TooLargeToEncode { what: "PDU" })?;
    w.patch_u16(8, frag_length);
    w.patch_u16(10, auth_length);
    Ok(())
}
