//! Snapshots and log compaction: the leader streams its stored snapshot in bounded,
//! acknowledged chunks to a follower whose needed entries were compacted; the follower
//! hands the chunks to its caller, asks for the install once the last one arrived, and
//! restarts its log after the snapshot once the caller reports the install done.

use crate::error::SnapshotError;
use crate::message::{AppendResponse, Payload, SnapshotChunkMessage, SnapshotResponse};
use crate::progress::{Progress, ProgressState};
use crate::storage::{Storage, StorageError};
use crate::types::{IncomingSnapshotChunk, LogIndex, NodeId, Role, SnapshotMeta};

use super::RawNode;

/// A snapshot partly received from one sender.
#[derive(Debug)]
struct Partial {
    from: NodeId,
    meta: SnapshotMeta,
    /// Leading bytes received and handed to the caller.
    received: u64,
}

/// The follower side of snapshot transfer.
#[derive(Debug, Default)]
pub(super) struct Receiving {
    partial: Option<Partial>,
    /// Chunks for the next Ready.
    pub(super) chunks: Vec<IncomingSnapshotChunk>,
    /// A complete snapshot not yet handed out for installing.
    pub(super) to_install: Option<SnapshotMeta>,
    /// The snapshot being installed (handed out or about to be) and its size.
    installing: Option<(SnapshotMeta, u64)>,
}

impl Receiving {
    pub(super) fn has_ready(&self) -> bool {
        !self.chunks.is_empty() || self.to_install.is_some()
    }

    /// Another node leads now: a partial copy from the previous one cannot be resumed.
    /// (A completely received snapshot is still installed: it is committed state.)
    pub(super) fn leader_changed(&mut self, leader: NodeId) {
        if self.partial.as_ref().is_some_and(|p| p.from != leader) {
            self.partial = None;
        }
    }
}

/// Whether a follower in snapshot state has reported a match at or past the snapshot.
pub(super) fn caught_up(pr: &Progress) -> bool {
    pr.snapshot
        .as_ref()
        .is_some_and(|stream| pr.match_index >= stream.meta.index)
}

/// Heartbeat rounds without progress after which a stream is sent again.
const STALLED_ROUNDS_MAX: u32 = 2;

/// A heartbeat round ended for a follower in snapshot state: a stream that made no
/// progress over two whole rounds lost a chunk (or the follower's acknowledgements, or
/// the follower is still installing), so send again from the last acknowledged offset.
pub(super) fn heartbeat_round(pr: &mut Progress) {
    let stream = pr.snapshot.as_mut().expect("snapshot state has a stream");
    if stream.acked_at_heartbeat == Some(stream.acked) {
        stream.stalled_rounds += 1;
    } else {
        stream.stalled_rounds = 0;
    }
    if stream.stalled_rounds >= STALLED_ROUNDS_MAX {
        let acked = stream.acked;
        stream.rewind(acked);
        stream.last_rewind = None;
        stream.stalled_rounds = 0;
    }
    stream.acked_at_heartbeat = Some(stream.acked);
}

impl<S: Storage> RawNode<S> {
    /// Whether a received snapshot waits to be installed (the node then ignores appends,
    /// does not advance its commit index and does not campaign).
    pub(super) fn snapshot_installing(&self) -> bool {
        self.snap.installing.is_some()
    }

    /// The metadata for a snapshot of the state machine as of `index`, which must be
    /// applied: store it with the snapshot's bytes (for example with
    /// [`MemStorage::create_snapshot`](crate::MemStorage::create_snapshot)), then
    /// [`RawNode::compact`] the log.
    pub fn prepare_snapshot(&self, index: LogIndex) -> Result<SnapshotMeta, SnapshotError> {
        if index > self.log.applied {
            return Err(SnapshotError::AboveApplied {
                index,
                applied: self.log.applied,
            });
        }
        assert!(
            index <= self.log.committed,
            "applied beyond the commit index"
        );
        let term = self.log.term(index)?;
        Ok(SnapshotMeta {
            index,
            term,
            conf_state: self.membership.as_of(index).clone(),
        })
    }

