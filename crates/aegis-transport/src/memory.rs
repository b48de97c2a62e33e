//! An in-process network of [`MemoryTransport`]s with seeded fault injection.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::mpsc;

use crate::{Envelope, Error, Incoming, NodeId, Responder, Transport};

const PER_MILLION: u32 = 1_000_000;

/// Which faults the network injects, as rates per million messages.
///
/// Each message on a link rolls independently, in this order: drop, delay, duplicate
/// (one-way messages only: a request has a single responder), reorder. Rolls come from a
/// per-link generator seeded from the network seed and the link's endpoints, so one seed
/// and one sequence of sends replay the same faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultConfig {
    /// Messages and requests silently lost, per million.
    pub drop_per_million: u32,
    /// Messages and requests delivered late, per million.
    pub delay_per_million: u32,
    /// Shortest injected delay.
    pub delay_min: Duration,
    /// Longest injected delay.
    pub delay_max: Duration,
    /// One-way messages delivered twice, per million.
    pub duplicate_per_million: u32,
    /// Messages held back and delivered after the next one on the same link, per million.
    pub reorder_per_million: u32,
    /// How long a held-back message waits for a successor before it is released anyway.
    pub reorder_hold_max: Duration,
}

impl FaultConfig {
    /// A perfect network: nothing is dropped, delayed, duplicated or reordered.
    pub const NONE: FaultConfig = FaultConfig {
        drop_per_million: 0,
        delay_per_million: 0,
        delay_min: Duration::ZERO,
        delay_max: Duration::ZERO,
        duplicate_per_million: 0,
        reorder_per_million: 0,
        reorder_hold_max: Duration::from_millis(10),
    };

    /// Checks rates and ranges.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first bad field.
    pub fn validate(&self) -> Result<(), Error> {
        let rates = [
            ("drop_per_million", self.drop_per_million),
            ("delay_per_million", self.delay_per_million),
            ("duplicate_per_million", self.duplicate_per_million),
            ("reorder_per_million", self.reorder_per_million),
        ];
        for (field, rate) in rates {
            if rate > PER_MILLION {
                return Err(invalid(field, format!("{rate} is above {PER_MILLION}")));
            }
        }
        if self.delay_min > self.delay_max {
            return Err(invalid("delay_min", "must not exceed delay_max".into()));
        }
        if self.reorder_hold_max.is_zero() {
            return Err(invalid("reorder_hold_max", "must be positive".into()));
        }
        Ok(())
    }
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self::NONE
    }
}

/// Limits and faults of a [`MemoryNetwork`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryConfig {
    /// Incoming messages and requests buffered per node before links wait.
    pub inbox_max: usize,
    /// Outgoing messages buffered per (source, target) link before `send` waits.
    pub peer_queue_max: usize,
    /// How long `request` waits for a response.
    pub request_timeout: Duration,
    /// Faults injected on every link.
    pub faults: FaultConfig,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            inbox_max: 1024,
            peer_queue_max: 256,
            request_timeout: Duration::from_secs(5),
            faults: FaultConfig::NONE,
        }
    }
}

impl MemoryConfig {
    /// Checks every limit.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first bad field.
    pub fn validate(&self) -> Result<(), Error> {
        if self.inbox_max == 0 {
            return Err(invalid("inbox_max", "must be positive".into()));
        }
        if self.peer_queue_max == 0 {
            return Err(invalid("peer_queue_max", "must be positive".into()));
        }
        if self.request_timeout.is_zero() {
            return Err(invalid("request_timeout", "must be positive".into()));
        }
        self.faults.validate()
    }
}

fn invalid(field: &'static str, reason: String) -> Error {
    Error::InvalidConfig { field, reason }
}

/// What happened to the traffic so far, counted over the whole network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Messages and requests handed to a receiver's inbox (duplicates counted twice).
    pub delivered: u64,
    /// Lost to the drop fault, a partition, or a receiver that was down.
    pub dropped: u64,
    /// Delayed by the delay fault.
    pub delayed: u64,
    /// Extra copies made by the duplicate fault.
    pub duplicated: u64,
    /// Held back by the reorder fault.
    pub reordered: u64,
}

struct State {
    faults: FaultConfig,
    /// Every node that ever joined; `None` while it is down.
    inboxes: HashMap<NodeId, Option<mpsc::Sender<Incoming>>>,
    /// Directed (source, target) pairs that cannot talk.
    blocked: HashSet<(NodeId, NodeId)>,
    stats: NetworkStats,
}

