//! Requests and their responses, many at a time on one bidirectional stream per
//! connection (see [`wire`](crate::wire) for the frames).
//!
//! The client side is a [`RequestChannel`]: a writer task batches request frames onto the
//! stream, a reader task hands each response to the caller waiting on its id, and a
//! sweeper fails the callers whose request timeout passed. Keeping every request on one
//! stream, rather than opening a stream for each, is what lets a small request cost
//! about what a one-way message costs: on loopback with 64 requests in flight, quinn
//! itself managed about a third of a TCP connection's rate with a stream per request,
//! and about four fifths with one stream.
//!
//! The server side, [`serve_requests`], delivers each request to the inbox with a
//! [`Responder`] that queues the answer for the stream's answer writer, which batches
//! answers the same way. A stream whose bytes do not parse is reset and stopped with a
//! code saying why, which fails the requests waiting on it; other streams, and the
//! connection, go on.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use aegis_transport::{Envelope, Error, Incoming, NodeId, Responder};
use quinn::{Connection, RecvStream, SendStream, VarInt};
use tokio::sync::{mpsc, oneshot};

use crate::transport::{
    READ_CHUNK, Serve, StreamEnd, deliver_frames, encode_pieces, lock, read_error, write_error,
};
use crate::wire::{
    self, CODE_MALFORMED, FrameError, FrameSplitter, REQUEST_HEAD_LEN, RESPONSE_HEAD_LEN, Response,
    STATUS_NO_RESPONSE, STATUS_TOO_LARGE,
};

/// Most requests, or answers, encoded into one write.
const BATCH_MAX: usize = 1024;

/// What a caller waiting on a request is told.
type Reply = Result<Envelope, Error>;

/// This node's requests to one peer over one connection.
pub(crate) struct RequestChannel {
    conn: Connection,
    queue: mpsc::Sender<(u64, Envelope)>,
    waiting: Arc<Waiting>,
}

impl RequestChannel {
    /// Starts the writer, reader and sweeper of a channel on `send` and `recv`, a
    /// bidirectional stream just opened on `conn`.
    pub(crate) fn start(
        peer: NodeId,
        conn: Connection,
        (send, recv): (SendStream, RecvStream),
        config: &crate::QuicConfig,
    ) -> Arc<Self> {
        let sweep_period = sweep_period(config.request_timeout);
        let waiting = Arc::new(Waiting {
            peer,
            request_timeout: config.request_timeout,
            ticks_per_timeout: config
                .request_timeout
                .as_nanos()
                .div_ceil(sweep_period.as_nanos())
                .try_into()
                .unwrap_or(u64::MAX),
            ticks: AtomicU64::new(0),
            state: Mutex::new(WaitingState::default()),
        });
        let (queue, queued) = mpsc::channel(config.peer_queue_max);
        tokio::spawn(write_requests(
            send,
            queued,
            Arc::clone(&waiting),
            config.frame_size_max,
        ));
        tokio::spawn(read_responses(
            recv,
            Arc::clone(&waiting),
            config.frame_size_max,
        ));
        tokio::spawn(sweep(Arc::downgrade(&waiting), sweep_period));
        Arc::new(Self {
            conn,
            queue,
            waiting,
        })
    }

    /// Whether new requests can still go out on this channel.
    pub(crate) fn is_usable(&self) -> bool {
        !self.waiting.has_failed() && self.conn.close_reason().is_none()
    }

