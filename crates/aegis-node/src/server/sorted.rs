//! The sorted-set commands' arguments, read as Redis 7 reads them, and their replies.

use redis_protocol::resp2::types::OwnedFrame;

use super::{Answer, not_an_integer, syntax_error};
use crate::command::{
    Aggregate, Command, Output, Score, SetOp, TxRead, ZAddOptions, ZRange, ZRangeBy, ZSetRead,
    parse_integer,
};
use crate::resp::{Reply, bulk, error};
use crate::zset::{format_score, parse_lex_bound, parse_score, parse_score_bound};

fn not_a_float() -> OwnedFrame {
    error("ERR value is not a valid float")
}

fn bad_score_range() -> OwnedFrame {
    error("ERR min or max is not a float")
}

fn bad_lex_range() -> OwnedFrame {
    error("ERR min or max not valid string range item")
}

/// Parses `ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]` or
/// `ZINCRBY key increment member`, checking every score before anything is written.
pub(super) fn parse_zadd(name: &str, args: &[Vec<u8>]) -> Result<Command, OwnedFrame> {
    let mut options = ZAddOptions::default();
    let mut at = 2;
    if name == "zincrby" {
        options.incr = true;
    } else {
        while let Some(word) = args.get(at) {
            let flag = match word.to_ascii_uppercase().as_slice() {
                b"NX" => &mut options.only_new,
                b"XX" => &mut options.only_existing,
                b"GT" => &mut options.greater,
                b"LT" => &mut options.less,
                b"CH" => &mut options.changed,
                b"INCR" => &mut options.incr,
                _ => break,
            };
            *flag = true;
            at += 1;
        }
    }
    let rest = &args[at..];
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        return Err(syntax_error());
    }
    if options.only_new && options.only_existing {
        return Err(error(
            "ERR XX and NX options at the same time are not compatible",
        ));
    }
    if (options.only_new && (options.greater || options.less)) || (options.greater && options.less)
    {
        return Err(error(
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if options.incr && rest.len() > 2 {
        return Err(error(
            "ERR INCR option supports a single increment-element pair",
        ));
    }
    let entries = rest
        .chunks_exact(2)
        .map(|pair| {
            Ok((
                parse_score(&pair[0]).ok_or_else(not_a_float)?,
                pair[1].clone(),
            ))
        })
        .collect::<Result<Vec<(Score, Vec<u8>)>, OwnedFrame>>()?;
    Ok(Command::ZAdd {
        key: args[1].clone(),
        entries,
        options,
    })
}

/// Parses `ZPOPMIN` or `ZPOPMAX key [count]`, and how its answer is shaped: one member
/// and its score without a count, pairs with one.
pub(super) fn parse_zpop(name: &str, args: &[Vec<u8>]) -> Result<(Command, Answer), OwnedFrame> {
    let (count, answer) = match args {
        [_, _] => (1, Answer::Popped),
        [_, _, count] => {
            let count = parse_integer(count)
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| error("ERR value is out of range, must be positive"))?;
            (count, Answer::AsIs)
        }
        _ => return Err(syntax_error()),
    };
    Ok((
        Command::ZPop {
            key: args[1].clone(),
            max: name == "zpopmax",
            count,
        },
        answer,
    ))
}

/// Parses `ZREMRANGEBYRANK key start stop`, `ZREMRANGEBYSCORE key min max` or
/// `ZREMRANGEBYLEX key min max`.
pub(super) fn parse_zremrange(name: &str, args: &[Vec<u8>]) -> Result<Command, OwnedFrame> {
    let by = match name {
        "zremrangebyrank" => rank_range(&args[2], &args[3])?,
        "zremrangebyscore" => score_range(&args[2], &args[3])?,
        _ => lex_range(&args[2], &args[3])?,
    };
    Ok(Command::ZRemRange {
        key: args[1].clone(),
        by,
    })
}

fn rank_range(start: &[u8], stop: &[u8]) -> Result<ZRangeBy, OwnedFrame> {
    Ok(ZRangeBy::Rank {
        start: parse_integer(start).ok_or_else(not_an_integer)?,
        stop: parse_integer(stop).ok_or_else(not_an_integer)?,
    })
}

fn score_range(min: &[u8], max: &[u8]) -> Result<ZRangeBy, OwnedFrame> {
    Ok(ZRangeBy::Score {
        min: parse_score_bound(min).ok_or_else(bad_score_range)?,
        max: parse_score_bound(max).ok_or_else(bad_score_range)?,
    })
}

fn lex_range(min: &[u8], max: &[u8]) -> Result<ZRangeBy, OwnedFrame> {
    Ok(ZRangeBy::Lex {
        min: parse_lex_bound(min).ok_or_else(bad_lex_range)?,
        max: parse_lex_bound(max).ok_or_else(bad_lex_range)?,
    })
}

/// How a range command picks its members before its options are read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeKind {
    Rank,
    Score,
    Lex,
}

