//! The leader's view of each follower: how far its log matches, what is in flight, and
//! whether it has been heard from recently.

use std::collections::VecDeque;

use crate::types::LogIndex;

/// How the leader is sending entries to a follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressState {
    /// The leader does not yet know where the follower's log matches its own: it sends
    /// one append at a time and waits for the answer.
    Probe,
    /// The follower's log matches up to `match_index`: the leader streams appends without
    /// waiting, within the in-flight window.
    Replicate,
}

/// Appends sent to a follower and not yet acknowledged: the last index of each message and
/// its entry bytes, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Inflights {
    queue: VecDeque<(LogIndex, u64)>,
    bytes: u64,
}

impl Inflights {
    pub(crate) fn add(&mut self, last: LogIndex, bytes: u64) {
        assert!(
            self.queue.back().is_none_or(|&(prev, _)| prev < last),
            "in-flight appends must grow"
        );
        self.queue.push_back((last, bytes));
        self.bytes += bytes;
    }

    /// Frees every message whose last index is at or below `index`.
    pub(crate) fn free_to(&mut self, index: LogIndex) {
        while let Some(&(last, bytes)) = self.queue.front() {
            if last > index {
                break;
            }
            self.queue.pop_front();
            self.bytes -= bytes;
        }
        debug_assert!(!self.queue.is_empty() || self.bytes == 0);
    }

    pub(crate) fn reset(&mut self) {
        self.queue.clear();
        self.bytes = 0;
    }

    pub(crate) fn full(&self, msgs_max: usize, bytes_max: u64) -> bool {
        self.queue.len() >= msgs_max || self.bytes >= bytes_max
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }
}

#[derive(Debug)]
pub(crate) struct Progress {
    pub(crate) match_index: LogIndex,
    pub(crate) next_index: LogIndex,
    pub(crate) state: ProgressState,
    /// In probe state: an append is outstanding.
    pub(crate) probe_sent: bool,
    pub(crate) inflights: Inflights,
    /// The leader's commit index carried by the last append sent.
    pub(crate) commit_sent: LogIndex,
    /// The leader's tick when this follower last sent anything in the leader's term.
    pub(crate) last_active_tick: u64,
    /// The highest heartbeat round the follower acknowledged.
    pub(crate) acked_seq: Option<u64>,
    /// The leader's tick when it sent that round (for leases).
    pub(crate) acked_sent_tick: Option<u64>,
    /// `match_index` at the previous heartbeat response, to notice lost appends.
    pub(crate) match_at_last_heartbeat: LogIndex,
}

impl Progress {
    pub(crate) fn new(next_index: LogIndex, now_tick: u64) -> Progress {
        Progress {
            match_index: LogIndex(0),
            next_index,
            state: ProgressState::Probe,
            probe_sent: false,
            inflights: Inflights::default(),
            commit_sent: LogIndex(0),
            last_active_tick: now_tick,
            acked_seq: None,
            acked_sent_tick: None,
            match_at_last_heartbeat: LogIndex(0),
        }
    }

    pub(crate) fn become_probe(&mut self) {
        self.state = ProgressState::Probe;
        self.next_index = self.match_index.next();
        self.probe_sent = false;
        self.inflights.reset();
    }

    pub(crate) fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.next_index = self.match_index.next();
        self.probe_sent = false;
        self.inflights.reset();
    }

    /// Records an acknowledgement up to `index`; returns whether `match_index` advanced.
    pub(crate) fn maybe_update(&mut self, index: LogIndex) -> bool {
        let updated = index > self.match_index;
        if updated {
            self.match_index = index;
            self.probe_sent = false;
        }
        self.next_index = self.next_index.max(index.next());
        self.inflights.free_to(index);
        self.check();
        updated
    }

    /// Handles a rejection of the append whose previous index was `rejected`; `probe_to`
    /// is the last index the leader believes may match. Returns false for a stale
    /// rejection.
    pub(crate) fn maybe_decrease_to(&mut self, rejected: LogIndex, probe_to: LogIndex) -> bool {
        if self.state == ProgressState::Replicate {
            if rejected <= self.match_index {
                return false;
            }
            self.become_probe();
            return true;
        }
        if self.next_index.prev() != rejected {
            return false;
        }
        self.next_index = rejected
            .min(probe_to.next())
            .max(self.match_index.next())
            .max(LogIndex(1));
        self.probe_sent = false;
        self.check();
        true
    }

    pub(crate) fn paused(&self, msgs_max: usize, bytes_max: u64) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflights.full(msgs_max, bytes_max),
        }
    }

    pub(crate) fn check(&self) {
        assert!(
            self.match_index < self.next_index,
            "match {} must be below next {}",
            self.match_index,
            self.next_index
        );
        assert!(self.state == ProgressState::Replicate || self.inflights.len() == 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_fills_by_count_or_bytes_and_frees_in_order() {
        let mut inflights = Inflights::default();
        inflights.add(LogIndex(3), 100);
        inflights.add(LogIndex(5), 100);
        assert!(inflights.full(2, 1000) && inflights.full(10, 200) && !inflights.full(3, 201));
        inflights.free_to(LogIndex(4));
        assert_eq!((inflights.len(), inflights.bytes()), (1, 100));
        inflights.free_to(LogIndex(9));
        assert_eq!((inflights.len(), inflights.bytes()), (0, 0));
    }

    #[test]
    fn a_rejection_moves_next_back_but_never_below_match() {
        let mut pr = Progress::new(LogIndex(11), 0);
        assert!(
            !pr.maybe_decrease_to(LogIndex(7), LogIndex(3)),
            "stale: not the probe in flight"
        );
        assert!(pr.maybe_decrease_to(LogIndex(10), LogIndex(3)));
        assert_eq!(pr.next_index, LogIndex(4));
        pr.maybe_update(LogIndex(3));
        pr.become_replicate();
        pr.inflights.add(LogIndex(8), 10);
        pr.next_index = LogIndex(9);
        assert!(
            !pr.maybe_decrease_to(LogIndex(2), LogIndex(0)),
            "stale: below match"
        );
        assert!(pr.maybe_decrease_to(LogIndex(5), LogIndex(0)));
        assert_eq!(
            (pr.state, pr.next_index, pr.inflights.len()),
            (ProgressState::Probe, LogIndex(4), 0)
        );
    }
}
