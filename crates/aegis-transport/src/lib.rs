//! The message layer of Aegis: how nodes address each other and what travels between them.
//!
//! - [`Transport`] is the contract every transport meets: one-way [`send`](Transport::send),
//!   [`request`](Transport::request) with exactly one response, and
//!   [`recv`](Transport::recv) for everything that arrives. Nodes are addressed by
//!   [`NodeId`].
//! - [`Envelope`] is what travels: a [`Channel`] tag (Raft, transactions, membership, ...)
//!   and a kind, so several protocols share one connection, plus opaque payload bytes.
//!   On the wire it is postcard, led by a format version ([`ENVELOPE_VERSION`]); decoding
//!   untrusted bytes returns [`Error`] and never panics.
//! - [`MemoryNetwork`] is an in-process network for tests of every other crate, with
//!   bounded per-link queues (a full queue makes `send` wait) and seeded fault injection:
//!   drop, delay, duplicate, reorder, partition and heal.
//!
//! The QUIC implementation lives in `aegis-transport-quic`.
//!
//! ```
//! use aegis_transport::{Channel, Envelope, Incoming, MemoryConfig, MemoryNetwork, Transport};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let network = MemoryNetwork::new(MemoryConfig::default(), 1)?;
//! let client = network.join(1)?;
//! let server = network.join(2)?;
//! tokio::spawn(async move {
//!     while let Ok(Incoming::Request { envelope, responder, .. }) = server.recv().await {
//!         let mut echo = envelope.clone();
//!         echo.kind += 1;
//!         let _ = responder.respond(echo);
//!     }
//! });
//! let answer = client.request(2, Envelope::new(Channel::Membership, 10, &b"ping"[..])).await?;
//! assert_eq!((answer.kind, &answer.payload[..]), (11, &b"ping"[..]));
//! # Ok::<(), aegis_transport::Error>(())
//! # }).unwrap();
//! ```

mod envelope;
mod error;
pub mod memory;
mod transport;

pub use envelope::{Channel, ENVELOPE_VERSION, Envelope};
pub use error::Error;
pub use memory::{FaultConfig, MemoryConfig, MemoryNetwork, MemoryTransport, NetworkStats};
pub use transport::{AnswerFn, AnswerSink, Incoming, PendingResponse, Responder, Transport};

/// A node's identity across the workspace.
pub type NodeId = u64;
