//! The CPU cost of idle Raft groups: 10,000 three-node aegis-raft groups in one process,
//! driven for one simulated second, quiescent versus ticking.
//!
//! Each group is three `RawNode`s over `MemStorage` with an in-memory network, driven on
//! one thread by a synchronous loop: tick every node that is awake, execute every Ready,
//! deliver every message, until the group is quiet for that tick. The tick rate and
//! timeouts are aegis-cluster's defaults (10 ms ticks, so 100 ticks per second; 50 ms
//! heartbeats; 150 to 300 ms election timeouts). A ticking group heartbeats every fifth
//! tick and its followers answer; a quiescent group went quiet before the measurement.
//! Two drivers are measured for quiet groups: one that keeps quiet groups off its tick
//! list (it asks `RawNode::is_quiesced`), and one that still calls `tick` on every node
//! every tick (it returns at once for a quiet node). The time of one iteration
//! is the CPU one core spends per wall-clock second on 10,000 idle groups (30,000
//! replicas).

use std::time::Duration;

use aegis_cluster::runtime::RaftConfig;
use aegis_raft::{Config, MemStorage, Message, NodeId, RawNode, Role};
use criterion::{Criterion, criterion_group, criterion_main};

const GROUPS: usize = 10_000;
const VOTERS: [NodeId; 3] = [1, 2, 3];

/// aegis-cluster's default durations, turned into ticks as its driver does.
fn core_config(id: NodeId, quiesce: bool) -> (Config, u64) {
    let cluster = RaftConfig::new(id, VOTERS.to_vec());
    let ticks = |d: Duration| (d.as_nanos() / cluster.tick_interval.as_nanos()).max(1) as u64;
    let mut config = Config::new(id);
    config.election_timeout_ticks_min = ticks(cluster.election_timeout.start);
    config.election_timeout_ticks_max = ticks(cluster.election_timeout.end);
    config.heartbeat_interval_ticks = ticks(cluster.heartbeat_interval);
    config.quiesce = quiesce;
    config.quiesce_after_idle_ticks = config.election_timeout_ticks_min;
    config.validate().expect("valid configuration");
    let ticks_per_second = (1_000_000_000 / cluster.tick_interval.as_nanos()) as u64;
    (config, ticks_per_second)
}

struct Group {
    nodes: Vec<RawNode<MemStorage>>,
    network: Vec<Message>,
}

impl Group {
    fn new(seed: u64, quiesce: bool) -> Group {
        let nodes = VOTERS
            .iter()
            .map(|&id| {
                let (config, _) = core_config(id, quiesce);
                RawNode::new(config, MemStorage::new(&VOTERS), seed).expect("valid node")
            })
            .collect();
        Group {
            nodes,
            network: Vec::new(),
        }
    }

    /// Executes every Ready and delivers every message until nothing is left to do.
    fn drain(&mut self) {
        loop {
            for node in &mut self.nodes {
                while node.has_ready() {
                    let ready = node.ready().expect("ready");
                    self.network.extend(ready.messages.iter().cloned());
                    node.storage_mut().append(&ready.entries);
                    if let Some(hs) = ready.hard_state {
                        node.storage_mut().set_hard_state(hs);
                    }
                    node.on_persisted(ready.persist_ack()).expect("persisted");
                    self.network.extend(ready.persisted_messages);
                    if let Some(last) = ready.committed_entries.last() {
                        node.on_applied(last.index);
                    }
                }
            }
            if self.network.is_empty() {
                return;
            }
            for msg in std::mem::take(&mut self.network) {
                let to = (msg.to - 1) as usize;
                self.nodes[to].step(msg).expect("step");
            }
        }
    }

    /// One tick of the driver: awake nodes tick, then the group settles.
    fn tick(&mut self) {
        for node in &mut self.nodes {
            if !node.is_quiesced() {
                node.tick().expect("tick");
            }
        }
        self.drain();
    }

    fn has_leader(&self) -> bool {
        self.nodes.iter().any(|n| n.role() == Role::Leader)
    }

    fn is_quiet(&self) -> bool {
        self.nodes.iter().all(RawNode::is_quiesced)
    }
}

/// 10,000 groups with an elected leader, and (with `quiesce`) every node quiet.
fn idle_groups(quiesce: bool) -> Vec<Group> {
    (0..GROUPS)
        .map(|i| {
            let mut group = Group::new(i as u64, quiesce);
            let mut ticks = 0;
            while !group.has_leader() || (quiesce && !group.is_quiet()) {
                group.tick();
                ticks += 1;
                assert!(ticks < 10_000, "group {i} did not settle");
            }
            group
        })
        .collect()
}

/// How the driver treats quiet groups.
#[derive(Clone, Copy)]
enum Driver {
    /// Keeps a list of awake groups and drops a group from it once every node is quiet
    /// (a message or a request for the group would put it back): what
    /// `RawNode::is_quiesced` is for.
    SkipQuiet,
    /// Keeps calling `tick` on every node of every group (it returns at once for a quiet
    /// node), and drains the Readies of groups that are not quiet.
    PollAll,
}

/// One simulated second of the driver over `groups`; `awake` lists the groups the
/// `SkipQuiet` driver still ticks.
fn one_second(groups: &mut [Group], awake: &mut Vec<usize>, driver: Driver, ticks: u64) {
    for _ in 0..ticks {
        match driver {
            Driver::SkipQuiet => awake.retain(|&i| {
                groups[i].tick();
                !groups[i].is_quiet()
            }),
            Driver::PollAll => {
                for group in groups.iter_mut() {
                    for node in &mut group.nodes {
                        node.tick().expect("tick");
                    }
                    if !group.is_quiet() {
                        group.drain();
                    }
                }
            }
        }
    }
}

fn bench_idle_groups(c: &mut Criterion) {
    let (_, ticks_per_second) = core_config(1, false);
    let mut group = c.benchmark_group("raft_quiesce/10k_idle_groups_one_second");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(12));
    let variants = [
        ("quiescent_skipped", true, Driver::SkipQuiet),
        ("quiescent_polled", true, Driver::PollAll),
        ("ticking", false, Driver::SkipQuiet),
    ];
    for (name, quiesce, driver) in variants {
        let mut groups = idle_groups(quiesce);
        let mut awake: Vec<usize> = (0..groups.len())
            .filter(|&i| !groups[i].is_quiet())
            .collect();
        assert_eq!(awake.is_empty(), quiesce);
        group.bench_function(name, |b| {
            b.iter(|| one_second(&mut groups, &mut awake, driver, ticks_per_second));
        });
        // The groups stayed as they were: quiet ones silent, ticking ones led.
        assert!(groups.iter().all(Group::has_leader));
        assert!(!quiesce || groups.iter().all(Group::is_quiet));
        assert_eq!(awake.len(), if quiesce { 0 } else { GROUPS });
    }
    group.finish();
}

criterion_group!(benches, bench_idle_groups);
criterion_main!(benches);
