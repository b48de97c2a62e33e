//! Dots and causal contexts (compact version vector plus dot cloud).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{Error, NodeId, VersionVector};

/// One event: the `counter`-th event of `node`. Counters start at 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Dot {
    /// The node that produced the event.
    pub node: NodeId,
    /// The position of the event in that node's sequence, starting at 1.
    pub counter: u64,
}

impl Dot {
    /// The `counter`-th event of `node`.
    #[must_use]
    pub const fn new(node: NodeId, counter: u64) -> Self {
        Self { node, counter }
    }
}

/// A set of dots, stored as a version vector of gap-free prefixes plus a cloud of dots
/// received out of order (the causal context of delta-state CRDTs, Almeida, Shoker and
/// Baquero 2018).
///
/// The representation is kept canonical after every operation: the vector holds, for
/// each node, the longest run `1..=n` of contained dots, and the cloud holds only dots
/// beyond a gap (`counter > n + 1`). Two contexts are therefore equal exactly when they
/// contain the same dots, and [`CausalContext::compact`] never has anything left to do
/// on a value built through this API; it exists to make the contract explicit and is
/// applied to every deserialized value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CausalContextRepr", into = "CausalContextRepr")]
pub struct CausalContext {
    vv: VersionVector,
    cloud: BTreeSet<Dot>,
}

/// Wire form of a [`CausalContext`]; canonicalised and validated on the way in.
#[derive(Serialize, Deserialize)]
struct CausalContextRepr {
    vv: VersionVector,
    cloud: Vec<Dot>,
}

impl From<CausalContext> for CausalContextRepr {
    fn from(cc: CausalContext) -> Self {
        Self {
            vv: cc.vv,
            cloud: cc.cloud.into_iter().collect(),
        }
    }
}

impl TryFrom<CausalContextRepr> for CausalContext {
    type Error = Error;

    fn try_from(repr: CausalContextRepr) -> Result<Self, Error> {
        if let Some(dot) = repr.cloud.iter().find(|d| d.counter == 0) {
            return Err(Error::ZeroCounter { node: dot.node });
        }
        let mut cc = Self {
            vv: repr.vv,
            cloud: repr.cloud.into_iter().collect(),
        };
        cc.compact();
        Ok(cc)
    }
}

impl CausalContext {
    /// An empty context.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A context holding every dot `(node, 1..=n)` of the version vector.
    #[must_use]
    pub fn from_version_vector(vv: VersionVector) -> Self {
        Self {
            vv,
            cloud: BTreeSet::new(),
        }
    }

    /// True when `dot` is in the set.
    #[must_use]
    pub fn contains(&self, dot: Dot) -> bool {
        (dot.counter != 0 && dot.counter <= self.vv.get(dot.node)) || self.cloud.contains(&dot)
    }

    /// Adds one dot, folding it (and any cloud dots it joins up with) into the vector.
    ///
    /// # Panics
    ///
    /// Panics if `dot.counter` is 0: counters start at 1.
    pub fn insert_dot(&mut self, dot: Dot) {
        assert!(dot.counter >= 1, "dot counters start at 1: {dot:?}");
        let prefix = self.vv.get(dot.node);
        if dot.counter <= prefix {
            return;
        }
        if dot.counter == prefix + 1 {
            self.vv.set(dot.node, dot.counter);
            self.absorb_cloud(dot.node);
        } else {
            self.cloud.insert(dot);
        }
        self.debug_check();
        debug_assert!(self.contains(dot));
    }

    /// The next dot `node` should use: one past the largest counter seen for it.
    /// Does not insert it.
    #[must_use]
    pub fn next_dot(&self, node: NodeId) -> Dot {
        Dot::new(node, self.max_counter(node) + 1)
    }

    /// The largest counter contained for `node`, or 0 if none.
    #[must_use]
    pub fn max_counter(&self, node: NodeId) -> u64 {
        let in_cloud = self
            .cloud
            .range(Dot::new(node, 0)..=Dot::new(node, u64::MAX))
            .next_back()
            .map_or(0, |d| d.counter);
        in_cloud.max(self.vv.get(node))
    }

    /// Set union with `other`, then compaction.
    pub fn join(&mut self, other: &CausalContext) {
        self.vv.merge(&other.vv);
        self.cloud.extend(other.cloud.iter().copied());
        self.compact();
        debug_assert!(self.vv.dominates(&other.vv));
        debug_assert!(other.cloud.iter().all(|&d| self.contains(d)));
    }

    /// Folds cloud dots that extend a gap-free prefix into the vector and drops cloud
    /// dots the vector already covers. Never changes [`CausalContext::contains`].
    pub fn compact(&mut self) {
        let vv = &self.vv;
        self.cloud.retain(|d| d.counter > vv.get(d.node));
        let nodes: Vec<NodeId> = self.cloud.iter().map(|d| d.node).collect();
        let mut last = None;
        for node in nodes {
            if last != Some(node) {
                self.absorb_cloud(node);
                last = Some(node);
            }
        }
        self.debug_check();
    }

    /// True when no dot is contained.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.vv.is_empty() && self.cloud.is_empty()
    }

    /// Every dot contained: the vector's ranges expanded, then the cloud.
    pub fn dots(&self) -> impl Iterator<Item = Dot> + '_ {
        self.vv
            .iter()
            .flat_map(|(node, n)| (1..=n).map(move |c| Dot::new(node, c)))
            .chain(self.cloud.iter().copied())
    }

    /// The gap-free part of the context as a version vector.
    #[must_use]
    pub fn version_vector(&self) -> &VersionVector {
        &self.vv
    }

    /// Dots held outside the vector because an earlier dot of the same node is missing.
    pub fn cloud(&self) -> impl ExactSizeIterator<Item = Dot> + '_ {
        self.cloud.iter().copied()
    }

    /// Number of dots contained.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.vv.total() + self.cloud.len() as u64
    }

    fn absorb_cloud(&mut self, node: NodeId) {
        let mut prefix = self.vv.get(node);
        while self.cloud.remove(&Dot::new(node, prefix + 1)) {
            prefix += 1;
        }
        self.vv.set(node, prefix);
    }

    fn debug_check(&self) {
        debug_assert!(
            self.cloud
                .iter()
                .all(|d| d.counter > self.vv.get(d.node) + 1),
            "cloud dots must lie beyond a gap: {self:?}"
        );
    }
}

impl FromIterator<Dot> for CausalContext {
    fn from_iter<I: IntoIterator<Item = Dot>>(iter: I) -> Self {
        let mut cc = Self::new();
        for dot in iter {
            cc.insert_dot(dot);
        }
        cc
    }
}

impl Extend<Dot> for CausalContext {
    fn extend<I: IntoIterator<Item = Dot>>(&mut self, iter: I) {
        for dot in iter {
            self.insert_dot(dot);
        }
    }
}
