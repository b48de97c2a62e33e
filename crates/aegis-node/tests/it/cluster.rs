//! Three replicated `aegis-node` processes over QUIC on loopback: SIGKILL of the leader
//! under client load, restarts of every node, and no acknowledged write lost.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aegis_sim::SimRng;
use aegis_sim::checker::{RegisterInput, RegisterOutput};
use aegis_sim::history::History;
use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::types::OwnedFrame;

use crate::support::Client;

const BIN: &str = env!("CARGO_BIN_EXE_aegis-node");
const IDS: [u64; 3] = [1, 2, 3];

struct Node {
    config: PathBuf,
    stderr: PathBuf,
    process: Option<Child>,
    client: Option<SocketAddr>,
}

struct Cluster {
    _dir: tempfile::TempDir,
    nodes: Vec<Node>,
    peer_ports: Vec<u16>,
}

impl Cluster {
    fn start() -> Cluster {
        Cluster::start_with("")
    }

    /// Starts three nodes whose configs end with `extra` (TOML sections).
    fn start_with(extra: &str) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new(BIN)
            .args(["certs", "--out"])
            .arg(dir.path().join("certs"))
            // One spare, for a node that joins later.
            .args(["--nodes", "4"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "aegis-node certs failed");
        // The OS picks each peer port; the sockets are closed just before the nodes bind
        // them, since every node must know the others' addresses up front.
        let peer_ports: Vec<u16> = IDS.iter().map(|_| free_udp_port()).collect();
        let mut cluster = Cluster {
            _dir: dir,
            nodes: Vec::new(),
            peer_ports,
        };
        for (i, id) in IDS.into_iter().enumerate() {
            let mut text = cluster.node_config(id, cluster.peer_ports[i]);
            for (j, peer) in IDS.into_iter().enumerate().filter(|(_, p)| *p != id) {
                text.push_str(&format!(
                    "[[peers]]\nid = {peer}\naddress = \"127.0.0.1:{}\"\n",
                    cluster.peer_ports[j]
                ));
            }
            text.push_str(extra);
            cluster.add_node(id, &text);
        }
        for i in 0..IDS.len() {
            cluster.boot(i);
        }
        cluster
    }

    /// The `[node]` and `[tls]` sections of node `id`, listening for peers on `peer_port`.
    fn node_config(&self, id: u64, peer_port: u16) -> String {
        let dir = self._dir.path();
        let certs = dir.join("certs");
        format!(
            "[node]\nid = {id}\nclient_listen = \"127.0.0.1:0\"\npeer_listen = \"127.0.0.1:{peer_port}\"\ndata_dir = \"{}\"\n[tls]\nca_cert = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
            dir.join(format!("node-{id}")).display(),
            certs.join("ca.pem").display(),
            certs.join(format!("node-{id}.pem")).display(),
            certs.join(format!("node-{id}.key")).display()
        )
    }

    /// Writes node `id`'s configuration; it starts with [`Cluster::boot`].
    fn add_node(&mut self, id: u64, config_text: &str) {
        let dir = self._dir.path();
        let config = dir.join(format!("node-{id}.toml"));
        std::fs::write(&config, config_text).unwrap();
        self.nodes.push(Node {
            config,
            stderr: dir.join(format!("node-{id}.log")),
            process: None,
            client: None,
        });
    }

