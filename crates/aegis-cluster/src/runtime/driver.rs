//! The node's thread: ticks the core, feeds it inputs, and carries out its Readies.
//!
//! The node's thread (this module) owns the core: it steps messages, proposes, and sends
//! each Ready's messages at once, before anything is written. It then writes and syncs
//! the Ready's entries and hard state itself; or, with
//! [`RaftConfig::log_writer_thread`](super::RaftConfig::log_writer_thread) and a log that
//! offers a writer handle, hands them to the log writer thread ([`super::writer`]), so a
//! sync in flight never stops it from stepping acknowledgements and sending the next
//! appends. Writing here costs fewer thread hand-offs per write, and inputs that arrive
//! during a sync are handled together after it, which batches the next write. Once a
//! Ready's writes are durable, in Ready order, it sends the Ready's `persisted_messages`
//! and acknowledges the writes to the core. Committed entries, accepted proposals and
//! confirmed reads go to the applier thread ([`super::apply`]), which applies and
//! answers, so a slow apply never holds up the log.
//!
//! Snapshots change the log's start, so they are written only while no other write is in
//! flight: the node's thread lets the log writer (if any) finish and stop, writes the
//! snapshot through its own handle, then starts a writer on a fresh handle. Storing a local
//! snapshot happens after every Ready taken so far is durable; installing one from the
//! leader first stores it and drops the log (so a crash before the state machine is
//! restored restarts from the stored snapshot), then has the applier restore the state
//! machine, and only then tells the core.

#![allow(
    clippy::disallowed_methods,
    reason = "the driver is what gives the core its clock"
)]

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use tokio::sync::{oneshot, watch};

use super::apply::{
    Applier, ApplyJob, ConfReply, Proposal, ReadReply, Reply, SnapshotPolicy, SnapshotSchedule,
};
use super::threads::{NodeThread, Spawner};
use super::writer::{LogWriter, WriteJob};
use super::{
    LogStore, Metrics, Network, RaftConfig, RaftError, Refusal, SnapshotWriter, StateMachine,
};
use aegis_raft::{
    ConfChange, ConfChangeError, Config, Entry, HardState, IncomingSnapshotChunk, LogIndex,
    Message, NodeId, PersistAck, ProposeError, RawNode, ReadIndexError, Ready, Role, SnapshotError,
    SnapshotMeta, Storage, StorageError, Term, TransferError,
};

/// What callers hand to the node's thread.
pub(super) enum Input<O = ()> {
    Message(Message),
    Propose {
        data: Bytes,
        reply: oneshot::Sender<Result<O, RaftError>>,
    },
    Read {
        reply: ReadReply,
    },
    /// A membership change.
    ConfChange {
        request: MembershipRequest,
        reply: ConfReply,
    },
    /// A leadership transfer to `target`.
    Transfer {
        target: NodeId,
        reply: oneshot::Sender<Result<(), RaftError>>,
    },
    /// Nothing to do but look at the stop flag and the log writer's progress.
    Wake,
    /// The applier's snapshot of the state machine at `index`, to store.
    SnapshotTaken {
        index: LogIndex,
        data: Bytes,
    },
    /// The state machine failed (see [`StateMachine::failure`]) and the applier stopped:
    /// the node stops too.
    ApplierFailed {
        reason: String,
    },
}

/// A membership change as asked for.
pub(super) enum MembershipRequest {
    /// Any change, proposed as is.
    Change(ConfChange),
    /// The promotion of a learner, refused while it lags.
    Promote(NodeId),
}

/// The core with its storage erased, so the driver is generic only over the state
/// machine.
trait Core: Send {
    fn raw(&mut self) -> &mut dyn CoreOps;
}

