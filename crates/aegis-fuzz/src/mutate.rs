//! Turning valid encodings into almost-valid ones.
//!
//! Every input starts from one seed encoding and goes through a few mutations chosen by
//! an [`Rng`]: bit flips, overwrites with boundary values (a byte, or a 16/32/64-bit
//! integer in either byte order), small arithmetic, insertions, deletions, truncation,
//! duplication of a range, and splices with another seed. Boundary values are where
//! length and count fields turn into panics, so they come up often.

use crate::rng::Rng;

/// Single bytes that sit on a boundary: zero, one, the sign bit, all ones.
const INTERESTING_U8: [u8; 8] = [0x00, 0x01, 0x02, 0x7F, 0x80, 0x81, 0xFE, 0xFF];

/// Wider values written in either byte order: limits of every width, lengths just
/// around powers of two, and the varint continuation pattern.
const INTERESTING_WIDE: [u64; 14] = [
    0,
    1,
    0x7F,
    0x80,
    0xFF,
    0x100,
    0x7FFF,
    0x8000,
    0xFFFF,
    0x1_0000,
    0x7FFF_FFFF,
    0xFFFF_FFFF,
    0x8000_0000_0000_0000,
    u64::MAX,
];

/// The mutation operators, in the order [`Mutator::mutate_once`] numbers them.
const OPERATORS: usize = 12;

/// Produces fuzz inputs from a set of seed encodings.
#[derive(Debug, Clone)]
pub struct Mutator {
    seeds: Vec<Vec<u8>>,
    len_max: usize,
}

impl Mutator {
    /// A mutator over `seeds` (at least one) whose inputs never exceed `len_max` bytes.
    ///
    /// # Panics
    /// If `seeds` is empty or `len_max` is zero: a target always has seeds.
    #[must_use]
    pub fn new(seeds: Vec<Vec<u8>>, len_max: usize) -> Self {
        assert!(!seeds.is_empty(), "a mutator needs at least one seed");
        assert!(len_max > 0, "inputs need room for at least one byte");
        Self { seeds, len_max }
    }

    /// The seed encodings.
    #[must_use]
    pub fn seeds(&self) -> &[Vec<u8>] {
        &self.seeds
    }

    /// The input for `input_seed`: one seed, then one to eight mutations. The same
    /// `input_seed` always gives the same bytes.
    #[must_use]
    pub fn generate(&self, input_seed: u64) -> Vec<u8> {
        let mut rng = Rng::new(input_seed);
        let mut data = self.seeds[rng.below(self.seeds.len())].clone();
        // Mostly few mutations (close to valid, so decoders get deep); sometimes many.
        let rounds = if rng.one_in(4) {
            1 + rng.below(8)
        } else {
            1 + rng.below(2)
        };
        for _ in 0..rounds {
            self.mutate_once(&mut rng, &mut data);
        }
        data.truncate(self.len_max);
        debug_assert!(data.len() <= self.len_max);
        data
    }

    fn mutate_once(&self, rng: &mut Rng, data: &mut Vec<u8>) {
        match rng.below(OPERATORS) {
            0 | 1 => flip_bit(rng, data),
            2 => overwrite_u8(rng, data),
            3 => overwrite_wide(rng, data),
            4 => add_delta(rng, data),
            5 => overwrite_random(rng, data),
            6 => insert_bytes(rng, data),
            7 => delete_range(rng, data),
            8 => {
                if !data.is_empty() {
                    let at = rng.below(data.len());
                    data.truncate(at);
                }
            }
            9 => duplicate_range(rng, data),
            10 => self.splice(rng, data),
            _ => self.insert_from_seed(rng, data),
        }
    }

    /// Keeps a prefix of `data` and continues with a suffix of another seed.
    fn splice(&self, rng: &mut Rng, data: &mut Vec<u8>) {
        let other = &self.seeds[rng.below(self.seeds.len())];
        let keep = rng.below(data.len() + 1);
        let from = rng.below(other.len() + 1);
        data.truncate(keep);
        data.extend_from_slice(&other[from..]);
    }

