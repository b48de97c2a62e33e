//! The trace of a run: a digest of every event (to prove that a seed replays exactly)
//! and the last few events in full (to explain a failure).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};

/// FNV-1a, 64 bits: a hasher with no random key, so digests are equal across runs.
#[derive(Debug, Clone, Copy)]
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Self(0xCBF2_9CE4_8422_2325)
    }
}

impl Hasher for Fnv64 {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01B3);
        }
    }

    fn write_u64(&mut self, value: u64) {
        // Mixing a whole word at once is much faster than eight byte steps and is
        // just as deterministic.
        self.0 ^= value;
        self.0 = self.0.wrapping_mul(0x0000_0100_0000_01B3);
        self.0 ^= self.0 >> 29;
    }
}

/// A 64-bit FNV digest of anything hashable.
#[must_use]
pub fn digest_of<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut h = Fnv64::default();
    value.hash(&mut h);
    h.finish()
}

/// Records events: all of them into the digest, the latest `tail_len` in full.
#[derive(Debug, Clone)]
pub struct Trace<E> {
    digest: Fnv64,
    events: u64,
    tail: VecDeque<(u64, E)>,
    tail_len: usize,
    echo: bool,
}

impl<E: Hash + std::fmt::Debug> Trace<E> {
    /// A trace that keeps the last `tail_len` events; with `echo` every event is also
    /// printed to standard error as it happens.
    #[must_use]
    pub fn new(tail_len: usize, echo: bool) -> Self {
        Self {
            digest: Fnv64::default(),
            events: 0,
            tail: VecDeque::with_capacity(tail_len.min(4096)),
            tail_len,
            echo,
        }
    }

    /// Records `event` at tick `now`.
    pub fn record(&mut self, now: u64, event: E) {
        now.hash(&mut self.digest);
        event.hash(&mut self.digest);
        self.events += 1;
        if self.echo {
            eprintln!("[{now:>6}] {event:?}");
        }
        if self.tail_len > 0 {
            if self.tail.len() == self.tail_len {
                self.tail.pop_front();
            }
            self.tail.push_back((now, event));
        }
    }

    /// The digest of every event so far.
    #[must_use]
    pub fn digest(&self) -> u64 {
        self.digest.finish()
    }

    /// How many events were recorded.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.events
    }

    /// Whether nothing was recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.events == 0
    }

    /// The kept tail, one event per line.
    #[must_use]
    pub fn tail(&self) -> String {
        let mut out = String::new();
        for (at, event) in &self.tail {
            let _ = writeln!(out, "[{at:>6}] {event:?}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_depends_on_every_event_and_tail_is_bounded() {
        let mut a: Trace<u32> = Trace::new(2, false);
        let mut b: Trace<u32> = Trace::new(2, false);
        for i in 0..5 {
            a.record(i, 10);
            b.record(i, if i == 0 { 11 } else { 10 });
        }
        assert_ne!(
            a.digest(),
            b.digest(),
            "an early difference changes the digest"
        );
        assert_eq!(a.len(), 5);
        assert_eq!(a.tail().lines().count(), 2);
        assert_eq!(digest_of(&(1_u64, 2_u64)), digest_of(&(1_u64, 2_u64)));
    }
}
