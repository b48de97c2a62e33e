use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use aegis_transport::{Envelope, Error, Incoming, NodeId, Transport};
use async_trait::async_trait;
use bytes::Bytes;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Connection, RecvStream, SendStream, VarInt};
use rustls::pki_types::CertificateDer;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::certs::node_server_name;
use crate::requests::{RequestChannel, serve_requests};
use crate::tls::{IdentityCheck, TlsIdentity, client_crypto, server_crypto};
use crate::wire::{
    CODE_BAD_HELLO, CODE_FRAME_TOO_LARGE, CODE_MALFORMED, CODE_NO_RESPONSE, CODE_SHUTDOWN,
    FRAME_HEADER_LEN, FrameError, FrameSplitter, append_frame, encode_frame, hello_frame,
    parse_hello, read_frame,
};
use crate::{QuicConfig, SetupError};

/// Unidirectional streams a peer may hold open: the hello stream plus replacements.
const UNI_STREAMS_MAX: u32 = 16;
/// A hello frame body is 13 bytes; anything longer is not a hello.
const HELLO_FRAME_MAX: u32 = 64;
/// Most bytes written to a stream as one piece; see [`encode_batch`].
const PIECE_LEN: usize = 64 * 1024;
/// Most bytes taken from a stream at once, so a batch of small frames costs few stream
/// reads.
pub(crate) const READ_CHUNK: usize = 64 * 1024;

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A [`Transport`] over QUIC with mutual TLS.
///
/// Each node dials each peer it talks to and keeps that connection: requests share one
/// bidirectional stream on it, each with an id, and one-way messages are batched onto one
/// unidirectional stream. Connections a peer dials in are only served, never used to send. A lost
/// connection is redialed on next use; failed dials back off exponentially, and while a
/// peer backs off requests fail at once with [`Error::Unreachable`] and queued one-way
/// messages are dropped (one-way delivery is best effort).
///
/// Must be created inside a Tokio runtime. Dropping it closes everything at once;
/// [`shutdown`](Self::shutdown) closes gracefully.
pub struct QuicTransport {
    inner: Arc<Inner>,
}

struct Inner {
    dialer: Arc<Dialer>,
    /// Looked up on every send and request: an ordered map of a cluster's few peers
    /// needs no hashing.
    peers: Mutex<BTreeMap<NodeId, Arc<Peer>>>,
    inbox: Inbox,
    shutdown: watch::Sender<bool>,
    closed: AtomicBool,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// Most incoming items `recv` takes out of the inbox channel at once.
const INBOX_BATCH: usize = 64;

/// The receiving end of the inbox. `recv` takes items out of the channel in batches and
/// hands them out from a plain list: the channel's bookkeeping, and the lock that lets
/// one caller wait on it, are then paid once per batch rather than once per item.
struct Inbox {
    /// Taken out of the channel, not yet returned by `recv`.
    taken: Mutex<VecDeque<Incoming>>,
    /// The channel, with room for a batch taken out of it.
    channel: tokio::sync::Mutex<(mpsc::Receiver<Incoming>, Vec<Incoming>)>,
}

impl Inbox {
    fn new(channel: mpsc::Receiver<Incoming>) -> Inbox {
        Inbox {
            taken: Mutex::new(VecDeque::with_capacity(INBOX_BATCH)),
            channel: tokio::sync::Mutex::new((channel, Vec::with_capacity(INBOX_BATCH))),
        }
    }

    fn take_one(&self) -> Option<Incoming> {
        lock(&self.taken).pop_front()
    }

    /// The next item if one has arrived, without waiting.
    fn take_ready(
        &self,
        (channel, batch): &mut (mpsc::Receiver<Incoming>, Vec<Incoming>),
    ) -> Option<Incoming> {
        if let Some(next) = self.take_one() {
            return Some(next);
        }
        let mut cx = Context::from_waker(Waker::noop());
        match channel.poll_recv_many(&mut cx, batch, INBOX_BATCH) {
            Poll::Ready(taken) if taken > 0 => self.take_batch(batch),
            _ => None,
        }
    }

    /// Waits for the next item; `None` once every sender is gone.
    async fn next(
        &self,
        (channel, batch): &mut (mpsc::Receiver<Incoming>, Vec<Incoming>),
    ) -> Option<Incoming> {
        if let Some(next) = self.take_one() {
            return Some(next);
        }
        if channel.recv_many(batch, INBOX_BATCH).await == 0 {
            return None;
        }
        self.take_batch(batch)
    }

