//! Requests and their responses, many at a time on one bidirectional stream per
//! connection (see [`wire`](crate::wire) for the frames).
//!
//! The client side is a [`RequestChannel`]: callers encode their request frames into the
//! channel's [`Outbox`], whose writer task puts each batch on the stream as one write; a
//! reader task leaves each response in the slot of the caller waiting on its id; and a
//! sweeper fails the callers whose request timeout passed. Keeping every request on one
//! stream, rather than opening a stream for each, is what lets a small request cost
//! about what a one-way message costs: on loopback with 64 requests in flight, quinn
//! itself managed about a third of a TCP connection's rate with a stream per request,
//! and about four fifths with one stream.
//!
//! The server side, [`serve_requests`], delivers each request to the inbox with a
//! [`Responder`] that encodes the answer into the stream's outbox, whose writer batches
//! answers the same way. A stream whose bytes do not parse is reset and stopped with a
//! code saying why, which fails the requests waiting on it; other streams, and the
//! connection, go on.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use aegis_transport::{AnswerSink, Envelope, Error, Incoming, NodeId, Responder};
use bytes::Bytes;
use quinn::{Connection, RecvStream, SendStream, VarInt};
use tokio::sync::{Notify, oneshot};

use crate::outbox::{Outbox, Refused};
use crate::transport::{
    READ_CHUNK, Serve, StreamEnd, check_fits, deliver_frames, lock, read_error, write_error,
};
use crate::wire::{
    self, CODE_MALFORMED, FrameError, FrameSplitter, REQUEST_HEAD_LEN, RESPONSE_HEAD_LEN, Response,
    STATUS_NO_RESPONSE, STATUS_TOO_LARGE,
};

/// What a caller waiting on a request is told.
type Reply = Result<Envelope, Error>;

/// This node's requests to one peer over one connection.
pub(crate) struct RequestChannel {
    conn: Connection,
    /// Request frames for the writer; it holds at most `peer_queue_max`.
    outbox: Arc<Outbox>,
    waiting: Arc<Waiting>,
    frame_size_max: u32,
}

impl Drop for RequestChannel {
    fn drop(&mut self) {
        // The writer sends what is queued, then finishes the stream.
        self.outbox.seal();
    }
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
        let outbox = Arc::new(Outbox::new(config.peer_queue_max));
        tokio::spawn(write_requests(
            send,
            Arc::clone(&outbox),
            Arc::clone(&waiting),
        ));
        tokio::spawn(read_responses(
            recv,
            Arc::clone(&waiting),
            config.frame_size_max,
        ));
        tokio::spawn(sweep(Arc::downgrade(&waiting), sweep_period));
        Arc::new(Self {
            conn,
            outbox,
            waiting,
            frame_size_max: config.frame_size_max,
        })
    }

    /// Puts the frame of request `id` in the writer's outbox, if there is room.
    fn put(&self, id: u64, envelope: &Envelope) -> Result<(), Refused> {
        let frame_size_max = self.frame_size_max;
        self.outbox.try_put(|out| {
            // `QuicTransport::request` let through only envelopes that fit a frame.
            let fits = wire::append_request(id, envelope, frame_size_max, out);
            debug_assert!(fits.is_ok(), "request checked the frame size");
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
        // The task is told of the reply through the waker it registers with.
        let waker = std::future::poll_fn(|cx| Poll::Ready(cx.waker().clone())).await;
        let Some(id) = self.waiting.register(waker) else {
            return Err(envelope);
        };
        // From here on, giving up on the request (or dropping this future) frees its slot.
        let mut reply = ReplyFuture {
            waiting: &self.waiting,
            id,
            done: false,
            registered: true,
        };
        // Queued at once in the usual case; only a full queue waits, and never past the
        // deadline.
        let queued = match self.put(id, &envelope) {
            Err(Refused::Full) => {
                // Awaiting may move the request to another task's waker.
                reply.registered = false;
                let wait = async {
                    loop {
                        self.outbox.room().await;
                        match self.put(id, &envelope) {
                            Err(Refused::Full) => {}
                            queued => return queued,
                        }
                    }
                };
                // Boxed, so the timer's room is taken only when the queue is full, not in
                // every request's future.
                match Box::pin(tokio::time::timeout_at(deadline().into(), wait)).await {
                    Ok(queued) => queued,
                    Err(_elapsed) => return Ok(Err(self.waiting.timed_out())),
                }
            }
            queued => queued,
        };
        if queued.is_err() {
            return Ok(Err(self.waiting.gone()));
        }
        Ok(reply.await)
    }
}

/// The requests of a channel waiting for their responses.
///
/// Each waits in a reusable slot, where its reply is left for it, and a request's id
/// names its slot and the slot's generation: answering one takes no search and no
/// allocation, and an answer for a request that was already given up on finds a newer
/// generation and is dropped. Time is counted in the sweeper's ticks rather than read
/// from the clock for each request.
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
    slots: Vec<Slot>,
    /// Indexes of the empty slots.
    free: Vec<u32>,
    /// What ended the channel; once set, every waiter has its reply and none is taken.
    failure: Option<Error>,
}

