//! Interval tree clocks (Almeida, Baquero and Fonte 2008).
//!
//! A [`Stamp`] pairs an *id tree* (which part of the unit interval this replica owns)
//! with an *event tree* (how many events each part of the interval has seen). Replicas
//! are created by [`Stamp::fork`] and retired by [`Stamp::join`], so no global node ids
//! are needed and the clock's size follows the number of live replicas.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::Error;

/// Cost added when `grow` has to expand a leaf: expansion is the last resort, because
/// it makes the event tree bigger.
const EXPAND_COST: u64 = 1 << 32;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Id {
    Zero,
    One,
    Node(Box<Id>, Box<Id>),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Ev {
    Leaf(u64),
    Node(u64, Box<Ev>, Box<Ev>),
}

/// An interval tree clock stamp: an id tree and an event tree, both kept normalised.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Stamp {
    id: Id,
    event: Ev,
}

/// The largest `depth_max` a decoder accepts: the tree operations recurse once per
/// level, and this keeps them well inside a default 2 MiB thread stack.
pub const ITC_DEPTH_MAX_LIMIT: u32 = 512;

/// Limits applied by [`Stamp::decode_with`] to untrusted input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItcDecodeConfig {
    /// Deepest nesting accepted in either tree (bounds the decoder's recursion).
    pub depth_max: u32,
    /// Longest encoding accepted, in bytes.
    pub len_max: usize,
}

impl Default for ItcDecodeConfig {
    fn default() -> Self {
        Self {
            depth_max: 128,
            len_max: 64 * 1024,
        }
    }
}

impl ItcDecodeConfig {
    /// Checks the limits.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if `depth_max` is 0 or above [`ITC_DEPTH_MAX_LIMIT`],
    /// or `len_max` is 0.
    pub fn validate(&self) -> Result<(), Error> {
        if self.depth_max == 0 || self.depth_max > ITC_DEPTH_MAX_LIMIT {
            return Err(Error::InvalidConfig {
                field: "depth_max",
                reason: "must be between 1 and ITC_DEPTH_MAX_LIMIT",
            });
        }
        if self.len_max == 0 {
            return Err(Error::InvalidConfig {
                field: "len_max",
                reason: "must be at least 1 byte",
            });
        }
        Ok(())
    }
}

impl Id {
    fn node(left: Id, right: Id) -> Id {
        match (&left, &right) {
            (Id::Zero, Id::Zero) => Id::Zero,
            (Id::One, Id::One) => Id::One,
            _ => Id::Node(Box::new(left), Box::new(right)),
        }
    }

    fn split(&self) -> (Id, Id) {
        match self {
            Id::Zero => (Id::Zero, Id::Zero),
            Id::One => (Id::node(Id::One, Id::Zero), Id::node(Id::Zero, Id::One)),
            Id::Node(l, r) => match (l.as_ref(), r.as_ref()) {
                (Id::Zero, i) => {
                    let (a, b) = i.split();
                    (Id::node(Id::Zero, a), Id::node(Id::Zero, b))
                }
                (i, Id::Zero) => {
                    let (a, b) = i.split();
                    (Id::node(a, Id::Zero), Id::node(b, Id::Zero))
                }
                (l, r) => (Id::node(l.clone(), Id::Zero), Id::node(Id::Zero, r.clone())),
            },
        }
    }

    fn sum(a: &Id, b: &Id) -> Result<Id, Error> {
        match (a, b) {
            (Id::Zero, x) | (x, Id::Zero) => Ok(x.clone()),
            (Id::Node(l1, r1), Id::Node(l2, r2)) => {
                Ok(Id::node(Id::sum(l1, l2)?, Id::sum(r1, r2)?))
            }
            _ => Err(Error::OverlappingIds),
        }
    }

    fn is_normal(&self) -> bool {
        match self {
            Id::Zero | Id::One => true,
            Id::Node(l, r) => {
                !matches!(
                    (l.as_ref(), r.as_ref()),
                    (Id::Zero, Id::Zero) | (Id::One, Id::One)
                ) && l.is_normal()
                    && r.is_normal()
            }
        }
    }
}

impl Ev {
    fn base(&self) -> u64 {
        match self {
            Ev::Leaf(n) | Ev::Node(n, _, _) => *n,
        }
    }

