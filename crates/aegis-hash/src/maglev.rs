//! Maglev hashing (Eisenbud et al., NSDI 2016).

use crate::{Error, NodeIdentity, key_hash, reduce};

/// Seeds of the two node hashes that define a node's permutation of the table.
const OFFSET_SEED: u64 = 0x4D41_474C_4556_4F46; // "MAGLEVOF"
const SKIP_SEED: u64 = 0x4D41_474C_4556_534B; // "MAGLEVSK"

/// Configuration of a [`Maglev`] table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaglevConfig {
    /// The table holds the smallest prime at least `slots_per_node_min * nodes` slots.
    /// More slots per node means finer balance and less disruption, at the cost of
    /// memory (4 bytes a slot) and build time. At least 1; 100 by default, as the paper
    /// recommends.
    pub slots_per_node_min: u32,
    /// The table holds at least this many slots whatever the node count. The table size
    /// only changes when `slots_per_node_min * nodes` outgrows it, and a change of size
    /// moves almost every key: set this to `slots_per_node_min` times the largest
    /// cluster you expect. 65,537 (a prime) by default, which covers 655 nodes.
    pub table_size_min: u32,
    /// The largest table accepted, in slots.
    pub table_size_max: u32,
}

impl Default for MaglevConfig {
    fn default() -> Self {
        Self {
            slots_per_node_min: 100,
            table_size_min: 65_537,
            table_size_max: 1 << 26,
        }
    }
}

impl MaglevConfig {
    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// [`Error::SlotsPerNodeTooFew`] if `slots_per_node_min` is zero.
    pub fn validate(&self) -> Result<(), Error> {
        if self.slots_per_node_min == 0 {
            return Err(Error::SlotsPerNodeTooFew { value: 0, min: 1 });
        }
        Ok(())
    }
}

/// A Maglev lookup table: one table read per lookup.
///
/// The table size `M` is the smallest prime at least
/// `max(table_size_min, slots_per_node_min * nodes)`. Each node walks its own
/// permutation of the `M` slots:
/// `offset = XXH3-64(node, seed 0x4D41474C45564F46) mod M`,
/// `skip = XXH3-64(node, seed 0x4D41474C4556534B) mod (M - 1) + 1`, slot `j` of the walk is
/// `(offset + j * skip) mod M`. Nodes take turns, in identity order, claiming the next
/// free slot of their walk until the table is full, so slot counts differ by at most
/// one. A key with placement hash `h` reads slot `(h * M) >> 64`.
///
/// Disruption: Maglev trades minimal movement for near-perfect balance and one-read
/// lookups. Removing a node moves its keys and, because the turns of the other nodes'
/// walks shift, some keys between surviving nodes too; the more slots per node, the
/// fewer. The benchmark report measures the moved share next to the ideal `1 / n`.
/// Changing the node set rebuilds the table; a change of table size (when
/// `slots_per_node_min * nodes` outgrows `table_size_min`) moves almost every key.
///
/// ```
/// use aegis_hash::Maglev;
///
/// let maglev = Maglev::new(["node-1", "node-2", "node-3"]).unwrap();
/// assert_eq!(maglev.table_size(), 65_537);
/// assert!(maglev.get_node("user:123").is_some());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maglev<N: NodeIdentity = String> {
    config: MaglevConfig,
    /// Members in identity order.
    nodes: Vec<N>,
    /// Slot to node index.
    table: Vec<u32>,
}

impl Maglev<String> {
    /// A table over string nodes with the default configuration.
    ///
    /// # Errors
    ///
    /// As [`Maglev::with_config`].
    pub fn new(nodes: impl IntoIterator<Item = impl Into<String>>) -> Result<Self, Error> {
        Self::with_config(MaglevConfig::default(), nodes.into_iter().map(Into::into))
    }
}

impl<N: NodeIdentity> Maglev<N> {
    /// A table over any node type. Repeated nodes count once.
    ///
    /// # Errors
    ///
    /// If the configuration does not validate, or the table would exceed
    /// `table_size_max` ([`Error::TableTooLarge`]).
    pub fn with_config(
        config: MaglevConfig,
        nodes: impl IntoIterator<Item = N>,
    ) -> Result<Self, Error> {
        config.validate()?;
        let mut nodes: Vec<N> = nodes.into_iter().collect();
        nodes.sort();
        nodes.dedup();
        let table = populate(&config, &nodes)?;
        Ok(Self {
            config,
            nodes,
            table,
        })
    }

    /// Adds a node and rebuilds the table. Returns `Ok(false)` if it was a member.
    ///
    /// # Errors
    ///
    /// [`Error::TableTooLarge`]; the table is then unchanged.
    pub fn add_node(&mut self, node: N) -> Result<bool, Error> {
        let Err(i) = self.nodes.binary_search(&node) else {
            return Ok(false);
        };
        let mut nodes = self.nodes.clone();
        nodes.insert(i, node);
        self.table = populate(&self.config, &nodes)?;
        self.nodes = nodes;
        Ok(true)
    }

