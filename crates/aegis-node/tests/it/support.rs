//! A small RESP client and a server fixture on 127.0.0.1:0.

use std::net::SocketAddr;
use std::sync::Arc;

use aegis_node::resp::encode_frame;
use aegis_node::{
    Clock, Command, KvStateMachine, LocalReplicator, ManualClock, NodeStatus, Output, ReplicaError,
    Replicator, Server, ServerConfig,
};
use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::types::OwnedFrame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The fixed start of the manual clock in server tests.
pub const START_MS: u64 = 1_700_000_000_000;

/// A running server and the handles a test needs.
pub struct Fixture<R: Replicator> {
    pub addr: SocketAddr,
    pub clock: Arc<ManualClock>,
    pub store: Arc<KvStateMachine>,
    pub server: Arc<Server<R>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl<R: Replicator> Fixture<R> {
    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        let _ = self.stop.take().expect("running").send(());
        self.task
            .take()
            .expect("running")
            .await
            .expect("serve ends without a panic");
    }

    /// Waits for the server to stop by itself (after `SHUTDOWN`), without asking it to.
    pub async fn stopped_by_itself(mut self) {
        // Dropped, the sender would ask the server to stop.
        let _still_running = self.stop.take();
        let task = self.task.take().expect("running");
        // Only a guard against a hang.
        tokio::time::timeout(std::time::Duration::from_secs(60), task)
            .await
            .expect("the server stopped")
            .expect("serve ends without a panic");
    }

    /// A new client connection.
    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }
}

/// Starts a server over a `LocalReplicator` on a fresh in-memory store.
pub async fn start_local(config: ServerConfig) -> Fixture<LocalReplicator> {
    start_with(config, |store, clock| LocalReplicator::new(1, store, clock)).await
}

/// Starts a server over the replicator `make` builds.
pub async fn start_with<R: Replicator>(
    config: ServerConfig,
    make: impl FnOnce(Arc<KvStateMachine>, Arc<dyn Clock>) -> R,
) -> Fixture<R> {
    let store = Arc::new(KvStateMachine::in_memory().expect("in-memory store"));
    let clock = Arc::new(ManualClock::new(START_MS));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let replicator = Arc::new(make(Arc::clone(&store), Arc::clone(&dyn_clock)));
    let server = Arc::new(Server::new(
        replicator,
        Arc::clone(&store),
        dyn_clock,
        config,
    ));
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let (stop, stopped) = oneshot::channel();
    let serving = Arc::clone(&server);
    let task = tokio::spawn(async move {
        serving
            .serve(listener, async {
                let _ = stopped.await;
            })
            .await
    });
    Fixture {
        addr,
        clock,
        store,
        server,
        stop: Some(stop),
        task: Some(task),
    }
}

/// A minimal RESP2 client: multibulk requests out, frames in.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    /// Encodes `args` as a RESP array of bulk strings.
    pub fn request(args: &[&[u8]]) -> Vec<u8> {
        let frame = OwnedFrame::Array(
            args.iter()
                .map(|a| OwnedFrame::BulkString(a.to_vec()))
                .collect(),
        );
        let mut out = Vec::new();
        encode_frame(&mut out, &frame);
        out
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Closes the sending half: the server sees end of stream.
    pub async fn finish_sending(&mut self) {
        self.stream.shutdown().await.expect("shutdown");
    }

    /// Sends one command and reads its reply.
    pub async fn cmd(&mut self, args: &[&str]) -> OwnedFrame {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.cmd_bytes(&args).await
    }

    pub async fn cmd_bytes(&mut self, args: &[&[u8]]) -> OwnedFrame {
        self.send_raw(&Self::request(args)).await;
        self.read_frame().await.expect("a reply before EOF")
    }

    /// Sends one command and reads its reply as RESP3, for a connection that asked
    /// `HELLO 3`.
    pub async fn cmd3(&mut self, args: &[&str]) -> redis_protocol::resp3::types::OwnedFrame {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.send_raw(&Self::request(&args)).await;
        self.read_frame3().await.expect("a reply before EOF")
    }

    /// The next RESP3 frame, for a connection that asked `HELLO 3`; `None` at EOF.
    pub async fn read_frame3(&mut self) -> Option<redis_protocol::resp3::types::OwnedFrame> {
        loop {
            if let Some((frame, used)) = redis_protocol::resp3::decode::complete::decode(&self.buf)
                .expect("server sends valid RESP3")
            {
                self.buf.drain(..used);
                return Some(frame);
            }
            let mut chunk = [0_u8; 4096];
            let n = self.stream.read(&mut chunk).await.expect("read");
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next frame, or `None` once the server closed the connection.
    pub async fn read_frame(&mut self) -> Option<OwnedFrame> {
        loop {
            if let Some((frame, used)) = decode(&self.buf).expect("server sends valid RESP") {
                self.buf.drain(..used);
                return Some(frame);
            }
            let mut chunk = [0_u8; 4096];
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    assert!(self.buf.is_empty(), "partial frame before EOF");
                    return None;
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// `HSET key field value ...` as its log command.
pub fn hset(key: &str, pairs: &[(&str, &str)]) -> Command {
    Command::HSet {
        key: key.into(),
        pairs: pairs
            .iter()
            .map(|(f, v)| ((*f).into(), (*v).into()))
            .collect(),
        if_absent: false,
    }
}

pub fn bulk(s: &str) -> OwnedFrame {
    OwnedFrame::BulkString(s.as_bytes().to_vec())
}

pub fn simple(s: &str) -> OwnedFrame {
    OwnedFrame::SimpleString(s.as_bytes().to_vec())
}

pub fn err(s: &str) -> OwnedFrame {
    OwnedFrame::Error(s.to_owned())
}

/// Asserts that `frame` is an error starting with `prefix`.
#[track_caller]
pub fn assert_err_starts(frame: &OwnedFrame, prefix: &str) {
    match frame {
        OwnedFrame::Error(message) => assert!(
            message.starts_with(prefix),
            "error `{message}` does not start with `{prefix}`"
        ),
        other => panic!("expected an error starting with `{prefix}`, got {other:?}"),
    }
}

/// A replicator that refuses everything as a follower would, to check which paths
/// reach the replicator.
pub struct FollowerReplicator {
    pub inner: LocalReplicator,
}

impl Replicator for FollowerReplicator {
    async fn propose(&self, _command: Command) -> Result<Output, ReplicaError> {
        Err(ReplicaError::NotLeader {
            leader_hint: Some(2),
        })
    }

    async fn read_barrier(&self) -> Result<(), ReplicaError> {
        Err(ReplicaError::NotLeader {
            leader_hint: Some(2),
        })
    }

    fn status(&self) -> NodeStatus {
        NodeStatus {
            role: aegis_node::Role::Follower,
            leader: Some(2),
            term: 7,
            ..self.inner.status()
        }
    }
}

/// Each thread of process `pid`, by name, with its scheduling policy.
#[cfg(target_os = "linux")]
pub fn thread_policies(pid: u32) -> Vec<(String, u32)> {
    let mut threads = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        let (Ok(name), Ok(stat)) = (
            std::fs::read_to_string(dir.join("comm")),
            std::fs::read_to_string(dir.join("stat")),
        ) else {
            continue; // the thread has ended
        };
        // The name sits in parentheses as field 2; the policy is field 41.
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        let policy = after_name.split(' ').nth(41 - 3).unwrap().parse().unwrap();
        threads.push((name.trim().to_owned(), policy));
    }
    threads
}
