//! `cargo xtask ci`: everything CI checks, in the order that fails fastest.
//!
//! The side-by-side benchmark crate (`aegis-bench`) is linted but its benches are not
//! run here: `cargo xtask bench peers` runs them.

use std::process::Command;

use crate::Result;
use crate::shell::{Steps, cargo, has_cargo_subcommand, run};
use crate::workspace;

pub(crate) fn run_ci(args: &[String]) -> Result {
    if let Some(arg) = args.first() {
        return Err(format!("unexpected argument `{arg}`"));
    }
    let on_ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
    let excluded = workspace::excluded_from_tests()?;
    let exclude_args: Vec<String> = excluded
        .iter()
        .flat_map(|name| ["--exclude".to_owned(), name.clone()])
        .collect();

    let mut steps = Steps::default();
    steps.step("rustfmt", || {
        run(cargo().args(["fmt", "--all", "--", "--check"]))
    });
    steps.step("clippy (all targets, -D warnings)", || {
        run(cargo()
            .args(["clippy", "--workspace", "--all-targets", "--locked", "--"])
            .args(["-D", "warnings"]))
    });
    // The test run, and a fuzz budget that must reuse exactly its build.
    let nextest = has_cargo_subcommand("nextest");
    let profile = if on_ci { "ci" } else { "default" };
    let tests = || workspace_tests(nextest, profile, &exclude_args);
    steps.step("tests", || {
        if !nextest {
            eprintln!("cargo-nextest not found; using cargo test");
        }
        run(&mut tests())
    });
    steps.step("doc tests", || {
        if workspace::has_library_members()? {
            run(cargo()
                .args(["test", "--workspace", "--locked", "--doc"])
                .args(&exclude_args))
        } else {
            eprintln!("no library crates yet");
            Ok(())
        }
    });
    steps.step("simulation (300 seeds x 3000 ops, with faults)", || {
        let args = ["--seeds", "300", "--ops", "3000", "--quiet"];
        crate::sim::run_sim(&args.map(str::to_owned))
    });
    // Some bugs need long runs: the Raft livelocks among the seeds that once failed
    // (the next step) showed only after thousands of operations.
    steps.step("simulation (100 seeds x 10000 ops, with faults)", || {
        let args = [
            "--seeds", "100", "--start", "1000", "--ops", "10000", "--quiet",
        ];
        crate::sim::run_sim(&args.map(str::to_owned))
    });
    steps.step("simulation (every seed that once failed)", || {
        crate::sim::run_sim(&["--regressions".to_owned()])
    });
    steps.step("fuzz (seeded mutations, small budget)", || {
        // The budget runs as an ignored test under the tests step's exact flags, so it
        // reuses that build: `cargo run -p aegis-fuzz` would unify features over that
        // crate alone (serde, tokio, ...) and rebuild most of its dependencies.
        let mut command = tests();
        if nextest {
            command
                .args(["--run-ignored", "only", "--no-capture", "-E"])
                .arg("package(aegis-fuzz) & test(=budget::ci_fuzz_budget)");
        } else {
            command.args([
                "--",
                "--ignored",
                "--exact",
                "budget::ci_fuzz_budget",
                "--nocapture",
            ]);
        }
        run(command.env("AEGIS_FUZZ_ITERATIONS", "600000"))
    });
    steps.step("docs (warnings denied)", || {
        run(cargo()
            .args(["doc", "--workspace", "--no-deps", "--locked"])
            .args(&exclude_args)
            .env("RUSTDOCFLAGS", "-D warnings"))
    });
    if has_cargo_subcommand("deny") {
        steps.step("cargo-deny (licenses, bans, sources)", || {
            run(cargo().args(["deny", "--locked", "check", "licenses", "bans", "sources"]))
        });
    } else if on_ci {
        steps.step("cargo-deny", || {
            Err("cargo-deny is not installed; .ci/run installs it".to_owned())
        });
    } else {
        steps.skip(
            "cargo-deny",
            "not installed: `cargo install --locked cargo-deny`",
        );
    }
    steps.finish("ci")
}

/// The workspace's tests, less the `excluded` packages: through cargo-nextest with
/// `profile` when it is installed, through `cargo test` otherwise.
fn workspace_tests(nextest: bool, profile: &str, excluded: &[String]) -> Command {
    let mut command = cargo();
    if nextest {
        command.args([
            "nextest",
            "run",
            "--workspace",
            "--locked",
            "--profile",
            profile,
        ]);
    } else {
        command.args([
            "test",
            "--workspace",
            "--locked",
            "--lib",
            "--bins",
            "--tests",
        ]);
    }
    command.args(excluded);
    command
}
