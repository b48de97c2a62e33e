use aegis_vclock::{Ordering, VectorClock};

fn vc(pairs: &[(u64, u64)]) -> VectorClock {
    pairs.iter().copied().collect()
}

#[test]
fn seed_api_round_trip() {
    let mut a = VectorClock::new();
    assert_eq!(a.increment(1), 1);
    assert_eq!(a.increment(1), 2);
    assert_eq!(a.get(1), 2);
    assert_eq!(a.get(9), 0);
    let mut b = VectorClock::new();
    b.increment(2);
    assert_eq!(a.compare(&b), Ordering::Concurrent);
    assert!(a.is_concurrent(&b));
    let mut c = a.clone();
    c.merge(&b);
    assert_eq!(c, vc(&[(1, 2), (2, 1)]));
    assert!(a.happened_before(&c));
    assert!(c.dominates(&a) && c.dominates(&b) && c.dominates(&c));
    assert_eq!(c.compare(&a), Ordering::After);
    assert_eq!(c.compare(&c.clone()), Ordering::Equal);
}

#[test]
fn compare_handles_disjoint_and_interleaved_nodes() {
    let a = vc(&[(1, 1), (3, 1), (5, 1)]);
    let b = vc(&[(1, 1), (2, 1), (3, 1), (4, 1), (5, 1)]);
    assert_eq!(a.compare(&b), Ordering::Before);
    assert_eq!(b.compare(&a), Ordering::After);
    let c = vc(&[(6, 1)]);
    assert_eq!(a.compare(&c), Ordering::Concurrent);
    assert_eq!(VectorClock::new().compare(&c), Ordering::Before);
    assert_eq!(a.partial_cmp(&b), Some(core::cmp::Ordering::Less));
    assert_eq!(a.partial_cmp(&c), None);
}

#[test]
fn merge_spills_past_inline_capacity_and_stays_sorted() {
    let mut a = vc(&[(10, 1), (30, 4)]);
    let b = vc(&[(5, 2), (20, 1), (30, 2), (40, 7), (50, 1), (60, 1)]);
    a.merge(&b);
    let got: Vec<_> = a.iter().collect();
    assert_eq!(
        got,
        vec![(5, 2), (10, 1), (20, 1), (30, 4), (40, 7), (50, 1), (60, 1)]
    );
    assert_eq!(a.total(), 17);
}

#[test]
fn zero_counters_are_never_stored() {
    let mut a = vc(&[(1, 0), (2, 3)]);
    assert_eq!(a.len(), 1);
    a.set(2, 0);
    assert!(a.is_empty());
    assert_eq!(a, VectorClock::new());
    a.observe(4, 0);
    assert!(a.is_empty());
}

#[test]
fn meet_is_pointwise_minimum() {
    let mut a = vc(&[(1, 3), (2, 1)]);
    a.meet(&vc(&[(1, 2), (3, 5)]));
    assert_eq!(a, vc(&[(1, 2)]));
}

#[test]
fn prune_removes_a_retired_node() {
    let mut a = vc(&[(1, 3), (2, 4)]);
    let mut b = a.clone();
    b.increment(1);
    assert_eq!(a.prune(2), 4);
    assert_eq!(b.prune(2), 4);
    assert_eq!(a.prune(2), 0);
    // Both sides pruned a causally stable entry, so the order is unchanged.
    assert_eq!(a.compare(&b), Ordering::Before);
}
