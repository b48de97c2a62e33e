use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::batch::{LogBatch, OpKind};
use crate::config::{LogConfig, SyncPolicy};
use crate::error::{Error, Result, io_err};
use crate::format::{
    self, GroupState, RECORD_BYTES_LIMIT, Record, SEGMENT_HEADER_LEN, encode_segment_header,
};
use crate::index::{GroupIndex, Loc};
use crate::recover;
use crate::vfs::{StdVfs, Vfs, VfsFile};

/// One log entry as read back.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    /// The entry's index in its group.
    pub index: u64,
    /// The term it was written in.
    pub term: u64,
    /// Its opaque data.
    pub data: Vec<u8>,
}

/// Counters since the log was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogStats {
    /// Writes acknowledged as successful.
    pub writes: u64,
    /// Group-commit batches written (each ended by at most one fsync of the log).
    pub batches: u64,
    /// fsync calls on segment files, including those at segment rollover.
    pub syncs: u64,
    /// Record bytes written.
    pub bytes: u64,
}

/// A durable, segmented write-ahead log shared by many Raft groups.
///
/// `Log` is `Send + Sync`; share it with an `Arc`. Writers block in [`Log::write`] until
/// their records are durable (under [`SyncPolicy::EveryBatch`]); concurrent writers are
/// combined into one batch and one fsync. Readers never wait for an fsync; they see a
/// write's entries from the moment its bytes are handed to the operating system, which
/// is before the write is acknowledged.
#[derive(Debug)]
pub struct Log {
    env: Env,
    inner: Mutex<Inner>,
    queue: Mutex<Queue>,
    queue_cv: Condvar,
    states: Mutex<BTreeMap<u64, GroupState>>,
    poisoned: AtomicBool,
    counters: Counters,
}

#[derive(Debug)]
pub(crate) struct Env {
    pub(crate) dir: PathBuf,
    pub(crate) config: LogConfig,
    pub(crate) vfs: Arc<dyn Vfs>,
}

impl Env {
    pub(crate) fn sync_enabled(&self) -> bool {
        self.config.sync == SyncPolicy::EveryBatch
    }

    pub(crate) fn segment_path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.wal"))
    }

    pub(crate) fn state_path(&self, group: u64) -> PathBuf {
        self.dir.join(format!("group-{group:020}.state"))
    }
}

#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) path: PathBuf,
    pub(crate) file: Arc<dyn VfsFile>,
    /// Entries in this segment still referenced by the index.
    pub(crate) live: u64,
}

/// Everything the writer changes, behind one mutex.
#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub(crate) groups: BTreeMap<u64, GroupIndex>,
    pub(crate) segments: BTreeMap<u64, Segment>,
    pub(crate) active: u64,
    /// Logical end of the active segment, staged bytes included.
    pub(crate) active_len: u64,
    /// End of what was handed to the file.
    pub(crate) flushed_len: u64,
    /// End of the header and compaction markers that open the active segment.
    pub(crate) active_base: u64,
    /// Length of the active segment file: past `flushed_len` it holds zeros written
    /// ahead of time, so that an fsync after an append need not persist a new length.
    pub(crate) allocated_len: u64,
    pub(crate) staged: Vec<u8>,
    pub(crate) syncs: u64,
}

#[derive(Debug, Default)]
struct Queue {
    pending: VecDeque<Pending>,
    leader: bool,
    next_ticket: u64,
    /// Every ticket below this is finished.
    done_below: u64,
    failed: BTreeMap<u64, Error>,
}

#[derive(Debug)]
struct Pending {
    ticket: u64,
    batch: LogBatch,
}

