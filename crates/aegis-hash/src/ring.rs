//! Consistent hash ring with virtual nodes.

use std::sync::OnceLock;

use crate::{Error, NodeIdentity, key_hash};

/// One virtual node: a position on the ring and the index of its physical node.
///
/// Position and owner share a cache line, so a lookup touches one line of the point
/// array after the index read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Point {
    pos: u64,
    owner: u32,
}

/// The most points (virtual nodes over all nodes) one ring holds: owners and the lookup
/// index are `u32`.
const POINTS_MAX: u64 = u32::MAX as u64 - 1;

/// A consistent hash ring with virtual nodes.
///
/// Each node is placed at `vnodes` points: point `i` of a node sits at
/// `XXH3-64(node bytes, seed = i)`. A key with placement hash `h` ([`key_hash`]) belongs
/// to the node of the first point at or after `h`, wrapping around past `u64::MAX`. Points
/// at the same position are ordered by node identity, so the ring depends only on its
/// set of nodes and their vnode counts, never on the order they were added.
///
/// The points live in one sorted array with a radix index over their top bits, about
/// one index slot per point: a lookup reads one index slot and then, on average, one or
/// two points. That layout is built lazily, by the first lookup after nodes were added
/// to a ring that had never been looked up: a loop of [`HashRing::add_node`] calls
/// followed by lookups sorts once, in O(k log k) for k points. Once built, the layout is
/// kept up to date: adding or removing a node is then a linear merge or filter.
///
/// ```
/// use aegis_hash::HashRing;
///
/// let mut ring = HashRing::new(150);
/// ring.add_node("node-1");
/// ring.add_node("node-2");
/// let owner = ring.get_node("user:123").unwrap().clone();
/// ring.add_node("node-3");
/// // Adding a node moves keys only to the new node.
/// let now = ring.get_node("user:123").unwrap();
/// assert!(*now == owner || now == "node-3");
/// ```
#[derive(Debug, Clone)]
pub struct HashRing<N: NodeIdentity = String> {
    vnodes_default: u32,
    /// Members in identity order; `Point::owner` indexes this.
    nodes: Vec<N>,
    /// Vnode count of each member, parallel to `nodes`.
    vnodes: Vec<u32>,
    /// Sum of `vnodes`.
    points_total: u64,
    /// The lookup structure, a pure function of `nodes` and `vnodes`; built on first use.
    layout: OnceLock<Layout>,
}

/// Two rings are equal when they hold the same nodes with the same vnode counts (and
/// the same default), which makes every lookup equal.
impl<N: NodeIdentity> PartialEq for HashRing<N> {
    fn eq(&self, other: &Self) -> bool {
        self.vnodes_default == other.vnodes_default
            && self.nodes == other.nodes
            && self.vnodes == other.vnodes
    }
}

impl<N: NodeIdentity> Eq for HashRing<N> {}

/// Sorted points and the radix index over them.
#[derive(Debug, Clone, Default)]
struct Layout {
    /// Sorted by `(pos, owner)`.
    points: Vec<Point>,
    /// `index[b]` is the first point whose position's top bits are at least `b`;
    /// `index.len() == 2^bits + 1`. Empty when the ring is empty.
    index: Vec<u32>,
    /// `64 - bits`.
    shift: u32,
}

/// An inclusive range of placement hashes, `start..=end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyRange {
    /// First hash in the range.
    pub start: u64,
    /// Last hash in the range (inclusive).
    pub end: u64,
}

impl KeyRange {
    /// Whether `hash` falls in the range.
    #[must_use]
    pub fn contains(&self, hash: u64) -> bool {
        self.start <= hash && hash <= self.end
    }
}

/// A range of placement hashes whose primary owner differs between two rings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedRange<N> {
    /// The hashes that moved.
    pub range: KeyRange,
    /// Owner in the source ring.
    pub from: N,
    /// Owner in the target ring.
    pub to: N,
}

