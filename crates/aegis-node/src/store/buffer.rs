//! Applied changes held in memory until they are written to redb together.
//!
//! A redb write transaction copies every B-tree page it touches, so committing each
//! small run of applies on its own costs a page copy per key. The store instead applies
//! into a [`Layer`] in memory and writes the accumulated layer to redb in one transaction
//! once it holds enough keys or bytes, or when asked to persist. Three places can hold a
//! key's newest state, searched in this order:
//!
//! 1. the `active` layer, which applies write into;
//! 2. the `frozen` layers, newest first, present only while flushes write them to redb
//!    (one at a time, in order; at most [`FROZEN_MAX`]);
//! 3. redb itself.
//!
//! A layer records a removed key as `None`, so a removal hides an older value below it.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use foldhash::fast::RandomState;

use super::{NO_EXPIRY, Record};

/// The most layers being flushed at once: one flush running and one waiting behind
/// it, so a snapshot need not wait for the flush before it.
pub(super) const FROZEN_MAX: usize = 2;

/// What one key costs in a layer besides its bytes: the map slot, the record header and
/// the allocations' own overhead, roughly.
const KEY_OVERHEAD_BYTES: usize = 64;

/// Keys changed by applies, with their newest state, not yet in redb.
#[derive(Debug, Default)]
pub(super) struct Layer {
    /// Each changed key's newest record, or `None` if it was removed. Clients choose
    /// the keys, so the hash is seeded at random; foldhash, because hashing is a large
    /// part of an apply and SipHash took three times as long.
    changes: HashMap<Vec<u8>, Option<Record>, RandomState>,
    /// The approximate memory held by `changes`.
    bytes: usize,
    /// The index of the last entry applied into this layer, if any.
    applied: Option<u64>,
    /// `(expire_at_ms, key)` of each record in `changes` that expires.
    expiring: BTreeSet<(u64, Vec<u8>)>,
}

impl Layer {
    /// An empty layer with room for `keys` keys before it grows.
    pub(super) fn with_capacity(keys: usize) -> Self {
        Self {
            changes: HashMap::with_capacity_and_hasher(keys, RandomState::default()),
            ..Self::default()
        }
    }

    /// The key's state in this layer: `None` if the layer never touched it.
    pub(super) fn get(&self, key: &[u8]) -> Option<Option<&Record>> {
        self.changes.get(key).map(Option::as_ref)
    }

    /// Records `key`'s newest state (`None`: removed).
    pub(super) fn set(&mut self, key: &[u8], record: Option<Record>) {
        self.insert(key.to_vec(), record);
    }

    fn insert(&mut self, key: Vec<u8>, record: Option<Record>) {
        let new_expiry = expiry(record.as_ref());
        if let Some(at) = new_expiry {
            self.expiring.insert((at, key.clone()));
        }
        self.bytes += cost(&key, record.as_ref());
        match self.changes.entry(key) {
            Entry::Occupied(mut slot) => {
                let old = slot.insert(record);
                self.bytes -= cost(slot.key(), old.as_ref());
                if let Some(at) = expiry(old.as_ref())
                    && Some(at) != new_expiry
                {
                    self.expiring.remove(&(at, slot.key().clone()));
                }
            }
            Entry::Vacant(slot) => {
                slot.insert(record);
            }
        }
    }

    /// Notes that every entry up to `index` is applied into this layer.
    pub(super) fn set_applied(&mut self, index: u64) {
        debug_assert!(self.applied.is_none_or(|a| a < index), "applies go forward");
        self.applied = Some(index);
    }

    /// Moves everything in `newer` on top of this layer.
    pub(super) fn absorb(&mut self, newer: Layer) {
        if let Some(index) = newer.applied {
            self.set_applied(index);
        }
        for (key, record) in newer.changes {
            self.insert(key, record);
        }
    }

    /// How many keys this layer changes.
    pub(super) fn keys(&self) -> usize {
        self.changes.len()
    }

