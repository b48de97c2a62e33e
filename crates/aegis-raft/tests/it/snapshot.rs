//! Snapshots and log compaction: a follower whose entries were compacted away catches up
//! by a chunked, acknowledged, resumable snapshot stream, installs it atomically, and the
//! stream gives way to heartbeats, elections and leadership changes.

use std::collections::BTreeMap;

use aegis_raft::{
    Config, EntryKind, LogIndex, MemStorage, Message, NodeId, Payload, ProgressState, RawNode,
    Role, SnapshotChunkMessage, SnapshotError, SnapshotMeta, Storage, Term,
};
use bytes::Bytes;

/// The test state machine: the data of every normal entry applied, in order.
#[derive(Default, Clone, Debug, PartialEq, Eq)]
struct State(Vec<Bytes>);

impl State {
    fn encode(&self) -> Bytes {
        let mut out = Vec::new();
        for item in &self.0 {
            out.extend_from_slice(&(item.len() as u32).to_le_bytes());
            out.extend_from_slice(item);
        }
        out.into()
    }

    fn decode(mut bytes: &[u8]) -> State {
        let mut items = Vec::new();
        while !bytes.is_empty() {
            let len = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
            items.push(Bytes::copy_from_slice(&bytes[4..4 + len]));
            bytes = &bytes[4 + len..];
        }
        State(items)
    }
}

struct Node {
    raw: RawNode<MemStorage>,
    state: State,
    applied: LogIndex,
    staging: Vec<u8>,
    /// Chunks at offset 0 handed out: each starts a new staging area.
    starts: usize,
    installs: usize,
}

/// A cluster whose writes complete at once and whose network the test drives by hand.
struct Snaps {
    make_config: Box<dyn Fn(NodeId) -> Config>,
    nodes: BTreeMap<NodeId, Node>,
    network: Vec<Message>,
    /// Messages for which this returns true are dropped.
    drop: Box<dyn FnMut(&Message) -> bool>,
    /// Every snapshot chunk delivered: (from, to, offset).
    chunks_seen: Vec<(NodeId, NodeId, u64)>,
}

fn config(id: NodeId) -> Config {
    Config {
        snapshot_chunk_bytes_max: 64,
        snapshot_inflight_chunks_max: 4,
        compaction_tail_entries: 0,
        ..Config::new(id)
    }
}

impl Snaps {
    fn new(size: u64, make: impl Fn(NodeId) -> Config + 'static) -> Snaps {
        let ids: Vec<NodeId> = (1..=size).collect();
        let nodes = ids
            .iter()
            .map(|&id| {
                let raw = RawNode::new(make(id), MemStorage::new(&ids), 700 + id).unwrap();
                let node = Node {
                    raw,
                    state: State::default(),
                    applied: LogIndex(0),
                    staging: Vec::new(),
                    starts: 0,
                    installs: 0,
                };
                (id, node)
            })
            .collect();
        Snaps {
            make_config: Box::new(make),
            nodes,
            network: Vec::new(),
            drop: Box::new(|_| false),
            chunks_seen: Vec::new(),
        }
    }

    fn raw(&self, id: NodeId) -> &RawNode<MemStorage> {
        &self.nodes[&id].raw
    }

    fn raw_mut(&mut self, id: NodeId) -> &mut RawNode<MemStorage> {
        &mut self.nodes.get_mut(&id).unwrap().raw
    }

