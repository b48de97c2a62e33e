//! Delta-interval anti-entropy (Almeida, Shoker and Baquero 2018, Algorithm 2).
//!
//! Each replica numbers the deltas it produces or receives (when they inflate its
//! state) and keeps them in a bounded buffer. For each neighbour it remembers the
//! highest sequence number the neighbour acknowledged; a transmission ships the join of
//! the buffered deltas from there on, or the full state when the buffer no longer
//! reaches back that far. Deltas every neighbour acknowledged are dropped. Shipping an
//! interval that starts where the neighbour's acknowledgement stands gives causal
//! delivery over a network that drops, duplicates and reorders messages: the receiver
//! joins it into a state that already includes everything before it.
//!
//! The helper is sans-IO: it returns [`Outgoing`] messages for the caller to send and
//! takes received ones through [`AntiEntropy::handle_message`]; the caller decides when
//! to call [`AntiEntropy::poll_transmit`] (for example on a timer).

use std::collections::{BTreeMap, VecDeque};

use aegis_vclock::NodeId;
use serde::{Deserialize, Serialize};

use crate::{Crdt, Error};

/// Bounds of an [`AntiEntropy`] helper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AntiEntropyConfig {
    /// Most deltas kept in the buffer; older ones are dropped, and a neighbour that
    /// has not acknowledged them gets the full state instead. At least 1. The bound
    /// counts deltas, not bytes: a received full state that inflates this replica is
    /// buffered as one delta, so size it with the largest message in mind.
    pub delta_buffer_max: usize,
    /// Most neighbours tracked. At least 1.
    pub neighbours_max: usize,
}

impl Default for AntiEntropyConfig {
    fn default() -> Self {
        Self {
            delta_buffer_max: 1024,
            neighbours_max: 64,
        }
    }
}

impl AntiEntropyConfig {
    /// Checks every bound.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), Error> {
        if self.delta_buffer_max == 0 {
            return Err(Error::InvalidConfig {
                field: "delta_buffer_max",
                value: 0,
                reason: "must be at least 1",
            });
        }
        if self.neighbours_max == 0 {
            return Err(Error::InvalidConfig {
                field: "neighbours_max",
                value: 0,
                reason: "must be at least 1",
            });
        }
        Ok(())
    }
}

/// A message between two anti-entropy helpers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Message<C> {
    /// A delta group (or the full state) covering the sender's deltas below `seq`.
    Delta {
        /// The sender's next sequence number when it sent this.
        seq: u64,
        /// The join of the deltas shipped.
        delta: C,
    },
    /// The receiver has joined everything the sender produced below `seq`.
    Ack {
        /// The `seq` of the delta message acknowledged.
        seq: u64,
    },
}

/// A message to send to `target`.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing<C> {
    /// The neighbour to send to.
    pub target: NodeId,
    /// What to send.
    pub message: Message<C>,
}

/// One replica's state plus its delta buffer and acknowledgements.
#[derive(Debug, Clone)]
pub struct AntiEntropy<C> {
    node: NodeId,
    state: C,
    config: AntiEntropyConfig,
    /// `buffer[i]` has sequence number `first_seq + i`.
    buffer: VecDeque<C>,
    first_seq: u64,
    next_seq: u64,
    acks: BTreeMap<NodeId, u64>,
}

impl<C: Crdt> AntiEntropy<C> {
    /// A helper for replica `node` starting from `state`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if `config` does not validate.
    pub fn new(node: NodeId, state: C, config: AntiEntropyConfig) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            node,
            state,
            config,
            buffer: VecDeque::new(),
            first_seq: 0,
            next_seq: 0,
            acks: BTreeMap::new(),
        })
    }

    /// This replica's id.
    #[must_use]
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The current state.
    #[must_use]
    pub fn state(&self) -> &C {
        &self.state
    }

    /// Number of deltas buffered (at most `delta_buffer_max`).
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Starts shipping to `neighbour` (from the beginning of the buffer, or the full
    /// state). Returns false, changing nothing, if `neighbours_max` are already known.
    ///
    /// # Panics
    ///
    /// Panics if `neighbour` is this replica's own id.
    pub fn add_neighbour(&mut self, neighbour: NodeId) -> bool {
        assert_ne!(neighbour, self.node, "a replica is not its own neighbour");
        if self.acks.contains_key(&neighbour) {
            return true;
        }
        if self.acks.len() >= self.config.neighbours_max {
            return false;
        }
        self.acks.insert(neighbour, 0);
        true
    }

    /// Stops shipping to `neighbour` and forgets its acknowledgement.
    pub fn remove_neighbour(&mut self, neighbour: NodeId) {
        self.acks.remove(&neighbour);
        self.collect_garbage();
    }

    /// Applies a local mutation: `mutate` changes the state and returns its delta (as
    /// every mutator of this crate does), which is buffered for shipping.
    pub fn update<F>(&mut self, mutate: F)
    where
        F: FnOnce(&mut C) -> C,
    {
        let delta = mutate(&mut self.state);
        debug_assert!(
            {
                let mut probe = self.state.clone();
                !probe.join_changed(&delta)
            },
            "a mutator's delta must already be included in the state"
        );
        self.push(delta);
    }

    /// Handles a message from `source`; returns the acknowledgement to send back for
    /// a delta message.
    pub fn handle_message(&mut self, source: NodeId, message: Message<C>) -> Option<Outgoing<C>> {
        match message {
            Message::Delta { seq, delta } => {
                if self.state.join_changed(&delta) {
                    self.push(delta);
                }
                Some(Outgoing {
                    target: source,
                    message: Message::Ack { seq },
                })
            }
            Message::Ack { seq } => {
                if let Some(acked) = self.acks.get_mut(&source) {
                    // Acks may arrive late or twice; never move backwards, never past
                    // what was sent.
                    *acked = (*acked).max(seq.min(self.next_seq));
                    self.collect_garbage();
                }
                None
            }
        }
    }

    /// The delta messages due now: for each neighbour behind, the join of the
    /// buffered deltas it has not acknowledged, or the full state if the buffer no
    /// longer reaches back to its acknowledgement.
    pub fn poll_transmit(&mut self) -> Vec<Outgoing<C>> {
        let mut out = Vec::new();
        for (&target, &acked) in &self.acks {
            if acked >= self.next_seq {
                continue;
            }
            let delta = if acked < self.first_seq || self.buffer.is_empty() {
                self.state.clone()
            } else {
                let start = (acked - self.first_seq) as usize;
                let mut group = self.buffer[start].clone();
                for d in self.buffer.range(start + 1..) {
                    group.join(d);
                }
                group
            };
            out.push(Outgoing {
                target,
                message: Message::Delta {
                    seq: self.next_seq,
                    delta,
                },
            });
        }
        out
    }

    fn push(&mut self, delta: C) {
        self.buffer.push_back(delta);
        self.next_seq += 1;
        while self.buffer.len() > self.config.delta_buffer_max {
            self.buffer.pop_front();
            self.first_seq += 1;
        }
        self.check();
    }

    fn collect_garbage(&mut self) {
        let min_acked = self.acks.values().copied().min().unwrap_or(self.next_seq);
        while self.first_seq < min_acked && !self.buffer.is_empty() {
            self.buffer.pop_front();
            self.first_seq += 1;
        }
        self.check();
    }

    fn check(&self) {
        assert!(self.buffer.len() <= self.config.delta_buffer_max);
        assert_eq!(self.first_seq + self.buffer.len() as u64, self.next_seq);
        debug_assert!(self.acks.values().all(|&a| a <= self.next_seq));
    }
}
