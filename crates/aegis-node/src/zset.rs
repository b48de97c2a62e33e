//! Sorted sets: members ordered by a score, kept as one stored value.
//!
//! A sorted set is encoded as (little-endian)
//!
//! ```text
//! count u32 | (member_len u32 | member | 8 u32 | score f64) * count
//! ```
//!
//! in order of score, then of member bytes, with no score NaN or a negative zero: the
//! layout of the other collections, a member and its score being a group of two strings.
//! As with them, a write reads and rewrites the whole sorted set, so sorted sets suit up
//! to some thousands of members (a leaderboard, a queue of timestamps).
//!
//! Scores are doubles. A score argument is read as C's `strtod` reads it, as Redis does
//! (but without hexadecimal floats); an answer writes the fewest digits that read back
//! as the same double, laid out as `printf`'s `%.17g` lays them out: `1.5`, `100`,
//! `1e+20`, `inf`.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::ops::Range;

use crate::command::{
    Aggregate, LexBound, Output, Score, ScoreBound, SetOp, ZAddOptions, ZRange, ZRangeBy, ZSetRead,
};
use crate::list;
use crate::packed::Strings;

/// The members of one sorted set, in order of score then of member.
#[derive(Debug, Clone, Default)]
pub struct SortedSet {
    /// Member and score after member and score. Decoded ones stay in the stored bytes.
    strings: Strings,
}

impl PartialEq for SortedSet {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for SortedSet {}

/// From this many members, in the sorted set or in one write, a write of several
/// members looks them up through an index rather than one scan each.
const INDEX_FROM_MEMBERS: usize = 16;

/// What one member of a `ZADD` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Added {
    /// It was not there, and now is.
    New,
    /// Its score changed.
    Updated,
    /// It is there with the score it had.
    Same,
    /// An option (`NX`, `XX`, `GT`, `LT`) kept it from being written.
    Skipped,
}

/// A `ZADD` whose increment made a score that is not a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotANumber;

/// What a `ZADD` of `score` does to a member whose score is `current` (`None`: not
/// there), as Redis's `zsetAdd` decides, and the score the member has after it.
fn decide(
    current: Option<f64>,
    score: f64,
    options: ZAddOptions,
) -> Result<(Added, f64), NotANumber> {
    let Some(current) = current else {
        let effect = if options.only_existing {
            Added::Skipped
        } else {
            Added::New
        };
        return Ok((effect, score));
    };
    if options.only_new {
        return Ok((Added::Skipped, current));
    }
    let now = if options.incr {
        Score::new(current + score).ok_or(NotANumber)?.get()
    } else {
        score
    };
    Ok(
        if (options.less && now >= current) || (options.greater && now <= current) {
            (Added::Skipped, current)
        } else if now == current {
            (Added::Same, now)
        } else {
            (Added::Updated, now)
        },
    )
}

/// A `ZADD`'s answer: with `incr`, the last member's score unless an option kept it
/// from being written; else how many members were added, and with `changed` updated.
fn zadd_output(options: ZAddOptions, added: u64, updated: u64, last: Option<Score>) -> Output {
    if options.incr {
        Output::Score(last)
    } else if options.changed {
        Output::Count(added + updated)
    } else {
        Output::Count(added)
    }
}

/// The order of sorted-set entries: by score, then by member bytes. Scores are never
/// NaN or a negative zero, so the total order of doubles is their numeric order.
fn order(score: f64, member: &[u8], other_score: f64, other_member: &[u8]) -> Ordering {
    score
        .total_cmp(&other_score)
        .then_with(|| member.cmp(other_member))
}

