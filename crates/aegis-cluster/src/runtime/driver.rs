//! The node's thread: ticks the core, feeds it inputs, and carries out its Readies.
//!
//! Three threads share the work of a node. The node's thread (this module) owns the core:
//! it steps messages, proposes, sends each Ready's messages at once and hands its writes
//! to the log writer ([`super::writer`]) when the log offers a writer handle, or writes
//! them itself otherwise. Once a Ready's writes are durable, in Ready order, it sends the
//! Ready's `persisted_messages` and acknowledges the writes to the core. Committed
//! entries, accepted proposals and confirmed reads go to the applier ([`super::apply`]),
//! which applies and answers. So a sync in flight or a slow apply never stops the node
//! from stepping acknowledgements and sending the next appends.

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

use super::apply::{Applier, ApplyJob, Proposal, ReadReply};
use super::writer::{LogWriter, WriteJob};
use super::{LogStore, Metrics, Network, RaftConfig, RaftError, StateMachine};
use aegis_raft::{
    Config, Entry, HardState, LogIndex, Message, NodeId, PersistAck, ProposeError, RawNode,
    ReadIndexError, Ready, StorageError, Term,
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
    /// Nothing to do but look at the stop flag and the log writer's progress.
    Wake,
}

/// The core with its storage erased, so the driver is generic only over the state
/// machine.
trait Core: Send {
    fn raw(&mut self) -> &mut dyn CoreOps;
}

/// The operations of [`RawNode`] the driver uses, object-safe.
trait CoreOps {
    fn id(&self) -> NodeId;
    fn tick(&mut self) -> Result<(), StorageError>;
    fn step(&mut self, msg: Message);
    fn propose(&mut self, data: Bytes) -> Result<LogIndex, ProposeError>;
    fn read_index(&mut self, context: Bytes) -> Result<(), ReadIndexError>;
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
    fn metrics(&self, applied: LogIndex) -> Metrics;
}

struct Owned<S: LogStore>(RawNode<S>);

impl<S: LogStore> Core for Owned<S> {
    fn raw(&mut self) -> &mut dyn CoreOps {
        self
    }
}

impl<S: LogStore> CoreOps for Owned<S> {
    fn id(&self) -> NodeId {
        self.0.id()
    }

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

    fn metrics(&self, applied: LogIndex) -> Metrics {
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

/// Starts the log writer thread, when the log offers a writer handle.
type StartWriter = Box<dyn FnOnce() -> std::io::Result<LogWriter> + Send>;

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
    start_writer: Option<StartWriter>,
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
    /// Proposals accepted since the last Ready, handed to the applier together.
    proposed: Vec<Proposal<SM::Output>>,
    /// Reads sent to the core, by context.
    reads_sent: HashMap<u64, ReadReply>,
    next_read_context: u64,
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
        let state_machine_applied = state_machine.applied_index();
        let last_index = storage.last_index()?;
        if state_machine_applied > last_index {
            return Err(RaftError::Init(format!(
                "the state machine applied index {state_machine_applied}, beyond the log's last index {last_index}"
            )));
        }
        let applied = state_machine_applied.min(storage.initial_state()?.hard_state.commit);
        let writer_store = storage.writer()?;
        let raw = RawNode::with_applied(core_config, storage, seed, applied)?;
        let core = Owned(raw);
        let (inbox_tx, inbox) = mpsc::sync_channel(config.inbox_max);
        let start_writer = writer_store.map(|store| {
            let wake = inbox_tx.clone();
            let name = format!("aegis-log-{}", config.node_id);
            let batch_max = config.write_batch_max;
            Box::new(move || {
                LogWriter::start(
                    name,
                    store,
                    batch_max,
                    Box::new(move || {
                        // A full inbox wakes the node's thread anyway.
                        let _ = wake.try_send(Input::Wake);
                    }),
                )
            }) as StartWriter
        });
        let (metrics_tx, metrics_rx) = watch::channel(core.metrics(applied));
        let driver = Driver {
            core: Box::new(core),
            network: Box::new(network),
            state_machine: Some(state_machine),
            start_applied: applied,
            applied: Arc::new(AtomicU64::new(applied.0)),
            apply: None,
            apply_batch_max: config.apply_batch_max,
            start_writer,
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
                self.fail(&StorageError::Backend {
                    source: Box::new(e),
                });
                return;
            }
        };
        self.run_loop();
        if let Some(mut writer) = self.writer.take() {
            writer.stop();
        }
        // Waiters the applier still holds fail as the node having stopped.
        self.apply = None;
        let _ = applier.join();
    }

    fn start_threads(&mut self) -> std::io::Result<JoinHandle<()>> {
        let state_machine = self.state_machine.take().expect("a driver runs only once");
        let (jobs, queue) = mpsc::channel();
        let applier = Applier::new(
            state_machine,
            self.start_applied,
            Arc::clone(&self.applied),
            self.apply_batch_max,
        );
        let id = self.core.raw().id();
        let thread = std::thread::Builder::new()
            .name(format!("aegis-apply-{id}"))
            .spawn(move || applier.run(&queue))?;
        self.apply = Some(jobs);
        if let Some(start) = self.start_writer.take() {
            self.writer = Some(start()?);
        }
        Ok(thread)
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
            if let Err(e) = self.process_ready() {
                self.fail(&e);
                return;
            }
        }
    }

    fn send_to_applier(&self, job: ApplyJob<SM::Output>) {
        if let Some(apply) = &self.apply {
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
                        self.proposed.push((index, term, reply));
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
            Input::Wake => {}
        }
    }

    /// Carries out every pending Ready, and acknowledges every write found durable.
    fn process_ready(&mut self) -> Result<(), StorageError> {
        // Before any entry they wait for can be handed out as committed.
        if !self.proposed.is_empty() {
            let proposed = std::mem::take(&mut self.proposed);
            self.send_to_applier(ApplyJob::Proposed(proposed));
        }
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
        }
        let applied = self.applied();
        self.core.raw().on_applied(applied);
        self.publish_metrics();
        Ok(())
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
        let metrics = self.core.raw().metrics(applied);
        self.metrics.send_if_modified(|current| {
            let changed = *current != metrics;
            if changed {
                *current = metrics;
            }
            changed
        });
    }

    fn fail(&mut self, error: &StorageError) {
        let message = format!("the log failed; the node stopped: {error}");
        self.metrics.send_modify(|m| m.failure = Some(message));
    }
}
