//! Streams: entries of fields and values under increasing IDs, and consumer groups,
//! kept as one stored value.
//!
//! A stream is encoded as (all integers little-endian)
//!
//! ```text
//! last_id (ms u64 | seq u64) | entries_added u64 | max_deleted_id (ms u64 | seq u64)
//! | groups_len u32 | groups (groups_len bytes) | count u32 | entry * count
//! entry: id (ms u64 | seq u64) | strings u32 | (len u32 | bytes) * strings
//! groups: count u32 | group * count, by name
//! group: name (len u32 | bytes) | last_delivered_id | consumers u32
//!        | (name (len u32 | bytes) | seen_ms u64) * consumers, by name
//!        | pending u32 | (id | consumer u32 | delivered_ms u64 | deliveries u64) * pending
//! ```
//!
//! where an entry's strings are its fields and values, one after the other, and a
//! pending entry names its consumer by its place among the group's consumers. IDs
//! increase from entry to entry (and from pending entry to pending entry) and none
//! passes the last ID the stream gave, which stays when entries go: an ID is never given
//! twice. Unlike the other collections, a stream left without entries (by `XDEL`,
//! `XTRIM` or `MAXLEN 0`) stays, as in Redis.
//!
//! As with the other collections, a write copies the whole stored value; an `XADD`
//! that trims nothing does not read the entries already there. So streams suit up to
//! some thousands of entries: an event log capped with `MAXLEN`, a work queue whose
//! consumers acknowledge what they read.
//!
//! Trimming is exact: `~` trims as `=` does, to the threshold, where Redis stops at the
//! edge of one of its internal nodes and may leave more entries.

use std::ops::Range;

use crate::command::{NewId, Output, StreamEntry, StreamId, StreamRead, Trim, TrimBy};
use crate::packed::{put_bytes, take_bytes, take_u32, u32_len};

/// The bytes of the header in front of the groups.
const META_BYTES: usize = 16 + 8 + 16;

/// The stream's own data besides its entries and groups.
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
    /// The encoded groups, copied as they are by writes that leave them.
    groups: &'a [u8],
    /// The same, decoded.
    decoded: Vec<Group>,
    /// Where the entries start in `bytes`.
    entries_at: usize,
    /// Each entry's ID and where its encoding lies in `bytes`.
    entries: Vec<(StreamId, Range<usize>)>,
}

/// A stream's header: its meta data, its encoded groups, how many entries follow and
/// where they start.
struct Head<'a> {
    meta: Meta,
    groups: &'a [u8],
    count: usize,
    entries_at: usize,
}

fn head(bytes: &[u8]) -> Result<Head<'_>, &'static str> {
    let mut rest = bytes;
    let cut = "stream shorter than its header";
    let meta = Meta {
        last_id: take_id(&mut rest).ok_or(cut)?,
        entries_added: take_u64(&mut rest).ok_or(cut)?,
        max_deleted_id: take_id(&mut rest).ok_or(cut)?,
    };
    let groups = take_bytes(&mut rest).ok_or(cut)?;
    let count = take_u32(&mut rest).ok_or(cut)? as usize;
    Ok(Head {
        meta,
        groups,
        count,
        entries_at: bytes.len() - rest.len(),
    })
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

fn put_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&n.to_le_bytes());
}

impl Stored<'static> {
    /// A new stream: no entries, no groups, no ID given yet.
    const EMPTY: Self = Self {
        meta: Meta {
            last_id: StreamId::MIN,
            entries_added: 0,
            max_deleted_id: StreamId::MIN,
        },
        bytes: &[],
        groups: &[],
        decoded: Vec::new(),
        entries_at: 0,
        entries: Vec::new(),
    };
}

impl<'a> Stored<'a> {
    /// Finds the entries of an encoded stream, checking every length, that IDs increase
    /// and stay within the last ID, and that each entry has fields and values in pairs.
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self, &'static str> {
        let Head {
            meta,
            groups,
            count,
            entries_at,
        } = head(bytes)?;
        let mut rest = &bytes[entries_at..];
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
            if previous.is_some_and(|p| p >= id) || id > meta.last_id || id == StreamId::MIN {
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
        let decoded = decode_groups(groups, meta.last_id)?;
        Ok(Self {
            meta,
            bytes,
            groups,
            decoded,
            entries_at,
            entries,
        })
    }

    /// The stream's consumer groups, by name.
    pub(crate) fn groups(&self) -> Vec<Group> {
        self.decoded.clone()
    }