    /// The approximate memory this layer holds, in bytes.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(super) fn applied(&self) -> Option<u64> {
        self.applied
    }

    /// The earliest expiry among this layer's records whose key `hidden` does not
    /// name.
    pub(super) fn first_expiry(&self, hidden: impl Fn(&[u8]) -> bool) -> Option<u64> {
        self.expiring
            .iter()
            .find(|(_, key)| !hidden(key))
            .map(|(at, _)| *at)
    }

    /// Whether a flush of this layer would change redb.
    pub(super) fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.applied.is_none()
    }

    /// The changes in key order, which keeps a flush's B-tree writes local.
    pub(super) fn sorted_changes(&self) -> Vec<(&[u8], Option<&Record>)> {
        let mut changes: Vec<(&[u8], Option<&Record>)> = self
            .changes
            .iter()
            .map(|(key, record)| (key.as_slice(), record.as_ref()))
            .collect();
        changes.sort_unstable_by(|a, b| a.0.cmp(b.0));
        changes
    }

    /// Every changed key with its newest state, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&[u8], Option<&Record>)> {
        self.changes
            .iter()
            .map(|(key, record)| (key.as_slice(), record.as_ref()))
    }
}

fn expiry(record: Option<&Record>) -> Option<u64> {
    record.map(|r| r.expire_at_ms).filter(|&at| at != NO_EXPIRY)
}

fn cost(key: &[u8], record: Option<&Record>) -> usize {
    KEY_OVERHEAD_BYTES + key.len() + record.map_or(0, |r| r.value.len())
}

/// The layers above redb.
#[derive(Debug, Default)]
pub(super) struct Layers {
    /// Where applies go.
    pub(super) active: Layer,
    /// The layers flushes are writing to redb, oldest first, readable until the
    /// writes commit (each flush's thread holds its layer too).
    pub(super) frozen: Vec<Arc<Layer>>,
}

impl Layers {
    /// The key's newest state above redb: `None` if no layer touched it, so redb holds it.
    pub(super) fn get(&self, key: &[u8]) -> Option<Option<&Record>> {
        self.newest_first().find_map(|layer| layer.get(key))
    }

    fn newest_first(&self) -> impl Iterator<Item = &Layer> {
        std::iter::once(&self.active).chain(self.frozen.iter().rev().map(|f| &**f))
    }

    /// Whether one of the `newer` newest layers holds `key`.
    fn changed_in_newest(&self, newer: usize, key: &[u8]) -> bool {
        self.newest_first()
            .take(newer)
            .any(|layer| layer.get(key).is_some())
    }

    /// Every key a layer changed, once, with its newest state.
    pub(super) fn changes(&self) -> impl Iterator<Item = (&[u8], Option<&Record>)> {
        self.newest_first().enumerate().flat_map(move |(i, layer)| {
            layer
                .iter()
                .filter(move |(key, _)| !self.changed_in_newest(i, key))
        })
    }

    /// The earliest expiry of a record that is its key's newest state in some layer.
    pub(super) fn first_expiry(&self) -> Option<u64> {
        self.newest_first()
            .enumerate()
            .filter_map(|(i, layer)| layer.first_expiry(|key| self.changed_in_newest(i, key)))
            .min()
    }

