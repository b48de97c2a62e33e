//! Replication through Raft: [`RaftReplicator`] and the state machine adapter under it.
//!
//! Each write becomes one Raft entry, a [`LogEntry`] stamped with the proposer's clock.
//! The entry is applied to the node's [`KvStateMachine`] on every replica, and the
//! output travels back to the proposer encoded as a [`ApplyResult`]. Writes sent to a
//! follower are forwarded to the leader by [`ClusterNode`]; reads are fenced by a Raft
//! read index, so a read on any node observes every write acknowledged before it.

use std::net::SocketAddr;
use std::sync::Arc;

use aegis_cluster::runtime::{Metrics, RaftError, RestoreError, SnapshotJob, StateMachine};
use aegis_cluster::{ClusterError, ClusterNode, MemberChange};
use aegis_raft::LogIndex;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::Command;
use crate::command::{LogEntry, Output};
use crate::peers::AddressBook;
use crate::replicator::{
    Clock, MeetScope, Members, MembershipChange, NodeId, NodeStatus, ReplicaError, Replicator, Role,
};
use crate::store::{APPLIES_PER_PERSIST, ApplyEntry, KvStateMachine, PersistEvery};

/// What applying one entry gave, as it travels back to the proposer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ApplyResult {
    /// The state machine's output.
    Applied(Output),
    /// The entry could not be decoded; every replica skipped it alike.
    Undecodable(String),
    /// The local store failed; the replica that reports this stops serving.
    StoreFailed(String),
}

/// The default target size of one snapshot chunk, in bytes.
const SNAPSHOT_CHUNK_BYTES: usize = 1024 * 1024;

/// Opens the address section a [`KvApplier`] with an address book puts in front of its
/// snapshots.
const ADDRESSES_MAGIC: [u8; 4] = *b"AGKA";
/// The address section's format version.
const ADDRESSES_VERSION: u8 = 1;
/// magic + version + body length.
const ADDRESSES_HEAD_BYTES: usize = 4 + 1 + 4;

/// Applies committed Raft entries to a [`KvStateMachine`], and snapshots and restores
/// it for the Raft log's compaction.
///
/// A snapshot is the store's chunk stream ([`KvStateMachine::snapshot`]) with the chunks
/// laid end to end; it is built in memory, so the key space should fit in memory. With an
/// address book ([`with_address_book`](Self::with_address_book)) an address section
/// comes first (`"AGKA" | version u8 | body_len u32 LE | body`, the body a postcard list
/// of `(id, "ip:port")`), so a member that catches up by snapshot learns the addresses
/// whose `CLUSTER MEET` entries were compacted away.
#[derive(Debug)]
pub struct KvApplier {
    store: Arc<KvStateMachine>,
    persist: PersistEvery,
    snapshot_chunk_bytes: usize,
    /// Takes the addresses that `Command::Meet` entries carry.
    address_book: Option<Arc<AddressBook>>,
    /// Why the store failed, once it did: nothing more is applied.
    failed: Option<String>,
}

impl KvApplier {
    /// An applier writing into `store`.
    #[must_use]
    pub fn new(store: Arc<KvStateMachine>) -> Self {
        Self {
            store,
            persist: PersistEvery::new(APPLIES_PER_PERSIST),
            snapshot_chunk_bytes: SNAPSHOT_CHUNK_BYTES,
            address_book: None,
            failed: None,
        }
    }

    /// Records in `book` the address of every `CLUSTER MEET` this node applies, so an
    /// address given to one member reaches them all.
    #[must_use]
    pub fn with_address_book(mut self, book: Arc<AddressBook>) -> Self {
        self.address_book = Some(book);
        self
    }

    /// Hands the address of an applied [`Command::Meet`] to the address book.
    fn learn(&self, command: &Command, result: &ApplyResult) {
        let (Command::Meet { id, address }, ApplyResult::Applied(Output::Ok), Some(book)) =
            (command, result, &self.address_book)
        else {
            return;
        };
        // Commands are validated when decoded: the address parses.
        let Ok(address) = address.parse() else { return };
        if let Err(reason) = book.meet(*id, address) {
            tracing::warn!(node = id, %reason, "could not save a peer's address");
        }
    }

