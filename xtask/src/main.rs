//! Project automation in the rust-analyzer style: `cargo xtask <command>`.
//!
//! One binary, one module per command, almost no dependencies. Each command is a
//! row in [`COMMANDS`]; adding one means adding a module and a row.

#![allow(
    clippy::disallowed_methods,
    reason = "xtask is a driver: it times the steps it runs"
)]

mod bench;
mod bench_cluster;
mod ci;
mod demo;
mod fuzz;
mod local_cluster;
mod release;
mod shell;
mod sim;
mod workspace;

use std::process::ExitCode;

/// What a command returns: success, or a message for the user.
type Result<T = ()> = std::result::Result<T, String>;

/// One `cargo xtask` command.
struct Command {
    name: &'static str,
    usage: &'static str,
    about: &'static str,
    run: fn(&[String]) -> Result,
}

const COMMANDS: &[Command] = &[
    Command {
        name: "demo",
        usage: "demo",
        about: "the main job: a local 3-node cluster over QUIC, a leader crash, recovery",
        run: demo::run_demo,
    },
    Command {
        name: "ci",
        usage: "ci",
        about: "everything CI checks: fmt, clippy, tests, doc tests, docs, cargo-deny",
        run: ci::run_ci,
    },
    Command {
        name: "bench",
        usage: "bench [CRATE|peers|cluster]",
        about: "criterion benches: all, one crate's, the peers'; cluster [--runs N] [--lease] [--collections]: redis-benchmark vs redis",
        run: bench::run_bench,
    },
    Command {
        name: "sim",
        usage: "sim --seeds N | --seed S | --regressions",
        about: "deterministic Raft cluster simulation: sweep seeds, replay one verbosely, or replay every seed that once failed",
        run: sim::run_sim,
    },
    Command {
        name: "fuzz",
        usage: "fuzz [--iterations N] [--seed S] [--target NAME]",
        about: "seeded mutation fuzzing of every decoder of untrusted bytes (--list, --replay SEED)",
        run: fuzz::run_fuzz,
    },
    Command {
        name: "release",
        usage: "release --dry-run",
        about: "package every publishable crate in dependency order",
        run: release::run_release,
    },
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(name) = args.first() else {
        print_help();
        return ExitCode::FAILURE;
    };
    if name == "help" || name == "--help" || name == "-h" {
        print_help();
        return ExitCode::SUCCESS;
    }
    let Some(command) = COMMANDS.iter().find(|c| c.name == name) else {
        eprintln!("xtask: unknown command `{name}`\n");
        print_help();
        return ExitCode::FAILURE;
    };
    shell::enter_workspace_root();
    match (command.run)(&args[1..]) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask {}: {message}", command.name);
            ExitCode::FAILURE
        }
    }
}

fn print_help() {
    eprintln!("usage: cargo xtask <command>\n\ncommands:");
    for command in COMMANDS {
        eprintln!("  {:<24} {}", command.usage, command.about);
    }
}

#[cfg(test)]
mod tests {
    use super::COMMANDS;

    #[test]
    fn command_names_are_unique_and_usage_starts_with_name() {
        for (i, a) in COMMANDS.iter().enumerate() {
            assert!(
                a.usage.starts_with(a.name),
                "usage of {} must start with its name",
                a.name
            );
            for b in &COMMANDS[i + 1..] {
                assert_ne!(a.name, b.name, "duplicate command");
            }
        }
    }
}
