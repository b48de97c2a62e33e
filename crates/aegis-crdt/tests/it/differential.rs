//! The optimised add-wins set (sorted vector plus overlay, point-wise delta joins)
//! against the same semantics built from the generic dot stores: an `ORMap` of
//! enable-wins flags. Large enough to fold the overlay many times and to take both the
//! point-wise and the merge-pass join.

use std::collections::BTreeSet;

use aegis_crdt::{EWFlag, ORMap, ORSet};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

struct Replica {
    fast: ORSet<u32>,
    reference: ORMap<u32, EWFlag>,
}

impl Replica {
    fn elements(&self) -> (BTreeSet<u32>, BTreeSet<u32>) {
        (
            self.fast.iter().copied().collect(),
            self.reference.keys().copied().collect(),
        )
    }
}

#[test]
fn orset_matches_a_map_of_flags() {
    for seed in 0..3u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut replicas: Vec<Replica> = (1..=3)
            .map(|n| Replica {
                fast: ORSet::new(n),
                reference: ORMap::new(n),
            })
            .collect();
        // Deltas not yet delivered: (target, fast delta, reference delta).
        let mut pending: Vec<(usize, ORSet<u32>, ORMap<u32, EWFlag>)> = Vec::new();
        for step in 0..1_500 {
            let r = rng.random_range(0..3);
            let e = rng.random_range(0..250);
            match rng.random_range(0..100) {
                0..55 => {
                    let d = replicas[r].fast.add(e);
                    let rd = replicas[r].reference.update(e, EWFlag::enable);
                    for t in (0..3).filter(|&t| t != r) {
                        pending.push((t, d.clone(), rd.clone()));
                    }
                }
                55..85 => {
                    let d = replicas[r].fast.remove(&e);
                    let rd = replicas[r].reference.remove(&e);
                    for t in (0..3).filter(|&t| t != r) {
                        pending.push((t, d.clone(), rd.clone()));
                    }
                }
                85..98 if !pending.is_empty() => {
                    // Deliver in causal order per target (oldest first).
                    let i = pending.iter().position(|p| p.0 == r).unwrap_or(0);
                    let (t, d, rd) = pending.remove(i);
                    replicas[t].fast.merge(&d);
                    replicas[t].reference.merge(&rd);
                }
                _ => {
                    let s = rng.random_range(0..3);
                    let (fast, reference) =
                        (replicas[s].fast.clone(), replicas[s].reference.clone());
                    replicas[r].fast.merge(&fast);
                    replicas[r].reference.merge(&reference);
                }
            }
            let (a, b) = replicas[r].elements();
            assert_eq!(a, b, "seed {seed}, step {step}, replica {r}");
        }
        for (t, d, rd) in pending {
            replicas[t].fast.merge(&d);
            replicas[t].reference.merge(&rd);
        }
        let mut all = replicas[0].fast.clone();
        for r in &replicas {
            all.merge(&r.fast);
        }
        for r in &mut replicas {
            r.fast.merge(&all);
        }
        assert!(replicas.iter().all(|r| r.fast == all), "seed {seed}");
    }
}
