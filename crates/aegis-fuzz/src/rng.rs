//! A tiny seeded generator: splitmix64, enough for choosing mutations reproducibly.

/// A splitmix64 generator. The same seed always yields the same sequence, on every
/// platform, which is what makes a failing input reproducible from its seed alone.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator starting from `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.state)
    }

    /// A number in `0..n`; `n` must not be zero.
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "below(0) has no answer");
        // Multiply-shift keeps the bias negligible without a rejection loop.
        let wide = u128::from(self.next_u64()) * n as u128;
        let picked = (wide >> 64) as usize;
        debug_assert!(picked < n);
        picked
    }

    /// True with probability `1 / n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// A random byte.
    pub fn byte(&mut self) -> u8 {
        (self.next_u64() >> 56) as u8
    }
}

/// The splitmix64 finaliser: a bijection on `u64` that spreads every input bit.
#[must_use]
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of input `iteration` of `target` in a run seeded with `run_seed`. Each input
/// depends only on these three, so one seed replays one input without the others.
#[must_use]
pub fn input_seed(run_seed: u64, target: &str, iteration: u64) -> u64 {
    // FNV-1a over the name: stable across builds, unlike std's keyed hasher.
    let name = target.bytes().fold(0xCBF2_9CE4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    });
    mix(mix(run_seed ^ name).wrapping_add(iteration))
}
