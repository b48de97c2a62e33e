//! Quiescence: an idle group stops ticking and heartbeating, and wakes on a proposal, a
//! read, a message or a suspected leader failure.

use aegis_raft::{Config, NodeId, Payload, ReadOnlyOption, Role};

use crate::harness::Cluster;

const IDLE_TICKS: u64 = 6;

fn quiet_config(id: NodeId) -> Config {
    Config {
        quiesce: true,
        quiesce_after_idle_ticks: IDLE_TICKS,
        ..Config::new(id)
    }
}

/// Ticks every node and settles, until every node is quiet.
fn tick_until_quiet(c: &mut Cluster) {
    for _ in 0..200 {
        if c.nodes.values().all(|n| n.is_quiesced()) {
            return;
        }
        c.tick_all();
        c.settle();
    }
    let states: Vec<_> = c.nodes.values().map(|n| n.status().unwrap()).collect();
    panic!("the group did not go quiet: {states:?}");
}

fn quiet_group() -> Cluster {
    let mut c = Cluster::with_config(3, quiet_config);
    c.elect(1);
    c.node_mut(1).propose("x".into()).unwrap();
    c.settle();
    tick_until_quiet(&mut c);
    c
}

/// Ticks `ids` `ticks` times; returns the messages the whole group sent meanwhile.
fn tick_and_count(c: &mut Cluster, ids: &[NodeId], ticks: u64) -> usize {
    let mut sent = 0;
    for _ in 0..ticks {
        for &id in ids {
            c.tick(id);
        }
        let msgs = c.take_messages();
        sent += msgs.len();
        for m in msgs {
            c.deliver(m);
        }
    }
    sent
}

#[test]
fn an_idle_group_goes_quiet_and_then_sends_nothing() {
    let mut c = quiet_group();
    let before: Vec<_> = c.nodes.values().map(|n| n.status().unwrap()).collect();
    assert!(before.iter().all(|s| s.quiesced));
    assert_eq!(
        tick_and_count(&mut c, &[1, 2, 3], 10_000),
        0,
        "a quiet group is silent"
    );
    let after: Vec<_> = c.nodes.values().map(|n| n.status().unwrap()).collect();
    assert_eq!(before, after, "ticks change nothing in a quiet node");
    assert!(c.nodes.values().all(|n| !n.has_ready()));
    assert_eq!(c.leaders(), vec![1]);
}

#[test]
fn quiescence_is_off_by_default() {
    let mut c = Cluster::new(3);
    c.elect(1);
    for _ in 0..200 {
        c.tick_all();
        c.settle();
    }
    assert!(c.nodes.values().all(|n| !n.is_quiesced()));
}

#[test]
fn a_group_with_a_lagging_follower_keeps_heartbeating() {
    let mut c = Cluster::with_config(3, quiet_config);
    c.elect(1);
    c.isolate(3);
    c.node_mut(1).propose("x".into()).unwrap();
    c.settle();
    let ids = [1, 2];
    let sent = tick_and_count(&mut c, &ids, 100);
    assert!(sent > 0);
    assert!(
        !c.node(1).is_quiesced(),
        "node 3 does not have the whole log"
    );
}

#[test]
fn a_proposal_wakes_the_group_which_then_goes_quiet_again() {
    let mut c = quiet_group();
    let index = c.node_mut(1).propose("y".into()).expect("accepted");
    assert!(!c.node(1).is_quiesced(), "a proposal wakes the leader");
    c.settle();
    for id in 1..=3 {
        assert_eq!(c.node(id).commit_index(), index, "node {id}");
        assert_eq!(c.applied_data(id).last().unwrap(), b"y");
    }
    tick_until_quiet(&mut c);
    assert_eq!(c.leaders(), vec![1]);
}

#[test]
fn a_read_wakes_the_leader_and_is_confirmed() {
    let mut c = quiet_group();
    c.node_mut(2).read_index("r".into()).expect("forwarded");
    assert!(!c.node(2).is_quiesced());
    let msgs = c.take_messages();
    assert!(
        msgs.iter()
            .any(|m| matches!(m.payload, Payload::ReadIndex(_)))
    );
    for m in msgs {
        c.deliver(m);
    }
    assert!(
        !c.node(1).is_quiesced(),
        "the forwarded read wakes the leader"
    );
    c.settle();
    assert_eq!(c.read_states[&2].len(), 1);
    tick_until_quiet(&mut c);
}

