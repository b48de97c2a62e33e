//! The node's view of its log: durable entries in [`Storage`] plus an unstable suffix that
//! the caller has not yet reported durable.

use std::collections::VecDeque;

use crate::storage::{Storage, StorageError, take_within_bytes};
use crate::types::{Entry, LogIndex, Term};

pub(crate) struct RaftLog<S> {
    pub(crate) storage: S,
    /// Entries not yet reported durable; `unstable[0]` has index `unstable_offset`. When
    /// non-empty it is the authoritative tail: storage may still hold an older, longer tail
    /// that the caller will overwrite when it persists these entries.
    unstable: Vec<Entry>,
    unstable_offset: LogIndex,
    /// The last index handed to the caller for persisting.
    in_progress: LogIndex,
    /// Entries up to here are durable and belong to this log.
    pub(crate) persisted: LogIndex,
    pub(crate) committed: LogIndex,
    /// The last index handed to the caller for applying.
    applying: LogIndex,
    pub(crate) applied: LogIndex,
    /// The batches handed out for applying and not yet wholly applied: each batch's last
    /// index and its bytes (as [`Entry::size_bytes`] counts them).
    handed_out: VecDeque<(LogIndex, u64)>,
    /// The sum of `handed_out`'s bytes.
    handed_out_bytes: u64,
}

impl<S: Storage> RaftLog<S> {
    pub(crate) fn new(
        storage: S,
        committed: LogIndex,
        applied: LogIndex,
    ) -> Result<RaftLog<S>, StorageError> {
        let last = storage.last_index()?;
        let log = RaftLog {
            storage,
            unstable: Vec::new(),
            unstable_offset: last.next(),
            in_progress: last,
            persisted: last,
            committed,
            applying: applied,
            applied,
            handed_out: VecDeque::new(),
            handed_out_bytes: 0,
        };
        Ok(log)
    }

    pub(crate) fn last_index(&self) -> Result<LogIndex, StorageError> {
        match self.unstable.last() {
            Some(entry) => Ok(entry.index),
            None => self.storage.last_index(),
        }
    }

    pub(crate) fn term(&self, index: LogIndex) -> Result<Term, StorageError> {
        if index >= self.unstable_offset {
            let at = (index.0 - self.unstable_offset.0) as usize;
            return match self.unstable.get(at) {
                Some(entry) => {
                    debug_assert_eq!(entry.index, index);
                    Ok(entry.term)
                }
                None => Err(StorageError::Unavailable {
                    index,
                    last_index: self.last_index()?,
                }),
            };
        }
        if index == LogIndex(0) {
            return Ok(Term(0));
        }
        self.storage.term(index)
    }

