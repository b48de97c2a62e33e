//! An in-memory [`Network`] for tests: nodes in one process, with links that can be cut.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use super::{MessageSender, Network};
use aegis_raft::{Message, NodeId};

/// Routes messages between nodes of one process. Cutting a node off drops every message
/// to and from it until it is reconnected.
#[derive(Clone, Default)]
pub struct MemRouter {
    inner: Arc<Mutex<Routes>>,
}

#[derive(Default)]
struct Routes {
    nodes: HashMap<NodeId, MessageSender>,
    isolated: HashSet<NodeId>,
}

impl MemRouter {
    /// A router with no nodes.
    #[must_use]
    pub fn new() -> MemRouter {
        MemRouter::default()
    }

    /// The [`Network`] for node `id` to send through.
    #[must_use]
    pub fn endpoint(&self, id: NodeId) -> MemEndpoint {
        MemEndpoint {
            id,
            router: self.clone(),
        }
    }

    /// Makes node `id` reachable through `sender` (replacing an earlier registration,
    /// as after a restart).
    pub fn register(&self, id: NodeId, sender: MessageSender) {
        self.routes().nodes.insert(id, sender);
    }

    /// Drops every message to or from `id` from now on.
    pub fn isolate(&self, id: NodeId) {
        self.routes().isolated.insert(id);
    }

    /// Undoes [`MemRouter::isolate`].
    pub fn reconnect(&self, id: NodeId) {
        self.routes().isolated.remove(&id);
    }

    fn routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.inner.lock().expect("lock poisoned")
    }
}

impl std::fmt::Debug for MemRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let routes = self.routes();
        f.debug_struct("MemRouter")
            .field("nodes", &routes.nodes.len())
            .field("isolated", &routes.isolated)
            .finish()
    }
}

/// One node's side of a [`MemRouter`].
#[derive(Clone, Debug)]
pub struct MemEndpoint {
    id: NodeId,
    router: MemRouter,
}

impl Network for MemEndpoint {
    fn send(&self, message: Message) {
        debug_assert_eq!(message.from, self.id, "a node sends only its own messages");
        let target = {
            let routes = self.router.routes();
            if routes.isolated.contains(&self.id) || routes.isolated.contains(&message.to) {
                return;
            }
            routes.nodes.get(&message.to).cloned()
        };
        if let Some(target) = target {
            target.deliver(message);
        }
    }
}
