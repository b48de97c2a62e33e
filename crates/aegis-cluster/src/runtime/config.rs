//! The driver's configuration: wall-clock durations, turned into the core's ticks.

use std::ops::Range;
use std::time::Duration;

use aegis_raft::{Config, NodeId, ReadOnlyOption};

use super::ThreadStart;

/// How a [`RaftNode`](super::RaftNode) runs. Durations are wall-clock; the core counts
/// them in ticks of `tick_interval`.
///
/// The seed's `RaftConfig { node_id, peers, election_timeout, heartbeat_interval }`
/// maps onto this type, with the election timeout as a range of durations.
#[derive(Clone, Debug)]
pub struct RaftConfig {
    /// This node's id (non-zero).
    pub node_id: NodeId,
    /// The other voting members, by id. Used only when the log is new: afterwards the
    /// membership comes from the log.
    pub peers: Vec<NodeId>,
    /// A follower campaigns after a random time in this range without a leader.
    pub election_timeout: Range<Duration>,
    /// The leader's heartbeat period.
    pub heartbeat_interval: Duration,
    /// The core's clock resolution; every duration above is rounded to whole ticks.
    pub tick_interval: Duration,
    /// How long `propose` and `read` wait for an answer.
    pub request_timeout: Duration,
    /// Requests and messages queued for the node's thread before callers get
    /// [`RaftError::Busy`](super::RaftError::Busy) (messages are dropped instead).
    pub inbox_max: usize,
    /// Inputs handled between two writes of the log: more means fewer, larger writes.
    pub inputs_per_batch_max: usize,
    /// Write the log on a thread of its own (for logs that offer a writer handle, see
    /// [`LogStore::writer`](super::LogStore::writer)), so the node's thread keeps
    /// stepping messages while a sync is in flight. Off by default: the node's thread
    /// then writes and syncs each batch itself, which costs fewer thread hand-offs per
    /// write and measured cheaper and faster where cores are scarce (see
    /// docs/BENCHMARKS.md); a slow disk on a machine with cores to spare may favour the
    /// thread.
    pub log_writer_thread: bool,
    /// Readies whose writes the log writer thread combines into one sync.
    pub write_batch_max: usize,
    /// Committed entries the applier thread hands the state machine in one
    /// [`apply_batch`](super::StateMachine::apply_batch).
    pub apply_batch_max: usize,
    /// Serve reads under a leader lease instead of a quorum round (assumes bounded clock
    /// drift; see [`ReadOnlyOption::LeaseBased`]).
    pub lease_reads: bool,
    /// Seeds the election timeouts and the snapshot stretches; `None` derives a seed from
    /// the node id and the time.
    pub rng_seed: Option<u64>,
    /// Entries applied between two snapshots of the state machine (see
    /// [`StateMachine::snapshot`](super::StateMachine::snapshot)); after each snapshot the
    /// log is compacted. 0 never snapshots.
    pub snapshot_every_entries: u64,
    /// A snapshot also waits until the commands applied since the last one add up to this
    /// share, in percent, of the last snapshot's size. Snapshotting a large state then
    /// costs in proportion to what is written, however large the state grows (the Raft
    /// thesis, section 5.1.1), and the log holds at most about this share of the state
    /// beyond `snapshot_every_entries` entries. 0 snapshots on the entry count alone.
    pub snapshot_log_growth_percent: u32,
    /// Spreads the replicas' snapshots apart, in percent. Replicas apply the same
    /// entries, so on exact thresholds they all snapshot at the same index, at the same
    /// moment, and the whole group slows down at once. Instead, each node stretches both
    /// thresholds above by a share drawn at random for each snapshot, between 0 and
    /// this percentage (from `rng_seed` when set). 0 snapshots on the exact thresholds.
    pub snapshot_stretch_percent: u32,
    /// Entries kept behind a snapshot when compacting, so a follower only a little behind
    /// catches up from the log rather than by a snapshot (a log that drops the covered
    /// entries as it stores a snapshot keeps none; `aegis_log::DiskStorage` keeps them).
    pub compaction_tail_entries: u64,
    /// How far (in entries) a learner's log may lag the leader's for
    /// [`RaftNode::promote_learner`](super::RaftNode::promote_learner) to accept it.
    pub learner_catchup_entries_max: u64,
    /// Runs first on each thread the node starts, told which one it is (none by
    /// default).
    pub on_thread_start: Option<ThreadStart>,
}

