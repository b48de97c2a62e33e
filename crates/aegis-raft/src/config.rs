//! Configuration of a Raft node, with every limit named and checked.

use crate::types::NodeId;

/// How the leader confirms that it is still the leader before serving a read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadOnlyOption {
    /// A quorum acknowledges a heartbeat round sent after the read arrived (thesis §6.4).
    /// Safe whatever the clocks do. Many reads share one round.
    #[default]
    ReadIndex,
    /// The leader serves a read without a round trip while it holds a lease: a quorum
    /// acknowledged a heartbeat sent less than `election_timeout_ticks_min -
    /// lease_drift_ticks` ticks ago. With check-quorum, those followers refuse to vote for
    /// anyone else until `election_timeout_ticks_min` of *their* ticks have passed since
    /// they heard that heartbeat, so no other leader can exist yet. This assumes the
    /// nodes' tick rates differ by less than `lease_drift_ticks` over one election
    /// timeout: a node whose clock runs fast or pauses (a long GC, a stopped VM) can break
    /// linearizability. A node restarted from a non-empty state refuses votes for its first
    /// `election_timeout_ticks_min` ticks, since it may have acknowledged a heartbeat just
    /// before it went down. When the lease has lapsed the read falls back to a ReadIndex
    /// round.
    LeaseBased,
}

/// The configuration of one node. All durations are in ticks of the caller's clock.
#[derive(Clone, Debug)]
pub struct Config {
    /// This node's id (non-zero).
    pub id: NodeId,
    /// A follower starts an election after hearing nothing from a leader for a random
    /// number of ticks in `[election_timeout_ticks_min, election_timeout_ticks_max)`.
    pub election_timeout_ticks_min: u64,
    /// See `election_timeout_ticks_min`.
    pub election_timeout_ticks_max: u64,
    /// The leader sends heartbeats every this many ticks.
    pub heartbeat_interval_ticks: u64,
    /// Append messages in flight to one follower in replicate state.
    pub inflight_msgs_max: usize,
    /// Entry bytes in flight to one follower in replicate state (counted with
    /// [`Entry::size_bytes`](crate::Entry::size_bytes)).
    pub inflight_bytes_max: u64,
    /// Entries in one append message.
    pub entries_per_msg_max: usize,
    /// Entry bytes in one append message; a single larger entry is refused at proposal.
    pub msg_bytes_max: u64,
    /// Entry bytes the leader accepts beyond its commit index before `propose` refuses
    /// with [`ProposeError::TooManyUncommittedBytes`](crate::ProposeError::TooManyUncommittedBytes).
    pub uncommitted_bytes_max: u64,
    /// Entry bytes handed out in one [`Ready`](crate::Ready) for the state machine.
    pub apply_bytes_max: u64,
    /// Entry bytes handed out for applying and not yet reported applied (by
    /// [`RawNode::on_applied`](crate::RawNode::on_applied)): once this many wait, Readies
    /// carry no more committed entries until the state machine catches up, so a slow state
    /// machine holds at most this plus one Ready's worth in memory.
    pub apply_inflight_bytes_max: u64,
    /// Reads (local and forwarded) waiting at the leader for confirmation or for its first
    /// commit in the term.
    pub pending_reads_max: usize,
    /// Run a pre-vote round before raising the term (thesis §9.6).
    pub pre_vote: bool,
    /// A leader steps down when it has not heard from a quorum within
    /// `election_timeout_ticks_min` (thesis §6.2).
    ///
    /// Whatever this says, a node that heard from its leader within that time ignores
    /// vote requests in newer terms (thesis §4.2.3): that is what keeps a removed node
    /// that missed its removal from deposing leader after leader. So with this off, a
    /// leader cut off from its quorum but still heard by some followers keeps them from
    /// electing another leader until the partition heals. Keep it on unless every
    /// partition is symmetric.
    pub check_quorum: bool,
    /// How reads are confirmed.
    pub read_only_option: ReadOnlyOption,
    /// The clock-drift margin subtracted from a lease (see [`ReadOnlyOption::LeaseBased`]).
    pub lease_drift_ticks: u64,
    /// Let an idle group go quiet: once every follower has the whole log and nothing is
    /// pending, the leader sends a last [`Payload::Quiesce`](crate::Payload::Quiesce) and
    /// every node stops ticking and heartbeating until a message, a proposal, a read or
    /// [`RawNode::wake`](crate::RawNode::wake) wakes it. Off by default: a quiet follower no
    /// longer notices a dead leader by itself, so the caller must run a failure detector
    /// and wake the followers of a leader it suspects (see the crate documentation). Every
    /// node of a group must use the same setting.
    pub quiesce: bool,
    /// With `quiesce`, the leader goes quiet after this many consecutive idle ticks (at
    /// least `heartbeat_interval_ticks`; 20 by default).
    pub quiesce_after_idle_ticks: u64,
    /// Bytes of snapshot data in one [`Payload::Snapshot`](crate::Payload::Snapshot) chunk.
    pub snapshot_chunk_bytes_max: usize,
    /// Snapshot chunks in flight (sent and not acknowledged) to one follower.
    pub snapshot_inflight_chunks_max: usize,
    /// Entries [`RawNode::compact`](crate::RawNode::compact) keeps behind the applied
    /// index, so that a follower slightly behind catches up by entries, not by snapshot.
    pub compaction_tail_entries: u64,
    /// [`RawNode::promote_learner`](crate::RawNode::promote_learner) refuses a learner
    /// whose log lags the leader's by more than this many entries: promoting it early
    /// would leave the group waiting for it to catch up before it can commit.
    pub learner_catchup_entries_max: u64,
}

