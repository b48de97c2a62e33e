//! The bytes on disk: segment headers, record frames, record payloads and group-state
//! files. Everything here is a pure function over byte slices; decoders return
//! [`DecodeError`] on any input and never panic. `docs/log-format.md` describes the same
//! layout in prose.

/// First eight bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"AEGISWAL";
/// First eight bytes of every group-state file.
pub const STATE_MAGIC: [u8; 8] = *b"AEGISSTA";
/// The on-disk format version written by this crate and the only one it reads.
pub const FORMAT_VERSION: u32 = 1;
/// Length of a segment header: magic, version, reserved, sequence number, checksum,
/// reserved.
pub const SEGMENT_HEADER_LEN: usize = 32;
/// Length of a record frame header: payload length then checksum, both `u32` LE.
pub const FRAME_HEADER_LEN: usize = 8;
/// Length of a group-state file header: magic, version, body length, checksum.
pub const STATE_HEADER_LEN: usize = 20;
/// Hard upper bound for `record_bytes_max` and `state_bytes_max` (256 MiB).
pub const RECORD_BYTES_LIMIT: u32 = 256 << 20;
/// Bytes an entry record spends before the entry's data.
pub const ENTRY_HEADER_LEN: usize = 25;
/// Length of the fixed part of a group-state body.
pub const STATE_BODY_FIXED_LEN: usize = 33;

const KIND_ENTRY: u8 = 1;
const KIND_TRUNCATE_SUFFIX: u8 = 2;
const KIND_COMPACT: u8 = 3;
const MARKER_LEN: usize = 17;

const _: () = assert!(RECORD_BYTES_LIMIT as u64 <= u32::MAX as u64);
const _: () = assert!(ENTRY_HEADER_LEN == 1 + 8 + 8 + 8);
const _: () = assert!(MARKER_LEN == 1 + 8 + 8);

/// Why a byte sequence does not decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ends before the structure does (`needed` bytes in all, `available` given).
    #[error("truncated: need {needed} bytes, have {available}")]
    Truncated {
        /// Bytes the structure needs from the start of the input.
        needed: u64,
        /// Bytes the input has.
        available: u64,
    },
    /// A length field is zero or above the limit.
    #[error("length {len} outside 1..={max}")]
    BadLength {
        /// The length read.
        len: u64,
        /// The largest length accepted.
        max: u64,
    },
    /// The stored checksum does not match the bytes.
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    BadChecksum {
        /// The checksum found on disk.
        stored: u32,
        /// The checksum of the bytes found on disk.
        computed: u32,
    },
    /// The magic bytes are wrong: this is not a file of this kind.
    #[error("bad magic")]
    BadMagic,
    /// The file was written by an unknown format version.
    #[error("unsupported format version {version}")]
    BadVersion {
        /// The version found.
        version: u32,
    },
    /// A record payload has an unknown kind byte or the wrong length for its kind.
    #[error("malformed record: {reason}")]
    BadRecord {
        /// What is wrong.
        reason: &'static str,
    },
}

/// One logical record inside a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// A log entry of a group.
    Entry {
        /// The Raft group.
        group: u64,
        /// The entry's index.
        index: u64,
        /// The entry's term.
        term: u64,
        /// The entry's opaque data.
        data: &'a [u8],
    },
    /// Every entry of `group` at or after `index` is removed.
    TruncateSuffix {
        /// The Raft group.
        group: u64,
        /// The first removed index.
        index: u64,
    },
    /// Every entry of `group` before `index` is removed; `index` becomes the group's
    /// first index.
    Compact {
        /// The Raft group.
        group: u64,
        /// The new first index.
        index: u64,
    },
}

