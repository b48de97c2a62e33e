//! The batch of effects a node hands to its caller.

use bytes::Bytes;

use crate::message::Message;
use crate::types::{Entry, HardState, IncomingSnapshotChunk, LogIndex, SnapshotMeta, Term};

/// A linearizable read that has been confirmed: serve it once the state machine has
/// applied up to `index`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadState {
    /// The context given to [`RawNode::read_index`](crate::RawNode::read_index).
    pub context: Bytes,
    /// The commit index at the time the read was confirmed.
    pub index: LogIndex,
}

/// What the caller tells the node after persisting a [`Ready`]: obtained from
/// [`Ready::persist_ack`] and passed to [`RawNode::on_persisted`](crate::RawNode::on_persisted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct PersistAck {
    /// The index and term of the last entry written, if the Ready had entries.
    pub last_entry: Option<(LogIndex, Term)>,
    /// The hard state written, if the Ready had one.
    pub hard_state: Option<HardState>,
}

/// Everything the node needs the caller to do, in the order given by the crate docs.
#[derive(Debug, Default)]
#[must_use]
pub struct Ready {
    /// Messages that may be sent right away, before anything is persisted.
    pub messages: Vec<Message>,
    /// Entries to write to the log. They replace every stored entry at or after
    /// `entries[0].index`.
    pub entries: Vec<Entry>,
    /// The hard state to write, when it changed.
    pub hard_state: Option<HardState>,
    /// Messages that may be sent only once `entries` and `hard_state` of this Ready (and
    /// of every earlier one) are durable: vote grants and append acknowledgements.
    pub persisted_messages: Vec<Message>,
    /// Committed entries to apply to the state machine, in order.
    pub committed_entries: Vec<Entry>,
    /// Reads confirmed since the previous Ready.
    pub read_states: Vec<ReadState>,
    /// Snapshot bytes received from the leader, to stage in order (see the crate docs).
    pub snapshot_chunks: Vec<IncomingSnapshotChunk>,
    /// A completely received snapshot to install: once this Ready's writes (and every
    /// earlier one's) are durable, restore the state machine from the staged bytes,
    /// replace the log storage with the snapshot, and call
    /// [`RawNode::on_snapshot_installed`](crate::RawNode::on_snapshot_installed).
    pub snapshot: Option<SnapshotMeta>,
}

impl Ready {
    /// Whether there is nothing to do.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
            && self.entries.is_empty()
            && self.hard_state.is_none()
            && self.persisted_messages.is_empty()
            && self.committed_entries.is_empty()
            && self.read_states.is_empty()
            && self.snapshot_chunks.is_empty()
            && self.snapshot.is_none()
    }

    /// Whether there is anything to write before `persisted_messages` may go out.
    #[must_use]
    pub fn must_persist(&self) -> bool {
        !self.entries.is_empty() || self.hard_state.is_some() || self.snapshot.is_some()
    }

    /// The acknowledgement to pass to [`RawNode::on_persisted`](crate::RawNode::on_persisted)
    /// once this Ready's writes are durable.
    pub fn persist_ack(&self) -> PersistAck {
        PersistAck {
            last_entry: self.entries.last().map(|e| (e.index, e.term)),
            hard_state: self.hard_state,
        }
    }
}
