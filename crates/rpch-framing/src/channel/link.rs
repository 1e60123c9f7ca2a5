//! One byte stream of a channel: an incremental PDU splitter for what arrives and a bounded
//! buffer for what leaves.

use bytes::{Buf, Bytes, BytesMut};

use crate::codec::{RawPdu, split_pdu};
use crate::pdu::{Limits, PacketType, PduError};
use crate::rts::RtsPdu;

/// Inputs are framed in slices of at most this many bytes (one largest PDU), so a large read is
/// never copied into a machine's buffer whole.
pub(crate) const INPUT_SLICE: usize = 64 * 1024;

/// One complete PDU taken off a stream: its packet type and all of its bytes.
#[derive(Clone, Debug)]
pub(crate) struct Frame {
    pub(crate) packet_type: PacketType,
    pub(crate) bytes: Bytes,
    raw: RawPdu,
}

impl Frame {
    /// Length as the flow-control counters see it (`frag_length`, at most 65535).
    pub(crate) fn len_u32(&self) -> u32 {
        // frag_length is a u16, so this never truncates.
        self.bytes.len() as u32
    }

    /// Decodes the RTS body of a frame whose packet type is RTS.
    pub(crate) fn rts(&self) -> Result<RtsPdu, PduError> {
        self.raw
            .rts()
            .unwrap_or(Err(PduError::UnexpectedPacketType {
                expected: PacketType::Rts,
                found: self.packet_type,
            }))
    }
}

/// Splits a byte stream into PDUs by `frag_length`, never holding more than one PDU's worth of
/// bytes beyond what the caller has not yet taken out.
#[derive(Debug, Default)]
pub(crate) struct Reader {
    buf: BytesMut,
}

impl Reader {
    pub(crate) fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes held (a partial PDU, or complete PDUs not taken yet).
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The bytes held, unframed.
    pub(crate) fn peek(&self) -> &[u8] {
        &self.buf
    }

    /// Takes the raw prefix of `n` bytes if present (the backend greeting).
    pub(crate) fn take_prefix(&mut self, n: usize) -> Option<Bytes> {
        (self.buf.len() >= n).then(|| self.buf.split_to(n).freeze())
    }

    /// The next complete PDU, `Ok(None)` when more bytes are needed.
    pub(crate) fn next_frame(&mut self, limits: &Limits) -> Result<Option<Frame>, PduError> {
        Ok(split_pdu(&mut self.buf, limits)?.map(|raw| Frame {
            packet_type: raw.header.packet_type,
            bytes: raw.bytes.clone(),
            raw,
        }))
    }

    /// Drops everything buffered (the stream is finished).
    pub(crate) fn clear(&mut self) {
        self.buf = BytesMut::new();
    }
}

/// Strips the `ncacn_http/1.0` greeting (the "legacy server response", MS-RPCH §2.1.2.1.7) off
/// the start of a backend stream. Proxies must accept a server that does not send it (§3.2.3.5.12,
/// §3.2.4.5.15), so a stream that starts with a PDU (version byte 5) is taken as is; anything
/// else that is not the greeting is refused as soon as it diverges, however it is split.
/// Returns whether the stream is past the greeting.
pub(crate) fn strip_greeting(reader: &mut Reader) -> Result<bool, super::ChannelError> {
    let greeting = super::NCACN_HTTP_GREETING;
    let held = reader.peek();
    match held.first() {
        None => Ok(false),
        Some(5) => Ok(true),
        Some(_) if held.len() >= greeting.len() => {
            if held[..greeting.len()] == greeting[..] {
                reader.take_prefix(greeting.len());
                Ok(true)
            } else {
                Err(super::ChannelError::BadGreeting)
            }
        }
        Some(_) if greeting.starts_with(held) => Ok(false),
        Some(_) => Err(super::ChannelError::BadGreeting),
    }
}

/// The backend stream: an optional `ncacn_http/1.0` greeting, then PDUs. Both proxy machines
/// read their backend through this, so the greeting rule lives in one place.
#[derive(Debug, Default)]
pub(crate) struct BackendReader {
    reader: Reader,
    past_greeting: bool,
}

impl BackendReader {
    pub(crate) fn push(&mut self, data: &[u8]) {
        self.reader.push(data);
    }

    /// Bytes held.
    pub(crate) fn buffered(&self) -> usize {
        self.reader.buffered()
    }

    /// The next complete PDU after the greeting, `Ok(None)` when more bytes are needed.
    pub(crate) fn next_frame(
        &mut self,
        limits: &Limits,
    ) -> Result<Option<Frame>, super::ChannelError> {
        if !self.past_greeting {
            if !strip_greeting(&mut self.reader)? {
                return Ok(None);
            }
            self.past_greeting = true;
        }
        Ok(self.reader.next_frame(limits)?)
    }

    /// Drops everything buffered (the stream is finished).
    pub(crate) fn clear(&mut self) {
        self.reader.clear();
    }
}

/// Bytes waiting to be written to one stream.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    buf: BytesMut,
    /// Total bytes ever queued on this stream (for channel lifetime accounting).
    total: u64,
}

impl Writer {
    pub(crate) fn extend(&mut self, data: &[u8]) {
        self.total += data.len() as u64;
        self.buf.extend_from_slice(data);
    }

    pub(crate) fn push_rts(&mut self, rts: &RtsPdu) {
        let before = self.buf.len();
        rts.encode(&mut self.buf);
        self.total += (self.buf.len() - before) as u64;
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// Moves at most `max` bytes into `out`; returns how many.
    pub(crate) fn drain_into(&mut self, out: &mut Vec<u8>, max: usize) -> usize {
        let n = self.buf.len().min(max);
        out.extend_from_slice(&self.buf[..n]);
        self.buf.advance(n);
        if self.buf.is_empty() && self.buf.capacity() > 64 * 1024 {
            // Give memory back after a burst: idle channels stay small.
            self.buf = BytesMut::new();
        }
        n
    }
}
