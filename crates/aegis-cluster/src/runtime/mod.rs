//! An async driver for [`RawNode`](aegis_raft::RawNode): `RaftNode`.
//!
//! The core is sans-IO; this module is the thin layer that gives it a clock, a log, a
//! network and a state machine. Each [`RaftNode`] runs its core on a dedicated thread
//! (named `aegis-raft-<id>`) that ticks at [`RaftConfig::tick_interval`], steps incoming
//! messages, writes each [`Ready`](aegis_raft::Ready) to a [`LogStore`], sends messages through
//! a [`Network`] and has committed entries applied to a [`StateMachine`]. Callers talk to
//! it from async code: [`RaftNode::propose`] resolves with the state machine's output once
//! the entry is applied, and [`RaftNode::read`] resolves once the state machine reflects
//! every write acknowledged before the read began (a linearizable read barrier).
//!
//! Blocking work stays off the async runtime, and off the node's thread too:
//! - Log writes: when the log offers a second handle to write through
//!   ([`LogStore::writer`]), a log writer thread (`aegis-log-<id>`) makes the Readies'
//!   writes durable, combining the writes of every Ready queued meanwhile into one sync,
//!   while the node's thread goes on stepping messages and sending appends. A Ready's
//!   `persisted_messages` (append acknowledgements, votes) leave, and the core learns of
//!   the write, only once it and every earlier write are durable. Logs without a writer
//!   handle are written on the node's thread.
//! - Applying: an applier thread (`aegis-apply-<id>`) applies committed entries, which
//!   the core hands out only once they are durable locally, and answers the proposals and
//!   reads waiting on them.
//!
//! Each of these threads, and the snapshot threads below, first runs
//! [`RaftConfig::on_thread_start`] if set, told which [`NodeThread`] it is: the place to
//! set a role's scheduling policy, priority or CPU affinity.
//!
//! Snapshots: every [`RaftConfig::snapshot_every_entries`] applied entries, once the log
//! has grown by [`RaftConfig::snapshot_log_growth_percent`] of the last snapshot (each
//! threshold stretched by a random share of up to
//! [`RaftConfig::snapshot_stretch_percent`], so the replicas do not all snapshot at
//! once), the applier takes a [`StateMachine::snapshot`], and the node's thread stores it with
//! [`LogStore::save_snapshot`] and compacts the log, keeping
//! [`RaftConfig::compaction_tail_entries`] entries where the log allows. A follower that
//! needs entries the leader compacted receives the snapshot in chunks, and once it is
//! complete and every earlier write is durable the node (1) replaces its log by the
//! snapshot ([`LogStore::install_snapshot`]), (2) has the applier
//! [`restore`](StateMachine::restore) the state machine, (3) tells the core. Both
//! snapshot writes happen on the node's thread while the log writer is stopped, so they
//! stay in order with every other write. A crash between (1) and (2) is repaired at the
//! next start: a state machine behind the log's stored snapshot is restored from it
//! before the node runs. [`Metrics::snapshot_index`] and [`Metrics::snapshots_installed`]
//! show the progress.
//!
//! Membership: [`RaftNode::change_membership`] and its single-server conveniences
//! ([`RaftNode::add_learner`], [`RaftNode::promote_learner`], [`RaftNode::add_voter`],
//! [`RaftNode::remove_node`]) propose a configuration entry on the leader and resolve
//! with the resulting [`ConfState`] once it is applied locally (a joint change: once the
//! entry that leaves the joint phase is). Committed configuration entries, like the
//! leader's no-op entries, advance the applied index without reaching
//! [`StateMachine::apply`]. [`RaftNode::transfer_leadership`] resolves once the target
//! leads. [`Metrics::conf_state`] is the configuration in effect. A node joining a
//! running group starts on a log with an empty [`ConfState`] and learns its configuration
//! from the leader; the [`Network`] must deliver to it (register it with a [`MemRouter`]).
//!
//! Messages of a [`Ready`](aegis_raft::Ready) are sent before its entries are written, so
//! followers receive entries while the leader is still writing them (Raft thesis
//! §10.2.1); the leader counts itself towards a quorum only once its own write is durable.
//!
//! ```
//! use std::time::Duration;
//! use aegis_raft::MemStorage;
//! use aegis_cluster::runtime::{MemRouter, RaftConfig, RaftNode, StateMachine};
//! use aegis_raft::LogIndex;
//!
//! /// Sums the numbers proposed to it.
//! #[derive(Default)]
//! struct Sum(u64, LogIndex);
//!
//! impl StateMachine for Sum {
//!     type Output = u64;
//!     fn apply(&mut self, index: LogIndex, data: &[u8]) -> u64 {
//!         self.0 += u64::from(data[0]);
//!         self.1 = index;
//!         self.0
//!     }
//!     fn applied_index(&self) -> LogIndex {
//!         self.1
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let router = MemRouter::new();
//! let config = RaftConfig::new(1, vec![]);
//! let node = RaftNode::new(config, MemStorage::new(&[1]), router.endpoint(1), Sum::default()).unwrap();
//! router.register(1, node.message_sender());
//! node.start().await.unwrap();
//! node.wait_for_leader(Duration::from_secs(10)).await.unwrap();
//! assert!(node.is_leader());
//! assert_eq!(node.propose(vec![5]).await.unwrap(), 5);
//! assert_eq!(node.propose(vec![2]).await.unwrap(), 7);
//! node.shutdown().await;
//! # });
//! ```

