//! RPC over HTTP v2 channel machines (MS-RPCH §3.2), sans-IO with time passed in.
//!
//! A virtual connection (§1.3) is a pair of HTTP channels between client and proxy — the IN
//! channel (an `RPC_IN_DATA` request body, client → inbound proxy) and the OUT channel (an
//! `RPC_OUT_DATA` response body, outbound proxy → client) — plus, on the proxy side, one TCP
//! connection per channel to an RPC server that greets with `ncacn_http/1.0`. This module has:
//!
//! - [`InboundProxy`]: one IN channel and its backend stream (§3.2.3);
//! - [`OutboundProxy`]: one OUT channel and its backend stream (§3.2.4);
//! - [`Backend::Local`] mode for both, *merged* with a local RPC server (the proxy is the
//!   server): A3 on A1, C2 once both A1 and B1 have arrived, with a [`VirtualConnectionTable`]
//!   pairing the two channels (separate TCP connections) by virtual connection cookie;
//! - [`Client`]: the client's side of a virtual connection (§3.2.2), used by tests and by a
//!   connectivity tester;
//! - [`ReceiveWindow`] / [`SendWindow`]: flow control (§3.2.1.1.5, §3.2.1.4.1, §3.2.1.5.1).
//!
//! # Shape
//!
//! Every machine has the crate-wide four kinds of methods: inputs `handle_*(now, ..)` that never
//! fail (a fault becomes [`ProxyEvent::Closed`]), commands that only queue, outputs
//! `poll_event` / `poll_transmit` / `poll_backend_transmit` / `poll_timeout` to drain in that
//! order after every input, and getters (`wants_input`, `is_closed`, ...).
//!
//! # Pumping bytes (relay)
//!
//! A forwarding proxy channel is driven like this; the same loop is what a relay throughput
//! bench measures. The HTTP request head was parsed (and authenticated, and its target checked
//! against the allow list) by the owner; the machine sees body bytes only.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use bytes::BytesMut;
//! use rpch_framing::channel::{Backend, InboundProxy, ProxyConfig, ProxyEvent};
//! use rpch_framing::rts::{Cookie, RtsPdu};
//! use rpch_framing::target::RpcTarget;
//!
//! let now = Instant::now();
//! // The target already passed `AllowList::check`.
//! let target = RpcTarget::new(std::net::Ipv4Addr::LOCALHOST, 6001);
//! let mut proxy = InboundProxy::new(
//!     Arc::new(ProxyConfig::default()), now, Backend::Forward(target), 1 << 30, None);
//!
//! // The client's CONN/B1 arrives on the IN channel body.
//! let mut b1 = BytesMut::new();
//! RtsPdu::conn_b1(1, Cookie([1; 16]), Cookie([2; 16]), 1 << 30, 300_000, Cookie([3; 16]))
//!     .encode(&mut b1);
//! proxy.handle_input(now, &b1);
//! while let Some(event) = proxy.poll_event() {
//!     if let ProxyEvent::BackendConnectRequested(_target) = event {
//!         // Connect a TCP socket to the target, then:
//!         proxy.handle_backend_connected(now);
//!     }
//! }
//! let mut to_backend = Vec::new();
//! while proxy.poll_backend_transmit(&mut to_backend) > 0 {} // CONN/B2, 128 bytes
//! assert_eq!(to_backend.len(), 128);
//!
//! // The server greets and answers CONN/B3: RPC PDUs now flow to it as they arrive.
//! let mut from_backend = b"ncacn_http/1.0".to_vec();
//! let mut b3 = BytesMut::new();
//! RtsPdu::conn_b3(65536, 1).encode(&mut b3);
//! from_backend.extend_from_slice(&b3);
//! proxy.handle_backend_input(now, &from_backend);
//! assert!(matches!(proxy.poll_event(), Some(ProxyEvent::Opened)));
//! # let mut out = Vec::new();
//! # assert_eq!(proxy.poll_transmit(&mut out), 0);
//! // In a driver loop, after every input: poll_event, poll_transmit, poll_backend_transmit,
//! // then poll_timeout to arm the timer; read a socket only while wants_input() (client) or
//! // wants_backend_input() (backend) is true — that is how back-pressure reaches TCP.
//! ```
//!
//! # Interoperability choices
//!
//! - The backend's `ncacn_http/1.0` greeting (§2.1.2.1.7) is checked and stripped; a backend
//!   that sends none is accepted, as §3.2.3.5.12 and §3.2.4.5.15 require, but a different
//!   greeting closes the channel ([`ChannelError::BadGreeting`]).
//! - The OUT channel carries the response head, CONN/A3 and CONN/C2 and nothing in between.
//! - They never send an RTS PDU whose flags equal exactly RECYCLE_CHANNEL to a client
//!   (OUT_R1/A2, OUT_R2/A2): impacket raises on it. A backend's OUT_R1/A1 or OUT_R2/A1 is
//!   reported ([`ProxyEvent::RecycleRequestSuppressed`]) instead of forwarded, and OUT channel
//!   recycling is started by the client, which opens a replacement OUT channel on its own
//!   (OUT_R1/A3, see [`Client::recycle_out_channel`]).
//! - Recycling always follows the R1 sequences through the server (IN_R1, OUT_R1), which a
//!   server must support whichever proxy the successor reaches; the R2 shortcuts (both
//!   channels on one proxy) are not used.
//! - The inbound proxy turns the client's ClientKeepalive into a
//!   [`ProxyEvent::BackendKeepaliveChanged`] for TCP keep-alive on the backend connection; MS-RPCH
//!   defines no RTS keep-alive from the inbound proxy to the server.
//! - The outbound proxy pings the client after half the connection timeout of silence and
//!   reports ping bytes to the server (Ping Traffic Sent Notify) once more than 1031 piled up,
//!   as Windows does (MS-RPCH <50>).
//! - Acknowledgements follow Windows' rule (<27>): a FlowControlAck when the sender's view of
//!   our free window falls below half of it.
//! - A channel that fails before it answered its request answers `503 RPC Error`
//!   ([`CloseReason::rpc_error`]).
//!
//! # What the machines do not do
//!
//! They do not authenticate (the HTTP server did that before handing the channel over) and do
//! not choose backends: the [`RpcTarget`] given to the constructor
//! **must already have passed the allow list** ([`AllowList::check`](crate::target::AllowList));
//! the machine forwards to it blindly.