struct Shared {
    config: MemoryConfig,
    seed: u64,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves only counters half-updated; keep going.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// An in-process network. Clone it freely: clones share the same nodes and faults.
///
/// ```
/// use aegis_transport::{Channel, Envelope, Incoming, MemoryConfig, MemoryNetwork, Transport};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let network = MemoryNetwork::new(MemoryConfig::default(), 7)?;
/// let a = network.join(1)?;
/// let b = network.join(2)?;
/// a.send(2, Envelope::new(Channel::Raft, 1, &b"vote"[..])).await?;
/// let incoming = b.recv().await?;
/// assert_eq!(incoming.source(), 1);
/// assert_eq!(&incoming.envelope().payload[..], b"vote");
/// # Ok::<(), aegis_transport::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct MemoryNetwork {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for MemoryNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryNetwork")
            .field("seed", &self.shared.seed)
            .finish_non_exhaustive()
    }
}

impl MemoryNetwork {
    /// Creates an empty network whose faults are driven by `seed`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `config` does not validate.
    pub fn new(config: MemoryConfig, seed: u64) -> Result<Self, Error> {
        config.validate()?;
        let state = State {
            faults: config.faults,
            inboxes: HashMap::new(),
            blocked: HashSet::new(),
            stats: NetworkStats::default(),
        };
        Ok(Self {
            shared: Arc::new(Shared {
                config,
                seed,
                state: Mutex::new(state),
            }),
        })
    }

    /// The seed the faults are drawn from.
    #[must_use]
    pub fn seed(&self) -> u64 {
        self.shared.seed
    }

    /// Adds node `id` (or brings a node that left back up) and returns its transport.
    ///
    /// # Errors
    /// [`Error::DuplicateNode`] while another transport with this id is up.
    pub fn join(&self, id: NodeId) -> Result<MemoryTransport, Error> {
        let (tx, rx) = mpsc::channel(self.shared.config.inbox_max);
        let mut state = self.shared.lock();
        let slot = state.inboxes.entry(id).or_insert(None);
        if slot.is_some() {
            return Err(Error::DuplicateNode { node: id });
        }
        *slot = Some(tx);
        drop(state);
        Ok(MemoryTransport {
            id,
            network: self.clone(),
            links: Mutex::new(HashMap::new()),
            inbox: tokio::sync::Mutex::new(rx),
            closed: AtomicBool::new(false),
            runtime: tokio::runtime::Handle::try_current().ok(),
        })
    }

    /// Replaces the injected faults; links pick the change up with their next message.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `faults` does not validate.
    pub fn set_faults(&self, faults: FaultConfig) -> Result<(), Error> {
        faults.validate()?;
        self.shared.lock().faults = faults;
        Ok(())
    }

    /// Cuts every link between a node of `side_a` and a node of `side_b`, both ways.
    pub fn partition(&self, side_a: &[NodeId], side_b: &[NodeId]) {
        let mut state = self.shared.lock();
        for &a in side_a {
            for &b in side_b {
                state.blocked.insert((a, b));
                state.blocked.insert((b, a));
            }
        }
    }

    /// Cuts the single direction `source -> target`.
    pub fn block(&self, source: NodeId, target: NodeId) {
        self.shared.lock().blocked.insert((source, target));
    }

    /// Cuts `node` off from every other node that has joined so far.
    pub fn isolate(&self, node: NodeId) {
        let mut state = self.shared.lock();
        let others: Vec<NodeId> = state
            .inboxes
            .keys()
            .copied()
            .filter(|&n| n != node)
            .collect();
        for other in others {
            state.blocked.insert((node, other));
            state.blocked.insert((other, node));
        }
    }

    /// Restores every cut link.
    pub fn heal(&self) {
        self.shared.lock().blocked.clear();
    }

    /// Whether `source -> target` is currently cut.
    #[must_use]
    pub fn is_blocked(&self, source: NodeId, target: NodeId) -> bool {
        self.shared.lock().blocked.contains(&(source, target))
    }

    /// Traffic counters so far.
    #[must_use]
    pub fn stats(&self) -> NetworkStats {
        self.shared.lock().stats
    }
}

/// One node's endpoint on a [`MemoryNetwork`].
pub struct MemoryTransport {
    id: NodeId,
    network: MemoryNetwork,
    links: Mutex<HashMap<NodeId, mpsc::Sender<LinkItem>>>,
    inbox: tokio::sync::Mutex<mpsc::Receiver<Incoming>>,
    closed: AtomicBool,
    /// The runtime the transport was made on, for links opened from outside any.
    runtime: Option<tokio::runtime::Handle>,
}

impl std::fmt::Debug for MemoryTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTransport")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

struct LinkItem {
    source: NodeId,
    envelope: Envelope,
    responder: Option<Responder>,
}

impl LinkItem {
    fn into_incoming(self) -> Incoming {
        let LinkItem {
            source,
            envelope,
            responder,
        } = self;
        match responder {
            Some(responder) => Incoming::Request {
                source,
                envelope,
                responder,
            },
            None => Incoming::Message { source, envelope },
        }
    }
}

