//! Costs of the sans-IO core: stepping one append of 64 entries, and a 3-node cluster in
//! one process (in-memory log and network, driven synchronously) at 1, 64 and 256
//! concurrent proposers.

use std::collections::VecDeque;
use std::hint::black_box;
use std::time::Duration;

use aegis_raft::{
    AppendEntries, Config, Entry, EntryKind, LogIndex, MemStorage, Message, Payload, RawNode, Role,
    Term,
};
use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

fn append_of_64() -> Message {
    let entries = (1..=64)
        .map(|i| Entry {
            term: Term(1),
            index: LogIndex(i),
            kind: EntryKind::Normal,
            data: Bytes::from(vec![7u8; 128]),
        })
        .collect();
    let payload = Payload::Append(AppendEntries {
        prev_log_index: LogIndex(0),
        prev_log_term: Term(0),
        entries,
        leader_commit: LogIndex(0),
    });
    Message {
        from: 1,
        to: 2,
        term: Term(1),
        payload,
    }
}

fn step_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("RawNode::step");
    group
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20);
    group.throughput(Throughput::Elements(64));
    let msg = append_of_64();
    group.bench_function("append_64_entries", |b| {
        b.iter_batched(
            || {
                (
                    RawNode::new(Config::new(2), MemStorage::new(&[1, 2, 3]), 7).unwrap(),
                    msg.clone(),
                )
            },
            |(mut node, msg)| {
                node.step(msg).unwrap();
                black_box(node.ready().unwrap())
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

/// Three nodes, an in-memory network and in-memory logs, driven round by round.
struct Cluster {
    nodes: Vec<RawNode<MemStorage>>,
    network: VecDeque<Message>,
}

impl Cluster {
    fn new() -> Cluster {
        let nodes = (1..=3)
            .map(|id| RawNode::new(Config::new(id), MemStorage::new(&[1, 2, 3]), id).unwrap())
            .collect();
        let mut cluster = Cluster {
            nodes,
            network: VecDeque::new(),
        };
        while cluster.nodes[0].role() != Role::Leader {
            cluster.nodes[0].tick().unwrap();
            cluster.round();
        }
        for _ in 0..10 {
            cluster.round();
        }
        cluster
    }

    /// Processes every node's Ready, then delivers every message; returns the number of
    /// client entries the leader applied.
    fn round(&mut self) -> usize {
        let mut applied = 0;
        for (at, node) in self.nodes.iter_mut().enumerate() {
            while node.has_ready() {
                let ready = node.ready().unwrap();
                self.network.extend(ready.messages.iter().cloned());
                node.storage_mut().append(&ready.entries);
                if let Some(hs) = ready.hard_state {
                    node.storage_mut().set_hard_state(hs);
                }
                node.on_persisted(ready.persist_ack()).unwrap();
                self.network.extend(ready.persisted_messages);
                if let Some(last) = ready.committed_entries.last() {
                    if at == 0 {
                        applied += ready
                            .committed_entries
                            .iter()
                            .filter(|e| e.kind == EntryKind::Normal)
                            .count();
                    }
                    node.on_applied(last.index);
                }
            }
        }
        while let Some(msg) = self.network.pop_front() {
            let to = msg.to as usize - 1;
            self.nodes[to].step(msg).unwrap();
        }
        applied
    }

    /// Runs `writes` proposals with `proposers` outstanding at any time.
    fn run(&mut self, writes: usize, proposers: usize) {
        let payload = Bytes::from(vec![1u8; 64]);
        let (mut issued, mut done) = (0, 0);
        while done < writes {
            while issued - done < proposers && issued < writes {
                self.nodes[0].propose(payload.clone()).unwrap();
                issued += 1;
            }
            done += self.round();
        }
    }
}

fn cluster_writes(c: &mut Criterion) {
    let mut group = c.benchmark_group("RawNode::cluster3_writes");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(10);
    const WRITES: usize = 10_000;
    group.throughput(Throughput::Elements(WRITES as u64));
    for proposers in [1, 64, 256] {
        group.bench_function(format!("proposers_{proposers}"), |b| {
            b.iter_batched(
                Cluster::new,
                |mut cluster| cluster.run(WRITES, proposers),
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, step_append, cluster_writes);
criterion_main!(benches);
