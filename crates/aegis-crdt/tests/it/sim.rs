//! Random histories and a simulated lossy network driving the anti-entropy helper.

use std::collections::BTreeSet;

use aegis_crdt::anti_entropy::{AntiEntropy, AntiEntropyConfig, Message};
use aegis_crdt::{Crdt, NodeId};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

use crate::model::{Model, Record};

/// Three replicas after a random history of operations and full-state merges.
pub fn history<M: Model>(seed: u64) -> Vec<M::State> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut replicas: Vec<M::State> = (1..=3).map(M::new).collect();
    for _ in 0..rng.random_range(0..30) {
        let i = rng.random_range(0..3);
        if rng.random_bool(0.75) {
            let op = M::random_op(&mut rng);
            M::apply(&mut replicas[i], &op);
        } else {
            let j = rng.random_range(0..3);
            let other = replicas[j].clone();
            replicas[i].join(&other);
        }
    }
    replicas
}

struct InFlight<C> {
    source: NodeId,
    target: NodeId,
    message: Message<C>,
    /// The operations the sender had seen when it sent a delta.
    seen: BTreeSet<usize>,
}

/// The outcome of a simulation: final states and the operation log.
pub struct Outcome<M: Model> {
    pub states: Vec<M::State>,
    pub log: Vec<Record<M::Op>>,
    pub buffered_max: usize,
}

/// `replicas` replicas, `ops` random operations, a network that drops, duplicates and
/// reorders, then reliable rounds until every replica is acknowledged everywhere.
pub fn simulate<M: Model>(seed: u64, replicas: usize, ops: usize) -> Outcome<M> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let config = AntiEntropyConfig {
        delta_buffer_max: 6,
        neighbours_max: 8,
    };
    let ids: Vec<NodeId> = (0..replicas as u64).map(|i| 100 + i * 7).collect();
    let index = |id: NodeId| ids.iter().position(|&x| x == id).expect("known id");
    let mut nodes: Vec<AntiEntropy<M::State>> = ids
        .iter()
        .map(|&id| {
            let mut n = AntiEntropy::new(id, M::new(id), config.clone()).expect("valid");
            for &other in &ids {
                if other != id {
                    assert!(n.add_neighbour(other));
                }
            }
            n
        })
        .collect();
    let mut seen: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); replicas];
    let mut log: Vec<Record<M::Op>> = Vec::new();
    let mut net: Vec<InFlight<M::State>> = Vec::new();
    let mut buffered_max = 0;
    let mut done = 0;
    while done < ops || !net.is_empty() {
        let roll = rng.random_range(0..100);
        if roll < 30 && done < ops {
            let r = rng.random_range(0..replicas);
            let op = M::random_op(&mut rng);
            log.push(Record {
                op: op.clone(),
                node: ids[r],
                known: seen[r].clone(),
            });
            seen[r].insert(log.len() - 1);
            nodes[r].update(|s| M::apply(s, &op));
            done += 1;
        } else if roll < 45 && done < ops {
            let r = rng.random_range(0..replicas);
            for out in nodes[r].poll_transmit() {
                net.push(InFlight {
                    source: ids[r],
                    target: out.target,
                    message: out.message,
                    seen: seen[r].clone(),
                });
            }
        } else if !net.is_empty() {
            let m = net.swap_remove(rng.random_range(0..net.len()));
            if rng.random_bool(0.2) {
                continue; // dropped
            }
            if rng.random_bool(0.2) {
                net.push(InFlight {
                    source: m.source,
                    target: m.target,
                    message: m.message.clone(),
                    seen: m.seen.clone(),
                });
            }
            deliver(&mut nodes, &mut seen, &mut net, index(m.target), m);
        }
        buffered_max = buffered_max.max(nodes.iter().map(AntiEntropy::buffered).max().unwrap_or(0));
    }
    // Quiet the network: reliable delivery, in random order, until nothing is due.
    for _ in 0..50 {
        for r in 0..replicas {
            for out in nodes[r].poll_transmit() {
                net.push(InFlight {
                    source: ids[r],
                    target: out.target,
                    message: out.message,
                    seen: seen[r].clone(),
                });
            }
        }
        if net.is_empty() {
            break;
        }
        while !net.is_empty() {
            let m = net.swap_remove(rng.random_range(0..net.len()));
            deliver(&mut nodes, &mut seen, &mut net, index(m.target), m);
        }
    }
    assert!(net.is_empty(), "seed {seed}: anti-entropy did not quiesce");
    Outcome {
        states: nodes.iter().map(|n| n.state().clone()).collect(),
        log,
        buffered_max,
    }
}

fn deliver<C: Crdt>(
    nodes: &mut [AntiEntropy<C>],
    seen: &mut [BTreeSet<usize>],
    net: &mut Vec<InFlight<C>>,
    target: usize,
    m: InFlight<C>,
) {
    if matches!(m.message, Message::Delta { .. }) {
        let known = m.seen;
        seen[target].extend(known);
    }
    if let Some(ack) = nodes[target].handle_message(m.source, m.message) {
        net.push(InFlight {
            source: nodes[target].node(),
            target: ack.target,
            message: ack.message,
            seen: BTreeSet::new(),
        });
    }
}
