//! HyperLogLog: `PFADD`, `PFCOUNT` and `PFMERGE` over string values in Redis's own
//! format, so a value made by either server reads the same in the other (a `GET` on one
//! and a `SET` on the other moves it) and both count the same.
//!
//! A value is a 16-byte header, then the registers:
//!
//! ```text
//! "HYLL" | encoding u8 (0 dense, 1 sparse) | 3 zero bytes | cached count u64 LE
//! ```
//!
//! The cached count is valid while the top bit of its last byte is clear; every write
//! that changes a register sets that bit. There are 16,384 registers of 6 bits. The
//! dense encoding packs them, least significant bits first, in 12,288 bytes. The sparse
//! encoding, used while it takes at most [`SPARSE_BYTES_MAX`] bytes and no register
//! passes 32, is a sequence of runs:
//!
//! ```text
//! 00xxxxxx           ZERO:  1 to 64 registers at 0
//! 01xxxxxx yyyyyyyy  XZERO: 1 to 16,384 registers at 0 (14 bits, high first)
//! 1vvvvvxx           VAL:   1 to 4 registers at the value 1 to 32
//! ```
//!
//! An element's register and value come from MurmurHash64A (seed `0xadc83b19`) of its
//! bytes: the low 14 bits pick the register, and the value is one more than the number
//! of trailing zero bits of the remaining 50 (at most 51). The count is Ertl's improved
//! estimator over the histogram of register values, as Redis computes it since 5.0.
//!
//! Every function here takes untrusted bytes: a value a client wrote with `SET` may
//! claim to be a HyperLogLog and be anything. None of them panics on such bytes; they
//! answer [`HllError`] instead.

/// How many registers a HyperLogLog has (2^14).
pub const REGISTERS: usize = 1 << INDEX_BITS;

/// The bits of an element's hash that pick its register.
const INDEX_BITS: u32 = 14;

/// The bits of an element's hash left to count zeros in.
const COUNT_BITS: u32 = 64 - INDEX_BITS;

const HEADER_BYTES: usize = 16;

/// The bytes of a dense value: the header and 16,384 registers of 6 bits.
pub const DENSE_BYTES: usize = HEADER_BYTES + REGISTERS * 6 / 8;

/// The largest a sparse value grows to before it becomes dense (Redis's default
/// `hll-sparse-max-bytes`).
pub const SPARSE_BYTES_MAX: usize = 3000;

const MAGIC: &[u8; 4] = b"HYLL";
const DENSE: u8 = 0;
const SPARSE: u8 = 1;

/// The top bit of the cached count's last byte: set while the cache is stale.
const CACHE_STALE: u8 = 0x80;

/// A register's largest value in the sparse encoding.
const SPARSE_VALUE_MAX: u8 = 32;
/// The longest run of one `VAL`.
const VAL_RUN_MAX: usize = 4;
/// The longest run of one `ZERO`.
const ZERO_RUN_MAX: usize = 64;

/// Why a value cannot be used as a HyperLogLog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HllError {
    /// It is not one: too short, no magic, an unknown encoding or a dense value of the
    /// wrong length (Redis's `WRONGTYPE Key is not a valid HyperLogLog string value.`).
    NotHll,
    /// It claims to be one, but its sparse runs do not cover the registers exactly
    /// (Redis's `INVALIDOBJ Corrupted HLL object detected`).
    Corrupt,
}

/// A new, empty HyperLogLog: sparse, every register 0, its cached count valid (0).
#[must_use]
pub fn empty() -> Vec<u8> {
    let mut value = Vec::with_capacity(HEADER_BYTES + 2);
    value.extend_from_slice(MAGIC);
    value.extend_from_slice(&[SPARSE, 0, 0, 0]);
    value.extend_from_slice(&[0; 8]);
    push_zeros(&mut value, REGISTERS);
    value
}

