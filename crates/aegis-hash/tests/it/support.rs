//! Shared helpers: a seeded key generator and balance statistics.

/// SplitMix64: a tiny seeded generator, the same on every machine.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// `count` placement hashes of the keys `0..count` (as little-endian u64 bytes) mixed
/// with `seed`, so that every test uses real key hashes.
pub fn key_hashes(count: usize, seed: u64) -> Vec<u64> {
    let mut rng = SplitMix64(seed);
    (0..count)
        .map(|_| aegis_hash::key_hash(rng.next_u64().to_le_bytes()))
        .collect()
}

/// Keys per balance test.
pub const BALANCE_KEYS: usize = 1_000_000;

/// Pearson's chi-square statistic of observed `counts` against expected shares
/// `shares` (which sum to 1) over `total` keys.
pub fn chi_square(counts: &[u64], shares: &[f64], total: u64) -> f64 {
    assert_eq!(counts.len(), shares.len());
    counts
        .iter()
        .zip(shares)
        .map(|(&c, &p)| {
            let expected = p * total as f64;
            let d = c as f64 - expected;
            d * d / expected
        })
        .sum()
}

/// The noise floor of a fair assignment.
///
/// If each of `K` keys lands on bucket `i` independently with probability `p_i`, the
/// counts are multinomial and Pearson's statistic `X^2 = sum (c_i - K p_i)^2 / (K p_i)`
/// follows a chi-square distribution with `n - 1` degrees of freedom (mean `n - 1`,
/// variance `2(n - 1)`) once every `K p_i` is large (here it is at least a thousand).
/// We accept `X^2 <= (n - 1) + 6 sqrt(2(n - 1))`: six standard deviations above the
/// mean. A truly uniform assignment exceeds it with probability below 1e-4 for 9
/// degrees of freedom and below 1e-6 for 99 (the chi-square tail is a little heavier
/// than the normal one), so with fixed seeds the check is deterministic and a failure
/// means real skew. A bias of only 2% on one of 10 buckets over 1M keys adds
/// `(0.02 * 100_000)^2 / 100_000 = 40` to `X^2`, which fails on its own.
pub fn chi_square_bound(buckets: usize) -> f64 {
    let df = (buckets - 1) as f64;
    df + 6.0 * (2.0 * df).sqrt()
}

/// Asserts that `counts` sit on the noise floor of the expected `shares`.
pub fn assert_noise_floor(what: &str, counts: &[u64], shares: &[f64]) {
    let total: u64 = counts.iter().sum();
    let x2 = chi_square(counts, shares, total);
    let bound = chi_square_bound(counts.len());
    assert!(
        x2 <= bound,
        "{what}: chi-square {x2:.1} above the noise-floor bound {bound:.1} (counts {counts:?})"
    );
}