impl SortedSet {
    /// Decodes a stored sorted set; never panics, whatever the bytes.
    ///
    /// # Errors
    /// What was wrong with the bytes, among them a score that is not 8 bytes, a NaN, a
    /// negative zero, or members out of order (a repeated member among them).
    pub fn decode(bytes: &[u8]) -> Result<Self, &'static str> {
        let strings = Strings::decode(bytes, 2)?;
        let mut previous: Option<(f64, &[u8])> = None;
        for at in 0..strings.len() / 2 {
            let score: [u8; 8] = strings
                .get(2 * at + 1)
                .try_into()
                .map_err(|_| "a score that is not 8 bytes")?;
            let score = f64::from_le_bytes(score);
            if Score::new(score).is_none_or(|s| s.get().to_bits() != score.to_bits()) {
                return Err("a score that is NaN or a negative zero");
            }
            let member = strings.get(2 * at);
            if let Some((last_score, last_member)) = previous
                && order(last_score, last_member, score, member) != Ordering::Less
            {
                return Err("members out of order");
            }
            previous = Some((score, member));
        }
        Ok(Self { strings })
    }

    /// The stored form, as [`SortedSet::decode`] reads it.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        self.strings.encode(2)
    }

    /// The length of [`SortedSet::encode`]'s output.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        self.strings.encoded_len()
    }

    /// How many members the sorted set has.
    #[must_use]
    pub fn len(&self) -> usize {
        self.strings.len() / 2
    }

    /// Whether the sorted set has no member.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.strings.len() == 0
    }

    /// The member and score at `at`, in order.
    fn entry(&self, at: usize) -> (&[u8], f64) {
        (self.strings.get(2 * at), self.score_at(at))
    }

    fn score_at(&self, at: usize) -> f64 {
        let bytes = self.strings.get(2 * at + 1);
        // Decoding checked the stored scores, and written ones are 8 bytes.
        f64::from_le_bytes(bytes.try_into().expect("a score is 8 bytes"))
    }

    /// The members and their scores, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], f64)> {
        (0..self.len()).map(|at| self.entry(at))
    }

    /// The score of `member`, if it is there.
    #[must_use]
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.position(member).map(|at| self.score_at(at))
    }

    fn position(&self, member: &[u8]) -> Option<usize> {
        (0..self.len()).find(|&at| self.strings.get(2 * at) == member)
    }

    /// Puts `member`, not there yet, in its place for `score`.
    fn insert(&mut self, score: f64, member: &[u8]) {
        debug_assert!(self.position(member).is_none(), "a member is there once");
        let at = self.partition(|m, s| order(s, m, score, member) == Ordering::Less);
        self.strings.insert(2 * at, member.to_vec());
        self.strings
            .insert(2 * at + 1, score.to_le_bytes().to_vec());
        debug_assert!(
            at == 0
                || order(
                    self.score_at(at - 1),
                    self.strings.get(2 * at - 2),
                    score,
                    member
                ) == Ordering::Less
        );
    }

    /// How many entries from the first on `before` accepts; `before` must accept a
    /// prefix of the entries in order.
    fn partition(&self, before: impl Fn(&[u8], f64) -> bool) -> usize {
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let mid = low + (high - low) / 2;
            let (member, score) = self.entry(mid);
            if before(member, score) {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        low
    }

    fn remove_at(&mut self, at: usize, count: usize) {
        self.strings.remove(2 * at, 2 * count);
    }

    /// `ZADD` of one member, as Redis's `zsetAdd` decides: the score it then has, and
    /// what happened.
    fn add(
        &mut self,
        score: f64,
        member: &[u8],
        options: ZAddOptions,
    ) -> Result<(Added, f64), NotANumber> {
        let at = self.position(member);
        let (effect, now) = decide(at.map(|at| self.score_at(at)), score, options)?;
        match (effect, at) {
            (Added::New, _) => self.insert(now, member),
            (Added::Updated, Some(at)) => {
                self.remove_at(at, 1);
                self.insert(now, member);
            }
            _ => {}
        }
        Ok((effect, now))
    }

    /// `ZADD` of `entries` in order (a repeated member ends with its last score): with
    /// `incr`, the member's new score ([`Output::Score`], `None` if an option kept it
    /// from being written), else how many members were added, and with `changed`
    /// updated ([`Output::Count`]); and whether any member was added or updated.
    ///
    /// # Errors
    /// [`NotANumber`] if an increment made a NaN; the sorted set is then as it was (an
    /// increment is of one member).
    pub fn add_all(
        &mut self,
        entries: &[(Score, Vec<u8>)],
        options: ZAddOptions,
    ) -> Result<(Output, bool), NotANumber> {
        let (mut added, mut updated, mut last) = (0u64, 0u64, None);
        for (score, member) in entries {
            let (effect, now) = self.add(score.get(), member, options)?;
            match effect {
                Added::New => added += 1,
                Added::Updated => updated += 1,
                Added::Same | Added::Skipped => {}
            }
            last = (effect != Added::Skipped).then(|| Score::new(now).expect("never NaN"));
        }
        Ok((
            zadd_output(options, added, updated, last),
            added + updated > 0,
        ))
    }

    /// Removes every member of `members` (a repeated one counts once). Returns how many
    /// were there.
    pub fn remove_all(&mut self, members: &[Vec<u8>]) -> usize {
        let before = self.len();
        if members.len() < 2 || (before < INDEX_FROM_MEMBERS && members.len() < INDEX_FROM_MEMBERS)
        {
            for member in members {
                if let Some(at) = self.position(member) {
                    self.remove_at(at, 1);
                }
            }
        } else {
            let doomed: HashSet<&[u8]> = members.iter().map(Vec::as_slice).collect();
            self.strings.retain_groups(2, |m| !doomed.contains(m));
        }
        before - self.len()
    }

    /// Removes up to `count` members from the lowest scores up, or with `max` from the
    /// highest down, and returns them with their scores in that order.
    pub fn pop(&mut self, count: u64, max: bool) -> Vec<(Vec<u8>, Score)> {
        let taken = usize::try_from(count).unwrap_or(usize::MAX).min(self.len());
        let span = if max {
            self.len() - taken..self.len()
        } else {
            0..taken
        };
        let mut popped: Vec<(Vec<u8>, Score)> = span
            .clone()
            .map(|at| {
                let (member, score) = self.entry(at);
                (member.to_vec(), Score::new(score).expect("never NaN"))
            })
            .collect();
        if max {
            popped.reverse();
        }
        self.remove_at(span.start, span.len());
        popped
    }

    /// Removes the members `by` picks; returns how many.
    pub fn remove_range(&mut self, by: &ZRangeBy) -> usize {
        let span = self.span(by, false);
        self.remove_at(span.start, span.len());
        span.len()
    }

    /// The places, in order, of the members `by` picks: walking up from the lowest
    /// score, or with `rev` down from the highest (which, for members of different
    /// scores, may pick different members by member bytes, as in Redis).
    fn span(&self, by: &ZRangeBy, rev: bool) -> Range<usize> {
        let len = self.len();
        match by {
            ZRangeBy::Rank { start, stop } => {
                let picked = list::range(len, *start, *stop);
                if rev {
                    len - picked.end..len - picked.start
                } else {
                    picked
                }
            }
            ZRangeBy::Score { min, max } => {
                let start = self.partition(|_, s| !above_min(s, *min));
                let end = self.partition(|_, s| below_max(s, *max));
                start..end.max(start)
            }
            ZRangeBy::Lex { min, max } => {
                let member = |at: usize| self.strings.get(2 * at);
                // Redis's first test: the range can hold nothing if the last member is
                // below it or the first above it.
                if len == 0
                    || !lex_above_min(member(len - 1), min)
                    || !lex_below_max(member(0), max)
                {
                    return 0..0;
                }
                if rev {
                    let Some(last) = (0..len).rev().find(|&at| lex_below_max(member(at), max))
                    else {
                        return 0..0;
                    };
                    let first = (0..=last)
                        .rev()
                        .take_while(|&at| lex_above_min(member(at), min))
                        .last();
                    first.map_or(0..0, |first| first..last + 1)
                } else {
                    let Some(first) = (0..len).find(|&at| lex_above_min(member(at), min)) else {
                        return 0..0;
                    };
                    let taken = (first..len)
                        .take_while(|&at| lex_below_max(member(at), max))
                        .count();
                    first..first + taken
                }
            }
        }
    }

    /// The places of the members `range` picks, in the order it answers them.
    fn pick(&self, range: &ZRange) -> Vec<usize> {
        let span = self.span(&range.by, range.rev);
        let (offset, count) = range.limit.unwrap_or((0, -1));
        let Ok(offset) = usize::try_from(offset) else {
            return Vec::new();
        };
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        if let ZRangeBy::Lex { min, max } = &range.by {
            // As Redis does, skip the offset from the first member in the range, then
            // take members while they are before its end (past it, for members of
            // different scores, some may come back in).
            if span.is_empty() {
                return Vec::new();
            }
            let member = |at: usize| self.strings.get(2 * at);
            return if range.rev {
                (0..span.end)
                    .rev()
                    .skip(offset)
                    .take_while(|&at| lex_above_min(member(at), min))
                    .take(count)
                    .collect()
            } else {
                (span.start..self.len())
                    .skip(offset)
                    .take_while(|&at| lex_below_max(member(at), max))
                    .take(count)
                    .collect()
            };
        }
        if range.rev {
            span.rev().skip(offset).take(count).collect()
        } else {
            span.skip(offset).take(count).collect()
        }
    }

    /// The members `range` picks, with their scores, in the order it answers them.
    #[must_use]
    pub fn range(&self, range: &ZRange) -> Vec<(Vec<u8>, Score)> {
        self.pick(range)
            .into_iter()
            .map(|at| {
                let (member, score) = self.entry(at);
                (member.to_vec(), Score::new(score).expect("never NaN"))
            })
            .collect()
    }
}

