//! The threads a node starts, and the hook each runs first.

use std::fmt;
use std::sync::Arc;
use std::thread::JoinHandle;

use aegis_raft::NodeId;

/// One of the threads a [`RaftNode`](super::RaftNode) starts, as named to a
/// [`ThreadStart`] hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NodeThread {
    /// The node's thread (`aegis-raft-<id>`): steps the core, sends its messages, and
    /// writes and syncs the log unless a log writer thread does.
    Raft,
    /// The applier (`aegis-apply-<id>`): applies committed entries to the state machine
    /// and answers the proposals and reads waiting for them.
    Apply,
    /// The log writer (`aegis-log-<id>`), with
    /// [`RaftConfig::log_writer_thread`](super::RaftConfig::log_writer_thread).
    LogWriter,
    /// Copies a snapshot of the state machine (`aegis-snapshot-<id>`) while applying goes on.
    SnapshotCopy,
    /// Stores a snapshot in the log (`aegis-snapshot-write-<id>`).
    SnapshotWrite,
}

impl NodeThread {
    fn name(self, node: NodeId) -> String {
        let role = match self {
            NodeThread::Raft => "raft",
            NodeThread::Apply => "apply",
            NodeThread::LogWriter => "log",
            NodeThread::SnapshotCopy => "snapshot",
            NodeThread::SnapshotWrite => "snapshot-write",
        };
        format!("aegis-{role}-{node}")
    }
}

/// A function that every thread of a node runs first, told which thread it is: to set
/// the thread's scheduling policy, priority or CPU affinity, for example. See
/// [`RaftConfig::on_thread_start`](super::RaftConfig::on_thread_start).
#[derive(Clone)]
pub struct ThreadStart(Arc<dyn Fn(NodeThread) + Send + Sync>);

impl ThreadStart {
    /// Wraps `start`, which runs on each new thread before anything else does.
    pub fn new(start: impl Fn(NodeThread) + Send + Sync + 'static) -> ThreadStart {
        ThreadStart(Arc::new(start))
    }
}

impl fmt::Debug for ThreadStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ThreadStart(..)")
    }
}

/// Starts a node's threads: names each after its role and the node, and runs the
/// [`ThreadStart`] hook, if any, first on it.
#[derive(Clone, Debug)]
pub(super) struct Spawner {
    node: NodeId,
    start: Option<ThreadStart>,
}

impl Spawner {
    pub(super) fn new(node: NodeId, start: Option<ThreadStart>) -> Spawner {
        Spawner { node, start }
    }

    pub(super) fn spawn<T: Send + 'static>(
        &self,
        thread: NodeThread,
        run: impl FnOnce() -> T + Send + 'static,
    ) -> std::io::Result<JoinHandle<T>> {
        let start = self.start.clone();
        std::thread::Builder::new()
            .name(thread.name(self.node))
            .spawn(move || {
                if let Some(ThreadStart(start)) = start {
                    start(thread);
                }
                run()
            })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn threads_are_named_for_their_node_and_run_the_hook_first() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let start = {
            let seen = Arc::clone(&seen);
            ThreadStart::new(move |thread| {
                let name = std::thread::current().name().map(str::to_owned);
                seen.lock().unwrap().push((thread, name));
            })
        };
        let spawner = Spawner::new(7, Some(start));
        let hooked_before = {
            let seen = Arc::clone(&seen);
            move || seen.lock().unwrap().len()
        };
        let thread = spawner.spawn(NodeThread::SnapshotWrite, hooked_before);
        assert_eq!(thread.unwrap().join().unwrap(), 1, "the hook ran first");
        let name = Some("aegis-snapshot-write-7".to_owned());
        assert_eq!(*seen.lock().unwrap(), [(NodeThread::SnapshotWrite, name)]);
        // Without a hook, threads start all the same.
        let plain = Spawner::new(7, None).spawn(NodeThread::Raft, || 1).unwrap();
        assert_eq!(plain.join().unwrap(), 1);
    }
}
