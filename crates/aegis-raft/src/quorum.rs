//! Majority arithmetic over a configuration, joint or not.

use std::collections::BTreeMap;

use crate::types::{ConfState, NodeId};

/// The largest value that a majority of `voters` has reached: the median from the top.
/// An empty set constrains nothing (`u64::MAX`), so that the outgoing set of a
/// configuration that is not joint drops out of [`joint_value`].
fn majority_value(voters: &[NodeId], value: &impl Fn(NodeId) -> u64) -> u64 {
    if voters.is_empty() {
        return u64::MAX;
    }
    let mut values: Vec<u64> = voters.iter().map(|&v| value(v)).collect();
    values.sort_unstable_by(|a, b| b.cmp(a));
    values[voters.len() / 2]
}

/// The largest value that a majority of each voter set of `conf` has reached.
pub(crate) fn joint_value(conf: &ConfState, value: impl Fn(NodeId) -> u64) -> u64 {
    let incoming = majority_value(&conf.voters, &value);
    let outgoing = majority_value(&conf.voters_outgoing, &value);
    incoming.min(outgoing)
}

/// The outcome of an election so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VoteResult {
    /// A majority of each voter set granted.
    Won,
    /// A majority of some voter set can no longer grant.
    Lost,
    /// Neither yet.
    Pending,
}

fn majority_result(voters: &[NodeId], votes: &BTreeMap<NodeId, bool>) -> VoteResult {
    if voters.is_empty() {
        return VoteResult::Won;
    }
    let quorum = voters.len() / 2 + 1;
    let yes = voters
        .iter()
        .filter(|v| votes.get(v) == Some(&true))
        .count();
    let no = voters
        .iter()
        .filter(|v| votes.get(v) == Some(&false))
        .count();
    if yes >= quorum {
        VoteResult::Won
    } else if no > voters.len() - quorum {
        VoteResult::Lost
    } else {
        VoteResult::Pending
    }
}

/// The outcome of the `votes` received so far under `conf`; votes of non-voters are
/// ignored.
pub(crate) fn vote_result(conf: &ConfState, votes: &BTreeMap<NodeId, bool>) -> VoteResult {
    match (
        majority_result(&conf.voters, votes),
        majority_result(&conf.voters_outgoing, votes),
    ) {
        (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
        (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
        _ => VoteResult::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joint(voters: &[NodeId], outgoing: &[NodeId]) -> ConfState {
        ConfState {
            voters: voters.to_vec(),
            learners: vec![9],
            voters_outgoing: outgoing.to_vec(),
        }
    }

    #[test]
    fn the_joint_value_is_the_smaller_of_the_two_majorities() {
        let match_of = |id: NodeId| [0, 10, 9, 2, 1, 3][id as usize];
        // Incoming {1,2,3}: a majority has 9; outgoing {3,4,5}: a majority has 2.
        assert_eq!(joint_value(&joint(&[1, 2, 3], &[3, 4, 5]), match_of), 2);
        assert_eq!(joint_value(&joint(&[1, 2, 3], &[]), match_of), 9);
        assert_eq!(joint_value(&joint(&[1, 2, 3, 4], &[]), match_of), 2);
    }

    #[test]
    fn an_election_needs_both_majorities_and_ignores_learners() {
        let conf = joint(&[1, 2, 3], &[1, 4, 5]);
        let mut votes = BTreeMap::from([(1, true), (2, true), (9, true)]);
        assert_eq!(vote_result(&conf, &votes), VoteResult::Pending);
        votes.insert(4, true);
        assert_eq!(vote_result(&conf, &votes), VoteResult::Won);
        let votes = BTreeMap::from([(1, true), (2, true), (4, false), (5, false)]);
        assert_eq!(vote_result(&conf, &votes), VoteResult::Lost);
    }
}
