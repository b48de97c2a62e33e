//! The Aegis reference server: a replicated key-value store that speaks the Redis
//! protocol (RESP2), so `redis-cli` and `redis-benchmark` work unmodified.
//!
//! The pieces, from the bottom up:
//!
//! - [`Command`] and [`LogEntry`]: the replicated writes and their versioned postcard
//!   encoding, whose decoder never panics.
//! - [`KvStateMachine`]: the state machine in redb. [`KvStateMachine::apply`] is
//!   deterministic (the entry's time is an argument, never read from a clock) and
//!   idempotent by log index, which is stored in the same write transaction as the data.
//!   Snapshots stream as bounded, checksummed chunks; a restore replaces the state
//!   atomically.
//! - [`Replicator`]: the seam to replication. [`LocalReplicator`] applies directly on a
//!   single node, after appending each batch of writes to a journal in `aegis-log`
//!   when given one ([`LocalReplicator::with_journal`]); [`RaftReplicator`] replicates
//!   through a Raft group hosted by
//!   `aegis-cluster` over QUIC, with its log in `aegis-log`.
//! - [`Server`]: the RESP server on tokio, framing requests with the `redis-protocol`
//!   codec under a request size limit. Reads are linearizable by default (a read fence
//!   before each read) unless the configuration opts in to stale local reads. A
//!   client's consecutive pipelined writes are proposed as one ordered batch
//!   ([`Replicator::propose_batch`]), so pipelining becomes group commit.
//! - [`Config`]: the node's TOML configuration, with field-naming errors.
//!
//! # Commands
//!
//! | commands | kind |
//! |---|---|
//! | `GET`, `MGET`, `EXISTS`, `TOUCH`, `STRLEN`, `GETRANGE`/`SUBSTR`, `TTL`, `PTTL`, `EXPIRETIME`, `PEXPIRETIME`, `TYPE`, `DBSIZE`, `GETEX` without options, `KEYS`, `SCAN`, `MEMORY USAGE`, `GETBIT`, `BITCOUNT`, `BITPOS` (`BYTE`/`BIT` ranges), `HGET`, `HMGET`, `HLEN`, `HGETALL`, `HKEYS`, `HVALS`, `HEXISTS`, `HSTRLEN`, `HRANDFIELD`, `HSCAN` (`MATCH`, `NOVALUES`), `SISMEMBER`, `SMISMEMBER`, `SMEMBERS`, `SCARD`, `SINTER`, `SUNION`, `SDIFF`, `SINTERCARD`, `SRANDMEMBER`, `SSCAN`, `LLEN`, `LRANGE`, `LINDEX`, `LPOS`, `ZSCORE`, `ZMSCORE`, `ZCARD`, `ZRANK`, `ZREVRANK`, `ZCOUNT`, `ZLEXCOUNT`, `ZRANGE`, `ZREVRANGE`, `ZRANGEBYSCORE`, `ZREVRANGEBYSCORE`, `ZRANGEBYLEX`, `ZREVRANGEBYLEX`, `ZRANDMEMBER`, `ZSCAN`, `ZUNION`, `ZINTER`, `ZDIFF`, `ZINTERCARD`, `XLEN`, `XRANGE`, `XREVRANGE`, `XREAD`, `XPENDING`, `PFCOUNT`, `GEOPOS`, `GEODIST`, `GEOHASH`, `GEOSEARCH`, `GEORADIUS`, `GEORADIUSBYMEMBER` and their `_RO` forms | reads, after the read fence |
//! | `SET` (`NX`, `XX`, `GET`, `EX`, `PX`, `EXAT`, `PXAT`, `KEEPTTL`), `SETNX`, `SETEX`, `PSETEX`, `GETSET`, `GETDEL`, `GETEX`, `APPEND`, `SETRANGE`, `MSET`, `MSETNX`, `DEL`, `UNLINK`, `RENAME`, `RENAMENX`, `COPY` (`REPLACE`, `DB 0`), `INCR`, `INCRBY`, `DECR`, `DECRBY`, `INCRBYFLOAT`, `SETBIT`, `BITOP`, `HSET`, `HMSET`, `HSETNX`, `HDEL`, `HINCRBY`, `HINCRBYFLOAT`, `SADD`, `SREM`, `SMOVE`, `SPOP`, `SINTERSTORE`, `SUNIONSTORE`, `SDIFFSTORE`, `LPUSH`, `RPUSH`, `LPUSHX`, `RPUSHX`, `LPOP`, `RPOP`, `LSET`, `LREM`, `LTRIM`, `LINSERT`, `LMOVE`, `RPOPLPUSH`, `ZADD`, `ZINCRBY`, `ZREM`, `ZPOPMIN`, `ZPOPMAX`, `ZREMRANGEBYRANK`, `ZREMRANGEBYSCORE`, `ZREMRANGEBYLEX`, `ZUNIONSTORE`, `ZINTERSTORE`, `ZDIFFSTORE`, `ZRANGESTORE`, `LMPOP`, `ZMPOP`, `XADD`, `XDEL`, `XTRIM`, `XGROUP`, `XREADGROUP`, `XACK`, `XCLAIM`, `XAUTOCLAIM`, `PFADD`, `PFMERGE`, `GEOADD`, `GEOSEARCHSTORE`, `GEORADIUS ... STORE`, `EVAL`, `EVALSHA`, `EVAL_RO`, `EVALSHA_RO`, `FLUSHALL`/`FLUSHDB` (one database; one entry, which removes every key) | writes, through the log |
//! | `EXPIRE`, `PEXPIRE`, `EXPIREAT`, `PEXPIREAT` (`NX`, `XX`, `GT`, `LT`), `PERSIST` | writes, through the log |
//! | `BLPOP`, `BRPOP`, `BLMOVE`, `BRPOPLPUSH`, `BLMPOP`, `BZPOPMIN`, `BZPOPMAX`, `BZMPOP` | the pop through the log once a key holds something; until then the client waits on its node |
//! | `XREAD ... BLOCK`, `XREADGROUP ... BLOCK` | a read (or for a group, the read through the log) once a stream holds entries after the ID asked for; until then the client waits on its node |
//! | `PUBLISH` | through the log; every node delivers it to its subscribers as it applies it |
//! | `SUBSCRIBE`, `PSUBSCRIBE`, `UNSUBSCRIBE`, `PUNSUBSCRIBE`, `PUBSUB` | this node's subscriptions |
//! | `MULTI`, then writes and `GET`, `MGET`, `EXISTS`, `TOUCH`, `STRLEN`, `GETRANGE`, `GETBIT`, `BITCOUNT`, `BITPOS`, `TYPE`, `TTL`, `PTTL`, `EXPIRETIME`, `PEXPIRETIME`, the hash, set, list, sorted-set and stream reads (`XREAD` without waiting), `PFCOUNT`, the geospatial reads, the blocking pops (without waiting), `PING`, `ECHO`, then `EXEC` (or `DISCARD`); `WATCH`, `UNWATCH` | one log entry, [`Command::Transaction`]: atomic, and its reads see its writes. As in Redis, an unknown command or a wrong number of arguments discards the transaction at `EXEC`, while bad arguments are that command's error in `EXEC`'s reply and the others run; other commands (`KEYS`, `INFO`, `CLIENT`, ...) discard it too. `WATCH` notes what the keys hold (after the read fence) and the transaction runs only if they still hold it: unlike Redis, a key written again with the same value and expiry counts as unchanged |
//! | `PING`, `ECHO`, `INFO`, `AUTH`, `HELLO` (RESP2 or RESP3), `CLIENT SETNAME`/`GETNAME`/`ID`/`SETINFO`/`INFO`/`LIST`/`KILL`, `SCRIPT LOAD`/`EXISTS`/`FLUSH`/`KILL`, `SELECT 0`, `QUIT`, `COMMAND`, `TIME`, `CONFIG GET`, `SHUTDOWN` (stops the node as SIGTERM does) | answered by the node itself |
//! | `CLUSTER MEMBERS`, `MEET`, `ADDLEARNER`, `PROMOTE`, `REMOVE`, `TRANSFER` | membership (below) |
//!
//! Replies and error messages are those of Redis 7, and integers are parsed as strictly
//! as Redis parses them (no `+`, no leading zeros). Relative expiry times become
//! absolute on the node that takes the command, by its clock.
//!
//! A key holds a string, a hash, a set, a list, a sorted set or a stream. A collection
//! is stored as one value ([`hash`], [`set`], [`list`], [`zset`], [`stream`]), so a write
//! reads and rewrites it
//! whole: its
//! cost grows with the collection, as in Redis's compact encodings of small ones, and
//! they suit objects, sets and lists of up to some thousands of entries (one may take up
//! to 512 MiB): a list capped with `LTRIM`, a short work queue. Fields and
//! members keep the order they were first added in, which is the order Redis answers a
//! small hash's `HGETALL` in (Redis keeps a set of strings in no order); `HSCAN` and
//! `SSCAN` answer with everything at once and the cursor 0, as Redis does for a small
//! collection. `SPOP`'s random choice is made by a generator the proposing node seeds,
//! so every replica removes the same members. A command made for one kind answers
//! `WRONGTYPE` on a key holding another, and `MGET` reads a collection as no value.
//! A blocked client (`BLPOP` and the other blocking pops) waits on the node it is
//! connected to: when a key it waits on holds something there, the node proposes the
//! plain pop of that key (`LPOP`, `LMOVE`, `ZPOPMIN`, ...) through the log, and if
//! another client's pop took the item first it waits again. A client is woken to look
//! again only by an apply that gives one of its keys a value (or a snapshot install),
//! so blocked clients cost nothing while other keys are written; the first look follows
//! a read fence, so a key that already holds something is popped at once. Clients blocked on one key are not served
//! in the order they blocked, as Redis serves them, but in whatever order their pops
//! reach the log. Inside `MULTI` a blocking pop does not wait, as in Redis: it pops
//! what is there when the transaction runs, or answers as if its timeout had passed.
//! `LPOP` and `RPOP` with a count answer no array (RESP2 `*-1`) for a key without a
//! value, as Redis 7 does.
//!
//! A Lua script ([`script`]) is one log entry, [`Command::Eval`], that every replica
//! runs as it applies it: atomic, as in Redis, and its calls (`redis.call`) parsed as a
//! transaction's commands and run on the same state. So that every replica reaches the
//! same result, a run starts from a fresh Lua 5.1 state without `io`, `os` or `debug`;
//! `math.random` starts from the same seed at every run (Redis 7's carries on from run
//! to run); `TIME` answers the entry's time; a run stops after a fixed number of Lua
//! instructions and at a fixed amount of memory, not after a time (but, as in Redis,
//! not inside one call of Lua's string matching, which a crafted pattern can keep
//! busy for hours: on a node, every replica then stalls on the entry, so only trusted
//! clients should run scripts); there are no coroutines, which that count does not
//! reach into, and only source is loaded, never precompiled chunks. Errors name the
//! script and line as Redis 7 does. Each node keeps its own cache of scripts for
//! `EVALSHA`, filled by `EVAL` and `SCRIPT LOAD` through it; a client that gets
//! `NOSCRIPT` from another node sends the script again, as Redis clients do after a
//! failover. Inside `MULTI`, `EVAL` is queued like any write, and `EVALSHA` as the `EVAL`
//! of the script the node knows by that name (or its `NOSCRIPT` error, at `EXEC`).
//!
//! A geospatial index ([`geo`]) is a sorted set whose scores are Redis's 52-bit
//! geohashes, so `GEOADD` gives the scores Redis gives and the sorted-set commands work
//! on it. A search looks, as Redis does, through the grid cell holding its centre and
//! the eight around it at a step sized to its shape, so it finds the members Redis
//! finds, unsorted in Redis's order, and `ANY` stops where Redis stops. A search that
//! stores is a log entry ([`Command::GeoStore`]) run by every replica. Positions,
//! distances and hashes are written as Redis writes them. `COUNT` without `ANY` sorts
//! every member found and keeps the first, where Redis sorts partially: members at one
//! distance may then come in another order.
//!
//! A HyperLogLog ([`hll`]) is a string in Redis's own format, sparse then dense, hashed
//! and estimated as Redis does, so `PFADD` leaves the bytes Redis would and `PFCOUNT`
//! answers Redis's count to the unit, and a value copied between the two with `GET` and
//! `SET` keeps working. `PFCOUNT` is a read: unlike Redis, it does not write the count
//! it computes back into the value's cache, so the value's header may differ from
//! Redis's in those eight bytes, and a value damaged by a string command (`APPEND`,
//! `SETRANGE`) is refused as corrupt where Redis may still answer a count it cached.
//!
//! `PUBLISH` is a log entry that changes nothing: each node hands the message to its own
//! subscribers (channels, and glob patterns) as it applies the entry, so a subscriber on
//! any node gets what is published through any node, and every subscriber to a channel
//! sees its messages in the same order. `PUBLISH` answers how many subscribers of the
//! node that applied it for the proposer (the leader) got it. As in Redis, delivery is
//! at most once: a node does not deliver a message it applies more than ten seconds
//! after it was published (catching up, or replaying its log at start), and a
//! subscriber more than 4,096 messages behind is disconnected. A RESP2 subscriber may
//! only manage its subscriptions, `PING` and `QUIT`; in RESP3 messages are pushes and
//! every command runs. `PUBSUB CHANNELS`, `NUMSUB` and `NUMPAT` count this node's
//! subscribers.
//!
//! In RESP3, `HGETALL` is a map and `SMEMBERS`, `SINTER`, `SUNION`, `SDIFF` and `SPOP`
//! with a count are sets, inside `EXEC` too.
//!
//! A sorted set orders its members by score, then by member bytes, as Redis does, and
//! its commands follow Redis 7's options, checks and errors (`ZADD`'s `NX`, `XX`, `GT`,
//! `LT`, `CH` and `INCR`; `ZRANGE`'s `BYSCORE`, `BYLEX`, `REV` and `LIMIT`). Scores are
//! doubles, read as Redis reads them (but for hexadecimal floats, which a node refuses)
//! and written with the fewest digits that read back the same, as Redis 7.2 does; in
//! RESP3 they are doubles, and a range `WITHSCORES` is an array of member-score pairs.
//! `ZRANK ... WITHSCORE` (Redis 7.2) is answered too. A range by member over members of
//! different scores picks what Redis picks for a small sorted set. `ZUNIONSTORE` and
//! the other commands that combine keys read a set as members scored 1, as Redis does;
//! they check their options before the kinds of their keys, so a command wrong in both
//! ways is answered with the option's error where Redis answers `WRONGTYPE`.
//!
//! A stream holds entries of fields and values under increasing IDs (`ms-seq`), as in
//! Redis: `XADD` takes `*` (the time of the node that takes the command, or right after
//! the last ID if that is not later), `ms-*` or an explicit ID, and trims with `MAXLEN`
//! or `MINID` (and `LIMIT`); `XRANGE` and `XREVRANGE` take `-`, `+`, bare milliseconds
//! and exclusive bounds; `XREAD` reads several streams after an ID or `$`, and with
//! `BLOCK` waits on its node until a stream has entries after it (inside `MULTI` it
//! does not wait, as in Redis). A stream emptied by `XDEL`, `XTRIM` or `MAXLEN 0`
//! stays, with its last ID, so no ID is given twice. A trim with `~` removes exactly what
//! one with `=` would, where Redis stops at the edge of one of its internal nodes and
//! may leave more entries (`XTRIM` then answers a larger count than Redis). `XADD key
//! ms-* ...` after the ID `ms-18446744073709551615` is refused as an ID that does not
//! follow the last (Redis 7.0 answers that the elements are too large).
//!
//! Consumer groups work as in Redis: `XGROUP CREATE` (`$` or an ID, `MKSTREAM`),
//! `SETID`, `DESTROY`, `CREATECONSUMER` and `DELCONSUMER`; `XREADGROUP` with `>` hands
//! each new entry to one consumer and keeps it pending (unless `NOACK`) until `XACK`,
//! and with an ID reads the consumer's own pending entries again (an entry deleted
//! since has no fields); `XPENDING` summarises or lists the pending entries (`IDLE`,
//! by consumer); `XCLAIM` (`IDLE`, `TIME`, `RETRYCOUNT`, `FORCE`, `JUSTID`, `LASTID`) and
//! `XAUTOCLAIM` hand entries idle long enough to another consumer, and drop from the
//! pending list those the stream no longer holds. `XREADGROUP ... BLOCK` waits on its
//! node, and proposes the read again once one of its streams has given an ID past the
//! last its group delivered (other writes, such as acknowledgements, wake it to look,
//! not to propose); a node's clients blocked on the same group take turns, so that
//! what one took the next does not ask for. Delivery times are the proposer's, carried
//! in the log entry; idle times are measured by the clock of the node answering
//! `XPENDING`. `ENTRIESREAD` is accepted and checked but not kept, since no reply shows
//! it. `XINFO` and `XSETID` are not offered.
//!
//! `SET` with `GET` or `KEEPTTL` (and `GETSET`) is logged as [`Command::SetWith`], the
//! expiry commands as [`Command::Expire`] and [`Command::Persist`], and `GETDEL`,
//! `GETEX`, `APPEND` and `MSETNX` as variants of their own. A member built before those
//! variants existed skips such entries as undecodable, and its copy of the keys they
//! touch then differs: upgrade every member before clients use them. The same holds for
//! `RENAME`/`RENAMENX`, `COPY`, `SETRANGE`, `INCRBYFLOAT`, `SETBIT` and `BITOP`, added
//! later still, and for the hash, set, list, sorted-set and stream commands, added last. Their stored records and
//! snapshots carry a kind byte as well (snapshot format 2): a node built before them
//! refuses such a snapshot, and its store cannot be opened by an older build once it has
//! been rewritten. `APPEND` and `SETRANGE` stop at `server.request_bytes_max` bytes, the
//! most one `SET` may carry, and bit offsets at 8 times that (Redis stops at 512 MiB).
//!
//! `INCRBYFLOAT` adds in exact decimal and rounds the sum to 17 digits after the point,
//! where Redis adds in the machine's `long double`: the answers agree for small values,
//! and where Redis's binary rounding shows, the node gives the exact sum (`5000` plus
//! `0.2` is `5000.2`, where Redis on x86-64 answers `5000.20000000000000018`). Its
//! arguments follow Redis's float syntax, except that hexadecimal floats are refused.
//! `CONFIG GET` answers for the settings clients look for (`appendonly`, `appendfsync`,
//! `databases`, `maxclients`, `maxmemory`, `maxmemory-policy`, `proto-max-bulk-len`,
//! `save`) as this node has them; `CONFIG SET` is refused, since a node's settings come
//! from its configuration file. `TOUCH` counts like `EXISTS`: keys have no access time.
//! `MEMORY USAGE` counts the bytes a key's record takes in the store (key, value, an
//! 8-byte expiry and a byte for its kind), without the allocator overheads Redis adds.
//!
//! `INFO` has the sections monitoring tools read (`server`, `clients`, `memory`, where
//! `used_memory` is the process's resident memory, `persistence`, `stats`,
//! `replication`, `keyspace`), so `redis-cli --stat`, `--bigkeys` and `--memkeys` work.
//!
//! `SCAN` goes through the keys in byte order, and a key that holds a value for the
//! whole scan is returned exactly once. Its cursor is a handle on the node that gave it
//! (which remembers where the scan stopped), not a position any node understands as in
//! Redis: continue a scan on the same node. A node keeps the 4,096 newest cursors; an
//! older or unknown one is answered `ERR invalid cursor`. `KEYS`, as in Redis, reads
//! every key: for debugging, not for production paths.
//!
//! # Errors
//!
//! The code that starts a write's error tells the client what it may assume:
//!
//! | code | meaning |
//! |---|---|
//! | `ERR` | refused: wrong syntax or arguments, too large, not offered here; asking again does not help |
//! | `TRYAGAIN` | not done (no leader, overloaded, the node stopping); asking again later may work |
//! | `NOTLEADER` | not done: the write could not reach the leader, named if known |
//! | `TIMEOUT` | no answer in time: the write may still take effect |
//! | `UNKNOWN` | the write may or may not have taken effect (the leader did not answer a forwarded write, the node stopped while it waited, a journal append failed, or the write is committed but this node's store failed to apply it): read the key to find out before retrying a write that is not idempotent, such as `INCR` |
//!
//! # Membership
//!
//! The `[[peers]]` of the configuration and the node make the group at its first start.
//! After that the membership changes through Raft with `CLUSTER` commands:
//!
//! 1. Start the new node with `join = true` in `[node]` and the members as its
//!    `[[peers]]`: it waits, outside the group, to be added.
//! 2. On any member, `CLUSTER MEET <id> <ip:port>` records where it listens for peers.
//!    The address travels through the Raft log, and every member keeps it in its
//!    [`AddressBook`], a file in the data directory. `CLUSTER MEET <id> <ip:port> LOCAL`
//!    records it on the node asked only, without the log (for repairs while the group
//!    has no majority).
//! 3. On any member, `CLUSTER ADDLEARNER <id>`, then `CLUSTER PROMOTE <id>` once it has
//!    caught up (refused while it lags).
//!
//! `CLUSTER REMOVE <id>` removes a member, `CLUSTER TRANSFER <id>` hands the leadership
//! over, and `CLUSTER MEMBERS` lists `id voter|learner address` lines. A follower
//! forwards a change to the leader, as it does writes.
//!
//! This is a driver crate: it reads the system clock (through [`SystemClock`]) and does
//! I/O. Expired keys are hidden from reads at once and removed deterministically, by a
//! later write to the key or by a [`Command::PurgeExpired`] the leader proposes.
//!
//! # Example
//!
//! ```
//! use aegis_node::{Command, KvStateMachine, Output, SetCondition};
//!
//! let store = KvStateMachine::in_memory()?;
//! let set = Command::Set {
//!     key: b"greeting".to_vec(),
//!     value: b"hello".to_vec(),
//!     expire_at_ms: Some(2_000),
//!     condition: SetCondition::Always,
//! };
//! assert_eq!(store.apply(1, &set, 1_000)?, Output::Ok);
//! // Replaying the same index changes nothing.
//! assert!(matches!(store.apply(1, &set, 1_000)?, Output::AlreadyApplied { .. }));
//! assert_eq!(store.get(b"greeting", 1_500)?, Some(b"hello".to_vec()));
//! // After its expiry the key is hidden.
//! assert_eq!(store.get(b"greeting", 2_001)?, None);
//! // The encoding round-trips, and garbage is an error, not a panic.
//! assert_eq!(Command::decode(&set.encode()), Ok(set));
//! assert!(Command::decode(&[1, 255, 255]).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![allow(
    clippy::disallowed_methods,
    reason = "the server is a driver: it stamps proposals and reads with the wall clock"
)]

