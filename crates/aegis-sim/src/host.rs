//! One simulated machine: a Raft node, its disk, its copy of the state machine, and the
//! fingerprints of its log that the oracle checks.

mod quiet;

use std::collections::VecDeque;

use aegis_raft::{
    ConfState, Config, Entry, EntryKind, HardState, LogIndex, MemStorage, Message, Payload,
    PersistAck, RawNode, Role, SnapshotMeta, Storage,
};
use bytes::Bytes;

use crate::checker::RegisterOutput;
use crate::disk::{Disk, Write};
use crate::event::Event;
use crate::kv::{Command, KvStore};
use crate::options::Sabotage;
use crate::oracle::Violation;
use crate::rng::SimRng;
use crate::snapshot::{self, SnapshotPolicy};
use crate::view::{LogView, entry_digest};
use crate::{Error, NodeId};

/// A compact description of a message for the trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageSummary {
    /// The payload's kind.
    pub kind: &'static str,
    /// The message's term.
    pub term: u64,
    /// The main index the message carries (previous index, match index, ...).
    pub index: u64,
    /// A second number: entries carried, commit, granted flag, ...
    pub extra: u64,
}

/// Summarises `message` in a few numbers.
#[must_use]
pub fn summarize(message: &Message) -> MessageSummary {
    let (kind, index, extra) = match &message.payload {
        Payload::PreVote(r) => ("PreVote", r.last_log_index.0, r.last_log_term.0),
        Payload::Vote(r) => ("Vote", r.last_log_index.0, r.last_log_term.0),
        Payload::PreVoteResponse(r) => ("PreVoteResp", 0, u64::from(r.granted)),
        Payload::VoteResponse(r) => ("VoteResp", 0, u64::from(r.granted)),
        Payload::Append(a) => ("Append", a.prev_log_index.0, a.entries.len() as u64),
        Payload::AppendResponse(aegis_raft::AppendResponse::Accepted { match_index }) => {
            ("AppendOk", match_index.0, 0)
        }
        Payload::AppendResponse(aegis_raft::AppendResponse::Rejected {
            rejected_prev_index,
            hint_index,
            ..
        }) => ("AppendReject", rejected_prev_index.0, hint_index.0),
        Payload::Heartbeat(h) => ("Heartbeat", h.commit.0, h.seq),
        Payload::HeartbeatResponse(h) => ("HeartbeatResp", h.last_index.0, h.seq),
        Payload::ReadIndex(_) => ("ReadIndex", 0, 0),
        Payload::ReadIndexResponse(r) => ("ReadIndexResp", r.index.0, 0),
        Payload::TimeoutNow => ("TimeoutNow", 0, 0),
        Payload::TransferVote(r) => ("TransferVote", r.last_log_index.0, r.last_log_term.0),
        Payload::Quiesce(h) => ("Quiesce", h.commit.0, h.seq),
        Payload::Snapshot(c) => ("Snapshot", c.meta.index.0, c.offset),
        Payload::SnapshotResponse(r) => ("SnapshotResp", r.index.0, r.received),
        _ => ("Other", 0, 0),
    };
    MessageSummary {
        kind,
        term: message.term.0,
        index,
        extra,
    }
}

/// Why a node turned a client request away; either way nothing was logged.
#[derive(Debug, Clone)]
pub(crate) enum Refusal {
    /// Ask another node (the hinted leader if known).
    NotLeader { leader_hint: Option<NodeId> },
    /// Back-pressure: the same node may accept later.
    Busy(String),
}

/// One entry a node applied.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Applied {
    pub(crate) index: u64,
    /// The chain digest of the node's log at `index`.
    pub(crate) chain: u64,
    /// The client command and what the state machine answered (none for no-ops).
    pub(crate) result: Option<(Command, RegisterOutput)>,
}

/// What one Ready turned into, for the simulator to act on and check.
#[derive(Debug, Default)]
pub(crate) struct ReadyOutcome {
    /// The persist event, if the Ready wrote anything.
    pub(crate) persist: Option<Event>,
    /// The first log index the Ready changed (0: none).
    pub(crate) log_changed_from: u64,
    /// Messages to send now.
    pub(crate) messages: Vec<Message>,
    /// Applied entries.
    pub(crate) applied: Vec<Applied>,
    /// First and last index applied.
    pub(crate) applied_range: Option<(u64, u64)>,
    /// Confirmed reads: context and index.
    pub(crate) reads: Vec<(u64, u64)>,
}

