//! The documented concurrent semantics, case by case.

use aegis_crdt::{
    DWFlag, EWFlag, GCounter, LWWRegister, MVRegister, ORMap, ORSet, PNCounter, RWSet,
};

#[test]
fn seed_api_works() {
    let mut c = GCounter::new(1);
    c.increment(2);
    let mut d = GCounter::new(2);
    d.increment(3);
    c.merge(&d);
    assert_eq!(c.value(), 5);
    let mut reg = LWWRegister::new();
    reg.set("value", 7);
    assert_eq!(reg.get(), Some(&"value"));
    let mut s = ORSet::new(1);
    s.add("a");
    s.remove(&"a");
    assert!(!s.contains(&"a"));
}

#[test]
fn gcounter_overflow_is_an_error_and_changes_nothing() {
    let mut c = GCounter::new(1);
    c.increment(u64::MAX);
    assert!(c.try_increment(1).is_err());
    assert_eq!(c.value(), u64::MAX);
    let mut d = GCounter::new(2);
    d.increment(5);
    c.merge(&d);
    assert_eq!(c.value(), u64::MAX, "saturating value");
    assert_eq!(c.value_u128(), u128::from(u64::MAX) + 5);
    let mut p = PNCounter::new(1);
    p.decrement(3);
    assert_eq!(p.value(), -3);
}

#[test]
fn lww_ties_break_by_node_then_value() {
    let mut a = LWWRegister::with_node(1);
    let mut b = LWWRegister::with_node(2);
    let da = a.set("from-1", 10);
    let db = b.set("from-2", 10);
    a.merge(&db);
    b.merge(&da);
    assert_eq!(a.get(), Some(&"from-2"));
    assert_eq!(a, b);
    // Later timestamp wins regardless of node.
    let dl = a.set("later", 11);
    b.merge(&dl);
    assert_eq!(b.get(), Some(&"later"));
    assert_eq!(b.stamp(), Some((11, 1)));
}

#[test]
fn orset_concurrent_add_wins_and_remove_only_what_it_saw() {
    let mut a = ORSet::new(1);
    let mut b = ORSet::new(2);
    let add = a.add(1u8);
    b.merge(&add);
    let rm = b.remove(&1);
    let add_again = a.add(1);
    a.merge(&rm);
    b.merge(&add_again);
    assert!(a.contains(&1) && b.contains(&1));
    let rm_all = b.remove(&1);
    a.merge(&rm_all);
    assert!(!a.contains(&1));
    assert_eq!(a, b);
}

#[test]
fn orset_applies_small_deltas_to_big_sets() {
    let mut a = ORSet::new(1);
    for i in 0..5_000u32 {
        a.add(i);
    }
    let mut b = a.clone();
    let mut c = ORSet::new(3);
    c.merge(&a);
    let d1 = b.remove(&10);
    let d2 = b.add(10_000);
    let d3 = b.add(20);
    c.merge(&d1);
    c.merge(&d2);
    c.merge(&d3);
    assert!(!c.contains(&10) && c.contains(&10_000) && c.contains(&20));
    a.merge(&b);
    let mut cc = c.clone();
    cc.merge(&a);
    assert_eq!(a, b);
    assert_eq!(cc, c);
    assert_eq!(c.len(), 5_000);
}

#[test]
fn rwset_remove_wins_and_later_add_restores() {
    let mut a = RWSet::new(1);
    let mut b = RWSet::new(2);
    let add = a.add("k");
    let rm = b.remove(&"k");
    a.merge(&rm);
    b.merge(&add);
    assert!(!a.contains(&"k"));
    assert_eq!(a.marked_len(), 1, "remove-wins keeps the remove marks");
    let again = a.add("k");
    b.merge(&again);
    assert!(b.contains(&"k"));
}

#[test]
fn flags() {
    let mut e1 = EWFlag::new(1);
    let mut e2 = EWFlag::new(2);
    let on = e1.enable();
    e2.merge(&on);
    let off = e2.disable();
    let on2 = e1.enable();
    e1.merge(&off);
    e2.merge(&on2);
    assert!(e1.read() && e2.read(), "enable wins");
    let mut d1 = DWFlag::new(1);
    let mut d2 = DWFlag::new(2);
    let off = d1.disable();
    d2.merge(&off);
    let on = d2.enable();
    let off2 = d1.disable();
    d1.merge(&on);
    d2.merge(&off2);
    assert!(!d1.read() && !d2.read(), "disable wins");
}

#[test]
fn mvregister_keeps_concurrent_values() {
    let mut a = MVRegister::new(1);
    let mut b = MVRegister::new(2);
    let da = a.write(1);
    let db = b.write(2);
    a.merge(&db);
    b.merge(&da);
    assert_eq!(a.read(), vec![&1, &2]);
    assert_eq!(a, b);
    b.write(3);
    assert_eq!(b.read(), vec![&3]);
}

#[test]
fn ormap_reset_remove_keeps_concurrent_effects_only() {
    let mut a: ORMap<&str, ORSet<u8>> = ORMap::new(1);
    let mut b = ORMap::new(2);
    let d = a.update("k", |s| s.add(1));
    b.merge(&d);
    let rm = b.remove(&"k");
    let add = a.update("k", |s| s.add(2));
    a.merge(&rm);
    b.merge(&add);
    assert_eq!(a, b);
    let set = a.get(&"k").expect("concurrent add keeps the key");
    assert_eq!(set.iter().copied().collect::<Vec<_>>(), vec![2]);
    // Nested maps.
    let mut n: ORMap<u8, ORMap<u8, EWFlag>> = ORMap::new(1);
    n.update(1, |inner| inner.update(2, EWFlag::enable));
    assert!(n.get(&1).unwrap().get(&2).unwrap().read());
    n.update(1, |inner| inner.update(2, EWFlag::disable));
    assert!(!n.contains_key(&1), "an emptied nested value drops its key");
}