    /// Whether a layer holds `key`'s newest state, hiding what redb has for it.
    pub(super) fn hides(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Whether every layer is empty and none is being flushed.
    #[cfg(test)]
    pub(super) fn is_clear(&self) -> bool {
        self.active.is_empty() && self.frozen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(expire_at_ms: u64, value: &[u8]) -> Record {
        Record::string(expire_at_ms, value.to_vec())
    }

    #[test]
    fn bytes_follow_replacements_and_removals() {
        let mut layer = Layer::default();
        layer.set(b"k", Some(record(NO_EXPIRY, b"12345")));
        assert_eq!(layer.bytes(), KEY_OVERHEAD_BYTES + 1 + 5);
        layer.set(b"k", Some(record(NO_EXPIRY, b"1")));
        assert_eq!(layer.bytes(), KEY_OVERHEAD_BYTES + 1 + 1);
        layer.set(b"k", None);
        assert_eq!(layer.bytes(), KEY_OVERHEAD_BYTES + 1);
        assert_eq!(layer.keys(), 1);
        assert_eq!(layer.get(b"k"), Some(None));
        assert_eq!(layer.get(b"other"), None);
    }

    #[test]
    fn absorb_puts_the_newer_layer_on_top() {
        let mut older = Layer::default();
        older.set(b"a", Some(record(NO_EXPIRY, b"old")));
        older.set(b"b", Some(record(50, b"keep")));
        older.set_applied(3);
        let mut newer = Layer::default();
        newer.set(b"a", None);
        newer.set(b"c", Some(record(20, b"new")));
        newer.set_applied(5);
        older.absorb(newer);
        assert_eq!(older.get(b"a"), Some(None));
        assert_eq!(
            older.get(b"b").flatten().map(|r| r.value.clone()),
            Some(b"keep".to_vec())
        );
        assert_eq!(older.get(b"c").flatten().map(|r| r.expire_at_ms), Some(20));
        assert_eq!(older.applied(), Some(5));
        assert_eq!(older.first_expiry(|_| false), Some(20));
        assert_eq!(older.first_expiry(|key| key == b"c"), Some(50));
        let expected: usize = [(1, 0), (1, 4), (1, 3)]
            .iter()
            .map(|(k, v)| KEY_OVERHEAD_BYTES + k + v)
            .sum();
        assert_eq!(older.bytes(), expected);
        let keys: Vec<&[u8]> = older.sorted_changes().iter().map(|c| c.0).collect();
        assert_eq!(keys, [&b"a"[..], b"b", b"c"]);
    }

    #[test]
    fn lookups_search_active_then_frozen() {
        let mut layers = Layers::default();
        let mut frozen = Layer::default();
        frozen.set(b"x", Some(record(NO_EXPIRY, b"frozen")));
        frozen.set(b"y", Some(record(7, b"frozen")));
        layers.frozen = vec![Arc::new(frozen)];
        layers.active.set(b"x", None);
        assert_eq!(layers.get(b"x"), Some(None));
        assert_eq!(
            layers.get(b"y").flatten().map(|r| r.value.clone()),
            Some(b"frozen".to_vec())
        );
        assert_eq!(layers.get(b"z"), None);
        assert!(layers.hides(b"x") && !layers.hides(b"z"));
        assert_eq!(layers.first_expiry(), Some(7));
        layers.active.set(b"y", Some(record(NO_EXPIRY, b"active")));
        assert_eq!(
            layers.first_expiry(),
            None,
            "the active layer replaced the expiring y"
        );
    }

    #[test]
    fn newer_frozen_layers_hide_older_ones() {
        let mut older = Layer::default();
        older.set(b"x", Some(record(5, b"old")));
        older.set(b"y", Some(record(NO_EXPIRY, b"old")));
        let mut newer = Layer::default();
        newer.set(b"x", None);
        newer.set(b"z", Some(record(9, b"new")));
        let mut layers = Layers {
            frozen: vec![Arc::new(older), Arc::new(newer)],
            ..Layers::default()
        };
        layers.active.set(b"y", Some(record(NO_EXPIRY, b"active")));
        assert_eq!(layers.get(b"x"), Some(None));
        assert_eq!(
            layers.get(b"y").flatten().map(|r| r.value.clone()),
            Some(b"active".to_vec())
        );
        assert_eq!(layers.first_expiry(), Some(9), "x's expiry 5 is hidden");
        let mut changes: Vec<(Vec<u8>, Option<Vec<u8>>)> = layers
            .changes()
            .map(|(key, record)| (key.to_vec(), record.map(|r| r.value.clone())))
            .collect();
        changes.sort();
        assert_eq!(
            changes,
            [
                (b"x".to_vec(), None),
                (b"y".to_vec(), Some(b"active".to_vec())),
                (b"z".to_vec(), Some(b"new".to_vec())),
            ]
        );
    }
}
