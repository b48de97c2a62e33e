//! The command encoding: round trips, version checks, and no panics on any bytes.

use aegis_node::command::{EXPIRE_AT_MS_MAX, FORMAT_VERSION, VALUE_BYTES_MAX};
use aegis_node::{
    Aggregate, BitOp, BitQuery, BitRange, ClaimTime, CodecError, Command, ExpireCondition, Expiry,
    GroupOp, GroupRead, GroupStart, HashRead, Held, LexBound, ListRead, LogEntry, MPopFrom, NewId,
    RangeUnit, Score, ScoreBound, SetCondition, SetOp, SetRead, StreamId, StreamRead, Trim, TrimBy,
    TxOp, TxRead, Watched, ZAddOptions, ZRange, ZRangeBy, ZSetRead,
};
use proptest::prelude::*;

use aegis_node::geo::{Center, Order, Search, Shape, Unit};

use crate::strategies::{
    aggregate, bit_op, bit_query, expire_condition, expiry, geo_search, group_op, group_read,
    hash_read, list_read, new_id, score, set_condition, set_op, set_read, stream_fields, stream_id,
    stream_read, trim, weights, zadd_options, zrange, zrange_by, zset_read,
};

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..24)
}

fn command() -> impl Strategy<Value = Command> {
    let tx_op = prop_oneof![
        plain_command()
            .prop_filter("not allowed in a transaction", |c| !matches!(
                c,
                Command::PurgeExpired { .. } | Command::Meet { .. } | Command::FlushAll
            ))
            .prop_map(TxOp::Write),
        bytes().prop_map(|key| TxOp::Read(TxRead::Get { key })),
        proptest::collection::vec(bytes(), 1..3).prop_map(|keys| TxOp::Read(TxRead::MGet { keys })),
        (bytes(), any::<bool>()).prop_map(|(key, in_ms)| TxOp::Read(TxRead::Ttl { key, in_ms })),
        (bytes(), any::<i64>(), any::<i64>())
            .prop_map(|(key, start, end)| TxOp::Read(TxRead::GetRange { key, start, end })),
        (bytes(), bit_query()).prop_map(|(key, query)| TxOp::Read(TxRead::Bits { key, query })),
        bytes().prop_map(|key| TxOp::Read(TxRead::Type { key })),
        (bytes(), any::<bool>())
            .prop_map(|(key, in_ms)| TxOp::Read(TxRead::ExpireTime { key, in_ms })),
        (bytes(), hash_read(bytes)).prop_map(|(key, read)| TxOp::Read(TxRead::Hash { key, read })),
        (bytes(), set_read(bytes)).prop_map(|(key, read)| TxOp::Read(TxRead::Set { key, read })),
        (bytes(), list_read(bytes)).prop_map(|(key, read)| TxOp::Read(TxRead::List { key, read })),
        (bytes(), zset_read(bytes)).prop_map(|(key, read)| TxOp::Read(TxRead::ZSet { key, read })),
        (set_op(), 1usize..4, aggregate(), any::<bool>())
            .prop_flat_map(|(op, n, aggregate, with_scores)| (
                proptest::collection::vec(bytes(), n),
                weights(n),
                Just((op, aggregate, with_scores)),
            ))
            .prop_map(|(keys, weights, (op, aggregate, with_scores))| TxOp::Read(
                TxRead::ZCombine {
                    op,
                    keys,
                    weights,
                    aggregate,
                    with_scores
                }
            )),
        (proptest::collection::vec(bytes(), 1..3), any::<u64>())
            .prop_map(|(keys, limit)| TxOp::Read(TxRead::ZInterCard { keys, limit })),
        (bytes(), stream_read()).prop_map(|(key, read)| TxOp::Read(TxRead::Stream { key, read })),
        (
            proptest::collection::vec((bytes(), stream_id()), 1..3),
            any::<u64>()
        )
            .prop_map(|(after, count)| TxOp::Read(TxRead::XRead { after, count })),
        proptest::collection::vec(bytes(), 1..3)
            .prop_map(|keys| TxOp::Read(TxRead::PfCount { keys })),
        (set_op(), proptest::collection::vec(bytes(), 1..3))
            .prop_map(|(op, keys)| TxOp::Read(TxRead::SetCombine { op, keys })),
        (proptest::collection::vec(bytes(), 1..3), any::<u64>())
            .prop_map(|(keys, limit)| TxOp::Read(TxRead::SetInterCard { keys, limit })),
    ];
    prop_oneof![
        8 => plain_command(),
        1 => (
            proptest::collection::vec(tx_op, 0..4),
            any::<u64>(),
            proptest::collection::vec(watched(), 0..3),
        )
            .prop_map(|(ops, read_bytes_max, watched)| Command::Transaction {
                ops,
                read_bytes_max,
                watched,
            }),
    ]
}

fn watched() -> impl Strategy<Value = Watched> {
    let held = (bytes(), any::<Option<u64>>()).prop_map(|(value, expire_at_ms)| Held {
        value,
        expire_at_ms,
    });
    (bytes(), proptest::option::of(held)).prop_map(|(key, held)| Watched { key, held })
}

/// A float as `INCRBYFLOAT` reads one.
fn float() -> impl Strategy<Value = Vec<u8>> {
    "[+-]?[0-9]{1,8}(\\.[0-9]{0,20})?([eE][+-]?[0-9]{1,3})?".prop_map(String::into_bytes)
}

