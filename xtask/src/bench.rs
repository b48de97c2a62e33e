//! `cargo xtask bench [CRATE|peers]`: criterion benches.
//!
//! Without an argument, runs the benches of every crate except the side-by-side peer
//! crate; `peers` runs that crate (`aegis-bench`), whose benches measure our crates
//! next to the crates people would otherwise pick, in the same process; `cluster` runs
//! `redis-benchmark` against a local aegis cluster and a local redis-server.

use crate::Result;
use crate::shell::{cargo, run};
use crate::workspace;

const PEERS_CRATE: &str = "aegis-bench";

pub(crate) fn run_bench(args: &[String]) -> Result {
    let (target, extra) = match args.split_first() {
        Some((first, rest)) if !first.starts_with('-') => (Some(first.as_str()), rest),
        _ => (None, args),
    };
    let members = workspace::members()?;
    let mut command = cargo();
    command.args(["bench", "--locked"]);
    match target {
        Some("cluster") => return crate::bench_cluster::run_cluster_bench(extra),
        Some("peers") => {
            command.args(["--package", PEERS_CRATE]);
        }
        Some(name) => {
            let name = if name.starts_with("aegis-") {
                name.to_owned()
            } else {
                format!("aegis-{name}")
            };
            if !members.iter().any(|m| m.name == name) {
                return Err(format!("no crate named `{name}` in the workspace"));
            }
            command.args(["--package", &name]);
        }
        None => {
            command.arg("--workspace");
            if members.iter().any(|m| m.name == PEERS_CRATE) {
                command.args(["--exclude", PEERS_CRATE]);
            }
        }
    }
    if !extra.is_empty() {
        command.arg("--").args(extra);
    }
    run(&mut command)
}
