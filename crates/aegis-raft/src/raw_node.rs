//! The Raft state machine: [`RawNode`].

mod membership;
mod quiesce;
mod snapshot;
mod transfer;

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use crate::config::{Config, ReadOnlyOption};
use crate::error::{InitError, ProposeError, ReadIndexError, StepError};
use crate::log::RaftLog;
use crate::message::{
    AppendEntries, AppendResponse, Heartbeat, HeartbeatResponse, Message, Payload,
    ReadIndexRequest, ReadIndexResponse, VoteRequest, VoteResponse,
};
use crate::progress::{Progress, ProgressState};
use crate::quorum::{VoteResult, joint_value, vote_result};
use crate::ready::{PersistAck, ReadState, Ready};
use crate::rng::Rng;
use crate::storage::{Storage, StorageError};
use crate::types::{Entry, EntryKind, HardState, LogIndex, NodeId, Role, Term};

/// A read waiting for a quorum to confirm the leadership it was registered under.
#[derive(Debug)]
struct PendingRead {
    context: Bytes,
    /// Who asked: this node, or the follower that forwarded it.
    origin: NodeId,
    /// The commit index when the read arrived.
    index: LogIndex,
    /// The first heartbeat round sent after the read arrived.
    seq: u64,
}

/// A follower's view of the leader, as reported by [`RawNode::status`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerStatus {
    /// The follower.
    pub id: NodeId,
    /// The highest index known to match the leader's log and be durable there.
    pub match_index: LogIndex,
    /// The next index the leader will send.
    pub next_index: LogIndex,
    /// How the leader sends to it.
    pub state: ProgressState,
    /// Append messages in flight.
    pub inflight_msgs: usize,
    /// Entry bytes in flight.
    pub inflight_bytes: u64,
}

/// A snapshot of a node's state, for metrics and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// This node.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its current term.
    pub term: Term,
    /// Whom it voted for in `term`.
    pub vote: Option<NodeId>,
    /// The leader it knows of.
    pub leader_id: Option<NodeId>,
    /// The commit index.
    pub commit: LogIndex,
    /// The last index reported applied.
    pub applied: LogIndex,
    /// The last index reported durable.
    pub persisted: LogIndex,
    /// The last index in the log.
    pub last_index: LogIndex,
    /// Per-follower replication state (leader only; empty otherwise).
    pub peers: Vec<PeerStatus>,
    /// The node a leadership transfer in progress hands the leadership to (leader only).
    pub transfer_target: Option<NodeId>,
    /// Whether the node is quiet (see [`RawNode::is_quiesced`]).
    pub quiesced: bool,
}

/// One Raft node, driven by its caller: see the crate documentation for the loop.
pub struct RawNode<S: Storage> {
    id: NodeId,
    config: Config,
    log: RaftLog<S>,
    /// The configuration from storage and every configuration entry in the log.
    membership: membership::Membership,
    term: Term,
    vote: Option<NodeId>,
    role: Role,
    leader_id: Option<NodeId>,
    rng: Rng,
    now_tick: u64,
    election_elapsed: u64,
    election_timeout: u64,
    heartbeat_elapsed: u64,
    /// Votes (or pre-votes) received in the current campaign.
    votes: BTreeMap<NodeId, bool>,
    /// Leader only: one entry per other member (voters of both sets and learners).
    progress: BTreeMap<NodeId, Progress>,
    leader_since_tick: u64,
    /// Leader only: (index, size) of entries proposed in this term and not yet committed.
    uncommitted: VecDeque<(LogIndex, u64)>,
    uncommitted_bytes: u64,
    /// Leader only: reads that arrived before an entry of this term committed.
    reads_waiting_commit: Vec<(Bytes, NodeId)>,
    /// Leader only: reads waiting for heartbeat confirmation, in `seq` order.
    reads: VecDeque<PendingRead>,
    /// The seq of the next heartbeat round.
    heartbeat_seq: u64,
    /// (first seq sent in a tick, that tick), to date acknowledged rounds for leases.
    heartbeat_sent: VecDeque<(u64, u64)>,
    heartbeat_due: bool,
    replicate_dirty: bool,
    /// The highest index a leader told this node is committed and that it knows its own
    /// log matches; the commit index follows it as far as the log is durable.
    leader_commit_known: LogIndex,
    messages: Vec<Message>,
    persisted_messages: Vec<Message>,
    read_states: Vec<ReadState>,
    last_ready_hard_state: HardState,
    checked_term: Term,
    checked_commit: LogIndex,
    /// With leases, a node restarted from a non-empty state may have acknowledged a
    /// heartbeat just before it crashed: it refuses votes for its first
    /// `election_timeout_ticks_min` ticks, as if it had just heard from a leader.
    restart_guard: bool,
    /// Leadership transfer in progress, and the term whose lease was given away.
    transfer: transfer::TransferState,
    /// Whether the node is quiet, and how long the leader has been idle.
    quiesce: quiesce::QuiesceState,
    /// Snapshots being received or installed (follower side).
    snap: snapshot::Receiving,
}

impl<S: Storage> RawNode<S> {
    /// Starts a node from what `storage` holds, as a follower, with nothing applied
    /// beyond the storage's latest snapshot (restore the state machine from it first;
    /// every committed entry after it is handed out for applying again). `rng_seed` seeds
    /// the election timeouts.
    pub fn new(config: Config, storage: S, rng_seed: u64) -> Result<RawNode<S>, InitError> {
        let applied = storage
            .first_index()?
            .prev()
            .max(storage.snapshot_meta()?.index);
        RawNode::with_applied(config, storage, rng_seed, applied)
    }

