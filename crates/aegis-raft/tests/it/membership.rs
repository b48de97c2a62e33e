//! Membership changes: single-server changes, joint consensus (C_old,new then C_new),
//! learners and their promotion, removal of the leader, and configurations that roll back
//! with the entries that carried them.

use std::collections::BTreeMap;

use aegis_raft::{
    ConfChange, ConfChangeError, ConfChangeOp, ConfChangeRecord, ConfState, Config, EntryKind,
    LogIndex, MemStorage, Message, NodeId, Payload, Role, Term, VoteRequest,
};

use crate::harness::{Cluster, config};

use ConfChangeOp::{AddLearner, AddVoter, PromoteLearner, RemoveNode};

/// A group whose storage names `voters`, plus nodes `joiners` that start knowing no
/// configuration at all, as a node added to a running group does.
/// Neither pre-vote nor check-quorum: nothing but the leader's heartbeats keeps a node's
/// campaigns from raising everyone's term.
fn without_pre_vote_or_check_quorum(id: NodeId) -> Config {
    Config {
        pre_vote: false,
        check_quorum: false,
        ..config(id)
    }
}

fn group_with(
    voters: &[NodeId],
    joiners: &[NodeId],
    make: impl Fn(NodeId) -> Config + 'static,
) -> Cluster {
    let mut storages = BTreeMap::new();
    for &id in voters {
        storages.insert(id, MemStorage::new(voters));
    }
    for &id in joiners {
        storages.insert(id, MemStorage::with_conf_state(ConfState::default()));
    }
    Cluster::with_storages(storages, make)
}

fn group(voters: &[NodeId], joiners: &[NodeId]) -> Cluster {
    group_with(voters, joiners, config)
}

fn conf(voters: &[NodeId], learners: &[NodeId], outgoing: &[NodeId]) -> ConfState {
    ConfState {
        voters: voters.to_vec(),
        learners: learners.to_vec(),
        voters_outgoing: outgoing.to_vec(),
    }
}

fn change(ops: &[ConfChangeOp]) -> ConfChange {
    ConfChange::Change(ops.to_vec())
}

/// The configuration changes `id` applied, in order.
fn applied_changes(cluster: &Cluster, id: NodeId) -> Vec<ConfChangeRecord> {
    cluster.applied[&id]
        .iter()
        .filter(|e| e.kind == EntryKind::ConfChange)
        .map(|e| ConfChangeRecord::decode(&e.data).expect("a valid record"))
        .collect()
}

fn propose_data(cluster: &mut Cluster, leader: NodeId, data: &str) -> LogIndex {
    let index = cluster
        .node_mut(leader)
        .propose(data.to_owned().into())
        .unwrap();
    cluster.settle();
    index
}

#[test]
fn a_learner_receives_the_log_never_campaigns_and_is_promoted_once_caught_up() {
    let mut c = group(&[1, 2, 3], &[4]);
    c.elect(1);
    propose_data(&mut c, 1, "before");
    let at = c.node_mut(1).add_learner(4).unwrap();
    assert_eq!(c.node(1).conf_state(), &conf(&[1, 2, 3], &[4], &[]));
    c.settle();
    assert_eq!(c.node(1).commit_index(), at);
    for id in 1..=4 {
        assert_eq!(c.node(id).conf_state(), &conf(&[1, 2, 3], &[4], &[]));
    }
    assert_eq!(c.log_terms(4), c.log_terms(1), "the learner holds the log");
    assert_eq!(c.applied_data(4), vec![b"before".to_vec()]);
    // The learner never campaigns, however long it hears nothing.
    for _ in 0..200 {
        c.tick(4);
    }
    assert_eq!(c.node(4).role(), Role::Follower);
    assert!(c.take_messages().is_empty(), "the learner sent nothing");
    // Caught up: promotion goes through and the learner becomes a voter.
    assert_eq!(c.node(1).peer_lag(4).unwrap(), Some(0));
    c.node_mut(1).promote_learner(4).unwrap();
    c.settle();
    for id in 1..=4 {
        assert_eq!(c.node(id).conf_state(), &conf(&[1, 2, 3, 4], &[], &[]));
        assert_eq!(
            c.node(id).committed_conf_state(),
            &conf(&[1, 2, 3, 4], &[], &[])
        );
    }
    // Committed configuration entries reach the application, which skips them.
    let changes = applied_changes(&c, 4);
    assert_eq!(
        changes.iter().map(|r| r.change.clone()).collect::<Vec<_>>(),
        vec![change(&[AddLearner(4)]), change(&[PromoteLearner(4)])]
    );
    assert_eq!(changes[1].conf_state, conf(&[1, 2, 3, 4], &[], &[]));
}