#[derive(Debug, Default)]
struct Counters {
    writes: AtomicU64,
    batches: AtomicU64,
    syncs: AtomicU64,
    bytes: AtomicU64,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Log {
    /// Opens (creating if needed) the log in `dir` on the real file system, recovering
    /// whatever a previous process left there.
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Log> {
        Self::open_with(Arc::new(StdVfs), dir, config)
    }

    /// Opens the log in `dir` on the given file system.
    ///
    /// Recovery replays every segment in order. A torn record at the end of the last
    /// segment (a crash during a write) is cut off; any other damage is returned as
    /// [`Error::Corrupt`] naming the file and offset, and the log refuses to open.
    pub fn open_with(vfs: Arc<dyn Vfs>, dir: impl AsRef<Path>, config: LogConfig) -> Result<Log> {
        config.validate()?;
        let env = Env {
            dir: dir.as_ref().to_path_buf(),
            config,
            vfs,
        };
        let (inner, states) = recover::recover(&env)?;
        Ok(Log {
            env,
            inner: Mutex::new(inner),
            queue: Mutex::new(Queue::default()),
            queue_cv: Condvar::new(),
            states: Mutex::new(states),
            poisoned: AtomicBool::new(false),
            counters: Counters::default(),
        })
    }

    /// The configuration the log was opened with.
    #[must_use]
    pub fn config(&self) -> &LogConfig {
        &self.env.config
    }

    /// The file system the log writes through.
    pub(crate) fn vfs(&self) -> &Arc<dyn Vfs> {
        &self.env.vfs
    }

    /// The directory holding the log's files.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.env.dir
    }

