//! Snapshots in the runtime: a follower that missed compacted entries catches up by
//! snapshot, and nodes restart from their stored snapshot, in memory and on disk.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aegis_cluster::runtime::{
    LogStore, MemRouter, Metrics, RaftConfig, RaftNode, RestoreError, SnapshotJob, SnapshotWriter,
    StateMachine,
};
use aegis_log::{DiskStorage, Log, LogConfig};
use aegis_raft::{
    ConfState, Entry, HardState, InitialState, LogIndex, MemStorage, NodeId, SnapshotChunk,
    SnapshotMeta, Storage, StorageError, Term,
};
use bytes::Bytes;
use tempfile::TempDir;

use crate::shared_log::SharedLog;

const VOTERS: [NodeId; 3] = [1, 2, 3];

#[derive(Default)]
struct LedgerState {
    commands: Vec<Vec<u8>>,
    applied: LogIndex,
    snapshots: u64,
    restores: u64,
    /// When set, snapshot copies wait until it is opened.
    gate: Option<Gate>,
}

/// Holds snapshot copies back until opened.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, std::sync::Condvar)>);

impl Gate {
    fn open(&self) {
        *self.0.0.lock().unwrap() = true;
        self.0.1.notify_all();
    }

    fn pass(&self) {
        let mut open = self.0.0.lock().unwrap();
        while !*open {
            open = self.0.1.wait(open).unwrap();
        }
    }
}

/// Keeps every command applied; snapshots are the whole list, length-prefixed.
#[derive(Clone, Default)]
struct Ledger(Arc<Mutex<LedgerState>>);

impl Ledger {
    fn commands(&self) -> Vec<Vec<u8>> {
        self.0.lock().unwrap().commands.clone()
    }
    fn restores(&self) -> u64 {
        self.0.lock().unwrap().restores
    }
    fn snapshots(&self) -> u64 {
        self.0.lock().unwrap().snapshots
    }
}

impl StateMachine for Ledger {
    type Output = ();

    fn apply(&mut self, index: LogIndex, data: &[u8]) {
        let mut state = self.0.lock().unwrap();
        assert!(index > state.applied, "entries apply in order, once");
        state.commands.push(data.to_vec());
        state.applied = index;
    }

    fn applied_index(&self) -> LogIndex {
        self.0.lock().unwrap().applied
    }

    fn snapshot(&mut self) -> Option<Bytes> {
        let mut state = self.0.lock().unwrap();
        state.snapshots += 1;
        let mut out = Vec::new();
        for command in &state.commands {
            out.extend_from_slice(&(command.len() as u32).to_le_bytes());
            out.extend_from_slice(command);
        }
        Some(out.into())
    }

    fn begin_snapshot(&mut self) -> Option<SnapshotJob> {
        let gate = self.0.lock().unwrap().gate.clone();
        let data = self.snapshot()?;
        Some(Box::new(move || {
            if let Some(gate) = gate {
                gate.pass();
            }
            Some(data)
        }))
    }

    fn restore(&mut self, index: LogIndex, mut data: &[u8]) -> Result<(), RestoreError> {
        let mut commands = Vec::new();
        while !data.is_empty() {
            let bad = || RestoreError {
                index,
                reason: "truncated snapshot".to_owned(),
            };
            let len = u32::from_le_bytes(data.get(..4).ok_or_else(bad)?.try_into().unwrap());
            let command = data.get(4..4 + len as usize).ok_or_else(bad)?;
            commands.push(command.to_vec());
            data = &data[4 + len as usize..];
        }
        let mut state = self.0.lock().unwrap();
        state.commands = commands;
        state.applied = index;
        state.restores += 1;
        Ok(())
    }
}

fn config(cluster: &Cluster, id: NodeId) -> RaftConfig {
    let mut config = RaftConfig::new(id, VOTERS.iter().copied().filter(|v| *v != id).collect());
    config.rng_seed = Some(id * 11);
    config.snapshot_every_entries = cluster.snapshot_every_entries;
    config.snapshot_log_growth_percent = cluster.log_growth_percent;
    // Exact thresholds: these tests count the snapshots taken.
    config.snapshot_stretch_percent = 0;
    config.compaction_tail_entries = cluster.tail_entries;
    // Snapshots stop and restart the log writer: keep that path covered (logs without a
    // writer handle still write on the node's thread).
    config.log_writer_thread = true;
    config
}

