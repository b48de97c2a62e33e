//! What a simulation run does: cluster size, workload and fault schedule.

use crate::Error;
use crate::net::NetConfig;

/// How many times [`Options::settle_ticks_max`] a cluster that keeps progressing after
/// the faults stop may take to converge in all.
pub const SETTLE_STRETCH_MAX: u64 = 10;

/// The options of one run. The seed is passed separately so that one `Options` value
/// serves a sweep of seeds.
#[derive(Debug, Clone)]
pub struct Options {
    /// Nodes in the cluster (1 to 9).
    pub nodes: u64,
    /// Concurrent clients; each has at most one operation outstanding.
    pub clients: u64,
    /// Distinct keys the clients touch (the checker splits the history per key).
    pub keys: u64,
    /// Client operations a node must accept (refused ones do not count) before the
    /// run winds down.
    pub ops: u64,
    /// A client gives up on an operation after this many ticks (its outcome is then
    /// indeterminate).
    pub client_timeout_ticks: u64,
    /// Chance per tick that an idle client invokes its next operation, per mille.
    pub invoke_per_mille: u32,
    /// Network behaviour while faults are on.
    pub net: NetConfig,
    /// Longest time a disk write takes.
    pub disk_delay_ticks_max: u64,
    /// The fault schedule.
    pub faults: FaultOptions,
    /// Ticks the cluster gets, once faults stop, to finish outstanding operations and
    /// converge, counted from the last progress it made (a node's log growing durably or
    /// its applies advancing): a run that goes this long without progress is declared
    /// stuck. A cluster that keeps progressing gets at most [`SETTLE_STRETCH_MAX`] times
    /// this in all, since tiny flow-control windows legitimately make a far-behind node
    /// catch up one entry per round trip.
    pub settle_ticks_max: u64,
    /// Search steps the linearizability checker may spend per key.
    pub checker_steps_max: u64,
    /// Draw the Raft configuration from the seed (pre-vote and check-quorum on or off,
    /// ReadIndex or lease reads, tiny or roomy flow-control windows) instead of using
    /// the defaults.
    pub vary_config: bool,
    /// Scale each fault rate by a factor drawn from the seed (off, as given, or three
    /// times as often), and the network's loss, duplication and reordering likewise, so
    /// that different seeds stress different failures.
    pub vary_faults: bool,
    /// A fixed Raft configuration (its `id` is replaced per node); overrides
    /// `vary_config`.
    pub raft_config: Option<aegis_raft::Config>,
    /// Largest chance, per mille, that a node misses a tick (its clock runs slow). Each
    /// node draws its own rate up to this. Kept at 0 for runs with lease reads, whose
    /// safety assumes bounded clock drift.
    pub tick_skip_per_mille_max: u32,
    /// Deliberately break the driver, to prove the checks catch the bug (tests only).
    pub sabotage: Option<Sabotage>,
    /// Events kept for the failure report.
    pub trace_tail: usize,
    /// Print every event as it happens (for replaying one seed).
    pub verbose: bool,
    /// Let most seeds (three in four) snapshot their state machines every few applied
    /// entries and compact the log behind a short tail, so that lagging and restarted
    /// nodes catch up by streamed snapshots.
    pub snapshots: bool,
}

/// A deliberate driver bug, used by tests that prove the simulator's checks work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sabotage {
    /// Report writes durable (and release the messages that wait for them) as soon as
    /// they are submitted, while the disk still loses them in a crash.
    AckBeforeDurable,
    /// Answer reads from the local state machine without asking Raft.
    LocalReads,
    /// Tell a client its put succeeded as soon as the leader accepts the proposal,
    /// before the entry commits.
    AckWritesAtPropose,
}

/// How often things break. Chances are per tick, per mille, drawn while clients are
/// still invoking operations; afterwards the cluster is healed and left alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultOptions {
    /// Chance that a running node crashes while a quorum stays up.
    pub crash_per_mille: u32,
    /// Chance that a running node crashes even though that leaves less than a quorum
    /// running (an outage: progress stops until enough nodes restart).
    pub outage_per_mille: u32,
    /// Chance that a crashed node restarts.
    pub restart_per_mille: u32,
    /// Chance that a running node crashes and restarts within a few ticks (a quick
    /// reboot that forgets everything volatile, such as who the leader was).
    pub bounce_per_mille: u32,
    /// Chance of a new symmetric partition into two random groups.
    pub partition_per_mille: u32,
    /// Chance of cutting one random link in one direction.
    pub one_way_per_mille: u32,
    /// Chance of cutting one random pair of nodes apart, both ways, while both still
    /// reach everyone else (a non-transitive partition).
    pub bridge_per_mille: u32,
    /// Chance, per vote or pre-vote request sent, that its recipient reboots just
    /// before it arrives: it forgets who the leader was at the worst moment.
    pub campaign_bounce_per_mille: u32,
    /// Chance of staging a stale leader: the leader is cut off from one follower, the
    /// clients pause until that follower campaigns, the voter it asks first reboots and
    /// stops hearing the old leader for a few ticks, and then the clients resume. A
    /// correct Raft elects the new leader only once the old one can no longer serve
    /// reads; a lease that outlives the voter's memory shows up as a stale read.
    pub stale_leader_per_mille: u32,
    /// Chance that a running node stops for 5 to 40 ticks (no ticks, messages pile up)
    /// and then resumes as if nothing happened. Not drawn for runs with lease reads,
    /// whose safety assumes clocks that keep running.
    pub pause_per_mille: u32,
    /// Chance that every link is restored.
    pub heal_per_mille: u32,
    /// Chance that the network flips between its hostile settings and reliable ones.
    pub net_flip_per_mille: u32,
    /// Chance that the leader is asked to hand its leadership to a random other voter
    /// (which may be cut off, down or behind).
    pub transfer_per_mille: u32,
    /// Chance that the leader is asked to change the membership: add a learner, promote
    /// a caught-up learner, remove a voter (the leader itself included) or a learner, or
    /// replace voters through a joint configuration. The group keeps at least two
    /// voters, and three most of the time.
    pub membership_per_mille: u32,
}

