//! `cargo xtask fuzz`: the seeded mutation fuzzer over every decoder of untrusted bytes,
//! built in release mode.
//!
//! `--iterations N`, `--seed S` and `--target NAME` are passed through, and so are
//! `--replay SEED` (re-run one input of `--target`) and `--list`. A panic prints the
//! target, the input's seed and the input in hex, and fails the command.

use crate::Result;
use crate::shell::run_release_bin;

pub(crate) fn run_fuzz(args: &[String]) -> Result {
    run_release_bin("aegis-fuzz", &forwarded(args)?)
}

/// The fuzzer's arguments, checked here so that a typo fails before a release build.
pub(crate) fn forwarded(args: &[String]) -> Result<Vec<String>> {
    let mut forwarded = Vec::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--iterations" | "--seed" | "--replay" | "--target" => {
                let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
                if flag != "--target" && !is_number(value) {
                    return Err(format!("{flag} {value}: not a number"));
                }
                forwarded.extend([flag.clone(), value.clone()]);
            }
            "--list" => forwarded.push(flag.clone()),
            other => {
                return Err(format!(
                    "unexpected argument `{other}`; usage: fuzz [--iterations N] [--seed S] [--target NAME]"
                ));
            }
        }
    }
    Ok(forwarded)
}

/// A decimal number, or a hexadecimal one after `0x`, as the fuzzer reads them.
fn is_number(text: &str) -> bool {
    let text = text.replace('_', "");
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).is_ok(),
        None => text.parse::<u64>().is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::forwarded;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn flags_pass_through_and_typos_fail_early() {
        let given = args(&["--iterations", "500", "--seed", "0x2a", "--target", "resp"]);
        assert_eq!(forwarded(&given).unwrap(), given);
        assert_eq!(forwarded(&args(&["--list"])).unwrap(), args(&["--list"]));
        assert!(forwarded(&args(&["--iterations"])).is_err());
        assert!(forwarded(&args(&["--iterations", "many"])).is_err());
        assert!(forwarded(&args(&["--iteration", "5"])).is_err());
    }
}