    /// Sets the target payload size of the snapshot's chunks, in bytes (1 MiB by
    /// default; at least 1).
    #[must_use]
    pub fn with_snapshot_chunk_bytes(mut self, bytes: usize) -> Self {
        self.snapshot_chunk_bytes = bytes.max(1);
        self
    }
}

impl StateMachine for KvApplier {
    type Output = Bytes;

    fn apply(&mut self, index: LogIndex, data: &[u8]) -> Bytes {
        let mut results = self.apply_batch(&[(index, Bytes::copy_from_slice(data))]);
        assert_eq!(results.len(), 1, "one result per entry");
        results.pop().expect("checked above")
    }

    /// Applies the run in one write transaction, so one fsync covers it.
    ///
    /// Once the store fails, nothing more is applied ([`failure`](Self::failure) says
    /// why): the entries it failed on would otherwise be skipped on this replica only.
    fn apply_batch(&mut self, entries: &[(LogIndex, Bytes)]) -> Vec<Bytes> {
        if let Some(reason) = &self.failed {
            let refused = encode_result(&ApplyResult::StoreFailed(reason.clone()));
            return vec![refused; entries.len()];
        }
        let decoded: Vec<Result<LogEntry, String>> = entries
            .iter()
            .map(|(_, data)| LogEntry::decode(data).map_err(|e| e.to_string()))
            .collect();
        let commands: Vec<ApplyEntry<'_>> = entries
            .iter()
            .zip(&decoded)
            .filter_map(|((index, _), entry)| {
                let entry = entry.as_ref().ok()?;
                Some(ApplyEntry {
                    index: index.0,
                    command: &entry.command,
                    now_ms: entry.now_ms,
                })
            })
            .collect();
        let mut outputs: Vec<ApplyResult> = match self.store.apply_batch(&commands) {
            Ok(outputs) => outputs.into_iter().map(ApplyResult::Applied).collect(),
            Err(e) => {
                let reason = e.to_string();
                self.failed = Some(reason.clone());
                vec![ApplyResult::StoreFailed(reason); commands.len()]
            }
        };
        outputs.reverse();
        let mut results = Vec::with_capacity(entries.len());
        for (entry, (index, _)) in decoded.into_iter().zip(entries) {
            let result = match entry {
                Ok(entry) => {
                    let result = outputs.pop().expect("one output per decoded entry");
                    self.learn(&entry.command, &result);
                    result
                }
                Err(reason) => {
                    // The index still counts as applied, so a restart does not retry it.
                    if self.failed.is_none()
                        && let Err(e) = self.store.apply_noop(index.0)
                    {
                        self.failed = Some(e.to_string());
                    }
                    ApplyResult::Undecodable(reason)
                }
            };
            results.push(encode_result(&result));
        }
        self.persist.applied(&self.store, entries.len() as u64);
        results
    }

    fn applied_index(&self) -> LogIndex {
        LogIndex(self.store.applied_index())
    }

    fn failure(&self) -> Option<String> {
        self.failed
            .as_ref()
            .map(|reason| format!("the key-value store failed: {reason}"))
    }

    fn snapshot(&mut self) -> Option<Bytes> {
        self.begin_snapshot().and_then(|copy| copy())
    }

    /// Fixes the store's state as of now and leaves the rest to the job: writing and
    /// syncing the buffered applies (so a restart after the log is compacted rarely
    /// needs the snapshot), then copying one consistent view of the database, while
    /// applies go on.
    fn begin_snapshot(&mut self) -> Option<SnapshotJob> {
        // Taken at the store's applied index, which only this thread moves: the index
        // the driver read just before and records the snapshot at.
        let pending = self.store.begin_snapshot(self.snapshot_chunk_bytes).ok()?;
        self.persist.reset();
        let addresses = self
            .address_book
            .as_ref()
            .map(|book| encode_addresses(&book.addresses()))
            .unwrap_or_default();
        Some(Box::new(move || {
            let stream = pending.wait().ok()?;
            let mut out = addresses;
            for chunk in stream {
                out.extend_from_slice(&chunk.ok()?);
            }
            Some(out.into())
        }))
    }

