//! DCE/RPC connection-oriented PDUs: the common 16-byte header (C706 §12.6.1), the bodies of
//! every connection-oriented packet type (C706 §12.6.4, MS-RPCE §2.2.2), the `sec_trailer` and
//! auth verifier (C706 §13.2.6.1, MS-RPCE §2.2.2.11), and fragment reassembly (C706 §12.6.3.4,
//! MS-RPCE §3.3.1.5.2).
//!
//! Decoding is zero-copy: stub data and auth verifiers are [`Bytes`] slices of the PDU that was
//! decoded. Both little- and big-endian senders decode (the integer-representation nibble of
//! `packed_drep`); encoders write the data representation stored in the header.

mod body;
mod header;
mod reassembly;
pub(crate) mod wire;

use std::fmt;

use bytes::{Bytes, BytesMut};

pub use body::*;
pub use header::*;
pub use reassembly::*;

/// A 128-bit UUID as used by DCE/RPC (C706 appendix A), stored in the order of its string form
/// (`time_low` first, big-endian). On the wire the first three fields follow the sender's
/// integer byte order; [`Uuid::from_fields`] / [`Uuid::to_fields`] convert.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// The nil UUID.
    pub const NIL: Uuid = Uuid([0; 16]);

    /// Builds a UUID from its four string-form fields.
    pub const fn from_fields(time_low: u32, time_mid: u16, time_hi: u16, tail: [u8; 8]) -> Self {
        let a = time_low.to_be_bytes();
        let b = time_mid.to_be_bytes();
        let c = time_hi.to_be_bytes();
        Uuid([
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], tail[0], tail[1], tail[2], tail[3],
            tail[4], tail[5], tail[6], tail[7],
        ])
    }

    /// The four string-form fields: `time_low`, `time_mid`, `time_hi_and_version`, and the
    /// clock sequence plus node bytes.
    pub const fn to_fields(&self) -> (u32, u16, u16, [u8; 8]) {
        let u = &self.0;
        (
            u32::from_be_bytes([u[0], u[1], u[2], u[3]]),
            u16::from_be_bytes([u[4], u[5]]),
            u16::from_be_bytes([u[6], u[7]]),
            [u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]],
        )
    }

    /// Parses the 36-character string form `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`
    /// (either case). Returns `None` for anything else.
    pub fn parse_str(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 36 {
            return None;
        }
        let mut out = [0u8; 16];
        let mut n = 0;
        let mut i = 0;
        while i < 36 {
            if matches!(i, 8 | 13 | 18 | 23) {
                if b[i] != b'-' {
                    return None;
                }
                i += 1;
                continue;
            }
            let hi = (b[i] as char).to_digit(16)?;
            let lo = (b[i + 1] as char).to_digit(16)?;
            out[n] = (hi * 16 + lo) as u8;
            n += 1;
            i += 2;
        }
        Some(Uuid(out))
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uuid({self})")
    }
}

/// Length of the `sec_trailer` that precedes an auth verifier (C706 §13.2.6.1).
pub const SEC_TRAILER_LEN: usize = 8;

/// Limits applied while framing, decoding and reassembling PDUs. Every field has a documented
/// default and the reason for it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest `frag_length` accepted, header included. Default 65535, the largest value the
    /// 16-bit field can hold (C706 §12.6.1), so a framer never buffers more than 64 KiB for one
    /// PDU. Once a bind has negotiated `max_recv_frag` (C706 §12.6.3.1, MS-RPCE §3.3.1.5.3) a
    /// server may lower this to the negotiated value.
    pub max_frag_length: u16,
    /// Largest stub data of one reassembled call, in bytes. Default 4 MiB: MS-RPCE leaves the
    /// bound to implementations; 4 MiB is far above what Exchange's NSPI/EMSMDB calls carry
    /// (their buffers are at most 256 KiB) and bounds memory per call.
    pub max_reassembled_stub: usize,
    /// Most fragments in one reassembled call. Default 4096: 4 MiB of stub data in the
    /// smallest fragments any peer must accept (C706 `must_recv_frag_size`, 1432 bytes) needs
    /// about 3000.
    pub max_fragments: u32,
    /// Most calls being reassembled at once (distinct `call_id`s with a first fragment but no
    /// last one yet). Default 16: MS-RPCE clients issue calls on one association mostly
    /// sequentially; this bounds memory to `16 × max_reassembled_stub`.
    pub max_pending_calls: usize,
}

