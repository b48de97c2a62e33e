//! The reference server's bytes: log commands, state-machine snapshots, RESP requests.

use std::net::SocketAddr;
use std::sync::Arc;

use aegis_cluster::runtime::StateMachine;
use aegis_node::resp::{self, FrameLimits};
use aegis_node::{
    AddressBook, Aggregate, BitOp, BitQuery, BitRange, ClaimTime, Command, ExpireCondition, Expiry,
    GroupOp, GroupRead, GroupStart, HashRead, Held, KvApplier, KvStateMachine, LexBound, ListRead,
    LogEntry, MPopFrom, NewId, RangeUnit, Score, ScoreBound, SetCondition, SetOp, SetRead,
    StreamId, StreamRead, Trim, TrimBy, TxOp, TxRead, Watched, ZAddOptions, ZRange, ZRangeBy,
    ZSetRead,
};
use aegis_node::{geo, hll};
use aegis_raft::LogIndex;

use crate::engine::Verdict;

fn sample_commands() -> Vec<Command> {
    vec![
        Command::Set {
            key: b"user:1".to_vec(),
            value: b"alice".to_vec(),
            expire_at_ms: None,
            condition: SetCondition::Always,
        },
        Command::Set {
            key: vec![0xFF; 130],
            value: vec![7; 300],
            expire_at_ms: Some(1_700_000_000_000),
            condition: SetCondition::IfAbsent,
        },
        Command::Set {
            key: b"k".to_vec(),
            value: Vec::new(),
            expire_at_ms: Some(u64::MAX),
            condition: SetCondition::IfPresent,
        },
        Command::Del {
            keys: vec![b"a".to_vec(), b"bb".to_vec(), b"ccc".to_vec()],
        },
        Command::IncrBy {
            key: b"counter".to_vec(),
            delta: i64::MIN,
        },
        Command::MSet {
            pairs: vec![
                (b"x".to_vec(), b"1".to_vec()),
                (b"y".to_vec(), vec![b'2'; 200]),
            ],
        },
        Command::PurgeExpired { batch_max: 1000 },
        Command::Meet {
            id: 3,
            address: "127.0.0.1:7003".to_owned(),
        },
        Command::Meet {
            id: u64::MAX,
            address: "[::1]:65535".to_owned(),
        },
        Command::SetWith {
            key: b"user:1".to_vec(),
            value: b"bob".to_vec(),
            expiry: Expiry::Keep,
            condition: SetCondition::IfPresent,
            get: true,
        },
        Command::SetWith {
            key: b"k".to_vec(),
            value: Vec::new(),
            expiry: Expiry::At(1_700_000_000_000),
            condition: SetCondition::Always,
            get: true,
        },
        Command::Expire {
            key: b"user:1".to_vec(),
            expire_at_ms: 1_700_000_000_000,
            condition: ExpireCondition::IfSomeAndSooner,
        },
        Command::Persist {
            key: b"user:1".to_vec(),
        },
        Command::GetDel {
            key: b"user:1".to_vec(),
        },
        Command::GetEx {
            key: b"user:1".to_vec(),
            expiry: Expiry::Clear,
        },
        Command::Append {
            key: b"log".to_vec(),
            value: vec![b'x'; 40],
            len_max: 16 * 1024 * 1024,
        },
        Command::MSetNx {
            pairs: vec![(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), Vec::new())],
        },
        Command::FlushAll,
        Command::Rename {
            from: b"tmp:1".to_vec(),
            to: b"user:1".to_vec(),
            if_absent: false,
        },
        Command::Copy {
            from: b"user:1".to_vec(),
            to: b"user:2".to_vec(),
            replace: true,
        },
        Command::SetRange {
            key: b"bits".to_vec(),
            offset: 1_000,
            value: b"xyz".to_vec(),
            len_max: 16 * 1024 * 1024,
        },
        Command::IncrByFloat {
            key: b"price".to_vec(),
            increment: b"-1.25e-3".to_vec(),
        },
        Command::SetBit {
            key: b"seen".to_vec(),
            offset: 1_000_003,
            on: true,
        },
        Command::BitOp {
            op: BitOp::Xor,
            dest: b"diff".to_vec(),
            keys: vec![b"seen".to_vec(), b"seen:old".to_vec()],
        },
        Command::HSet {
            key: b"user:9".to_vec(),
            pairs: vec![
                (b"name".to_vec(), b"ada".to_vec()),
                (b"visits".to_vec(), b"7".to_vec()),
            ],
            if_absent: false,
        },
        Command::HDel {
            key: b"user:9".to_vec(),
            fields: vec![b"name".to_vec(), Vec::new()],
        },
        Command::HIncrBy {
            key: b"user:9".to_vec(),
            field: b"visits".to_vec(),
            delta: -3,
        },
        Command::HIncrByFloat {
            key: b"user:9".to_vec(),
            field: b"score".to_vec(),
            increment: b"2.5e1".to_vec(),
        },
        Command::Push {
            key: b"recent".to_vec(),
            items: vec![b"job:1".to_vec(), b"job:2".to_vec()],
            front: true,
            if_exists: false,
        },
        Command::Pop {
            key: b"recent".to_vec(),
            front: false,
            count: Some(2),
        },
        Command::LSet {
            key: b"recent".to_vec(),
            index: -1,
            item: b"job:3".to_vec(),
        },
        Command::LRem {
            key: b"recent".to_vec(),
            count: -2,
            item: b"job:1".to_vec(),
        },
        Command::LTrim {
            key: b"recent".to_vec(),
            start: 0,
            stop: 99,
        },
        Command::LInsert {
            key: b"recent".to_vec(),
            before: false,
            pivot: b"job:2".to_vec(),
            item: b"job:4".to_vec(),
        },
        Command::LMove {
            from: b"recent".to_vec(),
            to: b"done".to_vec(),
            from_front: false,
            to_front: true,
        },
        Command::Transaction {
            ops: vec![TxOp::Read(TxRead::List {
                key: b"recent".to_vec(),
                read: ListRead::Pos {
                    item: b"job:2".to_vec(),
                    rank: -1,
                    count: Some(0),
                    max_len: 10,
                },
            })],
            read_bytes_max: 1024,
            watched: Vec::new(),
        },
        Command::SAdd {
            key: b"tags".to_vec(),
            members: vec![b"red".to_vec(), b"blue".to_vec(), Vec::new()],
        },
        Command::ZAdd {
            key: b"board".to_vec(),
            entries: vec![
                (score(10.5), b"ann".to_vec()),
                (score(f64::NEG_INFINITY), b"bo".to_vec()),
                (score(3.0), Vec::new()),
            ],
            options: ZAddOptions {
                changed: true,
                ..ZAddOptions::default()
            },
        },
        Command::ZAdd {
            key: b"board".to_vec(),
            entries: vec![(score(-2.25), b"ann".to_vec())],
            options: ZAddOptions {
                incr: true,
                greater: true,
                only_existing: true,
                ..ZAddOptions::default()
            },
        },
        Command::ZRem {
            key: b"board".to_vec(),
            members: vec![b"bo".to_vec(), b"cy".to_vec()],
        },
        Command::ZPop {
            key: b"board".to_vec(),
            max: true,
            count: 2,
        },
        Command::ZRemRange {
            key: b"board".to_vec(),
            by: ZRangeBy::Lex {
                min: LexBound::Inclusive(b"a".to_vec()),
                max: LexBound::Exclusive(b"b".to_vec()),
            },
        },
        Command::ZRemRange {
            key: b"board".to_vec(),
            by: ZRangeBy::Score {
                min: ScoreBound {
                    score: score(1.0),
                    exclusive: true,
                },
                max: ScoreBound {
                    score: score(f64::INFINITY),
                    exclusive: false,
                },
            },
        },
        Command::Publish {
            channel: b"events".to_vec(),
            message: vec![0, 255, b'x'],
        },
        Command::MPop {
            keys: vec![b"nothing".to_vec(), b"recent".to_vec()],
            from: MPopFrom::List { front: false },
            count: 2,
        },
        Command::MPop {
            keys: vec![b"board".to_vec()],
            from: MPopFrom::ZSet { max: true },
            count: 1,
        },
        Command::XAdd {
            key: b"events".to_vec(),
            id: NewId::Exact(StreamId {
                ms: 1_700_000_000_000,
                seq: 3,
            }),
            fields: vec![
                b"type".to_vec(),
                b"login".to_vec(),
                b"user".to_vec(),
                Vec::new(),
            ],
            no_mkstream: false,
            trim: Some(Trim {
                by: TrimBy::MinId(StreamId { ms: 5, seq: 0 }),
                limit: 100,
            }),
        },
        Command::XAdd {
            key: b"events".to_vec(),
            id: NewId::Auto,
            fields: vec![b"type".to_vec(), vec![0, 255]],
            no_mkstream: true,
            trim: Some(Trim {
                by: TrimBy::MaxLen(1_000),
                limit: 0,
            }),
        },
        Command::XAdd {
            key: b"events".to_vec(),
            id: NewId::AutoSeq(u64::MAX),
            fields: vec![b"f".to_vec(), b"v".to_vec()],
            no_mkstream: false,
            trim: None,
        },
        Command::XDel {
            key: b"events".to_vec(),
            ids: vec![
                StreamId {
                    ms: 1_700_000_000_000,
                    seq: 3,
                },
                StreamId::MAX,
            ],
            bad_id: false,
        },
        Command::XDel {
            key: b"events".to_vec(),
            ids: Vec::new(),
            bad_id: true,
        },
        Command::XTrim {
            key: b"events".to_vec(),
            trim: Trim {
                by: TrimBy::MaxLen(0),
                limit: 2,
            },
        },
        Command::XGroup {
            key: b"events".to_vec(),
            group: b"workers".to_vec(),
            op: GroupOp::Create {
                start: Some(GroupStart::Last),
                mkstream: true,
            },
        },
        Command::XGroup {
            key: b"events".to_vec(),
            group: b"workers".to_vec(),
            op: GroupOp::DelConsumer {
                consumer: b"ann".to_vec(),
            },
        },
        Command::XReadGroup {
            group: b"workers".to_vec(),
            consumer: b"ann".to_vec(),
            reads: vec![
                GroupRead {
                    key: b"events".to_vec(),
                    after: None,
                },
                GroupRead {
                    key: b"other".to_vec(),
                    after: Some(StreamId { ms: 1, seq: 0 }),
                },
            ],
            count: 10,
            no_ack: false,
        },
        Command::XAck {
            key: b"events".to_vec(),
            group: b"workers".to_vec(),
            ids: vec![StreamId { ms: 1, seq: 0 }],
            bad_id: true,
        },
        Command::XClaim {
            key: b"events".to_vec(),
            group: b"workers".to_vec(),
            consumer: b"bob".to_vec(),
            min_idle_ms: 10,
            ids: vec![StreamId { ms: 1, seq: 0 }, StreamId { ms: 2, seq: 0 }],
            delivered: Some(ClaimTime::Idle(5)),
            retry_count: Some(3),
            force: true,
            just_id: false,
            last_id: Some(StreamId { ms: 9, seq: 0 }),
        },
        Command::Eval {
            script: b"return redis.call('INCR', KEYS[1])".to_vec(),
            keys: vec![b"counter".to_vec()],
            args: vec![b"1".to_vec(), Vec::new()],
            read_only: false,
        },
        Command::PfAdd {
            key: b"visitors".to_vec(),
            elements: vec![b"a".to_vec(), Vec::new()],
        },
        Command::PfMerge {
            dest: b"all".to_vec(),
            sources: vec![b"visitors".to_vec(), b"other".to_vec()],
        },
        Command::GeoStore {
            dest: b"near".to_vec(),
            source: b"places".to_vec(),
            search: geo::Search {
                center: geo::Center::At {
                    lon: score(13.4),
                    lat: score(-85.0),
                },
                shape: geo::Shape::Box {
                    width: score(100.0),
                    height: score(0.5),
                },
                unit: geo::Unit::Miles,
                order: geo::Order::Farthest,
                count: 3,
                any: true,
            },
            store_dist: true,
        },
        Command::XAutoClaim {
            key: b"events".to_vec(),
            group: b"workers".to_vec(),
            consumer: b"bob".to_vec(),
            min_idle_ms: 0,
            start: StreamId::MIN,
            count: 100,
            just_id: true,
        },
        Command::Transaction {
            ops: vec![
                TxOp::Write(Command::XAdd {
                    key: b"events".to_vec(),
                    id: NewId::Auto,
                    fields: vec![b"k".to_vec(), b"v".to_vec()],
                    no_mkstream: false,
                    trim: None,
                }),
                TxOp::Read(TxRead::Stream {
                    key: b"events".to_vec(),
                    read: StreamRead::Range {
                        start: StreamId::MIN,
                        end: StreamId::MAX,
                        count: Some(10),
                        rev: true,
                    },
                }),
                TxOp::Read(TxRead::Stream {
                    key: b"events".to_vec(),
                    read: StreamRead::Len,
                }),
                TxOp::Read(TxRead::Stream {
                    key: b"events".to_vec(),
                    read: StreamRead::LastId,
                }),
                TxOp::Read(TxRead::XRead {
                    after: vec![
                        (b"events".to_vec(), StreamId { ms: 5, seq: 0 }),
                        (b"other".to_vec(), StreamId::MIN),
                    ],
                    count: 5,
                }),
            ],
            read_bytes_max: 1024,
            watched: Vec::new(),
        },
        Command::ZStore {
            op: SetOp::Inter,
            dest: b"board:top".to_vec(),
            keys: vec![b"board".to_vec(), b"tags".to_vec()],
            weights: vec![score(2.0), score(f64::INFINITY)],
            aggregate: Aggregate::Min,
        },
        Command::ZRangeStore {
            dest: b"board:low".to_vec(),
            source: b"board".to_vec(),
            range: ZRange {
                by: ZRangeBy::Lex {
                    min: LexBound::Min,
                    max: LexBound::Inclusive(b"m".to_vec()),
                },
                rev: true,
                limit: Some((1, -1)),
            },
        },
        Command::Transaction {
            ops: vec![
                TxOp::Read(TxRead::ZCombine {
                    op: SetOp::Union,
                    keys: vec![b"board".to_vec(), b"board:low".to_vec()],
                    weights: Vec::new(),
                    aggregate: Aggregate::Sum,
                    with_scores: true,
                }),
                TxOp::Read(TxRead::ZInterCard {
                    keys: vec![b"board".to_vec()],
                    limit: 2,
                }),
            ],
            read_bytes_max: 1024,
            watched: Vec::new(),
        },
        Command::Transaction {
            ops: vec![TxOp::Read(TxRead::ZSet {
                key: b"board".to_vec(),
                read: ZSetRead::Range {
                    range: ZRange {
                        by: ZRangeBy::Rank { start: 0, stop: -1 },
                        rev: true,
                        limit: None,
                    },
                    with_scores: true,
                },
            })],
            read_bytes_max: 1024,
            watched: Vec::new(),
        },
        Command::SRem {
            key: b"tags".to_vec(),
            members: vec![b"red".to_vec()],
        },
        Command::SMove {
            from: b"tags".to_vec(),
            to: b"tags:old".to_vec(),
            member: b"blue".to_vec(),
        },
        Command::SPop {
            key: b"tags".to_vec(),
            count: Some(3),
            seed: 0x5eed,
        },
        Command::SetStore {
            op: SetOp::Inter,
            dest: b"both".to_vec(),
            keys: vec![b"tags".to_vec(), b"tags:old".to_vec()],
        },
        Command::Transaction {
            ops: vec![
                TxOp::Read(TxRead::Set {
                    key: b"tags".to_vec(),
                    read: SetRead::MIsMember {
                        members: vec![b"red".to_vec(), b"green".to_vec()],
                    },
                }),
                TxOp::Read(TxRead::SetCombine {
                    op: SetOp::Diff,
                    keys: vec![b"tags".to_vec(), b"tags:old".to_vec()],
                }),
                TxOp::Read(TxRead::SetInterCard {
                    keys: vec![b"tags".to_vec()],
                    limit: 10,
                }),
            ],
            read_bytes_max: 1024,
            watched: Vec::new(),
        },
        Command::Transaction {
            ops: vec![
                TxOp::Write(Command::HSet {
                    key: b"user:9".to_vec(),
                    pairs: vec![(b"lang".to_vec(), b"rust".to_vec())],
                    if_absent: true,
                }),
                TxOp::Read(TxRead::Hash {
                    key: b"user:9".to_vec(),
                    read: HashRead::MGet {
                        fields: vec![b"lang".to_vec(), b"name".to_vec()],
                    },
                }),
                TxOp::Read(TxRead::Hash {
                    key: b"user:9".to_vec(),
                    read: HashRead::GetAll,
                }),
            ],
            read_bytes_max: 1024,
            watched: Vec::new(),
        },
        Command::Transaction {
            ops: vec![
                TxOp::Write(Command::IncrBy {
                    key: b"counter".to_vec(),
                    delta: 1,
                }),
                TxOp::Read(TxRead::MGet {
                    keys: vec![b"counter".to_vec(), b"user:1".to_vec()],
                }),
                TxOp::Read(TxRead::Ttl {
                    key: b"user:1".to_vec(),
                    in_ms: true,
                }),
                TxOp::Read(TxRead::GetRange {
                    key: b"user:1".to_vec(),
                    start: -5,
                    end: -1,
                }),
                TxOp::Read(TxRead::Type {
                    key: b"user:1".to_vec(),
                }),
                TxOp::Read(TxRead::ExpireTime {
                    key: b"user:1".to_vec(),
                    in_ms: false,
                }),
                TxOp::Read(TxRead::Bits {
                    key: b"seen".to_vec(),
                    query: BitQuery::Pos {
                        bit: false,
                        range: Some(BitRange {
                            start: 2,
                            end: Some(-1),
                            unit: RangeUnit::Bit,
                        }),
                    },
                }),
            ],
            read_bytes_max: 64 * 1024 * 1024,
            watched: vec![
                Watched {
                    key: b"counter".to_vec(),
                    held: Some(Held {
                        value: b"41".to_vec(),
                        expire_at_ms: None,
                    }),
                },
                Watched {
                    key: b"gone".to_vec(),
                    held: None,
                },
            ],
        },
    ]
}

