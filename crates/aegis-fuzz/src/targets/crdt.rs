//! CRDT state and interval tree clock encodings, as replicas exchange them.

use std::fmt::Debug;

use aegis_crdt::codec::{self, Encodable};
use aegis_crdt::{GCounter, LWWRegister, MVRegister, ORSet, PNCounter};
use aegis_vclock::Stamp;

use crate::engine::Verdict;

fn encode<T: Encodable>(value: &T) -> Vec<u8> {
    codec::encode(value).expect("these CRDT types always encode")
}

pub(crate) fn crdt_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();

    let mut a = GCounter::new(1);
    seeds.push(encode(&a));
    a.increment(5);
    let mut b = GCounter::new(2);
    b.increment(u64::MAX / 2);
    a.merge(&b);
    seeds.push(encode(&a));

    let mut p = PNCounter::new(1);
    p.increment(300);
    p.decrement(7);
    let mut q = PNCounter::new(9);
    q.decrement(1 << 40);
    p.merge(&q);
    seeds.push(encode(&p));

    let mut set: ORSet<String> = ORSet::new(1);
    seeds.push(encode(&set));
    for word in ["apple", "banana", "cherry", "date"] {
        set.add(word.to_owned());
    }
    set.remove(&"banana".to_owned());
    let mut other: ORSet<String> = ORSet::new(2);
    other.add("elderberry".to_owned());
    other.add("apple".to_owned());
    set.merge(&other);
    seeds.push(encode(&set));

    let mut register: LWWRegister<String> = LWWRegister::new();
    seeds.push(encode(&register));
    register.set("hello".to_owned(), 1_700_000_000_000);
    seeds.push(encode(&register));

    let mut x: MVRegister<u64> = MVRegister::new(1);
    let mut y: MVRegister<u64> = MVRegister::new(2);
    let dx = x.write(10);
    let dy = y.write(u64::MAX);
    x.merge(&dy);
    y.merge(&dx);
    seeds.push(encode(&x));
    seeds
}

/// Decodes as `T`; on success, checks that encoding and decoding again gives the same
/// state.
fn decode_as<T: Encodable + PartialEq + Debug>(input: &[u8]) -> bool {
    let Ok(value) = codec::decode::<T>(input) else {
        return false;
    };
    let again: T = codec::decode(&encode(&value)).expect("a re-encoded state decodes");
    assert_eq!(again, value, "state changed in a round trip");
    true
}

/// `codec::decode` as every sampled type (the type tag picks at most one).
pub(crate) fn crdt_run(input: &[u8]) -> Verdict {
    let accepted = [
        decode_as::<GCounter>(input),
        decode_as::<PNCounter>(input),
        decode_as::<ORSet<String>>(input),
        decode_as::<LWWRegister<String>>(input),
        decode_as::<MVRegister<u64>>(input),
    ];
    assert!(
        accepted.iter().filter(|&&a| a).count() <= 1,
        "one encoding decoded as two types"
    );
    if accepted.contains(&true) {
        Verdict::Accepted
    } else {
        Verdict::Rejected
    }
}

pub(crate) fn itc_seeds() -> Vec<Vec<u8>> {
    let seed = Stamp::seed();
    let (mut a, b) = seed.fork();
    let (mut b1, mut b2) = b.fork();
    a.event().expect("a has an id");
    a.event().expect("a has an id");
    b1.event().expect("b1 has an id");
    for _ in 0..40 {
        b2.event().expect("b2 has an id");
    }
    let ab = a.join(&b1).expect("disjoint ids");
    let (mut c, d) = ab.fork();
    c.event().expect("c has an id");
    [seed, a, b1, b2.peek(), ab, c, d]
        .iter()
        .map(Stamp::encode)
        .collect()
}

/// `Stamp::decode`, and a round trip of what it accepts.
pub(crate) fn itc_run(input: &[u8]) -> Verdict {
    match Stamp::decode(input) {
        Ok(stamp) => {
            let again = Stamp::decode(&stamp.encode()).expect("a re-encoded stamp decodes");
            assert_eq!(again, stamp, "stamp changed in a round trip");
            Verdict::Accepted
        }
        Err(_) => Verdict::Rejected,
    }
}