    /// The same entries with `groups` as the stream's groups.
    pub(crate) fn with_groups(&self, groups: &[Group]) -> Vec<u8> {
        let groups = encode_groups(groups);
        let entries = &self.bytes[self.entries_at..];
        let mut out = Vec::with_capacity(META_BYTES + 8 + groups.len() + entries.len());
        put_head(&mut out, self.meta, &groups, self.len());
        out.extend_from_slice(entries);
        out
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
    /// entry's encoding) after them; the groups as they are.
    fn encode(
        &self,
        meta: Meta,
        kept: impl Iterator<Item = usize> + Clone,
        added: Option<&[u8]>,
    ) -> Vec<u8> {
        let body: usize = kept.clone().map(|at| self.entries[at].1.len()).sum();
        let count = kept.clone().count() + usize::from(added.is_some());
        let mut out = Vec::with_capacity(
            META_BYTES + 8 + self.groups.len() + body + added.map_or(0, <[u8]>::len),
        );
        put_head(&mut out, meta, self.groups, count);
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

fn put_head(out: &mut Vec<u8>, meta: Meta, groups: &[u8], count: usize) {
    put_id(out, meta.last_id);
    put_u64(out, meta.entries_added);
    put_id(out, meta.max_deleted_id);
    put_bytes(out, groups);
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
    let (meta, groups, len, entries_at) = match stored {
        Some(bytes) => {
            let head = head(bytes)?;
            (head.meta, head.groups, head.count, head.entries_at)
        }
        None => (Meta::default(), &[][..], 0, 0),
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
        .and_then(|bytes| bytes.get(entries_at..))
        .and_then(|mut rest| take_id(&mut rest));
    let may_trim = trim.is_some_and(|trim| match trim.by {
        TrimBy::MaxLen(max) => (len as u64) >= max,
        TrimBy::MinId(min) => id < min || first_id.is_some_and(|first| first < min),
    });
    let (Some(trim), true) = (trim, may_trim) else {
        let entries = stored.map_or(&[][..], |bytes| &bytes[entries_at..]);
        let mut out =
            Vec::with_capacity(META_BYTES + 8 + groups.len() + entries.len() + entry.len());
        put_head(&mut out, meta, groups, len + 1);
        out.extend_from_slice(entries);
        out.extend_from_slice(&entry);
        return Ok(Ok((out, id)));
    };
    let parsed = stored.map(Stored::parse).transpose()?;
    let empty = Stored::EMPTY;
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

/// A consumer group: how far it has delivered, its consumers, and the entries it
/// delivered that are not acknowledged yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Group {
    pub(crate) name: Vec<u8>,
    /// The last ID delivered by `XREADGROUP ... >`.
    pub(crate) last_delivered: StreamId,
    /// By name.
    pub(crate) consumers: Vec<Consumer>,
    /// By ID.
    pub(crate) pending: Vec<Pending>,
}

/// A consumer of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Consumer {
    pub(crate) name: Vec<u8>,
    /// When it last read, in Unix milliseconds.
    pub(crate) seen_ms: u64,
}

/// An entry delivered to a consumer and not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pending {
    pub(crate) id: StreamId,
    pub(crate) consumer: Vec<u8>,
    /// When it was last delivered, in Unix milliseconds.
    pub(crate) delivered_ms: u64,
    /// How many times it was.
    pub(crate) deliveries: u64,
}

/// Decodes a stream's groups (none for no bytes), checking that groups and consumers
/// are in order of name, pending entries in order of ID and within `last_id`, and that
/// each names a consumer of its group.
fn decode_groups(bytes: &[u8], last_id: StreamId) -> Result<Vec<Group>, &'static str> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let cut = "stream group cut short";
    let mut rest = bytes;
    let count = take_u32(&mut rest).ok_or(cut)? as usize;
    // A group takes at least 28 bytes, a consumer 12, a pending entry 36: a count past
    // what the bytes allow is corrupt, and must not size an allocation.
    if count == 0 || count > rest.len() / 28 {
        return Err("stream group count out of bounds");
    }
    let mut groups: Vec<Group> = Vec::with_capacity(count);
    for _ in 0..count {
        let name = take_bytes(&mut rest).ok_or(cut)?.to_vec();
        let last_delivered = take_id(&mut rest).ok_or(cut)?;
        let consumers_count = take_u32(&mut rest).ok_or(cut)? as usize;
        if consumers_count > rest.len() / 12 {
            return Err("stream consumer count out of bounds");
        }
        let mut consumers: Vec<Consumer> = Vec::with_capacity(consumers_count);
        for _ in 0..consumers_count {
            let name = take_bytes(&mut rest).ok_or(cut)?.to_vec();
            let seen_ms = take_u64(&mut rest).ok_or(cut)?;
            if consumers.last().is_some_and(|c| c.name >= name) {
                return Err("stream consumers out of order");
            }
            consumers.push(Consumer { name, seen_ms });
        }
        let pending_count = take_u32(&mut rest).ok_or(cut)? as usize;
        if pending_count > rest.len() / 36 {
            return Err("stream pending count out of bounds");
        }
        let mut pending: Vec<Pending> = Vec::with_capacity(pending_count);
        for _ in 0..pending_count {
            let id = take_id(&mut rest).ok_or(cut)?;
            let consumer = take_u32(&mut rest).ok_or(cut)? as usize;
            let delivered_ms = take_u64(&mut rest).ok_or(cut)?;
            let deliveries = take_u64(&mut rest).ok_or(cut)?;
            if pending.last().is_some_and(|p| p.id >= id) || id > last_id {
                return Err("stream pending entries out of order");
            }
            let consumer = consumers
                .get(consumer)
                .ok_or("stream pending entry of no consumer")?
                .name
                .clone();
            pending.push(Pending {
                id,
                consumer,
                delivered_ms,
                deliveries,
            });
        }
        if groups.last().is_some_and(|g| g.name >= name) {
            return Err("stream groups out of order");
        }
        groups.push(Group {
            name,
            last_delivered,
            consumers,
            pending,
        });
    }
    if !rest.is_empty() {
        return Err("bytes after the last stream group");
    }
    Ok(groups)
}

/// Encodes groups as [`decode_groups`] reads them.
fn encode_groups(groups: &[Group]) -> Vec<u8> {
    let mut out = Vec::new();
    if groups.is_empty() {
        return out;
    }
    out.extend_from_slice(&u32_len(groups.len()).to_le_bytes());
    for group in groups {
        put_bytes(&mut out, &group.name);
        put_id(&mut out, group.last_delivered);
        out.extend_from_slice(&u32_len(group.consumers.len()).to_le_bytes());
        for consumer in &group.consumers {
            put_bytes(&mut out, &consumer.name);
            put_u64(&mut out, consumer.seen_ms);
        }
        out.extend_from_slice(&u32_len(group.pending.len()).to_le_bytes());
        for pending in &group.pending {
            let consumer = group
                .consumers
                .binary_search_by(|c| c.name.as_slice().cmp(&pending.consumer))
                .expect("a pending entry's consumer is in its group");
            put_id(&mut out, pending.id);
            out.extend_from_slice(&u32_len(consumer).to_le_bytes());
            put_u64(&mut out, pending.delivered_ms);
            put_u64(&mut out, pending.deliveries);
        }
    }
    out
}

impl Group {
    /// The consumer `name`, created (as last seen at `now_ms`) if it is not there; and
    /// whether it was.
    fn consumer(&mut self, name: &[u8], now_ms: u64) -> (&mut Consumer, bool) {
        match self
            .consumers
            .binary_search_by(|c| c.name.as_slice().cmp(name))
        {
            Ok(at) => (&mut self.consumers[at], false),
            Err(at) => {
                self.consumers.insert(
                    at,
                    Consumer {
                        name: name.to_vec(),
                        seen_ms: now_ms,
                    },
                );
                (&mut self.consumers[at], true)
            }
        }
    }

