//! Vector clocks and version vectors as sorted small vectors of `(node, counter)` pairs.

use core::cmp;
use core::fmt;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::{Error, NodeId};

/// Entries compared per step on the aligned fast path.
const BLOCK: usize = 8;

type Block = [(NodeId, u64); BLOCK];

/// The aligned prefix found by [`aligned_prefix`]: its length and the OR of the
/// per-block flags.
struct Aligned {
    len: usize,
    flags: u8,
}

/// Walks both slices in blocks while their node ids agree, folding `block` over each
/// matching block, then entry by entry up to the first differing node.
fn aligned_prefix(
    a: &[(NodeId, u64)],
    b: &[(NodeId, u64)],
    block: impl Fn(&[(NodeId, u64)], &[(NodeId, u64)]) -> u8,
) -> Aligned {
    let n = a.len().min(b.len());
    let mut len = 0;
    let mut flags = 0;
    for (x, y) in a.chunks_exact(BLOCK).zip(b.chunks_exact(BLOCK)) {
        let x: &Block = x.try_into().expect("chunks_exact yields full blocks");
        let y: &Block = y.try_into().expect("chunks_exact yields full blocks");
        if nodes_differ(x, y) {
            break;
        }
        flags |= block(x, y);
        len += BLOCK;
    }
    while len < n && a[len].0 == b[len].0 {
        flags |= block(&a[len..=len], &b[len..=len]);
        len += 1;
    }
    Aligned { len, flags }
}

/// True when the node ids of two blocks differ anywhere (no early exit, so
/// the loop compiles to straight-line code).
fn nodes_differ(x: &Block, y: &Block) -> bool {
    x.iter()
        .zip(y)
        .fold(false, |differ, (p, q)| differ | (p.0 != q.0))
}

/// Entries kept inline before the clock spills to the heap.
const INLINE_ENTRIES: usize = 4;

type Entries = SmallVec<[(NodeId, u64); INLINE_ENTRIES]>;

/// The result of comparing two clocks under the causal partial order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ordering {
    /// Every event of the left clock is also in the right one, and the right has more.
    Before,
    /// Every event of the right clock is also in the left one, and the left has more.
    After,
    /// Both clocks record exactly the same events.
    Equal,
    /// Each clock records an event the other lacks.
    Concurrent,
}

impl Ordering {
    /// The same relation seen from the other side.
    #[must_use]
    pub const fn reverse(self) -> Self {
        match self {
            Self::Before => Self::After,
            Self::After => Self::Before,
            other => other,
        }
    }
}

/// A vector clock: a map from node to the number of events seen from it.
///
/// Stored as pairs sorted by node id, with zero counters never stored, so structural
/// equality is causal equality. Up to four entries live inline; comparison and merge are
/// a single merge-join pass over both vectors.
///
/// # Pruning
///
/// [`VectorClock::prune`] drops the entry of a retired node. This is safe only when the
/// node will never produce another event and every clock this one is ever compared with
/// or merged into has already pruned the node or holds the same counter for it (the
/// entry is causally stable). Otherwise a pruned clock may compare as `Before` or
/// `Concurrent` where the unpruned one would be `Equal` or `After`, and a merge may bring
/// the entry back.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct VectorClock {
    entries: Entries,
}

/// A version vector: the same data structure as [`VectorClock`], used to summarise
/// which updates of each replica a state includes rather than which events a process saw.
pub type VersionVector = VectorClock;

impl VectorClock {
    /// An empty clock: no events from any node.
    #[must_use]
    pub fn new() -> Self {
        Self {
            entries: SmallVec::new(),
        }
    }

    /// Records one more event from `node` and returns its new counter.
    ///
    /// # Panics
    ///
    /// Panics if the counter would overflow `u64`.
    pub fn increment(&mut self, node: NodeId) -> u64 {
        match self.search(node) {
            Ok(i) => {
                let counter = &mut self.entries[i].1;
                *counter = counter
                    .checked_add(1)
                    .expect("vector clock counter overflow");
                *counter
            }
            Err(i) => {
                self.entries.insert(i, (node, 1));
                1
            }
        }
    }

    /// The number of events seen from `node` (0 if none).
    #[must_use]
    pub fn get(&self, node: NodeId) -> u64 {
        self.search(node).map_or(0, |i| self.entries[i].1)
    }

