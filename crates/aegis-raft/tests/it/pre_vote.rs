//! Pre-vote and check-quorum: a rejoining node does not disrupt, a cut-off leader yields.

use aegis_raft::{Config, LogIndex, Message, Payload, Role, Term, VoteRequest, VoteResponse};

use crate::harness::{Cluster, config};

#[test]
fn a_partitioned_node_rejoining_does_not_disrupt_the_leader() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.isolate(3);
    for _ in 0..100 {
        c.tick(3);
        c.settle();
    }
    assert_eq!(
        c.node(3).term(),
        Term(1),
        "pre-vote keeps the term of a node that cannot win"
    );
    c.heal();
    for _ in 0..30 {
        c.tick_all();
        c.settle();
    }
    assert_eq!(c.leaders(), vec![1]);
    for id in 1..=3 {
        assert_eq!(c.node(id).term(), Term(1));
        assert_eq!(c.node(id).leader_id(), Some(1));
    }
}

#[test]
fn without_pre_vote_a_rejoining_node_deposes_the_leader() {
    // The same story with pre-vote and check-quorum off shows what they prevent.
    let mut c = Cluster::with_config(3, |id| Config {
        pre_vote: false,
        check_quorum: false,
        ..config(id)
    });
    c.elect(1);
    c.isolate(3);
    for _ in 0..100 {
        c.tick(3);
        c.settle();
    }
    assert!(
        c.node(3).term() > Term(1),
        "its term rose with every lost election"
    );
    c.heal();
    // The others still hear from their leader and ignore its vote requests, but it
    // answers the leader's next heartbeat with its term.
    for _ in 0..c.node(1).config().heartbeat_interval_ticks {
        c.tick(1);
    }
    c.settle();
    assert!(
        c.node(1).term() > Term(1),
        "the rejoining node's term reached the leader"
    );
    assert_ne!(c.leaders(), vec![1], "and deposed it");
}

#[test]
fn a_leader_cut_off_from_the_quorum_steps_down_within_an_election_timeout() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.isolate(1);
    let timeout = c.node(1).config().election_timeout_ticks_min;
    for _ in 0..timeout - 1 {
        c.tick(1);
        c.settle();
    }
    assert_eq!(c.node(1).role(), Role::Leader);
    c.tick(1);
    assert_eq!(
        c.node(1).role(),
        Role::Follower,
        "stepped down after {timeout} silent ticks"
    );
    assert_eq!(c.node(1).leader_id(), None);
    assert!(c.node_mut(1).propose("x".into()).is_err());
}

#[test]
fn a_leader_hearing_from_a_quorum_stays() {
    let mut c = Cluster::new(5);
    c.elect(1);
    c.isolate(4);
    c.isolate(5);
    for _ in 0..100 {
        c.tick(1);
        c.settle();
    }
    assert_eq!(
        c.node(1).role(),
        Role::Leader,
        "nodes 2 and 3 with the leader are a quorum"
    );
}

#[test]
fn a_follower_that_hears_its_leader_ignores_vote_requests() {
    let mut c = Cluster::new(3);
    c.elect(1);
    let last = c.node(2).last_index().unwrap();
    let request = VoteRequest {
        last_log_index: last,
        last_log_term: Term(1),
    };
    for payload in [Payload::PreVote(request), Payload::Vote(request)] {
        c.deliver(Message {
            from: 3,
            to: 2,
            term: Term(2),
            payload,
        });
    }
    assert!(c.take_messages().is_empty(), "no answer at all");
    assert_eq!(c.node(2).term(), Term(1));
    assert_eq!(c.node(2).leader_id(), Some(1));
}

#[test]
fn a_pre_vote_is_granted_without_changing_the_voters_term() {
    let mut c = Cluster::new(3);
    let request = VoteRequest {
        last_log_index: LogIndex(0),
        last_log_term: Term(0),
    };
    c.deliver(Message {
        from: 3,
        to: 2,
        term: Term(1),
        payload: Payload::PreVote(request),
    });
    let out = c.take_messages();
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].payload,
        Payload::PreVoteResponse(VoteResponse { granted: true })
    );
    assert_eq!(
        out[0].term,
        Term(1),
        "the grant names the term the pre-candidate would use"
    );
    assert_eq!(c.node(2).term(), Term(0));
    assert_eq!(c.node(2).hard_state().vote, None);
}

#[test]
fn a_pre_candidate_that_loses_stays_in_its_term() {
    let mut c = Cluster::new(3);
    c.elect(1);
    // Node 2 lost its leader's messages and campaigns; node 3 still hears the leader.
    c.isolate(1);
    while c.node(2).role() == Role::Follower {
        c.tick(2);
    }
    assert_eq!(c.node(2).role(), Role::PreCandidate);
    c.settle();
    assert_eq!(c.node(2).term(), Term(1));
    assert_ne!(c.node(2).role(), Role::Candidate);
}