    /// The first item of `batch`; the rest wait in `taken`.
    fn take_batch(&self, batch: &mut Vec<Incoming>) -> Option<Incoming> {
        let mut batch = batch.drain(..);
        let first = batch.next();
        lock(&self.taken).extend(batch);
        first
    }
}

/// What outgoing traffic needs, shared by callers and per-peer writer tasks.
struct Dialer {
    config: QuicConfig,
    endpoint: quinn::Endpoint,
    client_config: quinn::ClientConfig,
}

/// What serving incoming connections needs.
pub(crate) struct Serve {
    pub(crate) frame_size_max: u32,
    pub(crate) requests_in_flight_max: usize,
    hello_timeout: std::time::Duration,
    pub(crate) inbox: mpsc::Sender<Incoming>,
    check: IdentityCheck,
}

struct Peer {
    id: NodeId,
    addr: Mutex<SocketAddr>,
    conn: Mutex<Option<Connection>>,
    /// The stream the hello went out on, left for the one-way writer to continue.
    hello_stream: Mutex<Option<(usize, SendStream)>>,
    dial: tokio::sync::Mutex<DialState>,
    oneway: mpsc::Sender<Envelope>,
    /// The channel requests to this peer go out on, over the current connection.
    requests: Mutex<Option<Arc<RequestChannel>>>,
    /// Held while a request channel is opened, so only one is.
    requests_opening: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct DialState {
    failures: u32,
    retry_at: Option<Instant>,
}

impl std::fmt::Debug for QuicTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicTransport")
            .field("node_id", &self.inner.dialer.config.node_id)
            .field("local_addr", &self.local_addr())
            .finish_non_exhaustive()
    }
}

fn transport_config(config: &QuicConfig) -> Result<Arc<quinn::TransportConfig>, SetupError> {
    let idle = quinn::IdleTimeout::try_from(config.idle_timeout).map_err(|e| {
        SetupError::InvalidConfig {
            field: "idle_timeout",
            reason: e.to_string(),
        }
    })?;
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(VarInt::from_u32(config.concurrent_streams_max))
        .max_concurrent_uni_streams(VarInt::from_u32(UNI_STREAMS_MAX))
        .keep_alive_interval(Some(config.keep_alive_interval))
        .max_idle_timeout(Some(idle));
    let mut discovery = quinn::MtuDiscoveryConfig::default();
    discovery.upper_bound(config.udp_payload_max);
    transport
        .mtu_discovery_config(Some(discovery))
        .enable_segmentation_offload(segmentation_offload_fits(config.udp_payload_max));
    Ok(Arc::new(transport))
}

/// Whether quinn's segmentation offload (GSO) can be used with packets of up to
/// `udp_payload_max` bytes.
///
/// With offload on, quinn hands the kernel up to ten packets of one size in a single send,
/// and Linux refuses any single UDP send above 65,507 bytes (the IPv4 limit): with larger
/// packets, whole batches would fail and be lost, and loss halves the congestion window.
/// Large packets already cut the per-packet cost that offload exists to save.
fn segmentation_offload_fits(udp_payload_max: u16) -> bool {
    const SEGMENTS_PER_SEND: u32 = 10;
    const UDP_SEND_MAX: u32 = 65_507;
    u32::from(udp_payload_max) * SEGMENTS_PER_SEND <= UDP_SEND_MAX
}

/// The endpoint: the socket bound to `config.listen`, accepting datagrams up to
/// `config.udp_payload_max` and serving with `server_config`.
fn bind_endpoint(
    config: &QuicConfig,
    server_config: quinn::ServerConfig,
) -> Result<quinn::Endpoint, SetupError> {
    let mut endpoint_config = quinn::EndpointConfig::default();
    endpoint_config
        .max_udp_payload_size(config.udp_payload_max)
        .map_err(|e| SetupError::InvalidConfig {
            field: "udp_payload_max",
            reason: e.to_string(),
        })?;
    let bind_error = |source| SetupError::Bind {
        addr: config.listen,
        source,
    };
    let runtime = quinn::default_runtime()
        .ok_or_else(|| bind_error(std::io::Error::other("no Tokio runtime is running")))?;
    let socket = std::net::UdpSocket::bind(config.listen).map_err(bind_error)?;
    quinn::Endpoint::new(endpoint_config, Some(server_config), socket, runtime).map_err(bind_error)
}

fn tls_error(e: impl std::fmt::Display) -> SetupError {
    SetupError::Tls {
        reason: e.to_string(),
    }
}