    /// Like [`RawNode::new`], for a state machine that already applied up to `applied`.
    pub fn with_applied(
        config: Config,
        storage: S,
        rng_seed: u64,
        applied: LogIndex,
    ) -> Result<RawNode<S>, InitError> {
        config.validate()?;
        let initial = storage.initial_state()?;
        let hard_state = initial.hard_state;
        let last_index = storage.last_index()?;
        if hard_state.commit > last_index {
            return Err(InitError::CommitBeyondLog {
                commit: hard_state.commit,
                last_index,
            });
        }
        let applied = applied.max(storage.first_index()?.prev());
        // A stored snapshot covers only committed entries, even if the hard state's
        // commit index was not yet written when it was taken.
        let snapshot_index = storage.snapshot_meta()?.index;
        if applied
            > hard_state
                .commit
                .max(storage.first_index()?.prev().max(snapshot_index))
        {
            return Err(InitError::AppliedBeyondCommit {
                applied,
                commit: hard_state.commit,
            });
        }
        let config_lease = config.read_only_option == ReadOnlyOption::LeaseBased;
        let log = RaftLog::new(
            storage,
            hard_state.commit.max(applied).max(snapshot_index),
            applied,
        )?;
        let membership = membership::Membership::load(&log, initial.conf_state)?;
        let mut rng = Rng::new(rng_seed ^ config.id.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let election_timeout = rng.range(
            config.election_timeout_ticks_min,
            config.election_timeout_ticks_max,
        );
        let node = RawNode {
            id: config.id,
            config,
            log,
            membership,
            term: hard_state.term,
            vote: hard_state.vote,
            role: Role::Follower,
            leader_id: None,
            rng,
            now_tick: 0,
            election_elapsed: 0,
            election_timeout,
            heartbeat_elapsed: 0,
            votes: BTreeMap::new(),
            progress: BTreeMap::new(),
            leader_since_tick: 0,
            uncommitted: VecDeque::new(),
            uncommitted_bytes: 0,
            reads_waiting_commit: Vec::new(),
            reads: VecDeque::new(),
            heartbeat_seq: 1,
            heartbeat_sent: VecDeque::new(),
            heartbeat_due: false,
            replicate_dirty: false,
            leader_commit_known: hard_state.commit,
            messages: Vec::new(),
            persisted_messages: Vec::new(),
            read_states: Vec::new(),
            last_ready_hard_state: hard_state,
            checked_term: hard_state.term,
            checked_commit: hard_state.commit,
            restart_guard: config_lease && hard_state.term > Term(0),
            transfer: transfer::TransferState::default(),
            quiesce: quiesce::QuiesceState::default(),
            snap: snapshot::Receiving::default(),
        };
        Ok(node)
    }

    /// This node's id.
    #[must_use]
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The current role.
    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }

    /// The current term.
    #[must_use]
    pub fn term(&self) -> Term {
        self.term
    }

    /// The leader this node knows of in the current term.
    #[must_use]
    pub fn leader_id(&self) -> Option<NodeId> {
        self.leader_id
    }

    /// The commit index.
    #[must_use]
    pub fn commit_index(&self) -> LogIndex {
        self.log.committed
    }

    /// The current hard state (what the next Ready will ask to persist if it changed).
    #[must_use]
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.committed,
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The storage, for reading.
    #[must_use]
    pub fn storage(&self) -> &S {
        &self.log.storage
    }