impl HashRing<String> {
    /// An empty ring of string nodes that places each node at `vnodes` points.
    ///
    /// # Panics
    ///
    /// If `vnodes` is zero.
    #[must_use]
    pub fn new(vnodes: u32) -> Self {
        Self::with_vnodes(vnodes)
    }
}

impl<N: NodeIdentity> HashRing<N> {
    /// An empty ring of any node type that places each node at `vnodes` points.
    ///
    /// # Panics
    ///
    /// If `vnodes` is zero.
    #[must_use]
    pub fn with_vnodes(vnodes: u32) -> Self {
        assert!(vnodes > 0, "a ring needs at least one vnode per node");
        Self {
            vnodes_default: vnodes,
            nodes: Vec::new(),
            vnodes: Vec::new(),
            points_total: 0,
            layout: OnceLock::new(),
        }
    }

    /// Adds a node with the default vnode count. Returns `false`, changing nothing, if
    /// the node is already a member.
    ///
    /// # Panics
    ///
    /// If the ring would exceed `u32::MAX - 1` points.
    pub fn add_node(&mut self, node: impl Into<N>) -> bool {
        let vnodes = self.vnodes_default;
        self.add_node_with_vnodes(node, vnodes)
            .expect("ring point count overflow")
    }

    /// Adds a node with its own vnode count: its weight. A node with twice the vnodes
    /// owns about twice the keys. Returns `Ok(false)`, changing nothing, if the node is
    /// already a member.
    ///
    /// # Errors
    ///
    /// [`Error::VnodesZero`] or [`Error::PointsTooMany`].
    pub fn add_node_with_vnodes(&mut self, node: impl Into<N>, vnodes: u32) -> Result<bool, Error> {
        let node = node.into();
        if self.nodes.binary_search(&node).is_ok() {
            return Ok(false);
        }
        self.add_nodes([(node, vnodes)])?;
        Ok(true)
    }

