use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the log.
///
/// I/O failures while writing poison the log (see [`Error::Poisoned`]): after a failed
/// write or fsync the state of the file on disk is unknown, so the only safe way on is to
/// reopen the log and let recovery decide what is durable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What the log was doing (`"open"`, `"write"`, `"fsync"`, ...).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A configuration value is out of range; the message says which and why.
    #[error("invalid log configuration: {field}: {reason}")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// Bytes on disk fail their checksum or do not decode, at a place where a crash
    /// cannot explain them (before the tail of the last segment). The log refuses to
    /// start rather than silently drop acknowledged records.
    #[error("corrupt log: {path} at offset {offset}: {reason}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Byte offset of the first bad record or header in that file.
        offset: u64,
        /// What is wrong there.
        reason: String,
    },
    /// A record's payload is larger than `record_bytes_max`.
    #[error("record of {len} bytes exceeds record_bytes_max {max}")]
    RecordTooLarge {
        /// The payload length that was asked for.
        len: u64,
        /// The configured limit.
        max: u32,
    },
    /// One write (a [`crate::LogBatch`]) encodes to more than `batch_bytes_max`.
    #[error("write of {len} bytes exceeds batch_bytes_max {max}")]
    WriteTooLarge {
        /// The encoded size of the write.
        len: u64,
        /// The configured limit.
        max: u64,
    },
    /// An append does not continue the group's log (`index` must equal `expected`).
    #[error("group {group}: append at index {index}, expected {expected}")]
    NotContiguous {
        /// The Raft group.
        group: u64,
        /// The index the append started at.
        index: u64,
        /// The only index accepted next.
        expected: u64,
    },
    /// An append to an empty group starts below the group's compaction point.
    #[error("group {group}: append at index {index} is below the compaction point {first}")]
    BelowCompaction {
        /// The Raft group.
        group: u64,
        /// The index the append started at.
        index: u64,
        /// The group's first index (everything before it was compacted away).
        first: u64,
    },
    /// The group state's metadata is larger than `state_bytes_max`.
    #[error("group state metadata of {len} bytes exceeds state_bytes_max {max}")]
    StateTooLarge {
        /// The metadata length that was given.
        len: u64,
        /// The configured limit.
        max: u32,
    },
    /// A value handed to the log cannot be stored (for example it does not encode).
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// What is wrong with it.
        reason: String,
    },
    /// An earlier write or fsync failed; the log must be reopened.
    #[error("the log is poisoned by an earlier I/O failure and must be reopened")]
    Poisoned,
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { op, path, source }
}
