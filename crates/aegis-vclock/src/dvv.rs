//! Dotted version vector sets (Preguiça, Baquero et al.; the design of Riak's dvvset).
//!
//! A [`DvvSet`] is the server-side state of one key: for each server node, how many
//! writes it has coordinated and the values of its most recent writes that no later
//! write has overwritten. Each live value is therefore identified by a dot
//! `(node, counter)`, and a client write removes exactly the values whose dots its
//! context covers. Concurrent writes coordinated by the same server stay siblings,
//! and writes that saw each other never do, however stale the clients' contexts are.

use core::cmp;

use serde::{Deserialize, Serialize};

use crate::{Dot, Error, NodeId, VersionVector};

/// One server's entry: it has coordinated writes `1..=counter`, and `values` holds the
/// still-live values of the last `values.len()` of them, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Entry<V> {
    node: NodeId,
    counter: u64,
    values: Vec<V>,
}

impl<V> Entry<V> {
    /// The first counter whose value is still live.
    fn first_live(&self) -> u64 {
        self.counter - self.values.len() as u64 + 1
    }
}

/// A dotted version vector set: the values of one key with their causal history.
///
/// Besides the per-node entries it may hold *anonymous* values that carry no dot: a
/// client-side value built with [`DvvSet::with_context`] or [`DvvSet::reconcile`] before
/// a server gives it one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    try_from = "DvvSetRepr<V>",
    into = "DvvSetRepr<V>",
    bound(
        serialize = "V: Clone + Serialize",
        deserialize = "V: Deserialize<'de>"
    )
)]
pub struct DvvSet<V> {
    entries: Vec<Entry<V>>,
    anonymous: Vec<V>,
}

#[derive(Serialize, Deserialize)]
struct DvvSetRepr<V> {
    entries: Vec<Entry<V>>,
    anonymous: Vec<V>,
}

impl<V> From<DvvSet<V>> for DvvSetRepr<V> {
    fn from(d: DvvSet<V>) -> Self {
        Self {
            entries: d.entries,
            anonymous: d.anonymous,
        }
    }
}

impl<V> TryFrom<DvvSetRepr<V>> for DvvSet<V> {
    type Error = Error;

    fn try_from(r: DvvSetRepr<V>) -> Result<Self, Error> {
        for (index, w) in r.entries.windows(2).enumerate() {
            if w[0].node >= w[1].node {
                return Err(Error::UnsortedEntries { index: index + 1 });
            }
        }
        for e in &r.entries {
            if e.counter == 0 {
                return Err(Error::ZeroCounter { node: e.node });
            }
            if e.values.len() as u64 > e.counter {
                return Err(Error::TooManyValues {
                    node: e.node,
                    values: e.values.len() as u64,
                    counter: e.counter,
                });
            }
        }
        Ok(Self {
            entries: r.entries,
            anonymous: r.anonymous,
        })
    }
}

impl<V> DvvSet<V> {
    /// A client-side set holding one anonymous value and no causal history.
    #[must_use]
    pub fn new(value: V) -> Self {
        Self {
            entries: Vec::new(),
            anonymous: vec![value],
        }
    }

    /// A set with no values and no history (a key never written).
    #[must_use]
    pub fn empty() -> Self {
        Self {
            entries: Vec::new(),
            anonymous: Vec::new(),
        }
    }

    /// A client-side set: the value a client wants to write and the context it read.
    #[must_use]
    pub fn with_context(context: &VersionVector, value: V) -> Self {
        Self {
            entries: context
                .iter()
                .map(|(node, counter)| Entry {
                    node,
                    counter,
                    values: Vec::new(),
                })
                .collect(),
            anonymous: vec![value],
        }
    }

    /// The causal context to hand to clients: every write this set has seen.
    #[must_use]
    pub fn join(&self) -> VersionVector {
        self.entries.iter().map(|e| (e.node, e.counter)).collect()
    }

    /// Every live value: the siblings. Values of entries first, then anonymous ones.
    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.entries
            .iter()
            .flat_map(|e| e.values.iter())
            .chain(self.anonymous.iter())
    }

    /// Every live value with its dot (`None` for anonymous values).
    pub fn dotted_values(&self) -> impl Iterator<Item = (Option<Dot>, &V)> + '_ {
        self.entries
            .iter()
            .flat_map(|e| {
                let first = e.first_live();
                e.values
                    .iter()
                    .enumerate()
                    .map(move |(k, v)| (Some(Dot::new(e.node, first + k as u64)), v))
            })
            .chain(self.anonymous.iter().map(|v| (None, v)))
    }

    /// Number of live values.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.iter().map(|e| e.values.len()).sum::<usize>() + self.anonymous.len()
    }

    /// True when no value is live.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when the history of `self` is strictly contained in that of `other`.
    #[must_use]
    pub fn less(&self, other: &Self) -> bool {
        self.join().happened_before(&other.join())
    }

    fn debug_check(&self) {
        debug_assert!(self.entries.windows(2).all(|w| w[0].node < w[1].node));
        debug_assert!(
            self.entries
                .iter()
                .all(|e| e.counter >= 1 && e.values.len() as u64 <= e.counter)
        );
    }
}

