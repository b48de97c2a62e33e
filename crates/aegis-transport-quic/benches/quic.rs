//! QUIC transport throughput and latency on loopback, next to a plain TCP baseline that
//! carries the same envelopes in length-prefixed frames over one connection, and bare
//! quinn (same TLS and transport settings, no transport layer) used two ways: a stream per
//! request, the transport's first design, which it now beats by sharing a stream; and
//! every frame on one stream served inline, as the TCP baseline does, which shows what
//! QUIC gives with no layer on top.
#![allow(
    clippy::disallowed_methods,
    reason = "a benchmark times itself with the wall clock"
)]

use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aegis_transport::{Channel, Envelope, Incoming, Transport};
use aegis_transport_quic::{CertificateAuthority, QuicConfig, QuicTransport, wire};
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::{Notify, mpsc, oneshot};

const IN_FLIGHT: u64 = 64;
const PAYLOAD: usize = 64;
const FRAME_MAX: u32 = 1 << 20;

fn envelope() -> Envelope {
    Envelope::new(Channel::Raft, 1, vec![7u8; PAYLOAD])
}

/// Counts one-way arrivals and wakes the bench when a target count is reached.
#[derive(Default)]
struct Arrivals {
    count: AtomicU64,
    target: AtomicU64,
    done: Notify,
}

impl Arrivals {
    fn arrived(&self) {
        let now = self.count.fetch_add(1, Ordering::AcqRel) + 1;
        if now == self.target.load(Ordering::Acquire) {
            self.done.notify_one();
        }
    }

    async fn wait_for(&self, more: u64, send: impl Future<Output = ()>) -> Duration {
        let start_count = self.count.load(Ordering::Acquire);
        self.target.store(start_count + more, Ordering::Release);
        let start = Instant::now();
        send.await;
        // A permit left over from an earlier round only costs one extra check.
        while self.count.load(Ordering::Acquire) < start_count + more {
            self.done.notified().await;
        }
        start.elapsed()
    }
}

struct QuicPair {
    client: Arc<QuicTransport>,
    _server: Arc<QuicTransport>,
    arrivals: Arc<Arrivals>,
}

fn quic_pair(rt: &Runtime) -> QuicPair {
    rt.block_on(async {
        let ca = CertificateAuthority::generate("bench").unwrap();
        let any = "127.0.0.1:0".parse().unwrap();
        let server = Arc::new(
            QuicTransport::bind(QuicConfig::new(2, any), &ca.node_identity(2).unwrap()).unwrap(),
        );
        let client = Arc::new(
            QuicTransport::bind(QuicConfig::new(1, any), &ca.node_identity(1).unwrap()).unwrap(),
        );
        client.set_peer(2, server.local_addr());
        let arrivals = Arc::new(Arrivals::default());
        let (node, counter) = (Arc::clone(&server), Arc::clone(&arrivals));
        tokio::spawn(async move {
            while let Ok(incoming) = node.recv().await {
                match incoming {
                    Incoming::Request {
                        envelope,
                        responder,
                        ..
                    } => {
                        let _ = responder.respond(envelope);
                    }
                    Incoming::Message { .. } => counter.arrived(),
                }
            }
        });
        client.request(2, envelope()).await.unwrap();
        QuicPair {
            client,
            _server: server,
            arrivals,
        }
    })
}

/// A pipelined client of one ordered byte stream: frames written by a batching writer
/// task, responses matched to requests in order (the server answers in order). Over TCP
/// this is the baseline; over one quinn stream it shows what QUIC gives without a stream
/// per request.
struct FramedClient {
    requests: mpsc::Sender<(Bytes, Option<oneshot::Sender<Bytes>>)>,
}

impl FramedClient {
    /// Starts the writer and reader tasks and checks one round trip.
    async fn start<R, W>(read: R, write: W) -> Self
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let pending: Arc<Mutex<VecDeque<oneshot::Sender<Bytes>>>> = Arc::default();
        let (tx, mut rx) = mpsc::channel::<(Bytes, Option<oneshot::Sender<Bytes>>)>(1024);
        let waiting = Arc::clone(&pending);
        tokio::spawn(async move {
            let mut writer = BufWriter::with_capacity(64 * 1024, write);
            while let Some((frame, reply)) = rx.recv().await {
                let mut next = Some((frame, reply));
                while let Some((frame, reply)) = next.take() {
                    if let Some(reply) = reply {
                        waiting.lock().unwrap().push_back(reply);
                    }
                    writer.write_all(&frame).await.unwrap();
                    next = rx.try_recv().ok();
                }
                writer.flush().await.unwrap();
            }
        });
        tokio::spawn(async move {
            let mut reader = BufReader::with_capacity(64 * 1024, read);
            while let Ok(Some(body)) = wire::read_frame(&mut reader, FRAME_MAX).await {
                let reply = pending.lock().unwrap().pop_front().unwrap();
                let _ = reply.send(body);
            }
        });
        let client = Self { requests: tx };
        let first = client.request(tcp_frame(1)).await;
        Envelope::decode(&first).unwrap();
        client
    }

    async fn request(&self, frame: Bytes) -> Bytes {
        let (tx, rx) = oneshot::channel();
        self.requests.send((frame, Some(tx))).await.unwrap();
        rx.await.unwrap()
    }

    async fn send(&self, frame: Bytes) {
        self.requests.send((frame, None)).await.unwrap();
    }
}

