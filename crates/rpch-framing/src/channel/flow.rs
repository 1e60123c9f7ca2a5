//! Receive windows and flow control (MS-RPCH §3.2.1.1.5, §3.2.1.4.1, §3.2.1.5.1).
//!
//! Only RPC PDUs count: RTS PDUs and HTTP heads are outside flow control (§3.2.1.1.5). Each
//! channel direction has a *recipient* that owns a [`ReceiveWindow`] and a *sender* that keeps a
//! [`SendWindow`], the sender's picture of how much of the recipient's window is still free.

/// Smallest receive window MS-RPCH §2.2.3.5.1 allows: 8 KiB.
pub const MIN_RECEIVE_WINDOW: u32 = 8 * 1024;
/// Largest receive window MS-RPCH §2.2.3.5.1 allows: 256 KiB.
pub const MAX_RECEIVE_WINDOW: u32 = 256 * 1024;

/// A flow-control rule was broken by the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    /// The peer sent an RPC PDU that does not fit in the free part of our receive window.
    #[error("peer overran the receive window: {len} bytes with {available} available")]
    WindowExceeded {
        /// Size of the offending PDU.
        len: u32,
        /// Free bytes left in the window before it.
        available: u32,
    },
    /// A FlowControlAck acknowledged more bytes than were ever sent on the channel.
    #[error("acknowledgement of {acked} bytes but only {sent} were sent")]
    AckBeyondSent {
        /// Bytes Received field of the acknowledgement.
        acked: u32,
        /// Bytes sent so far.
        sent: u32,
    },
    /// A FlowControlAck gave an Available Window larger than the advertised receive window, or
    /// one that leaves a negative window once the bytes in flight are subtracted (§3.2.1.5.1.1).
    #[error(
        "acknowledgement with available window {available} is inconsistent (window {window}, in flight {in_flight})"
    )]
    InvalidAvailableWindow {
        /// Available Window field of the acknowledgement.
        available: u32,
        /// The recipient's advertised window.
        window: u32,
        /// Bytes sent but not yet acknowledged.
        in_flight: u32,
    },
}

/// What a recipient puts in a FlowControlAck (MS-RPCH §2.2.3.4), less the channel cookie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckValues {
    /// Bytes Received: every RPC PDU byte received on this channel instance so far.
    pub bytes_received: u32,
    /// Available Window: free bytes in the recipient's receive window at the time of the ack.
    pub available_window: u32,
}

/// The recipient side of one channel instance (§3.2.1.1.5.1).
///
/// Call [`on_received`](Self::on_received) when an RPC PDU is queued and
/// [`on_consumed`](Self::on_consumed) when it leaves the queue (handed to the higher layer, or
/// forwarded to the next hop on a proxy). `on_consumed` says when to send a FlowControlAck.
///
/// Ack policy: like Windows (MS-RPCH <27>), the recipient tracks AvailableWindowAdvertised, the
/// sender's view of our free space, and acknowledges once that view has fallen below half of the
/// window while consumption has freed more: so a sender that keeps sending sees an ack every
/// half window, and never stalls on a window we have already emptied.
#[derive(Clone, Debug)]
pub struct ReceiveWindow {
    size: u32,
    queued: u32,
    bytes_received: u32,
    advertised: u32,
}

impl ReceiveWindow {
    /// A window of `size` bytes, empty.
    pub fn new(size: u32) -> Self {
        Self {
            size,
            queued: 0,
            bytes_received: 0,
            advertised: size,
        }
    }

    /// The window size in bytes, as advertised in ReceiveWindowSize.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// BytesReceived: RPC PDU bytes received on this channel instance.
    pub fn bytes_received(&self) -> u32 {
        self.bytes_received
    }

    /// Receiver AvailableWindow: window size minus the bytes queued.
    pub fn available(&self) -> u32 {
        self.size.saturating_sub(self.queued)
    }

    /// Bytes queued and not yet consumed.
    pub fn queued(&self) -> u32 {
        self.queued
    }

    /// AvailableWindowAdvertised: what the sender believes is free.
    pub fn advertised(&self) -> u32 {
        self.advertised
    }

    /// Queues an RPC PDU of `len` bytes (§3.2.1.5.1.1): refuses one that does not fit.
    pub fn on_received(&mut self, len: u32) -> Result<(), FlowError> {
        let available = self.available();
        if len > available {
            return Err(FlowError::WindowExceeded { len, available });
        }
        self.queued += len;
        self.bytes_received = self.bytes_received.wrapping_add(len);
        self.advertised = self.advertised.saturating_sub(len);
        Ok(())
    }

