//! Integration tests of the fuzzer: its determinism, its seeds, its failure reports.

mod budget;
mod engine;
mod mutate;
mod options;
mod targets;
