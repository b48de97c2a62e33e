//! Whole-cluster simulation runs: determinism and a small sweep of seeds.

mod determinism;
mod lease_restart;
mod quiet;
mod sabotage;
mod seeds;
