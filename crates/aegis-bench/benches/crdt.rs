//! aegis-crdt against `crdts` 7.3 on the same inputs in the same run: OR-Set with 100k
//! adds, merge of two 100k-element OR-Sets overlapping by half, `GCounter` merge at 100
//! and 1000 replicas. Before the timings, the binary prints serialized (postcard) and
//! live heap bytes per element of a 100k-element set, counted by a global allocator
//! that wraps the system one.

use std::alloc::System;
use std::hint::black_box;
use std::time::Duration;

use aegis_bench::SplitMix64;
use aegis_crdt::{GCounter, ORSet, codec};
use crdts::{CmRDT, CvRDT, Orswot};
use criterion::{BatchSize, BenchmarkId, Criterion};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const SET_ELEMENTS: usize = 100_000;

/// Random keys: `0..n` for replica 1 and `n/2..n/2+n` for replica 2 share exactly half.
fn keys(count: usize) -> Vec<u64> {
    let mut rng = SplitMix64::new(0xc0ff_ee00);
    (0..count).map(|_| rng.next_u64()).collect()
}

fn ours_set(node: u64, keys: &[u64]) -> ORSet<u64> {
    let mut s = ORSet::new(node);
    for &k in keys {
        s.add(k);
    }
    s
}

fn peer_set(actor: u64, keys: &[u64]) -> Orswot<u64, u64> {
    let mut s = Orswot::new();
    for &k in keys {
        let op = s.add(k, s.read_ctx().derive_add_ctx(actor));
        s.apply(op);
    }
    s
}

/// Live heap bytes held by the value `build` returns.
fn heap_bytes<T>(build: impl FnOnce() -> T) -> (T, isize) {
    let region = Region::new(GLOBAL);
    let value = build();
    let stats = region.change();
    let live =
        stats.bytes_allocated as isize - stats.bytes_deallocated as isize + stats.bytes_reallocated;
    (value, live)
}

fn report_sizes(label: &str, keys: &[u64]) {
    let n = keys.len() as f64;
    let (ours, ours_heap) = heap_bytes(|| ours_set(1, keys));
    let (peer, peer_heap) = heap_bytes(|| peer_set(1, keys));
    let ours_bytes = codec::encode(&ours).expect("encodes").len();
    let peer_bytes = postcard::to_allocvec(&peer).expect("encodes").len();
    println!("ORSet of {n} {label} u64 elements, bytes per element (aegis-crdt / crdts):");
    println!(
        "  heap     {:.1} / {:.1}",
        ours_heap as f64 / n,
        peer_heap as f64 / n
    );
    println!(
        "  postcard {:.2} / {:.2}",
        ours_bytes as f64 / n,
        peer_bytes as f64 / n
    );
}

fn report_merged_heap(keys: &[u64]) {
    let (merged, heap) = heap_bytes(|| {
        let mut a = ours_set(1, &keys[..SET_ELEMENTS]);
        a.merge(&ours_set(
            2,
            &keys[SET_ELEMENTS / 2..SET_ELEMENTS / 2 + SET_ELEMENTS],
        ));
        a
    });
    let (peer, peer_heap) = heap_bytes(|| {
        let mut a = peer_set(1, &keys[..SET_ELEMENTS]);
        a.merge(peer_set(
            2,
            &keys[SET_ELEMENTS / 2..SET_ELEMENTS / 2 + SET_ELEMENTS],
        ));
        a
    });
    let n = merged.len() as f64;
    assert_eq!(merged.len(), peer.read().val.len());
    println!(
        "  after the 50%-overlap merge ({n} elements): heap {:.1} / {:.1} per element",
        heap as f64 / n,
        peer_heap as f64 / n
    );
}

fn orset(c: &mut Criterion, keys: &[u64]) {
    let first = &keys[..SET_ELEMENTS];
    let second = &keys[SET_ELEMENTS / 2..SET_ELEMENTS / 2 + SET_ELEMENTS];
    let mut g = c.benchmark_group("ORSet::add/100k");
    g.sample_size(10);
    g.bench_function("aegis-crdt", |b| b.iter(|| black_box(ours_set(1, first))));
    g.bench_function("crdts", |b| b.iter(|| black_box(peer_set(1, first))));
    g.finish();

    let (oa, ob) = (ours_set(1, first), ours_set(2, second));
    let (pa, pb) = (peer_set(1, first), peer_set(2, second));
    let mut g = c.benchmark_group("ORSet::merge/100k+100k_overlap50");
    g.sample_size(10);
    g.bench_function("aegis-crdt", |b| {
        b.iter_batched(
            || oa.clone(),
            |mut a| {
                a.merge(&ob);
                a
            },
            BatchSize::LargeInput,
        );
    });
    g.bench_function("crdts", |b| {
        b.iter_batched(
            || (pa.clone(), pb.clone()),
            |(mut a, other)| {
                a.merge(other);
                a
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

fn gcounter(c: &mut Criterion) {
    let mut g = c.benchmark_group("GCounter::merge");
    for n in [100u64, 1000] {
        let mut rng = SplitMix64::new(0x6c0_0000 + n);
        let (mut oa, mut ob) = (GCounter::new(0), GCounter::new(0));
        let (mut pa, mut pb) = (crdts::GCounter::<u64>::new(), crdts::GCounter::<u64>::new());
        for _ in 0..n {
            let id = rng.next_u64() >> 16;
            let (x, y) = (1 + rng.next_u64() % 1000, 1 + rng.next_u64() % 1000);
            let mut one = GCounter::new(id);
            one.increment(x);
            oa.merge(&one);
            let mut one = GCounter::new(id);
            one.increment(y);
            ob.merge(&one);
            pa.apply(pa.inc_many(id, x));
            pb.apply(pb.inc_many(id, y));
        }
        g.bench_with_input(BenchmarkId::new("aegis-crdt", n), &n, |b, _| {
            b.iter_batched(
                || oa.clone(),
                |mut a| {
                    a.merge(&ob);
                    a
                },
                BatchSize::SmallInput,
            );
        });
        g.bench_with_input(BenchmarkId::new("crdts", n), &n, |b, _| {
            b.iter_batched(
                || (pa.clone(), pb.clone()),
                |(mut a, other)| {
                    a.merge(other);
                    a
                },
                BatchSize::SmallInput,
            );
        });
    }
    g.finish();
}

fn main() {
    let keys = keys(SET_ELEMENTS * 3 / 2);
    report_sizes("random", &keys[..SET_ELEMENTS]);
    report_merged_heap(&keys);
    let dense: Vec<u64> = (0..SET_ELEMENTS as u64).collect();
    report_sizes("dense (0..n)", &dense);
    let mut c = Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20)
        .configure_from_args();
    orset(&mut c, &keys);
    gcounter(&mut c);
    c.final_summary();
}