    /// Drops the log's entries up to `index`, keeping
    /// [`compaction_tail_entries`](crate::Config::compaction_tail_entries) entries behind
    /// the applied index for followers that are only a little behind. `index` must be
    /// applied and covered by the stored snapshot. Returns the index the log now starts
    /// after (unchanged when there was nothing to drop).
    pub fn compact(&mut self, index: LogIndex) -> Result<LogIndex, SnapshotError> {
        let applied = self.log.applied;
        if index > applied {
            return Err(SnapshotError::AboveApplied { index, applied });
        }
        let snapshot_index = self.log.storage.snapshot_meta()?.index;
        if index > snapshot_index {
            return Err(SnapshotError::NotCoveredBySnapshot {
                index,
                snapshot_index,
            });
        }
        let boundary = self.log.storage.first_index()?.prev();
        let target = index.min(LogIndex(
            applied
                .0
                .saturating_sub(self.config.compaction_tail_entries),
        ));
        if target <= boundary {
            return Ok(boundary);
        }
        // Applied entries are durable, so the storage holds everything being dropped.
        assert!(
            target <= self.log.persisted,
            "compacting unpersisted entries"
        );
        self.log.storage.compact(target)?;
        let first = self.log.storage.first_index()?;
        assert_eq!(first, target.next(), "the storage compacted elsewhere");
        assert_eq!(
            self.log.storage.term(target)?,
            self.log.term(target)?,
            "the boundary keeps its term"
        );
        Ok(target)
    }

    /// Reports that the snapshot handed out in [`Ready::snapshot`](crate::Ready::snapshot)
    /// is installed: the state machine was restored from it and the storage now holds
    /// the snapshot and no entries. Call it right after replacing the storage, before any
    /// other call on this node. The log, commit and applied indexes move to the
    /// snapshot, and the leader hears that this node matches it.
    pub fn on_snapshot_installed(&mut self, index: LogIndex) -> Result<(), SnapshotError> {
        let pending = self.snap.installing.as_ref().map(|(meta, _)| meta.index);
        if pending != Some(index) || self.snap.to_install.is_some() {
            return Err(SnapshotError::NotPending { index, pending });
        }
        let found = self.log.storage.snapshot_meta()?;
        let last_index = self.log.storage.last_index()?;
        if found.index != index || last_index != index {
            return Err(SnapshotError::StorageNotReset {
                expected: index,
                found: found.index,
                last_index,
            });
        }
        let (meta, _) = self.snap.installing.take().expect("checked pending");
        assert_eq!(meta.term, found.term, "installed a different snapshot");
        assert!(
            self.log.committed < index,
            "the commit index passed a snapshot being installed"
        );
        self.log.reset_to_snapshot(index)?;
        self.leader_commit_known = self.leader_commit_known.max(index);
        assert_ne!(
            self.role,
            Role::Leader,
            "a leader never installs a snapshot"
        );
        // The log is now empty after the snapshot: the membership is the snapshot's.
        self.membership = super::membership::Membership::load(&self.log, meta.conf_state)?;
        if self.role == Role::Follower
            && let Some(leader) = self.leader_id
        {
            self.send(
                leader,
                Payload::AppendResponse(AppendResponse::Accepted { match_index: index }),
            );
        }
        self.check_invariants()?;
        Ok(())
    }

