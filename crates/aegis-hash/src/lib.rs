//! Stable placement hashing: where every key lives.
//!
//! This crate decides which node owns a key, for the shard router and for the
//! eventually-consistent path. Every algorithm here is deterministic: the same key and
//! the same set of nodes give the same answer in every process, on every machine, and in
//! any language that implements the documented hash.
//!
//! | type | lookup | removal of any node | notes |
//! | --- | --- | --- | --- |
//! | [`JumpHash`] | O(log n), no memory | only the last bucket | Lamping and Veach (2014), bit-identical |
//! | [`HashRing`] | O(1) expected | yes | virtual nodes, weights, replicas, [`HashRing::diff`] |
//! | [`BoundedLoadRing`] | O(1) expected | yes | Mirrokni et al. (2018): no node above `ceil(c * mean)` |
//! | [`Rendezvous`] | O(n) | yes | highest random weight, weighted, top-n without allocating |
//! | [`Maglev`] | O(1), one table read | yes (table rebuild) | prime table of at least 100 slots per node |
//! | [`Memento`] | close to jump | yes | MementoHash (Coluzzi et al. 2023) |
//!
//! # Contract
//!
//! - Keys are hashed with [`key_hash`]: XXH3-64 with seed 0 over the key bytes. Nothing
//!   in this crate uses a randomly keyed hasher, so two processes always agree.
//! - Node identities are [`NodeIdentity`]s: `String` and `u64` out of the box. Results never
//!   depend on the order in which nodes were added: every structure keeps its nodes in
//!   identity order and breaks ties by identity.
//! - No I/O, no clock, no global state, no `unsafe`.
//!
//! # Example
//!
//! ```
//! use aegis_hash::{HashRing, JumpHash, key_hash};
//!
//! let mut ring = HashRing::new(150);
//! ring.add_node("node-1");
//! ring.add_node("node-2");
//! ring.add_node("node-3");
//!
//! let replicas = ring.get_nodes("user:123", 3);
//! assert_eq!(replicas.len(), 3);
//! // The primary is the first replica, and replicas are distinct physical nodes.
//! assert_eq!(Some(replicas[0]), ring.get_node("user:123"));
//! assert_ne!(replicas[0], replicas[1]);
//!
//! // Jump hash over the same placement hash.
//! assert!(JumpHash::hash("user:123", 3) < 3);
//! assert_eq!(
//!     JumpHash::hash("user:123", 3),
//!     JumpHash::bucket(key_hash("user:123"), 3)
//! );
//! ```

#![forbid(unsafe_code)]

mod bounded;
mod jump;
mod maglev;
mod memento;
mod rendezvous;
mod ring;

pub use bounded::{BoundedLoadConfig, BoundedLoadRing};
pub use jump::JumpHash;
pub use maglev::{Maglev, MaglevConfig};
pub use memento::Memento;
pub use rendezvous::{Rendezvous, TOP_N_MAX, TopN};
pub use ring::{HashRing, KeyRange, MovedRange};

use std::fmt;

/// The placement hash of a key: XXH3-64 with seed 0 over the key bytes.
///
/// This is the one hash every placement algorithm in this crate starts from, and the one
/// a client in another language must implement to compute the same placement. String
/// keys are hashed as their UTF-8 bytes; integer keys should be hashed as their
/// little-endian bytes.
///
/// Test vectors (checked in this crate's tests against an independent implementation):
///
/// | key bytes | `key_hash` |
/// | --- | --- |
/// | empty | `0x2D06_8005_38D3_94C2` |
/// | `a` | `0xE6C6_32B6_1E96_4E1F` |
/// | `user:123` | `0xE7FE_84BA_D891_3B52` |
/// | `node-1` | `0x0DB0_9EDF_D945_8385` |
/// | `The quick brown fox jumps over the lazy dog` | `0xCE7D_19A5_418F_B365` |
/// | the 256 bytes `0, 1, ..., 255` | `0x9408_A443_3B95_2D71` |
///
/// ```
/// assert_eq!(aegis_hash::key_hash(""), 0x2D06_8005_38D3_94C2);
/// assert_eq!(aegis_hash::key_hash("user:123"), 0xE7FE_84BA_D891_3B52);
/// ```
#[inline]
#[must_use]
pub fn key_hash(key: impl AsRef<[u8]>) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key.as_ref())
}

