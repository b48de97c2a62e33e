//! Write commands, their results, and the versioned binary encoding of log entries.
//!
//! Everything a replica needs to apply a write deterministically travels inside the
//! command: expiry is an absolute time in milliseconds since the Unix epoch, resolved
//! by the proposer from `EX`/`PX`; the apply time itself travels in [`LogEntry`].

use serde::{Deserialize, Serialize};

use crate::bits::{BitOp, BitQuery};

/// Version byte written in front of every encoded [`Command`] and [`LogEntry`].
pub const FORMAT_VERSION: u8 = 1;

/// Errors from decoding a [`Command`] or [`LogEntry`] received from disk or the network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The input was empty: not even a version byte.
    #[error("encoded command is empty")]
    Empty,
    /// The version byte names a format this build does not know.
    #[error("unsupported command format version {found} (this build reads {expected})")]
    UnsupportedVersion {
        /// The version byte found.
        found: u8,
        /// The version this build reads.
        expected: u8,
    },
    /// The body is not a valid postcard encoding of a command.
    #[error("malformed command body: {reason}")]
    Malformed {
        /// What postcard reported.
        reason: String,
    },
    /// Bytes were left over after a complete command.
    #[error("{extra} trailing bytes after the command")]
    TrailingBytes {
        /// How many bytes were left.
        extra: usize,
    },
    /// The command decoded but breaks a rule every command must satisfy.
    #[error("invalid command: {reason}")]
    Invalid {
        /// Which rule was broken.
        reason: &'static str,
    },
}

/// When a `SET` takes effect, depending on whether the key already holds a live value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetCondition {
    /// Always write (plain `SET`).
    Always,
    /// Write only if the key is absent or expired (`SET ... NX`).
    IfAbsent,
    /// Write only if the key holds a live value (`SET ... XX`).
    IfPresent,
}

/// What a `SET` does to the key's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expiry {
    /// The key never expires: a previous expiry is cleared (no expiry option).
    Clear,
    /// The key expires at this absolute time, in Unix milliseconds (`EX`, `PX`, `EXAT`,
    /// `PXAT`, resolved by the proposer).
    At(u64),
    /// The key keeps the expiry it has, if it holds a live value (`KEEPTTL`).
    Keep,
}

/// When an `EXPIRE` takes effect, depending on the key's current expiry. A key without
/// an expiry counts as expiring never: later than any time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpireCondition {
    /// Always (no option).
    Always,
    /// Only if the key has no expiry (`NX`).
    IfNone,
    /// Only if the key has an expiry (`XX`).
    IfSome,
    /// Only if the new expiry is later than the current one (`GT`, or `XX GT`): never for
    /// a key without an expiry.
    IfLater,
    /// Only if the new expiry is sooner than the current one (`LT`): always for a key
    /// without an expiry.
    IfSooner,
    /// Only if the key has an expiry and the new one is sooner (`XX LT`).
    IfSomeAndSooner,
}

impl ExpireCondition {
    /// Whether an expiry at `at_ms` may replace `current` (`None`: the key has none).
    #[must_use]
    pub fn allows(self, current: Option<u64>, at_ms: u64) -> bool {
        match self {
            Self::Always => true,
            Self::IfNone => current.is_none(),
            Self::IfSome => current.is_some(),
            Self::IfLater => current.is_some_and(|now| at_ms > now),
            Self::IfSooner => current.is_none_or(|now| at_ms < now),
            Self::IfSomeAndSooner => current.is_some_and(|now| at_ms < now),
        }
    }
}

/// The latest absolute expiry a command may carry: Redis's own ceiling, `i64::MAX`
/// milliseconds, so a stored expiry never reaches the "no expiry" marker.
pub const EXPIRE_AT_MS_MAX: u64 = i64::MAX as u64;

/// The longest value a command may make from less than its own bytes (`SETRANGE` pads
/// with zeros): Redis's own ceiling, 512 MiB.
pub const VALUE_BYTES_MAX: u64 = 512 << 20;

