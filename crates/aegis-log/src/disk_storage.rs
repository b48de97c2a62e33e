//! [`DiskStorage`]: aegis-raft's [`Storage`] for one Raft group, kept in a shared [`Log`].

use std::path::PathBuf;
use std::sync::Arc;

use aegis_raft::{
    ConfState, Entry as RaftEntry, EntryKind, HardState as RaftHardState, InitialState, LogIndex,
    SnapshotChunk, SnapshotMeta, Storage, StorageError, Term,
};

use crate::batch::LogBatch;
use crate::error::{Error, Result, io_err};
use crate::format::{GroupState, HardState};
use crate::log::Log;
use crate::vfs::Vfs;

/// The durable log and state of one Raft group, stored in a [`Log`] shared with the
/// node's other groups.
///
/// Entries go into the log as records of the group (their [`EntryKind`] encoded in front
/// of the data); the hard state, the latest snapshot's metadata and the log's base (the
/// index and term of the last entry compacted away) go into the group's state file.
/// Reads implement [`Storage`]; writes are the methods below, each durable when it
/// returns.
///
/// A local snapshot ([`save_snapshot`](Self::save_snapshot)) keeps the entries it
/// covers until [`Storage::compact`] drops them, so a Raft node can keep a tail of them
/// for followers only a little behind; a snapshot installed from a leader
/// ([`apply_snapshot`](Self::apply_snapshot)) replaces them at once.
#[derive(Debug)]
pub struct DiskStorage {
    log: Arc<Log>,
    group: u64,
    hard_state: RaftHardState,
    snapshot: SnapshotMeta,
    /// The last entry compacted away: the log starts right after it. At or below the
    /// snapshot's index.
    base: Base,
}

/// The index and term of the entry a log starts after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Base {
    index: LogIndex,
    term: Term,
}

impl Base {
    fn of(snapshot: &SnapshotMeta) -> Base {
        Base {
            index: snapshot.index,
            term: snapshot.term,
        }
    }
}

impl DiskStorage {
    /// Opens the storage of `group`. A group the log has no state for starts empty with
    /// membership `conf_state`, which is saved at once; otherwise the saved hard state and
    /// snapshot metadata are loaded and `conf_state` is ignored.
    pub fn open(log: Arc<Log>, group: u64, conf_state: ConfState) -> Result<DiskStorage> {
        let Some(state) = log.state(group) else {
            let snapshot = SnapshotMeta {
                conf_state,
                ..SnapshotMeta::default()
            };
            let base = Base::of(&snapshot);
            let mut storage = DiskStorage {
                log,
                group,
                hard_state: RaftHardState::default(),
                snapshot,
                base,
            };
            storage.save()?;
            return Ok(storage);
        };
        let (snapshot, base) = decode_metadata(&state.metadata).map_err(|e| Error::Corrupt {
            path: log.dir().join(format!("group-{group:020}.state")),
            offset: 0,
            reason: format!("snapshot metadata: {e}"),
        })?;
        let hs = state.hard_state;
        let hard_state = RaftHardState {
            term: Term(hs.term),
            vote: hs.vote,
            commit: LogIndex(hs.commit),
        };
        assert!(
            base.index <= snapshot.index,
            "the log's base is behind its snapshot"
        );
        let storage = DiskStorage {
            log,
            group,
            hard_state,
            snapshot,
            base,
        };
        // A crash between saving the metadata and writing the log leaves entries the
        // base covers, or (installing a leader's snapshot) a log that disagrees with the
        // base; finish the job.
        let first = storage.base.index.0 + 1;
        let disagrees = storage
            .log
            .term(group, storage.base.index.0)
            .is_some_and(|term| term != storage.base.term.0);
        if disagrees {
            storage.log.truncate_suffix(group, first)?;
        }
        let unfinished = storage.log.first_index(group).is_some_and(|i| i < first)
            || storage.log.compacted_to(group) < first;
        if storage.base.index.0 > 0 && unfinished {
            storage.log.compact(group, first)?;
        }
        Ok(storage)
    }

