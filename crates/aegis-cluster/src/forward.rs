//! Writes and membership changes forwarded from a follower to the leader, as requests on
//! [`Channel::Client`].

use std::sync::Arc;
use std::time::Duration;

use crate::runtime::{RaftError, RaftNode, StateMachine};
use aegis_raft::{LogIndex, NodeId};
use aegis_transport::{Channel, Envelope, Responder, Transport};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::{ClusterError, MemberChange};
use aegis_raft::ConfState;

/// The request kind of a forwarded write; its payload is the command.
const KIND_PROPOSE: u16 = 1;
/// The response kind; its payload is a postcard-encoded [`ForwardReply`].
const KIND_PROPOSE_REPLY: u16 = 2;
/// The request kind of a forwarded membership change; its payload is a postcard-encoded
/// [`MemberChange`].
const KIND_MEMBERS: u16 = 3;
/// Its response kind; the payload is a postcard-encoded [`MembersReply`].
const KIND_MEMBERS_REPLY: u16 = 4;

/// The leader's answer to a forwarded request; see [`ForwardReply`] and [`MembersReply`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaderReply<T> {
    /// Done: what the request produced.
    Done(T),
    /// The receiver is not the leader; nothing was appended.
    NotLeader {
        /// The leader it knows of.
        leader_hint: Option<NodeId>,
    },
    /// A new leader took the request's index; it did not take effect.
    Superseded {
        /// The index the request had been given.
        index: u64,
    },
    /// Refused without being appended (overloaded, too large, a change in progress, a
    /// learner that lags, ...).
    Refused(String),
    /// Appended, but the leader does not know whether it will take effect.
    Unknown(String),
}

/// The answer to a forwarded write: `Done` carries the state machine's output.
pub type ForwardReply = LeaderReply<Vec<u8>>;

/// The answer to a forwarded membership change: `Done` carries the configuration after
/// it.
pub type MembersReply = LeaderReply<ConfState>;

impl<T> LeaderReply<T> {
    /// What the local node's `result` tells the requester.
    fn of(result: Result<T, RaftError>) -> Self {
        match result {
            Ok(done) => Self::Done(done),
            Err(RaftError::NotLeader { leader_hint }) => Self::NotLeader { leader_hint },
            Err(RaftError::Superseded { index }) => Self::Superseded { index: index.0 },
            Err(e @ (RaftError::TimedOut(_) | RaftError::NotRunning | RaftError::Abandoned)) => {
                Self::Unknown(e.to_string())
            }
            Err(e) => Self::Refused(e.to_string()),
        }
    }

    /// The requester's result from `leader`'s answer.
    fn settle(self, leader: NodeId) -> Result<T, ClusterError> {
        match self {
            Self::Done(done) => Ok(done),
            Self::NotLeader { leader_hint } => {
                Err(ClusterError::Raft(RaftError::NotLeader { leader_hint }))
            }
            Self::Superseded { index } => Err(ClusterError::Raft(RaftError::Superseded {
                index: LogIndex(index),
            })),
            Self::Refused(reason) => Err(ClusterError::Refused { leader, reason }),
            Self::Unknown(reason) => Err(ClusterError::OutcomeUnknown { leader, reason }),
        }
    }
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
        let reply: ForwardReply = self
            .ask(leader, KIND_PROPOSE, command, KIND_PROPOSE_REPLY)
            .await?;
        reply.settle(leader).map(Bytes::from)
    }

    /// Asks `leader` to make `change`.
    pub(crate) async fn change_members(
        &self,
        leader: NodeId,
        change: MemberChange,
    ) -> Result<ConfState, ClusterError> {
        let payload = postcard::to_allocvec(&change).expect("a change always encodes");
        let reply: MembersReply = self
            .ask(leader, KIND_MEMBERS, payload, KIND_MEMBERS_REPLY)
            .await?;
        reply.settle(leader)
    }

    /// Sends one request of `kind` to `leader` and decodes its reply, which must be of
    /// `reply_kind`. A request that got no valid answer has an unknown outcome.
    async fn ask<R: serde::de::DeserializeOwned>(
        &self,
        leader: NodeId,
        kind: u16,
        payload: impl Into<Bytes>,
        reply_kind: u16,
    ) -> Result<R, ClusterError> {
        let unknown = |reason: String| ClusterError::OutcomeUnknown { leader, reason };
        let request = self
            .transport
            .request(leader, Envelope::new(Channel::Client, kind, payload));
        let response = match tokio::time::timeout(self.timeout, request).await {
            Err(_) => return Err(unknown(format!("no answer within {:?}", self.timeout))),
            Ok(Err(e)) => return Err(unknown(e.to_string())),
            Ok(Ok(response)) => response,
        };
        if response.channel != Channel::Client || response.kind != reply_kind {
            return Err(unknown(format!(
                "unexpected response {:?}/{}",
                response.channel, response.kind
            )));
        }
        postcard::from_bytes(&response.payload)
            .map_err(|e| unknown(format!("undecodable response: {e}")))
    }
}

