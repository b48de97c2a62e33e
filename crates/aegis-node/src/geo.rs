//! Geospatial indexes: points kept as the members of a sorted set, as Redis keeps them,
//! so `GEOADD` through a node and `ZRANGE ... WITHSCORES` show Redis's scores.
//!
//! A point's score is its 52-bit geohash: longitude and latitude each scaled to 26 bits
//! over [-180, 180] and [-85.05112878, 85.05112878] (the Web Mercator latitudes),
//! interleaved with the latitude's bits at the even places. Reading a score back gives
//! the centre of its cell, which is what `GEOPOS` answers and what distances are
//! measured from, as in Redis. Distances are haversine great-circle distances on a
//! sphere of Redis's earth radius.
//!
//! Searches (`GEOSEARCH`, `GEORADIUS` and their kin) look, as Redis does, at the members
//! in the cell of the grid around the centre and its eight neighbours, at a step sized
//! to the shape, and keep those within it; so they find the members Redis finds, in the
//! same order.

use serde::{Deserialize, Serialize};

use crate::command::Score;

/// The longitudes a point may have.
pub const LON_MIN: f64 = -180.0;
/// See [`LON_MIN`].
pub const LON_MAX: f64 = 180.0;
/// The latitudes a point may have (those of Web Mercator).
pub const LAT_MIN: f64 = -85.051_128_78;
/// See [`LAT_MIN`].
pub const LAT_MAX: f64 = 85.051_128_78;

/// Bits per coordinate in a score.
const STEP: u32 = 26;

/// Redis's earth radius, in meters.
const EARTH_RADIUS_M: f64 = 6_372_797.560_856;

/// Degrees to radians, as one constant.
const DEG_TO_RAD: f64 = std::f64::consts::PI / 180.0;

/// The alphabet of standard geohash strings.
const BASE32: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";

/// Whether a longitude and latitude may be indexed.
#[must_use]
pub fn valid(lon: f64, lat: f64) -> bool {
    (LON_MIN..=LON_MAX).contains(&lon) && (LAT_MIN..=LAT_MAX).contains(&lat)
}

/// The geohash bits of a point (checked by [`valid`]) over the given latitude range.
fn hash_bits(lon: f64, lat: f64, lat_min: f64, lat_max: f64) -> u64 {
    debug_assert!(valid(lon, lat));
    let scale = f64::from(1u32 << STEP);
    let lat_offset = (lat - lat_min) / (lat_max - lat_min) * scale;
    let lon_offset = (lon - LON_MIN) / (LON_MAX - LON_MIN) * scale;
    // As C converts a double to a 32-bit unsigned integer: truncated.
    interleave(lat_offset as u32, lon_offset as u32)
}

/// The score of a point checked by [`valid`].
#[must_use]
pub fn score_of(lon: f64, lat: f64) -> f64 {
    hash_bits(lon, lat, LAT_MIN, LAT_MAX) as f64
}

/// Spreads `even` over the even bits and `odd` over the odd bits of the result.
fn interleave(even: u32, odd: u32) -> u64 {
    spread(even) | (spread(odd) << 1)
}

/// The bits of `x` at the even places of a 64-bit word.
fn spread(x: u32) -> u64 {
    let mut x = u64::from(x);
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    (x | (x << 1)) & 0x5555_5555_5555_5555
}

/// The even bits of `x`, packed: the inverse of [`spread`].
fn squash(x: u64) -> u32 {
    let mut x = x & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x >> 16)) & 0x0000_0000_FFFF_FFFF;
    x as u32
}

