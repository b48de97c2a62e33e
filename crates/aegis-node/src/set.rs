//! Sets: the members of a key, kept as one stored value.
//!
//! A set is encoded as (little-endian)
//!
//! ```text
//! member_count u32 | (member_len u32 | member) * member_count
//! ```
//!
//! with its members in the order they were first added. As with hashes, a write reads
//! and rewrites the whole set, so sets are meant for up to some thousands of members.
//! An empty set is never stored; removing the last member removes the key.
//!
//! The random choices of `SPOP` are made by a generator seeded by the proposer, so that
//! every replica removes the same members.

use std::collections::HashSet;

use crate::command::{Output, SetOp, SetRead};
use crate::packed::Strings;

/// The members of one set, in the order they were first added.
#[derive(Debug, Clone, Default)]
pub struct Members {
    /// Decoded members stay in the stored bytes; new ones have their own.
    strings: Strings,
}

impl PartialEq for Members {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Members {}

/// From this many members, in the set or in one write, a write of several members
/// looks them up through an index rather than one scan each.
const INDEX_FROM_MEMBERS: usize = 16;

impl Members {
    /// Decodes a stored set; never panics, whatever the bytes.
    ///
    /// # Errors
    /// What was wrong with the bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, &'static str> {
        Strings::decode(bytes, 1).map(|strings| Self { strings })
    }

    /// The stored form, as [`Members::decode`] reads it.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        self.strings.encode(1)
    }

    /// The length of [`Members::encode`]'s output.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        self.strings.encoded_len()
    }

    /// How many members the set has.
    #[must_use]
    pub fn len(&self) -> usize {
        self.strings.len()
    }

    /// Whether the set has no member.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.strings.len() == 0
    }

    /// The members, in the order they were first added.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> {
        self.strings.iter()
    }

    /// Whether `member` is in the set.
    #[must_use]
    pub fn contains(&self, member: &[u8]) -> bool {
        self.position(member).is_some()
    }

    /// Adds every member not yet in the set, last. Returns how many were added.
    pub fn add_all(&mut self, members: &[Vec<u8>]) -> usize {
        let new: Vec<&Vec<u8>> = if members.len() < 2
            || (self.len() < INDEX_FROM_MEMBERS && members.len() < INDEX_FROM_MEMBERS)
        {
            let mut new: Vec<&Vec<u8>> = Vec::new();
            for member in members {
                if !self.contains(member) && !new.contains(&member) {
                    new.push(member);
                }
            }
            new
        } else {
            let mut present: HashSet<&[u8]> = self.iter().collect();
            members
                .iter()
                .filter(|m| present.insert(m.as_slice()))
                .collect()
        };
        let added = new.len();
        for member in new {
            self.strings.push(member.clone());
        }
        added
    }

    /// Removes every member of `members` (a repeated one counts once), keeping the
    /// others in order. Returns how many were there.
    pub fn remove_all(&mut self, members: &[Vec<u8>]) -> usize {
        let before = self.len();
        if members.len() < 2 || (before < INDEX_FROM_MEMBERS && members.len() < INDEX_FROM_MEMBERS)
        {
            for member in members {
                if let Some(at) = self.position(member) {
                    self.strings.remove(at, 1);
                }
            }
        } else {
            let doomed: HashSet<&[u8]> = members.iter().map(Vec::as_slice).collect();
            self.strings.retain_groups(1, |m| !doomed.contains(m));
        }
        before - self.len()
    }

    /// Removes `count` members (all of them if the set has fewer) chosen by `random`,
    /// and returns them in the order they were chosen.
    pub fn pop(&mut self, count: usize, random: &mut Random) -> Vec<Vec<u8>> {
        let mut popped = Vec::with_capacity(count.min(self.len()));
        while popped.len() < count && !self.is_empty() {
            let at = random.below(self.len());
            popped.push(self.strings.swap_remove(at));
        }
        popped
    }

    fn position(&self, member: &[u8]) -> Option<usize> {
        self.iter().position(|m| m == member)
    }
}

/// The answer to `read` for `members`, the set the key holds (`None`: no live value).
#[must_use]
pub fn answer(read: &SetRead, members: Option<&Members>) -> Output {
    let empty = Members::default();
    let members = members.unwrap_or(&empty);
    match read {
        SetRead::IsMember { member } => Output::Changed(members.contains(member)),
        SetRead::MIsMember { members: asked } => Output::Integers(
            asked
                .iter()
                .map(|m| i64::from(members.contains(m)))
                .collect(),
        ),
        SetRead::Members => Output::Values(members.iter().map(|m| Some(m.to_vec())).collect()),
        SetRead::Card => Output::Count(members.len() as u64),
    }
}

