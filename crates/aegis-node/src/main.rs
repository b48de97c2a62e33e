//! `aegis-node`: runs one node of the replicated key-value server.

#![allow(
    clippy::disallowed_methods,
    reason = "the binary is a driver and may read the clock"
)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use aegis_cluster::runtime::{Metrics, NodeThread, RaftConfig, ThreadStart};
use aegis_cluster::{ClusterConfig, ClusterNode};
use aegis_log::format::{
    ENTRY_HEADER_LEN, FRAME_HEADER_LEN, RECORD_BYTES_LIMIT, SEGMENT_HEADER_LEN,
};
use aegis_log::{DiskStorage, Log, LogConfig, SyncPolicy};
use aegis_node::{
    AddressBook, Clock, Config, KvApplier, KvStateMachine, LocalConfig, LocalReplicator,
    RaftReplicator, Replicator, Server, ServerConfig, StoreOptions, SystemClock,
};
use aegis_raft::ConfState;
use aegis_transport_quic::{CertificateAuthority, QuicConfig, QuicTransport, TlsIdentity};

const USAGE: &str = "\
usage: aegis-node --config <node.toml> [--single-node]
       aegis-node certs --out <dir> --nodes <n>

  --config <file>   the node's TOML configuration
  --single-node     run without replication: this node applies every write itself
  certs             make a cluster CA and certificates for nodes 1..=n in <dir>
                    (ca.pem, ca.key, node-<id>.pem, node-<id>.key)
  --help            print this help
  --version         print the version";

/// The Raft group that holds the key space (a single group until sharding lands).
const RAFT_GROUP: u64 = 1;

/// What the command line asked for.
#[derive(Debug)]
struct Args {
    config: PathBuf,
    single_node: bool,
}

enum Parsed {
    Run(Args),
    Certs { out: PathBuf, nodes: u64 },
    Exit(String),
}

fn parse_certs_args(mut args: impl Iterator<Item = String>) -> Result<Parsed, String> {
    let (mut out, mut nodes) = (None, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => out = Some(PathBuf::from(args.next().ok_or("--out needs a directory")?)),
            "--nodes" => {
                let n = args.next().ok_or("--nodes needs a number")?;
                let n: u64 = n
                    .parse()
                    .map_err(|_| format!("--nodes: `{n}` is not a number"))?;
                if !(1..=1000).contains(&n) {
                    return Err("--nodes must be between 1 and 1000".to_owned());
                }
                nodes = Some(n);
            }
            other => return Err(format!("certs: unexpected argument `{other}`")),
        }
    }
    Ok(Parsed::Certs {
        out: out.ok_or("certs: missing --out <dir>")?,
        nodes: nodes.ok_or("certs: missing --nodes <n>")?,
    })
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Parsed, String> {
    let mut args = args.by_ref().peekable();
    if args.peek().map(String::as_str) == Some("certs") {
        args.next();
        return parse_certs_args(args);
    }
    let mut config = None;
    let mut single_node = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => {
                let path = args.next().ok_or("--config needs a file path")?;
                config = Some(PathBuf::from(path));
            }
            "--single-node" => single_node = true,
            "--help" | "-h" => return Ok(Parsed::Exit(USAGE.to_owned())),
            "--version" | "-V" => {
                return Ok(Parsed::Exit(format!(
                    "aegis-node {}",
                    env!("CARGO_PKG_VERSION")
                )));
            }
            other => return Err(format!("unexpected argument `{other}`")),
        }
    }
    let config = config.ok_or("missing --config <node.toml>")?;
    Ok(Parsed::Run(Args {
        config,
        single_node,
    }))
}

type BoxError = Box<dyn std::error::Error>;

