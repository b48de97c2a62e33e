//! Protocol numbers and the values that make up the replicated log.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Identifies a node of a Raft group. Node ids are plain `u64` across the workspace; `0`
/// is reserved and never names a node.
pub type NodeId = u64;

/// A Raft term: a logical clock that orders leaderships. Term 0 exists only before the
/// first election.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Term(pub u64);

impl Term {
    /// The term after this one.
    #[must_use]
    pub fn next(self) -> Term {
        Term(self.0.checked_add(1).expect("term overflow"))
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}", self.0)
    }
}

/// A position in the replicated log. Index 0 is the empty prefix before the first entry.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct LogIndex(pub u64);

impl LogIndex {
    /// The index after this one.
    #[must_use]
    pub fn next(self) -> LogIndex {
        LogIndex(self.0.checked_add(1).expect("log index overflow"))
    }

    /// The index before this one; `LogIndex(0)` stays at 0.
    #[must_use]
    pub fn prev(self) -> LogIndex {
        LogIndex(self.0.saturating_sub(1))
    }
}

impl fmt::Display for LogIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "i{}", self.0)
    }
}

/// What an entry means to the state machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum EntryKind {
    /// A command proposed by a client; `data` is opaque to Raft.
    Normal,
    /// The empty entry a new leader appends at the start of its term so that it can
    /// commit (and serve reads) without waiting for a client proposal. Its data is empty;
    /// the state machine skips it.
    NoOp,
    /// A membership change: `data` is an encoded
    /// [`ConfChangeRecord`](crate::ConfChangeRecord) holding the change and the
    /// configuration it leads to. The configuration takes effect on every node as soon as
    /// the entry is in its log, committed or not; the state machine skips the entry (the
    /// application may persist the configuration it carries once it is committed).
    ConfChange,
}

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The term of the leader that created the entry.
    pub term: Term,
    /// The entry's position in the log.
    pub index: LogIndex,
    /// What the entry means.
    pub kind: EntryKind,
    /// The payload (empty for [`EntryKind::NoOp`]).
    pub data: Bytes,
}

/// Bytes counted for an entry on top of its data, for flow control and limits: an
/// estimate of the encoded header (term, index, kind and the length prefix).
pub const ENTRY_OVERHEAD_BYTES: u64 = 24;

impl Entry {
    /// The size the flow-control limits count for this entry: its data plus
    /// [`ENTRY_OVERHEAD_BYTES`].
    #[must_use]
    pub fn size_bytes(&self) -> u64 {
        self.data.len() as u64 + ENTRY_OVERHEAD_BYTES
    }
}

/// The state a node must persist before it sends any message that depends on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: Term,
    /// The node this node voted for in `term`, if any.
    pub vote: Option<NodeId>,
    /// The highest index known to be committed. Persisting it is an optimisation (it
    /// saves re-learning it from the leader after a restart), not a safety requirement.
    pub commit: LogIndex,
}

/// The membership of the group: who votes, and who only receives the log.
///
/// Outside a membership change `voters_outgoing` is empty and a majority of `voters`
/// decides. In the joint phase of a change (C_old,new, Raft thesis §4.3) `voters` is the
/// new voter set and `voters_outgoing` the old one, and every decision (commit, election,
/// read confirmation, check-quorum) needs a majority of each. Learners get the log but
/// never vote and are never counted. The lists are kept sorted and free of duplicates,
/// and a learner is never also a voter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConfState {
    /// The voting members (the incoming set during a joint phase), including this node
    /// when it is a voter.
    pub voters: Vec<NodeId>,
    /// Members that receive the log without voting.
    pub learners: Vec<NodeId>,
    /// The old voter set while a joint phase lasts; empty otherwise.
    pub voters_outgoing: Vec<NodeId>,
}

impl ConfState {
    /// A configuration of `voters` alone, sorted and deduplicated.
    #[must_use]
    pub fn with_voters(voters: &[NodeId]) -> ConfState {
        let mut voters = voters.to_vec();
        voters.sort_unstable();
        voters.dedup();
        ConfState {
            voters,
            ..ConfState::default()
        }
    }

    /// Whether this is the joint phase of a change.
    #[must_use]
    pub fn is_joint(&self) -> bool {
        !self.voters_outgoing.is_empty()
    }

    /// Whether `id` votes (in either set during a joint phase).
    #[must_use]
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.voters_outgoing.contains(&id)
    }

    /// Whether `id` is a learner.
    #[must_use]
    pub fn is_learner(&self, id: NodeId) -> bool {
        self.learners.contains(&id)
    }

    /// Whether `id` belongs to the group in any role.
    #[must_use]
    pub fn contains(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.is_learner(id)
    }

    /// Every member (voters of both sets and learners), sorted, each once.
    #[must_use]
    pub fn members(&self) -> Vec<NodeId> {
        let mut all: Vec<NodeId> = self
            .voters
            .iter()
            .chain(&self.voters_outgoing)
            .chain(&self.learners)
            .copied()
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Sorts and deduplicates the lists (configurations built by hand may be unsorted).
    pub fn normalize(&mut self) {
        for list in [
            &mut self.voters,
            &mut self.learners,
            &mut self.voters_outgoing,
        ] {
            list.sort_unstable();
            list.dedup();
        }
    }
}

/// Describes the prefix of the log that has been replaced by a snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// The index of the last entry the snapshot covers (0 when there is no snapshot).
    pub index: LogIndex,
    /// The term of that entry.
    pub term: Term,
    /// The membership as of `index`.
    pub conf_state: ConfState,
}

/// A piece of the stored snapshot's bytes, read by
/// [`Storage::snapshot_chunk`](crate::Storage::snapshot_chunk).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotChunk {
    /// The index of the snapshot the bytes belong to (so a reader notices that a newer
    /// snapshot replaced the one it was streaming).
    pub index: LogIndex,
    /// The term of that snapshot.
    pub term: Term,
    /// The bytes from the requested offset (empty at the end).
    pub data: Bytes,
    /// Whether `data` reaches the end of the snapshot.
    pub last: bool,
}

/// A chunk of a snapshot received from the leader, for the application to stage; see
/// [`Ready::snapshot_chunks`](crate::Ready::snapshot_chunks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingSnapshotChunk {
    /// The snapshot being received.
    pub meta: SnapshotMeta,
    /// Where `data` goes. Offsets arrive in order without gaps; offset 0 starts a new
    /// staging area and discards any earlier partial one.
    pub offset: u64,
    /// The bytes.
    pub data: Bytes,
    /// Whether this chunk completes the snapshot.
    pub last: bool,
}

/// What a node currently is in the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asks for pre-votes without raising its term (§9.6 of the Raft thesis).
    PreCandidate,
    /// Asks for votes in a new term.
    Candidate,
    /// Accepts proposals and replicates the log.
    Leader,
}
