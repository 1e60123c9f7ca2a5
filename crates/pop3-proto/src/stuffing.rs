//! Multi-line bodies: CRLF-counted sizes, an incremental dot-stuffing encoder (server side,
//! with `TOP`'s body-line cutoff) and an incremental un-stuffer (client side).
//!
//! All three work on arbitrary chunks: a line end, a leading dot or the header/body boundary
//! may be split across chunks.

/// The size of `message` as POP3 reports it (RFC 1939 §5 `LIST`, `STAT`): the octets a
/// client receives for `RETR`, before the terminating `.` line. Every line end counts as
/// CRLF (a bare LF counts two octets), and an unterminated last line counts the line end
/// [`DotStuffer::finish`] supplies. Same as [`CrlfSizeCounter`] over one chunk.
pub fn crlf_size(message: &[u8]) -> u64 {
    let mut c = CrlfSizeCounter::new();
    c.update(message);
    c.total()
}

/// Incremental [`crlf_size`] for messages read in chunks.
///
/// A missing final line end is counted: the session sends CRLF before the terminating `.`
/// (RFC 1939 §3 needs the terminator on a line of its own), and clients cannot tell that line
/// end from the message's, so a size without it disagrees with what poplib, curl, fetchmail
/// and Outlook's exact-size check count.
#[derive(Clone, Debug, Default)]
pub struct CrlfSizeCounter {
    size: u64,
    prev_cr: bool,
    /// The last octet counted, if any.
    last: Option<u8>,
}

impl CrlfSizeCounter {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts the next chunk.
    pub fn update(&mut self, chunk: &[u8]) {
        let len = u64::try_from(chunk.len()).unwrap_or(u64::MAX);
        self.size = self.size.saturating_add(len);
        let mut prev_cr = self.prev_cr;
        for lf in memchr::memchr_iter(b'\n', chunk) {
            let before = match lf.checked_sub(1) {
                Some(i) => chunk.get(i) == Some(&b'\r'),
                None => prev_cr,
            };
            if !before {
                self.size = self.size.saturating_add(1);
            }
        }
        if let Some(&last) = chunk.last() {
            prev_cr = last == b'\r';
            self.last = Some(last);
        }
        self.prev_cr = prev_cr;
    }

    /// The size of what has been counted, as a complete message: including the line end
    /// the session adds to an unterminated last line (LF after a final CR, CRLF otherwise).
    pub fn total(&self) -> u64 {
        let supplied = match self.last {
            None | Some(b'\n') => 0,
            Some(b'\r') => 1,
            Some(_) => 2,
        };
        self.size.saturating_add(supplied)
    }
}

/// Incremental dot-stuffing encoder for a `RETR` / `TOP` body (RFC 1939 §3).
///
/// - a line starting with `.` gets another `.` in front, after any line end (CRLF or bare LF);
/// - a bare LF is sent as CRLF (sizes are CRLF-counted, so the output must be too);
/// - with a `TOP` line count, output stops after the header, the blank line and that many
///   body lines; the header/body boundary is found for CRLF and LF line ends;
/// - [`DotStuffer::finish`] ends an unterminated last line with CRLF and adds `.` CRLF.
#[derive(Clone, Debug)]
pub struct DotStuffer {
    at_line_start: bool,
    /// The previous input byte was CR (already emitted).
    prev_cr: bool,
    /// The current line holds nothing but (possibly) a CR so far.
    line_empty: bool,
    in_body: bool,
    /// Body lines still allowed (`None`: whole message).
    remaining: Option<u32>,
    done: bool,
}

impl DotStuffer {
    /// A stuffer for a whole message (`None`) or for `TOP n` (`Some(n)`).
    pub fn new(top_lines: Option<u32>) -> Self {
        Self {
            at_line_start: true,
            prev_cr: false,
            line_empty: true,
            in_body: false,
            remaining: top_lines,
            done: false,
        }
    }

    /// `true` once the `TOP` cutoff has been reached: further input is ignored.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Stuffs a prefix of `input` into `out`, appending at most `max_out` bytes (at least
    /// 2 are needed to make progress). Returns how many input bytes were consumed; after
    /// the cutoff all input is consumed and nothing is written.
    pub fn encode(&mut self, input: &[u8], out: &mut Vec<u8>, max_out: usize) -> usize {
        let mut i = 0usize;
        let mut budget = max_out;
        while i < input.len() {
            if self.done {
                return input.len();
            }
            let rest = input.get(i..).unwrap_or_default();
            if !self.at_line_start && !self.prev_cr {
                // Mid-line run: copy up to the next CR or LF in one go.
                let run = memchr::memchr2(b'\r', b'\n', rest).unwrap_or(rest.len());
                let take = run.min(budget);
                if take > 0 {
                    out.extend_from_slice(rest.get(..take).unwrap_or_default());
                    self.line_empty = false;
                    i = i.saturating_add(take);
                    budget = budget.saturating_sub(take);
                    continue;
                }
                if run > 0 {
                    break; // out of budget
                }
            }
            if budget < 2 {
                break;
            }
            let Some(&b) = rest.first() else { break };
            i = i.saturating_add(1);
            match b {
                b'\n' => {
                    if !self.prev_cr {
                        out.push(b'\r');
                        budget = budget.saturating_sub(1);
                    }
                    out.push(b'\n');
                    budget = budget.saturating_sub(1);
                    self.prev_cr = false;
                    self.end_of_line();
                }
                b'\r' => {
                    if self.at_line_start {
                        self.at_line_start = false;
                    }
                    out.push(b'\r');
                    budget = budget.saturating_sub(1);
                    self.prev_cr = true;
                }
                _ => {
                    if self.at_line_start && b == b'.' {
                        out.push(b'.');
                        budget = budget.saturating_sub(1);
                    }
                    out.push(b);
                    budget = budget.saturating_sub(1);
                    self.at_line_start = false;
                    self.prev_cr = false;
                    self.line_empty = false;
                }
            }
        }
        if self.done { input.len() } else { i }
    }

