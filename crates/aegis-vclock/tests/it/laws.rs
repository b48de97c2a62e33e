//! Property tests for the algebraic laws of every clock in the crate.

use std::collections::{BTreeMap, BTreeSet};

use aegis_vclock::{
    CausalContext, Dot, Hlc, HlcConfig, HlcTimestamp, Ordering, Stamp, VectorClock,
};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

fn clock() -> impl Strategy<Value = VectorClock> {
    prop::collection::vec((0u64..12, 0u64..4), 0..10).prop_map(|p| p.into_iter().collect())
}

fn model(v: &VectorClock) -> BTreeMap<u64, u64> {
    v.iter().collect()
}

fn model_leq(a: &VectorClock, b: &VectorClock) -> bool {
    a.iter().all(|(n, c)| c <= b.get(n))
}

fn dots() -> impl Strategy<Value = Vec<Dot>> {
    prop::collection::vec((0u64..4, 1u64..10).prop_map(|(n, c)| Dot::new(n, c)), 0..30)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn compare_agrees_with_pointwise_model(a in clock(), b in clock()) {
        let want = match (model_leq(&a, &b), model_leq(&b, &a)) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Before,
            (false, true) => Ordering::After,
            (false, false) => Ordering::Concurrent,
        };
        prop_assert_eq!(a.compare(&b), want);
        prop_assert_eq!(b.compare(&a), want.reverse());
        prop_assert_eq!(a.compare(&b) == Ordering::Equal, a == b);
    }

    #[test]
    fn long_mostly_aligned_clocks_agree_with_model(
        n in 0usize..40,
        ca in prop::collection::vec(1u64..4, 40),
        cb in prop::collection::vec(1u64..4, 40),
        extra in prop::option::of((0u64..200, 1u64..4)),
    ) {
        // Same node ids on both sides (the fast path), optionally one extra node on `b`
        // somewhere in the middle (forcing the merge-join fallback part way).
        let a: VectorClock = (0..n).map(|i| (i as u64 * 5, ca[i])).collect();
        let mut b: VectorClock = (0..n).map(|i| (i as u64 * 5, cb[i])).collect();
        if let Some((node, c)) = extra {
            b.observe(node, c);
        }
        let want = match (model_leq(&a, &b), model_leq(&b, &a)) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Before,
            (false, true) => Ordering::After,
            (false, false) => Ordering::Concurrent,
        };
        prop_assert_eq!(a.compare(&b), want);
        prop_assert_eq!(b.compare(&a), want.reverse());
        let mut m = a.clone();
        m.merge(&b);
        let mut expect = model(&a);
        for (node, x) in b.iter() {
            let e = expect.entry(node).or_default();
            *e = (*e).max(x);
        }
        prop_assert_eq!(model(&m), expect);
        prop_assert_eq!(m, b.merged(&a));
    }

    #[test]
    fn partial_order_laws(a in clock(), b in clock(), c in clock()) {
        prop_assert!(a.leq(&a));
        if a.leq(&b) && b.leq(&a) {
            prop_assert_eq!(&a, &b);
        }
        if a.leq(&b) && b.leq(&c) {
            prop_assert!(a.leq(&c));
        }
    }

    #[test]
    fn merge_is_least_upper_bound(a in clock(), b in clock(), c in clock()) {
        let ab = a.merged(&b);
        prop_assert_eq!(&ab, &b.merged(&a));
        prop_assert_eq!(ab.merged(&c), a.merged(&b.merged(&c)));
        prop_assert_eq!(a.merged(&a), a.clone());
        prop_assert!(a.leq(&ab) && b.leq(&ab));
        if a.leq(&c) && b.leq(&c) {
            prop_assert!(ab.leq(&c));
        }
        if a.leq(&b) {
            prop_assert!(a.merged(&c).leq(&b.merged(&c)));
        }
        // compare agrees with merge: a ⊔ b == b exactly when a <= b.
        prop_assert_eq!(ab == b, a.leq(&b));
        let mut want = model(&a);
        for (n, x) in b.iter() {
            let e = want.entry(n).or_default();
            *e = (*e).max(x);
        }
        prop_assert_eq!(model(&ab), want);
    }

    #[test]
    fn meet_is_greatest_lower_bound(a in clock(), b in clock()) {
        let mut m = a.clone();
        m.meet(&b);
        prop_assert!(m.leq(&a) && m.leq(&b));
        prop_assert_eq!(m.merged(&a), a.clone());
    }

    #[test]
    fn causal_context_matches_a_set_model(xs in dots(), ys in dots()) {
        let a: CausalContext = xs.iter().copied().collect();
        let b: CausalContext = ys.iter().copied().collect();
        let sa: BTreeSet<Dot> = xs.iter().copied().collect();
        let sb: BTreeSet<Dot> = ys.iter().copied().collect();
        for n in 0..5 {
            for c in 0..12 {
                let d = Dot::new(n, c);
                prop_assert_eq!(a.contains(d), sa.contains(&d));
            }
            let max = sa.iter().filter(|d| d.node == n).map(|d| d.counter).max().unwrap_or(0);
            prop_assert_eq!(a.max_counter(n), max);
            prop_assert_eq!(a.next_dot(n), Dot::new(n, max + 1));
        }
        let listed: BTreeSet<Dot> = a.dots().collect();
        prop_assert_eq!(&listed, &sa);
        prop_assert_eq!(a.len(), sa.len() as u64);
        let mut j = a.clone();
        j.join(&b);
        let union: BTreeSet<Dot> = sa.union(&sb).copied().collect();
        prop_assert_eq!(j.dots().collect::<BTreeSet<_>>(), union.clone());
        let mut k = b.clone();
        k.join(&a);
        prop_assert_eq!(&j, &k);
        // Built from the union in any order: equal (equality is semantic).
        let u: CausalContext = union.iter().rev().copied().collect();
        prop_assert_eq!(&u, &j);
        let mut compacted = j.clone();
        compacted.compact();
        prop_assert_eq!(&compacted, &j);
        let bytes = postcard::to_allocvec(&j).unwrap();
        prop_assert_eq!(postcard::from_bytes::<CausalContext>(&bytes).unwrap(), j);
    }

    #[test]
    fn vector_clock_postcard_round_trip(a in clock()) {
        let bytes = postcard::to_allocvec(&a).unwrap();
        prop_assert_eq!(postcard::from_bytes::<VectorClock>(&bytes).unwrap(), a);
    }
}

