//! The seam between the RESP server and replication: the [`Replicator`] trait, the
//! single-node [`LocalReplicator`], and the clocks both read.
//!
//! The Raft-backed implementation is [`RaftReplicator`](crate::RaftReplicator): the
//! proposer stamps its clock into a [`LogEntry`], and every replica
//! applies the committed entry to its [`KvStateMachine`] with that time, so expiry
//! decisions agree everywhere. After a restart the applied index read back from the
//! store says where replay starts, and replaying older entries is harmless.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aegis_log::format::{ENTRY_HEADER_LEN, FRAME_HEADER_LEN};
use aegis_log::{Log, LogBatch};
use tokio::sync::{mpsc, oneshot};

use crate::command::{CodecError, Command, LogEntry, Output};
use crate::store::{APPLIES_PER_PERSIST, ApplyEntry, KvStateMachine, PersistEvery, StoreError};

/// A node's identifier, as across the workspace.
pub type NodeId = u64;

/// Errors a replicator reports for a proposal or a read fence.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicaError {
    /// This node cannot accept the request because it is not the leader.
    #[error("not the leader{}", leader_hint.map(|id| format!("; the leader is node {id}")).unwrap_or_default())]
    NotLeader {
        /// The leader this node believes in, if any.
        leader_hint: Option<NodeId>,
    },
    /// No quorum could be reached, or the node is shutting down.
    #[error("replication unavailable: {reason}")]
    Unavailable {
        /// Why.
        reason: String,
    },
    /// The request did not complete within its deadline; it may still be applied.
    #[error("request timed out after {waited_ms} ms; it may still take effect")]
    Timeout {
        /// How long the caller waited.
        waited_ms: u64,
    },
    /// The write may or may not take effect: it reached the log, or may have, but its
    /// result is not known here (the leader did not answer a forwarded write; the write
    /// is in the log but this node's store failed to apply it). Read the key to find out.
    #[error("the write may or may not have taken effect: {reason}")]
    OutcomeUnknown {
        /// Why the outcome is not known.
        reason: String,
    },
    /// The local state machine failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The request was refused and did not take effect.
    #[error("refused: {reason}")]
    Refused {
        /// Why.
        reason: String,
    },
    /// This kind of node does not offer the request.
    #[error("{what} needs a replicated node")]
    Unsupported {
        /// What was asked for.
        what: &'static str,
    },
}

/// Which nodes a `CLUSTER MEET` teaches an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MeetScope {
    /// Every member, through the replicated log: each records the address as it applies
    /// the entry. Needs a working majority.
    Everyone,
    /// This node only, at once: for repairing an address while the group has no majority.
    Local,
}

/// A change to the group's membership, made by the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MembershipChange {
    /// Add a node that receives the log but does not vote.
    AddLearner(NodeId),
    /// Make a learner that has caught up a voter.
    Promote(NodeId),
    /// Remove a voter or a learner.
    Remove(NodeId),
    /// Hand the leadership to a voter.
    Transfer(NodeId),
}

/// The group's members, as one node sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members {
    /// The voters (during a joint change, the incoming set).
    pub voters: Vec<NodeId>,
    /// The members that receive the log without voting.
    pub learners: Vec<NodeId>,
    /// The peer address this node knows for each other node.
    pub addresses: Vec<(NodeId, SocketAddr)>,
}

/// A node's role, as reported by INFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// Accepts writes and serves linearizable reads.
    Leader,
    /// Replicates from a leader.
    Follower,
    /// Campaigning for leadership.
    Candidate,
    /// Replicates without voting.
    Learner,
}

impl Role {
    /// The lower-case name used in INFO.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Leader => "leader",
            Self::Follower => "follower",
            Self::Candidate => "candidate",
            Self::Learner => "learner",
        }
    }
}

/// A snapshot of a node's replication state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeStatus {
    /// This node.
    pub node_id: NodeId,
    /// Its current role.
    pub role: Role,
    /// The current term (1 for a single node).
    pub term: u64,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
    /// The highest log index known committed.
    pub commit_index: u64,
    /// The highest log index applied to the local state machine.
    pub applied_index: u64,
    /// The index of the latest snapshot of the state machine this node stores (0 when
    /// it has none).
    pub snapshot_index: u64,
    /// Snapshots this node received from a leader and installed since it started.
    pub snapshots_installed: u64,
}