/// Writes a cluster CA and certificates for nodes `1..=nodes` into `out`.
fn make_certs(out: &Path, nodes: u64) -> Result<(), BoxError> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let ca = CertificateAuthority::generate("aegis")?;
    write_file(&out.join("ca.pem"), &ca.cert_pem(), false)?;
    write_file(&out.join("ca.key"), &ca.key_pem(), true)?;
    for id in 1..=nodes {
        let cert = ca.issue_node(id)?;
        write_file(&out.join(format!("node-{id}.pem")), &cert.cert_pem(), false)?;
        write_file(&out.join(format!("node-{id}.key")), &cert.key_pem(), true)?;
    }
    println!(
        "wrote a cluster CA and certificates for nodes 1..={nodes} to {}",
        out.display()
    );
    Ok(())
}

fn write_file(path: &Path, text: &str, secret: bool) -> Result<(), BoxError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mode = if secret { 0o600 } else { 0o644 };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(())
}

fn read_file(path: &Path) -> Result<String, BoxError> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()).into())
}

/// Serves RESP clients with `replicator` until Ctrl-C.
async fn serve<R: Replicator>(
    config: &Config,
    replicator: Arc<R>,
    store: Arc<KvStateMachine>,
    clock: Arc<dyn Clock>,
    mode: &str,
    stop: impl Future<Output = ()>,
) -> Result<(), BoxError> {
    let listener = tokio::net::TcpListener::bind(config.node.client_listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.node.client_listen))?;
    eprintln!(
        "aegis-node {} ({mode}) listening for RESP clients on {}, applied index {}",
        config.node.id,
        listener.local_addr()?,
        store.applied_index()
    );
    if let Some(reason) = SCHED_BATCH_FAILED.get() {
        eprintln!(
            "aegis-node {}: threads left under the scheduling policy they started with \
             (SCHED_BATCH refused: {reason}); set [server] sched_batch = false to silence this",
            config.node.id
        );
    }
    let server = Server::new(replicator, store, clock, ServerConfig::from_config(config));
    server.serve(listener, stop).await;
    Ok(())
}

