//! The geospatial commands' arguments, read as Redis 7 reads them, and their replies.
//!
//! `GEOADD` is a `ZADD` of computed scores; `GEOPOS`, `GEODIST` and `GEOHASH` read
//! scores; the searches read the sorted set whole and run [`geo::Search`] on it. A
//! search that stores (`GEOSEARCHSTORE`, `GEORADIUS ... STORE`) is a log entry,
//! [`Command::GeoStore`], so every replica searches the same set.

use redis_protocol::resp2::types::OwnedFrame;

use super::{Answer, not_an_integer, syntax_error};
use crate::command::{Command, Output, Score, ZAddOptions, ZSetRead, parse_integer};
use crate::geo::{self, Center, Order, Search, Shape, Unit};
use crate::resp::{Reply, bulk, error};
use crate::zset::parse_score;

fn not_a_float() -> OwnedFrame {
    error("ERR value is not a valid float")
}

fn no_member() -> OwnedFrame {
    error("ERR could not decode requested zset member")
}

fn bad_unit() -> OwnedFrame {
    error("ERR unsupported unit provided. please use M, KM, FT, MI")
}

/// The commands [`geo_step`] takes: the reads, and the searches (some of which store).
pub(super) const READS: &[&str] = &[
    "geopos",
    "geohash",
    "geodist",
    "geosearch",
    "geosearchstore",
    "georadius",
    "georadius_ro",
    "georadiusbymember",
    "georadiusbymember_ro",
];

/// How a geospatial read's sorted-set output becomes its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum GeoAnswer {
    /// `GEOPOS`: the scores of the members asked for.
    Pos,
    /// `GEOHASH`: the same.
    Hash,
    /// `GEODIST`: the two members' scores, and the unit of the answer.
    Dist(Unit),
    /// A search, parsed again once the sorted set is read (Redis looks the centre
    /// member up as it reads the arguments): the command's name as given, and its
    /// arguments.
    Search(String, Vec<Vec<u8>>),
}

/// A longitude and a latitude, checked as Redis checks them.
fn lon_lat(lon: &[u8], lat: &[u8]) -> Result<(Score, Score), OwnedFrame> {
    let lon = parse_score(lon).ok_or_else(not_a_float)?;
    let lat = parse_score(lat).ok_or_else(not_a_float)?;
    if !geo::valid(lon.get(), lat.get()) {
        return Err(error(format!(
            "ERR invalid longitude,latitude pair {:.6},{:.6}",
            lon.get(),
            lat.get()
        )));
    }
    Ok((lon, lat))
}

/// A length that may not be negative, or the error naming it.
fn length(text: &[u8], what: &str) -> Result<Score, OwnedFrame> {
    parse_score(text).ok_or_else(|| error(format!("ERR need numeric {what}")))
}

fn unit(text: &[u8]) -> Result<Unit, OwnedFrame> {
    Unit::parse(text).ok_or_else(bad_unit)
}

/// A radius and its unit.
fn radius(args: &[Vec<u8>]) -> Result<(Shape, Unit), OwnedFrame> {
    let radius = length(&args[0], "radius")?;
    if radius.get() < 0.0 {
        return Err(error("ERR radius cannot be negative"));
    }
    Ok((Shape::Radius(radius), unit(&args[1])?))
}

/// Parses `GEOADD key [NX|XX] [CH] longitude latitude member [...]` into the `ZADD` it
/// is, checking every point before anything is written.
pub(super) fn parse_geoadd(args: &[Vec<u8>]) -> Result<Command, OwnedFrame> {
    let mut options = ZAddOptions::default();
    let mut at = 2;
    while let Some(word) = args.get(at) {
        match word.to_ascii_uppercase().as_slice() {
            b"NX" => options.only_new = true,
            b"XX" => options.only_existing = true,
            b"CH" => options.changed = true,
            _ => break,
        }
        at += 1;
    }
    let points = &args[at..];
    if !points.len().is_multiple_of(3)
        || points.is_empty()
        || (options.only_new && options.only_existing)
    {
        return Err(syntax_error());
    }
    let entries = points
        .chunks_exact(3)
        .map(|point| {
            let (lon, lat) = lon_lat(&point[0], &point[1])?;
            let score = Score::new(geo::score_of(lon.get(), lat.get())).expect("a geohash");
            Ok((score, point[2].clone()))
        })
        .collect::<Result<Vec<_>, OwnedFrame>>()?;
    Ok(Command::ZAdd {
        key: args[1].clone(),
        entries,
        options,
    })
}

