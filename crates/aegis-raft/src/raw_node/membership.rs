//! Membership changes: joint consensus (thesis §4.3), learners, promotion, removal of the
//! leader itself, and the bookkeeping that makes a configuration take effect the moment
//! its entry is in the log and roll back when that entry is truncated away.

use super::RawNode;
use crate::conf_change::{ConfChange, ConfChangeOp, ConfChangeRecord};
use crate::error::ConfChangeError;
use crate::log::RaftLog;
use crate::message::{AppendEntries, Message, Payload};
use crate::progress::Progress;
use crate::storage::{Storage, StorageError};
use crate::types::{ConfState, Entry, EntryKind, LogIndex, NodeId, Role, Term};

/// Bytes read per batch while scanning the log for configuration entries at start.
const SCAN_BYTES_MAX: u64 = 1 << 20;

/// A configuration entry present in the log.
#[derive(Debug)]
struct ConfRecord {
    index: LogIndex,
    term: Term,
    change: ConfChange,
    conf: ConfState,
}

/// The configuration history of a node: the one from storage (as of the snapshot the
/// log starts after) and one record per configuration entry in the log after it. The
/// configuration in effect is the last one, committed or not.
#[derive(Debug)]
pub(super) struct Membership {
    base: ConfState,
    base_index: LogIndex,
    records: Vec<ConfRecord>,
}

impl Membership {
    /// Rebuilds the history from `base` (the membership as of the log's first index
    /// minus one) and every configuration entry in `log`. Reads the whole log once.
    pub(super) fn load<S: Storage>(
        log: &RaftLog<S>,
        mut base: ConfState,
    ) -> Result<Membership, StorageError> {
        base.normalize();
        let first = log.storage.first_index()?;
        let last = log.last_index()?;
        let mut membership = Membership {
            base,
            base_index: first.prev(),
            records: Vec::new(),
        };
        let mut next = first;
        while next <= last {
            let batch = log.entries(next, last.next(), SCAN_BYTES_MAX)?;
            let Some(end) = batch.last().map(|e| e.index) else {
                break;
            };
            membership.push_new(&batch);
            next = end.next();
        }
        Ok(membership)
    }

    /// The configuration in effect.
    pub(super) fn current(&self) -> &ConfState {
        self.records.last().map_or(&self.base, |r| &r.conf)
    }

    /// The configuration of the last configuration entry at or before `index` (the base
    /// when there is none).
    pub(super) fn as_of(&self, index: LogIndex) -> &ConfState {
        self.records
            .iter()
            .rev()
            .find(|r| r.index <= index)
            .map_or(&self.base, |r| &r.conf)
    }

    /// The index of the last configuration entry, or the base's index.
    fn last_index(&self) -> LogIndex {
        self.records.last().map_or(self.base_index, |r| r.index)
    }

    /// Records the configuration entries among `entries` that are not recorded yet.
    /// An entry whose data does not decode changes nothing, on every node alike.
    fn push_new(&mut self, entries: &[Entry]) {
        for entry in entries {
            if entry.kind != EntryKind::ConfChange || entry.index <= self.last_index() {
                continue;
            }
            if let Ok(record) = ConfChangeRecord::decode(&entry.data) {
                self.records.push(ConfRecord {
                    index: entry.index,
                    term: entry.term,
                    change: record.change,
                    conf: record.conf_state,
                });
            }
        }
    }
}

impl<S: Storage> RawNode<S> {
    /// The configuration in effect on this node: that of the last configuration entry in
    /// its log, committed or not (or the one from storage when there is none).
    #[must_use]
    pub fn conf_state(&self) -> &ConfState {
        self.membership.current()
    }

    /// The configuration of the last configuration entry this node knows committed (or
    /// the one from storage). This is what an application persists alongside its
    /// snapshots; committed `ConfChange` entries also reach it in
    /// [`Ready::committed_entries`](crate::Ready::committed_entries).
    #[must_use]
    pub fn committed_conf_state(&self) -> &ConfState {
        self.membership.as_of(self.log.committed)
    }

    /// How many entries `peer`'s log is known to lag this leader's (`None` when this
    /// node is not the leader or `peer` is not a member it replicates to).
    pub fn peer_lag(&self, peer: NodeId) -> Result<Option<u64>, StorageError> {
        if self.role != Role::Leader {
            return Ok(None);
        }
        let last = self.log.last_index()?;
        Ok(self
            .progress
            .get(&peer)
            .map(|pr| last.0.saturating_sub(pr.match_index.0)))
    }

