//! Hashes: the fields of a key and their values, kept as one stored value.
//!
//! A hash is encoded as (little-endian)
//!
//! ```text
//! field_count u32 | (field_len u32 | field | value_len u32 | value) * field_count
//! ```
//!
//! with its fields in the order they were first set, which is the order Redis answers
//! `HGETALL` in for a small hash. A write reads, changes and writes back the whole hash,
//! so its cost grows with the hash: hashes are meant for objects of up to some thousands
//! of fields, as Redis's compact encoding is. An empty hash is never stored; removing the
//! last field removes the key.

use std::collections::HashMap;

use crate::command::{HashRead, Output};
use crate::packed::Strings;

/// The answer to `read` for `fields`, the hash the key holds (`None`: no live value).
#[must_use]
pub fn answer(read: &HashRead, fields: Option<&Fields>) -> Output {
    let empty = Fields::default();
    let fields = fields.unwrap_or(&empty);
    let some = |bytes: &[u8]| Some(bytes.to_vec());
    match read {
        HashRead::Get { field } => Output::Value(fields.get(field).map(<[u8]>::to_vec)),
        HashRead::MGet { fields: asked } => Output::Values(
            asked
                .iter()
                .map(|field| fields.get(field).map(<[u8]>::to_vec))
                .collect(),
        ),
        HashRead::Len => Output::Count(fields.len() as u64),
        HashRead::GetAll => Output::Values(
            fields
                .iter()
                .flat_map(|(field, value)| [some(field), some(value)])
                .collect(),
        ),
        HashRead::Keys => Output::Values(fields.iter().map(|(field, _)| some(field)).collect()),
        HashRead::Values => Output::Values(fields.iter().map(|(_, value)| some(value)).collect()),
        HashRead::Exists { field } => Output::Changed(fields.get(field).is_some()),
        HashRead::StrLen { field } => {
            Output::Count(fields.get(field).map_or(0, <[u8]>::len) as u64)
        }
    }
}

/// The bytes of the values an answer carries, as a read's budget counts them.
#[must_use]
pub fn answer_bytes(output: &Output) -> u64 {
    match output {
        Output::Value(value) => value.as_ref().map_or(0, |v| v.len() as u64),
        Output::Values(values) => values.iter().flatten().map(|v| v.len() as u64).sum(),
        // A score takes at most 24 bytes written out.
        Output::Scored(scored) => scored.iter().map(|(m, _)| m.len() as u64 + 24).sum(),
        // An ID takes at most 41 bytes written out.
        Output::Entries(Some(entries)) => entries_bytes(entries),
        Output::Streams(streams) => streams
            .iter()
            .map(|(key, entries)| key.len() as u64 + entries_bytes(entries))
            .sum(),
        _ => 0,
    }
}

/// What stream entries take written out, about.
fn entries_bytes(entries: &[crate::command::StreamEntry]) -> u64 {
    entries
        .iter()
        .map(|e| 41 + e.fields.iter().map(|f| f.len() as u64).sum::<u64>())
        .sum()
}

/// The fields of one hash, in the order they were first set.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    /// Field and value after field and value. Decoded ones stay in the stored bytes.
    strings: Strings,
}

impl PartialEq for Fields {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Fields {}

/// From this many fields, in the hash or in one write, a write of several fields looks
/// them up through an index rather than one scan each.
const INDEX_FROM_FIELDS: usize = 16;

impl Fields {
    /// Decodes a stored hash; never panics, whatever the bytes.
    ///
    /// # Errors
    /// What was wrong with the bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, &'static str> {
        Strings::decode(bytes, 2).map(|strings| Self { strings })
    }

