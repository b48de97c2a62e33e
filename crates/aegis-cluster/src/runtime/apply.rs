//! The applier: a thread that applies committed entries to the state machine and answers
//! the proposals and reads waiting on them, so applying never holds up replication.
//!
//! The node's thread sends it, in order, each accepted proposal (its index and term), each
//! run of committed entries, and each confirmed read. Because a proposal is accepted
//! before its entry can commit, its waiter is always known by the time the entry is
//! applied. Every run queued when the applier wakes (up to `apply_batch_max` entries) goes
//! to [`StateMachine::apply_batch`] at once.
//!
//! Every `snapshot_every_entries` applied entries, once the commands applied since the
//! last snapshot add up to `snapshot_log_growth_percent` of its size (both stretched by a
//! random share of up to `snapshot_stretch_percent`, drawn anew for each snapshot, so
//! that replicas do not all snapshot at once), the applier asks
//! the state machine for a snapshot and hands it to the node's thread, which stores it and compacts the log. A
//! snapshot received from the leader is restored here too, in order with the entries.

#![allow(
    clippy::disallowed_methods,
    reason = "the applier forgets abandoned requests on a wall-clock period"
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use aegis_raft::{ConfChangeRecord, ConfState, Entry, EntryKind, LogIndex, Term};
use bytes::Bytes;
use tokio::sync::oneshot;

use super::driver::Input;
use super::threads::{NodeThread, Spawner};
use super::{RaftError, RestoreError, StateMachine};

/// A reply channel for a read barrier.
pub(super) type ReadReply = oneshot::Sender<Result<LogIndex, RaftError>>;

/// What the node's thread hands the applier.
pub(super) enum ApplyJob<O> {
    /// This node's proposals, each given an index in a term, in the order accepted.
    Proposed(Vec<Proposal<O>>),
    /// Committed entries, in log order, following the previous run without a gap.
    Committed(Vec<Entry>),
    /// A read confirmed at `index`: answer it once applied up to there.
    Read { index: LogIndex, reply: ReadReply },
    /// Replace the state by a snapshot at `index` (the log already starts after it), then
    /// report on `done`.
    Restore {
        index: LogIndex,
        data: Bytes,
        done: Sender<Result<(), RestoreError>>,
    },
}

/// When to snapshot, and where to send the snapshots.
pub(super) struct SnapshotPolicy<O> {
    /// The thresholds.
    pub(super) schedule: SnapshotSchedule,
    /// Set by the node's thread when the log cannot store snapshots.
    pub(super) unsupported: Arc<AtomicBool>,
    /// The node's inbox; a snapshot that does not fit is sent again later.
    pub(super) inbox: SyncSender<Input<O>>,
    /// Starts the thread that copies a snapshot.
    pub(super) spawner: Spawner,
}

/// The thresholds a snapshot waits for, each stretched by a share drawn at random for
/// each snapshot.
///
/// Every replica applies the same entries, so on exact thresholds all of them would
/// snapshot at the same index, at the same moment: each flushing, copying and writing
/// its state at once, which slows the whole group down together. Drawn apart, a
/// snapshot mostly slows one replica while the others go on committing.
#[derive(Debug, Clone)]
pub(super) struct SnapshotSchedule {
    /// Applied entries between snapshots; 0 never snapshots.
    every_entries: u64,
    /// The command bytes applied between snapshots, in percent of the last snapshot's size.
    log_growth_percent: u32,
    /// The largest stretch, in percent of both thresholds.
    stretch_percent_max: u32,
    /// The stretch of the next snapshot's thresholds, in percent.
    stretch_percent: u32,
    /// The state of the generator the stretches are drawn from.
    rng: u64,
}

impl SnapshotSchedule {
    pub(super) fn new(
        every_entries: u64,
        log_growth_percent: u32,
        stretch_percent_max: u32,
        seed: u64,
    ) -> Self {
        let mut schedule = Self {
            every_entries,
            log_growth_percent,
            stretch_percent_max,
            stretch_percent: 0,
            rng: seed,
        };
        schedule.draw();
        schedule
    }

