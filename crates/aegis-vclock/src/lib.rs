//! Causality tracking for replicated systems.
//!
//! - [`VectorClock`] / [`VersionVector`]: a sorted small vector of `(node, counter)`
//!   pairs, compared and merged in one merge-join pass; [`Ordering`] is the result of a
//!   comparison (`Before`, `After`, `Equal`, `Concurrent`).
//! - [`Dot`] and [`CausalContext`]: single events, and sets of events stored as a
//!   compact version vector plus a cloud of out-of-order dots (the causal context of
//!   delta-state CRDTs).
//! - [`DvvSet`]: dotted version vector sets (as in Riak 2.0) for server-side values
//!   with siblings, free of the false siblings a per-server vector clock creates.
//! - [`Hlc`]: a hybrid logical clock packed into 64 bits, and [`LwwStamp`], a total
//!   order for last-writer-wins.
//! - [`Stamp`]: interval tree clocks, for systems where replicas come and go without
//!   global ids.
//!
//! # Contract
//!
//! The crate is sans-IO: it never reads the system clock or touches the network; the
//! caller passes physical time in. Every type implements serde, and the postcard
//! encodings are stable (covered by test vectors). Decoding garbage or truncated input
//! returns an error and never panics; decoders also bound recursion depth.
//!
//! # Example
//!
//! ```
//! use aegis_vclock::{CausalContext, Dot, Hlc, HlcConfig, Ordering, Stamp, VectorClock};
//!
//! let mut a = VectorClock::new();
//! a.increment(1);
//! let mut b = a.clone();
//! b.increment(2);
//! assert_eq!(a.compare(&b), Ordering::Before);
//! a.increment(3);
//! assert_eq!(a.compare(&b), Ordering::Concurrent);
//! a.merge(&b);
//! assert!(a.dominates(&b));
//!
//! let mut cc = CausalContext::new();
//! cc.insert_dot(Dot::new(7, 2));
//! assert_eq!(cc.next_dot(7), Dot::new(7, 3));
//! cc.insert_dot(Dot::new(7, 1));
//! assert!(cc.contains(Dot::new(7, 1)) && cc.contains(Dot::new(7, 2)));
//!
//! let mut hlc = Hlc::new(HlcConfig::default()).unwrap();
//! let t1 = hlc.now(1_700_000_000_000).unwrap();
//! let t2 = hlc.now(1_700_000_000_000).unwrap(); // same millisecond: logical + 1
//! assert!(t2 > t1 && t2.logical() == 1);
//!
//! let (mut left, right) = Stamp::seed().fork();
//! left.event().unwrap();
//! assert_eq!(right.compare(&left), Ordering::Before);
//! ```

mod causal;
mod dvv;
mod error;
pub mod hlc;
pub mod itc;
mod vector;

pub use causal::{CausalContext, Dot};
pub use dvv::DvvSet;
pub use error::Error;
pub use hlc::{Hlc, HlcConfig, HlcTimestamp, LwwStamp};
pub use itc::{ItcDecodeConfig, Stamp};
pub use vector::{Ordering, VectorClock, VersionVector};

/// Node identifier, shared by every Aegis crate.
pub type NodeId = u64;
