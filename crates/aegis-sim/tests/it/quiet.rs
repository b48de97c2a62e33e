//! Leadership transfers and quiescence under the default fault schedule.

use aegis_raft::{Config, ReadOnlyOption};
use aegis_sim::{FaultOptions, Options, Simulation};

fn quiet_options(read_only_option: ReadOnlyOption) -> Options {
    let mut config = Config::new(1);
    config.quiesce = true;
    config.quiesce_after_idle_ticks = 4;
    config.read_only_option = read_only_option;
    Options {
        ops: 300,
        // Gaps between operations give the group time to go quiet.
        invoke_per_mille: 100,
        raft_config: Some(config),
        faults: FaultOptions {
            transfer_per_mille: 30,
            ..FaultOptions::default()
        },
        vary_faults: false,
        ..Options::default()
    }
}

fn sweep(options: &Options, seeds: std::ops::Range<u64>) -> (u64, u64) {
    let (mut transfers, mut quiet_ticks) = (0, 0);
    for seed in seeds {
        let report = Simulation::run(seed, options).unwrap_or_else(|f| panic!("{f}"));
        transfers += report.transfers;
        quiet_ticks += report.quiet_ticks;
    }
    (transfers, quiet_ticks)
}

#[test]
fn quiet_groups_with_transfers_stay_safe_linearizable_and_live() {
    let (transfers, quiet_ticks) = sweep(&quiet_options(ReadOnlyOption::ReadIndex), 0..8);
    assert!(transfers > 20, "transfers started: {transfers}");
    assert!(quiet_ticks > 1000, "node-ticks spent quiet: {quiet_ticks}");
}

#[test]
fn lease_reads_survive_transfers_and_quiescence() {
    let (transfers, quiet_ticks) = sweep(&quiet_options(ReadOnlyOption::LeaseBased), 20..28);
    assert!(transfers > 20, "transfers started: {transfers}");
    assert!(quiet_ticks > 1000, "node-ticks spent quiet: {quiet_ticks}");
}

#[test]
fn the_default_sweep_draws_transfers_and_quiescence() {
    let options = Options {
        ops: 300,
        ..Options::default()
    };
    let (transfers, quiet_ticks) = sweep(&options, 0..10);
    assert!(
        transfers > 0 && quiet_ticks > 0,
        "{transfers} {quiet_ticks}"
    );
}
