//! Read fences shared between callers.
//!
//! Each read fence costs the node's thread an input and a reply, and on a leader without
//! a lease a heartbeat round. A caller that asks while a fence is out cannot use that
//! fence: it was issued before the caller asked, so a write acknowledged in between might
//! not be covered. Such callers wait together and share the next fence instead. So one
//! fence is out at a time, and each covers every caller that asked before it was issued,
//! whatever the number of callers.

use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use super::apply::ReadReply;
use super::driver::Input;
use super::{RaftError, answer_within, queue_input};

/// Callers waiting for the next fence.
#[derive(Default)]
pub(super) struct ReadFences {
    /// `None` while no round runs; otherwise the callers the next fence is for.
    waiting: Mutex<Option<Vec<ReadReply>>>,
}

impl ReadFences {
    /// Registers a caller for the next fence. Returns `true` if no round runs, so the
    /// caller must start one with [`run_rounds`].
    pub(super) fn join(&self, reply: ReadReply) -> bool {
        let mut waiting = self.waiting.lock().expect("lock poisoned");
        match waiting.as_mut() {
            Some(callers) => {
                callers.push(reply);
                false
            }
            None => {
                *waiting = Some(vec![reply]);
                true
            }
        }
    }

    /// Takes the callers registered so far, or ends the rounds if there are none.
    fn take(&self) -> Option<Vec<ReadReply>> {
        let mut waiting = self.waiting.lock().expect("lock poisoned");
        let callers = std::mem::take(waiting.as_mut().expect("a round is running"));
        if callers.is_empty() {
            *waiting = None;
            return None;
        }
        Some(callers)
    }
}

/// Issues fences one after another, each for the callers that registered before it,
/// until no caller waits.
pub(super) async fn run_rounds<O>(
    fences: Arc<ReadFences>,
    inbox: SyncSender<Input<O>>,
    inbox_max: usize,
    timeout: Duration,
) {
    while let Some(callers) = fences.take() {
        let outcome = fence(&inbox, inbox_max, timeout).await;
        for caller in callers {
            let _ = caller.send(outcome.clone());
        }
    }
}

async fn fence<O>(
    inbox: &SyncSender<Input<O>>,
    inbox_max: usize,
    timeout: Duration,
) -> Result<aegis_raft::LogIndex, RaftError> {
    let (reply, answer) = oneshot::channel();
    queue_input(inbox, inbox_max, Input::Read { reply })?;
    answer_within(timeout, answer).await?
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use aegis_raft::LogIndex;

    use super::*;

    /// Takes the next fence the rounds send to the node's thread.
    fn next_fence(inbox: &mpsc::Receiver<Input<()>>) -> ReadReply {
        match inbox.recv_timeout(Duration::from_secs(5)) {
            Ok(Input::Read { reply }) => reply,
            Ok(_) => panic!("only fences are sent"),
            Err(e) => panic!("no fence: {e}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_that_joins_while_a_fence_is_out_gets_the_next_fence() {
        let (tx, inbox) = mpsc::sync_channel(16);
        let fences = Arc::new(ReadFences::default());
        let (first, first_answer) = oneshot::channel();
        assert!(fences.join(first));
        let rounds = tokio::spawn(run_rounds(
            Arc::clone(&fences),
            tx,
            16,
            Duration::from_secs(5),
        ));
        let inbox = tokio::task::spawn_blocking(move || {
            let out = next_fence(&inbox);
            (out, inbox)
        });
        let (out, inbox) = inbox.await.unwrap();
        // Asked while the first fence is out: that fence must not answer them.
        let (second, mut second_answer) = oneshot::channel();
        let (third, mut third_answer) = oneshot::channel();
        assert!(!fences.join(second));
        assert!(!fences.join(third));
        out.send(Ok(LogIndex(7))).unwrap();
        assert_eq!(first_answer.await.unwrap(), Ok(LogIndex(7)));
        assert!(
            second_answer.try_recv().is_err(),
            "not answered by the old fence"
        );
        let next = tokio::task::spawn_blocking(move || next_fence(&inbox));
        let next = next.await.unwrap();
        assert!(third_answer.try_recv().is_err());
        next.send(Ok(LogIndex(9))).unwrap();
        assert_eq!(second_answer.await.unwrap(), Ok(LogIndex(9)));
        assert_eq!(third_answer.await.unwrap(), Ok(LogIndex(9)));
        rounds.await.unwrap();
        assert!(fences.waiting.lock().unwrap().is_none(), "the rounds ended");
    }

    #[test]
    fn the_first_caller_starts_the_rounds_and_later_ones_queue() {
        let fences = ReadFences::default();
        let (a, _a) = oneshot::channel();
        let (b, _b) = oneshot::channel();
        let (c, _c) = oneshot::channel();
        assert!(fences.join(a), "no round runs yet");
        assert!(!fences.join(b));
        assert_eq!(fences.take().map(|v| v.len()), Some(2));
        assert!(!fences.join(c), "the round still runs");
        assert_eq!(fences.take().map(|v| v.len()), Some(1));
        assert!(fences.take().is_none(), "nobody waits: the round ends");
        let (d, _d) = oneshot::channel();
        assert!(fences.join(d), "the next caller starts a new round");
    }
}
