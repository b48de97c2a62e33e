//! Grow-only and positive-negative counters.

use aegis_vclock::NodeId;
use serde::{Deserialize, Serialize};

use crate::{Crdt, Error};

/// A grow-only counter: one monotonically growing count per replica, and the value is
/// their sum.
///
/// Semantics: concurrent increments all count; `join` takes the per-replica maximum, so
/// receiving the same state or delta twice changes nothing. The state is a vector of
/// `(node, count)` pairs sorted by node, and `join` is one merge pass over both vectors
/// (no hashing, no per-entry allocation). Replicas with a zero count are not stored.
///
/// ```
/// use aegis_crdt::GCounter;
/// let mut a = GCounter::new(1);
/// let mut b = GCounter::new(2);
/// a.increment(3);
/// let delta = b.increment(4);
/// a.merge(&delta);
/// assert_eq!(a.value(), 7);
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "GCounterRepr", into = "GCounterRepr")]
pub struct GCounter {
    node: NodeId,
    entries: Vec<(NodeId, u64)>,
}

#[derive(Serialize, Deserialize)]
struct GCounterRepr {
    node: NodeId,
    entries: Vec<(NodeId, u64)>,
}

impl From<GCounter> for GCounterRepr {
    fn from(c: GCounter) -> Self {
        Self {
            node: c.node,
            entries: c.entries,
        }
    }
}

impl TryFrom<GCounterRepr> for GCounter {
    type Error = postcard::Error;

    fn try_from(repr: GCounterRepr) -> Result<Self, Self::Error> {
        let sorted = repr.entries.windows(2).all(|w| w[0].0 < w[1].0);
        let nonzero = repr.entries.iter().all(|&(_, n)| n > 0);
        if !sorted || !nonzero {
            return Err(serde::de::Error::custom(
                "counter entries must be sorted by node, unique and non-zero",
            ));
        }
        Ok(Self {
            node: repr.node,
            entries: repr.entries,
        })
    }
}

impl PartialEq for GCounter {
    /// Equality of the replicated state; the local replica id is not part of it.
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl Eq for GCounter {}

impl GCounter {
    /// An empty counter owned by replica `node`.
    #[must_use]
    pub fn new(node: NodeId) -> Self {
        Self {
            node,
            entries: Vec::new(),
        }
    }

    /// The replica this counter increments for.
    #[must_use]
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// Adds `n` to this replica's count and returns the delta (this replica's new
    /// count alone).
    ///
    /// # Panics
    ///
    /// Panics if this replica's count would overflow `u64`; use
    /// [`GCounter::try_increment`] to get an error instead.
    pub fn increment(&mut self, n: u64) -> GCounter {
        match self.try_increment(n) {
            Ok(delta) => delta,
            Err(e) => panic!("{e}"),
        }
    }

    /// Adds `n` to this replica's count and returns the delta, or an error if the
    /// count would overflow (the state is then unchanged).
    pub fn try_increment(&mut self, n: u64) -> Result<GCounter, Error> {
        let current = self.count_of(self.node);
        let next = current.checked_add(n).ok_or(Error::CounterOverflow {
            node: self.node,
            current,
            increment: n,
        })?;
        let delta = GCounter {
            node: self.node,
            entries: if next == 0 {
                Vec::new()
            } else {
                vec![(self.node, next)]
            },
        };
        self.join(&delta);
        debug_assert_eq!(self.count_of(self.node), next);
        Ok(delta)
    }

    /// The count contributed by replica `node`.
    #[must_use]
    pub fn count_of(&self, node: NodeId) -> u64 {
        self.entries
            .binary_search_by_key(&node, |&(n, _)| n)
            .map_or(0, |i| self.entries[i].1)
    }

    /// The counter's value: the sum of all replicas' counts, saturating at `u64::MAX`
    /// (see [`GCounter::value_u128`] for the exact sum).
    #[must_use]
    pub fn value(&self) -> u64 {
        u64::try_from(self.value_u128()).unwrap_or(u64::MAX)
    }

    /// The exact sum of all replicas' counts.
    #[must_use]
    pub fn value_u128(&self) -> u128 {
        self.entries.iter().map(|&(_, n)| u128::from(n)).sum()
    }

