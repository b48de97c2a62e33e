use crate::format::{ENTRY_HEADER_LEN, FRAME_HEADER_LEN, RECORD_BYTES_LIMIT, Record};

/// What one record in a [`LogBatch`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpKind {
    Entry { term: u64 },
    TruncateSuffix,
    Compact,
}

/// One record of a batch: its meaning and where its frame sits in the batch buffer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Op {
    pub(crate) kind: OpKind,
    pub(crate) group: u64,
    pub(crate) index: u64,
    pub(crate) frame_start: usize,
    pub(crate) frame_len: usize,
}

/// A sequence of mutations, possibly for many groups, written by one
/// [`crate::Log::write`] call and made durable by one (shared) fsync.
///
/// Records are encoded as they are added, so the log's writer only copies bytes. The
/// operations apply in the order added; [`crate::Log::write`] rejects the whole batch
/// if any of them breaks a rule, so a batch is validated atomically. A crash, however,
/// can keep any prefix of an unacknowledged batch's records.
#[derive(Clone, Debug, Default)]
pub struct LogBatch {
    pub(crate) buf: Vec<u8>,
    pub(crate) ops: Vec<Op>,
    /// Payload length of the first record too large to frame at all; such a record is
    /// not encoded and the batch is rejected by `write`.
    pub(crate) unframeable: Option<u64>,
}

impl LogBatch {
    /// An empty batch.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty batch with room for `records` records carrying `data_bytes` bytes of
    /// entry data between them, so that filling it does not grow it record by record.
    #[must_use]
    pub fn with_capacity(records: usize, data_bytes: usize) -> Self {
        let framing = FRAME_HEADER_LEN + ENTRY_HEADER_LEN;
        Self {
            buf: Vec::with_capacity(records.saturating_mul(framing).saturating_add(data_bytes)),
            ops: Vec::with_capacity(records),
            unframeable: None,
        }
    }

    /// Appends the entry `(index, term, data)` to `group`. The group's entries must stay
    /// contiguous: `index` must be one past the group's last entry (or, for a group
    /// holding no entries, at or above its compaction point).
    pub fn append(&mut self, group: u64, index: u64, term: u64, data: &[u8]) -> &mut Self {
        self.push(
            OpKind::Entry { term },
            Record::Entry {
                group,
                index,
                term,
                data,
            },
        )
    }

    /// Removes every entry of `group` at or after `index` (a follower's conflicting tail).
    pub fn truncate_suffix(&mut self, group: u64, index: u64) -> &mut Self {
        self.push(
            OpKind::TruncateSuffix,
            Record::TruncateSuffix { group, index },
        )
    }

    /// Removes every entry of `group` before `index` and makes `index` the lowest index
    /// the group accepts from now on (compaction after a snapshot). Segments left with
    /// no live entry are deleted once this is durable.
    pub fn compact(&mut self, group: u64, index: u64) -> &mut Self {
        self.push(OpKind::Compact, Record::Compact { group, index })
    }

    /// Number of records in the batch.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch holds no record.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Bytes the batch occupies on disk.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        self.buf.len()
    }

    /// Empties the batch, keeping its allocation.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.ops.clear();
        self.unframeable = None;
    }

    fn push(&mut self, kind: OpKind, record: Record<'_>) -> &mut Self {
        if record.encoded_len() > RECORD_BYTES_LIMIT as usize {
            self.unframeable.get_or_insert(record.encoded_len() as u64);
            return self;
        }
        let frame_start = self.buf.len();
        let (group, index) = match record {
            Record::Entry { group, index, .. }
            | Record::TruncateSuffix { group, index }
            | Record::Compact { group, index } => (group, index),
        };
        record.encode_framed(&mut self.buf);
        let frame_len = self.buf.len() - frame_start;
        debug_assert_eq!(frame_len, FRAME_HEADER_LEN + record.encoded_len());
        self.ops.push(Op {
            kind,
            group,
            index,
            frame_start,
            frame_len,
        });
        self
    }
}

#[cfg(test)]
mod tests {
    use super::LogBatch;

    fn fill(batch: &mut LogBatch) {
        batch.truncate_suffix(1, 5);
        for index in 5..15 {
            batch.append(1, index, 2, &vec![index as u8; index as usize * 10]);
        }
    }

    #[test]
    fn a_batch_made_with_room_fills_without_growing_and_encodes_the_same() {
        let data: usize = (5..15).map(|i| i * 10).sum();
        let mut roomy = LogBatch::with_capacity(11, data);
        let (buf_room, ops_room) = (roomy.buf.capacity(), roomy.ops.capacity());
        fill(&mut roomy);
        assert_eq!(roomy.buf.capacity(), buf_room, "the buffer grew");
        assert_eq!(roomy.ops.capacity(), ops_room, "the operations grew");
        let mut plain = LogBatch::new();
        fill(&mut plain);
        assert_eq!(roomy.buf, plain.buf);
        assert_eq!(format!("{:?}", roomy.ops), format!("{:?}", plain.ops));
    }
}
