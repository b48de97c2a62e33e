//! A simulated disk for one node: a durable log and hard state, and a queue of writes
//! in flight that become durable after a seeded delay.
//!
//! Writes complete in submission order (a write-ahead log does not reorder its own
//! records) but each takes a random number of ticks, so a node keeps running while its
//! writes are outstanding. A crash throws away every write that has not completed:
//! whatever the node was not told is durable is lost.

use std::collections::VecDeque;

use crate::rng::SimRng;

/// One write submitted to the disk: a log suffix starting at `first_index` (which
/// replaces any durable entries from that index on) and optionally a new hard state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write<E, H> {
    /// Index of `entries[0]`; ignored when `entries` is empty.
    pub first_index: u64,
    /// Entries to append, replacing the durable log from `first_index` on.
    pub entries: Vec<E>,
    /// Hard state to store, if it changed.
    pub hard_state: Option<H>,
    /// Caller's tag, handed back on completion (for example the ready number).
    pub tag: u64,
}

#[derive(Debug, Clone)]
struct Pending<E, H> {
    complete_at: u64,
    write: Write<E, H>,
}

/// The disk of one simulated node.
#[derive(Debug, Clone)]
pub struct Disk<E, H> {
    /// Durable entries; `log[0]` has index `base + 1`.
    log: Vec<E>,
    /// The index of the last entry replaced by an installed snapshot (0 without one).
    base: u64,
    hard_state: Option<H>,
    pending: VecDeque<Pending<E, H>>,
    delay_ticks_max: u64,
}

impl<E: Clone, H: Clone> Disk<E, H> {
    /// An empty disk whose writes take between 0 and `delay_ticks_max` ticks.
    #[must_use]
    pub fn new(delay_ticks_max: u64) -> Self {
        Self {
            log: Vec::new(),
            base: 0,
            hard_state: None,
            pending: VecDeque::new(),
            delay_ticks_max,
        }
    }

    /// Durable entries, the first at index [`Disk::base`] + 1.
    #[must_use]
    pub fn log(&self) -> &[E] {
        &self.log
    }

    /// The index the durable log starts after: that of the last installed snapshot.
    #[must_use]
    pub fn base(&self) -> u64 {
        self.base
    }

    /// A snapshot at `base` replaced the whole durable log (writes complete in order, so
    /// call it when the write that carried the install completes).
    pub fn reset_to(&mut self, base: u64) {
        self.log.clear();
        self.base = base;
    }

    /// Durable hard state.
    #[must_use]
    pub fn hard_state(&self) -> Option<&H> {
        self.hard_state.as_ref()
    }

    /// Writes not yet durable.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Queues `write` at tick `now`. It completes no earlier than the writes before it.
    ///
    /// # Panics
    /// If the write would leave a hole in the log as it will be once every queued
    /// write has completed.
    pub fn submit(&mut self, now: u64, write: Write<E, H>, rng: &mut SimRng) {
        if !write.entries.is_empty() {
            assert!(write.first_index >= 1, "log indexes start at 1");
            assert!(
                write.first_index > self.base,
                "write at {} inside the snapshot at {}",
                write.first_index,
                self.base
            );
            let durable_last = self.base + self.log.len() as u64;
            let last_after_queue = self.pending.iter().fold(durable_last, |last, p| {
                if p.write.entries.is_empty() {
                    last
                } else {
                    p.write.first_index - 1 + p.write.entries.len() as u64
                }
            });
            assert!(
                write.first_index <= last_after_queue + 1,
                "write at {} leaves a hole after {}",
                write.first_index,
                last_after_queue
            );
        }
        // Each write has its own latency, but it cannot overtake an earlier one: a later
        // write that would finish first waits and completes with it (group commit).
        let own = now + rng.range_inclusive(0, self.delay_ticks_max);
        let complete_at = self.pending.back().map_or(own, |p| p.complete_at.max(own));
        self.pending.push_back(Pending { complete_at, write });
    }

    /// Completes, in order, every write due at or before `now` and returns them.
    pub fn complete_due(&mut self, now: u64) -> Vec<Write<E, H>> {
        let mut done = Vec::new();
        while self.pending.front().is_some_and(|p| p.complete_at <= now) {
            let Some(p) = self.pending.pop_front() else {
                break;
            };
            self.apply(&p.write);
            done.push(p.write);
        }
        done
    }

    fn apply(&mut self, write: &Write<E, H>) {
        if !write.entries.is_empty() {
            let keep = (write.first_index - 1 - self.base) as usize;
            assert!(keep <= self.log.len(), "durable log would have a hole");
            self.log.truncate(keep);
            self.log.extend(write.entries.iter().cloned());
            debug_assert_eq!(
                self.base + self.log.len() as u64,
                write.first_index - 1 + write.entries.len() as u64
            );
        }
        if let Some(hs) = &write.hard_state {
            self.hard_state = Some(hs.clone());
        }
    }

    /// The node crashed: every write in flight is lost. Returns how many were lost.
    pub fn crash(&mut self) -> usize {
        let lost = self.pending.len();
        self.pending.clear();
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(first_index: u64, entries: &[u32], hs: Option<u8>, tag: u64) -> Write<u32, u8> {
        Write {
            first_index,
            entries: entries.to_vec(),
            hard_state: hs,
            tag,
        }
    }

    #[test]
    fn writes_complete_in_order_and_truncate_conflicts() {
        let mut disk = Disk::new(3);
        let mut rng = SimRng::new(5);
        disk.submit(0, write(1, &[10, 11, 12], Some(1), 1), &mut rng);
        disk.submit(0, write(2, &[21], Some(2), 2), &mut rng);
        let mut tags = Vec::new();
        for t in 0..10 {
            tags.extend(disk.complete_due(t).into_iter().map(|w| w.tag));
        }
        assert_eq!(tags, vec![1, 2]);
        assert_eq!(disk.log(), &[10, 21]);
        assert_eq!(disk.hard_state(), Some(&2));
    }

    #[test]
    fn crash_loses_only_what_was_not_durable() {
        let mut disk = Disk::new(0);
        let mut rng = SimRng::new(5);
        disk.submit(0, write(1, &[1, 2], Some(1), 1), &mut rng);
        assert_eq!(disk.complete_due(0).len(), 1);
        disk.submit(1, write(3, &[3], Some(2), 2), &mut rng);
        assert_eq!(disk.crash(), 1);
        assert_eq!(disk.complete_due(100).len(), 0);
        assert_eq!(disk.log(), &[1, 2]);
        assert_eq!(disk.hard_state(), Some(&1));
    }

    #[test]
    #[should_panic(expected = "leaves a hole")]
    fn a_hole_in_the_log_is_a_bug() {
        let mut disk: Disk<u32, u8> = Disk::new(0);
        disk.submit(0, write(3, &[1], None, 1), &mut SimRng::new(1));
    }
}
