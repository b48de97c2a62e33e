//! Messages between the nodes of a group, and their versioned wire encoding.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::types::{Entry, LogIndex, NodeId, SnapshotMeta, Term};

/// The version of the message encoding written by [`Message::encode`]. A decoder refuses
/// any other version with [`DecodeError::UnsupportedVersion`]; a change to any message
/// type bumps it.
pub const MESSAGE_FORMAT_VERSION: u16 = 1;

/// One message from `from` to `to`, sent by the sender while in `term`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The sender.
    pub from: NodeId,
    /// The recipient.
    pub to: NodeId,
    /// The sender's term, except for pre-votes and granted pre-vote responses, which carry
    /// the term the pre-candidate would campaign in.
    pub term: Term,
    /// What the message says.
    pub payload: Payload,
}

/// The kinds of Raft messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Payload {
    /// A pre-candidate asks whether the recipient would vote for it (thesis §9.6).
    PreVote(VoteRequest),
    /// The answer to a [`Payload::PreVote`].
    PreVoteResponse(VoteResponse),
    /// A candidate asks for the recipient's vote in `term`.
    Vote(VoteRequest),
    /// The answer to a [`Payload::Vote`].
    VoteResponse(VoteResponse),
    /// The leader replicates entries (possibly none, to carry its commit index).
    Append(AppendEntries),
    /// A follower accepts or rejects an [`Payload::Append`].
    AppendResponse(AppendResponse),
    /// The leader asserts its leadership and confirms pending reads.
    Heartbeat(Heartbeat),
    /// A follower acknowledges a [`Payload::Heartbeat`].
    HeartbeatResponse(HeartbeatResponse),
    /// A follower forwards a linearizable read request to the leader.
    ReadIndex(ReadIndexRequest),
    /// The leader answers a forwarded read with the index the read must wait for.
    ReadIndexResponse(ReadIndexResponse),
    /// The leader, transferring its leadership, tells a follower whose log has caught up
    /// with its own to campaign at once (thesis §3.10).
    TimeoutNow,
    /// A vote request from a candidate that campaigns because the leader told it to
    /// ([`Payload::TimeoutNow`]). Voters grant it even while check-quorum would make them
    /// refuse a [`Payload::Vote`]: the leader gave its leadership away. Answered with a
    /// [`Payload::VoteResponse`].
    TransferVote(VoteRequest),
    /// The leader's last heartbeat before the group goes quiet: every follower has the
    /// whole log and `commit` is its last index. A follower whose log ends there stops
    /// ticking until something wakes it; one whose log differs answers with a
    /// [`Payload::HeartbeatResponse`], which wakes the leader.
    Quiesce(Heartbeat),
    /// The leader streams one bounded chunk of its snapshot to a follower whose needed
    /// entries were compacted.
    Snapshot(SnapshotChunkMessage),
    /// A follower reports how many bytes of a streamed snapshot it holds.
    SnapshotResponse(SnapshotResponse),
}

/// The body of a vote or pre-vote request: the candidate's log position, compared with
/// the voter's for the "at least as up to date" rule (§5.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteRequest {
    /// The index of the candidate's last entry.
    pub last_log_index: LogIndex,
    /// The term of the candidate's last entry.
    pub last_log_term: Term,
}

/// The body of a vote or pre-vote response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteResponse {
    /// Whether the vote is granted.
    pub granted: bool,
}

/// The body of an append request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendEntries {
    /// The index of the entry just before `entries`.
    pub prev_log_index: LogIndex,
    /// The term of that entry.
    pub prev_log_term: Term,
    /// Consecutive entries starting at `prev_log_index + 1`.
    pub entries: Vec<Entry>,
    /// The leader's commit index when it sent the message.
    pub leader_commit: LogIndex,
}

/// The body of an append response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppendResponse {
    /// The follower's log matches the leader's up to and including `match_index`, and the
    /// entries up to it are durable on the follower.
    Accepted {
        /// The last index known to match (the last entry of the accepted message).
        match_index: LogIndex,
    },
    /// The follower's log has no entry at `rejected_prev_index` with the given term.
    Rejected {
        /// The `prev_log_index` of the rejected request.
        rejected_prev_index: LogIndex,
        /// With `hint_term`: the largest index at or below `rejected_prev_index` whose
        /// term is at most the request's `prev_log_term`, or the follower's last index if
        /// that is smaller. The leader skips to it in one round trip instead of one entry
        /// at a time.
        hint_index: LogIndex,
        /// The term of the follower's entry at `hint_index`.
        hint_term: Term,
    },
}

