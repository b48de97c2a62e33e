//! The membership nemesis and the parts of the checks that depend on who is a member.

use aegis_raft::{ConfChange, ConfChangeOp, ConfState, Role};

use super::{Fail, World};
use crate::NodeId;
use crate::event::Event;
use crate::host::Host;
use crate::oracle::Violation;

impl World {
    /// The leader of the highest term, if any node is leader.
    pub(super) fn latest_leader(&self) -> Option<&Host> {
        self.hosts
            .iter()
            .filter(|h| h.role() == Some(Role::Leader))
            .max_by_key(|h| h.role_term().map(|(_, t)| t))
    }

    /// The members of the latest leader's configuration (every node when there is no
    /// leader).
    pub(super) fn members(&self) -> Vec<NodeId> {
        self.latest_leader()
            .and_then(Host::conf_states)
            .map_or_else(
                || self.hosts.iter().map(|h| h.id).collect(),
                |(conf, _)| conf.members(),
            )
    }

    /// Every committed entry must be durable on enough nodes that every quorum of the
    /// group's configuration includes one of them, or a crash could lose it. The
    /// configuration is in flux during a change, so the check passes when this holds for
    /// the configuration in effect or the last committed one on some node (running, or
    /// as its disk would restart it).
    pub(super) fn check_durable_quorum(&self) -> Result<(), Violation> {
        let top = self.oracle.commit_index();
        if top == 0 {
            return Ok(());
        }
        let want = self.oracle.committed_chain(top);
        let holds = |id: NodeId| {
            self.hosts
                .iter()
                .any(|h| h.id == id && h.durable.chain(top) == want)
        };
        // Every quorum of `voters` meets the holders when a majority cannot be found
        // among the others.
        let covered = |voters: &[NodeId]| {
            let holders = voters.iter().filter(|&&v| holds(v)).count();
            voters.len() - holders < voters.len() / 2 + 1
        };
        let mut confs: Vec<ConfState> = Vec::new();
        for h in &self.hosts {
            if let Some((current, committed)) = h.conf_states() {
                confs.push(current);
                confs.push(committed);
            }
        }
        // In a joint configuration an election needs a quorum of both sets, so
        // meeting every quorum of either one suffices.
        let safe =
            |c: &ConfState| covered(&c.voters) || (c.is_joint() && covered(&c.voters_outgoing));
        if confs.iter().any(safe) {
            return Ok(());
        }
        for h in &self.hosts {
            let (latest, committed) = h.durable_conf_states();
            confs.push(latest);
            confs.push(committed);
        }
        if confs.iter().any(safe) {
            return Ok(());
        }
        let holders: Vec<NodeId> = self
            .hosts
            .iter()
            .filter(|h| holds(h.id))
            .map(|h| h.id)
            .collect();
        Err(Violation {
            invariant: "committed entries durable on a quorum",
            detail: format!(
                "the committed prefix up to {top} is durable only on {holders:?}, which misses a quorum of every configuration: {confs:?}"
            ),
        })
    }

    /// Asks the leader for a random membership change. Refusals (a change already in
    /// progress, a learner still behind) are part of the game.
    pub(super) fn change_membership(&mut self) -> Result<(), Fail> {
        let Some(leader) = self.latest_leader().map(|h| h.id) else {
            return Ok(());
        };
        let li = (leader - 1) as usize;
        if !self.running(li) {
            return Ok(());
        }
        let Some((conf, _)) = self.hosts[li].conf_states() else {
            return Ok(());
        };
        let strangers: Vec<NodeId> = self
            .hosts
            .iter()
            .map(|h| h.id)
            .filter(|&id| !conf.contains(id))
            .collect();
        let voters = conf.voters.clone();
        let learners = conf.learners.clone();
        let roll = self.rng.below(100);
        let pick = |rng: &mut crate::rng::SimRng, from: &[NodeId]| from[rng.index(from.len())];
        let mut promote = None;
        let ops: Vec<ConfChangeOp> = if !learners.is_empty() && roll < 40 {
            promote = Some(pick(&mut self.rng, &learners));
            Vec::new()
        } else if !strangers.is_empty() && roll < 75 {
            let x = pick(&mut self.rng, &strangers);
            match self.rng.below(4) {
                0 => {
                    let v = pick(&mut self.rng, &voters);
                    vec![ConfChangeOp::RemoveNode(v), ConfChangeOp::AddVoter(x)]
                }
                1 if strangers.len() >= 2 => {
                    let y = strangers
                        .iter()
                        .copied()
                        .find(|&s| s != x)
                        .expect("two strangers");
                    vec![ConfChangeOp::AddVoter(x), ConfChangeOp::AddVoter(y)]
                }
                2 => vec![ConfChangeOp::AddVoter(x)],
                _ => vec![ConfChangeOp::AddLearner(x)],
            }
        } else if voters.len() > 3 || (voters.len() == 3 && self.rng.chance(250)) {
            vec![ConfChangeOp::RemoveNode(pick(&mut self.rng, &voters))]
        } else if !learners.is_empty() {
            vec![ConfChangeOp::RemoveNode(pick(&mut self.rng, &learners))]
        } else {
            return Ok(());
        };
        let Some(node) = self.hosts[li].raw() else {
            return Ok(());
        };
        let (text, outcome) = match promote {
            Some(id) => (format!("promote {id}"), node.promote_learner(id)),
            None => (
                format!("{ops:?}"),
                node.propose_conf_change(ConfChange::Change(ops)),
            ),
        };
        self.conf_changes += u64::from(outcome.is_ok());
        self.trace.record(
            self.now,
            Event::ConfChange {
                node: leader,
                change: text,
                outcome: outcome.map(|i| i.0).map_err(|e| e.to_string()),
            },
        );
        self.process(li)
    }
}
