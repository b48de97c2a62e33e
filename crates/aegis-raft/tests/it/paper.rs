//! The rules of the Raft paper (§5), as scenarios.

use std::collections::BTreeMap;

use aegis_raft::{
    AppendEntries, AppendResponse, HardState, Heartbeat, LogIndex, MemStorage, Message, NodeId,
    Payload, Role, Term, VoteRequest, VoteResponse,
};

use crate::harness::{Cluster, config, entry};

fn msg(from: NodeId, to: NodeId, term: u64, payload: Payload) -> Message {
    Message {
        from,
        to,
        term: Term(term),
        payload,
    }
}

fn vote(last_log_index: u64, last_log_term: u64) -> Payload {
    Payload::Vote(VoteRequest {
        last_log_index: LogIndex(last_log_index),
        last_log_term: Term(last_log_term),
    })
}

fn append(prev: (u64, u64), entries: &[(u64, u64)], commit: u64) -> Payload {
    Payload::Append(AppendEntries {
        prev_log_index: LogIndex(prev.0),
        prev_log_term: Term(prev.1),
        entries: entries.iter().map(|&(i, t)| entry(i, t)).collect(),
        leader_commit: LogIndex(commit),
    })
}

/// Storage for a three-node group whose log holds `terms[i]` at index `i + 1`, in `term`.
fn storage_with_log(terms: &[u64], term: u64) -> MemStorage {
    let mut storage = MemStorage::new(&[1, 2, 3]);
    let entries: Vec<_> = terms
        .iter()
        .enumerate()
        .map(|(i, &t)| entry(i as u64 + 1, t))
        .collect();
    storage.append(&entries);
    storage.set_hard_state(HardState {
        term: Term(term),
        vote: None,
        commit: LogIndex(0),
    });
    storage
}

/// The paper's rules do not depend on check-quorum; with it off, an isolated leader stays
/// leader however long a test ticks it.
fn cluster(size: u64) -> Cluster {
    Cluster::with_config(size, |id| aegis_raft::Config {
        check_quorum: false,
        ..config(id)
    })
}

fn responses(messages: &[Message]) -> Vec<(NodeId, Payload)> {
    messages.iter().map(|m| (m.to, m.payload.clone())).collect()
}

#[test]
fn a_message_from_an_older_term_changes_nothing() {
    let mut c = cluster(3);
    c.elect(1);
    c.elect_now(2);
    assert_eq!(c.node(2).term(), Term(2));
    assert_eq!(c.node(3).leader_id(), Some(2));

    // The deposed leader's heartbeat at term 1 reaches node 3.
    c.deliver(msg(
        1,
        3,
        1,
        Payload::Heartbeat(Heartbeat {
            commit: LogIndex(0),
            seq: 7,
        }),
    ));
    let out = c.take_messages();
    assert_eq!(c.node(3).term(), Term(2));
    assert_eq!(
        c.node(3).leader_id(),
        Some(2),
        "the stale leader is not followed"
    );
    // Node 3 answers with its newer term so that a stale leader learns it.
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].to, out[0].term), (1, Term(2)));
    assert!(matches!(out[0].payload, Payload::HeartbeatResponse(_)));
}

#[test]
fn a_stale_leader_steps_down_on_hearing_a_newer_term() {
    let mut c = cluster(3);
    c.elect(1);
    c.isolate(1);
    c.elect_now(2);
    c.heal();
    assert_eq!(
        c.node(1).role(),
        Role::Leader,
        "node 1 has not heard of term 2 yet"
    );
    let hb = c.node_mut(1).propose("lost".into());
    assert!(hb.is_ok());
    c.settle();
    assert_eq!(c.node(1).role(), Role::Follower);
    assert_eq!(c.node(1).term(), Term(2));
    // The new leader's next heartbeat makes node 1 follow it and replaces its tail.
    c.tick(2);
    c.tick(2);
    c.settle();
    assert_eq!(c.node(1).leader_id(), Some(2));
    assert_eq!(c.log_terms(1), c.log_terms(2));
    assert!(
        c.applied_data(1).is_empty(),
        "the stale leader's proposal never commits"
    );
}

#[test]
fn an_election_is_won_in_one_round() {
    let mut c = Cluster::new(5);
    c.elect(3);
    assert_eq!(c.leaders(), vec![3]);
    for id in [1, 2, 4, 5] {
        assert_eq!(c.node(id).role(), Role::Follower);
        assert_eq!(c.node(id).term(), Term(1));
        assert_eq!(c.node(id).leader_id(), Some(3));
    }
    // The leader's no-op committed everywhere.
    for id in 1..=5 {
        assert_eq!(c.node(id).commit_index(), LogIndex(1));
    }
}

