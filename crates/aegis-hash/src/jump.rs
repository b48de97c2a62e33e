//! Jump consistent hash (Lamping and Veach, 2014).

use crate::key_hash;

/// Jump consistent hash: maps a key onto one of `buckets` numbered buckets with no
/// memory at all.
///
/// Growing from `b` to `b + 1` buckets moves only the keys that land in the new bucket,
/// about `1 / (b + 1)` of them; shrinking removes the last bucket only. For removing any
/// node, use [`crate::Memento`], which builds on this function.
///
/// ```
/// use aegis_hash::JumpHash;
///
/// let bucket = JumpHash::hash("user:123", 3);
/// assert!(bucket < 3);
/// // Same answer as hashing the key first.
/// assert_eq!(bucket, JumpHash::bucket(aegis_hash::key_hash("user:123"), 3));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JumpHash;

/// The 64-bit linear congruential multiplier from the paper.
const LCG_MULTIPLIER: u64 = 2_862_933_555_777_941_757;

impl JumpHash {
    /// The bucket in `0..buckets` of a 64-bit key, bit-identical to the reference
    /// algorithm in the paper (including its use of `f64` division).
    ///
    /// # Panics
    ///
    /// If `buckets` is zero: there is no bucket to return.
    #[inline]
    #[must_use]
    pub fn bucket(mut key: u64, buckets: u32) -> u32 {
        assert!(buckets > 0, "jump hash needs at least one bucket");
        let buckets = i64::from(buckets);
        let mut b: i64 = -1;
        let mut j: i64 = 0;
        while j < buckets {
            b = j;
            key = key.wrapping_mul(LCG_MULTIPLIER).wrapping_add(1);
            // The reference computes in double precision and truncates to int64; `as`
            // truncates toward zero the same way, and the value stays below 2^63
            // because b + 1 <= u32::MAX.
            j = ((b + 1) as f64 * ((1_u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
        }
        debug_assert!((0..buckets).contains(&b));
        b as u32
    }

    /// The bucket of a byte or string key: `bucket(key_hash(key), buckets)`.
    ///
    /// # Panics
    ///
    /// If `buckets` is zero.
    #[inline]
    #[must_use]
    pub fn hash(key: impl AsRef<[u8]>, buckets: u32) -> u32 {
        Self::bucket(key_hash(key), buckets)
    }
}