    /// Queues an RPC PDU of `len` bytes even if it overruns the window: for a recipient that
    /// tolerates (within its own memory bound) a sender that ignores flow control, instead of
    /// failing the channel. [`available`](Self::available) stays at 0 while overrun.
    pub fn on_received_overrun(&mut self, len: u32) {
        self.queued = self.queued.saturating_add(len);
        self.bytes_received = self.bytes_received.wrapping_add(len);
        self.advertised = self.advertised.saturating_sub(len);
    }

    /// Whether the window is full (or overrun): a sender that respects it sends no RPC PDU now.
    pub fn is_full(&self) -> bool {
        self.queued >= self.size
    }

    /// Releases `len` queued bytes (§3.2.1.4.1.1); returns the acknowledgement to send, if one
    /// is due. `len` larger than what is queued is clamped (a caller bug, not a peer's).
    pub fn on_consumed(&mut self, len: u32) -> Option<AckValues> {
        self.queued -= len.min(self.queued);
        let available = self.available();
        if self.advertised < self.size / 2 && available > self.advertised {
            Some(self.ack_now())
        } else {
            None
        }
    }

    /// The acknowledgement describing the current state, recorded as advertised.
    pub fn ack_now(&mut self) -> AckValues {
        self.advertised = self.available();
        AckValues {
            bytes_received: self.bytes_received,
            available_window: self.advertised,
        }
    }
}

/// The sender side of one channel instance (§3.2.1.1.5.2, §3.2.1.4.1.3, §3.2.1.5.1.1).
#[derive(Clone, Debug)]
pub struct SendWindow {
    peer_window: u32,
    bytes_sent: u32,
    available: u32,
}

impl SendWindow {
    /// The sender's state for a recipient that advertised `peer_window` bytes.
    pub fn new(peer_window: u32) -> Self {
        Self {
            peer_window,
            bytes_sent: 0,
            available: peer_window,
        }
    }

    /// The recipient's advertised ReceiveWindowSize.
    pub fn peer_window(&self) -> u32 {
        self.peer_window
    }

    /// BytesSent on this channel instance.
    pub fn bytes_sent(&self) -> u32 {
        self.bytes_sent
    }

    /// Sender AvailableWindow.
    pub fn available(&self) -> u32 {
        self.available
    }

    /// Whether an RPC PDU of `len` bytes may go out now (§3.2.1.4.1.3). A PDU larger than the
    /// peer's whole window never fits: MS-RPCH §2.2.3.5.1 requires the window to be at least
    /// the negotiated fragment size, and a recipient refuses such a PDU anyway.
    pub fn can_send(&self, len: u32) -> bool {
        len <= self.available
    }

    /// Records an RPC PDU of `len` bytes as sent (§3.2.1.4.1.3).
    pub fn on_sent(&mut self, len: u32) {
        self.bytes_sent = self.bytes_sent.wrapping_add(len);
        self.available = self.available.saturating_sub(len);
    }

    /// Applies a FlowControlAck (§3.2.1.5.1.1):
    /// `Sender AvailableWindow = AvailableWindow_from_ack - (BytesSent - BytesReceived_from_ack)`.
    pub fn on_ack(&mut self, ack: AckValues) -> Result<(), FlowError> {
        let in_flight = self.bytes_sent.wrapping_sub(ack.bytes_received);
        // Channel lifetimes stay below 2^31 bytes (§2.1.2.1.4), so a difference that looks
        // larger than that is an acknowledgement from the future.
        if in_flight > i32::MAX as u32 {
            return Err(FlowError::AckBeyondSent {
                acked: ack.bytes_received,
                sent: self.bytes_sent,
            });
        }
        if ack.available_window > self.peer_window || ack.available_window < in_flight {
            return Err(FlowError::InvalidAvailableWindow {
                available: ack.available_window,
                window: self.peer_window,
                in_flight,
            });
        }
        self.available = ack.available_window - in_flight;
        Ok(())
    }

