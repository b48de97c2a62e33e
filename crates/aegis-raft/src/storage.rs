//! Read access to the durable log and state, and an in-memory implementation.

use bytes::Bytes;

use crate::types::{ConfState, Entry, HardState, LogIndex, SnapshotChunk, SnapshotMeta, Term};

/// What a node recovers from its storage when it starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InitialState {
    /// The last durable hard state.
    pub hard_state: HardState,
    /// The durable membership as of the snapshot the log starts after (the node applies
    /// the `ConfChange` entries of the log on top of it).
    pub conf_state: ConfState,
}

/// Why storage could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The index lies before the first available entry: it was compacted into a snapshot.
    #[error("index {index} is compacted (first available index is {first_index})")]
    Compacted {
        /// The index asked for.
        index: LogIndex,
        /// The first index still in the log.
        first_index: LogIndex,
    },
    /// The index lies after the last entry.
    #[error("index {index} is beyond the last index {last_index}")]
    Unavailable {
        /// The index asked for.
        index: LogIndex,
        /// The last index in the log.
        last_index: LogIndex,
    },
    /// The backing store failed (for example an I/O error).
    #[error("storage backend failed: {source}")]
    Backend {
        /// The underlying error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No snapshot bytes can be read now (none is stored, or this storage cannot stream
    /// them). The leader retries later.
    #[error("no snapshot bytes are available")]
    SnapshotUnavailable,
    /// The storage does not implement the operation.
    #[error("the storage does not support {operation}")]
    Unsupported {
        /// The operation asked for.
        operation: &'static str,
    },
}

/// Read access to what the caller has made durable. The core only reads; the caller writes
/// (the entries and hard state of each [`Ready`](crate::Ready)) through its own API, such
/// as [`MemStorage::append`].
///
/// Indices: entries `first_index()..=last_index()` are available, and `term` also answers
/// for `first_index() - 1` (the snapshot's last index, or 0 with term 0).
pub trait Storage {
    /// The hard state and membership to start from.
    fn initial_state(&self) -> Result<InitialState, StorageError>;
    /// Entries `[lo, hi)`, stopping early once their total
    /// [`size_bytes`](Entry::size_bytes) would exceed `bytes_max`, but always at least one
    /// entry when `lo < hi`.
    fn entries(
        &self,
        lo: LogIndex,
        hi: LogIndex,
        bytes_max: u64,
    ) -> Result<Vec<Entry>, StorageError>;
    /// The term of the entry at `index`.
    fn term(&self, index: LogIndex) -> Result<Term, StorageError>;
    /// The first index whose entry is available.
    fn first_index(&self) -> Result<LogIndex, StorageError>;
    /// The last index in the log (`first_index() - 1` when the log is empty).
    fn last_index(&self) -> Result<LogIndex, StorageError>;
    /// The metadata of the latest stored snapshot: the one the log starts after, or a
    /// newer one when compaction kept a tail of entries it covers. Its index is at least
    /// `first_index() - 1`, and a node restarted on this storage assumes its state
    /// machine was restored from it.
    fn snapshot_meta(&self) -> Result<SnapshotMeta, StorageError>;

    /// Up to `len_max` bytes of the latest stored snapshot, starting at `offset`. The
    /// total size need not be known in advance: the chunk says whether it reaches the end
    /// (an offset at the end gives an empty last chunk). The default has no snapshot bytes
    /// ([`StorageError::SnapshotUnavailable`]), so a leader on such a storage cannot
    /// stream snapshots.
    fn snapshot_chunk(&self, offset: u64, len_max: usize) -> Result<SnapshotChunk, StorageError> {
        let _ = (offset, len_max);
        Err(StorageError::SnapshotUnavailable)
    }

    /// Drops the entries up to and including `index`, which the latest stored snapshot
    /// must cover; the term of `index` stays readable. Indexes at or below the first
    /// index minus one are a no-op. Called by [`RawNode::compact`](crate::RawNode::compact);
    /// the default refuses with [`StorageError::Unsupported`].
    fn compact(&mut self, index: LogIndex) -> Result<(), StorageError> {
        let _ = index;
        Err(StorageError::Unsupported {
            operation: "compact",
        })
    }
}

