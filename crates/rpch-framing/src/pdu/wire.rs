//! Internal cursor over a PDU and a writer, both honouring the sender's integer byte order
//! (C706 §12.6.1 `packed_drep`: integer representation in the high nibble of byte 0).

use bytes::{BufMut, Bytes, BytesMut};

use super::{PduError, Uuid};

/// A bounds-checked reader over one PDU. Every read that runs past the end is a
/// [`PduError::Truncated`] naming what was being read, never a panic.
pub(crate) struct Reader<'a> {
    bytes: &'a Bytes,
    pos: usize,
    end: usize,
    little_endian: bool,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a Bytes, pos: usize, end: usize, little_endian: bool) -> Self {
        debug_assert!(pos <= end && end <= bytes.len());
        Self {
            bytes,
            pos,
            end,
            little_endian,
        }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.end - self.pos
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], PduError> {
        if self.remaining() < n {
            return Err(PduError::Truncated { what });
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, PduError> {
        Ok(self.take(1, what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, PduError> {
        let b: [u8; 2] = self.take(2, what)?.try_into().expect("length checked");
        Ok(if self.little_endian {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, PduError> {
        let b: [u8; 4] = self.take(4, what)?.try_into().expect("length checked");
        Ok(if self.little_endian {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    pub(crate) fn uuid(&mut self, what: &'static str) -> Result<Uuid, PduError> {
        let time_low = self.u32(what)?;
        let time_mid = self.u16(what)?;
        let time_hi = self.u16(what)?;
        let tail: [u8; 8] = self.take(8, what)?.try_into().expect("length checked");
        Ok(Uuid::from_fields(time_low, time_mid, time_hi, tail))
    }

    /// A zero-copy slice of the next `n` bytes.
    pub(crate) fn bytes(&mut self, n: usize, what: &'static str) -> Result<Bytes, PduError> {
        if self.remaining() < n {
            return Err(PduError::Truncated { what });
        }
        let s = self.bytes.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn skip(&mut self, n: usize, what: &'static str) -> Result<(), PduError> {
        self.take(n, what).map(|_| ())
    }

    /// Skips to the next multiple of `align` counted from the start of the PDU
    /// (C706 §12.6: alignment is relative to the start of the PDU).
    pub(crate) fn align(&mut self, align: usize, what: &'static str) -> Result<(), PduError> {
        let pad = (align - self.pos % align) % align;
        self.skip(pad, what)
    }
}

/// Little- or big-endian writer into a `BytesMut`.
pub(crate) struct Writer<'a> {
    pub(crate) out: &'a mut BytesMut,
    start: usize,
    little_endian: bool,
}

impl<'a> Writer<'a> {
    /// `start` is the offset of the PDU's first byte in `out`, for alignment.
    pub(crate) fn new(out: &'a mut BytesMut, little_endian: bool) -> Self {
        let start = out.len();
        Self {
            out,
            start,
            little_endian,
        }
    }

    pub(crate) fn offset(&self) -> usize {
        self.out.len() - self.start
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.out.put_u8(v);
    }

    pub(crate) fn u16(&mut self, v: u16) {
        if self.little_endian {
            self.out.put_u16_le(v)
        } else {
            self.out.put_u16(v)
        }
    }

    pub(crate) fn u32(&mut self, v: u32) {
        if self.little_endian {
            self.out.put_u32_le(v)
        } else {
            self.out.put_u32(v)
        }
    }

    pub(crate) fn slice(&mut self, v: &[u8]) {
        self.out.put_slice(v);
    }

    pub(crate) fn uuid(&mut self, u: &Uuid) {
        let (a, b, c, d) = u.to_fields();
        self.u32(a);
        self.u16(b);
        self.u16(c);
        self.slice(&d);
    }

    pub(crate) fn zeros(&mut self, n: usize) {
        self.out.put_bytes(0, n);
    }

    pub(crate) fn align(&mut self, align: usize) {
        let pad = (align - self.offset() % align) % align;
        self.zeros(pad);
    }

    /// Overwrites a u16 at `at` (relative to the PDU start), for frag_length / auth_length.
    pub(crate) fn patch_u16(&mut self, at: usize, v: u16) {
        let b = if self.little_endian {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        };
        let i = self.start + at;
        self.out[i..i + 2].copy_from_slice(&b);
    }
}
