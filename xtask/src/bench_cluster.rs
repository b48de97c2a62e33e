//! `cargo xtask bench cluster`: `redis-benchmark` against a local 3-node aegis cluster
//! (fsync on every log write), and in the same run against a single aegis node
//! (`--single-node`, fsync of its journal on every batch) and a single local
//! `redis-server` with `appendfsync always` and with `everysec`, as reference points.
//! The single node shows what one process of ours costs next to redis; the cluster
//! adds two replicas on the same cores.
//!
//! The four servers run side by side and each workload goes to all four in turn, so a
//! change in the machine's load weighs on every column of a row alike; `--runs N`
//! repeats the whole round and reports the median of each rate and of each ratio.
//!
//! `--collections` runs the collection workloads instead: `LPUSH`, `RPOP`, `SADD`,
//! `SPOP`, `HSET`, `ZADD`, `ZPOPMIN`, `LRANGE_100`, `XADD` and `XRANGE ... COUNT 10`,
//! `PFADD` and `PFCOUNT`, `GEOADD` and `GEOSEARCH ... COUNT 10`, and a one-call `EVAL`,
//! each on one key that grows to about as many entries
//! as there are requests (10,000 unless `--requests` says otherwise), after a
//! `FLUSHALL` wherever a workload starts from nothing.
//!
//! Rates on a shared machine move with its load. The CPU time the servers spent per
//! request (user and system, read from `/proc`, summed over the three aegis nodes) moves
//! much less, so it is reported too, where `/proc` exists. So are the 99th percentile
//! and the slowest request's latency, which a stall anywhere in the write path shows.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Result;
use crate::local_cluster::{Cluster, PASSWORD, build_node, free_tcp_port, resp};

const CLIENTS: &str = "50";

/// One `redis-benchmark` configuration.
struct Workload {
    name: &'static str,
    args: &'static [&'static str],
    /// Runs on an empty server (`FLUSHALL` first), rather than on what the workload
    /// before it left (`RPOP` pops what `LPUSH` pushed).
    fresh: bool,
    /// Works on one collection, whose entries are drawn from as many names as there are
    /// requests (other workloads draw keys from 100,000).
    collection: bool,
}

const WORKLOADS: &[Workload] = &[
    Workload {
        name: "SET, 50 clients",
        args: &["-t", "set"],
        fresh: false,
        collection: false,
    },
    Workload {
        name: "GET, 50 clients",
        args: &["-t", "get"],
        fresh: false,
        collection: false,
    },
    Workload {
        name: "SET, 50 clients, pipeline 16",
        args: &["-t", "set", "-P", "16"],
        fresh: false,
        collection: false,
    },
    Workload {
        name: "GET, 50 clients, pipeline 16",
        args: &["-t", "get", "-P", "16"],
        fresh: false,
        collection: false,
    },
];

