//! The encoder: values write themselves through [`Encoder`], which collects the bytes and
//! remembers where literals start, so a client can send a command as [`Fragment`]s and wait
//! for the server's `+` before each synchronizing literal.
//!
//! ```
//! use cas_imap_proto::encode::{Encoder, Fragment, LiteralMode};
//!
//! let mut out = Encoder::new();
//! out.push_bytes(b"a1 LOGIN ");
//! out.literal(b"alice", LiteralMode::Sync, false);
//! out.push_bytes(b" pw");
//! out.push_crlf();
//! let fragments = out.into_fragments();
//! assert_eq!(fragments[0], Fragment::Line(b"a1 LOGIN {5}\r\n".to_vec()));
//! assert_eq!(fragments[1], Fragment::Literal { data: b"alice".to_vec(), mode: LiteralMode::Sync });
//! assert_eq!(fragments[2], Fragment::Line(b" pw\r\n".to_vec()));
//! ```

pub use crate::types::LiteralMode;

use crate::types::is_quotable;

/// A piece of an encoded message, in sending order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fragment {
    /// Line bytes: they end right after a literal announcement `{n}\r\n` / `{n+}\r\n` /
    /// `~{n}\r\n`, or with the message's final CRLF.
    Line(Vec<u8>),
    /// A literal's octets. With [`LiteralMode::Sync`] a client sends them only after the
    /// server's continuation request.
    Literal {
        /// The octets.
        data: Vec<u8>,
        /// How the literal was announced in the preceding line.
        mode: LiteralMode,
    },
}

/// How the encoder announces literals, whatever mode the value carries. A client picks this
/// from the server's capabilities (RFC 7888).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum LiteralPolicy {
    /// Use each literal's own [`LiteralMode`] (the default; exact round trips).
    #[default]
    AsGiven,
    /// Every literal synchronizing (`{n}`): a server without LITERAL+/LITERAL-.
    Sync,
    /// Every literal non-synchronizing (`{n+}`): a server with `LITERAL+`.
    LiteralPlus,
    /// Non-synchronizing up to 4096 octets, synchronizing above: a server with `LITERAL-`.
    LiteralMinus,
}

/// The largest literal LITERAL- allows to be non-synchronizing (RFC 7888 §4).
pub const LITERAL_MINUS_MAX: usize = 4096;

#[derive(Clone, Copy, Debug)]
struct LiteralMark {
    start: usize,
    end: usize,
    mode: LiteralMode,
}

/// Collects encoded bytes and the positions of literals.
#[derive(Clone, Debug, Default)]
pub struct Encoder {
    buf: Vec<u8>,
    literals: Vec<LiteralMark>,
    policy: LiteralPolicy,
}

impl Encoder {
    /// An empty encoder with [`LiteralPolicy::AsGiven`].
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty encoder announcing literals according to `policy`.
    pub fn with_policy(policy: LiteralPolicy) -> Self {
        Self {
            policy,
            ..Self::default()
        }
    }

    /// The literal policy in use.
    pub fn policy(&self) -> LiteralPolicy {
        self.policy
    }

