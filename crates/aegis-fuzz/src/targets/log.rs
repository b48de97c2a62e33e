//! Write-ahead log bytes: segment headers, record frames and payloads, group state.

use aegis_log::HardState;
use aegis_log::format::{
    self, FRAME_HEADER_LEN, GroupState, Record, SEGMENT_HEADER_LEN, SEGMENT_MAGIC,
    STATE_HEADER_LEN, STATE_MAGIC,
};

use crate::engine::Verdict;

/// The record and state limits the target decodes with: small, so lengths reach them.
const RECORD_BYTES_MAX: u32 = 16 * 1024;
const STATE_BYTES_MAX: u32 = 4 * 1024;

fn segment(seq: u64, records: &[Record<'_>]) -> Vec<u8> {
    let mut out = format::encode_segment_header(seq).to_vec();
    for record in records {
        record.encode_framed(&mut out);
    }
    out
}

pub(crate) fn seeds() -> Vec<Vec<u8>> {
    let data: Vec<u8> = (0..700_u32).map(|i| (i * 13) as u8).collect();
    let entry = |group, index, len: usize| Record::Entry {
        group,
        index,
        term: index / 4 + 1,
        data: &data[..len],
    };
    vec![
        format::encode_segment_header(0).to_vec(),
        segment(1, &[entry(1, 1, 0), entry(1, 2, 10), entry(2, 1, 700)]),
        segment(
            u64::MAX,
            &[
                entry(7, 10, 3),
                Record::TruncateSuffix { group: 7, index: 9 },
                Record::Compact { group: 7, index: 5 },
            ],
        ),
        format::encode_state(1, &GroupState::default()),
        format::encode_state(
            u64::MAX,
            &GroupState {
                hard_state: HardState {
                    term: 12,
                    vote: Some(3),
                    commit: 40,
                },
                metadata: data[..200].to_vec(),
            },
        ),
    ]
}

/// Rewrites the checksums of a segment header and every whole frame behind it, or of
/// a group-state file, whichever the input starts like.
pub(crate) fn fixup(input: &mut [u8]) {
    if input.starts_with(&STATE_MAGIC) && input.len() >= STATE_HEADER_LEN {
        let crc = crc32c::crc32c_append(crc32c::crc32c(&input[8..16]), &input[STATE_HEADER_LEN..]);
        input[16..20].copy_from_slice(&crc.to_le_bytes());
        return;
    }
    let mut at = 0;
    if input.starts_with(&SEGMENT_MAGIC) && input.len() >= SEGMENT_HEADER_LEN {
        let crc = crc32c::crc32c(&input[..24]);
        input[24..28].copy_from_slice(&crc.to_le_bytes());
        at = SEGMENT_HEADER_LEN;
    }
    while let Some(head) = input.get(at..at + FRAME_HEADER_LEN) {
        let len = u32::from_le_bytes(head[..4].try_into().expect("four bytes")) as usize;
        let end = at + FRAME_HEADER_LEN + len;
        if len == 0 || end > input.len() {
            break;
        }
        let crc = format::frame_crc(&input[at..at + 4], &input[at + FRAME_HEADER_LEN..end]);
        input[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        at = end;
    }
}

/// Reads the input as a segment (a header, then frames until one does not decode) and
/// as a group-state file, with round trips of everything that decodes. Accepted when
/// either reading consumed the whole input.
pub(crate) fn run(input: &[u8]) -> Verdict {
    let mut at = 0;
    if let Ok(seq) = format::decode_segment_header(input) {
        assert_eq!(
            format::decode_segment_header(&format::encode_segment_header(seq)),
            Ok(seq)
        );
        at = SEGMENT_HEADER_LEN;
    }
    let segment_read = at > 0;
    while at < input.len() {
        let Ok((payload, used)) = format::decode_frame(&input[at..], RECORD_BYTES_MAX) else {
            break;
        };
        assert!(used > FRAME_HEADER_LEN && at + used <= input.len());
        if let Ok(record) = Record::decode(payload) {
            let mut framed = Vec::new();
            record.encode_framed(&mut framed);
            let (again, again_used) =
                format::decode_frame(&framed, RECORD_BYTES_MAX).expect("a re-framed record");
            assert_eq!(again_used, framed.len());
            assert_eq!(
                Record::decode(again),
                Ok(record),
                "record changed in a round trip"
            );
        }
        at += used;
    }
    let whole_segment = segment_read && at == input.len();
    let state_read = match format::decode_state(input, STATE_BYTES_MAX) {
        Ok((group, state)) => {
            let again = format::encode_state(group, &state);
            assert_eq!(
                format::decode_state(&again, STATE_BYTES_MAX),
                Ok((group, state)),
                "group state changed in a round trip"
            );
            true
        }
        Err(_) => false,
    };
    if whole_segment || state_read {
        Verdict::Accepted
    } else {
        Verdict::Rejected
    }
}
