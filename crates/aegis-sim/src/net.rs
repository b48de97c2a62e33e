//! A simulated network: every message is dropped, duplicated, delayed or reordered as
//! the seed decides, and links can be cut (both ways or one way) and healed.
//!
//! Time is virtual: a message sent at tick `t` is delivered at some tick `t + d`, and
//! messages due at the same tick come out in send order. A message whose link is cut at
//! delivery time is lost, as packets in flight are when a real link fails.

use std::collections::{BTreeMap, BTreeSet};

use crate::rng::SimRng;
use crate::{Error, NodeId};

/// How hostile the network is. Probabilities are in parts per thousand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    /// Chance that a message is lost.
    pub drop_per_mille: u32,
    /// Chance that a message is delivered twice (each copy with its own delay).
    pub duplicate_per_mille: u32,
    /// Fewest ticks a message spends in flight (0 delivers at the next network poll).
    pub delay_ticks_min: u64,
    /// Most ticks a message spends in flight, before any reorder delay.
    pub delay_ticks_max: u64,
    /// Chance that a message is held back by an extra delay, overtaken by later ones.
    pub reorder_per_mille: u32,
    /// Largest extra delay of a held-back message.
    pub reorder_ticks_max: u64,
    /// Most messages in flight at once; further sends are dropped (a full buffer).
    pub in_flight_max: usize,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            drop_per_mille: 20,
            duplicate_per_mille: 10,
            delay_ticks_min: 0,
            delay_ticks_max: 2,
            reorder_per_mille: 30,
            reorder_ticks_max: 6,
            in_flight_max: 100_000,
        }
    }
}

impl NetConfig {
    /// A network that never loses, duplicates or reorders: for calm phases and tests.
    #[must_use]
    pub fn reliable() -> Self {
        Self {
            drop_per_mille: 0,
            duplicate_per_mille: 0,
            delay_ticks_min: 0,
            delay_ticks_max: 1,
            reorder_per_mille: 0,
            reorder_ticks_max: 0,
            in_flight_max: 100_000,
        }
    }

    /// Rejects probabilities above 1000 and empty or inverted ranges.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] naming the bad field.
    pub fn validate(&self) -> Result<(), Error> {
        for (name, value) in [
            ("drop_per_mille", self.drop_per_mille),
            ("duplicate_per_mille", self.duplicate_per_mille),
            ("reorder_per_mille", self.reorder_per_mille),
        ] {
            if value > 1000 {
                return Err(Error::InvalidOption {
                    name,
                    reason: format!("{value} is above 1000 per mille"),
                });
            }
        }
        if self.delay_ticks_min > self.delay_ticks_max {
            return Err(Error::InvalidOption {
                name: "delay_ticks_min",
                reason: format!(
                    "{} exceeds delay_ticks_max {}",
                    self.delay_ticks_min, self.delay_ticks_max
                ),
            });
        }
        if self.in_flight_max == 0 {
            return Err(Error::InvalidOption {
                name: "in_flight_max",
                reason: "must be at least 1".to_owned(),
            });
        }
        Ok(())
    }
}

/// One message on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<M> {
    /// The sending node.
    pub source: NodeId,
    /// The receiving node.
    pub target: NodeId,
    /// The payload.
    pub message: M,
}

/// What happened to one `send`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendOutcome {
    /// Lost at random.
    Dropped,
    /// The link is cut.
    Blocked,
    /// Too many messages in flight.
    Overflow,
    /// Queued for delivery, `copies` times (2 when duplicated).
    Queued {
        /// How many copies will arrive.
        copies: u8,
    },
}

/// The simulated network between nodes.
#[derive(Debug, Clone)]
pub struct Network<M> {
    config: NetConfig,
    /// Cut links as `(source, target)`: a one-way cut blocks only that direction.
    blocked: BTreeSet<(NodeId, NodeId)>,
    /// In-flight messages keyed by `(deliver_at, send sequence)`.
    in_flight: BTreeMap<(u64, u64), Envelope<M>>,
    sequence: u64,
}

