//! The node runtime of Aegis: everything that turns the sans-IO Raft core into a running,
//! durable, networked replica.
//!
//! - [`runtime`]: [`RaftNode`], the async driver of one
//!   [`aegis_raft::RawNode`] on its own thread, with the [`StateMachine`],
//!   [`LogStore`] and [`Network`](runtime::Network) traits it is built
//!   from, and an in-memory router for tests.
//! - [`LogStore`] for [`aegis_log::DiskStorage`]: a Raft group's log
//!   and hard state in the write-ahead log shared by every group of a node.
//! - [`ClusterNode`]: a Raft group hosted over an [`aegis_transport::Transport`] (QUIC
//!   in production, [`aegis_transport::MemoryNetwork`] in tests). Raft messages travel on
//!   [`Channel::Raft`](aegis_transport::Channel::Raft), handed by the Raft thread straight
//!   to the transport's queue for each peer without waiting, so a slow or unreachable
//!   peer never holds up the others. Any node accepts
//!   any write: [`ClusterNode::propose`] proposes on the leader and otherwise forwards
//!   the command to the leader on [`Channel::Client`](aegis_transport::Channel::Client),
//!   following leader hints. [`ClusterNode::read_barrier`] is a linearizable read fence
//!   on any node.
//!
//! The initial voters come from the configuration; membership then changes through Raft
//! ([`RaftNode::add_learner`](runtime::RaftNode::add_learner),
//! [`promote_learner`](runtime::RaftNode::promote_learner),
//! [`remove_node`](runtime::RaftNode::remove_node), and
//! [`change_membership`](runtime::RaftNode::change_membership) for joint changes), on the
//! leader ([`ClusterNode::raft`]). A node joining a running group starts with an empty
//! configuration and its own id, and learns the rest from the leader's log; the transport
//! must be able to reach it (for QUIC, its address in the address book) before it is
//! added. Raft messages go to whichever node the core addresses, not only the configured
//! peers. An incoming message's sender is checked against the transport's authenticated
//! peer id, so a node cannot speak for another.
//!
//! ```
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use aegis_cluster::{ClusterConfig, ClusterNode};
//! use aegis_cluster::runtime::{RaftConfig, StateMachine};
//! use aegis_raft::{LogIndex, MemStorage};
//! use aegis_transport::{MemoryConfig, MemoryNetwork};
//!
//! /// Echoes each command back, upper-cased.
//! #[derive(Default)]
//! struct Upper(LogIndex);
//!
//! impl StateMachine for Upper {
//!     type Output = Bytes;
//!     fn apply(&mut self, index: LogIndex, data: &[u8]) -> Bytes {
//!         self.0 = index;
//!         Bytes::from(data.to_ascii_uppercase())
//!     }
//!     fn applied_index(&self) -> LogIndex {
//!         self.0
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build().unwrap().block_on(async {
//! let network = MemoryNetwork::new(MemoryConfig::default(), 7).unwrap();
//! let voters = [1, 2, 3];
//! let mut nodes = Vec::new();
//! for id in voters {
//!     let peers = voters.iter().copied().filter(|p| *p != id).collect();
//!     let config = ClusterConfig::new(RaftConfig::new(id, peers));
//!     let transport = Arc::new(network.join(id).unwrap());
//!     nodes.push(ClusterNode::start(config, transport, MemStorage::new(&voters), Upper::default()).await.unwrap());
//! }
//! // Any node takes writes; followers forward them to the leader.
//! let output = nodes[2].propose(Bytes::from_static(b"hello")).await.unwrap();
//! assert_eq!(&output[..], b"HELLO");
//! for node in &nodes {
//!     node.shutdown().await;
//! }
//! # });
//! ```

mod disk;
mod forward;
mod network;
pub mod runtime;

use std::sync::Arc;
use std::time::Duration;

use crate::runtime::{LogStore, Metrics, RaftConfig, RaftError, RaftNode, StateMachine};
use aegis_raft::{LogIndex, NodeId};
use aegis_transport::Transport;
use bytes::Bytes;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use forward::{ForwardReply, LeaderReply, MembersReply};

/// A membership change or leadership transfer, as [`ClusterNode::change_members`] takes
/// it; each is the [`RaftNode`] method of the same name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum MemberChange {
    /// [`RaftNode::add_learner`].
    AddLearner(NodeId),
    /// [`RaftNode::promote_learner`].
    Promote(NodeId),
    /// [`RaftNode::add_voter`].
    AddVoter(NodeId),
    /// [`RaftNode::remove_node`].
    Remove(NodeId),
    /// [`RaftNode::transfer_leadership`].
    Transfer(NodeId),
}

/// How a [`ClusterNode`] runs.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// The Raft group's configuration (this node, its peers, timeouts).
    pub raft: RaftConfig,
    /// The largest encoded Raft message accepted from the network.
    pub message_bytes_max: usize,
    /// How many times a write follows a leader hint before giving up.
    pub forward_hops_max: u32,
    /// How long to wait for a leader when none is known.
    pub leader_wait: Duration,
}

