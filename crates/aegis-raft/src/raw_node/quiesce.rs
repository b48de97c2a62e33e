//! Quiescence: an idle group stops ticking and heartbeating.
//!
//! A leader that has been idle for `quiesce_after_idle_ticks` consecutive ticks (every
//! follower recently heard from and holding the whole log durably, everything
//! committed, no read, proposal or transfer pending) sends each follower a last
//! [`Payload::Quiesce`] heartbeat and goes quiet. A follower whose log ends exactly at the
//! quiesce index goes quiet too; one whose log differs answers, which wakes the leader.
//!
//! A quiet node's [`RawNode::tick`] returns at once and changes nothing, so the caller may
//! stop calling it. The node wakes on a proposal, a read, a transfer, [`RawNode::wake`],
//! [`RawNode::report_unreachable`] naming its leader, and on every received message
//! except leftovers of the round that quieted it (the quiesce message itself, older
//! heartbeats and their answers, appends that carry nothing beyond the quiesce index).
//!
//! While quiet the node's clock stands still. A woken leader therefore forgets every
//! heartbeat acknowledgement that dated its lease, and gives each follower a fresh
//! check-quorum window; it heartbeats at once. A woken follower resumes its election
//! timer where it stopped, so it campaigns one election timeout later unless the leader
//! speaks.

use crate::message::{AppendResponse, Heartbeat, Message, Payload};
use crate::progress::ProgressState;
use crate::raw_node::RawNode;
use crate::storage::{Storage, StorageError};
use crate::types::{LogIndex, NodeId, Role, Term};

/// The quiesce round that quieted a node.
#[derive(Debug, Clone, Copy)]
struct QuietRound {
    term: Term,
    /// The round's heartbeat sequence number.
    seq: u64,
    /// The leader's last (and commit) index when it went quiet.
    index: LogIndex,
}

/// Quiescence bookkeeping kept by every node.
#[derive(Debug, Default)]
pub(super) struct QuiesceState {
    /// The node is quiet: ticks do nothing.
    pub(super) quiesced: bool,
    /// Leader only: consecutive ticks at which the group was idle.
    pub(super) idle_ticks: u64,
    /// While quiet: the round that quieted it.
    round: Option<QuietRound>,
}

impl<S: Storage> RawNode<S> {
    /// Whether the node is quiet: [`RawNode::tick`] does nothing, and the caller may stop
    /// calling it until the node wakes (check again after each call into the node).
    ///
    /// ```
    /// use aegis_raft::{Config, MemStorage, RawNode, Role};
    ///
    /// let config = Config { quiesce: true, ..Config::new(1) };
    /// let mut node = RawNode::new(config, MemStorage::new(&[1]), 7).unwrap();
    /// let drive = |node: &mut RawNode<MemStorage>| {
    ///     while node.has_ready() {
    ///         let ready = node.ready().unwrap();
    ///         node.storage_mut().append(&ready.entries);
    ///         if let Some(hs) = ready.hard_state {
    ///             node.storage_mut().set_hard_state(hs);
    ///         }
    ///         node.on_persisted(ready.persist_ack()).unwrap();
    ///         if let Some(last) = ready.committed_entries.last() {
    ///             node.on_applied(last.index);
    ///         }
    ///     }
    /// };
    /// // Tick only while awake: an idle group goes quiet and needs no more ticks.
    /// while !node.is_quiesced() {
    ///     node.tick().unwrap();
    ///     drive(&mut node);
    /// }
    /// assert_eq!(node.role(), Role::Leader);
    /// // A proposal wakes it.
    /// node.propose("x".into()).unwrap();
    /// assert!(!node.is_quiesced());
    /// drive(&mut node);
    /// ```
    #[must_use]
    pub fn is_quiesced(&self) -> bool {
        self.quiesce.quiesced
    }

    /// Wakes a quiet node: it ticks again, a leader heartbeats at once. A follower should
    /// be woken when its failure detector suspects the leader: it then campaigns after an
    /// election timeout unless the leader speaks. Does nothing to a node that is awake.
    pub fn wake(&mut self) {
        if !self.quiesce.quiesced {
            return;
        }
        self.quiesce.quiesced = false;
        self.quiesce.idle_ticks = 0;
        self.quiesce.round = None;
        if self.role == Role::Leader {
            // The clock stood still while quiet, so acknowledgements from before say
            // nothing about how recently a quorum heard from this leader: the lease must be
            // earned again, and check-quorum starts a fresh window.
            self.heartbeat_sent.clear();
            let now = self.now_tick;
            for pr in self.progress.values_mut() {
                pr.acked_sent_tick = None;
                pr.last_active_tick = now;
            }
            self.heartbeat_due = true;
        }
    }

    /// Tells the node that the caller's transport or failure detector finds `peer`
    /// unreachable. A follower (or candidate) whose leader is `peer` wakes, so that it
    /// campaigns if the leader does not speak within an election timeout. A leader that
    /// is awake stops streaming to `peer` and probes it instead. Unknown peers are
    /// ignored.
    pub fn report_unreachable(&mut self, peer: NodeId) {
        if self.role == Role::Leader {
            if self.quiesce.quiesced {
                return;
            }
            if let Some(pr) = self.progress.get_mut(&peer)
                && pr.state == ProgressState::Replicate
            {
                pr.become_probe();
                self.replicate_dirty = true;
            }
        } else if self.leader_id.is_none_or(|leader| leader == peer) {
            self.wake();
        }
    }