    /// Removes a node and rebuilds the table. Returns `false` if it was not a member.
    pub fn remove_node(&mut self, node: &N) -> bool {
        let Ok(i) = self.nodes.binary_search(node) else {
            return false;
        };
        self.nodes.remove(i);
        self.table = populate(&self.config, &self.nodes).expect("a smaller table fits");
        true
    }

    /// Members in identity order.
    #[must_use]
    pub fn nodes(&self) -> &[N] {
        &self.nodes
    }

    /// Slots in the table (a prime, or 0 when empty).
    #[must_use]
    pub fn table_size(&self) -> usize {
        self.table.len()
    }

    /// How many slots each member owns, parallel to [`Maglev::nodes`].
    #[must_use]
    pub fn slot_counts(&self) -> Vec<u64> {
        let mut counts = vec![0; self.nodes.len()];
        for &s in &self.table {
            counts[s as usize] += 1;
        }
        counts
    }

    /// The owner of a key, or `None` when empty.
    #[inline]
    #[must_use]
    pub fn get_node(&self, key: impl AsRef<[u8]>) -> Option<&N> {
        self.get_node_by_hash(key_hash(key))
    }

    /// The owner of a placement hash, or `None` when empty.
    #[inline]
    #[must_use]
    pub fn get_node_by_hash(&self, hash: u64) -> Option<&N> {
        let slot = reduce(hash, self.table.len() as u64) as usize;
        let owner = *self.table.get(slot)?;
        Some(&self.nodes[owner as usize])
    }
}

/// Fills the table: each node in turn claims the next free slot of its permutation.
fn populate<N: NodeIdentity>(config: &MaglevConfig, nodes: &[N]) -> Result<Vec<u32>, Error> {
    if nodes.is_empty() {
        return Ok(Vec::new());
    }
    let wanted = (u64::from(config.slots_per_node_min) * nodes.len() as u64)
        .max(u64::from(config.table_size_min));
    // The smallest prime at least `wanted`, and at least 2 so that `M - 1 > 0`.
    let size = next_prime(wanted.max(2));
    if size > u64::from(config.table_size_max) {
        return Err(Error::TableTooLarge {
            size,
            max: config.table_size_max,
        });
    }
    let m = size;
    // Per node: the current slot of its walk and its skip.
    let mut walk: Vec<(u64, u64)> = nodes
        .iter()
        .map(|n| {
            let offset = n.hash_with_seed(OFFSET_SEED) % m;
            let skip = n.hash_with_seed(SKIP_SEED) % (m - 1) + 1;
            (offset, skip)
        })
        .collect();
    const FREE: u32 = u32::MAX;
    let mut table = vec![FREE; m as usize];
    let mut filled = 0_u64;
    'fill: loop {
        for (i, (slot, skip)) in walk.iter_mut().enumerate() {
            // A prime size and 0 < skip < M make every walk a full permutation, so a
            // free slot is always found while the table is not full.
            while table[*slot as usize] != FREE {
                *slot = step(*slot, *skip, m);
            }
            table[*slot as usize] = i as u32;
            *slot = step(*slot, *skip, m);
            filled += 1;
            if filled == m {
                break 'fill;
            }
        }
    }
    debug_assert!(table.iter().all(|&s| (s as usize) < nodes.len()));
    Ok(table)
}

/// `(slot + skip) mod m` for `slot, skip < m`, without a division.
#[inline]
fn step(slot: u64, skip: u64, m: u64) -> u64 {
    let next = slot + skip;
    if next >= m { next - m } else { next }
}

/// The smallest prime `>= n`, by trial division (sizes stay below 2^32).
fn next_prime(n: u64) -> u64 {
    let mut c = n.max(2);
    while !is_prime(c) {
        c += 1;
    }
    c
}

fn is_prime(n: u64) -> bool {
    if n < 4 {
        return n >= 2;
    }
    if n.is_multiple_of(2) || n.is_multiple_of(3) {
        return false;
    }
    let mut d = 5;
    while d * d <= n {
        if n.is_multiple_of(d) || n.is_multiple_of(d + 2) {
            return false;
        }
        d += 6;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::{is_prime, next_prime};

    #[test]
    fn primes() {
        let small: Vec<u64> = (0..30).filter(|&n| is_prime(n)).collect();
        assert_eq!(small, [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
        assert_eq!(next_prime(1000), 1009);
        assert_eq!(next_prime(100_000), 100_003);
        assert_eq!(next_prime(1009), 1009);
    }
}