impl Default for FaultOptions {
    fn default() -> Self {
        Self {
            crash_per_mille: 4,
            outage_per_mille: 1,
            restart_per_mille: 40,
            bounce_per_mille: 3,
            bridge_per_mille: 2,
            campaign_bounce_per_mille: 20,
            stale_leader_per_mille: 2,
            pause_per_mille: 3,
            partition_per_mille: 4,
            one_way_per_mille: 3,
            heal_per_mille: 25,
            net_flip_per_mille: 5,
            transfer_per_mille: 4,
            membership_per_mille: 8,
        }
    }
}

impl FaultOptions {
    /// No faults at all.
    #[must_use]
    pub fn none() -> Self {
        Self {
            crash_per_mille: 0,
            outage_per_mille: 0,
            restart_per_mille: 0,
            bounce_per_mille: 0,
            bridge_per_mille: 0,
            campaign_bounce_per_mille: 0,
            stale_leader_per_mille: 0,
            pause_per_mille: 0,
            partition_per_mille: 0,
            one_way_per_mille: 0,
            heal_per_mille: 0,
            net_flip_per_mille: 0,
            transfer_per_mille: 0,
            membership_per_mille: 0,
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            nodes: 3,
            clients: 4,
            keys: 4,
            ops: 1000,
            client_timeout_ticks: 60,
            invoke_per_mille: 600,
            net: NetConfig::default(),
            disk_delay_ticks_max: 3,
            faults: FaultOptions::default(),
            settle_ticks_max: 2_000,
            checker_steps_max: 20_000_000,
            vary_config: true,
            vary_faults: true,
            raft_config: None,
            tick_skip_per_mille_max: 100,
            sabotage: None,
            trace_tail: 60,
            verbose: false,
            snapshots: true,
        }
    }
}

impl Options {
    /// Checks that the options describe a run that can happen.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] naming the first bad field.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |name: &'static str, reason: &str| {
            Err(Error::InvalidOption {
                name,
                reason: reason.to_owned(),
            })
        };
        if !(1..=9).contains(&self.nodes) {
            return bad("nodes", "must be between 1 and 9");
        }
        if self.clients == 0 {
            return bad("clients", "must be at least 1");
        }
        if self.keys == 0 {
            return bad("keys", "must be at least 1");
        }
        if self.client_timeout_ticks == 0 {
            return bad("client_timeout_ticks", "must be at least 1");
        }
        if self.invoke_per_mille == 0 || self.invoke_per_mille > 1000 {
            return bad("invoke_per_mille", "must be in 1..=1000");
        }
        let f = &self.faults;
        for (name, v) in [
            ("crash_per_mille", f.crash_per_mille),
            ("outage_per_mille", f.outage_per_mille),
            ("restart_per_mille", f.restart_per_mille),
            ("bounce_per_mille", f.bounce_per_mille),
            ("bridge_per_mille", f.bridge_per_mille),
            ("campaign_bounce_per_mille", f.campaign_bounce_per_mille),
            ("stale_leader_per_mille", f.stale_leader_per_mille),
            ("pause_per_mille", f.pause_per_mille),
            ("partition_per_mille", f.partition_per_mille),
            ("one_way_per_mille", f.one_way_per_mille),
            ("heal_per_mille", f.heal_per_mille),
            ("net_flip_per_mille", f.net_flip_per_mille),
            ("transfer_per_mille", f.transfer_per_mille),
            ("membership_per_mille", f.membership_per_mille),
        ] {
            if v > 1000 {
                return bad(name, "is above 1000 per mille");
            }
        }
        if (f.crash_per_mille > 0 || f.outage_per_mille > 0) && f.restart_per_mille == 0 {
            return bad("restart_per_mille", "crashed nodes must come back");
        }
        if self.tick_skip_per_mille_max > 500 {
            return bad(
                "tick_skip_per_mille_max",
                "above 500 per mille a node barely runs",
            );
        }
        if self.settle_ticks_max == 0 {
            return bad("settle_ticks_max", "must be at least 1");
        }
        if let Some(config) = &self.raft_config {
            config.validate().map_err(|e| Error::InvalidOption {
                name: "raft_config",
                reason: e.to_string(),
            })?;
        }
        self.net.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_nonsense_does_not() {
        assert!(Options::default().validate().is_ok());
        let mut o = Options {
            nodes: 0,
            ..Options::default()
        };
        assert!(o.validate().is_err());
        o.nodes = 3;
        o.faults.restart_per_mille = 0;
        assert!(o.validate().is_err());
    }
}