/// Resolves with the reason once the Raft node stopped because its log or its store
/// failed; never, if it stops otherwise.
async fn node_failed(mut metrics: tokio::sync::watch::Receiver<Metrics>) -> String {
    match metrics.wait_for(|m| m.failure.is_some()).await {
        Ok(stopped) => stopped.failure.clone().unwrap_or_default(),
        Err(_) => std::future::pending().await,
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (what `kill`, service managers and container
/// runtimes send): the node then stops serving, shuts its Raft group down and persists
/// its store, so the next start has nothing to replay.
async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(e) => {
                eprintln!("aegis-node: cannot watch for SIGTERM ({e}); only Ctrl-C stops cleanly");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Starts the QUIC transport, the Raft log and the Raft group, then serves clients.
async fn run_replicated(
    config: &Config,
    store: Arc<KvStateMachine>,
    clock: Arc<dyn Clock>,
) -> Result<(), BoxError> {
    let tls = config
        .tls
        .as_ref()
        .ok_or("replicated mode needs a [tls] section; `aegis-node certs` makes the files")?;
    let identity = TlsIdentity::from_pem(
        &read_file(&tls.ca_cert)?,
        &read_file(&tls.cert)?,
        &read_file(&tls.key)?,
    )?;
    let id = config.node.id;
    let mut quic = QuicConfig::new(id, config.node.peer_listen);
    // A peer killed without closing its connection is noticed only when the connection
    // idles out; Raft traffic is constant, so a short idle timeout costs nothing and lets
    // a restarted peer be redialled within a couple of seconds.
    quic.idle_timeout = Duration::from_secs(2);
    quic.keep_alive_interval = Duration::from_millis(500);
    quic.reconnect_backoff_max = Duration::from_secs(1);
    let transport = Arc::new(QuicTransport::bind(quic, &identity)?);
    let configured: Vec<(u64, std::net::SocketAddr)> =
        config.peers.iter().map(|p| (p.id, p.address)).collect();
    let set_peer = {
        let transport = Arc::clone(&transport);
        // Also called from the Raft applier's thread, outside the runtime, when a
        // replicated MEET is applied; the transport starts the peer's tasks on it.
        let runtime = tokio::runtime::Handle::current();
        Arc::new(move |id, address| {
            let _entered = runtime.enter();
            transport.set_peer(id, address);
        })
    };
    let address_book = Arc::new(
        AddressBook::open(config.node.data_dir.join("peers"), &configured, set_peer)?
            .with_own(id, transport.local_addr()),
    );
    let log = Arc::new(Log::open(
        config.node.data_dir.join("raft-log"),
        LogConfig::default(),
    )?);
    let (peers, first_conf) = if config.node.join {
        (Vec::new(), ConfState::default())
    } else {
        let peers: Vec<u64> = config.peers.iter().map(|p| p.id).collect();
        let mut voters = peers.clone();
        voters.push(id);
        (peers, ConfState::with_voters(&voters))
    };
    // The configuration counts only for a new log; an existing one holds its own.
    let storage = DiskStorage::open(log, RAFT_GROUP, first_conf)?;
    let mut raft = RaftConfig::new(id, peers);
    raft.election_timeout = Duration::from_millis(config.raft.election_timeout_min)
        ..Duration::from_millis(config.raft.election_timeout_max);
    raft.heartbeat_interval = Duration::from_millis(config.raft.heartbeat_interval);
    raft.lease_reads = config.raft.lease_reads;
    raft.snapshot_every_entries = config.raft.snapshot_every_entries;
    raft.snapshot_log_growth_percent = config.raft.snapshot_log_growth_percent;
    raft.snapshot_stretch_percent = config.raft.snapshot_stretch_percent;
    raft.compaction_tail_entries = config.raft.compaction_tail_entries;
    raft.log_writer_thread = config.raft.log_writer_thread;
    if config.server.sched_batch {
        raft.on_thread_start = Some(ThreadStart::new(|thread| {
            if thread == NodeThread::Apply {
                sched_batch_this_thread();
            }
        }));
    }
    let applier = KvApplier::new(Arc::clone(&store))
        .with_snapshot_chunk_bytes(config.server.snapshot_chunk_bytes as usize)
        .with_address_book(Arc::clone(&address_book));
    let node = ClusterNode::start(
        ClusterConfig::new(raft),
        Arc::clone(&transport),
        storage,
        applier,
    )
    .await?;
    let voters = node.metrics().borrow().conf_state.voters.len();
    let replicator =
        Arc::new(RaftReplicator::new(node, Arc::clone(&clock)).with_address_book(address_book));
    let mode = format!(
        "replicated, {voters} voters, peers on {}",
        transport.local_addr()
    );
    // A node whose log or store failed serves nothing more (it is no longer a member
    // that works): it stops, so that clients go elsewhere and a supervisor can restart it.
    let failed = Arc::new(std::sync::OnceLock::new());
    let stop = {
        let failed = Arc::clone(&failed);
        let metrics = replicator.node().metrics();
        async move {
            tokio::select! {
                () = stop_requested() => {}
                reason = node_failed(metrics) => {
                    let _ = failed.set(reason);
                }
            }
        }
    };
    let served = serve(config, Arc::clone(&replicator), store, clock, &mode, stop).await;
    replicator.node().shutdown().await;
    transport.shutdown().await;
    served?;
    match failed.get() {
        Some(reason) => Err(format!("{reason}; restart the node once the cause is fixed").into()),
        None => Ok(()),
    }
}

/// A single node's journal: records large enough for any write the server accepts (a
/// command encodes to fewer bytes than its request), up to the log's own limit.
fn journal_config(config: &Config) -> LogConfig {
    let defaults = LogConfig::default();
    let record = (config.server.request_bytes_max as usize + ENTRY_HEADER_LEN + 1024)
        .min(RECORD_BYTES_LIMIT as usize) as u64;
    let framed = record + FRAME_HEADER_LEN as u64;
    LogConfig {
        record_bytes_max: record as u32,
        batch_bytes_max: defaults.batch_bytes_max.max(framed),
        segment_bytes_max: defaults
            .segment_bytes_max
            .max(2 * framed + SEGMENT_HEADER_LEN as u64),
        sync: if config.server.sync_writes {
            SyncPolicy::EveryBatch
        } else {
            SyncPolicy::Never
        },
        ..defaults
    }
}

async fn run(args: Args, config: Config) -> Result<(), BoxError> {
    std::fs::create_dir_all(&config.node.data_dir)
        .map_err(|e| format!("cannot create {}: {e}", config.node.data_dir.display()))?;
    let store = Arc::new(KvStateMachine::open(
        &config.node.data_dir.join("state.redb"),
        StoreOptions {
            // The Raft log, or a single node's journal, is what is durable: a crash may
            // lose the newest applies, which the log replays (the store is made durable
            // every few thousand entries to bound that replay).
            sync_writes: false,
            buffer_keys_max: config.server.apply_buffer_keys_max as usize,
            buffer_bytes_max: usize::try_from(config.server.apply_buffer_bytes_max)
                .unwrap_or(usize::MAX),
        },
    )?);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    if args.single_node {
        let sched_batch = config.server.sched_batch;
        let journal = Arc::new(Log::open(
            config.node.data_dir.join("journal"),
            journal_config(&config),
        )?);
        let replicator = Arc::new(
            LocalReplicator::with_journal(
                config.node.id,
                Arc::clone(&store),
                Arc::clone(&clock),
                LocalConfig::default(),
                journal,
                // As a cluster node's applier: woken with each run, it need not preempt
                // whatever runs.
                move || {
                    if sched_batch {
                        sched_batch_this_thread();
                    }
                },
            )
            .map_err(|e| format!("cannot start from the journal: {e}"))?,
        );
        serve(
            &config,
            replicator,
            Arc::clone(&store),
            clock,
            "single node",
            stop_requested(),
        )
        .await?;
    } else {
        run_replicated(&config, Arc::clone(&store), clock).await?;
    }
    // Threads that still hold the store may outlive this function: persist it here
    // rather than on its drop. A failure only means a longer replay at the next start.
    if let Err(e) = store.persist() {
        eprintln!(
            "aegis-node {}: the store was not persisted: {e}",
            config.node.id
        );
    }
    eprintln!("aegis-node {} stopped", config.node.id);
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Parsed::Run(args)) => args,
        Ok(Parsed::Certs { out, nodes }) => {
            return match make_certs(&out, nodes) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("aegis-node certs: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Ok(Parsed::Exit(text)) => {
            println!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("aegis-node: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("aegis-node: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let sched_batch = config.server.sched_batch;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.server.async_threads(cores, !args.single_node))
        .on_thread_start(move || {
            if sched_batch {
                sched_batch_this_thread();
            }
        })
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("aegis-node: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aegis-node: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Why a thread could not be put under `SCHED_BATCH`, kept from the first failure and
/// reported once the node serves (the runtime starts before anything is printed).
static SCHED_BATCH_FAILED: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Puts the calling thread under `SCHED_BATCH` at the nice value it had: woken, it waits
/// for the running thread to block or use up its time slice rather than preempting it.
/// Threads it starts inherit the policy. A thread the kernel refuses it to keeps the
/// policy it had, and only switches more often; the first refusal is kept in
/// [`SCHED_BATCH_FAILED`].
#[cfg(target_os = "linux")]
fn sched_batch_this_thread() {
    use rustix::process::{getpriority_process, setpriority_process};
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id, thread_schedule_policy,
    };
    let batch = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch);
    let nice = getpriority_process(None);
    // Besides the policy, this sets the thread's nice value to 0 (the default one).
    let set = set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Os(Default::default()),
        batch,
    );
    if let Ok(nice) = nice
        && getpriority_process(None) != Ok(nice)
    {
        let _ = setpriority_process(None, nice);
    }
    match thread_schedule_policy() {
        Ok(policy) if policy == batch => {}
        found => {
            let _ = SCHED_BATCH_FAILED.set(format!("{set:?}, policy now {found:?}"));
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn sched_batch_this_thread() {}
