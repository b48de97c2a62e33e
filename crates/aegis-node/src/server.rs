//! The RESP server: accepts clients, frames requests, runs commands against a
//! [`Replicator`] (writes) and the local [`KvStateMachine`] (reads).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis_protocol::resp2::types::OwnedFrame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

use crate::bits::{self, BitOp, BitQuery, BitRange, RangeUnit};
use crate::clients::{Client, Clients, KillFilter, Lib};
use crate::command::{
    Aggregate, Command, EXPIRE_AT_MS_MAX, ExpireCondition, Expiry, HashRead, ListRead, Output,
    Rejection, ReplyItem, SetCondition, SetOp, SetRead, StreamId, StreamRead, TxOp, TxRead,
    Watched, ZSetRead, byte_range, parse_integer,
};
use crate::config::{Config, ReadConsistency, ServerSection};
use crate::replicator::{Clock, MeetScope, Members, MembershipChange, ReplicaError, Replicator};
use crate::resp::{self, FrameLimits, Protocol, Reply, bulk, error, ok};
use crate::store::{KeyExpiry, KvStateMachine, ScanPage, StoreError, ValueKind};
use crate::{decimal, glob, script, set};

mod blocking;
mod geo;
mod pubsub;
mod sorted;
mod streams;

/// The Redis version whose commands and replies the server follows, as `INFO` and
/// `HELLO` report it.
const REDIS_VERSION_FOLLOWED: &str = "7.0.0";
/// How many `SCAN` cursors a server keeps open at once.
const SCAN_CURSORS_MAX: usize = 4096;
/// How many keys a `SCAN` looks at without a `COUNT`, as Redis.
const SCAN_COUNT_DEFAULT: usize = 10;
/// How many keys `KEYS` looks at per pass through the store.
const KEYS_PASS_MAX: usize = 4096;
/// How many bytes one socket read asks for.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Redis truncates the echoed arguments of an unknown command to this many characters.
const UNKNOWN_ARGS_ECHO_MAX: usize = 128;
/// Buffered replies beyond this are written out before the next request is run.
const OUT_FLUSH_BYTES: usize = 64 * 1024;
/// The pause after a failed accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// The server's settings, taken from [`Config`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerConfig {
    /// `[server]` from the configuration.
    pub server: ServerSection,
    /// The password clients must `AUTH` with, if any.
    pub password: Option<String>,
}

impl ServerConfig {
    /// The server settings of a validated configuration.
    #[must_use]
    pub fn from_config(config: &Config) -> Self {
        Self {
            server: config.server.clone(),
            password: config.security.password.clone(),
        }
    }

    fn frame_limits(&self) -> FrameLimits {
        FrameLimits {
            request_bytes_max: self.server.request_bytes_max as usize,
            request_args_max: self.server.request_args_max as usize,
        }
    }
}

/// Whether a connection goes on after a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

/// What a request needs, decided before anything waits.
#[derive(Debug)]
enum Step {
    /// Answer at once.
    Reply(OwnedFrame, Flow),
    /// Read from the state machine (after the read fence).
    Read(ReadKind, Vec<Vec<u8>>),
    /// Propose a write, and answer with its output in the given shape.
    Write(Command, Answer),
    /// `CLUSTER ...`: look at or change the membership.
    Cluster(Vec<Vec<u8>>),
    /// A map: `HELLO`'s answer, `CONFIG GET`'s.
    Map(Vec<(OwnedFrame, OwnedFrame)>),
    /// `WATCH key [key ...]`: note what the keys hold, after the read fence.
    Watch(Vec<Vec<u8>>),
    /// `SHUTDOWN`: answer what came before, close this connection and stop serving.
    Shutdown,
    /// `BLPOP`, `BZPOPMIN`, ...: pop, or wait until there is something to pop.
    Block(blocking::Blocking),
    /// Several replies at once, in order (`SUBSCRIBE a b` confirms each channel).
    Replies(Vec<Reply>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ReadKind {
    Get,
    MGet,
    Exists,
    /// `TTL` (seconds) and `PTTL` (milliseconds): the time left.
    Ttl(TimeUnit),
    /// `EXPIRETIME` and `PEXPIRETIME`: the absolute expiry.
    ExpireTime(TimeUnit),
    Type,
    Strlen,
    DbSize,
    /// `KEYS pattern`.
    Keys,
    /// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`, parsed.
    Scan(ScanRequest),
    /// `GETRANGE key start end` and `SUBSTR`, the positions parsed.
    GetRange {
        start: i64,
        end: i64,
    },
    /// `MEMORY USAGE key [SAMPLES count]`: what the key's record takes.
    MemoryUsage,
    /// `GETBIT`, `BITCOUNT`, `BITPOS`.
    Bits(BitRead),
    /// `HGET`, `HMGET`, `HLEN`, `HGETALL`, `HKEYS`, `HVALS`, `HEXISTS`, `HSTRLEN`.
    Hash(HashRead),
    /// `HSCAN key cursor [MATCH pattern] [COUNT count] [NOVALUES]` and `SSCAN key cursor
    /// [MATCH pattern] [COUNT count]`, parsed.
    CollectionScan(CollectionScan),
    /// `SISMEMBER`, `SMISMEMBER`, `SMEMBERS`, `SCARD`.
    Set(SetRead),
    /// `SINTER`, `SUNION`, `SDIFF key [key ...]`.
    SetCombine(SetOp),
    /// `SINTERCARD numkeys key [key ...] [LIMIT limit]`, parsed.
    SetInterCard {
        keys: usize,
        limit: u64,
    },
    /// `SRANDMEMBER key [count]` and `HRANDFIELD key [count [WITHVALUES]]`.
    Random(RandomPick),
    /// `LLEN`, `LRANGE`, `LINDEX`, `LPOS`, parsed.
    List(ListRead),
    /// `ZCARD`, `ZSCORE`, `ZRANGE`, ..., parsed, and the shape of the answer.
    ZSet(ZSetRead, Answer),
    /// `ZUNION`, `ZINTER`, `ZDIFF`, `ZINTERCARD`, parsed as a transaction reads them.
    ZSets(TxRead),
    /// `XLEN`, `XRANGE`, `XREVRANGE`, parsed.
    Stream(StreamRead),
    /// `XPENDING`, parsed, and the error for a key without the group.
    Pending(StreamRead, String),
    /// An `XREADGROUP` or `XCLAIM` with arguments Redis refuses only after it looked at
    /// the keys (those of `XREADGROUP` up to the bad ID) for their kind and group: the
    /// error for a key without the group, else `refused`.
    GroupCheck {
        keys: Vec<Vec<u8>>,
        group: Vec<u8>,
        missing: Vec<String>,
        refused: OwnedFrame,
    },
    /// `PFCOUNT key [key ...]`.
    PfCount,
    /// `XREAD` without `BLOCK`, parsed: the keys and the ID each is read after, the
    /// most entries from each (0: all), and the answer for an ID that is not one, once
    /// the keys are found to hold streams.
    XRead(Vec<(Vec<u8>, StreamId)>, u64, Option<OwnedFrame>),
}

/// What `SRANDMEMBER`, `HRANDFIELD` or `ZRANDMEMBER` picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RandomPick {
    /// Without one, a single entry; a negative one allows repeats.
    count: Option<i64>,
    /// From a hash's fields or a sorted set's members, each with its value or score
    /// (else a set's members).
    hash: bool,
    /// From a sorted set's members: their scores are doubles.
    zset: bool,
    /// The fields' values too (`WITHVALUES`).
    with_values: bool,
}

/// An `HSCAN`'s, `SSCAN`'s or `ZSCAN`'s options. A collection is kept whole, so, as
/// Redis does for a small one, one call answers with all of it and the cursor 0, whatever
/// the cursor and `COUNT`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CollectionScan {
    pattern: Option<Vec<u8>>,
    /// A hash's fields and values, or a sorted set's members and scores (else a set's
    /// members).
    pairs: bool,
    /// A sorted set's.
    zset: bool,
    /// Fields without their values (`NOVALUES`).
    no_values: bool,
}

/// A read of a key's bits. As in Redis, a key without a value is answered before the
/// range is looked at, so a range error shows only for a key that holds a value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BitRead {
    query: Result<BitQuery, OwnedFrame>,
    /// The answer for a key without a value.
    if_missing: i64,
}

/// A `SCAN`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ScanRequest {
    /// The cursor: 0 to start.
    cursor: u64,
    pattern: Option<Vec<u8>>,
    /// How many keys to look at.
    count: usize,
    /// The `TYPE` asked for, if any.
    kind: Option<Vec<u8>>,
}

/// Where each open `SCAN` cursor goes on from: the last key it looked at. The oldest
/// cursor is forgotten once [`SCAN_CURSORS_MAX`] are open.
#[derive(Debug, Default)]
struct ScanCursors {
    after: HashMap<u64, Vec<u8>>,
    order: VecDeque<u64>,
    last_id: u64,
}

impl ScanCursors {
    fn open(&mut self, after: Vec<u8>) -> u64 {
        self.last_id += 1;
        let id = self.last_id;
        self.after.insert(id, after);
        self.order.push_back(id);
        while self.order.len() > SCAN_CURSORS_MAX {
            if let Some(oldest) = self.order.pop_front() {
                self.after.remove(&oldest);
            }
        }
        id
    }

    fn take(&mut self, id: u64) -> Option<Vec<u8>> {
        let after = self.after.remove(&id)?;
        self.order.retain(|&open| open != id);
        Some(after)
    }
}

/// How a write's output becomes its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    /// As [`output_reply`] makes it.
    AsIs,
    /// `SETNX`: 1 if it wrote, 0 if not.
    Flag,
    /// `EXEC`: an array of each queued command's reply.
    Each(Vec<Answer>),
    /// Inside `EXEC`'s array: a command answered while it was queued, without a place
    /// among the transaction's commands.
    Fixed(OwnedFrame),
    /// `TYPE`: the value read, as a status reply.
    Status,
    /// `HMSET`: `OK` once it wrote.
    Done,
    /// `HGETALL`: fields and values read, as a map.
    Map,
    /// `SMEMBERS`, `SINTER`, `SPOP` with a count, ...: members, as a set.
    Set,
    /// `HSCAN`, `SSCAN`: a collection read whole, as the options pick from it.
    Scan(CollectionScan),
    /// `SRANDMEMBER`, `HRANDFIELD`: entries picked at random from a collection read
    /// whole, in replies of at most the given bytes.
    Random(RandomPick, usize),
    /// `ZPOPMIN`, `ZPOPMAX` without a count: one member and its score, not a pair.
    Popped,
    /// `ZRANK ... WITHSCORE`: the rank and the score.
    RankScore,
    /// `LPOP`, `RPOP` with a count: no array, rather than a null string, for a key
    /// without a value.
    NoArray,
    /// A blocking pop inside `MULTI`, which does not wait: what it pops, as the blocked
    /// client would get it, or no array.
    PoppedAtOnce(blocking::Pop),
    /// A stream group command: for each of its keys, the error if it holds no such
    /// group.
    NoGroup(Vec<String>),
    /// A geospatial read, from the sorted set's scores or the set read whole.
    Geo(geo::GeoAnswer),
}

/// What a command queued after `MULTI` becomes.
enum Queueing {
    /// A command of the transaction's log entry, and how to shape its output.
    Op(TxOp, Answer),
    /// A reply known at once: for a command with bad arguments, its error.
    Answered(OwnedFrame),
}