/// Random message schedule between HLC nodes whose physical clocks drift and jump
/// back, within the configured offset.
fn hlc_schedule(seed: u64) {
    const NODES: usize = 4;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let offset_ms_max = 50;
    let mut clocks: Vec<Hlc> = (0..NODES)
        .map(|_| Hlc::new(HlcConfig { offset_ms_max }).unwrap())
        .collect();
    let mut last: Vec<HlcTimestamp> = vec![HlcTimestamp::ZERO; NODES];
    let mut in_flight: Vec<(usize, HlcTimestamp)> = Vec::new();
    let mut true_time: u64 = 1_000;
    for _ in 0..400 {
        true_time += rng.random_range(0..3);
        let node = rng.random_range(0..NODES);
        // Each reading is within +-20 ms of true time, so two nodes differ by < 50 ms.
        let physical = true_time + 20 - rng.random_range(0..=40);
        let t = if !in_flight.is_empty() && rng.random_bool(0.5) {
            let (to, sent) = in_flight.swap_remove(rng.random_range(0..in_flight.len()));
            let got = clocks[to].update(sent, physical).unwrap_or_else(|e| {
                panic!("seed {seed}: update rejected within the offset bound: {e}")
            });
            assert!(got > sent, "seed {seed}: receive after send");
            (to, got)
        } else {
            let got = clocks[node].now(physical).unwrap();
            in_flight.push((rng.random_range(0..NODES), got));
            (node, got)
        };
        let (who, ts) = t;
        assert!(ts > last[who], "seed {seed}: node {who} went backwards");
        last[who] = ts;
        // The physical part never runs far from the readings it was given.
        assert!(
            ts.physical_ms() <= true_time + 20 + offset_ms_max,
            "seed {seed}"
        );
    }
}