impl<V: Clone + PartialEq> DvvSet<V> {
    /// Merges two server-side sets (replica synchronisation): the result keeps each
    /// value that neither side has seen overwritten.
    #[must_use]
    pub fn sync(&self, other: &Self) -> Self {
        let anonymous = if self.less(other) {
            other.anonymous.clone()
        } else if other.less(self) {
            self.anonymous.clone()
        } else {
            let mut all = self.anonymous.clone();
            for v in &other.anonymous {
                if !all.contains(v) {
                    all.push(v.clone());
                }
            }
            all
        };
        let mut entries = Vec::with_capacity(self.entries.len().max(other.entries.len()));
        let (a, b) = (&self.entries, &other.entries);
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            match a[i].node.cmp(&b[j].node) {
                cmp::Ordering::Less => {
                    entries.push(a[i].clone());
                    i += 1;
                }
                cmp::Ordering::Greater => {
                    entries.push(b[j].clone());
                    j += 1;
                }
                cmp::Ordering::Equal => {
                    entries.push(sync_entry(&a[i], &b[j]));
                    i += 1;
                    j += 1;
                }
            }
        }
        entries.extend_from_slice(&a[i..]);
        entries.extend_from_slice(&b[j..]);
        let out = Self { entries, anonymous };
        out.debug_check();
        out
    }

    /// A server coordinating a write: `value` written by a client that had read
    /// `context`, on server `node`. Every value the context covers is discarded; the
    /// new value gets the next dot of `node`, which is returned.
    ///
    /// # Panics
    ///
    /// Panics if the counter of `node` would overflow `u64`.
    pub fn update(&mut self, context: &VersionVector, value: V, node: NodeId) -> Dot {
        let client = Self {
            entries: context
                .iter()
                .map(|(n, counter)| Entry {
                    node: n,
                    counter,
                    values: Vec::new(),
                })
                .collect(),
            anonymous: Vec::new(),
        };
        let synced = client.sync(self);
        *self = synced;
        let dot = self.event(node, value);
        debug_assert!(self.join().dominates(context));
        debug_assert_eq!(self.join().get(node), dot.counter);
        dot
    }

    /// Applies a client-side set built with [`DvvSet::with_context`] or
    /// [`DvvSet::reconcile`]: its anonymous values are written on `node` one after the
    /// other with the client's context. Returns the dots given to them.
    pub fn update_from(&mut self, client: DvvSet<V>, node: NodeId) -> Vec<Dot> {
        let context = client.join();
        let mut dots = Vec::with_capacity(client.anonymous.len());
        let mut first = true;
        for value in client.anonymous {
            if first {
                dots.push(self.update(&context, value, node));
                first = false;
            } else {
                dots.push(self.event(node, value));
            }
        }
        dots
    }

    /// Resolves the siblings into one anonymous value chosen by `resolve`, carrying the
    /// whole history so that writing it back (with [`DvvSet::update_from`]) overwrites
    /// every sibling.
    #[must_use]
    pub fn reconcile<F: FnOnce(Vec<&V>) -> V>(&self, resolve: F) -> Self {
        let value = resolve(self.values().collect());
        Self::with_context(&self.join(), value)
    }

    fn event(&mut self, node: NodeId, value: V) -> Dot {
        let dot = match self.entries.binary_search_by_key(&node, |e| e.node) {
            Ok(i) => {
                let e = &mut self.entries[i];
                e.counter = e.counter.checked_add(1).expect("dvv counter overflow");
                e.values.push(value);
                Dot::new(node, e.counter)
            }
            Err(i) => {
                self.entries.insert(
                    i,
                    Entry {
                        node,
                        counter: 1,
                        values: vec![value],
                    },
                );
                Dot::new(node, 1)
            }
        };
        self.debug_check();
        dot
    }
}

/// Merges two entries of the same node: live values are those live on the side with
/// the newer history that the other side has not seen overwritten.
fn sync_entry<V: Clone>(a: &Entry<V>, b: &Entry<V>) -> Entry<V> {
    debug_assert_eq!(a.node, b.node);
    let (hi, lo) = if a.counter >= b.counter {
        (a, b)
    } else {
        (b, a)
    };
    // Values of `hi` below `lo`'s first live counter were overwritten on `lo`'s side.
    let keep_from = hi.first_live().max(lo.first_live());
    let skip = (keep_from - hi.first_live()) as usize;
    let out = Entry {
        node: hi.node,
        counter: hi.counter,
        values: hi.values[skip.min(hi.values.len())..].to_vec(),
    };
    debug_assert!(out.values.len() as u64 <= out.counter);
    out
}
