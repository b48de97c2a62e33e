//! Blocking pops: `BLPOP`, `BRPOP`, `BLMOVE`, `BRPOPLPUSH`, `BZPOPMIN`, `BZPOPMAX`,
//! `BLMPOP`, `BZMPOP`; and the arguments and replies of `LMPOP` and `ZMPOP`.
//!
//! A blocked client waits on its node: it looks at its keys in the local store, and if
//! one holds something it proposes the plain pop of that key (`LPOP`, `LMOVE`,
//! `ZPOPMIN`, ...) through the log, like any write. If none does, or another client's
//! pop took the item first, it waits until an apply gives one of its keys a value
//! (the store's key watch) and looks again, until its timeout. The first look follows a read fence, so a key that holds an item
//! when the command arrives is popped at once; the later ones need none, since a pop
//! proposed on a stale view only finds nothing and looks again.

use std::time::Duration;

use redis_protocol::resp2::types::OwnedFrame;

use super::{streams, syntax_error};
use crate::command::{Command, MPopFrom, Output, parse_integer};
use crate::resp::{Reply, bulk, error};
use crate::store::ValueKind;
use crate::zset::format_score;

/// What a blocked client pops, once a key holds something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Pop {
    /// An item from a list's head (`front`) or tail, answered with its key.
    List { front: bool },
    /// The member of the lowest (or with `max`, highest) score, answered with its key
    /// and score.
    ZSet { max: bool },
    /// An item moved from one end of a list to one end of `to`, answered alone.
    Move {
        to: Vec<u8>,
        from_front: bool,
        to_front: bool,
    },
    /// Up to `count` items or members from the first key holding a value, answered
    /// with the key (`BLMPOP`, `BZMPOP`).
    Many { from: MPopFrom, count: u64 },
    /// `XREAD ... BLOCK`: nothing is popped; the entries after each key's ID are read,
    /// at most `count` from each (0: all), once a stream holds some. A `$` is read as
    /// the stream's last ID at the first look.
    Read {
        from: Vec<streams::From>,
        count: u64,
    },
    /// `XREADGROUP ... BLOCK ... >`: the command proposed at each look, until it reads
    /// something; for each key, the error if it holds no such group.
    Group {
        command: Command,
        missing: Vec<String>,
    },
}

/// A blocking pop, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Blocking {
    /// The keys looked at, in order.
    pub(super) keys: Vec<Vec<u8>>,
    pub(super) pop: Pop,
    /// How long to wait; `None` for as long as it takes.
    pub(super) timeout: Option<Duration>,
}

impl Blocking {
    /// `XREADGROUP ... BLOCK`, waiting for `timeout`.
    pub(super) fn read_group(
        command: Command,
        missing: Vec<String>,
        timeout: Option<Duration>,
    ) -> Self {
        let Command::XReadGroup { reads, .. } = &command else {
            unreachable!("parse_xreadgroup makes an XREADGROUP");
        };
        Self {
            keys: reads.iter().map(|r| r.key.clone()).collect(),
            pop: Pop::Group { command, missing },
            timeout,
        }
    }

    /// `XREAD ... BLOCK`, waiting for `timeout`.
    pub(super) fn read(read: streams::XRead, timeout: Option<Duration>) -> Self {
        let (keys, from) = read.streams.into_iter().unzip();
        Self {
            keys,
            pop: Pop::Read {
                from,
                count: read.count,
            },
            timeout,
        }
    }
}

/// What one look at the keys found.
pub(super) enum Looked {
    /// The reply: what was popped, or an error.
    Answer(Reply),
    /// Nothing to pop: wait for a change.
    Nothing,
    /// A key held something, but the pop found nothing: another client took it first.
    Taken,
}

/// Parses a blocking pop's arguments, the timeout (seconds, a float) last.
pub(super) fn parse(name: &str, args: &[Vec<u8>]) -> Result<Blocking, OwnedFrame> {
    if let "blmpop" | "bzmpop" = name {
        // The timeout first: `BLMPOP timeout numkeys key [key ...] LEFT|RIGHT ...`.
        let timeout = parse_timeout(&args[1])?;
        let Command::MPop { keys, from, count } = parse_mpop(name == "bzmpop", args, 2)? else {
            unreachable!("parse_mpop makes an MPOP");
        };
        return Ok(Blocking {
            keys,
            pop: Pop::Many { from, count },
            timeout,
        });
    }
    let (last, rest) = args.split_last().expect("the arity counts the timeout");
    let timeout = parse_timeout(last)?;
    let (keys, pop) = match name {
        "blpop" | "brpop" => (
            rest[1..].to_vec(),
            Pop::List {
                front: name == "blpop",
            },
        ),
        "bzpopmin" | "bzpopmax" => (
            rest[1..].to_vec(),
            Pop::ZSet {
                max: name == "bzpopmax",
            },
        ),
        "brpoplpush" => (
            vec![rest[1].clone()],
            Pop::Move {
                to: rest[2].clone(),
                from_front: false,
                to_front: true,
            },
        ),
        _ => (
            vec![rest[1].clone()],
            Pop::Move {
                to: rest[2].clone(),
                from_front: end(&rest[3])?,
                to_front: end(&rest[4])?,
            },
        ),
    };
    Ok(Blocking { keys, pop, timeout })
}