/// Replicates writes and fences reads for the RESP server.
///
/// Contract: [`propose`](Replicator::propose) resolves with the state machine's output
/// once the command is committed and applied to the local [`KvStateMachine`] the server
/// reads from; [`read_barrier`](Replicator::read_barrier) resolves once the local state
/// machine has applied everything committed before the call, so a read that follows it
/// is linearizable. Implementations stamp each entry's apply time (see
/// [`crate::LogEntry`]) from the proposer's clock, never on the applying replica.
pub trait Replicator: Send + Sync + 'static {
    /// Replicates `command` and returns its output once applied locally.
    ///
    /// # Errors
    /// [`ReplicaError::NotLeader`] if this node cannot accept writes; other variants for
    /// unavailability, timeouts and storage failures.
    fn propose(
        &self,
        command: Command,
    ) -> impl Future<Output = Result<Output, ReplicaError>> + Send;

    /// Replicates `commands` in order, as consecutive proposals, and returns one result
    /// per command, in order. A failed command does not stop later ones from being tried.
    ///
    /// The server sends a connection's consecutive pipelined writes through this, so an
    /// implementation that appends them to its log together turns pipelining into
    /// batching. The default proposes them one after another.
    fn propose_batch(
        &self,
        commands: Vec<Command>,
    ) -> impl Future<Output = Vec<Result<Output, ReplicaError>>> + Send {
        async move {
            let mut results = Vec::with_capacity(commands.len());
            for command in commands {
                results.push(self.propose(command).await);
            }
            results
        }
    }

    /// Waits until a local read reflects every write committed before this call.
    ///
    /// # Errors
    /// As for [`propose`](Replicator::propose).
    fn read_barrier(&self) -> impl Future<Output = Result<(), ReplicaError>> + Send;

    /// The node's current replication state.
    fn status(&self) -> NodeStatus;

    /// Changes the group's membership on the leader and resolves with the members after
    /// the change took effect. The default refuses: a single node has no group.
    ///
    /// # Errors
    /// [`ReplicaError::NotLeader`] off the leader; [`ReplicaError::Refused`] when the
    /// change does not fit the group (a change in progress, a learner that lags, an
    /// unknown node); others as for [`propose`](Replicator::propose).
    fn change_membership(
        &self,
        change: MembershipChange,
    ) -> impl Future<Output = Result<Members, ReplicaError>> + Send {
        let _ = change;
        async {
            Err(ReplicaError::Unsupported {
                what: "changing the membership",
            })
        }
    }

    /// Records that node `id` listens for peers at `address`, on every member or on this
    /// node only, as `scope` says. With [`MeetScope::Everyone`] it resolves once the
    /// leader has applied the change; each member records the address as it applies it.
    ///
    /// # Errors
    /// [`ReplicaError::Unsupported`] on a single node; [`ReplicaError::Unavailable`] if
    /// the address book cannot be saved; as for [`propose`](Replicator::propose) when the
    /// change goes through the log.
    fn meet(
        &self,
        id: NodeId,
        address: SocketAddr,
        scope: MeetScope,
    ) -> impl Future<Output = Result<(), ReplicaError>> + Send {
        let _ = (id, address, scope);
        async {
            Err(ReplicaError::Unsupported {
                what: "an address book",
            })
        }
    }

    /// The group's members as this node sees them.
    ///
    /// # Errors
    /// [`ReplicaError::Unsupported`] on a single node.
    fn members(&self) -> Result<Members, ReplicaError> {
        Err(ReplicaError::Unsupported {
            what: "a membership",
        })
    }
}

/// A source of wall-clock time in Unix milliseconds.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A clock that moves only when told to (for deterministic tests).
#[derive(Debug, Default)]
pub struct ManualClock {
    now_ms: AtomicU64,
}

impl ManualClock {
    /// A clock reading `now_ms`.
    #[must_use]
    pub fn new(now_ms: u64) -> Self {
        Self {
            now_ms: AtomicU64::new(now_ms),
        }
    }

    /// Moves the clock forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.now_ms.fetch_add(ms, Ordering::AcqRel);
    }

    /// Sets the clock.
    pub fn set(&self, now_ms: u64) {
        self.now_ms.store(now_ms, Ordering::Release);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::Acquire)
    }
}

