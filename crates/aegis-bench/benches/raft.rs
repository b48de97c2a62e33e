//! aegis-raft side by side with openraft, in the same run: a 3-node cluster in one process
//! with in-memory logs and an in-memory network, writes/s at 1, 64 and 256 concurrent
//! proposers (the shape of openraft's `benchmarks/minimal`).
//!
//! aegis-raft is sans-IO, so its cluster is driven by a synchronous loop on one thread:
//! every node's Ready is executed, then every message is delivered, round after round.
//! openraft is async and runs on tokio with two worker threads; its nodes use the
//! `openraft-memstore` store and a network that calls the target node directly. Each
//! proposer keeps one write outstanding; a write of 64 bytes counts when the leader has
//! applied it (aegis) or when `client_write` returns (openraft).
//!
//! A third contestant is shaped like openraft: aegis-cluster's async `RaftNode` driver
//! (each node's core on its own thread, proposals from tokio tasks awaiting their
//! applied output), over the in-memory router with in-memory logs.

#![allow(
    clippy::disallowed_methods,
    reason = "openraft runs in real time, so its iterations are timed with the wall clock"
)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aegis_cluster::runtime::{MemRouter, RaftConfig, RaftNode, StateMachine};
use aegis_raft::{Config, EntryKind, LogIndex, MemStorage, Message, RawNode, Role};
use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::storage::Adaptor;
use openraft_memstore::{ClientRequest, MemStore, TypeConfig};

const WRITES: usize = 2560;
const PROPOSERS: [usize; 3] = [1, 64, 256];

struct AegisCluster {
    nodes: Vec<RawNode<MemStorage>>,
    network: VecDeque<Message>,
}