/// Makes `change` on the local node, which must lead.
pub(crate) async fn change_members_here<SM: StateMachine>(
    raft: &RaftNode<SM>,
    change: MemberChange,
) -> Result<ConfState, RaftError> {
    match change {
        MemberChange::AddLearner(id) => raft.add_learner(id).await,
        MemberChange::Promote(id) => raft.promote_learner(id).await,
        MemberChange::AddVoter(id) => raft.add_voter(id).await,
        MemberChange::Remove(id) => raft.remove_node(id).await,
        MemberChange::Transfer(id) => {
            raft.transfer_leadership(id).await?;
            Ok(raft.metrics().borrow().conf_state.clone())
        }
    }
}

async fn serve_members<SM: StateMachine<Output = Bytes>>(
    raft: &RaftNode<SM>,
    payload: &[u8],
) -> MembersReply {
    let Ok(change) = postcard::from_bytes::<MemberChange>(payload) else {
        return MembersReply::Refused("undecodable membership change".to_owned());
    };
    MembersReply::of(change_members_here(raft, change).await)
}

/// Answers one forwarded request: a write is proposed to the local node, a membership
/// change made on it.
pub(crate) async fn serve<SM: StateMachine<Output = Bytes>>(
    raft: &RaftNode<SM>,
    envelope: Envelope,
    responder: Responder,
) {
    if envelope.kind == KIND_MEMBERS {
        let reply = serve_members(raft, &envelope.payload).await;
        let payload = postcard::to_allocvec(&reply).expect("a reply always encodes");
        let _ = responder.respond(Envelope::new(Channel::Client, KIND_MEMBERS_REPLY, payload));
        return;
    }
    let reply = if envelope.kind == KIND_PROPOSE {
        ForwardReply::of(raft.propose(envelope.payload).await.map(|o| o.to_vec()))
    } else {
        ForwardReply::Refused(format!("unknown client request kind {}", envelope.kind))
    };
    let payload = postcard::to_allocvec(&reply).expect("a reply always encodes");
    // The requester may have given up; then nobody needs the answer.
    let _ = responder.respond(Envelope::new(Channel::Client, KIND_PROPOSE_REPLY, payload));
}

#[cfg(test)]
mod tests {
    use super::{ForwardReply, MembersReply};
    use aegis_raft::ConfState;

    #[test]
    fn membership_replies_round_trip() {
        let replies = [
            MembersReply::Done(ConfState::with_voters(&[1, 2, 3])),
            MembersReply::NotLeader { leader_hint: None },
            MembersReply::Superseded { index: 4 },
            MembersReply::Refused("lagging".into()),
            MembersReply::Unknown("timed out".into()),
        ];
        for reply in replies {
            let bytes = postcard::to_allocvec(&reply).unwrap();
            assert_eq!(postcard::from_bytes::<MembersReply>(&bytes).unwrap(), reply);
        }
    }

    #[test]
    fn replies_round_trip_and_garbage_is_an_error() {
        let replies = [
            ForwardReply::Done(b"ok".to_vec()),
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