/// Serves a [`FramedClient`]: echoes requests inline, counts one-way messages.
async fn framed_server<R, W>(read: R, write: W, arrivals: Arc<Arrivals>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = BufReader::with_capacity(64 * 1024, read);
    let mut writer = BufWriter::with_capacity(64 * 1024, write);
    // Kind 1 is a request to echo; kind 2 a one-way message to count.
    while let Ok(Some(body)) = wire::read_frame(&mut reader, FRAME_MAX).await {
        let request = Envelope::decode(&body).unwrap();
        if request.kind == 2 {
            arrivals.arrived();
            continue;
        }
        let frame = wire::encode_frame(&request, FRAME_MAX).unwrap();
        writer.write_all(&frame).await.unwrap();
        if reader.buffer().is_empty() {
            writer.flush().await.unwrap();
        }
    }
}

/// The baseline: one TCP connection carrying length-prefixed frames.
fn tcp_pair(rt: &Runtime) -> (FramedClient, Arc<Arrivals>) {
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let arrivals = Arc::new(Arrivals::default());
        let counter = Arc::clone(&arrivals);
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (read, write) = stream.into_split();
            framed_server(read, write, counter).await;
        });
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (read, write) = stream.into_split();
        (FramedClient::start(read, write).await, arrivals)
    })
}

/// Bare quinn with the same TLS and transport settings as the transport, and no
/// transport layer on top.
struct RawQuinn {
    /// Requests each on a stream of their own, echoed by a task per stream: what a
    /// stream per request costs.
    per_stream: quinn::Connection,
    /// Every request and one-way message on one stream, served inline: shows what QUIC
    /// gives when it is used like the TCP baseline.
    one_stream: FramedClient,
    one_stream_arrivals: Arc<Arrivals>,
}

fn raw_quinn(rt: &Runtime) -> RawQuinn {
    use aegis_transport_quic::tls;
    use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
    rt.block_on(async {
        let ca = CertificateAuthority::generate("bench").unwrap();
        let udp_payload_max = QuicConfig::UDP_PAYLOAD_MAX_LOOPBACK;
        let mut discovery = quinn::MtuDiscoveryConfig::default();
        discovery.upper_bound(udp_payload_max);
        let mut transport = quinn::TransportConfig::default();
        transport
            .max_concurrent_bidi_streams(1024u32.into())
            .mtu_discovery_config(Some(discovery));
        let transport = Arc::new(transport);
        let mut endpoint_config = quinn::EndpointConfig::default();
        endpoint_config
            .max_udp_payload_size(udp_payload_max)
            .unwrap();
        let endpoint = |server_config| {
            let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let runtime = quinn::default_runtime().unwrap();
            quinn::Endpoint::new(endpoint_config.clone(), server_config, socket, runtime).unwrap()
        };
        let server_tls = tls::server_crypto(&ca.node_identity(2).unwrap()).unwrap();
        let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(
            QuicServerConfig::try_from(server_tls).unwrap(),
        ));
        server_config.transport_config(Arc::clone(&transport));
        let server = endpoint(Some(server_config));
        let addr = server.local_addr().unwrap();
        let arrivals = Arc::new(Arrivals::default());
        let counter = Arc::clone(&arrivals);
        tokio::spawn(async move {
            let conn = server.accept().await.unwrap().await.unwrap();
            tokio::spawn(async move {
                while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                    tokio::spawn(async move {
                        let body = recv.read_to_end(1 << 20).await.unwrap();
                        send.write_all(&body).await.unwrap();
                        let _ = send.finish();
                    });
                }
            });
            let conn = server.accept().await.unwrap().await.unwrap();
            let (send, recv) = conn.accept_bi().await.unwrap();
            framed_server(recv, send, counter).await;
        });
        let client_tls = tls::client_crypto(&ca.node_identity(1).unwrap()).unwrap();
        let mut client_config =
            quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(client_tls).unwrap()));
        client_config.transport_config(transport);
        let client = endpoint(None);
        let name = aegis_transport_quic::node_server_name(2);
        let connect = || {
            client
                .connect_with(client_config.clone(), addr, &name)
                .unwrap()
        };
        let per_stream = connect().await.unwrap();
        let one = connect().await.unwrap();
        let (send, recv) = one.open_bi().await.unwrap();
        let one_stream = FramedClient::start(recv, send).await;
        std::mem::forget(client);
        RawQuinn {
            per_stream,
            one_stream,
            one_stream_arrivals: arrivals,
        }
    })
}