mod apply;
mod config;
mod driver;
mod memory;
mod reads;
mod threads;
mod writer;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{oneshot, watch};

pub use config::{RaftConfig, RaftConfigError};
pub use memory::{MemEndpoint, MemRouter};
pub use threads::{NodeThread, ThreadStart};

use aegis_raft::{
    ConfChange, ConfChangeOp, ConfState, ConfigError, Entry, HardState, InitError, LogIndex,
    MemStorage, Message, NodeId, Role, SnapshotMeta, Storage, StorageError, Term,
};
use driver::{Driver, Input, MembershipRequest};

/// The application's replicated state: committed entries are applied to it in log order.
///
/// `apply` must be deterministic: every replica applies the same entries in the same
/// order and must reach the same state.
pub trait StateMachine: Send + 'static {
    /// What applying an entry returns to the proposer.
    type Output: Send + 'static;
    /// Applies the data of the committed entry at `index`.
    fn apply(&mut self, index: LogIndex, data: &[u8]) -> Self::Output;
    /// Applies a run of committed entries, in order, returning one output each. The
    /// driver hands over everything one batch of log writes committed, so a persistent
    /// state machine can make the whole run durable at once. By default, entry by entry.
    fn apply_batch(&mut self, entries: &[(LogIndex, Bytes)]) -> Vec<Self::Output> {
        entries
            .iter()
            .map(|(index, data)| self.apply(*index, data))
            .collect()
    }
    /// The last index whose effect the state machine holds (0 if none). A persistent
    /// state machine returns what it recovered, so entries are not applied twice.
    fn applied_index(&self) -> LogIndex;

    /// Why the state machine can apply no more entries, once that is so (its storage
    /// failed, say); `None` while it works. Asked after every batch. Once it answers,
    /// that batch's proposals get the outputs it returned, but the batch does not count
    /// as applied: no read waits on it, the applier applies nothing more, and the node
    /// stops with the reason in [`Metrics::failure`], as after a log failure. Requests
    /// still waiting fail with [`RaftError::Abandoned`]. Skipping the entry that failed
    /// and applying the next would leave this replica different from the others; a
    /// restart applies the entries again from the log. By default, never.
    fn failure(&self) -> Option<String> {
        None
    }

    /// A snapshot of the whole state as of [`applied_index`](StateMachine::applied_index),
    /// taken every [`RaftConfig::snapshot_every_entries`] applied entries (once the log
    /// has grown by [`RaftConfig::snapshot_log_growth_percent`] of the last snapshot) so
    /// the log can be compacted. `None` (the default) takes none, and the log then grows
    /// without bound; a failure also returns `None`, and the driver asks again after
    /// another `snapshot_every_entries` entries.
    ///
    /// Limit: the snapshot is one byte string held in memory, on the leader while it is
    /// stored and on a follower while it is received, so the state should fit in memory
    /// a few times over. It is streamed between nodes in bounded chunks all the same.
    fn snapshot(&mut self) -> Option<Bytes> {
        None
    }

    /// Starts a snapshot as of [`applied_index`](StateMachine::applied_index) and returns
    /// the job that produces its bytes. The job runs on a thread of its own while
    /// applying goes on, so the state machine must give it a view of the state that later
    /// applies do not change (a database read transaction, say). Called instead of
    /// [`snapshot`](StateMachine::snapshot), whose snapshot it wraps by default.
    fn begin_snapshot(&mut self) -> Option<SnapshotJob> {
        let data = self.snapshot()?;
        Some(Box::new(move || Some(data)))
    }

    /// Replaces the whole state by `data`, a [`snapshot`](StateMachine::snapshot) taken
    /// (possibly on another node) at `index`. Afterwards `applied_index` must return
    /// `index`. Called on a follower that fell behind the leader's compacted log, and at
    /// start when the log begins after a snapshot newer than the state machine. The
    /// default refuses, which stops the node: a state machine that takes snapshots must
    /// restore them.
    fn restore(&mut self, index: LogIndex, data: &[u8]) -> Result<(), RestoreError> {
        let _ = data;
        Err(RestoreError {
            index,
            reason: "the state machine does not restore snapshots".to_owned(),
        })
    }
}

