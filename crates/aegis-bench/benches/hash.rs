//! aegis-hash side by side with the placement crates people would otherwise pick, in
//! the same run: lookup cost and build time at 10, 100 and 1000 nodes, then a printed
//! report of balance and of keys moved when a node is added or removed.
//!
//! Peers: `jump-consistent-hash`, `consistent_hash_ring`, `maglev-hash`,
//! `rendezvous_hash`, `anchorhash`. Every structure gets the same string keys and the
//! same node names; ours and the peers use their own key hash (ours XXH3-64, the peers
//! FNV or SipHash), which is part of what a lookup costs. Peers that default to a
//! randomly keyed hasher get a fixed-key one here so that runs are reproducible.
//!
//! Times are the measuring thread's CPU time, not wall time: the bench machines are
//! shared, and wall time would count every moment another process held the core.

#![allow(
    clippy::disallowed_methods,
    reason = "the report times itself with the wall clock"
)]

use std::collections::hash_map::DefaultHasher;
use std::hash::BuildHasherDefault;
use std::hint::black_box;
use std::time::{Duration, Instant};

use aegis_bench::string_keys;
use aegis_hash::{HashRing, JumpHash, Maglev, MaglevConfig, Memento, Rendezvous, key_hash};
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BenchmarkId, Criterion};

const NODE_COUNTS: [usize; 3] = [10, 100, 1000];
const VNODES: u32 = 150;
const LOOKUP_KEYS: usize = 4096;

type Sip = BuildHasherDefault<DefaultHasher>;
type PeerAnchor<'k> = anchorhash::AnchorHash<&'k str, String, Sip>;

/// The CPU time of the measuring thread (`CLOCK_THREAD_CPUTIME_ID`). Other processes
/// still share caches, so a loaded machine reads somewhat slower, but far less so than
/// with wall time.
struct ThreadCpuTime(WallTime);

impl Measurement for ThreadCpuTime {
    type Intermediate = cpu_time::ThreadTime;
    type Value = Duration;

    fn start(&self) -> Self::Intermediate {
        cpu_time::ThreadTime::now()
    }

    fn end(&self, started: Self::Intermediate) -> Self::Value {
        started.elapsed()
    }

    fn add(&self, a: &Self::Value, b: &Self::Value) -> Self::Value {
        *a + *b
    }

    fn zero(&self) -> Self::Value {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Self::Value) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        // Values are nanoseconds, exactly what the wall-time formatter expects.
        self.0.formatter()
    }
}

type Bench = Criterion<ThreadCpuTime>;

fn node_names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("node-{i}")).collect()
}

/// The same table size for both Maglev implementations: `100 * n` rounded up to a prime.
fn maglev_config() -> MaglevConfig {
    MaglevConfig {
        slots_per_node_min: 100,
        table_size_min: 0,
        ..MaglevConfig::default()
    }
}

/// Builds a ring and forces its lazily built lookup layout with one lookup, so that
/// build benchmarks include the sort.
fn ours_ring(nodes: &[String]) -> HashRing {
    let mut ring = HashRing::new(VNODES);
    ring.add_nodes(nodes.iter().map(|n| (n.clone(), VNODES)))
        .expect("valid ring");
    assert!(ring.get_node("build").is_some());
    ring
}

fn peer_ring(nodes: &[String]) -> consistent_hash_ring::Ring<String> {
    consistent_hash_ring::RingBuilder::default()
        .vnodes(VNODES as usize)
        .nodes_iter(nodes.iter().cloned())
        .build()
}

fn ours_rendezvous(nodes: &[String]) -> Rendezvous {
    let mut hrw = Rendezvous::new();
    for n in nodes {
        hrw.add_node(n.as_str());
    }
    hrw
}

fn peer_rendezvous(
    nodes: &[String],
) -> rendezvous_hash::RendezvousNodes<&str, rendezvous_hash::DefaultNodeHasher> {
    let mut hrw = rendezvous_hash::RendezvousNodes::default();
    for n in nodes {
        hrw.insert(n.as_str());
    }
    hrw
}

fn ours_memento(nodes: &[String]) -> Memento {
    let mut m = Memento::new();
    for n in nodes {
        m.add_node(n.as_str());
    }
    m
}

fn peer_anchor<'k>(nodes: &[String], capacity: usize) -> PeerAnchor<'k> {
    anchorhash::Builder::with_hasher(Sip::default())
        .with_resources(nodes.iter().cloned())
        .build(u16::try_from(capacity).expect("anchorhash capacity fits u16"))
}