pub(crate) fn command_seeds() -> Vec<Vec<u8>> {
    let commands = sample_commands();
    let mut seeds: Vec<Vec<u8>> = commands.iter().map(Command::encode).collect();
    seeds.extend(commands.into_iter().enumerate().map(|(i, command)| {
        LogEntry {
            now_ms: 1_700_000_000_000 + i as u64 * 1_000_003,
            command,
        }
        .encode()
    }));
    seeds
}

/// `Command::decode` and `LogEntry::decode` on the same bytes, with round trips.
pub(crate) fn command_run(input: &[u8]) -> Verdict {
    let mut verdict = Verdict::Rejected;
    if let Ok(command) = Command::decode(input) {
        let again = Command::decode(&command.encode()).expect("a re-encoded command decodes");
        assert_eq!(again, command, "command changed in a round trip");
        verdict = Verdict::Accepted;
    }
    if let Ok(entry) = LogEntry::decode(input) {
        let again = LogEntry::decode(&entry.encode()).expect("a re-encoded entry decodes");
        assert_eq!(again, entry, "log entry changed in a round trip");
        verdict = Verdict::Accepted;
    }
    verdict
}

pub(crate) fn hll_seeds() -> Vec<Vec<u8>> {
    let mut seeds = vec![hll::empty()];
    let mut value = hll::empty();
    for n in 0..3000u32 {
        hll::add(&mut value, &n.to_le_bytes()).expect("a sketch made here is whole");
        if matches!(n, 0 | 10 | 200 | 2999) {
            seeds.push(value.clone());
        }
    }
    // Runs that cover one register too many.
    let mut damaged = hll::empty();
    damaged.push(0);
    seeds.push(damaged);
    seeds
}