/// A [`Storage`] in memory, written by the caller. Cloning it copies the whole log, which
/// is what a simulator needs to model a crash that keeps only what was written.
#[derive(Clone, Debug, Default)]
pub struct MemStorage {
    hard_state: HardState,
    /// The log boundary: the entry just before the first stored one.
    snapshot: SnapshotMeta,
    // entries[i] has index snapshot.index + 1 + i.
    entries: Vec<Entry>,
    /// The application's latest snapshot and its bytes; its index is at least
    /// `snapshot.index`.
    stored: Option<(SnapshotMeta, Bytes)>,
}

impl MemStorage {
    /// An empty log for a group whose voters are `voters`.
    #[must_use]
    pub fn new(voters: &[u64]) -> MemStorage {
        MemStorage::with_conf_state(ConfState::with_voters(voters))
    }

    /// An empty log for a group whose membership is `conf_state`. A node joining an
    /// existing group starts from `ConfState::default()` (it belongs to no configuration
    /// until the leader's log tells it otherwise).
    #[must_use]
    pub fn with_conf_state(conf_state: ConfState) -> MemStorage {
        MemStorage {
            snapshot: SnapshotMeta {
                conf_state,
                ..SnapshotMeta::default()
            },
            ..MemStorage::default()
        }
    }

    /// Stores `entries`, replacing every stored entry at or after the first new index.
    ///
    /// # Panics
    /// If the entries are not consecutive, would leave a gap after the last stored entry,
    /// or start inside the snapshot.
    pub fn append(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first() else { return };
        assert!(
            first.index > self.snapshot.index,
            "append at {} inside the snapshot",
            first.index
        );
        assert!(
            first.index.0 <= self.last().0 + 1,
            "append at {} leaves a gap after {}",
            first.index,
            self.last()
        );
        for pair in entries.windows(2) {
            assert_eq!(
                pair[1].index,
                pair[0].index.next(),
                "entries must be consecutive"
            );
            assert!(pair[1].term >= pair[0].term, "terms must not decrease");
        }
        let keep = (first.index.0 - self.snapshot.index.0 - 1) as usize;
        self.entries.truncate(keep);
        self.entries.extend_from_slice(entries);
        debug_assert_eq!(self.last(), entries[entries.len() - 1].index);
    }

    /// Stores the hard state.
    pub fn set_hard_state(&mut self, hard_state: HardState) {
        self.hard_state = hard_state;
    }

    /// The stored hard state.
    #[must_use]
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// Drops every entry after `index`, as a crash that loses unsynced writes would.
    pub fn truncate_after(&mut self, index: LogIndex) {
        let keep = index.0.saturating_sub(self.snapshot.index.0) as usize;
        self.entries.truncate(keep);
    }

    fn last(&self) -> LogIndex {
        LogIndex(self.snapshot.index.0 + self.entries.len() as u64)
    }

    /// Stores the application's snapshot `data` of the state up to `meta.index` (which
    /// must be in the log, with `meta.term`). The log is unchanged: drop the entries it
    /// covers with [`Storage::compact`].
    ///
    /// # Panics
    /// If `meta.index` is not above the stored snapshot's index, is outside the log, or
    /// has another term.
    pub fn create_snapshot(&mut self, meta: SnapshotMeta, data: Bytes) {
        let current = self.stored_index();
        assert!(
            meta.index > current || (meta.index == current && self.stored.is_none()),
            "snapshot at {} is not newer than the stored one at {current}",
            meta.index
        );
        assert!(
            meta.index <= self.last(),
            "snapshot at {} beyond the last index {}",
            meta.index,
            self.last()
        );
        let term = self
            .term(meta.index)
            .expect("index checked to be in the log");
        assert_eq!(term, meta.term, "snapshot term differs from the log's");
        self.stored = Some((meta, data));
    }

    /// Replaces the whole log by a snapshot received from the leader: no entries remain,
    /// and `data` becomes the stored snapshot.
    pub fn apply_snapshot(&mut self, meta: SnapshotMeta, data: Bytes) {
        self.entries.clear();
        self.snapshot = meta.clone();
        self.stored = Some((meta, data));
        debug_assert_eq!(self.last(), self.snapshot.index);
    }