/// The writing part of saving a snapshot, which a [`LogStore`] hands out from
/// [`snapshot_writer`](LogStore::snapshot_writer): it stores the snapshot's bytes.
pub type SnapshotWriter = Box<dyn FnOnce(&[u8]) -> Result<(), StorageError> + Send>;

/// The copying part of a snapshot, which a [`StateMachine`] hands out from
/// [`begin_snapshot`](StateMachine::begin_snapshot): it returns the snapshot's bytes, or
/// `None` when it failed.
pub type SnapshotJob = Box<dyn FnOnce() -> Option<Bytes> + Send>;

/// Why a [`StateMachine`] could not restore a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot restore the snapshot at index {index}: {reason}")]
pub struct RestoreError {
    /// The snapshot's index.
    pub index: LogIndex,
    /// What went wrong.
    pub reason: String,
}

/// A Raft log the driver can write: [`Storage`] plus the writes of a
/// [`Ready`](aegis_raft::Ready).
pub trait LogStore: Storage + Send + 'static {
    /// Stores `entries`, replacing every stored entry at or after the first one's index.
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError>;
    /// Stores the hard state.
    fn set_hard_state(&mut self, hard_state: HardState) -> Result<(), StorageError>;
    /// Makes everything written so far durable. Returns only once it is.
    fn sync(&mut self) -> Result<(), StorageError>;

    /// A second handle on the same log, for a log writer thread to write through while
    /// this one keeps serving the core's reads; `None` (the default) when the log cannot
    /// be shared so, and the node's thread then writes it itself.
    ///
    /// Contract: once the writer handle's `append` (and `sync`) return, reads through
    /// this handle see the entries; reads may run while a write is in progress and see
    /// either the old or the new entries at each index the write touches; from the moment
    /// the handle is taken, the log and hard state are written only through it.
    fn writer(&self) -> Result<Option<Self>, StorageError>
    where
        Self: Sized,
    {
        Ok(None)
    }

    /// Durably stores `data`, the state machine's snapshot at `meta.index` (an entry of
    /// this log with `meta.term`), as the latest snapshot, which the leader streams to
    /// followers through [`Storage::snapshot_chunk`]. Entries it covers may be dropped
    /// now or by a later [`Storage::compact`]. The default refuses with
    /// [`StorageError::Unsupported`], and the node then keeps its whole log.
    fn save_snapshot(&mut self, meta: SnapshotMeta, data: Bytes) -> Result<(), StorageError> {
        let _ = (meta, data);
        Err(StorageError::Unsupported {
            operation: "save_snapshot",
        })
    }

    /// The slow half of [`save_snapshot`](LogStore::save_snapshot), for a thread of its
    /// own: a job that durably stores the snapshot's bytes where the log will keep them,
    /// without changing what the log records; [`record_snapshot`](LogStore::record_snapshot)
    /// then records the snapshot. The node saves no other snapshot, and installs none,
    /// while the job runs. `None` (the default): the log cannot split the save, and the
    /// node's thread saves whole.
    fn snapshot_writer(&self, meta: &SnapshotMeta) -> Option<SnapshotWriter> {
        let _ = meta;
        None
    }

    /// The fast half of [`save_snapshot`](LogStore::save_snapshot): records the snapshot
    /// at `meta` whose bytes the job from [`snapshot_writer`](LogStore::snapshot_writer)
    /// stored. Only called after such a job succeeded; the default refuses.
    fn record_snapshot(&mut self, meta: SnapshotMeta) -> Result<(), StorageError> {
        let _ = meta;
        Err(StorageError::Unsupported {
            operation: "record_snapshot",
        })
    }

    /// Durably replaces the whole log by a snapshot received from the leader: afterwards
    /// `data` is the latest snapshot, `first_index()` is `meta.index + 1` and no entry
    /// remains. The default refuses with [`StorageError::Unsupported`], which stops a
    /// follower that needs a snapshot.
    fn install_snapshot(&mut self, meta: SnapshotMeta, data: Bytes) -> Result<(), StorageError> {
        let _ = (meta, data);
        Err(StorageError::Unsupported {
            operation: "install_snapshot",
        })
    }
}

