//! The buffered store against a store that writes every apply through: the same log
//! gives the same outputs, reads and snapshots, whenever the buffer happens to flush.

use aegis_node::bits;
use aegis_node::{
    ApplyEntry, BitOp, Command, HashRead, Held, KeyExpiry, KvStateMachine, ListRead, Output,
    Rejection, ScanPage, SetCondition, SetOp, SetRead, StoreError, StoreOptions, StreamId,
    StreamRead, TxOp, TxRead, ValueKind, Watched, ZRange, ZRangeBy, ZSetRead, byte_range,
};
use proptest::prelude::*;

use crate::strategies::{
    aggregate, bit_op, bit_query, expire_condition, expiry, hash_read, list_read, new_id, score,
    set_condition, set_op, set_read, stream_fields, stream_id, stream_read, trim, weights,
    zadd_options, zrange, zrange_by, zset_read,
};

/// A handful of keys, so commands collide on them.
const KEYS: &[&[u8]] = &[b"a", b"b", b"c", b"d", b"e", b"f"];

fn key() -> impl Strategy<Value = Vec<u8>> {
    proptest::sample::select(KEYS).prop_map(<[u8]>::to_vec)
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        9 => plain_command(),
        1 => (proptest::collection::vec(tx_op(), 1..4), 0u64..8).prop_map(|(ops, read_bytes_max)| {
            Command::Transaction { ops, read_bytes_max, watched: Vec::new() }
        }),
    ]
}

fn tx_op() -> impl Strategy<Value = TxOp> {
    prop_oneof![
        3 => plain_command()
            .prop_filter("not allowed in a transaction", |c| {
                !matches!(c, Command::PurgeExpired { .. } | Command::FlushAll)
            })
            .prop_map(TxOp::Write),
        1 => key().prop_map(|key| TxOp::Read(TxRead::Get { key })),
        1 => (key(), any::<bool>()).prop_map(|(key, in_ms)| TxOp::Read(TxRead::Ttl { key, in_ms })),
        1 => proptest::collection::vec(key(), 1..3).prop_map(|keys| TxOp::Read(TxRead::MGet { keys })),
        1 => proptest::collection::vec(key(), 1..3).prop_map(|keys| TxOp::Read(TxRead::Exists { keys })),
        1 => key().prop_map(|key| TxOp::Read(TxRead::Strlen { key })),
        1 => (key(), -4i64..4, -4i64..4)
            .prop_map(|(key, start, end)| TxOp::Read(TxRead::GetRange { key, start, end })),
        1 => (key(), bit_query()).prop_map(|(key, query)| TxOp::Read(TxRead::Bits { key, query })),
        1 => key().prop_map(|key| TxOp::Read(TxRead::Type { key })),
        1 => (key(), any::<bool>())
            .prop_map(|(key, in_ms)| TxOp::Read(TxRead::ExpireTime { key, in_ms })),
        2 => (key(), hash_read(field)).prop_map(|(key, read)| TxOp::Read(TxRead::Hash { key, read })),
        1 => (key(), set_read(field)).prop_map(|(key, read)| TxOp::Read(TxRead::Set { key, read })),
        1 => (key(), list_read(field)).prop_map(|(key, read)| TxOp::Read(TxRead::List { key, read })),
        1 => (set_op(), proptest::collection::vec(key(), 1..3))
            .prop_map(|(op, keys)| TxOp::Read(TxRead::SetCombine { op, keys })),
        1 => (proptest::collection::vec(key(), 1..3), 0u64..3)
            .prop_map(|(keys, limit)| TxOp::Read(TxRead::SetInterCard { keys, limit })),
        2 => (key(), zset_read(field)).prop_map(|(key, read)| TxOp::Read(TxRead::ZSet { key, read })),
        1 => (set_op(), 1usize..4, aggregate(), any::<bool>())
            .prop_flat_map(|(op, n, aggregate, with_scores)| (
                proptest::collection::vec(key(), n),
                weights(n),
                Just((op, aggregate, with_scores)),
            ))
            .prop_map(|(keys, weights, (op, aggregate, with_scores))| TxOp::Read(
                TxRead::ZCombine { op, keys, weights, aggregate, with_scores }
            )),
        1 => (proptest::collection::vec(key(), 1..3), 0u64..3)
            .prop_map(|(keys, limit)| TxOp::Read(TxRead::ZInterCard { keys, limit })),
        2 => (key(), stream_read()).prop_map(|(key, read)| TxOp::Read(TxRead::Stream { key, read })),
        1 => (proptest::collection::vec((key(), stream_id()), 1..3), 0u64..3)
            .prop_map(|(after, count)| TxOp::Read(TxRead::XRead { after, count })),
    ]
}