    /// Sends `envelope` and waits for its response, for about the request timeout (the
    /// sweeper counts it in ticks of an eighth of it, so it can run an eighth longer).
    /// Waiting for room in the queue never outlasts the instant `deadline` gives, which
    /// is asked for only then.
    ///
    /// # Errors
    /// `Ok(Err(_))` is the request's own outcome (timed out, unanswered, the channel
    /// failed). `Err(envelope)` hands the envelope back unsent when the channel had
    /// already failed, so the caller can try a fresh one.
    pub(crate) async fn request(
        &self,
        envelope: Envelope,
        deadline: impl FnOnce() -> Instant,
    ) -> Result<Reply, Envelope> {
        let Some((id, reply)) = self.waiting.register() else {
            return Err(envelope);
        };
        // Queued at once in the usual case; only a full queue waits, and never past the
        // deadline.
        let queued = match self.queue.try_send((id, envelope)) {
            Ok(()) => Ok(()),
            // Boxed, so the timer's room is taken only when the queue is full, not in
            // every request's future.
            Err(mpsc::error::TrySendError::Full(item)) => {
                match Box::pin(tokio::time::timeout_at(
                    deadline().into(),
                    self.queue.send(item),
                ))
                .await
                {
                    Ok(sent) => sent.map_err(drop),
                    Err(_elapsed) => {
                        self.waiting.forget(id);
                        return Ok(Err(self.waiting.timed_out()));
                    }
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(()),
        };
        if queued.is_err() {
            self.waiting.forget(id);
            return Ok(Err(self.waiting.gone()));
        }
        Ok(reply.await.unwrap_or_else(|_| Err(self.waiting.gone())))
    }
}

/// The requests of a channel waiting for their responses.
///
/// Time is counted in the sweeper's ticks rather than read from the clock for each
/// request: ids are handed out in order, so the waiters are in order of age too, and
/// the sweeper fails them from the oldest until one is younger than the timeout.
struct Waiting {
    peer: NodeId,
    request_timeout: Duration,
    /// Sweeper ticks in one request timeout.
    ticks_per_timeout: u64,
    /// Sweeper ticks so far.
    ticks: AtomicU64,
    state: Mutex<WaitingState>,
}

#[derive(Default)]
struct WaitingState {
    next_id: u64,
    by_id: BTreeMap<u64, Waiter>,
    /// What ended the channel; once set, every waiter has been told and none is taken.
    failure: Option<Error>,
}

struct Waiter {
    reply: oneshot::Sender<Reply>,
    /// The sweeper tick the request was sent at.
    sent_at: u64,
}

impl Waiting {
    /// A new request id and where its reply arrives; `None` once the channel failed.
    fn register(&self) -> Option<(u64, oneshot::Receiver<Reply>)> {
        let sent_at = self.ticks.load(Ordering::Relaxed);
        let mut state = lock(&self.state);
        if state.failure.is_some() {
            return None;
        }
        let id = state.next_id;
        state.next_id += 1;
        let (reply, answer) = oneshot::channel();
        let previous = state.by_id.insert(id, Waiter { reply, sent_at });
        debug_assert!(previous.is_none(), "request ids are not reused");
        Some((id, answer))
    }

    /// Hands `reply` to the caller of request `id`, if it is still waiting.
    fn answer(&self, id: u64, reply: Reply) {
        if let Some(waiter) = lock(&self.state).by_id.remove(&id) {
            let _ = waiter.reply.send(reply);
        }
    }

    fn forget(&self, id: u64) {
        lock(&self.state).by_id.remove(&id);
    }

    fn has_failed(&self) -> bool {
        lock(&self.state).failure.is_some()
    }

    /// Ends the channel: every waiting caller hears `failure`, later ones are refused.
    fn fail(&self, failure: Error) {
        let mut state = lock(&self.state);
        if state.failure.is_some() {
            return;
        }
        for (_, waiter) in std::mem::take(&mut state.by_id) {
            let _ = waiter.reply.send(Err(same_error(&failure, self.peer)));
        }
        state.failure = Some(failure);
    }

    /// Counts a sweeper tick and tells the callers whose timeout passed.
    fn tick(&self) {
        let now = self.ticks.fetch_add(1, Ordering::Relaxed) + 1;
        let mut state = lock(&self.state);
        while let Some(oldest) = state.by_id.first_entry() {
            if now - oldest.get().sent_at <= self.ticks_per_timeout {
                break;
            }
            let _ = oldest.remove().reply.send(Err(self.timed_out()));
        }
    }

    fn timed_out(&self) -> Error {
        Error::TimedOut {
            peer: self.peer,
            after: self.request_timeout,
        }
    }

    /// The error for a request that can no longer be answered: the channel's failure,
    /// or a closed stream.
    fn gone(&self) -> Error {
        match &lock(&self.state).failure {
            Some(failure) => same_error(failure, self.peer),
            None => Error::Unreachable {
                peer: self.peer,
                reason: "the request stream closed".to_owned(),
            },
        }
    }
}

/// A copy of `e`, told to another caller (the transport's errors are not `Clone`).
fn same_error(e: &Error, peer: NodeId) -> Error {
    match e {
        Error::Unreachable { peer, reason } => Error::Unreachable {
            peer: *peer,
            reason: reason.clone(),
        },
        Error::CertificateRejected { peer, reason } => Error::CertificateRejected {
            peer: *peer,
            reason: reason.clone(),
        },
        Error::Malformed { reason } => Error::Malformed {
            reason: reason.clone(),
        },
        Error::FrameTooLarge { len, max } => Error::FrameTooLarge {
            len: *len,
            max: *max,
        },
        Error::NoResponse { peer } => Error::NoResponse { peer: *peer },
        Error::Shutdown => Error::Shutdown,
        other => Error::Unreachable {
            peer,
            reason: other.to_string(),
        },
    }
}

/// How often a channel's sweeper ticks: an eighth of the request timeout, within 1 to
/// 100 ms.
fn sweep_period(request_timeout: Duration) -> Duration {
    (request_timeout / 8).clamp(Duration::from_millis(1), Duration::from_millis(100))
}

/// Fails the expired requests of a channel every `period`, until the channel is gone.
async fn sweep(waiting: Weak<Waiting>, period: Duration) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(waiting) = waiting.upgrade() else {
            return;
        };
        if waiting.has_failed() {
            return;
        }
        waiting.tick();
    }
}