/// Bounds of a [`LocalReplicator`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalConfig {
    /// Proposals waiting to be applied; further proposers wait for room.
    pub proposal_queue_max: usize,
    /// The most proposals applied in one write transaction (one fsync).
    pub apply_batch_max: usize,
    /// With a journal: entries applied between two durable writes of the store, after
    /// each of which the journal drops what the store now holds. Bounds both the
    /// journal and what a restart replays.
    pub persist_every_applies: u64,
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self {
            proposal_queue_max: 4096,
            apply_batch_max: 256,
            persist_every_applies: APPLIES_PER_PERSIST,
        }
    }
}

/// The journal's group in its log: a single node keeps one.
const JOURNAL_GROUP: u64 = 1;

/// The term of every journal entry: a single node leads term 1 for ever.
const JOURNAL_TERM: u64 = 1;

/// The most entry bytes read from the journal at a time while replaying it.
const REPLAY_BYTES_MAX: u64 = 4 << 20;

/// Why a [`LocalReplicator`] could not start from its journal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The journal could not be read or written.
    #[error("journal: {0}")]
    Log(#[from] aegis_log::Error),
    /// An entry in the journal does not decode.
    #[error("journal entry {index} does not decode: {source}")]
    Entry {
        /// The entry's index.
        index: u64,
        /// What was wrong with its bytes.
        source: CodecError,
    },
    /// Replaying the journal into the store failed.
    #[error("replaying the journal: {0}")]
    Store(#[from] StoreError),
    /// The journal no longer holds entries the store has not applied.
    #[error(
        "the journal starts after entry {}, but the store has applied only up to entry {applied}: \
         the writes in between are lost",
        first - 1
    )]
    Gap {
        /// The first index the journal can still provide.
        first: u64,
        /// The store's applied index.
        applied: u64,
    },
}

struct Proposal {
    command: Command,
    reply: oneshot::Sender<Result<Output, ReplicaError>>,
}

/// A single node without replication: proposals are applied locally, in arrival order.
///
/// Used by tests and by `aegis-node --single-node` (with a journal). It is always the
/// leader of term 1. A dedicated thread drains the proposal queue and takes whatever
/// has accumulated (up to `apply_batch_max`) as one batch: appended to the journal with
/// one fsync ([`LocalReplicator::with_journal`]) and then applied, or, without a
/// journal, applied in one write transaction, synced if the store syncs its writes.
/// Either way concurrent clients share an fsync. A proposal whose caller goes away
/// still completes once queued, and indexes stay dense. The thread ends when the
/// replicator is dropped.
#[derive(Debug)]
pub struct LocalReplicator {
    node_id: NodeId,
    store: Arc<KvStateMachine>,
    queue: mpsc::Sender<Proposal>,
}

impl LocalReplicator {
    /// A replicator applying to `store`, stamping entries with `clock`, default bounds.
    #[must_use]
    pub fn new(node_id: NodeId, store: Arc<KvStateMachine>, clock: Arc<dyn Clock>) -> Self {
        Self::with_config(node_id, store, clock, LocalConfig::default())
    }

    /// As [`new`](Self::new), with explicit bounds.
    ///
    /// # Panics
    /// If a bound in `config` is zero, or the applier thread cannot be started.
    #[must_use]
    pub fn with_config(
        node_id: NodeId,
        store: Arc<KvStateMachine>,
        clock: Arc<dyn Clock>,
        config: LocalConfig,
    ) -> Self {
        Self::with_thread_start(node_id, store, clock, config, || {})
    }

    /// As [`with_config`](Self::with_config), running `on_start` first on the applier
    /// thread: the place to set its scheduling policy, priority or CPU affinity.
    ///
    /// # Panics
    /// If a bound in `config` is zero, or the applier thread cannot be started.
    #[must_use]
    pub fn with_thread_start(
        node_id: NodeId,
        store: Arc<KvStateMachine>,
        clock: Arc<dyn Clock>,
        config: LocalConfig,
        on_start: impl FnOnce() + Send + 'static,
    ) -> Self {
        Self::start(node_id, store, clock, config, None, on_start)
    }