/// Checks that `value` is a HyperLogLog's header over registers of the right size for
/// a dense one; a sparse one's runs are checked as they are read.
///
/// # Errors
/// [`HllError::NotHll`] if it is not one.
pub fn check(value: &[u8]) -> Result<(), HllError> {
    if value.len() < HEADER_BYTES || &value[..4] != MAGIC {
        return Err(HllError::NotHll);
    }
    match value[4] {
        SPARSE => Ok(()),
        DENSE if value.len() == DENSE_BYTES => Ok(()),
        _ => Err(HllError::NotHll),
    }
}

/// Whether the HyperLogLog `value` (checked by [`check`]) is dense: `PFMERGE` stores a
/// dense value if any it merged is.
#[must_use]
pub fn is_dense(value: &[u8]) -> bool {
    value[4] == DENSE
}

/// Marks the cached count of `value` (a checked HyperLogLog) stale.
pub fn invalidate(value: &mut [u8]) {
    value[HEADER_BYTES - 1] |= CACHE_STALE;
}

/// Adds `element` to the HyperLogLog `value` (checked by [`check`]); whether a register
/// changed. The cached count is left as it is: a caller that changed something marks
/// it stale once, with [`invalidate`].
///
/// # Errors
/// [`HllError::Corrupt`] if `value` is sparse and its runs are not well formed; `value`
/// is then unchanged.
pub fn add(value: &mut Vec<u8>, element: &[u8]) -> Result<bool, HllError> {
    let (index, count) = register_of(element);
    set(value, index, count)
}

