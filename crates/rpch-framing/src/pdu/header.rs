//! The 16-byte common header of every connection-oriented PDU (C706 §12.6.1).

use std::fmt;

use bytes::BytesMut;

use super::wire::Writer;
use super::{Limits, PduError};

/// Length of the common header (C706 §12.6.1).
pub const HEADER_LEN: usize = 16;

/// Connection-oriented packet types (C706 §12.6.4, MS-RPCE §2.2.2.2, MS-RPCH §2.2.3.6.1).
/// Connectionless types (1, 4–10) never appear on a connection and are refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// `request`.
    Request = 0,
    /// `response`.
    Response = 2,
    /// `fault`.
    Fault = 3,
    /// `bind`.
    Bind = 11,
    /// `bind_ack`.
    BindAck = 12,
    /// `bind_nak`.
    BindNak = 13,
    /// `alter_context`.
    AlterContext = 14,
    /// `alter_context_resp`.
    AlterContextResp = 15,
    /// `rpc_auth_3` (MS-RPCE §2.2.2.10).
    Auth3 = 16,
    /// `shutdown`.
    Shutdown = 17,
    /// `co_cancel`.
    CoCancel = 18,
    /// `orphaned`.
    Orphaned = 19,
    /// `rts` (MS-RPCH §2.2.3.6.1).
    Rts = 20,
}

impl PacketType {
    /// The packet type for a `PTYPE` byte, if it is a connection-oriented one.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Request,
            2 => Self::Response,
            3 => Self::Fault,
            11 => Self::Bind,
            12 => Self::BindAck,
            13 => Self::BindNak,
            14 => Self::AlterContext,
            15 => Self::AlterContextResp,
            16 => Self::Auth3,
            17 => Self::Shutdown,
            18 => Self::CoCancel,
            19 => Self::Orphaned,
            20 => Self::Rts,
            _ => return None,
        })
    }

    /// All connection-oriented packet types.
    pub const ALL: [PacketType; 13] = [
        Self::Request,
        Self::Response,
        Self::Fault,
        Self::Bind,
        Self::BindAck,
        Self::BindNak,
        Self::AlterContext,
        Self::AlterContextResp,
        Self::Auth3,
        Self::Shutdown,
        Self::CoCancel,
        Self::Orphaned,
        Self::Rts,
    ];
}

/// `pfc_flags` (C706 §12.6.3.1, MS-RPCE §2.2.2.3). Unknown bits are kept.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PfcFlags(pub u8);

impl PfcFlags {
    /// `PFC_FIRST_FRAG`: first fragment of a call.
    pub const FIRST_FRAG: PfcFlags = PfcFlags(0x01);
    /// `PFC_LAST_FRAG`: last fragment of a call.
    pub const LAST_FRAG: PfcFlags = PfcFlags(0x02);
    /// `PFC_PENDING_CANCEL`: a cancel was pending at the sender (request/response).
    pub const PENDING_CANCEL: PfcFlags = PfcFlags(0x04);
    /// `PFC_SUPPORT_HEADER_SIGN` (MS-RPCE §2.2.2.3): the same bit as `PENDING_CANCEL`, meaning
    /// header signing support in bind / alter_context / their responses.
    pub const SUPPORT_HEADER_SIGN: PfcFlags = PfcFlags(0x04);
    /// `PFC_RESERVED_1`.
    pub const RESERVED_1: PfcFlags = PfcFlags(0x08);
    /// `PFC_CONC_MPX`: concurrent multiplexing supported (bind).
    pub const CONC_MPX: PfcFlags = PfcFlags(0x10);
    /// `PFC_DID_NOT_EXECUTE`: the call did not execute (fault).
    pub const DID_NOT_EXECUTE: PfcFlags = PfcFlags(0x20);
    /// `PFC_MAYBE`: `maybe` call semantics.
    pub const MAYBE: PfcFlags = PfcFlags(0x40);
    /// `PFC_OBJECT_UUID`: a request carries an object UUID.
    pub const OBJECT_UUID: PfcFlags = PfcFlags(0x80);
    /// First and last fragment: a call in one PDU.
    pub const FIRST_AND_LAST: PfcFlags = PfcFlags(0x03);

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: PfcFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// These flags with `other`'s bits added.
    pub const fn with(self, other: PfcFlags) -> PfcFlags {
        PfcFlags(self.0 | other.0)
    }

    /// These flags with `other`'s bits removed.
    pub const fn without(self, other: PfcFlags) -> PfcFlags {
        PfcFlags(self.0 & !other.0)
    }
}

impl fmt::Debug for PfcFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 8] = [
            "FIRST_FRAG",
            "LAST_FRAG",
            "PENDING_CANCEL",
            "RESERVED_1",
            "CONC_MPX",
            "DID_NOT_EXECUTE",
            "MAYBE",
            "OBJECT_UUID",
        ];
        write!(f, "PfcFlags({:#04x}", self.0)?;
        for (i, name) in NAMES.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                write!(f, " {name}")?;
            }
        }
        f.write_str(")")
    }
}

/// `packed_drep` (C706 §12.6.1, §14.2.5): integer and character representation in byte 0
/// (high and low nibble), floating-point representation in byte 1, bytes 2–3 reserved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DataRepresentation(pub [u8; 4]);

