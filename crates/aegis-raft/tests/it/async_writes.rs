//! Async storage writes: the leader replicates before its own write completes and counts
//! itself only once the write is reported durable (Raft thesis §10.2.1).

use aegis_raft::{LogIndex, Payload, Storage};

use crate::harness::Cluster;

#[test]
fn the_leader_sends_entries_before_its_own_write_completes() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.slow_disk.insert(1);
    let index = c.node_mut(1).propose("x".into()).unwrap();
    let out = c.take_messages();
    assert_eq!(
        out.iter()
            .filter(|m| matches!(m.payload, Payload::Append(_)))
            .count(),
        2
    );
    assert!(
        c.node(1).storage().last_index().unwrap() < index,
        "the leader's write is still pending"
    );
}

#[test]
fn the_leader_does_not_count_itself_before_its_write_is_durable() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.slow_disk.insert(1);
    let index = c.node_mut(1).propose("x".into()).unwrap();
    // Only follower 2 receives and acknowledges the entry.
    let out = c.take_messages();
    for m in out.into_iter().filter(|m| m.to == 2) {
        c.deliver(m);
    }
    for m in c.take_messages() {
        if m.to == 1 {
            c.deliver(m);
        }
    }
    assert!(
        c.node(1).commit_index() < index,
        "one follower alone is not a quorum of three"
    );
    c.complete_writes(1);
    assert_eq!(
        c.node(1).commit_index(),
        index,
        "the leader's own durable copy completes the quorum"
    );
}

#[test]
fn a_quorum_of_followers_commits_but_the_leader_applies_only_durable_entries() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.slow_disk.insert(1);
    let index = c.node_mut(1).propose("x".into()).unwrap();
    c.settle();
    assert_eq!(
        c.node(1).commit_index(),
        index,
        "both followers acknowledged"
    );
    assert!(
        c.applied_data(1).is_empty(),
        "not applied before the leader's own write"
    );
    c.complete_writes(1);
    c.process();
    assert_eq!(c.applied_data(1), vec![b"x".to_vec()]);
}

#[test]
fn a_follower_acknowledges_only_after_its_write() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.slow_disk.insert(2);
    c.slow_disk.insert(3);
    let index = c.node_mut(1).propose("x".into()).unwrap();
    c.settle();
    assert!(c.node(1).commit_index() < index);
    c.complete_writes(2);
    c.settle();
    assert_eq!(c.node(1).commit_index(), index);
    assert_eq!(c.node(2).status().unwrap().persisted, LogIndex(2));
}