    /// Notes `id` as delivered to `consumer` at `now_ms`, for the first time (an entry
    /// already pending, delivered again after a `SETID`, changes hands).
    fn deliver(&mut self, id: StreamId, consumer: &[u8], now_ms: u64) {
        let pending = Pending {
            id,
            consumer: consumer.to_vec(),
            delivered_ms: now_ms,
            deliveries: 1,
        };
        match self.pending.binary_search_by(|p| p.id.cmp(&id)) {
            Ok(at) => self.pending[at] = pending,
            Err(at) => self.pending.insert(at, pending),
        }
    }
}

/// Where the group `name` is among `groups`, if it is there.
fn find_group(groups: &[Group], name: &[u8]) -> Result<usize, usize> {
    groups.binary_search_by(|g| g.name.as_slice().cmp(name))
}

/// Why a group command was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupRefused {
    /// No stream at the key.
    NoStream,
    /// No such group.
    NoGroup,
    /// `CREATE` of a group that is there.
    Exists,
    /// An argument that was not an ID.
    InvalidId,
}

/// `XGROUP` on `stream` (`None`: the key holds none): the new encoding, unless nothing
/// changed, and the answer.
pub(crate) fn group_op(
    stream: Option<&Stored<'_>>,
    name: &[u8],
    op: &crate::command::GroupOp,
    now_ms: u64,
) -> Result<(Option<Vec<u8>>, Output), GroupRefused> {
    use crate::command::{GroupOp, GroupStart};
    let empty = Stored::EMPTY;
    let stream = match (stream, op) {
        (Some(stream), _) => stream,
        (None, GroupOp::Create { mkstream: true, .. }) => &empty,
        (None, _) => return Err(GroupRefused::NoStream),
    };
    let mut groups = stream.groups();
    let found = find_group(&groups, name);
    let start = |start: &Option<GroupStart>| match start {
        None => Err(GroupRefused::InvalidId),
        Some(GroupStart::Last) => Ok(stream.meta.last_id),
        Some(GroupStart::At(id)) => Ok(*id),
    };
    let output = match (op, found) {
        (GroupOp::Create { start: at, .. }, found) => {
            let last_delivered = start(at)?;
            let Err(place) = found else {
                return Err(GroupRefused::Exists);
            };
            groups.insert(
                place,
                Group {
                    name: name.to_vec(),
                    last_delivered,
                    consumers: Vec::new(),
                    pending: Vec::new(),
                },
            );
            Output::Ok
        }
        (GroupOp::Destroy, Err(_)) => return Ok((None, Output::Count(0))),
        (GroupOp::Destroy, Ok(at)) => {
            groups.remove(at);
            Output::Count(1)
        }
        (_, Err(_)) => return Err(GroupRefused::NoGroup),
        (GroupOp::SetId { start: at }, Ok(place)) => {
            groups[place].last_delivered = start(at)?;
            Output::Ok
        }
        (GroupOp::CreateConsumer { consumer }, Ok(place)) => {
            let (_, created) = groups[place].consumer(consumer, now_ms);
            if !created {
                return Ok((None, Output::Count(0)));
            }
            Output::Count(1)
        }
        (GroupOp::DelConsumer { consumer }, Ok(place)) => {
            let group = &mut groups[place];
            let Ok(at) = group
                .consumers
                .binary_search_by(|c| c.name.as_slice().cmp(consumer))
            else {
                return Ok((None, Output::Count(0)));
            };
            group.consumers.remove(at);
            let before = group.pending.len();
            group.pending.retain(|p| p.consumer != *consumer);
            Output::Count((before - group.pending.len()) as u64)
        }
    };
    Ok((Some(stream.with_groups(&groups)), output))
}

