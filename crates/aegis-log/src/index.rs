//! The in-memory index: for every group, where each of its entries lives on disk, plus
//! the rules every mutation must follow. The same rules run when a write is accepted and
//! when the log is replayed on open, so a replayed index equals the one that was live.

use std::collections::VecDeque;

use crate::error::Error;

/// Largest index an entry may carry (so that `last + 1` never overflows).
pub(crate) const INDEX_MAX: u64 = u64::MAX - 1;

/// Where one entry's frame lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Loc {
    pub(crate) term: u64,
    pub(crate) segment: u64,
    pub(crate) offset: u64,
    pub(crate) frame_len: u32,
}

/// The size and position of a group's entries, cheap to copy for dry runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Shape {
    /// Everything below `floor` was compacted away (0: never compacted).
    pub(crate) floor: u64,
    /// Index of the first held entry (meaningless when `count == 0`).
    pub(crate) start: u64,
    pub(crate) count: u64,
}

impl Shape {
    pub(crate) fn last(&self) -> Option<u64> {
        (self.count > 0).then(|| self.start + self.count - 1)
    }

    /// Checks that an entry at `index` may be appended to group `group`.
    pub(crate) fn check_append(&self, group: u64, index: u64) -> Result<(), Error> {
        match self.last() {
            Some(last) if index != last + 1 => Err(Error::NotContiguous {
                group,
                index,
                expected: last + 1,
            }),
            Some(_) if index > INDEX_MAX => Err(Error::NotContiguous {
                group,
                index,
                expected: INDEX_MAX,
            }),
            Some(_) => Ok(()),
            None if index < self.floor.max(1) => Err(Error::BelowCompaction {
                group,
                index,
                first: self.floor.max(1),
            }),
            None if index > INDEX_MAX => Err(Error::NotContiguous {
                group,
                index,
                expected: self.floor.max(1),
            }),
            None => Ok(()),
        }
    }

    pub(crate) fn append(&mut self, index: u64) {
        if self.count == 0 {
            self.start = index;
        }
        self.count += 1;
        debug_assert_eq!(self.last(), Some(index));
    }

    /// Removes entries at or after `index`; returns how many go.
    pub(crate) fn truncate_suffix(&mut self, index: u64) -> u64 {
        let Some(last) = self.last() else { return 0 };
        if index > last {
            return 0;
        }
        let keep = index.saturating_sub(self.start);
        let removed = self.count - keep;
        self.count = keep;
        removed
    }

    /// Removes entries before `index` and raises the floor; returns how many go.
    pub(crate) fn compact(&mut self, index: u64) -> u64 {
        self.floor = self.floor.max(index);
        if self.count == 0 || index <= self.start {
            return 0;
        }
        let removed = (index - self.start).min(self.count);
        self.start += removed;
        self.count -= removed;
        removed
    }
}

/// One group's entries.
#[derive(Debug, Default)]
pub(crate) struct GroupIndex {
    pub(crate) shape: Shape,
    pub(crate) locs: VecDeque<Loc>,
}

impl GroupIndex {
    pub(crate) fn get(&self, index: u64) -> Option<Loc> {
        let offset = index.checked_sub(self.shape.start)?;
        if offset >= self.shape.count {
            return None;
        }
        self.locs.get(usize::try_from(offset).ok()?).copied()
    }

    pub(crate) fn append(&mut self, index: u64, loc: Loc) {
        assert!(
            self.shape.check_append(0, index).is_ok(),
            "append must be validated first"
        );
        self.shape.append(index);
        self.locs.push_back(loc);
        self.check();
    }

    /// Removes entries at or after `index`, returning their locations.
    pub(crate) fn truncate_suffix(&mut self, index: u64) -> Vec<Loc> {
        let removed = self.shape.truncate_suffix(index);
        let keep = self.locs.len() - removed as usize;
        let gone = self.locs.split_off(keep);
        self.check();
        gone.into()
    }

    /// Removes entries before `index`, returning their locations.
    pub(crate) fn compact(&mut self, index: u64) -> Vec<Loc> {
        let removed = self.shape.compact(index);
        let gone: Vec<Loc> = self.locs.drain(..removed as usize).collect();
        self.check();
        gone
    }

    fn check(&self) {
        debug_assert_eq!(self.locs.len() as u64, self.shape.count);
        debug_assert!(self.shape.count == 0 || self.shape.start >= self.shape.floor.max(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_rules() {
        let mut s = Shape::default();
        assert!(matches!(
            s.check_append(1, 0),
            Err(Error::BelowCompaction { first: 1, .. })
        ));
        s.check_append(1, 5).unwrap();
        s.append(5);
        s.append(6);
        assert!(matches!(
            s.check_append(1, 8),
            Err(Error::NotContiguous { expected: 7, .. })
        ));
        assert_eq!(s.truncate_suffix(9), 0);
        assert_eq!(s.truncate_suffix(6), 1);
        assert_eq!(s.last(), Some(5));
        assert_eq!(s.compact(100), 1);
        assert_eq!((s.count, s.floor), (0, 100));
        assert!(matches!(
            s.check_append(1, 99),
            Err(Error::BelowCompaction { first: 100, .. })
        ));
        s.check_append(1, 100).unwrap();
        assert!(s.check_append(1, u64::MAX).is_err());
    }

    #[test]
    fn truncate_below_start_removes_everything() {
        let mut s = Shape::default();
        s.append(10);
        s.append(11);
        assert_eq!(s.truncate_suffix(3), 2);
        assert_eq!(s.last(), None);
    }
}