    fn end_of_line(&mut self) {
        let was_empty = self.line_empty;
        self.at_line_start = true;
        self.line_empty = true;
        let Some(remaining) = self.remaining.as_mut() else {
            return;
        };
        if self.in_body {
            *remaining = remaining.saturating_sub(1);
            if *remaining == 0 {
                self.done = true;
            }
        } else if was_empty {
            self.in_body = true;
            if *remaining == 0 {
                self.done = true;
            }
        }
    }

    /// Appends the end of the body: CRLF if the last line was unterminated, then `.` CRLF.
    /// At most 5 bytes.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.prev_cr {
            out.push(b'\n');
        } else if !self.at_line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        self.done = true;
        self.at_line_start = true;
        self.prev_cr = false;
    }
}

/// Incremental un-stuffer for the body of a multi-line response (client side): removes the
/// leading `.` of stuffed lines and stops at the terminating `.` line. Line ends are kept as
/// received.
#[derive(Clone, Debug)]
pub struct DotUnstuffer {
    state: Unstuff,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unstuff {
    LineStart,
    AfterDot,
    AfterDotCr,
    Mid,
    Done,
}

impl Default for DotUnstuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl DotUnstuffer {
    /// An un-stuffer at the start of a body.
    pub fn new() -> Self {
        Self {
            state: Unstuff::LineStart,
        }
    }

    /// `true` once the terminating line has been consumed.
    pub fn is_done(&self) -> bool {
        self.state == Unstuff::Done
    }