/// `XREADGROUP` of one stream, which holds the group `name`: with `after` `None`
/// (`>`), the entries after the group's last delivered one, at most `count` (0: all),
/// which become `consumer`'s pending entries unless `no_ack`; else `consumer`'s pending
/// entries after `after`, delivered again (one deleted since has no fields). `None` if
/// there was nothing new to deliver; else the entries and the new encoding.
pub(crate) fn read_group(
    stream: &Stored<'_>,
    name: &[u8],
    consumer: &[u8],
    after: Option<StreamId>,
    count: u64,
    no_ack: bool,
    now_ms: u64,
) -> Option<(Vec<StreamEntry>, Vec<u8>)> {
    let mut groups = stream.groups();
    let at = find_group(&groups, name).expect("the caller checked");
    let group = &mut groups[at];
    let limit = if count == 0 {
        usize::MAX
    } else {
        usize::try_from(count).unwrap_or(usize::MAX)
    };
    let entries = match after {
        None => {
            let entries = stream.after(group.last_delivered, count);
            if entries.is_empty() {
                return None;
            }
            group.consumer(consumer, now_ms).0.seen_ms = now_ms;
            for entry in &entries {
                group.last_delivered = entry.id;
                if !no_ack {
                    group.deliver(entry.id, consumer, now_ms);
                }
            }
            entries
        }
        Some(after) => {
            group.consumer(consumer, now_ms).0.seen_ms = now_ms;
            let mut entries = Vec::new();
            for pending in group
                .pending
                .iter_mut()
                .filter(|p| p.id > after && p.consumer == consumer)
                .take(limit)
            {
                match stream
                    .entries
                    .binary_search_by(|(id, _)| id.cmp(&pending.id))
                {
                    Ok(at) => {
                        pending.delivered_ms = now_ms;
                        pending.deliveries = pending.deliveries.saturating_add(1);
                        entries.push(stream.entry(at));
                    }
                    Err(_) => entries.push(StreamEntry {
                        id: pending.id,
                        fields: Vec::new(),
                    }),
                }
            }
            entries
        }
    };
    Some((entries, stream.with_groups(&groups)))
}