/// One simulated machine. While it is down `node` is `None`; its disk, and so its
/// durable log and hard state, survive.
pub(crate) struct Host {
    pub(crate) id: NodeId,
    voters: Vec<NodeId>,
    node: Option<RawNode<MemStorage>>,
    pub(crate) profile: Profile,
    disk: Disk<Entry, HardState>,
    /// For each disk write in flight (by tag): the acknowledgement, the messages that
    /// wait for it, and the snapshot to install once it is durable.
    after_persist: VecDeque<AfterPersist>,
    next_tag: u64,
    pub(crate) kv: KvStore,
    pub(crate) applied: u64,
    /// The node's log as it is in memory (durable plus handed out for writing).
    pub(crate) view: LogView,
    /// The log on disk.
    pub(crate) durable: LogView,
    pub(crate) last_role: Option<(Role, u64)>,
    pub(crate) last_commit: u64,
    durable_hard_state: HardState,
    /// The latest snapshot on disk and its bytes.
    durable_snapshot: Option<(SnapshotMeta, Bytes)>,
    /// Snapshot bytes received from the leader so far.
    staging: Vec<u8>,
    /// Snapshots installed since the simulator last looked: index and chain digest.
    pub(crate) installed: Vec<(u64, u64)>,
}

/// What waits for one disk write.
type AfterPersist = (
    u64,
    Option<PersistAck>,
    Vec<Message>,
    Option<(SnapshotMeta, Bytes)>,
);

/// What went wrong inside a host.
#[derive(Debug)]
pub(crate) enum HostError {
    /// The Raft core returned an error.
    Raft(String),
    /// A property was violated.
    Invariant(Violation),
}

fn print_of(entry: &Entry) -> (u64, u64) {
    (entry.term.0, entry_digest(&(entry.kind, &entry.data[..])))
}

/// What is the same for every node of a run, and what differs per node.
#[derive(Debug, Clone)]
pub(crate) struct Profile {
    /// The cluster's Raft configuration; each node sets its own id.
    pub(crate) config: Config,
    /// Chance per mille that this node misses a tick.
    pub(crate) tick_skip_per_mille: u32,
    /// A deliberate driver bug.
    pub(crate) sabotage: Option<Sabotage>,
    /// When the node snapshots its state machine (never if `None`).
    pub(crate) snapshots: Option<SnapshotPolicy>,
}

impl Host {
    pub(crate) fn new(
        id: NodeId,
        voters: &[NodeId],
        seed: u64,
        disk_delay_ticks_max: u64,
        profile: Profile,
    ) -> Result<Self, Error> {
        let mut host = Self {
            id,
            voters: voters.to_vec(),
            node: None,
            profile,
            disk: Disk::new(disk_delay_ticks_max),
            after_persist: VecDeque::new(),
            next_tag: 1,
            kv: KvStore::default(),
            applied: 0,
            view: LogView::default(),
            durable: LogView::default(),
            last_role: None,
            last_commit: 0,
            durable_hard_state: HardState::default(),
            durable_snapshot: None,
            staging: Vec::new(),
            installed: Vec::new(),
        };
        host.restart(seed).map_err(|reason| Error::InvalidOption {
            name: "nodes",
            reason,
        })?;
        Ok(host)
    }

    pub(crate) fn is_up(&self) -> bool {
        self.node.is_some()
    }

    pub(crate) fn role_term(&self) -> Option<(Role, u64)> {
        self.node.as_ref().map(|n| (n.role(), n.term().0))
    }

    pub(crate) fn role(&self) -> Option<Role> {
        self.node.as_ref().map(RawNode::role)
    }

    pub(crate) fn commit(&self) -> u64 {
        self.node.as_ref().map_or(0, |n| n.commit_index().0)
    }

    pub(crate) fn status(&self) -> String {
        match &self.node {
            None => format!("node {} down", self.id),
            Some(n) => format!(
                "node {} {:?} {} commit {} applied {} last {} durable {} writes in flight {}",
                self.id,
                n.role(),
                n.term(),
                n.commit_index(),
                self.applied,
                self.view.last_index(),
                self.durable.last_index(),
                self.disk.pending()
            ),
        }
    }

    fn node(&mut self) -> &mut RawNode<MemStorage> {
        self.node.as_mut().expect("the node is up")
    }

