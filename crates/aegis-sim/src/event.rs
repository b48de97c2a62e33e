//! What the trace records: one value per thing that happened in a run.

use aegis_raft::Role;

use crate::NodeId;
use crate::checker::{RegisterInput, RegisterOutput};
use crate::host::MessageSummary;
use crate::net::SendOutcome;

/// One thing that happened, as recorded in the trace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Event {
    /// A node sent a message.
    Send {
        /// Sender.
        source: NodeId,
        /// Recipient.
        target: NodeId,
        /// Message summary.
        message: MessageSummary,
        /// What the network did with it.
        outcome: SendOutcome,
    },
    /// A message arrived.
    Deliver {
        /// Sender.
        source: NodeId,
        /// Recipient.
        target: NodeId,
        /// Message summary.
        message: MessageSummary,
    },
    /// A node handed entries and/or hard state to its disk.
    Persist {
        /// The node.
        node: NodeId,
        /// Index of the first entry written (0 when none).
        first_index: u64,
        /// Entries written.
        entries: u64,
        /// New hard state `(term, vote, commit)`, if any.
        hard_state: Option<(u64, Option<NodeId>, u64)>,
    },
    /// A disk write completed.
    Durable {
        /// The node.
        node: NodeId,
        /// The durable log's last index afterwards.
        last_index: u64,
    },
    /// A node's role or term changed.
    Role {
        /// The node.
        node: NodeId,
        /// Its role.
        role: Role,
        /// Its term.
        term: u64,
    },
    /// A node's commit index advanced.
    Commit {
        /// The node.
        node: NodeId,
        /// The new commit index.
        index: u64,
    },
    /// A node applied entries.
    Apply {
        /// The node.
        node: NodeId,
        /// First index applied.
        first: u64,
        /// Last index applied.
        last: u64,
    },
    /// A node crashed, losing its writes in flight.
    Crash {
        /// The node.
        node: NodeId,
        /// Disk writes lost.
        lost_writes: usize,
    },
    /// A crashed node restarted from its durable state.
    Restart {
        /// The node.
        node: NodeId,
        /// Its durable log's last index.
        last_index: u64,
    },
    /// The network was split.
    Partition {
        /// The groups.
        groups: Vec<Vec<NodeId>>,
    },
    /// One direction of one link was cut.
    CutOneWay {
        /// Sender side.
        source: NodeId,
        /// Receiver side.
        target: NodeId,
    },
    /// Two nodes were cut apart, both ways, while both still reach the others.
    Bridge {
        /// One side.
        a: NodeId,
        /// The other side.
        b: NodeId,
    },
    /// The stale-leader nemesis began: `leader` and `rival` were cut apart and the
    /// clients paused.
    StaleLeader {
        /// The current leader.
        leader: NodeId,
        /// The follower expected to campaign.
        rival: NodeId,
    },
    /// A node stopped for a while (no ticks, no messages) and will then resume.
    Pause {
        /// The node.
        node: NodeId,
        /// For how long.
        ticks: u64,
    },
    /// Every link was restored.
    Heal,
    /// The network switched between hostile and reliable.
    NetMode {
        /// Whether it is now hostile.
        hostile: bool,
    },
    /// A client invoked an operation.
    Invoke {
        /// Client.
        client: u64,
        /// History id.
        op: usize,
        /// The node asked.
        node: NodeId,
        /// Key.
        key: u64,
        /// Operation.
        input: RegisterInput,
        /// Whether a read goes through ReadIndex (rather than the log).
        read_index: bool,
    },
    /// A client got its answer.
    Respond {
        /// Client.
        client: u64,
        /// History id.
        op: usize,
        /// Answer.
        output: RegisterOutput,
    },
    /// An operation certainly did not happen.
    Refused {
        /// Client.
        client: u64,
        /// History id.
        op: usize,
        /// Why.
        reason: String,
    },
    /// A client stopped waiting: the operation's outcome is unknown.
    GaveUp {
        /// Client.
        client: u64,
        /// History id.
        op: usize,
    },
    /// A ReadIndex request was confirmed.
    ReadReady {
        /// The node.
        node: NodeId,
        /// Index the read waits for.
        index: u64,
    },
    /// The leader was asked to hand its leadership over.
    Transfer {
        /// The leader.
        leader: NodeId,
        /// The voter that should take over.
        target: NodeId,
        /// Whether the transfer started (one may already be in progress).
        started: bool,
    },
    /// A quiet node's failure detector suspected its leader and woke it.
    SuspectLeader {
        /// The node woken.
        node: NodeId,
        /// The leader it suspects (none if it knew none).
        leader: Option<NodeId>,
    },
    /// A node installed a snapshot received from the leader: its log, state machine and
    /// disk restart at `index`.
    SnapshotInstalled {
        /// The node.
        node: NodeId,
        /// The snapshot's last index.
        index: u64,
    },
    /// The leader was asked to change the membership.
    ConfChange {
        /// The leader.
        node: NodeId,
        /// The change, as text.
        change: String,
        /// The index of its entry, or why it was refused.
        outcome: Result<u64, String>,
    },
}