    fn restore(&mut self, index: LogIndex, data: &[u8]) -> Result<(), RestoreError> {
        let failed = |reason: String| RestoreError { index, reason };
        let (addresses, data) = split_addresses(data).map_err(failed)?;
        let chunks = crate::snapshot::split_chunks(data);
        // A snapshot of another index is refused before the store is touched.
        let header = chunks.first().map(|c| crate::snapshot::decode_chunk(c, 0));
        match header {
            Some(Ok(crate::snapshot::Chunk::Header { applied_index, .. }))
                if applied_index == index.0 => {}
            Some(Ok(crate::snapshot::Chunk::Header { applied_index, .. })) => {
                return Err(failed(format!(
                    "the snapshot's data is at index {applied_index}"
                )));
            }
            Some(Err(e)) => return Err(failed(e.to_string())),
            _ => return Err(failed("the snapshot has no header chunk".to_owned())),
        }
        let summary = self
            .store
            .restore(chunks)
            .map_err(|e| failed(e.to_string()))?;
        if summary.applied_index != index.0 {
            return Err(failed(format!(
                "the snapshot's data is at index {}",
                summary.applied_index
            )));
        }
        self.persist.reset();
        self.store.persist().map_err(|e| failed(e.to_string()))?;
        if let Some(book) = &self.address_book {
            for (id, address) in addresses {
                if let Err(reason) = book.meet(id, address) {
                    tracing::warn!(node = id, %reason, "could not save a peer's address");
                }
            }
        }
        Ok(())
    }
}

/// Where each node listens for peers.
type Addresses = Vec<(NodeId, SocketAddr)>;

