//! The log writer: a thread that makes the Readies' writes durable while the node's
//! thread goes on stepping messages and sending appends.
//!
//! Writes are numbered in Ready order. The writer takes every write queued when it wakes
//! (up to `write_batch_max`), stores them with as few appends as their order allows and
//! one sync, then publishes the highest number now durable. The node's thread releases
//! each Ready's `persisted_messages` and acknowledgement only once its number is durable,
//! so nothing leaves the node on the strength of a write still in flight.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use aegis_raft::{Entry, HardState, StorageError};

use super::LogStore;
use super::threads::{NodeThread, Spawner};

/// The writes of one Ready.
pub(super) struct WriteJob {
    /// Its place in Ready order (the first write is 1).
    pub(super) seq: u64,
    pub(super) entries: Vec<Entry>,
    pub(super) hard_state: Option<HardState>,
}

/// What the writer reports back to the node's thread.
pub(super) struct WriteProgress {
    /// Every write numbered up to this is durable.
    durable: AtomicU64,
    /// Set when a write failed; nothing after it was written.
    failure: Mutex<Option<StorageError>>,
}

impl WriteProgress {
    pub(super) fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    pub(super) fn take_failure(&self) -> Option<StorageError> {
        self.failure.lock().expect("lock poisoned").take()
    }
}

/// The node thread's end of a running writer.
pub(super) struct LogWriter {
    jobs: Option<Sender<WriteJob>>,
    progress: Arc<WriteProgress>,
    thread: Option<JoinHandle<()>>,
}

impl LogWriter {
    /// Starts a writer thread on `store`, a write handle of the node's log, whose next
    /// write is numbered `durable + 1`. `wake` is called after each batch becomes durable
    /// (or fails).
    pub(super) fn start<S: LogStore>(
        spawner: &Spawner,
        store: S,
        write_batch_max: usize,
        durable: u64,
        wake: Box<dyn Fn() + Send>,
    ) -> std::io::Result<LogWriter> {
        assert!(write_batch_max > 0, "write_batch_max must be positive");
        let (jobs, queue) = mpsc::channel();
        let progress = Arc::new(WriteProgress {
            durable: AtomicU64::new(durable),
            failure: Mutex::new(None),
        });
        let shared = Arc::clone(&progress);
        let thread = spawner.spawn(NodeThread::LogWriter, move || {
            write_loop(store, &queue, &shared, write_batch_max, wake.as_ref());
        })?;
        Ok(LogWriter {
            jobs: Some(jobs),
            progress,
            thread: Some(thread),
        })
    }

    /// Queues a Ready's writes. Jobs must come in `seq` order, without gaps.
    pub(super) fn submit(&self, job: WriteJob) {
        if let Some(jobs) = &self.jobs {
            // The writer is gone only after a failure, which the node's thread sees
            // through `progress` and stops on.
            let _ = jobs.send(job);
        }
    }

    pub(super) fn progress(&self) -> &WriteProgress {
        &self.progress
    }

    /// Lets the writer finish what is queued and waits for it.
    pub(super) fn stop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.stop();
    }
}

