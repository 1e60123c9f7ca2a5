//! The DCE/RPC remote management interface `mgmt` (C706 Appendix Q, MS-RPCE §2.2.1.3 /
//! §3.1.1.5.1 for Windows' behaviour): UUID `afa8bd80-7d8a-11c9-bef4-08002b102989`, version
//! 1.0, five operations, NDR 2.0 little- or big-endian stubs.
//!
//! Wire shapes (C706 IDL; impacket's `mgmt.py` and Samba's `mgmt.idl` agree on them):
//!
//! | opnum | operation | request stub | response stub |
//! |---|---|---|---|
//! | 0 | `inq_if_ids` | empty | unique pointer to `{count; [size_is(count)] unique if_id_p[]}`, `status` |
//! | 1 | `inq_stats` | `count` | `count`, conformant `unsigned32[]`, `status` |
//! | 2 | `is_server_listening` | empty | `status`, `boolean32` result |
//! | 3 | `stop_server_listening` | empty | `status` |
//! | 4 | `inq_princ_name` | `authn_proto`, `princ_name_size` | conformant varying `char[]` string, `status` |

use rpch_framing::pdu::{AuthType, SyntaxId, Uuid};

/// The `mgmt` interface: `afa8bd80-7d8a-11c9-bef4-08002b102989` v1.0.
pub const MGMT_INTERFACE: SyntaxId = SyntaxId::new(
    Uuid::from_fields(
        0xafa8_bd80,
        0x7d8a,
        0x11c9,
        [0xbe, 0xf4, 0x08, 0x00, 0x2b, 0x10, 0x29, 0x89],
    ),
    1,
    0,
);

/// `rpc_s_ok`.
pub const STATUS_OK: u32 = 0;
/// `ERROR_ACCESS_DENIED` / `rpc_s_access_denied` as Windows returns it for
/// `stop_server_listening` from a remote caller (MS-RPCE §3.1.1.5.1.4).
pub const STATUS_ACCESS_DENIED: u32 = 5;
/// `ERROR_INSUFFICIENT_BUFFER`: the principal name does not fit in `princ_name_size`.
pub const STATUS_INSUFFICIENT_BUFFER: u32 = 122;
/// `RPC_S_UNKNOWN_AUTHN_SERVICE` (1747): `inq_princ_name` for a security provider the
/// server does not run.
pub const STATUS_UNKNOWN_AUTHN_SERVICE: u32 = 1747;

/// Number of counters `inq_stats` knows (C706 `rpc_c_stats_array_max_size`): calls in,
/// calls out, packets in, packets out.
pub const STATS_COUNT: usize = 4;

/// What the management operations report about the server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MgmtView<'a> {
    /// The interfaces the server offers, in `inq_if_ids` order.
    pub interfaces: &'a [SyntaxId],
    /// Counters for `inq_stats`: calls received, calls sent (always 0 for a server), PDUs
    /// received, PDUs sent.
    pub stats: [u32; STATS_COUNT],
    /// The principal name `inq_princ_name` returns for NTLM and SPNEGO.
    pub principal_name: &'a str,
}

/// The outcome of one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MgmtOutcome {
    /// The response stub.
    Response(Vec<u8>),
    /// The opnum is not one of the five (`nca_op_rng_error`).
    UnknownOpnum,
    /// The request stub does not decode: answered with the `nca_s_fault_ndr` /
    /// `rpc_x_bad_stub_data` fault.
    BadStub,
}

/// An NDR 2.0 writer in the caller's byte order. Alignment is relative to the start of the
/// stub, which NDR requires to be 8-aligned in the PDU (C706 §14.2.2; request and response
/// headers are 24 bytes).
struct NdrWriter {
    out: Vec<u8>,
    little_endian: bool,
}

impl NdrWriter {
    fn new(little_endian: bool) -> Self {
        Self {
            out: Vec::with_capacity(64),
            little_endian,
        }
    }

