//! Incremental line framer: finds line ends with memchr, resumes where it stopped, enforces a
//! per-line limit and discards the rest of an overlong line without buffering it.
//!
//! Lines end in CRLF or a bare LF (lenient input); the terminator is stripped. The limit
//! counts the whole line including its terminator (RFC 2449 §4: "including the terminating
//! CRLF").

use bytes::{Buf, Bytes, BytesMut};

/// One result of [`LineFramer::next_frame`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete line without its CRLF / LF.
    Line(Bytes),
    /// A line exceeded the limit. Its bytes were dropped; the framer drops everything up to
    /// and including the next LF.
    TooLong,
}

/// Capacity kept while idle; anything above is released once the buffer is empty.
const IDLE_CAPACITY: usize = 4096;

/// An incremental CRLF / LF line framer.
#[derive(Debug, Default)]
pub struct LineFramer {
    buf: BytesMut,
    /// Bytes of `buf` already known to contain no LF.
    scanned: usize,
    /// Inside an overlong line: drop input up to the next LF.
    discarding: bool,
}

impl LineFramer {
    /// An empty framer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes. The caller bounds how much it appends before calling
    /// [`LineFramer::next_frame`] (see [`LineFramer::buffered`]).
    pub fn push(&mut self, data: &[u8]) {
        if self.discarding {
            // Only the part after the next LF can matter; don't buffer the rest.
            if let Some(lf) = memchr::memchr(b'\n', data) {
                self.discarding = false;
                self.buf
                    .extend_from_slice(data.get(lf.saturating_add(1)..).unwrap_or_default());
            }
        } else {
            self.buf.extend_from_slice(data);
        }
    }

    /// Returns the next complete line, [`Frame::TooLong`] once per overlong line, or `None`
    /// when more input is needed. `max_line` may differ from call to call (command lines and
    /// SASL lines have different limits).
    pub fn next_frame(&mut self, max_line: usize) -> Option<Frame> {
        if self.discarding {
            self.shrink();
            return None;
        }
        let unscanned = self.buf.get(self.scanned..).unwrap_or_default();
        match memchr::memchr(b'\n', unscanned) {
            Some(pos) => {
                let lf = self.scanned.saturating_add(pos);
                let total = lf.saturating_add(1);
                self.scanned = 0;
                if total > max_line {
                    self.buf.advance(total.min(self.buf.len()));
                    return Some(Frame::TooLong);
                }
                let mut line = self.buf.split_to(total.min(self.buf.len()));
                line.truncate(lf);
                if line.last() == Some(&b'\r') {
                    line.truncate(lf.saturating_sub(1));
                }
                Some(Frame::Line(line.freeze()))
            }
            None => {
                self.scanned = self.buf.len();
                if self.buf.len() >= max_line {
                    // Even a LF arriving next would exceed the limit.
                    self.buf.clear();
                    self.scanned = 0;
                    self.discarding = true;
                    self.shrink();
                    return Some(Frame::TooLong);
                }
                self.shrink();
                None
            }
        }
    }

    /// Bytes held (complete and partial lines).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// `true` while dropping the remainder of an overlong line.
    pub fn is_discarding(&self) -> bool {
        self.discarding
    }

    /// Removes and returns the buffered bytes not yet handed out as frames, e.g. to pass the
    /// rest of the input to a multi-line body decoder after a line switched modes. Empty
    /// while discarding an overlong line.
    pub fn take_buffered(&mut self) -> Bytes {
        self.scanned = 0;
        self.buf.split().freeze()
    }

    /// Drops everything buffered (e.g. input pipelined behind `STLS`).
    pub fn clear(&mut self) {
        self.buf = BytesMut::new();
        self.scanned = 0;
        self.discarding = false;
    }

    fn shrink(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > IDLE_CAPACITY {
            self.buf = BytesMut::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(f: &mut LineFramer, max: usize) -> Vec<Frame> {
        std::iter::from_fn(|| f.next_frame(max)).collect()
    }

    fn line(s: &[u8]) -> Frame {
        Frame::Line(Bytes::copy_from_slice(s))
    }

    #[test]
    fn crlf_and_bare_lf() {
        let mut f = LineFramer::new();
        f.push(b"STAT\r\nLIST\nNO");
        assert_eq!(lines(&mut f, 255), vec![line(b"STAT"), line(b"LIST")]);
        assert_eq!(f.buffered(), 2);
        f.push(b"OP\r");
        assert_eq!(lines(&mut f, 255), vec![]);
        f.push(b"\n\r\n");
        assert_eq!(lines(&mut f, 255), vec![line(b"NOOP"), line(b"")]);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn limit_counts_the_terminator() {
        let mut f = LineFramer::new();
        f.push(b"abc\r\n");
        assert_eq!(lines(&mut f, 5), vec![line(b"abc")]);
        f.push(b"abcd\r\n");
        assert_eq!(lines(&mut f, 5), vec![Frame::TooLong]);
        f.push(b"ok\n");
        assert_eq!(lines(&mut f, 5), vec![line(b"ok")]);
    }

    #[test]
    fn overlong_partial_line_is_discarded_without_buffering() {
        let mut f = LineFramer::new();
        f.push(&[b'x'; 10]);
        assert_eq!(lines(&mut f, 10), vec![Frame::TooLong]);
        assert_eq!(f.buffered(), 0);
        assert!(f.is_discarding());
        f.push(&[b'y'; 10_000]);
        assert_eq!(f.buffered(), 0);
        assert_eq!(lines(&mut f, 10), vec![]);
        f.push(b"yy\r\nQUIT\r\n");
        assert!(!f.is_discarding());
        assert_eq!(lines(&mut f, 10), vec![line(b"QUIT")]);
    }

    #[test]
    fn resumes_scanning() {
        let mut f = LineFramer::new();
        for b in b"USER alice" {
            f.push(&[*b]);
            assert_eq!(f.next_frame(255), None);
        }
        assert_eq!(f.scanned, 10);
        f.push(b"\r\n");
        assert_eq!(f.next_frame(255), Some(line(b"USER alice")));
    }
}
