//! The byte layout on QUIC streams.
//!
//! Every stream carries frames: a 4-byte big-endian length, then that many bytes. The
//! length is checked against the configured maximum before anything is allocated for it.
//!
//! - The first unidirectional stream a client opens starts with a hello frame
//!   ([`HELLO_MAGIC`], [`HELLO_VERSION`], the client's node id as big-endian `u64`); the
//!   server checks the id against the client's certificate. The rest of that stream, and
//!   every later unidirectional stream, carries one-way envelopes back to back.
//! - Each bidirectional stream carries one request envelope frame, then the client
//!   finishes its side; the server answers with one response envelope frame, or resets
//!   the stream with one of the codes below.

use aegis_transport::{Envelope, Error, NodeId};
use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes in a frame's length prefix.
pub const FRAME_HEADER_LEN: usize = 4;
/// Opens every hello frame.
pub const HELLO_MAGIC: [u8; 4] = *b"AEGS";
/// The hello layout this build writes and accepts.
pub const HELLO_VERSION: u8 = 1;
const HELLO_LEN: usize = HELLO_MAGIC.len() + 1 + 8;

/// Stream reset code: the frame's length prefix exceeded the maximum.
pub const CODE_FRAME_TOO_LARGE: u32 = 1;
/// Stream reset code: the frame did not decode.
pub const CODE_MALFORMED: u32 = 2;
/// Stream reset code: the request was dropped without an answer.
pub const CODE_NO_RESPONSE: u32 = 3;
/// Stream reset or connection close code: the node is shutting down.
pub const CODE_SHUTDOWN: u32 = 4;
/// Connection close code: the hello was missing, malformed, or named another node.
pub const CODE_BAD_HELLO: u32 = 5;

/// Why a frame could not be read.
#[derive(Debug)]
pub enum FrameError {
    /// The length prefix exceeded the maximum; nothing beyond the prefix was read.
    TooLarge {
        /// The length the prefix claimed.
        len: u32,
        /// The configured maximum.
        max: u32,
    },
    /// The stream ended inside a frame.
    Truncated,
    /// The stream failed underneath.
    Io(std::io::Error),
}

impl FrameError {
    /// The stream code a receiver resets or stops the stream with.
    #[must_use]
    pub fn code(&self) -> u32 {
        match self {
            FrameError::TooLarge { .. } => CODE_FRAME_TOO_LARGE,
            FrameError::Truncated | FrameError::Io(_) => CODE_MALFORMED,
        }
    }
}

/// Encodes `envelope` as one frame.
///
/// # Errors
/// [`Error::FrameTooLarge`] when the encoded envelope exceeds `frame_size_max`.
pub fn encode_frame(envelope: &Envelope, frame_size_max: u32) -> Result<Bytes, Error> {
    let mut buf = Vec::with_capacity(FRAME_HEADER_LEN + envelope.encoded_len_max());
    buf.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    envelope.encode_into(&mut buf);
    let len = buf.len() - FRAME_HEADER_LEN;
    if len > frame_size_max as usize {
        return Err(Error::FrameTooLarge {
            len: len as u64,
            max: u64::from(frame_size_max),
        });
    }
    let len = u32::try_from(len).expect("bounded by frame_size_max");
    buf[..FRAME_HEADER_LEN].copy_from_slice(&len.to_be_bytes());
    debug_assert_eq!(buf.len(), FRAME_HEADER_LEN + len as usize);
    // The buffer was sized for the longest encoding; giving back the few spare bytes
    // lets `Bytes` own it as is, instead of allocating a shared header for it.
    Ok(Bytes::from(buf.into_boxed_slice()))
}

/// The hello frame a client sends first on its first unidirectional stream.
#[must_use]
pub fn hello_frame(node: NodeId) -> Bytes {
    let mut buf = BytesMut::with_capacity(FRAME_HEADER_LEN + HELLO_LEN);
    buf.put_u32(HELLO_LEN as u32);
    buf.put_slice(&HELLO_MAGIC);
    buf.put_u8(HELLO_VERSION);
    buf.put_u64(node);
    debug_assert_eq!(buf.len(), FRAME_HEADER_LEN + HELLO_LEN);
    buf.freeze()
}

