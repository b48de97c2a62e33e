//! The simulation driver: nodes, disks, network, clients and faults, stepped in virtual
//! time from one seed.

mod quiet;

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use aegis_raft::{Config, Message, Payload, ReadOnlyOption, Role};

use crate::checker::{RegisterInput, RegisterOutput};
use crate::event::Event;
use crate::history::{History, OpId};
use crate::host::{Applied, Host, HostError, Profile, Refusal, summarize};
use crate::net::{Envelope, NetConfig, Network};
use crate::options::{FaultOptions, Options, SETTLE_STRETCH_MAX, Sabotage};
use crate::oracle::{Oracle, Violation};
use crate::report::{Failure, FailureKind, Report};
use crate::rng::SimRng;
use crate::trace::Trace;
use crate::{Error, NodeId};

mod membership;

/// Entry point: one deterministic run per seed.
#[derive(Debug, Clone, Copy)]
pub struct Simulation;

impl Simulation {
    /// Validates `options` and sets up the cluster for `seed`.
    fn build(seed: u64, options: &Options) -> Result<World, Error> {
        options.validate()?;
        World::new(seed, options.clone())
    }

    /// Runs one simulation. The same seed and options always produce the same run
    /// (compare [`Report::digest`]).
    ///
    /// # Errors
    /// A [`Failure`] describing the first violated property, with the seed and the
    /// trace tail. Invalid options are reported as a failure of kind
    /// [`FailureKind::Unexpected`].
    pub fn run(seed: u64, options: &Options) -> Result<Report, Failure> {
        let mut world = match Self::build(seed, options) {
            Ok(world) => world,
            Err(e) => {
                return Err(Failure {
                    seed,
                    tick: 0,
                    kind: FailureKind::Unexpected,
                    detail: e.to_string(),
                    setup: String::new(),
                    trace_tail: String::new(),
                });
            }
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| world.run()));
        match outcome {
            Ok(Ok(())) => Ok(world.report()),
            Ok(Err((kind, detail))) => Err(world.failure(kind, detail)),
            Err(panic) => {
                let detail = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "non-string panic payload".to_owned());
                Err(world.failure(FailureKind::Panic, detail))
            }
        }
    }
}

type Fail = (FailureKind, String);

impl From<HostError> for (FailureKind, String) {
    fn from(e: HostError) -> Self {
        match e {
            HostError::Raft(detail) => (FailureKind::Unexpected, detail),
            HostError::Invariant(v) => v.into(),
        }
    }
}

impl From<Violation> for (FailureKind, String) {
    fn from(v: Violation) -> Self {
        (
            FailureKind::Invariant {
                invariant: v.invariant,
            },
            v.detail,
        )
    }
}

/// What a client waits for.
#[derive(Debug, Clone)]
enum Wait {
    /// Its command was proposed at `index` on the node; the node's apply answers it.
    Apply { request: u64, index: u64 },
    /// Its ReadIndex request with this context is in flight.
    Read {
        context: u64,
        /// The highest index committed anywhere when the read was invoked: the read
        /// must see at least that much.
        floor: u64,
    },
    /// Its read was confirmed; answer once the node applied `index`.
    ReadAt { index: u64 },
}

#[derive(Debug, Clone)]
struct Pending {
    op: OpId,
    node: NodeId,
    key: u64,
    deadline: u64,
    wait: Wait,
}

#[derive(Debug, Clone)]
struct Client {
    id: u64,
    target: NodeId,
    pending: Option<Pending>,
    /// Backing off after being told there is no leader.
    idle_until: u64,
}

/// The stale-leader nemesis: see [`FaultOptions::stale_leader_per_mille`].
#[derive(Debug, Clone, Copy)]
struct Plot {
    leader: NodeId,
    /// The follower cut off from the leader, expected to campaign.
    rival: NodeId,
    /// Whether the voter has been rebooted.
    sprung: bool,
    /// The voter that cannot hear the leader, and until when.
    voter_cut: Option<(NodeId, u64)>,
    /// When the plot is abandoned.
    until: u64,
}

/// The current shape of the client workload.
#[derive(Debug, Clone, Copy)]
struct Phase {
    until: u64,
    invoke_per_mille: u32,
    reads_per_cent: u64,
}

pub(crate) struct World {
    seed: u64,
    options: Options,
    rng: SimRng,
    now: u64,
    net: Network<Message>,
    hostile: bool,
    hosts: Vec<Host>,
    clients: Vec<Client>,
    history: History,
    trace: Trace<Event>,
    oracle: Oracle,
    invoked: u64,
    next_request: u64,
    /// Recently written values per key, for compare-and-swap expectations.
    written: BTreeMap<u64, Vec<u64>>,
    /// Client-acknowledged writes: index and the committed chain at that index.
    acked: Vec<(u64, u64)>,
    phase: Phase,
    /// Whether the fault phase is still on.
    faults_on: bool,
    /// Node `i` is stopped (a long GC pause, a frozen VM) until `paused_until[i]`.
    paused_until: Vec<u64>,
    /// Messages that reached a stopped node, waiting for it to resume.
    held: Vec<Vec<Envelope<Message>>>,
    /// The stale-leader nemesis in progress.
    plot: Option<Plot>,
    /// Clients invoke nothing before this tick.
    quiet_until: u64,
    /// When a quickly rebooting node comes back.
    bounce_at: Vec<Option<u64>>,
    crashes: u64,
    partitions: u64,
    messages: u64,
    /// Leadership transfers started.
    transfers: u64,
    /// Node-ticks skipped because the node was quiet.
    quiet_ticks: u64,
    /// The transfer race in progress: see [`quiet::TransferRace`].
    transfer_race: Option<quiet::TransferRace>,
    /// Membership changes a leader accepted.
    conf_changes: u64,
}

