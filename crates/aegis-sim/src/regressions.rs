//! Seeds that once failed, with the options they failed under.
//!
//! A sweep's seed range moves on, so a seed that found a bug is never drawn again by
//! chance. `aegis-sim --regressions` replays every seed listed here, and CI runs it after
//! its sweep, so each fixed bug stays fixed. A seed earns its place by failing on some
//! version of the code, including a fix that was never landed: those found traps a later
//! change could fall into again.

use crate::Options;

/// One seed that once failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Regression {
    /// The seed, as `--seed`.
    pub seed: u64,
    /// Client operations, as `--ops`.
    pub ops: u64,
    /// Nodes, as `--nodes`.
    pub nodes: u64,
    /// What the seed found.
    pub found: &'static str,
}

impl Regression {
    /// The options the seed failed under: the defaults, with its operations and nodes.
    pub fn options(&self) -> Options {
        Options {
            ops: self.ops,
            nodes: self.nodes,
            ..Options::default()
        }
    }

    /// The command that replays this seed and prints every event.
    pub fn replay_command(&self) -> String {
        format!(
            "cargo xtask sim --seed {} --ops {} --nodes {}",
            self.seed, self.ops, self.nodes
        )
    }
}

/// Every seed replayed by `aegis-sim --regressions`, oldest first.
pub const REGRESSIONS: &[Regression] = &[
    Regression {
        seed: 950_229,
        ops: 10_000,
        nodes: 5,
        found: "with pre-vote and check-quorum off, a node removed while away campaigned \
                for ever and deposed every leader",
    },
    Regression {
        seed: 950_369,
        ops: 10_000,
        nodes: 5,
        found: "the same livelock as 950229, through another removal",
    },
    Regression {
        seed: 970_274,
        ops: 10_000,
        nodes: 5,
        found: "with one entry per message and one message in flight, a far-behind \
                follower needs 4,000 ticks to catch up: slow, not stuck",
    },
    Regression {
        seed: 970_301,
        ops: 10_000,
        nodes: 5,
        found: "a voter whose term a removed node raised, and whose log lacked its own \
                re-addition, ignored the stale leader for good",
    },
    Regression {
        seed: 1_004_605,
        ops: 10_000,
        nodes: 5,
        found: "ignoring the vote requests of every non-voter also silenced learners",
    },
    Regression {
        seed: 990_269,
        ops: 10_000,
        nodes: 5,
        found: "ignoring only nodes outside the receiver's configuration let a lagging \
                member hear a removed node and livelock the group",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_regression_has_valid_options_and_appears_once() {
        for (i, regression) in REGRESSIONS.iter().enumerate() {
            regression.options().validate().unwrap();
            assert!(
                REGRESSIONS[..i].iter().all(|r| r.seed != regression.seed),
                "seed {} is listed twice",
                regression.seed
            );
        }
    }

    #[test]
    fn the_replay_command_names_the_seed_and_its_options() {
        let regression = REGRESSIONS[0];
        assert_eq!(
            regression.replay_command(),
            "cargo xtask sim --seed 950229 --ops 10000 --nodes 5"
        );
    }
}