mod client;
mod flow;
#[doc(hidden)]
pub mod fuzzing;
mod inbound;
mod link;
mod outbound;
mod pdus;
mod table;

use std::time::Duration;

pub use client::{Client, ClientChannelId, ClientConfig, ClientCookies, ClientEvent, ClientState};
pub use flow::{
    AckValues, FlowError, MAX_RECEIVE_WINDOW, MIN_RECEIVE_WINDOW, ReceiveWindow, SendWindow,
};
pub use inbound::{InboundProxy, InboundState};
pub use outbound::{OutboundProxy, OutboundState};
pub use table::{Pairing, TableError, VirtualConnectionTable};

use crate::pdu::{Limits, PacketType, PduError};
use crate::rts::{Cookie, RtsPdu};
use crate::target::RpcTarget;

/// The greeting an `ncacn_http` RPC server sends first on every TCP connection (MS-RPCH
/// §2.1.2.1.7, "legacy server response"): exactly these 14 bytes.
pub const NCACN_HTTP_GREETING: &[u8; 14] = b"ncacn_http/1.0";

/// The RPC over HTTP protocol version these machines speak (MS-RPCH §2.2.3.5.7: version 1).
pub const PROTOCOL_VERSION: u32 = 1;

/// Where a proxy channel's traffic goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Forward to an RPC server at this `server:port` over TCP. The target **must** already
    /// have passed [`AllowList::check`](crate::target::AllowList::check).
    Forward(RpcTarget),
    /// Merged mode: this process is also the RPC server.
    Local,
}

