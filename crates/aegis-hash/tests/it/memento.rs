//! MementoHash laws under random sequences of additions and removals.

use aegis_hash::Memento;
use proptest::prelude::*;

use crate::support::key_hashes;

#[derive(Debug, Clone)]
enum Op {
    Add,
    Remove(prop::sample::Index),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![1 => Just(Op::Add), 1 => any::<prop::sample::Index>().prop_map(Op::Remove)],
        1..40,
    )
}

fn owners(m: &Memento<u64>, keys: &[u64]) -> Vec<Option<u64>> {
    keys.iter()
        .map(|&h| m.get_node_by_hash(h).copied())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_step_moves_keys_minimally(initial in 1_u64..20, ops in ops(), seed in any::<u64>()) {
        let keys = key_hashes(300, seed);
        let mut m = Memento::<u64>::empty();
        for n in 0..initial {
            m.add_node(n);
        }
        let mut members: Vec<u64> = (0..initial).collect();
        let mut next = initial;
        let mut history = vec![(m.clone(), owners(&m, &keys))];
        for op in ops {
            let before = owners(&m, &keys);
            match op {
                Op::Add => {
                    prop_assert!(m.add_node(next));
                    for (a, b) in before.iter().zip(owners(&m, &keys)) {
                        prop_assert!(a.is_none() || *a == b || b == Some(next), "{a:?} -> {b:?}");
                    }
                    members.push(next);
                    next += 1;
                }
                Op::Remove(i) if !members.is_empty() => {
                    let gone = members.remove(i.index(members.len()));
                    prop_assert!(m.remove_node(&gone));
                    for (a, b) in before.iter().zip(owners(&m, &keys)) {
                        prop_assert!(*a == b || *a == Some(gone), "{a:?} -> {b:?}");
                        prop_assert_ne!(b, Some(gone));
                    }
                }
                Op::Remove(_) => {}
            }
            prop_assert_eq!(m.len(), members.len());
            for o in owners(&m, &keys) {
                prop_assert!(o.is_none_or(|o| members.contains(&o)));
            }
            history.push((m.clone(), owners(&m, &keys)));
        }
        // Replaying the same operations elsewhere gives the same placement.
        let (last, last_owners) = history.last().unwrap();
        prop_assert_eq!(owners(last, &keys), last_owners.clone());
    }

    #[test]
    fn remove_then_add_restores_placement(initial in 2_u64..30, picks in prop::collection::vec(any::<prop::sample::Index>(), 1..10), seed in any::<u64>()) {
        let keys = key_hashes(300, seed);
        let mut m = Memento::<u64>::empty();
        for n in 0..initial {
            m.add_node(n);
        }
        let start = owners(&m, &keys);
        let mut members: Vec<u64> = (0..initial).collect();
        let mut removed = Vec::new();
        for p in picks {
            if members.len() > 1 {
                let gone = members.remove(p.index(members.len()));
                let bucket = m.bucket_of(&gone).unwrap();
                m.remove_node(&gone);
                removed.push((gone, bucket));
            }
        }
        // Re-adding in reverse order puts every node back in its bucket.
        for &(node, bucket) in removed.iter().rev() {
            m.add_node(node);
            prop_assert_eq!(m.bucket_of(&node), Some(bucket));
        }
        prop_assert_eq!(owners(&m, &keys), start);
    }
}

#[test]
fn empty_and_emptied() {
    let mut m = Memento::new();
    assert!(m.get_node("k").is_none());
    m.add_node("a");
    m.add_node("b");
    assert!(m.remove_node(&"a".to_string()));
    assert!(!m.remove_node(&"a".to_string()));
    assert_eq!(m.get_node("k").map(String::as_str), Some("b"));
    assert!(m.remove_node(&"b".to_string()));
    assert!(m.is_empty());
    assert!(m.get_node("k").is_none());
    m.add_node("c");
    assert_eq!(m.get_node("k").map(String::as_str), Some("c"));
}