    fn align(&mut self, n: usize) {
        while !self.out.len().is_multiple_of(n) {
            self.out.push(0);
        }
    }

    fn u16(&mut self, v: u16) {
        self.align(2);
        let b = if self.little_endian {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        };
        self.out.extend_from_slice(&b);
    }

    fn u32(&mut self, v: u32) {
        self.align(4);
        let b = if self.little_endian {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        };
        self.out.extend_from_slice(&b);
    }

    /// A UUID as the NDR `GUID` structure: u32, u16, u16, then 8 bytes as they are.
    fn uuid(&mut self, u: &Uuid) {
        let (a, b, c, d) = u.to_fields();
        self.u32(a);
        self.u16(b);
        self.u16(c);
        self.out.extend_from_slice(&d);
    }
}

/// Reads the `unsigned32` at `index` (4-aligned positions) of a request stub.
fn read_u32(stub: &[u8], index: usize, little_endian: bool) -> Option<u32> {
    let b: [u8; 4] = stub.get(index * 4..index * 4 + 4)?.try_into().ok()?;
    Some(if little_endian {
        u32::from_le_bytes(b)
    } else {
        u32::from_be_bytes(b)
    })
}

/// Executes one management call. `little_endian` is the request's data representation,
/// which the response uses too (C706 §14.1: the receiver makes it right).
pub fn dispatch(view: &MgmtView<'_>, opnum: u16, stub: &[u8], little_endian: bool) -> MgmtOutcome {
    let mut w = NdrWriter::new(little_endian);
    match opnum {
        0 => {
            // NDR ignores trailing bytes after the last [in] parameter; nothing to read here.
            inq_if_ids(&mut w, view.interfaces);
        }
        1 => {
            let Some(requested) = read_u32(stub, 0, little_endian) else {
                return MgmtOutcome::BadStub;
            };
            let n = (requested as usize).min(STATS_COUNT);
            // [in, out] count, then the conformant array sized by it.
            w.u32(n as u32);
            w.u32(n as u32);
            for v in &view.stats[..n] {
                w.u32(*v);
            }
            w.u32(STATUS_OK);
        }
        2 => {
            // status first ([out] parameters in order), then the boolean32 return value.
            w.u32(STATUS_OK);
            w.u32(1);
        }
        3 => {
            // A remote caller may not stop the server (MS-RPCE §3.1.1.5.1.4).
            w.u32(STATUS_ACCESS_DENIED);
        }
        4 => {
            let (Some(authn_proto), Some(size)) = (
                read_u32(stub, 0, little_endian),
                read_u32(stub, 1, little_endian),
            ) else {
                return MgmtOutcome::BadStub;
            };
            inq_princ_name(&mut w, view.principal_name, authn_proto, size);
        }
        _ => return MgmtOutcome::UnknownOpnum,
    }
    MgmtOutcome::Response(w.out)
}

fn inq_if_ids(w: &mut NdrWriter, interfaces: &[SyntaxId]) {
    let n = interfaces.len() as u32;
    // Referent id of the unique pointer to the vector (any non-zero value; Windows uses
    // 0x00020000 and counts up by 4).
    let mut referent = 0x0002_0000u32;
    w.u32(referent);
    // Conformant structure: max_count first, then count, then the array of pointers.
    w.u32(n);
    w.u32(n);
    for _ in interfaces {
        referent += 4;
        w.u32(referent);
    }
    // Deferred pointees: rpc_if_id_t { uuid; vers_major; vers_minor }.
    for i in interfaces {
        w.uuid(&i.uuid);
        w.u16(i.major());
        w.u16(i.minor());
    }
    w.u32(STATUS_OK);
}