/// The body of a heartbeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The leader's commit index, capped at what it knows the follower has, so the
    /// follower can advance its commit index without an append.
    pub commit: LogIndex,
    /// The leader's heartbeat round; echoed back so the leader can confirm the reads it
    /// registered before this round.
    pub seq: u64,
}

/// The body of a heartbeat response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    /// The round acknowledged.
    pub seq: u64,
    /// The follower's last log index, so the leader notices a follower that fell behind.
    pub last_index: LogIndex,
}

/// A read forwarded by a follower to the leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadIndexRequest {
    /// The caller's identifier for the read, returned unchanged.
    pub context: Bytes,
}

/// The leader's answer to a forwarded read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadIndexResponse {
    /// The caller's identifier for the read.
    pub context: Bytes,
    /// The read is linearizable once the follower has applied up to this index.
    pub index: LogIndex,
}

/// One chunk of a snapshot streamed by the leader. Chunks of one snapshot are sent in
/// offset order; the total size is known only once the chunk with `last` arrives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotChunkMessage {
    /// The snapshot the bytes belong to.
    pub meta: SnapshotMeta,
    /// The position of `data` in the snapshot's bytes.
    pub offset: u64,
    /// The bytes (at most `snapshot_chunk_bytes_max`).
    pub data: Bytes,
    /// Whether this chunk ends the snapshot.
    pub last: bool,
}

/// A follower's answer to a [`Payload::Snapshot`] chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotResponse {
    /// The index of the snapshot being received.
    pub index: LogIndex,
    /// Its term.
    pub term: Term,
    /// How many leading bytes of the snapshot the follower holds: the offset the next
    /// chunk must start at.
    pub received: u64,
    /// The chunk did not start at `received` (an earlier chunk was lost or the follower
    /// lost its partial copy): the leader resumes from `received`.
    pub rejected: bool,
}

/// Why bytes could not be decoded into a [`Message`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input is shorter than the version header.
    #[error("message truncated: {len} bytes")]
    Truncated {
        /// How many bytes there were.
        len: usize,
    },
    /// The input is longer than the caller's limit.
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The input's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The input was written by an encoding version this build does not read.
    #[error("unsupported message format version {found} (this build reads {expected})")]
    UnsupportedVersion {
        /// The version found in the header.
        found: u16,
        /// [`MESSAGE_FORMAT_VERSION`].
        expected: u16,
    },
    /// The body is not a valid message.
    #[error("malformed message body: {source}")]
    Malformed {
        /// What the decoder found wrong.
        source: postcard::Error,
    },
    /// A valid message is followed by bytes that belong to nothing.
    #[error("{len} trailing bytes after the message")]
    TrailingBytes {
        /// How many bytes were left over.
        len: usize,
    },
}