    /// Drains every Ready of `id`, following the driving loop of the crate docs.
    fn drive(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).unwrap();
        while node.raw.has_ready() {
            let ready = node.raw.ready().unwrap();
            self.network.extend(ready.messages.iter().cloned());
            for chunk in &ready.snapshot_chunks {
                if chunk.offset == 0 {
                    node.staging.clear();
                    node.starts += 1;
                }
                assert_eq!(
                    chunk.offset,
                    node.staging.len() as u64,
                    "chunks arrive in order"
                );
                node.staging.extend_from_slice(&chunk.data);
            }
            node.raw.storage_mut().append(&ready.entries);
            if let Some(hs) = ready.hard_state {
                node.raw.storage_mut().set_hard_state(hs);
            }
            if let Some(meta) = &ready.snapshot {
                let data = Bytes::from(std::mem::take(&mut node.staging));
                node.state = State::decode(&data);
                node.applied = meta.index;
                node.installs += 1;
                node.raw.storage_mut().apply_snapshot(meta.clone(), data);
                node.raw.on_snapshot_installed(meta.index).unwrap();
            }
            node.raw.on_persisted(ready.persist_ack()).unwrap();
            self.network.extend(ready.persisted_messages);
            for entry in &ready.committed_entries {
                assert_eq!(
                    entry.index,
                    node.applied.next(),
                    "no entry applied twice or skipped"
                );
                node.applied = entry.index;
                if entry.kind == EntryKind::Normal {
                    node.state.0.push(entry.data.clone());
                }
            }
            if let Some(last) = ready.committed_entries.last() {
                node.raw.on_applied(last.index);
            }
        }
    }

    fn drive_all(&mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            self.drive(id);
        }
    }

    /// Delivers what is on the network now (one hop), dropping what `drop` selects.
    fn deliver_round(&mut self) {
        self.drive_all();
        let msgs = std::mem::take(&mut self.network);
        for msg in msgs {
            if (self.drop)(&msg) {
                continue;
            }
            if let Payload::Snapshot(chunk) = &msg.payload {
                self.chunks_seen.push((msg.from, msg.to, chunk.offset));
            }
            let to = msg.to;
            self.raw_mut(to).step(msg).unwrap();
            self.drive(to);
        }
    }

    fn settle(&mut self) {
        for _ in 0..10_000 {
            self.drive_all();
            if self.network.is_empty() {
                return;
            }
            self.deliver_round();
        }
        panic!("the cluster did not settle");
    }

    fn tick_all(&mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            self.raw_mut(id).tick().unwrap();
        }
    }

    fn elect(&mut self, id: NodeId) {
        while self.raw(id).role() == Role::Follower {
            self.raw_mut(id).tick().unwrap();
        }
        self.settle();
        assert_eq!(self.raw(id).role(), Role::Leader);
    }

    fn propose(&mut self, leader: NodeId, count: usize) {
        for i in 0..count {
            let data = Bytes::from(format!("command {i} from {leader} padded to be longer"));
            self.raw_mut(leader).propose(data).unwrap();
            self.settle();
        }
    }

    /// `id` snapshots its state machine at its applied index and compacts the log.
    fn snapshot_and_compact(&mut self, id: NodeId) -> LogIndex {
        let node = self.nodes.get_mut(&id).unwrap();
        let meta = node.raw.prepare_snapshot(node.applied).unwrap();
        node.raw
            .storage_mut()
            .create_snapshot(meta.clone(), node.state.encode());
        node.raw.compact(meta.index).unwrap()
    }

    fn isolate(&mut self, id: NodeId) {
        self.drop = Box::new(move |m| m.from == id || m.to == id);
    }

    fn heal(&mut self) {
        self.drop = Box::new(|_| false);
    }

    fn peer_state(&self, leader: NodeId, peer: NodeId) -> (ProgressState, LogIndex) {
        let status = self.raw(leader).status().unwrap();
        let p = status.peers.iter().find(|p| p.id == peer).unwrap();
        (p.state, p.match_index)
    }

    /// Ticks and delivers one hop per tick until `id` applied `index`.
    fn run_until_applied(&mut self, id: NodeId, index: LogIndex, ticks_max: usize) -> usize {
        for tick in 0..ticks_max {
            if self.nodes[&id].applied >= index {
                return tick;
            }
            self.tick_all();
            self.deliver_round();
        }
        panic!(
            "node {id} applied only {} of {index} in {ticks_max} ticks",
            self.nodes[&id].applied
        );
    }
}

/// A three-node group where node 3 missed 40 entries that the others compacted away.
fn lagging_third_node() -> Snaps {
    lagging_third_node_with(config)
}

fn lagging_third_node_with(make: impl Fn(NodeId) -> Config + 'static) -> Snaps {
    let mut c = Snaps::new(3, make);
    c.elect(1);
    c.isolate(3);
    c.propose(1, 40);
    assert_eq!(c.snapshot_and_compact(1), LogIndex(41));
    c.snapshot_and_compact(2);
    assert!(matches!(
        c.raw(1).entries(LogIndex(5), LogIndex(6), u64::MAX),
        Err(aegis_raft::StorageError::Compacted { .. })
    ));
    c.heal();
    c
}

#[test]
fn a_lagging_follower_catches_up_by_snapshot_after_compaction() {
    let mut c = lagging_third_node();
    c.propose(1, 2);
    c.run_until_applied(3, LogIndex(43), 200);
    assert_eq!(c.nodes[&3].state, c.nodes[&1].state);
    assert_eq!(c.nodes[&3].installs, 1);
    assert_eq!(c.raw(3).storage().first_index().unwrap(), LogIndex(42));
    assert_eq!(c.raw(3).commit_index(), LogIndex(43));
    let chunks = c.chunks_seen.iter().filter(|&&(_, to, _)| to == 3).count();
    assert!(
        chunks > 10,
        "{chunks} chunks: the snapshot is streamed in pieces"
    );
    c.settle();
    assert_eq!(c.peer_state(1, 3), (ProgressState::Replicate, LogIndex(43)));
    // Replication continues by entries.
    c.propose(1, 1);
    assert_eq!(c.nodes[&3].applied, LogIndex(44));
}