fn write_loop<S: LogStore>(
    mut store: S,
    queue: &Receiver<WriteJob>,
    progress: &WriteProgress,
    batch_max: usize,
    wake: &dyn Fn(),
) {
    let mut written = progress.durable();
    let mut last_hard_state = store.initial_state().ok().map(|s| s.hard_state);
    let mut batch = Vec::with_capacity(batch_max);
    while let Ok(first) = queue.recv() {
        batch.push(first);
        while batch.len() < batch_max {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let last = batch.last().map_or(written, |job| job.seq);
        assert_eq!(
            batch.first().map(|job| job.seq),
            Some(written + 1),
            "writes arrive in Ready order without gaps"
        );
        match write_batch(&mut store, batch.drain(..), &mut last_hard_state) {
            Ok(()) => {
                written = last;
                progress.durable.store(last, Ordering::Release);
                wake();
            }
            Err(e) => {
                *progress.failure.lock().expect("lock poisoned") = Some(e);
                wake();
                return;
            }
        }
    }
}

/// Writes consecutive Readies' writes in their order, then syncs once.
///
/// Entries of consecutive Readies are merged into one append (a later Ready's entries
/// replace the earlier ones' from their first index on, as separate appends would).
/// A hard state that changes the term or the vote is written where it stood, after the
/// entries before it; one that only moves the commit index is written once, at the end.
/// A crash part-way therefore leaves a state the Ready-by-Ready sequence also passes
/// through. `last_hard_state` is the hard state written last, carried between batches.
fn write_batch<S: LogStore>(
    store: &mut S,
    jobs: impl Iterator<Item = WriteJob>,
    last_hard_state: &mut Option<HardState>,
) -> Result<(), StorageError> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut commit_only: Option<HardState> = None;
    for job in jobs {
        if let Some(first) = job.entries.first() {
            if let Some(at) = entries.iter().position(|e| e.index >= first.index) {
                entries.truncate(at);
            } else if let Some(last) = entries.last() {
                assert_eq!(
                    first.index,
                    last.index.next(),
                    "a Ready's entries follow the previous ones"
                );
            }
            entries.extend(job.entries);
        }
        let Some(hard_state) = job.hard_state else {
            continue;
        };
        let moves_only_commit = last_hard_state
            .is_some_and(|prev| prev.term == hard_state.term && prev.vote == hard_state.vote);
        if moves_only_commit {
            commit_only = Some(hard_state);
        } else {
            if !entries.is_empty() {
                store.append(&entries)?;
                entries.clear();
            }
            store.set_hard_state(hard_state)?;
            commit_only = None;
        }
        *last_hard_state = Some(hard_state);
    }
    if !entries.is_empty() {
        store.append(&entries)?;
    }
    if let Some(hard_state) = commit_only {
        store.set_hard_state(hard_state)?;
    }
    store.sync()
}

#[cfg(test)]
mod tests {
    use aegis_raft::{Entry, EntryKind, HardState, LogIndex, MemStorage, Storage, Term};
    use bytes::Bytes;

    use super::{WriteJob, write_batch};

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index: LogIndex(index),
            term: Term(term),
            kind: EntryKind::Normal,
            data: Bytes::from(format!("{index}/{term}")),
        }
    }

    fn job(seq: u64, entries: Vec<Entry>, hard_state: Option<HardState>) -> WriteJob {
        WriteJob {
            seq,
            entries,
            hard_state,
        }
    }

    #[test]
    fn merged_writes_end_as_ready_by_ready_writes_would() {
        let mut merged = MemStorage::new(&[1]);
        let mut one_by_one = MemStorage::new(&[1]);
        let hs = |term, commit| HardState {
            term: Term(term),
            vote: Some(1),
            commit: LogIndex(commit),
        };
        let jobs = || {
            vec![
                job(
                    1,
                    vec![entry(1, 1), entry(2, 1), entry(3, 1)],
                    Some(hs(1, 1)),
                ),
                job(2, vec![entry(4, 1)], Some(hs(1, 2))),
                // A new term overwrites from index 3 on.
                job(3, vec![entry(3, 2)], Some(hs(2, 2))),
                job(4, vec![entry(4, 2), entry(5, 2)], Some(hs(2, 4))),
                job(5, vec![], None),
            ]
        };
        write_batch(&mut merged, jobs().into_iter(), &mut None).unwrap();
        for job in jobs() {
            write_batch(&mut one_by_one, std::iter::once(job), &mut None).unwrap();
        }
        let all = |s: &MemStorage| {
            s.entries(LogIndex(1), s.last_index().unwrap().next(), u64::MAX)
                .unwrap()
        };
        assert_eq!(all(&merged), all(&one_by_one));
        assert_eq!(all(&merged).len(), 5);
        assert_eq!(all(&merged)[2].term, Term(2));
        assert_eq!(
            merged.initial_state().unwrap().hard_state,
            one_by_one.initial_state().unwrap().hard_state
        );
        assert_eq!(merged.initial_state().unwrap().hard_state, hs(2, 4));
    }
}