fn end(arg: &[u8]) -> Result<bool, OwnedFrame> {
    match arg.to_ascii_uppercase().as_slice() {
        b"LEFT" => Ok(true),
        b"RIGHT" => Ok(false),
        _ => Err(syntax_error()),
    }
}

/// A timeout in seconds, as Redis 7.2 reads it: a float, not negative, ceiled to
/// milliseconds; 0 waits for ever.
fn parse_timeout(arg: &[u8]) -> Result<Option<Duration>, OwnedFrame> {
    let not_a_float = || error("ERR timeout is not a float or out of range");
    let text = std::str::from_utf8(arg).map_err(|_| not_a_float())?;
    if text.is_empty() || text.starts_with(|c: char| c.is_ascii_whitespace()) {
        return Err(not_a_float());
    }
    let seconds: f64 = text.parse().map_err(|_| not_a_float())?;
    if seconds.is_nan() {
        return Err(not_a_float());
    }
    if seconds < 0.0 {
        return Err(error("ERR timeout is negative"));
    }
    let ms = (seconds * 1000.0).ceil();
    // Redis refuses what does not fit its millisecond clock.
    if ms >= 9.2e18 {
        return Err(error("ERR timeout is out of range"));
    }
    Ok((ms > 0.0).then(|| Duration::from_millis(ms as u64)))
}

/// Parses `LMPOP` (or with `zset`, `ZMPOP`) `numkeys key [key ...] LEFT|RIGHT (or
/// MIN|MAX) [COUNT count]`, `numkeys` at `args[at]`, with Redis 7's errors.
pub(super) fn parse_mpop(zset: bool, args: &[Vec<u8>], at: usize) -> Result<Command, OwnedFrame> {
    let keys = parse_integer(&args[at])
        .filter(|&n| n > 0)
        .ok_or_else(|| error("ERR numkeys should be greater than 0"))?;
    let first = at + 1;
    let keys = usize::try_from(keys).unwrap_or(usize::MAX);
    if keys >= args.len() - first {
        return Err(syntax_error());
    }
    let mut next = first + keys;
    let from = match (zset, args[next].to_ascii_uppercase().as_slice()) {
        (false, b"LEFT") => MPopFrom::List { front: true },
        (false, b"RIGHT") => MPopFrom::List { front: false },
        (true, b"MIN") => MPopFrom::ZSet { max: false },
        (true, b"MAX") => MPopFrom::ZSet { max: true },
        _ => return Err(syntax_error()),
    };
    next += 1;
    let mut count = None;
    while next < args.len() {
        if count.is_some() || next + 1 >= args.len() || !args[next].eq_ignore_ascii_case(b"COUNT") {
            return Err(syntax_error());
        }
        let n = parse_integer(&args[next + 1])
            .and_then(|n| u64::try_from(n).ok())
            .filter(|&n| n > 0)
            .ok_or_else(|| error("ERR count should be greater than 0"))?;
        count = Some(n);
        next += 2;
    }
    Ok(Command::MPop {
        keys: args[first..first + keys].to_vec(),
        from,
        count: count.unwrap_or(1),
    })
}

/// The reply to `LMPOP` or `ZMPOP`: the key and what was popped (members with their
/// scores in pairs, in RESP2 too, as Redis answers), or a null array.
pub(super) fn popped_from(popped: Option<(Vec<u8>, Box<Output>)>) -> Reply {
    let Some((key, popped)) = popped else {
        return Reply::NullArray;
    };
    let items = match *popped {
        Output::Scored(entries) => Reply::Array(
            entries
                .into_iter()
                .map(|(member, score)| {
                    Reply::Array(vec![
                        Reply::Frame(bulk(member)),
                        Reply::Double(format_score(score.get())),
                    ])
                })
                .collect(),
        ),
        Output::Values(items) => Reply::Frame(OwnedFrame::Array(
            items
                .into_iter()
                .map(|i| i.map_or(OwnedFrame::Null, bulk))
                .collect(),
        )),
        other => Reply::Frame(super::output_reply(other)),
    };
    Reply::Array(vec![Reply::Frame(bulk(key)), items])
}

