//! The node's apply path, as the cluster's applier thread drives it: encoded log entries
//! in, [`KvApplier::apply_batch`] (decoding, applying into the in-memory buffer, flushing
//! it to redb beside applying, encoding each result) and out.
//!
//! Each entry is a `SET` of a 100-byte value to one of 100,000 keys drawn at random, the
//! shape of `redis-benchmark -t set -r 100000 -d 100`. Runs of 20 entries are what a
//! 3-node cluster commits at a time under 50 clients; runs of 320 are what it commits
//! with pipelining. The store lives in a temporary directory, with the node's default
//! buffer (65,536 keys).
//!
//! Two figures per run length, both processor time rather than wall-clock time: the
//! applier thread's own, and the whole process's, which adds the flush threads' work
//! (writing the buffer into redb). Wall-clock time would mostly measure redb: applies
//! outrun flushes here, so the applier ends up waiting for them, which in a node, where
//! consensus paces applies, it does not.

use std::sync::Arc;
use std::time::Duration;

use aegis_cluster::runtime::StateMachine;
use aegis_node::store::{KvStateMachine, StoreOptions};
use aegis_node::{Command, KvApplier, LogEntry, SetCondition};
use aegis_raft::LogIndex;
use bytes::Bytes;
use cpu_time::{ProcessTime, ThreadTime};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const KEYS: u64 = 100_000;
const VALUE_BYTES: usize = 100;
/// Distinct encoded entries, cycled through (enough to cover several flushes' worth of
/// keys without holding a log's worth of entries in memory).
const ENTRIES: usize = 1 << 18;

/// `ENTRIES` encoded `SET`s to keys drawn from `KEYS` with a fixed seed.
fn entries() -> Vec<Bytes> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let value = vec![b'x'; VALUE_BYTES];
    (0..ENTRIES)
        .map(|_| {
            // xorshift64*: any fixed sequence of keys will do.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let n = state.wrapping_mul(0x2545_f491_4f6c_dd1d) % KEYS;
            let entry = LogEntry {
                now_ms: 1_700_000_000_000,
                command: Command::Set {
                    key: format!("key:{n:012}").into_bytes(),
                    value: value.clone(),
                    expire_at_ms: None,
                    condition: SetCondition::Always,
                },
            };
            Bytes::from(entry.encode())
        })
        .collect()
}

/// A fresh store and the entries to apply to it, in runs.
struct Applying {
    _dir: tempfile::TempDir,
    applier: KvApplier,
    entries: Vec<Bytes>,
    next: usize,
    index: u64,
}

impl Applying {
    fn new(entries: &[Bytes]) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = KvStateMachine::open(
            &dir.path().join("state.redb"),
            StoreOptions {
                sync_writes: false,
                ..StoreOptions::default()
            },
        )
        .expect("open the store");
        Self {
            _dir: dir,
            applier: KvApplier::new(Arc::new(store)),
            entries: entries.to_vec(),
            next: 0,
            index: 0,
        }
    }

    fn apply_runs(&mut self, runs: u64, run: usize) {
        let mut batch = Vec::with_capacity(run);
        for _ in 0..runs {
            batch.clear();
            for _ in 0..run {
                self.index += 1;
                batch.push((LogIndex(self.index), self.entries[self.next].clone()));
                self.next = (self.next + 1) % self.entries.len();
            }
            let results = self.applier.apply_batch(&batch);
            assert_eq!(results.len(), run, "one result per entry");
        }
    }
}

/// Processor time, of one thread or the whole process, spent in `work`.
type Clock = fn(&mut dyn FnMut()) -> Duration;

fn thread_cpu(work: &mut dyn FnMut()) -> Duration {
    let start = ThreadTime::now();
    work();
    start.elapsed()
}

fn process_cpu(work: &mut dyn FnMut()) -> Duration {
    let start = ProcessTime::now();
    work();
    start.elapsed()
}

fn apply(c: &mut Criterion) {
    let entries = entries();
    let mut group = c.benchmark_group("apply_set");
    group.measurement_time(Duration::from_secs(8));
    for run in [20_usize, 320] {
        group.throughput(Throughput::Elements(run as u64));
        let clocks: [(&str, Clock); 2] =
            [("applier_cpu", thread_cpu), ("process_cpu", process_cpu)];
        for (name, clock) in clocks {
            let mut applying = Applying::new(&entries);
            group.bench_function(BenchmarkId::new(name, run), |b| {
                b.iter_custom(|runs| clock(&mut || applying.apply_runs(runs, run)));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, apply);
criterion_main!(benches);