/// The operations of [`RawNode`] the driver uses, object-safe.
trait CoreOps {
    fn tick(&mut self) -> Result<(), StorageError>;
    fn step(&mut self, msg: Message);
    fn propose(&mut self, data: Bytes) -> Result<LogIndex, ProposeError>;
    fn read_index(&mut self, context: Bytes) -> Result<(), ReadIndexError>;
    fn change_membership(
        &mut self,
        request: MembershipRequest,
    ) -> Result<LogIndex, ConfChangeError>;
    fn transfer_leadership(&mut self, target: NodeId) -> Result<(), TransferError>;
    fn transfer_target(&self) -> Option<NodeId>;
    fn role(&self) -> Role;
    fn leader_id(&self) -> Option<NodeId>;
    fn term(&self) -> Term;
    fn has_ready(&self) -> bool;
    fn ready(&mut self) -> Result<Ready, StorageError>;
    fn on_persisted(&mut self, ack: PersistAck) -> Result<(), StorageError>;
    /// Writes a Ready's entries and hard state on this thread and syncs: for logs without
    /// a writer handle.
    fn write(
        &mut self,
        entries: &[Entry],
        hard_state: Option<HardState>,
    ) -> Result<(), StorageError>;
    fn on_applied(&mut self, index: LogIndex);
    fn metrics(&self, applied: LogIndex, installed: u64) -> Metrics;
    fn hard_state(&self) -> HardState;
    fn snapshot_index(&self) -> Result<LogIndex, StorageError>;
    fn prepare_snapshot(&self, index: LogIndex) -> Result<SnapshotMeta, SnapshotError>;
    /// Stores a local snapshot through this thread's handle (after writing the core's
    /// hard state, which that handle may hold an old copy of).
    fn save_snapshot(&mut self, meta: SnapshotMeta, data: Bytes) -> Result<(), StorageError>;
    /// See [`LogStore::snapshot_writer`].
    fn snapshot_writer(&self, meta: &SnapshotMeta) -> Option<SnapshotWriter>;
    /// Records a snapshot whose bytes a snapshot writer stored, the way `save_snapshot`
    /// stores one.
    fn record_snapshot(&mut self, meta: SnapshotMeta) -> Result<(), StorageError>;
    /// Replaces the log by a snapshot from the leader through this thread's handle, in
    /// the same way.
    fn install_snapshot(&mut self, meta: SnapshotMeta, data: Bytes) -> Result<(), StorageError>;
    fn compact(&mut self, index: LogIndex) -> Result<LogIndex, SnapshotError>;
    fn on_snapshot_installed(&mut self, index: LogIndex) -> Result<(), SnapshotError>;
    /// Starts a log writer on a new handle of the log, if the log offers one.
    fn start_writer(
        &self,
        spawner: &Spawner,
        batch_max: usize,
        durable: u64,
        wake: Box<dyn Fn() + Send>,
    ) -> Result<Option<LogWriter>, StorageError>;
}

struct Owned<S: LogStore>(RawNode<S>);

impl<S: LogStore> Owned<S> {
    /// Writes the core's hard state (this handle may hold an old copy of it), then
    /// `write`'s snapshot, and makes both durable.
    fn write_snapshot(
        &mut self,
        write: impl FnOnce(&mut S) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let hard_state = self.0.hard_state();
        let storage = self.0.storage_mut();
        storage.set_hard_state(hard_state)?;
        write(storage)?;
        storage.sync()
    }
}

impl<S: LogStore> Core for Owned<S> {
    fn raw(&mut self) -> &mut dyn CoreOps {
        self
    }
}

impl<S: LogStore> CoreOps for Owned<S> {
    fn tick(&mut self) -> Result<(), StorageError> {
        self.0.tick()
    }

    fn step(&mut self, msg: Message) {
        // A message from an unknown node or for another node is the sender's mistake; it
        // changes nothing here. A storage failure while stepping shows up again at the
        // next write, where it stops the node.
        let _ = self.0.step(msg);
    }

    fn propose(&mut self, data: Bytes) -> Result<LogIndex, ProposeError> {
        self.0.propose(data)
    }

    fn read_index(&mut self, context: Bytes) -> Result<(), ReadIndexError> {
        self.0.read_index(context)
    }

    fn change_membership(
        &mut self,
        request: MembershipRequest,
    ) -> Result<LogIndex, ConfChangeError> {
        match request {
            MembershipRequest::Change(change) => self.0.propose_conf_change(change),
            MembershipRequest::Promote(id) => self.0.promote_learner(id),
        }
    }

    fn transfer_leadership(&mut self, target: NodeId) -> Result<(), TransferError> {
        self.0.transfer_leadership(target)
    }

    fn transfer_target(&self) -> Option<NodeId> {
        self.0.transfer_target()
    }

    fn role(&self) -> Role {
        self.0.role()
    }

    fn leader_id(&self) -> Option<NodeId> {
        self.0.leader_id()
    }

    fn term(&self) -> Term {
        self.0.term()
    }

    fn has_ready(&self) -> bool {
        self.0.has_ready()
    }

    fn ready(&mut self) -> Result<Ready, StorageError> {
        self.0.ready()
    }

    fn on_persisted(&mut self, ack: PersistAck) -> Result<(), StorageError> {
        self.0.on_persisted(ack)
    }

