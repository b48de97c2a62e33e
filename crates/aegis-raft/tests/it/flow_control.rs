//! Flow control: the in-flight window, message size limits and uncommitted back-pressure.

use aegis_raft::{
    Config, ENTRY_OVERHEAD_BYTES, LogIndex, MemStorage, Message, Payload, ProgressState,
    ProposeError, RawNode, Role,
};
use bytes::Bytes;

use crate::harness::{Cluster, config};

fn appends_to(msgs: &[Message], to: u64) -> Vec<usize> {
    msgs.iter()
        .filter(|m| m.to == to)
        .filter_map(|m| match &m.payload {
            Payload::Append(a) => Some(a.entries.len()),
            _ => None,
        })
        .collect()
}

#[test]
fn replication_pauses_at_the_message_window_and_resumes_on_acknowledgement() {
    let mut c = Cluster::with_config(3, |id| Config {
        inflight_msgs_max: 2,
        entries_per_msg_max: 1,
        ..config(id)
    });
    c.elect(1);
    for i in 0..5 {
        c.node_mut(1).propose(Bytes::from(vec![i])).unwrap();
    }
    let out = c.take_messages();
    assert_eq!(
        appends_to(&out, 2),
        vec![1, 1],
        "two messages of one entry, then paused"
    );
    let status = c.node(1).status().unwrap();
    let peer = status.peers.iter().find(|p| p.id == 2).unwrap();
    assert_eq!(
        (peer.state, peer.inflight_msgs),
        (ProgressState::Replicate, 2)
    );
    assert!(!c.node(1).has_ready(), "nothing more to send while paused");

    // The first acknowledgement frees one slot: exactly one more message goes out.
    let (mut to_two, others): (Vec<Message>, Vec<Message>) =
        out.into_iter().partition(|m| m.to == 2);
    c.deliver(to_two.remove(0));
    let acks = c.take_messages();
    for ack in acks {
        c.deliver(ack);
    }
    let out = c.take_messages();
    assert_eq!(appends_to(&out, 2), vec![1]);
    c.network
        .extend(to_two.into_iter().chain(others).chain(out));

    c.settle();
    for id in 2..=3 {
        assert_eq!(c.applied_data(id).len(), 5);
    }
}

#[test]
fn messages_and_the_window_are_bounded_by_bytes() {
    // Entries of 100 data bytes count 124; a 300-byte message holds two, and a window of
    // 300 bytes is full after two messages.
    let mut c = Cluster::with_config(3, |id| Config {
        msg_bytes_max: 300,
        inflight_bytes_max: 300,
        uncommitted_bytes_max: 10_000,
        ..config(id)
    });
    c.elect(1);
    for _ in 0..10 {
        c.node_mut(1).propose(Bytes::from(vec![7; 100])).unwrap();
    }
    let out = c.take_messages();
    assert_eq!(appends_to(&out, 3), vec![2, 2]);
    let status = c.node(1).status().unwrap();
    assert!(status.peers.iter().all(|p| p.inflight_bytes == 496));
    c.network.extend(out);
    c.settle();
    assert_eq!(c.applied_data(3).len(), 10);
}

#[test]
fn proposals_between_readies_are_batched_into_one_message() {
    let mut c = Cluster::with_config(3, |id| Config {
        entries_per_msg_max: 3,
        ..config(id)
    });
    c.elect(1);
    for i in 0..7 {
        c.node_mut(1).propose(Bytes::from(vec![i])).unwrap();
    }
    let out = c.take_messages();
    assert_eq!(appends_to(&out, 2), vec![3, 3, 1]);
}

#[test]
fn proposals_are_refused_beyond_the_uncommitted_bytes_limit_until_entries_commit() {
    let mut c = Cluster::with_config(3, |id| Config {
        msg_bytes_max: 1024,
        uncommitted_bytes_max: 1024,
        ..config(id)
    });
    c.elect(1);
    c.isolate(1);
    let mut accepted = 0;
    let err = loop {
        match c.node_mut(1).propose(Bytes::from(vec![0; 200])) {
            Ok(_) => accepted += 1,
            Err(err) => break err,
        }
    };
    assert_eq!(accepted, 4, "4 x 224 bytes fit in 1024");
    assert!(matches!(
        err,
        ProposeError::TooManyUncommittedBytes {
            uncommitted: 896,
            len: 224,
            max: 1024
        }
    ));
    assert!(matches!(
        c.node_mut(1).propose(Bytes::from(vec![0; 2000])),
        Err(ProposeError::EntryTooLarge {
            len: 2024,
            max: 1024
        })
    ));
    c.heal();
    c.settle();
    assert_eq!(c.applied_data(1).len(), 4);
    assert!(
        c.node_mut(1).propose(Bytes::from(vec![0; 200])).is_ok(),
        "room again once committed"
    );
}

#[test]
fn a_lost_append_is_recovered_by_the_heartbeat_round() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.node_mut(1).propose("a".into()).unwrap();
    // Both appends are lost: nothing commits, so no later append would carry news.
    let lost = c.take_messages();
    assert_eq!(lost.len(), 2);
    c.settle();
    assert!(c.applied_data(1).is_empty());
    // Heartbeat responses show no progress over a round: the leader probes again.
    for _ in 0..6 {
        c.tick(1);
        c.settle();
    }
    for id in 1..=3 {
        assert_eq!(c.applied_data(id), vec![b"a".to_vec()]);
    }
    assert_eq!(c.node(1).role(), Role::Leader);
}

#[test]
fn committed_entries_wait_while_the_state_machine_lags() {
    let config = Config {
        apply_bytes_max: 1,
        apply_inflight_bytes_max: 3 * (100 + ENTRY_OVERHEAD_BYTES),
        ..Config::new(1)
    };
    let mut node = RawNode::new(config, MemStorage::new(&[1]), 5).unwrap();
    // Persist everything, apply nothing: collects what is handed out for applying.
    let drain = |node: &mut RawNode<MemStorage>| {
        let mut handed_out = Vec::new();
        while node.has_ready() {
            let ready = node.ready().unwrap();
            node.storage_mut().append(&ready.entries);
            if let Some(hs) = ready.hard_state {
                node.storage_mut().set_hard_state(hs);
            }
            node.on_persisted(ready.persist_ack()).unwrap();
            handed_out.extend(ready.committed_entries.iter().map(|e| e.index));
        }
        handed_out
    };
    let mut noop = Vec::new();
    while node.role() != Role::Leader || noop.is_empty() {
        node.tick().unwrap();
        noop.extend(drain(&mut node));
    }
    assert_eq!(noop, vec![LogIndex(1)]);
    node.on_applied(LogIndex(1));
    for _ in 0..10 {
        node.propose(vec![7u8; 100].into()).unwrap();
    }
    // One entry per Ready, and no more than three entries' bytes waiting to be applied.
    let first = drain(&mut node);
    assert_eq!(first.len(), 3, "handed out {first:?}");
    assert!(
        !node.has_ready(),
        "nothing more until the state machine catches up"
    );
    assert_eq!(node.commit_index(), LogIndex(11));
    // Applying the first two makes room for two more.
    node.on_applied(first[1]);
    let second = drain(&mut node);
    assert_eq!(second, vec![LogIndex(5), LogIndex(6)]);
    node.on_applied(LogIndex(6));
    let rest = drain(&mut node);
    assert_eq!(rest.first(), Some(&LogIndex(7)));
    assert_eq!(rest.len(), 3);
}
