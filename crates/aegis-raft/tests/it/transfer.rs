//! Leadership transfer (thesis §3.10): the leader brings the target up to date, tells it to
//! campaign at once, and refuses proposals meanwhile.

use aegis_raft::{
    Config, Message, NodeId, Payload, ProposeError, ReadOnlyOption, Role, TransferError,
};

use crate::harness::Cluster;

fn propose_and_settle(c: &mut Cluster, leader: NodeId, count: usize) {
    for i in 0..count {
        c.node_mut(leader)
            .propose(format!("v{i}").into())
            .expect("leader accepts");
    }
    c.settle();
}

fn is_timeout_now(m: &Message) -> bool {
    matches!(m.payload, Payload::TimeoutNow)
}

/// Ticks every node but `skip` and settles after each tick.
fn tick_others(c: &mut Cluster, skip: NodeId, ticks: u64) {
    for _ in 0..ticks {
        let ids: Vec<NodeId> = c.nodes.keys().copied().filter(|&id| id != skip).collect();
        for id in ids {
            c.tick(id);
        }
        c.settle();
    }
}

#[test]
fn transfer_to_an_up_to_date_follower_makes_it_leader_in_the_next_term() {
    let mut c = Cluster::new(3);
    c.elect(1);
    propose_and_settle(&mut c, 1, 3);
    let term = c.node(1).term();
    c.node_mut(1)
        .transfer_leadership(2)
        .expect("transfer starts");
    assert_eq!(c.node(1).transfer_target(), Some(2));
    assert_eq!(c.node(1).status().unwrap().transfer_target, Some(2));
    // The target is already caught up: TimeoutNow leaves at once.
    let msgs = c.take_messages();
    assert!(msgs.iter().any(|m| is_timeout_now(m) && m.to == 2));
    for m in msgs {
        c.deliver(m);
    }
    c.settle();
    assert_eq!(c.node(2).role(), Role::Leader);
    assert_eq!(
        c.node(2).term(),
        term.next(),
        "one election, no pre-vote round"
    );
    assert_eq!(c.leaders(), vec![2]);
    assert_eq!(c.node(1).transfer_target(), None);
    assert_eq!(c.node(1).leader_id(), Some(2));
    // The new leader accepts writes, and every node applies them.
    propose_and_settle(&mut c, 2, 1);
    for id in 1..=3 {
        assert_eq!(c.applied_data(id).len(), 4, "node {id}");
    }
}

#[test]
fn a_lagging_target_is_caught_up_before_it_is_told_to_campaign() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.isolate(3);
    propose_and_settle(&mut c, 1, 5);
    c.heal();
    let last = c.node(1).last_index().unwrap();
    assert!(c.node(3).last_index().unwrap() < last);
    c.node_mut(1)
        .transfer_leadership(3)
        .expect("transfer starts");
    let first = c.take_messages();
    assert!(
        !first.iter().any(is_timeout_now),
        "the target must catch up first"
    );
    assert!(matches!(
        c.node_mut(1).propose("refused".into()),
        Err(ProposeError::TransferInProgress { target: 3 })
    ));
    for m in first {
        c.deliver(m);
    }
    c.settle();
    // The appends sent while node 3 was cut off were lost: the next heartbeat round
    // reveals the gap, node 3 catches up, and only then is it told to campaign.
    for _ in 0..5 {
        if c.leaders() == vec![3] {
            break;
        }
        assert_eq!(c.node(1).transfer_target(), Some(3));
        c.tick_all();
        c.settle();
    }
    assert_eq!(c.leaders(), vec![3]);
    assert_eq!(
        c.log_terms(3)[..last.0 as usize],
        c.log_terms(1)[..last.0 as usize]
    );
    assert!(c.applied_data(3).iter().all(|d| d != b"refused"));
}