#[test]
fn a_lost_chunk_is_resent_and_the_stream_resumes_from_the_followers_offset() {
    let mut c = lagging_third_node();
    let mut dropped = None;
    c.drop = Box::new(move |m| {
        if let Payload::Snapshot(chunk) = &m.payload
            && chunk.offset > 0
            && dropped.is_none()
        {
            dropped = Some(chunk.offset);
            return true;
        }
        false
    });
    c.propose(1, 1);
    c.run_until_applied(3, LogIndex(42), 300);
    assert_eq!(c.nodes[&3].state, c.nodes[&1].state);
    let starts = c
        .chunks_seen
        .iter()
        .filter(|&&(_, to, offset)| to == 3 && offset == 0)
        .count();
    assert_eq!(starts, 1, "the stream resumed instead of starting over");
    let lost = c
        .chunks_seen
        .iter()
        .filter(|&&(_, to, _)| to == 3)
        .map(|&(_, _, offset)| offset)
        .find(|&offset| offset > 0)
        .expect("a second chunk");
    let deliveries = c
        .chunks_seen
        .iter()
        .filter(|&&(_, to, offset)| to == 3 && offset == lost + 64)
        .count();
    assert!(deliveries >= 1);
    assert_eq!(c.nodes[&3].installs, 1);
}

#[test]
fn a_leadership_change_cancels_the_stream_and_the_new_leader_starts_its_own() {
    let mut c = lagging_third_node();
    // Let node 1 send the first few chunks, then cut it off.
    while c.chunks_seen.is_empty() {
        c.tick_all();
        c.deliver_round();
    }
    c.deliver_round();
    let from_one = c
        .chunks_seen
        .iter()
        .filter(|&&(from, _, _)| from == 1)
        .count();
    assert!(from_one > 0 && c.nodes[&3].installs == 0);
    c.isolate(1);
    // Node 1 notices it lost its quorum and steps down: its stream is gone.
    for _ in 0..40 {
        c.raw_mut(1).tick().unwrap();
        c.drive(1);
    }
    assert_ne!(c.raw(1).role(), Role::Leader);
    assert!(c.raw(1).status().unwrap().peers.is_empty());
    c.network.clear();
    c.drop = Box::new(|m| m.from == 1 || m.to == 1);
    for _ in 0..500 {
        if c.raw(2).role() == Role::Leader {
            break;
        }
        c.raw_mut(2).tick().unwrap();
        c.raw_mut(3).tick().unwrap();
        c.deliver_round();
    }
    assert_eq!(c.raw(2).role(), Role::Leader);
    let target = c.raw(2).last_index().unwrap();
    c.run_until_applied(3, target, 400);
    assert_eq!(c.nodes[&3].installs, 1);
    assert!(
        c.chunks_seen
            .iter()
            .any(|&(from, to, offset)| from == 2 && to == 3 && offset == 0),
        "the new leader streams its own snapshot from the start"
    );
    assert_eq!(
        c.nodes[&3].starts, 2,
        "the partial copy from node 1 was dropped for node 2's snapshot"
    );
    assert_eq!(c.nodes[&3].state, c.nodes[&2].state);
    c.heal();
    for _ in 0..10 {
        c.tick_all();
        c.deliver_round();
    }
    assert_eq!(c.nodes[&1].state, c.nodes[&2].state);
}

#[test]
fn heartbeats_and_leadership_continue_while_a_long_snapshot_streams() {
    let mut c = Snaps::new(3, |id| Config {
        snapshot_chunk_bytes_max: 16,
        snapshot_inflight_chunks_max: 1,
        ..config(id)
    });
    c.elect(1);
    c.isolate(3);
    c.propose(1, 40);
    c.snapshot_and_compact(1);
    c.snapshot_and_compact(2);
    c.heal();
    let term = c.raw(1).term();
    let size = c.raw(1).storage().snapshot().unwrap().1.len();
    let ticks = c.run_until_applied(3, LogIndex(41), 2_000);
    let max_timeout = c.raw(3).config().election_timeout_ticks_max as usize;
    assert!(
        ticks > 2 * max_timeout,
        "a stream of {size} bytes took {ticks} ticks: longer than an election timeout"
    );
    assert_eq!(c.raw(1).term(), term, "no election happened meanwhile");
    assert_eq!(c.raw(3).term(), term);
    assert_eq!(c.raw(1).role(), Role::Leader);
    assert_eq!(c.nodes[&3].state, c.nodes[&1].state);
}

