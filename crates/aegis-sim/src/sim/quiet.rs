//! Leadership transfers and quiescence in the random schedules.
//!
//! Transfers are a fault like any other: the leader is asked to hand over to a random
//! voter, which may be cut off, crashed or behind. Quiescence is drawn with the Raft
//! configuration; quiet hosts are not ticked, and each node's failure detector wakes it
//! when the leader it follows is down, stopped or unreachable in either direction, after
//! a random detection delay, as a transport noticing a dead peer would.

use crate::NodeId;
use crate::event::Event;
use crate::options::FaultOptions;
use crate::sim::World;

/// Chance per tick that a node's failure detector notices a failure that is there.
const DETECT_PER_MILLE: u32 = 250;

/// Chance that a transfer is staged as a race against the old leader's lease.
const RACE_PER_MILLE: u32 = 400;

/// A transfer staged to race the old leader: it hears nobody for a while, so it learns
/// of the new term late, while some clients turn to the target as soon as it can lead.
/// A leader that kept serving lease reads after handing over would answer them with
/// values the new leader already overwrote.
#[derive(Debug, Clone)]
pub(super) struct TransferRace {
    leader: NodeId,
    /// The links into the old leader that were cut.
    cut_from: Vec<NodeId>,
    until: u64,
}

impl World {
    /// Maybe asks the current leader to transfer its leadership to a random voter.
    pub(super) fn maybe_transfer(&mut self, f: &FaultOptions) {
        self.end_transfer_race();
        if self.hosts.len() < 2 || !self.rng.chance(f.transfer_per_mille) {
            return;
        }
        let leader = self.latest_leader().map(|h| h.id);
        let Some(leader) = leader else { return };
        let li = (leader - 1) as usize;
        if !self.running(li) {
            return;
        }
        let mut target = 1 + self.rng.below(self.hosts.len() as u64 - 1);
        if target >= leader {
            target += 1;
        }
        let started = self.hosts[li].transfer_leadership(target);
        // Membership changes may have made the target a learner or removed it.
        assert!(
            started.is_ok()
                || started
                    .as_ref()
                    .is_err_and(|e| e.contains("in progress") || e.contains("not a voter")),
            "a leader refused a transfer to node {target}: {started:?}"
        );
        if started.is_ok() {
            self.transfers += 1;
            if self.transfer_race.is_none() && self.rng.chance(RACE_PER_MILLE) {
                self.stage_transfer_race(leader, target);
            }
        }
        self.trace.record(
            self.now,
            Event::Transfer {
                leader,
                target,
                started: started.is_ok(),
            },
        );
    }

    fn stage_transfer_race(&mut self, leader: NodeId, target: NodeId) {
        let cut_from: Vec<NodeId> = self
            .hosts
            .iter()
            .map(|h| h.id)
            .filter(|&id| id != leader && self.net.link_up(id, leader))
            .collect();
        for &source in &cut_from {
            self.net.cut_one_way(source, leader);
        }
        let until = self.now + self.rng.range_inclusive(10, 40);
        for c in &mut self.clients {
            if c.pending.is_none() && self.rng.chance(500) {
                c.target = target;
                c.idle_until = self.now + self.rng.range_inclusive(1, 8);
            }
        }
        self.partitions += 1;
        self.trace.record(
            self.now,
            Event::Partition {
                groups: vec![vec![leader]],
            },
        );
        self.transfer_race = Some(TransferRace {
            leader,
            cut_from,
            until,
        });
    }

    fn end_transfer_race(&mut self) {
        let Some(race) = self.transfer_race.take_if(|r| r.until <= self.now) else {
            return;
        };
        for &source in &race.cut_from {
            self.net.restore_one_way(source, race.leader);
        }
    }

    /// Each quiet node's failure detector: wakes it when its leader is down, stopped or
    /// cut off from it.
    pub(super) fn detect_failures(&mut self) {
        for i in 0..self.hosts.len() {
            if !self.running(i) || !self.hosts[i].is_quiesced() {
                continue;
            }
            let me = self.hosts[i].id;
            let leader = self.hosts[i].leader_id();
            if leader == Some(me) {
                continue;
            }
            let failed = leader.is_none_or(|l| {
                let li = (l - 1) as usize;
                !self.running(li) || !self.net.link_up(l, me) || !self.net.link_up(me, l)
            });
            if failed && self.rng.chance(DETECT_PER_MILLE) {
                self.hosts[i].suspect_leader(leader);
                self.trace
                    .record(self.now, Event::SuspectLeader { node: me, leader });
            }
        }
    }

    /// Whether node `i` is quiet, counting the tick it skips.
    pub(super) fn skips_tick_quietly(&mut self, i: usize) -> bool {
        let quiet = self.hosts[i].is_quiesced();
        self.quiet_ticks += u64::from(quiet);
        quiet
    }
}
