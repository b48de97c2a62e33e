//! No tombstones: after every element is added and then removed, the add-wins set's
//! state is bounded by the number of replicas, not by the history.

use aegis_crdt::{CausalCrdt, EWFlag, ORMap, ORSet, codec};

#[test]
fn orset_add_all_remove_all_leaves_per_replica_state() {
    let mut replicas: Vec<ORSet<u32>> = (1..=4).map(ORSet::new).collect();
    for (i, r) in replicas.iter_mut().enumerate() {
        for e in 0..2_000u32 {
            r.add(e * 4 + i as u32);
        }
    }
    sync(&mut replicas);
    assert_eq!(replicas[0].len(), 8_000);
    let full = codec::encode(&replicas[0]).unwrap().len();
    for (i, r) in replicas.iter_mut().enumerate() {
        // Each replica removes a quarter, including elements others added.
        for e in (0..8_000u32).filter(|e| e % 4 == i as u32) {
            r.remove(&((e + 1) % 8_000));
        }
    }
    sync(&mut replicas);
    for r in &replicas {
        assert!(r.is_empty());
        assert_eq!(r.store().entry_count(), 0);
        assert_eq!(
            r.context().cloud().len(),
            0,
            "removed dots fold into the vector"
        );
        assert!(r.context().version_vector().len() <= 4);
        let bytes = codec::encode(r).unwrap().len();
        assert!(
            bytes <= 4 + 4 * 12,
            "emptied set encodes in {bytes} bytes (full: {full})"
        );
    }
}

#[test]
fn ormap_and_flag_removals_leave_no_entries() {
    let mut m: ORMap<u32, ORSet<u32>> = ORMap::new(1);
    for k in 0..100 {
        m.update(k, |s| s.add(k));
    }
    for k in 0..100 {
        m.remove(&k);
    }
    assert!(m.is_empty());
    assert!(codec::encode(&m).unwrap().len() <= 8);
    let mut f = EWFlag::new(9);
    for _ in 0..100 {
        f.enable();
        f.disable();
    }
    assert!(!f.read());
    assert!(codec::encode(&f).unwrap().len() <= 8);
}

fn sync(replicas: &mut [ORSet<u32>]) {
    let mut all = replicas[0].clone();
    for r in replicas.iter() {
        all.merge(r);
    }
    for r in replicas.iter_mut() {
        r.merge(&all);
    }
}
