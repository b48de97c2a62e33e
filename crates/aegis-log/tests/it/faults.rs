//! Fault injection through `MemVfs`: power failures that drop everything not fsynced,
//! torn writes and failing fsyncs. Nothing acknowledged may be lost.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use aegis_log::{Error, Log, LogBatch, LogConfig, MemVfs, Vfs, VfsFile};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::support::{all_entries, data_for, dir, open_mem, small_config};

/// The expected contents of one group: its compaction point and its entries
/// `(index, term, data)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct ModelGroup {
    floor: u64,
    entries: Vec<(u64, u64, Vec<u8>)>,
}

type Model = BTreeMap<u64, ModelGroup>;

fn observed(log: &Log, groups: impl Iterator<Item = u64>) -> Model {
    groups
        .map(|g| {
            let entries = all_entries(log, g)
                .into_iter()
                .map(|e| (e.index, e.term, e.data));
            (
                g,
                ModelGroup {
                    floor: log.compacted_to(g),
                    entries: entries.collect(),
                },
            )
        })
        .collect()
}

/// Picks a valid random operation for `group`, applies it to the model and the batch.
fn random_op(rng: &mut ChaCha8Rng, model: &mut Model, group: u64, batch: &mut LogBatch) {
    let g = model.entry(group).or_default();
    let next = g.entries.last().map_or(g.floor.max(1), |e| e.0 + 1);
    match rng.random_range(0..10) {
        0 if !g.entries.is_empty() => {
            let first = g.entries[0].0;
            let at = rng.random_range(first..=next);
            g.entries.retain(|e| e.0 < at);
            batch.truncate_suffix(group, at);
        }
        1 => {
            let at = rng.random_range(g.floor..=next + 2);
            g.floor = g.floor.max(at);
            g.entries.retain(|e| e.0 >= at);
            batch.compact(group, at);
        }
        _ => {
            let index = g.entries.last().map_or(g.floor.max(1), |e| e.0 + 1);
            let term = rng.random_range(1..4);
            let data = data_for(group, index ^ term, rng.random_range(0..120));
            batch.append(group, index, term, &data);
            g.entries.push((index, term, data));
        }
    }
}

#[test]
fn random_operations_with_crashes_match_a_model() {
    for seed in 0..12u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut vfs = MemVfs::new();
        let mut model = Model::new();
        let mut log = open_mem(&vfs, small_config());
        for step in 0..300 {
            let mut batch = LogBatch::new();
            for _ in 0..rng.random_range(1..4) {
                let group = rng.random_range(1..5);
                random_op(&mut rng, &mut model, group, &mut batch);
            }
            log.write(batch)
                .unwrap_or_else(|e| panic!("seed {seed} step {step}: {e}"));
            if rng.random_range(0..40) == 0 {
                drop(log);
                vfs = vfs.crash(Some(rng.random()));
                log = open_mem(&vfs, small_config());
                assert_eq!(
                    observed(&log, model.keys().copied()),
                    model,
                    "seed {seed} step {step}"
                );
            }
        }
        assert_eq!(observed(&log, model.keys().copied()), model, "seed {seed}");
        assert!(
            log.segment_count() < 40,
            "seed {seed}: compaction reclaims segments"
        );
    }
}

#[test]
fn concurrent_acknowledged_writes_survive_a_power_failure() {
    for seed in 0..8u64 {
        let vfs = MemVfs::new();
        let log = Arc::new(open_mem(&vfs, small_config()));
        let acked: Arc<Mutex<BTreeMap<u64, u64>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (1..=8u64)
            .map(|group| {
                let (log, acked, stop) = (Arc::clone(&log), Arc::clone(&acked), Arc::clone(&stop));
                std::thread::spawn(move || {
                    let mut index = 1;
                    while !stop.load(Ordering::Relaxed) && index <= 400 {
                        log.append(group, index, 1, &data_for(group, index, 30))
                            .unwrap();
                        acked.lock().unwrap().insert(group, index);
                        index += 1;
                    }
                })
            })
            .collect();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // Let the writers make some progress, then pull the plug.
        while acked.lock().unwrap().values().sum::<u64>() < rng.random_range(20..600) {
            std::thread::yield_now();
        }
        let before = acked.lock().unwrap().clone();
        let crashed = vfs.crash(Some(seed));
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().unwrap();
        }
        let log = open_mem(&crashed, small_config());
        for group in 1..=8u64 {
            let entries = all_entries(&log, group);
            let durable = before.get(&group).copied().unwrap_or(0);
            assert!(
                entries.len() as u64 >= durable,
                "seed {seed} group {group}: lost acked"
            );
            for (i, e) in entries.iter().enumerate() {
                assert_eq!(e.index, i as u64 + 1, "seed {seed}");
                assert_eq!(e.data, data_for(group, e.index, 30), "seed {seed}");
            }
        }
    }
}

