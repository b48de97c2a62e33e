//! How a run ends: a [`Report`] of what it did, or a [`Failure`] that explains it.

use std::fmt;

use crate::history::HistoryStats;

/// What kind of failure ended a run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// A safety invariant was violated during the run.
    Invariant {
        /// The invariant's name.
        invariant: &'static str,
    },
    /// The client history is not linearizable.
    Linearizability {
        /// The key whose history fails.
        key: u64,
    },
    /// The linearizability search ran out of budget (not a verdict).
    CheckerGaveUp {
        /// The key whose history was too hard.
        key: u64,
    },
    /// After faults stopped, the cluster did not finish or converge in time.
    Liveness,
    /// Code under test panicked.
    Panic,
    /// The Raft core returned an error the simulator does not expect.
    Unexpected,
}

/// A failed run: everything needed to understand and replay it.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The seed that replays the run.
    pub seed: u64,
    /// The tick at which it failed.
    pub tick: u64,
    /// What failed.
    pub kind: FailureKind,
    /// What was observed.
    pub detail: String,
    /// The run's drawn setup: Raft configuration, fault rates, network.
    pub setup: String,
    /// The last events before the failure.
    pub trace_tail: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "simulation failed: seed {} at tick {}: {:?}",
            self.seed, self.tick, self.kind
        )?;
        writeln!(f, "{}", self.detail)?;
        writeln!(f, "setup: {}", self.setup)?;
        writeln!(f, "last events:\n{}", self.trace_tail)?;
        write!(
            f,
            "replay it exactly with seed {} and the same options (cargo xtask sim --seed {} ...)",
            self.seed, self.seed
        )
    }
}

impl std::error::Error for Failure {}

/// What a successful run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// Nodes in the cluster.
    pub nodes: u64,
    /// Virtual ticks simulated.
    pub ticks: u64,
    /// Digest of every traced event: equal digests mean identical runs.
    pub digest: u64,
    /// Events traced.
    pub events: u64,
    /// Client operations accepted by a node (refused ones are not counted).
    pub accepted: u64,
    /// Client operations by outcome, refused ones included.
    pub history: HistoryStats,
    /// Highest committed index.
    pub commit_index: u64,
    /// Terms that had a leader.
    pub leader_terms: usize,
    /// Node crashes.
    pub crashes: u64,
    /// Partitions and one-way cuts.
    pub partitions: u64,
    /// Messages sent.
    pub messages: u64,
    /// Leadership transfers started.
    pub transfers: u64,
    /// Node-ticks skipped because the node was quiet.
    pub quiet_ticks: u64,
    /// Membership changes the leaders accepted (learners added or promoted, voters added,
    /// removed or replaced).
    pub conf_changes: u64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {}: ok, {} nodes, {} ticks, {} ops accepted ({} completed, {} indeterminate; {} refused), commit {}, {} leader terms, {} crashes, {} partitions, {} messages, {} transfers, {} quiet node-ticks, {} membership changes, digest {:016x}",
            self.seed,
            self.nodes,
            self.ticks,
            self.accepted,
            self.history.completed,
            self.history.indeterminate,
            self.history.failed,
            self.commit_index,
            self.leader_terms,
            self.crashes,
            self.partitions,
            self.messages,
            self.transfers,
            self.quiet_ticks,
            self.conf_changes,
            self.digest
        )
    }
}
