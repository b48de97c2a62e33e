//! The dot store of the add-wins set: a sorted vector of `(element, dot)` pairs with a
//! small ordered overlay of recent changes.
//!
//! This is the paper's `DotMap<E, DotSet>` flattened: one entry per `(element, dot)`,
//! sorted, so a full join is a single merge pass over two vectors and the per-element
//! cost is the element plus one dot. Single-entry changes go to an ordered overlay
//! (`true`: entry added, `false`: entry of the vector removed) that is folded into the
//! vector once it reaches an eighth of its size, which keeps inserts in random order
//! amortised `O(log n)`.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::iter::Peekable;

use aegis_vclock::{CausalContext, Dot, NodeId};
use serde::{Deserialize, Serialize};

use crate::dotstore::DotStore;

/// The overlay is folded into the vector when it holds more than this many entries
/// and more than an eighth of the vector.
const OVERLAY_ENTRIES_MIN: usize = 64;

const DOT_MIN: Dot = Dot::new(0, 0);
const DOT_MAX: Dot = Dot::new(u64::MAX, u64::MAX);

/// Every `FENCE_STRIDE`-th element of the vector is copied into a small fence index,
/// so a lookup binary-searches a cache-resident array first and then one block,
/// instead of taking a cache miss at every step of a search over the whole vector.
const FENCE_STRIDE: usize = 64;

/// The `(element, dot)` store of [`crate::ORSet`]; opaque apart from reading.
#[derive(Clone)]
pub struct SetStore<T> {
    base: Vec<(T, Dot)>,
    /// `fences[i] == base[i * FENCE_STRIDE].0`.
    fences: Vec<T>,
    overlay: BTreeMap<(T, Dot), bool>,
}

impl<T> Default for SetStore<T> {
    fn default() -> Self {
        Self {
            base: Vec::new(),
            fences: Vec::new(),
            overlay: BTreeMap::new(),
        }
    }
}

impl<T: Ord + Debug> Debug for SetStore<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: Ord> PartialEq for SetStore<T> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl<T: Ord> Eq for SetStore<T> {}

/// Merges the vector and the overlay in order, hiding removed vector entries.
struct Iter<'a, T> {
    base: Peekable<std::slice::Iter<'a, (T, Dot)>>,
    overlay: Peekable<std::collections::btree_map::Iter<'a, (T, Dot), bool>>,
}

impl<'a, T: Ord> Iterator for Iter<'a, T> {
    type Item = (&'a T, Dot);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let order = match (self.base.peek(), self.overlay.peek()) {
                (None, None) => return None,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(b), Some((o, _))) => (&b.0, b.1).cmp(&(&o.0, o.1)),
            };
            match order {
                Ordering::Less => {
                    let (e, d) = self.base.next()?;
                    return Some((e, *d));
                }
                Ordering::Greater => {
                    let ((e, d), added) = self.overlay.next()?;
                    debug_assert!(*added, "overlay removal of an entry not in the vector");
                    return Some((e, *d));
                }
                Ordering::Equal => {
                    let _ = self.base.next();
                    let (_, added) = self.overlay.next()?;
                    debug_assert!(
                        !*added,
                        "overlay addition of an entry already in the vector"
                    );
                }
            }
        }
    }
}

impl<T: Ord> SetStore<T> {
    /// The `(element, dot)` entries in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = (&T, Dot)> + '_ {
        Iter {
            base: self.base.iter().peekable(),
            overlay: self.overlay.iter().peekable(),
        }
    }
}

impl<T: Ord + Clone> SetStore<T> {
    pub(crate) fn from_sorted(base: Vec<(T, Dot)>) -> Self {
        let mut store = Self::default();
        store.set_base(base);
        debug_assert!(store.is_sorted());
        store
    }

    /// Replaces the vector and rebuilds the fence index.
    fn set_base(&mut self, base: Vec<(T, Dot)>) {
        self.fences = base
            .iter()
            .step_by(FENCE_STRIDE)
            .map(|(e, _)| e.clone())
            .collect();
        self.base = base;
    }

    /// Number of `(element, dot)` entries.
    #[must_use]
    pub fn entry_count(&self) -> usize {
        let removed = self.overlay.values().filter(|a| !**a).count();
        self.base.len() + self.overlay.len() - 2 * removed
    }