/// Raises the register `index` of `value` (checked) to `count` if it is lower; whether
/// it did.
fn set(value: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, HllError> {
    debug_assert!(index < REGISTERS);
    if is_dense(value) {
        return Ok(dense_raise(&mut value[HEADER_BYTES..], index, count));
    }
    sparse_set(value, index, count)
}

/// The register an element goes to and the value it offers it.
fn register_of(element: &[u8]) -> (usize, u8) {
    let hash = murmur64a(element, 0xadc8_3b19);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    // A sentinel bit past the 50 counted keeps the count at most 51.
    let rest = (hash >> INDEX_BITS) | (1 << COUNT_BITS);
    let count = rest.trailing_zeros() + 1;
    debug_assert!(count <= COUNT_BITS + 1);
    (index, count as u8)
}

/// Austin Appleby's MurmurHash64A, reading 8-byte words little-endian.
fn murmur64a(bytes: &[u8], seed: u32) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = u64::from(seed) ^ (bytes.len() as u64).wrapping_mul(M);
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut k = u64::from_le_bytes(word.try_into().expect("chunks of 8"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        for (i, &byte) in tail.iter().enumerate() {
            h ^= u64::from(byte) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The dense register `index` of `registers`.
fn dense_get(registers: &[u8], index: usize) -> u8 {
    let bit = index * 6;
    let (byte, shift) = (bit / 8, bit % 8);
    let low = u16::from(registers[byte]) >> shift;
    let high = registers
        .get(byte + 1)
        .map_or(0, |&b| u16::from(b) << (8 - shift));
    ((low | high) & 63) as u8
}

/// Three bytes of dense registers, little-endian: four registers of 6 bits.
fn three_bytes(three: &[u8]) -> u32 {
    u32::from(three[0]) | (u32::from(three[1]) << 8) | (u32::from(three[2]) << 16)
}

/// The sum of histograms kept apart.
fn sum_histograms(parts: &[[u32; 64]; 4]) -> [u32; 64] {
    let mut total = [0u32; 64];
    for (i, t) in total.iter_mut().enumerate() {
        *t = parts.iter().map(|h| h[i]).sum();
    }
    total
}

/// Sets the dense register `index` of `registers` to `value` (at most 63).
fn dense_put(registers: &mut [u8], index: usize, value: u8) {
    debug_assert!(value < 64);
    let bit = index * 6;
    let (byte, shift) = (bit / 8, bit % 8);
    let wide = u16::from(value) << shift;
    let mask = 63u16 << shift;
    registers[byte] = (registers[byte] & !(mask as u8)) | wide as u8;
    if let Some(next) = registers.get_mut(byte + 1) {
        *next = (*next & !((mask >> 8) as u8)) | (wide >> 8) as u8;
    }
}

/// Raises the dense register `index` to `count` if it is lower; whether it did.
fn dense_raise(registers: &mut [u8], index: usize, count: u8) -> bool {
    if dense_get(registers, index) >= count {
        return false;
    }
    dense_put(registers, index, count);
    true
}

/// One run of a sparse value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    /// Registers at 0; `wide` if written as `XZERO` (two bytes).
    Zeros { len: usize, wide: bool },
    /// Registers at `value`.
    Value { value: u8, len: usize },
}

impl Run {
    fn len(self) -> usize {
        match self {
            Self::Zeros { len, .. } | Self::Value { len, .. } => len,
        }
    }

    fn bytes(self) -> usize {
        match self {
            Self::Zeros { wide: true, .. } => 2,
            _ => 1,
        }
    }
}

/// The run at `at` in `value`; `None` for an `XZERO` cut short.
fn run_at(value: &[u8], at: usize) -> Option<Run> {
    let op = value[at];
    Some(match op >> 6 {
        0 => Run::Zeros {
            len: usize::from(op & 0x3f) + 1,
            wide: false,
        },
        1 => {
            let low = *value.get(at + 1)?;
            Run::Zeros {
                len: ((usize::from(op & 0x3f) << 8) | usize::from(low)) + 1,
                wide: true,
            }
        }
        _ => Run::Value {
            value: ((op >> 2) & 0x1f) + 1,
            len: usize::from(op & 3) + 1,
        },
    })
}

/// The runs of a sparse value, in order; an `XZERO` cut short ends them with `None`.
fn runs(value: &[u8]) -> impl Iterator<Item = Option<Run>> + '_ {
    let mut at = HEADER_BYTES;
    std::iter::from_fn(move || {
        if at >= value.len() {
            return None;
        }
        let run = run_at(value, at);
        at = run.map_or(value.len(), |run| at + run.bytes());
        Some(run)
    })
}

fn val_op(value: u8, len: usize) -> u8 {
    debug_assert!((1..=SPARSE_VALUE_MAX).contains(&value) && (1..=VAL_RUN_MAX).contains(&len));
    0x80 | ((value - 1) << 2) | (len - 1) as u8
}

/// Appends the shortest run of `len` zero registers.
fn push_zeros(out: &mut Vec<u8>, len: usize) {
    debug_assert!((1..=REGISTERS).contains(&len));
    if len > ZERO_RUN_MAX {
        let n = len - 1;
        out.push(0x40 | (n >> 8) as u8);
        out.push((n & 0xff) as u8);
    } else {
        out.push((len - 1) as u8);
    }
}

/// Raises the sparse register `index` to `count`, as Redis does: the run holding it is
/// split into at most three, unless that would pass [`SPARSE_BYTES_MAX`] or `count`
/// passes what a `VAL` holds, which makes the value dense first.
fn sparse_set(value: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, HllError> {
    if count > SPARSE_VALUE_MAX {
        return promote(value, index, count);
    }
    // The run holding the register, where it starts, and the run before it.
    let mut at = HEADER_BYTES;
    let mut first = 0;
    let mut before = None;
    let run = loop {
        if at >= value.len() {
            return Err(HllError::Corrupt);
        }
        let run = run_at(value, at).ok_or(HllError::Corrupt)?;
        if index < first + run.len() {
            break run;
        }
        before = Some(at);
        at += run.bytes();
        first += run.len();
    };
    let last = first + run.len() - 1;
    match run {
        Run::Value { value: old, .. } if old >= count => return Ok(false),
        Run::Value { len: 1, .. } | Run::Zeros { len: 1, .. } => {
            value[at] = val_op(count, 1);
        }
        Run::Zeros { .. } => {
            let mut split = Vec::with_capacity(5);
            if index != first {
                push_zeros(&mut split, index - first);
            }
            split.push(val_op(count, 1));
            if index != last {
                push_zeros(&mut split, last - index);
            }
            if !replace_run(value, at, run.bytes(), &split) {
                return promote(value, index, count);
            }
        }
        Run::Value { value: old, .. } => {
            let mut split = Vec::with_capacity(3);
            if index != first {
                split.push(val_op(old, index - first));
            }
            split.push(val_op(count, 1));
            if index != last {
                split.push(val_op(old, last - index));
            }
            if !replace_run(value, at, run.bytes(), &split) {
                return promote(value, index, count);
            }
        }
    }
    join_values(value, before.unwrap_or(HEADER_BYTES));
    Ok(true)
}

/// Puts `split` in place of the `old_bytes` bytes at `at`, unless that would make the
/// value longer than [`SPARSE_BYTES_MAX`]; whether it did.
fn replace_run(value: &mut Vec<u8>, at: usize, old_bytes: usize, split: &[u8]) -> bool {
    if split.len() > old_bytes && value.len() + split.len() - old_bytes > SPARSE_BYTES_MAX {
        return false;
    }
    value.splice(at..at + old_bytes, split.iter().copied());
    true
}

/// Joins neighbouring `VAL` runs of one value where they fit in one, looking at the
/// five runs from `from` on (the run before a change, and what the change made).
fn join_values(value: &mut Vec<u8>, from: usize) {
    let mut at = from;
    for _ in 0..5 {
        if at >= value.len() {
            break;
        }
        match run_at(value, at) {
            Some(Run::Zeros { wide, .. }) => at += if wide { 2 } else { 1 },
            None => break,
            Some(Run::Value { value: v1, len: l1 }) => {
                if let Some(Some(Run::Value { value: v2, len: l2 })) =
                    value.get(at + 1).map(|_| run_at(value, at + 1))
                    && v1 == v2
                    && l1 + l2 <= VAL_RUN_MAX
                {
                    value[at] = val_op(v1, l1 + l2);
                    value.remove(at + 1);
                    continue;
                }
                at += 1;
            }
        }
    }
}

/// Hands each run of the sparse `value` to `visit` with the index of its first register,
/// checking that the runs cover the registers exactly.
///
/// # Errors
/// [`HllError::Corrupt`] if they do not, or a run is cut short; `visit` has seen the
/// runs before the fault.
fn visit_runs(value: &[u8], mut visit: impl FnMut(usize, Run)) -> Result<(), HllError> {
    let mut index = 0;
    for run in runs(value) {
        let run = run.ok_or(HllError::Corrupt)?;
        // Indexes only grow, so a run past the end is a fault whatever follows.
        if index + run.len() > REGISTERS {
            return Err(HllError::Corrupt);
        }
        visit(index, run);
        index += run.len();
    }
    if index == REGISTERS {
        Ok(())
    } else {
        Err(HllError::Corrupt)
    }
}

/// Makes the sparse `value` dense, then raises the register `index` to `count`, which
/// the sparse encoding could not hold or could not hold within its limit.
fn promote(value: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, HllError> {
    to_dense(value)?;
    let raised = dense_raise(&mut value[HEADER_BYTES..], index, count);
    debug_assert!(raised, "a register past the sparse encoding is a change");
    Ok(raised)
}

/// Rewrites the sparse `value` as dense, keeping its header but for the encoding.
fn to_dense(value: &mut Vec<u8>) -> Result<(), HllError> {
    let mut dense = vec![0u8; DENSE_BYTES];
    dense[..HEADER_BYTES].copy_from_slice(&value[..HEADER_BYTES]);
    dense[4] = DENSE;
    let registers = &mut dense[HEADER_BYTES..];
    visit_runs(value, |index, run| {
        if let Run::Value { value: v, len } = run {
            for i in index..index + len {
                dense_put(registers, i, v);
            }
        }
    })?;
    *value = dense;
    Ok(())
}

/// The highest value of each register across the HyperLogLogs merged into it: what
/// `PFCOUNT` of several keys counts and `PFMERGE` stores.
#[derive(Clone)]
pub struct Registers(Box<[u8; REGISTERS]>);

impl std::fmt::Debug for Registers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.0.iter().filter(|&&r| r != 0).count();
        f.debug_struct("Registers").field("set", &set).finish()
    }
}

impl Default for Registers {
    fn default() -> Self {
        Self(Box::new([0; REGISTERS]))
    }
}

impl Registers {
    /// Raises each register to the HyperLogLog `value`'s (checked by [`check`]).
    ///
    /// # Errors
    /// [`HllError::Corrupt`] if `value` is sparse and its runs do not cover the
    /// registers exactly; some registers may have been raised by then.
    pub fn merge(&mut self, value: &[u8]) -> Result<(), HllError> {
        if is_dense(value) {
            let groups = value[HEADER_BYTES..].chunks_exact(3);
            for (maxes, three) in self.0.chunks_exact_mut(4).zip(groups) {
                let word = three_bytes(three);
                for (k, max) in maxes.iter_mut().enumerate() {
                    *max = (*max).max(((word >> (6 * k)) & 63) as u8);
                }
            }
            return Ok(());
        }
        visit_runs(value, |index, run| {
            if let Run::Value { value: v, len } = run {
                for max in &mut self.0[index..index + len] {
                    *max = (*max).max(v);
                }
            }
        })
    }

    /// Each register's value, by index.
    #[must_use]
    pub fn values(&self) -> &[u8; REGISTERS] {
        &self.0
    }

    /// The estimated count of distinct elements.
    #[must_use]
    pub fn count(&self) -> u64 {
        let mut four = [[0u32; 64]; 4];
        for registers in self.0.chunks_exact(4) {
            for (h, &register) in four.iter_mut().zip(registers) {
                h[usize::from(register & 63)] += 1;
            }
        }
        estimate(&sum_histograms(&four))
    }

    /// Raises each register of the HyperLogLog `value` (checked) to these, making it
    /// dense first if `dense`, and marks its cached count stale: `PFMERGE`'s write.
    ///
    /// # Errors
    /// [`HllError::Corrupt`] if `value` is sparse and its runs are not well formed.
    pub fn store_in(&self, value: &mut Vec<u8>, dense: bool) -> Result<(), HllError> {
        if dense && !is_dense(value) {
            to_dense(value)?;
        }
        for (index, &max) in self.0.iter().enumerate() {
            if max != 0 {
                set(value, index, max)?;
            }
        }
        invalidate(value);
        Ok(())
    }
}

/// `PFCOUNT` of one HyperLogLog `value` (checked by [`check`]): its cached count while
/// that is valid, else the estimate.
///
/// # Errors
/// [`HllError::Corrupt`] if it is sparse and its runs do not cover the registers
/// exactly.
pub fn count(value: &[u8]) -> Result<u64, HllError> {
    let cached: [u8; 8] = value[8..HEADER_BYTES].try_into().expect("a checked header");
    if cached[7] & CACHE_STALE == 0 {
        return Ok(u64::from_le_bytes(cached));
    }
    let mut histogram = [0u32; 64];
    if is_dense(value) {
        // Four histograms, one per place in each three bytes, so that consecutive
        // registers of one value do not wait on each other's increments.
        let mut four = [[0u32; 64]; 4];
        for three in value[HEADER_BYTES..].chunks_exact(3) {
            let word = three_bytes(three);
            for (k, h) in four.iter_mut().enumerate() {
                h[((word >> (6 * k)) & 63) as usize] += 1;
            }
        }
        histogram = sum_histograms(&four);
    } else {
        visit_runs(value, |_, run| {
            let value = match run {
                Run::Zeros { .. } => 0,
                Run::Value { value, .. } => usize::from(value),
            };
            histogram[value] += run.len() as u32;
        })?;
    }
    Ok(estimate(&histogram))
}

/// Ertl's improved raw estimator ("New cardinality estimation algorithms for
/// HyperLogLog sketches", 2017) over how many registers hold each value.
fn estimate(histogram: &[u32; 64]) -> u64 {
    /// The limit of the bias correction as the registers grow in number.
    const ALPHA_INF: f64 = 0.721_347_520_444_481_7;
    let m = REGISTERS as f64;
    let q = COUNT_BITS as usize;
    let mut z = m * tau((m - f64::from(histogram[q + 1])) / m);
    for j in (1..=q).rev() {
        z += f64::from(histogram[j]);
        z *= 0.5;
    }
    z += m * sigma(f64::from(histogram[0]) / m);
    let estimate = (ALPHA_INF * m * m / z).round();
    debug_assert!(estimate >= 0.0);
    // Every register at 0 makes `z` infinite and the estimate 0.
    estimate as u64
}

/// σ(x) = x + Σ_{k≥1} x^(2^k) 2^(k-1), summed until it stops changing.
fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if z == before {
            return z;
        }
    }
}

