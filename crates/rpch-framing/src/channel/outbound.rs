//! The outbound proxy: one OUT channel (proxy → client, an `RPC_OUT_DATA` response body) and,
//! when forwarding, its TCP stream from the RPC server (MS-RPCH §3.2.4).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::pdu::{HEADER_LEN, PacketType, PduHeader};
use crate::rts::{Cookie, ForwardDestination, RtsPdu, RtsPduKind};

use super::flow::{ReceiveWindow, SendWindow};
use super::link::{BackendReader, Frame, INPUT_SLICE, Reader, Writer};
use super::pdus::{self, ConnA1, OutRecycleA3};
use super::{
    Backend, ChannelError, CloseReason, MAX_RECEIVE_WINDOW, MIN_RECEIVE_WINDOW, PROTOCOL_VERSION,
    ProxyConfig, ProxyEvent, SendError, SendErrorKind,
};

/// Where an [`OutboundProxy`] is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutboundState {
    /// Open_Start: waiting for CONN/A1 (or OUT_R1/A3, OUT_R2/A3 on a replacement channel).
    AwaitingA1,
    /// The response head and CONN/A3 went out; waiting for CONN/C1 from the server
    /// (forwarding) or for the IN channel to arrive (merged), to send CONN/C2.
    AwaitingC1,
    /// Replacement OUT channel: waiting for the client's OUT_R1/A11 (ANCE) and for the server
    /// to switch its traffic here.
    AwaitingSwitch,
    /// RPC PDUs flow.
    Opened,
    /// Finished.
    Closed,
}

impl OutboundState {
    fn name(self) -> &'static str {
        match self {
            Self::AwaitingA1 => "Open_Start",
            Self::AwaitingC1 => "C1W",
            Self::AwaitingSwitch => "A11W",
            Self::Opened => "Opened",
            Self::Closed => "Closed",
        }
    }
}

/// One OUT channel of a virtual connection, as the outbound proxy sees it.
///
/// Construct it once the HTTP server has authenticated the `RPC_OUT_DATA` request and checked
/// its target against the allow list; feed it the request body (CONN/A1, 76 bytes, or for a
/// replacement channel OUT_R1/A3 + OUT_R1/A11, 120 bytes). On CONN/A1 it writes the response
/// head (`200 Success`, `application/rpc`, [`ProxyConfig::out_channel_content_length`]) and
/// CONN/A3 — nothing else — then CONN/C2 once the virtual connection exists. It relays the
/// server's RPC PDUs under the client's receive window (from CONN/A1), acknowledges the server's
/// traffic every half window, and pings the client when the channel has been silent for half
/// the connection timeout.
#[derive(Debug)]
pub struct OutboundProxy {
    config: Arc<ProxyConfig>,
    backend: Backend,
    state: OutboundState,
    client_in: Reader,
    backend_in: BackendReader,
    to_client: Writer,
    to_backend: Writer,
    /// ConnectionTimeout of this channel: the configured one, or the client's
    /// `Pragma: MinConnTimeout`.
    connection_timeout: Duration,
    /// The owner reported the backend connection established.
    connected: bool,
    events: VecDeque<ProxyEvent>,
    queue: VecDeque<Bytes>,
    queued_bytes: usize,
    /// Our window for the server's traffic (forwarding mode).
    recv: ReceiveWindow,
    /// The client's window for our traffic.
    send: Option<SendWindow>,
    virtual_connection: Option<Cookie>,
    channel: Option<Cookie>,
    head_len: u64,
    last_client_send: Instant,
    backend_deadline: Option<Instant>,
    acks_sent: u64,
    pings_sent: u64,
    ping_bytes_unreported: u32,
    /// Replacement channel: the client's ANCE arrived.
    ance_received: bool,
    /// Predecessor channel: the server ended it (OUT_R1/A9); close once the queue drains.
    finishing: bool,
    /// Plugged successor channel: RTS PDUs for the client held until it opens.
    plugged: Vec<RtsPdu>,
}

