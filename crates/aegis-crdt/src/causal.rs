//! The shared core of the causal CRDTs: a dot store, its causal context and the local
//! replica id.

use aegis_vclock::{CausalContext, Dot, NodeId};
use serde::{Deserialize, Serialize};

use crate::dotstore::{DotStore, check_causal};

/// `(store, context)` plus the id of the replica that mutates it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(
    try_from = "CausalRepr<S>",
    into = "CausalRepr<S>",
    bound(
        serialize = "S: DotStore + Serialize",
        deserialize = "S: DotStore + Deserialize<'de>"
    )
)]
pub(crate) struct Causal<S> {
    pub(crate) node: NodeId,
    pub(crate) store: S,
    pub(crate) cc: CausalContext,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct CausalRepr<S> {
    node: NodeId,
    store: S,
    cc: CausalContext,
}

impl<S> From<Causal<S>> for CausalRepr<S> {
    fn from(c: Causal<S>) -> Self {
        Self {
            node: c.node,
            store: c.store,
            cc: c.cc,
        }
    }
}

impl<S: DotStore> TryFrom<CausalRepr<S>> for Causal<S> {
    type Error = postcard::Error;

    fn try_from(r: CausalRepr<S>) -> Result<Self, Self::Error> {
        check_causal(&r.store, &r.cc)?;
        Ok(Self {
            node: r.node,
            store: r.store,
            cc: r.cc,
        })
    }
}

impl<S: PartialEq> PartialEq for Causal<S> {
    fn eq(&self, other: &Self) -> bool {
        self.store == other.store && self.cc == other.cc
    }
}

impl<S: DotStore> Causal<S> {
    pub(crate) fn new(node: NodeId) -> Self {
        Self {
            node,
            store: S::default(),
            cc: CausalContext::new(),
        }
    }

    /// The next dot of this replica; not yet in the context.
    pub(crate) fn next_dot(&self) -> Dot {
        let d = self.cc.next_dot(self.node);
        debug_assert!(!self.cc.contains(d));
        d
    }

    /// A delta of this replica with the given parts.
    pub(crate) fn delta(&self, store: S, cc: CausalContext) -> Self {
        Self {
            node: self.node,
            store,
            cc,
        }
    }

    /// Joins and reports a change. With the context unchanged, `other` adds nothing
    /// (all its dots were seen) and can only remove, so counting dots suffices.
    pub(crate) fn join_changed(&mut self, other: &Self) -> bool {
        let cc_before = self.cc.clone();
        let dots_before = self.store.dot_count();
        self.join(other);
        let dots_after = self.store.dot_count();
        debug_assert!(self.cc != cc_before || dots_after <= dots_before);
        self.cc != cc_before || dots_after != dots_before
    }

    pub(crate) fn join(&mut self, other: &Self) {
        self.store.join_store(&self.cc, &other.store, &other.cc);
        self.cc.join(&other.cc);
        #[cfg(debug_assertions)]
        self.store.for_each_dot(&mut |d| {
            debug_assert!(self.cc.contains(d), "store dot {d:?} outside the context");
        });
    }
}

/// Implements the common surface of a causal CRDT wrapping `Causal<Store>`.
macro_rules! causal_common {
    ($ty:ident < $($g:ident),* > where [$($bounds:tt)*], $store:ty) => {
        impl<$($g),*> $ty<$($g),*> where $($bounds)* {
            /// Least upper bound with `other` (state or delta), taken by reference.
            pub fn join(&mut self, other: &Self) {
                self.0.join(&other.0);
            }

            /// Same as `join`.
            pub fn merge(&mut self, other: &Self) {
                self.0.join(&other.0);
            }

            /// The causal context: every dot this replica has seen.
            #[must_use]
            pub fn context(&self) -> &aegis_vclock::CausalContext {
                &self.0.cc
            }

            /// The replica this value mutates for.
            #[must_use]
            pub fn node(&self) -> aegis_vclock::NodeId {
                self.0.node
            }
        }

        impl<$($g),*> $crate::Crdt for $ty<$($g),*> where $($bounds)* {
            fn join(&mut self, other: &Self) {
                self.0.join(&other.0);
            }

            fn join_changed(&mut self, other: &Self) -> bool {
                self.0.join_changed(&other.0)
            }
        }

        impl<$($g),*> $crate::dotstore::CausalCrdt for $ty<$($g),*> where $($bounds)* {
            type Store = $store;

            fn from_parts(
                node: aegis_vclock::NodeId,
                store: Self::Store,
                context: aegis_vclock::CausalContext,
            ) -> Self {
                Self($crate::causal::Causal { node, store, cc: context })
            }

            fn into_parts(self) -> (Self::Store, aegis_vclock::CausalContext) {
                (self.0.store, self.0.cc)
            }

            fn store(&self) -> &Self::Store {
                &self.0.store
            }

            fn context(&self) -> &aegis_vclock::CausalContext {
                &self.0.cc
            }
        }
    };
}

pub(crate) use causal_common;