impl Config {
    /// A configuration with the defaults: election timeout 10 to 20 ticks, heartbeat every
    /// 2 ticks, pre-vote and check-quorum on, ReadIndex reads, quiescence off.
    #[must_use]
    pub fn new(id: NodeId) -> Config {
        Config {
            id,
            election_timeout_ticks_min: 10,
            election_timeout_ticks_max: 20,
            heartbeat_interval_ticks: 2,
            inflight_msgs_max: 256,
            inflight_bytes_max: 16 << 20,
            entries_per_msg_max: 1024,
            msg_bytes_max: 1 << 20,
            uncommitted_bytes_max: 64 << 20,
            apply_bytes_max: 4 << 20,
            apply_inflight_bytes_max: 64 << 20,
            pending_reads_max: 4096,
            pre_vote: true,
            check_quorum: true,
            read_only_option: ReadOnlyOption::ReadIndex,
            lease_drift_ticks: 2,
            quiesce: false,
            quiesce_after_idle_ticks: 20,
            snapshot_chunk_bytes_max: 1 << 20,
            snapshot_inflight_chunks_max: 8,
            compaction_tail_entries: 1024,
            learner_catchup_entries_max: 1000,
        }
    }

    /// Checks that the values make sense together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid =
            |field: &'static str, reason: &'static str| Err(ConfigError::Invalid { field, reason });
        if self.id == 0 {
            return invalid("id", "node id 0 is reserved");
        }
        if self.heartbeat_interval_ticks == 0 {
            return invalid("heartbeat_interval_ticks", "must be at least 1");
        }
        if self.election_timeout_ticks_min <= self.heartbeat_interval_ticks {
            return invalid(
                "election_timeout_ticks_min",
                "must exceed heartbeat_interval_ticks",
            );
        }
        if self.election_timeout_ticks_max <= self.election_timeout_ticks_min {
            return invalid(
                "election_timeout_ticks_max",
                "must exceed election_timeout_ticks_min",
            );
        }
        if self.inflight_msgs_max == 0 {
            return invalid("inflight_msgs_max", "must be at least 1");
        }
        if self.entries_per_msg_max == 0 {
            return invalid("entries_per_msg_max", "must be at least 1");
        }
        if self.msg_bytes_max < crate::types::ENTRY_OVERHEAD_BYTES {
            return invalid("msg_bytes_max", "must hold at least one empty entry");
        }
        if self.inflight_bytes_max < self.msg_bytes_max {
            return invalid("inflight_bytes_max", "must be at least msg_bytes_max");
        }
        if self.uncommitted_bytes_max < self.msg_bytes_max {
            return invalid("uncommitted_bytes_max", "must be at least msg_bytes_max");
        }
        if self.apply_bytes_max == 0 {
            return invalid("apply_bytes_max", "must be at least 1");
        }
        if self.apply_inflight_bytes_max == 0 {
            return invalid("apply_inflight_bytes_max", "must be at least 1");
        }
        if self.pending_reads_max == 0 {
            return invalid("pending_reads_max", "must be at least 1");
        }
        if self.quiesce_after_idle_ticks < self.heartbeat_interval_ticks {
            return invalid(
                "quiesce_after_idle_ticks",
                "must cover at least one heartbeat interval",
            );
        }
        if self.snapshot_chunk_bytes_max == 0 {
            return invalid("snapshot_chunk_bytes_max", "must be at least 1");
        }
        if self.snapshot_inflight_chunks_max == 0 {
            return invalid("snapshot_inflight_chunks_max", "must be at least 1");
        }
        if self.read_only_option == ReadOnlyOption::LeaseBased {
            if !self.check_quorum {
                return invalid("read_only_option", "lease-based reads need check_quorum");
            }
            if self.lease_drift_ticks >= self.election_timeout_ticks_min {
                return invalid(
                    "lease_drift_ticks",
                    "must be below election_timeout_ticks_min",
                );
            }
        }
        Ok(())
    }
}

