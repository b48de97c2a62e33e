//! Balance over many keys against the noise floor of a uniform assignment.

use aegis_hash::{HashRing, JumpHash, Maglev, MaglevConfig, Memento, Rendezvous};

use crate::support::{BALANCE_KEYS, SplitMix64, assert_noise_floor, key_hashes};

fn uniform(n: usize) -> Vec<f64> {
    vec![1.0 / n as f64; n]
}

#[test]
fn jump_is_on_the_noise_floor() {
    let keys = key_hashes(BALANCE_KEYS, 1);
    for n in [10_u32, 100] {
        let mut counts = vec![0_u64; n as usize];
        for &h in &keys {
            counts[JumpHash::bucket(h, n) as usize] += 1;
        }
        assert_noise_floor(&format!("jump/{n}"), &counts, &uniform(n as usize));
    }
}

#[test]
fn rendezvous_is_on_the_noise_floor_weighted_or_not() {
    let keys = key_hashes(BALANCE_KEYS, 2);
    for n in [10_u64, 100] {
        let mut hrw = Rendezvous::<u64>::empty();
        for id in 0..n {
            hrw.add_node(id);
        }
        let mut counts = vec![0_u64; n as usize];
        for &h in &keys {
            counts[*hrw.get_node_by_hash(h).unwrap() as usize] += 1;
        }
        assert_noise_floor(&format!("rendezvous/{n}"), &counts, &uniform(n as usize));
    }

    let weights = [1.0, 2.0, 3.0, 4.0, 0.5];
    let mut weighted = Rendezvous::<u64>::empty();
    for (n, &w) in weights.iter().enumerate() {
        weighted.add_node_weighted(n as u64, w).unwrap();
    }
    let total: f64 = weights.iter().sum();
    let shares: Vec<f64> = weights.iter().map(|w| w / total).collect();
    let mut counts = vec![0_u64; weights.len()];
    for &h in &keys {
        counts[*weighted.get_node_by_hash(h).unwrap() as usize] += 1;
    }
    assert_noise_floor("rendezvous/weighted", &counts, &shares);
}

#[test]
fn maglev_is_on_the_noise_floor_of_its_table() {
    let keys = key_hashes(BALANCE_KEYS, 3);
    for n in [10_u64, 100] {
        let maglev = Maglev::with_config(MaglevConfig::default(), 0..n).unwrap();
        // Keys spread over table slots; each node's expected share is its slot count
        // over the table size (slot counts differ by at most one).
        let size = maglev.table_size() as f64;
        let shares: Vec<f64> = maglev
            .slot_counts()
            .iter()
            .map(|&c| c as f64 / size)
            .collect();
        let mut counts = vec![0_u64; n as usize];
        for &h in &keys {
            counts[*maglev.get_node_by_hash(h).unwrap() as usize] += 1;
        }
        assert_noise_floor(&format!("maglev/{n}"), &counts, &shares);
    }
}

#[test]
fn memento_is_on_the_noise_floor_after_removals() {
    let keys = key_hashes(BALANCE_KEYS, 4);
    let mut m = Memento::<u64>::empty();
    for n in 0..100_u64 {
        m.add_node(n);
    }
    // Remove 30 nodes picked by a seeded generator, holes anywhere.
    let mut rng = SplitMix64(99);
    let mut members: Vec<u64> = (0..100).collect();
    for _ in 0..30 {
        let gone = members.remove((rng.next_u64() % members.len() as u64) as usize);
        assert!(m.remove_node(&gone));
    }
    let mut counts = vec![0_u64; 100];
    for &h in &keys {
        counts[*m.get_node_by_hash(h).unwrap() as usize] += 1;
    }
    let live: Vec<u64> = members.iter().map(|&n| counts[n as usize]).collect();
    assert_eq!(live.iter().sum::<u64>(), keys.len() as u64);
    assert_noise_floor("memento/70-of-100", &live, &uniform(live.len()));
}

/// A ring is not on the noise floor: its shares vary with the arcs between points.
/// A node with `v` points owns the sum of `v` arcs; with `n * v` points each arc is
/// roughly exponential with mean `1 / (n v)`, so the node's share is Gamma-distributed
/// with mean `1 / n` and relative standard deviation `1 / sqrt(v)`. The largest of `n`
/// such shares sits about `sqrt(2 ln n)` (3 for n = 100) deviations above the mean; we
/// allow 5, i.e. every share within `(1 +- 5 / sqrt(v)) / n` (plus key sampling noise,
/// which is an order of magnitude smaller here).
#[test]
fn ring_shares_stay_within_the_vnode_bound() {
    let keys = key_hashes(BALANCE_KEYS, 5);
    let vnodes = 150;
    let mut ring = HashRing::<u64>::with_vnodes(vnodes);
    ring.add_nodes((0..100).map(|n| (n, vnodes))).unwrap();
    let mut counts = vec![0_u64; 100];
    for &h in &keys {
        counts[*ring.get_node_by_hash(h).unwrap() as usize] += 1;
    }
    let mean = keys.len() as f64 / 100.0;
    let slack = 5.0 / f64::from(vnodes).sqrt();
    for (n, &c) in counts.iter().enumerate() {
        let ratio = c as f64 / mean;
        assert!(
            (1.0 - slack..=1.0 + slack).contains(&ratio),
            "node {n}: {ratio:.3} of the mean"
        );
    }
}
