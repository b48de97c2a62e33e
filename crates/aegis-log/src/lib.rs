//! A durable, segmented write-ahead log for Raft, shared by every Raft group of a node.
//!
//! Records are appended to segment files (a checksummed header with magic and format
//! version, then frames of `length | crc32c | payload`). Every record names its group, so
//! one log, and one fsync, serves thousands of groups. Concurrent writers are combined
//! by group commit: the first writer to find the log idle becomes the batch leader,
//! writes everything queued so far and fsyncs once for all of them.
//!
//! # Contract
//!
//! - [`Log::write`] returns `Ok` only once the write is durable (under
//!   [`SyncPolicy::EveryBatch`]); after a crash, [`Log::open`] recovers every
//!   acknowledged write.
//! - A group's entries stay index-contiguous: appends continue the last entry,
//!   [`LogBatch::truncate_suffix`] removes a conflicting tail, [`LogBatch::compact`]
//!   removes a prefix. Whole segments are deleted once none of their entries is live.
//! - Recovery cuts a torn record at the end of the last segment and refuses to open, with
//!   [`Error::Corrupt`] naming file and offset, when damage appears anywhere else. No
//!   bytes on disk make it panic.
//! - Group hard state and metadata are written atomically beside the segments
//!   ([`Log::save_state`]).
//! - [`DiskStorage`] is aegis-raft's `Storage` for one group on top of a shared [`Log`].
//! - The log never reads the clock. File access goes through the [`Vfs`] trait;
//!   [`MemVfs`] is an in-memory implementation that can simulate power failures.
//!
//! The on-disk format is described in `docs/log-format.md`.
//!
//! # Example
//!
//! ```
//! use aegis_log::{Log, LogBatch, LogConfig};
//!
//! # fn main() -> Result<(), aegis_log::Error> {
//! let dir = tempfile::tempdir().expect("temporary directory");
//! let log = Log::open(dir.path(), LogConfig::default())?;
//!
//! // One batch, two groups, one fsync.
//! let mut batch = LogBatch::new();
//! batch.append(1, 1, 1, b"set x 1").append(1, 2, 1, b"set y 2");
//! batch.append(7, 1, 3, b"other group");
//! log.write(batch)?;
//!
//! // A follower learns that entry 2 of group 1 conflicts with the leader.
//! log.truncate_suffix(1, 2)?;
//! log.append(1, 2, 2, b"set y 3")?;
//! drop(log);
//!
//! let log = Log::open(dir.path(), LogConfig::default())?;
//! assert_eq!(log.last_index(1), Some(2));
//! assert_eq!(log.term(1, 2), Some(2));
//! assert_eq!(log.entry(1, 2)?.expect("held").data, b"set y 3");
//! assert_eq!(log.entry(7, 1)?.expect("held").term, 3);
//! # Ok(())
//! # }
//! ```

mod batch;
mod config;
mod disk_storage;
mod error;
pub mod format;
mod index;
mod log;
mod recover;
mod vfs;

pub use batch::LogBatch;
pub use config::{LogConfig, SyncPolicy};
pub use disk_storage::{DiskStorage, SNAPSHOT_SYNC_BYTES, SnapshotFile};
pub use error::{Error, Result};
pub use format::{GroupState, HardState};
pub use log::{Entry, Log, LogStats};
pub use vfs::{MemVfs, StdVfs, Vfs, VfsFile};