    /// Proposes a membership change. The new configuration takes effect as soon as its
    /// entry is appended (here at once, on the others when they receive it). A change of
    /// more than one voter enters the joint configuration; the leader then leaves it by
    /// itself once it commits. Returns the index of the entry.
    ///
    /// # Errors
    /// Not the leader; no entry of this term committed yet; another change not yet
    /// committed, or a joint phase not yet left; a change that does not fit the
    /// configuration (see [`ConfChange::apply_to`]).
    ///
    /// # Example
    ///
    /// A one-node group grows to three voters through a joint configuration:
    ///
    /// ```
    /// use aegis_raft::{ConfChange, ConfChangeError, ConfChangeOp, Config, MemStorage, RawNode, Role};
    ///
    /// let mut node = RawNode::new(Config::new(1), MemStorage::new(&[1]), 7).unwrap();
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
    /// while node.role() != Role::Leader {
    ///     node.tick().unwrap();
    ///     drive(&mut node);
    /// }
    /// let change = ConfChange::Change(vec![ConfChangeOp::AddVoter(2), ConfChangeOp::AddVoter(3)]);
    /// node.propose_conf_change(change).unwrap();
    /// // C_old,new is in effect at once: {1} and {1, 2, 3} must both agree from now on.
    /// assert_eq!(node.conf_state().voters, [1, 2, 3]);
    /// assert_eq!(node.conf_state().voters_outgoing, [1]);
    /// // One change at a time.
    /// assert!(matches!(node.add_learner(4), Err(ConfChangeError::InProgress { .. })));
    /// drive(&mut node);
    /// // Node 1 alone is no majority of {1, 2, 3}: nothing commits until 2 or 3 answers.
    /// assert!(node.conf_state().is_joint());
    /// ```
    pub fn propose_conf_change(&mut self, change: ConfChange) -> Result<LogIndex, ConfChangeError> {
        if self.role != Role::Leader {
            return Err(ConfChangeError::NotLeader {
                leader_hint: self.leader_id,
            });
        }
        // A new leader does not know whether the configuration entries in its log are
        // committed until an entry of its own term is (the single-server change bug).
        if !self.committed_in_term() {
            return Err(ConfChangeError::NoCommitInTerm);
        }
        // The log must not grow while a transfer target catches up.
        if let Some(target) = self.transfer_target() {
            return Err(ConfChangeError::TransferInProgress { target });
        }
        let pending = self.membership.last_index();
        if pending > self.log.committed {
            return Err(ConfChangeError::InProgress { index: pending });
        }
        let conf_state = change.apply_to(self.membership.current())?;
        Ok(self.append_conf_entry(change, conf_state)?)
    }

    /// Adds `id` as a learner: it receives the log but does not vote.
    ///
    /// # Errors
    /// As [`RawNode::propose_conf_change`].
    pub fn add_learner(&mut self, id: NodeId) -> Result<LogIndex, ConfChangeError> {
        self.propose_conf_change(ConfChange::Change(vec![ConfChangeOp::AddLearner(id)]))
    }

    /// Adds `id` as a voter at once (a single-server change). Adding it as a learner and
    /// promoting it once caught up keeps the group available meanwhile.
    ///
    /// # Errors
    /// As [`RawNode::propose_conf_change`].
    pub fn add_voter(&mut self, id: NodeId) -> Result<LogIndex, ConfChangeError> {
        self.propose_conf_change(ConfChange::Change(vec![ConfChangeOp::AddVoter(id)]))
    }

    /// Removes the voter or learner `id`. Removing the leader itself is allowed: it keeps
    /// leading, without counting itself, until the change commits, and then steps down.
    ///
    /// # Errors
    /// As [`RawNode::propose_conf_change`].
    pub fn remove_node(&mut self, id: NodeId) -> Result<LogIndex, ConfChangeError> {
        self.propose_conf_change(ConfChange::Change(vec![ConfChangeOp::RemoveNode(id)]))
    }

    /// Promotes the learner `id` to voter, provided its log is within
    /// `learner_catchup_entries_max` entries of the leader's.
    ///
    /// # Errors
    /// [`ConfChangeError::NotLearner`], [`ConfChangeError::LearnerBehind`], or as
    /// [`RawNode::propose_conf_change`].
    pub fn promote_learner(&mut self, id: NodeId) -> Result<LogIndex, ConfChangeError> {
        if self.role != Role::Leader {
            return Err(ConfChangeError::NotLeader {
                leader_hint: self.leader_id,
            });
        }
        if !self.membership.current().is_learner(id) {
            return Err(ConfChangeError::NotLearner { id });
        }
        let last_index = self.log.last_index()?;
        let match_index = self
            .progress
            .get(&id)
            .map_or(LogIndex(0), |pr| pr.match_index);
        let max = self.config.learner_catchup_entries_max;
        if last_index.0 - match_index.0 > max {
            return Err(ConfChangeError::LearnerBehind {
                id,
                match_index,
                last_index,
                max,
            });
        }
        self.propose_conf_change(ConfChange::Change(vec![ConfChangeOp::PromoteLearner(id)]))
    }