    /// The group this storage belongs to.
    #[must_use]
    pub fn group(&self) -> u64 {
        self.group
    }

    /// The shared log underneath.
    #[must_use]
    pub fn log(&self) -> &Arc<Log> {
        &self.log
    }

    /// The last saved hard state.
    #[must_use]
    pub fn hard_state(&self) -> RaftHardState {
        self.hard_state
    }

    /// Durably stores `entries` (consecutive indices), replacing every stored entry at or
    /// after the first of them: the truncation and the appends share one write.
    pub fn append(&mut self, entries: &[RaftEntry]) -> Result<()> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        // One record more for a truncation; an entry's kind takes a few bytes.
        let data_bytes = entries
            .iter()
            .map(|e| e.data.len() + KIND_BYTES_RESERVED)
            .sum();
        let mut batch = LogBatch::with_capacity(entries.len() + 1, data_bytes);
        if self
            .log
            .last_index(self.group)
            .is_some_and(|last| first.index.0 <= last)
        {
            batch.truncate_suffix(self.group, first.index.0);
        }
        let mut data = Vec::new();
        for entry in entries {
            data.clear();
            encode_entry(entry, &mut data)?;
            batch.append(self.group, entry.index.0, entry.term.0, &data);
        }
        self.log.write(batch)
    }

    /// Durably stores the hard state.
    pub fn set_hard_state(&mut self, hard_state: RaftHardState) -> Result<()> {
        let previous = std::mem::replace(&mut self.hard_state, hard_state);
        self.save().inspect_err(|_| self.hard_state = previous)
    }

    /// Records that a snapshot now covers the log up to `meta.index` and drops every
    /// entry it covers, as after installing a snapshot from the leader. Entries after
    /// `meta.index` are kept only if the log's entry at `meta.index` has `meta.term` (the
    /// log agrees with the snapshot); otherwise the whole log goes. A snapshot older than
    /// the current one is ignored.
    pub fn apply_snapshot(&mut self, meta: SnapshotMeta) -> Result<()> {
        if meta.index <= self.snapshot.index {
            return Ok(());
        }
        let agrees = self.log.term(self.group, meta.index.0) == Some(meta.term.0);
        let base = Base::of(&meta);
        self.record(meta, base)?;
        let mut batch = LogBatch::new();
        if !agrees {
            batch.truncate_suffix(self.group, 0);
        }
        batch.compact(self.group, base.index.0 + 1);
        self.log.write(batch)
    }

    /// Makes `snapshot` and `base` the saved metadata. It must be durable before the
    /// entries it says are gone disappear; on failure nothing changes.
    fn record(&mut self, snapshot: SnapshotMeta, base: Base) -> Result<()> {
        debug_assert!(
            base.index <= snapshot.index,
            "the base is behind the snapshot"
        );
        let previous = (
            std::mem::replace(&mut self.snapshot, snapshot),
            std::mem::replace(&mut self.base, base),
        );
        self.save()
            .inspect_err(|_| (self.snapshot, self.base) = previous)
    }

    /// Durably stores `data`, the application's snapshot of the group's state machine
    /// as of `meta.index`, in a file of its own next to the group's state, then records
    /// the snapshot and removes the previous snapshot's file. So a crash at any point
    /// leaves the recorded snapshot's bytes readable. A leader streams these bytes to
    /// followers through [`Storage::snapshot_chunk`]. A snapshot older than the current
    /// one is ignored.
    ///
    /// When the log agrees with the snapshot (its entry at `meta.index` has `meta.term`,
    /// as for a snapshot of this node's own state machine) the entries stay until
    /// [`Storage::compact`] drops them; otherwise they go as in
    /// [`apply_snapshot`](Self::apply_snapshot).
    pub fn save_snapshot(&mut self, meta: SnapshotMeta, data: &[u8]) -> Result<()> {
        if meta.index <= self.snapshot.index {
            return Ok(());
        }
        self.snapshot_file(&meta).write(data)?;
        self.record_snapshot(meta)
    }

    /// The slow half of [`save_snapshot`](Self::save_snapshot), which may run on another
    /// thread: a writer that durably stores a snapshot's bytes in the file for `meta`,
    /// without changing what the group records. [`record_snapshot`](Self::record_snapshot)
    /// then records it. No other snapshot of the group may be saved, installed or
    /// recorded while the bytes are written.
    #[must_use]
    pub fn snapshot_file(&self, meta: &SnapshotMeta) -> SnapshotFile {
        SnapshotFile {
            vfs: Arc::clone(self.log.vfs()),
            dir: self.log.dir().to_path_buf(),
            path: self.snapshot_path(meta.index),
            index: meta.index,
            term: meta.term,
        }
    }

    /// The fast half of [`save_snapshot`](Self::save_snapshot): records the snapshot at
    /// `meta`, whose bytes a [`SnapshotFile`] stored, and removes the previous snapshot's
    /// file. A snapshot older than the current one is ignored.
    pub fn record_snapshot(&mut self, meta: SnapshotMeta) -> Result<()> {
        if meta.index <= self.snapshot.index {
            return Ok(());
        }
        let previous = self.snapshot.index;
        if self.log.term(self.group, meta.index.0) == Some(meta.term.0) {
            let base = self.base;
            self.record(meta, base)?;
        } else {
            self.apply_snapshot(meta)?;
        }
        // No longer read by anyone: a crash before this leaves an unused file behind,
        // and a failure to remove it costs only disk space.
        let _ = self.log.vfs().remove(&self.snapshot_path(previous));
        Ok(())
    }

    /// The file holding the bytes of the group's snapshot at `index`.
    fn snapshot_path(&self, index: LogIndex) -> PathBuf {
        self.log
            .dir()
            .join(format!("group-{:020}-{:020}.snapshot", self.group, index.0))
    }

    fn save(&mut self) -> Result<()> {
        let metadata = postcard::to_allocvec(&(&self.snapshot, (self.base.index, self.base.term)))
            .map_err(|e| Error::InvalidInput {
                reason: format!("snapshot metadata does not encode: {e}"),
            })?;
        let hs = self.hard_state;
        let hard_state = HardState {
            term: hs.term.0,
            vote: hs.vote,
            commit: hs.commit.0,
        };
        self.log.save_state(
            self.group,
            &GroupState {
                hard_state,
                metadata,
            },
        )
    }

    fn last(&self) -> LogIndex {
        LogIndex(self.log.last_index(self.group).unwrap_or(self.base.index.0))
    }

    fn check(&self, index: LogIndex) -> Result<(), StorageError> {
        if index <= self.base.index {
            return Err(StorageError::Compacted {
                index,
                first_index: self.base.index.next(),
            });
        }
        let last_index = self.last();
        if index > last_index {
            return Err(StorageError::Unavailable { index, last_index });
        }
        Ok(())
    }
}