    /// Wakes the node for `msg` unless it is a leftover of the round that quieted it.
    pub(super) fn wake_on_message(&mut self, msg: &Message) {
        if self.quiesce.quiesced && !self.is_quiet_leftover(msg) {
            self.wake();
        }
    }

    fn is_quiet_leftover(&self, msg: &Message) -> bool {
        let Some(round) = self.quiesce.round else {
            return false;
        };
        if msg.term < self.term {
            // Older terms change nothing here (at most they are answered, which wakes the
            // stale sender instead).
            return true;
        }
        if msg.term > self.term || msg.term != round.term {
            return false;
        }
        let from_leader = self.leader_id == Some(msg.from);
        match &msg.payload {
            Payload::Quiesce(_) => from_leader,
            Payload::Heartbeat(hb) => from_leader && hb.seq < round.seq,
            Payload::HeartbeatResponse(resp) => self.role == Role::Leader && resp.seq < round.seq,
            Payload::Append(req) => {
                let end = req.prev_log_index.0 + req.entries.len() as u64;
                from_leader && end <= round.index.0 && req.leader_commit <= round.index
            }
            Payload::AppendResponse(AppendResponse::Accepted { match_index }) => {
                self.role == Role::Leader && *match_index <= round.index
            }
            _ => false,
        }
    }

    /// Whether the leader's group has nothing to do: everything committed and durable
    /// everywhere, every follower recently heard from, nothing pending.
    fn leader_idle(&self) -> Result<bool, StorageError> {
        assert_eq!(self.role, Role::Leader);
        let last_index = self.log.last_index()?;
        let window = self.config.election_timeout_ticks_min;
        let followers_idle = self.progress.values().all(|pr| {
            pr.state == ProgressState::Replicate
                && pr.match_index == last_index
                && pr.inflights.len() == 0
                && self.now_tick - pr.last_active_tick < window
        });
        Ok(followers_idle
            && self.transfer.pending.is_none()
            && self.reads.is_empty()
            && self.reads_waiting_commit.is_empty()
            && self.uncommitted.is_empty()
            && !self.log.has_unpersisted()
            && self.log.persisted == last_index
            && self.log.committed == last_index
            && self.committed_in_term())
    }

    /// Leader tick: counts idle ticks, and goes quiet after `quiesce_after_idle_ticks`.
    pub(super) fn maybe_quiesce(&mut self) -> Result<(), StorageError> {
        assert!(!self.quiesce.quiesced, "a quiet leader does not tick");
        if !self.config.quiesce {
            return Ok(());
        }
        if !self.leader_idle()? {
            self.quiesce.idle_ticks = 0;
            return Ok(());
        }
        self.quiesce.idle_ticks += 1;
        if self.quiesce.idle_ticks < self.config.quiesce_after_idle_ticks {
            return Ok(());
        }
        let index = self.log.last_index()?;
        assert_eq!(self.log.committed, index);
        let seq = self.heartbeat_seq;
        self.heartbeat_seq += 1;
        let peers: Vec<NodeId> = self.progress.keys().copied().collect();
        for peer in peers {
            // Each follower holds the whole log, so it may take the commit index as is.
            assert_eq!(self.progress[&peer].match_index, index);
            self.send(peer, Payload::Quiesce(Heartbeat { commit: index, seq }));
        }
        self.heartbeat_due = false;
        self.quiesce.quiesced = true;
        self.quiesce.round = Some(QuietRound {
            term: self.term,
            seq,
            index,
        });
        Ok(())
    }

    /// Follower: the leader goes quiet. Acts as a heartbeat; the follower goes quiet too
    /// if its log ends at the leader's, and otherwise answers so the leader wakes up.
    pub(super) fn handle_quiesce(
        &mut self,
        from: NodeId,
        hb: Heartbeat,
    ) -> Result<(), StorageError> {
        self.follow(from);
        let last_index = self.absorb_heartbeat(&hb)?;
        let in_step = last_index == hb.commit && self.log.committed == hb.commit;
        if self.config.quiesce && in_step {
            if !self.quiesce.quiesced {
                self.quiesce.quiesced = true;
                self.quiesce.round = Some(QuietRound {
                    term: self.term,
                    seq: hb.seq,
                    index: hb.commit,
                });
            }
        } else {
            self.answer_heartbeat(from, hb.seq, last_index);
        }
        Ok(())
    }

    pub(super) fn check_quiesce_invariants(&self, last_index: LogIndex) {
        let Some(round) = self.quiesce.round else {
            assert!(!self.quiesce.quiesced, "a quiet node remembers its round");
            return;
        };
        assert!(
            self.quiesce.quiesced,
            "an awake node forgets its quiet round"
        );
        assert!(self.config.quiesce);
        assert_eq!(round.term, self.term, "a new term wakes the node");
        match self.role {
            Role::Leader => {
                assert!(self.transfer.pending.is_none());
                assert!(self.reads.is_empty() && self.reads_waiting_commit.is_empty());
                assert!(self.uncommitted.is_empty() && !self.heartbeat_due);
                assert_eq!(self.log.committed, last_index);
                assert_eq!(
                    round.index, last_index,
                    "a quiet leader's log does not grow"
                );
                for pr in self.progress.values() {
                    assert_eq!(pr.match_index, last_index);
                }
            }
            Role::Follower => {
                assert!(
                    self.leader_id.is_some(),
                    "a quiet follower knows its leader"
                );
                assert!(self.log.committed >= round.index);
            }
            Role::PreCandidate | Role::Candidate => {
                panic!("a campaigning node is never quiet")
            }
        }
    }
}