impl World {
    fn new(seed: u64, mut options: Options) -> Result<Self, Error> {
        let mut rng = SimRng::new(seed);
        if options.vary_faults {
            options.faults = vary_faults(&options.faults, &mut rng);
            options.net = vary_net(&options.net, &mut rng);
        }
        let ids: Vec<NodeId> = (1..=options.nodes).collect();
        let mut config = if let Some(config) = &options.raft_config {
            config.clone()
        } else if options.vary_config {
            draw_config(&mut rng)
        } else {
            Config::new(1)
        };
        let snapshots = if options.snapshots {
            crate::snapshot::draw(&mut rng, &mut config)
        } else {
            None
        };
        // Lease reads are only safe while clocks agree: no slow nodes in those runs.
        let skip_max = if config.read_only_option == ReadOnlyOption::LeaseBased {
            0
        } else {
            options.tick_skip_per_mille_max
        };
        let mut hosts = Vec::new();
        for &id in &ids {
            let host_seed = rng.next_u64();
            let profile = Profile {
                config: config.clone(),
                tick_skip_per_mille: rng.below(u64::from(skip_max) + 1) as u32,
                sabotage: options.sabotage,
                snapshots,
            };
            hosts.push(Host::new(
                id,
                &ids,
                host_seed,
                options.disk_delay_ticks_max,
                profile,
            )?);
        }
        let clients = (0..options.clients)
            .map(|id| Client {
                id,
                target: 1 + rng.below(options.nodes),
                pending: None,
                idle_until: 0,
            })
            .collect();
        Ok(Self {
            seed,
            net: Network::new(options.net.clone())?,
            hostile: true,
            trace: Trace::new(options.trace_tail, options.verbose),
            options,
            rng,
            now: 0,
            hosts,
            clients,
            history: History::new(),
            oracle: Oracle::default(),
            invoked: 0,
            next_request: 1,
            written: BTreeMap::new(),
            acked: Vec::new(),
            bounce_at: vec![None; ids.len()],
            faults_on: true,
            paused_until: vec![0; ids.len()],
            held: vec![Vec::new(); ids.len()],
            plot: None,
            quiet_until: 0,
            phase: Phase {
                until: 0,
                invoke_per_mille: 0,
                reads_per_cent: 0,
            },
            crashes: 0,
            partitions: 0,
            messages: 0,
            transfers: 0,
            quiet_ticks: 0,
            transfer_race: None,
            conf_changes: 0,
        })
    }

    fn quorum(&self) -> usize {
        self.hosts.len() / 2 + 1
    }

    fn report(&self) -> Report {
        Report {
            seed: self.seed,
            nodes: self.options.nodes,
            ticks: self.now,
            digest: self.trace.digest(),
            events: self.trace.len(),
            accepted: self.invoked,
            history: self.history.stats(),
            commit_index: self.oracle.commit_index(),
            leader_terms: self.oracle.leader_terms(),
            crashes: self.crashes,
            partitions: self.partitions,
            messages: self.messages,
            transfers: self.transfers,
            quiet_ticks: self.quiet_ticks,
            conf_changes: self.conf_changes,
        }
    }

    /// What the seed drew: the settings a reader needs to understand a failure.
    fn setup(&self) -> String {
        let c = &self.hosts[0].profile.config;
        let skips: Vec<u32> = self
            .hosts
            .iter()
            .map(|h| h.profile.tick_skip_per_mille)
            .collect();
        format!(
            "{} nodes; pre_vote {} check_quorum {} reads {:?} (lease drift {}); election {}..{} heartbeat {}; inflight {} msgs / {} bytes, {} entries / {} bytes per message, uncommitted {} bytes; tick skips per mille {skips:?}; quiesce {} after {} idle ticks; faults {:?}; network {:?}; snapshots {:?} (tail {}, chunks of {} bytes, {} in flight)",
            self.hosts.len(),
            c.pre_vote,
            c.check_quorum,
            c.read_only_option,
            c.lease_drift_ticks,
            c.election_timeout_ticks_min,
            c.election_timeout_ticks_max,
            c.heartbeat_interval_ticks,
            c.inflight_msgs_max,
            c.inflight_bytes_max,
            c.entries_per_msg_max,
            c.msg_bytes_max,
            c.uncommitted_bytes_max,
            c.quiesce,
            c.quiesce_after_idle_ticks,
            self.options.faults,
            self.options.net,
            self.hosts[0].profile.snapshots,
            c.compaction_tail_entries,
            c.snapshot_chunk_bytes_max,
            c.snapshot_inflight_chunks_max,
        )
    }

    fn failure(&self, kind: FailureKind, detail: String) -> Failure {
        Failure {
            seed: self.seed,
            tick: self.now,
            kind,
            detail,
            setup: self.setup(),
            trace_tail: self.trace.tail(),
        }
    }

    fn run(&mut self) -> Result<(), Fail> {
        for i in 0..self.hosts.len() {
            self.observe(i)?;
        }
        // Generous: a healthy run needs about one tick per operation.
        let ticks_max = self.options.ops.saturating_mul(50).saturating_add(5_000);
        while self.invoked < self.options.ops {
            if self.now >= ticks_max {
                return Err((
                    FailureKind::Liveness,
                    format!(
                        "only {} of {} operations accepted in {ticks_max} ticks",
                        self.invoked, self.options.ops
                    ),
                ));
            }
            self.faults()?;
            self.step_tick(true)?;
        }
        self.settle()?;
        self.final_checks()
    }