/// The centre of the cell a score names, as `(longitude, latitude)`, kept within the
/// indexable range. Any score reads as some point, as in Redis.
#[must_use]
pub fn position(score: f64) -> (f64, f64) {
    // As C converts a double to a 64-bit unsigned integer (saturating here, where C
    // leaves a negative or too large score undefined).
    let bits = score as u64;
    let lat_cell = f64::from(squash(bits));
    let lon_cell = f64::from(squash(bits >> 1));
    let cells = f64::from(1u32 << STEP);
    let lat_scale = LAT_MAX - LAT_MIN;
    let lon_scale = LON_MAX - LON_MIN;
    let lat_low = LAT_MIN + (lat_cell / cells) * lat_scale;
    let lat_high = LAT_MIN + ((lat_cell + 1.0) / cells) * lat_scale;
    let lon_low = LON_MIN + (lon_cell / cells) * lon_scale;
    let lon_high = LON_MIN + ((lon_cell + 1.0) / cells) * lon_scale;
    let lon = ((lon_low + lon_high) / 2.0).clamp(LON_MIN, LON_MAX);
    let lat = ((lat_low + lat_high) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (lon, lat)
}

/// The standard 11-character geohash of the point a score names (over latitudes
/// [-90, 90], its last character always `0`, as Redis gives it).
#[must_use]
pub fn geohash(score: f64) -> [u8; 11] {
    let (lon, lat) = position(score);
    let bits = hash_bits(lon, lat, -90.0, 90.0);
    let mut text = [b'0'; 11];
    for (i, c) in text.iter_mut().take(10).enumerate() {
        let index = (bits >> (52 - (i + 1) * 5)) & 0x1f;
        *c = BASE32[index as usize];
    }
    text
}

/// The great-circle distance in meters between two points (longitude, latitude).
#[must_use]
pub fn distance((lon1, lat1): (f64, f64), (lon2, lat2): (f64, f64)) -> f64 {
    let v = ((lon2 * DEG_TO_RAD - lon1 * DEG_TO_RAD) / 2.0).sin();
    // On one meridian the distance is the latitudes' alone.
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let lat1 = lat1 * DEG_TO_RAD;
    let lat2 = lat2 * DEG_TO_RAD;
    let u = ((lat2 - lat1) / 2.0).sin();
    let a = u * u + lat1.cos() * lat2.cos() * v * v;
    2.0 * EARTH_RADIUS_M * a.sqrt().asin()
}

/// The distance in meters between two latitudes on one meridian.
fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS_M * (lat2 * DEG_TO_RAD - lat1 * DEG_TO_RAD).abs()
}

/// A unit of distance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Unit {
    /// Meters (`m`).
    Meters,
    /// Kilometers (`km`).
    Kilometers,
    /// Feet (`ft`).
    Feet,
    /// Miles (`mi`).
    Miles,
}

impl Unit {
    /// Reads a unit, in any case; `None` if it is not one.
    #[must_use]
    pub fn parse(text: &[u8]) -> Option<Self> {
        Some(match text.to_ascii_lowercase().as_slice() {
            b"m" => Self::Meters,
            b"km" => Self::Kilometers,
            b"ft" => Self::Feet,
            b"mi" => Self::Miles,
            _ => return None,
        })
    }

    /// How many meters one of it is.
    #[must_use]
    pub fn meters(self) -> f64 {
        match self {
            Self::Meters => 1.0,
            Self::Kilometers => 1000.0,
            Self::Feet => 0.3048,
            Self::Miles => 1609.34,
        }
    }
}

/// Where a search is centred.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Center {
    /// At a member of the sorted set searched (`FROMMEMBER`, `GEORADIUSBYMEMBER`).
    Member(#[serde(with = "crate::command::byte_strings::one")] Vec<u8>),
    /// At a longitude and latitude (`FROMLONLAT`, `GEORADIUS`), checked by [`valid`].
    At {
        /// The longitude.
        lon: Score,
        /// The latitude.
        lat: Score,
    },
}

/// The area searched, in its unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shape {
    /// Within a distance of the centre (`BYRADIUS`).
    Radius(Score),
    /// Within a box of this width and height around the centre, measured along the
    /// centre's meridian and each point's parallel (`BYBOX`).
    Box {
        /// East to west.
        width: Score,
        /// North to south.
        height: Score,
    },
}

/// The order of a search's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Order {
    /// Score order (Redis's is the order of the cells it looked in).
    Unsorted,
    /// Nearest first.
    Nearest,
    /// Farthest first.
    Farthest,
}

