//! The anti-entropy helper step by step: intervals, acknowledgements, garbage
//! collection, the full-state fallback and the buffer bound.

use aegis_crdt::anti_entropy::{AntiEntropy, AntiEntropyConfig, Message, Outgoing};
use aegis_crdt::{Error, GCounter, ORSet};

fn config(delta_buffer_max: usize) -> AntiEntropyConfig {
    AntiEntropyConfig {
        delta_buffer_max,
        neighbours_max: 4,
    }
}

fn only(mut out: Vec<Outgoing<ORSet<u32>>>) -> (u64, ORSet<u32>) {
    assert_eq!(out.len(), 1);
    match out.remove(0).message {
        Message::Delta { seq, delta } => (seq, delta),
        Message::Ack { .. } => panic!("expected a delta"),
    }
}

#[test]
fn ships_intervals_then_drops_acknowledged_deltas() {
    let mut a = AntiEntropy::new(1, ORSet::new(1), config(16)).unwrap();
    let mut b = AntiEntropy::new(2, ORSet::new(2), config(16)).unwrap();
    assert!(a.add_neighbour(2) && b.add_neighbour(1));
    a.update(|s| s.add(1));
    a.update(|s| s.add(2));
    let (seq, delta) = only(a.poll_transmit());
    assert_eq!(seq, 2);
    assert_eq!(delta.iter().copied().collect::<Vec<_>>(), vec![1, 2]);
    // Lost: the next transmission ships the same interval again.
    let (seq, delta) = only(a.poll_transmit());
    assert_eq!(seq, 2);
    let ack = b.handle_message(1, Message::Delta { seq, delta }).unwrap();
    assert_eq!(ack.target, 1);
    assert_eq!(ack.message, Message::Ack { seq: 2 });
    assert_eq!(
        b.buffered(),
        1,
        "an inflating delta is buffered for b's neighbours"
    );
    assert!(a.handle_message(2, ack.message.clone()).is_none());
    assert_eq!(a.buffered(), 0, "acknowledged by every neighbour: dropped");
    assert!(a.poll_transmit().is_empty(), "nothing due");
    // Duplicate ack and a stale one change nothing.
    a.handle_message(2, Message::Ack { seq: 1 });
    a.update(|s| s.remove(&1));
    let (seq, delta) = only(a.poll_transmit());
    assert_eq!(seq, 3);
    assert!(delta.iter().next().is_none(), "only the remove's delta");
    b.handle_message(1, Message::Delta { seq, delta });
    assert_eq!(a.state(), b.state());
    // Receiving a delta already included is acknowledged but not buffered again.
    let before = b.buffered();
    b.handle_message(
        1,
        Message::Delta {
            seq: 3,
            delta: a.state().clone(),
        },
    );
    assert_eq!(b.buffered(), before);
}

#[test]
fn falls_back_to_full_state_and_keeps_the_bound() {
    let mut a = AntiEntropy::new(1, GCounter::new(1), config(3)).unwrap();
    assert!(a.add_neighbour(2));
    for _ in 0..10 {
        a.update(|c| c.increment(1));
        assert!(a.buffered() <= 3);
    }
    let out = a.poll_transmit();
    assert_eq!(out.len(), 1);
    match &out[0].message {
        Message::Delta { seq, delta } => {
            assert_eq!(*seq, 10);
            assert_eq!(delta, a.state(), "too far behind: full state");
        }
        Message::Ack { .. } => panic!("expected a delta"),
    }
    // Once acknowledged at 8, the neighbour gets the last two deltas only.
    a.handle_message(2, Message::Ack { seq: 8 });
    let out = a.poll_transmit();
    match &out[0].message {
        Message::Delta { delta, .. } => assert_eq!(delta.value(), 10),
        Message::Ack { .. } => panic!("expected a delta"),
    }
    assert_eq!(a.buffered(), 2, "deltas below every ack are dropped");
    // An ack beyond what was sent is clamped.
    a.handle_message(2, Message::Ack { seq: 99 });
    assert!(a.poll_transmit().is_empty());
}

#[test]
fn config_is_validated_and_neighbours_bounded() {
    assert!(matches!(
        AntiEntropy::new(1, GCounter::new(1), config(0)),
        Err(Error::InvalidConfig {
            field: "delta_buffer_max",
            ..
        })
    ));
    let cfg = AntiEntropyConfig {
        delta_buffer_max: 4,
        neighbours_max: 1,
    };
    assert!(matches!(cfg.validate(), Ok(())));
    let mut a = AntiEntropy::new(1, GCounter::new(1), cfg).unwrap();
    assert!(a.add_neighbour(2));
    assert!(!a.add_neighbour(3));
    a.remove_neighbour(2);
    assert!(a.add_neighbour(3));
}
