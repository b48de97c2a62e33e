//! Integration tests of the cluster runtime.

mod disk;
mod membership;
mod memory;
mod quic;
mod runtime;
mod shared_log;
mod snapshot;

use std::sync::{Arc, Mutex};

use aegis_cluster::runtime::StateMachine;
use aegis_raft::LogIndex;
use bytes::Bytes;

/// Every command applied, in order.
type Applied = Vec<Vec<u8>>;

/// Records what it applies and answers with the count so far.
#[derive(Clone, Default)]
pub struct Journal {
    applied: Arc<Mutex<Applied>>,
    last: Arc<Mutex<LogIndex>>,
}

impl Journal {
    /// What was applied so far.
    pub fn commands(&self) -> Applied {
        self.applied.lock().unwrap().clone()
    }
}

impl StateMachine for Journal {
    type Output = Bytes;

    fn apply(&mut self, index: LogIndex, data: &[u8]) -> Bytes {
        let mut applied = self.applied.lock().unwrap();
        applied.push(data.to_vec());
        *self.last.lock().unwrap() = index;
        Bytes::from(applied.len().to_string())
    }

    fn applied_index(&self) -> LogIndex {
        *self.last.lock().unwrap()
    }
}