    /// The latest stored snapshot and its bytes, for restoring a state machine.
    #[must_use]
    pub fn snapshot(&self) -> Option<(&SnapshotMeta, &Bytes)> {
        self.stored.as_ref().map(|(meta, data)| (meta, data))
    }

    fn stored_index(&self) -> LogIndex {
        self.stored
            .as_ref()
            .map_or(self.snapshot.index, |(meta, _)| meta.index)
    }

    fn check_range(&self, index: LogIndex) -> Result<usize, StorageError> {
        if index <= self.snapshot.index {
            return Err(StorageError::Compacted {
                index,
                first_index: self.snapshot.index.next(),
            });
        }
        if index > self.last() {
            return Err(StorageError::Unavailable {
                index,
                last_index: self.last(),
            });
        }
        Ok((index.0 - self.snapshot.index.0 - 1) as usize)
    }
}

impl Storage for MemStorage {
    fn initial_state(&self) -> Result<InitialState, StorageError> {
        Ok(InitialState {
            hard_state: self.hard_state,
            conf_state: self.snapshot.conf_state.clone(),
        })
    }

    fn entries(
        &self,
        lo: LogIndex,
        hi: LogIndex,
        bytes_max: u64,
    ) -> Result<Vec<Entry>, StorageError> {
        if lo >= hi {
            return Ok(Vec::new());
        }
        let start = self.check_range(lo)?;
        let end = self.check_range(hi.prev())? + 1;
        Ok(take_within_bytes(&self.entries[start..end], bytes_max))
    }

    fn term(&self, index: LogIndex) -> Result<Term, StorageError> {
        if index == self.snapshot.index {
            return Ok(self.snapshot.term);
        }
        let at = self.check_range(index)?;
        Ok(self.entries[at].term)
    }

    fn first_index(&self) -> Result<LogIndex, StorageError> {
        Ok(self.snapshot.index.next())
    }

    fn last_index(&self) -> Result<LogIndex, StorageError> {
        Ok(self.last())
    }

    fn snapshot_meta(&self) -> Result<SnapshotMeta, StorageError> {
        Ok(match &self.stored {
            Some((meta, _)) => meta.clone(),
            None => self.snapshot.clone(),
        })
    }

    fn snapshot_chunk(&self, offset: u64, len_max: usize) -> Result<SnapshotChunk, StorageError> {
        let Some((meta, data)) = &self.stored else {
            return Err(StorageError::SnapshotUnavailable);
        };
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let end = start.saturating_add(len_max).min(data.len());
        Ok(SnapshotChunk {
            index: meta.index,
            term: meta.term,
            data: data.slice(start..end),
            last: end == data.len(),
        })
    }

    /// Refuses with [`StorageError::Unavailable`] (naming the stored snapshot's index as
    /// the last one it may compact to) when the snapshot does not cover `index`.
    fn compact(&mut self, index: LogIndex) -> Result<(), StorageError> {
        if index <= self.snapshot.index {
            return Ok(());
        }
        let covered = self.stored_index();
        if index > covered {
            return Err(StorageError::Unavailable {
                index,
                last_index: covered,
            });
        }
        let term = self.term(index)?;
        let drop = (index.0 - self.snapshot.index.0) as usize;
        self.entries.drain(..drop);
        self.snapshot = SnapshotMeta {
            index,
            term,
            conf_state: self.snapshot.conf_state.clone(),
        };
        debug_assert_eq!(self.first_index()?, index.next());
        Ok(())
    }
}

