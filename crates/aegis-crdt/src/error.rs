//! The crate's error type.

use aegis_vclock::NodeId;

/// Everything that can go wrong in this crate: bad configuration, counter overflow and
/// malformed encoded bytes. Protocol invariants are asserted, not reported here.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input to [`crate::codec::decode`] was empty: not even a format version byte.
    #[error("encoded value is empty")]
    Empty,
    /// The format version byte names a version this build cannot read.
    #[error("unsupported encoding version {found} (this build reads version {supported})")]
    UnsupportedVersion {
        /// The version byte found in the input.
        found: u8,
        /// The only version this build reads.
        supported: u8,
    },
    /// The type tag byte names a different CRDT type than the one asked for.
    #[error("encoded value has type tag {found}, expected {expected}")]
    WrongType {
        /// The tag found in the input.
        found: u8,
        /// The tag of the requested type.
        expected: u8,
    },
    /// The payload is not a valid postcard encoding of the type, or it breaks one of the
    /// type's invariants (unsorted entries, a dot outside the causal context, ...).
    #[error("malformed encoded value: {source}")]
    Decode {
        /// What postcard (or the type's validation) reported.
        #[from]
        source: postcard::Error,
    },
    /// The payload decoded but bytes were left over after it.
    #[error("{count} trailing bytes after the encoded value")]
    TrailingBytes {
        /// How many bytes were left over.
        count: usize,
    },
    /// The payload decoded, but is not the one encoding of its value (a varint written
    /// longer than needed, say): every state has exactly one encoding, so equal states
    /// always come as equal bytes.
    #[error("the encoded value is not in its canonical form")]
    NotCanonical,
    /// A counter increment would overflow the 64-bit per-replica count.
    #[error("counter of node {node} would overflow: {current} + {increment}")]
    CounterOverflow {
        /// The replica whose count would overflow.
        node: NodeId,
        /// Its current count.
        current: u64,
        /// The requested increment.
        increment: u64,
    },
    /// An anti-entropy configuration value is out of range.
    #[error("invalid anti-entropy configuration: {field} = {value} ({reason})")]
    InvalidConfig {
        /// The configuration field at fault.
        field: &'static str,
        /// Its value.
        value: u64,
        /// Why it is rejected.
        reason: &'static str,
    },
}
