//! The stream commands' arguments, read as Redis 7 reads them, and their replies.

use std::time::Duration;

use redis_protocol::resp2::types::OwnedFrame;

use super::{not_an_integer, syntax_error};
use crate::command::{
    ClaimTime, Command, GroupOp, GroupRead, GroupStart, NewId, Output, PendingRange, StreamEntry,
    StreamId, StreamRead, Trim, TrimBy, parse_integer,
};
use crate::resp::{Reply, bulk, error};
use crate::stream::{BadBound, parse_bound, parse_id, parse_loose_id, parse_new_id};

/// How many entries an approximate trim (`~`) removes at most without a `LIMIT`: Redis's
/// default, a hundred of its nodes of 100 entries.
const APPROX_TRIM_LIMIT: u64 = 10_000;

fn invalid_id() -> OwnedFrame {
    error("ERR Invalid stream ID specified as stream command argument")
}

/// What `XADD` and `XTRIM` read up to the ID (or, for `XTRIM`, the end).
struct TrimArgs {
    trim: Option<Trim>,
    no_mkstream: bool,
    /// `XADD`'s ID, if the arguments go that far.
    id: Option<NewId>,
    /// Where the ID is (`XADD`), or the end.
    next: usize,
}

/// Reads `[NOMKSTREAM] [MAXLEN|MINID [=|~] threshold] [LIMIT count]` from `args[2..]` in
/// Redis's order and with its errors; for `XADD` (`xadd`), up to the ID.
fn parse_trim_args(args: &[Vec<u8>], xadd: bool) -> Result<TrimArgs, OwnedFrame> {
    let mut by = None;
    let mut approx = false;
    let mut limit = None;
    let mut no_mkstream = false;
    let mut id = None;
    let mut at = 2;
    while at < args.len() {
        let more = args.len() - 1 - at;
        let word = args[at].to_ascii_uppercase();
        match word.as_slice() {
            b"*" if xadd => {
                id = Some(NewId::Auto);
                break;
            }
            b"MAXLEN" | b"MINID" if more > 0 => {
                if by.is_some() {
                    return Err(error(
                        "ERR syntax error, MAXLEN and MINID options at the same time are not compatible",
                    ));
                }
                approx = false;
                if more >= 2 && (args[at + 1] == b"~" || args[at + 1] == b"=") {
                    approx = args[at + 1] == b"~";
                    at += 1;
                }
                let threshold = &args[at + 1];
                by = Some(if word == b"MAXLEN" {
                    let max = parse_integer(threshold).ok_or_else(not_an_integer)?;
                    TrimBy::MaxLen(
                        u64::try_from(max)
                            .map_err(|_| error("ERR The MAXLEN argument must be >= 0."))?,
                    )
                } else {
                    TrimBy::MinId(parse_id(threshold).ok_or_else(invalid_id)?)
                });
                at += 2;
            }
            b"LIMIT" if more > 0 => {
                let n = parse_integer(&args[at + 1]).ok_or_else(not_an_integer)?;
                limit = Some(
                    u64::try_from(n).map_err(|_| error("ERR The LIMIT argument must be >= 0."))?,
                );
                at += 2;
            }
            b"NOMKSTREAM" if xadd => {
                no_mkstream = true;
                at += 1;
            }
            // The ID, read before the options are checked together, as Redis does.
            _ if xadd => {
                id = Some(parse_new_id(&args[at]).ok_or_else(invalid_id)?);
                break;
            }
            _ => return Err(syntax_error()),
        }
    }
    if limit.is_some() && by.is_none() {
        return Err(error(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && by.is_none() {
        return Err(error(
            "ERR syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    if limit.is_some() && !approx {
        return Err(error(
            "ERR syntax error, LIMIT cannot be used without the special ~ option",
        ));
    }
    // An exact trim has no limit; an approximate one, Redis's default without one.
    let limit = if approx {
        limit.unwrap_or(APPROX_TRIM_LIMIT)
    } else {
        0
    };
    Ok(TrimArgs {
        trim: by.map(|by| Trim { by, limit }),
        no_mkstream,
        id,
        next: at,
    })
}

/// Parses `XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id
/// field value [field value ...]`.
pub(super) fn parse_xadd(args: &[Vec<u8>]) -> Result<Command, OwnedFrame> {
    let TrimArgs {
        trim,
        no_mkstream,
        id,
        next,
    } = parse_trim_args(args, true)?;
    let Some(id) = id else {
        return Err(super::wrong_arity("xadd"));
    };
    let fields = &args[next + 1..];
    if fields.is_empty() || !fields.len().is_multiple_of(2) {
        return Err(super::wrong_arity("xadd"));
    }
    if id == NewId::Exact(StreamId::MIN) {
        return Err(error(
            "ERR The ID specified in XADD must be greater than 0-0",
        ));
    }
    Ok(Command::XAdd {
        key: args[1].clone(),
        id,
        fields: fields.to_vec(),
        no_mkstream,
        trim,
    })
}

/// Parses `XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]`.
pub(super) fn parse_xtrim(args: &[Vec<u8>]) -> Result<Command, OwnedFrame> {
    let TrimArgs { trim, .. } = parse_trim_args(args, false)?;
    Ok(Command::XTrim {
        key: args[1].clone(),
        trim: trim.expect("XTRIM has a strategy once parsed"),
    })
}

/// Parses `XDEL key id [id ...]`, every ID before anything is removed. An argument that
/// is not an ID is refused where the key is looked at (see [`Command::XDel`]).
pub(super) fn parse_xdel(args: &[Vec<u8>]) -> Command {
    let ids: Option<Vec<StreamId>> = args[2..].iter().map(|arg| parse_id(arg)).collect();
    Command::XDel {
        key: args[1].clone(),
        bad_id: ids.is_none(),
        ids: ids.unwrap_or_default(),
    }
}

/// A range bound, as `XRANGE`, `XPENDING` and `XAUTOCLAIM` read one (`end` for the
/// upper one), with Redis's errors.
fn bound(arg: &[u8], end: bool) -> Result<StreamId, OwnedFrame> {
    parse_bound(arg, end).map_err(|bad| match bad {
        BadBound::Invalid => invalid_id(),
        BadBound::Beyond if end => error("ERR invalid end ID for the interval"),
        BadBound::Beyond => error("ERR invalid start ID for the interval"),
    })
}

/// Parses `XLEN key`, `XRANGE key start end [COUNT count]` and `XREVRANGE key end start
/// [COUNT count]`.
pub(super) fn parse_read(name: &str, args: &[Vec<u8>]) -> Result<StreamRead, OwnedFrame> {
    if name == "xlen" {
        return Ok(StreamRead::Len);
    }
    let rev = name == "xrevrange";
    let (start, end) = if rev {
        (&args[3], &args[2])
    } else {
        (&args[2], &args[3])
    };
    let (start, end) = (bound(start, false)?, bound(end, true)?);
    let mut count = None;
    let mut at = 4;
    while at < args.len() {
        if !args[at].eq_ignore_ascii_case(b"COUNT") || at + 1 >= args.len() {
            return Err(syntax_error());
        }
        let n = parse_integer(&args[at + 1]).ok_or_else(not_an_integer)?;
        // A negative count counts as 0, as in Redis.
        count = Some(u64::try_from(n).unwrap_or(0));
        at += 2;
    }
    Ok(StreamRead::Range {
        start,
        end,
        count,
        rev,
    })
}

/// Where an `XREAD` reads a stream from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum From {
    /// After this ID.
    After(StreamId),
    /// `$`: after the stream's last ID when the command runs.
    Last,
}

/// An `XREAD`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct XRead {
    /// The keys and where each is read from.
    pub(super) streams: Vec<(Vec<u8>, From)>,
    /// The most entries from each stream; 0 for no limit.
    pub(super) count: u64,
    /// With `BLOCK`, how long to wait (`None`: for as long as it takes).
    pub(super) block: Option<Option<Duration>>,
    /// The error for an ID that is not one. Redis checks each key's kind before its ID,
    /// so this is the answer only if the keys in `streams` (those up to that ID) hold
    /// streams or nothing.
    pub(super) refused: Option<OwnedFrame>,
}

impl XRead {
    /// The streams with `$` read as after every ID: what a read that does not wait
    /// finds there, nothing.
    pub(super) fn now(&self) -> Vec<(Vec<u8>, StreamId)> {
        self.streams
            .iter()
            .map(|(key, from)| {
                let after = match from {
                    From::After(id) => *id,
                    From::Last => StreamId::MAX,
                };
                (key.clone(), after)
            })
            .collect()
    }
}

/// What `XREAD` and `XREADGROUP` read before their keys.
struct ReadOptions {
    count: u64,
    block: Option<Option<Duration>>,
    /// `XREADGROUP`'s group and consumer.
    group: Option<(Vec<u8>, Vec<u8>)>,
    no_ack: bool,
    /// Where the keys start.
    first_key: usize,
}

/// Reads `[GROUP group consumer] [COUNT count] [BLOCK milliseconds] [NOACK] STREAMS`,
/// in any order, as Redis reads them for `XREAD` and (with `grouped`) `XREADGROUP`.
fn parse_read_options(args: &[Vec<u8>], grouped: bool) -> Result<ReadOptions, OwnedFrame> {
    let mut count = 0;
    let mut block = None;
    let mut group = None;
    let mut no_ack = false;
    let mut at = 1;
    let first_key = loop {
        let Some(word) = args.get(at) else {
            return Err(syntax_error());
        };
        let more = args.len() - 1 - at;
        match word.to_ascii_uppercase().as_slice() {
            b"BLOCK" if more > 0 => {
                let ms = parse_integer(&args[at + 1])
                    .ok_or_else(|| error("ERR timeout is not an integer or out of range"))?;
                let ms = u64::try_from(ms).map_err(|_| error("ERR timeout is negative"))?;
                block = Some((ms > 0).then(|| Duration::from_millis(ms)));
                at += 2;
            }
            b"COUNT" if more > 0 => {
                let n = parse_integer(&args[at + 1]).ok_or_else(not_an_integer)?;
                count = u64::try_from(n).unwrap_or(0);
                at += 2;
            }
            b"STREAMS" if more > 0 => break at + 1,
            b"GROUP" if more >= 2 && grouped => {
                group = Some((args[at + 1].clone(), args[at + 2].clone()));
                at += 3;
            }
            b"NOACK" if grouped => {
                no_ack = true;
                at += 1;
            }
            b"GROUP" if more >= 2 => {
                return Err(error(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            b"NOACK" => {
                return Err(error(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            _ => return Err(syntax_error()),
        }
    };
    if !(args.len() - first_key).is_multiple_of(2) {
        return Err(error(
            "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
        ));
    }
    Ok(ReadOptions {
        count,
        block,
        group,
        no_ack,
        first_key,
    })
}

/// Parses `XREAD [COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]`.
pub(super) fn parse_xread(args: &[Vec<u8>]) -> Result<XRead, OwnedFrame> {
    let ReadOptions {
        count,
        block,
        first_key,
        ..
    } = parse_read_options(args, false)?;
    let rest = &args[first_key..];
    let (keys, ids) = rest.split_at(rest.len() / 2);
    let mut streams = Vec::with_capacity(keys.len());
    let mut refused = None;
    for (key, id) in keys.iter().zip(ids) {
        let from = match id.as_slice() {
            b"$" => From::Last,
            b">" => {
                refused = Some(error(
                    "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
                ));
                From::After(StreamId::MAX)
            }
            id => match parse_id(id) {
                Some(id) => From::After(id),
                None => {
                    refused = Some(invalid_id());
                    From::After(StreamId::MAX)
                }
            },
        };
        streams.push((key.clone(), from));
        if refused.is_some() {
            break;
        }
    }
    Ok(XRead {
        streams,
        count,
        block,
        refused,
    })
}

/// The error for a consumer group that is not there, as `XGROUP` words it.
fn no_group_for_key(key: &[u8], group: &[u8]) -> String {
    format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        String::from_utf8_lossy(group),
        String::from_utf8_lossy(key)
    )
}

/// The error for a key without the consumer group, as `XREADGROUP` (`reading`) or
/// `XPENDING` words it.
pub(super) fn no_key_or_group(key: &[u8], group: &[u8], reading: bool) -> String {
    format!(
        "NOGROUP No such key '{}' or consumer group '{}'{}",
        String::from_utf8_lossy(key),
        String::from_utf8_lossy(group),
        if reading {
            " in XREADGROUP with GROUP option"
        } else {
            ""
        }
    )
}

/// A group's starting place: `$`, or an ID (`None` if it is not one, refused where the
/// key is looked at, as Redis refuses it); `SETID` (`loose`) takes `-` and `+` too.
fn group_start(arg: &[u8], loose: bool) -> Option<GroupStart> {
    if arg == b"$" {
        return Some(GroupStart::Last);
    }
    let id = if loose {
        parse_loose_id(arg)
    } else {
        parse_id(arg)
    };
    id.map(GroupStart::At)
}

/// Redis's error for a subcommand with arguments it does not take.
fn subcommand_syntax_error(sub: &[u8]) -> OwnedFrame {
    error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try XGROUP HELP.",
        String::from_utf8_lossy(sub)
    ))
}

/// Reads `[MKSTREAM] [ENTRIESREAD n]` (only `ENTRIESREAD` for `SETID`) from `args[5..]`
/// of `CREATE` and `SETID`. The count of entries read is checked, but not kept: no
/// reply shows it.
fn parse_group_options(args: &[Vec<u8>], create: bool) -> Result<bool, OwnedFrame> {
    let mut mkstream = false;
    let mut at = 5;
    if !args[1].eq_ignore_ascii_case(b"CREATE") && !args[1].eq_ignore_ascii_case(b"SETID") {
        return Ok(false);
    }
    while at < args.len() {
        if create && args[at].eq_ignore_ascii_case(b"MKSTREAM") {
            mkstream = true;
            at += 1;
        } else if args[at].eq_ignore_ascii_case(b"ENTRIESREAD") && at + 1 < args.len() {
            let n = parse_integer(&args[at + 1]).ok_or_else(not_an_integer)?;
            if n < -1 {
                return Err(error("ERR value for ENTRIESREAD must be positive or -1"));
            }
            at += 2;
        } else {
            return Err(subcommand_syntax_error(&args[1]));
        }
    }
    Ok(mkstream)
}

/// What `XGROUP HELP` answers.
const XGROUP_HELP: &[&str] = &[
    "XGROUP <subcommand> [<arg> ...]. Subcommands are:",
    "CREATE <key> <group> <id|$> [MKSTREAM] [ENTRIESREAD <count>]",
    "    Make a consumer group that has delivered the entries up to the ID (or the last",
    "    one, with $). MKSTREAM makes an empty stream if the key holds none.",
    "SETID <key> <group> <id|$> [ENTRIESREAD <count>]",
    "    Set the entry the group has delivered up to.",
    "DESTROY <key> <group>",
    "    Remove the group.",
    "CREATECONSUMER <key> <group> <consumer>",
    "    Add a consumer to the group.",
    "DELCONSUMER <key> <group> <consumer>",
    "    Remove a consumer from the group, and the entries pending with it.",
    "HELP",
    "    Print this help.",
];

/// Parses `XGROUP CREATE|SETID|DESTROY|CREATECONSUMER|DELCONSUMER key group ...`, and
/// the error for a group that is not there. `Err` holds the reply for one refused at
/// once, or for `XGROUP HELP`.
pub(super) fn parse_xgroup(args: &[Vec<u8>]) -> Result<(Command, String), OwnedFrame> {
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    if sub == "help" && args.len() == 2 {
        return Err(OwnedFrame::Array(
            XGROUP_HELP
                .iter()
                .map(|line| OwnedFrame::SimpleString(line.as_bytes().to_vec()))
                .collect(),
        ));
    }
    let (least, most) = match sub.as_str() {
        "create" => (5, 8),
        "setid" => (5, 7),
        "destroy" => (4, 4),
        "createconsumer" | "delconsumer" => (5, 5),
        _ => {
            return Err(error(format!(
                "ERR unknown subcommand '{}'. Try XGROUP HELP.",
                String::from_utf8_lossy(&args[1])
            )));
        }
    };
    // A fixed number of arguments is checked as the command's arity is.
    if args.len() < least || (least == most && args.len() != least) {
        return Err(error(format!(
            "ERR wrong number of arguments for 'xgroup|{sub}' command"
        )));
    }
    // Options are read first; then too many of them, though each is good, is refused.
    let mkstream = parse_group_options(args, sub == "create")?;
    if args.len() > most {
        return Err(subcommand_syntax_error(&args[1]));
    }
    let op = match sub.as_str() {
        "create" => GroupOp::Create {
            start: group_start(&args[4], false),
            mkstream,
        },
        "setid" => GroupOp::SetId {
            start: group_start(&args[4], true),
        },
        "destroy" => GroupOp::Destroy,
        "createconsumer" => GroupOp::CreateConsumer {
            consumer: args[4].clone(),
        },
        _ => GroupOp::DelConsumer {
            consumer: args[4].clone(),
        },
    };
    let missing = no_group_for_key(&args[2], &args[3]);
    Ok((
        Command::XGroup {
            key: args[2].clone(),
            group: args[3].clone(),
            op,
        },
        missing,
    ))
}

/// An `XREADGROUP`, parsed: the command, how long it may wait (`BLOCK`), and for each
/// key the error if it holds no such group.
pub(super) struct XReadGroup {
    pub(super) command: Command,
    pub(super) block: Option<Option<Duration>>,
    pub(super) missing: Vec<String>,
    /// The error for an ID that is not one. Redis looks at each key (its kind, then
    /// its group) before its ID, so this is the answer only if the keys in `command`
    /// (those up to that ID) hold streams with the group.
    pub(super) refused: Option<OwnedFrame>,
}

/// Parses `XREADGROUP GROUP group consumer [COUNT count] [BLOCK milliseconds] [NOACK]
/// STREAMS key [key ...] id [id ...]`.
pub(super) fn parse_xreadgroup(args: &[Vec<u8>]) -> Result<XReadGroup, OwnedFrame> {
    let ReadOptions {
        count,
        block,
        group,
        no_ack,
        first_key,
    } = parse_read_options(args, true)?;
    let Some((group, consumer)) = group else {
        return Err(error("ERR Missing GROUP option for XREADGROUP"));
    };
    let rest = &args[first_key..];
    let (keys, ids) = rest.split_at(rest.len() / 2);
    let mut reads = Vec::with_capacity(keys.len());
    let mut refused = None;
    for (key, id) in keys.iter().zip(ids) {
        let after = match id.as_slice() {
            b">" => None,
            b"$" => {
                refused = Some(error(
                    "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.",
                ));
                None
            }
            id => match parse_id(id) {
                // The highest ID is how Redis stands for `>`.
                Some(id) => Some(id).filter(|id| *id != StreamId::MAX),
                None => {
                    refused = Some(invalid_id());
                    None
                }
            },
        };
        reads.push(GroupRead {
            key: key.clone(),
            after,
        });
        if refused.is_some() {
            break;
        }
    }
    let missing = keys
        .iter()
        .map(|key| no_key_or_group(key, &group, true))
        .collect();
    // Reading a consumer's own pending entries never waits.
    let block = block.filter(|_| reads.iter().all(|r| r.after.is_none()));
    Ok(XReadGroup {
        command: Command::XReadGroup {
            group,
            consumer,
            reads,
            count,
            no_ack,
        },
        block,
        missing,
        refused,
    })
}

/// Parses `XACK key group id [id ...]`, every ID before anything is acknowledged. An
/// argument that is not an ID is refused where the key is looked at (see
/// [`Command::XAck`]).
pub(super) fn parse_xack(args: &[Vec<u8>]) -> Command {
    let ids: Option<Vec<StreamId>> = args[3..].iter().map(|arg| parse_id(arg)).collect();
    Command::XAck {
        key: args[1].clone(),
        group: args[2].clone(),
        bad_id: ids.is_none(),
        ids: ids.unwrap_or_default(),
    }
}

/// Parses `XPENDING key group [[IDLE min-idle-time] start end count [consumer]]`, and
/// the error for a key without the group.
pub(super) fn parse_xpending(args: &[Vec<u8>]) -> Result<(StreamRead, String), OwnedFrame> {
    let missing = no_key_or_group(&args[1], &args[2], false);
    let group = args[2].clone();
    if args.len() == 3 {
        return Ok((StreamRead::Pending { group, range: None }, missing));
    }
    if !(6..=9).contains(&args.len()) {
        return Err(syntax_error());
    }
    let mut at = 3;
    let mut min_idle_ms = 0;
    if args[3].eq_ignore_ascii_case(b"IDLE") {
        let idle = parse_integer(&args[4]).ok_or_else(not_an_integer)?;
        if args.len() < 8 {
            return Err(syntax_error());
        }
        min_idle_ms = u64::try_from(idle).unwrap_or(0);
        at = 5;
    }
    let count = parse_integer(&args[at + 2]).ok_or_else(not_an_integer)?;
    let (start, end) = (bound(&args[at], false)?, bound(&args[at + 1], true)?);
    Ok((
        StreamRead::Pending {
            group,
            range: Some(PendingRange {
                start,
                end,
                count: u64::try_from(count).unwrap_or(0),
                // Arguments past the consumer are not looked at, as in Redis.
                consumer: args.get(at + 3).cloned(),
                min_idle_ms,
            }),
        },
        missing,
    ))
}

/// An `XCLAIM`, parsed: the command, the error for a key without the group, and the
/// error for arguments Redis refuses only once it found the group (`refused`).
pub(super) struct XClaim {
    pub(super) command: Command,
    pub(super) missing: String,
    pub(super) refused: Option<OwnedFrame>,
}

/// Parses `XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME ms]
/// [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID id]`: IDs up to the first argument
/// that is not one, then options.
pub(super) fn parse_xclaim(args: &[Vec<u8>]) -> XClaim {
    let missing = no_key_or_group(&args[1], &args[2], false);
    let mut command = Command::XClaim {
        key: args[1].clone(),
        group: args[2].clone(),
        consumer: args[3].clone(),
        min_idle_ms: 0,
        ids: Vec::new(),
        delivered: None,
        retry_count: None,
        force: false,
        just_id: false,
        last_id: None,
    };
    let refused = claim_options(args, &mut command).err();
    XClaim {
        command,
        missing,
        refused,
    }
}

/// Reads `XCLAIM`'s minimum idle time, IDs and options into `command`.
fn claim_options(args: &[Vec<u8>], command: &mut Command) -> Result<(), OwnedFrame> {
    let Command::XClaim {
        min_idle_ms,
        ids,
        delivered,
        retry_count,
        force,
        just_id,
        last_id,
        ..
    } = command
    else {
        unreachable!("parse_xclaim makes an XCLAIM");
    };
    let number = |arg: &[u8], what: &str| {
        parse_integer(arg).ok_or_else(|| error(format!("ERR Invalid {what} argument for XCLAIM")))
    };
    *min_idle_ms = u64::try_from(number(&args[4], "min-idle-time")?).unwrap_or(0);
    let mut at = 5;
    while let Some(id) = args.get(at).and_then(|arg| parse_id(arg)) {
        ids.push(id);
        at += 1;
    }
    while at < args.len() {
        let more = at + 1 < args.len();
        match args[at].to_ascii_uppercase().as_slice() {
            b"FORCE" => *force = true,
            b"JUSTID" => *just_id = true,
            b"IDLE" if more => {
                at += 1;
                *delivered = Some(ClaimTime::Idle(number(&args[at], "IDLE option")?));
            }
            b"TIME" if more => {
                at += 1;
                *delivered = Some(ClaimTime::At(number(&args[at], "TIME option")?));
            }
            b"RETRYCOUNT" if more => {
                at += 1;
                // A negative count is no count, as in Redis.
                *retry_count = u64::try_from(number(&args[at], "RETRYCOUNT option")?).ok();
            }
            b"LASTID" if more => {
                at += 1;
                *last_id = Some(parse_id(&args[at]).ok_or_else(invalid_id)?);
            }
            _ => {
                return Err(error(format!(
                    "ERR Unrecognized XCLAIM option '{}'",
                    String::from_utf8_lossy(&args[at])
                )));
            }
        }
        at += 1;
    }
    Ok(())
}

/// Parses `XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]`,
/// and the error for a key without the group.
pub(super) fn parse_xautoclaim(args: &[Vec<u8>]) -> Result<(Command, String), OwnedFrame> {
    let min_idle = parse_integer(&args[4])
        .ok_or_else(|| error("ERR Invalid min-idle-time argument for XAUTOCLAIM"))?;
    let start = bound(&args[5], false)?;
    let mut count = 100;
    let mut just_id = false;
    let mut at = 6;
    while at < args.len() {
        match args[at].to_ascii_uppercase().as_slice() {
            b"COUNT" if at + 1 < args.len() => {
                // Redis also refuses a count it could not look ten times as far as.
                count = parse_integer(&args[at + 1])
                    .filter(|n| (1..=i64::MAX / 16).contains(n))
                    .ok_or_else(|| error("ERR COUNT must be > 0"))?
                    .unsigned_abs();
                at += 1;
            }
            b"JUSTID" => just_id = true,
            _ => return Err(syntax_error()),
        }
        at += 1;
    }
    Ok((
        Command::XAutoClaim {
            key: args[1].clone(),
            group: args[2].clone(),
            consumer: args[3].clone(),
            min_idle_ms: u64::try_from(min_idle).unwrap_or(0),
            start,
            count,
            just_id,
        },
        no_key_or_group(&args[1], &args[2], false),
    ))
}

/// IDs, as `XCLAIM ... JUSTID` answers them.
fn ids_frame(ids: Vec<StreamId>) -> OwnedFrame {
    OwnedFrame::Array(
        ids.into_iter()
            .map(|id| bulk(id.to_string().into_bytes()))
            .collect(),
    )
}

/// `XCLAIM ... JUSTID`'s and `XAUTOCLAIM`'s answers.
pub(super) fn claimed_reply(output: Output) -> Result<Reply, Output> {
    Ok(match output {
        Output::StreamIds(ids) => Reply::Frame(ids_frame(ids)),
        Output::AutoClaimed {
            next,
            claimed,
            deleted,
        } => {
            let claimed = match *claimed {
                Output::StreamIds(ids) => Reply::Frame(ids_frame(ids)),
                Output::Entries(entries) => entries_reply(entries),
                other => return Err(other),
            };
            Reply::Array(vec![
                Reply::Frame(bulk(next.to_string().into_bytes())),
                claimed,
                Reply::Frame(ids_frame(deleted)),
            ])
        }
        other => return Err(other),
    })
}

/// `XPENDING`'s answers.
pub(super) fn pending_reply(output: Output) -> Result<Reply, Output> {
    let id = |id: StreamId| bulk(id.to_string().into_bytes());
    Ok(match output {
        Output::PendingSummary {
            count,
            ids,
            consumers,
        } => {
            let (first, last) = ids
                .map_or((OwnedFrame::Null, OwnedFrame::Null), |(first, last)| {
                    (id(first), id(last))
                });
            let consumers = if consumers.is_empty() {
                Reply::NullArray
            } else {
                Reply::Frame(OwnedFrame::Array(
                    consumers
                        .into_iter()
                        .map(|(name, held)| {
                            OwnedFrame::Array(vec![bulk(name), bulk(held.to_string().into_bytes())])
                        })
                        .collect(),
                ))
            };
            Reply::Array(vec![
                Reply::Frame(OwnedFrame::Integer(
                    i64::try_from(count).unwrap_or(i64::MAX),
                )),
                Reply::Frame(first),
                Reply::Frame(last),
                consumers,
            ])
        }
        Output::PendingEntries(entries) => Reply::Frame(OwnedFrame::Array(
            entries
                .into_iter()
                .map(|(at, consumer, idle, deliveries)| {
                    let int = |n: u64| OwnedFrame::Integer(i64::try_from(n).unwrap_or(i64::MAX));
                    OwnedFrame::Array(vec![id(at), bulk(consumer), int(idle), int(deliveries)])
                })
                .collect(),
        )),
        other => return Err(other),
    })
}

/// One entry as Redis answers it: its ID, then its fields and values.
/// An entry deleted since it was delivered to a consumer group has no fields: its
/// fields are no array.
fn entry_reply(entry: StreamEntry) -> Reply {
    let id = bulk(entry.id.to_string().into_bytes());
    if entry.fields.is_empty() {
        return Reply::Array(vec![Reply::Frame(id), Reply::NullArray]);
    }
    Reply::Frame(OwnedFrame::Array(vec![
        id,
        OwnedFrame::Array(entry.fields.into_iter().map(bulk).collect()),
    ]))
}

/// Entries as `XRANGE` answers them; `None` is no array at all.
pub(super) fn entries_reply(entries: Option<Vec<StreamEntry>>) -> Reply {
    match entries {
        None => Reply::NullArray,
        Some(entries) => Reply::Array(entries.into_iter().map(entry_reply).collect()),
    }
}

/// What `XREAD` answers: for each key read from, its entries (in RESP3 a map, in RESP2
/// an array of pairs); with none, no array.
pub(super) fn streams_reply(streams: Vec<(Vec<u8>, Vec<StreamEntry>)>) -> Reply {
    if streams.is_empty() {
        return Reply::NullArray;
    }
    Reply::Keyed(
        streams
            .into_iter()
            .map(|(key, entries)| {
                (
                    bulk(key),
                    Reply::Array(entries.into_iter().map(entry_reply).collect()),
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<Vec<u8>> {
        line.split(' ').map(|a| a.as_bytes().to_vec()).collect()
    }

    #[test]
    fn xadd_reads_options_in_redis_order() {
        let parsed = parse_xadd(&args("XADD s NOMKSTREAM MAXLEN ~ 10 LIMIT 5 5-* f v")).unwrap();
        assert_eq!(
            parsed,
            Command::XAdd {
                key: b"s".to_vec(),
                id: NewId::AutoSeq(5),
                fields: args("f v"),
                no_mkstream: true,
                trim: Some(Trim {
                    by: TrimBy::MaxLen(10),
                    limit: 5
                }),
            }
        );
        let Command::XAdd { trim, id, .. } = parse_xadd(&args("XADD s MINID = 3 * f v")).unwrap()
        else {
            unreachable!()
        };
        assert_eq!(id, NewId::Auto);
        assert_eq!(
            trim,
            Some(Trim {
                by: TrimBy::MinId(StreamId { ms: 3, seq: 0 }),
                limit: 0
            })
        );
        let refused = |line: &str| parse_xadd(&args(line)).unwrap_err();
        assert_eq!(refused("XADD s * f"), super::super::wrong_arity("xadd"));
        assert_eq!(
            refused("XADD s 0-0 f v"),
            error("ERR The ID specified in XADD must be greater than 0-0")
        );
        assert_eq!(
            refused("XADD s MAXLEN -1 * f v"),
            error("ERR The MAXLEN argument must be >= 0.")
        );
        assert_eq!(refused("XADD s x-1 f v"), invalid_id());
        assert_eq!(
            refused("XADD s MAXLEN 5 LIMIT 2 * f v"),
            error("ERR syntax error, LIMIT cannot be used without the special ~ option")
        );
        assert_eq!(
            refused("XADD s MAXLEN 5 MINID 2 * f v"),
            error("ERR syntax error, MAXLEN and MINID options at the same time are not compatible")
        );
    }

    #[test]
    fn xread_reads_streams_and_ids() {
        let parsed = parse_xread(&args("XREAD COUNT 2 BLOCK 0 STREAMS a b $ 5")).unwrap();
        assert_eq!(parsed.count, 2);
        assert_eq!(parsed.block, Some(None));
        assert_eq!(
            parsed.streams,
            vec![
                (b"a".to_vec(), From::Last),
                (b"b".to_vec(), From::After(StreamId { ms: 5, seq: 0 }))
            ]
        );
        assert!(parse_xread(&args("XREAD STREAMS a")).is_err());
        assert_eq!(parse_xread(&args("XREAD COUNT 1 a 1")), Err(syntax_error()));
        assert_eq!(
            parse_xread(&args("XREAD BLOCK -1 STREAMS a 1")),
            Err(error("ERR timeout is negative"))
        );
    }

    #[test]
    fn ranges_read_bounds_and_counts() {
        assert_eq!(
            parse_read("xrevrange", &args("XREVRANGE s + (5 COUNT -3")),
            Ok(StreamRead::Range {
                start: StreamId { ms: 5, seq: 1 },
                end: StreamId::MAX,
                count: Some(0),
                rev: true
            })
        );
        assert_eq!(
            parse_read(
                "xrange",
                &args("XRANGE s (18446744073709551615-18446744073709551615 +")
            ),
            Err(error("ERR invalid start ID for the interval"))
        );
        assert_eq!(
            parse_read("xrange", &args("XRANGE s - + COUNT")),
            Err(syntax_error())
        );
    }
}
