//! The client side of a virtual connection (MS-RPCH §3.2.2): CONN/A1 + B1, the wait for A3 and
//! C2, flow control both ways, keep-alive pings, and IN/OUT channel recycling.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::http::ChannelMethod;
use crate::pdu::{HEADER_LEN, Limits, PacketType, PduHeader};
use crate::rts::{Cookie, ForwardDestination, RtsCommand, RtsPdu};

use super::flow::{ReceiveWindow, SendWindow};
use super::link::{Frame, INPUT_SLICE, Reader, Writer};
use super::pdus::{self, ConnA1, ConnB1, InRecycleA1, OutRecycleA3};
use super::{
    ChannelError, CloseReason, MAX_RECEIVE_WINDOW, MIN_RECEIVE_WINDOW, PROTOCOL_VERSION, SendError,
    SendErrorKind,
};

/// Limits and parameters of a [`Client`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Our receive window for the OUT channel (CONN/A1, OUT_R1/A3). Default 65536 bytes, what
    /// Windows clients use; §2.2.3.5.1 allows 8–256 KiB.
    pub receive_window: u32,
    /// Content-Length of our IN channel requests = the IN channel lifetime (§2.1.2.1.1).
    /// Default 1 GiB (Windows uses 1 GiB; §2.2.3.5.5 allows 128 KiB–2 GiB).
    pub in_channel_lifetime: u32,
    /// ClientKeepalive announced in CONN/B1 in milliseconds (§2.2.3.5.6). Default 300000, the
    /// Windows default.
    pub client_keepalive_ms: u32,
    /// PDU framing limits.
    pub pdu_limits: Limits,
    /// Ask for a replacement OUT channel when fewer than this many bytes of its lifetime
    /// remain. Default 520 KiB: what can still arrive on the old channel after the request —
    /// the outbound proxy's queue and what is in flight, each at most one receive window (at
    /// most 256 KiB, §2.2.3.5.1) — plus the 8 KiB Windows servers keep (MS-RPCH <51>).
    pub out_channel_recycle_margin: u32,
    /// How long CONN/A3 and CONN/C2 may take to arrive before the virtual connection is given
    /// up ([`CloseReason::BackendTimeout`]). Default 30 s, the connection setup time Windows
    /// allows (MS-RPCH <26>).
    pub open_timeout: Duration,
    /// Most RPC PDU bytes [`Client::send_pdu`] queues. Default 256 KiB.
    pub max_queued: usize,
    /// Most bytes buffered from one OUT channel that cannot be processed yet (a successor OUT
    /// channel before its predecessor ended). Default 1 MiB.
    pub max_buffered: usize,
    /// Most bytes one `poll_transmit` call hands out. Default 64 KiB.
    pub max_transmit_chunk: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            receive_window: 65536,
            in_channel_lifetime: 1 << 30,
            client_keepalive_ms: 300_000,
            out_channel_recycle_margin: 520 * 1024,
            open_timeout: Duration::from_secs(30),
            pdu_limits: Limits::default(),
            max_queued: 256 * 1024,
            max_buffered: 1024 * 1024,
            max_transmit_chunk: 64 * 1024,
        }
    }
}

/// The random cookies that name a virtual connection and its first channels (§2.2.3.1). The
/// caller generates them (the crate has no randomness).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientCookies {
    /// Virtual connection cookie.
    pub virtual_connection: Cookie,
    /// First IN channel cookie.
    pub in_channel: Cookie,
    /// First OUT channel cookie.
    pub out_channel: Cookie,
    /// Association group id.
    pub association_group: Cookie,
}

/// Names one HTTP channel (one HTTP request / TCP connection) of a [`Client`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientChannelId(pub u32);

/// Where a [`Client`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientState {
    /// CONN/A1 and B1 sent; waiting for CONN/A3 and C2.
    Opening,
    /// The virtual connection is open.
    Opened,
    /// Finished.
    Closed,
}