#[test]
fn a_snapshot_at_or_below_the_commit_index_is_acknowledged_and_ignored() {
    let mut c = Snaps::new(3, config);
    c.elect(1);
    c.propose(1, 5);
    let commit = c.raw(3).commit_index();
    let stale = Message {
        from: 1,
        to: 3,
        term: c.raw(1).term(),
        payload: Payload::Snapshot(SnapshotChunkMessage {
            meta: SnapshotMeta {
                index: LogIndex(3),
                term: c.raw(1).term(),
                conf_state: aegis_raft::ConfState::with_voters(&[1, 2, 3]),
            },
            offset: 0,
            data: Bytes::from_static(b"old"),
            last: true,
        }),
    };
    c.raw_mut(3).step(stale).unwrap();
    let ready = c.raw_mut(3).ready().unwrap();
    assert!(ready.snapshot_chunks.is_empty() && ready.snapshot.is_none());
    assert!(ready.messages.iter().any(|m| matches!(
        m.payload,
        Payload::AppendResponse(aegis_raft::AppendResponse::Accepted { match_index }) if match_index == commit
    )));
    assert_eq!(c.raw(3).commit_index(), commit);
}

#[test]
fn compaction_refuses_indexes_above_applied_or_beyond_the_snapshot_and_keeps_the_tail() {
    let mut c = Snaps::new(1, |id| Config {
        compaction_tail_entries: 5,
        ..config(id)
    });
    c.elect(1);
    c.propose(1, 20);
    let applied = c.nodes[&1].applied;
    assert_eq!(applied, LogIndex(21));
    assert!(matches!(
        c.raw(1).prepare_snapshot(LogIndex(22)),
        Err(SnapshotError::AboveApplied { .. })
    ));
    assert!(matches!(
        c.raw_mut(1).compact(LogIndex(22)),
        Err(SnapshotError::AboveApplied {
            index: LogIndex(22),
            applied: LogIndex(21)
        })
    ));
    assert!(matches!(
        c.raw_mut(1).compact(LogIndex(10)),
        Err(SnapshotError::NotCoveredBySnapshot {
            snapshot_index: LogIndex(0),
            ..
        })
    ));
    let boundary = c.snapshot_and_compact(1);
    assert_eq!(
        boundary,
        LogIndex(16),
        "five entries stay behind the applied index"
    );
    assert_eq!(c.raw(1).storage().first_index().unwrap(), LogIndex(17));
    assert_eq!(
        c.raw(1).storage().snapshot_meta().unwrap().index,
        LogIndex(21)
    );
    // Nothing more to drop until more is applied.
    assert_eq!(c.raw_mut(1).compact(LogIndex(21)).unwrap(), LogIndex(16));
}

#[test]
fn a_node_restarts_from_its_snapshot_plus_the_tail_of_the_log() {
    let mut c = Snaps::new(3, |id| Config {
        compaction_tail_entries: 4,
        ..config(id)
    });
    c.elect(1);
    c.propose(1, 12);
    c.snapshot_and_compact(2);
    c.propose(1, 3);
    let storage = c.raw(2).storage().clone();
    let (meta, data) = storage.snapshot().unwrap();
    assert_eq!(meta.index, LogIndex(13));
    assert_eq!(storage.first_index().unwrap(), LogIndex(10));
    let mut state = State::decode(data);
    let make = &c.make_config;
    let mut raw = RawNode::new(make(2), storage.clone(), 99).unwrap();
    assert_eq!(raw.status().unwrap().applied, LogIndex(13));
    assert_eq!(raw.commit_index(), LogIndex(16));
    let ready = raw.ready().unwrap();
    let indexes: Vec<u64> = ready.committed_entries.iter().map(|e| e.index.0).collect();
    assert_eq!(
        indexes,
        vec![14, 15, 16],
        "only what the snapshot does not cover"
    );
    for entry in &ready.committed_entries {
        state.0.push(entry.data.clone());
    }
    assert_eq!(state, c.nodes[&1].state);
    assert_eq!(raw.term(), c.raw(1).term());
    assert!(raw.entry_term(LogIndex(9)).unwrap().is_some());
    assert_eq!(raw.entry_term(LogIndex(8)).unwrap(), None, "compacted");
    let _ = Term(0);
}

