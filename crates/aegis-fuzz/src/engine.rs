//! Running a target: generate inputs, call the decoder under `catch_unwind`, count.

use std::cell::RefCell;
use std::fmt;
use std::panic::{self, AssertUnwindSafe, PanicHookInfo};
use std::sync::Mutex;

use crate::mutate::Mutator;
use crate::rng::input_seed;

/// The longest input any target is given, in bytes.
pub const INPUT_LEN_MAX: usize = 64 * 1024;

/// What a decoder said about one input (a panic is neither: it is a [`Failure`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The input decoded (and, where the target checks one, round-tripped).
    Accepted,
    /// The decoder returned an error.
    Rejected,
}

/// One fuzz target: a family of decoders and the valid encodings to start from.
#[derive(Clone, Copy)]
pub struct Target {
    /// The name `--target` selects it by.
    pub name: &'static str,
    /// One line on what it exercises.
    pub about: &'static str,
    /// The target runs `iterations / iterations_divisor` inputs (at least one): slow
    /// targets get a smaller share of the budget.
    pub iterations_divisor: u64,
    /// Valid encodings built through the crates' public encoders.
    pub seeds: fn() -> Vec<Vec<u8>>,
    /// Repairs checksums in about half of the inputs, so that mutations get past the
    /// checksum to the structure behind it. `None` for formats without checksums.
    pub fixup: Option<fn(&mut [u8])>,
    /// Feeds one input to the decoders. Panics (including failed round-trip
    /// assertions) are failures.
    pub run: fn(&[u8]) -> Verdict,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("iterations_divisor", &self.iterations_divisor)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// How many inputs this target runs out of a budget of `iterations`.
    #[must_use]
    pub fn iterations_for(&self, iterations: u64) -> u64 {
        assert!(self.iterations_divisor > 0, "{}: zero divisor", self.name);
        (iterations / self.iterations_divisor).max(1)
    }

    /// The input number `iteration` of a run seeded with `run_seed`, which is also what
    /// [`Target::input`] gives for the seed of that iteration.
    #[must_use]
    pub fn input_at(&self, mutator: &Mutator, run_seed: u64, iteration: u64) -> (u64, Vec<u8>) {
        let seed = input_seed(run_seed, self.name, iteration);
        (seed, self.input(mutator, seed))
    }

    /// The input generated from `input_seed`: a mutated seed encoding, its checksums
    /// repaired when the seed says so.
    #[must_use]
    pub fn input(&self, mutator: &Mutator, input_seed: u64) -> Vec<u8> {
        let mut input = mutator.generate(input_seed);
        // A bit of the seed the mutator's generator hardly uses decides the repair.
        if let Some(fixup) = self.fixup
            && input_seed >> 63 == 1
        {
            fixup(&mut input);
        }
        input
    }

    /// A mutator over this target's seeds.
    #[must_use]
    pub fn mutator(&self) -> Mutator {
        Mutator::new((self.seeds)(), INPUT_LEN_MAX)
    }
}

/// A panic found by the fuzzer, with what it takes to reproduce it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The target that panicked.
    pub target: &'static str,
    /// The iteration within the run.
    pub iteration: u64,
    /// The seed that regenerates the input ([`Target::input`]).
    pub input_seed: u64,
    /// The input itself.
    pub input: Vec<u8>,
    /// The panic message and, when known, where it was raised.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "FAILURE: target `{}` panicked at iteration {}",
            self.target, self.iteration
        )?;
        writeln!(f, "  panic:      {}", self.message)?;
        writeln!(
            f,
            "  input seed: {:#018x} (replay: aegis-fuzz --target {} --replay {:#018x})",
            self.input_seed, self.target, self.input_seed
        )?;
        write!(
            f,
            "  input ({} bytes): {}",
            self.input.len(),
            hex(&self.input)
        )
    }
}

/// What one target's run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetReport {
    /// The target's name.
    pub target: &'static str,
    /// Inputs run (fewer than planned when one panicked: the run stops there).
    pub inputs: u64,
    /// Inputs the decoders accepted.
    pub accepted: u64,
    /// Inputs the decoders rejected with an error.
    pub rejected: u64,
    /// The first panic, if any.
    pub failure: Option<Failure>,
}

