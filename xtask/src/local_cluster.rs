//! A local cluster of `aegis-node` processes on 127.0.0.1, for `demo` and `bench cluster`.
//!
//! Makes certificates and configurations in a directory of its own, starts and kills
//! processes, and speaks just enough RESP to drive and watch them.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Result;
use crate::shell::{cargo, run};

/// Nodes in a local cluster.
pub(crate) const NODES: u64 = 3;
/// The password every node of a local cluster requires (AUTH).
pub(crate) const PASSWORD: &str = "aegis-local";

/// Builds `aegis-node` with `profile` ("dev" or "release") and returns the binary's path.
pub(crate) fn build_node(profile: &str) -> Result<PathBuf> {
    run(cargo().args([
        "build",
        "--locked",
        "--profile",
        profile,
        "--package",
        "aegis-node",
        "--bin",
        "aegis-node",
    ]))?;
    let target_dir =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    let binary = target_dir
        .join(if profile == "dev" { "debug" } else { profile })
        .join("aegis-node");
    binary
        .canonicalize()
        .map_err(|e| format!("{}: {e}", binary.display()))
}

pub(crate) struct Node {
    pub(crate) id: u64,
    pub(crate) client: String,
    config: PathBuf,
    log: PathBuf,
    process: Option<Child>,
}

pub(crate) struct Cluster {
    binary: PathBuf,
    dir: PathBuf,
    pub(crate) nodes: Vec<Node>,
}

impl Cluster {
    /// A cluster of [`NODES`] nodes living in `dir`, with certificates made by `binary`
    /// and `extra` (TOML sections) at the end of every node's configuration; nothing runs
    /// until [`Cluster::start`].
    pub(crate) fn create(binary: PathBuf, dir: PathBuf, extra: &str) -> Result<Cluster> {
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut cluster = Cluster {
            binary,
            dir,
            nodes: Vec::new(),
        };
        let certs = cluster.dir.join("certs");
        let status = Command::new(&cluster.binary)
            .args(["certs", "--out"])
            .arg(&certs)
            .args(["--nodes", &NODES.to_string()])
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("aegis-node certs: {e}"))?;
        if !status.success() {
            return Err(format!("aegis-node certs failed: {status}"));
        }
        cluster.configure(&certs, extra)?;
        Ok(cluster)
    }

    /// Stops every node and removes the cluster's directory.
    pub(crate) fn destroy(mut self) {
        self.stop_all();
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    fn configure(&mut self, certs: &Path, extra: &str) -> Result {
        let mut addresses = Vec::new();
        for id in 1..=NODES {
            addresses.push((id, free_tcp_port()?, free_udp_port()?));
        }
        for &(id, client_port, peer_port) in &addresses {
            let mut toml = format!(
                "[node]\nid = {id}\nclient_listen = \"127.0.0.1:{client_port}\"\npeer_listen = \"127.0.0.1:{peer_port}\"\ndata_dir = \"{}\"\n\n",
                self.dir.join(format!("node-{id}")).display()
            );
            for &(peer, _, peer_peer_port) in addresses.iter().filter(|a| a.0 != id) {
                toml.push_str(&format!(
                    "[[peers]]\nid = {peer}\naddress = \"127.0.0.1:{peer_peer_port}\"\n\n"
                ));
            }
            toml.push_str(&format!(
                "[tls]\nca_cert = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n\n[security]\npassword = \"{PASSWORD}\"\n",
                certs.join("ca.pem").display(),
                certs.join(format!("node-{id}.pem")).display(),
                certs.join(format!("node-{id}.key")).display(),
            ));
            toml.push_str(extra);
            let config = self.dir.join(format!("node-{id}.toml"));
            std::fs::write(&config, toml).map_err(|e| format!("{}: {e}", config.display()))?;
            self.nodes.push(Node {
                id,
                client: format!("127.0.0.1:{client_port}"),
                config,
                log: self.dir.join(format!("node-{id}.log")),
                process: None,
            });
        }
        Ok(())
    }

    pub(crate) fn start(&mut self, i: usize) -> Result {
        let node = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .map_err(|e| format!("{}: {e}", node.log.display()))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(&self.binary)
            .arg("--config")
            .arg(&node.config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("starting node {}: {e}", node.id))?;
        node.process = Some(child);
        Ok(())
    }

    /// The process ids of the running nodes.
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.nodes
            .iter()
            .filter_map(|n| n.process.as_ref().map(Child::id))
            .collect()
    }

    pub(crate) fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].process.take() {
            // `Child::kill` is SIGKILL on Unix: no chance to flush or say goodbye.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub(crate) fn stop_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }

    pub(crate) fn print_log_tails(&self) {
        for node in &self.nodes {
            let log = std::fs::read_to_string(&node.log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!("--- last lines of node {}'s log ---", node.id);
            for line in &lines[lines.len().saturating_sub(15)..] {
                eprintln!("{line}");
            }
        }
    }

    pub(crate) fn index_of(&self, id: u64) -> usize {
        self.nodes
            .iter()
            .position(|n| n.id == id)
            .expect("a node of this cluster")
    }

    /// Polls the live nodes' INFO until one other than `not` reports itself leader.
    pub(crate) fn wait_for_leader(&self, not: Option<u64>, within: Duration) -> Result<u64> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            for node in self
                .nodes
                .iter()
                .filter(|n| n.process.is_some() && Some(n.id) != not)
            {
                if let Ok(info) = resp(&node.client, &["INFO", "replication"])
                    && info_field(&info, "role") == Some("leader")
                {
                    return Ok(node.id);
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("no leader within {within:?}; see the node logs"))
    }

    pub(crate) fn applied_index(&self, client: &str) -> Result<u64> {
        let info = resp(client, &["INFO", "replication"])?;
        info_field(&info, "applied_index")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("INFO has no applied_index: {info}"))
    }

    pub(crate) fn wait_caught_up(&self, i: usize, target: u64, within: Duration) -> Result {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self
                .applied_index(&self.nodes[i].client)
                .is_ok_and(|applied| applied >= target)
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "node {} did not catch up to {target} within {within:?}",
            self.nodes[i].id
        ))
    }
}