/// The collection workloads (`--collections`).
const COLLECTION_WORKLOADS: &[Workload] = &[
    Workload {
        name: "LPUSH onto one list",
        args: &["-t", "lpush"],
        fresh: true,
        collection: true,
    },
    Workload {
        name: "RPOP from it",
        args: &["-t", "rpop"],
        fresh: false,
        collection: true,
    },
    Workload {
        name: "SADD into one set",
        args: &["-t", "sadd"],
        fresh: true,
        collection: true,
    },
    Workload {
        name: "SPOP from it",
        args: &["-t", "spop"],
        fresh: false,
        collection: true,
    },
    Workload {
        name: "HSET into one hash",
        args: &["-t", "hset"],
        fresh: true,
        collection: true,
    },
    Workload {
        name: "ZADD into one sorted set",
        args: &["-t", "zadd"],
        fresh: true,
        collection: true,
    },
    Workload {
        name: "ZPOPMIN from it",
        args: &["-t", "zpopmin"],
        fresh: false,
        collection: true,
    },
    Workload {
        name: "LRANGE 0 99 of one list",
        args: &["-t", "lrange_100"],
        fresh: true,
        collection: true,
    },
    Workload {
        name: "XADD onto one stream",
        args: &["XADD", "events", "*", "field", "__rand_int__"],
        fresh: true,
        collection: true,
    },
    Workload {
        name: "XRANGE 10 entries of it",
        args: &["XRANGE", "events", "-", "+", "COUNT", "10"],
        fresh: false,
        collection: true,
    },
    Workload {
        name: "PFADD into one HyperLogLog",
        args: &["PFADD", "visitors", "user:__rand_int__"],
        fresh: true,
        collection: true,
    },
    Workload {
        name: "PFCOUNT of it",
        args: &["PFCOUNT", "visitors"],
        fresh: false,
        collection: true,
    },
    Workload {
        name: "GEOADD into one index",
        args: &[
            "GEOADD",
            "places",
            "13.__rand_int__",
            "38.__rand_int__",
            "p:__rand_int__",
        ],
        fresh: true,
        collection: true,
    },
    Workload {
        name: "GEOSEARCH 10 nearest of it",
        args: &[
            "GEOSEARCH",
            "places",
            "FROMLONLAT",
            "13.5",
            "38.5",
            "BYRADIUS",
            "50",
            "km",
            "COUNT",
            "10",
            "ASC",
        ],
        fresh: false,
        collection: true,
    },
    Workload {
        name: "EVAL of one INCR",
        args: &[
            "EVAL",
            "return redis.call('INCR', KEYS[1])",
            "1",
            "counter:__rand_int__",
        ],
        fresh: true,
        collection: true,
    },
];