/// A HyperLogLog a client wrote with `SET`: counting it and merging it agree on whether
/// it is damaged and on its count; an add either keeps it whole and lowers no register,
/// or is refused and changes nothing.
pub(crate) fn hll_run(input: &[u8]) -> Verdict {
    if hll::check(input).is_err() {
        return Verdict::Rejected;
    }
    let mut stale = input.to_vec();
    hll::invalidate(&mut stale);
    let counted = hll::count(&stale);
    let mut before = hll::Registers::default();
    let merged = before.merge(input);
    assert_eq!(
        counted.is_ok(),
        merged.is_ok(),
        "count and merge disagree on damage"
    );
    if let Ok(count) = counted {
        assert_eq!(count, before.count(), "a sketch counts as its registers do");
    }
    let mut added = input.to_vec();
    match hll::add(&mut added, b"fuzz") {
        Ok(_) => {
            hll::check(&added).expect("an add keeps a HyperLogLog");
            let mut after = hll::Registers::default();
            if merged.is_ok() {
                after
                    .merge(&added)
                    .expect("an add to a whole sketch keeps it whole");
                let raised = after.values().iter().zip(before.values());
                assert!(
                    raised.into_iter().all(|(a, b)| a >= b),
                    "an add lowered a register"
                );
            }
        }
        Err(_) => assert_eq!(added, input, "a refused add changed the value"),
    }
    Verdict::Accepted
}