/// Parses the sorted-set reads, and how each answer is shaped: `ZCARD`, `ZSCORE`,
/// `ZMSCORE`, `ZRANK`, `ZREVRANK`, `ZCOUNT`, `ZLEXCOUNT`, `ZRANGE` and its older forms.
pub(super) fn parse_zread(name: &str, args: &[Vec<u8>]) -> Result<(ZSetRead, Answer), OwnedFrame> {
    let read = match name {
        "zcard" => ZSetRead::Card,
        "zscore" => ZSetRead::Score {
            member: args[2].clone(),
        },
        "zmscore" => ZSetRead::MScore {
            members: args[2..].to_vec(),
        },
        "zrank" | "zrevrank" => {
            let with_score = match &args[3..] {
                [] => false,
                [word] if word.eq_ignore_ascii_case(b"WITHSCORE") => true,
                _ => return Err(syntax_error()),
            };
            let read = ZSetRead::Rank {
                member: args[2].clone(),
                rev: name == "zrevrank",
            };
            let answer = if with_score {
                Answer::RankScore
            } else {
                Answer::AsIs
            };
            return Ok((read, answer));
        }
        "zcount" => ZSetRead::Count {
            by: score_range(&args[2], &args[3])?,
        },
        "zlexcount" => ZSetRead::Count {
            by: lex_range(&args[2], &args[3])?,
        },
        _ => {
            let (range, with_scores) = parse_zrange(name, args, 1)?;
            ZSetRead::Range { range, with_scores }
        }
    };
    Ok((read, Answer::AsIs))
}