/// Why a [`RaftConfig`] is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RaftConfigError {
    /// A field has a value that cannot work; the message says why.
    #[error("raft config field `{field}`: {reason}")]
    Invalid {
        /// The field's name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl RaftConfig {
    /// The defaults: election timeout 150 to 300 ms, heartbeat 50 ms, 10 ms ticks, 5 s
    /// request timeout, ReadIndex reads, a snapshot every 10,000 entries once the log has
    /// grown by the last snapshot's size, keeping a tail of 1,024, learners promoted once within 1,000 entries of the leader.
    #[must_use]
    pub fn new(node_id: NodeId, peers: Vec<NodeId>) -> RaftConfig {
        RaftConfig {
            node_id,
            peers,
            election_timeout: Duration::from_millis(150)..Duration::from_millis(300),
            heartbeat_interval: Duration::from_millis(50),
            tick_interval: Duration::from_millis(10),
            request_timeout: Duration::from_secs(5),
            inbox_max: 16 * 1024,
            inputs_per_batch_max: 1024,
            log_writer_thread: false,
            write_batch_max: 1024,
            apply_batch_max: 4096,
            lease_reads: false,
            rng_seed: None,
            snapshot_every_entries: 10_000,
            snapshot_log_growth_percent: 100,
            snapshot_stretch_percent: 50,
            compaction_tail_entries: 1024,
            learner_catchup_entries_max: 1000,
            on_thread_start: None,
        }
    }

    /// Every voter, this node included, sorted.
    #[must_use]
    pub fn voters(&self) -> Vec<NodeId> {
        let mut voters = self.peers.clone();
        voters.push(self.node_id);
        voters.sort_unstable();
        voters.dedup();
        voters
    }

    /// Checks the fields against each other.
    pub fn validate(&self) -> Result<(), RaftConfigError> {
        let invalid = |field, reason: &str| {
            Err(RaftConfigError::Invalid {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.node_id == 0 {
            return invalid("node_id", "must not be 0");
        }
        if self.tick_interval.is_zero() {
            return invalid("tick_interval", "must be positive");
        }
        if self.heartbeat_interval < self.tick_interval {
            return invalid("heartbeat_interval", "must be at least one tick_interval");
        }
        if self.election_timeout.start <= self.heartbeat_interval {
            return invalid("election_timeout", "must start above heartbeat_interval");
        }
        if self.election_timeout.end <= self.election_timeout.start {
            return invalid("election_timeout", "must be a non-empty range");
        }
        if self.request_timeout.is_zero() {
            return invalid("request_timeout", "must be positive");
        }
        if self.inbox_max == 0 || self.inputs_per_batch_max == 0 {
            return invalid("inbox_max", "queue lengths must be positive");
        }
        if self.write_batch_max == 0 {
            return invalid("write_batch_max", "must be positive");
        }
        if self.apply_batch_max == 0 {
            return invalid("apply_batch_max", "must be positive");
        }
        if self.snapshot_stretch_percent > 100 {
            return invalid("snapshot_stretch_percent", "must be at most 100");
        }
        Ok(())
    }

    /// The core's configuration: the durations in ticks, the other limits at their
    /// defaults.
    pub(crate) fn core_config(&self) -> Result<Config, super::RaftError> {
        let ticks = |d: Duration| (d.as_nanos() / self.tick_interval.as_nanos()).max(1) as u64;
        let mut config = Config::new(self.node_id);
        config.election_timeout_ticks_min = ticks(self.election_timeout.start);
        config.election_timeout_ticks_max = ticks(self.election_timeout.end);
        config.heartbeat_interval_ticks = ticks(self.heartbeat_interval);
        config.compaction_tail_entries = self.compaction_tail_entries;
        config.learner_catchup_entries_max = self.learner_catchup_entries_max;
        if self.lease_reads {
            config.read_only_option = ReadOnlyOption::LeaseBased;
        }
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{RaftConfig, RaftConfigError};

    #[test]
    fn defaults_are_valid_and_convert_to_ticks() {
        let config = RaftConfig::new(1, vec![2, 3]);
        config.validate().unwrap();
        let core = config.core_config().unwrap();
        assert_eq!(core.election_timeout_ticks_min, 15);
        assert_eq!(core.election_timeout_ticks_max, 30);
        assert_eq!(core.heartbeat_interval_ticks, 5);
        assert_eq!(core.learner_catchup_entries_max, 1000);
        assert_eq!(config.voters(), [1, 2, 3]);
    }

    #[test]
    fn nonsense_is_rejected_naming_the_field() {
        let mut config = RaftConfig::new(1, vec![]);
        config.election_timeout = Duration::from_millis(30)..Duration::from_millis(300);
        let RaftConfigError::Invalid { field, .. } = config.validate().unwrap_err();
        assert_eq!(field, "election_timeout");
        let mut config = RaftConfig::new(0, vec![]);
        config.tick_interval = Duration::ZERO;
        let RaftConfigError::Invalid { field, .. } = config.validate().unwrap_err();
        assert_eq!(field, "node_id");
        let mut config = RaftConfig::new(1, vec![]);
        config.write_batch_max = 0;
        let RaftConfigError::Invalid { field, .. } = config.validate().unwrap_err();
        assert_eq!(field, "write_batch_max");
        let mut config = RaftConfig::new(1, vec![]);
        config.apply_batch_max = 0;
        let RaftConfigError::Invalid { field, .. } = config.validate().unwrap_err();
        assert_eq!(field, "apply_batch_max");
    }
}
