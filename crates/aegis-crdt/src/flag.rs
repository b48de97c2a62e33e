//! Enable-wins and disable-wins flags.

use aegis_vclock::NodeId;
use serde::{Deserialize, Serialize};

use crate::causal::{Causal, causal_common};
use crate::dotstore::{DotSet, context_of};

/// An enable-wins flag, initially disabled.
///
/// Semantics: `enable` adds a fresh dot, `disable` removes the dots it has seen. The flag
/// reads enabled while any dot remains, so an `enable` concurrent with a `disable` wins.
/// Disabling leaves no tombstone: the state is back to an empty store.
///
/// ```
/// use aegis_crdt::EWFlag;
/// let mut a = EWFlag::new(1);
/// let mut b = EWFlag::new(2);
/// let on = a.enable();
/// b.merge(&on);
/// let off = b.disable();
/// let on_again = a.enable(); // concurrent with b's disable
/// a.merge(&off);
/// b.merge(&on_again);
/// assert!(a.read() && b.read());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EWFlag(Causal<DotSet>);

causal_common!(EWFlag<> where [], DotSet);

impl EWFlag {
    /// A disabled flag owned by replica `node`.
    #[must_use]
    pub fn new(node: NodeId) -> Self {
        Self(Causal::new(node))
    }

    /// Enables the flag; returns the delta.
    pub fn enable(&mut self) -> EWFlag {
        let delta = Self(fresh_dot_delta(&self.0));
        self.join(&delta);
        delta
    }

    /// Disables the flag (as far as this replica has seen); returns the delta.
    pub fn disable(&mut self) -> EWFlag {
        let delta = Self(clear_seen_delta(&self.0));
        self.join(&delta);
        delta
    }

    /// True when enabled.
    #[must_use]
    pub fn read(&self) -> bool {
        !self.0.store.is_empty()
    }
}

/// A disable-wins flag, initially enabled (as in the paper).
///
/// Semantics: `disable` adds a fresh dot, `enable` removes the dots it has seen. The
/// flag reads enabled only when no dot remains, so a `disable` concurrent with an
/// `enable` wins.
///
/// ```
/// use aegis_crdt::DWFlag;
/// let mut f = DWFlag::new(1);
/// assert!(f.read());
/// f.disable();
/// assert!(!f.read());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DWFlag(Causal<DotSet>);

causal_common!(DWFlag<> where [], DotSet);

impl DWFlag {
    /// An enabled flag owned by replica `node`.
    #[must_use]
    pub fn new(node: NodeId) -> Self {
        Self(Causal::new(node))
    }

    /// Disables the flag; returns the delta.
    pub fn disable(&mut self) -> DWFlag {
        let delta = Self(fresh_dot_delta(&self.0));
        self.join(&delta);
        delta
    }

    /// Enables the flag (as far as this replica has seen); returns the delta.
    pub fn enable(&mut self) -> DWFlag {
        let delta = Self(clear_seen_delta(&self.0));
        self.join(&delta);
        delta
    }

    /// True when enabled.
    #[must_use]
    pub fn read(&self) -> bool {
        self.0.store.is_empty()
    }
}

/// The delta that adds a fresh dot of this replica: what makes a flag "marked".
fn fresh_dot_delta(state: &Causal<DotSet>) -> Causal<DotSet> {
    let d = state.next_dot();
    let mut cc = context_of(&state.store);
    cc.insert_dot(d);
    state.delta(DotSet::single(d), cc)
}

/// The delta that removes every dot this replica has seen: what "unmarks" a flag.
fn clear_seen_delta(state: &Causal<DotSet>) -> Causal<DotSet> {
    state.delta(DotSet::default(), context_of(&state.store))
}
