//! CI's fuzzing budget, run through the test harness so that it reuses the test build.

use aegis_fuzz::{ITERATIONS_DEFAULT, SEED_DEFAULT, TARGETS, parse_number, run_target};

fn from_env(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => parse_number(&value).unwrap_or_else(|| panic!("{name}={value}: not a number")),
        Err(_) => default,
    }
}

/// Every target with `AEGIS_FUZZ_ITERATIONS` inputs (seeded by `AEGIS_FUZZ_SEED`),
/// as `aegis-fuzz` would run them; fails with the reports of every panic found.
#[test]
#[ignore = "CI's fuzzing budget; `cargo xtask ci` runs it, `cargo xtask fuzz` is the full tool"]
#[allow(
    clippy::disallowed_methods,
    reason = "reports how long each target took; inputs never depend on the clock"
)]
fn ci_fuzz_budget() {
    let iterations = from_env("AEGIS_FUZZ_ITERATIONS", ITERATIONS_DEFAULT);
    let seed = from_env("AEGIS_FUZZ_SEED", SEED_DEFAULT);
    println!("fuzz budget: seed {seed:#x}, {iterations} inputs per target");
    let mut failures = Vec::new();
    for target in TARGETS {
        let started = std::time::Instant::now();
        let report = run_target(target, seed, iterations);
        println!(
            "{:<14} {:>8} inputs  {:>8} ok  {:>8} err  {:>8.2?}",
            report.target,
            report.inputs,
            report.accepted,
            report.rejected,
            started.elapsed()
        );
        failures.extend(report.failure.map(|f| f.to_string()));
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}