/// Every command but a transaction.
fn plain_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        (bytes(), bytes(), any::<Option<u64>>(), set_condition()).prop_map(
            |(key, value, expire_at_ms, condition)| Command::Set {
                key,
                value,
                expire_at_ms,
                condition
            }
        ),
        proptest::collection::vec(bytes(), 1..4).prop_map(|keys| Command::Del { keys }),
        (bytes(), any::<i64>()).prop_map(|(key, delta)| Command::IncrBy { key, delta }),
        proptest::collection::vec((bytes(), bytes()), 1..4)
            .prop_map(|pairs| Command::MSet { pairs }),
        (1_u32..).prop_map(|batch_max| Command::PurgeExpired { batch_max }),
        (1_u64.., any::<std::net::SocketAddr>()).prop_map(|(id, address)| Command::Meet {
            id,
            address: address.to_string()
        }),
        (
            bytes(),
            bytes(),
            expiry(0..=EXPIRE_AT_MS_MAX),
            set_condition(),
            any::<bool>()
        )
            .prop_map(|(key, value, expiry, condition, get)| Command::SetWith {
                key,
                value,
                expiry,
                condition,
                get
            }),
        (bytes(), 0..=EXPIRE_AT_MS_MAX, expire_condition()).prop_map(
            |(key, expire_at_ms, condition)| Command::Expire {
                key,
                expire_at_ms,
                condition
            }
        ),
        bytes().prop_map(|key| Command::Persist { key }),
        bytes().prop_map(|key| Command::GetDel { key }),
        (bytes(), expiry(0..=EXPIRE_AT_MS_MAX))
            .prop_map(|(key, expiry)| Command::GetEx { key, expiry }),
        (bytes(), bytes(), any::<u64>()).prop_map(|(key, value, len_max)| Command::Append {
            key,
            value,
            len_max
        }),
        proptest::collection::vec((bytes(), bytes()), 1..4)
            .prop_map(|pairs| Command::MSetNx { pairs }),
        Just(Command::FlushAll),
        (bytes(), bytes(), any::<bool>()).prop_map(|(from, to, if_absent)| Command::Rename {
            from,
            to,
            if_absent
        }),
        (bytes(), bytes(), any::<bool>()).prop_map(|(from, to, replace)| Command::Copy {
            from,
            to,
            replace
        }),
        (bytes(), float()).prop_map(|(key, increment)| Command::IncrByFloat { key, increment }),
        (bytes(), 0..VALUE_BYTES_MAX * 8, any::<bool>())
            .prop_map(|(key, offset, on)| Command::SetBit { key, offset, on }),
        (bit_op(), bytes(), proptest::collection::vec(bytes(), 1..4)).prop_map(
            |(op, dest, mut keys)| {
                if op == BitOp::Not {
                    keys.truncate(1);
                }
                Command::BitOp { op, dest, keys }
            }
        ),
        (bytes(), any::<u64>(), bytes(), 0..=VALUE_BYTES_MAX).prop_map(
            |(key, offset, value, len_max)| Command::SetRange {
                key,
                offset,
                value,
                len_max
            }
        ),
        (
            bytes(),
            proptest::collection::vec((bytes(), bytes()), 1..4),
            any::<bool>()
        )
            .prop_map(|(key, mut pairs, if_absent)| {
                if if_absent {
                    pairs.truncate(1);
                }
                Command::HSet {
                    key,
                    pairs,
                    if_absent,
                }
            }),
        (bytes(), proptest::collection::vec(bytes(), 1..4))
            .prop_map(|(key, fields)| Command::HDel { key, fields }),
        (bytes(), bytes(), any::<i64>()).prop_map(|(key, field, delta)| Command::HIncrBy {
            key,
            field,
            delta
        }),
        (bytes(), proptest::collection::vec(bytes(), 1..4))
            .prop_map(|(key, members)| Command::SAdd { key, members }),
        (bytes(), proptest::collection::vec(bytes(), 1..4))
            .prop_map(|(key, members)| Command::SRem { key, members }),
        (bytes(), bytes(), bytes()).prop_map(|(from, to, member)| Command::SMove {
            from,
            to,
            member
        }),
        (bytes(), any::<Option<u64>>(), any::<u64>())
            .prop_map(|(key, count, seed)| Command::SPop { key, count, seed }),
        (
            bytes(),
            proptest::collection::vec(bytes(), 1..4),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(key, items, front, if_exists)| Command::Push {
                key,
                items,
                front,
                if_exists
            }),
        (bytes(), any::<bool>(), any::<Option<u64>>())
            .prop_map(|(key, front, count)| Command::Pop { key, front, count }),
        (bytes(), any::<i64>(), bytes()).prop_map(|(key, index, item)| Command::LSet {
            key,
            index,
            item
        }),
        (bytes(), any::<i64>(), bytes()).prop_map(|(key, count, item)| Command::LRem {
            key,
            count,
            item
        }),
        (bytes(), any::<i64>(), any::<i64>()).prop_map(|(key, start, stop)| Command::LTrim {
            key,
            start,
            stop
        }),
        (bytes(), any::<bool>(), bytes(), bytes()).prop_map(|(key, before, pivot, item)| {
            Command::LInsert {
                key,
                before,
                pivot,
                item,
            }
        }),
        (bytes(), bytes(), any::<bool>(), any::<bool>()).prop_map(
            |(from, to, from_front, to_front)| Command::LMove {
                from,
                to,
                from_front,
                to_front
            }
        ),
        (set_op(), bytes(), proptest::collection::vec(bytes(), 1..4))
            .prop_map(|(op, dest, keys)| Command::SetStore { op, dest, keys }),
        (bytes(), bytes(), float()).prop_map(|(key, field, increment)| Command::HIncrByFloat {
            key,
            field,
            increment
        }),
        (
            bytes(),
            proptest::collection::vec((score(), bytes()), 1..4),
            zadd_options()
        )
            .prop_map(|(key, mut entries, options)| {
                if options.incr {
                    entries.truncate(1);
                }
                Command::ZAdd {
                    key,
                    entries,
                    options,
                }
            }),
        (bytes(), proptest::collection::vec(bytes(), 1..3))
            .prop_map(|(key, members)| Command::ZRem { key, members }),
        (bytes(), any::<bool>(), any::<u64>()).prop_map(|(key, max, count)| Command::ZPop {
            key,
            max,
            count
        }),
        (bytes(), zrange_by(bytes)).prop_map(|(key, by)| Command::ZRemRange { key, by }),
        (set_op(), bytes(), 1usize..4, aggregate())
            .prop_flat_map(|(op, dest, n, aggregate)| (
                proptest::collection::vec(bytes(), n),
                weights(n),
                Just((op, dest, aggregate)),
            ))
            .prop_map(|(keys, weights, (op, dest, aggregate))| Command::ZStore {
                op,
                dest,
                keys,
                weights,
                aggregate
            }),
        (bytes(), bytes(), zrange(bytes)).prop_map(|(dest, source, range)| Command::ZRangeStore {
            dest,
            source,
            range
        }),
        (bytes(), bytes()).prop_map(|(channel, message)| Command::Publish { channel, message }),
        (
            proptest::collection::vec(bytes(), 1..3),
            any::<bool>(),
            any::<bool>(),
            1u64..5
        )
            .prop_map(|(keys, zset, end, count)| Command::MPop {
                keys,
                from: if zset {
                    MPopFrom::ZSet { max: end }
                } else {
                    MPopFrom::List { front: end }
                },
                count
            }),
        (
            bytes(),
            new_id(),
            stream_fields(bytes),
            any::<bool>(),
            proptest::option::of(trim())
        )
            .prop_map(|(key, id, fields, no_mkstream, trim)| Command::XAdd {
                key,
                id,
                fields,
                no_mkstream,
                trim
            }),
        (
            bytes(),
            proptest::collection::vec(stream_id(), 0..3),
            any::<bool>()
        )
            .prop_map(|(key, ids, bad_id)| Command::XDel {
                key,
                bad_id: bad_id || ids.is_empty(),
                ids
            }),
        (bytes(), trim()).prop_map(|(key, trim)| Command::XTrim { key, trim }),
        (bytes(), bytes(), group_op()).prop_map(|(key, group, op)| Command::XGroup {
            key,
            group,
            op
        }),
        (
            bytes(),
            bytes(),
            proptest::collection::vec(group_read(), 1..3),
            any::<u64>(),
            any::<bool>()
        )
            .prop_map(|(group, consumer, reads, count, no_ack)| {
                Command::XReadGroup {
                    group,
                    consumer,
                    reads,
                    count,
                    no_ack,
                }
            }),
        (
            bytes(),
            bytes(),
            proptest::collection::vec(stream_id(), 1..3)
        )
            .prop_map(|(key, group, ids)| Command::XAck {
                key,
                group,
                ids,
                bad_id: false
            }),
        (
            (bytes(), bytes(), bytes(), any::<u64>()),
            proptest::collection::vec(stream_id(), 0..3),
            proptest::option::of(prop_oneof![
                any::<i64>().prop_map(ClaimTime::Idle),
                any::<i64>().prop_map(ClaimTime::At)
            ]),
            proptest::option::of(any::<u64>()),
            (
                any::<bool>(),
                any::<bool>(),
                proptest::option::of(stream_id())
            )
        )
            .prop_map(
                |((key, group, consumer, min_idle_ms), ids, delivered, retry_count, flags)| {
                    let (force, just_id, last_id) = flags;
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
                    }
                }
            ),
        (
            (bytes(), bytes(), bytes()),
            any::<u64>(),
            stream_id(),
            1u64..1000,
            any::<bool>()
        )
            .prop_map(
                |((key, group, consumer), min_idle_ms, start, count, just_id)| {
                    Command::XAutoClaim {
                        key,
                        group,
                        consumer,
                        min_idle_ms,
                        start,
                        count,
                        just_id,
                    }
                }
            ),
        (bytes(), proptest::collection::vec(bytes(), 0..3))
            .prop_map(|(key, elements)| Command::PfAdd { key, elements }),
        (bytes(), proptest::collection::vec(bytes(), 0..3))
            .prop_map(|(dest, sources)| Command::PfMerge { dest, sources }),
        (
            bytes(),
            proptest::collection::vec(bytes(), 0..3),
            proptest::collection::vec(bytes(), 0..3),
            any::<bool>()
        )
            .prop_map(|(script, keys, args, read_only)| Command::Eval {
                script,
                keys,
                args,
                read_only
            }),
        (bytes(), bytes(), geo_search(), any::<bool>()).prop_map(
            |(dest, source, search, store_dist)| Command::GeoStore {
                dest,
                source,
                search,
                store_dist,
            }
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn commands_round_trip(cmd in command()) {
        let encoded = cmd.encode();
        prop_assert_eq!(encoded[0], FORMAT_VERSION);
        prop_assert_eq!(Command::decode(&encoded), Ok(cmd));
    }

    #[test]
    fn log_entries_round_trip(cmd in command(), now_ms in any::<u64>()) {
        let entry = LogEntry { now_ms, command: cmd };
        prop_assert_eq!(LogEntry::encode_parts(now_ms, &entry.command), entry.encode());
        prop_assert_eq!(LogEntry::decode(&entry.encode()), Ok(entry));
    }

    #[test]
    fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = Command::decode(&raw);
        let _ = LogEntry::decode(&raw);
        let mut versioned = vec![FORMAT_VERSION];
        versioned.extend_from_slice(&raw);
        let _ = Command::decode(&versioned);
        let _ = LogEntry::decode(&versioned);
    }

    /// Every strict prefix of a valid encoding is an error, never a different command.
    #[test]
    fn truncations_are_errors(cmd in command()) {
        let encoded = cmd.encode();
        for cut in 0..encoded.len() {
            prop_assert!(Command::decode(&encoded[..cut]).is_err(), "prefix of {} bytes", cut);
        }
    }
}

