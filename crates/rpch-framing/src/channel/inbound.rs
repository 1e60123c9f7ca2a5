//! The inbound proxy: one IN channel (client → proxy, an `RPC_IN_DATA` request body) and, when
//! forwarding, its TCP stream to the RPC server (MS-RPCH §3.2.3).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::pdu::PacketType;
use crate::rts::{Cookie, ForwardDestination, RtsCommand, RtsPdu};

use super::flow::{ReceiveWindow, SendWindow};
use super::link::{BackendReader, Frame, INPUT_SLICE, Reader, Writer};
use super::pdus::{self, ConnB1, InRecycleA1};
use super::{
    Backend, ChannelError, CloseReason, MAX_RECEIVE_WINDOW, MIN_RECEIVE_WINDOW, ProxyConfig,
    ProxyEvent,
};

/// Where an [`InboundProxy`] is in its life (§3.2.3.3's states, named for what they wait for).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InboundState {
    /// Open_Start: waiting for CONN/B1 (or IN_R1/A1, IN_R2/A1 for a successor channel).
    AwaitingB1,
    /// Forwarding: CONN/B2 is queued; waiting for the backend's greeting and CONN/B3.
    AwaitingB3,
    /// RPC PDUs flow.
    Opened,
    /// Finished.
    Closed,
}

impl InboundState {
    fn name(self) -> &'static str {
        match self {
            Self::AwaitingB1 => "Open_Start",
            Self::AwaitingB3 => "B3W",
            Self::Opened => "Opened",
            Self::Closed => "Closed",
        }
    }
}

/// One IN channel of a virtual connection, as the inbound proxy sees it.
///
/// Construct it once the HTTP server has authenticated the `RPC_IN_DATA` request and checked
/// its target against the allow list; feed it the request *body* bytes. In forwarding mode it
/// asks for a backend connection on CONN/B1 ([`ProxyEvent::BackendConnectRequested`]), checks the
/// backend's `ncacn_http/1.0` greeting, sends CONN/B2, opens on CONN/B3 and then relays the
/// client's RPC PDUs under the server's receive window, acknowledging the client's traffic
/// (FlowControlAckWithDestination to the client, via the server, §3.2.1.5.2) every half
/// window. In merged mode ([`Backend::Local`]) it opens on CONN/B1 and hands RPC PDUs to the
/// owner as [`ProxyEvent::RpcPduReceived`]; a PDU occupies the receive window until its event
/// is polled, so an owner that cannot take more work (its OUT channel's
/// [`OutboundProxy::wants_pdu`](super::OutboundProxy::wants_pdu) is false) stops polling and the client is held back by flow
/// control.
#[derive(Debug)]
pub struct InboundProxy {
    config: Arc<ProxyConfig>,
    backend: Backend,
    client_address: Option<IpAddr>,
    lifetime: u64,
    state: InboundState,
    client_in: Reader,
    backend_in: BackendReader,
    to_backend: Writer,
    /// The IN channel's HTTP response: only ever a `503 RPC Error` (§2.1.2.1.3).
    to_client: Writer,
    /// ConnectionTimeout of this channel: the configured one, or the client's
    /// `Pragma: MinConnTimeout`.
    connection_timeout: Duration,
    /// The owner reported the backend connection established.
    connected: bool,
    events: VecDeque<ProxyEvent>,
    queue: VecDeque<Bytes>,
    recv: ReceiveWindow,
    send: Option<SendWindow>,
    /// Virtual connection cookie and this channel's cookie, once the first PDU named them.
    cookies: Option<(Cookie, Cookie)>,
    /// Predecessor: IN_R1/A5 arrived; flush, end with IN_R1/B1, close.
    finishing: bool,
    /// Merged successor: waiting for the owner to say the predecessor is done.
    awaiting_predecessor: bool,
    /// Merged successor: PDUs held until then.
    held: VecDeque<Bytes>,
    received: u64,
    last_client_input: Instant,
    keepalive: Option<Duration>,
    backend_deadline: Option<Instant>,
    acks_sent: u64,
}

