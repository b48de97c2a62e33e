//! Grow-only set.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::Crdt;

/// A grow-only set: elements can be added, never removed; `join` is set union.
///
/// ```
/// use aegis_crdt::GSet;
/// let mut a = GSet::new();
/// let delta = a.insert("x");
/// let mut b = GSet::new();
/// b.merge(&delta);
/// assert!(b.contains(&"x"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GSet<T: Ord> {
    elements: BTreeSet<T>,
}

impl<T: Ord + Serialize> Serialize for GSet<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(&self.elements)
    }
}

impl<'de, T: Ord + Deserialize<'de>> Deserialize<'de> for GSet<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let items: Vec<T> = Vec::deserialize(deserializer)?;
        if !items.windows(2).all(|w| w[0] < w[1]) {
            return Err(serde::de::Error::custom(
                "elements must be strictly ascending",
            ));
        }
        Ok(Self {
            elements: items.into_iter().collect(),
        })
    }
}

impl<T: Ord> Default for GSet<T> {
    fn default() -> Self {
        Self {
            elements: BTreeSet::new(),
        }
    }
}

impl<T: Ord + Clone> GSet<T> {
    /// An empty set.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `value` and returns the delta (a set holding just `value`).
    pub fn insert(&mut self, value: T) -> GSet<T> {
        let mut delta = GSet::new();
        delta.elements.insert(value.clone());
        self.elements.insert(value);
        delta
    }

    /// True when `value` has been added.
    #[must_use]
    pub fn contains(&self, value: &T) -> bool {
        self.elements.contains(value)
    }

    /// The elements in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.elements.iter()
    }

    /// Number of elements.
    #[must_use]
    pub fn len(&self) -> usize {
        self.elements.len()
    }

    /// True when no element has been added.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    /// Set union with `other`.
    pub fn join(&mut self, other: &GSet<T>) {
        for v in &other.elements {
            if !self.elements.contains(v) {
                self.elements.insert(v.clone());
            }
        }
    }

    /// Same as [`GSet::join`].
    pub fn merge(&mut self, other: &GSet<T>) {
        self.join(other);
    }
}

impl<T: Ord + Clone> Crdt for GSet<T> {
    fn join(&mut self, other: &Self) {
        GSet::join(self, other);
    }

    fn join_changed(&mut self, other: &Self) -> bool {
        let before = self.elements.len();
        self.join(other);
        self.elements.len() != before
    }
}
