use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use aegis_transport::{Envelope, Error, Incoming, NodeId, Responder, Transport};
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Connection, RecvStream, SendStream, VarInt};
use rustls::pki_types::CertificateDer;
use tokio::io::BufReader;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::certs::node_server_name;
use crate::tls::{IdentityCheck, TlsIdentity, client_crypto, server_crypto};
use crate::wire::{
    CODE_BAD_HELLO, CODE_FRAME_TOO_LARGE, CODE_MALFORMED, CODE_NO_RESPONSE, CODE_SHUTDOWN,
    FRAME_HEADER_LEN, FrameError, encode_frame, hello_frame, parse_hello, read_frame,
};
use crate::{QuicConfig, SetupError};

/// Unidirectional streams a peer may hold open: the hello stream plus replacements.
const UNI_STREAMS_MAX: u32 = 16;
/// A hello frame body is 13 bytes; anything longer is not a hello.
const HELLO_FRAME_MAX: u32 = 64;
/// Read-ahead for one-way streams, so a batch of small frames costs few stream reads.
const ONEWAY_READ_BUFFER: usize = 64 * 1024;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A [`Transport`] over QUIC with mutual TLS.
///
/// Each node dials each peer it talks to and keeps that connection: requests each use a
/// new bidirectional stream on it, one-way messages are batched onto one unidirectional
/// stream. Connections a peer dials in are only served, never used to send. A lost
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
    peers: Mutex<HashMap<NodeId, Arc<Peer>>>,
    inbox: tokio::sync::Mutex<mpsc::Receiver<Incoming>>,
    shutdown: watch::Sender<bool>,
    closed: AtomicBool,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// What outgoing traffic needs, shared by callers and per-peer writer tasks.
struct Dialer {
    config: QuicConfig,
    endpoint: quinn::Endpoint,
    client_config: quinn::ClientConfig,
}

/// What serving incoming connections needs.
struct Serve {
    frame_size_max: u32,
    hello_timeout: std::time::Duration,
    inbox: mpsc::Sender<Incoming>,
    check: IdentityCheck,
    /// Where a response too large for its stream's send window finishes writing.
    runtime: tokio::runtime::Handle,
}

struct Peer {
    id: NodeId,
    addr: Mutex<SocketAddr>,
    conn: Mutex<Option<Connection>>,
    /// The stream the hello went out on, left for the one-way writer to continue.
    hello_stream: Mutex<Option<(usize, SendStream)>>,
    dial: tokio::sync::Mutex<DialState>,
    oneway: mpsc::Sender<Bytes>,
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
    Ok(Arc::new(transport))
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
        let endpoint = quinn::Endpoint::server(server_config, config.listen).map_err(|source| {
            SetupError::Bind {
                addr: config.listen,
                source,
            }
        })?;

