//! 3 to 5 replicas, random operations, a network that drops, duplicates and reorders,
//! anti-entropy until quiet: every replica ends equal, and equal to the sequential
//! specification of the type.

use crate::model::Model;
use crate::sim::simulate;

const SEEDS: u64 = 24;

fn check<M: Model>() {
    for seed in 0..SEEDS {
        let replicas = 3 + (seed % 3) as usize;
        let out = simulate::<M>(seed, replicas, 40);
        for (i, s) in out.states.iter().enumerate() {
            assert_eq!(
                s, &out.states[0],
                "seed {seed}: replica {i} differs from replica 0"
            );
        }
        assert_eq!(
            M::observe(&out.states[0]),
            M::spec(&out.log),
            "seed {seed}: state differs from the specification"
        );
        assert!(
            out.buffered_max <= 6,
            "seed {seed}: delta buffer over its bound"
        );
    }
}

crate::for_each_model!(check);