/// Drains the channel's queue in batches onto the stream; finishes the stream once the
/// channel is dropped.
async fn write_requests(
    mut send: SendStream,
    mut queue: mpsc::Receiver<(u64, Envelope)>,
    waiting: Arc<Waiting>,
    frame_size_max: u32,
) {
    let mut batch = Vec::with_capacity(BATCH_MAX);
    while queue.recv_many(&mut batch, BATCH_MAX).await > 0 {
        let mut pieces = encode_pieces(
            &batch,
            |(_, envelope)| REQUEST_HEAD_LEN + envelope.encoded_len_max(),
            |(id, envelope), out| {
                // `request` let through only envelopes that fit a frame.
                let fits = wire::append_request(*id, envelope, frame_size_max, out);
                debug_assert!(fits.is_ok(), "request checked the frame size");
            },
        );
        batch.clear();
        if let Err(e) = send.write_all_chunks(&mut pieces).await {
            waiting.fail(write_error(waiting.peer, e));
            return;
        }
    }
    let _ = send.finish();
}

/// Hands each response frame to the caller waiting on its id, until the stream ends or
/// fails; then fails the callers still waiting.
async fn read_responses(mut recv: RecvStream, waiting: Arc<Waiting>, frame_size_max: u32) {
    let peer = waiting.peer;
    let mut frames = FrameSplitter::new(frame_size_max.saturating_add(RESPONSE_HEAD_LEN as u32));
    let failure = loop {
        match frames.next_frame() {
            Ok(Some(body)) => match wire::parse_response(&body) {
                Ok((id, Response::Answer(envelope))) => {
                    waiting.answer(id, Ok(envelope));
                    continue;
                }
                Ok((id, Response::Status(STATUS_NO_RESPONSE))) => {
                    waiting.answer(id, Err(Error::NoResponse { peer }));
                    continue;
                }
                Ok((id, Response::Status(_))) => {
                    let reason = format!("peer {peer} could not send an answer that large");
                    waiting.answer(id, Err(Error::Malformed { reason }));
                    continue;
                }
                Err(e) => break e,
            },
            Ok(None) => {}
            Err(e) => break read_error(peer, e),
        }
        match recv.read_chunk(READ_CHUNK, true).await {
            Ok(Some(chunk)) => frames.push(&chunk.bytes),
            Ok(None) => {
                break Error::Unreachable {
                    peer,
                    reason: "the peer closed the request stream".to_owned(),
                };
            }
            Err(e) => break read_error(peer, FrameError::Io(e.into())),
        }
    };
    waiting.fail(failure);
    let _ = recv.stop(VarInt::from_u32(CODE_MALFORMED));
}

/// What a request stream's answer writer is handed.
enum Outgoing {
    /// The answer to request `id`, or `None` when it was dropped unanswered.
    Answer(u64, Option<Envelope>),
    /// The answer to request `id` was larger than the frame size limit.
    TooLarge(u64),
}

