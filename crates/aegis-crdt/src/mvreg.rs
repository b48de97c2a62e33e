//! Multi-value register.

use std::fmt::Debug;

use aegis_vclock::NodeId;
use serde::{Deserialize, Serialize};

use crate::causal::{Causal, causal_common};
use crate::dotstore::{DotFun, DotStore, context_of};

/// A multi-value register: a write replaces every value it has seen; concurrent writes
/// are all kept until a later write (one that has seen them) replaces them.
///
/// ```
/// use aegis_crdt::MVRegister;
/// let mut a = MVRegister::new(1);
/// let mut b = MVRegister::new(2);
/// let da = a.write("x");
/// let db = b.write("y");
/// a.merge(&db);
/// b.merge(&da);
/// assert_eq!(a.read(), vec![&"x", &"y"]);
/// a.write("z"); // has seen both: replaces them
/// assert_eq!(a.read(), vec![&"z"]);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    transparent,
    bound(
        serialize = "V: Serialize + Clone + PartialEq + Debug",
        deserialize = "V: Deserialize<'de> + Clone + PartialEq + Debug"
    )
)]
pub struct MVRegister<V>(Causal<DotFun<V>>);

causal_common!(MVRegister<V> where [V: Clone + PartialEq + Debug], DotFun<V>);

impl<V: Clone + PartialEq + Debug> MVRegister<V> {
    /// An empty register owned by replica `node`.
    #[must_use]
    pub fn new(node: NodeId) -> Self {
        Self(Causal::new(node))
    }

    /// Writes `value`, replacing every value seen; returns the delta.
    pub fn write(&mut self, value: V) -> MVRegister<V> {
        let d = self.0.next_dot();
        let mut cc = context_of(&self.0.store);
        cc.insert_dot(d);
        let delta = Self(self.0.delta(DotFun::single(d, value), cc));
        self.join(&delta);
        delta
    }

    /// Clears the register (the values seen); returns the delta.
    pub fn clear(&mut self) -> MVRegister<V> {
        let delta = Self(self.0.delta(DotFun::default(), context_of(&self.0.store)));
        self.join(&delta);
        delta
    }

    /// The current values, ordered by the dot of their write (so every replica lists
    /// them in the same order). Empty before the first write.
    #[must_use]
    pub fn read(&self) -> Vec<&V> {
        self.0.store.iter().map(|(_, v)| v).collect()
    }

    /// True when no value is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.store.is_bottom()
    }
}