    /// Writes `batch` and returns once it is durable (per the sync policy). Concurrent
    /// callers share one write and one fsync. The batch is rejected as a whole, with
    /// nothing written, if a record is too large or an operation breaks a group's
    /// contiguity.
    pub fn write(&self, batch: LogBatch) -> Result<()> {
        self.check_poisoned()?;
        self.check_limits(&batch)?;
        if batch.is_empty() {
            return Ok(());
        }
        let mut q = lock(&self.queue);
        while q.pending.len() >= self.env.config.queue_writes_max {
            q = self
                .queue_cv
                .wait(q)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let ticket = q.next_ticket;
        q.next_ticket += 1;
        q.pending.push_back(Pending { ticket, batch });
        loop {
            if ticket < q.done_below {
                return q.failed.remove(&ticket).map_or(Ok(()), Err);
            }
            if q.leader {
                q = self
                    .queue_cv
                    .wait(q)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            assert!(
                !q.pending.is_empty(),
                "an unfinished ticket must still be queued"
            );
            q.leader = true;
            q = self.gather(q);
            let taken = self.take_batch(&mut q);
            drop(q);
            self.queue_cv.notify_all();
            let first = taken[0].ticket;
            let last = taken[taken.len() - 1].ticket;
            debug_assert_eq!(
                last - first + 1,
                taken.len() as u64,
                "tickets leave in order"
            );
            let mut guard = LeaderGuard {
                log: self,
                tickets: Some(first..=last),
            };
            let failed = self.commit(taken, ticket);
            guard.tickets = None;
            q = lock(&self.queue);
            assert!(q.leader && q.done_below <= last);
            q.leader = false;
            q.done_below = last + 1;
            q.failed.extend(failed);
            self.queue_cv.notify_all();
        }
    }

    /// Appends one entry to `group`; see [`LogBatch::append`].
    pub fn append(&self, group: u64, index: u64, term: u64, data: &[u8]) -> Result<()> {
        let mut batch = LogBatch::new();
        batch.append(group, index, term, data);
        self.write(batch)
    }

    /// Durably removes `group`'s entries at or after `index`; see
    /// [`LogBatch::truncate_suffix`].
    pub fn truncate_suffix(&self, group: u64, index: u64) -> Result<()> {
        let mut batch = LogBatch::new();
        batch.truncate_suffix(group, index);
        self.write(batch)
    }

    /// Durably removes `group`'s entries before `index` and deletes the segments that no
    /// longer hold a live entry; see [`LogBatch::compact`].
    pub fn compact(&self, group: u64, index: u64) -> Result<()> {
        let mut batch = LogBatch::new();
        batch.compact(group, index);
        self.write(batch)
    }

    /// The entry of `group` at `index`, if the log holds it.
    pub fn entry(&self, group: u64, index: u64) -> Result<Option<Entry>> {
        let mut found = self.entries(group, index..index.saturating_add(1), 0)?;
        Ok(found.pop())
    }

    /// The entries of `group` held in `range`, in index order. Reading stops before the
    /// entry that would take the encoded size of what was read past `bytes_max`, but at
    /// least one entry is returned if any is held. Indices the log does not hold are skipped, so callers
    /// check [`Log::first_index`] and [`Log::last_index`] first.
    pub fn entries(&self, group: u64, range: Range<u64>, bytes_max: u64) -> Result<Vec<Entry>> {
        self.check_poisoned()?;
        let plan = self.plan_read(group, range, bytes_max);
        let mut out = Vec::with_capacity(plan.iter().map(|r| r.locs.len()).sum());
        for run in plan {
            self.read_run(group, &run, &mut out)?;
        }
        Ok(out)
    }

    /// The term of `group`'s entry at `index`, from the in-memory index.
    #[must_use]
    pub fn term(&self, group: u64, index: u64) -> Option<u64> {
        let inner = lock(&self.inner);
        inner.groups.get(&group)?.get(index).map(|loc| loc.term)
    }

    /// Index of `group`'s first held entry.
    #[must_use]
    pub fn first_index(&self, group: u64) -> Option<u64> {
        let inner = lock(&self.inner);
        let shape = inner.groups.get(&group)?.shape;
        (shape.count > 0).then_some(shape.start)
    }

    /// Index of `group`'s last held entry.
    #[must_use]
    pub fn last_index(&self, group: u64) -> Option<u64> {
        let inner = lock(&self.inner);
        inner.groups.get(&group)?.shape.last()
    }

    /// The highest index `group` was compacted to (0 if never): appends to the group
    /// while it holds no entries must be at or above it.
    #[must_use]
    pub fn compacted_to(&self, group: u64) -> u64 {
        let inner = lock(&self.inner);
        inner.groups.get(&group).map_or(0, |g| g.shape.floor)
    }

    /// Groups that hold entries or were compacted, in ascending order.
    #[must_use]
    pub fn groups(&self) -> Vec<u64> {
        let inner = lock(&self.inner);
        inner
            .groups
            .iter()
            .filter(|(_, g)| g.shape.count > 0 || g.shape.floor > 0)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Writes queued behind the batch being written.
    #[must_use]
    pub fn queued_writes(&self) -> usize {
        lock(&self.queue).pending.len()
    }

    /// Number of segment files the log currently keeps.
    #[must_use]
    pub fn segment_count(&self) -> usize {
        lock(&self.inner).segments.len()
    }

    /// Counters since open.
    #[must_use]
    pub fn stats(&self) -> LogStats {
        let c = &self.counters;
        LogStats {
            writes: c.writes.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            syncs: c.syncs.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
        }
    }

    /// Durably replaces `group`'s hard state and metadata: the new state is written to a
    /// temporary file, fsynced, renamed over the old one and the directory fsynced, so a
    /// crash leaves either the old or the new state, never a mix.
    pub fn save_state(&self, group: u64, state: &GroupState) -> Result<()> {
        let max = self.env.config.state_bytes_max;
        if state.metadata.len() as u64 > u64::from(max) {
            return Err(Error::StateTooLarge {
                len: state.metadata.len() as u64,
                max,
            });
        }
        let bytes = format::encode_state(group, state);
        let mut states = lock(&self.states);
        let path = self.env.state_path(group);
        let tmp = path.with_extension("state.tmp");
        let vfs = &self.env.vfs;
        let file = vfs.create(&tmp).map_err(io_err("create", &tmp))?;
        file.write_all_at(&bytes, 0)
            .map_err(io_err("write", &tmp))?;
        if self.env.sync_enabled() {
            file.sync_data().map_err(io_err("fsync", &tmp))?;
        }
        drop(file);
        vfs.rename(&tmp, &path).map_err(io_err("rename", &tmp))?;
        if self.env.sync_enabled() {
            vfs.sync_dir(&self.env.dir)
                .map_err(io_err("fsync", &self.env.dir))?;
        }
        states.insert(group, state.clone());
        Ok(())
    }

    /// `group`'s last saved state, if any.
    #[must_use]
    pub fn state(&self, group: u64) -> Option<GroupState> {
        lock(&self.states).get(&group).cloned()
    }

    fn check_poisoned(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(Error::Poisoned);
        }
        Ok(())
    }

    fn check_limits(&self, batch: &LogBatch) -> Result<()> {
        let config = &self.env.config;
        if let Some(len) = batch.unframeable {
            return Err(Error::RecordTooLarge {
                len,
                max: config.record_bytes_max,
            });
        }
        let frame_max = format::FRAME_HEADER_LEN + config.record_bytes_max as usize;
        if let Some(op) = batch.ops.iter().find(|op| op.frame_len > frame_max) {
            let len = (op.frame_len - format::FRAME_HEADER_LEN) as u64;
            return Err(Error::RecordTooLarge {
                len,
                max: config.record_bytes_max,
            });
        }
        if batch.buf.len() as u64 > config.batch_bytes_max {
            return Err(Error::WriteTooLarge {
                len: batch.buf.len() as u64,
                max: config.batch_bytes_max,
            });
        }
        Ok(())
    }

    /// Lets writers that are about to queue (typically the ones the previous batch just
    /// released) join the new batch: yields the processor while the queue keeps growing,
    /// at most `batch_gather_yields_max` times. Costs one yield when nobody else writes.
    fn gather<'a>(&'a self, mut q: MutexGuard<'a, Queue>) -> MutexGuard<'a, Queue> {
        let mut seen = q.pending.len();
        for _ in 0..self.env.config.batch_gather_yields_max {
            if seen >= self.env.config.batch_writes_max {
                break;
            }
            drop(q);
            std::thread::yield_now();
            q = lock(&self.queue);
            if q.pending.len() <= seen {
                break;
            }
            seen = q.pending.len();
        }
        q
    }

    /// Takes the writes for the next batch from the front of the queue: at least one,
    /// then as many as fit in the batch limits.
    fn take_batch(&self, q: &mut Queue) -> Vec<Pending> {
        let config = &self.env.config;
        let mut taken: Vec<Pending> = Vec::new();
        let mut bytes = 0u64;
        while let Some(next) = q.pending.front() {
            let len = next.batch.buf.len() as u64;
            let full = taken.len() >= config.batch_writes_max
                || (!taken.is_empty() && bytes + len > config.batch_bytes_max);
            if full {
                break;
            }
            bytes += len;
            taken.extend(q.pending.pop_front());
        }
        assert!(!taken.is_empty());
        taken
    }

    /// Writes and syncs one batch as its leader; returns the writes that failed.
    fn commit(&self, taken: Vec<Pending>, leader: u64) -> Vec<(u64, Error)> {
        if self.poisoned.load(Ordering::Acquire) {
            return taken.iter().map(|p| (p.ticket, Error::Poisoned)).collect();
        }
        let mut rejected = Vec::new();
        let result = self.commit_inner(&taken, &mut rejected);
        let c = &self.counters;
        match result {
            Ok(syncs) => {
                let accepted = taken.len() - rejected.len();
                let bytes: usize = taken
                    .iter()
                    .filter(|p| !rejected.iter().any(|(t, _)| *t == p.ticket))
                    .map(|p| p.batch.buf.len())
                    .sum();
                c.writes.fetch_add(accepted as u64, Ordering::Relaxed);
                c.batches.fetch_add(1, Ordering::Relaxed);
                c.syncs.fetch_add(syncs, Ordering::Relaxed);
                c.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
                rejected
            }
            Err(error) => {
                self.poisoned.store(true, Ordering::Release);
                let mut error = Some(error);
                let mut failed = rejected;
                for p in &taken {
                    if failed.iter().any(|(t, _)| *t == p.ticket) {
                        continue;
                    }
                    let e = if p.ticket == leader {
                        error.take()
                    } else {
                        None
                    };
                    failed.push((p.ticket, e.unwrap_or(Error::Poisoned)));
                }
                failed
            }
        }
    }

    /// Validates, stages and writes the batch, then syncs it and deletes segments it
    /// made reclaimable. Returns the number of fsyncs of segment files.
    fn commit_inner(&self, taken: &[Pending], rejected: &mut Vec<(u64, Error)>) -> Result<u64> {
        let env = &self.env;
        let mut inner = lock(&self.inner);
        let syncs_before = inner.syncs;
        let mut accepted = 0;
        for p in taken {
            if let Err(e) = inner.validate(&p.batch) {
                rejected.push((p.ticket, e));
                continue;
            }
            inner.stage(env, &p.batch)?;
            accepted += 1;
        }
        inner.flush(env)?;
        let doomed = inner.reclaimable();
        let active = Arc::clone(&inner.segments[&inner.active].file);
        let active_path = inner.segments[&inner.active].path.clone();
        let mut syncs = inner.syncs - syncs_before;
        drop(inner);
        if accepted > 0 && env.sync_enabled() {
            active.sync_data().map_err(io_err("fsync", active_path))?;
            syncs += 1;
        }
        for segment in doomed {
            env.vfs
                .remove(&segment.path)
                .map_err(io_err("remove", &segment.path))?;
            if env.sync_enabled() {
                env.vfs
                    .sync_dir(&env.dir)
                    .map_err(io_err("fsync", &env.dir))?;
            }
        }
        Ok(syncs)
    }

    fn plan_read(&self, group: u64, range: Range<u64>, bytes_max: u64) -> Vec<ReadRun> {
        let inner = lock(&self.inner);
        let Some(g) = inner.groups.get(&group) else {
            return Vec::new();
        };
        let Some(last) = g.shape.last() else {
            return Vec::new();
        };
        let lo = range.start.max(g.shape.start);
        let hi = range.end.min(last + 1);
        let mut runs: Vec<ReadRun> = Vec::new();
        let mut bytes = 0u64;
        for index in lo..hi {
            let loc = g.get(index).expect("index inside the group's shape");
            bytes += u64::from(loc.frame_len);
            if bytes > bytes_max && !runs.is_empty() {
                break;
            }
            let extends = runs.last().is_some_and(|r| {
                let prev = r.locs.last().expect("runs are never empty").1;
                prev.segment == loc.segment && prev.offset + u64::from(prev.frame_len) == loc.offset
            });
            if !extends {
                let segment = &inner.segments[&loc.segment];
                runs.push(ReadRun {
                    file: Arc::clone(&segment.file),
                    path: segment.path.clone(),
                    locs: Vec::new(),
                });
            }
            runs.last_mut()
                .expect("just pushed")
                .locs
                .push((index, loc));
        }
        runs
    }

    fn read_run(&self, group: u64, run: &ReadRun, out: &mut Vec<Entry>) -> Result<()> {
        let (_, first) = run.locs[0];
        let (_, last) = run.locs[run.locs.len() - 1];
        let len = last.offset + u64::from(last.frame_len) - first.offset;
        let mut buf = vec![0u8; len as usize];
        run.file
            .read_exact_at(&mut buf, first.offset)
            .map_err(io_err("read", &run.path))?;
        let mut at = 0usize;
        for &(index, loc) in &run.locs {
            let corrupt = |reason: String| Error::Corrupt {
                path: run.path.clone(),
                offset: loc.offset,
                reason,
            };
            let (payload, used) = format::decode_frame(&buf[at..], RECORD_BYTES_LIMIT)
                .map_err(|e| corrupt(format!("reading entry {index} of group {group}: {e}")))?;
            match Record::decode(payload) {
                Ok(Record::Entry {
                    group: g,
                    index: i,
                    term,
                    data,
                }) if g == group && i == index && term == loc.term => {
                    out.push(Entry {
                        index,
                        term,
                        data: data.to_vec(),
                    });
                }
                other => {
                    return Err(corrupt(format!(
                        "expected entry {index} of group {group}, found {other:?}"
                    )));
                }
            }
            debug_assert_eq!(used, loc.frame_len as usize);
            at += used;
        }
        Ok(())
    }
}

/// Releases leadership if the leader panics mid-batch, so that the followers of its
/// batch fail with [`Error::Poisoned`] instead of waiting forever.
struct LeaderGuard<'a> {
    log: &'a Log,
    /// The batch's tickets; `None` once the batch finished normally.
    tickets: Option<std::ops::RangeInclusive<u64>>,
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        let Some(tickets) = self.tickets.take() else {
            return;
        };
        self.log.poisoned.store(true, Ordering::Release);
        let mut q = lock(&self.log.queue);
        q.leader = false;
        q.done_below = q.done_below.max(tickets.end() + 1);
        for ticket in tickets {
            q.failed.insert(ticket, Error::Poisoned);
        }
        drop(q);
        self.log.queue_cv.notify_all();
    }
}