    /// The term at `index`, or `None` when the index is outside the log.
    pub(crate) fn term_if_present(&self, index: LogIndex) -> Result<Option<Term>, StorageError> {
        match self.term(index) {
            Ok(term) => Ok(Some(term)),
            Err(StorageError::Compacted { .. } | StorageError::Unavailable { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    pub(crate) fn last_term(&self) -> Result<Term, StorageError> {
        self.term(self.last_index()?)
    }

    pub(crate) fn matches(&self, index: LogIndex, term: Term) -> Result<bool, StorageError> {
        Ok(self.term_if_present(index)? == Some(term))
    }

    /// Entries `[lo, hi)` bounded by `bytes_max` (at least one when `lo < hi`).
    pub(crate) fn entries(
        &self,
        lo: LogIndex,
        hi: LogIndex,
        bytes_max: u64,
    ) -> Result<Vec<Entry>, StorageError> {
        assert!(
            hi <= self.last_index()?.next(),
            "entries beyond the last index"
        );
        if lo >= hi {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        if lo < self.unstable_offset {
            out = self
                .storage
                .entries(lo, hi.min(self.unstable_offset), bytes_max)?;
            let reached = out.last().map_or(lo, |e| e.index.next());
            if reached < self.unstable_offset.min(hi) {
                return Ok(out);
            }
        }
        let used: u64 = out.iter().map(Entry::size_bytes).sum();
        let from = lo.max(self.unstable_offset);
        if from < hi {
            let start = (from.0 - self.unstable_offset.0) as usize;
            let end = (hi.0 - self.unstable_offset.0) as usize;
            let rest = &self.unstable[start..end];
            if out.is_empty() {
                out = take_within_bytes(rest, bytes_max);
            } else {
                let mut total = used;
                for entry in rest {
                    total += entry.size_bytes();
                    if total > bytes_max {
                        break;
                    }
                    out.push(entry.clone());
                }
            }
        }
        debug_assert!(out.first().is_none_or(|e| e.index == lo));
        Ok(out)
    }

    /// Appends entries created by this node as leader.
    pub(crate) fn append(&mut self, entry: Entry) -> Result<(), StorageError> {
        let last = self.last_index()?;
        assert_eq!(
            entry.index,
            last.next(),
            "leader appends must be consecutive"
        );
        assert!(
            entry.term >= self.last_term()?,
            "terms in the log never decrease"
        );
        if self.unstable.is_empty() {
            self.unstable_offset = entry.index;
        }
        self.unstable.push(entry);
        Ok(())
    }

    /// The follower's consistency check and append (§5.3). Returns the index of the last
    /// entry of the request when `prev` matches, else `None`.
    pub(crate) fn maybe_append(
        &mut self,
        prev_index: LogIndex,
        prev_term: Term,
        entries: &[Entry],
        committed_floor: LogIndex,
    ) -> Result<Option<LogIndex>, StorageError> {
        if !self.matches(prev_index, prev_term)? {
            return Ok(None);
        }
        let last_new = LogIndex(prev_index.0 + entries.len() as u64);
        let mut conflict = None;
        for (at, entry) in entries.iter().enumerate() {
            assert_eq!(
                entry.index,
                LogIndex(prev_index.0 + 1 + at as u64),
                "entries must be consecutive"
            );
            if !self.matches(entry.index, entry.term)? {
                conflict = Some(at);
                break;
            }
        }
        if let Some(at) = conflict {
            let first = entries[at].index;
            assert!(
                first > committed_floor,
                "conflict at {first} inside the committed prefix {committed_floor}"
            );
            self.truncate_and_append(&entries[at..])?;
        }
        Ok(Some(last_new))
    }

    fn truncate_and_append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        let first = entries[0].index;
        assert!(first <= self.last_index()?.next(), "append leaves a gap");
        if first < self.unstable_offset || self.unstable.is_empty() {
            self.unstable_offset = first;
            self.unstable.clear();
        } else {
            self.unstable
                .truncate((first.0 - self.unstable_offset.0) as usize);
        }
        self.unstable.extend_from_slice(entries);
        self.in_progress = self.in_progress.min(first.prev());
        self.persisted = self.persisted.min(first.prev());
        debug_assert_eq!(
            self.unstable_offset.0 + self.unstable.len() as u64,
            self.last_index()?.0 + 1
        );
        Ok(())
    }

    pub(crate) fn has_unpersisted(&self) -> bool {
        self.unstable
            .last()
            .is_some_and(|e| e.index > self.in_progress)
    }

    /// Hands out the entries not yet handed out for persisting.
    pub(crate) fn take_unpersisted(&mut self) -> Vec<Entry> {
        let Some(last) = self.unstable.last().map(|e| e.index) else {
            return Vec::new();
        };
        if last <= self.in_progress {
            return Vec::new();
        }
        let from = self.in_progress.next().max(self.unstable_offset);
        let start = (from.0 - self.unstable_offset.0) as usize;
        self.in_progress = last;
        self.unstable[start..].to_vec()
    }

    /// Records that entries up to `index` (whose term was `term`) are durable. Ignored when
    /// the log no longer holds that entry (it was overwritten while the write was in
    /// flight; a later acknowledgement will cover its replacement).
    pub(crate) fn persisted_to(
        &mut self,
        index: LogIndex,
        term: Term,
    ) -> Result<bool, StorageError> {
        if index <= self.persisted || !self.matches(index, term)? {
            return Ok(false);
        }
        assert!(
            index <= self.in_progress,
            "acknowledged {index} beyond what was handed out ({})",
            self.in_progress
        );
        self.persisted = index;
        if index >= self.unstable_offset {
            let drop = (index.0 - self.unstable_offset.0 + 1) as usize;
            self.unstable.drain(..drop);
            self.unstable_offset = index.next();
        }
        Ok(true)
    }

    pub(crate) fn commit_to(&mut self, index: LogIndex) -> Result<bool, StorageError> {
        if index <= self.committed {
            return Ok(false);
        }
        assert!(
            index <= self.last_index()?,
            "commit {index} beyond the last index"
        );
        self.committed = index;
        Ok(true)
    }

    fn apply_limit(&self) -> LogIndex {
        self.committed.min(self.persisted)
    }

    /// Whether committed, durable entries wait to be handed out and the caller has room
    /// for them: fewer than `inflight_bytes_max` bytes handed out and not yet applied.
    pub(crate) fn has_committed_to_apply(&self, inflight_bytes_max: u64) -> bool {
        self.apply_limit() > self.applying && self.handed_out_bytes < inflight_bytes_max
    }

    /// Hands out up to `bytes_max` bytes of committed, durable entries not yet handed out
    /// for applying, unless `inflight_bytes_max` bytes or more already wait to be applied.
    pub(crate) fn take_committed(
        &mut self,
        bytes_max: u64,
        inflight_bytes_max: u64,
    ) -> Result<Vec<Entry>, StorageError> {
        if !self.has_committed_to_apply(inflight_bytes_max) {
            return Ok(Vec::new());
        }
        let limit = self.apply_limit();
        let entries = self.entries(self.applying.next(), limit.next(), bytes_max)?;
        if let Some(last) = entries.last() {
            assert!(last.index <= limit);
            self.applying = last.index;
            let bytes: u64 = entries.iter().map(Entry::size_bytes).sum();
            self.handed_out.push_back((last.index, bytes));
            self.handed_out_bytes += bytes;
        }
        Ok(entries)
    }

    pub(crate) fn applied_to(&mut self, index: LogIndex) {
        assert!(
            index <= self.applying,
            "applied {index} beyond what was handed out ({})",
            self.applying
        );
        if index > self.applied {
            self.applied = index;
        }
        while let Some(&(end, bytes)) = self.handed_out.front() {
            if end > self.applied {
                break;
            }
            self.handed_out.pop_front();
            self.handed_out_bytes -= bytes;
        }
        debug_assert_eq!(
            self.handed_out_bytes,
            self.handed_out.iter().map(|&(_, b)| b).sum::<u64>()
        );
    }

    /// The caller replaced the storage by a snapshot at `index` (no entries after it):
    /// the log now starts after it, everything up to it counts as durable, committed
    /// and applied, and nothing before it is handed out again.
    pub(crate) fn reset_to_snapshot(&mut self, index: LogIndex) -> Result<(), StorageError> {
        assert_eq!(
            self.storage.last_index()?,
            index,
            "the storage must hold the snapshot alone"
        );
        assert!(
            self.applying <= index,
            "entries up to {} were handed out for applying, beyond the snapshot at {index}",
            self.applying
        );
        self.unstable.clear();
        self.unstable_offset = index.next();
        self.in_progress = index;
        self.persisted = index;
        self.committed = self.committed.max(index);
        self.applying = index;
        self.applied = index;
        self.handed_out.clear();
        self.handed_out_bytes = 0;
        self.check_invariants()
    }

    pub(crate) fn check_invariants(&self) -> Result<(), StorageError> {
        let last = self.last_index()?;
        assert!(
            self.committed <= last,
            "commit {} beyond last {last}",
            self.committed
        );
        assert!(
            self.persisted <= last,
            "persisted {} beyond last {last}",
            self.persisted
        );
        assert!(self.in_progress <= last || self.unstable.is_empty());
        assert!(self.applied <= self.applying && self.applying <= self.committed.max(self.applied));
        // Everything below the unstable suffix is durable, and nothing in it is.
        assert_eq!(
            self.persisted.next(),
            self.unstable_offset,
            "persisted and unstable suffix disagree"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemStorage;
    use crate::types::EntryKind;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            term: Term(term),
            index: LogIndex(index),
            kind: EntryKind::Normal,
            data: Default::default(),
        }
    }

    fn persist(log: &mut RaftLog<MemStorage>) -> Option<(LogIndex, Term)> {
        let entries = log.take_unpersisted();
        log.storage.append(&entries);
        entries.last().map(|e| (e.index, e.term))
    }

    #[test]
    fn an_acknowledgement_for_overwritten_entries_is_ignored() {
        let mut log = RaftLog::new(MemStorage::new(&[1]), LogIndex(0), LogIndex(0)).unwrap();
        assert_eq!(
            log.maybe_append(
                LogIndex(0),
                Term(0),
                &[entry(1, 1), entry(2, 1), entry(3, 1)],
                LogIndex(0)
            )
            .unwrap(),
            Some(LogIndex(3))
        );
        let first_write = persist(&mut log).unwrap();
        // Before that write is acknowledged, a newer leader replaces entries 2 and 3.
        assert_eq!(
            log.maybe_append(LogIndex(1), Term(1), &[entry(2, 2)], LogIndex(0))
                .unwrap(),
            Some(LogIndex(2))
        );
        assert!(
            !log.persisted_to(first_write.0, first_write.1).unwrap(),
            "entry 3 of term 1 is gone"
        );
        assert_eq!(log.persisted, LogIndex(0));
        let second_write = persist(&mut log).unwrap();
        assert_eq!(second_write, (LogIndex(2), Term(2)));
        assert!(log.persisted_to(second_write.0, second_write.1).unwrap());
        assert_eq!(
            (log.persisted, log.last_index().unwrap()),
            (LogIndex(2), LogIndex(2))
        );
        assert_eq!(log.storage.last_index().unwrap(), LogIndex(2));
        log.check_invariants().unwrap();
    }

    #[test]
    fn entries_span_storage_and_the_unstable_suffix() {
        let mut log = RaftLog::new(MemStorage::new(&[1]), LogIndex(0), LogIndex(0)).unwrap();
        log.maybe_append(
            LogIndex(0),
            Term(0),
            &[entry(1, 1), entry(2, 1)],
            LogIndex(0),
        )
        .unwrap();
        let (index, term) = persist(&mut log).unwrap();
        log.persisted_to(index, term).unwrap();
        log.append(entry(3, 1)).unwrap();
        let all = log.entries(LogIndex(1), LogIndex(4), u64::MAX).unwrap();
        assert_eq!(
            all.iter().map(|e| e.index.0).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        let one = log.entries(LogIndex(2), LogIndex(4), 1).unwrap();
        assert_eq!(one.len(), 1);
        // Only durable committed entries are handed out for applying.
        log.commit_to(LogIndex(3)).unwrap();
        assert_eq!(log.take_committed(u64::MAX, u64::MAX).unwrap().len(), 2);
        assert!(!log.has_committed_to_apply(u64::MAX));
        let (index, term) = persist(&mut log).unwrap();
        log.persisted_to(index, term).unwrap();
        assert_eq!(
            log.take_committed(u64::MAX, u64::MAX).unwrap()[0].index,
            LogIndex(3)
        );
        log.applied_to(LogIndex(3));
        log.check_invariants().unwrap();
    }

    #[test]
    #[should_panic(expected = "committed prefix")]
    fn a_conflict_inside_the_committed_prefix_panics() {
        let mut log = RaftLog::new(MemStorage::new(&[1]), LogIndex(0), LogIndex(0)).unwrap();
        log.maybe_append(
            LogIndex(0),
            Term(0),
            &[entry(1, 1), entry(2, 1)],
            LogIndex(0),
        )
        .unwrap();
        let _ = log.maybe_append(
            LogIndex(0),
            Term(0),
            &[entry(1, 1), entry(2, 2)],
            LogIndex(2),
        );
    }
}
