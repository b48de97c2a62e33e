//! Streams: entries of fields and values under increasing IDs, kept as one stored value.
//!
//! A stream is encoded as (all integers little-endian)
//!
//! ```text
//! last_id (ms u64 | seq u64) | entries_added u64 | max_deleted_id (ms u64 | seq u64)
//! | count u32 | entry * count
//! entry: id (ms u64 | seq u64) | strings u32 | (len u32 | bytes) * strings
//! ```
//!
//! where an entry's strings are its fields and values, one after the other. IDs
//! increase from entry to entry and none passes the last ID the stream gave, which
//! stays when entries go: an ID is never given twice. Unlike the other collections, a
//! stream left without entries (by `XDEL`, `XTRIM` or `MAXLEN 0`) stays, as in Redis.
//!
//! As with the other collections, a write copies the whole stored value; an `XADD`
//! does not decode the entries already there, only walks their headers. So streams suit
//! up to some thousands of entries: an event log capped with `MAXLEN`.
//!
//! Trimming is exact: `~` trims as `=` does, to the threshold, where Redis stops at the
//! edge of one of its internal nodes and may leave more entries.

use std::ops::Range;

use crate::command::{NewId, Output, StreamEntry, StreamId, StreamRead, Trim, TrimBy};
use crate::packed::{put_bytes, take_bytes, take_u32, u32_len};

/// The bytes in front of the entries.
const HEAD_BYTES: usize = 16 + 8 + 16 + 4;

/// The stream's own data besides its entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Meta {
    /// The last ID given to an entry (0-0 before the first).
    pub(crate) last_id: StreamId,
    /// How many entries were ever added.
    pub(crate) entries_added: u64,
    /// The highest ID `XDEL` removed.
    pub(crate) max_deleted_id: StreamId,
}

/// A stored stream, its entries found but not decoded.
#[derive(Debug)]
pub(crate) struct Stored<'a> {
    pub(crate) meta: Meta,
    bytes: &'a [u8],
    /// Each entry's ID and where its encoding lies in `bytes`.
    entries: Vec<(StreamId, Range<usize>)>,
}

fn take_u64(rest: &mut &[u8]) -> Option<u64> {
    let (head, tail) = rest.split_first_chunk::<8>()?;
    *rest = tail;
    Some(u64::from_le_bytes(*head))
}

fn take_id(rest: &mut &[u8]) -> Option<StreamId> {
    Some(StreamId {
        ms: take_u64(rest)?,
        seq: take_u64(rest)?,
    })
}

fn put_id(out: &mut Vec<u8>, id: StreamId) {
    out.extend_from_slice(&id.ms.to_le_bytes());
    out.extend_from_slice(&id.seq.to_le_bytes());
}