fn lookups(c: &mut Bench) {
    let keys = string_keys(LOOKUP_KEYS, 42);
    let hashes: Vec<u64> = keys.iter().map(key_hash).collect();
    let mut g = c.benchmark_group("hash/lookup");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20);
    for n in NODE_COUNTS {
        let nodes = node_names(n);
        let mut i = 0_usize;
        let mut next = move || {
            i = (i + 1) % LOOKUP_KEYS;
            i
        };

        g.bench_function(BenchmarkId::new("jump/ours JumpHash::hash(str)", n), |b| {
            b.iter(|| JumpHash::hash(black_box(&keys[next()]), n as u32));
        });
        g.bench_function(
            BenchmarkId::new("jump/ours JumpHash::bucket(u64)", n),
            |b| {
                b.iter(|| JumpHash::bucket(black_box(hashes[next()]), n as u32));
            },
        );
        g.bench_function(
            BenchmarkId::new("jump/peer jump-consistent-hash(u64)", n),
            |b| {
                b.iter(|| jump_consistent_hash::hash(black_box(hashes[next()]), n));
            },
        );

        let ring = ours_ring(&nodes);
        let peer = peer_ring(&nodes);
        g.bench_function(BenchmarkId::new("ring/ours HashRing::get_node", n), |b| {
            b.iter(|| ring.get_node(black_box(&keys[next()])).map(String::len));
        });
        g.bench_function(
            BenchmarkId::new("ring/peer consistent_hash_ring::get", n),
            |b| {
                b.iter(|| peer.get(black_box(keys[next()].as_str())).len());
            },
        );
        g.bench_function(
            BenchmarkId::new("ring/ours HashRing::get_nodes(3)", n),
            |b| {
                b.iter(|| ring.get_nodes(black_box(&keys[next()]), 3).len());
            },
        );
        g.bench_function(
            BenchmarkId::new("ring/peer consistent_hash_ring::replicas(3)", n),
            |b| {
                b.iter(|| {
                    peer.replicas(black_box(keys[next()].as_str()))
                        .take(3)
                        .count()
                });
            },
        );

        let hrw = ours_rendezvous(&nodes);
        let peer = peer_rendezvous(&nodes);
        g.bench_function(
            BenchmarkId::new("rendezvous/ours Rendezvous::get_node", n),
            |b| {
                b.iter(|| hrw.get_node(black_box(&keys[next()])).map(String::len));
            },
        );
        g.bench_function(
            BenchmarkId::new("rendezvous/ours Rendezvous::get_nodes(3)", n),
            |b| {
                b.iter(|| hrw.get_nodes(black_box(&keys[next()]), 3).map(|t| t.len()));
            },
        );
        g.bench_function(
            BenchmarkId::new("rendezvous/peer rendezvous_hash::calc_candidates", n),
            |b| {
                b.iter(|| {
                    peer.calc_candidates(black_box(&keys[next()]))
                        .next()
                        .map(|n| n.len())
                });
            },
        );

        let maglev =
            Maglev::with_config(maglev_config(), nodes.iter().cloned()).expect("valid maglev");
        let peer = maglev_hash::MaglevTable::new(nodes.clone());
        assert_eq!(maglev.table_size(), peer.capacity());
        g.bench_function(BenchmarkId::new("maglev/ours Maglev::get_node", n), |b| {
            b.iter(|| maglev.get_node(black_box(&keys[next()])).map(String::len));
        });
        g.bench_function(BenchmarkId::new("maglev/peer maglev-hash::get", n), |b| {
            b.iter(|| peer.get(black_box(&keys[next()])).map(String::len));
        });

        let memento = ours_memento(&nodes);
        let peer = peer_anchor(&nodes, n);
        g.bench_function(
            BenchmarkId::new("removable/ours Memento::get_node", n),
            |b| {
                b.iter(|| memento.get_node(black_box(&keys[next()])).map(String::len));
            },
        );
        g.bench_function(
            BenchmarkId::new("removable/peer anchorhash::get_resource", n),
            |b| {
                b.iter(|| {
                    peer.get_resource(black_box(keys[next()].as_str()))
                        .map(String::len)
                });
            },
        );
    }
    g.finish();
}