impl MemoryTransport {
    /// Takes this node down: later traffic to it is lost, and `recv` reports
    /// [`Error::Shutdown`]. The id can join again afterwards.
    pub fn shutdown(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.links
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        let mut state = self.network.shared.lock();
        if let Some(slot) = state.inboxes.get_mut(&self.id) {
            *slot = None;
        }
    }

    fn link(&self, target: NodeId) -> Result<mpsc::Sender<LinkItem>, Error> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Shutdown);
        }
        if !self.network.shared.lock().inboxes.contains_key(&target) {
            return Err(Error::PeerUnknown { peer: target });
        }
        let mut links = self
            .links
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(link) = links.get(&target) {
            return Ok(link.clone());
        }
        let runtime = tokio::runtime::Handle::try_current()
            .ok()
            .or_else(|| self.runtime.clone())
            .ok_or_else(|| Error::Unreachable {
                peer: target,
                reason: "no Tokio runtime to carry the link".to_owned(),
            })?;
        let (tx, rx) = mpsc::channel(self.network.shared.config.peer_queue_max);
        let shared = Arc::clone(&self.network.shared);
        runtime.spawn(run_link(shared, self.id, target, rx));
        links.insert(target, tx.clone());
        Ok(tx)
    }

    async fn enqueue(&self, target: NodeId, item: LinkItem) -> Result<(), Error> {
        let link = self.link(target)?;
        link.send(item).await.map_err(|_| Error::Shutdown)
    }
}

impl Drop for MemoryTransport {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[async_trait]
impl Transport for MemoryTransport {
    fn local_id(&self) -> NodeId {
        self.id
    }

    async fn send(&self, target: NodeId, envelope: Envelope) -> Result<(), Error> {
        self.enqueue(
            target,
            LinkItem {
                source: self.id,
                envelope,
                responder: None,
            },
        )
        .await
    }

    fn try_send(&self, target: NodeId, envelope: Envelope) -> Result<(), Error> {
        let item = LinkItem {
            source: self.id,
            envelope,
            responder: None,
        };
        self.link(target)?.try_send(item).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Error::QueueFull { peer: target },
            mpsc::error::TrySendError::Closed(_) => Error::Shutdown,
        })
    }

    async fn request(&self, target: NodeId, envelope: Envelope) -> Result<Envelope, Error> {
        let (responder, pending) = Responder::pair();
        let item = LinkItem {
            source: self.id,
            envelope,
            responder: Some(responder),
        };
        self.enqueue(target, item).await?;
        let after = self.network.shared.config.request_timeout;
        match tokio::time::timeout(after, pending.wait()).await {
            Ok(Some(response)) => Ok(response),
            Ok(None) => Err(Error::NoResponse { peer: target }),
            Err(_elapsed) => Err(Error::TimedOut {
                peer: target,
                after,
            }),
        }
    }

    async fn recv(&self) -> Result<Incoming, Error> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Shutdown);
        }
        let mut inbox = self.inbox.lock().await;
        inbox.recv().await.ok_or(Error::Shutdown)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Drop,
    Delay(Duration),
    Duplicate,
    Reorder,
    Deliver,
}

fn roll(rng: &mut ChaCha8Rng, per_million: u32) -> bool {
    per_million > 0 && rng.random_range(0..PER_MILLION) < per_million
}

/// Decides what happens to one item. Every roll is drawn whether or not an earlier one
/// fired, so a fault's decision for message n does not shift the draws of later messages.
fn decide(rng: &mut ChaCha8Rng, faults: &FaultConfig, is_request: bool) -> Fate {
    let dropped = roll(rng, faults.drop_per_million);
    let delayed = roll(rng, faults.delay_per_million);
    let span = faults.delay_max.saturating_sub(faults.delay_min);
    let span_nanos = u64::try_from(span.as_nanos()).unwrap_or(u64::MAX);
    let extra = Duration::from_nanos(rng.random_range(0..=span_nanos));
    let duplicated = roll(rng, faults.duplicate_per_million);
    let reordered = roll(rng, faults.reorder_per_million);
    if dropped {
        Fate::Drop
    } else if delayed {
        Fate::Delay(faults.delay_min + extra)
    } else if duplicated && !is_request {
        Fate::Duplicate
    } else if reordered {
        Fate::Reorder
    } else {
        Fate::Deliver
    }
}