impl LogStore for MemStorage {
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        MemStorage::append(self, entries);
        Ok(())
    }

    fn set_hard_state(&mut self, hard_state: HardState) -> Result<(), StorageError> {
        MemStorage::set_hard_state(self, hard_state);
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        Ok(())
    }

    /// Keeps the entries the snapshot covers until [`Storage::compact`] drops them, so
    /// [`RaftConfig::compaction_tail_entries`] is honoured.
    fn save_snapshot(&mut self, meta: SnapshotMeta, data: Bytes) -> Result<(), StorageError> {
        if meta.index <= self.snapshot_meta()?.index {
            return Ok(());
        }
        MemStorage::create_snapshot(self, meta, data);
        Ok(())
    }

    fn install_snapshot(&mut self, meta: SnapshotMeta, data: Bytes) -> Result<(), StorageError> {
        MemStorage::apply_snapshot(self, meta, data);
        Ok(())
    }
}

/// Carries messages between nodes. Delivery is best effort: Raft tolerates loss,
/// duplication and reordering, so `send` never blocks and never reports failure.
pub trait Network: Send + Sync + 'static {
    /// Sends `message` towards `message.to`.
    fn send(&self, message: Message);
}

/// What a node reports about itself, published on a watch channel
/// ([`RaftNode::metrics`]) whenever it changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metrics {
    /// This node.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its current term.
    pub term: Term,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
    /// The commit index.
    pub commit_index: LogIndex,
    /// The last index applied to the state machine.
    pub applied_index: LogIndex,
    /// The last index in the log.
    pub last_log_index: LogIndex,
    /// On a leader, each follower's match index; empty otherwise.
    pub match_index: Vec<(NodeId, LogIndex)>,
    /// The index of the latest snapshot in the log storage (0 if none).
    pub snapshot_index: LogIndex,
    /// Snapshots received from a leader and installed since the node started.
    pub snapshots_installed: u64,
    /// The configuration in effect on this node: that of the last configuration entry in
    /// its log, committed or not (empty on a node that joins and has not heard from the
    /// leader yet).
    pub conf_state: ConfState,
    /// On a leader handing its leadership over, the node it hands it to.
    pub transfer_target: Option<NodeId>,
    /// Set when the node stopped because its log or its state machine failed (see
    /// [`StateMachine::failure`]); the node serves nothing more.
    pub failure: Option<String>,
}

