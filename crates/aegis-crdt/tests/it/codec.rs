//! Encoding: round trips, exact test vectors, and errors (never panics) on garbage,
//! truncation and values that break invariants.

use aegis_crdt::codec::{self, Encodable, FORMAT_VERSION};
use aegis_crdt::{
    EWFlag, Error, GCounter, GSet, LWWRegister, MVRegister, ORMap, ORSet, PNCounter, RWSet,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::model::Model;
use crate::sim::history;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn roundtrip<M: Model>() {
    let mut runner = TestRunner::new(Config::with_cases(48));
    runner
        .run(&any::<u64>(), |seed| {
            for state in history::<M>(seed) {
                let bytes = codec::encode(&state).unwrap();
                let back: M::State = codec::decode(&bytes).unwrap();
                prop_assert_eq!(&back, &state, "seed {}", seed);
                // Deterministic: equal states, equal bytes.
                prop_assert_eq!(codec::encode(&back).unwrap(), bytes.clone());
                // Every strict prefix is an error, never a panic.
                for cut in 0..bytes.len() {
                    prop_assert!(codec::decode::<M::State>(&bytes[..cut]).is_err());
                }
                let mut longer = bytes.clone();
                longer.push(0);
                let trailing = matches!(
                    codec::decode::<M::State>(&longer),
                    Err(Error::TrailingBytes { count: 1 })
                );
                prop_assert!(trailing);
            }
            Ok(())
        })
        .unwrap();
}

fn garbage<M: Model>() {
    let mut runner = TestRunner::new(Config::with_cases(256));
    let tag = <M::State as Encodable>::TYPE_TAG;
    runner
        .run(&proptest::collection::vec(any::<u8>(), 0..96), |payload| {
            let mut bytes = vec![FORMAT_VERSION, tag];
            bytes.extend_from_slice(&payload);
            // Either outcome is fine; a panic is not. A success must re-encode to itself.
            if let Ok(v) = codec::decode::<M::State>(&bytes) {
                prop_assert_eq!(codec::encode(&v).unwrap(), bytes);
            }
            Ok(())
        })
        .unwrap();
}

mod roundtrips {
    use super::roundtrip;
    crate::for_each_model!(roundtrip);
}

mod garbage_inputs {
    use super::garbage;
    crate::for_each_model!(garbage);
}

#[test]
fn an_overlong_varint_is_not_canonical() {
    let mut counter = GCounter::new(8);
    counter.increment(123);
    let bytes = codec::encode(&counter).unwrap();
    assert_eq!(codec::decode::<GCounter>(&bytes).unwrap(), counter);
    // The same counter with the count 123 written in two varint bytes instead of one.
    let position = bytes.iter().rposition(|&b| b == 123).unwrap();
    let mut overlong = bytes.clone();
    overlong.splice(position..=position, [123 | 0x80, 0]);
    assert!(matches!(
        codec::decode::<GCounter>(&overlong),
        Err(Error::NotCanonical)
    ));
}

#[test]
fn header_errors() {
    assert!(matches!(codec::decode::<GCounter>(&[]), Err(Error::Empty)));
    assert!(matches!(
        codec::decode::<GCounter>(&[9, 1, 0, 0]),
        Err(Error::UnsupportedVersion {
            found: 9,
            supported: 1
        })
    ));
    let bytes = codec::encode(&PNCounter::new(1)).unwrap();
    assert!(matches!(
        codec::decode::<GCounter>(&bytes),
        Err(Error::WrongType {
            found: 2,
            expected: 1
        })
    ));
}

#[test]
fn invariant_breaking_values_are_rejected() {
    // GCounter entries out of order.
    assert!(codec::decode::<GCounter>(&[1, 1, 1, 2, 5, 1, 2, 1, 1]).is_err());
    // An ORSet whose store holds a dot its context lacks: take a valid one-element
    // set and empty its context (the last two bytes: empty vector, empty cloud).
    let mut s = ORSet::new(1);
    s.add(7u8);
    let mut bytes = codec::encode(&s).unwrap();
    let vector = bytes.len() - 4;
    assert_eq!(
        &bytes[vector..],
        &[1, 1, 1, 0],
        "context: one entry (1, 1), no cloud"
    );
    bytes.truncate(vector);
    bytes.extend_from_slice(&[0, 0]);
    assert!(codec::decode::<ORSet<u8>>(&bytes).is_err());
}

#[test]
fn counters_near_overflow_are_rejected() {
    use aegis_crdt::dotstore::DOT_COUNTER_MAX;
    use aegis_crdt::{CausalContext, CausalCrdt, Dot, DotSet};
    for counter in [DOT_COUNTER_MAX, DOT_COUNTER_MAX + 1, u64::MAX] {
        let cc: CausalContext = [Dot::new(1, counter)].into_iter().collect();
        let flag = EWFlag::from_parts(1, DotSet::default(), cc);
        let bytes = codec::encode(&flag).unwrap();
        let decoded = codec::decode::<EWFlag>(&bytes);
        assert_eq!(
            decoded.is_ok(),
            counter <= DOT_COUNTER_MAX,
            "counter {counter}"
        );
    }
}

fn vector<T: Encodable + PartialEq + std::fmt::Debug>(value: &T, expected: &str) {
    let bytes = codec::encode(value).unwrap();
    assert_eq!(hex(&bytes), expected, "encoding of {value:?} changed");
    assert_eq!(&codec::decode::<T>(&bytes).unwrap(), value);
}

#[test]
fn test_vectors() {
    let mut g = GCounter::new(3);
    g.increment(5);
    let mut other = GCounter::new(300);
    other.increment(1);
    g.merge(&other);
    // version 1, tag 1, node 3, two entries: (3, 5) and (300 = varint ac 02, 1).
    vector(&g, "010103020305ac0201");

    let mut p = PNCounter::new(1);
    p.increment(2);
    p.decrement(1);
    vector(&p, "01020101010201010101");

    let mut gs = GSet::new();
    gs.insert(2u8);
    gs.insert(1u8);
    vector(&gs, "0103020102");

    let mut l = LWWRegister::with_node(2);
    l.set(String::from("hi"), 1_000);
    vector(&l, "01040201e80702026869");

    let mut s = ORSet::new(1);
    s.add(10u32);
    s.add(20u32);
    s.remove(&10);
    let mut t = ORSet::new(2);
    t.add(20u32);
    s.merge(&t);
    // version, tag 8, node 1; store: two groups, node 1 with one entry (counter gap
    // 2, element 20) and node 2 with one entry (gap 1, element 20); context: vector
    // [(1, 2), (2, 1)], empty cloud. Element 10's dot (1, 1) survives only in the
    // context: no tombstone.
    vector(&s, "010801020101021402010114020102020100");

    let mut rw = RWSet::new(1);
    rw.add(1u8);
    rw.remove(&2);
    vector(&rw, "010901020101010101020101020001010200");

    let mut f = EWFlag::new(1);
    f.enable();
    vector(&f, "01060101010101010100");

    let mut mv = MVRegister::new(1);
    mv.write(7u8);
    vector(&mv, "0105010101010701010100");

    let mut m: ORMap<u8, MVRegister<u8>> = ORMap::new(1);
    m.update(4, |r| r.write(9));
    vector(&m, "010a0101040101010901010100");
}
