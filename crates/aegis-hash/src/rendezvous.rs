//! Rendezvous (highest random weight) hashing.

use crate::{Error, NodeIdentity, key_hash};

/// The most replicas one [`Rendezvous::get_nodes`] lookup returns; the result lives in a
/// fixed array so that lookups never allocate.
pub const TOP_N_MAX: usize = 16;

/// Seed of the node hash used for rendezvous scores.
const NODE_SEED: u64 = 0x5245_4E44_455A_564F; // "RENDEZVO"

/// Rendezvous or highest-random-weight hashing (Thaler and Ravishankar, 1998).
///
/// Every node scores every key; the key belongs to the highest score. The score of key
/// hash `k` on a node with hash `h` (XXH3-64 of its identity, seed `0x52454E44455A564F`)
/// is `lo ^ hi`, the two halves of the 128-bit product `(k ^ h) * 0x9E3779B97F4A7C15`.
/// With weights, the score is the logarithmic method of Schindelhauer and Schomaker:
/// `-w / ln(u)`, with `u` the top 53 bits of that unweighted score mapped into (0, 1),
/// which gives each node a share of keys proportional to its weight. Ties
/// (astronomically rare) go to the node first in identity order.
///
/// Adding a node moves only keys to it; removing one moves only its keys. Lookups are
/// O(n) and allocation-free: the nodes' hashes sit in one contiguous array.
///
/// ```
/// use aegis_hash::Rendezvous;
///
/// let mut hrw = Rendezvous::new();
/// for n in ["node-1", "node-2", "node-3", "node-4"] {
///     hrw.add_node(n);
/// }
/// let top = hrw.get_nodes("user:123", 3).unwrap();
/// assert_eq!(top.len(), 3);
/// assert_eq!(top.get(0), hrw.get_node("user:123"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Rendezvous<N: NodeIdentity = String> {
    /// Members in identity order.
    nodes: Vec<N>,
    /// Hash of each member, parallel to `nodes`.
    hashes: Vec<u64>,
    /// Weight of each member, parallel to `nodes`.
    weights: Vec<f64>,
    /// Whether every weight is equal, which allows the integer fast path.
    uniform: bool,
}

/// The top-ranked nodes for one key, best first, held in a fixed array.
#[derive(Debug, Clone)]
pub struct TopN<'a, N> {
    nodes: &'a [N],
    /// Node indices, best first; only the first `len` are set.
    ranked: [u32; TOP_N_MAX],
    len: usize,
}

impl<'a, N> TopN<'a, N> {
    /// How many nodes were ranked.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no node was ranked (the structure was empty or `n` was 0).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The node of rank `i` (0 is the primary).
    #[must_use]
    pub fn get(&self, i: usize) -> Option<&'a N> {
        (i < self.len).then(|| &self.nodes[self.ranked[i] as usize])
    }

    /// The ranked nodes, best first.
    pub fn iter(&self) -> impl Iterator<Item = &'a N> + '_ {
        self.ranked[..self.len]
            .iter()
            .map(|&i| &self.nodes[i as usize])
    }
}

impl Default for Rendezvous<String> {
    fn default() -> Self {
        Self::new()
    }
}

impl Rendezvous<String> {
    /// An empty set of string nodes.
    #[must_use]
    pub fn new() -> Self {
        Self::empty()
    }
}

impl<N: NodeIdentity> Rendezvous<N> {
    /// An empty set of nodes of any identity type.
    #[must_use]
    pub fn empty() -> Self {
        Self {
            nodes: Vec::new(),
            hashes: Vec::new(),
            weights: Vec::new(),
            uniform: true,
        }
    }

    /// Adds a node of weight 1. Returns `false`, changing nothing, if it is a member.
    pub fn add_node(&mut self, node: impl Into<N>) -> bool {
        self.add_node_weighted(node, 1.0)
            .expect("weight 1 is valid")
    }

