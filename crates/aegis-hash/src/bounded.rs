//! Consistent hashing with bounded loads (Mirrokni, Thorup and Zadimoghaddam, 2018).

use crate::{Error, HashRing, NodeIdentity, key_hash};

/// Configuration of a [`BoundedLoadRing`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundedLoadConfig {
    /// The balance factor `c`: no node takes a new key while it holds
    /// `ceil(c * (total + 1) / nodes)` or more. Must be finite and at least 1; the
    /// paper's `1 + epsilon`. Smaller is more balanced but moves more keys on change.
    pub load_factor: f64,
    /// Virtual nodes per physical node on the underlying ring.
    pub vnodes: u32,
}

impl Default for BoundedLoadConfig {
    fn default() -> Self {
        Self {
            load_factor: 1.25,
            vnodes: 150,
        }
    }
}

impl BoundedLoadConfig {
    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// [`Error::LoadFactorInvalid`] or [`Error::VnodesZero`].
    pub fn validate(&self) -> Result<(), Error> {
        if !self.load_factor.is_finite() || self.load_factor < 1.0 {
            return Err(Error::LoadFactorInvalid {
                factor: self.load_factor,
            });
        }
        if self.vnodes == 0 {
            return Err(Error::VnodesZero);
        }
        Ok(())
    }
}

/// A [`HashRing`] that tracks how many keys each node holds and never assigns a key to a
/// node at or above `ceil(c * (total + 1) / nodes)`: the lookup walks clockwise from the
/// key and takes the first node below that bound.
///
/// The caller reports the end of an assignment with [`BoundedLoadRing::release`]. The
/// placement of a key depends on the loads at the time it is assigned, so this is for
/// routing sessions or requests to servers, not for data that must be found again by
/// hash alone.
///
/// ```
/// use aegis_hash::{BoundedLoadConfig, BoundedLoadRing};
///
/// let mut ring = BoundedLoadRing::<String>::new(BoundedLoadConfig::default()).unwrap();
/// ring.add_node("a".to_string());
/// ring.add_node("b".to_string());
/// for i in 0..100 {
///     ring.assign(format!("session:{i}")).unwrap();
/// }
/// // ceil(1.25 * 100 / 2) = 63 is the most any node took.
/// assert!(ring.loads().all(|(_, load)| load <= 63));
/// ```
#[derive(Debug, Clone)]
pub struct BoundedLoadRing<N: NodeIdentity = String> {
    config: BoundedLoadConfig,
    ring: HashRing<N>,
    /// Load of each member, parallel to `ring.nodes()`.
    loads: Vec<u64>,
    total: u64,
}

impl<N: NodeIdentity> BoundedLoadRing<N> {
    /// An empty ring.
    ///
    /// # Errors
    ///
    /// If the configuration does not validate.
    pub fn new(config: BoundedLoadConfig) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            config,
            ring: HashRing::with_vnodes(config.vnodes),
            loads: Vec::new(),
            total: 0,
        })
    }

    /// Adds a node with no load. Returns `false` if it was already a member.
    pub fn add_node(&mut self, node: N) -> bool {
        if !self.ring.add_node(node.clone()) {
            return false;
        }
        let i = self.ring.index_of(&node).expect("just added");
        self.loads.insert(i, 0);
        debug_assert_eq!(self.loads.len(), self.ring.len());
        true
    }

    /// Removes a node. Its load leaves the total: the caller reassigns those keys.
    /// Returns the load it held, or `None` if it was not a member.
    pub fn remove_node(&mut self, node: &N) -> Option<u64> {
        let i = self.ring.index_of(node)?;
        assert!(self.ring.remove_node(node));
        let load = self.loads.remove(i);
        self.total -= load;
        debug_assert_eq!(self.loads.len(), self.ring.len());
        Some(load)
    }

    /// The most keys a node may hold before it takes one more:
    /// `ceil(c * (total + 1) / nodes)`, or 0 on an empty ring.
    #[must_use]
    pub fn capacity(&self) -> u64 {
        if self.ring.is_empty() {
            return 0;
        }
        let mean_after = (self.total + 1) as f64 / self.ring.len() as f64;
        let cap = (self.config.load_factor * mean_after).ceil() as u64;
        // c >= 1 guarantees room for the next key somewhere.
        debug_assert!(cap * self.ring.len() as u64 > self.total);
        cap
    }

    /// Where a key would be assigned now, without assigning it.
    #[must_use]
    pub fn lookup(&self, key: impl AsRef<[u8]>) -> Option<&N> {
        let cap = self.capacity();
        let i = self
            .ring
            .walk_distinct(key_hash(key), |i| self.loads[i] < cap)?;
        Some(&self.ring.nodes()[i])
    }

    /// Assigns a key: the first node clockwise from the key below the capacity, whose
    /// load then grows by one. `None` only on an empty ring.
    pub fn assign(&mut self, key: impl AsRef<[u8]>) -> Option<&N> {
        self.assign_by_hash(key_hash(key))
    }

    /// [`BoundedLoadRing::assign`] for a placement hash.
    pub fn assign_by_hash(&mut self, hash: u64) -> Option<&N> {
        let cap = self.capacity();
        let loads = &self.loads;
        let i = self.ring.walk_distinct(hash, |i| loads[i] < cap)?;
        assert!(self.loads[i] < cap, "the walk accepted a full node");
        self.loads[i] += 1;
        self.total += 1;
        Some(&self.ring.nodes()[i])
    }

    /// Ends one assignment on `node`.
    ///
    /// # Errors
    ///
    /// [`Error::NodeUnknown`] or [`Error::LoadUnderflow`].
    pub fn release(&mut self, node: &N) -> Result<(), Error> {
        let i = self.ring.index_of(node).ok_or_else(|| Error::NodeUnknown {
            node: format!("{node:?}"),
        })?;
        if self.loads[i] == 0 {
            return Err(Error::LoadUnderflow {
                node: format!("{node:?}"),
            });
        }
        self.loads[i] -= 1;
        self.total -= 1;
        Ok(())
    }

    /// Every member with its load, in identity order.
    pub fn loads(&self) -> impl Iterator<Item = (&N, u64)> {
        self.ring.nodes().iter().zip(self.loads.iter().copied())
    }

    /// Total keys assigned.
    #[must_use]
    pub fn total_load(&self) -> u64 {
        self.total
    }

    /// The underlying ring, for unbounded lookups and diffs.
    #[must_use]
    pub fn ring(&self) -> &HashRing<N> {
        &self.ring
    }
}
