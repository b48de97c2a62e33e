//! Rendezvous laws: minimal movement, top-n against a full sort, order independence.

use aegis_hash::{Error, Rendezvous, TOP_N_MAX};
use proptest::prelude::*;

use crate::support::key_hashes;

fn hrw_of(nodes: &[(u64, f64)]) -> Rendezvous<u64> {
    let mut hrw = Rendezvous::empty();
    for &(n, w) in nodes {
        assert!(hrw.add_node_weighted(n, w).unwrap());
    }
    hrw
}

fn weighted_nodes() -> impl Strategy<Value = Vec<(u64, f64)>> {
    prop::collection::btree_map(any::<u64>(), prop_oneof![Just(1.0), 0.1_f64..10.0], 1..20)
        .prop_map(|m| m.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn adding_and_removing_move_minimally(nodes in weighted_nodes(), extra in any::<u64>(), seed in any::<u64>()) {
        prop_assume!(nodes.iter().all(|&(n, _)| n != extra));
        let before = hrw_of(&nodes);
        let mut after = before.clone();
        prop_assert!(after.add_node_weighted(extra, 1.0).unwrap());
        for h in key_hashes(300, seed) {
            let (a, b) = (before.get_node_by_hash(h).unwrap(), after.get_node_by_hash(h).unwrap());
            prop_assert!(a == b || *b == extra);
        }
        let gone = nodes[0].0;
        let mut removed = before.clone();
        prop_assert!(removed.remove_node(&gone));
        for h in key_hashes(300, seed ^ 1) {
            let (a, b) = (before.get_node_by_hash(h), removed.get_node_by_hash(h));
            prop_assert!(a == b || a == Some(&gone));
        }
    }

    #[test]
    fn top_n_is_the_head_of_the_full_ranking(nodes in weighted_nodes(), n in 0_usize..=TOP_N_MAX, seed in any::<u64>()) {
        let hrw = hrw_of(&nodes);
        let all = nodes.len().min(TOP_N_MAX);
        for h in key_hashes(50, seed) {
            let top = hrw.get_nodes_by_hash(h, n).unwrap();
            let full = hrw.get_nodes_by_hash(h, all).unwrap();
            prop_assert_eq!(top.len(), n.min(nodes.len()));
            prop_assert_eq!(top.get(0), if n > 0 { hrw.get_node_by_hash(h) } else { None });
            let head: Vec<_> = full.iter().take(top.len()).collect();
            prop_assert_eq!(top.iter().collect::<Vec<_>>(), head);
            // Removing the primary promotes the second choice.
            if top.len() >= 2 {
                let mut without = hrw.clone();
                without.remove_node(top.get(0).unwrap());
                prop_assert_eq!(without.get_node_by_hash(h), top.get(1));
            }
        }
    }

    #[test]
    fn insertion_order_does_not_matter(nodes in weighted_nodes(), seed in any::<u64>()) {
        let a = hrw_of(&nodes);
        let reversed: Vec<_> = nodes.iter().rev().copied().collect();
        let b = hrw_of(&reversed);
        prop_assert_eq!(&a, &b);
        for h in key_hashes(100, seed) {
            prop_assert_eq!(a.get_node_by_hash(h), b.get_node_by_hash(h));
        }
    }
}

#[test]
fn rejects_bad_weights_and_too_many_replicas() {
    let mut hrw = Rendezvous::new();
    for w in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            hrw.add_node_weighted("a", w),
            Err(Error::WeightInvalid { .. })
        ));
    }
    hrw.add_node("a");
    assert_eq!(
        hrw.get_nodes("k", TOP_N_MAX + 1).unwrap_err(),
        Error::ReplicasTooMany {
            requested: TOP_N_MAX + 1,
            max: TOP_N_MAX
        }
    );
    assert!(Rendezvous::new().get_node("k").is_none());
    assert!(Rendezvous::new().get_nodes("k", 3).unwrap().is_empty());
}