    pub(crate) fn tick(&mut self) -> Result<(), String> {
        self.node()
            .tick()
            .map_err(|e| format!("node tick failed: {e}"))
    }

    pub(crate) fn step(&mut self, message: Message) -> Result<(), String> {
        match self.node().step(message) {
            // A node refuses strangers, such as a removed node that missed its removal:
            // for the sender it is as if the message were lost.
            Ok(()) | Err(aegis_raft::StepError::UnknownSender { .. }) => Ok(()),
            Err(e) => Err(format!("node step failed: {e}")),
        }
    }

    /// The node's configuration in effect and its last committed one (`None` while down).
    pub(crate) fn conf_states(&self) -> Option<(ConfState, ConfState)> {
        self.node
            .as_ref()
            .map(|n| (n.conf_state().clone(), n.committed_conf_state().clone()))
    }

    /// The configurations a restart from the disk would start with: the one of the
    /// durable log's last configuration entry, and the one as of the durable commit index
    /// (the initial voters where there is no such entry).
    pub(crate) fn durable_conf_states(&self) -> (ConfState, ConfState) {
        let commit = self.disk.hard_state().map_or(0, |hs| hs.commit.0);
        let mut confs = self.disk.log().iter().rev().filter_map(|e| {
            (e.kind == EntryKind::ConfChange)
                .then(|| aegis_raft::ConfChangeRecord::decode(&e.data).ok())
                .flatten()
                .map(|r| (e.index.0, r.conf_state))
        });
        let initial = ConfState::with_voters(&self.voters);
        let latest = confs.next();
        let committed = latest
            .iter()
            .cloned()
            .chain(confs)
            .find(|(index, _)| *index <= commit)
            .map_or_else(|| initial.clone(), |(_, c)| c);
        (latest.map_or(initial, |(_, c)| c), committed)
    }

    /// The node, for membership changes (only while up).
    pub(crate) fn raw(&mut self) -> Option<&mut RawNode<MemStorage>> {
        self.node.as_mut()
    }

    /// Proposes `command`; returns the index it will have if it commits.
    pub(crate) fn propose(&mut self, command: &Command) -> Result<u64, Refusal> {
        match self.node().propose(Bytes::from(command.encode())) {
            Ok(index) => Ok(index.0),
            Err(aegis_raft::ProposeError::NotLeader { leader_hint }) => {
                Err(Refusal::NotLeader { leader_hint })
            }
            Err(e) => Err(Refusal::Busy(e.to_string())),
        }
    }

    /// Starts a ReadIndex read identified by `context`.
    pub(crate) fn read_index(&mut self, context: u64) -> Result<(), Refusal> {
        match self
            .node()
            .read_index(Bytes::copy_from_slice(&context.to_le_bytes()))
        {
            Ok(()) => Ok(()),
            Err(aegis_raft::ReadIndexError::NotLeader { leader_hint }) => {
                Err(Refusal::NotLeader { leader_hint })
            }
            Err(e) => Err(Refusal::Busy(e.to_string())),
        }
    }

    /// Completes due disk writes; returns whether any did and the messages they release.
    pub(crate) fn complete_writes(&mut self, now: u64) -> Result<(bool, Vec<Message>), HostError> {
        let done = self.disk.complete_due(now);
        if done.is_empty() {
            return Ok((false, Vec::new()));
        }
        let mut release = Vec::new();
        for write in done {
            let (tag, ack, messages, install) = self
                .after_persist
                .pop_front()
                .expect("every write has its acknowledgement");
            assert_eq!(tag, write.tag, "writes complete in submission order");
            if !write.entries.is_empty() {
                self.durable
                    .splice(write.first_index, write.entries.iter().map(print_of));
            }
            if let Some(hs) = write.hard_state {
                self.check_durable_hard_state(hs)?;
            }
            if ack.is_some() {
                let node = self.node.as_mut().expect("the node is up");
                node.storage_mut().append(&write.entries);
                if let Some(hs) = write.hard_state {
                    node.storage_mut().set_hard_state(hs);
                }
            }
            if let Some((meta, data)) = install {
                self.install(meta, data).map_err(HostError::Raft)?;
            }
            if let Some(ack) = ack {
                let node = self.node.as_mut().expect("the node is up");
                node.on_persisted(ack)
                    .map_err(|e| HostError::Raft(format!("on_persisted failed: {e}")))?;
            }
            release.extend(messages);
        }
        Ok((true, release))
    }