    /// Heals everything and lets the cluster finish outstanding work and converge.
    fn settle(&mut self) -> Result<(), Fail> {
        self.faults_on = false;
        self.paused_until.fill(0);
        self.net.heal();
        self.trace.record(self.now, Event::Heal);
        self.net
            .set_config(NetConfig::reliable())
            .map_err(|e| (FailureKind::Unexpected, e.to_string()))?;
        for i in 0..self.hosts.len() {
            if !self.hosts[i].is_up() {
                self.restart(i)?;
            }
        }
        let window = self.options.settle_ticks_max;
        let healed = self.now;
        let last_chance = healed + window.saturating_mul(SETTLE_STRETCH_MAX);
        let mut deadline = healed + window;
        let mut best = self.progress();
        while self.now < deadline {
            self.step_tick(false)?;
            if self.clients.iter().all(|c| c.pending.is_none()) && self.converged() {
                return Ok(());
            }
            let progress = self.progress();
            if progress > best {
                best = progress;
                deadline = (self.now + window).min(last_chance);
            }
        }
        let status: Vec<String> = self.hosts.iter().map(Host::status).collect();
        let why = if self.now >= last_chance {
            format!(
                "still not converged {} ticks after healing",
                self.now - healed
            )
        } else {
            format!(
                "no progress for {window} ticks, {} ticks after healing",
                self.now - healed
            )
        };
        Err((
            FailureKind::Liveness,
            format!(
                "{why}; known commit {}; nodes: {}",
                self.oracle.commit_index(),
                status.join("; ")
            ),
        ))
    }

    /// How far the nodes have got, for telling a slow cluster from a stuck one: every
    /// node's durable log end and applied index, summed. Logs that only grow by new
    /// leaders' empty entries count too; the overall settle limit catches that.
    fn progress(&self) -> u64 {
        self.hosts
            .iter()
            .map(|h| h.durable.last_index() + h.applied)
            .sum()
    }

    /// Every node up, one leader (the latest) whose whole log is committed, every
    /// member of its configuration applied it. Nodes removed from the group are left
    /// out.
    fn converged(&self) -> bool {
        let Some(leader) = self.latest_leader() else {
            return false;
        };
        let last = leader.view.last_index();
        let members = self.members();
        leader.commit() == last
            && self.hosts.iter().all(|h| h.is_up())
            && self
                .hosts
                .iter()
                .filter(|h| members.contains(&h.id))
                .all(|h| {
                    h.applied == last
                        && h.view.last_index() == last
                        && h.durable.last_index() == last
                })
    }

    fn final_checks(&mut self) -> Result<(), Fail> {
        let members = self.members();
        let mut hosts = self.hosts.iter().filter(|h| members.contains(&h.id));
        let first = hosts.next().expect("the group has a member");
        for h in hosts {
            if h.kv != first.kv || h.view != first.view {
                return Err((
                    FailureKind::Invariant {
                        invariant: "convergence",
                    },
                    format!("nodes {} and {} differ after settling", first.id, h.id),
                ));
            }
        }
        for &(index, chain) in &self.acked {
            if first.view.chain(index) != Some(chain) {
                return Err((
                    FailureKind::Invariant {
                        invariant: "acknowledged writes survive",
                    },
                    format!("the write acknowledged at index {index} is not in the final log"),
                ));
            }
        }
        self.history
            .check(self.options.checker_steps_max)
            .map_err(|v| {
                let kind = match v.verdict {
                    crate::checker::Verdict::GaveUp { .. } => {
                        FailureKind::CheckerGaveUp { key: v.key }
                    }
                    _ => FailureKind::Linearizability { key: v.key },
                };
                (
                    kind,
                    format!("{:?}\n{}", v.verdict, v.operations.join("\n")),
                )
            })
    }

    /// One tick of virtual time: disks, network, timers, clients, then checks.
    fn step_tick(&mut self, invoking: bool) -> Result<(), Fail> {
        self.now += 1;
        for i in 0..self.hosts.len() {
            if self.running(i) {
                self.complete_writes(i)?;
            }
        }
        let mut due: Vec<Envelope<Message>> = Vec::new();
        for i in 0..self.hosts.len() {
            if self.running(i) {
                // A resumed process first reads what piled up while it was stopped.
                due.append(&mut self.held[i]);
            }
        }
        due.extend(self.net.deliver_due(self.now));
        self.detect_failures();
        for envelope in due {
            let i = (envelope.target - 1) as usize;
            if !self.hosts[i].is_up() {
                continue;
            }
            if !self.running(i) {
                self.held[i].push(envelope);
                continue;
            }
            self.trace.record(
                self.now,
                Event::Deliver {
                    source: envelope.source,
                    target: envelope.target,
                    message: summarize(&envelope.message),
                },
            );
            self.hosts[i]
                .step(envelope.message)
                .map_err(|e| (FailureKind::Unexpected, e))?;
            self.process(i)?;
        }
        for i in 0..self.hosts.len() {
            let skip = self.hosts[i].profile.tick_skip_per_mille;
            if self.running(i) && !self.rng.chance(skip) && !self.skips_tick_quietly(i) {
                self.hosts[i]
                    .tick()
                    .map_err(|e| (FailureKind::Unexpected, e))?;
                self.process(i)?;
            }
        }
        self.expire_clients();
        if invoking {
            self.invoke_clients()?;
        }
        self.check_durable_quorum()?;
        Ok(())
    }