/// What `XCLAIM` asks for, besides the group.
pub(crate) struct Claim<'a> {
    pub(crate) consumer: &'a [u8],
    pub(crate) min_idle_ms: u64,
    pub(crate) ids: &'a [StreamId],
    pub(crate) delivered: Option<crate::command::ClaimTime>,
    pub(crate) retry_count: Option<u64>,
    pub(crate) force: bool,
    pub(crate) just_id: bool,
    pub(crate) last_id: Option<StreamId>,
}

impl Group {
    /// Hands the pending entry at `at` to `consumer` (created, and seen, at `now_ms`),
    /// as delivered at `delivered_ms`, counted again unless `just_id`.
    fn hand_over(
        &mut self,
        at: usize,
        consumer: &[u8],
        delivered_ms: u64,
        just_id: bool,
        now_ms: u64,
    ) {
        self.consumer(consumer, now_ms).0.seen_ms = now_ms;
        let pending = &mut self.pending[at];
        pending.consumer = consumer.to_vec();
        pending.delivered_ms = delivered_ms;
        if !just_id {
            pending.deliveries = pending.deliveries.saturating_add(1);
        }
    }
}

/// `XCLAIM` on a stream holding the group `name` at `now_ms`: the new encoding, unless
/// nothing changed, and the answer; `None` without the group.
///
/// As in Redis: an entry the stream no longer holds leaves the pending list and is not
/// answered; one delivered less than `min_idle_ms` ago stays where it is; with `force`,
/// an entry the stream holds but no consumer has becomes pending (delivered once
/// before, whatever its idle time).
pub(crate) fn claim(
    stream: &Stored<'_>,
    name: &[u8],
    claim: &Claim<'_>,
    now_ms: u64,
) -> Option<(Option<Vec<u8>>, Output)> {
    let mut groups = stream.groups();
    let at = find_group(&groups, name).ok()?;
    let before = groups[at].clone();
    let group = &mut groups[at];
    if let Some(last) = claim.last_id {
        group.last_delivered = group.last_delivered.max(last);
    }
    // A time before 0 or after now counts as now, as in Redis.
    let delivered_ms = match claim.delivered {
        None => None,
        Some(crate::command::ClaimTime::Idle(ms)) => i64::try_from(now_ms)
            .ok()
            .and_then(|now| now.checked_sub(ms)),
        Some(crate::command::ClaimTime::At(at)) => Some(at),
    }
    .and_then(|at| u64::try_from(at).ok())
    .filter(|at| *at <= now_ms)
    .unwrap_or(now_ms);
    let mut entries = Vec::new();
    let mut ids = Vec::new();
    for id in claim.ids {
        let held = stream.entries.binary_search_by(|(at, _)| at.cmp(id));
        let pending = group.pending.binary_search_by(|p| p.id.cmp(id));
        let Ok(entry) = held else {
            if let Ok(pending) = pending {
                group.pending.remove(pending);
            }
            continue;
        };
        let place = match pending {
            Ok(place) => {
                let idle = now_ms.saturating_sub(group.pending[place].delivered_ms);
                if claim.min_idle_ms > 0 && idle < claim.min_idle_ms {
                    continue;
                }
                place
            }
            Err(place) if claim.force => {
                group.pending.insert(
                    place,
                    Pending {
                        id: *id,
                        consumer: claim.consumer.to_vec(),
                        delivered_ms: now_ms,
                        deliveries: 1,
                    },
                );
                place
            }
            Err(_) => continue,
        };
        group.hand_over(place, claim.consumer, delivered_ms, claim.just_id, now_ms);
        if let Some(count) = claim.retry_count {
            group.pending[place].deliveries = count;
        }
        if claim.just_id {
            ids.push(*id);
        } else {
            entries.push(stream.entry(entry));
        }
    }
    let output = if claim.just_id {
        Output::StreamIds(ids)
    } else {
        Output::Entries(Some(entries))
    };
    let changed = groups[at] != before;
    Some((changed.then(|| stream.with_groups(&groups)), output))
}

