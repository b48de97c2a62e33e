//! Aegis in one crate: every Aegis library re-exported under one roof, with a feature per
//! library so you take only what you use. This crate contains no logic of its own.
//!
//! | module | crate | feature |
//! |---|---|---|
//! | [`vector_clock`] | `aegis-vclock`: vector clocks, causal contexts, dotted version vectors, HLC, interval tree clocks | `vector-clock` |
//! | [`crdt`] | `aegis-crdt`: delta-state CRDTs with anti-entropy | `crdt` |
//! | [`hash`] | `aegis-hash`: stable placement hashing | `hash` |
//! | [`raft`] | `aegis-raft`, the sans-IO core; with `cluster`, also the async `RaftNode` | `raft` |
//! | [`log`] | `aegis-log`: the write-ahead log and Raft's `DiskStorage` | `log` |
//! | [`transport`] | `aegis-transport`; [`transport::quic`] is `aegis-transport-quic` | `transport`, `quic` |
//! | [`cluster`] | `aegis-cluster`: Raft groups hosted over a transport | `cluster` |
//!
//! All features are on by default. Sharding, partitioning and distributed transactions
//! (`shard`, `partition`, `transaction`) will join as their crates land.
//!
//! ```
//! use aegis_replication::crdt::{GCounter, ORSet};
//! use aegis_replication::hash::{HashRing, JumpHash};
//! use aegis_replication::vector_clock::{Ordering, VectorClock};
//!
//! // Consistent hashing: a primary and two replicas, all distinct nodes.
//! let mut ring = HashRing::new(150);
//! ring.add_node("node-1");
//! ring.add_node("node-2");
//! ring.add_node("node-3");
//! assert_eq!(ring.get_nodes("user:123", 3).len(), 3);
//! assert!(JumpHash::hash("user:123", 3) < 3);
//!
//! // CRDTs merge by reference and converge.
//! let mut a = GCounter::new(1);
//! let mut b = GCounter::new(2);
//! a.increment(5);
//! b.increment(2);
//! a.merge(&b);
//! assert_eq!(a.value(), 7);
//! let mut set = ORSet::new(1);
//! set.add("item");
//! set.remove(&"item");
//! assert!(!set.contains(&"item"));
//!
//! // Causality.
//! let mut x = VectorClock::new();
//! x.increment(1);
//! let mut y = x.clone();
//! y.increment(2);
//! assert_eq!(x.compare(&y), Ordering::Before);
//! ```

#[cfg(feature = "vector-clock")]
pub mod vector_clock {
    //! Causality tracking: the `aegis-vclock` crate.
    pub use aegis_vclock::*;
}

#[cfg(feature = "crdt")]
pub mod crdt {
    //! Conflict-free replicated data types: the `aegis-crdt` crate.
    pub use aegis_crdt::*;
}

#[cfg(feature = "hash")]
pub mod hash {
    //! Stable placement hashing: the `aegis-hash` crate.
    pub use aegis_hash::*;
}

#[cfg(feature = "raft")]
pub mod raft {
    //! Raft consensus: the sans-IO core from `aegis-raft` and, with the `cluster` feature,
    //! the async driver `RaftNode` from `aegis-cluster`.
    #[cfg(feature = "cluster")]
    pub use aegis_cluster::runtime::*;
    pub use aegis_raft::*;
}

#[cfg(feature = "log")]
pub mod log {
    //! The replicated log's durable home: the `aegis-log` crate.
    pub use aegis_log::*;
}

#[cfg(feature = "transport")]
pub mod transport {
    //! Node-to-node messaging: the `aegis-transport` crate.
    pub use aegis_transport::*;

    #[cfg(feature = "quic")]
    pub mod quic {
        //! The QUIC transport with mutual TLS: the `aegis-transport-quic` crate.
        pub use aegis_transport_quic::*;
    }
}

#[cfg(feature = "cluster")]
pub mod cluster {
    //! Cluster membership and Raft groups hosted over a transport: the `aegis-cluster`
    //! crate.
    pub use aegis_cluster::*;
}