fn builds(c: &mut Bench) {
    let mut g = c.benchmark_group("hash/build");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(10);
    for n in NODE_COUNTS {
        let nodes = node_names(n);
        g.bench_function(BenchmarkId::new("ring/ours HashRing::add_nodes", n), |b| {
            b.iter(|| ours_ring(&nodes))
        });
        g.bench_function(
            BenchmarkId::new("ring/ours HashRing::add_node loop", n),
            |b| {
                b.iter(|| {
                    let mut ring = HashRing::new(VNODES);
                    for node in &nodes {
                        ring.add_node(node.as_str());
                    }
                    assert!(ring.get_node("build").is_some());
                    ring
                });
            },
        );
        // At 1000 nodes one peer build takes seconds; the report times it once instead.
        if n < 1000 {
            g.bench_function(
                BenchmarkId::new("ring/peer consistent_hash_ring::build", n),
                |b| {
                    b.iter(|| peer_ring(&nodes));
                },
            );
        }
        g.bench_function(
            BenchmarkId::new("maglev/ours Maglev::with_config", n),
            |b| {
                b.iter(|| {
                    Maglev::with_config(maglev_config(), nodes.iter().cloned()).expect("valid")
                });
            },
        );
        g.bench_function(BenchmarkId::new("maglev/peer MaglevTable::new", n), |b| {
            b.iter(|| maglev_hash::MaglevTable::new(nodes.clone()));
        });
        g.bench_function(
            BenchmarkId::new("rendezvous/ours Rendezvous::add_node", n),
            |b| {
                b.iter(|| ours_rendezvous(&nodes));
            },
        );
        g.bench_function(
            BenchmarkId::new("rendezvous/peer RendezvousNodes::insert", n),
            |b| {
                b.iter(|| peer_rendezvous(&nodes));
            },
        );
        g.bench_function(
            BenchmarkId::new("removable/ours Memento::add_node", n),
            |b| b.iter(|| ours_memento(&nodes)),
        );
        g.bench_function(
            BenchmarkId::new("removable/peer anchorhash::build", n),
            |b| {
                b.iter(|| peer_anchor(&nodes, n));
            },
        );
    }
    g.finish();
}

/// Balance and movement of one placement: which node index each key lands on.
struct Placement {
    name: &'static str,
    before: Vec<usize>,
    added: Vec<usize>,
    removed: Vec<usize>,
}

impl Placement {
    /// Max load over mean load, before any change.
    fn max_over_mean(&self, n: usize) -> f64 {
        let mut counts = vec![0_u64; n + 1];
        for &i in &self.before {
            counts[i] += 1;
        }
        let max = counts.iter().copied().max().unwrap_or(0) as f64;
        max / (self.before.len() as f64 / n as f64)
    }

    fn moved(a: &[usize], b: &[usize]) -> f64 {
        a.iter().zip(b).filter(|(x, y)| x != y).count() as f64 / a.len() as f64
    }
}

