//! Membership changes and leadership transfer through the async driver, on in-memory
//! clusters over the router.

use std::collections::BTreeMap;
use std::time::Duration;

use aegis_cluster::runtime::{MemRouter, Metrics, RaftConfig, RaftError, RaftNode};
use aegis_raft::{
    ConfChange, ConfChangeError, ConfChangeOp, ConfState, MemStorage, NodeId, Role, TransferError,
};
use bytes::Bytes;

use crate::Journal;

const VOTERS: [NodeId; 3] = [1, 2, 3];

/// Polls every 20 ms, up to this many times (10 s): generous, never a timing assertion.
const POLLS: usize = 500;

/// A membership change, retried on whichever node leads.
#[derive(Clone, Copy, Debug)]
enum Change {
    AddLearner(NodeId),
    Promote(NodeId),
    Remove(NodeId),
}

struct Cluster {
    router: MemRouter,
    nodes: BTreeMap<NodeId, RaftNode<Journal>>,
    journals: BTreeMap<NodeId, Journal>,
}

fn config(id: NodeId, peers: Vec<NodeId>) -> RaftConfig {
    let mut config = RaftConfig::new(id, peers);
    config.rng_seed = Some(id);
    config.learner_catchup_entries_max = 5;
    config
}

impl Cluster {
    async fn start() -> Cluster {
        let mut cluster = Cluster {
            router: MemRouter::new(),
            nodes: BTreeMap::new(),
            journals: BTreeMap::new(),
        };
        for id in VOTERS {
            let peers = VOTERS.iter().copied().filter(|p| *p != id).collect();
            cluster
                .boot(config(id, peers), MemStorage::new(&VOTERS))
                .await;
        }
        cluster
    }

    /// Starts a node that is in no configuration yet: it learns one from the leader.
    async fn join(&mut self, id: NodeId) {
        self.boot(
            config(id, Vec::new()),
            MemStorage::with_conf_state(ConfState::default()),
        )
        .await;
    }

    async fn boot(&mut self, config: RaftConfig, storage: MemStorage) {
        let id = config.node_id;
        let journal = Journal::default();
        let node =
            RaftNode::new(config, storage, self.router.endpoint(id), journal.clone()).unwrap();
        self.router.register(id, node.message_sender());
        node.start().await.unwrap();
        self.nodes.insert(id, node);
        self.journals.insert(id, journal);
    }

    async fn stop(&mut self, id: NodeId) {
        let node = self.nodes.remove(&id).unwrap();
        node.shutdown().await;
        self.journals.remove(&id);
    }

    fn node(&self, id: NodeId) -> &RaftNode<Journal> {
        &self.nodes[&id]
    }

    fn metrics(&self, id: NodeId) -> Metrics {
        self.node(id).metrics().borrow().clone()
    }