fn aggregate_sum() -> aegis_node::Aggregate {
    aegis_node::Aggregate::Sum
}

/// A few fields, so hash commands collide on them.
const FIELDS: &[&[u8]] = &[b"x", b"y", b"z"];

fn field() -> impl Strategy<Value = Vec<u8>> {
    proptest::sample::select(FIELDS).prop_map(<[u8]>::to_vec)
}

/// A collection read on its own, as a transaction would answer it.
fn alone(read: Result<Output, StoreError>) -> Output {
    match read {
        Ok(output) => output,
        Err(StoreError::WrongKind { .. }) => Output::Rejected(Rejection::WrongType),
        Err(e) => panic!("read failed: {e}"),
    }
}

/// A string read on its own: the value, or the answer for a key of another kind.
fn string_alone(
    store: &KvStateMachine,
    key: &[u8],
    now_ms: u64,
) -> Result<Option<Vec<u8>>, Output> {
    match store.get_bounded(key, now_ms, usize::MAX) {
        Ok(value) => Ok(value),
        Err(StoreError::WrongKind { .. }) => Err(Output::Rejected(Rejection::WrongType)),
        Err(e) => panic!("read failed: {e}"),
    }
}

/// What a read of a transaction gives when run on its own, through the store's
/// public reads, at `now_ms`: the model a transaction's reads are checked against.
fn read_alone(store: &KvStateMachine, read: &TxRead, now_ms: u64) -> Output {
    let string = |key: &[u8]| string_alone(store, key, now_ms);
    match read {
        TxRead::Get { key } => string(key).map_or_else(|wrong| wrong, Output::Value),
        TxRead::MGet { keys } => Output::Values(store.mget(keys, now_ms).unwrap()),
        TxRead::Exists { keys } => Output::Count(store.exists(keys, now_ms).unwrap()),
        TxRead::Strlen { key } => string(key).map_or_else(
            |wrong| wrong,
            |v| Output::Integer(v.map_or(0, |v| v.len()) as i64),
        ),
        TxRead::Ttl { key, in_ms } => {
            Output::Integer(match store.key_expiry(key, now_ms).unwrap() {
                KeyExpiry::Absent => -2,
                KeyExpiry::Never => -1,
                KeyExpiry::At(at) if *in_ms => (at - now_ms) as i64,
                KeyExpiry::At(at) => ((at - now_ms + 500) / 1000) as i64,
            })
        }
        TxRead::Bits { key, query } => string(key).map_or_else(
            |wrong| wrong,
            |v| Output::Integer(bits::answer(v.as_deref(), query)),
        ),
        TxRead::Type { key } => Output::Value(Some(
            match store.kind(key, now_ms).unwrap() {
                None => "none",
                Some(kind) => kind.name(),
            }
            .as_bytes()
            .to_vec(),
        )),
        TxRead::Hash { key, read } => alone(store.read_hash(key, read, now_ms, usize::MAX)),
        TxRead::Set { key, read } => alone(store.read_set(key, read, now_ms, usize::MAX)),
        TxRead::List { key, read } => alone(store.read_list(key, read, now_ms, usize::MAX)),
        TxRead::ZSet { key, read } => alone(store.read_zset(key, read, now_ms, usize::MAX)),
        TxRead::Stream { key, read } => alone(store.read_stream(key, read, now_ms, usize::MAX)),
        TxRead::XRead { after, count } => {
            alone(store.read_streams(after, *count, now_ms, usize::MAX))
        }
        TxRead::ZCombine {
            op,
            keys,
            weights,
            aggregate,
            with_scores,
        } => alone(store.read_zsets(
            *op,
            keys,
            weights,
            *aggregate,
            *with_scores,
            None,
            now_ms,
            usize::MAX,
        )),
        TxRead::ZInterCard { keys, limit } => alone(store.read_zsets(
            SetOp::Inter,
            keys,
            &[],
            aggregate_sum(),
            false,
            Some(*limit),
            now_ms,
            usize::MAX,
        )),
        TxRead::SetCombine { op, keys } => {
            alone(store.read_sets(*op, keys, None, now_ms, usize::MAX))
        }
        TxRead::SetInterCard { keys, limit } => {
            alone(store.read_sets(SetOp::Inter, keys, Some(*limit), now_ms, usize::MAX))
        }
        TxRead::ExpireTime { key, in_ms } => {
            Output::Integer(match store.key_expiry(key, now_ms).unwrap() {
                KeyExpiry::Absent => -2,
                KeyExpiry::Never => -1,
                KeyExpiry::At(at) if *in_ms => at as i64,
                KeyExpiry::At(at) => ((at + 500) / 1000) as i64,
            })
        }
        TxRead::GetRange { key, start, end } => match string(key) {
            Ok(value) => {
                let value = value.unwrap_or_default();
                Output::Value(Some(value[byte_range(value.len(), *start, *end)].to_vec()))
            }
            Err(wrong) => wrong,
        },
        other => panic!("no model for {other:?}"),
    }
}

