//! The node's thread: ticks the core, feeds it inputs, and carries out its Readies.

#![allow(
    clippy::disallowed_methods,
    reason = "the driver is what gives the core its clock"
)]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, mpsc};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use tokio::sync::{oneshot, watch};

use super::{LogStore, Metrics, Network, RaftConfig, RaftError, StateMachine};
use aegis_raft::{
    Config, EntryKind, LogIndex, Message, ProposeError, RawNode, ReadIndexError, StorageError, Term,
};

/// What callers hand to the node's thread.
pub(super) enum Input<O = ()> {
    Message(Message),
    Propose {
        data: Bytes,
        reply: oneshot::Sender<Result<O, RaftError>>,
    },
    Read {
        reply: oneshot::Sender<Result<LogIndex, RaftError>>,
    },
    /// Nothing to do but look at the stop flag.
    Wake,
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
    fn term(&self) -> Term;
    /// Carries out every pending Ready; returns the committed entries and read states.
    fn process_ready(&mut self, network: &dyn Network) -> Result<ReadyOutput, StorageError>;
    fn on_applied(&mut self, index: LogIndex);
    fn metrics(&self, applied: LogIndex) -> Metrics;
}

/// What a Ready leaves for the state machine and the readers.
#[derive(Default)]
struct ReadyOutput {
    committed: Vec<aegis_raft::Entry>,
    read_states: Vec<aegis_raft::ReadState>,
}