/// Snapshot layout constants (see `aegis_node::snapshot`): a chunk is
/// `magic | version | kind | seq u32 | payload_len u32 | payload | crc32c u32`.
const CHUNK_HEAD_BYTES: usize = 14;
const CHUNK_CRC_BYTES: usize = 4;
/// The address section `"AGKA" | version | body_len u32 | body` some snapshots start with.
const ADDRESSES_MAGIC: &[u8; 4] = b"AGKA";
const ADDRESSES_HEAD_BYTES: usize = 9;

/// A sorted set's score; never NaN here.
fn score(value: f64) -> Score {
    Score::new(value).expect("not a NaN")
}

/// A store of `keys` keys, some expiring, applied up to index `keys`.
fn populated(keys: u64) -> KvStateMachine {
    let store = KvStateMachine::in_memory().expect("an in-memory store opens");
    let mut index = 0;
    for i in 0..keys {
        let command = Command::Set {
            key: format!("key:{i:03}").into_bytes(),
            value: vec![b'v'; (i as usize * 37) % 90],
            expire_at_ms: (i % 3 == 0).then_some(1_000 + i),
            condition: SetCondition::Always,
        };
        // Hashes, sets, lists, sorted sets and streams among the strings, so that
        // snapshots carry every kind.
        let key = format!("key:{i:03}").into_bytes();
        let command = match i % 4 {
            1 => Command::HSet {
                key,
                pairs: vec![(b"f".to_vec(), vec![b'v'; i as usize % 20])],
                if_absent: false,
            },
            2 if i % 8 == 6 => Command::XAdd {
                key,
                id: NewId::Exact(StreamId { ms: i, seq: 1 }),
                fields: vec![b"f".to_vec(), vec![b'x'; i as usize % 20]],
                no_mkstream: false,
                trim: None,
            },
            2 => Command::SAdd {
                key,
                members: vec![b"m".to_vec(), vec![b'n'; i as usize % 20]],
            },
            3 if i % 8 == 3 => Command::Push {
                key,
                items: vec![b"i".to_vec(), vec![b'j'; i as usize % 20]],
                front: false,
                if_exists: false,
            },
            3 => Command::ZAdd {
                key,
                entries: vec![
                    (score(i as f64), b"z".to_vec()),
                    (score(-0.5), vec![b'y'; i as usize % 20]),
                ],
                options: ZAddOptions::default(),
            },
            _ => command,
        };
        index += 1;
        store.apply(index, &command, 0).expect("applies");
        // A consumer group with an entry pending on every stream.
        if i % 8 == 6 {
            let key = format!("key:{i:03}").into_bytes();
            for command in [
                Command::XGroup {
                    key: key.clone(),
                    group: b"g".to_vec(),
                    op: GroupOp::Create {
                        start: Some(GroupStart::At(StreamId::MIN)),
                        mkstream: false,
                    },
                },
                Command::XReadGroup {
                    group: b"g".to_vec(),
                    consumer: b"c".to_vec(),
                    reads: vec![GroupRead { key, after: None }],
                    count: 0,
                    no_ack: false,
                },
            ] {
                index += 1;
                store.apply(index, &command, 0).expect("applies");
            }
        }
    }
    store
}

