//! [`DiskStorage`]: a Raft group's log and hard state kept in a [`Log`].
//!
//! Each Raft group is one group of the shared log, so one fsync covers the writes of every
//! group on a node. An entry's record is its kind (one byte) followed by its data. The
//! hard state and the membership live in the group's state file; because rewriting that
//! file costs a rename and two fsyncs, it is rewritten only when the term or the vote
//! changes. A commit index advanced in between is kept in memory: Raft does not need it
//! durable (a restarted node learns it again from the leader).

use std::sync::Arc;

use crate::runtime::LogStore;
use aegis_raft::{
    ConfState, Entry, EntryKind, HardState, InitialState, LogIndex, NodeId, SnapshotMeta, Storage,
    StorageError, Term,
};
use serde::{Deserialize, Serialize};

use aegis_log::{GroupState, Log, LogBatch};

/// The version of the metadata this module writes into the group state file.
const META_VERSION: u8 = 1;

/// What a group's state file carries besides the hard state.
#[derive(Serialize, Deserialize)]
struct RaftMeta {
    version: u8,
    voters: Vec<NodeId>,
}

const KIND_NORMAL: u8 = 0;
const KIND_NOOP: u8 = 1;

/// A Raft group's durable storage on a shared [`Log`].
pub struct DiskStorage {
    log: Arc<Log>,
    group: u64,
    voters: Vec<NodeId>,
    hard_state: HardState,
    /// The hard state as last written to the state file.
    saved: HardState,
}

impl DiskStorage {
    /// Opens group `group` of `log`. A group seen for the first time starts empty with
    /// `voters` as its membership, which is written down at once; afterwards the
    /// membership on disk is authoritative and `voters` is ignored.
    pub fn open(
        log: Arc<Log>,
        group: u64,
        voters: &[NodeId],
    ) -> Result<DiskStorage, aegis_log::Error> {
        let mut storage = DiskStorage {
            log,
            group,
            voters: voters.to_vec(),
            hard_state: HardState::default(),
            saved: HardState::default(),
        };
        match storage.log.state(group) {
            Some(state) => {
                let meta: RaftMeta = postcard::from_bytes(&state.metadata)
                    .ok()
                    .filter(|m: &RaftMeta| m.version == META_VERSION)
                    .ok_or_else(|| aegis_log::Error::Corrupt {
                        path: storage.log.dir().to_path_buf(),
                        offset: 0,
                        reason: format!(
                            "group {group}: unreadable Raft membership in the state file"
                        ),
                    })?;
                storage.voters = meta.voters;
                let hs = state.hard_state;
                storage.hard_state = HardState {
                    term: Term(hs.term),
                    vote: hs.vote,
                    commit: LogIndex(hs.commit),
                };
                storage.saved = storage.hard_state;
            }
            None => storage.save(HardState::default())?,
        }
        Ok(storage)
    }

    /// The shared log.
    #[must_use]
    pub fn log(&self) -> &Arc<Log> {
        &self.log
    }

    fn save(&mut self, hard_state: HardState) -> Result<(), aegis_log::Error> {
        let meta = RaftMeta {
            version: META_VERSION,
            voters: self.voters.clone(),
        };
        let state = GroupState {
            hard_state: aegis_log::HardState {
                term: hard_state.term.0,
                vote: hard_state.vote,
                commit: hard_state.commit.0,
            },
            metadata: postcard::to_allocvec(&meta).expect("membership always encodes"),
        };
        self.log.save_state(self.group, &state)?;
        self.saved = hard_state;
        Ok(())
    }

    fn floor(&self) -> u64 {
        self.log.compacted_to(self.group)
    }
}

fn backend(e: aegis_log::Error) -> StorageError {
    StorageError::Backend {
        source: Box::new(e),
    }
}

impl Storage for DiskStorage {
    fn initial_state(&self) -> Result<InitialState, StorageError> {
        Ok(InitialState {
            hard_state: self.hard_state,
            conf_state: ConfState {
                voters: self.voters.clone(),
            },
        })
    }

    fn entries(
        &self,
        lo: LogIndex,
        hi: LogIndex,
        bytes_max: u64,
    ) -> Result<Vec<Entry>, StorageError> {
        let (first, last) = (self.first_index()?, self.last_index()?);
        if lo < first {
            return Err(StorageError::Compacted {
                index: lo,
                first_index: first,
            });
        }
        if hi.0 > last.0 + 1 {
            return Err(StorageError::Unavailable {
                index: hi.prev(),
                last_index: last,
            });
        }
        let records = self
            .log
            .entries(self.group, lo.0..hi.0, bytes_max)
            .map_err(backend)?;
        records.into_iter().map(decode_entry).collect()
    }

    fn term(&self, index: LogIndex) -> Result<Term, StorageError> {
        if let Some(term) = self.log.term(self.group, index.0) {
            return Ok(Term(term));
        }
        let floor = self.floor();
        if index.0 == floor {
            // Without snapshots the floor is 0, the empty log's sentinel with term 0.
            return Ok(Term(0));
        }
        if index.0 < floor {
            return Err(StorageError::Compacted {
                index,
                first_index: LogIndex(floor + 1),
            });
        }
        Err(StorageError::Unavailable {
            index,
            last_index: self.last_index()?,
        })
    }

    fn first_index(&self) -> Result<LogIndex, StorageError> {
        Ok(LogIndex(
            self.log.first_index(self.group).unwrap_or(self.floor() + 1),
        ))
    }

