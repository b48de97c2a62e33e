//! The async driver: a 3-node cluster in one process over the in-memory router.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aegis_cluster::runtime::{
    MemRouter, NodeThread, RaftConfig, RaftError, RaftNode, StateMachine, ThreadStart,
};
use aegis_raft::{LogIndex, MemStorage, NodeId};

use crate::shared_log::SharedLog;

/// Every command applied, with its index.
type Applied = Vec<(LogIndex, Vec<u8>)>;

/// Appends every applied command to a list shared with the test.
#[derive(Clone, Default)]
struct Journal {
    applied: Arc<Mutex<Applied>>,
}

impl Journal {
    fn commands(&self) -> Vec<Vec<u8>> {
        self.applied
            .lock()
            .unwrap()
            .iter()
            .map(|(_, c)| c.clone())
            .collect()
    }
}

impl StateMachine for Journal {
    type Output = usize;

    fn apply(&mut self, index: LogIndex, data: &[u8]) -> usize {
        let mut applied = self.applied.lock().unwrap();
        applied.push((index, data.to_vec()));
        applied.len()
    }

    fn applied_index(&self) -> LogIndex {
        self.applied
            .lock()
            .unwrap()
            .last()
            .map_or(LogIndex(0), |(i, _)| *i)
    }
}

struct Cluster {
    router: MemRouter,
    nodes: Vec<Option<RaftNode<Journal>>>,
    logs: Vec<SharedLog>,
    journals: Vec<Journal>,
}

const VOTERS: [NodeId; 3] = [1, 2, 3];

fn config(id: NodeId) -> RaftConfig {
    let mut config = RaftConfig::new(id, VOTERS.iter().copied().filter(|v| *v != id).collect());
    config.rng_seed = Some(id);
    config
}

impl Cluster {
    async fn start() -> Cluster {
        let mut cluster = Cluster {
            router: MemRouter::new(),
            nodes: Vec::new(),
            logs: VOTERS.iter().map(|_| SharedLog::new(&VOTERS)).collect(),
            journals: VOTERS.iter().map(|_| Journal::default()).collect(),
        };
        for id in VOTERS {
            cluster.nodes.push(None);
            cluster.boot(id).await;
        }
        cluster
    }

    /// Starts node `id` on the log it has, with a state machine that remembers what it
    /// applied (as a persistent one would).
    async fn boot(&mut self, id: NodeId) {
        let i = (id - 1) as usize;
        let node = RaftNode::new(
            config(id),
            self.logs[i].clone(),
            self.router.endpoint(id),
            self.journals[i].clone(),
        )
        .unwrap();
        self.router.register(id, node.message_sender());
        node.start().await.unwrap();
        self.nodes[i] = Some(node);
    }

    async fn stop(&mut self, id: NodeId) {
        let node = self.nodes[(id - 1) as usize].take().unwrap();
        node.shutdown().await;
    }

    fn node(&self, id: NodeId) -> &RaftNode<Journal> {
        self.nodes[(id - 1) as usize].as_ref().unwrap()
    }