    /// Starts over on a successor channel instance with a (possibly new) peer window: BytesSent
    /// is per channel instance (§3.2.1.1.5.2).
    pub fn reset(&mut self, peer_window: u32) {
        *self = Self::new(peer_window);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receive_window_refuses_overrun() {
        let mut w = ReceiveWindow::new(MIN_RECEIVE_WINDOW);
        assert_eq!(w.on_received(8000), Ok(()));
        assert_eq!(
            w.on_received(200),
            Err(FlowError::WindowExceeded {
                len: 200,
                available: 192
            })
        );
        assert_eq!(w.queued(), 8000);
    }

    /// Known answers for the §3.2.1.5.1.1 formula and the half-window ack policy, with a 64 KiB
    /// window and 16 KiB PDUs (the sizes Windows uses for IN channel traffic).
    #[test]
    fn sender_and_recipient_known_answers() {
        let mut rx = ReceiveWindow::new(65536);
        let mut tx = SendWindow::new(65536);
        // Three 16 KiB PDUs go out and are queued by the recipient.
        for _ in 0..3 {
            assert!(tx.can_send(16384));
            tx.on_sent(16384);
            rx.on_received(16384).unwrap();
        }
        assert_eq!(tx.available(), 16384);
        assert_eq!(tx.bytes_sent(), 49152);
        assert_eq!(rx.advertised(), 16384);
        // Consuming the first PDU frees 16 KiB: the sender believes 16 KiB are free, below half
        // of the window, so an ack is due: BytesReceived 49152, AvailableWindow 32768.
        let ack = rx.on_consumed(16384).unwrap();
        assert_eq!(
            ack,
            AckValues {
                bytes_received: 49152,
                available_window: 32768
            }
        );
        // Meanwhile the sender sent a fourth PDU (the window is now full).
        tx.on_sent(16384);
        assert_eq!(tx.available(), 0);
        assert!(!tx.can_send(1));
        // Sender AvailableWindow = 32768 - (65536 - 49152) = 16384.
        tx.on_ack(ack).unwrap();
        assert_eq!(tx.available(), 16384);
        rx.on_received(16384).unwrap();
        // Consuming the next PDU: the sender again sees only 16 KiB free, so an ack:
        // BytesReceived 65536, AvailableWindow 32768.
        let ack = rx.on_consumed(16384).unwrap();
        assert_eq!(
            ack,
            AckValues {
                bytes_received: 65536,
                available_window: 32768
            }
        );
        // The last two PDUs leave the window; the sender already sees half of it: no ack.
        assert_eq!(rx.on_consumed(32768), None);
        assert_eq!(rx.available(), 65536);
        // Nothing in flight: Sender AvailableWindow = 32768 - (65536 - 65536).
        tx.on_ack(ack).unwrap();
        assert_eq!(tx.available(), 32768);
    }

    #[test]
    fn overrun_is_tolerated_when_asked_and_drains() {
        let mut w = ReceiveWindow::new(MIN_RECEIVE_WINDOW);
        w.on_received_overrun(10_000);
        assert!(w.is_full());
        assert_eq!(w.available(), 0);
        assert_eq!(w.bytes_received(), 10_000);
        let ack = w.on_consumed(10_000).unwrap();
        assert_eq!(
            ack,
            AckValues {
                bytes_received: 10_000,
                available_window: MIN_RECEIVE_WINDOW
            }
        );
        assert!(!w.is_full());
    }

    #[test]
    fn no_ack_while_sender_still_sees_half_the_window() {
        let mut rx = ReceiveWindow::new(65536);
        rx.on_received(20000).unwrap();
        assert_eq!(rx.on_consumed(20000), None);
        rx.on_received(20000).unwrap();
        // The sender now believes 25536 bytes are free (< 32768): ack.
        assert_eq!(
            rx.on_consumed(20000),
            Some(AckValues {
                bytes_received: 40000,
                available_window: 65536
            })
        );
    }

    #[test]
    fn invalid_acks_are_refused() {
        let mut tx = SendWindow::new(65536);
        tx.on_sent(1000);
        assert_eq!(
            tx.on_ack(AckValues {
                bytes_received: 2000,
                available_window: 65536
            }),
            Err(FlowError::AckBeyondSent {
                acked: 2000,
                sent: 1000
            })
        );
        assert!(matches!(
            tx.on_ack(AckValues {
                bytes_received: 0,
                available_window: 65537
            }),
            Err(FlowError::InvalidAvailableWindow { .. })
        ));
        assert!(matches!(
            tx.on_ack(AckValues {
                bytes_received: 0,
                available_window: 500
            }),
            Err(FlowError::InvalidAvailableWindow { .. })
        ));
        assert_eq!(tx.available(), 64536);
    }
}