impl Message {
    /// Encodes the message as a two-byte little-endian format version followed by its
    /// postcard body.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + self.encoded_bytes_estimate());
        out.extend_from_slice(&MESSAGE_FORMAT_VERSION.to_le_bytes());
        // Serialising plain data into a growable vector cannot fail.
        postcard::to_extend(self, out).expect("message serialisation is infallible")
    }

    /// Room to reserve for the body, so that encoding an append or a snapshot chunk
    /// copies its bytes once instead of growing the buffer step by step.
    fn encoded_bytes_estimate(&self) -> usize {
        /// More than the fixed fields of any message take.
        const HEADER_BYTES: usize = 96;
        let bulk = match &self.payload {
            Payload::Append(append) => append
                .entries
                .iter()
                .map(|entry| entry.size_bytes() as usize)
                .sum(),
            Payload::Snapshot(chunk) => chunk.data.len(),
            _ => 0,
        };
        HEADER_BYTES + bulk
    }

    /// Decodes bytes written by [`Message::encode`], refusing inputs longer than
    /// `len_max`. Never panics, whatever the bytes.
    pub fn decode(bytes: &[u8], len_max: usize) -> Result<Message, DecodeError> {
        if bytes.len() > len_max {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                max: len_max,
            });
        }
        let (header, body) = bytes
            .split_first_chunk::<2>()
            .ok_or(DecodeError::Truncated { len: bytes.len() })?;
        let found = u16::from_le_bytes(*header);
        if found != MESSAGE_FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                found,
                expected: MESSAGE_FORMAT_VERSION,
            });
        }
        let (msg, rest) =
            postcard::take_from_bytes(body).map_err(|source| DecodeError::Malformed { source })?;
        if !rest.is_empty() {
            return Err(DecodeError::TrailingBytes { len: rest.len() });
        }
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::EntryKind;

    fn sample() -> Message {
        let entry = Entry {
            term: Term(3),
            index: LogIndex(8),
            kind: EntryKind::Normal,
            data: Bytes::from("set x 1"),
        };
        Message {
            from: 1,
            to: 2,
            term: Term(3),
            payload: Payload::Append(AppendEntries {
                prev_log_index: LogIndex(7),
                prev_log_term: Term(2),
                entries: vec![entry],
                leader_commit: LogIndex(6),
            }),
        }
    }

    #[test]
    fn encode_then_decode_returns_the_message() {
        let msg = sample();
        let bytes = msg.encode();
        assert_eq!(&bytes[..2], &MESSAGE_FORMAT_VERSION.to_le_bytes());
        assert_eq!(Message::decode(&bytes, 1 << 20).unwrap(), msg);
    }

    #[test]
    fn the_reserved_room_covers_an_append_and_the_bytes_are_postcards() {
        let mut msg = sample();
        let Payload::Append(append) = &mut msg.payload else {
            unreachable!("the sample is an append")
        };
        // Entries of many sizes, with indexes and terms large enough to take long varints.
        append.entries = (0..64_u64)
            .map(|i| Entry {
                term: Term(u64::MAX - i),
                index: LogIndex(u64::MAX / 2 + i),
                kind: EntryKind::Normal,
                data: Bytes::from(vec![7; (i * i * 3) as usize]),
            })
            .collect();
        msg.from = u64::MAX;
        msg.to = u64::MAX;
        let bytes = msg.encode();
        assert!(bytes.len() <= 2 + msg.encoded_bytes_estimate());
        let mut expected = MESSAGE_FORMAT_VERSION.to_le_bytes().to_vec();
        expected.extend(postcard::to_allocvec(&msg).unwrap());
        assert_eq!(bytes, expected);
        assert_eq!(Message::decode(&bytes, 1 << 30).unwrap(), msg);
    }

    #[test]
    fn decode_refuses_other_versions_oversized_and_truncated_input() {
        let mut bytes = sample().encode();
        assert!(matches!(
            Message::decode(&bytes, 4),
            Err(DecodeError::TooLarge { max: 4, .. })
        ));
        assert!(matches!(
            Message::decode(&bytes[..1], 100),
            Err(DecodeError::Truncated { len: 1 })
        ));
        assert!(matches!(
            Message::decode(&bytes[..bytes.len() - 3], 100),
            Err(DecodeError::Malformed { .. })
        ));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            Message::decode(&longer, 100),
            Err(DecodeError::TrailingBytes { len: 1 })
        ));
        bytes[0] = 9;
        assert!(matches!(
            Message::decode(&bytes, 100),
            Err(DecodeError::UnsupportedVersion {
                found: 9,
                expected: 1
            })
        ));
    }

    #[test]
    fn decode_never_panics_on_arbitrary_bytes() {
        let valid = sample().encode();
        let mut state = 0x1234_5678_u64;
        for round in 0..2000 {
            let mut bytes = valid.clone();
            // Flip a few bytes after the header, and sometimes cut the tail.
            for _ in 0..3 {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                let at = 2 + (state >> 33) as usize % (bytes.len() - 2);
                bytes[at] = (state >> 17) as u8;
            }
            if round % 3 == 0 {
                bytes.truncate(2 + round % (valid.len() - 2));
            }
            let _ = Message::decode(&bytes, 1 << 20);
        }
    }
}
