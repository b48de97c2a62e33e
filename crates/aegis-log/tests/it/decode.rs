//! Decoders and recovery never panic, whatever the bytes.

use std::sync::Arc;

use aegis_log::format::{self, Record, decode_frame, decode_segment_header, encode_segment_header};
use aegis_log::{Log, MemVfs};
use proptest::prelude::*;

use crate::support::{dir, small_config};

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok((payload, used)) = decode_frame(&bytes, 1 << 20) {
            prop_assert!(used <= bytes.len());
            let _ = Record::decode(payload);
        }
        let _ = Record::decode(&bytes);
        let _ = decode_segment_header(&bytes);
        let _ = format::decode_state(&bytes, 1 << 20);
    }

    #[test]
    fn frames_round_trip(group: u64, index: u64, term: u64,
                         data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let record = Record::Entry { group, index, term, data: &data };
        let mut buf = Vec::new();
        record.encode_framed(&mut buf);
        let (payload, used) = decode_frame(&buf, 1 << 20).unwrap();
        prop_assert_eq!(used, buf.len());
        prop_assert_eq!(Record::decode(payload).unwrap(), record);
    }

    #[test]
    fn recovery_never_panics_on_arbitrary_segments(
        body in proptest::collection::vec(any::<u8>(), 0..512),
        with_header: bool,
        second in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let vfs = MemVfs::new();
        let mut bytes = if with_header { encode_segment_header(1).to_vec() } else { Vec::new() };
        bytes.extend_from_slice(&body);
        vfs.write_durable(&dir().join(format!("{:020}.wal", 1)), &bytes);
        vfs.write_durable(&dir().join(format!("{:020}.wal", 2)), &second);
        vfs.write_durable(&dir().join(format!("group-{:020}.state", 3)), &body);
        let _ = Log::open_with(Arc::new(vfs), dir(), small_config());
    }
}