/// Parses a hello frame body into the claimed node id.
#[must_use]
pub fn parse_hello(body: &[u8]) -> Option<NodeId> {
    if body.len() != HELLO_LEN || body[..4] != HELLO_MAGIC || body[4] != HELLO_VERSION {
        return None;
    }
    Some(u64::from_be_bytes(
        body[5..].try_into().expect("eight bytes"),
    ))
}

/// Reads one frame. `Ok(None)` means the stream ended cleanly between frames.
///
/// The length prefix is compared with `frame_size_max` before the body buffer exists,
/// so a forged length costs nothing.
///
/// # Errors
/// [`FrameError`] for an oversized, truncated or failed read.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    frame_size_max: u32,
) -> Result<Option<Bytes>, FrameError> {
    let mut header = [0u8; FRAME_HEADER_LEN];
    let mut filled = 0;
    while filled < FRAME_HEADER_LEN {
        match reader.read(&mut header[filled..]).await {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(FrameError::Truncated),
            Ok(n) => filled += n,
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    let len = u32::from_be_bytes(header);
    if len > frame_size_max {
        return Err(FrameError::TooLarge {
            len,
            max: frame_size_max,
        });
    }
    debug_assert!(len <= frame_size_max);
    let mut body = vec![0u8; len as usize];
    match reader.read_exact(&mut body).await {
        Ok(_) => Ok(Some(Bytes::from(body))),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(FrameError::Truncated),
        Err(e) => Err(FrameError::Io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_transport::Channel;

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn frames_round_trip_back_to_back() {
        let a = Envelope::new(Channel::Raft, 1, vec![1u8; 100]);
        let b = Envelope::new(Channel::Gossip, 2, Vec::new());
        let mut stream = encode_frame(&a, 1024).unwrap().to_vec();
        stream.extend_from_slice(&encode_frame(&b, 1024).unwrap());
        let mut reader = &stream[..];
        block_on(async {
            let first = read_frame(&mut reader, 1024).await.unwrap().unwrap();
            assert_eq!(Envelope::decode(&first).unwrap(), a);
            let second = read_frame(&mut reader, 1024).await.unwrap().unwrap();
            assert_eq!(Envelope::decode(&second).unwrap(), b);
            assert!(read_frame(&mut reader, 1024).await.unwrap().is_none());
        });
    }

    #[test]
    fn forged_length_is_refused_after_reading_only_the_prefix() {
        // Only the prefix is present: reading the body would report truncation, so
        // `TooLarge` proves the check came first.
        let forged = u32::MAX.to_be_bytes();
        let mut reader = &forged[..];
        let err = block_on(read_frame(&mut reader, 1 << 20)).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { len: u32::MAX, max } if max == 1 << 20));
        assert!(reader.is_empty());
        assert_eq!(err.code(), CODE_FRAME_TOO_LARGE);
    }

    #[test]
    fn truncation_is_an_error_not_a_clean_end() {
        let frame = encode_frame(&Envelope::new(Channel::Raft, 1, vec![9u8; 10]), 64).unwrap();
        for cut in 1..frame.len() {
            let mut reader = &frame[..cut];
            let err = block_on(read_frame(&mut reader, 64)).unwrap_err();
            assert!(matches!(err, FrameError::Truncated), "cut {cut}");
        }
    }

    #[test]
    fn oversized_envelopes_are_refused_when_encoding() {
        let big = Envelope::new(Channel::Raft, 1, vec![0u8; 100]);
        let err = encode_frame(&big, 50).unwrap_err();
        assert!(matches!(err, Error::FrameTooLarge { len, max: 50 } if len > 100));
    }

    #[test]
    fn hello_round_trips_and_rejects_junk() {
        let frame = hello_frame(77);
        assert_eq!(parse_hello(&frame[FRAME_HEADER_LEN..]), Some(77));
        assert_eq!(parse_hello(b"AEGS"), None);
        let mut wrong = frame[FRAME_HEADER_LEN..].to_vec();
        wrong[4] = HELLO_VERSION + 1;
        assert_eq!(parse_hello(&wrong), None);
    }
}