    /// A durable term never goes back, and a durable vote never changes within a term:
    /// otherwise a restart could vote twice in one term.
    fn check_durable_hard_state(&mut self, hs: HardState) -> Result<(), HostError> {
        let old = self.durable_hard_state;
        let votes_twice = hs.term == old.term && old.vote.is_some() && hs.vote != old.vote;
        if hs.term < old.term || votes_twice {
            return Err(HostError::Invariant(Violation {
                invariant: "one durable vote per term",
                detail: format!(
                    "node {} replaces durable hard state {old:?} with {hs:?}",
                    self.id
                ),
            }));
        }
        self.durable_hard_state = hs;
        Ok(())
    }

    /// Takes the node's Ready, if it has one, and carries out everything it asks.
    pub(crate) fn drain_ready(
        &mut self,
        now: u64,
        rng: &mut SimRng,
    ) -> Result<Option<ReadyOutcome>, String> {
        let node = self.node.as_mut().expect("the node is up");
        if !node.has_ready() {
            return Ok(None);
        }
        let ready = node.ready().map_err(|e| format!("ready failed: {e}"))?;
        for chunk in &ready.snapshot_chunks {
            if chunk.offset == 0 {
                self.staging.clear();
            }
            if chunk.offset != self.staging.len() as u64 {
                return Err(format!(
                    "node {} got a snapshot chunk at {} after {} bytes",
                    self.id,
                    chunk.offset,
                    self.staging.len()
                ));
            }
            self.staging.extend_from_slice(&chunk.data);
        }
        let install = ready
            .snapshot
            .map(|meta| (meta, Bytes::from(std::mem::take(&mut self.staging))));
        let mut out = ReadyOutcome {
            messages: ready.messages,
            ..ReadyOutcome::default()
        };
        let ack = PersistAck {
            last_entry: ready.entries.last().map(|e| (e.index, e.term)),
            hard_state: ready.hard_state,
        };
        if !ready.entries.is_empty()
            || ready.hard_state.is_some()
            || !ready.persisted_messages.is_empty()
            || install.is_some()
        {
            let first_index = ready.entries.first().map_or(0, |e| e.index.0);
            if first_index > 0 {
                self.view
                    .splice(first_index, ready.entries.iter().map(print_of));
                out.log_changed_from = first_index;
            }
            out.persist = Some(Event::Persist {
                node: self.id,
                first_index,
                entries: ready.entries.len() as u64,
                hard_state: ready.hard_state.map(|h| (h.term.0, h.vote, h.commit.0)),
            });
            let tag = self.next_tag;
            self.next_tag += 1;
            if self.profile.sabotage == Some(Sabotage::AckBeforeDurable) {
                // The lie: the node hears "durable" now, while the disk may still lose it.
                let node = self.node.as_mut().expect("the node is up");
                node.storage_mut().append(&ready.entries);
                if let Some(hs) = ready.hard_state {
                    node.storage_mut().set_hard_state(hs);
                }
                node.on_persisted(ack)
                    .map_err(|e| format!("on_persisted failed: {e}"))?;
                out.messages.extend(ready.persisted_messages);
                self.after_persist
                    .push_back((tag, None, Vec::new(), install));
            } else {
                self.after_persist
                    .push_back((tag, Some(ack), ready.persisted_messages, install));
            }
            let write = Write {
                first_index: first_index.max(1),
                entries: ready.entries,
                hard_state: ready.hard_state,
                tag,
            };
            self.disk.submit(now, write, rng);
        }
        for entry in &ready.committed_entries {
            out.applied.push(self.apply(entry)?);
        }
        if let (Some(first), Some(last)) = (
            ready.committed_entries.first(),
            ready.committed_entries.last(),
        ) {
            out.applied_range = Some((first.index.0, last.index.0));
            self.node().on_applied(last.index);
            self.maybe_snapshot()?;
        }
        for read in ready.read_states {
            let context = u64::from_le_bytes(
                read.context[..]
                    .try_into()
                    .map_err(|_| "read context changed in transit".to_owned())?,
            );
            out.reads.push((context, read.index.0));
        }
        Ok(Some(out))
    }