#[test]
fn a_candidate_falls_back_on_a_current_leader() {
    let mut c = Cluster::with_config(3, |id| aegis_raft::Config {
        pre_vote: false,
        ..config(id)
    });
    // Node 2 becomes a candidate in term 1; its requests are lost.
    while c.node(2).role() != Role::Candidate {
        c.tick(2);
    }
    let _ = c.take_messages();
    assert_eq!(c.node(2).term(), Term(1));
    // Node 1 wins term 1 (node 3's vote and its own suffice) and its append reaches node 2.
    c.deliver(msg(1, 2, 1, append((0, 0), &[], 0)));
    assert_eq!(c.node(2).role(), Role::Follower);
    assert_eq!(c.node(2).leader_id(), Some(1));
    assert_eq!(c.node(2).term(), Term(1));
}

#[test]
fn a_node_votes_once_per_term() {
    let mut c = Cluster::new(3);
    c.deliver(msg(2, 1, 1, vote(0, 0)));
    let first = c.take_messages();
    assert_eq!(
        responses(&first),
        vec![(2, Payload::VoteResponse(VoteResponse { granted: true }))]
    );
    assert_eq!(c.node(1).hard_state().vote, Some(2));

    // Another candidate in the same term is refused; the same candidate asking again is not.
    c.deliver(msg(3, 1, 1, vote(0, 0)));
    c.deliver(msg(2, 1, 1, vote(0, 0)));
    let second = c.take_messages();
    let mut got = responses(&second);
    got.sort_by_key(|(to, _)| *to);
    assert_eq!(
        got,
        vec![
            (2, Payload::VoteResponse(VoteResponse { granted: true })),
            (3, Payload::VoteResponse(VoteResponse { granted: false })),
        ]
    );
}

#[test]
fn a_vote_grant_waits_until_the_vote_is_durable() {
    let mut c = Cluster::new(3);
    c.slow_disk.insert(1);
    c.deliver(msg(2, 1, 1, vote(0, 0)));
    assert!(
        c.take_messages().is_empty(),
        "no grant before the vote is written"
    );
    c.complete_writes(1);
    let out = c.take_messages();
    assert_eq!(
        responses(&out),
        vec![(2, Payload::VoteResponse(VoteResponse { granted: true }))]
    );
    assert_eq!(c.node(1).storage().hard_state().vote, Some(2));
}

#[test]
fn a_node_votes_only_for_a_log_at_least_as_up_to_date_as_its_own() {
    // Node 1's log ends at index 2, term 2.
    let cases = [
        ((1, 1), false), // older last term
        ((3, 1), false), // longer but older last term
        ((1, 2), false), // same last term, shorter
        ((2, 2), true),  // identical
        ((3, 2), true),  // same last term, longer
        ((1, 3), true),  // newer last term, shorter
    ];
    for ((last_index, last_term), granted) in cases {
        let storages: BTreeMap<_, _> = [(1, storage_with_log(&[1, 2], 2))].into_iter().collect();
        let mut c = Cluster::with_storages(storages, config);
        c.deliver(msg(2, 1, 3, vote(last_index, last_term)));
        let out = c.take_messages();
        assert_eq!(
            responses(&out),
            vec![(2, Payload::VoteResponse(VoteResponse { granted }))],
            "candidate log ends at ({last_index}, t{last_term})"
        );
    }
}

#[test]
fn a_leader_commits_only_entries_of_its_term_by_counting() {
    // Figure 8: entry 2 of term 2 is on a majority, but a leader of term 3 may not commit
    // it by counting; it commits once its own no-op (term 3) is on a majority.
    let storages: BTreeMap<_, _> = [
        (1, storage_with_log(&[1, 2], 2)),
        (2, storage_with_log(&[1, 2], 2)),
        (3, storage_with_log(&[1], 2)),
    ]
    .into_iter()
    .collect();
    let mut c = Cluster::with_storages(storages, config);
    c.elect(1);
    assert_eq!(c.node(1).term(), Term(3));
    assert_eq!(
        c.node(1).commit_index(),
        LogIndex(3),
        "no-op at index 3 committed"
    );

    // Replay by hand: a fresh leader that hears follower 2 acknowledge only index 2.
    let storages: BTreeMap<_, _> = [
        (1, storage_with_log(&[1, 2], 2)),
        (2, storage_with_log(&[1, 2], 2)),
        (3, storage_with_log(&[1], 2)),
    ]
    .into_iter()
    .collect();
    let mut c = Cluster::with_storages(storages, config);
    while c.node(1).role() == Role::Follower {
        c.tick(1);
    }
    // Pre-vote round, then the vote round; deliver only between nodes 1 and 2.
    while c.node(1).role() != Role::Leader {
        let out = c.take_messages();
        for m in out.into_iter().filter(|m| m.from == 2 || m.to == 2) {
            c.deliver(m);
        }
    }
    let _ = c.take_messages();
    assert_eq!(c.node(1).role(), Role::Leader);
    c.deliver(msg(
        2,
        1,
        3,
        Payload::AppendResponse(AppendResponse::Accepted {
            match_index: LogIndex(2),
        }),
    ));
    assert_eq!(
        c.node(1).commit_index(),
        LogIndex(0),
        "entry 2 is on a majority but from term 2"
    );
    c.deliver(msg(
        2,
        1,
        3,
        Payload::AppendResponse(AppendResponse::Accepted {
            match_index: LogIndex(3),
        }),
    ));
    assert_eq!(
        c.node(1).commit_index(),
        LogIndex(3),
        "the term-3 no-op commits, and entry 2 with it"
    );
}

