//! Dot stores (Almeida, Shoker and Baquero 2018, section 6): the shapes a causal CRDT's
//! payload takes, each joined together with its causal context.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use aegis_vclock::{CausalContext, Dot, NodeId};
use serde::{Deserialize, Serialize};

use crate::Crdt;

/// A dot store: a payload whose every piece is tagged with a dot, joined with the help
/// of both sides' causal contexts.
///
/// The causal join of `(s, c)` and `(s', c')` keeps what both stores hold, plus what one
/// store holds that the other side has never seen; a dot the other side has seen but no
/// longer holds was removed there, and stays removed. The contexts themselves are joined
/// by the caller.
pub trait DotStore: Clone + Default + PartialEq + Debug {
    /// True for the empty store (the bottom of the lattice).
    fn is_bottom(&self) -> bool;

    /// Calls `f` on every dot held, in no particular order.
    fn for_each_dot(&self, f: &mut dyn FnMut(Dot));

    /// Causal join of `(self, own)` with `(other, theirs)`; only the store changes.
    fn join_store(&mut self, own: &CausalContext, other: &Self, theirs: &CausalContext);

    /// Number of dots held.
    fn dot_count(&self) -> usize {
        let mut n = 0;
        self.for_each_dot(&mut |_| n += 1);
        n
    }

    /// True when no nested store is bottom (a decoded value must be normalised).
    fn is_normalised(&self) -> bool {
        true
    }
}

/// The largest dot counter a decoded value may hold. Far beyond any real history, and
/// far enough below `u64::MAX` that minting the next dot can never overflow.
pub const DOT_COUNTER_MAX: u64 = 1 << 62;

/// Every dot of `store`, sorted.
pub(crate) fn sorted_dots<S: DotStore>(store: &S) -> Vec<Dot> {
    let mut dots = Vec::new();
    store.for_each_dot(&mut |d| dots.push(d));
    dots.sort_unstable();
    dots
}

/// The validity check every decoded causal value goes through: nested stores are
/// normalised, every dot is unique, has a counter of at least 1 and lies in the
/// context.
pub(crate) fn check_causal<S: DotStore>(
    store: &S,
    cc: &CausalContext,
) -> Result<(), postcard::Error> {
    let dots = sorted_dots(store);
    let unique = dots.windows(2).all(|w| w[0] != w[1]);
    let covered = dots.iter().all(|&d| d.counter >= 1 && cc.contains(d));
    let bounded = cc
        .version_vector()
        .iter()
        .all(|(_, c)| c <= DOT_COUNTER_MAX)
        && cc.cloud().all(|d| d.counter <= DOT_COUNTER_MAX);
    if !bounded {
        return Err(serde::de::Error::custom(
            "causal context counter above DOT_COUNTER_MAX",
        ));
    }
    if unique && covered && store.is_normalised() {
        Ok(())
    } else {
        Err(serde::de::Error::custom(
            "dot store must hold unique dots, all inside its causal context, and no empty nested values",
        ))
    }
}

/// A set of dots: the payload of flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DotSet(BTreeSet<Dot>);

impl Serialize for DotSet {
    fn serialize<Z: serde::Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        serializer.collect_seq(&self.0)
    }
}

impl<'de> Deserialize<'de> for DotSet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let dots: Vec<Dot> = strictly_ascending(Vec::deserialize(deserializer)?, |d| *d)?;
        Ok(Self(dots.into_iter().collect()))
    }
}

/// Accepts `items` only when their keys are strictly ascending: the one canonical
/// encoding of a set or map.
pub(crate) fn strictly_ascending<T, K: Ord, E: serde::de::Error>(
    items: Vec<T>,
    key: impl Fn(&T) -> K,
) -> Result<Vec<T>, E> {
    if items.windows(2).all(|w| key(&w[0]) < key(&w[1])) {
        Ok(items)
    } else {
        Err(E::custom("entries must be strictly ascending"))
    }
}

impl DotSet {
    /// True when `dot` is held.
    #[must_use]
    pub fn contains(&self, dot: Dot) -> bool {
        self.0.contains(&dot)
    }

    /// The dots held, ascending.
    pub fn iter(&self) -> impl Iterator<Item = Dot> + '_ {
        self.0.iter().copied()
    }

    /// Number of dots held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no dot is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn single(dot: Dot) -> Self {
        Self(BTreeSet::from([dot]))
    }
}

impl DotStore for DotSet {
    fn is_bottom(&self) -> bool {
        self.0.is_empty()
    }

    fn dot_count(&self) -> usize {
        self.0.len()
    }

    fn for_each_dot(&self, f: &mut dyn FnMut(Dot)) {
        self.0.iter().for_each(|&d| f(d));
    }

    fn join_store(&mut self, own: &CausalContext, other: &Self, theirs: &CausalContext) {
        self.0
            .retain(|&d| other.0.contains(&d) || !theirs.contains(d));
        for &d in &other.0 {
            if !own.contains(d) {
                self.0.insert(d);
            }
        }
    }
}

/// A map from dots to values: the payload of multi-value registers. A dot names one
/// write, so the two sides of a join agree on the value of every dot they share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotFun<V>(BTreeMap<Dot, V>);