fn inq_princ_name(w: &mut NdrWriter, name: &str, authn_proto: u32, size: u32) {
    let known =
        authn_proto == u32::from(AuthType::NTLM.0) || authn_proto == u32::from(AuthType::SPNEGO.0);
    // The string is sent with its terminating NUL, which princ_name_size counts.
    let needed = name.len() as u64 + 1;
    let status = if !known {
        STATUS_UNKNOWN_AUTHN_SERVICE
    } else if needed > u64::from(size) {
        STATUS_INSUFFICIENT_BUFFER
    } else {
        STATUS_OK
    };
    // Conformant varying array: max_count (the caller's size), offset, actual_count.
    w.u32(size);
    w.u32(0);
    if status == STATUS_OK {
        w.u32(needed as u32);
        w.out.extend_from_slice(name.as_bytes());
        w.out.push(0);
    } else {
        w.u32(0);
    }
    w.u32(status);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rpch_framing::pdu::SyntaxId;

    fn view<'a>(interfaces: &'a [SyntaxId]) -> MgmtView<'a> {
        MgmtView {
            interfaces,
            stats: [7, 0, 9, 8],
            principal_name: "cas01",
        }
    }

    fn response(o: MgmtOutcome) -> Vec<u8> {
        match o {
            MgmtOutcome::Response(r) => r,
            other => panic!("{other:?}"),
        }
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn inq_if_ids_known_answer() {
        let ifs = [MGMT_INTERFACE];
        let r = response(dispatch(&view(&ifs), 0, &[], true));
        // ptr, max_count 1, count 1, ptr, GUID afa8bd80-7d8a-11c9-bef4-08002b102989,
        // 1, 0, status 0.
        assert_eq!(
            r,
            hex("00000200 01000000 01000000 04000200
                 80bda8af 8a7d c911 bef408002b102989 0100 0000
                 00000000")
        );
    }

    #[test]
    fn inq_if_ids_big_endian() {
        let ifs = [MGMT_INTERFACE];
        let r = response(dispatch(&view(&ifs), 0, &[], false));
        assert_eq!(&r[16..24], &hex("afa8bd80 7d8a 11c9"));
        assert_eq!(&r[32..36], &hex("0001 0000"));
    }

    #[test]
    fn inq_stats_clamps_count() {
        let r = response(dispatch(&view(&[]), 1, &hex("0a000000"), true));
        assert_eq!(
            r,
            hex("04000000 04000000 07000000 00000000 09000000 08000000 00000000")
        );
        let r = response(dispatch(&view(&[]), 1, &hex("01000000"), true));
        assert_eq!(r, hex("01000000 01000000 07000000 00000000"));
        assert_eq!(dispatch(&view(&[]), 1, &[1, 0], true), MgmtOutcome::BadStub);
    }

    #[test]
    fn listening_and_stop() {
        assert_eq!(
            response(dispatch(&view(&[]), 2, &[], true)),
            hex("00000000 01000000")
        );
        assert_eq!(
            response(dispatch(&view(&[]), 3, &[], true)),
            hex("05000000")
        );
    }

    #[test]
    fn inq_princ_name_cases() {
        // NTLM, room for "cas01\0".
        let r = response(dispatch(&view(&[]), 4, &hex("0a000000 00010000"), true));
        assert_eq!(
            r,
            hex("00010000 00000000 06000000 636173303100 0000 00000000")
        );
        // Too small: status ERROR_INSUFFICIENT_BUFFER, empty string.
        let r = response(dispatch(&view(&[]), 4, &hex("0a000000 05000000"), true));
        assert_eq!(r, hex("05000000 00000000 00000000 7a000000"));
        // Unknown provider (Kerberos here).
        let r = response(dispatch(&view(&[]), 4, &hex("10000000 00010000"), true));
        assert_eq!(&r[12..], &hex("d3060000"));
        assert_eq!(
            dispatch(&view(&[]), 4, &hex("0a000000"), true),
            MgmtOutcome::BadStub
        );
    }

    #[test]
    fn unknown_opnum() {
        assert_eq!(
            dispatch(&view(&[]), 5, &[], true),
            MgmtOutcome::UnknownOpnum
        );
        assert_eq!(
            dispatch(&view(&[]), u16::MAX, &[], true),
            MgmtOutcome::UnknownOpnum
        );
    }
}