impl<'a> Stored<'a> {
    /// Finds the entries of an encoded stream, checking every length, that IDs increase
    /// and stay within the last ID, and that each entry has fields and values in pairs.
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self, &'static str> {
        let mut rest = bytes;
        let cut = "stream shorter than its header";
        let last_id = take_id(&mut rest).ok_or(cut)?;
        let entries_added = take_u64(&mut rest).ok_or(cut)?;
        let max_deleted_id = take_id(&mut rest).ok_or(cut)?;
        let count = take_u32(&mut rest).ok_or(cut)? as usize;
        // An entry takes at least its ID and one field and value: a count past that is
        // corrupt, and must not size an allocation.
        if count > rest.len() / 28 {
            return Err("stream entry count larger than its bytes allow");
        }
        let mut entries = Vec::with_capacity(count);
        let mut previous = None;
        for _ in 0..count {
            let start = bytes.len() - rest.len();
            let id = take_id(&mut rest).ok_or("stream entry cut short")?;
            if previous.is_some_and(|p| p >= id) || id > last_id || id == StreamId::MIN {
                return Err("stream entry IDs out of order");
            }
            previous = Some(id);
            let strings = take_u32(&mut rest).ok_or("stream entry cut short")?;
            if strings == 0 || strings % 2 != 0 {
                return Err("stream entry without fields, or a field without a value");
            }
            for _ in 0..strings {
                take_bytes(&mut rest).ok_or("stream entry cut short")?;
            }
            entries.push((id, start..bytes.len() - rest.len()));
        }
        if !rest.is_empty() {
            return Err("bytes after the last stream entry");
        }
        Ok(Self {
            meta: Meta {
                last_id,
                entries_added,
                max_deleted_id,
            },
            bytes,
            entries,
        })
    }

    /// How many entries it holds.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The entry at `at`, decoded.
    fn entry(&self, at: usize) -> StreamEntry {
        let (id, span) = &self.entries[at];
        let mut rest = &self.bytes[span.start + 16..span.end];
        let strings = take_u32(&mut rest).expect("checked by parse");
        let fields = (0..strings)
            .map(|_| take_bytes(&mut rest).expect("checked by parse").to_vec())
            .collect();
        StreamEntry { id: *id, fields }
    }

    /// Where the entries of IDs from `start` to `end` (both included) lie.
    fn between(&self, start: StreamId, end: StreamId) -> Range<usize> {
        let from = self.entries.partition_point(|(id, _)| *id < start);
        let to = self.entries.partition_point(|(id, _)| *id <= end);
        from..to.max(from)
    }

    /// The entries from `start` to `end`, from the lowest ID (or with `rev` the
    /// highest), at most `count`.
    pub(crate) fn range(
        &self,
        start: StreamId,
        end: StreamId,
        count: Option<u64>,
        rev: bool,
    ) -> Vec<StreamEntry> {
        let within = self.between(start, end);
        let count = count.map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
        if rev {
            within.rev().take(count).map(|at| self.entry(at)).collect()
        } else {
            within.take(count).map(|at| self.entry(at)).collect()
        }
    }

    /// The entries after `after`, at most `count` (0: all).
    pub(crate) fn after(&self, after: StreamId, count: u64) -> Vec<StreamEntry> {
        let Some(start) = after.next() else {
            return Vec::new();
        };
        let count = (count > 0).then_some(count);
        self.range(start, StreamId::MAX, count, false)
    }

    /// How many of the oldest entries `trim` removes.
    fn trimmed(&self, trim: &Trim) -> usize {
        let over = match trim.by {
            TrimBy::MaxLen(max) => self
                .len()
                .saturating_sub(usize::try_from(max).unwrap_or(usize::MAX)),
            TrimBy::MinId(min) => self.older_than(min),
        };
        limited(over, trim.limit)
    }

    /// How many entries have IDs below `min`.
    fn older_than(&self, min: StreamId) -> usize {
        self.entries.partition_point(|(id, _)| *id < min)
    }

    /// The encoding of `meta` with the entries at `kept`, in order, and `added` (one
    /// entry's encoding) after them.
    fn encode(
        &self,
        meta: Meta,
        kept: impl Iterator<Item = usize> + Clone,
        added: Option<&[u8]>,
    ) -> Vec<u8> {
        let body: usize = kept.clone().map(|at| self.entries[at].1.len()).sum();
        let count = kept.clone().count() + usize::from(added.is_some());
        let mut out = Vec::with_capacity(HEAD_BYTES + body + added.map_or(0, <[u8]>::len));
        put_head(&mut out, meta, count);
        // Runs of neighbouring entries are copied in one piece.
        let mut run: Option<Range<usize>> = None;
        for at in kept {
            let span = self.entries[at].1.clone();
            match &mut run {
                Some(r) if r.end == span.start => r.end = span.end,
                _ => {
                    if let Some(r) = run.replace(span) {
                        out.extend_from_slice(&self.bytes[r]);
                    }
                }
            }
        }
        if let Some(r) = run {
            out.extend_from_slice(&self.bytes[r]);
        }
        if let Some(added) = added {
            out.extend_from_slice(added);
        }
        out
    }
}

/// `over`, or at most `limit` of it unless that is 0.
fn limited(over: usize, limit: u64) -> usize {
    match limit {
        0 => over,
        limit => over.min(usize::try_from(limit).unwrap_or(usize::MAX)),
    }
}

fn put_head(out: &mut Vec<u8>, meta: Meta, count: usize) {
    put_id(out, meta.last_id);
    out.extend_from_slice(&meta.entries_added.to_le_bytes());
    put_id(out, meta.max_deleted_id);
    out.extend_from_slice(&u32_len(count).to_le_bytes());
}

/// Why `XADD` could not add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddRefused {
    /// The ID asked for does not follow the stream's last.
    TooSmall,
    /// The stream's last ID is the last there is.
    Exhausted,
}

