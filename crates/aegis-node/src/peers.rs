//! The address book: where each peer listens for the QUIC transport.
//!
//! It starts from the configuration's `[[peers]]`; `CLUSTER MEET` adds or moves entries at
//! run time, so a node can reach a member that joined after it started. A MEET travels
//! through the Raft log and each member records it as it applies the entry (`LOCAL`
//! records it on one node, without the log). Entries learnt either way are kept in a
//! file in the data directory (one `id address` pair per line) and read back at start,
//! where they take precedence over the configuration.
//! A member that catches up by snapshot, after a MEET's entry was compacted away, learns
//! the addresses from the snapshot, which carries the sender's book.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::replicator::NodeId;

/// Tells the transport where a peer listens.
pub type SetPeer = Arc<dyn Fn(NodeId, SocketAddr) + Send + Sync>;

/// The peers' addresses, handed to the transport and kept on disk.
pub struct AddressBook {
    file: PathBuf,
    set_peer: SetPeer,
    entries: Mutex<BTreeMap<NodeId, SocketAddr>>,
    /// This node and where it listens for peers, if known.
    own: Option<(NodeId, SocketAddr)>,
}

impl std::fmt::Debug for AddressBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddressBook")
            .field("file", &self.file)
            .field("entries", &self.addresses())
            .finish_non_exhaustive()
    }
}

impl AddressBook {
    /// The book of `configured` peers plus those saved in `file` (which win), each
    /// handed to `set_peer` at once.
    ///
    /// # Errors
    /// The file exists but cannot be read, or a line is not `id address`.
    pub fn open(
        file: PathBuf,
        configured: &[(NodeId, SocketAddr)],
        set_peer: SetPeer,
    ) -> Result<Self, String> {
        let mut entries: BTreeMap<NodeId, SocketAddr> = configured.iter().copied().collect();
        match std::fs::read_to_string(&file) {
            Ok(text) => {
                for (n, line) in text
                    .lines()
                    .enumerate()
                    .filter(|(_, l)| !l.trim().is_empty())
                {
                    let parsed = line
                        .split_once(' ')
                        .and_then(|(id, address)| Some((id.parse().ok()?, address.parse().ok()?)));
                    let Some((id, address)) = parsed else {
                        return Err(format!(
                            "{} line {}: expected `id address`, found {line:?}",
                            file.display(),
                            n + 1
                        ));
                    };
                    entries.insert(id, address);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", file.display())),
        }
        for (&id, &address) in &entries {
            set_peer(id, address);
        }
        Ok(Self {
            file,
            set_peer,
            entries: Mutex::new(entries),
            own: None,
        })
    }

    /// Lists this node (`id`, listening for peers at `address`) among the addresses too.
    #[must_use]
    pub fn with_own(mut self, id: NodeId, address: SocketAddr) -> Self {
        self.own = Some((id, address));
        self
    }

    /// Records that `id` listens at `address`, tells the transport, and saves the book.
    /// This node's own id (given with [`with_own`](Self::with_own)) is left out: a node
    /// is not its own peer.
    ///
    /// # Errors
    /// The book cannot be written; the transport was told anyway.
    pub fn meet(&self, id: NodeId, address: SocketAddr) -> Result<(), String> {
        if self.own.is_some_and(|(own, _)| own == id) {
            return Ok(());
        }
        let mut entries = self.entries.lock().expect("lock poisoned");
        entries.insert(id, address);
        (self.set_peer)(id, address);
        let text: String = entries
            .iter()
            .map(|(id, address)| format!("{id} {address}\n"))
            .collect();
        // Write then rename, so a crash leaves the old book or the new one.
        let staging = self.file.with_extension("new");
        std::fs::write(&staging, text)
            .and_then(|()| std::fs::rename(&staging, &self.file))
            .map_err(|e| format!("{}: {e}", self.file.display()))
    }

    /// Every known node and its address, by id: the peers, and this node if it was
    /// given with [`with_own`](Self::with_own).
    #[must_use]
    pub fn addresses(&self) -> Vec<(NodeId, SocketAddr)> {
        let mut entries = self.entries.lock().expect("lock poisoned").clone();
        if let Some((id, address)) = self.own {
            entries.insert(id, address);
        }
        entries.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a recording transport was told.
    type Told = Arc<Mutex<Vec<(NodeId, SocketAddr)>>>;

    fn recorder() -> (SetPeer, Told) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let set: SetPeer = Arc::new(move |id, address| sink.lock().unwrap().push((id, address)));
        (set, seen)
    }

    #[test]
    fn met_peers_are_saved_and_win_over_the_configuration_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("peers");
        let a: SocketAddr = "127.0.0.1:7001".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:7002".parse().unwrap();
        let moved: SocketAddr = "127.0.0.1:7101".parse().unwrap();
        let (set, seen) = recorder();
        let book = AddressBook::open(file.clone(), &[(1, a)], set).unwrap();
        assert_eq!(*seen.lock().unwrap(), [(1, a)]);
        book.meet(2, b).unwrap();
        book.meet(1, moved).unwrap();
        assert_eq!(book.addresses(), [(1, moved), (2, b)]);

        let (set, seen) = recorder();
        let own: SocketAddr = "127.0.0.1:7003".parse().unwrap();
        let book = AddressBook::open(file, &[(1, a)], set)
            .unwrap()
            .with_own(3, own);
        assert_eq!(book.addresses(), [(1, moved), (2, b), (3, own)]);
        assert_eq!(
            *seen.lock().unwrap(),
            [(1, moved), (2, b)],
            "not told of itself"
        );
    }

    #[test]
    fn meeting_itself_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let own: SocketAddr = "127.0.0.1:7003".parse().unwrap();
        let elsewhere: SocketAddr = "127.0.0.1:7103".parse().unwrap();
        let (set, seen) = recorder();
        let book = AddressBook::open(dir.path().join("peers"), &[], set)
            .unwrap()
            .with_own(3, own);
        // A replicated MEET of this node reaches it too.
        book.meet(3, elsewhere).unwrap();
        assert_eq!(book.addresses(), [(3, own)]);
        assert!(seen.lock().unwrap().is_empty());
        assert!(!dir.path().join("peers").exists());
    }

    #[test]
    fn a_damaged_book_is_an_error_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("peers");
        std::fs::write(&file, "1 127.0.0.1:7001\n2 nowhere\n").unwrap();
        let (set, _) = recorder();
        let e = AddressBook::open(file, &[], set).unwrap_err();
        assert!(e.contains("line 2"), "{e}");
    }
}