impl QuicTransport {
    /// Binds the endpoint, starts serving, and registers `config.peers`.
    ///
    /// # Errors
    /// [`SetupError::InvalidConfig`] for a bad configuration, [`SetupError::Tls`] for an
    /// unusable identity, [`SetupError::Bind`] when the socket cannot be bound (or no
    /// Tokio runtime is running).
    pub fn bind(config: QuicConfig, identity: &TlsIdentity) -> Result<Self, SetupError> {
        config.validate()?;
        let transport = transport_config(&config)?;
        let server_tls = QuicServerConfig::try_from(server_crypto(identity)?).map_err(tls_error)?;
        let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(server_tls));
        server_config.transport_config(Arc::clone(&transport));
        let client_tls = QuicClientConfig::try_from(client_crypto(identity)?).map_err(tls_error)?;
        let mut client_config = quinn::ClientConfig::new(Arc::new(client_tls));
        client_config.transport_config(transport);
        let endpoint = bind_endpoint(&config, server_config)?;

        let (inbox_tx, inbox_rx) = mpsc::channel(config.inbox_max);
        let serve = Arc::new(Serve {
            frame_size_max: config.frame_size_max,
            requests_in_flight_max: config.requests_in_flight_max,
            hello_timeout: config.hello_timeout,
            inbox: inbox_tx,
            check: IdentityCheck::new(identity)?,
        });
        let accept = tokio::spawn(run_accept(endpoint.clone(), serve));
        let peers = config.peers.clone();
        let transport = Self {
            inner: Arc::new(Inner {
                dialer: Arc::new(Dialer {
                    config,
                    endpoint,
                    client_config,
                }),
                peers: Mutex::new(BTreeMap::new()),
                inbox: Inbox::new(inbox_rx),
                shutdown: watch::Sender::new(false),
                closed: AtomicBool::new(false),
                tasks: Mutex::new(vec![accept]),
            }),
        };
        for (id, addr) in peers {
            transport.set_peer(id, addr);
        }
        Ok(transport)
    }

    /// The largest UDP payload currently sent on this node's connection to `peer`, or
    /// `None` while there is no such connection. It starts at 1200 bytes and grows as
    /// path MTU discovery finds larger packets getting through, up to the smaller of both
    /// nodes' [`udp_payload_max`](QuicConfig::udp_payload_max).
    #[must_use]
    pub fn udp_payload_size(&self, peer: NodeId) -> Option<u16> {
        let peer = lock(&self.inner.peers).get(&peer).cloned()?;
        peer.cached().map(|conn| conn.stats().path.current_mtu)
    }

    /// The address the endpoint is bound to (with the OS-chosen port).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.inner
            .dialer
            .endpoint
            .local_addr()
            .unwrap_or(self.inner.dialer.config.listen)
    }

    /// Adds a peer or changes its address. A changed address is used from the next dial.
    ///
    /// # Panics
    /// When `id` is this node's own id.
    pub fn set_peer(&self, id: NodeId, addr: SocketAddr) {
        assert_ne!(
            id, self.inner.dialer.config.node_id,
            "a node is not its own peer"
        );
        let mut peers = lock(&self.inner.peers);
        if let Some(peer) = peers.get(&id) {
            *lock(&peer.addr) = addr;
            return;
        }
        let (tx, rx) = mpsc::channel(self.inner.dialer.config.peer_queue_max);
        let peer = Arc::new(Peer {
            id,
            addr: Mutex::new(addr),
            conn: Mutex::new(None),
            hello_stream: Mutex::new(None),
            dial: tokio::sync::Mutex::new(DialState::default()),
            oneway: tx,
            requests: Mutex::new(None),
            requests_opening: tokio::sync::Mutex::new(()),
        });
        let writer = tokio::spawn(run_writer(
            Arc::clone(&self.inner.dialer),
            Arc::clone(&peer),
            rx,
        ));
        lock(&self.inner.tasks).push(writer);
        peers.insert(id, peer);
    }

    /// Closes every connection, waits up to `shutdown_timeout` for peers to acknowledge,
    /// and stops all background tasks. Later calls report [`Error::Shutdown`].
    pub async fn shutdown(&self) {
        self.inner.close();
        let idle = self.inner.dialer.endpoint.wait_idle();
        let _ = tokio::time::timeout(self.inner.dialer.config.shutdown_timeout, idle).await;
        self.inner.abort_tasks();
    }

    fn peer(&self, id: NodeId) -> Result<Arc<Peer>, Error> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Shutdown);
        }
        lock(&self.inner.peers)
            .get(&id)
            .cloned()
            .ok_or(Error::PeerUnknown { peer: id })
    }
}

