//! Length-prefixed byte strings, as the stored collections ([`crate::hash`],
//! [`crate::set`]) lay them out: `len u32 LE | bytes`, read back without panicking
//! whatever the input.

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

/// Decodes `count u32 | (len u32 | bytes) * count`, a list of byte strings; never
/// panics, whatever the input.
///
/// # Errors
/// What was wrong with the bytes.
pub(crate) fn decode_strings(bytes: &[u8]) -> Result<Vec<Vec<u8>>, &'static str> {
    let mut rest = bytes;
    let count = take_u32(&mut rest).ok_or("shorter than its count")?;
    // Every string takes at least its length: a count past that is corrupt, and must
    // not size an allocation.
    if count as usize > rest.len() / 4 {
        return Err("count larger than its bytes allow");
    }
    let mut items = Vec::with_capacity(count as usize);
    for _ in 0..count {
        items.push(take_bytes(&mut rest).ok_or("string cut short")?.to_vec());
    }
    if !rest.is_empty() {
        return Err("bytes after the last string");
    }
    Ok(items)
}

/// Encodes `items` as [`decode_strings`] reads them.
pub(crate) fn encode_strings(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(strings_len(items));
    out.extend_from_slice(&u32_len(items.len()).to_le_bytes());
    for item in items {
        put_bytes(&mut out, item);
    }
    debug_assert_eq!(out.len(), strings_len(items));
    out
}

/// The length of [`encode_strings`]'s output.
pub(crate) fn strings_len(items: &[Vec<u8>]) -> usize {
    4 + items.iter().map(|i| 4 + i.len()).sum::<usize>()
}
