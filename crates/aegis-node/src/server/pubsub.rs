//! Publish and subscribe: `SUBSCRIBE`, `PSUBSCRIBE`, `UNSUBSCRIBE`, `PUNSUBSCRIBE`,
//! `PUBLISH`, `PUBSUB`.
//!
//! A `PUBLISH` goes through the log like a write, and every node hands the message to
//! its own subscribers as it applies the entry: a subscriber on any node gets every
//! message published through any node, and all subscribers to a channel get its
//! messages in the same order. Delivery is at most once, as in Redis: a node does not
//! deliver a message it applies more than [`STALE_MS`] after it was published (a node
//! catching up, or replaying its log at start), and a subscriber that falls
//! [`INBOX_MAX`] messages behind is disconnected, as Redis disconnects a subscriber past
//! its output buffer limit.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use redis_protocol::resp2::types::OwnedFrame;
use tokio::sync::mpsc;

use crate::clients::Client;
use crate::glob;
use crate::resp::{Protocol, Reply, bulk};

/// A message applied later than this after it was published is not delivered.
pub(super) const STALE_MS: u64 = 10_000;
/// How many undelivered messages a subscriber may fall behind before it is dropped.
pub(super) const INBOX_MAX: usize = 4096;

/// A message on its way to one subscriber.
#[derive(Debug)]
pub(super) struct Delivery {
    /// The pattern it matched, for a pattern subscription.
    pattern: Option<Arc<[u8]>>,
    channel: Arc<[u8]>,
    message: Arc<[u8]>,
}

impl Delivery {
    /// The push a subscriber receives: `message channel payload`, or `pmessage pattern
    /// channel payload`.
    pub(super) fn reply(&self) -> Reply {
        let text = |bytes: &[u8]| Reply::Frame(bulk(bytes.to_vec()));
        let mut items = Vec::with_capacity(4);
        match &self.pattern {
            Some(pattern) => {
                items.push(text(b"pmessage"));
                items.push(text(pattern));
            }
            None => items.push(text(b"message")),
        }
        items.push(text(&self.channel));
        items.push(text(&self.message));
        Reply::Push(items)
    }
}

/// Where one subscriber's messages go.
#[derive(Debug, Clone)]
struct Inbox {
    tx: mpsc::Sender<Delivery>,
    client: Arc<Client>,
}

/// Every subscription on this node.
#[derive(Debug, Default)]
pub(super) struct Hub {
    subscriptions: Mutex<Subscriptions>,
}

#[derive(Debug, Default)]
struct Subscriptions {
    /// Channel, then subscriber (by connection id).
    channels: HashMap<Vec<u8>, HashMap<u64, Inbox>>,
    /// Pattern, then subscriber.
    patterns: HashMap<Vec<u8>, HashMap<u64, Inbox>>,
}

impl Subscriptions {
    fn of(&mut self, pattern: bool) -> &mut HashMap<Vec<u8>, HashMap<u64, Inbox>> {
        if pattern {
            &mut self.patterns
        } else {
            &mut self.channels
        }
    }