/// What a [`Client`] tells its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// Open an HTTP request for a new channel: write its request head (`method`, the
    /// `/rpc/rpcproxy.dll?server:port` target, `Content-Length: content_length`, credentials)
    /// and then the bytes of [`Client::poll_transmit`] for this id. For OUT channels, parse the
    /// response head and feed the body to [`Client::handle_input`].
    ChannelRequested {
        /// The channel.
        id: ClientChannelId,
        /// `RPC_IN_DATA` or `RPC_OUT_DATA`.
        method: ChannelMethod,
        /// The Content-Length to declare (the IN channel lifetime; 76 or 120 for OUT channels,
        /// §2.1.2.1.2).
        content_length: u64,
    },
    /// CONN/C2 arrived: RPC PDUs may flow.
    Opened,
    /// An RPC PDU from the server. It leaves our receive window when this event is polled.
    PduReceived(Bytes),
    /// The IN channel is near the end of its lifetime: call
    /// [`Client::recycle_in_channel`] with a fresh cookie.
    InChannelRecycleNeeded,
    /// The OUT channel is near the end of its lifetime, or the proxy asked for a recycle: call
    /// [`Client::recycle_out_channel`] with a fresh cookie.
    OutChannelRecycleNeeded,
    /// A recycled channel finished its part: close its connection once
    /// [`Client::poll_transmit`] for it returns 0.
    ChannelFinished(ClientChannelId),
    /// The virtual connection is finished.
    Closed {
        /// Why.
        reason: CloseReason,
    },
}

#[derive(Debug)]
struct InChan {
    id: ClientChannelId,
    cookie: Cookie,
    out: Writer,
    /// Body bytes written so far (the head is the owner's).
    written: u64,
    send: Option<SendWindow>,
}

#[derive(Debug)]
struct OutChan {
    id: ClientChannelId,
    cookie: Cookie,
    /// The request body (CONN/A1, or OUT_R1/A3 then OUT_R1/A11).
    request: Writer,
    reader: Reader,
    recv: ReceiveWindow,
    /// Content-Length of the response, once the owner told us.
    content_length: Option<u64>,
    /// Body bytes received (RPC and RTS PDUs).
    received: u64,
    /// [`ClientEvent::OutChannelRecycleNeeded`] was emitted for this channel.
    recycle_announced: bool,
}

impl OutChan {
    fn new(id: ClientChannelId, cookie: Cookie, window: u32) -> Self {
        Self {
            id,
            cookie,
            request: Writer::default(),
            reader: Reader::default(),
            recv: ReceiveWindow::new(window),
            content_length: None,
            received: 0,
            recycle_announced: false,
        }
    }
}

/// The client side of a virtual connection.
///
/// `new` queues CONN/A1 for the first OUT channel and CONN/B1 for the first IN channel and
/// announces both with [`ClientEvent::ChannelRequested`]. RPC PDUs handed to
/// [`send_pdu`](Self::send_pdu) go out on the IN channel within the inbound proxy's receive
/// window (from CONN/C2); what arrives on the OUT channel is acknowledged with
/// FlowControlAckWithDestination (to the outbound proxy, through the IN channel) each time half
/// of our window has been consumed. When nothing has been sent on the IN channel for half the
/// connection timeout announced in CONN/A3, a Ping goes out (§3.2.2.6.1).
///
/// HTTP is the owner's: it writes the request heads (with credentials) and parses the OUT
/// channel's response head; this machine handles the bodies.
///
/// Recycling is started by the owner ([`recycle_in_channel`](Self::recycle_in_channel),
/// [`recycle_out_channel`](Self::recycle_out_channel)), typically on
/// [`ClientEvent::InChannelRecycleNeeded`] / [`ClientEvent::OutChannelRecycleNeeded`]. Both
/// follow the R1 sequences through the server (IN_R1, OUT_R1 of §3.2.1.5.3), which also work
/// when predecessor and successor reach the same proxy.
#[derive(Debug)]
pub struct Client {
    config: Arc<ClientConfig>,
    cookies: ClientCookies,
    state: ClientState,
    next_id: u32,
    in_cur: InChan,
    /// A predecessor IN channel still flushing.
    in_old: Option<InChan>,
    /// A successor IN channel waiting for IN_R1/A4.
    in_next: Option<InChan>,
    out_cur: OutChan,
    /// A successor OUT channel waiting for OUT_R1/A10 on the current one.
    out_next: Option<OutChan>,
    events: VecDeque<ClientEvent>,
    queue: VecDeque<Bytes>,
    queued_bytes: usize,
    connection_timeout: Option<Duration>,
    last_in_send: Instant,
    acks_sent: u64,
    acks_received: u64,
    blocked: bool,
    times_blocked: u64,
    in_recycle_announced: bool,
    open_deadline: Instant,
}