impl SortedSet {
    /// The sorted set of `entries`, members that are all different, in any order.
    #[must_use]
    pub fn from_entries(mut entries: Vec<(Vec<u8>, f64)>) -> Self {
        entries.sort_by(|(m, s), (n, t)| order(*s, m, *t, n));
        let mut strings = Strings::default();
        for (member, score) in entries {
            debug_assert!(Score::new(score).is_some_and(|s| s.get() == score));
            strings.push(member);
            strings.push(score.to_le_bytes().to_vec());
        }
        let set = Self { strings };
        debug_assert!(
            SortedSet::decode(&set.encode()).is_ok(),
            "sorted, no repeats"
        );
        set
    }

    /// The sorted set of a set's members, each scored 1, as the commands that combine
    /// sorted sets read a set.
    #[must_use]
    pub fn of_members<'a>(members: impl Iterator<Item = &'a [u8]>) -> Self {
        Self::from_entries(members.map(|m| (m.to_vec(), 1.0)).collect())
    }
}

/// `aggregate` of a score kept and a score met again, as Redis's `ZUNIONSTORE` makes
/// it: a sum that is NaN (an infinity and its opposite) is 0, and a NaN met is ignored
/// by `MIN` and `MAX`.
fn aggregate_into(kept: &mut f64, met: f64, aggregate: Aggregate) {
    match aggregate {
        Aggregate::Sum => {
            *kept += met;
            if kept.is_nan() {
                *kept = 0.0;
            }
        }
        Aggregate::Min => {
            if met < *kept {
                *kept = met;
            }
        }
        Aggregate::Max => {
            if met > *kept {
                *kept = met;
            }
        }
    }
}

/// A score times a weight; NaN (an infinity times 0) is 0.
fn weighted(score: f64, weight: f64) -> f64 {
    let value = score * weight;
    if value.is_nan() { 0.0 } else { value }
}

/// `op` over `sources` (`None` for a key without a value), as `ZUNIONSTORE`,
/// `ZINTERSTORE` and `ZDIFFSTORE` compute it: each score times its source's weight
/// (`weights` empty: all 1), scores of a member in several sources combined by
/// `aggregate`. As in Redis, union and intersection take the sources from the smallest
/// up, which decides the order a sum adds in.
#[must_use]
pub fn combine(
    op: SetOp,
    sources: &[Option<SortedSet>],
    weights: &[Score],
    aggregate: Aggregate,
) -> SortedSet {
    debug_assert!(weights.is_empty() || weights.len() == sources.len());
    let empty = SortedSet::default();
    let mut inputs: Vec<(&SortedSet, f64)> = sources
        .iter()
        .enumerate()
        .map(|(at, s)| {
            let weight = weights.get(at).map_or(1.0, |w| w.get());
            (s.as_ref().unwrap_or(&empty), weight)
        })
        .collect();
    let Some(&(first, _)) = inputs.first() else {
        return SortedSet::default();
    };
    if op == SetOp::Diff {
        let others: Vec<HashSet<&[u8]>> = inputs[1..]
            .iter()
            .map(|(s, _)| s.iter().map(|(m, _)| m).collect())
            .collect();
        let kept = first
            .iter()
            .filter(|(m, _)| !others.iter().any(|o| o.contains(m)))
            .map(|(m, s)| (m.to_vec(), s))
            .collect();
        return SortedSet::from_entries(kept);
    }
    inputs.sort_by_key(|(s, _)| s.len());
    let mut scores: HashMap<&[u8], f64> = HashMap::new();
    if op == SetOp::Union {
        for (source, weight) in &inputs {
            for (member, score) in source.iter() {
                let value = weighted(score, *weight);
                scores
                    .entry(member)
                    .and_modify(|kept| aggregate_into(kept, value, aggregate))
                    .or_insert(value);
            }
        }
    } else {
        let (smallest, weight) = inputs[0];
        let others: Vec<(HashMap<&[u8], f64>, f64)> = inputs[1..]
            .iter()
            .map(|(s, w)| (s.iter().collect(), *w))
            .collect();
        'members: for (member, score) in smallest.iter() {
            let mut value = weighted(score, weight);
            for (other, weight) in &others {
                let Some(&score) = other.get(member) else {
                    continue 'members;
                };
                // Redis leaves a NaN here to the aggregate.
                aggregate_into(&mut value, score * weight, aggregate);
            }
            scores.insert(member, value);
        }
    }
    SortedSet::from_entries(
        scores
            .into_iter()
            // A sum of many infinities stays an infinity, never a NaN; 0 for -0.
            .map(|(m, s)| (m.to_vec(), s + 0.0))
            .collect(),
    )
}

/// Edits of a stored sorted set made in its bytes, without decoding it: the common
/// one-member writes (`ZADD` of one member, `ZREM` of one, `ZPOPMIN`, `ZPOPMAX`) read
/// the entries once and copy the bytes once.
pub(crate) mod stored {
    use std::ops::Range;

    use super::{Added, NotANumber, decide, order, zadd_output};
    use crate::command::{Output, Score, ZAddOptions};
    use crate::packed::{put_bytes, take_u32, u32_len};

