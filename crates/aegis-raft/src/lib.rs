//! A sans-IO Raft core.
//!
//! [`RawNode`] is the Raft state machine of one node. It never reads a clock, never does
//! I/O and starts no threads: time arrives as [`RawNode::tick`], messages as
//! [`RawNode::step`], and everything the node wants done leaves as a [`Ready`] value that
//! the caller executes. Given the same seed and the same inputs, a node produces the same
//! outputs, which is what makes deterministic whole-cluster simulation possible.
//!
//! Pre-vote and check-quorum are on by default; replication is pipelined within an
//! in-flight window bounded by messages and bytes; the leader replicates before its own
//! log write completes and counts itself only once the caller reports it durable
//! (Raft thesis §10.2.1); reads are linearizable by ReadIndex (batched heartbeat
//! confirmation), by an opt-in lease, or by a follower forwarding to the leader.
//!
//! # Driving loop
//!
//! 1. Call [`RawNode::tick`] at a fixed rate (all timeouts in [`Config`] count ticks);
//!    [`RawNode::step`] for every message received whose `to` is this node;
//!    [`RawNode::propose`] and [`RawNode::read_index`] for client requests.
//! 2. When [`RawNode::has_ready`] is true, take [`RawNode::ready`] and act on it:
//!    1. send `messages` now, in any order (the network may drop, delay or reorder them);
//!    2. write `entries` to the log (they replace every stored entry at or after the
//!       first one's index) and `hard_state` if present. The write may complete
//!       asynchronously, and later Readies may be taken and their `messages` sent before
//!       it does, but writes must become durable in Ready order;
//!    3. once this Ready's writes (and all earlier ones) are durable, send
//!       `persisted_messages` and call [`RawNode::on_persisted`] with
//!       [`Ready::persist_ack`], in Ready order. Do this for every Ready, even one that
//!       only wrote a hard state (a candidate counts its own vote only then) or wrote
//!       nothing (it is durable at once). The leader counts itself toward a commit quorum
//!       only from this call;
//!    4. apply `committed_entries` in order (skip [`EntryKind::NoOp`] and
//!       [`EntryKind::ConfChange`]; the latter's [`ConfChangeRecord`] is the committed
//!       membership, to keep with the state machine's snapshots), then call
//!       [`RawNode::on_applied`] with the last index applied. Committed entries are always
//!       entries already reported durable on this node;
//!    5. answer each [`ReadState`] once the applied index reaches its `index`.
//!
//! # Snapshots and compaction
//!
//! The application decides when to snapshot, typically every so many applied entries:
//! it serialises its state machine as of its applied index `i`, takes the metadata from
//! [`RawNode::prepare_snapshot`]`(i)`, stores both (for example
//! [`MemStorage::create_snapshot`]) and calls [`RawNode::compact`]`(i)`, which drops the
//! log up to `i` minus [`Config::compaction_tail_entries`] and refuses indexes beyond
//! the applied one. When a follower needs entries the leader compacted, the leader
//! streams the stored snapshot, read by [`Storage::snapshot_chunk`], in chunks of at most
//! [`Config::snapshot_chunk_bytes_max`] bytes with at most
//! [`Config::snapshot_inflight_chunks_max`] unacknowledged; the total size need not be
//! known in advance. Lost chunks are sent again from the follower's reported offset;
//! heartbeats and elections go on meanwhile, and a leadership change cancels the stream.
//! On a follower, the driving loop gains two steps (before step 2.2):
//!
//! - stage each [`Ready::snapshot_chunks`] entry at its offset; offsets arrive in order,
//!   and offset 0 starts over (drop any partial copy);
//! - when [`Ready::snapshot`] is set, the last chunk has been staged: once this Ready's
//!   writes and every earlier one's are durable, restore the state machine from the
//!   staged bytes, replace the log storage with the snapshot and no entries (for example
//!   [`MemStorage::apply_snapshot`]), then call [`RawNode::on_snapshot_installed`]
//!   before any other call on the node. Until then the node hands out no committed
//!   entries, ignores appends and does not campaign; afterwards its log, commit and
//!   applied indexes start at the snapshot, and no entry it covers is applied again.
//!
//! A follower ignores (and acknowledges) a snapshot at or below its commit index, or one
//! whose last entry its log already holds.
//!
//! # Leadership transfer
//!
//! [`RawNode::transfer_leadership`] hands the leadership to another voter (thesis
//! §3.10): the leader refuses proposals with [`ProposeError::TransferInProgress`], brings
//! the target's log up to date and sends it [`Payload::TimeoutNow`]; the target campaigns
//! at once, without a pre-vote, and voters grant its [`Payload::TransferVote`] even though
//! they still hear from the leader, which makes them ignore ordinary vote requests. A
//! transfer that does not complete within `election_timeout_ticks_min` ticks is abandoned.
//! A leader that sent `TimeoutNow` serves no lease read for the rest of its term (reads
//! fall back to ReadIndex rounds): the transfer vote overrides the promise its lease rests
//! on.
//!
//! # Quiescence
//!
//! With [`Config::quiesce`], an idle group goes quiet: the leader sends a last
//! [`Payload::Quiesce`] heartbeat, and then no node sends anything and [`RawNode::tick`]
//! does nothing until something happens. The caller may stop calling `tick` while
//! [`RawNode::is_quiesced`] is true (check it after each call into the node), which is
//! what lets one process host tens of thousands of groups. A quiet node wakes by itself
//! on any proposal, read, transfer or meaningful message. What it can no longer do is
//! notice that its leader died, because an idle leader sends nothing. **For liveness the
//! caller must run a failure detector** (for example its transport noticing a dead or
//! unreachable peer) and call [`RawNode::report_unreachable`] with the leader's id (or
//! [`RawNode::wake`]) on every quiet follower of a leader it suspects, and keep doing so
//! as long as the suspicion lasts. The follower then ticks again and campaigns after an
//! election timeout unless the leader speaks. A false suspicion costs at most an
//! election; a missed one leaves the group without a leader until the next proposal,
//! read or message reaches it. A node started by [`RawNode::new`] is always awake.
//!
//! A node never addresses a message to itself, and [`RawNode::step`] refuses messages whose
//! `to` is another node, and answers from nodes that are not members. A crash loses
//! whatever was not reported durable; restart with [`RawNode::new`] (or
//! [`RawNode::with_applied`]) on the same storage, after restoring the state machine from
//! the storage's latest snapshot ([`Storage::snapshot_meta`]), if any.
//!
//! # Membership changes
//!
//! [`RawNode::propose_conf_change`] changes the membership by joint consensus (Raft thesis
//! §4.3): a change of more than one voter first enters C_old,new, in which commits,
//! elections, read confirmations and check-quorum need a majority of both the old and the
//! new voters, and the leader appends C_new by itself once C_old,new commits. A change of
//! at most one voter takes effect directly. [`RawNode::add_learner`],
//! [`RawNode::promote_learner`] (refused while the learner lags by more than
//! [`Config::learner_catchup_entries_max`]), [`RawNode::add_voter`] and
//! [`RawNode::remove_node`] are single-server conveniences. Learners receive the log but
//! never vote or campaign. A configuration takes effect on a node as soon as its entry is
//! in the node's log, and is rolled back if that entry is truncated; only one change may
//! be uncommitted at a time, and a new leader accepts none before it commits an entry of
//! its term. A leader that removes itself keeps leading, without counting itself, until
//! the change commits, then steps down; a removed node stops campaigning once it knows its
//! removal committed. [`RawNode::conf_state`] is the configuration in effect.
//!
//! A node joining a running group starts from storage with an empty [`ConfState`] (see
//! [`MemStorage::with_conf_state`]): it never campaigns, and learns its configuration
//! from the leader's log once it is added. On restart the configuration is rebuilt from
//! the storage's [`ConfState`] (as of the snapshot) and every `ConfChange` entry in the
//! log, which is read once.
//!
//! # Example
//!
//! A single-node group elects itself and commits a proposal:
//!
//! ```
//! use aegis_raft::{Config, MemStorage, RawNode, Role};
//!
//! let mut node = RawNode::new(Config::new(1), MemStorage::new(&[1]), 42).unwrap();
//! let mut applied = Vec::new();
//! let mut drive = |node: &mut RawNode<MemStorage>| {
//!     while node.has_ready() {
//!         let ready = node.ready().unwrap();
//!         node.storage_mut().append(&ready.entries);
//!         if let Some(hs) = ready.hard_state {
//!             node.storage_mut().set_hard_state(hs);
//!         }
//!         node.on_persisted(ready.persist_ack()).unwrap();
//!         for entry in &ready.committed_entries {
//!             applied.push(entry.data.clone());
//!             node.on_applied(entry.index);
//!         }
//!     }
//! };
//! while node.role() != Role::Leader {
//!     node.tick().unwrap();
//!     drive(&mut node);
//! }
//! let index = node.propose("x=1".into()).unwrap();
//! drive(&mut node);
//! assert_eq!(node.commit_index(), index);
//! assert_eq!(applied.last().unwrap(), "x=1");
//! ```

