//! Three nodes over the in-memory transport.

use std::sync::Arc;
use std::time::Duration;

use aegis_cluster::runtime::{RaftConfig, RaftError};
use aegis_cluster::{ClusterConfig, ClusterError, ClusterNode};
use aegis_raft::MemStorage;
use aegis_transport::{MemoryConfig, MemoryNetwork};
use bytes::Bytes;

use crate::Journal;

const VOTERS: [u64; 3] = [1, 2, 3];

async fn start(network: &MemoryNetwork) -> (Vec<ClusterNode<Journal>>, Vec<Journal>) {
    let mut nodes = Vec::new();
    let mut journals = Vec::new();
    for id in VOTERS {
        let peers = VOTERS.iter().copied().filter(|p| *p != id).collect();
        let mut raft = RaftConfig::new(id, peers);
        raft.rng_seed = Some(id);
        let transport = Arc::new(network.join(id).unwrap());
        let journal = Journal::default();
        let node = ClusterNode::start(
            ClusterConfig::new(raft),
            transport,
            MemStorage::new(&VOTERS),
            journal.clone(),
        )
        .await
        .unwrap();
        nodes.push(node);
        journals.push(journal);
    }
    (nodes, journals)
}

async fn wait_applied(journal: &Journal, count: usize) {
    for _ in 0..500 {
        if journal.commands().len() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never applied {count} commands");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_accepts_writes_and_all_apply_them_in_one_order() {
    let network = MemoryNetwork::new(MemoryConfig::default(), 11).unwrap();
    let (nodes, journals) = start(&network).await;
    for round in 0..5u8 {
        for node in &nodes {
            let command = Bytes::from(vec![round, node.id() as u8]);
            node.propose(command).await.unwrap();
        }
    }
    for journal in &journals {
        wait_applied(journal, 15).await;
    }
    assert_eq!(journals[0].commands(), journals[1].commands());
    assert_eq!(journals[1].commands(), journals[2].commands());
    for node in &nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_through_followers_observe_every_acknowledged_write() {
    let network = MemoryNetwork::new(MemoryConfig::default(), 12).unwrap();
    let (nodes, journals) = start(&network).await;
    let count: usize =
        std::str::from_utf8(&nodes[0].propose(Bytes::from_static(b"w")).await.unwrap())
            .unwrap()
            .parse()
            .unwrap();
    for (node, journal) in nodes.iter().zip(&journals) {
        node.read_barrier().await.unwrap();
        assert!(
            journal.commands().len() >= count,
            "node {} served a stale read",
            node.id()
        );
    }
    for node in &nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_leader_is_replaced_and_its_writes_fail_cleanly() {
    let network = MemoryNetwork::new(MemoryConfig::default(), 13).unwrap();
    let (nodes, journals) = start(&network).await;
    nodes[0]
        .propose(Bytes::from_static(b"before"))
        .await
        .unwrap();
    let old = nodes[0]
        .raft()
        .wait_for_leader(Duration::from_secs(5))
        .await
        .unwrap();
    network.isolate(old);
    let old_node = &nodes[(old - 1) as usize];
    // The isolated leader cannot commit: its write fails (it steps down by check-quorum,
    // or times out) and is never reported as applied.
    let stranded = old_node.propose(Bytes::from_static(b"stranded")).await;
    assert!(
        stranded.is_err(),
        "an isolated leader acknowledged a write: {stranded:?}"
    );
    let other = nodes.iter().find(|n| n.id() != old).unwrap();
    let mut written = false;
    for _ in 0..50 {
        match other.propose(Bytes::from_static(b"after")).await {
            Ok(_) => {
                written = true;
                break;
            }
            Err(ClusterError::NoLeader | ClusterError::OutcomeUnknown { .. }) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert!(written, "the majority side never accepted a write");
    network.heal();
    let journal = &journals[(old - 1) as usize];
    for _ in 0..500 {
        if journal.commands().contains(&b"after".to_vec()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let commands = journal.commands();
    assert!(
        commands.contains(&b"after".to_vec()),
        "the old leader never caught up: {commands:?}"
    );
    assert!(
        !commands.contains(&b"stranded".to_vec()),
        "an unacknowledged write from the minority was applied"
    );
    for node in &nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_outside_the_configured_peers_joins_as_a_learner() {
    let network = MemoryNetwork::new(MemoryConfig::default(), 13).unwrap();
    let (nodes, journals) = start(&network).await;
    nodes[0].propose(Bytes::from_static(b"a")).await.unwrap();
    // Node 4 knows no peer and no configuration; the others were configured without it.
    let mut raft = RaftConfig::new(4, Vec::new());
    raft.rng_seed = Some(4);
    let journal = Journal::default();
    let joiner = ClusterNode::start(
        ClusterConfig::new(raft),
        Arc::new(network.join(4).unwrap()),
        MemStorage::with_conf_state(aegis_raft::ConfState::default()),
        journal.clone(),
    )
    .await
    .unwrap();
    let conf = loop {
        let leader = nodes.iter().find(|n| n.raft().is_leader());
        let outcome = match leader {
            Some(leader) => leader.raft().add_learner(4).await,
            None => Err(RaftError::NotLeader { leader_hint: None }),
        };
        match outcome {
            Ok(conf) => break conf,
            Err(RaftError::NotLeader { .. } | RaftError::ConfChange(_)) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("adding the learner failed: {e}"),
        }
    };
    assert_eq!(conf.learners, [4]);
    // The learner forwards writes to the leader it learnt of, and receives them.
    joiner.propose(Bytes::from_static(b"b")).await.unwrap();
    wait_applied(&journal, 2).await;
    assert_eq!(journal.commands(), [b"a".to_vec(), b"b".to_vec()]);
    wait_applied(&journals[0], 2).await;
    joiner.shutdown().await;
    for node in &nodes {
        node.shutdown().await;
    }
}