async fn raw_quinn_request(conn: &quinn::Connection, frame: &[u8]) -> Vec<u8> {
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(frame).await.unwrap();
    send.finish().unwrap();
    recv.read_to_end(1 << 20).await.unwrap()
}

fn tcp_frame(kind: u16) -> Bytes {
    let mut e = envelope();
    e.kind = kind;
    wire::encode_frame(&e, FRAME_MAX).unwrap()
}

/// Both ends of every pair share one single-threaded runtime: on a small shared machine
/// this keeps cross-thread wake-ups out of the comparison, the same for QUIC and TCP.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Splits `iters` requests over `IN_FLIGHT` concurrent workers and times them all.
async fn spread<F, Fut>(iters: u64, work: F) -> Duration
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..IN_FLIGHT.min(iters) {
        let share = iters / IN_FLIGHT + u64::from(w < iters % IN_FLIGHT);
        workers.spawn(work(share));
    }
    while workers.join_next().await.is_some() {}
    start.elapsed()
}

/// Times each criterion sample as its requests spread over `IN_FLIGHT` workers.
fn in_flight<F, Fut>(b: &mut criterion::Bencher<'_>, rt: &Runtime, work: F)
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    b.iter_custom(|iters| rt.block_on(spread(iters, &work)));
}

fn benches(c: &mut Criterion) {
    let rt = runtime();
    let quic = quic_pair(&rt);
    let (tcp, tcp_arrivals) = tcp_pair(&rt);
    let tcp = Arc::new(tcp);
    let raw = Arc::new(raw_quinn(&rt));

    let mut group = c.benchmark_group("transport/round_trip_one_at_a_time");
    group.throughput(Throughput::Elements(1));
    group.bench_function("quic", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(quic.client.request(2, envelope()).await.unwrap());
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("tcp_baseline", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let reply = tcp.request(tcp_frame(1)).await;
                    black_box(Envelope::decode(&reply).unwrap());
                }
                start.elapsed()
            })
        });
    });
    group.finish();

    let mut group = c.benchmark_group("transport/requests_64_in_flight");
    group.throughput(Throughput::Elements(1));
    group.bench_function("quic", |b| {
        in_flight(b, &rt, |share| {
            let client = Arc::clone(&quic.client);
            async move {
                for _ in 0..share {
                    black_box(client.request(2, envelope()).await.unwrap());
                }
            }
        });
    });
    // The same, through the object-safe trait, whose calls each box their future: what
    // code holding an `Arc<dyn Transport>` (aegis-cluster, for one) pays.
    let dyn_client: Arc<dyn Transport> = quic.client.clone();
    group.bench_function("quic_dyn_transport", |b| {
        in_flight(b, &rt, |share| {
            let client = Arc::clone(&dyn_client);
            async move {
                for _ in 0..share {
                    black_box(client.request(2, envelope()).await.unwrap());
                }
            }
        });
    });
    group.bench_function("quinn_raw", |b| {
        in_flight(b, &rt, |share| {
            let conn = raw.per_stream.clone();
            async move {
                let frame = tcp_frame(1);
                for _ in 0..share {
                    black_box(raw_quinn_request(&conn, &frame).await);
                }
            }
        });
    });
    group.bench_function("quinn_one_stream", |b| {
        in_flight(b, &rt, |share| {
            let raw = Arc::clone(&raw);
            async move {
                for _ in 0..share {
                    let reply = raw.one_stream.request(tcp_frame(1)).await;
                    black_box(Envelope::decode(&reply).unwrap());
                }
            }
        });
    });
    group.bench_function("tcp_baseline", |b| {
        in_flight(b, &rt, |share| {
            let client = Arc::clone(&tcp);
            async move {
                for _ in 0..share {
                    let reply = client.request(tcp_frame(1)).await;
                    black_box(Envelope::decode(&reply).unwrap());
                }
            }
        });
    });
    group.finish();

    let mut group = c.benchmark_group("transport/one_way_stream");
    group.throughput(Throughput::Elements(1));
    group.bench_function("quic", |b| {
        b.iter_custom(|iters| {
            rt.block_on(quic.arrivals.wait_for(iters, async {
                for _ in 0..iters {
                    quic.client.send(2, envelope()).await.unwrap();
                }
            }))
        });
    });
    group.bench_function("quinn_one_stream", |b| {
        b.iter_custom(|iters| {
            rt.block_on(raw.one_stream_arrivals.wait_for(iters, async {
                for _ in 0..iters {
                    raw.one_stream.send(tcp_frame(2)).await;
                }
            }))
        });
    });
    group.bench_function("tcp_baseline", |b| {
        b.iter_custom(|iters| {
            rt.block_on(tcp_arrivals.wait_for(iters, async {
                for _ in 0..iters {
                    tcp.send(tcp_frame(2)).await;
                }
            }))
        });
    });
    group.finish();
}

criterion_group! {
    name = transport;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = benches
}
criterion_main!(transport);
