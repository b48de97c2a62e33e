//! Raft messages over a [`Transport`]: a queue and a task per peer out, one task in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::runtime::{Network, RaftNode, StateMachine};
use aegis_raft::{Message, NodeId};
use aegis_transport::{Channel, Envelope, Incoming, Transport};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::{ClusterConfig, forward};

/// The envelope kind of a Raft message on [`Channel::Raft`].
const KIND_RAFT_MESSAGE: u16 = 1;

/// The Raft node's [`Network`]: hands each message to its peer's queue. Peers come from
/// the configuration, and any other node the core addresses (a member added by a
/// membership change) gets a queue and a sending task when first addressed; reaching it
/// is the transport's business (its address book must know the node).
pub(crate) struct Outbound {
    peers: Mutex<HashMap<NodeId, mpsc::Sender<Message>>>,
    transport: Arc<dyn Transport>,
    queue_max: usize,
    /// The runtime the sending tasks run on: the core sends from its own thread.
    runtime: tokio::runtime::Handle,
    local: NodeId,
}

impl Outbound {
    /// Creates a queue and a sending task for every peer in the configuration. Must be
    /// called on a Tokio runtime, which later sending tasks are spawned on too.
    pub(crate) fn start(
        config: &ClusterConfig,
        transport: &Arc<dyn Transport>,
    ) -> (Outbound, Vec<JoinHandle<()>>) {
        let outbound = Outbound {
            peers: Mutex::new(HashMap::new()),
            transport: Arc::clone(transport),
            queue_max: config.peer_queue_max,
            runtime: tokio::runtime::Handle::current(),
            local: config.raft.node_id,
        };
        let tasks = config
            .raft
            .peers
            .iter()
            .filter(|p| **p != config.raft.node_id)
            .map(|&peer| outbound.open(&mut outbound.lock(), peer).1)
            .collect();
        (outbound, tasks)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<NodeId, mpsc::Sender<Message>>> {
        self.peers.lock().expect("lock poisoned")
    }

    /// Opens the queue to `peer` and starts its sending task, which ends once the
    /// queue's sender is dropped (with this `Outbound`).
    fn open(
        &self,
        peers: &mut HashMap<NodeId, mpsc::Sender<Message>>,
        peer: NodeId,
    ) -> (mpsc::Sender<Message>, JoinHandle<()>) {
        debug_assert_ne!(peer, self.local, "no queue to this node itself");
        let (tx, rx) = mpsc::channel(self.queue_max);
        peers.insert(peer, tx.clone());
        let task = self
            .runtime
            .spawn(send_loop(Arc::clone(&self.transport), peer, rx));
        (tx, task)
    }
}

impl Network for Outbound {
    fn send(&self, message: Message) {
        if message.to == self.local || message.to == 0 {
            return;
        }
        let mut peers = self.lock();
        // A full queue means the peer is far behind or gone: dropping is what Raft
        // expects of a network, and it retries.
        let _ = match peers.get(&message.to) {
            Some(queue) => queue.try_send(message),
            None => {
                let to = message.to;
                self.open(&mut peers, to).0.try_send(message)
            }
        };
    }
}

async fn send_loop(
    transport: Arc<dyn Transport>,
    peer: NodeId,
    mut queue: mpsc::Receiver<Message>,
) {
    while let Some(message) = queue.recv().await {
        let envelope = Envelope::new(
            Channel::Raft,
            KIND_RAFT_MESSAGE,
            Bytes::from(message.encode()),
        );
        // Unreachable peers are retried by Raft itself, with fresh messages.
        let _ = transport.send(peer, envelope).await;
    }
}

/// Reads everything the transport receives: Raft messages go to the node, forwarded
/// writes are served, anything else is dropped.
pub(crate) fn spawn_inbound<SM: StateMachine<Output = Bytes>>(
    config: &ClusterConfig,
    transport: Arc<dyn Transport>,
    raft: Arc<RaftNode<SM>>,
) -> JoinHandle<()> {
    let message_bytes_max = config.message_bytes_max;
    let local = config.raft.node_id;
    let deliver = raft.message_sender();
    tokio::spawn(async move {
        while let Ok(incoming) = transport.recv().await {
            match incoming {
                Incoming::Message { source, envelope } if envelope.channel == Channel::Raft => {
                    if let Some(message) = decode(source, local, &envelope, message_bytes_max) {
                        deliver.deliver(message);
                    }
                }
                Incoming::Request {
                    envelope,
                    responder,
                    ..
                } if envelope.channel == Channel::Client => {
                    let raft = Arc::clone(&raft);
                    tokio::spawn(async move { forward::serve(&raft, envelope, responder).await });
                }
                // Other channels belong to subsystems this node does not run; a dropped
                // responder tells a requester so.
                _ => {}
            }
        }
    })
}

/// Decodes a Raft message, accepting it only from the peer it claims to be from and only
/// for this node.
fn decode(source: NodeId, local: NodeId, envelope: &Envelope, bytes_max: usize) -> Option<Message> {
    if envelope.kind != KIND_RAFT_MESSAGE {
        return None;
    }
    let message = Message::decode(&envelope.payload, bytes_max).ok()?;
    (message.from == source && message.to == local).then_some(message)
}

#[cfg(test)]
mod tests {
    use aegis_raft::{Heartbeat, LogIndex, Message, Payload, Term};
    use aegis_transport::{Channel, Envelope};
    use bytes::Bytes;

    use super::{KIND_RAFT_MESSAGE, decode};

    fn heartbeat(from: u64, to: u64) -> Envelope {
        let message = Message {
            from,
            to,
            term: Term(1),
            payload: Payload::Heartbeat(Heartbeat {
                commit: LogIndex(0),
                seq: 1,
            }),
        };
        Envelope::new(
            Channel::Raft,
            KIND_RAFT_MESSAGE,
            Bytes::from(message.encode()),
        )
    }

    #[test]
    fn messages_are_accepted_only_from_their_authenticated_sender() {
        assert!(decode(2, 1, &heartbeat(2, 1), 1 << 20).is_some());
        assert!(
            decode(3, 1, &heartbeat(2, 1), 1 << 20).is_none(),
            "node 3 speaking for node 2"
        );
        assert!(
            decode(2, 1, &heartbeat(2, 4), 1 << 20).is_none(),
            "message for another node"
        );
        let garbage = Envelope::new(Channel::Raft, KIND_RAFT_MESSAGE, &b"\x07garbage"[..]);
        assert!(decode(2, 1, &garbage, 1 << 20).is_none());
    }
}
