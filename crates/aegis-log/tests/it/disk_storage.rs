//! `DiskStorage` answers exactly like aegis-raft's `MemStorage` and survives reopening.

use std::sync::Arc;

use aegis_log::{DiskStorage, Log, MemVfs, SNAPSHOT_SYNC_BYTES, Vfs};
use aegis_raft::{
    ConfState, Entry, EntryKind, HardState, LogIndex, MemStorage, SnapshotMeta, Storage,
    StorageError, Term,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::support::{dir, open_mem, small_config};

fn conf() -> ConfState {
    ConfState::with_voters(&[1, 2, 3])
}

fn entry(index: u64, term: u64, len: usize) -> Entry {
    let kind = if len == 0 {
        EntryKind::NoOp
    } else {
        EntryKind::Normal
    };
    Entry {
        term: Term(term),
        index: LogIndex(index),
        kind,
        data: crate::support::data_for(term, index, len).into(),
    }
}

fn assert_same(disk: &DiskStorage, mem: &MemStorage, rng: &mut ChaCha8Rng, seed: u64) {
    let (first, last) = (mem.first_index().unwrap(), mem.last_index().unwrap());
    assert_eq!(disk.first_index().unwrap(), first, "seed {seed}");
    assert_eq!(disk.last_index().unwrap(), last, "seed {seed}");
    for i in 0..=last.0 + 1 {
        let (d, m) = (disk.term(LogIndex(i)), mem.term(LogIndex(i)));
        assert_eq!(d.ok(), m.ok(), "seed {seed}: term({i})");
    }
    for _ in 0..10 {
        let lo = rng.random_range(first.0..=last.0 + 1);
        let hi = rng.random_range(lo..=last.0 + 1);
        let budget = rng.random_range(0..400);
        let d = disk.entries(LogIndex(lo), LogIndex(hi), budget).unwrap();
        let m = mem.entries(LogIndex(lo), LogIndex(hi), budget).unwrap();
        assert_eq!(d, m, "seed {seed}: entries({lo}, {hi}, {budget})");
    }
    assert!(matches!(
        disk.entries(first, LogIndex(last.0 + 2), 100),
        Err(StorageError::Unavailable { .. })
    ));
}

#[test]
fn matches_mem_storage_across_appends_overwrites_snapshots_compactions_and_reopens() {
    for seed in 0..8u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut vfs = MemVfs::new();
        let mut log = Arc::new(open_mem(&vfs, small_config()));
        let mut disk = DiskStorage::open(Arc::clone(&log), 4, conf()).unwrap();
        let mut mem = MemStorage::new(&[1, 2, 3]);
        let mut term = 1;
        for step in 0..80 {
            let last = mem.last_index().unwrap().0;
            // Entries a snapshot covers are never overwritten.
            let floor = mem.snapshot_meta().unwrap().index.0;
            let start = rng.random_range(floor + 1..=last + 1);
            term += rng.random_range(0..2);
            let batch: Vec<Entry> = (start..start + rng.random_range(1..5))
                .map(|i| entry(i, term, rng.random_range(0..60)))
                .collect();
            disk.append(&batch).unwrap();
            mem.append(&batch);
            let hs = HardState {
                term: Term(term),
                vote: Some(step % 3),
                commit: LogIndex(0),
            };
            if rng.random_range(0..5) == 0 {
                disk.set_hard_state(hs).unwrap();
                mem.set_hard_state(hs);
            }
            // Now and then a local snapshot, then a compaction that may keep a tail.
            let last = mem.last_index().unwrap().0;
            let stored = mem.snapshot_meta().unwrap().index.0;
            if rng.random_range(0..6) == 0 && last > stored {
                let index = LogIndex(rng.random_range(stored + 1..=last));
                let meta = SnapshotMeta {
                    index,
                    term: mem.term(index).unwrap(),
                    conf_state: conf(),
                };
                let data = format!("state at {index}");
                disk.save_snapshot(meta.clone(), data.as_bytes()).unwrap();
                mem.create_snapshot(meta, data.into());
                let first = mem.first_index().unwrap().0;
                let to = LogIndex(rng.random_range(first - 1..=index.0));
                disk.compact(to).unwrap();
                mem.compact(to).unwrap();
                assert!(matches!(
                    disk.compact(index.next()),
                    Err(StorageError::Unavailable { .. })
                ));
            }
            if rng.random_range(0..10) == 0 {
                drop(disk);
                drop(log);
                vfs = vfs.crash(None);
                log = Arc::new(open_mem(&vfs, small_config()));
                disk = DiskStorage::open(Arc::clone(&log), 4, ConfState::default()).unwrap();
            }
            assert_same(&disk, &mem, &mut rng, seed);
            assert_eq!(disk.snapshot_meta().unwrap(), mem.snapshot_meta().unwrap());
            let initial = disk.initial_state().unwrap();
            assert_eq!(initial.hard_state, mem.hard_state(), "seed {seed}");
            assert_eq!(initial.conf_state, conf(), "seed {seed}");
        }
    }
}

