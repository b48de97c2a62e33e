//! The snapshot chunk format: self-checking frames that carry the whole key space.
//!
//! A snapshot is a sequence of chunks. Every chunk is laid out as (little-endian)
//!
//! ```text
//! magic "AGKS" | version u8 | kind u8 | seq u32 | payload_len u32 | payload | crc32c u32
//! ```
//!
//! where the CRC32C covers every byte before it. The first chunk (`seq` 0) is a header
//! whose payload is `applied_index u64 | entry_count u64`; then come entry chunks whose
//! payload is a run of `key_len u32 | key | expire_at_ms u64 | kind u8 | value_len u32 |
//! value` (the kind as [`ValueKind`] numbers it) with keys strictly increasing across the
//! whole snapshot; the last chunk is a footer
//! whose payload is `entry_count u64`. Sequence numbers, the two counts and the key
//! order let a reader detect a missing, repeated, reordered or truncated chunk.
//!
//! Version 1, from before values had kinds, has no kind byte: every entry is a string.
//! It is still read.

use crate::hash::Fields;
use crate::set::Members;
use crate::store::{StoreError, ValueKind};

/// The four bytes that open every chunk.
pub const SNAPSHOT_MAGIC: [u8; 4] = *b"AGKS";
/// The chunk format version this build writes (and reads).
pub const SNAPSHOT_VERSION: u8 = 2;
/// The version of strings only, without a kind byte, which this build also reads.
const SNAPSHOT_VERSION_STRINGS_ONLY: u8 = 1;

const KIND_HEADER: u8 = 1;
const KIND_ENTRIES: u8 = 2;
const KIND_FOOTER: u8 = 3;
/// magic + version + kind + seq + payload_len.
const FRAME_HEAD_BYTES: usize = 4 + 1 + 1 + 4 + 4;
const FRAME_OVERHEAD_BYTES: usize = FRAME_HEAD_BYTES + 4;
/// key_len + expire_at + kind + value_len.
pub(crate) const ENTRY_OVERHEAD_BYTES: usize = 4 + 8 + 1 + 4;

/// One key as carried in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SnapshotEntry {
    pub(crate) key: Vec<u8>,
    /// `crate::store::NO_EXPIRY` when the key does not expire.
    pub(crate) expire_at_ms: u64,
    pub(crate) kind: ValueKind,
    pub(crate) value: Vec<u8>,
}

/// What one chunk carried, once checked.
#[derive(Debug)]
pub(crate) enum Chunk {
    Header {
        applied_index: u64,
        entry_count: u64,
    },
    Entries(Vec<SnapshotEntry>),
    Footer {
        entry_count: u64,
    },
}

fn frame(kind: u8, seq: u32, payload: &[u8]) -> Vec<u8> {
    let payload_len =
        u32::try_from(payload.len()).expect("snapshot chunk payloads are bounded far below 4 GiB");
    let mut out = Vec::with_capacity(FRAME_OVERHEAD_BYTES + payload.len());
    out.extend_from_slice(&SNAPSHOT_MAGIC);
    out.push(SNAPSHOT_VERSION);
    out.push(kind);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&payload_len.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    debug_assert_eq!(out.len(), FRAME_OVERHEAD_BYTES + payload.len());
    out
}

pub(crate) fn header_chunk(applied_index: u64, entry_count: u64) -> Vec<u8> {
    let mut payload = Vec::with_capacity(16);
    payload.extend_from_slice(&applied_index.to_le_bytes());
    payload.extend_from_slice(&entry_count.to_le_bytes());
    frame(KIND_HEADER, 0, &payload)
}

pub(crate) fn entries_chunk(seq: u32, payload: &[u8]) -> Vec<u8> {
    assert!(seq > 0, "entry chunks follow the header");
    frame(KIND_ENTRIES, seq, payload)
}

pub(crate) fn footer_chunk(seq: u32, entry_count: u64) -> Vec<u8> {
    assert!(seq > 0, "the footer follows the header");
    frame(KIND_FOOTER, seq, &entry_count.to_le_bytes())
}