/// A replicated write. Variants are only ever appended, so older entries keep decoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Command {
    /// `SET key value [NX|XX] [EX|PX|EXAT|PXAT]`: any previous expiry is cleared.
    Set {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// The new value.
        #[serde(with = "byte_strings::one")]
        value: Vec<u8>,
        /// Absolute expiry in Unix milliseconds, resolved by the proposer.
        expire_at_ms: Option<u64>,
        /// Whether the write depends on the key's presence.
        condition: SetCondition,
    },
    /// `DEL key [key ...]`.
    Del {
        /// The keys to delete (at least one).
        #[serde(with = "byte_strings::many")]
        keys: Vec<Vec<u8>>,
    },
    /// `INCRBY key delta`; `INCR`, `DECR` and `DECRBY` map onto it. Keeps the key's expiry.
    IncrBy {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// The signed amount to add.
        delta: i64,
    },
    /// `MSET key value [key value ...]`: clears the expiry of every key written.
    MSet {
        /// The pairs, applied in order (a repeated key keeps its last value).
        #[serde(with = "byte_strings::pairs")]
        pairs: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// Deletes up to `batch_max` keys whose expiry lies before the entry's time.
    ///
    /// Proposed periodically by the leader so that expired keys leave every replica at
    /// the same log index.
    PurgeExpired {
        /// The most keys one purge removes (bounds the size of one write transaction).
        batch_max: u32,
    },
    /// `CLUSTER MEET id ip:port`: node `id` listens for peers at `address`. Changes no
    /// key; every replica records the address in its address book as it applies it.
    Meet {
        /// The node.
        id: u64,
        /// Where it listens for peers, as `ip:port`.
        address: String,
    },
    /// `SET key value [NX|XX] [GET] [EX|PX|EXAT|PXAT|KEEPTTL]` with `KEEPTTL` or `GET`.
    /// A `SET` with neither is proposed as [`Command::Set`], whose encoding builds from
    /// before this variant also read.
    SetWith {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// The new value.
        #[serde(with = "byte_strings::one")]
        value: Vec<u8>,
        /// What happens to the key's expiry.
        expiry: Expiry,
        /// Whether the write depends on the key's presence.
        condition: SetCondition,
        /// Answer with the value the key held before, whether or not the write happened
        /// ([`Output::Value`]).
        get: bool,
    },
    /// `EXPIRE`, `PEXPIRE`, `EXPIREAT` and `PEXPIREAT`: sets the expiry of a key that
    /// holds a live value. An expiry at or before the entry's time deletes the key.
    Expire {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// The new expiry in Unix milliseconds, resolved by the proposer (0 for a time
        /// before the epoch).
        expire_at_ms: u64,
        /// When the new expiry replaces the current one.
        condition: ExpireCondition,
    },
    /// `PERSIST key`: clears the expiry of a key that holds a live value.
    Persist {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
    },
    /// `GETDEL key`: deletes the key and answers with the live value it held
    /// ([`Output::Value`]).
    GetDel {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
    },
    /// `GETEX key EX|PX|EXAT|PXAT|PERSIST`: changes the expiry of a key that holds a live
    /// value and answers with the value ([`Output::Value`]). An expiry at or before the
    /// entry's time deletes the key. [`Expiry::Keep`] changes nothing.
    GetEx {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// The new expiry: [`Expiry::Clear`] for `PERSIST`.
        expiry: Expiry,
    },
    /// `APPEND key value`: appends to the live value (or sets it, without an expiry, on
    /// a key without one), keeping the key's expiry; answers with the new length
    /// ([`Output::Integer`]). A result longer than `len_max` bytes is refused
    /// ([`Rejection::TooLong`]).
    Append {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// The bytes to append.
        #[serde(with = "byte_strings::one")]
        value: Vec<u8>,
        /// The longest value the append may leave, fixed by the proposer so that every
        /// replica decides alike.
        len_max: u64,
    },
    /// `MSETNX key value [key value ...]`: sets every pair, without an expiry, only if
    /// none of the keys holds a live value ([`Output::Changed`]).
    MSetNx {
        /// The pairs, applied in order (a repeated key keeps its last value).
        #[serde(with = "byte_strings::pairs")]
        pairs: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// `MULTI` ... `EXEC`: the queued commands, run one after the other at this entry's
    /// place in the log, with nothing in between; answers with each one's output
    /// ([`Output::Each`]). A command that is rejected does not stop the others. If a key
    /// `WATCH`ed before no longer holds what it held then, nothing runs
    /// ([`Output::Aborted`]).
    Transaction {
        /// The commands, in the order queued: writes (never a transaction, a purge or a
        /// MEET) and reads.
        ops: Vec<TxOp>,
        /// The most value bytes the reads may return together; a read past it is
        /// rejected ([`Rejection::ReadTooLarge`]), and the writes go on.
        read_bytes_max: u64,
        /// The keys watched, with what each held when watched.
        watched: Vec<Watched>,
    },
    /// `FLUSHALL` and `FLUSHDB`: deletes every key.
    FlushAll,
    /// `RENAME from to` and `RENAMENX from to` (`if_absent`): moves the live value of
    /// `from`, with its expiry, to `to`, replacing what `to` held, unless `if_absent` and
    /// `to` holds a live value. Answers [`Output::Ok`] (`RENAME`) or
    /// [`Output::Changed`] (`RENAMENX`), and [`Rejection::NoSuchKey`] when `from` holds
    /// no live value. Renaming a key to itself changes nothing.
    Rename {
        /// The key moved.
        #[serde(with = "byte_strings::one")]
        from: Vec<u8>,
        /// Where it goes.
        #[serde(with = "byte_strings::one")]
        to: Vec<u8>,
        /// Only if `to` holds no live value (`RENAMENX`).
        if_absent: bool,
    },
    /// `COPY from to [REPLACE]`: copies the live value of `from`, with its expiry, to
    /// `to`, unless `to` holds a live value and not `replace` ([`Output::Changed`]).
    Copy {
        /// The key copied.
        #[serde(with = "byte_strings::one")]
        from: Vec<u8>,
        /// Where the copy goes (never `from`: the proposer refuses that).
        #[serde(with = "byte_strings::one")]
        to: Vec<u8>,
        /// Whether a live value at `to` is replaced.
        replace: bool,
    },
    /// `SETRANGE key offset value`: overwrites the live value from `offset` on, padding
    /// with zero bytes, and keeps the key's expiry; answers with the new length
    /// ([`Output::Integer`]). An empty `value` changes nothing (and creates no key). A
    /// result longer than `len_max` bytes is refused ([`Rejection::TooLong`]).
    SetRange {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// Where the bytes go.
        offset: u64,
        /// The bytes written.
        #[serde(with = "byte_strings::one")]
        value: Vec<u8>,
        /// The longest value the write may leave, fixed by the proposer.
        len_max: u64,
    },
    /// `INCRBYFLOAT key increment`: adds `increment` to the live value, exactly, in
    /// decimal, and keeps the key's expiry; a key without a value counts as 0. Answers
    /// with the new value ([`Output::Value`]), rounded to 17 digits after the point.
    /// [`Rejection::NotAFloat`] if the value is not a float;
    /// [`Rejection::FloatOutOfRange`] if the sum passes what a C `long double` holds.
    IncrByFloat {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// The amount, as the client wrote it (a float by Redis's rules).
        #[serde(with = "byte_strings::one")]
        increment: Vec<u8>,
    },
    /// `SETBIT key offset value`: sets one bit of the live value (bit 0 is the most
    /// significant bit of the first byte), growing it with zero bytes, and keeps the
    /// key's expiry; answers with the bit's previous value ([`Output::Integer`]).
    SetBit {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// The bit, below 8 × [`VALUE_BYTES_MAX`].
        offset: u64,
        /// Set (1) or clear (0).
        on: bool,
    },
    /// `BITOP AND|OR|XOR|NOT dest key [key ...]`: stores the bitwise operation of the
    /// sources' live values (a shorter one counts as padded with zero bytes) at `dest`,
    /// without an expiry, and answers with its length ([`Output::Integer`]). An empty
    /// result deletes `dest`.
    BitOp {
        /// The operation; `NOT` takes one source.
        op: BitOp,
        /// Where the result goes.
        #[serde(with = "byte_strings::one")]
        dest: Vec<u8>,
        /// The sources, at least one.
        #[serde(with = "byte_strings::many")]
        keys: Vec<Vec<u8>>,
    },
    /// `HSET key field value [field value ...]`, `HMSET`, and `HSETNX key field value`
    /// (`if_absent`): sets the fields of the key's hash, in order (a repeated field keeps
    /// its last value), creating it without an expiry if the key holds no value, and
    /// keeping its expiry if it does. Answers how many fields are new
    /// ([`Output::Count`]), or for `if_absent` whether it wrote ([`Output::Changed`]:
    /// not if any field is there). [`Rejection::WrongType`] if the key holds another
    /// kind of value; [`Rejection::TooLong`] if the hash would take more than
    /// [`VALUE_BYTES_MAX`].
    HSet {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// The fields and their values (at least one pair; one for `if_absent`).
        #[serde(with = "byte_strings::pairs")]
        pairs: Vec<(Vec<u8>, Vec<u8>)>,
        /// Only if the field is not there (`HSETNX`).
        if_absent: bool,
    },
    /// `HDEL key field [field ...]`: removes fields from the key's hash, and the key with
    /// its last field; answers how many were there ([`Output::Count`]).
    HDel {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// The fields (at least one).
        #[serde(with = "byte_strings::many")]
        fields: Vec<Vec<u8>>,
    },
    /// `HINCRBY key field delta`: adds to a field's integer (0 if the field is not there)
    /// and answers with the sum ([`Output::Integer`]); [`Rejection::HashNotAnInteger`]
    /// or [`Rejection::Overflow`] as for `INCRBY`.
    HIncrBy {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// The field.
        #[serde(with = "byte_strings::one")]
        field: Vec<u8>,
        /// The signed amount to add.
        delta: i64,
    },
    /// `HINCRBYFLOAT key field increment`: as [`Command::IncrByFloat`], on a field;
    /// [`Rejection::HashNotAFloat`] if the field does not hold a float.
    HIncrByFloat {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// The field.
        #[serde(with = "byte_strings::one")]
        field: Vec<u8>,
        /// The amount, as the client wrote it (a float by Redis's rules).
        #[serde(with = "byte_strings::one")]
        increment: Vec<u8>,
    },
    /// `SADD key member [member ...]`: adds the members not yet in the key's set,
    /// creating it without an expiry if the key holds no value; answers how many were
    /// added ([`Output::Count`]). [`Rejection::WrongType`] if the key holds another kind
    /// of value; [`Rejection::TooLong`] if the set would take more than
    /// [`VALUE_BYTES_MAX`].
    SAdd {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// The members (at least one).
        #[serde(with = "byte_strings::many")]
        members: Vec<Vec<u8>>,
    },
    /// `SREM key member [member ...]`: removes members from the key's set, and the key
    /// with its last member; answers how many were there ([`Output::Count`]).
    SRem {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// The members (at least one).
        #[serde(with = "byte_strings::many")]
        members: Vec<Vec<u8>>,
    },
    /// `SMOVE source destination member`: moves `member` from one set to another
    /// (created without an expiry if need be); answers whether it was in the source
    /// ([`Output::Changed`]). Both keys must hold sets or nothing.
    SMove {
        /// The source.
        #[serde(with = "byte_strings::one")]
        from: Vec<u8>,
        /// The destination.
        #[serde(with = "byte_strings::one")]
        to: Vec<u8>,
        /// The member moved.
        #[serde(with = "byte_strings::one")]
        member: Vec<u8>,
    },
    /// `SPOP key [count]`: removes members chosen by [`crate::set::Random`] from `seed`,
    /// which the proposer draws, so every replica removes the same ones. Answers the
    /// member ([`Output::Value`]) or, with a count, the members ([`Output::Values`]).
    SPop {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// How many to remove (`None`: one, answered alone).
        count: Option<u64>,
        /// The generator's seed.
        seed: u64,
    },
    /// `SINTERSTORE`, `SUNIONSTORE`, `SDIFFSTORE dest key [key ...]`: stores the sets'
    /// intersection, union or difference at `dest`, without an expiry, whatever `dest`
    /// held, and answers its size ([`Output::Count`]); an empty result removes `dest`.
    /// A key without a value counts as an empty set; one of another kind is
    /// [`Rejection::WrongType`].
    SetStore {
        /// What is computed.
        op: SetOp,
        /// Where the result goes.
        #[serde(with = "byte_strings::one")]
        dest: Vec<u8>,
        /// The sets, at least one.
        #[serde(with = "byte_strings::many")]
        keys: Vec<Vec<u8>>,
    },
    /// `LPUSH`, `RPUSH`, `LPUSHX`, `RPUSHX key item [item ...]`: pushes the items one
    /// after the other at the head (`front`) or the tail of the key's list, creating it
    /// without an expiry unless `if_exists`; answers the new length ([`Output::Count`];
    /// 0 when `if_exists` finds no list). [`Rejection::WrongType`], [`Rejection::TooLong`]
    /// as for `SADD`.
    Push {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// The items (at least one).
        #[serde(with = "byte_strings::many")]
        items: Vec<Vec<u8>>,
        /// At the head, else the tail.
        front: bool,
        /// Only onto a list that exists (`LPUSHX`, `RPUSHX`).
        if_exists: bool,
    },
    /// `LPOP`, `RPOP key [count]`: removes items from the head (`front`) or the tail;
    /// answers the item ([`Output::Value`]) or, with a count, the items
    /// ([`Output::Values`]; [`Output::Value`] `None` when the key holds no list).
    Pop {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// At the head, else the tail.
        front: bool,
        /// How many (`None`: one, answered alone).
        count: Option<u64>,
    },
    /// `LSET key index item`: [`Output::Ok`], [`Rejection::NoSuchKey`] or
    /// [`Rejection::IndexOutOfRange`].
    LSet {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// The place; negative counts from the end.
        index: i64,
        /// The new item.
        #[serde(with = "byte_strings::one")]
        item: Vec<u8>,
    },
    /// `LREM key count item`: removes occurrences of `item`, the first `count` from the
    /// head if it is positive, the last `-count` from the tail if it is negative, all of
    /// them if it is 0; answers how many ([`Output::Count`]).
    LRem {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// How many, and from which end.
        count: i64,
        /// The item removed.
        #[serde(with = "byte_strings::one")]
        item: Vec<u8>,
    },
    /// `LTRIM key start stop`: keeps only the items [`crate::list::range`] picks
    /// ([`Output::Ok`]).
    LTrim {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// The first item kept.
        start: i64,
        /// The last item kept.
        stop: i64,
    },
    /// `LINSERT key BEFORE|AFTER pivot item`: answers the new length, -1 without the
    /// pivot, 0 without a list ([`Output::Integer`]).
    LInsert {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// Before the pivot, else after it.
        before: bool,
        /// The first item equal to this one is the pivot.
        #[serde(with = "byte_strings::one")]
        pivot: Vec<u8>,
        /// The item inserted.
        #[serde(with = "byte_strings::one")]
        item: Vec<u8>,
    },
    /// `LMOVE source destination LEFT|RIGHT LEFT|RIGHT` and `RPOPLPUSH`: pops an item
    /// from one end of `from` and pushes it at one end of `to` (created without an
    /// expiry if need be); answers it ([`Output::Value`], `None` without a source).
    LMove {
        /// The source.
        #[serde(with = "byte_strings::one")]
        from: Vec<u8>,
        /// The destination (may be the source: the list rotates).
        #[serde(with = "byte_strings::one")]
        to: Vec<u8>,
        /// Popped from the head, else the tail.
        from_front: bool,
        /// Pushed at the head, else the tail.
        to_front: bool,
    },
    /// `ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]` and
    /// `ZINCRBY key increment member`: sets the members' scores as [`crate::zset`]
    /// describes, creating the sorted set without an expiry unless nothing is added.
    /// Answers how many members were added (and, with `changed`, updated;
    /// [`Output::Count`]) or, with `incr`, the new score ([`Output::Score`], `None` if a
    /// condition stopped it). [`Rejection::ScoreNaN`] if an increment makes a NaN;
    /// [`Rejection::WrongType`], [`Rejection::TooLong`] as for `SADD`.
    ZAdd {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// Scores and members, at least one (exactly one with `incr`).
        #[serde(with = "byte_strings::scored")]
        entries: Vec<(Score, Vec<u8>)>,
        /// The options.
        options: ZAddOptions,
    },
    /// `ZREM key member [member ...]`: removes members, and the key with its last one;
    /// answers how many were there ([`Output::Count`]).
    ZRem {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// The members (at least one).
        #[serde(with = "byte_strings::many")]
        members: Vec<Vec<u8>>,
    },
    /// `ZPOPMIN`, `ZPOPMAX key [count]`: removes the members of the lowest (or, with
    /// `max`, highest) scores, and answers them with their scores in the order removed
    /// ([`Output::Scored`]).
    ZPop {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// From the highest scores, else the lowest.
        max: bool,
        /// How many (at most).
        count: u64,
    },
    /// `ZREMRANGEBYRANK`, `ZREMRANGEBYSCORE`, `ZREMRANGEBYLEX key min max`: removes the
    /// members `by` picks; answers how many ([`Output::Count`]).
    ZRemRange {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// Which members.
        by: ZRangeBy,
    },
    /// `ZUNIONSTORE`, `ZINTERSTORE`, `ZDIFFSTORE dest numkeys key [key ...] [WEIGHTS
    /// weight ...] [AGGREGATE SUM|MIN|MAX]`: stores `op` over the keys' sorted sets
    /// ([`crate::zset::combine`]; a set counts as members scored 1, a key without a
    /// value as empty) at `dest`, without an expiry, whatever `dest` held; an empty
    /// result removes `dest`. Answers its size ([`Output::Count`]);
    /// [`Rejection::WrongType`] if a key holds another kind of value.
    ZStore {
        /// What is computed.
        op: SetOp,
        /// Where the result goes.
        #[serde(with = "byte_strings::one")]
        dest: Vec<u8>,
        /// The sources, at least one.
        #[serde(with = "byte_strings::many")]
        keys: Vec<Vec<u8>>,
        /// One weight for each source, or none for weights of 1.
        weights: Vec<Score>,
        /// How the scores of a member in several sources combine.
        aggregate: Aggregate,
    },
    /// `ZRANGESTORE dest source min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]`:
    /// stores the members `range` picks from `source` at `dest` as `ZSTORE` does;
    /// answers how many ([`Output::Count`]).
    ZRangeStore {
        /// Where the result goes.
        #[serde(with = "byte_strings::one")]
        dest: Vec<u8>,
        /// The sorted set read.
        #[serde(with = "byte_strings::one")]
        source: Vec<u8>,
        /// Which members.
        range: ZRange,
    },
    /// `PUBLISH channel message`: changes nothing; every node that applies it hands the
    /// message to its subscribers to `channel` (see [`crate::store::KvStateMachine::set_publisher`]),
    /// and answers how many it reached ([`Output::Count`]).
    Publish {
        /// The channel.
        #[serde(with = "byte_strings::one")]
        channel: Vec<u8>,
        /// The message.
        #[serde(with = "byte_strings::one")]
        message: Vec<u8>,
    },
    /// `LMPOP`, `ZMPOP numkeys key [key ...] LEFT|RIGHT|MIN|MAX [COUNT count]`: pops up
    /// to `count` items or members from the first key that holds a value, as `LPOP` or
    /// `ZPOPMIN` with a count would; answers from which key and what
    /// ([`Output::PoppedFrom`], `None` when no key holds a value).
    /// [`Rejection::WrongType`] if the first key holding a value holds another kind.
    MPop {
        /// The keys, in the order they are looked at (at least one).
        #[serde(with = "byte_strings::many")]
        keys: Vec<Vec<u8>>,
        /// What is popped, and from which end.
        from: MPopFrom,
        /// How many at most (at least 1).
        count: u64,
    },
    /// `XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] id field value
    /// [field value ...]`: adds an entry under the ID `id` makes of the stream's last
    /// ([`crate::stream`]; `*` takes the entry's time), creating the stream without an
    /// expiry unless `no_mkstream`, then trims it. Answers the ID
    /// ([`Output::StreamId`], `None` for a missing key with `no_mkstream`);
    /// [`Rejection::StreamIdTooSmall`] or [`Rejection::StreamExhausted`] if no ID can
    /// follow the last; [`Rejection::WrongType`], [`Rejection::TooLong`] as for `SADD`.
    XAdd {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// How the entry's ID is chosen.
        id: NewId,
        /// Fields and values, one after the other (at least one pair).
        #[serde(with = "byte_strings::many")]
        fields: Vec<Vec<u8>>,
        /// Leave a missing key alone (`NOMKSTREAM`).
        no_mkstream: bool,
        /// What is trimmed after the add.
        trim: Option<Trim>,
    },
    /// `XDEL key id [id ...]`: removes the entries of those IDs; answers how many were
    /// there ([`Output::Count`]). The stream stays, even empty. With `bad_id`, an
    /// argument was not an ID: as in Redis, that is [`Rejection::InvalidStreamId`] only
    /// once the key is found to hold a stream (0 without a value, `WRONGTYPE` for
    /// another kind).
    XDel {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// The IDs (at least one, unless `bad_id`).
        ids: Vec<StreamId>,
        /// An argument was not an ID.
        bad_id: bool,
    },
    /// `XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]`: removes the oldest
    /// entries as `trim` says; answers how many ([`Output::Count`]). The stream stays,
    /// even empty.
    XTrim {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// What is trimmed.
        trim: Trim,
    },
    /// `XGROUP CREATE|SETID|DESTROY|CREATECONSUMER|DELCONSUMER key group ...`: changes
    /// the stream's consumer groups as [`GroupOp`] says.
    /// [`Rejection::NoStream`] without a stream (but for `CREATE ... MKSTREAM`),
    /// [`Rejection::NoGroup`] for a group that is not there (but for `CREATE` and
    /// `DESTROY`), [`Rejection::GroupExists`] for a `CREATE` of one that is, then
    /// [`Rejection::InvalidStreamId`] for an ID that was not one.
    XGroup {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// The group.
        #[serde(with = "byte_strings::one")]
        group: Vec<u8>,
        /// What changes.
        op: GroupOp,
    },
    /// `XREADGROUP GROUP group consumer [COUNT count] [NOACK] STREAMS key [key ...] id
    /// [id ...]`: for each key, the entries after the group's last delivered one (`>`),
    /// which become the consumer's pending entries (unless `no_ack`), or the consumer's
    /// own pending entries after an ID. Answers [`Output::Streams`] (an entry deleted
    /// since it was delivered has no fields); [`Rejection::NoGroup`] if a key holds no
    /// stream or no such group.
    XReadGroup {
        /// The group.
        #[serde(with = "byte_strings::one")]
        group: Vec<u8>,
        /// The consumer, created if need be.
        #[serde(with = "byte_strings::one")]
        consumer: Vec<u8>,
        /// What is read from each key (at least one).
        reads: Vec<GroupRead>,
        /// The most entries from each key; 0 for no limit.
        count: u64,
        /// Entries delivered need no acknowledgement.
        no_ack: bool,
    },
    /// `XACK key group id [id ...]`: the entries of those IDs are no longer pending;
    /// answers how many were ([`Output::Count`]; 0 without a stream or group).
    XAck {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// The group.
        #[serde(with = "byte_strings::one")]
        group: Vec<u8>,
        /// The IDs (at least one, unless `bad_id`).
        ids: Vec<StreamId>,
        /// An argument was not an ID: as in Redis, that is
        /// [`Rejection::InvalidStreamId`] only once the key is found to hold the group
        /// (0 without it, `WRONGTYPE` for another kind of value).
        bad_id: bool,
    },
    /// `XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME ms]
    /// [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID id]`: the pending entries of those
    /// IDs idle at least `min_idle_ms` become `consumer`'s, as [`crate::stream`]
    /// describes. Answers them ([`Output::Entries`], or with `just_id`
    /// [`Output::StreamIds`]); [`Rejection::NoGroup`] without the stream or group.
    XClaim {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// The group.
        #[serde(with = "byte_strings::one")]
        group: Vec<u8>,
        /// The consumer that claims.
        #[serde(with = "byte_strings::one")]
        consumer: Vec<u8>,
        /// Only entries delivered at least this long ago.
        min_idle_ms: u64,
        /// The entries.
        ids: Vec<StreamId>,
        /// When the entries count as delivered (`IDLE`, `TIME`); the entry's time
        /// without.
        delivered: Option<ClaimTime>,
        /// How many times they count as delivered (`RETRYCOUNT`); one more than before
        /// without (unchanged with `just_id`).
        retry_count: Option<u64>,
        /// Entries not pending are claimed too, if the stream holds them.
        force: bool,
        /// Answer IDs only, and leave the delivery counts.
        just_id: bool,
        /// The group's last delivered ID moves up to this one.
        last_id: Option<StreamId>,
    },
    /// `XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]`: the
    /// pending entries from `start` on, idle at least `min_idle_ms`, become
    /// `consumer`'s, up to `count` (looking at no more than ten times as many);
    /// entries deleted from the stream meanwhile leave the pending list. Answers
    /// [`Output::AutoClaimed`]; [`Rejection::NoGroup`] without the stream or group.
    XAutoClaim {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// The group.
        #[serde(with = "byte_strings::one")]
        group: Vec<u8>,
        /// The consumer that claims.
        #[serde(with = "byte_strings::one")]
        consumer: Vec<u8>,
        /// Only entries delivered at least this long ago.
        min_idle_ms: u64,
        /// Where to start among the pending entries.
        start: StreamId,
        /// The most entries claimed (at least 1).
        count: u64,
        /// Answer IDs only, and leave the delivery counts.
        just_id: bool,
    },
    /// `PFADD key [element ...]`: adds the elements to the HyperLogLog at `key`, made
    /// empty if there is none. Answers [`Output::Integer`] 1 if a register changed or
    /// the key was made, else 0; [`Rejection::NotHll`] or [`Rejection::CorruptHll`] for
    /// a string that is not a HyperLogLog.
    PfAdd {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// The elements, possibly none.
        #[serde(with = "byte_strings::many")]
        elements: Vec<Vec<u8>>,
    },
    /// `PFMERGE destkey [sourcekey ...]`: stores at `dest` the union of the
    /// HyperLogLogs at `dest` and the sources (keys without a value count as empty),
    /// dense if any of them is. Answers [`Output::Ok`], or a rejection as `PFADD`.
    PfMerge {
        /// The key written.
        #[serde(with = "byte_strings::one")]
        dest: Vec<u8>,
        /// The other keys read, possibly none.
        #[serde(with = "byte_strings::many")]
        sources: Vec<Vec<u8>>,
    },
    /// `GEOSEARCHSTORE dest source ...` and `GEORADIUS ... STORE|STOREDIST dest`: stores
    /// at `dest` the members of the sorted set at `source` that `search` finds, each
    /// scored by its geohash, or by its distance in the search's unit if `store_dist`;
    /// finding none (or no source), removes `dest`. Answers [`Output::Count`];
    /// [`Rejection::NoGeoMember`] if the search is centred on a member the set lacks.
    GeoStore {
        /// The key written.
        #[serde(with = "byte_strings::one")]
        dest: Vec<u8>,
        /// The sorted set searched.
        #[serde(with = "byte_strings::one")]
        source: Vec<u8>,
        /// The search.
        search: crate::geo::Search,
        /// Score the members stored by their distance rather than their geohash.
        store_dist: bool,
    },
    /// `EVAL script numkeys [key ...] [arg ...]` (and `EVALSHA`, `EVAL_RO`,
    /// `EVALSHA_RO`, the script found by its SHA-1 by the proposer): runs the Lua
    /// script, which calls commands through `redis.call` as a transaction would queue
    /// them. Answers [`Output::Script`], its reply or its error.
    Eval {
        /// The script's source.
        #[serde(with = "byte_strings::one")]
        script: Vec<u8>,
        /// `KEYS`.
        #[serde(with = "byte_strings::many")]
        keys: Vec<Vec<u8>>,
        /// `ARGV`.
        #[serde(with = "byte_strings::many")]
        args: Vec<Vec<u8>>,
        /// Refuse the commands that write (`EVAL_RO`, `EVALSHA_RO`).
        read_only: bool,
    },
}

/// One item of a script's reply, in RESP2's terms. An array is followed by its items,
/// so a reply of any depth is a flat list (and decoding one never recurses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplyItem {
    /// A null (`false` or `nil`).
    Null,
    /// An integer.
    Integer(i64),
    /// A bulk string.
    Bulk(#[serde(with = "byte_strings::one")] Vec<u8>),
    /// A status (`{ok = ...}`).
    Status(#[serde(with = "byte_strings::one")] Vec<u8>),
    /// An error (`{err = ...}`, or the script failed).
    Error(#[serde(with = "byte_strings::one")] Vec<u8>),
    /// An array of the next this many items (each with its own items).
    Array(u32),
}

/// When `XCLAIM` says claimed entries were delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClaimTime {
    /// `IDLE ms`: this long before the entry's time.
    Idle(i64),
    /// `TIME ms`: at this Unix time. A time before 0 or after the entry's is the
    /// entry's.
    At(i64),
}

/// A change to a stream's consumer groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupOp {
    /// `CREATE key group id|$ [MKSTREAM]`: a group that has delivered everything up to
    /// `start` ([`Output::Ok`]). `None` for an argument that was not an ID.
    Create {
        /// Where it starts.
        start: Option<GroupStart>,
        /// Create an empty stream if the key holds none.
        mkstream: bool,
    },
    /// `SETID key group id|$`: where the group has delivered up to ([`Output::Ok`]).
    /// `None` for an argument that was not an ID.
    SetId {
        /// The new place.
        start: Option<GroupStart>,
    },
    /// `DESTROY key group`: removes the group ([`Output::Count`], 1 or 0).
    Destroy,
    /// `CREATECONSUMER key group consumer` ([`Output::Count`], 1 or 0).
    CreateConsumer {
        /// The consumer.
        #[serde(with = "byte_strings::one")]
        consumer: Vec<u8>,
    },
    /// `DELCONSUMER key group consumer`: removes the consumer and its pending entries
    /// ([`Output::Count`], how many it had).
    DelConsumer {
        /// The consumer.
        #[serde(with = "byte_strings::one")]
        consumer: Vec<u8>,
    },
}

/// Where a consumer group starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupStart {
    /// `$`: the stream's last ID when the command applies.
    Last,
    /// This ID.
    At(StreamId),
}

