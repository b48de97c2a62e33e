//! Length-prefixed byte strings, as the stored collections ([`crate::hash`],
//! [`crate::set`]) lay them out: `len u32 LE | bytes`, read back without panicking
//! whatever the input.

use std::ops::Range;

/// A length as the encodings write it. Members, fields and values come from requests,
/// which are far below 4 GiB.
pub(crate) fn u32_len(len: usize) -> u32 {
    u32::try_from(len).expect("stored strings are bounded by the request size")
}

/// Appends `bytes` with its length in front.
pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&u32_len(bytes.len()).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Takes a little-endian `u32` off the front of `rest`.
pub(crate) fn take_u32(rest: &mut &[u8]) -> Option<u32> {
    let (head, tail) = rest.split_first_chunk::<4>()?;
    *rest = tail;
    Some(u32::from_le_bytes(*head))
}

/// Takes a length-prefixed byte string off the front of `rest`.
pub(crate) fn take_bytes<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = take_u32(rest)? as usize;
    if rest.len() < len {
        return None;
    }
    let (bytes, tail) = rest.split_at(len);
    *rest = tail;
    Some(bytes)
}

/// Where each string of `count u32 | (len u32 | bytes) * count` lies, every length
/// checked against the bytes, without copying any.
pub(crate) fn spans(encoded: &[u8]) -> Result<Vec<Range<usize>>, &'static str> {
    grouped_spans(encoded, 1)
}

/// [`spans`] of `count` groups of `group` strings each.
fn grouped_spans(encoded: &[u8], group: usize) -> Result<Vec<Range<usize>>, &'static str> {
    let mut rest = encoded;
    let count = take_u32(&mut rest).ok_or("shorter than its count")? as usize;
    // Every string takes at least its length: a count past that is corrupt, and must
    // not size an allocation.
    let count = count
        .checked_mul(group)
        .filter(|&n| n <= rest.len() / 4)
        .ok_or("count larger than its bytes allow")?;
    let mut spans = Vec::with_capacity(count);
    let mut at = 4;
    for _ in 0..count {
        let item = take_bytes(&mut rest).ok_or("string cut short")?;
        at += 4;
        spans.push(at..at + item.len());
        at += item.len();
    }
    if !rest.is_empty() {
        return Err("bytes after the last string");
    }
    debug_assert_eq!(at, encoded.len());
    Ok(spans)
}

/// `encoded` (or no strings) with `items` added at the front, each in turn so that the
/// last ends first, or at the back; and how many strings it then holds. The strings
/// already there are copied as they are, without being read.
pub(crate) fn push(
    encoded: Option<&[u8]>,
    items: &[Vec<u8>],
    front: bool,
) -> Result<(Vec<u8>, usize), &'static str> {
    let (count, body) = match encoded {
        None => (0, &[][..]),
        Some(encoded) => {
            let mut body = encoded;
            let count = take_u32(&mut body).ok_or("shorter than its count")?;
            (count as usize, body)
        }
    };
    let total = count
        .checked_add(items.len())
        .filter(|&n| u32::try_from(n).is_ok())
        .ok_or("too many strings")?;
    let added: usize = items.iter().map(|i| 4 + i.len()).sum();
    let mut out = Vec::with_capacity(4 + body.len() + added);
    out.extend_from_slice(&u32_len(total).to_le_bytes());
    if front {
        for item in items.iter().rev() {
            put_bytes(&mut out, item);
        }
        out.extend_from_slice(body);
    } else {
        out.extend_from_slice(body);
        for item in items {
            put_bytes(&mut out, item);
        }
    }
    Ok((out, total))
}

/// In `count` groups of `group` strings, the span of the last string of the first group
/// whose first string is `first` (a hash's value for a field, a set's member itself),
/// read without copying or allocating; `None` if no group starts with it.
pub(crate) fn find_group(
    encoded: &[u8],
    group: usize,
    first: &[u8],
) -> Result<Option<Range<usize>>, &'static str> {
    let mut rest = encoded;
    let count = take_u32(&mut rest).ok_or("shorter than its count")? as usize;
    let mut at = 4;
    for _ in 0..count {
        let mut matched = false;
        for place in 0..group {
            let item = take_bytes(&mut rest).ok_or("string cut short")?;
            let span = at + 4..at + 4 + item.len();
            at = span.end;
            if place == 0 {
                matched = item == first;
            }
            if matched && place == group - 1 {
                return Ok(Some(span));
            }
        }
    }
    if !rest.is_empty() {
        return Err("bytes after the last string");
    }
    Ok(None)
}

