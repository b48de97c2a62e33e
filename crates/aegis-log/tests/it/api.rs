//! The public API on its own: appends, reads, truncations, rollover, compaction, state.

use aegis_log::{Error, GroupState, HardState, Log, LogBatch, LogConfig, MemVfs, SyncPolicy, Vfs};

use crate::support::{all_entries, data_for, dir, open_mem, segment_files, small_config};

#[test]
fn many_groups_survive_reopen_on_the_real_file_system() {
    let tmp = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes_max: 4096,
        ..small_config()
    };
    {
        let log = Log::open(tmp.path(), config.clone()).unwrap();
        for index in 1..=40 {
            let mut batch = LogBatch::new();
            for group in 1..=5u64 {
                batch.append(group, index, index / 10 + 1, &data_for(group, index, 20));
            }
            log.write(batch).unwrap();
        }
        assert!(log.segment_count() >= 3, "small segments must roll over");
    }
    let log = Log::open(tmp.path(), config).unwrap();
    assert_eq!(log.groups(), vec![1, 2, 3, 4, 5]);
    for group in 1..=5u64 {
        let entries = all_entries(&log, group);
        assert_eq!(entries.len(), 40);
        for (i, e) in entries.iter().enumerate() {
            let index = i as u64 + 1;
            assert_eq!((e.index, e.term), (index, index / 10 + 1));
            assert_eq!(e.data, data_for(group, index, 20));
            assert_eq!(log.term(group, index), Some(index / 10 + 1));
        }
    }
}

#[test]
fn appends_must_be_contiguous_and_batches_are_rejected_whole() {
    let vfs = MemVfs::new();
    let log = open_mem(&vfs, small_config());
    assert!(matches!(
        log.append(1, 0, 1, b"x"),
        Err(Error::BelowCompaction { first: 1, .. })
    ));
    log.append(1, 5, 1, b"five").unwrap();
    assert!(matches!(
        log.append(1, 7, 1, b"gap"),
        Err(Error::NotContiguous {
            group: 1,
            index: 7,
            expected: 6
        })
    ));
    assert!(matches!(
        log.append(1, 5, 1, b"dup"),
        Err(Error::NotContiguous { .. })
    ));

    let mut batch = LogBatch::new();
    batch.append(2, 1, 1, b"fine").append(1, 9, 1, b"bad");
    assert!(matches!(
        log.write(batch),
        Err(Error::NotContiguous { group: 1, .. })
    ));
    assert_eq!(
        log.last_index(2),
        None,
        "the valid half of a rejected batch is not applied"
    );
    let stats = log.stats();
    assert_eq!(
        (stats.writes, stats.bytes),
        (1, 8 + 25 + 4),
        "only the accepted write counts"
    );

    let mut batch = LogBatch::new();
    batch
        .truncate_suffix(1, 5)
        .append(1, 5, 2, b"new five")
        .append(1, 6, 2, b"six");
    log.write(batch).unwrap();
    drop(log);
    let log = open_mem(&vfs, small_config());
    assert_eq!(log.first_index(1), Some(5));
    assert_eq!(log.last_index(1), Some(6));
    assert_eq!(log.entry(1, 5).unwrap().unwrap().data, b"new five");
    assert_eq!(log.entry(2, 1).unwrap(), None);
}

#[test]
fn truncate_suffix_removes_the_conflicting_tail_durably() {
    let vfs = MemVfs::new();
    let log = open_mem(&vfs, small_config());
    for index in 1..=30 {
        log.append(3, index, 1, &data_for(3, index, 40)).unwrap();
    }
    log.truncate_suffix(3, 31).unwrap();
    assert_eq!(
        log.last_index(3),
        Some(30),
        "truncating past the end removes nothing"
    );
    log.truncate_suffix(3, 12).unwrap();
    assert_eq!(log.last_index(3), Some(11));
    assert_eq!(log.entry(3, 12).unwrap(), None);
    assert_eq!(log.term(3, 12), None);
    log.append(3, 12, 2, b"leader's twelve").unwrap();
    drop(log);

    let log = open_mem(&vfs, small_config());
    assert_eq!(log.last_index(3), Some(12));
    assert_eq!(log.term(3, 11), Some(1));
    assert_eq!(log.entry(3, 12).unwrap().unwrap().data, b"leader's twelve");
    log.truncate_suffix(3, 1).unwrap();
    assert_eq!((log.first_index(3), log.last_index(3)), (None, None));
    log.append(3, 1, 3, b"again").unwrap();
    assert_eq!(all_entries(&log, 3).len(), 1);
}

