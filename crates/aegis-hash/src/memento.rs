//! MementoHash (Coluzzi, Brocco, Antonucci and Leidi, 2023).

use std::collections::BTreeMap;

use crate::{Error, JumpHash, NodeIdentity, key_hash, mix64, reduce};

/// Marks a working bucket in the replacement table.
const NONE: u32 = u32::MAX;

/// The most buckets a [`Memento`] holds.
const BUCKETS_MAX: u32 = u32::MAX - 1;

/// One entry of the replacement table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Replacement {
    /// For a removed bucket: the number of working buckets right after its removal,
    /// which is also the bucket that took its place. `NONE` for a working bucket.
    replacer: u32,
    /// The bucket removed just before this one (or the bucket count at the time), so
    /// that re-adding restores buckets in reverse order of removal.
    prev_removed: u32,
}

const WORKING: Replacement = Replacement {
    replacer: NONE,
    prev_removed: NONE,
};

/// MementoHash: jump hash plus a record of removed buckets, so that any node can be
/// removed while lookups stay close to jump-hash speed.
///
/// A key first goes to `JumpHash::bucket(h, size)`. If that bucket was removed, the key
/// is rehashed into the buckets that were working right after the removal
/// (`(mix64(h + (b + 1) * 0x9E3779B97F4A7C15) * r) >> 64` for removed bucket `b` with `r`
/// buckets left), following the chain of replacements; with no removals the cost is
/// exactly one jump hash and one table read. Removing a node moves only its keys;
/// adding one moves keys only to it. Added nodes take the most recently removed bucket
/// first, so remove-then-add restores the previous placement exactly.
///
/// The placement depends on the order of removals (as with every bucket-numbered
/// scheme), but not on anything else: two instances given the same sequence of
/// additions and removals agree.
///
/// ```
/// use aegis_hash::Memento;
///
/// let mut memento = Memento::new();
/// for n in ["node-1", "node-2", "node-3", "node-4"] {
///     memento.add_node(n);
/// }
/// let before = memento.get_node("user:123").cloned();
/// memento.remove_node(&"node-2".to_string());
/// let after = memento.get_node("user:123").cloned();
/// assert!(before == after || before.as_deref() == Some("node-2"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Memento<N: NodeIdentity = String> {
    /// Replacement entry of every bucket; its length is the jump-hash range.
    table: Vec<Replacement>,
    /// Node in each bucket; `None` for removed buckets.
    slots: Vec<Option<N>>,
    /// Bucket of each node.
    buckets: BTreeMap<N, u32>,
    /// The bucket the next added node takes.
    last_removed: u32,
}

impl Default for Memento<String> {
    fn default() -> Self {
        Self::new()
    }
}

impl Memento<String> {
    /// An empty set of string nodes.
    #[must_use]
    pub fn new() -> Self {
        Self::empty()
    }
}

impl<N: NodeIdentity> Memento<N> {
    /// An empty set of nodes of any identity type.
    #[must_use]
    pub fn empty() -> Self {
        Self {
            table: Vec::new(),
            slots: Vec::new(),
            buckets: BTreeMap::new(),
            last_removed: 0,
        }
    }

    /// Adds a node in the most recently removed bucket, or a new last bucket. Returns
    /// `false`, changing nothing, if it is a member.
    ///
    /// # Panics
    ///
    /// Past `u32::MAX - 1` buckets; use [`Memento::try_add_node`] to get an error.
    pub fn add_node(&mut self, node: impl Into<N>) -> bool {
        self.try_add_node(node).expect("too many buckets")
    }