    /// Draws the stretch of the next snapshot's thresholds.
    fn draw(&mut self) {
        // splitmix64: spreading snapshots needs no better randomness than this.
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let span = u64::from(self.stretch_percent_max) + 1;
        self.stretch_percent = u32::try_from(z % span).expect("below stretch_percent_max + 1");
        debug_assert!(self.stretch_percent <= self.stretch_percent_max);
    }

    fn snapshots(&self) -> bool {
        self.every_entries > 0
    }

    /// Entries to apply after a snapshot before the next.
    fn entries_due(&self) -> u64 {
        let stretch = u128::from(self.every_entries) * u128::from(self.stretch_percent) / 100;
        self.every_entries
            .saturating_add(u64::try_from(stretch).unwrap_or(u64::MAX))
    }

    /// Command bytes to apply after a snapshot of `last_snapshot_bytes` before the next.
    fn growth_due(&self, last_snapshot_bytes: u64) -> u128 {
        u128::from(last_snapshot_bytes)
            * u128::from(self.log_growth_percent)
            * u128::from(100 + self.stretch_percent)
            / 10_000
    }
}

/// A proposal the core accepted: its index, its term and its waiter.
pub(super) type Proposal<O> = (LogIndex, Term, Reply<O>);

/// A reply channel for a membership change: answered with the configuration that holds
/// once the change is applied (and, for a joint change, once the joint phase is left).
pub(super) type ConfReply = oneshot::Sender<Result<ConfState, RaftError>>;

/// Who waits for a proposed entry.
pub(super) enum Reply<O> {
    /// A command: answered with the state machine's output.
    Command(oneshot::Sender<Result<O, RaftError>>),
    /// A membership change.
    ConfChange(ConfReply),
}

impl<O> Reply<O> {
    fn is_closed(&self) -> bool {
        match self {
            Reply::Command(reply) => reply.is_closed(),
            Reply::ConfChange(reply) => reply.is_closed(),
        }
    }

    fn superseded(self, index: LogIndex) {
        let error = RaftError::Superseded { index };
        match self {
            Reply::Command(reply) => {
                let _ = reply.send(Err(error));
            }
            Reply::ConfChange(reply) => {
                let _ = reply.send(Err(error));
            }
        }
    }
}

/// What applying one committed entry produced.
enum Outcome<O> {
    /// A command's output.
    Output(O),
    /// The configuration a `ConfChange` entry leads to.
    Conf(ConfState),
    /// Nothing: an entry skipped, a no-op, or an undecodable configuration entry.
    Nothing,
}

/// What kind of entry was applied, before the state machine's outputs are known.
enum Kind {
    Command,
    Conf(ConfState),
    Other,
}

/// How often waiters whose callers went away are dropped.
const FORGET_PERIOD: Duration = Duration::from_secs(1);

/// How often an idle applier checks on a snapshot being copied.
const SNAPSHOT_POLL: Duration = Duration::from_millis(10);

/// The applier thread's state.
pub(super) struct Applier<SM: StateMachine> {
    state_machine: SM,
    /// The last index applied (or skipped), published in `progress` after each batch.
    applied: LogIndex,
    /// What the state machine held at start; entries up to it are skipped.
    state_machine_applied: LogIndex,
    progress: Arc<AtomicU64>,
    apply_batch_max: usize,
    proposals: BTreeMap<LogIndex, Pending<SM::Output>>,
    reads: Vec<(LogIndex, ReadReply)>,
    /// Membership changes whose joint configuration is applied: answered once an entry
    /// leaving it is applied.
    joint_waiters: Vec<ConfReply>,
    snapshots: SnapshotPolicy<SM::Output>,
    /// The applied index when a snapshot was last taken (or restored, or at start).
    last_snapshot: LogIndex,
    /// The size of the last snapshot taken or restored (0 before the first).
    last_snapshot_bytes: u64,
    /// Command bytes applied since the last snapshot.
    applied_bytes_since_snapshot: u64,
    /// A snapshot being copied by the state machine's job: its index, and the thread.
    snapshot_copying: Option<(LogIndex, std::thread::JoinHandle<Option<Bytes>>)>,
    /// A snapshot copied but not yet taken by the node's inbox, which was full.
    snapshot_copied: Option<(LogIndex, Bytes)>,
    /// Set once the state machine reported a failure: the applier stops.
    failed: bool,
}