/// A search of a sorted set's points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Search {
    /// Where it is centred.
    pub center: Center,
    /// The area, in `unit`.
    pub shape: Shape,
    /// The unit of the shape and of the distances answered or stored.
    pub unit: Unit,
    /// The order of the answer. A count without an order (and without `ANY`) answers
    /// the nearest, as in Redis.
    pub order: Order,
    /// The most members answered; 0 for all.
    pub count: u64,
    /// Stop at the first `count` members found, rather than answering the nearest.
    pub any: bool,
}

/// A member a search found.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The member.
    pub member: Vec<u8>,
    /// Its score (its geohash).
    pub score: f64,
    /// Its distance from the centre, in the search's unit.
    pub distance: f64,
    /// Its position, as [`position`] reads its score.
    pub at: (f64, f64),
}

impl Search {
    /// The longitude and latitude of the centre, given the score of each member of the
    /// sorted set searched; `None` for a centre member it does not hold.
    pub fn center(&self, score_of: impl FnOnce(&[u8]) -> Option<f64>) -> Option<(f64, f64)> {
        match &self.center {
            Center::At { lon, lat } => Some((lon.get(), lat.get())),
            Center::Member(member) => score_of(member).map(position),
        }
    }

    /// Whether the search's numbers are what its commands allow: a centre that may be
    /// indexed, and lengths that are not negative.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        let center = match self.center {
            Center::At { lon, lat } => valid(lon.get(), lat.get()),
            Center::Member(_) => true,
        };
        let lengths = match self.shape {
            Shape::Radius(radius) => radius.get() >= 0.0,
            Shape::Box { width, height } => width.get() >= 0.0 && height.get() >= 0.0,
        };
        center && lengths && (self.count > 0 || !self.any)
    }

    /// The members of `entries` (member and score, in score order, as the sorted set
    /// keeps them) within the shape around `center` (a longitude and latitude), as the
    /// search asks for them.
    ///
    /// Members are looked for as Redis looks for them: in the cell of the grid holding
    /// the centre and its eight neighbours, in Redis's order, each in score
    /// order. So the members found, their order when unsorted, and which `ANY` stops at
    /// are Redis's, quirks included: a member at the very top longitude or latitude is
    /// found only from nearby, and a search wide enough to meet itself around the
    /// globe may find a member twice.
    #[must_use]
    pub fn run(&self, center: (f64, f64), entries: &[(&[u8], f64)]) -> Vec<Found> {
        let meters = self.unit.meters();
        let limit = if self.any {
            usize::try_from(self.count).unwrap_or(usize::MAX)
        } else {
            0
        };
        let full = |found: &Vec<Found>| limit > 0 && found.len() >= limit;
        let mut found = Vec::new();
        for (low, high) in cells(self, center) {
            if full(&found) {
                break;
            }
            let first = entries.partition_point(|&(_, score)| score < low as f64);
            for &(member, score) in &entries[first..] {
                if score >= high as f64 {
                    break;
                }
                let at = position(score);
                if let Some(d) = self.distance_within(center, at) {
                    found.push(Found {
                        member: member.to_vec(),
                        score,
                        distance: d / meters,
                        at,
                    });
                    if full(&found) {
                        break;
                    }
                }
            }
        }
        let order = match self.order {
            Order::Unsorted if self.count > 0 && !self.any => Order::Nearest,
            order => order,
        };
        // Stable, so members at one distance keep the order they were found in.
        match order {
            Order::Unsorted => {}
            Order::Nearest => found.sort_by(|a, b| a.distance.total_cmp(&b.distance)),
            Order::Farthest => found.sort_by(|a, b| b.distance.total_cmp(&a.distance)),
        }
        if self.count > 0 {
            found.truncate(usize::try_from(self.count).unwrap_or(usize::MAX));
        }
        found
    }

    /// The distance in meters from `center` to `at`, if `at` is within the shape.
    fn distance_within(&self, center: (f64, f64), at: (f64, f64)) -> Option<f64> {
        let meters = self.unit.meters();
        match self.shape {
            Shape::Radius(radius) => {
                let d = distance(center, at);
                (d <= radius.get() * meters).then_some(d)
            }
            Shape::Box { width, height } => {
                // The latitude first: it is the cheaper to measure.
                if lat_distance(at.1, center.1) > height.get() * meters / 2.0 {
                    return None;
                }
                if distance(at, (center.0, at.1)) > width.get() * meters / 2.0 {
                    return None;
                }
                Some(distance(center, at))
            }
        }
    }
}

