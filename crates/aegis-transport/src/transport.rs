use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::oneshot;

use crate::{Envelope, Error, NodeId};

/// Something that moves [`Envelope`]s between nodes addressed by [`NodeId`].
///
/// Delivery contract, shared by every implementation:
/// - [`send`](Transport::send) is one-way and best effort: at most once, no ordering
///   promise across reconnects. It waits (back-pressure) while the per-peer queue is full;
///   [`try_send`](Transport::try_send) refuses instead.
/// - [`request`](Transport::request) delivers one request and awaits exactly one
///   response, or fails with a typed [`Error`] (timeout, no response, unreachable).
/// - [`recv`](Transport::recv) yields incoming messages and requests from every peer
///   in arrival order; a request carries a [`Responder`] to answer it.
#[async_trait]
pub trait Transport: Send + Sync {
    /// This node's id.
    fn local_id(&self) -> NodeId;

    /// Queues a one-way message for `target`.
    ///
    /// # Errors
    /// [`Error::PeerUnknown`] for an id with no address, [`Error::Shutdown`] after
    /// shutdown, [`Error::Unreachable`] when the transport knows delivery cannot happen.
    async fn send(&self, target: NodeId, envelope: Envelope) -> Result<(), Error>;

    /// Queues a one-way message for `target` without waiting, from any thread, inside
    /// an async runtime or not: for a caller that would rather drop a message than wait
    /// (Raft, which retries, from its own thread).
    ///
    /// # Errors
    /// [`Error::QueueFull`] when the per-peer queue is full, and as [`send`](Self::send).
    fn try_send(&self, target: NodeId, envelope: Envelope) -> Result<(), Error>;

    /// Sends a request to `target` and waits for its response.
    ///
    /// # Errors
    /// Any of the transport's errors; see [`Error`].
    async fn request(&self, target: NodeId, envelope: Envelope) -> Result<Envelope, Error>;

    /// Waits for the next incoming message or request.
    ///
    /// # Errors
    /// [`Error::Shutdown`] once the transport is shut down.
    async fn recv(&self) -> Result<Incoming, Error>;
}

/// A message or request that arrived from a peer.
#[derive(Debug)]
pub enum Incoming {
    /// A one-way message.
    Message {
        /// The authenticated sender.
        source: NodeId,
        /// The message.
        envelope: Envelope,
    },
    /// A request that expects exactly one response through `responder`.
    Request {
        /// The authenticated sender.
        source: NodeId,
        /// The request.
        envelope: Envelope,
        /// Answers the request; dropping it answers with [`Error::NoResponse`].
        responder: Responder,
    },
}

impl Incoming {
    /// The node this came from.
    #[must_use]
    pub fn source(&self) -> NodeId {
        match self {
            Self::Message { source, .. } | Self::Request { source, .. } => *source,
        }
    }

    /// The envelope carried.
    #[must_use]
    pub fn envelope(&self) -> &Envelope {
        match self {
            Self::Message { envelope, .. } | Self::Request { envelope, .. } => envelope,
        }
    }
}

/// The answering half of a request.
///
/// Transports create it as a channel ([`Responder::pair`]), around a function that writes
/// the answer straight onto the wire ([`Responder::from_fn`]), which saves a task
/// hand-off per request, or as a token for an [`AnswerSink`] shared by many requests
/// ([`Responder::from_sink`]), which also saves the function's allocation. Dropping it
/// unanswered tells the requester [`Error::NoResponse`].
pub struct Responder {
    inner: Option<Answer>,
}

/// Delivers a response (`Some`) or the news that there will be none (`None`).
pub type AnswerFn = Box<dyn FnOnce(Option<Envelope>) -> Result<(), Error> + Send>;

/// Where the answers to many requests go, each named by a token the transport chose:
/// for example the queue of a stream's answer writer.
pub trait AnswerSink: Send + Sync {
    /// Delivers the answer to request `token`: the response (`Some`), or `None` when its
    /// responder was dropped unanswered. Called once per responder; must not block.
    ///
    /// # Errors
    /// As [`Responder::respond`].
    fn answer(&self, token: u64, answer: Option<Envelope>) -> Result<(), Error>;
}

enum Answer {
    Channel(oneshot::Sender<Envelope>),
    Direct(AnswerFn),
    Sink(Arc<dyn AnswerSink>, u64),
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.inner {
            Some(Answer::Channel(_)) => "channel",
            Some(Answer::Direct(_)) => "direct",
            Some(Answer::Sink(..)) => "sink",
            None => "answered",
        };
        f.debug_struct("Responder").field("kind", &kind).finish()
    }
}

/// The waiting half of a channel [`Responder`], held by the transport that delivered it.
#[derive(Debug)]
pub struct PendingResponse {
    rx: oneshot::Receiver<Envelope>,
}

impl Responder {
    /// Creates a connected responder and pending response.
    #[must_use]
    pub fn pair() -> (Responder, PendingResponse) {
        let (tx, rx) = oneshot::channel();
        (
            Responder {
                inner: Some(Answer::Channel(tx)),
            },
            PendingResponse { rx },
        )
    }

    /// Creates a responder that calls `answer` exactly once: with the response, or with
    /// `None` when the responder is dropped unanswered. `answer` must not block.
    #[must_use]
    pub fn from_fn(
        answer: impl FnOnce(Option<Envelope>) -> Result<(), Error> + Send + 'static,
    ) -> Responder {
        Responder {
            inner: Some(Answer::Direct(Box::new(answer))),
        }
    }

    /// Creates a responder that answers through `sink` with `token`: exactly once, with
    /// the response, or with `None` when the responder is dropped unanswered.
    #[must_use]
    pub fn from_sink(sink: Arc<dyn AnswerSink>, token: u64) -> Responder {
        Responder {
            inner: Some(Answer::Sink(sink, token)),
        }
    }

    /// Sends the response.
    ///
    /// # Errors
    /// [`Error::RequesterGone`] when nobody waits for the answer any more (timed out,
    /// connection lost, transport shut down), or the transport's error for a response it
    /// cannot carry (for example [`Error::FrameTooLarge`]).
    pub fn respond(mut self, envelope: Envelope) -> Result<(), Error> {
        match self.inner.take().expect("a responder answers once") {
            Answer::Channel(tx) => tx.send(envelope).map_err(|_| Error::RequesterGone),
            Answer::Direct(answer) => answer(Some(envelope)),
            Answer::Sink(sink, token) => sink.answer(token, Some(envelope)),
        }
    }

    /// Whether the requester is known to have stopped waiting. Responders made with
    /// [`from_fn`](Self::from_fn) or [`from_sink`](Self::from_sink) cannot tell and
    /// report `false`.
    #[must_use]
    pub fn is_abandoned(&self) -> bool {
        match &self.inner {
            Some(Answer::Channel(tx)) => tx.is_closed(),
            Some(Answer::Direct(_) | Answer::Sink(..)) => false,
            None => true,
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        // Nobody is left to tell if saying "no answer" fails.
        match self.inner.take() {
            Some(Answer::Direct(answer)) => {
                let _ = answer(None);
            }
            Some(Answer::Sink(sink, token)) => {
                let _ = sink.answer(token, None);
            }
            Some(Answer::Channel(_)) | None => {}
        }
    }
}

impl PendingResponse {
    /// Waits for the response; `None` when the responder was dropped unanswered.
    pub async fn wait(self) -> Option<Envelope> {
        self.rx.await.ok()
    }
}