/// What an `XREADGROUP` reads from one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRead {
    /// The key.
    #[serde(with = "byte_strings::one")]
    pub key: Vec<u8>,
    /// `None` for `>`, the entries never delivered to the group; else the consumer's
    /// pending entries after this ID.
    pub after: Option<StreamId>,
}

/// Which pending entries `XPENDING key group [[IDLE min-idle] start end count
/// [consumer]]` lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRange {
    /// The lowest ID.
    pub start: StreamId,
    /// The highest ID.
    pub end: StreamId,
    /// The most entries listed.
    pub count: u64,
    /// Only this consumer's.
    pub consumer: Option<Vec<u8>>,
    /// Only entries delivered at least this long ago, in milliseconds.
    pub min_idle_ms: u64,
}

/// A stream entry's ID: the milliseconds part, then a sequence number within it.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct StreamId {
    /// Milliseconds (for IDs `XADD` makes, Unix milliseconds).
    pub ms: u64,
    /// The sequence number.
    pub seq: u64,
}

impl StreamId {
    /// `0-0`, below every entry.
    pub const MIN: Self = Self { ms: 0, seq: 0 };
    /// The last ID there is.
    pub const MAX: Self = Self {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    /// The ID right after this one, if there is one.
    #[must_use]
    pub fn next(self) -> Option<Self> {
        match self.seq.checked_add(1) {
            Some(seq) => Some(Self { seq, ..self }),
            None => Some(Self {
                ms: self.ms.checked_add(1)?,
                seq: 0,
            }),
        }
    }

    /// The ID right before this one, if there is one.
    #[must_use]
    pub fn prev(self) -> Option<Self> {
        match self.seq.checked_sub(1) {
            Some(seq) => Some(Self { seq, ..self }),
            None => Some(Self {
                ms: self.ms.checked_sub(1)?,
                seq: u64::MAX,
            }),
        }
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// How `XADD` picks an entry's ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NewId {
    /// `*`: the entry's time, or right after the last ID if that is not later.
    Auto,
    /// `ms-*`: these milliseconds, and the sequence number after the last ID's if it
    /// has the same milliseconds (else 0).
    AutoSeq(u64),
    /// This ID, which must follow the last.
    Exact(StreamId),
}

/// What a stream trim removes: its oldest entries, until `by` holds, at most `limit` of
/// them (0: no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trim {
    /// How far.
    pub by: TrimBy,
    /// The most entries removed; 0 for no limit.
    pub limit: u64,
}

/// How far a stream trim goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrimBy {
    /// `MAXLEN`: until at most this many entries are left.
    MaxLen(u64),
    /// `MINID`: until no entry of a lower ID is left.
    MinId(StreamId),
}

