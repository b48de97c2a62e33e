//! The key-value state machine, kept in redb.
//!
//! Three tables: `records` maps a key to its record (`expire_at_ms u64 LE | kind u8 |
//! value`, with [`NO_EXPIRY`] for keys that never expire and the kind as [`ValueKind`]
//! numbers it), `expiry` indexes `(expire_at_ms, key)` for keys that do expire, and
//! `meta` holds the applied index and the layout's version. A database of the first
//! layout (a table `kv` of `expire_at_ms | value`, strings only) is rewritten on open.
//! Every apply writes data and applied index in one write transaction, so after a crash
//! the store is exactly the state after some applied index, and a replayed entry at or
//! below it is a no-op.
//!
//! A hash is one record, its fields encoded as [`crate::hash`] lays them out. A command
//! made for one kind of value answers [`Rejection::WrongType`] on a key holding another.
//!
//! Expiry: a key whose expiry is before `now_ms` is hidden from reads and treated as
//! absent by every write that touches it (NX/XX, INCRBY, DEL's count). It is physically
//! removed only deterministically: by a later write to the same key, or by a
//! [`Command::PurgeExpired`] that the leader proposes when [`KvStateMachine::next_expiry_ms`]
//! says something has expired. Reads never write.
//!
//! Applies are buffered: they change an in-memory layer over redb (`store/buffer.rs`), which
//! is written to redb in one transaction once it holds
//! [`StoreOptions::buffer_keys_max`] keys or [`StoreOptions::buffer_bytes_max`] bytes, on
//! [`KvStateMachine::persist`], before a snapshot and before a purge. Reads see the
//! layer. With [`StoreOptions::sync_writes`] every apply is written and synced at once.
//!
//! A full buffer is written on a thread of its own (a *flush*): the layer is frozen,
//! applies go on into a new one, and readers see both until the transaction commits.
//! One flush writes at a time; a second (a snapshot's, or a buffer filled to twice the
//! limit) may wait behind it, on its own thread too. Applying waits only when a third
//! would be needed, or when something needs redb itself up to date (a purge, a
//! restore, a synchronous persist).

mod buffer;

use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, mpsc};
use std::thread::JoinHandle;

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};

use self::buffer::{FROZEN_MAX, Layer, Layers};
use crate::bits;
use crate::command::{
    Aggregate, Command, Expiry, HashRead, Held, ListRead, MPopFrom, Output, Rejection, Score,
    SetCondition, SetOp, SetRead, StreamEntry, StreamId, StreamRead, TxOp, TxRead, VALUE_BYTES_MAX,
    ZSetRead, byte_range, parse_integer,
};
use crate::decimal::{self, FloatError};
use crate::hash::{self, Fields};
use crate::hll;
use crate::list;
use crate::packed::{self, Strings};
use crate::script;
use crate::server::ScriptCall;
use crate::set::{self, Members};
use crate::snapshot::{self, Chunk, ENTRY_OVERHEAD_BYTES, SnapshotChecker, SnapshotEntry};
use crate::stream;
use crate::zset::{self, SortedSet};

/// The expiry stored for a key that never expires.
pub const NO_EXPIRY: u64 = u64::MAX;
/// The version of the table layout, checked on open.
const SCHEMA_VERSION: u64 = 2;
/// The first layout, which holds only strings; rewritten on open.
const SCHEMA_STRINGS_ONLY: u64 = 1;

const KV: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("records");
/// The table of the first layout.
const KV_STRINGS_ONLY: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("kv");
/// The bytes before a record's value: its expiry and its kind.
const RECORD_HEAD_BYTES: usize = 9;
const EXPIRY: TableDefinition<'_, (u64, &[u8]), ()> = TableDefinition::new("expiry");
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
const META_APPLIED: &str = "applied_index";
const META_SCHEMA: &str = "schema_version";

/// Errors from the state machine's storage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// redb reported an I/O, corruption or transaction error.
    #[error("storage engine: {source}")]
    Storage {
        /// The error from redb.
        #[from]
        source: redb::Error,
    },
    /// A stored record is shorter than its header: the database is damaged.
    #[error("corrupt record: {reason}")]
    CorruptRecord {
        /// What was wrong.
        reason: &'static str,
    },
    /// The database was written with a different table layout.
    #[error("database schema version {found}, this build reads {expected}")]
    SchemaVersion {
        /// The version found in the database.
        found: u64,
        /// The version this build reads.
        expected: u64,
    },
    /// A snapshot chunk failed a check; nothing was changed.
    #[error("snapshot chunk {chunk} is corrupt: {reason}")]
    SnapshotCorrupt {
        /// The position of the chunk in the stream.
        chunk: u64,
        /// Which check failed.
        reason: &'static str,
    },
    /// A snapshot chunk names a format version this build does not read.
    #[error("snapshot format version {found}, this build reads {expected}")]
    SnapshotVersion {
        /// The version found.
        found: u8,
        /// The version this build reads.
        expected: u8,
    },
    /// A read of one kind of value found a key that holds another (Redis's `WRONGTYPE`).
    #[error("the key holds a {found} value")]
    WrongKind {
        /// What the key holds.
        found: ValueKind,
    },
    /// A bounded read found more bytes than its budget allows.
    #[error("the values read exceed the limit of {bytes_max} bytes")]
    ReadTooLarge {
        /// The budget.
        bytes_max: usize,
    },
    /// The chunk stream ended before the footer; nothing was changed.
    #[error("snapshot ended after {chunks} chunks without its footer")]
    SnapshotIncomplete {
        /// How many chunks were read.
        chunks: u64,
    },
    /// Writing the buffered applies to redb failed before a snapshot could read them;
    /// the store reports the failure itself on its next apply.
    #[error("the buffered applies could not be written for the snapshot")]
    SnapshotFlushFailed,
}

fn db_err(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Storage { source: e.into() }
}

/// How the state machine writes to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// Make every apply durable before it returns (fsync). Without it, a crash may lose
    /// the applies since the last [`KvStateMachine::persist`], which a replicated log
    /// replays.
    pub sync_writes: bool,
    /// The most changed keys held in memory before they are written to redb (0 writes
    /// every apply through at once). Ignored with `sync_writes`, which writes every
    /// apply through.
    pub buffer_keys_max: usize,
    /// The most bytes of changed keys and values held in memory before they are written
    /// to redb, roughly.
    pub buffer_bytes_max: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            sync_writes: true,
            buffer_keys_max: 65536,
            buffer_bytes_max: 16 * 1024 * 1024,
        }
    }
}

/// What [`KvStateMachine::restore`] installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoreSummary {
    /// The applied index the snapshot was taken at, now the store's applied index.
    pub applied_index: u64,
    /// How many keys were installed.
    pub entries: u64,
}

/// One log entry handed to [`KvStateMachine::apply_batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyEntry<'a> {
    /// The entry's log index (positive).
    pub index: u64,
    /// The write.
    pub command: &'a Command,
    /// The entry's apply time, stamped by its proposer, in Unix milliseconds.
    pub now_ms: u64,
}

/// A step of [`KvStateMachine::scan_keys`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanPage {
    /// The live keys found, in byte order.
    pub keys: Vec<Vec<u8>>,
    /// The kind of value each of them holds, in the same order.
    pub kinds: Vec<ValueKind>,
    /// The last key looked at, to go on from; `None` once the end was reached.
    pub last: Option<Vec<u8>>,
}

/// What [`KvStateMachine::key_counts`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyCounts {
    /// Keys stored, including expired ones not yet purged.
    pub keys: u64,
    /// Those of them that have an expiry.
    pub expiring: u64,
}

/// Whether a key holds a live value, and until when ([`KvStateMachine::key_expiry`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyExpiry {
    /// The key holds no value, or only an expired one.
    Absent,
    /// The key holds a value that never expires.
    Never,
    /// The key holds a value until this time, in Unix milliseconds (live through it).
    At(u64),
}

impl KeyExpiry {
    /// The state of a key whose record, if any, expires at `expire_at_ms`, at `now_ms`.
    fn of(expire_at_ms: Option<u64>, now_ms: u64) -> Self {
        match expire_at_ms {
            None => Self::Absent,
            Some(at) if is_expired(at, now_ms) => Self::Absent,
            Some(NO_EXPIRY) => Self::Never,
            Some(at) => Self::At(at),
        }
    }

    /// What Redis answers for it to `TTL`, `PTTL`, `EXPIRETIME` and `PEXPIRETIME`: -2
    /// without a live value, -1 without an expiry, else `measure(expiry)` in milliseconds
    /// or, unless `in_ms`, rounded to the nearest second.
    #[must_use]
    pub fn redis_time(self, measure: impl FnOnce(u64) -> u64, in_ms: bool) -> i64 {
        let ms = match self {
            Self::Absent => return -2,
            Self::Never => return -1,
            Self::At(at) => measure(at),
        };
        let value = if in_ms {
            ms
        } else {
            ms.saturating_add(500) / 1000
        };
        i64::try_from(value).unwrap_or(i64::MAX)
    }
}

/// What kind of value a key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueKind {
    /// Bytes (`SET`, `GET`, ...).
    String,
    /// Fields and their values ([`crate::hash`]; `HSET`, `HGET`, ...).
    Hash,
    /// Members ([`crate::set`]; `SADD`, `SMEMBERS`, ...).
    Set,
    /// Items in order ([`crate::list`]; `LPUSH`, `LRANGE`, ...).
    List,
    /// Members ordered by score ([`crate::zset`]; `ZADD`, `ZRANGE`, ...).
    ZSet,
    /// Entries under increasing IDs ([`crate::stream`]; `XADD`, `XRANGE`, ...).
    Stream,
}

impl ValueKind {
    /// The byte that stands for the kind in records and snapshots.
    #[must_use]
    pub(crate) fn byte(self) -> u8 {
        match self {
            Self::String => 0,
            Self::Hash => 1,
            Self::Set => 2,
            Self::List => 3,
            Self::ZSet => 4,
            Self::Stream => 5,
        }
    }

    /// The kind a stored byte stands for.
    #[must_use]
    pub(crate) fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(Self::String),
            1 => Some(Self::Hash),
            2 => Some(Self::Set),
            3 => Some(Self::List),
            4 => Some(Self::ZSet),
            5 => Some(Self::Stream),
            _ => None,
        }
    }

    /// The name `TYPE` answers with.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Hash => "hash",
            Self::Set => "set",
            Self::List => "list",
            Self::ZSet => "zset",
            Self::Stream => "stream",
        }
    }
}

impl std::fmt::Display for ValueKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A stored value, its kind and its expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    expire_at_ms: u64,
    kind: ValueKind,
    value: Vec<u8>,
}

impl Record {
    fn string(expire_at_ms: u64, value: Vec<u8>) -> Self {
        Self {
            expire_at_ms,
            kind: ValueKind::String,
            value,
        }
    }

    /// The hash this record holds; `Ok(Err(kind))` if it holds another kind.
    fn hash(&self) -> Result<Result<Fields, ValueKind>, StoreError> {
        if self.kind != ValueKind::Hash {
            return Ok(Err(self.kind));
        }
        Fields::decode(&self.value)
            .map(Ok)
            .map_err(|reason| StoreError::CorruptRecord { reason })
    }

    /// The list this record holds; `Ok(Err(kind))` if it holds another kind.
    fn list(&self) -> Result<Result<Strings, ValueKind>, StoreError> {
        if self.kind != ValueKind::List {
            return Ok(Err(self.kind));
        }
        Strings::decode(&self.value, 1)
            .map(Ok)
            .map_err(|reason| StoreError::CorruptRecord { reason })
    }

    /// The set this record holds; `Ok(Err(kind))` if it holds another kind.
    fn set(&self) -> Result<Result<Members, ValueKind>, StoreError> {
        if self.kind != ValueKind::Set {
            return Ok(Err(self.kind));
        }
        Members::decode(&self.value)
            .map(Ok)
            .map_err(|reason| StoreError::CorruptRecord { reason })
    }

    /// The sorted set this record holds; `Ok(Err(kind))` if it holds another kind.
    fn zset(&self) -> Result<Result<SortedSet, ValueKind>, StoreError> {
        if self.kind != ValueKind::ZSet {
            return Ok(Err(self.kind));
        }
        SortedSet::decode(&self.value)
            .map(Ok)
            .map_err(|reason| StoreError::CorruptRecord { reason })
    }

    /// Its kind and value, as reads of a value where it lies see them.
    fn parts(&self) -> (ValueKind, &[u8]) {
        (self.kind, &self.value)
    }

    /// The value and expiry as a watched key's are kept.
    fn held(self) -> Held {
        Held {
            expire_at_ms: (self.expire_at_ms != NO_EXPIRY).then_some(self.expire_at_ms),
            value: self.value,
        }
    }
}

fn is_expired(expire_at_ms: u64, now_ms: u64) -> bool {
    expire_at_ms != NO_EXPIRY && now_ms > expire_at_ms
}

fn encode_record(expire_at_ms: u64, kind: ValueKind, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(RECORD_HEAD_BYTES + value.len());
    out.extend_from_slice(&expire_at_ms.to_le_bytes());
    out.push(kind.byte());
    out.extend_from_slice(value);
    out
}

/// A stored record's kind and value, reading past its expiry.
fn record_body(bytes: &[u8]) -> Result<(ValueKind, &[u8]), StoreError> {
    let corrupt = |reason| StoreError::CorruptRecord { reason };
    let (&kind, value) = bytes
        .get(8..)
        .and_then(<[u8]>::split_first)
        .ok_or(corrupt("record shorter than its header"))?;
    let kind = ValueKind::from_byte(kind).ok_or(corrupt("record of an unknown kind"))?;
    Ok((kind, value))
}

fn decode_record(bytes: &[u8]) -> Result<Record, StoreError> {
    let (kind, value) = record_body(bytes)?;
    Ok(Record {
        expire_at_ms: record_expiry(bytes)?,
        kind,
        value: value.to_vec(),
    })
}

/// A stored record's expiry, reading only its header.
fn record_expiry(bytes: &[u8]) -> Result<u64, StoreError> {
    let head = bytes.first_chunk::<8>().ok_or(StoreError::CorruptRecord {
        reason: "record shorter than its header",
    })?;
    Ok(u64::from_le_bytes(*head))
}

/// Whether a stored record has expired at `now_ms`, reading only its header.
fn record_expired(bytes: &[u8], now_ms: u64) -> Result<bool, StoreError> {
    Ok(is_expired(record_expiry(bytes)?, now_ms))
}

/// The tables of one write transaction.
struct Tables<'t> {
    kv: redb::Table<'t, &'static [u8], &'static [u8]>,
    expiry: redb::Table<'t, (u64, &'static [u8]), ()>,
}

impl Tables<'_> {
    fn remove(&mut self, key: &[u8]) -> Result<Option<Record>, StoreError> {
        let old = match self.kv.remove(key).map_err(db_err)? {
            Some(guard) => decode_record(guard.value())?,
            None => return Ok(None),
        };
        if old.expire_at_ms != NO_EXPIRY {
            let indexed = self
                .expiry
                .remove((old.expire_at_ms, key))
                .map_err(db_err)?;
            if indexed.is_none() {
                return Err(StoreError::CorruptRecord {
                    reason: "expiring key missing from the expiry index",
                });
            }
        }
        Ok(Some(old))
    }

    /// Stores `key`'s record, replacing any older one in a single B-tree operation, and
    /// moves its entry in the expiry index when the expiry changed.
    fn put(&mut self, key: &[u8], record: &Record) -> Result<(), StoreError> {
        let expire_at_ms = record.expire_at_ms;
        let old_expiry = match self
            .kv
            .insert(
                key,
                encode_record(expire_at_ms, record.kind, &record.value).as_slice(),
            )
            .map_err(db_err)?
        {
            Some(old) => Some(record_expiry(old.value())?),
            None => None,
        };
        if old_expiry == Some(expire_at_ms) {
            return Ok(());
        }
        if let Some(old) = old_expiry.filter(|&at| at != NO_EXPIRY) {
            let indexed = self.expiry.remove((old, key)).map_err(db_err)?;
            if indexed.is_none() {
                return Err(StoreError::CorruptRecord {
                    reason: "expiring key missing from the expiry index",
                });
            }
        }
        if expire_at_ms != NO_EXPIRY {
            self.expiry
                .insert((expire_at_ms, key), ())
                .map_err(db_err)?;
        }
        Ok(())
    }
}

/// redb as of the store's last commit, opened once per commit rather than once per read
/// (the tables keep their read snapshot alive).
struct Committed {
    kv: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
    expiry: redb::ReadOnlyTable<(u64, &'static [u8]), ()>,
}

impl Committed {
    fn open(db: &Database) -> Result<Self, StoreError> {
        let txn = db.begin_read().map_err(db_err)?;
        Ok(Self {
            kv: txn.open_table(KV).map_err(db_err)?,
            expiry: txn.open_table(EXPIRY).map_err(db_err)?,
        })
    }
}

/// What readers look at, changed together under one lock: the layers of buffered
/// applies and, below them, redb as of the last commit.
struct State {
    layers: Layers,
    redb: Committed,
}

/// A live collection and its expiry, as a command that changes it starts from, or the
/// answer for a key that holds another kind of value.
type Loaded<C> = Result<Result<(C, u64), Output>, StoreError>;

/// The clients waiting for keys to get a value, by key.
#[derive(Debug, Default)]
struct Waiters {
    /// How many watches are open: applies skip the lookup when none is.
    count: AtomicUsize,
    next_id: AtomicU64,
    by_key: Mutex<WatchesByKey>,
}

/// Each watched key's watches: the watch's id and what wakes it.
type WatchesByKey = std::collections::HashMap<Vec<u8>, Vec<(u64, Arc<tokio::sync::Notify>)>>;

impl Waiters {
    fn lock(&self) -> MutexGuard<'_, WatchesByKey> {
        self.by_key
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Wakes the watches of `keys`. A wake before the watch waits is kept for it.
    fn wake<'k>(&self, keys: impl Iterator<Item = &'k [u8]>) {
        let by_key = self.lock();
        for key in keys {
            for (_, notify) in by_key.get(key).into_iter().flatten() {
                notify.notify_one();
            }
        }
    }

    fn wake_all(&self) {
        for (_, notify) in self.lock().values().flatten() {
            notify.notify_one();
        }
    }
}

/// A watch on some keys ([`KvStateMachine::watch_keys`]); dropping it ends it.
#[derive(Debug)]
pub struct KeyWatch {
    waiters: Arc<Waiters>,
    id: u64,
    keys: Vec<Vec<u8>>,
    notify: Arc<tokio::sync::Notify>,
}

