//! Errors of the core's API, one enum per area.

use crate::config::ConfigError;
use crate::storage::StorageError;
use crate::types::{LogIndex, NodeId};

/// Why a node could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The storage could not be read.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The storage contents contradict each other.
    #[error("inconsistent storage: commit index {commit} is beyond the last index {last_index}")]
    CommitBeyondLog {
        /// The hard state's commit index.
        commit: LogIndex,
        /// The log's last index.
        last_index: LogIndex,
    },
    /// The applied index given is beyond the commit index.
    #[error("applied index {applied} is beyond the commit index {commit}")]
    AppliedBeyondCommit {
        /// The applied index given.
        applied: LogIndex,
        /// The commit index in storage.
        commit: LogIndex,
    },
}

/// Why a proposal was refused. Nothing was appended.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProposeError {
    /// Only the leader accepts proposals; `leader_hint` is the leader this node knows of.
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader {
        /// The current leader if known.
        leader_hint: Option<NodeId>,
    },
    /// Accepting the proposal would exceed `uncommitted_bytes_max`; retry once earlier
    /// proposals commit.
    #[error("{uncommitted} uncommitted bytes plus {len} would exceed the limit of {max}")]
    TooManyUncommittedBytes {
        /// Bytes currently appended but not committed.
        uncommitted: u64,
        /// The size of the refused entry.
        len: u64,
        /// `uncommitted_bytes_max`.
        max: u64,
    },
    /// The entry alone is larger than `msg_bytes_max`.
    #[error("entry of {len} bytes exceeds msg_bytes_max {max}")]
    EntryTooLarge {
        /// The entry's size.
        len: u64,
        /// `msg_bytes_max`.
        max: u64,
    },
    /// The storage failed while reading the log's tail.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The leader is handing its leadership to `target` and accepts no proposals until
    /// the transfer completes or is abandoned (after an election timeout).
    #[error("leadership transfer to node {target} in progress")]
    TransferInProgress {
        /// The node the leadership is being transferred to.
        target: NodeId,
    },
}

/// Why a read request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadIndexError {
    /// This node knows no leader to confirm the read.
    #[error("not the leader and no leader known (leader hint: {leader_hint:?})")]
    NotLeader {
        /// The current leader if known.
        leader_hint: Option<NodeId>,
    },
    /// `pending_reads_max` reads are already waiting.
    #[error("{max} reads are already pending")]
    TooManyPendingReads {
        /// `pending_reads_max`.
        max: usize,
    },
}

/// Why a message was not processed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// The message is addressed to another node.
    #[error("message for node {to} delivered to node {id}")]
    WrongRecipient {
        /// The message's recipient.
        to: NodeId,
        /// This node.
        id: NodeId,
    },
    /// The sender is not a member of the group.
    #[error("message from unknown node {from}")]
    UnknownSender {
        /// The sender.
        from: NodeId,
    },
    /// The storage failed while the message was processed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why [`RawNode::transfer_leadership`](crate::RawNode::transfer_leadership) refused to