pub(crate) fn run_cluster_bench(args: &[String]) -> Result {
    let mut requests: Option<u32> = None;
    let mut collections = false;
    let mut runs: usize = 1;
    let mut lease = false;
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        if flag == "--lease" {
            lease = true;
            continue;
        }
        if flag == "--collections" {
            collections = true;
            continue;
        }
        let value = rest.next();
        match (flag.as_str(), value) {
            ("--requests", Some(n)) => {
                requests = Some(
                    n.parse()
                        .map_err(|_| format!("--requests {n}: not a number"))?,
                );
            }
            ("--runs", Some(n)) => {
                runs = n
                    .parse()
                    .ok()
                    .filter(|r| *r > 0)
                    .ok_or_else(|| format!("--runs {n}: not a positive number"))?;
            }
            _ => {
                return Err(
                    "usage: bench cluster [--requests N] [--runs N] [--lease] [--collections]"
                        .to_owned(),
                );
            }
        }
    }
    for tool in ["redis-benchmark", "redis-server"] {
        if Command::new(tool).arg("--version").output().is_err() {
            return Err(format!(
                "`{tool}` is not installed (Debian: apt-get install -y redis-server redis-tools)"
            ));
        }
    }
    let (workloads, requests) = if collections {
        (COLLECTION_WORKLOADS, requests.unwrap_or(10_000))
    } else {
        (WORKLOADS, requests.unwrap_or(20_000))
    };
    let binary = build_node("release")?;
    let dir = std::env::temp_dir().join(format!("aegis-bench-cluster-{}", std::process::id()));
    // The nodes' default is a quorum round per read fence; `--lease` measures the
    // leader lease instead.
    let extra = if lease {
        "\n[raft]\nlease_reads = true\n"
    } else {
        ""
    };
    let measured = measure_all(binary, &dir, extra, workloads, requests, runs);
    let _ = std::fs::remove_dir_all(&dir);
    let [aegis, single, always, everysec] = measured?;
    let rate = |samples: &[Sample]| samples.iter().map(|s| s.rate).collect::<Vec<f64>>();
    let cpu = |samples: &[Sample]| {
        samples
            .iter()
            .map(|s| s.cpu_us)
            .collect::<Option<Vec<f64>>>()
    };

    println!(
        "\nrequests/s, {requests} requests per workload, median of {runs} run(s), aegis reads \
         fenced by {}; each workload runs against the four servers one after another:\n",
        if lease {
            "the leader's lease"
        } else {
            "a quorum round"
        }
    );
    println!(
        "| workload | aegis (3 nodes, fsync) | redis appendfsync always | ratio | redis appendfsync everysec | ratio | aegis single node (fsync) | ratio to always |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (i, workload) in workloads.iter().enumerate() {
        let (a, r, e) = (rate(&aegis[i]), rate(&always[i]), rate(&everysec[i]));
        let one = rate(&single[i]);
        println!(
            "| {} | {:.0} | {:.0} | {:.2}x | {:.0} | {:.2}x | {:.0} | {:.2}x |",
            workload.name,
            median(&a),
            median(&r),
            median(&ratios(&a, &r)),
            median(&e),
            median(&ratios(&a, &e)),
            median(&one),
            median(&ratios(&one, &r))
        );
    }
    println!(
        "\nserver CPU time per request in microseconds (user + system; aegis: the three nodes \
         together), median of {runs} run(s):\n"
    );
    println!(
        "| workload | aegis (3 nodes) | redis appendfsync always | ratio | aegis single node | ratio |"
    );
    println!("|---|---|---|---|---|---|");
    for (i, workload) in workloads.iter().enumerate() {
        let (Some(a), Some(r), Some(one)) = (cpu(&aegis[i]), cpu(&always[i]), cpu(&single[i]))
        else {
            println!("| {} | n/a | n/a | n/a | n/a | n/a |", workload.name);
            continue;
        };
        println!(
            "| {} | {:.1} | {:.1} | {:.2}x | {:.1} | {:.2}x |",
            workload.name,
            median(&a),
            median(&r),
            median(&ratios(&a, &r)),
            median(&one),
            median(&ratios(&one, &r))
        );
    }
    let latencies = |samples: &[Sample], pick: fn(&Latency) -> f64| {
        samples
            .iter()
            .map(|s| pick(&s.latency))
            .collect::<Vec<f64>>()
    };
    println!(
        "\nlatency in milliseconds, median of {runs} run(s) of each run's p99 and slowest request:\n"
    );
    println!(
        "| workload | aegis p99 | redis always p99 | aegis max | redis always max | single node p99 | single node max |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (i, workload) in workloads.iter().enumerate() {
        let (a, r, one) = (&aegis[i], &always[i], &single[i]);
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            workload.name,
            median(&latencies(a, |l| l.p99_ms)),
            median(&latencies(r, |l| l.p99_ms)),
            median(&latencies(a, |l| l.max_ms)),
            median(&latencies(r, |l| l.max_ms)),
            median(&latencies(one, |l| l.p99_ms)),
            median(&latencies(one, |l| l.max_ms)),
        );
    }
    Ok(())
}

/// Each run's aegis / redis ratio.
fn ratios(ours: &[f64], peer: &[f64]) -> Vec<f64> {
    ours.iter().zip(peer).map(|(o, p)| o / p).collect()
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// One workload's measurement against one server.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Requests per second.
    rate: f64,
    /// The server processes' CPU time per request, in microseconds, where `/proc` tells.
    cpu_us: Option<f64>,
    /// Latencies in milliseconds, as `redis-benchmark` reports them.
    latency: Latency,
}

/// A run's 99th percentile and slowest request, in milliseconds.
#[derive(Debug, Clone, Copy)]
struct Latency {
    p99_ms: f64,
    max_ms: f64,
}

/// Samples per server (the aegis cluster, a single aegis node, redis always, redis
/// everysec), per workload, per run.
type Rates = [Vec<Vec<Sample>>; 4];