#[test]
fn version_empty_trailing_and_invalid_are_named() {
    let cmd = Command::Del {
        keys: vec![b"k".to_vec()],
    };
    let mut encoded = cmd.encode();
    assert_eq!(Command::decode(&[]), Err(CodecError::Empty));
    encoded[0] = FORMAT_VERSION + 1;
    assert_eq!(
        Command::decode(&encoded),
        Err(CodecError::UnsupportedVersion {
            found: FORMAT_VERSION + 1,
            expected: FORMAT_VERSION
        })
    );
    encoded[0] = FORMAT_VERSION;
    encoded.push(0);
    assert_eq!(
        Command::decode(&encoded),
        Err(CodecError::TrailingBytes { extra: 1 })
    );
    let empty_del = Command::Del { keys: vec![] }.encode();
    assert!(matches!(
        Command::decode(&empty_del),
        Err(CodecError::Invalid { .. })
    ));
    for bad in [
        Command::Meet {
            id: 0,
            address: "127.0.0.1:7000".to_owned(),
        },
        Command::Meet {
            id: 4,
            address: "somewhere".to_owned(),
        },
        Command::SetWith {
            key: b"k".to_vec(),
            value: Vec::new(),
            expiry: Expiry::At(EXPIRE_AT_MS_MAX + 1),
            condition: SetCondition::Always,
            get: false,
        },
        Command::Expire {
            key: b"k".to_vec(),
            expire_at_ms: u64::MAX,
            condition: ExpireCondition::Always,
        },
        Command::GetEx {
            key: b"k".to_vec(),
            expiry: Expiry::At(u64::MAX),
        },
        Command::MSetNx { pairs: Vec::new() },
        Command::SetRange {
            key: b"k".to_vec(),
            offset: 0,
            value: b"v".to_vec(),
            len_max: VALUE_BYTES_MAX + 1,
        },
        Command::IncrByFloat {
            key: b"k".to_vec(),
            increment: b"1.5x".to_vec(),
        },
        Command::SetBit {
            key: b"k".to_vec(),
            offset: VALUE_BYTES_MAX * 8,
            on: true,
        },
        Command::BitOp {
            op: BitOp::And,
            dest: b"d".to_vec(),
            keys: Vec::new(),
        },
        Command::BitOp {
            op: BitOp::Not,
            dest: b"d".to_vec(),
            keys: vec![b"a".to_vec(), b"b".to_vec()],
        },
        Command::HSet {
            key: b"h".to_vec(),
            pairs: Vec::new(),
            if_absent: false,
        },
        Command::HSet {
            key: b"h".to_vec(),
            pairs: vec![
                (b"f".to_vec(), b"1".to_vec()),
                (b"g".to_vec(), b"2".to_vec()),
            ],
            if_absent: true,
        },
        Command::HDel {
            key: b"h".to_vec(),
            fields: Vec::new(),
        },
        Command::HIncrByFloat {
            key: b"h".to_vec(),
            field: b"f".to_vec(),
            increment: b"nan".to_vec(),
        },
        Command::Transaction {
            ops: vec![TxOp::Read(TxRead::Hash {
                key: b"h".to_vec(),
                read: HashRead::MGet { fields: Vec::new() },
            })],
            read_bytes_max: 0,
            watched: Vec::new(),
        },
        Command::SAdd {
            key: b"s".to_vec(),
            members: Vec::new(),
        },
        Command::ZAdd {
            key: b"z".to_vec(),
            entries: Vec::new(),
            options: ZAddOptions::default(),
        },
        Command::ZAdd {
            key: b"z".to_vec(),
            entries: vec![
                (Score::new(1.0).unwrap(), b"a".to_vec()),
                (Score::new(2.0).unwrap(), b"b".to_vec()),
            ],
            options: ZAddOptions {
                incr: true,
                ..ZAddOptions::default()
            },
        },
        Command::ZAdd {
            key: b"z".to_vec(),
            entries: vec![(Score::new(1.0).unwrap(), b"a".to_vec())],
            options: ZAddOptions {
                only_new: true,
                greater: true,
                ..ZAddOptions::default()
            },
        },
        Command::ZRem {
            key: b"z".to_vec(),
            members: Vec::new(),
        },
        Command::MPop {
            keys: Vec::new(),
            from: MPopFrom::List { front: true },
            count: 1,
        },
        Command::MPop {
            keys: vec![b"l".to_vec()],
            from: MPopFrom::List { front: true },
            count: 0,
        },
        Command::ZStore {
            op: SetOp::Inter,
            dest: b"d".to_vec(),
            keys: vec![b"a".to_vec(), b"b".to_vec()],
            weights: vec![Score::new(1.0).unwrap()],
            aggregate: Aggregate::Sum,
        },
        Command::ZStore {
            op: SetOp::Inter,
            dest: b"d".to_vec(),
            keys: Vec::new(),
            weights: Vec::new(),
            aggregate: Aggregate::Sum,
        },
        Command::ZRangeStore {
            dest: b"d".to_vec(),
            source: b"z".to_vec(),
            range: ZRange {
                by: ZRangeBy::Rank { start: 0, stop: 1 },
                rev: false,
                limit: Some((0, 1)),
            },
        },
        Command::XAdd {
            key: b"x".to_vec(),
            id: NewId::Auto,
            fields: Vec::new(),
            no_mkstream: false,
            trim: None,
        },
        Command::XAdd {
            key: b"x".to_vec(),
            id: NewId::Auto,
            fields: vec![b"f".to_vec(), b"v".to_vec(), b"g".to_vec()],
            no_mkstream: false,
            trim: None,
        },
        Command::XAdd {
            key: b"x".to_vec(),
            id: NewId::Exact(StreamId::MIN),
            fields: vec![b"f".to_vec(), b"v".to_vec()],
            no_mkstream: false,
            trim: None,
        },
        Command::XDel {
            key: b"x".to_vec(),
            ids: Vec::new(),
            bad_id: false,
        },
        Command::XReadGroup {
            group: b"g".to_vec(),
            consumer: b"c".to_vec(),
            reads: Vec::new(),
            count: 0,
            no_ack: false,
        },
        Command::XAck {
            key: b"x".to_vec(),
            group: b"g".to_vec(),
            ids: Vec::new(),
            bad_id: false,
        },
        Command::Transaction {
            ops: vec![TxOp::Read(TxRead::XRead {
                after: Vec::new(),
                count: 0,
            })],
            read_bytes_max: 0,
            watched: Vec::new(),
        },
        Command::SRem {
            key: b"s".to_vec(),
            members: Vec::new(),
        },
        Command::SetStore {
            op: SetOp::Union,
            dest: b"d".to_vec(),
            keys: Vec::new(),
        },
        Command::Push {
            key: b"l".to_vec(),
            items: Vec::new(),
            front: true,
            if_exists: false,
        },
        Command::Transaction {
            ops: vec![TxOp::Read(TxRead::List {
                key: b"l".to_vec(),
                read: ListRead::Pos {
                    item: b"a".to_vec(),
                    rank: 0,
                    count: None,
                    max_len: 0,
                },
            })],
            read_bytes_max: 0,
            watched: Vec::new(),
        },
        Command::Transaction {
            ops: vec![TxOp::Read(TxRead::SetCombine {
                op: SetOp::Inter,
                keys: Vec::new(),
            })],
            read_bytes_max: 0,
            watched: Vec::new(),
        },
        Command::Transaction {
            ops: vec![TxOp::Read(TxRead::Set {
                key: b"s".to_vec(),
                read: SetRead::MIsMember {
                    members: Vec::new(),
                },
            })],
            read_bytes_max: 0,
            watched: Vec::new(),
        },
    ] {
        assert!(
            matches!(
                Command::decode(&bad.encode()),
                Err(CodecError::Invalid { .. })
            ),
            "{bad:?}"
        );
    }
    // A score that is NaN, or a negative zero, which no server makes: the bytes of a
    // ZADD of 1.0 with its bits changed.
    for bits in [
        [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0xFC, 0x7F].as_slice(),
        &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
    ] {
        let mut bytes = vec![FORMAT_VERSION, 37, 1, b'z', 1];
        bytes.extend_from_slice(bits);
        bytes.extend_from_slice(&[1, b'a', 0, 0, 0, 0, 0, 0]);
        assert!(
            matches!(Command::decode(&bytes), Err(CodecError::Invalid { .. })),
            "{bits:?}"
        );
    }
    // A length prefix claiming far more bytes than present is an error, not an allocation.
    let huge = [FORMAT_VERSION, 1, 0xff, 0xff, 0xff, 0xff, 0x0f];
    assert!(matches!(
        Command::decode(&huge),
        Err(CodecError::Malformed { .. })
    ));
}

