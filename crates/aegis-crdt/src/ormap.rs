//! Observed-remove map with causal CRDT values.

use std::fmt::Debug;

use aegis_vclock::NodeId;
use serde::{Deserialize, Serialize};

use crate::causal::{Causal, causal_common};
use crate::dotstore::{CausalCrdt, DotMap, DotStore, context_of};

/// A map from keys to causal CRDT values ([`crate::ORSet`], [`crate::MVRegister`],
/// [`crate::EWFlag`], another `ORMap`, ...), all sharing the map's causal context.
///
/// Semantics (the paper's reset-remove map): `update(k, f)` applies a mutation `f` to
/// the value under `k` (starting from the empty value), and the key is present while its
/// value is not empty. `remove(k)` resets the value to empty as far as this replica has
/// seen it: a concurrent update survives, but only with its own effect. For example,
/// with `ORSet` values, a `remove(k)` concurrent with an `add(x)` under `k` leaves `k`
/// mapped to `{x}`; with `MVRegister` values it leaves only the concurrent write.
///
/// ```
/// use aegis_crdt::{MVRegister, ORMap};
/// let mut a: ORMap<&str, MVRegister<u32>> = ORMap::new(1);
/// let mut b = ORMap::new(2);
/// let d = a.update("x", |reg| reg.write(1));
/// b.merge(&d);
/// let rm = b.remove(&"x");
/// let w = a.update("x", |reg| reg.write(2)); // concurrent with the remove
/// a.merge(&rm);
/// b.merge(&w);
/// assert_eq!(a, b);
/// assert_eq!(a.get(&"x").unwrap().read(), vec![&2]);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    transparent,
    bound(
        serialize = "K: Serialize + Ord + Clone + Debug, V: CausalCrdt, V::Store: Serialize",
        deserialize = "K: Deserialize<'de> + Ord + Clone + Debug, V: CausalCrdt, V::Store: Deserialize<'de>"
    )
)]
pub struct ORMap<K: Ord + Clone + Debug, V: CausalCrdt>(Causal<DotMap<K, V::Store>>);

causal_common!(ORMap<K, V> where [K: Ord + Clone + Debug, V: CausalCrdt], DotMap<K, V::Store>);

impl<K: Ord + Clone + Debug, V: CausalCrdt> ORMap<K, V> {
    /// An empty map owned by replica `node`.
    #[must_use]
    pub fn new(node: NodeId) -> Self {
        Self(Causal::new(node))
    }

    /// Applies `mutate` to the value under `key` (the empty value if absent) and returns
    /// the map's delta. `mutate` receives a copy of the value sharing this map's context
    /// and must return the delta of the mutation it performed (what every mutator of
    /// this crate returns).
    pub fn update<F>(&mut self, key: K, mutate: F) -> ORMap<K, V>
    where
        F: FnOnce(&mut V) -> V,
    {
        let store = self.0.store.get(&key).cloned().unwrap_or_default();
        let mut value = V::from_parts(self.0.node, store, self.0.cc.clone());
        let (dstore, dcc) = mutate(&mut value).into_parts();
        let store = if dstore.is_bottom() {
            DotMap::default()
        } else {
            DotMap::single(key, dstore)
        };
        let delta = Self(self.0.delta(store, dcc));
        self.join(&delta);
        delta
    }

    /// Resets the value under `key` as far as this replica has seen it, and returns the
    /// delta. Removing an absent key returns an empty delta.
    pub fn remove(&mut self, key: &K) -> ORMap<K, V> {
        let cc = self.0.store.get(key).map(context_of).unwrap_or_default();
        let delta = Self(self.0.delta(DotMap::default(), cc));
        self.join(&delta);
        debug_assert!(self.0.store.get(key).is_none());
        delta
    }

    /// A copy of the value under `key`, sharing this map's context.
    #[must_use]
    pub fn get(&self, key: &K) -> Option<V> {
        let store = self.0.store.get(key)?;
        Some(V::from_parts(self.0.node, store.clone(), self.0.cc.clone()))
    }

    /// True when `key` maps to a non-empty value.
    #[must_use]
    pub fn contains_key(&self, key: &K) -> bool {
        self.0.store.get(key).is_some()
    }

    /// The keys, ascending.
    pub fn keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.0.store.iter().map(|(k, _)| k)
    }

    /// Number of keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.store.len()
    }

    /// True when the map has no key.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.store.is_empty()
    }
}