    fn max(&self) -> u64 {
        match self {
            Ev::Leaf(n) => *n,
            Ev::Node(n, l, r) => n + l.max().max(r.max()),
        }
    }

    fn lift(self, m: u64) -> Ev {
        match self {
            Ev::Leaf(n) => Ev::Leaf(n + m),
            Ev::Node(n, l, r) => Ev::Node(n + m, l, r),
        }
    }

    fn sink(self, m: u64) -> Ev {
        match self {
            Ev::Leaf(n) => Ev::Leaf(n - m),
            Ev::Node(n, l, r) => Ev::Node(n - m, l, r),
        }
    }

    /// Builds `(n, left, right)` in normal form from normalised children.
    fn node(n: u64, left: Ev, right: Ev) -> Ev {
        if let (Ev::Leaf(a), Ev::Leaf(b)) = (&left, &right)
            && a == b
        {
            return Ev::Leaf(n + a);
        }
        let m = left.base().min(right.base());
        Ev::Node(n + m, Box::new(left.sink(m)), Box::new(right.sink(m)))
    }

    fn is_normal(&self) -> bool {
        match self {
            Ev::Leaf(_) => true,
            Ev::Node(_, l, r) => {
                !matches!((l.as_ref(), r.as_ref()), (Ev::Leaf(a), Ev::Leaf(b)) if a == b)
                    && l.base().min(r.base()) == 0
                    && l.is_normal()
                    && r.is_normal()
            }
        }
    }

    fn join(a: Ev, b: Ev) -> Ev {
        match (a, b) {
            (Ev::Leaf(x), Ev::Leaf(y)) => Ev::Leaf(x.max(y)),
            (Ev::Leaf(x), b @ Ev::Node(..)) => Ev::join(Ev::expand(x), b),
            (a @ Ev::Node(..), Ev::Leaf(y)) => Ev::join(a, Ev::expand(y)),
            (Ev::Node(n1, l1, r1), Ev::Node(n2, l2, r2)) => {
                if n1 > n2 {
                    return Ev::join(Ev::Node(n2, l2, r2), Ev::Node(n1, l1, r1));
                }
                let d = n2 - n1;
                Ev::node(n1, Ev::join(*l1, l2.lift(d)), Ev::join(*r1, r2.lift(d)))
            }
        }
    }

    fn expand(n: u64) -> Ev {
        Ev::Node(n, Box::new(Ev::Leaf(0)), Box::new(Ev::Leaf(0)))
    }

    /// `a + offset_a <= b + offset_b` at every point of the interval (both normalised).
    fn leq(a: &Ev, offset_a: u64, b: &Ev, offset_b: u64) -> bool {
        match (a, b) {
            (Ev::Leaf(x), _) => x + offset_a <= b.base() + offset_b,
            (Ev::Node(n1, l1, r1), Ev::Leaf(n2)) => {
                n1 + offset_a <= n2 + offset_b
                    && Ev::leq(l1, offset_a + n1, b, offset_b)
                    && Ev::leq(r1, offset_a + n1, b, offset_b)
            }
            (Ev::Node(n1, l1, r1), Ev::Node(n2, l2, r2)) => {
                n1 + offset_a <= n2 + offset_b
                    && Ev::leq(l1, offset_a + n1, l2, offset_b + n2)
                    && Ev::leq(r1, offset_a + n1, r2, offset_b + n2)
            }
        }
    }

    /// Raises the event tree over the owned part of the interval as far as possible
    /// without inventing events: "inflation" that keeps the tree small.
    fn fill(id: &Id, e: &Ev) -> Ev {
        match (id, e) {
            (Id::Zero, _) => e.clone(),
            (Id::One, _) => Ev::Leaf(e.max()),
            (_, Ev::Leaf(n)) => Ev::Leaf(*n),
            (Id::Node(il, ir), Ev::Node(n, el, er)) => match (il.as_ref(), ir.as_ref()) {
                (Id::One, ir) => {
                    let er = Ev::fill(ir, er);
                    let left = el.max().max(er.base());
                    Ev::node(*n, Ev::Leaf(left), er)
                }
                (il, Id::One) => {
                    let el = Ev::fill(il, el);
                    let right = er.max().max(el.base());
                    Ev::node(*n, el, Ev::Leaf(right))
                }
                (il, ir) => Ev::node(*n, Ev::fill(il, el), Ev::fill(ir, er)),
            },
        }
    }