impl KeyWatch {
    /// Completes once a watched key was given a value since the watch began or since
    /// this last completed.
    pub async fn changed(&self) {
        self.notify.notified().await;
    }
}

impl Drop for KeyWatch {
    fn drop(&mut self) {
        let mut by_key = self.waiters.lock();
        for key in &self.keys {
            if let Some(watches) = by_key.get_mut(key) {
                watches.retain(|(id, _)| *id != self.id);
                if watches.is_empty() {
                    by_key.remove(key);
                }
            }
        }
        self.waiters.count.fetch_sub(1, Ordering::Release);
    }
}

/// What a node does with a message published to a channel as it applies the `PUBLISH`:
/// given the channel, the message and the entry's time, it delivers it and returns to how
/// many subscribers.
pub type Publisher = Arc<dyn Fn(&[u8], &[u8], u64) -> u64 + Send + Sync>;

/// A run of applies in progress: its own layer over the buffered layers and redb.
struct View<'a> {
    run: &'a mut Layer,
    below: &'a Layers,
    kv: &'a redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
    expiry: &'a redb::ReadOnlyTable<(u64, &'static [u8]), ()>,
    publisher: Option<&'a Publisher>,
}

impl View<'_> {
    fn load(&self, key: &[u8]) -> Result<Option<Record>, StoreError> {
        if let Some(state) = self.run.get(key).or_else(|| self.below.get(key)) {
            return Ok(state.cloned());
        }
        match self.kv.get(key).map_err(db_err)? {
            Some(guard) => decode_record(guard.value()).map(Some),
            None => Ok(None),
        }
    }

    fn is_live(&self, key: &[u8], now_ms: u64) -> Result<bool, StoreError> {
        if let Some(state) = self.run.get(key).or_else(|| self.below.get(key)) {
            return Ok(state.is_some_and(|r| !is_expired(r.expire_at_ms, now_ms)));
        }
        match self.kv.get(key).map_err(db_err)? {
            Some(guard) => Ok(!record_expired(guard.value(), now_ms)?),
            None => Ok(false),
        }
    }

    /// Whether `key` holds a live value at `now_ms`, and until when.
    fn key_expiry(&self, key: &[u8], now_ms: u64) -> Result<KeyExpiry, StoreError> {
        let at = self.load(key)?.map(|r| r.expire_at_ms);
        Ok(KeyExpiry::of(at, now_ms))
    }

    fn load_live(&self, key: &[u8], now_ms: u64) -> Result<Option<Record>, StoreError> {
        Ok(self
            .load(key)?
            .filter(|record| !is_expired(record.expire_at_ms, now_ms)))
    }

    /// The live string at `key`, or `Err` with the answer for a key that holds another
    /// kind of value.
    fn load_string(
        &self,
        key: &[u8],
        now_ms: u64,
    ) -> Result<Result<Option<Record>, Output>, StoreError> {
        Ok(match self.load_live(key, now_ms)? {
            Some(record) if record.kind != ValueKind::String => Err(wrong_kind()),
            found => Ok(found),
        })
    }

    /// The live string at `key` and its expiry, or `absent` without one: what a command
    /// that changes a string in place starts from. `Err` holds the answer for a key
    /// that holds another kind of value.
    fn value_or(
        &self,
        key: &[u8],
        now_ms: u64,
        absent: &[u8],
    ) -> Result<Result<(Vec<u8>, u64), Output>, StoreError> {
        Ok(self.load_string(key, now_ms)?.map(|found| match found {
            Some(record) => (record.value, record.expire_at_ms),
            None => (absent.to_vec(), NO_EXPIRY),
        }))
    }

    /// The live hash at `key` (empty without one) and its expiry, or `Err` with the
    /// answer for a key that holds another kind of value.
    fn hash_or_empty(&self, key: &[u8], now_ms: u64) -> Loaded<Fields> {
        self.collection_or_empty(key, now_ms, Record::hash)
    }

    /// The live set at `key` (empty without one) and its expiry, or `Err` with the
    /// answer for a key that holds another kind of value.
    fn set_or_empty(&self, key: &[u8], now_ms: u64) -> Loaded<Members> {
        self.collection_or_empty(key, now_ms, Record::set)
    }

    /// The live collection `decode` finds at `key` (an empty one without a value) and
    /// its expiry, or `Err` with the answer for a key that holds another kind of value.
    fn collection_or_empty<C: Default>(
        &self,
        key: &[u8],
        now_ms: u64,
        decode: fn(&Record) -> Result<Result<C, ValueKind>, StoreError>,
    ) -> Loaded<C> {
        Ok(match self.load_live(key, now_ms)? {
            None => Ok((C::default(), NO_EXPIRY)),
            Some(record) => decode(&record)?
                .map(|collection| (collection, record.expire_at_ms))
                .map_err(|_| wrong_kind()),
        })
    }

    /// The live sets at `keys`, in order (`None` for a key without a value), or `Err`
    /// with the answer if one holds another kind of value.
    fn sets(
        &self,
        keys: &[Vec<u8>],
        now_ms: u64,
    ) -> Result<Result<Vec<Option<Members>>, Output>, StoreError> {
        let sets = sources(keys, |key| self.load_live(key, now_ms), set_source)?;
        Ok(sets.map_err(|_| wrong_kind()))
    }

    /// Stores `members` as `key`'s set, expiring at `expire_at_ms`; an empty set removes
    /// the key.
    fn put_set(
        &mut self,
        key: &[u8],
        expire_at_ms: u64,
        members: &Members,
    ) -> Result<(), StoreError> {
        let value = (!members.is_empty()).then(|| members.encode());
        self.put_collection(key, expire_at_ms, ValueKind::Set, value)
    }

    /// The live list at `key` (empty without one) and its expiry, or `Err` with the
    /// answer for a key that holds another kind of value.
    fn list_or_empty(&self, key: &[u8], now_ms: u64) -> Loaded<Strings> {
        self.collection_or_empty(key, now_ms, Record::list)
    }

    /// Stores `items` as `key`'s list, expiring at `expire_at_ms` (an empty list removes
    /// the key), unless it would take more than [`VALUE_BYTES_MAX`]: then `Err` holds
    /// the answer.
    fn put_list(
        &mut self,
        key: &[u8],
        expire_at_ms: u64,
        items: &Strings,
    ) -> Result<Result<(), Output>, StoreError> {
        if items.len() == 0 {
            self.remove(key)?;
            return Ok(Ok(()));
        }
        Ok(self.put_stored(key, expire_at_ms, ValueKind::List, items.encode(1)))
    }

    /// Stores the encoded collection `value` of `kind` at `key`, unless it would take more
    /// than [`VALUE_BYTES_MAX`]: then `Err` holds the answer, and nothing changed.
    fn put_stored(
        &mut self,
        key: &[u8],
        expire_at_ms: u64,
        kind: ValueKind,
        value: Vec<u8>,
    ) -> Result<(), Output> {
        if value.len() as u64 > VALUE_BYTES_MAX {
            return Err(Output::Rejected(Rejection::TooLong {
                len_max: VALUE_BYTES_MAX,
            }));
        }
        self.put_record(
            key,
            Record {
                expire_at_ms,
                kind,
                value,
            },
        );
        Ok(())
    }

    /// Stores the encoded collection `value` of `kind` at `key`; `None`, for an empty
    /// one, removes the key.
    fn put_collection(
        &mut self,
        key: &[u8],
        expire_at_ms: u64,
        kind: ValueKind,
        value: Option<Vec<u8>>,
    ) -> Result<(), StoreError> {
        match value {
            None => {
                self.remove(key)?;
            }
            Some(value) => self.put_record(
                key,
                Record {
                    expire_at_ms,
                    kind,
                    value,
                },
            ),
        }
        Ok(())
    }

    /// The live sorted set at `key` (empty without one) and its expiry, or `Err` with
    /// the answer for a key that holds another kind of value.
    fn zset_or_empty(&self, key: &[u8], now_ms: u64) -> Loaded<SortedSet> {
        self.collection_or_empty(key, now_ms, Record::zset)
    }

    /// The live sorted sets at `keys`, in order (`None` for a key without a value; a set
    /// read as its members scored 1), or `Err` with the answer if one holds another kind
    /// of value.
    fn zsets(
        &self,
        keys: &[Vec<u8>],
        now_ms: u64,
    ) -> Result<Result<Vec<Option<SortedSet>>, Output>, StoreError> {
        let sets = sources(keys, |key| self.load_live(key, now_ms), zset_source)?;
        Ok(sets.map_err(|_| wrong_kind()))
    }

    /// Stores `set` as `key`'s sorted set, expiring at `expire_at_ms` (an empty one
    /// removes the key), unless it would take more than [`VALUE_BYTES_MAX`]: then `Err`
    /// holds the answer.
    fn put_zset(
        &mut self,
        key: &[u8],
        expire_at_ms: u64,
        set: &SortedSet,
    ) -> Result<Result<(), Output>, StoreError> {
        if set.is_empty() {
            self.remove(key)?;
            return Ok(Ok(()));
        }
        Ok(self.put_stored(key, expire_at_ms, ValueKind::ZSet, set.encode()))
    }

    /// A write to the stream at `key`: `edit` gives the new encoding, unless nothing
    /// changed, and the answer; `absent` is the answer without a stream, or when `edit`
    /// gives none (a group that is not there).
    fn edit_stream(
        &mut self,
        key: &[u8],
        now_ms: u64,
        absent: Output,
        edit: impl FnOnce(&stream::Stored<'_>) -> Option<(Option<Vec<u8>>, Output)>,
    ) -> Result<Output, StoreError> {
        let record = match self.load_live(key, now_ms)? {
            Some(r) if r.kind != ValueKind::Stream => return Ok(wrong_kind()),
            Some(r) => r,
            None => return Ok(absent),
        };
        let stored = stream::Stored::parse(&record.value).map_err(corrupt)?;
        let Some((value, output)) = edit(&stored) else {
            return Ok(absent);
        };
        if let Some(value) = value
            && let Err(refused) =
                self.put_stored(key, record.expire_at_ms, ValueKind::Stream, value)
        {
            return Ok(refused);
        }
        Ok(output)
    }

    /// Stores `fields` as `key`'s hash, expiring at `expire_at_ms`; an empty hash
    /// removes the key.
    fn put_hash(
        &mut self,
        key: &[u8],
        expire_at_ms: u64,
        fields: &Fields,
    ) -> Result<(), StoreError> {
        let value = (!fields.is_empty()).then(|| fields.encode());
        self.put_collection(key, expire_at_ms, ValueKind::Hash, value)
    }

    fn remove(&mut self, key: &[u8]) -> Result<Option<Record>, StoreError> {
        let old = self.load(key)?;
        if old.is_some() {
            self.run.set(key, None);
        }
        Ok(old)
    }

    /// Stores the string `value` at `key`, replacing whatever the key held.
    fn put(&mut self, key: &[u8], expire_at_ms: u64, value: &[u8]) {
        self.put_record(key, Record::string(expire_at_ms, value.to_vec()));
    }

    fn put_record(&mut self, key: &[u8], record: Record) {
        self.run.set(key, Some(record));
    }

    /// Gives `key` (holding `record`) the expiry `at`; one at or before `now_ms` deletes
    /// it at once, as Redis does.
    fn expire(
        &mut self,
        key: &[u8],
        record: Record,
        at: u64,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        if at <= now_ms {
            self.remove(key)?;
        } else {
            self.put_record(
                key,
                Record {
                    expire_at_ms: at,
                    ..record
                },
            );
        }
        Ok(())
    }

    /// Removes every key (`FLUSHALL`).
    ///
    /// Reads redb's table of keys, so every layer must be empty: the caller flushes
    /// first. The removals are buffered like any others.
    fn flush_all(&mut self) -> Result<Output, StoreError> {
        assert!(
            self.run.keys() == 0 && self.below.active.keys() == 0 && self.below.frozen.is_empty(),
            "a FLUSHALL reads the keys of a flushed store"
        );
        let mut doomed = Vec::new();
        for item in self.kv.iter().map_err(db_err)? {
            let (key, _) = item.map_err(db_err)?;
            doomed.push(key.value().to_vec());
        }
        for key in &doomed {
            self.run.set(key, None);
        }
        Ok(Output::Ok)
    }

    /// Removes up to `batch_max` keys expired at `now_ms`, earliest expiry first.
    ///
    /// Reads the expiry index in redb, so every layer must be empty: the caller flushes
    /// first.
    fn purge_expired(&mut self, batch_max: u32, now_ms: u64) -> Result<Output, StoreError> {
        assert!(
            self.run.keys() == 0 && self.below.active.keys() == 0 && self.below.frozen.is_empty(),
            "a purge reads the expiry index of a flushed store"
        );
        // Keys with expire_at < now_ms are exactly those expired at now_ms.
        let mut doomed = Vec::new();
        for item in self
            .expiry
            .range::<(u64, &[u8])>(..(now_ms, &[][..]))
            .map_err(db_err)?
            .take(batch_max as usize)
        {
            let (key, _) = item.map_err(db_err)?;
            let (expire_at_ms, key) = key.value();
            debug_assert!(is_expired(expire_at_ms, now_ms));
            doomed.push(key.to_vec());
        }
        for key in &doomed {
            let removed = self.remove(key)?;
            if !removed.is_some_and(|r| is_expired(r.expire_at_ms, now_ms)) {
                return Err(StoreError::CorruptRecord {
                    reason: "expiry index disagrees with the stored record",
                });
            }
        }
        Ok(Output::Count(doomed.len() as u64))
    }
}

/// The replicated key-value state machine.
///
/// All methods take `&self`; the caller (a replicator) applies entries one at a time in
/// index order. Reads may run concurrently with an apply and see the state before or
/// after it, never a mix.
pub struct KvStateMachine {
    db: Arc<Database>,
    options: StoreOptions,
    /// The index of the last entry applied, buffered or not.
    applied: AtomicU64,
    /// The applied index as of the last durable commit this store made (0 before one).
    durable: Arc<AtomicU64>,
    /// Held by whatever changes the state (applies, flushes, restores), one at a time,
    /// with the flush in progress if any.
    writer: Mutex<Writer>,
    /// Applied changes not yet in redb, and redb as of the last commit.
    state: RwLock<State>,
    /// Clients waiting for keys to get a value (blocked pops).
    waiters: Arc<Waiters>,
    /// Hands a `PUBLISH` to this node's subscribers as it is applied.
    publisher: RwLock<Option<Publisher>>,
    /// Holds every flush back before it writes, while set (tests only).
    #[cfg(test)]
    hold_flushes: Arc<Gate>,
    /// Makes every flush thread fail to start, while set (tests only).
    #[cfg(test)]
    refuse_flush_threads: std::sync::atomic::AtomicBool,
}

/// What the holder of the writer lock owns besides the right to change the state.
#[derive(Default)]
struct Writer {
    /// The newest flush, while any runs: it waits for the one before, if any, and
    /// returns redb as of its own commit.
    flushing: Option<Flushing>,
}

/// A flush's thread: redb as of its commit, or why it failed.
type Flushing = JoinHandle<Result<Committed, StoreError>>;

/// A latch tests close to hold flushes back.
#[cfg(test)]
#[derive(Default)]
struct Gate {
    closed: Mutex<bool>,
    opened: std::sync::Condvar,
}

#[cfg(test)]
impl Gate {
    fn set(&self, closed: bool) {
        *self.closed.lock().unwrap() = closed;
        self.opened.notify_all();
    }

    fn pass(&self) {
        let mut closed = self.closed.lock().unwrap();
        while *closed {
            closed = self.opened.wait(closed).unwrap();
        }
    }
}

/// A snapshot whose view is still being written to redb: see
/// [`KvStateMachine::begin_snapshot`].
pub struct PendingSnapshot {
    view: mpsc::Receiver<redb::ReadTransaction>,
    applied_index: u64,
    chunk_bytes: usize,
}

impl std::fmt::Debug for PendingSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSnapshot")
            .field("applied_index", &self.applied_index)
            .finish_non_exhaustive()
    }
}

impl PendingSnapshot {
    /// The applied index the snapshot will be taken at.
    #[must_use]
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// Waits until the state up to [`applied_index`](Self::applied_index) is in redb,
    /// and returns the stream of chunks from a view of it.
    ///
    /// # Errors
    /// [`StoreError::SnapshotFlushFailed`] if writing the buffered applies failed;
    /// [`StoreError`] if the engine fails to open the view.
    pub fn wait(self) -> Result<SnapshotStream, StoreError> {
        let txn = self
            .view
            .recv()
            .map_err(|_| StoreError::SnapshotFlushFailed)?;
        let stream = SnapshotStream::open(&txn, self.chunk_bytes)?;
        assert_eq!(
            stream.applied_index, self.applied_index,
            "nothing else commits between a snapshot's flush and its view"
        );
        Ok(stream)
    }
}

impl std::fmt::Debug for KvStateMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvStateMachine")
            .field("applied_index", &self.applied_index())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Drop for KvStateMachine {
    fn drop(&mut self) {
        // After a panic the layers may be half changed: leave redb as it is and let the
        // log replay.
        if std::thread::panicking() || self.state.is_poisoned() {
            return;
        }
        // A clean close leaves nothing for the log to replay; a failure only means a
        // longer replay on the next start.
        let _ = self.persist();
    }
}