/// Decodes saved metadata: the snapshot's, then the log's base. Metadata saved before the
/// base was recorded holds only the snapshot's, which the log then started right after.
fn decode_metadata(bytes: &[u8]) -> std::result::Result<(SnapshotMeta, Base), postcard::Error> {
    // The older layouts are prefixes of this one, so they fail here for want of bytes.
    if let Ok((snapshot, (index, term))) =
        postcard::from_bytes::<(SnapshotMeta, (LogIndex, Term))>(bytes)
    {
        return Ok((snapshot, Base { index, term }));
    }
    let snapshot = decode_snapshot_meta(bytes)?;
    let base = Base::of(&snapshot);
    Ok((snapshot, base))
}

/// Decodes saved snapshot metadata. Metadata saved before the membership gained learners
/// and a joint phase holds only the voters (postcard lays it out as index, term, voters);
/// it reads as a configuration of those voters.
fn decode_snapshot_meta(bytes: &[u8]) -> std::result::Result<SnapshotMeta, postcard::Error> {
    postcard::from_bytes(bytes).or_else(|err| {
        match postcard::from_bytes::<(LogIndex, Term, Vec<u64>)>(bytes) {
            Ok((index, term, voters)) => Ok(SnapshotMeta {
                index,
                term,
                conf_state: ConfState::with_voters(&voters),
            }),
            Err(_) => Err(err),
        }
    })
}

