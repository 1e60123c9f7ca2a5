//! Sans-IO RPC over HTTP v2 (MS-RPCH) and DCE/RPC connection-oriented PDUs: the transport of
//! Outlook Anywhere.
//!
//! # What this crate is
//!
//! - [`pdu`]: the 16-byte common header (C706 §12.6.1: version 5.0/5.1, every `pfc_flags`
//!   bit, little- and big-endian data representation) and the body of every
//!   connection-oriented PDU — request, response, fault, bind, bind_ack, bind_nak,
//!   alter_context, alter_context_resp, rpc_auth_3, shutdown, co_cancel, orphaned — with
//!   presentation context lists, NDR / NDR64 / bind-time feature negotiation syntaxes, result
//!   lists, the secondary address, and the `sec_trailer` + auth verifier (MS-RPCE §2.2.2).
//!   Decoding is zero-copy: stub data and verifiers are [`bytes::Bytes`] slices of the input.
//!   [`pdu::Reassembler`] joins request/response fragments per call within limits.
//! - [`rts`]: the 15 RTS commands (MS-RPCH §2.2.3.5) with their value ranges enforced, the
//!   RTS header (§2.2.3.6.1), and a constructor plus a recognizer for each of the 50 named RTS
//!   PDUs of §2.2.4 (CONN/A1…C2, IN_R1, IN_R2, OUT_R1, OUT_R2, Keep-Alive, Ping Traffic Sent
//!   Notify, Echo, Ping, FlowControlAck, FlowControlAckWithDestination).
//! - [`codec`]: the framer. [`codec::split_pdu`] cuts whole PDUs out of a byte stream by
//!   `frag_length` without parsing bodies (what a proxy forwards); [`codec::PduDecoder`]
//!   also decodes them and can be wrapped as a `tokio_util::codec::Decoder`.
//! - [`http`]: RPC_IN_DATA / RPC_OUT_DATA request heads, response heads, the echo request and
//!   channel lifetime accounting (MS-RPCH §2.1.2).
//! - [`target`]: the `/rpc/rpcproxy.dll?server:port` target, validated strictly, and the
//!   allow list of backends a proxy may reach.
//! - [`channel`]: inbound-proxy, outbound-proxy and client channel machines (MS-RPCH §3.2)
//!   with flow control, keep-alive, connection time-out and channel recycling.
//!
//! # What it is not
//!
//! It does no I/O, reads no clock, spawns nothing and holds no global state: bytes go in and
//! out of the functions and machines, and time is passed in as `now: Instant`. It does not
//! authenticate HTTP requests, run NTLM/SPNEGO, sign or seal stub data (verifiers are carried,
//! not checked), or interpret NDR stub data. RPC over HTTP v1 (`RPC_CONNECT`) is not supported.
//!
//! # Limits
//!
//! Every size is bounded by [`pdu::Limits`], with its reason documented on each field:
//! `max_frag_length` (default 65535, the largest a 16-bit `frag_length` can announce),
//! `max_reassembled_stub` (4 MiB per call), `max_fragments` (4096 per call) and
//! `max_pending_calls` (16 calls reassembled at once). Oversized input is refused from the
//! header alone, before it is buffered. RTS values outside the MS-RPCH ranges are refused.
//! The HTTP layer has its own limits ([`http`]).
//!
//! # Example
//!
//! ```
//! use bytes::BytesMut;
//! use rpch_framing::codec::{split_pdu, PduDecoder};
//! use rpch_framing::pdu::{Bind, ContextElement, Limits, PacketType, Pdu, PduHeader, SyntaxId, Uuid};
//! use rpch_framing::rts::{Cookie, RtsPdu, RtsPduKind};
//!
//! // A client opens the OUT channel with CONN/A1 (MS-RPCH §2.2.4.2) ...
//! let mut stream = BytesMut::new();
//! RtsPdu::conn_a1(1, Cookie([1; 16]), Cookie([2; 16]), 65_536).encode(&mut stream);
//! // ... and later binds to the endpoint mapper over NDR.
//! let epm = Uuid::parse_str("e1af8308-5d1f-11c9-91a4-08002b14a0fa").unwrap();
//! let bind = Bind {
//!     max_xmit_frag: 5840,
//!     max_recv_frag: 5840,
//!     assoc_group_id: 0,
//!     contexts: vec![ContextElement {
//!         context_id: 0,
//!         abstract_syntax: SyntaxId::new(epm, 3, 0),
//!         transfer_syntaxes: vec![SyntaxId::NDR],
//!     }],
//!     auth: None,
//! };
//! Pdu::Bind(bind.clone()).encode(&PduHeader::new(PacketType::Bind, 1), &mut stream)?;
//!
//! // A proxy splits PDUs without parsing bodies and acts on the RTS ones.
//! let limits = Limits::default();
//! let raw = split_pdu(&mut stream, &limits)?.expect("a whole PDU");
//! let conn_a1 = raw.rts().expect("an RTS PDU")?;
//! assert_eq!(conn_a1.kind(), Some(RtsPduKind::ConnA1));
//! assert_eq!(conn_a1.receive_window_size(), Some(65_536));
//!
//! // A server decodes whole PDUs; the body is paired with its header (call_id, flags).
//! let mut decoder = PduDecoder::new(limits);
//! let decoded = decoder.decode(&mut stream)?.expect("a whole PDU");
//! assert_eq!(decoded.header.call_id, 1);
//! assert_eq!(decoded.pdu, Pdu::Bind(bind));
//! assert!(decoder.decode(&mut stream)?.is_none());
//! # Ok::<(), rpch_framing::pdu::PduError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod channel;
pub mod codec;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod pdu;
pub mod rts;
pub mod target;
