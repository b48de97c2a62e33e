//! Costs of the sans-IO core: stepping one append of 64 entries. Whole-cluster write
//! throughput is measured next to openraft in `aegis-bench` (`--bench raft`).

use std::hint::black_box;
use std::time::Duration;

use aegis_raft::{
    AppendEntries, Config, Entry, EntryKind, LogIndex, MemStorage, Message, Payload, RawNode, Term,
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

criterion_group!(benches, step_append);
criterion_main!(benches);