#[derive(Default)]
struct Slot {
    /// Counts the slot's uses, so a stale id does not match its current request.
    generation: u32,
    request: Request,
}

#[derive(Default)]
enum Request {
    #[default]
    None,
    /// Sent at this sweeper tick, and waiting for its reply.
    Waiting { sent_at: u64, waker: Option<Waker> },
    /// Its reply, not yet picked up by the caller.
    Replied(Reply),
}

/// The id of the request in slot `index` at `generation`.
fn request_id(index: u32, generation: u32) -> u64 {
    (u64::from(generation) << 32) | u64::from(index)
}

impl WaitingState {
    /// The slot of request `id`, if it is still in one.
    fn slot(&mut self, id: u64) -> Option<&mut Slot> {
        let index = id as u32;
        let slot = self.slots.get_mut(index as usize)?;
        (request_id(index, slot.generation) == id && !matches!(slot.request, Request::None))
            .then_some(slot)
    }

    /// Empties the slot of request `id`, for reuse.
    fn free(&mut self, id: u64) -> Request {
        let Some(slot) = self.slot(id) else {
            return Request::None;
        };
        let request = std::mem::take(&mut slot.request);
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id as u32);
        request
    }

    /// Leaves `reply` for request `id` if it is still waiting, and returns the waker to
    /// wake once the state is unlocked.
    fn reply(&mut self, id: u64, reply: Reply) -> Option<Waker> {
        let slot = self.slot(id)?;
        let Request::Waiting { waker, .. } = &mut slot.request else {
            return None;
        };
        let waker = waker.take();
        slot.request = Request::Replied(reply);
        waker
    }
}

impl Waiting {
    /// A new request id, whose reply wakes `waker`; `None` once the channel failed.
    fn register(&self, waker: Waker) -> Option<u64> {
        let sent_at = self.ticks.load(Ordering::Relaxed);
        let mut state = lock(&self.state);
        if state.failure.is_some() {
            return None;
        }
        let index = match state.free.pop() {
            Some(index) => index,
            None => {
                let index = u32::try_from(state.slots.len()).ok()?;
                state.slots.push(Slot::default());
                index
            }
        };
        let slot = &mut state.slots[index as usize];
        debug_assert!(
            matches!(slot.request, Request::None),
            "a free slot is empty"
        );
        slot.request = Request::Waiting {
            sent_at,
            waker: Some(waker),
        };
        Some(request_id(index, slot.generation))
    }

    /// Leaves each reply for its request, if that is still waiting, and wakes the
    /// callers. `replies` is emptied.
    fn answer(&self, replies: &mut Vec<(u64, Reply)>, wakers: &mut Vec<Waker>) {
        {
            let mut state = lock(&self.state);
            for (id, reply) in replies.drain(..) {
                wakers.extend(state.reply(id, reply));
            }
        }
        for waker in wakers.drain(..) {
            waker.wake();
        }
    }

    fn has_failed(&self) -> bool {
        lock(&self.state).failure.is_some()
    }

