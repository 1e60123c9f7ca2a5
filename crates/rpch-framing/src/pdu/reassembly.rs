//! Fragment reassembly of requests and responses (C706 §12.6.3.4 / §12.4, MS-RPCE §3.3.1.5.2):
//! a call is a first fragment (`PFC_FIRST_FRAG`), any middle fragments and a last fragment
//! (`PFC_LAST_FRAG`), all with the same `call_id`, packet type, context id and opnum.

use bytes::{Bytes, BytesMut};

use super::{Limits, PacketType, Pdu, PduError, PduHeader, PfcFlags, Uuid};

/// A PDU with the common header it arrived with (the header carries `call_id` and
/// `pfc_flags`, which the body types do not repeat).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedPdu {
    /// The common header.
    pub header: PduHeader,
    /// The decoded body.
    pub pdu: Pdu,
}

/// A whole request or response, its fragments' stub data joined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReassembledCall {
    /// The first fragment's header (its `pfc_flags`, `call_id`, data representation).
    pub header: PduHeader,
    /// [`PacketType::Request`] or [`PacketType::Response`].
    pub packet_type: PacketType,
    /// `p_cont_id`.
    pub context_id: u16,
    /// `opnum` for a request; 0 for a response.
    pub opnum: u16,
    /// The request's object UUID, if any.
    pub object: Option<Uuid>,
    /// The stub data. A single-fragment call's stub data is a slice of its PDU; a
    /// multi-fragment call's is one new buffer.
    pub stub_data: Bytes,
    /// How many fragments made the call.
    pub fragments: u32,
}

/// What [`Reassembler::push`] made of a PDU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reassembled {
    /// The last fragment of a call arrived.
    Complete(ReassembledCall),
    /// A first or middle fragment was stored.
    Pending,
    /// A PDU that is not a request or response fragment, handed back unchanged. A `fault`,
    /// `co_cancel` or `orphaned` for a call being reassembled also drops that call.
    Other(DecodedPdu),
}

#[derive(Debug)]
struct PartialCall {
    header: PduHeader,
    packet_type: PacketType,
    context_id: u16,
    opnum: u16,
    object: Option<Uuid>,
    stub: BytesMut,
    fragments: u32,
}

/// Joins request or response fragments per `call_id`, within [`Limits`]. Sans-IO; holds at
/// most [`Limits::max_pending_calls`] partial calls of at most
/// [`Limits::max_reassembled_stub`] bytes each.
#[derive(Debug, Default)]
pub struct Reassembler {
    limits: Limits,
    pending: Vec<(u32, PartialCall)>,
}

impl Reassembler {
    /// A reassembler enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            pending: Vec::new(),
        }
    }

    /// Number of calls with a first fragment and no last one yet.
    pub fn pending_calls(&self) -> usize {
        self.pending.len()
    }

    /// Drops a partial call (after a cancel, say). Returns whether there was one.
    pub fn abandon(&mut self, call_id: u32) -> bool {
        let before = self.pending.len();
        self.pending.retain(|(id, _)| *id != call_id);
        before != self.pending.len()
    }

    /// Takes one decoded PDU. Errors: a middle or last fragment without a first one, a first
    /// fragment for a call already pending, a fragment whose packet type, context id or opnum
    /// differs from its first fragment, or a limit exceeded. After an error the call is
    /// dropped; the connection should be closed with a protocol error (C706 §12.6.3.4).
    pub fn push(&mut self, decoded: DecodedPdu) -> Result<Reassembled, PduError> {
        let DecodedPdu { header, pdu } = decoded;
        let call_id = header.call_id;
        let (packet_type, context_id, opnum, object, stub) = match &pdu {
            Pdu::Request(r) => (
                PacketType::Request,
                r.context_id,
                r.opnum,
                r.object,
                &r.stub_data,
            ),
            Pdu::Response(r) => (PacketType::Response, r.context_id, 0, None, &r.stub_data),
            Pdu::Fault(_) | Pdu::CoCancel(_) | Pdu::Orphaned(_) => {
                self.abandon(call_id);
                return Ok(Reassembled::Other(DecodedPdu { header, pdu }));
            }
            _ => return Ok(Reassembled::Other(DecodedPdu { header, pdu })),
        };
        let first = header.pfc_flags.contains(PfcFlags::FIRST_FRAG);
        let last = header.pfc_flags.contains(PfcFlags::LAST_FRAG);
        let slot = self.pending.iter().position(|(id, _)| *id == call_id);
        let seq_err = |reason| PduError::FragmentSequence { call_id, reason };
        if first {
            if slot.is_some() {
                self.abandon(call_id);
                return Err(seq_err(
                    "first fragment while the call is being reassembled",
                ));
            }
            if stub.len() > self.limits.max_reassembled_stub {
                return Err(PduError::ReassemblyLimit(
                    "stub data larger than max_reassembled_stub",
                ));
            }
            if last {
                return Ok(Reassembled::Complete(ReassembledCall {
                    header,
                    packet_type,
                    context_id,
                    opnum,
                    object,
                    stub_data: stub.clone(),
                    fragments: 1,
                }));
            }
            if self.pending.len() >= self.limits.max_pending_calls {
                return Err(PduError::ReassemblyLimit(
                    "too many calls being reassembled",
                ));
            }
            let mut buf = BytesMut::with_capacity(stub.len() * 2);
            buf.extend_from_slice(stub);
            self.pending.push((
                call_id,
                PartialCall {
                    header,
                    packet_type,
                    context_id,
                    opnum,
                    object,
                    stub: buf,
                    fragments: 1,
                },
            ));
            return Ok(Reassembled::Pending);
        }
        let Some(i) = slot else {
            return Err(seq_err("fragment without a first fragment"));
        };
        let call = &mut self.pending[i].1;
        if call.packet_type != packet_type || call.context_id != context_id || call.opnum != opnum {
            self.pending.swap_remove(i);
            return Err(seq_err("fragment does not match its first fragment"));
        }
        if call.stub.len() + stub.len() > self.limits.max_reassembled_stub {
            self.pending.swap_remove(i);
            return Err(PduError::ReassemblyLimit(
                "stub data larger than max_reassembled_stub",
            ));
        }
        if call.fragments >= self.limits.max_fragments {
            self.pending.swap_remove(i);
            return Err(PduError::ReassemblyLimit(
                "more fragments than max_fragments",
            ));
        }
        call.stub.extend_from_slice(stub);
        call.fragments += 1;
        if !last {
            return Ok(Reassembled::Pending);
        }
        let (_, call) = self.pending.swap_remove(i);
        Ok(Reassembled::Complete(ReassembledCall {
            header: call.header,
            packet_type: call.packet_type,
            context_id: call.context_id,
            opnum: call.opnum,
            object: call.object,
            stub_data: call.stub.freeze(),
            fragments: call.fragments,
        }))
    }
}
