//! Linearizable reads: ReadIndex, leases, forwarding, and leadership changes.

use aegis_raft::{Config, LogIndex, Payload, ReadIndexError, ReadOnlyOption, Role};
use bytes::Bytes;

use crate::harness::{Cluster, config};

fn contexts(c: &Cluster, id: u64) -> Vec<(Bytes, LogIndex)> {
    c.read_states
        .get(&id)
        .map(|rs| rs.iter().map(|r| (r.context.clone(), r.index)).collect())
        .unwrap_or_default()
}

#[test]
fn a_leader_confirms_reads_with_one_heartbeat_round_for_the_whole_batch() {
    let mut c = Cluster::new(3);
    c.elect(1);
    for i in 0..10u8 {
        c.node_mut(1).read_index(Bytes::from(vec![i])).unwrap();
    }
    let out = c.take_messages();
    let heartbeats = out
        .iter()
        .filter(|m| matches!(m.payload, Payload::Heartbeat(_)))
        .count();
    assert_eq!(
        heartbeats, 2,
        "one round to the two followers for ten reads"
    );
    assert!(
        contexts(&c, 1).is_empty(),
        "not confirmed before a quorum answers"
    );
    // One follower's answer is enough: with the leader it is a quorum of three.
    for m in out.into_iter().filter(|m| m.to == 2) {
        c.deliver(m);
    }
    c.settle();
    let reads = contexts(&c, 1);
    assert_eq!(reads.len(), 10);
    assert!(reads.iter().all(|(_, index)| *index == LogIndex(1)));
}

fn heartbeats(messages: &[aegis_raft::Message]) -> usize {
    messages
        .iter()
        .filter(|m| matches!(m.payload, Payload::Heartbeat(_)))
        .count()
}

#[test]
fn reads_that_arrive_while_a_round_is_out_share_the_next_round() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.node_mut(1).read_index("a".into()).unwrap();
    let first = c.take_messages();
    assert_eq!(
        heartbeats(&first),
        2,
        "the first read sends a round at once"
    );
    // A round is out: later reads wait for it instead of sending one each.
    for context in ["b", "c", "d"] {
        c.node_mut(1).read_index(context.into()).unwrap();
    }
    assert_eq!(heartbeats(&c.take_messages()), 0);
    // The round returns: it confirms only the read sent with it (the others arrived
    // after it left), and one new round goes out for all three.
    for m in first {
        c.deliver(m);
    }
    let answers = c.take_messages();
    for m in answers {
        c.deliver(m);
    }
    let second = c.take_messages();
    assert_eq!(contexts(&c, 1), vec![(Bytes::from("a"), LogIndex(1))]);
    assert_eq!(
        heartbeats(&second),
        2,
        "one round for the three waiting reads"
    );
    for m in second {
        c.deliver(m);
    }
    c.settle();
    let confirmed: Vec<Bytes> = contexts(&c, 1).into_iter().map(|(ctx, _)| ctx).collect();
    assert_eq!(confirmed, ["a", "b", "c", "d"].map(Bytes::from));
}

#[test]
fn a_lost_read_round_is_replaced_by_the_next_heartbeat() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.node_mut(1).read_index("a".into()).unwrap();
    drop(c.take_messages());
    c.node_mut(1).read_index("b".into()).unwrap();
    assert_eq!(heartbeats(&c.take_messages()), 0, "a round is still out");
    // The periodic heartbeat carries a newer round, which confirms both.
    for _ in 0..config(1).heartbeat_interval_ticks {
        c.tick(1);
    }
    c.settle();
    let confirmed: Vec<Bytes> = contexts(&c, 1).into_iter().map(|(ctx, _)| ctx).collect();
    assert_eq!(confirmed, ["a", "b"].map(Bytes::from));
}

#[test]
fn a_follower_forwards_reads_to_the_leader() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.node_mut(1).propose("x".into()).unwrap();
    c.settle();
    c.node_mut(3).read_index("r".into()).unwrap();
    c.settle();
    assert_eq!(contexts(&c, 3), vec![(Bytes::from("r"), LogIndex(2))]);
    assert!(contexts(&c, 1).is_empty());
}

#[test]
fn a_node_without_a_leader_refuses_reads() {
    let mut c = Cluster::new(3);
    assert_eq!(
        c.node_mut(2).read_index("r".into()),
        Err(ReadIndexError::NotLeader { leader_hint: None })
    );
}

#[test]
fn reads_beyond_the_pending_limit_are_refused() {
    let mut c = Cluster::with_config(3, |id| Config {
        pending_reads_max: 2,
        ..config(id)
    });
    c.elect(1);
    c.node_mut(1).read_index("a".into()).unwrap();
    c.node_mut(1).read_index("b".into()).unwrap();
    assert_eq!(
        c.node_mut(1).read_index("c".into()),
        Err(ReadIndexError::TooManyPendingReads { max: 2 })
    );
}

