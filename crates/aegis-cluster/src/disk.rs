//! [`LogStore`] for [`aegis_log::DiskStorage`], a Raft group's log in the node's shared
//! write-ahead log.

use std::sync::Arc;

use aegis_log::DiskStorage;
use aegis_raft::{Entry, HardState, SnapshotMeta, Storage, StorageError};
use bytes::Bytes;

use crate::runtime::{LogStore, SnapshotWriter};

fn backend(e: aegis_log::Error) -> StorageError {
    StorageError::Backend {
        source: Box::new(e),
    }
}

impl LogStore for DiskStorage {
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        DiskStorage::append(self, entries).map_err(backend)
    }

    /// Rewrites the group's state file only when the term or the vote changes.
    ///
    /// Rewriting it costs a rename and two fsyncs, and the commit index changes with
    /// almost every batch while Raft does not need it durable: a restarted node learns it
    /// again from the leader, and the driver skips entries a persistent state machine
    /// already applied.
    fn set_hard_state(&mut self, hard_state: HardState) -> Result<(), StorageError> {
        let saved = self.hard_state();
        if hard_state.term == saved.term && hard_state.vote == saved.vote {
            return Ok(());
        }
        DiskStorage::set_hard_state(self, hard_state).map_err(backend)
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        // Every `DiskStorage` write returns once it is durable.
        Ok(())
    }

    /// Writes the snapshot file; the entries it covers stay until the node compacts the
    /// log, keeping
    /// [`compaction_tail_entries`](crate::runtime::RaftConfig::compaction_tail_entries)
    /// of them.
    fn save_snapshot(&mut self, meta: SnapshotMeta, data: Bytes) -> Result<(), StorageError> {
        DiskStorage::save_snapshot(self, meta, &data).map_err(backend)
    }

    fn snapshot_writer(&self, meta: &SnapshotMeta) -> Option<SnapshotWriter> {
        let file = self.snapshot_file(meta);
        Some(Box::new(move |data| file.write(data).map_err(backend)))
    }

    fn record_snapshot(&mut self, meta: SnapshotMeta) -> Result<(), StorageError> {
        DiskStorage::record_snapshot(self, meta).map_err(backend)
    }

    fn install_snapshot(&mut self, meta: SnapshotMeta, data: Bytes) -> Result<(), StorageError> {
        let index = meta.index;
        DiskStorage::save_snapshot(self, meta, &data).map_err(backend)?;
        if self.snapshot_meta()?.index != index {
            return Err(StorageError::Backend {
                source: format!("the log kept a newer snapshot than the one at {index}").into(),
            });
        }
        // A log that agreed with the snapshot kept its entries: an install drops them.
        self.compact(index)?;
        // Entries after the snapshot survive when the log agreed with it at its index;
        // an install replaces the whole log.
        if self.last_index()? > index {
            self.log()
                .truncate_suffix(self.group(), index.0 + 1)
                .map_err(backend)?;
        }
        debug_assert_eq!(self.last_index()?, index);
        Ok(())
    }

    /// The same group opened again on the shared log: the log's index is shared, so
    /// entries appended through the writer are visible here once written. This handle's
    /// copy of the hard state is read only at start, before the writer exists.
    fn writer(&self) -> Result<Option<DiskStorage>, StorageError> {
        let conf_state = self.snapshot_meta()?.conf_state;
        DiskStorage::open(Arc::clone(self.log()), self.group(), conf_state)
            .map(Some)
            .map_err(backend)
    }
}
