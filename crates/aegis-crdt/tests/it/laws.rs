//! Join is commutative, associative and idempotent, for every type, on states built by
//! random histories (so they share causal past, as real replicas do).

use aegis_crdt::Crdt;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::model::Model;
use crate::sim::history;

fn join<C: Crdt>(a: &C, b: &C) -> C {
    let mut out = a.clone();
    out.join(b);
    out
}

fn check<M: Model>() {
    let mut runner = TestRunner::new(Config::with_cases(96));
    runner
        .run(&any::<u64>(), |seed| {
            let s = history::<M>(seed);
            let (a, b, c) = (&s[0], &s[1], &s[2]);
            prop_assert_eq!(join(a, b), join(b, a), "commutative, seed {}", seed);
            prop_assert_eq!(
                join(&join(a, b), c),
                join(a, &join(b, c)),
                "associative, seed {}",
                seed
            );
            prop_assert_eq!(&join(a, a), a, "idempotent, seed {}", seed);
            // Join is an upper bound: joining either input again changes nothing.
            let ab = join(a, b);
            prop_assert_eq!(&join(&ab, a), &ab, "upper bound, seed {}", seed);
            let mut probe = ab.clone();
            prop_assert!(!probe.join_changed(b), "join_changed, seed {}", seed);
            // join_changed joins, and reports exactly whether the state changed.
            let mut x = a.clone();
            let changed = x.join_changed(b);
            prop_assert_eq!(&x, &ab, "join_changed joins, seed {}", seed);
            prop_assert_eq!(changed, &x != a, "join_changed reports, seed {}", seed);
            Ok(())
        })
        .unwrap();
}

crate::for_each_model!(check);