#[test]
fn compaction_reclaims_whole_segments_and_survives_reopen() {
    let vfs = MemVfs::new();
    let log = open_mem(&vfs, small_config());
    for index in 1..=100 {
        log.append(1, index, 1, &data_for(1, index, 60)).unwrap();
        if index % 25 == 0 {
            log.append(2, index / 25, 1, b"sparse").unwrap();
        }
    }
    let before = log.segment_count();
    assert!(
        before >= 9,
        "100 entries of ~100 bytes fill many 1 KiB segments"
    );
    assert_eq!(segment_files(&vfs, &dir()).len(), before);

    log.compact(1, 90).unwrap();
    // Group 2's entries pin the segments holding them.
    assert!(log.segment_count() < before);
    assert!(log.segment_count() > 2);
    log.compact(2, 5).unwrap();
    let after = log.segment_count();
    assert!(
        after <= 3,
        "only the segments holding entries 90..=100 remain, got {after}"
    );
    assert_eq!(segment_files(&vfs, &dir()).len(), after);
    assert_eq!(log.first_index(1), Some(90));
    assert_eq!(log.entry(1, 89).unwrap(), None);
    assert_eq!(log.compacted_to(2), 5);
    drop(log);

    let log = open_mem(&vfs, small_config());
    assert_eq!(
        (log.first_index(1), log.last_index(1)),
        (Some(90), Some(100))
    );
    assert_eq!(log.entry(1, 95).unwrap().unwrap().data, data_for(1, 95, 60));
    assert_eq!((log.first_index(2), log.compacted_to(2)), (None, 5));
    assert!(matches!(
        log.append(2, 4, 1, b"old"),
        Err(Error::BelowCompaction { first: 5, .. })
    ));
    log.append(2, 5, 2, b"after snapshot").unwrap();
}

#[test]
fn compaction_past_the_end_installs_a_snapshot_point_that_outlives_its_segment() {
    let vfs = MemVfs::new();
    let log = open_mem(&vfs, small_config());
    for index in 1..=10 {
        log.append(4, index, 1, &data_for(4, index, 50)).unwrap();
    }
    log.compact(4, 1000).unwrap();
    assert_eq!((log.first_index(4), log.compacted_to(4)), (None, 1000));
    // Fill and drop enough of another group that the segment holding the compaction
    // record is reclaimed.
    for index in 1..=60 {
        log.append(5, index, 1, &data_for(5, index, 60)).unwrap();
    }
    log.compact(5, 61).unwrap();
    assert!(log.segment_count() <= 2);
    drop(log);
    let log = open_mem(&vfs, small_config());
    assert_eq!(log.compacted_to(4), 1000);
    assert_eq!(log.compacted_to(5), 61);
    assert!(matches!(
        log.append(4, 11, 1, b"x"),
        Err(Error::BelowCompaction { first: 1000, .. })
    ));
    log.append(4, 1000, 2, b"x").unwrap();
}

#[test]
fn reads_span_segments_and_respect_the_byte_budget() {
    let vfs = MemVfs::new();
    let log = open_mem(&vfs, small_config());
    for index in 1..=50 {
        log.append(9, index, index, &data_for(9, index, 100))
            .unwrap();
    }
    assert!(log.segment_count() > 5);
    let all = log.entries(9, 0..u64::MAX, u64::MAX).unwrap();
    assert_eq!(all.len(), 50);
    assert!(
        all.iter()
            .enumerate()
            .all(|(i, e)| e.index == i as u64 + 1 && e.term == e.index)
    );
    let some = log.entries(9, 10..40, 300).unwrap();
    assert!(!some.is_empty() && some.len() < 30);
    assert_eq!(some[0].index, 10);
    assert_eq!(
        log.entries(9, 20..21, 0).unwrap().len(),
        1,
        "at least one entry"
    );
    assert!(log.entries(10, 0..5, u64::MAX).unwrap().is_empty());
}

