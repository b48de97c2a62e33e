//! `cargo xtask bench cluster`: `redis-benchmark` against a local 3-node aegis cluster
//! (fsync on every log write), and in the same run against a single local
//! `redis-server` with `appendfsync always` and with `everysec`, as reference points.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Result;
use crate::local_cluster::{Cluster, PASSWORD, build_node, free_tcp_port};

const CLIENTS: &str = "50";

/// One `redis-benchmark` configuration.
struct Workload {
    name: &'static str,
    args: &'static [&'static str],
}

const WORKLOADS: &[Workload] = &[
    Workload {
        name: "SET, 50 clients",
        args: &["-t", "set"],
    },
    Workload {
        name: "GET, 50 clients",
        args: &["-t", "get"],
    },
    Workload {
        name: "SET, 50 clients, pipeline 16",
        args: &["-t", "set", "-P", "16"],
    },
    Workload {
        name: "GET, 50 clients, pipeline 16",
        args: &["-t", "get", "-P", "16"],
    },
];

pub(crate) fn run_cluster_bench(args: &[String]) -> Result {
    let requests = match args {
        [] => 20_000,
        [flag, n] if flag == "--requests" => n
            .parse()
            .map_err(|_| format!("--requests {n}: not a number"))?,
        _ => return Err("usage: bench cluster [--requests N]".to_owned()),
    };
    for tool in ["redis-benchmark", "redis-server"] {
        if Command::new(tool).arg("--version").output().is_err() {
            return Err(format!(
                "`{tool}` is not installed (Debian: apt-get install -y redis-server redis-tools)"
            ));
        }
    }
    let binary = build_node("release")?;
    let dir = std::env::temp_dir().join(format!("aegis-bench-cluster-{}", std::process::id()));
    let aegis = measure_aegis(binary, &dir, requests);
    let always = measure_redis(&dir.join("redis-always"), "always", requests);
    let everysec = measure_redis(&dir.join("redis-everysec"), "everysec", requests);
    let _ = std::fs::remove_dir_all(&dir);
    let (aegis, always, everysec) = (aegis?, always?, everysec?);

    println!("\nrequests/s, {requests} requests per workload, same run:\n");
    println!(
        "| workload | aegis (3 nodes, fsync) | redis appendfsync always | ratio | redis appendfsync everysec | ratio |"
    );
    println!("|---|---|---|---|---|---|");
    for (i, workload) in WORKLOADS.iter().enumerate() {
        println!(
            "| {} | {:.0} | {:.0} | {:.2}x | {:.0} | {:.2}x |",
            workload.name,
            aegis[i],
            always[i],
            aegis[i] / always[i],
            everysec[i],
            aegis[i] / everysec[i]
        );
    }
    Ok(())
}

fn measure_aegis(binary: std::path::PathBuf, dir: &Path, requests: u32) -> Result<Vec<f64>> {
    let mut cluster = Cluster::create(binary, dir.join("aegis"))?;
    let result: Result<Vec<f64>> = (|| {
        for i in 0..cluster.nodes.len() {
            cluster.start(i)?;
        }
        let leader = cluster.wait_for_leader(None, Duration::from_secs(30))?;
        let address: SocketAddr = cluster.nodes[cluster.index_of(leader)]
            .client
            .parse()
            .map_err(|e| format!("node address: {e}"))?;
        eprintln!("aegis: benchmarking leader node {leader} at {address}");
        WORKLOADS
            .iter()
            .map(|w| redis_benchmark(address, Some(PASSWORD), w, requests))
            .collect()
    })();
    if result.is_err() {
        cluster.stop_all();
        cluster.print_log_tails();
    }
    cluster.destroy();
    result
}

fn measure_redis(dir: &Path, appendfsync: &str, requests: u32) -> Result<Vec<f64>> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let port = free_tcp_port()?;
    let mut server = RedisServer(
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
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(address).is_err() {
        if Instant::now() > deadline {
            return Err("redis-server did not start".to_owned());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("redis: benchmarking redis-server with appendfsync {appendfsync} at {address}");
    let rates = WORKLOADS
        .iter()
        .map(|w| redis_benchmark(address, None, w, requests))
        .collect();
    let _ = server.0.kill();
    rates
}

/// Kills the server when dropped, so a failed measurement leaves nothing running.
struct RedisServer(Child);

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs one workload and returns its requests per second.
fn redis_benchmark(
    address: SocketAddr,
    password: Option<&str>,
    workload: &Workload,
    requests: u32,
) -> Result<f64> {
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
            "100000",
            "--csv",
        ])
        .args(workload.args);
    if let Some(password) = password {
        command.args(["-a", password]);
    }
    let out = command
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("redis-benchmark: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    // CSV: a header line, then `"SET","12345.68",...` per test.
    let rate = text
        .lines()
        .filter(|l| !l.starts_with("\"test\""))
        .find_map(|l| l.split(',').nth(1)?.trim_matches('"').parse::<f64>().ok())
        .ok_or_else(|| {
            format!(
                "no result from redis-benchmark for {}: {text}",
                workload.name
            )
        })?;
    eprintln!("  {:<32} {rate:>10.0} requests/s", workload.name);
    Ok(rate)
}