impl ClusterConfig {
    /// Defaults around `raft`: 64 MiB messages, three forwarding hops, and waiting up to
    /// 5 seconds for a leader. Raft messages queue in the transport, within its own
    /// per-peer bound; those it cannot take are dropped, and Raft sends fresh ones.
    #[must_use]
    pub fn new(raft: RaftConfig) -> ClusterConfig {
        ClusterConfig {
            raft,
            message_bytes_max: 64 << 20,
            forward_hops_max: 3,
            leader_wait: Duration::from_secs(5),
        }
    }

    /// Checks the configuration, naming the field at fault.
    pub fn validate(&self) -> Result<(), ClusterError> {
        self.raft
            .validate()
            .map_err(|e| ClusterError::Config(e.to_string()))?;
        let zero = [
            ("message_bytes_max", self.message_bytes_max == 0),
            ("forward_hops_max", self.forward_hops_max == 0),
            ("leader_wait", self.leader_wait.is_zero()),
        ];
        match zero.iter().find(|(_, is_zero)| *is_zero) {
            Some((field, _)) => Err(ClusterError::Config(format!("`{field}` must be positive"))),
            None => Ok(()),
        }
    }
}

/// Why a cluster operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The configuration is invalid.
    #[error("invalid cluster configuration: {0}")]
    Config(String),
    /// No leader became known within `leader_wait`.
    #[error("no leader is known; the group may have lost its quorum")]
    NoLeader,
    /// The local Raft node refused or failed the request.
    #[error(transparent)]
    Raft(#[from] RaftError),
    /// The leader could not be reached, or did not answer in time. The write may or may
    /// not have been applied.
    #[error("forwarding to leader {leader} failed; the outcome is unknown: {reason}")]
    OutcomeUnknown {
        /// The leader the write was sent to.
        leader: NodeId,
        /// What went wrong.
        reason: String,
    },
    /// The leader refused the forwarded write; it was not applied.
    #[error("leader {leader} refused the write: {reason}")]
    Refused {
        /// The leader that refused.
        leader: NodeId,
        /// Its reason.
        reason: String,
    },
}

/// A Raft group member hosted over a transport: see the [crate documentation](crate).
///
/// # Membership
///
/// The group's membership changes through Raft: [`ClusterNode::change_members`] from any
/// node (a follower forwards the change to the leader), or the leader's [`RaftNode`]
/// directly (see [`ClusterNode::raft`]): [`add_learner`](RaftNode::add_learner),
/// [`promote_learner`](RaftNode::promote_learner), [`add_voter`](RaftNode::add_voter),
/// [`remove_node`](RaftNode::remove_node), [`transfer_leadership`](RaftNode::transfer_leadership)
/// and [`change_membership`](RaftNode::change_membership). The address book is the
/// transport's, not the log's: before a node joins, tell every member's transport where
/// it is (for QUIC, `QuicTransport::set_peer`) and the new node where the members are.
/// A joining node starts on a log with no configuration and learns one from the
/// leader, by entries or by snapshot.
pub struct ClusterNode<SM: StateMachine<Output = Bytes>> {
    config: ClusterConfig,
    raft: Arc<RaftNode<SM>>,
    forwarder: forward::Forwarder,
    tasks: Vec<JoinHandle<()>>,
}