impl<V: Serialize> Serialize for DotFun<V> {
    fn serialize<Z: serde::Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        serializer.collect_seq(self.0.iter())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for DotFun<V> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let items: Vec<(Dot, V)> =
            strictly_ascending(Vec::deserialize(deserializer)?, |e: &(Dot, V)| e.0)?;
        Ok(Self(items.into_iter().collect()))
    }
}

impl<V> Default for DotFun<V> {
    fn default() -> Self {
        Self(BTreeMap::new())
    }
}

impl<V> DotFun<V> {
    /// The `(dot, value)` pairs, ascending by dot.
    pub fn iter(&self) -> impl Iterator<Item = (Dot, &V)> + '_ {
        self.0.iter().map(|(&d, v)| (d, v))
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there is no entry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn single(dot: Dot, value: V) -> Self {
        Self(BTreeMap::from([(dot, value)]))
    }
}

impl<V: Clone + PartialEq + Debug> DotStore for DotFun<V> {
    fn is_bottom(&self) -> bool {
        self.0.is_empty()
    }

    fn dot_count(&self) -> usize {
        self.0.len()
    }

    fn for_each_dot(&self, f: &mut dyn FnMut(Dot)) {
        self.0.keys().for_each(|&d| f(d));
    }

    fn join_store(&mut self, own: &CausalContext, other: &Self, theirs: &CausalContext) {
        self.0.retain(|d, v| match other.0.get(d) {
            Some(w) => {
                debug_assert!(v == w, "one dot, two values: {d:?}");
                true
            }
            None => !theirs.contains(*d),
        });
        for (&d, v) in &other.0 {
            if !own.contains(d) {
                self.0.entry(d).or_insert_with(|| v.clone());
            }
        }
    }
}

/// A map from keys to nested dot stores: the payload of maps and of the remove-wins
/// set. A key is present exactly when its nested store is not bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotMap<K: Ord, S>(BTreeMap<K, S>);

impl<K: Ord + Serialize, S: Serialize> Serialize for DotMap<K, S> {
    fn serialize<Z: serde::Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        serializer.collect_seq(self.0.iter())
    }
}

impl<'de, K: Ord + Deserialize<'de>, S: Deserialize<'de>> Deserialize<'de> for DotMap<K, S> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let items: Vec<(K, S)> = Vec::deserialize(deserializer)?;
        if !items.windows(2).all(|w| w[0].0 < w[1].0) {
            return Err(serde::de::Error::custom("keys must be strictly ascending"));
        }
        Ok(Self(items.into_iter().collect()))
    }
}

impl<K: Ord, S> Default for DotMap<K, S> {
    fn default() -> Self {
        Self(BTreeMap::new())
    }
}

impl<K: Ord, S> DotMap<K, S> {
    /// The nested store under `key`.
    #[must_use]
    pub fn get(&self, key: &K) -> Option<&S> {
        self.0.get(key)
    }

    /// The `(key, store)` pairs, ascending by key.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &S)> + '_ {
        self.0.iter()
    }

    /// Number of keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there is no key.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn single(key: K, store: S) -> Self {
        Self(BTreeMap::from([(key, store)]))
    }
}

impl<K: Ord + Clone + Debug, S: DotStore> DotStore for DotMap<K, S> {
    fn is_bottom(&self) -> bool {
        self.0.is_empty()
    }

    fn for_each_dot(&self, f: &mut dyn FnMut(Dot)) {
        for s in self.0.values() {
            s.for_each_dot(f);
        }
    }

    fn join_store(&mut self, own: &CausalContext, other: &Self, theirs: &CausalContext) {
        let bottom = S::default();
        self.0.retain(|k, s| {
            s.join_store(own, other.0.get(k).unwrap_or(&bottom), theirs);
            !s.is_bottom()
        });
        for (k, o) in &other.0 {
            if self.0.contains_key(k) {
                continue;
            }
            let mut s = S::default();
            s.join_store(own, o, theirs);
            if !s.is_bottom() {
                self.0.insert(k.clone(), s);
            }
        }
    }

    fn is_normalised(&self) -> bool {
        self.0.values().all(|s| !s.is_bottom() && s.is_normalised())
    }
}

/// A causal CRDT: a dot store with a causal context, which can live on its own or as a
/// value nested inside an [`crate::ORMap`] (sharing the map's context).
pub trait CausalCrdt: Crdt {
    /// The dot store holding the payload.
    type Store: DotStore;

    /// Rebuilds a value from its parts; `node` is the replica that will mutate it.
    fn from_parts(node: NodeId, store: Self::Store, context: CausalContext) -> Self;

    /// Splits a value into its store and context.
    fn into_parts(self) -> (Self::Store, CausalContext);

    /// The dot store.
    fn store(&self) -> &Self::Store;

    /// The causal context.
    fn context(&self) -> &CausalContext;
}

/// The dots of `store` as a causal context: what a remove-style delta carries.
pub(crate) fn context_of<S: DotStore>(store: &S) -> CausalContext {
    let mut cc = CausalContext::new();
    store.for_each_dot(&mut |d| cc.insert_dot(d));
    cc
}