/// The CPU time (user + system) the processes `pids` have used so far, in clock ticks.
fn cpu_ticks(pids: &[u32]) -> Option<u64> {
    let mut total = 0;
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name (field 2) may hold spaces; the fields after it do not.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // utime and stime are fields 14 and 15, i.e. 12 and 13 after the name.
        total += fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// Clock ticks per second in `/proc/<pid>/stat` (`USER_HZ`, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// Starts the aegis cluster, a single aegis node and both redis servers, then runs every
/// workload against the four in turn, `runs` times, so that the machine's load at any
/// moment weighs on all four alike.
fn measure_all(
    binary: std::path::PathBuf,
    dir: &Path,
    extra: &str,
    workloads: &[Workload],
    requests: u32,
    runs: usize,
) -> Result<Rates> {
    let mut cluster = Cluster::create(binary.clone(), dir.join("aegis"), extra)?;
    let result: Result<Rates> = (|| {
        for i in 0..cluster.nodes.len() {
            cluster.start(i)?;
        }
        let leader = cluster.wait_for_leader(None, Duration::from_secs(30))?;
        let aegis: SocketAddr = cluster.nodes[cluster.index_of(leader)]
            .client
            .parse()
            .map_err(|e| format!("node address: {e}"))?;
        eprintln!("aegis: benchmarking leader node {leader} at {aegis}");
        let (single_server, single) = start_single(&binary, &dir.join("aegis-single"))?;
        let (always_server, always) = start_redis(&dir.join("redis-always"), "always")?;
        let (everysec_server, everysec) = start_redis(&dir.join("redis-everysec"), "everysec")?;
        let mut rates: Rates = Default::default();
        for per_server in &mut rates {
            *per_server = vec![Vec::new(); workloads.len()];
        }
        for run in 1..=runs {
            eprintln!("run {run} of {runs}");
            for (i, workload) in workloads.iter().enumerate() {
                let targets = [
                    (aegis, Some(PASSWORD), cluster.pids()),
                    (single, Some(PASSWORD), vec![single_server.pid()]),
                    (always, None, vec![always_server.pid()]),
                    (everysec, None, vec![everysec_server.pid()]),
                ];
                for (server, (address, password, pids)) in targets.into_iter().enumerate() {
                    if workload.fresh {
                        flush_all(address, password)?;
                    }
                    let before = cpu_ticks(&pids);
                    let (rate, latency) = redis_benchmark(address, password, workload, requests)?;
                    let cpu_us = match (before, cpu_ticks(&pids)) {
                        (Some(b), Some(a)) => {
                            Some((a - b) as f64 / TICKS_PER_SECOND * 1e6 / f64::from(requests))
                        }
                        _ => None,
                    };
                    rates[server][i].push(Sample {
                        rate,
                        cpu_us,
                        latency,
                    });
                }
            }
        }
        Ok(rates)
    })();
    if result.is_err() {
        cluster.stop_all();
        cluster.print_log_tails();
    }
    cluster.destroy();
    result
}

/// Starts `aegis-node --single-node` in `dir`, with its defaults (a journal synced on
/// every batch) and the cluster's password.
fn start_single(binary: &Path, dir: &Path) -> Result<(Server, SocketAddr)> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let port = free_tcp_port()?;
    let config = dir.join("node.toml");
    let toml = format!(
        "[node]\nid = 1\nclient_listen = \"127.0.0.1:{port}\"\npeer_listen = \"127.0.0.1:1\"\ndata_dir = \"{}\"\n\n[security]\npassword = \"{PASSWORD}\"\n",
        dir.join("data").display()
    );
    std::fs::write(&config, toml).map_err(|e| format!("{}: {e}", config.display()))?;
    let server = Server(
        Command::new(binary)
            .arg("--config")
            .arg(&config)
            .arg("--single-node")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("aegis-node --single-node: {e}"))?,
    );
    let address = format!("127.0.0.1:{port}");
    wait_until_serving("aegis-node --single-node", || {
        resp(&address, &["PING"]).is_ok()
    })?;
    eprintln!("aegis: single node at {address}");
    Ok((server, address.parse().expect("a socket address")))
}