    /// Adds one event over the owned part of the interval, preferring the change that
    /// keeps the tree smallest. Returns the new tree (not yet normalised) and its cost.
    fn grow(id: &Id, e: &Ev) -> Result<(Ev, u64), Error> {
        match (id, e) {
            (Id::Zero, _) => Err(Error::AnonymousStamp),
            (Id::One, _) => Ok((
                Ev::Leaf(e.max().checked_add(1).ok_or(Error::CounterOverflow)?),
                0,
            )),
            (Id::Node(..), Ev::Leaf(n)) => {
                let (grown, cost) = Ev::grow(id, &Ev::expand(*n))?;
                Ok((grown, cost.saturating_add(EXPAND_COST)))
            }
            (Id::Node(il, ir), Ev::Node(n, el, er)) => {
                let left = if matches!(il.as_ref(), Id::Zero) {
                    None
                } else {
                    Some(Ev::grow(il, el)?)
                };
                let right = if matches!(ir.as_ref(), Id::Zero) {
                    None
                } else {
                    Some(Ev::grow(ir, er)?)
                };
                let take_left = match (&left, &right) {
                    (Some((_, cl)), Some((_, cr))) => cl < cr,
                    (Some(_), None) => true,
                    (None, Some(_)) => false,
                    (None, None) => return Err(Error::AnonymousStamp),
                };
                if take_left {
                    let (el, c) = left.expect("left branch chosen");
                    Ok((Ev::Node(*n, Box::new(el), er.clone()), c.saturating_add(1)))
                } else {
                    let (er, c) = right.expect("right branch chosen");
                    Ok((Ev::Node(*n, el.clone(), Box::new(er)), c.saturating_add(1)))
                }
            }
        }
    }

    fn normalize(self) -> Ev {
        match self {
            Ev::Leaf(_) => self,
            Ev::Node(n, l, r) => Ev::node(n, l.normalize(), r.normalize()),
        }
    }
}

impl Stamp {
    /// The initial stamp: owns the whole interval, has seen no events.
    #[must_use]
    pub fn seed() -> Self {
        Self {
            id: Id::One,
            event: Ev::Leaf(0),
        }
    }

    /// Splits the id in two halves; both stamps keep the same history.
    #[must_use]
    pub fn fork(&self) -> (Stamp, Stamp) {
        let (a, b) = self.id.split();
        (
            Stamp {
                id: a,
                event: self.event.clone(),
            },
            Stamp {
                id: b,
                event: self.event.clone(),
            },
        )
    }

    /// An anonymous copy with the same history and no id: it can be sent, compared and
    /// joined, but cannot record events.
    #[must_use]
    pub fn peek(&self) -> Stamp {
        Stamp {
            id: Id::Zero,
            event: self.event.clone(),
        }
    }

    /// Records one new event.
    ///
    /// # Errors
    ///
    /// [`Error::AnonymousStamp`] on a stamp without id, [`Error::CounterOverflow`] if a
    /// counter would exceed `u64::MAX`. The stamp is unchanged on error.
    pub fn event(&mut self) -> Result<(), Error> {
        if matches!(self.id, Id::Zero) {
            return Err(Error::AnonymousStamp);
        }
        // Every absolute counter after the event is at most the current maximum + 1.
        if self.event.max() == u64::MAX {
            return Err(Error::CounterOverflow);
        }
        let filled = Ev::fill(&self.id, &self.event);
        let next = if filled == self.event {
            Ev::grow(&self.id, &self.event)?.0.normalize()
        } else {
            filled
        };
        debug_assert!(next.is_normal());
        debug_assert!(Ev::leq(&self.event, 0, &next, 0) && next != self.event);
        self.event = next;
        Ok(())
    }

    /// Merges two stamps: the ids are added back together and the histories joined.
    ///
    /// # Errors
    ///
    /// [`Error::OverlappingIds`] if both stamps own a common part of the interval
    /// (they were not produced by forking, or one was joined twice).
    pub fn join(&self, other: &Stamp) -> Result<Stamp, Error> {
        let id = Id::sum(&self.id, &other.id)?;
        let event = Ev::join(self.event.clone(), other.event.clone());
        debug_assert!(id.is_normal() && event.is_normal());
        Ok(Stamp { id, event })
    }