    /// Leader: streams the snapshot to `peer` if it needs one. Returns whether `peer` is
    /// in snapshot state (then no appends go to it).
    pub(super) fn send_snapshot(&mut self, peer: NodeId) -> Result<bool, StorageError> {
        let first = self.log.storage.first_index()?;
        let pr = &self.progress[&peer];
        if pr.state != ProgressState::Snapshot {
            if pr.next_index >= first {
                return Ok(false);
            }
            let meta = self.log.storage.snapshot_meta()?;
            assert!(
                meta.index.next() >= first,
                "the stored snapshot at {} does not reach the log at {first}",
                meta.index
            );
            assert!(
                meta.index <= self.log.committed,
                "snapshot at {} beyond the commit index {}",
                meta.index,
                self.log.committed
            );
            self.progress
                .get_mut(&peer)
                .expect("progress for every voter")
                .become_snapshot(meta);
        }
        let chunk_max = self.config.snapshot_chunk_bytes_max;
        let window = self.config.snapshot_inflight_chunks_max;
        loop {
            let stream = self.progress[&peer]
                .snapshot
                .as_ref()
                .expect("snapshot state has a stream");
            let window = if stream.heard { window } else { 1 };
            if stream.final_sent || stream.inflight.len() >= window {
                return Ok(true);
            }
            let offset = stream.sent;
            let chunk = match self.log.storage.snapshot_chunk(offset, chunk_max) {
                Ok(chunk) => chunk,
                // Retried at the next heartbeat round.
                Err(StorageError::SnapshotUnavailable) => return Ok(true),
                Err(err) => return Err(err),
            };
            let pr = self
                .progress
                .get_mut(&peer)
                .expect("progress for every voter");
            let stream = pr.snapshot.as_mut().expect("snapshot state has a stream");
            if (chunk.index, chunk.term) != (stream.meta.index, stream.meta.term) {
                // A newer snapshot replaced the one being streamed: start it over.
                let meta = self.log.storage.snapshot_meta()?;
                if (meta.index, meta.term) != (chunk.index, chunk.term) {
                    return Ok(true);
                }
                assert!(meta.index <= self.log.committed);
                pr.become_snapshot(meta);
                continue;
            }
            assert!(chunk.data.len() <= chunk_max, "chunk beyond the limit");
            if chunk.data.is_empty() && !chunk.last {
                return Ok(true);
            }
            let len = chunk.data.len() as u64;
            stream.sent += len;
            if len > 0 {
                stream.inflight.push_back(stream.sent);
            }
            stream.final_sent = chunk.last;
            stream.check();
            let msg = SnapshotChunkMessage {
                meta: stream.meta.clone(),
                offset,
                data: chunk.data,
                last: chunk.last,
            };
            self.send(peer, Payload::Snapshot(msg));
        }
    }

    /// Leader: a follower reported how much of a snapshot it holds.
    pub(super) fn handle_snapshot_response(&mut self, from: NodeId, resp: SnapshotResponse) {
        let pr = self
            .progress
            .get_mut(&from)
            .expect("progress for every voter");
        let Some(stream) = pr.snapshot.as_mut() else {
            return;
        };
        if (stream.meta.index, stream.meta.term) != (resp.index, resp.term) {
            return;
        }
        stream.heard = true;
        if resp.rejected
            && resp.received != stream.sent
            && stream.last_rewind != Some(resp.received)
        {
            // The follower holds less than was sent (a chunk was lost) or dropped its
            // partial copy: resume from what it holds.
            stream.acked = resp.received.min(stream.acked);
            stream.rewind(resp.received);
            stream.last_rewind = Some(resp.received);
        } else {
            stream.ack(resp.received);
        }
        pr.check();
        self.replicate_dirty = true;
    }