/// A transaction being queued, between `MULTI` and `EXEC`.
#[derive(Debug, Default)]
struct Queued {
    ops: Vec<TxOp>,
    answers: Vec<Answer>,
    /// About how many bytes the queued commands take.
    bytes: usize,
    /// A command was refused while queuing: `EXEC` discards the transaction.
    failed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeUnit {
    Seconds,
    Milliseconds,
}

/// Per-connection state.
#[derive(Debug)]
struct Session {
    authenticated: bool,
    /// The connection as `CLIENT LIST` shows it.
    client: Arc<Client>,
    /// The transaction being queued, after `MULTI`.
    multi: Option<Queued>,
    /// What the replies are written in, as `HELLO` chose.
    protocol: Protocol,
    /// The keys `WATCH`ed for the next transaction, with what each held.
    watched: Vec<Watched>,
    /// About how many bytes `watched` takes.
    watched_bytes: usize,
    /// Its channels and patterns, once it subscribed to one.
    subscriber: Option<pubsub::Subscriber>,
}

/// The turns of a node's clients blocked in `XREADGROUP`, by key and group; a turn no
/// client holds is dropped.
type GroupTurns = HashMap<(Vec<u8>, Vec<u8>), std::sync::Weak<tokio::sync::Mutex<()>>>;

/// A RESP server over a [`Replicator`] and the state machine it applies to.
#[derive(Debug)]
pub struct Server<R: Replicator> {
    shared: Arc<Shared<R>>,
}

#[derive(Debug)]
struct Shared<R> {
    replicator: Arc<R>,
    store: Arc<KvStateMachine>,
    clock: Arc<dyn Clock>,
    config: ServerConfig,
    connections: Arc<Semaphore>,
    /// The id of the last connection accepted: how many were.
    last_client_id: AtomicU64,
    /// Requests answered, over every connection.
    commands_processed: AtomicU64,
    /// Connections turned away at `connections_max`.
    connections_rejected: AtomicU64,
    scan_cursors: std::sync::Mutex<ScanCursors>,
    /// The scripts `EVAL` and `SCRIPT LOAD` gave this node, for `EVALSHA`.
    scripts: std::sync::Mutex<Scripts>,
    /// Every open connection.
    clients: Clients,
    /// Told by `SHUTDOWN`: [`Server::serve`] stops as if its shutdown had resolved.
    shutdown: Notify,
    /// Every subscription on this node.
    hub: Arc<pubsub::Hub>,
    /// Clients in a blocking pop, now.
    blocked: AtomicU64,
    /// One turn at a time for this node's clients blocked in `XREADGROUP` on the same
    /// key and group, by key and group.
    group_turns: std::sync::Mutex<GroupTurns>,
}

impl<R: Replicator> Server<R> {
    /// A server whose writes go through `replicator` and whose reads come from `store`.
    ///
    /// # Panics
    /// If `config.server` does not pass [`ServerSection::validate`].
    #[must_use]
    pub fn new(
        replicator: Arc<R>,
        store: Arc<KvStateMachine>,
        clock: Arc<dyn Clock>,
        config: ServerConfig,
    ) -> Self {
        config
            .server
            .validate()
            .expect("the server configuration was validated");
        let connections = Arc::new(Semaphore::new(config.server.connections_max as usize));
        // Every node delivers what is published as it applies the entry.
        let hub = Arc::new(pubsub::Hub::default());
        {
            let hub = Arc::clone(&hub);
            let clock = Arc::clone(&clock);
            store.set_publisher(Arc::new(move |channel, message, published_ms| {
                hub.deliver(channel, message, published_ms, clock.now_ms())
            }));
        }
        Self {
            shared: Arc::new(Shared {
                replicator,
                store,
                clock,
                config,
                connections,
                last_client_id: AtomicU64::new(0),
                commands_processed: AtomicU64::new(0),
                connections_rejected: AtomicU64::new(0),
                scan_cursors: std::sync::Mutex::default(),
                scripts: std::sync::Mutex::default(),
                clients: Clients::default(),
                shutdown: Notify::new(),
                hub,
                blocked: AtomicU64::new(0),
                group_turns: std::sync::Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Serves clients from `listener` until `shutdown` resolves or a client sends
    /// `SHUTDOWN`, then closes every connection. While this node leads, it also proposes expiry purges every
    /// `expire_purge_interval_ms`. Failed accepts (a reset peer, no file descriptors
    /// left) are logged and retried after a short pause.
    pub async fn serve(&self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let mut tasks = JoinSet::new();
        let interval_ms = self.shared.config.server.expire_purge_interval_ms;
        if interval_ms > 0 {
            let shared = Arc::clone(&self.shared);
            tasks.spawn(async move {
                let mut ticker = tokio::time::interval(Duration::from_millis(interval_ms));
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    ticker.tick().await;
                    if let Err(e) = shared.purge_expired_once().await {
                        tracing::debug!(error = %e, "expiry purge failed");
                    }
                }
            });
        }
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                () = self.shared.shutdown.notified() => {
                    tracing::info!("a client asked the server to shut down");
                    break;
                }
                accepted = listener.accept() => match accepted {
                    Ok((stream, _peer)) => {
                        let shared = Arc::clone(&self.shared);
                        tasks.spawn(async move { shared.admit(stream).await });
                    }
                    Err(e) => {
                        // Per-connection failures and descriptor exhaustion pass; back
                        // off briefly so a persistent error does not spin.
                        tracing::debug!(error = %e, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
                // Reap finished connections so the set does not grow.
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        tasks.shutdown().await;
    }

    /// Proposes one [`Command::PurgeExpired`] if this node leads and some key has
    /// expired by its clock; returns how many keys were removed.
    ///
    /// # Errors
    /// The replicator's error.
    pub async fn purge_expired_once(&self) -> Result<u64, ReplicaError> {
        self.shared.purge_expired_once().await
    }
}

fn store_error(e: &StoreError) -> OwnedFrame {
    match e {
        StoreError::ReadTooLarge { .. } => error(format!("ERR reply too large: {e}")),
        StoreError::WrongKind { .. } => wrong_type(),
        _ => error(format!("ERR storage failure: {e}")),
    }
}

fn replica_error(e: &ReplicaError) -> OwnedFrame {
    match e {
        ReplicaError::NotLeader {
            leader_hint: Some(id),
        } => error(format!(
            "NOTLEADER this node is not the leader; the leader is node {id}"
        )),
        ReplicaError::NotLeader { leader_hint: None } => {
            error("NOTLEADER this node is not the leader and no leader is known")
        }
        ReplicaError::Timeout { .. } => error(format!("TIMEOUT {e}")),
        ReplicaError::OutcomeUnknown { .. } => error(format!("UNKNOWN {e}")),
        ReplicaError::Store(inner) => store_error(inner),
        // Asking again does not help.
        ReplicaError::Refused { .. } | ReplicaError::Unsupported { .. } => {
            error(format!("ERR {e}"))
        }
        _ => error(format!("TRYAGAIN {e}")),
    }
}

/// One line per member: `id voter|learner address`, with `-` for an address this node
/// does not know.
fn members_reply(members: &Members) -> OwnedFrame {
    let address = |id: u64| {
        members
            .addresses
            .iter()
            .find(|(peer, _)| *peer == id)
            .map_or_else(|| "-".to_owned(), |(_, a)| a.to_string())
    };
    let voters = members.voters.iter().map(|&id| (id, "voter"));
    let learners = members.learners.iter().map(|&id| (id, "learner"));
    OwnedFrame::Array(
        voters
            .chain(learners)
            .map(|(id, role)| bulk(format!("{id} {role} {}", address(id)).into_bytes()))
            .collect(),
    )
}

fn syntax_error() -> OwnedFrame {
    error("ERR syntax error")
}

fn wrong_type() -> OwnedFrame {
    error("WRONGTYPE Operation against a key holding the wrong kind of value")
}

fn not_an_integer() -> OwnedFrame {
    error("ERR value is not an integer or out of range")
}

fn wrong_arity(name: &str) -> OwnedFrame {
    error(format!(
        "ERR wrong number of arguments for '{name}' command"
    ))
}

fn unknown_command(args: &[Vec<u8>]) -> OwnedFrame {
    let name = String::from_utf8_lossy(&args[0]);
    let name: String = name.chars().take(UNKNOWN_ARGS_ECHO_MAX).collect();
    let mut echoed = String::new();
    for arg in &args[1..] {
        let room = UNKNOWN_ARGS_ECHO_MAX.saturating_sub(echoed.len());
        if room == 0 {
            break;
        }
        let arg: String = String::from_utf8_lossy(arg).chars().take(room).collect();
        echoed.push_str(&format!("'{arg}' "));
    }
    error(format!(
        "ERR unknown command '{name}', with args beginning with: {echoed}"
    ))
}

/// Whether a command is a write that a transaction may hold ([`Shared::write_command`]
/// makes its log entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Write,
    Other,
}

/// Every command, its arity Redis-style (exact if positive, a minimum if negative; the
/// name counts) and its kind.
const COMMANDS: &[(&str, i32, Kind)] = &[
    ("get", 2, Kind::Other),
    ("set", -3, Kind::Write),
    ("setnx", 3, Kind::Write),
    ("setex", 4, Kind::Write),
    ("psetex", 4, Kind::Write),
    ("getset", 3, Kind::Write),
    ("getdel", 2, Kind::Write),
    ("getex", -2, Kind::Write),
    ("append", 3, Kind::Write),
    ("strlen", 2, Kind::Other),
    ("mget", -2, Kind::Other),
    ("mset", -3, Kind::Write),
    ("msetnx", -3, Kind::Write),
    ("del", -2, Kind::Write),
    ("unlink", -2, Kind::Write),
    ("exists", -2, Kind::Other),
    ("incr", 2, Kind::Write),
    ("decr", 2, Kind::Write),
    ("incrby", 3, Kind::Write),
    ("decrby", 3, Kind::Write),
    ("incrbyfloat", 3, Kind::Write),
    ("expire", -3, Kind::Write),
    ("pexpire", -3, Kind::Write),
    ("expireat", -3, Kind::Write),
    ("pexpireat", -3, Kind::Write),
    ("persist", 2, Kind::Write),
    ("ttl", 2, Kind::Other),
    ("pttl", 2, Kind::Other),
    ("expiretime", 2, Kind::Other),
    ("pexpiretime", 2, Kind::Other),
    ("type", 2, Kind::Other),
    ("dbsize", 1, Kind::Other),
    ("keys", 2, Kind::Other),
    ("rename", 3, Kind::Write),
    ("renamenx", 3, Kind::Write),
    ("copy", -3, Kind::Write),
    ("setrange", 4, Kind::Write),
    ("getrange", 4, Kind::Other),
    ("setbit", 4, Kind::Write),
    ("getbit", 3, Kind::Other),
    ("bitcount", -2, Kind::Other),
    ("bitpos", -3, Kind::Other),
    ("bitop", -4, Kind::Write),
    ("substr", 4, Kind::Other),
    ("touch", -2, Kind::Other),
    ("time", 1, Kind::Other),
    ("config", -2, Kind::Other),
    ("memory", -2, Kind::Other),
    ("shutdown", -1, Kind::Other),
    ("flushall", -1, Kind::Other),
    ("flushdb", -1, Kind::Other),
    ("scan", -2, Kind::Other),
    ("ping", -1, Kind::Other),
    ("echo", 2, Kind::Other),
    ("info", -1, Kind::Other),
    ("auth", -2, Kind::Other),
    ("hello", -1, Kind::Other),
    ("client", -2, Kind::Other),
    ("select", 2, Kind::Other),
    ("quit", -1, Kind::Other),
    ("command", -1, Kind::Other),
    ("cluster", -2, Kind::Other),
    ("hset", -4, Kind::Write),
    ("hmset", -4, Kind::Write),
    ("hsetnx", 4, Kind::Write),
    ("hdel", -3, Kind::Write),
    ("hincrby", 4, Kind::Write),
    ("hincrbyfloat", 4, Kind::Write),
    ("hget", 3, Kind::Other),
    ("hmget", -3, Kind::Other),
    ("hlen", 2, Kind::Other),
    ("hgetall", 2, Kind::Other),
    ("hkeys", 2, Kind::Other),
    ("hvals", 2, Kind::Other),
    ("hexists", 3, Kind::Other),
    ("hstrlen", 3, Kind::Other),
    ("hscan", -3, Kind::Other),
    ("sadd", -3, Kind::Write),
    ("srem", -3, Kind::Write),
    ("smove", 4, Kind::Write),
    ("spop", -2, Kind::Write),
    ("sinterstore", -3, Kind::Write),
    ("sunionstore", -3, Kind::Write),
    ("sdiffstore", -3, Kind::Write),
    ("sismember", 3, Kind::Other),
    ("smismember", -3, Kind::Other),
    ("smembers", 2, Kind::Other),
    ("scard", 2, Kind::Other),
    ("sinter", -2, Kind::Other),
    ("sunion", -2, Kind::Other),
    ("sdiff", -2, Kind::Other),
    ("sintercard", -3, Kind::Other),
    ("srandmember", -2, Kind::Other),
    ("sscan", -3, Kind::Other),
    ("hrandfield", -2, Kind::Other),
    ("lpush", -3, Kind::Write),
    ("rpush", -3, Kind::Write),
    ("lpushx", -3, Kind::Write),
    ("rpushx", -3, Kind::Write),
    ("lpop", -2, Kind::Write),
    ("rpop", -2, Kind::Write),
    ("lset", 4, Kind::Write),
    ("lrem", 4, Kind::Write),
    ("ltrim", 4, Kind::Write),
    ("linsert", 5, Kind::Write),
    ("lmove", 5, Kind::Write),
    ("rpoplpush", 3, Kind::Write),
    ("llen", 2, Kind::Other),
    ("lrange", 4, Kind::Other),
    ("lindex", 3, Kind::Other),
    ("lpos", -3, Kind::Other),
    ("zadd", -4, Kind::Write),
    ("zincrby", 4, Kind::Write),
    ("zrem", -3, Kind::Write),
    ("zpopmin", -2, Kind::Write),
    ("zpopmax", -2, Kind::Write),
    ("zremrangebyrank", 4, Kind::Write),
    ("zremrangebyscore", 4, Kind::Write),
    ("zremrangebylex", 4, Kind::Write),
    ("zcard", 2, Kind::Other),
    ("zscore", 3, Kind::Other),
    ("zmscore", -3, Kind::Other),
    ("zrank", -3, Kind::Other),
    ("zrevrank", -3, Kind::Other),
    ("zcount", 4, Kind::Other),
    ("zlexcount", 4, Kind::Other),
    ("zrange", -4, Kind::Other),
    ("zrevrange", -4, Kind::Other),
    ("zrangebyscore", -4, Kind::Other),
    ("zrevrangebyscore", -4, Kind::Other),
    ("zrangebylex", -4, Kind::Other),
    ("zrevrangebylex", -4, Kind::Other),
    ("zscan", -3, Kind::Other),
    ("zrandmember", -2, Kind::Other),
    ("zunionstore", -4, Kind::Write),
    ("zinterstore", -4, Kind::Write),
    ("zdiffstore", -4, Kind::Write),
    ("zrangestore", -5, Kind::Write),
    ("zunion", -3, Kind::Other),
    ("zinter", -3, Kind::Other),
    ("zdiff", -3, Kind::Other),
    ("zintercard", -3, Kind::Other),
    ("blpop", -3, Kind::Other),
    ("brpop", -3, Kind::Other),
    ("blmove", 6, Kind::Other),
    ("brpoplpush", 4, Kind::Other),
    ("bzpopmin", -3, Kind::Other),
    ("bzpopmax", -3, Kind::Other),
    ("lmpop", -4, Kind::Write),
    ("zmpop", -4, Kind::Write),
    ("blmpop", -5, Kind::Other),
    ("bzmpop", -5, Kind::Other),
    ("subscribe", -2, Kind::Other),
    ("psubscribe", -2, Kind::Other),
    ("unsubscribe", -1, Kind::Other),
    ("punsubscribe", -1, Kind::Other),
    ("publish", 3, Kind::Write),
    ("xadd", -5, Kind::Write),
    ("xdel", -3, Kind::Write),
    ("xtrim", -4, Kind::Write),
    ("xlen", 2, Kind::Other),
    ("xrange", -4, Kind::Other),
    ("xrevrange", -4, Kind::Other),
    ("xread", -4, Kind::Other),
    ("xgroup", -2, Kind::Write),
    ("xreadgroup", -7, Kind::Write),
    ("xack", -4, Kind::Write),
    ("xpending", -3, Kind::Other),
    ("xclaim", -6, Kind::Write),
    ("xautoclaim", -6, Kind::Write),
    ("pubsub", -2, Kind::Other),
    ("geoadd", -5, Kind::Write),
    ("geopos", -2, Kind::Other),
    ("geodist", -4, Kind::Other),
    ("geohash", -2, Kind::Other),
    ("geosearch", -7, Kind::Other),
    ("geosearchstore", -8, Kind::Other),
    ("georadius", -6, Kind::Other),
    ("georadius_ro", -6, Kind::Other),
    ("georadiusbymember", -5, Kind::Other),
    ("georadiusbymember_ro", -5, Kind::Other),
    ("eval", -3, Kind::Other),
    ("eval_ro", -3, Kind::Other),
    ("evalsha", -3, Kind::Other),
    ("evalsha_ro", -3, Kind::Other),
    ("script", -2, Kind::Other),
    ("pfadd", -2, Kind::Write),
    ("pfcount", -2, Kind::Other),
    ("pfmerge", -2, Kind::Write),
    ("multi", 1, Kind::Other),
    ("exec", 1, Kind::Other),
    ("discard", 1, Kind::Other),
    ("watch", -2, Kind::Other),
    ("unwatch", 1, Kind::Other),
];

/// What a queued command adds to a transaction's size beyond its arguments' bytes, at
/// most, for the framing of each argument and command in the log entry.
const TX_OP_OVERHEAD_BYTES: usize = 16;

/// The place of the command `name`, in any case, in [`COMMANDS`], if it is one.
fn command_place(name: &[u8]) -> Option<usize> {
    COMMANDS
        .iter()
        .position(|(known, ..)| known.as_bytes().eq_ignore_ascii_case(name))
}

/// The arity and kind of the command `name`, if it is one.
fn command_info(name: &str) -> Option<(i32, Kind)> {
    command_place(name.as_bytes()).map(|place| (COMMANDS[place].1, COMMANDS[place].2))
}

/// The name of the command at `place` in [`COMMANDS`].
fn command_name(place: usize) -> &'static str {
    COMMANDS[place].0
}

fn arity_ok(arity: i32, argc: usize) -> bool {
    let argc = i64::try_from(argc).unwrap_or(i64::MAX);
    if arity >= 0 {
        argc == i64::from(arity)
    } else {
        argc >= -i64::from(arity)
    }
}

fn invalid_expire_time(command: &str) -> OwnedFrame {
    error(format!("ERR invalid expire time in '{command}' command"))
}

/// The expiry options of `SET` and `GETEX` as Redis 7 reads them: one of `EX`, `PX`,
/// `EXAT`, `PXAT` (repeating the same one is allowed, the last counts) or the word that
/// keeps the expiry out of it (`KEEPTTL` for `SET`, `PERSIST` for `GETEX`), checked as a
/// time only once the whole syntax is.
struct ExpiryOptions<'a> {
    /// `KEEPTTL` or `PERSIST`, whichever the command takes.
    word: &'static [u8],
    /// Whether that word was given.
    worded: bool,
    /// The expiry option given, upper case, with its argument.
    expire: Option<(Vec<u8>, &'a [u8])>,
}

impl<'a> ExpiryOptions<'a> {
    fn new(word: &'static [u8]) -> Self {
        Self {
            word,
            worded: false,
            expire: None,
        }
    }

    /// Takes the option at `args[i]` (upper case: `option`) if it is one of these, and
    /// returns how many arguments it used: `Ok(0)` if it is not one of these.
    fn take(&mut self, args: &'a [Vec<u8>], i: usize, option: &[u8]) -> Result<usize, OwnedFrame> {
        match option {
            word if word == self.word && self.expire.is_none() => {
                self.worded = true;
                Ok(1)
            }
            b"EX" | b"PX" | b"EXAT" | b"PXAT"
                if !self.worded && self.expire.as_ref().is_none_or(|(unit, _)| *unit == option) =>
            {
                let amount = args.get(i + 1).ok_or_else(syntax_error)?;
                self.expire = Some((option.to_vec(), amount));
                Ok(2)
            }
            _ => Ok(0),
        }
    }

    /// The absolute expiry given, checked for `command`, if any.
    fn expire_at(&self, now_ms: u64, command: &str) -> Result<Option<u64>, OwnedFrame> {
        self.expire
            .as_ref()
            .map(|(unit, amount)| expire_at(unit, amount, now_ms, command))
            .transpose()
    }
}

/// Parses `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]` as Redis 7
/// does: options in any order, and the expiry as [`ExpiryOptions`] reads it.
fn parse_set(args: &[Vec<u8>], now_ms: u64) -> Result<Command, OwnedFrame> {
    let mut condition = SetCondition::Always;
    let mut get = false;
    let mut expiry_options = ExpiryOptions::new(b"KEEPTTL");
    let mut i = 3;
    while i < args.len() {
        let option = args[i].to_ascii_uppercase();
        i += match option.as_slice() {
            b"NX" if condition != SetCondition::IfPresent => {
                condition = SetCondition::IfAbsent;
                1
            }
            b"XX" if condition != SetCondition::IfAbsent => {
                condition = SetCondition::IfPresent;
                1
            }
            b"GET" => {
                get = true;
                1
            }
            _ => match expiry_options.take(args, i, &option)? {
                0 => return Err(syntax_error()),
                used => used,
            },
        };
    }
    let expiry = match expiry_options.expire_at(now_ms, "set")? {
        Some(at) => Expiry::At(at),
        None if expiry_options.worded => Expiry::Keep,
        None => Expiry::Clear,
    };
    let (key, value) = (args[1].clone(), args[2].clone());
    Ok(match expiry {
        // The common forms keep the encoding every build reads.
        Expiry::Clear | Expiry::At(_) if !get => Command::Set {
            key,
            value,
            expire_at_ms: match expiry {
                Expiry::At(at) => Some(at),
                _ => None,
            },
            condition,
        },
        _ => Command::SetWith {
            key,
            value,
            expiry,
            condition,
            get,
        },
    })
}

/// The absolute expiry, in Unix milliseconds, that `EX`, `PX`, `EXAT` or `PXAT` (the
/// `unit`, upper case) with `amount` give at `now_ms`: a positive integer, no later than
/// [`EXPIRE_AT_MS_MAX`], as Redis checks it for `command`.
fn expire_at(unit: &[u8], amount: &[u8], now_ms: u64, command: &str) -> Result<u64, OwnedFrame> {
    let amount = parse_integer(amount).ok_or_else(not_an_integer)?;
    let amount = u64::try_from(amount)
        .ok()
        .filter(|&a| a > 0)
        .ok_or_else(|| invalid_expire_time(command))?;
    let at = match unit {
        b"EX" => amount
            .checked_mul(1000)
            .and_then(|ms| ms.checked_add(now_ms)),
        b"PX" => amount.checked_add(now_ms),
        b"EXAT" => amount.checked_mul(1000),
        _ => Some(amount),
    };
    at.filter(|&at| at <= EXPIRE_AT_MS_MAX)
        .ok_or_else(|| invalid_expire_time(command))
}

/// Parses `GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST]` with at least one option, as
/// Redis 7 does ([`ExpiryOptions`]).
fn parse_getex(args: &[Vec<u8>], now_ms: u64) -> Result<Command, OwnedFrame> {
    let mut expiry_options = ExpiryOptions::new(b"PERSIST");
    let mut i = 2;
    while i < args.len() {
        let option = args[i].to_ascii_uppercase();
        match expiry_options.take(args, i, &option)? {
            0 => return Err(syntax_error()),
            used => i += used,
        }
    }
    let expiry = match expiry_options.expire_at(now_ms, "getex")? {
        Some(at) => Expiry::At(at),
        None => Expiry::Clear,
    };
    Ok(Command::GetEx {
        key: args[1].clone(),
        expiry,
    })
}

/// Parses `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]` as Redis does.
fn parse_scan(args: &[Vec<u8>]) -> Result<ScanRequest, OwnedFrame> {
    let cursor = std::str::from_utf8(&args[1])
        .ok()
        .and_then(|c| c.parse::<u64>().ok())
        .ok_or_else(|| error("ERR invalid cursor"))?;
    let mut request = ScanRequest {
        cursor,
        pattern: None,
        count: SCAN_COUNT_DEFAULT,
        kind: None,
    };
    let mut i = 2;
    while i < args.len() {
        let value = args.get(i + 1).ok_or_else(syntax_error)?;
        match args[i].to_ascii_uppercase().as_slice() {
            b"MATCH" => request.pattern = Some(value.clone()),
            b"COUNT" => {
                let count = parse_integer(value).ok_or_else(not_an_integer)?;
                request.count = usize::try_from(count)
                    .ok()
                    .filter(|&c| c > 0)
                    .ok_or_else(syntax_error)?;
            }
            b"TYPE" => request.kind = Some(value.clone()),
            _ => return Err(syntax_error()),
        }
        i += 2;
    }
    Ok(request)
}

/// Whether `arg` is a word C's `strtold` reads as an infinity (`inf`, `-Infinity`, ...).
fn is_infinity(arg: &[u8]) -> bool {
    let unsigned = arg
        .strip_prefix(b"+")
        .or_else(|| arg.strip_prefix(b"-"))
        .unwrap_or(arg);
    [&b"inf"[..], b"infinity"]
        .iter()
        .any(|word| unsigned.eq_ignore_ascii_case(word))
}

/// `LEFT` or `RIGHT`, as `LMOVE` takes them: whether it is the head.
fn parse_end(arg: &[u8]) -> Result<bool, OwnedFrame> {
    match arg.to_ascii_uppercase().as_slice() {
        b"LEFT" => Ok(true),
        b"RIGHT" => Ok(false),
        _ => Err(syntax_error()),
    }
}

/// Parses `LLEN key`, `LRANGE key start stop`, `LINDEX key index` or `LPOS key item
/// [RANK rank] [COUNT count] [MAXLEN len]` as Redis 7 does.
fn parse_list_read(name: &str, args: &[Vec<u8>]) -> Result<ListRead, OwnedFrame> {
    let int = |arg: &[u8]| parse_integer(arg).ok_or_else(not_an_integer);
    Ok(match name {
        "llen" => ListRead::Len,
        "lrange" => ListRead::Range {
            start: int(&args[2])?,
            stop: int(&args[3])?,
        },
        "lindex" => ListRead::Index {
            index: int(&args[2])?,
        },
        _ => {
            let (mut rank, mut count, mut max_len) = (1, None, 0);
            let mut i = 3;
            while i < args.len() {
                let value = args.get(i + 1).ok_or_else(syntax_error)?;
                match args[i].to_ascii_uppercase().as_slice() {
                    b"RANK" => {
                        rank = int(value)?;
                        if rank == 0 {
                            return Err(error(
                                "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                            ));
                        }
                    }
                    b"COUNT" => {
                        count = Some(
                            u64::try_from(int(value)?)
                                .map_err(|_| error("ERR COUNT can't be negative"))?,
                        );
                    }
                    b"MAXLEN" => {
                        max_len = u64::try_from(int(value)?)
                            .map_err(|_| error("ERR MAXLEN can't be negative"))?;
                    }
                    _ => return Err(syntax_error()),
                }
                i += 2;
            }
            ListRead::Pos {
                item: args[2].clone(),
                rank,
                count,
                max_len,
            }
        }
    })
}

/// The read a set command names (its arity checked).
fn set_read(name: &str, args: &[Vec<u8>]) -> SetRead {
    match name {
        "sismember" => SetRead::IsMember {
            member: args[2].clone(),
        },
        "smismember" => SetRead::MIsMember {
            members: args[2..].to_vec(),
        },
        "smembers" => SetRead::Members,
        _ => SetRead::Card,
    }
}

/// What `SINTER`, `SUNION`, `SDIFF` and their `STORE` forms compute.
fn set_op(name: &str) -> SetOp {
    match name {
        "sinter" | "sinterstore" => SetOp::Inter,
        "sunion" | "sunionstore" => SetOp::Union,
        _ => SetOp::Diff,
    }
}

/// Parses `SINTERCARD numkeys key [key ...] [LIMIT limit]` as Redis 7 does: how many
/// keys follow, and the limit (0 for none).
fn parse_sintercard(args: &[Vec<u8>]) -> Result<(usize, u64), OwnedFrame> {
    let keys = parse_integer(&args[1])
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n > 0)
        .ok_or_else(|| error("ERR numkeys should be greater than 0"))?;
    if keys > args.len() - 2 {
        return Err(error(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    let mut limit = 0;
    let mut i = 2 + keys;
    while i < args.len() {
        let value = args.get(i + 1).ok_or_else(syntax_error)?;
        if !args[i].eq_ignore_ascii_case(b"LIMIT") {
            return Err(syntax_error());
        }
        limit = parse_integer(value)
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| error("ERR LIMIT can't be negative"))?;
        i += 2;
    }
    Ok((keys, limit))
}

/// Parses `SRANDMEMBER key [count]` or `HRANDFIELD key [count [WITHVALUES]]`.
fn parse_random_pick(name: &str, args: &[Vec<u8>]) -> Result<RandomPick, OwnedFrame> {
    let zset = name == "zrandmember";
    let hash = name == "hrandfield" || zset;
    let word: &[u8] = if zset { b"WITHSCORES" } else { b"WITHVALUES" };
    let count = match args.get(2) {
        None => None,
        Some(count) => Some(
            parse_integer(count)
                .filter(|&n| n != i64::MIN)
                .ok_or_else(not_an_integer)?,
        ),
    };
    let with_values = match &args[args.len().min(3)..] {
        [] => false,
        [given] if hash && given.eq_ignore_ascii_case(word) => true,
        _ => return Err(syntax_error()),
    };
    Ok(RandomPick {
        count,
        hash,
        zset,
        with_values,
    })
}

/// The read a hash command names (its arity checked).
fn hash_read(name: &str, args: &[Vec<u8>]) -> HashRead {
    match name {
        "hget" => HashRead::Get {
            field: args[2].clone(),
        },
        "hmget" => HashRead::MGet {
            fields: args[2..].to_vec(),
        },
        "hlen" => HashRead::Len,
        "hgetall" => HashRead::GetAll,
        "hkeys" => HashRead::Keys,
        "hvals" => HashRead::Values,
        "hexists" => HashRead::Exists {
            field: args[2].clone(),
        },
        _ => HashRead::StrLen {
            field: args[2].clone(),
        },
    }
}

/// Parses `HSCAN key cursor [MATCH pattern] [COUNT count] [NOVALUES]`, or `SSCAN` or
/// `ZSCAN key cursor [MATCH pattern] [COUNT count]`, as Redis 7 does.
fn parse_collection_scan(name: &str, args: &[Vec<u8>]) -> Result<CollectionScan, OwnedFrame> {
    let pairs = name != "sscan";
    std::str::from_utf8(&args[2])
        .ok()
        .and_then(|c| c.parse::<u64>().ok())
        .ok_or_else(|| error("ERR invalid cursor"))?;
    let mut request = CollectionScan {
        pattern: None,
        pairs,
        zset: name == "zscan",
        no_values: false,
    };
    let mut i = 3;
    while i < args.len() {
        let option = args[i].to_ascii_uppercase();
        if name == "hscan" && option == b"NOVALUES" {
            request.no_values = true;
            i += 1;
            continue;
        }
        let value = args.get(i + 1).ok_or_else(syntax_error)?;
        match option.as_slice() {
            b"MATCH" => request.pattern = Some(value.clone()),
            b"COUNT" => {
                let count = parse_integer(value).ok_or_else(not_an_integer)?;
                if count < 1 {
                    return Err(syntax_error());
                }
            }
            _ => return Err(syntax_error()),
        }
        i += 2;
    }
    Ok(request)
}

/// The pairs of `MSET`-like arguments after the command name.
/// The range of `BITCOUNT` (`start end [BYTE|BIT]`, both ends or none) or, if
/// `end_optional`, of `BITPOS` (`start [end [BYTE|BIT]]`), in the order Redis reads them.
fn parse_bit_range(args: &[Vec<u8>], end_optional: bool) -> Result<Option<BitRange>, OwnedFrame> {
    let unit = |arg: &[u8]| match arg.to_ascii_uppercase().as_slice() {
        b"BYTE" => Ok(RangeUnit::Byte),
        b"BIT" => Ok(RangeUnit::Bit),
        _ => Err(syntax_error()),
    };
    let int = |arg: &[u8]| parse_integer(arg).ok_or_else(not_an_integer);
    let range = |start, end, unit| Ok(Some(BitRange { start, end, unit }));
    match args {
        [] => Ok(None),
        [start] if end_optional => range(int(start)?, None, RangeUnit::Byte),
        [start, end] => range(int(start)?, Some(int(end)?), RangeUnit::Byte),
        // BITPOS reads the unit before the end; BITCOUNT, after.
        [start, end, by] if end_optional => {
            let start = int(start)?;
            let by = unit(by)?;
            range(start, Some(int(end)?), by)
        }
        [start, end, by] => {
            let (start, end) = (int(start)?, int(end)?);
            // Two negative ends in the wrong order count nothing, in any unit: Redis
            // answers before it reads the unit.
            let by = if start < 0 && end < 0 && start > end {
                RangeUnit::Byte
            } else {
                unit(by)?
            };
            range(start, Some(end), by)
        }
        _ => Err(syntax_error()),
    }
}

/// `GETRANGE`'s and `SUBSTR`'s positions.
fn parse_range(args: &[Vec<u8>]) -> Result<(i64, i64), OwnedFrame> {
    let start = parse_integer(&args[2]).ok_or_else(not_an_integer)?;
    let end = parse_integer(&args[3]).ok_or_else(not_an_integer)?;
    Ok((start, end))
}

/// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]`. The node stops as on SIGTERM: its
/// store is persisted whatever the flags say (every write is in its log anyway), and it
/// never waits, so `NOW` and `FORCE` change nothing and there is no shutdown to abort.
fn parse_shutdown(args: &[Vec<u8>]) -> Result<(), OwnedFrame> {
    let (mut save, mut nosave, mut abort) = (false, false, false);
    for arg in &args[1..] {
        match arg.to_ascii_uppercase().as_slice() {
            b"SAVE" => save = true,
            b"NOSAVE" => nosave = true,
            b"ABORT" => abort = true,
            b"NOW" | b"FORCE" => {}
            _ => return Err(syntax_error()),
        }
    }
    if (save && nosave) || (abort && args.len() > 2) {
        return Err(syntax_error());
    }
    if abort {
        return Err(error("ERR No shutdown in progress."));
    }
    Ok(())
}

/// `MEMORY USAGE key [SAMPLES count]`, the one `MEMORY` subcommand there is. Every
/// value is a string, so there is nothing to sample.
fn parse_memory(args: &[Vec<u8>]) -> Result<(), OwnedFrame> {
    if !args[1].eq_ignore_ascii_case(b"usage") {
        return Err(error(format!(
            "ERR unknown subcommand '{}'. Try MEMORY USAGE.",
            String::from_utf8_lossy(&args[1])
        )));
    }
    match args.len() {
        3 => Ok(()),
        5 if args[3].eq_ignore_ascii_case(b"samples") => parse_integer(&args[4])
            .map(|_| ())
            .ok_or_else(not_an_integer),
        0..3 => Err(wrong_arity("memory|usage")),
        _ => Err(syntax_error()),
    }
}

/// A database number (`SELECT`, `COPY ... DB`): there is one, database 0.
fn parse_db(arg: &[u8]) -> Result<(), OwnedFrame> {
    match parse_integer(arg) {
        Some(0) => Ok(()),
        Some(_) => Err(error("ERR DB index is out of range")),
        None => Err(not_an_integer()),
    }
}

/// `COPY from to [DB 0] [REPLACE]`: there is one database, so `DB` names it or nothing.
fn parse_copy(mut args: Vec<Vec<u8>>) -> Result<Command, OwnedFrame> {
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        let option = args[i].to_ascii_uppercase();
        if option == b"REPLACE" {
            replace = true;
        } else if option == b"DB" && i + 1 < args.len() {
            i += 1;
            parse_db(&args[i])?;
        } else {
            return Err(syntax_error());
        }
        i += 1;
    }
    if args[1] == args[2] {
        return Err(error("ERR source and destination objects are the same"));
    }
    args.truncate(3);
    Ok(Command::Copy {
        to: args.swap_remove(2),
        from: args.swap_remove(1),
        replace,
    })
}

/// Turns TCP keepalive on for a client's connection, probing after `secs` of silence as
/// Redis does (then every third of that, three times), or leaves it off for 0.
fn set_keepalive(stream: &TcpStream, secs: u32) -> std::io::Result<()> {
    if secs == 0 {
        return Ok(());
    }
    let idle = Duration::from_secs(u64::from(secs));
    let keepalive = socket2::TcpKeepalive::new().with_time(idle);
    #[cfg(target_os = "linux")]
    let keepalive = keepalive
        .with_interval((idle / 3).max(Duration::from_secs(1)))
        .with_retries(3);
    socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive)
}

/// Resolves after `timeout`, or never without one.
/// The next message for a connection's subscriptions; never, without any.
async fn next_delivery(subscriber: &mut Option<pubsub::Subscriber>) -> Option<pubsub::Delivery> {
    match subscriber {
        Some(subscriber) if subscriber.count() > 0 => subscriber.next().await,
        _ => std::future::pending().await,
    }
}

async fn idle(timeout: Option<Duration>) {
    match timeout {
        Some(timeout) => tokio::time::sleep(timeout).await,
        None => std::future::pending().await,
    }
}

/// The resident memory of this process, where the system tells it (Linux).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}

/// `TIME`: the node's clock as seconds and microseconds, in the millisecond it has.
fn time_reply(now_ms: u64) -> OwnedFrame {
    OwnedFrame::Array(vec![
        bulk((now_ms / 1000).to_string().into_bytes()),
        bulk(((now_ms % 1000) * 1000).to_string().into_bytes()),
    ])
}

fn pairs(args: Vec<Vec<u8>>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut rest = args.into_iter().skip(1);
    let mut pairs = Vec::with_capacity(rest.len() / 2);
    while let (Some(key), Some(value)) = (rest.next(), rest.next()) {
        pairs.push((key, value));
    }
    pairs
}

/// Parses `EXPIRE key seconds`, `PEXPIRE key ms`, `EXPIREAT key unix-seconds` and
/// `PEXPIREAT key unix-ms`, each with `[NX | XX | GT | LT]`, as Redis 7 does: the
/// options first, then the time, which may be negative (the key is then deleted).
fn parse_expire(name: &str, args: &[Vec<u8>], now_ms: u64) -> Result<Command, OwnedFrame> {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for option in &args[3..] {
        match option.to_ascii_uppercase().as_slice() {
            b"NX" => nx = true,
            b"XX" => xx = true,
            b"GT" => gt = true,
            b"LT" => lt = true,
            _ => {
                return Err(error(format!(
                    "ERR Unsupported option {}",
                    String::from_utf8_lossy(option)
                )));
            }
        }
    }
    if nx && (xx || gt || lt) {
        return Err(error(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(error(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    let condition = match (nx, xx, gt, lt) {
        (true, ..) => ExpireCondition::IfNone,
        (_, _, true, _) => ExpireCondition::IfLater,
        (_, true, _, true) => ExpireCondition::IfSomeAndSooner,
        (_, false, _, true) => ExpireCondition::IfSooner,
        (_, true, ..) => ExpireCondition::IfSome,
        _ => ExpireCondition::Always,
    };
    let amount = parse_integer(&args[2]).ok_or_else(not_an_integer)?;
    let (seconds, relative) = match name {
        "expire" => (true, true),
        "pexpire" => (false, true),
        "expireat" => (true, false),
        _ => (false, false),
    };
    let ms = if seconds {
        amount.checked_mul(1000)
    } else {
        Some(amount)
    };
    let base = if relative {
        i64::try_from(now_ms).unwrap_or(i64::MAX)
    } else {
        0
    };
    let at = ms
        .and_then(|ms| ms.checked_add(base))
        .ok_or_else(|| invalid_expire_time(name))?;
    Ok(Command::Expire {
        key: args[1].clone(),
        // Before the epoch is as past as the epoch: the key is deleted either way.
        expire_at_ms: u64::try_from(at).unwrap_or(0),
        condition,
    })
}

impl<R: Replicator> Shared<R> {
    async fn admit(self: Arc<Self>, mut stream: TcpStream) {
        let Ok(_permit) = Arc::clone(&self.connections).try_acquire_owned() else {
            self.connections_rejected.fetch_add(1, Ordering::Relaxed);
            let mut out = Vec::new();
            resp::encode_frame(&mut out, &error("ERR max number of clients reached"));
            let _ = stream.write_all(&out).await;
            return;
        };
        if let Err(e) = self.connection(stream).await {
            tracing::debug!(error = %e, "client connection ended with an error");
        }
    }

    async fn connection(&self, stream: TcpStream) -> std::io::Result<()> {
        let _ = stream.set_nodelay(true);
        if let Err(e) = set_keepalive(&stream, self.config.server.tcp_keepalive_secs) {
            tracing::debug!(error = %e, "cannot set TCP keepalive on a client connection");
        }
        let idle_timeout = match self.config.server.idle_timeout_secs {
            0 => None,
            secs => Some(Duration::from_secs(u64::from(secs))),
        };
        let client = Arc::new(Client::new(
            self.last_client_id.fetch_add(1, Ordering::Relaxed) + 1,
            stream.peer_addr().ok(),
            stream.local_addr().ok(),
        ));
        let _registered = self.clients.register(Arc::clone(&client));
        let (reader, mut writer) = stream.into_split();
        let mut session = Session {
            authenticated: self.config.password.is_none(),
            client,
            multi: None,
            protocol: Protocol::Resp2,
            watched: Vec::new(),
            watched_bytes: 0,
            subscriber: None,
        };
        let result = self
            .serve_connection(&mut session, reader, &mut writer, idle_timeout)
            .await;
        if let Some(subscriber) = &session.subscriber {
            self.hub.forget(session.client.id, subscriber);
        }
        match result {
            Ok(Flow::Close) => writer.shutdown().await,
            Ok(Flow::Continue) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Serves one connection's requests until it closes: `Flow::Close` when this side
    /// should shut the socket down, `Flow::Continue` when the client went away.
    async fn serve_connection(
        &self,
        session: &mut Session,
        mut reader: tokio::net::tcp::OwnedReadHalf,
        writer: &mut tokio::net::tcp::OwnedWriteHalf,
        idle_timeout: Option<Duration>,
    ) -> std::io::Result<Flow> {
        let limits = self.config.frame_limits();
        let batch_max = self.config.server.pipeline_batch_max as usize;
        let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK_BYTES);
        let mut out: Vec<u8> = Vec::new();
        loop {
            // Answer every complete request already buffered (pipelining), then write once.
            // Consecutive writes are proposed together, in order; consecutive reads share
            // one read fence. At most one of the two runs is pending at a time, and each
            // is flushed before a request of another kind, so every reply keeps its place
            // and a read sees exactly the writes sent before it.
            let mut start = 0;
            let mut flow = Flow::Continue;
            let mut writes: Vec<(Command, Answer)> = Vec::new();
            let mut reads: Vec<(ReadKind, Vec<Vec<u8>>)> = Vec::new();
            let mut processed: u64 = 0;
            while flow == Flow::Continue {
                let request = match resp::next_request(&buf[start..], limits) {
                    Ok(Some(request)) => request,
                    Ok(None) => break,
                    Err(e) => {
                        let protocol = session.protocol;
                        self.flush_pending(&mut writes, &mut reads, &mut out, writer, protocol)
                            .await?;
                        resp::encode_frame(&mut out, &error(format!("ERR {e}")));
                        flow = Flow::Close;
                        break;
                    }
                };
                start += request.consumed;
                if request.args.is_empty() {
                    continue;
                }
                processed += 1;
                if out.len() >= OUT_FLUSH_BYTES {
                    // Large replies go out before more are made: memory stays bounded
                    // even when a pipeline asks for the same large value many times.
                    writer.write_all(&out).await?;
                    out.clear();
                }
                // Replies still pending answer requests made before this one.
                let protocol = session.protocol;
                let step = self.classify(session, request.args);
                if !matches!(step, Step::Write(..) | Step::Read(..)) {
                    // Every other step answers at once, after what is pending.
                    self.flush_pending(&mut writes, &mut reads, &mut out, writer, protocol)
                        .await?;
                }
                match step {
                    Step::Write(command, answer) => {
                        self.flush_reads(&mut reads, &mut out, writer, protocol)
                            .await?;
                        writes.push((command, answer));
                        if writes.len() >= batch_max {
                            self.flush_writes(&mut writes, &mut out, protocol).await;
                        }
                    }
                    Step::Read(kind, args) => {
                        self.flush_writes(&mut writes, &mut out, protocol).await;
                        reads.push((kind, args));
                        if reads.len() >= batch_max {
                            self.flush_reads(&mut reads, &mut out, writer, protocol)
                                .await?;
                        }
                    }
                    Step::Reply(frame, next) => {
                        resp::encode_reply(&mut out, &frame, session.protocol);
                        flow = next;
                    }
                    Step::Shutdown => {
                        // As in Redis, a shutdown is answered by the connection closing.
                        self.shutdown.notify_one();
                        flow = Flow::Close;
                    }
                    Step::Cluster(args) => {
                        resp::encode_reply(&mut out, &self.cluster(&args).await, protocol);
                    }
                    Step::Watch(keys) => {
                        let frame = self.watch(session, keys).await;
                        resp::encode_reply(&mut out, &frame, protocol);
                    }
                    Step::Map(pairs) => {
                        // In the protocol it chose.
                        resp::encode_map(&mut out, &pairs, session.protocol);
                    }
                    Step::Replies(replies) => {
                        for reply in &replies {
                            resp::encode_tree(&mut out, reply, protocol);
                        }
                    }
                    Step::Block(blocked) => {
                        // What came before is answered before this waits.
                        if !out.is_empty() {
                            writer.write_all(&out).await?;
                            out.clear();
                        }
                        match self.block(session, blocked, &mut reader, &mut buf).await? {
                            Some(reply) => resp::encode_tree(&mut out, &reply, protocol),
                            // Gone, or killed, while it waited.
                            None => return Ok(Flow::Close),
                        }
                    }
                }
            }
            self.commands_processed
                .fetch_add(processed, Ordering::Relaxed);
            let protocol = session.protocol;
            self.flush_pending(&mut writes, &mut reads, &mut out, writer, protocol)
                .await?;
            buf.drain(..start);
            if !out.is_empty() {
                writer.write_all(&out).await?;
                out.clear();
            }
            if flow == Flow::Close {
                return Ok(Flow::Close);
            }
            debug_assert!(buf.len() < limits.request_bytes_max.max(resp::INLINE_BYTES_MAX));
            // Reads into spare capacity: no zeroing of the read chunk per request.
            buf.reserve(READ_CHUNK_BYTES);
            // A subscriber waits for messages, not requests: no idle timeout, as in Redis.
            let subscribed = session.subscriber.as_ref().is_some_and(|s| s.count() > 0);
            let idle_for = if subscribed { None } else { idle_timeout };
            let n = tokio::select! {
                read = reader.read_buf(&mut buf) => read?,
                delivery = next_delivery(&mut session.subscriber) => {
                    let protocol = session.protocol;
                    if let (Some(delivery), Some(subscriber)) = (delivery, &mut session.subscriber) {
                        resp::encode_tree(&mut out, &delivery.reply(), protocol);
                        // What else arrived meanwhile goes out in the same write.
                        while out.len() < OUT_FLUSH_BYTES
                            && let Some(more) = subscriber.try_next()
                        {
                            resp::encode_tree(&mut out, &more.reply(), protocol);
                        }
                    }
                    continue;
                }
                () = session.client.killed() => return Ok(Flow::Close),
                () = idle(idle_for) => return Ok(Flow::Close),
            };
            if n == 0 {
                return Ok(Flow::Continue);
            }
            session.client.heard();
        }
    }

    /// `PUBSUB CHANNELS [pattern] | NUMSUB [channel ...] | NUMPAT`, about this node's
    /// subscribers (`NUMSUB` is a flat array of channels and counts in both protocols,
    /// as in Redis 7.0).
    fn pubsub(&self, args: &[Vec<u8>]) -> Result<OwnedFrame, OwnedFrame> {
        let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
        let count = |n: usize| OwnedFrame::Integer(i64::try_from(n).unwrap_or(i64::MAX));
        match (sub.as_str(), args.len()) {
            ("channels", 2 | 3) => {
                let channels = self.hub.channels(args.get(2).map(Vec::as_slice));
                Ok(OwnedFrame::Array(channels.into_iter().map(bulk).collect()))
            }
            ("numsub", _) => Ok(OwnedFrame::Array(
                args[2..]
                    .iter()
                    .flat_map(|c| [bulk(c.clone()), count(self.hub.subscribers(c))])
                    .collect(),
            )),
            ("numpat", 2) => Ok(count(self.hub.patterns())),
            ("channels" | "numpat", _) => Err(error(format!(
                "ERR wrong number of arguments for 'pubsub|{sub}' command"
            ))),
            _ => Err(error(format!(
                "ERR unknown subcommand '{}'. Try PUBSUB HELP.",
                String::from_utf8_lossy(&args[1])
            ))),
        }
    }

    /// Runs a blocking pop: pops at once if a key holds something, else waits for the
    /// store to change and looks again, until the timeout (the reply is then a null).
    /// Bytes the client sends meanwhile are kept in `buf` for later, up to a request's
    /// worth. `None` if the client went away or was killed while it waited.
    async fn block(
        &self,
        session: &Session,
        mut blocked: blocking::Blocking,
        reader: &mut (impl AsyncReadExt + Unpin),
        buf: &mut Vec<u8>,
    ) -> std::io::Result<Option<Reply>> {
        /// Counts a client as blocked for as long as it lives.
        struct Counted<'a>(&'a AtomicU64);
        impl Drop for Counted<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.blocked.fetch_add(1, Ordering::Relaxed);
        let _counted = Counted(&self.blocked);
        let deadline = blocked.timeout.map(|t| tokio::time::Instant::now() + t);
        let buffered_max = self.config.frame_limits().request_bytes_max;
        let mut fenced = self.config.server.read_consistency != ReadConsistency::Linearizable;
        // Watched before the first look: a value given to a key after it wakes the wait.
        let watch = self.store.watch_keys(&blocked.keys);
        let group = match &blocked.pop {
            blocking::Pop::Group {
                command: Command::XReadGroup { group, .. },
                ..
            } => Some(group.clone()),
            _ => None,
        };
        let mut looked = false;
        loop {
            if !fenced {
                if let Err(e) = self.replicator.read_barrier().await {
                    return Ok(Some(Reply::Frame(replica_error(&e))));
                }
                fenced = true;
            }
            if let blocking::Pop::Read { from, .. } = &mut blocked.pop
                && let Err(refused) = self.resolve_last(&blocked.keys, from)
            {
                return Ok(Some(Reply::Frame(refused)));
            }
            let looked_now = match &group {
                Some(group) if looked => self.look_in_turn(&blocked, group).await,
                _ => self.look(&blocked).await,
            };
            looked = true;
            match looked_now {
                blocking::Looked::Answer(reply) => return Ok(Some(reply)),
                blocking::Looked::Taken => continue,
                blocking::Looked::Nothing => {}
            }
            let timeout = async {
                match deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = watch.changed() => {}
                () = timeout => return Ok(Some(blocking::timed_out())),
                () = session.client.killed() => return Ok(None),
                read = reader.read_buf(buf), if buf.len() < buffered_max => {
                    if read? == 0 {
                        return Ok(None);
                    }
                    session.client.heard();
                }
            }
        }
    }

    /// A look of a blocked `XREADGROUP` on `group` after its first: it proposes its read
    /// only when the group is behind (other writes to its streams, acknowledgements or
    /// other consumers' reads, give it nothing to ask for), and in its turn among this
    /// node's clients blocked on the same group, which it holds until the read is done,
    /// so that what one took the next does not ask for.
    async fn look_in_turn(&self, blocked: &blocking::Blocking, group: &[u8]) -> blocking::Looked {
        let behind = || {
            blocked.keys.iter().any(|key| {
                self.store
                    .stream_group_behind(key, group, self.clock.now_ms())
                    .unwrap_or(true)
            })
        };
        if !behind() {
            return blocking::Looked::Nothing;
        }
        let turn = self.group_turn(&blocked.keys, group);
        let _held = turn.lock().await;
        if !behind() {
            return blocking::Looked::Nothing;
        }
        self.look(blocked).await
    }

    /// The turn of this node's clients blocked in `XREADGROUP` on `keys` (the first of
    /// them) and `group`.
    fn group_turn(&self, keys: &[Vec<u8>], group: &[u8]) -> Arc<tokio::sync::Mutex<()>> {
        let mut turns = self
            .group_turns
            .lock()
            .expect("no panic while turns change");
        let at = (keys.first().cloned().unwrap_or_default(), group.to_vec());
        if let Some(turn) = turns.get(&at).and_then(std::sync::Weak::upgrade) {
            return turn;
        }
        // Turns no client holds any more go before the map grows.
        if turns.len() >= 64 {
            turns.retain(|_, turn| turn.strong_count() > 0);
        }
        let turn = Arc::new(tokio::sync::Mutex::new(()));
        turns.insert(at, Arc::downgrade(&turn));
        turn
    }

    /// A blocked `XREAD`'s `$`s, read as the last IDs of the streams at `keys` now (0-0
    /// for a key without one); `Err` with the reply if a key holds another kind of value.
    fn resolve_last(&self, keys: &[Vec<u8>], from: &mut [streams::From]) -> Result<(), OwnedFrame> {
        let now_ms = self.clock.now_ms();
        for (key, from) in keys.iter().zip(from) {
            if *from != streams::From::Last {
                continue;
            }
            let last = match self.store.read_stream(key, &StreamRead::LastId, now_ms, 0) {
                Ok(Output::StreamId(last)) => last.unwrap_or(StreamId::MIN),
                Ok(other) => unreachable!("a last-ID read answers an ID, not {other:?}"),
                Err(e) => return Err(store_error(&e)),
            };
            *from = streams::From::After(last);
        }
        Ok(())
    }

    /// One look at a blocked client's keys: the first that holds a value is popped
    /// from, or answers `WRONGTYPE` if it holds another kind. A blocked `XREAD` reads
    /// its streams instead.
    async fn look(&self, blocked: &blocking::Blocking) -> blocking::Looked {
        let now_ms = self.clock.now_ms();
        if let blocking::Pop::Group { command, missing } = &blocked.pop {
            return match self.replicator.propose(command.clone()).await {
                Err(e) => blocking::Looked::Answer(Reply::Frame(replica_error(&e))),
                Ok(Output::Streams(read)) if read.is_empty() => blocking::Looked::Nothing,
                Ok(output) => blocking::Looked::Answer(answer_reply(
                    output,
                    &Answer::NoGroup(missing.clone()),
                )),
            };
        }
        if let blocking::Pop::Read { from, count } = &blocked.pop {
            let after: Vec<(Vec<u8>, StreamId)> = blocked
                .keys
                .iter()
                .zip(from)
                .map(|(key, from)| match from {
                    streams::From::After(id) => (key.clone(), *id),
                    streams::From::Last => unreachable!("resolved before the first look"),
                })
                .collect();
            let bytes_max = self.config.server.reply_bytes_max as usize;
            return match self.store.read_streams(&after, *count, now_ms, bytes_max) {
                Ok(Output::Streams(read)) if read.is_empty() => blocking::Looked::Nothing,
                Ok(output) => blocking::Looked::Answer(answer_reply(output, &Answer::AsIs)),
                Err(e) => blocking::Looked::Answer(Reply::Frame(store_error(&e))),
            };
        }
        let wanted = blocking::kind_popped(&blocked.pop);
        for key in &blocked.keys {
            match self.store.kind(key, now_ms) {
                Err(e) => return blocking::Looked::Answer(Reply::Frame(store_error(&e))),
                Ok(None) => {}
                Ok(Some(kind)) if kind != wanted => {
                    return blocking::Looked::Answer(Reply::Frame(wrong_type()));
                }
                Ok(Some(_)) => {
                    let command = blocking::pop_command(&blocked.pop, key, &blocked.keys);
                    return match self.replicator.propose(command).await {
                        Err(e) => blocking::Looked::Answer(Reply::Frame(replica_error(&e))),
                        Ok(output) => match blocking::answer(&blocked.pop, key, output) {
                            Some(reply) => blocking::Looked::Answer(reply),
                            None => blocking::Looked::Taken,
                        },
                    };
                }
            }
        }
        blocking::Looked::Nothing
    }

    /// Decides what a request needs: an immediate reply, a read, or a write to propose.
    fn classify(&self, session: &mut Session, mut args: Vec<Vec<u8>>) -> Step {
        assert!(!args.is_empty(), "empty requests are skipped by the caller");
        let reply = |frame| Step::Reply(frame, Flow::Continue);
        let Some(place) = command_place(&args[0]) else {
            if !session.authenticated {
                return reply(error("NOAUTH Authentication required."));
            }
            if let Some(queued) = &mut session.multi {
                queued.failed = true;
            }
            return reply(unknown_command(&args));
        };
        session.client.touch(place);
        // The table's spelling: lower case.
        let (name, arity, _) = COMMANDS[place];
        if !session.authenticated && !matches!(name, "auth" | "hello" | "quit") {
            return reply(error("NOAUTH Authentication required."));
        }
        let pairs = matches!(name, "mset" | "msetnx");
        if !arity_ok(arity, args.len()) || (pairs && args.len().is_multiple_of(2)) {
            if let Some(queued) = &mut session.multi {
                queued.failed = true;
            }
            return reply(wrong_arity(name));
        }
        if session.subscriber.as_ref().is_some_and(|s| s.count() > 0)
            && !pubsub::allowed_while_subscribed(name, session.protocol)
        {
            return reply(error(format!(
                "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
            )));
        }
        if session.multi.is_some()
            && !matches!(name, "exec" | "discard" | "multi" | "watch" | "quit")
        {
            return reply(self.queue(session, name, args));
        }
        match name {
            "multi" if session.multi.is_some() => reply(error("ERR MULTI calls can not be nested")),
            "multi" => {
                session.multi = Some(Queued::default());
                reply(ok())
            }
            "discard" => match session.multi.take() {
                Some(_) => {
                    unwatch(session);
                    reply(ok())
                }
                None => reply(error("ERR DISCARD without MULTI")),
            },
            "exec" => {
                let Some(queued) = session.multi.take() else {
                    return reply(error("ERR EXEC without MULTI"));
                };
                // EXEC forgets the watched keys, whatever it does.
                let watched = unwatch(session);
                if queued.failed {
                    return reply(error(
                        "EXECABORT Transaction discarded because of previous errors.",
                    ));
                }
                if queued.ops.is_empty() && watched.is_empty() {
                    // Nothing for the log: every answer is known.
                    let answers = queued.answers.into_iter().map(|answer| match answer {
                        Answer::Fixed(frame) => frame,
                        _ => unreachable!("an answer without an op is fixed"),
                    });
                    return reply(OwnedFrame::Array(answers.collect()));
                }
                Step::Write(
                    Command::Transaction {
                        ops: queued.ops,
                        read_bytes_max: u64::from(self.config.server.reply_bytes_max),
                        watched,
                    },
                    Answer::Each(queued.answers),
                )
            }
            "watch" if session.multi.is_some() => {
                reply(error("ERR WATCH inside MULTI is not allowed"))
            }
            "watch" => Step::Watch(args.split_off(1)),
            "unwatch" => {
                unwatch(session);
                reply(ok())
            }
            "quit" => Step::Reply(ok(), Flow::Close),
            "auth" => reply(self.auth(session, &args)),
            "hello" => match self.hello(session, &args) {
                Ok(pairs) => Step::Map(pairs),
                Err(refused) => reply(refused),
            },
            "client" => reply(client(session, &self.clients, &args)),
            "select" => reply(parse_db(&args[1]).map_or_else(|refused| refused, |()| ok())),
            // A RESP2 subscriber's PING is answered as a message is.
            "ping"
                if args.len() <= 2
                    && session.protocol == Protocol::Resp2
                    && session.subscriber.as_ref().is_some_and(|s| s.count() > 0) =>
            {
                let said = args.get(1).cloned().unwrap_or_default();
                reply(OwnedFrame::Array(vec![bulk(b"pong".to_vec()), bulk(said)]))
            }
            "ping" => reply(match args.len() {
                1 => OwnedFrame::SimpleString(b"PONG".to_vec()),
                2 => bulk(args[1].clone()),
                _ => wrong_arity(name),
            }),
            "subscribe" | "psubscribe" | "unsubscribe" | "punsubscribe" => {
                let client = Arc::clone(&session.client);
                let subscriber = session
                    .subscriber
                    .get_or_insert_with(pubsub::Subscriber::new);
                let pattern = name.starts_with('p');
                Step::Replies(if name.ends_with("unsubscribe") {
                    subscriber.unsubscribe(&self.hub, &client, &args[1..], pattern)
                } else {
                    subscriber.subscribe(&self.hub, &client, &args[1..], pattern)
                })
            }
            "pubsub" => reply(self.pubsub(&args).unwrap_or_else(|refused| refused)),
            "echo" => reply(bulk(args[1].clone())),
            "time" => reply(time_reply(self.clock.now_ms())),
            "shutdown" => match parse_shutdown(&args) {
                Ok(()) => Step::Shutdown,
                Err(refused) => reply(refused),
            },
            "config" => match self.config_command(&args) {
                Ok(pairs) => Step::Map(pairs),
                Err(refused) => reply(refused),
            },
            "command" => reply(command_reply(&args)),
            "info" => reply(self.info(&args)),
            "cluster" => Step::Cluster(args),
            "get" => Step::Read(ReadKind::Get, args),
            "mget" => Step::Read(ReadKind::MGet, args),
            // No key has an access time to update: TOUCH counts like EXISTS.
            "exists" | "touch" => Step::Read(ReadKind::Exists, args),
            "getrange" | "substr" => match parse_range(&args) {
                Ok((start, end)) => Step::Read(ReadKind::GetRange { start, end }, args),
                Err(refused) => reply(refused),
            },
            "getbit" | "bitcount" | "bitpos" => match self.parsing().parse_bit_read(name, &args) {
                Ok(read) => Step::Read(ReadKind::Bits(read), args),
                Err(refused) => reply(refused),
            },
            "memory" => match parse_memory(&args) {
                Ok(()) => Step::Read(ReadKind::MemoryUsage, args),
                Err(refused) => reply(refused),
            },
            "ttl" => Step::Read(ReadKind::Ttl(TimeUnit::Seconds), args),
            "pttl" => Step::Read(ReadKind::Ttl(TimeUnit::Milliseconds), args),
            "expiretime" => Step::Read(ReadKind::ExpireTime(TimeUnit::Seconds), args),
            "pexpiretime" => Step::Read(ReadKind::ExpireTime(TimeUnit::Milliseconds), args),
            "type" => Step::Read(ReadKind::Type, args),
            "strlen" => Step::Read(ReadKind::Strlen, args),
            "dbsize" => Step::Read(ReadKind::DbSize, args),
            "keys" => Step::Read(ReadKind::Keys, args),
            "hget" | "hmget" | "hlen" | "hgetall" | "hkeys" | "hvals" | "hexists" | "hstrlen" => {
                Step::Read(ReadKind::Hash(hash_read(name, &args)), args)
            }
            "hscan" | "sscan" | "zscan" => match parse_collection_scan(name, &args) {
                Ok(request) => Step::Read(ReadKind::CollectionScan(request), args),
                Err(refused) => reply(refused),
            },
            "sismember" | "smismember" | "smembers" | "scard" => {
                Step::Read(ReadKind::Set(set_read(name, &args)), args)
            }
            "sinter" | "sunion" | "sdiff" => Step::Read(ReadKind::SetCombine(set_op(name)), args),
            "llen" | "lrange" | "lindex" | "lpos" => match parse_list_read(name, &args) {
                Ok(read) => Step::Read(ReadKind::List(read), args),
                Err(refused) => reply(refused),
            },
            "sintercard" => match parse_sintercard(&args) {
                Ok((keys, limit)) => Step::Read(ReadKind::SetInterCard { keys, limit }, args),
                Err(refused) => reply(refused),
            },
            "srandmember" | "hrandfield" | "zrandmember" => match parse_random_pick(name, &args) {
                Ok(pick) => Step::Read(ReadKind::Random(pick), args),
                Err(refused) => reply(refused),
            },
            "zcard" | "zscore" | "zmscore" | "zrank" | "zrevrank" | "zcount" | "zlexcount"
            | "zrange" | "zrevrange" | "zrangebyscore" | "zrevrangebyscore" | "zrangebylex"
            | "zrevrangebylex" => match sorted::parse_zread(name, &args) {
                Ok((read, answer)) => Step::Read(ReadKind::ZSet(read, answer), args),
                Err(refused) => reply(refused),
            },
            "zunion" | "zinter" | "zdiff" | "zintercard" => {
                match sorted::parse_combination(name, &args) {
                    Ok(asked) => {
                        Step::Read(ReadKind::ZSets(asked.read(name == "zintercard")), args)
                    }
                    Err(refused) => reply(refused),
                }
            }
            "pfcount" => Step::Read(ReadKind::PfCount, args),
            "eval" | "eval_ro" => match parse_eval(name, args) {
                Ok(command) => {
                    if let Command::Eval { script, .. } = &command {
                        lock(&self.scripts).add(script);
                    }
                    Step::Write(command, Answer::AsIs)
                }
                Err(refused) => reply(refused),
            },
            "evalsha" | "evalsha_ro" => match self.parse_evalsha(name, args) {
                Ok(command) => Step::Write(command, Answer::AsIs),
                Err(refused) => reply(refused),
            },
            "script" => reply(self.script_command(&args)),
            _ if geo::READS.contains(&name) => match geo::geo_step(name, &args) {
                geo::GeoStep::Read(key, read, answer) => {
                    Step::Read(ReadKind::ZSet(read, answer), vec![args[0].clone(), key])
                }
                geo::GeoStep::Write(command) => Step::Write(command, Answer::AsIs),
                geo::GeoStep::Refused(refused) => reply(refused),
            },
            "xlen" | "xrange" | "xrevrange" => match streams::parse_read(name, &args) {
                Ok(read) => Step::Read(ReadKind::Stream(read), args),
                Err(refused) => reply(refused),
            },
            "xpending" => match streams::parse_xpending(&args) {
                Ok((read, missing)) => Step::Read(ReadKind::Pending(read, missing), args),
                Err(refused) => reply(refused),
            },
            "xclaim" => match streams::parse_xclaim(&args) {
                streams::XClaim {
                    missing,
                    refused: Some(refused),
                    ..
                } => Step::Read(
                    ReadKind::GroupCheck {
                        keys: vec![args[1].clone()],
                        group: args[2].clone(),
                        missing: vec![missing],
                        refused,
                    },
                    args,
                ),
                claim => Step::Write(claim.command, Answer::NoGroup(vec![claim.missing])),
            },
            "xreadgroup" => match streams::parse_xreadgroup(&args) {
                Ok(streams::XReadGroup {
                    command: Command::XReadGroup { group, reads, .. },
                    missing,
                    refused: Some(refused),
                    ..
                }) => Step::Read(
                    ReadKind::GroupCheck {
                        keys: reads.into_iter().map(|r| r.key).collect(),
                        group,
                        missing,
                        refused,
                    },
                    args,
                ),
                Ok(streams::XReadGroup {
                    command,
                    block: Some(timeout),
                    missing,
                    ..
                }) => Step::Block(blocking::Blocking::read_group(command, missing, timeout)),
                Ok(read) => Step::Write(read.command, Answer::NoGroup(read.missing)),
                Err(refused) => reply(refused),
            },
            "xread" => match streams::parse_xread(&args) {
                Ok(read) => match read.block {
                    Some(timeout) if read.refused.is_none() => {
                        Step::Block(blocking::Blocking::read(read, timeout))
                    }
                    _ => Step::Read(ReadKind::XRead(read.now(), read.count, read.refused), args),
                },
                Err(refused) => reply(refused),
            },
            "blpop" | "brpop" | "blmove" | "brpoplpush" | "bzpopmin" | "bzpopmax" | "blmpop"
            | "bzmpop" => match blocking::parse(name, &args) {
                Ok(blocked) => Step::Block(blocked),
                Err(refused) => reply(refused),
            },
            // One database: FLUSHDB is FLUSHALL. Either way it is one log entry, so
            // `ASYNC` and `SYNC` differ in nothing.
            "flushall" | "flushdb" => match args.get(1).map(|a| a.to_ascii_uppercase()) {
                _ if args.len() > 2 => reply(syntax_error()),
                None => Step::Write(Command::FlushAll, Answer::AsIs),
                Some(option) if option == b"ASYNC" || option == b"SYNC" => {
                    Step::Write(Command::FlushAll, Answer::AsIs)
                }
                Some(_) => reply(syntax_error()),
            },
            "scan" => match parse_scan(&args) {
                Ok(request) => Step::Read(ReadKind::Scan(request), args),
                Err(refused) => reply(refused),
            },
            // Without an option GETEX changes nothing: a read.
            "getex" if args.len() == 2 => Step::Read(ReadKind::Get, args),
            _ => match self.parsing().write_command(name, args) {
                Ok((command, answer)) => Step::Write(command, answer),
                Err(frame) => reply(frame),
            },
        }
    }

    /// `WATCH`: after the read fence, notes what each key holds, so that the next
    /// `EXEC` runs only if they all still hold the same.
    async fn watch(&self, session: &mut Session, keys: Vec<Vec<u8>>) -> OwnedFrame {
        if self.config.server.read_consistency == ReadConsistency::Linearizable
            && let Err(e) = self.replicator.read_barrier().await
        {
            return replica_error(&e);
        }
        let now_ms = self.clock.now_ms();
        let bytes_max = self.config.server.request_bytes_max as usize;
        let mut watched = Vec::with_capacity(keys.len());
        let mut bytes = session.watched_bytes;
        for key in keys {
            let held = match self.store.live_record(&key, now_ms) {
                Ok(held) => held,
                Err(e) => return store_error(&e),
            };
            bytes = bytes.saturating_add(
                key.len() + held.as_ref().map_or(0, |h| h.value.len()) + TX_OP_OVERHEAD_BYTES,
            );
            if bytes > bytes_max {
                return error(format!(
                    "ERR watched keys too large: their values take more than {bytes_max} bytes"
                ));
            }
            watched.push(Watched { key, held });
        }
        session.watched.extend(watched);
        session.watched_bytes = bytes;
        ok()
    }

    /// Queues a command of the transaction `MULTI` began: `QUEUED`, or the error that
    /// makes `EXEC` discard it.
    fn queue(&self, session: &mut Session, name: &str, args: Vec<Vec<u8>>) -> OwnedFrame {
        let queued = session.multi.as_mut().expect("queued only inside MULTI");
        if queued.failed {
            // Already discarded: keep nothing more.
            return OwnedFrame::SimpleString(b"QUEUED".to_vec());
        }
        queued.bytes = queued
            .bytes
            .saturating_add(args.iter().map(|a| a.len() + TX_OP_OVERHEAD_BYTES).sum());
        let bytes_max = self.config.server.request_bytes_max as usize;
        // What the watched keys held travels in the same log entry.
        if queued.bytes.saturating_add(session.watched_bytes) > bytes_max {
            queued.failed = true;
            queued.ops = Vec::new();
            queued.answers = Vec::new();
            return error(format!(
                "ERR transaction too large: its commands take more than {bytes_max} bytes"
            ));
        }
        let queueing = match name {
            // The script is this node's to find, so a transaction holds it found.
            "evalsha" | "evalsha_ro" => Some(match self.parse_evalsha(name, args) {
                Ok(command) => Queueing::Op(TxOp::Write(command), Answer::AsIs),
                Err(refused) => Queueing::Answered(refused),
            }),
            _ => self.parsing().queueing(name, args),
        };
        let Some(queueing) = queueing else {
            queued.failed = true;
            return error(format!(
                "ERR '{name}' is not allowed inside a transaction; data commands only"
            ));
        };
        let (op, answer) = match queueing {
            Queueing::Op(op, answer) => (op, answer),
            // As in Redis, a command with bad arguments is queued; its error is its
            // answer at EXEC, and the others run.
            Queueing::Answered(frame) => {
                queued.answers.push(Answer::Fixed(frame));
                return OwnedFrame::SimpleString(b"QUEUED".to_vec());
            }
        };
        queued.ops.push(op);
        queued.answers.push(answer);
        OwnedFrame::SimpleString(b"QUEUED".to_vec())
    }

    /// Answers the pending run, writes or reads (at most one of them is pending), in
    /// `protocol`.
    async fn flush_pending(
        &self,
        writes: &mut Vec<(Command, Answer)>,
        reads: &mut Vec<(ReadKind, Vec<Vec<u8>>)>,
        out: &mut Vec<u8>,
        writer: &mut (impl AsyncWriteExt + Unpin),
        protocol: Protocol,
    ) -> std::io::Result<()> {
        self.flush_writes(writes, out, protocol).await;
        self.flush_reads(reads, out, writer, protocol).await
    }

    /// Proposes the queued writes as one batch and appends their replies in order.
    async fn flush_writes(
        &self,
        writes: &mut Vec<(Command, Answer)>,
        out: &mut Vec<u8>,
        protocol: Protocol,
    ) {
        if writes.is_empty() {
            return;
        }
        let count = writes.len();
        let (commands, answers): (Vec<Command>, Vec<Answer>) = writes.drain(..).unzip();
        let results = self.replicator.propose_batch(commands).await;
        assert_eq!(results.len(), count, "one result per proposed command");
        for (result, answer) in results.into_iter().zip(answers) {
            let reply = match result {
                Ok(output) => answer_reply(output, &answer),
                Err(e) => Reply::Frame(replica_error(&e)),
            };
            resp::encode_tree(out, &reply, protocol);
        }
    }

    /// `CLUSTER MEMBERS | MEET id ip:port [LOCAL] | ADDLEARNER id | PROMOTE id |
    /// REMOVE id | TRANSFER id`. A follower forwards changes to the leader. MEET teaches
    /// every member the address through the log, or with LOCAL only this node, at once.
    async fn cluster(&self, args: &[Vec<u8>]) -> OwnedFrame {
        let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
        let wanted = match sub.as_str() {
            "members" => 2,
            "meet" if args.len() == 5 => 5,
            "meet" => 4,
            "addlearner" | "promote" | "remove" | "transfer" => 3,
            _ => {
                return error(format!(
                    "ERR unknown subcommand '{}'. Try MEMBERS, MEET, ADDLEARNER, PROMOTE, REMOVE or TRANSFER.",
                    String::from_utf8_lossy(&args[1])
                ));
            }
        };
        if args.len() != wanted {
            return wrong_arity(&format!("cluster|{sub}"));
        }
        if sub == "members" {
            return match self.replicator.members() {
                Ok(members) => members_reply(&members),
                Err(e) => replica_error(&e),
            };
        }
        let Some(id) = parse_integer(&args[2])
            .and_then(|id| u64::try_from(id).ok())
            .filter(|&id| id > 0)
        else {
            return error("ERR node id must be a positive integer");
        };
        if sub == "meet" {
            let Some(address) = std::str::from_utf8(&args[3])
                .ok()
                .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
            else {
                return error("ERR address must be ip:port");
            };
            let scope = match args.get(4) {
                None => MeetScope::Everyone,
                Some(flag) if flag.eq_ignore_ascii_case(b"local") => MeetScope::Local,
                Some(_) => return syntax_error(),
            };
            return match self.replicator.meet(id, address, scope).await {
                Ok(()) => ok(),
                Err(e) => replica_error(&e),
            };
        }
        let change = match sub.as_str() {
            "addlearner" => MembershipChange::AddLearner(id),
            "promote" => MembershipChange::Promote(id),
            "remove" => MembershipChange::Remove(id),
            _ => MembershipChange::Transfer(id),
        };
        match self.replicator.change_membership(change).await {
            Ok(members) => members_reply(&members),
            Err(e) => replica_error(&e),
        }
    }

    fn auth(&self, session: &mut Session, args: &[Vec<u8>]) -> OwnedFrame {
        let (user, given) = match args {
            [_, given] => (None, given),
            [_, user, given] => (Some(user.as_slice()), given),
            _ => return syntax_error(),
        };
        self.authenticate(session, user, given)
    }

    /// Checks `user` (the default one if `None`) and password `given` as `AUTH` does,
    /// and marks the session authenticated if they pass: `OK`, or the error to answer.
    fn authenticate(&self, session: &mut Session, user: Option<&[u8]>, given: &[u8]) -> OwnedFrame {
        let Some(password) = &self.config.password else {
            // As Redis without a password: the default user takes any password.
            return match user {
                None => error(
                    "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
                ),
                Some(b"default") => ok(),
                Some(_) => error("WRONGPASS invalid username-password pair or user is disabled."),
            };
        };
        let user = user.unwrap_or(b"default");
        if user == b"default" && constant_time_eq(given, password.as_bytes()) {
            session.authenticated = true;
            ok()
        } else {
            error("WRONGPASS invalid username-password pair or user is disabled.")
        }
    }

    /// `HELLO [protover [AUTH user password] [SETNAME name]]`: authenticates and names
    /// the connection if asked, switches it to RESP2 or RESP3, and answers with the
    /// server's description (a map).
    fn hello(
        &self,
        session: &mut Session,
        args: &[Vec<u8>],
    ) -> Result<Vec<(OwnedFrame, OwnedFrame)>, OwnedFrame> {
        let protocol = match args.get(1).map(|version| parse_integer(version)) {
            None => session.protocol,
            Some(Some(2)) => Protocol::Resp2,
            Some(Some(3)) => Protocol::Resp3,
            Some(Some(_)) => return Err(error("NOPROTO unsupported protocol version")),
            Some(None) => {
                return Err(error(
                    "ERR Protocol version is not an integer or out of range",
                ));
            }
        };
        let mut auth = None;
        let mut name = None;
        let mut i = 2;
        while i < args.len() {
            let option = args[i].to_ascii_uppercase();
            match option.as_slice() {
                b"AUTH" if i + 2 < args.len() => {
                    auth = Some((&args[i + 1], &args[i + 2]));
                    i += 3;
                }
                b"SETNAME" if i + 1 < args.len() => {
                    name = Some(&args[i + 1]);
                    i += 2;
                }
                _ => {
                    return Err(error(format!(
                        "ERR Syntax error in HELLO option '{}'",
                        String::from_utf8_lossy(&args[i])
                    )));
                }
            }
        }
        if let Some((user, given)) = auth {
            let answer = self.authenticate(session, Some(user), given);
            if answer != ok() {
                return Err(answer);
            }
        }
        if !session.authenticated {
            return Err(error(
                "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
            ));
        }
        if let Some(name) = name {
            set_client_name(session, name)?;
        }
        session.protocol = protocol;
        session.client.set_resp3(protocol == Protocol::Resp3);
        let field = |text: &str| bulk(text.as_bytes().to_vec());
        let proto = match protocol {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        };
        Ok(vec![
            (field("server"), field("aegis")),
            (field("version"), field(REDIS_VERSION_FOLLOWED)),
            (field("proto"), OwnedFrame::Integer(proto)),
            (
                field("id"),
                OwnedFrame::Integer(i64::try_from(session.client.id).unwrap_or(i64::MAX)),
            ),
            // Every node takes every command, as one Redis server does.
            (field("mode"), field("standalone")),
            (field("role"), field("master")),
            (field("modules"), OwnedFrame::Array(Vec::new())),
        ])
    }

    /// Answers the queued reads after one read fence taken now: every read in the run
    /// arrived before the fence began, so the fence covers each of them.
    ///
    /// Replies are written out whenever `OUT_FLUSH_BYTES` have built up, so a run of
    /// reads of a large value holds one reply's worth of memory, not the whole run's.
    async fn flush_reads(
        &self,
        reads: &mut Vec<(ReadKind, Vec<Vec<u8>>)>,
        out: &mut Vec<u8>,
        writer: &mut (impl AsyncWriteExt + Unpin),
        protocol: Protocol,
    ) -> std::io::Result<()> {
        if reads.is_empty() {
            return Ok(());
        }
        if self.config.server.read_consistency == ReadConsistency::Linearizable
            && let Err(e) = self.replicator.read_barrier().await
        {
            let frame = replica_error(&e);
            for _ in reads.drain(..) {
                resp::encode_reply(out, &frame, protocol);
            }
            return Ok(());
        }
        for (kind, args) in reads.drain(..) {
            if out.len() >= OUT_FLUSH_BYTES {
                writer.write_all(out).await?;
                out.clear();
            }
            resp::encode_tree(out, &self.read_reply(kind, &args), protocol);
        }
        Ok(())
    }

    /// Serves a read from the local state machine, maps and sets among them; the caller
    /// took the read fence.
    fn read_reply(&self, kind: ReadKind, args: &[Vec<u8>]) -> Reply {
        let now_ms = self.clock.now_ms();
        let bytes_max = self.config.server.reply_bytes_max as usize;
        let store = &self.store;
        let result = match kind {
            ReadKind::Hash(read) => store
                .read_hash(&args[1], &read, now_ms, bytes_max)
                .map(|output| answer_reply(output, &hash_shape(&read))),
            ReadKind::Set(read) => store
                .read_set(&args[1], &read, now_ms, bytes_max)
                .map(|output| answer_reply(output, &set_shape(&read))),
            ReadKind::SetCombine(op) => store
                .read_sets(op, &args[1..], None, now_ms, bytes_max)
                .map(|output| answer_reply(output, &Answer::Set)),
            ReadKind::SetInterCard { keys, limit } => store
                .read_sets(
                    SetOp::Inter,
                    &args[2..2 + keys],
                    Some(limit),
                    now_ms,
                    bytes_max,
                )
                .map(|output| Reply::Frame(output_reply(output))),
            ReadKind::CollectionScan(request) => {
                let output = read_whole(
                    store,
                    &args[1],
                    request.zset,
                    request.pairs,
                    now_ms,
                    bytes_max,
                );
                output.map(|output| answer_reply(output, &Answer::Scan(request)))
            }
            ReadKind::List(read) => store
                .read_list(&args[1], &read, now_ms, bytes_max)
                .map(|output| Reply::Frame(output_reply(output))),
            ReadKind::ZSet(read, answer) => store
                .read_zset(&args[1], &read, now_ms, bytes_max)
                .map(|output| answer_reply(output, &answer)),
            ReadKind::ZSets(TxRead::ZCombine {
                op,
                keys,
                weights,
                aggregate,
                with_scores,
            }) => store
                .read_zsets(
                    op,
                    &keys,
                    &weights,
                    aggregate,
                    with_scores,
                    None,
                    now_ms,
                    bytes_max,
                )
                .map(|output| answer_reply(output, &Answer::AsIs)),
            ReadKind::ZSets(TxRead::ZInterCard { keys, limit }) => store
                .read_zsets(
                    SetOp::Inter,
                    &keys,
                    &[],
                    Aggregate::Sum,
                    false,
                    Some(limit),
                    now_ms,
                    bytes_max,
                )
                .map(|output| answer_reply(output, &Answer::AsIs)),
            ReadKind::Random(pick) => {
                let output = read_whole(store, &args[1], pick.zset, pick.hash, now_ms, bytes_max);
                output.map(|output| answer_reply(output, &Answer::Random(pick, bytes_max)))
            }
            ReadKind::Stream(read) => store
                .read_stream(&args[1], &read, now_ms, bytes_max)
                .map(|output| answer_reply(output, &Answer::AsIs)),
            ReadKind::GroupCheck {
                keys,
                group,
                missing,
                refused,
            } => {
                let mut answer = Ok(Reply::Frame(refused));
                for (key, missing) in keys.iter().zip(missing) {
                    match store.stream_has_group(key, &group, now_ms) {
                        Ok(true) => {}
                        Ok(false) => {
                            answer = Ok(Reply::Frame(error(missing)));
                            break;
                        }
                        Err(e) => {
                            answer = Err(e);
                            break;
                        }
                    }
                }
                answer
            }
            ReadKind::Pending(read, missing) => store
                .read_stream(&args[1], &read, now_ms, bytes_max)
                .map(|output| answer_reply(output, &Answer::NoGroup(vec![missing]))),
            ReadKind::XRead(after, count, refused) => store
                .read_streams(&after, count, now_ms, bytes_max)
                .map(|output| match refused {
                    Some(refused) => Reply::Frame(refused),
                    None => answer_reply(output, &Answer::AsIs),
                }),
            kind => return Reply::Frame(self.read_fenced(kind, args)),
        };
        result.unwrap_or_else(|e| Reply::Frame(store_error(&e)))
    }

    /// Serves a read from the local state machine; the caller took the read fence.
    fn read_fenced(&self, kind: ReadKind, args: &[Vec<u8>]) -> OwnedFrame {
        let keys = &args[1..];
        let now_ms = self.clock.now_ms();
        let bytes_max = self.config.server.reply_bytes_max as usize;
        let result = match kind {
            ReadKind::Get => self
                .store
                .get_bounded(&keys[0], now_ms, bytes_max)
                .map(|value| value.map_or(OwnedFrame::Null, bulk)),
            ReadKind::MGet => self
                .store
                .mget_bounded(keys, now_ms, bytes_max)
                .map(|values| {
                    OwnedFrame::Array(
                        values
                            .into_iter()
                            .map(|v| v.map_or(OwnedFrame::Null, bulk))
                            .collect(),
                    )
                }),
            ReadKind::Exists => self.store.exists(keys, now_ms).map(|n| {
                OwnedFrame::Integer(i64::try_from(n).expect("a count of request keys fits"))
            }),
            ReadKind::Ttl(unit) => self
                .store
                .key_expiry(&keys[0], now_ms)
                .map(|expiry| expiry_reply(expiry, unit, |at| at.saturating_sub(now_ms))),
            ReadKind::ExpireTime(unit) => self
                .store
                .key_expiry(&keys[0], now_ms)
                .map(|expiry| expiry_reply(expiry, unit, |at| at)),
            ReadKind::PfCount => self.store.pf_count(keys, now_ms).map(output_reply),
            ReadKind::Strlen => self
                .store
                .get_bounded(&keys[0], now_ms, bytes_max)
                .map(|value| {
                    let len = value.map_or(0, |value| value.len());
                    OwnedFrame::Integer(i64::try_from(len).unwrap_or(i64::MAX))
                }),
            ReadKind::GetRange { start, end } => self
                .store
                .get_bounded(&keys[0], now_ms, bytes_max)
                .map(|value| {
                    let value = value.unwrap_or_default();
                    bulk(value[byte_range(value.len(), start, end)].to_vec())
                }),
            ReadKind::Bits(read) => {
                self.store
                    .get_bounded(&keys[0], now_ms, bytes_max)
                    .map(|value| match (value, read.query) {
                        (None, _) => OwnedFrame::Integer(read.if_missing),
                        (Some(value), Ok(query)) => {
                            OwnedFrame::Integer(bits::answer(Some(&value), &query))
                        }
                        (Some(_), Err(refused)) => refused,
                    })
            }
            // The bytes the record takes in the store: key, value, expiry and kind.
            ReadKind::MemoryUsage => self.store.live_record(&args[2], now_ms).map(|held| {
                held.map_or(OwnedFrame::Null, |held| {
                    let bytes = args[2].len() + held.value.len() + 9;
                    OwnedFrame::Integer(i64::try_from(bytes).unwrap_or(i64::MAX))
                })
            }),
            ReadKind::Keys => self.keys(&args[1], now_ms, bytes_max),
            ReadKind::Scan(request) => self.scan(request, now_ms),
            ReadKind::DbSize => self
                .store
                .key_count()
                .map(|n| OwnedFrame::Integer(i64::try_from(n).unwrap_or(i64::MAX))),
            ReadKind::Type => self.store.kind(&keys[0], now_ms).map(|kind| {
                let name = kind.map_or("none", ValueKind::name);
                OwnedFrame::SimpleString(name.as_bytes().to_vec())
            }),
            ReadKind::Hash(_)
            | ReadKind::Set(_)
            | ReadKind::SetCombine(_)
            | ReadKind::SetInterCard { .. }
            | ReadKind::CollectionScan(_)
            | ReadKind::Random(_)
            | ReadKind::List(_)
            | ReadKind::ZSet(..)
            | ReadKind::ZSets(_)
            | ReadKind::Stream(_)
            | ReadKind::Pending(..)
            | ReadKind::GroupCheck { .. }
            | ReadKind::XRead(..) => {
                unreachable!("read_reply serves the collection reads")
            }
        };
        result.unwrap_or_else(|e| store_error(&e))
    }

    /// `KEYS pattern`: every live key that matches, however many passes that takes.
    fn keys(
        &self,
        pattern: &[u8],
        now_ms: u64,
        bytes_max: usize,
    ) -> Result<OwnedFrame, StoreError> {
        let mut found = Vec::new();
        let mut bytes: usize = 0;
        let mut after = None;
        loop {
            let ScanPage { keys, last, .. } =
                self.store
                    .scan_keys(after.as_deref(), KEYS_PASS_MAX, now_ms)?;
            for key in keys {
                if glob::matches(pattern, &key) {
                    bytes = bytes.saturating_add(key.len());
                    if bytes > bytes_max {
                        return Err(StoreError::ReadTooLarge { bytes_max });
                    }
                    found.push(bulk(key));
                }
            }
            match last {
                Some(last) => after = Some(last),
                None => return Ok(OwnedFrame::Array(found)),
            }
        }
    }

    /// `SCAN`: the next keys in byte order after where the cursor stopped.
    fn scan(&self, request: ScanRequest, now_ms: u64) -> Result<OwnedFrame, StoreError> {
        let after = match request.cursor {
            0 => None,
            id => match lock(&self.scan_cursors).take(id) {
                Some(after) => Some(after),
                None => return Ok(error("ERR invalid cursor")),
            },
        };
        let ScanPage { keys, kinds, last } =
            self.store
                .scan_keys(after.as_deref(), request.count, now_ms)?;
        let keys = keys
            .into_iter()
            .zip(kinds)
            .filter(|(key, kind)| {
                request
                    .kind
                    .as_ref()
                    .is_none_or(|asked| asked.eq_ignore_ascii_case(kind.name().as_bytes()))
                    && request
                        .pattern
                        .as_ref()
                        .is_none_or(|p| glob::matches(p, key))
            })
            .map(|(key, _)| bulk(key))
            .collect();
        let next = last.map_or(0, |last| lock(&self.scan_cursors).open(last));
        Ok(OwnedFrame::Array(vec![
            bulk(next.to_string().into_bytes()),
            OwnedFrame::Array(keys),
        ]))
    }

    /// `EVALSHA sha1 numkeys [key ...] [arg ...]` (or `EVALSHA_RO`): the `EVAL` of the
    /// script this node knows by that name, or `NOSCRIPT`.
    fn parse_evalsha(&self, name: &str, args: Vec<Vec<u8>>) -> Result<Command, OwnedFrame> {
        // A name of the wrong length is not looked for, as in Redis.
        let sha = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
        if sha.len() != 40 {
            return Err(no_script());
        }
        let Command::Eval {
            keys,
            args,
            read_only,
            ..
        } = parse_eval(name, args)?
        else {
            unreachable!("parse_eval makes an EVAL")
        };
        let script = lock(&self.scripts).get(&sha).ok_or_else(no_script)?;
        Ok(Command::Eval {
            script,
            keys,
            args,
            read_only,
        })
    }

    /// `SCRIPT LOAD`, `EXISTS`, `FLUSH`, `KILL`, `HELP`: this node's scripts.
    fn script_command(&self, args: &[Vec<u8>]) -> OwnedFrame {
        let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
        let wrong_args = || {
            error(format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try SCRIPT HELP.",
                String::from_utf8_lossy(&args[1])
            ))
        };
        match sub.as_str() {
            "load" if args.len() == 3 => bulk(lock(&self.scripts).add(&args[2]).into_bytes()),
            "exists" if args.len() >= 3 => {
                let scripts = lock(&self.scripts);
                OwnedFrame::Array(
                    args[2..]
                        .iter()
                        .map(|sha| {
                            let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
                            OwnedFrame::Integer(i64::from(scripts.get(&sha).is_some()))
                        })
                        .collect(),
                )
            }
            "flush" if args.len() <= 3 => {
                let mode = args.get(2).map(|m| m.to_ascii_uppercase());
                match mode.as_deref() {
                    None | Some(b"SYNC" | b"ASYNC") => {
                        lock(&self.scripts).clear();
                        ok()
                    }
                    Some(_) => error("ERR SCRIPT FLUSH only support SYNC|ASYNC option"),
                }
            }
            "kill" if args.len() == 2 => error("NOTBUSY No scripts in execution right now."),
            "help" if args.len() == 2 => OwnedFrame::Array(
                [
                    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                    "EXISTS <sha1> [<sha1> ...]",
                    "    Return information about the existence of the scripts in this node's cache.",
                    "FLUSH [ASYNC|SYNC]",
                    "    Flush this node's script cache.",
                    "KILL",
                    "    Answers that no script runs: a script runs within one apply, and a run",
                    "    that passes its instruction limit is stopped on every replica.",
                    "LOAD <script>",
                    "    Load a script into this node's cache without running it.",
                    "HELP",
                    "    Print this help.",
                ]
                .iter()
                .map(|line| OwnedFrame::SimpleString(line.as_bytes().to_vec()))
                .collect(),
            ),
            "load" | "exists" | "flush" | "kill" | "help" => wrong_args(),
            _ => error(format!(
                "ERR unknown subcommand '{}'. Try SCRIPT HELP.",
                String::from_utf8_lossy(&args[1])
            )),
        }
    }

    /// What this connection's commands are parsed with: the node's clock and limits.
    fn parsing(&self) -> Parsing {
        Parsing {
            now_ms: self.clock.now_ms(),
            request_bytes_max: self.config.server.request_bytes_max,
            reply_bytes_max: self.config.server.reply_bytes_max,
        }
    }

    /// `CONFIG GET pattern [pattern ...]`: the settings clients and tools look for, as
    /// this node has them. The node's settings come from its configuration file, so
    /// `CONFIG SET` and the rest are refused.
    fn config_command(
        &self,
        args: &[Vec<u8>],
    ) -> Result<Vec<(OwnedFrame, OwnedFrame)>, OwnedFrame> {
        let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
        match sub.as_str() {
            "get" if args.len() < 3 => return Err(wrong_arity("config|get")),
            "get" => {}
            "set" | "rewrite" | "resetstat" => {
                return Err(error(format!(
                    "ERR CONFIG {} is not supported: a node's settings come from its configuration file",
                    sub.to_ascii_uppercase()
                )));
            }
            _ => {
                return Err(error(format!(
                    "ERR unknown subcommand '{}'. Try CONFIG GET.",
                    String::from_utf8_lossy(&args[1])
                )));
            }
        }
        let server = &self.config.server;
        let settings = [
            // Every write is in the Raft log, made durable before it is acknowledged.
            ("appendonly", "yes".to_owned()),
            ("appendfsync", "always".to_owned()),
            ("databases", "1".to_owned()),
            ("maxclients", server.connections_max.to_string()),
            ("maxmemory", "0".to_owned()),
            ("maxmemory-policy", "noeviction".to_owned()),
            ("proto-max-bulk-len", server.request_bytes_max.to_string()),
            ("tcp-keepalive", server.tcp_keepalive_secs.to_string()),
            ("timeout", server.idle_timeout_secs.to_string()),
            // No RDB files: snapshots belong to Raft.
            ("save", String::new()),
        ];
        let patterns: Vec<Vec<u8>> = args[2..].iter().map(|p| p.to_ascii_lowercase()).collect();
        Ok(settings
            .into_iter()
            .filter(|(name, _)| patterns.iter().any(|p| glob::matches(p, name.as_bytes())))
            .map(|(name, value)| (bulk(name.as_bytes().to_vec()), bulk(value.into_bytes())))
            .collect())
    }

    /// `INFO [section]`: the sections monitoring tools read, each line `field:value`
    /// ending in CRLF, as Redis writes them (`redis-cli --stat` reads past the end of a
    /// last line without one).
    fn info(&self, args: &[Vec<u8>]) -> OwnedFrame {
        let status = self.replicator.status();
        let section = args
            .get(1)
            .map(|s| String::from_utf8_lossy(s).to_ascii_lowercase());
        let wants = |name: &str| match section.as_deref() {
            None | Some("all" | "default" | "everything") => true,
            Some(s) => s == name,
        };
        let mut sections: Vec<String> = Vec::new();
        if wants("server") {
            // Tools and job queues read redis_version to decide what they may send: the
            // Redis version whose commands and replies this node follows.
            sections.push(format!(
                "# Server\r\naegis_version:{}\r\nredis_version:{REDIS_VERSION_FOLLOWED}\r\nredis_mode:standalone\r\n",
                env!("CARGO_PKG_VERSION")
            ));
        }
        if wants("clients") {
            let connected =
                self.config.server.connections_max as usize - self.connections.available_permits();
            sections.push(format!(
                "# Clients\r\nconnected_clients:{connected}\r\nmaxclients:{}\r\nblocked_clients:{}\r\n",
                self.config.server.connections_max,
                self.blocked.load(Ordering::Relaxed),
            ));
        }
        if wants("memory") {
            // The process's resident memory: the data itself lives in redb's file.
            sections.push(format!(
                "# Memory\r\nused_memory:{}\r\n",
                resident_bytes().unwrap_or(0)
            ));
        }
        if wants("persistence") {
            // A node serves only once its log is replayed, and it writes no RDB or AOF
            // files: its snapshots belong to Raft.
            sections.push(
                "# Persistence\r\nloading:0\r\nbgsave_in_progress:0\r\naof_rewrite_in_progress:0\r\n"
                    .to_owned(),
            );
        }
        if wants("stats") {
            sections.push(format!(
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\nrejected_connections:{}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\n",
                self.last_client_id.load(Ordering::Relaxed),
                self.commands_processed.load(Ordering::Relaxed),
                self.connections_rejected.load(Ordering::Relaxed),
                self.hub.channels(None).len(),
                self.hub.patterns(),
            ));
        }
        if wants("replication") {
            let leader = status
                .leader
                .map_or_else(|| "none".to_owned(), |id| id.to_string());
            sections.push(format!(
                "# Replication\r\nrole:{}\r\nnode_id:{}\r\nterm:{}\r\nleader_id:{leader}\r\ncommit_index:{}\r\napplied_index:{}\r\nsnapshot_index:{}\r\nsnapshots_installed:{}\r\n",
                status.role.as_str(),
                status.node_id,
                status.term,
                status.commit_index,
                status.applied_index,
                status.snapshot_index,
                status.snapshots_installed,
            ));
        }
        if wants("keyspace") {
            // `keys` counts keys not yet purged after their expiry, as Redis's does.
            match self.store.key_counts() {
                Ok(counts) => sections.push(format!(
                    "# Keyspace\r\nkeys:{keys}\r\ndb0:keys={keys},expires={expires},avg_ttl=0\r\n",
                    keys = counts.keys,
                    expires = counts.expiring
                )),
                Err(e) => return store_error(&e),
            }
        }
        let text = sections.join("\r\n");
        debug_assert!(text.is_empty() || text.ends_with("\r\n"));
        bulk(text.into_bytes())
    }

    async fn purge_expired_once(&self) -> Result<u64, ReplicaError> {
        let status = self.replicator.status();
        if status.leader != Some(status.node_id) {
            return Ok(0);
        }
        let now_ms = self.clock.now_ms();
        let due = self.store.next_expiry_ms()?.is_some_and(|at| at < now_ms);
        if !due {
            return Ok(0);
        }
        let command = Command::PurgeExpired {
            batch_max: self.config.server.expire_purge_batch_max,
        };
        let output = self.replicator.propose(command).await?;
        debug_assert!(
            matches!(output, Output::Count(_)),
            "a purge answers with a count"
        );
        Ok(match output {
            Output::Count(n) => n,
            _ => 0,
        })
    }
}

fn incr_delta(name: &str, args: &[Vec<u8>]) -> Result<i64, OwnedFrame> {
    match name {
        "incr" => Ok(1),
        "decr" => Ok(-1),
        "incrby" => parse_integer(&args[2]).ok_or_else(not_an_integer),
        _ => {
            let amount = parse_integer(&args[2]).ok_or_else(not_an_integer)?;
            amount
                .checked_neg()
                .ok_or_else(|| error("ERR decrement would overflow"))
        }
    }
}

/// The reply to `TTL`, `PTTL`, `EXPIRETIME` and `PEXPIRETIME` ([`KeyExpiry::redis_time`]).
fn expiry_reply(expiry: KeyExpiry, unit: TimeUnit, measure: impl FnOnce(u64) -> u64) -> OwnedFrame {
    OwnedFrame::Integer(expiry.redis_time(measure, unit == TimeUnit::Milliseconds))
}

/// A transaction's read of a whole collection: a sorted set's members and scores, a
/// hash's fields and values (`pairs`), or a set's members; what `HSCAN` and its kin and
/// `SRANDMEMBER` and its kin pick from.
fn whole_read(key: Vec<u8>, zset: bool, pairs: bool) -> TxRead {
    if zset {
        TxRead::ZSet {
            key,
            read: ZSetRead::everything(true),
        }
    } else if pairs {
        TxRead::Hash {
            key,
            read: HashRead::GetAll,
        }
    } else {
        TxRead::Set {
            key,
            read: SetRead::Members,
        }
    }
}

/// [`whole_read`] as a read outside a transaction.
fn read_whole(
    store: &KvStateMachine,
    key: &[u8],
    zset: bool,
    pairs: bool,
    now_ms: u64,
    bytes_max: usize,
) -> Result<Output, StoreError> {
    if zset {
        store.read_zset(key, &ZSetRead::everything(true), now_ms, bytes_max)
    } else if pairs {
        store.read_hash(key, &HashRead::GetAll, now_ms, bytes_max)
    } else {
        store.read_set(key, &SetRead::Members, now_ms, bytes_max)
    }
}

fn no_script() -> OwnedFrame {
    error("NOSCRIPT No matching script. Please use EVAL.")
}

/// Parses `EVAL script numkeys [key ...] [arg ...]` and its kin (for `EVALSHA`, the
/// script is the name until the caller finds it).
fn parse_eval(name: &str, mut args: Vec<Vec<u8>>) -> Result<Command, OwnedFrame> {
    let numkeys = parse_integer(&args[2]).ok_or_else(not_an_integer)?;
    if numkeys < 0 {
        return Err(error("ERR Number of keys can't be negative"));
    }
    let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
    if numkeys > args.len() - 3 {
        return Err(error(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    let rest = args.split_off(3);
    let mut keys = rest;
    let script_args = keys.split_off(numkeys);
    Ok(Command::Eval {
        script: args.swap_remove(1),
        keys,
        args: script_args,
        read_only: name.ends_with("_ro"),
    })
}

/// The scripts a node knows by name (SHA-1), for `EVALSHA`: those `EVAL` ran and
/// `SCRIPT LOAD` loaded through it. Each node has its own, as each Redis server does:
/// a client that finds a script missing (`NOSCRIPT`) sends it again with `EVAL`. The
/// oldest are forgotten past [`SCRIPTS_MAX`] scripts or [`SCRIPT_BYTES_MAX`] bytes.
#[derive(Debug, Default)]
struct Scripts {
    by_sha: HashMap<String, Vec<u8>>,
    order: VecDeque<String>,
    bytes: usize,
}

const SCRIPTS_MAX: usize = 10_000;
const SCRIPT_BYTES_MAX: usize = 64 << 20;

impl Scripts {
    /// Keeps `script`; its name.
    fn add(&mut self, script: &[u8]) -> String {
        let sha = script::sha1_hex(script);
        if self.by_sha.contains_key(&sha) {
            return sha;
        }
        self.by_sha.insert(sha.clone(), script.to_vec());
        self.order.push_back(sha.clone());
        self.bytes += script.len();
        while self.order.len() > SCRIPTS_MAX
            || (self.bytes > SCRIPT_BYTES_MAX && self.order.len() > 1)
        {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(gone) = self.by_sha.remove(&oldest) {
                self.bytes -= gone.len();
            }
        }
        sha
    }

    fn get(&self, sha: &str) -> Option<Vec<u8>> {
        self.by_sha.get(sha).cloned()
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

/// A script's reply items as a frame; a malformed list (which a node never makes) as an
/// error.
fn script_reply(items: &[ReplyItem]) -> OwnedFrame {
    fn frame(items: &[ReplyItem], at: &mut usize, depth: usize) -> Option<OwnedFrame> {
        let item = items.get(*at)?;
        *at += 1;
        Some(match item {
            ReplyItem::Null => OwnedFrame::Null,
            ReplyItem::Integer(n) => OwnedFrame::Integer(*n),
            ReplyItem::Bulk(bytes) => OwnedFrame::BulkString(bytes.clone()),
            ReplyItem::Status(text) => OwnedFrame::SimpleString(text.clone()),
            ReplyItem::Error(text) => OwnedFrame::Error(String::from_utf8_lossy(text).into_owned()),
            ReplyItem::Array(len) => {
                if depth >= 128 {
                    return None;
                }
                let len = usize::try_from(*len).ok()?;
                let mut array = Vec::with_capacity(len.min(items.len()));
                for _ in 0..len {
                    array.push(frame(items, at, depth + 1)?);
                }
                OwnedFrame::Array(array)
            }
        })
    }
    let mut at = 0;
    match frame(items, &mut at, 0) {
        Some(reply) if at == items.len() => reply,
        _ => error("ERR a script reply that is not well formed"),
    }
}

/// What a command a script calls (`redis.call`) becomes.
pub(crate) enum ScriptCall {
    /// A read or a write to run in the script's apply, and how its output becomes the
    /// reply.
    Run(TxOp, ScriptAnswer),
    /// A reply known without running anything (an error, or `TIME`), in RESP2.
    Answered(Vec<u8>),
}

/// How a command a script called answers.
pub(crate) struct ScriptAnswer(Answer);

impl ScriptAnswer {
    /// The reply to `output`, in RESP2 (scripts speak RESP2, as Redis's do by default).
    pub(crate) fn reply(&self, output: Output) -> Vec<u8> {
        let mut out = Vec::new();
        resp::encode_tree(&mut out, &answer_reply(output, &self.0), Protocol::Resp2);
        out
    }
}

/// The most bytes a value a script writes may take, and what its reads may answer: the
/// same on every replica, whatever each node's configuration says.
const SCRIPT_REQUEST_BYTES_MAX: u32 = 512 << 20;
const SCRIPT_REPLY_BYTES_MAX: u32 = 64 << 20;

/// Parses a command a script calls, as a transaction would queue it, with the time
/// of the script's log entry; `read_only` refuses writes (`EVAL_RO`).
pub(crate) fn script_call(mut argv: Vec<Vec<u8>>, now_ms: u64, read_only: bool) -> ScriptCall {
    let refused = |message: &str| {
        let mut out = Vec::new();
        resp::encode_reply(&mut out, &error(message), Protocol::Resp2);
        ScriptCall::Answered(out)
    };
    let name = String::from_utf8_lossy(&argv[0]).to_ascii_lowercase();
    let Some((arity, _)) = command_info(&name) else {
        return refused("ERR Unknown Redis command called from script");
    };
    let argc = argv.len() as i32;
    if (arity > 0 && argc != arity) || argc < -arity {
        return refused("ERR Wrong number of args calling Redis command from script");
    }
    // Nor, as in Redis, a command that could wait.
    let blocking = matches!(
        name.as_str(),
        "blpop" | "brpop" | "blmove" | "brpoplpush" | "blmpop" | "bzpopmin" | "bzpopmax" | "bzmpop"
    );
    if blocking
        || matches!(
            name.as_str(),
            "eval" | "eval_ro" | "evalsha" | "evalsha_ro" | "script"
        )
    {
        return refused("ERR This Redis command is not allowed from script");
    }
    if name == "time" {
        let (secs, micros) = (now_ms / 1000, (now_ms % 1000) * 1000);
        let mut out = Vec::new();
        let time = OwnedFrame::Array(vec![
            bulk(secs.to_string().into_bytes()),
            bulk(micros.to_string().into_bytes()),
        ]);
        resp::encode_reply(&mut out, &time, Protocol::Resp2);
        return ScriptCall::Answered(out);
    }
    argv[0] = name.clone().into_bytes();
    let parsing = Parsing {
        now_ms,
        request_bytes_max: SCRIPT_REQUEST_BYTES_MAX,
        reply_bytes_max: SCRIPT_REPLY_BYTES_MAX,
    };
    match parsing.queueing(&name, argv) {
        None => refused("ERR This Redis command is not allowed from script"),
        Some(Queueing::Op(TxOp::Write(_), _)) if read_only => {
            refused("ERR Write commands are not allowed from read-only scripts.")
        }
        Some(Queueing::Op(op, answer)) => ScriptCall::Run(op, ScriptAnswer(answer)),
        Some(Queueing::Answered(frame)) => {
            let mut out = Vec::new();
            resp::encode_reply(&mut out, &frame, Protocol::Resp2);
            ScriptCall::Answered(out)
        }
    }
}

/// What parsing a command needs besides its arguments: the time relative expiries count
/// from, and the limits values and replies are held to. A connection's come from the
/// node's clock and configuration; a script's from its log entry and fixed limits, the
/// same on every replica.
#[derive(Debug, Clone, Copy)]
struct Parsing {
    now_ms: u64,
    request_bytes_max: u32,
    reply_bytes_max: u32,
}

impl Parsing {
    /// What a command queued after `MULTI` (or called by a script) becomes; `None` for
    /// one a transaction may not hold.
    fn queueing(&self, name: &str, mut args: Vec<Vec<u8>>) -> Option<Queueing> {
        let read = |read| Queueing::Op(TxOp::Read(read), Answer::AsIs);
        Some(match name {
            "get" => read(TxRead::Get {
                key: args.swap_remove(1),
            }),
            "getex" if args.len() == 2 => read(TxRead::Get {
                key: args.swap_remove(1),
            }),
            "mget" => read(TxRead::MGet {
                keys: args.split_off(1),
            }),
            "exists" | "touch" => read(TxRead::Exists {
                keys: args.split_off(1),
            }),
            "getbit" | "bitcount" | "bitpos" => {
                match self.parse_bit_read(name, &args).and_then(|read| read.query) {
                    Ok(query) => read(TxRead::Bits {
                        key: args.swap_remove(1),
                        query,
                    }),
                    Err(refused) => Queueing::Answered(refused),
                }
            }
            "getrange" | "substr" => match parse_range(&args) {
                Ok((start, end)) => read(TxRead::GetRange {
                    key: args.swap_remove(1),
                    start,
                    end,
                }),
                Err(refused) => Queueing::Answered(refused),
            },
            "strlen" => read(TxRead::Strlen {
                key: args.swap_remove(1),
            }),
            "ttl" | "pttl" => read(TxRead::Ttl {
                in_ms: name == "pttl",
                key: args.swap_remove(1),
            }),
            "expiretime" | "pexpiretime" => read(TxRead::ExpireTime {
                in_ms: name == "pexpiretime",
                key: args.swap_remove(1),
            }),
            "type" => Queueing::Op(
                TxOp::Read(TxRead::Type {
                    key: args.swap_remove(1),
                }),
                Answer::Status,
            ),
            "hget" | "hmget" | "hlen" | "hgetall" | "hkeys" | "hvals" | "hexists" | "hstrlen" => {
                let read = hash_read(name, &args);
                let answer = hash_shape(&read);
                let key = args.swap_remove(1);
                Queueing::Op(TxOp::Read(TxRead::Hash { key, read }), answer)
            }
            "hscan" | "sscan" | "zscan" => match parse_collection_scan(name, &args) {
                Ok(request) => {
                    let read = whole_read(args.swap_remove(1), request.zset, request.pairs);
                    Queueing::Op(TxOp::Read(read), Answer::Scan(request))
                }
                Err(refused) => Queueing::Answered(refused),
            },
            "sismember" | "smismember" | "smembers" | "scard" => {
                let read = set_read(name, &args);
                let answer = set_shape(&read);
                let key = args.swap_remove(1);
                Queueing::Op(TxOp::Read(TxRead::Set { key, read }), answer)
            }
            "llen" | "lrange" | "lindex" | "lpos" => match parse_list_read(name, &args) {
                Ok(list_read) => read(TxRead::List {
                    key: args.swap_remove(1),
                    read: list_read,
                }),
                Err(refused) => Queueing::Answered(refused),
            },
            "sinter" | "sunion" | "sdiff" => Queueing::Op(
                TxOp::Read(TxRead::SetCombine {
                    op: set_op(name),
                    keys: args.split_off(1),
                }),
                Answer::Set,
            ),
            "sintercard" => match parse_sintercard(&args) {
                Ok((keys, limit)) => {
                    let mut keys_and_more = args.split_off(2);
                    keys_and_more.truncate(keys);
                    read(TxRead::SetInterCard {
                        keys: keys_and_more,
                        limit,
                    })
                }
                Err(refused) => Queueing::Answered(refused),
            },
            "srandmember" | "hrandfield" | "zrandmember" => match parse_random_pick(name, &args) {
                Ok(pick) => {
                    let read = whole_read(args.swap_remove(1), pick.zset, pick.hash);
                    let bytes_max = self.reply_bytes_max as usize;
                    Queueing::Op(TxOp::Read(read), Answer::Random(pick, bytes_max))
                }
                Err(refused) => Queueing::Answered(refused),
            },
            "zcard" | "zscore" | "zmscore" | "zrank" | "zrevrank" | "zcount" | "zlexcount"
            | "zrange" | "zrevrange" | "zrangebyscore" | "zrevrangebyscore" | "zrangebylex"
            | "zrevrangebylex" => match sorted::parse_zread(name, &args) {
                Ok((read, answer)) => Queueing::Op(
                    TxOp::Read(TxRead::ZSet {
                        key: args.swap_remove(1),
                        read,
                    }),
                    answer,
                ),
                Err(refused) => Queueing::Answered(refused),
            },
            "zunion" | "zinter" | "zdiff" | "zintercard" => {
                match sorted::parse_combination(name, &args) {
                    Ok(asked) => read(asked.read(name == "zintercard")),
                    Err(refused) => Queueing::Answered(refused),
                }
            }
            "pfcount" => read(TxRead::PfCount {
                keys: args.split_off(1),
            }),
            _ if geo::READS.contains(&name) => match geo::geo_step(name, &args) {
                geo::GeoStep::Read(key, read, answer) => {
                    Queueing::Op(TxOp::Read(TxRead::ZSet { key, read }), answer)
                }
                geo::GeoStep::Write(command) => Queueing::Op(TxOp::Write(command), Answer::AsIs),
                geo::GeoStep::Refused(refused) => Queueing::Answered(refused),
            },
            "xlen" | "xrange" | "xrevrange" => match streams::parse_read(name, &args) {
                Ok(stream_read) => read(TxRead::Stream {
                    key: args.swap_remove(1),
                    read: stream_read,
                }),
                Err(refused) => Queueing::Answered(refused),
            },
            "xpending" => match streams::parse_xpending(&args) {
                Ok((stream_read, missing)) => Queueing::Op(
                    TxOp::Read(TxRead::Stream {
                        key: args.swap_remove(1),
                        read: stream_read,
                    }),
                    Answer::NoGroup(vec![missing]),
                ),
                Err(refused) => Queueing::Answered(refused),
            },
            // Inside a transaction, as in Redis, `BLOCK` does not wait.
            "xread" => match streams::parse_xread(&args) {
                Ok(streams::XRead {
                    refused: Some(refused),
                    ..
                })
                | Err(refused) => Queueing::Answered(refused),
                Ok(xread) => read(TxRead::XRead {
                    after: xread.now(),
                    count: xread.count,
                }),
            },
            // As in Redis, a blocking pop inside a transaction does not wait: it pops
            // what is there, or answers as if its timeout had passed.
            "blpop" | "brpop" | "blmove" | "brpoplpush" | "bzpopmin" | "bzpopmax" | "blmpop"
            | "bzmpop" => match blocking::parse(name, &args) {
                Ok(blocked) => {
                    let (command, answer) = blocking::at_once(blocked);
                    Queueing::Op(TxOp::Write(command), answer)
                }
                Err(refused) => Queueing::Answered(refused),
            },
            "ping" => Queueing::Answered(match args.len() {
                1 => OwnedFrame::SimpleString(b"PONG".to_vec()),
                2 => bulk(args.swap_remove(1)),
                _ => wrong_arity(name),
            }),
            "echo" => Queueing::Answered(bulk(args.swap_remove(1))),
            "eval" | "eval_ro" => match parse_eval(name, args) {
                Ok(command) => Queueing::Op(TxOp::Write(command), Answer::AsIs),
                Err(refused) => Queueing::Answered(refused),
            },
            _ if command_info(name).is_some_and(|(_, kind)| kind == Kind::Write) => {
                match self.write_command(name, args) {
                    Ok((command, answer)) => Queueing::Op(TxOp::Write(command), answer),
                    Err(refused) => Queueing::Answered(refused),
                }
            }
            _ => return None,
        })
    }

    fn write_command(
        &self,
        name: &str,
        mut args: Vec<Vec<u8>>,
    ) -> Result<(Command, Answer), OwnedFrame> {
        let now_ms = self.now_ms;
        let command = match name {
            "set" => parse_set(&args, now_ms)?,
            "setnx" => {
                let command = Command::Set {
                    value: args.swap_remove(2),
                    key: args.swap_remove(1),
                    expire_at_ms: None,
                    condition: SetCondition::IfAbsent,
                };
                return Ok((command, Answer::Flag));
            }
            "setex" | "psetex" => {
                let unit: &[u8] = if name == "setex" { b"EX" } else { b"PX" };
                let at = expire_at(unit, &args[2], now_ms, name)?;
                Command::Set {
                    value: args.swap_remove(3),
                    key: args.swap_remove(1),
                    expire_at_ms: Some(at),
                    condition: SetCondition::Always,
                }
            }
            "getset" => Command::SetWith {
                value: args.swap_remove(2),
                key: args.swap_remove(1),
                expiry: Expiry::Clear,
                condition: SetCondition::Always,
                get: true,
            },
            "getdel" => Command::GetDel {
                key: args.swap_remove(1),
            },
            "getex" => parse_getex(&args, now_ms)?,
            "append" => Command::Append {
                value: args.swap_remove(2),
                key: args.swap_remove(1),
                len_max: u64::from(self.request_bytes_max),
            },
            "del" | "unlink" => Command::Del {
                keys: args.split_off(1),
            },
            "mset" => Command::MSet { pairs: pairs(args) },
            "msetnx" => Command::MSetNx { pairs: pairs(args) },
            "expire" | "pexpire" | "expireat" | "pexpireat" => parse_expire(name, &args, now_ms)?,
            "persist" => Command::Persist {
                key: args.swap_remove(1),
            },
            "rename" | "renamenx" => Command::Rename {
                to: args.swap_remove(2),
                from: args.swap_remove(1),
                if_absent: name == "renamenx",
            },
            "copy" => parse_copy(args)?,
            "hset" | "hmset" => {
                // Redis checks the pairs when it runs the command, not with its arity.
                if !args.len().is_multiple_of(2) {
                    return Err(wrong_arity(name));
                }
                let command = Command::HSet {
                    key: args[1].clone(),
                    // After the key, in order.
                    pairs: pairs(args.split_off(1)),
                    if_absent: false,
                };
                let answer = if name == "hmset" {
                    Answer::Done
                } else {
                    Answer::AsIs
                };
                return Ok((command, answer));
            }
            "hsetnx" => Command::HSet {
                pairs: vec![(args.swap_remove(2), args.swap_remove(2))],
                key: args.swap_remove(1),
                if_absent: true,
            },
            "hdel" => Command::HDel {
                fields: args.split_off(2),
                key: args.swap_remove(1),
            },
            "hincrby" => Command::HIncrBy {
                delta: parse_integer(&args[3]).ok_or_else(not_an_integer)?,
                field: args.swap_remove(2),
                key: args.swap_remove(1),
            },
            "sadd" => Command::SAdd {
                members: args.split_off(2),
                key: args.swap_remove(1),
            },
            "srem" => Command::SRem {
                members: args.split_off(2),
                key: args.swap_remove(1),
            },
            "smove" => Command::SMove {
                member: args.swap_remove(3),
                to: args.swap_remove(2),
                from: args.swap_remove(1),
            },
            "spop" => {
                let count = match args.len() {
                    2 => None,
                    3 => Some(
                        parse_integer(&args[2])
                            .ok_or_else(not_an_integer)
                            .and_then(|n| {
                                u64::try_from(n).map_err(|_| {
                                    error("ERR value is out of range, must be positive")
                                })
                            })?,
                    ),
                    _ => return Err(syntax_error()),
                };
                let command = Command::SPop {
                    key: args.swap_remove(1),
                    count,
                    seed: random_seed(),
                };
                let answer = if count.is_some() {
                    Answer::Set
                } else {
                    Answer::AsIs
                };
                return Ok((command, answer));
            }
            "lpush" | "rpush" | "lpushx" | "rpushx" => Command::Push {
                items: args.split_off(2),
                key: args.swap_remove(1),
                front: name.starts_with('l'),
                if_exists: name.ends_with('x'),
            },
            "lpop" | "rpop" => {
                let count = match args.len() {
                    2 => None,
                    3 => Some(
                        parse_integer(&args[2])
                            .and_then(|n| u64::try_from(n).ok())
                            .ok_or_else(|| error("ERR value is out of range, must be positive"))?,
                    ),
                    _ => return Err(syntax_error()),
                };
                let answer = if count.is_some() {
                    Answer::NoArray
                } else {
                    Answer::AsIs
                };
                let command = Command::Pop {
                    key: args.swap_remove(1),
                    front: name == "lpop",
                    count,
                };
                return Ok((command, answer));
            }
            "lset" => Command::LSet {
                index: parse_integer(&args[2]).ok_or_else(not_an_integer)?,
                item: args.swap_remove(3),
                key: args.swap_remove(1),
            },
            "lrem" => Command::LRem {
                count: parse_integer(&args[2]).ok_or_else(not_an_integer)?,
                item: args.swap_remove(3),
                key: args.swap_remove(1),
            },
            "ltrim" => Command::LTrim {
                start: parse_integer(&args[2]).ok_or_else(not_an_integer)?,
                stop: parse_integer(&args[3]).ok_or_else(not_an_integer)?,
                key: args.swap_remove(1),
            },
            "linsert" => {
                let before = match args[2].to_ascii_uppercase().as_slice() {
                    b"BEFORE" => true,
                    b"AFTER" => false,
                    _ => return Err(syntax_error()),
                };
                Command::LInsert {
                    item: args.swap_remove(4),
                    pivot: args.swap_remove(3),
                    key: args.swap_remove(1),
                    before,
                }
            }
            "lmove" => Command::LMove {
                from_front: parse_end(&args[3])?,
                to_front: parse_end(&args[4])?,
                to: args.swap_remove(2),
                from: args.swap_remove(1),
            },
            "rpoplpush" => Command::LMove {
                to: args.swap_remove(2),
                from: args.swap_remove(1),
                from_front: false,
                to_front: true,
            },
            "zadd" | "zincrby" => sorted::parse_zadd(name, &args)?,
            "xadd" => streams::parse_xadd(&args)?,
            "xdel" => streams::parse_xdel(&args),
            "xtrim" => streams::parse_xtrim(&args)?,
            "xack" => streams::parse_xack(&args),
            "geoadd" => geo::parse_geoadd(&args)?,
            "pfadd" => Command::PfAdd {
                elements: args.split_off(2),
                key: args.swap_remove(1),
            },
            "pfmerge" => Command::PfMerge {
                sources: args.split_off(2),
                dest: args.swap_remove(1),
            },
            "xclaim" => {
                let claim = streams::parse_xclaim(&args);
                if let Some(refused) = claim.refused {
                    return Err(refused);
                }
                return Ok((claim.command, Answer::NoGroup(vec![claim.missing])));
            }
            "xautoclaim" => {
                let (command, missing) = streams::parse_xautoclaim(&args)?;
                return Ok((command, Answer::NoGroup(vec![missing])));
            }
            "xgroup" => {
                let (command, missing) = streams::parse_xgroup(&args)?;
                return Ok((command, Answer::NoGroup(vec![missing])));
            }
            // Inside a transaction, as in Redis, `BLOCK` does not wait.
            "xreadgroup" => {
                let read = streams::parse_xreadgroup(&args)?;
                if let Some(refused) = read.refused {
                    return Err(refused);
                }
                return Ok((read.command, Answer::NoGroup(read.missing)));
            }
            "zrem" => Command::ZRem {
                members: args.split_off(2),
                key: args.swap_remove(1),
            },
            "zpopmin" | "zpopmax" => return sorted::parse_zpop(name, &args),
            "lmpop" | "zmpop" => blocking::parse_mpop(name == "zmpop", &args, 1)?,
            "publish" => Command::Publish {
                message: args.swap_remove(2),
                channel: args.swap_remove(1),
            },
            "zunionstore" | "zinterstore" | "zdiffstore" => {
                sorted::parse_combination(name, &args)?.store(args.swap_remove(1))
            }
            "zrangestore" => sorted::parse_zrangestore(&args)?,
            "zremrangebyrank" | "zremrangebyscore" | "zremrangebylex" => {
                sorted::parse_zremrange(name, &args)?
            }
            "sinterstore" | "sunionstore" | "sdiffstore" => Command::SetStore {
                op: set_op(name),
                keys: args.split_off(2),
                dest: args.swap_remove(1),
            },
            "hincrbyfloat" => {
                if !decimal::is_float(&args[3]) {
                    // Redis reads an infinite increment, then refuses it.
                    return Err(error(if is_infinity(&args[3]) {
                        "ERR value is NaN or Infinity"
                    } else {
                        "ERR value is not a valid float"
                    }));
                }
                Command::HIncrByFloat {
                    increment: args.swap_remove(3),
                    field: args.swap_remove(2),
                    key: args.swap_remove(1),
                }
            }
            "setbit" => {
                let offset = self.parse_bit_offset(&args[2])?;
                let on = match parse_integer(&args[3]) {
                    Some(bit @ (0 | 1)) => bit == 1,
                    _ => return Err(error("ERR bit is not an integer or out of range")),
                };
                Command::SetBit {
                    key: args.swap_remove(1),
                    offset,
                    on,
                }
            }
            "bitop" => {
                let op = match args[1].to_ascii_uppercase().as_slice() {
                    b"AND" => BitOp::And,
                    b"OR" => BitOp::Or,
                    b"XOR" => BitOp::Xor,
                    b"NOT" => BitOp::Not,
                    _ => return Err(syntax_error()),
                };
                if op == BitOp::Not && args.len() != 4 {
                    return Err(error(
                        "ERR BITOP NOT must be called with a single source key.",
                    ));
                }
                let keys = args.split_off(3);
                Command::BitOp {
                    op,
                    dest: args.swap_remove(2),
                    keys,
                }
            }
            "incrbyfloat" => {
                if !decimal::is_float(&args[2]) {
                    // Redis reads an infinite increment, then refuses its sum.
                    return Err(error(if is_infinity(&args[2]) {
                        "ERR increment would produce NaN or Infinity"
                    } else {
                        "ERR value is not a valid float"
                    }));
                }
                Command::IncrByFloat {
                    increment: args.swap_remove(2),
                    key: args.swap_remove(1),
                }
            }
            "setrange" => {
                let offset = parse_integer(&args[2]).ok_or_else(not_an_integer)?;
                let offset =
                    u64::try_from(offset).map_err(|_| error("ERR offset is out of range"))?;
                Command::SetRange {
                    value: args.swap_remove(3),
                    key: args.swap_remove(1),
                    offset,
                    len_max: u64::from(self.request_bytes_max),
                }
            }
            _ => Command::IncrBy {
                delta: incr_delta(name, &args)?,
                key: args.swap_remove(1),
            },
        };
        debug_assert!(command.validate().is_ok());
        Ok((command, Answer::AsIs))
    }

    /// A bit offset as `SETBIT` and `GETBIT` take it: within the longest value one
    /// request may carry, as Redis bounds it by its own limit.
    fn parse_bit_offset(&self, arg: &[u8]) -> Result<u64, OwnedFrame> {
        let bytes_max = u64::from(self.request_bytes_max);
        parse_integer(arg)
            .and_then(|offset| u64::try_from(offset).ok())
            .filter(|offset| offset >> 3 < bytes_max)
            .ok_or_else(|| error("ERR bit offset is not an integer or out of range"))
    }

    /// `GETBIT key offset`, `BITCOUNT key [start end [BYTE|BIT]]` or `BITPOS key bit
    /// [start [end [BYTE|BIT]]]`, checked in Redis's order: the offset and the bit
    /// before the key is looked up, the range after.
    fn parse_bit_read(&self, name: &str, args: &[Vec<u8>]) -> Result<BitRead, OwnedFrame> {
        match name {
            "getbit" => Ok(BitRead {
                query: Ok(BitQuery::Get {
                    offset: self.parse_bit_offset(&args[2])?,
                }),
                if_missing: 0,
            }),
            "bitcount" => Ok(BitRead {
                query: parse_bit_range(&args[2..], false).map(|range| BitQuery::Count { range }),
                if_missing: 0,
            }),
            _ => {
                let bit = match parse_integer(&args[2]) {
                    Some(bit @ (0 | 1)) => bit == 1,
                    Some(_) => return Err(error("ERR The bit argument must be 1 or 0.")),
                    None => return Err(not_an_integer()),
                };
                Ok(BitRead {
                    query: parse_bit_range(&args[3..], true)
                        .map(|range| BitQuery::Pos { bit, range }),
                    if_missing: if bit { -1 } else { 0 },
                })
            }
        }
    }
}

/// The reply to a write whose output is `output`, in the shape `answer` asks for.
fn answer_reply(output: Output, answer: &Answer) -> Reply {
    // A sorted set read whole is picked from as a hash is.
    let output = match answer {
        Answer::Scan(_) | Answer::Random(..) => sorted::flatten(output),
        _ => output,
    };
    let output = match answer {
        Answer::Geo(read) => match geo::geo_reply(output, read) {
            Ok(reply) => return reply,
            Err(output) => output,
        },
        _ => output,
    };
    let output = match sorted::scored_reply(output, answer) {
        Ok(reply) => return reply,
        Err(output) => output,
    };
    let frame = match (output, answer) {
        (Output::Ok, Answer::Flag) => OwnedFrame::Integer(1),
        (Output::NotSet, Answer::Flag) => OwnedFrame::Integer(0),
        // A key watched changed: the transaction did not run.
        (Output::Aborted, _) => return Reply::NullArray,
        (Output::PoppedFrom(popped), Answer::PoppedAtOnce(pop)) => {
            return blocking::popped_at_once(pop, popped);
        }
        (Output::PoppedFrom(popped), _) => return blocking::popped_from(popped),
        (Output::Value(None), Answer::NoArray) => return Reply::NullArray,
        (Output::Entries(entries), _) => return streams::entries_reply(entries),
        (Output::Rejected(Rejection::NoGroup { key }), Answer::NoGroup(missing)) => {
            match missing.get(key as usize) {
                Some(message) => error(message.clone()),
                None => output_reply(Output::Rejected(Rejection::NoGroup { key })),
            }
        }
        (output @ (Output::StreamIds(_) | Output::AutoClaimed { .. }), _) => {
            match streams::claimed_reply(output) {
                Ok(reply) => return reply,
                Err(other) => output_reply(other),
            }
        }
        (output @ (Output::PendingSummary { .. } | Output::PendingEntries(_)), _) => {
            match streams::pending_reply(output) {
                Ok(reply) => return reply,
                Err(other) => output_reply(other),
            }
        }
        (Output::Streams(read), _) => return streams::streams_reply(read),
        (Output::Value(Some(value)), Answer::Status) => OwnedFrame::SimpleString(value),
        (Output::Count(_), Answer::Done) => ok(),
        (Output::Values(flat), Answer::Map) => return Reply::Map(field_pairs(flat)),
        (Output::Values(members), Answer::Set) => {
            let members = members
                .into_iter()
                .map(|m| m.map_or(OwnedFrame::Null, bulk));
            return Reply::Set(members.collect());
        }
        (output, Answer::Scan(request)) => scan_reply(output, request),
        (Output::Values(flat), Answer::Random(pick, bytes_max)) => {
            return random_entries(flat.into_iter().flatten().collect(), *pick, *bytes_max);
        }
        (Output::Each(outputs), Answer::Each(answers))
            if outputs.len()
                == answers
                    .iter()
                    .filter(|a| !matches!(a, Answer::Fixed(_)))
                    .count() =>
        {
            let mut outputs = outputs.into_iter();
            return Reply::Array(
                answers
                    .iter()
                    .map(|answer| match answer {
                        Answer::Fixed(frame) => Reply::Frame(frame.clone()),
                        answer => answer_reply(outputs.next().expect("counted above"), answer),
                    })
                    .collect(),
            );
        }
        (output, _) => output_reply(output),
    };
    Reply::Frame(frame)
}

/// Fields and values, one after the other, as the pairs of a map reply.
fn field_pairs(flat: Vec<Option<Vec<u8>>>) -> Vec<(OwnedFrame, OwnedFrame)> {
    let mut flat = flat.into_iter().map(|v| v.map_or(OwnedFrame::Null, bulk));
    let mut pairs = Vec::with_capacity(flat.len() / 2);
    while let (Some(field), Some(value)) = (flat.next(), flat.next()) {
        pairs.push((field, value));
    }
    pairs
}

fn output_reply(output: Output) -> OwnedFrame {
    match output {
        Output::Ok => ok(),
        Output::NotSet => OwnedFrame::Null,
        Output::Value(value) => value.map_or(OwnedFrame::Null, bulk),
        Output::Values(values) => OwnedFrame::Array(
            values
                .into_iter()
                .map(|v| v.map_or(OwnedFrame::Null, bulk))
                .collect(),
        ),
        Output::Changed(changed) => OwnedFrame::Integer(i64::from(changed)),
        Output::Count(n) => OwnedFrame::Integer(i64::try_from(n).unwrap_or(i64::MAX)),
        Output::Integer(n) => OwnedFrame::Integer(n),
        Output::Integers(all) => {
            OwnedFrame::Array(all.into_iter().map(OwnedFrame::Integer).collect())
        }
        Output::Rejected(Rejection::NotAnInteger) => not_an_integer(),
        Output::Rejected(Rejection::Overflow) => error("ERR increment or decrement would overflow"),
        Output::Rejected(Rejection::ReadTooLarge { bytes_max }) => error(format!(
            "ERR reply too large: the transaction's reads passed {bytes_max} bytes"
        )),
        Output::Rejected(Rejection::NoSuchKey) => error("ERR no such key"),
        Output::Rejected(Rejection::NotAFloat) => error("ERR value is not a valid float"),
        Output::Rejected(Rejection::FloatOutOfRange) => {
            error("ERR increment would produce NaN or Infinity")
        }
        Output::Rejected(Rejection::WrongType) => wrong_type(),
        Output::Rejected(Rejection::HashNotAnInteger) => error("ERR hash value is not an integer"),
        Output::Rejected(Rejection::HashNotAFloat) => error("ERR hash value is not a float"),
        Output::Rejected(Rejection::IndexOutOfRange) => error("ERR index out of range"),
        Output::Rejected(Rejection::ScoreNaN) => error("ERR resulting score is not a number (NaN)"),
        Output::Rejected(Rejection::StreamIdTooSmall) => error(
            "ERR The ID specified in XADD is equal or smaller than the target stream top item",
        ),
        Output::Rejected(Rejection::NoStream) => error(
            "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.",
        ),
        Output::Rejected(Rejection::GroupExists) => {
            error("BUSYGROUP Consumer Group name already exists")
        }
        Output::Rejected(Rejection::NoGroup { .. }) => error("NOGROUP No such consumer group"),
        Output::Rejected(Rejection::InvalidStreamId) => {
            error("ERR Invalid stream ID specified as stream command argument")
        }
        Output::Rejected(Rejection::NotHll) => {
            error("WRONGTYPE Key is not a valid HyperLogLog string value.")
        }
        Output::Rejected(Rejection::CorruptHll) => {
            error("INVALIDOBJ Corrupted HLL object detected")
        }
        Output::Script(items) => script_reply(&items),
        Output::Rejected(Rejection::NoGeoMember) => {
            error("ERR could not decode requested zset member")
        }
        Output::Rejected(Rejection::StreamExhausted) => {
            error("ERR The stream has exhausted the last possible ID, unable to add more items")
        }
        Output::StreamId(id) => id.map_or(OwnedFrame::Null, |id| bulk(id.to_string().into_bytes())),
        Output::Rejected(Rejection::TooLong { len_max }) => error(format!(
            "ERR string exceeds maximum allowed size ({len_max} bytes, the request limit)"
        )),
        other => error(format!("ERR unexpected apply result {other:?}")),
    }
}

/// The reply to `HSCAN` or `SSCAN`: the cursor 0 and every field (with its value, unless
/// `NOVALUES`) or member that matches, from `output`, the collection read whole.
fn scan_reply(output: Output, request: &CollectionScan) -> OwnedFrame {
    let Output::Values(flat) = output else {
        return output_reply(output);
    };
    let mut items = Vec::with_capacity(flat.len());
    let mut flat = flat.into_iter().flatten();
    while let Some(name) = flat.next() {
        let value = if request.pairs { flat.next() } else { None };
        if request
            .pattern
            .as_ref()
            .is_none_or(|p| glob::matches(p, &name))
        {
            items.push(bulk(name));
            if let Some(value) = value.filter(|_| !request.no_values) {
                items.push(bulk(value));
            }
        }
    }
    OwnedFrame::Array(vec![bulk(b"0".to_vec()), OwnedFrame::Array(items)])
}

/// The reply to `SRANDMEMBER` or `HRANDFIELD` over `flat`, a set's members or a hash's
/// fields and values one after the other: without a count, one member or field, or
/// null; with a positive one, that many distinct entries at most; with a negative one,
/// that many, repeats allowed. The reply may take at most `bytes_max` bytes of entries
/// (counting 8 more for each, so that many empty ones cannot pass it either).
fn random_entries(flat: Vec<Vec<u8>>, pick: RandomPick, bytes_max: usize) -> Reply {
    let group = if pick.hash { 2 } else { 1 };
    let len = flat.len() / group;
    let mut random = set::Random::new(random_seed());
    let Some(count) = pick.count else {
        return Reply::Frame(match len {
            0 => OwnedFrame::Null,
            len => bulk(flat[random.below(len) * group].clone()),
        });
    };
    let wanted = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
    let mut places = Vec::new();
    if count >= 0 {
        // A partial shuffle: the first `wanted` places, each drawn from what is left.
        let mut order: Vec<usize> = (0..len).collect();
        for i in 0..wanted.min(len) {
            let j = i + random.below(len - i);
            order.swap(i, j);
            places.push(order[i]);
        }
    } else if len > 0 {
        let mut bytes: usize = 0;
        while places.len() < wanted {
            let at = random.below(len);
            let size: usize = flat[at * group..(at + 1) * group]
                .iter()
                .map(Vec::len)
                .sum();
            bytes = bytes.saturating_add(size + 8);
            if bytes > bytes_max {
                return Reply::Frame(store_error(&StoreError::ReadTooLarge { bytes_max }));
            }
            places.push(at);
        }
    }
    if pick.with_values {
        // A sorted set's scores are doubles; a hash's values are strings.
        let value = |bytes: &[u8]| {
            if pick.zset {
                Reply::Double(String::from_utf8_lossy(bytes).into_owned())
            } else {
                Reply::Frame(bulk(bytes.to_vec()))
            }
        };
        let pairs = places.into_iter().map(|at| {
            (
                Reply::Frame(bulk(flat[2 * at].clone())),
                value(&flat[2 * at + 1]),
            )
        });
        return Reply::Pairs(pairs.collect());
    }
    Reply::Frame(OwnedFrame::Array(
        places
            .into_iter()
            .map(|at| bulk(flat[at * group].clone()))
            .collect(),
    ))
}

/// A seed for the random choices a node makes: `SRANDMEMBER`'s, and `SPOP`'s, which it
/// proposes so that every replica makes the same.
fn random_seed() -> u64 {
    use std::hash::BuildHasher;
    static CALLS: AtomicU64 = AtomicU64::new(0);
    std::collections::hash_map::RandomState::new().hash_one(CALLS.fetch_add(1, Ordering::Relaxed))
}

/// How a hash read's output is shaped: `HGETALL`'s as a map.
fn hash_shape(read: &HashRead) -> Answer {
    match read {
        HashRead::GetAll => Answer::Map,
        _ => Answer::AsIs,
    }
}

/// How a set read's output is shaped: `SMEMBERS`'s as a set.
fn set_shape(read: &SetRead) -> Answer {
    match read {
        SetRead::Members => Answer::Set,
        _ => Answer::AsIs,
    }
}

/// Locks `mutex`; a panic elsewhere while it was held leaves the cursors usable.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Forgets the keys `WATCH`ed, and returns them.
fn unwatch(session: &mut Session) -> Vec<Watched> {
    session.watched_bytes = 0;
    std::mem::take(&mut session.watched)
}

/// `CLIENT SETNAME name | GETNAME | ID | SETINFO LIB-NAME|LIB-VER value | INFO | LIST
/// [TYPE type] [ID id ...] | KILL addr | KILL filter value ...`.
fn client(session: &mut Session, clients: &Clients, args: &[Vec<u8>]) -> OwnedFrame {
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    let arity_ok = match sub.as_str() {
        "setname" => args.len() == 3,
        "getname" | "id" | "info" => args.len() == 2,
        "setinfo" => args.len() == 4,
        "list" => true,
        "kill" => args.len() >= 3,
        _ => {
            return error(format!(
                "ERR unknown subcommand '{}'. Try CLIENT HELP.",
                String::from_utf8_lossy(&args[1])
            ));
        }
    };
    if !arity_ok {
        return wrong_arity(&format!("client|{sub}"));
    }
    let client = &session.client;
    match sub.as_str() {
        "setname" => set_client_name(session, &args[2]).map_or_else(|refused| refused, |()| ok()),
        "getname" => client.name().map_or(OwnedFrame::Null, bulk),
        "id" => OwnedFrame::Integer(i64::try_from(client.id).unwrap_or(i64::MAX)),
        "info" => bulk(clients.info(client.id, command_name).into_bytes()),
        "list" => match parse_client_list(&args[2..]) {
            Ok(Some(ids)) => bulk(clients.list(&ids, command_name).into_bytes()),
            Ok(None) => bulk(Vec::new()),
            Err(refused) => refused,
        },
        "kill" => client_kill(clients, client.id, &args[2..]),
        _ => {
            let which = if args[2].eq_ignore_ascii_case(b"lib-name") {
                Lib::Name
            } else if args[2].eq_ignore_ascii_case(b"lib-ver") {
                Lib::Version
            } else {
                return error(format!(
                    "ERR Unrecognized option '{}'",
                    String::from_utf8_lossy(&args[2])
                ));
            };
            if !is_client_name(&args[3]) {
                return error(format!(
                    "ERR {} cannot contain spaces, newlines or special characters.",
                    String::from_utf8_lossy(&args[2]).to_ascii_lowercase()
                ));
            }
            client.set_lib(which, &args[3]);
            ok()
        }
    }
}

/// `CLIENT LIST [TYPE type] [ID id ...]`: the ids asked for (none: every connection), or
/// `None` for a type no connection here has (every one is a normal client).
fn parse_client_list(args: &[Vec<u8>]) -> Result<Option<Vec<u64>>, OwnedFrame> {
    match args {
        [] => Ok(Some(Vec::new())),
        [option, kind] if option.eq_ignore_ascii_case(b"type") => {
            client_type(kind).map(|normal| normal.then(Vec::new))
        }
        [option, ids @ ..] if option.eq_ignore_ascii_case(b"id") && !ids.is_empty() => ids
            .iter()
            .map(|id| {
                parse_integer(id)
                    .and_then(|id| u64::try_from(id).ok())
                    .filter(|&id| id > 0)
                    .ok_or_else(|| error("ERR Invalid client ID"))
            })
            .collect::<Result<Vec<u64>, _>>()
            .map(Some),
        _ => Err(syntax_error()),
    }
}

/// Whether a `TYPE` names normal clients (`false`: replicas, a primary or Pub/Sub
/// clients, of which a node has none).
fn client_type(kind: &[u8]) -> Result<bool, OwnedFrame> {
    match kind.to_ascii_lowercase().as_slice() {
        b"normal" => Ok(true),
        b"master" | b"replica" | b"slave" | b"pubsub" => Ok(false),
        _ => Err(error(format!(
            "ERR Unknown client type '{}'",
            String::from_utf8_lossy(kind)
        ))),
    }
}

/// `CLIENT KILL ip:port` (`OK`, sparing no one) or `CLIENT KILL filter value ...` (how
/// many were told to close; the asking connection is spared unless `SKIPME no`).
fn client_kill(clients: &Clients, caller: u64, args: &[Vec<u8>]) -> OwnedFrame {
    if let [addr] = args {
        let filter = KillFilter {
            addr: Some(String::from_utf8_lossy(addr).into_owned()),
            ..KillFilter::default()
        };
        return match clients.kill(&filter, caller) {
            0 => error("ERR No such client"),
            _ => ok(),
        };
    }
    let mut filter = KillFilter {
        skip_me: true,
        ..KillFilter::default()
    };
    for pair in args.chunks(2) {
        let [option, value] = pair else {
            return syntax_error();
        };
        let text = || String::from_utf8_lossy(value).into_owned();
        match option.to_ascii_lowercase().as_slice() {
            b"id" => match parse_integer(value).and_then(|id| u64::try_from(id).ok()) {
                Some(id) if id > 0 => filter.ids.push(id),
                _ => return error("ERR client-id should be greater than 0"),
            },
            b"addr" => filter.addr = Some(text()),
            b"laddr" => filter.laddr = Some(text()),
            b"type" => match client_type(value) {
                Ok(normal) => filter.none |= !normal,
                Err(refused) => return refused,
            },
            b"user" if value.as_slice() == b"default" => {}
            b"user" => return error(format!("ERR No such user '{}'", text())),
            b"skipme" => match value.to_ascii_lowercase().as_slice() {
                b"yes" => filter.skip_me = true,
                b"no" => filter.skip_me = false,
                _ => return syntax_error(),
            },
            b"maxage" => match parse_integer(value).and_then(|s| u64::try_from(s).ok()) {
                Some(seconds) => filter.max_age = Some(Duration::from_secs(seconds)),
                None => return not_an_integer(),
            },
            _ => return syntax_error(),
        }
    }
    OwnedFrame::Integer(i64::try_from(clients.kill(&filter, caller)).unwrap_or(i64::MAX))
}

/// Whether `name` may name a client or its library: printable characters, no spaces.
fn is_client_name(name: &[u8]) -> bool {
    name.iter().all(|b| (b'!'..=b'~').contains(b))
}

/// Names the connection, as `CLIENT SETNAME` does: printable characters without spaces;
/// an empty name clears it.
fn set_client_name(session: &mut Session, name: &[u8]) -> Result<(), OwnedFrame> {
    if !is_client_name(name) {
        return Err(error(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    session.client.set_name(name);
    Ok(())
}

fn command_reply(args: &[Vec<u8>]) -> OwnedFrame {
    match args.get(1).map(|s| s.to_ascii_lowercase()).as_deref() {
        Some(b"count") => {
            OwnedFrame::Integer(i64::try_from(COMMANDS.len()).expect("a short table"))
        }
        // redis-cli asks for COMMAND DOCS at start-up; an empty answer means "no hints".
        _ => OwnedFrame::Array(Vec::new()),
    }
}

/// Compares secrets without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (x, y) in a.iter().zip(b.iter()) {
        diff |= x ^ y;
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client's connection probes after the configured silence, as Redis's does.
    #[tokio::test]
    async fn client_connections_get_tcp_keepalive() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (served, _) = listener.accept().await.unwrap();
        let socket = socket2::SockRef::from(&served);
        set_keepalive(&served, 0).unwrap();
        assert!(!socket.keepalive().unwrap());
        set_keepalive(&served, 120).unwrap();
        assert!(socket.keepalive().unwrap());
        #[cfg(target_os = "linux")]
        {
            assert_eq!(
                socket.tcp_keepalive_time().unwrap(),
                Duration::from_secs(120)
            );
            assert_eq!(
                socket.tcp_keepalive_interval().unwrap(),
                Duration::from_secs(40)
            );
            assert_eq!(socket.tcp_keepalive_retries().unwrap(), 3);
        }
        drop(client);
    }

    /// The code of each write error tells a client whether asking again is safe.
    #[test]
    fn write_errors_say_whether_a_retry_is_safe() {
        let code = |e: &ReplicaError| match replica_error(e) {
            OwnedFrame::Error(message) => message.split(' ').next().unwrap_or("").to_owned(),
            other => panic!("not an error: {other:?}"),
        };
        let reason = || "why".to_owned();
        let cases = [
            (
                ReplicaError::NotLeader {
                    leader_hint: Some(2),
                },
                "NOTLEADER",
            ),
            (ReplicaError::NotLeader { leader_hint: None }, "NOTLEADER"),
            (ReplicaError::Unavailable { reason: reason() }, "TRYAGAIN"),
            (ReplicaError::Timeout { waited_ms: 5 }, "TIMEOUT"),
            (ReplicaError::OutcomeUnknown { reason: reason() }, "UNKNOWN"),
            (ReplicaError::Refused { reason: reason() }, "ERR"),
            (ReplicaError::Unsupported { what: "MEET" }, "ERR"),
        ];
        for (e, expected) in cases {
            assert_eq!(code(&e), expected, "{e:?}");
        }
    }
}
