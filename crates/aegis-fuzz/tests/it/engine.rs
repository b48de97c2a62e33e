use aegis_fuzz::{
    Failure, QuietPanics, Target, Verdict, find, hex, input_seed, run_one, run_target, unhex,
};

/// A decoder with a planted bug: it panics on any input that holds the byte 0xFF
/// beyond its third byte, and rejects empty inputs.
fn buggy_run(input: &[u8]) -> Verdict {
    if input.iter().skip(3).any(|&b| b == 0xFF) {
        panic!("planted bug: 0xFF after the header");
    }
    if input.is_empty() {
        Verdict::Rejected
    } else {
        Verdict::Accepted
    }
}

fn buggy_seeds() -> Vec<Vec<u8>> {
    vec![
        vec![1, 2, 3, 4, 5, 6, 7, 8],
        b"a longer valid input".to_vec(),
    ]
}

const BUGGY: Target = Target {
    name: "buggy",
    about: "a fake decoder that panics on purpose",
    iterations_divisor: 1,
    seeds: buggy_seeds,
    fixup: None,
    run: buggy_run,
};

fn failure_of(seed: u64) -> Failure {
    let report = run_target(&BUGGY, seed, 10_000);
    let failure = report.failure.expect("the planted bug is found");
    assert_eq!(
        report.inputs,
        failure.iteration + 1,
        "the run stops at the panic"
    );
    assert_eq!(report.accepted + report.rejected, failure.iteration);
    failure
}

#[test]
fn a_panic_is_caught_and_reported_with_a_seed_that_replays_it() {
    let failure = failure_of(77);
    assert_eq!(failure.target, "buggy");
    assert!(
        failure
            .message
            .contains("planted bug: 0xFF after the header"),
        "{}",
        failure.message
    );
    assert!(
        failure.message.contains("engine.rs"),
        "location: {}",
        failure.message
    );
    // The input seed alone regenerates the input, without the iterations before it.
    assert_eq!(
        failure.input_seed,
        input_seed(77, "buggy", failure.iteration)
    );
    let replayed = BUGGY.input(&BUGGY.mutator(), failure.input_seed);
    assert_eq!(replayed, failure.input);
    // And that input still panics, with the same message.
    let _quiet = QuietPanics::install();
    assert_eq!(run_one(&BUGGY, &replayed), Err(failure.message.clone()));

    let text = failure.to_string();
    assert!(text.contains(&hex(&failure.input)), "{text}");
    assert!(
        text.contains(&format!("{:#018x}", failure.input_seed)),
        "{text}"
    );
    assert!(text.contains("--target buggy --replay"), "{text}");
}

#[test]
fn the_same_run_seed_finds_the_same_failure() {
    assert_eq!(failure_of(5), failure_of(5));
    assert_ne!(failure_of(5).input_seed, failure_of(6).input_seed);
}

#[test]
fn a_real_target_replays_from_its_seed() {
    let target = find("envelope").unwrap();
    let mutator = target.mutator();
    for iteration in [0, 1, 500] {
        let (seed, input) = target.input_at(&mutator, 9, iteration);
        assert_eq!(target.input(&mutator, seed), input);
    }
}

#[test]
fn hex_round_trips() {
    let bytes: Vec<u8> = (0..=255).collect();
    assert_eq!(unhex(&hex(&bytes)), Some(bytes));
    assert_eq!(hex(&[0x0a, 0xff]), "0aff");
    assert_eq!(unhex("abc"), None);
    assert_eq!(unhex("zz"), None);
}