/// A proposal waiting for its entry to be applied.
struct Pending<O> {
    term: Term,
    reply: Reply<O>,
}

impl<SM: StateMachine> Applier<SM> {
    pub(super) fn new(
        state_machine: SM,
        applied: LogIndex,
        progress: Arc<AtomicU64>,
        apply_batch_max: usize,
        snapshots: SnapshotPolicy<SM::Output>,
    ) -> Applier<SM> {
        assert!(apply_batch_max > 0, "apply_batch_max must be positive");
        let state_machine_applied = state_machine.applied_index();
        progress.store(applied.0, Ordering::Release);
        Applier {
            state_machine,
            applied,
            state_machine_applied,
            progress,
            apply_batch_max,
            proposals: BTreeMap::new(),
            reads: Vec::new(),
            joint_waiters: Vec::new(),
            snapshots,
            last_snapshot: applied,
            last_snapshot_bytes: 0,
            snapshot_copying: None,
            snapshot_copied: None,
            applied_bytes_since_snapshot: 0,
            failed: false,
        }
    }

    /// Runs until the node's thread drops its end of `jobs`. Waiters still pending then
    /// are dropped, which their callers see as the node having stopped.
    pub(super) fn run(mut self, jobs: &Receiver<ApplyJob<SM::Output>>) {
        let mut next_forget = Instant::now() + FORGET_PERIOD;
        let mut entries = Vec::new();
        loop {
            // While a snapshot is being copied, or waits for room in the node's inbox,
            // wake soon even without work: to hand it over, and to take the next one if
            // it fell due meanwhile (no more entries may come to prompt it).
            let wait = if self.snapshot_in_flight() {
                SNAPSHOT_POLL
            } else {
                FORGET_PERIOD
            };
            match jobs.recv_timeout(wait) {
                Ok(job) => self.take(job, &mut entries),
                Err(RecvTimeoutError::Timeout) => self.maybe_snapshot(),
                Err(RecvTimeoutError::Disconnected) => {
                    self.finish_snapshot();
                    return;
                }
            }
            while entries.len() < self.apply_batch_max {
                match jobs.try_recv() {
                    Ok(job) => self.take(job, &mut entries),
                    Err(_) => break,
                }
            }
            let applying = !entries.is_empty();
            if applying {
                self.apply(std::mem::take(&mut entries));
            }
            if self.failed {
                // Waiting reads and proposals are dropped: their callers see the node
                // stopped.
                return;
            }
            if applying {
                self.maybe_snapshot();
            }
            self.answer_reads();
            if Instant::now() >= next_forget {
                self.proposals.retain(|_, p| !p.reply.is_closed());
                self.reads.retain(|(_, reply)| !reply.is_closed());
                self.joint_waiters.retain(|reply| !reply.is_closed());
                next_forget = Instant::now() + FORGET_PERIOD;
            }
        }
    }

    fn take(&mut self, job: ApplyJob<SM::Output>, entries: &mut Vec<Entry>) {
        match job {
            ApplyJob::Proposed(proposals) => {
                for (index, term, reply) in proposals {
                    let previous = self.proposals.insert(index, Pending { term, reply });
                    // An older proposal at the same index was truncated away.
                    if let Some(previous) = previous {
                        previous.reply.superseded(index);
                    }
                }
            }
            ApplyJob::Committed(run) => entries.extend(run),
            ApplyJob::Read { index, reply } => self.reads.push((index, reply)),
            ApplyJob::Restore { index, data, done } => {
                // Entries queued before the snapshot come first.
                if !entries.is_empty() {
                    self.apply(std::mem::take(entries));
                }
                if self.failed {
                    let _ = done.send(Err(RestoreError {
                        index,
                        reason: "the state machine failed before the snapshot".to_owned(),
                    }));
                    return;
                }
                let _ = done.send(self.restore(index, &data));
            }
        }
    }

