//! Versioned, deterministic binary encoding.
//!
//! Layout: one format-version byte ([`FORMAT_VERSION`]), one type-tag byte
//! ([`Encodable::TYPE_TAG`]), then the postcard encoding of the value. Every state has
//! exactly one encoding: entries are written in ascending order and causal contexts in
//! their canonical (compacted) form, so equal states give equal bytes. Decoding checks
//! the version, the tag, the payload's invariants (sorted and unique entries, dots
//! inside the causal context, non-empty nested values), that no byte is left over and
//! that the bytes are the value's one encoding (no varint written longer than needed);
//! anything else is an [`Error`], never a panic.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{
    DWFlag, EWFlag, Error, GCounter, GSet, LWWRegister, MVRegister, ORMap, ORSet, PNCounter, RWSet,
    dotstore::CausalCrdt,
};

/// The encoding version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;

/// A type with a stable encoding: a distinct tag byte per CRDT type.
pub trait Encodable: Serialize + DeserializeOwned {
    /// The type's tag byte, written after the version byte.
    const TYPE_TAG: u8;
}

macro_rules! tag {
    ($tag:expr, $ty:ty $(, $g:ident : [$($b:tt)*])*) => {
        impl<$($g),*> Encodable for $ty
        where
            $ty: Serialize + DeserializeOwned,
            $($g: $($b)*),*
        {
            const TYPE_TAG: u8 = $tag;
        }
    };
}

tag!(1, GCounter);
tag!(2, PNCounter);
tag!(3, GSet<T>, T: [Ord]);
tag!(4, LWWRegister<V>, V: []);
tag!(5, MVRegister<V>, V: [Clone + PartialEq + std::fmt::Debug]);
tag!(6, EWFlag);
tag!(7, DWFlag);
tag!(8, ORSet<T>, T: [Ord + Clone + std::fmt::Debug]);
tag!(9, RWSet<T>, T: [Ord + Clone + std::fmt::Debug]);
tag!(10, ORMap<K, V>, K: [Ord + Clone + std::fmt::Debug], V: [CausalCrdt]);

/// Encodes `value` as version byte, tag byte and postcard payload.
///
/// # Errors
///
/// [`Error::Decode`] carrying postcard's error if a value cannot be serialised (a
/// custom element type whose `Serialize` fails).
pub fn encode<T: Encodable>(value: &T) -> Result<Vec<u8>, Error> {
    let mut out = vec![FORMAT_VERSION, T::TYPE_TAG];
    out = postcard::to_extend(value, out)?;
    Ok(out)
}

/// Decodes bytes produced by [`encode`].
///
/// # Errors
///
/// [`Error::Empty`], [`Error::UnsupportedVersion`], [`Error::WrongType`],
/// [`Error::Decode`] (malformed payload or broken invariant),
/// [`Error::TrailingBytes`] or [`Error::NotCanonical`].
pub fn decode<T: Encodable>(bytes: &[u8]) -> Result<T, Error> {
    let (&version, rest) = bytes.split_first().ok_or(Error::Empty)?;
    if version != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let (&tag, payload) = rest.split_first().ok_or(Error::Empty)?;
    if tag != T::TYPE_TAG {
        return Err(Error::WrongType {
            found: tag,
            expected: T::TYPE_TAG,
        });
    }
    let (value, left) = postcard::take_from_bytes::<T>(payload)?;
    if !left.is_empty() {
        return Err(Error::TrailingBytes { count: left.len() });
    }
    // postcard also reads varints written longer than needed; only the bytes `encode`
    // writes are accepted, so a state never arrives in two forms.
    let canonical = postcard::to_extend(&value, Vec::with_capacity(payload.len()))?;
    if canonical != payload {
        return Err(Error::NotCanonical);
    }
    Ok(value)
}