/// Parses `ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count]
/// [WITHSCORES]` and the older `ZREVRANGE`, `ZRANGEBYSCORE`, `ZREVRANGEBYSCORE`,
/// `ZRANGEBYLEX`, `ZREVRANGEBYLEX`, or `ZRANGESTORE dest key ...` without `WITHSCORES`,
/// the key at `key_at`, with Redis's checks in Redis's order.
fn parse_zrange(name: &str, args: &[Vec<u8>], key_at: usize) -> Result<(ZRange, bool), OwnedFrame> {
    let store = name == "zrangestore";
    let (mut kind, mut rev) = match name {
        "zrange" | "zrangestore" => (None, None),
        "zrevrange" => (Some(RangeKind::Rank), Some(true)),
        "zrangebyscore" => (Some(RangeKind::Score), Some(false)),
        "zrevrangebyscore" => (Some(RangeKind::Score), Some(true)),
        "zrangebylex" => (Some(RangeKind::Lex), Some(false)),
        _ => (Some(RangeKind::Lex), Some(true)),
    };
    let mut with_scores = false;
    let mut limit: Option<(i64, i64)> = None;
    let mut at = key_at + 3;
    while at < args.len() {
        let word = args[at].to_ascii_uppercase();
        let left = args.len() - at - 1;
        match word.as_slice() {
            b"WITHSCORES" if !store => with_scores = true,
            b"LIMIT" if left >= 2 => {
                let offset = parse_integer(&args[at + 1]).ok_or_else(not_an_integer)?;
                let count = parse_integer(&args[at + 2]).ok_or_else(not_an_integer)?;
                limit = Some((offset, count));
                at += 2;
            }
            b"REV" if rev.is_none() => rev = Some(true),
            b"BYLEX" if kind.is_none() => kind = Some(RangeKind::Lex),
            b"BYSCORE" if kind.is_none() => kind = Some(RangeKind::Score),
            _ => return Err(syntax_error()),
        }
        at += 1;
    }
    let kind = kind.unwrap_or(RangeKind::Rank);
    let rev = rev.unwrap_or(false);
    // Redis tells a LIMIT from none by its count: `LIMIT x -1` passes with a rank range,
    // and changes nothing there.
    if kind == RangeKind::Rank && limit.is_some_and(|(_, count)| count != -1) {
        return Err(error(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if with_scores && kind == RangeKind::Lex {
        return Err(error(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    // A reversed range by score or member is written from its upper end.
    let (first, second) = (&args[key_at + 1], &args[key_at + 2]);
    let (low, high) = if rev && kind != RangeKind::Rank {
        (second, first)
    } else {
        (first, second)
    };
    let by = match kind {
        RangeKind::Rank => rank_range(low, high)?,
        RangeKind::Score => score_range(low, high)?,
        RangeKind::Lex => lex_range(low, high)?,
    };
    let limit = if kind == RangeKind::Rank { None } else { limit };
    Ok((ZRange { by, rev, limit }, with_scores))
}

/// Parses `ZRANGESTORE dest source min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]`.
pub(super) fn parse_zrangestore(args: &[Vec<u8>]) -> Result<Command, OwnedFrame> {
    let (range, _) = parse_zrange("zrangestore", args, 2)?;
    Ok(Command::ZRangeStore {
        dest: args[1].clone(),
        source: args[2].clone(),
        range,
    })
}

/// What `ZUNIONSTORE`, `ZINTERSTORE`, `ZDIFFSTORE`, `ZUNION`, `ZINTER`, `ZDIFF` and
/// `ZINTERCARD` were asked.
pub(super) struct Combination {
    op: SetOp,
    keys: Vec<Vec<u8>>,
    weights: Vec<Score>,
    aggregate: Aggregate,
    with_scores: bool,
    limit: u64,
}

/// Parses the commands that combine sorted sets, with Redis's checks in Redis's order
/// (but for a key of another kind, which the store finds after these checks, where
/// Redis looks before the options).
pub(super) fn parse_combination(name: &str, args: &[Vec<u8>]) -> Result<Combination, OwnedFrame> {
    let store = name.ends_with("store");
    let card = name == "zintercard";
    let op = match name {
        "zunionstore" | "zunion" => SetOp::Union,
        "zdiffstore" | "zdiff" => SetOp::Diff,
        _ => SetOp::Inter,
    };
    let count_at = if store { 2 } else { 1 };
    let count = parse_integer(&args[count_at]).ok_or_else(not_an_integer)?;
    if count < 1 {
        return Err(error(format!(
            "ERR at least 1 input key is needed for '{name}' command"
        )));
    }
    let first = count_at + 1;
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    if count > args.len() - first {
        return Err(syntax_error());
    }
    let mut combination = Combination {
        op,
        keys: args[first..first + count].to_vec(),
        weights: Vec::new(),
        aggregate: Aggregate::Sum,
        with_scores: false,
        limit: 0,
    };
    let mut at = first + count;
    while at < args.len() {
        let left = args.len() - at;
        let word = args[at].to_ascii_uppercase();
        match word.as_slice() {
            b"WEIGHTS" if op != SetOp::Diff && !card && left > count => {
                combination.weights = args[at + 1..at + 1 + count]
                    .iter()
                    .map(|w| parse_score(w).ok_or_else(|| error("ERR weight value is not a float")))
                    .collect::<Result<_, _>>()?;
                at += 1 + count;
            }
            b"AGGREGATE" if op != SetOp::Diff && !card && left >= 2 => {
                combination.aggregate = match args[at + 1].to_ascii_uppercase().as_slice() {
                    b"SUM" => Aggregate::Sum,
                    b"MIN" => Aggregate::Min,
                    b"MAX" => Aggregate::Max,
                    _ => return Err(syntax_error()),
                };
                at += 2;
            }
            b"WITHSCORES" if !store && !card => {
                combination.with_scores = true;
                at += 1;
            }
            b"LIMIT" if card && left >= 2 => {
                combination.limit = parse_integer(&args[at + 1])
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| error("ERR LIMIT can't be negative"))?;
                at += 2;
            }
            _ => return Err(syntax_error()),
        }
    }
    Ok(combination)
}

impl Combination {
    /// The log entry of a `...STORE` into `dest`.
    pub(super) fn store(self, dest: Vec<u8>) -> Command {
        Command::ZStore {
            op: self.op,
            dest,
            keys: self.keys,
            weights: self.weights,
            aggregate: self.aggregate,
        }
    }

    /// The read of `ZUNION`, `ZINTER`, `ZDIFF`, or of `ZINTERCARD` if `card`.
    pub(super) fn read(self, card: bool) -> TxRead {
        if card {
            return TxRead::ZInterCard {
                keys: self.keys,
                limit: self.limit,
            };
        }
        TxRead::ZCombine {
            op: self.op,
            keys: self.keys,
            weights: self.weights,
            aggregate: self.aggregate,
            with_scores: self.with_scores,
        }
    }
}

/// Members and scores, one after the other, as a hash's fields and values read whole
/// are: what `ZSCAN` and `ZRANDMEMBER` pick from.
pub(super) fn flatten(output: Output) -> Output {
    match output {
        Output::Scored(entries) => Output::Values(
            entries
                .into_iter()
                .flat_map(|(member, score)| {
                    [Some(member), Some(format_score(score.get()).into_bytes())]
                })
                .collect(),
        ),
        other => other,
    }
}

/// A score as a reply: a double in RESP3, a bulk string in RESP2.
fn score_reply(score: Score) -> Reply {
    Reply::Double(format_score(score.get()))
}

/// The reply to a sorted-set output in the shape `answer` asks for, if it is one.
pub(super) fn scored_reply(output: Output, answer: &Answer) -> Result<Reply, Output> {
    Ok(match (output, answer) {
        (Output::Score(score), _) => score.map_or(Reply::Frame(OwnedFrame::Null), score_reply),
        (Output::Scores(scores), _) => Reply::Array(
            scores
                .into_iter()
                .map(|s| s.map_or(Reply::Frame(OwnedFrame::Null), score_reply))
                .collect(),
        ),
        (Output::Scored(entries), Answer::Popped) => Reply::Array(
            entries
                .into_iter()
                .take(1)
                .flat_map(|(member, score)| [Reply::Frame(bulk(member)), score_reply(score)])
                .collect(),
        ),
        (Output::Scored(entries), _) => Reply::Pairs(
            entries
                .into_iter()
                .map(|(member, score)| (Reply::Frame(bulk(member)), score_reply(score)))
                .collect(),
        ),
        (Output::Ranked(None), _) => Reply::Frame(OwnedFrame::Null),
        (Output::Ranked(Some((rank, score))), Answer::RankScore) => Reply::Array(vec![
            Reply::Frame(OwnedFrame::Integer(i64::try_from(rank).unwrap_or(i64::MAX))),
            score_reply(score),
        ]),
        (Output::Ranked(Some((rank, _))), _) => {
            Reply::Frame(OwnedFrame::Integer(i64::try_from(rank).unwrap_or(i64::MAX)))
        }
        (output, _) => return Err(output),
    })
}
