//! The pure logic of the bitmap string commands SETBIT, GETBIT, BITCOUNT, BITPOS and BITOP,
//! giving Redis 7.0's answers.
//!
//! Bits are numbered from the most significant bit of the first byte: bit 0 is `0x80` of byte 0,
//! bit 7 is `0x01` of byte 0, bit 8 is `0x80` of byte 1, and so on.

use serde::{Deserialize, Serialize};

/// Whether a range counts bytes (the default) or bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RangeUnit {
    /// `start` and `end` are byte indexes.
    Byte,
    /// `start` and `end` are bit indexes.
    Bit,
}

/// The optional range of BITCOUNT and BITPOS: `start`, `end` (inclusive; negative counts from the end), in `unit`.
/// `end: None` only for BITPOS given a start alone (BITCOUNT needs both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BitRange {
    /// The first index in the range; negative counts back from the end of the value.
    pub start: i64,
    /// The last index in the range (inclusive); negative counts back from the end of the value.
    /// `None` when the command named no end: the range then runs to the end of the value.
    pub end: Option<i64>,
    /// Whether `start` and `end` count bytes or bits.
    pub unit: RangeUnit,
}

/// A read of a value's bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BitQuery {
    /// GETBIT key offset
    Get {
        /// The bit to read.
        offset: u64,
    },
    /// BITCOUNT key [start end [BYTE|BIT]]
    Count {
        /// The part of the value to count in; `None` counts the whole value.
        range: Option<BitRange>,
    },
    /// BITPOS key bit [start [end [BYTE|BIT]]]
    Pos {
        /// The bit value searched for.
        bit: bool,
        /// The part of the value to search; `None` searches the whole value.
        range: Option<BitRange>,
    },
}

/// BITOP's operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BitOp {
    /// Bitwise AND of all sources.
    And,
    /// Bitwise OR of all sources.
    Or,
    /// Bitwise XOR of all sources.
    Xor,
    /// Bitwise complement of the single source.
    Not,
}

/// The answer to `query` on a key holding `value` (`None`: the key holds no value). Redis's integer reply.
///
/// A `Count` range with `end: None` (which BITCOUNT's syntax cannot express) runs to the end of
/// the value.
#[must_use]
pub fn answer(value: Option<&[u8]>, query: &BitQuery) -> i64 {
    match *query {
        BitQuery::Get { offset } => i64::from(get_bit(value.unwrap_or_default(), offset)),
        BitQuery::Count { range } => count(value.unwrap_or_default(), range),
        BitQuery::Pos { bit, range } => match value {
            // A missing key is an endless run of zero bits.
            None => {
                if bit {
                    -1
                } else {
                    0
                }
            }
            Some(value) => position(value, bit, range),
        },
    }
}

/// SETBIT: sets bit `offset` (bit 0 is the most significant bit of byte 0) to `on`, growing `value`
/// with zero bytes as needed; returns the bit's previous value. The caller bounds `offset`.
///
/// # Panics
///
/// If `offset / 8 + 1` bytes do not fit in `usize`, which cannot happen for offsets below 2^32
/// (the caller's bound) on any target whose `usize` has at least 32 bits. Growing the value can
/// also fail to allocate, as any allocation can.
pub fn set_bit(value: &mut Vec<u8>, offset: u64, on: bool) -> bool {
    // `offset / 8 + 1` is at most 2^61 + 1, so the addition cannot overflow.
    let Ok(needed) = usize::try_from(offset / 8 + 1) else {
        panic!("SETBIT offset {offset} needs more bytes than this target can address");
    };
    if value.len() < needed {
        value.resize(needed, 0);
    }
    let mask = bit_mask(offset);
    // `needed >= 1` and the value now holds at least `needed` bytes.
    match value.get_mut(needed - 1) {
        Some(byte) => replace_bit(byte, mask, on),
        None => false,
    }
}