impl Record<'_> {
    /// Length of the encoded payload.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        match self {
            Record::Entry { data, .. } => ENTRY_HEADER_LEN + data.len(),
            Record::TruncateSuffix { .. } | Record::Compact { .. } => MARKER_LEN,
        }
    }

    /// Appends the framed record (frame header and payload) to `out`.
    pub fn encode_framed(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let len = self.encoded_len();
        assert!(
            len <= RECORD_BYTES_LIMIT as usize,
            "record too large to frame"
        );
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        match *self {
            Record::Entry {
                group,
                index,
                term,
                data,
            } => {
                out.push(KIND_ENTRY);
                put_u64s(out, &[group, index, term]);
                out.extend_from_slice(data);
            }
            Record::TruncateSuffix { group, index } => {
                out.push(KIND_TRUNCATE_SUFFIX);
                put_u64s(out, &[group, index]);
            }
            Record::Compact { group, index } => {
                out.push(KIND_COMPACT);
                put_u64s(out, &[group, index]);
            }
        }
        let crc = frame_crc(&out[start..start + 4], &out[start + FRAME_HEADER_LEN..]);
        out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        debug_assert_eq!(out.len() - start, FRAME_HEADER_LEN + len);
    }

    /// Decodes a record payload (the bytes inside a frame).
    pub fn decode(payload: &[u8]) -> Result<Record<'_>, DecodeError> {
        let Some((&kind, rest)) = payload.split_first() else {
            return Err(DecodeError::BadRecord {
                reason: "empty payload",
            });
        };
        match kind {
            KIND_ENTRY => {
                if payload.len() < ENTRY_HEADER_LEN {
                    return Err(DecodeError::BadRecord {
                        reason: "entry header too short",
                    });
                }
                Ok(Record::Entry {
                    group: get_u64(rest, 0),
                    index: get_u64(rest, 8),
                    term: get_u64(rest, 16),
                    data: &payload[ENTRY_HEADER_LEN..],
                })
            }
            KIND_TRUNCATE_SUFFIX | KIND_COMPACT => {
                if payload.len() != MARKER_LEN {
                    return Err(DecodeError::BadRecord {
                        reason: "marker has the wrong length",
                    });
                }
                let (group, index) = (get_u64(rest, 0), get_u64(rest, 8));
                Ok(if kind == KIND_COMPACT {
                    Record::Compact { group, index }
                } else {
                    Record::TruncateSuffix { group, index }
                })
            }
            _ => Err(DecodeError::BadRecord {
                reason: "unknown record kind",
            }),
        }
    }
}

/// Checksum of a frame: CRC32C over the length field and then the payload, so a
/// corrupted length is caught as surely as a corrupted payload.
#[must_use]
pub fn frame_crc(len_bytes: &[u8], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(len_bytes), payload)
}