impl Client {
    /// A new virtual connection; see the type docs.
    pub fn new(config: Arc<ClientConfig>, now: Instant, cookies: ClientCookies) -> Self {
        let window = config.receive_window;
        let open_deadline = now + config.open_timeout;
        let mut out_cur = OutChan::new(ClientChannelId(1), cookies.out_channel, window);
        out_cur.request.push_rts(&pdus::conn_a1(ConnA1 {
            version: PROTOCOL_VERSION,
            virtual_connection: cookies.virtual_connection,
            out_channel: cookies.out_channel,
            receive_window: window,
        }));
        let mut in_cur = InChan {
            id: ClientChannelId(0),
            cookie: cookies.in_channel,
            out: Writer::default(),
            written: 0,
            send: None,
        };
        in_cur.out.push_rts(&pdus::conn_b1(ConnB1 {
            version: PROTOCOL_VERSION,
            virtual_connection: cookies.virtual_connection,
            in_channel: cookies.in_channel,
            channel_lifetime: config.in_channel_lifetime,
            client_keepalive: config.client_keepalive_ms,
            association_group: cookies.association_group,
        }));
        in_cur.written = in_cur.out.total();
        let mut events = VecDeque::new();
        events.push_back(ClientEvent::ChannelRequested {
            id: out_cur.id,
            method: ChannelMethod::RpcOutData,
            content_length: 76,
        });
        events.push_back(ClientEvent::ChannelRequested {
            id: in_cur.id,
            method: ChannelMethod::RpcInData,
            content_length: u64::from(config.in_channel_lifetime),
        });
        Self {
            config,
            cookies,
            state: ClientState::Opening,
            next_id: 2,
            in_cur,
            in_old: None,
            in_next: None,
            out_cur,
            out_next: None,
            events,
            queue: VecDeque::new(),
            queued_bytes: 0,
            connection_timeout: None,
            last_in_send: now,
            acks_sent: 0,
            acks_received: 0,
            blocked: false,
            times_blocked: 0,
            in_recycle_announced: false,
            open_deadline,
        }
    }

    // ---- inputs -------------------------------------------------------------------------

    /// Body bytes received on channel `id` (the OUT channel response body after its head).
    /// Bytes on an IN channel mean the proxy answered the IN request, which it only does on
    /// errors (§2.1.2.1.3): the virtual connection ends.
    pub fn handle_input(&mut self, now: Instant, id: ClientChannelId, data: &[u8]) {
        if self.is_closed() || data.is_empty() {
            return;
        }
        if self.out_next.as_ref().is_some_and(|o| o.id == id) {
            // A successor OUT channel is read only after its predecessor's last PDU.
            let next = self.out_next.as_mut().map(|o| &mut o.reader);
            if let Some(r) = next {
                r.push(data);
                if r.buffered() > self.config.max_buffered {
                    self.close_with(CloseReason::BufferLimit);
                }
            }
            return;
        }
        if self.is_in_channel(id) {
            return self.fail(ChannelError::UnexpectedRpc {
                packet_type: PacketType::Rts,
                state: "IN channel response",
            });
        }
        if self.out_cur.id != id {
            // A finished OUT channel: Windows proxies may send undefined bytes after
            // OUT_R1/A10 (MS-RPCH <46>); they mean nothing.
            return;
        }
        for slice in data.chunks(INPUT_SLICE) {
            self.out_cur.reader.push(slice);
            self.process_out(now);
            self.pump(now);
        }
    }