pub mod bits;
mod clients;
pub mod command;
pub mod config;
mod decimal;
pub mod geo;
mod glob;
pub mod hash;
pub mod hll;
pub mod list;
mod packed;
pub mod peers;
pub mod raft;
pub mod replicator;
pub mod resp;
pub mod script;
pub mod server;
pub mod set;
pub mod snapshot;
pub mod store;
pub mod stream;
pub mod zset;

pub use bits::{BitOp, BitQuery, BitRange, RangeUnit};
pub use command::{
    Aggregate, ClaimTime, CodecError, Command, ExpireCondition, Expiry, GroupOp, GroupRead,
    GroupStart, HashRead, Held, LexBound, ListRead, LogEntry, MPopFrom, NewId, Output,
    PendingRange, Rejection, ReplyItem, Score, ScoreBound, SetCondition, SetOp, SetRead,
    StreamEntry, StreamId, StreamRead, Trim, TrimBy, TxOp, TxRead, VALUE_BYTES_MAX, Watched,
    ZAddOptions, ZRange, ZRangeBy, ZSetRead, byte_range,
};
pub use config::{Config, ConfigError, ReadConsistency};
pub use peers::AddressBook;
pub use raft::{KvApplier, RaftReplicator};
pub use replicator::{
    Clock, JournalError, LocalConfig, LocalReplicator, ManualClock, MeetScope, Members,
    MembershipChange, NodeId, NodeStatus, ReplicaError, Replicator, Role, SystemClock,
};
pub use server::{Server, ServerConfig};
pub use store::{
    ApplyEntry, KeyCounts, KeyExpiry, KeyWatch, KvStateMachine, PendingSnapshot, RestoreSummary,
    ScanPage, SnapshotStream, StoreError, StoreOptions, ValueKind,
};
