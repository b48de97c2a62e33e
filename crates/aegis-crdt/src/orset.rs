//! Observed-remove sets: add-wins and remove-wins.

use std::fmt::Debug;

use aegis_vclock::{CausalContext, NodeId};
use serde::{Deserialize, Serialize};

use crate::causal::{Causal, causal_common};
use crate::dotstore::{DotFun, DotMap, DotStore, context_of};
use crate::setstore::SetStore;

/// An add-wins observed-remove set without tombstones.
///
/// Semantics: `add(e)` tags `e` with a fresh dot (replacing the dots of `e` it has seen);
/// `remove(e)` drops the dots of `e` it has seen. An element is present while it has a
/// dot, so an `add` concurrent with a `remove` of the same element wins, and a `remove`
/// only undoes the adds it observed. Removed elements leave nothing behind: the causal
/// context remembers the removed dots compactly (one counter per replica once
/// contiguous), so a set emptied by removes has a state proportional to the number of
/// replicas, not to the history.
///
/// The store is a sorted vector of `(element, dot)` pairs (one entry per element in the
/// usual case), so `join` is one merge pass and memory is the element plus 16 bytes.
/// Small deltas that name their elements (those of `add`) are applied point-wise; a
/// `remove` delta carries only the removed dots, so applying it to another replica
/// takes one pass over that replica's entries. Iteration is in ascending element order.
///
/// ```
/// use aegis_crdt::ORSet;
/// let mut a = ORSet::new(1);
/// let mut b = ORSet::new(2);
/// a.add("apple");
/// b.merge(&a);
/// let removed = b.remove(&"apple");
/// let re_added = a.add("apple"); // concurrent with b's remove
/// a.merge(&removed);
/// b.merge(&re_added);
/// assert!(a.contains(&"apple") && b.contains(&"apple")); // add wins
/// assert_eq!(a, b);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    transparent,
    bound(
        serialize = "T: Serialize + Ord + Clone + Debug",
        deserialize = "T: Deserialize<'de> + Ord + Clone + Debug"
    )
)]
pub struct ORSet<T: Ord + Clone + Debug>(Causal<SetStore<T>>);

causal_common!(ORSet<T> where [T: Ord + Clone + Debug], SetStore<T>);

impl<T: Ord + Clone + Debug> ORSet<T> {
    /// An empty set owned by replica `node`.
    #[must_use]
    pub fn new(node: NodeId) -> Self {
        Self(Causal::new(node))
    }

    /// Adds `value` and returns the delta.
    pub fn add(&mut self, value: T) -> ORSet<T> {
        let old = self.0.store.dots_of(&value);
        let d = self.0.next_dot();
        let mut cc: CausalContext = old.iter().copied().collect();
        cc.insert_dot(d);
        for o in old {
            self.0.store.remove(&value, o);
        }
        self.0.store.insert_fresh(value.clone(), d);
        self.0.cc.insert_dot(d);
        debug_assert!(self.contains(&value));
        Self(self.0.delta(SetStore::from_sorted(vec![(value, d)]), cc))
    }

    /// Removes `value` (the adds of it this replica has seen) and returns the delta.
    /// Removing an absent element changes nothing and returns an empty delta.
    pub fn remove(&mut self, value: &T) -> ORSet<T> {
        let old = self.0.store.dots_of(value);
        for &o in &old {
            self.0.store.remove(value, o);
        }
        debug_assert!(!self.contains(value));
        Self(self.0.delta(SetStore::default(), old.into_iter().collect()))
    }

    /// True when `value` is in the set.
    #[must_use]
    pub fn contains(&self, value: &T) -> bool {
        self.0.store.contains_element(value)
    }

    /// The elements, ascending, each once.
    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        let mut last: Option<&T> = None;
        self.0.store.iter().filter_map(move |(e, _)| {
            if last == Some(e) {
                None
            } else {
                last = Some(e);
                Some(e)
            }
        })
    }

    /// Number of elements (a pass over the set).
    #[must_use]
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// True when the set has no element.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.store.is_empty()
    }

    /// Folds pending point updates into the sorted vector, minimising memory.
    pub fn compact(&mut self) {
        self.0.store.fold();
    }
}

/// A remove-wins observed-remove set.
///
/// Semantics: `add(e)` and `remove(e)` each tag `e` with a fresh dot marked add or
/// remove, replacing the marks of `e` they have seen. An element is present when it has
/// marks and all of them are adds, so a `remove` concurrent with an `add` wins. Unlike
/// [`ORSet`], a removed element keeps one remove mark (per concurrent remover) until a
/// later `add` replaces it: remove-wins needs that memory of the remove.
///
/// ```
/// use aegis_crdt::RWSet;
/// let mut a = RWSet::new(1);
/// let mut b = RWSet::new(2);
/// let add = a.add(7u32);
/// let rm = b.remove(&7); // concurrent with the add
/// a.merge(&rm);
/// b.merge(&add);
/// assert!(!a.contains(&7) && !b.contains(&7));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    transparent,
    bound(
        serialize = "T: Serialize + Ord + Clone + Debug",
        deserialize = "T: Deserialize<'de> + Ord + Clone + Debug"
    )
)]
pub struct RWSet<T: Ord + Clone + Debug>(Causal<DotMap<T, DotFun<bool>>>);

causal_common!(RWSet<T> where [T: Ord + Clone + Debug], DotMap<T, DotFun<bool>>);

impl<T: Ord + Clone + Debug> RWSet<T> {
    /// An empty set owned by replica `node`.
    #[must_use]
    pub fn new(node: NodeId) -> Self {
        Self(Causal::new(node))
    }

    fn mark(&mut self, value: T, present: bool) -> RWSet<T> {
        let d = self.0.next_dot();
        let mut cc = self
            .0
            .store
            .get(&value)
            .map_or_else(CausalContext::new, context_of);
        cc.insert_dot(d);
        let store = DotMap::single(value, DotFun::single(d, present));
        let delta = Self(self.0.delta(store, cc));
        self.join(&delta);
        delta
    }

    /// Adds `value` and returns the delta.
    pub fn add(&mut self, value: T) -> RWSet<T> {
        self.mark(value, true)
    }

    /// Removes `value` (winning over concurrent adds) and returns the delta.
    pub fn remove(&mut self, value: &T) -> RWSet<T> {
        self.mark(value.clone(), false)
    }

    /// True when `value` is in the set.
    #[must_use]
    pub fn contains(&self, value: &T) -> bool {
        self.0
            .store
            .get(value)
            .is_some_and(|marks| marks.iter().all(|(_, present)| *present))
    }

    /// The elements present, ascending.
    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.0
            .store
            .iter()
            .filter(|(_, marks)| marks.iter().all(|(_, p)| *p))
            .map(|(e, _)| e)
    }

    /// Number of elements present.
    #[must_use]
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// True when no element is present.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// Number of elements holding marks, present or removed: the state's size.
    #[must_use]
    pub fn marked_len(&self) -> usize {
        debug_assert!(self.0.store.iter().all(|(_, m)| !m.is_bottom()));
        self.0.store.len()
    }
}