/// A cell of the grid at some step (bits per coordinate); step 0 for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cell {
    bits: u64,
    step: u32,
}

impl Cell {
    const NONE: Self = Self { bits: 0, step: 0 };

    /// The cell at `step` holding a point checked by [`valid`].
    fn of(lon: f64, lat: f64, step: u32) -> Self {
        let scale = (1u64 << step) as f64;
        let lat_offset = (lat - LAT_MIN) / (LAT_MAX - LAT_MIN) * scale;
        let lon_offset = (lon - LON_MIN) / (LON_MAX - LON_MIN) * scale;
        Self {
            bits: interleave(lat_offset as u32, lon_offset as u32),
            step,
        }
    }

    /// Its edges: (longitude min, max), (latitude min, max).
    fn bounds(self) -> ((f64, f64), (f64, f64)) {
        let cells = (1u64 << self.step) as f64;
        let lat = squash(self.bits);
        let lon = squash(self.bits >> 1);
        let edge = |cell: u32, min: f64, max: f64| {
            let low = min + (f64::from(cell) / cells) * (max - min);
            let high = min + (f64::from(cell.wrapping_add(1)) / cells) * (max - min);
            (low, high)
        };
        (edge(lon, LON_MIN, LON_MAX), edge(lat, LAT_MIN, LAT_MAX))
    }

    /// The cell `dx` east and `dy` north (each -1, 0 or 1), wrapping at the edges of
    /// the grid's bits as Redis's does.
    fn moved(self, dx: i8, dy: i8) -> Self {
        let odd = 0xAAAA_AAAA_AAAA_AAAAu64;
        let even = 0x5555_5555_5555_5555u64;
        let shift = 64 - self.step * 2;
        let step_one = |part: u64, other_mask: u64, own_mask: u64, d: i8| {
            let zz = other_mask >> shift;
            let part = match d {
                0 => return part,
                1.. => part.wrapping_add(zz.wrapping_add(1)),
                _ => (part | zz).wrapping_sub(zz.wrapping_add(1)),
            };
            part & (own_mask >> shift)
        };
        let lon = step_one(self.bits & odd, even, odd, dx);
        let lat = step_one(self.bits & even, odd, even, dy);
        Self {
            bits: lon | lat,
            step: self.step,
        }
    }

    /// The scores of its points: from the first up to, not including, the second.
    fn scores(self) -> (u64, u64) {
        let shift = 2 * (STEP - self.step);
        (self.bits << shift, (self.bits + 1) << shift)
    }
}

/// The grid's step whose cells are about the size of `meters`, as Redis estimates
/// it, finer near the poles.
fn step_for(meters: f64, lat: f64) -> u32 {
    /// Half the length of the Mercator projection's equator, in meters.
    const MERCATOR_MAX: f64 = 20_037_726.37;
    if meters == 0.0 {
        return STEP;
    }
    let mut meters = meters;
    let mut step: i32 = 1;
    while meters < MERCATOR_MAX {
        meters *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, STEP as i32) as u32
}