/// The ID `id` gives an entry added at `now_ms` after `last`.
fn new_id(id: NewId, last: StreamId, now_ms: u64) -> Result<StreamId, AddRefused> {
    if last == StreamId::MAX {
        return Err(AddRefused::Exhausted);
    }
    let id = match id {
        NewId::Auto if now_ms > last.ms => StreamId { ms: now_ms, seq: 0 },
        NewId::Auto => last.next().ok_or(AddRefused::Exhausted)?,
        NewId::AutoSeq(ms) if ms == last.ms => StreamId {
            ms,
            seq: last.seq.checked_add(1).ok_or(AddRefused::TooSmall)?,
        },
        NewId::AutoSeq(ms) => StreamId { ms, seq: 0 },
        NewId::Exact(id) => id,
    };
    if id <= last {
        return Err(AddRefused::TooSmall);
    }
    Ok(id)
}

/// A stored stream's header: its [`Meta`] and how many entries follow.
fn head(bytes: &[u8]) -> Result<(Meta, usize), &'static str> {
    let mut rest = bytes;
    let cut = "stream shorter than its header";
    let meta = Meta {
        last_id: take_id(&mut rest).ok_or(cut)?,
        entries_added: take_u64(&mut rest).ok_or(cut)?,
        max_deleted_id: take_id(&mut rest).ok_or(cut)?,
    };
    Ok((meta, take_u32(&mut rest).ok_or(cut)? as usize))
}

/// `XADD` to the stream `stored` (a new one without): the new encoding and the ID
/// given, the stream trimmed by `trim` after the add; `Err` if `stored` is corrupt.
///
/// Unless the trim removes something, the entries already there are copied as they are,
/// without being read.
pub(crate) fn add(
    stored: Option<&[u8]>,
    id: NewId,
    fields: &[Vec<u8>],
    now_ms: u64,
    trim: Option<&Trim>,
) -> Result<Result<(Vec<u8>, StreamId), AddRefused>, &'static str> {
    debug_assert!(!fields.is_empty() && fields.len().is_multiple_of(2));
    let (meta, len) = match stored {
        Some(bytes) => head(bytes)?,
        None => (Meta::default(), 0),
    };
    let id = match new_id(id, meta.last_id, now_ms) {
        Ok(id) => id,
        Err(refused) => return Ok(Err(refused)),
    };
    let mut entry = Vec::with_capacity(20 + fields.iter().map(|f| 4 + f.len()).sum::<usize>());
    put_id(&mut entry, id);
    entry.extend_from_slice(&u32_len(fields.len()).to_le_bytes());
    for field in fields {
        put_bytes(&mut entry, field);
    }
    let meta = Meta {
        last_id: id,
        entries_added: meta.entries_added.saturating_add(1),
        ..meta
    };
    // The new entry counts in what a trim looks at, and is never older than the
    // entries already there. The entries are found only if the trim may remove some.
    let first_id = stored
        .filter(|_| len > 0)
        .and_then(|bytes| bytes.get(HEAD_BYTES..))
        .and_then(|mut rest| take_id(&mut rest));
    let may_trim = trim.is_some_and(|trim| match trim.by {
        TrimBy::MaxLen(max) => (len as u64) >= max,
        TrimBy::MinId(min) => id < min || first_id.is_some_and(|first| first < min),
    });
    let (Some(trim), true) = (trim, may_trim) else {
        let mut out = Vec::with_capacity(
            HEAD_BYTES + stored.map_or(0, |b| b.len() - HEAD_BYTES) + entry.len(),
        );
        put_head(&mut out, meta, len + 1);
        if let Some(bytes) = stored {
            out.extend_from_slice(&bytes[HEAD_BYTES..]);
        }
        out.extend_from_slice(&entry);
        return Ok(Ok((out, id)));
    };
    let empty = Stored {
        meta: Meta::default(),
        bytes: &[],
        entries: Vec::new(),
    };
    let parsed = stored.map(Stored::parse).transpose()?;
    let stream = parsed.as_ref().unwrap_or(&empty);
    let over = match trim.by {
        TrimBy::MaxLen(max) => (len + 1).saturating_sub(usize::try_from(max).unwrap_or(usize::MAX)),
        TrimBy::MinId(min) => stream.older_than(min) + usize::from(id < min),
    };
    let trimmed = limited(over, trim.limit);
    let encoded = if trimmed > len {
        // The new entry goes too.
        stream.encode(meta, 0..0, None)
    } else {
        stream.encode(meta, trimmed..len, Some(&entry))
    };
    Ok(Ok((encoded, id)))
}