/// `encoded` (or no groups) with one more group, `strings`, last.
pub(crate) fn append_group(
    encoded: Option<&[u8]>,
    strings: &[&[u8]],
) -> Result<Vec<u8>, &'static str> {
    let (count, body) = match encoded {
        None => (0, &[][..]),
        Some(encoded) => {
            let mut body = encoded;
            let count = take_u32(&mut body).ok_or("shorter than its count")?;
            (count, body)
        }
    };
    let count = count.checked_add(1).ok_or("too many groups")?;
    let added: usize = strings.iter().map(|s| 4 + s.len()).sum();
    let mut out = Vec::with_capacity(4 + body.len() + added);
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(body);
    for string in strings {
        put_bytes(&mut out, string);
    }
    Ok(out)
}

/// `encoded` with the string at `span` (as [`find_group`] gives it) replaced by `bytes`.
pub(crate) fn replace(encoded: &[u8], span: Range<usize>, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded.len() - span.len() + bytes.len());
    out.extend_from_slice(&encoded[..span.start - 4]);
    put_bytes(&mut out, bytes);
    out.extend_from_slice(&encoded[span.end..]);
    out
}

/// What [`pop`] leaves and takes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Popped {
    /// The encoding of the strings left, `None` once none is.
    pub(crate) kept: Option<Vec<u8>>,
    /// The strings taken, in the order they were taken.
    pub(crate) taken: Vec<Vec<u8>>,
}

