use std::time::Duration;

use crate::NodeId;

/// Everything a transport operation can fail with.
///
/// The variants name what happened on the network, not which library noticed it, so the
/// in-memory and QUIC transports report the same conditions the same way.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The target node id is not in this transport's address book.
    #[error("peer {peer} is not known to this transport")]
    PeerUnknown {
        /// The node id that was addressed.
        peer: NodeId,
    },
    /// No connection to the peer could be made or kept (refused, reset, backing off).
    #[error("peer {peer} is unreachable: {reason}")]
    Unreachable {
        /// The node id that was addressed.
        peer: NodeId,
        /// What the connection attempt or the lost connection reported.
        reason: String,
    },
    /// The TLS handshake failed on a certificate: ours was refused by the peer, or the
    /// peer's did not verify against the cluster CA.
    #[error("certificate rejected (peer {peer:?}): {reason}")]
    CertificateRejected {
        /// The peer involved, when known.
        peer: Option<NodeId>,
        /// The TLS alert or verification failure.
        reason: String,
    },
    /// The queue of one-way messages to the peer is full: [`try_send`] did not queue the
    /// message.
    ///
    /// [`try_send`]: crate::Transport::try_send
    #[error("the queue of messages to peer {peer} is full")]
    QueueFull {
        /// The node id that was addressed.
        peer: NodeId,
    },
    /// A frame's length prefix exceeds the configured maximum; nothing was allocated for it.
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    FrameTooLarge {
        /// The length the frame claimed (or would have had).
        len: u64,
        /// The configured `frame_size_max`.
        max: u64,
    },
    /// A request got no answer within the configured request timeout.
    #[error("request to peer {peer} timed out after {after:?}")]
    TimedOut {
        /// The node id that was addressed.
        peer: NodeId,
        /// The timeout that elapsed.
        after: Duration,
    },
    /// The peer received the request (or it was lost on the way) and dropped it without
    /// answering.
    #[error("peer {peer} dropped the request without answering")]
    NoResponse {
        /// The node id that was addressed.
        peer: NodeId,
    },
    /// The requester stopped waiting before the response was sent.
    #[error("the requester is no longer waiting for this response")]
    RequesterGone,
    /// Bytes off the wire did not decode as an envelope.
    #[error("malformed message: {reason}")]
    Malformed {
        /// Why decoding failed.
        reason: String,
    },
    /// An envelope carried a format version this build does not understand.
    #[error("envelope version {version} is not supported (this build speaks {supported})")]
    UnsupportedVersion {
        /// The version found on the wire.
        version: u8,
        /// The version this build writes and reads.
        supported: u8,
    },
    /// The node id is already taken on this network.
    #[error("node {node} has already joined this network")]
    DuplicateNode {
        /// The node id that was taken.
        node: NodeId,
    },
    /// The transport has been shut down.
    #[error("the transport is shut down")]
    Shutdown,
    /// A configuration value is out of range.
    #[error("invalid configuration: {field}: {reason}")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}
