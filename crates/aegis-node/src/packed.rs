//! Length-prefixed byte strings, as the stored collections ([`crate::hash`],
//! [`crate::set`]) lay them out: `len u32 LE | bytes`, read back without panicking
//! whatever the input.

use bytes::Bytes;

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

/// Decodes `count u32 | (len u32 | bytes) * (count * group)`: `count` groups of
/// `group` byte strings each, every one sharing a single copy of `bytes` rather than
/// allocating its own. Never panics, whatever the input.
///
/// # Errors
/// What was wrong with the bytes.
pub(crate) fn decode_shared(bytes: &[u8], group: usize) -> Result<Vec<Bytes>, &'static str> {
    let whole = Bytes::copy_from_slice(bytes);
    let mut rest: &[u8] = &whole;
    let count = take_u32(&mut rest).ok_or("shorter than its count")? as usize;
    // Every string takes at least its length: a count past that is corrupt, and must
    // not size an allocation.
    let strings = count
        .checked_mul(group)
        .filter(|&n| n <= rest.len() / 4)
        .ok_or("count larger than its bytes allow")?;
    let mut out = Vec::with_capacity(strings);
    for _ in 0..strings {
        let item = take_bytes(&mut rest).ok_or("string cut short")?;
        out.push(whole.slice_ref(item));
    }
    if !rest.is_empty() {
        return Err("bytes after the last string");
    }
    Ok(out)
}

/// Encodes `items`, one group of `group` strings each `count` times over, as
/// [`decode_shared`] reads them.
pub(crate) fn encode_strings<T: AsRef<[u8]>>(items: &[T], group: usize) -> Vec<u8> {
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
pub(crate) fn strings_len<T: AsRef<[u8]>>(items: &[T]) -> usize {
    4 + items.iter().map(|i| 4 + i.as_ref().len()).sum::<usize>()
}