#[test]
fn a_lagging_learner_is_not_promoted() {
    let mut c = group_with(&[1, 2, 3], &[4], |id| Config {
        learner_catchup_entries_max: 2,
        ..config(id)
    });
    c.elect(1);
    c.node_mut(1).add_learner(4).unwrap();
    c.settle();
    c.isolate(4);
    for i in 0..5 {
        propose_data(&mut c, 1, &format!("x{i}"));
    }
    assert!(matches!(
        c.node_mut(1).promote_learner(4),
        Err(ConfChangeError::LearnerBehind { id: 4, max: 2, .. })
    ));
    assert!(matches!(
        c.node_mut(1).promote_learner(2),
        Err(ConfChangeError::NotLearner { id: 2 })
    ));
    c.heal();
    for _ in 0..10 {
        c.tick_all();
        c.settle();
    }
    assert_eq!(c.node(1).peer_lag(4).unwrap(), Some(0));
    c.node_mut(1).promote_learner(4).unwrap();
}

#[test]
fn one_change_at_a_time_and_invalid_changes_are_refused_with_typed_errors() {
    let mut c = group(&[1, 2, 3], &[4, 5]);
    c.elect(1);
    assert!(matches!(
        c.node_mut(2).add_learner(4),
        Err(ConfChangeError::NotLeader {
            leader_hint: Some(1)
        })
    ));
    let leader = c.node_mut(1);
    assert!(matches!(
        leader.remove_node(9),
        Err(ConfChangeError::UnknownNode { id: 9 })
    ));
    assert!(matches!(
        leader.add_voter(2),
        Err(ConfChangeError::AlreadyVoter { id: 2 })
    ));
    assert!(matches!(
        leader.propose_conf_change(change(&[RemoveNode(1), RemoveNode(2), RemoveNode(3)])),
        Err(ConfChangeError::NoVoters)
    ));
    assert!(matches!(
        leader.propose_conf_change(ConfChange::LeaveJoint),
        Err(ConfChangeError::NotJoint)
    ));
    let first = leader.add_learner(4).unwrap();
    // The first change is appended, not committed: a second one must wait.
    assert!(matches!(
        leader.add_learner(5),
        Err(ConfChangeError::InProgress { index }) if index == first
    ));
    c.settle();
    c.node_mut(1).add_learner(5).unwrap();
    c.settle();
    assert_eq!(c.node(5).conf_state(), &conf(&[1, 2, 3], &[4, 5], &[]));
}

#[test]
fn a_new_leader_changes_nothing_before_it_commits_in_its_term() {
    let mut c = group_with(&[1, 2, 3], &[4], |id| Config {
        check_quorum: false,
        ..config(id)
    });
    c.elect(1);
    c.isolate(1);
    c.campaign_now(2);
    // Deliver the vote round but hold back the appends that would commit the no-op.
    for _ in 0..10 {
        let msgs = c.take_messages();
        for m in msgs {
            if !matches!(m.payload, Payload::Append(_)) {
                c.deliver(m);
            }
        }
    }
    assert_eq!(c.node(2).role(), Role::Leader);
    assert!(matches!(
        c.node_mut(2).add_learner(4),
        Err(ConfChangeError::NoCommitInTerm)
    ));
}