#[test]
fn snapshots_compact_the_log_and_survive_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let config = small_config();
    {
        let log = Arc::new(Log::open(tmp.path(), config.clone()).unwrap());
        let mut disk = DiskStorage::open(Arc::clone(&log), 1, conf()).unwrap();
        let entries: Vec<Entry> = (1..=40).map(|i| entry(i, 1 + i / 20, 50)).collect();
        disk.append(&entries).unwrap();
        let before = log.segment_count();
        // A local snapshot at 30: the log agrees, so 31..=40 stay.
        let meta = SnapshotMeta {
            index: LogIndex(30),
            term: Term(2),
            conf_state: conf(),
        };
        disk.apply_snapshot(meta.clone()).unwrap();
        assert!(log.segment_count() < before);
        assert_eq!(disk.first_index().unwrap(), LogIndex(31));
        assert_eq!(disk.last_index().unwrap(), LogIndex(40));
        assert_eq!(disk.term(LogIndex(30)).unwrap(), Term(2));
        assert!(matches!(
            disk.term(LogIndex(29)),
            Err(StorageError::Compacted { .. })
        ));
        assert!(matches!(
            disk.entries(LogIndex(30), LogIndex(35), u64::MAX),
            Err(StorageError::Compacted { .. })
        ));
        // An older snapshot changes nothing.
        disk.apply_snapshot(SnapshotMeta {
            index: LogIndex(10),
            ..meta
        })
        .unwrap();
        assert_eq!(disk.first_index().unwrap(), LogIndex(31));
    }
    let log = Arc::new(Log::open(tmp.path(), config.clone()).unwrap());
    let mut disk = DiskStorage::open(Arc::clone(&log), 1, ConfState::default()).unwrap();
    assert_eq!(disk.snapshot_meta().unwrap().index, LogIndex(30));
    assert_eq!(disk.initial_state().unwrap().conf_state, conf());
    assert_eq!(
        disk.entries(LogIndex(31), LogIndex(41), u64::MAX)
            .unwrap()
            .len(),
        10
    );

    // A leader's snapshot that disagrees with the log replaces all of it.
    let meta = SnapshotMeta {
        index: LogIndex(35),
        term: Term(9),
        conf_state: conf(),
    };
    disk.apply_snapshot(meta).unwrap();
    assert_eq!(disk.first_index().unwrap(), LogIndex(36));
    assert_eq!(disk.last_index().unwrap(), LogIndex(35));
    assert_eq!(disk.term(LogIndex(35)).unwrap(), Term(9));
    disk.append(&[entry(36, 9, 5)]).unwrap();
    assert_eq!(disk.last_index().unwrap(), LogIndex(36));
    assert!(
        disk.append(&[entry(20, 9, 5)]).is_err(),
        "appends inside the snapshot fail"
    );
}

#[test]
fn groups_share_one_log() {
    let vfs = MemVfs::new();
    let log = Arc::new(Log::open_with(Arc::new(vfs.clone()), dir(), small_config()).unwrap());
    let mut a = DiskStorage::open(Arc::clone(&log), 1, conf()).unwrap();
    let mut b = DiskStorage::open(Arc::clone(&log), 2, conf()).unwrap();
    a.append(&[entry(1, 1, 10), entry(2, 1, 10)]).unwrap();
    b.append(&[entry(1, 5, 10)]).unwrap();
    assert_eq!(
        (a.last_index().unwrap(), b.last_index().unwrap()),
        (LogIndex(2), LogIndex(1))
    );
    assert_eq!(b.term(LogIndex(1)).unwrap(), Term(5));
    assert_eq!(log.groups(), vec![1, 2]);
}

fn snapshot_meta(index: u64, term: u64) -> SnapshotMeta {
    SnapshotMeta {
        index: LogIndex(index),
        term: Term(term),
        conf_state: conf(),
    }
}

