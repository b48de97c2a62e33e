use aegis_sim::{FaultOptions, Options, Simulation};

/// A quick sweep with the default fault schedule; `cargo xtask sim` runs the long one.
#[test]
fn twenty_seeds_with_faults_are_safe_and_linearizable() {
    let options = Options {
        ops: 200,
        ..Options::default()
    };
    let mut completed = 0;
    for seed in 0..20 {
        let report = Simulation::run(seed, &options).unwrap_or_else(|f| panic!("{f}"));
        completed += report.history.completed;
    }
    assert!(completed > 20 * 50, "most operations complete: {completed}");
}

#[test]
fn five_node_cluster_with_faults() {
    let options = Options {
        nodes: 5,
        ops: 200,
        ..Options::default()
    };
    for seed in 100..105 {
        Simulation::run(seed, &options).unwrap_or_else(|f| panic!("{f}"));
    }
}

#[test]
fn calm_cluster_completes_nearly_everything() {
    let options = Options {
        ops: 300,
        faults: FaultOptions::none(),
        net: aegis_sim::net::NetConfig::reliable(),
        // The default Raft limits: tiny drawn windows legitimately drop forwarded reads.
        vary_config: false,
        ..Options::default()
    };
    let report = Simulation::run(1, &options).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(report.crashes, 0);
    assert!(
        report.history.completed >= 295,
        "without faults almost nothing is left indeterminate: {report}"
    );
}

#[test]
fn membership_changes_under_faults_keep_the_cluster_safe() {
    let options = Options {
        nodes: 5,
        ops: 400,
        faults: FaultOptions {
            membership_per_mille: 60,
            ..FaultOptions::default()
        },
        vary_faults: false,
        ..Options::default()
    };
    let mut changes = 0;
    for seed in 200..204 {
        let report = Simulation::run(seed, &options).unwrap_or_else(|f| panic!("{f}"));
        changes += report.conf_changes;
    }
    assert!(
        changes >= 8,
        "only {changes} membership changes were accepted"
    );
}