    /// The storage, for the caller's writes.
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.log.storage
    }

    /// The index of the last entry (durable or not).
    pub fn last_index(&self) -> Result<LogIndex, StorageError> {
        self.log.last_index()
    }

    /// The term of the entry at `index`, or `None` outside the log.
    pub fn entry_term(&self, index: LogIndex) -> Result<Option<Term>, StorageError> {
        self.log.term_if_present(index)
    }

    /// Entries `[lo, hi)` of this node's log, durable or not, bounded by `bytes_max`.
    pub fn entries(
        &self,
        lo: LogIndex,
        hi: LogIndex,
        bytes_max: u64,
    ) -> Result<Vec<Entry>, StorageError> {
        self.log.entries(lo, hi, bytes_max)
    }

    /// A snapshot of the node's state.
    pub fn status(&self) -> Result<Status, StorageError> {
        let peers = self
            .progress
            .iter()
            .map(|(&id, pr)| PeerStatus {
                id,
                match_index: pr.match_index,
                next_index: pr.next_index,
                state: pr.state,
                inflight_msgs: pr.inflights.len(),
                inflight_bytes: pr.inflights.bytes(),
            })
            .collect();
        Ok(Status {
            id: self.id,
            role: self.role,
            term: self.term,
            vote: self.vote,
            leader_id: self.leader_id,
            commit: self.log.committed,
            applied: self.log.applied,
            persisted: self.log.persisted,
            last_index: self.log.last_index()?,
            peers,
            transfer_target: self.transfer_target(),
            quiesced: self.is_quiesced(),
        })
    }

    /// Advances the logical clock by one tick: may start an election (follower,
    /// candidate), or send heartbeats and check the quorum (leader). Does nothing while
    /// the node is quiet (see [`RawNode::is_quiesced`]).
    pub fn tick(&mut self) -> Result<(), StorageError> {
        if self.quiesce.quiesced {
            return Ok(());
        }
        self.now_tick += 1;
        if self.role == Role::Leader {
            self.tick_leader();
            if self.role == Role::Leader {
                self.tick_transfer()?;
                self.maybe_quiesce()?;
            }
        } else {
            self.election_elapsed += 1;
            if self.election_elapsed >= self.election_timeout
                && self.promotable()
                && !self.snapshot_installing()
            {
                self.campaign(self.config.pre_vote)?;
            }
        }
        self.check_invariants()?;
        Ok(())
    }

    fn tick_leader(&mut self) {
        self.heartbeat_elapsed += 1;
        if self.heartbeat_elapsed >= self.config.heartbeat_interval_ticks {
            self.heartbeat_elapsed = 0;
            self.broadcast_heartbeat();
        }
        let lease_ticks = self.config.election_timeout_ticks_min;
        if self.config.check_quorum
            && self.now_tick - self.leader_since_tick >= lease_ticks
            && !self.quorum_active()
        {
            let term = self.term;
            self.become_follower(term, None);
            return;
        }
        while self.heartbeat_sent.len() > 1
            && self.heartbeat_sent[0].1 + lease_ticks < self.now_tick
        {
            self.heartbeat_sent.pop_front();
        }
    }

    /// Whether a quorum of voters (this node included) was heard from within the last
    /// `election_timeout_ticks_min` ticks.
    fn quorum_active(&self) -> bool {
        let window = self.config.election_timeout_ticks_min;
        let active = joint_value(self.membership.current(), |v| {
            u64::from(
                v == self.id
                    || self
                        .progress
                        .get(&v)
                        .is_some_and(|pr| self.now_tick - pr.last_active_tick < window),
            )
        });
        active == 1
    }

    /// Whether this node may campaign (see `may_campaign`).
    fn promotable(&self) -> bool {
        self.may_campaign()
    }

    /// Proposes `data` as a new entry. On success returns the index it will have if it
    /// commits; the entry goes out with the next [`RawNode::ready`], batched with every
    /// other proposal made since the previous one.
    pub fn propose(&mut self, data: Bytes) -> Result<LogIndex, ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader_hint: self.leader_id,
            });
        }
        if let Some(target) = self.transfer_target() {
            return Err(ProposeError::TransferInProgress { target });
        }
        self.wake();
        let entry = Entry {
            term: self.term,
            index: LogIndex(0),
            kind: EntryKind::Normal,
            data,
        };
        let len = entry.size_bytes();
        if len > self.config.msg_bytes_max {
            return Err(ProposeError::EntryTooLarge {
                len,
                max: self.config.msg_bytes_max,
            });
        }
        let max = self.config.uncommitted_bytes_max;
        if self.uncommitted_bytes > 0 && self.uncommitted_bytes + len > max {
            return Err(ProposeError::TooManyUncommittedBytes {
                uncommitted: self.uncommitted_bytes,
                len,
                max,
            });
        }
        let index = self.append_as_leader(entry)?;
        self.uncommitted.push_back((index, len));
        self.uncommitted_bytes += len;
        Ok(index)
    }

    fn append_as_leader(&mut self, mut entry: Entry) -> Result<LogIndex, StorageError> {
        assert_eq!(self.role, Role::Leader);
        let index = self.log.last_index()?.next();
        entry.index = index;
        entry.term = self.term;
        let conf_entry = (entry.kind == EntryKind::ConfChange).then(|| entry.clone());
        self.log.append(entry)?;
        self.replicate_dirty = true;
        if let Some(entry) = conf_entry {
            self.on_conf_entries_appended(std::slice::from_ref(&entry))?;
        }
        Ok(index)
    }

    /// Requests a linearizable read identified by `context`. The confirmation arrives as
    /// a [`ReadState`] in a later [`Ready`]; serve the read once applied up to its index.
    /// A follower forwards the request to the leader. Reads still waiting when leadership
    /// changes are dropped without an answer: the caller retries after a timeout.
    pub fn read_index(&mut self, context: Bytes) -> Result<(), ReadIndexError> {
        self.wake();
        if self.role == Role::Leader {
            return self.leader_read(context, self.id);
        }
        match self.leader_id {
            Some(leader) => {
                self.send(leader, Payload::ReadIndex(ReadIndexRequest { context }));
                Ok(())
            }
            None => Err(ReadIndexError::NotLeader { leader_hint: None }),
        }
    }

    fn leader_read(&mut self, context: Bytes, origin: NodeId) -> Result<(), ReadIndexError> {
        assert_eq!(self.role, Role::Leader);
        let max = self.config.pending_reads_max;
        if self.reads.len() + self.reads_waiting_commit.len() >= max {
            return Err(ReadIndexError::TooManyPendingReads { max });
        }
        if !self.committed_in_term() {
            // The commit index may lag the true one until an entry of this term commits.
            self.reads_waiting_commit.push((context, origin));
            return Ok(());
        }
        let index = self.log.committed;
        if self.only_voter_is_self()
            || (self.config.read_only_option == ReadOnlyOption::LeaseBased && self.lease_valid())
        {
            self.answer_read(context, origin, index);
            return Ok(());
        }
        self.reads.push_back(PendingRead {
            context,
            origin,
            index,
            seq: self.heartbeat_seq,
        });
        // One round confirms every read registered before it was sent. While a round is
        // out, new reads wait for it to return and then share the next one, so a stream
        // of reads costs one round per round trip rather than one per read.
        if !self.read_round_out() {
            self.heartbeat_due = true;
        }
        Ok(())
    }

    /// Leader: whether a heartbeat round that pending reads wait for has been sent and
    /// not yet confirmed by a quorum.
    fn read_round_out(&self) -> bool {
        // Reads are in `seq` order; the front one has the oldest round.
        self.reads
            .front()
            .is_some_and(|read| read.seq < self.heartbeat_seq)
    }

    fn committed_in_term(&self) -> bool {
        self.log.term_if_present(self.log.committed).ok().flatten() == Some(self.term)
    }

    fn answer_read(&mut self, context: Bytes, origin: NodeId, index: LogIndex) {
        assert!(
            index <= self.log.committed,
            "read at {index} beyond the commit index"
        );
        assert!(
            self.committed_in_term(),
            "reads are served only after a commit in the term"
        );
        if origin == self.id {
            self.read_states.push(ReadState { context, index });
        } else {
            self.send(
                origin,
                Payload::ReadIndexResponse(ReadIndexResponse { context, index }),
            );
        }
    }

    /// Whether a quorum acknowledged a heartbeat sent recently enough that no other
    /// leader can have been elected since (see [`ReadOnlyOption::LeaseBased`]).
    fn lease_valid(&self) -> bool {
        if self.lease_surrendered() {
            return false;
        }
        // Shifted by one so that 0 stands for "never acknowledged".
        let anchor = joint_value(self.membership.current(), |v| {
            if v == self.id {
                self.now_tick + 1
            } else {
                self.progress
                    .get(&v)
                    .and_then(|pr| pr.acked_sent_tick)
                    .map_or(0, |t| t + 1)
            }
        });
        if anchor == 0 {
            return false;
        }
        let lease = self.config.election_timeout_ticks_min - self.config.lease_drift_ticks;
        anchor - 1 + lease > self.now_tick
    }

    /// Processes a message from another node.
    pub fn step(&mut self, msg: Message) -> Result<(), StepError> {
        if msg.to != self.id {
            return Err(StepError::WrongRecipient {
                to: msg.to,
                id: self.id,
            });
        }
        if msg.from == self.id || !self.accepts_sender(&msg) {
            return Err(StepError::UnknownSender { from: msg.from });
        }
        self.wake_on_message(&msg);
        self.step_checked(msg)?;
        self.after_step_transfer()?;
        self.check_invariants()?;
        Ok(())
    }

    fn step_checked(&mut self, msg: Message) -> Result<(), StorageError> {
        if msg.term > self.term {
            let is_vote_request = matches!(msg.payload, Payload::PreVote(_) | Payload::Vote(_));
            if is_vote_request && self.in_lease() {
                // A node that hears from a live leader does not help anyone depose it
                // (thesis §4.2.3): not a partitioned node back with a raised term, nor a
                // removed node that missed its removal and campaigns for ever.
                return Ok(());
            }
            match &msg.payload {
                // A pre-vote never changes terms, and a granted pre-vote response carries
                // the term the pre-candidate would campaign in.
                Payload::PreVote(_) => {}
                Payload::PreVoteResponse(resp) if resp.granted => {}
                Payload::Append(_)
                | Payload::Heartbeat(_)
                | Payload::Quiesce(_)
                | Payload::Snapshot(_) => self.become_follower(msg.term, Some(msg.from)),
                _ => self.become_follower(msg.term, None),
            }
        } else if msg.term < self.term {
            self.reply_to_stale(&msg)?;
            return Ok(());
        }
        if self.role == Role::Leader
            && let Some(pr) = self.progress.get_mut(&msg.from)
        {
            pr.last_active_tick = self.now_tick;
        }
        let (from, term) = (msg.from, msg.term);
        match msg.payload {
            Payload::PreVote(req) => self.handle_vote_request(from, term, req, true)?,
            Payload::Vote(req) => self.handle_vote_request(from, term, req, false)?,
            Payload::PreVoteResponse(resp) => {
                let expected = if resp.granted {
                    self.term.next()
                } else {
                    self.term
                };
                if self.role == Role::PreCandidate && term == expected {
                    self.poll(from, resp.granted)?;
                }
            }
            Payload::VoteResponse(resp) => {
                if self.role == Role::Candidate {
                    self.poll(from, resp.granted)?;
                }
            }
            Payload::Append(req) => {
                self.follow(from);
                self.handle_append(from, req)?;
            }
            Payload::Heartbeat(hb) => {
                self.follow(from);
                self.handle_heartbeat(from, hb)?;
            }
            Payload::AppendResponse(resp) => {
                if self.role == Role::Leader {
                    self.handle_append_response(from, resp)?;
                }
            }
            Payload::HeartbeatResponse(resp) => {
                if self.role == Role::Leader {
                    self.handle_heartbeat_response(from, resp)?;
                }
            }
            Payload::ReadIndex(req) => {
                // A full queue drops the forwarded read; the follower's caller retries.
                if self.role == Role::Leader {
                    let _ = self.leader_read(req.context, from);
                }
            }
            Payload::ReadIndexResponse(resp) => {
                if self.role == Role::Follower {
                    self.read_states.push(ReadState {
                        context: resp.context,
                        index: resp.index,
                    });
                }
            }
            Payload::TimeoutNow => self.handle_timeout_now()?,
            Payload::TransferVote(req) => self.handle_vote_request(from, term, req, false)?,
            Payload::Quiesce(hb) => self.handle_quiesce(from, hb)?,
            Payload::Snapshot(chunk) => {
                self.follow(from);
                self.handle_snapshot_chunk(from, chunk)?;
            }
            Payload::SnapshotResponse(resp) => {
                if self.role == Role::Leader {
                    self.handle_snapshot_response(from, resp);
                }
            }
        }
        Ok(())
    }

    /// A message from an older term: tell a stale leader about the newer term, refuse
    /// stale pre-votes and votes explicitly, ignore the rest. The stale leader would
    /// otherwise never learn it: its followers do not hear this node's vote requests
    /// while they hear from it, and a node that may not campaign sends none.
    fn reply_to_stale(&mut self, msg: &Message) -> Result<(), StorageError> {
        match msg.payload {
            Payload::Append(_)
            | Payload::Heartbeat(_)
            | Payload::Quiesce(_)
            | Payload::Snapshot(_) => {
                let last_index = self.log.last_index()?;
                self.send(
                    msg.from,
                    Payload::HeartbeatResponse(HeartbeatResponse { seq: 0, last_index }),
                );
            }
            Payload::PreVote(_) => self.send(
                msg.from,
                Payload::PreVoteResponse(VoteResponse { granted: false }),
            ),
            // A candidate behind on terms learns the current one (§5.1). Without it, a
            // candidate that only ever hears from this node could campaign in stale terms
            // for ever while another node keeps raising this node's term.
            Payload::Vote(_) => self.send(
                msg.from,
                Payload::VoteResponse(VoteResponse { granted: false }),
            ),
            _ => {}
        }
        Ok(())
    }

    /// Whether this node leads, or heard from its leader within the minimum election
    /// timeout (or restarted within it, with lease reads on): it then refuses to raise its
    /// term for anyone's vote request, whatever the options.
    fn in_lease(&self) -> bool {
        let window = self.config.election_timeout_ticks_min;
        if self.restart_guard && self.now_tick < window {
            return true;
        }
        self.leader_id.is_some() && (self.role == Role::Leader || self.election_elapsed < window)
    }

    /// A leader of the current term spoke: follow it.
    fn follow(&mut self, leader: NodeId) {
        debug_assert_ne!(self.role, Role::Leader, "two leaders in term {}", self.term);
        if self.role != Role::Follower || self.leader_id != Some(leader) {
            let term = self.term;
            self.become_follower(term, Some(leader));
        }
        self.snap.leader_changed(leader);
        self.election_elapsed = 0;
    }

    fn handle_vote_request(
        &mut self,
        from: NodeId,
        term: Term,
        req: VoteRequest,
        pre: bool,
    ) -> Result<(), StorageError> {
        let can_vote = self.vote == Some(from)
            || (self.vote.is_none() && self.leader_id.is_none())
            || (pre && term > self.term);
        let ours = (self.log.last_term()?, self.log.last_index()?);
        let up_to_date = (req.last_log_term, req.last_log_index) >= ours;
        let granted = can_vote && up_to_date;
        if pre {
            let term = if granted { term } else { self.term };
            self.messages.push(Message {
                from: self.id,
                to: from,
                term,
                payload: Payload::PreVoteResponse(VoteResponse { granted }),
            });
        } else if granted {
            assert_eq!(term, self.term);
            assert!(
                self.vote.is_none_or(|v| v == from),
                "second vote in term {}",
                self.term
            );
            self.vote = Some(from);
            self.election_elapsed = 0;
            // The grant must not leave before the vote is durable.
            let msg = self.message(from, Payload::VoteResponse(VoteResponse { granted }));
            self.persisted_messages.push(msg);
        } else {
            self.send(from, Payload::VoteResponse(VoteResponse { granted }));
        }
        Ok(())
    }

    fn campaign(&mut self, pre: bool) -> Result<(), StorageError> {
        assert!(self.promotable());
        let request_term = if pre {
            self.reset_to(Role::PreCandidate);
            self.term.next()
        } else {
            self.term = self.term.next();
            self.vote = Some(self.id);
            self.reset_to(Role::Candidate);
            self.term
        };
        let req = VoteRequest {
            last_log_index: self.log.last_index()?,
            last_log_term: self.log.last_term()?,
        };
        for voter in self.membership.current().members() {
            if voter == self.id || !self.membership.current().is_voter(voter) {
                continue;
            }
            let payload = if pre {
                Payload::PreVote(req)
            } else {
                Payload::Vote(req)
            };
            self.messages.push(Message {
                from: self.id,
                to: voter,
                term: request_term,
                payload,
            });
        }
        if pre {
            // A pre-vote changes nothing durable, so it counts at once; a candidate's own
            // vote counts once its hard state is durable (see `on_persisted`).
            self.poll(self.id, true)?;
        }
        Ok(())
    }

    fn poll(&mut self, from: NodeId, granted: bool) -> Result<(), StorageError> {
        assert!(matches!(self.role, Role::PreCandidate | Role::Candidate));
        if !self.membership.current().is_voter(from) {
            // A node whose configuration is behind ours asked it; its answer counts not.
            return Ok(());
        }
        self.votes.entry(from).or_insert(granted);
        match vote_result(self.membership.current(), &self.votes) {
            VoteResult::Won if self.role == Role::PreCandidate => self.campaign(false)?,
            VoteResult::Won => self.become_leader()?,
            VoteResult::Lost => {
                let term = self.term;
                self.become_follower(term, None);
            }
            VoteResult::Pending => {}
        }
        Ok(())
    }

    fn reset_to(&mut self, role: Role) {
        self.role = role;
        self.leader_id = None;
        self.election_elapsed = 0;
        self.election_timeout = self.rng.range(
            self.config.election_timeout_ticks_min,
            self.config.election_timeout_ticks_max,
        );
        self.heartbeat_elapsed = 0;
        self.votes.clear();
        self.progress.clear();
        self.uncommitted.clear();
        self.uncommitted_bytes = 0;
        self.reads_waiting_commit.clear();
        self.reads.clear();
        self.heartbeat_sent.clear();
        self.heartbeat_due = false;
        self.replicate_dirty = false;
        self.transfer.pending = None;
        self.quiesce.idle_ticks = 0;
    }

    fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        assert!(
            term >= self.term,
            "term would go back from {} to {term}",
            self.term
        );
        if term > self.term {
            self.term = term;
            self.vote = None;
        }
        self.reset_to(Role::Follower);
        self.leader_id = leader;
    }

    fn become_leader(&mut self) -> Result<(), StorageError> {
        assert_eq!(self.role, Role::Candidate);
        assert_eq!(self.vote, Some(self.id));
        self.reset_to(Role::Leader);
        self.leader_id = Some(self.id);
        self.leader_since_tick = self.now_tick;
        self.sync_progress()?;
        // The no-op lets the leader commit (and so serve reads) without a client write.
        let noop = Entry {
            term: self.term,
            index: LogIndex(0),
            kind: EntryKind::NoOp,
            data: Bytes::new(),
        };
        self.append_as_leader(noop)?;
        self.maybe_commit()?;
        Ok(())
    }

    fn handle_append(&mut self, from: NodeId, req: AppendEntries) -> Result<(), StorageError> {
        if self.snapshot_installing() {
            // The log is about to be replaced; the leader retries once it hears of the install.
            return Ok(());
        }
        let committed = self.log.committed;
        if req.prev_log_index < committed {
            // Our committed prefix matches every leader's log; the durable part of it can be
            // acknowledged at once.
            let resp = AppendResponse::Accepted {
                match_index: committed.min(self.log.persisted),
            };
            self.send(from, Payload::AppendResponse(resp));
            return Ok(());
        }
        let floor = committed.max(self.leader_commit_known);
        match self
            .log
            .maybe_append(req.prev_log_index, req.prev_log_term, &req.entries, floor)?
        {
            Some(last_new) => {
                self.on_conf_entries_appended(&req.entries)?;
                let known = req.leader_commit.min(last_new);
                self.leader_commit_known = self.leader_commit_known.max(known);
                self.follower_commit()?;
                let msg = self.message(
                    from,
                    Payload::AppendResponse(AppendResponse::Accepted {
                        match_index: last_new,
                    }),
                );
                self.persisted_messages.push(msg);
            }
            None => {
                let probe = req.prev_log_index.min(self.log.last_index()?);
                let (hint_index, hint_term) =
                    self.find_conflict_by_term(probe, req.prev_log_term)?;
                let resp = AppendResponse::Rejected {
                    rejected_prev_index: req.prev_log_index,
                    hint_index,
                    hint_term,
                };
                self.send(from, Payload::AppendResponse(resp));
            }
        }
        Ok(())
    }

    /// The largest index at or below `index` whose term is at most `term`, and its term.
    fn find_conflict_by_term(
        &self,
        mut index: LogIndex,
        term: Term,
    ) -> Result<(LogIndex, Term), StorageError> {
        loop {
            match self.log.term_if_present(index)? {
                Some(t) if t > term && index > LogIndex(0) => index = index.prev(),
                Some(t) => return Ok((index, t)),
                None => return Ok((index, Term(0))),
            }
        }
    }

    /// Follower: commit what the leader said is committed, as far as the log is durable.
    fn follower_commit(&mut self) -> Result<(), StorageError> {
        if self.snapshot_installing() {
            return Ok(());
        }
        let target = self.leader_commit_known.min(self.log.persisted);
        if self.log.commit_to(target)? {
            // A follower commits only entries it holds durably and knows match the leader's.
            assert!(
                self.log.committed <= self.log.persisted,
                "a follower commits only durable entries"
            );
        }
        Ok(())
    }

    fn handle_heartbeat(&mut self, from: NodeId, hb: Heartbeat) -> Result<(), StorageError> {
        let last_index = self.absorb_heartbeat(&hb)?;
        self.answer_heartbeat(from, hb.seq, last_index);
        Ok(())
    }

    /// Follower: takes in the commit index a heartbeat (or quiesce) carries; returns the
    /// last index of the log.
    fn absorb_heartbeat(&mut self, hb: &Heartbeat) -> Result<LogIndex, StorageError> {
        self.leader_commit_known = self.leader_commit_known.max(hb.commit);
        self.follower_commit()?;
        self.log.last_index()
    }

    fn answer_heartbeat(&mut self, to: NodeId, seq: u64, last_index: LogIndex) {
        self.send(
            to,
            Payload::HeartbeatResponse(HeartbeatResponse { seq, last_index }),
        );
    }

    fn handle_append_response(
        &mut self,
        from: NodeId,
        resp: AppendResponse,
    ) -> Result<(), StorageError> {
        let last_index = self.log.last_index()?;
        match resp {
            AppendResponse::Accepted { match_index } => {
                if match_index > last_index {
                    return Ok(()); // not something this leader sent
                }
                let Some(pr) = self.progress.get_mut(&from) else {
                    return Ok(()); // a member this leader's configuration no longer has
                };
                let advanced = pr.maybe_update(match_index);
                if pr.state == ProgressState::Probe || snapshot::caught_up(pr) {
                    pr.become_replicate();
                }
                self.replicate_dirty = true;
                if advanced {
                    self.maybe_commit()?;
                }
            }
            AppendResponse::Rejected {
                rejected_prev_index,
                hint_index,
                hint_term,
            } => {
                let probe_to = if hint_term > Term(0) {
                    self.find_conflict_by_term(hint_index.min(last_index), hint_term)?
                        .0
                } else {
                    hint_index
                };
                let Some(pr) = self.progress.get_mut(&from) else {
                    return Ok(());
                };
                if pr.maybe_decrease_to(rejected_prev_index, probe_to) {
                    self.replicate_dirty = true;
                }
            }
        }
        Ok(())
    }

    fn handle_heartbeat_response(
        &mut self,
        from: NodeId,
        resp: HeartbeatResponse,
    ) -> Result<(), StorageError> {
        let last_index = self.log.last_index()?;
        let sent_tick = self.heartbeat_tick(resp.seq);
        let Some(pr) = self.progress.get_mut(&from) else {
            return Ok(());
        };
        if resp.seq > 0 && pr.acked_seq.is_none_or(|s| s < resp.seq) {
            pr.acked_seq = Some(resp.seq);
            if sent_tick.is_some() {
                pr.acked_sent_tick = sent_tick;
            }
        }
        match pr.state {
            ProgressState::Probe => pr.probe_sent = false,
            ProgressState::Replicate => {
                // No progress over a whole heartbeat round while behind: an append was
                // probably lost, so find the match point again.
                if pr.match_index < last_index && pr.match_index == pr.match_at_last_heartbeat {
                    pr.become_probe();
                }
            }
            ProgressState::Snapshot => snapshot::heartbeat_round(pr),
        }
        pr.match_at_last_heartbeat = pr.match_index;
        if pr.match_index < last_index {
            self.replicate_dirty = true;
        }
        self.confirm_reads();
        Ok(())
    }

    /// The tick at which heartbeat round `seq` was sent, if still remembered.
    fn heartbeat_tick(&self, seq: u64) -> Option<u64> {
        self.heartbeat_sent
            .iter()
            .rev()
            .find(|&&(first, _)| first <= seq)
            .map(|&(_, tick)| tick)
    }

    /// Releases the reads whose heartbeat round a quorum has acknowledged.
    fn confirm_reads(&mut self) {
        let confirmed = joint_value(self.membership.current(), |v| {
            if v == self.id {
                u64::MAX
            } else {
                self.progress
                    .get(&v)
                    .and_then(|pr| pr.acked_seq)
                    .unwrap_or(0)
            }
        });
        while self.reads.front().is_some_and(|r| r.seq <= confirmed) {
            let read = self.reads.pop_front().expect("checked non-empty");
            assert!(read.index <= self.log.committed);
            self.answer_read(read.context, read.origin, read.index);
        }
        if !self.reads.is_empty() && !self.read_round_out() {
            // The reads that waited for the last round to return get theirs now.
            self.heartbeat_due = true;
        }
        debug_assert!(
            self.reads.is_empty() || self.read_round_out() || self.heartbeat_due,
            "pending reads always have a round out or due"
        );
    }

    fn broadcast_heartbeat(&mut self) {
        assert_eq!(self.role, Role::Leader);
        let seq = self.heartbeat_seq;
        self.heartbeat_seq += 1;
        if self
            .heartbeat_sent
            .back()
            .is_none_or(|&(_, tick)| tick < self.now_tick)
        {
            self.heartbeat_sent.push_back((seq, self.now_tick));
        }
        self.heartbeat_due = false;
        let peers: Vec<(NodeId, LogIndex)> = self
            .progress
            .iter()
            .map(|(&id, pr)| (id, pr.match_index))
            .collect();
        for (peer, match_index) in peers {
            let commit = self.log.committed.min(match_index);
            self.send(peer, Payload::Heartbeat(Heartbeat { commit, seq }));
        }
        self.confirm_reads();
    }

    /// Leader: commit the highest index durable on a quorum, if it is from this term
    /// (§5.4.2: older entries commit only indirectly).
    fn maybe_commit(&mut self) -> Result<(), StorageError> {
        assert_eq!(self.role, Role::Leader);
        let candidate = LogIndex(joint_value(self.membership.current(), |v| {
            if v == self.id {
                self.log.persisted.0
            } else {
                self.progress.get(&v).map_or(0, |pr| pr.match_index.0)
            }
        }));
        if candidate <= self.log.committed || self.log.term(candidate)? != self.term {
            return Ok(());
        }
        let was_committed_in_term = self.committed_in_term();
        self.log.commit_to(candidate)?;
        while self
            .uncommitted
            .front()
            .is_some_and(|&(index, _)| index <= candidate)
        {
            let (_, len) = self.uncommitted.pop_front().expect("checked non-empty");
            self.uncommitted_bytes -= len;
        }
        self.replicate_dirty = true;
        if !was_committed_in_term {
            for (context, origin) in std::mem::take(&mut self.reads_waiting_commit) {
                // The queue held at most `pending_reads_max` reads, so none is refused.
                let _ = self.leader_read(context, origin);
            }
        }
        self.after_leader_commit()?;
        Ok(())
    }

    /// Sends appends to `peer` while it is not paused and there is something to send.
    fn send_appends(&mut self, peer: NodeId) -> Result<(), StorageError> {
        let last_index = self.log.last_index()?;
        let commit = self.log.committed;
        if self.send_snapshot(peer)? {
            return Ok(());
        }
        loop {
            let pr = &self.progress[&peer];
            if pr.paused(
                self.config.inflight_msgs_max,
                self.config.inflight_bytes_max,
            ) {
                return Ok(());
            }
            let next = pr.next_index;
            let hi = last_index
                .next()
                .min(LogIndex(next.0 + self.config.entries_per_msg_max as u64));
            let entries = self.log.entries(next, hi, self.config.msg_bytes_max)?;
            if entries.is_empty()
                && pr.state == ProgressState::Replicate
                && pr.commit_sent >= commit
            {
                return Ok(());
            }
            let prev_log_index = next.prev();
            let prev_log_term = self.log.term(prev_log_index)?;
            let bytes: u64 = entries.iter().map(Entry::size_bytes).sum();
            let last_sent = entries.last().map(|e| e.index);
            let req = AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit: commit,
            };
            self.send(peer, Payload::Append(req));
            let pr = self
                .progress
                .get_mut(&peer)
                .expect("progress for every member");
            pr.commit_sent = commit;
            match (pr.state, last_sent) {
                (ProgressState::Probe, _) => {
                    pr.probe_sent = true;
                    return Ok(());
                }
                (ProgressState::Replicate, Some(last)) => {
                    pr.next_index = last.next();
                    pr.inflights.add(last, bytes);
                    pr.check();
                }
                (ProgressState::Replicate, None) => return Ok(()),
                (ProgressState::Snapshot, _) => {
                    unreachable!("no appends are sent in snapshot state")
                }
            }
        }
    }

    fn message(&self, to: NodeId, payload: Payload) -> Message {
        Message {
            from: self.id,
            to,
            term: self.term,
            payload,
        }
    }

    fn send(&mut self, to: NodeId, payload: Payload) {
        let msg = self.message(to, payload);
        self.messages.push(msg);
    }

    /// Whether [`RawNode::ready`] has anything to hand out.
    #[must_use]
    pub fn has_ready(&self) -> bool {
        !self.messages.is_empty()
            || !self.persisted_messages.is_empty()
            || !self.read_states.is_empty()
            || self.log.has_unpersisted()
            || self.hard_state() != self.last_ready_hard_state
            || (self
                .log
                .has_committed_to_apply(self.config.apply_inflight_bytes_max)
                && !self.snapshot_installing())
            || (self.role == Role::Leader && (self.replicate_dirty || self.heartbeat_due))
            || self.snap.has_ready()
    }

    /// Collects everything the caller must do now. See the crate documentation for the
    /// order in which to act on it.
    pub fn ready(&mut self) -> Result<Ready, StorageError> {
        if self.role == Role::Leader {
            if self.replicate_dirty {
                self.replicate_dirty = false;
                let peers: Vec<NodeId> = self.progress.keys().copied().collect();
                for peer in peers {
                    self.send_appends(peer)?;
                }
            }
            if self.heartbeat_due {
                self.broadcast_heartbeat();
            }
        }
        let hard_state = self.hard_state();
        let hard_state = (hard_state != self.last_ready_hard_state).then(|| {
            self.last_ready_hard_state = hard_state;
            hard_state
        });
        let ready = Ready {
            messages: std::mem::take(&mut self.messages),
            entries: self.log.take_unpersisted(),
            hard_state,
            persisted_messages: std::mem::take(&mut self.persisted_messages),
            // Entries below a snapshot being installed are never applied.
            committed_entries: if self.snapshot_installing() {
                Vec::new()
            } else {
                self.log.take_committed(
                    self.config.apply_bytes_max,
                    self.config.apply_inflight_bytes_max,
                )?
            },
            read_states: std::mem::take(&mut self.read_states),
            snapshot_chunks: std::mem::take(&mut self.snap.chunks),
            snapshot: self.snap.to_install.take(),
        };
        self.check_invariants()?;
        Ok(ready)
    }

    /// Reports that the writes of a Ready (and all earlier ones) are durable.
    pub fn on_persisted(&mut self, ack: PersistAck) -> Result<(), StorageError> {
        if let Some((index, term)) = ack.last_entry
            && self.log.persisted_to(index, term)?
        {
            if self.role == Role::Leader {
                self.maybe_commit()?;
            } else {
                self.follower_commit()?;
            }
        }
        if let Some(hs) = ack.hard_state
            && self.role == Role::Candidate
            && hs.term == self.term
            && hs.vote == Some(self.id)
        {
            self.poll(self.id, true)?;
        }
        self.check_invariants()?;
        Ok(())
    }

    /// Reports that the state machine applied every handed-out entry up to `index`.
    pub fn on_applied(&mut self, index: LogIndex) {
        self.log.applied_to(index);
    }

    fn check_invariants(&mut self) -> Result<(), StorageError> {
        assert!(
            self.term >= self.checked_term,
            "term went back from {} to {}",
            self.checked_term,
            self.term
        );
        assert!(
            self.log.committed >= self.checked_commit,
            "commit went back from {}",
            self.checked_commit
        );
        self.checked_term = self.term;
        self.checked_commit = self.log.committed;
        self.check_membership()?;
        if !cfg!(debug_assertions) {
            return Ok(());
        }
        self.log.check_invariants()?;
        self.check_snapshot_invariants()?;
        let last_index = self.log.last_index()?;
        match self.role {
            Role::Leader => {
                assert_eq!(self.leader_id, Some(self.id));
                assert_eq!(self.vote, Some(self.id));
                for pr in self.progress.values() {
                    pr.check();
                    assert!(pr.match_index <= last_index && pr.next_index <= last_index.next());
                }
                assert_eq!(
                    self.uncommitted.iter().map(|&(_, len)| len).sum::<u64>(),
                    self.uncommitted_bytes
                );
                assert!(!self.progress.contains_key(&self.id));
            }
            Role::Follower | Role::PreCandidate | Role::Candidate => {
                assert!(
                    self.progress.is_empty()
                        && self.reads.is_empty()
                        && self.uncommitted.is_empty()
                );
                assert_ne!(self.leader_id, Some(self.id));
            }
        }
        self.check_transfer_invariants(last_index);
        self.check_quiesce_invariants(last_index);
        Ok(())
    }
}