    fn restore(&mut self, index: LogIndex, data: &[u8]) -> Result<(), RestoreError> {
        assert!(
            index > self.applied,
            "a snapshot at {index} restored at or below the applied index {}",
            self.applied
        );
        self.state_machine.restore(index, data)?;
        let held = self.state_machine.applied_index();
        if held != index {
            return Err(RestoreError {
                index,
                reason: format!("the state machine reports index {held} after restoring"),
            });
        }
        self.applied = index;
        self.state_machine_applied = index;
        self.last_snapshot = index;
        self.last_snapshot_bytes = data.len() as u64;
        self.applied_bytes_since_snapshot = 0;
        self.progress.store(index.0, Ordering::Release);
        // Entries up to the snapshot are never handed out one by one: whether a waiting
        // proposal among them took effect is unknown, so its caller hears that the node
        // let go of it.
        while let Some(first) = self.proposals.first_entry() {
            if *first.key() > index {
                break;
            }
            first.remove();
        }
        // Whether the snapshot left a joint configuration is not known here either.
        self.joint_waiters.clear();
        Ok(())
    }

    /// Starts a snapshot once `snapshot_every_entries` entries were applied since the
    /// last and their commands add up to `snapshot_log_growth_percent` of its size. The
    /// state machine's job copies the state on a thread of its own, one snapshot at a
    /// time, while applying goes on.
    fn maybe_snapshot(&mut self) {
        self.deliver_snapshot();
        let schedule = &self.snapshots.schedule;
        if !schedule.snapshots()
            || self.snapshot_in_flight()
            || self.applied.0 - self.last_snapshot.0 < schedule.entries_due()
            || !self.log_grew_enough()
            || self.snapshots.unsupported.load(Ordering::Relaxed)
        {
            return;
        }
        let index = self.state_machine.applied_index();
        // Counted from here, taken or not: the next try waits for as many entries again,
        // stretched anew.
        self.last_snapshot = self.applied;
        self.snapshots.schedule.draw();
        let Some(job) = self.state_machine.begin_snapshot() else {
            return;
        };
        assert!(
            index <= self.applied,
            "the state machine is ahead of the log"
        );
        self.applied_bytes_since_snapshot = 0;
        let copying = self.snapshots.spawner.spawn(NodeThread::SnapshotCopy, job);
        // Without a thread to spare, this snapshot is skipped like a failed one.
        if let Ok(thread) = copying {
            self.snapshot_copying = Some((index, thread));
        }
    }

    /// Whether a snapshot is being copied, or waits to be handed to the node's thread.
    fn snapshot_in_flight(&self) -> bool {
        self.snapshot_copying.is_some() || self.snapshot_copied.is_some()
    }

    /// Hands a snapshot whose copy finished to the node's thread; one the node's inbox
    /// has no room for waits for the next call.
    fn deliver_snapshot(&mut self) {
        if self
            .snapshot_copying
            .as_ref()
            .is_some_and(|(_, thread)| thread.is_finished())
            && let Some((index, thread)) = self.snapshot_copying.take()
            // A job that panicked failed, like one that returned `None`.
            && let Ok(Some(data)) = thread.join()
            // Not one begun before a snapshot from the leader replaced the state.
            && index >= self.state_machine_applied
        {
            self.last_snapshot_bytes = data.len() as u64;
            self.snapshot_copied = Some((index, data));
        }
        let Some((index, data)) = self.snapshot_copied.take() else {
            return;
        };
        // Anything but a full inbox: sent, or the node is stopping.
        if let Err(TrySendError::Full(Input::SnapshotTaken { index, data })) = self
            .snapshots
            .inbox
            .try_send(Input::SnapshotTaken { index, data })
        {
            self.snapshot_copied = Some((index, data));
        }
    }

    /// Waits for a snapshot still being copied, so its view of the state is let go.
    fn finish_snapshot(&mut self) {
        if let Some((_, thread)) = self.snapshot_copying.take() {
            let _ = thread.join();
        }
    }