    /// Adds many nodes at once, each with its vnode count, in O(k log k) for k new
    /// points plus a linear merge with the existing ones. Nodes already present (or
    /// repeated) keep their first vnode count. Returns how many nodes were added.
    ///
    /// # Errors
    ///
    /// [`Error::VnodesZero`] or [`Error::PointsTooMany`]; the ring is unchanged.
    pub fn add_nodes(&mut self, nodes: impl IntoIterator<Item = (N, u32)>) -> Result<usize, Error> {
        let mut fresh: Vec<(N, u32)> = nodes.into_iter().collect();
        fresh.sort_by(|a, b| a.0.cmp(&b.0));
        fresh.dedup_by(|a, b| a.0 == b.0);
        fresh.retain(|(n, _)| self.nodes.binary_search(n).is_err());
        if fresh.iter().any(|&(_, v)| v == 0) {
            return Err(Error::VnodesZero);
        }
        let added_points: u64 = fresh.iter().map(|&(_, v)| u64::from(v)).sum();
        let points = self.points_total + added_points;
        if points > POINTS_MAX {
            return Err(Error::PointsTooMany {
                points,
                max: POINTS_MAX,
            });
        }
        if fresh.is_empty() {
            return Ok(0);
        }
        let added = fresh.len();

        // Merge the member lists; remap old owner indices monotonically (which keeps the
        // old points sorted) and note the new index of every fresh node.
        let old_nodes = std::mem::take(&mut self.nodes);
        let old_vnodes = std::mem::take(&mut self.vnodes);
        let mut remap = Vec::with_capacity(old_nodes.len());
        let mut fresh_index = Vec::with_capacity(added);
        let mut old = old_nodes.into_iter().zip(old_vnodes).peekable();
        let mut new = fresh.into_iter().peekable();
        loop {
            let take_old = match (old.peek(), new.peek()) {
                (Some(o), Some(n)) => o.0 < n.0,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let (node, v) = if take_old {
                remap.push(self.nodes.len() as u32);
                old.next().expect("peeked")
            } else {
                fresh_index.push(self.nodes.len());
                new.next().expect("peeked")
            };
            self.nodes.push(node);
            self.vnodes.push(v);
        }
        self.points_total = points;
        // A built layout is updated in place; an unbuilt one waits for the first lookup.
        if let Some(layout) = self.layout.get_mut() {
            for p in &mut layout.points {
                p.owner = remap[p.owner as usize];
            }
            let mut extra = Vec::with_capacity(added_points as usize);
            for &i in &fresh_index {
                push_points(&mut extra, &self.nodes[i], i, self.vnodes[i]);
            }
            extra.sort_unstable();
            layout.points = merge_sorted(std::mem::take(&mut layout.points), extra);
            layout.rebuild_index();
            assert_eq!(layout.points.len() as u64, points);
        }
        Ok(added)
    }

    /// Removes a node and its points. Returns `false` if it was not a member.
    pub fn remove_node(&mut self, node: &N) -> bool {
        let Ok(gone) = self.nodes.binary_search(node) else {
            return false;
        };
        self.nodes.remove(gone);
        let v = self.vnodes.remove(gone);
        self.points_total -= u64::from(v);
        if let Some(layout) = self.layout.get_mut() {
            let gone = gone as u32;
            layout.points.retain(|p| p.owner != gone);
            for p in &mut layout.points {
                if p.owner > gone {
                    p.owner -= 1;
                }
            }
            assert_eq!(layout.points.len() as u64, self.points_total);
            layout.rebuild_index();
        }
        true
    }

    /// Members in identity order.
    #[must_use]
    pub fn nodes(&self) -> &[N] {
        &self.nodes
    }

    /// Number of physical nodes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the ring has no node.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Number of points (virtual nodes) on the ring.
    #[must_use]
    pub fn point_count(&self) -> usize {
        self.points_total as usize
    }

    /// The vnode count of a member.
    #[must_use]
    pub fn vnodes_of(&self, node: &N) -> Option<u32> {
        self.nodes.binary_search(node).ok().map(|i| self.vnodes[i])
    }

    /// The primary owner of a key, or `None` on an empty ring.
    #[inline]
    #[must_use]
    pub fn get_node(&self, key: impl AsRef<[u8]>) -> Option<&N> {
        self.get_node_by_hash(key_hash(key))
    }

    /// The primary owner of a placement hash, or `None` on an empty ring.
    #[inline]
    #[must_use]
    pub fn get_node_by_hash(&self, hash: u64) -> Option<&N> {
        let layout = self.layout();
        if layout.points.is_empty() {
            return None;
        }
        let p = layout.points[layout.successor(hash)];
        Some(&self.nodes[p.owner as usize])
    }

    /// Up to `n` distinct physical nodes for a key, primary first, then the next
    /// distinct nodes clockwise. Fewer than `n` only when the ring has fewer nodes.
    #[must_use]
    pub fn get_nodes(&self, key: impl AsRef<[u8]>, n: usize) -> Vec<&N> {
        let mut out = Vec::with_capacity(n.min(self.nodes.len()));
        self.get_nodes_by_hash_into(key_hash(key), n, &mut out);
        out
    }

    /// Like [`HashRing::get_nodes`] for a placement hash, filling a caller's buffer
    /// (cleared first) so that a hot path allocates nothing.
    pub fn get_nodes_by_hash_into<'a>(&'a self, hash: u64, n: usize, out: &mut Vec<&'a N>) {
        out.clear();
        let want = n.min(self.nodes.len());
        if want == 0 {
            return;
        }
        let layout = self.layout();
        let points = &layout.points;
        let mut i = layout.successor(hash);
        for _ in 0..points.len() {
            let node = &self.nodes[points[i].owner as usize];
            if !out.iter().any(|m| std::ptr::eq(*m, node)) {
                out.push(node);
                if out.len() == want {
                    break;
                }
            }
            i += 1;
            if i == points.len() {
                i = 0;
            }
        }
        assert_eq!(out.len(), want, "every member has at least one point");
    }

