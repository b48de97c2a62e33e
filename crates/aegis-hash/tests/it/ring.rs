//! HashRing laws: minimal movement, replicas, order independence, diff.

use aegis_hash::{Error, HashRing};
use proptest::prelude::*;

use crate::support::key_hashes;

const VNODES: u32 = 16;

fn ring_of(nodes: &[u64]) -> HashRing<u64> {
    let mut ring = HashRing::with_vnodes(VNODES);
    for &n in nodes {
        ring.add_node(n);
    }
    ring
}

fn node_sets() -> impl Strategy<Value = (Vec<u64>, u64)> {
    (
        prop::collection::btree_set(any::<u64>(), 1..12),
        any::<u64>(),
    )
        .prop_filter("extra node is new", |(set, extra)| !set.contains(extra))
        .prop_map(|(set, extra)| (set.into_iter().collect(), extra))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn adding_moves_keys_only_to_the_new_node((nodes, extra) in node_sets(), seed in any::<u64>()) {
        let before = ring_of(&nodes);
        let mut after = before.clone();
        prop_assert!(after.add_node(extra));
        for h in key_hashes(500, seed) {
            let (a, b) = (before.get_node_by_hash(h).unwrap(), after.get_node_by_hash(h).unwrap());
            prop_assert!(a == b || *b == extra, "key {h:#x} moved {a} -> {b}");
        }
        // Removing it again restores the ring exactly.
        prop_assert!(after.remove_node(&extra));
        prop_assert_eq!(&after, &before);
    }

    #[test]
    fn removing_moves_only_the_removed_nodes_keys((nodes, _) in node_sets(), pick in any::<prop::sample::Index>(), seed in any::<u64>()) {
        prop_assume!(nodes.len() > 1);
        let gone = nodes[pick.index(nodes.len())];
        let before = ring_of(&nodes);
        let mut after = before.clone();
        prop_assert!(after.remove_node(&gone));
        prop_assert!(!after.remove_node(&gone));
        for h in key_hashes(500, seed) {
            let (a, b) = (before.get_node_by_hash(h).unwrap(), after.get_node_by_hash(h).unwrap());
            prop_assert!(a == b || *a == gone, "key {h:#x} moved {a} -> {b}");
            prop_assert_ne!(*b, gone);
        }
    }

    #[test]
    fn get_nodes_are_distinct_with_primary_first((nodes, _) in node_sets(), n in 0_usize..15, seed in any::<u64>()) {
        let ring = ring_of(&nodes);
        for h in key_hashes(100, seed) {
            let mut out = Vec::new();
            ring.get_nodes_by_hash_into(h, n, &mut out);
            prop_assert_eq!(out.len(), n.min(nodes.len()));
            if n > 0 {
                prop_assert_eq!(out[0], ring.get_node_by_hash(h).unwrap());
            }
            let mut distinct = out.clone();
            distinct.sort();
            distinct.dedup();
            prop_assert_eq!(distinct.len(), out.len());
        }
    }

    #[test]
    fn insertion_order_does_not_matter((nodes, _) in node_sets(), order in any::<u64>(), seed in any::<u64>()) {
        let mut shuffled = nodes.clone();
        // Fisher-Yates with the perturbed seed.
        let mut state = crate::support::SplitMix64(order);
        for i in (1..shuffled.len()).rev() {
            let j = (state.next_u64() % (i as u64 + 1)) as usize;
            shuffled.swap(i, j);
        }
        let a = ring_of(&nodes);
        let mut b = HashRing::with_vnodes(VNODES);
        b.add_nodes(shuffled.iter().map(|&n| (n, VNODES))).unwrap();
        prop_assert_eq!(&a, &b);
        for h in key_hashes(100, seed) {
            prop_assert_eq!(a.get_nodes_by_hash_into_vec(h), b.get_nodes_by_hash_into_vec(h));
        }
    }

    #[test]
    fn diff_lists_exactly_the_moved_keys((nodes, extra) in node_sets(), pick in any::<prop::sample::Index>(), seed in any::<u64>()) {
        let source = ring_of(&nodes);
        let mut target = source.clone();
        target.add_node(extra);
        target.remove_node(&nodes[pick.index(nodes.len())]);
        let moved = source.diff(&target);
        prop_assert!(moved.windows(2).all(|w| w[0].range.end < w[1].range.start));
        let probes = key_hashes(500, seed).into_iter().chain([0, u64::MAX]);
        let boundaries = moved.iter().flat_map(|m| [m.range.start, m.range.end]);
        for h in probes.chain(boundaries) {
            let (from, to) = (source.get_node_by_hash(h), target.get_node_by_hash(h));
            let hit = moved.iter().find(|m| m.range.contains(h));
            match to {
                Some(to) if from != Some(to) => {
                    let hit = hit.expect("a moved key lies in a moved range");
                    prop_assert_eq!(Some(&hit.from), from);
                    prop_assert_eq!(&hit.to, to);
                }
                _ => prop_assert!(hit.is_none(), "key {:#x} did not move but is listed", h),
            }
        }
    }
}

