//! Proptest strategies for the command types, shared by the tests that generate logs.

use aegis_node::geo::{self, Center, Order, Search, Shape, Unit};
use aegis_node::{Aggregate, LexBound, Score, ScoreBound, ZAddOptions, ZRange, ZRangeBy, ZSetRead};
use aegis_node::{BitOp, BitQuery, BitRange, RangeUnit};
use aegis_node::{ExpireCondition, Expiry, HashRead, ListRead, SetCondition, SetOp, SetRead};
use aegis_node::{
    GroupOp, GroupRead, GroupStart, NewId, PendingRange, StreamId, StreamRead, Trim, TrimBy,
};
use proptest::prelude::*;

pub fn set_condition() -> impl Strategy<Value = SetCondition> {
    prop_oneof![
        Just(SetCondition::Always),
        Just(SetCondition::IfAbsent),
        Just(SetCondition::IfPresent)
    ]
}

/// An expiry whose absolute times come from `at`.
pub fn expiry(at: impl Strategy<Value = u64>) -> impl Strategy<Value = Expiry> {
    prop_oneof![
        Just(Expiry::Clear),
        Just(Expiry::Keep),
        at.prop_map(Expiry::At),
    ]
}

pub fn expire_condition() -> impl Strategy<Value = ExpireCondition> {
    prop_oneof![
        Just(ExpireCondition::Always),
        Just(ExpireCondition::IfNone),
        Just(ExpireCondition::IfSome),
        Just(ExpireCondition::IfLater),
        Just(ExpireCondition::IfSooner),
        Just(ExpireCondition::IfSomeAndSooner),
    ]
}

pub fn bit_op() -> impl Strategy<Value = BitOp> {
    prop_oneof![
        Just(BitOp::And),
        Just(BitOp::Or),
        Just(BitOp::Xor),
        Just(BitOp::Not)
    ]
}

/// A bit query with positions around a short value's bounds, and now and then far off.
pub fn bit_query() -> impl Strategy<Value = BitQuery> {
    let index = prop_oneof![4 => -20i64..20, 1 => any::<i64>()];
    let unit = prop_oneof![Just(RangeUnit::Byte), Just(RangeUnit::Bit)];
    let range = proptest::option::of(
        (index.clone(), proptest::option::of(index), unit)
            .prop_map(|(start, end, unit)| BitRange { start, end, unit }),
    );
    prop_oneof![
        prop_oneof![4 => 0u64..64, 1 => any::<u64>()].prop_map(|offset| BitQuery::Get { offset }),
        range.clone().prop_map(|range| BitQuery::Count {
            // BITCOUNT always has both ends.
            range: range.map(|r| BitRange {
                end: r.end.or(Some(-1)),
                ..r
            }),
        }),
        (any::<bool>(), range).prop_map(|(bit, range)| BitQuery::Pos { bit, range }),
    ]
}

/// A read of a hash, naming fields that `field` makes.
pub fn hash_read<S: Strategy<Value = Vec<u8>>>(
    field: fn() -> S,
) -> impl Strategy<Value = HashRead> {
    prop_oneof![
        field().prop_map(|field| HashRead::Get { field }),
        proptest::collection::vec(field(), 1..3).prop_map(|fields| HashRead::MGet { fields }),
        Just(HashRead::Len),
        Just(HashRead::GetAll),
        Just(HashRead::Keys),
        Just(HashRead::Values),
        field().prop_map(|field| HashRead::Exists { field }),
        field().prop_map(|field| HashRead::StrLen { field }),
    ]
}

/// A read of a set, naming members that `member` makes.
pub fn set_read<S: Strategy<Value = Vec<u8>>>(member: fn() -> S) -> impl Strategy<Value = SetRead> {
    prop_oneof![
        member().prop_map(|member| SetRead::IsMember { member }),
        proptest::collection::vec(member(), 1..3)
            .prop_map(|members| SetRead::MIsMember { members }),
        Just(SetRead::Members),
        Just(SetRead::Card),
    ]
}

pub fn set_op() -> impl Strategy<Value = SetOp> {
    prop_oneof![Just(SetOp::Inter), Just(SetOp::Union), Just(SetOp::Diff)]
}

/// A read of a list, looking for items that `item` makes.
pub fn list_read<S: Strategy<Value = Vec<u8>>>(item: fn() -> S) -> impl Strategy<Value = ListRead> {
    let at = -4i64..4;
    prop_oneof![
        Just(ListRead::Len),
        (at.clone(), at.clone()).prop_map(|(start, stop)| ListRead::Range { start, stop }),
        at.prop_map(|index| ListRead::Index { index }),
        (
            item(),
            prop_oneof![-3i64..0, 1i64..4],
            proptest::option::of(0u64..3),
            0u64..4
        )
            .prop_map(|(item, rank, count, max_len)| ListRead::Pos {
                item,
                rank,
                count,
                max_len,
            }),
    ]
}