mod conf_change;
mod config;
mod error;
mod log;
mod message;
mod progress;
mod quorum;
mod raw_node;
mod ready;
mod rng;
mod storage;
mod types;

pub use conf_change::{CONF_CHANGE_FORMAT_VERSION, ConfChange, ConfChangeOp, ConfChangeRecord};
pub use config::{Config, ConfigError, ReadOnlyOption};
pub use error::{
    ConfChangeError, InitError, ProposeError, ReadIndexError, SnapshotError, StepError,
    TransferError,
};
pub use message::{
    AppendEntries, AppendResponse, DecodeError, Heartbeat, HeartbeatResponse,
    MESSAGE_FORMAT_VERSION, Message, Payload, ReadIndexRequest, ReadIndexResponse,
    SnapshotChunkMessage, SnapshotResponse, VoteRequest, VoteResponse,
};
pub use progress::ProgressState;
pub use raw_node::{PeerStatus, RawNode, Status};
pub use ready::{PersistAck, ReadState, Ready};
pub use storage::{InitialState, MemStorage, Storage, StorageError};
pub use types::{
    ConfState, ENTRY_OVERHEAD_BYTES, Entry, EntryKind, HardState, IncomingSnapshotChunk, LogIndex,
    NodeId, Role, SnapshotChunk, SnapshotMeta, Term,
};