pub(crate) fn snapshot_seeds() -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let peers: Vec<(u64, SocketAddr)> = vec![
        (1, "127.0.0.1:7001".parse().expect("an address")),
        (2, "[::1]:7002".parse().expect("an address")),
    ];
    let mut seeds = Vec::new();
    for (keys, chunk_bytes, with_book) in [
        (0, 64, false),
        (3, 64, false),
        (12, 200, false),
        (5, 100, true),
        (20, 4096, true),
    ] {
        let mut applier =
            KvApplier::new(Arc::new(populated(keys))).with_snapshot_chunk_bytes(chunk_bytes);
        if with_book {
            let book = AddressBook::open(
                dir.path().join(format!("peers-{keys}")),
                &peers,
                Arc::new(|_, _| {}),
            )
            .expect("a fresh address book opens");
            applier = applier.with_address_book(Arc::new(book));
        }
        seeds.push(applier.snapshot().expect("a snapshot").to_vec());
    }
    seeds
}

/// Where the store's chunks start: after the address section, if there is one whose
/// length fits.
fn chunks_start(input: &[u8]) -> usize {
    if !input.starts_with(ADDRESSES_MAGIC) || input.len() < ADDRESSES_HEAD_BYTES {
        return 0;
    }
    let len = u32::from_le_bytes(input[5..9].try_into().expect("four bytes")) as usize;
    (ADDRESSES_HEAD_BYTES + len).min(input.len())
}