    /// Whether the commands applied since the last snapshot are large enough, next to
    /// it, for another to be worth its cost.
    fn log_grew_enough(&self) -> bool {
        let wanted = self.snapshots.schedule.growth_due(self.last_snapshot_bytes);
        u128::from(self.applied_bytes_since_snapshot) >= wanted
    }

    fn apply(&mut self, committed: Vec<Entry>) {
        debug_assert!(!self.failed, "a failed applier applies nothing more");
        let mut batch: Vec<(LogIndex, Bytes)> = Vec::new();
        let mut answers = Vec::with_capacity(committed.len());
        for entry in committed {
            assert_eq!(
                entry.index,
                self.applied.next(),
                "committed entries arrive in order without gaps"
            );
            self.applied = entry.index;
            // Only commands reach the state machine; configuration entries and no-ops
            // only advance the applied index.
            let kind = match entry.kind {
                EntryKind::Normal if entry.index > self.state_machine_applied => {
                    self.applied_bytes_since_snapshot += entry.data.len() as u64;
                    batch.push((entry.index, entry.data));
                    Kind::Command
                }
                EntryKind::ConfChange => match ConfChangeRecord::decode(&entry.data) {
                    Ok(record) => Kind::Conf(record.conf_state),
                    Err(_) => Kind::Other,
                },
                _ => Kind::Other,
            };
            answers.push((entry.index, entry.term, kind));
        }
        let mut outputs = if batch.is_empty() {
            Vec::new()
        } else {
            self.state_machine.apply_batch(&batch)
        };
        assert_eq!(
            outputs.len(),
            batch.len(),
            "apply_batch returns one output per entry"
        );
        let failure = if batch.is_empty() {
            None
        } else {
            self.state_machine.failure()
        };
        if let Some(reason) = failure {
            // Nothing of the batch counts as applied: no read is answered on it, and a
            // restart applies it again from the log.
            self.failed = true;
            let _ = self.snapshots.inbox.send(Input::ApplierFailed { reason });
        } else {
            self.progress.store(self.applied.0, Ordering::Release);
        }
        outputs.reverse();
        for (index, term, kind) in answers {
            let outcome = match kind {
                Kind::Command => Outcome::Output(outputs.pop().expect("one output per command")),
                Kind::Conf(conf) => {
                    if !conf.is_joint() {
                        for reply in self.joint_waiters.drain(..) {
                            let _ = reply.send(Ok(conf.clone()));
                        }
                    }
                    Outcome::Conf(conf)
                }
                Kind::Other => Outcome::Nothing,
            };
            self.answer_proposal(index, term, outcome);
        }
    }

    /// Answers the proposal at `index`, if this node made it, and every older one still
    /// waiting: those indices hold other entries now, so those proposals are lost.
    fn answer_proposal(&mut self, index: LogIndex, term: Term, outcome: Outcome<SM::Output>) {
        let mut outcome = Some(outcome);
        while let Some(first) = self.proposals.first_entry() {
            if *first.key() > index {
                break;
            }
            let (at, pending) = first.remove_entry();
            if at != index || pending.term != term {
                pending.reply.superseded(at);
                continue;
            }
            match (pending.reply, outcome.take()) {
                (Reply::Command(reply), Some(Outcome::Output(output))) => {
                    let _ = reply.send(Ok(output));
                }
                (Reply::ConfChange(reply), Some(Outcome::Conf(conf))) => {
                    if conf.is_joint() {
                        // Answered once the leader's entry leaving the joint phase applies.
                        self.joint_waiters.push(reply);
                    } else {
                        let _ = reply.send(Ok(conf));
                    }
                }
                (reply, _) => reply.superseded(at),
            }
        }
    }