    /// The stored form, as [`Fields::decode`] reads it.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        self.strings.encode(2)
    }

    /// The length of [`Fields::encode`]'s output.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        self.strings.encoded_len()
    }

    /// How many fields the hash has.
    #[must_use]
    pub fn len(&self) -> usize {
        self.strings.len() / 2
    }

    /// Whether the hash has no field.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.strings.len() == 0
    }

    /// The fields and their values, in the order they were first set.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> {
        (0..self.len()).map(|at| (self.strings.get(2 * at), self.strings.get(2 * at + 1)))
    }

    /// The value of `field`.
    #[must_use]
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        self.position(field).map(|at| self.strings.get(2 * at + 1))
    }

    /// Sets `field` to `value`, in its place if it is there, else last. Returns whether
    /// the field is new.
    pub fn set(&mut self, field: &[u8], value: Vec<u8>) -> bool {
        match self.position(field) {
            Some(at) => {
                self.strings.set(2 * at + 1, value);
                false
            }
            None => {
                self.strings.push(field.to_vec());
                self.strings.push(value);
                true
            }
        }
    }

    /// Sets every pair in order (a repeated field keeps its last value). Returns how many
    /// fields are new.
    pub fn set_all(&mut self, pairs: &[(Vec<u8>, Vec<u8>)]) -> usize {
        if pairs.len() < 2 || (self.len() < INDEX_FROM_FIELDS && pairs.len() < INDEX_FROM_FIELDS) {
            return pairs
                .iter()
                .filter(|(field, value)| self.set(field, value.clone()))
                .count();
        }
        // Where each pair goes: the place of a field there already (or set earlier in
        // this call), or `None` for a new field, last.
        let places: Vec<Option<usize>> = {
            let mut index: HashMap<&[u8], usize> = self
                .iter()
                .enumerate()
                .map(|(at, (field, _))| (field, at))
                .collect();
            let mut next = self.len();
            pairs
                .iter()
                .map(|(field, _)| match index.get(field.as_slice()) {
                    Some(&at) => Some(at),
                    None => {
                        index.insert(field, next);
                        next += 1;
                        None
                    }
                })
                .collect()
        };
        let mut added = 0;
        for ((field, value), place) in pairs.iter().zip(places) {
            match place {
                Some(at) => self.strings.set(2 * at + 1, value.clone()),
                None => {
                    self.strings.push(field.clone());
                    self.strings.push(value.clone());
                    added += 1;
                }
            }
        }
        added
    }

    /// Removes `field`, keeping the others in order. Returns whether it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self.position(field) {
            Some(at) => {
                self.strings.remove(2 * at, 2);
                true
            }
            None => false,
        }
    }

    /// Removes every field of `fields` (a repeated one counts once). Returns how many
    /// were there.
    pub fn remove_all(&mut self, fields: &[Vec<u8>]) -> usize {
        let before = self.len();
        if fields.len() < 2 || (before < INDEX_FROM_FIELDS && fields.len() < INDEX_FROM_FIELDS) {
            for field in fields {
                self.remove(field);
            }
        } else {
            let doomed: std::collections::HashSet<&[u8]> =
                fields.iter().map(Vec::as_slice).collect();
            self.strings
                .retain_groups(2, |field| !doomed.contains(field));
        }
        before - self.len()
    }

    fn position(&self, field: &[u8]) -> Option<usize> {
        (0..self.len()).find(|&at| self.strings.get(2 * at) == field)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        let mut out = Fields::default();
        for (f, v) in pairs {
            out.set(f.as_bytes(), v.as_bytes().to_vec());
        }
        out
    }

    #[test]
    fn keeps_the_order_fields_were_first_set_in() {
        let mut hash = fields(&[("b", "1"), ("a", "2"), ("c", "3")]);
        assert!(!hash.set(b"a", b"9".to_vec()));
        assert!(hash.remove(b"b"));
        assert!(!hash.remove(b"b"));
        assert!(hash.set(b"b", b"4".to_vec()));
        let order: Vec<_> = hash.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
        assert_eq!(
            order,
            [
                (b"a".to_vec(), b"9".to_vec()),
                (b"c".to_vec(), b"3".to_vec()),
                (b"b".to_vec(), b"4".to_vec())
            ]
        );
    }

    #[test]
    fn the_encoding_is_fixed() {
        let hash = fields(&[("f", "vv")]);
        assert_eq!(
            hash.encode(),
            [1, 0, 0, 0, 1, 0, 0, 0, b'f', 2, 0, 0, 0, b'v', b'v']
        );
        assert_eq!(Fields::decode(&hash.encode()), Ok(hash));
        assert_eq!(Fields::decode(&[0, 0, 0, 0]), Ok(Fields::default()));
    }

    #[test]
    fn refuses_damaged_bytes() {
        let good = fields(&[("field", "value")]).encode();
        for cut in 0..good.len() {
            assert!(Fields::decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(Fields::decode(&longer).is_err());
        assert!(Fields::decode(&[0xff, 0xff, 0xff, 0xff]).is_err());
    }

    fn pairs() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
        let field = prop::collection::vec(0u8..6, 0..3);
        let value = prop::collection::vec(any::<u8>(), 0..4);
        prop::collection::vec((field, value), 0..40)
    }

    /// The same writes through a plain model: a list with one scan per field.
    fn model_set(model: &mut Vec<(Vec<u8>, Vec<u8>)>, pairs: &[(Vec<u8>, Vec<u8>)]) -> usize {
        let mut added = 0;
        for (field, value) in pairs {
            match model.iter_mut().find(|(f, _)| f == field) {
                Some(pair) => pair.1.clone_from(value),
                None => {
                    model.push((field.clone(), value.clone()));
                    added += 1;
                }
            }
        }
        added
    }

    proptest! {
        #[test]
        fn bulk_writes_match_one_at_a_time(
            start in pairs(),
            writes in pairs(),
            removals in prop::collection::vec(prop::collection::vec(0u8..6, 0..3), 0..20),
        ) {
            let mut hash = Fields::default();
            let mut model = Vec::new();
            prop_assert_eq!(hash.set_all(&start), model_set(&mut model, &start));
            prop_assert_eq!(hash.set_all(&writes), model_set(&mut model, &writes));
            let before = model.len();
            model.retain(|(f, _)| !removals.contains(f));
            prop_assert_eq!(hash.remove_all(&removals), before - model.len());
            let pairs: Vec<(Vec<u8>, Vec<u8>)> =
                hash.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
            prop_assert_eq!(&pairs, &model);
            prop_assert_eq!(Fields::decode(&hash.encode()), Ok(hash));
        }

        #[test]
        fn decoding_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(hash) = Fields::decode(&bytes) {
                prop_assert_eq!(hash.encode(), bytes);
            }
        }
    }
}