#[test]
fn a_failed_fsync_poisons_the_log_and_recovery_keeps_a_prefix() {
    for seed in 0..20u64 {
        let vfs = MemVfs::new();
        let log = open_mem(&vfs, small_config());
        for index in 1..=5 {
            log.append(1, index, 1, &data_for(1, index, 50)).unwrap();
        }
        vfs.set_fail_syncs(true);
        let mut batch = LogBatch::new();
        for index in 6..=12 {
            batch.append(1, index, 2, &data_for(1, index, 50));
        }
        assert!(matches!(
            log.write(batch),
            Err(Error::Io { op: "fsync", .. })
        ));
        assert!(matches!(log.append(1, 13, 2, b"x"), Err(Error::Poisoned)));
        assert!(matches!(log.entry(1, 1), Err(Error::Poisoned)));
        drop(log);
        let log = open_mem(&vfs.crash(Some(seed)), small_config());
        let entries = all_entries(&log, 1);
        assert!(
            (5..=12).contains(&entries.len()),
            "seed {seed}: {}",
            entries.len()
        );
        for (i, e) in entries.iter().enumerate() {
            let index = i as u64 + 1;
            assert_eq!(
                (e.index, e.data.clone()),
                (index, data_for(1, index, 50)),
                "seed {seed}"
            );
        }
    }
}

#[test]
fn a_failed_fsync_anywhere_in_a_rollover_loses_nothing_acknowledged() {
    for seed in 0..40u64 {
        let vfs = MemVfs::new();
        let log = open_mem(&vfs, small_config());
        for index in 1..=9 {
            log.append(2, index, 1, &data_for(2, index, 50)).unwrap();
        }
        // The next batch spans a segment boundary: fsync of the old segment, of the new
        // one, of the directory, then of the batch. Fail at each point in turn.
        vfs.fail_syncs_after(seed % 5);
        let mut batch = LogBatch::new();
        for index in 10..=20 {
            batch.append(2, index, 2, &data_for(2, index, 50));
        }
        let acked = log.write(batch).is_ok();
        assert_eq!(acked, seed % 5 == 4, "seed {seed}");
        drop(log);
        let log = open_mem(&vfs.crash(Some(seed)), small_config());
        let entries = all_entries(&log, 2);
        let least = if acked { 20 } else { 9 };
        assert!(
            (least..=20).contains(&entries.len()),
            "seed {seed}: {}",
            entries.len()
        );
        for (i, e) in entries.iter().enumerate() {
            let index = i as u64 + 1;
            assert_eq!(
                (e.index, e.data.clone()),
                (index, data_for(2, index, 50)),
                "seed {seed}"
            );
        }
        log.append(2, entries.len() as u64 + 1, 3, b"continues")
            .unwrap();
    }
}

/// A file system whose first file fsync waits until the test opens a gate, so that the
/// test can line up writers behind a batch leader deterministically.
#[derive(Debug)]
struct GatedVfs {
    inner: MemVfs,
    gate: Arc<Gate>,
}

#[derive(Debug, Default)]
struct Gate {
    armed: Mutex<(bool, bool)>,
    cv: Condvar,
    panic_on_write: AtomicBool,
}

impl Gate {
    /// Blocks the first caller after arming until `open`; returns at once otherwise.
    fn pass(&self) {
        let mut state = self.armed.lock().unwrap();
        if state.0 {
            state.0 = false;
            while !state.1 {
                state = self.cv.wait(state).unwrap();
            }
        }
    }

    fn open(&self) {
        self.armed.lock().unwrap().1 = true;
        self.cv.notify_all();
    }
}

