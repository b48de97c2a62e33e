//! The `aegis-node` binary as a real process: start, write, SIGKILL, restart, read.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::Duration;

use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::types::OwnedFrame;

use aegis_node::{KvStateMachine, StoreOptions};

use crate::support::Client;

const BIN: &str = env!("CARGO_BIN_EXE_aegis-node");

fn write_config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join("node.toml");
    let text = format!(
        "[node]\nid = 1\nclient_listen = \"127.0.0.1:0\"\npeer_listen = \"127.0.0.1:1\"\ndata_dir = \"{}\"\n{extra}",
        dir.join("data").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts the node and returns it with the address it printed.
fn start(config: &Path) -> (Child, SocketAddr) {
    let mut command = Command::new(BIN);
    command.arg("--config").arg(config).arg("--single-node");
    let (child, addr, _) = spawn(command);
    (child, addr)
}

/// Runs `command`, which starts a node, and returns it with the address it printed and
/// the rest of its standard error.
fn spawn(mut command: Command) -> (Child, SocketAddr, BufReader<ChildStderr>) {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("aegis-node starts");
    let mut stderr = BufReader::new(child.stderr.take().expect("piped"));
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr = line
        .split_once("clients on ")
        .and_then(|(_, rest)| rest.split(',').next())
        .and_then(|a| a.trim().parse().ok())
        .unwrap_or_else(|| panic!("no address in startup line `{line}`"));
    (child, addr, stderr)
}

/// A blocking connection to the node, waiting for replies at most 30 s.
fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
}

/// One request and its reply on a connection of its own.
fn call(addr: SocketAddr, args: &[&str]) -> OwnedFrame {
    call_on(&mut connect(addr), args).expect("the server replies")
}

/// One request on an open connection; `None` once the connection fails.
fn call_on(stream: &mut TcpStream, args: &[&str]) -> Option<OwnedFrame> {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    stream.write_all(&Client::request(&args)).ok()?;
    let mut buf = Vec::new();
    loop {
        if let Some((frame, _)) = decode(&buf).ok()? {
            return Some(frame);
        }
        let mut chunk = [0_u8; 1024];
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[test]
fn writes_acknowledged_under_load_survive_sigkill() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    const WRITERS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let (mut node, addr) = start(&config);
    let acknowledged = AtomicUsize::new(0);
    let written: Vec<String> = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let acknowledged = &acknowledged;
                scope.spawn(move || {
                    let mut stream = connect(addr);
                    let mut done = Vec::new();
                    for i in 0.. {
                        let key = format!("w{w}-{i}");
                        match call_on(&mut stream, &["SET", &key, &key]) {
                            Some(OwnedFrame::SimpleString(ok)) if ok == b"OK" => {
                                done.push(key);
                                acknowledged.fetch_add(1, Ordering::Relaxed);
                            }
                            _ => break,
                        }
                    }
                    done
                })
            })
            .collect();
        // Killed while every writer still has a write in flight.
        while acknowledged.load(Ordering::Relaxed) < 2000 {
            std::thread::sleep(Duration::from_millis(1));
        }
        node.kill().unwrap(); // SIGKILL
        node.wait().unwrap();
        writers
            .into_iter()
            .flat_map(|writer| writer.join().unwrap())
            .collect()
    });
    assert!(written.len() >= 2000);

    let (mut node, addr) = start(&config);
    let mut stream = connect(addr);
    for key in &written {
        assert_eq!(
            call_on(&mut stream, &["GET", key]),
            Some(OwnedFrame::BulkString(key.clone().into_bytes())),
            "acknowledged write of {key} lost"
        );
    }
    node.kill().unwrap();
    node.wait().unwrap();
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let (mut node, addr) = start(&config);
    for i in 0..20 {
        let reply = call(addr, &["SET", &format!("k{i}"), &format!("v{i}")]);
        assert_eq!(reply, OwnedFrame::SimpleString(b"OK".to_vec()));
    }
    assert_eq!(call(addr, &["INCRBY", "n", "7"]), OwnedFrame::Integer(7));
    node.kill().unwrap(); // SIGKILL
    node.wait().unwrap();

    let (mut node, addr) = start(&config);
    for i in 0..20 {
        let reply = call(addr, &["GET", &format!("k{i}")]);
        assert_eq!(reply, OwnedFrame::BulkString(format!("v{i}").into_bytes()));
    }
    assert_eq!(call(addr, &["INCR", "n"]), OwnedFrame::Integer(8));
    let OwnedFrame::BulkString(info) = call(addr, &["INFO", "replication"]) else {
        panic!("INFO is a bulk string");
    };
    assert!(
        String::from_utf8(info)
            .unwrap()
            .contains("applied_index:22")
    );
    node.kill().unwrap();
    node.wait().unwrap();
}