/// Room reserved for each entry's encoded kind (a normal entry's takes one byte).
const KIND_BYTES_RESERVED: usize = 8;

fn encode_entry(entry: &RaftEntry, out: &mut Vec<u8>) -> Result<()> {
    *out =
        postcard::to_extend(&entry.kind, std::mem::take(out)).map_err(|e| Error::InvalidInput {
            reason: format!("entry kind does not encode: {e}"),
        })?;
    out.extend_from_slice(&entry.data);
    Ok(())
}

fn decode_entry(entry: crate::Entry) -> Result<RaftEntry, StorageError> {
    let (kind, data) = postcard::take_from_bytes::<EntryKind>(&entry.data)
        .map_err(|e| backend(format!("entry {} has an unreadable kind: {e}", entry.index)))?;
    Ok(RaftEntry {
        term: Term(entry.term),
        index: LogIndex(entry.index),
        kind,
        data: data.to_vec().into(),
    })
}

fn backend(reason: impl Into<String>) -> StorageError {
    let source: Box<dyn std::error::Error + Send + Sync> = reason.into().into();
    StorageError::Backend { source }
}

fn log_error(e: Error) -> StorageError {
    StorageError::Backend {
        source: Box::new(e),
    }
}

impl Storage for DiskStorage {
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
    ) -> Result<Vec<RaftEntry>, StorageError> {
        if lo >= hi {
            return Ok(Vec::new());
        }
        self.check(lo)?;
        self.check(hi.prev())?;
        let mut out: Vec<RaftEntry> = Vec::new();
        let mut total = 0u64;
        let mut next = lo.0;
        // The log's byte budget counts whole records, which are larger than
        // `size_bytes`, so read in rounds until the Raft-sized budget is spent.
        while next < hi.0 {
            let budget = bytes_max.saturating_sub(total);
            let chunk = self
                .log
                .entries(self.group, next..hi.0, budget)
                .map_err(log_error)?;
            let Some(last) = chunk.last() else {
                return Err(backend(format!("entry {next} vanished while reading")));
            };
            if chunk[0].index != next {
                return Err(backend(format!("entry {next} vanished while reading")));
            }
            next = last.index + 1;
            for entry in chunk {
                let entry = decode_entry(entry)?;
                let size = entry.size_bytes();
                if !out.is_empty() && total + size > bytes_max {
                    return Ok(out);
                }
                total += size;
                out.push(entry);
            }
        }
        debug_assert!(out.windows(2).all(|w| w[1].index == w[0].index.next()));
        Ok(out)
    }

    fn term(&self, index: LogIndex) -> Result<Term, StorageError> {
        if index == self.base.index {
            return Ok(self.base.term);
        }
        if index == self.snapshot.index {
            return Ok(self.snapshot.term);
        }
        self.check(index)?;
        self.log
            .term(self.group, index.0)
            .map(Term)
            .ok_or_else(|| backend(format!("entry {index} vanished while reading")))
    }

    fn first_index(&self) -> Result<LogIndex, StorageError> {
        Ok(self.base.index.next())
    }

    fn last_index(&self) -> Result<LogIndex, StorageError> {
        Ok(self.last())
    }

    fn snapshot_meta(&self) -> Result<SnapshotMeta, StorageError> {
        Ok(self.snapshot.clone())
    }

    /// Drops the entries up to `index`, which the saved snapshot must cover (refused
    /// with [`StorageError::Unavailable`] otherwise); `index`'s term stays readable. The
    /// new base is saved before any entry goes, so a crash in between only leaves entries
    /// that the next open drops.
    fn compact(&mut self, index: LogIndex) -> Result<(), StorageError> {
        if index <= self.base.index {
            return Ok(());
        }
        if index > self.snapshot.index {
            return Err(StorageError::Unavailable {
                index,
                last_index: self.snapshot.index,
            });
        }
        let base = Base {
            index,
            term: self.term(index)?,
        };
        let snapshot = self.snapshot.clone();
        self.record(snapshot, base).map_err(log_error)?;
        self.log
            .compact(self.group, index.0 + 1)
            .map_err(log_error)?;
        debug_assert_eq!(self.first_index()?, index.next());
        Ok(())
    }

    /// Reads the file written by [`DiskStorage::save_snapshot`]; without one (or when it
    /// is not the current snapshot's, after a crash between writing it and recording the
    /// snapshot) there are no bytes to stream.
    fn snapshot_chunk(&self, offset: u64, len_max: usize) -> Result<SnapshotChunk, StorageError> {
        let path = self.snapshot_path(self.snapshot.index);
        let file = match self.log.vfs().open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StorageError::SnapshotUnavailable);
            }
            Err(e) => return Err(log_error(io_err("open", &path)(e))),
        };
        let size = file
            .size()
            .map_err(|e| log_error(io_err("stat", &path)(e)))?;
        let Some(len) = size.checked_sub(SNAPSHOT_HEADER_BYTES) else {
            return Err(StorageError::SnapshotUnavailable);
        };
        let mut header = [0u8; SNAPSHOT_HEADER_BYTES as usize];
        file.read_exact_at(&mut header, 0)
            .map_err(|e| log_error(io_err("read", &path)(e)))?;
        let (index, term) = decode_snapshot_header(&header).map_err(|reason| {
            log_error(Error::Corrupt {
                path: path.clone(),
                offset: 0,
                reason,
            })
        })?;
        if (index, term) != (self.snapshot.index, self.snapshot.term) {
            return Err(StorageError::SnapshotUnavailable);
        }
        let start = offset.min(len);
        let n = (len - start).min(len_max as u64);
        let mut data = vec![0u8; n as usize];
        file.read_exact_at(&mut data, SNAPSHOT_HEADER_BYTES + start)
            .map_err(|e| log_error(io_err("read", &path)(e)))?;
        Ok(SnapshotChunk {
            index,
            term,
            data: data.into(),
            last: start + n == len,
        })
    }
}