/// `GEODIST key member1 member2 [unit]`: the unit, read before the key, as Redis does.
pub(super) fn parse_geodist(args: &[Vec<u8>]) -> Result<Unit, OwnedFrame> {
    match args.len() {
        4 => Ok(Unit::Meters),
        5 => unit(&args[4]),
        _ => Err(syntax_error()),
    }
}

/// A search, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Parsed {
    pub(super) search: Search,
    /// Where it stores, and whether distances rather than geohashes.
    pub(super) store: Option<(Vec<u8>, bool)>,
    with_dist: bool,
    with_hash: bool,
    with_coord: bool,
}

/// Parses `GEOSEARCH`, `GEOSEARCHSTORE`, `GEORADIUS`, `GEORADIUSBYMEMBER` and the `_RO`
/// forms (`name` in lower case, `given` as the client wrote it) in Redis's order, so
/// that the first fault is the one Redis names. `entries` is the sorted set searched,
/// once read (empty: no such key); without it, a centre member is taken on trust.
pub(super) fn parse_search(
    name: &str,
    given: &str,
    args: &[Vec<u8>],
    entries: Option<&[(Vec<u8>, Score)]>,
) -> Result<Parsed, OwnedFrame> {
    let exists = entries.is_none_or(|e| !e.is_empty());
    let holds = |member: &[u8]| entries.is_none_or(|e| e.iter().any(|(m, _)| m == member));
    let searching = name.starts_with("geosearch");
    let may_store = !searching && !name.ends_with("_ro");
    let mut center = None;
    let mut shape = None;
    let mut store = None;
    let base = match name {
        "georadius" | "georadius_ro" => {
            let (lon, lat) = lon_lat(&args[2], &args[3])?;
            center = Some(Center::At { lon, lat });
            shape = Some(radius(&args[4..6])?);
            6
        }
        "georadiusbymember" | "georadiusbymember_ro" => {
            // Without the key Redis reads neither the member nor the radius.
            if exists {
                if !holds(&args[2]) {
                    return Err(no_member());
                }
                center = Some(Center::Member(args[2].clone()));
                shape = Some(radius(&args[3..5])?);
            }
            5
        }
        "geosearchstore" => {
            store = Some((args[1].clone(), false));
            3
        }
        _ => 2,
    };
    let (mut with_dist, mut with_hash, mut with_coord, mut any) = (false, false, false, false);
    let mut order = Order::Unsorted;
    let mut count = 0u64;
    let (mut from_member, mut from_at, mut by_radius, mut by_box) = (false, false, false, false);
    let rest = &args[base..];
    let mut i = 0;
    while i < rest.len() {
        let left = rest.len() - i - 1;
        match rest[i].to_ascii_lowercase().as_slice() {
            b"withdist" => with_dist = true,
            b"withhash" => with_hash = true,
            b"withcoord" => with_coord = true,
            b"any" => any = true,
            b"asc" => order = Order::Nearest,
            b"desc" => order = Order::Farthest,
            b"count" if left >= 1 => {
                let n = parse_integer(&rest[i + 1]).ok_or_else(not_an_integer)?;
                if n <= 0 {
                    return Err(error("ERR COUNT must be > 0"));
                }
                count = n as u64;
                i += 1;
            }
            word @ (b"store" | b"storedist") if left >= 1 && may_store => {
                store = Some((rest[i + 1].clone(), word == b"storedist"));
                i += 1;
            }
            b"storedist" if name == "geosearchstore" => {
                store = Some((args[1].clone(), true));
            }
            b"frommember" if left >= 1 && searching && !from_at => {
                if exists {
                    if !holds(&rest[i + 1]) {
                        return Err(no_member());
                    }
                    center = Some(Center::Member(rest[i + 1].clone()));
                }
                from_member = true;
                i += 1;
            }
            b"fromlonlat" if left >= 2 && searching && !from_member => {
                let (lon, lat) = lon_lat(&rest[i + 1], &rest[i + 2])?;
                center = Some(Center::At { lon, lat });
                from_at = true;
                i += 2;
            }
            b"byradius" if left >= 2 && searching && !by_box => {
                shape = Some(radius(&rest[i + 1..i + 3])?);
                by_radius = true;
                i += 2;
            }
            b"bybox" if left >= 3 && searching && !by_radius => {
                let width = length(&rest[i + 1], "width")?;
                let height = length(&rest[i + 2], "height")?;
                if width.get() < 0.0 || height.get() < 0.0 {
                    return Err(error("ERR height or width cannot be negative"));
                }
                shape = Some((Shape::Box { width, height }, unit(&rest[i + 3])?));
                by_box = true;
                i += 3;
            }
            _ => return Err(syntax_error()),
        }
        i += 1;
    }
    if store.is_some() && (with_dist || with_hash || with_coord) {
        let what = if searching {
            "GEOSEARCHSTORE"
        } else {
            "STORE option in GEORADIUS"
        };
        return Err(error(format!(
            "ERR {what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        )));
    }
    if searching && !(from_member || from_at) {
        return Err(error(format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {given}"
        )));
    }
    if searching && !(by_radius || by_box) {
        return Err(error(format!(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for {given}"
        )));
    }
    if any && count == 0 {
        return Err(error("ERR the ANY argument requires COUNT argument"));
    }
    // Without the key, a centre or shape left unread answers nothing either way.
    let center = center.unwrap_or(Center::Member(Vec::new()));
    let zero = Score::new(0.0).expect("not a NaN");
    let (shape, unit) = shape.unwrap_or((Shape::Radius(zero), Unit::Meters));
    Ok(Parsed {
        search: Search {
            center,
            shape,
            unit,
            order,
            count,
            any,
        },
        store,
        with_dist,
        with_hash,
        with_coord,
    })
}

/// The reply to a geospatial read, from the sorted-set output it read.
pub(super) fn geo_reply(output: Output, answer: &GeoAnswer) -> Result<Reply, Output> {
    let null = || Reply::Frame(OwnedFrame::Null);
    Ok(match (output, answer) {
        (Output::Scores(scores), GeoAnswer::Pos) => Reply::Array(
            scores
                .into_iter()
                .map(|score| match score {
                    None => Reply::NullArray,
                    Some(score) => coordinates(geo::position(score.get())),
                })
                .collect(),
        ),
        (Output::Scores(scores), GeoAnswer::Hash) => Reply::Array(
            scores
                .into_iter()
                .map(|score| {
                    score.map_or_else(null, |s| Reply::Frame(bulk(geo::geohash(s.get()).to_vec())))
                })
                .collect(),
        ),
        (Output::Scores(scores), GeoAnswer::Dist(unit)) => match scores[..] {
            [Some(a), Some(b)] => {
                let meters = geo::distance(geo::position(a.get()), geo::position(b.get()));
                Reply::Frame(bulk(
                    geo::format_distance(meters / unit.meters()).into_bytes(),
                ))
            }
            _ => null(),
        },
        (Output::Scored(entries), GeoAnswer::Search(name, args)) => {
            search_reply(name, args, &entries)
        }
        (output, _) => return Err(output),
    })
}

fn coordinates((lon, lat): (f64, f64)) -> Reply {
    Reply::Array(vec![
        Reply::Double(geo::format_coordinate(lon)),
        Reply::Double(geo::format_coordinate(lat)),
    ])
}

/// A search's reply, parsing its arguments again against the sorted set read.
fn search_reply(given: &str, args: &[Vec<u8>], entries: &[(Vec<u8>, Score)]) -> Reply {
    let name = given.to_ascii_lowercase();
    let parsed = match parse_search(&name, given, args, Some(entries)) {
        Ok(parsed) => parsed,
        Err(refused) => return Reply::Frame(refused),
    };
    if entries.is_empty() {
        // Redis answers a search that would store (it cannot here, being a read) with
        // the count stored.
        return match parsed.store {
            Some(_) => Reply::Frame(OwnedFrame::Integer(0)),
            None => Reply::Array(Vec::new()),
        };
    }
    let score_of = |m: &[u8]| entries.iter().find(|(e, _)| e == m).map(|(_, s)| s.get());
    let Some(center) = parsed.search.center(score_of) else {
        return Reply::Frame(no_member());
    };
    let entries: Vec<(&[u8], f64)> = entries
        .iter()
        .map(|(m, s)| (m.as_slice(), s.get()))
        .collect();
    let found = parsed.search.run(center, &entries);
    if parsed.store.is_some() {
        return Reply::Frame(OwnedFrame::Integer(found.len() as i64));
    }
    Reply::Array(
        found
            .into_iter()
            .map(|f| {
                let member = Reply::Frame(bulk(f.member));
                if !(parsed.with_dist || parsed.with_hash || parsed.with_coord) {
                    return member;
                }
                let mut item = vec![member];
                if parsed.with_dist {
                    item.push(Reply::Frame(bulk(
                        geo::format_distance(f.distance).into_bytes(),
                    )));
                }
                if parsed.with_hash {
                    item.push(Reply::Frame(OwnedFrame::Integer(f.score as i64)));
                }
                if parsed.with_coord {
                    item.push(coordinates(f.at));
                }
                Reply::Array(item)
            })
            .collect(),
    )
}

/// What a geospatial read or search needs.
pub(super) enum GeoStep {
    /// A read of the sorted set at the key: the read, and the shape of its answer.
    Read(Vec<u8>, ZSetRead, Answer),
    /// A search that stores.
    Write(Command),
    /// A fault found before the key is looked at.
    Refused(OwnedFrame),
}

/// What `GEOPOS`, `GEOHASH`, `GEODIST` or a search (`name` in lower case) needs.
pub(super) fn geo_step(name: &str, args: &[Vec<u8>]) -> GeoStep {
    let scores = |members: &[Vec<u8>], answer| {
        let read = ZSetRead::MScore {
            members: members.to_vec(),
        };
        GeoStep::Read(args[1].clone(), read, Answer::Geo(answer))
    };
    match name {
        "geopos" => scores(&args[2..], GeoAnswer::Pos),
        "geohash" => scores(&args[2..], GeoAnswer::Hash),
        "geodist" => match parse_geodist(args) {
            Ok(unit) => scores(&args[2..4], GeoAnswer::Dist(unit)),
            Err(refused) => GeoStep::Refused(refused),
        },
        _ => {
            let given = String::from_utf8_lossy(&args[0]).into_owned();
            let source = if name == "geosearchstore" { 2 } else { 1 };
            if let Ok(Parsed {
                search,
                store: Some((dest, store_dist)),
                ..
            }) = parse_search(name, &given, args, None)
            {
                return GeoStep::Write(Command::GeoStore {
                    dest,
                    source: args[source].clone(),
                    search,
                    store_dist,
                });
            }
            // A read, or a fault to be named once the set is read, as Redis names it.
            let answer = Answer::Geo(GeoAnswer::Search(given, args.to_vec()));
            GeoStep::Read(args[source].clone(), ZSetRead::everything(true), answer)
        }
    }
}