/// BITOP op: the result from the source values in order (`None` for a key without a value, which
/// counts as an empty string). NOT takes exactly one source (the caller checks). The result is as
/// long as the longest source; shorter ones count as zero-padded.
///
/// Should NOT be given several sources anyway, it complements only the first; given none, any
/// operation yields an empty result.
#[must_use]
pub fn bit_op(op: BitOp, sources: &[Option<&[u8]>]) -> Vec<u8> {
    let sources: Vec<&[u8]> = sources.iter().map(|s| s.unwrap_or_default()).collect();
    match op {
        BitOp::Not => sources
            .first()
            .map_or_else(Vec::new, |source| source.iter().map(|byte| !byte).collect()),
        BitOp::And => and_all(&sources),
        BitOp::Or => fold_padded(&sources, |acc, byte| acc | byte),
        BitOp::Xor => fold_padded(&sources, |acc, byte| acc ^ byte),
    }
}

/// The mask selecting bit `offset` within its byte.
fn bit_mask(offset: u64) -> u8 {
    0x80 >> (offset % 8)
}

/// Sets or clears the bits of `mask` in `byte`; whether they were set before.
fn replace_bit(byte: &mut u8, mask: u8, on: bool) -> bool {
    let was_on = *byte & mask != 0;
    if on {
        *byte |= mask;
    } else {
        *byte &= !mask;
    }
    was_on
}

/// GETBIT on a value: whether bit `offset` is set (bits past the end are clear).
fn get_bit(value: &[u8], offset: u64) -> bool {
    let Ok(index) = usize::try_from(offset / 8) else {
        // Further than any value can reach.
        return false;
    };
    value
        .get(index)
        .is_some_and(|byte| byte & bit_mask(offset) != 0)
}

/// BITCOUNT on an existing or empty value.
fn count(value: &[u8], range: Option<BitRange>) -> i64 {
    let span = match range {
        None => Span::whole(value),
        Some(range) => {
            // BITCOUNT (unlike BITPOS) treats two negative indexes in the wrong order as empty
            // before clamping them.
            if let Some(end) = range.end
                && range.start < 0
                && end < 0
                && range.start > end
            {
                return 0;
            }
            Span::resolve(value, range)
        }
    };
    span.map_or(0, |span| span.count_ones(value))
}

/// BITPOS on an existing (possibly empty) value.
fn position(value: &[u8], bit: bool, range: Option<BitRange>) -> i64 {
    let end_given = range.is_some_and(|range| range.end.is_some());
    let span = match range {
        None => Span::whole(value),
        Some(range) => Span::resolve(value, range),
    };
    // An empty range holds neither a 0 nor a 1.
    let Some(span) = span else { return -1 };
    if let Some(found) = span.find(value, bit) {
        return found;
    }
    if bit || end_given {
        -1
    } else {
        // With no end given the range reaches the end of the value, past which the value counts
        // as zero-padded.
        span.position_after()
    }
}

/// A non-empty, inclusive stretch of bits lying inside a value, located by byte index and bit
/// within the byte (0 = most significant).
#[derive(Debug, Clone, Copy)]
struct Span {
    /// Index of the byte holding the first bit.
    first_byte: usize,
    /// The first bit within `first_byte`, 0..=7.
    first_bit: u32,
    /// Index of the byte holding the last bit; at least `first_byte`.
    last_byte: usize,
    /// The last bit within `last_byte`, 0..=7.
    last_bit: u32,
}

impl Span {
    /// Every bit of `value`; `None` if it is empty.
    fn whole(value: &[u8]) -> Option<Self> {
        let last_byte = value.len().checked_sub(1)?;
        Some(Self {
            first_byte: 0,
            first_bit: 0,
            last_byte,
            last_bit: 7,
        })
    }

    /// The bits of `value` that `range` selects after Redis's index conversion; `None` if it
    /// selects none.
    fn resolve(value: &[u8], range: BitRange) -> Option<Self> {
        let len = unit_len(value.len(), range.unit);
        let last = len - 1;
        let start = from_end(range.start, len);
        let end = range.end.map_or(last, |end| from_end(end, len)).min(last);
        if start > end {
            return None;
        }
        // Both lie in `0..len`, so the conversions below cannot fail.
        match range.unit {
            RangeUnit::Byte => Some(Self {
                first_byte: usize::try_from(start).ok()?,
                first_bit: 0,
                last_byte: usize::try_from(end).ok()?,
                last_bit: 7,
            }),
            RangeUnit::Bit => Some(Self {
                first_byte: usize::try_from(start / 8).ok()?,
                first_bit: u32::try_from(start % 8).ok()?,
                last_byte: usize::try_from(end / 8).ok()?,
                last_bit: u32::try_from(end % 8).ok()?,
            }),
        }
    }

