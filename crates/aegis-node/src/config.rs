//! The node's TOML configuration: the seed's `[replication]`, `[raft]` and `[sharding]`
//! sections plus `[node]`, `[[peers]]`, `[tls]`, `[security]` and `[server]`.
//!
//! Every section rejects unknown fields, and [`Config::validate`] rejects values that
//! parse but make no sense; both errors name the offending field.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::replicator::NodeId;

/// A configuration that could not be read, parsed or accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text is not valid TOML for this schema (unknown field, wrong type, missing
    /// field); the message names the field and its line.
    #[error("invalid config: {message}")]
    Parse {
        /// The parser's description, naming the field.
        message: String,
    },
    /// A field parsed but its value is not acceptable.
    #[error("invalid config field `{field}`: {reason}")]
    Invalid {
        /// The dotted path of the field, e.g. `raft.election_timeout_min`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This node.
    pub node: NodeSection,
    /// The other members of the cluster (static membership).
    #[serde(default)]
    pub peers: Vec<PeerSection>,
    /// The seed's replication settings.
    #[serde(default)]
    pub replication: ReplicationSection,
    /// The seed's Raft timing, in milliseconds.
    #[serde(default)]
    pub raft: RaftSection,
    /// The seed's sharding settings.
    #[serde(default)]
    pub sharding: ShardingSection,
    /// Certificates for the peer transport (required once peers talk over QUIC).
    #[serde(default)]
    pub tls: Option<TlsSection>,
    /// Client authentication.
    #[serde(default)]
    pub security: SecuritySection,
    /// The RESP server's behaviour and limits.
    #[serde(default)]
    pub server: ServerSection,
}

/// `[node]`: identity, addresses and storage.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// This node's id (non-zero, unique in the cluster).
    pub id: NodeId,
    /// Where the RESP server listens for clients.
    pub client_listen: SocketAddr,
    /// Where the QUIC transport listens for peers.
    pub peer_listen: SocketAddr,
    /// The directory for the state machine, log and snapshots.
    pub data_dir: PathBuf,
    /// Start outside the group, to be added by the leader (`CLUSTER ADDLEARNER`), rather
    /// than as one of the voters this node and its `[[peers]]` make at the first start.
    /// Only a node's first start reads this; after that its log holds the membership.
    #[serde(default)]
    pub join: bool,
}

/// `[[peers]]`: one other member of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerSection {
    /// The peer's node id.
    pub id: NodeId,
    /// The peer's QUIC address.
    pub address: SocketAddr,
}

/// How many replicas must acknowledge an operation (`[replication] consistency_level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsistencyLevel {
    /// One replica.
    One,
    /// A majority.
    Quorum,
    /// Every replica.
    All,
}

/// `[replication]` from the seed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicationSection {
    /// Copies of each key (1 to 7).
    pub replication_factor: u32,
    /// Acknowledgements required.
    pub consistency_level: ConsistencyLevel,
}

impl Default for ReplicationSection {
    fn default() -> Self {
        Self {
            replication_factor: 3,
            consistency_level: ConsistencyLevel::Quorum,
        }
    }
}