    /// True when there is no entry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    fn base_range(&self, e: &T) -> &[(T, Dot)] {
        // fences[b - 1] < e <= fences[b]: entries before block b - 1 are smaller than
        // `e`, entries from block b on are not.
        let b = self.fences.partition_point(|f| f < e);
        let lo = if b == 0 {
            0
        } else {
            let start = (b - 1) * FENCE_STRIDE;
            let end = (b * FENCE_STRIDE).min(self.base.len());
            start + self.base[start..end].partition_point(|(x, _)| x < e)
        };
        debug_assert_eq!(lo, self.base.partition_point(|(x, _)| x < e));
        // Usually zero or one entry: scan rather than search again.
        let len = self.base[lo..].iter().take_while(|(x, _)| x == e).count();
        &self.base[lo..lo + len]
    }

    /// True when `e` has at least one entry.
    #[must_use]
    pub fn contains_element(&self, e: &T) -> bool {
        let in_base = self
            .base_range(e)
            .iter()
            .any(|(x, d)| self.overlay.get(&(x.clone(), *d)) != Some(&false));
        in_base || self.overlay_range(e).any(|(_, added)| *added)
    }

    fn overlay_range(&self, e: &T) -> impl Iterator<Item = (&(T, Dot), &bool)> + '_ {
        let lo = (e.clone(), DOT_MIN);
        let hi = (e.clone(), DOT_MAX);
        self.overlay.range(lo..=hi)
    }

    /// The dots of element `e`, ascending.
    #[must_use]
    pub fn dots_of(&self, e: &T) -> Vec<Dot> {
        let mut out: Vec<Dot> = Vec::new();
        for (x, d) in self.base_range(e) {
            if self.overlay.is_empty() || self.overlay.get(&(x.clone(), *d)) != Some(&false) {
                out.push(*d);
            }
        }
        if !self.overlay.is_empty() {
            out.extend(self.overlay_range(e).filter(|(_, a)| **a).map(|(k, _)| k.1));
            out.sort_unstable();
        }
        out
    }

    fn in_base(&self, e: &T, d: Dot) -> bool {
        self.base_range(e).iter().any(|(_, x)| *x == d)
    }

    /// Adds the entry `(e, d)` (nothing if present).
    pub(crate) fn insert(&mut self, e: T, d: Dot) {
        let key = (e, d);
        match self.overlay.get(&key) {
            Some(true) => {}
            Some(false) => {
                self.overlay.remove(&key);
            }
            None => {
                if !self.in_base(&key.0, d) {
                    self.overlay.insert(key, true);
                }
            }
        }
        self.maybe_fold();
    }

    /// Adds the entry `(e, d)` for a dot `d` minted just now, so absent from the store.
    pub(crate) fn insert_fresh(&mut self, e: T, d: Dot) {
        debug_assert!(!self.in_base(&e, d), "a fresh dot cannot be stored yet");
        let previous = self.overlay.insert((e, d), true);
        assert!(previous.is_none(), "a fresh dot cannot be stored yet");
        self.maybe_fold();
    }

    /// Removes the entry `(e, d)` (nothing if absent).
    pub(crate) fn remove(&mut self, e: &T, d: Dot) {
        let key = (e.clone(), d);
        match self.overlay.get(&key) {
            Some(true) => {
                self.overlay.remove(&key);
            }
            Some(false) => {}
            None => {
                if self.in_base(e, d) {
                    self.overlay.insert(key, false);
                }
            }
        }
        self.maybe_fold();
    }

    fn maybe_fold(&mut self) {
        if self.overlay.len() > OVERLAY_ENTRIES_MIN.max(self.base.len() / 8) {
            self.fold();
        }
    }

    /// Folds the overlay into the vector.
    pub(crate) fn fold(&mut self) {
        if self.overlay.is_empty() {
            return;
        }
        let mut out = Vec::with_capacity(self.entry_count());
        let overlay = std::mem::take(&mut self.overlay);
        let mut base = std::mem::take(&mut self.base).into_iter().peekable();
        self.fences.clear();
        let mut overlay = overlay.into_iter().peekable();
        loop {
            let order = match (base.peek(), overlay.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(b), Some((o, _))) => (&b.0, b.1).cmp(&(&o.0, o.1)),
            };
            match order {
                Ordering::Less => out.extend(base.next()),
                Ordering::Greater => {
                    if let Some((entry, added)) = overlay.next() {
                        assert!(added, "overlay removal of an entry not in the vector");
                        out.push(entry);
                    }
                }
                Ordering::Equal => {
                    let _ = base.next();
                    let removed = overlay.next().is_some_and(|(_, added)| !added);
                    assert!(
                        removed,
                        "overlay addition of an entry already in the vector"
                    );
                }
            }
        }
        self.set_base(out);
        debug_assert!(self.overlay.is_empty());
        debug_assert!(self.is_sorted());
    }

    fn is_sorted(&self) -> bool {
        self.base
            .windows(2)
            .all(|w| (&w[0].0, w[0].1) < (&w[1].0, w[1].1))
    }

    /// Full causal join: one merge pass over both sides.
    fn join_full(&mut self, own: &CausalContext, other: &Self, theirs: &CausalContext) {
        self.fold();
        let mine = std::mem::take(&mut self.base);
        self.fences.clear();
        let mut out = Vec::with_capacity(mine.len() + other.base.len() + other.overlay.len());
        let mut a = mine.into_iter().peekable();
        let mut b = other.iter().peekable();
        loop {
            let order = match (a.peek(), b.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(x), Some(y)) => (&x.0, x.1).cmp(&(y.0, y.1)),
            };
            match order {
                Ordering::Less => {
                    if let Some((e, d)) = a.next()
                        && !theirs.contains(d)
                    {
                        out.push((e, d));
                    }
                }
                Ordering::Greater => {
                    if let Some((e, d)) = b.next()
                        && !own.contains(d)
                    {
                        out.push((e.clone(), d));
                    }
                }
                Ordering::Equal => {
                    out.extend(a.next());
                    let _ = b.next();
                }
            }
        }
        self.set_base(out);
        debug_assert!(self.is_sorted());
    }

    /// Causal join with a small `other` (a delta): point updates instead of a pass over
    /// the whole vector, except when `other` removes dots of elements it does not name.
    fn join_small(&mut self, own: &CausalContext, other: &Self, theirs: &CausalContext) {
        let mut their_dots: Vec<Dot> = other.iter().map(|(_, d)| d).collect();
        their_dots.sort_unstable();
        // Dots the other side has seen and dropped, which we may still hold.
        let mut dropped: Vec<Dot> = theirs
            .dots()
            .filter(|d| own.contains(*d) && their_dots.binary_search(d).is_err())
            .collect();
        dropped.sort_unstable();
        let named: Vec<T> = {
            let mut v: Vec<T> = other.iter().map(|(e, _)| e.clone()).collect();
            v.dedup();
            v
        };
        for (e, d) in other.iter() {
            if !own.contains(d) {
                self.insert(e.clone(), d);
            }
        }
        if dropped.is_empty() {
            return;
        }
        let mut found = 0;
        for e in &named {
            for d in self.dots_of(e) {
                if dropped.binary_search(&d).is_ok() {
                    self.remove(e, d);
                    found += 1;
                }
            }
        }
        if found == dropped.len() {
            return;
        }
        let doomed: Vec<(T, Dot)> = self
            .iter()
            .filter(|(_, d)| dropped.binary_search(d).is_ok())
            .map(|(e, d)| (e.clone(), d))
            .collect();
        for (e, d) in doomed {
            self.remove(&e, d);
        }
    }
}