impl InboundProxy {
    /// A new IN channel. `content_length` is the request's Content-Length, the channel's
    /// lifetime (§2.1.2.1.1); `client_address` goes into CONN/B2's ClientAddress.
    ///
    /// With [`Backend::Forward`], the target **must** already have passed the allow list.
    pub fn new(
        config: Arc<ProxyConfig>,
        now: Instant,
        backend: Backend,
        content_length: u64,
        client_address: Option<IpAddr>,
    ) -> Self {
        let window = config.receive_window;
        let connection_timeout = config.connection_timeout;
        Self {
            config,
            backend,
            client_address,
            lifetime: content_length,
            state: InboundState::AwaitingB1,
            client_in: Reader::default(),
            backend_in: BackendReader::default(),
            to_backend: Writer::default(),
            to_client: Writer::default(),
            connection_timeout,
            connected: false,
            events: VecDeque::new(),
            queue: VecDeque::new(),
            recv: ReceiveWindow::new(window),
            send: None,
            cookies: None,
            finishing: false,
            awaiting_predecessor: false,
            held: VecDeque::new(),
            received: 0,
            last_client_input: now,
            keepalive: None,
            backend_deadline: None,
            acks_sent: 0,
        }
    }

    // ---- inputs -------------------------------------------------------------------------

