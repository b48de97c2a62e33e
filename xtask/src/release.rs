//! `cargo xtask release --dry-run`: package every publishable crate in dependency order.
//!
//! Checks the manifest metadata crates.io needs, then runs `cargo package` over all
//! publishable crates at once so that crates depending on each other package against
//! each other's local `.crate` files instead of crates.io. Prints one line per crate.

use crate::Result;
use crate::shell::{cargo, run};
use crate::workspace;

pub(crate) fn run_release(args: &[String]) -> Result {
    if args != ["--dry-run"] {
        return Err("only `release --dry-run` exists; publishing is done by hand".to_owned());
    }
    let members = workspace::members()?;
    let ordered = workspace::in_dependency_order(members)?;
    let publishable: Vec<_> = ordered.into_iter().filter(|m| m.publishable).collect();
    if publishable.is_empty() {
        eprintln!("no publishable crates yet");
        return Ok(());
    }
    let mut missing = Vec::new();
    for member in &publishable {
        if !member.missing_metadata.is_empty() {
            missing.push(format!(
                "{}: {}",
                member.name,
                member.missing_metadata.join(", ")
            ));
        }
    }
    if !missing.is_empty() {
        return Err(format!(
            "missing manifest metadata:\n  {}",
            missing.join("\n  ")
        ));
    }
    let mut command = cargo();
    command.args(["package", "--locked", "--no-verify", "--allow-dirty"]);
    for member in &publishable {
        command.args(["--package", &member.name]);
    }
    run(&mut command)?;
    eprintln!("\nrelease dry run, in publish order:");
    let target_dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_owned());
    let mut missing = 0;
    for member in &publishable {
        let file = format!(
            "{target_dir}/package/{}-{}.crate",
            member.name,
            version(&member.name)?
        );
        match std::fs::metadata(&file) {
            Ok(m) => eprintln!("  ok      {:<24} {:>8} bytes  {file}", member.name, m.len()),
            Err(_) => {
                missing += 1;
                eprintln!("  MISSING {:<24} no {file}", member.name);
            }
        }
    }
    if missing > 0 {
        return Err(format!("{missing} crates produced no package"));
    }
    Ok(())
}

fn version(name: &str) -> Result<String> {
    let manifest = std::fs::read_to_string(format!("crates/{name}/Cargo.toml"))
        .map_err(|e| format!("crates/{name}/Cargo.toml: {e}"))?;
    if manifest.contains("version.workspace = true") {
        let root = std::fs::read_to_string("Cargo.toml").map_err(|e| format!("Cargo.toml: {e}"))?;
        return first_version(&root).ok_or_else(|| "no workspace version".to_owned());
    }
    first_version(&manifest).ok_or_else(|| format!("no version in crates/{name}/Cargo.toml"))
}

fn first_version(manifest: &str) -> Option<String> {
    manifest.lines().find_map(|line| {
        let rest = line
            .trim()
            .strip_prefix("version")?
            .trim_start()
            .strip_prefix('=')?;
        Some(rest.trim().trim_matches('"').to_owned())
    })
}