    fn write(
        &mut self,
        entries: &[Entry],
        hard_state: Option<HardState>,
    ) -> Result<(), StorageError> {
        let storage = self.0.storage_mut();
        if !entries.is_empty() {
            storage.append(entries)?;
        }
        if let Some(hard_state) = hard_state {
            storage.set_hard_state(hard_state)?;
        }
        storage.sync()
    }

    fn on_applied(&mut self, index: LogIndex) {
        self.0.on_applied(index);
    }

    fn hard_state(&self) -> HardState {
        self.0.hard_state()
    }

    fn snapshot_index(&self) -> Result<LogIndex, StorageError> {
        Ok(self.0.storage().snapshot_meta()?.index)
    }

    fn prepare_snapshot(&self, index: LogIndex) -> Result<SnapshotMeta, SnapshotError> {
        self.0.prepare_snapshot(index)
    }

    fn save_snapshot(&mut self, meta: SnapshotMeta, data: Bytes) -> Result<(), StorageError> {
        self.write_snapshot(|storage| storage.save_snapshot(meta, data))
    }

    fn snapshot_writer(&self, meta: &SnapshotMeta) -> Option<SnapshotWriter> {
        self.0.storage().snapshot_writer(meta)
    }

    fn record_snapshot(&mut self, meta: SnapshotMeta) -> Result<(), StorageError> {
        self.write_snapshot(|storage| storage.record_snapshot(meta))
    }

    fn install_snapshot(&mut self, meta: SnapshotMeta, data: Bytes) -> Result<(), StorageError> {
        self.write_snapshot(|storage| storage.install_snapshot(meta, data))
    }

    fn compact(&mut self, index: LogIndex) -> Result<LogIndex, SnapshotError> {
        self.0.compact(index)
    }

    fn on_snapshot_installed(&mut self, index: LogIndex) -> Result<(), SnapshotError> {
        self.0.on_snapshot_installed(index)
    }

    fn start_writer(
        &self,
        spawner: &Spawner,
        batch_max: usize,
        durable: u64,
        wake: Box<dyn Fn() + Send>,
    ) -> Result<Option<LogWriter>, StorageError> {
        let Some(store) = self.0.storage().writer()? else {
            return Ok(None);
        };
        LogWriter::start(spawner, store, batch_max, durable, wake)
            .map(Some)
            .map_err(|e| StorageError::Backend {
                source: Box::new(e),
            })
    }

    fn metrics(&self, applied: LogIndex, installed: u64) -> Metrics {
        let status = self.0.status().ok();
        Metrics {
            id: self.0.id(),
            role: self.0.role(),
            term: self.0.term(),
            leader: self.0.leader_id(),
            commit_index: self.0.commit_index(),
            applied_index: applied,
            last_log_index: status.as_ref().map_or(LogIndex(0), |s| s.last_index),
            match_index: status
                .map(|s| s.peers.iter().map(|p| (p.id, p.match_index)).collect())
                .unwrap_or_default(),
            snapshot_index: self
                .0
                .storage()
                .snapshot_meta()
                .map_or(LogIndex(0), |m| m.index),
            snapshots_installed: installed,
            conf_state: self.0.conf_state().clone(),
            transfer_target: self.0.transfer_target(),
            failure: None,
        }
    }
}

/// A Ready whose writes are not yet known durable: what to do once they are.
struct Unpersisted {
    /// Durable once the log writer reports this write number.
    seq: u64,
    ack: PersistAck,
    messages: Vec<Message>,
}

/// The caller's ends of a [`Driver`]'s channels.
pub(super) struct Handles<O> {
    pub(super) inbox: SyncSender<Input<O>>,
    pub(super) metrics: watch::Receiver<Metrics>,
}

