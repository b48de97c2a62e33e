//! Restarting from storage, and the errors `step` and `new` return.

use aegis_raft::{
    Config, InitError, LogIndex, MemStorage, Message, Payload, RawNode, Role, StepError, Term,
    VoteResponse,
};

use crate::harness::{Cluster, config};

#[test]
fn a_restarted_node_recovers_its_term_vote_and_log_and_reapplies_committed_entries() {
    let mut c = Cluster::new(3);
    c.elect(1);
    for i in 0..3u8 {
        c.node_mut(1).propose(vec![i].into()).unwrap();
    }
    c.settle();
    let before = c.node(2).hard_state();
    c.crash_and_restart(2);
    assert_eq!(c.node(2).role(), Role::Follower);
    assert_eq!(c.node(2).hard_state(), before);
    assert_eq!(c.node(2).last_index().unwrap(), LogIndex(4));
    c.process();
    assert_eq!(
        c.applied_data(2).len(),
        3,
        "a fresh state machine gets every committed entry"
    );

    let storage = c.node(2).storage().clone();
    let mut node = RawNode::with_applied(config(2), storage, 9, LogIndex(3)).unwrap();
    let ready = node.ready().unwrap();
    let indexes: Vec<u64> = ready.committed_entries.iter().map(|e| e.index.0).collect();
    assert_eq!(
        indexes,
        vec![4],
        "only what the state machine has not applied"
    );
}

#[test]
fn a_write_lost_in_a_crash_is_not_acknowledged_and_is_fetched_again() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.slow_disk.insert(3);
    let index = c.node_mut(1).propose("x".into()).unwrap();
    c.settle();
    assert_eq!(c.node(1).commit_index(), index, "nodes 1 and 2 suffice");
    c.crash_and_restart(3);
    assert!(
        c.node(3).last_index().unwrap() < index,
        "the unsynced entry is gone"
    );
    c.slow_disk.clear();
    for _ in 0..4 {
        c.tick(1);
        c.settle();
    }
    assert_eq!(c.applied_data(3), vec![b"x".to_vec()]);
}

#[test]
fn step_refuses_misaddressed_messages_and_strangers() {
    let mut node = RawNode::new(config(1), MemStorage::new(&[1, 2, 3]), 1).unwrap();
    let msg = |from, to| Message {
        from,
        to,
        term: Term(1),
        payload: Payload::VoteResponse(VoteResponse { granted: true }),
    };
    assert!(matches!(
        node.step(msg(2, 3)),
        Err(StepError::WrongRecipient { to: 3, id: 1 })
    ));
    assert!(matches!(
        node.step(msg(9, 1)),
        Err(StepError::UnknownSender { from: 9 })
    ));
    assert!(matches!(
        node.step(msg(1, 1)),
        Err(StepError::UnknownSender { from: 1 })
    ));
}

#[test]
fn new_refuses_an_invalid_config_or_inconsistent_storage() {
    let bad = Config {
        inflight_msgs_max: 0,
        ..config(1)
    };
    assert!(matches!(
        RawNode::new(bad, MemStorage::new(&[1]), 1),
        Err(InitError::Config(_))
    ));
    let mut storage = MemStorage::new(&[1]);
    storage.set_hard_state(aegis_raft::HardState {
        term: Term(1),
        vote: None,
        commit: LogIndex(5),
    });
    assert!(matches!(
        RawNode::new(config(1), storage, 1),
        Err(InitError::CommitBeyondLog { .. })
    ));
}

#[test]
fn a_follower_refuses_proposals_naming_the_leader() {
    let mut c = Cluster::new(3);
    assert!(matches!(
        c.node_mut(2).propose("x".into()),
        Err(aegis_raft::ProposeError::NotLeader { leader_hint: None })
    ));
    c.elect(1);
    assert!(matches!(
        c.node_mut(2).propose("x".into()),
        Err(aegis_raft::ProposeError::NotLeader {
            leader_hint: Some(1)
        })
    ));
}