    /// [`Memento::add_node`] returning an error instead of panicking.
    ///
    /// # Errors
    ///
    /// [`Error::NodesTooMany`] past `u32::MAX - 1` buckets.
    pub fn try_add_node(&mut self, node: impl Into<N>) -> Result<bool, Error> {
        let node = node.into();
        if self.buckets.contains_key(&node) {
            return Ok(false);
        }
        let bucket = self.last_removed;
        let size = self.table.len() as u32;
        if bucket < size {
            let entry = self.table[bucket as usize];
            assert_ne!(
                entry.replacer, NONE,
                "the last removed bucket must be removed"
            );
            assert!(self.slots[bucket as usize].is_none());
            self.last_removed = entry.prev_removed;
            self.table[bucket as usize] = WORKING;
            self.slots[bucket as usize] = Some(node.clone());
        } else {
            assert_eq!(bucket, size, "with no removals the next bucket is the end");
            if size >= BUCKETS_MAX {
                return Err(Error::NodesTooMany {
                    count: u64::from(size) + 1,
                    max: u64::from(BUCKETS_MAX),
                });
            }
            self.table.push(WORKING);
            self.slots.push(Some(node.clone()));
            self.last_removed = size + 1;
        }
        self.buckets.insert(node, bucket);
        self.check();
        Ok(true)
    }

    /// Removes any node. Returns `false` if it was not a member.
    pub fn remove_node(&mut self, node: &N) -> bool {
        let Some(bucket) = self.buckets.remove(node) else {
            return false;
        };
        let size = self.table.len() as u32;
        let removed = size as usize - self.buckets.len() - 1;
        if removed == 0 && bucket == size - 1 {
            // The last bucket with no holes: shrink, exactly like jump hash.
            self.table.pop();
            self.slots.pop();
            self.last_removed = bucket;
        } else {
            // The working count after this removal: the bucket that takes its place.
            let working_after = self.buckets.len() as u32;
            self.table[bucket as usize] = Replacement {
                replacer: working_after,
                prev_removed: self.last_removed,
            };
            self.slots[bucket as usize] = None;
            self.last_removed = bucket;
        }
        self.check();
        true
    }

    /// Number of working nodes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether there is no working node.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// The bucket of a member.
    #[must_use]
    pub fn bucket_of(&self, node: &N) -> Option<u32> {
        self.buckets.get(node).copied()
    }

    /// The owner of a key, or `None` when empty.
    #[inline]
    #[must_use]
    pub fn get_node(&self, key: impl AsRef<[u8]>) -> Option<&N> {
        self.get_node_by_hash(key_hash(key))
    }

    /// The owner of a placement hash, or `None` when empty.
    #[inline]
    #[must_use]
    pub fn get_node_by_hash(&self, hash: u64) -> Option<&N> {
        let bucket = self.get_bucket(hash)?;
        let node = self.slots[bucket as usize].as_ref();
        debug_assert!(node.is_some(), "lookup ended on a removed bucket");
        node
    }

    /// The working bucket of a placement hash, or `None` when empty.
    #[must_use]
    pub fn get_bucket(&self, hash: u64) -> Option<u32> {
        if self.buckets.is_empty() {
            return None;
        }
        let mut b = JumpHash::bucket(hash, self.table.len() as u32);
        let mut r = self.table[b as usize].replacer;
        while r != NONE {
            // b was removed leaving r working buckets: rehash into 0..r, then follow
            // the buckets that replaced earlier removals (their replacer is >= r).
            let seed = u64::from(b)
                .wrapping_add(1)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let mut h = reduce(mix64(hash.wrapping_add(seed)), u64::from(r)) as u32;
            let mut r2 = self.table[h as usize].replacer;
            while r2 != NONE && r2 >= r {
                h = r2;
                r2 = self.table[h as usize].replacer;
            }
            b = h;
            r = r2;
        }
        Some(b)
    }

    fn check(&self) {
        debug_assert_eq!(self.table.len(), self.slots.len());
        debug_assert_eq!(
            self.slots.iter().filter(|s| s.is_some()).count(),
            self.buckets.len()
        );
        debug_assert!(
            self.buckets
                .iter()
                .all(|(n, &b)| self.slots[b as usize].as_ref() == Some(n)
                    && self.table[b as usize].replacer == NONE)
        );
    }
}
