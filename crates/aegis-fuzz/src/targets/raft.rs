//! Raft bytes: messages between nodes and membership-change records in the log.

use aegis_raft::{
    AppendEntries, AppendResponse, ConfChange, ConfChangeOp, ConfChangeRecord, ConfState, Entry,
    EntryKind, Heartbeat, HeartbeatResponse, LogIndex, Message, Payload, ReadIndexRequest,
    ReadIndexResponse, SnapshotChunkMessage, SnapshotMeta, SnapshotResponse, Term, VoteRequest,
    VoteResponse,
};
use bytes::Bytes;

use crate::engine::Verdict;

/// The message limit the target decodes with.
const MESSAGE_LEN_MAX: usize = 1 << 20;

fn entry(index: u64, kind: EntryKind, len: usize) -> Entry {
    Entry {
        term: Term(index / 3 + 1),
        index: LogIndex(index),
        kind,
        data: Bytes::from((0..len).map(|i| i as u8).collect::<Vec<u8>>()),
    }
}

fn conf(voters: &[u64], learners: &[u64], outgoing: &[u64]) -> ConfState {
    ConfState {
        voters: voters.to_vec(),
        learners: learners.to_vec(),
        voters_outgoing: outgoing.to_vec(),
    }
}

fn message(term: u64, payload: Payload) -> Message {
    Message {
        from: 1,
        to: 2,
        term: Term(term),
        payload,
    }
}

pub(crate) fn message_seeds() -> Vec<Vec<u8>> {
    let vote = VoteRequest {
        last_log_index: LogIndex(129),
        last_log_term: Term(4),
    };
    let payloads = vec![
        Payload::PreVote(vote),
        Payload::Vote(vote),
        Payload::VoteResponse(VoteResponse { granted: true }),
        Payload::Append(AppendEntries {
            prev_log_index: LogIndex(0),
            prev_log_term: Term(0),
            entries: Vec::new(),
            leader_commit: LogIndex(0),
        }),
        Payload::Append(AppendEntries {
            prev_log_index: LogIndex(7),
            prev_log_term: Term(2),
            entries: vec![
                entry(8, EntryKind::NoOp, 0),
                entry(9, EntryKind::Normal, 40),
                entry(10, EntryKind::ConfChange, 200),
            ],
            leader_commit: LogIndex(6),
        }),
        Payload::AppendResponse(AppendResponse::Rejected {
            rejected_prev_index: LogIndex(300),
            hint_index: LogIndex(250),
            hint_term: Term(5),
        }),
        Payload::AppendResponse(AppendResponse::Accepted {
            match_index: LogIndex(u64::MAX),
        }),
        Payload::Heartbeat(Heartbeat {
            commit: LogIndex(17),
            seq: 99,
        }),
        Payload::HeartbeatResponse(HeartbeatResponse {
            seq: 99,
            last_index: LogIndex(20),
        }),
        Payload::ReadIndex(ReadIndexRequest {
            context: Bytes::from_static(b"read-42"),
        }),
        Payload::ReadIndexResponse(ReadIndexResponse {
            context: Bytes::from_static(b"read-42"),
            index: LogIndex(21),
        }),
        Payload::TimeoutNow,
        Payload::Quiesce(Heartbeat {
            commit: LogIndex(30),
            seq: 1,
        }),
        Payload::Snapshot(SnapshotChunkMessage {
            meta: SnapshotMeta {
                index: LogIndex(1000),
                term: Term(9),
                conf_state: conf(&[1, 2, 3], &[4], &[]),
            },
            offset: 4096,
            data: Bytes::from(vec![0xAB; 600]),
            last: true,
        }),
        Payload::SnapshotResponse(SnapshotResponse {
            index: LogIndex(1000),
            term: Term(9),
            received: 4696,
            rejected: false,
        }),
    ];
    payloads
        .into_iter()
        .enumerate()
        .map(|(i, payload)| message(i as u64 + 1, payload).encode())
        .collect()
}

/// `Message::decode`, and a round trip of what it accepts.
pub(crate) fn message_run(input: &[u8]) -> Verdict {
    match Message::decode(input, MESSAGE_LEN_MAX) {
        Ok(message) => {
            let again = Message::decode(&message.encode(), MESSAGE_LEN_MAX)
                .expect("a re-encoded message decodes");
            assert_eq!(again, message, "message changed in a round trip");
            Verdict::Accepted
        }
        Err(_) => Verdict::Rejected,
    }
}

pub(crate) fn conf_change_seeds() -> Vec<Vec<u8>> {
    use ConfChangeOp::{AddLearner, AddVoter, PromoteLearner, RemoveNode};
    let records = [
        ConfChangeRecord {
            change: ConfChange::Change(vec![AddVoter(4)]),
            conf_state: conf(&[1, 2, 3, 4], &[], &[]),
        },
        ConfChangeRecord {
            change: ConfChange::Change(vec![RemoveNode(3), AddVoter(5), AddLearner(6)]),
            conf_state: conf(&[1, 2, 5], &[6], &[1, 2, 3]),
        },
        ConfChangeRecord {
            change: ConfChange::Change(vec![PromoteLearner(u64::MAX)]),
            conf_state: conf(&[1, u64::MAX], &[], &[]),
        },
        ConfChangeRecord {
            change: ConfChange::LeaveJoint,
            conf_state: conf(&[1, 2, 5], &[6], &[]),
        },
    ];
    records.iter().map(|r| r.encode().to_vec()).collect()
}

/// `ConfChangeRecord::decode`, and a round trip of what it accepts.
pub(crate) fn conf_change_run(input: &[u8]) -> Verdict {
    match ConfChangeRecord::decode(input) {
        Ok(record) => {
            let again =
                ConfChangeRecord::decode(&record.encode()).expect("a re-encoded record decodes");
            assert_eq!(again, record, "record changed in a round trip");
            Verdict::Accepted
        }
        Err(_) => Verdict::Rejected,
    }
}
