//! Invariant checks shared by the proptests and the cargo-fuzz targets. Not a stable API.
//!
//! Every function panics when an invariant is broken and returns normally otherwise.

use bytes::{Bytes, BytesMut};

use crate::codec::{PduDecoder, split_pdu};
use crate::pdu::{DecodedPdu, Limits, Pdu, Reassembled, Reassembler};
use crate::rts::{RtsCommand, RtsPdu};

/// Frames and decodes `data` as a stream of PDUs. Decoding never panics; every PDU that
/// decodes re-encodes to bytes that decode to the same PDU, and re-encoding those is
/// byte-identical (the encoding is canonical). Decoded requests and responses go through a
/// [`Reassembler`], which never holds more calls than its limit. Also checks
/// [`rts_command_roundtrip`] on the same bytes.
pub fn pdu_stream(data: &[u8]) {
    let limits = Limits {
        max_reassembled_stub: 1 << 16,
        max_pending_calls: 4,
        ..Limits::default()
    };
    let mut decoder = PduDecoder::new(limits.clone());
    let mut reassembler = Reassembler::new(limits.clone());
    let mut buf = BytesMut::from(data);
    while let Ok(Some(decoded)) = decoder.decode(&mut buf) {
        pdu_roundtrip(&decoded);
        if let Ok(Reassembled::Complete(call)) = reassembler.push(decoded) {
            assert!(call.stub_data.len() <= limits.max_reassembled_stub);
        }
        assert!(reassembler.pending_calls() <= limits.max_pending_calls);
    }
    rts_command_roundtrip(data);
}

/// `decoded` re-encodes to a PDU that decodes to the same value, canonically.
pub fn pdu_roundtrip(decoded: &DecodedPdu) {
    let mut first = BytesMut::new();
    decoded
        .pdu
        .encode(&decoded.header, &mut first)
        .unwrap_or_else(|e| panic!("re-encoding {decoded:?} failed: {e}"));
    let first = first.freeze();
    let again = Pdu::decode_with_header(&first, &Limits::default())
        .unwrap_or_else(|e| panic!("re-decoding {first:02x?} failed: {e}"));
    assert_eq!(again.pdu, decoded.pdu, "round trip changed the PDU");
    assert_eq!(again.header.call_id, decoded.header.call_id);
    let mut second = BytesMut::new();
    again
        .pdu
        .encode(&again.header, &mut second)
        .expect("second encoding");
    assert_eq!(second.freeze(), first, "encoding not canonical");
}

/// If `data` starts with a valid RTS command, encoding it gives bytes that decode to the same
/// command with the length [`RtsCommand::encoded_len`] reports.
pub fn rts_command_roundtrip(data: &[u8]) {
    if let Ok((cmd, used)) = RtsCommand::decode(data) {
        assert!(used <= data.len());
        let pdu = RtsPdu::new(Default::default(), vec![cmd]);
        let bytes = pdu.to_bytes();
        assert_eq!(bytes.len(), 20 + cmd.encoded_len());
        assert_eq!(
            RtsPdu::decode(&bytes).expect("re-decode").commands,
            vec![cmd]
        );
    }
}

/// Splitting `data` fed in chunks (sizes from `cuts`, each at least 1) gives the same PDUs and
/// the same error as splitting it whole.
pub fn split_chunking(data: &[u8], cuts: &[usize]) {
    let limits = Limits::default();
    let whole = split_all(std::iter::once(data), &limits);
    let mut chunks = Vec::new();
    let mut rest = data;
    for &c in cuts {
        if rest.is_empty() {
            break;
        }
        let n = c.clamp(1, rest.len());
        chunks.push(&rest[..n]);
        rest = &rest[n..];
    }
    if !rest.is_empty() {
        chunks.push(rest);
    }
    let chunked = split_all(chunks.into_iter(), &limits);
    assert_eq!(chunked, whole);
}

fn split_all<'a>(
    chunks: impl Iterator<Item = &'a [u8]>,
    limits: &Limits,
) -> (Vec<Bytes>, Option<String>) {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match split_pdu(&mut buf, limits) {
                Ok(Some(raw)) => out.push(raw.bytes),
                Ok(None) => break,
                Err(e) => return (out, Some(e.to_string())),
            }
        }
        // The framer never needs more than one maximal PDU buffered.
        assert!(buf.len() < usize::from(limits.max_frag_length) + chunk.len().max(1));
    }
    (out, None)
}