#[test]
fn limits_are_enforced() {
    let vfs = MemVfs::new();
    let config = small_config();
    let log = open_mem(&vfs, config.clone());
    assert!(matches!(
        log.append(1, 1, 1, &[0; 300]),
        Err(Error::RecordTooLarge { max: 256, .. })
    ));
    let mut batch = LogBatch::new();
    for index in 1..=40 {
        batch.append(1, index, 1, &[7; 200]);
    }
    assert!(matches!(
        log.write(batch),
        Err(Error::WriteTooLarge { max: 4096, .. })
    ));
    assert_eq!(log.last_index(1), None);
    let big = GroupState {
        hard_state: HardState::default(),
        metadata: vec![0; 2 << 20],
    };
    assert!(matches!(
        log.save_state(1, &big),
        Err(Error::StateTooLarge { .. })
    ));
    log.write(LogBatch::new()).unwrap();
}

#[test]
fn config_validation_rejects_nonsense() {
    let base = LogConfig::default();
    assert!(base.validate().is_ok());
    let cases = [
        LogConfig {
            record_bytes_max: 0,
            ..base.clone()
        },
        LogConfig {
            segment_bytes_max: 100,
            ..base.clone()
        },
        LogConfig {
            batch_bytes_max: 10,
            ..base.clone()
        },
        LogConfig {
            batch_writes_max: 0,
            ..base.clone()
        },
        LogConfig {
            queue_writes_max: 0,
            ..base.clone()
        },
        LogConfig {
            state_bytes_max: 0,
            ..base.clone()
        },
    ];
    for config in cases {
        assert!(
            matches!(config.validate(), Err(Error::InvalidConfig { .. })),
            "{config:?}"
        );
        let vfs = MemVfs::new();
        assert!(Log::open_with(std::sync::Arc::new(vfs), dir(), config).is_err());
    }
}

#[test]
fn group_state_is_replaced_atomically() {
    let tmp = tempfile::tempdir().unwrap();
    let state = |term, vote, commit| GroupState {
        hard_state: HardState { term, vote, commit },
        metadata: format!("voters {term}").into_bytes(),
    };
    {
        let log = Log::open(tmp.path(), LogConfig::default()).unwrap();
        assert_eq!(log.state(1), None);
        log.save_state(1, &state(1, None, 0)).unwrap();
        log.save_state(1, &state(2, Some(3), 7)).unwrap();
        log.save_state(u64::MAX, &state(9, Some(1), 1)).unwrap();
    }
    // A temporary file left by a crash mid-save is ignored and removed.
    let tmp_file = tmp.path().join(format!("group-{:020}.state.tmp", 1));
    std::fs::write(&tmp_file, b"half written").unwrap();
    let log = Log::open(tmp.path(), LogConfig::default()).unwrap();
    assert_eq!(log.state(1), Some(state(2, Some(3), 7)));
    assert_eq!(log.state(u64::MAX), Some(state(9, Some(1), 1)));
    assert!(!tmp_file.exists());
}

#[test]
fn corrupt_state_file_refuses_to_open() {
    let vfs = MemVfs::new();
    let log = open_mem(&vfs, small_config());
    log.save_state(6, &GroupState::default()).unwrap();
    drop(log);
    let path = dir().join(format!("group-{:020}.state", 6));
    let mut bytes = vfs.read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    vfs.write_durable(&path, &bytes);
    let err = Log::open_with(std::sync::Arc::new(vfs), dir(), small_config()).unwrap_err();
    assert!(matches!(err, Error::Corrupt { path: p, .. } if p == path));
}

#[test]
fn sync_policy_never_does_not_fsync() {
    let vfs = MemVfs::new();
    let log = open_mem(
        &vfs,
        LogConfig {
            sync: SyncPolicy::Never,
            ..small_config()
        },
    );
    let before = vfs.sync_count();
    for index in 1..=20 {
        log.append(1, index, 1, b"unsynced").unwrap();
    }
    assert_eq!(vfs.sync_count(), before);
    assert_eq!(log.stats().syncs, 0);
    assert_eq!(log.stats().writes, 20);
    let names = vfs.list(&dir()).unwrap();
    assert!(names.iter().any(|n| n.ends_with(".wal")));
}
