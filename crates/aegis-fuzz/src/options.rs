//! The command line of `aegis-fuzz`.

use crate::targets;

/// Inputs per target when `--iterations` is not given.
pub const ITERATIONS_DEFAULT: u64 = 1_000_000;
/// The run seed when `--seed` is not given: fixed, so two plain runs are identical.
pub const SEED_DEFAULT: u64 = 0xAE61_5F22;

/// A command line that cannot be run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A flag this program does not know.
    #[error("unexpected argument `{arg}`")]
    UnknownArgument {
        /// The argument as given.
        arg: String,
    },
    /// A flag that takes a value came last.
    #[error("{flag} needs a value")]
    MissingValue {
        /// The flag.
        flag: &'static str,
    },
    /// A value that is not a number (decimal, or hex with `0x`).
    #[error("{flag} {value}: not a number")]
    BadNumber {
        /// The flag.
        flag: &'static str,
        /// The value as given.
        value: String,
    },
    /// `--target` named no target.
    #[error("no target named `{name}` (--list shows them)")]
    UnknownTarget {
        /// The name as given.
        name: String,
    },
    /// `--replay` without `--target`: a seed means nothing without its target.
    #[error("--replay needs --target")]
    ReplayWithoutTarget,
    /// `--iterations 0` would test nothing.
    #[error("--iterations must be at least 1")]
    NoIterations,
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Inputs per target (slow targets run a fraction).
    pub iterations: u64,
    /// The run seed every input seed derives from.
    pub seed: u64,
    /// Only this target, if given.
    pub target: Option<String>,
    /// Re-run the one input this seed generates (needs `target`).
    pub replay: Option<u64>,
    /// List the targets instead of running them.
    pub list: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            iterations: ITERATIONS_DEFAULT,
            seed: SEED_DEFAULT,
            target: None,
            replay: None,
            list: false,
        }
    }
}

impl Options {
    /// Parses the arguments after the program name.
    ///
    /// # Errors
    /// [`Error`] for anything that is not a valid command line.
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Self, Error> {
        let mut options = Options::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |flag: &'static str| -> Result<u64, Error> {
                let value = args.next().ok_or(Error::MissingValue { flag })?;
                parse_number(&value).ok_or(Error::BadNumber { flag, value })
            };
            match arg.as_str() {
                "--iterations" => options.iterations = value("--iterations")?,
                "--seed" => options.seed = value("--seed")?,
                "--replay" => options.replay = Some(value("--replay")?),
                "--target" => {
                    let name = args
                        .next()
                        .ok_or(Error::MissingValue { flag: "--target" })?;
                    if targets::find(&name).is_none() {
                        return Err(Error::UnknownTarget { name });
                    }
                    options.target = Some(name);
                }
                "--list" => options.list = true,
                _ => return Err(Error::UnknownArgument { arg }),
            }
        }
        if options.iterations == 0 {
            return Err(Error::NoIterations);
        }
        if options.replay.is_some() && options.target.is_none() {
            return Err(Error::ReplayWithoutTarget);
        }
        Ok(options)
    }
}

/// A decimal number, or a hexadecimal one after `0x`; `_` separators allowed.
#[must_use]
pub fn parse_number(text: &str) -> Option<u64> {
    let text = text.replace('_', "");
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}
