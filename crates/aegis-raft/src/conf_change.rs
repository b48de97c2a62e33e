//! Membership changes: the operations a caller proposes, the rules that turn a
//! configuration into the next one, and the encoding of a `ConfChange` entry.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::ConfChangeError;
use crate::message::DecodeError;
use crate::types::{ConfState, NodeId};

/// The version written in front of every encoded [`ConfChangeRecord`]; a decoder refuses
/// any other.
pub const CONF_CHANGE_FORMAT_VERSION: u16 = 1;

/// One operation of a membership change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConfChangeOp {
    /// Add a node that is not yet a member as a voter (on a learner: promote it).
    AddVoter(NodeId),
    /// Add a node that is not yet a member as a learner. A voter cannot be demoted in
    /// one step: remove it, then add it back as a learner.
    AddLearner(NodeId),
    /// Remove a voter or a learner.
    RemoveNode(NodeId),
    /// Make a learner a voter.
    PromoteLearner(NodeId),
}

impl ConfChangeOp {
    /// The node the operation is about.
    #[must_use]
    pub fn node(self) -> NodeId {
        match self {
            ConfChangeOp::AddVoter(id)
            | ConfChangeOp::AddLearner(id)
            | ConfChangeOp::RemoveNode(id)
            | ConfChangeOp::PromoteLearner(id) => id,
        }
    }
}

/// A membership change proposed with
/// [`RawNode::propose_conf_change`](crate::RawNode::propose_conf_change).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConfChange {
    /// Apply the operations at once. When at most one voter is added or removed the new
    /// configuration replaces the old one directly (a single-server change, thesis §4.1);
    /// otherwise the group enters the joint configuration C_old,new, and the leader
    /// appends [`ConfChange::LeaveJoint`] by itself as soon as that entry commits.
    Change(Vec<ConfChangeOp>),
    /// Leave the joint configuration for the new one (C_new).
    LeaveJoint,
}

impl ConfChange {
    /// The configuration that results from applying this change to `conf`.
    ///
    /// # Errors
    /// The change does not fit `conf`: an operation names node 0, a node twice, adds an
    /// existing member, removes a stranger, promotes a non-learner, leaves no voter; a
    /// change during a joint phase; leaving a joint phase that is not on; no operation.
    pub fn apply_to(&self, conf: &ConfState) -> Result<ConfState, ConfChangeError> {
        let ops = match self {
            ConfChange::LeaveJoint => {
                if !conf.is_joint() {
                    return Err(ConfChangeError::NotJoint);
                }
                let mut next = conf.clone();
                next.voters_outgoing.clear();
                return Ok(next);
            }
            ConfChange::Change(ops) => ops,
        };
        if conf.is_joint() {
            return Err(ConfChangeError::JointPhase);
        }
        if ops.is_empty() {
            return Err(ConfChangeError::EmptyChange);
        }
        let mut next = conf.clone();
        let mut seen = Vec::with_capacity(ops.len());
        for &op in ops {
            let id = op.node();
            if id == 0 {
                return Err(ConfChangeError::InvalidNodeId);
            }
            if seen.contains(&id) {
                return Err(ConfChangeError::DuplicateNode { id });
            }
            seen.push(id);
            match op {
                ConfChangeOp::AddVoter(_) => {
                    if next.voters.contains(&id) {
                        return Err(ConfChangeError::AlreadyVoter { id });
                    }
                    next.learners.retain(|&l| l != id);
                    next.voters.push(id);
                }
                ConfChangeOp::AddLearner(_) => {
                    if next.voters.contains(&id) {
                        return Err(ConfChangeError::AlreadyVoter { id });
                    }
                    if next.learners.contains(&id) {
                        return Err(ConfChangeError::AlreadyLearner { id });
                    }
                    next.learners.push(id);
                }
                ConfChangeOp::RemoveNode(_) => {
                    if !next.contains(id) {
                        return Err(ConfChangeError::UnknownNode { id });
                    }
                    next.voters.retain(|&v| v != id);
                    next.learners.retain(|&l| l != id);
                }
                ConfChangeOp::PromoteLearner(_) => {
                    if !next.learners.contains(&id) {
                        return Err(ConfChangeError::NotLearner { id });
                    }
                    next.learners.retain(|&l| l != id);
                    next.voters.push(id);
                }
            }
        }
        next.normalize();
        if next.voters.is_empty() {
            return Err(ConfChangeError::NoVoters);
        }
        let changed = next
            .voters
            .iter()
            .filter(|v| !conf.voters.contains(v))
            .count()
            + conf
                .voters
                .iter()
                .filter(|v| !next.voters.contains(v))
                .count();
        if changed > 1 {
            next.voters_outgoing = conf.voters.clone();
        }
        debug_assert!(next.learners.iter().all(|l| !next.is_voter(*l)));
        Ok(next)
    }
}

/// The data of an [`EntryKind::ConfChange`](crate::EntryKind::ConfChange) entry: the
/// change proposed and the whole configuration it leads to. Carrying the result makes
/// every node adopt exactly the leader's configuration, whatever configuration it
/// started from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfChangeRecord {
    /// The change as proposed.
    pub change: ConfChange,
    /// The configuration in effect from this entry on.
    pub conf_state: ConfState,
}

impl ConfChangeRecord {
    /// Encodes the record as [`CONF_CHANGE_FORMAT_VERSION`] (two bytes, little-endian)
    /// followed by its postcard body.
    #[must_use]
    pub fn encode(&self) -> Bytes {
        let mut out = CONF_CHANGE_FORMAT_VERSION.to_le_bytes().to_vec();
        // Serialising plain data into a growable vector cannot fail.
        let body = postcard::to_allocvec(self).expect("record serialisation is infallible");
        out.extend_from_slice(&body);
        out.into()
    }