/// A stream entry as reads answer it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamEntry {
    /// Its ID.
    pub id: StreamId,
    /// Its fields and values, one after the other; none for an entry deleted since it
    /// was delivered to a consumer group (`XREADGROUP` of a consumer's pending entries).
    #[serde(with = "byte_strings::many")]
    pub fields: Vec<Vec<u8>>,
}

/// A read of a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum StreamRead {
    /// `XLEN key`: [`Output::Count`].
    Len,
    /// `XRANGE key start end [COUNT count]`, or with `rev` `XREVRANGE key end start`:
    /// the entries from `start` to `end` (both included), from the lowest ID or with
    /// `rev` the highest, at most `count` of them: [`Output::Entries`], `None` for a
    /// count of 0 (answered before the key is looked at, as Redis does).
    Range {
        /// The lowest ID.
        start: StreamId,
        /// The highest ID.
        end: StreamId,
        /// The most entries answered.
        count: Option<u64>,
        /// From the highest ID down.
        rev: bool,
    },
    /// The last ID the stream gave an entry (`XREAD ... $`): [`Output::StreamId`],
    /// `None` without a stream.
    LastId,
    /// `XPENDING key group`: [`Output::PendingSummary`]; with a range, the entries it
    /// picks ([`Output::PendingEntries`]). [`Rejection::NoGroup`] without the stream or
    /// the group.
    Pending {
        /// The group.
        #[serde(with = "byte_strings::one")]
        group: Vec<u8>,
        /// Which entries, for the extended form.
        range: Option<PendingRange>,
    },
}

