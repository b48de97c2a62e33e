//! Three nodes over QUIC with mutual TLS on loopback.

use std::sync::Arc;

use aegis_cluster::runtime::RaftConfig;
use aegis_cluster::{ClusterConfig, ClusterNode};
use aegis_raft::MemStorage;
use aegis_transport_quic::{CertificateAuthority, QuicConfig, QuicTransport};
use bytes::Bytes;

use crate::Journal;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_node_group_replicates_over_quic() {
    let voters = [1u64, 2, 3];
    let ca = CertificateAuthority::generate("cluster-test").unwrap();
    let any_port = "127.0.0.1:0".parse().unwrap();
    let transports: Vec<Arc<QuicTransport>> = voters
        .iter()
        .map(|id| {
            Arc::new(
                QuicTransport::bind(
                    QuicConfig::new(*id, any_port),
                    &ca.node_identity(*id).unwrap(),
                )
                .unwrap(),
            )
        })
        .collect();
    for (own, transport) in voters.iter().zip(&transports) {
        for (id, peer) in voters.iter().zip(&transports).filter(|(id, _)| *id != own) {
            transport.set_peer(*id, peer.local_addr());
        }
    }
    let mut nodes = Vec::new();
    let mut journals = Vec::new();
    for (id, transport) in voters.iter().zip(&transports) {
        let peers = voters.iter().copied().filter(|p| p != id).collect();
        let journal = Journal::default();
        let config = ClusterConfig::new(RaftConfig::new(*id, peers));
        let node = ClusterNode::start(
            config,
            Arc::clone(transport),
            MemStorage::new(&voters),
            journal.clone(),
        )
        .await
        .unwrap();
        nodes.push(node);
        journals.push(journal);
    }
    for (i, node) in nodes.iter().enumerate() {
        let output = node
            .propose(Bytes::from(format!("write-{i}")))
            .await
            .unwrap();
        assert_eq!(output, Bytes::from((i + 1).to_string()));
    }
    for (node, journal) in nodes.iter().zip(&journals) {
        node.read_barrier().await.unwrap();
        assert_eq!(journal.commands().len(), 3, "node {}", node.id());
    }
    for node in &nodes {
        node.shutdown().await;
    }
    for transport in &transports {
        transport.shutdown().await;
    }
}

fn bind(ca: &CertificateAuthority, id: u64) -> Arc<QuicTransport> {
    let any_port = "127.0.0.1:0".parse().unwrap();
    Arc::new(
        QuicTransport::bind(
            QuicConfig::new(id, any_port),
            &ca.node_identity(id).unwrap(),
        )
        .unwrap(),
    )
}

async fn leader_of(nodes: &[ClusterNode<Journal>]) -> usize {
    for _ in 0..500 {
        if let Some(i) = nodes.iter().position(|n| n.raft().is_leader()) {
            return i;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("no leader elected");
}

/// A fourth node joins a running group over QUIC: every transport learns its address,
/// the leader adds it as a learner, a follower asks for its promotion once it caught up,
/// and the new member asks for an original one to be removed (both forwarded to the
/// leader); writes go on through the new member throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joins_over_quic_as_a_learner_is_promoted_and_another_leaves() {
    use aegis_cluster::{ClusterError, MemberChange};
    use aegis_raft::ConfState;

    let voters = [1u64, 2, 3];
    let ca = CertificateAuthority::generate("cluster-test").unwrap();
    let transports: Vec<Arc<QuicTransport>> = (1..=4).map(|id| bind(&ca, id)).collect();
    for (i, transport) in transports.iter().enumerate() {
        for (j, peer) in transports.iter().enumerate().filter(|(j, _)| *j != i) {
            transport.set_peer(j as u64 + 1, peer.local_addr());
        }
    }
    let mut nodes = Vec::new();
    let mut journals = Vec::new();
    for id in 1..=4u64 {
        let journal = Journal::default();
        // Node 4 starts in no configuration: it learns one from the leader.
        let (peers, storage) = if id <= 3 {
            (
                voters.iter().copied().filter(|p| *p != id).collect(),
                MemStorage::new(&voters),
            )
        } else {
            (
                Vec::new(),
                MemStorage::with_conf_state(ConfState::default()),
            )
        };
        let config = ClusterConfig::new(RaftConfig::new(id, peers));
        let transport = Arc::clone(&transports[id as usize - 1]);
        nodes.push(
            ClusterNode::start(config, transport, storage, journal.clone())
                .await
                .unwrap(),
        );
        journals.push(journal);
    }
    let leader = leader_of(&nodes[..3]).await;
    for i in 0..5 {
        nodes[leader]
            .propose(Bytes::from(format!("before-{i}")))
            .await
            .unwrap();
    }
    let conf = nodes[leader].raft().add_learner(4).await.unwrap();
    assert_eq!((conf.voters, conf.learners), (voters.to_vec(), vec![4]));
    // Asked of a follower, the promotion is forwarded to the leader.
    let follower = (0..3).find(|i| *i != leader).unwrap();
    let conf = loop {
        match nodes[follower]
            .change_members(MemberChange::Promote(4))
            .await
        {
            Ok(conf) => break conf,
            Err(ClusterError::Refused { .. }) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("promotion failed: {e}"),
        }
    };
    assert_eq!(conf.voters, [1, 2, 3, 4]);
    // Writes through the new member are forwarded to the leader.
    nodes[3].propose(Bytes::from("via-4")).await.unwrap();
    nodes[3].read_barrier().await.unwrap();
    assert_eq!(journals[3].commands().len(), 6, "node 4 has the whole log");

    let leaving = follower;
    let conf = nodes[3]
        .change_members(MemberChange::Remove(leaving as u64 + 1))
        .await
        .unwrap();
    assert_eq!(conf.voters.len(), 3);
    assert!(!conf.voters.contains(&(leaving as u64 + 1)));
    nodes[leaving].shutdown().await;
    let output = loop {
        match nodes[3].propose(Bytes::from("after")).await {
            Ok(output) => break output,
            Err(ClusterError::NoLeader) => {}
            Err(e) => panic!("write after the removal failed: {e}"),
        }
    };
    assert_eq!(output, Bytes::from("7"));
    for node in &nodes {
        node.shutdown().await;
    }
    for transport in &transports {
        transport.shutdown().await;
    }
}