fn link_seed(seed: u64, source: NodeId, target: NodeId) -> u64 {
    // splitmix64 finalizer over the link's endpoints, so neighbouring ids get unrelated streams.
    let mut z = seed ^ source.rotate_left(32) ^ target.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

async fn run_link(
    shared: Arc<Shared>,
    source: NodeId,
    target: NodeId,
    mut queue: mpsc::Receiver<LinkItem>,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(link_seed(shared.seed, source, target));
    let mut held: Option<LinkItem> = None;
    loop {
        let next = match &held {
            None => queue.recv().await,
            Some(_) => {
                let hold = shared.lock().faults.reorder_hold_max;
                match tokio::time::timeout(hold, queue.recv()).await {
                    Ok(next) => next,
                    Err(_elapsed) => {
                        deliver(&shared, target, held.take().expect("held is Some")).await;
                        continue;
                    }
                }
            }
        };
        let Some(item) = next else { break };
        let fate = {
            let mut state = shared.lock();
            let fate = if state.blocked.contains(&(source, target)) {
                Fate::Drop
            } else {
                decide(&mut rng, &state.faults, item.responder.is_some())
            };
            count_fate(&mut state.stats, fate);
            fate
        };
        match fate {
            Fate::Drop => {}
            Fate::Delay(after) => {
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    deliver(&shared, target, item).await;
                });
            }
            Fate::Duplicate => {
                let copy = LinkItem {
                    source,
                    envelope: item.envelope.clone(),
                    responder: None,
                };
                deliver(&shared, target, copy).await;
                deliver(&shared, target, item).await;
            }
            Fate::Reorder if held.is_none() => held = Some(item),
            Fate::Reorder | Fate::Deliver => {
                deliver(&shared, target, item).await;
                if let Some(earlier) = held.take() {
                    deliver(&shared, target, earlier).await;
                }
            }
        }
    }
    if let Some(earlier) = held.take() {
        deliver(&shared, target, earlier).await;
    }
}

fn count_fate(stats: &mut NetworkStats, fate: Fate) {
    match fate {
        Fate::Drop => stats.dropped += 1,
        Fate::Delay(_) => stats.delayed += 1,
        Fate::Duplicate => stats.duplicated += 1,
        Fate::Reorder => stats.reordered += 1,
        Fate::Deliver => {}
    }
}

async fn deliver(shared: &Shared, target: NodeId, item: LinkItem) {
    let inbox = shared.lock().inboxes.get(&target).cloned().flatten();
    let delivered = match inbox {
        Some(inbox) => inbox.send(item.into_incoming()).await.is_ok(),
        None => false,
    };
    let mut state = shared.lock();
    if delivered {
        state.stats.delivered += 1;
    } else {
        state.stats.dropped += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_replay_from_the_seed() {
        let faults = FaultConfig {
            drop_per_million: 200_000,
            delay_per_million: 200_000,
            delay_min: Duration::from_millis(1),
            delay_max: Duration::from_millis(5),
            duplicate_per_million: 200_000,
            reorder_per_million: 200_000,
            reorder_hold_max: Duration::from_millis(1),
        };
        let run = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(link_seed(seed, 1, 2));
            (0..200)
                .map(|_| decide(&mut rng, &faults, false))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
        let fates = run(42);
        assert!(fates.contains(&Fate::Drop));
        assert!(fates.contains(&Fate::Duplicate));
        assert!(fates.contains(&Fate::Reorder));
        assert!(fates.iter().any(
            |f| matches!(f, Fate::Delay(d) if *d >= faults.delay_min && *d <= faults.delay_max)
        ));
    }

    #[test]
    fn requests_are_never_duplicated() {
        let faults = FaultConfig {
            duplicate_per_million: PER_MILLION,
            ..FaultConfig::NONE
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..100 {
            assert_eq!(decide(&mut rng, &faults, true), Fate::Deliver);
            assert_eq!(decide(&mut rng, &faults, false), Fate::Duplicate);
        }
    }

    #[test]
    fn link_seeds_differ_by_direction() {
        assert_ne!(link_seed(9, 1, 2), link_seed(9, 2, 1));
        assert_ne!(link_seed(9, 1, 2), link_seed(10, 1, 2));
    }

    #[test]
    fn validate_rejects_bad_fields() {
        let bad = FaultConfig {
            drop_per_million: PER_MILLION + 1,
            ..FaultConfig::NONE
        };
        assert!(matches!(
            bad.validate(),
            Err(Error::InvalidConfig {
                field: "drop_per_million",
                ..
            })
        ));
        let bad = FaultConfig {
            delay_min: Duration::from_secs(2),
            delay_max: Duration::from_secs(1),
            ..FaultConfig::NONE
        };
        assert!(matches!(
            bad.validate(),
            Err(Error::InvalidConfig {
                field: "delay_min",
                ..
            })
        ));
        let bad = MemoryConfig {
            inbox_max: 0,
            ..MemoryConfig::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(Error::InvalidConfig {
                field: "inbox_max",
                ..
            })
        ));
    }
}