struct ReadRun {
    file: Arc<dyn VfsFile>,
    path: PathBuf,
    locs: Vec<(u64, Loc)>,
}

impl Inner {
    /// Checks every operation of `batch` against the current index without changing it.
    fn validate(&self, batch: &LogBatch) -> Result<()> {
        let mut shapes = BTreeMap::new();
        for op in &batch.ops {
            let shape = shapes.entry(op.group).or_insert_with(|| {
                self.groups
                    .get(&op.group)
                    .map(|g| g.shape)
                    .unwrap_or_default()
            });
            match op.kind {
                OpKind::Entry { .. } => {
                    shape.check_append(op.group, op.index)?;
                    shape.append(op.index);
                }
                OpKind::TruncateSuffix => {
                    shape.truncate_suffix(op.index);
                }
                OpKind::Compact => {
                    shape.compact(op.index);
                }
            }
        }
        Ok(())
    }

    /// Copies a validated batch into the staging buffer and applies it to the index,
    /// rolling to a new segment when a record would not fit.
    fn stage(&mut self, env: &Env, batch: &LogBatch) -> Result<()> {
        for op in &batch.ops {
            let frame = &batch.buf[op.frame_start..op.frame_start + op.frame_len];
            let frame_len = frame.len() as u64;
            if self.active_len + frame_len > env.config.segment_bytes_max
                && self.active_len > self.active_base
            {
                self.roll(env)?;
            }
            let loc = Loc {
                term: 0,
                segment: self.active,
                offset: self.active_len,
                frame_len: frame.len() as u32,
            };
            self.staged.extend_from_slice(frame);
            self.active_len += frame_len;
            let kind = match op.kind {
                OpKind::Entry { term } => ApplyKind::Entry(Loc { term, ..loc }),
                OpKind::TruncateSuffix => ApplyKind::TruncateSuffix,
                OpKind::Compact => ApplyKind::Compact,
            };
            self.apply(op.group, op.index, kind)
                .expect("a validated batch applies without error");
        }
        Ok(())
    }