    async fn leader(&self, except: Option<NodeId>) -> NodeId {
        for _ in 0..500 {
            for node in self.nodes.iter().flatten() {
                if node.is_leader() && Some(node.id()) != except {
                    return node.id();
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no leader elected");
    }

    /// Proposes through whichever node leads, retrying while leadership moves.
    async fn write(&self, command: &[u8], except: Option<NodeId>) -> usize {
        for _ in 0..100 {
            let leader = self.leader(except).await;
            match self.node(leader).propose(command.to_vec()).await {
                Ok(n) => return n,
                Err(
                    RaftError::NotLeader { .. }
                    | RaftError::Superseded { .. }
                    | RaftError::TimedOut(_),
                ) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("write failed: {e}"),
            }
        }
        panic!("write never succeeded");
    }

    async fn wait_applied(&self, id: NodeId, count: usize) {
        for _ in 0..500 {
            if self.journals[(id - 1) as usize].commands().len() >= count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("node {id} never applied {count} commands");
    }
}

/// Waits (bounded) until a lone node has elected itself.
async fn until_leader<SM: StateMachine>(node: &RaftNode<SM>) {
    for _ in 0..500 {
        if node.is_leader() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("node {} never led", node.id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_elect_a_leader_and_replicate() {
    let cluster = Cluster::start().await;
    for i in 0..20u8 {
        cluster.write(&[i], None).await;
    }
    let expected: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i]).collect();
    for id in VOTERS {
        cluster.wait_applied(id, 20).await;
        assert_eq!(
            cluster.journals[(id - 1) as usize].commands(),
            expected,
            "node {id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_refuses_proposals_and_names_the_leader() {
    let cluster = Cluster::start().await;
    let leader = cluster.leader(None).await;
    cluster.write(b"x", None).await;
    let follower = VOTERS.into_iter().find(|id| *id != leader).unwrap();
    // The follower learns the leader from its first append at the latest.
    cluster.wait_applied(follower, 1).await;
    match cluster.node(follower).propose(b"y".to_vec()).await {
        Err(RaftError::NotLeader { leader_hint }) => assert_eq!(leader_hint, Some(leader)),
        other => panic!("expected NotLeader, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_on_every_node_see_acknowledged_writes() {
    let cluster = Cluster::start().await;
    let acknowledged = cluster.write(b"a", None).await;
    for id in VOTERS {
        let node = cluster.node(id);
        let index = loop {
            match node.read().await {
                Ok(index) => break index,
                Err(RaftError::NotLeader { .. } | RaftError::TimedOut(_)) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("read failed on node {id}: {e}"),
            }
        };
        assert!(index.0 >= 1);
        assert!(
            cluster.journals[(id - 1) as usize].commands().len() >= acknowledged,
            "node {id} read stale state"
        );
    }
}

/// Reads on a follower share fences while writes go on; each must still see every
/// write acknowledged before it began.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_follower_reads_each_see_the_writes_acknowledged_before_them() {
    let cluster = Arc::new(Cluster::start().await);
    let leader = cluster.leader(None).await;
    let follower = VOTERS.into_iter().find(|id| *id != leader).unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..12u8 {
        let cluster = Arc::clone(&cluster);
        tasks.spawn(async move {
            for i in 0..6u8 {
                let acknowledged = cluster.write(&[task, i], None).await;
                loop {
                    match cluster.node(follower).read().await {
                        Ok(_) => break,
                        Err(RaftError::NotLeader { .. } | RaftError::TimedOut(_)) => {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        Err(e) => panic!("read failed: {e}"),
                    }
                }
                let seen = cluster.journals[(follower - 1) as usize].commands().len();
                assert!(
                    seen >= acknowledged,
                    "a read after write {acknowledged} saw only {seen}"
                );
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_leader_is_replaced_and_catches_up_after_healing() {
    let cluster = Cluster::start().await;
    cluster.write(b"before", None).await;
    let old = cluster.leader(None).await;
    cluster.router.isolate(old);
    let new = cluster.leader(Some(old)).await;
    assert_ne!(new, old);
    let count = cluster.write(b"during", Some(old)).await;
    cluster.router.reconnect(old);
    cluster.wait_applied(old, count).await;
    let commands = cluster.journals[(old - 1) as usize].commands();
    assert_eq!(commands, [b"before".to_vec(), b"during".to_vec()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_restarting_every_node() {
    let mut cluster = Cluster::start().await;
    for i in 0..10u8 {
        cluster.write(&[i], None).await;
    }
    for id in VOTERS {
        cluster.stop(id).await;
    }
    for id in VOTERS {
        cluster.boot(id).await;
    }
    cluster.write(b"after", None).await;
    let mut expected: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i]).collect();
    expected.push(b"after".to_vec());
    for id in VOTERS {
        cluster.wait_applied(id, 11).await;
        assert_eq!(
            cluster.journals[(id - 1) as usize].commands(),
            expected,
            "node {id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_fail_cleanly_before_start_and_after_shutdown() {
    let router = MemRouter::new();
    let node = RaftNode::new(
        config(1),
        MemStorage::new(&VOTERS),
        router.endpoint(1),
        Journal::default(),
    )
    .unwrap();
    assert_eq!(
        node.propose(b"x".to_vec()).await.unwrap_err(),
        RaftError::NotRunning
    );
    node.start().await.unwrap();
    assert_eq!(node.start().await.unwrap_err(), RaftError::AlreadyStarted);
    node.shutdown().await;
    assert_eq!(node.read().await.unwrap_err(), RaftError::NotRunning);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_thread_of_a_node_runs_the_start_hook_first() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut config = RaftConfig::new(1, Vec::new());
    config.on_thread_start = Some(ThreadStart::new({
        let seen = Arc::clone(&seen);
        move |thread| {
            let name = std::thread::current().name().unwrap_or_default().to_owned();
            seen.lock().unwrap().push((thread, name));
        }
    }));
    let router = MemRouter::new();
    let node = RaftNode::new(
        config,
        MemStorage::new(&[1]),
        router.endpoint(1),
        Journal::default(),
    )
    .unwrap();
    assert!(seen.lock().unwrap().is_empty(), "no thread before start");
    node.start().await.unwrap();
    until_leader(&node).await;
    // Answered by the applier, which the node's thread starts.
    assert_eq!(node.propose(b"x".to_vec()).await.unwrap(), 1);
    node.shutdown().await;
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_by_key(|(_, name)| name.clone());
    assert_eq!(
        seen,
        [
            (NodeThread::Apply, "aegis-apply-1".to_owned()),
            (NodeThread::Raft, "aegis-raft-1".to_owned()),
        ]
    );
}

/// Applies like [`Journal`], except that a command reading `fail` makes it fail for good.
#[derive(Clone, Default)]
struct Failing {
    journal: Journal,
    failed: Arc<Mutex<Option<String>>>,
}

impl StateMachine for Failing {
    type Output = usize;

    fn apply(&mut self, index: LogIndex, data: &[u8]) -> usize {
        assert!(
            self.failed.lock().unwrap().is_none(),
            "entry {index} applied after the state machine failed"
        );
        if data == b"fail" {
            *self.failed.lock().unwrap() = Some(format!("disk gone at entry {}", index.0));
            return 0;
        }
        self.journal.apply(index, data)
    }

    fn applied_index(&self) -> LogIndex {
        self.journal.applied_index()
    }

    fn failure(&self) -> Option<String> {
        self.failed.lock().unwrap().clone()
    }
}

/// A state machine that fails stops its node, as a log that fails does: nothing after
/// the failing batch is applied, no read passes it, and the reason is in the metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_state_machine_stops_its_node() {
    let router = MemRouter::new();
    let state = Failing::default();
    let node = RaftNode::new(
        RaftConfig::new(1, Vec::new()),
        MemStorage::new(&[1]),
        router.endpoint(1),
        state.clone(),
    )
    .unwrap();
    node.start().await.unwrap();
    until_leader(&node).await;
    assert_eq!(node.propose(b"a".to_vec()).await.unwrap(), 1);
    let read_before = node.read().await.unwrap();
    // The failing batch's proposal gets the state machine's output all the same.
    assert_eq!(node.propose(b"fail".to_vec()).await.unwrap(), 0);
    let mut metrics = node.metrics();
    let stopped = tokio::time::timeout(
        Duration::from_secs(10),
        metrics.wait_for(|m| m.failure.is_some()),
    )
    .await
    .expect("the node reports the failure")
    .unwrap()
    .clone();
    let reason = stopped.failure.clone().unwrap();
    assert!(reason.contains("the state machine failed"), "{reason}");
    assert!(reason.contains("disk gone at entry 3"), "{reason}");
    // The failed entry does not count as applied.
    assert!(stopped.applied_index.0 < 3, "{stopped:?}");
    assert!(read_before.0 < 3);
    // Refused, or dropped unanswered if queued while the thread was winding down.
    for refused in [
        node.propose(b"b".to_vec()).await.unwrap_err(),
        node.read().await.unwrap_err(),
    ] {
        assert!(
            matches!(refused, RaftError::NotRunning | RaftError::Abandoned),
            "{refused:?}"
        );
    }
    assert_eq!(state.journal.commands(), vec![b"a".to_vec()]);
    node.shutdown().await;
}

/// A proposal still waiting when its node stops is abandoned, not refused: it was
/// appended, and may yet commit under another leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposal_waiting_when_its_node_stops_is_abandoned() {
    let mut cluster = Cluster::start().await;
    cluster.write(b"before", None).await;
    let leader = cluster.leader(None).await;
    // Cut off, the leader appends the proposal but cannot commit it.
    cluster.router.isolate(leader);
    let waiting = {
        let node = cluster.nodes[(leader - 1) as usize].take().unwrap();
        let node = Arc::new(node);
        let proposer = Arc::clone(&node);
        let appended_before = node.metrics().borrow().last_log_index;
        let waiting = tokio::spawn(async move { proposer.propose(b"cut off".to_vec()).await });
        let mut metrics = node.metrics();
        tokio::time::timeout(
            Duration::from_secs(10),
            metrics.wait_for(|m| m.last_log_index > appended_before),
        )
        .await
        .expect("the leader appends the proposal")
        .unwrap();
        assert!(!waiting.is_finished(), "answered without a quorum");
        node.shutdown().await;
        waiting
    };
    assert_eq!(waiting.await.unwrap().unwrap_err(), RaftError::Abandoned);
}
