use aegis_sim::{Options, Simulation};

#[test]
fn same_seed_replays_exactly_and_other_seeds_differ() {
    let options = Options {
        ops: 300,
        ..Options::default()
    };
    let first = Simulation::run(42, &options).unwrap_or_else(|f| panic!("{f}"));
    let again = Simulation::run(42, &options).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(first, again, "a seed must replay to the identical trace");
    let other = Simulation::run(43, &options).unwrap_or_else(|f| panic!("{f}"));
    assert_ne!(
        first.digest, other.digest,
        "different seeds explore different runs"
    );
    assert!(first.events > 1000, "the run did something: {first}");
}