/// The stored snapshot's bytes, read by chunks of at most `chunk_bytes`, each checked to
/// belong to the snapshot at `meta`.
fn read_snapshot(disk: &DiskStorage, meta: &SnapshotMeta, chunk_bytes: usize) -> Vec<u8> {
    let mut read = Vec::new();
    loop {
        let chunk = disk.snapshot_chunk(read.len() as u64, chunk_bytes).unwrap();
        assert_eq!((chunk.index, chunk.term), (meta.index, meta.term));
        assert!(chunk.data.len() <= chunk_bytes);
        read.extend_from_slice(&chunk.data);
        if chunk.last {
            return read;
        }
    }
}

#[test]
fn snapshot_bytes_are_saved_and_read_back_by_chunks_across_reopens() {
    let vfs = MemVfs::new();
    let meta = snapshot_meta(30, 2);
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    {
        let log = Arc::new(open_mem(&vfs, small_config()));
        let mut disk = DiskStorage::open(Arc::clone(&log), 1, conf()).unwrap();
        assert!(matches!(
            disk.snapshot_chunk(0, 100),
            Err(StorageError::SnapshotUnavailable)
        ));
        let entries: Vec<Entry> = (1..=40).map(|i| entry(i, 1 + i / 20, 20)).collect();
        disk.append(&entries).unwrap();
        disk.save_snapshot(meta.clone(), &data).unwrap();
        assert_eq!(disk.snapshot_meta().unwrap(), meta);
        // The log agrees with the snapshot: its entries stay until compacted, and then
        // a tail behind the snapshot can stay too.
        assert_eq!(disk.first_index().unwrap(), LogIndex(1));
        disk.compact(LogIndex(25)).unwrap();
        assert_eq!(disk.first_index().unwrap(), LogIndex(26));
        assert!(matches!(
            disk.compact(LogIndex(31)),
            Err(StorageError::Unavailable { .. })
        ));
    }
    let log = Arc::new(open_mem(&vfs, small_config()));
    let disk = DiskStorage::open(Arc::clone(&log), 1, conf()).unwrap();
    // The tail and its base survive reopening.
    assert_eq!(disk.first_index().unwrap(), LogIndex(26));
    assert_eq!(disk.term(LogIndex(25)).unwrap(), Term(2));
    assert_eq!(
        disk.entries(LogIndex(26), LogIndex(41), u64::MAX)
            .unwrap()
            .len(),
        15
    );
    assert_eq!(read_snapshot(&disk, &meta, 300), data);
    let end = disk.snapshot_chunk(1000, 300).unwrap();
    assert!(end.last && end.data.is_empty());

    // A newer snapshot replaces the older one's file once it is recorded.
    let mut disk = disk;
    let newer = SnapshotMeta {
        index: LogIndex(35),
        ..meta
    };
    disk.save_snapshot(newer.clone(), b"newer").unwrap();
    let chunk = disk.snapshot_chunk(0, 300).unwrap();
    assert_eq!(
        (chunk.index, &chunk.data[..], chunk.last),
        (newer.index, &b"newer"[..], true)
    );
    let files = vfs.list(log.dir()).unwrap();
    let snapshots: Vec<_> = files.iter().filter(|f| f.ends_with(".snapshot")).collect();
    assert_eq!(snapshots.len(), 1, "{files:?}");
}

#[test]
fn a_snapshot_written_in_synced_pieces_survives_a_crash_whole() {
    let vfs = MemVfs::new();
    let meta = snapshot_meta(10, 1);
    // Two whole pieces and part of a third.
    let data: Vec<u8> = (0..2 * SNAPSHOT_SYNC_BYTES + 12_345)
        .map(|i| (i % 253) as u8)
        .collect();
    {
        let log = Arc::new(open_mem(&vfs, small_config()));
        let mut disk = DiskStorage::open(Arc::clone(&log), 1, conf()).unwrap();
        let entries: Vec<Entry> = (1..=10).map(|i| entry(i, 1, 20)).collect();
        disk.append(&entries).unwrap();
        disk.save_snapshot(meta.clone(), &data).unwrap();
    }
    // Only what was synced survives.
    let vfs = vfs.crash(Some(7));
    let log = Arc::new(open_mem(&vfs, small_config()));
    let disk = DiskStorage::open(Arc::clone(&log), 1, conf()).unwrap();
    assert_eq!(disk.snapshot_meta().unwrap(), meta);
    let read = read_snapshot(&disk, &meta, 1 << 19);
    assert_eq!(read.len(), data.len());
    assert!(read == data, "the bytes read back differ");
}