/// The node's thread state.
pub(super) struct Driver<SM: StateMachine> {
    core: Box<dyn Core>,
    network: Box<dyn Network>,
    /// Moves to the applier thread when the node starts.
    state_machine: Option<SM>,
    /// The applied index the node starts from.
    start_applied: LogIndex,
    /// The applier's progress: every entry up to this index is applied.
    applied: Arc<AtomicU64>,
    apply: Option<Sender<ApplyJob<SM::Output>>>,
    apply_batch_max: usize,
    /// Starts this thread, the applier and the others beside it.
    pub(super) spawner: Spawner,
    /// Whether writes go to a log writer thread (when the log offers a handle).
    log_writer_thread: bool,
    write_batch_max: usize,
    /// A sender on the node's own inbox, for the applier and the log writer to wake it.
    inbox_tx: SyncSender<Input<SM::Output>>,
    writer: Option<LogWriter>,
    /// The number of the last write handed out (to the writer or done here).
    write_seq: u64,
    /// Writes done on this thread are durable at once.
    written_here: u64,
    unpersisted: VecDeque<Unpersisted>,
    inbox: Receiver<Input<SM::Output>>,
    metrics: watch::Sender<Metrics>,
    stop: Arc<AtomicBool>,
    tick_interval: std::time::Duration,
    inputs_per_batch_max: usize,
    /// Proposals accepted and not yet handed to the applier. They go with the next job
    /// it gets (always before any of their entries can be committed), so a round of
    /// proposals does not wake it on its own.
    proposed: Vec<Proposal<SM::Output>>,
    /// Reads sent to the core, by context.
    reads_sent: HashMap<u64, ReadReply>,
    next_read_context: u64,
    /// When the applier snapshots.
    snapshot_schedule: SnapshotSchedule,
    /// The latest snapshot from the applier, stored once every Ready taken is durable.
    snapshot_taken: Option<(LogIndex, Bytes)>,
    /// A local snapshot whose bytes a thread of its own is writing, recorded once done.
    snapshot_writing: Option<(SnapshotMeta, JoinHandle<Result<(), StorageError>>)>,
    /// Set once the log refused to store a snapshot: no more are taken. Shared with the
    /// applier, which then stops asking the state machine.
    snapshots_unsupported: Arc<AtomicBool>,
    /// The bytes received so far of a snapshot from the leader.
    staged: Vec<u8>,
    snapshots_installed: u64,
    /// Leadership transfers the core accepted, waiting for their outcome.
    transfers: Vec<(NodeId, oneshot::Sender<Result<(), RaftError>>)>,
    /// Why the applier stopped, once the state machine failed: the loop ends on it.
    applier_failure: Option<String>,
}

impl<SM: StateMachine> Driver<SM> {
    pub(super) fn new<S: LogStore, N: Network>(
        config: &RaftConfig,
        core_config: Config,
        storage: S,
        network: N,
        state_machine: SM,
        stop: Arc<AtomicBool>,
    ) -> Result<(Driver<SM>, Handles<SM::Output>), RaftError> {
        let seed = config.rng_seed.unwrap_or_else(|| {
            let nanos = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            nanos as u64 ^ config.node_id.rotate_left(32)
        });
        // A persistent state machine may be ahead of the stored commit index, which need
        // not be durable. The core restarts from what is known committed, and entries the
        // state machine already holds are skipped when they come round again.
        let mut state_machine = state_machine;
        restore_from_storage(
            &storage,
            &mut state_machine,
            core_config.snapshot_chunk_bytes_max,
        )?;
        let state_machine_applied = state_machine.applied_index();
        let snapshot_index = storage.snapshot_meta()?.index;
        let last_index = storage.last_index()?;
        if state_machine_applied > last_index {
            return Err(RaftError::Init(format!(
                "the state machine applied index {state_machine_applied}, beyond the log's last index {last_index}"
            )));
        }
        // A stored snapshot covers committed entries only, whatever the stored commit.
        let applied = state_machine_applied
            .min(storage.initial_state()?.hard_state.commit)
            .max(snapshot_index);
        let raw = RawNode::with_applied(core_config, storage, seed, applied)?;
        let core = Owned(raw);
        let (inbox_tx, inbox) = mpsc::sync_channel(config.inbox_max);
        let (metrics_tx, metrics_rx) = watch::channel(core.metrics(applied, 0));
        let driver = Driver {
            core: Box::new(core),
            network: Box::new(network),
            state_machine: Some(state_machine),
            start_applied: applied,
            applied: Arc::new(AtomicU64::new(applied.0)),
            apply: None,
            apply_batch_max: config.apply_batch_max,
            spawner: Spawner::new(config.node_id, config.on_thread_start.clone()),
            log_writer_thread: config.log_writer_thread,
            write_batch_max: config.write_batch_max,
            inbox_tx: inbox_tx.clone(),
            writer: None,
            write_seq: 0,
            written_here: 0,
            unpersisted: VecDeque::new(),
            inbox,
            metrics: metrics_tx,
            stop,
            tick_interval: config.tick_interval,
            inputs_per_batch_max: config.inputs_per_batch_max,
            proposed: Vec::new(),
            reads_sent: HashMap::new(),
            next_read_context: 0,
            snapshot_schedule: SnapshotSchedule::new(
                config.snapshot_every_entries,
                config.snapshot_log_growth_percent,
                config.snapshot_stretch_percent,
                // Not the elections' own sequence.
                seed.rotate_left(17) ^ 0x736e_6170_7368_6f74,
            ),
            snapshot_taken: None,
            snapshot_writing: None,
            snapshots_unsupported: Arc::new(AtomicBool::new(false)),
            staged: Vec::new(),
            snapshots_installed: 0,
            transfers: Vec::new(),
            applier_failure: None,
        };
        Ok((
            driver,
            Handles {
                inbox: inbox_tx,
                metrics: metrics_rx,
            },
        ))
    }