/// Appends one entry to an entries payload.
pub(crate) fn push_entry(payload: &mut Vec<u8>, entry: &SnapshotEntry) {
    let key_len = u32::try_from(entry.key.len()).expect("keys are bounded by the request size");
    let value_len =
        u32::try_from(entry.value.len()).expect("values are bounded by VALUE_BYTES_MAX");
    payload.extend_from_slice(&key_len.to_le_bytes());
    payload.extend_from_slice(&entry.key);
    payload.extend_from_slice(&entry.expire_at_ms.to_le_bytes());
    payload.push(entry.kind.byte());
    payload.extend_from_slice(&value_len.to_le_bytes());
    payload.extend_from_slice(&entry.value);
}

/// A bounds-checked cursor over untrusted bytes.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("took 4")))
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("took 8")))
    }
}

/// Splits a whole snapshot, its chunks laid end to end, back into chunks by their
/// length fields. A trailing piece too short to be a chunk is returned as one, so the
/// chunk checks reject it.
pub(crate) fn split_chunks(mut bytes: &[u8]) -> Vec<&[u8]> {
    let mut chunks = Vec::new();
    while !bytes.is_empty() {
        let len = bytes
            .get(FRAME_HEAD_BYTES - 4..FRAME_HEAD_BYTES)
            .map_or(bytes.len(), |field| {
                let payload_len = u32::from_le_bytes(field.try_into().expect("four bytes"));
                FRAME_OVERHEAD_BYTES.saturating_add(payload_len as usize)
            })
            .min(bytes.len());
        let (chunk, rest) = bytes.split_at(len);
        chunks.push(chunk);
        bytes = rest;
    }
    chunks
}

fn corrupt(seq: u64, reason: &'static str) -> StoreError {
    StoreError::SnapshotCorrupt { chunk: seq, reason }
}

/// Checks one chunk's frame and decodes its payload; `expected_seq` is its position.
pub(crate) fn decode_chunk(bytes: &[u8], expected_seq: u32) -> Result<Chunk, StoreError> {
    let at = u64::from(expected_seq);
    if bytes.len() < FRAME_OVERHEAD_BYTES {
        return Err(corrupt(at, "chunk shorter than its frame"));
    }
    let (body, crc_bytes) = bytes.split_at(bytes.len() - 4);
    let crc = u32::from_le_bytes(crc_bytes.try_into().expect("split 4"));
    if crc32c::crc32c(body) != crc {
        return Err(corrupt(at, "checksum mismatch"));
    }
    let mut reader = Reader { bytes: body };
    let magic = reader.take(4).ok_or_else(|| corrupt(at, "short frame"))?;
    if magic != SNAPSHOT_MAGIC {
        return Err(corrupt(at, "bad magic"));
    }
    let head = reader.take(2).ok_or_else(|| corrupt(at, "short frame"))?;
    let version = head[0];
    if version != SNAPSHOT_VERSION && version != SNAPSHOT_VERSION_STRINGS_ONLY {
        return Err(StoreError::SnapshotVersion {
            found: version,
            expected: SNAPSHOT_VERSION,
        });
    }
    let kind = head[1];
    let seq = reader.u32().ok_or_else(|| corrupt(at, "short frame"))?;
    if seq != expected_seq {
        return Err(corrupt(at, "chunk out of sequence"));
    }
    let payload_len = reader.u32().ok_or_else(|| corrupt(at, "short frame"))?;
    if usize::try_from(payload_len).ok() != Some(reader.bytes.len()) {
        return Err(corrupt(at, "payload length disagrees with the chunk size"));
    }
    let mut payload = Reader {
        bytes: reader.bytes,
    };
    let chunk = match (kind, seq) {
        (KIND_HEADER, 0) => {
            let applied_index = payload.u64().ok_or_else(|| corrupt(at, "short header"))?;
            let entry_count = payload.u64().ok_or_else(|| corrupt(at, "short header"))?;
            Chunk::Header {
                applied_index,
                entry_count,
            }
        }
        (KIND_HEADER, _) => return Err(corrupt(at, "header after the first chunk")),
        (_, 0) => return Err(corrupt(at, "first chunk is not a header")),
        (KIND_ENTRIES, _) => Chunk::Entries(decode_entries(&mut payload, version, at)?),
        (KIND_FOOTER, _) => {
            let entry_count = payload.u64().ok_or_else(|| corrupt(at, "short footer"))?;
            Chunk::Footer { entry_count }
        }
        _ => return Err(corrupt(at, "unknown chunk kind")),
    };
    if !payload.bytes.is_empty() {
        return Err(corrupt(at, "trailing bytes in chunk payload"));
    }
    Ok(chunk)
}

