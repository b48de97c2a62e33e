//! `cargo xtask sim`: the deterministic cluster simulator, built in release mode.
//!
//! `--seeds N [--start S] [--ops M]` sweeps seeds S..S+N; `--seed S` replays one seed
//! exactly and prints every event; `--regressions` replays every seed that once failed,
//! each with the options it failed under. `--nodes K`, `--lease`, `--quiesce`,
//! `--no-faults` and `--quiet` are passed through. Every failure prints its seed and the
//! command that replays it.

use crate::Result;
use crate::shell::run_release_bin;

pub(crate) fn run_sim(args: &[String]) -> Result {
    let mut forwarded: Vec<String> = Vec::new();
    let mut it = args.iter();
    let mut mode_given = false;
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--seeds" | "--seed" | "--start" | "--ops" | "--nodes" => {
                let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
                value
                    .parse::<u64>()
                    .map_err(|e| format!("{flag} {value}: {e}"))?;
                mode_given |= flag == "--seeds" || flag == "--seed";
                forwarded.extend([flag.clone(), value.clone()]);
            }
            "--regressions" => {
                mode_given = true;
                forwarded.push(flag.clone());
            }
            "--quiet" | "--lease" | "--quiesce" | "--no-faults" => forwarded.push(flag.clone()),
            other => {
                return Err(format!(
                    "unexpected argument `{other}`; usage: sim --seeds N [--start S] [--ops M] | sim --seed S | sim --regressions"
                ));
            }
        }
    }
    if !mode_given {
        return Err("give --seeds N, --seed S or --regressions".to_owned());
    }
    run_release_bin("aegis-sim", &forwarded)
}
