//! Delta-state conflict-free replicated data types (Almeida, Shoker and Baquero,
//! "Delta state replicated data types", 2018), built on dot stores and the causal
//! context of `aegis-vclock`.
//!
//! Every type is a join-semilattice: replicas mutate locally and converge by joining
//! states in any order, any number of times. Every mutator returns its *delta*, a small
//! value of the same type whose join into any replica has the same effect as the
//! mutation; shipping deltas instead of full states is what the [`anti_entropy`] helper
//! automates. `join` (alias `merge`) takes the other side by reference.
//!
//! | type | semantics |
//! |---|---|
//! | [`GCounter`], [`PNCounter`] | counters; every increment counts once |
//! | [`GSet`] | grow-only set |
//! | [`ORSet`] | add-wins observed-remove set, no tombstones |
//! | [`RWSet`] | remove-wins observed-remove set |
//! | [`LWWRegister`] | last writer wins by `(timestamp, node)` |
//! | [`MVRegister`] | keeps concurrent writes |
//! | [`EWFlag`], [`DWFlag`] | enable-wins and disable-wins flags |
//! | [`ORMap`] | map of causal CRDTs with reset-remove semantics |
//!
//! Contract: the crate is sans-IO and never reads a clock (timestamps come in as
//! arguments); joins are commutative, associative and idempotent; decoding untrusted
//! bytes with [`codec::decode`] returns an [`Error`] and never panics.
//!
//! ```
//! use aegis_crdt::{ORSet, codec};
//!
//! let mut a = ORSet::new(1);
//! let mut b = ORSet::new(2);
//! let delta = a.add("x".to_string());
//! b.add("y".to_string());
//!
//! // Ship the delta, not the whole set.
//! let bytes = codec::encode(&delta)?;
//! b.merge(&codec::decode(&bytes)?);
//! a.merge(&b);
//! assert_eq!(a, b);
//! assert_eq!(a.iter().collect::<Vec<_>>(), ["x", "y"]);
//! # Ok::<(), aegis_crdt::Error>(())
//! ```

pub mod anti_entropy;
mod causal;
pub mod codec;
mod counter;
pub mod dotstore;
mod error;
mod flag;
mod gset;
mod lww;
mod mvreg;
mod ormap;
mod orset;
mod setstore;

pub use aegis_vclock::{CausalContext, Dot, NodeId};
pub use anti_entropy::{AntiEntropy, AntiEntropyConfig};
pub use counter::{GCounter, PNCounter};
pub use dotstore::{CausalCrdt, DotFun, DotMap, DotSet, DotStore};
pub use error::Error;
pub use flag::{DWFlag, EWFlag};
pub use gset::GSet;
pub use lww::LWWRegister;
pub use mvreg::MVRegister;
pub use ormap::ORMap;
pub use orset::{ORSet, RWSet};
pub use setstore::SetStore;

/// A state-based CRDT: a join-semilattice.
pub trait Crdt: Clone + PartialEq {
    /// Least upper bound of `self` and `other`, stored in `self`.
    fn join(&mut self, other: &Self);

    /// Joins `other` and reports whether `self` changed (whether `other` was not
    /// already included).
    fn join_changed(&mut self, other: &Self) -> bool {
        let before = self.clone();
        self.join(other);
        *self != before
    }
}
