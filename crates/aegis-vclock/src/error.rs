//! The crate's error type.

use crate::NodeId;

/// Everything that can go wrong in this crate: malformed encodings, clocks out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A decoded vector's node ids are not strictly increasing at position `index`.
    #[error("vector entries not strictly sorted by node at index {index}")]
    UnsortedEntries {
        /// Position of the first entry that is not greater than its predecessor.
        index: usize,
    },
    /// A decoded vector or dot carries a zero counter, which is never stored.
    #[error("zero counter stored for node {node}")]
    ZeroCounter {
        /// The node whose counter is zero.
        node: NodeId,
    },
    /// A physical time does not fit in the 48 bits of a hybrid logical timestamp.
    #[error("physical time {physical_ms} ms does not fit in 48 bits")]
    PhysicalTimeOutOfRange {
        /// The offending wall time, milliseconds since the Unix epoch.
        physical_ms: u64,
    },
    /// A logical counter does not fit in the 16 bits of a hybrid logical timestamp.
    #[error("logical counter {logical} does not fit in 16 bits")]
    LogicalOutOfRange {
        /// The offending counter.
        logical: u64,
    },
    /// A remote hybrid timestamp is further ahead of the local wall clock than allowed.
    #[error(
        "remote time {remote_ms} ms is more than {offset_ms_max} ms ahead of local {local_ms} ms"
    )]
    RemoteTooFarAhead {
        /// Physical part of the remote timestamp.
        remote_ms: u64,
        /// Local wall time passed to the update.
        local_ms: u64,
        /// The configured bound.
        offset_ms_max: u64,
    },
    /// The hybrid logical clock reached the largest representable timestamp.
    #[error("hybrid logical clock exhausted")]
    ClockExhausted,
    /// A configuration field holds a value outside its valid range.
    #[error("invalid configuration field `{field}`: {reason}")]
    InvalidConfig {
        /// Name of the field.
        field: &'static str,
        /// What the valid range is.
        reason: &'static str,
    },
    /// An event was requested on an anonymous interval tree clock stamp (id 0).
    #[error("anonymous stamp cannot record events")]
    AnonymousStamp,
    /// Two interval tree clock stamps with overlapping ids were joined.
    #[error("joined stamps have overlapping ids")]
    OverlappingIds,
    /// A counter would exceed `u64::MAX`.
    #[error("counter overflow")]
    CounterOverflow,
    /// Input ended before the value was complete.
    #[error("input truncated")]
    Truncated,
    /// Bytes or non-zero padding bits remain after a complete value.
    #[error("{bytes} unexpected trailing bytes")]
    TrailingBytes {
        /// How many bytes were left over (0 for non-zero padding bits).
        bytes: usize,
    },
    /// An encoded tree is nested deeper than the decoder allows.
    #[error("tree nested deeper than {depth_max}")]
    DepthExceeded {
        /// The configured bound.
        depth_max: u32,
    },
    /// An encoded value is longer than the decoder allows.
    #[error("encoded value of {len} bytes exceeds the maximum of {len_max}")]
    TooLong {
        /// Length of the input.
        len: usize,
        /// The configured bound.
        len_max: usize,
    },
    /// An encoded tree is not in normal form (so the encoding would not be unique).
    #[error("encoded tree is not normalised")]
    NotNormalized,
    /// An encoded integer is longer than needed or does not fit in 64 bits.
    #[error("malformed variable-length integer")]
    BadVarint,
    /// A decoded dotted version vector entry holds more live values than writes.
    #[error("entry of node {node} holds {values} values but counts only {counter} writes")]
    TooManyValues {
        /// The node of the entry.
        node: NodeId,
        /// Number of values held.
        values: u64,
        /// The entry's counter.
        counter: u64,
    },
}
