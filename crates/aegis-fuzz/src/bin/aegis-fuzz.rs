//! Command-line runner for the seeded mutation fuzzer.
//!
//! ```text
//! aegis-fuzz [--iterations N] [--seed S] [--target NAME]   fuzz every target, or one
//! aegis-fuzz --target NAME --replay SEED                   re-run one input, printed in hex
//! aegis-fuzz --list                                        list the targets
//! ```
//!
//! Exits 1 when any decoder panicked, after printing the target, the iteration, the
//! input's seed and the input in hex.

#![allow(
    clippy::disallowed_methods,
    reason = "the runner reports wall-clock time per target; inputs never depend on the clock"
)]

use std::process::ExitCode;
use std::time::Instant;

use aegis_fuzz::{Options, QuietPanics, TARGETS, Target, find, hex, run_one, run_target};

fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("aegis-fuzz: {e}");
            eprintln!(
                "usage: aegis-fuzz [--iterations N] [--seed S] [--target NAME] [--replay SEED] [--list]"
            );
            return ExitCode::from(2);
        }
    };
    if options.list {
        for target in TARGETS {
            println!("{:<14} {}", target.name, target.about);
        }
        return ExitCode::SUCCESS;
    }
    let selected: Vec<&Target> = match &options.target {
        Some(name) => vec![find(name).expect("parse checked the name")],
        None => TARGETS.iter().collect(),
    };
    if let Some(seed) = options.replay {
        return replay(selected[0], seed);
    }
    fuzz(&selected, &options)
}

fn fuzz(targets: &[&Target], options: &Options) -> ExitCode {
    println!(
        "aegis-fuzz: seed {:#x}, {} inputs per target",
        options.seed, options.iterations
    );
    let started = Instant::now();
    let (mut inputs, mut failures) = (0_u64, Vec::new());
    for target in targets {
        let at = Instant::now();
        let report = run_target(target, options.seed, options.iterations);
        println!(
            "{:<14} {:>8} inputs  {:>8} ok  {:>8} err  {:>8.2?}{}",
            report.target,
            report.inputs,
            report.accepted,
            report.rejected,
            at.elapsed(),
            if report.failure.is_some() {
                "  PANIC"
            } else {
                ""
            }
        );
        inputs += report.inputs;
        failures.extend(report.failure);
    }
    println!(
        "summary: {} targets, {inputs} inputs, {} failing, {:.2?}",
        targets.len(),
        failures.len(),
        started.elapsed()
    );
    if failures.is_empty() {
        return ExitCode::SUCCESS;
    }
    for failure in &failures {
        println!("\n{failure}");
    }
    ExitCode::FAILURE
}

fn replay(target: &Target, seed: u64) -> ExitCode {
    let input = target.input(&target.mutator(), seed);
    println!(
        "target {} seed {seed:#018x}: {} bytes\n{}",
        target.name,
        input.len(),
        hex(&input)
    );
    let outcome = {
        let _quiet = QuietPanics::install();
        run_one(target, &input)
    };
    match outcome {
        Ok(verdict) => {
            println!("no panic: {verdict:?}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            println!("PANIC: {message}");
            ExitCode::FAILURE
        }
    }
}