/// Rewrites the CRC32C of every whole chunk.
pub(crate) fn snapshot_fixup(input: &mut [u8]) {
    let mut at = chunks_start(input);
    while let Some(head) = input.get(at..at + CHUNK_HEAD_BYTES) {
        let payload_len = u32::from_le_bytes(head[10..14].try_into().expect("four bytes"));
        let crc_at = at + CHUNK_HEAD_BYTES + payload_len as usize;
        if crc_at + CHUNK_CRC_BYTES > input.len() {
            break;
        }
        let crc = crc32c::crc32c(&input[at..crc_at]);
        input[crc_at..crc_at + CHUNK_CRC_BYTES].copy_from_slice(&crc.to_le_bytes());
        at = crc_at + CHUNK_CRC_BYTES;
    }
}

/// Restores the bytes into a fresh store through [`KvApplier`], at the index the
/// header claims (so a restore gets past the index check whenever the header is whole).
pub(crate) fn snapshot_run(input: &[u8]) -> Verdict {
    let start = chunks_start(input);
    let index = input
        .get(start + CHUNK_HEAD_BYTES..start + CHUNK_HEAD_BYTES + 8)
        .map_or(0, |b| {
            u64::from_le_bytes(b.try_into().expect("eight bytes"))
        });
    let store = Arc::new(KvStateMachine::in_memory().expect("an in-memory store opens"));
    let mut applier = KvApplier::new(Arc::clone(&store));
    match applier.restore(LogIndex(index), input) {
        Ok(()) => {
            assert_eq!(applier.applied_index(), LogIndex(index));
            assert_eq!(store.applied_index(), index);
            Verdict::Accepted
        }
        Err(e) => {
            assert_eq!(e.index, LogIndex(index), "the error names another index");
            Verdict::Rejected
        }
    }
}