/// `encoded` without up to `n` strings taken from the front or the back.
pub(crate) fn pop(encoded: &[u8], n: usize, front: bool) -> Result<Popped, &'static str> {
    let spans = spans(encoded)?;
    let taken = n.min(spans.len());
    let left = spans.len() - taken;
    let copy = |span: &Range<usize>| encoded[span.clone()].to_vec();
    let (popped, body): (Vec<Vec<u8>>, &[u8]) = if front {
        let start = spans.get(taken).map_or(encoded.len(), |s| s.start - 4);
        (spans[..taken].iter().map(copy).collect(), &encoded[start..])
    } else {
        let end = if left == 0 { 4 } else { spans[left - 1].end };
        (
            spans[left..].iter().rev().map(copy).collect(),
            &encoded[4..end],
        )
    };
    let kept = (left > 0).then(|| {
        let mut out = Vec::with_capacity(4 + body.len());
        out.extend_from_slice(&u32_len(left).to_le_bytes());
        out.extend_from_slice(body);
        out
    });
    Ok(Popped {
        kept,
        taken: popped,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Encodes `items`, one group of `group` strings each `count` times over, as
    /// [`Strings::decode`] reads them.
    fn encode_strings<T: AsRef<[u8]>>(items: &[T], group: usize) -> Vec<u8> {
        debug_assert_eq!(items.len() % group, 0, "whole groups only");
        let mut out = Vec::with_capacity(strings_len(items));
        out.extend_from_slice(&u32_len(items.len() / group).to_le_bytes());
        for item in items {
            put_bytes(&mut out, item.as_ref());
        }
        debug_assert_eq!(out.len(), strings_len(items));
        out
    }

    /// The length of [`encode_strings`]'s output.
    fn strings_len<T: AsRef<[u8]>>(items: &[T]) -> usize {
        4 + items.iter().map(|i| 4 + i.as_ref().len()).sum::<usize>()
    }

    fn strings() -> impl Strategy<Value = Vec<Vec<u8>>> {
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..4), 0..8)
    }

    proptest! {
        /// Pushing and popping on the encoding is pushing and popping on the list.
        #[test]
        fn edits_in_place_match_a_model(
            start in strings(),
            pushed in strings(),
            front in any::<bool>(),
            n in 0usize..10,
        ) {
            let encoded = (!start.is_empty()).then(|| encode_strings(&start, 1));
            let (after_push, count) = push(encoded.as_deref(), &pushed, front).unwrap();
            let mut model = start.clone();
            if front {
                let mut head: Vec<Vec<u8>> = pushed.iter().rev().cloned().collect();
                head.append(&mut model);
                model = head;
            } else {
                model.extend(pushed.iter().cloned());
            }
            prop_assert_eq!(count, model.len());
            prop_assert_eq!(&after_push, &encode_strings(&model, 1));
            let spanned: Vec<Vec<u8>> =
                spans(&after_push).unwrap().into_iter().map(|s| after_push[s].to_vec()).collect();
            prop_assert_eq!(&spanned, &model);

            let Popped { kept, taken: popped } = pop(&after_push, n, front).unwrap();
            let taken = n.min(model.len());
            let expected: Vec<Vec<u8>> = if front {
                model.drain(..taken).collect()
            } else {
                model.drain(model.len() - taken..).rev().collect()
            };
            prop_assert_eq!(popped, expected);
            prop_assert_eq!(kept, (!model.is_empty()).then(|| encode_strings(&model, 1)));
        }

        /// Edits of decoded strings encode as the same edits of a plain list do, whichever
        /// entries stay as they were stored.
        #[test]
        fn decoded_strings_encode_their_edits(
            start in strings(),
            edits in prop::collection::vec((0u8..5, any::<usize>(), prop::collection::vec(any::<u8>(), 0..3)), 0..8),
        ) {
            let mut strings = Strings::decode(&encode_strings(&start, 1), 1).unwrap();
            let mut model = start.clone();
            for (edit, at, bytes) in edits {
                let at = if model.is_empty() { 0 } else { at % model.len() };
                match edit {
                    0 => {
                        strings.push(bytes.clone());
                        model.push(bytes);
                    }
                    1 if !model.is_empty() => {
                        strings.set(at, bytes.clone());
                        model[at] = bytes;
                    }
                    2 if !model.is_empty() => {
                        strings.remove(at, 1);
                        model.remove(at);
                    }
                    3 if !model.is_empty() => {
                        prop_assert_eq!(strings.swap_remove(at), model.swap_remove(at));
                    }
                    4 => {
                        strings.retain_groups(1, |s| s.first() != bytes.first());
                        model.retain(|s| s.first() != bytes.first());
                    }
                    _ => {}
                }
                prop_assert_eq!(strings.encoded_len(), strings_len(&model));
                prop_assert_eq!(strings.encode(1), encode_strings(&model, 1));
            }
        }

        /// Finding, appending and replacing in place give what decoding, editing and
        /// encoding give.
        #[test]
        fn group_edits_in_place_match_decoding(
            start in prop::collection::vec((prop::collection::vec(0u8..4, 0..2), prop::collection::vec(any::<u8>(), 0..3)), 0..8),
            field in prop::collection::vec(0u8..4, 0..2),
            value in prop::collection::vec(any::<u8>(), 0..3),
        ) {
            // Unique fields, as a hash holds them.
            let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
            for (f, v) in start {
                if !pairs.iter().any(|(g, _)| *g == f) {
                    pairs.push((f, v));
                }
            }
            let flat: Vec<Vec<u8>> = pairs.iter().flat_map(|(f, v)| [f.clone(), v.clone()]).collect();
            let encoded = encode_strings(&flat, 2);
            let found = find_group(&encoded, 2, &field).unwrap();
            let expected = pairs.iter().position(|(f, _)| *f == field);
            prop_assert_eq!(found.is_some(), expected.is_some());
            let mut model = pairs.clone();
            let edited = match (found, expected) {
                (Some(span), Some(at)) => {
                    prop_assert_eq!(&encoded[span.clone()], model[at].1.as_slice());
                    model[at].1.clone_from(&value);
                    replace(&encoded, span, &value)
                }
                _ => {
                    model.push((field.clone(), value.clone()));
                    append_group(Some(&encoded), &[&field, &value]).unwrap()
                }
            };
            let flat: Vec<Vec<u8>> = model.iter().flat_map(|(f, v)| [f.clone(), v.clone()]).collect();
            prop_assert_eq!(edited, encode_strings(&flat, 2));
        }

        #[test]
        fn spans_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..48)) {
            let decoded = Strings::decode(&bytes, 1);
            let spanned = spans(&bytes);
            prop_assert_eq!(decoded.is_ok(), spanned.is_ok());
            let _ = pop(&bytes, 2, false);
            let _ = push(Some(&bytes), &[b"x".to_vec()], true);
            let _ = find_group(&bytes, 2, b"x");
            let _ = append_group(Some(&bytes), &[b"x"]);
        }
    }
}

