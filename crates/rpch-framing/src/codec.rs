//! The framer: splits a byte stream into whole PDUs by `frag_length` (C706 §12.6.1) with
//! limits, without copying.
//!
//! [`split_pdu`] only reads the common header, so a proxy can forward PDUs it does not parse
//! ([`RawPdu`]); [`RawPdu::rts`] decodes the RTS PDUs a channel machine acts on.

use bytes::{Bytes, BytesMut};

use crate::pdu::{DecodedPdu, HEADER_LEN, Limits, PacketType, PduError, PduHeader};
use crate::rts::RtsPdu;

/// One whole PDU, split off the input without parsing its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawPdu {
    /// The parsed common header.
    pub header: PduHeader,
    /// The whole PDU, header included (`frag_length` bytes).
    pub bytes: Bytes,
}

impl RawPdu {
    /// Whether this is an RTS PDU (PTYPE 20).
    pub fn is_rts(&self) -> bool {
        self.header.packet_type == PacketType::Rts
    }

    /// For an RTS PDU, its decoded form (MS-RPCH §2.2.3.6); `None` for other packet types.
    pub fn rts(&self) -> Option<Result<RtsPdu, PduError>> {
        self.is_rts()
            .then(|| RtsPdu::decode_body(&self.header, &self.bytes))
    }

    /// Length in bytes (`frag_length`).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: a PDU is at least 16 bytes. Present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// Splits the first whole PDU off `buf`. Returns `Ok(None)` while `buf` holds less than a
/// header or less than `frag_length` bytes; `buf` is left untouched then. On an error the
/// stream cannot be resynchronised (PDUs carry no marker), so the caller closes the connection.
///
/// Checks the header (version 5.0/5.1, connection-oriented PTYPE, data representation,
/// `frag_length` against the header, auth trailer and `limits.max_frag_length`) as soon as 16
/// bytes are there, so an oversized PDU is refused before it is buffered.
pub fn split_pdu(buf: &mut BytesMut, limits: &Limits) -> Result<Option<RawPdu>, PduError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let header = PduHeader::parse(buf, limits)?;
    let len = usize::from(header.frag_length);
    if buf.len() < len {
        buf.reserve(len - buf.len());
        return Ok(None);
    }
    Ok(Some(RawPdu {
        header,
        bytes: buf.split_to(len).freeze(),
    }))
}
/// Incremental decoder of connection-oriented PDUs: [`split_pdu`] then a full body decode.
/// Returns each fragment as it arrives; feed requests and responses to a
/// [`crate::pdu::Reassembler`] for whole calls.
///
/// Wrap it in a `tokio_util::codec::Decoder` by forwarding `decode`.
#[derive(Clone, Debug, Default)]
pub struct PduDecoder {
    limits: Limits,
}

impl PduDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Self { limits }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Changes the limits, e.g. to the `max_recv_frag` negotiated by a bind.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Splits and decodes the next whole PDU in `buf`: `Ok(None)` until one is complete. The
    /// returned body's stub data and auth verifier are slices of the split-off PDU.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<DecodedPdu>, PduError> {
        let Some(raw) = split_pdu(buf, &self.limits)? else {
            return Ok(None);
        };
        let pdu = crate::pdu::decode_body_of(&raw.header, &raw.bytes)?;
        Ok(Some(DecodedPdu {
            header: raw.header,
            pdu,
        }))
    }
}
