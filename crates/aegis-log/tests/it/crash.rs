//! Crash safety by exhaustion: cut or damage the last records at every byte offset and
//! check what reopening yields.

use std::sync::Arc;

use aegis_log::format::{ENTRY_HEADER_LEN, FRAME_HEADER_LEN, SEGMENT_HEADER_LEN};
use aegis_log::{Error, Log, LogConfig, MemVfs, StdVfs, Vfs};

use crate::support::{all_entries, data_for, dir, never_sync, open_mem};

const GROUP: u64 = 11;
const SIZES: [usize; 6] = [5, 40, 1, 120, 17, 64];

fn config() -> LogConfig {
    LogConfig {
        segment_bytes_max: 16 << 10,
        record_bytes_max: 4096,
        ..LogConfig::default()
    }
}

/// Writes one entry per size and returns the segment's bytes and each record's
/// `(start, end)` offsets.
fn write_sample(vfs: &MemVfs) -> (Vec<u8>, Vec<(usize, usize)>) {
    let log = open_mem(vfs, config());
    let mut bounds = Vec::new();
    let mut at = SEGMENT_HEADER_LEN;
    for (i, &len) in SIZES.iter().enumerate() {
        let index = i as u64 + 1;
        log.append(GROUP, index, 1, &data_for(GROUP, index, len))
            .unwrap();
        let end = at + FRAME_HEADER_LEN + ENTRY_HEADER_LEN + len;
        bounds.push((at, end));
        at = end;
    }
    drop(log);
    let bytes = vfs.read(&segment_path()).unwrap();
    // The records, as the format lays them out, then space allocated ahead as zeros.
    assert!(bytes.len() > at);
    assert!(bytes[at..].iter().all(|&b| b == 0));
    (bytes, bounds)
}

fn segment_path() -> std::path::PathBuf {
    dir().join(format!("{:020}.wal", 1))
}

fn check_prefix(log: &Log, count: usize) {
    let entries = all_entries(log, GROUP);
    assert_eq!(entries.len(), count);
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.data, data_for(GROUP, i as u64 + 1, SIZES[i]));
    }
}

#[test]
fn a_cut_at_any_offset_in_the_last_records_keeps_exactly_the_whole_records() {
    let (bytes, bounds) = write_sample(&MemVfs::new());
    let from = bounds[bounds.len() - 3].0;
    let end = bounds[bounds.len() - 1].1;
    for cut in from..=end {
        let vfs = MemVfs::new();
        vfs.write_durable(&segment_path(), &bytes[..cut]);
        let log = open_mem(&vfs, config());
        let whole = bounds.iter().filter(|(_, end)| *end <= cut).count();
        check_prefix(&log, whole);
        // The log continues right after the last whole record, and that survives too.
        let next = whole as u64 + 1;
        log.append(GROUP, next, 2, b"after recovery").unwrap();
        drop(log);
        let log = open_mem(&vfs, config());
        assert_eq!(log.last_index(GROUP), Some(next), "cut at {cut}");
        assert_eq!(
            log.entry(GROUP, next).unwrap().unwrap().data,
            b"after recovery"
        );
    }
}

#[test]
fn damage_in_the_last_record_is_a_torn_tail_and_earlier_damage_is_an_error() {
    let (bytes, bounds) = write_sample(&MemVfs::new());
    let from = bounds[bounds.len() - 3].0;
    let last_start = bounds[bounds.len() - 1].0;
    let end = bounds[bounds.len() - 1].1;
    // Damage in the zero-filled space after the records counts as a torn tail too.
    for at in (from..end).chain([end, end + 1, end + 700, bytes.len() - 1]) {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut damaged = bytes.clone();
            damaged[at] ^= flip;
            let vfs = MemVfs::new();
            vfs.write_durable(&segment_path(), &damaged);
            let result = Log::open_with(Arc::new(vfs), dir(), config());
            if at >= end {
                check_prefix(&result.unwrap(), SIZES.len());
            } else if at >= last_start {
                check_prefix(&result.unwrap(), SIZES.len() - 1);
            } else {
                let record = bounds.iter().position(|&(s, e)| s <= at && at < e).unwrap();
                match result {
                    Err(Error::Corrupt { path, offset, .. }) => {
                        assert_eq!(path, segment_path());
                        assert_eq!(offset, bounds[record].0 as u64, "damage at {at}");
                    }
                    other => panic!("damage at {at} (flip {flip:#x}) gave {other:?}"),
                }
            }
        }
    }
}

#[test]
fn damage_in_a_sealed_segment_is_an_error_even_at_its_end() {
    let vfs = MemVfs::new();
    let config = LogConfig {
        segment_bytes_max: 512,
        record_bytes_max: 128,
        ..config()
    };
    let log = open_mem(&vfs, config.clone());
    for index in 1..=20 {
        log.append(GROUP, index, 1, &data_for(GROUP, index, 50))
            .unwrap();
    }
    drop(log);
    let first = dir().join(format!("{:020}.wal", 1));
    let mut bytes = vfs.read(&first).unwrap();
    let len = bytes.len();
    bytes.truncate(len - 3);
    vfs.write_durable(&first, &bytes);
    let err = Log::open_with(Arc::new(vfs), dir(), config).unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { path, .. } if *path == first),
        "{err}"
    );
}