/// The longest prefix of `entries` whose total size fits in `bytes_max`, but at least one
/// entry when there is any.
pub(crate) fn take_within_bytes(entries: &[Entry], bytes_max: u64) -> Vec<Entry> {
    let mut total = 0u64;
    let mut count = 0usize;
    for entry in entries {
        total += entry.size_bytes();
        if count > 0 && total > bytes_max {
            break;
        }
        count += 1;
    }
    entries[..count].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::EntryKind;

    fn entry(index: u64, term: u64, len: usize) -> Entry {
        Entry {
            term: Term(term),
            index: LogIndex(index),
            kind: EntryKind::Normal,
            data: vec![0; len].into(),
        }
    }

    #[test]
    fn append_replaces_the_suffix_and_reads_back() {
        let mut s = MemStorage::new(&[1, 2, 3]);
        assert_eq!(
            (s.first_index().unwrap(), s.last_index().unwrap()),
            (LogIndex(1), LogIndex(0))
        );
        assert_eq!(s.term(LogIndex(0)).unwrap(), Term(0));
        s.append(&[entry(1, 1, 0), entry(2, 1, 0), entry(3, 1, 0)]);
        s.append(&[entry(2, 2, 0)]);
        assert_eq!(s.last_index().unwrap(), LogIndex(2));
        assert_eq!(s.term(LogIndex(2)).unwrap(), Term(2));
        assert!(matches!(
            s.term(LogIndex(3)),
            Err(StorageError::Unavailable { .. })
        ));
        assert_eq!(s.initial_state().unwrap().conf_state.voters, vec![1, 2, 3]);
        s.truncate_after(LogIndex(1));
        assert_eq!(s.last_index().unwrap(), LogIndex(1));
    }

    #[test]
    fn entries_are_bounded_by_bytes_but_never_empty() {
        let mut s = MemStorage::new(&[1]);
        s.append(&[entry(1, 1, 100), entry(2, 1, 100), entry(3, 1, 100)]);
        let size = entry(1, 1, 100).size_bytes();
        assert_eq!(
            s.entries(LogIndex(1), LogIndex(4), 2 * size).unwrap().len(),
            2
        );
        assert_eq!(s.entries(LogIndex(1), LogIndex(4), 1).unwrap().len(), 1);
        assert_eq!(
            s.entries(LogIndex(2), LogIndex(4), u64::MAX).unwrap().len(),
            2
        );
        assert!(s.entries(LogIndex(3), LogIndex(3), 1).unwrap().is_empty());
        assert!(matches!(
            s.entries(LogIndex(0), LogIndex(2), 1),
            Err(StorageError::Compacted { .. })
        ));
    }

    #[test]
    fn snapshots_are_read_by_chunks_and_compaction_keeps_the_boundary_term() {
        let mut s = MemStorage::new(&[1]);
        s.append(&[
            entry(1, 1, 0),
            entry(2, 1, 0),
            entry(3, 2, 0),
            entry(4, 2, 0),
        ]);
        assert!(matches!(
            s.snapshot_chunk(0, 4),
            Err(StorageError::SnapshotUnavailable)
        ));
        assert!(matches!(
            s.compact(LogIndex(2)),
            Err(StorageError::Unavailable { .. })
        ));
        let meta = SnapshotMeta {
            index: LogIndex(3),
            term: Term(2),
            conf_state: ConfState::with_voters(&[1]),
        };
        s.create_snapshot(meta.clone(), Bytes::from_static(b"abcdefghij"));
        assert_eq!(s.snapshot_meta().unwrap(), meta);
        let first = s.snapshot_chunk(0, 4).unwrap();
        assert_eq!((&first.data[..], first.last), (&b"abcd"[..], false));
        let tail = s.snapshot_chunk(8, 4).unwrap();
        assert_eq!((&tail.data[..], tail.last), (&b"ij"[..], true));
        assert!(s.snapshot_chunk(10, 4).unwrap().data.is_empty());
        s.compact(LogIndex(2)).unwrap();
        assert_eq!(s.first_index().unwrap(), LogIndex(3));
        assert_eq!(s.term(LogIndex(2)).unwrap(), Term(1));
        assert!(matches!(
            s.term(LogIndex(1)),
            Err(StorageError::Compacted { .. })
        ));
        s.apply_snapshot(
            SnapshotMeta {
                index: LogIndex(9),
                term: Term(3),
                ..meta
            },
            Bytes::from_static(b"z"),
        );
        assert_eq!(
            (s.first_index().unwrap(), s.last_index().unwrap()),
            (LogIndex(10), LogIndex(9))
        );
        assert_eq!(s.term(LogIndex(9)).unwrap(), Term(3));
    }

    #[test]
    #[should_panic(expected = "gap")]
    fn append_with_a_gap_panics() {
        let mut s = MemStorage::new(&[1]);
        s.append(&[entry(2, 1, 0)]);
    }
}