/// Limits and timers of the proxy machines. Share one value between all channels (`Arc`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyConfig {
    /// Our receive window for traffic we receive (client → inbound proxy, server → outbound
    /// proxy). Default 65536 bytes: the Windows RPC proxy default, inside the 8–256 KiB range of
    /// MS-RPCH §2.2.3.5.1.
    pub receive_window: u32,
    /// The ConnectionTimeout we announce (CONN/A3, B2, C2). Default 120 s, the smallest value
    /// §2.2.3.5.3 allows: pings every minute keep NATs and load balancers from dropping idle
    /// channels, at 20 bytes a ping.
    pub connection_timeout: Duration,
    /// Content-Length of the OUT channel response (§2.1.2.1.4: 128 KiB–2 GiB). Default 1 GiB,
    /// what Windows sends and impacket expects.
    pub out_channel_content_length: u32,
    /// A channel whose client sent nothing for this long is closed. Default 2 × the connection
    /// timeout: a live client pings at least once per connection timeout (§3.2.2.6.1).
    pub idle_timeout: Duration,
    /// How long the backend may take to send its greeting and finish the CONN or recycling
    /// exchange. Default 30 s.
    pub backend_timeout: Duration,
    /// Refuse a peer that sends more RPC PDU bytes than our receive window allows
    /// ([`FlowError::WindowExceeded`]). Default false: such bytes are queued, up to
    /// [`max_buffered`](Self::max_buffered) ([`CloseReason::BufferLimit`] beyond). impacket
    /// never looks at the window it is given (it writes requests as fast as it can), so a strict
    /// proxy would cut it off on any burst larger than the window while the server is slow.
    pub strict_receive_window: bool,
    /// PDU framing limits (frag_length bound).
    pub pdu_limits: Limits,
    /// Above this many bytes waiting for one stream, the machine stops asking for input that
    /// would add to it (`wants_input` false). Default 256 KiB (four default windows).
    pub high_watermark: usize,
    /// Hard cap on bytes waiting for one stream: a peer that keeps sending past
    /// `wants_input() == false` is closed with [`CloseReason::BufferLimit`]. Default 1 MiB.
    pub max_buffered: usize,
    /// Most bytes one `poll_transmit` call hands out. Default 64 KiB.
    pub max_transmit_chunk: usize,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            receive_window: 65536,
            connection_timeout: Duration::from_secs(120),
            out_channel_content_length: 1 << 30,
            idle_timeout: Duration::from_secs(240),
            backend_timeout: Duration::from_secs(30),
            strict_receive_window: false,
            pdu_limits: Limits::default(),
            high_watermark: 256 * 1024,
            max_buffered: 1024 * 1024,
            max_transmit_chunk: 64 * 1024,
        }
    }
}

