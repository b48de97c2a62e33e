//! Appends per second with fsync: group commit against one fsync per write, for 1 and
//! 64 concurrent appenders and 128-byte and 4 KiB entries, in the same run.
#![allow(
    clippy::disallowed_methods,
    reason = "a benchmark measures wall-clock time"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aegis_log::{Log, LogConfig, SyncPolicy};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// How writes are made durable.
#[derive(Clone, Copy)]
enum Mode {
    /// Concurrent writes share one fsync.
    GroupCommit,
    /// Every write gets its own fsync (`batch_writes_max = 1`).
    FsyncPerWrite,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::GroupCommit => "group_commit",
            Mode::FsyncPerWrite => "fsync_per_write",
        }
    }

    fn config(self) -> LogConfig {
        let batch_writes_max = match self {
            Mode::GroupCommit => 1024,
            Mode::FsyncPerWrite => 1,
        };
        LogConfig {
            batch_writes_max,
            sync: SyncPolicy::EveryBatch,
            ..LogConfig::default()
        }
    }
}

/// Runs `total` appends spread over `appenders` threads, each on its own fresh group.
fn run(log: &Arc<Log>, groups: &AtomicU64, appenders: u64, total: u64, data: &[u8]) -> Duration {
    let per_thread = total.div_ceil(appenders);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..appenders {
            let group = groups.fetch_add(1, Ordering::Relaxed);
            s.spawn(move || {
                for index in 1..=per_thread {
                    log.append(group, index, 1, data).expect("append");
                }
            });
        }
    });
    start.elapsed()
}

fn appends(c: &mut Criterion) {
    let mut g = c.benchmark_group("Log::append/fsync");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for size in [128usize, 4096] {
        for appenders in [1u64, 64] {
            for mode in [Mode::FsyncPerWrite, Mode::GroupCommit] {
                let dir = tempfile::tempdir().expect("temporary directory");
                let log = Arc::new(Log::open(dir.path(), mode.config()).expect("open"));
                let groups = AtomicU64::new(1);
                let data = vec![0xA5u8; size];
                g.throughput(Throughput::Elements(1));
                let id = BenchmarkId::new(mode.name(), format!("{appenders}x{size}B"));
                g.bench_function(id, |b| {
                    b.iter_custom(|iters| {
                        // Whole rounds, so every appender does the same amount of work.
                        let total = iters.max(appenders);
                        let elapsed = run(&log, &groups, appenders, total, &data);
                        elapsed
                            .mul_f64(iters as f64 / (total.div_ceil(appenders) * appenders) as f64)
                    });
                });
            }
        }
    }
    g.finish();
}

criterion_group!(benches, appends);
criterion_main!(benches);
