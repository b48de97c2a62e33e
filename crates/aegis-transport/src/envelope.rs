use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::Error;

/// The envelope format version this build writes and accepts.
pub const ENVELOPE_VERSION: u8 = 1;

/// Which subsystem a message belongs to, so that several protocols share one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Channel {
    /// Raft consensus traffic (votes, appends, snapshots).
    Raft,
    /// Distributed transaction traffic (prepare, commit, abort).
    Transaction,
    /// Cluster membership and failure detection.
    Membership,
    /// Gossip dissemination (CRDT state, anti-entropy).
    Gossip,
    /// Client commands forwarded between nodes.
    Client,
    /// Anything else an application layers on top.
    Application,
}

/// One message as it travels: a channel, a kind within that channel, and opaque payload
/// bytes (typically postcard produced by the subsystem that owns the channel).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The subsystem the message is for.
    pub channel: Channel,
    /// The message kind within the channel, chosen by that subsystem.
    pub kind: u16,
    /// The encoded message body.
    pub payload: Bytes,
}

/// The wire form. The version goes first so a reader can refuse a newer format before
/// interpreting anything else.
#[derive(Serialize)]
struct WireOut<'a> {
    version: u8,
    channel: Channel,
    kind: u16,
    payload: RawBytes<'a>,
}

#[derive(Deserialize)]
struct WireIn<'a> {
    channel: Channel,
    kind: u16,
    #[serde(borrow)]
    payload: &'a [u8],
}

/// Serializes a byte slice as one length-prefixed blob instead of element by element.
struct RawBytes<'a>(&'a [u8]);

impl Serialize for RawBytes<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

impl Envelope {
    /// Builds an envelope.
    pub fn new(channel: Channel, kind: u16, payload: impl Into<Bytes>) -> Self {
        Self {
            channel,
            kind,
            payload: payload.into(),
        }
    }

    /// Appends the encoded envelope to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let wire = WireOut {
            version: ENVELOPE_VERSION,
            channel: self.channel,
            kind: self.kind,
            payload: RawBytes(&self.payload),
        };
        let start = out.len();
        out.reserve(self.encoded_len_max());
        // Writing into a Vec cannot fail: every field has a fixed, serializable shape.
        let written = postcard::to_extend(&wire, std::mem::take(out));
        *out = written.expect("postcard encoding into a Vec never fails");
        debug_assert!(out.len() > start + self.payload.len());
    }

    /// Encodes the envelope into a fresh buffer.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// An upper bound on the encoded size: version, channel, kind and length varints
    /// are at most 1 + 1 + 3 + 10 bytes.
    #[must_use]
    pub fn encoded_len_max(&self) -> usize {
        15 + self.payload.len()
    }

    /// Decodes an envelope, sharing the payload with `bytes` instead of copying it.
    ///
    /// # Errors
    /// [`Error::UnsupportedVersion`] for another format version, [`Error::Malformed`] for
    /// anything that is not exactly one envelope. Never panics on any input.
    pub fn decode(bytes: &Bytes) -> Result<Self, Error> {
        let (version, rest) =
            postcard::take_from_bytes::<u8>(bytes).map_err(|e| Error::Malformed {
                reason: format!("envelope version: {e}"),
            })?;
        if version != ENVELOPE_VERSION {
            return Err(Error::UnsupportedVersion {
                version,
                supported: ENVELOPE_VERSION,
            });
        }
        let (wire, trailing) =
            postcard::take_from_bytes::<WireIn<'_>>(rest).map_err(|e| Error::Malformed {
                reason: format!("envelope body: {e}"),
            })?;
        if !trailing.is_empty() {
            return Err(Error::Malformed {
                reason: format!("{} trailing bytes after the envelope", trailing.len()),
            });
        }
        let payload = bytes.slice_ref(wire.payload);
        debug_assert_eq!(&payload[..], wire.payload);
        Ok(Self {
            channel: wire.channel,
            kind: wire.kind,
            payload,
        })
    }
}
