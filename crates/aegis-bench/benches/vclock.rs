//! `VectorClock::compare` and `VectorClock::merge` against `crdts::VClock` (a `BTreeMap`)
//! and a plain `Vec<u64>` loop over dense node indices, at 4, 16, 100 and 1000 nodes.

use std::hint::black_box;
use std::time::Duration;

use aegis_bench::SplitMix64;
use aegis_vclock::{Ordering, VectorClock};
use crdts::{CvRDT, Dot};
use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};

const SIZES: [usize; 4] = [4, 16, 100, 1000];

/// Two clocks over the same `n` sparse node ids with random counters; `b` is `a` with
/// every counter raised by 0 or 1 and the last one always raised, so `a < b` and a
/// comparison has to look at every entry.
fn inputs(n: usize) -> (Vec<u64>, Vec<u64>, Vec<u64>) {
    let mut rng = SplitMix64::new(0x5eed_0000 + n as u64);
    let mut nodes: Vec<u64> = (0..n).map(|_| rng.next_u64() >> 8).collect();
    nodes.sort_unstable();
    nodes.dedup();
    assert_eq!(nodes.len(), n, "node ids must be distinct");
    let a: Vec<u64> = (0..n).map(|_| 1 + rng.next_u64() % 1000).collect();
    let mut b: Vec<u64> = a.iter().map(|c| c + rng.next_u64() % 2).collect();
    *b.last_mut().expect("n > 0") += 1;
    (nodes, a, b)
}

fn ours(nodes: &[u64], counters: &[u64]) -> VectorClock {
    nodes
        .iter()
        .copied()
        .zip(counters.iter().copied())
        .collect()
}

fn peer(nodes: &[u64], counters: &[u64]) -> crdts::VClock<u64> {
    nodes
        .iter()
        .zip(counters)
        .map(|(&n, &c)| Dot::new(n, c))
        .collect()
}

fn vec_compare(a: &[u64], b: &[u64]) -> Ordering {
    let (mut less, mut greater) = (false, false);
    for (x, y) in a.iter().zip(b) {
        less |= x < y;
        greater |= x > y;
    }
    match (less, greater) {
        (false, false) => Ordering::Equal,
        (true, false) => Ordering::Before,
        (false, true) => Ordering::After,
        (true, true) => Ordering::Concurrent,
    }
}

fn vec_merge(a: &mut [u64], b: &[u64]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x = (*x).max(*y);
    }
}

fn compare(c: &mut Criterion) {
    let mut group = c.benchmark_group("VectorClock::compare");
    group
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20);
    for n in SIZES {
        let (nodes, a, b) = inputs(n);
        let (oa, ob) = (ours(&nodes, &a), ours(&nodes, &b));
        let (pa, pb) = (peer(&nodes, &a), peer(&nodes, &b));
        assert_eq!(oa.compare(&ob), Ordering::Before);
        assert_eq!(pa.partial_cmp(&pb), Some(std::cmp::Ordering::Less));
        assert_eq!(vec_compare(&a, &b), Ordering::Before);
        group.bench_with_input(BenchmarkId::new("aegis", n), &n, |bench, _| {
            bench.iter(|| black_box(&oa).compare(black_box(&ob)));
        });
        group.bench_with_input(BenchmarkId::new("crdts", n), &n, |bench, _| {
            bench.iter(|| black_box(&pa).partial_cmp(black_box(&pb)));
        });
        group.bench_with_input(BenchmarkId::new("vec_u64", n), &n, |bench, _| {
            bench.iter(|| vec_compare(black_box(&a), black_box(&b)));
        });
    }
    group.finish();
}

/// Merge into an accumulator that stays in cache: the merge loop itself. Repeating a
/// merge does the same work every time (neither side exits early on "no change").
fn merge(c: &mut Criterion) {
    let mut group = c.benchmark_group("VectorClock::merge");
    group
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20);
    for n in SIZES {
        let (nodes, a, b) = inputs(n);
        let (oa, ob) = (ours(&nodes, &a), ours(&nodes, &b));
        group.bench_with_input(BenchmarkId::new("aegis", n), &n, |bench, _| {
            let mut x = oa.clone();
            bench.iter(|| {
                x.merge(black_box(&ob));
                black_box(&x);
            });
        });
        group.bench_with_input(BenchmarkId::new("vec_u64", n), &n, |bench, _| {
            let mut x = a.clone();
            bench.iter(|| {
                vec_merge(&mut x, black_box(&b));
                black_box(&x);
            });
        });
    }
    group.finish();
}

/// Merge into a fresh copy each time, as `crdts::VClock::merge` needs (it takes the
/// other clock by value): copies are made in the untimed setup for all three.
fn merge_fresh(c: &mut Criterion) {
    let mut group = c.benchmark_group("VectorClock::merge_fresh");
    group
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20);
    for n in SIZES {
        let (nodes, a, b) = inputs(n);
        let (oa, ob) = (ours(&nodes, &a), ours(&nodes, &b));
        let (pa, pb) = (peer(&nodes, &a), peer(&nodes, &b));
        group.bench_with_input(BenchmarkId::new("aegis", n), &n, |bench, _| {
            bench.iter_batched(
                || oa.clone(),
                |mut x| {
                    x.merge(black_box(&ob));
                    x
                },
                BatchSize::SmallInput,
            );
        });
        group.bench_with_input(BenchmarkId::new("crdts", n), &n, |bench, _| {
            bench.iter_batched(
                || (pa.clone(), pb.clone()),
                |(mut x, y)| {
                    x.merge(black_box(y));
                    x
                },
                BatchSize::SmallInput,
            );
        });
        group.bench_with_input(BenchmarkId::new("vec_u64", n), &n, |bench, _| {
            bench.iter_batched(
                || a.clone(),
                |mut x| {
                    vec_merge(&mut x, black_box(&b));
                    x
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

/// Merging clocks that know different node subsets (the general, non-aligned path).
fn merge_interleaved(c: &mut Criterion) {
    let mut group = c.benchmark_group("VectorClock::merge_interleaved");
    group
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20);
    for n in SIZES {
        let (nodes, a, b) = inputs(2 * n);
        let evens = |v: &[u64]| v.iter().copied().step_by(2).collect::<Vec<_>>();
        let odds = |v: &[u64]| v.iter().copied().skip(1).step_by(2).collect::<Vec<_>>();
        let oa = ours(&evens(&nodes), &evens(&a));
        let ob = ours(&odds(&nodes), &odds(&b));
        let pa = peer(&evens(&nodes), &evens(&a));
        let pb = peer(&odds(&nodes), &odds(&b));
        group.bench_with_input(BenchmarkId::new("aegis", n), &n, |bench, _| {
            bench.iter_batched(
                || oa.clone(),
                |mut x| {
                    x.merge(black_box(&ob));
                    x
                },
                BatchSize::SmallInput,
            );
        });
        group.bench_with_input(BenchmarkId::new("crdts", n), &n, |bench, _| {
            bench.iter_batched(
                || (pa.clone(), pb.clone()),
                |(mut x, y)| {
                    x.merge(black_box(y));
                    x
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, compare, merge, merge_fresh, merge_interleaved);
criterion_main!(benches);