/// Why a [`RaftNode`] request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RaftError {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The node could not start from its storage.
    #[error("cannot start from storage: {0}")]
    Init(String),
    /// [`RaftNode::start`] was called twice.
    #[error("the node was already started")]
    AlreadyStarted,
    /// The node has not been started, or has shut down.
    #[error("the node is not running")]
    NotRunning,
    /// The node stopped (shut down, or its log or state machine failed) while the request
    /// waited for its answer: a proposal may or may not take effect.
    #[error("the node stopped before the request was answered; a proposal may still take effect")]
    Abandoned,
    /// This node is not the leader; `leader_hint` is the leader it knows of.
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader {
        /// The leader, if known.
        leader_hint: Option<NodeId>,
    },
    /// The node's request queue (`inbox_max`) is full; retry later.
    #[error("the node is overloaded: {inbox_max} requests are queued")]
    Busy {
        /// The configured queue length.
        inbox_max: usize,
    },
    /// The core refused the proposal (too large, too many uncommitted bytes); nothing
    /// was appended. The message is the core's [`ProposeError`](aegis_raft::ProposeError).
    #[error("proposal refused: {0}")]
    Proposal(String),
    /// The core refused the read (too many pending reads). The message is the core's
    /// [`ReadIndexError`](aegis_raft::ReadIndexError).
    #[error("read refused: {0}")]
    Read(String),
    /// Leadership changed before the proposal committed and another entry took its
    /// index: the proposal was not applied and will not be.
    #[error("the proposal at index {index} was superseded by a new leader")]
    Superseded {
        /// The index the proposal had been given.
        index: LogIndex,
    },
    /// No answer within `request_timeout`. The proposal may still be applied later.
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    /// The core refused the membership change; nothing was appended. Not the leader is
    /// reported as [`RaftError::NotLeader`] instead.
    #[error("membership change refused: {0}")]
    ConfChange(Refusal<aegis_raft::ConfChangeError>),
    /// The core refused the leadership transfer. Not the leader is reported as
    /// [`RaftError::NotLeader`] instead.
    #[error("leadership transfer refused: {0}")]
    Transfer(Refusal<aegis_raft::TransferError>),
    /// An accepted leadership transfer did not hand the leadership to `target`: the core
    /// abandoned it after an election timeout (this node still leads), or another node
    /// won the election.
    #[error("leadership transfer to node {target} failed (leader now: {leader:?})")]
    TransferFailed {
        /// The node the leadership was to go to.
        target: NodeId,
        /// The leader this node knows of now.
        leader: Option<NodeId>,
    },
}

/// A refusal by the Raft core, shared so that [`RaftError`] stays cheap to clone.
/// [`Refusal::reason`] is the core's typed error; two refusals are equal when they say
/// the same thing.
#[derive(Debug)]
pub struct Refusal<E>(Arc<E>);

impl<E> Refusal<E> {
    pub(crate) fn new(error: E) -> Refusal<E> {
        Refusal(Arc::new(error))
    }

    /// The core's error.
    #[must_use]
    pub fn reason(&self) -> &E {
        &self.0
    }
}