/// The cells whose points a search centred at `center` looks at, as Redis picks
/// them: the centre's cell, then north, south, east, west, north-east, north-west,
/// south-east and south-west, without those beyond the shape's bounding box, nor one
/// the same as the cell looked at just before it (but for the first neighbour, which
/// Redis does not compare with the centre's cell), each as its range of scores.
fn cells(search: &Search, (lon, lat): (f64, f64)) -> Vec<(u64, u64)> {
    let meters = search.unit.meters();
    let (half_width, half_height, reach) = match search.shape {
        Shape::Radius(radius) => (radius.get(), radius.get(), radius.get()),
        Shape::Box { width, height } => {
            let (w, h) = (width.get() / 2.0, height.get() / 2.0);
            (w, h, (w * w + h * h).sqrt())
        }
    };
    let (height, width) = (meters * half_height, meters * half_width);
    // The bounding box; the edges bend, so the wider end is taken.
    let lat_delta = height / EARTH_RADIUS_M / DEG_TO_RAD;
    let lon_delta_top =
        width / EARTH_RADIUS_M / ((lat + lat_delta) * DEG_TO_RAD).cos() / DEG_TO_RAD;
    let lon_delta_bottom =
        width / EARTH_RADIUS_M / ((lat - lat_delta) * DEG_TO_RAD).cos() / DEG_TO_RAD;
    let lon_delta = if lat < 0.0 {
        lon_delta_bottom
    } else {
        lon_delta_top
    };
    let (min_lon, max_lon) = (lon - lon_delta, lon + lon_delta);
    let (min_lat, max_lat) = (lat - lat_delta, lat + lat_delta);

    let mut step = step_for(reach * meters, lat);
    let mut center = Cell::of(lon, lat, step);
    // One step coarser if a neighbour stops short of the bounding box.
    let short = |cell: Cell| {
        let (_, (_, north)) = cell.moved(0, 1).bounds();
        let (_, (south, _)) = cell.moved(0, -1).bounds();
        let ((_, east), _) = cell.moved(1, 0).bounds();
        let ((west, _), _) = cell.moved(-1, 0).bounds();
        north < max_lat || south > min_lat || east < max_lon || west > min_lon
    };
    if step > 1 && short(center) {
        step -= 1;
        center = Cell::of(lon, lat, step);
    }
    let ((area_west, area_east), (area_south, area_north)) = center.bounds();
    let mut around = [
        center,
        center.moved(0, 1),
        center.moved(0, -1),
        center.moved(1, 0),
        center.moved(-1, 0),
        center.moved(1, 1),
        center.moved(-1, 1),
        center.moved(1, -1),
        center.moved(-1, -1),
    ];
    if step >= 2 {
        let mut drop = |places: [usize; 3]| places.iter().for_each(|&i| around[i] = Cell::NONE);
        if area_south < min_lat {
            drop([2, 8, 7]);
        }
        if area_north > max_lat {
            drop([1, 5, 6]);
        }
        if area_west < min_lon {
            drop([4, 8, 6]);
        }
        if area_east > max_lon {
            drop([3, 7, 5]);
        }
    }
    let mut picked = Vec::with_capacity(9);
    let mut last = 0;
    for (i, &cell) in around.iter().enumerate() {
        if cell == Cell::NONE || (last != 0 && cell == around[last]) {
            continue;
        }
        picked.push(cell.scores());
        last = i;
    }
    picked
}

/// A distance as Redis answers it: four decimals.
#[must_use]
pub fn format_distance(meters: f64) -> String {
    format!("{meters:.4}")
}

