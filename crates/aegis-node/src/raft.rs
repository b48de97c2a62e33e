//! Replication through Raft: [`RaftReplicator`] and the state machine adapter under it.
//!
//! Each write becomes one Raft entry, a [`LogEntry`] stamped with the proposer's clock.
//! The entry is applied to the node's [`KvStateMachine`] on every replica, and the
//! output travels back to the proposer encoded as a [`ApplyResult`]. Writes sent to a
//! follower are forwarded to the leader by [`ClusterNode`]; reads are fenced by a Raft
//! read index, so a read on any node observes every write acknowledged before it.

use std::sync::Arc;

use aegis_cluster::runtime::{Metrics, RaftError, StateMachine};
use aegis_cluster::{ClusterError, ClusterNode};
use aegis_raft::LogIndex;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::Command;
use crate::command::{LogEntry, Output};
use crate::replicator::{Clock, NodeStatus, ReplicaError, Replicator, Role};
use crate::store::KvStateMachine;

/// What applying one entry gave, as it travels back to the proposer.
#[derive(Debug, Serialize, Deserialize)]
pub enum ApplyResult {
    /// The state machine's output.
    Applied(Output),
    /// The entry could not be decoded; every replica skipped it alike.
    Undecodable(String),
    /// The local store failed; the replica that reports this stops serving.
    StoreFailed(String),
}

/// Applies committed Raft entries to a [`KvStateMachine`].
#[derive(Debug)]
pub struct KvApplier {
    store: Arc<KvStateMachine>,
}

impl KvApplier {
    /// An applier writing into `store`.
    #[must_use]
    pub fn new(store: Arc<KvStateMachine>) -> Self {
        Self { store }
    }
}

impl StateMachine for KvApplier {
    type Output = Bytes;

    fn apply(&mut self, index: LogIndex, data: &[u8]) -> Bytes {
        let result = match LogEntry::decode(data) {
            Ok(entry) => match self.store.apply(index.0, &entry.command, entry.now_ms) {
                Ok(output) => ApplyResult::Applied(output),
                Err(e) => ApplyResult::StoreFailed(e.to_string()),
            },
            Err(e) => {
                // The index still counts as applied, so a restart does not retry it.
                let _ = self.store.apply_noop(index.0);
                ApplyResult::Undecodable(e.to_string())
            }
        };
        Bytes::from(postcard::to_allocvec(&result).expect("apply results always encode"))
    }

    fn applied_index(&self) -> LogIndex {
        LogIndex(self.store.applied_index())
    }
}

/// A [`Replicator`] backed by a Raft group over the cluster transport.
pub struct RaftReplicator {
    node: ClusterNode<KvApplier>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for RaftReplicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftReplicator")
            .field("node", &self.node.id())
            .finish_non_exhaustive()
    }
}

impl RaftReplicator {
    /// Replicates through `node`, stamping entries with `clock`.
    #[must_use]
    pub fn new(node: ClusterNode<KvApplier>, clock: Arc<dyn Clock>) -> Self {
        Self { node, clock }
    }

    /// The cluster node underneath.
    #[must_use]
    pub fn node(&self) -> &ClusterNode<KvApplier> {
        &self.node
    }
}

impl Replicator for RaftReplicator {
    async fn propose(&self, command: Command) -> Result<Output, ReplicaError> {
        let entry = LogEntry {
            now_ms: self.clock.now_ms(),
            command,
        };
        let bytes = self
            .node
            .propose(Bytes::from(entry.encode()))
            .await
            .map_err(replica_error)?;
        match postcard::from_bytes::<ApplyResult>(&bytes) {
            Ok(ApplyResult::Applied(output)) => Ok(output),
            Ok(ApplyResult::Undecodable(reason) | ApplyResult::StoreFailed(reason)) => {
                Err(ReplicaError::Unavailable { reason })
            }
            Err(e) => Err(ReplicaError::Unavailable {
                reason: format!("undecodable apply result: {e}"),
            }),
        }
    }

    async fn read_barrier(&self) -> Result<(), ReplicaError> {
        self.node
            .read_barrier()
            .await
            .map(|_| ())
            .map_err(replica_error)
    }

    fn status(&self) -> NodeStatus {
        status_of(&self.node.metrics().borrow())
    }
}

fn status_of(metrics: &Metrics) -> NodeStatus {
    let role = match metrics.role {
        aegis_raft::Role::Leader => Role::Leader,
        aegis_raft::Role::Follower => Role::Follower,
        _ => Role::Candidate,
    };
    NodeStatus {
        node_id: metrics.id,
        role,
        term: metrics.term.0,
        leader: metrics.leader,
        commit_index: metrics.commit_index.0,
        applied_index: metrics.applied_index.0,
    }
}

fn replica_error(e: ClusterError) -> ReplicaError {
    match e {
        ClusterError::Raft(RaftError::NotLeader { leader_hint }) => {
            ReplicaError::NotLeader { leader_hint }
        }
        ClusterError::Raft(RaftError::TimedOut(waited)) => ReplicaError::Timeout {
            waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
        },
        other => ReplicaError::Unavailable {
            reason: other.to_string(),
        },
    }
}
