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
//! A node never addresses a message to itself, and [`RawNode::step`] refuses messages whose
//! `to` is another node, and answers from nodes that are not members. A crash loses
//! whatever was not reported durable; restart with [`RawNode::new`] (or
//! [`RawNode::with_applied`]) on the same storage.
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
pub use error::{ConfChangeError, InitError, ProposeError, ReadIndexError, StepError};
pub use message::{
    AppendEntries, AppendResponse, DecodeError, Heartbeat, HeartbeatResponse,
    MESSAGE_FORMAT_VERSION, Message, Payload, ReadIndexRequest, ReadIndexResponse, VoteRequest,
    VoteResponse,
};
pub use progress::ProgressState;
pub use raw_node::{PeerStatus, RawNode, Status};
pub use ready::{PersistAck, ReadState, Ready};
pub use storage::{InitialState, MemStorage, Storage, StorageError};
pub use types::{
    ConfState, ENTRY_OVERHEAD_BYTES, Entry, EntryKind, HardState, LogIndex, NodeId, Role,
    SnapshotMeta, Term,
};