/// The address section of a snapshot: see [`KvApplier`].
fn encode_addresses(addresses: &[(NodeId, SocketAddr)]) -> Vec<u8> {
    let listed: Vec<(NodeId, String)> = addresses
        .iter()
        .map(|(id, address)| (*id, address.to_string()))
        .collect();
    let body = postcard::to_allocvec(&listed).expect("a list of pairs always encodes");
    let body_len = u32::try_from(body.len()).expect("an address book is far below 4 GiB");
    let mut out = Vec::with_capacity(ADDRESSES_HEAD_BYTES + body.len());
    out.extend_from_slice(&ADDRESSES_MAGIC);
    out.push(ADDRESSES_VERSION);
    out.extend_from_slice(&body_len.to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// Splits a snapshot into its addresses (none without an address section) and the
/// store's chunks. Never panics, whatever the bytes.
fn split_addresses(data: &[u8]) -> Result<(Addresses, &[u8]), String> {
    let Some(rest) = data.strip_prefix(&ADDRESSES_MAGIC) else {
        return Ok((Vec::new(), data));
    };
    let Some((&version, rest)) = rest.split_first() else {
        return Err("the snapshot's address section is truncated".to_owned());
    };
    if version != ADDRESSES_VERSION {
        return Err(format!(
            "the snapshot's address section has version {version} (this build reads {ADDRESSES_VERSION})"
        ));
    }
    let Some((len, rest)) = rest.split_first_chunk::<4>() else {
        return Err("the snapshot's address section is truncated".to_owned());
    };
    let len = u32::from_le_bytes(*len) as usize;
    if len > rest.len() {
        return Err("the snapshot's address section is truncated".to_owned());
    }
    let (body, rest) = rest.split_at(len);
    let listed: Vec<(NodeId, String)> = postcard::from_bytes(body)
        .map_err(|e| format!("the snapshot's address section is malformed: {e}"))?;
    let addresses = listed
        .into_iter()
        .map(|(id, address)| {
            address
                .parse()
                .map(|address| (id, address))
                .map_err(|_| format!("the snapshot lists node {id} at {address:?}, not ip:port"))
        })
        .collect::<Result<_, _>>()?;
    Ok((addresses, rest))
}

fn encode_result(result: &ApplyResult) -> Bytes {
    Bytes::from(postcard::to_allocvec(result).expect("apply results always encode"))
}

fn decode_result(bytes: &[u8]) -> Result<Output, ReplicaError> {
    match postcard::from_bytes::<ApplyResult>(bytes) {
        Ok(ApplyResult::Applied(output)) => Ok(output),
        Ok(ApplyResult::Undecodable(reason)) => Err(ReplicaError::Unavailable { reason }),
        // The entry is committed: it takes effect on the other replicas, and on this one
        // once it restarts and applies its log again.
        Ok(ApplyResult::StoreFailed(reason)) => Err(ReplicaError::OutcomeUnknown {
            reason: format!("the write is committed, but a replica's store failed: {reason}"),
        }),
        Err(e) => Err(ReplicaError::Unavailable {
            reason: format!("undecodable apply result: {e}"),
        }),
    }
}

/// A [`Replicator`] backed by a Raft group over the cluster transport.
pub struct RaftReplicator {
    node: ClusterNode<KvApplier>,
    clock: Arc<dyn Clock>,
    peers: Option<Arc<AddressBook>>,
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
        Self {
            node,
            clock,
            peers: None,
        }
    }

    /// Keeps the peers' addresses in `peers`, for [`Replicator::meet`] and
    /// [`Replicator::members`] (the node's [`KvApplier`] should record into the same
    /// book).
    #[must_use]
    pub fn with_address_book(mut self, peers: Arc<AddressBook>) -> Self {
        self.peers = Some(peers);
        self
    }

    fn members_of(&self, conf: &aegis_raft::ConfState) -> Members {
        Members {
            voters: conf.voters.clone(),
            learners: conf.learners.clone(),
            addresses: self
                .peers
                .as_ref()
                .map(|book| book.addresses())
                .unwrap_or_default(),
        }
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
        decode_result(&bytes)
    }

    async fn propose_batch(&self, commands: Vec<Command>) -> Vec<Result<Output, ReplicaError>> {
        let now_ms = self.clock.now_ms();
        let entries = commands
            .into_iter()
            .map(|command| Bytes::from(LogEntry { now_ms, command }.encode()))
            .collect();
        let results = self.node.propose_batch(entries).await;
        results
            .into_iter()
            .map(|result| decode_result(&result.map_err(replica_error)?))
            .collect()
    }

    async fn read_barrier(&self) -> Result<(), ReplicaError> {
        self.node
            .read_barrier()
            .await
            .map(|_| ())
            .map_err(|e| match e {
                // Nothing to be unsure of for a read.
                ClusterError::Raft(e @ RaftError::Abandoned) => ReplicaError::Unavailable {
                    reason: e.to_string(),
                },
                other => replica_error(other),
            })
    }

    fn status(&self) -> NodeStatus {
        status_of(&self.node.metrics().borrow())
    }

    async fn change_membership(&self, change: MembershipChange) -> Result<Members, ReplicaError> {
        let change = match change {
            MembershipChange::AddLearner(id) => MemberChange::AddLearner(id),
            MembershipChange::Promote(id) => MemberChange::Promote(id),
            MembershipChange::Remove(id) => MemberChange::Remove(id),
            MembershipChange::Transfer(id) => MemberChange::Transfer(id),
        };
        let conf = self
            .node
            .change_members(change)
            .await
            .map_err(membership_error)?;
        Ok(self.members_of(&conf))
    }

    async fn meet(
        &self,
        id: NodeId,
        address: SocketAddr,
        scope: MeetScope,
    ) -> Result<(), ReplicaError> {
        let peers = self.peers.as_ref().ok_or(ReplicaError::Unsupported {
            what: "an address book",
        })?;
        match scope {
            MeetScope::Local => peers
                .meet(id, address)
                .map_err(|reason| ReplicaError::Unavailable { reason }),
            MeetScope::Everyone => {
                let command = Command::Meet {
                    id,
                    address: address.to_string(),
                };
                match self.propose(command).await? {
                    Output::Ok => Ok(()),
                    other => Err(ReplicaError::Unavailable {
                        reason: format!("unexpected result of a MEET: {other:?}"),
                    }),
                }
            }
        }
    }

    fn members(&self) -> Result<Members, ReplicaError> {
        Ok(self.members_of(&self.node.metrics().borrow().conf_state))
    }
}

/// As [`replica_error`], with the refusals of a membership change or transfer told apart.
fn membership_error(e: ClusterError) -> ReplicaError {
    match e {
        ClusterError::Raft(
            e @ (RaftError::ConfChange(_)
            | RaftError::Transfer(_)
            | RaftError::TransferFailed { .. }),
        ) => ReplicaError::Refused {
            reason: e.to_string(),
        },
        ClusterError::Refused { reason, .. } => ReplicaError::Refused { reason },
        other => replica_error(other),
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
        snapshot_index: metrics.snapshot_index.0,
        snapshots_installed: metrics.snapshots_installed,
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
        ClusterError::OutcomeUnknown { leader, reason } => ReplicaError::OutcomeUnknown {
            reason: format!("leader {leader} did not answer the forwarded write: {reason}"),
        },
        ClusterError::Raft(e @ RaftError::Abandoned) => ReplicaError::OutcomeUnknown {
            reason: e.to_string(),
        },
        other => ReplicaError::Unavailable {
            reason: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::command::SetCondition;
    use crate::store::{StoreOptions, failing};

    fn entry(index: u64, key: &str) -> (LogIndex, Bytes) {
        let command = Command::Set {
            key: key.as_bytes().to_vec(),
            value: b"v".to_vec(),
            expire_at_ms: None,
            condition: SetCondition::Always,
        };
        let entry = LogEntry { now_ms: 0, command };
        (LogIndex(index), Bytes::from(entry.encode()))
    }

    fn result(bytes: &Bytes) -> ApplyResult {
        postcard::from_bytes(bytes).unwrap()
    }

    /// Once the store fails, the applier applies nothing more, even when the store would
    /// work again: the entries it failed on must not be skipped on this replica only.
    #[test]
    fn after_a_store_failure_nothing_more_is_applied() {
        let (store, fail) = failing::store(StoreOptions {
            sync_writes: true,
            ..StoreOptions::default()
        });
        let store = Arc::new(store);
        let mut applier = KvApplier::new(Arc::clone(&store));
        let applied = applier.apply_batch(&[entry(1, "a")]);
        assert!(matches!(
            result(&applied[0]),
            ApplyResult::Applied(Output::Ok)
        ));
        assert_eq!(applier.failure(), None);

        fail.store(true, Ordering::Relaxed);
        let failed = applier.apply_batch(&[entry(2, "b"), entry(3, "c")]);
        assert!(
            failed
                .iter()
                .all(|r| matches!(result(r), ApplyResult::StoreFailed(_)))
        );
        let reason = applier.failure().expect("the failure is reported");
        assert!(reason.contains("sync refused"), "{reason}");

        fail.store(false, Ordering::Relaxed);
        let refused = applier.apply_batch(&[entry(4, "d")]);
        assert!(matches!(result(&refused[0]), ApplyResult::StoreFailed(_)));
        assert!(store.applied_index() < 4, "entry 4 was applied");
        assert_eq!(store.get(b"d", 0).unwrap(), None);
        let answer = decode_result(&refused[0]);
        assert!(
            matches!(&answer, Err(ReplicaError::OutcomeUnknown { reason }) if reason.contains("committed")),
            "{answer:?}"
        );
    }
}