/// What an [`Command::MPop`] pops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MPopFrom {
    /// A list's items, from the head (`front`, `LEFT`) or the tail.
    List {
        /// From the head.
        front: bool,
    },
    /// A sorted set's members, from the highest scores (`max`, `MAX`) or the lowest.
    ZSet {
        /// From the highest.
        max: bool,
    },
}

/// How the scores of a member found in several sorted sets combine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Aggregate {
    /// Their sum (a NaN sum is 0).
    #[default]
    Sum,
    /// The least.
    Min,
    /// The greatest.
    Max,
}

/// A key `WATCH`ed before a transaction, and what it held then: the transaction runs only
/// if it still holds the same (a key set again to the same value and expiry counts as
/// unchanged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watched {
    /// The key.
    #[serde(with = "byte_strings::one")]
    pub key: Vec<u8>,
    /// What it held when watched: `None` if it held no live value.
    pub held: Option<Held>,
}

/// A live value and its expiry, as a watched key held it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// The value.
    #[serde(with = "byte_strings::one")]
    pub value: Vec<u8>,
    /// Its expiry in Unix milliseconds, if it had one.
    pub expire_at_ms: Option<u64>,
}

/// One command of a [`Command::Transaction`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TxOp {
    /// A write. It travels encoded on its own (as [`Command::encode`] makes it), and
    /// one that is itself a transaction is refused before it is decoded: nesting, which
    /// untrusted bytes could otherwise make deep enough to exhaust the stack, stops at
    /// one level.
    Write(#[serde(with = "nested")] Command),
    /// A read, of the state the writes before it in the transaction left.
    Read(TxRead),
}

/// A read inside a [`Command::Transaction`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TxRead {
    /// `GET key`: [`Output::Value`].
    Get {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
    },
    /// `MGET key [key ...]`: [`Output::Values`].
    MGet {
        /// The keys (at least one).
        #[serde(with = "byte_strings::many")]
        keys: Vec<Vec<u8>>,
    },
    /// `EXISTS key [key ...]`: [`Output::Count`].
    Exists {
        /// The keys (at least one).
        #[serde(with = "byte_strings::many")]
        keys: Vec<Vec<u8>>,
    },
    /// `STRLEN key`: [`Output::Integer`].
    Strlen {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
    },
    /// `TTL key` (`in_ms` false) or `PTTL key`: [`Output::Integer`], -2 for a key without
    /// a live value, -1 for one without an expiry.
    Ttl {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// Milliseconds rather than seconds.
        in_ms: bool,
    },
    /// `GETRANGE key start end`: [`Output::Value`], the bytes from `start` to `end`
    /// inclusive as [`byte_range`] picks them (never `None`: empty when nothing is
    /// picked).
    GetRange {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// The first byte; negative counts from the end.
        start: i64,
        /// The last byte; negative counts from the end.
        end: i64,
    },
    /// `GETBIT`, `BITCOUNT` and `BITPOS`: [`Output::Integer`], as
    /// [`crate::bits::answer`] gives it.
    Bits {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// What is asked of its bits.
        query: BitQuery,
    },
    /// `TYPE key`: [`Output::Value`], `string` or `none`.
    Type {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
    },
    /// `EXPIRETIME key` (`in_ms` false) or `PEXPIRETIME key`: [`Output::Integer`], the
    /// absolute expiry, -2 for a key without a live value, -1 for one without an expiry.
    ExpireTime {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// Milliseconds rather than seconds.
        in_ms: bool,
    },
    /// A read of a hash's fields, answered as [`crate::hash::answer`] does.
    Hash {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// What is read.
        read: HashRead,
    },
    /// A read of a set's members, answered as [`crate::set::answer`] does.
    Set {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// What is read.
        read: SetRead,
    },
    /// `SINTER`, `SUNION`, `SDIFF key [key ...]`: [`Output::Values`], the members of the
    /// sets' intersection, union or difference ([`crate::set::combine`]).
    SetCombine {
        /// What is computed.
        op: SetOp,
        /// The sets (at least one).
        #[serde(with = "byte_strings::many")]
        keys: Vec<Vec<u8>>,
    },
    /// `SINTERCARD numkeys key [key ...] [LIMIT limit]`: [`Output::Count`], the size of
    /// the sets' intersection, at most `limit` unless it is 0.
    SetInterCard {
        /// The sets (at least one).
        #[serde(with = "byte_strings::many")]
        keys: Vec<Vec<u8>>,
        /// The most counted; 0 for no limit.
        limit: u64,
    },
    /// A read of a list's items, answered as [`crate::list::answer`] does.
    List {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// What is read.
        read: ListRead,
    },
    /// A read of a sorted set, answered as [`crate::zset::answer`] does.
    ZSet {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// What is read.
        read: ZSetRead,
    },
    /// `ZUNION`, `ZINTER`, `ZDIFF numkeys key [key ...] ... [WITHSCORES]`: the members
    /// of [`crate::zset::combine`] over the keys, in order, as [`Output::Scored`] with
    /// `with_scores`, else [`Output::Values`].
    ZCombine {
        /// What is computed.
        op: SetOp,
        /// The sources (at least one).
        #[serde(with = "byte_strings::many")]
        keys: Vec<Vec<u8>>,
        /// One weight for each source, or none.
        weights: Vec<Score>,
        /// How scores combine.
        aggregate: Aggregate,
        /// Answer the scores too.
        with_scores: bool,
    },
    /// `ZINTERCARD numkeys key [key ...] [LIMIT limit]`: [`Output::Count`], the size of
    /// the intersection, at most `limit` unless it is 0.
    ZInterCard {
        /// The sources (at least one).
        #[serde(with = "byte_strings::many")]
        keys: Vec<Vec<u8>>,
        /// The most counted; 0 for no limit.
        limit: u64,
    },
    /// A read of a stream, as [`StreamRead`] describes.
    Stream {
        /// The key.
        #[serde(with = "byte_strings::one")]
        key: Vec<u8>,
        /// What is read.
        read: StreamRead,
    },
    /// `XREAD [COUNT count] STREAMS key [key ...] id [id ...]`: for each key whose
    /// stream holds entries after its ID, those entries (at most `count`, unless it is
    /// 0): [`Output::Streams`].
    XRead {
        /// The keys (at least one) and the ID each reads after.
        #[serde(with = "byte_strings::keyed_ids")]
        after: Vec<(Vec<u8>, StreamId)>,
        /// The most entries from each stream; 0 for no limit.
        count: u64,
    },
    /// `PFCOUNT key [key ...]`: the estimated number of distinct elements added to the
    /// HyperLogLog at the key (a valid cached count as it is), or to the union of those
    /// at the keys: [`Output::Integer`].
    PfCount {
        /// The keys (at least one).
        #[serde(with = "byte_strings::many")]
        keys: Vec<Vec<u8>>,
    },
}

/// A read of a list's items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ListRead {
    /// `LLEN key`: [`Output::Count`].
    Len,
    /// `LRANGE key start stop`: [`Output::Values`], as [`crate::list::range`] picks them.
    Range {
        /// The first item; negative counts from the end.
        start: i64,
        /// The last item; negative counts from the end.
        stop: i64,
    },
    /// `LINDEX key index`: [`Output::Value`].
    Index {
        /// The place; negative counts from the end.
        index: i64,
    },
    /// `LPOS key item [RANK rank] [COUNT count] [MAXLEN len]`: [`Output::Integer`] (or
    /// [`Output::Value`] `None`), or with a count [`Output::Integers`].
    Pos {
        /// The item looked for.
        #[serde(with = "byte_strings::one")]
        item: Vec<u8>,
        /// Which match to start from: 1 for the first, -1 for the last (never 0).
        rank: i64,
        /// How many places to answer (0: all), or `None` for one, answered alone.
        count: Option<u64>,
        /// The most items looked at (0: all).
        max_len: u64,
    },
}

/// A read of a set's members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SetRead {
    /// `SISMEMBER key member`: [`Output::Changed`].
    IsMember {
        /// The member.
        #[serde(with = "byte_strings::one")]
        member: Vec<u8>,
    },
    /// `SMISMEMBER key member [member ...]`: [`Output::Integers`], 1 or 0 for each.
    MIsMember {
        /// The members (at least one).
        #[serde(with = "byte_strings::many")]
        members: Vec<Vec<u8>>,
    },
    /// `SMEMBERS key`: [`Output::Values`].
    Members,
    /// `SCARD key`: [`Output::Count`].
    Card,
}

impl ZSetRead {
    /// Every member in score order, with their scores if `with_scores`: what `ZSCAN`
    /// and `ZRANDMEMBER` pick from, and how a combination answers.
    #[must_use]
    pub fn everything(with_scores: bool) -> Self {
        Self::Range {
            range: ZRange {
                by: ZRangeBy::Rank { start: 0, stop: -1 },
                rev: false,
                limit: None,
            },
            with_scores,
        }
    }
}

/// What a set command computes from its sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetOp {
    /// The members of every set.
    Inter,
    /// The members of any set.
    Union,
    /// The members of the first set in none of the others.
    Diff,
}

/// A sorted set's score: a double that is never NaN, kept as its bits so that commands
/// compare and encode exactly. A negative zero is made zero, as Redis stores it.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Score(u64);