    /// The mask of the span's bits within byte `index` of the value.
    fn mask_at(&self, index: usize) -> u8 {
        let low = if index == self.first_byte {
            self.first_bit
        } else {
            0
        };
        let high = if index == self.last_byte {
            self.last_bit
        } else {
            7
        };
        (0xFF >> low) & (0xFF << (7 - high))
    }

    /// The bytes of `value` the span touches, each with its index and the mask of the span's
    /// bits within it.
    fn touched<'a>(&self, value: &'a [u8]) -> impl Iterator<Item = (usize, u8, u8)> + 'a {
        let span = *self;
        value
            .iter()
            .enumerate()
            .skip(span.first_byte)
            .take(span.last_byte - span.first_byte + 1)
            .map(move |(index, &byte)| (index, byte, span.mask_at(index)))
    }

    /// How many of the span's bits are set in `value`.
    fn count_ones(&self, value: &[u8]) -> i64 {
        self.touched(value).fold(0_i64, |total, (_, byte, mask)| {
            total.saturating_add(i64::from((byte & mask).count_ones()))
        })
    }

    /// The absolute position of the first bit in the span equal to `bit`, if any.
    fn find(&self, value: &[u8], bit: bool) -> Option<i64> {
        self.touched(value).find_map(|(index, byte, mask)| {
            let matching = if bit { byte } else { !byte } & mask;
            (matching != 0).then(|| absolute_position(index, matching.leading_zeros()))
        })
    }

    /// The absolute position of the bit just after the span.
    fn position_after(&self) -> i64 {
        absolute_position(self.last_byte, self.last_bit).saturating_add(1)
    }
}

/// The length of a value of `bytes` bytes in `unit`.
fn unit_len(bytes: usize, unit: RangeUnit) -> i128 {
    // `usize` is at most 64 bits wide on every Rust target, so the conversion cannot fail.
    let bytes = i128::try_from(bytes).unwrap_or(i128::MAX);
    match unit {
        RangeUnit::Byte => bytes,
        RangeUnit::Bit => bytes.saturating_mul(8),
    }
}

/// An index as Redis reads it against a length of `len` units: negative ones count back from
/// the end, and anything still before the start means the start.
fn from_end(index: i64, len: i128) -> i128 {
    let index = i128::from(index);
    let index = if index < 0 { len + index } else { index };
    index.max(0)
}

/// The absolute bit position of bit `bit` (0 = most significant) of byte `index`.
fn absolute_position(index: usize, bit: u32) -> i64 {
    // Values are far shorter than 2^60 bytes, so this never saturates in practice.
    i64::try_from(index)
        .unwrap_or(i64::MAX)
        .saturating_mul(8)
        .saturating_add(i64::from(bit))
}

/// The byte-wise AND of `sources`, each zero-padded to the longest.
fn and_all(sources: &[&[u8]]) -> Vec<u8> {
    let Some((first, rest)) = sources.split_first() else {
        return Vec::new();
    };
    let mut result = first.to_vec();
    result.resize(longest(sources), 0);
    for source in rest {
        for (acc, byte) in result.iter_mut().zip(source.iter()) {
            *acc &= byte;
        }
        for acc in result.iter_mut().skip(source.len()) {
            *acc = 0;
        }
    }
    result
}

/// Combines `sources` byte by byte with `combine`, starting from zeros as long as the longest
/// source; shorter sources leave the bytes past their end unchanged.
fn fold_padded(sources: &[&[u8]], combine: impl Fn(u8, u8) -> u8) -> Vec<u8> {
    let mut result = vec![0; longest(sources)];
    for source in sources {
        for (acc, &byte) in result.iter_mut().zip(source.iter()) {
            *acc = combine(*acc, byte);
        }
    }
    result
}