impl Inner {
    fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.shutdown.send_replace(true);
        self.dialer
            .endpoint
            .close(VarInt::from_u32(CODE_SHUTDOWN), b"shutdown");
    }

    fn abort_tasks(&self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
        lock(&self.peers).clear();
    }
}

impl Drop for QuicTransport {
    fn drop(&mut self) {
        self.inner.close();
        self.inner.abort_tasks();
    }
}

/// The transport's operations as plain `async fn`s. The [`Transport`] trait boxes the
/// future of each call so it can be used as a trait object; code that holds a
/// `QuicTransport` itself calls these and skips that allocation per message.
impl QuicTransport {
    /// See [`Transport::send`].
    ///
    /// # Errors
    /// As [`Transport::send`].
    pub async fn send(&self, target: NodeId, envelope: Envelope) -> Result<(), Error> {
        let peer = self.peer(target)?;
        // The peer's writer encodes the envelope straight into its batch.
        check_fits(&envelope, self.inner.dialer.config.frame_size_max)?;
        match peer.oneway.try_send(envelope) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(envelope)) => peer
                .oneway
                .send(envelope)
                .await
                .map_err(|_| Error::Shutdown),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Error::Shutdown),
        }
    }

    /// See [`Transport::try_send`].
    ///
    /// # Errors
    /// As [`Transport::try_send`].
    pub fn try_send(&self, target: NodeId, envelope: Envelope) -> Result<(), Error> {
        let peer = self.peer(target)?;
        check_fits(&envelope, self.inner.dialer.config.frame_size_max)?;
        peer.oneway.try_send(envelope).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Error::QueueFull { peer: target },
            mpsc::error::TrySendError::Closed(_) => Error::Shutdown,
        })
    }

    /// See [`Transport::request`].
    ///
    /// # Errors
    /// As [`Transport::request`].
    pub async fn request(&self, target: NodeId, envelope: Envelope) -> Result<Envelope, Error> {
        let config = &self.inner.dialer.config;
        check_fits(&envelope, config.frame_size_max)?;
        let after = config.request_timeout;
        // The clock is read only on the slow paths: opening a channel, or a full queue.
        let deadline = || Instant::now() + after;
        // Usually the peer's channel is open: it is looked up without holding on to the
        // peer.
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Shutdown);
        }
        let cached = {
            let peers = lock(&self.inner.peers);
            let peer = peers
                .get(&target)
                .ok_or(Error::PeerUnknown { peer: target })?;
            lock(&peer.requests).clone()
        };
        let (envelope, attempts) = match cached {
            Some(channel) => match channel.request(envelope, deadline).await {
                Ok(reply) => return reply,
                Err(unsent) => (unsent, 1),
            },
            None => (envelope, 2),
        };
        // Boxed: opening a channel is rare, and its future large.
        Box::pin(self.request_on_new_channel(target, envelope, attempts)).await
    }

    /// Sends a request on a newly opened channel. A channel that failed just now hands
    /// the request back unsent: it is tried on up to `attempts` fresh channels (over a
    /// fresh connection if the last one is gone too).
    async fn request_on_new_channel(
        &self,
        target: NodeId,
        mut envelope: Envelope,
        attempts: usize,
    ) -> Result<Envelope, Error> {
        let peer = self.peer(target)?;
        let dialer = &self.inner.dialer;
        let after = dialer.config.request_timeout;
        let deadline = || Instant::now() + after;
        for _ in 0..attempts {
            let channel = tokio::time::timeout_at(deadline().into(), peer.request_channel(dialer))
                .await
                .map_err(|_| Error::TimedOut {
                    peer: target,
                    after,
                })??;
            match channel.request(envelope, deadline).await {
                Ok(reply) => return reply,
                Err(unsent) => envelope = unsent,
            }
        }
        Err(Error::Unreachable {
            peer: target,
            reason: "the request streams kept failing".to_owned(),
        })
    }

    /// See [`Transport::recv`].
    ///
    /// # Errors
    /// As [`Transport::recv`].
    pub async fn recv(&self) -> Result<Incoming, Error> {
        // Fast path while requests queue up: no shutdown subscription, no waiting lock.
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Shutdown);
        }
        let inbox = &self.inner.inbox;
        if let Some(next) = inbox.take_one() {
            return Ok(next);
        }
        if let Ok(mut channel) = inbox.channel.try_lock()
            && let Some(next) = inbox.take_ready(&mut channel)
        {
            return Ok(next);
        }
        let mut shutdown = self.inner.shutdown.subscribe();
        if *shutdown.borrow_and_update() {
            return Err(Error::Shutdown);
        }
        let mut channel = inbox.channel.lock().await;
        if let Some(next) = inbox.take_ready(&mut channel) {
            return Ok(next);
        }
        tokio::select! {
            next = inbox.next(&mut channel) => next.ok_or(Error::Shutdown),
            _ = shutdown.changed() => Err(Error::Shutdown),
        }
    }
}