/// A coordinate as Redis answers it: seventeen decimals, without trailing zeros.
#[must_use]
pub fn format_coordinate(value: f64) -> String {
    let mut text = format!("{value:.17}");
    while text.ends_with('0') {
        text.pop();
    }
    if text.ends_with('.') {
        text.pop();
    }
    if text == "-0" {
        text = "0".to_owned();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_and_positions_are_redis_s() {
        // `GEOADD Sicily 13.361389 38.115556 Palermo 15.087269 37.502669 Catania` and
        // their scores, positions and hashes, from Redis 7.0.
        assert_eq!(score_of(13.361389, 38.115556), 3_479_099_956_230_698.0);
        assert_eq!(score_of(15.087269, 37.502669), 3_479_447_370_796_909.0);
        let (lon, lat) = position(3_479_099_956_230_698.0);
        assert_eq!(format_coordinate(lon), "13.36138933897018433");
        assert_eq!(format_coordinate(lat), "38.11555639549629859");
        assert_eq!(&geohash(3_479_099_956_230_698.0), b"sqc8b49rny0");
        assert_eq!(&geohash(3_479_447_370_796_909.0), b"sqdtr74hyu0");
        let d = distance(
            position(3_479_099_956_230_698.0),
            position(3_479_447_370_796_909.0),
        );
        assert_eq!(format_distance(d), "166274.1516");
        assert_eq!(format_distance(d / Unit::Kilometers.meters()), "166.2742");
    }

    #[test]
    fn spread_and_squash_are_inverse() {
        for x in [0u32, 1, 0xFFFF_FFFF, 0x0123_4567, 0x89AB_CDEF, 1 << 26] {
            assert_eq!(squash(spread(x)), x);
            assert_eq!(squash(interleave(x, !x)), x);
            assert_eq!(squash(interleave(x, !x) >> 1), !x);
        }
    }

    #[test]
    fn positions_stay_in_range_whatever_the_score() {
        for score in [0.0, -1.0, f64::MAX, f64::INFINITY, 4.5e15, 9.1e15, 1e300] {
            let (lon, lat) = position(score);
            assert!(valid(lon, lat), "{score}: {lon} {lat}");
        }
        assert!(valid(LON_MAX, LAT_MAX) && valid(LON_MIN, LAT_MIN));
        assert!(!valid(180.000_001, 0.0) && !valid(0.0, 85.06));
    }

    #[test]
    fn searches_find_every_member_within_the_shape() {
        // Away from the antimeridian and the poles, the cells looked in cover the
        // shape: a search finds exactly what a look at every member finds.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let score = |v: f64| Score::new(v).expect("not a NaN");
        for round in 0..200 {
            let (lon0, lat0) = (next() * 300.0 - 150.0, next() * 120.0 - 60.0);
            let mut points: Vec<(Vec<u8>, f64)> = (0..200)
                .map(|i| {
                    let lon = lon0 + next() * 20.0 - 10.0;
                    let lat = lat0 + next() * 10.0 - 5.0;
                    (format!("p{i}").into_bytes(), score_of(lon, lat))
                })
                .collect();
            points.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
            let entries: Vec<(&[u8], f64)> =
                points.iter().map(|(m, s)| (m.as_slice(), *s)).collect();
            let size = next() * 1000.0;
            let shape = if round % 2 == 0 {
                Shape::Radius(score(size))
            } else {
                Shape::Box {
                    width: score(size),
                    height: score(next() * 1000.0),
                }
            };
            let search = Search {
                center: Center::At {
                    lon: score(lon0),
                    lat: score(lat0),
                },
                shape,
                unit: Unit::Kilometers,
                order: Order::Nearest,
                count: 0,
                any: false,
            };
            let found: Vec<Vec<u8>> = search
                .run((lon0, lat0), &entries)
                .into_iter()
                .map(|f| f.member)
                .collect();
            let mut expected: Vec<(f64, Vec<u8>)> = entries
                .iter()
                .filter_map(|&(m, s)| {
                    let d = search.distance_within((lon0, lat0), position(s))?;
                    Some((d, m.to_vec()))
                })
                .collect();
            expected.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut found_sorted = found.clone();
            found_sorted.sort();
            let mut expected_members: Vec<Vec<u8>> =
                expected.iter().map(|(_, m)| m.clone()).collect();
            expected_members.sort();
            assert_eq!(found_sorted, expected_members, "round {round}: {shape:?}");
        }
    }

    #[test]
    fn coordinates_are_written_as_redis_writes_them() {
        assert_eq!(format_coordinate(0.0), "0");
        assert_eq!(format_coordinate(-0.0), "0");
        assert_eq!(format_coordinate(1.5), "1.5");
        assert_eq!(format_coordinate(-180.0), "-180");
        assert_eq!(format_distance(0.0), "0.0000");
    }
}