    /// Adds a node with a weight: its share of keys is its weight over the total.
    /// Returns `Ok(false)`, changing nothing, if it is a member.
    ///
    /// # Errors
    ///
    /// [`Error::WeightInvalid`] unless the weight is finite and greater than zero;
    /// [`Error::NodesTooMany`] past `u32::MAX` nodes.
    pub fn add_node_weighted(&mut self, node: impl Into<N>, weight: f64) -> Result<bool, Error> {
        if !weight.is_finite() || weight <= 0.0 {
            return Err(Error::WeightInvalid { weight });
        }
        if self.nodes.len() >= u32::MAX as usize {
            return Err(Error::NodesTooMany {
                count: self.nodes.len() as u64 + 1,
                max: u64::from(u32::MAX),
            });
        }
        let node = node.into();
        let Err(i) = self.nodes.binary_search(&node) else {
            return Ok(false);
        };
        self.hashes.insert(i, node.hash_with_seed(NODE_SEED));
        self.nodes.insert(i, node);
        self.weights.insert(i, weight);
        self.refresh_uniform();
        Ok(true)
    }

    /// Removes a node. Returns `false` if it was not a member.
    pub fn remove_node(&mut self, node: &N) -> bool {
        let Ok(i) = self.nodes.binary_search(node) else {
            return false;
        };
        self.nodes.remove(i);
        self.hashes.remove(i);
        self.weights.remove(i);
        self.refresh_uniform();
        true
    }

    /// Members in identity order.
    #[must_use]
    pub fn nodes(&self) -> &[N] {
        &self.nodes
    }

    /// Number of nodes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there is no node.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The owner of a key, or `None` when empty.
    #[inline]
    #[must_use]
    pub fn get_node(&self, key: impl AsRef<[u8]>) -> Option<&N> {
        self.get_node_by_hash(key_hash(key))
    }

    /// The owner of a placement hash, or `None` when empty.
    #[must_use]
    pub fn get_node_by_hash(&self, hash: u64) -> Option<&N> {
        if self.nodes.is_empty() {
            return None;
        }
        let best = if self.uniform {
            argmax_uniform(hash, &self.hashes)
        } else {
            let mut best = 0;
            let mut best_score = 0;
            for (i, (&h, &w)) in self.hashes.iter().zip(&self.weights).enumerate() {
                let s = weighted_score(hash, h, w);
                // Strictly greater: ties keep the node earlier in identity order.
                if s > best_score {
                    best = i;
                    best_score = s;
                }
            }
            best
        };
        Some(&self.nodes[best])
    }

    /// The `n` highest-scoring distinct nodes for a key, best first (fewer if there are
    /// fewer nodes). Allocation-free.
    ///
    /// # Errors
    ///
    /// [`Error::ReplicasTooMany`] if `n > TOP_N_MAX`.
    pub fn get_nodes(&self, key: impl AsRef<[u8]>, n: usize) -> Result<TopN<'_, N>, Error> {
        self.get_nodes_by_hash(key_hash(key), n)
    }

    /// [`Rendezvous::get_nodes`] for a placement hash.
    ///
    /// # Errors
    ///
    /// [`Error::ReplicasTooMany`] if `n > TOP_N_MAX`.
    pub fn get_nodes_by_hash(&self, hash: u64, n: usize) -> Result<TopN<'_, N>, Error> {
        if n > TOP_N_MAX {
            return Err(Error::ReplicasTooMany {
                requested: n,
                max: TOP_N_MAX,
            });
        }
        if self.uniform {
            Ok(self.top_n(n, |i, h| (i, hrw_score(hash ^ h))))
        } else {
            Ok(self.top_n(n, |i, h| (i, weighted_score(hash, h, self.weights[i]))))
        }
    }

    /// The `n` best nodes by `score(index, node hash) -> (index, score)`.
    #[inline]
    fn top_n(&self, n: usize, score: impl Fn(usize, u64) -> (usize, u64)) -> TopN<'_, N> {
        debug_assert!(n <= TOP_N_MAX);
        let want = n.min(self.nodes.len());
        let mut scores = [0_u64; TOP_N_MAX];
        let mut top = TopN {
            nodes: &self.nodes,
            ranked: [0; TOP_N_MAX],
            len: 0,
        };
        for (i, s) in self.hashes.iter().enumerate().map(|(i, &h)| score(i, h)) {
            if top.len == want && (want == 0 || s <= scores[want - 1]) {
                continue;
            }
            // Insertion into a sorted array of at most TOP_N_MAX entries; ties keep
            // the earlier node ahead.
            let mut at = top.len.min(want - 1);
            if top.len < want {
                top.len += 1;
            }
            while at > 0 && scores[at - 1] < s {
                scores[at] = scores[at - 1];
                top.ranked[at] = top.ranked[at - 1];
                at -= 1;
            }
            scores[at] = s;
            top.ranked[at] = i as u32;
        }
        debug_assert!(scores[..top.len].is_sorted_by(|a, b| a >= b));
        top
    }

    fn refresh_uniform(&mut self) {
        self.uniform = self.weights.windows(2).all(|w| w[0] == w[1]);
    }
}