#[async_trait]
impl Transport for QuicTransport {
    fn local_id(&self) -> NodeId {
        self.inner.dialer.config.node_id
    }

    async fn send(&self, target: NodeId, envelope: Envelope) -> Result<(), Error> {
        QuicTransport::send(self, target, envelope).await
    }

    fn try_send(&self, target: NodeId, envelope: Envelope) -> Result<(), Error> {
        QuicTransport::try_send(self, target, envelope)
    }

    async fn request(&self, target: NodeId, envelope: Envelope) -> Result<Envelope, Error> {
        QuicTransport::request(self, target, envelope).await
    }

    async fn recv(&self) -> Result<Incoming, Error> {
        QuicTransport::recv(self).await
    }
}

impl Peer {
    fn cached(&self) -> Option<Connection> {
        lock(&self.conn)
            .as_ref()
            .filter(|c| c.close_reason().is_none())
            .cloned()
    }

    /// The live connection to this peer, dialing if there is none and the backoff allows.
    async fn connection(&self, dialer: &Dialer) -> Result<Connection, Error> {
        if let Some(conn) = self.cached() {
            return Ok(conn);
        }
        let mut dial = self.dial.lock().await;
        if let Some(conn) = self.cached() {
            return Ok(conn);
        }
        if let Some(retry_at) = dial.retry_at
            && Instant::now() < retry_at
        {
            let reason = format!("backing off after {} failed dials", dial.failures);
            return Err(Error::Unreachable {
                peer: self.id,
                reason,
            });
        }
        let addr = *lock(&self.addr);
        match dialer.dial(self.id, addr).await {
            Ok((conn, hello)) => {
                debug_assert_eq!(conn.remote_address(), addr);
                *dial = DialState::default();
                *lock(&self.hello_stream) = Some((conn.stable_id(), hello));
                *lock(&self.conn) = Some(conn.clone());
                Ok(conn)
            }
            Err(e) => {
                dial.failures = dial.failures.saturating_add(1);
                dial.retry_at = Some(Instant::now() + dialer.config.backoff(dial.failures));
                Err(e)
            }
        }
    }

    fn cached_channel(&self) -> Option<Arc<RequestChannel>> {
        lock(&self.requests)
            .as_ref()
            .filter(|channel| channel.is_usable())
            .cloned()
    }

    /// The channel for requests to this peer, opened on the live connection (dialing
    /// if need be) unless a usable one exists.
    async fn request_channel(&self, dialer: &Dialer) -> Result<Arc<RequestChannel>, Error> {
        let _opening = self.requests_opening.lock().await;
        if let Some(channel) = self.cached_channel() {
            return Ok(channel);
        }
        let conn = self.connection(dialer).await?;
        let stream = conn
            .open_bi()
            .await
            .map_err(|e| connection_error(self.id, e))?;
        let channel = RequestChannel::start(self.id, conn, stream, &dialer.config);
        *lock(&self.requests) = Some(Arc::clone(&channel));
        Ok(channel)
    }

    fn take_hello_stream(&self, conn_id: usize) -> Option<(usize, SendStream)> {
        let mut slot = lock(&self.hello_stream);
        match slot.take() {
            Some((id, stream)) if id == conn_id => Some((id, stream)),
            _ => None,
        }
    }
}

impl Dialer {
    /// Connects, then identifies this node on the first unidirectional stream.
    async fn dial(
        &self,
        peer: NodeId,
        addr: SocketAddr,
    ) -> Result<(Connection, SendStream), Error> {
        let unreachable = |reason: String| Error::Unreachable { peer, reason };
        let name = node_server_name(peer);
        let connecting = self
            .endpoint
            .connect_with(self.client_config.clone(), addr, &name)
            .map_err(|e| unreachable(e.to_string()))?;
        let conn = match tokio::time::timeout(self.config.connect_timeout, connecting).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(connection_error(peer, e)),
            Err(_elapsed) => return Err(unreachable(format!("no handshake with {addr}"))),
        };
        let mut hello = conn
            .open_uni()
            .await
            .map_err(|e| connection_error(peer, e))?;
        hello
            .write_all(&hello_frame(self.config.node_id))
            .await
            .map_err(|e| write_error(peer, e))?;
        Ok((conn, hello))
    }
}