    /// Applies one record to the index. Replay calls this too, so a log replayed on
    /// open follows the same rules as the live one.
    pub(crate) fn apply(&mut self, group: u64, index: u64, kind: ApplyKind) -> Result<()> {
        let removed = match kind {
            ApplyKind::Entry(loc) => {
                let g = self.groups.entry(group).or_default();
                g.shape.check_append(group, index)?;
                g.append(index, loc);
                self.segments
                    .get_mut(&loc.segment)
                    .expect("entry in a known segment")
                    .live += 1;
                return Ok(());
            }
            ApplyKind::TruncateSuffix => match self.groups.get_mut(&group) {
                Some(g) => g.truncate_suffix(index),
                None => Vec::new(),
            },
            ApplyKind::Compact => self.groups.entry(group).or_default().compact(index),
        };
        for loc in removed {
            let segment = self
                .segments
                .get_mut(&loc.segment)
                .expect("entry in a known segment");
            assert!(segment.live > 0, "segment live count underflow");
            segment.live -= 1;
        }
        Ok(())
    }

    /// Hands the staged bytes to the active segment file.
    fn flush(&mut self, env: &Env) -> Result<()> {
        if self.staged.is_empty() {
            return Ok(());
        }
        let segment = &self.segments[&self.active];
        segment
            .file
            .write_all_at(&self.staged, self.flushed_len)
            .map_err(io_err("write", &segment.path))?;
        self.flushed_len += self.staged.len() as u64;
        self.staged.clear();
        assert_eq!(self.flushed_len, self.active_len);
        let chunk = env.config.segment_preallocate_bytes;
        if chunk > 0 && self.flushed_len > self.allocated_len {
            // Zero-fill the next stretch now; the next fsync persists the new length
            // once, and the fsyncs after it only persist data.
            let target = self
                .flushed_len
                .saturating_add(chunk)
                .min(env.config.segment_bytes_max);
            if target > self.flushed_len {
                let zeros = vec![0u8; (target - self.flushed_len) as usize];
                segment
                    .file
                    .write_all_at(&zeros, self.flushed_len)
                    .map_err(io_err("preallocate", &segment.path))?;
            }
            self.allocated_len = target.max(self.flushed_len);
        }
        self.allocated_len = self.allocated_len.max(self.flushed_len);
        Ok(())
    }