    /// Inserts a range of another seed somewhere in `data`.
    fn insert_from_seed(&self, rng: &mut Rng, data: &mut Vec<u8>) {
        let other = &self.seeds[rng.below(self.seeds.len())];
        let (start, end) = range_in(rng, other.len());
        let at = rng.below(data.len() + 1);
        data.splice(at..at, other[start..end].iter().copied());
    }
}

/// A range `start..end` inside a slice of `len` bytes, at most 64 long.
fn range_in(rng: &mut Rng, len: usize) -> (usize, usize) {
    let start = rng.below(len + 1);
    let end = start + rng.below((len - start).min(64) + 1);
    debug_assert!(start <= end && end <= len);
    (start, end)
}

fn flip_bit(rng: &mut Rng, data: &mut [u8]) {
    if !data.is_empty() {
        let at = rng.below(data.len());
        data[at] ^= 1 << rng.below(8);
    }
}

fn overwrite_u8(rng: &mut Rng, data: &mut [u8]) {
    if !data.is_empty() {
        let at = rng.below(data.len());
        data[at] = INTERESTING_U8[rng.below(INTERESTING_U8.len())];
    }
}

/// Writes a boundary value as 2, 4 or 8 bytes, little or big endian, cut off at the
/// end of `data`.
fn overwrite_wide(rng: &mut Rng, data: &mut [u8]) {
    if data.is_empty() {
        return;
    }
    let value = INTERESTING_WIDE[rng.below(INTERESTING_WIDE.len())];
    // Sometimes the value just past a boundary, or the input's own length.
    let value = match rng.below(4) {
        0 => value.wrapping_sub(1),
        1 => data.len() as u64,
        _ => value,
    };
    let width = [2, 4, 8][rng.below(3)];
    // The low `width` bytes of the value, in the chosen order.
    let le = value.to_le_bytes();
    let be = value.to_be_bytes();
    let bytes = if rng.one_in(2) {
        &le[..width]
    } else {
        &be[8 - width..]
    };
    let at = rng.below(data.len());
    for (slot, b) in data[at..].iter_mut().zip(bytes) {
        *slot = *b;
    }
}

fn add_delta(rng: &mut Rng, data: &mut [u8]) {
    if !data.is_empty() {
        let at = rng.below(data.len());
        let delta = 1 + rng.below(16) as u8;
        data[at] = if rng.one_in(2) {
            data[at].wrapping_add(delta)
        } else {
            data[at].wrapping_sub(delta)
        };
    }
}

fn overwrite_random(rng: &mut Rng, data: &mut [u8]) {
    if !data.is_empty() {
        let (start, end) = range_in(rng, data.len());
        for b in &mut data[start..end.min(start + 8)] {
            *b = rng.byte();
        }
    }
}

/// Inserts random bytes, or a run of one boundary byte (long runs make varints and
/// repeated fields).
fn insert_bytes(rng: &mut Rng, data: &mut Vec<u8>) {
    let at = rng.below(data.len() + 1);
    let len = 1 + rng.below(16);
    let inserted: Vec<u8> = if rng.one_in(2) {
        (0..len).map(|_| rng.byte()).collect()
    } else {
        vec![INTERESTING_U8[rng.below(INTERESTING_U8.len())]; len]
    };
    data.splice(at..at, inserted);
}

fn delete_range(rng: &mut Rng, data: &mut Vec<u8>) {
    let (start, end) = range_in(rng, data.len());
    data.drain(start..end);
}

/// Copies a range of `data` to another place in it.
fn duplicate_range(rng: &mut Rng, data: &mut Vec<u8>) {
    let (start, end) = range_in(rng, data.len());
    let copy = data[start..end].to_vec();
    let at = rng.below(data.len() + 1);
    data.splice(at..at, copy);
}
