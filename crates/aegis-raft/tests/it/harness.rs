//! A small in-test cluster: nodes over `MemStorage`, a network queue that the test
//! delivers by hand, and writes that complete at once or when the test says so.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use aegis_raft::{
    Config, Entry, EntryKind, LogIndex, MemStorage, Message, NodeId, RawNode, ReadState, Ready,
    Role,
};

/// A Ready whose writes the test has not yet let complete.
struct PendingWrite {
    ready_entries: Vec<Entry>,
    hard_state: Option<aegis_raft::HardState>,
    persisted_messages: Vec<Message>,
    ack: aegis_raft::PersistAck,
}

pub struct Cluster {
    make_config: Box<dyn Fn(NodeId) -> Config>,
    restarts: u64,
    pub nodes: BTreeMap<NodeId, RawNode<MemStorage>>,
    /// Messages sent and not yet delivered.
    pub network: Vec<Message>,
    /// Links that drop messages, as (from, to).
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Nodes whose writes wait for `complete_writes`.
    pub slow_disk: BTreeSet<NodeId>,
    pending_writes: BTreeMap<NodeId, VecDeque<PendingWrite>>,
    pub applied: BTreeMap<NodeId, Vec<Entry>>,
    pub read_states: BTreeMap<NodeId, Vec<ReadState>>,
}

pub fn config(id: NodeId) -> Config {
    Config::new(id)
}

impl Cluster {
    pub fn new(size: u64) -> Cluster {
        Cluster::with_config(size, config)
    }

    pub fn with_config(size: u64, make: impl Fn(NodeId) -> Config + 'static) -> Cluster {
        let ids: Vec<NodeId> = (1..=size).collect();
        let storages = ids.iter().map(|&id| (id, MemStorage::new(&ids))).collect();
        Cluster::with_storages(storages, make)
    }

    pub fn with_storages(
        storages: BTreeMap<NodeId, MemStorage>,
        make: impl Fn(NodeId) -> Config + 'static,
    ) -> Cluster {
        let nodes = storages
            .into_iter()
            .map(|(id, storage)| {
                (
                    id,
                    RawNode::new(make(id), storage, 1000 + id).expect("valid node"),
                )
            })
            .collect();
        Cluster {
            make_config: Box::new(make),
            restarts: 0,
            nodes,
            network: Vec::new(),
            cut: BTreeSet::new(),
            slow_disk: BTreeSet::new(),
            pending_writes: BTreeMap::new(),
            applied: BTreeMap::new(),
            read_states: BTreeMap::new(),
        }
    }

    pub fn node(&self, id: NodeId) -> &RawNode<MemStorage> {
        &self.nodes[&id]
    }

    pub fn node_mut(&mut self, id: NodeId) -> &mut RawNode<MemStorage> {
        self.nodes.get_mut(&id).expect("node exists")
    }