struct Owned<S: LogStore>(RawNode<S>);

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

    fn term(&self) -> Term {
        self.0.term()
    }

    fn process_ready(&mut self, network: &dyn Network) -> Result<ReadyOutput, StorageError> {
        let mut out = ReadyOutput::default();
        while self.0.has_ready() {
            let ready = self.0.ready()?;
            let ack = ready.persist_ack();
            for message in ready.messages {
                network.send(message);
            }
            let storage = self.0.storage_mut();
            if !ready.entries.is_empty() {
                storage.append(&ready.entries)?;
            }
            if let Some(hard_state) = ready.hard_state {
                storage.set_hard_state(hard_state)?;
            }
            if ack.last_entry.is_some() || ack.hard_state.is_some() {
                storage.sync()?;
            }
            for message in ready.persisted_messages {
                network.send(message);
            }
            self.0.on_persisted(ack)?;
            out.committed.extend(ready.committed_entries);
            out.read_states.extend(ready.read_states);
        }
        Ok(out)
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

/// A proposal waiting for its entry to be applied.
struct PendingProposal<O> {
    term: Term,
    reply: oneshot::Sender<Result<O, RaftError>>,
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
    state_machine: SM,
    /// The last index handed out by the core and dealt with.
    applied: LogIndex,
    /// What the state machine held when the node started; entries up to it are skipped.
    state_machine_applied: LogIndex,
    inbox: Receiver<Input<SM::Output>>,
    metrics: watch::Sender<Metrics>,
    stop: Arc<AtomicBool>,
    tick_interval: std::time::Duration,
    inputs_per_batch_max: usize,
    proposals: BTreeMap<LogIndex, PendingProposal<SM::Output>>,
    /// Reads sent to the core, by context.
    reads_sent: HashMap<u64, oneshot::Sender<Result<LogIndex, RaftError>>>,
    /// Reads confirmed at an index, waiting for the state machine to reach it.
    reads_confirmed: Vec<(LogIndex, oneshot::Sender<Result<LogIndex, RaftError>>)>,
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
        let raw = RawNode::with_applied(core_config, storage, seed, applied)?;
        let core = Owned(raw);
        let (inbox_tx, inbox) = mpsc::sync_channel(config.inbox_max);
        let (metrics_tx, metrics_rx) = watch::channel(core.metrics(applied));
        let driver = Driver {
            core: Box::new(core),
            network: Box::new(network),
            state_machine,
            applied,
            state_machine_applied,
            inbox,
            metrics: metrics_tx,
            stop,
            tick_interval: config.tick_interval,
            inputs_per_batch_max: config.inputs_per_batch_max,
            proposals: BTreeMap::new(),
            reads_sent: HashMap::new(),
            reads_confirmed: Vec::new(),
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

    /// The thread's body: runs until the stop flag is set or every sender is gone.
    pub(super) fn run(mut self) {
        let mut next_tick = Instant::now() + self.tick_interval;
        while !self.stop.load(Ordering::Acquire) {
            let now = Instant::now();
            if now >= next_tick {
                if let Err(e) = self.core.raw().tick() {
                    self.fail(&e);
                    return;
                }
                self.forget_abandoned_requests();
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

    fn handle(&mut self, input: Input<SM::Output>) {
        match input {
            Input::Message(message) => self.core.raw().step(message),
            Input::Propose { data, reply } => {
                let raw = self.core.raw();
                match raw.propose(data) {
                    Ok(index) => {
                        let term = raw.term();
                        let previous = self
                            .proposals
                            .insert(index, PendingProposal { term, reply });
                        // An older proposal at the same index was truncated away.
                        if let Some(previous) = previous {
                            let _ = previous.reply.send(Err(RaftError::Superseded { index }));
                        }
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

    fn process_ready(&mut self) -> Result<(), StorageError> {
        let out = self.core.raw().process_ready(self.network.as_ref())?;
        for read in out.read_states {
            let context = read.context.as_ref().try_into().map(u64::from_le_bytes);
            if let Some(reply) = context.ok().and_then(|c| self.reads_sent.remove(&c)) {
                self.reads_confirmed.push((read.index, reply));
            }
        }
        let mut batch = Vec::new();
        let mut answers = Vec::with_capacity(out.committed.len());
        for entry in out.committed {
            assert_eq!(
                entry.index,
                self.applied.next(),
                "committed entries arrive in order without gaps"
            );
            self.applied = entry.index;
            let fresh = entry.index > self.state_machine_applied;
            answers.push((
                entry.index,
                entry.term,
                fresh && entry.kind == EntryKind::Normal,
            ));
            if fresh && entry.kind == EntryKind::Normal {
                batch.push((entry.index, entry.data));
            }
        }
        let mut outputs = if batch.is_empty() {
            Vec::new()
        } else {
            self.state_machine.apply_batch(&batch)
        };
        assert_eq!(
            outputs.len(),
            batch.len(),
            "apply_batch returns one output per entry"
        );
        outputs.reverse();
        for (index, term, applied) in answers {
            let output = if applied { outputs.pop() } else { None };
            self.answer_proposal(index, term, output);
        }
        self.core.raw().on_applied(self.applied);
        let applied = self.applied;
        let (ready, waiting) = std::mem::take(&mut self.reads_confirmed)
            .into_iter()
            .partition(|(i, _)| *i <= applied);
        self.reads_confirmed = waiting;
        for (index, reply) in ready {
            let _ = reply.send(Ok(index));
        }
        self.publish_metrics();
        Ok(())
    }

    /// Answers the proposal at `index`, if this node made it, and every older one still
    /// waiting: those indices hold other entries now, so those proposals are lost.
    fn answer_proposal(&mut self, index: LogIndex, term: Term, mut output: Option<SM::Output>) {
        while let Some(first) = self.proposals.first_entry() {
            if *first.key() > index {
                break;
            }
            let (at, pending) = first.remove_entry();
            let result = match output.take() {
                Some(output) if at == index && pending.term == term => Ok(output),
                _ => Err(RaftError::Superseded { index: at }),
            };
            let _ = pending.reply.send(result);
        }
    }

    fn forget_abandoned_requests(&mut self) {
        self.proposals.retain(|_, p| !p.reply.is_closed());
        self.reads_sent.retain(|_, reply| !reply.is_closed());
        self.reads_confirmed.retain(|(_, reply)| !reply.is_closed());
    }

    fn publish_metrics(&mut self) {
        let metrics = self.core.raw().metrics(self.applied);
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