    fn complete_writes(&mut self, i: usize) -> Result<(), Fail> {
        if !self.hosts[i].is_up() {
            return Ok(());
        }
        let (done, messages) = self.hosts[i].complete_writes(self.now)?;
        if done {
            let node = self.hosts[i].id;
            for (index, chain) in std::mem::take(&mut self.hosts[i].installed) {
                // The snapshot must be the committed log, and the new log must match
                // every other node's.
                self.trace
                    .record(self.now, Event::SnapshotInstalled { node, index });
                self.oracle.observe_apply(node, index, chain)?;
                let others = self.hosts.iter().map(|h| (h.id, &h.view));
                Oracle::check_log_matching(node, &self.hosts[i].view, 1, others)?;
            }
            let last_index = self.hosts[i].durable.last_index();
            self.trace
                .record(self.now, Event::Durable { node, last_index });
            self.send_all(node, messages)?;
            self.process(i)?;
        }
        Ok(())
    }

    /// Puts messages on the network, each through the versioned wire encoding so the
    /// codec is exercised by every run.
    fn send_all(&mut self, source: NodeId, messages: Vec<Message>) -> Result<(), Fail> {
        for original in messages {
            let target = original.to;
            if original.from != source {
                return Err((
                    FailureKind::Unexpected,
                    format!("node {source} sends a message signed by {}", original.from),
                ));
            }
            let bytes = original.encode();
            let message = Message::decode(&bytes, bytes.len()).map_err(|e| {
                (
                    FailureKind::Unexpected,
                    format!("message from node {source} does not decode: {e}"),
                )
            })?;
            if message != original {
                return Err((
                    FailureKind::Unexpected,
                    format!("message from node {source} changes in encoding: {original:?}"),
                ));
            }
            let summary = summarize(&message);
            self.maybe_bounce_voter(&message);
            let outcome = self
                .net
                .send(self.now, source, target, message, &mut self.rng);
            self.messages += 1;
            self.trace.record(
                self.now,
                Event::Send {
                    source,
                    target,
                    message: summary,
                    outcome,
                },
            );
        }
        Ok(())
    }

    /// Drains the node's ready state: sends, persists, applies, answers clients, and
    /// checks every invariant that the step could have affected.
    fn process(&mut self, i: usize) -> Result<(), Fail> {
        loop {
            let Some(out) = self.hosts[i]
                .drain_ready(self.now, &mut self.rng)
                .map_err(|e| (FailureKind::Unexpected, e))?
            else {
                break;
            };
            let node = self.hosts[i].id;
            if let Some(p) = out.persist {
                self.trace.record(self.now, p);
                if out.log_changed_from > 0 {
                    let others = self.hosts.iter().map(|h| (h.id, &h.view));
                    Oracle::check_log_matching(
                        node,
                        &self.hosts[i].view,
                        out.log_changed_from,
                        others,
                    )?;
                }
            }
            self.send_all(node, out.messages)?;
            self.observe(i)?;
            for applied in out.applied {
                self.oracle
                    .observe_apply(node, applied.index, applied.chain)?;
                self.answer_apply(node, applied);
            }
            if let Some((first, last)) = out.applied_range {
                self.trace
                    .record(self.now, Event::Apply { node, first, last });
            }
            for (context, index) in out.reads {
                self.trace
                    .record(self.now, Event::ReadReady { node, index });
                self.answer_read_ready(node, context, index)?;
            }
            self.answer_reads_at(i);
        }
        Ok(())
    }

    /// Checks role, term and commit of node `i` against the oracle.
    fn observe(&mut self, i: usize) -> Result<(), Fail> {
        let h = &mut self.hosts[i];
        let Some((role, term)) = h.role_term() else {
            return Ok(());
        };
        if let Some((_, seen)) = h.last_role
            && term < seen
        {
            return Err((
                FailureKind::Invariant {
                    invariant: "term never decreases",
                },
                format!("node {} moved from term {seen} back to {term}", h.id),
            ));
        }
        if h.last_role != Some((role, term)) {
            h.last_role = Some((role, term));
            self.trace.record(
                self.now,
                Event::Role {
                    node: h.id,
                    role,
                    term,
                },
            );
        }
        let commit = h.commit();
        if commit < h.last_commit {
            return Err((
                FailureKind::Invariant {
                    invariant: "commit index never decreases",
                },
                format!(
                    "node {} moved its commit index back from {} to {commit}",
                    h.id, h.last_commit
                ),
            ));
        }
        if commit != h.last_commit {
            h.last_commit = commit;
            self.trace.record(
                self.now,
                Event::Commit {
                    node: h.id,
                    index: commit,
                },
            );
        }
        self.oracle.observe_commit(h.id, term, commit, &h.view)?;
        if role == Role::Leader {
            self.oracle.observe_leader(h.id, term)?;
            self.oracle.check_leader_completeness(h.id, term, &h.view)?;
        }
        Ok(())
    }