    /// One entry of an encoded sorted set.
    struct Entry<'a> {
        /// Where its bytes lie, lengths included.
        bytes: Range<usize>,
        member: &'a [u8],
        score: f64,
    }

    /// The entries of an encoded sorted set, in order, read one at a time.
    struct Walk<'a> {
        encoded: &'a [u8],
        at: usize,
        left: usize,
    }

    impl<'a> Walk<'a> {
        fn new(encoded: &'a [u8]) -> Result<(Self, usize), &'static str> {
            let mut rest = encoded;
            let count = take_u32(&mut rest).ok_or("shorter than its count")? as usize;
            let walk = Self {
                encoded,
                at: 4,
                left: count,
            };
            Ok((walk, count))
        }

        fn next(&mut self) -> Result<Option<Entry<'a>>, &'static str> {
            if self.left == 0 {
                return Ok(None);
            }
            let start = self.at;
            let mut rest = &self.encoded[start..];
            let member = crate::packed::take_bytes(&mut rest).ok_or("member cut short")?;
            let score = crate::packed::take_bytes(&mut rest).ok_or("score cut short")?;
            let score: [u8; 8] = score
                .try_into()
                .map_err(|_| "a score that is not 8 bytes")?;
            self.at = self.encoded.len() - rest.len();
            self.left -= 1;
            Ok(Some(Entry {
                bytes: start..self.at,
                member,
                score: f64::from_le_bytes(score),
            }))
        }
    }

    /// Members and their scores, in order.
    pub(crate) type Scored = Vec<(Vec<u8>, Score)>;

    /// What a write in place leaves.
    pub(crate) enum Edited {
        /// Nothing changed.
        Unchanged,
        /// The new encoding; `None` once no member is left.
        Stored(Option<Vec<u8>>),
    }

    /// `ZADD` of one member to `encoded` (`None`: no sorted set yet), as
    /// [`super::SortedSet::add_all`] does it, and its answer.
    pub(crate) fn add_one(
        encoded: Option<&[u8]>,
        score: Score,
        member: &[u8],
        options: ZAddOptions,
    ) -> Result<Result<(Edited, Output), NotANumber>, &'static str> {
        let mut found = None;
        let mut count = 0;
        // Where the member goes if its score is the one given (always, unless it is there
        // and the options make another): before the first other entry ordering after it.
        let mut place_for_given = None;
        if let Some(encoded) = encoded {
            let (mut walk, n) = Walk::new(encoded)?;
            count = n;
            while let Some(entry) = walk.next()? {
                if entry.member == member {
                    found = Some((entry.bytes, entry.score));
                    break;
                }
                if place_for_given.is_none()
                    && order(entry.score, entry.member, score.get(), member)
                        == std::cmp::Ordering::Greater
                {
                    place_for_given = Some(entry.bytes.start);
                }
            }
        }
        let (effect, now) = match decide(found.as_ref().map(|(_, s)| *s), score.get(), options) {
            Ok(decided) => decided,
            Err(nan) => return Ok(Err(nan)),
        };
        let output = zadd_output(
            options,
            u64::from(effect == Added::New),
            u64::from(effect == Added::Updated),
            (effect != Added::Skipped).then(|| Score::new(now).expect("never NaN")),
        );
        if !matches!(effect, Added::New | Added::Updated) {
            return Ok(Ok((Edited::Unchanged, output)));
        }
        let encoded = encoded.unwrap_or(&[0, 0, 0, 0]);
        let skip = found.map(|(bytes, _)| bytes);
        // Where the member goes: before the first other entry that orders after it.
        let insert_at = match (&skip, place_for_given) {
            // A new member: the whole walk looked for its place.
            (None, place) => place.unwrap_or(encoded.len()),
            (Some(_), _) => {
                let mut insert_at = encoded.len();
                let (mut walk, _) = Walk::new(encoded)?;
                while let Some(entry) = walk.next()? {
                    if skip.as_ref() != Some(&entry.bytes)
                        && order(entry.score, entry.member, now, member)
                            == std::cmp::Ordering::Greater
                    {
                        insert_at = entry.bytes.start;
                        break;
                    }
                }
                insert_at
            }
        };
        let total = if skip.is_some() { count } else { count + 1 };
        let mut out = Vec::with_capacity(encoded.len() + member.len() + 16);
        out.extend_from_slice(&u32_len(total).to_le_bytes());
        extend_without(&mut out, encoded, 4..insert_at, skip.as_ref());
        put_bytes(&mut out, member);
        put_bytes(&mut out, &now.to_le_bytes());
        extend_without(&mut out, encoded, insert_at..encoded.len(), skip.as_ref());
        Ok(Ok((Edited::Stored(Some(out)), output)))
    }

    /// `bytes[range]`, without `skip` if it lies inside it.
    fn extend_without(
        out: &mut Vec<u8>,
        bytes: &[u8],
        range: Range<usize>,
        skip: Option<&Range<usize>>,
    ) {
        match skip {
            Some(skip) if skip.start >= range.start && skip.end <= range.end => {
                out.extend_from_slice(&bytes[range.start..skip.start]);
                out.extend_from_slice(&bytes[skip.end..range.end]);
            }
            _ => out.extend_from_slice(&bytes[range]),
        }
    }

    /// `encoded` without `member`, if it is there.
    pub(crate) fn remove_one(encoded: &[u8], member: &[u8]) -> Result<Edited, &'static str> {
        let (mut walk, count) = Walk::new(encoded)?;
        while let Some(entry) = walk.next()? {
            if entry.member == member {
                if count == 1 {
                    return Ok(Edited::Stored(None));
                }
                let mut out = Vec::with_capacity(encoded.len() - entry.bytes.len());
                out.extend_from_slice(&u32_len(count - 1).to_le_bytes());
                extend_without(&mut out, encoded, 4..encoded.len(), Some(&entry.bytes));
                return Ok(Edited::Stored(Some(out)));
            }
        }
        Ok(Edited::Unchanged)
    }

    /// `encoded` without up to `count` members from the lowest scores (or with `max`,
    /// the highest), and those members with their scores, in the order taken.
    pub(crate) fn pop(
        encoded: &[u8],
        count: u64,
        max: bool,
    ) -> Result<(Edited, Scored), &'static str> {
        let (mut walk, len) = Walk::new(encoded)?;
        let taken = usize::try_from(count).unwrap_or(usize::MAX).min(len);
        if taken == 0 {
            return Ok((Edited::Unchanged, Vec::new()));
        }
        let entry_of = |entry: &Entry<'_>| {
            let score = Score::new(entry.score).ok_or("a score that is not a number")?;
            Ok::<_, &'static str>((entry.member.to_vec(), score))
        };
        let mut popped = Vec::with_capacity(taken);
        let body = if max {
            // The last `taken` entries: walk to where they start.
            let mut all = Vec::with_capacity(len);
            while let Some(entry) = walk.next()? {
                all.push(entry);
            }
            let keep = len - taken;
            for entry in all[keep..].iter().rev() {
                popped.push(entry_of(entry)?);
            }
            4..all.get(keep).map_or(encoded.len(), |e| e.bytes.start)
        } else {
            let mut end = 4;
            for _ in 0..taken {
                let entry = walk.next()?.ok_or("fewer entries than counted")?;
                popped.push(entry_of(&entry)?);
                end = entry.bytes.end;
            }
            end..encoded.len()
        };
        if taken == len {
            return Ok((Edited::Stored(None), popped));
        }
        let mut out = Vec::with_capacity(4 + body.len());
        out.extend_from_slice(&u32_len(len - taken).to_le_bytes());
        out.extend_from_slice(&encoded[body]);
        Ok((Edited::Stored(Some(out)), popped))
    }
}