/// A configuration that [`Config::validate`] refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A field has a value that cannot work.
    #[error("invalid config field {field}: {reason}")]
    Invalid {
        /// The field's name.
        field: &'static str,
        /// Why it is refused.
        reason: &'static str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_turn_on_pre_vote_and_check_quorum() {
        let config = Config::new(1);
        assert_eq!(config.validate(), Ok(()));
        assert!(config.pre_vote && config.check_quorum);
        assert_eq!(config.read_only_option, ReadOnlyOption::ReadIndex);
    }

    #[test]
    fn nonsense_is_refused_naming_the_field() {
        let refused = |config: Config| match config.validate() {
            Err(ConfigError::Invalid { field, .. }) => field,
            Ok(()) => panic!("accepted {config:?}"),
        };
        let base = Config::new(1);
        assert_eq!(
            refused(Config {
                id: 0,
                ..base.clone()
            }),
            "id"
        );
        assert_eq!(
            refused(Config {
                heartbeat_interval_ticks: 0,
                ..base.clone()
            }),
            "heartbeat_interval_ticks"
        );
        assert_eq!(
            refused(Config {
                election_timeout_ticks_min: 2,
                ..base.clone()
            }),
            "election_timeout_ticks_min"
        );
        assert_eq!(
            refused(Config {
                election_timeout_ticks_max: 10,
                ..base.clone()
            }),
            "election_timeout_ticks_max"
        );
        assert_eq!(
            refused(Config {
                inflight_msgs_max: 0,
                ..base.clone()
            }),
            "inflight_msgs_max"
        );
        assert_eq!(
            refused(Config {
                entries_per_msg_max: 0,
                ..base.clone()
            }),
            "entries_per_msg_max"
        );
        assert_eq!(
            refused(Config {
                msg_bytes_max: 1,
                ..base.clone()
            }),
            "msg_bytes_max"
        );
        assert_eq!(
            refused(Config {
                inflight_bytes_max: 10,
                ..base.clone()
            }),
            "inflight_bytes_max"
        );
        assert_eq!(
            refused(Config {
                uncommitted_bytes_max: 10,
                ..base.clone()
            }),
            "uncommitted_bytes_max"
        );
        assert_eq!(
            refused(Config {
                apply_bytes_max: 0,
                ..base.clone()
            }),
            "apply_bytes_max"
        );
        assert_eq!(
            refused(Config {
                pending_reads_max: 0,
                ..base.clone()
            }),
            "pending_reads_max"
        );
        assert_eq!(
            refused(Config {
                quiesce_after_idle_ticks: 1,
                ..base.clone()
            }),
            "quiesce_after_idle_ticks"
        );
        assert_eq!(
            refused(Config {
                snapshot_chunk_bytes_max: 0,
                ..base.clone()
            }),
            "snapshot_chunk_bytes_max"
        );
        assert_eq!(
            refused(Config {
                snapshot_inflight_chunks_max: 0,
                ..base.clone()
            }),
            "snapshot_inflight_chunks_max"
        );
        let lease = Config {
            read_only_option: ReadOnlyOption::LeaseBased,
            ..base.clone()
        };
        assert_eq!(lease.validate(), Ok(()));
        assert_eq!(
            refused(Config {
                lease_drift_ticks: 10,
                ..lease
            }),
            "lease_drift_ticks"
        );
    }
}