/// Interval tree clocks against a model where each stamp is the set of events it saw.
fn itc_against_set_model(seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut stamps: Vec<(Stamp, BTreeSet<u32>)> = vec![(Stamp::seed(), BTreeSet::new())];
    let mut next_event = 0u32;
    for _ in 0..120 {
        let i = rng.random_range(0..stamps.len());
        match rng.random_range(0..10) {
            0..=2 if stamps.len() < 12 => {
                let (s, h) = stamps.swap_remove(i);
                let (a, b) = s.fork();
                stamps.push((a, h.clone()));
                stamps.push((b, h));
            }
            3..=6 => {
                stamps[i].0.event().unwrap();
                stamps[i].1.insert(next_event);
                next_event += 1;
            }
            _ if stamps.len() > 1 => {
                let (a, ha) = stamps.swap_remove(i);
                let j = rng.random_range(0..stamps.len());
                let (b, hb) = stamps.swap_remove(j);
                let joined = a.join(&b).unwrap();
                stamps.push((joined, ha.union(&hb).copied().collect()));
            }
            _ => {}
        }
        for (a, ha) in &stamps {
            for (b, hb) in &stamps {
                assert_eq!(a.leq(b), ha.is_subset(hb), "seed {seed}: {a} vs {b}");
            }
            // Peeks carry the same history.
            assert_eq!(a.peek().compare(a), Ordering::Equal, "seed {seed}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn hlc_is_monotonic_and_preserves_causality(seed in any::<u64>()) {
        hlc_schedule(seed);
    }

    #[test]
    fn itc_leq_agrees_with_history_sets(seed in any::<u64>()) {
        itc_against_set_model(seed);
    }
}

/// Random writes on three servers with random (possibly stale) client contexts, then
/// checks that `sync` is a join: commutative, associative, idempotent, and that it
/// keeps exactly the values no write has overwritten.
fn dvv_sync_laws(seed: u64) {
    use aegis_vclock::{DvvSet, VersionVector};
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut servers: Vec<DvvSet<u32>> = vec![DvvSet::empty(); 3];
    // Ground truth: every write and the set of writes it overwrote.
    let mut overwritten: BTreeSet<u32> = BTreeSet::new();
    let mut written: BTreeSet<u32> = BTreeSet::new();
    let mut contexts: Vec<(VersionVector, BTreeSet<u32>)> = vec![Default::default()];
    for value in 0..40u32 {
        let s = rng.random_range(0..servers.len());
        match rng.random_range(0..3) {
            0 => {
                let other = rng.random_range(0..servers.len());
                let merged = servers[s].sync(&servers[other]);
                servers[s] = merged;
            }
            _ => {
                let (ctx, seen) = contexts[rng.random_range(0..contexts.len())].clone();
                servers[s].update(&ctx, value, s as u64);
                overwritten.extend(seen);
                written.insert(value);
                let read = &servers[rng.random_range(0..servers.len())];
                contexts.push((read.join(), read.values().copied().collect()));
            }
        }
    }
    let [a, b, c] = [&servers[0], &servers[1], &servers[2]];
    assert_eq!(a.sync(b), b.sync(a), "seed {seed}: commutative");
    assert_eq!(
        a.sync(b).sync(c),
        a.sync(&b.sync(c)),
        "seed {seed}: associative"
    );
    assert_eq!(a.sync(a), a.clone(), "seed {seed}: idempotent");
    let all = a.sync(b).sync(c);
    let got: BTreeSet<u32> = all.values().copied().collect();
    let want: BTreeSet<u32> = written.difference(&overwritten).copied().collect();
    assert_eq!(
        got, want,
        "seed {seed}: survivors are the writes nobody overwrote"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn dvv_sync_is_a_join(seed in any::<u64>()) {
        dvv_sync_laws(seed);
    }
}
