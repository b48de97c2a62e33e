//! Lookup and build costs of every placement structure, on our own API only. The
//! side-by-side comparison with other crates lives in the workspace's bench crate.

use std::hint::black_box;
use std::time::Duration;

use aegis_hash::{HashRing, JumpHash, Maglev, MaglevConfig, Memento, Rendezvous, key_hash};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

const NODE_COUNTS: [u64; 3] = [10, 100, 1000];

fn keys() -> Vec<String> {
    (0..1024_u64)
        .map(|i| format!("user:{}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40))
        .collect()
}

fn lookups(c: &mut Criterion) {
    let keys = keys();
    let mut g = c.benchmark_group("lookup");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20);
    g.bench_function("key_hash", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) & 1023;
            key_hash(black_box(&keys[i]))
        });
    });
    for n in NODE_COUNTS {
        let mut ring = HashRing::<u64>::with_vnodes(150);
        ring.add_nodes((0..n).map(|id| (id, 150))).unwrap();
        let mut hrw = Rendezvous::<u64>::empty();
        let mut memento = Memento::<u64>::empty();
        for id in 0..n {
            hrw.add_node(id);
            memento.add_node(id);
        }
        let maglev = Maglev::with_config(MaglevConfig::default(), 0..n).unwrap();
        let mut i = 0;
        let mut next = || {
            i = (i + 1) & 1023;
            black_box(&keys[i])
        };
        g.bench_function(BenchmarkId::new("JumpHash::hash", n), |b| {
            b.iter(|| JumpHash::hash(next(), n as u32))
        });
        g.bench_function(BenchmarkId::new("HashRing::get_node", n), |b| {
            b.iter(|| ring.get_node(next()).copied())
        });
        g.bench_function(BenchmarkId::new("HashRing::get_nodes/3", n), |b| {
            b.iter(|| ring.get_nodes(next(), 3).len())
        });
        g.bench_function(BenchmarkId::new("Rendezvous::get_node", n), |b| {
            b.iter(|| hrw.get_node(next()).copied())
        });
        g.bench_function(BenchmarkId::new("Rendezvous::get_nodes/3", n), |b| {
            b.iter(|| hrw.get_nodes(next(), 3).map(|t| t.len()))
        });
        g.bench_function(BenchmarkId::new("Maglev::get_node", n), |b| {
            b.iter(|| maglev.get_node(next()).copied())
        });
        g.bench_function(BenchmarkId::new("Memento::get_node", n), |b| {
            b.iter(|| memento.get_node(next()).copied())
        });
    }
    g.finish();
}

fn builds(c: &mut Criterion) {
    let mut g = c.benchmark_group("build");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(10);
    for n in NODE_COUNTS {
        g.bench_function(BenchmarkId::new("HashRing::add_nodes/150", n), |b| {
            b.iter(|| {
                let mut ring = HashRing::<u64>::with_vnodes(150);
                ring.add_nodes((0..n).map(|id| (id, 150))).unwrap();
                ring
            });
        });
        g.bench_function(BenchmarkId::new("Maglev::with_config", n), |b| {
            b.iter(|| Maglev::with_config(MaglevConfig::default(), 0..n).unwrap());
        });
    }
    g.finish();
}

criterion_group!(benches, lookups, builds);
criterion_main!(benches);
