//! Leadership transfer (Raft thesis §3.10).
//!
//! The leader stops accepting proposals, brings the target's log up to its own last
//! index, then sends it [`Payload::TimeoutNow`]. The target campaigns at once, skipping
//! pre-vote, with [`Payload::TransferVote`] requests that voters grant even while
//! check-quorum would have them refuse to help depose a live leader. A transfer that has
//! not completed within `election_timeout_ticks_min` ticks is abandoned and the leader
//! accepts proposals again.
//!
//! # Leases
//!
//! A lease-holding leader relies on its followers refusing votes while they still hear
//! from it. A transfer vote overrides exactly that refusal, so the moment the leader sends
//! `TimeoutNow` it gives its lease away: from then on, and for the rest of its term, it
//! confirms every read with a ReadIndex round. This holds even after the transfer is
//! abandoned: the `TimeoutNow` may still be in the network and start an election at any
//! later time. A ReadIndex round stays safe whatever happens, since followers that moved
//! to a newer term no longer acknowledge the old leader's heartbeats.

use crate::error::TransferError;
use crate::message::{Payload, VoteRequest};
use crate::raw_node::RawNode;
use crate::storage::{Storage, StorageError};
use crate::types::{LogIndex, NodeId, Role, Term};

/// The leader's side of a transfer in progress.
#[derive(Debug, Clone, Copy)]
pub(super) struct PendingTransfer {
    /// The node that should become leader.
    target: NodeId,
    /// Leader ticks since the transfer started.
    elapsed_ticks: u64,
    /// The leader's last index when the transfer started; proposals are refused
    /// meanwhile, so the log does not grow.
    last_index: LogIndex,
    /// How many times `TimeoutNow` was sent.
    timeout_now_sent: u64,
}

/// Transfer bookkeeping kept by every node.
#[derive(Debug, Default)]
pub(super) struct TransferState {
    /// Leader only: the transfer in progress. Cleared on every role change.
    pub(super) pending: Option<PendingTransfer>,
    /// The term in which this node, as leader, sent `TimeoutNow`: it serves no lease read
    /// in that term any more (see the module documentation).
    lease_surrendered: Option<Term>,
}

impl<S: Storage> RawNode<S> {
    /// Starts handing the leadership to `target`, a voter. Until the transfer completes
    /// or is abandoned (after `election_timeout_ticks_min` ticks), [`RawNode::propose`]
    /// refuses with [`ProposeError::TransferInProgress`](crate::ProposeError::TransferInProgress).
    /// The leader first brings the target's log up to date, then tells it to campaign
    /// with [`Payload::TimeoutNow`]; this node steps down once the target wins.
    ///
    /// From the moment `TimeoutNow` is sent, this leader serves no more lease reads in
    /// its term (they fall back to ReadIndex rounds), since a transfer vote overrides the
    /// followers' promise not to elect anyone else.
    pub fn transfer_leadership(&mut self, target: NodeId) -> Result<(), TransferError> {
        if self.role != Role::Leader {
            return Err(TransferError::NotLeader {
                leader_hint: self.leader_id,
            });
        }
        if target == self.id {
            return Err(TransferError::TargetIsSelf { target });
        }
        let voter = self.membership.current().voters.contains(&target);
        if !voter || !self.progress.contains_key(&target) {
            return Err(TransferError::NotAVoter { target });
        }
        if let Some(pending) = &self.transfer.pending {
            return Err(TransferError::InProgress {
                target: pending.target,
            });
        }
        // The leader appends the entry that leaves a joint configuration by itself, and the
        // log must not grow while the target catches up.
        if self.conf_change_pending() {
            return Err(TransferError::ConfChangeInProgress);
        }
        let last_index = self.log.last_index()?;
        self.wake();
        self.transfer.pending = Some(PendingTransfer {
            target,
            elapsed_ticks: 0,
            last_index,
            timeout_now_sent: 0,
        });
        self.replicate_dirty = true;
        self.send_timeout_now_if_caught_up()?;
        Ok(())
    }

    /// The node a leadership transfer in progress hands the leadership to.
    #[must_use]
    pub fn transfer_target(&self) -> Option<NodeId> {
        self.transfer.pending.map(|p| p.target)
    }