    /// Un-stuffs a prefix of `input` into `out`. Returns the number of bytes consumed: all
    /// of `input`, or fewer when the terminator ended within it (the rest belongs to the next
    /// response).
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> usize {
        let mut i = 0usize;
        while let Some(rest) = input.get(i..) {
            let Some(&b) = rest.first() else { break };
            match self.state {
                Unstuff::Done => return i,
                Unstuff::Mid => {
                    let run =
                        memchr::memchr(b'\n', rest).map_or(rest.len(), |p| p.saturating_add(1));
                    out.extend_from_slice(rest.get(..run).unwrap_or_default());
                    i = i.saturating_add(run);
                    if rest.get(run.saturating_sub(1)) == Some(&b'\n') {
                        self.state = Unstuff::LineStart;
                    }
                    continue;
                }
                Unstuff::LineStart => {
                    self.state = match b {
                        b'.' => Unstuff::AfterDot,
                        b'\n' => {
                            out.push(b);
                            Unstuff::LineStart
                        }
                        _ => {
                            out.push(b);
                            Unstuff::Mid
                        }
                    };
                }
                Unstuff::AfterDot => {
                    self.state = match b {
                        b'\r' => Unstuff::AfterDotCr,
                        b'\n' => Unstuff::Done,
                        _ => {
                            out.push(b);
                            Unstuff::Mid
                        }
                    };
                }
                Unstuff::AfterDotCr => {
                    if b == b'\n' {
                        self.state = Unstuff::Done;
                    } else {
                        // ".\r" followed by something else: not a terminator.
                        out.push(b'\r');
                        out.push(b);
                        self.state = Unstuff::Mid;
                    }
                }
            }
            i = i.saturating_add(1);
        }
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stuff_all(top: Option<u32>, chunks: &[&[u8]], max_out: usize) -> Vec<u8> {
        let mut s = DotStuffer::new(top);
        let mut out = Vec::new();
        for chunk in chunks {
            let mut c = *chunk;
            while !c.is_empty() {
                let before = out.len();
                let n = s.encode(c, &mut out, max_out);
                assert!(out.len() - before <= max_out);
                c = &c[n..];
            }
        }
        s.finish(&mut out);
        out
    }

    fn every_split(top: Option<u32>, msg: &[u8]) -> Vec<u8> {
        let whole = stuff_all(top, &[msg], usize::MAX);
        for cut in 0..=msg.len() {
            let (a, b) = msg.split_at(cut);
            for max_out in [2, 3, 7, 1000] {
                assert_eq!(
                    stuff_all(top, &[a, b], max_out),
                    whole,
                    "split at {cut}, max_out {max_out}"
                );
            }
        }
        whole
    }

    #[test]
    fn sizes() {
        assert_eq!(crlf_size(b""), 0);
        assert_eq!(crlf_size(b"a\r\nb\r\n"), 6);
        assert_eq!(crlf_size(b"a\nb\n"), 6);
        // The line end the session supplies to an unterminated last line is counted.
        assert_eq!(crlf_size(b"a\nb"), 6);
        assert_eq!(crlf_size(b"a\r"), 3);
        assert_eq!(crlf_size(b"a\rb"), 5);
        assert_eq!(crlf_size(b"\n"), 2);
        let mut c = CrlfSizeCounter::new();
        c.update(b"a\r");
        c.update(b"\nb\n");
        assert_eq!(c.total(), 6);
        let mut c = CrlfSizeCounter::new();
        c.update(b"a");
        c.update(b"\n");
        assert_eq!(c.total(), 3);
    }

    proptest::proptest! {
        /// LIST's size is exactly what a client un-stuffs from RETR, whatever the line ends.
        #[test]
        fn size_matches_what_retr_sends(message in proptest::collection::vec(
            proptest::sample::select(vec![b'a', b'.', b'\r', b'\n', b' ']), 0..64,
        )) {
            let stuffed = every_split(None, &message);
            let mut unstuffer = DotUnstuffer::new();
            let mut body = Vec::new();
            unstuffer.decode(&stuffed, &mut body);
            proptest::prop_assert!(unstuffer.is_done());
            proptest::prop_assert_eq!(crlf_size(&message), body.len() as u64);
        }
    }

    #[test]
    fn stuffing() {
        assert_eq!(every_split(None, b""), b".\r\n");
        assert_eq!(every_split(None, b"a\r\n"), b"a\r\n.\r\n");
        assert_eq!(
            every_split(None, b".a\r\n..b\r\n.\r\n"),
            b"..a\r\n...b\r\n..\r\n.\r\n"
        );
        assert_eq!(every_split(None, b"x\n.y\n"), b"x\r\n..y\r\n.\r\n");
        assert_eq!(
            every_split(None, b"no final newline"),
            b"no final newline\r\n.\r\n"
        );
        assert_eq!(every_split(None, b"cr at end\r"), b"cr at end\r\n.\r\n");
        assert_eq!(every_split(None, b"a\rb\n"), b"a\rb\r\n.\r\n");
        assert_eq!(every_split(None, b"\r.x\n"), b"\r.x\r\n.\r\n");
    }

    #[test]
    fn top_cutoff() {
        let crlf = b"Subject: x\r\nFrom: y\r\n\r\nline1\r\n.line2\r\nline3\r\n";
        assert_eq!(
            every_split(Some(0), crlf),
            b"Subject: x\r\nFrom: y\r\n\r\n.\r\n"
        );
        assert_eq!(
            every_split(Some(2), crlf),
            b"Subject: x\r\nFrom: y\r\n\r\nline1\r\n..line2\r\n.\r\n"
        );
        assert_eq!(
            every_split(Some(10), crlf),
            b"Subject: x\r\nFrom: y\r\n\r\nline1\r\n..line2\r\nline3\r\n.\r\n"
        );
        let lf = b"Subject: x\nFrom: y\n\nline1\nline2";
        assert_eq!(
            every_split(Some(0), lf),
            b"Subject: x\r\nFrom: y\r\n\r\n.\r\n"
        );
        assert_eq!(
            every_split(Some(1), lf),
            b"Subject: x\r\nFrom: y\r\n\r\nline1\r\n.\r\n"
        );
        assert_eq!(
            every_split(Some(5), lf),
            b"Subject: x\r\nFrom: y\r\n\r\nline1\r\nline2\r\n.\r\n"
        );
        // No body at all: everything is header.
        assert_eq!(every_split(Some(0), b"A: b\r\n"), b"A: b\r\n.\r\n");
        // Empty first line: the body starts at once.
        assert_eq!(
            every_split(Some(1), b"\r\nbody\r\nmore\r\n"),
            b"\r\nbody\r\n.\r\n"
        );
    }

    #[test]
    fn unstuffing_round_trip() {
        let body = b"..a\r\n...b\r\n..\r\nplain\r\n.\r\n+OK next";
        for cut in 0..=body.len() {
            let mut u = DotUnstuffer::new();
            let mut out = Vec::new();
            let (a, b) = body.split_at(cut);
            let n1 = u.decode(a, &mut out);
            let n2 = if u.is_done() {
                0
            } else {
                u.decode(b, &mut out)
            };
            assert!(u.is_done());
            assert_eq!(out, b".a\r\n..b\r\n.\r\nplain\r\n", "cut {cut}");
            assert_eq!(n1 + n2, body.len() - 8, "consumed, cut {cut}");
        }
        let mut u = DotUnstuffer::new();
        let mut out = Vec::new();
        assert_eq!(u.decode(b"x\n.\n", &mut out), 4);
        assert!(u.is_done());
        assert_eq!(out, b"x\n");
    }
}