#[test]
fn damaged_or_missing_segments_are_named() {
    let vfs = MemVfs::new();
    let config = LogConfig {
        segment_bytes_max: 512,
        record_bytes_max: 128,
        ..config()
    };
    let log = open_mem(&vfs, config.clone());
    for index in 1..=20 {
        log.append(GROUP, index, 1, &data_for(GROUP, index, 50))
            .unwrap();
    }
    drop(log);
    let second = dir().join(format!("{:020}.wal", 2));
    let good = vfs.read(&second).unwrap();
    let mut bad_header = good.clone();
    bad_header[3] ^= 1;
    vfs.write_durable(&second, &bad_header);
    let err = Log::open_with(Arc::new(vfs.clone()), dir(), config.clone()).unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { path, offset: 0, .. } if *path == second),
        "{err}"
    );

    vfs.write_durable(&second, &good);
    vfs.remove(&second).unwrap();
    vfs.sync_dir(&dir()).unwrap();
    let err = Log::open_with(Arc::new(vfs), dir(), config).unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { path, .. } if *path == second),
        "{err}"
    );
}

#[test]
fn a_segment_torn_during_creation_is_reused() {
    let vfs = MemVfs::new();
    let log = open_mem(&vfs, config());
    log.append(GROUP, 1, 1, b"one").unwrap();
    drop(log);
    for torn in [&[][..], &[0u8; 7][..], &[0u8; SEGMENT_HEADER_LEN][..]] {
        let copy = vfs.crash(None);
        // A roll trims the sealed segment's space allocated ahead before creating the
        // next one; do the same here.
        let first = dir().join(format!("{:020}.wal", 1));
        let mut sealed = copy.read(&first).unwrap();
        while sealed.last() == Some(&0) {
            sealed.pop();
        }
        copy.write_durable(&first, &sealed);
        copy.write_durable(&dir().join(format!("{:020}.wal", 2)), torn);
        let log = open_mem(&copy, config());
        assert_eq!(log.last_index(GROUP), Some(1));
        log.append(GROUP, 2, 1, b"two").unwrap();
        drop(log);
        let log = open_mem(&copy, config());
        assert_eq!(log.last_index(GROUP), Some(2));
    }
}

#[test]
fn cuts_on_the_real_file_system() {
    let tmp = tempfile::tempdir().unwrap();
    let config = never_sync(config());
    let path = tmp.path().join(format!("{:020}.wal", 1));
    {
        let log = Log::open(tmp.path(), config.clone()).unwrap();
        for (i, &len) in SIZES.iter().enumerate() {
            let index = i as u64 + 1;
            log.append(GROUP, index, 1, &data_for(GROUP, index, len))
                .unwrap();
        }
    }
    let bytes = std::fs::read(&path).unwrap();
    let used: usize = SEGMENT_HEADER_LEN
        + SIZES
            .iter()
            .map(|len| FRAME_HEADER_LEN + ENTRY_HEADER_LEN + len)
            .sum::<usize>();
    assert!(
        bytes[used..].iter().all(|&b| b == 0),
        "space allocated ahead is zeros"
    );
    let tail = FRAME_HEADER_LEN + ENTRY_HEADER_LEN + SIZES[SIZES.len() - 1];
    for cut in used - tail..=used {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let log = Log::open_with(Arc::new(StdVfs), tmp.path(), config.clone()).unwrap();
        let whole = if cut == used {
            SIZES.len()
        } else {
            SIZES.len() - 1
        };
        check_prefix(&log, whole);
        drop(log);
        let kept = if cut == used { used } else { used - tail };
        assert_eq!(
            std::fs::metadata(&path).unwrap().len() as usize,
            kept,
            "cut at {cut}"
        );
    }
}

#[test]
fn lost_sectors_inside_unsynced_writes_are_a_torn_tail() {
    let vfs = MemVfs::new();
    let log = open_mem(&vfs, config());
    let mut ends = Vec::new();
    let mut at = SEGMENT_HEADER_LEN;
    for index in 1..=12u64 {
        log.append(GROUP, index, 1, &data_for(GROUP, index, 300))
            .unwrap();
        at += FRAME_HEADER_LEN + ENTRY_HEADER_LEN + 300;
        ends.push(at);
    }
    drop(log);
    let bytes = vfs.read(&segment_path()).unwrap();
    // Pages that never reached the disk read back as the zeros allocated ahead, while
    // later pages of the same write did arrive.
    for sector in (1024..at - 1024).step_by(512) {
        let mut torn = bytes.clone();
        torn[sector..sector + 512].fill(0);
        let copy = MemVfs::new();
        copy.write_durable(&segment_path(), &torn);
        let log = open_mem(&copy, config());
        let whole = ends.iter().filter(|&&end| end <= sector).count();
        assert_eq!(
            log.last_index(GROUP),
            Some(whole as u64),
            "sector at {sector}"
        );
    }
}