#[test]
fn the_same_leader_in_a_newer_term_resumes_where_the_follower_stopped() {
    let mut c = lagging_third_node_with(|id| Config {
        pre_vote: false,
        check_quorum: false,
        ..config(id)
    });
    while c.chunks_seen.len() < 6 {
        c.tick_all();
        c.deliver_round();
    }
    let held = c.nodes[&3].staging.len();
    assert!(held > 0 && c.nodes[&3].installs == 0);
    // Node 3 drops off; node 1 hears of a newer term, steps down and is elected again.
    c.isolate(3);
    c.network.clear();
    let term = c.raw(1).term();
    let newer = Message {
        from: 2,
        to: 1,
        term: Term(term.0 + 1),
        payload: Payload::HeartbeatResponse(aegis_raft::HeartbeatResponse {
            seq: 0,
            last_index: LogIndex(0),
        }),
    };
    c.raw_mut(1).step(newer).unwrap();
    assert_eq!(c.raw(1).role(), Role::Follower);
    // Node 2 still hears node 1 as its leader and would ignore an ordinary campaign for
    // a while: node 1 campaigns as a transfer target does.
    let timeout_now = Message {
        from: 2,
        to: 1,
        term: c.raw(1).term(),
        payload: Payload::TimeoutNow,
    };
    c.raw_mut(1).step(timeout_now).unwrap();
    for _ in 0..500 {
        if c.raw(1).role() == Role::Leader {
            break;
        }
        c.deliver_round();
    }
    assert_eq!(c.raw(1).role(), Role::Leader);
    assert!(c.raw(1).term() > term);
    c.chunks_seen.clear();
    c.heal();
    c.run_until_applied(3, LogIndex(41), 400);
    assert_eq!(c.nodes[&3].installs, 1);
    assert_eq!(c.nodes[&3].state, c.nodes[&1].state);
    // The new term's stream may offer offset 0 again, but the follower keeps its bytes
    // and the leader continues from them: no byte below `held` is staged twice.
    let resent_below: usize = c
        .chunks_seen
        .iter()
        .filter(|&&(from, to, offset)| from == 1 && to == 3 && offset > 0 && offset < held as u64)
        .count();
    assert_eq!(resent_below, 0, "the stream resumed at byte {held}");
    assert_eq!(
        c.nodes[&3].starts, 1,
        "the follower staged from the start only once"
    );
}

#[test]
fn a_learner_added_after_compaction_joins_by_snapshot() {
    let mut c = Snaps::new(3, config);
    // Node 4 joins a running group: its storage knows no configuration at all.
    let joiner = RawNode::new(
        config(4),
        MemStorage::with_conf_state(aegis_raft::ConfState::default()),
        704,
    )
    .unwrap();
    c.nodes.insert(
        4,
        Node {
            raw: joiner,
            state: State::default(),
            applied: LogIndex(0),
            staging: Vec::new(),
            starts: 0,
            installs: 0,
        },
    );
    c.elect(1);
    c.propose(1, 30);
    let snapshot = c.snapshot_and_compact(1);
    let added = c.raw_mut(1).add_learner(4).unwrap();
    assert!(added > snapshot, "the change comes after the snapshot");
    c.propose(1, 1);
    // Every message the leader sends the joiner is accepted although the joiner's
    // configuration does not name the leader: the harness unwraps each step.
    c.run_until_applied(4, added.next(), 200);
    assert_eq!(c.nodes[&4].installs, 1);
    assert_eq!(c.nodes[&4].state, c.nodes[&1].state);
    assert!(c.raw(4).conf_state().is_learner(4));
    assert!(!c.raw(4).conf_state().is_voter(4));
    // The learner is caught up, so it can be promoted and then counts as a voter.
    c.settle();
    c.raw_mut(1).promote_learner(4).unwrap();
    c.settle();
    assert!(c.raw(4).conf_state().is_voter(4));
    assert_eq!(c.raw(1).conf_state(), c.raw(4).conf_state());
}

#[test]
fn a_snapshot_records_the_configuration_as_of_its_index() {
    let mut c = Snaps::new(3, config);
    c.elect(1);
    c.propose(1, 3);
    let before = c.nodes[&1].applied;
    // The learner itself is not running; what the leader sends it is lost.
    c.isolate(4);
    c.raw_mut(1).add_learner(4).unwrap();
    c.settle();
    c.propose(1, 1);
    let after = c.nodes[&1].applied;
    let old = c.raw(1).prepare_snapshot(before).unwrap();
    assert!(old.conf_state.learners.is_empty());
    assert_eq!(old.conf_state.voters, vec![1, 2, 3]);
    let new = c.raw(1).prepare_snapshot(after).unwrap();
    assert_eq!(new.conf_state.learners, vec![4]);
    assert_eq!(new.conf_state.voters, vec![1, 2, 3]);
}