    fn answer_apply(&mut self, node: NodeId, applied: Applied) {
        let Applied {
            index,
            chain,
            result: command,
        } = applied;
        for c in &mut self.clients {
            let Some(p) = &c.pending else { continue };
            let Wait::Apply {
                request,
                index: want,
            } = p.wait
            else {
                continue;
            };
            if p.node != node || want != index {
                continue;
            }
            let op = p.op;
            match command {
                Some((cmd, output)) if cmd.request == request => {
                    self.history.complete(op, output);
                    if !matches!(cmd.input, RegisterInput::Get) {
                        self.acked.push((index, chain));
                    }
                    self.trace.record(
                        self.now,
                        Event::Respond {
                            client: c.id,
                            op: op.0,
                            output,
                        },
                    );
                }
                _ => {
                    // Another entry was committed at our index: ours never will be.
                    self.history.fail(op);
                    self.trace.record(
                        self.now,
                        Event::Refused {
                            client: c.id,
                            op: op.0,
                            reason: format!("index {index} taken by another entry"),
                        },
                    );
                }
            }
            c.pending = None;
        }
    }

    /// A read was confirmed at `index`. ReadIndex's contract: the index covers every
    /// entry committed before the read was asked for.
    fn answer_read_ready(&mut self, node: NodeId, context: u64, index: u64) -> Result<(), Fail> {
        for c in &mut self.clients {
            let Some(p) = &mut c.pending else { continue };
            let Wait::Read {
                context: ctx,
                floor,
            } = p.wait
            else {
                continue;
            };
            if p.node != node || ctx != context {
                continue;
            }
            if index < floor {
                return Err((
                    FailureKind::Invariant {
                        invariant: "read index covers earlier commits",
                    },
                    format!(
                        "node {node} confirmed a read at index {index}, but index {floor} was committed before the read was asked for"
                    ),
                ));
            }
            p.wait = Wait::ReadAt { index };
        }
        Ok(())
    }

    fn answer_reads_at(&mut self, i: usize) {
        let h = &self.hosts[i];
        for c in &mut self.clients {
            let Some(p) = &c.pending else { continue };
            if p.node != h.id {
                continue;
            }
            if let Wait::ReadAt { index } = p.wait
                && h.applied >= index
            {
                let output = RegisterOutput::Value(h.kv.get(p.key));
                self.history.complete(p.op, output);
                self.trace.record(
                    self.now,
                    Event::Respond {
                        client: c.id,
                        op: p.op.0,
                        output,
                    },
                );
                c.pending = None;
            }
        }
    }

    fn expire_clients(&mut self) {
        for c in &mut self.clients {
            if let Some(p) = &c.pending
                && p.deadline <= self.now
            {
                self.trace.record(
                    self.now,
                    Event::GaveUp {
                        client: c.id,
                        op: p.op.0,
                    },
                );
                c.pending = None;
                c.target = 1 + self.rng.below(self.hosts.len() as u64);
            }
        }
    }

    /// The workload moves through phases: busy, trickling (long quiet gaps in which
    /// elections can finish with up-to-date logs everywhere), and read-mostly.
    fn next_phase(&mut self) {
        if self.now < self.phase.until {
            return;
        }
        let full = self.options.invoke_per_mille;
        self.phase = match self.rng.below(4) {
            0 => Phase {
                until: 0,
                invoke_per_mille: full.min(20),
                reads_per_cent: 40,
            },
            1 => Phase {
                until: 0,
                invoke_per_mille: full,
                reads_per_cent: 90,
            },
            _ => Phase {
                until: 0,
                invoke_per_mille: full,
                reads_per_cent: 40,
            },
        };
        self.phase.until = self.now + self.rng.range_inclusive(50, 300);
    }

    fn invoke_clients(&mut self) -> Result<(), Fail> {
        self.next_phase();
        for ci in 0..self.clients.len() {
            if self.invoked >= self.options.ops {
                break;
            }
            let client = &self.clients[ci];
            if client.pending.is_some()
                || client.idle_until > self.now
                || self.quiet_until > self.now
                || !self.rng.chance(self.phase.invoke_per_mille)
            {
                continue;
            }
            let target = self.clients[ci].target;
            let ti = (target - 1) as usize;
            if !self.running(ti) {
                // Connection refused: nothing was invoked; try elsewhere next time.
                self.clients[ci].target = 1 + self.rng.below(self.hosts.len() as u64);
                continue;
            }
            self.invoke(ci, ti)?;
        }
        Ok(())
    }

    fn random_input(&mut self, key: u64) -> RegisterInput {
        let reads = self.phase.reads_per_cent;
        let roll = self.rng.below(100);
        let fresh = self.next_request;
        if roll < reads {
            RegisterInput::Get
        } else if roll < reads + (100 - reads) * 6 / 10 {
            RegisterInput::Put(fresh)
        } else {
            let recent = self.written.get(&key).map_or(&[][..], Vec::as_slice);
            let expect = if recent.is_empty() {
                0
            } else {
                recent[self.rng.index(recent.len())]
            };
            RegisterInput::Cas { expect, new: fresh }
        }
    }