impl Limits {
    /// C706 §12.6.3.1 `must_recv_frag_size`: the fragment size every implementation must accept.
    pub const MUST_RECV_FRAG_SIZE: u16 = 1432;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frag_length: u16::MAX,
            max_reassembled_stub: 4 * 1024 * 1024,
            max_fragments: 4096,
            max_pending_calls: 16,
        }
    }
}

/// Why a PDU or RTS command could not be decoded, or a fragment not reassembled.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PduError {
    /// The PDU ends before a field it must contain.
    #[error("PDU truncated while reading {what}")]
    Truncated {
        /// The field being read.
        what: &'static str,
    },
    /// `rpc_vers` is not 5 or `rpc_vers_minor` not 0 or 1 (C706 §12.6.1, MS-RPCE §1.7).
    #[error("unsupported RPC version {major}.{minor}")]
    UnsupportedVersion {
        /// `rpc_vers`.
        major: u8,
        /// `rpc_vers_minor`.
        minor: u8,
    },
    /// `PTYPE` is not a connection-oriented packet type (C706 §12.6.4).
    #[error("unknown or connectionless packet type {0}")]
    UnknownPacketType(u8),
    /// The integer representation nibble of `packed_drep` is neither 0 (big-endian) nor 1
    /// (little-endian) (C706 §14.2.5).
    #[error("unsupported data representation {0:02x?}")]
    UnsupportedDataRepresentation([u8; 4]),
    /// `frag_length` is smaller than the header and auth trailer it announces.
    #[error("frag_length {frag_length} too small (auth_length {auth_length})")]
    InvalidFragLength {
        /// `frag_length` from the header.
        frag_length: u16,
        /// `auth_length` from the header.
        auth_length: u16,
    },
    /// `frag_length` is above [`Limits::max_frag_length`].
    #[error("frag_length {frag_length} above the limit {limit}")]
    FragTooLong {
        /// `frag_length` from the header.
        frag_length: u16,
        /// The configured limit.
        limit: u16,
    },
    /// Bytes left over after the last field of a body that has no variable tail.
    #[error("{count} unexpected bytes after the {what} body")]
    TrailingBytes {
        /// The packet type or structure.
        what: &'static str,
        /// How many bytes were left.
        count: usize,
    },
    /// A field holds a value the specification does not allow.
    #[error("invalid {what}: {value}")]
    InvalidValue {
        /// The field, with the section that constrains it.
        what: &'static str,
        /// The value found.
        value: u64,
    },
    /// An RTS PDU header breaks MS-RPCH §2.2.3.6.1 (flags, drep, call_id or auth_length).
    #[error("invalid RTS header: {0}")]
    InvalidRtsHeader(&'static str),
    /// An RTS command type outside 0..=14 (MS-RPCH §2.2.3.5).
    #[error("unknown RTS command type {0}")]
    UnknownRtsCommand(u32),
    /// An RTS command value outside the range MS-RPCH §2.2.3.5 allows.
    #[error("RTS {command} value {value} out of range")]
    RtsValueOutOfRange {
        /// The command name.
        command: &'static str,
        /// The value found.
        value: u32,
    },
    /// The PDU is well formed but is not the packet type the caller asked for.
    #[error("expected packet type {expected:?}, found {found:?}")]
    UnexpectedPacketType {
        /// What the caller asked for.
        expected: PacketType,
        /// What the header says.
        found: PacketType,
    },
    /// An encoder was asked to build a PDU longer than 65535 bytes or with a field that does
    /// not fit its wire width.
    #[error("{what} too large to encode")]
    TooLargeToEncode {
        /// What did not fit.
        what: &'static str,
    },
    /// Reassembly: a fragment broke the first/last-fragment sequence for its call.
    #[error("fragment sequence error for call {call_id}: {reason}")]
    FragmentSequence {
        /// The call whose fragments are out of order.
        call_id: u32,
        /// What was wrong.
        reason: &'static str,
    },
    /// Reassembly: a call grew past [`Limits::max_reassembled_stub`] or
    /// [`Limits::max_fragments`], or too many calls are pending ([`Limits::max_pending_calls`]).
    #[error("reassembly limit exceeded: {0}")]
    ReassemblyLimit(&'static str),
}

impl Pdu {
    /// The packet type of this PDU.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Pdu::Request(_) => PacketType::Request,
            Pdu::Response(_) => PacketType::Response,
            Pdu::Fault(_) => PacketType::Fault,
            Pdu::Bind(_) => PacketType::Bind,
            Pdu::BindAck(_) => PacketType::BindAck,
            Pdu::BindNak(_) => PacketType::BindNak,
            Pdu::AlterContext(_) => PacketType::AlterContext,
            Pdu::AlterContextResp(_) => PacketType::AlterContextResp,
            Pdu::Auth3(_) => PacketType::Auth3,
            Pdu::Shutdown => PacketType::Shutdown,
            Pdu::CoCancel(_) => PacketType::CoCancel,
            Pdu::Orphaned(_) => PacketType::Orphaned,
            Pdu::Rts(_) => PacketType::Rts,
        }
    }

    /// Decodes one complete PDU (exactly `frag_length` bytes). The returned stub data and auth
    /// verifiers are slices of `bytes`.
    pub fn decode(bytes: &Bytes) -> Result<Pdu, PduError> {
        Self::decode_with_limits(bytes, &Limits::default())
    }

    /// [`Pdu::decode`] with explicit limits.
    pub fn decode_with_limits(bytes: &Bytes, limits: &Limits) -> Result<Pdu, PduError> {
        let header = PduHeader::parse(bytes, limits)?;
        if bytes.len() != usize::from(header.frag_length) {
            if bytes.len() < usize::from(header.frag_length) {
                return Err(PduError::Truncated { what: "PDU body" });
            }
            return Err(PduError::TrailingBytes {
                what: "PDU (beyond frag_length)",
                count: bytes.len() - usize::from(header.frag_length),
            });
        }
        body::decode_body(&header, bytes)
    }

    /// Decodes and pairs the PDU with its header.
    pub fn decode_with_header(bytes: &Bytes, limits: &Limits) -> Result<DecodedPdu, PduError> {
        let header = PduHeader::parse(bytes, limits)?;
        let pdu = Self::decode_with_limits(bytes, limits)?;
        Ok(DecodedPdu { header, pdu })
    }

    /// Encodes the PDU. `header` supplies the version, flags, data representation and call id;
    /// `frag_length`, `auth_length` and the packet type are computed and overwrite what
    /// `header` holds. RTS PDUs ignore `header` and are always written as MS-RPCH §2.2.3.6.1
    /// requires (little-endian, first+last fragment, call_id 0).
    pub fn encode(&self, header: &PduHeader, out: &mut BytesMut) -> Result<(), PduError> {
        body::encode_pdu(self, header, out)
    }
}

/// Decodes the body of a PDU whose header has been parsed and whose length is `frag_length`.
pub(crate) fn decode_body_of(header: &PduHeader, bytes: &Bytes) -> Result<Pdu, PduError> {
    body::decode_body(header, bytes)
}

#[cfg(test)]
mod tests;