    /// Raises the counter of `node` to at least `counter`.
    pub fn observe(&mut self, node: NodeId, counter: u64) {
        if counter == 0 {
            return;
        }
        match self.search(node) {
            Ok(i) => self.entries[i].1 = self.entries[i].1.max(counter),
            Err(i) => self.entries.insert(i, (node, counter)),
        }
    }

    /// Sets the counter of `node` to exactly `counter` (0 removes the entry).
    pub fn set(&mut self, node: NodeId, counter: u64) {
        match (self.search(node), counter) {
            (Ok(i), 0) => {
                self.entries.remove(i);
            }
            (Ok(i), c) => self.entries[i].1 = c,
            (Err(_), 0) => {}
            (Err(i), c) => self.entries.insert(i, (node, c)),
        }
    }

    /// Drops the entry of a retired node and returns its counter (0 if absent).
    ///
    /// See the type-level documentation for when this is safe.
    pub fn prune(&mut self, node: NodeId) -> u64 {
        match self.search(node) {
            Ok(i) => self.entries.remove(i).1,
            Err(_) => 0,
        }
    }

    /// Number of nodes with a non-zero counter.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no event has been recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `(node, counter)` pairs in increasing node order; counters are never zero.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (NodeId, u64)> + '_ {
        self.entries.iter().copied()
    }

    /// Sum of all counters: the number of events recorded.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.entries.iter().map(|&(_, c)| c).sum()
    }

    /// Least upper bound: the pointwise maximum of both clocks, in place.
    pub fn merge(&mut self, other: &Self) {
        if other.entries.is_empty() {
            return;
        }
        let b = &other.entries[..];
        let a = &mut self.entries[..];
        // Take the maximum block by block while the node ids line up (checked without
        // branches per entry); a block is written only once its ids are known to match.
        let n = a.len().min(b.len());
        let mut done = 0;
        for (x, y) in a.chunks_exact_mut(BLOCK).zip(b.chunks_exact(BLOCK)) {
            let x: &mut Block = x.try_into().expect("chunks_exact yields full blocks");
            let y: &Block = y.try_into().expect("chunks_exact yields full blocks");
            if nodes_differ(x, y) {
                break;
            }
            for (p, q) in x.iter_mut().zip(y) {
                p.1 = p.1.max(q.1);
            }
            done += BLOCK;
        }
        while done < n && a[done].0 == b[done].0 {
            a[done].1 = a[done].1.max(b[done].1);
            done += 1;
        }
        if done < b.len() {
            self.merge_general(other, done);
        }
        self.debug_check();
        debug_assert!(self.dominates(other));
    }

    /// Least upper bound as a new clock.
    #[must_use]
    pub fn merged(&self, other: &Self) -> Self {
        let mut out = self.clone();
        out.merge(other);
        out
    }

    /// Greatest lower bound: the pointwise minimum, in place.
    pub fn meet(&mut self, other: &Self) {
        self.entries.retain(|(node, counter)| {
            let theirs = other.get(*node);
            *counter = (*counter).min(theirs);
            *counter != 0
        });
        self.debug_check();
    }

    /// Compares two clocks under the causal partial order.
    #[must_use]
    pub fn compare(&self, other: &Self) -> Ordering {
        let (a, b) = (&self.entries[..], &other.entries[..]);
        // Fast path: clocks over the same nodes (the common case once a cluster has
        // exchanged a few messages) are compared block by block without branches;
        // the first block whose node ids differ hands over to the merge-join.
        let aligned = aligned_prefix(a, b, |x, y| {
            let mut flags = 0u8;
            for (p, q) in x.iter().zip(y) {
                flags |= u8::from(p.1 < q.1) | (u8::from(p.1 > q.1) << 1);
            }
            flags
        });
        let (mut less, mut greater) = (aligned.flags & 1 != 0, aligned.flags & 2 != 0);
        let (mut i, mut j) = (aligned.len, aligned.len);
        while i < a.len() && j < b.len() && !(less && greater) {
            match a[i].0.cmp(&b[j].0) {
                cmp::Ordering::Less => {
                    greater = true;
                    i += 1;
                }
                cmp::Ordering::Greater => {
                    less = true;
                    j += 1;
                }
                cmp::Ordering::Equal => {
                    less |= a[i].1 < b[j].1;
                    greater |= a[i].1 > b[j].1;
                    i += 1;
                    j += 1;
                }
            }
        }
        greater |= i < a.len();
        less |= j < b.len();
        match (less, greater) {
            (false, false) => Ordering::Equal,
            (true, false) => Ordering::Before,
            (false, true) => Ordering::After,
            (true, true) => Ordering::Concurrent,
        }
    }

    /// True when `self` is strictly before `other`.
    #[must_use]
    pub fn happened_before(&self, other: &Self) -> bool {
        self.compare(other) == Ordering::Before
    }

    /// True when `self` has seen every event `other` has (`other <= self`).
    #[must_use]
    pub fn dominates(&self, other: &Self) -> bool {
        matches!(self.compare(other), Ordering::After | Ordering::Equal)
    }

    /// True when each clock has an event the other lacks.
    #[must_use]
    pub fn is_concurrent(&self, other: &Self) -> bool {
        self.compare(other) == Ordering::Concurrent
    }

    /// True when `self <= other` in the partial order.
    #[must_use]
    pub fn leq(&self, other: &Self) -> bool {
        matches!(self.compare(other), Ordering::Before | Ordering::Equal)
    }

    fn search(&self, node: NodeId) -> Result<usize, usize> {
        self.entries.binary_search_by_key(&node, |&(n, _)| n)
    }

    /// Merge-join of the entries from `start` on; the first `start` entries of both
    /// clocks have the same nodes and are already merged.
    fn merge_general(&mut self, other: &Self, start: usize) {
        let (a, b) = (&self.entries, &other.entries);
        let mut out = Entries::with_capacity(a.len().max(b.len()) + 1);
        out.extend_from_slice(&a[..start]);
        let (mut i, mut j) = (start, start);
        while i < a.len() && j < b.len() {
            match a[i].0.cmp(&b[j].0) {
                cmp::Ordering::Less => {
                    out.push(a[i]);
                    i += 1;
                }
                cmp::Ordering::Greater => {
                    out.push(b[j]);
                    j += 1;
                }
                cmp::Ordering::Equal => {
                    out.push((a[i].0, a[i].1.max(b[j].1)));
                    i += 1;
                    j += 1;
                }
            }
        }
        out.extend_from_slice(&a[i..]);
        out.extend_from_slice(&b[j..]);
        self.entries = out;
    }

    fn debug_check(&self) {
        debug_assert!(
            self.entries.windows(2).all(|w| w[0].0 < w[1].0),
            "vector clock entries must be strictly sorted by node"
        );
        debug_assert!(
            self.entries.iter().all(|&(_, c)| c > 0),
            "vector clock never stores a zero counter"
        );
    }

    fn from_sorted(entries: Vec<(NodeId, u64)>) -> Result<Self, Error> {
        for (index, w) in entries.windows(2).enumerate() {
            if w[0].0 >= w[1].0 {
                return Err(Error::UnsortedEntries { index: index + 1 });
            }
        }
        if let Some(&(node, _)) = entries.iter().find(|&&(_, c)| c == 0) {
            return Err(Error::ZeroCounter { node });
        }
        let clock = Self {
            entries: SmallVec::from_vec(entries),
        };
        clock.debug_check();
        Ok(clock)
    }
}