fn plain_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        4 => (key(), 0u8..100, proptest::option::of(0u64..200), set_condition()).prop_map(
            |(key, value, expire_at_ms, condition)| Command::Set {
                key,
                value: value.to_string().into_bytes(),
                expire_at_ms,
                condition,
            }
        ),
        2 => proptest::collection::vec(key(), 1..3).prop_map(|keys| Command::Del { keys }),
        2 => (key(), -5i64..5).prop_map(|(key, delta)| Command::IncrBy { key, delta }),
        1 => proptest::collection::vec((key(), 0u8..9), 1..3).prop_map(|pairs| Command::MSet {
            pairs: pairs
                .into_iter()
                .map(|(k, v)| (k, v.to_string().into_bytes()))
                .collect(),
        }),
        1 => (1u32..4).prop_map(|batch_max| Command::PurgeExpired { batch_max }),
        2 => (key(), 0u8..100, expiry(0u64..200), set_condition(), any::<bool>()).prop_map(
            |(key, value, expiry, condition, get)| Command::SetWith {
                key,
                value: value.to_string().into_bytes(),
                expiry,
                condition,
                get,
            }
        ),
        2 => (key(), 0u64..300, expire_condition()).prop_map(|(key, expire_at_ms, condition)| {
            Command::Expire {
                key,
                expire_at_ms,
                condition,
            }
        }),
        1 => key().prop_map(|key| Command::Persist { key }),
        1 => key().prop_map(|key| Command::GetDel { key }),
        1 => (key(), expiry(0u64..300)).prop_map(|(key, expiry)| Command::GetEx { key, expiry }),
        1 => (key(), 0u8..100, 0u64..8).prop_map(|(key, value, len_max)| Command::Append {
            key,
            value: value.to_string().into_bytes(),
            len_max,
        }),
        1 => proptest::collection::vec((key(), 0u8..9), 1..3).prop_map(|pairs| Command::MSetNx {
            pairs: pairs
                .into_iter()
                .map(|(k, v)| (k, v.to_string().into_bytes()))
                .collect(),
        }),
        1 => Just(Command::FlushAll),
        1 => (key(), key(), any::<bool>())
            .prop_map(|(from, to, if_absent)| Command::Rename { from, to, if_absent }),
        1 => (key(), key(), any::<bool>())
            .prop_map(|(from, to, replace)| Command::Copy { from, to, replace }),
        1 => (key(), 0u64..40, any::<bool>())
            .prop_map(|(key, offset, on)| Command::SetBit { key, offset, on }),
        1 => (bit_op(), key(), proptest::collection::vec(key(), 1..3)).prop_map(
            |(op, dest, mut keys)| {
                if op == BitOp::Not {
                    keys.truncate(1);
                }
                Command::BitOp { op, dest, keys }
            }
        ),
        1 => (key(), proptest::sample::select(&["0.5", "-1", "1e1", "0.000000000000000001"][..]))
            .prop_map(|(key, increment)| Command::IncrByFloat { key, increment: increment.into() }),
        1 => (key(), 0u64..6, 0u8..100, 0u64..10).prop_map(|(key, offset, value, len_max)| {
            Command::SetRange {
                key,
                offset,
                value: if value < 10 { Vec::new() } else { value.to_string().into_bytes() },
                len_max,
            }
        }),
        2 => (key(), proptest::collection::vec((field(), 0u8..20), 1..3), any::<bool>()).prop_map(
            |(key, pairs, if_absent)| Command::HSet {
                key,
                pairs: pairs
                    .into_iter()
                    .take(if if_absent { 1 } else { 3 })
                    .map(|(f, v)| (f, v.to_string().into_bytes()))
                    .collect(),
                if_absent,
            }
        ),
        1 => (key(), proptest::collection::vec(field(), 1..3))
            .prop_map(|(key, fields)| Command::HDel { key, fields }),
        1 => (key(), field(), -5i64..5)
            .prop_map(|(key, field, delta)| Command::HIncrBy { key, field, delta }),
        2 => (key(), proptest::collection::vec(field(), 1..3))
            .prop_map(|(key, members)| Command::SAdd { key, members }),
        1 => (key(), proptest::collection::vec(field(), 1..3))
            .prop_map(|(key, members)| Command::SRem { key, members }),
        1 => (key(), key(), field()).prop_map(|(from, to, member)| Command::SMove { from, to, member }),
        1 => (key(), proptest::option::of(0u64..3), any::<u64>())
            .prop_map(|(key, count, seed)| Command::SPop { key, count, seed }),
        1 => (set_op(), key(), proptest::collection::vec(key(), 1..3))
            .prop_map(|(op, dest, keys)| Command::SetStore { op, dest, keys }),
        2 => (key(), proptest::collection::vec(field(), 1..3), any::<bool>(), any::<bool>())
            .prop_map(|(key, items, front, if_exists)| Command::Push { key, items, front, if_exists }),
        1 => (key(), any::<bool>(), proptest::option::of(0u64..3))
            .prop_map(|(key, front, count)| Command::Pop { key, front, count }),
        1 => (key(), -3i64..3, field()).prop_map(|(key, index, item)| Command::LSet { key, index, item }),
        1 => (key(), -2i64..2, field()).prop_map(|(key, count, item)| Command::LRem { key, count, item }),
        1 => (key(), -3i64..3, -3i64..3).prop_map(|(key, start, stop)| Command::LTrim { key, start, stop }),
        1 => (key(), any::<bool>(), field(), field())
            .prop_map(|(key, before, pivot, item)| Command::LInsert { key, before, pivot, item }),
        1 => (key(), key(), any::<bool>(), any::<bool>()).prop_map(|(from, to, from_front, to_front)| {
            Command::LMove { from, to, from_front, to_front }
        }),
        1 => (key(), field(), proptest::sample::select(&["0.5", "-1", "1e1"][..])).prop_map(
            |(key, field, increment)| Command::HIncrByFloat { key, field, increment: increment.into() }
        ),
        3 => (key(), proptest::collection::vec((score(), field()), 1..3), zadd_options())
            .prop_map(|(key, mut entries, options)| {
                if options.incr {
                    entries.truncate(1);
                }
                Command::ZAdd { key, entries, options }
            }),
        1 => (key(), proptest::collection::vec(field(), 1..3))
            .prop_map(|(key, members)| Command::ZRem { key, members }),
        1 => (key(), any::<bool>(), 0u64..3).prop_map(|(key, max, count)| Command::ZPop { key, max, count }),
        1 => (key(), zrange_by(field)).prop_map(|(key, by)| Command::ZRemRange { key, by }),
        1 => (set_op(), key(), 1usize..4, aggregate())
            .prop_flat_map(|(op, dest, n, aggregate)| (
                proptest::collection::vec(key(), n),
                weights(n),
                Just((op, dest, aggregate)),
            ))
            .prop_map(|(keys, weights, (op, dest, aggregate))| Command::ZStore {
                op, dest, keys, weights, aggregate
            }),
        1 => (key(), key(), zrange(field))
            .prop_map(|(dest, source, range)| Command::ZRangeStore { dest, source, range }),
        1 => (key(), field()).prop_map(|(channel, message)| Command::Publish { channel, message }),
        1 => (proptest::collection::vec(key(), 1..3), any::<bool>(), any::<bool>(), 1u64..4)
            .prop_map(|(keys, zset, end, count)| Command::MPop {
                keys,
                from: if zset {
                    aegis_node::MPopFrom::ZSet { max: end }
                } else {
                    aegis_node::MPopFrom::List { front: end }
                },
                count,
            }),
        3 => (key(), new_id(), stream_fields(field), any::<bool>(), proptest::option::of(trim()))
            .prop_map(|(key, id, fields, no_mkstream, trim)| Command::XAdd {
                key, id, fields, no_mkstream, trim
            }),
        // As the server parses XDEL: an argument that is not an ID leaves no IDs.
        1 => (key(), proptest::collection::vec(stream_id(), 0..3)).prop_map(|(key, ids)| {
            Command::XDel { key, bad_id: ids.is_empty(), ids }
        }),
        1 => (key(), trim()).prop_map(|(key, trim)| Command::XTrim { key, trim }),
    ]
}