impl Score {
    /// The score `value`; `None` for a NaN.
    #[must_use]
    pub fn new(value: f64) -> Option<Self> {
        // Adding zero turns -0 into 0 and changes nothing else.
        (!value.is_nan()).then(|| Self((value + 0.0).to_bits()))
    }

    /// The score as a double.
    #[must_use]
    pub fn get(self) -> f64 {
        f64::from_bits(self.0)
    }

    /// Whether the bits are a score [`Score::new`] could make (a decoded command's may
    /// not be).
    #[must_use]
    pub fn is_valid(self) -> bool {
        Self::new(self.get()) == Some(self)
    }
}

impl std::fmt::Debug for Score {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.get())
    }
}

/// One end of a range of scores (`1.5`, `(1.5`, `-inf`, `+inf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScoreBound {
    /// The score.
    pub score: Score,
    /// Whether the score itself is left out (written with `(`).
    pub exclusive: bool,
}

/// One end of a range of members in byte order (`-`, `+`, `[member`, `(member`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LexBound {
    /// Before every member (`-`).
    Min,
    /// After every member (`+`).
    Max,
    /// From or up to this member, which is included (`[`).
    Inclusive(#[serde(with = "byte_strings::one")] Vec<u8>),
    /// From or up to this member, which is left out (`(`).
    Exclusive(#[serde(with = "byte_strings::one")] Vec<u8>),
}

/// Which members of a sorted set a range picks, as [`crate::zset`] reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZRangeBy {
    /// By place in score order, as `LRANGE` picks items: negative counts from the end.
    Rank {
        /// The first place.
        start: i64,
        /// The last place, included.
        stop: i64,
    },
    /// By score, from `min` to `max`.
    Score {
        /// The lower end.
        min: ScoreBound,
        /// The upper end.
        max: ScoreBound,
    },
    /// By member, from `min` to `max`, for members of one score.
    Lex {
        /// The lower end.
        min: LexBound,
        /// The upper end.
        max: LexBound,
    },
}

/// A range read of a sorted set: `ZRANGE` and its older forms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZRange {
    /// Which members.
    pub by: ZRangeBy,
    /// From the highest score down (`REV`); a rank then counts from the highest.
    pub rev: bool,
    /// `LIMIT offset count` (never with [`ZRangeBy::Rank`]): skips `offset` members
    /// (a negative one picks none) and answers at most `count` (a negative one, all).
    pub limit: Option<(i64, i64)>,
}

impl ZRangeBy {
    /// Whether its scores are scores (a decoded command's may not be).
    #[must_use]
    pub fn is_valid(&self) -> bool {
        match self {
            Self::Score { min, max } => min.score.is_valid() && max.score.is_valid(),
            Self::Rank { .. } | Self::Lex { .. } => true,
        }
    }
}

impl ZRange {
    /// Whether its scores are scores and it has no `LIMIT` by rank (a decoded command's
    /// may break either).
    #[must_use]
    pub fn is_valid(&self) -> bool {
        self.by.is_valid() && !(matches!(self.by, ZRangeBy::Rank { .. }) && self.limit.is_some())
    }
}

/// Whether a combination of sorted sets has keys, and a weight for each or none.
fn weights_fit(keys: &[Vec<u8>], weights: &[Score]) -> bool {
    !keys.is_empty()
        && (weights.is_empty() || weights.len() == keys.len())
        && weights.iter().all(|w| w.is_valid())
}

/// The options of a `ZADD`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZAddOptions {
    /// Only add members, never update (`NX`).
    pub only_new: bool,
    /// Only update members, never add (`XX`).
    pub only_existing: bool,
    /// Update only to a greater score (`GT`).
    pub greater: bool,
    /// Update only to a lesser score (`LT`).
    pub less: bool,
    /// Count the members updated as well as those added (`CH`).
    pub changed: bool,
    /// Add the score to the member's (`INCR`, `ZINCRBY`).
    pub incr: bool,
}

/// A read of a sorted set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ZSetRead {
    /// `ZCARD key`: [`Output::Count`].
    Card,
    /// `ZSCORE key member`: [`Output::Score`].
    Score {
        /// The member.
        #[serde(with = "byte_strings::one")]
        member: Vec<u8>,
    },
    /// `ZMSCORE key member [member ...]`: [`Output::Scores`].
    MScore {
        /// The members (at least one).
        #[serde(with = "byte_strings::many")]
        members: Vec<Vec<u8>>,
    },
    /// `ZRANK`, `ZREVRANK key member [WITHSCORE]`: [`Output::Ranked`].
    Rank {
        /// The member.
        #[serde(with = "byte_strings::one")]
        member: Vec<u8>,
        /// Counted from the highest score.
        rev: bool,
    },
    /// `ZCOUNT key min max`, `ZLEXCOUNT key min max`: [`Output::Count`], how many
    /// members the range picks.
    Count {
        /// The range (by score or by member).
        by: ZRangeBy,
    },
    /// `ZRANGE` and its older forms: [`Output::Scored`] with `with_scores`, else
    /// [`Output::Values`].
    Range {
        /// The range.
        range: ZRange,
        /// Answer the scores too.
        with_scores: bool,
    },
}

/// A read of a hash's fields, as a server's read and a transaction's read both make it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum HashRead {
    /// `HGET key field`: [`Output::Value`].
    Get {
        /// The field.
        #[serde(with = "byte_strings::one")]
        field: Vec<u8>,
    },
    /// `HMGET key field [field ...]`: [`Output::Values`], in the order asked.
    MGet {
        /// The fields (at least one).
        #[serde(with = "byte_strings::many")]
        fields: Vec<Vec<u8>>,
    },
    /// `HLEN key`: [`Output::Count`].
    Len,
    /// `HGETALL key`: [`Output::Values`], field and value after field and value.
    GetAll,
    /// `HKEYS key`: [`Output::Values`].
    Keys,
    /// `HVALS key`: [`Output::Values`].
    Values,
    /// `HEXISTS key field`: [`Output::Changed`].
    Exists {
        /// The field.
        #[serde(with = "byte_strings::one")]
        field: Vec<u8>,
    },
    /// `HSTRLEN key field`: [`Output::Count`].
    StrLen {
        /// The field.
        #[serde(with = "byte_strings::one")]
        field: Vec<u8>,
    },
}

/// The bytes of a value of `len` bytes that `GETRANGE start end` returns, as Redis
/// picks them: negative positions count from the end, both ends are clamped to the
/// value, and `end` is included.
#[must_use]
pub fn byte_range(len: usize, start: i64, end: i64) -> std::ops::Range<usize> {
    if len == 0 || (start < 0 && end < 0 && start > end) {
        return 0..0;
    }
    // A value's length fits an i64: it is bounded by the request size.
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let from_end = |at: i64| {
        if at < 0 {
            len.saturating_add(at).max(0)
        } else {
            at
        }
    };
    let (start, end) = (from_end(start), from_end(end).min(len - 1));
    if start > end {
        return 0..0;
    }
    let range = usize::try_from(start).unwrap_or(usize::MAX)
        ..usize::try_from(end + 1).unwrap_or(usize::MAX);
    debug_assert!(range.end <= usize::try_from(len).unwrap_or(usize::MAX));
    range
}

/// Why a well-formed command could not do what it asked; the same on every replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Rejection {
    /// `INCRBY` found a value that is not a canonical decimal 64-bit integer.
    NotAnInteger,
    /// `INCRBY` would leave the range of a signed 64-bit integer.
    Overflow,
    /// `APPEND` would make the value longer than its limit.
    TooLong {
        /// The limit, in bytes.
        len_max: u64,
    },
    /// A read in a transaction would bring the values read past the transaction's limit.
    ReadTooLarge {
        /// The limit, in bytes.
        bytes_max: u64,
    },
    /// `RENAME` found no live value to move.
    NoSuchKey,
    /// `INCRBYFLOAT` found a value that is not a float.
    NotAFloat,
    /// `INCRBYFLOAT` would leave the range of a C `long double`, where Redis's answer
    /// would be infinite.
    FloatOutOfRange,
    /// The key holds a kind of value the command is not made for (Redis's `WRONGTYPE`).
    WrongType,
    /// `HINCRBY` found a field that is not a canonical decimal 64-bit integer.
    HashNotAnInteger,
    /// `HINCRBYFLOAT` found a field that is not a float.
    HashNotAFloat,
    /// `LSET` named a place the list does not have.
    IndexOutOfRange,
    /// `ZINCRBY` or `ZADD ... INCR` would make a score that is not a number (an
    /// infinity plus its opposite).
    ScoreNaN,
    /// `XADD` was given an ID that does not follow the stream's last.
    StreamIdTooSmall,
    /// `XADD` found a stream whose last ID is the last there is.
    StreamExhausted,
    /// `XDEL` was given an argument that is not an ID.
    InvalidStreamId,
    /// `XGROUP` found no stream at its key.
    NoStream,
    /// A consumer group that is not there, at the key at this place among the
    /// command's keys.
    NoGroup {
        /// The key's place.
        key: u32,
    },
    /// `XGROUP CREATE` of a group that is there.
    GroupExists,
    /// A HyperLogLog command found a string that is not a HyperLogLog.
    NotHll,
    /// A HyperLogLog command found a HyperLogLog whose registers are damaged.
    CorruptHll,
    /// A geospatial search is centred on a member the sorted set does not hold.
    NoGeoMember,
}

