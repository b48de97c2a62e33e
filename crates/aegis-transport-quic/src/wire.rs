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
    append_frame(envelope, frame_size_max, &mut buf)?;
    // The buffer was sized for the longest encoding; giving back the few spare bytes
    // lets `Bytes` own it as is, instead of allocating a shared header for it.
    Ok(Bytes::from(buf.into_boxed_slice()))
}

/// Encodes `envelope` as one frame at the end of `out`, so that many frames can share
/// one buffer. On error `out` is left as it was.
///
/// # Errors
/// [`Error::FrameTooLarge`] when the encoded envelope exceeds `frame_size_max`.
pub fn append_frame(
    envelope: &Envelope,
    frame_size_max: u32,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    envelope.encode_into(out);
    let len = out.len() - start - FRAME_HEADER_LEN;
    if len > frame_size_max as usize {
        out.truncate(start);
        return Err(Error::FrameTooLarge {
            len: len as u64,
            max: u64::from(frame_size_max),
        });
    }
    let len = u32::try_from(len).expect("bounded by frame_size_max");
    out[start..start + FRAME_HEADER_LEN].copy_from_slice(&len.to_be_bytes());
    debug_assert_eq!(out.len(), start + FRAME_HEADER_LEN + len as usize);
    Ok(())
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

/// Splits frames out of a byte stream that arrives in pieces of any size.
///
/// Bytes are [`push`](Self::push)ed as they arrive and whole frames taken out with
/// [`next_frame`](Self::next_frame), without an await per frame. Like [`read_frame`], it
/// checks a frame's length prefix against the maximum as soon as the prefix is complete,
/// before it reserves anything for the body. Frames taken out share the buffer they were
/// received into, so a batch of small frames costs one copy and no allocation each.
#[derive(Debug)]
pub struct FrameSplitter {
    buffered: BytesMut,
    frame_size_max: u32,
}

impl FrameSplitter {
    /// A splitter refusing frames longer than `frame_size_max` bytes.
    #[must_use]
    pub fn new(frame_size_max: u32) -> Self {
        Self {
            buffered: BytesMut::new(),
            frame_size_max,
        }
    }

    /// Appends bytes received from the stream.
    pub fn push(&mut self, data: &[u8]) {
        self.buffered.extend_from_slice(data);
    }

    /// Bytes received but not yet taken out as part of a frame.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buffered.len()
    }

    /// The next whole frame's body, or `None` until more bytes arrive.
    ///
    /// # Errors
    /// [`FrameError::TooLarge`] when the length prefix exceeds the maximum; the stream
    /// cannot be read further after that.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        let Some(header) = self.buffered.first_chunk::<FRAME_HEADER_LEN>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*header);
        if len > self.frame_size_max {
            return Err(FrameError::TooLarge {
                len,
                max: self.frame_size_max,
            });
        }
        let end = FRAME_HEADER_LEN + len as usize;
        if self.buffered.len() < end {
            // The body's length is known to be allowed now: room for it all at once
            // saves growing the buffer piece by piece.
            self.buffered.reserve(end - self.buffered.len());
            return Ok(None);
        }
        let mut frame = self.buffered.split_to(end);
        let body = frame.split_off(FRAME_HEADER_LEN).freeze();
        debug_assert_eq!(body.len(), len as usize);
        Ok(Some(body))
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
    fn splitter_finds_frames_however_the_bytes_are_cut() {
        let envelopes: Vec<_> = (0u8..20)
            .map(|i| Envelope::new(Channel::Raft, u16::from(i), vec![i; usize::from(i) * 7]))
            .collect();
        let mut stream = Vec::new();
        for e in &envelopes {
            stream.extend_from_slice(&encode_frame(e, 1024).unwrap());
        }
        for piece in [1, 2, 3, 5, 13, 64, 1000, stream.len()] {
            let mut splitter = FrameSplitter::new(1024);
            let mut found = Vec::new();
            for part in stream.chunks(piece) {
                splitter.push(part);
                while let Some(body) = splitter.next_frame().unwrap() {
                    found.push(Envelope::decode(&body).unwrap());
                }
            }
            assert_eq!(found, envelopes, "pieces of {piece}");
            assert_eq!(splitter.buffered(), 0);
        }
    }

    #[test]
    fn splitter_refuses_a_forged_length_before_reserving_for_it() {
        let mut splitter = FrameSplitter::new(1 << 20);
        splitter.push(&u32::MAX.to_be_bytes()[..3]);
        assert!(splitter.next_frame().unwrap().is_none());
        splitter.push(&[0xff]);
        let err = splitter.next_frame().unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { len: u32::MAX, max } if max == 1 << 20));
        assert!(splitter.buffered.capacity() < 1 << 10);
        assert_eq!(err.code(), CODE_FRAME_TOO_LARGE);
    }

    #[test]
    fn splitter_holds_a_partial_frame_until_it_is_complete() {
        let frame = encode_frame(&Envelope::new(Channel::Raft, 1, vec![9u8; 10]), 64).unwrap();
        let mut splitter = FrameSplitter::new(64);
        splitter.push(&frame[..frame.len() - 1]);
        assert!(splitter.next_frame().unwrap().is_none());
        assert_eq!(splitter.buffered(), frame.len() - 1);
        splitter.push(&frame[frame.len() - 1..]);
        let body = splitter.next_frame().unwrap().unwrap();
        assert_eq!(&body[..], &frame[FRAME_HEADER_LEN..]);
        assert!(splitter.next_frame().unwrap().is_none());
    }

    #[test]
    fn oversized_envelopes_are_refused_when_encoding() {
        let big = Envelope::new(Channel::Raft, 1, vec![0u8; 100]);
        let err = encode_frame(&big, 50).unwrap_err();
        assert!(matches!(err, Error::FrameTooLarge { len, max: 50 } if len > 100));
        let mut out = b"kept".to_vec();
        let err = append_frame(&big, 50, &mut out).unwrap_err();
        assert!(matches!(err, Error::FrameTooLarge { max: 50, .. }));
        assert_eq!(out, b"kept");
    }

    #[test]
    fn appended_frames_equal_encoded_ones() {
        let a = Envelope::new(Channel::Raft, 1, vec![1u8; 100]);
        let b = Envelope::new(Channel::Gossip, 2, Vec::new());
        let mut out = Vec::new();
        append_frame(&a, 1024, &mut out).unwrap();
        append_frame(&b, 1024, &mut out).unwrap();
        let mut expected = encode_frame(&a, 1024).unwrap().to_vec();
        expected.extend_from_slice(&encode_frame(&b, 1024).unwrap());
        assert_eq!(out, expected);
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