    fn boot(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let log = std::fs::File::create(&node.stderr).unwrap();
        let child = Command::new(BIN)
            .arg("--config")
            .arg(&node.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        node.process = Some(child);
        node.client = Some(wait_for_address(&node.stderr));
    }

    fn kill(&mut self, i: usize) {
        let mut child = self.nodes[i].process.take().expect("running");
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        self.nodes[i].client = None;
    }

    /// Whether node `i` has stored a Raft snapshot.
    fn has_snapshot(&self, i: usize) -> bool {
        let dir = self
            ._dir
            .path()
            .join(format!("node-{}", IDS[i]))
            .join("raft-log");
        std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "snapshot"))
        })
    }

    fn live_addresses(&self) -> Vec<SocketAddr> {
        self.nodes.iter().filter_map(|n| n.client).collect()
    }

    /// The index of the node that reports itself leader.
    fn leader(&self) -> usize {
        for _ in 0..300 {
            for (i, node) in self.nodes.iter().enumerate() {
                if let Some(addr) = node.client
                    && let Ok(OwnedFrame::BulkString(info)) = call(addr, &["INFO", "replication"])
                    && String::from_utf8_lossy(&info).contains("role:leader")
                {
                    return i;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no leader elected");
    }

    /// Kills every node, starts them all again, and checks every node serves every key in
    /// `acknowledged`.
    fn restart_all_and_check(&mut self, acknowledged: &BTreeMap<String, String>) {
        for i in 0..IDS.len() {
            self.kill(i);
        }
        for i in 0..IDS.len() {
            self.boot(i);
        }
        self.leader();
        for addr in self.live_addresses() {
            self.check(addr, acknowledged);
        }
    }

    /// Every key in `acknowledged` has its value, read linearizably through `addr`.
    fn check(&self, addr: SocketAddr, acknowledged: &BTreeMap<String, String>) {
        for (key, value) in acknowledged {
            let reply = retry(|| call(addr, &["GET", key]));
            assert_eq!(
                reply,
                OwnedFrame::BulkString(value.clone().into_bytes()),
                "key {key}"
            );
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.process.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Reads the client address from the node's startup line.
fn wait_for_address(stderr: &Path) -> SocketAddr {
    for _ in 0..600 {
        let text = std::fs::read_to_string(stderr).unwrap_or_default();
        if let Some(addr) = text
            .lines()
            .find_map(|l| {
                l.split_once("clients on ")
                    .and_then(|(_, rest)| rest.split(',').next())
            })
            .and_then(|a| a.trim().parse().ok())
        {
            return addr;
        }
        if text.contains("aegis-node:") {
            panic!("node failed to start: {text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "node never printed its address: {}",
        std::fs::read_to_string(stderr).unwrap_or_default()
    );
}

/// Starts the error of a request that never reached a node (so it had no effect).
const NOT_SENT: &str = "not sent: ";

/// One request and its reply, or an error if the node is gone or answers with an error.
fn call(addr: SocketAddr, args: &[&str]) -> Result<OwnedFrame, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("{NOT_SENT}{e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    stream
        .write_all(&Client::request(&args))
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    loop {
        if let Some((frame, _)) = decode(&buf).map_err(|e| e.to_string())? {
            return match frame {
                OwnedFrame::Error(e) => Err(e),
                frame => Ok(frame),
            };
        }
        let mut chunk = [0_u8; 1024];
        let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed".to_owned());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Retries a call that may meet an election in progress.
fn retry(mut f: impl FnMut() -> Result<OwnedFrame, String>) -> OwnedFrame {
    let mut last = String::new();
    for _ in 0..100 {
        match f() {
            Ok(frame) => return frame,
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("never succeeded: {last}");
}

/// An apply buffer this small keeps flushes (each on its own thread) running whenever
/// a node is killed, so recovery meets redb mid-commit.
const SMALL_APPLY_BUFFER: &str = "[server]\napply_buffer_keys_max = 4\n";

#[test]
fn leader_sigkill_under_load_and_full_restart_lose_no_acknowledged_write() {
    let mut cluster = Cluster::start_with(SMALL_APPLY_BUFFER);
    let acknowledged = Arc::new(Mutex::new(BTreeMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let addresses = cluster.live_addresses();
            let acknowledged = Arc::clone(&acknowledged);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let (key, value) = (format!("w{w}:{i}"), format!("v{i}"));
                    // Writers keep going through every node, dead or alive; only the writes
                    // a node acknowledged with OK must survive.
                    let addr = addresses[i % addresses.len()];
                    if call(addr, &["SET", &key, &value])
                        == Ok(OwnedFrame::SimpleString(b"OK".to_vec()))
                    {
                        acknowledged.lock().unwrap().insert(key, value);
                    }
                    i += 1;
                }
            })
        })
        .collect();
    let wait_for_writes = |count: usize| {
        for _ in 0..1200 {
            if acknowledged.lock().unwrap().len() >= count {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("fewer than {count} writes were acknowledged");
    };
    wait_for_writes(50);
    let leader = cluster.leader();
    cluster.kill(leader);
    let before = acknowledged.lock().unwrap().len();
    wait_for_writes(before + 50);
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let survivor = cluster.live_addresses()[0];
    cluster.check(survivor, &acknowledged);

    // The killed node comes back and serves everything too.
    cluster.boot(leader);
    cluster.check(cluster.nodes[leader].client.unwrap(), &acknowledged);

    // Every node restarts; nothing acknowledged is lost.
    cluster.restart_all_and_check(&acknowledged);
}

/// One client: reads and writes a few keys through random nodes, recording every
/// invocation and response. A failed or unanswered write stays indeterminate: it may
/// or may not have taken effect.
fn client_loop(client: u64, addresses: &[SocketAddr], history: &Mutex<History>, stop: &AtomicBool) {
    let mut rng = SimRng::new(client);
    let mut sequence = 0;
    while !stop.load(Ordering::Relaxed) {
        let key = rng.below(3);
        let addr = addresses[rng.index(addresses.len())];
        let name = format!("lin:{key}");
        if rng.chance(500) {
            sequence += 1;
            let value = client << 32 | sequence;
            let id = history
                .lock()
                .unwrap()
                .invoke(client, key, RegisterInput::Put(value));
            match call(addr, &["SET", &name, &value.to_string()]) {
                Ok(OwnedFrame::SimpleString(ok)) if ok == b"OK" => {
                    history
                        .lock()
                        .unwrap()
                        .complete(id, RegisterOutput::Written);
                }
                // A node that is down never saw the write.
                Err(e) if e.starts_with(NOT_SENT) => history.lock().unwrap().fail(id),
                // Anything else may or may not have taken effect.
                _ => {}
            }
        } else {
            let id = history
                .lock()
                .unwrap()
                .invoke(client, key, RegisterInput::Get);
            let value = match call(addr, &["GET", &name]) {
                Ok(OwnedFrame::BulkString(v)) => {
                    Some(String::from_utf8(v).unwrap().parse().unwrap())
                }
                Ok(OwnedFrame::Null) => None,
                // The read did not complete; unknown reads are left out of the check.
                _ => continue,
            };
            history
                .lock()
                .unwrap()
                .complete(id, RegisterOutput::Value(value));
        }
    }
}

#[test]
fn client_history_under_leader_kills_is_linearizable() {
    let mut cluster = Cluster::start_with(SMALL_APPLY_BUFFER);
    let history = Arc::new(Mutex::new(History::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (1..=3)
        .map(|client| {
            let addresses = cluster.live_addresses();
            let (history, stop) = (Arc::clone(&history), Arc::clone(&stop));
            std::thread::spawn(move || client_loop(client, &addresses, &history, &stop))
        })
        .collect();
    let completed = |history: &Mutex<History>| history.lock().unwrap().stats().completed;
    let wait_for = |count: usize| {
        for _ in 0..1200 {
            if completed(&history) >= count {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("clients completed fewer than {count} operations");
    };
    wait_for(100);
    for _ in 0..2 {
        let leader = cluster.leader();
        cluster.kill(leader);
        let done = completed(&history);
        wait_for(done + 100);
        cluster.boot(leader);
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    let history = history.lock().unwrap();
    let stats = history.stats();
    assert!(stats.completed >= 300, "{stats:?}");
    if let Err(violation) = history.check(10_000_000) {
        panic!("not shown linearizable ({stats:?}): {violation:?}");
    }
}

#[test]
fn a_follower_catches_up_by_snapshot_and_restarts_keep_every_key_after_compaction() {
    // A short tail, so the stopped follower falls behind the compacted log.
    let mut cluster =
        Cluster::start_with("[raft]\nsnapshot_every_entries = 40\ncompaction_tail_entries = 10\n");
    let leader = cluster.leader();
    let follower = (leader + 1) % IDS.len();
    cluster.kill(follower);

    let leader_addr = cluster.nodes[leader].client.unwrap();
    // An address met while the follower is down: its entry is compacted away before the
    // follower returns, so only the snapshot can tell it.
    let met = "127.0.0.1:9";
    assert_eq!(
        retry(|| call(leader_addr, &["CLUSTER", "MEET", "4", met])),
        OwnedFrame::SimpleString(b"OK".to_vec())
    );
    let mut acknowledged = BTreeMap::new();
    for i in 0..150 {
        let (key, value) = (format!("k{i}"), format!("v{i}"));
        let reply = retry(|| call(leader_addr, &["SET", &key, &value]));
        assert_eq!(reply, OwnedFrame::SimpleString(b"OK".to_vec()));
        acknowledged.insert(key, value);
    }
    // The leader's log now starts after entries the stopped follower never received.
    for _ in 0..200 {
        if cluster.has_snapshot(leader) {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(cluster.has_snapshot(leader), "the leader never snapshotted");
    assert!(!cluster.has_snapshot(follower));

    cluster.boot(follower);
    cluster.check(cluster.nodes[follower].client.unwrap(), &acknowledged);
    assert!(
        cluster.has_snapshot(follower),
        "the follower caught up without a snapshot"
    );
    let follower_addr = cluster.nodes[follower].client.unwrap();
    let Ok(OwnedFrame::BulkString(info)) = call(follower_addr, &["INFO", "replication"]) else {
        panic!("INFO answers with a bulk string");
    };
    let info = String::from_utf8(info).unwrap();
    assert!(
        info.lines()
            .any(|line| line.trim_end() == "snapshots_installed:1"),
        "the follower did not install the leader's snapshot:\n{info}"
    );
    let book = cluster
        ._dir
        .path()
        .join(format!("node-{}", IDS[follower]))
        .join("peers");
    let book = std::fs::read_to_string(&book).unwrap_or_default();
    assert!(
        book.lines().any(|line| line == format!("4 {met}")),
        "the follower's address book lacks node 4:\n{book}"
    );

    // Every node restarts on a compacted log; nothing acknowledged is lost.
    cluster.restart_all_and_check(&acknowledged);
}

/// The members `CLUSTER MEMBERS` (or a change) lists, as `id role address` lines.
fn members(frame: &OwnedFrame) -> Vec<String> {
    let OwnedFrame::Array(lines) = frame else {
        panic!("expected an array of members, got {frame:?}");
    };
    lines
        .iter()
        .map(|line| match line {
            OwnedFrame::BulkString(text) => String::from_utf8_lossy(text).into_owned(),
            other => panic!("expected a member line, got {other:?}"),
        })
        .collect()
}

/// Asks `addr` for its members until `done` holds of them (or about five seconds
/// passed), and returns the last answer.
fn wait_for_members(addr: SocketAddr, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..100 {
        seen = members(&retry(|| call(addr, &["CLUSTER", "MEMBERS"])));
        if done(&seen) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    seen
}

#[test]
fn a_fourth_node_joins_through_cluster_commands_and_leaves_again() {
    let mut cluster = Cluster::start();
    let leader = cluster.leader();
    #[cfg(target_os = "linux")]
    for node in &cluster.nodes {
        // The runtime and the applier run under SCHED_BATCH (3); the Raft thread and
        // the main one keep the default (0). (Threads the applier starts inherit its.)
        let threads = crate::support::thread_policies(node.process.as_ref().unwrap().id());
        let policies = |prefix: &str| {
            let found: Vec<u32> = threads
                .iter()
                .filter(|(name, _)| name.starts_with(prefix))
                .map(|(_, policy)| *policy)
                .collect();
            assert!(!found.is_empty(), "no {prefix} thread in {threads:?}");
            found
        };
        assert!(policies("tokio-").iter().all(|p| *p == 3), "{threads:?}");
        assert_eq!(policies("aegis-apply"), [3], "{threads:?}");
        assert_eq!(policies("aegis-raft"), [0], "{threads:?}");
        assert_eq!(policies("aegis-node"), [0], "{threads:?}");
    }
    let leader_addr = cluster.nodes[leader].client.unwrap();
    retry(|| call(leader_addr, &["SET", "before", "1"]));

    // Node 4 starts outside the group, knowing where the members are.
    let port = free_udp_port();
    let mut text = cluster.node_config(4, port);
    text = text.replace("[tls]", "join = true\n[tls]");
    for (j, peer) in IDS.into_iter().enumerate() {
        text.push_str(&format!(
            "[[peers]]\nid = {peer}\naddress = \"127.0.0.1:{}\"\n",
            cluster.peer_ports[j]
        ));
    }
    cluster.add_node(4, &text);
    cluster.boot(3);
    let joiner = cluster.nodes[3].client.unwrap();
    let address = format!("127.0.0.1:{port}");
    // Asked of a follower, changes are forwarded to the leader; one MEET reaches every
    // member through the log.
    let follower = (0..3).find(|i| *i != leader).unwrap();
    let follower_addr = cluster.nodes[follower].client.unwrap();
    assert_eq!(
        retry(|| call(follower_addr, &["CLUSTER", "MEET", "4", &address])),
        OwnedFrame::SimpleString(b"OK".to_vec())
    );
    let added = members(&retry(|| {
        call(follower_addr, &["CLUSTER", "ADDLEARNER", "4"])
    }));
    assert!(added.contains(&format!("4 learner {address}")), "{added:?}");
    for i in 0..3 {
        let addr = cluster.nodes[i].client.unwrap();
        let seen = wait_for_members(addr, |seen| seen.contains(&format!("4 learner {address}")));
        assert!(
            seen.contains(&format!("4 learner {address}")),
            "node {}: {seen:?}",
            i + 1
        );
    }
    let promoted = members(&retry(|| call(leader_addr, &["CLUSTER", "PROMOTE", "4"])));
    assert!(
        promoted.contains(&format!("4 voter {address}")),
        "{promoted:?}"
    );

    // The new voter serves reads and forwards writes.
    assert_eq!(
        retry(|| call(joiner, &["GET", "before"])),
        OwnedFrame::BulkString(b"1".to_vec())
    );
    retry(|| call(joiner, &["SET", "via-4", "2"]));
    assert_eq!(
        retry(|| call(leader_addr, &["GET", "via-4"])),
        OwnedFrame::BulkString(b"2".to_vec())
    );
    let seen = members(&retry(|| call(joiner, &["CLUSTER", "MEMBERS"])));
    assert_eq!(
        seen.iter().filter(|m| m.contains(" voter ")).count(),
        4,
        "{seen:?}"
    );
    // Every member is listed with its address, node 4 itself included.
    assert!(seen.iter().all(|m| !m.ends_with(" -")), "{seen:?}");
    assert!(seen.contains(&format!("4 voter {address}")), "{seen:?}");

    // A follower restarted remembers where node 4 is.
    cluster.kill(follower);
    cluster.boot(follower);
    let follower_addr = cluster.nodes[follower].client.unwrap();
    let seen = members(&retry(|| call(follower_addr, &["CLUSTER", "MEMBERS"])));
    assert!(seen.contains(&format!("4 voter {address}")), "{seen:?}");

    // Node 4 leaves, asked through the restarted follower.
    let left = members(&retry(|| call(follower_addr, &["CLUSTER", "REMOVE", "4"])));
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(left.iter().all(|m| !m.starts_with("4 ")), "{left:?}");
    // Bad requests are plain errors.
    let leader_addr = cluster.nodes[cluster.leader()].client.unwrap();
    let e = call(leader_addr, &["CLUSTER", "PROMOTE", "zero"]).unwrap_err();
    assert!(e.starts_with("ERR node id"), "{e}");
    let e = call(leader_addr, &["CLUSTER", "MEET", "5", "nowhere"]).unwrap_err();
    assert!(e.starts_with("ERR address"), "{e}");
    // LOCAL teaches only the node asked, without the log.
    assert_eq!(
        call(
            leader_addr,
            &["CLUSTER", "MEET", "5", "127.0.0.1:9", "LOCAL"]
        ),
        Ok(OwnedFrame::SimpleString(b"OK".to_vec()))
    );
    let e = call(leader_addr, &["CLUSTER", "FORGET", "5"]).unwrap_err();
    assert!(e.starts_with("ERR unknown subcommand"), "{e}");
}

/// Reads one reply from a connection kept open, `buf` holding what was read past it.
fn read_reply(stream: &mut TcpStream, buf: &mut Vec<u8>) -> OwnedFrame {
    loop {
        if let Some((frame, used)) = decode(buf).unwrap() {
            buf.drain(..used);
            return frame;
        }
        let mut chunk = [0_u8; 1024];
        let n = stream.read(&mut chunk).expect("a reply in time");
        assert!(n > 0, "the node closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn open(addr: SocketAddr, args: &[&str]) -> (TcpStream, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    stream.write_all(&Client::request(&args)).unwrap();
    (stream, Vec::new())
}

#[test]
fn subscribers_blocked_clients_and_stream_readers_on_every_node_get_what_any_node_takes() {
    let cluster = Cluster::start();
    let leader = cluster.leader();
    let addresses = cluster.live_addresses();
    let bulk = |s: &str| OwnedFrame::BulkString(s.as_bytes().to_vec());
    // A subscriber on every node, each confirmed before anything is published.
    let mut subscribers: Vec<(TcpStream, Vec<u8>)> = addresses
        .iter()
        .map(|&addr| {
            let (mut stream, mut buf) = open(addr, &["SUBSCRIBE", "feed"]);
            let confirmed = read_reply(&mut stream, &mut buf);
            assert_eq!(
                confirmed,
                OwnedFrame::Array(vec![
                    bulk("subscribe"),
                    bulk("feed"),
                    OwnedFrame::Integer(1)
                ])
            );
            (stream, buf)
        })
        .collect();
    // A client blocked on an empty list on each follower.
    let mut blocked: Vec<(TcpStream, Vec<u8>)> = (0..addresses.len())
        .filter(|&i| i != leader)
        .map(|i| open(addresses[i], &["BLPOP", "jobs", "0"]))
        .collect();
    // Messages published through every node in turn, one after the other.
    let sent: Vec<String> = (0..6).map(|i| format!("m{i}")).collect();
    for (i, message) in sent.iter().enumerate() {
        let through = addresses[i % addresses.len()];
        retry(|| call(through, &["PUBLISH", "feed", message]));
    }
    for (stream, buf) in &mut subscribers {
        for message in &sent {
            assert_eq!(
                read_reply(stream, buf),
                OwnedFrame::Array(vec![bulk("message"), bulk("feed"), bulk(message)]),
                "every subscriber gets every message, in the order published"
            );
        }
    }
    // Pushed through the leader, one job for each blocked client.
    for job in ["j1", "j2"] {
        retry(|| call(addresses[leader], &["RPUSH", "jobs", job]));
    }
    let mut got: Vec<OwnedFrame> = blocked
        .iter_mut()
        .map(|(stream, buf)| read_reply(stream, buf))
        .collect();
    got.sort_by_key(|frame| format!("{frame:?}"));
    assert_eq!(
        got,
        vec![
            OwnedFrame::Array(vec![bulk("jobs"), bulk("j1")]),
            OwnedFrame::Array(vec![bulk("jobs"), bulk("j2")]),
        ]
    );
    assert_eq!(
        retry(|| call(addresses[leader], &["LLEN", "jobs"])),
        OwnedFrame::Integer(0)
    );
    // A reader blocked on an empty stream on every node gets an entry added through a
    // follower.
    let mut readers: Vec<(TcpStream, Vec<u8>)> = addresses
        .iter()
        .map(|&addr| open(addr, &["XREAD", "BLOCK", "0", "STREAMS", "events", "0"]))
        .collect();
    let follower = (leader + 1) % addresses.len();
    assert_eq!(
        retry(|| call(addresses[follower], &["XADD", "events", "7-1", "k", "v"])),
        bulk("7-1")
    );
    for (stream, buf) in &mut readers {
        assert_eq!(
            read_reply(stream, buf),
            OwnedFrame::Array(vec![OwnedFrame::Array(vec![
                bulk("events"),
                OwnedFrame::Array(vec![OwnedFrame::Array(vec![
                    bulk("7-1"),
                    OwnedFrame::Array(vec![bulk("k"), bulk("v")]),
                ])]),
            ])])
        );
    }
    // A consumer of one group blocked on each follower: two entries added through the
    // leader go one to each, and both are pending until acknowledged.
    retry(|| {
        call(
            addresses[leader],
            &["XGROUP", "CREATE", "events", "workers", "$"],
        )
    });
    let mut consumers: Vec<(TcpStream, Vec<u8>)> = (0..addresses.len())
        .filter(|&i| i != leader)
        .map(|i| {
            let name = format!("c{i}");
            open(
                addresses[i],
                &[
                    "XREADGROUP",
                    "GROUP",
                    "workers",
                    &name,
                    "COUNT",
                    "1",
                    "BLOCK",
                    "0",
                    "STREAMS",
                    "events",
                    ">",
                ],
            )
        })
        .collect();
    for id in ["8-1", "8-2"] {
        retry(|| call(addresses[leader], &["XADD", "events", id, "job", id]));
    }
    let mut delivered: Vec<String> = consumers
        .iter_mut()
        .map(|(stream, buf)| {
            let OwnedFrame::Array(streams) = read_reply(stream, buf) else {
                panic!("XREADGROUP answers an array");
            };
            let OwnedFrame::Array(pair) = &streams[0] else {
                panic!("a key and its entries");
            };
            let OwnedFrame::Array(entries) = &pair[1] else {
                panic!("entries");
            };
            assert_eq!(entries.len(), 1, "one entry each: {entries:?}");
            let OwnedFrame::Array(entry) = &entries[0] else {
                panic!("an entry");
            };
            let OwnedFrame::BulkString(id) = &entry[0] else {
                panic!("an ID");
            };
            String::from_utf8_lossy(id).into_owned()
        })
        .collect();
    delivered.sort();
    assert_eq!(delivered, ["8-1", "8-2"]);
    let OwnedFrame::Array(summary) =
        retry(|| call(addresses[leader], &["XPENDING", "events", "workers"]))
    else {
        panic!("XPENDING answers an array");
    };
    assert_eq!(summary[0], OwnedFrame::Integer(2));
}