impl AegisCluster {
    fn new() -> AegisCluster {
        let nodes = (1..=3)
            .map(|id| RawNode::new(Config::new(id), MemStorage::new(&[1, 2, 3]), id).unwrap())
            .collect();
        let mut cluster = AegisCluster {
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

    /// Executes every node's Ready, then delivers every message; returns how many client
    /// entries the leader applied.
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

type OpenRaft = openraft::Raft<TypeConfig>;

#[derive(Clone, Default)]
struct Router {
    nodes: Arc<Mutex<BTreeMap<u64, OpenRaft>>>,
}

impl Router {
    fn get(&self, id: u64) -> OpenRaft {
        self.nodes.lock().unwrap()[&id].clone()
    }
}

struct Connection {
    target: u64,
    router: Router,
}

impl RaftNetworkFactory<TypeConfig> for Router {
    type Network = Connection;

    async fn new_client(&mut self, target: u64, _node: &()) -> Connection {
        Connection {
            target,
            router: self.clone(),
        }
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, (), RaftError<u64>>> {
        let raft = self.router.get(self.target);
        let target = self.target;
        raft.append_entries(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(target, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RPCError<u64, (), RaftError<u64, InstallSnapshotError>>>
    {
        let raft = self.router.get(self.target);
        let target = self.target;
        raft.install_snapshot(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(target, e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        _option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, (), RaftError<u64>>> {
        let raft = self.router.get(self.target);
        let target = self.target;
        raft.vote(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(target, e)))
    }
}

async fn openraft_cluster() -> (Router, OpenRaft) {
    let config = openraft::Config {
        heartbeat_interval: 500,
        election_timeout_min: 1500,
        election_timeout_max: 3000,
        ..Default::default()
    };
    let config = Arc::new(config.validate().unwrap());
    let router = Router::default();
    for id in 1..=3u64 {
        let (log, state_machine) = Adaptor::new(MemStore::new_async().await);
        let raft = openraft::Raft::new(id, config.clone(), router.clone(), log, state_machine)
            .await
            .unwrap();
        router.nodes.lock().unwrap().insert(id, raft);
    }
    let leader = router.get(1);
    leader.initialize(BTreeSet::from([1, 2, 3])).await.unwrap();
    leader
        .wait(Some(Duration::from_secs(10)))
        .current_leader(1, "node 1 leads")
        .await
        .unwrap();
    (router, leader)
}

async fn openraft_run(leader: &OpenRaft, writes: usize, proposers: usize) {
    let per_proposer = (writes / proposers) as u64;
    let tasks: Vec<_> = (0..proposers)
        .map(|p| {
            let raft = leader.clone();
            tokio::spawn(async move {
                for serial in 0..per_proposer {
                    let request = ClientRequest {
                        client: format!("c{p}"),
                        serial,
                        status: "x".repeat(64),
                    };
                    raft.client_write(request).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

/// Counts what it applies.
#[derive(Default)]
struct Counter(u64, LogIndex);

impl StateMachine for Counter {
    type Output = u64;

    fn apply(&mut self, index: LogIndex, _data: &[u8]) -> u64 {
        self.0 += 1;
        self.1 = index;
        self.0
    }

    fn applied_index(&self) -> LogIndex {
        self.1
    }
}

/// Three `RaftNode`s on one router; returns them and the leader's position.
async fn driver_cluster() -> (Vec<Arc<RaftNode<Counter>>>, usize) {
    let router = MemRouter::new();
    let voters = [1u64, 2, 3];
    let mut nodes = Vec::new();
    for id in voters {
        let mut config = RaftConfig::new(id, voters.iter().copied().filter(|v| *v != id).collect());
        config.rng_seed = Some(id);
        let node = RaftNode::new(
            config,
            MemStorage::new(&voters),
            router.endpoint(id),
            Counter::default(),
        )
        .unwrap();
        router.register(id, node.message_sender());
        node.start().await.unwrap();
        nodes.push(Arc::new(node));
    }
    let leader = nodes[0]
        .wait_for_leader(Duration::from_secs(10))
        .await
        .unwrap();
    // Wait until the leader itself knows, so the first proposals are not refused.
    while !nodes[(leader - 1) as usize].is_leader() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (nodes, (leader - 1) as usize)
}

async fn driver_run(leader: &Arc<RaftNode<Counter>>, writes: usize, proposers: usize) {
    let per_proposer = writes / proposers;
    let tasks: Vec<_> = (0..proposers)
        .map(|_| {
            let leader = Arc::clone(leader);
            tokio::spawn(async move {
                for _ in 0..per_proposer {
                    leader
                        .propose(Bytes::from_static(&[b'x'; 64]))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

fn cluster_writes(c: &mut Criterion) {
    let mut group = c.benchmark_group("raft/cluster3_writes");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(10);
    group.throughput(Throughput::Elements(WRITES as u64));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for proposers in PROPOSERS {
        group.bench_function(format!("aegis-raft/proposers_{proposers}"), |b| {
            b.iter_batched(
                AegisCluster::new,
                |mut cluster| cluster.run(WRITES, proposers),
                BatchSize::PerIteration,
            );
        });
        let (nodes, leader) = runtime.block_on(driver_cluster());
        group.bench_function(format!("aegis-cluster-driver/proposers_{proposers}"), |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        driver_run(&nodes[leader], WRITES, proposers).await;
                    }
                    start.elapsed()
                })
            });
        });
        runtime.block_on(async {
            for node in &nodes {
                node.shutdown().await;
            }
        });
        let (router, leader) = runtime.block_on(openraft_cluster());
        group.bench_function(format!("openraft/proposers_{proposers}"), |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        openraft_run(&leader, WRITES, proposers).await;
                    }
                    start.elapsed()
                })
            });
        });
        let nodes: Vec<OpenRaft> = router.nodes.lock().unwrap().values().cloned().collect();
        runtime.block_on(async {
            for node in nodes {
                node.shutdown().await.unwrap();
            }
        });
    }
    group.finish();
}

criterion_group!(benches, cluster_writes);
criterion_main!(benches);