trait Replicas {
    fn get_nodes_by_hash_into_vec(&self, h: u64) -> Vec<u64>;
}

impl Replicas for HashRing<u64> {
    fn get_nodes_by_hash_into_vec(&self, h: u64) -> Vec<u64> {
        let mut out = Vec::new();
        self.get_nodes_by_hash_into(h, 3, &mut out);
        out.into_iter().copied().collect()
    }
}

#[test]
fn seed_api() {
    let mut ring = HashRing::new(150);
    assert!(ring.add_node("node-1"));
    assert!(!ring.add_node("node-1"));
    ring.add_node("node-2");
    ring.add_node("node-3");
    let nodes = ring.get_nodes("user:123", 3);
    assert_eq!(nodes.len(), 3);
    assert_eq!(Some(nodes[0]), ring.get_node("user:123"));
    assert_eq!(ring.point_count(), 450);
    assert!(ring.remove_node(&"node-2".to_string()));
    assert_eq!(ring.get_nodes("user:123", 3).len(), 2);
    assert!(HashRing::new(5).get_node("x").is_none());
}

#[test]
fn weights_scale_ownership() {
    let mut ring = HashRing::<u64>::with_vnodes(100);
    ring.add_node(1_u64);
    ring.add_node_with_vnodes(2_u64, 300).unwrap();
    assert_eq!(ring.vnodes_of(&2), Some(300));
    assert_eq!(ring.add_node_with_vnodes(3_u64, 0), Err(Error::VnodesZero));
    let mut counts = [0_u64; 2];
    for h in key_hashes(40_000, 3) {
        counts[(*ring.get_node_by_hash(h).unwrap() - 1) as usize] += 1;
    }
    // Node 2 has three times the points; its share is 3/4 give or take the arc noise
    // of 400 points (a few percent).
    let share = counts[1] as f64 / 40_000.0;
    assert!((0.68..0.82).contains(&share), "share {share}");
}

#[test]
fn diff_of_identical_rings_is_empty() {
    let ring = ring_of(&[1, 2, 3]);
    assert!(ring.diff(&ring.clone()).is_empty());
    assert!(ring.diff(&HashRing::with_vnodes(3)).is_empty());
}

#[test]
fn diff_after_adding_names_the_new_node_only() {
    let source = ring_of(&[1, 2, 3, 4]);
    let mut target = source.clone();
    target.add_node(5_u64);
    let moved = source.diff(&target);
    assert!(!moved.is_empty());
    assert!(moved.iter().all(|m| m.to == 5 && m.from != 5));
    // The moved share is about 1/5 of the hash space.
    let width: f64 = moved
        .iter()
        .map(|m| (m.range.end - m.range.start) as f64 + 1.0)
        .sum();
    let share = width / 2f64.powi(64);
    assert!((0.1..0.3).contains(&share), "share {share}");
}