    /// Drains every node's Ready into the network, storage and applied lists.
    pub fn process(&mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            while self.nodes[&id].has_ready() {
                let ready = self.node_mut(id).ready().expect("ready");
                self.handle_ready(id, ready);
            }
        }
    }

    fn handle_ready(&mut self, id: NodeId, ready: Ready) {
        self.network.extend(ready.messages.iter().cloned());
        let write = PendingWrite {
            ready_entries: ready.entries.clone(),
            hard_state: ready.hard_state,
            persisted_messages: ready.persisted_messages.clone(),
            ack: ready.persist_ack(),
        };
        self.pending_writes.entry(id).or_default().push_back(write);
        if !self.slow_disk.contains(&id) {
            self.complete_writes(id);
        }
        for entry in &ready.committed_entries {
            self.applied.entry(id).or_default().push(entry.clone());
        }
        if let Some(last) = ready.committed_entries.last() {
            self.node_mut(id).on_applied(last.index);
        }
        self.read_states
            .entry(id)
            .or_default()
            .extend(ready.read_states);
    }

    /// Lets every write `id` has started complete, in order.
    pub fn complete_writes(&mut self, id: NodeId) {
        let writes: Vec<PendingWrite> = self
            .pending_writes
            .entry(id)
            .or_default()
            .drain(..)
            .collect();
        for write in writes {
            let node = self.nodes.get_mut(&id).expect("node exists");
            node.storage_mut().append(&write.ready_entries);
            if let Some(hs) = write.hard_state {
                node.storage_mut().set_hard_state(hs);
            }
            node.on_persisted(write.ack).expect("persisted");
            self.network.extend(write.persisted_messages);
        }
    }

    /// Crashes `id` and restarts it from what its storage holds: writes still pending are
    /// lost, and its state machine starts empty (every committed entry is applied again).
    pub fn crash_and_restart(&mut self, id: NodeId) {
        self.pending_writes.remove(&id);
        self.applied.remove(&id);
        self.read_states.remove(&id);
        self.restarts += 1;
        let storage = self.node(id).storage().clone();
        let node =
            RawNode::new((self.make_config)(id), storage, 5000 + self.restarts).expect("restart");
        self.nodes.insert(id, node);
    }

    /// Takes the undelivered messages (after processing every Ready).
    pub fn take_messages(&mut self) -> Vec<Message> {
        self.process();
        std::mem::take(&mut self.network)
    }

    /// Delivers one message, unless its link is cut.
    pub fn deliver(&mut self, msg: Message) {
        if self.cut.contains(&(msg.from, msg.to)) {
            return;
        }
        let to = msg.to;
        match self.node_mut(to).step(msg) {
            // A node refuses strangers (such as a removed node that never learned it was
            // removed): the message is simply lost.
            Ok(()) | Err(aegis_raft::StepError::UnknownSender { .. }) => {}
            Err(e) => panic!("step: {e}"),
        }
    }

    /// Delivers messages until the network is quiet.
    pub fn settle(&mut self) {
        for _ in 0..1000 {
            let msgs = self.take_messages();
            if msgs.is_empty() {
                return;
            }
            for msg in msgs {
                self.deliver(msg);
            }
        }
        panic!("the cluster did not settle");
    }

    pub fn tick(&mut self, id: NodeId) {
        self.node_mut(id).tick().expect("tick");
    }

    pub fn tick_all(&mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            self.tick(id);
        }
    }

    /// Ticks `id` alone until it starts campaigning, then settles the network.
    pub fn elect(&mut self, id: NodeId) {
        for _ in 0..1000 {
            if self.node(id).role() != Role::Follower {
                break;
            }
            self.tick(id);
        }
        self.settle();
        assert_eq!(
            self.node(id).role(),
            Role::Leader,
            "node {id} should have won"
        );
    }

    /// Makes `id` campaign at once, as the target of a leadership transfer does, without
    /// settling. The other voters grant it their votes even while they still hear from
    /// the old leader, which makes them ignore an ordinary campaign for
    /// `election_timeout_ticks_min` ticks.
    pub fn campaign_now(&mut self, id: NodeId) {
        let from = *self
            .nodes
            .keys()
            .find(|&&n| n != id)
            .expect("a second node");
        let term = self.node(id).term();
        let timeout_now = Message {
            from,
            to: id,
            term,
            payload: aegis_raft::Payload::TimeoutNow,
        };
        self.node_mut(id).step(timeout_now).expect("step");
        assert_eq!(self.node(id).role(), Role::Candidate, "node {id} campaigns");
    }

    /// Deposes whoever leads in favour of `id`: [`Cluster::campaign_now`], then settles.
    pub fn elect_now(&mut self, id: NodeId) {
        self.campaign_now(id);
        self.settle();
        assert_eq!(
            self.node(id).role(),
            Role::Leader,
            "node {id} should have won"
        );
    }

    pub fn isolate(&mut self, id: NodeId) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for other in ids {
            if other != id {
                self.cut.insert((id, other));
                self.cut.insert((other, id));
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    pub fn leaders(&self) -> Vec<NodeId> {
        self.nodes
            .values()
            .filter(|n| n.role() == Role::Leader)
            .map(|n| n.id())
            .collect()
    }

    /// The data of the normal entries `id` applied.
    pub fn applied_data(&self, id: NodeId) -> Vec<Vec<u8>> {
        self.applied
            .get(&id)
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e.kind == EntryKind::Normal)
                    .map(|e| e.data.to_vec())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every node's full log (index, term) pairs.
    pub fn log_terms(&self, id: NodeId) -> Vec<(u64, u64)> {
        let node = self.node(id);
        let last = node.last_index().expect("last index");
        node.entries(LogIndex(1), last.next(), u64::MAX)
            .expect("entries")
            .iter()
            .map(|e| (e.index.0, e.term.0))
            .collect()
    }
}

/// An entry for building logs by hand.
pub fn entry(index: u64, term: u64) -> Entry {
    Entry {
        term: aegis_raft::Term(term),
        index: LogIndex(index),
        kind: EntryKind::Normal,
        data: Default::default(),
    }
}