    /// The thread's body: starts the applier and the log writer, runs until the stop
    /// flag is set or every sender is gone, then lets both finish.
    pub(super) fn run(mut self) {
        let applier = match self.start_threads() {
            Ok(applier) => applier,
            Err(e) => {
                self.fail(&e);
                return;
            }
        };
        self.run_loop();
        // A snapshot still being written is left unrecorded, as a crash would leave it.
        if let Some((_, thread)) = self.snapshot_writing.take() {
            let _ = thread.join();
        }
        if let Some(mut writer) = self.writer.take() {
            writer.stop();
        }
        // Waiters the applier still holds fail as the node having stopped.
        self.apply = None;
        let _ = applier.join();
    }

    fn start_threads(&mut self) -> Result<JoinHandle<()>, StorageError> {
        let state_machine = self.state_machine.take().expect("a driver runs only once");
        let (jobs, queue) = mpsc::channel();
        let applier = Applier::new(
            state_machine,
            self.start_applied,
            Arc::clone(&self.applied),
            self.apply_batch_max,
            SnapshotPolicy {
                schedule: self.snapshot_schedule.clone(),
                unsupported: Arc::clone(&self.snapshots_unsupported),
                inbox: self.inbox_tx.clone(),
                spawner: self.spawner.clone(),
            },
        );
        let thread = self
            .spawner
            .spawn(NodeThread::Apply, move || applier.run(&queue))
            .map_err(|e| StorageError::Backend {
                source: Box::new(e),
            })?;
        self.apply = Some(jobs);
        self.start_writer()?;
        Ok(thread)
    }

    /// Starts a log writer on a fresh handle of the log, numbering on from the last
    /// write handed out (the previous writer, if any, has stopped); without
    /// `log_writer_thread`, leaves the writes to this thread.
    fn start_writer(&mut self) -> Result<(), StorageError> {
        assert!(self.writer.is_none(), "one log writer at a time");
        if !self.log_writer_thread {
            return Ok(());
        }
        let wake = self.inbox_tx.clone();
        self.writer = self.core.raw().start_writer(
            &self.spawner,
            self.write_batch_max,
            self.write_seq,
            Box::new(move || {
                // A full inbox wakes the node's thread anyway.
                let _ = wake.try_send(Input::Wake);
            }),
        )?;
        Ok(())
    }

    /// Waits until every write handed out is durable and acknowledged, and stops the log
    /// writer, so the log can be written from this thread.
    fn quiesce_writes(&mut self) -> Result<(), StorageError> {
        if let Some(mut writer) = self.writer.take() {
            writer.stop();
            if let Some(e) = writer.progress().take_failure() {
                return Err(e);
            }
            self.written_here = writer.progress().durable();
        }
        assert_eq!(
            self.written_here, self.write_seq,
            "every write handed out is done"
        );
        self.release_durable()?;
        assert!(self.unpersisted.is_empty(), "every write is acknowledged");
        Ok(())
    }