#[test]
fn a_snapshot_written_apart_counts_only_once_recorded() {
    let vfs = MemVfs::new();
    let meta = |index: u64| SnapshotMeta {
        index: LogIndex(index),
        term: Term(1),
        conf_state: conf(),
    };
    let read_all = |disk: &DiskStorage| {
        let chunk = disk.snapshot_chunk(0, 1 << 20).unwrap();
        assert!(chunk.last);
        (chunk.index, chunk.data.to_vec())
    };
    {
        let log = Arc::new(open_mem(&vfs, small_config()));
        let mut disk = DiskStorage::open(Arc::clone(&log), 1, conf()).unwrap();
        let entries: Vec<Entry> = (1..=40).map(|i| entry(i, 1, 20)).collect();
        disk.append(&entries).unwrap();
        disk.save_snapshot(meta(10), b"ten").unwrap();
        // The bytes of a newer snapshot, written on another thread, and a crash before
        // they are recorded: the recorded snapshot is still the one at 10.
        let file = disk.snapshot_file(&meta(20));
        std::thread::spawn(move || file.write(b"twenty"))
            .join()
            .unwrap()
            .unwrap();
        assert_eq!(read_all(&disk), (LogIndex(10), b"ten".to_vec()));
    }
    let log = Arc::new(open_mem(&vfs, small_config()));
    let mut disk = DiskStorage::open(Arc::clone(&log), 1, conf()).unwrap();
    assert_eq!(disk.snapshot_meta().unwrap(), meta(10));
    assert_eq!(read_all(&disk), (LogIndex(10), b"ten".to_vec()));
    // Written again and recorded this time: it replaces the one at 10, whose file goes.
    disk.snapshot_file(&meta(20)).write(b"twenty").unwrap();
    disk.record_snapshot(meta(20)).unwrap();
    assert_eq!(disk.snapshot_meta().unwrap(), meta(20));
    assert_eq!(read_all(&disk), (LogIndex(20), b"twenty".to_vec()));
    // Recording an older one changes nothing.
    disk.record_snapshot(meta(15)).unwrap();
    assert_eq!(disk.snapshot_meta().unwrap(), meta(20));
    let files = vfs.list(log.dir()).unwrap();
    let snapshots: Vec<_> = files.iter().filter(|f| f.ends_with(".snapshot")).collect();
    assert_eq!(snapshots.len(), 1, "{files:?}");
    drop(disk);
    let disk = DiskStorage::open(log, 1, conf()).unwrap();
    assert_eq!(read_all(&disk), (LogIndex(20), b"twenty".to_vec()));
}

#[test]
fn a_crash_anywhere_in_a_compaction_leaves_the_log_before_or_after_it() {
    let meta = SnapshotMeta {
        index: LogIndex(30),
        term: Term(2),
        conf_state: conf(),
    };
    let mut outcomes = Vec::new();
    for syncs_allowed in 0..8 {
        let vfs = MemVfs::new();
        {
            let log = Arc::new(open_mem(&vfs, small_config()));
            let mut disk = DiskStorage::open(Arc::clone(&log), 1, conf()).unwrap();
            let entries: Vec<Entry> = (1..=40).map(|i| entry(i, 1 + i / 20, 20)).collect();
            disk.append(&entries).unwrap();
            disk.save_snapshot(meta.clone(), b"state").unwrap();
            vfs.fail_syncs_after(syncs_allowed);
            let _ = disk.compact(LogIndex(25));
        }
        // Whatever was not synced is lost; the rest must open to a consistent log.
        let vfs = vfs.crash(None);
        let log = Arc::new(open_mem(&vfs, small_config()));
        let mut disk = DiskStorage::open(Arc::clone(&log), 1, conf()).unwrap();
        let first = disk.first_index().unwrap();
        assert!(
            first == LogIndex(1) || first == LogIndex(26),
            "{syncs_allowed} syncs: the log starts at {first}"
        );
        assert_eq!(disk.snapshot_meta().unwrap(), meta);
        assert_eq!(
            disk.term(first.prev()).unwrap(),
            Term(if first == LogIndex(1) { 0 } else { 2 })
        );
        let kept = disk.entries(first, LogIndex(41), u64::MAX).unwrap();
        assert_eq!(kept.len() as u64, 41 - first.0, "{syncs_allowed} syncs");
        // The compaction can be done (again) after the restart.
        disk.compact(LogIndex(25)).unwrap();
        assert_eq!(disk.first_index().unwrap(), LogIndex(26));
        outcomes.push(first);
    }
    assert!(
        outcomes.contains(&LogIndex(1)) && outcomes.contains(&LogIndex(26)),
        "{outcomes:?}"
    );
}