/// A protocol rule broken by a peer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// Bytes that are not a valid PDU.
    #[error("malformed PDU: {0}")]
    Pdu(#[from] PduError),
    /// A flow-control rule was broken.
    #[error("flow control: {0}")]
    Flow(#[from] FlowError),
    /// An RTS PDU that is not allowed in this state (or not known at all).
    #[error("unexpected RTS PDU (flags {flags:#06x}, {commands} commands) in state {state}")]
    UnexpectedRts {
        /// Flags of the PDU.
        flags: u16,
        /// Number of commands.
        commands: usize,
        /// State of the machine.
        state: &'static str,
    },
    /// An RPC PDU where none may be (before the channel is set up, or the wrong direction).
    #[error("unexpected {packet_type:?} PDU in state {state}")]
    UnexpectedRpc {
        /// Its packet type.
        packet_type: PacketType,
        /// State of the machine.
        state: &'static str,
    },
    /// The backend did not greet with `ncacn_http/1.0`.
    #[error("backend greeting was not ncacn_http/1.0")]
    BadGreeting,
    /// More bytes than the channel's Content-Length allows (§2.1.2.1.1, §2.1.2.1.2).
    #[error("channel lifetime of {lifetime} bytes exceeded")]
    LifetimeExceeded {
        /// The lifetime.
        lifetime: u64,
    },
    /// The peer's receive window is outside §2.2.3.5.1's 8–256 KiB.
    #[error("receive window {0} outside 8 KiB..=256 KiB")]
    BadReceiveWindow(u32),
    /// The HTTP response head on a client's OUT channel is malformed or not `200`.
    #[error("bad OUT channel response head: {0}")]
    BadResponseHead(&'static str),
}

/// RPC_S_SERVER_UNAVAILABLE (MS-ERREF): the error code of the `503 RPC Error` response when
/// the backend cannot be reached.
pub const RPC_S_SERVER_UNAVAILABLE: u32 = 0x6BA;
/// RPC_S_PROTOCOL_ERROR (MS-ERREF): the error code of the `503 RPC Error` response when the
/// client broke the protocol.
pub const RPC_S_PROTOCOL_ERROR: u32 = 0x6C0;

impl CloseReason {
    /// The RPC error code a channel that has not answered its HTTP request yet reports in its
    /// `503 RPC Error` response (MS-RPCH §2.1.2.1.3), or `None` when no response is due (the
    /// client left, or the owner closed).
    pub fn rpc_error(&self) -> Option<u32> {
        match self {
            Self::ClientClosed | Self::Local | Self::Recycled => None,
            Self::ClientError(_) | Self::IdleTimeout | Self::BufferLimit => {
                Some(RPC_S_PROTOCOL_ERROR)
            }
            Self::BackendClosed
            | Self::BackendError(_)
            | Self::BackendTimeout
            | Self::BackendUnreachable => Some(RPC_S_SERVER_UNAVAILABLE),
        }
    }
}

impl ChannelError {
    pub(crate) fn unexpected_rts(p: &RtsPdu, state: &'static str) -> Self {
        Self::UnexpectedRts {
            flags: p.flags.0,
            commands: p.commands.len(),
            state,
        }
    }
}

/// Why a channel machine stopped. Terminal.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client closed its side (end of the request body or of the connection).
    ClientClosed,
    /// The backend closed its side.
    BackendClosed,
    /// The client broke the protocol.
    ClientError(ChannelError),
    /// The backend broke the protocol.
    BackendError(ChannelError),
    /// The client sent nothing for [`ProxyConfig::idle_timeout`].
    IdleTimeout,
    /// The backend did not greet or finish a handshake within [`ProxyConfig::backend_timeout`].
    BackendTimeout,
    /// The owner could not connect to the backend (`handle_backend_connect_failed`).
    BackendUnreachable,
    /// A peer kept sending while the machine asked it to wait, past [`ProxyConfig::max_buffered`].
    BufferLimit,
    /// This channel was replaced by a successor (recycling) and has finished its part.
    Recycled,
    /// The owner called `close`.
    Local,
}

/// What a proxy machine tells its owner. Drain with `poll_event` after every input.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyEvent {
    /// Forwarding mode: open a TCP connection to the target now and call
    /// `handle_backend_connected`; its bytes go to `handle_backend_input`.
    BackendConnectRequested(RpcTarget),
    /// The channel's first RTS PDU named its virtual connection. In merged mode, register the
    /// channel in a [`VirtualConnectionTable`] under this cookie.
    VirtualConnectionIdentified {
        /// Virtual connection cookie.
        virtual_connection: Cookie,
        /// This channel's cookie.
        channel: Cookie,
        /// `Some(predecessor cookie)` when this channel replaces another (recycling).
        replaces: Option<Cookie>,
    },
    /// Forwarding inbound proxy: set TCP keep-alive on the backend connection to this
    /// interval (the client's ClientKeepalive from CONN/B1 or a Keep-Alive RTS PDU, §2.2.4.46).
    BackendKeepaliveChanged(std::time::Duration),
    /// The channel is open: RPC PDUs flow.
    Opened,
    /// Merged inbound proxy: an RPC PDU from the client for the local server. Its bytes have
    /// left the receive window when this event is polled.
    RpcPduReceived(bytes::Bytes),
    /// Merged mode: an RTS PDU for the *current* OUT channel of this virtual connection — from
    /// the inbound proxy (a flow-control ack for the client's IN traffic, a PDU the client
    /// addressed to the outbound proxy or the server) or from a successor OUT channel (the
    /// recycling PDU that the predecessor must pass to the client). Hand it to that channel's
    /// [`OutboundProxy::handle_forwarded_rts`] and drain that machine's events at once.
    ForwardToOutChannel(RtsPdu),
    /// The backend asked to recycle the OUT channel (OUT_R1/A1): not forwarded, because its
    /// flags are exactly RECYCLE_CHANNEL, which impacket rejects.
    RecycleRequestSuppressed,
    /// The channel is finished. Close both connections after draining `poll_transmit`.
    Closed {
        /// Why.
        reason: CloseReason,
    },
}

/// A command the machine cannot take now; the value comes back.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
#[non_exhaustive]
pub struct SendError<T> {
    /// Why.
    pub kind: SendErrorKind,
    /// The value that was not queued.
    pub value: T,
}

/// Why a command was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendErrorKind {
    /// The send queue is full: wait until `wants_pdu` (or the equivalent getter) is true.
    #[error("send queue full")]
    QueueFull,
    /// The channel or connection is not open (yet, or any more).
    #[error("not open")]
    NotOpen,
    /// The bytes are not one complete PDU of an allowed type.
    #[error("not one complete RPC PDU")]
    NotAPdu,
    /// This machine does not take that command in its mode.
    #[error("not supported in this mode")]
    WrongMode,
}