/// The length of the longest of `sources` (0 if there are none).
fn longest(sources: &[&[u8]]) -> usize {
    sources.iter().map(|source| source.len()).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BYTE: RangeUnit = RangeUnit::Byte;
    const BIT: RangeUnit = RangeUnit::Bit;

    /// A range with both ends.
    fn range(start: i64, end: i64, unit: RangeUnit) -> BitRange {
        BitRange {
            start,
            end: Some(end),
            unit,
        }
    }

    /// A BITPOS range given only a start.
    fn starting_at(start: i64) -> BitRange {
        BitRange {
            start,
            end: None,
            unit: BYTE,
        }
    }

    fn getbit(value: Option<&[u8]>, offset: u64) -> i64 {
        answer(value, &BitQuery::Get { offset })
    }

    fn bitcount(value: Option<&[u8]>, range: impl Into<Option<BitRange>>) -> i64 {
        answer(
            value,
            &BitQuery::Count {
                range: range.into(),
            },
        )
    }

    fn bitpos(value: Option<&[u8]>, bit: bool, range: impl Into<Option<BitRange>>) -> i64 {
        answer(
            value,
            &BitQuery::Pos {
                bit,
                range: range.into(),
            },
        )
    }

    // ---- Answers taken from redis-server 7.0 for the inputs shown. ----

    #[test]
    fn getbit_reads_bits_msb_first_and_zero_past_the_end() {
        let foobar = Some(&b"foobar"[..]);
        assert_eq!(getbit(foobar, 0), 0);
        assert_eq!(getbit(foobar, 1), 1);
        assert_eq!(getbit(foobar, 47), 0);
        assert_eq!(getbit(foobar, 48), 0);
        assert_eq!(getbit(foobar, 4_294_967_295), 0);
        assert_eq!(getbit(Some(b"\x80"), 0), 1);
        assert_eq!(getbit(Some(b"\x80"), 1), 0);
        assert_eq!(getbit(None, 0), 0);
        assert_eq!(getbit(Some(b"\xff"), u64::MAX), 0);
    }

    #[test]
    fn bitcount_without_range_counts_every_bit() {
        assert_eq!(bitcount(Some(b"foobar"), None), 26);
        assert_eq!(bitcount(None, None), 0);
        assert_eq!(bitcount(Some(b""), None), 0);
    }

    #[test]
    fn bitcount_byte_ranges() {
        let foobar = Some(&b"foobar"[..]);
        assert_eq!(bitcount(foobar, range(0, 0, BYTE)), 4);
        assert_eq!(bitcount(foobar, range(1, 1, BYTE)), 6);
        assert_eq!(bitcount(foobar, range(-2, -1, BYTE)), 7);
        assert_eq!(bitcount(foobar, range(0, -1, BYTE)), 26);
        assert_eq!(bitcount(foobar, range(0, 100, BYTE)), 26);
        assert_eq!(bitcount(foobar, range(3, 1, BYTE)), 0);
        assert_eq!(bitcount(foobar, range(-7, -7, BYTE)), 4);
        assert_eq!(bitcount(foobar, range(-7, -6, BYTE)), 4);
        assert_eq!(bitcount(None, range(0, -1, BYTE)), 0);
        assert_eq!(bitcount(Some(b""), range(0, -1, BYTE)), 0);
        assert_eq!(bitcount(Some(b""), range(0, -1, BIT)), 0);
    }

    #[test]
    fn bitcount_negative_indexes_clamp_unless_both_negative_and_reversed() {
        let foobar = Some(&b"foobar"[..]);
        assert_eq!(bitcount(foobar, range(-1, -2, BYTE)), 0);
        assert_eq!(bitcount(foobar, range(-100, -100, BYTE)), 4);
        assert_eq!(bitcount(foobar, range(0, -100, BYTE)), 4);
        // Both clamp to byte 0, but the reversed negative pair is empty first.
        assert_eq!(bitcount(Some(b"\xff\xff"), range(-3, -10, BYTE)), 0);
    }

    #[test]
    fn bitcount_extreme_indexes() {
        let foobar = Some(&b"foobar"[..]);
        assert_eq!(bitcount(foobar, range(i64::MIN, i64::MAX, BYTE)), 26);
        assert_eq!(bitcount(foobar, range(i64::MAX, i64::MIN, BYTE)), 0);
        assert_eq!(bitcount(foobar, range(i64::MIN, i64::MAX, BIT)), 26);
    }

    #[test]
    fn bitcount_bit_ranges_count_only_the_named_bits() {
        let foobar = Some(&b"foobar"[..]);
        assert_eq!(bitcount(foobar, range(1, 1, BIT)), 1);
        assert_eq!(bitcount(foobar, range(5, 30, BIT)), 17);
        assert_eq!(bitcount(foobar, range(-1, -1, BIT)), 0);
        assert_eq!(bitcount(foobar, range(-3, -1, BIT)), 1);
        assert_eq!(bitcount(foobar, range(-100, -1, BIT)), 26);
        assert_eq!(bitcount(foobar, range(9, 9, BIT)), 1);
        assert_eq!(bitcount(foobar, range(40, 47, BIT)), 4);
        assert_eq!(bitcount(foobar, range(47, 40, BIT)), 0);
    }

    #[test]
    fn bitcount_without_end_runs_to_the_end() {
        let only_start = Some(BitRange {
            start: 2,
            end: None,
            unit: BIT,
        });
        assert_eq!(bitcount(Some(b"\xff\x01"), only_start), 7);
        assert_eq!(bitcount(Some(b"\xff\x01"), starting_at(1)), 1);
    }

    #[test]
    fn bitpos_missing_key_is_endless_zeros() {
        assert_eq!(bitpos(None, false, None), 0);
        assert_eq!(bitpos(None, true, None), -1);
        assert_eq!(bitpos(None, false, range(5, 7, BIT)), 0);
        assert_eq!(bitpos(None, true, range(0, -1, BYTE)), -1);
    }

    #[test]
    fn bitpos_empty_value_or_range_is_minus_one() {
        assert_eq!(bitpos(Some(b""), false, None), -1);
        assert_eq!(bitpos(Some(b""), true, None), -1);
        assert_eq!(bitpos(Some(b""), false, starting_at(0)), -1);
        assert_eq!(bitpos(Some(b""), false, range(0, -1, BIT)), -1);
        assert_eq!(bitpos(Some(b"\xff"), false, starting_at(5)), -1);
        assert_eq!(bitpos(Some(b"\x0f"), true, starting_at(i64::MAX)), -1);
        assert_eq!(bitpos(Some(b"\xff\xff"), false, range(-3, -10, BYTE)), -1);
    }

    #[test]
    fn bitpos_reversed_negative_indexes_still_clamp() {
        // Unlike BITCOUNT: both clamp to byte 0.
        assert_eq!(bitpos(Some(b"\xff\xff"), true, range(-3, -10, BYTE)), 0);
    }

    #[test]
    fn bitpos_byte_ranges() {
        let v = Some(&b"\x00\xff\xf0"[..]);
        assert_eq!(bitpos(v, true, starting_at(0)), 8);
        assert_eq!(bitpos(v, true, starting_at(2)), 16);
        assert_eq!(bitpos(v, true, range(2, -1, BYTE)), 16);
        assert_eq!(bitpos(v, false, None), 0);
        assert_eq!(bitpos(v, false, range(1, 1, BYTE)), -1);
        let w = Some(&b"\xff\xf0\x00"[..]);
        assert_eq!(bitpos(w, false, None), 12);
        assert_eq!(bitpos(w, false, range(0, -1, BYTE)), 12);
        assert_eq!(bitpos(w, true, starting_at(2)), -1);
        assert_eq!(bitpos(w, true, range(2, -1, BYTE)), -1);
        assert_eq!(bitpos(Some(b"\x00"), true, None), -1);
        assert_eq!(bitpos(Some(b"\x00"), false, None), 0);
        assert_eq!(bitpos(Some(b"\x0f"), true, starting_at(i64::MIN)), 4);
    }

    #[test]
    fn bitpos_zero_past_the_range_only_without_end() {
        let ones = Some(&b"\xff\xff\xff"[..]);
        assert_eq!(bitpos(ones, false, None), 24);
        assert_eq!(bitpos(ones, false, starting_at(0)), 24);
        assert_eq!(bitpos(ones, false, starting_at(1)), 24);
        assert_eq!(bitpos(ones, false, starting_at(-1)), 24);
        assert_eq!(bitpos(ones, false, range(0, -1, BYTE)), -1);
        assert_eq!(bitpos(ones, false, range(-1, -1, BYTE)), -1);
        assert_eq!(bitpos(ones, false, range(3, 20, BIT)), -1);
        assert_eq!(bitpos(Some(b"\xff\xff"), false, starting_at(1)), 16);
        assert_eq!(bitpos(Some(b"\xff"), false, starting_at(i64::MIN)), 8);
        assert_eq!(bitpos(Some(b"\xff\x00\xff"), false, range(0, 0, BYTE)), -1);
        assert_eq!(bitpos(Some(b"\xff\x00\xff"), false, starting_at(2)), 24);
    }

    #[test]
    fn bitpos_bit_ranges_respect_edge_bytes() {
        let v = Some(&b"\xff\x0f"[..]);
        assert_eq!(bitpos(v, false, range(3, 5, BIT)), -1);
        assert_eq!(bitpos(v, false, range(3, 7, BIT)), -1);
        assert_eq!(bitpos(v, false, range(3, 8, BIT)), 8);
        assert_eq!(bitpos(v, true, range(9, 11, BIT)), -1);
        assert_eq!(bitpos(v, true, range(9, 12, BIT)), 12);
        assert_eq!(bitpos(v, false, range(12, 15, BIT)), -1);
        assert_eq!(bitpos(v, false, range(12, -1, BIT)), -1);
        assert_eq!(bitpos(v, true, range(-4, -1, BIT)), 12);
        assert_eq!(bitpos(v, false, range(-5, -1, BIT)), 11);
        assert_eq!(bitpos(v, true, range(8, 8, BIT)), -1);
        assert_eq!(bitpos(Some(b"\xf0"), false, range(2, 5, BIT)), 4);
        assert_eq!(bitpos(Some(b"\x0f"), true, range(1, 3, BIT)), -1);
        assert_eq!(bitpos(Some(b"\x0f"), true, range(1, 4, BIT)), 4);
        let w = Some(&b"\x00\xff\xf0"[..]);
        assert_eq!(bitpos(w, true, range(7, 15, BIT)), 8);
        assert_eq!(bitpos(w, true, range(7, -3, BIT)), 8);
        assert_eq!(bitpos(Some(b"\xff\xf0\x00"), true, range(0, -1, BIT)), 0);
        assert_eq!(
            bitpos(Some(b"\x0f"), false, range(i64::MIN, i64::MAX, BIT)),
            0
        );
        assert_eq!(
            bitpos(Some(b"\xff"), false, range(i64::MIN, i64::MAX, BIT)),
            -1
        );
    }

    #[test]
    fn setbit_grows_and_returns_the_old_bit() {
        let mut v = Vec::new();
        assert!(!set_bit(&mut v, 7, true));
        assert_eq!(v, b"\x01");
        assert!(!set_bit(&mut v, 0, true));
        assert_eq!(v, b"\x81");
        assert!(set_bit(&mut v, 7, false));
        assert_eq!(v, b"\x80");
        assert!(!set_bit(&mut v, 7, false));
        assert_eq!(v, b"\x80");

        let mut v = Vec::new();
        assert!(!set_bit(&mut v, 100, false));
        assert_eq!(v, [0; 13]);

        let mut v = b"\xaa".to_vec();
        assert!(!set_bit(&mut v, 20, true));
        assert_eq!(v, b"\xaa\x00\x08");
        assert!(set_bit(&mut v, 2, true));
        assert_eq!(v, b"\xaa\x00\x08");
    }

    #[test]
    fn bitop_pads_shorter_sources_with_zeros() {
        assert_eq!(
            bit_op(BitOp::And, &[Some(b"\xff\xff"), Some(b"\x0f")]),
            b"\x0f\x00"
        );
        assert_eq!(bit_op(BitOp::And, &[Some(b"\xff\xff"), None]), b"\x00\x00");
        assert_eq!(
            bit_op(
                BitOp::And,
                &[Some(b"\x0f\xff"), Some(b"\xff\xf0"), Some(b"\x3c")]
            ),
            b"\x0c\x00"
        );
        assert_eq!(bit_op(BitOp::And, &[Some(b"\xf3")]), b"\xf3");
        assert_eq!(
            bit_op(BitOp::Or, &[Some(b"\x01"), Some(b"\x10\x20")]),
            b"\x11\x20"
        );
        assert_eq!(
            bit_op(
                BitOp::Xor,
                &[Some(b"\xff"), Some(b"\x0f\x0f"), Some(b"\x01")]
            ),
            b"\xf1\x0f"
        );
        assert_eq!(
            bit_op(BitOp::Xor, &[Some(b"\xf0\x0f"), Some(b"\xf0\x0f")]),
            b"\x00\x00"
        );
        assert_eq!(bit_op(BitOp::Not, &[Some(b"\x0f\x00")]), b"\xf0\xff");
    }

    #[test]
    fn bitop_of_nothing_is_empty() {
        assert!(bit_op(BitOp::Or, &[None, None]).is_empty());
        assert!(bit_op(BitOp::And, &[Some(b""), None]).is_empty());
        assert!(bit_op(BitOp::Not, &[None]).is_empty());
        assert!(bit_op(BitOp::Xor, &[]).is_empty());
        assert!(bit_op(BitOp::Not, &[]).is_empty());
    }

    // ---- Naive bit-by-bit models of the rules. ----

    /// Bit `i` of `value`, or `false` past its end.
    fn naive_bit(value: &[u8], i: usize) -> bool {
        value
            .get(i / 8)
            .is_some_and(|byte| byte & (0x80 >> (i % 8)) != 0)
    }

    /// The clamped inclusive range in `len` units, or `None` when empty; `bitcount` applies
    /// BITCOUNT's reversed-negative rule.
    fn naive_bounds(range: BitRange, len: i128, bitcount: bool) -> Option<(i128, i128)> {
        let start = i128::from(range.start);
        if let Some(end) = range.end
            && bitcount
            && range.start < 0
            && end < 0
            && range.start > end
        {
            return None;
        }
        let mut end = range.end.map_or(len - 1, i128::from);
        let start = if start < 0 { len + start } else { start }.max(0);
        if end < 0 {
            end += len;
        }
        let end = end.max(0).min(len - 1);
        (start <= end).then_some((start, end))
    }

    /// The clamped range as an inclusive range of bit positions.
    fn naive_bit_bounds(value: &[u8], range: BitRange, bitcount: bool) -> Option<(usize, usize)> {
        let bytes = i128::try_from(value.len()).unwrap();
        let (start, end) = match range.unit {
            RangeUnit::Byte => {
                let (s, e) = naive_bounds(range, bytes, bitcount)?;
                (s * 8, e * 8 + 7)
            }
            RangeUnit::Bit => naive_bounds(range, bytes * 8, bitcount)?,
        };
        Some((
            usize::try_from(start).unwrap(),
            usize::try_from(end).unwrap(),
        ))
    }

    fn naive_count(value: &[u8], range: Option<BitRange>) -> i64 {
        let (start, end) = match range {
            None if value.is_empty() => return 0,
            None => (0, value.len() * 8 - 1),
            Some(range) => match naive_bit_bounds(value, range, true) {
                Some(bounds) => bounds,
                None => return 0,
            },
        };
        let ones = (start..=end).filter(|&i| naive_bit(value, i)).count();
        i64::try_from(ones).unwrap()
    }

    fn naive_pos(value: Option<&[u8]>, bit: bool, range: Option<BitRange>) -> i64 {
        let Some(value) = value else {
            return if bit { -1 } else { 0 };
        };
        let bounds = match range {
            None if value.is_empty() => None,
            None => Some((0, value.len() * 8 - 1)),
            Some(range) => naive_bit_bounds(value, range, false),
        };
        let Some((start, end)) = bounds else {
            return -1;
        };
        if let Some(found) = (start..=end).find(|&i| naive_bit(value, i) == bit) {
            return i64::try_from(found).unwrap();
        }
        let end_given = range.is_some_and(|range| range.end.is_some());
        if bit || end_given {
            -1
        } else {
            i64::try_from(end + 1).unwrap()
        }
    }

    fn naive_bit_op(op: BitOp, sources: &[Option<Vec<u8>>]) -> Vec<u8> {
        let sources: Vec<&[u8]> = sources
            .iter()
            .map(|s| s.as_deref().unwrap_or_default())
            .collect();
        let len = sources.iter().map(|s| s.len()).max().unwrap_or(0);
        let mut result = vec![0_u8; len];
        for i in 0..len * 8 {
            let mut bits = sources.iter().map(|s| naive_bit(s, i));
            let on = match op {
                BitOp::Not => !bits.next().unwrap(),
                BitOp::And => bits.all(|b| b),
                BitOp::Or => bits.any(|b| b),
                BitOp::Xor => bits.filter(|&b| b).count() % 2 == 1,
            };
            if on {
                result[i / 8] |= 0x80 >> (i % 8);
            }
        }
        result
    }

    // ---- Strategies. ----

    fn value() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(prop_oneof![any::<u8>(), Just(0_u8), Just(0xff_u8)], 0..10)
    }

    fn index() -> impl Strategy<Value = i64> {
        prop_oneof![
            4 => -90_i64..90,
            1 => any::<i64>(),
            1 => Just(i64::MIN),
            1 => Just(i64::MAX),
        ]
    }

    fn unit() -> impl Strategy<Value = RangeUnit> {
        prop_oneof![Just(BYTE), Just(BIT)]
    }

    fn bit_range() -> impl Strategy<Value = BitRange> {
        (index(), proptest::option::of(index()), unit()).prop_map(|(start, end, unit)| BitRange {
            start,
            end,
            unit,
        })
    }

    fn op() -> impl Strategy<Value = BitOp> {
        prop_oneof![
            Just(BitOp::And),
            Just(BitOp::Or),
            Just(BitOp::Xor),
            Just(BitOp::Not)
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn whole_count_is_the_sum_of_byte_popcounts(v in value()) {
            let expected: u32 = v.iter().map(|b| b.count_ones()).sum();
            prop_assert_eq!(bitcount(Some(&v), None), i64::from(expected));
        }

        #[test]
        fn bit_range_count_matches_naive(v in value(), start in index(), end in index()) {
            let range = range(start, end, BIT);
            prop_assert_eq!(bitcount(Some(&v), range), naive_count(&v, Some(range)));
        }

        #[test]
        fn any_range_count_matches_naive(v in value(), range in proptest::option::of(bit_range())) {
            prop_assert_eq!(bitcount(Some(&v), range), naive_count(&v, range));
        }

        #[test]
        fn bitpos_matches_naive(
            v in proptest::option::of(value()),
            bit in any::<bool>(),
            range in proptest::option::of(bit_range()),
        ) {
            prop_assert_eq!(bitpos(v.as_deref(), bit, range), naive_pos(v.as_deref(), bit, range));
        }

        #[test]
        fn setbit_changes_only_its_bit(
            mut v in value(),
            offset in 0_u64..120,
            on in any::<bool>(),
        ) {
            let before = v.clone();
            let old = set_bit(&mut v, offset, on);
            prop_assert_eq!(i64::from(old), getbit(Some(&before), offset));
            prop_assert_eq!(getbit(Some(&v), offset), i64::from(on));
            let needed = usize::try_from(offset / 8 + 1).unwrap();
            prop_assert_eq!(v.len(), before.len().max(needed));
            for i in 0..v.len() * 8 {
                if u64::try_from(i).unwrap() != offset {
                    prop_assert_eq!(naive_bit(&v, i), naive_bit(&before, i));
                }
            }
        }

        #[test]
        fn bitop_matches_naive(
            op in op(),
            sources in prop::collection::vec(proptest::option::of(value()), 1..5),
        ) {
            let sources = if op == BitOp::Not { sources[..1].to_vec() } else { sources };
            let borrowed: Vec<Option<&[u8]>> = sources.iter().map(Option::as_deref).collect();
            prop_assert_eq!(bit_op(op, &borrowed), naive_bit_op(op, &sources));
        }

        #[test]
        fn arbitrary_indexes_never_panic(
            v in proptest::option::of(value()),
            start in any::<i64>(),
            end in proptest::option::of(any::<i64>()),
            unit in unit(),
            bit in any::<bool>(),
            offset in any::<u64>(),
        ) {
            let range = Some(BitRange { start, end, unit });
            let count = bitcount(v.as_deref(), range);
            let pos = bitpos(v.as_deref(), bit, range);
            let got = getbit(v.as_deref(), offset);
            prop_assert!(count >= 0);
            prop_assert!(pos >= -1);
            prop_assert!(got == 0 || got == 1);
        }
    }
}