    /// A leader other than those in `except`.
    async fn leader(&self, except: &[NodeId]) -> NodeId {
        for _ in 0..POLLS {
            for (id, node) in &self.nodes {
                if node.is_leader() && !except.contains(id) {
                    return *id;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no leader outside {except:?}");
    }

    /// Proposes through whichever node leads (outside `except`), retrying while
    /// leadership moves.
    async fn write(&self, command: &[u8], except: &[NodeId]) -> Bytes {
        for _ in 0..100 {
            let leader = self.leader(except).await;
            match self.node(leader).propose(command.to_vec()).await {
                Ok(output) => return output,
                Err(
                    RaftError::NotLeader { .. }
                    | RaftError::Superseded { .. }
                    | RaftError::TimedOut(_)
                    | RaftError::Proposal(_),
                ) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(e) => panic!("write failed: {e}"),
            }
        }
        panic!("write never succeeded");
    }

    /// Carries out `change` on whichever node leads, retrying while the leader is new
    /// (no entry of its term committed yet), a learner catches up, or leadership moves.
    async fn change(&self, change: Change) -> ConfState {
        for _ in 0..POLLS {
            let node = self.node(self.leader(&[]).await);
            let result = match change {
                Change::AddLearner(id) => node.add_learner(id).await,
                Change::Promote(id) => node.promote_learner(id).await,
                Change::Remove(id) => node.remove_node(id).await,
            };
            match result {
                Ok(conf) => return conf,
                Err(RaftError::ConfChange(refusal))
                    if matches!(
                        refusal.reason(),
                        ConfChangeError::NoCommitInTerm
                            | ConfChangeError::InProgress { .. }
                            | ConfChangeError::LearnerBehind { .. }
                    ) => {}
                Err(RaftError::NotLeader { .. } | RaftError::Superseded { .. }) => {}
                Err(e) => panic!("{change:?} failed: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{change:?} never succeeded");
    }

    async fn wait_for(&self, id: NodeId, what: &str, done: impl Fn(&Metrics) -> bool) {
        for _ in 0..POLLS {
            if done(&self.metrics(id)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "node {id} never reached: {what}; metrics {:?}",
            self.metrics(id)
        );
    }

    /// Waits until every running node applied exactly `expected`, in order.
    async fn check_commands(&self, expected: &[Vec<u8>]) {
        for (id, journal) in &self.journals {
            for _ in 0..POLLS {
                if journal.commands().len() >= expected.len() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert_eq!(journal.commands(), expected, "node {id}");
        }
    }

    async fn shutdown(self) {
        for node in self.nodes.values() {
            node.shutdown().await;
        }
    }
}

fn commands(range: std::ops::Range<u8>) -> Vec<Vec<u8>> {
    range.map(|i| vec![i]).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_learner_is_promoted_and_counted_in_the_quorum() {
    let mut cluster = Cluster::start().await;
    for command in commands(0..5) {
        cluster.write(&command, &[]).await;
    }
    cluster.join(4).await;
    let conf = cluster.change(Change::AddLearner(4)).await;
    assert_eq!(conf.voters, VOTERS);
    assert_eq!(conf.learners, [4]);
    for command in commands(5..10) {
        cluster.write(&command, &[]).await;
    }
    // The learner receives the whole log, commands before its addition included, and
    // the configuration entries are not handed to its state machine.
    cluster.check_commands(&commands(0..10)).await;
    let conf = cluster.change(Change::Promote(4)).await;
    assert_eq!(conf.voters, [1, 2, 3, 4]);
    assert!(conf.learners.is_empty());
    cluster
        .wait_for(4, "voter configuration", |m| {
            m.conf_state.voters == [1, 2, 3, 4]
        })
        .await;

    // Three of four voters up: writes commit.
    let leader = cluster.leader(&[]).await;
    let stopped = *VOTERS.iter().find(|v| **v != leader).unwrap();
    cluster.stop(stopped).await;
    for command in commands(10..15) {
        cluster.write(&command, &[]).await;
    }
    cluster.check_commands(&commands(0..15)).await;

    // Drop the stopped node from the group, then cut off the other original follower:
    // the two voters left of three are the leader and node 4, so nothing commits unless
    // node 4 counts.
    let conf = cluster.change(Change::Remove(stopped)).await;
    assert_eq!(conf.voters.len(), 3);
    assert!(conf.voters.contains(&4) && !conf.voters.contains(&stopped));
    let leader = cluster.leader(&[]).await;
    let cut = *conf
        .voters
        .iter()
        .find(|v| **v != leader && **v != 4)
        .unwrap();
    cluster.router.isolate(cut);
    for command in commands(15..20) {
        cluster.write(&command, &[cut]).await;
    }
    let leader = cluster.leader(&[cut]).await;
    let m = cluster.metrics(leader);
    assert!(m.commit_index.0 > 0 && m.conf_state.voters == conf.voters);
    cluster.router.reconnect(cut);
    cluster.check_commands(&commands(0..20)).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_removes_itself_steps_down_and_writes_continue() {
    let cluster = Cluster::start().await;
    cluster.write(&[0], &[]).await;
    let old = cluster.leader(&[]).await;
    let conf = loop {
        match cluster.node(old).remove_node(old).await {
            Ok(conf) => break conf,
            Err(RaftError::ConfChange(refusal))
                if matches!(refusal.reason(), ConfChangeError::NoCommitInTerm) =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("removing the leader failed: {e}"),
        }
    };
    let rest: Vec<NodeId> = VOTERS.iter().copied().filter(|v| *v != old).collect();
    assert_eq!(conf.voters, rest);
    cluster
        .wait_for(old, "stepping down", |m| m.role != Role::Leader)
        .await;
    let new = cluster.leader(&[old]).await;
    assert!(rest.contains(&new));
    for command in commands(1..6) {
        cluster.write(&command, &[old]).await;
    }
    for id in &rest {
        cluster
            .wait_for(*id, "the configuration without the old leader", |m| {
                m.conf_state.voters == rest
            })
            .await;
        let journal = &cluster.journals[id];
        for _ in 0..POLLS {
            if journal.commands().len() >= 6 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(journal.commands(), commands(0..6), "node {id}");
    }
    cluster
        .wait_for(old, "stepped down", |m| m.role != Role::Leader)
        .await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_change_while_one_is_in_progress_is_refused() {
    let mut cluster = Cluster::start().await;
    cluster.write(&[0], &[]).await;
    cluster.join(4).await;
    cluster.join(5).await;
    let leader = cluster.leader(&[]).await;
    // Without its followers the leader cannot commit the first change.
    for id in VOTERS.iter().filter(|v| **v != leader) {
        cluster.router.isolate(*id);
    }
    let node = cluster.node(leader);
    let mut first = Box::pin(node.add_learner(4));
    // The first poll of `first` hands the change to the node; then, once it is in the
    // leader's log, a second change is refused.
    let second = tokio::select! {
        biased;
        outcome = &mut first => panic!("the first change finished without a quorum: {outcome:?}"),
        second = async {
            cluster
                .wait_for(leader, "the first change appended", |m| {
                    m.conf_state.learners == [4]
                })
                .await;
            node.add_learner(5).await
        } => second,
    };
    match second {
        Err(RaftError::ConfChange(refusal)) => assert!(
            matches!(refusal.reason(), ConfChangeError::InProgress { .. }),
            "{refusal}"
        ),
        other => panic!("expected the change in progress to refuse, got {other:?}"),
    }
    for id in VOTERS {
        cluster.router.reconnect(id);
    }
    // Healed, the first change commits, unless leadership moved meanwhile and a new
    // leader's entry replaced it.
    match first.await {
        Ok(conf) => assert_eq!(conf.learners, [4]),
        Err(RaftError::Superseded { .. } | RaftError::TimedOut(_)) => {}
        Err(e) => panic!("the first change failed: {e}"),
    }
    // Once the first change is through, the next one is accepted.
    let conf = cluster.change(Change::AddLearner(5)).await;
    assert!(conf.learners.contains(&5));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_moves_to_a_follower_on_request() {
    let cluster = Cluster::start().await;
    cluster.write(&[0], &[]).await;
    let old = cluster.leader(&[]).await;
    let target = *VOTERS.iter().find(|v| **v != old).unwrap();

    // Refusals are typed: a stranger, this node itself, and asking a follower.
    match cluster.node(old).transfer_leadership(9).await {
        Err(RaftError::Transfer(refusal)) => assert!(
            matches!(refusal.reason(), TransferError::NotAVoter { target: 9 }),
            "{refusal}"
        ),
        other => panic!("expected NotAVoter, got {other:?}"),
    }
    match cluster.node(old).transfer_leadership(old).await {
        Err(RaftError::Transfer(refusal)) => assert!(
            matches!(refusal.reason(), TransferError::TargetIsSelf { .. }),
            "{refusal}"
        ),
        other => panic!("expected TargetIsSelf, got {other:?}"),
    }
    cluster
        .wait_for(target, "knowing the leader", |m| m.leader == Some(old))
        .await;
    match cluster.node(target).transfer_leadership(target).await {
        Err(RaftError::NotLeader { leader_hint }) => assert_eq!(leader_hint, Some(old)),
        other => panic!("expected NotLeader, got {other:?}"),
    }

    cluster.node(old).transfer_leadership(target).await.unwrap();
    cluster
        .wait_for(old, "following the target", |m| {
            m.role != Role::Leader && m.leader == Some(target)
        })
        .await;
    cluster
        .wait_for(target, "leading", |m| m.role == Role::Leader)
        .await;
    let output = cluster.write(&[1], &[]).await;
    assert_eq!(&output[..], b"2");
    cluster.check_commands(&commands(0..2)).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joint_change_resolves_once_the_joint_phase_is_left() {
    let mut cluster = Cluster::start().await;
    cluster.write(&[0], &[]).await;
    cluster.join(4).await;
    cluster.join(5).await;
    let change = ConfChange::Change(vec![ConfChangeOp::AddVoter(4), ConfChangeOp::AddVoter(5)]);
    let conf = loop {
        let leader = cluster.leader(&[]).await;
        match cluster.node(leader).change_membership(change.clone()).await {
            Ok(conf) => break conf,
            Err(RaftError::ConfChange(refusal))
                if matches!(refusal.reason(), ConfChangeError::NoCommitInTerm) => {}
            Err(RaftError::NotLeader { .. } | RaftError::Superseded { .. }) => {}
            Err(e) => panic!("the joint change failed: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(conf.voters, [1, 2, 3, 4, 5]);
    assert!(
        !conf.is_joint(),
        "answered inside the joint phase: {conf:?}"
    );
    cluster.write(&[1], &[]).await;
    cluster.check_commands(&commands(0..2)).await;
    for id in [4, 5] {
        cluster
            .wait_for(id, "the five-voter configuration", |m| m.conf_state == conf)
            .await;
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_to_an_unreachable_target_is_abandoned() {
    let cluster = Cluster::start().await;
    cluster.write(&[0], &[]).await;
    let leader = cluster.leader(&[]).await;
    let target = *VOTERS.iter().find(|v| **v != leader).unwrap();
    cluster.router.isolate(target);
    // Whether or not the leader sends it `TimeoutNow`, the target hears nothing and
    // never campaigns; the core gives up after an election timeout and the leader keeps
    // leading (the third node still answers it).
    match cluster.node(leader).transfer_leadership(target).await {
        Err(RaftError::TransferFailed {
            target: failed,
            leader: now,
        }) => {
            assert_eq!(failed, target);
            assert_eq!(now, Some(leader));
        }
        other => panic!("expected the transfer to be abandoned, got {other:?}"),
    }
    assert!(cluster.node(leader).is_leader());
    // The metrics catch up with the abandoned transfer when the node next publishes them.
    cluster
        .wait_for(leader, "no transfer in progress", |m| {
            m.transfer_target.is_none()
        })
        .await;
    cluster.router.reconnect(target);
    cluster.write(&[1], &[]).await;
    cluster.check_commands(&commands(0..2)).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_learner_is_promoted_only_once_caught_up() {
    let mut cluster = Cluster::start().await;
    cluster.join(4).await;
    cluster.change(Change::AddLearner(4)).await;
    cluster.router.isolate(4);
    // More than `learner_catchup_entries_max` (5) entries the learner does not have.
    for command in commands(0..10) {
        cluster.write(&command, &[4]).await;
    }
    let refusal = loop {
        let leader = cluster.leader(&[4]).await;
        match cluster.node(leader).promote_learner(4).await {
            Err(RaftError::ConfChange(refusal))
                if matches!(refusal.reason(), ConfChangeError::NoCommitInTerm) => {}
            Err(RaftError::NotLeader { .. }) => {}
            Err(RaftError::ConfChange(refusal)) => break refusal,
            other => panic!("expected the lagging learner to be refused, got {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        matches!(
            refusal.reason(),
            ConfChangeError::LearnerBehind { id: 4, .. }
        ),
        "{refusal}"
    );
    assert!(
        cluster
            .metrics(cluster.leader(&[4]).await)
            .conf_state
            .learners
            == [4]
    );
    cluster.router.reconnect(4);
    let conf = cluster.change(Change::Promote(4)).await;
    assert_eq!(conf.voters, [1, 2, 3, 4]);
    cluster.check_commands(&commands(0..10)).await;
    cluster.shutdown().await;
}