    fn apply(&mut self, entry: &Entry) -> Result<Applied, String> {
        let index = entry.index.0;
        if index != self.applied + 1 {
            return Err(format!(
                "node {} applies index {index} after {}",
                self.id, self.applied
            ));
        }
        let (term, digest) = print_of(entry);
        let Some(print) = self.view.get(index) else {
            return Err(format!(
                "node {} applies index {index} beyond its log",
                self.id
            ));
        };
        if print.term != term || print.entry != digest {
            return Err(format!(
                "node {} applies at index {index} an entry that is not the one in its log",
                self.id
            ));
        }
        let chain = print.chain;
        self.applied = index;
        let result = match entry.kind {
            EntryKind::Normal => {
                let command = Command::decode(&entry.data)
                    .ok_or_else(|| format!("undecodable command at index {index}"))?;
                let output = self.kv.apply(&command);
                Some((command, output))
            }
            _ => None,
        };
        Ok(Applied {
            index,
            chain,
            result,
        })
    }

    /// Installs a snapshot received from the leader, now that the writes before it are
    /// durable: the state machine, the log and the disk all restart from it.
    fn install(&mut self, meta: SnapshotMeta, data: Bytes) -> Result<(), String> {
        let (kv, view, index) = snapshot::decode(&data)?;
        if index != meta.index.0 {
            return Err(format!(
                "node {} received a snapshot at {} whose bytes cover {index}",
                self.id, meta.index
            ));
        }
        let node = self.node.as_mut().expect("the node is up");
        node.storage_mut()
            .apply_snapshot(meta.clone(), data.clone());
        node.on_snapshot_installed(meta.index)
            .map_err(|e| format!("on_snapshot_installed failed: {e}"))?;
        self.kv = kv;
        self.applied = index;
        self.disk.reset_to(index);
        self.installed.push((
            index,
            view.chain(index).expect("the view covers the snapshot"),
        ));
        self.durable = view.clone();
        self.view = view;
        self.durable_snapshot = Some((meta, data));
        Ok(())
    }

    /// Snapshots the state machine and compacts the log when the policy says so. The
    /// snapshot is written synchronously (it is durable at once).
    fn maybe_snapshot(&mut self) -> Result<(), String> {
        let Some(policy) = self.profile.snapshots else {
            return Ok(());
        };
        let node = self.node.as_mut().expect("the node is up");
        let stored = node
            .storage()
            .snapshot_meta()
            .map_err(|e| format!("snapshot_meta failed: {e}"))?
            .index
            .0;
        if self.applied < stored + policy.every {
            return Ok(());
        }
        let index = LogIndex(self.applied);
        let meta = node
            .prepare_snapshot(index)
            .map_err(|e| format!("prepare_snapshot failed: {e}"))?;
        let data = snapshot::encode(&self.kv, &self.view, self.applied);
        node.storage_mut()
            .create_snapshot(meta.clone(), data.clone());
        node.compact(index)
            .map_err(|e| format!("compact failed: {e}"))?;
        self.durable_snapshot = Some((meta, data));
        Ok(())
    }

    /// Crashes the node: the process and its writes in flight are gone.
    pub(crate) fn crash(&mut self) -> usize {
        self.node = None;
        self.after_persist.clear();
        self.disk.crash()
    }

    /// Starts the node from what its disk holds.
    pub(crate) fn restart(&mut self, seed: u64) -> Result<(), String> {
        assert!(self.node.is_none(), "restart of a running node");
        let mut storage = MemStorage::new(&self.voters);
        let mut kv = KvStore::default();
        let mut applied = 0;
        if let Some((meta, data)) = &self.durable_snapshot {
            storage.apply_snapshot(meta.clone(), data.clone());
            (kv, _, applied) = snapshot::decode(data)?;
        }
        let tail: Vec<Entry> = self
            .disk
            .log()
            .iter()
            .filter(|e| e.index.0 > applied)
            .cloned()
            .collect();
        storage.append(&tail);
        if let Some(hs) = self.disk.hard_state() {
            storage.set_hard_state(*hs);
        }
        let config = Config {
            id: self.id,
            ..self.profile.config.clone()
        };
        let node = RawNode::new(config, storage, seed)
            .map_err(|e| format!("node {} cannot start: {e}", self.id))?;
        self.node = Some(node);
        self.view = self.durable.clone();
        self.kv = kv;
        self.applied = applied;
        self.staging.clear();
        self.last_role = None;
        self.last_commit = 0;
        Ok(())
    }
}