    /// Closes the active segment (durably, before anything lands in the next one) and
    /// starts the next, opening it with the compaction point of every compacted group so
    /// that deleting older segments never forgets one.
    fn roll(&mut self, env: &Env) -> Result<()> {
        self.flush(env)?;
        let old = &self.segments[&self.active];
        if self.allocated_len > self.flushed_len {
            // A sealed segment ends at its last record: recovery reads it strictly.
            old.file
                .set_len(self.flushed_len)
                .map_err(io_err("truncate", &old.path))?;
        }
        if env.sync_enabled() {
            old.file.sync_data().map_err(io_err("fsync", &old.path))?;
            self.syncs += 1;
        }
        let seq = self
            .active
            .checked_add(1)
            .ok_or_else(|| Error::InvalidInput {
                reason: "segment sequence numbers are exhausted".into(),
            })?;
        let mut bytes = encode_segment_header(seq).to_vec();
        for (&group, g) in &self.groups {
            if g.shape.floor > 0 {
                Record::Compact {
                    group,
                    index: g.shape.floor,
                }
                .encode_framed(&mut bytes);
            }
        }
        let path = env.segment_path(seq);
        let file = create_segment(env, &path, &bytes)?;
        if env.sync_enabled() {
            self.syncs += 1;
        }
        self.segments.insert(
            seq,
            Segment {
                path,
                file,
                live: 0,
            },
        );
        self.active = seq;
        self.active_len = bytes.len() as u64;
        self.flushed_len = self.active_len;
        self.active_base = self.active_len;
        self.allocated_len = self.active_len;
        Ok(())
    }

