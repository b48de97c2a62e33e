//! aegis-log side by side with `okaywal`, the write-ahead log people would otherwise
//! pick, in the same run: durable appends per second (each call returns once its bytes
//! are fsynced) from 1 and 64 concurrent appenders, with 128-byte and 4 KiB records.
//!
//! Both logs batch concurrent fsyncs. aegis-log appends each record to its own Raft
//! group (one per appender thread); okaywal writes each record as a one-chunk entry and
//! commits it. Both run in a fresh temporary directory on the same disk.

#![allow(
    clippy::disallowed_methods,
    reason = "a benchmark measures wall-clock time"
)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aegis_log::{Log, LogConfig};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use okaywal::{LogVoid, WriteAheadLog};

/// Splits `iters` appends over `appenders` threads, runs `append(thread, record)` in
/// each, and scales the elapsed time back to `iters` appends.
fn timed(iters: u64, appenders: u64, append: impl Fn(u64, u64) + Sync) -> Duration {
    let per_thread = iters.max(appenders).div_ceil(appenders);
    let start = Instant::now();
    std::thread::scope(|s| {
        for thread in 0..appenders {
            let append = &append;
            s.spawn(move || {
                for record in 1..=per_thread {
                    append(thread, record);
                }
            });
        }
    });
    let done = per_thread * appenders;
    start.elapsed().mul_f64(iters as f64 / done as f64)
}

fn durable_appends(c: &mut Criterion) {
    let mut g = c.benchmark_group("wal/durable_append");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    for size in [128usize, 4096] {
        let data = vec![0x3Cu8; size];
        for appenders in [1u64, 64] {
            let case = format!("{appenders}x{size}B");

            let dir = tempfile::tempdir().expect("temporary directory");
            let log = Log::open(dir.path(), LogConfig::default()).expect("open aegis-log");
            // Each measurement round uses fresh groups so indices start at 1.
            let round = AtomicU64::new(0);
            g.bench_function(BenchmarkId::new("aegis-log", &case), |b| {
                b.iter_custom(|iters| {
                    let base = round.fetch_add(1, Ordering::Relaxed) * 1000;
                    timed(iters, appenders, |thread, record| {
                        log.append(base + thread, record, 1, &data).expect("append");
                    })
                });
            });
            drop(log);

            let dir = tempfile::tempdir().expect("temporary directory");
            let wal = WriteAheadLog::recover(dir.path(), LogVoid).expect("open okaywal");
            g.bench_function(BenchmarkId::new("okaywal", &case), |b| {
                b.iter_custom(|iters| {
                    timed(iters, appenders, |_, _| {
                        let mut entry = wal.begin_entry().expect("begin");
                        entry.write_chunk(&data).expect("write");
                        entry.commit().expect("commit");
                    })
                });
            });
            wal.shutdown().expect("shut down okaywal");
        }
    }
    g.finish();
}

criterion_group!(benches, durable_appends);
criterion_main!(benches);
