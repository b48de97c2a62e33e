use aegis_fuzz::{Mutator, Rng, input_seed};

fn seeds() -> Vec<Vec<u8>> {
    vec![
        b"hello, world".to_vec(),
        (0..=255u8).collect(),
        Vec::new(),
        vec![0; 3],
    ]
}

#[test]
fn the_same_seed_gives_the_same_input() {
    let a = Mutator::new(seeds(), 1024);
    let b = Mutator::new(seeds(), 1024);
    for seed in 0..2_000u64 {
        let seed = input_seed(99, "t", seed);
        assert_eq!(a.generate(seed), b.generate(seed), "seed {seed:#x}");
    }
}

#[test]
fn different_seeds_give_varied_inputs_within_the_limit() {
    // The two longer seeds: tiny ones have few distinct mutations to give. A single
    // bit flip of a short seed has only so many outcomes, so some inputs repeat.
    let mutator = Mutator::new(seeds()[..2].to_vec(), 100);
    let mut distinct = std::collections::BTreeSet::new();
    let mut lengths = std::collections::BTreeSet::new();
    for i in 0..2_000u64 {
        let input = mutator.generate(input_seed(1, "t", i));
        assert!(input.len() <= 100, "input {i}: {} bytes", input.len());
        lengths.insert(input.len());
        distinct.insert(input);
    }
    assert!(
        distinct.len() > 1_200,
        "only {} distinct inputs",
        distinct.len()
    );
    assert!(
        lengths.len() > 50,
        "only {} distinct lengths",
        lengths.len()
    );
    // Inputs are mutations, not copies: almost none equals a seed.
    let copies = distinct.iter().filter(|d| seeds().contains(d)).count();
    assert!(copies < 20, "{copies} inputs are unchanged seeds");
}

#[test]
fn mutations_reach_boundary_values_and_splices() {
    let mutator = Mutator::new(vec![vec![0x11; 32], vec![0x22; 32]], 4096);
    let (mut saw_ff, mut saw_both, mut saw_longer, mut saw_shorter) = (false, false, false, false);
    for i in 0..2_000u64 {
        let input = mutator.generate(input_seed(5, "t", i));
        saw_ff |= input.contains(&0xFF);
        saw_both |= input.contains(&0x11) && input.contains(&0x22);
        saw_longer |= input.len() > 32;
        saw_shorter |= input.len() < 32;
    }
    assert!(saw_ff && saw_both && saw_longer && saw_shorter);
}

#[test]
fn input_seeds_depend_on_run_seed_target_and_iteration() {
    let base = input_seed(1, "a", 0);
    assert_eq!(base, input_seed(1, "a", 0));
    assert_ne!(base, input_seed(2, "a", 0));
    assert_ne!(base, input_seed(1, "b", 0));
    assert_ne!(base, input_seed(1, "a", 1));
}

#[test]
fn rng_below_stays_in_range_and_covers_it() {
    let mut rng = Rng::new(3);
    let mut seen = [false; 7];
    for _ in 0..1_000 {
        let x = rng.below(7);
        assert!(x < 7);
        seen[x] = true;
    }
    assert!(seen.iter().all(|&s| s));
    let first: Vec<u64> = (0..4).map(|_| Rng::new(42).next_u64()).collect();
    assert!(first.windows(2).all(|w| w[0] == w[1]));
}