/// Drains a peer's one-way queue in batches onto one unidirectional stream.
async fn run_writer(dialer: Arc<Dialer>, peer: Arc<Peer>, mut queue: mpsc::Receiver<Envelope>) {
    let batch_max = dialer.config.oneway_batch_max;
    let frame_size_max = dialer.config.frame_size_max;
    let mut stream: Option<(usize, SendStream)> = None;
    let mut batch: Vec<Envelope> = Vec::with_capacity(batch_max);
    while queue.recv_many(&mut batch, batch_max).await > 0 {
        debug_assert!(!batch.is_empty() && batch.len() <= batch_max);
        let pieces = encode_batch(&batch, frame_size_max);
        batch.clear();
        // One retry covers a connection that died since the last batch; after that the
        // batch is dropped rather than holding up everything queued behind it.
        for _attempt in 0..2 {
            let Ok(conn) = peer.connection(&dialer).await else {
                break;
            };
            let conn_id = conn.stable_id();
            if stream.as_ref().is_none_or(|(id, _)| *id != conn_id) {
                stream = peer.take_hello_stream(conn_id);
            }
            if stream.is_none() {
                match conn.open_uni().await {
                    Ok(fresh) => stream = Some((conn_id, fresh)),
                    Err(_) => continue,
                }
            }
            let (_, open) = stream.as_mut().expect("a stream was just ensured");
            match open.write_all_chunks(&mut pieces.clone()).await {
                Ok(()) => break,
                Err(_) => stream = None,
            }
        }
    }
}

/// Whether `envelope` fits a frame of `frame_size_max` bytes, settled by its size bound
/// for most envelopes and by encoding it for the few whose bound exceeds the limit; the
/// writers then encode only envelopes that fit.
pub(crate) fn check_fits(envelope: &Envelope, frame_size_max: u32) -> Result<(), Error> {
    if envelope.encoded_len_max() > frame_size_max as usize {
        encode_frame(envelope, frame_size_max)?;
    }
    Ok(())
}

/// One-way envelopes encoded as frames back to back, in pieces of about [`PIECE_LEN`]
/// bytes (a larger frame makes a piece of its own).
///
/// Encoding a batch together costs one buffer per piece instead of one per message. Few,
/// large pieces matter to quinn: it keeps a stream's unacknowledged writes as a list and
/// finds a range by walking it from the front, so a write per small frame makes every
/// packet built from the stream cost more.
fn encode_batch(batch: &[Envelope], frame_size_max: u32) -> Vec<Bytes> {
    let frame_bound = |envelope: &Envelope| FRAME_HEADER_LEN + envelope.encoded_len_max();
    let mut unencoded: usize = batch.iter().map(frame_bound).sum();
    let mut pieces = Vec::new();
    let mut piece = Vec::new();
    for envelope in batch {
        let bound = frame_bound(envelope);
        if !piece.is_empty() && piece.len() + bound > PIECE_LEN {
            pieces.push(Bytes::from(std::mem::take(&mut piece)));
        }
        if piece.is_empty() {
            piece.reserve(unencoded.min(PIECE_LEN).max(bound));
        }
        // `send` let through only envelopes that fit a frame.
        let fits = append_frame(envelope, frame_size_max, &mut piece);
        debug_assert!(fits.is_ok(), "send checked the frame size");
        unencoded -= bound;
    }
    debug_assert_eq!(unencoded, 0);
    if !piece.is_empty() {
        pieces.push(Bytes::from(piece));
    }
    pieces
}

async fn run_accept(endpoint: quinn::Endpoint, serve: Arc<Serve>) {
    while let Some(incoming) = endpoint.accept().await {
        tokio::spawn(serve_connection(Arc::clone(&serve), incoming));
    }
}