pub(crate) fn expect(reply: &str, want: &str, what: &str) -> Result {
    if reply == want {
        Ok(())
    } else {
        Err(format!("{what}: expected {want:?}, got {reply:?}"))
    }
}

pub(crate) fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|line| line.trim_end().strip_prefix(field)?.strip_prefix(':'))
}

pub(crate) fn free_tcp_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

fn free_udp_port() -> Result<u16> {
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    socket
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// Sends one command on a fresh connection (authenticating first) and returns the reply
/// as text: a status or bulk string's content, an integer's digits, or `ERR ...`.
pub(crate) fn resp(address: &str, command: &[&str]) -> Result<String> {
    let stream = TcpStream::connect(address).map_err(|e| format!("{address}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut writer = stream;
    for cmd in [&["AUTH", PASSWORD][..], command] {
        let mut frame = format!("*{}\r\n", cmd.len());
        for arg in cmd {
            frame.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        writer
            .write_all(frame.as_bytes())
            .map_err(|e| format!("{address}: {e}"))?;
    }
    let auth = read_reply(&mut reader)?;
    expect(&auth, "OK", "AUTH")?;
    read_reply(&mut reader)
}

fn read_reply(reader: &mut impl BufRead) -> Result<String> {
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    let line = line.trim_end_matches("\r\n");
    let (kind, rest) = line.split_at(line.len().min(1));
    match kind {
        "+" | ":" => Ok(rest.to_owned()),
        "-" => Ok(rest.to_owned()),
        "$" => {
            let len: i64 = rest
                .parse()
                .map_err(|_| format!("bad bulk length {rest:?}"))?;
            if len < 0 {
                return Ok("(nil)".to_owned());
            }
            let mut body = vec![0; len as usize + 2];
            reader.read_exact(&mut body).map_err(|e| e.to_string())?;
            body.truncate(len as usize);
            String::from_utf8(body).map_err(|e| e.to_string())
        }
        _ => Err(format!("unexpected reply {line:?}")),
    }
}
