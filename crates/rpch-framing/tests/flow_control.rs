//! Flow control (MS-RPCH §3.2.1.1.5, §3.2.1.4.1, §3.2.1.5.1): known answers, and a model in
//! which a sender and a recipient exchange PDUs and acks in arbitrary interleavings.

use std::collections::VecDeque;

use proptest::prelude::*;
use rpch_framing::channel::{AckValues, FlowError, ReceiveWindow, SendWindow};

/// MS-RPCH §4.2, "Flow Control and Receive Windows Example", step by step with its fictitious
/// 1,000-byte window. Each comment gives the example's row: sender AvailableWindow, BytesSent;
/// recipient AvailableWindow, BytesReceived. The example's recipient acknowledges after every
/// release, which [`ReceiveWindow::ack_now`] does on demand (our automatic policy acks less
/// often, see `recipient_acks_every_half_window`).
#[test]
fn ms_rpch_4_2_example() {
    let mut tx = SendWindow::new(1000);
    let mut rx = ReceiveWindow::new(1000);
    // Initial state: 1,000 0 | 1,000 0.
    assert_eq!((tx.available(), tx.bytes_sent()), (1000, 0));
    assert_eq!((rx.available(), rx.bytes_received()), (1000, 0));
    // The sender sends 250 bytes: 750 250 | 1,000 0.
    tx.on_sent(250);
    assert_eq!((tx.available(), tx.bytes_sent()), (750, 250));
    // The recipient receives them without releasing: 750 250 | 750 250.
    rx.on_received(250).unwrap();
    assert_eq!((rx.available(), rx.bytes_received()), (750, 250));
    // It releases 100 and acknowledges (250, 850): 750 250 | 850 250.
    rx.on_consumed(100);
    let ack1 = rx.ack_now();
    assert_eq!(
        ack1,
        AckValues {
            bytes_received: 250,
            available_window: 850
        }
    );
    // Before the ack arrives the sender sends 500 more: 250 750 | 850 250.
    tx.on_sent(500);
    assert_eq!((tx.available(), tx.bytes_sent()), (250, 750));
    // The ack arrives: 850 - (750 - 250) = 350.
    tx.on_ack(ack1).unwrap();
    assert_eq!(tx.available(), 350);
    // The recipient receives the 500 bytes: 350 750 | 350 750.
    rx.on_received(500).unwrap();
    assert_eq!((rx.available(), rx.bytes_received()), (350, 750));
    // It releases 200 and acknowledges (750, 550): 350 750 | 550 750.
    rx.on_consumed(200);
    let ack2 = rx.ack_now();
    assert_eq!(
        ack2,
        AckValues {
            bytes_received: 750,
            available_window: 550
        }
    );
    // The sender: 550 - (750 - 750) = 550.
    tx.on_ack(ack2).unwrap();
    assert_eq!(tx.available(), 550);
    // The recipient releases the rest and acknowledges (750, 1,000). (The example says "the
    // remaining 550 bytes"; 450 are left at this point, and the resulting window of 1,000 is
    // what the example shows.)
    rx.on_consumed(450);
    let ack3 = rx.ack_now();
    assert_eq!(
        ack3,
        AckValues {
            bytes_received: 750,
            available_window: 1000
        }
    );
    // The sender: 1,000 - (750 - 750) = 1,000.
    tx.on_ack(ack3).unwrap();
    assert_eq!(tx.available(), 1000);
}

/// The worked numbers of §3.2.1.5.1.1's formula: `Sender AvailableWindow =
/// AvailableWindow_from_ack - (BytesSent - BytesReceived_from_ack)`.
#[test]
fn formula_known_answers() {
    // (window, sent before the ack, ack.bytes_received, ack.available_window, expected)
    let cases = [
        (65536u32, 30000u32, 30000u32, 65536u32, 65536u32),
        (65536, 30000, 20000, 65536, 55536),
        (65536, 65536, 32768, 32768, 0),
        (8192, 8192, 4096, 8192, 4096),
        (262144, 100000, 0, 262144, 162144),
    ];
    for (window, sent, received, available, expected) in cases {
        let mut tx = SendWindow::new(window);
        tx.on_sent(sent);
        tx.on_ack(AckValues {
            bytes_received: received,
            available_window: available,
        })
        .unwrap();
        assert_eq!(
            tx.available(),
            expected,
            "{window} {sent} {received} {available}"
        );
    }
}

