//! Helpers shared by the test modules.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aegis_log::{Entry, Log, LogConfig, MemVfs, SyncPolicy};

pub fn dir() -> PathBuf {
    PathBuf::from("/log")
}

pub fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes_max: 1024,
        record_bytes_max: 256,
        batch_bytes_max: 4096,
        ..LogConfig::default()
    }
}

pub fn open_mem(vfs: &MemVfs, config: LogConfig) -> Log {
    Log::open_with(Arc::new(vfs.clone()), dir(), config).expect("open")
}

pub fn never_sync(mut config: LogConfig) -> LogConfig {
    config.sync = SyncPolicy::Never;
    config
}

/// Deterministic data for an entry, so that readers can check what they get back.
pub fn data_for(group: u64, index: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (group.wrapping_mul(31) ^ index.wrapping_mul(7) ^ i as u64) as u8)
        .collect()
}

pub fn all_entries(log: &Log, group: u64) -> Vec<Entry> {
    match (log.first_index(group), log.last_index(group)) {
        (Some(first), Some(last)) => log.entries(group, first..last + 1, u64::MAX).expect("read"),
        _ => Vec::new(),
    }
}

pub fn segment_files(vfs: &MemVfs, dir: &Path) -> Vec<PathBuf> {
    use aegis_log::Vfs;
    let mut names: Vec<PathBuf> = vfs
        .list(dir)
        .expect("list")
        .into_iter()
        .filter(|n| n.ends_with(".wal"))
        .map(|n| dir.join(n))
        .collect();
    names.sort();
    names
}