/// The command that pops from `key`, which holds something; `keys` are all the keys
/// the client waits on.
pub(super) fn pop_command(pop: &Pop, key: &[u8], keys: &[Vec<u8>]) -> Command {
    match pop {
        Pop::Many { from, count } => Command::MPop {
            keys: keys.to_vec(),
            from: *from,
            count: *count,
        },
        Pop::Read { .. } | Pop::Group { .. } => {
            unreachable!("a blocked XREAD or XREADGROUP has no pop")
        }

        Pop::List { front } => Command::Pop {
            key: key.to_vec(),
            front: *front,
            count: None,
        },
        Pop::ZSet { max } => Command::ZPop {
            key: key.to_vec(),
            max: *max,
            count: 1,
        },
        Pop::Move {
            to,
            from_front,
            to_front,
        } => Command::LMove {
            from: key.to_vec(),
            to: to.clone(),
            from_front: *from_front,
            to_front: *to_front,
        },
    }
}

/// The kind of value a key must hold to be popped from.
pub(super) fn kind_popped(pop: &Pop) -> ValueKind {
    match pop {
        Pop::ZSet { .. }
        | Pop::Many {
            from: MPopFrom::ZSet { .. },
            ..
        } => ValueKind::ZSet,
        Pop::List { .. } | Pop::Move { .. } | Pop::Many { .. } => ValueKind::List,
        Pop::Read { .. } | Pop::Group { .. } => ValueKind::Stream,
    }
}

/// What the pop of `key` answered: the reply, or `None` if it found nothing.
pub(super) fn answer(pop: &Pop, key: &[u8], output: Output) -> Option<Reply> {
    let key = || Reply::Frame(bulk(key.to_vec()));
    match (pop, output) {
        (Pop::List { .. }, Output::Value(Some(item))) => {
            Some(Reply::Array(vec![key(), Reply::Frame(bulk(item))]))
        }
        (Pop::Move { .. }, Output::Value(Some(item))) => Some(Reply::Frame(bulk(item))),
        (Pop::ZSet { .. }, Output::Scored(mut popped)) if !popped.is_empty() => {
            let (member, score) = popped.swap_remove(0);
            Some(Reply::Array(vec![
                key(),
                Reply::Frame(bulk(member)),
                Reply::Double(format_score(score.get())),
            ]))
        }
        (Pop::Many { .. }, Output::PoppedFrom(Some(popped))) => Some(popped_from(Some(popped))),
        (_, Output::Rejected(rejection)) => Some(Reply::Frame(super::output_reply(
            Output::Rejected(rejection),
        ))),
        _ => None,
    }
}

/// A blocking pop that does not wait (inside `MULTI`): the command that pops at once
/// from the first of its keys that holds something, and how its answer is shaped.
pub(super) fn at_once(blocked: Blocking) -> (Command, super::Answer) {
    let Blocking { mut keys, pop, .. } = blocked;
    let from = match pop {
        Pop::List { front } => MPopFrom::List { front },
        Pop::ZSet { max } => MPopFrom::ZSet { max },
        Pop::Move { .. } => {
            let command = pop_command(&pop, &keys.swap_remove(0), &[]);
            return (command, super::Answer::AsIs);
        }
        Pop::Many { from, count } => {
            return (Command::MPop { keys, from, count }, super::Answer::AsIs);
        }
        Pop::Read { .. } | Pop::Group { .. } => unreachable!("a stream read is not a pop"),
    };
    let command = Command::MPop {
        keys,
        from,
        count: 1,
    };
    (command, super::Answer::PoppedAtOnce(pop))
}

/// What a blocking pop that did not wait answers: what it popped, shaped as for a
/// blocked client, or no array.
pub(super) fn popped_at_once(pop: &Pop, popped: Option<(Vec<u8>, Box<Output>)>) -> Reply {
    let Some((key, output)) = popped else {
        return Reply::NullArray;
    };
    // One item of a list comes as a list of one.
    let output = match *output {
        Output::Values(mut items) if items.len() == 1 => Output::Value(items.swap_remove(0)),
        other => other,
    };
    answer(pop, &key, output).unwrap_or(Reply::NullArray)
}

/// The reply once the timeout passed: a null array, as Redis answers.
pub(super) fn timed_out() -> Reply {
    Reply::NullArray
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_read_as_redis_reads_them() {
        assert_eq!(parse_timeout(b"0"), Ok(None));
        assert_eq!(parse_timeout(b"0.0001"), Ok(Some(Duration::from_millis(1))));
        assert_eq!(parse_timeout(b"1.5"), Ok(Some(Duration::from_millis(1500))));
        assert_eq!(parse_timeout(b"2"), Ok(Some(Duration::from_secs(2))));
        assert_eq!(parse_timeout(b"-1"), Err(error("ERR timeout is negative")));
        for bad in [&b"x"[..], b"", b" 1", b"nan", b"1s"] {
            assert_eq!(
                parse_timeout(bad),
                Err(error("ERR timeout is not a float or out of range")),
                "{bad:?}"
            );
        }
        for huge in [&b"inf"[..], b"1e20"] {
            assert_eq!(
                parse_timeout(huge),
                Err(error("ERR timeout is out of range"))
            );
        }
    }
}