#[test]
fn a_leader_brings_a_conflicting_follower_log_into_line() {
    // The leader (elected in term 5) has entries of terms 1,1,3,3,4; follower 2 diverges
    // after index 2 with a long tail of term 2; follower 3 is short.
    let storages: BTreeMap<_, _> = [
        (1, storage_with_log(&[1, 1, 3, 3, 4], 4)),
        (2, storage_with_log(&[1, 1, 2, 2, 2, 2, 2, 2], 4)),
        (3, storage_with_log(&[1], 4)),
    ]
    .into_iter()
    .collect();
    let mut c = Cluster::with_storages(storages, config);
    c.elect(1);
    c.settle();
    let leader_log = c.log_terms(1);
    assert_eq!(
        leader_log,
        vec![(1, 1), (2, 1), (3, 3), (4, 3), (5, 4), (6, 5)]
    );
    assert_eq!(c.log_terms(2), leader_log);
    assert_eq!(c.log_terms(3), leader_log);
    assert_eq!(c.node(2).storage().hard_state().commit, LogIndex(6));
}

#[test]
fn a_follower_rejects_an_append_whose_previous_entry_does_not_match() {
    let storages: BTreeMap<_, _> = [(1, storage_with_log(&[1, 1, 2, 2], 3))]
        .into_iter()
        .collect();
    let mut c = Cluster::with_storages(storages, config);
    // The leader of term 3 claims index 4 has term 3: no match. Our entry at 4 is term 2.
    c.deliver(msg(2, 1, 3, append((4, 3), &[(5, 3)], 0)));
    let out = c.take_messages();
    assert_eq!(
        responses(&out),
        vec![(
            2,
            Payload::AppendResponse(AppendResponse::Rejected {
                rejected_prev_index: LogIndex(4),
                hint_index: LogIndex(4),
                hint_term: Term(2),
            })
        )]
    );
    // Beyond our last index: the hint points at our last entry.
    c.deliver(msg(2, 1, 3, append((9, 3), &[], 0)));
    let out = c.take_messages();
    assert!(matches!(
        out[0].payload,
        Payload::AppendResponse(AppendResponse::Rejected {
            hint_index: LogIndex(4),
            hint_term: Term(2),
            ..
        })
    ));
    assert_eq!(
        c.node(1).last_index().unwrap(),
        LogIndex(4),
        "nothing was appended"
    );

    // A matching previous entry is accepted and the conflicting suffix replaced.
    c.deliver(msg(2, 1, 3, append((2, 1), &[(3, 3)], 0)));
    let out = c.take_messages();
    assert_eq!(
        responses(&out),
        vec![(
            2,
            Payload::AppendResponse(AppendResponse::Accepted {
                match_index: LogIndex(3)
            })
        )]
    );
    assert_eq!(c.log_terms(1), vec![(1, 1), (2, 1), (3, 3)]);
}

#[test]
fn a_follower_commits_what_the_leader_says_once_durable() {
    let mut c = Cluster::new(3);
    c.slow_disk.insert(1);
    c.deliver(msg(2, 1, 1, append((0, 0), &[(1, 1), (2, 1)], 2)));
    let _ = c.take_messages();
    assert_eq!(
        c.node(1).commit_index(),
        LogIndex(0),
        "entries not yet durable"
    );
    c.complete_writes(1);
    assert_eq!(c.node(1).commit_index(), LogIndex(2));
    c.process();
    assert_eq!(c.applied[&1].len(), 2);
}