/// Starts a `redis-server` with the AOF on and `appendfsync` as given, in `dir`.
fn start_redis(dir: &Path, appendfsync: &str) -> Result<(Server, SocketAddr)> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let port = free_tcp_port()?;
    let server = Server(
        Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "yes",
            ])
            .args(["--appendfsync", appendfsync, "--dir"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("redis-server: {e}"))?,
    );
    let address: SocketAddr = format!("127.0.0.1:{port}")
        .parse()
        .expect("a socket address");
    wait_until_serving("redis-server", || {
        std::net::TcpStream::connect(address).is_ok()
    })?;
    eprintln!("redis: appendfsync {appendfsync} at {address}");
    Ok((server, address))
}

/// Polls `serving` until it says yes, for at most 10 s.
fn wait_until_serving(what: &str, serving: impl Fn() -> bool) -> Result {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !serving() {
        if Instant::now() > deadline {
            return Err(format!("{what} did not start"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Kills the server when dropped, so a failed measurement leaves nothing running.
struct Server(Child);

impl Server {
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Empties the server at `address` (`FLUSHALL`).
fn flush_all(address: SocketAddr, password: Option<&str>) -> Result {
    let mut command = Command::new("redis-cli");
    command.args([
        "-h",
        &address.ip().to_string(),
        "-p",
        &address.port().to_string(),
    ]);
    if let Some(password) = password {
        command.args(["-a", password, "--no-auth-warning"]);
    }
    let out = command
        .arg("FLUSHALL")
        .output()
        .map_err(|e| format!("redis-cli: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.trim() != "OK" {
        return Err(format!("FLUSHALL on {address}: {text}"));
    }
    Ok(())
}

/// Runs one workload and returns its requests per second and latencies.
fn redis_benchmark(
    address: SocketAddr,
    password: Option<&str>,
    workload: &Workload,
    requests: u32,
) -> Result<(f64, Latency)> {
    let key_range = if workload.collection {
        requests
    } else {
        100_000
    };
    let mut command = Command::new("redis-benchmark");
    command
        .args([
            "-h",
            &address.ip().to_string(),
            "-p",
            &address.port().to_string(),
        ])
        .args([
            "-c",
            CLIENTS,
            "-n",
            &requests.to_string(),
            "-r",
            &key_range.to_string(),
            "--csv",
        ]);
    if let Some(password) = password {
        command.args(["-a", password]);
    }
    // Last: a command of its own (`XADD ...`) takes every argument after it.
    command.args(workload.args);
    let out = command
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("redis-benchmark: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    // CSV: a header line naming the columns, then `"SET","12345.68",...` per test.
    let mut lines = text.lines();
    let header = csv_fields(lines.next().unwrap_or_default());
    // The last row: `LRANGE_100` fills its list first, in a row of its own.
    let row: Vec<f64> = csv_fields(
        lines
            .rfind(|line| !line.trim().is_empty())
            .unwrap_or_default(),
    )
    .iter()
    .map(|c| c.parse().unwrap_or(f64::NAN))
    .collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .and_then(|i| row.get(i).copied())
            .filter(|v| v.is_finite())
            .ok_or_else(|| {
                format!(
                    "no `{name}` from redis-benchmark for {}: {text}",
                    workload.name
                )
            })
    };
    let rate = column("rps")?;
    let latency = Latency {
        p99_ms: column("p99_latency_ms")?,
        max_ms: column("max_latency_ms")?,
    };
    eprintln!(
        "  {:<32} {address} {rate:>10.0} requests/s  p99 {:.2} ms  max {:.2} ms",
        workload.name, latency.p99_ms, latency.max_ms
    );
    Ok((rate, latency))
}

/// The fields of one CSV line as `redis-benchmark --csv` writes it: each in double
/// quotes, which a test's name (a command of its own, such as a script) may hold
/// commas inside.
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[cfg(test)]
mod tests {
    use super::csv_fields;

    #[test]
    fn csv_fields_keep_commas_inside_quotes() {
        assert_eq!(
            csv_fields(r#""EVAL return redis.call('INCR', KEYS[1])","4450.38","10.981""#),
            [
                "EVAL return redis.call('INCR', KEYS[1])",
                "4450.38",
                "10.981"
            ]
        );
        assert_eq!(csv_fields(r#""test","rps""#), ["test", "rps"]);
    }
}