/// What happens at one log index.
#[derive(Debug, Clone)]
enum Step {
    /// A command applied at a time (ms).
    Apply(Command, u64),
    /// An entry that is not a command (a Raft no-op).
    Noop,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        9 => (command(), 0u64..250).prop_map(|(c, t)| Step::Apply(c, t)),
        1 => Just(Step::Noop),
    ]
}

fn store(buffer_keys_max: usize) -> KvStateMachine {
    KvStateMachine::in_memory_with(StoreOptions {
        sync_writes: false,
        buffer_keys_max,
        ..StoreOptions::default()
    })
    .unwrap()
}

fn snapshot(store: &KvStateMachine) -> Vec<Vec<u8>> {
    store
        .snapshot(256)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// Everything a reader can see at time `now_ms`.
fn view(store: &KvStateMachine, now_ms: u64) -> impl PartialEq + std::fmt::Debug {
    (
        store.mget(KEYS, now_ms).unwrap(),
        store.exists(KEYS, now_ms).unwrap(),
        store.key_counts().unwrap(),
        store.next_expiry_ms().unwrap(),
        KEYS.iter()
            .map(|key| store.key_expiry(key, now_ms).unwrap())
            .collect::<Vec<_>>(),
        KEYS.iter()
            .map(|key| {
                let kind = store.kind(key, now_ms).unwrap();
                let whole = match kind {
                    Some(ValueKind::Hash) => Some(
                        store
                            .read_hash(key, &HashRead::GetAll, now_ms, usize::MAX)
                            .unwrap(),
                    ),
                    Some(ValueKind::Set) => Some(
                        store
                            .read_set(key, &SetRead::Members, now_ms, usize::MAX)
                            .unwrap(),
                    ),
                    Some(ValueKind::List) => {
                        let all = ListRead::Range { start: 0, stop: -1 };
                        Some(store.read_list(key, &all, now_ms, usize::MAX).unwrap())
                    }
                    Some(ValueKind::ZSet) => {
                        let all = ZSetRead::Range {
                            range: ZRange {
                                by: ZRangeBy::Rank { start: 0, stop: -1 },
                                rev: false,
                                limit: None,
                            },
                            with_scores: true,
                        };
                        Some(store.read_zset(key, &all, now_ms, usize::MAX).unwrap())
                    }
                    Some(ValueKind::Stream) => {
                        let all = StreamRead::Range {
                            start: StreamId::MIN,
                            end: StreamId::MAX,
                            count: None,
                            rev: false,
                        };
                        let read = |read| store.read_stream(key, read, now_ms, usize::MAX).unwrap();
                        Some(Output::Each(vec![read(&all), read(&StreamRead::LastId)]))
                    }
                    _ => None,
                };
                (kind, whole)
            })
            .collect::<Vec<_>>(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn buffered_applies_match_written_through_ones(
        steps in proptest::collection::vec(step(), 1..60),
        batch_sizes in proptest::collection::vec(1usize..6, 1..60),
        buffer_keys_max in 1usize..5,
    ) {
        let through = store(0);
        let buffered = store(buffer_keys_max);
        let mut index = 0;
        let mut rest = steps.as_slice();
        for &size in batch_sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (batch, after) = rest.split_at(size.min(rest.len()));
            rest = after;
            let mut entries = Vec::new();
            for step in batch {
                index += 1;
                match step {
                    Step::Apply(command, now_ms) => entries.push(ApplyEntry {
                        index,
                        command,
                        now_ms: *now_ms,
                    }),
                    Step::Noop => {
                        prop_assert!(through.apply_noop(index).unwrap());
                        prop_assert!(buffered.apply_noop(index).unwrap());
                    }
                }
            }
            prop_assert_eq!(
                buffered.apply_batch(&entries).unwrap(),
                through.apply_batch(&entries).unwrap()
            );
            prop_assert_eq!(buffered.applied_index(), through.applied_index());
            for now_ms in [0, 100, 300] {
                prop_assert_eq!(view(&buffered, now_ms), view(&through, now_ms));
            }
        }
        // A replay of the whole log changes nothing on either.
        let replay: Vec<ApplyEntry<'_>> = steps
            .iter()
            .enumerate()
            .filter_map(|(i, step)| match step {
                Step::Apply(command, now_ms) => Some(ApplyEntry {
                    index: i as u64 + 1,
                    command,
                    now_ms: *now_ms,
                }),
                Step::Noop => None,
            })
            .collect();
        prop_assert_eq!(buffered.apply_batch(&replay).unwrap(), through.apply_batch(&replay).unwrap());
        prop_assert_eq!(snapshot(&buffered), snapshot(&through));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// A transaction gives what its commands give when each is applied on its own, one
    /// after the other at the same time, and leaves the same state.
    #[test]
    fn a_transaction_equals_its_commands_one_by_one(
        before in proptest::collection::vec(plain_command(), 0..8),
        ops in proptest::collection::vec(tx_op(), 1..8),
        now_ms in 0u64..250,
        watch in proptest::collection::vec(key(), 0..3),
        tamper in any::<bool>(),
    ) {
        let together = store(2);
        let alone = store(2);
        let mut index = 0;
        for command in &before {
            index += 1;
            prop_assert_eq!(
                together.apply(index, command, 100).unwrap(),
                alone.apply(index, command, 100).unwrap()
            );
        }
        // Watched keys hold what they held when the transaction applies, unless one is
        // tampered with: then nothing runs.
        let mut watched: Vec<Watched> = watch
            .iter()
            .map(|key| Watched {
                key: key.clone(),
                held: together.live_record(key, now_ms).unwrap(),
            })
            .collect();
        let tampered = tamper && !watched.is_empty();
        if tampered {
            watched[0].held = match watched[0].held.take() {
                Some(_) => None,
                None => Some(Held { value: b"other".to_vec(), expire_at_ms: None }),
            };
        }
        let transaction = Command::Transaction {
            ops: ops.clone(),
            read_bytes_max: u64::MAX,
            watched,
        };
        let output = together.apply(index + 1, &transaction, now_ms).unwrap();
        if tampered {
            prop_assert_eq!(output, Output::Aborted);
            for at in [now_ms, 1_000] {
                prop_assert_eq!(view(&together, at), view(&alone, at));
            }
            return Ok(());
        }
        let Output::Each(outputs) = output else {
            panic!("a transaction answers with each output");
        };
        let mut expected = Vec::new();
        for op in &ops {
            expected.push(match op {
                TxOp::Write(command) => {
                    index += 1;
                    alone.apply(index, command, now_ms).unwrap()
                }
                TxOp::Read(read) => read_alone(&alone, read, now_ms),
                other => panic!("no model for {other:?}"),
            });
        }
        prop_assert_eq!(outputs, expected);
        for at in [now_ms, now_ms + 100, 1_000] {
            prop_assert_eq!(view(&together, at), view(&alone, at));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Scanning in steps of any size, each going on from where the last stopped, finds
    /// exactly the live keys, in byte order, whatever is buffered and whatever reached
    /// redb.
    #[test]
    fn a_scan_in_steps_finds_every_live_key_once(
        commands in proptest::collection::vec(plain_command(), 0..40),
        buffer_keys_max in 0usize..5,
        persist_after in 0usize..40,
        steps in proptest::collection::vec(1usize..4, 1..20),
        now_ms in 0u64..300,
    ) {
        let store = store(buffer_keys_max);
        for (i, command) in commands.iter().enumerate() {
            store.apply(i as u64 + 1, command, 100).unwrap();
            if i == persist_after {
                store.persist().unwrap();
            }
        }
        let live: Vec<Vec<u8>> = KEYS
            .iter()
            .filter(|key| store.kind(key, now_ms).unwrap().is_some())
            .map(|key| key.to_vec())
            .collect();
        let mut found = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        for &step in steps.iter().cycle() {
            let ScanPage { keys, last, .. } = store.scan_keys(after.as_deref(), step, now_ms).unwrap();
            prop_assert!(keys.len() <= step);
            found.extend(keys);
            match last {
                Some(last) => after = Some(last),
                None => break,
            }
        }
        prop_assert_eq!(found, live);
    }
}

#[test]
fn buffered_applies_reach_redb_on_persist_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let options = StoreOptions {
        sync_writes: false,
        buffer_keys_max: 1000,
        ..StoreOptions::default()
    };
    let set = |key: &str| Command::Set {
        key: key.into(),
        value: b"v".to_vec(),
        expire_at_ms: Some(50),
        condition: SetCondition::Always,
    };
    {
        let store = KvStateMachine::open(&path, options).unwrap();
        store.apply(1, &set("x"), 0).unwrap();
        store.apply(2, &set("y"), 0).unwrap();
        store
            .apply(
                3,
                &Command::Del {
                    keys: vec![b"x".to_vec()],
                },
                0,
            )
            .unwrap();
        // Buffered: visible to reads before anything reached the file.
        assert_eq!(store.get(b"y", 0).unwrap(), Some(b"v".to_vec()));
        assert_eq!(store.get(b"x", 0).unwrap(), None);
        assert_eq!(store.key_count().unwrap(), 1);
        store.persist().unwrap();
        store.apply(4, &set("z"), 0).unwrap();
        // Closing writes the rest through as well.
    }
    let store = KvStateMachine::open(&path, options).unwrap();
    assert_eq!(store.applied_index(), 4);
    assert_eq!(
        store.mget(&[b"x", b"y", b"z"], 0).unwrap(),
        vec![None, Some(b"v".to_vec()), Some(b"v".to_vec())]
    );
    assert_eq!(store.next_expiry_ms().unwrap(), Some(50));
}

#[test]
fn the_durable_index_moves_only_with_durable_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let options = StoreOptions {
        sync_writes: false,
        buffer_keys_max: 2,
        ..StoreOptions::default()
    };
    let set = |key: &str| Command::Set {
        key: key.into(),
        value: b"v".to_vec(),
        expire_at_ms: None,
        condition: SetCondition::Always,
    };
    {
        let store = KvStateMachine::open(&path, options).unwrap();
        for (index, key) in (1..).zip(["a", "b", "c", "d", "e"]) {
            store.apply(index, &set(key), 0).unwrap();
        }
        // Full buffers were written to redb, unsynced.
        assert_eq!(store.durable_index(), 0);
        store.begin_persist().unwrap();
        store.apply(6, &set("f"), 0).unwrap();
        store.persist().unwrap();
        assert_eq!(store.durable_index(), 6);
        store.apply(7, &set("g"), 0).unwrap();
        assert_eq!(store.durable_index(), 6);
    }
    // Closed cleanly, the file holds everything; still, nothing counts as durable
    // before this store itself syncs.
    let store = KvStateMachine::open(&path, options).unwrap();
    assert_eq!(store.applied_index(), 7);
    assert_eq!(store.durable_index(), 0);
    let synced = KvStateMachine::in_memory_with(StoreOptions {
        sync_writes: true,
        ..options
    })
    .unwrap();
    synced.apply(1, &set("a"), 0).unwrap();
    assert_eq!(synced.durable_index(), 1);
}

#[test]
fn readers_never_see_a_flush_half_done() {
    let store = std::sync::Arc::new(store(1));
    let writes: u64 = 2000;
    let reader = {
        let store = std::sync::Arc::clone(&store);
        std::thread::spawn(move || {
            let mut last = 0;
            while last < writes {
                let values = store.mget(&[b"a", b"b"], 0).unwrap();
                let [a, b] = [&values[0], &values[1]].map(|v| {
                    v.as_ref().map_or(0, |v| {
                        std::str::from_utf8(v).unwrap().parse::<u64>().unwrap()
                    })
                });
                assert_eq!(a, b, "one entry wrote both keys");
                assert!(a >= last, "a read went back from {last} to {a}");
                last = a;
            }
        })
    };
    for i in 1..=writes {
        let value = i.to_string().into_bytes();
        let command = Command::MSet {
            pairs: vec![(b"a".to_vec(), value.clone()), (b"b".to_vec(), value)],
        };
        store.apply(i, &command, 0).unwrap();
    }
    reader.join().unwrap();
}

/// Buffered applies, flushes and persists, then a crash at any moment: the file reopens
/// at some applied index with exactly the state of that index, so replaying the log from
/// there (counters included, which a half-applied state would count twice) gives what
/// the running store has.
#[test]
fn a_crash_at_any_moment_reopens_the_store_at_a_whole_index() {
    // A fixed sequence is all this needs: splitmix64 from a fixed seed.
    let mut state = 7u64;
    let mut next = |below: usize| {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % below as u64) as usize
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let copy = dir.path().join("crashed.redb");
    let options = StoreOptions {
        sync_writes: false,
        buffer_keys_max: 16,
        ..StoreOptions::default()
    };
    let keys: Vec<Vec<u8>> = (0..40).map(|i| format!("k{i}").into_bytes()).collect();
    let log: Vec<Command> = (0..400)
        .map(|_| {
            let key = keys[next(keys.len())].clone();
            if next(3) == 0 {
                Command::Set {
                    key,
                    value: b"7".to_vec(),
                    expire_at_ms: None,
                    condition: SetCondition::Always,
                }
            } else {
                Command::IncrBy { key, delta: 1 }
            }
        })
        .collect();
    let store = KvStateMachine::open(&path, options).unwrap();
    let mut crashes = 0;
    for (i, command) in log.iter().enumerate() {
        let index = i as u64 + 1;
        store.apply(index, command, 0).unwrap();
        if index.is_multiple_of(100) {
            store.persist().unwrap();
        }
        if next(10) != 0 {
            continue;
        }
        // The file as a crash would leave it, every write issued so far included.
        std::fs::copy(&path, &copy).unwrap();
        let crashed = KvStateMachine::open(&copy, options).unwrap();
        let from = crashed.applied_index();
        assert!(from <= index);
        for (j, command) in log.iter().enumerate().take(i + 1).skip(from as usize) {
            crashed.apply(j as u64 + 1, command, 0).unwrap();
        }
        assert_eq!(
            crashed.mget(&keys, 0).unwrap(),
            store.mget(&keys, 0).unwrap(),
            "reopened at {from}, crashed at {index}"
        );
        drop(crashed);
        crashes += 1;
    }
    assert!(crashes > 20);
}