/// Byte strings decoded from one stored value without a copy each: those read keep
/// their place in a copy of the stored bytes, those written since have bytes of their
/// own. Grouped: a hash's field and value are two strings, a set's member one.
#[derive(Debug, Clone, Default)]
pub(crate) struct Strings {
    stored: Vec<u8>,
    entries: Vec<Entry>,
    /// How many of the first entries are still the stored ones, in their stored order:
    /// encoding copies their bytes in one piece (a write that only adds, copies the
    /// collection once).
    untouched: usize,
}

#[derive(Debug, Clone)]
enum Entry {
    Stored(Range<usize>),
    Own(Vec<u8>),
}

impl Strings {
    /// Decodes `count` groups of `group` strings each; never panics.
    pub(crate) fn decode(bytes: &[u8], group: usize) -> Result<Self, &'static str> {
        let spans = grouped_spans(bytes, group)?;
        Ok(Self {
            stored: bytes.to_vec(),
            untouched: spans.len(),
            entries: spans.into_iter().map(Entry::Stored).collect(),
        })
    }

    /// Where the untouched entries' bytes end in the stored bytes (4, after the count,
    /// when there are none).
    fn untouched_end(&self) -> usize {
        match self.untouched.checked_sub(1).map(|at| &self.entries[at]) {
            None => 4,
            Some(Entry::Stored(span)) => span.end,
            Some(Entry::Own(_)) => unreachable!("untouched entries are stored ones"),
        }
    }

    /// The encoding [`Strings::decode`] reads, with `group` strings to a group.
    pub(crate) fn encode(&self, group: usize) -> Vec<u8> {
        debug_assert_eq!(self.entries.len() % group, 0, "whole groups only");
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&u32_len(self.entries.len() / group).to_le_bytes());
        if self.untouched > 0 {
            out.extend_from_slice(&self.stored[4..self.untouched_end()]);
        }
        for at in self.untouched..self.entries.len() {
            put_bytes(&mut out, self.get(at));
        }
        debug_assert_eq!(out.len(), self.encoded_len());
        out
    }

    /// The length of [`Strings::encode`]'s output.
    pub(crate) fn encoded_len(&self) -> usize {
        let rest: usize = (self.untouched..self.entries.len())
            .map(|at| 4 + self.get(at).len())
            .sum();
        self.untouched_end() + rest
    }

    /// How many strings there are.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The string at `at`.
    pub(crate) fn get(&self, at: usize) -> &[u8] {
        match &self.entries[at] {
            Entry::Stored(span) => &self.stored[span.clone()],
            Entry::Own(bytes) => bytes,
        }
    }

    /// The strings, in order.
    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> {
        (0..self.entries.len()).map(|at| self.get(at))
    }

    /// Replaces the string at `at`.
    pub(crate) fn set(&mut self, at: usize, bytes: Vec<u8>) {
        self.entries[at] = Entry::Own(bytes);
        self.untouched = self.untouched.min(at);
    }

    /// Adds a string last.
    pub(crate) fn push(&mut self, bytes: Vec<u8>) {
        self.entries.push(Entry::Own(bytes));
    }

    /// Puts a string at `at`, moving those from there on one place on.
    pub(crate) fn insert(&mut self, at: usize, bytes: Vec<u8>) {
        self.entries.insert(at, Entry::Own(bytes));
        self.untouched = self.untouched.min(at);
    }

    /// Removes the `group` strings from `at` on (any number of them), keeping the others
    /// in order.
    pub(crate) fn remove(&mut self, at: usize, group: usize) {
        self.entries.drain(at..at + group);
        self.untouched = self.untouched.min(at);
    }

    /// Removes the string at `at`, putting the last in its place, and returns it.
    pub(crate) fn swap_remove(&mut self, at: usize) -> Vec<u8> {
        self.untouched = self.untouched.min(at);
        match self.entries.swap_remove(at) {
            Entry::Stored(span) => self.stored[span].to_vec(),
            Entry::Own(bytes) => bytes,
        }
    }

    /// Keeps the groups of `group` strings whose first string `keep` accepts, in order.
    pub(crate) fn retain_groups(&mut self, group: usize, mut keep: impl FnMut(&[u8]) -> bool) {
        let kept: Vec<bool> = (0..self.entries.len() / group)
            .map(|g| keep(self.get(g * group)))
            .collect();
        if let Some(first_gone) = kept.iter().position(|&k| !k) {
            self.untouched = self.untouched.min(first_gone * group);
        }
        let mut at = 0;
        self.entries.retain(|_| {
            let keep = kept[at / group];
            at += 1;
            keep
        });
    }
}