impl<E> Clone for Refusal<E> {
    fn clone(&self) -> Refusal<E> {
        Refusal(Arc::clone(&self.0))
    }
}

impl<E: std::fmt::Display> std::fmt::Display for Refusal<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<E: std::fmt::Display> PartialEq for Refusal<E> {
    fn eq(&self, other: &Refusal<E>) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.to_string() == other.0.to_string()
    }
}

impl<E: std::fmt::Display> Eq for Refusal<E> {}

impl From<ConfigError> for RaftError {
    fn from(e: ConfigError) -> RaftError {
        RaftError::Config(e.to_string())
    }
}

impl From<StorageError> for RaftError {
    fn from(e: StorageError) -> RaftError {
        RaftError::Init(e.to_string())
    }
}

impl From<InitError> for RaftError {
    fn from(e: InitError) -> RaftError {
        RaftError::Init(e.to_string())
    }
}

/// Hands incoming messages to a node; cheap to clone. A full queue drops the message,
/// which Raft tolerates.
#[derive(Clone)]
pub struct MessageSender {
    deliver: Arc<dyn Fn(Message) -> bool + Send + Sync>,
}

impl MessageSender {
    /// Queues `message` for the node; returns `false` if it was dropped (queue full or
    /// node stopped).
    pub fn deliver(&self, message: Message) -> bool {
        (self.deliver)(message)
    }
}

impl std::fmt::Debug for MessageSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MessageSender")
    }
}

/// A Raft node running on its own thread: see the [module documentation](self).
pub struct RaftNode<SM: StateMachine> {
    id: NodeId,
    config: RaftConfig,
    inbox: SyncSender<Input<SM::Output>>,
    metrics: watch::Receiver<Metrics>,
    stop: Arc<AtomicBool>,
    not_started: Mutex<Option<Driver<SM>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    reads: Arc<reads::ReadFences>,
}

impl<SM: StateMachine> RaftNode<SM> {
    /// Creates a node from its configuration, its log, its network and its state
    /// machine. Nothing runs until [`RaftNode::start`].
    pub fn new<S: LogStore, N: Network>(
        config: RaftConfig,
        storage: S,
        network: N,
        state_machine: SM,
    ) -> Result<RaftNode<SM>, RaftError> {
        config
            .validate()
            .map_err(|e| RaftError::Config(e.to_string()))?;
        let core_config = config.core_config()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (driver, handles) = Driver::new(
            &config,
            core_config,
            storage,
            network,
            state_machine,
            Arc::clone(&stop),
        )?;
        Ok(RaftNode {
            id: config.node_id,
            config,
            inbox: handles.inbox,
            metrics: handles.metrics,
            stop,
            not_started: Mutex::new(Some(driver)),
            thread: Mutex::new(None),
            reads: Arc::default(),
        })
    }

    /// Starts the node's thread. It begins as a follower and campaigns after an election
    /// timeout without a leader.
    pub async fn start(&self) -> Result<(), RaftError> {
        let driver = self
            .not_started
            .lock()
            .expect("lock poisoned")
            .take()
            .ok_or(RaftError::AlreadyStarted)?;
        let thread = driver
            .spawner
            .clone()
            .spawn(NodeThread::Raft, move || driver.run())
            .map_err(|e| RaftError::Init(format!("cannot start the node's thread: {e}")))?;
        *self.thread.lock().expect("lock poisoned") = Some(thread);
        Ok(())
    }

    /// This node's id.
    #[must_use]
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Whether this node currently believes it is the leader.
    #[must_use]
    pub fn is_leader(&self) -> bool {
        self.metrics.borrow().role == Role::Leader
    }

    /// A handle for the network layer to deliver incoming messages with.
    #[must_use]
    pub fn message_sender(&self) -> MessageSender {
        let inbox = self.inbox.clone();
        MessageSender {
            deliver: Arc::new(move |message| inbox.try_send(Input::Message(message)).is_ok()),
        }
    }