fn decode_entries(
    payload: &mut Reader<'_>,
    version: u8,
    at: u64,
) -> Result<Vec<SnapshotEntry>, StoreError> {
    let mut entries = Vec::new();
    while !payload.bytes.is_empty() {
        let short = || corrupt(at, "truncated entry");
        let key_len = payload.u32().ok_or_else(short)? as usize;
        let key = payload.take(key_len).ok_or_else(short)?.to_vec();
        let expire_at_ms = payload.u64().ok_or_else(short)?;
        let kind = if version == SNAPSHOT_VERSION_STRINGS_ONLY {
            ValueKind::String
        } else {
            let byte = payload.u8().ok_or_else(short)?;
            ValueKind::from_byte(byte).ok_or_else(|| corrupt(at, "entry of an unknown kind"))?
        };
        let value_len = payload.u32().ok_or_else(short)? as usize;
        let value = payload.take(value_len).ok_or_else(short)?.to_vec();
        let decodes = match kind {
            ValueKind::String => true,
            ValueKind::Hash => Fields::decode(&value).is_ok(),
            ValueKind::Set => Members::decode(&value).is_ok(),
            ValueKind::List => crate::packed::spans(&value).is_ok(),
            ValueKind::ZSet => crate::zset::SortedSet::decode(&value).is_ok(),
            ValueKind::Stream => crate::stream::Stored::parse(&value).is_ok(),
        };
        if !decodes {
            return Err(corrupt(at, "collection entry that does not decode"));
        }
        entries.push(SnapshotEntry {
            key,
            expire_at_ms,
            kind,
            value,
        });
    }
    if entries.is_empty() {
        return Err(corrupt(at, "empty entries chunk"));
    }
    Ok(entries)
}

/// Checks the order of chunks across a whole snapshot.
#[derive(Debug, Default)]
pub(crate) struct SnapshotChecker {
    next_seq: u32,
    applied_index: Option<u64>,
    announced: u64,
    seen: u64,
    last_key: Option<Vec<u8>>,
    finished: bool,
}

impl SnapshotChecker {
    /// Decodes the next chunk and checks it against everything seen so far.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Result<Chunk, StoreError> {
        let at = u64::from(self.next_seq);
        if self.finished {
            return Err(corrupt(at, "chunk after the footer"));
        }
        let chunk = decode_chunk(bytes, self.next_seq)?;
        self.next_seq = self
            .next_seq
            .checked_add(1)
            .ok_or_else(|| corrupt(at, "too many chunks"))?;
        match &chunk {
            Chunk::Header {
                applied_index,
                entry_count,
            } => {
                self.applied_index = Some(*applied_index);
                self.announced = *entry_count;
            }
            Chunk::Entries(entries) => {
                for entry in entries {
                    if self
                        .last_key
                        .as_ref()
                        .is_some_and(|last| *last >= entry.key)
                    {
                        return Err(corrupt(at, "keys not strictly increasing"));
                    }
                    self.last_key = Some(entry.key.clone());
                }
                self.seen += entries.len() as u64;
                if self.seen > self.announced {
                    return Err(corrupt(at, "more entries than the header announced"));
                }
            }
            Chunk::Footer { entry_count } => {
                if *entry_count != self.announced || self.seen != self.announced {
                    return Err(corrupt(at, "entry count disagrees with the header"));
                }
                self.finished = true;
            }
        }
        Ok(chunk)
    }

    /// The applied index from the header, once the footer has been checked.
    pub(crate) fn finish(&self) -> Result<(u64, u64), StoreError> {
        match (self.finished, self.applied_index) {
            (true, Some(index)) => Ok((index, self.seen)),
            _ => Err(StoreError::SnapshotIncomplete {
                chunks: u64::from(self.next_seq),
            }),
        }
    }
}