    /// Calls `visit` with the index of every member clockwise from `hash` until it
    /// returns `true`, visiting each member at most once. Returns the accepted index.
    pub(crate) fn walk_distinct(
        &self,
        hash: u64,
        mut visit: impl FnMut(usize) -> bool,
    ) -> Option<usize> {
        let layout = self.layout();
        let points = &layout.points;
        if points.is_empty() {
            return None;
        }
        let mut i = layout.successor(hash);
        // The common case accepts the primary: no bookkeeping needed for it.
        let primary = points[i].owner as usize;
        if visit(primary) {
            return Some(primary);
        }
        let mut seen = vec![false; self.nodes.len()];
        seen[primary] = true;
        for _ in 0..points.len() {
            let owner = points[i].owner as usize;
            if !seen[owner] {
                seen[owner] = true;
                if visit(owner) {
                    return Some(owner);
                }
            }
            i += 1;
            if i == points.len() {
                i = 0;
            }
        }
        None
    }

    /// The index of a member in identity order.
    pub(crate) fn index_of(&self, node: &N) -> Option<usize> {
        self.nodes.binary_search(node).ok()
    }

    /// The ranges of placement hashes whose primary owner differs between `self` (the
    /// source) and `target`, with the old and new owner: what a rebalancer streams.
    ///
    /// Adjacent ranges with the same owners are merged; ranges come in increasing hash
    /// order. If either ring is empty there is no owner to move from or to, and the
    /// result is empty.
    #[must_use]
    pub fn diff(&self, target: &Self) -> Vec<MovedRange<N>> {
        let (a, b) = (&self.layout().points, &target.layout().points);
        let mut out: Vec<MovedRange<N>> = Vec::new();
        if a.is_empty() || b.is_empty() {
            return out;
        }
        let mut push = |start: u64, end: u64, oa: u32, ob: u32| {
            let (from, to) = (&self.nodes[oa as usize], &target.nodes[ob as usize]);
            if from == to {
                return;
            }
            if let Some(last) = out.last_mut()
                && last.range.end.wrapping_add(1) == start
                && last.from == *from
                && last.to == *to
            {
                last.range.end = end;
                return;
            }
            out.push(MovedRange {
                range: KeyRange { start, end },
                from: from.clone(),
                to: to.clone(),
            });
        };
        // Every segment between consecutive positions of either ring has one owner in
        // each ring: the successor point of the segment's end.
        let (mut ia, mut ib) = (0_usize, 0_usize);
        let mut start = 0_u64;
        loop {
            let next_a = a.get(ia).map(|p| p.pos);
            let next_b = b.get(ib).map(|p| p.pos);
            let Some(end) = next_a.into_iter().chain(next_b).min() else {
                break;
            };
            let oa = a.get(ia).map_or(a[0].owner, |p| p.owner);
            let ob = b.get(ib).map_or(b[0].owner, |p| p.owner);
            push(start, end, oa, ob);
            while a.get(ia).is_some_and(|p| p.pos == end) {
                ia += 1;
            }
            while b.get(ib).is_some_and(|p| p.pos == end) {
                ib += 1;
            }
            if end == u64::MAX {
                return out;
            }
            start = end + 1;
        }
        // Past the last point of both rings, keys wrap to each ring's first point.
        push(start, u64::MAX, a[0].owner, b[0].owner);
        out
    }

    /// The lookup layout, built on first use.
    #[inline]
    fn layout(&self) -> &Layout {
        self.layout
            .get_or_init(|| Layout::build(&self.nodes, &self.vnodes))
    }
}

/// Appends the `vnodes` points of member `index`.
fn push_points<N: NodeIdentity>(out: &mut Vec<Point>, node: &N, index: usize, vnodes: u32) {
    out.extend((0..vnodes).map(|seed| Point {
        pos: node.hash_with_seed(u64::from(seed)),
        owner: index as u32,
    }));
}