    /// Drops the connection `id`'s subscription to `name`, and `name` with its last one.
    fn remove(&mut self, pattern: bool, name: &[u8], id: u64) {
        let map = self.of(pattern);
        if let Some(subscribers) = map.get_mut(name) {
            subscribers.remove(&id);
            if subscribers.is_empty() {
                map.remove(name);
            }
        }
    }
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, Subscriptions> {
        self.subscriptions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands `message`, published to `channel` at `published_ms`, to every subscriber
    /// of the channel or of a pattern it matches, unless it is older than
    /// [`STALE_MS`] at `now_ms`; returns to how many.
    pub(super) fn deliver(
        &self,
        channel: &[u8],
        message: &[u8],
        published_ms: u64,
        now_ms: u64,
    ) -> u64 {
        if now_ms.saturating_sub(published_ms) > STALE_MS {
            return 0;
        }
        let channel: Arc<[u8]> = Arc::from(channel);
        let message: Arc<[u8]> = Arc::from(message);
        let subscriptions = self.lock();
        let mut delivered = 0;
        let mut send = |inbox: &Inbox, pattern: Option<Arc<[u8]>>| {
            let delivery = Delivery {
                pattern,
                channel: Arc::clone(&channel),
                message: Arc::clone(&message),
            };
            match inbox.tx.try_send(delivery) {
                Ok(()) => delivered += 1,
                // Too far behind: dropped, as Redis drops a subscriber past its output
                // buffer limit. A closed inbox is a connection on its way out.
                Err(mpsc::error::TrySendError::Full(_)) => inbox.client.kill_now(),
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        };
        if let Some(subscribers) = subscriptions.channels.get(&channel[..]) {
            for inbox in subscribers.values() {
                send(inbox, None);
            }
        }
        for (pattern, subscribers) in &subscriptions.patterns {
            if glob::matches(pattern, &channel) {
                let pattern: Arc<[u8]> = Arc::from(pattern.as_slice());
                for inbox in subscribers.values() {
                    send(inbox, Some(Arc::clone(&pattern)));
                }
            }
        }
        delivered
    }

    /// The channels with a subscriber, those matching `pattern` if given (`PUBSUB
    /// CHANNELS`).
    pub(super) fn channels(&self, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
        let mut found: Vec<Vec<u8>> = self
            .lock()
            .channels
            .keys()
            .filter(|c| pattern.is_none_or(|p| glob::matches(p, c)))
            .cloned()
            .collect();
        found.sort();
        found
    }

    /// How many subscribers `channel` has (`PUBSUB NUMSUB`), patterns aside.
    pub(super) fn subscribers(&self, channel: &[u8]) -> usize {
        self.lock().channels.get(channel).map_or(0, HashMap::len)
    }

    /// How many patterns have a subscriber (`PUBSUB NUMPAT`).
    pub(super) fn patterns(&self) -> usize {
        self.lock().patterns.len()
    }

    /// Forgets every subscription of the connection `id`.
    pub(super) fn forget(&self, id: u64, subscriber: &Subscriber) {
        let mut subscriptions = self.lock();
        for (pattern, names) in [(false, &subscriber.channels), (true, &subscriber.patterns)] {
            for name in names {
                subscriptions.remove(pattern, name, id);
            }
        }
    }
}

/// One connection's subscriptions and the messages on their way to it.
#[derive(Debug)]
pub(super) struct Subscriber {
    channels: BTreeSet<Vec<u8>>,
    patterns: BTreeSet<Vec<u8>>,
    tx: mpsc::Sender<Delivery>,
    rx: mpsc::Receiver<Delivery>,
}

impl Subscriber {
    pub(super) fn new() -> Self {
        let (tx, rx) = mpsc::channel(INBOX_MAX);
        Self {
            channels: BTreeSet::new(),
            patterns: BTreeSet::new(),
            tx,
            rx,
        }
    }

    fn names(&mut self, pattern: bool) -> &mut BTreeSet<Vec<u8>> {
        if pattern {
            &mut self.patterns
        } else {
            &mut self.channels
        }
    }

    /// How many channels and patterns it subscribes to.
    pub(super) fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// The next message for it.
    pub(super) async fn next(&mut self) -> Option<Delivery> {
        self.rx.recv().await
    }

    /// The next message for it, if one is waiting.
    pub(super) fn try_next(&mut self) -> Option<Delivery> {
        self.rx.try_recv().ok()
    }

    /// `SUBSCRIBE` (or with `pattern`, `PSUBSCRIBE`) to each of `names`: one
    /// confirmation each, with the number of subscriptions after it.
    pub(super) fn subscribe(
        &mut self,
        hub: &Hub,
        client: &Arc<Client>,
        names: &[Vec<u8>],
        pattern: bool,
    ) -> Vec<Reply> {
        let kind: &[u8] = if pattern { b"psubscribe" } else { b"subscribe" };
        let mut replies = Vec::with_capacity(names.len());
        for name in names {
            if self.names(pattern).insert(name.clone()) {
                let inbox = Inbox {
                    tx: self.tx.clone(),
                    client: Arc::clone(client),
                };
                hub.lock()
                    .of(pattern)
                    .entry(name.clone())
                    .or_default()
                    .insert(client.id, inbox);
            }
            replies.push(confirmation(kind, Some(name), self.count()));
        }
        replies
    }

    /// `UNSUBSCRIBE` (or with `pattern`, `PUNSUBSCRIBE`) from each of `names`, or from
    /// every one without names: one confirmation each (one with a null name if there
    /// was none).
    pub(super) fn unsubscribe(
        &mut self,
        hub: &Hub,
        client: &Client,
        names: &[Vec<u8>],
        pattern: bool,
    ) -> Vec<Reply> {
        let kind: &[u8] = if pattern {
            b"punsubscribe"
        } else {
            b"unsubscribe"
        };
        let names: Vec<Vec<u8>> = if names.is_empty() {
            let mine = if pattern {
                &self.patterns
            } else {
                &self.channels
            };
            mine.iter().cloned().collect()
        } else {
            names.to_vec()
        };
        if names.is_empty() {
            return vec![confirmation(kind, None, self.count())];
        }
        let mut replies = Vec::with_capacity(names.len());
        for name in names {
            if self.names(pattern).remove(&name) {
                hub.lock().remove(pattern, &name, client.id);
            }
            replies.push(confirmation(kind, Some(&name), self.count()));
        }
        replies
    }
}

/// `kind name count`, the push that confirms a (un)subscription.
fn confirmation(kind: &[u8], name: Option<&[u8]>, count: usize) -> Reply {
    Reply::Push(vec![
        Reply::Frame(bulk(kind.to_vec())),
        Reply::Frame(name.map_or(OwnedFrame::Null, |n| bulk(n.to_vec()))),
        Reply::Frame(OwnedFrame::Integer(
            i64::try_from(count).unwrap_or(i64::MAX),
        )),
    ])
}

/// Whether a RESP2 connection with subscriptions may run `name`: only the commands
/// that manage them, `PING`, `QUIT` and `RESET`, as in Redis.
pub(super) fn allowed_while_subscribed(name: &str, protocol: Protocol) -> bool {
    protocol == Protocol::Resp3
        || matches!(
            name,
            "subscribe" | "psubscribe" | "unsubscribe" | "punsubscribe" | "ping" | "quit" | "reset"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscribed(hub: &Hub, id: u64, channels: &[&str]) -> (Subscriber, Arc<Client>) {
        let client = Arc::new(Client::new(id, None, None));
        let mut subscriber = Subscriber::new();
        let names: Vec<Vec<u8>> = channels.iter().map(|c| c.as_bytes().to_vec()).collect();
        subscriber.subscribe(hub, &client, &names, false);
        (subscriber, client)
    }

    #[test]
    fn stale_messages_are_not_delivered() {
        let hub = Hub::default();
        let (mut subscriber, _client) = subscribed(&hub, 1, &["c"]);
        assert_eq!(hub.deliver(b"c", b"late", 1_000, 1_000 + STALE_MS + 1), 0);
        assert!(subscriber.try_next().is_none());
        assert_eq!(hub.deliver(b"c", b"on time", 1_000, 1_000 + STALE_MS), 1);
        assert!(subscriber.try_next().is_some());
    }

    #[tokio::test]
    async fn a_subscriber_too_far_behind_is_disconnected() {
        let hub = Hub::default();
        let (subscriber, client) = subscribed(&hub, 7, &["c"]);
        for _ in 0..INBOX_MAX {
            assert_eq!(hub.deliver(b"c", b"m", 0, 0), 1);
        }
        assert_eq!(hub.deliver(b"c", b"one too many", 0, 0), 0);
        // The kill was recorded: the connection closes when it next waits.
        tokio::time::timeout(std::time::Duration::from_secs(5), client.killed())
            .await
            .expect("killed");
        hub.forget(7, &subscriber);
        assert_eq!(hub.subscribers(b"c"), 0);
        assert!(hub.channels(None).is_empty());
    }
}