#[test]
fn an_unconfirmed_read_dies_with_its_leader_and_a_new_leader_waits_for_its_first_commit() {
    // Check-quorum is off so that the isolated old leader stays leader.
    let mut c = Cluster::with_config(3, |id| Config {
        check_quorum: false,
        ..config(id)
    });
    c.elect(1);
    // A read reaches the old leader, but its heartbeat round is lost, and it is deposed.
    c.node_mut(1).read_index("old".into()).unwrap();
    let _lost = c.take_messages();
    c.isolate(1);
    c.campaign_now(2);
    // Let node 2 win, but not yet replicate its no-op.
    while c.node(2).role() != Role::Leader {
        for m in c.take_messages() {
            c.deliver(m);
        }
    }
    assert!(c.node(2).commit_index() < c.node(2).last_index().unwrap());
    c.node_mut(2).read_index("new".into()).unwrap();
    let out = c.take_messages();
    assert!(
        !out.iter()
            .any(|m| matches!(m.payload, Payload::Heartbeat(_))),
        "no confirmation round before an entry of the new term commits"
    );
    for m in out {
        c.deliver(m);
    }
    c.settle();
    let no_op = c.node(2).last_index().unwrap();
    assert_eq!(c.node(2).commit_index(), no_op);
    assert_eq!(contexts(&c, 2), vec![(Bytes::from("new"), no_op)]);

    // The old leader learns of term 2 and drops its unconfirmed read.
    c.heal();
    c.tick(2);
    c.tick(2);
    c.settle();
    assert_eq!(c.node(1).role(), Role::Follower);
    assert!(
        contexts(&c, 1).is_empty(),
        "the old leader never confirmed its read"
    );
}

#[test]
fn a_lease_serves_reads_without_a_round_trip_until_it_lapses() {
    let mut c = Cluster::with_config(3, |id| Config {
        read_only_option: ReadOnlyOption::LeaseBased,
        ..config(id)
    });
    c.elect(1);
    // A heartbeat round acknowledged by a quorum starts the lease.
    c.tick(1);
    c.tick(1);
    c.settle();
    c.node_mut(1).read_index("fast".into()).unwrap();
    let out = c.take_messages();
    assert!(out.is_empty(), "served from the lease");
    assert_eq!(contexts(&c, 1), vec![(Bytes::from("fast"), LogIndex(1))]);

    // Cut off, the leader's lease lapses after election_timeout_ticks_min - lease_drift_ticks.
    c.isolate(1);
    let lease =
        c.node(1).config().election_timeout_ticks_min - c.node(1).config().lease_drift_ticks;
    for _ in 0..lease {
        c.tick(1);
        let _ = c.take_messages();
    }
    assert_eq!(c.node(1).role(), Role::Leader);
    c.node_mut(1).read_index("slow".into()).unwrap();
    let out = c.take_messages();
    assert!(
        out.iter()
            .any(|m| matches!(m.payload, Payload::Heartbeat(_))),
        "falls back to a ReadIndex round"
    );
    assert_eq!(contexts(&c, 1).len(), 1);
}

#[test]
fn lease_reads_require_check_quorum() {
    let cfg = Config {
        read_only_option: ReadOnlyOption::LeaseBased,
        check_quorum: false,
        ..config(1)
    };
    assert!(cfg.validate().is_err());
}

#[test]
fn with_leases_a_restarted_node_waits_an_election_timeout_before_voting() {
    let mut c = Cluster::with_config(3, |id| Config {
        read_only_option: ReadOnlyOption::LeaseBased,
        ..config(id)
    });
    c.elect(1);
    // Node 3 may have acknowledged the leader's heartbeat just before it crashed.
    c.crash_and_restart(3);
    let vote = |term| aegis_raft::Message {
        from: 2,
        to: 3,
        term: aegis_raft::Term(term),
        payload: Payload::Vote(aegis_raft::VoteRequest {
            last_log_index: LogIndex(9),
            last_log_term: aegis_raft::Term(term),
        }),
    };
    c.deliver(vote(5));
    assert!(
        c.take_messages().is_empty(),
        "no vote while the lease may live"
    );
    assert_eq!(c.node(3).term(), aegis_raft::Term(1));
    for _ in 0..c.node(3).config().election_timeout_ticks_min {
        c.tick(3);
    }
    let _ = c.take_messages();
    c.deliver(vote(6));
    let out = c.take_messages();
    assert!(out.iter().any(|m| m.to == 2
        && m.payload == Payload::VoteResponse(aegis_raft::VoteResponse { granted: true })));
}