/// Decodes the frame at the start of `buf`, returning its payload and the total number
/// of bytes it occupies. A frame whose payload length is 0 or above `record_bytes_max`
/// is rejected before any checksum is computed.
pub fn decode_frame(buf: &[u8], record_bytes_max: u32) -> Result<(&[u8], usize), DecodeError> {
    if buf.len() < FRAME_HEADER_LEN {
        return Err(DecodeError::Truncated {
            needed: FRAME_HEADER_LEN as u64,
            available: buf.len() as u64,
        });
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if len == 0 || len > record_bytes_max {
        return Err(DecodeError::BadLength {
            len: len.into(),
            max: record_bytes_max.into(),
        });
    }
    let total = FRAME_HEADER_LEN + len as usize;
    if buf.len() < total {
        return Err(DecodeError::Truncated {
            needed: total as u64,
            available: buf.len() as u64,
        });
    }
    let stored = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let payload = &buf[FRAME_HEADER_LEN..total];
    let computed = frame_crc(&buf[..4], payload);
    if stored != computed {
        return Err(DecodeError::BadChecksum { stored, computed });
    }
    Ok((payload, total))
}

/// Encodes the header of segment number `seq`.
#[must_use]
pub fn encode_segment_header(seq: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h[..8].copy_from_slice(&SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&seq.to_le_bytes());
    let crc = crc32c::crc32c(&h[..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Decodes a segment header and returns the segment's sequence number.
pub fn decode_segment_header(buf: &[u8]) -> Result<u64, DecodeError> {
    if buf.len() < SEGMENT_HEADER_LEN {
        return Err(DecodeError::Truncated {
            needed: SEGMENT_HEADER_LEN as u64,
            available: buf.len() as u64,
        });
    }
    if buf[..8] != SEGMENT_MAGIC {
        return Err(DecodeError::BadMagic);
    }
    let stored = get_u32(buf, 24);
    let computed = crc32c::crc32c(&buf[..24]);
    if stored != computed {
        return Err(DecodeError::BadChecksum { stored, computed });
    }
    let version = get_u32(buf, 8);
    if version != FORMAT_VERSION {
        return Err(DecodeError::BadVersion { version });
    }
    if get_u32(buf, 12) != 0 || get_u32(buf, 28) != 0 {
        return Err(DecodeError::BadRecord {
            reason: "reserved header bytes are not zero",
        });
    }
    Ok(get_u64(buf, 16))
}

/// A group's hard state: what Raft must never forget about its own votes and progress.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HardState {
    /// The current term.
    pub term: u64,
    /// The node voted for in `term`, if any.
    pub vote: Option<u64>,
    /// The highest index known to be committed.
    pub commit: u64,
}

/// Everything stored about a group outside its entries: the hard state and an opaque
/// metadata blob (for example the membership configuration), written atomically
/// together.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct GroupState {
    /// The hard state.
    pub hard_state: HardState,
    /// Caller-defined bytes, at most `state_bytes_max` long.
    pub metadata: Vec<u8>,
}

/// Encodes a whole group-state file.
#[must_use]
pub fn encode_state(group: u64, state: &GroupState) -> Vec<u8> {
    let body_len = STATE_BODY_FIXED_LEN + state.metadata.len();
    assert!(body_len <= RECORD_BYTES_LIMIT as usize + STATE_BODY_FIXED_LEN);
    let mut out = Vec::with_capacity(STATE_HEADER_LEN + body_len);
    out.extend_from_slice(&STATE_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    let hs = state.hard_state;
    put_u64s(&mut out, &[group, hs.term, hs.commit]);
    out.push(u8::from(hs.vote.is_some()));
    put_u64s(&mut out, &[hs.vote.unwrap_or(0)]);
    out.extend_from_slice(&state.metadata);
    let crc = crc32c::crc32c(&out[8..16]);
    let crc = crc32c::crc32c_append(crc, &out[STATE_HEADER_LEN..]);
    out[16..20].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes a group-state file, returning the group id stored in it and the state.
pub fn decode_state(buf: &[u8], state_bytes_max: u32) -> Result<(u64, GroupState), DecodeError> {
    if buf.len() < STATE_HEADER_LEN {
        return Err(DecodeError::Truncated {
            needed: STATE_HEADER_LEN as u64,
            available: buf.len() as u64,
        });
    }
    if buf[..8] != STATE_MAGIC {
        return Err(DecodeError::BadMagic);
    }
    let version = get_u32(buf, 8);
    if version != FORMAT_VERSION {
        return Err(DecodeError::BadVersion { version });
    }
    let body_len = u64::from(get_u32(buf, 12));
    let max = STATE_BODY_FIXED_LEN as u64 + u64::from(state_bytes_max);
    if body_len < STATE_BODY_FIXED_LEN as u64 || body_len > max {
        return Err(DecodeError::BadLength { len: body_len, max });
    }
    let total = STATE_HEADER_LEN as u64 + body_len;
    if buf.len() as u64 != total {
        return Err(DecodeError::Truncated {
            needed: total,
            available: buf.len() as u64,
        });
    }
    let stored = get_u32(buf, 16);
    let computed = crc32c::crc32c_append(crc32c::crc32c(&buf[8..16]), &buf[STATE_HEADER_LEN..]);
    if stored != computed {
        return Err(DecodeError::BadChecksum { stored, computed });
    }
    let body = &buf[STATE_HEADER_LEN..];
    let vote = match body[24] {
        0 => None,
        1 => Some(get_u64(body, 25)),
        _ => {
            return Err(DecodeError::BadRecord {
                reason: "vote tag is neither 0 nor 1",
            });
        }
    };
    let hard_state = HardState {
        term: get_u64(body, 8),
        vote,
        commit: get_u64(body, 16),
    };
    let metadata = body[STATE_BODY_FIXED_LEN..].to_vec();
    Ok((
        get_u64(body, 0),
        GroupState {
            hard_state,
            metadata,
        },
    ))
}

fn put_u64s(out: &mut Vec<u8>, values: &[u64]) {
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Reads a `u64` LE at `at`; callers have checked the length.
fn get_u64(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(b)
}

fn get_u32(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let records = [
            Record::Entry {
                group: 7,
                index: 9,
                term: 3,
                data: b"hello",
            },
            Record::Entry {
                group: u64::MAX,
                index: 1,
                term: 0,
                data: b"",
            },
            Record::TruncateSuffix { group: 1, index: 2 },
            Record::Compact { group: 3, index: 4 },
        ];
        let mut buf = Vec::new();
        for r in &records {
            r.encode_framed(&mut buf);
        }
        let mut at = 0;
        for r in &records {
            let (payload, used) = decode_frame(&buf[at..], 1 << 20).unwrap();
            assert_eq!(Record::decode(payload).unwrap(), *r);
            at += used;
        }
        assert_eq!(at, buf.len());
    }

    #[test]
    fn zeros_never_decode() {
        assert!(matches!(
            decode_frame(&[0; 64], 1 << 20),
            Err(DecodeError::BadLength { .. })
        ));
        assert!(decode_segment_header(&[0; 64]).is_err());
        assert!(decode_state(&[0; 64], 1 << 20).is_err());
    }

    #[test]
    fn header_and_state_round_trip() {
        assert_eq!(decode_segment_header(&encode_segment_header(42)), Ok(42));
        let state = GroupState {
            hard_state: HardState {
                term: 5,
                vote: Some(2),
                commit: 11,
            },
            metadata: b"conf".to_vec(),
        };
        let bytes = encode_state(9, &state);
        assert_eq!(decode_state(&bytes, 16), Ok((9, state)));
        assert!(matches!(
            decode_state(&bytes, 3),
            Err(DecodeError::BadLength { .. })
        ));
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let mut buf = Vec::new();
        Record::Entry {
            group: 1,
            index: 2,
            term: 3,
            data: b"payload",
        }
        .encode_framed(&mut buf);
        for bit in 0..buf.len() * 8 {
            let mut copy = buf.clone();
            copy[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode_frame(&copy, 1 << 20).is_err(),
                "bit {bit} flip undetected"
            );
        }
    }
}