impl OutboundProxy {
    /// A new OUT channel. With [`Backend::Forward`], the target **must** already have passed
    /// the allow list.
    pub fn new(config: Arc<ProxyConfig>, now: Instant, backend: Backend) -> Self {
        let window = config.receive_window;
        let connection_timeout = config.connection_timeout;
        Self {
            config,
            backend,
            state: OutboundState::AwaitingA1,
            client_in: Reader::default(),
            backend_in: BackendReader::default(),
            to_client: Writer::default(),
            to_backend: Writer::default(),
            connection_timeout,
            connected: false,
            events: VecDeque::new(),
            queue: VecDeque::new(),
            queued_bytes: 0,
            recv: ReceiveWindow::new(window),
            send: None,
            virtual_connection: None,
            channel: None,
            head_len: 0,
            last_client_send: now,
            backend_deadline: None,
            acks_sent: 0,
            pings_sent: 0,
            ping_bytes_unreported: 0,
            ance_received: false,
            finishing: false,
            plugged: Vec::new(),
        }
    }

    // ---- inputs -------------------------------------------------------------------------

    /// Bytes of the OUT channel request body from the client.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        if self.is_closed() || data.is_empty() {
            return;
        }
        for slice in data.chunks(INPUT_SLICE) {
            self.client_in.push(slice);
            loop {
                if self.is_closed() {
                    return;
                }
                match self.client_in.next_frame(&self.config.pdu_limits) {
                    Ok(Some(frame)) => self.on_client_frame(now, frame),
                    Ok(None) => break,
                    Err(e) => return self.fail_client(e.into()),
                }
            }
        }
    }

    /// The client closed the connection.
    pub fn handle_eof(&mut self, _now: Instant) {
        self.close_with(CloseReason::ClientClosed);
    }

    /// Forwarding: the TCP connection to the backend is established.
    pub fn handle_backend_connected(&mut self, _now: Instant) {
        self.connected = true;
    }

    /// Bytes from the backend.
    pub fn handle_backend_input(&mut self, now: Instant, data: &[u8]) {
        if self.is_closed() || data.is_empty() {
            return;
        }
        if !matches!(self.backend, Backend::Forward(_)) || self.state == OutboundState::AwaitingA1 {
            return self.fail_backend(ChannelError::UnexpectedRpc {
                packet_type: PacketType::Rts,
                state: self.state.name(),
            });
        }
        for slice in data.chunks(INPUT_SLICE) {
            self.backend_in.push(slice);
            loop {
                if self.is_closed() {
                    return;
                }
                match self.backend_in.next_frame(&self.config.pdu_limits) {
                    Ok(Some(frame)) => self.on_backend_frame(now, frame),
                    Ok(None) => break,
                    Err(e) => return self.fail_backend(e),
                }
            }
            self.pump(now);
            let plugged: usize = self.plugged.iter().map(RtsPdu::encoded_len).sum();
            if self.to_client.len() + plugged > self.config.max_buffered {
                return self.close_with(CloseReason::BufferLimit);
            }
        }
    }

    /// Forwarding: the owner could not connect to the backend.
    pub fn handle_backend_connect_failed(&mut self, _now: Instant) {
        self.close_with(CloseReason::BackendUnreachable);
    }

    /// The backend closed its side.
    pub fn handle_backend_eof(&mut self, _now: Instant) {
        if self.finishing {
            return self.close_with(CloseReason::Recycled);
        }
        self.close_with(CloseReason::BackendClosed);
    }

    /// Timers: ping the client on a silent channel, slow backend.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_closed() {
            return;
        }
        if self.backend_deadline.is_some_and(|d| now >= d) {
            return self.close_with(CloseReason::BackendTimeout);
        }
        if let Some(t) = self.next_ping()
            && now >= t
        {
            self.send_ping(now);
        }
    }

    // ---- commands -----------------------------------------------------------------------

    /// Merged mode: the IN channel of this virtual connection has arrived (the owner paired the
    /// two in a [`VirtualConnectionTable`](super::VirtualConnectionTable)); sends CONN/C2 and
    /// opens the channel. Refused unless the machine is waiting for exactly that.
    pub fn attach_in_channel(&mut self, now: Instant) -> Result<(), SendError<()>> {
        if self.backend != Backend::Local || self.state != OutboundState::AwaitingC1 {
            return Err(SendError {
                kind: SendErrorKind::NotOpen,
                value: (),
            });
        }
        let c2 = RtsPdu::conn_c2(
            PROTOCOL_VERSION,
            self.config.receive_window,
            self.connection_timeout_ms(),
        );
        self.push_client_rts(now, &c2);
        self.state = OutboundState::Opened;
        self.events.push_back(ProxyEvent::Opened);
        Ok(())
    }

    /// Merged mode: queues one complete RPC PDU (a response, fault, bind_ack ...) for the
    /// client. It goes out as the client's receive window allows. Refused when the channel is
    /// not open, the bytes are not one PDU, or [`wants_pdu`](Self::wants_pdu) is false.
    ///
    /// During OUT channel recycling the predecessor keeps taking PDUs until it closes with
    /// [`CloseReason::Recycled`] (they go out before its last PDU, OUT_R1/A10); from then on
    /// send to the successor, which queues them until the client opens it.
    pub fn send_pdu(&mut self, now: Instant, pdu: Bytes) -> Result<(), SendError<Bytes>> {
        if self.backend != Backend::Local {
            return Err(SendError {
                kind: SendErrorKind::WrongMode,
                value: pdu,
            });
        }
        if !matches!(
            self.state,
            OutboundState::Opened | OutboundState::AwaitingSwitch
        ) {
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
        if self.queued_bytes >= self.config.high_watermark {
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

    /// Merged mode: an RTS PDU the inbound proxy of this virtual connection passed on
    /// ([`ProxyEvent::ForwardToOutChannel`]): flow-control acks for this channel are applied,
    /// PDUs for the client are sent to it.
    pub fn handle_forwarded_rts(&mut self, now: Instant, rts: RtsPdu) {
        if self.is_closed() {
            return;
        }
        self.on_server_rts(now, rts, false);
        self.pump(now);
    }

    /// Uses the client's `Pragma: MinConnTimeout=T` (MS-RPCH §2.1.2.1.1, §2.1.2.1.2: the
    /// proxy MUST use it as the channel's ConnectionTimeout) instead of
    /// [`ProxyConfig::connection_timeout`]. Clamped to 120–14400 s (§2.2.3.5.3). Call before
    /// the first input.
    pub fn set_connection_timeout(&mut self, timeout: Duration) {
        self.connection_timeout =
            timeout.clamp(Duration::from_secs(120), Duration::from_secs(14_400));
    }

    /// Ends the channel now.
    pub fn close(&mut self, _now: Instant) {
        self.close_with(CloseReason::Local);
    }

    // ---- outputs ------------------------------------------------------------------------

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ProxyEvent> {
        self.events.pop_front()
    }

    /// Bytes for the client (the OUT channel response): at most
    /// [`ProxyConfig::max_transmit_chunk`] per call.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        let n = self
            .to_client
            .drain_into(out, self.config.max_transmit_chunk);
        if n > 0 && !self.queue.is_empty() {
            self.pump_inner();
        }
        n
    }

    /// Bytes for the backend; nothing before
    /// [`handle_backend_connected`](Self::handle_backend_connected).
    pub fn poll_backend_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        if !self.connected {
            return 0;
        }
        self.to_backend
            .drain_into(out, self.config.max_transmit_chunk)
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_closed() {
            return None;
        }
        match (self.backend_deadline, self.next_ping()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ---- getters ------------------------------------------------------------------------

    /// The state.
    pub fn state(&self) -> OutboundState {
        self.state
    }

    /// Whether the machine is finished.
    pub fn is_closed(&self) -> bool {
        self.state == OutboundState::Closed
    }

    /// Whether to read more from the client.
    pub fn wants_input(&self) -> bool {
        !self.is_closed()
    }

    /// Whether to read more from the backend: false while the bytes for the client are above
    /// [`ProxyConfig::high_watermark`] (the client is slow), or once closed.
    pub fn wants_backend_input(&self) -> bool {
        !self.is_closed() && self.to_client.len() < self.config.high_watermark
    }

    /// Merged mode: whether [`send_pdu`](Self::send_pdu) would take another PDU.
    pub fn wants_pdu(&self) -> bool {
        matches!(
            self.state,
            OutboundState::Opened | OutboundState::AwaitingSwitch
        ) && self.queued_bytes < self.config.high_watermark
    }

    /// The virtual connection cookie, once known.
    pub fn virtual_connection(&self) -> Option<Cookie> {
        self.virtual_connection
    }

    /// This OUT channel's cookie, once known.
    pub fn channel_cookie(&self) -> Option<Cookie> {
        self.channel
    }

    /// Flow-control acknowledgements sent to the server so far.
    pub fn acks_sent(&self) -> u64 {
        self.acks_sent
    }

    /// Pings sent to the client so far.
    pub fn pings_sent(&self) -> u64 {
        self.pings_sent
    }

    /// RPC PDU bytes waiting for the client's window.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Bytes of the OUT channel's lifetime (the response's Content-Length) not yet used. RPC
    /// PDUs that do not fit wait; the client recycles the channel before that happens.
    pub fn lifetime_remaining(&self) -> u64 {
        let body_sent = self.to_client.total() - self.head_len;
        u64::from(self.config.out_channel_content_length).saturating_sub(body_sent)
    }

    /// The client's window as we see it, once known.
    pub fn send_window(&self) -> Option<&SendWindow> {
        self.send.as_ref()
    }

    // ---- internals ----------------------------------------------------------------------

    /// How long the OUT channel may stay silent before we ping the client: half the connection
    /// timeout. MS-RPCH §3.2.4.6 pings each time the timer expires; pinging at half of it makes
    /// sure a ping lands before an intermediary with the same idle timeout gives up.
    fn ping_interval(&self) -> Duration {
        (self.connection_timeout / 2).max(Duration::from_millis(1))
    }

    fn connection_timeout_ms(&self) -> u32 {
        u32::try_from(self.connection_timeout.as_millis()).unwrap_or(u32::MAX)
    }

    /// Bytes held in buffers (for the fuzzing invariants).
    pub(crate) fn buffered(&self) -> usize {
        self.client_in.buffered()
            + self.backend_in.buffered()
            + self.to_backend.len()
            + self.to_client.len()
            + self.queued_bytes
            + self.plugged.iter().map(RtsPdu::encoded_len).sum::<usize>()
    }

    fn next_ping(&self) -> Option<Instant> {
        // Only once the response head is out: a plugged successor channel stays silent.
        matches!(
            self.state,
            OutboundState::AwaitingC1 | OutboundState::Opened
        )
        .then(|| self.last_client_send + self.ping_interval())
    }

    fn send_ping(&mut self, now: Instant) {
        self.push_client_rts(now, &pdus::ping());
        self.pings_sent += 1;
        self.ping_bytes_unreported += pdus::PING_LEN;
        // §2.2.4.47: the server counts the OUT channel lifetime and must hear of bytes it did
        // not send. Like Windows (MS-RPCH <50>), report once more than 1031 bytes piled up.
        if matches!(self.backend, Backend::Forward(_)) && self.ping_bytes_unreported > 1031 {
            self.to_backend.push_rts(&RtsPdu::ping_traffic_sent_notify(
                self.ping_bytes_unreported,
            ));
            self.ping_bytes_unreported = 0;
        }
    }

    fn push_client_rts(&mut self, now: Instant, rts: &RtsPdu) {
        self.to_client.push_rts(rts);
        self.last_client_send = now;
    }

    fn on_client_frame(&mut self, now: Instant, frame: Frame) {
        if frame.packet_type != PacketType::Rts {
            return self.fail_client(ChannelError::UnexpectedRpc {
                packet_type: frame.packet_type,
                state: self.state.name(),
            });
        }
        let rts = match frame.rts() {
            Ok(r) => r,
            Err(e) => return self.fail_client(e.into()),
        };
        match self.state {
            OutboundState::AwaitingA1 => {
                if let Some(a1) = pdus::as_conn_a1(&rts) {
                    self.on_a1(now, a1)
                } else if let Some(a3) = pdus::as_out_r_a3(&rts) {
                    self.on_recycle_a3(now, a3)
                } else {
                    self.fail_client(ChannelError::unexpected_rts(&rts, self.state.name()))
                }
            }
            OutboundState::AwaitingSwitch if pdus::is_ance(&rts) && !self.ance_received => {
                self.ance_received = true;
                self.maybe_open_successor(now);
                self.pump(now);
            }
            _ => self.fail_client(ChannelError::unexpected_rts(&rts, self.state.name())),
        }
    }

    fn set_client_window(&mut self, client_window: u32) -> bool {
        if !(MIN_RECEIVE_WINDOW..=MAX_RECEIVE_WINDOW).contains(&client_window) {
            self.fail_client(ChannelError::BadReceiveWindow(client_window));
            return false;
        }
        self.send = Some(SendWindow::new(client_window));
        true
    }

    /// The `200 Success` head of the OUT channel response (§2.1.2.1.4).
    fn write_head(&mut self, now: Instant) {
        let mut head = Vec::new();
        crate::http::encode_rpc_response_head(
            &mut head,
            u64::from(self.config.out_channel_content_length),
        );
        self.to_client.extend(&head);
        self.head_len = head.len() as u64;
        self.last_client_send = now;
    }

    fn on_a1(&mut self, now: Instant, a1: ConnA1) {
        self.virtual_connection = Some(a1.virtual_connection);
        self.channel = Some(a1.out_channel);
        self.events
            .push_back(ProxyEvent::VirtualConnectionIdentified {
                virtual_connection: a1.virtual_connection,
                channel: a1.out_channel,
                replaces: None,
            });
        if !self.set_client_window(a1.receive_window) {
            return;
        }
        self.write_head(now);
        // §3.2.4.5.1 / INTEROP: head, then CONN/A3, then CONN/C2 — nothing in between.
        self.push_client_rts(now, &RtsPdu::conn_a3(self.connection_timeout_ms()));
        self.state = OutboundState::AwaitingC1;
        if let Backend::Forward(target) = self.backend.clone() {
            self.events
                .push_back(ProxyEvent::BackendConnectRequested(target));
            self.to_backend.push_rts(&RtsPdu::conn_a2(
                a1.version.min(PROTOCOL_VERSION),
                a1.virtual_connection,
                a1.out_channel,
                self.config.out_channel_content_length,
                self.config.receive_window,
            ));
            self.backend_deadline = Some(now + self.config.backend_timeout);
        }
    }

    fn on_recycle_a3(&mut self, now: Instant, a3: OutRecycleA3) {
        self.virtual_connection = Some(a3.virtual_connection);
        self.channel = Some(a3.successor);
        self.events
            .push_back(ProxyEvent::VirtualConnectionIdentified {
                virtual_connection: a3.virtual_connection,
                channel: a3.successor,
                replaces: Some(a3.predecessor),
            });
        // §3.2.4.5.6.2: the successor stays plugged, and answers its request only when the
        // client's OUT_R1/A11 arrives (§3.2.4.5.9).
        if !self.set_client_window(a3.client_window) {
            return;
        }
        self.state = OutboundState::AwaitingSwitch;
        let Backend::Forward(target) = self.backend.clone() else {
            // Merged: we are the server. OUT_R1/A5 goes to the predecessor channel, which
            // passes it to the client (as A6); the client's OUT_R1/A7 comes back through the IN
            // channel to the predecessor, which then finishes.
            self.events
                .push_back(ProxyEvent::ForwardToOutChannel(RtsPdu::out_r1_a5(
                    a3.version.min(PROTOCOL_VERSION),
                    self.connection_timeout_ms(),
                )));
            return;
        };
        self.events
            .push_back(ProxyEvent::BackendConnectRequested(target));
        // OUT_R1/A4 (§2.2.4.26): the successor proxy introduces the new channel to the server.
        self.to_backend.push_rts(&RtsPdu::out_r1_a4(
            a3.version.min(PROTOCOL_VERSION),
            a3.virtual_connection,
            a3.predecessor,
            a3.successor,
            self.config.out_channel_content_length,
            self.config.receive_window,
            self.connection_timeout_ms(),
        ));
        self.backend_deadline = Some(now + self.config.backend_timeout);
    }

    fn maybe_open_successor(&mut self, now: Instant) {
        if self.state == OutboundState::AwaitingSwitch && self.ance_received {
            self.write_head(now);
            for rts in std::mem::take(&mut self.plugged) {
                self.push_client_rts(now, &rts);
            }
            self.state = OutboundState::Opened;
            self.backend_deadline = None;
            self.events.push_back(ProxyEvent::Opened);
        }
    }

    fn on_backend_frame(&mut self, now: Instant, frame: Frame) {
        if frame.packet_type != PacketType::Rts {
            return self.on_backend_rpc(frame);
        }
        let rts = match frame.rts() {
            Ok(r) => r,
            Err(e) => return self.fail_backend(e.into()),
        };
        self.on_server_rts(now, rts, true);
    }

    fn on_backend_rpc(&mut self, frame: Frame) {
        // A successor channel takes the server's traffic as soon as the server switches to it
        // (after OUT_R1/A8), and queues it until the client's OUT_R1/A11 opens the channel.
        let open = matches!(
            self.state,
            OutboundState::Opened | OutboundState::AwaitingSwitch
        );
        if !open || self.finishing {
            return self.fail_backend(ChannelError::UnexpectedRpc {
                packet_type: frame.packet_type,
                state: self.state.name(),
            });
        }
        let len = frame.len_u32();
        if self.config.strict_receive_window || len <= self.recv.available() {
            if let Err(e) = self.recv.on_received(len) {
                return self.fail_backend(e.into());
            }
        } else {
            self.recv.on_received_overrun(len);
            if self.recv.queued() as usize > self.config.max_buffered {
                return self.close_with(CloseReason::BufferLimit);
            }
        }
        self.queued_bytes += frame.bytes.len();
        self.queue.push_back(frame.bytes);
    }

    /// An RTS PDU from the server (forwarding) or passed on by the merged inbound proxy.
    fn on_server_rts(&mut self, now: Instant, rts: RtsPdu, from_backend: bool) {
        let fail = |this: &mut Self, e: ChannelError| {
            if from_backend {
                this.fail_backend(e)
            } else {
                this.fail_client(e)
            }
        };
        if self.state == OutboundState::AwaitingC1 && from_backend {
            return match pdus::as_conn_c(&rts) {
                Some((version, in_window, timeout)) => {
                    // CONN/C1 → CONN/C2: same three values (§3.2.4.5.3).
                    self.push_client_rts(now, &RtsPdu::conn_c2(version, in_window, timeout));
                    self.backend_deadline = None;
                    self.state = OutboundState::Opened;
                    self.events.push_back(ProxyEvent::Opened);
                }
                None => fail(self, ChannelError::unexpected_rts(&rts, self.state.name())),
            };
        }
        let dest = pdus::destination(&rts);
        if let Some((ack, cookie)) = pdus::as_flow_control_ack(&rts)
            && dest != Some(ForwardDestination::Client)
        {
            // The client's ack for our traffic, forwarded to us (§3.2.1.5.2); acks naming
            // another channel are discarded (§3.2.1.5.1.2).
            if self.channel == Some(cookie)
                && let Some(send) = &mut self.send
                && let Err(e) = send.on_ack(ack)
            {
                return self.fail_client(e.into());
            }
            return;
        }
        if pdus::is_ping(&rts) {
            return;
        }
        if !from_backend
            && self.backend == Backend::Local
            && self.state == OutboundState::Opened
            && rts.is(RtsPduKind::OutR1A7)
        {
            // Merged: the client is ready for the successor channel. Flush, OUT_R1/A10, close;
            // the owner then routes this virtual connection to the successor.
            self.finishing = true;
            self.pump(now);
            self.finish_if_drained(now);
            return;
        }
        if from_backend && self.is_out_r1_a9(&rts) {
            // §3.2.4.5.8 OUT_R1/A9: the server moved to the successor channel. Flush what is
            // queued, end with OUT_R1/A10, close.
            self.finishing = true;
            self.pump(now);
            self.finish_if_drained(now);
            return;
        }
        if dest == Some(ForwardDestination::Client) {
            if pdus::flags(&rts) == pdus::RECYCLE_CHANNEL {
                // OUT_R1/A2: impacket raises on it; the client recycles on its own instead.
                self.events.push_back(ProxyEvent::RecycleRequestSuppressed);
                return;
            }
            if self.state == OutboundState::AwaitingSwitch {
                // Plugged successor (§3.2.4.5.6.2): nothing reaches the client before A11.
                self.plugged.push(rts);
            } else {
                self.push_client_rts(now, &rts);
            }
            return;
        }
        fail(self, ChannelError::unexpected_rts(&rts, self.state.name()))
    }

    /// OUT_R1/A9 (§2.2.4.31): server to predecessor outbound proxy, flags NONE, one ANCE.
    fn is_out_r1_a9(&self, rts: &RtsPdu) -> bool {
        self.state == OutboundState::Opened && pdus::is_ance(rts)
    }

    fn finish_if_drained(&mut self, now: Instant) {
        if self.finishing && self.queue.is_empty() && self.state != OutboundState::Closed {
            // OUT_R1/A10 (§2.2.4.32): the last PDU on the predecessor channel.
            self.push_client_rts(now, &pdus::ance());
            self.state = OutboundState::Closed;
            self.events.push_back(ProxyEvent::Closed {
                reason: CloseReason::Recycled,
            });
        }
    }

    fn pump(&mut self, now: Instant) {
        let before = self.to_client.total();
        self.pump_inner();
        if self.to_client.total() != before {
            self.last_client_send = now;
        }
        if self.finishing && self.state != OutboundState::Closed {
            self.finish_if_drained(now);
        }
    }

    /// Moves queued RPC PDUs to the client while its window, our buffer and the channel
    /// lifetime allow (§3.2.1.4.1.3); in forwarding mode each move consumes from our receive
    /// window and may owe the server a FlowControlAck (sent directly, §3.2.1.5.2).
    fn pump_inner(&mut self) {
        if self.state != OutboundState::Opened {
            return;
        }
        let Some(send) = &mut self.send else { return };
        let forwarding = matches!(self.backend, Backend::Forward(_));
        while let Some(front) = self.queue.front() {
            let len = front.len() as u32;
            let left = u64::from(self.config.out_channel_content_length)
                .saturating_sub(self.to_client.total() - self.head_len);
            if self.to_client.len() >= self.config.high_watermark
                || !send.can_send(len)
                || u64::from(len) > left
            {
                break;
            }
            let pdu = self.queue.pop_front().unwrap_or_default();
            self.queued_bytes -= pdu.len();
            self.to_client.extend(&pdu);
            send.on_sent(len);
            if forwarding
                && let Some(ack) = self.recv.on_consumed(len)
                && let Some(cookie) = self.channel
            {
                self.to_backend
                    .push_rts(&pdus::flow_control_ack(ack, cookie));
                self.acks_sent += 1;
            }
        }
    }

    fn fail_client(&mut self, e: ChannelError) {
        self.close_with(CloseReason::ClientError(e));
    }

    fn fail_backend(&mut self, e: ChannelError) {
        self.close_with(CloseReason::BackendError(e));
    }

    fn close_with(&mut self, reason: CloseReason) {
        if self.is_closed() {
            return;
        }
        if self.head_len == 0
            && let Some(code) = reason.rpc_error()
        {
            // Nothing answered the request yet: a failure response (§2.1.2.1.4).
            let mut head = Vec::new();
            crate::http::encode_rpc_error_response(&mut head, code);
            self.to_client.extend(&head);
        }
        self.state = OutboundState::Closed;
        self.queue.clear();
        self.queued_bytes = 0;
        self.plugged.clear();
        self.client_in.clear();
        self.backend_in.clear();
        self.events.push_back(ProxyEvent::Closed { reason });
    }
}