    fn run_loop(&mut self) {
        let mut next_tick = Instant::now() + self.tick_interval;
        while !self.stop.load(Ordering::Acquire) {
            let now = Instant::now();
            if now >= next_tick {
                if let Err(e) = self.core.raw().tick() {
                    self.fail(&e);
                    return;
                }
                self.reads_sent.retain(|_, reply| !reply.is_closed());
                // After a stall, tick once and resume the rhythm rather than catching up.
                next_tick = (next_tick + self.tick_interval).max(now);
            }
            match self
                .inbox
                .recv_timeout(next_tick.saturating_duration_since(now))
            {
                Ok(input) => {
                    self.handle(input);
                    for _ in 1..self.inputs_per_batch_max {
                        let Ok(input) = self.inbox.try_recv() else {
                            break;
                        };
                        self.handle(input);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if let Some(reason) = self.applier_failure.take() {
                self.stop_failed(format!(
                    "the state machine failed; the node stopped: {reason}"
                ));
                return;
            }
            if let Err(e) = self.process_ready() {
                self.fail(&e);
                return;
            }
        }
    }

    /// Hands `job` to the applier, after the proposals accepted before it.
    fn send_to_applier(&mut self, job: ApplyJob<SM::Output>) {
        if let Some(apply) = &self.apply {
            if !self.proposed.is_empty() {
                let proposed = std::mem::take(&mut self.proposed);
                let _ = apply.send(ApplyJob::Proposed(proposed));
            }
            // The applier outlives the loop; a send fails only while shutting down.
            let _ = apply.send(job);
        }
    }

    fn handle(&mut self, input: Input<SM::Output>) {
        match input {
            Input::Message(message) => self.core.raw().step(message),
            Input::Propose { data, reply } => {
                let raw = self.core.raw();
                match raw.propose(data) {
                    Ok(index) => {
                        let term = raw.term();
                        self.proposed.push((index, term, Reply::Command(reply)));
                    }
                    Err(ProposeError::NotLeader { leader_hint }) => {
                        let _ = reply.send(Err(RaftError::NotLeader { leader_hint }));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(RaftError::Proposal(e.to_string())));
                    }
                }
            }
            Input::Read { reply } => {
                let context = self.next_read_context;
                self.next_read_context += 1;
                match self
                    .core
                    .raw()
                    .read_index(Bytes::copy_from_slice(&context.to_le_bytes()))
                {
                    Ok(()) => {
                        self.reads_sent.insert(context, reply);
                    }
                    Err(ReadIndexError::NotLeader { leader_hint }) => {
                        let _ = reply.send(Err(RaftError::NotLeader { leader_hint }));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(RaftError::Read(e.to_string())));
                    }
                }
            }
            Input::ConfChange { request, reply } => {
                let raw = self.core.raw();
                match raw.change_membership(request) {
                    Ok(index) => {
                        let term = raw.term();
                        self.proposed.push((index, term, Reply::ConfChange(reply)));
                    }
                    Err(ConfChangeError::NotLeader { leader_hint }) => {
                        let _ = reply.send(Err(RaftError::NotLeader { leader_hint }));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(RaftError::ConfChange(Refusal::new(e))));
                    }
                }
            }
            Input::Transfer { target, reply } => {
                match self.core.raw().transfer_leadership(target) {
                    Ok(()) => self.transfers.push((target, reply)),
                    Err(TransferError::NotLeader { leader_hint }) => {
                        let _ = reply.send(Err(RaftError::NotLeader { leader_hint }));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(RaftError::Transfer(Refusal::new(e))));
                    }
                }
            }
            Input::Wake => {}
            Input::SnapshotTaken { index, data } => {
                self.snapshot_taken = Some((index, data));
            }
            Input::ApplierFailed { reason } => {
                self.applier_failure.get_or_insert(reason);
            }
        }
    }

    /// Carries out every pending Ready, and acknowledges every write found durable.
    fn process_ready(&mut self) -> Result<(), StorageError> {
        loop {
            self.release_durable()?;
            if !self.core.raw().has_ready() {
                break;
            }
            let ready = self.core.raw().ready()?;
            let ack = ready.persist_ack();
            for message in ready.messages {
                self.network.send(message);
            }
            self.stage(ready.snapshot_chunks);
            if ready.entries.is_empty() && ready.hard_state.is_none() {
                // Nothing to write: durable as soon as every earlier write is.
            } else {
                self.write_seq += 1;
                if let Some(writer) = &self.writer {
                    writer.submit(WriteJob {
                        seq: self.write_seq,
                        entries: ready.entries,
                        hard_state: ready.hard_state,
                    });
                } else {
                    self.core.raw().write(&ready.entries, ready.hard_state)?;
                    self.written_here = self.write_seq;
                }
            }
            self.unpersisted.push_back(Unpersisted {
                seq: self.write_seq,
                ack,
                messages: ready.persisted_messages,
            });
            if !ready.committed_entries.is_empty() {
                self.send_to_applier(ApplyJob::Committed(ready.committed_entries));
            }
            for read in ready.read_states {
                let context = read.context.as_ref().try_into().map(u64::from_le_bytes);
                let Some(reply) = context.ok().and_then(|c| self.reads_sent.remove(&c)) else {
                    continue;
                };
                if read.index <= self.applied() {
                    let _ = reply.send(Ok(read.index));
                } else {
                    self.send_to_applier(ApplyJob::Read {
                        index: read.index,
                        reply,
                    });
                }
            }
            if let Some(meta) = ready.snapshot {
                self.install_snapshot(meta)?;
            }
        }
        let applied = self.applied();
        self.core.raw().on_applied(applied);
        self.finish_snapshot_write(false)?;
        if let Some((index, data)) = self.snapshot_taken.take() {
            self.store_snapshot(index, data)?;
        }
        self.settle_transfers();
        self.publish_metrics();
        Ok(())
    }

    /// Answers the leadership transfers whose outcome is known: the target leads (this
    /// node learnt so from it), another node does, or this node still leads but the core
    /// abandoned the transfer.
    fn settle_transfers(&mut self) {
        if self.transfers.is_empty() {
            return;
        }
        let raw = self.core.raw();
        let (role, leader, pending) = (raw.role(), raw.leader_id(), raw.transfer_target());
        let mut waiting = Vec::new();
        for (target, reply) in std::mem::take(&mut self.transfers) {
            let outcome = match (role, leader) {
                (Role::Leader, _) if pending == Some(target) => None,
                (_, Some(leader)) if leader == target && role != Role::Leader => Some(Ok(())),
                // Between leaders: the target's election is under way.
                (Role::Follower | Role::PreCandidate | Role::Candidate, None) => None,
                // Abandoned while this node still leads, or another node won.
                _ => Some(Err(RaftError::TransferFailed { target, leader })),
            };
            match outcome {
                Some(outcome) => {
                    let _ = reply.send(outcome);
                }
                None if !reply.is_closed() => waiting.push((target, reply)),
                None => {}
            }
        }
        self.transfers = waiting;
    }

    /// Keeps the bytes of a snapshot arriving from the leader.
    fn stage(&mut self, chunks: Vec<IncomingSnapshotChunk>) {
        for chunk in chunks {
            if chunk.offset == 0 {
                self.staged.clear();
            }
            assert_eq!(
                chunk.offset,
                self.staged.len() as u64,
                "snapshot chunks arrive in order"
            );
            self.staged.extend_from_slice(&chunk.data);
        }
    }

    /// Installs the snapshot whose last chunk was just staged: once every write so far
    /// is durable, stores it in place of the log, restores the state machine from it and
    /// tells the core. A crash before the restore finishes restarts from the stored
    /// snapshot (see [`restore_from_storage`]).
    fn install_snapshot(&mut self, meta: SnapshotMeta) -> Result<(), StorageError> {
        // A local snapshot being written is recorded first: one snapshot change at a time.
        self.finish_snapshot_write(true)?;
        let data = Bytes::from(std::mem::take(&mut self.staged));
        let index = meta.index;
        self.quiesce_writes()?;
        let hard_state = self.core.raw().hard_state();
        assert!(
            hard_state.commit < index,
            "a snapshot at {index} at or below the commit index {}",
            hard_state.commit
        );
        self.core.raw().install_snapshot(meta, data.clone())?;
        let (done, outcome) = mpsc::channel();
        self.send_to_applier(ApplyJob::Restore { index, data, done });
        match outcome.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(backend(e)),
            Err(_) => return Err(backend("the applier stopped during a snapshot restore")),
        }
        assert_eq!(self.applied(), index, "the applier restored the snapshot");
        self.core
            .raw()
            .on_snapshot_installed(index)
            .map_err(backend)?;
        self.snapshots_installed += 1;
        self.start_writer()
    }

    /// Stores the applier's snapshot at `index` and compacts the log behind it. When the
    /// log can split the save, its bytes are written on a thread of their own, so this
    /// thread goes on serving Raft, and the snapshot is recorded once they are durable.
    fn store_snapshot(&mut self, index: LogIndex, data: Bytes) -> Result<(), StorageError> {
        if self.snapshots_unsupported.load(Ordering::Relaxed) {
            return Ok(());
        }
        // Below the stored snapshot or already compacted away: a newer one exists.
        let Ok(meta) = self.core.raw().prepare_snapshot(index) else {
            return Ok(());
        };
        if meta.index <= self.core.raw().snapshot_index()? {
            return Ok(());
        }
        // One at a time: a snapshot taken while the last is still being written is
        // dropped, and the applier takes another after as many entries again.
        if self.snapshot_writing.is_some() {
            return Ok(());
        }
        if let Some(write) = self.core.raw().snapshot_writer(&meta) {
            let wake = self.inbox_tx.clone();
            let bytes = data.clone();
            let writing = self.spawner.spawn(NodeThread::SnapshotWrite, move || {
                let written = write(&bytes);
                // A full inbox wakes the node's thread anyway.
                let _ = wake.try_send(Input::Wake);
                written
            });
            // Without a thread to spare, the save happens here.
            if let Ok(thread) = writing {
                self.snapshot_writing = Some((meta, thread));
                return Ok(());
            }
        }
        self.quiesce_writes()?;
        let saved = self.core.raw().save_snapshot(meta, data);
        self.start_writer()?;
        self.compact_behind(index, saved)
    }

    /// Records the snapshot whose bytes were being written, once they are (waiting for
    /// them with `wait`), and compacts the log behind it.
    fn finish_snapshot_write(&mut self, wait: bool) -> Result<(), StorageError> {
        let Some((_, thread)) = &self.snapshot_writing else {
            return Ok(());
        };
        if !wait && !thread.is_finished() {
            return Ok(());
        }
        let (meta, thread) = self.snapshot_writing.take().expect("checked above");
        thread
            .join()
            .unwrap_or_else(|_| Err(backend("the snapshot writer panicked")))?;
        let index = meta.index;
        self.quiesce_writes()?;
        let recorded = self.core.raw().record_snapshot(meta);
        self.start_writer()?;
        self.compact_behind(index, recorded)
    }

    /// After a local snapshot at `index` was stored (`saved`), compacts the log behind it.
    fn compact_behind(
        &mut self,
        index: LogIndex,
        saved: Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        match saved {
            Ok(()) => {}
            Err(StorageError::Unsupported { .. }) => {
                self.snapshots_unsupported.store(true, Ordering::Relaxed);
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        match self.core.raw().compact(index) {
            // The snapshot is stored; a log that cannot drop entries just stays longer.
            Ok(_) | Err(SnapshotError::Storage(StorageError::Unsupported { .. })) => Ok(()),
            Err(e) => Err(backend(e)),
        }
    }

    /// Sends the `persisted_messages` of every Ready whose writes are now durable and
    /// acknowledges those writes to the core, in Ready order.
    fn release_durable(&mut self) -> Result<(), StorageError> {
        let durable = match &self.writer {
            Some(writer) => {
                if let Some(e) = writer.progress().take_failure() {
                    return Err(e);
                }
                writer.progress().durable()
            }
            None => self.written_here,
        };
        debug_assert!(durable <= self.write_seq, "durable beyond what was written");
        while self.unpersisted.front().is_some_and(|u| u.seq <= durable) {
            let done = self.unpersisted.pop_front().expect("checked non-empty");
            for message in done.messages {
                self.network.send(message);
            }
            self.core.raw().on_persisted(done.ack)?;
        }
        Ok(())
    }

    fn applied(&self) -> LogIndex {
        LogIndex(self.applied.load(Ordering::Acquire))
    }

    fn publish_metrics(&mut self) {
        let applied = self.applied();
        let installed = self.snapshots_installed;
        let metrics = self.core.raw().metrics(applied, installed);
        self.metrics.send_if_modified(|current| {
            let changed = *current != metrics;
            if changed {
                *current = metrics;
            }
            changed
        });
    }

    fn fail(&mut self, error: &StorageError) {
        self.stop_failed(format!("the log failed; the node stopped: {error}"));
    }

    /// Publishes why the node stops serving; the caller then leaves the loop.
    fn stop_failed(&mut self, message: String) {
        self.metrics.send_modify(|m| m.failure = Some(message));
    }
}

fn backend(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StorageError {
    StorageError::Backend { source: e.into() }
}

/// Brings a state machine that is behind the log's stored snapshot up to it, from the
/// snapshot's bytes: after a crash during an install, or when a non-persistent state
/// machine restarts on a compacted log.
fn restore_from_storage<S: Storage, SM: StateMachine>(
    storage: &S,
    state_machine: &mut SM,
    chunk_bytes_max: usize,
) -> Result<(), RaftError> {
    let meta = storage.snapshot_meta()?;
    if meta.index <= state_machine.applied_index() {
        return Ok(());
    }
    let mut data = Vec::new();
    loop {
        let chunk = storage
            .snapshot_chunk(data.len() as u64, chunk_bytes_max)
            .map_err(|e| {
                RaftError::Init(format!(
                    "the log starts after a snapshot at {} that the state machine lacks, and its bytes cannot be read: {e}",
                    meta.index
                ))
            })?;
        if (chunk.index, chunk.term) != (meta.index, meta.term) {
            return Err(RaftError::Init(format!(
                "the stored snapshot bytes are at index {} term {}, not the log's snapshot at index {} term {}",
                chunk.index, chunk.term, meta.index, meta.term
            )));
        }
        data.extend_from_slice(&chunk.data);
        if chunk.last {
            break;
        }
        if chunk.data.is_empty() {
            return Err(RaftError::Init("the stored snapshot ends early".to_owned()));
        }
    }
    state_machine
        .restore(meta.index, &data)
        .map_err(|e| RaftError::Init(e.to_string()))?;
    let held = state_machine.applied_index();
    if held != meta.index {
        return Err(RaftError::Init(format!(
            "the state machine reports index {held} after restoring the snapshot at {}",
            meta.index
        )));
    }
    Ok(())
}