    fn invoke(&mut self, ci: usize, ti: usize) -> Result<(), Fail> {
        let key = self.rng.below(self.options.keys);
        let input = self.random_input(key);
        let request = self.next_request;
        self.next_request += 1;
        if let RegisterInput::Put(v) | RegisterInput::Cas { new: v, .. } = input {
            let recent = self.written.entry(key).or_default();
            recent.push(v);
            if recent.len() > 4 {
                recent.remove(0);
            }
        }
        // Read-mostly phases keep the log still: their reads all go through ReadIndex.
        let read_index = input == RegisterInput::Get
            && (self.phase.reads_per_cent >= 90 || self.rng.chance(500));
        let client = self.clients[ci].id;
        let node = self.hosts[ti].id;
        let op = self.history.invoke(client, key, input);
        self.trace.record(
            self.now,
            Event::Invoke {
                client,
                op: op.0,
                node,
                key,
                input,
                read_index,
            },
        );
        let deadline = self.now + self.options.client_timeout_ticks;
        let lied = self.sabotaged_answer(ti, key, input, read_index);
        if let Some(output) = lied {
            self.history.complete(op, output);
            self.trace.record(
                self.now,
                Event::Respond {
                    client,
                    op: op.0,
                    output,
                },
            );
            if !matches!(input, RegisterInput::Put(_)) {
                self.invoked += 1;
                return Ok(());
            }
        }
        let submitted = if read_index {
            self.hosts[ti].read_index(request).map(|()| Wait::Read {
                context: request,
                floor: self.oracle.commit_index(),
            })
        } else {
            let command = crate::kv::Command {
                request,
                key,
                input,
            };
            self.hosts[ti]
                .propose(&command)
                .map(|index| Wait::Apply { request, index })
        };
        match submitted {
            Ok(_) | Err(_) if lied.is_some() => self.invoked += 1,
            Ok(wait) => {
                self.invoked += 1;
                self.clients[ci].pending = Some(Pending {
                    op,
                    node,
                    key,
                    deadline,
                    wait,
                });
            }
            Err(refusal) => {
                let reason = match &refusal {
                    Refusal::NotLeader { leader_hint } => {
                        format!("not leader (hint {leader_hint:?})")
                    }
                    Refusal::Busy(why) => why.clone(),
                };
                self.history.fail(op);
                self.trace.record(
                    self.now,
                    Event::Refused {
                        client,
                        op: op.0,
                        reason,
                    },
                );
                if let Refusal::NotLeader { leader_hint } = refusal {
                    let c = &mut self.clients[ci];
                    if let Some(leader) = leader_hint {
                        c.target = leader;
                    } else {
                        // No leader known: an election is on; wait a little.
                        c.target = 1 + self.rng.below(self.hosts.len() as u64);
                        c.idle_until = self.now + self.rng.range_inclusive(1, 8);
                    }
                }
            }
        }
        self.process(ti)
    }

    /// Draws this tick's faults.
    fn faults(&mut self) -> Result<(), Fail> {
        let f = self.options.faults.clone();
        let n = self.hosts.len();
        let up = self.hosts.iter().filter(|h| h.is_up()).count();
        let crash_chance = if up > self.quorum() {
            f.crash_per_mille
        } else if up > 1 {
            f.outage_per_mille
        } else {
            0
        };
        if self.rng.chance(crash_chance) {
            let candidates: Vec<usize> = (0..n).filter(|&i| self.hosts[i].is_up()).collect();
            let i = candidates[self.rng.index(candidates.len())];
            self.crash(i);
        }
        if self.rng.chance(f.bounce_per_mille) {
            let i = self.rng.index(n);
            if self.hosts[i].is_up() {
                self.crash(i);
                self.bounce_at[i] = Some(self.now + self.rng.range_inclusive(0, 3));
            }
        }
        for i in 0..n {
            if self.hosts[i].is_up() {
                continue;
            }
            let bounced = self.bounce_at[i].is_some_and(|at| at <= self.now);
            if bounced || self.rng.chance(f.restart_per_mille) {
                self.restart(i)?;
            }
        }
        if n > 1 && self.rng.chance(f.partition_per_mille) {
            let mut groups = vec![Vec::new(), Vec::new()];
            for id in 1..=n as u64 {
                groups[self.rng.index(2)].push(id);
            }
            groups.retain(|g| !g.is_empty());
            self.net.partition(&groups);
            self.partitions += 1;
            self.trace.record(self.now, Event::Partition { groups });
        }
        if n > 2 && self.rng.chance(f.bridge_per_mille) {
            let x = 1 + self.rng.below(n as u64);
            let mut y = 1 + self.rng.below(n as u64 - 1);
            if y >= x {
                y += 1;
            }
            self.net.cut_one_way(x, y);
            self.net.cut_one_way(y, x);
            self.partitions += 1;
            self.trace.record(self.now, Event::Bridge { a: x, b: y });
        }
        if n > 1 && self.rng.chance(f.one_way_per_mille) {
            let source = 1 + self.rng.below(n as u64);
            let mut target = 1 + self.rng.below(n as u64 - 1);
            if target >= source {
                target += 1;
            }
            self.net.cut_one_way(source, target);
            self.partitions += 1;
            self.trace
                .record(self.now, Event::CutOneWay { source, target });
        }
        self.stage_stale_leader(&f);
        self.maybe_transfer(&f);
        // Lease reads assume clocks that do not stop, so those runs are never paused.
        let lease = self.hosts[0].profile.config.read_only_option == ReadOnlyOption::LeaseBased;
        if !lease && self.rng.chance(f.pause_per_mille) {
            let i = self.rng.index(n);
            if self.running(i) {
                let ticks = self.rng.range_inclusive(5, 40);
                self.paused_until[i] = self.now + ticks;
                self.trace.record(
                    self.now,
                    Event::Pause {
                        node: self.hosts[i].id,
                        ticks,
                    },
                );
            }
        }
        if self.rng.chance(f.heal_per_mille) {
            self.net.heal();
            self.trace.record(self.now, Event::Heal);
        }
        if self.rng.chance(f.membership_per_mille) {
            self.change_membership()?;
        }
        if self.plot.is_none() && self.rng.chance(f.net_flip_per_mille) {
            self.hostile = !self.hostile;
            let config = if self.hostile {
                self.options.net.clone()
            } else {
                NetConfig::reliable()
            };
            self.net
                .set_config(config)
                .map_err(|e| (FailureKind::Unexpected, e.to_string()))?;
            self.trace.record(
                self.now,
                Event::NetMode {
                    hostile: self.hostile,
                },
            );
        }
        Ok(())
    }