async fn serve_connection(serve: Arc<Serve>, incoming: quinn::Incoming) {
    // A client whose certificate does not verify fails here, before any of its streams
    // is read: nothing it sent reaches the inbox.
    let Ok(conn) = incoming.await else { return };
    let hello = tokio::time::timeout(serve.hello_timeout, accept_hello(&serve, &conn)).await;
    let Ok(Ok((source, hello_stream))) = hello else {
        conn.close(
            VarInt::from_u32(CODE_BAD_HELLO),
            b"missing or mismatched hello",
        );
        return;
    };
    tokio::spawn(read_oneway(Arc::clone(&serve), source, hello_stream));
    let uni_conn = conn.clone();
    let uni_serve = Arc::clone(&serve);
    tokio::spawn(async move {
        while let Ok(recv) = uni_conn.accept_uni().await {
            tokio::spawn(read_oneway(Arc::clone(&uni_serve), source, recv));
        }
    });
    while let Ok((send, recv)) = conn.accept_bi().await {
        tokio::spawn(serve_requests(Arc::clone(&serve), source, send, recv));
    }
}

async fn accept_hello(serve: &Serve, conn: &Connection) -> Result<(NodeId, RecvStream), ()> {
    let mut recv = conn.accept_uni().await.map_err(drop)?;
    let body = read_frame(&mut recv, HELLO_FRAME_MAX)
        .await
        .ok()
        .flatten()
        .ok_or(())?;
    let claimed = parse_hello(&body).ok_or(())?;
    let chain = conn
        .peer_identity()
        .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok())
        .ok_or(())?;
    serve.check.verify(&chain, claimed).map_err(drop)?;
    Ok((claimed, recv))
}

/// Hands every frame of a one-way stream to the inbox, as quinn delivers the stream's
/// data: all the frames a received chunk holds are split out and delivered before the
/// next chunk is awaited.
async fn read_oneway(serve: Arc<Serve>, source: NodeId, mut recv: RecvStream) {
    let end = deliver_frames(&serve, &mut recv, serve.frame_size_max, |body| {
        let message = Envelope::decode(&body)
            .ok()
            .map(|envelope| Incoming::Message { source, envelope });
        std::future::ready(message)
    })
    .await;
    if let StreamEnd::Refused(code) = end {
        let _ = recv.stop(VarInt::from_u32(code));
    }
}

/// How a stream whose frames were delivered to the inbox ended.
pub(crate) enum StreamEnd {
    /// The sender finished it between frames.
    Finished,
    /// The inbox is gone: the node is shutting down.
    InboxGone,
    /// It is refused with this code: a frame was too large or malformed, the stream
    /// ended inside a frame, or it failed.
    Refused(u32),
}