#[derive(Debug)]
struct GatedFile {
    inner: Arc<dyn VfsFile>,
    gate: Arc<Gate>,
}

impl Vfs for GatedVfs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn create(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        let inner = self.inner.create(path)?;
        Ok(Arc::new(GatedFile {
            inner,
            gate: Arc::clone(&self.gate),
        }))
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        let inner = self.inner.open(path)?;
        Ok(Arc::new(GatedFile {
            inner,
            gate: Arc::clone(&self.gate),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }
}

impl VfsFile for GatedFile {
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        assert!(
            !self.gate.panic_on_write.load(Ordering::Relaxed),
            "injected panic"
        );
        self.inner.write_all_at(buf, offset)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.gate.pass();
        self.inner.sync_data()
    }
}

#[test]
fn writers_queued_behind_a_leader_share_one_fsync() {
    let gate = Arc::new(Gate::default());
    let vfs = GatedVfs {
        inner: MemVfs::new(),
        gate: Arc::clone(&gate),
    };
    let config = LogConfig {
        batch_writes_max: 1000,
        ..LogConfig::default()
    };
    let log = Arc::new(Log::open_with(Arc::new(vfs), dir(), config).unwrap());
    gate.armed.lock().unwrap().0 = true;
    let spawn = |group: u64| {
        let log = Arc::clone(&log);
        std::thread::spawn(move || log.append(group, 1, 1, b"queued").unwrap())
    };
    let leader = spawn(0);
    // The leader is now inside its fsync (the gate is disarmed once it passes).
    while gate.armed.lock().unwrap().0 {
        std::thread::yield_now();
    }
    let followers: Vec<_> = (1..=63).map(spawn).collect();
    while log.queued_writes() < 63 {
        std::thread::yield_now();
    }
    gate.open();
    leader.join().unwrap();
    for f in followers {
        f.join().unwrap();
    }
    let stats = log.stats();
    assert_eq!(stats.writes, 64);
    assert_eq!(stats.batches, 2, "the 63 queued writes form one batch");
    assert_eq!(stats.syncs, 2);
    assert_eq!(log.groups().len(), 64);
}

#[test]
fn a_panicking_leader_poisons_the_log_instead_of_hanging_it() {
    let gate = Arc::new(Gate::default());
    let vfs = GatedVfs {
        inner: MemVfs::new(),
        gate: Arc::clone(&gate),
    };
    let log = Log::open_with(Arc::new(vfs), dir(), small_config()).unwrap();
    log.append(1, 1, 1, b"before").unwrap();
    gate.panic_on_write.store(true, Ordering::Relaxed);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        log.append(1, 2, 1, b"boom")
    }));
    assert!(result.is_err(), "the file layer's panic reaches the writer");
    gate.panic_on_write.store(false, Ordering::Relaxed);
    assert!(matches!(
        log.append(1, 2, 1, b"after"),
        Err(Error::Poisoned)
    ));
    assert_eq!(log.queued_writes(), 0);
}

#[test]
fn readers_see_whole_entries_while_writers_append() {
    let vfs = MemVfs::new();
    let log = Arc::new(open_mem(&vfs, small_config()));
    let writers: Vec<_> = (1..=4u64)
        .map(|group| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for index in 1..=300 {
                    log.append(group, index, 1, &data_for(group, index, 40))
                        .unwrap();
                    if index % 100 == 0 {
                        log.compact(group, index - 50).unwrap();
                    }
                }
            })
        })
        .collect();
    let readers: Vec<_> = (1..=2u64)
        .map(|seed| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let mut seen = 0;
                while seen < 2000 {
                    let group = rng.random_range(1..=4);
                    let Some(last) = log.last_index(group) else {
                        continue;
                    };
                    let lo = rng.random_range(1..=last);
                    for e in log.entries(group, lo..last + 1, 2000).unwrap() {
                        assert_eq!(e.data, data_for(group, e.index, 40), "seed {seed}");
                        seen += 1;
                    }
                }
            })
        })
        .collect();
    for t in writers.into_iter().chain(readers) {
        t.join().unwrap();
    }
    for group in 1..=4 {
        assert_eq!(
            (log.first_index(group), log.last_index(group)),
            (Some(250), Some(300))
        );
    }
}