    fn answer_reads(&mut self) {
        if self.reads.is_empty() {
            return;
        }
        let applied = self.applied;
        let (ready, waiting) = std::mem::take(&mut self.reads)
            .into_iter()
            .partition(|(index, _)| *index <= applied);
        self.reads = waiting;
        for (index, reply) in ready {
            let _ = reply.send(Ok(index));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::mpsc::{Receiver, channel, sync_channel};
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::Duration;

    use aegis_raft::{Entry, EntryKind, LogIndex, Term};
    use bytes::Bytes;

    use super::super::driver::Input;
    use super::super::threads::Spawner;
    use super::super::{SnapshotJob, StateMachine};
    use super::{Applier, ApplyJob, SnapshotPolicy, SnapshotSchedule};

    /// Counts what it applies; its snapshot is the count.
    struct Counter(LogIndex);

    impl StateMachine for Counter {
        type Output = ();

        fn apply(&mut self, index: LogIndex, _data: &[u8]) {
            self.0 = index;
        }

        fn applied_index(&self) -> LogIndex {
            self.0
        }

        fn snapshot(&mut self) -> Option<Bytes> {
            Some(Bytes::copy_from_slice(&self.0.0.to_le_bytes()))
        }
    }

    /// An applier of `state_machine` snapshotting on `schedule`, and the inbox its
    /// snapshots go to.
    fn applier<SM: StateMachine<Output = ()>>(
        state_machine: SM,
        schedule: SnapshotSchedule,
    ) -> (Applier<SM>, Receiver<Input<()>>) {
        let (inbox, taken) = sync_channel(1024);
        let applier = Applier::new(
            state_machine,
            LogIndex(0),
            Arc::new(AtomicU64::new(0)),
            16,
            SnapshotPolicy {
                schedule,
                unsupported: Arc::new(AtomicBool::new(false)),
                inbox,
                spawner: Spawner::new(1, None),
            },
        );
        (applier, taken)
    }

    /// The indexes at which an applier with `schedule` snapshots while applying
    /// `entries` entries one at a time, each snapshot delivered before the next entry.
    fn snapshot_indexes(schedule: SnapshotSchedule, entries_applied: u64) -> Vec<u64> {
        let (mut applier, taken) = applier(Counter(LogIndex(0)), schedule);
        for index in 1..=entries_applied {
            applier.apply(entries(index..=index));
            applier.maybe_snapshot();
            while applier.snapshot_in_flight() {
                std::thread::yield_now();
                applier.deliver_snapshot();
            }
        }
        taken
            .try_iter()
            .filter_map(|input| match input {
                Input::SnapshotTaken { index, .. } => Some(index.0),
                _ => None,
            })
            .collect()
    }

    /// Counts what it applies and the snapshots it begins; each snapshot's copy waits
    /// until `gate` is open.
    struct Gated {
        applied: LogIndex,
        begun: Arc<AtomicU64>,
        gate: Arc<(Mutex<bool>, Condvar)>,
    }

    impl StateMachine for Gated {
        type Output = ();

        fn apply(&mut self, index: LogIndex, _data: &[u8]) {
            self.applied = index;
        }

        fn applied_index(&self) -> LogIndex {
            self.applied
        }

        fn begin_snapshot(&mut self) -> Option<SnapshotJob> {
            self.begun.fetch_add(1, Ordering::SeqCst);
            let gate = Arc::clone(&self.gate);
            Some(Box::new(move || {
                let (open, opened) = &*gate;
                let mut open = open.lock().unwrap();
                while !*open {
                    open = opened.wait(open).unwrap();
                }
                Some(Bytes::new())
            }))
        }
    }

    fn entries(range: std::ops::RangeInclusive<u64>) -> Vec<Entry> {
        range
            .map(|index| Entry {
                term: Term(1),
                index: LogIndex(index),
                kind: EntryKind::Normal,
                data: Bytes::from_static(b"x"),
            })
            .collect()
    }

    #[test]
    fn a_snapshot_due_while_another_is_copied_is_taken_once_that_one_is_done() {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let begun = Arc::new(AtomicU64::new(0));
        let (applier, taken) = applier(
            Gated {
                applied: LogIndex(0),
                begun: Arc::clone(&begun),
                gate: Arc::clone(&gate),
            },
            SnapshotSchedule::new(10, 0, 0, 1),
        );
        let (jobs, queue) = channel();
        let running = std::thread::spawn(move || applier.run(&queue));
        // The snapshot at 10 starts and is held; the one due at 20 cannot start yet, and
        // no entry comes after it.
        jobs.send(ApplyJob::Committed(entries(1..=10))).unwrap();
        while begun.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        jobs.send(ApplyJob::Committed(entries(11..=20))).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(begun.load(Ordering::SeqCst), 1, "one copy at a time");
        assert!(taken.try_recv().is_err(), "the first copy is held");
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        let mut indexes = Vec::new();
        while indexes.len() < 2 {
            match taken.recv_timeout(Duration::from_secs(10)) {
                Ok(Input::SnapshotTaken { index, .. }) => indexes.push(index.0),
                Ok(_) => {}
                Err(e) => panic!("snapshots taken: {indexes:?}, then {e}"),
            }
        }
        assert_eq!(indexes, [10, 20]);
        drop(jobs);
        running.join().unwrap();
    }

    #[test]
    fn an_applier_snapshots_on_its_own_stretched_thresholds() {
        let exact = snapshot_indexes(SnapshotSchedule::new(20, 0, 0, 1), 200);
        assert_eq!(exact, (1..=10).map(|n| n * 20).collect::<Vec<_>>());
        let mut seen = Vec::new();
        for seed in [1, 2, 3] {
            let indexes = snapshot_indexes(SnapshotSchedule::new(20, 0, 50, seed), 200);
            let mut last = 0;
            for &index in &indexes {
                assert!(
                    (20..=30).contains(&(index - last)),
                    "seed {seed}: {indexes:?}"
                );
                last = index;
            }
            assert!(200 - last < 30, "seed {seed}: {indexes:?}");
            seen.push(indexes);
        }
        assert!(
            seen[0] != seen[1] && seen[1] != seen[2] && seen[0] != seen[2],
            "{seen:?}"
        );
    }

    /// The thresholds of `draws` successive snapshots: (entries, growth of 1000 bytes).
    fn thresholds(schedule: &mut SnapshotSchedule, draws: usize) -> Vec<(u64, u128)> {
        (0..draws)
            .map(|_| {
                let due = (schedule.entries_due(), schedule.growth_due(1000));
                schedule.draw();
                due
            })
            .collect()
    }

    #[test]
    fn without_a_stretch_the_thresholds_are_exact() {
        let mut schedule = SnapshotSchedule::new(100, 50, 0, 7);
        for due in thresholds(&mut schedule, 100) {
            assert_eq!(due, (100, 500));
        }
        assert!(!SnapshotSchedule::new(0, 50, 30, 7).snapshots());
        // Huge thresholds saturate rather than overflow.
        let mut huge = SnapshotSchedule::new(u64::MAX, u32::MAX, 100, 7);
        for _ in 0..20 {
            assert_eq!(huge.entries_due(), u64::MAX);
            assert!(huge.growth_due(u64::MAX) >= u128::from(u64::MAX));
            huge.draw();
        }
    }

    #[test]
    fn stretches_stay_in_range_spread_out_and_follow_the_seed() {
        let mut schedule = SnapshotSchedule::new(100, 50, 40, 7);
        let drawn = thresholds(&mut schedule, 1000);
        for &(entries, growth) in &drawn {
            assert!((100..=140).contains(&entries), "{entries} entries");
            assert!((500..=700).contains(&growth), "{growth} bytes");
            // One stretch for both thresholds.
            assert_eq!(growth, u128::from(entries) * 5, "stretched alike");
        }
        let entries: Vec<u64> = drawn.iter().map(|d| d.0).collect();
        assert!(entries.iter().any(|&e| e <= 104) && entries.iter().any(|&e| e >= 136));
        // No value of the 41 takes more than a tenth of 1000 draws.
        for value in 100..=140 {
            let count = entries.iter().filter(|&&e| e == value).count();
            assert!(count < 100, "{value} drawn {count} times");
        }
        let mut same = SnapshotSchedule::new(100, 50, 40, 7);
        assert_eq!(thresholds(&mut same, 1000), drawn);
        let mut other = SnapshotSchedule::new(100, 50, 40, 8);
        assert_ne!(thresholds(&mut other, 1000), drawn);
    }
}