/// start a transfer. Nothing changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// Only the leader can hand its leadership over.
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader {
        /// The current leader if known.
        leader_hint: Option<NodeId>,
    },
    /// The target is this node, which already leads.
    #[error("node {target} is already the leader")]
    TargetIsSelf {
        /// This node.
        target: NodeId,
    },
    /// The target is not a voter of the group, so it cannot be elected.
    #[error("node {target} is not a voter of the group")]
    NotAVoter {
        /// The node asked for.
        target: NodeId,
    },
    /// Another transfer is under way; it completes or is abandoned within an election
    /// timeout.
    #[error("leadership transfer to node {target} already in progress")]
    InProgress {
        /// The node the running transfer hands leadership to.
        target: NodeId,
    },
    /// A membership change is under way (a configuration entry is not committed yet, or
    /// the group is in a joint configuration, which the leader leaves by appending an
    /// entry); transfer once it completes.
    #[error("a membership change is in progress")]
    ConfChangeInProgress,
    /// The storage failed while reading the log's tail.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why a snapshot or compaction request was refused, or a reported install did not fit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// A snapshot or compaction may only cover entries the state machine has applied.
    #[error("index {index} is beyond the applied index {applied}")]
    AboveApplied {
        /// The index asked for.
        index: LogIndex,
        /// The applied index.
        applied: LogIndex,
    },
    /// Compaction may only drop entries covered by the stored snapshot.
    #[error("index {index} is not covered by the stored snapshot (at {snapshot_index})")]
    NotCoveredBySnapshot {
        /// The index asked for.
        index: LogIndex,
        /// The stored snapshot's index.
        snapshot_index: LogIndex,
    },
    /// [`RawNode::on_snapshot_installed`](crate::RawNode::on_snapshot_installed) was
    /// called for a snapshot the node did not hand out for installing.
    #[error("no snapshot at {index} is waiting to be installed (pending: {pending:?})")]
    NotPending {
        /// The index reported installed.
        index: LogIndex,
        /// The snapshot waiting to be installed, if any.
        pending: Option<LogIndex>,
    },
    /// After the reported install, the storage does not start at the snapshot.
    #[error(
        "storage holds snapshot {found} and last index {last_index}, not snapshot {expected} alone"
    )]
    StorageNotReset {
        /// The installed snapshot's index.
        expected: LogIndex,
        /// The index of the snapshot the storage reports.
        found: LogIndex,
        /// The storage's last index.
        last_index: LogIndex,
    },
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why a membership change was refused. Nothing was appended.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfChangeError {
    /// Only the leader accepts changes; `leader_hint` is the leader this node knows of.
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader {
        /// The current leader if known.
        leader_hint: Option<NodeId>,
    },
    /// The leader has not yet committed an entry of its term, so it does not know whether
    /// the configuration entries in its log are committed; retry shortly.
    #[error("the leader has not committed an entry of its term yet")]
    NoCommitInTerm,
    /// A configuration entry is appended but not committed: one change at a time.
    #[error("the change at index {index} is not committed yet")]
    InProgress {
        /// The index of the uncommitted configuration entry.
        index: LogIndex,
    },
    /// The leader is handing its leadership to `target`; retry once the transfer
    /// completes or is abandoned (after an election timeout).
    #[error("leadership transfer to node {target} in progress")]
    TransferInProgress {
        /// The node the leadership is being transferred to.
        target: NodeId,
    },
    /// The group is in a joint configuration; only leaving it is allowed (the leader does
    /// so by itself once the joint configuration commits).
    #[error("a joint configuration is in effect; it must be left first")]
    JointPhase,
    /// Leaving a joint configuration that is not in effect.
    #[error("no joint configuration is in effect")]
    NotJoint,
    /// The change has no operation.
    #[error("the change has no operation")]
    EmptyChange,
    /// Node id 0 is reserved.
    #[error("node id 0 is reserved")]
    InvalidNodeId,
    /// One change names a node twice.
    #[error("node {id} appears twice in one change")]
    DuplicateNode {
        /// The node.
        id: NodeId,
    },
    /// The node to add is already a voter.
    #[error("node {id} is already a voter")]
    AlreadyVoter {
        /// The node.
        id: NodeId,
    },
    /// The learner to add is already a learner.
    #[error("node {id} is already a learner")]
    AlreadyLearner {
        /// The node.
        id: NodeId,
    },
    /// The node to remove is not a member.
    #[error("node {id} is not a member")]
    UnknownNode {
        /// The node.
        id: NodeId,
    },
    /// The node to promote is not a learner.
    #[error("node {id} is not a learner")]
    NotLearner {
        /// The node.
        id: NodeId,
    },
    /// The change would leave no voter.
    #[error("the change leaves no voter")]
    NoVoters,
    /// The learner to promote lags the leader's log by more than
    /// `learner_catchup_entries_max` entries.
    #[error(
        "learner {id} matches up to {match_index}, more than {max} entries behind {last_index}"
    )]
    LearnerBehind {
        /// The learner.
        id: NodeId,
        /// The last index known to match on the learner.
        match_index: LogIndex,
        /// The leader's last index.
        last_index: LogIndex,
        /// `learner_catchup_entries_max`.
        max: u64,
    },
    /// The storage failed while reading the log's tail.
    #[error(transparent)]
    Storage(#[from] StorageError),
}