    /// True when every event known to `self` is known to `other`.
    #[must_use]
    pub fn leq(&self, other: &Stamp) -> bool {
        Ev::leq(&self.event, 0, &other.event, 0)
    }

    /// Compares the histories of two stamps.
    #[must_use]
    pub fn compare(&self, other: &Stamp) -> crate::Ordering {
        match (self.leq(other), other.leq(self)) {
            (true, true) => crate::Ordering::Equal,
            (true, false) => crate::Ordering::Before,
            (false, true) => crate::Ordering::After,
            (false, false) => crate::Ordering::Concurrent,
        }
    }

    /// True when the stamp has no id and cannot record events.
    #[must_use]
    pub fn is_anonymous(&self) -> bool {
        matches!(self.id, Id::Zero)
    }

    /// Encodes the stamp in the compact bit-level format described on [`Stamp::decode`].
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut w = BitWriter::default();
        encode_id(&mut w, &self.id);
        encode_ev(&mut w, &self.event);
        w.finish()
    }

    /// Decodes a stamp with the default [`ItcDecodeConfig`].
    ///
    /// The format is a bit string, most significant bit first, zero-padded to a byte:
    /// the id tree in prefix order (`00` = 0, `01` = 1, `1` then left and right
    /// subtrees), then the event tree in prefix order (`0` then a number for a leaf,
    /// `1` then a number, left and right subtrees for a node). A number is `0` for zero,
    /// otherwise `1` followed by `n - 1` in groups of four bits, lowest group first, each
    /// group preceded by a bit that says whether another group follows.
    ///
    /// # Errors
    ///
    /// Any input that is truncated, too long, too deep, not normalised, has trailing
    /// data or counters that overflow is rejected with an [`Error`]; it never panics.
    pub fn decode(bytes: &[u8]) -> Result<Stamp, Error> {
        Self::decode_with(bytes, &ItcDecodeConfig::default())
    }

    /// Decodes a stamp with explicit limits.
    ///
    /// # Errors
    ///
    /// As [`Stamp::decode`], plus [`Error::InvalidConfig`] for a bad configuration.
    pub fn decode_with(bytes: &[u8], config: &ItcDecodeConfig) -> Result<Stamp, Error> {
        config.validate()?;
        if bytes.len() > config.len_max {
            return Err(Error::TooLong {
                len: bytes.len(),
                len_max: config.len_max,
            });
        }
        let mut r = BitReader::new(bytes);
        let id = decode_id(&mut r, 0, config.depth_max)?;
        let event = decode_ev(&mut r, 0, config.depth_max, 0)?;
        r.finish()?;
        if !id.is_normal() || !event.is_normal() {
            return Err(Error::NotNormalized);
        }
        Ok(Stamp { id, event })
    }
}

impl fmt::Debug for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {})", IdDisplay(&self.id), EvDisplay(&self.event))
    }
}

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

struct IdDisplay<'a>(&'a Id);
struct EvDisplay<'a>(&'a Ev);

impl fmt::Display for IdDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Id::Zero => f.write_str("0"),
            Id::One => f.write_str("1"),
            Id::Node(l, r) => write!(f, "({}, {})", IdDisplay(l), IdDisplay(r)),
        }
    }
}

impl fmt::Display for EvDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Ev::Leaf(n) => write!(f, "{n}"),
            Ev::Node(n, l, r) => write!(f, "({n}, {}, {})", EvDisplay(l), EvDisplay(r)),
        }
    }
}

#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    used: u32,
}

impl BitWriter {
    fn bit(&mut self, b: bool) {
        if self.used.is_multiple_of(8) {
            self.bytes.push(0);
        }
        if b {
            let last = self.bytes.last_mut().expect("a byte was pushed");
            *last |= 0x80 >> (self.used % 8);
        }
        self.used += 1;
    }

    fn bits(&mut self, value: u64, count: u32) {
        for i in (0..count).rev() {
            self.bit((value >> i) & 1 == 1);
        }
    }

    fn number(&mut self, n: u64) {
        if n == 0 {
            self.bit(false);
            return;
        }
        self.bit(true);
        let mut rest = n - 1;
        loop {
            let group = rest & 0xF;
            rest >>= 4;
            self.bit(rest != 0);
            self.bits(group, 4);
            if rest == 0 {
                break;
            }
        }
    }

    fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

struct BitReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    fn bit(&mut self) -> Result<bool, Error> {
        let byte = *self.bytes.get(self.pos / 8).ok_or(Error::Truncated)?;
        let b = byte & (0x80 >> (self.pos % 8)) != 0;
        self.pos += 1;
        Ok(b)
    }

    fn bits(&mut self, count: u32) -> Result<u64, Error> {
        let mut v = 0;
        for _ in 0..count {
            v = (v << 1) | u64::from(self.bit()?);
        }
        Ok(v)
    }

    fn number(&mut self) -> Result<u64, Error> {
        if !self.bit()? {
            return Ok(0);
        }
        let mut value: u64 = 0;
        let mut shift = 0u32;
        loop {
            let more = self.bit()?;
            let group = self.bits(4)?;
            if shift >= 64 {
                return Err(Error::BadVarint);
            }
            value |= group << shift;
            shift += 4;
            if !more {
                if group == 0 && shift > 4 {
                    return Err(Error::BadVarint);
                }
                break;
            }
        }
        value.checked_add(1).ok_or(Error::BadVarint)
    }

    fn finish(self) -> Result<(), Error> {
        let used_bytes = self.pos.div_ceil(8);
        if used_bytes < self.bytes.len() {
            return Err(Error::TrailingBytes {
                bytes: self.bytes.len() - used_bytes,
            });
        }
        if !self.pos.is_multiple_of(8) {
            let last = self.bytes[used_bytes - 1];
            let padding_mask = 0xFFu8 >> (self.pos % 8);
            if last & padding_mask != 0 {
                return Err(Error::TrailingBytes { bytes: 0 });
            }
        }
        Ok(())
    }
}

fn encode_id(w: &mut BitWriter, id: &Id) {
    match id {
        Id::Zero => w.bits(0b00, 2),
        Id::One => w.bits(0b01, 2),
        Id::Node(l, r) => {
            w.bit(true);
            encode_id(w, l);
            encode_id(w, r);
        }
    }
}

fn encode_ev(w: &mut BitWriter, e: &Ev) {
    match e {
        Ev::Leaf(n) => {
            w.bit(false);
            w.number(*n);
        }
        Ev::Node(n, l, r) => {
            w.bit(true);
            w.number(*n);
            encode_ev(w, l);
            encode_ev(w, r);
        }
    }
}

fn decode_id(r: &mut BitReader<'_>, depth: u32, depth_max: u32) -> Result<Id, Error> {
    if r.bit()? {
        if depth >= depth_max {
            return Err(Error::DepthExceeded { depth_max });
        }
        let l = decode_id(r, depth + 1, depth_max)?;
        let rt = decode_id(r, depth + 1, depth_max)?;
        Ok(Id::Node(Box::new(l), Box::new(rt)))
    } else if r.bit()? {
        Ok(Id::One)
    } else {
        Ok(Id::Zero)
    }
}

/// `above` is the sum of the bases on the path from the root, which must fit in `u64`
/// so that every later operation on the tree stays in range.
fn decode_ev(r: &mut BitReader<'_>, depth: u32, depth_max: u32, above: u64) -> Result<Ev, Error> {
    let is_node = r.bit()?;
    let n = r.number()?;
    let total = above.checked_add(n).ok_or(Error::CounterOverflow)?;
    if !is_node {
        return Ok(Ev::Leaf(n));
    }
    if depth >= depth_max {
        return Err(Error::DepthExceeded { depth_max });
    }
    let l = decode_ev(r, depth + 1, depth_max, total)?;
    let rt = decode_ev(r, depth + 1, depth_max, total)?;
    Ok(Ev::Node(n, Box::new(l), Box::new(rt)))
}

impl Serialize for Stamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.encode())
    }
}

impl<'de> Deserialize<'de> for Stamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Stamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an encoded interval tree clock stamp")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Stamp, E> {
                Stamp::decode(v).map_err(E::custom)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Stamp, A::Error> {
                let limit = ItcDecodeConfig::default().len_max;
                let mut bytes = Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    if bytes.len() == limit {
                        return Err(serde::de::Error::custom(Error::TooLong {
                            len: limit + 1,
                            len_max: limit,
                        }));
                    }
                    bytes.push(b);
                }
                Stamp::decode(&bytes).map_err(serde::de::Error::custom)
            }
        }
        deserializer.deserialize_bytes(V)
    }
}