    fn append_conf_entry(
        &mut self,
        change: ConfChange,
        conf_state: ConfState,
    ) -> Result<LogIndex, StorageError> {
        assert!(
            self.membership.last_index() <= self.log.committed,
            "at most one uncommitted configuration entry"
        );
        self.wake();
        let record = ConfChangeRecord { change, conf_state };
        let entry = Entry {
            term: self.term,
            index: LogIndex(0),
            kind: EntryKind::ConfChange,
            data: record.encode(),
        };
        let index = self.append_as_leader(entry)?;
        debug_assert_eq!(self.membership.last_index(), index);
        debug_assert_eq!(self.membership.current(), &record.conf_state);
        Ok(index)
    }

    /// Called after entries were appended to the log (by this leader, or from a leader's
    /// append): forgets configurations whose entries were truncated away, then adopts
    /// the configurations among `entries`.
    pub(super) fn on_conf_entries_appended(
        &mut self,
        entries: &[Entry],
    ) -> Result<(), StorageError> {
        let signature =
            |m: &Membership| (m.records.len(), m.records.last().map(|r| (r.index, r.term)));
        let before = signature(&self.membership);
        let first_index = self.log.storage.first_index()?;
        while let Some(record) = self.membership.records.last() {
            // A compacted entry was applied, so committed: it is never truncated.
            if record.index < first_index
                || self.log.term_if_present(record.index)? == Some(record.term)
            {
                break;
            }
            assert!(
                record.index > self.log.committed,
                "committed configuration entry {} truncated",
                record.index
            );
            self.membership.records.pop();
        }
        self.membership.push_new(entries);
        if signature(&self.membership) != before && self.role == Role::Leader {
            self.sync_progress()?;
        }
        Ok(())
    }

    /// The nodes a leader replicates to: every member of the configuration in effect and
    /// of the last committed one (so that a removed node still receives the entry that
    /// removes it, and stops campaigning), except this node.
    fn replication_targets(&self) -> Vec<NodeId> {
        let mut targets = self.membership.current().members();
        targets.extend(self.committed_conf_state().members());
        targets.sort_unstable();
        targets.dedup();
        targets.retain(|&id| id != self.id);
        targets
    }

    /// Leader: one progress per replication target, new members probed from the end of
    /// the log, departed ones forgotten.
    pub(super) fn sync_progress(&mut self) -> Result<(), StorageError> {
        assert_eq!(self.role, Role::Leader);
        let members = self.replication_targets();
        self.progress.retain(|id, _| members.contains(id));
        let next = self.log.last_index()?.next();
        for id in members {
            if !self.progress.contains_key(&id) {
                self.progress.insert(id, Progress::new(next, self.now_tick));
                self.replicate_dirty = true;
            }
        }
        Ok(())
    }

    /// Leader, after its commit index advanced: leave a committed joint configuration,
    /// and step down once a committed configuration no longer has this node as a voter.
    pub(super) fn after_leader_commit(&mut self) -> Result<(), StorageError> {
        if self.role != Role::Leader || self.membership.last_index() > self.log.committed {
            return Ok(());
        }
        let targets = self.replication_targets();
        if self.progress.len() != targets.len() {
            // The removal of some node just committed: tell it so (best effort), so that
            // it stops campaigning, then stop replicating to it.
            let removed: Vec<NodeId> = self
                .progress
                .keys()
                .filter(|id| !targets.contains(id))
                .copied()
                .collect();
            // An empty append anchored at the committed configuration entry: a node
            // holding that entry commits up to it; any other ignores the message.
            let prev_log_index = self.membership.last_index();
            let prev_log_term = self.log.term(prev_log_index)?;
            for id in removed {
                let req = AppendEntries {
                    prev_log_index,
                    prev_log_term,
                    entries: Vec::new(),
                    leader_commit: self.log.committed,
                };
                self.send(id, Payload::Append(req));
            }
            self.sync_progress()?;
        }
        if self.membership.current().is_joint() {
            let next = ConfChange::LeaveJoint
                .apply_to(self.membership.current())
                .expect("a joint configuration can always be left");
            self.append_conf_entry(ConfChange::LeaveJoint, next)?;
            return Ok(());
        }
        if !self.membership.current().is_voter(self.id) {
            // Tell the others the new commit index before going quiet.
            let peers: Vec<NodeId> = self.progress.keys().copied().collect();
            for peer in peers {
                self.send_appends(peer)?;
            }
            let term = self.term;
            self.become_follower(term, None);
        }
        Ok(())
    }

