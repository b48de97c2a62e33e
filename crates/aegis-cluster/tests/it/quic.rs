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