#[test]
fn a_multi_voter_change_enters_the_joint_configuration_and_the_leader_leaves_it() {
    let mut c = group(&[1, 2, 3], &[4, 5]);
    c.elect(1);
    let ops = [RemoveNode(2), RemoveNode(3), AddVoter(4), AddVoter(5)];
    let enter = c.node_mut(1).propose_conf_change(change(&ops)).unwrap();
    // In effect at once on the leader: both the old and the new voters decide.
    assert_eq!(c.node(1).conf_state(), &conf(&[1, 4, 5], &[], &[1, 2, 3]));
    assert!(matches!(
        c.node_mut(1).add_learner(6),
        Err(ConfChangeError::InProgress { .. })
    ));
    c.settle();
    // Once C_old,new committed, the leader appended C_new by itself, and that committed.
    let leader = c.node(1);
    assert!(leader.commit_index() > enter);
    assert_eq!(leader.conf_state(), &conf(&[1, 4, 5], &[], &[]));
    assert_eq!(leader.role(), Role::Leader);
    let changes: Vec<ConfChange> = applied_changes(&c, 1)
        .into_iter()
        .map(|r| r.change)
        .collect();
    assert_eq!(changes, vec![change(&ops), ConfChange::LeaveJoint]);
    for id in [1, 4, 5] {
        assert_eq!(c.node(id).conf_state(), &conf(&[1, 4, 5], &[], &[]));
    }
    // The new configuration commits without the removed voters.
    c.isolate(2);
    c.isolate(3);
    let index = propose_data(&mut c, 1, "after");
    assert_eq!(c.node(1).commit_index(), index);
}

#[test]
fn during_the_joint_phase_a_commit_needs_the_new_majority_too() {
    let mut c = group(&[1, 2, 3], &[4, 5]);
    c.elect(1);
    // The leader reaches the old voters but not the new ones.
    c.isolate(4);
    c.isolate(5);
    let enter = c
        .node_mut(1)
        .propose_conf_change(change(&[
            RemoveNode(2),
            RemoveNode(3),
            AddVoter(4),
            AddVoter(5),
        ]))
        .unwrap();
    c.settle();
    assert_eq!(
        c.log_terms(2),
        c.log_terms(1),
        "the old voters hold the entry"
    );
    assert!(
        c.node(1).commit_index() < enter,
        "a majority of {{1, 2, 3}} alone does not commit C_old,new"
    );
    c.heal();
    c.tick(1);
    c.tick(1);
    c.settle();
    assert!(c.node(1).commit_index() > enter);
    assert_eq!(c.node(1).conf_state(), &conf(&[1, 4, 5], &[], &[]));
}

#[test]
fn during_the_joint_phase_the_old_majority_alone_cannot_elect_a_leader() {
    let mut c = group_with(&[1, 2, 3], &[4, 5], |id| Config {
        check_quorum: false,
        ..config(id)
    });
    c.elect(1);
    for learner in [4, 5] {
        c.node_mut(1).add_learner(learner).unwrap();
        c.settle();
    }
    // C_old,new = {1,2,3} & {3,4,5} reaches every follower, then the leader goes silent
    // before any of them learns it committed.
    c.node_mut(1)
        .propose_conf_change(change(&[
            RemoveNode(1),
            RemoveNode(2),
            PromoteLearner(4),
            PromoteLearner(5),
        ]))
        .unwrap();
    let appends = c.take_messages();
    c.isolate(1);
    for m in appends {
        c.network.push(m.clone());
    }
    let pending = std::mem::take(&mut c.network);
    for m in pending {
        let to = m.to;
        c.node_mut(to).step(m).unwrap();
    }
    c.process();
    c.network.clear();
    for id in 2..=5 {
        assert_eq!(c.node(id).conf_state(), &conf(&[3, 4, 5], &[], &[1, 2, 3]));
    }
    // {2, 3} is a majority of the old voters, but not of the new ones.
    c.isolate(4);
    c.isolate(5);
    for _ in 0..300 {
        c.tick(2);
        c.tick(3);
        c.settle();
    }
    assert!(c.leaders().iter().all(|&l| l == 1), "{:?}", c.leaders());
    // With the new voters reachable, a leader is elected and completes the change.
    c.heal();
    c.isolate(1);
    for _ in 0..300 {
        if c.leaders().iter().any(|&l| l != 1) {
            break;
        }
        c.tick_all();
        c.settle();
    }
    let leader = *c.leaders().iter().find(|&&l| l != 1).expect("a new leader");
    assert!(c.node(leader).conf_state().is_voter(leader));
    c.settle();
    for _ in 0..5 {
        c.tick(leader);
        c.settle();
    }
    assert_eq!(c.node(leader).conf_state(), &conf(&[3, 4, 5], &[], &[]));
}