/// Places keys on `n` nodes, on `n + 1` nodes (node `n` added) and on `n` nodes with
/// node `n / 2` removed, reporting node indices into the original list.
fn placements(n: usize, keys: &[String]) -> Vec<Placement> {
    let nodes = node_names(n + 1);
    let base = &nodes[..n];
    let mut gone_list: Vec<String> = base.to_vec();
    gone_list.remove(n / 2);
    let idx = |name: &str| {
        name.strip_prefix("node-")
            .and_then(|s| s.parse().ok())
            .expect("node name")
    };
    let place = |f: &dyn Fn(&str) -> usize| keys.iter().map(|k| f(k)).collect::<Vec<_>>();
    let mut out = Vec::new();

    // Jump can only remove the last bucket: "removed" drops bucket n - 1 instead.
    out.push(Placement {
        name: "jump ours (remove = last)",
        before: place(&|k| JumpHash::hash(k, n as u32) as usize),
        added: place(&|k| JumpHash::hash(k, n as u32 + 1) as usize),
        removed: place(&|k| JumpHash::hash(k, n as u32 - 1) as usize),
    });
    out.push(Placement {
        name: "jump peer (remove = last)",
        before: place(&|k| jump_consistent_hash::hash(key_hash(k), n) as usize),
        added: place(&|k| jump_consistent_hash::hash(key_hash(k), n + 1) as usize),
        removed: place(&|k| jump_consistent_hash::hash(key_hash(k), n - 1) as usize),
    });

    let (r0, r1, r2) = (ours_ring(base), ours_ring(&nodes), ours_ring(&gone_list));
    out.push(Placement {
        name: "ring ours",
        before: place(&|k| idx(r0.get_node(k).expect("node"))),
        added: place(&|k| idx(r1.get_node(k).expect("node"))),
        removed: place(&|k| idx(r2.get_node(k).expect("node"))),
    });
    let started = Instant::now();
    let p0 = peer_ring(base);
    let peer_build = started.elapsed();
    let started = Instant::now();
    let r = ours_ring(base);
    let ours_build = started.elapsed();
    drop(r);
    println!(
        "  one-shot ring build, {n} nodes x {VNODES} vnodes: ours {ours_build:.1?}, peer {peer_build:.1?}"
    );
    let mut p1 = p0.clone();
    p1.insert(nodes[n].clone());
    let mut p2 = p0.clone();
    p2.remove(&nodes[n / 2]);
    out.push(Placement {
        name: "ring peer",
        before: place(&|k| idx(p0.get(k))),
        added: place(&|k| idx(p1.get(k))),
        removed: place(&|k| idx(p2.get(k))),
    });

    let (h0, h1, h2) = (
        ours_rendezvous(base),
        ours_rendezvous(&nodes),
        ours_rendezvous(&gone_list),
    );
    out.push(Placement {
        name: "rendezvous ours",
        before: place(&|k| idx(h0.get_node(k).expect("node"))),
        added: place(&|k| idx(h1.get_node(k).expect("node"))),
        removed: place(&|k| idx(h2.get_node(k).expect("node"))),
    });
    let (q0, q1, q2) = (
        peer_rendezvous(base),
        peer_rendezvous(&nodes),
        peer_rendezvous(&gone_list),
    );
    out.push(Placement {
        name: "rendezvous peer",
        before: place(&|k| idx(q0.calc_candidates(&k).next().expect("node"))),
        added: place(&|k| idx(q1.calc_candidates(&k).next().expect("node"))),
        removed: place(&|k| idx(q2.calc_candidates(&k).next().expect("node"))),
    });

    // Both Maglevs keep the table size of the n-node table across the change, as the
    // paper does; a resized table would move almost every key.
    let config = MaglevConfig {
        table_size_min: 100 * n as u32,
        slots_per_node_min: 1,
        ..MaglevConfig::default()
    };
    let m = |list: &[String]| Maglev::with_config(config, list.iter().cloned()).expect("valid");
    let (m0, m1, m2) = (m(base), m(&nodes), m(&gone_list));
    out.push(Placement {
        name: "maglev ours",
        before: place(&|k| idx(m0.get_node(k).expect("node"))),
        added: place(&|k| idx(m1.get_node(k).expect("node"))),
        removed: place(&|k| idx(m2.get_node(k).expect("node"))),
    });
    let pm = |list: &[String]| maglev_hash::MaglevTable::with_capacity(list.to_vec(), 100 * n);
    let (n0, n1, n2) = (pm(base), pm(&nodes), pm(&gone_list));
    out.push(Placement {
        name: "maglev peer",
        before: place(&|k| idx(n0.get(&k).expect("node"))),
        added: place(&|k| idx(n1.get(&k).expect("node"))),
        removed: place(&|k| idx(n2.get(&k).expect("node"))),
    });

    let e0 = ours_memento(base);
    let mut e1 = e0.clone();
    e1.add_node(nodes[n].as_str());
    let mut e2 = e0.clone();
    e2.remove_node(&nodes[n / 2]);
    out.push(Placement {
        name: "memento ours",
        before: place(&|k| idx(e0.get_node(k).expect("node"))),
        added: place(&|k| idx(e1.get_node(k).expect("node"))),
        removed: place(&|k| idx(e2.get_node(k).expect("node"))),
    });
    let a0 = peer_anchor(base, n + 1);
    let mut a1 = a0.clone();
    a1.add_resource(nodes[n].clone()).expect("capacity left");
    let mut a2 = a0.clone();
    a2.remove_resource(&nodes[n / 2]).expect("member");
    out.push(Placement {
        name: "anchor peer",
        before: place(&|k| idx(a0.get_resource(k).expect("node"))),
        added: place(&|k| idx(a1.get_resource(k).expect("node"))),
        removed: place(&|k| idx(a2.get_resource(k).expect("node"))),
    });
    out
}

/// Prints balance (max load over mean; the noise floor of a uniform assignment of K
/// keys to n nodes is about `1 + sqrt(2 ln n * n / K)`) and the share of keys moved on
/// adding one node (ideal `1 / (n + 1)`) and removing one (ideal `1 / n`).
fn report() {
    let keys = string_keys(50_000, 7);
    println!("aegis-hash placement report: {} keys", keys.len());
    for n in NODE_COUNTS {
        let floor = 1.0 + (2.0 * (n as f64).ln() * n as f64 / keys.len() as f64).sqrt();
        println!(
            "n = {n}: noise floor max/mean ~ {floor:.3}; ideal moved on add {:.4}, on remove {:.4}",
            1.0 / (n + 1) as f64,
            1.0 / n as f64
        );
        let started = Instant::now();
        for p in placements(n, &keys) {
            println!(
                "  {:<28} max/mean {:.3}  moved on add {:.4}  moved on remove {:.4}",
                p.name,
                p.max_over_mean(n),
                Placement::moved(&p.before, &p.added),
                Placement::moved(&p.before, &p.removed),
            );
        }
        println!("  (report for n = {n} took {:.1?})", started.elapsed());
    }
}

fn main() {
    report();
    let mut c = Criterion::default()
        .with_measurement(ThreadCpuTime(WallTime))
        .configure_from_args();
    lookups(&mut c);
    builds(&mut c);
    c.final_summary();
}