#[test]
fn encoding_is_compact() {
    let cmd = Command::IncrBy {
        key: b"counter".to_vec(),
        delta: 1,
    };
    // version + variant + key length + key + zig-zag varint delta
    assert_eq!(cmd.encode().len(), 1 + 1 + 1 + 7 + 1);
}

/// The exact bytes of format version 1, as logs and snapshots already hold them: a
/// change in how a field is encoded must not change what is written or read.
#[test]
fn format_version_1_bytes_are_fixed() {
    let cases: [(Command, &[u8]); 4] = [
        (
            Command::Set {
                key: b"k1".to_vec(),
                value: b"abc".to_vec(),
                expire_at_ms: Some(300),
                condition: SetCondition::IfAbsent,
            },
            &[1, 0, 2, b'k', b'1', 3, b'a', b'b', b'c', 1, 0xac, 0x02, 1],
        ),
        (
            Command::Del {
                keys: vec![b"a".to_vec(), Vec::new()],
            },
            &[1, 1, 2, 1, b'a', 0],
        ),
        (
            Command::IncrBy {
                key: b"n".to_vec(),
                delta: -2,
            },
            &[1, 2, 1, b'n', 3],
        ),
        (
            Command::MSet {
                pairs: vec![(b"a".to_vec(), b"x".to_vec()), (b"b".to_vec(), Vec::new())],
            },
            &[1, 3, 2, 1, b'a', 1, b'x', 1, b'b', 0],
        ),
    ];
    for (command, bytes) in cases {
        assert_eq!(command.encode(), bytes, "{command:?}");
        assert_eq!(Command::decode(bytes), Ok(command));
    }
    // The variants added later, after every earlier one.
    let later: [(Command, &[u8]); 53] = [
        (
            Command::SetWith {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                expiry: Expiry::At(300),
                condition: SetCondition::IfPresent,
                get: true,
            },
            &[1, 6, 1, b'k', 1, b'v', 1, 0xac, 0x02, 2, 1],
        ),
        (
            Command::Expire {
                key: b"k".to_vec(),
                expire_at_ms: 300,
                condition: ExpireCondition::IfSomeAndSooner,
            },
            &[1, 7, 1, b'k', 0xac, 0x02, 5],
        ),
        (Command::Persist { key: b"k".to_vec() }, &[1, 8, 1, b'k']),
        (Command::FlushAll, &[1, 14]),
        (Command::GetDel { key: b"k".to_vec() }, &[1, 9, 1, b'k']),
        (
            Command::GetEx {
                key: b"k".to_vec(),
                expiry: Expiry::Clear,
            },
            &[1, 10, 1, b'k', 0],
        ),
        (
            Command::Append {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                len_max: 300,
            },
            &[1, 11, 1, b'k', 1, b'v', 0xac, 0x02],
        ),
        (
            Command::MSetNx {
                pairs: vec![(b"a".to_vec(), b"x".to_vec())],
            },
            &[1, 12, 1, 1, b'a', 1, b'x'],
        ),
        (
            Command::Rename {
                from: b"a".to_vec(),
                to: b"b".to_vec(),
                if_absent: true,
            },
            &[1, 15, 1, b'a', 1, b'b', 1],
        ),
        (
            Command::Copy {
                from: b"a".to_vec(),
                to: b"b".to_vec(),
                replace: false,
            },
            &[1, 16, 1, b'a', 1, b'b', 0],
        ),
        (
            Command::SetRange {
                key: b"k".to_vec(),
                offset: 300,
                value: b"v".to_vec(),
                len_max: 5,
            },
            &[1, 17, 1, b'k', 0xac, 0x02, 1, b'v', 5],
        ),
        (
            Command::IncrByFloat {
                key: b"k".to_vec(),
                increment: b"-1.5".to_vec(),
            },
            &[1, 18, 1, b'k', 4, b'-', b'1', b'.', b'5'],
        ),
        (
            Command::SetBit {
                key: b"k".to_vec(),
                offset: 300,
                on: true,
            },
            &[1, 19, 1, b'k', 0xac, 0x02, 1],
        ),
        (
            Command::BitOp {
                op: BitOp::Xor,
                dest: b"d".to_vec(),
                keys: vec![b"a".to_vec(), b"b".to_vec()],
            },
            &[1, 20, 2, 1, b'd', 2, 1, b'a', 1, b'b'],
        ),
        (
            Command::HSet {
                key: b"h".to_vec(),
                pairs: vec![(b"f".to_vec(), b"v".to_vec())],
                if_absent: true,
            },
            &[1, 21, 1, b'h', 1, 1, b'f', 1, b'v', 1],
        ),
        (
            Command::HDel {
                key: b"h".to_vec(),
                fields: vec![b"f".to_vec(), b"g".to_vec()],
            },
            &[1, 22, 1, b'h', 2, 1, b'f', 1, b'g'],
        ),
        (
            Command::HIncrBy {
                key: b"h".to_vec(),
                field: b"f".to_vec(),
                delta: -2,
            },
            &[1, 23, 1, b'h', 1, b'f', 3],
        ),
        (
            Command::HIncrByFloat {
                key: b"h".to_vec(),
                field: b"f".to_vec(),
                increment: b"0.5".to_vec(),
            },
            &[1, 24, 1, b'h', 1, b'f', 3, b'0', b'.', b'5'],
        ),
        (
            Command::SAdd {
                key: b"s".to_vec(),
                members: vec![b"a".to_vec()],
            },
            &[1, 25, 1, b's', 1, 1, b'a'],
        ),
        (
            Command::SRem {
                key: b"s".to_vec(),
                members: vec![b"a".to_vec()],
            },
            &[1, 26, 1, b's', 1, 1, b'a'],
        ),
        (
            Command::SMove {
                from: b"s".to_vec(),
                to: b"t".to_vec(),
                member: b"a".to_vec(),
            },
            &[1, 27, 1, b's', 1, b't', 1, b'a'],
        ),
        (
            Command::SPop {
                key: b"s".to_vec(),
                count: Some(2),
                seed: 300,
            },
            &[1, 28, 1, b's', 1, 2, 0xac, 0x02],
        ),
        (
            Command::SetStore {
                op: SetOp::Diff,
                dest: b"d".to_vec(),
                keys: vec![b"s".to_vec()],
            },
            &[1, 29, 2, 1, b'd', 1, 1, b's'],
        ),
        (
            Command::Push {
                key: b"l".to_vec(),
                items: vec![b"a".to_vec()],
                front: true,
                if_exists: false,
            },
            &[1, 30, 1, b'l', 1, 1, b'a', 1, 0],
        ),
        (
            Command::Pop {
                key: b"l".to_vec(),
                front: false,
                count: Some(2),
            },
            &[1, 31, 1, b'l', 0, 1, 2],
        ),
        (
            Command::LSet {
                key: b"l".to_vec(),
                index: -1,
                item: b"a".to_vec(),
            },
            &[1, 32, 1, b'l', 1, 1, b'a'],
        ),
        (
            Command::LRem {
                key: b"l".to_vec(),
                count: 2,
                item: b"a".to_vec(),
            },
            &[1, 33, 1, b'l', 4, 1, b'a'],
        ),
        (
            Command::LTrim {
                key: b"l".to_vec(),
                start: 0,
                stop: -1,
            },
            &[1, 34, 1, b'l', 0, 1],
        ),
        (
            Command::LInsert {
                key: b"l".to_vec(),
                before: true,
                pivot: b"p".to_vec(),
                item: b"a".to_vec(),
            },
            &[1, 35, 1, b'l', 1, 1, b'p', 1, b'a'],
        ),
        (
            Command::LMove {
                from: b"l".to_vec(),
                to: b"m".to_vec(),
                from_front: false,
                to_front: true,
            },
            &[1, 36, 1, b'l', 1, b'm', 0, 1],
        ),
        // The score 1.0 as its bits, a varint: 0x3FF0_0000_0000_0000.
        (
            Command::ZAdd {
                key: b"z".to_vec(),
                entries: vec![(Score::new(1.0).unwrap(), b"a".to_vec())],
                options: ZAddOptions {
                    changed: true,
                    ..ZAddOptions::default()
                },
            },
            &[
                1, 37, 1, b'z', 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0xF8, 0x3F, 1, b'a',
                0, 0, 0, 0, 1, 0,
            ],
        ),
        (
            Command::ZRem {
                key: b"z".to_vec(),
                members: vec![b"a".to_vec()],
            },
            &[1, 38, 1, b'z', 1, 1, b'a'],
        ),
        (
            Command::ZPop {
                key: b"z".to_vec(),
                max: true,
                count: 2,
            },
            &[1, 39, 1, b'z', 1, 2],
        ),
        (
            Command::ZRemRange {
                key: b"z".to_vec(),
                by: ZRangeBy::Lex {
                    min: LexBound::Exclusive(b"a".to_vec()),
                    max: LexBound::Max,
                },
            },
            &[1, 40, 1, b'z', 2, 3, 1, b'a', 1],
        ),
        (
            Command::ZStore {
                op: SetOp::Union,
                dest: b"d".to_vec(),
                keys: vec![b"a".to_vec()],
                weights: Vec::new(),
                aggregate: Aggregate::Max,
            },
            &[1, 41, 1, 1, b'd', 1, 1, b'a', 0, 2],
        ),
        (
            Command::ZRangeStore {
                dest: b"d".to_vec(),
                source: b"z".to_vec(),
                range: ZRange {
                    by: ZRangeBy::Rank { start: 0, stop: -1 },
                    rev: true,
                    limit: None,
                },
            },
            &[1, 42, 1, b'd', 1, b'z', 0, 0, 1, 1, 0],
        ),
        (
            Command::Publish {
                channel: b"c".to_vec(),
                message: b"hi".to_vec(),
            },
            &[1, 43, 1, b'c', 2, b'h', b'i'],
        ),
        (
            Command::MPop {
                keys: vec![b"a".to_vec(), b"b".to_vec()],
                from: MPopFrom::ZSet { max: true },
                count: 3,
            },
            &[1, 44, 2, 1, b'a', 1, b'b', 1, 1, 3],
        ),
        // NewId::Auto (0), the fields as a list of byte strings, no NOMKSTREAM, no trim.
        (
            Command::XAdd {
                key: b"x".to_vec(),
                id: NewId::Auto,
                fields: vec![b"f".to_vec(), b"v".to_vec()],
                no_mkstream: false,
                trim: None,
            },
            &[1, 45, 1, b'x', 0, 2, 1, b'f', 1, b'v', 0, 0],
        ),
        // NewId::AutoSeq (1) of 7; Some trim by TrimBy::MaxLen (0) 3, no LIMIT.
        (
            Command::XAdd {
                key: b"x".to_vec(),
                id: NewId::AutoSeq(7),
                fields: vec![b"f".to_vec(), b"v".to_vec()],
                no_mkstream: true,
                trim: Some(Trim {
                    by: TrimBy::MaxLen(3),
                    limit: 0,
                }),
            },
            &[1, 45, 1, b'x', 1, 7, 2, 1, b'f', 1, b'v', 1, 1, 0, 3, 0],
        ),
        // NewId::Exact (2) 300-1; a trim by TrimBy::MinId (1) 2-0 with a LIMIT of 5.
        (
            Command::XAdd {
                key: b"x".to_vec(),
                id: NewId::Exact(StreamId { ms: 300, seq: 1 }),
                fields: vec![b"f".to_vec(), Vec::new()],
                no_mkstream: false,
                trim: Some(Trim {
                    by: TrimBy::MinId(StreamId { ms: 2, seq: 0 }),
                    limit: 5,
                }),
            },
            &[
                1, 45, 1, b'x', 2, 0xac, 0x02, 1, 2, 1, b'f', 0, 0, 1, 1, 2, 0, 5,
            ],
        ),
        (
            Command::XDel {
                key: b"x".to_vec(),
                ids: vec![StreamId { ms: 1, seq: 2 }, StreamId { ms: 300, seq: 0 }],
                bad_id: false,
            },
            &[1, 46, 1, b'x', 2, 1, 2, 0xac, 0x02, 0, 0],
        ),
        (
            Command::XTrim {
                key: b"x".to_vec(),
                trim: Trim {
                    by: TrimBy::MaxLen(300),
                    limit: 1,
                },
            },
            &[1, 47, 1, b'x', 0, 0xac, 0x02, 1],
        ),
        // CREATE (0) from Some (1) ID (1) 1-2, with MKSTREAM.
        (
            Command::XGroup {
                key: b"x".to_vec(),
                group: b"g".to_vec(),
                op: GroupOp::Create {
                    start: Some(GroupStart::At(StreamId { ms: 1, seq: 2 })),
                    mkstream: true,
                },
            },
            &[1, 48, 1, b'x', 1, b'g', 0, 1, 1, 1, 2, 1],
        ),
        (
            Command::XGroup {
                key: b"x".to_vec(),
                group: b"g".to_vec(),
                op: GroupOp::DelConsumer {
                    consumer: b"c".to_vec(),
                },
            },
            &[1, 48, 1, b'x', 1, b'g', 4, 1, b'c'],
        ),
        // Two keys: `>` (None), then after 3-0; a count of 2, NOACK.
        (
            Command::XReadGroup {
                group: b"g".to_vec(),
                consumer: b"c".to_vec(),
                reads: vec![
                    GroupRead {
                        key: b"x".to_vec(),
                        after: None,
                    },
                    GroupRead {
                        key: b"y".to_vec(),
                        after: Some(StreamId { ms: 3, seq: 0 }),
                    },
                ],
                count: 2,
                no_ack: true,
            },
            &[
                1, 49, 1, b'g', 1, b'c', 2, 1, b'x', 0, 1, b'y', 1, 3, 0, 2, 1,
            ],
        ),
        (
            Command::XAck {
                key: b"x".to_vec(),
                group: b"g".to_vec(),
                ids: vec![StreamId { ms: 1, seq: 1 }],
                bad_id: false,
            },
            &[1, 50, 1, b'x', 1, b'g', 1, 1, 1, 0],
        ),
        // IDLE -1 (zig-zag 1), RETRYCOUNT 2, FORCE, no LASTID.
        (
            Command::XClaim {
                key: b"x".to_vec(),
                group: b"g".to_vec(),
                consumer: b"c".to_vec(),
                min_idle_ms: 5,
                ids: vec![StreamId { ms: 1, seq: 1 }],
                delivered: Some(ClaimTime::Idle(-1)),
                retry_count: Some(2),
                force: true,
                just_id: false,
                last_id: None,
            },
            &[
                1, 51, 1, b'x', 1, b'g', 1, b'c', 5, 1, 1, 1, 1, 0, 1, 1, 2, 1, 0, 0,
            ],
        ),
        (
            Command::XAutoClaim {
                key: b"x".to_vec(),
                group: b"g".to_vec(),
                consumer: b"c".to_vec(),
                min_idle_ms: 0,
                start: StreamId { ms: 1, seq: 0 },
                count: 100,
                just_id: true,
            },
            &[1, 52, 1, b'x', 1, b'g', 1, b'c', 0, 1, 0, 100, 1],
        ),
        (
            Command::PfAdd {
                key: b"h".to_vec(),
                elements: vec![b"a".to_vec(), b"b".to_vec()],
            },
            &[1, 53, 1, b'h', 2, 1, b'a', 1, b'b'],
        ),
        (
            Command::PfMerge {
                dest: b"d".to_vec(),
                sources: vec![b"s".to_vec()],
            },
            &[1, 54, 1, b'd', 1, 1, b's'],
        ),
        // Center::At (1) with the bits of 0.5 and -2.0 as varints, Shape::Radius (0) of 1.0,
        // Unit::Kilometers (1), Order::Nearest (1), count 2, not ANY, STOREDIST.
        (
            Command::GeoStore {
                dest: b"d".to_vec(),
                source: b"s".to_vec(),
                search: Search {
                    center: Center::At {
                        lon: Score::new(0.5).unwrap(),
                        lat: Score::new(-2.0).unwrap(),
                    },
                    shape: Shape::Radius(Score::new(1.0).unwrap()),
                    unit: Unit::Kilometers,
                    order: Order::Nearest,
                    count: 2,
                    any: false,
                },
                store_dist: true,
            },
            &[
                1, 55, 1, b'd', 1, b's', 1, 128, 128, 128, 128, 128, 128, 128, 240, 63, 128, 128,
                128, 128, 128, 128, 128, 128, 192, 1, 0, 128, 128, 128, 128, 128, 128, 128, 248,
                63, 1, 1, 2, 0, 1,
            ],
        ),
        (
            Command::Eval {
                script: b"return 1".to_vec(),
                keys: vec![b"k".to_vec()],
                args: Vec::new(),
                read_only: true,
            },
            &[
                1, 56, 8, b'r', b'e', b't', b'u', b'r', b'n', b' ', b'1', 1, 1, b'k', 0, 1,
            ],
        ),
    ];
    let bits_read = Command::Transaction {
        ops: vec![TxOp::Read(TxRead::Bits {
            key: b"k".to_vec(),
            query: BitQuery::Pos {
                bit: true,
                range: Some(BitRange {
                    start: -1,
                    end: None,
                    unit: RangeUnit::Bit,
                }),
            },
        })],
        read_bytes_max: 0,
        watched: Vec::new(),
    };
    // TxRead::Bits (6), the key, BitQuery::Pos (2), the bit, Some range, start -1
    // (zig-zag 1), no end, RangeUnit::Bit (1).
    assert_eq!(
        bits_read.encode(),
        [1, 13, 1, 1, 6, 1, b'k', 2, 1, 1, 1, 0, 1, 0, 0]
    );
    assert_eq!(Command::decode(&bits_read.encode()), Ok(bits_read));
    let later_reads = Command::Transaction {
        ops: vec![
            TxOp::Read(TxRead::Type { key: b"k".to_vec() }),
            TxOp::Read(TxRead::ExpireTime {
                key: b"k".to_vec(),
                in_ms: true,
            }),
        ],
        read_bytes_max: 0,
        watched: Vec::new(),
    };
    assert_eq!(
        later_reads.encode(),
        [1, 13, 2, 1, 7, 1, b'k', 1, 8, 1, b'k', 1, 0, 0]
    );
    assert_eq!(Command::decode(&later_reads.encode()), Ok(later_reads));
    // TxRead::Hash (9), the key, then HashRead::MGet (1) of two fields and
    // HashRead::GetAll (3).
    let hash_reads = Command::Transaction {
        ops: vec![
            TxOp::Read(TxRead::Hash {
                key: b"h".to_vec(),
                read: HashRead::MGet {
                    fields: vec![b"f".to_vec(), b"g".to_vec()],
                },
            }),
            TxOp::Read(TxRead::Hash {
                key: b"h".to_vec(),
                read: HashRead::GetAll,
            }),
        ],
        read_bytes_max: 0,
        watched: Vec::new(),
    };
    assert_eq!(
        hash_reads.encode(),
        [
            1, 13, 2, 1, 9, 1, b'h', 1, 2, 1, b'f', 1, b'g', 1, 9, 1, b'h', 3, 0, 0
        ]
    );
    assert_eq!(Command::decode(&hash_reads.encode()), Ok(hash_reads));
    // TxRead::Set (10) with SetRead::Card (3), TxRead::SetCombine (11) with SetOp::Union
    // (1), TxRead::SetInterCard (12) with its limit.
    let set_reads = Command::Transaction {
        ops: vec![
            TxOp::Read(TxRead::Set {
                key: b"s".to_vec(),
                read: SetRead::Card,
            }),
            TxOp::Read(TxRead::SetCombine {
                op: SetOp::Union,
                keys: vec![b"s".to_vec()],
            }),
            TxOp::Read(TxRead::SetInterCard {
                keys: vec![b"s".to_vec()],
                limit: 2,
            }),
        ],
        read_bytes_max: 0,
        watched: Vec::new(),
    };
    assert_eq!(
        set_reads.encode(),
        [
            1, 13, 3, 1, 10, 1, b's', 3, 1, 11, 1, 1, 1, b's', 1, 12, 1, 1, b's', 2, 0, 0
        ]
    );
    assert_eq!(Command::decode(&set_reads.encode()), Ok(set_reads));
    // TxRead::List (13) with ListRead::Pos (3): the item, rank -1 (zig-zag 1), no count,
    // max_len 2.
    let list_read = Command::Transaction {
        ops: vec![TxOp::Read(TxRead::List {
            key: b"l".to_vec(),
            read: ListRead::Pos {
                item: b"a".to_vec(),
                rank: -1,
                count: None,
                max_len: 2,
            },
        })],
        read_bytes_max: 0,
        watched: Vec::new(),
    };
    assert_eq!(
        list_read.encode(),
        [1, 13, 1, 1, 13, 1, b'l', 3, 1, b'a', 1, 0, 2, 0, 0]
    );
    assert_eq!(Command::decode(&list_read.encode()), Ok(list_read));
    // TxRead::ZSet (14) with ZSetRead::Range (5): by score (1) from 0 inclusive to 0
    // exclusive, reversed, a LIMIT of 1 (zig-zag 2) and -1 (zig-zag 1), with scores.
    let zero = Score::new(0.0).unwrap();
    let zset_read = Command::Transaction {
        ops: vec![TxOp::Read(TxRead::ZSet {
            key: b"z".to_vec(),
            read: ZSetRead::Range {
                range: ZRange {
                    by: ZRangeBy::Score {
                        min: ScoreBound {
                            score: zero,
                            exclusive: false,
                        },
                        max: ScoreBound {
                            score: zero,
                            exclusive: true,
                        },
                    },
                    rev: true,
                    limit: Some((1, -1)),
                },
                with_scores: true,
            },
        })],
        read_bytes_max: 0,
        watched: Vec::new(),
    };
    assert_eq!(
        zset_read.encode(),
        [
            1, 13, 1, 1, 14, 1, b'z', 5, 1, 0, 0, 0, 1, 1, 1, 2, 1, 1, 0, 0
        ]
    );
    assert_eq!(Command::decode(&zset_read.encode()), Ok(zset_read));
    // TxRead::Stream (17) with StreamRead::Range (1) from 1-0 to the highest ID (each
    // part u64::MAX, a varint of ten bytes), Some count 2, reversed; TxRead::Stream with
    // StreamRead::LastId (2); TxRead::XRead (18) of one key after 300-1, count 0.
    let stream_reads = Command::Transaction {
        ops: vec![
            TxOp::Read(TxRead::Stream {
                key: b"x".to_vec(),
                read: StreamRead::Range {
                    start: StreamId { ms: 1, seq: 0 },
                    end: StreamId::MAX,
                    count: Some(2),
                    rev: true,
                },
            }),
            TxOp::Read(TxRead::Stream {
                key: b"x".to_vec(),
                read: StreamRead::LastId,
            }),
            TxOp::Read(TxRead::XRead {
                after: vec![(b"x".to_vec(), StreamId { ms: 300, seq: 1 })],
                count: 0,
            }),
        ],
        read_bytes_max: 0,
        watched: Vec::new(),
    };
    let max = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01];
    let mut expected = vec![1, 13, 3, 1, 17, 1, b'x', 1, 1, 0];
    expected.extend_from_slice(&max);
    expected.extend_from_slice(&max);
    expected.extend_from_slice(&[1, 2, 1]);
    expected.extend_from_slice(&[1, 17, 1, b'x', 2]);
    expected.extend_from_slice(&[1, 18, 1, 1, b'x', 0xac, 0x02, 1, 0]);
    expected.extend_from_slice(&[0, 0]);
    assert_eq!(stream_reads.encode(), expected);
    assert_eq!(Command::decode(&stream_reads.encode()), Ok(stream_reads));
    // A search off the map, of a negative size, or ANY without COUNT is refused.
    let search = Search {
        center: Center::Member(b"m".to_vec()),
        shape: Shape::Radius(Score::new(1.0).unwrap()),
        unit: Unit::Meters,
        order: Order::Unsorted,
        count: 0,
        any: false,
    };
    let store = |search: Search| Command::GeoStore {
        dest: b"d".to_vec(),
        source: b"s".to_vec(),
        search,
        store_dist: false,
    };
    assert!(Command::decode(&store(search.clone()).encode()).is_ok());
    for broken in [
        Search {
            center: Center::At {
                lon: Score::new(180.5).unwrap(),
                lat: Score::new(0.0).unwrap(),
            },
            ..search.clone()
        },
        Search {
            shape: Shape::Box {
                width: Score::new(1.0).unwrap(),
                height: Score::new(-1.0).unwrap(),
            },
            ..search.clone()
        },
        Search {
            any: true,
            ..search.clone()
        },
    ] {
        assert!(matches!(
            Command::decode(&store(broken).encode()),
            Err(CodecError::Invalid { .. })
        ));
    }
    // TxRead::PfCount (19) of one key; of none, refused.
    let pf_count = |keys: Vec<Vec<u8>>| Command::Transaction {
        ops: vec![TxOp::Read(TxRead::PfCount { keys })],
        read_bytes_max: 0,
        watched: Vec::new(),
    };
    assert_eq!(
        pf_count(vec![b"h".to_vec()]).encode(),
        [1, 13, 1, 1, 19, 1, 1, b'h', 0, 0]
    );
    assert!(matches!(
        Command::decode(&pf_count(Vec::new()).encode()),
        Err(CodecError::Invalid { .. })
    ));
    // StreamRead::Len (0), the one read left.
    let stream_len = Command::Transaction {
        ops: vec![TxOp::Read(TxRead::Stream {
            key: b"x".to_vec(),
            read: StreamRead::Len,
        })],
        read_bytes_max: 0,
        watched: Vec::new(),
    };
    assert_eq!(stream_len.encode(), [1, 13, 1, 1, 17, 1, b'x', 0, 0, 0]);
    assert_eq!(Command::decode(&stream_len.encode()), Ok(stream_len));
    let range_read = Command::Transaction {
        ops: vec![TxOp::Read(TxRead::GetRange {
            key: b"k".to_vec(),
            start: -1,
            end: 300,
        })],
        read_bytes_max: 0,
        watched: Vec::new(),
    };
    assert_eq!(
        range_read.encode(),
        [1, 13, 1, 1, 5, 1, b'k', 1, 0xd8, 0x04, 0, 0]
    );
    assert_eq!(Command::decode(&range_read.encode()), Ok(range_read));
    let transaction = Command::Transaction {
        ops: vec![
            TxOp::Write(Command::Persist { key: b"k".to_vec() }),
            TxOp::Read(TxRead::Get { key: b"k".to_vec() }),
        ],
        read_bytes_max: 5,
        watched: vec![Watched {
            key: b"w".to_vec(),
            held: Some(Held {
                value: b"v".to_vec(),
                expire_at_ms: Some(300),
            }),
        }],
    };
    assert_eq!(
        transaction.encode(),
        [
            1, 13, 2, 0, 4, 1, 8, 1, b'k', 1, 0, 1, b'k', 5, 1, 1, b'w', 1, 1, b'v', 1, 0xac, 0x02
        ]
    );
    assert_eq!(Command::decode(&transaction.encode()), Ok(transaction));
    for (command, bytes) in later {
        assert_eq!(command.encode(), bytes, "{command:?}");
        assert_eq!(Command::decode(bytes), Ok(command));
    }
    let entry = LogEntry {
        now_ms: 5,
        command: Command::IncrBy {
            key: b"n".to_vec(),
            delta: 1,
        },
    };
    assert_eq!(entry.encode(), [1, 5, 2, 1, b'n', 2]);
    assert_eq!(
        LogEntry::encode_parts(entry.now_ms, &entry.command),
        entry.encode()
    );
}

