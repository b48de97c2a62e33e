//! Lists: the items of a key in order, kept as one stored value.
//!
//! A list is encoded as its items, `count u32 | (len u32 | item) * count` (little-endian),
//! as a set's members are. As with hashes and sets, a write reads and
//! rewrites the whole list, so lists suit up to some thousands of items: a list capped
//! with `LTRIM`, a short work queue. An empty list is never stored; removing the last
//! item removes the key. Positions follow Redis: negative ones count from the end.

use std::ops::Range;

use crate::command::{ListRead, Output};
use crate::packed::Strings;

/// The items `LRANGE start stop` picks from a list of `len` items, as Redis picks them:
/// negative positions count from the end, and both ends are clamped to the list.
#[must_use]
pub fn range(len: usize, start: i64, stop: i64) -> Range<usize> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let from_end = |at: i64| if at < 0 { len.saturating_add(at) } else { at };
    let (start, stop) = (from_end(start).max(0), from_end(stop));
    if start > stop || start >= len {
        return 0..0;
    }
    let stop = stop.min(len - 1);
    // Both are within 0..len, which came from a usize.
    start as usize..stop as usize + 1
}

/// The place `index` names in a list of `len` items (negative from the end), if any.
#[must_use]
pub fn place(len: usize, index: i64) -> Option<usize> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let at = if index < 0 {
        len.checked_add(index)?
    } else {
        index
    };
    (0..len).contains(&at).then_some(at as usize)
}

/// Removes `item` from `items`: the first `count` occurrences from the head if `count`
/// is positive, the last `-count` from the tail if it is negative, every one if it is
/// 0. Returns how many went.
pub(crate) fn remove(items: &mut Strings, count: i64, item: &[u8]) -> usize {
    let limit = if count == 0 {
        usize::MAX
    } else {
        usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX)
    };
    let matching: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, i)| *i == item)
        .map(|(at, _)| at)
        .collect();
    let doomed: Vec<usize> = if count < 0 {
        matching.iter().rev().take(limit).copied().collect()
    } else {
        matching.iter().take(limit).copied().collect()
    };
    let mut doomed_in_order = doomed.clone();
    doomed_in_order.sort_unstable_by(|a, b| b.cmp(a));
    for at in doomed_in_order {
        items.remove(at, 1);
    }
    doomed.len()
}

/// The answer to `read` for `items`, the list the key holds (empty without a live
/// value).
#[must_use]
pub fn answer<T: AsRef<[u8]>>(read: &ListRead, items: &[T]) -> Output {
    match read {
        ListRead::Len => Output::Count(items.len() as u64),
        ListRead::Range { start, stop } => Output::Values(
            items[range(items.len(), *start, *stop)]
                .iter()
                .map(|i| Some(i.as_ref().to_vec()))
                .collect(),
        ),
        ListRead::Index { index } => {
            Output::Value(place(items.len(), *index).map(|at| items[at].as_ref().to_vec()))
        }
        ListRead::Pos {
            item,
            rank,
            count,
            max_len,
        } => positions(items, item, *rank, *count, *max_len),
    }
}

/// `LPOS`: where `item` is, from the `rank`th match on (negative: counting from the
/// tail), looking at no more than `max_len` items (0: all); one place (or none) without
/// `count`, else up to `count` of them (0: all).
fn positions<T: AsRef<[u8]>>(
    items: &[T],
    item: &[u8],
    rank: i64,
    count: Option<u64>,
    max_len: u64,
) -> Output {
    let looked = if max_len == 0 {
        items.len()
    } else {
        usize::try_from(max_len)
            .unwrap_or(usize::MAX)
            .min(items.len())
    };
    let skip = usize::try_from(rank.unsigned_abs().saturating_sub(1)).unwrap_or(usize::MAX);
    let wanted = match count {
        None => 1,
        Some(0) => usize::MAX,
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
    };
    let matches = |at: &usize| items[*at].as_ref() == item;
    let found: Vec<i64> = if rank > 0 {
        (0..looked)
            .filter(matches)
            .skip(skip)
            .take(wanted)
            .map(|at| at as i64)
            .collect()
    } else {
        (items.len() - looked..items.len())
            .rev()
            .filter(matches)
            .skip(skip)
            .take(wanted)
            .map(|at| at as i64)
            .collect()
    };
    match count {
        None => found
            .first()
            .map_or(Output::Value(None), |&at| Output::Integer(at)),
        Some(_) => Output::Integers(found),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn items(all: &[&str]) -> Vec<Vec<u8>> {
        all.iter().map(|i| i.as_bytes().to_vec()).collect()
    }

    #[test]
    fn ranges_and_places_follow_redis() {
        assert_eq!(range(5, 0, -1), 0..5);
        assert_eq!(range(5, -2, 100), 3..5);
        assert_eq!(range(5, -100, 1), 0..2);
        assert_eq!(range(5, 3, 2), 0..0);
        assert_eq!(range(5, 5, 9), 0..0);
        assert_eq!(range(0, 0, -1), 0..0);
        assert_eq!(range(5, i64::MIN, i64::MAX), 0..5);
        assert_eq!(place(3, -1), Some(2));
        assert_eq!(place(3, -4), None);
        assert_eq!(place(3, 3), None);
        assert_eq!(place(3, i64::MIN), None);
    }

    #[test]
    fn remove_counts_from_either_end() {
        let list = items(&["a", "b", "a", "c", "a"]);
        let after = |count| {
            let mut strings = Strings::default();
            for item in &list {
                strings.push(item.clone());
            }
            let n = remove(&mut strings, count, b"a");
            (n, strings.iter().map(<[u8]>::to_vec).collect::<Vec<_>>())
        };
        assert_eq!(after(2), (2, items(&["b", "c", "a"])));
        assert_eq!(after(-2), (2, items(&["a", "b", "c"])));
        assert_eq!(after(0), (3, items(&["b", "c"])));
        assert_eq!(after(i64::MIN), (3, items(&["b", "c"])));
    }

    #[test]
    fn positions_follow_redis() {
        let list = items(&["a", "b", "c", "1", "2", "3", "c", "c"]);
        let pos = |rank, count, max_len| {
            answer(
                &ListRead::Pos {
                    item: b"c".to_vec(),
                    rank,
                    count,
                    max_len,
                },
                &list,
            )
        };
        assert_eq!(pos(1, None, 0), Output::Integer(2));
        assert_eq!(pos(2, None, 0), Output::Integer(6));
        assert_eq!(pos(-1, None, 0), Output::Integer(7));
        assert_eq!(pos(1, Some(2), 0), Output::Integers(vec![2, 6]));
        assert_eq!(pos(1, Some(0), 0), Output::Integers(vec![2, 6, 7]));
        assert_eq!(pos(-1, Some(0), 0), Output::Integers(vec![7, 6, 2]));
        assert_eq!(pos(1, Some(0), 3), Output::Integers(vec![2]));
        assert_eq!(pos(-1, Some(0), 2), Output::Integers(vec![7, 6]));
        assert_eq!(pos(4, None, 0), Output::Value(None));
    }

    proptest! {
        #[test]
        fn a_range_is_always_inside_the_list(len in 0usize..20, start: i64, stop: i64) {
            let picked = range(len, start, stop);
            prop_assert!(picked.start <= picked.end && picked.end <= len);
        }
    }
}