    /// The node's metrics, updated whenever they change.
    #[must_use]
    pub fn metrics(&self) -> watch::Receiver<Metrics> {
        self.metrics.clone()
    }

    /// Proposes `command`; resolves with the state machine's output once it is committed
    /// and applied on this node. Only a leader accepts proposals.
    pub async fn propose(&self, command: impl Into<Bytes>) -> Result<SM::Output, RaftError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Input::Propose {
            data: command.into(),
            reply,
        })?;
        self.await_answer(answer).await?
    }

    /// Proposes `commands` in order and resolves with one result per command once each
    /// is applied or refused. They are queued together, so they enter the log in this
    /// order and share log writes; among those applied, the order is kept.
    pub async fn propose_batch(&self, commands: Vec<Bytes>) -> Vec<Result<SM::Output, RaftError>> {
        let mut answers = Vec::with_capacity(commands.len());
        for data in commands {
            let (reply, answer) = oneshot::channel();
            answers.push(self.submit(Input::Propose { data, reply }).map(|()| answer));
        }
        let mut results = Vec::with_capacity(answers.len());
        for answer in answers {
            results.push(match answer {
                Ok(answer) => self.await_answer(answer).await.and_then(|result| result),
                Err(e) => Err(e),
            });
        }
        results
    }

    /// A linearizable read barrier: resolves once this node's state machine has applied
    /// every entry committed before the call, confirmed with a quorum (or, with leases
    /// configured, by the leader's lease). Works on followers too, through the leader.
    /// Returns the read index.
    ///
    /// Concurrent callers share fences: while one is out, new callers wait for it to
    /// return and then share the next one.
    pub async fn read(&self) -> Result<LogIndex, RaftError> {
        if self.thread.lock().expect("lock poisoned").is_none() {
            return Err(RaftError::NotRunning);
        }
        let (reply, answer) = oneshot::channel();
        if self.reads.join(reply) {
            tokio::spawn(reads::run_rounds(
                Arc::clone(&self.reads),
                self.inbox.clone(),
                self.config.inbox_max,
                self.config.request_timeout,
            ));
        }
        self.await_answer(answer).await?
    }

    /// Proposes a membership change (see [`RawNode::propose_conf_change`](aegis_raft::RawNode::propose_conf_change))
    /// and resolves with the configuration that results, once the change's entry is
    /// committed and applied on this node; for a change of more than one voter, once the
    /// entry leaving the joint configuration is too. Only a leader accepts changes, one
    /// at a time.
    ///
    /// A node being added must be reachable through the [`Network`] first (for a
    /// [`MemRouter`], registered). Add a new node as a learner, let it catch up, then
    /// promote it: adding a voter directly makes the group wait for it to commit.
    ///
    /// # Errors
    /// [`RaftError::NotLeader`]; [`RaftError::ConfChange`] with the core's reason (a
    /// change in progress, a change that does not fit the configuration, a learner that
    /// lags); [`RaftError::Superseded`] if a new leader replaced the entry;
    /// [`RaftError::TimedOut`] after `request_timeout` (the change may still take effect).
    pub async fn change_membership(&self, change: ConfChange) -> Result<ConfState, RaftError> {
        self.membership(MembershipRequest::Change(change)).await
    }

    /// Adds `id` as a learner: it receives the log but does not vote. See
    /// [`RaftNode::change_membership`].
    pub async fn add_learner(&self, id: NodeId) -> Result<ConfState, RaftError> {
        self.change_membership(ConfChange::Change(vec![ConfChangeOp::AddLearner(id)]))
            .await
    }

    /// Makes the learner `id` a voter; refused with
    /// [`ConfChangeError::LearnerBehind`](aegis_raft::ConfChangeError::LearnerBehind)
    /// while its log lags the leader's too much. See [`RaftNode::change_membership`].
    pub async fn promote_learner(&self, id: NodeId) -> Result<ConfState, RaftError> {
        self.membership(MembershipRequest::Promote(id)).await
    }

    /// Adds `id` as a voter at once. See [`RaftNode::change_membership`].
    pub async fn add_voter(&self, id: NodeId) -> Result<ConfState, RaftError> {
        self.change_membership(ConfChange::Change(vec![ConfChangeOp::AddVoter(id)]))
            .await
    }

    /// Removes the voter or learner `id`. A leader may remove itself: it keeps leading
    /// until the change commits, then steps down and another node is elected. See
    /// [`RaftNode::change_membership`].
    pub async fn remove_node(&self, id: NodeId) -> Result<ConfState, RaftError> {
        self.change_membership(ConfChange::Change(vec![ConfChangeOp::RemoveNode(id)]))
            .await
    }

    async fn membership(&self, request: MembershipRequest) -> Result<ConfState, RaftError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Input::ConfChange { request, reply })?;
        self.await_answer(answer).await?
    }

    /// Hands this leader's leadership to the voter `target` and resolves once `target`
    /// leads and this node knows it.
    ///
    /// # Errors
    /// [`RaftError::NotLeader`]; [`RaftError::Transfer`] when the core refuses (the
    /// target is not a voter, is this node, a transfer or a membership change is in
    /// progress); [`RaftError::TransferFailed`] when the core abandons the transfer
    /// after an election timeout or another node wins; [`RaftError::TimedOut`] after
    /// `request_timeout`.
    pub async fn transfer_leadership(&self, target: NodeId) -> Result<(), RaftError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Input::Transfer { target, reply })?;
        self.await_answer(answer).await?
    }

    /// Resolves once some node is known as leader, or fails with
    /// [`RaftError::TimedOut`] after `timeout`.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<NodeId, RaftError> {
        let mut metrics = self.metrics.clone();
        let wait = metrics.wait_for(|m| m.leader.is_some() || m.failure.is_some());
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(m)) => m.leader.ok_or(RaftError::NotRunning),
            Ok(Err(_)) => Err(RaftError::NotRunning),
            Err(_) => Err(RaftError::TimedOut(timeout)),
        }
    }

    /// Stops the node and waits for its thread to finish. Requests still waiting fail
    /// with [`RaftError::Abandoned`]. The log keeps whatever was written.
    pub async fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
        // Wake the loop if it is waiting for input; a full queue wakes it anyway.
        let _ = self.inbox.try_send(Input::Wake);
        let thread = self.thread.lock().expect("lock poisoned").take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    fn submit(&self, input: Input<SM::Output>) -> Result<(), RaftError> {
        if self.thread.lock().expect("lock poisoned").is_none() {
            return Err(RaftError::NotRunning);
        }
        queue_input(&self.inbox, self.config.inbox_max, input)
    }

    async fn await_answer<T>(&self, answer: oneshot::Receiver<T>) -> Result<T, RaftError> {
        answer_within(self.config.request_timeout, answer).await
    }
}

/// Queues `input` for the node's thread without waiting.
fn queue_input<O>(
    inbox: &SyncSender<Input<O>>,
    inbox_max: usize,
    input: Input<O>,
) -> Result<(), RaftError> {
    inbox.try_send(input).map_err(|e| match e {
        TrySendError::Full(_) => RaftError::Busy { inbox_max },
        TrySendError::Disconnected(_) => RaftError::NotRunning,
    })
}

/// The node thread's answer, if it comes within `timeout`.
async fn answer_within<T>(timeout: Duration, answer: oneshot::Receiver<T>) -> Result<T, RaftError> {
    match tokio::time::timeout(timeout, answer).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(_)) => Err(RaftError::Abandoned),
        Err(_) => Err(RaftError::TimedOut(timeout)),
    }
}

impl<SM: StateMachine> Drop for RaftNode<SM> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.inbox.try_send(Input::Wake);
    }
}
