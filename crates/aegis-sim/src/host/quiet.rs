//! A host's handles on leadership transfer and quiescence.

use aegis_raft::RawNode;

use crate::NodeId;
use crate::host::Host;

impl Host {
    /// Whether the node is up and quiet (it is not ticked).
    pub(crate) fn is_quiesced(&self) -> bool {
        self.node.as_ref().is_some_and(RawNode::is_quiesced)
    }

    /// The leader the node knows of.
    pub(crate) fn leader_id(&self) -> Option<NodeId> {
        self.node.as_ref().and_then(RawNode::leader_id)
    }

    /// The failure detector suspects `leader` (or, with `None`, the node knows no leader).
    pub(crate) fn suspect_leader(&mut self, leader: Option<NodeId>) {
        let node = self.node.as_mut().expect("the node is up");
        match leader {
            Some(peer) => node.report_unreachable(peer),
            None => node.wake(),
        }
    }

    /// Asks the node, if it leads, to hand its leadership to `target`.
    pub(crate) fn transfer_leadership(&mut self, target: NodeId) -> Result<(), String> {
        let node = self.node.as_mut().expect("the node is up");
        node.transfer_leadership(target).map_err(|e| e.to_string())
    }
}
