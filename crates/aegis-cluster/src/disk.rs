//! [`LogStore`] for [`aegis_log::DiskStorage`], a Raft group's log in the node's shared
//! write-ahead log.

use aegis_log::DiskStorage;
use aegis_raft::{Entry, HardState, StorageError};

use crate::runtime::LogStore;

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
}
