//! Append latency percentiles with fsync, measured per call from inside each appender
//! thread, for the same cases as the throughput bench, then with group commit and
//! segments allocated ahead in stretches of several sizes. Prints one table row per case.
#![allow(
    clippy::disallowed_methods,
    reason = "a benchmark measures wall-clock time"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use aegis_log::{Log, LogConfig, SyncPolicy};

const RUN_TIME: Duration = Duration::from_secs(2);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank]
}

fn case(appenders: u64, size: usize, batch_writes_max: usize, preallocate: Option<u64>) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let defaults = LogConfig::default();
    let config = LogConfig {
        batch_writes_max,
        segment_preallocate_bytes: preallocate.unwrap_or(defaults.segment_preallocate_bytes),
        sync: SyncPolicy::EveryBatch,
        ..defaults
    };
    let ahead_kib = config.segment_preallocate_bytes >> 10;
    let log = Arc::new(Log::open(dir.path(), config).expect("open"));
    let data = vec![0x5Au8; size];
    let start = Instant::now();
    let deadline = start + RUN_TIME;
    let mut latencies: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..appenders)
            .map(|group| {
                let (log, data) = (&log, &data);
                s.spawn(move || {
                    let mut own = Vec::new();
                    let mut index = 1;
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        log.append(group, index, 1, data).expect("append");
                        own.push(t.elapsed());
                        index += 1;
                    }
                    own
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("appender"))
            .collect()
    });
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    let mode = if batch_writes_max == 1 {
        "fsync_per_write"
    } else {
        "group_commit"
    };
    let stats = log.stats();
    let micros = |p: f64| percentile(&latencies, p).as_secs_f64() * 1e6;
    let default = if preallocate.is_none() {
        " (default)"
    } else {
        ""
    };
    let ahead = format!("{ahead_kib} KiB{default}");
    println!(
        "| {mode} | {appenders} | {size} | {ahead} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} |",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        micros(0.50),
        micros(0.99),
        micros(0.999),
        micros(1.0),
        stats.writes as f64 / stats.batches.max(1) as f64,
    );
}

fn main() {
    println!(
        "| mode | appenders | bytes | allocated ahead | appends/s | p50 µs | p99 µs | p99.9 µs | max µs | writes per fsync |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for size in [128, 4096] {
        for appenders in [1, 64] {
            for batch_writes_max in [1, 1024] {
                case(appenders, size, batch_writes_max, None);
            }
        }
    }
    // Filling a stretch with zeros stalls the write that crosses into it.
    for (appenders, size) in [(1, 4096), (64, 128)] {
        for preallocate in [0, 256 << 10, 1 << 20, 4 << 20] {
            case(appenders, size, 1024, Some(preallocate));
        }
    }
}