/// The multiplier of the score function: the 64-bit golden ratio, odd.
const SCORE_MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

/// The unweighted score of a node with hash `node` for key hash `key`: the full 128-bit
/// product of `key ^ node` and the golden-ratio multiplier, its two halves XORed. One
/// multiplication per node keeps a lookup near a nanosecond per node. For uniform key
/// hashes every pair of nodes wins equally often: swapping `key` for `key ^ a ^ b`
/// swaps the two nodes' scores and preserves the key distribution.
#[inline]
fn hrw_score(x: u64) -> u64 {
    let product = u128::from(x) * u128::from(SCORE_MULTIPLIER);
    (product as u64) ^ ((product >> 64) as u64)
}

/// The weighted score of a node with hash `node` and weight `weight` for a key hash, as
/// an order-preserving `u64`: `-weight / ln(u)` with `u` uniform in (0, 1).
#[inline]
fn weighted_score(key: u64, node: u64, weight: f64) -> u64 {
    let mixed = hrw_score(key ^ node);
    // u is never 0, so ln(u) < 0 and the score is positive and finite.
    let u = ((mixed >> 11) as f64 + 0.5) * (1.0 / (1_u64 << 53) as f64);
    let score = -weight / u.ln();
    debug_assert!(score.is_finite() && score > 0.0);
    // Positive finite doubles order like their bit patterns.
    score.to_bits()
}

/// The index of the highest `hrw_score(key ^ hashes[i])`, the lowest index among ties.
///
/// Four running maxima, one per residue of the index mod 4, keep the compare-and-select
/// chains independent so that the multiplications of consecutive nodes overlap.
#[inline]
fn argmax_uniform(key: u64, hashes: &[u64]) -> usize {
    const LANES: usize = 4;
    debug_assert!(!hashes.is_empty());
    if hashes.len() < 2 * LANES {
        let mut best = 0;
        let mut best_score = hrw_score(key ^ hashes[0]);
        for (i, &h) in hashes.iter().enumerate().skip(1) {
            let s = hrw_score(key ^ h);
            if s > best_score {
                best = i;
                best_score = s;
            }
        }
        return best;
    }
    let mut score = [0_u64; LANES];
    let mut at = [0_usize; LANES];
    for lane in 0..LANES {
        score[lane] = hrw_score(key ^ hashes[lane]);
        at[lane] = lane;
    }
    let chunks = hashes[LANES..].chunks_exact(LANES);
    let rest = chunks.remainder();
    for (c, chunk) in chunks.enumerate() {
        let base = LANES + c * LANES;
        for lane in 0..LANES {
            let s = hrw_score(key ^ chunk[lane]);
            // Branch-free select: which node wins is unpredictable, and a mispredicted
            // branch per new maximum costs more than the whole multiply.
            let take = usize::from(s > score[lane]).wrapping_neg();
            at[lane] = ((base + lane) & take) | (at[lane] & !take);
            score[lane] = score[lane].max(s);
        }
    }
    let base = hashes.len() - rest.len();
    for (lane, &h) in rest.iter().enumerate() {
        let s = hrw_score(key ^ h);
        if s > score[lane] {
            score[lane] = s;
            at[lane] = base + lane;
        }
    }
    let mut best = 0;
    for lane in 1..LANES {
        if score[lane] > score[best] || (score[lane] == score[best] && at[lane] < at[best]) {
            best = lane;
        }
    }
    at[best]
}

#[cfg(test)]
mod tests {
    use super::{argmax_uniform, hrw_score};
    use crate::mix64;

    #[test]
    fn lanes_agree_with_a_plain_scan() {
        let hashes: Vec<u64> = (0..67_u64).map(|i| mix64(i + 1000)).collect();
        for len in 1..hashes.len() {
            for key in 0..50_u64 {
                let key = mix64(key);
                let plain = (0..len).fold(0, |best, i| {
                    if hrw_score(key ^ hashes[i]) > hrw_score(key ^ hashes[best]) {
                        i
                    } else {
                        best
                    }
                });
                assert_eq!(argmax_uniform(key, &hashes[..len]), plain, "len {len}");
            }
        }
        // Ties go to the lowest index.
        assert_eq!(argmax_uniform(5, &[7; 13]), 0);
    }
}