    /// A replicator that makes each batch of writes durable in `journal`, a write-ahead
    /// log, before applying it, so that `store` need not sync its applies: one append
    /// and one fsync per batch instead of a synced database transaction. First replays
    /// what the journal holds beyond the store's applied index, and makes the store
    /// durable if it replayed anything. Every
    /// [`LocalConfig::persist_every_applies`] entries the store is made durable on a
    /// thread of its own, and the journal then drops the entries the store holds. A
    /// journal left empty (a store that synced its own applies before) starts after the
    /// store's applied index. `on_start` runs first on the applier thread.
    ///
    /// A write whose journal append fails is answered with an error; if the append
    /// reached the disk regardless, a restart replays it.
    ///
    /// # Errors
    /// [`JournalError`] if the journal cannot be read, holds an entry that does not
    /// decode, misses entries the store has not applied, or the replay fails.
    ///
    /// # Panics
    /// If a bound in `config` is zero, or the applier thread cannot be started.
    pub fn with_journal(
        node_id: NodeId,
        store: Arc<KvStateMachine>,
        clock: Arc<dyn Clock>,
        config: LocalConfig,
        journal: Arc<Log>,
        on_start: impl FnOnce() + Send + 'static,
    ) -> Result<Self, JournalError> {
        assert!(
            config.persist_every_applies > 0,
            "persist_every_applies must be positive"
        );
        let persist = PersistEvery::new(config.persist_every_applies);
        let journal = Journal::open(journal, &store, persist)?;
        Ok(Self::start(
            node_id,
            store,
            clock,
            config,
            Some(journal),
            on_start,
        ))
    }

    fn start(
        node_id: NodeId,
        store: Arc<KvStateMachine>,
        clock: Arc<dyn Clock>,
        config: LocalConfig,
        journal: Option<Journal>,
        on_start: impl FnOnce() + Send + 'static,
    ) -> Self {
        assert!(
            config.proposal_queue_max > 0,
            "proposal_queue_max must be positive"
        );
        assert!(
            config.apply_batch_max > 0,
            "apply_batch_max must be positive"
        );
        let (queue, proposals) = mpsc::channel(config.proposal_queue_max);
        let applier_store = Arc::clone(&store);
        std::thread::Builder::new()
            .name(format!("aegis-apply-{node_id}"))
            .spawn(move || {
                on_start();
                apply_loop(
                    proposals,
                    &applier_store,
                    clock.as_ref(),
                    config.apply_batch_max,
                    journal,
                );
            })
            .expect("the applier thread starts");
        Self {
            node_id,
            store,
            queue,
        }
    }
}

/// A single node's write-ahead log: every batch is appended and synced here before it
/// is applied, and dropped once the store has made it durable itself.
struct Journal {
    log: Arc<Log>,
    /// Entries below this index are dropped, or about to be with the next append.
    floor: u64,
    /// When the store is made durable, so that the journal can drop what it holds.
    persist: PersistEvery,
}

impl Journal {
    /// Replays into `store` what `log` holds beyond its applied index, and lines the
    /// journal up so that its next entry is the store's next index.
    fn open(
        log: Arc<Log>,
        store: &KvStateMachine,
        persist: PersistEvery,
    ) -> Result<Self, JournalError> {
        let applied = store.applied_index();
        let next = applied + 1;
        match log.last_index(JOURNAL_GROUP) {
            Some(last) if last >= next => {
                let first = log
                    .first_index(JOURNAL_GROUP)
                    .expect("a group with entries has a first");
                if first > next {
                    return Err(JournalError::Gap { first, applied });
                }
                replay(&log, store, next..last + 1)?;
                // Made durable, the replayed entries leave the journal with the first
                // append, so that a node that keeps crashing early does not let its
                // journal grow.
                store.persist()?;
            }
            // Nothing beyond the store: start the journal right after it.
            Some(_) => log.compact(JOURNAL_GROUP, next)?,
            None => {
                let first = log.compacted_to(JOURNAL_GROUP).max(1);
                if first > next {
                    return Err(JournalError::Gap { first, applied });
                }
            }
        }
        Ok(Self {
            floor: log.first_index(JOURNAL_GROUP).unwrap_or(next),
            log,
            persist,
        })
    }