/// `[raft]` from the seed; durations are milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftSection {
    /// The shortest election timeout, in ms.
    pub election_timeout_min: u64,
    /// The longest election timeout, in ms (exclusive upper bound of the random range).
    pub election_timeout_max: u64,
    /// The leader's heartbeat period, in ms.
    pub heartbeat_interval: u64,
    /// Serve linearizable reads under the leader's lease instead of confirming
    /// leadership with a quorum round per batch of reads. Off by default: it is safe
    /// only while the nodes' clocks advance at nearly the same rate, because a leader
    /// trusts that no other leader can be elected before its lease (shorter than the
    /// election timeout) runs out.
    pub lease_reads: bool,
    /// Entries applied between two snapshots of the state machine; after each one the
    /// Raft log is compacted, and a follower that fell behind the compacted log catches
    /// up from the snapshot. 0 never snapshots (the log then grows without bound).
    pub snapshot_every_entries: u64,
    /// A snapshot also waits until the writes since the last one add up to this share,
    /// in percent, of the last snapshot's size, so a large data set is not copied again
    /// for every few writes. 0 snapshots on the entry count alone.
    pub snapshot_log_growth_percent: u32,
    /// Each node stretches both snapshot thresholds above by a share drawn at random
    /// for each snapshot, up to this percentage, so the replicas, which apply the same
    /// writes, do not all snapshot at the same moment. 0 snapshots on the exact
    /// thresholds.
    pub snapshot_stretch_percent: u32,
    /// Entries kept behind each snapshot when the log is compacted, so a follower only a
    /// little behind catches up from the log rather than by a whole snapshot.
    pub compaction_tail_entries: u64,
    /// Write and sync the Raft log on a thread of its own rather than on the Raft
    /// thread. Off by default, which measured cheaper and faster on small machines; a
    /// slow disk on a machine with cores to spare may favour it.
    pub log_writer_thread: bool,
}

impl Default for RaftSection {
    fn default() -> Self {
        Self {
            election_timeout_min: 150,
            election_timeout_max: 300,
            heartbeat_interval: 50,
            lease_reads: false,
            snapshot_every_entries: 10_000,
            snapshot_log_growth_percent: 100,
            snapshot_stretch_percent: 50,
            compaction_tail_entries: 1024,
            log_writer_thread: false,
        }
    }
}

/// How keys are partitioned (`[sharding] strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShardingStrategy {
    /// By the stable key hash.
    Hash,
    /// By key ranges.
    Range,
}

/// `[sharding]` from the seed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShardingSection {
    /// Hash or range partitioning.
    pub strategy: ShardingStrategy,
    /// The number of shards (1 to 65536).
    pub shard_count: u32,
    /// Whether shards move automatically when nodes join or leave.
    pub auto_rebalance: bool,
}

impl Default for ShardingSection {
    fn default() -> Self {
        Self {
            strategy: ShardingStrategy::Hash,
            shard_count: 16,
            auto_rebalance: true,
        }
    }
}

/// `[tls]`: PEM files for mutual TLS between peers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// The cluster CA certificate.
    pub ca_cert: PathBuf,
    /// This node's certificate, signed by the CA.
    pub cert: PathBuf,
    /// This node's private key.
    pub key: PathBuf,
}

/// `[security]`: client authentication.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecuritySection {
    /// When set, clients must `AUTH` with it before any other command.
    pub password: Option<String>,
}

/// Whether reads go through the replicator's read fence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadConsistency {
    /// Every read waits for a read fence first (the default).
    Linearizable,
    /// Reads are served from the local state machine as it is (may be stale).
    Stale,
}