    /// Channel `id`'s connection closed. Expected for a channel that finished recycling
    /// ([`ClientEvent::ChannelFinished`]); for a live channel it ends the virtual connection.
    pub fn handle_eof(&mut self, _now: Instant, id: ClientChannelId) {
        if self.in_old.as_ref().is_some_and(|c| c.id == id) {
            self.in_old = None;
            return;
        }
        let live = self.in_cur.id == id
            || self.out_cur.id == id
            || self.in_next.as_ref().is_some_and(|c| c.id == id)
            || self.out_next.as_ref().is_some_and(|c| c.id == id);
        // A recycled channel's connection ending is expected; a live one's ends the virtual
        // connection.
        if live {
            self.close_with(CloseReason::BackendClosed);
        }
    }

    /// Timers: keep-alive pings on the IN channel; the virtual connection must open within
    /// [`ClientConfig::open_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_closed() {
            return;
        }
        if self.state == ClientState::Opening && now >= self.open_deadline {
            return self.close_with(CloseReason::BackendTimeout);
        }
        if let Some(t) = self.next_ping()
            && now >= t
        {
            self.in_cur.out.push_rts(&pdus::ping());
            self.in_cur.written += u64::from(pdus::PING_LEN);
            self.last_in_send = now;
        }
    }

    // ---- commands -----------------------------------------------------------------------

    /// Queues one complete RPC PDU (bind, request, ...) for the server.
    pub fn send_pdu(&mut self, now: Instant, pdu: Bytes) -> Result<(), SendError<Bytes>> {
        if self.is_closed() {
            return Err(SendError {
                kind: SendErrorKind::NotOpen,
                value: pdu,
            });
        }
        let complete = pdu.len() >= HEADER_LEN
            && PduHeader::parse(&pdu[..HEADER_LEN], &self.config.pdu_limits).is_ok_and(|h| {
                usize::from(h.frag_length) == pdu.len() && h.packet_type != PacketType::Rts
            });
        if !complete {
            return Err(SendError {
                kind: SendErrorKind::NotAPdu,
                value: pdu,
            });
        }
        if self.queued_bytes >= self.config.max_queued {
            return Err(SendError {
                kind: SendErrorKind::QueueFull,
                value: pdu,
            });
        }
        self.queued_bytes += pdu.len();
        self.queue.push_back(pdu);
        self.pump(now);
        Ok(())
    }

    /// Starts IN channel recycling (IN_R1, §3.2.1.5.3.2): a successor IN channel with
    /// `successor` as its cookie is requested ([`ClientEvent::ChannelRequested`]) and gets
    /// IN_R1/A1; once IN_R1/A4 arrives, IN_R1/A5 ends the predecessor and PDUs continue on the
    /// successor. Refused while not open or while a recycle is under way.
    pub fn recycle_in_channel(
        &mut self,
        _now: Instant,
        successor: Cookie,
    ) -> Result<ClientChannelId, SendError<Cookie>> {
        if self.state != ClientState::Opened || self.in_next.is_some() || self.in_old.is_some() {
            return Err(SendError {
                kind: SendErrorKind::NotOpen,
                value: successor,
            });
        }
        let id = self.new_id();
        let mut chan = InChan {
            id,
            cookie: successor,
            out: Writer::default(),
            written: 0,
            send: None,
        };
        chan.out.push_rts(&pdus::in_r_a1(InRecycleA1 {
            version: PROTOCOL_VERSION,
            virtual_connection: self.cookies.virtual_connection,
            predecessor: self.in_cur.cookie,
            successor,
        }));
        chan.written = chan.out.total();
        self.in_next = Some(chan);
        self.events.push_back(ClientEvent::ChannelRequested {
            id,
            method: ChannelMethod::RpcInData,
            content_length: u64::from(self.config.in_channel_lifetime),
        });
        Ok(id)
    }

    /// Starts OUT channel recycling (OUT_R1, §3.2.1.5.3.4) on the client's initiative: a
    /// replacement OUT channel (Content-Length 120) with `successor` as its cookie carries
    /// OUT_R1/A3; the server answers with OUT_R1/A5 (A6) on the current OUT channel, we send
    /// OUT_R1/A7 on the IN channel, the current OUT channel ends with OUT_R1/A10, and OUT_R1/A11
    /// on the successor opens it. No byte is lost or duplicated: the successor is read only
    /// after the predecessor's last PDU.
    pub fn recycle_out_channel(
        &mut self,
        _now: Instant,
        successor: Cookie,
    ) -> Result<ClientChannelId, SendError<Cookie>> {
        if self.state != ClientState::Opened || self.out_next.is_some() {
            return Err(SendError {
                kind: SendErrorKind::NotOpen,
                value: successor,
            });
        }
        let id = self.new_id();
        let mut chan = OutChan::new(id, successor, self.config.receive_window);
        chan.request.push_rts(&pdus::out_r_a3(OutRecycleA3 {
            version: PROTOCOL_VERSION,
            virtual_connection: self.cookies.virtual_connection,
            predecessor: self.out_cur.cookie,
            successor,
            client_window: self.config.receive_window,
        }));
        self.out_next = Some(chan);
        self.events.push_back(ClientEvent::ChannelRequested {
            id,
            method: ChannelMethod::RpcOutData,
            content_length: 120,
        });
        Ok(id)
    }

    /// The Content-Length of OUT channel `id`'s response, from its head: the channel's
    /// lifetime. With it the client asks for a replacement OUT channel
    /// ([`ClientEvent::OutChannelRecycleNeeded`]) when fewer than
    /// [`ClientConfig::out_channel_recycle_margin`] bytes remain.
    pub fn set_out_channel_content_length(&mut self, id: ClientChannelId, content_length: u64) {
        for chan in [Some(&mut self.out_cur), self.out_next.as_mut()]
            .into_iter()
            .flatten()
        {
            if chan.id == id {
                chan.content_length = Some(content_length);
            }
        }
    }

    /// Ends the virtual connection now.
    pub fn close(&mut self, _now: Instant) {
        self.close_with(CloseReason::Local);
    }

    // ---- outputs ------------------------------------------------------------------------

    /// The next event. Polling a [`ClientEvent::PduReceived`] consumes it from the receive
    /// window and may queue a flow-control ack.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        let ev = self.events.pop_front()?;
        if let ClientEvent::PduReceived(pdu) = &ev
            && let Some(ack) = self.out_cur.recv.on_consumed(pdu.len() as u32)
            && !self.is_closed()
        {
            // §3.2.1.5.2: the outbound proxy is reached through the IN channel.
            let rts =
                pdus::flow_control_ack_to(ForwardDestination::OutProxy, ack, self.out_cur.cookie);
            self.in_cur.out.push_rts(&rts);
            self.in_cur.written += rts.encoded_len() as u64;
            self.acks_sent += 1;
        }
        Some(ev)
    }

    /// Body bytes for channel `id`: at most [`ClientConfig::max_transmit_chunk`] per call.
    pub fn poll_transmit(&mut self, id: ClientChannelId, out: &mut Vec<u8>) -> usize {
        let max = self.config.max_transmit_chunk;
        let writer = if self.in_cur.id == id {
            &mut self.in_cur.out
        } else if let Some(c) = self.in_old.as_mut().filter(|c| c.id == id) {
            let n = c.out.drain_into(out, max);
            if n == 0 {
                // The predecessor IN channel has sent its last byte.
                self.in_old = None;
            }
            return n;
        } else if let Some(c) = self.in_next.as_mut().filter(|c| c.id == id) {
            &mut c.out
        } else if self.out_cur.id == id {
            &mut self.out_cur.request
        } else if let Some(c) = self.out_next.as_mut().filter(|c| c.id == id) {
            &mut c.request
        } else {
            return 0;
        };
        writer.drain_into(out, max)
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.state, self.next_ping()) {
            (ClientState::Opening, Some(p)) => Some(p.min(self.open_deadline)),
            (ClientState::Opening, None) => Some(self.open_deadline),
            (_, p) => p,
        }
    }

    // ---- getters ------------------------------------------------------------------------

    /// The state.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// Whether the virtual connection is finished.
    pub fn is_closed(&self) -> bool {
        self.state == ClientState::Closed
    }

    /// Whether to read more from the OUT channel(s): false once closed, or while PDUs received
    /// but not yet polled fill our receive window — poll events to make room.
    pub fn wants_input(&self) -> bool {
        !self.is_closed() && !self.out_cur.recv.is_full()
    }

    /// Whether [`send_pdu`](Self::send_pdu) would take another PDU.
    pub fn wants_pdu(&self) -> bool {
        !self.is_closed() && self.queued_bytes < self.config.max_queued
    }

    /// Whether queued PDUs are waiting for the inbound proxy's window.
    pub fn is_send_blocked(&self) -> bool {
        self.blocked
    }

    /// How many times sending stopped because the inbound proxy's window was exhausted.
    pub fn times_blocked(&self) -> u64 {
        self.times_blocked
    }

    /// FlowControlAcks sent for OUT channel traffic.
    pub fn acks_sent(&self) -> u64 {
        self.acks_sent
    }

    /// FlowControlAcks received for IN channel traffic.
    pub fn acks_received(&self) -> u64 {
        self.acks_received
    }

    /// RPC PDU bytes queued by `send_pdu` and not yet written.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// The current IN channel.
    pub fn in_channel(&self) -> ClientChannelId {
        self.in_cur.id
    }

    /// The current OUT channel.
    pub fn out_channel(&self) -> ClientChannelId {
        self.out_cur.id
    }

    /// The ConnectionTimeout from CONN/A3, once received.
    pub fn connection_timeout(&self) -> Option<Duration> {
        self.connection_timeout
    }

    // ---- internals ----------------------------------------------------------------------

    /// Bytes held in buffers (for the fuzzing invariants).
    pub(crate) fn buffered(&self) -> usize {
        self.in_cur.out.len()
            + self.in_old.as_ref().map_or(0, |c| c.out.len())
            + self.in_next.as_ref().map_or(0, |c| c.out.len())
            + self.out_cur.reader.buffered()
            + self.out_next.as_ref().map_or(0, |c| c.reader.buffered())
            + self.queued_bytes
    }

    fn is_in_channel(&self, id: ClientChannelId) -> bool {
        self.in_cur.id == id
            || self.in_old.as_ref().is_some_and(|c| c.id == id)
            || self.in_next.as_ref().is_some_and(|c| c.id == id)
    }

    fn new_id(&mut self) -> ClientChannelId {
        let id = ClientChannelId(self.next_id);
        self.next_id += 1;
        id
    }

    fn set_connection_timeout(&mut self, ms: u32) {
        let t = Duration::from_millis(u64::from(ms));
        self.connection_timeout = Some(self.connection_timeout.map_or(t, |old| old.min(t)));
    }

    fn next_ping(&self) -> Option<Instant> {
        if self.is_closed() {
            return None;
        }
        // Half the timeout, so the ping lands before the proxy's timer runs out.
        self.connection_timeout
            .map(|t| self.last_in_send + (t / 2).max(Duration::from_millis(1)))
    }

    fn process_out(&mut self, now: Instant) {
        loop {
            if self.is_closed() {
                return;
            }
            match self.out_cur.reader.next_frame(&self.config.pdu_limits) {
                Ok(Some(frame)) => self.on_out_frame(now, frame),
                Ok(None) => return,
                Err(e) => return self.fail(e.into()),
            }
        }
    }

    fn on_out_frame(&mut self, now: Instant, frame: Frame) {
        self.out_cur.received += frame.bytes.len() as u64;
        if let Some(len) = self.out_cur.content_length
            && !self.out_cur.recycle_announced
            && self.out_next.is_none()
            && len.saturating_sub(self.out_cur.received)
                < u64::from(self.config.out_channel_recycle_margin)
        {
            self.out_cur.recycle_announced = true;
            self.events.push_back(ClientEvent::OutChannelRecycleNeeded);
        }
        if frame.packet_type != PacketType::Rts {
            if self.state != ClientState::Opened {
                return self.fail(ChannelError::UnexpectedRpc {
                    packet_type: frame.packet_type,
                    state: "Opening",
                });
            }
            if let Err(e) = self.out_cur.recv.on_received(frame.len_u32()) {
                return self.fail(e.into());
            }
            self.events.push_back(ClientEvent::PduReceived(frame.bytes));
            return;
        }
        let rts = match frame.rts() {
            Ok(r) => r,
            Err(e) => return self.fail(e.into()),
        };
        self.on_out_rts(now, rts);
    }

    fn on_out_rts(&mut self, now: Instant, rts: RtsPdu) {
        if self.state == ClientState::Opening {
            if let Some(t) = pdus::as_conn_a3(&rts)
                && self.connection_timeout.is_none()
            {
                self.connection_timeout = Some(Duration::from_millis(u64::from(t)));
                return;
            }
            if let Some((_v, window, timeout)) = pdus::as_conn_c(&rts)
                && self.connection_timeout.is_some()
            {
                // C2's ConnectionTimeout is the IN channel's (§2.2.4.9), the one our pings
                // keep alive.
                self.set_connection_timeout(timeout);
                if !(MIN_RECEIVE_WINDOW..=MAX_RECEIVE_WINDOW).contains(&window) {
                    return self.fail(ChannelError::BadReceiveWindow(window));
                }
                self.in_cur.send = Some(SendWindow::new(window));
                self.state = ClientState::Opened;
                self.events.push_back(ClientEvent::Opened);
                return;
            }
            return self.fail(ChannelError::unexpected_rts(&rts, "Opening"));
        }
        if pdus::is_ping(&rts) {
            return;
        }
        if let Some((ack, cookie)) = pdus::as_flow_control_ack(&rts) {
            // Acks for the IN channel come from the inbound proxy through the server and the
            // outbound proxy (§3.2.1.5.2); for another channel they are discarded.
            if cookie == self.in_cur.cookie
                && let Some(send) = &mut self.in_cur.send
            {
                if let Err(e) = send.on_ack(ack) {
                    return self.fail(e.into());
                }
                self.acks_received += 1;
            }
            return;
        }
        let flags = pdus::flags(&rts);
        match (flags, rts.commands.as_slice()) {
            // IN_R1/A4 (§2.2.4.13): the successor inbound proxy's window.
            (
                pdus::NONE,
                [
                    RtsCommand::Destination(ForwardDestination::Client),
                    RtsCommand::Version(_),
                    RtsCommand::ReceiveWindowSize(w),
                    RtsCommand::ConnectionTimeout(t),
                ],
            ) if self.in_next.is_some() => {
                self.set_connection_timeout(*t);
                self.switch_in_channel(now, *w)
            }
            // OUT_R1/A6 (§2.2.4.28): answer with OUT_R1/A7 on the IN channel.
            (
                pdus::OUT_CHANNEL,
                [
                    RtsCommand::Destination(ForwardDestination::Client),
                    RtsCommand::Version(_),
                    RtsCommand::ConnectionTimeout(_),
                ],
            ) if self.out_next.is_some() => {
                let succ = self.out_next.as_ref().map(|o| o.cookie).unwrap_or_default();
                let a7 = RtsPdu::out_r1_a7(succ);
                self.in_cur.out.push_rts(&a7);
                self.in_cur.written += a7.encoded_len() as u64;
                self.last_in_send = now;
            }
            // OUT_R1/A10 (§2.2.4.32): the last PDU of the predecessor OUT channel.
            (pdus::NONE, [RtsCommand::Ance]) if self.out_next.is_some() => {
                self.switch_out_channel(now)
            }
            // OUT_R1/A2, OUT_R2/A2: the server wants a new OUT channel.
            (pdus::RECYCLE_CHANNEL, [RtsCommand::Destination(_)]) => {
                self.events.push_back(ClientEvent::OutChannelRecycleNeeded)
            }
            _ => self.fail(ChannelError::unexpected_rts(&rts, "Opened")),
        }
    }

    fn switch_in_channel(&mut self, now: Instant, window: u32) {
        if !(MIN_RECEIVE_WINDOW..=MAX_RECEIVE_WINDOW).contains(&window) {
            return self.fail(ChannelError::BadReceiveWindow(window));
        }
        let Some(mut next) = self.in_next.take() else {
            return;
        };
        // IN_R1/A5 is the predecessor's last PDU: everything queued so far went out on it (the
        // queue only ever feeds the current channel), so the server sees no reordering.
        let a5 = RtsPdu::in_r1_a5(next.cookie);
        self.in_cur.out.push_rts(&a5);
        next.send = Some(SendWindow::new(window));
        let old = std::mem::replace(&mut self.in_cur, next);
        let old_id = old.id;
        self.in_old = Some(old);
        self.in_recycle_announced = false;
        self.last_in_send = now;
        self.events.push_back(ClientEvent::ChannelFinished(old_id));
    }

    fn switch_out_channel(&mut self, now: Instant) {
        let Some(next) = self.out_next.take() else {
            return;
        };
        let old = std::mem::replace(&mut self.out_cur, next);
        self.events.push_back(ClientEvent::ChannelFinished(old.id));
        // OUT_R1/A11 (§2.2.4.33) opens the successor for the server's traffic.
        self.out_cur.request.push_rts(&RtsPdu::out_r1_a11());
        // Bytes already read on the successor are processed now, in order.
        self.process_out(now);
    }

    /// Writes queued PDUs to the current IN channel while the inbound proxy's window and the
    /// channel lifetime allow (§3.2.1.4.1.3).
    fn pump(&mut self, now: Instant) {
        if self.state != ClientState::Opened {
            return;
        }
        let lifetime = u64::from(self.config.in_channel_lifetime);
        let Some(send) = &mut self.in_cur.send else {
            return;
        };
        let mut wrote = false;
        let was_blocked = std::mem::replace(&mut self.blocked, false);
        while let Some(front) = self.queue.front() {
            let len = front.len() as u32;
            // Keep room for the recycling PDUs and acks that must still go out on this channel.
            if self.in_cur.written + u64::from(len) + 4096 > lifetime {
                if !self.in_recycle_announced {
                    self.in_recycle_announced = true;
                    self.events.push_back(ClientEvent::InChannelRecycleNeeded);
                }
                break;
            }
            if !send.can_send(len) {
                self.blocked = true;
                if !was_blocked {
                    self.times_blocked += 1;
                }
                break;
            }
            let pdu = self.queue.pop_front().unwrap_or_default();
            self.queued_bytes -= pdu.len();
            self.in_cur.out.extend(&pdu);
            self.in_cur.written += u64::from(len);
            send.on_sent(len);
            wrote = true;
        }
        if wrote {
            self.last_in_send = now;
        }
    }

    fn fail(&mut self, e: ChannelError) {
        self.close_with(CloseReason::BackendError(e));
    }

    fn close_with(&mut self, reason: CloseReason) {
        if self.is_closed() {
            return;
        }
        self.state = ClientState::Closed;
        self.queue.clear();
        self.queued_bytes = 0;
        self.events.push_back(ClientEvent::Closed { reason });
    }
}
