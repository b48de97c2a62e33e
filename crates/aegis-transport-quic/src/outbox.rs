//! Frames that many tasks encode into one buffer, for one writer task to put on a
//! stream.
//!
//! A sender encodes its frame straight into the shared buffer, under a lock, and wakes
//! the writer only when the buffer gets its first frame; the writer takes the whole
//! buffer at once and writes it as one piece. Compared with a channel of messages that
//! the writer encodes, each frame costs one lock and no hand-off of its own.

use std::sync::Mutex;

use tokio::sync::Notify;

use crate::transport::lock;

/// Why a frame was not put in an [`Outbox`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The outbox holds as many frames as it may: wait for the writer to take them.
    Full,
    /// The senders are done, or the writer is gone.
    Closed,
}

pub(crate) struct Outbox {
    state: Mutex<State>,
    frames_max: usize,
    /// Wakes the writer when the buffer gets its first frame, or the senders are done.
    filled: Notify,
    /// Wakes senders waiting for room when the writer takes the buffer or is gone.
    emptied: Notify,
}

#[derive(Default)]
struct State {
    bytes: Vec<u8>,
    frames: usize,
    /// The size of the last buffer taken, which the next one starts with room for.
    last_len: usize,
    /// No more frames will be put in; the writer finishes once it took the rest.
    sealed: bool,
    /// The writer is gone: frames put in would never be written.
    abandoned: bool,
}

impl Outbox {
    /// An outbox holding at most `frames_max` frames between two takes.
    pub(crate) fn new(frames_max: usize) -> Outbox {
        Outbox {
            state: Mutex::new(State::default()),
            frames_max,
            filled: Notify::new(),
            emptied: Notify::new(),
        }
    }

    /// Puts one frame in, written by `append` at the end of the buffer, unless the
    /// outbox is full or closed. `append` must write exactly one whole frame.
    pub(crate) fn try_put(&self, append: impl FnOnce(&mut Vec<u8>)) -> Result<(), Refused> {
        let first = {
            let mut state = lock(&self.state);
            if state.sealed || state.abandoned {
                return Err(Refused::Closed);
            }
            if state.frames >= self.frames_max {
                return Err(Refused::Full);
            }
            if state.bytes.capacity() == 0 {
                let last_len = state.last_len;
                state.bytes.reserve(last_len);
            }
            append(&mut state.bytes);
            state.frames += 1;
            state.frames == 1
        };
        if first {
            self.filled.notify_one();
        }
        Ok(())
    }

    /// Waits until a frame might fit, or the outbox is closed.
    pub(crate) async fn room(&self) {
        loop {
            let emptied = self.emptied.notified();
            tokio::pin!(emptied);
            // Registered before checking, so a take in between wakes it.
            emptied.as_mut().enable();
            {
                let state = lock(&self.state);
                if state.sealed || state.abandoned || state.frames < self.frames_max {
                    return;
                }
            }
            emptied.await;
        }
    }

    /// Takes every frame put in so far, and how many there are, waiting for at least
    /// one; `None` once the outbox is sealed and empty. Called by the writer only; it
    /// may be cancelled at any time without losing frames.
    pub(crate) async fn take(&self) -> Option<(Vec<u8>, usize)> {
        loop {
            let filled = self.filled.notified();
            tokio::pin!(filled);
            filled.as_mut().enable();
            {
                let mut state = lock(&self.state);
                if state.frames > 0 {
                    let bytes = std::mem::take(&mut state.bytes);
                    let frames = std::mem::take(&mut state.frames);
                    state.last_len = bytes.len();
                    drop(state);
                    self.emptied.notify_waiters();
                    return Some((bytes, frames));
                }
                if state.sealed {
                    return None;
                }
            }
            filled.await;
        }
    }

    /// No more frames will be put in: the writer takes the rest, then finishes.
    pub(crate) fn seal(&self) {
        lock(&self.state).sealed = true;
        self.filled.notify_one();
        self.emptied.notify_waiters();
    }

    /// The writer is gone: later frames are refused, and the ones waiting dropped.
    pub(crate) fn abandon(&self) {
        {
            let mut state = lock(&self.state);
            state.abandoned = true;
            state.bytes = Vec::new();
            state.frames = 0;
        }
        self.emptied.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(byte: u8) -> impl FnOnce(&mut Vec<u8>) {
        move |out| out.push(byte)
    }

    #[tokio::test]
    async fn the_writer_takes_frames_in_order_and_finishes_once_sealed() {
        let outbox = Outbox::new(8);
        outbox.try_put(frame(1)).unwrap();
        outbox.try_put(frame(2)).unwrap();
        assert_eq!(outbox.take().await, Some((vec![1, 2], 2)));
        outbox.try_put(frame(3)).unwrap();
        outbox.seal();
        assert_eq!(outbox.try_put(frame(4)), Err(Refused::Closed));
        // What was put in before the seal is still taken.
        assert_eq!(outbox.take().await, Some((vec![3], 1)));
        assert_eq!(outbox.take().await, None);
    }

    #[tokio::test]
    async fn a_full_outbox_refuses_until_the_writer_takes_it() {
        let outbox = std::sync::Arc::new(Outbox::new(2));
        outbox.try_put(frame(1)).unwrap();
        outbox.try_put(frame(2)).unwrap();
        assert_eq!(outbox.try_put(frame(3)), Err(Refused::Full));
        let waiting = tokio::spawn({
            let outbox = std::sync::Arc::clone(&outbox);
            async move {
                outbox.room().await;
                outbox.try_put(frame(3))
            }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "no room yet");
        assert_eq!(outbox.take().await, Some((vec![1, 2], 2)));
        assert_eq!(waiting.await.unwrap(), Ok(()));
        assert_eq!(outbox.take().await, Some((vec![3], 1)));
    }

    #[tokio::test]
    async fn an_abandoned_outbox_refuses_and_wakes_waiting_senders() {
        let outbox = std::sync::Arc::new(Outbox::new(1));
        outbox.try_put(frame(1)).unwrap();
        let waiting = tokio::spawn({
            let outbox = std::sync::Arc::clone(&outbox);
            async move {
                outbox.room().await;
                outbox.try_put(frame(2))
            }
        });
        tokio::task::yield_now().await;
        outbox.abandon();
        assert_eq!(waiting.await.unwrap(), Err(Refused::Closed));
    }
}