/// `XAUTOCLAIM` on a stream holding the group `name` at `now_ms`: the pending entries
/// from `start` on, idle at least `min_idle_ms`, become `consumer`'s, up to `count`,
/// looking at no more than ten times as many; the new encoding, unless nothing
/// changed, and the answer. `None` without the group.
#[allow(clippy::too_many_arguments)]
pub(crate) fn auto_claim(
    stream: &Stored<'_>,
    name: &[u8],
    consumer: &[u8],
    min_idle_ms: u64,
    start: StreamId,
    count: u64,
    just_id: bool,
    now_ms: u64,
) -> Option<(Option<Vec<u8>>, Output)> {
    let mut groups = stream.groups();
    let place = find_group(&groups, name).ok()?;
    let before = groups[place].clone();
    let group = &mut groups[place];
    let mut at = group.pending.partition_point(|p| p.id < start);
    let mut attempts = count.saturating_mul(10);
    let mut left = count;
    let (mut entries, mut ids, mut deleted) = (Vec::new(), Vec::new(), Vec::new());
    while attempts > 0 && left > 0 && at < group.pending.len() {
        attempts -= 1;
        let id = group.pending[at].id;
        let Ok(entry) = stream.entries.binary_search_by(|(at, _)| at.cmp(&id)) else {
            group.pending.remove(at);
            deleted.push(id);
            left -= 1;
            continue;
        };
        let idle = now_ms.saturating_sub(group.pending[at].delivered_ms);
        if min_idle_ms > 0 && idle < min_idle_ms {
            at += 1;
            continue;
        }
        group.hand_over(at, consumer, now_ms, just_id, now_ms);
        if just_id {
            ids.push(id);
        } else {
            entries.push(stream.entry(entry));
        }
        left -= 1;
        at += 1;
    }
    let next = group.pending.get(at).map_or(StreamId::MIN, |p| p.id);
    let claimed = if just_id {
        Output::StreamIds(ids)
    } else {
        Output::Entries(Some(entries))
    };
    let output = Output::AutoClaimed {
        next,
        claimed: Box::new(claimed),
        deleted,
    };
    let changed = groups[place] != before;
    Some((changed.then(|| stream.with_groups(&groups)), output))
}

/// The last ID the stored stream `bytes` gave, and the last ID its group `name`
/// delivered if it holds that group, reading the header and the groups alone.
fn group_in(bytes: &[u8], name: &[u8]) -> Result<(StreamId, Option<StreamId>), &'static str> {
    let head = head(bytes)?;
    let groups = decode_groups(head.groups, head.meta.last_id)?;
    let delivered = find_group(&groups, name)
        .ok()
        .map(|at| groups[at].last_delivered);
    Ok((head.meta.last_id, delivered))
}

/// Whether the stored stream `bytes` holds the group `name`.
pub(crate) fn has_group(bytes: &[u8], name: &[u8]) -> Result<bool, &'static str> {
    Ok(group_in(bytes, name)?.1.is_some())
}

/// Whether the stored stream `bytes` has given an ID past the last its group `name`
/// delivered (`true` without the group).
pub(crate) fn group_behind(bytes: &[u8], name: &[u8]) -> Result<bool, &'static str> {
    let (last_id, delivered) = group_in(bytes, name)?;
    Ok(delivered.is_none_or(|delivered| delivered < last_id))
}

/// `XACK`: the new encoding, unless nothing was pending, and how many entries were.
pub(crate) fn ack(stream: &Stored<'_>, name: &[u8], ids: &[StreamId]) -> (Option<Vec<u8>>, u64) {
    let mut groups = stream.groups();
    let Ok(at) = find_group(&groups, name) else {
        return (None, 0);
    };
    let group = &mut groups[at];
    let before = group.pending.len();
    group.pending.retain(|p| !ids.contains(&p.id));
    let acked = (before - group.pending.len()) as u64;
    if acked == 0 {
        return (None, 0);
    }
    (Some(stream.with_groups(&groups)), acked)
}

