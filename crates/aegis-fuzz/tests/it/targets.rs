use aegis_fuzz::{TARGETS, Verdict, find, run_target};

#[test]
fn every_seed_of_every_target_is_accepted() {
    for target in TARGETS {
        let mutator = target.mutator();
        let seeds = mutator.seeds();
        assert!(
            seeds.len() >= 4,
            "{}: only {} seeds",
            target.name,
            seeds.len()
        );
        let sizes: std::collections::BTreeSet<usize> = seeds.iter().map(Vec::len).collect();
        assert!(sizes.len() >= 3, "{}: seed sizes {sizes:?}", target.name);
        for (i, seed) in seeds.iter().enumerate() {
            assert_eq!(
                (target.run)(seed),
                Verdict::Accepted,
                "{} seed {i} ({} bytes) was rejected",
                target.name,
                seed.len()
            );
        }
    }
}

#[test]
fn target_names_are_unique_and_found() {
    for (i, target) in TARGETS.iter().enumerate() {
        assert_eq!(find(target.name).map(|t| t.name), Some(target.name));
        assert!(TARGETS[i + 1..].iter().all(|t| t.name != target.name));
    }
    assert!(find("no-such-target").is_none());
    assert_eq!(TARGETS.len(), 11);
}

#[test]
fn a_short_run_of_every_target_finds_no_panic_and_both_verdicts() {
    for target in TARGETS {
        let report = run_target(target, 0x5EED, 4_000);
        if let Some(failure) = &report.failure {
            panic!("{failure}");
        }
        assert_eq!(report.inputs, target.iterations_for(4_000));
        assert!(
            report.accepted > 0 && report.rejected > 0,
            "{}: {} accepted, {} rejected",
            target.name,
            report.accepted,
            report.rejected
        );
    }
}

#[test]
fn runs_are_reproducible() {
    let target = find("raft-message").unwrap();
    assert_eq!(run_target(target, 11, 300), run_target(target, 11, 300));
}

#[test]
fn checksum_repair_lets_mutations_through() {
    // Without repair almost every mutated log image fails its checksum; with repair a
    // good share of inputs is accepted by the structural decoders.
    let target = find("log-format").unwrap();
    let report = run_target(target, 3, 600);
    assert!(report.failure.is_none());
    assert!(
        report.accepted * 10 > report.inputs,
        "{} of {} accepted",
        report.accepted,
        report.inputs
    );
}
