//! Compact fingerprints of a log, so that whole-cluster invariants are cheap to check
//! after every step.
//!
//! Each index holds the entry's term, a digest of the entry alone and a *chain* digest
//! that covers the entry and everything before it. Two logs with equal chains at an index
//! are identical up to that index, which turns "the logs match up to here" into one
//! comparison.

use std::hash::Hash;

use crate::trace::digest_of;

/// The fingerprint of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Print {
    /// The entry's term.
    pub term: u64,
    /// A digest of the entry alone.
    pub entry: u64,
    /// A digest of the log up to and including this entry.
    pub chain: u64,
}

/// The fingerprints of a log whose first entry has index 1 (the simulator never
/// compacts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogView {
    prints: Vec<Print>,
}

impl LogView {
    /// The last index (0 when empty).
    #[must_use]
    pub fn last_index(&self) -> u64 {
        self.prints.len() as u64
    }

    /// The fingerprint at `index`, if the log reaches it.
    #[must_use]
    pub fn get(&self, index: u64) -> Option<&Print> {
        let at = index.checked_sub(1)?;
        self.prints.get(at as usize)
    }

    /// The chain digest at `index`; 0 for the empty prefix at index 0.
    #[must_use]
    pub fn chain(&self, index: u64) -> Option<u64> {
        if index == 0 {
            return Some(0);
        }
        self.get(index).map(|p| p.chain)
    }

    /// Replaces the log from `first_index` on with entries described by
    /// `(term, content digest)` pairs.
    ///
    /// # Panics
    /// If the new entries would leave a hole.
    pub fn splice(&mut self, first_index: u64, entries: impl IntoIterator<Item = (u64, u64)>) {
        assert!(first_index >= 1, "log indexes start at 1");
        assert!(
            first_index <= self.last_index() + 1,
            "splice at {first_index} leaves a hole after {}",
            self.last_index()
        );
        self.prints.truncate((first_index - 1) as usize);
        for (term, entry) in entries {
            let previous = self.prints.last().map_or(0, |p| p.chain);
            let chain = digest_of(&(previous, term, entry));
            self.prints.push(Print { term, entry, chain });
        }
    }

    /// Drops every entry after `index`.
    pub fn truncate(&mut self, index: u64) {
        self.prints.truncate(index as usize);
    }
}

/// A digest of an entry's contents, combining whatever identifies it.
#[must_use]
pub fn entry_digest<T: Hash>(value: &T) -> u64 {
    digest_of(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_agree_exactly_when_prefixes_agree() {
        let mut a = LogView::default();
        let mut b = LogView::default();
        a.splice(1, [(1, 10), (1, 11), (2, 12)]);
        b.splice(1, [(1, 10), (1, 11), (3, 13)]);
        assert_eq!(a.chain(2), b.chain(2));
        assert_ne!(a.chain(3), b.chain(3));
        b.splice(3, [(2, 12), (2, 14)]);
        assert_eq!(a.chain(3), b.chain(3));
        assert_eq!(b.last_index(), 4);
        assert_eq!(a.chain(0), Some(0));
        assert_eq!(a.chain(4), None);
        a.truncate(1);
        assert_eq!(a.last_index(), 1);
    }
}
