//! Three nodes on disk: logs in temporary directories, restarts that keep only the disk.

use std::sync::Arc;
use std::time::Duration;

use aegis_cluster::runtime::{MemRouter, RaftConfig, RaftError, RaftNode};
use aegis_log::DiskStorage;
use aegis_log::{Log, LogConfig};
use aegis_raft::ConfState;
use tempfile::TempDir;

use crate::Journal;

const VOTERS: [u64; 3] = [1, 2, 3];

struct DiskCluster {
    dirs: Vec<TempDir>,
    router: MemRouter,
    nodes: Vec<Option<RaftNode<Journal>>>,
    journals: Vec<Journal>,
    log_writer_thread: bool,
}

impl DiskCluster {
    fn new(log_writer_thread: bool) -> DiskCluster {
        DiskCluster {
            log_writer_thread,
            dirs: VOTERS
                .iter()
                .map(|_| tempfile::tempdir().unwrap())
                .collect(),
            router: MemRouter::new(),
            nodes: VOTERS.iter().map(|_| None).collect(),
            journals: VOTERS.iter().map(|_| Journal::default()).collect(),
        }
    }

    /// Starts node `id` from its directory with an empty state machine, so everything it
    /// applies comes from the log on disk.
    async fn boot(&mut self, id: u64) {
        let i = (id - 1) as usize;
        let log = Arc::new(Log::open(self.dirs[i].path(), LogConfig::default()).unwrap());
        let storage = DiskStorage::open(log, 1, ConfState::with_voters(&VOTERS)).unwrap();
        let mut config = RaftConfig::new(id, VOTERS.iter().copied().filter(|p| *p != id).collect());
        config.rng_seed = Some(id * 7);
        config.log_writer_thread = self.log_writer_thread;
        self.journals[i] = Journal::default();
        let node = RaftNode::new(
            config,
            storage,
            self.router.endpoint(id),
            self.journals[i].clone(),
        )
        .unwrap();
        self.router.register(id, node.message_sender());
        node.start().await.unwrap();
        self.nodes[i] = Some(node);
    }

    async fn stop(&mut self, id: u64) {
        if let Some(node) = self.nodes[(id - 1) as usize].take() {
            node.shutdown().await;
        }
    }

    async fn write(&self, command: &[u8]) {
        for _ in 0..200 {
            for node in self.nodes.iter().flatten() {
                match node.propose(command.to_vec()).await {
                    Ok(_) => return,
                    Err(
                        RaftError::NotLeader { .. }
                        | RaftError::Superseded { .. }
                        | RaftError::TimedOut(_),
                    ) => {}
                    Err(e) => panic!("write failed: {e}"),
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no node accepted the write");
    }

    async fn leader(&self) -> u64 {
        for _ in 0..500 {
            if let Some(node) = self.nodes.iter().flatten().find(|n| n.is_leader()) {
                return node.id();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no leader");
    }

    async fn wait_all_applied(&self, expected: &[Vec<u8>]) {
        for (i, journal) in self.journals.iter().enumerate() {
            if self.nodes[i].is_none() {
                continue;
            }
            for _ in 0..500 {
                if journal.commands().len() >= expected.len() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert_eq!(journal.commands(), expected, "node {}", i + 1);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_leader_and_full_restarts_on_disk() {
    survive_leader_and_full_restarts(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_log_writer_thread_acknowledged_writes_survive_restarts_on_disk() {
    survive_leader_and_full_restarts(true).await;
}

async fn survive_leader_and_full_restarts(log_writer_thread: bool) {
    let mut cluster = DiskCluster::new(log_writer_thread);
    for id in VOTERS {
        cluster.boot(id).await;
    }
    let mut expected = Vec::new();
    for i in 0..10u8 {
        cluster.write(&[i]).await;
        expected.push(vec![i]);
    }

    let leader = cluster.leader().await;
    cluster.stop(leader).await;
    for i in 10..15u8 {
        cluster.write(&[i]).await;
        expected.push(vec![i]);
    }
    cluster.boot(leader).await;
    cluster.wait_all_applied(&expected).await;

    for id in VOTERS {
        cluster.stop(id).await;
    }
    for id in VOTERS {
        cluster.boot(id).await;
    }
    cluster.write(b"after").await;
    expected.push(b"after".to_vec());
    cluster.wait_all_applied(&expected).await;
    for id in VOTERS {
        cluster.stop(id).await;
    }
}