    /// Follower: one chunk of a snapshot from the leader of the current term.
    pub(super) fn handle_snapshot_chunk(
        &mut self,
        from: NodeId,
        chunk: SnapshotChunkMessage,
    ) -> Result<(), StorageError> {
        assert_eq!(self.role, Role::Follower);
        let (index, term) = (chunk.meta.index, chunk.meta.term);
        if chunk.data.len() > self.config.snapshot_chunk_bytes_max {
            return Ok(()); // a sender that ignores the limit is not served
        }
        if let Some((meta, size)) = &self.snap.installing {
            if (meta.index, meta.term) == (index, term) {
                let received = *size;
                self.reply_snapshot(from, index, term, received, false);
            }
            return Ok(());
        }
        if index <= self.log.committed {
            // Stale: everything it covers is already committed here.
            self.snap.partial = None;
            let match_index = self.log.committed.min(self.log.persisted);
            self.send(
                from,
                Payload::AppendResponse(AppendResponse::Accepted { match_index }),
            );
            return Ok(());
        }
        if self.log.matches(index, term)? {
            // The log already holds the snapshot's last entry, so it matches the leader's
            // up to there (log matching) and that prefix is committed. Installing would
            // discard entries after it that this node may already have acknowledged.
            self.snap.partial = None;
            self.leader_commit_known = self.leader_commit_known.max(index);
            self.follower_commit()?;
            let msg = self.message(
                from,
                Payload::AppendResponse(AppendResponse::Accepted { match_index: index }),
            );
            // Sent once the entries up to `index` are durable.
            self.persisted_messages.push(msg);
            return Ok(());
        }
        // Bytes of two nodes' snapshots at one index need not be identical, so a partial
        // copy is resumed only from the node that sent it.
        let same = self
            .snap
            .partial
            .as_ref()
            .is_some_and(|p| p.from == from && (p.meta.index, p.meta.term) == (index, term));
        if !same {
            self.snap.partial = None;
            if chunk.offset != 0 {
                self.reply_snapshot(from, index, term, 0, true);
                return Ok(());
            }
            self.snap.partial = Some(Partial {
                from,
                meta: chunk.meta.clone(),
                received: 0,
            });
        }
        let partial = self.snap.partial.as_mut().expect("set above");
        let received = partial.received;
        if chunk.offset != received {
            // A duplicate (behind) or a chunk after a lost one (ahead).
            let rejected = chunk.offset > received;
            self.reply_snapshot(from, index, term, received, rejected);
            return Ok(());
        }
        partial.received += chunk.data.len() as u64;
        let received = partial.received;
        let last = chunk.last;
        self.snap.chunks.push(IncomingSnapshotChunk {
            meta: chunk.meta,
            offset: chunk.offset,
            data: chunk.data,
            last,
        });
        if last {
            let partial = self.snap.partial.take().expect("set above");
            assert!(partial.meta.index > self.log.committed);
            self.snap.to_install = Some(partial.meta.clone());
            self.snap.installing = Some((partial.meta, received));
        }
        self.reply_snapshot(from, index, term, received, false);
        Ok(())
    }

    fn reply_snapshot(
        &mut self,
        to: NodeId,
        index: LogIndex,
        term: crate::types::Term,
        received: u64,
        rejected: bool,
    ) {
        self.send(
            to,
            Payload::SnapshotResponse(SnapshotResponse {
                index,
                term,
                received,
                rejected,
            }),
        );
    }

    pub(super) fn check_snapshot_invariants(&self) -> Result<(), StorageError> {
        let stored = self.log.storage.snapshot_meta()?;
        assert!(
            stored.index <= self.log.committed,
            "stored snapshot at {} beyond the commit index {}",
            stored.index,
            self.log.committed
        );
        assert!(
            stored.index.next() >= self.log.storage.first_index()?,
            "the stored snapshot does not reach the log"
        );
        assert!(
            self.log.applied >= self.log.storage.first_index()?.prev(),
            "entries were compacted before being applied"
        );
        if let Some((meta, _)) = &self.snap.installing {
            assert_ne!(self.role, Role::Leader, "a leader installing a snapshot");
            assert!(
                meta.index > self.log.committed,
                "installing a snapshot at {} at or below the commit index {}",
                meta.index,
                self.log.committed
            );
            assert!(self.snap.partial.is_none());
        }
        assert!(
            self.log.applied >= stored.index,
            "the state machine is behind the stored snapshot"
        );
        for pr in self.progress.values() {
            if let Some(stream) = &pr.snapshot {
                assert!(
                    stream.meta.index <= self.log.committed,
                    "streaming a snapshot beyond the commit index"
                );
                assert!(
                    !caught_up(pr),
                    "a follower that matched the snapshot stays in snapshot state"
                );
            }
        }
        Ok(())
    }
}