struct Cluster {
    router: MemRouter,
    nodes: Vec<Option<RaftNode<Ledger>>>,
    ledgers: Vec<Ledger>,
    snapshot_every_entries: u64,
    log_growth_percent: u32,
    tail_entries: u64,
}

impl Cluster {
    /// Snapshots every `snapshot_every_entries` entries, whatever the log's growth.
    fn new(snapshot_every_entries: u64) -> Cluster {
        Cluster::with_log_growth(snapshot_every_entries, 0)
    }

    fn with_log_growth(snapshot_every_entries: u64, log_growth_percent: u32) -> Cluster {
        Cluster {
            router: MemRouter::new(),
            nodes: VOTERS.iter().map(|_| None).collect(),
            ledgers: VOTERS.iter().map(|_| Ledger::default()).collect(),
            snapshot_every_entries,
            log_growth_percent,
            tail_entries: 5,
        }
    }

    /// Keeps `entries` behind each snapshot when compacting (5 otherwise).
    fn with_tail(mut self, entries: u64) -> Cluster {
        self.tail_entries = entries;
        self
    }

    /// Starts node `id` on `storage` with an empty state machine.
    async fn boot<S: LogStore>(&mut self, id: NodeId, storage: S) {
        let i = (id - 1) as usize;
        self.ledgers[i] = Ledger::default();
        let node = RaftNode::new(
            config(self, id),
            storage,
            self.router.endpoint(id),
            self.ledgers[i].clone(),
        )
        .unwrap();
        self.router.register(id, node.message_sender());
        node.start().await.unwrap();
        self.nodes[i] = Some(node);
    }

    /// Starts every voter on a log in memory.
    async fn boot_all_in_memory(&mut self) {
        for id in VOTERS {
            self.boot(id, MemStorage::new(&VOTERS)).await;
        }
    }

    async fn stop(&mut self, id: NodeId) {
        if let Some(node) = self.nodes[(id - 1) as usize].take() {
            node.shutdown().await;
        }
    }

    fn node(&self, id: NodeId) -> &RaftNode<Ledger> {
        self.nodes[(id - 1) as usize].as_ref().unwrap()
    }

    fn ledger(&self, id: NodeId) -> &Ledger {
        &self.ledgers[(id - 1) as usize]
    }

    fn metrics(&self, id: NodeId) -> Metrics {
        self.node(id).metrics().borrow().clone()
    }