    /// Bytes of the IN channel request body from the client.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        if self.is_closed() || data.is_empty() {
            return;
        }
        self.last_client_input = now;
        self.received += data.len() as u64;
        if self.received > self.lifetime {
            return self.fail_client(ChannelError::LifetimeExceeded {
                lifetime: self.lifetime,
            });
        }
        // In slices, so a large read never sits in our buffer whole.
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
            self.pump(now);
            self.check_buffers();
        }
    }

    /// The client finished its request body or closed the connection.
    pub fn handle_eof(&mut self, _now: Instant) {
        if self.finishing {
            // After IN_R1/A5 the client may go; what it sent still reaches the server.
            return;
        }
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
        if !matches!(self.backend, Backend::Forward(_)) || self.state == InboundState::AwaitingB1 {
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
        }
    }

    /// Forwarding: the owner could not connect to the backend.
    pub fn handle_backend_connect_failed(&mut self, _now: Instant) {
        self.close_with(CloseReason::BackendUnreachable);
    }

    /// The backend closed its side.
    pub fn handle_backend_eof(&mut self, _now: Instant) {
        self.close_with(CloseReason::BackendClosed);
    }

    /// Timers: idle client, slow backend.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_closed() {
            return;
        }
        if now >= self.last_client_input + self.config.idle_timeout {
            return self.close_with(CloseReason::IdleTimeout);
        }
        if self.backend_deadline.is_some_and(|d| now >= d) {
            self.close_with(CloseReason::BackendTimeout);
        }
    }

    // ---- commands -----------------------------------------------------------------------

    /// Merged successor IN channel: the predecessor has delivered its last PDU (its
    /// [`ProxyEvent::Closed`] with [`CloseReason::Recycled`] was polled); PDUs held on this
    /// channel are released in order.
    pub fn handle_predecessor_finished(&mut self, _now: Instant) {
        if self.awaiting_predecessor && self.state == InboundState::AwaitingB3 {
            self.awaiting_predecessor = false;
            self.state = InboundState::Opened;
            self.events.push_back(ProxyEvent::Opened);
            self.events
                .extend(self.held.drain(..).map(ProxyEvent::RpcPduReceived));
        }
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
        let ev = self.events.pop_front()?;
        if let ProxyEvent::RpcPduReceived(pdu) = &ev {
            // Merged mode: the PDU leaves the receive window as the owner takes it (§3.2.1.4.1.1).
            let len = pdu.len() as u32;
            if let Some(ack) = self.recv.on_consumed(len)
                && let Some((_, channel)) = self.cookies
            {
                self.acks_sent += 1;
                self.events
                    .push_back(ProxyEvent::ForwardToOutChannel(pdus::flow_control_ack_to(
                        ForwardDestination::Client,
                        ack,
                        channel,
                    )));
            }
        }
        Some(ev)
    }

    /// Bytes for the client. An IN channel answers its request only when it fails before it
    /// opened: `HTTP/1.0 503 RPC Error: <code>` (§2.1.2.1.3, [`CloseReason::rpc_error`]).
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        self.to_client
            .drain_into(out, self.config.max_transmit_chunk)
    }

    /// Bytes for the backend: at most [`ProxyConfig::max_transmit_chunk`] per call; nothing
    /// before [`handle_backend_connected`](Self::handle_backend_connected).
    pub fn poll_backend_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        if !self.connected {
            return 0;
        }
        let n = self
            .to_backend
            .drain_into(out, self.config.max_transmit_chunk);
        if n > 0 {
            // Room in the backend buffer may let queued PDUs move.
            self.pump_inner();
            self.finish_if_drained();
        }
        n
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_closed() {
            return None;
        }
        let mut t = self.last_client_input + self.config.idle_timeout;
        if let Some(d) = self.backend_deadline {
            t = t.min(d);
        }
        Some(t)
    }

    // ---- getters ------------------------------------------------------------------------

    /// The state.
    pub fn state(&self) -> InboundState {
        self.state
    }

    /// Whether the machine is finished.
    pub fn is_closed(&self) -> bool {
        self.state == InboundState::Closed
    }

    /// Whether to read more from the client: false while the backend buffer is above
    /// [`ProxyConfig::high_watermark`], or once closed. It does not turn false when our receive
    /// window is full: the IN channel also carries the client's acknowledgements for the OUT
    /// channel, and holding those back could deadlock the virtual connection.
    pub fn wants_input(&self) -> bool {
        !self.is_closed() && self.to_backend.len() < self.config.high_watermark
    }

    /// Whether to read more from the backend.
    pub fn wants_backend_input(&self) -> bool {
        !self.is_closed()
    }

    /// The virtual connection cookie, once CONN/B1 has arrived.
    pub fn virtual_connection(&self) -> Option<Cookie> {
        self.cookies.map(|c| c.0)
    }

    /// The IN channel cookie, once CONN/B1 has arrived.
    pub fn channel_cookie(&self) -> Option<Cookie> {
        self.cookies.map(|c| c.1)
    }

    /// The keep-alive interval for the backend connection, once the client named one.
    pub fn backend_keepalive(&self) -> Option<Duration> {
        self.keepalive
    }

    /// Flow-control acknowledgements sent for the client's traffic so far.
    pub fn acks_sent(&self) -> u64 {
        self.acks_sent
    }

    /// RPC PDU bytes received from the client and not yet passed on.
    pub fn queued_bytes(&self) -> u32 {
        self.recv.queued()
    }

    /// The server's window as we see it (forwarding mode, once open).
    pub fn send_window(&self) -> Option<&SendWindow> {
        self.send.as_ref()
    }

    // ---- internals ----------------------------------------------------------------------

    fn connection_timeout_ms(&self) -> u32 {
        u32::try_from(self.connection_timeout.as_millis()).unwrap_or(u32::MAX)
    }

    /// Bytes held in buffers (for the fuzzing invariants).
    pub(crate) fn buffered(&self) -> usize {
        self.client_in.buffered()
            + self.backend_in.buffered()
            + self.to_backend.len()
            + self.queue.iter().map(Bytes::len).sum::<usize>()
            + self.held.iter().map(Bytes::len).sum::<usize>()
    }

    fn on_client_frame(&mut self, now: Instant, frame: Frame) {
        if frame.packet_type != PacketType::Rts {
            return self.on_client_rpc(frame);
        }
        let rts = match frame.rts() {
            Ok(r) => r,
            Err(e) => return self.fail_client(e.into()),
        };
        if self.state == InboundState::AwaitingB1 {
            if let Some(b1) = pdus::as_conn_b1(&rts) {
                return self.on_b1(now, b1);
            }
            if let Some(a1) = pdus::as_in_r_a1(&rts) {
                return self.on_recycle_a1(now, a1);
            }
            return self.fail_client(ChannelError::unexpected_rts(&rts, self.state.name()));
        }
        if pdus::is_ping(&rts) {
            return; // keeps the IN channel's connection alive; nothing to do (§3.2.3.5.8)
        }
        if let Some(ms) = pdus::as_keep_alive(&rts) {
            self.set_keepalive(ms);
            return;
        }
        if let (pdus::NONE, [RtsCommand::Cookie(successor)]) =
            (pdus::flags(&rts), rts.commands.as_slice())
            && self.state == InboundState::Opened
            && !self.finishing
        {
            // IN_R1/A5 (§2.2.4.14): the client's last PDU on this channel.
            return self.on_recycle_a5(now, *successor);
        }
        match pdus::destination(&rts) {
            // Forwarded PDUs (§3.2.1.5.2): the client reaches the outbound proxy and the server
            // through us.
            Some(
                ForwardDestination::OutProxy
                | ForwardDestination::Server
                | ForwardDestination::Client,
            ) => self.forward_from_client(rts),
            _ => self.fail_client(ChannelError::unexpected_rts(&rts, self.state.name())),
        }
    }

    fn forward_from_client(&mut self, rts: RtsPdu) {
        match &self.backend {
            Backend::Forward(_) => self.to_backend.push_rts(&rts),
            Backend::Local => self.events.push_back(ProxyEvent::ForwardToOutChannel(rts)),
        }
    }

    fn on_client_rpc(&mut self, frame: Frame) {
        if self.state == InboundState::AwaitingB1 {
            return self.fail_client(ChannelError::UnexpectedRpc {
                packet_type: frame.packet_type,
                state: self.state.name(),
            });
        }
        let len = frame.len_u32();
        if self.config.strict_receive_window || len <= self.recv.available() {
            if let Err(e) = self.recv.on_received(len) {
                return self.fail_client(e.into());
            }
        } else {
            self.recv.on_received_overrun(len);
            if self.recv.queued() as usize > self.config.max_buffered {
                return self.close_with(CloseReason::BufferLimit);
            }
        }
        match self.backend {
            Backend::Forward(_) => self.queue.push_back(frame.bytes),
            Backend::Local if self.awaiting_predecessor => self.held.push_back(frame.bytes),
            Backend::Local => self
                .events
                .push_back(ProxyEvent::RpcPduReceived(frame.bytes)),
        }
    }

    fn on_b1(&mut self, now: Instant, b1: ConnB1) {
        self.cookies = Some((b1.virtual_connection, b1.in_channel));
        self.events
            .push_back(ProxyEvent::VirtualConnectionIdentified {
                virtual_connection: b1.virtual_connection,
                channel: b1.in_channel,
                replaces: None,
            });
        self.set_keepalive(b1.client_keepalive);
        match self.backend.clone() {
            Backend::Forward(target) => {
                // §3.2.3.5.3: connect, then CONN/B2 with our receive window and timeout.
                self.events
                    .push_back(ProxyEvent::BackendConnectRequested(target));
                let b2 = pdus::conn_b2(
                    &b1,
                    self.config.receive_window,
                    self.connection_timeout_ms(),
                    self.client_address,
                );
                self.to_backend.push_rts(&b2);
                self.backend_deadline = Some(now + self.config.backend_timeout);
                self.state = InboundState::AwaitingB3;
            }
            Backend::Local => {
                self.state = InboundState::Opened;
                self.events.push_back(ProxyEvent::Opened);
            }
        }
    }

    fn on_recycle_a1(&mut self, now: Instant, a1: InRecycleA1) {
        self.cookies = Some((a1.virtual_connection, a1.successor));
        self.events
            .push_back(ProxyEvent::VirtualConnectionIdentified {
                virtual_connection: a1.virtual_connection,
                channel: a1.successor,
                replaces: Some(a1.predecessor),
            });
        match self.backend.clone() {
            Backend::Forward(target) => {
                // IN_R1/A2 (§2.2.4.11) to the server; it answers IN_R1/A3 towards the client
                // and, once the predecessor has finished, IN_R1/B2 here.
                self.events
                    .push_back(ProxyEvent::BackendConnectRequested(target));
                self.to_backend.push_rts(&RtsPdu::in_r1_a2(
                    a1.version.min(super::PROTOCOL_VERSION),
                    a1.virtual_connection,
                    a1.predecessor,
                    a1.successor,
                    self.config.receive_window,
                    self.connection_timeout_ms(),
                ));
                self.backend_deadline = Some(now + self.config.backend_timeout);
                self.state = InboundState::AwaitingB3;
            }
            Backend::Local => {
                // We are the server: tell the client our window (IN_R1/A4 through the OUT
                // channel), and hold its PDUs until the predecessor has delivered its last one.
                self.events
                    .push_back(ProxyEvent::ForwardToOutChannel(RtsPdu::in_r1_a4(
                        a1.version.min(super::PROTOCOL_VERSION),
                        self.config.receive_window,
                        self.connection_timeout_ms(),
                    )));
                self.awaiting_predecessor = true;
                self.state = InboundState::AwaitingB3;
            }
        }
    }

    fn on_recycle_a5(&mut self, _now: Instant, successor: Cookie) {
        self.finishing = true;
        if let Backend::Forward(_) = self.backend {
            // IN_R1/A6 (§2.2.4.15) at once; IN_R1/B1 after the last queued PDU.
            self.to_backend.push_rts(&RtsPdu::in_r1_a6(successor));
        }
        self.finish_if_drained();
    }

    fn finish_if_drained(&mut self) {
        if !self.finishing || !self.queue.is_empty() || self.is_closed() {
            return;
        }
        if let Backend::Forward(_) = self.backend {
            self.to_backend.push_rts(&RtsPdu::in_r1_b1());
        }
        self.close_with(CloseReason::Recycled);
    }

    /// The keep-alive interval the client wants on the IN channel's connection to the server
    /// (CONN/B1 ClientKeepalive, Keep-Alive RTS PDU, §2.2.4.46). That connection is plain TCP
    /// and MS-RPCH defines no RTS keep-alive from the inbound proxy to the server, so the owner
    /// applies it as TCP keep-alive ([`ProxyEvent::BackendKeepaliveChanged`]).
    fn set_keepalive(&mut self, ms: u32) {
        // 0 means the default of 300 s (§2.2.3.5.6).
        let ms = if ms == 0 {
            crate::rts::CLIENT_KEEPALIVE_DEFAULT
        } else {
            ms
        };
        let interval = Duration::from_millis(u64::from(ms));
        if self.keepalive != Some(interval) {
            self.keepalive = Some(interval);
            if matches!(self.backend, Backend::Forward(_)) {
                self.events
                    .push_back(ProxyEvent::BackendKeepaliveChanged(interval));
            }
        }
    }

    fn on_backend_frame(&mut self, _now: Instant, frame: Frame) {
        if frame.packet_type != PacketType::Rts {
            // The server sends RPC PDUs on the OUT channel only.
            return self.fail_backend(ChannelError::UnexpectedRpc {
                packet_type: frame.packet_type,
                state: self.state.name(),
            });
        }
        let rts = match frame.rts() {
            Ok(r) => r,
            Err(e) => return self.fail_backend(e.into()),
        };
        if self.state == InboundState::AwaitingB3 {
            let window = pdus::as_conn_b3(&rts).map(|(w, _)| w).or_else(|| {
                // IN_R1/B2 (§2.2.4.17): a successor channel learns the server's window.
                match (pdus::flags(&rts), rts.commands.as_slice()) {
                    (pdus::NONE, [RtsCommand::ReceiveWindowSize(w)]) => Some(*w),
                    _ => None,
                }
            });
            return match window {
                Some(window) => {
                    if !(MIN_RECEIVE_WINDOW..=MAX_RECEIVE_WINDOW).contains(&window) {
                        return self.fail_backend(ChannelError::BadReceiveWindow(window));
                    }
                    self.send = Some(SendWindow::new(window));
                    self.backend_deadline = None;
                    self.state = InboundState::Opened;
                    self.events.push_back(ProxyEvent::Opened);
                }
                None => self.fail_backend(ChannelError::unexpected_rts(&rts, self.state.name())),
            };
        }
        if let Some((ack, cookie)) = pdus::as_flow_control_ack(&rts) {
            // The server acknowledges our IN traffic directly (§3.2.1.5.1.2); acks for other
            // channels are discarded as §3.2.1.5.1.2 says.
            if self.channel_cookie() == Some(cookie)
                && let Some(send) = &mut self.send
                && let Err(e) = send.on_ack(ack)
            {
                self.fail_backend(e.into());
            }
            return;
        }
        if pdus::is_ping(&rts) {
            return;
        }
        self.fail_backend(ChannelError::unexpected_rts(&rts, self.state.name()))
    }

    fn pump(&mut self, _now: Instant) {
        self.pump_inner();
        self.finish_if_drained();
    }

    /// Moves queued RPC PDUs to the backend while the server's window and our buffer allow
    /// (§3.2.1.4.1.3); each move consumes from our receive window and may owe the client an ack.
    fn pump_inner(&mut self) {
        let Some(send) = &mut self.send else { return };
        let Some((_, channel)) = self.cookies else {
            return;
        };
        while let Some(front) = self.queue.front() {
            let len = front.len() as u32;
            if self.to_backend.len() >= self.config.high_watermark || !send.can_send(len) {
                break;
            }
            let pdu = self.queue.pop_front().unwrap_or_default();
            self.to_backend.extend(&pdu);
            send.on_sent(len);
            if let Some(ack) = self.recv.on_consumed(len) {
                // The client is only reachable through the server and the outbound proxy
                // (§3.2.1.5.2), hence the destination.
                self.to_backend.push_rts(&pdus::flow_control_ack_to(
                    ForwardDestination::Client,
                    ack,
                    channel,
                ));
                self.acks_sent += 1;
            }
        }
    }

    fn check_buffers(&mut self) {
        if self.to_backend.len() > self.config.max_buffered {
            self.close_with(CloseReason::BufferLimit);
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
        if self.state != InboundState::Opened
            && let Some(code) = reason.rpc_error()
        {
            let mut head = Vec::new();
            crate::http::encode_rpc_error_response(&mut head, code);
            self.to_client.extend(&head);
        }
        self.state = InboundState::Closed;
        self.queue.clear();
        self.held.clear();
        self.client_in.clear();
        self.backend_in.clear();
        self.events.push_back(ProxyEvent::Closed { reason });
    }
}