    /// Ends the channel: every waiting caller hears `failure`, later ones are refused.
    fn fail(&self, failure: Error) {
        let mut wakers = Vec::new();
        {
            let mut state = lock(&self.state);
            if state.failure.is_some() {
                return;
            }
            for slot in &mut state.slots {
                if let Request::Waiting { waker, .. } = &mut slot.request {
                    wakers.extend(waker.take());
                    slot.request = Request::Replied(Err(same_error(&failure, self.peer)));
                }
            }
            state.failure = Some(failure);
        }
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Counts a sweeper tick and tells the callers whose timeout passed.
    fn tick(&self) {
        let now = self.ticks.fetch_add(1, Ordering::Relaxed) + 1;
        let mut wakers = Vec::new();
        for slot in &mut lock(&self.state).slots {
            if let Request::Waiting { sent_at, waker } = &mut slot.request
                && now - *sent_at > self.ticks_per_timeout
            {
                wakers.extend(waker.take());
                slot.request = Request::Replied(Err(self.timed_out()));
            }
        }
        wakers.into_iter().for_each(Waker::wake);
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

/// Waits for the reply to request `id`; dropped before it, frees the request's slot.
struct ReplyFuture<'a> {
    waiting: &'a Waiting,
    id: u64,
    done: bool,
    /// The request registered the waker of this poll: the first poll only waits. A reply
    /// already there has woken the task, which polls again.
    registered: bool,
}

impl Future for ReplyFuture<'_> {
    type Output = Reply;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Reply> {
        if std::mem::take(&mut self.registered) {
            return Poll::Pending;
        }
        let mut state = lock(&self.waiting.state);
        let request = match state.slot(self.id) {
            Some(slot) => match &mut slot.request {
                Request::Waiting { waker, .. } => {
                    if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        *waker = Some(cx.waker().clone());
                    }
                    return Poll::Pending;
                }
                _ => state.free(self.id),
            },
            None => Request::None,
        };
        drop(state);
        self.done = true;
        match request {
            Request::Replied(reply) => Poll::Ready(reply),
            // Not reached: a request keeps its slot until its reply is picked up.
            Request::None | Request::Waiting { .. } => Poll::Ready(Err(self.waiting.gone())),
        }
    }
}