/// `[server]`: the RESP server's behaviour and limits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Linearizable (default) or stale local reads.
    pub read_consistency: ReadConsistency,
    /// The largest request (one command with all its arguments), in bytes.
    pub request_bytes_max: u32,
    /// The most arguments in one request, command name included.
    pub request_args_max: u32,
    /// The most client connections served at once.
    pub connections_max: u32,
    /// The most value bytes one read (GET, MGET) may return, in bytes.
    pub reply_bytes_max: u32,
    /// The most pipelined writes from one connection proposed as one batch.
    pub pipeline_batch_max: u32,
    /// The target payload size of one snapshot chunk, in bytes.
    pub snapshot_chunk_bytes: u32,
    /// How often the leader checks for expired keys to purge, in ms (0 disables).
    pub expire_purge_interval_ms: u64,
    /// The most keys one purge entry removes.
    pub expire_purge_batch_max: u32,
    /// In single-node mode, make every write durable (an fsync of the node's journal,
    /// shared by the writes that arrive together) before replying; without it a crash
    /// of the machine may lose the newest writes. A replicated node relies on its Raft
    /// log, which always syncs, and ignores this.
    pub sync_writes: bool,
    /// The most changed keys the state machine holds in memory before writing them to
    /// its database in one transaction (0 writes every applied batch at once). The Raft
    /// log, or a single node's journal, replays what a crash loses. Larger buffers
    /// absorb more rewrites of the same key and touch each database page fewer times,
    /// at the cost of memory: a full buffer is written on a thread of its own while
    /// applies fill the next one, and applying waits only if that one fills to twice
    /// the limit while two writes are still running (65,536 by default).
    pub apply_buffer_keys_max: u32,
    /// The most bytes of changed keys and values held that way, roughly. With two
    /// buffers being written and the next one filling, a node holds at most about five
    /// times this much (16 MiB by default).
    pub apply_buffer_bytes_max: u64,
    /// Threads of the async runtime, which serves clients and moves messages; 0 (the
    /// default) picks the machine's cores minus the two that a replicated node's Raft
    /// and applier threads keep busy, and at least one. See [`Self::async_threads`].
    pub async_threads: u32,
    /// On Linux, run the async runtime's threads and the applier thread (a replicated
    /// node's or a single node's) under `SCHED_BATCH` (true by default). Such a thread, woken to send the Raft
    /// thread's messages, to read a client's request or to apply committed entries,
    /// waits for the thread on its core to block or use up its time slice instead of
    /// preempting it: the Raft thread reaches its log write first, and a loaded node
    /// switches threads less. The Raft thread keeps the default policy. Needs no
    /// privilege; a refusal is reported on standard error once the node serves.
    /// Ignored on other systems.
    pub sched_batch: bool,
    /// Seconds of silence after which the system probes a client's connection, and
    /// drops it when the peer has gone without closing it (Redis's `tcp-keepalive`, 300
    /// by default; 0 turns probing off). Without probes, clients that vanish (a machine
    /// powered off, a network cut) hold their connections, and `connections_max`, for
    /// good.
    pub tcp_keepalive_secs: u32,
    /// Seconds a client may send nothing before its connection is closed (Redis's
    /// `timeout`; 0, the default, never closes one).
    pub idle_timeout_secs: u32,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            read_consistency: ReadConsistency::Linearizable,
            request_bytes_max: 16 * 1024 * 1024,
            request_args_max: 1024 * 1024,
            connections_max: 10_000,
            reply_bytes_max: 64 * 1024 * 1024,
            pipeline_batch_max: 256,
            snapshot_chunk_bytes: 1024 * 1024,
            expire_purge_interval_ms: 1000,
            expire_purge_batch_max: 1000,
            sync_writes: true,
            apply_buffer_keys_max: 65536,
            apply_buffer_bytes_max: 16 * 1024 * 1024,
            async_threads: 0,
            sched_batch: true,
            tcp_keepalive_secs: 300,
            idle_timeout_secs: 0,
        }
    }
}

/// The longest keepalive idle time Linux accepts (`TCP_KEEPIDLE`), in seconds.
const TCP_KEEPALIVE_SECS_MAX: u32 = 32_767;

impl ServerSection {
    /// The async runtime's thread count: `async_threads` when set, or else the machine's
    /// `cores` minus the threads a node keeps busy outside it (Raft and applier, when
    /// `replicated`), and at least one. More runtime threads than free cores only add
    /// wake-ups and context switches.
    #[must_use]
    pub fn async_threads(&self, cores: usize, replicated: bool) -> usize {
        if self.async_threads > 0 {
            return self.async_threads as usize;
        }
        let dedicated = if replicated { 2 } else { 0 };
        cores.saturating_sub(dedicated).max(1)
    }
}

/// The hard ceiling on `server.request_bytes_max` (Redis's own bulk limit is 512 MiB).
pub const REQUEST_BYTES_CEILING: u32 = 512 * 1024 * 1024;

fn invalid(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        reason: reason.into(),
    }
}

fn check(ok: bool, field: &'static str, reason: &str) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(invalid(field, reason))
    }
}