fn above_min(score: f64, min: ScoreBound) -> bool {
    if min.exclusive {
        score > min.score.get()
    } else {
        score >= min.score.get()
    }
}

fn below_max(score: f64, max: ScoreBound) -> bool {
    if max.exclusive {
        score < max.score.get()
    } else {
        score <= max.score.get()
    }
}

fn lex_above_min(member: &[u8], min: &LexBound) -> bool {
    match min {
        LexBound::Min => true,
        LexBound::Max => false,
        LexBound::Inclusive(bound) => member >= bound.as_slice(),
        LexBound::Exclusive(bound) => member > bound.as_slice(),
    }
}

fn lex_below_max(member: &[u8], max: &LexBound) -> bool {
    match max {
        LexBound::Min => false,
        LexBound::Max => true,
        LexBound::Inclusive(bound) => member <= bound.as_slice(),
        LexBound::Exclusive(bound) => member < bound.as_slice(),
    }
}

/// The answer to `read` for `set`, the sorted set the key holds (`None`: no live
/// value).
#[must_use]
pub fn answer(read: &ZSetRead, set: Option<&SortedSet>) -> Output {
    let empty = SortedSet::default();
    let set = set.unwrap_or(&empty);
    let score = |value: f64| Score::new(value).expect("never NaN");
    match read {
        ZSetRead::Card => Output::Count(set.len() as u64),
        ZSetRead::Score { member } => Output::Score(set.score(member).map(score)),
        ZSetRead::MScore { members } => {
            Output::Scores(members.iter().map(|m| set.score(m).map(score)).collect())
        }
        ZSetRead::Rank { member, rev } => Output::Ranked(set.position(member).map(|at| {
            let rank = if *rev { set.len() - 1 - at } else { at };
            (rank as u64, score(set.score_at(at)))
        })),
        ZSetRead::Count { by } => Output::Count(set.span(by, false).len() as u64),
        ZSetRead::Range { range, with_scores } => {
            let picked = set.range(range);
            if *with_scores {
                Output::Scored(picked)
            } else {
                Output::Values(picked.into_iter().map(|(m, _)| Some(m)).collect())
            }
        }
    }
}

/// Reads a score argument as Redis does (`strtod`, then refusing NaN, an overflow to
/// infinity and an underflow to zero); `None` if it is not a valid score.
#[must_use]
pub fn parse_score(text: &[u8]) -> Option<Score> {
    let text = std::str::from_utf8(text).ok()?;
    if text.is_empty() || text.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let value: f64 = text.parse().ok()?;
    let mantissa = text.split(['e', 'E']).next().unwrap_or(text);
    let worded = mantissa.bytes().any(|b| b.is_ascii_alphabetic());
    if value.is_infinite() && !worded {
        return None;
    }
    if value == 0.0 && !worded && mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
        return None;
    }
    Score::new(value)
}

/// Reads one end of a score range: `(` in front for an exclusive end, then a double as
/// `strtod` reads it (an overflow is an infinity, as in Redis).
#[must_use]
pub fn parse_score_bound(text: &[u8]) -> Option<ScoreBound> {
    let (exclusive, number) = match text.split_first() {
        Some((b'(', rest)) => (true, rest),
        _ => (false, text),
    };
    let number = std::str::from_utf8(number).ok()?.trim_start();
    // `strtod` reads nothing from an empty string, and Redis takes that as 0.
    let value: f64 = if number.is_empty() {
        0.0
    } else {
        number.parse().ok()?
    };
    Some(ScoreBound {
        score: Score::new(value)?,
        exclusive,
    })
}

/// Reads one end of a member range: `-`, `+`, `[member` or `(member`.
#[must_use]
pub fn parse_lex_bound(text: &[u8]) -> Option<LexBound> {
    match text {
        b"-" => Some(LexBound::Min),
        b"+" => Some(LexBound::Max),
        [b'[', rest @ ..] => Some(LexBound::Inclusive(rest.to_vec())),
        [b'(', rest @ ..] => Some(LexBound::Exclusive(rest.to_vec())),
        _ => None,
    }
}