/// A score: small integers and halves, which tie and order in every way, and the
/// infinities.
pub fn score() -> impl Strategy<Value = Score> {
    prop_oneof![
        8 => (-8i32..8).prop_map(|n| Score::new(f64::from(n) / 2.0).unwrap()),
        1 => Just(Score::new(f64::INFINITY).unwrap()),
        1 => Just(Score::new(f64::NEG_INFINITY).unwrap()),
    ]
}

/// The options of a `ZADD`, the ones that exclude each other left out as the server
/// leaves them.
pub fn zadd_options() -> impl Strategy<Value = ZAddOptions> {
    (0u8..3, 0u8..3, any::<bool>(), any::<bool>()).prop_map(|(only, compare, changed, incr)| {
        ZAddOptions {
            only_new: only == 1 && compare == 0,
            only_existing: only == 2,
            greater: compare == 1,
            less: compare == 2,
            changed,
            incr,
        }
    })
}

/// A range of a sorted set, by rank, score or member that `member` makes.
pub fn zrange_by<S: Strategy<Value = Vec<u8>>>(
    member: fn() -> S,
) -> impl Strategy<Value = ZRangeBy> {
    let at = -4i64..4;
    let score_bound =
        || (score(), any::<bool>()).prop_map(|(score, exclusive)| ScoreBound { score, exclusive });
    let lex_bound = move || {
        prop_oneof![
            Just(LexBound::Min),
            Just(LexBound::Max),
            member().prop_map(LexBound::Inclusive),
            member().prop_map(LexBound::Exclusive),
        ]
    };
    prop_oneof![
        (at.clone(), at).prop_map(|(start, stop)| ZRangeBy::Rank { start, stop }),
        (score_bound(), score_bound()).prop_map(|(min, max)| ZRangeBy::Score { min, max }),
        (lex_bound(), lex_bound()).prop_map(|(min, max)| ZRangeBy::Lex { min, max }),
    ]
}

/// A read of a sorted set, naming members that `member` makes.
pub fn zset_read<S: Strategy<Value = Vec<u8>>>(
    member: fn() -> S,
) -> impl Strategy<Value = ZSetRead> {
    let range = zrange(member);
    prop_oneof![
        Just(ZSetRead::Card),
        member().prop_map(|member| ZSetRead::Score { member }),
        proptest::collection::vec(member(), 1..3).prop_map(|members| ZSetRead::MScore { members }),
        (member(), any::<bool>()).prop_map(|(member, rev)| ZSetRead::Rank { member, rev }),
        zrange_by(member).prop_map(|by| ZSetRead::Count { by }),
        (range, any::<bool>())
            .prop_map(|(range, with_scores)| ZSetRead::Range { range, with_scores }),
    ]
}

pub fn aggregate() -> impl Strategy<Value = Aggregate> {
    prop_oneof![
        Just(Aggregate::Sum),
        Just(Aggregate::Min),
        Just(Aggregate::Max)
    ]
}

/// Weights for `keys` sources: none, or one each.
pub fn weights(keys: usize) -> impl Strategy<Value = Vec<Score>> {
    prop_oneof![Just(Vec::new()), proptest::collection::vec(score(), keys),]
}

/// A range of a sorted set as `ZRANGESTORE` takes it.
pub fn zrange<S: Strategy<Value = Vec<u8>>>(member: fn() -> S) -> impl Strategy<Value = ZRange> {
    (
        zrange_by(member),
        any::<bool>(),
        proptest::option::of((-1i64..3, -1i64..3)),
    )
        .prop_map(|(by, rev, limit)| {
            let limit = limit.filter(|_| !matches!(by, ZRangeBy::Rank { .. }));
            ZRange { by, rev, limit }
        })
}

/// A stream ID: a few milliseconds (the first ones, and around 100, the time the
/// generated logs apply at) and sequence numbers, so IDs tie, follow and pass each
/// other and the ones `*` makes; now and then the lowest or the highest there is.
pub fn stream_id() -> impl Strategy<Value = StreamId> {
    let ms = prop_oneof![3 => 0u64..4, 1 => 99u64..102];
    prop_oneof![
        16 => (ms, 0u64..3).prop_map(|(ms, seq)| StreamId { ms, seq }),
        1 => Just(StreamId::MIN),
        1 => Just(StreamId::MAX),
    ]
}