/// A snapshot file starts with [`SNAPSHOT_MAGIC`], the format version (`u32`, little
/// endian), four zero bytes, then the snapshot's index and term (`u64` each, little
/// endian); the state machine's bytes follow.
const SNAPSHOT_HEADER_BYTES: u64 = 32;

/// The first bytes of every snapshot file.
const SNAPSHOT_MAGIC: [u8; 8] = *b"AEGISSNP";

/// The snapshot file format this version writes and reads.
const SNAPSHOT_FORMAT_VERSION: u32 = 1;

/// A snapshot's bytes are written and synced this much at a time. Synced once at the
/// end, megabytes of them would reach the device in one burst, and every log sync
/// issued meanwhile (this node's own, or other programs' on the same disk) would wait
/// behind all of it; in pieces, it waits for one piece at most.
pub const SNAPSHOT_SYNC_BYTES: usize = 1 << 20;

/// Where a group's snapshot at one index is kept, for writing its bytes (see
/// [`DiskStorage::snapshot_file`]).
#[derive(Debug)]
pub struct SnapshotFile {
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    path: PathBuf,
    index: LogIndex,
    term: Term,
}

impl SnapshotFile {
    /// Durably stores `data` in the file: written under a temporary name (and synced
    /// every [`SNAPSHOT_SYNC_BYTES`]), synced, renamed into place and the directory
    /// synced, so a crash leaves either no file or the whole one.
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error) naming the file when a write, sync or rename fails.
    pub fn write(self, data: &[u8]) -> Result<()> {
        let tmp = self.path.with_extension("snapshot.tmp");
        let file = self.vfs.create(&tmp).map_err(io_err("create", &tmp))?;
        let header = encode_snapshot_header(self.index, self.term);
        file.write_all_at(&header, 0)
            .map_err(io_err("write", &tmp))?;
        let mut offset = SNAPSHOT_HEADER_BYTES;
        for piece in data.chunks(SNAPSHOT_SYNC_BYTES) {
            file.write_all_at(piece, offset)
                .map_err(io_err("write", &tmp))?;
            offset += piece.len() as u64;
            file.sync_data().map_err(io_err("fsync", &tmp))?;
        }
        if data.is_empty() {
            file.sync_data().map_err(io_err("fsync", &tmp))?;
        }
        self.vfs
            .rename(&tmp, &self.path)
            .map_err(io_err("rename", &tmp))?;
        self.vfs
            .sync_dir(&self.dir)
            .map_err(io_err("fsync", &self.dir))
    }
}