#[test]
fn a_transfer_to_a_partitioned_target_is_abandoned_after_an_election_timeout() {
    let mut c = Cluster::new(3);
    c.elect(1);
    propose_and_settle(&mut c, 1, 1);
    c.isolate(2);
    c.node_mut(1)
        .transfer_leadership(2)
        .expect("transfer starts");
    c.settle();
    let timeout = c.node(1).config().election_timeout_ticks_min;
    for _ in 1..timeout {
        tick_others(&mut c, 2, 1);
        assert_eq!(c.node(1).transfer_target(), Some(2));
        assert!(matches!(
            c.node_mut(1).propose("no".into()),
            Err(ProposeError::TransferInProgress { target: 2 })
        ));
    }
    tick_others(&mut c, 2, 1);
    assert_eq!(c.node(1).role(), Role::Leader, "still leader with node 3");
    assert_eq!(c.node(1).transfer_target(), None, "abandoned");
    let index = c.node_mut(1).propose("yes".into()).expect("accepted again");
    c.settle();
    assert_eq!(c.node(3).commit_index(), index);
    assert_eq!(c.node(2).role(), Role::Follower);
}

#[test]
fn transfer_requests_that_cannot_work_are_refused_with_the_reason() {
    let mut c = Cluster::new(3);
    c.elect(1);
    assert!(matches!(
        c.node_mut(2).transfer_leadership(3),
        Err(TransferError::NotLeader {
            leader_hint: Some(1)
        })
    ));
    assert!(matches!(
        c.node_mut(1).transfer_leadership(1),
        Err(TransferError::TargetIsSelf { target: 1 })
    ));
    assert!(matches!(
        c.node_mut(1).transfer_leadership(9),
        Err(TransferError::NotAVoter { target: 9 })
    ));
    c.isolate(2);
    c.node_mut(1)
        .transfer_leadership(2)
        .expect("transfer starts");
    assert!(matches!(
        c.node_mut(1).transfer_leadership(3),
        Err(TransferError::InProgress { target: 2 })
    ));
    // Reads stay available during a transfer: they change nothing.
    c.node_mut(1).read_index("r".into()).expect("read accepted");
}

#[test]
fn transfer_votes_override_check_quorum_while_followers_hear_the_leader() {
    let config = |id| Config {
        pre_vote: true,
        check_quorum: true,
        ..Config::new(id)
    };
    let mut c = Cluster::with_config(5, config);
    c.elect(1);
    propose_and_settle(&mut c, 1, 2);
    // Every follower heard the leader this very tick: a plain vote would be refused.
    c.tick_all();
    c.settle();
    let term = c.node(1).term();
    c.node_mut(1)
        .transfer_leadership(4)
        .expect("transfer starts");
    let msgs = c.take_messages();
    assert!(msgs.iter().any(|m| is_timeout_now(m) && m.to == 4));
    for m in msgs {
        c.deliver(m);
    }
    let campaign = c.take_messages();
    assert!(
        campaign
            .iter()
            .all(|m| m.from != 4 || matches!(m.payload, Payload::TransferVote(_))),
        "the target skips pre-vote: {campaign:?}"
    );
    for m in campaign {
        c.deliver(m);
    }
    c.settle();
    assert_eq!(c.leaders(), vec![4]);
    assert_eq!(c.node(4).term(), term.next());
}