#[test]
fn a_message_wakes_a_quiet_node_and_a_restarted_follower_rejoins() {
    let mut c = quiet_group();
    let term = c.node(1).term();
    // A restarted node starts awake, hears nothing, and campaigns: its pre-vote wakes the
    // others, who refuse it while their leader is alive.
    c.crash_and_restart(3);
    assert!(!c.node(3).is_quiesced());
    for _ in 0..100 {
        c.tick(3);
        c.settle();
        if !c.node(1).is_quiesced() {
            break;
        }
    }
    assert!(!c.node(1).is_quiesced(), "the pre-vote woke the leader");
    tick_until_quiet(&mut c);
    assert_eq!(c.leaders(), vec![1]);
    assert_eq!(c.node(1).term(), term, "pre-vote kept the term");
    assert_eq!(c.node(3).leader_id(), Some(1));
}

#[test]
fn followers_woken_on_a_suspected_leader_failure_elect_a_new_leader() {
    let mut c = quiet_group();
    c.isolate(1);
    // Without a failure detector nothing happens: a quiet follower cannot notice.
    assert_eq!(tick_and_count(&mut c, &[2, 3], 500), 0);
    assert_eq!(c.node(2).leader_id(), Some(1));
    // The failure detector reports the leader unreachable on both followers.
    c.node_mut(2).report_unreachable(1);
    c.node_mut(3).report_unreachable(1);
    assert!(!c.node(2).is_quiesced() && !c.node(3).is_quiesced());
    for _ in 0..200 {
        c.tick(2);
        c.tick(3);
        c.settle();
        if !c.leaders().iter().all(|&l| l == 1) {
            break;
        }
    }
    let new_leader = c.leaders().into_iter().find(|&l| l != 1).expect("elected");
    assert!(c.node(new_leader).term() > c.node(1).term());
    // The old leader, still quiet, learns the new term as soon as it can hear again.
    c.heal();
    c.node_mut(new_leader).propose("z".into()).unwrap();
    for _ in 0..5 {
        c.tick(2);
        c.tick(3);
        c.settle();
    }
    assert_eq!(c.node(1).role(), Role::Follower);
    assert_eq!(c.applied_data(1).last().unwrap(), b"z");
}

#[test]
fn a_false_suspicion_costs_no_leadership_with_pre_vote_and_check_quorum() {
    let mut c = quiet_group();
    let term = c.node(1).term();
    c.node_mut(2).wake();
    for _ in 0..100 {
        c.tick(2);
        c.settle();
    }
    assert_eq!(c.leaders(), vec![1]);
    assert_eq!(c.node(2).term(), term);
    tick_until_quiet(&mut c);
}

#[test]
fn a_quiet_follower_partitioned_then_healed_catches_up() {
    let mut c = quiet_group();
    c.isolate(3);
    for i in 0..3 {
        c.node_mut(1).propose(format!("p{i}").into()).unwrap();
    }
    c.settle();
    for _ in 0..50 {
        c.tick_all();
        c.settle();
    }
    assert!(
        c.node(3).is_quiesced(),
        "node 3 heard nothing and stayed quiet"
    );
    assert!(!c.node(1).is_quiesced(), "the leader waits for node 3");
    c.heal();
    tick_until_quiet(&mut c);
    assert_eq!(c.log_terms(3), c.log_terms(1));
    assert_eq!(c.applied_data(3), c.applied_data(1));
    assert_eq!(c.leaders(), vec![1]);
}

#[test]
fn a_transfer_wakes_a_quiet_leader() {
    let mut c = quiet_group();
    c.node_mut(1)
        .transfer_leadership(3)
        .expect("transfer starts");
    assert!(!c.node(1).is_quiesced());
    c.settle();
    assert_eq!(c.leaders(), vec![3]);
    tick_until_quiet(&mut c);
    assert_eq!(c.leaders(), vec![3]);
}