impl PartialOrd for VectorClock {
    fn partial_cmp(&self, other: &Self) -> Option<cmp::Ordering> {
        match self.compare(other) {
            Ordering::Before => Some(cmp::Ordering::Less),
            Ordering::After => Some(cmp::Ordering::Greater),
            Ordering::Equal => Some(cmp::Ordering::Equal),
            Ordering::Concurrent => None,
        }
    }
}

impl fmt::Debug for VectorClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl FromIterator<(NodeId, u64)> for VectorClock {
    /// Builds a clock taking the maximum counter per node; zero counters are skipped.
    fn from_iter<I: IntoIterator<Item = (NodeId, u64)>>(iter: I) -> Self {
        let mut pairs: Vec<(NodeId, u64)> = iter.into_iter().filter(|&(_, c)| c > 0).collect();
        pairs.sort_unstable();
        let mut entries = Entries::with_capacity(pairs.len());
        for (node, counter) in pairs {
            match entries.last_mut() {
                Some(last) if last.0 == node => last.1 = last.1.max(counter),
                _ => entries.push((node, counter)),
            }
        }
        let clock = Self { entries };
        clock.debug_check();
        clock
    }
}

impl Serialize for VectorClock {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.entries.iter())
    }
}

impl<'de> Deserialize<'de> for VectorClock {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entries = Vec::<(NodeId, u64)>::deserialize(deserializer)?;
        Self::from_sorted(entries).map_err(serde::de::Error::custom)
    }
}
