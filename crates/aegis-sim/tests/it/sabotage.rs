//! The simulator must catch deliberately planted driver bugs: a checker that never
//! fails proves nothing.

use aegis_sim::{FailureKind, Options, Sabotage, Simulation};

/// Runs seeds until one fails; returns the failure.
fn first_failure(options: &Options, seeds: std::ops::Range<u64>) -> aegis_sim::Failure {
    for seed in seeds.clone() {
        if let Err(failure) = Simulation::run(seed, options) {
            assert_eq!(failure.seed, seed, "a failure names its seed");
            assert!(
                !failure.trace_tail.is_empty(),
                "a failure shows its trace tail"
            );
            return failure;
        }
    }
    panic!(
        "planted bug {:?} went unnoticed over seeds {seeds:?}",
        options.sabotage
    );
}

#[test]
fn acknowledging_writes_before_they_are_durable_is_caught() {
    let options = Options {
        ops: 400,
        sabotage: Some(Sabotage::AckBeforeDurable),
        ..Options::default()
    };
    let failure = first_failure(&options, 0..40);
    assert_eq!(
        failure.kind,
        FailureKind::Invariant {
            invariant: "committed entries durable on a quorum"
        },
        "{failure}"
    );
}

#[test]
fn reads_served_locally_without_raft_are_caught() {
    let options = Options {
        ops: 400,
        sabotage: Some(Sabotage::LocalReads),
        ..Options::default()
    };
    let failure = first_failure(&options, 0..40);
    assert!(
        matches!(failure.kind, FailureKind::Linearizability { .. }),
        "stale reads show up in the history: {failure}"
    );
}

#[test]
fn writes_acknowledged_before_commit_are_caught() {
    let options = Options {
        ops: 400,
        sabotage: Some(Sabotage::AckWritesAtPropose),
        ..Options::default()
    };
    let failure = first_failure(&options, 0..40);
    assert!(
        matches!(failure.kind, FailureKind::Linearizability { .. }),
        "lost or early writes show up in the history: {failure}"
    );
}
