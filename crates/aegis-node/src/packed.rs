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