/// SIGTERM stops a node cleanly: it exits with success after saying so, and its store
/// holds every write without the journal's help.
#[test]
fn sigterm_stops_a_node_cleanly() {
    use rustix::process::{Pid, Signal, kill_process};
    stops_cleanly("SIGTERM", |node, _| {
        kill_process(Pid::from_child(node), Signal::TERM).unwrap();
    });
}

/// So does `SHUTDOWN` from a client, which sees its connection close.
#[test]
fn shutdown_stops_a_node_cleanly() {
    stops_cleanly("SHUTDOWN", |_, addr| {
        let mut stream = connect(addr);
        assert_eq!(call_on(&mut stream, &["SHUTDOWN"]), None);
    });
}

/// Starts a single node, writes 20 keys, stops it with `stop`, and checks that it exited
/// with success, said so, and left a store that holds the writes by itself.
fn stops_cleanly(how: &str, stop: impl FnOnce(&Child, SocketAddr)) {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let mut command = Command::new(BIN);
    command.arg("--config").arg(&config).arg("--single-node");
    let (mut node, addr, mut stderr) = spawn(command);
    for i in 0..20 {
        let reply = call(addr, &["SET", &format!("k{i}"), &format!("v{i}")]);
        assert_eq!(reply, OwnedFrame::SimpleString(b"OK".to_vec()));
    }
    stop(&node, addr);
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let status = node.wait().unwrap();
    assert!(
        status.success(),
        "{how} ended the node with {status}: {rest}"
    );
    assert!(rest.contains("aegis-node 1 stopped"), "{rest}");

    // The store was persisted on the way out: it opens at the last write by itself.
    let store = KvStateMachine::open(
        &dir.path().join("data").join("state.redb"),
        StoreOptions::default(),
    )
    .unwrap();
    assert_eq!(store.applied_index(), 20);
    assert_eq!(store.get(b"k19", 0).unwrap(), Some(b"v19".to_vec()));
}

/// Linux scheduling policies, as `/proc/<pid>/task/<tid>/stat` gives them.
#[cfg(target_os = "linux")]
const SCHED_OTHER: u32 = 0;
#[cfg(target_os = "linux")]
const SCHED_BATCH: u32 = 3;
#[cfg(target_os = "linux")]
const SCHED_IDLE: u32 = 5;

/// The configuration that keeps every thread under the policy it started with.
#[cfg(target_os = "linux")]
const SCHED_BATCH_OFF: &str = "[server]\nsched_batch = false\n";