/// `XTRIM`: the new encoding, unless nothing goes, and how many entries went.
pub(crate) fn trim(stream: &Stored<'_>, trim: &Trim) -> (Option<Vec<u8>>, u64) {
    let gone = stream.trimmed(trim);
    if gone == 0 {
        return (None, 0);
    }
    let encoded = stream.encode(stream.meta, gone..stream.len(), None);
    (Some(encoded), gone as u64)
}

/// `XDEL`: the new encoding, unless nothing goes, and how many entries went.
pub(crate) fn delete(stream: &Stored<'_>, ids: &[StreamId]) -> (Option<Vec<u8>>, u64) {
    let mut doomed: Vec<usize> = ids
        .iter()
        .filter_map(|id| stream.entries.binary_search_by(|(at, _)| at.cmp(id)).ok())
        .collect();
    doomed.sort_unstable();
    doomed.dedup();
    let Some(&highest) = doomed.last() else {
        return (None, 0);
    };
    let meta = Meta {
        max_deleted_id: stream.meta.max_deleted_id.max(stream.entries[highest].0),
        ..stream.meta
    };
    let kept = (0..stream.len()).filter(|at| doomed.binary_search(at).is_err());
    (Some(stream.encode(meta, kept, None)), doomed.len() as u64)
}

/// The answer to `read` for `stream` (`None` without one).
#[must_use]
pub(crate) fn answer(read: &StreamRead, stream: Option<&Stored<'_>>) -> Output {
    match read {
        StreamRead::Len => Output::Count(stream.map_or(0, |s| s.len() as u64)),
        // A stream there, asked for no entries, answers no array at all (Redis looks
        // the key up first, so a missing one answers an empty array).
        StreamRead::Range { count: Some(0), .. } if stream.is_some() => Output::Entries(None),
        StreamRead::Range {
            start,
            end,
            count,
            rev,
        } => Output::Entries(Some(
            stream.map_or_else(Vec::new, |s| s.range(*start, *end, *count, *rev)),
        )),
        StreamRead::LastId => Output::StreamId(stream.map(|s| s.meta.last_id)),
    }
}

/// Reads a number as Redis's `string2ull` does: a canonical 64-bit integer that is
/// not negative, or else what C's `strtoull` takes whole (leading spaces, a sign,
/// leading zeros; a `-` wraps around, as `strtoull` does).
fn parse_u64(bytes: &[u8]) -> Option<u64> {
    if let Some(n) = crate::command::parse_integer(bytes) {
        return u64::try_from(n).ok();
    }
    let start = bytes
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))?;
    let (negative, digits) = match &bytes[start..] {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        rest => (false, rest),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = digits.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })?;
    Some(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}

/// An ID argument, as Redis reads one: `ms-seq`, or `ms` with `missing_seq`; unless
/// `strict`, `-` and `+` for the lowest and highest IDs. With `star`, `ms-*` too,
/// answered as `Err(ms)`.
fn parse_any(
    arg: &[u8],
    missing_seq: u64,
    strict: bool,
    star: bool,
) -> Option<Result<StreamId, u64>> {
    // Redis copies the argument into a 128-byte buffer first.
    if arg.len() > 127 {
        return None;
    }
    match arg {
        b"-" | b"+" if strict => return None,
        b"-" => return Some(Ok(StreamId::MIN)),
        b"+" => return Some(Ok(StreamId::MAX)),
        _ => {}
    }
    let Some(dash) = arg.iter().position(|&b| b == b'-') else {
        let ms = parse_u64(arg)?;
        return Some(Ok(StreamId {
            ms,
            seq: missing_seq,
        }));
    };
    let ms = parse_u64(&arg[..dash])?;
    let seq = &arg[dash + 1..];
    if star && seq == b"*" {
        return Some(Err(ms));
    }
    Some(Ok(StreamId {
        ms,
        seq: parse_u64(seq)?,
    }))
}

/// An ID argument where `-` and `+` are refused (`XDEL`, `XREAD`, `MINID`): `ms-seq`,
/// or `ms` for `ms-0`.
#[must_use]
pub(crate) fn parse_id(arg: &[u8]) -> Option<StreamId> {
    parse_any(arg, 0, true, false)?.ok()
}

