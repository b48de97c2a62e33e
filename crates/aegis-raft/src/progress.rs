//! The leader's view of each follower: how far its log matches, what is in flight, and
//! whether it has been heard from recently.

use std::collections::VecDeque;

use crate::types::{LogIndex, SnapshotMeta};

/// How the leader is sending entries to a follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressState {
    /// The leader does not yet know where the follower's log matches its own: it sends
    /// one append at a time and waits for the answer.
    Probe,
    /// The follower's log matches up to `match_index`: the leader streams appends without
    /// waiting, within the in-flight window.
    Replicate,
    /// The entries the follower needs were compacted: the leader streams its snapshot in
    /// chunks and sends no appends until the follower reports it installed.
    Snapshot,
}

/// The leader's stream of one snapshot to one follower.
#[derive(Debug)]
pub(crate) struct SnapshotSend {
    pub(crate) meta: SnapshotMeta,
    /// The offset of the next chunk to send.
    pub(crate) sent: u64,
    /// The highest offset the follower reported holding.
    pub(crate) acked: u64,
    /// The end offsets of chunks sent and not yet acknowledged, oldest first.
    pub(crate) inflight: VecDeque<u64>,
    /// The chunk ending the snapshot was sent from the current position.
    pub(crate) final_sent: bool,
    /// `acked` at the previous heartbeat response, to notice a stalled stream.
    pub(crate) acked_at_heartbeat: Option<u64>,
    /// The offset of the last rewind caused by a rejection, so that the rejections of
    /// one lost chunk rewind only once.
    pub(crate) last_rewind: Option<u64>,
    /// The follower answered this stream: until it does, one chunk at a time is sent,
    /// since it may already hold a prefix (from this node in an earlier term).
    pub(crate) heard: bool,
    /// Consecutive heartbeat rounds in which `acked` did not move.
    pub(crate) stalled_rounds: u32,
}

impl SnapshotSend {
    pub(crate) fn new(meta: SnapshotMeta) -> SnapshotSend {
        SnapshotSend {
            meta,
            sent: 0,
            acked: 0,
            inflight: VecDeque::new(),
            final_sent: false,
            acked_at_heartbeat: None,
            last_rewind: None,
            heard: false,
            stalled_rounds: 0,
        }
    }

    /// Sends again from `offset` (go-back-N).
    pub(crate) fn rewind(&mut self, offset: u64) {
        self.sent = offset;
        self.inflight.clear();
        self.final_sent = false;
        self.check();
    }

    /// The follower holds the first `received` bytes.
    pub(crate) fn ack(&mut self, received: u64) {
        self.acked = self.acked.max(received);
        self.sent = self.sent.max(self.acked);
        while self.inflight.front().is_some_and(|&end| end <= self.acked) {
            self.inflight.pop_front();
        }
        self.check();
    }

    pub(crate) fn check(&self) {
        assert!(self.acked <= self.sent, "acked beyond sent");
        assert!(
            self.inflight
                .iter()
                .all(|&end| end > self.acked && end <= self.sent),
            "in-flight chunks lie between acked and sent"
        );
    }
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
    /// In snapshot state: the stream.
    pub(crate) snapshot: Option<SnapshotSend>,
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
            snapshot: None,
        }
    }

    /// Starts streaming the snapshot `meta` (from its first byte).
    pub(crate) fn become_snapshot(&mut self, meta: SnapshotMeta) {
        assert!(
            meta.index >= self.match_index,
            "snapshot {} below match {}",
            meta.index,
            self.match_index
        );
        self.state = ProgressState::Snapshot;
        self.next_index = self.next_index.max(meta.index.next());
        self.probe_sent = false;
        self.inflights.reset();
        self.snapshot = Some(SnapshotSend::new(meta));
        self.check();
    }

    pub(crate) fn become_probe(&mut self) {
        self.snapshot = None;
        self.state = ProgressState::Probe;
        self.next_index = self.match_index.next();
        self.probe_sent = false;
        self.inflights.reset();
    }

    pub(crate) fn become_replicate(&mut self) {
        self.snapshot = None;
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
            ProgressState::Snapshot => true,
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
        assert_eq!(
            self.state == ProgressState::Snapshot,
            self.snapshot.is_some(),
            "a snapshot stream exactly in snapshot state"
        );
        if let Some(stream) = &self.snapshot {
            stream.check();
        }
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
    fn a_snapshot_stream_acks_in_order_and_rewinds_to_the_followers_offset() {
        let mut pr = Progress::new(LogIndex(3), 0);
        pr.become_snapshot(SnapshotMeta {
            index: LogIndex(50),
            ..SnapshotMeta::default()
        });
        assert_eq!(
            (pr.state, pr.next_index),
            (ProgressState::Snapshot, LogIndex(51))
        );
        assert!(pr.paused(10, 10), "no appends while streaming");
        let stream = pr.snapshot.as_mut().unwrap();
        for end in [10, 20, 30] {
            stream.sent = end;
            stream.inflight.push_back(end);
        }
        stream.ack(20);
        assert_eq!((stream.acked, stream.inflight.len()), (20, 1));
        stream.rewind(20);
        assert_eq!((stream.sent, stream.inflight.len()), (20, 0));
        // A follower that already holds more (resuming a partial copy) moves sending on.
        stream.ack(35);
        assert_eq!((stream.acked, stream.sent), (35, 35));
        pr.check();
        pr.maybe_update(LogIndex(50));
        pr.become_replicate();
        assert!(pr.snapshot.is_none());
        pr.check();
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