impl<T: Ord + Clone + Debug> DotStore for SetStore<T> {
    fn is_bottom(&self) -> bool {
        self.is_empty()
    }

    fn dot_count(&self) -> usize {
        self.entry_count()
    }

    fn for_each_dot(&self, f: &mut dyn FnMut(Dot)) {
        self.iter().for_each(|(_, d)| f(d));
    }

    fn join_store(&mut self, own: &CausalContext, other: &Self, theirs: &CausalContext) {
        let mine = self.base.len() + self.overlay.len();
        let small = other.base.len() + other.overlay.len();
        let small = small as u64 + theirs.len() <= (mine as u64 / 16).max(8);
        if small {
            self.join_small(own, other, theirs);
        } else {
            self.join_full(own, other, theirs);
        }
    }
}

/// Wire form: entries grouped by the node of their dot (nodes ascending), each group in
/// ascending counter order with the counter written as the gap from the previous one.
/// A replica's dots are mostly consecutive, so the dot costs about one byte per entry
/// on top of the element, and the node id (often a large random number) is written
/// once per group.
type Groups<T> = Vec<(NodeId, Vec<(u64, T)>)>;

impl<T: Serialize + Ord + Clone> Serialize for SetStore<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut by_dot: Vec<(Dot, &T)> = self.iter().map(|(e, d)| (d, e)).collect();
        by_dot.sort_unstable_by_key(|(d, _)| *d);
        let mut groups: Groups<&T> = Vec::new();
        let mut previous = 0;
        for (d, e) in by_dot {
            match groups.last_mut() {
                Some((node, entries)) if *node == d.node => {
                    debug_assert!(d.counter > previous, "dots are unique");
                    entries.push((d.counter - previous, e));
                }
                _ => groups.push((d.node, vec![(d.counter, e)])),
            }
            previous = d.counter;
        }
        groups.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de> + Ord + Clone> Deserialize<'de> for SetStore<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let groups = Groups::<T>::deserialize(deserializer)?;
        if !groups.windows(2).all(|w| w[0].0 < w[1].0) {
            return Err(D::Error::custom(
                "set store nodes must be strictly ascending",
            ));
        }
        let mut base = Vec::with_capacity(groups.iter().map(|g| g.1.len()).sum());
        for (node, entries) in groups {
            if entries.is_empty() {
                return Err(D::Error::custom("set store group without entries"));
            }
            let mut counter: u64 = 0;
            for (gap, e) in entries {
                counter = match counter.checked_add(gap) {
                    Some(c) if gap > 0 => c,
                    _ => return Err(D::Error::custom("dot counter gaps must be positive")),
                };
                base.push((e, Dot::new(node, counter)));
            }
        }
        // Dots are unique by construction, so the pairs are too.
        base.sort_unstable_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        Ok(Self::from_sorted(base))
    }
}