        let (inbox_tx, inbox_rx) = mpsc::channel(config.inbox_max);
        let serve = Arc::new(Serve {
            frame_size_max: config.frame_size_max,
            hello_timeout: config.hello_timeout,
            inbox: inbox_tx,
            check: IdentityCheck::new(identity)?,
            runtime: tokio::runtime::Handle::current(),
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
                peers: Mutex::new(HashMap::new()),
                inbox: tokio::sync::Mutex::new(inbox_rx),
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

    async fn request_on(&self, peer: &Peer, frame: Bytes) -> Result<Envelope, Error> {
        let dialer = &self.inner.dialer;
        let conn = peer.connection(dialer).await?;
        let (mut send, mut recv) = conn
            .open_bi()
            .await
            .map_err(|e| connection_error(peer.id, e))?;
        send.write_chunk(frame)
            .await
            .map_err(|e| write_error(peer.id, e))?;
        // Finishing only fails on a stream already reset, which the read below reports.
        let _ = send.finish();
        match read_stream_frame(&mut recv, dialer.config.frame_size_max).await {
            Ok(Some(body)) => Envelope::decode(&body),
            Ok(None) => Err(Error::NoResponse { peer: peer.id }),
            Err(e) => Err(read_error(peer.id, e)),
        }
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

#[async_trait]
impl Transport for QuicTransport {
    fn local_id(&self) -> NodeId {
        self.inner.dialer.config.node_id
    }

    async fn send(&self, target: NodeId, envelope: Envelope) -> Result<(), Error> {
        let peer = self.peer(target)?;
        let frame = encode_frame(&envelope, self.inner.dialer.config.frame_size_max)?;
        peer.oneway.send(frame).await.map_err(|_| Error::Shutdown)
    }

    async fn request(&self, target: NodeId, envelope: Envelope) -> Result<Envelope, Error> {
        let peer = self.peer(target)?;
        let config = &self.inner.dialer.config;
        let frame = encode_frame(&envelope, config.frame_size_max)?;
        let after = config.request_timeout;
        match tokio::time::timeout(after, self.request_on(&peer, frame)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(Error::TimedOut {
                peer: target,
                after,
            }),
        }
    }

    async fn recv(&self) -> Result<Incoming, Error> {
        // Fast path while requests queue up: no shutdown subscription, no waiting lock.
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Shutdown);
        }
        if let Ok(mut inbox) = self.inner.inbox.try_lock()
            && let Ok(next) = inbox.try_recv()
        {
            return Ok(next);
        }
        let mut shutdown = self.inner.shutdown.subscribe();
        if *shutdown.borrow_and_update() {
            return Err(Error::Shutdown);
        }
        let mut inbox = self.inner.inbox.lock().await;
        if let Ok(next) = inbox.try_recv() {
            return Ok(next);
        }
        tokio::select! {
            next = inbox.recv() => next.ok_or(Error::Shutdown),
            _ = shutdown.changed() => Err(Error::Shutdown),
        }
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
async fn run_writer(dialer: Arc<Dialer>, peer: Arc<Peer>, mut queue: mpsc::Receiver<Bytes>) {
    let batch_max = dialer.config.oneway_batch_max;
    let mut stream: Option<(usize, SendStream)> = None;
    let mut batch: Vec<Bytes> = Vec::with_capacity(batch_max);
    while let Some(first) = queue.recv().await {
        batch.clear();
        batch.push(first);
        while batch.len() < batch_max {
            match queue.try_recv() {
                Ok(frame) => batch.push(frame),
                Err(_) => break,
            }
        }
        debug_assert!(!batch.is_empty() && batch.len() <= batch_max);
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
            let mut chunks = batch.clone();
            match open.write_all_chunks(&mut chunks).await {
                Ok(()) => break,
                Err(_) => stream = None,
            }
        }
    }
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
        start_request(&serve, source, send, recv);
    }
}

/// Serves a request stream. A small request has normally arrived whole with its stream
/// and the inbox has room: then it is handed on right here, without a task. Only a
/// request that has to wait (for more bytes or for inbox room) gets a task of its own,
/// which polls it again with a real waker.
fn start_request(serve: &Arc<Serve>, source: NodeId, send: SendStream, recv: RecvStream) {
    let mut request = Box::pin(serve_request(Arc::clone(serve), source, send, recv));
    let mut cx = Context::from_waker(Waker::noop());
    if request.as_mut().poll(&mut cx).is_pending() {
        tokio::spawn(request);
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

async fn read_oneway(serve: Arc<Serve>, source: NodeId, recv: RecvStream) {
    let mut reader = BufReader::with_capacity(ONEWAY_READ_BUFFER, recv);
    loop {
        let code = match read_frame(&mut reader, serve.frame_size_max).await {
            Ok(None) => return,
            Ok(Some(body)) => match Envelope::decode(&body) {
                Ok(envelope) => {
                    if serve
                        .inbox
                        .send(Incoming::Message { source, envelope })
                        .await
                        .is_err()
                    {
                        return;
                    }
                    continue;
                }
                Err(_) => CODE_MALFORMED,
            },
            Err(e) => e.code(),
        };
        let _ = reader.get_mut().stop(VarInt::from_u32(code));
        return;
    }
}

async fn serve_request(
    serve: Arc<Serve>,
    source: NodeId,
    mut send: SendStream,
    mut recv: RecvStream,
) {
    let refuse = |send: &mut SendStream, recv: &mut RecvStream, code: u32| {
        let _ = recv.stop(VarInt::from_u32(code));
        let _ = send.reset(VarInt::from_u32(code));
    };
    let body = match read_stream_frame(&mut recv, serve.frame_size_max).await {
        Ok(Some(body)) => body,
        Ok(None) => return refuse(&mut send, &mut recv, CODE_MALFORMED),
        Err(e) => return refuse(&mut send, &mut recv, e.code()),
    };
    let Ok(envelope) = Envelope::decode(&body) else {
        return refuse(&mut send, &mut recv, CODE_MALFORMED);
    };
    drop(recv);
    let frame_size_max = serve.frame_size_max;
    let runtime = serve.runtime.clone();
    let responder =
        Responder::from_fn(move |response| answer(send, response, frame_size_max, &runtime));
    // If the inbox is gone the request is dropped with it, and the responder resets the
    // stream on its way out.
    let _ = serve
        .inbox
        .send(Incoming::Request {
            source,
            envelope,
            responder,
        })
        .await;
}

/// Writes a response onto its stream from whichever task answers. A small response
/// normally fits the stream's send window and goes out at once; only the remainder of a
/// larger one needs a task to wait for window.
fn answer(
    mut send: SendStream,
    response: Option<Envelope>,
    frame_size_max: u32,
    runtime: &tokio::runtime::Handle,
) -> Result<(), Error> {
    let Some(envelope) = response else {
        let _ = send.reset(VarInt::from_u32(CODE_NO_RESPONSE));
        return Ok(());
    };
    let frame = match encode_frame(&envelope, frame_size_max) {
        Ok(frame) => frame,
        Err(e) => {
            let _ = send.reset(VarInt::from_u32(CODE_FRAME_TOO_LARGE));
            return Err(e);
        }
    };
    let frame_len = frame.len();
    // Handing quinn the frame itself (not a slice of it) saves copying it.
    let mut chunks = [frame];
    let written = {
        let mut cx = Context::from_waker(Waker::noop());
        match pin!(send.write_chunks(&mut chunks)).poll(&mut cx) {
            Poll::Ready(Ok(written)) => written.bytes,
            Poll::Ready(Err(_)) => return Err(Error::RequesterGone),
            Poll::Pending => 0,
        }
    };
    let [rest] = chunks;
    debug_assert_eq!(written + rest.len(), frame_len);
    if rest.is_empty() {
        let _ = send.finish();
        return Ok(());
    }
    runtime.spawn(async move {
        if send.write_chunk(rest).await.is_ok() {
            let _ = send.finish();
        }
    });
    Ok(())
}

/// Reads the one frame a request or response stream carries.
///
/// Takes quinn's received chunks as they are, so a frame that arrived in one piece (the
/// usual case for small frames) is passed on without a copy. As in [`read_frame`], the
/// length prefix is checked against `frame_size_max` before any buffer for the body
/// exists. When the frame ends exactly where the received data does, the end of the
/// stream is picked up if it has already arrived, so that dropping the stream afterwards
/// does not send the peer a needless stop signal.
async fn read_stream_frame(
    recv: &mut RecvStream,
    frame_size_max: u32,
) -> Result<Option<Bytes>, FrameError> {
    let Some(mut data) = next_chunk(recv, usize::MAX).await? else {
        return Ok(None);
    };
    while data.len() < FRAME_HEADER_LEN {
        let Some(more) = next_chunk(recv, FRAME_HEADER_LEN - data.len()).await? else {
            return Err(FrameError::Truncated);
        };
        let mut joined = BytesMut::with_capacity(FRAME_HEADER_LEN);
        joined.extend_from_slice(&data);
        joined.extend_from_slice(&more);
        data = joined.freeze();
    }
    let header: [u8; FRAME_HEADER_LEN] = data[..FRAME_HEADER_LEN]
        .try_into()
        .expect("the header is complete");
    let len = u32::from_be_bytes(header);
    if len > frame_size_max {
        return Err(FrameError::TooLarge {
            len,
            max: frame_size_max,
        });
    }
    let len = len as usize;
    let end = FRAME_HEADER_LEN + len;
    let body = if data.len() >= end {
        data.slice(FRAME_HEADER_LEN..end)
    } else {
        let mut body = BytesMut::with_capacity(len);
        body.extend_from_slice(&data[FRAME_HEADER_LEN..]);
        while body.len() < len {
            let Some(more) = next_chunk(recv, len - body.len()).await? else {
                return Err(FrameError::Truncated);
            };
            body.extend_from_slice(&more);
        }
        body.freeze()
    };
    debug_assert_eq!(body.len(), len);
    if data.len() <= end {
        note_stream_end(recv);
    }
    Ok(Some(body))
}

/// The next chunk of at most `max` bytes, `None` at the end of the stream.
async fn next_chunk(recv: &mut RecvStream, max: usize) -> Result<Option<Bytes>, FrameError> {
    match recv.read_chunk(max, true).await {
        Ok(chunk) => Ok(chunk.map(|c| c.bytes)),
        Err(e) => Err(FrameError::Io(e.into())),
    }
}

/// Looks, without waiting, whether the stream's end has arrived; if so the stream counts
/// as fully read. Anything unexpected found instead is discarded, as it was before.
fn note_stream_end(recv: &mut RecvStream) {
    let mut cx = Context::from_waker(Waker::noop());
    let _ = pin!(recv.read_chunk(1, true)).poll(&mut cx);
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

fn write_error(peer: NodeId, e: quinn::WriteError) -> Error {
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

fn read_error(peer: NodeId, e: FrameError) -> Error {
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