/// `op` over `sets` in order, a key without a value counting as an empty set. Members
/// come in the order the first set holding them has them.
#[must_use]
pub fn combine(op: SetOp, sets: &[Option<Members>]) -> Members {
    let empty = Members::default();
    let sets: Vec<&Members> = sets.iter().map(|s| s.as_ref().unwrap_or(&empty)).collect();
    let Some((first, others)) = sets.split_first() else {
        return Members::default();
    };
    let picked: Vec<&[u8]> = match op {
        SetOp::Union => {
            let mut seen: HashSet<&[u8]> = HashSet::new();
            first
                .iter()
                .chain(others.iter().flat_map(|s| s.iter()))
                .filter(|&m| seen.insert(m))
                .collect()
        }
        SetOp::Inter | SetOp::Diff => {
            let others: Vec<HashSet<&[u8]>> = others.iter().map(|s| s.iter().collect()).collect();
            let keep = |m: &[u8]| match op {
                SetOp::Inter => others.iter().all(|s| s.contains(m)),
                _ => !others.iter().any(|s| s.contains(m)),
            };
            first.iter().filter(|m| keep(m)).collect()
        }
    };
    let mut out = Members::default();
    for member in picked {
        out.strings.push(member.to_vec());
    }
    out
}

/// A small deterministic generator (SplitMix64): the same seed gives the same choices on
/// every replica.
#[derive(Debug, Clone)]
pub struct Random {
    state: u64,
}

impl Random {
    /// A generator that starts from `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `bound` (positive), without bias worth noticing for set sizes.
    pub fn below(&mut self, bound: usize) -> usize {
        assert!(bound > 0, "a choice among nothing");
        ((u128::from(self.next_u64()) * bound as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn members(items: &[&str]) -> Members {
        let mut set = Members::default();
        set.add_all(
            &items
                .iter()
                .map(|i| i.as_bytes().to_vec())
                .collect::<Vec<_>>(),
        );
        set
    }

    #[test]
    fn the_encoding_is_fixed() {
        let set = members(&["a", "bc"]);
        assert_eq!(
            set.encode(),
            [2, 0, 0, 0, 1, 0, 0, 0, b'a', 2, 0, 0, 0, b'b', b'c']
        );
        assert_eq!(Members::decode(&set.encode()), Ok(set));
        for cut in 0..15 {
            assert!(Members::decode(&members(&["a", "bc"]).encode()[..cut]).is_err());
        }
        assert!(Members::decode(&[0xff, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn combinations_keep_the_first_sets_order() {
        let s = Some(members(&["c", "a", "b"]));
        let t = Some(members(&["b", "d", "c"]));
        let order = |set: Members| set.iter().map(<[u8]>::to_vec).collect::<Vec<_>>();
        let bytes = |items: &[&str]| {
            items
                .iter()
                .map(|i| i.as_bytes().to_vec())
                .collect::<Vec<_>>()
        };
        let both = [s.clone(), t.clone()];
        assert_eq!(order(combine(SetOp::Inter, &both)), bytes(&["c", "b"]));
        assert_eq!(
            order(combine(SetOp::Union, &both)),
            bytes(&["c", "a", "b", "d"])
        );
        assert_eq!(order(combine(SetOp::Diff, &both)), bytes(&["a"]));
        assert!(combine(SetOp::Inter, &[s.clone(), None]).is_empty());
        assert_eq!(
            order(combine(SetOp::Diff, &[s, None])),
            bytes(&["c", "a", "b"])
        );
    }

    #[test]
    fn a_seed_decides_what_pops() {
        let popped = |seed| members(&["a", "b", "c", "d", "e"]).pop(3, &mut Random::new(seed));
        assert_eq!(popped(7), popped(7));
        let mut all = members(&["a", "b"]);
        assert_eq!(all.pop(5, &mut Random::new(1)).len(), 2);
        assert!(all.is_empty());
        let mut random = Random::new(3);
        assert!((0..1000).all(|_| random.below(3) < 3));
    }

    proptest! {
        #[test]
        fn bulk_writes_match_a_model(
            adds in prop::collection::vec(prop::collection::vec(0u8..8, 0..3), 0..40),
            removals in prop::collection::vec(prop::collection::vec(0u8..8, 0..3), 0..20),
        ) {
            let mut set = Members::default();
            let mut model: Vec<Vec<u8>> = Vec::new();
            let added = set.add_all(&adds);
            for member in &adds {
                if !model.contains(member) {
                    model.push(member.clone());
                }
            }
            prop_assert_eq!(added, model.len());
            let before = model.len();
            model.retain(|m| !removals.contains(m));
            prop_assert_eq!(set.remove_all(&removals), before - model.len());
            let items: Vec<Vec<u8>> = set.iter().map(<[u8]>::to_vec).collect();
            prop_assert_eq!(&items, &model);
            prop_assert_eq!(Members::decode(&set.encode()), Ok(set));
        }

        #[test]
        fn decoding_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(set) = Members::decode(&bytes) {
                prop_assert_eq!(set.encode(), bytes);
            }
        }
    }
}