impl<M: Clone> Network<M> {
    /// An empty network with every link up.
    ///
    /// # Errors
    /// If `config` does not validate.
    pub fn new(config: NetConfig) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            config,
            blocked: BTreeSet::new(),
            in_flight: BTreeMap::new(),
            sequence: 0,
        })
    }

    /// The current fault settings.
    #[must_use]
    pub fn config(&self) -> &NetConfig {
        &self.config
    }

    /// Replaces the fault settings (for example a calm phase at the end of a run).
    ///
    /// # Errors
    /// If `config` does not validate; the old settings stay.
    pub fn set_config(&mut self, config: NetConfig) -> Result<(), Error> {
        config.validate()?;
        self.config = config;
        Ok(())
    }

    /// Whether messages from `source` currently reach `target`.
    #[must_use]
    pub fn link_up(&self, source: NodeId, target: NodeId) -> bool {
        !self.blocked.contains(&(source, target))
    }

    /// Messages in flight.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Sends `message` at tick `now`; the seed decides its fate.
    pub fn send(
        &mut self,
        now: u64,
        source: NodeId,
        target: NodeId,
        message: M,
        rng: &mut SimRng,
    ) -> SendOutcome {
        if !self.link_up(source, target) {
            return SendOutcome::Blocked;
        }
        if rng.chance(self.config.drop_per_mille) {
            return SendOutcome::Dropped;
        }
        let copies: u8 = if rng.chance(self.config.duplicate_per_mille) {
            2
        } else {
            1
        };
        if self.in_flight.len() + usize::from(copies) > self.config.in_flight_max {
            return SendOutcome::Overflow;
        }
        for _ in 0..copies {
            let mut delay =
                rng.range_inclusive(self.config.delay_ticks_min, self.config.delay_ticks_max);
            if rng.chance(self.config.reorder_per_mille) {
                delay += rng.range_inclusive(0, self.config.reorder_ticks_max);
            }
            self.sequence += 1;
            let envelope = Envelope {
                source,
                target,
                message: message.clone(),
            };
            let previous = self
                .in_flight
                .insert((now + delay, self.sequence), envelope);
            assert!(previous.is_none(), "send sequence numbers are unique");
        }
        SendOutcome::Queued { copies }
    }

    /// Removes and returns every message due at or before `now`, in delivery order.
    /// Messages whose link is cut at this moment are lost.
    pub fn deliver_due(&mut self, now: u64) -> Vec<Envelope<M>> {
        let later = self.in_flight.split_off(&(now + 1, 0));
        let due = std::mem::replace(&mut self.in_flight, later);
        debug_assert!(self.in_flight.keys().all(|&(at, _)| at > now));
        due.into_values()
            .filter(|e| self.link_up(e.source, e.target))
            .collect()
    }

    /// Cuts the network into `groups`: nodes in different groups cannot talk, both ways.
    /// Links inside a group are restored. Nodes in no group keep their links.
    pub fn partition(&mut self, groups: &[Vec<NodeId>]) {
        for (i, a) in groups.iter().enumerate() {
            for &x in a {
                for &y in a {
                    self.blocked.remove(&(x, y));
                }
                for b in &groups[i + 1..] {
                    for &y in b {
                        assert_ne!(x, y, "node {x} is in two partition groups");
                        self.blocked.insert((x, y));
                        self.blocked.insert((y, x));
                    }
                }
            }
        }
    }

    /// Cuts only the direction `source -> target`.
    pub fn cut_one_way(&mut self, source: NodeId, target: NodeId) {
        assert_ne!(source, target, "a node always reaches itself");
        self.blocked.insert((source, target));
    }

    /// Restores only the direction `source -> target`.
    pub fn restore_one_way(&mut self, source: NodeId, target: NodeId) {
        self.blocked.remove(&(source, target));
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    /// Cut links, for traces.
    #[must_use]
    pub fn cut_links(&self) -> Vec<(NodeId, NodeId)> {
        self.blocked.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(net: &mut Network<u32>, until: u64) -> Vec<(u64, u32)> {
        let mut out = Vec::new();
        for t in 0..=until {
            out.extend(net.deliver_due(t).into_iter().map(|e| (t, e.message)));
        }
        out
    }

    #[test]
    fn reliable_network_delivers_everything_once_in_time() {
        let mut net = Network::new(NetConfig::reliable()).unwrap();
        let mut rng = SimRng::new(3);
        for i in 0..100 {
            assert_eq!(
                net.send(0, 1, 2, i, &mut rng),
                SendOutcome::Queued { copies: 1 }
            );
        }
        let got = drain(&mut net, 1);
        assert_eq!(got.len(), 100);
        let mut values: Vec<u32> = got.iter().map(|&(_, v)| v).collect();
        values.sort_unstable();
        assert_eq!(values, (0..100).collect::<Vec<_>>());
        assert_eq!(net.in_flight(), 0);
    }

    #[test]
    fn hostile_network_drops_duplicates_and_reorders() {
        let config = NetConfig {
            drop_per_mille: 200,
            duplicate_per_mille: 200,
            delay_ticks_min: 0,
            delay_ticks_max: 5,
            reorder_per_mille: 300,
            reorder_ticks_max: 10,
            in_flight_max: 10_000,
        };
        let mut net = Network::new(config).unwrap();
        let mut rng = SimRng::new(9);
        for i in 0..1000 {
            net.send(0, 1, 2, i, &mut rng);
        }
        let got: Vec<u32> = drain(&mut net, 20).into_iter().map(|(_, v)| v).collect();
        let mut sorted = got.clone();
        sorted.sort_unstable();
        let mut unique = sorted.clone();
        unique.dedup();
        assert!(unique.len() < 1000, "some messages are lost");
        assert!(unique.len() < sorted.len(), "some messages are duplicated");
        assert_ne!(got, sorted, "some messages are reordered");
    }

    #[test]
    fn partitions_block_both_ways_and_one_way_cuts_one() {
        let mut net = Network::new(NetConfig::reliable()).unwrap();
        let mut rng = SimRng::new(1);
        net.partition(&[vec![1, 2], vec![3]]);
        assert_eq!(net.send(0, 1, 3, 0, &mut rng), SendOutcome::Blocked);
        assert_eq!(net.send(0, 3, 2, 0, &mut rng), SendOutcome::Blocked);
        assert!(matches!(
            net.send(0, 1, 2, 7, &mut rng),
            SendOutcome::Queued { .. }
        ));
        net.heal();
        net.cut_one_way(1, 2);
        assert!(!net.link_up(1, 2));
        assert!(net.link_up(2, 1));
        net.restore_one_way(1, 2);
        assert!(net.link_up(1, 2));
        net.cut_one_way(1, 2);
        assert!(matches!(
            net.send(0, 2, 1, 8, &mut rng),
            SendOutcome::Queued { .. }
        ));
        // The message queued before the cut is lost in flight.
        let got: Vec<u32> = drain(&mut net, 3).into_iter().map(|(_, v)| v).collect();
        assert_eq!(got, vec![8]);
    }

    #[test]
    fn validate_rejects_nonsense() {
        let bad = NetConfig {
            drop_per_mille: 1001,
            ..NetConfig::default()
        };
        assert!(bad.validate().is_err());
        let inverted = NetConfig {
            delay_ticks_min: 5,
            delay_ticks_max: 1,
            ..NetConfig::default()
        };
        assert!(Network::<u8>::new(inverted).is_err());
    }
}