    /// The answers a sabotaged driver gives without waiting for Raft.
    fn sabotaged_answer(
        &self,
        ti: usize,
        key: u64,
        input: RegisterInput,
        read_index: bool,
    ) -> Option<RegisterOutput> {
        match (self.options.sabotage, input) {
            (Some(Sabotage::LocalReads), RegisterInput::Get) if read_index => {
                Some(RegisterOutput::Value(self.hosts[ti].kv.get(key)))
            }
            (Some(Sabotage::AckWritesAtPropose), RegisterInput::Put(_))
                if self.hosts[ti].role() == Some(Role::Leader) =>
            {
                Some(RegisterOutput::Written)
            }
            _ => None,
        }
    }

    /// Starts, advances or ends the stale-leader nemesis.
    fn stage_stale_leader(&mut self, f: &FaultOptions) {
        if let Some(plot) = &mut self.plot {
            if let Some((voter, at)) = plot.voter_cut
                && at <= self.now
            {
                self.net.restore_one_way(plot.leader, voter);
                plot.voter_cut = None;
            }
            if plot.until <= self.now {
                if let Some((voter, _)) = plot.voter_cut {
                    self.net.restore_one_way(plot.leader, voter);
                }
                self.plot = None;
                self.quiet_until = self.now;
                let config = if self.hostile {
                    self.options.net.clone()
                } else {
                    NetConfig::reliable()
                };
                self.net
                    .set_config(config)
                    .expect("a valid network configuration");
            }
            return;
        }
        if self.hosts.len() < 3 || !self.rng.chance(f.stale_leader_per_mille) {
            return;
        }
        let leader = self.latest_leader().map(|h| h.id);
        let Some(leader) = leader else { return };
        let followers: Vec<NodeId> = self
            .hosts
            .iter()
            .filter(|h| h.id != leader && h.is_up())
            .map(|h| h.id)
            .collect();
        if followers.len() < 2 {
            return;
        }
        let rival = followers[self.rng.index(followers.len())];
        self.net.cut_one_way(leader, rival);
        self.net.cut_one_way(rival, leader);
        // A quick network makes the race between the new election and the old lease
        // close enough to lose.
        let quick = NetConfig {
            delay_ticks_max: 0,
            ..NetConfig::reliable()
        };
        self.net
            .set_config(quick)
            .expect("a valid network configuration");
        self.quiet_until = self.now + 60;
        self.plot = Some(Plot {
            leader,
            rival,
            sprung: false,
            voter_cut: None,
            until: self.now + 80,
        });
        self.partitions += 1;
        self.trace
            .record(self.now, Event::StaleLeader { leader, rival });
    }

    /// The campaign nemesis: the recipient of a vote request reboots before it arrives.
    fn maybe_bounce_voter(&mut self, message: &Message) {
        if !self.faults_on
            || !matches!(
                message.payload,
                Payload::PreVote(_) | Payload::Vote(_) | Payload::TransferVote(_)
            )
        {
            return;
        }
        let t = (message.to - 1) as usize;
        if let Some(plot) = &mut self.plot
            && !plot.sprung
            && message.from == plot.rival
            && message.to != plot.leader
            && self.hosts[t].is_up()
        {
            plot.sprung = true;
            let leader = plot.leader;
            plot.voter_cut = Some((message.to, plot.until));
            self.net.cut_one_way(leader, message.to);
            self.crash(t);
            self.bounce_at[t] = Some(self.now);
            self.quiet_until = self.now;
            return;
        }
        if self.hosts[t].is_up()
            && self
                .rng
                .chance(self.options.faults.campaign_bounce_per_mille)
        {
            self.crash(t);
            self.bounce_at[t] = Some(self.now);
        }
    }

    /// Whether node `i` is up and not paused.
    fn running(&self, i: usize) -> bool {
        self.hosts[i].is_up() && self.paused_until[i] <= self.now
    }

    fn crash(&mut self, i: usize) {
        self.held[i].clear();
        self.paused_until[i] = 0;
        let lost_writes = self.hosts[i].crash();
        let node = self.hosts[i].id;
        self.crashes += 1;
        self.trace
            .record(self.now, Event::Crash { node, lost_writes });
        // Clients waiting on the node never hear back: their operations stay open.
        for c in &mut self.clients {
            if let Some(p) = &c.pending
                && p.node == node
            {
                self.trace.record(
                    self.now,
                    Event::GaveUp {
                        client: c.id,
                        op: p.op.0,
                    },
                );
                c.pending = None;
            }
        }
    }

    fn restart(&mut self, i: usize) -> Result<(), Fail> {
        self.bounce_at[i] = None;
        let seed = self.rng.next_u64();
        self.hosts[i]
            .restart(seed)
            .map_err(|e| (FailureKind::Unexpected, e))?;
        let node = self.hosts[i].id;
        let last_index = self.hosts[i].durable.last_index();
        self.trace
            .record(self.now, Event::Restart { node, last_index });
        let others = self.hosts.iter().map(|h| (h.id, &h.view));
        Oracle::check_log_matching(node, &self.hosts[i].view, 1, others)?;
        self.observe(i)?;
        self.process(i)
    }
}

