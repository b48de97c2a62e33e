//! Running cargo and other programs, and timing the steps of a command.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::Result;

/// The workspace root: xtask lives one directory below it.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits inside the workspace")
        .to_path_buf()
}

pub(crate) fn enter_workspace_root() {
    std::env::set_current_dir(workspace_root()).expect("workspace root is a directory");
}

/// `cargo` as chosen by the outer cargo invocation, so the pinned toolchain is used.
pub(crate) fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Builds `package`'s binary of the same name in release mode and runs it with `args`.
pub(crate) fn run_release_bin(package: &str, args: &[String]) -> Result {
    run(cargo()
        .args([
            "run",
            "--release",
            "--locked",
            "-p",
            package,
            "--bin",
            package,
            "--",
        ])
        .args(args))
}

/// Runs `command`, echoing it first; fails with its exit status.
pub(crate) fn run(command: &mut Command) -> Result {
    eprintln!("$ {}", display(command));
    let status = command
        .status()
        .map_err(|e| format!("cannot start `{}`: {e}", display(command)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed: {status}", display(command)))
    }
}

/// Runs `command` and returns its standard output.
pub(crate) fn output(command: &mut Command) -> Result<String> {
    let out = command
        .output()
        .map_err(|e| format!("cannot start `{}`: {e}", display(command)))?;
    if !out.status.success() {
        return Err(format!(
            "`{}` failed: {}\n{}",
            display(command),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8(out.stdout)
        .map_err(|e| format!("`{}`: output is not UTF-8: {e}", display(command)))
}

/// Whether a program answers `--version`, i.e. is installed.
pub(crate) fn has_cargo_subcommand(name: &str) -> bool {
    cargo()
        .args([name, "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn display(command: &Command) -> String {
    let mut s = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// A list of named steps, each run and timed, with a summary at the end.
#[derive(Default)]
pub(crate) struct Steps {
    done: Vec<(String, Duration, std::result::Result<(), String>)>,
}

impl Steps {
    /// Runs one step. Later steps still run after a failure, so that one run shows
    /// every problem; [`Steps::finish`] reports the failures.
    pub(crate) fn step(&mut self, name: &str, f: impl FnOnce() -> Result) {
        eprintln!("\n==> {name}");
        let start = Instant::now();
        let result = f();
        if let Err(e) = &result {
            eprintln!("==> {name}: FAILED: {e}");
        }
        self.done.push((name.to_owned(), start.elapsed(), result));
    }

    pub(crate) fn skip(&mut self, name: &str, why: &str) {
        eprintln!("\n==> {name}: skipped ({why})");
        self.done.push((name.to_owned(), Duration::ZERO, Ok(())));
    }

    /// Prints the summary table and fails if any step failed.
    pub(crate) fn finish(self, title: &str) -> Result {
        eprintln!("\n{title} summary:");
        let mut failed = 0;
        for (name, took, result) in &self.done {
            let mark = if result.is_ok() { "ok  " } else { "FAIL" };
            failed += usize::from(result.is_err());
            eprintln!("  {mark} {name:<40} {:>7.1}s", took.as_secs_f64());
        }
        if failed == 0 {
            Ok(())
        } else {
            Err(format!("{failed} of {} steps failed", self.done.len()))
        }
    }
}