/// How `XADD` picks an ID: `*`, `ms-*` or an exact ID, never `0-0` (which the server
/// refuses before it proposes anything).
pub fn new_id() -> impl Strategy<Value = NewId> {
    prop_oneof![
        2 => Just(NewId::Auto),
        1 => stream_id().prop_map(|id| NewId::AutoSeq(id.ms)),
        2 => stream_id().prop_map(|id| NewId::Exact(if id == StreamId::MIN {
            StreamId { ms: 0, seq: 1 }
        } else {
            id
        })),
    ]
}

/// A stream trim, `MAXLEN` or `MINID`, with or without a `LIMIT`.
pub fn trim() -> impl Strategy<Value = Trim> {
    let by = prop_oneof![
        (0u64..4).prop_map(TrimBy::MaxLen),
        stream_id().prop_map(TrimBy::MinId),
    ];
    (by, prop_oneof![2 => Just(0u64), 1 => 1u64..3]).prop_map(|(by, limit)| Trim { by, limit })
}

/// A stream entry's fields and values, one after the other, `field` making both.
pub fn stream_fields<S: Strategy<Value = Vec<u8>>>(
    field: fn() -> S,
) -> impl Strategy<Value = Vec<Vec<u8>>> {
    proptest::collection::vec((field(), field()), 1..3)
        .prop_map(|pairs| pairs.into_iter().flat_map(|(f, v)| [f, v]).collect())
}

/// A read of a stream.
pub fn stream_read() -> impl Strategy<Value = StreamRead> {
    prop_oneof![
        Just(StreamRead::Len),
        (
            stream_id(),
            stream_id(),
            proptest::option::of(0u64..4),
            any::<bool>()
        )
            .prop_map(|(start, end, count, rev)| StreamRead::Range {
                start,
                end,
                count,
                rev
            }),
        Just(StreamRead::LastId),
        (
            any::<Vec<u8>>(),
            proptest::option::of((
                stream_id(),
                stream_id(),
                any::<u64>(),
                proptest::option::of(any::<Vec<u8>>()),
                any::<u64>()
            ))
        )
            .prop_map(|(group, range)| StreamRead::Pending {
                group,
                range: range.map(|(start, end, count, consumer, min_idle_ms)| {
                    PendingRange {
                        start,
                        end,
                        count,
                        consumer,
                        min_idle_ms,
                    }
                }),
            }),
    ]
}

/// A change to a stream's consumer groups.
pub fn group_op() -> impl Strategy<Value = GroupOp> {
    let start = || {
        proptest::option::of(prop_oneof![
            Just(GroupStart::Last),
            stream_id().prop_map(GroupStart::At)
        ])
    };
    prop_oneof![
        (start(), any::<bool>()).prop_map(|(start, mkstream)| GroupOp::Create { start, mkstream }),
        start().prop_map(|start| GroupOp::SetId { start }),
        Just(GroupOp::Destroy),
        any::<Vec<u8>>().prop_map(|consumer| GroupOp::CreateConsumer { consumer }),
        any::<Vec<u8>>().prop_map(|consumer| GroupOp::DelConsumer { consumer }),
    ]
}

/// What an `XREADGROUP` reads from one key.
pub fn group_read() -> impl Strategy<Value = GroupRead> {
    (any::<Vec<u8>>(), proptest::option::of(stream_id()))
        .prop_map(|(key, after)| GroupRead { key, after })
}

/// A geospatial search that validation accepts.
pub fn geo_search() -> impl Strategy<Value = Search> {
    let length = || (0.0..1e7f64).prop_map(|v| Score::new(v).expect("not a NaN"));
    let center = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(Center::Member),
        (-180.0..=180.0f64, geo::LAT_MIN..=geo::LAT_MAX).prop_map(|(lon, lat)| Center::At {
            lon: Score::new(lon).expect("not a NaN"),
            lat: Score::new(lat).expect("not a NaN"),
        }),
    ];
    let shape = prop_oneof![
        length().prop_map(Shape::Radius),
        (length(), length()).prop_map(|(width, height)| Shape::Box { width, height }),
    ];
    let unit = prop_oneof![
        Just(Unit::Meters),
        Just(Unit::Kilometers),
        Just(Unit::Feet),
        Just(Unit::Miles)
    ];
    let order = prop_oneof![
        Just(Order::Unsorted),
        Just(Order::Nearest),
        Just(Order::Farthest)
    ];
    (center, shape, unit, order, 0u64..100, any::<bool>()).prop_map(
        |(center, shape, unit, order, count, any)| Search {
            center,
            shape,
            unit,
            order,
            count,
            any: any && count > 0,
        },
    )
}