#[test]
fn a_removed_leader_leads_until_the_change_commits_then_steps_down_for_good() {
    let mut c = group(&[1, 2, 3], &[]);
    c.elect(1);
    let at = c.node_mut(1).remove_node(1).unwrap();
    assert_eq!(c.node(1).role(), Role::Leader, "still leading meanwhile");
    assert_eq!(c.node(1).conf_state(), &conf(&[2, 3], &[], &[]));
    c.settle();
    assert_eq!(c.node(1).role(), Role::Follower);
    for id in 2..=3 {
        assert_eq!(
            c.node(id).commit_index(),
            at,
            "the others learned the commit"
        );
        assert_eq!(c.node(id).conf_state(), &conf(&[2, 3], &[], &[]));
    }
    // The old leader never campaigns again; the others elect a leader between them.
    let term = c.node(1).term();
    for _ in 0..100 {
        c.tick_all();
        c.settle();
    }
    assert_eq!(c.node(1).role(), Role::Follower);
    assert_eq!(c.node(1).term(), term);
    let leaders = c.leaders();
    assert_eq!(leaders.len(), 1);
    assert_ne!(leaders[0], 1);
    let index = propose_data(&mut c, leaders[0], "after");
    assert_eq!(c.node(leaders[0]).commit_index(), index);
}

#[test]
fn a_removed_follower_learns_of_its_removal_and_stops_campaigning() {
    let mut c = group(&[1, 2, 3], &[]);
    c.elect(1);
    c.node_mut(1).remove_node(3).unwrap();
    c.settle();
    assert_eq!(c.node(3).conf_state(), &conf(&[1, 2], &[], &[]));
    c.isolate(1);
    for _ in 0..200 {
        c.tick(3);
    }
    assert_eq!(c.node(3).role(), Role::Follower);
    assert!(
        c.take_messages().iter().all(|m| m.from != 3),
        "no campaign from the removed node"
    );
}

#[test]
fn a_removed_node_that_missed_its_removal_cannot_depose_the_leader_even_without_pre_vote() {
    let mut c = group_with(&[1, 2, 3], &[], without_pre_vote_or_check_quorum);
    c.elect(1);
    // Node 3 is away while it is removed, so it never learns of it, and the leader
    // stops replicating to it once the removal commits.
    c.isolate(3);
    let at = c.node_mut(1).remove_node(3).unwrap();
    c.settle();
    assert_eq!(c.node(1).commit_index(), at);
    c.heal();
    let term = c.node(1).term();
    let mut campaigns = 0;
    for _ in 0..300 {
        c.tick_all();
        if c.node(3).role() == Role::Candidate {
            campaigns += 1;
        }
        c.settle();
    }
    assert!(campaigns > 0, "the removed node campaigns");
    assert!(c.node(3).term().0 > term.0 + 5, "in ever newer terms");
    assert_eq!(
        c.node(1).role(),
        Role::Leader,
        "the leader was never deposed"
    );
    assert_eq!(c.node(1).term(), term);
    assert_eq!(c.node(2).term(), term);
    let index = propose_data(&mut c, 1, "after");
    assert_eq!(c.node(2).commit_index(), index);
}

