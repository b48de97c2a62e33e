//! A deterministic, seeded mutation fuzzer for every Aegis decoder of untrusted bytes.
//!
//! The design's rule is that bytes from the network or the disk never make a decoder
//! panic: they decode, or they give a typed error. This crate checks that rule on the
//! stable toolchain, without libFuzzer. Each [`Target`] in [`TARGETS`] starts from
//! valid encodings built through the crates' own encoders, mutates them with a seeded
//! [`Mutator`] (bit flips, boundary values, insertions, deletions, truncation,
//! duplication, splices), and feeds the result to its decoders under
//! [`std::panic::catch_unwind`]. Where a decoder accepts an input, the target also
//! checks that encoding the value and decoding it again gives the same value. Formats
//! guarded by checksums (WAL frames, snapshot chunks) have them recomputed in half of
//! the inputs, so that mutations reach the structure behind the checksum.
//!
//! It is not coverage-guided: inputs come from the seeds alone, never from earlier
//! inputs, which is what keeps every input reproducible on its own. `cargo xtask fuzz`
//! runs it in release mode; CI runs a smaller budget.
//!
//! Contract: a run is a pure function of its seed. Input `i` of target `t` is generated
//! from [`input_seed`]`(run_seed, t, i)` alone, so a failure's seed replays exactly that
//! input ([`Target::input`]), on any machine.
//!
//! ```
//! use aegis_fuzz::{Verdict, find, run_target};
//!
//! let target = find("envelope").expect("a target");
//! let report = run_target(target, 7, 200);
//! assert!(report.failure.is_none(), "{}", report.failure.unwrap());
//! assert_eq!(report.inputs, 200);
//! assert_eq!(report.accepted + report.rejected, 200);
//!
//! // Every seed encoding is valid.
//! let mutator = target.mutator();
//! for seed in mutator.seeds() {
//!     assert_eq!((target.run)(seed), Verdict::Accepted);
//! }
//! ```

mod engine;
mod mutate;
mod options;
mod rng;
mod targets;

pub use engine::{
    Failure, INPUT_LEN_MAX, QuietPanics, Target, TargetReport, Verdict, hex, run_one, run_target,
    unhex,
};
pub use mutate::Mutator;
pub use options::{Error, ITERATIONS_DEFAULT, Options, SEED_DEFAULT, parse_number};
pub use rng::{Rng, input_seed, mix};
pub use targets::{TARGETS, find};