#[test]
fn a_woken_lease_leader_confirms_its_first_read_with_a_round() {
    let config = |id| Config {
        read_only_option: ReadOnlyOption::LeaseBased,
        ..quiet_config(id)
    };
    let mut c = Cluster::with_config(3, config);
    c.elect(1);
    c.node_mut(1).propose("x".into()).unwrap();
    c.settle();
    tick_until_quiet(&mut c);
    // Its clock stood still while quiet, so the old lease proves nothing.
    c.node_mut(1).read_index("r".into()).unwrap();
    let msgs = c.take_messages();
    assert!(c.read_states.get(&1).is_none_or(Vec::is_empty));
    assert!(
        msgs.iter()
            .any(|m| matches!(m.payload, Payload::Heartbeat(_)))
    );
    for m in msgs {
        c.deliver(m);
    }
    c.settle();
    assert_eq!(c.read_states[&1].len(), 1);
    // The round renewed the lease: the next read needs no round trip.
    c.node_mut(1).read_index("s".into()).unwrap();
    c.process();
    assert_eq!(c.read_states[&1].len(), 2);
}

#[test]
fn a_lost_quiesce_message_costs_only_a_wake_up() {
    let mut c = Cluster::with_config(3, quiet_config);
    c.elect(1);
    c.node_mut(1).propose("x".into()).unwrap();
    c.settle();
    // Tick until the leader goes quiet, dropping its quiesce message to node 3.
    let mut dropped = false;
    for _ in 0..100 {
        c.tick_all();
        let msgs = c.take_messages();
        for m in msgs {
            if matches!(m.payload, Payload::Quiesce(_)) && m.to == 3 {
                dropped = true;
                continue;
            }
            c.deliver(m);
        }
        c.settle();
        if dropped {
            break;
        }
    }
    assert!(dropped && c.node(1).is_quiesced() && !c.node(3).is_quiesced());
    // Node 3 times out; its pre-vote wakes the leader, which re-establishes itself.
    tick_until_quiet(&mut c);
    assert_eq!(c.leaders(), vec![1]);
}

#[test]
fn leftovers_of_the_round_before_quiescence_wake_nobody() {
    let mut c = Cluster::with_config(3, quiet_config);
    c.elect(1);
    c.node_mut(1).propose("x".into()).unwrap();
    c.settle();
    // Keep a copy of every message of the last rounds before the group goes quiet.
    let mut old = Vec::new();
    for _ in 0..200 {
        if c.nodes.values().all(|n| n.is_quiesced()) {
            break;
        }
        c.tick_all();
        let msgs = c.take_messages();
        old.extend(
            msgs.iter()
                .filter(|m| {
                    matches!(
                        m.payload,
                        Payload::Heartbeat(_) | Payload::HeartbeatResponse(_) | Payload::Quiesce(_)
                    )
                })
                .cloned(),
        );
        for m in msgs {
            c.deliver(m);
        }
        c.settle();
    }
    assert!(c.nodes.values().all(|n| n.is_quiesced()));
    assert!(old.len() > 4);
    // The network delivers late duplicates of all of them: still quiet, still silent.
    for m in old {
        c.deliver(m);
        let replies = c.take_messages();
        for reply in replies {
            c.deliver(reply);
        }
        assert!(
            c.nodes.values().all(|n| n.is_quiesced()),
            "a leftover woke a node"
        );
    }
    assert_eq!(tick_and_count(&mut c, &[1, 2, 3], 100), 0);
}

#[test]
fn report_unreachable_wakes_only_followers_of_that_leader_and_makes_a_leader_probe() {
    let mut c = quiet_group();
    // A peer that is not the leader says nothing about the leader's health.
    c.node_mut(2).report_unreachable(3);
    assert!(c.node(2).is_quiesced());
    // A quiet leader ignores it: a follower's absence does not threaten the group.
    c.node_mut(1).report_unreachable(3);
    assert!(c.node(1).is_quiesced());
    // An awake leader stops streaming to the peer and probes it.
    c.node_mut(1).wake();
    c.node_mut(1).report_unreachable(3);
    let state = |c: &Cluster| {
        let status = c.node(1).status().unwrap();
        status.peers.iter().find(|p| p.id == 3).unwrap().state
    };
    assert_eq!(state(&c), aegis_raft::ProgressState::Probe);
    c.node_mut(1).propose("y".into()).unwrap();
    c.settle();
    assert_eq!(state(&c), aegis_raft::ProgressState::Replicate);
    assert_eq!(c.applied_data(3).last().unwrap(), b"y");
}