/// `XPENDING` of the group `name` at `now_ms`: the summary, or the entries `range`
/// picks; `None` without the group.
pub(crate) fn pending(
    stream: &Stored<'_>,
    name: &[u8],
    range: Option<&crate::command::PendingRange>,
    now_ms: u64,
) -> Option<Output> {
    let groups = stream.groups();
    let group = &groups[find_group(&groups, name).ok()?];
    let Some(range) = range else {
        let mut consumers: Vec<(Vec<u8>, u64)> = Vec::new();
        for consumer in &group.consumers {
            let held = group
                .pending
                .iter()
                .filter(|p| p.consumer == consumer.name)
                .count();
            if held > 0 {
                consumers.push((consumer.name.clone(), held as u64));
            }
        }
        return Some(Output::PendingSummary {
            count: group.pending.len() as u64,
            ids: group
                .pending
                .first()
                .zip(group.pending.last())
                .map(|(first, last)| (first.id, last.id)),
            consumers,
        });
    };
    let limit = usize::try_from(range.count).unwrap_or(usize::MAX);
    let picked = group
        .pending
        .iter()
        .filter(|p| p.id >= range.start && p.id <= range.end)
        .filter(|p| range.consumer.as_ref().is_none_or(|c| *c == p.consumer))
        .map(|p| (p, now_ms.saturating_sub(p.delivered_ms)))
        .filter(|(_, idle)| *idle >= range.min_idle_ms)
        .take(limit)
        .map(|(p, idle)| (p.id, p.consumer.clone(), idle, p.deliveries))
        .collect();
    Some(Output::PendingEntries(picked))
}