    async fn leader(&self) -> NodeId {
        for _ in 0..500 {
            if let Some(node) = self.nodes.iter().flatten().find(|n| n.is_leader()) {
                return node.id();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no leader elected");
    }

    /// Writes `commands` through the leader `leader`, which must keep leading.
    async fn write_all(&self, leader: NodeId, commands: &[Vec<u8>]) {
        for batch in commands.chunks(50) {
            let batch = batch.iter().cloned().map(Bytes::from).collect();
            for result in self.node(leader).propose_batch(batch).await {
                result.unwrap();
            }
        }
    }

    /// Writes the commands numbered `range` through the leader, ten at a time, and
    /// returns them.
    async fn write_in_tens(&self, leader: NodeId, range: std::ops::Range<u32>) -> Vec<Vec<u8>> {
        let written = commands(range);
        for batch in written.chunks(10) {
            self.write_all(leader, batch).await;
        }
        written
    }

    async fn wait_for(&self, what: &str, mut done: impl FnMut() -> bool) {
        for _ in 0..1000 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("timed out waiting for {what}");
    }

    async fn wait_applied(&self, id: NodeId, expected: &[Vec<u8>]) {
        let ledger = self.ledger(id).clone();
        self.wait_for(&format!("node {id} to apply everything"), || {
            ledger.commands().len() >= expected.len()
        })
        .await;
        assert_eq!(ledger.commands(), expected, "node {id}");
    }

    /// Waits until node `id` reports a snapshot installed (the metrics follow the
    /// restore by a moment).
    async fn wait_installed(&self, id: NodeId) -> Metrics {
        self.wait_for(&format!("node {id} to report an install"), || {
            self.metrics(id).snapshots_installed >= 1
        })
        .await;
        self.metrics(id)
    }

    async fn stop_all(&mut self) {
        for id in VOTERS {
            self.stop(id).await;
        }
    }
}

fn commands(range: std::ops::Range<u32>) -> Vec<Vec<u8>> {
    range.map(|i| format!("cmd-{i}").into_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_follower_catches_up_by_snapshot_after_compaction() {
    let logs: Vec<SharedLog> = VOTERS.iter().map(|_| SharedLog::new(&VOTERS)).collect();
    let mut cluster = Cluster::new(40);
    for id in VOTERS {
        cluster.boot(id, logs[(id - 1) as usize].clone()).await;
    }
    let leader = cluster.leader().await;
    let follower = VOTERS.into_iter().find(|id| *id != leader).unwrap();
    cluster.router.isolate(follower);

    let mut expected = commands(0..300);
    cluster.write_all(leader, &expected).await;
    let behind = logs[(follower - 1) as usize].last_index().unwrap();
    let leader_log = logs[(leader - 1) as usize].clone();
    cluster
        .wait_for("the leader to compact past the follower", || {
            leader_log.first_index().unwrap() > behind.next()
        })
        .await;
    assert!(cluster.ledger(leader).snapshots() > 0);
    assert_eq!(cluster.metrics(follower).snapshots_installed, 0);

    cluster.router.reconnect(follower);
    cluster.wait_applied(follower, &expected).await;
    let metrics = cluster.wait_installed(follower).await;
    assert!(cluster.ledger(follower).restores() >= 1);
    assert!(metrics.snapshot_index > behind);

    // Replication goes on after the install, through the log again.
    let more = commands(300..320);
    cluster.write_all(leader, &more).await;
    expected.extend(more);
    for id in VOTERS {
        cluster.wait_applied(id, &expected).await;
    }
    cluster.stop_all().await;
}

/// The same with logs the node's thread writes itself (no writer handle to give out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_log_writer_a_cut_off_follower_catches_up_by_snapshot() {
    let mut cluster = Cluster::new(40);
    cluster.boot_all_in_memory().await;
    let leader = cluster.leader().await;
    let follower = VOTERS.into_iter().find(|id| *id != leader).unwrap();
    cluster.router.isolate(follower);
    let expected = commands(0..300);
    cluster.write_all(leader, &expected).await;
    // Compaction keeps 5 entries behind the snapshot: far past the follower's log.
    cluster
        .wait_for("the leader to snapshot", || {
            cluster.metrics(leader).snapshot_index >= LogIndex(200)
        })
        .await;
    assert!(cluster.metrics(follower).last_log_index < LogIndex(10));

    cluster.router.reconnect(follower);
    cluster.wait_applied(follower, &expected).await;
    cluster.wait_installed(follower).await;
    assert!(cluster.ledger(follower).restores() >= 1);
    cluster.stop_all().await;
}

/// A log that cannot store snapshots: the node goes on with its whole log.
struct NoSnapshots(MemStorage);

impl Storage for NoSnapshots {
    fn initial_state(&self) -> Result<InitialState, StorageError> {
        self.0.initial_state()
    }
    fn entries(
        &self,
        lo: LogIndex,
        hi: LogIndex,
        bytes_max: u64,
    ) -> Result<Vec<Entry>, StorageError> {
        self.0.entries(lo, hi, bytes_max)
    }
    fn term(&self, index: LogIndex) -> Result<Term, StorageError> {
        self.0.term(index)
    }
    fn first_index(&self) -> Result<LogIndex, StorageError> {
        self.0.first_index()
    }
    fn last_index(&self) -> Result<LogIndex, StorageError> {
        self.0.last_index()
    }
    fn snapshot_meta(&self) -> Result<SnapshotMeta, StorageError> {
        self.0.snapshot_meta()
    }
}

impl LogStore for NoSnapshots {
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        self.0.append(entries);
        Ok(())
    }
    fn set_hard_state(&mut self, hard_state: HardState) -> Result<(), StorageError> {
        self.0.set_hard_state(hard_state);
        Ok(())
    }
    fn sync(&mut self) -> Result<(), StorageError> {
        Ok(())
    }
}

/// A log in memory whose snapshot bytes are written apart, by a job held back until its
/// gate opens, and recorded afterwards.
struct GatedSnapshotWrites {
    log: MemStorage,
    gate: Gate,
    written: Arc<Mutex<Option<Vec<u8>>>>,
}

impl Storage for GatedSnapshotWrites {
    fn initial_state(&self) -> Result<InitialState, StorageError> {
        self.log.initial_state()
    }
    fn entries(
        &self,
        lo: LogIndex,
        hi: LogIndex,
        bytes_max: u64,
    ) -> Result<Vec<Entry>, StorageError> {
        self.log.entries(lo, hi, bytes_max)
    }
    fn term(&self, index: LogIndex) -> Result<Term, StorageError> {
        self.log.term(index)
    }
    fn first_index(&self) -> Result<LogIndex, StorageError> {
        self.log.first_index()
    }
    fn last_index(&self) -> Result<LogIndex, StorageError> {
        self.log.last_index()
    }
    fn snapshot_meta(&self) -> Result<SnapshotMeta, StorageError> {
        self.log.snapshot_meta()
    }
    fn snapshot_chunk(&self, offset: u64, len_max: usize) -> Result<SnapshotChunk, StorageError> {
        self.log.snapshot_chunk(offset, len_max)
    }
    fn compact(&mut self, index: LogIndex) -> Result<(), StorageError> {
        self.log.compact(index)
    }
}

impl LogStore for GatedSnapshotWrites {
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        LogStore::append(&mut self.log, entries)
    }
    fn set_hard_state(&mut self, hard_state: HardState) -> Result<(), StorageError> {
        LogStore::set_hard_state(&mut self.log, hard_state)
    }
    fn sync(&mut self) -> Result<(), StorageError> {
        LogStore::sync(&mut self.log)
    }
    fn save_snapshot(&mut self, meta: SnapshotMeta, data: Bytes) -> Result<(), StorageError> {
        LogStore::save_snapshot(&mut self.log, meta, data)
    }
    fn snapshot_writer(&self, _meta: &SnapshotMeta) -> Option<SnapshotWriter> {
        let (gate, written) = (self.gate.clone(), Arc::clone(&self.written));
        Some(Box::new(move |data| {
            gate.pass();
            *written.lock().unwrap() = Some(data.to_vec());
            Ok(())
        }))
    }
    fn record_snapshot(&mut self, meta: SnapshotMeta) -> Result<(), StorageError> {
        let data = self.written.lock().unwrap().take().expect("written first");
        LogStore::save_snapshot(&mut self.log, meta, data.into())
    }
    fn install_snapshot(&mut self, meta: SnapshotMeta, data: Bytes) -> Result<(), StorageError> {
        LogStore::install_snapshot(&mut self.log, meta, data)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_goes_on_while_a_snapshot_is_written() {
    let mut cluster = Cluster::new(10);
    let gate = Gate::default();
    for id in VOTERS {
        let log = GatedSnapshotWrites {
            log: MemStorage::new(&VOTERS),
            gate: gate.clone(),
            written: Arc::default(),
        };
        cluster.boot(id, log).await;
    }
    let leader = cluster.leader().await;
    let expected = cluster.write_in_tens(leader, 0..100).await;
    // Every command commits and applies everywhere while the snapshots' bytes are held
    // back, and none is recorded yet.
    for id in VOTERS {
        cluster.wait_applied(id, &expected).await;
        assert!(
            cluster.ledger(id).snapshots() >= 1,
            "node {id} took a snapshot"
        );
        assert_eq!(cluster.metrics(id).snapshot_index, LogIndex(0), "node {id}");
    }
    gate.open();
    for id in VOTERS {
        cluster
            .wait_for("the written snapshot to be recorded", || {
                cluster.metrics(id).snapshot_index > LogIndex(0)
            })
            .await;
        assert!(cluster.metrics(id).failure.is_none());
    }
    cluster.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applying_goes_on_while_a_snapshot_is_copied() {
    let mut cluster = Cluster::new(10);
    cluster.boot_all_in_memory().await;
    let leader = cluster.leader().await;
    let gate = Gate::default();
    cluster.ledger(leader).0.lock().unwrap().gate = Some(gate.clone());
    let expected = cluster.write_in_tens(leader, 0..100).await;
    // Every command is applied while the first snapshot's copy is held back, and no
    // second snapshot begins before it is done.
    cluster.wait_applied(leader, &expected).await;
    assert_eq!(cluster.ledger(leader).snapshots(), 1);
    assert_eq!(cluster.metrics(leader).snapshot_index, LogIndex(0));
    gate.open();
    cluster
        .wait_for("the copied snapshot to be stored", || {
            cluster.metrics(leader).snapshot_index > LogIndex(0)
        })
        .await;
    // Once stored, the next one is taken as the log grows again.
    let more = commands(100..130);
    cluster.write_all(leader, &more).await;
    cluster
        .wait_for("a second snapshot", || {
            cluster.ledger(leader).snapshots() >= 2
        })
        .await;
    cluster.stop_all().await;
}

/// Writes 200 commands, 10 at a time, with a snapshot due every 10 entries, and returns
/// how many snapshots the leader took.
async fn snapshots_taken(log_growth_percent: u32) -> u64 {
    let mut cluster = Cluster::with_log_growth(10, log_growth_percent);
    cluster.boot_all_in_memory().await;
    let leader = cluster.leader().await;
    let expected = commands(0..200);
    for batch in expected.chunks(10) {
        cluster.write_all(leader, batch).await;
        // The applier skips a snapshot that falls due while the one before is still
        // being copied; on a loaded machine the copy's thread may not have run yet.
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    for id in VOTERS {
        cluster.wait_applied(id, &expected).await;
    }
    let taken = cluster.ledger(leader).snapshots();
    cluster.stop_all().await;
    taken
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_wait_for_the_log_to_grow_by_the_last_snapshots_size() {
    // The ledger's snapshot holds every command so far, 11 bytes each against 7 bytes
    // applied: with growth required, each snapshot waits for the state to grow about
    // 2.6 times (at about 10, 30, 80 commands), where the entry count alone takes one
    // per batch of 10.
    let growing = snapshots_taken(100).await;
    let counted = snapshots_taken(0).await;
    assert!(
        (2..=4).contains(&growing),
        "{growing} snapshots with growth required"
    );
    assert!(
        counted >= 15,
        "{counted} snapshots on the entry count alone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_without_snapshot_support_keeps_every_entry() {
    let mut cluster = Cluster::new(10);
    for id in VOTERS {
        cluster
            .boot(id, NoSnapshots(MemStorage::new(&VOTERS)))
            .await;
    }
    let leader = cluster.leader().await;
    let mut expected = commands(0..60);
    cluster.write_all(leader, &expected).await;
    let ledger = cluster.ledger(leader).clone();
    cluster
        .wait_for("a snapshot", || ledger.snapshots() > 0)
        .await;
    let more = commands(60..160);
    cluster.write_all(leader, &more).await;
    expected.extend(more);
    for id in VOTERS {
        cluster.wait_applied(id, &expected).await;
        let metrics = cluster.metrics(id);
        assert_eq!(metrics.snapshot_index, LogIndex(0), "node {id}");
        assert!(metrics.failure.is_none(), "node {id}: {metrics:?}");
    }
    // The applier stops asking once the node has recorded the log's refusal; until
    // then, on a loaded machine, it may have asked a few more times. A hundred entries
    // later the refusal is long recorded: over the next hundred, the state machine is
    // asked at most once more (a snapshot under way), not once per 10 entries.
    let settled = ledger.snapshots();
    let last = commands(160..260);
    cluster.write_all(leader, &last).await;
    expected.extend(last);
    for id in VOTERS {
        cluster.wait_applied(id, &expected).await;
    }
    assert!(
        ledger.snapshots() <= settled + 1,
        "asked {} times, {settled} before the last 100 entries",
        ledger.snapshots()
    );
    cluster.stop_all().await;
}

fn disk_storage(dir: &TempDir) -> DiskStorage {
    let log = Arc::new(Log::open(dir.path(), LogConfig::default()).unwrap());
    DiskStorage::open(log, 1, ConfState::with_voters(&VOTERS)).unwrap()
}

/// A cluster on disk whose follower missed `written` (its node is stopped while they
/// are written), with the leader's snapshot taken past index 60; the follower is booted
/// again before this returns. Returns the directories, the leader and the follower.
async fn on_disk_with_a_follower_behind(
    cluster: &mut Cluster,
    written: &[Vec<u8>],
) -> (Vec<TempDir>, NodeId, NodeId) {
    let dirs: Vec<TempDir> = VOTERS
        .iter()
        .map(|_| tempfile::tempdir().unwrap())
        .collect();
    for id in VOTERS {
        cluster
            .boot(id, disk_storage(&dirs[(id - 1) as usize]))
            .await;
    }
    let leader = cluster.leader().await;
    let follower = VOTERS.into_iter().find(|id| *id != leader).unwrap();
    cluster.stop(follower).await;
    cluster.write_all(leader, written).await;
    cluster
        .wait_for("the leader to snapshot", || {
            cluster.metrics(leader).snapshot_index >= LogIndex(60)
        })
        .await;
    cluster
        .boot(follower, disk_storage(&dirs[(follower - 1) as usize]))
        .await;
    cluster.wait_applied(follower, written).await;
    (dirs, leader, follower)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_disk_a_stopped_follower_installs_a_snapshot_and_all_restart_from_theirs() {
    let mut cluster = Cluster::new(30);
    let mut expected = commands(0..150);
    // The follower's log ends long before the leader's starts.
    let (dirs, _, follower) = on_disk_with_a_follower_behind(&mut cluster, &expected).await;
    cluster.wait_installed(follower).await;
    assert!(cluster.ledger(follower).restores() >= 1);

    // Every node restarts with an empty state machine: it is restored from the node's
    // own stored snapshot, and the entries after it come from the log.
    cluster.stop_all().await;
    for id in VOTERS {
        cluster
            .boot(id, disk_storage(&dirs[(id - 1) as usize]))
            .await;
        assert_eq!(
            cluster.ledger(id).restores(),
            1,
            "node {id} restored at start"
        );
        assert!(cluster.metrics(id).snapshot_index > LogIndex(0));
    }
    let leader = cluster.leader().await;
    let more = commands(150..160);
    cluster.write_all(leader, &more).await;
    expected.extend(more);
    for id in VOTERS {
        cluster.wait_applied(id, &expected).await;
    }
    cluster.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_disk_a_follower_a_little_behind_catches_up_from_the_tail_kept_behind_a_snapshot() {
    let mut cluster = Cluster::new(30).with_tail(200);
    let mut expected = commands(0..90);
    // The snapshot covers entries the follower never got, but the leader kept them.
    let (dirs, _, follower) = on_disk_with_a_follower_behind(&mut cluster, &expected).await;
    assert_eq!(cluster.metrics(follower).snapshots_installed, 0);
    assert_eq!(cluster.ledger(follower).restores(), 0);

    // Every node restarts on its log, the tail behind its snapshot included.
    cluster.stop_all().await;
    for id in VOTERS {
        cluster
            .boot(id, disk_storage(&dirs[(id - 1) as usize]))
            .await;
    }
    let leader = cluster.leader().await;
    let more = commands(90..100);
    cluster.write_all(leader, &more).await;
    expected.extend(more);
    for id in VOTERS {
        cluster.wait_applied(id, &expected).await;
    }
    cluster.stop_all().await;
}