#[cfg(target_os = "linux")]
#[test]
fn runtime_threads_run_under_sched_batch_unless_configured_not_to() {
    for (extra, runtime_policy) in [("", SCHED_BATCH), (SCHED_BATCH_OFF, SCHED_OTHER)] {
        let dir = tempfile::tempdir().unwrap();
        let (mut node, addr) = start(&write_config(dir.path(), extra));
        assert_eq!(
            call(addr, &["PING"]),
            OwnedFrame::SimpleString(b"PONG".to_vec())
        );
        // Answered by the applier: by then its thread has named itself and run its
        // start hook.
        assert_eq!(
            call(addr, &["SET", "k", "v"]),
            OwnedFrame::SimpleString(b"OK".to_vec())
        );
        let threads = crate::support::thread_policies(node.id());
        let (runtime, others): (Vec<_>, Vec<_>) = threads
            .iter()
            .partition(|(name, _)| name.starts_with("tokio-") || name.starts_with("aegis-apply"));
        assert!(
            runtime
                .iter()
                .any(|(name, _)| name.starts_with("aegis-apply")),
            "{threads:?}"
        );
        assert!(
            runtime.iter().all(|&(_, policy)| *policy == runtime_policy),
            "{threads:?}"
        );
        // The main thread, and any other outside the runtime and the applier, keep the
        // default.
        assert!(!others.is_empty(), "{threads:?}");
        assert!(
            others.iter().all(|&(_, policy)| *policy == SCHED_OTHER),
            "{threads:?}"
        );
        node.kill().unwrap();
        node.wait().unwrap();
    }
}

/// Whether this process may give its threads any scheduling policy: holds
/// `CAP_SYS_NICE` (bit 23 of its effective capabilities), as root usually does.
#[cfg(target_os = "linux")]
fn may_set_any_policy() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let caps = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .expect("a CapEff line");
    u64::from_str_radix(caps.trim(), 16).unwrap() & (1 << 23) != 0
}

#[cfg(target_os = "linux")]
#[test]
fn a_refused_sched_batch_leaves_threads_as_they_were_and_says_why() {
    for (extra, warns) in [("", true), (SCHED_BATCH_OFF, false)] {
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), extra);
        // A thread under SCHED_IDLE may leave it only for a nice value its RLIMIT_NICE
        // allows, unless it holds CAP_SYS_NICE: with the limit at its lowest and the
        // capability dropped, the kernel refuses every thread SCHED_BATCH. The three
        // tools come with util-linux.
        let mut command = Command::new("prlimit");
        command.args(["--nice=0:0", "--"]);
        if may_set_any_policy() {
            command.args([
                "setpriv",
                "--inh-caps=-sys_nice",
                "--bounding-set=-sys_nice",
            ]);
            command.arg("--");
        }
        command.args(["chrt", "--idle", "0", BIN, "--config"]);
        command.arg(&config).arg("--single-node");
        let (mut node, addr, mut stderr) = spawn(command);
        // Answered by the applier, whose thread has run its start hook by then.
        assert_eq!(
            call(addr, &["SET", "k", "v"]),
            OwnedFrame::SimpleString(b"OK".to_vec())
        );
        assert_eq!(
            call(addr, &["GET", "k"]),
            OwnedFrame::BulkString(b"v".to_vec())
        );
        let threads = crate::support::thread_policies(node.id());
        assert!(
            threads
                .iter()
                .any(|(name, _)| name.starts_with("aegis-apply")),
            "{threads:?}"
        );
        assert!(
            threads.iter().all(|&(_, policy)| policy == SCHED_IDLE),
            "every thread keeps the policy it started with: {threads:?}"
        );
        assert!(threads.iter().all(|&(_, policy)| policy != SCHED_BATCH));
        node.kill().unwrap();
        node.wait().unwrap();
        let mut rest = String::new();
        stderr.read_to_string(&mut rest).unwrap();
        assert_eq!(
            rest.contains("SCHED_BATCH refused"),
            warns,
            "standard error after the first line: {rest:?}"
        );
        if warns {
            assert!(rest.contains("sched_batch = false"), "{rest:?}");
        }
    }
}

#[test]
fn bad_configs_and_arguments_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "[raft]\nheartbeat_interval = 0\n");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("--single-node")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("raft.heartbeat_interval"), "{stderr}");

    let out = Command::new(BIN).arg("--bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bogus"));

    let good = write_config(dir.path(), "");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&good)
        .output()
        .unwrap();
    // Replicated mode (the default) needs certificates for the peer transport.
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("[tls]"));

    let out = Command::new(BIN)
        .args(["certs", "--nodes", "3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out"));

    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--config"));
}
