//! Command-line runner for the deterministic simulator.
//!
//! ```text
//! aegis-sim --seeds N [--start S] [--ops M] [--nodes K]   sweep seeds S..S+N
//!   (without --nodes, even seeds run 3 nodes and odd seeds 5)
//! aegis-sim --seed S [--ops M] [--nodes K] [--quiet]      replay one seed, printing every event
//! --no-faults                                            a calm run: no crashes, partitions or losses
//! --lease                                                default Raft config with lease-based reads
//! --quiesce                                              default Raft config with quiescence on
//! --keep-going                                           list every failing seed of a sweep
//! aegis-sim --regressions                                replay every seed that once failed
//!   (`aegis_sim::regressions`), each with the options it failed under
//! ```
//!
//! Exits non-zero on the first failing seed, after printing the seed, the failure and
//! the trace tail.

#![allow(
    clippy::disallowed_methods,
    reason = "the runner reports wall-clock time per sweep; the simulation itself never reads the clock"
)]

use std::process::ExitCode;
use std::time::Instant;

use aegis_sim::regressions::REGRESSIONS;
use aegis_sim::{Options, Simulation};

struct Args {
    seeds: u64,
    start: u64,
    single: Option<u64>,
    /// `--regressions` was given.
    regressions: bool,
    options: Options,
    /// Whether `--nodes` was given; otherwise even seeds run 3 nodes and odd seeds 5.
    nodes_given: bool,
    /// `--lease` was given.
    lease: bool,
    /// `--quiesce` was given.
    quiesce: bool,
    /// `--no-faults` was given.
    calm: bool,
    /// Report every failing seed instead of stopping at the first.
    keep_going: bool,
    quiet: bool,
}

fn options_for(args: &Args, seed: u64) -> Options {
    let mut options = args.options.clone();
    if !args.nodes_given {
        options.nodes = if seed.is_multiple_of(2) { 3 } else { 5 };
    }
    options
}

fn parse_number(flag: &str, value: Option<&String>) -> Result<u64, String> {
    let value = value.ok_or_else(|| format!("{flag} needs a value"))?;
    value.parse().map_err(|e| format!("{flag} {value}: {e}"))
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut parsed = Args {
        seeds: 100,
        start: 0,
        single: None,
        regressions: false,
        options: Options::default(),
        nodes_given: false,
        lease: false,
        quiesce: false,
        calm: false,
        keep_going: false,
        quiet: false,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--seeds" => parsed.seeds = parse_number(flag, it.next())?,
            "--start" => parsed.start = parse_number(flag, it.next())?,
            "--seed" => parsed.single = Some(parse_number(flag, it.next())?),
            "--ops" => parsed.options.ops = parse_number(flag, it.next())?,
            "--nodes" => {
                parsed.options.nodes = parse_number(flag, it.next())?;
                parsed.nodes_given = true;
            }
            "--regressions" => parsed.regressions = true,
            "--quiet" => parsed.quiet = true,
            "--keep-going" => parsed.keep_going = true,
            "--lease" => {
                parsed.lease = true;
                let mut config = aegis_raft::Config::new(1);
                config.read_only_option = aegis_raft::ReadOnlyOption::LeaseBased;
                parsed.options.raft_config = Some(config);
            }
            "--quiesce" => parsed.quiesce = true,
            "--no-faults" => {
                parsed.calm = true;
                parsed.options.faults = aegis_sim::FaultOptions::none();
                parsed.options.net = aegis_sim::net::NetConfig::reliable();
            }
            "--help" | "-h" => {
                return Err(
                    "usage: aegis-sim (--seeds N [--start S] | --seed S) [--ops M] [--nodes K] [--no-faults] [--lease] [--quiesce] [--keep-going] [--quiet] | aegis-sim --regressions"
                        .to_owned(),
                );
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if parsed.regressions && args.len() > 1 {
        return Err(
            "--regressions replays each seed with its own options; give it alone".to_owned(),
        );
    }
    parsed.options.validate().map_err(|e| e.to_string())?;
    if parsed.quiesce {
        let mut config = parsed
            .options
            .raft_config
            .take()
            .unwrap_or_else(|| aegis_raft::Config::new(1));
        config.quiesce = true;
        config.quiesce_after_idle_ticks = config.heartbeat_interval_ticks.max(4);
        parsed.options.raft_config = Some(config);
    }
    Ok(parsed)
}

/// The command that replays `seed` exactly as this invocation ran it.
fn replay_command(args: &Args, seed: u64) -> String {
    let options = options_for(args, seed);
    let mut command = format!(
        "cargo xtask sim --seed {seed} --ops {} --nodes {}",
        options.ops, options.nodes
    );
    if args.lease {
        command.push_str(" --lease");
    }
    if args.quiesce {
        command.push_str(" --quiesce");
    }
    if args.calm {
        command.push_str(" --no-faults");
    }
    command
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut args = match parse(&args) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("aegis-sim: {message}");
            return ExitCode::FAILURE;
        }
    };
    if args.regressions {
        return replay_regressions();
    }
    if let Some(seed) = args.single {
        args.options.verbose = !args.quiet;
        args.options.trace_tail = 200;
        return match Simulation::run(seed, &options_for(&args, seed)) {
            Ok(report) => {
                println!("{report}");
                ExitCode::SUCCESS
            }
            Err(failure) => {
                eprintln!("{failure}\nreplay: {}", replay_command(&args, failure.seed));
                ExitCode::FAILURE
            }
        };
    }
    let started = Instant::now();
    let mut ops = 0;
    let mut failed: Vec<u64> = Vec::new();
    for seed in args.start..args.start.saturating_add(args.seeds) {
        match Simulation::run(seed, &options_for(&args, seed)) {
            Ok(report) => {
                ops += report.accepted;
                if !args.quiet {
                    println!("{report}");
                }
            }
            Err(failure) => {
                eprintln!("{failure}\nreplay: {}", replay_command(&args, failure.seed));
                if !args.keep_going {
                    return ExitCode::FAILURE;
                }
                failed.push(seed);
            }
        }
    }
    let took = started.elapsed().as_secs_f64();
    if !failed.is_empty() {
        eprintln!(
            "{} of {} seeds from {} failed in {took:.1}s: {failed:?}",
            failed.len(),
            args.seeds,
            args.start
        );
        return ExitCode::FAILURE;
    }
    println!(
        "{} seeds from {} passed ({ops} client operations accepted) in {took:.1}s",
        args.seeds, args.start
    );
    ExitCode::SUCCESS
}

/// Replays every seed in [`REGRESSIONS`], stopping at the first that fails.
fn replay_regressions() -> ExitCode {
    let started = Instant::now();
    for regression in REGRESSIONS {
        if let Err(failure) = Simulation::run(regression.seed, &regression.options()) {
            eprintln!(
                "{failure}\nthis seed once found: {}\nreplay: {}",
                regression.found,
                regression.replay_command()
            );
            return ExitCode::FAILURE;
        }
    }
    println!(
        "{} seeds that once failed passed in {:.1}s",
        REGRESSIONS.len(),
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