#[test]
fn a_voter_demoted_to_learner_while_away_rejoins_as_a_learner_even_without_pre_vote() {
    let mut c = group_with(&[1, 2, 3, 4], &[], without_pre_vote_or_check_quorum);
    c.elect(1);
    // Node 4 misses both its removal and its return as a learner, so it still believes
    // it votes, and campaigns.
    c.isolate(4);
    c.node_mut(1).remove_node(4).unwrap();
    c.settle();
    let at = c.node_mut(1).add_learner(4).unwrap();
    c.settle();
    assert_eq!(c.node(1).commit_index(), at);
    // Away, it campaigns in vain, into terms the group never saw.
    let term = c.node(1).term();
    for _ in 0..100 {
        c.tick(4);
        c.settle();
    }
    assert!(c.node(4).term() > term);
    c.heal();
    for _ in 0..500 {
        c.tick_all();
        c.settle();
    }
    // The voters, hearing from their leader, ignore its campaigns; it answers the
    // leader's appends with its newer term instead. The group moves to a term past its
    // own, and then it follows a leader and learns its new role.
    assert_eq!(c.node(4).conf_state(), &conf(&[1, 2, 3], &[4], &[]));
    let leaders = c.leaders();
    assert_eq!(leaders.len(), 1);
    let index = propose_data(&mut c, leaders[0], "after");
    assert_eq!(c.node(4).commit_index(), index);
    for _ in 0..100 {
        c.tick(4);
    }
    assert_eq!(
        c.node(4).role(),
        Role::Follower,
        "a learner never campaigns"
    );
}

#[test]
fn a_learner_ahead_in_terms_tells_the_leader_even_without_pre_vote() {
    let mut c = group_with(&[1, 2, 3], &[4], without_pre_vote_or_check_quorum);
    c.elect(1);
    c.node_mut(1).add_learner(4).unwrap();
    c.settle();
    let term = c.node(1).term();
    // Cut off long enough to stop hearing from the leader, the learner gets a vote request
    // that the others never see: it raises the learner's term alone, as a candidate's
    // campaign that went nowhere would.
    c.isolate(4);
    for _ in 0..c.node(4).config().election_timeout_ticks_max {
        c.tick(4);
    }
    c.heal();
    c.deliver(Message {
        from: 3,
        to: 4,
        term: Term(term.0 + 3),
        payload: Payload::Vote(VoteRequest {
            last_log_index: LogIndex(0),
            last_log_term: Term(0),
        }),
    });
    c.take_messages();
    assert_eq!(c.node(4).term(), Term(term.0 + 3));
    // The learner may not campaign, so it refuses the leader's older term out loud: the
    // group moves to a newer term, and the learner follows its leader again.
    for _ in 0..300 {
        c.tick_all();
        c.settle();
    }
    let leaders = c.leaders();
    assert_eq!(leaders.len(), 1);
    let leader = leaders[0];
    assert!(c.node(leader).term() > Term(term.0 + 3));
    let index = propose_data(&mut c, leader, "after");
    assert_eq!(
        c.node(4).commit_index(),
        index,
        "the learner is back in the group"
    );
}

#[test]
fn a_new_voter_catches_up_from_an_empty_log() {
    let mut c = group(&[1, 2, 3], &[4]);
    c.elect(1);
    for i in 0..20 {
        propose_data(&mut c, 1, &format!("v{i}"));
    }
    c.node_mut(1).add_voter(4).unwrap();
    c.settle();
    assert_eq!(c.log_terms(4), c.log_terms(1));
    assert_eq!(c.applied_data(4).len(), 20);
    // Four voters: a commit now needs three of them.
    c.isolate(2);
    c.isolate(3);
    let index = c.node_mut(1).propose("x".into()).unwrap();
    c.settle();
    assert!(c.node(1).commit_index() < index);
    c.heal();
    for _ in 0..10 {
        c.tick_all();
        c.settle();
    }
    assert_eq!(c.node(1).commit_index(), index);
}

#[test]
fn an_uncommitted_configuration_rolls_back_when_a_new_leader_overwrites_it() {
    let mut c = group_with(&[1, 2, 3, 4, 5], &[6], |id| Config {
        check_quorum: false,
        ..config(id)
    });
    c.elect(1);
    let original = conf(&[1, 2, 3, 4, 5], &[], &[]);
    c.node_mut(1).add_learner(6).unwrap();
    // Only node 2 receives the entry before the leader is cut off.
    let msgs = c.take_messages();
    for m in msgs {
        if m.to == 2 {
            c.deliver(m);
        }
    }
    c.process();
    c.network.clear();
    assert_eq!(c.node(2).conf_state(), &conf(&[1, 2, 3, 4, 5], &[6], &[]));
    c.isolate(1);
    c.isolate(2);
    c.elect_now(3);
    propose_data(&mut c, 3, "overwrites");
    c.heal();
    for _ in 0..5 {
        c.tick(3);
        c.settle();
    }
    for id in 1..=5 {
        assert_eq!(c.node(id).conf_state(), &original, "node {id}");
        assert_eq!(c.log_terms(id), c.log_terms(3), "node {id}");
    }
}

