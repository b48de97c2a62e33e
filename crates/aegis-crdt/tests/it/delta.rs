//! Deltas: joining a mutation's delta equals the mutation, on the mutating replica and
//! on any other; delta groups joined in any order, with duplicates, equal full-state
//! join.

use aegis_crdt::Crdt;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

use crate::model::Model;
use crate::sim::history;

fn join<C: Crdt>(a: &C, b: &C) -> C {
    let mut out = a.clone();
    out.join(b);
    out
}

fn check_mutation<M: Model>() {
    let mut runner = TestRunner::new(Config::with_cases(96));
    runner
        .run(&any::<u64>(), |seed| {
            let s = history::<M>(seed);
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
            let before = s[0].clone();
            let mut after = before.clone();
            let op = M::random_op(&mut rng);
            let delta = M::apply(&mut after, &op);
            prop_assert_eq!(&join(&before, &delta), &after, "local, seed {}", seed);
            // Any other replica that has seen `before`: delta = mutation.
            let other = join(&s[1], &before);
            prop_assert_eq!(
                join(&other, &delta),
                join(&other, &after),
                "remote, seed {}",
                seed
            );
            Ok(())
        })
        .unwrap();
}

fn check_groups<M: Model>() {
    let mut runner = TestRunner::new(Config::with_cases(64));
    runner
        .run(&any::<u64>(), |seed| {
            let s = history::<M>(seed);
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x9e0);
            let start = s[0].clone();
            let mut source = start.clone();
            let mut deltas = Vec::new();
            for _ in 0..rng.random_range(1..12) {
                let op = M::random_op(&mut rng);
                deltas.push(M::apply(&mut source, &op));
            }
            // Group some deltas together, duplicate some, shuffle.
            let mut shipped = Vec::new();
            for chunk in deltas.chunks(rng.random_range(1..4)) {
                let mut group = chunk[0].clone();
                for d in &chunk[1..] {
                    group.join(d);
                }
                shipped.push(group.clone());
                if rng.random_bool(0.3) {
                    shipped.push(group);
                }
            }
            shipped.shuffle(&mut rng);
            // A receiver that includes the source's starting state (causal delivery).
            let mut receiver = join(&s[1], &start);
            let expected = join(&receiver, &source);
            for d in &shipped {
                receiver.join(d);
            }
            prop_assert_eq!(receiver, expected, "seed {}", seed);
            Ok(())
        })
        .unwrap();
}

mod mutation {
    use super::check_mutation;
    crate::for_each_model!(check_mutation);
}

mod groups {
    use super::check_groups;
    crate::for_each_model!(check_groups);
}