/// Draws a Raft configuration: protocol options on or off, and flow-control windows
/// from one entry at a time to the roomy defaults.
fn draw_config(rng: &mut SimRng) -> Config {
    let mut c = Config::new(1);
    c.pre_vote = rng.chance(800);
    c.check_quorum = rng.chance(800);
    c.heartbeat_interval_ticks = rng.range_inclusive(1, 3);
    c.election_timeout_ticks_min = rng.range_inclusive(8, 15);
    c.election_timeout_ticks_max = c.election_timeout_ticks_min + rng.range_inclusive(4, 15);
    // One encoded command is 33 bytes, plus the per-entry overhead.
    let entry = 33 + aegis_raft::ENTRY_OVERHEAD_BYTES;
    match rng.below(3) {
        0 => {
            c.inflight_msgs_max = 1;
            c.entries_per_msg_max = 1;
            c.msg_bytes_max = entry;
            c.inflight_bytes_max = entry;
            c.uncommitted_bytes_max = entry * 4;
            c.apply_bytes_max = 1;
            c.pending_reads_max = 2;
        }
        1 => {
            c.inflight_msgs_max = 4;
            c.entries_per_msg_max = 8;
            c.msg_bytes_max = entry * 3;
            c.inflight_bytes_max = entry * 10;
            c.uncommitted_bytes_max = entry * 32;
            c.apply_bytes_max = entry * 2;
            c.pending_reads_max = 8;
        }
        _ => {}
    }
    if c.check_quorum && rng.chance(300) {
        c.read_only_option = ReadOnlyOption::LeaseBased;
        c.lease_drift_ticks = rng.range_inclusive(1, c.election_timeout_ticks_min / 2);
    }
    c.quiesce = rng.chance(500);
    c.quiesce_after_idle_ticks = rng.range_inclusive(c.heartbeat_interval_ticks.max(2), 12);
    assert_eq!(c.validate(), Ok(()), "drawn configuration {c:?}");
    c
}

/// Gives each run its own emphasis: every fault rate is switched off, kept, or tripled.
fn vary_faults(base: &FaultOptions, rng: &mut SimRng) -> FaultOptions {
    let mut scale = |rate: u32| {
        let factor = [0, 1, 1, 3][rng.index(4)];
        (rate * factor).min(1000)
    };
    let mut f = FaultOptions {
        crash_per_mille: scale(base.crash_per_mille),
        outage_per_mille: scale(base.outage_per_mille),
        restart_per_mille: base.restart_per_mille,
        bounce_per_mille: scale(base.bounce_per_mille),
        bridge_per_mille: scale(base.bridge_per_mille),
        campaign_bounce_per_mille: scale(base.campaign_bounce_per_mille),
        stale_leader_per_mille: scale(base.stale_leader_per_mille),
        pause_per_mille: scale(base.pause_per_mille),
        partition_per_mille: scale(base.partition_per_mille),
        one_way_per_mille: scale(base.one_way_per_mille),
        heal_per_mille: base.heal_per_mille,
        net_flip_per_mille: scale(base.net_flip_per_mille),
        transfer_per_mille: scale(base.transfer_per_mille),
        membership_per_mille: scale(base.membership_per_mille),
    };
    if f.restart_per_mille == 0 {
        f.crash_per_mille = 0;
        f.outage_per_mille = 0;
    }
    f
}

/// Draws how hostile the network is, around the configured settings.
fn vary_net(base: &NetConfig, rng: &mut SimRng) -> NetConfig {
    let mut scale = |value: u32| (value * [0, 1, 1, 5][rng.index(4)]).min(500);
    NetConfig {
        drop_per_mille: scale(base.drop_per_mille),
        duplicate_per_mille: scale(base.duplicate_per_mille),
        reorder_per_mille: scale(base.reorder_per_mille),
        delay_ticks_max: base.delay_ticks_max.max(base.delay_ticks_min) + rng.below(3),
        ..base.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawn_configurations_are_valid_and_varied() {
        let mut rng = SimRng::new(11);
        let (mut tiny, mut lease, mut no_pre_vote) = (0, 0, 0);
        for _ in 0..300 {
            let c = draw_config(&mut rng);
            tiny += usize::from(c.inflight_msgs_max == 1);
            lease += usize::from(c.read_only_option == ReadOnlyOption::LeaseBased);
            no_pre_vote += usize::from(!c.pre_vote);
        }
        assert!(
            tiny > 50 && lease > 30 && no_pre_vote > 30,
            "{tiny} {lease} {no_pre_vote}"
        );
    }

    #[test]
    fn varied_faults_keep_restarts_and_stay_valid() {
        let mut rng = SimRng::new(5);
        let base = FaultOptions::default();
        let mut switched_off = 0;
        for _ in 0..100 {
            let f = vary_faults(&base, &mut rng);
            assert_eq!(f.restart_per_mille, base.restart_per_mille);
            switched_off += usize::from(f.crash_per_mille == 0);
            let net = vary_net(&NetConfig::default(), &mut rng);
            assert!(net.validate().is_ok());
        }
        assert!(switched_off > 10 && switched_off < 50, "{switched_off}");
    }

    #[test]
    fn invalid_options_are_reported_as_a_failure_with_the_seed() {
        let options = Options {
            nodes: 0,
            ..Options::default()
        };
        let failure = Simulation::run(9, &options).unwrap_err();
        assert_eq!(failure.seed, 9);
        assert_eq!(failure.kind, FailureKind::Unexpected);
    }
}