impl Config {
    /// Reads, parses and validates a file.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file, or the field at fault.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// Parses and validates TOML text.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] or [`ConfigError::Invalid`], naming the field at fault.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            message: e.to_string().trim_end().to_owned(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Rejects values that parse but make no sense.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first field at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_node()?;
        let replication = &self.replication;
        check(
            (1..=7).contains(&replication.replication_factor),
            "replication.replication_factor",
            "must be between 1 and 7",
        )?;
        let raft = &self.raft;
        check(
            raft.election_timeout_min > 0,
            "raft.election_timeout_min",
            "must be positive",
        )?;
        check(
            raft.election_timeout_max > raft.election_timeout_min,
            "raft.election_timeout_max",
            "must be greater than raft.election_timeout_min",
        )?;
        check(
            raft.heartbeat_interval > 0 && raft.heartbeat_interval < raft.election_timeout_min,
            "raft.heartbeat_interval",
            "must be positive and less than raft.election_timeout_min",
        )?;
        check(
            raft.snapshot_stretch_percent <= 100,
            "raft.snapshot_stretch_percent",
            "must be at most 100",
        )?;
        check(
            (1..=65_536).contains(&self.sharding.shard_count),
            "sharding.shard_count",
            "must be between 1 and 65536",
        )?;
        if let Some(tls) = &self.tls {
            check(
                !tls.ca_cert.as_os_str().is_empty(),
                "tls.ca_cert",
                "is empty",
            )?;
            check(!tls.cert.as_os_str().is_empty(), "tls.cert", "is empty")?;
            check(!tls.key.as_os_str().is_empty(), "tls.key", "is empty")?;
        }
        if let Some(password) = &self.security.password {
            check(
                !password.is_empty(),
                "security.password",
                "is empty (omit it to disable authentication)",
            )?;
        }
        self.server.validate()
    }

    fn validate_node(&self) -> Result<(), ConfigError> {
        check(self.node.id > 0, "node.id", "must be positive")?;
        check(
            !self.node.data_dir.as_os_str().is_empty(),
            "node.data_dir",
            "is empty",
        )?;
        check(
            self.node.client_listen != self.node.peer_listen,
            "node.peer_listen",
            "must differ from node.client_listen",
        )?;
        let mut ids = BTreeSet::from([self.node.id]);
        for peer in &self.peers {
            if !ids.insert(peer.id) || peer.id == 0 {
                return Err(invalid(
                    "peers.id",
                    format!("node id {} is zero or used twice", peer.id),
                ));
            }
        }
        Ok(())
    }
}

impl ServerSection {
    /// Rejects limits that are out of range.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check(
            (1024..=REQUEST_BYTES_CEILING).contains(&self.request_bytes_max),
            "server.request_bytes_max",
            "must be between 1 KiB and 512 MiB",
        )?;
        check(
            self.request_args_max >= 3,
            "server.request_args_max",
            "must be at least 3 (SET key value)",
        )?;
        check(
            self.connections_max >= 1,
            "server.connections_max",
            "must be positive",
        )?;
        check(
            self.reply_bytes_max >= 1024,
            "server.reply_bytes_max",
            "must be at least 1 KiB",
        )?;
        check(
            (1..=65_536).contains(&self.pipeline_batch_max),
            "server.pipeline_batch_max",
            "must be between 1 and 65536",
        )?;
        check(
            (4096..=64 * 1024 * 1024).contains(&self.snapshot_chunk_bytes),
            "server.snapshot_chunk_bytes",
            "must be between 4 KiB and 64 MiB",
        )?;
        check(
            self.expire_purge_batch_max >= 1,
            "server.expire_purge_batch_max",
            "must be positive",
        )?;
        check(
            self.apply_buffer_keys_max <= 1024 * 1024,
            "server.apply_buffer_keys_max",
            "must be at most 1048576",
        )?;
        check(
            self.apply_buffer_bytes_max <= 4 * 1024 * 1024 * 1024,
            "server.apply_buffer_bytes_max",
            "must be at most 4 GiB",
        )?;
        check(
            self.async_threads <= 1024,
            "server.async_threads",
            "must be at most 1024",
        )?;
        check(
            self.tcp_keepalive_secs <= TCP_KEEPALIVE_SECS_MAX,
            "server.tcp_keepalive_secs",
            "must be at most 32767, the longest wait systems take",
        )
    }
}