/// Splits `recv` into frames of at most `frame_size_max` bytes, as quinn delivers its
/// data, and delivers what `incoming` makes of each to the inbox, waiting when it is
/// full (`incoming` may wait too). A frame `incoming` cannot make sense of refuses the
/// stream.
pub(crate) async fn deliver_frames<F>(
    serve: &Serve,
    recv: &mut RecvStream,
    frame_size_max: u32,
    mut incoming: impl FnMut(Bytes) -> F,
) -> StreamEnd
where
    F: Future<Output = Option<Incoming>>,
{
    let mut frames = FrameSplitter::new(frame_size_max);
    loop {
        match frames.next_frame() {
            Ok(Some(body)) => {
                let Some(incoming) = incoming(body).await else {
                    return StreamEnd::Refused(CODE_MALFORMED);
                };
                if deliver(&serve.inbox, incoming).await.is_err() {
                    return StreamEnd::InboxGone;
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => return StreamEnd::Refused(e.code()),
        }
        match recv.read_chunk(READ_CHUNK, true).await {
            Ok(Some(chunk)) => frames.push(chunk.bytes),
            Ok(None) if frames.buffered() == 0 => return StreamEnd::Finished,
            // The stream ended inside a frame, or failed.
            Ok(None) | Err(_) => return StreamEnd::Refused(CODE_MALFORMED),
        }
    }
}

/// Queues `incoming` in the inbox, waiting only when it is full. `Err` once the inbox is
/// gone.
async fn deliver(inbox: &mpsc::Sender<Incoming>, incoming: Incoming) -> Result<(), ()> {
    match inbox.try_send(incoming) {
        Ok(()) => Ok(()),
        Err(mpsc::error::TrySendError::Full(incoming)) => inbox.send(incoming).await.map_err(drop),
        Err(mpsc::error::TrySendError::Closed(_)) => Err(()),
    }
}

fn is_tls_alert(code: quinn::TransportErrorCode) -> bool {
    // QUIC carries TLS alerts as transport error codes 0x100 + alert.
    (0x100..0x200).contains(&u64::from(code))
}

/// Turns a quinn connection failure into the transport's vocabulary.
pub(crate) fn connection_error(peer: NodeId, e: quinn::ConnectionError) -> Error {
    use quinn::ConnectionError as C;
    match e {
        C::TransportError(t) if is_tls_alert(t.code) => Error::CertificateRejected {
            peer: Some(peer),
            reason: t.to_string(),
        },
        C::ConnectionClosed(c) if is_tls_alert(c.error_code) => Error::CertificateRejected {
            peer: Some(peer),
            reason: c.to_string(),
        },
        C::LocallyClosed => Error::Shutdown,
        other => Error::Unreachable {
            peer,
            reason: other.to_string(),
        },
    }
}

pub(crate) fn write_error(peer: NodeId, e: quinn::WriteError) -> Error {
    match e {
        quinn::WriteError::ConnectionLost(e) => connection_error(peer, e),
        other => stream_refused(peer, &other.to_string(), stream_code(&other)),
    }
}

fn stream_code(e: &quinn::WriteError) -> Option<u64> {
    match e {
        quinn::WriteError::Stopped(code) => Some(code.into_inner()),
        _ => None,
    }
}

fn stream_refused(peer: NodeId, what: &str, code: Option<u64>) -> Error {
    match code.and_then(|c| u32::try_from(c).ok()) {
        Some(CODE_NO_RESPONSE) => Error::NoResponse { peer },
        Some(CODE_FRAME_TOO_LARGE) => Error::Malformed {
            reason: format!("peer {peer} refused the frame as too large"),
        },
        Some(CODE_MALFORMED) => Error::Malformed {
            reason: format!("peer {peer} could not decode the frame"),
        },
        _ => Error::Unreachable {
            peer,
            reason: what.to_owned(),
        },
    }
}

pub(crate) fn read_error(peer: NodeId, e: FrameError) -> Error {
    match e {
        FrameError::TooLarge { len, max } => Error::FrameTooLarge {
            len: u64::from(len),
            max: u64::from(max),
        },
        FrameError::Truncated => Error::Malformed {
            reason: format!("response from {peer} ended early"),
        },
        FrameError::Io(io) => {
            let quic = io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<quinn::ReadError>());
            match quic {
                Some(quinn::ReadError::ConnectionLost(e)) => connection_error(peer, e.clone()),
                Some(quinn::ReadError::Reset(code)) => {
                    stream_refused(peer, &io.to_string(), Some(code.into_inner()))
                }
                _ => Error::Unreachable {
                    peer,
                    reason: io.to_string(),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segmentation_offload_stays_on_for_the_default_bounds_only() {
        assert!(segmentation_offload_fits(
            QuicConfig::UDP_PAYLOAD_MAX_NETWORK
        ));
        assert!(segmentation_offload_fits(
            QuicConfig::UDP_PAYLOAD_MAX_LOOPBACK
        ));
        assert!(segmentation_offload_fits(6550));
        assert!(!segmentation_offload_fits(6551));
        assert!(!segmentation_offload_fits(8952));
        assert!(!segmentation_offload_fits(QuicConfig::UDP_PAYLOAD_LIMIT));
    }

    #[test]
    fn a_batch_is_its_frames_back_to_back_in_few_pieces() {
        let sizes = [10, 0, 40_000, 30_000, 100_000, 10, 10];
        let batch: Vec<_> = sizes
            .iter()
            .enumerate()
            .map(|(i, &len)| {
                let kind = u16::try_from(i).unwrap();
                Envelope::new(aegis_transport::Channel::Raft, kind, vec![7u8; len])
            })
            .collect();
        let pieces = encode_batch(&batch, 1 << 20);
        // 10 + 0 + 40,000 share a piece; 30,000 would overflow it; 100,000 stands alone
        // and the two small ones follow it.
        let lens: Vec<_> = pieces.iter().map(|p| p.len() / 1000).collect();
        assert_eq!(lens, [40, 30, 100, 0]);
        let mut splitter = FrameSplitter::new(1 << 20);
        for piece in &pieces {
            splitter.push(piece.clone());
        }
        for envelope in &batch {
            let body = splitter.next_frame().unwrap().unwrap();
            assert_eq!(&Envelope::decode(&body).unwrap(), envelope);
        }
        assert_eq!(splitter.buffered(), 0);
        let small = encode_batch(&batch[..2], 1 << 20);
        assert_eq!(small.len(), 1);
    }
}