    /// Appends `proposals` as entries `base + 1 ..`, stamped `now_ms`, and returns once
    /// they are durable; drops, in the same write, the entries the store made durable.
    /// A proposal too large for one journal record is answered with a refusal and taken
    /// out first. A batch larger than one journal write allows goes in several.
    fn append(
        &mut self,
        store: &KvStateMachine,
        base: u64,
        now_ms: u64,
        proposals: &mut Vec<Proposal>,
    ) -> Result<(), aegis_log::Error> {
        let config = self.log.config();
        let data_max = (config.record_bytes_max as usize).saturating_sub(ENTRY_HEADER_LEN);
        let mut encoded = Vec::with_capacity(proposals.len());
        let mut kept = Vec::with_capacity(proposals.len());
        for proposal in proposals.drain(..) {
            let data = LogEntry::encode_parts(now_ms, &proposal.command);
            if data.len() > data_max {
                let _ = proposal.reply.send(Err(ReplicaError::Refused {
                    reason: format!(
                        "the write takes {} bytes, more than the journal's record limit of {data_max}",
                        data.len()
                    ),
                }));
            } else {
                encoded.push(data);
                kept.push(proposal);
            }
        }
        *proposals = kept;
        let write_max = usize::try_from(config.batch_bytes_max).unwrap_or(usize::MAX);
        let mut batch =
            LogBatch::with_capacity(encoded.len() + 1, encoded.iter().map(Vec::len).sum());
        let durable = store.durable_index();
        if durable >= self.floor {
            batch.compact(JOURNAL_GROUP, durable + 1);
        }
        for (index, data) in (base + 1..).zip(&encoded) {
            let framed = FRAME_HEADER_LEN + ENTRY_HEADER_LEN + data.len();
            if !batch.is_empty() && batch.encoded_len() + framed > write_max {
                self.log.write(std::mem::take(&mut batch))?;
            }
            batch.append(JOURNAL_GROUP, index, JOURNAL_TERM, data);
        }
        self.log.write(batch)?;
        self.floor = self.floor.max(durable + 1);
        Ok(())
    }
}