impl<SM: StateMachine<Output = Bytes>> ClusterNode<SM> {
    /// Starts the Raft node on `storage` and `state_machine`, and the tasks that carry its
    /// messages over `transport`.
    pub async fn start<S: LogStore, T: Transport + 'static>(
        config: ClusterConfig,
        transport: Arc<T>,
        storage: S,
        state_machine: SM,
    ) -> Result<ClusterNode<SM>, ClusterError> {
        config.validate()?;
        let dyn_transport: Arc<dyn Transport> = transport;
        let outbound = network::Outbound::new(&config, &dyn_transport);
        let mut tasks = Vec::new();
        let raft = Arc::new(RaftNode::new(
            config.raft.clone(),
            storage,
            outbound,
            state_machine,
        )?);
        tasks.push(network::spawn_inbound(
            &config,
            Arc::clone(&dyn_transport),
            Arc::clone(&raft),
        ));
        raft.start().await?;
        let forwarder = forward::Forwarder::new(dyn_transport, config.raft.request_timeout);
        Ok(ClusterNode {
            config,
            raft,
            forwarder,
            tasks,
        })
    }

    /// This node's id.
    #[must_use]
    pub fn id(&self) -> NodeId {
        self.raft.id()
    }

    /// The local Raft node.
    #[must_use]
    pub fn raft(&self) -> &RaftNode<SM> {
        &self.raft
    }

    /// The local node's metrics (role, term, leader, commit and applied index).
    #[must_use]
    pub fn metrics(&self) -> watch::Receiver<Metrics> {
        self.raft.metrics()
    }

    /// Replicates `command` and returns the state machine's output, from any node: a
    /// follower forwards the command to the leader.
    ///
    /// A write is retried on another node only when it certainly was not applied (the
    /// node was not the leader, or a new leader superseded it); when the outcome is
    /// unknown the error says so and the caller decides.
    pub async fn propose(&self, command: Bytes) -> Result<Bytes, ClusterError> {
        self.via_leader(|target| {
            let command = command.clone();
            async move {
                if target == self.id() {
                    self.raft.propose(command).await.map_err(ClusterError::from)
                } else {
                    self.forwarder.propose(target, command).await
                }
            }
        })
        .await
    }

    /// Tries `attempt` on this node, then on the leader it names, as long as each try
    /// certainly did not take effect (the node was not the leader, or a new leader
    /// superseded the entry), for at most `forward_hops_max` tries.
    async fn via_leader<T, F>(
        &self,
        mut attempt: impl FnMut(NodeId) -> F,
    ) -> Result<T, ClusterError>
    where
        F: Future<Output = Result<T, ClusterError>>,
    {
        let mut target = self.id();
        for _ in 0..self.config.forward_hops_max {
            let hint = match attempt(target).await {
                Err(ClusterError::Raft(RaftError::NotLeader { leader_hint })) => leader_hint,
                Err(ClusterError::Raft(RaftError::Superseded { .. })) => None,
                other => return other,
            };
            target = match hint {
                Some(leader) if leader != target => leader,
                _ => self.wait_for_leader().await?,
            };
        }
        Err(ClusterError::NoLeader)
    }

    /// Makes a membership change or leadership transfer from any node: a follower
    /// forwards it to the leader. Resolves with the configuration once the change took
    /// effect (for a transfer, once the target leads).
    ///
    /// As with [`propose`](Self::propose), a change is retried on another node only when
    /// it certainly did not take effect.
    ///
    /// # Errors
    /// [`ClusterError::Raft`] with the local node's refusal, [`ClusterError::Refused`]
    /// with the leader's, [`ClusterError::OutcomeUnknown`] when the leader did not answer,
    /// [`ClusterError::NoLeader`].
    pub async fn change_members(
        &self,
        change: MemberChange,
    ) -> Result<aegis_raft::ConfState, ClusterError> {
        self.via_leader(|target| async move {
            if target == self.id() {
                forward::change_members_here(&self.raft, change)
                    .await
                    .map_err(ClusterError::from)
            } else {
                self.forwarder.change_members(target, change).await
            }
        })
        .await
    }

    /// Replicates `commands` in order and returns one result per command. On the leader
    /// they are proposed together and share log writes; elsewhere they are forwarded one
    /// after another. A command that failed was not applied, and the order of those
    /// applied is kept.
    pub async fn propose_batch(&self, commands: Vec<Bytes>) -> Vec<Result<Bytes, ClusterError>> {
        if self.raft.is_leader() {
            let results = self.raft.propose_batch(commands).await;
            return results
                .into_iter()
                .map(|r| r.map_err(ClusterError::from))
                .collect();
        }
        let mut results = Vec::with_capacity(commands.len());
        for command in commands {
            results.push(self.propose(command).await);
        }
        results
    }

    /// A linearizable read fence: once it returns, this node's state machine reflects
    /// every write acknowledged anywhere before the call. Returns the read index.
    pub async fn read_barrier(&self) -> Result<LogIndex, ClusterError> {
        for _ in 0..self.config.forward_hops_max {
            match self.raft.read().await {
                Err(RaftError::NotLeader { .. }) => {
                    self.wait_for_leader().await?;
                }
                other => return other.map_err(ClusterError::from),
            }
        }
        Err(ClusterError::NoLeader)
    }

    /// Stops the Raft node and the network tasks.
    pub async fn shutdown(&self) {
        self.raft.shutdown().await;
        for task in &self.tasks {
            task.abort();
        }
    }

    async fn wait_for_leader(&self) -> Result<NodeId, ClusterError> {
        self.raft
            .wait_for_leader(self.config.leader_wait)
            .await
            .map_err(|_| ClusterError::NoLeader)
    }
}

impl<SM: StateMachine<Output = Bytes>> Drop for ClusterNode<SM> {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
