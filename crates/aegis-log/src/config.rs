use crate::error::{Error, Result};
use crate::format::{FRAME_HEADER_LEN, RECORD_BYTES_LIMIT, SEGMENT_HEADER_LEN};

/// When the log calls fsync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncPolicy {
    /// Every group-commit batch is fsynced before any write in it is acknowledged: a write
    /// that returned `Ok` survives a crash.
    EveryBatch,
    /// Never fsync. Writes are acknowledged once handed to the operating system. A
    /// process crash loses nothing, but a machine crash may lose any of them, and may
    /// damage a sealed segment badly enough that [`crate::Log::open`] refuses it. Meant
    /// for tests and for benchmarks of everything else.
    Never,
}

/// Limits and policies of one log. Build with [`LogConfig::default`] and adjust fields;
/// [`crate::Log::open`] calls [`LogConfig::validate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// A segment is closed and a new one started once it holds this many bytes
    /// (header included). Whole segments are the unit of space reclamation.
    pub segment_bytes_max: u64,
    /// How far ahead of the last record the active segment is filled with zeros (never
    /// past `segment_bytes_max`), 1 MiB by default. Overwriting allocated space lets an
    /// fsync skip persisting a new file length. The write that reaches the end of the
    /// allocated space fills the next stretch, and waits the longer the larger it is.
    /// `0` turns this off: segments grow with each write.
    pub segment_preallocate_bytes: u64,
    /// Largest payload of one record (an entry's data plus its 25-byte record header).
    pub record_bytes_max: u32,
    /// Largest number of bytes one group-commit batch writes before its fsync. A single
    /// write larger than this is rejected with [`Error::WriteTooLarge`].
    pub batch_bytes_max: u64,
    /// Largest number of writes (calls to [`crate::Log::write`] and friends) that share
    /// one fsync. `1` turns group commit off: one fsync per write.
    pub batch_writes_max: usize,
    /// Before taking a batch, its leader yields the processor up to this many times while
    /// more writers keep joining the queue, so that writers woken by the previous batch
    /// make it into this one. `0` takes whatever is queued at once.
    pub batch_gather_yields_max: u32,
    /// Largest number of writes waiting for the current batch to finish; further writers
    /// block until there is room.
    pub queue_writes_max: usize,
    /// Largest metadata blob stored with a group's hard state.
    pub state_bytes_max: u32,
    /// When to fsync.
    pub sync: SyncPolicy,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes_max: 64 << 20,
            segment_preallocate_bytes: 1 << 20,
            record_bytes_max: 4 << 20,
            batch_bytes_max: 16 << 20,
            batch_writes_max: 1024,
            batch_gather_yields_max: 8,
            queue_writes_max: 4096,
            state_bytes_max: 1 << 20,
            sync: SyncPolicy::EveryBatch,
        }
    }
}

impl LogConfig {
    /// Checks that the limits are consistent: every record fits in a segment and in a
    /// batch, and every bound is non-zero.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, reason: String| Err(Error::InvalidConfig { field, reason });
        if self.record_bytes_max == 0 || self.record_bytes_max > RECORD_BYTES_LIMIT {
            return bad(
                "record_bytes_max",
                format!(
                    "must be in 1..={RECORD_BYTES_LIMIT}, got {}",
                    self.record_bytes_max
                ),
            );
        }
        let framed = FRAME_HEADER_LEN as u64 + u64::from(self.record_bytes_max);
        if self.segment_bytes_max < SEGMENT_HEADER_LEN as u64 + framed {
            return bad(
                "segment_bytes_max",
                format!(
                    "{} cannot hold one record of record_bytes_max",
                    self.segment_bytes_max
                ),
            );
        }
        if self.batch_bytes_max < framed {
            return bad(
                "batch_bytes_max",
                format!(
                    "{} cannot hold one record of record_bytes_max",
                    self.batch_bytes_max
                ),
            );
        }
        if self.batch_writes_max == 0 {
            return bad("batch_writes_max", "must be at least 1".into());
        }
        if self.queue_writes_max == 0 {
            return bad("queue_writes_max", "must be at least 1".into());
        }
        if self.state_bytes_max == 0 || self.state_bytes_max > RECORD_BYTES_LIMIT {
            return bad(
                "state_bytes_max",
                format!(
                    "must be in 1..={RECORD_BYTES_LIMIT}, got {}",
                    self.state_bytes_max
                ),
            );
        }
        Ok(())
    }
}