/// Applies the journal's entries in `range` to `store`, in runs of a few MiB.
fn replay(
    log: &Log,
    store: &KvStateMachine,
    range: std::ops::Range<u64>,
) -> Result<(), JournalError> {
    let mut next = range.start;
    while next < range.end {
        let entries = log.entries(JOURNAL_GROUP, next..range.end, REPLAY_BYTES_MAX)?;
        let decoded = entries
            .iter()
            .map(|entry| {
                LogEntry::decode(&entry.data).map_err(|source| JournalError::Entry {
                    index: entry.index,
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let batch: Vec<ApplyEntry<'_>> = entries
            .iter()
            .zip(&decoded)
            .map(|(entry, decoded)| ApplyEntry {
                index: entry.index,
                command: &decoded.command,
                now_ms: decoded.now_ms,
            })
            .collect();
        store.apply_batch(&batch)?;
        let last = entries
            .last()
            .expect("a held range reads at least one entry")
            .index;
        assert_eq!(store.applied_index(), last, "the journal replays in order");
        next = last + 1;
    }
    Ok(())
}

impl std::fmt::Debug for Proposal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proposal")
            .field("command", &self.command)
            .finish_non_exhaustive()
    }
}

fn apply_loop(
    mut proposals: mpsc::Receiver<Proposal>,
    store: &KvStateMachine,
    clock: &dyn Clock,
    batch_max: usize,
    mut journal: Option<Journal>,
) {
    let mut batch = Vec::with_capacity(batch_max);
    // Set once the store failed an apply that the journal holds: applying on would
    // leave a hole, so every later write fails until a restart replays the journal.
    let mut broken: Option<String> = None;
    while let Some(first) = proposals.blocking_recv() {
        batch.push(first);
        while batch.len() < batch_max {
            match proposals.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        if let Some(reason) = &broken {
            refuse(&mut batch, reason);
            continue;
        }
        let now_ms = clock.now_ms();
        let base = store.applied_index();
        if let Some(journal) = journal.as_mut() {
            if let Err(e) = journal.append(store, base, now_ms, &mut batch) {
                // Part of the batch may be in the journal: only a replay can tell.
                let reason = format!("journal write failed: {e}");
                broken = Some(until_restart(&reason));
                answer_unknown(&mut batch, &until_restart(&reason));
                continue;
            }
            if batch.is_empty() {
                continue;
            }
        }
        let entries: Vec<ApplyEntry<'_>> = batch
            .iter()
            .zip(base + 1..)
            .map(|(proposal, index)| ApplyEntry {
                index,
                command: &proposal.command,
                now_ms,
            })
            .collect();
        match store.apply_batch(&entries) {
            Ok(outputs) => {
                assert_eq!(outputs.len(), batch.len(), "one output per proposal");
                assert_eq!(store.applied_index(), base + batch.len() as u64);
                if let Some(journal) = journal.as_mut() {
                    // Once that write is durable, the next append drops these entries.
                    journal.persist.applied(store, batch.len() as u64);
                }
                for (proposal, output) in batch.drain(..).zip(outputs) {
                    debug_assert!(!matches!(output, Output::AlreadyApplied { .. }));
                    // The proposer may have gone away; the write stands regardless.
                    let _ = proposal.reply.send(Ok(output));
                }
            }
            Err(e) => {
                let reason = format!("state machine write failed: {e}");
                if journal.is_some() {
                    // The journal holds the batch: a restart applies it.
                    broken = Some(until_restart(&reason));
                    answer_unknown(&mut batch, &until_restart(&reason));
                } else {
                    refuse(&mut batch, &reason);
                }
            }
        }
    }
}

/// Why every later write fails, after `reason` left the journal ahead of the store.
fn until_restart(reason: &str) -> String {
    format!("{reason}; restart the node to replay its journal")
}

/// Answers every proposal in `batch` with the error `error` makes, and empties it.
fn answer_all(batch: &mut Vec<Proposal>, error: impl Fn() -> ReplicaError) {
    for proposal in batch.drain(..) {
        let _ = proposal.reply.send(Err(error()));
    }
}

/// Answers every proposal in `batch` as not written, with `reason`.
fn refuse(batch: &mut Vec<Proposal>, reason: &str) {
    answer_all(batch, || ReplicaError::Unavailable {
        reason: reason.to_owned(),
    });
}

/// Answers every proposal in `batch` as written or not, with `reason`.
fn answer_unknown(batch: &mut Vec<Proposal>, reason: &str) {
    answer_all(batch, || ReplicaError::OutcomeUnknown {
        reason: reason.to_owned(),
    });
}

/// The applier went away while the write waited for it: it may have been journaled.
fn applier_gone() -> ReplicaError {
    ReplicaError::OutcomeUnknown {
        reason: "the applier stopped before answering".to_owned(),
    }
}

fn applier_stopped() -> ReplicaError {
    ReplicaError::Unavailable {
        reason: "the applier has stopped".to_owned(),
    }
}

impl Replicator for LocalReplicator {
    async fn propose(&self, command: Command) -> Result<Output, ReplicaError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Proposal { command, reply })
            .await
            .map_err(|_| applier_stopped())?;
        answer.await.map_err(|_| applier_gone())?
    }

    async fn propose_batch(&self, commands: Vec<Command>) -> Vec<Result<Output, ReplicaError>> {
        // Queue every command first (in order: one sender, awaited in turn), then wait
        // for the answers, so the applier can put them in one transaction.
        let mut answers = Vec::with_capacity(commands.len());
        for command in commands {
            let (reply, answer) = oneshot::channel();
            let queued = self.queue.send(Proposal { command, reply }).await.is_ok();
            answers.push(queued.then_some(answer));
        }
        let mut results = Vec::with_capacity(answers.len());
        for answer in answers {
            let result = match answer {
                Some(answer) => answer.await.unwrap_or_else(|_| Err(applier_gone())),
                None => Err(applier_stopped()),
            };
            results.push(result);
        }
        results
    }

    async fn read_barrier(&self) -> Result<(), ReplicaError> {
        // Every acknowledged proposal was applied before it was acknowledged.
        Ok(())
    }

    fn status(&self) -> NodeStatus {
        let applied = self.store.applied_index();
        NodeStatus {
            node_id: self.node_id,
            role: Role::Leader,
            term: 1,
            leader: Some(self.node_id),
            commit_index: applied,
            applied_index: applied,
            snapshot_index: 0,
            snapshots_installed: 0,
        }
    }
}
