//! Writes forwarded from a follower to the leader, as requests on [`Channel::Client`].

use std::sync::Arc;
use std::time::Duration;

use crate::runtime::{RaftError, RaftNode, StateMachine};
use aegis_raft::{LogIndex, NodeId};
use aegis_transport::{Channel, Envelope, Responder, Transport};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::ClusterError;

/// The request kind of a forwarded write; its payload is the command.
const KIND_PROPOSE: u16 = 1;
/// The response kind; its payload is a postcard-encoded [`ForwardReply`].
const KIND_PROPOSE_REPLY: u16 = 2;

/// The leader's answer to a forwarded write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForwardReply {
    /// Applied; the state machine's output.
    Applied(Vec<u8>),
    /// The receiver is not the leader; nothing was appended.
    NotLeader {
        /// The leader it knows of.
        leader_hint: Option<NodeId>,
    },
    /// A new leader took the write's index; it was not applied.
    Superseded {
        /// The index the write had been given.
        index: u64,
    },
    /// Refused without being appended (overloaded, too large, ...).
    Refused(String),
    /// Appended, but the leader does not know whether it will be applied.
    Unknown(String),
}

/// Sends writes to the leader.
pub(crate) struct Forwarder {
    transport: Arc<dyn Transport>,
    timeout: Duration,
}

impl Forwarder {
    pub(crate) fn new(transport: Arc<dyn Transport>, timeout: Duration) -> Forwarder {
        Forwarder { transport, timeout }
    }

    pub(crate) async fn propose(
        &self,
        leader: NodeId,
        command: Bytes,
    ) -> Result<Bytes, ClusterError> {
        let unknown = |reason: String| ClusterError::OutcomeUnknown { leader, reason };
        let request = self.transport.request(
            leader,
            Envelope::new(Channel::Client, KIND_PROPOSE, command),
        );
        let response = match tokio::time::timeout(self.timeout, request).await {
            Err(_) => return Err(unknown(format!("no answer within {:?}", self.timeout))),
            Ok(Err(e)) => return Err(unknown(e.to_string())),
            Ok(Ok(response)) => response,
        };
        if response.channel != Channel::Client || response.kind != KIND_PROPOSE_REPLY {
            return Err(unknown(format!(
                "unexpected response {:?}/{}",
                response.channel, response.kind
            )));
        }
        let reply: ForwardReply = postcard::from_bytes(&response.payload)
            .map_err(|e| unknown(format!("undecodable response: {e}")))?;
        match reply {
            ForwardReply::Applied(output) => Ok(Bytes::from(output)),
            ForwardReply::NotLeader { leader_hint } => {
                Err(ClusterError::Raft(RaftError::NotLeader { leader_hint }))
            }
            ForwardReply::Superseded { index } => Err(ClusterError::Raft(RaftError::Superseded {
                index: LogIndex(index),
            })),
            ForwardReply::Refused(reason) => Err(ClusterError::Refused { leader, reason }),
            ForwardReply::Unknown(reason) => Err(unknown(reason)),
        }
    }
}

/// Answers one forwarded request by proposing it to the local node.
pub(crate) async fn serve<SM: StateMachine<Output = Bytes>>(
    raft: &RaftNode<SM>,
    envelope: Envelope,
    responder: Responder,
) {
    let reply = if envelope.kind == KIND_PROPOSE {
        match raft.propose(envelope.payload).await {
            Ok(output) => ForwardReply::Applied(output.to_vec()),
            Err(RaftError::NotLeader { leader_hint }) => ForwardReply::NotLeader { leader_hint },
            Err(RaftError::Superseded { index }) => ForwardReply::Superseded { index: index.0 },
            Err(e @ (RaftError::TimedOut(_) | RaftError::NotRunning)) => {
                ForwardReply::Unknown(e.to_string())
            }
            Err(e) => ForwardReply::Refused(e.to_string()),
        }
    } else {
        ForwardReply::Refused(format!("unknown client request kind {}", envelope.kind))
    };
    let payload = postcard::to_allocvec(&reply).expect("a reply always encodes");
    // The requester may have given up; then nobody needs the answer.
    let _ = responder.respond(Envelope::new(Channel::Client, KIND_PROPOSE_REPLY, payload));
}

#[cfg(test)]
mod tests {
    use super::ForwardReply;

    #[test]
    fn replies_round_trip_and_garbage_is_an_error() {
        let replies = [
            ForwardReply::Applied(b"ok".to_vec()),
            ForwardReply::NotLeader {
                leader_hint: Some(3),
            },
            ForwardReply::Superseded { index: 9 },
            ForwardReply::Refused("busy".into()),
            ForwardReply::Unknown("timed out".into()),
        ];
        for reply in replies {
            let bytes = postcard::to_allocvec(&reply).unwrap();
            assert_eq!(postcard::from_bytes::<ForwardReply>(&bytes).unwrap(), reply);
        }
        assert!(postcard::from_bytes::<ForwardReply>(&[0xff, 0xff, 0xff]).is_err());
    }
}