/// `XADD`'s ID argument other than `*`: `ms-seq`, `ms` for `ms-0`, or `ms-*`.
#[must_use]
pub(crate) fn parse_new_id(arg: &[u8]) -> Option<NewId> {
    Some(match parse_any(arg, 0, true, true)? {
        Ok(id) => NewId::Exact(id),
        Err(ms) => NewId::AutoSeq(ms),
    })
}

/// Why a range bound was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadBound {
    /// Not an ID.
    Invalid,
    /// An exclusive bound with nothing beyond it (`(` before the highest or lowest ID).
    Beyond,
}

/// An `XRANGE` bound: an ID, `-` or `+`, `ms` (the start of those milliseconds, or with
/// `end` their end), or `(` and an ID for the ID after it (before it, with `end`).
pub(crate) fn parse_bound(arg: &[u8], end: bool) -> Result<StreamId, BadBound> {
    let missing_seq = if end { u64::MAX } else { 0 };
    match arg {
        [b'(', rest @ ..] if !rest.is_empty() => {
            let id = parse_any(rest, missing_seq, true, false)
                .and_then(Result::ok)
                .ok_or(BadBound::Invalid)?;
            if end { id.prev() } else { id.next() }.ok_or(BadBound::Beyond)
        }
        _ => parse_any(arg, missing_seq, false, false)
            .and_then(Result::ok)
            .ok_or(BadBound::Invalid),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn id(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    fn fields(n: usize) -> Vec<Vec<u8>> {
        (0..n * 2).map(|i| format!("f{i}").into_bytes()).collect()
    }

    /// The stream made by adding an entry at each of `ids` in turn.
    fn made(ids: &[StreamId]) -> Vec<u8> {
        let mut bytes: Option<Vec<u8>> = None;
        for (n, at) in ids.iter().enumerate() {
            let (next, given) = add(
                bytes.as_deref(),
                NewId::Exact(*at),
                &fields(n % 3 + 1),
                0,
                None,
            )
            .unwrap()
            .unwrap();
            assert_eq!(given, *at);
            Stored::parse(&next).unwrap();
            bytes = Some(next);
        }
        bytes.unwrap()
    }

    fn ids_of(bytes: &[u8]) -> Vec<StreamId> {
        let stored = Stored::parse(bytes).unwrap();
        stored
            .range(StreamId::MIN, StreamId::MAX, None, false)
            .iter()
            .map(|e| e.id)
            .collect()
    }

    #[test]
    fn ids_parse_as_redis_parses_them() {
        assert_eq!(parse_id(b"5-3"), Some(id(5, 3)));
        assert_eq!(parse_id(b"5"), Some(id(5, 0)));
        assert_eq!(parse_id(b"-"), None);
        assert_eq!(parse_id(b"+"), None);
        assert_eq!(parse_id(b"007-1"), Some(id(7, 1)));
        assert_eq!(parse_id(b" 7"), Some(id(7, 0)));
        assert_eq!(parse_id(b"+7"), Some(id(7, 0)));
        assert_eq!(parse_id(b"-1"), None);
        assert_eq!(parse_id(b"1-"), None);
        assert_eq!(parse_id(b"1-x"), None);
        assert_eq!(parse_id(b"1-2-3"), None);
        assert_eq!(parse_id(b""), None);
        assert_eq!(
            parse_id(b"18446744073709551615-18446744073709551615"),
            Some(StreamId::MAX)
        );
        assert_eq!(parse_id(b"18446744073709551616"), None);
        assert_eq!(parse_id(&[b'1'; 128]), None);
        assert_eq!(parse_new_id(b"5-*"), Some(NewId::AutoSeq(5)));
        assert_eq!(parse_new_id(b"5"), Some(NewId::Exact(id(5, 0))));
        assert_eq!(parse_new_id(b"*"), None);
        assert_eq!(parse_bound(b"-", false), Ok(StreamId::MIN));
        assert_eq!(parse_bound(b"+", true), Ok(StreamId::MAX));
        assert_eq!(parse_bound(b"5", false), Ok(id(5, 0)));
        assert_eq!(parse_bound(b"5", true), Ok(id(5, u64::MAX)));
        assert_eq!(parse_bound(b"(5-3", false), Ok(id(5, 4)));
        assert_eq!(parse_bound(b"(5", true), Ok(id(5, u64::MAX - 1)));
        assert_eq!(parse_bound(b"(0-0", true), Err(BadBound::Beyond));
        assert_eq!(parse_bound(b"(-", false), Err(BadBound::Invalid));
        assert_eq!(parse_bound(b"(", false), Err(BadBound::Invalid));
    }

    #[test]
    fn new_ids_follow_the_last() {
        let last = id(10, 4);
        assert_eq!(new_id(NewId::Auto, last, 20), Ok(id(20, 0)));
        assert_eq!(new_id(NewId::Auto, last, 10), Ok(id(10, 5)));
        assert_eq!(new_id(NewId::Auto, last, 3), Ok(id(10, 5)));
        assert_eq!(new_id(NewId::AutoSeq(10), last, 0), Ok(id(10, 5)));
        assert_eq!(new_id(NewId::AutoSeq(11), last, 0), Ok(id(11, 0)));
        assert_eq!(
            new_id(NewId::AutoSeq(9), last, 0),
            Err(AddRefused::TooSmall)
        );
        assert_eq!(
            new_id(NewId::Exact(last), last, 0),
            Err(AddRefused::TooSmall)
        );
        assert_eq!(new_id(NewId::AutoSeq(0), StreamId::MIN, 0), Ok(id(0, 1)));
        assert_eq!(
            new_id(NewId::AutoSeq(3), id(3, u64::MAX), 0),
            Err(AddRefused::TooSmall)
        );
        assert_eq!(new_id(NewId::Auto, id(3, u64::MAX), 0), Ok(id(4, 0)));
        assert_eq!(
            new_id(NewId::Auto, StreamId::MAX, 0),
            Err(AddRefused::Exhausted)
        );
    }

    #[test]
    fn adds_trim_and_deletes_keep_the_last_id() {
        let bytes = made(&[id(1, 0), id(2, 0), id(3, 0), id(4, 0)]);
        let stored = Stored::parse(&bytes).unwrap();
        let maxlen = |max, limit| Trim {
            by: TrimBy::MaxLen(max),
            limit,
        };
        let (trimmed, gone) = trim(&stored, &maxlen(2, 0));
        assert_eq!(gone, 2);
        assert_eq!(ids_of(trimmed.as_deref().unwrap()), [id(3, 0), id(4, 0)]);
        assert_eq!(trim(&stored, &maxlen(2, 1)).1, 1);
        assert_eq!(trim(&stored, &maxlen(9, 0)), (None, 0));
        let by_id = Trim {
            by: TrimBy::MinId(id(3, 0)),
            limit: 0,
        };
        assert_eq!(trim(&stored, &by_id).1, 2);

        let (deleted, gone) = delete(&stored, &[id(4, 0), id(9, 9), id(4, 0), id(2, 0)]);
        assert_eq!(gone, 2);
        let deleted = deleted.unwrap();
        assert_eq!(ids_of(&deleted), [id(1, 0), id(3, 0)]);
        let after = Stored::parse(&deleted).unwrap();
        assert_eq!(after.meta.last_id, id(4, 0));
        assert_eq!(after.meta.max_deleted_id, id(4, 0));
        assert_eq!(after.meta.entries_added, 4);
        // The last ID stays though its entry went.
        assert_eq!(
            add(Some(&deleted), NewId::Exact(id(4, 0)), &fields(1), 0, None),
            Ok(Err(AddRefused::TooSmall))
        );

        // MAXLEN 0 keeps an empty stream, which remembers its last ID.
        let (empty, given) = add(
            Some(&bytes),
            NewId::AutoSeq(5),
            &fields(1),
            0,
            Some(&maxlen(0, 0)),
        )
        .unwrap()
        .unwrap();
        assert_eq!(given, id(5, 0));
        let empty = Stored::parse(&empty).unwrap();
        assert_eq!(empty.len(), 0);
        assert_eq!(empty.meta.last_id, id(5, 0));
        assert_eq!(empty.meta.entries_added, 5);
    }

    #[test]
    fn reads_pick_by_id() {
        let bytes = made(&[id(1, 0), id(1, 1), id(2, 0), id(5, 7)]);
        let stored = Stored::parse(&bytes).unwrap();
        let ids = |entries: Vec<StreamEntry>| entries.into_iter().map(|e| e.id).collect::<Vec<_>>();
        assert_eq!(
            ids(stored.range(id(1, 1), id(2, u64::MAX), None, false)),
            [id(1, 1), id(2, 0)]
        );
        assert_eq!(
            ids(stored.range(StreamId::MIN, StreamId::MAX, Some(2), true)),
            [id(5, 7), id(2, 0)]
        );
        assert_eq!(ids(stored.range(id(3, 0), id(1, 0), None, false)), []);
        assert_eq!(
            ids(stored.after(id(1, 0), 0)),
            [id(1, 1), id(2, 0), id(5, 7)]
        );
        assert_eq!(ids(stored.after(id(1, 0), 1)), [id(1, 1)]);
        assert_eq!(ids(stored.after(StreamId::MAX, 0)), []);
        let entry = &stored.range(id(1, 1), id(1, 1), None, false)[0];
        assert_eq!(entry.fields, fields(2));
    }

    #[test]
    fn damaged_streams_are_refused() {
        let bytes = made(&[id(1, 0), id(2, 0)]);
        for cut in 0..bytes.len() {
            assert!(Stored::parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut later = bytes.clone();
        // The last ID before the entries' own.
        later[..8].copy_from_slice(&1u64.to_le_bytes());
        assert!(Stored::parse(&later).is_err());
        let mut huge = bytes;
        huge[HEAD_BYTES - 4..HEAD_BYTES].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Stored::parse(&huge).is_err());
    }

    proptest! {
        /// Any sequence of adds, trims and deletes leaves a stream that parses, whose
        /// entries are those a plain model keeps.
        #[test]
        fn writes_match_a_model(ops in proptest::collection::vec((0u8..4, 0u64..6, 0u64..4), 1..40)) {
            let mut bytes: Option<Vec<u8>> = None;
            let mut model: Vec<StreamId> = Vec::new();
            let mut last = StreamId::MIN;
            for (op, a, b) in ops {
                let stored = bytes.as_deref().map(|b| Stored::parse(b).unwrap());
                match op {
                    0 | 1 => {
                        // By length with a limit of `b`, or from the ID `a + b`.
                        let by = if a % 2 == 0 { TrimBy::MaxLen(a) } else { TrimBy::MinId(StreamId { ms: a + b, seq: 0 }) };
                        let limit = if a % 2 == 0 { b } else { 0 };
                        let trim = (op == 1).then_some(Trim { by, limit });
                        match add(bytes.as_deref(), NewId::AutoSeq(a + last.ms / 2), &fields(1), 0, trim.as_ref()).unwrap() {
                            Ok((next, given)) => {
                                prop_assert!(given > last);
                                last = given;
                                model.push(given);
                                let over = match by {
                                    _ if trim.is_none() => 0,
                                    TrimBy::MaxLen(max) => model.len().saturating_sub(max as usize),
                                    TrimBy::MinId(min) => model.iter().filter(|id| **id < min).count(),
                                };
                                let gone = if limit == 0 { over } else { over.min(limit as usize) };
                                model.drain(..gone);
                                bytes = Some(next);
                            }
                            Err(refused) => prop_assert_eq!(refused, AddRefused::TooSmall),
                        }
                    }
                    2 => if let Some(stored) = &stored {
                        let min = StreamId { ms: a, seq: b };
                        let (next, gone) = trim(stored, &Trim { by: TrimBy::MinId(min), limit: 0 });
                        let before = model.len();
                        model.retain(|id| *id >= min);
                        prop_assert_eq!(gone as usize, before - model.len());
                        if let Some(next) = next { bytes = Some(next); }
                    },
                    _ => if let Some(stored) = &stored {
                        let doomed = StreamId { ms: a, seq: b };
                        let (next, gone) = delete(stored, &[doomed]);
                        let before = model.len();
                        model.retain(|id| *id != doomed);
                        prop_assert_eq!(gone as usize, before - model.len());
                        if let Some(next) = next { bytes = Some(next); }
                    },
                }
                if let Some(bytes) = &bytes {
                    let stored = Stored::parse(bytes).unwrap();
                    prop_assert_eq!(stored.meta.last_id, last);
                    prop_assert_eq!(ids_of(bytes), model.clone());
                }
            }
        }

        /// Parsing never panics, whatever the bytes.
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Stored::parse(&bytes);
        }
    }
}
