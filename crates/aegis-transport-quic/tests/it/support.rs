use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aegis_transport::{Channel, Envelope, Incoming, NodeId, Transport};
use aegis_transport_quic::{
    CertificateAuthority, QuicConfig, QuicTransport, TlsIdentity, tls, wire,
};
use bytes::Bytes;

pub fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

pub fn config(id: NodeId) -> QuicConfig {
    let mut config = QuicConfig::new(id, any_port());
    config.reconnect_backoff_min = Duration::from_millis(10);
    config.reconnect_backoff_max = Duration::from_millis(200);
    config.connect_timeout = Duration::from_secs(2);
    config
}

pub fn node(ca: &CertificateAuthority, id: NodeId) -> Arc<QuicTransport> {
    Arc::new(QuicTransport::bind(config(id), &ca.node_identity(id).unwrap()).unwrap())
}

/// Nodes that all know each other's addresses.
pub fn mesh(ca: &CertificateAuthority, ids: &[NodeId]) -> Vec<Arc<QuicTransport>> {
    let nodes: Vec<_> = ids.iter().map(|&id| node(ca, id)).collect();
    for a in &nodes {
        for b in &nodes {
            if a.local_id() != b.local_id() {
                a.set_peer(b.local_id(), b.local_addr());
            }
        }
    }
    nodes
}

pub fn request(seq: u32) -> Envelope {
    Envelope::new(Channel::Raft, 10, seq.to_be_bytes().to_vec())
}

pub fn seq_of(envelope: &Envelope) -> u32 {
    u32::from_be_bytes(envelope.payload[..4].try_into().unwrap())
}

/// Answers every request with the same payload and `kind + 1`; forwards one-way
/// messages to the returned channel.
pub fn serve_echo(
    node: Arc<QuicTransport>,
) -> tokio::sync::mpsc::UnboundedReceiver<(NodeId, Envelope)> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(incoming) = node.recv().await {
            match incoming {
                Incoming::Request {
                    envelope,
                    responder,
                    ..
                } => {
                    let reply =
                        Envelope::new(envelope.channel, envelope.kind + 1, envelope.payload);
                    let _ = responder.respond(reply);
                }
                Incoming::Message { source, envelope } => {
                    let _ = tx.send((source, envelope));
                }
            }
        }
    });
    rx
}

/// A bare quinn client, for speaking to a node in ways the transport never would.
pub struct RawClient {
    pub _endpoint: quinn::Endpoint,
    pub conn: quinn::Connection,
}

pub fn quinn_client_config(crypto: rustls::ClientConfig) -> quinn::ClientConfig {
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(crypto).unwrap();
    quinn::ClientConfig::new(Arc::new(quic))
}

/// Connects with `crypto` to node `target` at `addr`. The handshake may still succeed for
/// a client the server is about to reject: TLS 1.3 clients finish first.
pub async fn raw_connect(
    crypto: rustls::ClientConfig,
    target: NodeId,
    addr: SocketAddr,
) -> Result<RawClient, quinn::ConnectionError> {
    let endpoint = quinn::Endpoint::client(any_port()).unwrap();
    let name = aegis_transport_quic::node_server_name(target);
    let conn = endpoint
        .connect_with(quinn_client_config(crypto), addr, &name)
        .unwrap()
        .await?;
    Ok(RawClient {
        _endpoint: endpoint,
        conn,
    })
}

/// Connects as a proper cluster member and sends the hello for `claimed`.
pub async fn raw_member(
    identity: &TlsIdentity,
    claimed: NodeId,
    target: NodeId,
    addr: SocketAddr,
) -> RawClient {
    let client = raw_connect(tls::client_crypto(identity).unwrap(), target, addr)
        .await
        .unwrap();
    let mut hello = client.conn.open_uni().await.unwrap();
    hello.write_all(&wire::hello_frame(claimed)).await.unwrap();
    // Dropping finishes the stream after the hello; the connection stays up.
    drop(hello);
    client
}

/// Sends `bytes` on a new request stream and returns the response bytes or the failure.
pub async fn raw_exchange(conn: &quinn::Connection, bytes: &[u8]) -> Result<Bytes, String> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    send.write_all(bytes).await.map_err(|e| e.to_string())?;
    send.finish().map_err(|e| e.to_string())?;
    let data = recv
        .read_to_end(1 << 20)
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(Bytes::from(data))
}

/// A request frame, as a node's request stream carries it, for request `seq` with id `id`.
pub fn request_frame(id: u64, seq: u32) -> Vec<u8> {
    let mut frame = Vec::new();
    wire::append_request(id, &request(seq), 1 << 20, &mut frame).unwrap();
    frame
}

/// The answer in the one response frame `reply` holds, checked to answer request `id`.
pub fn answer_of(reply: &Bytes, id: u64) -> Envelope {
    let (answered, response) =
        wire::parse_response(&reply.slice(wire::FRAME_HEADER_LEN..)).expect("a response frame");
    assert_eq!(answered, id);
    match response {
        wire::Response::Answer(envelope) => envelope,
        other => panic!("expected an answer, got {other:?}"),
    }
}