    fn last_index(&self) -> Result<LogIndex, StorageError> {
        Ok(LogIndex(
            self.log.last_index(self.group).unwrap_or(self.floor()),
        ))
    }

    fn snapshot_meta(&self) -> Result<SnapshotMeta, StorageError> {
        let index = LogIndex(self.floor());
        Ok(SnapshotMeta {
            index,
            term: Term(0),
            conf_state: ConfState {
                voters: self.voters.clone(),
            },
        })
    }
}

fn decode_entry(record: aegis_log::Entry) -> Result<Entry, StorageError> {
    let corrupt = |reason: &str| StorageError::Backend {
        source: format!("entry {}: {reason}", record.index).into(),
    };
    let (&kind, data) = record
        .data
        .split_first()
        .ok_or_else(|| corrupt("empty record"))?;
    let kind = match kind {
        KIND_NORMAL => EntryKind::Normal,
        KIND_NOOP => EntryKind::NoOp,
        other => return Err(corrupt(&format!("unknown entry kind {other}"))),
    };
    Ok(Entry {
        term: Term(record.term),
        index: LogIndex(record.index),
        kind,
        data: bytes::Bytes::copy_from_slice(data),
    })
}

impl LogStore for DiskStorage {
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let mut batch = LogBatch::new();
        if first.index <= self.last_index()? {
            batch.truncate_suffix(self.group, first.index.0);
        }
        let mut record = Vec::new();
        for entry in entries {
            record.clear();
            record.push(match entry.kind {
                EntryKind::NoOp => KIND_NOOP,
                _ => KIND_NORMAL,
            });
            record.extend_from_slice(&entry.data);
            batch.append(self.group, entry.index.0, entry.term.0, &record);
        }
        self.log.write(batch).map_err(backend)
    }

    fn set_hard_state(&mut self, hard_state: HardState) -> Result<(), StorageError> {
        self.hard_state = hard_state;
        if hard_state.term != self.saved.term || hard_state.vote != self.saved.vote {
            self.save(hard_state).map_err(backend)?;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        // `Log::write` returns once the batch is durable under the log's sync policy.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::runtime::LogStore;
    use aegis_raft::{Entry, EntryKind, HardState, LogIndex, Storage, Term};

    use super::DiskStorage;
    use aegis_log::{Log, LogConfig};

    fn entry(index: u64, term: u64, kind: EntryKind, data: &[u8]) -> Entry {
        Entry {
            term: Term(term),
            index: LogIndex(index),
            kind,
            data: data.to_vec().into(),
        }
    }

    #[test]
    fn entries_hard_state_and_membership_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(Log::open(dir.path(), LogConfig::default()).unwrap());
        let mut storage = DiskStorage::open(Arc::clone(&log), 1, &[1, 2, 3]).unwrap();
        assert_eq!(storage.last_index().unwrap(), LogIndex(0));
        assert_eq!(storage.term(LogIndex(0)).unwrap(), Term(0));
        storage
            .append(&[
                entry(1, 1, EntryKind::NoOp, b""),
                entry(2, 1, EntryKind::Normal, b"a"),
                entry(3, 1, EntryKind::Normal, b"b"),
            ])
            .unwrap();
        storage
            .set_hard_state(HardState {
                term: Term(1),
                vote: Some(2),
                commit: LogIndex(1),
            })
            .unwrap();
        // A follower's conflicting tail is replaced.
        storage
            .append(&[entry(3, 2, EntryKind::Normal, b"c")])
            .unwrap();
        drop(storage);
        drop(log);

        let log = Arc::new(Log::open(dir.path(), LogConfig::default()).unwrap());
        let storage = DiskStorage::open(log, 1, &[9]).unwrap();
        let initial = storage.initial_state().unwrap();
        assert_eq!(
            initial.conf_state.voters,
            [1, 2, 3],
            "membership comes from disk"
        );
        assert_eq!(initial.hard_state.term, Term(1));
        assert_eq!(initial.hard_state.vote, Some(2));
        let entries = storage.entries(LogIndex(1), LogIndex(4), u64::MAX).unwrap();
        assert_eq!(
            entries,
            [
                entry(1, 1, EntryKind::NoOp, b""),
                entry(2, 1, EntryKind::Normal, b"a"),
                entry(3, 2, EntryKind::Normal, b"c")
            ]
        );
        assert_eq!(storage.term(LogIndex(3)).unwrap(), Term(2));
        assert!(storage.term(LogIndex(4)).is_err());
        assert!(storage.entries(LogIndex(2), LogIndex(6), u64::MAX).is_err());
    }

    #[test]
    fn groups_share_one_log_without_mixing() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(Log::open(dir.path(), LogConfig::default()).unwrap());
        let mut a = DiskStorage::open(Arc::clone(&log), 1, &[1]).unwrap();
        let mut b = DiskStorage::open(Arc::clone(&log), 2, &[1]).unwrap();
        a.append(&[entry(1, 1, EntryKind::Normal, b"a1")]).unwrap();
        b.append(&[
            entry(1, 5, EntryKind::Normal, b"b1"),
            entry(2, 5, EntryKind::Normal, b"b2"),
        ])
        .unwrap();
        assert_eq!(a.last_index().unwrap(), LogIndex(1));
        assert_eq!(b.last_index().unwrap(), LogIndex(2));
        assert_eq!(
            a.entries(LogIndex(1), LogIndex(2), u64::MAX).unwrap()[0].data,
            &b"a1"[..]
        );
        assert_eq!(b.term(LogIndex(1)).unwrap(), Term(5));
    }
}
