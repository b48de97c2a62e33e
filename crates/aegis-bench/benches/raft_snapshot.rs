//! Shipping and installing a 256 MiB snapshot between two in-process `aegis-raft` nodes.
//!
//! The leader's log is compacted behind a 256 MiB snapshot held in `MemStorage`; the
//! follower starts empty. Every message goes through the wire encoding, the follower
//! stages the chunks in memory and installs them with `MemStorage::apply_snapshot`.
//! Before the timed runs, one transfer is measured for memory: the peak of live heap
//! bytes above the starting point (sampled after every step, through a counting global
//! allocator) and the largest number of snapshot bytes in flight on the network.
//!
//! No peer is measured in the same run: openraft 0.9 installs snapshots through its
//! runtime and a user-provided network and state machine, which has no comparable
//! in-process, step-by-step setup.

#![allow(
    clippy::disallowed_methods,
    reason = "a benchmark driver reads the wall clock to report one transfer's time"
)]

use std::alloc::System;
use std::time::{Duration, Instant};

use aegis_raft::{
    ConfState, Config, HardState, LogIndex, MemStorage, Message, Payload, RawNode, Role,
    SnapshotMeta, Storage, Term,
};
use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const SNAPSHOT_BYTES: usize = 256 << 20;
const SNAPSHOT_INDEX: LogIndex = LogIndex(1000);

fn live_heap() -> i64 {
    // Reallocations are already counted in the allocated and deallocated totals.
    let s = GLOBAL.stats();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

struct Follower {
    raw: RawNode<MemStorage>,
    staging: Vec<u8>,
}

/// A leader with a compacted log behind `data`, and an empty follower.
fn pair(data: &Bytes) -> (RawNode<MemStorage>, Follower) {
    let config = |id| Config {
        pre_vote: false,
        ..Config::new(id)
    };
    let mut leader_storage = MemStorage::new(&[1, 2]);
    let meta = SnapshotMeta {
        index: SNAPSHOT_INDEX,
        term: Term(1),
        conf_state: ConfState::with_voters(&[1, 2]),
    };
    leader_storage.apply_snapshot(meta, data.clone());
    leader_storage.set_hard_state(HardState {
        term: Term(1),
        vote: None,
        commit: SNAPSHOT_INDEX,
    });
    let leader = RawNode::new(config(1), leader_storage, 1).expect("valid leader");
    let follower = RawNode::new(config(2), MemStorage::new(&[1, 2]), 2).expect("valid follower");
    (
        leader,
        Follower {
            raw: follower,
            staging: Vec::new(),
        },
    )
}

/// Drains a node's Readies with synchronous writes; returns its messages.
fn drive(raw: &mut RawNode<MemStorage>, mut staging: Option<&mut Vec<u8>>) -> Vec<Message> {
    let mut out = Vec::new();
    while raw.has_ready() {
        let ready = raw.ready().expect("ready");
        out.extend(ready.messages.iter().cloned());
        if let Some(staging) = staging.as_deref_mut() {
            for chunk in &ready.snapshot_chunks {
                if chunk.offset == 0 {
                    staging.clear();
                }
                assert_eq!(chunk.offset, staging.len() as u64);
                staging.extend_from_slice(&chunk.data);
            }
        }
        raw.storage_mut().append(&ready.entries);
        if let Some(hs) = ready.hard_state {
            raw.storage_mut().set_hard_state(hs);
        }
        if let Some(meta) = &ready.snapshot {
            let staged = staging.as_deref_mut().expect("only the follower installs");
            let data = Bytes::from(std::mem::take(staged));
            raw.storage_mut().apply_snapshot(meta.clone(), data);
            raw.on_snapshot_installed(meta.index).expect("install");
        }
        raw.on_persisted(ready.persist_ack()).expect("persist");
        out.extend(ready.persisted_messages);
        if let Some(last) = ready.committed_entries.last() {
            raw.on_applied(last.index);
        }
    }
    out
}

/// Elects the leader, then steps messages (through the wire encoding) until the
/// follower installed the snapshot. Returns (peak live heap above the start, peak
/// snapshot bytes in flight).
fn transfer(mut leader: RawNode<MemStorage>, mut follower: Follower) -> (i64, u64) {
    let start = live_heap();
    let (mut peak_heap, mut peak_flight) = (0i64, 0u64);
    let mut network: Vec<Message> = Vec::new();
    while leader.role() != Role::Leader {
        leader.tick().expect("tick");
        network.extend(drive(&mut leader, None));
        for msg in std::mem::take(&mut network) {
            let to = msg.to;
            let node = if to == 1 {
                &mut leader
            } else {
                &mut follower.raw
            };
            node.step(msg).expect("step");
            let staging = (to == 2).then_some(&mut follower.staging);
            network.extend(drive(node, staging));
        }
    }
    while follower.raw.storage().snapshot_meta().expect("meta").index < SNAPSHOT_INDEX {
        network.extend(drive(&mut leader, None));
        let flight: u64 = network
            .iter()
            .map(|m| match &m.payload {
                Payload::Snapshot(c) => c.data.len() as u64,
                _ => 0,
            })
            .sum();
        peak_flight = peak_flight.max(flight);
        assert!(!network.is_empty(), "the transfer stalled");
        for msg in std::mem::take(&mut network) {
            let wire = msg.encode();
            let msg = Message::decode(&wire, 2 << 20).expect("decode");
            drop(wire);
            let to = msg.to;
            let node = if to == 1 {
                &mut leader
            } else {
                &mut follower.raw
            };
            node.step(msg).expect("step");
            let staging = (to == 2).then_some(&mut follower.staging);
            network.extend(drive(node, staging));
            peak_heap = peak_heap.max(live_heap() - start);
        }
    }
    assert_eq!(follower.raw.commit_index(), SNAPSHOT_INDEX);
    (peak_heap, peak_flight)
}

fn main() {
    let data = Bytes::from(
        (0..SNAPSHOT_BYTES)
            .map(|i| (i * 31 % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    let started = Instant::now();
    let (leader, follower) = pair(&data);
    let (peak_heap, peak_flight) = transfer(leader, follower);
    println!(
        "raft_snapshot: one 256 MiB transfer in {:.2?}; peak extra heap {:.1} MiB; peak snapshot bytes in flight {:.1} MiB",
        started.elapsed(),
        peak_heap as f64 / f64::from(1 << 20),
        peak_flight as f64 / f64::from(1 << 20),
    );
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(10))
        .configure_from_args();
    let mut g = c.benchmark_group("raft_snapshot");
    g.throughput(Throughput::Bytes(SNAPSHOT_BYTES as u64));
    g.bench_function("ship_and_install_256MiB/aegis-raft", |b| {
        b.iter_batched(
            || pair(&data),
            |(leader, follower)| transfer(leader, follower),
            BatchSize::PerIteration,
        );
    });
    g.finish();
    c.final_summary();
}