/// A transaction inside a transaction is refused as it is decoded, before its own
/// contents are: however deep untrusted bytes nest them, decoding stays shallow.
#[test]
fn nested_transactions_are_refused_without_recursing() {
    let inner = Command::Transaction {
        ops: Vec::new(),
        read_bytes_max: 0,
        watched: Vec::new(),
    }
    .encode();
    // TxOp::Write (0), then the inner command's bytes as a byte string.
    // Then read_bytes_max 0 and no watched keys.
    let mut nested = vec![1, 13, 1, 0, inner.len() as u8];
    nested.extend_from_slice(&inner);
    nested.extend_from_slice(&[0, 0]);
    let refused = Command::decode(&nested);
    assert!(
        matches!(refused, Err(CodecError::Malformed { .. })),
        "{refused:?}"
    );
    // The same frame around a command that may be nested decodes.
    let persist = Command::Persist { key: b"k".to_vec() }.encode();
    let mut allowed = vec![1, 13, 1, 0, persist.len() as u8];
    allowed.extend_from_slice(&persist);
    allowed.extend_from_slice(&[0, 0]);
    assert!(Command::decode(&allowed).is_ok());
    // Deeply nested bytes: each level wraps the one below as its single write. Built
    // outside in, in one pass: the level's head, then everything below, then its tail
    // (two zeros: no read bytes, no watched keys).
    const LEVELS: usize = 20_000;
    let varint = |mut n: usize| {
        let mut out = Vec::new();
        while n >= 0x80 {
            out.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
        out
    };
    let mut heads = Vec::with_capacity(LEVELS);
    let mut len = inner.len();
    for _ in 0..LEVELS {
        let mut head = vec![1, 13, 1, 0];
        head.extend(varint(len));
        len += head.len() + 2;
        heads.push(head);
    }
    let mut bytes: Vec<u8> = heads.iter().rev().flatten().copied().collect();
    bytes.extend_from_slice(&inner);
    bytes.resize(bytes.len() + 2 * LEVELS, 0);
    assert_eq!(bytes.len(), len);
    assert!(Command::decode(&bytes).is_err());
    assert!(LogEntry::decode(&bytes).is_err());
}
