//! A log shared between a node's handles and the test.

use std::sync::{Arc, Mutex};

use aegis_cluster::runtime::LogStore;
use aegis_raft::{
    Entry, HardState, InitialState, LogIndex, MemStorage, NodeId, SnapshotChunk, SnapshotMeta,
    Storage, StorageError, Term,
};
use bytes::Bytes;

/// An in-memory log shared by the node's two handles, so writes go through the log
/// writer thread, and snapshots through the driver's pause of it. It outlives its node,
/// so a test can restart a node on what it had written.
#[derive(Clone)]
pub struct SharedLog(Arc<Mutex<MemStorage>>);

impl SharedLog {
    /// An empty log of a group of `voters`.
    pub fn new(voters: &[NodeId]) -> SharedLog {
        SharedLog(Arc::new(Mutex::new(MemStorage::new(voters))))
    }
}

impl Storage for SharedLog {
    fn initial_state(&self) -> Result<InitialState, StorageError> {
        self.0.lock().unwrap().initial_state()
    }
    fn entries(
        &self,
        lo: LogIndex,
        hi: LogIndex,
        bytes_max: u64,
    ) -> Result<Vec<Entry>, StorageError> {
        self.0.lock().unwrap().entries(lo, hi, bytes_max)
    }
    fn term(&self, index: LogIndex) -> Result<Term, StorageError> {
        self.0.lock().unwrap().term(index)
    }
    fn first_index(&self) -> Result<LogIndex, StorageError> {
        self.0.lock().unwrap().first_index()
    }
    fn last_index(&self) -> Result<LogIndex, StorageError> {
        self.0.lock().unwrap().last_index()
    }
    fn snapshot_meta(&self) -> Result<SnapshotMeta, StorageError> {
        self.0.lock().unwrap().snapshot_meta()
    }
    fn snapshot_chunk(&self, offset: u64, len_max: usize) -> Result<SnapshotChunk, StorageError> {
        self.0.lock().unwrap().snapshot_chunk(offset, len_max)
    }
    fn compact(&mut self, index: LogIndex) -> Result<(), StorageError> {
        self.0.lock().unwrap().compact(index)
    }
}

impl LogStore for SharedLog {
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        self.0.lock().unwrap().append(entries);
        Ok(())
    }
    fn set_hard_state(&mut self, hard_state: HardState) -> Result<(), StorageError> {
        self.0.lock().unwrap().set_hard_state(hard_state);
        Ok(())
    }
    fn sync(&mut self) -> Result<(), StorageError> {
        Ok(())
    }
    fn writer(&self) -> Result<Option<SharedLog>, StorageError> {
        Ok(Some(self.clone()))
    }
    fn save_snapshot(&mut self, meta: SnapshotMeta, data: Bytes) -> Result<(), StorageError> {
        LogStore::save_snapshot(&mut *self.0.lock().unwrap(), meta, data)
    }
    fn install_snapshot(&mut self, meta: SnapshotMeta, data: Bytes) -> Result<(), StorageError> {
        LogStore::install_snapshot(&mut *self.0.lock().unwrap(), meta, data)
    }
}