#[test]
fn the_configuration_survives_a_restart() {
    let mut c = group(&[1, 2, 3], &[4, 5]);
    c.elect(1);
    c.node_mut(1)
        .propose_conf_change(change(&[AddVoter(4), AddLearner(5), RemoveNode(3)]))
        .unwrap();
    c.settle();
    let expected = conf(&[1, 2, 4], &[5], &[]);
    assert_eq!(c.node(2).conf_state(), &expected);
    for id in [1, 2, 5] {
        c.crash_and_restart(id);
        assert_eq!(c.node(id).conf_state(), &expected, "node {id}");
    }
}

#[test]
fn learners_count_toward_no_quorum_neither_commit_nor_check_quorum() {
    let mut c = group(&[1, 2, 3], &[4]);
    c.elect(1);
    c.node_mut(1).add_learner(4).unwrap();
    c.settle();
    c.isolate(2);
    c.isolate(3);
    let index = c.node_mut(1).propose("x".into()).unwrap();
    c.settle();
    assert_eq!(c.log_terms(4), c.log_terms(1), "the learner acknowledged");
    assert!(
        c.node(1).commit_index() < index,
        "a learner's ack commits nothing"
    );
    // Hearing only from the learner, the leader steps down (check-quorum).
    for _ in 0..50 {
        c.tick(1);
        c.tick(4);
        c.settle();
    }
    assert_ne!(c.node(1).role(), Role::Leader, "the leader stepped down");
    assert_eq!(
        c.node(4).role(),
        Role::Follower,
        "the learner never campaigns"
    );
}

#[test]
fn promoting_a_learner_while_removing_a_voter_is_a_joint_change() {
    let mut c = group(&[1, 2, 3], &[4]);
    c.elect(1);
    c.node_mut(1).add_learner(4).unwrap();
    c.settle();
    let ops = [PromoteLearner(4), RemoveNode(3)];
    c.node_mut(1).propose_conf_change(change(&ops)).unwrap();
    assert_eq!(c.node(1).conf_state(), &conf(&[1, 2, 4], &[], &[1, 2, 3]));
    c.settle();
    assert_eq!(c.node(1).conf_state(), &conf(&[1, 2, 4], &[], &[]));
    // Removing a learner changes no voter: it takes effect directly.
    c.node_mut(1).add_learner(3).unwrap();
    c.settle();
    let at = c.node_mut(1).remove_node(3).unwrap();
    assert_eq!(c.node(1).conf_state(), &conf(&[1, 2, 4], &[], &[]));
    c.settle();
    assert_eq!(c.node(1).commit_index(), at);
}

#[test]
fn a_transfer_and_a_membership_change_never_run_at_once() {
    let mut c = group(&[1, 2, 3], &[4, 5]);
    c.elect(1);
    // A change not yet committed: no transfer.
    c.node_mut(1).add_learner(4).unwrap();
    assert!(matches!(
        c.node_mut(1).transfer_leadership(2),
        Err(aegis_raft::TransferError::ConfChangeInProgress)
    ));
    c.settle();
    // A transfer to a node that cannot be reached stays pending: no change meanwhile.
    c.isolate(3);
    c.node_mut(1).transfer_leadership(3).unwrap();
    assert!(matches!(
        c.node_mut(1).add_learner(5),
        Err(ConfChangeError::TransferInProgress { target: 3 })
    ));
    // Once the transfer is abandoned, after an election timeout, changes resume.
    while c.node(1).transfer_target().is_some() {
        c.tick(1);
        c.settle();
    }
    c.heal();
    assert_eq!(c.node(1).role(), Role::Leader);
    c.node_mut(1).add_learner(5).unwrap();
    c.settle();
    assert!(c.node(5).conf_state().is_learner(5));
}