impl DataRepresentation {
    /// Little-endian integers, ASCII characters, IEEE floats: what Windows and every RTS PDU
    /// uses (MS-RPCH §2.2.3.6.1).
    pub const LITTLE_ENDIAN: DataRepresentation = DataRepresentation([0x10, 0, 0, 0]);
    /// Big-endian integers, ASCII characters, IEEE floats.
    pub const BIG_ENDIAN: DataRepresentation = DataRepresentation([0x00, 0, 0, 0]);

    /// Whether integers are little-endian (integer nibble 1); `None` when the nibble is
    /// neither 0 nor 1.
    pub const fn little_endian(self) -> Option<bool> {
        match self.0[0] >> 4 {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
}

impl Default for DataRepresentation {
    fn default() -> Self {
        Self::LITTLE_ENDIAN
    }
}

/// The common header (C706 §12.6.1).
///
/// ```text
/// rpc_vers u8 | rpc_vers_minor u8 | PTYPE u8 | pfc_flags u8 | packed_drep [u8; 4]
/// frag_length u16 | auth_length u16 | call_id u32
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PduHeader {
    /// `rpc_vers`: always 5.
    pub rpc_vers: u8,
    /// `rpc_vers_minor`: 0 or 1 (MS-RPCE §1.7; Windows sends 0 for RTS and 0 or 1 otherwise).
    pub rpc_vers_minor: u8,
    /// `PTYPE`.
    pub packet_type: PacketType,
    /// `pfc_flags`.
    pub pfc_flags: PfcFlags,
    /// `packed_drep`.
    pub data_rep: DataRepresentation,
    /// `frag_length`: the whole PDU, header and auth trailer included.
    pub frag_length: u16,
    /// `auth_length`: length of the auth verifier (not counting the 8-byte `sec_trailer`).
    pub auth_length: u16,
    /// `call_id`.
    pub call_id: u32,
}

impl PduHeader {
    /// A header for a single-fragment PDU of `packet_type`, version 5.0, little-endian;
    /// `frag_length` and `auth_length` are filled in by the encoder.
    pub const fn new(packet_type: PacketType, call_id: u32) -> Self {
        Self {
            rpc_vers: 5,
            rpc_vers_minor: 0,
            packet_type,
            pfc_flags: PfcFlags::FIRST_AND_LAST,
            data_rep: DataRepresentation::LITTLE_ENDIAN,
            frag_length: 0,
            auth_length: 0,
            call_id,
        }
    }

    /// Whether integers in this PDU are little-endian. Parsed headers always have a valid
    /// representation; for hand-built ones an invalid nibble counts as little-endian.
    pub fn is_little_endian(&self) -> bool {
        self.data_rep.little_endian().unwrap_or(true)
    }

    /// Parses and checks the first [`HEADER_LEN`] bytes of `bytes` (which may hold more).
    ///
    /// Checks: version 5.0/5.1, a connection-oriented `PTYPE`, a known integer
    /// representation, `frag_length ≥ 16 + (auth_length > 0 ? 8 + auth_length : 0)`, and
    /// `frag_length ≤ limits.max_frag_length`.
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Self, PduError> {
        if bytes.len() < HEADER_LEN {
            return Err(PduError::Truncated {
                what: "common header",
            });
        }
        let (major, minor) = (bytes[0], bytes[1]);
        if major != 5 || minor > 1 {
            return Err(PduError::UnsupportedVersion { major, minor });
        }
        let packet_type =
            PacketType::from_u8(bytes[2]).ok_or(PduError::UnknownPacketType(bytes[2]))?;
        let data_rep = DataRepresentation([bytes[4], bytes[5], bytes[6], bytes[7]]);
        let le = data_rep
            .little_endian()
            .ok_or(PduError::UnsupportedDataRepresentation(data_rep.0))?;
        let rd16 = |i: usize| {
            let b = [bytes[i], bytes[i + 1]];
            if le {
                u16::from_le_bytes(b)
            } else {
                u16::from_be_bytes(b)
            }
        };
        let frag_length = rd16(8);
        let auth_length = rd16(10);
        let b = [bytes[12], bytes[13], bytes[14], bytes[15]];
        let call_id = if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        };
        let min = HEADER_LEN
            + if auth_length > 0 {
                super::SEC_TRAILER_LEN + usize::from(auth_length)
            } else {
                0
            };
        if usize::from(frag_length) < min {
            return Err(PduError::InvalidFragLength {
                frag_length,
                auth_length,
            });
        }
        if frag_length > limits.max_frag_length {
            return Err(PduError::FragTooLong {
                frag_length,
                limit: limits.max_frag_length,
            });
        }
        Ok(Self {
            rpc_vers: major,
            rpc_vers_minor: minor,
            packet_type,
            pfc_flags: PfcFlags(bytes[3]),
            data_rep,
            frag_length,
            auth_length,
            call_id,
        })
    }

    /// Writes the 16 header bytes as they are (no length computation).
    pub fn encode(&self, out: &mut BytesMut) {
        let mut w = Writer::new(out, self.is_little_endian());
        self.write(&mut w);
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) {
        w.u8(self.rpc_vers);
        w.u8(self.rpc_vers_minor);
        w.u8(self.packet_type as u8);
        w.u8(self.pfc_flags.0);
        w.slice(&self.data_rep.0);
        w.u16(self.frag_length);
        w.u16(self.auth_length);
        w.u32(self.call_id);
    }
}
