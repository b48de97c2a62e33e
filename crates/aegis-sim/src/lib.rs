//! Deterministic cluster simulation for the `aegis-raft` core, with a linearizability
//! checker for client histories.
//!
//! A run is a pure function of its seed and [`Options`]: one seeded PRNG ([`SimRng`])
//! drives the network (drops, duplicates, delays, reorders, partitions and one-way
//! cuts), the disks (writes that complete after a random delay; a crash loses every
//! write the node was not told was durable), crashes and restarts, membership changes
//! (learners added and promoted, voters added, removed, the leader included, and
//! replaced through joint configurations), and a client workload of gets, puts and
//! compare-and-swaps on a few keys. Time is virtual: nothing reads the clock, so the same
//! seed replays exactly, and [`Report::digest`] proves it.
//!
//! After every step the simulator checks the safety properties of Raft: at most one
//! leader per term, log matching, leader completeness, state machine safety (no two
//! nodes apply different entries at one index) and that every committed entry is durable
//! on enough nodes to meet every quorum of the configuration, so no acknowledged write
//! can be lost. When the fault phase ends the
//! cluster is healed and must converge; then the client history is checked for
//! linearizability per key ([`checker`], Wing and Gong's search with Lowe's memo), with
//! operations whose outcome the client never learned treated as indeterminate.
//!
//! Every failure is a [`Failure`] naming its seed and carrying the tail of the trace.
//!
//! ```
//! use aegis_sim::{Options, Simulation};
//!
//! let options = Options { ops: 60, ..Options::default() };
//! let report = Simulation::run(7, &options).expect("the cluster is safe");
//! assert_eq!(report.accepted, 60);
//! assert!(report.history.completed > 0);
//! // Same seed, same run.
//! assert_eq!(Simulation::run(7, &options).unwrap().digest, report.digest);
//! ```

#![forbid(unsafe_code)]

pub mod checker;
pub mod disk;
mod event;
pub mod history;
mod host;
pub mod kv;
pub mod net;
mod options;
pub mod oracle;
pub mod regressions;
mod report;
pub mod rng;
mod sim;
mod snapshot;
pub mod trace;
pub mod view;

pub use event::Event;
pub use host::{MessageSummary, summarize};
pub use options::{FaultOptions, Options, SETTLE_STRETCH_MAX, Sabotage};
pub use report::{Failure, FailureKind, Report};
pub use rng::SimRng;
pub use sim::Simulation;

/// Node ids, as across the workspace.
pub type NodeId = u64;

/// Errors of the simulator's own configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An option has a value the simulator cannot use.
    #[error("invalid option {name}: {reason}")]
    InvalidOption {
        /// The option's name.
        name: &'static str,
        /// Why it is refused.
        reason: String,
    },
}