/// Runs `iterations` inputs of `target` (see [`Target::iterations_for`] for the share
/// a slow target gets), stopping at the first panic.
#[must_use]
pub fn run_target(target: &Target, run_seed: u64, iterations: u64) -> TargetReport {
    let mutator = target.mutator();
    let planned = target.iterations_for(iterations);
    let mut report = TargetReport {
        target: target.name,
        inputs: 0,
        accepted: 0,
        rejected: 0,
        failure: None,
    };
    let _quiet = QuietPanics::install();
    for iteration in 0..planned {
        let (seed, input) = target.input_at(&mutator, run_seed, iteration);
        report.inputs += 1;
        match run_one(target, &input) {
            Ok(Verdict::Accepted) => report.accepted += 1,
            Ok(Verdict::Rejected) => report.rejected += 1,
            Err(message) => {
                report.failure = Some(Failure {
                    target: target.name,
                    iteration,
                    input_seed: seed,
                    input,
                    message,
                });
                break;
            }
        }
    }
    debug_assert_eq!(
        report.inputs,
        report.accepted + report.rejected + u64::from(report.failure.is_some())
    );
    report
}

/// Feeds one input to `target`, turning a panic into its message. Install
/// [`QuietPanics`] around calls to keep the default hook from printing each one.
///
/// # Errors
/// The panic's message (and location) when the target panicked.
pub fn run_one(target: &Target, input: &[u8]) -> Result<Verdict, String> {
    LAST_PANIC.with(|last| last.borrow_mut().take());
    panic::catch_unwind(AssertUnwindSafe(|| (target.run)(input))).map_err(|payload| {
        let text = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a text message".to_owned());
        // The hook saw the location; the payload only has the message.
        match LAST_PANIC.with(|last| last.borrow_mut().take()) {
            Some(location) => format!("{text} (at {location})"),
            None => text,
        }
    })
}

thread_local! {
    /// Where the latest panic on this thread happened, recorded by the quiet hook.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

type Hook = Box<dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static>;

/// How many [`QuietPanics`] guards are alive, and the hook they replaced.
static QUIET: Mutex<(usize, Option<Hook>)> = Mutex::new((0, None));

/// While alive, panics print nothing (their location is kept for the report); the
/// previous hook comes back when the last guard is dropped. Guards may overlap, from
/// several threads.
#[derive(Debug)]
pub struct QuietPanics {
    _private: (),
}

impl QuietPanics {
    /// Silences the panic hook until the guard is dropped.
    #[must_use]
    pub fn install() -> Self {
        let mut quiet = QUIET
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if quiet.0 == 0 {
            quiet.1 = Some(panic::take_hook());
            panic::set_hook(Box::new(|info| {
                let location = info
                    .location()
                    .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
                LAST_PANIC.with(|last| *last.borrow_mut() = location);
            }));
        }
        quiet.0 += 1;
        Self { _private: () }
    }
}

impl Drop for QuietPanics {
    fn drop(&mut self) {
        let mut quiet = QUIET
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        assert!(quiet.0 > 0, "more guards dropped than installed");
        quiet.0 -= 1;
        // Setting a hook while unwinding would abort; the quiet hook then stays.
        if quiet.0 == 0
            && !std::thread::panicking()
            && let Some(previous) = quiet.1.take()
        {
            panic::set_hook(previous);
        }
    }
}

/// Lower-case hex, two digits a byte.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Parses what [`hex`] writes.
#[must_use]
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn always_panics(_: &[u8]) -> Verdict {
        panic!("always")
    }

    fn one_seed() -> Vec<Vec<u8>> {
        vec![vec![1, 2, 3]]
    }

    // The only test in this binary that touches the process-wide hook.
    #[test]
    fn quiet_guards_nest_and_the_previous_hook_comes_back() {
        let target = Target {
            name: "always",
            about: "",
            iterations_divisor: 1,
            seeds: one_seed,
            fixup: None,
            run: always_panics,
        };
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&calls);
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
        }));
        let outer = QuietPanics::install();
        let report = run_target(&target, 1, 10);
        assert!(report.failure.unwrap().message.starts_with("always (at "));
        drop(outer);
        assert_eq!(calls.load(Ordering::SeqCst), 0, "a panic reached the hook");
        let _ = panic::catch_unwind(|| panic!("after the run"));
        let after = calls.load(Ordering::SeqCst);
        panic::set_hook(previous);
        assert_eq!(after, 1, "the previous hook did not come back");
    }
}