impl Drop for ReplyFuture<'_> {
    fn drop(&mut self) {
        if !self.done {
            lock(&self.waiting.state).free(self.id);
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

/// Writes the channel's request frames onto the stream as they are put in; finishes the
/// stream once the channel is dropped.
async fn write_requests(mut send: SendStream, outbox: Arc<Outbox>, waiting: Arc<Waiting>) {
    while let Some((bytes, _)) = outbox.take().await {
        if let Err(e) = send.write_chunk(Bytes::from(bytes)).await {
            waiting.fail(write_error(waiting.peer, e));
            outbox.abandon();
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
    // The replies a received piece holds are handed over together, under one lock.
    let mut replies = Vec::new();
    let mut wakers = Vec::new();
    let failure = loop {
        let failure = loop {
            match frames.next_frame() {
                Ok(Some(body)) => match wire::parse_response(&body) {
                    Ok((id, Response::Answer(envelope))) => replies.push((id, Ok(envelope))),
                    Ok((id, Response::Status(STATUS_NO_RESPONSE))) => {
                        replies.push((id, Err(Error::NoResponse { peer })));
                    }
                    Ok((id, Response::Status(_))) => {
                        let reason = format!("peer {peer} could not send an answer that large");
                        replies.push((id, Err(Error::Malformed { reason })));
                    }
                    Err(e) => break Some(e),
                },
                Ok(None) => break None,
                Err(e) => break Some(read_error(peer, e)),
            }
        };
        waiting.answer(&mut replies, &mut wakers);
        if let Some(failure) = failure {
            break failure;
        }
        match recv.read_chunk(READ_CHUNK, true).await {
            Ok(Some(chunk)) => frames.push(chunk.bytes),
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

/// Serves one request stream of `source`: delivers every request to the inbox, in
/// order, waiting when the inbox is full. A frame that does not parse refuses the stream.
pub(crate) async fn serve_requests(
    serve: Arc<Serve>,
    source: NodeId,
    send: SendStream,
    mut recv: RecvStream,
) {
    let frame_size_max = serve.frame_size_max;
    // Every request delivered holds a place until the writer takes its answer (or its
    // "no response") from the outbox: a peer that does not read its answers stops being
    // read once it has this many outstanding.
    let places = Arc::new(Places::new(serve.requests_in_flight_max));
    let outbox = Arc::new(Outbox::new(usize::MAX));
    let sink: Arc<dyn AnswerSink> = Arc::new(AnswerQueue {
        outbox: Arc::clone(&outbox),
        frame_size_max,
    });
    let (refuse, refused) = oneshot::channel();
    tokio::spawn(write_answers(send, outbox, Arc::clone(&places), refused));
    let limit = frame_size_max.saturating_add(REQUEST_HEAD_LEN as u32);
    let end = deliver_frames(&serve, &mut recv, limit, |body| {
        let parsed = wire::parse_request(&body).ok();
        // A place is usually free at once; only a full stream waits for one.
        let wait_for_place = (parsed.is_some() && !places.try_take()).then(|| Arc::clone(&places));
        let sink = Arc::clone(&sink);
        async move {
            let (id, envelope) = parsed?;
            // Only a writer gone with its stream closes the places.
            if let Some(places) = wait_for_place
                && !places.take().await
            {
                return None;
            }
            // A request dropped unanswered (with the inbox, say) queues a "no response".
            Some(Incoming::Request {
                source,
                envelope,
                responder: Responder::from_sink(sink, id),
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

/// The answer frames of a request stream, for its writer, which every responder of the
/// stream answers through. An answer too large for a frame is refused here, so the
/// responder hears of it, and the requester is told.
struct AnswerQueue {
    outbox: Arc<Outbox>,
    frame_size_max: u32,
}

impl AnswerSink for AnswerQueue {
    fn answer(&self, id: u64, answer: Option<Envelope>) -> Result<(), Error> {
        let frame_size_max = self.frame_size_max;
        let too_large = answer
            .as_ref()
            .and_then(|envelope| check_fits(envelope, frame_size_max).err());
        let queued = self.outbox.try_put(|out| {
            if too_large.is_some() {
                wire::append_status(id, STATUS_TOO_LARGE, out);
            } else {
                let written = wire::append_response(id, answer.as_ref(), frame_size_max, out);
                debug_assert!(written.is_ok(), "the frame size was checked");
            }
        });
        match too_large {
            Some(e) => Err(e),
            None if queued.is_err() => Err(Error::RequesterGone),
            None => Ok(()),
        }
    }
}

impl Drop for AnswerQueue {
    fn drop(&mut self) {
        // Every responder is gone: the writer sends what is queued, then finishes.
        self.outbox.seal();
    }
}

/// The places of a request stream: how many of its requests were delivered and their
/// answers not yet taken by the writer. Only the stream's reader takes places and only
/// its writer gives them back, so a counter and a wake-up do.
struct Places {
    max: usize,
    taken: AtomicUsize,
    closed: AtomicBool,
    given_back: Notify,
}

impl Places {
    fn new(max: usize) -> Places {
        Places {
            max,
            taken: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            given_back: Notify::new(),
        }
    }

    /// Takes a place if one is free. Called by the reader only.
    fn try_take(&self) -> bool {
        if self.taken.load(Ordering::Acquire) >= self.max {
            return false;
        }
        self.taken.fetch_add(1, Ordering::AcqRel);
        true
    }

    /// Waits for a place and takes it; `false` once the places are closed.
    async fn take(&self) -> bool {
        loop {
            let given_back = self.given_back.notified();
            tokio::pin!(given_back);
            // Registered before checking, so a place given back in between wakes it.
            given_back.as_mut().enable();
            if self.closed.load(Ordering::Acquire) {
                return false;
            }
            if self.try_take() {
                return true;
            }
            given_back.await;
        }
    }

    /// Frees `count` places. Called by the writer only.
    fn give_back(&self, count: usize) {
        let before = self.taken.fetch_sub(count, Ordering::AcqRel);
        debug_assert!(before >= count, "more places given back than taken");
        if before >= self.max {
            self.given_back.notify_one();
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.given_back.notify_one();
    }
}

/// Closes a stream's places when dropped.
struct ClosePlaces<'a>(&'a Places);

impl Drop for ClosePlaces<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Writes a request stream's answer frames as they are put in; finishes the stream once
/// the client is done and every request was answered, or resets it with the code
/// `refused` brings.
async fn write_answers(
    mut send: SendStream,
    outbox: Arc<Outbox>,
    places: Arc<Places>,
    mut refused: oneshot::Receiver<u32>,
) {
    // Whatever ends the writer, the stream's reader stops waiting for places, and
    // responders stop queueing answers.
    let _close_places = ClosePlaces(&places);
    let mut refusable = true;
    loop {
        let taken = tokio::select! {
            biased;
            code = &mut refused, if refusable => match code {
                Ok(code) => {
                    let _ = send.reset(VarInt::from_u32(code));
                    outbox.abandon();
                    return;
                }
                // The stream was read to its end: no refusal will come.
                Err(_) => {
                    refusable = false;
                    continue;
                }
            },
            taken = outbox.take() => taken,
        };
        let Some((bytes, frames)) = taken else {
            break;
        };
        places.give_back(frames);
        if send.write_chunk(Bytes::from(bytes)).await.is_err() {
            outbox.abandon();
            return;
        }
    }
    let _ = send.finish();
}