/// Writes `score` with the fewest digits that read back as the same double, laid out
/// as `%.17g` lays them out: positional from 1e-4 up to below 1e17, else with an
/// exponent of at least two digits (`1e+17`, `2.5e-05`); `inf` and `-inf`.
#[must_use]
pub fn format_score(score: f64) -> String {
    if score.is_infinite() {
        return if score > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    if score == 0.0 {
        return "0".to_owned();
    }
    // `{:e}` gives the shortest digits that round-trip: `-1.2345e-7`.
    let scientific = format!("{score:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("`{:e}` writes an exponent");
    let exponent: i32 = exponent.parse().expect("`{:e}` writes a decimal exponent");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let mut out = String::from(sign);
    if (-4..17).contains(&exponent) {
        if exponent < 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exponent - 1) as usize));
            out.push_str(&digits);
        } else {
            let whole = exponent as usize + 1;
            if digits.len() <= whole {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', whole - digits.len()));
            } else {
                out.push_str(&digits[..whole]);
                out.push('.');
                out.push_str(&digits[whole..]);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let sign = if exponent < 0 { '-' } else { '+' };
        out.push_str(&format!("e{sign}{:02}", exponent.unsigned_abs()));
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn score(value: f64) -> Score {
        Score::new(value).unwrap()
    }

    fn zset(entries: &[(f64, &str)]) -> SortedSet {
        let mut set = SortedSet::default();
        let entries: Vec<(Score, Vec<u8>)> = entries
            .iter()
            .map(|(s, m)| (score(*s), m.as_bytes().to_vec()))
            .collect();
        set.add_all(&entries, ZAddOptions::default()).unwrap();
        set
    }

    fn members(set: &SortedSet) -> Vec<(String, f64)> {
        set.iter()
            .map(|(m, s)| (String::from_utf8(m.to_vec()).unwrap(), s))
            .collect()
    }

    fn by_rank(start: i64, stop: i64, rev: bool) -> ZRange {
        ZRange {
            by: ZRangeBy::Rank { start, stop },
            rev,
            limit: None,
        }
    }

    #[test]
    fn keeps_score_then_member_order() {
        let set = zset(&[(2.0, "b"), (1.0, "z"), (2.0, "a"), (-1.5, "m")]);
        assert_eq!(
            members(&set),
            [
                ("m".to_owned(), -1.5),
                ("z".to_owned(), 1.0),
                ("a".to_owned(), 2.0),
                ("b".to_owned(), 2.0)
            ]
        );
        assert_eq!(SortedSet::decode(&set.encode()), Ok(set));
    }

    #[test]
    fn the_encoding_is_fixed() {
        let set = zset(&[(1.0, "a")]);
        let mut expected = vec![1, 0, 0, 0, 1, 0, 0, 0, b'a', 8, 0, 0, 0];
        expected.extend_from_slice(&1.0f64.to_le_bytes());
        assert_eq!(set.encode(), expected);
    }

    #[test]
    fn refuses_damaged_bytes() {
        let good = zset(&[(1.0, "a"), (2.0, "b")]).encode();
        for cut in 0..good.len() {
            assert!(SortedSet::decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        // Out of order, a NaN, a negative zero, a short score.
        let mut swapped = vec![2, 0, 0, 0];
        for (member, value) in [("b", 2.0f64), ("a", 1.0)] {
            swapped.extend_from_slice(&[1, 0, 0, 0]);
            swapped.extend_from_slice(member.as_bytes());
            swapped.extend_from_slice(&[8, 0, 0, 0]);
            swapped.extend_from_slice(&value.to_le_bytes());
        }
        assert_eq!(SortedSet::decode(&swapped), Err("members out of order"));
        for bad in [f64::NAN, -0.0] {
            let mut bytes = vec![1, 0, 0, 0, 1, 0, 0, 0, b'a', 8, 0, 0, 0];
            bytes.extend_from_slice(&bad.to_le_bytes());
            assert!(SortedSet::decode(&bytes).is_err());
        }
        assert!(SortedSet::decode(&[1, 0, 0, 0, 1, 0, 0, 0, b'a', 1, 0, 0, 0, 7]).is_err());
    }

    #[test]
    fn zadd_options_follow_redis() {
        let options = |f: fn(&mut ZAddOptions)| {
            let mut o = ZAddOptions::default();
            f(&mut o);
            o
        };
        let add = |set: &mut SortedSet, value: f64, member: &str, o: ZAddOptions| {
            set.add_all(&[(score(value), member.as_bytes().to_vec())], o)
                .unwrap()
                .0
        };
        let mut set = zset(&[(5.0, "a")]);
        assert_eq!(
            add(&mut set, 1.0, "b", options(|o| o.only_existing = true)),
            Output::Count(0)
        );
        assert_eq!(
            add(&mut set, 1.0, "a", options(|o| o.only_new = true)),
            Output::Count(0)
        );
        assert_eq!(
            add(&mut set, 9.0, "a", options(|o| o.less = true)),
            Output::Count(0)
        );
        assert_eq!(set.score(b"a"), Some(5.0));
        assert_eq!(
            add(
                &mut set,
                9.0,
                "a",
                options(|o| {
                    o.greater = true;
                    o.changed = true;
                })
            ),
            Output::Count(1)
        );
        assert_eq!(
            add(&mut set, 1.0, "a", options(|o| o.incr = true)),
            Output::Score(Some(score(10.0)))
        );
        assert_eq!(
            add(
                &mut set,
                -1.0,
                "a",
                options(|o| {
                    o.incr = true;
                    o.greater = true;
                })
            ),
            Output::Score(None)
        );
        assert_eq!(
            add(&mut set, 3.0, "new", options(|o| o.incr = true)),
            Output::Score(Some(score(3.0)))
        );
        let mut infinite = zset(&[(f64::INFINITY, "a")]);
        let entry = [(score(f64::NEG_INFINITY), b"a".to_vec())];
        assert_eq!(
            infinite.add_all(&entry, options(|o| o.incr = true)),
            Err(NotANumber)
        );
        assert_eq!(infinite.score(b"a"), Some(f64::INFINITY));
    }

    #[test]
    fn ranges_follow_redis() {
        let set = zset(&[(1.0, "a"), (2.0, "b"), (2.0, "c"), (3.0, "d")]);
        let names = |picked: Vec<(Vec<u8>, Score)>| {
            picked
                .into_iter()
                .map(|(m, _)| String::from_utf8(m).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(set.range(&by_rank(0, -1, false))),
            ["a", "b", "c", "d"]
        );
        assert_eq!(names(set.range(&by_rank(0, 1, true))), ["d", "c"]);
        let bound = |value: f64, exclusive| ScoreBound {
            score: score(value),
            exclusive,
        };
        let by_score = |min, max, rev, limit| ZRange {
            by: ZRangeBy::Score { min, max },
            rev,
            limit,
        };
        assert_eq!(
            names(set.range(&by_score(bound(2.0, false), bound(3.0, true), false, None))),
            ["b", "c"]
        );
        assert_eq!(
            names(set.range(&by_score(
                bound(1.0, true),
                bound(f64::INFINITY, false),
                true,
                Some((1, 1))
            ))),
            ["c"]
        );
        assert!(
            set.range(&by_score(bound(2.0, true), bound(2.0, false), false, None))
                .is_empty()
        );
        assert!(
            set.range(&by_score(
                bound(0.0, false),
                bound(9.0, false),
                false,
                Some((-1, 2))
            ))
            .is_empty()
        );
        let lex = |min, max, rev| ZRange {
            by: ZRangeBy::Lex { min, max },
            rev,
            limit: None,
        };
        let same = zset(&[(0.0, "a"), (0.0, "b"), (0.0, "c")]);
        assert_eq!(
            names(same.range(&lex(
                LexBound::Exclusive(b"a".to_vec()),
                LexBound::Max,
                false
            ))),
            ["b", "c"]
        );
        assert_eq!(
            names(same.range(&lex(
                LexBound::Min,
                LexBound::Inclusive(b"b".to_vec()),
                true
            ))),
            ["b", "a"]
        );
        assert!(
            same.range(&lex(LexBound::Max, LexBound::Min, false))
                .is_empty()
        );
    }

    #[test]
    fn pops_and_removals() {
        let mut set = zset(&[(1.0, "a"), (2.0, "b"), (3.0, "c"), (4.0, "d")]);
        assert_eq!(
            set.pop(2, true),
            [(b"d".to_vec(), score(4.0)), (b"c".to_vec(), score(3.0))]
        );
        assert_eq!(set.pop(1, false), [(b"a".to_vec(), score(1.0))]);
        assert_eq!(set.pop(9, false).len(), 1);
        assert!(set.is_empty());
        let mut set = zset(&[(1.0, "a"), (2.0, "b"), (3.0, "c")]);
        assert_eq!(
            set.remove_range(&ZRangeBy::Rank {
                start: -2,
                stop: -1
            }),
            2
        );
        assert_eq!(
            set.remove_all(&[b"a".to_vec(), b"a".to_vec(), b"x".to_vec()]),
            1
        );
        assert!(set.is_empty());
    }

    #[test]
    fn scores_read_and_write_as_redis_does() {
        for (text, value) in [
            ("1", 1.0),
            ("-2.5", -2.5),
            ("+3", 3.0),
            (".5", 0.5),
            ("5.", 5.0),
            ("1e3", 1000.0),
            ("inf", f64::INFINITY),
            ("-Infinity", f64::NEG_INFINITY),
            ("+inf", f64::INFINITY),
            ("0e500", 0.0),
            ("-0", 0.0),
        ] {
            assert_eq!(
                parse_score(text.as_bytes()).map(Score::get),
                Some(value),
                "{text}"
            );
        }
        for bad in [
            "", " 1", "1 ", "nan", "1e400", "-1e400", "1e-400", "abc", "0x10", "1,5",
        ] {
            assert_eq!(parse_score(bad.as_bytes()), None, "{bad}");
        }
        for (value, text) in [
            (1.0, "1"),
            (-2.5, "-2.5"),
            (0.1, "0.1"),
            (1.1, "1.1"),
            (100.0, "100"),
            (1e16, "10000000000000000"),
            (1e17, "1e+17"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (2.5e-300, "2.5e-300"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (0.0, "0"),
        ] {
            assert_eq!(format_score(value), text);
        }
        assert_eq!(
            parse_score_bound(b"(1.5"),
            Some(ScoreBound {
                score: score(1.5),
                exclusive: true
            })
        );
        assert_eq!(
            parse_score_bound(b"1e400").map(|b| b.score.get()),
            Some(f64::INFINITY)
        );
        assert_eq!(parse_score_bound(b"").map(|b| b.score.get()), Some(0.0));
        assert_eq!(parse_score_bound(b"(nan"), None);
        assert_eq!(parse_score_bound(b"x"), None);
        assert_eq!(
            parse_lex_bound(b"[a"),
            Some(LexBound::Inclusive(b"a".to_vec()))
        );
        assert_eq!(parse_lex_bound(b"a"), None);
        assert_eq!(parse_lex_bound(b"+x"), None);
    }

    #[test]
    fn combinations_follow_redis() {
        let a = Some(zset(&[(1.0, "x"), (2.0, "y"), (f64::INFINITY, "z")]));
        let b = Some(zset(&[(10.0, "y"), (f64::NEG_INFINITY, "z"), (5.0, "w")]));
        let all = |set: SortedSet| members(&set);
        let both = [a.clone(), b.clone()];
        assert_eq!(
            all(combine(SetOp::Union, &both, &[], Aggregate::Sum)),
            [
                ("z".to_owned(), 0.0),
                ("x".to_owned(), 1.0),
                ("w".to_owned(), 5.0),
                ("y".to_owned(), 12.0)
            ]
        );
        assert_eq!(
            all(combine(
                SetOp::Inter,
                &both,
                &[score(2.0), score(0.0)],
                Aggregate::Max
            )),
            [("y".to_owned(), 4.0), ("z".to_owned(), f64::INFINITY)]
        );
        assert_eq!(
            all(combine(SetOp::Inter, &both, &[], Aggregate::Min)),
            [("z".to_owned(), f64::NEG_INFINITY), ("y".to_owned(), 2.0)]
        );
        assert_eq!(
            all(combine(SetOp::Diff, &both, &[], Aggregate::Sum)),
            [("x".to_owned(), 1.0)]
        );
        // An infinity times 0 is 0.
        assert_eq!(
            all(combine(
                SetOp::Union,
                std::slice::from_ref(&a),
                &[score(0.0)],
                Aggregate::Sum
            )),
            [
                ("x".to_owned(), 0.0),
                ("y".to_owned(), 0.0),
                ("z".to_owned(), 0.0)
            ]
        );
        assert!(combine(SetOp::Inter, &[a, None], &[], Aggregate::Sum).is_empty());
        let set = SortedSet::of_members([b"q".as_slice(), b"p"].into_iter());
        assert_eq!(all(set), [("p".to_owned(), 1.0), ("q".to_owned(), 1.0)]);
    }

    #[test]
    fn a_limit_by_member_skips_before_it_checks_the_range() {
        // Members of different scores: out of byte order.
        let set = zset(&[
            (-1.0, "1"),
            (-1.0, "b"),
            (0.5, ""),
            (0.5, "a"),
            (1.0, "c"),
            (2.5, "22"),
        ]);
        let range = ZRange {
            by: ZRangeBy::Lex {
                min: LexBound::Exclusive(Vec::new()),
                max: LexBound::Inclusive(b"b".to_vec()),
            },
            rev: false,
            limit: Some((5, 1)),
        };
        assert_eq!(set.range(&range), [(b"22".to_vec(), score(2.5))]);
    }

    fn entries() -> impl Strategy<Value = Vec<(i8, Vec<u8>)>> {
        prop::collection::vec((-3i8..4, prop::collection::vec(0u8..4, 0..3)), 0..30)
    }

    proptest! {
        /// Adds, removals and pops keep the order and match a plain model.
        #[test]
        fn writes_match_a_model(
            adds in entries(),
            removals in prop::collection::vec(prop::collection::vec(0u8..4, 0..3), 0..20),
            popped in 0u64..4,
            max in any::<bool>(),
        ) {
            let mut set = SortedSet::default();
            let mut model: Vec<(f64, Vec<u8>)> = Vec::new();
            let entries: Vec<(Score, Vec<u8>)> =
                adds.iter().map(|(s, m)| (score(f64::from(*s)), m.clone())).collect();
            set.add_all(&entries, ZAddOptions::default()).unwrap();
            for (s, m) in &entries {
                model.retain(|(_, n)| n != m);
                model.push((s.get(), m.clone()));
            }
            let before = model.len();
            model.retain(|(_, m)| !removals.contains(m));
            prop_assert_eq!(set.remove_all(&removals), before - model.len());
            model.sort_by(|a, b| order(a.0, &a.1, b.0, &b.1));
            let taken = (popped as usize).min(model.len());
            let mut expected: Vec<(Vec<u8>, Score)> = if max {
                model.drain(model.len() - taken..).rev().map(|(s, m)| (m, score(s))).collect()
            } else {
                model.drain(..taken).map(|(s, m)| (m, score(s))).collect()
            };
            prop_assert_eq!(set.pop(popped, max), std::mem::take(&mut expected));
            let items: Vec<(Vec<u8>, f64)> = set.iter().map(|(m, s)| (m.to_vec(), s)).collect();
            let model: Vec<(Vec<u8>, f64)> = model.into_iter().map(|(s, m)| (m, s)).collect();
            prop_assert_eq!(items, model);
            prop_assert_eq!(SortedSet::decode(&set.encode()), Ok(set));
        }

        /// The edits made in the stored bytes give what decoding, editing and encoding
        /// give.
        #[test]
        fn edits_in_place_match_decoding(
            start in entries(),
            added in -3i8..4,
            infinite in any::<bool>(),
            member in prop::collection::vec(0u8..4, 0..3),
            flags in (0u8..3, 0u8..3, any::<bool>(), any::<bool>()),
            popped in 0u64..5,
            max in any::<bool>(),
        ) {
            let mut set = SortedSet::default();
            let entries: Vec<(Score, Vec<u8>)> =
                start.iter().map(|(s, m)| (score(f64::from(*s)), m.clone())).collect();
            set.add_all(&entries, ZAddOptions::default()).unwrap();
            let (only, compare, changed, incr) = flags;
            let options = ZAddOptions {
                only_new: only == 1 && compare == 0,
                only_existing: only == 2,
                greater: compare == 1,
                less: compare == 2,
                changed,
                incr,
            };
            let added = match added.signum() {
                1 if infinite => f64::INFINITY,
                -1 if infinite => f64::NEG_INFINITY,
                _ => f64::from(added),
            };
            let added = score(added);
            let encoded = (!set.is_empty()).then(|| set.encode());
            let mut decoded = set.clone();
            let expected = decoded.add_all(&[(added, member.clone())], options);
            let got = stored::add_one(encoded.as_deref(), added, &member, options).unwrap();
            match (expected, got) {
                (Err(NotANumber), Err(NotANumber)) => {}
                (Ok((output, changed)), Ok((edited, in_place))) => {
                    prop_assert_eq!(&output, &in_place);
                    match edited {
                        stored::Edited::Unchanged => prop_assert!(!changed),
                        stored::Edited::Stored(bytes) => {
                            prop_assert!(changed);
                            prop_assert_eq!(bytes, Some(decoded.encode()));
                        }
                    }
                }
                (expected, got) => prop_assert!(false, "{:?} against {:?}", expected, got.map(|(_, o)| o)),
            }
            if let Some(encoded) = &encoded {
                let mut decoded = set.clone();
                let removed = decoded.remove_all(std::slice::from_ref(&member));
                match stored::remove_one(encoded, &member).unwrap() {
                    stored::Edited::Unchanged => prop_assert_eq!(removed, 0),
                    stored::Edited::Stored(bytes) => {
                        prop_assert_eq!(removed, 1);
                        prop_assert_eq!(bytes, (!decoded.is_empty()).then(|| decoded.encode()));
                    }
                }
                let mut decoded = set.clone();
                let taken = decoded.pop(popped, max);
                let (edited, in_place) = stored::pop(encoded, popped, max).unwrap();
                prop_assert_eq!(&in_place, &taken);
                match edited {
                    stored::Edited::Unchanged => prop_assert!(taken.is_empty()),
                    stored::Edited::Stored(bytes) => {
                        prop_assert_eq!(bytes, (!decoded.is_empty()).then(|| decoded.encode()));
                    }
                }
            }
        }

        /// A score range picks exactly the members whose scores are in it.
        #[test]
        fn score_ranges_match_a_filter(
            adds in entries(),
            min in -4i8..5, max in -4i8..5,
            min_ex in any::<bool>(), max_ex in any::<bool>(),
        ) {
            let set = {
                let entries: Vec<(Score, Vec<u8>)> =
                    adds.iter().map(|(s, m)| (score(f64::from(*s)), m.clone())).collect();
                let mut set = SortedSet::default();
                set.add_all(&entries, ZAddOptions::default()).unwrap();
                set
            };
            let min = ScoreBound { score: score(f64::from(min)), exclusive: min_ex };
            let max = ScoreBound { score: score(f64::from(max)), exclusive: max_ex };
            let picked = set.range(&ZRange { by: ZRangeBy::Score { min, max }, rev: false, limit: None });
            let expected: Vec<(Vec<u8>, Score)> = set
                .iter()
                .filter(|(_, s)| above_min(*s, min) && below_max(*s, max))
                .map(|(m, s)| (m.to_vec(), score(s)))
                .collect();
            prop_assert_eq!(picked, expected);
        }

        /// Every score written reads back as the same double.
        #[test]
        fn formatted_scores_read_back(bits in any::<u64>()) {
            let value = f64::from_bits(bits);
            if let Some(s) = Score::new(value) {
                let text = format_score(s.get());
                prop_assert_eq!(parse_score(text.as_bytes()).map(Score::get), Some(s.get()), "{}", text);
            }
        }

        #[test]
        fn decoding_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(set) = SortedSet::decode(&bytes) {
                prop_assert_eq!(set.encode(), bytes);
            }
        }
    }
}
