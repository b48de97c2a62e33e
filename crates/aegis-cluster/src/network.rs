//! Raft messages over a [`Transport`]: handed to the transport's per-peer queues from
//! the Raft thread, and read by one task in.

use std::sync::Arc;

use crate::runtime::{Network, RaftNode, StateMachine};
use aegis_raft::{Message, NodeId};
use aegis_transport::{Channel, Envelope, Incoming, Transport};
use bytes::Bytes;
use tokio::task::JoinHandle;

use crate::{ClusterConfig, forward};

/// The envelope kind of a Raft message on [`Channel::Raft`].
const KIND_RAFT_MESSAGE: u16 = 1;

/// The Raft node's [`Network`]: encodes each message and queues it with the transport
/// for its peer, without waiting, on the Raft thread itself. A message the transport
/// cannot take (the peer's queue is full, or its address unknown) is dropped: Raft
/// expects a lossy network and sends fresh messages. Reaching a member added by a
/// membership change is the transport's business (its address book must know the node).
pub(crate) struct Outbound {
    transport: Arc<dyn Transport>,
    local: NodeId,
}

impl Outbound {
    pub(crate) fn new(config: &ClusterConfig, transport: &Arc<dyn Transport>) -> Outbound {
        Outbound {
            transport: Arc::clone(transport),
            local: config.raft.node_id,
        }
    }
}

impl Network for Outbound {
    fn send(&self, message: Message) {
        if message.to == self.local || message.to == 0 {
            return;
        }
        let to = message.to;
        let envelope = Envelope::new(
            Channel::Raft,
            KIND_RAFT_MESSAGE,
            Bytes::from(message.encode()),
        );
        // Dropped when refused; Raft retries with fresh messages.
        let _ = self.transport.try_send(to, envelope);
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