/// Serves one request stream of `source`: delivers every request to the inbox, in
/// order, waiting when the inbox is full. A frame that does not parse refuses the stream.
pub(crate) async fn serve_requests(
    serve: Arc<Serve>,
    source: NodeId,
    send: SendStream,
    mut recv: RecvStream,
) {
    let frame_size_max = serve.frame_size_max;
    // Every request delivered holds a place in the answer queue until its answer (or
    // its "no response") is queued: the queue never overflows, and a peer that does not
    // read its answers stops being read once it has this many outstanding.
    let (answers, queued) = mpsc::channel(serve.requests_in_flight_max);
    let (refuse, refused) = oneshot::channel();
    tokio::spawn(write_answers(send, queued, refused, frame_size_max));
    let limit = frame_size_max.saturating_add(REQUEST_HEAD_LEN as u32);
    let end = deliver_frames(&serve, &mut recv, limit, |body| {
        let place = answers.clone().reserve_owned();
        async move {
            let (id, envelope) = wire::parse_request(&body).ok()?;
            // Only a writer gone with its stream refuses a place.
            let place = place.await.ok()?;
            // A request dropped unanswered (with the inbox, say) queues a "no response".
            let responder =
                Responder::from_fn(move |answer| respond(place, id, answer, frame_size_max));
            Some(Incoming::Request {
                source,
                envelope,
                responder,
            })
        }
    })
    .await;
    // Once the client is done, the answers still to come go out before the writer
    // finishes the stream.
    if let StreamEnd::Refused(code) = end {
        let _ = recv.stop(VarInt::from_u32(code));
        let _ = refuse.send(code);
    }
}

/// Queues the answer to request `id` for the stream's writer, in the `place` its request
/// holds. An answer too large for a frame is refused here, so the responder hears of it,
/// and the requester is told.
fn respond(
    place: mpsc::OwnedPermit<Outgoing>,
    id: u64,
    answer: Option<Envelope>,
    frame_size_max: u32,
) -> Result<(), Error> {
    let too_large = match &answer {
        Some(envelope) if envelope.encoded_len_max() > frame_size_max as usize => {
            wire::encode_frame(envelope, frame_size_max).err()
        }
        _ => None,
    };
    let outgoing = match too_large {
        Some(_) => Outgoing::TooLarge(id),
        None => Outgoing::Answer(id, answer),
    };
    let queue = place.send(outgoing);
    match too_large {
        Some(e) => Err(e),
        None if queue.is_closed() => Err(Error::RequesterGone),
        None => Ok(()),
    }
}

/// Writes a request stream's answers in batches; finishes the stream once the client is
/// done and every request was answered, or resets it with the code `refused` brings.
async fn write_answers(
    mut send: SendStream,
    mut queued: mpsc::Receiver<Outgoing>,
    mut refused: oneshot::Receiver<u32>,
    frame_size_max: u32,
) {
    let mut batch = Vec::with_capacity(BATCH_MAX);
    let mut refusable = true;
    loop {
        let taken = tokio::select! {
            biased;
            code = &mut refused, if refusable => match code {
                Ok(code) => {
                    let _ = send.reset(VarInt::from_u32(code));
                    return;
                }
                // The stream was read to its end: no refusal will come.
                Err(_) => {
                    refusable = false;
                    continue;
                }
            },
            taken = queued.recv_many(&mut batch, BATCH_MAX) => taken,
        };
        if taken == 0 {
            break;
        }
        let mut pieces = encode_pieces(
            &batch,
            |outgoing| match outgoing {
                Outgoing::Answer(_, Some(envelope)) => {
                    RESPONSE_HEAD_LEN + envelope.encoded_len_max()
                }
                _ => RESPONSE_HEAD_LEN,
            },
            |outgoing, out| match outgoing {
                Outgoing::Answer(id, answer) => {
                    let written = wire::append_response(*id, answer.as_ref(), frame_size_max, out);
                    debug_assert!(written.is_ok(), "respond checked the frame size");
                }
                Outgoing::TooLarge(id) => wire::append_status(*id, STATUS_TOO_LARGE, out),
            },
        );
        batch.clear();
        if send.write_all_chunks(&mut pieces).await.is_err() {
            return;
        }
    }
    let _ = send.finish();
}
