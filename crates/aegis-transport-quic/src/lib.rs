//! QUIC transport for Aegis: [`QuicTransport`] implements [`aegis_transport::Transport`]
//! over quinn, secured by rustls with mutual TLS against a cluster CA.
//!
//! Contract:
//! - TLS 1.3 only, with the ring provider built into every configuration (no process-wide
//!   default provider is consulted). Both sides present a certificate signed by the cluster
//!   CA; a client without one, with one from another CA, or with an expired one fails the
//!   handshake and nothing it sent reaches [`recv`](aegis_transport::Transport::recv).
//!   A client must also identify itself with a hello whose node id matches its certificate.
//! - Requests to a peer share one bidirectional stream per connection, each with an id,
//!   batched into large writes both ways and answered in any order; one-way messages are
//!   batched onto one unidirectional stream per peer. (A stream per request cost more
//!   than half the request rate: see the crate's benchmark.) Frames are length-prefixed
//!   ([`wire`]) and the length is checked against `frame_size_max` before anything is
//!   allocated. A malformed stream is closed on its own, failing the requests on it; the
//!   connection and its other streams go on.
//! - Dials are retried with exponential backoff, connections are kept alive below the idle
//!   timeout, and the concurrent-stream limit comes from the configuration.
//! - Packets start at 1200 bytes; path MTU discovery raises them up to
//!   [`udp_payload_max`](QuicConfig::udp_payload_max), which defaults to a larger bound
//!   for endpoints listening on loopback, so each packet carries many small messages.
//! - [`CertificateAuthority`] generates the CA and node certificates (rcgen).
//! - `QuicTransport` also has `send`, `request` and `recv` as its own `async fn`s, which
//!   the trait's methods call. They skip the boxed future that each call through the
//!   object-safe trait allocates.
//!
//! This is a driver crate: it reads the clock for backoff and certificate validity.
//!
//! ```
//! use aegis_transport::{Channel, Envelope, Incoming};
//! use aegis_transport_quic::{CertificateAuthority, QuicConfig, QuicTransport};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let ca = CertificateAuthority::generate("demo")?;
//! let any_port = "127.0.0.1:0".parse().unwrap();
//! let server = QuicTransport::bind(QuicConfig::new(1, any_port), &ca.node_identity(1)?)?;
//! let client = QuicTransport::bind(QuicConfig::new(2, any_port), &ca.node_identity(2)?)?;
//! client.set_peer(1, server.local_addr());
//! tokio::spawn(async move {
//!     while let Ok(Incoming::Request { envelope, responder, .. }) = server.recv().await {
//!         let _ = responder.respond(envelope);
//!     }
//! });
//! let answer = client.request(1, Envelope::new(Channel::Raft, 3, &b"hi"[..])).await.unwrap();
//! assert_eq!(&answer.payload[..], b"hi");
//! client.shutdown().await;
//! # Ok::<(), aegis_transport_quic::SetupError>(())
//! # }).unwrap();
//! ```
#![allow(
    clippy::disallowed_methods,
    reason = "driver crate: reconnect backoff and certificate validity read the clock"
)]

mod certs;
mod config;
mod error;
mod outbox;
mod requests;
pub mod tls;
mod transport;
pub mod wire;

pub use aegis_transport::{Error, NodeId};
pub use certs::{CertificateAuthority, Date, NodeCertificate, Validity, node_server_name};
pub use config::QuicConfig;
pub use error::Error as SetupError;
pub use tls::TlsIdentity;
pub use transport::QuicTransport;