/// The result of applying a [`Command`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Output {
    /// The write happened (`SET`, `MSET`).
    Ok,
    /// A conditional `SET` did not write because its condition was false.
    NotSet,
    /// How many keys were removed (`DEL`, `PurgeExpired`); expired keys do not count for `DEL`.
    Count(u64),
    /// The value after `INCRBY`.
    Integer(i64),
    /// The command was rejected without changing anything.
    Rejected(Rejection),
    /// The index was at or below the applied index: the entry had already been applied.
    AlreadyApplied {
        /// The applied index at the time of the call.
        applied_index: u64,
    },
    /// The value the key held before the command, if it held a live one (`SET ... GET`).
    Value(Option<Vec<u8>>),
    /// Whether the command changed the key (`EXPIRE`, `PERSIST`).
    Changed(bool),
    /// The values of several keys, in order (`MGET` in a transaction).
    Values(Vec<Option<Vec<u8>>>),
    /// The output of each command of a transaction, in order.
    Each(Vec<Output>),
    /// A transaction did not run: a key it watched no longer held what it held when
    /// watched.
    Aborted,
    /// Several integers (`SMISMEMBER`).
    Integers(Vec<i64>),
    /// A score, if there is one (`ZSCORE`, `ZINCRBY`).
    Score(Option<Score>),
    /// Several scores, `None` for a member that is not there (`ZMSCORE`).
    Scores(Vec<Option<Score>>),
    /// Members and their scores, in order (`ZRANGE ... WITHSCORES`, `ZPOPMIN`).
    Scored(Vec<(Vec<u8>, Score)>),
    /// A member's rank and score, if it is there (`ZRANK`).
    Ranked(Option<(u64, Score)>),
    /// The key popped from and what was popped from it, if a key held a value
    /// (`LMPOP`: [`Output::Values`]; `ZMPOP`: [`Output::Scored`]).
    PoppedFrom(Option<(Vec<u8>, Box<Output>)>),
    /// A stream entry's ID, if there is one (`XADD`).
    StreamId(Option<StreamId>),
    /// Stream entries (`XRANGE`); `None` for no array at all (`COUNT 0`).
    Entries(Option<Vec<StreamEntry>>),
    /// Keys and the entries read from each (`XREAD`); only keys with entries.
    Streams(Vec<(Vec<u8>, Vec<StreamEntry>)>),
    /// `XPENDING key group`: how many entries are pending, the lowest and highest of
    /// their IDs, and how many each consumer holds, by consumer name.
    PendingSummary {
        /// How many.
        count: u64,
        /// The lowest and highest IDs, if any are pending.
        ids: Option<(StreamId, StreamId)>,
        /// Consumers holding some, and how many.
        consumers: Vec<(Vec<u8>, u64)>,
    },
    /// `XPENDING` with a range: each entry's ID, consumer, milliseconds since it was
    /// delivered, and how many times it was.
    PendingEntries(Vec<(StreamId, Vec<u8>, u64, u64)>),
    /// Stream entry IDs (`XCLAIM ... JUSTID`).
    StreamIds(Vec<StreamId>),
    /// `XAUTOCLAIM`: where to go on from (0-0 at the end), what was claimed
    /// ([`Output::Entries`] or [`Output::StreamIds`]), and the IDs of pending entries
    /// the stream no longer held.
    AutoClaimed {
        /// The next start.
        next: StreamId,
        /// What was claimed.
        claimed: Box<Output>,
        /// Entries gone from the stream, no longer pending.
        deleted: Vec<StreamId>,
    },
    /// A script's reply ([`Command::Eval`]).
    Script(Vec<ReplyItem>),
}

/// One replicated log entry: a command and the time at which every replica applies it.
///
/// The proposer (the leader, or a single node) stamps `now_ms` once; replicas never read
/// their own clock when applying, so expiry decisions are identical everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// The apply time, in Unix milliseconds.
    pub now_ms: u64,
    /// The write.
    pub command: Command,
}

impl Command {
    /// Checks the rules every command satisfies (non-empty key lists, a positive purge
    /// batch, a node id and `ip:port` address in a MEET, an expiry no later than
    /// [`EXPIRE_AT_MS_MAX`] in the commands added with `KEEPTTL`, `GET`, `GETEX` and
    /// `EXPIRE`, a `SETRANGE` limit and a `SETBIT` offset within [`VALUE_BYTES_MAX`], a
    /// float as the increment of an `INCRBYFLOAT`, one source for `BITOP NOT`).
    ///
    /// # Errors
    /// [`CodecError::Invalid`] naming the broken rule.
    pub fn validate(&self) -> Result<(), CodecError> {
        let broken = match self {
            Self::Del { keys } if keys.is_empty() => Some("DEL without keys"),
            Self::MSet { pairs } | Self::MSetNx { pairs } if pairs.is_empty() => {
                Some("MSET without pairs")
            }
            Self::PurgeExpired { batch_max: 0 } => Some("purge with a zero batch"),
            Self::Meet { id: 0, .. } => Some("MEET of node 0"),
            Self::Meet { address, .. } if address.parse::<std::net::SocketAddr>().is_err() => {
                Some("MEET with an address that is not ip:port")
            }
            Self::SetWith {
                expiry: Expiry::At(at),
                ..
            }
            | Self::GetEx {
                expiry: Expiry::At(at),
                ..
            }
            | Self::Expire {
                expire_at_ms: at, ..
            } if *at > EXPIRE_AT_MS_MAX => Some("expiry later than i64::MAX milliseconds"),
            Self::SetRange { len_max, .. } if *len_max > VALUE_BYTES_MAX => {
                Some("SETRANGE allowing a value longer than 512 MiB")
            }
            Self::IncrByFloat { increment, .. } if !crate::decimal::is_float(increment) => {
                Some("INCRBYFLOAT by something that is not a float")
            }
            Self::SetBit { offset, .. } if *offset >= VALUE_BYTES_MAX * 8 => {
                Some("SETBIT past 512 MiB")
            }
            Self::BitOp { keys, .. } if keys.is_empty() => Some("BITOP without keys"),
            Self::HSet { pairs, .. } if pairs.is_empty() => Some("HSET without fields"),
            Self::HSet {
                pairs,
                if_absent: true,
                ..
            } if pairs.len() != 1 => Some("HSETNX of more than one field"),
            Self::HDel { fields, .. } if fields.is_empty() => Some("HDEL without fields"),
            Self::HIncrByFloat { increment, .. } if !crate::decimal::is_float(increment) => {
                Some("HINCRBYFLOAT by something that is not a float")
            }
            Self::SAdd { members, .. } | Self::SRem { members, .. } if members.is_empty() => {
                Some("SADD or SREM without members")
            }
            Self::SetStore { keys, .. } if keys.is_empty() => Some("a set store of no keys"),
            Self::Push { items, .. } if items.is_empty() => Some("a push of no items"),
            Self::ZAdd { entries, .. } if entries.is_empty() => Some("ZADD without members"),
            Self::ZAdd {
                entries,
                options: ZAddOptions { incr: true, .. },
                ..
            } if entries.len() != 1 => Some("ZADD INCR of more than one member"),
            Self::ZAdd { entries, .. } if entries.iter().any(|(s, _)| !s.is_valid()) => {
                Some("ZADD of a score that is not a number")
            }
            Self::ZAdd {
                options:
                    ZAddOptions {
                        only_new,
                        only_existing,
                        greater,
                        less,
                        ..
                    },
                ..
            } if (*only_new && *only_existing)
                || u8::from(*only_new) + u8::from(*greater) + u8::from(*less) > 1 =>
            {
                Some("ZADD with options that exclude each other")
            }
            Self::ZRem { members, .. } if members.is_empty() => Some("ZREM without members"),
            Self::XAdd { fields, .. } if fields.is_empty() || fields.len() % 2 != 0 => {
                Some("XADD without fields, or with a field without a value")
            }
            Self::XAdd {
                id: NewId::Exact(StreamId::MIN),
                ..
            } => Some("XADD of the ID 0-0"),
            Self::XDel {
                ids, bad_id: false, ..
            } if ids.is_empty() => Some("XDEL without IDs"),
            Self::XReadGroup { reads, .. } if reads.is_empty() => Some("XREADGROUP of no keys"),
            Self::XAck {
                ids, bad_id: false, ..
            } if ids.is_empty() => Some("XACK without IDs"),
            Self::XAutoClaim { count: 0, .. } => Some("XAUTOCLAIM of no entries"),
            Self::GeoStore { search, .. } if !search.is_valid() => {
                Some("a geospatial search off the map, of a negative size, or ANY without COUNT")
            }
            Self::MPop { keys, .. } if keys.is_empty() => Some("LMPOP or ZMPOP without keys"),
            Self::MPop { count: 0, .. } => Some("LMPOP or ZMPOP of no items"),
            Self::ZRemRange { by, .. } if !by.is_valid() => Some("a sorted-set range with a NaN"),
            Self::ZStore { keys, weights, .. } if !weights_fit(keys, weights) => {
                Some("a sorted-set store without keys, or with weights that do not fit them")
            }
            Self::ZRangeStore { range, .. } if !range.is_valid() => {
                Some("a sorted-set range store that is not valid")
            }
            Self::BitOp {
                op: BitOp::Not,
                keys,
                ..
            } if keys.len() != 1 => Some("BITOP NOT of more than one key"),
            Self::Transaction { ops, .. } => ops.iter().find_map(|op| match op {
                TxOp::Write(
                    Self::Transaction { .. }
                    | Self::PurgeExpired { .. }
                    | Self::Meet { .. }
                    | Self::FlushAll,
                ) => Some("a transaction holding a transaction, a purge, a MEET or a FLUSHALL"),
                TxOp::Write(command) => command.validate().err().map(|e| match e {
                    CodecError::Invalid { reason } => reason,
                    _ => "an invalid command in a transaction",
                }),
                TxOp::Read(TxRead::MGet { keys } | TxRead::Exists { keys }) if keys.is_empty() => {
                    Some("a read of no keys in a transaction")
                }
                TxOp::Read(TxRead::Hash {
                    read: HashRead::MGet { fields },
                    ..
                }) if fields.is_empty() => Some("a read of no fields in a transaction"),
                TxOp::Read(
                    TxRead::Set {
                        read: SetRead::MIsMember { members: keys },
                        ..
                    }
                    | TxRead::SetCombine { keys, .. }
                    | TxRead::SetInterCard { keys, .. },
                ) if keys.is_empty() => Some("a set read of nothing in a transaction"),
                TxOp::Read(TxRead::List {
                    read: ListRead::Pos { rank: 0, .. },
                    ..
                }) => Some("an LPOS of rank 0 in a transaction"),
                TxOp::Read(TxRead::ZSet {
                    read: ZSetRead::MScore { members },
                    ..
                }) if members.is_empty() => Some("a ZMSCORE of no members in a transaction"),
                TxOp::Read(TxRead::ZSet {
                    read:
                        ZSetRead::Count { by }
                        | ZSetRead::Range {
                            range: ZRange { by, .. },
                            ..
                        },
                    ..
                }) if !by.is_valid() => Some("a sorted-set range with a NaN in a transaction"),
                TxOp::Read(TxRead::ZSet {
                    read:
                        ZSetRead::Range {
                            range:
                                ZRange {
                                    by: ZRangeBy::Rank { .. },
                                    limit: Some(_),
                                    ..
                                },
                            ..
                        },
                    ..
                }) => Some("a rank range with a LIMIT in a transaction"),
                TxOp::Read(TxRead::ZCombine { keys, weights, .. })
                    if !weights_fit(keys, weights) =>
                {
                    Some("a sorted-set combination without keys or with weights that do not fit")
                }
                TxOp::Read(TxRead::ZInterCard { keys, .. }) if keys.is_empty() => {
                    Some("a ZINTERCARD of no keys in a transaction")
                }
                TxOp::Read(TxRead::XRead { after, .. }) if after.is_empty() => {
                    Some("an XREAD of no keys in a transaction")
                }
                TxOp::Read(TxRead::PfCount { keys }) if keys.is_empty() => {
                    Some("a PFCOUNT of no keys in a transaction")
                }
                TxOp::Read(_) => None,
            }),
            _ => None,
        };
        match broken {
            Some(reason) => Err(CodecError::Invalid { reason }),
            None => Ok(()),
        }
    }