    /// Appends raw bytes. The caller is responsible for their syntax: typed values use the
    /// validated helpers below.
    pub fn push_bytes(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Appends a single space.
    pub fn push_sp(&mut self) {
        self.buf.push(b' ');
    }

    /// Appends CRLF.
    pub fn push_crlf(&mut self) {
        self.buf.extend_from_slice(b"\r\n");
    }

    /// Appends a decimal number.
    pub fn push_number(&mut self, n: u64) {
        let mut tmp = [0u8; 20];
        let mut i = tmp.len();
        let mut n = n;
        loop {
            i -= 1;
            tmp[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.buf.extend_from_slice(&tmp[i..]);
    }

    /// Appends `number64` (RFC 9051: at most 2^63 - 1); larger values are written as
    /// 2^63 - 1 so the output stays valid syntax.
    pub fn push_number64(&mut self, n: u64) {
        self.push_number(n.min(crate::types::ModSeq::MAX));
    }

    /// Appends `n` zero-padded to `width` digits (dates and times).
    pub fn push_digits(&mut self, n: u32, width: usize) {
        let mut tmp = [b'0'; 10];
        let mut i = tmp.len();
        let mut n = n;
        while n > 0 && i > 0 {
            i -= 1;
            tmp[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        let start = i.min(tmp.len().saturating_sub(width));
        self.buf.extend_from_slice(&tmp[start..]);
    }

    /// Appends `value` as a quoted string, escaping `"` and `\`. Bytes that cannot be quoted
    /// (NUL, CR, LF, invalid UTF-8) make it fall back to a literal, so the output is always
    /// valid syntax.
    pub fn push_quoted(&mut self, value: &[u8]) {
        if !is_quotable(value) {
            let binary = memchr::memchr(0, value).is_some();
            self.literal(value, LiteralMode::Sync, binary);
            return;
        }
        self.buf.reserve(value.len() + 2);
        self.buf.push(b'"');
        let mut rest = value;
        while let Some(i) = memchr::memchr2(b'"', b'\\', rest) {
            self.buf.extend_from_slice(&rest[..i]);
            self.buf.push(b'\\');
            self.buf.push(rest[i]);
            rest = &rest[i + 1..];
        }
        self.buf.extend_from_slice(rest);
        self.buf.push(b'"');
    }

    /// Appends a literal: the announcement (`{n}`, `{n+}`, `~{n}` ...) and CRLF, then the
    /// octets. The mode written is `mode` adjusted by the encoder's [`LiteralPolicy`].
    pub fn literal(&mut self, data: &[u8], mode: LiteralMode, binary: bool) {
        let mode = match self.policy {
            LiteralPolicy::AsGiven => mode,
            LiteralPolicy::Sync => LiteralMode::Sync,
            LiteralPolicy::LiteralPlus => LiteralMode::NonSync,
            LiteralPolicy::LiteralMinus if data.len() <= LITERAL_MINUS_MAX => LiteralMode::NonSync,
            LiteralPolicy::LiteralMinus => LiteralMode::Sync,
        };
        if binary {
            self.buf.push(b'~');
        }
        self.buf.push(b'{');
        self.push_number(data.len() as u64);
        if mode == LiteralMode::NonSync {
            self.buf.push(b'+');
        }
        self.buf.extend_from_slice(b"}\r\n");
        let start = self.buf.len();
        self.buf.extend_from_slice(data);
        self.literals.push(LiteralMark {
            start,
            end: self.buf.len(),
            mode,
        });
    }

    /// The bytes written so far (lines and literals concatenated).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// All bytes, concatenated, as they go on the wire.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// The bytes split at literal boundaries, for a client that must wait for `+`.
    pub fn into_fragments(self) -> Vec<Fragment> {
        let mut out = Vec::with_capacity(self.literals.len() * 2 + 1);
        let mut pos = 0;
        for mark in &self.literals {
            if mark.start > pos {
                out.push(Fragment::Line(self.buf[pos..mark.start].to_vec()));
            }
            out.push(Fragment::Literal {
                data: self.buf[mark.start..mark.end].to_vec(),
                mode: mark.mode,
            });
            pos = mark.end;
        }
        if pos < self.buf.len() {
            out.push(Fragment::Line(self.buf[pos..].to_vec()));
        }
        out
    }
}

/// A value that can write itself in IMAP syntax. Encoding is total: every value of a type
/// implementing this trait encodes to valid syntax.
pub trait Encode {
    /// Appends the value's wire form to `out`.
    fn encode(&self, out: &mut Encoder);
}

impl<T: Encode + ?Sized> Encode for &T {
    fn encode(&self, out: &mut Encoder) {
        (**self).encode(out);
    }
}

/// Encodes `value` with [`LiteralPolicy::AsGiven`] and returns the bytes.
pub fn to_bytes<T: Encode + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Encoder::new();
    value.encode(&mut out);
    out.into_bytes()
}

/// Encodes `value` with `policy` and returns the fragments.
pub fn to_fragments<T: Encode + ?Sized>(value: &T, policy: LiteralPolicy) -> Vec<Fragment> {
    let mut out = Encoder::with_policy(policy);
    value.encode(&mut out);
    out.into_fragments()
}

/// Writes `items` separated by single spaces.
pub(crate) fn join<T: Encode>(items: &[T], out: &mut Encoder) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_sp();
        }
        item.encode(out);
    }
}

/// Writes `"(" items joined by SP ")"`.
pub(crate) fn paren_list<T: Encode>(items: &[T], out: &mut Encoder) {
    out.push_bytes(b"(");
    join(items, out);
    out.push_bytes(b")");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_digits() {
        let mut e = Encoder::new();
        e.push_number(0);
        e.push_sp();
        e.push_number(u64::MAX);
        e.push_sp();
        e.push_digits(7, 2);
        e.push_sp();
        e.push_digits(1994, 4);
        e.push_sp();
        e.push_digits(0, 2);
        assert_eq!(e.as_bytes(), b"0 18446744073709551615 07 1994 00");
    }

    #[test]
    fn quoted_escapes() {
        let mut e = Encoder::new();
        e.push_quoted(b"a\"b\\c");
        assert_eq!(e.into_bytes(), b"\"a\\\"b\\\\c\"");
    }

    #[test]
    fn quoted_falls_back_to_literal() {
        let mut e = Encoder::new();
        e.push_quoted(b"a\r\nb");
        assert_eq!(e.into_bytes(), b"{4}\r\na\r\nb");
    }

    #[test]
    fn policies() {
        for (policy, len, expect) in [
            (LiteralPolicy::AsGiven, 3, &b"{3}\r\n"[..]),
            (LiteralPolicy::LiteralPlus, 3, b"{3+}\r\n"),
            (LiteralPolicy::LiteralMinus, 3, b"{3+}\r\n"),
            (LiteralPolicy::LiteralMinus, 5000, b"{5000}\r\n"),
        ] {
            let mut e = Encoder::with_policy(policy);
            e.literal(&vec![b'x'; len], LiteralMode::Sync, false);
            let frags = e.into_fragments();
            assert_eq!(frags[0], Fragment::Line(expect.to_vec()));
        }
        let mut e = Encoder::with_policy(LiteralPolicy::Sync);
        e.literal(b"\0", LiteralMode::NonSync, true);
        assert_eq!(e.into_bytes(), b"~{1}\r\n\0");
    }
}