    /// Whether a message's sender may talk to this node: any member of the current
    /// configuration or node this leader replicates to, and anyone acting as a leader
    /// (appends, heartbeats, snapshots) or asking for a vote. This node's configuration
    /// may be behind the sender's (a joining node knows no member at all), so leaders and
    /// candidates of a newer configuration must be heard (thesis §4.2.3); a removed node
    /// that missed its removal cannot win an election (its log lacks the committed
    /// change), and members that hear from their leader ignore its vote requests, so it
    /// cannot raise their terms either. Answers from strangers are refused.
    pub(super) fn accepts_sender(&self, msg: &Message) -> bool {
        self.membership.current().contains(msg.from)
            || self.progress.contains_key(&msg.from)
            || matches!(
                msg.payload,
                Payload::Append(_)
                    | Payload::Heartbeat(_)
                    | Payload::Quiesce(_)
                    | Payload::Snapshot(_)
                    | Payload::PreVote(_)
                    | Payload::Vote(_)
                    | Payload::TransferVote(_)
            )
    }

    /// Whether this node may campaign: it votes in its latest configuration, or in the
    /// last one it knows committed. The second case is a node that a pending change
    /// removes: until that change commits, its vote may still be needed, and its log
    /// may be the only one that can win an election (thesis §4.2.2). It never counts its
    /// own vote unless its latest configuration has it as a voter.
    pub(super) fn may_campaign(&self) -> bool {
        self.membership.current().is_voter(self.id) || self.committed_conf_state().is_voter(self.id)
    }

    /// Whether a membership change is under way: a configuration entry not committed yet,
    /// or a joint configuration in effect.
    pub(super) fn conf_change_pending(&self) -> bool {
        self.membership.last_index() > self.log.committed || self.membership.current().is_joint()
    }

    /// Whether this node is the only voter (reads need no confirmation round).
    pub(super) fn only_voter_is_self(&self) -> bool {
        let conf = self.membership.current();
        !conf.is_joint() && conf.voters == [self.id]
    }

    pub(super) fn check_membership(&self) -> Result<(), StorageError> {
        let conf = self.membership.current();
        if !cfg!(debug_assertions) {
            return Ok(());
        }
        if matches!(self.role, Role::PreCandidate | Role::Candidate) {
            assert!(self.may_campaign(), "a non-voter campaigns");
        }
        if self.role == Role::Leader {
            assert!(
                conf.is_voter(self.id) || self.membership.last_index() > self.log.committed,
                "a leader outside a committed configuration stays leader"
            );
            let targets = self.replication_targets();
            for (id, pr) in &self.progress {
                assert!(targets.contains(id), "progress for non-member {id}");
                assert!(pr.match_index <= self.log.last_index()?);
            }
            assert!(
                conf.members()
                    .iter()
                    .all(|m| *m == self.id || self.progress.contains_key(m)),
                "a progress for every other member"
            );
            if self.committed_in_term() {
                let uncommitted = self
                    .membership
                    .records
                    .iter()
                    .filter(|r| r.index > self.log.committed)
                    .count();
                assert!(uncommitted <= 1, "{uncommitted} uncommitted configurations");
            }
        }
        let last = self.log.last_index()?;
        let mut prev: Option<&ConfRecord> = None;
        for record in &self.membership.records {
            let c = &record.conf;
            assert!(record.index > self.membership.base_index && record.index <= last);
            assert!(!c.voters.is_empty(), "configuration without voters");
            assert!(c.learners.iter().all(|&l| !c.is_voter(l)));
            assert!(c.voters.windows(2).all(|w| w[0] < w[1]));
            if let Some(p) = prev {
                assert!(p.index < record.index);
                match &record.change {
                    ConfChange::LeaveJoint => {
                        assert!(p.conf.is_joint() && !c.is_joint());
                        assert_eq!(p.conf.voters, c.voters, "leaving keeps the new voters");
                    }
                    ConfChange::Change(_) => {
                        assert!(!p.conf.is_joint(), "a change inside a joint phase");
                        assert!(!c.is_joint() || c.voters_outgoing == p.conf.voters);
                    }
                }
            }
            prev = Some(record);
        }
        if let Some(record) = self.membership.records.last() {
            match self.log.term_if_present(record.index)? {
                Some(term) => assert_eq!(term, record.term),
                None => assert!(
                    record.index < self.log.storage.first_index()?,
                    "configuration entry {} missing from the log",
                    record.index
                ),
            }
        }
        Ok(())
    }
}