#[test]
fn a_leader_that_sent_timeout_now_serves_no_lease_read_for_the_rest_of_its_term() {
    let config = |id| Config {
        read_only_option: ReadOnlyOption::LeaseBased,
        ..Config::new(id)
    };
    let mut c = Cluster::with_config(3, config);
    c.elect(1);
    propose_and_settle(&mut c, 1, 1);
    for _ in 0..2 {
        c.tick_all();
        c.settle();
    }
    // With a fresh lease the read is answered without a round trip.
    c.node_mut(1).read_index("lease".into()).unwrap();
    c.process();
    assert_eq!(c.read_states[&1].len(), 1, "served under the lease");
    c.node_mut(1)
        .transfer_leadership(2)
        .expect("transfer starts");
    let held: Vec<Message> = c.take_messages();
    assert!(held.iter().any(is_timeout_now));
    // Node 2 stays out of reach while the transfer runs its course.
    c.isolate(2);
    // The TimeoutNow is stuck in the network; the lease is given away all the same.
    c.node_mut(1).read_index("after".into()).unwrap();
    let round = c.take_messages();
    assert_eq!(c.read_states[&1].len(), 1, "no lease read after TimeoutNow");
    assert!(
        round
            .iter()
            .any(|m| matches!(m.payload, Payload::Heartbeat(_)))
    );
    for m in round {
        c.deliver(m);
    }
    c.settle();
    assert_eq!(c.read_states[&1].len(), 2, "confirmed by a ReadIndex round");
    // The transfer is abandoned, yet the lease stays given away...
    let timeout = c.node(1).config().election_timeout_ticks_min;
    for _ in 0..timeout {
        c.tick(1);
        c.tick(3);
        c.settle();
    }
    assert_eq!(c.node(1).transfer_target(), None);
    c.node_mut(1).read_index("later".into()).unwrap();
    c.process();
    assert_eq!(c.read_states[&1].len(), 2, "still no lease read");
    c.settle();
    assert_eq!(c.read_states[&1].len(), 3);
    // ...because the old TimeoutNow can still arrive and win an election, even though
    // node 3 heard the leader within its lease.
    c.heal();
    for m in held.into_iter().filter(is_timeout_now) {
        c.deliver(m);
    }
    c.settle();
    assert_eq!(c.leaders(), vec![2]);
}

#[test]
fn a_stale_timeout_now_from_an_older_term_is_ignored() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.node_mut(1)
        .transfer_leadership(2)
        .expect("transfer starts");
    let msgs = c.take_messages();
    let timeout_now: Vec<Message> = msgs.iter().filter(|m| is_timeout_now(m)).cloned().collect();
    assert_eq!(timeout_now.len(), 1);
    for m in msgs {
        c.deliver(m);
    }
    c.settle();
    assert_eq!(c.leaders(), vec![2]);
    let term = c.node(2).term();
    // A duplicate of the same TimeoutNow arrives late: node 2 already moved on.
    for m in timeout_now {
        c.deliver(m);
    }
    c.settle();
    assert_eq!(c.leaders(), vec![2]);
    assert_eq!(c.node(2).term(), term);
}

#[test]
fn an_old_leader_cut_off_after_timeout_now_never_serves_a_stale_lease_read() {
    let config = |id| Config {
        read_only_option: ReadOnlyOption::LeaseBased,
        ..Config::new(id)
    };
    let mut c = Cluster::with_config(3, config);
    c.elect(1);
    propose_and_settle(&mut c, 1, 1);
    for _ in 0..2 {
        c.tick_all();
        c.settle();
    }
    let reads_before = c.read_states.get(&1).map_or(0, Vec::len);
    c.node_mut(1)
        .transfer_leadership(2)
        .expect("transfer starts");
    for m in c.take_messages() {
        c.deliver(m);
    }
    // Node 2 campaigns; node 1 hears nothing more, so it still believes it leads, and
    // its followers heard it a moment ago: without the transfer they would refuse node 2.
    c.isolate(1);
    c.settle();
    assert_eq!(c.leaders(), vec![1, 2]);
    let new_leader_term = c.node(2).term();
    assert!(new_leader_term > c.node(1).term());
    let index = c.node_mut(2).propose("new".into()).expect("accepted");
    c.settle();
    assert_eq!(c.node(3).commit_index(), index);
    assert!(c.node(1).commit_index() < index);
    // A lease read on node 1 now would miss the committed write: it must not be served.
    c.node_mut(1).read_index("stale?".into()).unwrap();
    c.settle();
    assert_eq!(
        c.read_states.get(&1).map_or(0, Vec::len),
        reads_before,
        "the old leader answered a read it cannot confirm"
    );
}
