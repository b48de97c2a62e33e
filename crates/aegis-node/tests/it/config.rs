//! Configuration parsing and validation: every error names its field.

use std::io::Write;

use aegis_node::config::{ConsistencyLevel, ShardingStrategy};
use aegis_node::{Config, ConfigError, ReadConsistency};

const FULL: &str = r#"
[node]
id = 1
client_listen = "127.0.0.1:6379"
peer_listen = "127.0.0.1:7379"
data_dir = "data/node-1"

[[peers]]
id = 2
address = "127.0.0.1:7380"

[[peers]]
id = 3
address = "127.0.0.1:7381"

[replication]
replication_factor = 3
consistency_level = "quorum"    # one, quorum, all

[raft]
election_timeout_min = 150
election_timeout_max = 300
heartbeat_interval = 50

[sharding]
strategy = "hash"               # hash, range
shard_count = 16
auto_rebalance = true

[tls]
ca_cert = "certs/ca.pem"
cert = "certs/node-1.pem"
key = "certs/node-1.key"

[security]
password = "s3cret"

[server]
read_consistency = "stale"
request_bytes_max = 1048576
"#;

const MINIMAL: &str = r#"
[node]
id = 4
client_listen = "127.0.0.1:6379"
peer_listen = "127.0.0.1:7379"
data_dir = "d"
"#;

#[test]
fn the_full_example_parses() {
    let config = Config::from_toml(FULL).unwrap();
    assert_eq!(config.node.id, 1);
    assert_eq!(config.peers.len(), 2);
    assert_eq!(
        config.replication.consistency_level,
        ConsistencyLevel::Quorum
    );
    assert_eq!(config.raft.heartbeat_interval, 50);
    assert_eq!(config.sharding.strategy, ShardingStrategy::Hash);
    assert_eq!(config.security.password.as_deref(), Some("s3cret"));
    assert_eq!(config.server.read_consistency, ReadConsistency::Stale);
    assert_eq!(config.server.request_bytes_max, 1_048_576);
    // Fields left out of [server] keep their defaults.
    assert_eq!(config.server.connections_max, 10_000);
}

#[test]
fn a_minimal_config_takes_the_seed_defaults() {
    let config = Config::from_toml(MINIMAL).unwrap();
    assert_eq!(config.replication.replication_factor, 3);
    assert_eq!(config.raft.election_timeout_min, 150);
    assert_eq!(config.raft.election_timeout_max, 300);
    assert_eq!(config.sharding.shard_count, 16);
    assert!(config.sharding.auto_rebalance);
    assert!(config.tls.is_none());
    assert_eq!(config.security.password, None);
    assert_eq!(
        config.server.read_consistency,
        ReadConsistency::Linearizable
    );
    assert!(!config.raft.lease_reads, "lease reads are opt-in");
    let leased = Config::from_toml(&(MINIMAL.to_owned() + "[raft]\nlease_reads = true\n")).unwrap();
    assert!(leased.raft.lease_reads);
}

/// Parses `text` and returns the error message, which must mention every `needle`.
#[track_caller]
fn error_mentions(text: &str, needles: &[&str]) -> ConfigError {
    let error = Config::from_toml(text).expect_err("config should be rejected");
    let message = error.to_string();
    for needle in needles {
        assert!(
            message.contains(needle),
            "error `{message}` does not mention `{needle}`"
        );
    }
    error
}

#[test]
fn unknown_fields_are_named() {
    let typo = MINIMAL.to_owned() + "[raft]\nelection_timeout_minimum = 100\n";
    assert!(matches!(
        error_mentions(&typo, &["election_timeout_minimum"]),
        ConfigError::Parse { .. }
    ));
    let section = MINIMAL.to_owned() + "[rafft]\nheartbeat_interval = 10\n";
    error_mentions(&section, &["rafft"]);
    let node_field = MINIMAL.replace("data_dir", "datadir");
    error_mentions(&node_field, &["datadir"]);
}

#[test]
fn wrong_types_and_values_are_named() {
    let text = MINIMAL.to_owned() + "[raft]\nheartbeat_interval = \"fast\"\n";
    error_mentions(&text, &["heartbeat_interval"]);
    let text = MINIMAL.replace("127.0.0.1:6379", "not-an-address");
    error_mentions(&text, &["client_listen"]);
    let text = MINIMAL.to_owned() + "[replication]\nconsistency_level = \"most\"\n";
    error_mentions(&text, &["consistency_level", "most"]);
    let text = MINIMAL.to_owned() + "[server]\nread_consistency = \"eventual\"\n";
    error_mentions(&text, &["read_consistency"]);
    let text = MINIMAL.replace("id = 4\n", "");
    error_mentions(&text, &["id"]);
}