/// The smallest limits the server's configuration allows, so inputs reach them.
const RESP_LIMITS: FrameLimits = FrameLimits {
    request_bytes_max: 1024,
    request_args_max: 8,
};

pub(crate) fn resp_seeds() -> Vec<Vec<u8>> {
    fn array(args: &[&[u8]]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        out
    }
    let big = vec![b'x'; 900];
    let mut pipeline = Vec::new();
    for i in 0..5 {
        pipeline.extend(array(&[b"SET", format!("key:{i}").as_bytes(), b"v"]));
        pipeline.extend(array(&[b"GET", format!("key:{i}").as_bytes()]));
    }
    let mut mixed = array(&[b"PING"]);
    mixed.extend_from_slice(b"GET user:1\r\n");
    mixed.extend(array(&[b"DEL", b"a", b"b", b"c"]));
    mixed.extend_from_slice(b"\r\n");
    vec![
        array(&[b"PING"]),
        array(&[b"SET", b"user:1", b"alice", b"EX", b"10"]),
        array(&[b"SET", b"big", &big]),
        array(&[b"SET", b"", b""]),
        b"*0\r\n".to_vec(),
        b"SET inline value\r\n".to_vec(),
        b"  PING  \n".to_vec(),
        pipeline,
        mixed,
    ]
}

/// Frames requests the way the server does until the buffer is used up or refused.
/// Accepted when every byte was framed into requests.
pub(crate) fn resp_run(input: &[u8]) -> Verdict {
    let mut rest = input;
    let mut requests = 0_usize;
    loop {
        match resp::next_request(rest, RESP_LIMITS) {
            Ok(Some(request)) => {
                assert!(
                    (1..=rest.len()).contains(&request.consumed),
                    "a request consumed {} of {} bytes",
                    request.consumed,
                    rest.len()
                );
                assert!(request.args.len() <= RESP_LIMITS.request_args_max);
                rest = &rest[request.consumed..];
                requests += 1;
            }
            Ok(None) => {
                // "Read more" must never mean buffering beyond the limit (a length
                // line of at most 24 bytes may come on top of a full request).
                let bound = if rest.first() == Some(&b'*') {
                    RESP_LIMITS.request_bytes_max + 32
                } else {
                    resp::INLINE_BYTES_MAX
                };
                assert!(
                    rest.len() <= bound,
                    "asked for more bytes with {} buffered",
                    rest.len()
                );
                break;
            }
            Err(_) => return Verdict::Rejected,
        }
    }
    if requests > 0 && rest.is_empty() {
        Verdict::Accepted
    } else {
        Verdict::Rejected
    }
}