/// The answer to `read` for `stream` (`None` without one) at `now_ms`.
#[must_use]
pub(crate) fn answer(read: &StreamRead, stream: Option<&Stored<'_>>, now_ms: u64) -> Output {
    match read {
        StreamRead::Pending { group, range } => stream
            .and_then(|s| pending(s, group, range.as_ref(), now_ms))
            .unwrap_or(Output::Rejected(crate::command::Rejection::NoGroup {
                key: 0,
            })),
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

/// The answer to `read` for the stored stream `bytes` (`None` without one) at `now_ms`;
/// `Err` if the bytes are corrupt.
///
/// The length and last ID come from the header alone, and a forward range walks the
/// entries only as far as it answers (checking what it walks), so `XLEN`, `XREAD` and
/// `XRANGE ... COUNT` do not find every entry of a long stream.
pub(crate) fn answer_stored(
    read: &StreamRead,
    bytes: Option<&[u8]>,
    now_ms: u64,
) -> Result<Output, &'static str> {
    let Some(bytes) = bytes else {
        return Ok(answer(read, None, now_ms));
    };
    match read {
        StreamRead::Len => Ok(Output::Count(head(bytes)?.count as u64)),
        StreamRead::LastId => Ok(Output::StreamId(Some(head(bytes)?.meta.last_id))),
        StreamRead::Range { count: Some(0), .. } => Ok(Output::Entries(None)),
        StreamRead::Range {
            start,
            end,
            count,
            rev: false,
        } => Ok(Output::Entries(Some(walk(bytes, *start, *end, *count)?))),
        _ => Ok(answer(read, Some(&Stored::parse(bytes)?), now_ms)),
    }
}

/// The entries from `start` to `end` of the stored stream `bytes`, in order, at most
/// `count`, walking the entries only as far as needed.
pub(crate) fn walk(
    bytes: &[u8],
    start: StreamId,
    end: StreamId,
    count: Option<u64>,
) -> Result<Vec<StreamEntry>, &'static str> {
    let head = head(bytes)?;
    let limit = count.map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
    let mut rest = &bytes[head.entries_at..];
    let mut entries = Vec::new();
    let mut previous = None;
    let cut = "stream entry cut short";
    for _ in 0..head.count {
        if entries.len() >= limit {
            break;
        }
        let id = take_id(&mut rest).ok_or(cut)?;
        if previous.is_some_and(|p| p >= id) || id > head.meta.last_id {
            return Err("stream entry IDs out of order");
        }
        previous = Some(id);
        if id > end {
            break;
        }
        let strings = take_u32(&mut rest).ok_or(cut)?;
        if id < start {
            for _ in 0..strings {
                take_bytes(&mut rest).ok_or(cut)?;
            }
            continue;
        }
        let fields = (0..strings)
            .map(|_| take_bytes(&mut rest).map(<[u8]>::to_vec).ok_or(cut))
            .collect::<Result<Vec<_>, _>>()?;
        if fields.is_empty() || !fields.len().is_multiple_of(2) {
            return Err("stream entry without fields, or a field without a value");
        }
        entries.push(StreamEntry { id, fields });
    }
    Ok(entries)
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

/// An ID argument where `-` and `+` stand for the lowest and highest IDs (`XGROUP
/// SETID`): `ms-seq`, or `ms` for `ms-0`.
#[must_use]
pub(crate) fn parse_loose_id(arg: &[u8]) -> Option<StreamId> {
    parse_any(arg, 0, false, false)?.ok()
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
            assert!(
                walk(&bytes[..cut], StreamId::MIN, StreamId::MAX, None).is_err(),
                "walk cut at {cut}"
            );
        }
        let mut later = bytes.clone();
        // The last ID before the entries' own.
        later[..8].copy_from_slice(&1u64.to_le_bytes());
        assert!(Stored::parse(&later).is_err());
        let mut huge = bytes;
        // The entry count, after the header and an empty groups section.
        huge[META_BYTES + 4..META_BYTES + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Stored::parse(&huge).is_err());
    }

    #[test]
    fn groups_keep_what_they_delivered_and_damage_is_refused() {
        use crate::command::{GroupOp, GroupStart};
        let bytes = made(&[id(1, 0), id(2, 0), id(3, 0)]);
        let stored = Stored::parse(&bytes).unwrap();
        let create = GroupOp::Create {
            start: Some(GroupStart::At(StreamId::MIN)),
            mkstream: false,
        };
        let (bytes, output) = group_op(Some(&stored), b"g", &create, 5).unwrap();
        assert_eq!(output, Output::Ok);
        let bytes = bytes.unwrap();
        let stored = Stored::parse(&bytes).unwrap();
        assert_eq!(
            group_op(Some(&stored), b"g", &create, 5).unwrap_err(),
            GroupRefused::Exists
        );
        assert_eq!(group_behind(&bytes, b"g"), Ok(true));
        assert_eq!(group_behind(&bytes, b"nope"), Ok(true));
        let (read, bytes) = read_group(&stored, b"g", b"ann", None, 2, false, 7).unwrap();
        assert_eq!(group_behind(&bytes, b"g"), Ok(true));
        let (_, all) = read_group(
            &Stored::parse(&bytes).unwrap(),
            b"g",
            b"bob",
            None,
            0,
            true,
            7,
        )
        .unwrap();
        // Everything delivered: a blocked reader of the group has nothing to ask for.
        assert_eq!(group_behind(&all, b"g"), Ok(false));
        assert_eq!(
            read.iter().map(|e| e.id).collect::<Vec<_>>(),
            [id(1, 0), id(2, 0)]
        );
        let stored = Stored::parse(&bytes).unwrap();
        let groups = stored.groups();
        assert_eq!(groups[0].last_delivered, id(2, 0));
        assert_eq!(groups[0].consumers[0].name, b"ann");
        assert_eq!(
            groups[0]
                .pending
                .iter()
                .map(|p| (p.id, p.delivered_ms, p.deliveries))
                .collect::<Vec<_>>(),
            [(id(1, 0), 7, 1), (id(2, 0), 7, 1)]
        );
        // The entries and groups survive an add that copies without reading.
        let (bytes, _) = add(Some(&bytes), NewId::AutoSeq(4), &fields(1), 0, None)
            .unwrap()
            .unwrap();
        let stored = Stored::parse(&bytes).unwrap();
        assert_eq!(stored.groups(), groups);
        assert_eq!(stored.len(), 4);
        let (acked, n) = ack(&stored, b"g", &[id(1, 0), id(9, 9)]);
        assert_eq!(n, 1);
        assert_eq!(
            Stored::parse(&acked.unwrap()).unwrap().groups()[0]
                .pending
                .len(),
            1
        );
        // Any cut of the groups section, or a pending entry of a consumer not there, is
        // refused.
        let groups_end = META_BYTES + 4 + stored.groups.len();
        for cut in META_BYTES..groups_end {
            let mut damaged = bytes[..cut].to_vec();
            damaged.extend_from_slice(&bytes[groups_end..]);
            assert!(Stored::parse(&damaged).is_err(), "cut at {cut}");
        }
        let mut no_consumer = bytes.clone();
        // The pending entry's consumer place: after its ID, near the section's end.
        let at = groups_end - 8 - 8 - 4;
        no_consumer[at..at + 4].copy_from_slice(&7u32.to_le_bytes());
        assert!(Stored::parse(&no_consumer).is_err());
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
                    // The walk that reads answer finds the same, from any start, to any
                    // count.
                    let from = StreamId { ms: a, seq: b };
                    let walked: Vec<StreamId> = walk(bytes, from, StreamId::MAX, Some(b + 1))
                        .unwrap()
                        .iter()
                        .map(|e| e.id)
                        .collect();
                    let expected: Vec<StreamId> =
                        model.iter().copied().filter(|id| *id >= from).take(b as usize + 1).collect();
                    prop_assert_eq!(walked, expected);
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