/// τ(x) = (1 - x - Σ_{k≥1} (1 - x^(2^-k))^2 2^-k) / 3, summed until it stops changing.
fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if z == before {
            return z / 3.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sparse_registers(value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for run in runs(value) {
            match run.unwrap() {
                Run::Zeros { len, .. } => out.extend(std::iter::repeat_n(0, len)),
                Run::Value { value, len } => out.extend(std::iter::repeat_n(value, len)),
            }
        }
        out
    }

    fn registers(value: &[u8]) -> Vec<u8> {
        if is_dense(value) {
            (0..REGISTERS)
                .map(|i| dense_get(&value[HEADER_BYTES..], i))
                .collect()
        } else {
            sparse_registers(value)
        }
    }

    #[test]
    fn adds_give_the_bytes_redis_gives() {
        // `PFADD h a b c foo bar "hello world" 12345678` then `GET h`, from Redis 7.0.
        let redis: &[u8] = b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80\\\xb3\x90D>\x80C\xc1\x8cB^\x80B:\x88HR\x84K\xfb\x80BZ";
        let mut value = empty();
        for element in ["a", "b", "c", "foo", "bar", "hello world", "12345678"] {
            assert!(add(&mut value, element.as_bytes()).unwrap());
        }
        invalidate(&mut value);
        assert_eq!(value, redis);
        assert_eq!(count(&value), Ok(7));
        assert_eq!(murmur64a(b"", 0), 0);
    }

    #[test]
    fn empty_is_one_wide_zero_run_with_a_valid_cache() {
        let value = empty();
        assert_eq!(value.len(), HEADER_BYTES + 2);
        assert_eq!(&value[HEADER_BYTES..], &[0x7f, 0xff]);
        check(&value).unwrap();
        assert_eq!(count(&value), Ok(0));
        assert_eq!(sparse_registers(&value), vec![0; REGISTERS]);
    }

    #[test]
    fn dense_registers_round_trip_at_every_offset() {
        let mut registers = vec![0u8; REGISTERS * 6 / 8];
        for i in 0..REGISTERS {
            dense_put(&mut registers, i, (i % 64) as u8);
        }
        for i in 0..REGISTERS {
            assert_eq!(dense_get(&registers, i), (i % 64) as u8, "register {i}");
        }
        // Read four at a time, as counts and merges read them.
        let mut value = empty();
        value.truncate(HEADER_BYTES);
        value[4] = DENSE;
        value.extend_from_slice(&registers);
        let mut merged = Registers::default();
        merged.merge(&value).unwrap();
        assert!(
            merged
                .0
                .iter()
                .enumerate()
                .all(|(i, &r)| r == (i % 64) as u8)
        );
        dense_put(&mut registers, REGISTERS - 1, 0);
        assert_eq!(dense_get(&registers, REGISTERS - 1), 0);
        assert_eq!(
            dense_get(&registers, REGISTERS - 2),
            ((REGISTERS - 2) % 64) as u8
        );
    }

    #[test]
    fn sparse_and_dense_agree_register_by_register() {
        let mut sparse = empty();
        let mut model = vec![0u8; REGISTERS];
        for n in 0..400u32 {
            let element = format!("element:{n}");
            let (index, count) = register_of(element.as_bytes());
            let changed = add(&mut sparse, element.as_bytes()).unwrap();
            assert_eq!(changed, model[index] < count);
            model[index] = model[index].max(count);
            assert_eq!(registers(&sparse), model, "after {n}");
        }
        assert!(!is_dense(&sparse), "400 elements stay sparse");
        let mut dense = sparse.clone();
        to_dense(&mut dense).unwrap();
        assert_eq!(dense.len(), DENSE_BYTES);
        assert_eq!(registers(&dense), model);
        let mut a = sparse.clone();
        let mut b = dense.clone();
        invalidate(&mut a);
        invalidate(&mut b);
        assert_eq!(count(&a), count(&b));
    }

    #[test]
    fn sparse_grows_dense_past_its_limit() {
        let mut value = empty();
        let mut model = vec![0u8; REGISTERS];
        for n in 0..5000u32 {
            let element = n.to_le_bytes();
            let (index, count) = register_of(&element);
            add(&mut value, &element).unwrap();
            model[index] = model[index].max(count);
            if !is_dense(&value) {
                assert!(value.len() <= SPARSE_BYTES_MAX);
            }
        }
        assert!(is_dense(&value));
        assert_eq!(value.len(), DENSE_BYTES);
        assert_eq!(registers(&value), model);
        invalidate(&mut value);
        let estimate = count(&value).unwrap();
        assert!((4800..=5200).contains(&estimate), "{estimate}");
    }

    #[test]
    fn estimates_stay_within_a_few_percent() {
        let mut value = empty();
        for n in 0..100_000u32 {
            add(&mut value, format!("user:{n}").as_bytes()).unwrap();
        }
        invalidate(&mut value);
        let estimate = count(&value).unwrap() as f64;
        assert!(
            (estimate - 100_000.0).abs() / 100_000.0 < 0.03,
            "{estimate}"
        );
    }

    #[test]
    fn merge_takes_the_highest_of_each_register() {
        let mut a = empty();
        let mut b = empty();
        for n in 0..300u32 {
            add(&mut a, format!("a{n}").as_bytes()).unwrap();
            add(&mut b, format!("b{n}").as_bytes()).unwrap();
        }
        let mut both = Registers::default();
        both.merge(&a).unwrap();
        both.merge(&b).unwrap();
        let expect: Vec<u8> = registers(&a)
            .iter()
            .zip(registers(&b))
            .map(|(x, y)| (*x).max(y))
            .collect();
        assert_eq!(both.0.to_vec(), expect);
        let mut stored = empty();
        both.store_in(&mut stored, false).unwrap();
        assert_eq!(registers(&stored), expect);
        let mut stored_dense = empty();
        both.store_in(&mut stored_dense, true).unwrap();
        assert!(is_dense(&stored_dense));
        assert_eq!(count(&stored), Ok(both.count()));
        assert_eq!(count(&stored_dense), Ok(both.count()));
    }

    #[test]
    fn a_valid_cache_is_answered_as_it_is() {
        let mut value = empty();
        value[8..16].copy_from_slice(&42u64.to_le_bytes());
        assert_eq!(count(&value), Ok(42));
    }

    #[test]
    fn malformed_values_are_refused_not_panicked_on() {
        assert_eq!(check(b"HYLL"), Err(HllError::NotHll));
        assert_eq!(check(b"hello world, not a sketch"), Err(HllError::NotHll));
        let mut dense_short = empty();
        dense_short[4] = DENSE;
        assert_eq!(check(&dense_short), Err(HllError::NotHll));
        let mut odd = empty();
        odd[4] = 2;
        assert_eq!(check(&odd), Err(HllError::NotHll));
        // Runs that cover too few registers, too many, or end inside an XZERO.
        for tail in [&[0x00][..], &[0x7f, 0xff, 0x00], &[0x40], &[0xff; 40]] {
            let mut value = empty();
            value.truncate(HEADER_BYTES);
            value.extend_from_slice(tail);
            invalidate(&mut value);
            check(&value).unwrap();
            assert_eq!(count(&value), Err(HllError::Corrupt), "{tail:?}");
            assert_eq!(Registers::default().merge(&value), Err(HllError::Corrupt));
            let before = value.clone();
            let mut added = value.clone();
            match add(&mut added, b"x") {
                Ok(_) => {}
                Err(e) => {
                    assert_eq!(e, HllError::Corrupt);
                    assert_eq!(added, before, "a refused add changes nothing");
                }
            }
        }
    }
}