/// The identity of a node: what placement hashes to position the node.
///
/// Implementations must be pure functions of the identity (never a randomly keyed
/// hasher), and `Ord` must be a total order consistent with `Eq`: it breaks ties, so two
/// structures built from the same nodes in different orders give the same answers.
pub trait NodeIdentity: Clone + Ord + fmt::Debug {
    /// XXH3-64 of the identity's canonical bytes with the given seed.
    ///
    /// The canonical bytes of a `String` are its UTF-8 bytes; those of a `u64` are its 8
    /// little-endian bytes.
    fn hash_with_seed(&self, seed: u64) -> u64;
}

impl NodeIdentity for String {
    #[inline]
    fn hash_with_seed(&self, seed: u64) -> u64 {
        xxhash_rust::xxh3::xxh3_64_with_seed(self.as_bytes(), seed)
    }
}

impl NodeIdentity for u64 {
    #[inline]
    fn hash_with_seed(&self, seed: u64) -> u64 {
        xxhash_rust::xxh3::xxh3_64_with_seed(&self.to_le_bytes(), seed)
    }
}

/// What can go wrong when configuring or changing a placement structure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A node was given zero virtual nodes, so it could own no key.
    #[error("a node needs at least one virtual node")]
    VnodesZero,
    /// Adding nodes would put more points on a ring than its index type holds.
    #[error("the ring would hold {points} points, more than {max}")]
    PointsTooMany {
        /// Points the ring would hold after the change.
        points: u64,
        /// The most points a ring holds.
        max: u64,
    },
    /// More nodes than a structure can index.
    #[error("{count} nodes exceed the maximum of {max}")]
    NodesTooMany {
        /// Nodes requested.
        count: u64,
        /// The most nodes supported.
        max: u64,
    },
    /// A rendezvous weight that is not a finite number greater than zero.
    #[error("weight {weight} is not a finite number greater than zero")]
    WeightInvalid {
        /// The rejected weight.
        weight: f64,
    },
    /// A top-n lookup asked for more replicas than the fixed result buffer holds.
    #[error("{requested} replicas requested, at most {max} supported")]
    ReplicasTooMany {
        /// Replicas requested.
        requested: usize,
        /// [`TOP_N_MAX`].
        max: usize,
    },
    /// A bounded-load factor `c` that is not a finite number of at least 1.
    #[error("load factor {factor} is not a finite number of at least 1")]
    LoadFactorInvalid {
        /// The rejected factor.
        factor: f64,
    },
    /// A Maglev table with fewer slots per node than the configured minimum allows.
    #[error("slots_per_node_min is {value}, it must be at least {min}")]
    SlotsPerNodeTooFew {
        /// The configured value.
        value: u32,
        /// The smallest accepted value.
        min: u32,
    },
    /// A Maglev table larger than `table_size_max`.
    #[error("a Maglev table of {size} slots exceeds table_size_max = {max}")]
    TableTooLarge {
        /// Slots the table would need.
        size: u64,
        /// The configured maximum.
        max: u32,
    },
    /// The node is not a member.
    #[error("node {node} is not a member")]
    NodeUnknown {
        /// The node, formatted with `Debug`.
        node: String,
    },
    /// A release of load from a node that holds none.
    #[error("node {node} holds no load to release")]
    LoadUnderflow {
        /// The node, formatted with `Debug`.
        node: String,
    },
}

/// A bijective 64-bit mixer (the SplitMix64 finalizer): every output bit depends on
/// every input bit. Used to derive per-node and per-round pseudo-random values from a
/// key hash without hashing the key bytes again.
#[inline]
pub(crate) const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Maps a uniform 64-bit hash onto `0..n` without division (Lemire's multiply-shift).
/// Uses the high bits of `hash`, so it is fair when `hash` is uniform.
#[inline]
pub(crate) const fn reduce(hash: u64, n: u64) -> u64 {
    ((hash as u128 * n as u128) >> 64) as u64
}

#[cfg(test)]
mod tests {
    use super::{mix64, reduce};

    #[test]
    fn reduce_stays_in_range() {
        for n in [1_u64, 2, 3, 1009, u64::MAX] {
            assert!(reduce(0, n) < n);
            assert!(reduce(u64::MAX, n) < n);
            assert_eq!(reduce(u64::MAX, n), n - 1);
        }
    }

    #[test]
    fn mix_is_not_identity() {
        assert_eq!(mix64(0), 0);
        assert_ne!(mix64(1), 1);
        assert_ne!(mix64(1), mix64(2));
    }
}
