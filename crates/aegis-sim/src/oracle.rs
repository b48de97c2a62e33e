//! The cluster-wide safety properties, checked after every step.
//!
//! The oracle sees every node's log (as fingerprints), what each node reports committed
//! and applied, and who is leader in which term. It checks:
//! - election safety: at most one leader per term;
//! - log matching: two logs with an entry of the same term at an index are identical
//!   up to that index;
//! - leader completeness: a leader of term `t` holds every entry committed in a term
//!   before `t`;
//! - state machine safety: no two nodes apply different entries at one index;
//! - durability: every committed entry is on the durable log of a quorum, so no
//!   acknowledged entry can be lost to crashes of a minority.

use std::collections::BTreeMap;

use crate::NodeId;
use crate::view::LogView;

/// A violated invariant: its name and what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Which property.
    pub invariant: &'static str,
    /// What was observed.
    pub detail: String,
}

fn violation(invariant: &'static str, detail: String) -> Result<(), Violation> {
    Err(Violation { invariant, detail })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Committed {
    chain: u64,
    /// The term of the node that first reported the index committed.
    commit_term: u64,
}

/// What the oracle knows of the whole cluster's history.
#[derive(Debug, Clone, Default)]
pub struct Oracle {
    leaders: BTreeMap<u64, NodeId>,
    /// `committed[i - 1]` describes committed index `i`.
    committed: Vec<Committed>,
}

impl Oracle {
    /// The highest index known committed.
    #[must_use]
    pub fn commit_index(&self) -> u64 {
        self.committed.len() as u64
    }

    /// The chain digest of committed index `index`.
    #[must_use]
    pub fn committed_chain(&self, index: u64) -> Option<u64> {
        let at = index.checked_sub(1)?;
        self.committed.get(at as usize).map(|c| c.chain)
    }

    /// Distinct terms that had a leader.
    #[must_use]
    pub fn leader_terms(&self) -> usize {
        self.leaders.len()
    }

    /// `node` is leader in `term`.
    ///
    /// # Errors
    /// Another node was leader in `term`.
    pub fn observe_leader(&mut self, node: NodeId, term: u64) -> Result<(), Violation> {
        let holder = *self.leaders.entry(term).or_insert(node);
        if holder != node {
            return violation(
                "election safety",
                format!("nodes {holder} and {node} are both leader in term {term}"),
            );
        }
        Ok(())
    }

    /// `log` of `node` changed from index `from` on: compare it with every other log.
    ///
    /// # Errors
    /// Two logs agree on the term at an index but differ before it.
    pub fn check_log_matching<'a>(
        node: NodeId,
        log: &LogView,
        from: u64,
        others: impl Iterator<Item = (NodeId, &'a LogView)>,
    ) -> Result<(), Violation> {
        for (other, theirs) in others {
            if other == node {
                continue;
            }
            let last = log.last_index().min(theirs.last_index());
            for index in from.max(1)..=last {
                let (Some(a), Some(b)) = (log.get(index), theirs.get(index)) else {
                    break;
                };
                if a.term == b.term && a.chain != b.chain {
                    return violation(
                        "log matching",
                        format!(
                            "nodes {node} and {other} both have term {} at index {index} but their logs differ up to it",
                            a.term
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    /// `node`, in `term`, reports entries up to `commit` committed; `log` is its log.
    ///
    /// # Errors
    /// The node's log disagrees with what is already known committed, or does not
    /// reach its own commit index.
    pub fn observe_commit(
        &mut self,
        node: NodeId,
        term: u64,
        commit: u64,
        log: &LogView,
    ) -> Result<(), Violation> {
        if commit > log.last_index() {
            return violation(
                "commit within log",
                format!(
                    "node {node} commits {commit} beyond its last index {}",
                    log.last_index()
                ),
            );
        }
        let known = self.commit_index();
        let check_to = commit.min(known);
        // Only the top of the overlap needs comparing: chains cover the prefix.
        if check_to > 0 && log.chain(check_to) != self.committed_chain(check_to) {
            return violation(
                "state machine safety",
                format!(
                    "node {node} commits a log that differs from the committed log at or before index {check_to}"
                ),
            );
        }
        for index in known + 1..=commit {
            let chain = log.chain(index).expect("checked against last index");
            self.committed.push(Committed {
                chain,
                commit_term: term,
            });
        }
        Ok(())
    }

    /// `node` applies the entry at `index`, which its log fingerprints as `chain`.
    ///
    /// # Errors
    /// The entry is not the one committed at `index`.
    pub fn observe_apply(&self, node: NodeId, index: u64, chain: u64) -> Result<(), Violation> {
        match self.committed_chain(index) {
            Some(c) if c == chain => Ok(()),
            Some(_) => violation(
                "state machine safety",
                format!(
                    "node {node} applies at index {index} an entry other than the committed one"
                ),
            ),
            None => violation(
                "apply only committed",
                format!(
                    "node {node} applies index {index} before any node reported it committed (known commit {})",
                    self.commit_index()
                ),
            ),
        }
    }

    /// `node` is leader in `term` with `log`: it must hold every entry committed in an
    /// earlier term.
    ///
    /// # Errors
    /// An entry committed before `term` is missing from the leader's log.
    pub fn check_leader_completeness(
        &self,
        node: NodeId,
        term: u64,
        log: &LogView,
    ) -> Result<(), Violation> {
        // Commit terms never decrease along the log, so the entries committed before
        // `term` form a prefix.
        let prefix = self.committed.partition_point(|c| c.commit_term < term) as u64;
        if prefix > 0 && log.chain(prefix) != self.committed_chain(prefix) {
            return violation(
                "leader completeness",
                format!(
                    "leader {node} of term {term} lacks entries committed before its term (up to index {prefix}; its last index {})",
                    log.last_index()
                ),
            );
        }
        Ok(())
    }

    /// Every committed entry must be durable on `quorum` nodes: `durable` lists every
    /// node's durable log.
    ///
    /// # Errors
    /// Fewer than `quorum` durable logs hold the committed prefix.
    pub fn check_durable_quorum<'a>(
        &self,
        quorum: usize,
        durable: impl Iterator<Item = &'a LogView>,
    ) -> Result<(), Violation> {
        let top = self.commit_index();
        if top == 0 {
            return Ok(());
        }
        let want = self.committed_chain(top);
        let holders = durable.filter(|log| log.chain(top) == want).count();
        if holders < quorum {
            return violation(
                "committed entries durable on a quorum",
                format!(
                    "only {holders} durable logs hold the committed prefix up to {top}; quorum is {quorum}"
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(entries: &[(u64, u64)]) -> LogView {
        let mut v = LogView::default();
        v.splice(1, entries.iter().copied());
        v
    }

    #[test]
    fn two_leaders_in_one_term_is_caught() {
        let mut o = Oracle::default();
        o.observe_leader(1, 3).unwrap();
        o.observe_leader(1, 3).unwrap();
        o.observe_leader(2, 4).unwrap();
        assert_eq!(
            o.observe_leader(2, 3).unwrap_err().invariant,
            "election safety"
        );
    }

    #[test]
    fn log_matching_violation_is_caught() {
        let a = log(&[(1, 1), (2, 2)]);
        let b = log(&[(1, 9), (2, 2)]);
        let c = log(&[(1, 1), (3, 3)]);
        assert!(Oracle::check_log_matching(1, &a, 1, [(3, &c)].into_iter()).is_ok());
        let err = Oracle::check_log_matching(1, &a, 1, [(2, &b)].into_iter()).unwrap_err();
        assert_eq!(err.invariant, "log matching");
    }

    #[test]
    fn commit_apply_and_completeness() {
        let mut o = Oracle::default();
        let good = log(&[(1, 1), (1, 2), (2, 3)]);
        o.observe_commit(1, 1, 2, &good).unwrap();
        o.observe_apply(2, 1, good.chain(1).unwrap()).unwrap();
        assert!(
            o.observe_apply(2, 3, good.chain(3).unwrap()).is_err(),
            "not committed yet"
        );
        let other = log(&[(1, 1), (1, 7)]);
        assert!(o.observe_commit(2, 1, 2, &other).is_err());
        assert!(o.observe_apply(2, 2, other.chain(2).unwrap()).is_err());
        // A leader of term 2 lacking index 2 (committed in term 1) is incomplete.
        let short = log(&[(1, 1)]);
        assert_eq!(
            o.check_leader_completeness(3, 2, &short)
                .unwrap_err()
                .invariant,
            "leader completeness"
        );
        assert!(o.check_leader_completeness(1, 2, &good).is_ok());
        // The committed prefix is durable on 2 of 3 logs.
        assert!(
            o.check_durable_quorum(2, [&good, &short, &good].into_iter())
                .is_ok()
        );
        assert!(
            o.check_durable_quorum(2, [&good, &short, &short].into_iter())
                .is_err()
        );
    }
}
