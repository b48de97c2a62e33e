//! Last-writer-wins register.

use aegis_vclock::{HlcTimestamp, NodeId};
use serde::{Deserialize, Serialize};

use crate::Crdt;

/// A last-writer-wins register: every write carries a 64-bit timestamp, and the write
/// with the greatest `(timestamp, writer node)` pair wins.
///
/// Semantics: of two concurrent writes, the one with the larger timestamp wins; equal
/// timestamps are broken by the larger writer node id, so every replica picks the same
/// winner. Should one writer reuse a timestamp for two different values (a caller bug),
/// the larger value wins so that `join` stays commutative. Timestamps are opaque `u64`s
/// compared numerically: a packed hybrid logical clock value (physical milliseconds in
/// the high bits, logical counter in the low bits) orders correctly as is. The register
/// never reads a clock itself.
///
/// ```
/// use aegis_crdt::LWWRegister;
/// let mut reg = LWWRegister::new();
/// reg.set("value", 10);
/// reg.set("older", 5); // loses: an earlier timestamp
/// assert_eq!(reg.get(), Some(&"value"));
///
/// // With a hybrid logical clock (the caller reads the physical clock).
/// use aegis_vclock::{Hlc, HlcConfig};
/// let mut hlc = Hlc::new(HlcConfig::default())?;
/// let mut reg = LWWRegister::with_node(7);
/// reg.set_hlc("a", hlc.now(1_700_000_000_000)?);
/// reg.set_hlc("b", hlc.now(1_700_000_000_000)?); // same millisecond, later logical
/// assert_eq!(reg.get(), Some(&"b"));
/// # Ok::<(), aegis_vclock::Error>(())
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LWWRegister<V> {
    node: NodeId,
    entry: Option<Stamped<V>>,
}

/// A register value with the `(timestamp, node)` pair that orders it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stamped<V> {
    timestamp: u64,
    node: NodeId,
    value: V,
}

impl<V: PartialEq> PartialEq for LWWRegister<V> {
    /// Equality of the replicated state; the local replica id is not part of it.
    fn eq(&self, other: &Self) -> bool {
        self.entry == other.entry
    }
}

impl<V: Eq> Eq for LWWRegister<V> {}

impl<V> Default for LWWRegister<V> {
    fn default() -> Self {
        Self {
            node: 0,
            entry: None,
        }
    }
}

impl<V: Ord + Clone> LWWRegister<V> {
    /// An empty register whose writes are attributed to node 0. Use
    /// [`LWWRegister::with_node`] when several replicas may write with equal timestamps.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty register whose writes are attributed to replica `node` (the tie-breaker
    /// for equal timestamps).
    #[must_use]
    pub fn with_node(node: NodeId) -> Self {
        Self { node, entry: None }
    }

    /// Writes `value` at `timestamp` and returns the delta (the write itself). If the
    /// register already holds a later write, the state does not change, and the
    /// returned delta is harmless to ship.
    pub fn set(&mut self, value: V, timestamp: u64) -> LWWRegister<V> {
        let delta = LWWRegister {
            node: self.node,
            entry: Some(Stamped {
                timestamp,
                node: self.node,
                value,
            }),
        };
        self.join(&delta);
        delta
    }

    /// Writes `value` at a hybrid logical clock timestamp (its packed `u64`, which
    /// orders like the clock); returns the delta.
    pub fn set_hlc(&mut self, value: V, timestamp: HlcTimestamp) -> LWWRegister<V> {
        self.set(value, timestamp.as_u64())
    }

    /// The current value, if any write happened.
    #[must_use]
    pub fn get(&self) -> Option<&V> {
        self.entry.as_ref().map(|e| &e.value)
    }

    /// The `(timestamp, node)` of the winning write.
    #[must_use]
    pub fn stamp(&self) -> Option<(u64, NodeId)> {
        self.entry.as_ref().map(|e| (e.timestamp, e.node))
    }

    /// Keeps the greater of the two writes.
    pub fn join(&mut self, other: &LWWRegister<V>) {
        self.join_inner(other);
    }

    /// Joins; true when `other`'s write replaced ours.
    fn join_inner(&mut self, other: &LWWRegister<V>) -> bool {
        let Some(theirs) = &other.entry else {
            return false;
        };
        let replace = match &self.entry {
            None => true,
            Some(ours) => {
                (theirs.timestamp, theirs.node, &theirs.value)
                    > (ours.timestamp, ours.node, &ours.value)
            }
        };
        if replace {
            self.entry = Some(theirs.clone());
        }
        replace
    }

    /// Same as [`LWWRegister::join`].
    pub fn merge(&mut self, other: &LWWRegister<V>) {
        self.join(other);
    }
}

impl<V: Ord + Clone> Crdt for LWWRegister<V> {
    fn join(&mut self, other: &Self) {
        LWWRegister::join(self, other);
    }

    fn join_changed(&mut self, other: &Self) -> bool {
        self.join_inner(other)
    }
}