fn encode_snapshot_header(index: LogIndex, term: Term) -> [u8; SNAPSHOT_HEADER_BYTES as usize] {
    let mut header = [0u8; SNAPSHOT_HEADER_BYTES as usize];
    header[..8].copy_from_slice(&SNAPSHOT_MAGIC);
    header[8..12].copy_from_slice(&SNAPSHOT_FORMAT_VERSION.to_le_bytes());
    header[16..24].copy_from_slice(&index.0.to_le_bytes());
    header[24..].copy_from_slice(&term.0.to_le_bytes());
    header
}

/// The index and term a snapshot file's header names, or what is wrong with it.
fn decode_snapshot_header(
    header: &[u8; SNAPSHOT_HEADER_BYTES as usize],
) -> std::result::Result<(LogIndex, Term), String> {
    if header[..8] != SNAPSHOT_MAGIC {
        return Err("not a snapshot file (bad magic)".to_owned());
    }
    let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    if version != SNAPSHOT_FORMAT_VERSION {
        return Err(format!(
            "snapshot format version {version}; this build reads {SNAPSHOT_FORMAT_VERSION}"
        ));
    }
    if header[12..16] != [0; 4] {
        return Err("reserved header bytes are not zero".to_owned());
    }
    let index = LogIndex(u64::from_le_bytes(
        header[16..24].try_into().expect("8 bytes"),
    ));
    let term = Term(u64::from_le_bytes(
        header[24..].try_into().expect("8 bytes"),
    ));
    Ok((index, term))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_headers_round_trip_and_foreign_ones_are_refused() {
        let header = encode_snapshot_header(LogIndex(12), Term(5));
        assert_eq!(
            decode_snapshot_header(&header).unwrap(),
            (LogIndex(12), Term(5))
        );
        let mut other = header;
        other[0] ^= 1;
        assert!(
            decode_snapshot_header(&other)
                .unwrap_err()
                .contains("magic")
        );
        let mut newer = header;
        newer[8] = 2;
        assert!(
            decode_snapshot_header(&newer)
                .unwrap_err()
                .contains("version 2")
        );
        let mut reserved = header;
        reserved[13] = 1;
        assert!(decode_snapshot_header(&reserved).is_err());
    }

    #[test]
    fn metadata_saved_before_learners_existed_still_decodes() {
        let legacy = postcard::to_allocvec(&(LogIndex(7), Term(3), vec![3u64, 1, 2])).unwrap();
        let meta = decode_snapshot_meta(&legacy).unwrap();
        assert_eq!((meta.index, meta.term), (LogIndex(7), Term(3)));
        assert_eq!(meta.conf_state, ConfState::with_voters(&[1, 2, 3]));
        let current = SnapshotMeta {
            index: LogIndex(9),
            term: Term(4),
            conf_state: ConfState {
                voters: vec![1, 2],
                learners: vec![4],
                voters_outgoing: vec![1, 2, 3],
            },
        };
        let bytes = postcard::to_allocvec(&current).unwrap();
        assert_eq!(decode_snapshot_meta(&bytes).unwrap(), current);
        assert!(decode_snapshot_meta(&bytes[..2]).is_err());
    }
}