    /// Decodes the data of a `ConfChange` entry. Never panics, whatever the bytes.
    ///
    /// # Errors
    /// The bytes are truncated, of another version, malformed or followed by garbage.
    pub fn decode(bytes: &[u8]) -> Result<ConfChangeRecord, DecodeError> {
        let (header, body) = bytes
            .split_first_chunk::<2>()
            .ok_or(DecodeError::Truncated { len: bytes.len() })?;
        let found = u16::from_le_bytes(*header);
        if found != CONF_CHANGE_FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                found,
                expected: CONF_CHANGE_FORMAT_VERSION,
            });
        }
        let (mut record, rest): (ConfChangeRecord, &[u8]) =
            postcard::take_from_bytes(body).map_err(|source| DecodeError::Malformed { source })?;
        if !rest.is_empty() {
            return Err(DecodeError::TrailingBytes { len: rest.len() });
        }
        record.conf_state.normalize();
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConfChangeOp::{AddLearner, AddVoter, PromoteLearner, RemoveNode};

    fn conf(voters: &[NodeId], learners: &[NodeId], outgoing: &[NodeId]) -> ConfState {
        ConfState {
            voters: voters.to_vec(),
            learners: learners.to_vec(),
            voters_outgoing: outgoing.to_vec(),
        }
    }

    fn change(ops: &[ConfChangeOp]) -> ConfChange {
        ConfChange::Change(ops.to_vec())
    }

    #[test]
    fn one_voter_changes_directly_and_more_enter_the_joint_phase() {
        let base = conf(&[1, 2, 3], &[], &[]);
        assert_eq!(
            change(&[AddVoter(4)]).apply_to(&base).unwrap(),
            conf(&[1, 2, 3, 4], &[], &[])
        );
        assert_eq!(
            change(&[RemoveNode(2), AddLearner(5)])
                .apply_to(&base)
                .unwrap(),
            conf(&[1, 3], &[5], &[])
        );
        let joint = change(&[RemoveNode(3), AddVoter(4)])
            .apply_to(&base)
            .unwrap();
        assert_eq!(joint, conf(&[1, 2, 4], &[], &[1, 2, 3]));
        assert!(matches!(
            change(&[AddVoter(5)]).apply_to(&joint),
            Err(ConfChangeError::JointPhase)
        ));
        assert_eq!(
            ConfChange::LeaveJoint.apply_to(&joint).unwrap(),
            conf(&[1, 2, 4], &[], &[])
        );
        assert!(matches!(
            ConfChange::LeaveJoint.apply_to(&base),
            Err(ConfChangeError::NotJoint)
        ));
    }

    #[test]
    fn promotion_moves_a_learner_and_only_a_learner() {
        let base = conf(&[1, 2, 3], &[4], &[]);
        assert_eq!(
            change(&[PromoteLearner(4)]).apply_to(&base).unwrap(),
            conf(&[1, 2, 3, 4], &[], &[])
        );
        assert!(matches!(
            change(&[PromoteLearner(2)]).apply_to(&base),
            Err(ConfChangeError::NotLearner { id: 2 })
        ));
        assert!(matches!(
            change(&[AddLearner(4)]).apply_to(&base),
            Err(ConfChangeError::AlreadyLearner { id: 4 })
        ));
    }

    #[test]
    fn invalid_changes_are_refused_with_their_reason() {
        let base = conf(&[1, 2], &[], &[]);
        let refused = |ops: &[ConfChangeOp]| change(ops).apply_to(&base).unwrap_err();
        assert!(matches!(
            refused(&[RemoveNode(7)]),
            ConfChangeError::UnknownNode { id: 7 }
        ));
        assert!(matches!(
            refused(&[AddVoter(2)]),
            ConfChangeError::AlreadyVoter { id: 2 }
        ));
        assert!(matches!(
            refused(&[RemoveNode(1), RemoveNode(2)]),
            ConfChangeError::NoVoters
        ));
        assert!(matches!(
            refused(&[AddVoter(3), RemoveNode(3)]),
            ConfChangeError::DuplicateNode { id: 3 }
        ));
        assert!(matches!(
            refused(&[AddVoter(0)]),
            ConfChangeError::InvalidNodeId
        ));
        assert!(matches!(refused(&[]), ConfChangeError::EmptyChange));
    }

    #[test]
    fn records_round_trip_and_garbage_is_refused_without_panicking() {
        let record = ConfChangeRecord {
            change: change(&[AddVoter(4), RemoveNode(1)]),
            conf_state: conf(&[2, 3, 4], &[], &[1, 2, 3]),
        };
        let bytes = record.encode();
        assert_eq!(ConfChangeRecord::decode(&bytes).unwrap(), record);
        assert!(ConfChangeRecord::decode(&bytes[..1]).is_err());
        assert!(ConfChangeRecord::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(matches!(
            ConfChangeRecord::decode(&longer),
            Err(DecodeError::TrailingBytes { len: 1 })
        ));
        let mut state = 99_u64;
        for _ in 0..500 {
            let mut garbage = bytes.to_vec();
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let at = 2 + (state >> 33) as usize % (garbage.len() - 2);
            garbage[at] = (state >> 13) as u8;
            let _ = ConfChangeRecord::decode(&garbage);
        }
    }
}