    /// Whether this node gave its lease away in the current term.
    pub(super) fn lease_surrendered(&self) -> bool {
        self.transfer.lease_surrendered == Some(self.term)
    }

    /// Leader tick: abandons a transfer that took an election timeout, and repeats
    /// `TimeoutNow` with each heartbeat round in case it was lost.
    pub(super) fn tick_transfer(&mut self) -> Result<(), StorageError> {
        assert_eq!(self.role, Role::Leader);
        let Some(pending) = &mut self.transfer.pending else {
            return Ok(());
        };
        pending.elapsed_ticks += 1;
        if pending.elapsed_ticks >= self.config.election_timeout_ticks_min {
            // Abandoned: proposals are accepted again. A `TimeoutNow` still in flight may
            // yet start an election, which is why the lease stays given away.
            self.transfer.pending = None;
            return Ok(());
        }
        if self.heartbeat_elapsed == 0 {
            self.send_timeout_now_if_caught_up()?;
        }
        Ok(())
    }

    /// After a message: if the target just caught up, tell it to campaign.
    pub(super) fn after_step_transfer(&mut self) -> Result<(), StorageError> {
        if self
            .transfer
            .pending
            .is_some_and(|p| p.timeout_now_sent == 0)
        {
            self.send_timeout_now_if_caught_up()?;
        }
        Ok(())
    }

    fn send_timeout_now_if_caught_up(&mut self) -> Result<(), StorageError> {
        let Some(pending) = self.transfer.pending else {
            return Ok(());
        };
        assert_eq!(self.role, Role::Leader);
        let last_index = self.log.last_index()?;
        let pr = &self.progress[&pending.target];
        if pr.match_index < last_index {
            return Ok(());
        }
        assert_eq!(pr.match_index, last_index);
        // From here on a transfer vote may override the followers' lease promise.
        self.transfer.lease_surrendered = Some(self.term);
        self.transfer.pending = Some(PendingTransfer {
            timeout_now_sent: pending.timeout_now_sent + 1,
            ..pending
        });
        self.send(pending.target, Payload::TimeoutNow);
        Ok(())
    }

    /// Follower: the leader of this term says to campaign now.
    pub(super) fn handle_timeout_now(&mut self) -> Result<(), StorageError> {
        // A follower installing a snapshot does not know its log yet: it cannot campaign.
        if self.role == Role::Leader || !self.promotable() || self.snapshot_installing() {
            return Ok(());
        }
        self.campaign_transfer()
    }

    /// Campaigns in the next term without a pre-vote, asking for transfer votes.
    fn campaign_transfer(&mut self) -> Result<(), StorageError> {
        assert!(self.promotable());
        let old_term = self.term;
        self.term = self.term.next();
        self.vote = Some(self.id);
        self.reset_to(Role::Candidate);
        assert_eq!(self.term, old_term.next());
        let req = VoteRequest {
            last_log_index: self.log.last_index()?,
            last_log_term: self.log.last_term()?,
        };
        // Every voter of the configuration in effect, both sets during a joint phase.
        let conf = self.membership.current();
        let voters: Vec<NodeId> = conf
            .members()
            .into_iter()
            .filter(|&v| v != self.id && conf.is_voter(v))
            .collect();
        for voter in voters {
            self.send(voter, Payload::TransferVote(req));
        }
        // The candidate's own vote counts once its hard state is durable (`on_persisted`).
        Ok(())
    }

    pub(super) fn check_transfer_invariants(&self, last_index: LogIndex) {
        let Some(pending) = &self.transfer.pending else {
            return;
        };
        assert_eq!(self.role, Role::Leader, "only a leader transfers");
        assert_ne!(pending.target, self.id);
        assert!(self.progress.contains_key(&pending.target));
        assert!(pending.elapsed_ticks < self.config.election_timeout_ticks_min);
        assert_eq!(
            last_index, pending.last_index,
            "the log grew during a leadership transfer"
        );
        assert!(
            pending.timeout_now_sent == 0 || self.lease_surrendered(),
            "TimeoutNow sent while keeping the lease"
        );
    }
}