    /// Removes from the segment table the oldest segments that hold no live entry (never
    /// the active one) and returns them for deletion once the batch is durable.
    fn reclaimable(&mut self) -> Vec<Segment> {
        let mut doomed = Vec::new();
        while let Some((&seq, segment)) = self.segments.first_key_value() {
            if seq == self.active || segment.live > 0 {
                break;
            }
            doomed.extend(self.segments.pop_first().map(|(_, s)| s));
        }
        doomed
    }
}

/// What a record does to the index.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ApplyKind {
    Entry(Loc),
    TruncateSuffix,
    Compact,
}

/// Creates a segment file holding `bytes` (its header and opening records) and, under
/// [`SyncPolicy::EveryBatch`], makes both the file and its directory entry durable.
pub(crate) fn create_segment(env: &Env, path: &Path, bytes: &[u8]) -> Result<Arc<dyn VfsFile>> {
    debug_assert!(bytes.len() >= SEGMENT_HEADER_LEN);
    let file = env.vfs.create(path).map_err(io_err("create", path))?;
    file.write_all_at(bytes, 0).map_err(io_err("write", path))?;
    if env.sync_enabled() {
        file.sync_data().map_err(io_err("fsync", path))?;
        env.vfs
            .sync_dir(&env.dir)
            .map_err(io_err("fsync", &env.dir))?;
    }
    Ok(file)
}