impl KvStateMachine {
    /// Opens (or creates) the database file at `path`.
    ///
    /// # Errors
    /// [`StoreError::Storage`] if redb cannot open the file, [`StoreError::SchemaVersion`]
    /// if it was written by an incompatible build.
    pub fn open(path: &Path, options: StoreOptions) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(db_err)?;
        Self::init(db, options)
    }

    /// Creates an empty state machine kept only in memory (for tests and tools).
    ///
    /// # Errors
    /// [`StoreError::Storage`] if redb fails to initialise.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::in_memory_with(StoreOptions {
            sync_writes: false,
            ..StoreOptions::default()
        })
    }

    /// Creates an empty state machine kept only in memory, with `options` (for tests and
    /// tools).
    ///
    /// # Errors
    /// [`StoreError::Storage`] if redb fails to initialise.
    pub fn in_memory_with(options: StoreOptions) -> Result<Self, StoreError> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(db_err)?;
        Self::init(db, options)
    }

    fn init(db: Database, options: StoreOptions) -> Result<Self, StoreError> {
        let txn = db.begin_write().map_err(db_err)?;
        let applied = {
            txn.open_table(KV).map_err(db_err)?;
            txn.open_table(EXPIRY).map_err(db_err)?;
            let mut meta = txn.open_table(META).map_err(db_err)?;
            let schema = meta.get(META_SCHEMA).map_err(db_err)?.map(|g| g.value());
            match schema {
                None => {
                    meta.insert(META_SCHEMA, SCHEMA_VERSION).map_err(db_err)?;
                }
                Some(SCHEMA_VERSION) => {}
                Some(SCHEMA_STRINGS_ONLY) => {
                    rewrite_strings_only(&txn)?;
                    meta.insert(META_SCHEMA, SCHEMA_VERSION).map_err(db_err)?;
                }
                Some(found) => {
                    return Err(StoreError::SchemaVersion {
                        found,
                        expected: SCHEMA_VERSION,
                    });
                }
            }
            let applied = meta.get(META_APPLIED).map_err(db_err)?.map(|g| g.value());
            applied.unwrap_or(0)
        };
        txn.commit().map_err(db_err)?;
        let redb = Committed::open(&db)?;
        Ok(Self {
            db: Arc::new(db),
            options,
            applied: AtomicU64::new(applied),
            durable: Arc::default(),
            writer: Mutex::new(Writer::default()),
            state: RwLock::new(State {
                layers: Layers::default(),
                redb,
            }),
            waiters: Arc::default(),
            publisher: RwLock::new(None),
            #[cfg(test)]
            hold_flushes: Arc::default(),
            #[cfg(test)]
            refuse_flush_threads: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The index of the last entry applied (0 before any).
    #[must_use]
    pub fn applied_index(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    /// The applied index as of the last durable write this store made since it was
    /// opened: every entry applied at or below it survives a crash of the machine. 0
    /// until the first durable write (a synced apply, a persist or a synced restore);
    /// what was in the file at opening does not count, since redb may still hold writes
    /// there that were never synced.
    #[must_use]
    pub fn durable_index(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        // A panic while it was held leaves at most a flush to wait for: nothing torn.
        self.writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read_state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().expect("no panic while the state changes")
    }

    fn write_state(&self) -> RwLockWriteGuard<'_, State> {
        self.state
            .write()
            .expect("no panic while the state changes")
    }

    /// Makes every apply so far durable, whatever [`StoreOptions::sync_writes`] says:
    /// writes the buffered applies to redb and syncs.
    ///
    /// # Errors
    /// [`StoreError`] if the storage engine fails, now or in a flush before.
    pub fn persist(&self) -> Result<(), StoreError> {
        let mut writer = self.lock_writer();
        self.flush(&mut writer, true)
    }

    /// As [`persist`](Self::persist), but on a thread of its own: returns once the
    /// buffered applies are frozen, and applying goes on meanwhile.
    ///
    /// # Errors
    /// [`StoreError`] if a flush before this one failed. A failure of this one is
    /// reported by the next call that waits for it.
    pub fn begin_persist(&self) -> Result<(), StoreError> {
        let mut writer = self.lock_writer();
        self.start_flush(&mut writer, true, None)
    }

    /// Writes the active layer to redb in one transaction, synced if `durable`, here
    /// (after waiting for the flush in progress, if any).
    fn flush(&self, writer: &mut Writer, durable: bool) -> Result<(), StoreError> {
        self.finish_flush(writer)?;
        let upto = self.applied_index();
        let Some(frozen) = self.freeze(durable, false) else {
            return Ok(());
        };
        let result = write_layer(&self.db, &frozen, durable, None);
        drop(frozen);
        if durable && result.is_ok() {
            self.durable.fetch_max(upto, Ordering::AcqRel);
        }
        self.install_flush(result)
    }

    /// Freezes the active layer and writes it to redb in one transaction, synced if
    /// `durable`, on a thread of its own, after the flush before if one runs (and
    /// after waiting here if [`FROZEN_MAX`] flushes run). With `view`, the thread
    /// sends a read transaction opened right after its commit.
    fn start_flush(
        &self,
        writer: &mut Writer,
        durable: bool,
        view: Option<mpsc::Sender<redb::ReadTransaction>>,
    ) -> Result<(), StoreError> {
        self.reap_flush(writer)?;
        if self.read_state().layers.frozen.len() >= FROZEN_MAX {
            self.finish_flush(writer)?;
        }
        // Everything applied so far is in the frozen layer or under it.
        let upto = self.applied_index();
        let Some(frozen) = self.freeze(durable, view.is_some()) else {
            return Ok(());
        };
        let durable_index = durable.then(|| Arc::clone(&self.durable));
        // Shared, so that it can still be waited for if the new thread cannot start.
        let before = Arc::new(Mutex::new(writer.flushing.take()));
        let chained = Arc::clone(&before);
        let db = Arc::clone(&self.db);
        #[cfg(test)]
        let gate = Arc::clone(&self.hold_flushes);
        let thread = self.spawn_flush(move || {
            yield_to_latency();
            let before = take_flush(&chained);
            if let Some(before) = before {
                // A layer never reaches redb without the ones under it.
                before
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
            }
            #[cfg(test)]
            gate.pass();
            let written = write_layer(&db, &frozen, durable, view)?;
            if let Some(index) = durable_index {
                index.fetch_max(upto, Ordering::AcqRel);
            }
            Ok(written)
        });
        match thread {
            Ok(thread) => {
                writer.flushing = Some(thread);
                Ok(())
            }
            Err(e) => {
                // The closure, and the new layer's handle with it, is gone. Once the
                // flush before has finished (whatever it did), every frozen layer goes
                // back under the active one.
                if let Some(before) = take_flush(&before) {
                    let _ = before.join();
                }
                self.install_flush(Err(StoreError::Storage {
                    source: redb::Error::Io(e),
                }))
            }
        }
    }

    /// Starts a flush's thread; in tests, fails to while `refuse_flush_threads` is set.
    fn spawn_flush(
        &self,
        flush: impl FnOnce() -> Result<Committed, StoreError> + Send + 'static,
    ) -> std::io::Result<Flushing> {
        #[cfg(test)]
        if self.refuse_flush_threads.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("flush threads refused"));
        }
        std::thread::Builder::new()
            .name("aegis-flush".into())
            .spawn(flush)
    }

    /// Moves the active layer on top of the frozen ones and returns it, unless there is
    /// nothing a flush would write (`forced`: write even so).
    fn freeze(&self, durable: bool, forced: bool) -> Option<Arc<Layer>> {
        // Sized like the layer it replaces, which the next flush usually matches, so
        // that filling it never rehashes; made before readers are shut out.
        let keys = self.read_state().layers.active.keys();
        let fresh = Layer::with_capacity(keys.min(self.options.buffer_keys_max));
        let mut state = self.write_state();
        assert!(
            state.layers.frozen.len() < FROZEN_MAX,
            "at most {FROZEN_MAX} flushes at a time"
        );
        if state.layers.active.is_empty() && !durable && !forced {
            return None;
        }
        let frozen = Arc::new(std::mem::replace(&mut state.layers.active, fresh));
        state.layers.frozen.push(Arc::clone(&frozen));
        Some(frozen)
    }

    /// Waits for the flushes in progress, if any, and puts what they wrote in place of
    /// the frozen layers. If one failed, the frozen layers go back under the active
    /// one, so no apply is lost and a later flush writes them again.
    fn finish_flush(&self, writer: &mut Writer) -> Result<(), StoreError> {
        let Some(thread) = writer.flushing.take() else {
            return Ok(());
        };
        let result = thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        self.install_flush(result)
    }

    /// Puts what the flushes wrote in place, if they have finished, without waiting.
    fn reap_flush(&self, writer: &mut Writer) -> Result<(), StoreError> {
        if writer
            .flushing
            .as_ref()
            .is_some_and(JoinHandle::is_finished)
        {
            self.finish_flush(writer)?;
        }
        Ok(())
    }

    fn install_flush(&self, result: Result<Committed, StoreError>) -> Result<(), StoreError> {
        let mut state = self.write_state();
        let frozen = std::mem::take(&mut state.layers.frozen);
        assert!(!frozen.is_empty(), "a flush froze a layer");
        match result {
            Ok(committed) => {
                state.redb = committed;
                drop(state);
                release(frozen);
                Ok(())
            }
            Err(e) => {
                // Writing them again later is harmless even where a commit went in.
                let mut restored = Layer::default();
                for layer in frozen {
                    restored.absorb(Arc::try_unwrap(layer).expect("the flush let go of its layer"));
                }
                restored.absorb(std::mem::take(&mut state.layers.active));
                state.layers.active = restored;
                Err(e)
            }
        }
    }

    /// After a run of applies: writes the active layer through if the options say so.
    /// A full layer is flushed beside applying; applying waits only if the flush before
    /// has not finished by the time the active layer holds twice the limit.
    fn flush_if_due(&self, writer: &mut Writer) -> Result<(), StoreError> {
        if self.options.sync_writes {
            return self.flush(writer, true);
        }
        self.reap_flush(writer)?;
        let (keys, bytes) = {
            let active = &self.read_state().layers.active;
            (active.keys(), active.bytes())
        };
        let (keys_max, bytes_max) = (self.options.buffer_keys_max, self.options.buffer_bytes_max);
        let due = keys >= keys_max || bytes >= bytes_max;
        let overdue = keys >= keys_max.saturating_mul(2) || bytes >= bytes_max.saturating_mul(2);
        // Overdue: a second flush waits behind the first, or applying waits.
        if due && (writer.flushing.is_none() || overdue) {
            self.start_flush(writer, false, None)
        } else {
            Ok(())
        }
    }

    /// Applies `command` as log entry `index`, at the entry's time `now_ms`.
    ///
    /// Idempotent by index: an `index` at or below the applied index changes nothing
    /// and returns [`Output::AlreadyApplied`]. Indexes may skip (entries that are not
    /// commands, such as Raft's no-ops, never reach the state machine).
    ///
    /// # Errors
    /// [`StoreError`] if the storage engine fails; the entry is then not applied.
    pub fn apply(&self, index: u64, command: &Command, now_ms: u64) -> Result<Output, StoreError> {
        let mut outputs = self.apply_batch(&[ApplyEntry {
            index,
            command,
            now_ms,
        }])?;
        assert_eq!(outputs.len(), 1, "one output per entry");
        Ok(outputs.pop().expect("checked above"))
    }

    /// Applies several entries, in order.
    ///
    /// Returns one output per entry, as [`apply`](Self::apply) would have. The entries
    /// apply all together, except that a purge ([`Command::PurgeExpired`]) after other
    /// changes starts a new group: on an error, the groups before the failing one stay
    /// applied and nothing after is.
    ///
    /// # Errors
    /// [`StoreError`] if the storage engine fails.
    ///
    /// # Panics
    /// If an index is zero.
    pub fn apply_batch(&self, entries: &[ApplyEntry<'_>]) -> Result<Vec<Output>, StoreError> {
        let mut writer = self.lock_writer();
        let mut outputs = Vec::with_capacity(entries.len());
        let mut rest = entries;
        while !rest.is_empty() {
            let taken = self.apply_run(&mut writer, rest, &mut outputs)?;
            assert!(taken > 0, "every run applies at least one entry");
            rest = &rest[taken..];
        }
        debug_assert_eq!(outputs.len(), entries.len());
        self.flush_if_due(&mut writer)?;
        Ok(outputs)
    }

    /// Watches `keys` until the returned watch is dropped: its [`KeyWatch::changed`]
    /// completes once any of them is given a value by an apply (or everything may have
    /// changed, by a restore) after this call. What a blocked `BLPOP` waits on between
    /// looks at its keys.
    #[must_use]
    pub fn watch_keys(&self, keys: &[Vec<u8>]) -> KeyWatch {
        let watch = KeyWatch {
            waiters: Arc::clone(&self.waiters),
            id: self.waiters.next_id.fetch_add(1, Ordering::Relaxed),
            keys: keys.to_vec(),
            notify: Arc::new(tokio::sync::Notify::new()),
        };
        let mut by_key = self.waiters.lock();
        for key in &watch.keys {
            by_key
                .entry(key.clone())
                .or_default()
                .push((watch.id, Arc::clone(&watch.notify)));
        }
        self.waiters.count.fetch_add(1, Ordering::Release);
        watch
    }

    /// Has `publisher` deliver every `PUBLISH` applied from now on (a server sets its
    /// own). Without one, a `PUBLISH` reaches no one.
    pub fn set_publisher(&self, publisher: Publisher) {
        *self
            .publisher
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(publisher);
    }

    /// Applies entries from the front of `entries` into one new layer, which then goes on
    /// top of the active layer; returns how many it took. A run stops before a purge
    /// that follows changes, and a purge that starts a run first flushes the layers, so
    /// it reads the expiry index of the whole state.
    fn apply_run(
        &self,
        writer: &mut Writer,
        entries: &[ApplyEntry<'_>],
        outputs: &mut Vec<Output>,
    ) -> Result<usize, StoreError> {
        let starts_with_purge =
            reads_flushed_store(entries[0].command) && entries[0].index > self.applied_index();
        if starts_with_purge {
            self.finish_flush(writer)?;
            if self.read_state().layers.active.keys() > 0 {
                self.flush(writer, false)?;
            }
        }
        let mut run = Layer::with_capacity(entries.len());
        let mut applied = self.applied_index();
        let mut taken = 0;
        {
            let state = self.read_state();
            let publisher = self
                .publisher
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut view = View {
                run: &mut run,
                below: &state.layers,
                kv: &state.redb.kv,
                expiry: &state.redb.expiry,
                publisher: publisher.as_ref(),
            };
            for entry in entries {
                assert!(entry.index > 0, "log indexes start at 1");
                if entry.index <= applied {
                    outputs.push(Output::AlreadyApplied {
                        applied_index: applied,
                    });
                    taken += 1;
                    continue;
                }
                let is_purge = reads_flushed_store(entry.command);
                if is_purge
                    && (view.run.keys() > 0
                        || view.below.active.keys() > 0
                        || !view.below.frozen.is_empty())
                {
                    debug_assert!(taken > 0, "a run that starts with a purge flushed first");
                    break;
                }
                outputs.push(execute(&mut view, entry.command, entry.now_ms)?);
                applied = entry.index;
                view.run.set_applied(applied);
                taken += 1;
            }
        }
        if !run.is_empty() {
            // Whoever waits on a key this run gave a value to looks again, once the run
            // is visible: a look before that would find nothing, and wait with no wake.
            let given: Vec<Vec<u8>> = if self.waiters.count.load(Ordering::Acquire) > 0 {
                run.iter()
                    .filter(|(_, r)| r.is_some())
                    .map(|(k, _)| k.to_vec())
                    .collect()
            } else {
                Vec::new()
            };
            self.write_state().layers.active.absorb(run);
            self.applied.store(applied, Ordering::Release);
            if !given.is_empty() {
                self.waiters.wake(given.iter().map(Vec::as_slice));
            }
        }
        Ok(taken)
    }

    /// Records that entry `index` was applied without changing any key (a Raft no-op or
    /// membership entry). Returns `false` if `index` was already applied.
    ///
    /// # Errors
    /// [`StoreError`] if the storage engine fails.
    pub fn apply_noop(&self, index: u64) -> Result<bool, StoreError> {
        assert!(index > 0, "log indexes start at 1");
        let mut writer = self.lock_writer();
        if index <= self.applied_index() {
            return Ok(false);
        }
        self.write_state().layers.active.set_applied(index);
        self.applied.store(index, Ordering::Release);
        self.flush_if_due(&mut writer)?;
        Ok(true)
    }

    /// The string value of `key` at time `now_ms`, hiding an expired key (and, as `MGET`
    /// does, a key of another kind).
    ///
    /// # Errors
    /// [`StoreError`] if the storage engine fails.
    pub fn get(&self, key: &[u8], now_ms: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.mget(&[key], now_ms)?.pop().flatten())
    }

    /// The values of `keys` at time `now_ms`, in order, from one consistent view.
    ///
    /// # Errors
    /// [`StoreError`] if the storage engine fails.
    pub fn mget<K: AsRef<[u8]>>(
        &self,
        keys: &[K],
        now_ms: u64,
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.mget_bounded(keys, now_ms, usize::MAX)
    }

    /// As [`mget`](Self::mget), but gives up once the values found add up to more than
    /// `bytes_max` (a request naming one large key many times must not exhaust memory).
    ///
    /// # Errors
    /// [`StoreError::ReadTooLarge`] past the budget; [`StoreError`] if the engine fails.
    pub fn mget_bounded<K: AsRef<[u8]>>(
        &self,
        keys: &[K],
        now_ms: u64,
        bytes_max: usize,
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let state = self.read_state();
        let mut total: usize = 0;
        let values = keys
            .iter()
            .map(|key| {
                // As in Redis, a key of another kind reads as one without a value.
                match live_value(&state, key.as_ref(), now_ms, &mut total, bytes_max) {
                    Err(StoreError::WrongKind { .. }) => Ok(None),
                    read => read,
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        debug_assert_eq!(values.len(), keys.len());
        Ok(values)
    }

    /// The live string at `key` at `now_ms`, as [`Self::mget_bounded`] reads one key.
    ///
    /// # Errors
    /// [`StoreError::ReadTooLarge`] if the value is longer than `bytes_max`;
    /// [`StoreError::WrongKind`] if the key holds another kind of value;
    /// [`StoreError`] if the storage engine fails.
    pub fn get_bounded(
        &self,
        key: &[u8],
        now_ms: u64,
        bytes_max: usize,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        live_value(&self.read_state(), key, now_ms, &mut 0, bytes_max)
    }

    /// How many of `keys` hold a live value at `now_ms` (a repeated key counts each time).
    ///
    /// # Errors
    /// [`StoreError`] if the storage engine fails.
    pub fn exists<K: AsRef<[u8]>>(&self, keys: &[K], now_ms: u64) -> Result<u64, StoreError> {
        let state = self.read_state();
        let (layers, kv) = (&state.layers, &state.redb.kv);
        let mut count = 0;
        for key in keys {
            let live = match layers.get(key.as_ref()) {
                Some(state) => state.is_some_and(|r| !is_expired(r.expire_at_ms, now_ms)),
                None => match kv.get(key.as_ref()).map_err(db_err)? {
                    Some(guard) => !record_expired(guard.value(), now_ms)?,
                    None => false,
                },
            };
            count += u64::from(live);
        }
        Ok(count)
    }

    /// Whether `key` holds a live value at `now_ms`, and until when (`TTL`, `PTTL`,
    /// `EXPIRETIME`, `TYPE`).
    ///
    /// # Errors
    /// [`StoreError`] if the storage engine fails.
    pub fn key_expiry(&self, key: &[u8], now_ms: u64) -> Result<KeyExpiry, StoreError> {
        let state = self.read_state();
        let at = match state.layers.get(key) {
            Some(record) => record.map(|r| r.expire_at_ms),
            None => match state.redb.kv.get(key).map_err(db_err)? {
                Some(guard) => Some(record_expiry(guard.value())?),
                None => None,
            },
        };
        Ok(KeyExpiry::of(at, now_ms))
    }

    /// The live value of `key` at `now_ms` and its expiry, if it has one, read together
    /// (`WATCH`).
    ///
    /// # Errors
    /// [`StoreError`] if the storage engine fails.
    pub fn live_record(&self, key: &[u8], now_ms: u64) -> Result<Option<Held>, StoreError> {
        Ok(live_in(&self.read_state(), key, now_ms)?.map(Record::held))
    }

    /// The kind of value `key` holds at `now_ms`, if it holds a live one (`TYPE`).
    ///
    /// # Errors
    /// [`StoreError`] if the storage engine fails.
    pub fn kind(&self, key: &[u8], now_ms: u64) -> Result<Option<ValueKind>, StoreError> {
        let state = self.read_state();
        Ok(match state.layers.get(key) {
            Some(record) => record
                .filter(|r| !is_expired(r.expire_at_ms, now_ms))
                .map(|r| r.kind),
            None => match state.redb.kv.get(key).map_err(db_err)? {
                Some(guard) if !record_expired(guard.value(), now_ms)? => {
                    Some(record_body(guard.value())?.0)
                }
                _ => None,
            },
        })
    }

    /// The answer to `read` for the hash `key` holds at `now_ms` (a key without a live
    /// value reads as an empty hash), as [`crate::hash::answer`] gives it.
    ///
    /// # Errors
    /// [`StoreError::WrongKind`] if the key holds another kind of value;
    /// [`StoreError::ReadTooLarge`] if the values answered take more than `bytes_max`;
    /// [`StoreError`] if the storage engine fails.
    pub fn read_hash(
        &self,
        key: &[u8],
        read: &HashRead,
        now_ms: u64,
        bytes_max: usize,
    ) -> Result<Output, StoreError> {
        self.read_collection(key, now_ms, bytes_max, |live| hash_answer(live, read))
    }

    /// The answer to `read` for the set `key` holds at `now_ms` (a key without a live
    /// value reads as an empty set), as [`crate::set::answer`] gives it.
    ///
    /// # Errors
    /// As [`Self::read_hash`].
    pub fn read_set(
        &self,
        key: &[u8],
        read: &SetRead,
        now_ms: u64,
        bytes_max: usize,
    ) -> Result<Output, StoreError> {
        self.read_collection(key, now_ms, bytes_max, |live| set_answer(live, read))
    }

    /// What `answer` makes of the live record at `key`, unless it holds another kind of
    /// value or the answer's values take more than `bytes_max`.
    fn read_collection(
        &self,
        key: &[u8],
        now_ms: u64,
        bytes_max: usize,
        answer: impl FnOnce(Option<Record>) -> Answered,
    ) -> Result<Output, StoreError> {
        let live = live_in(&self.read_state(), key, now_ms)?;
        let output = answer(live)?.map_err(|found| StoreError::WrongKind { found })?;
        within(output, bytes_max)
    }

    /// The answer to `read` for the sorted set `key` holds at `now_ms` (a key without a
    /// live value reads as an empty one), as [`crate::zset::answer`] gives it.
    ///
    /// # Errors
    /// As [`Self::read_hash`].
    pub fn read_zset(
        &self,
        key: &[u8],
        read: &ZSetRead,
        now_ms: u64,
        bytes_max: usize,
    ) -> Result<Output, StoreError> {
        self.read_collection(key, now_ms, bytes_max, |live| zset_answer(live, read))
    }

    /// The answer to `read` for the stream `key` holds at `now_ms` (a key without a
    /// live value reads as no stream), as [`StreamRead`] describes.
    ///
    /// # Errors
    /// As [`Self::read_hash`].
    pub fn read_stream(
        &self,
        key: &[u8],
        read: &StreamRead,
        now_ms: u64,
        bytes_max: usize,
    ) -> Result<Output, StoreError> {
        // Read where it lies: a stream's reads look at little of it.
        let output = with_live(&self.read_state(), key, now_ms, |live| {
            stream_answer(live, read, now_ms)
        })?
        .map_err(|found| StoreError::WrongKind { found })?;
        within(output, bytes_max)
    }

    /// `PFCOUNT keys` at `now_ms`, reading each value where it lies: [`Output::Integer`],
    /// or the answer for a key that holds no HyperLogLog. The count is not cached in the
    /// value, as Redis caches it: a read changes nothing.
    ///
    /// # Errors
    /// [`StoreError`] if the storage engine fails or a record is corrupt.
    pub fn pf_count(&self, keys: &[Vec<u8>], now_ms: u64) -> Result<Output, StoreError> {
        let state = self.read_state();
        pf_count(keys, |key, count| {
            with_live(&state, key, now_ms, |live| {
                Ok(live.map_or(Ok(()), &mut *count))
            })
        })
    }

    /// Whether `key` holds a stream with the group `group` at `now_ms`, reading its header
    /// and groups alone.
    ///
    /// # Errors
    /// [`StoreError::WrongKind`] if the key holds another kind of value; [`StoreError`]
    /// if the storage engine fails or the record is corrupt.
    pub fn stream_has_group(
        &self,
        key: &[u8],
        group: &[u8],
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        with_live(&self.read_state(), key, now_ms, |live| match live {
            None => Ok(false),
            Some((ValueKind::Stream, bytes)) => stream::has_group(bytes, group).map_err(corrupt),
            Some((found, _)) => Err(StoreError::WrongKind { found }),
        })
    }

    /// Whether the stream at `key` has given an ID past the last its group `group` has
    /// delivered, so that an `XREADGROUP ... >` may find something; also `true` if the
    /// key holds no stream or the stream no such group (the read answers the error).
    ///
    /// # Errors
    /// [`StoreError`] if the storage engine fails or the record is corrupt.
    pub fn stream_group_behind(
        &self,
        key: &[u8],
        group: &[u8],
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        with_live(&self.read_state(), key, now_ms, |live| match live {
            Some((ValueKind::Stream, bytes)) => stream::group_behind(bytes, group).map_err(corrupt),
            _ => Ok(true),
        })
    }

    /// `XREAD`: for each key whose stream holds entries after its ID at `now_ms`, those
    /// entries, at most `count` from each unless it is 0, read from one consistent view
    /// ([`Output::Streams`]).
    ///
    /// # Errors
    /// As [`Self::read_hash`], for any of the keys.
    pub fn read_streams(
        &self,
        after: &[(Vec<u8>, StreamId)],
        count: u64,
        now_ms: u64,
        bytes_max: usize,
    ) -> Result<Output, StoreError> {
        let state = self.read_state();
        let output = streams_after(after, |key, id| {
            with_live(&state, key, now_ms, |live| entries_after(live, id, count))
        })?
        .map_err(|found| StoreError::WrongKind { found })?;
        within(output, bytes_max)
    }

    /// The answer to `read` for the list `key` holds at `now_ms` (a key without a live
    /// value reads as an empty list), as [`crate::list::answer`] gives it.
    ///
    /// # Errors
    /// As [`Self::read_hash`].
    pub fn read_list(
        &self,
        key: &[u8],
        read: &ListRead,
        now_ms: u64,
        bytes_max: usize,
    ) -> Result<Output, StoreError> {
        self.read_collection(key, now_ms, bytes_max, |live| list_answer(live, read))
    }

    /// The members of `op` over the sets at `keys` at `now_ms`, read from one consistent
    /// view ([`crate::set::combine`]; `SINTER`, `SUNION`, `SDIFF`), as
    /// [`Output::Values`]; with `card_limit`, only how many there are, at most the
    /// limit unless it is 0, as [`Output::Count`] (`SINTERCARD`).
    ///
    /// # Errors
    /// As [`Self::read_hash`], for any of the keys.
    pub fn read_sets(
        &self,
        op: SetOp,
        keys: &[Vec<u8>],
        card_limit: Option<u64>,
        now_ms: u64,
        bytes_max: usize,
    ) -> Result<Output, StoreError> {
        let sets = {
            let state = self.read_state();
            sources(keys, |key| live_in(&state, key, now_ms), set_source)?
                .map_err(|found| StoreError::WrongKind { found })?
        };
        match card_limit {
            Some(limit) => Ok(Output::Count(inter_card(&sets, limit))),
            None => within(members_output(&set::combine(op, &sets)), bytes_max),
        }
    }

    /// `ZUNION`, `ZINTER`, `ZDIFF` over the keys at `now_ms`, read from one consistent
    /// view: the members of [`crate::zset::combine`], with their scores if
    /// `with_scores`; with `card_limit`, only how many there are, at most the limit
    /// unless it is 0, as [`Output::Count`] (`ZINTERCARD`).
    ///
    /// # Errors
    /// As [`Self::read_hash`], for any of the keys (a set is read as members scored 1).
    #[allow(clippy::too_many_arguments)]
    pub fn read_zsets(
        &self,
        op: SetOp,
        keys: &[Vec<u8>],
        weights: &[Score],
        aggregate: Aggregate,
        with_scores: bool,
        card_limit: Option<u64>,
        now_ms: u64,
        bytes_max: usize,
    ) -> Result<Output, StoreError> {
        let sources = {
            let state = self.read_state();
            sources(keys, |key| live_in(&state, key, now_ms), zset_source)?
                .map_err(|found| StoreError::WrongKind { found })?
        };
        let output = zcombine_output(op, &sources, weights, aggregate, with_scores, card_limit);
        within(output, bytes_max)
    }

    /// The keys holding a live value at `now_ms`, in byte order, that come after `after`
    /// (from the first key if `None`), looking at no more than `examine_max` stored keys
    /// (at least one), with the last key looked at ([`ScanPage`]; `SCAN`, `KEYS`).
    ///
    /// A key that holds a live value from the first call to the last is returned exactly
    /// once by a sequence of calls that each go on from where the last stopped.
    ///
    /// # Errors
    /// [`StoreError`] if the storage engine fails.
    pub fn scan_keys(
        &self,
        after: Option<&[u8]>,
        examine_max: usize,
        now_ms: u64,
    ) -> Result<ScanPage, StoreError> {
        let examine_max = examine_max.max(1);
        let state = self.read_state();
        let (layers, kv) = (&state.layers, &state.redb.kv);
        let past = |key: &[u8]| after.is_none_or(|after| key > after);
        // The layers' newest states, in key order; they decide for the keys they hold.
        // Each with the kind of its live value, if it holds one.
        let mut layered: Vec<(&[u8], Option<ValueKind>)> = layers
            .changes()
            .filter(|(key, _)| past(key))
            .map(|(key, record)| {
                let live = record.filter(|r| !is_expired(r.expire_at_ms, now_ms));
                (key, live.map(|r| r.kind))
            })
            .collect();
        layered.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut layered = layered.into_iter().peekable();
        let range = match after {
            Some(after) => kv.range::<&[u8]>((Bound::Excluded(after), Bound::Unbounded)),
            None => kv.range::<&[u8]>(..),
        }
        .map_err(db_err)?;
        let mut stored = range.peekable();
        let mut keys = Vec::new();
        let mut kinds = Vec::new();
        let mut examined = 0;
        let mut last: Option<Vec<u8>> = None;
        loop {
            // The next stored key the layers do not decide for.
            let next_stored = loop {
                match stored.peek() {
                    None => break None,
                    Some(Err(_)) => {
                        let Some(Err(e)) = stored.next() else {
                            unreachable!("peeked an error")
                        };
                        return Err(db_err(e));
                    }
                    Some(Ok((key, _))) if layers.hides(key.value()) => {
                        stored.next();
                    }
                    Some(Ok((key, _))) => break Some(key.value().to_vec()),
                }
            };
            let take_layered = match (layered.peek(), &next_stored) {
                (None, None) => {
                    return Ok(ScanPage {
                        keys,
                        kinds,
                        last: None,
                    });
                }
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some((layer_key, _)), Some(stored_key)) => *layer_key < stored_key.as_slice(),
            };
            if examined == examine_max {
                return Ok(ScanPage { keys, kinds, last });
            }
            examined += 1;
            let (key, live) = if take_layered {
                let (key, live) = layered.next().expect("peeked");
                (key.to_vec(), live)
            } else {
                let (_, value) = stored.next().expect("peeked").map_err(db_err)?;
                let bytes = value.value();
                let live = if record_expired(bytes, now_ms)? {
                    None
                } else {
                    Some(record_body(bytes)?.0)
                };
                (next_stored.expect("checked above"), live)
            };
            if let Some(kind) = live {
                keys.push(key.clone());
                kinds.push(kind);
            }
            last = Some(key);
        }
    }

    /// The earliest expiry of any key that expires, live or not yet purged.
    ///
    /// A leader proposes [`Command::PurgeExpired`] when this is before its clock.
    ///
    /// # Errors
    /// [`StoreError`] if the storage engine fails.
    pub fn next_expiry_ms(&self) -> Result<Option<u64>, StoreError> {
        let state = self.read_state();
        let (layers, expiry) = (&state.layers, &state.redb.expiry);
        // redb's index still lists keys a layer has replaced or removed: skip those.
        let mut stored = None;
        for item in expiry.iter().map_err(db_err)? {
            let (entry, _) = item.map_err(db_err)?;
            let (at, key) = entry.value();
            if !layers.hides(key) {
                stored = Some(at);
                break;
            }
        }
        Ok(match (stored, layers.first_expiry()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// The number of stored keys, including expired keys not yet purged.
    ///
    /// # Errors
    /// [`StoreError`] if the storage engine fails.
    pub fn key_count(&self) -> Result<u64, StoreError> {
        Ok(self.key_counts()?.keys)
    }

    /// How many keys are stored, and how many of them expire, including expired keys
    /// not yet purged (`INFO keyspace`).
    ///
    /// # Errors
    /// [`StoreError`] if the storage engine fails.
    pub fn key_counts(&self) -> Result<KeyCounts, StoreError> {
        let state = self.read_state();
        let (layers, kv) = (&state.layers, &state.redb.kv);
        let mut counts = KeyCounts {
            keys: kv.len().map_err(db_err)?,
            expiring: state.redb.expiry.len().map_err(db_err)?,
        };
        let expires = |at: u64| u64::from(at != NO_EXPIRY);
        for (key, record) in layers.changes() {
            let stored = match kv.get(key).map_err(db_err)? {
                Some(guard) => Some(record_expiry(guard.value())?),
                None => None,
            };
            let now = record.map(|r| r.expire_at_ms);
            counts.keys = counts.keys + u64::from(now.is_some()) - u64::from(stored.is_some());
            counts.expiring = counts.expiring + now.map_or(0, expires) - stored.map_or(0, expires);
        }
        debug_assert!(counts.expiring <= counts.keys);
        Ok(counts)
    }

    /// Starts a snapshot of the current state as a stream of chunks.
    ///
    /// The buffered applies are written to redb first; the stream then reads from one
    /// consistent view of redb (applies may continue meanwhile). Each chunk's payload
    /// stays within `chunk_bytes`, except that a single entry larger than that travels
    /// alone in its chunk. See [`crate::snapshot`] for the format.
    ///
    /// # Errors
    /// [`StoreError`] if the storage engine fails to write the buffer or open the view.
    pub fn snapshot(&self, chunk_bytes: usize) -> Result<SnapshotStream, StoreError> {
        let pending = self.begin_snapshot(chunk_bytes)?;
        // Waited for here, so a failure of the write is this call's error.
        self.finish_flush(&mut self.lock_writer())?;
        pending.wait()
    }

    /// Fixes the state as of now for a snapshot, and makes it durable, without waiting:
    /// the buffered applies are written and synced on a thread of their own, and
    /// [`PendingSnapshot::wait`] returns the stream once they are in redb. Applies may
    /// go on meanwhile; they are not in the snapshot.
    ///
    /// # Errors
    /// [`StoreError`] if a flush before this one failed.
    ///
    /// # Panics
    /// If `chunk_bytes` is zero.
    pub fn begin_snapshot(&self, chunk_bytes: usize) -> Result<PendingSnapshot, StoreError> {
        assert!(chunk_bytes > 0, "snapshot chunks need room for entries");
        let mut writer = self.lock_writer();
        let (send, view) = mpsc::channel();
        self.start_flush(&mut writer, true, Some(send))?;
        Ok(PendingSnapshot {
            view,
            applied_index: self.applied_index(),
            chunk_bytes,
        })
    }

    /// Replaces the whole state with a snapshot, atomically.
    ///
    /// Every chunk is checked (frame, checksum, sequence, counts, key order) before the
    /// write transaction commits; on any error nothing changes.
    ///
    /// # Errors
    /// [`StoreError::SnapshotCorrupt`], [`StoreError::SnapshotVersion`] or
    /// [`StoreError::SnapshotIncomplete`] for a bad stream; [`StoreError::Storage`] if the
    /// engine fails.
    pub fn restore<I>(&self, chunks: I) -> Result<RestoreSummary, StoreError>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let mut writer = self.lock_writer();
        // The flush's failure does not matter: everything it wrote is replaced.
        let _ = self.finish_flush(&mut writer);
        // Readers wait for the new state rather than see it mixed with the old layers.
        let mut state = self.write_state();
        let mut txn = self.db.begin_write().map_err(db_err)?;
        txn.set_durability(if self.options.sync_writes {
            Durability::Immediate
        } else {
            Durability::None
        })
        .map_err(db_err)?;
        txn.delete_table(KV).map_err(db_err)?;
        txn.delete_table(EXPIRY).map_err(db_err)?;
        let mut checker = SnapshotChecker::default();
        {
            let mut tables = Tables {
                kv: txn.open_table(KV).map_err(db_err)?,
                expiry: txn.open_table(EXPIRY).map_err(db_err)?,
            };
            for chunk in chunks {
                if let Chunk::Entries(entries) = checker.feed(chunk.as_ref())? {
                    for entry in entries {
                        let record = Record {
                            expire_at_ms: entry.expire_at_ms,
                            kind: entry.kind,
                            value: entry.value,
                        };
                        tables.put(&entry.key, &record)?;
                    }
                }
            }
        }
        let (applied_index, entries) = checker.finish()?;
        txn.open_table(META)
            .map_err(db_err)?
            .insert(META_APPLIED, applied_index)
            .map_err(db_err)?;
        txn.commit().map_err(db_err)?;
        state.layers = Layers::default();
        state.redb = Committed::open(&self.db)?;
        self.applied.store(applied_index, Ordering::Release);
        // Unsynced, the state replaced is what a crash leaves, and its index is unknown.
        let durable = if self.options.sync_writes {
            applied_index
        } else {
            0
        };
        self.durable.store(durable, Ordering::Release);
        drop(state);
        debug_assert_eq!(self.key_count().ok(), Some(entries));
        self.waiters.wake_all();
        Ok(RestoreSummary {
            applied_index,
            entries,
        })
    }
}

/// Entries applied between two durable points of a store that does not sync every
/// apply, by default: bounds what a log replays after a crash.
pub(crate) const APPLIES_PER_PERSIST: u64 = 65_536;

/// The most bytes a script's reads may answer in one run.
const SCRIPT_READ_BYTES_MAX: u64 = 64 << 20;

/// Starts a durable write of a store ([`KvStateMachine::begin_persist`]) every so many
/// applied entries, for a replicator whose log is what makes applies durable.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PersistEvery {
    every: u64,
    since: u64,
}

impl PersistEvery {
    /// A schedule of one persist every `every` entries (positive).
    pub(crate) fn new(every: u64) -> Self {
        assert!(every > 0, "a persist every 0 entries");
        Self { every, since: 0 }
    }

    /// Counts `applied` entries, and starts a persist of `store` once `every` have
    /// accumulated. Written and synced beside applying: a failure to start only
    /// lengthens the replay after a crash, and a failure of the write itself fails the
    /// next apply.
    pub(crate) fn applied(&mut self, store: &KvStateMachine, applied: u64) {
        self.since += applied;
        if self.since >= self.every {
            self.since = 0;
            let _ = store.begin_persist();
        }
    }

    /// Starts counting again, after the store was made durable some other way.
    pub(crate) fn reset(&mut self) {
        self.since = 0;
    }
}

/// The flush a new one waits for, taken from the slot both share.
fn take_flush(slot: &Mutex<Option<Flushing>>) -> Option<Flushing> {
    slot.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
}

/// Lowers the calling thread's priority, so that a flush, which only has to finish
/// before the next buffer fills, yields the CPU to the threads that answer clients.
fn yield_to_latency() {
    // On Linux the call names one thread; elsewhere it would name the whole process.
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(None, 10) {
        tracing::debug!(error = %e, "could not lower a flush thread's priority");
    }
}

/// Frees `layers`: those holding many keys on a thread of their own, since freeing a
/// full layer takes milliseconds, which applying need not wait for; a few keys (an
/// apply written through, say) here, where that costs less than starting a thread. If
/// no thread starts, they are freed here too.
fn release(layers: Vec<Arc<Layer>>) {
    /// Below this many keys, freeing costs less than starting a thread.
    const RELEASE_APART_KEYS: usize = 4096;
    if layers.iter().map(|layer| layer.keys()).sum::<usize>() < RELEASE_APART_KEYS {
        return;
    }
    let _ = std::thread::Builder::new()
        .name("aegis-release".into())
        .spawn(move || drop(layers));
}

/// Writes `layer` to redb in one transaction, synced if `durable`; then sends `view`
/// a read transaction of the result, and opens redb as of this commit for readers.
fn write_layer(
    db: &Database,
    layer: &Layer,
    durable: bool,
    view: Option<mpsc::Sender<redb::ReadTransaction>>,
) -> Result<Committed, StoreError> {
    commit(db, layer, durable)?;
    if let Some(view) = view {
        // Nothing else commits before the flush is waited for, so the view holds
        // exactly this layer's state. A snapshot given up meanwhile has gone: fine.
        let _ = view.send(db.begin_read().map_err(db_err)?);
    }
    Committed::open(db)
}

fn commit(db: &Database, layer: &Layer, durable: bool) -> Result<(), StoreError> {
    let mut txn = db.begin_write().map_err(db_err)?;
    txn.set_durability(if durable {
        Durability::Immediate
    } else {
        Durability::None
    })
    .map_err(db_err)?;
    {
        let mut tables = Tables {
            kv: txn.open_table(KV).map_err(db_err)?,
            expiry: txn.open_table(EXPIRY).map_err(db_err)?,
        };
        for (key, record) in layer.sorted_changes() {
            match record {
                Some(r) => tables.put(key, r)?,
                None => {
                    tables.remove(key)?;
                }
            }
        }
    }
    if let Some(applied) = layer.applied() {
        let mut meta = txn.open_table(META).map_err(db_err)?;
        debug_assert!(
            meta.get(META_APPLIED)
                .ok()
                .flatten()
                .is_none_or(|g| g.value() < applied),
            "the buffered applies follow the stored ones"
        );
        meta.insert(META_APPLIED, applied).map_err(db_err)?;
    }
    txn.commit().map_err(db_err)
}

/// Rewrites a database of the first layout (strings only, `expire_at_ms | value` in the
/// table `kv`) into the table of records, in the caller's transaction.
fn rewrite_strings_only(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    {
        let old = txn.open_table(KV_STRINGS_ONLY).map_err(db_err)?;
        let mut new = txn.open_table(KV).map_err(db_err)?;
        for item in old.iter().map_err(db_err)? {
            let (key, bytes) = item.map_err(db_err)?;
            let bytes = bytes.value();
            let record = encode_record(record_expiry(bytes)?, ValueKind::String, &bytes[8..]);
            new.insert(key.value(), record.as_slice()).map_err(db_err)?;
        }
    }
    txn.delete_table(KV_STRINGS_ONLY).map_err(db_err)?;
    Ok(())
}

/// A stored collection that does not decode.
fn corrupt(reason: &'static str) -> StoreError {
    StoreError::CorruptRecord { reason }
}

/// The answer to a command made for one kind of value, on a key that holds another.
fn wrong_kind() -> Output {
    Output::Rejected(Rejection::WrongType)
}

/// Whether `command` reads redb's tables for the whole state, so that a run of applies
/// must start with it, on a flushed store: a purge reads the expiry index, a FLUSHALL
/// every key.
fn reads_flushed_store(command: &Command) -> bool {
    matches!(command, Command::PurgeExpired { .. } | Command::FlushAll)
}

/// The live record at `key` at `now_ms` in `state`.
/// What `read` makes of the live value of `key` at `now_ms` (its kind and bytes, `None`
/// without one), read where it lies, without a copy.
fn with_live<R>(
    state: &State,
    key: &[u8],
    now_ms: u64,
    read: impl FnOnce(Option<(ValueKind, &[u8])>) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    if let Some(record) = state.layers.get(key) {
        let live = record.filter(|r| !is_expired(r.expire_at_ms, now_ms));
        return read(live.map(|r| (r.kind, r.value.as_slice())));
    }
    match state.redb.kv.get(key).map_err(db_err)? {
        Some(guard) if !record_expired(guard.value(), now_ms)? => {
            read(Some(record_body(guard.value())?))
        }
        _ => read(None),
    }
}

fn live_in(state: &State, key: &[u8], now_ms: u64) -> Result<Option<Record>, StoreError> {
    let record = match state.layers.get(key) {
        Some(record) => record.cloned(),
        None => match state.redb.kv.get(key).map_err(db_err)? {
            Some(guard) => Some(decode_record(guard.value())?),
            None => None,
        },
    };
    Ok(record.filter(|r| !is_expired(r.expire_at_ms, now_ms)))
}

/// `output`, unless the values it carries take more than `bytes_max`.
fn within(output: Output, bytes_max: usize) -> Result<Output, StoreError> {
    if hash::answer_bytes(&output) > bytes_max as u64 {
        return Err(StoreError::ReadTooLarge { bytes_max });
    }
    Ok(output)
}

/// `value` if it is a string's; [`StoreError::WrongKind`] if not.
fn string_value(kind: ValueKind, value: &[u8]) -> Result<&[u8], StoreError> {
    match kind {
        ValueKind::String => Ok(value),
        found => Err(StoreError::WrongKind { found }),
    }
}

/// The live string at `key` at `now_ms` in `state`, adding its length to `total`, which
/// may not pass `bytes_max`; [`StoreError::WrongKind`] if the key holds another kind.
fn live_value(
    state: &State,
    key: &[u8],
    now_ms: u64,
    total: &mut usize,
    bytes_max: usize,
) -> Result<Option<Vec<u8>>, StoreError> {
    let mut take = |value: &[u8]| {
        *total = total.saturating_add(value.len());
        if *total > bytes_max {
            return Err(StoreError::ReadTooLarge { bytes_max });
        }
        Ok(Some(value.to_vec()))
    };
    match state.layers.get(key) {
        Some(Some(record)) if !is_expired(record.expire_at_ms, now_ms) => {
            take(string_value(record.kind, &record.value)?)
        }
        Some(_) => Ok(None),
        None => match state.redb.kv.get(key).map_err(db_err)? {
            Some(guard) => {
                let bytes = guard.value();
                if record_expired(bytes, now_ms)? {
                    Ok(None)
                } else {
                    let (kind, value) = record_body(bytes)?;
                    take(string_value(kind, value)?)
                }
            }
            None => Ok(None),
        },
    }
}

/// Runs one write.
fn execute(view: &mut View<'_>, command: &Command, now_ms: u64) -> Result<Output, StoreError> {
    match command {
        Command::Set {
            key,
            value,
            expire_at_ms,
            condition,
        } => {
            let write = match condition {
                SetCondition::Always => true,
                SetCondition::IfAbsent => !view.is_live(key, now_ms)?,
                SetCondition::IfPresent => view.is_live(key, now_ms)?,
            };
            if !write {
                return Ok(Output::NotSet);
            }
            view.put(key, expire_at_ms.unwrap_or(NO_EXPIRY), value);
            Ok(Output::Ok)
        }
        Command::SetWith {
            key,
            value,
            expiry,
            condition,
            get,
        } => {
            let old = view.load_live(key, now_ms)?;
            // `SET ... GET` reads the old value as a string; a plain `SET` replaces a
            // value of any kind.
            if *get && old.as_ref().is_some_and(|r| r.kind != ValueKind::String) {
                return Ok(wrong_kind());
            }
            let write = match condition {
                SetCondition::Always => true,
                SetCondition::IfAbsent => old.is_none(),
                SetCondition::IfPresent => old.is_some(),
            };
            if write {
                let expire_at_ms = match expiry {
                    Expiry::Clear => NO_EXPIRY,
                    Expiry::At(at) => *at,
                    Expiry::Keep => old.as_ref().map_or(NO_EXPIRY, |r| r.expire_at_ms),
                };
                view.put(key, expire_at_ms, value);
            }
            Ok(match (get, write) {
                (true, _) => Output::Value(old.map(|r| r.value)),
                (false, true) => Output::Ok,
                (false, false) => Output::NotSet,
            })
        }
        Command::Expire {
            key,
            expire_at_ms,
            condition,
        } => {
            let Some(record) = view.load_live(key, now_ms)? else {
                return Ok(Output::Changed(false));
            };
            let current = (record.expire_at_ms != NO_EXPIRY).then_some(record.expire_at_ms);
            if !condition.allows(current, *expire_at_ms) {
                return Ok(Output::Changed(false));
            }
            view.expire(key, record, *expire_at_ms, now_ms)?;
            Ok(Output::Changed(true))
        }
        Command::GetDel { key } => {
            let old = match view.load_string(key, now_ms)? {
                Ok(old) => old,
                Err(wrong) => return Ok(wrong),
            };
            view.remove(key)?;
            Ok(Output::Value(old.map(|r| r.value)))
        }
        Command::GetEx { key, expiry } => {
            let record = match view.load_string(key, now_ms)? {
                Ok(Some(record)) => record,
                Ok(None) => return Ok(Output::Value(None)),
                Err(wrong) => return Ok(wrong),
            };
            let value = record.value.clone();
            match *expiry {
                Expiry::Keep => {}
                Expiry::At(at) => view.expire(key, record, at, now_ms)?,
                Expiry::Clear => view.put(key, NO_EXPIRY, &record.value),
            }
            Ok(Output::Value(Some(value)))
        }
        Command::Append {
            key,
            value,
            len_max,
        } => {
            let (mut joined, expire_at_ms) = match view.value_or(key, now_ms, b"")? {
                Ok(found) => found,
                Err(wrong) => return Ok(wrong),
            };
            let len = joined.len() as u64 + value.len() as u64;
            if len > *len_max {
                return Ok(Output::Rejected(Rejection::TooLong { len_max: *len_max }));
            }
            joined.extend_from_slice(value);
            view.put(key, expire_at_ms, &joined);
            Ok(Output::Integer(i64::try_from(len).unwrap_or(i64::MAX)))
        }
        Command::MSetNx { pairs } => {
            for (key, _) in pairs {
                if view.is_live(key, now_ms)? {
                    return Ok(Output::Changed(false));
                }
            }
            for (key, value) in pairs {
                view.put(key, NO_EXPIRY, value);
            }
            Ok(Output::Changed(true))
        }
        Command::Transaction {
            ops,
            read_bytes_max,
            watched,
        } => {
            for watch in watched {
                let now = view.load_live(&watch.key, now_ms)?.map(Record::held);
                if now != watch.held {
                    return Ok(Output::Aborted);
                }
            }
            let mut budget = *read_bytes_max;
            let mut outputs = Vec::with_capacity(ops.len());
            for op in ops {
                outputs.push(match op {
                    // Never a transaction: decoding refuses one inside another.
                    TxOp::Write(command) => execute(view, command, now_ms)?,
                    TxOp::Read(read) => read_in(view, read, now_ms, &mut budget, *read_bytes_max)?,
                });
            }
            Ok(Output::Each(outputs))
        }
        Command::Persist { key } => match view.load_live(key, now_ms)? {
            Some(record) if record.expire_at_ms != NO_EXPIRY => {
                view.put_record(
                    key,
                    Record {
                        expire_at_ms: NO_EXPIRY,
                        ..record
                    },
                );
                Ok(Output::Changed(true))
            }
            _ => Ok(Output::Changed(false)),
        },
        Command::Del { keys } => {
            let mut removed = 0;
            for key in keys {
                let old = view.remove(key)?;
                if old.is_some_and(|r| !is_expired(r.expire_at_ms, now_ms)) {
                    removed += 1;
                }
            }
            Ok(Output::Count(removed))
        }
        Command::IncrBy { key, delta } => {
            let found = match view.load_string(key, now_ms)? {
                Ok(found) => found,
                Err(wrong) => return Ok(wrong),
            };
            let (current, expire_at_ms) = match found {
                None => (0, NO_EXPIRY),
                Some(record) => match parse_integer(&record.value) {
                    Some(n) => (n, record.expire_at_ms),
                    None => return Ok(Output::Rejected(Rejection::NotAnInteger)),
                },
            };
            let Some(next) = current.checked_add(*delta) else {
                return Ok(Output::Rejected(Rejection::Overflow));
            };
            view.put(key, expire_at_ms, next.to_string().as_bytes());
            Ok(Output::Integer(next))
        }
        Command::MSet { pairs } => {
            for (key, value) in pairs {
                view.put(key, NO_EXPIRY, value);
            }
            Ok(Output::Ok)
        }
        Command::Rename {
            from,
            to,
            if_absent,
        } => {
            let Some(record) = view.load_live(from, now_ms)? else {
                return Ok(Output::Rejected(Rejection::NoSuchKey));
            };
            let moved = from != to && !(*if_absent && view.is_live(to, now_ms)?);
            if moved {
                view.remove(from)?;
                view.put_record(to, record);
            }
            Ok(if *if_absent {
                Output::Changed(moved)
            } else {
                Output::Ok
            })
        }
        Command::Copy { from, to, replace } => {
            let Some(record) = view.load_live(from, now_ms)? else {
                return Ok(Output::Changed(false));
            };
            if from == to || (!replace && view.is_live(to, now_ms)?) {
                return Ok(Output::Changed(false));
            }
            view.put_record(to, record);
            Ok(Output::Changed(true))
        }
        Command::SetRange {
            key,
            offset,
            value,
            len_max,
        } => {
            let (mut bytes, expire_at_ms) = match view.value_or(key, now_ms, b"")? {
                Ok(found) => found,
                Err(wrong) => return Ok(wrong),
            };
            if !value.is_empty() {
                let end = offset.saturating_add(value.len() as u64);
                if end > *len_max {
                    return Ok(Output::Rejected(Rejection::TooLong { len_max: *len_max }));
                }
                // Both fit in memory: `end` is at most `len_max`, a request's size.
                let (offset, end) = (*offset as usize, end as usize);
                if bytes.len() < end {
                    bytes.resize(end, 0);
                }
                bytes[offset..end].copy_from_slice(value);
                view.put(key, expire_at_ms, &bytes);
            }
            Ok(Output::Integer(
                i64::try_from(bytes.len()).unwrap_or(i64::MAX),
            ))
        }
        Command::IncrByFloat { key, increment } => {
            let (current, expire_at_ms) = match view.value_or(key, now_ms, b"0")? {
                Ok(found) => found,
                Err(wrong) => return Ok(wrong),
            };
            match decimal::incr_by_float(&current, increment) {
                Ok(next) => {
                    view.put(key, expire_at_ms, &next);
                    Ok(Output::Value(Some(next)))
                }
                Err(FloatError::NotAFloat) => Ok(Output::Rejected(Rejection::NotAFloat)),
                Err(FloatError::OutOfRange) => Ok(Output::Rejected(Rejection::FloatOutOfRange)),
            }
        }
        Command::SetBit { key, offset, on } => {
            let (mut bytes, expire_at_ms) = match view.value_or(key, now_ms, b"")? {
                Ok(found) => found,
                Err(wrong) => return Ok(wrong),
            };
            let was = bits::set_bit(&mut bytes, *offset, *on);
            view.put(key, expire_at_ms, &bytes);
            Ok(Output::Integer(i64::from(was)))
        }
        Command::BitOp { op, dest, keys } => {
            let mut values = Vec::with_capacity(keys.len());
            for key in keys {
                match view.load_string(key, now_ms)? {
                    Ok(found) => values.push(found.map(|r| r.value)),
                    Err(wrong) => return Ok(wrong),
                }
            }
            let sources: Vec<Option<&[u8]>> = values.iter().map(Option::as_deref).collect();
            let result = bits::bit_op(*op, &sources);
            if result.is_empty() {
                view.remove(dest)?;
            } else {
                view.put(dest, NO_EXPIRY, &result);
            }
            Ok(Output::Integer(
                i64::try_from(result.len()).unwrap_or(i64::MAX),
            ))
        }
        // One field, or one member: found and written in the stored bytes, without
        // decoding the collection.
        Command::HSet {
            key,
            pairs,
            if_absent,
        } if pairs.len() == 1 => {
            let (field, value) = &pairs[0];
            let record = view.load_live(key, now_ms)?;
            let (expire_at_ms, encoded) = match &record {
                Some(r) if r.kind != ValueKind::Hash => return Ok(wrong_kind()),
                Some(r) => (r.expire_at_ms, Some(r.value.as_slice())),
                None => (NO_EXPIRY, None),
            };
            let found = match encoded {
                Some(encoded) => packed::find_group(encoded, 2, field).map_err(corrupt)?,
                None => None,
            };
            let (stored, added) = match (found, encoded) {
                (Some(_), _) if *if_absent => return Ok(Output::Changed(false)),
                (Some(span), Some(encoded)) => (packed::replace(encoded, span, value), false),
                _ => {
                    let appended = packed::append_group(encoded, &[field, value]);
                    (appended.map_err(corrupt)?, true)
                }
            };
            if let Err(refused) = view.put_stored(key, expire_at_ms, ValueKind::Hash, stored) {
                return Ok(refused);
            }
            Ok(if *if_absent {
                Output::Changed(true)
            } else {
                Output::Count(u64::from(added))
            })
        }
        Command::SAdd { key, members } if members.len() == 1 => {
            let member = &members[0];
            let record = view.load_live(key, now_ms)?;
            let (expire_at_ms, encoded) = match &record {
                Some(r) if r.kind != ValueKind::Set => return Ok(wrong_kind()),
                Some(r) => (r.expire_at_ms, Some(r.value.as_slice())),
                None => (NO_EXPIRY, None),
            };
            if let Some(encoded) = encoded
                && packed::find_group(encoded, 1, member)
                    .map_err(corrupt)?
                    .is_some()
            {
                return Ok(Output::Count(0));
            }
            let stored = packed::append_group(encoded, &[member]).map_err(corrupt)?;
            if let Err(refused) = view.put_stored(key, expire_at_ms, ValueKind::Set, stored) {
                return Ok(refused);
            }
            Ok(Output::Count(1))
        }
        Command::HSet {
            key,
            pairs,
            if_absent,
        } => {
            let (mut fields, expire_at_ms) = match view.hash_or_empty(key, now_ms)? {
                Ok(found) => found,
                Err(wrong) => return Ok(wrong),
            };
            if *if_absent && pairs.iter().any(|(field, _)| fields.get(field).is_some()) {
                return Ok(Output::Changed(false));
            }
            let added = fields.set_all(pairs);
            if fields.encoded_len() as u64 > VALUE_BYTES_MAX {
                return Ok(Output::Rejected(Rejection::TooLong {
                    len_max: VALUE_BYTES_MAX,
                }));
            }
            view.put_hash(key, expire_at_ms, &fields)?;
            Ok(if *if_absent {
                Output::Changed(true)
            } else {
                Output::Count(added as u64)
            })
        }
        Command::HDel {
            key,
            fields: doomed,
        } => {
            let (mut fields, expire_at_ms) = match view.hash_or_empty(key, now_ms)? {
                Ok(found) => found,
                Err(wrong) => return Ok(wrong),
            };
            let removed = fields.remove_all(doomed);
            if removed > 0 {
                view.put_hash(key, expire_at_ms, &fields)?;
            }
            Ok(Output::Count(removed as u64))
        }
        Command::HIncrBy { key, field, delta } => {
            let (mut fields, expire_at_ms) = match view.hash_or_empty(key, now_ms)? {
                Ok(found) => found,
                Err(wrong) => return Ok(wrong),
            };
            let current = match fields.get(field) {
                None => 0,
                Some(value) => match parse_integer(value) {
                    Some(n) => n,
                    None => return Ok(Output::Rejected(Rejection::HashNotAnInteger)),
                },
            };
            let Some(next) = current.checked_add(*delta) else {
                return Ok(Output::Rejected(Rejection::Overflow));
            };
            fields.set(field, next.to_string().into_bytes());
            view.put_hash(key, expire_at_ms, &fields)?;
            Ok(Output::Integer(next))
        }
        Command::HIncrByFloat {
            key,
            field,
            increment,
        } => {
            let (mut fields, expire_at_ms) = match view.hash_or_empty(key, now_ms)? {
                Ok(found) => found,
                Err(wrong) => return Ok(wrong),
            };
            let current = fields.get(field).unwrap_or(b"0");
            match decimal::incr_by_float(current, increment) {
                Ok(next) => {
                    fields.set(field, next.clone());
                    view.put_hash(key, expire_at_ms, &fields)?;
                    Ok(Output::Value(Some(next)))
                }
                Err(FloatError::NotAFloat) => Ok(Output::Rejected(Rejection::HashNotAFloat)),
                Err(FloatError::OutOfRange) => Ok(Output::Rejected(Rejection::FloatOutOfRange)),
            }
        }
        Command::SAdd { key, members } => {
            let (mut set, expire_at_ms) = match view.set_or_empty(key, now_ms)? {
                Ok(found) => found,
                Err(wrong) => return Ok(wrong),
            };
            let added = set.add_all(members);
            if set.encoded_len() as u64 > VALUE_BYTES_MAX {
                return Ok(Output::Rejected(Rejection::TooLong {
                    len_max: VALUE_BYTES_MAX,
                }));
            }
            if added > 0 {
                view.put_set(key, expire_at_ms, &set)?;
            }
            Ok(Output::Count(added as u64))
        }
        Command::SRem { key, members } => {
            let (mut set, expire_at_ms) = match view.set_or_empty(key, now_ms)? {
                Ok(found) => found,
                Err(wrong) => return Ok(wrong),
            };
            let removed = set.remove_all(members);
            if removed > 0 {
                view.put_set(key, expire_at_ms, &set)?;
            }
            Ok(Output::Count(removed as u64))
        }
        Command::SMove { from, to, member } => {
            // Redis's order: a source without a value first, then both kinds.
            if view.load_live(from, now_ms)?.is_none() {
                return Ok(Output::Changed(false));
            }
            let ((mut source, source_expiry), (mut dest, dest_expiry)) = match (
                view.set_or_empty(from, now_ms)?,
                view.set_or_empty(to, now_ms)?,
            ) {
                (Ok(source), Ok(dest)) => (source, dest),
                (Err(wrong), _) | (_, Err(wrong)) => return Ok(wrong),
            };
            if from == to {
                return Ok(Output::Changed(source.contains(member)));
            }
            if source.remove_all(std::slice::from_ref(member)) == 0 {
                return Ok(Output::Changed(false));
            }
            view.put_set(from, source_expiry, &source)?;
            if dest.add_all(std::slice::from_ref(member)) > 0 {
                view.put_set(to, dest_expiry, &dest)?;
            }
            Ok(Output::Changed(true))
        }
        Command::SPop { key, count, seed } => {
            let (mut set, expire_at_ms) = match view.set_or_empty(key, now_ms)? {
                Ok(found) => found,
                Err(wrong) => return Ok(wrong),
            };
            let wanted = usize::try_from(count.unwrap_or(1)).unwrap_or(usize::MAX);
            let popped = set.pop(wanted, &mut set::Random::new(*seed));
            if !popped.is_empty() {
                view.put_set(key, expire_at_ms, &set)?;
            }
            Ok(match count {
                None => Output::Value(popped.into_iter().next()),
                Some(_) => Output::Values(popped.into_iter().map(Some).collect()),
            })
        }
        Command::SetStore { op, dest, keys } => {
            let sets = match view.sets(keys, now_ms)? {
                Ok(sets) => sets,
                Err(wrong) => return Ok(wrong),
            };
            let result = set::combine(*op, &sets);
            if result.is_empty() {
                view.remove(dest)?;
            } else {
                view.put_set(dest, NO_EXPIRY, &result)?;
            }
            Ok(Output::Count(result.len() as u64))
        }
        Command::Push {
            key,
            items,
            front,
            if_exists,
        } => {
            // Edited as stored: the items already there are copied, not decoded.
            let record = view.load_live(key, now_ms)?;
            let (encoded, expire_at_ms) = match &record {
                None if *if_exists => return Ok(Output::Count(0)),
                None => (None, NO_EXPIRY),
                Some(r) if r.kind != ValueKind::List => return Ok(wrong_kind()),
                Some(r) => (Some(r.value.as_slice()), r.expire_at_ms),
            };
            let (value, len) = packed::push(encoded, items, *front).map_err(corrupt)?;
            if let Err(refused) = view.put_stored(key, expire_at_ms, ValueKind::List, value) {
                return Ok(refused);
            }
            Ok(Output::Count(len as u64))
        }
        Command::Pop { key, front, count } => {
            let Some(record) = view.load_live(key, now_ms)? else {
                return Ok(Output::Value(None));
            };
            if record.kind != ValueKind::List {
                return Ok(wrong_kind());
            }
            let wanted = count.map_or(1, |n| usize::try_from(n).unwrap_or(usize::MAX));
            let packed::Popped {
                kept,
                taken: popped,
            } = packed::pop(&record.value, wanted, *front).map_err(corrupt)?;
            if !popped.is_empty() {
                view.put_collection(key, record.expire_at_ms, ValueKind::List, kept)?;
            }
            let mut popped = popped.into_iter();
            Ok(match count {
                None => Output::Value(popped.next()),
                Some(_) => Output::Values(popped.map(Some).collect()),
            })
        }
        Command::LSet { key, index, item } => {
            let Some(record) = view.load_live(key, now_ms)? else {
                return Ok(Output::Rejected(Rejection::NoSuchKey));
            };
            let Ok(mut list) = record.list()? else {
                return Ok(wrong_kind());
            };
            let Some(at) = list::place(list.len(), *index) else {
                return Ok(Output::Rejected(Rejection::IndexOutOfRange));
            };
            list.set(at, item.clone());
            Ok(match view.put_list(key, record.expire_at_ms, &list)? {
                Ok(()) => Output::Ok,
                Err(refused) => refused,
            })
        }
        Command::LRem { key, count, item } => {
            let (mut list, expire_at_ms) = match view.list_or_empty(key, now_ms)? {
                Ok(found) => found,
                Err(wrong) => return Ok(wrong),
            };
            let removed = list::remove(&mut list, *count, item);
            if removed > 0 {
                let _ = view.put_list(key, expire_at_ms, &list)?;
            }
            Ok(Output::Count(removed as u64))
        }
        Command::LTrim { key, start, stop } => {
            let (mut list, expire_at_ms) = match view.list_or_empty(key, now_ms)? {
                Ok(found) => found,
                Err(wrong) => return Ok(wrong),
            };
            let kept = list::range(list.len(), *start, *stop);
            if kept.len() < list.len() {
                let len = list.len();
                list.remove(kept.end, len - kept.end);
                list.remove(0, kept.start);
                let _ = view.put_list(key, expire_at_ms, &list)?;
            }
            Ok(Output::Ok)
        }
        Command::LInsert {
            key,
            before,
            pivot,
            item,
        } => {
            let (mut list, expire_at_ms) = match view.list_or_empty(key, now_ms)? {
                Ok(found) => found,
                Err(wrong) => return Ok(wrong),
            };
            if list.len() == 0 {
                return Ok(Output::Integer(0));
            }
            let Some(at) = list.iter().position(|i| i == pivot.as_slice()) else {
                return Ok(Output::Integer(-1));
            };
            list.insert(if *before { at } else { at + 1 }, item.clone());
            if let Err(refused) = view.put_list(key, expire_at_ms, &list)? {
                return Ok(refused);
            }
            Ok(Output::Integer(
                i64::try_from(list.len()).unwrap_or(i64::MAX),
            ))
        }
        Command::LMove {
            from,
            to,
            from_front,
            to_front,
        } => {
            // Redis's order: a source without a value first, then both kinds.
            let Some(source) = view.load_live(from, now_ms)? else {
                return Ok(Output::Value(None));
            };
            let dest = if from == to {
                None
            } else {
                view.load_live(to, now_ms)?
            };
            let is_list = |r: &Record| r.kind == ValueKind::List;
            if !is_list(&source) || dest.as_ref().is_some_and(|d| !is_list(d)) {
                return Ok(wrong_kind());
            }
            let packed::Popped {
                kept,
                taken: mut popped,
            } = packed::pop(&source.value, 1, *from_front).map_err(corrupt)?;
            let item = popped.pop().ok_or(StoreError::CorruptRecord {
                reason: "a stored list without items",
            })?;
            let moved = std::slice::from_ref(&item);
            if from == to {
                let (value, _) =
                    packed::push(kept.as_deref(), moved, *to_front).map_err(corrupt)?;
                view.put_collection(from, source.expire_at_ms, ValueKind::List, Some(value))?;
            } else {
                let into = dest.as_ref().map(|d| d.value.as_slice());
                let (value, _) = packed::push(into, moved, *to_front).map_err(corrupt)?;
                let dest_expiry = dest.map_or(NO_EXPIRY, |d| d.expire_at_ms);
                if let Err(refused) = view.put_stored(to, dest_expiry, ValueKind::List, value) {
                    return Ok(refused);
                }
                view.put_collection(from, source.expire_at_ms, ValueKind::List, kept)?;
            }
            Ok(Output::Value(Some(item)))
        }
        Command::PurgeExpired { batch_max } => view.purge_expired(*batch_max, now_ms),
        Command::XAdd {
            key,
            id,
            fields,
            no_mkstream,
            trim,
        } => {
            let record = view.load_live(key, now_ms)?;
            let (expire_at_ms, stored) = match &record {
                Some(r) if r.kind != ValueKind::Stream => return Ok(wrong_kind()),
                Some(r) => (r.expire_at_ms, Some(r.value.as_slice())),
                None if *no_mkstream => return Ok(Output::StreamId(None)),
                None => (NO_EXPIRY, None),
            };
            let added = stream::add(stored, *id, fields, now_ms, trim.as_ref()).map_err(corrupt)?;
            match added {
                Err(stream::AddRefused::TooSmall) => {
                    Ok(Output::Rejected(Rejection::StreamIdTooSmall))
                }
                Err(stream::AddRefused::Exhausted) => {
                    Ok(Output::Rejected(Rejection::StreamExhausted))
                }
                Ok((value, id)) => {
                    if let Err(refused) =
                        view.put_stored(key, expire_at_ms, ValueKind::Stream, value)
                    {
                        return Ok(refused);
                    }
                    Ok(Output::StreamId(Some(id)))
                }
            }
        }
        Command::XDel { key, ids, bad_id } => {
            if *bad_id {
                // Refused once the key is found to hold a stream, as Redis does.
                return Ok(match view.load_live(key, now_ms)? {
                    None => Output::Count(0),
                    Some(r) if r.kind != ValueKind::Stream => wrong_kind(),
                    Some(_) => Output::Rejected(Rejection::InvalidStreamId),
                });
            }
            view.edit_stream(key, now_ms, Output::Count(0), |stored| {
                let (value, gone) = stream::delete(stored, ids);
                Some((value, Output::Count(gone)))
            })
        }
        Command::XTrim { key, trim } => view.edit_stream(key, now_ms, Output::Count(0), |stored| {
            let (value, gone) = stream::trim(stored, trim);
            Some((value, Output::Count(gone)))
        }),
        Command::XGroup { key, group, op } => {
            let record = view.load_live(key, now_ms)?;
            let parsed = match &record {
                Some(r) if r.kind != ValueKind::Stream => return Ok(wrong_kind()),
                Some(r) => Some(stream::Stored::parse(&r.value).map_err(corrupt)?),
                None => None,
            };
            match stream::group_op(parsed.as_ref(), group, op, now_ms) {
                Err(refused) => Ok(Output::Rejected(group_rejection(refused))),
                Ok((None, output)) => Ok(output),
                Ok((Some(value), output)) => {
                    let expire_at_ms = record.as_ref().map_or(NO_EXPIRY, |r| r.expire_at_ms);
                    if let Err(refused) =
                        view.put_stored(key, expire_at_ms, ValueKind::Stream, value)
                    {
                        return Ok(refused);
                    }
                    Ok(output)
                }
            }
        }
        Command::XReadGroup {
            group,
            consumer,
            reads,
            count,
            no_ack,
        } => {
            // Every key is checked before any is read from, as Redis does.
            for (at, read) in reads.iter().enumerate() {
                let no_group = Output::Rejected(Rejection::NoGroup {
                    key: u32::try_from(at).unwrap_or(u32::MAX),
                });
                let record = match view.load_live(&read.key, now_ms)? {
                    Some(r) if r.kind != ValueKind::Stream => return Ok(wrong_kind()),
                    Some(r) => r,
                    None => return Ok(no_group),
                };
                if !stream::has_group(&record.value, group).map_err(corrupt)? {
                    return Ok(no_group);
                }
            }
            let mut read = Vec::new();
            for request in reads {
                // Loaded again: a key named twice reads what the first read left.
                let record = view
                    .load_live(&request.key, now_ms)?
                    .expect("checked above");
                let stored = stream::Stored::parse(&record.value).map_err(corrupt)?;
                let served = stream::read_group(
                    &stored,
                    group,
                    consumer,
                    request.after,
                    *count,
                    *no_ack,
                    now_ms,
                );
                if let Some((entries, value)) = served {
                    if let Err(refused) =
                        view.put_stored(&request.key, record.expire_at_ms, ValueKind::Stream, value)
                    {
                        return Ok(refused);
                    }
                    read.push((request.key.clone(), entries));
                }
            }
            Ok(Output::Streams(read))
        }
        Command::XClaim {
            key,
            group,
            consumer,
            min_idle_ms,
            ids,
            delivered,
            retry_count,
            force,
            just_id,
            last_id,
        } => {
            let claim = stream::Claim {
                consumer,
                min_idle_ms: *min_idle_ms,
                ids,
                delivered: *delivered,
                retry_count: *retry_count,
                force: *force,
                just_id: *just_id,
                last_id: *last_id,
            };
            view.edit_stream(
                key,
                now_ms,
                Output::Rejected(Rejection::NoGroup { key: 0 }),
                |stored| stream::claim(stored, group, &claim, now_ms),
            )
        }
        Command::Eval {
            script,
            keys,
            args,
            read_only,
        } => {
            let mut budget = SCRIPT_READ_BYTES_MAX;
            let mut call = |argv: Vec<Vec<u8>>| {
                let (op, answer) = match crate::server::script_call(argv, now_ms, *read_only) {
                    ScriptCall::Answered(reply) => return script::Called::Reply(reply),
                    ScriptCall::Run(op, answer) => (op, answer),
                };
                let output = match &op {
                    TxOp::Write(command) => execute(view, command, now_ms),
                    TxOp::Read(read) => {
                        read_in(view, read, now_ms, &mut budget, SCRIPT_READ_BYTES_MAX)
                    }
                };
                match output {
                    Ok(output) => script::Called::Reply(answer.reply(output)),
                    Err(e) => script::Called::Failed(e),
                }
            };
            script::run(script, keys, args, &mut call).map(Output::Script)
        }
        Command::GeoStore {
            dest,
            source,
            search,
            store_dist,
        } => {
            let (set, _) = match view.zset_or_empty(source, now_ms)? {
                Ok(found) => found,
                Err(wrong) => return Ok(wrong),
            };
            let mut found = Vec::new();
            if !set.is_empty() {
                let Some(center) = search.center(|member| set.score(member)) else {
                    return Ok(Output::Rejected(Rejection::NoGeoMember));
                };
                found = search.run(center, &set.iter().collect::<Vec<_>>());
            }
            let stored = SortedSet::from_entries(
                found
                    .into_iter()
                    .map(|f| (f.member, if *store_dist { f.distance } else { f.score }))
                    .collect(),
            );
            if let Err(refused) = view.put_zset(dest, NO_EXPIRY, &stored)? {
                return Ok(refused);
            }
            Ok(Output::Count(stored.len() as u64))
        }
        Command::PfAdd { key, elements } => {
            let (mut value, expire_at_ms, mut changed) = match view.load_live(key, now_ms)? {
                None => (hll::empty(), NO_EXPIRY, true),
                Some(record) => match hll_check(record.parts()) {
                    Ok(()) => (record.value, record.expire_at_ms, false),
                    Err(refused) => return Ok(refused),
                },
            };
            for element in elements {
                match hll::add(&mut value, element) {
                    Ok(raised) => changed |= raised,
                    Err(e) => return Ok(hll_refused(e)),
                }
            }
            if changed {
                hll::invalidate(&mut value);
                view.put_record(key, Record::string(expire_at_ms, value));
            }
            Ok(Output::Integer(i64::from(changed)))
        }
        Command::PfMerge { dest, sources } => {
            let found = view.load_live(dest, now_ms)?;
            let mut union = hll::Registers::default();
            let mut dense = false;
            let mut merge = |live: (ValueKind, &[u8])| -> Result<(), Output> {
                hll_check(live)?;
                dense |= hll::is_dense(live.1);
                union.merge(live.1).map_err(hll_refused)
            };
            if let Some(record) = &found
                && let Err(refused) = merge(record.parts())
            {
                return Ok(refused);
            }
            for key in sources {
                if let Some(record) = view.load_live(key, now_ms)?
                    && let Err(refused) = merge(record.parts())
                {
                    return Ok(refused);
                }
            }
            let (mut value, expire_at_ms) =
                found.map_or((hll::empty(), NO_EXPIRY), |r| (r.value, r.expire_at_ms));
            if let Err(e) = union.store_in(&mut value, dense) {
                return Ok(hll_refused(e));
            }
            view.put_record(dest, Record::string(expire_at_ms, value));
            Ok(Output::Ok)
        }
        Command::XAutoClaim {
            key,
            group,
            consumer,
            min_idle_ms,
            start,
            count,
            just_id,
        } => view.edit_stream(
            key,
            now_ms,
            Output::Rejected(Rejection::NoGroup { key: 0 }),
            |stored| {
                stream::auto_claim(
                    stored,
                    group,
                    consumer,
                    *min_idle_ms,
                    *start,
                    *count,
                    *just_id,
                    now_ms,
                )
            },
        ),
        Command::XAck {
            key,
            group,
            ids,
            bad_id,
        } => {
            if *bad_id {
                return Ok(match view.load_live(key, now_ms)? {
                    Some(r) if r.kind != ValueKind::Stream => wrong_kind(),
                    Some(r) if stream::has_group(&r.value, group).map_err(corrupt)? => {
                        Output::Rejected(Rejection::InvalidStreamId)
                    }
                    _ => Output::Count(0),
                });
            }
            view.edit_stream(key, now_ms, Output::Count(0), |stored| {
                let (value, acked) = stream::ack(stored, group, ids);
                Some((value, Output::Count(acked)))
            })
        }
        Command::FlushAll => view.flush_all(),
        // The address book, not the key space, takes a MEET (see `KvApplier`).
        // One member: found and written in the stored bytes, without decoding.
        Command::ZAdd {
            key,
            entries,
            options,
        } if entries.len() == 1 => {
            let (score, member) = &entries[0];
            let record = view.load_live(key, now_ms)?;
            let (expire_at_ms, encoded) = match &record {
                Some(r) if r.kind != ValueKind::ZSet => return Ok(wrong_kind()),
                Some(r) => (r.expire_at_ms, Some(r.value.as_slice())),
                None => (NO_EXPIRY, None),
            };
            let added =
                zset::stored::add_one(encoded, *score, member, *options).map_err(corrupt)?;
            match added {
                Err(zset::NotANumber) => Ok(Output::Rejected(Rejection::ScoreNaN)),
                Ok((zset::stored::Edited::Unchanged, output)) => Ok(output),
                Ok((zset::stored::Edited::Stored(value), output)) => {
                    let value = value.expect("an add leaves a member");
                    if let Err(refused) = view.put_stored(key, expire_at_ms, ValueKind::ZSet, value)
                    {
                        return Ok(refused);
                    }
                    Ok(output)
                }
            }
        }
        Command::ZRem { key, members } if members.len() == 1 => {
            let record = match view.load_live(key, now_ms)? {
                Some(r) if r.kind != ValueKind::ZSet => return Ok(wrong_kind()),
                Some(r) => r,
                None => return Ok(Output::Count(0)),
            };
            match zset::stored::remove_one(&record.value, &members[0]).map_err(corrupt)? {
                zset::stored::Edited::Unchanged => Ok(Output::Count(0)),
                zset::stored::Edited::Stored(value) => {
                    view.put_collection(key, record.expire_at_ms, ValueKind::ZSet, value)?;
                    Ok(Output::Count(1))
                }
            }
        }
        Command::ZAdd {
            key,
            entries,
            options,
        } => {
            let (mut set, expire_at_ms) = match view.zset_or_empty(key, now_ms)? {
                Ok(found) => found,
                Err(wrong) => return Ok(wrong),
            };
            let (output, changed) = match set.add_all(entries, *options) {
                Ok(added) => added,
                Err(zset::NotANumber) => return Ok(Output::Rejected(Rejection::ScoreNaN)),
            };
            if changed && let Err(refused) = view.put_zset(key, expire_at_ms, &set)? {
                return Ok(refused);
            }
            Ok(output)
        }
        Command::ZRem { key, members } => {
            let (mut set, expire_at_ms) = match view.zset_or_empty(key, now_ms)? {
                Ok(found) => found,
                Err(wrong) => return Ok(wrong),
            };
            let removed = set.remove_all(members);
            if removed > 0 {
                view.put_collection(key, expire_at_ms, ValueKind::ZSet, encoded(&set))?;
            }
            Ok(Output::Count(removed as u64))
        }
        // Popped in the stored bytes: the entries left are copied, not decoded.
        Command::ZPop { key, max, count } => {
            let record = match view.load_live(key, now_ms)? {
                Some(r) if r.kind != ValueKind::ZSet => return Ok(wrong_kind()),
                Some(r) => r,
                None => return Ok(Output::Scored(Vec::new())),
            };
            let (edited, popped) =
                zset::stored::pop(&record.value, *count, *max).map_err(corrupt)?;
            if let zset::stored::Edited::Stored(value) = edited {
                view.put_collection(key, record.expire_at_ms, ValueKind::ZSet, value)?;
            }
            Ok(Output::Scored(popped))
        }
        Command::ZRemRange { key, by } => {
            let (mut set, expire_at_ms) = match view.zset_or_empty(key, now_ms)? {
                Ok(found) => found,
                Err(wrong) => return Ok(wrong),
            };
            let removed = set.remove_range(by);
            if removed > 0 {
                view.put_collection(key, expire_at_ms, ValueKind::ZSet, encoded(&set))?;
            }
            Ok(Output::Count(removed as u64))
        }
        Command::ZStore {
            op,
            dest,
            keys,
            weights,
            aggregate,
        } => {
            let sources = match view.zsets(keys, now_ms)? {
                Ok(sources) => sources,
                Err(wrong) => return Ok(wrong),
            };
            let result = zset::combine(*op, &sources, weights, *aggregate);
            if let Err(refused) = view.put_zset(dest, NO_EXPIRY, &result)? {
                return Ok(refused);
            }
            Ok(Output::Count(result.len() as u64))
        }
        Command::ZRangeStore {
            dest,
            source,
            range,
        } => {
            let (set, _) = match view.zset_or_empty(source, now_ms)? {
                Ok(found) => found,
                Err(wrong) => return Ok(wrong),
            };
            let picked: Vec<(Vec<u8>, f64)> = set
                .range(range)
                .into_iter()
                .map(|(m, s)| (m, s.get()))
                .collect();
            let result = SortedSet::from_entries(picked);
            if let Err(refused) = view.put_zset(dest, NO_EXPIRY, &result)? {
                return Ok(refused);
            }
            Ok(Output::Count(result.len() as u64))
        }
        Command::MPop { keys, from, count } => {
            for key in keys {
                let Some(record) = view.load_live(key, now_ms)? else {
                    continue;
                };
                let (wanted, pop) = match *from {
                    MPopFrom::List { front } => (
                        ValueKind::List,
                        Command::Pop {
                            key: key.clone(),
                            front,
                            count: Some(*count),
                        },
                    ),
                    MPopFrom::ZSet { max } => (
                        ValueKind::ZSet,
                        Command::ZPop {
                            key: key.clone(),
                            max,
                            count: *count,
                        },
                    ),
                };
                if record.kind != wanted {
                    return Ok(wrong_kind());
                }
                let popped = execute(view, &pop, now_ms)?;
                return Ok(Output::PoppedFrom(Some((key.clone(), Box::new(popped)))));
            }
            Ok(Output::PoppedFrom(None))
        }
        Command::Publish { channel, message } => Ok(Output::Count(
            view.publisher
                .map_or(0, |publish| publish(channel, message, now_ms)),
        )),
        Command::Meet { .. } => Ok(Output::Ok),
    }
}

/// The collections `source` reads at `keys`, in order, each live record `load` finds
/// (`None` for a key without one); `Err` with the kind of the first record `source`
/// does not read.
fn sources<C>(
    keys: &[Vec<u8>],
    mut load: impl FnMut(&[u8]) -> Result<Option<Record>, StoreError>,
    source: fn(&Record) -> Result<Option<C>, StoreError>,
) -> Result<Result<Vec<Option<C>>, ValueKind>, StoreError> {
    let mut found = Vec::with_capacity(keys.len());
    for key in keys {
        match load(key)? {
            None => found.push(None),
            Some(record) => match source(&record)? {
                Some(collection) => found.push(Some(collection)),
                None => return Ok(Err(record.kind)),
            },
        }
    }
    Ok(Ok(found))
}

/// The set a record holds; `None` for another kind of value.
fn set_source(record: &Record) -> Result<Option<Members>, StoreError> {
    Ok(record.set()?.ok())
}

/// The sorted set a record holds, or a set's members scored 1: what the commands that
/// combine sorted sets read. `None` for another kind of value.
fn zset_source(record: &Record) -> Result<Option<SortedSet>, StoreError> {
    Ok(match record.kind {
        ValueKind::ZSet => record.zset()?.ok(),
        ValueKind::Set => record
            .set()?
            .ok()
            .map(|members| SortedSet::of_members(members.iter())),
        _ => None,
    })
}

/// The answer to `ZUNION`, `ZINTER`, `ZDIFF` (or with `card_limit`, `ZINTERCARD`) over
/// `sources`.
fn zcombine_output(
    op: SetOp,
    sources: &[Option<SortedSet>],
    weights: &[Score],
    aggregate: Aggregate,
    with_scores: bool,
    card_limit: Option<u64>,
) -> Output {
    let result = zset::combine(op, sources, weights, aggregate);
    if let Some(limit) = card_limit {
        let card = result.len() as u64;
        return Output::Count(if limit == 0 { card } else { card.min(limit) });
    }
    zset::answer(&ZSetRead::everything(with_scores), Some(&result))
}

/// The stored form of a sorted set that only lost members: `None` once it is empty.
fn encoded(set: &SortedSet) -> Option<Vec<u8>> {
    (!set.is_empty()).then(|| set.encode())
}

/// Runs a read of a transaction against the state its writes so far left, taking the
/// bytes of the values it returns from `budget`, which started at `bytes_max`.
fn read_in(
    view: &View<'_>,
    read: &TxRead,
    now_ms: u64,
    budget: &mut u64,
    bytes_max: u64,
) -> Result<Output, StoreError> {
    // The live string at a key, taken from the budget; `Err` with the answer for a key
    // of another kind or a value past the budget.
    let mut value = |key: &[u8]| -> Result<Result<Option<Vec<u8>>, Output>, StoreError> {
        let value = match view.load_string(key, now_ms)? {
            Ok(found) => found.map(|r| r.value),
            Err(wrong) => return Ok(Err(wrong)),
        };
        let len = value.as_ref().map_or(0, |v| v.len() as u64);
        Ok(match budget.checked_sub(len) {
            Some(left) => {
                *budget = left;
                Ok(value)
            }
            None => Err(Output::Rejected(Rejection::ReadTooLarge { bytes_max })),
        })
    };
    let string = |key: &[u8]| -> Result<Result<Option<Vec<u8>>, Output>, StoreError> {
        Ok(view
            .load_string(key, now_ms)?
            .map(|found| found.map(|r| r.value)))
    };
    Ok(match read {
        TxRead::Get { key } => match value(key)? {
            Ok(found) => Output::Value(found),
            Err(refused) => refused,
        },
        TxRead::MGet { keys } => {
            let mut values = Vec::with_capacity(keys.len());
            for key in keys {
                match value(key)? {
                    Ok(found) => values.push(found),
                    // As in Redis, a key of another kind reads as one without a value.
                    Err(Output::Rejected(Rejection::WrongType)) => values.push(None),
                    Err(refused) => return Ok(refused),
                }
            }
            Output::Values(values)
        }
        TxRead::Exists { keys } => {
            let mut count = 0;
            for key in keys {
                count += u64::from(view.is_live(key, now_ms)?);
            }
            Output::Count(count)
        }
        TxRead::Strlen { key } => match string(key)? {
            Ok(found) => {
                let len = found.map_or(0, |v| v.len());
                Output::Integer(i64::try_from(len).unwrap_or(i64::MAX))
            }
            Err(wrong) => wrong,
        },
        TxRead::Type { key } => {
            let kind = view.load_live(key, now_ms)?.map(|r| r.kind);
            Output::Value(Some(
                kind.map_or("none", ValueKind::name).as_bytes().to_vec(),
            ))
        }
        TxRead::ExpireTime { key, in_ms } => {
            Output::Integer(view.key_expiry(key, now_ms)?.redis_time(|at| at, *in_ms))
        }
        TxRead::Bits { key, query } => match string(key)? {
            Ok(value) => Output::Integer(bits::answer(value.as_deref(), query)),
            Err(wrong) => wrong,
        },
        TxRead::GetRange { key, start, end } => {
            let value = match string(key)? {
                Ok(value) => value.unwrap_or_default(),
                Err(wrong) => return Ok(wrong),
            };
            let picked = &value[byte_range(value.len(), *start, *end)];
            match budget.checked_sub(picked.len() as u64) {
                Some(left) => {
                    *budget = left;
                    Output::Value(Some(picked.to_vec()))
                }
                None => Output::Rejected(Rejection::ReadTooLarge { bytes_max }),
            }
        }
        TxRead::Ttl { key, in_ms } => Output::Integer(
            view.key_expiry(key, now_ms)?
                .redis_time(|at| at.saturating_sub(now_ms), *in_ms),
        ),
        TxRead::Hash { key, read } => match hash_answer(view.load_live(key, now_ms)?, read)? {
            Ok(output) => charge(output, budget, bytes_max),
            Err(_) => wrong_kind(),
        },
        TxRead::Set { key, read } => match set_answer(view.load_live(key, now_ms)?, read)? {
            Ok(output) => charge(output, budget, bytes_max),
            Err(_) => wrong_kind(),
        },
        TxRead::SetCombine { op, keys } => match view.sets(keys, now_ms)? {
            Ok(sets) => charge(members_output(&set::combine(*op, &sets)), budget, bytes_max),
            Err(wrong) => wrong,
        },
        TxRead::List { key, read } => match list_answer(view.load_live(key, now_ms)?, read)? {
            Ok(output) => charge(output, budget, bytes_max),
            Err(_) => wrong_kind(),
        },
        TxRead::SetInterCard { keys, limit } => match view.sets(keys, now_ms)? {
            Ok(sets) => Output::Count(inter_card(&sets, *limit)),
            Err(wrong) => wrong,
        },
        TxRead::ZSet { key, read } => match zset_answer(view.load_live(key, now_ms)?, read)? {
            Ok(output) => charge(output, budget, bytes_max),
            Err(_) => wrong_kind(),
        },
        TxRead::ZCombine {
            op,
            keys,
            weights,
            aggregate,
            with_scores,
        } => match view.zsets(keys, now_ms)? {
            Ok(sources) => charge(
                zcombine_output(*op, &sources, weights, *aggregate, *with_scores, None),
                budget,
                bytes_max,
            ),
            Err(wrong) => wrong,
        },
        TxRead::Stream { key, read } => {
            let live = view.load_live(key, now_ms)?;
            match stream_answer(live.as_ref().map(Record::parts), read, now_ms)? {
                Ok(output) => charge(output, budget, bytes_max),
                Err(_) => wrong_kind(),
            }
        }
        TxRead::XRead { after, count } => {
            let entries = |key: &[u8], id| {
                let live = view.load_live(key, now_ms)?;
                entries_after(live.as_ref().map(Record::parts), id, *count)
            };
            match streams_after(after, entries)? {
                Ok(output) => charge(output, budget, bytes_max),
                Err(_) => wrong_kind(),
            }
        }
        TxRead::PfCount { keys } => pf_count(keys, |key, count| {
            let live = view.load_live(key, now_ms)?;
            Ok(live.map_or(Ok(()), |record| count(record.parts())))
        })?,
        TxRead::ZInterCard { keys, limit } => match view.zsets(keys, now_ms)? {
            Ok(sources) => zcombine_output(
                SetOp::Inter,
                &sources,
                &[],
                Aggregate::Sum,
                false,
                Some(*limit),
            ),
            Err(wrong) => wrong,
        },
    })
}

/// `Err` with the answer for a key's live value, its kind and bytes, that is not a
/// HyperLogLog.
fn hll_check((kind, value): (ValueKind, &[u8])) -> Result<(), Output> {
    if kind != ValueKind::String {
        return Err(wrong_kind());
    }
    hll::check(value).map_err(hll_refused)
}

fn hll_refused(e: hll::HllError) -> Output {
    Output::Rejected(match e {
        hll::HllError::NotHll => Rejection::NotHll,
        hll::HllError::Corrupt => Rejection::CorruptHll,
    })
}

/// `PFCOUNT` of `keys`: `look` hands each key's live value, if it has one, to the
/// function given, and answers what that answered. One key answers its own count (a
/// valid cached one as it is); several, the count of their union.
fn pf_count(
    keys: &[Vec<u8>],
    mut look: impl FnMut(
        &[u8],
        &mut dyn FnMut((ValueKind, &[u8])) -> Result<(), Output>,
    ) -> Result<Result<(), Output>, StoreError>,
) -> Result<Output, StoreError> {
    let counted = if let [key] = keys {
        let mut count = 0;
        look(key, &mut |live| {
            hll_check(live)?;
            count = hll::count(live.1).map_err(hll_refused)?;
            Ok(())
        })?
        .map(|()| count)
    } else {
        let mut union = hll::Registers::default();
        let mut merged = Ok(());
        for key in keys {
            merged = look(key, &mut |live| {
                hll_check(live)?;
                union.merge(live.1).map_err(hll_refused)
            })?;
            if merged.is_err() {
                break;
            }
        }
        merged.map(|()| union.count())
    };
    Ok(match counted {
        Ok(count) => Output::Integer(i64::try_from(count).unwrap_or(i64::MAX)),
        Err(refused) => refused,
    })
}

/// `output`, if the values it carries fit in what is left of `budget`; else the
/// rejection of a read past `bytes_max`.
fn charge(output: Output, budget: &mut u64, bytes_max: u64) -> Output {
    match budget.checked_sub(hash::answer_bytes(&output)) {
        Some(left) => {
            *budget = left;
            output
        }
        None => Output::Rejected(Rejection::ReadTooLarge { bytes_max }),
    }
}

/// A set's members as a read answers them.
fn members_output(members: &Members) -> Output {
    Output::Values(members.iter().map(|m| Some(m.to_vec())).collect())
}

/// `SINTERCARD`: the size of the sets' intersection, at most `limit` unless it is 0.
fn inter_card(sets: &[Option<Members>], limit: u64) -> u64 {
    let card = set::combine(SetOp::Inter, sets).len() as u64;
    if limit == 0 { card } else { card.min(limit) }
}

/// The answer to `read` for a key's live record, or `Err` with the kind of value it
/// holds if that is not a set.
fn set_answer(record: Option<Record>, read: &SetRead) -> Answered {
    answer_with(record, Record::set, |members| set::answer(read, members))
}

/// The answer to `read` for a key's live record, or `Err` with the kind of value it
/// holds if that is not a hash.
fn list_answer(record: Option<Record>, read: &ListRead) -> Answered {
    let Some(record) = record else {
        return Ok(Ok(list::answer::<&[u8]>(read, &[])));
    };
    if record.kind != ValueKind::List {
        return Ok(Err(record.kind));
    }
    // Read in place: only the items answered are copied.
    let spans = packed::spans(&record.value).map_err(corrupt)?;
    let items: Vec<&[u8]> = spans.into_iter().map(|s| &record.value[s]).collect();
    Ok(Ok(list::answer(read, &items)))
}

/// The answer to `read` at `now_ms` for a key's live value, its kind and bytes (`None`
/// without one), or `Err` with the kind of value it holds if that is not a stream.
fn stream_answer(live: Option<(ValueKind, &[u8])>, read: &StreamRead, now_ms: u64) -> Answered {
    match live {
        Some((kind, _)) if kind != ValueKind::Stream => Ok(Err(kind)),
        live => stream::answer_stored(read, live.map(|(_, bytes)| bytes), now_ms)
            .map(Ok)
            .map_err(corrupt),
    }
}

/// The rejection for a group command refused as `refused`.
fn group_rejection(refused: stream::GroupRefused) -> Rejection {
    match refused {
        stream::GroupRefused::NoStream => Rejection::NoStream,
        stream::GroupRefused::NoGroup => Rejection::NoGroup { key: 0 },
        stream::GroupRefused::Exists => Rejection::GroupExists,
        stream::GroupRefused::InvalidId => Rejection::InvalidStreamId,
    }
}

/// `XREAD`: for each key and ID, the key and what `entries` finds after the ID, if that
/// is something; `Err` with the kind of value a key holds if that is not a stream.
fn streams_after(
    after: &[(Vec<u8>, StreamId)],
    mut entries: impl FnMut(&[u8], StreamId) -> Result<Result<Vec<StreamEntry>, ValueKind>, StoreError>,
) -> Answered {
    let mut read = Vec::new();
    for (key, id) in after {
        match entries(key, *id)? {
            Err(found) => return Ok(Err(found)),
            Ok(found) if found.is_empty() => {}
            Ok(found) => read.push((key.clone(), found)),
        }
    }
    Ok(Ok(Output::Streams(read)))
}

/// The entries after `after`, at most `count` (0: all), of a key's live value, its kind
/// and bytes (none without one), or `Err` with the kind of value it holds if that is not
/// a stream.
fn entries_after(
    live: Option<(ValueKind, &[u8])>,
    after: StreamId,
    count: u64,
) -> Result<Result<Vec<StreamEntry>, ValueKind>, StoreError> {
    let bytes = match live {
        None => return Ok(Ok(Vec::new())),
        Some((kind, _)) if kind != ValueKind::Stream => return Ok(Err(kind)),
        Some((_, bytes)) => bytes,
    };
    let Some(start) = after.next() else {
        return Ok(Ok(Vec::new()));
    };
    let count = (count > 0).then_some(count);
    stream::walk(bytes, start, StreamId::MAX, count)
        .map(Ok)
        .map_err(corrupt)
}

/// The answer to `read` for a key's live record, or `Err` with the kind of value it
/// holds if that is not a sorted set.
fn zset_answer(record: Option<Record>, read: &ZSetRead) -> Answered {
    answer_with(record, Record::zset, |set| zset::answer(read, set))
}

/// The answer to `read` for a key's live record, or `Err` with the kind of value it
/// holds if that is not a hash.
fn hash_answer(record: Option<Record>, read: &HashRead) -> Answered {
    answer_with(record, Record::hash, |fields| hash::answer(read, fields))
}

/// A read's answer, or the kind of value the key holds if the read is not for it.
type Answered = Result<Result<Output, ValueKind>, StoreError>;

/// `answer` for the collection `decode` finds in `record` (`None` without one).
fn answer_with<C>(
    record: Option<Record>,
    decode: fn(&Record) -> Result<Result<C, ValueKind>, StoreError>,
    answer: impl FnOnce(Option<&C>) -> Output,
) -> Answered {
    let collection = match record {
        Some(record) => match decode(&record)? {
            Ok(collection) => Some(collection),
            Err(found) => return Ok(Err(found)),
        },
        None => None,
    };
    Ok(Ok(answer(collection.as_ref())))
}

/// A snapshot in progress: an iterator of encoded chunks from one consistent view.
pub struct SnapshotStream {
    range: redb::Range<'static, &'static [u8], &'static [u8]>,
    applied_index: u64,
    entry_count: u64,
    emitted: u64,
    next_seq: u32,
    chunk_bytes: usize,
    /// An entry read from the range that did not fit in the previous chunk.
    pending: Option<SnapshotEntry>,
    done: bool,
}

impl std::fmt::Debug for SnapshotStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotStream")
            .field("applied_index", &self.applied_index)
            .field("entry_count", &self.entry_count)
            .field("emitted", &self.emitted)
            .finish_non_exhaustive()
    }
}

impl SnapshotStream {
    /// A stream of the state `txn` sees.
    fn open(txn: &redb::ReadTransaction, chunk_bytes: usize) -> Result<Self, StoreError> {
        let applied_index = txn
            .open_table(META)
            .map_err(db_err)?
            .get(META_APPLIED)
            .map_err(db_err)?
            .map_or(0, |g| g.value());
        let kv = txn.open_table(KV).map_err(db_err)?;
        let entry_count = kv.len().map_err(db_err)?;
        let range = kv.range::<&[u8]>(..).map_err(db_err)?;
        Ok(Self {
            range,
            applied_index,
            entry_count,
            emitted: 0,
            next_seq: 0,
            chunk_bytes,
            pending: None,
            done: false,
        })
    }

    /// The applied index the snapshot captures.
    #[must_use]
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// How many keys the snapshot carries.
    #[must_use]
    pub fn entry_count(&self) -> u64 {
        self.entry_count
    }

    fn next_entry(&mut self) -> Option<Result<SnapshotEntry, StoreError>> {
        if let Some(entry) = self.pending.take() {
            return Some(Ok(entry));
        }
        let item = self.range.next()?;
        Some(item.map_err(db_err).and_then(|(key, value)| {
            let record = decode_record(value.value())?;
            Ok(SnapshotEntry {
                key: key.value().to_vec(),
                expire_at_ms: record.expire_at_ms,
                kind: record.kind,
                value: record.value,
            })
        }))
    }

    fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        if self.done {
            return Ok(None);
        }
        if self.next_seq == 0 {
            self.next_seq = 1;
            return Ok(Some(snapshot::header_chunk(
                self.applied_index,
                self.entry_count,
            )));
        }
        let mut payload = Vec::new();
        while let Some(entry) = self.next_entry() {
            let entry = entry?;
            let size = ENTRY_OVERHEAD_BYTES + entry.key.len() + entry.value.len();
            if !payload.is_empty() && payload.len() + size > self.chunk_bytes {
                self.pending = Some(entry);
                break;
            }
            snapshot::push_entry(&mut payload, &entry);
            self.emitted += 1;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        if payload.is_empty() {
            assert_eq!(
                self.emitted, self.entry_count,
                "the view changed under a snapshot"
            );
            self.done = true;
            return Ok(Some(snapshot::footer_chunk(seq, self.emitted)));
        }
        Ok(Some(snapshot::entries_chunk(seq, &payload)))
    }
}

impl Iterator for SnapshotStream {
    type Item = Result<Vec<u8>, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_chunk() {
            Ok(chunk) => chunk.map(Ok),
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// A store whose database file fails its syncs on demand, for tests of what a storage
/// failure does.
#[cfg(test)]
pub(crate) mod failing {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use redb::Database;

    use super::{KvStateMachine, StoreOptions};

    /// An in-memory file whose syncs fail while `fail` is set.
    #[derive(Debug, Default)]
    struct FailingSyncs {
        file: redb::backends::InMemoryBackend,
        fail: Arc<AtomicBool>,
    }

    impl redb::StorageBackend for FailingSyncs {
        fn len(&self) -> std::io::Result<u64> {
            self.file.len()
        }
        fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
            self.file.read(offset, out)
        }
        fn set_len(&self, len: u64) -> std::io::Result<()> {
            self.file.set_len(len)
        }
        fn sync_data(&self) -> std::io::Result<()> {
            if self.fail.load(Ordering::Relaxed) {
                return Err(std::io::Error::other("sync refused"));
            }
            self.file.sync_data()
        }
        fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
            self.file.write(offset, data)
        }
    }

    /// A store on such a file, and the switch that makes its syncs fail.
    pub(crate) fn store(options: StoreOptions) -> (KvStateMachine, Arc<AtomicBool>) {
        let backend = FailingSyncs::default();
        let fail = Arc::clone(&backend.fail);
        let db = Database::builder()
            .create_with_backend(backend)
            .expect("an in-memory database opens");
        let store = KvStateMachine::init(db, options).expect("a fresh store opens");
        (store, fail)
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn set(key: &str, value: &str) -> Command {
        Command::Set {
            key: key.into(),
            value: value.into(),
            expire_at_ms: None,
            condition: SetCondition::Always,
        }
    }

    fn buffered(keys_max: usize) -> KvStateMachine {
        KvStateMachine::in_memory_with(StoreOptions {
            sync_writes: false,
            buffer_keys_max: keys_max,
            ..StoreOptions::default()
        })
        .unwrap()
    }

    fn values(store: &KvStateMachine, keys: &[&str]) -> Vec<Option<String>> {
        store
            .mget(keys, 0)
            .unwrap()
            .into_iter()
            .map(|v| v.map(|v| String::from_utf8(v).unwrap()))
            .collect()
    }

    fn in_redb(store: &KvStateMachine) -> u64 {
        store.read_state().redb.kv.len().unwrap()
    }

    #[test]
    fn applies_go_on_while_a_flush_writes() {
        let store = buffered(2);
        store.hold_flushes.set(true);
        store.apply(1, &set("a", "1"), 0).unwrap();
        store.apply(2, &set("b", "1"), 0).unwrap();
        assert!(
            store.lock_writer().flushing.is_some(),
            "a full layer starts a flush"
        );
        // Held before it writes; applying goes on, up to twice the limit, without it.
        store.apply(3, &set("a", "2"), 0).unwrap();
        store.apply(4, &set("c", "1"), 0).unwrap();
        assert_eq!(store.applied_index(), 4);
        assert_eq!(
            values(&store, &["a", "b", "c"]),
            [Some("2"), Some("1"), Some("1")].map(|v| v.map(String::from))
        );
        assert_eq!(store.key_count().unwrap(), 3);
        assert_eq!(in_redb(&store), 0, "the flush has not written yet");
        store.hold_flushes.set(false);
        store.persist().unwrap();
        assert_eq!(in_redb(&store), 3);
        let state = store.read_state();
        assert!(state.layers.is_clear());
    }

    #[test]
    fn a_flush_thread_that_cannot_start_loses_no_apply() {
        let store = Arc::new(buffered(2));
        store.hold_flushes.set(true);
        store.apply(1, &set("a", "1"), 0).unwrap();
        store.apply(2, &set("b", "1"), 0).unwrap();
        assert!(store.lock_writer().flushing.is_some());
        store.apply(3, &set("c", "1"), 0).unwrap();
        store.refuse_flush_threads.store(true, Ordering::Relaxed);
        // The refused flush waits for the held one before it puts the layers back: the
        // gate opens from elsewhere once both layers are frozen, so the held flush is
        // still running when the refusal comes.
        let opener = {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                while store.read_state().layers.frozen.len() < 2 {
                    std::thread::yield_now();
                }
                store.hold_flushes.set(false);
            })
        };
        let refused = store.begin_persist();
        opener.join().unwrap();
        assert!(matches!(refused, Err(StoreError::Storage { .. })));
        let one = |v: &str| Some(v.to_owned());
        assert_eq!(
            values(&store, &["a", "b", "c"]),
            [one("1"), one("1"), one("1")]
        );
        assert!(
            store.lock_writer().flushing.is_none(),
            "the flush before was waited for"
        );
        let state = store.read_state();
        assert!(state.layers.frozen.is_empty());
        assert_eq!(state.layers.active.keys(), 3, "every layer went back");
        drop(state);
        // Once threads start again, everything reaches redb.
        store.refuse_flush_threads.store(false, Ordering::Relaxed);
        store.persist().unwrap();
        assert_eq!(in_redb(&store), 3);
        assert!(store.read_state().layers.is_clear());
    }

    #[test]
    fn a_snapshot_holds_the_state_it_began_at_without_waiting_for_a_flush() {
        let store = buffered(2);
        store.hold_flushes.set(true);
        store.apply(1, &set("a", "1"), 0).unwrap();
        store.apply(2, &set("b", "1"), 0).unwrap();
        store.apply(3, &set("c", "1"), 0).unwrap();
        // A flush of a and b is held; the snapshot's own waits behind it, and this
        // would hang if it waited here instead.
        let pending = store.begin_snapshot(256).unwrap();
        assert_eq!(pending.applied_index(), 3);
        assert_eq!(store.read_state().layers.frozen.len(), 2);
        // Not in the snapshot: applied while its flush waits.
        store.apply(4, &set("a", "2"), 0).unwrap();
        store.apply(5, &set("d", "1"), 0).unwrap();
        store.hold_flushes.set(false);
        let stream = pending.wait().unwrap();
        assert_eq!((stream.applied_index(), stream.entry_count()), (3, 3));
        let chunks: Vec<Vec<u8>> = stream.collect::<Result<_, _>>().unwrap();
        let copy = buffered(1000);
        assert_eq!(copy.restore(chunks).unwrap().applied_index, 3);
        let one = |v: &str| Some(v.to_owned());
        assert_eq!(
            values(&copy, &["a", "b", "c", "d"]),
            [one("1"), one("1"), one("1"), None]
        );
        assert_eq!(
            values(&store, &["a", "b", "c", "d"]),
            [one("2"), one("1"), one("1"), one("1")]
        );
    }

    #[test]
    fn a_failed_flush_loses_no_apply_and_reports_its_error() {
        let (store, fail) = failing::store(StoreOptions {
            sync_writes: false,
            buffer_keys_max: 1000,
            ..StoreOptions::default()
        });
        store.hold_flushes.set(true);
        store.apply(1, &set("a", "1"), 0).unwrap();
        store.begin_persist().unwrap();
        store.apply(2, &set("b", "1"), 0).unwrap();
        fail.store(true, Ordering::Relaxed);
        store.hold_flushes.set(false);
        // Waiting for the failed flush reports its error ...
        assert!(matches!(store.persist(), Err(StoreError::Storage { .. })));
        // ... and nothing applied is lost from view.
        assert_eq!(
            values(&store, &["a", "b"]),
            [Some("1"), Some("1")].map(|v| v.map(String::from))
        );
        let state = store.read_state();
        assert!(state.layers.frozen.is_empty());
        assert_eq!(
            state.layers.active.keys(),
            2,
            "the failed layer went back under the new one"
        );
    }
}