    /// The `(node, count)` pairs, sorted by node.
    #[must_use]
    pub fn entries(&self) -> &[(NodeId, u64)] {
        &self.entries
    }

    /// Least upper bound with `other`: the per-replica maximum.
    pub fn join(&mut self, other: &GCounter) {
        if other.entries.is_empty() {
            return;
        }
        if other.entries.len() == 1 {
            let (node, n) = other.entries[0];
            match self.entries.binary_search_by_key(&node, |&(k, _)| k) {
                Ok(i) => self.entries[i].1 = self.entries[i].1.max(n),
                Err(i) => self.entries.insert(i, (node, n)),
            }
            return;
        }
        let same_nodes = self.entries.len() == other.entries.len()
            && self
                .entries
                .iter()
                .zip(&other.entries)
                .all(|(a, b)| a.0 == b.0);
        if same_nodes {
            for (a, b) in self.entries.iter_mut().zip(&other.entries) {
                a.1 = a.1.max(b.1);
            }
            return;
        }
        self.entries = merge_max(&self.entries, &other.entries);
        debug_assert!(self.entries.windows(2).all(|w| w[0].0 < w[1].0));
    }

    /// Same as [`GCounter::join`] (the seed's name).
    pub fn merge(&mut self, other: &GCounter) {
        self.join(other);
    }
}

fn merge_max(a: &[(NodeId, u64)], b: &[(NodeId, u64)]) -> Vec<(NodeId, u64)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push((a[i].0, a[i].1.max(b[j].1)));
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

impl Crdt for GCounter {
    fn join(&mut self, other: &Self) {
        GCounter::join(self, other);
    }

    fn join_changed(&mut self, other: &Self) -> bool {
        let grows = other.entries.iter().any(|&(n, c)| c > self.count_of(n));
        if grows {
            self.join(other);
        }
        grows
    }
}

/// A counter that can go up and down: two [`GCounter`]s, one for increments and one
/// for decrements; the value is their difference.
///
/// Semantics: every increment and decrement counts exactly once, whatever the order in
/// which replicas learn of them.
///
/// ```
/// use aegis_crdt::PNCounter;
/// let mut c = PNCounter::new(1);
/// c.increment(5);
/// c.decrement(7);
/// assert_eq!(c.value(), -2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PNCounter {
    p: GCounter,
    n: GCounter,
}

impl PNCounter {
    /// An empty counter owned by replica `node`.
    #[must_use]
    pub fn new(node: NodeId) -> Self {
        Self {
            p: GCounter::new(node),
            n: GCounter::new(node),
        }
    }

    /// Adds `by` and returns the delta.
    ///
    /// # Panics
    ///
    /// Panics if this replica's increment total would overflow `u64`.
    pub fn increment(&mut self, by: u64) -> PNCounter {
        let p = self.p.increment(by);
        PNCounter {
            p,
            n: GCounter::new(self.n.node),
        }
    }

    /// Subtracts `by` and returns the delta.
    ///
    /// # Panics
    ///
    /// Panics if this replica's decrement total would overflow `u64`.
    pub fn decrement(&mut self, by: u64) -> PNCounter {
        let n = self.n.increment(by);
        PNCounter {
            p: GCounter::new(self.p.node),
            n,
        }
    }

    /// The exact value: total increments minus total decrements.
    #[must_use]
    pub fn value(&self) -> i128 {
        // Each sum is below 2^64 * replicas, far inside i128 for any real cluster.
        self.p.value_u128() as i128 - self.n.value_u128() as i128
    }

    /// Least upper bound with `other`.
    pub fn join(&mut self, other: &PNCounter) {
        self.p.join(&other.p);
        self.n.join(&other.n);
    }

    /// Same as [`PNCounter::join`].
    pub fn merge(&mut self, other: &PNCounter) {
        self.join(other);
    }
}

impl Crdt for PNCounter {
    fn join(&mut self, other: &Self) {
        PNCounter::join(self, other);
    }

    fn join_changed(&mut self, other: &Self) -> bool {
        let p = self.p.join_changed(&other.p);
        self.n.join_changed(&other.n) || p
    }
}
