//! A directed scenario for lease-based reads: a follower that backs the leader's lease
//! reboots and must not help elect another leader while that lease can still be used.

use std::collections::BTreeMap;

use aegis_raft::{Config, MemStorage, Message, NodeId, Payload, RawNode, ReadOnlyOption, Role};

fn config(id: NodeId) -> Config {
    let mut c = Config::new(id);
    c.read_only_option = ReadOnlyOption::LeaseBased;
    c
}

/// Three nodes with synchronous storage and a hand-driven network.
struct Cluster {
    nodes: BTreeMap<NodeId, RawNode<MemStorage>>,
    queue: Vec<Message>,
    /// Reads served: which node answered.
    reads: Vec<NodeId>,
}

impl Cluster {
    fn new() -> Self {
        let nodes = (1..=3)
            .map(|id| {
                let node = RawNode::new(config(id), MemStorage::new(&[1, 2, 3]), id * 7).unwrap();
                (id, node)
            })
            .collect();
        Self {
            nodes,
            queue: Vec::new(),
            reads: Vec::new(),
        }
    }

    fn drain(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).unwrap();
        while node.has_ready() {
            let ready = node.ready().unwrap();
            self.queue.extend(ready.messages.iter().cloned());
            node.storage_mut().append(&ready.entries);
            if let Some(hs) = ready.hard_state {
                node.storage_mut().set_hard_state(hs);
            }
            node.on_persisted(ready.persist_ack()).unwrap();
            self.queue.extend(ready.persisted_messages.iter().cloned());
            if let Some(last) = ready.committed_entries.last() {
                node.on_applied(last.index);
            }
            self.reads.extend(ready.read_states.iter().map(|_| id));
        }
    }

    fn drain_all(&mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            self.drain(id);
        }
    }

    /// Delivers until quiet; `lost` says which messages the network drops.
    fn deliver(&mut self, lost: &dyn Fn(&Message) -> bool) {
        for _ in 0..1000 {
            self.drain_all();
            if self.queue.is_empty() {
                return;
            }
            for message in std::mem::take(&mut self.queue) {
                if !lost(&message) {
                    self.nodes
                        .get_mut(&message.to)
                        .unwrap()
                        .step(message)
                        .unwrap();
                }
            }
        }
        panic!("the cluster never went quiet");
    }

    fn tick_all(&mut self) {
        for node in self.nodes.values_mut() {
            node.tick().unwrap();
        }
    }

    fn leader(&self) -> Option<NodeId> {
        self.nodes
            .iter()
            .find(|(_, n)| n.role() == Role::Leader)
            .map(|(&id, _)| id)
    }
}

#[test]
fn lease_read_survives_a_fast_follower_restart() {
    let mut c = Cluster::new();
    while c.leader().is_none() {
        c.tick_all();
        c.deliver(&|_| false);
    }
    let l = c.leader().unwrap();
    c.nodes.get_mut(&l).unwrap().propose("x=1".into()).unwrap();
    c.deliver(&|_| false);
    let followers: Vec<NodeId> = (1..=3).filter(|&id| id != l).collect();
    let (a, b) = (followers[0], followers[1]);

    // L and B cannot talk; A talks to both, so L keeps its lease through A.
    let cut = move |m: &Message| (m.from == l && m.to == b) || (m.from == b && m.to == l);
    let mut ticks = 0;
    loop {
        ticks += 1;
        assert!(ticks < 200, "B never campaigned");
        c.tick_all();
        c.drain_all();
        let b_campaigns = c.queue.iter().any(|m| {
            m.from == b && m.to == a && matches!(m.payload, Payload::PreVote(_) | Payload::Vote(_))
        });
        if b_campaigns {
            break;
        }
        c.deliver(&cut);
    }
    assert_eq!(c.nodes[&l].role(), Role::Leader);

    // A reboots at this instant; every write it made was durable. L's messages to A
    // are delayed past the election (the network may do that).
    let storage = c.nodes[&a].storage().clone();
    c.nodes
        .insert(a, RawNode::new(config(a), storage, 99).unwrap());
    let lossy =
        move |m: &Message| cut(m) || (m.from == l && m.to == a) || (m.from == a && m.to == l);
    c.deliver(&lossy);
    if c.nodes[&b].role() == Role::Leader {
        c.nodes.get_mut(&b).unwrap().propose("x=2".into()).unwrap();
        c.deliver(&lossy);
        assert!(c.nodes[&b].commit_index() > c.nodes[&l].commit_index());
    }

    // A client reads at L without any tick having passed.
    c.nodes.get_mut(&l).unwrap().read_index("r".into()).unwrap();
    c.deliver(&lossy);
    let stale = c.nodes[&b].role() == Role::Leader && c.reads.contains(&l);
    assert!(
        !stale,
        "L served a lease read at commit {} while B, leader of {}, committed up to {}",
        c.nodes[&l].commit_index(),
        c.nodes[&b].term(),
        c.nodes[&b].commit_index()
    );
}