impl Layout {
    /// Places every member's points and sorts them once: O(k log k).
    fn build<N: NodeIdentity>(nodes: &[N], vnodes: &[u32]) -> Self {
        let total: u64 = vnodes.iter().map(|&v| u64::from(v)).sum();
        let mut points = Vec::with_capacity(total as usize);
        for (i, (node, &v)) in nodes.iter().zip(vnodes).enumerate() {
            push_points(&mut points, node, i, v);
        }
        points.sort_unstable();
        let mut layout = Self {
            points,
            index: Vec::new(),
            shift: 63,
        };
        layout.rebuild_index();
        layout
    }

    /// Index of the first point at or after `hash`, wrapping to 0.
    #[inline]
    fn successor(&self, hash: u64) -> usize {
        debug_assert!(!self.points.is_empty());
        let bucket = (hash >> self.shift) as usize;
        let lo = self.index[bucket] as usize;
        let hi = self.index[bucket + 1] as usize;
        let i = lo + self.points[lo..hi].partition_point(|p| p.pos < hash);
        if i == self.points.len() { 0 } else { i }
    }

    fn rebuild_index(&mut self) {
        self.index.clear();
        if self.points.is_empty() {
            return;
        }
        debug_assert!(self.points.is_sorted());
        // About one index slot per point: 2^bits >= points, at least 2 slots.
        let bits = usize::BITS - (self.points.len() - 1).leading_zeros();
        let bits = bits.max(1);
        self.shift = 64 - bits;
        let slots = 1_usize << bits;
        self.index.reserve(slots + 1);
        let mut i = 0;
        for slot in 0..slots {
            let start = (slot as u64) << self.shift;
            while i < self.points.len() && self.points[i].pos < start {
                i += 1;
            }
            self.index.push(i as u32);
        }
        self.index.push(self.points.len() as u32);
        debug_assert_eq!(self.index.len(), slots + 1);
    }
}

fn merge_sorted(a: Vec<Point>, b: Vec<Point>) -> Vec<Point> {
    if a.is_empty() {
        return b;
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
        if x <= y {
            out.push(a.next().expect("peeked"));
        } else {
            out.push(b.next().expect("peeked"));
        }
    }
    out.extend(a);
    out.extend(b);
    out
}

#[cfg(test)]
mod tests {
    use super::HashRing;

    #[test]
    fn index_finds_successor_like_binary_search() {
        let mut ring = HashRing::new(7);
        for i in 0..13 {
            ring.add_node(format!("n{i}"));
        }
        let layout = ring.layout();
        let probes = layout
            .points
            .iter()
            .flat_map(|p| [p.pos.wrapping_sub(1), p.pos, p.pos.wrapping_add(1)]);
        for h in probes.chain([0, u64::MAX, 1 << 63]) {
            let expect = layout.points.partition_point(|p| p.pos < h) % layout.points.len();
            assert_eq!(layout.successor(h), expect, "hash {h:#x}");
        }
    }

    #[test]
    fn incremental_updates_match_a_fresh_build() {
        let mut eager = HashRing::<u64>::with_vnodes(5);
        let mut lazy = HashRing::<u64>::with_vnodes(5);
        for n in [9_u64, 3, 7, 1, 12, 4] {
            eager.add_node(n);
            // A lookup builds the layout, so every later change updates it in place.
            let _ = eager.get_node_by_hash(n);
            lazy.add_node(n);
        }
        eager.remove_node(&7);
        lazy.remove_node(&7);
        eager.add_node_with_vnodes(8_u64, 11).unwrap();
        lazy.add_node_with_vnodes(8_u64, 11).unwrap();
        assert!(eager.layout.get().is_some() && lazy.layout.get().is_none());
        assert_eq!(eager.layout().points, lazy.layout().points);
        assert_eq!(eager.layout().index, lazy.layout().index);
        assert_eq!(eager.point_count(), 5 * 5 + 11);
    }

    #[test]
    fn single_point_ring() {
        let mut ring = HashRing::new(1);
        ring.add_node("only");
        for h in [0, 1, u64::MAX / 2, u64::MAX] {
            assert_eq!(ring.get_node_by_hash(h).map(String::as_str), Some("only"));
        }
        assert_eq!(ring.layout().index.len(), 3);
    }
}