#[test]
fn recipient_acks_every_half_window() {
    // 64 KiB window, 4 KiB PDUs consumed as they arrive: an ack whenever the sender's view of
    // the free window drops below 32 KiB, i.e. after every 9th PDU (36 KiB > 32 KiB).
    let mut rx = ReceiveWindow::new(65536);
    let mut acks = Vec::new();
    for i in 1..=40u32 {
        rx.on_received(4096).unwrap();
        if let Some(a) = rx.on_consumed(4096) {
            acks.push((i, a.bytes_received, a.available_window));
        }
    }
    assert_eq!(
        acks,
        [
            (9, 36864, 65536),
            (18, 73728, 65536),
            (27, 110592, 65536),
            (36, 147456, 65536)
        ]
    );
}

#[test]
fn bytes_received_wraps_like_the_wire_field() {
    let mut rx = ReceiveWindow::new(65536);
    let mut tx = SendWindow::new(65536);
    // Start both near u32::MAX by streaming ~4 GiB in 32 KiB steps.
    for _ in 0..131_072u32 {
        tx.on_sent(32768);
        rx.on_received(32768).unwrap();
        if let Some(ack) = rx.on_consumed(32768) {
            tx.on_ack(ack).unwrap();
        }
    }
    let ack = rx.ack_now();
    tx.on_ack(ack).unwrap();
    assert_eq!(tx.available(), 65536);
}

#[test]
fn acks_that_break_the_rules_are_refused() {
    let mut tx = SendWindow::new(16384);
    tx.on_sent(10000);
    assert!(matches!(
        tx.on_ack(AckValues {
            bytes_received: 10001,
            available_window: 16384
        }),
        Err(FlowError::AckBeyondSent { .. })
    ));
    assert!(matches!(
        tx.on_ack(AckValues {
            bytes_received: 0,
            available_window: 9999
        }),
        Err(FlowError::InvalidAvailableWindow { .. })
    ));
}

proptest! {
    /// A sender that only sends what `can_send` allows never overruns the recipient, whatever
    /// the PDU sizes, consumption pace and ack delays; and once everything is consumed and
    /// acknowledged the sender sees the whole window again.
    #[test]
    fn sender_never_overruns_recipient(
        window in 8192u32..=262144,
        ops in prop::collection::vec((1u32..9000, 0u8..4), 1..300),
    ) {
        let mut tx = SendWindow::new(window);
        let mut rx = ReceiveWindow::new(window);
        let mut in_flight: VecDeque<u32> = VecDeque::new();
        let mut queued: VecDeque<u32> = VecDeque::new();
        let mut acks: VecDeque<AckValues> = VecDeque::new();
        for (len, action) in ops {
            let len = len.min(window);
            match action {
                0 => if tx.can_send(len) { tx.on_sent(len); in_flight.push_back(len); },
                1 => if let Some(l) = in_flight.pop_front() {
                    rx.on_received(l).expect("overrun");
                    queued.push_back(l);
                },
                2 => if let Some(l) = queued.pop_front()
                    && let Some(a) = rx.on_consumed(l)
                {
                    acks.push_back(a);
                },
                _ => if let Some(a) = acks.pop_front() { tx.on_ack(a).expect("valid ack refused"); },
            }
            prop_assert!(tx.available() <= window);
        }
        while let Some(l) = in_flight.pop_front() {
            rx.on_received(l).expect("overrun");
            queued.push_back(l);
        }
        while let Some(l) = queued.pop_front() {
            if let Some(a) = rx.on_consumed(l) { acks.push_back(a); }
        }
        acks.push_back(rx.ack_now());
        while let Some(a) = acks.pop_front() {
            tx.on_ack(a).expect("valid ack refused");
        }
        prop_assert_eq!(tx.available(), window);
    }
}