    /// Encodes the command: a version byte, then its postcard form.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        encode_versioned(self)
    }

    /// Decodes bytes produced by [`Command::encode`]; never panics, whatever the input.
    ///
    /// # Errors
    /// A [`CodecError`] saying what was wrong with the bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let command: Self = decode_versioned(bytes)?;
        command.validate()?;
        Ok(command)
    }
}

impl LogEntry {
    /// Encodes the entry: a version byte, then its postcard form.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        encode_versioned(self)
    }

    /// Encodes the entry `LogEntry { now_ms, command }` would be, without owning the
    /// command: the same bytes as [`LogEntry::encode`].
    #[must_use]
    pub fn encode_parts(now_ms: u64, command: &Command) -> Vec<u8> {
        /// Serializes field for field as [`LogEntry`] does.
        #[derive(Serialize)]
        struct Borrowed<'a> {
            now_ms: u64,
            command: &'a Command,
        }
        encode_versioned(&Borrowed { now_ms, command })
    }

    /// Decodes bytes produced by [`LogEntry::encode`]; never panics, whatever the input.
    ///
    /// # Errors
    /// A [`CodecError`] saying what was wrong with the bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let entry: Self = decode_versioned(bytes)?;
        entry.command.validate()?;
        Ok(entry)
    }
}

/// Parses a decimal 64-bit integer the way Redis does, for arguments and stored
/// counters alike: an optional `-`, then digits without leading zeros; no `+`, no
/// spaces, no `-0`.
#[must_use]
pub fn parse_integer(bytes: &[u8]) -> Option<i64> {
    let (negative, digits) = match bytes {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, bytes),
    };
    match digits {
        [] => return None,
        [b'0'] => return (!negative).then_some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    let mut value: i64 = 0;
    for &byte in digits {
        if !byte.is_ascii_digit() {
            return None;
        }
        let digit = i64::from(byte - b'0');
        value = value.checked_mul(10)?;
        value = if negative {
            value.checked_sub(digit)?
        } else {
            value.checked_add(digit)?
        };
    }
    Some(value)
}

fn encode_versioned<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing plain enums, integers and byte vectors into a Vec cannot fail.
    let out = postcard::to_extend(value, vec![FORMAT_VERSION])
        .expect("postcard serialization into a Vec is infallible for these types");
    debug_assert_eq!(out.first(), Some(&FORMAT_VERSION));
    out
}

fn decode_versioned<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != FORMAT_VERSION {
        return Err(CodecError::UnsupportedVersion {
            found: version,
            expected: FORMAT_VERSION,
        });
    }
    let (value, rest) = postcard::take_from_bytes(body).map_err(|e| CodecError::Malformed {
        reason: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(CodecError::TrailingBytes { extra: rest.len() });
    }
    Ok(value)
}

/// The tag postcard gives [`Command::Transaction`]: the byte after the version byte.
const TRANSACTION_TAG: u8 = 13;

/// A transaction's write, as the bytes of its own encoding.
mod nested {
    use serde::de::Error as _;
    use serde::{Deserializer, Serializer};

    use super::{Command, TRANSACTION_TAG, byte_strings};

    pub(super) fn serialize<S: Serializer>(command: &Command, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&command.encode())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Command, D::Error> {
        let bytes = byte_strings::one::deserialize(d)?;
        if bytes.get(1) == Some(&TRANSACTION_TAG) {
            return Err(D::Error::custom("a transaction inside a transaction"));
        }
        Command::decode(&bytes).map_err(D::Error::custom)
    }
}

/// Keys and values as serde byte strings rather than sequences of numbers.
///
/// postcard writes both the same way (a varint length, then the bytes), so the format
/// does not change; decoding a byte string is one copy, where a sequence is one visitor
/// call per byte.
pub(crate) mod byte_strings {
    use std::fmt;

    use serde::de::{Deserializer, Visitor};
    use serde::ser::{SerializeSeq, Serializer};
    use serde::{Deserialize, Serialize};

    struct Borrowed<'a>(&'a [u8]);

    impl Serialize for Borrowed<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_bytes(self.0)
        }
    }

    struct Owned(Vec<u8>);

    impl<'de> Deserialize<'de> for Owned {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_byte_buf(OwnedVisitor).map(Owned)
        }
    }

    struct OwnedVisitor;

    impl<'de> Visitor<'de> for OwnedVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a byte string")
        }

        fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
            Ok(bytes.to_vec())
        }

        fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(bytes)
        }
    }

    pub(crate) mod one {
        use super::{Borrowed, Deserialize, Deserializer, Owned, Serialize, Serializer};

        pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
            Borrowed(bytes).serialize(s)
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
            Owned::deserialize(d).map(|owned| owned.0)
        }
    }

    pub(super) mod many {
        use super::{Borrowed, Deserialize, Deserializer, Owned, SerializeSeq, Serializer};

        pub(crate) fn serialize<S: Serializer>(all: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(all.len()))?;
            for bytes in all {
                seq.serialize_element(&Borrowed(bytes))?;
            }
            seq.end()
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Vec<Vec<u8>>, D::Error> {
            let all = Vec::<Owned>::deserialize(d)?;
            Ok(all.into_iter().map(|owned| owned.0).collect())
        }
    }

    pub(super) mod pairs {
        use super::{Borrowed, Deserialize, Deserializer, Owned, SerializeSeq, Serializer};

        type Pair = (Vec<u8>, Vec<u8>);

        pub(crate) fn serialize<S: Serializer>(all: &[Pair], s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(all.len()))?;
            for (key, value) in all {
                seq.serialize_element(&(Borrowed(key), Borrowed(value)))?;
            }
            seq.end()
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Pair>, D::Error> {
            let all = Vec::<(Owned, Owned)>::deserialize(d)?;
            Ok(all
                .into_iter()
                .map(|(key, value)| (key.0, value.0))
                .collect())
        }
    }

    pub(super) mod scored {
        use super::{Borrowed, Deserialize, Deserializer, Owned, SerializeSeq, Serializer};
        use crate::command::Score;

        type Entry = (Score, Vec<u8>);

        pub(crate) fn serialize<S: Serializer>(all: &[Entry], s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(all.len()))?;
            for (score, member) in all {
                seq.serialize_element(&(score, Borrowed(member)))?;
            }
            seq.end()
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Entry>, D::Error> {
            let all = Vec::<(Score, Owned)>::deserialize(d)?;
            Ok(all
                .into_iter()
                .map(|(score, member)| (score, member.0))
                .collect())
        }
    }

    pub(super) mod keyed_ids {
        use super::{Borrowed, Deserialize, Deserializer, Owned, SerializeSeq, Serializer};
        use crate::command::StreamId;

        type Keyed = (Vec<u8>, StreamId);

        pub(crate) fn serialize<S: Serializer>(all: &[Keyed], s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(all.len()))?;
            for (key, id) in all {
                seq.serialize_element(&(Borrowed(key), id))?;
            }
            seq.end()
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Keyed>, D::Error> {
            let all = Vec::<(Owned, StreamId)>::deserialize(d)?;
            Ok(all.into_iter().map(|(key, id)| (key.0, id)).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transaction_tag_is_the_one_postcard_writes() {
        let empty = Command::Transaction {
            ops: Vec::new(),
            read_bytes_max: 0,
            watched: Vec::new(),
        };
        assert_eq!(empty.encode()[1], TRANSACTION_TAG);
    }
}