#[test]
fn validation_names_the_field() {
    let cases: &[(&str, &str)] = &[
        (
            "[raft]\nelection_timeout_min = 300\nelection_timeout_max = 300\n",
            "raft.election_timeout_max",
        ),
        (
            "[raft]\nelection_timeout_min = 0\n",
            "raft.election_timeout_min",
        ),
        (
            "[raft]\nheartbeat_interval = 150\n",
            "raft.heartbeat_interval",
        ),
        (
            "[replication]\nreplication_factor = 0\n",
            "replication.replication_factor",
        ),
        (
            "[raft]\nsnapshot_stretch_percent = 101\n",
            "raft.snapshot_stretch_percent",
        ),
        ("[sharding]\nshard_count = 0\n", "sharding.shard_count"),
        (
            "[server]\nrequest_bytes_max = 10\n",
            "server.request_bytes_max",
        ),
        ("[server]\nconnections_max = 0\n", "server.connections_max"),
        (
            "[server]\npipeline_batch_max = 0\n",
            "server.pipeline_batch_max",
        ),
        (
            "[server]\nsnapshot_chunk_bytes = 1\n",
            "server.snapshot_chunk_bytes",
        ),
        (
            "[server]\nexpire_purge_batch_max = 0\n",
            "server.expire_purge_batch_max",
        ),
        ("[server]\nasync_threads = 5000\n", "server.async_threads"),
        (
            "[server]\ntcp_keepalive_secs = 40000\n",
            "server.tcp_keepalive_secs",
        ),
        ("[security]\npassword = \"\"\n", "security.password"),
        ("[[peers]]\nid = 4\naddress = \"127.0.0.1:1\"\n", "peers.id"),
        (
            "[tls]\nca_cert = \"\"\ncert = \"c\"\nkey = \"k\"\n",
            "tls.ca_cert",
        ),
    ];
    for (extra, field) in cases {
        let text = MINIMAL.to_owned() + extra;
        match error_mentions(&text, &[field]) {
            ConfigError::Invalid { field: named, .. } => assert_eq!(named, *field),
            other => panic!("expected a validation error for {field}, got {other}"),
        }
    }
    let zero_id = MINIMAL.replace("id = 4", "id = 0");
    error_mentions(&zero_id, &["node.id"]);
    let same_ports = MINIMAL.replace("127.0.0.1:7379", "127.0.0.1:6379");
    error_mentions(&same_ports, &["node.peer_listen"]);
}

#[test]
fn async_threads_default_to_the_cores_the_node_threads_leave_free() {
    let auto = Config::from_toml(MINIMAL).unwrap().server;
    assert_eq!(auto.async_threads, 0);
    // A replicated node keeps two cores busy with its Raft and applier threads.
    assert_eq!(auto.async_threads(8, true), 6);
    assert_eq!(auto.async_threads(2, true), 1);
    assert_eq!(auto.async_threads(1, true), 1);
    assert_eq!(auto.async_threads(2, false), 2);
    let set = Config::from_toml(&(MINIMAL.to_owned() + "[server]\nasync_threads = 3\n"))
        .unwrap()
        .server;
    assert_eq!(set.async_threads(2, true), 3);
}

#[test]
fn runtime_threads_are_batch_scheduled_unless_turned_off() {
    assert!(Config::from_toml(MINIMAL).unwrap().server.sched_batch);
    let off = MINIMAL.to_owned() + "[server]\nsched_batch = false\n";
    assert!(!Config::from_toml(&off).unwrap().server.sched_batch);
}

#[test]
fn load_reads_files_and_names_missing_ones() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(MINIMAL.as_bytes()).unwrap();
    assert_eq!(Config::load(file.path()).unwrap().node.id, 4);
    let missing = file.path().with_extension("absent");
    let error = Config::load(&missing).unwrap_err();
    assert!(matches!(error, ConfigError::Read { .. }));
    assert!(error.to_string().contains("absent"));
}

#[test]
fn the_shipped_example_is_valid() {
    let config = Config::from_toml(include_str!("../../node.example.toml")).unwrap();
    assert_eq!(config.node.id, 1);
    assert_eq!(config.server, aegis_node::config::ServerSection::default());
    assert_eq!(config.raft, aegis_node::config::RaftSection::default());
    let never =
        Config::from_toml(&(MINIMAL.to_owned() + "[raft]\nsnapshot_every_entries = 0\n")).unwrap();
    assert_eq!(never.raft.snapshot_every_entries, 0);
    assert_eq!(config.raft.snapshot_stretch_percent, 50);
    let exact = Config::from_toml(&(MINIMAL.to_owned() + "[raft]\nsnapshot_stretch_percent = 0\n"))
        .unwrap();
    assert_eq!(exact.raft.snapshot_stretch_percent, 0);
}
