//! The record of what clients asked and what they were told, and its per-key check.

use std::collections::BTreeMap;

use crate::checker::{self, Operation, RegisterInput, RegisterModel, RegisterOutput, Verdict};

/// Handle of one invoked operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(pub usize);

#[derive(Debug, Clone)]
struct Entry {
    key: u64,
    op: Operation<RegisterInput, RegisterOutput>,
    /// Known to have had no effect (rejected before it entered the log).
    failed: bool,
}

/// Invocations and responses of client operations on a key-value store of registers.
///
/// Event times come from one counter that increases at every invocation and response,
/// so real-time order is exact even when many events share a simulated tick.
#[derive(Debug, Clone, Default)]
pub struct History {
    entries: Vec<Entry>,
    clock: u64,
}

/// Counts of a history's operations by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryStats {
    /// Operations with a known output.
    pub completed: usize,
    /// Operations known to have had no effect.
    pub failed: usize,
    /// Operations whose outcome is unknown.
    pub indeterminate: usize,
}

/// Why a history is not linearizable, for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyViolation {
    /// The key whose history fails.
    pub key: u64,
    /// The checker's verdict (never `Linearizable`).
    pub verdict: Verdict,
    /// The operations on the key, in invocation order, one per line.
    pub operations: Vec<String>,
}

impl History {
    /// An empty history.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Records that `client` invoked `input` on `key`.
    pub fn invoke(&mut self, client: u64, key: u64, input: RegisterInput) -> OpId {
        let call = self.tick();
        self.entries.push(Entry {
            key,
            op: Operation {
                client,
                input,
                call,
                response: None,
            },
            failed: false,
        });
        OpId(self.entries.len() - 1)
    }

    /// Records the response to `id`.
    ///
    /// # Panics
    /// If `id` already has an outcome.
    pub fn complete(&mut self, id: OpId, output: RegisterOutput) {
        let at = self.tick();
        let entry = &mut self.entries[id.0];
        assert!(
            entry.op.response.is_none() && !entry.failed,
            "operation {id:?} completed twice"
        );
        entry.op.response = Some((at, output));
    }

    /// Records that `id` certainly had no effect (it was refused before being logged).
    ///
    /// # Panics
    /// If `id` already has an outcome.
    pub fn fail(&mut self, id: OpId) {
        let entry = &mut self.entries[id.0];
        assert!(
            entry.op.response.is_none() && !entry.failed,
            "operation {id:?} completed twice"
        );
        entry.failed = true;
    }

    /// Counts by outcome; operations without a response count as indeterminate.
    #[must_use]
    pub fn stats(&self) -> HistoryStats {
        let mut stats = HistoryStats::default();
        for e in &self.entries {
            if e.failed {
                stats.failed += 1;
            } else if e.op.response.is_some() {
                stats.completed += 1;
            } else {
                stats.indeterminate += 1;
            }
        }
        stats
    }

    /// Checks every key's history for linearizability (a history of independent keys
    /// is linearizable if and only if each key's is). Failed operations and reads with
    /// unknown outcome are left out: neither can have affected anything.
    ///
    /// # Errors
    /// The first key whose history is not linearizable, or on which the search ran
    /// out of its `steps_max` budget.
    pub fn check(&self, steps_max: u64) -> Result<(), KeyViolation> {
        let mut by_key: BTreeMap<u64, Vec<Operation<RegisterInput, RegisterOutput>>> =
            BTreeMap::new();
        for e in &self.entries {
            let unknown_read = e.op.response.is_none() && e.op.input == RegisterInput::Get;
            if !e.failed && !unknown_read {
                by_key.entry(e.key).or_default().push(e.op.clone());
            }
        }
        for (key, ops) in by_key {
            let verdict = checker::check(&RegisterModel, &ops, steps_max);
            if verdict != Verdict::Linearizable {
                let operations = ops
                    .iter()
                    .enumerate()
                    .map(|(i, op)| {
                        let response = op
                            .response
                            .as_ref()
                            .map_or_else(|| "unknown".to_owned(), |(t, o)| format!("{o:?} @{t}"));
                        format!(
                            "#{i} client {} {:?} @{} -> {response}",
                            op.client, op.input, op.call
                        )
                    })
                    .collect();
                return Err(KeyViolation {
                    key,
                    verdict,
                    operations,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_independently_and_failures_ignored() {
        let mut h = History::new();
        let a = h.invoke(1, 10, RegisterInput::Put(1));
        let b = h.invoke(2, 20, RegisterInput::Put(2));
        h.complete(a, RegisterOutput::Written);
        h.complete(b, RegisterOutput::Written);
        let refused = h.invoke(1, 10, RegisterInput::Put(3));
        h.fail(refused);
        let lost_read = h.invoke(3, 10, RegisterInput::Get);
        let r = h.invoke(1, 10, RegisterInput::Get);
        h.complete(r, RegisterOutput::Value(Some(1)));
        let _ = lost_read;
        assert_eq!(h.check(100_000), Ok(()));
        assert_eq!(
            h.stats(),
            HistoryStats {
                completed: 3,
                failed: 1,
                indeterminate: 1
            }
        );
        // Reading key 20's value on key 10 is a violation on key 10 only.
        let bad = h.invoke(1, 10, RegisterInput::Get);
        h.complete(bad, RegisterOutput::Value(Some(2)));
        let violation = h.check(100_000).unwrap_err();
        assert_eq!(violation.key, 10);
        assert!(matches!(violation.verdict, Verdict::NotLinearizable { .. }));
    }
}
