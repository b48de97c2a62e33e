//! The byte layout on QUIC streams.
//!
//! Every stream carries frames: a 4-byte big-endian length, then that many bytes. The
//! length is checked against the configured maximum before anything is allocated for it.
//!
//! - The first unidirectional stream a client opens starts with a hello frame
//!   ([`HELLO_MAGIC`], [`HELLO_VERSION`], the client's node id as big-endian `u64`); the
//!   server checks the id against the client's certificate. The rest of that stream, and
//!   every later unidirectional stream, carries one-way envelopes back to back.
//! - A client sends all its requests to a peer on one bidirectional stream per
//!   connection: request frames (a request id, little-endian `u64`, then the envelope)
//!   back to back. The server answers each, in any order, on the same stream's other
//!   direction with a response frame (the request id, a status byte, then the envelope
//!   when the status is [`STATUS_ANSWER`]). A stream whose bytes do not parse is reset
//!   (and stopped) with one of the codes below; the node goes on serving its others.

use aegis_transport::{Envelope, Error, NodeId};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes in a frame's length prefix.
pub const FRAME_HEADER_LEN: usize = 4;
/// Opens every hello frame.
pub const HELLO_MAGIC: [u8; 4] = *b"AEGS";
/// The hello layout this build writes and accepts. It also names the layout of the
/// request streams (version 1 carried one request per stream), so nodes that would not
/// understand each other's requests part at the hello.
pub const HELLO_VERSION: u8 = 2;
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

/// Bytes in front of a request frame's envelope: the request id.
pub const REQUEST_HEAD_LEN: usize = 8;
/// Bytes in front of a response frame's envelope: the request id and the status.
pub const RESPONSE_HEAD_LEN: usize = 9;
/// Response status: the envelope follows.
pub const STATUS_ANSWER: u8 = 0;
/// Response status: the request was dropped without an answer.
pub const STATUS_NO_RESPONSE: u8 = 1;
/// Response status: the answer did not fit the responder's frame size limit.
pub const STATUS_TOO_LARGE: u8 = 2;

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
    append_headed_frame(&[], Some(envelope), frame_size_max, out)
}

/// Encodes a request frame (`id`, then `envelope`) at the end of `out`. On error `out`
/// is left as it was.
///
/// # Errors
/// [`Error::FrameTooLarge`] when the encoded envelope exceeds `frame_size_max` (the id
/// does not count against it).
pub fn append_request(
    id: u64,
    envelope: &Envelope,
    frame_size_max: u32,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    append_headed_frame(&id.to_le_bytes(), Some(envelope), frame_size_max, out)
}

/// Encodes the response frame to request `id` at the end of `out`: the answer, or a
/// status without one ([`STATUS_NO_RESPONSE`] for `None`). An answer larger than
/// `frame_size_max` is replaced by [`STATUS_TOO_LARGE`] and reported.
///
/// # Errors
/// [`Error::FrameTooLarge`] when the answer did not fit; its status frame was written.
pub fn append_response(
    id: u64,
    answer: Option<&Envelope>,
    frame_size_max: u32,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let Some(envelope) = answer else {
        append_status(id, STATUS_NO_RESPONSE, out);
        return Ok(());
    };
    append_headed_frame(
        &response_head(id, STATUS_ANSWER),
        Some(envelope),
        frame_size_max,
        out,
    )
    .inspect_err(|_| append_status(id, STATUS_TOO_LARGE, out))
}

/// Encodes a response frame to request `id` that carries only `status`, at the end of
/// `out`.
pub fn append_status(id: u64, status: u8, out: &mut Vec<u8>) {
    let written = append_headed_frame(&response_head(id, status), None, 0, out);
    debug_assert!(written.is_ok(), "a status frame carries no envelope");
}

fn response_head(id: u64, status: u8) -> [u8; RESPONSE_HEAD_LEN] {
    let mut head = [0; RESPONSE_HEAD_LEN];
    head[..8].copy_from_slice(&id.to_le_bytes());
    head[8] = status;
    head
}

/// Splits a request frame's body into its id and envelope.
///
/// # Errors
/// [`Error::Malformed`] for a body too short or an envelope that does not decode.
pub fn parse_request(body: &Bytes) -> Result<(u64, Envelope), Error> {
    let id = body
        .first_chunk::<REQUEST_HEAD_LEN>()
        .map(|id| u64::from_le_bytes(*id))
        .ok_or_else(|| Error::Malformed {
            reason: format!("a request frame of {} bytes has no id", body.len()),
        })?;
    Ok((id, Envelope::decode(&body.slice(REQUEST_HEAD_LEN..))?))
}

/// What a response frame said about its request.
#[derive(Debug)]
pub enum Response {
    /// The answer.
    Answer(Envelope),
    /// A status without an answer ([`STATUS_NO_RESPONSE`], [`STATUS_TOO_LARGE`]).
    Status(u8),
}

/// Splits a response frame's body into its request id and what it says.
///
/// # Errors
/// [`Error::Malformed`] for a body too short, an unknown status, or an answer that does
/// not decode.
pub fn parse_response(body: &Bytes) -> Result<(u64, Response), Error> {
    let Some(head) = body.first_chunk::<RESPONSE_HEAD_LEN>() else {
        return Err(Error::Malformed {
            reason: format!(
                "a response frame of {} bytes has no id and status",
                body.len()
            ),
        });
    };
    let id = u64::from_le_bytes(head[..8].try_into().expect("eight bytes"));
    let rest = body.len() - RESPONSE_HEAD_LEN;
    let response = match head[8] {
        STATUS_ANSWER => Response::Answer(Envelope::decode(&body.slice(RESPONSE_HEAD_LEN..))?),
        status @ (STATUS_NO_RESPONSE | STATUS_TOO_LARGE) if rest == 0 => Response::Status(status),
        status => {
            return Err(Error::Malformed {
                reason: format!("response status {status} with {rest} bytes after it"),
            });
        }
    };
    Ok((id, response))
}

/// Encodes `head`, then `envelope` if any, as one frame at the end of `out`; only the
/// envelope counts against `frame_size_max`. On error `out` is left as it was.
fn append_headed_frame(
    head: &[u8],
    envelope: Option<&Envelope>,
    frame_size_max: u32,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    out.extend_from_slice(head);
    if let Some(envelope) = envelope {
        envelope.encode_into(out);
    }
    let body_len = out.len() - start - FRAME_HEADER_LEN;
    let envelope_len = body_len - head.len();
    if envelope_len > frame_size_max as usize {
        out.truncate(start);
        return Err(Error::FrameTooLarge {
            len: envelope_len as u64,
            max: u64::from(frame_size_max),
        });
    }
    let len = u32::try_from(body_len).expect("bounded by frame_size_max and a short head");
    out[start..start + FRAME_HEADER_LEN].copy_from_slice(&len.to_be_bytes());
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
/// Pieces are [`push`](Self::push)ed as they arrive and whole frames taken out with
/// [`next_frame`](Self::next_frame), without an await per frame. Like [`read_frame`], it
/// checks a frame's length prefix against the maximum as soon as the prefix is complete,
/// before it reserves anything for the body. A frame that lies within one piece is
/// handed out as a slice of it, without a copy; only a frame cut across pieces is
/// gathered into a buffer of its own, each byte copied once.
#[derive(Debug)]
pub struct FrameSplitter {
    /// The unread rest of the last piece pushed.
    received: Bytes,
    /// Bytes that came before `received`: a frame cut across pieces, header first, as
    /// far as it has arrived (or more, when pieces were pushed without taking frames).
    gathering: BytesMut,
    frame_size_max: u32,
}

impl FrameSplitter {
    /// A splitter refusing frames longer than `frame_size_max` bytes.
    #[must_use]
    pub fn new(frame_size_max: u32) -> Self {
        Self {
            received: Bytes::new(),
            gathering: BytesMut::new(),
            frame_size_max,
        }
    }

    /// Appends a piece received from the stream.
    pub fn push(&mut self, piece: Bytes) {
        if self.received.is_empty() && self.gathering.is_empty() {
            self.received = piece;
            return;
        }
        // What is left of earlier pieces comes first: usually the start of a frame the
        // new piece completes.
        let rest = std::mem::replace(&mut self.received, piece);
        self.gathering.extend_from_slice(&rest);
    }

    /// Appends bytes received from the stream, copying them.
    pub fn push_slice(&mut self, data: &[u8]) {
        self.push(Bytes::copy_from_slice(data));
    }

    /// Bytes received but not yet taken out as part of a frame.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.received.len() + self.gathering.len()
    }

    /// The next whole frame's body, or `None` until more bytes arrive.
    ///
    /// # Errors
    /// [`FrameError::TooLarge`] when the length prefix exceeds the maximum; the stream
    /// cannot be read further after that.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        if self.gathering.is_empty() {
            if let Some(end) = self.frame_end(&self.received)?
                && end <= self.received.len()
            {
                let mut frame = self.received.split_to(end);
                frame.advance(FRAME_HEADER_LEN);
                return Ok(Some(frame));
            }
            if self.received.is_empty() {
                return Ok(None);
            }
        }
        // A frame cut across pieces: first its header, then as much of its body as has
        // arrived.
        self.gather(FRAME_HEADER_LEN.saturating_sub(self.gathering.len()));
        let Some(end) = self.frame_end(&self.gathering)? else {
            return Ok(None);
        };
        if self.gathering.len() < end {
            // The body's length is known to be allowed now: room for it all at once
            // saves growing the buffer piece by piece.
            self.gathering.reserve(end - self.gathering.len());
            self.gather(end - self.gathering.len());
            if self.gathering.len() < end {
                return Ok(None);
            }
        }
        let mut frame = self.gathering.split_to(end).freeze();
        frame.advance(FRAME_HEADER_LEN);
        Ok(Some(frame))
    }

    /// Moves up to `len` bytes from what was received to the frame being gathered.
    fn gather(&mut self, len: usize) {
        let len = len.min(self.received.len());
        self.gathering.extend_from_slice(&self.received[..len]);
        self.received.advance(len);
    }

    /// Where the frame starting at `bytes[0]` ends, once its header is complete.
    fn frame_end(&self, bytes: &[u8]) -> Result<Option<usize>, FrameError> {
        let Some(header) = bytes.first_chunk::<FRAME_HEADER_LEN>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*header);
        if len > self.frame_size_max {
            return Err(FrameError::TooLarge {
                len,
                max: self.frame_size_max,
            });
        }
        Ok(Some(FRAME_HEADER_LEN + len as usize))
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
        // Frames are taken out after every piece, or only after every `drain_every`
        // pieces, so several pieces can wait together.
        for drain_every in [1, 3] {
            for piece in [1, 2, 3, 5, 13, 64, 1000, stream.len()] {
                let mut splitter = FrameSplitter::new(1024);
                let mut found = Vec::new();
                let parts: Vec<_> = stream.chunks(piece).collect();
                for (i, part) in parts.iter().enumerate() {
                    splitter.push_slice(part);
                    if (i + 1) % drain_every != 0 && i + 1 != parts.len() {
                        continue;
                    }
                    while let Some(body) = splitter.next_frame().unwrap() {
                        found.push(Envelope::decode(&body).unwrap());
                    }
                }
                assert_eq!(
                    found, envelopes,
                    "pieces of {piece}, drained every {drain_every}"
                );
                assert_eq!(splitter.buffered(), 0);
            }
        }
    }

    #[test]
    fn splitter_refuses_a_forged_length_before_reserving_for_it() {
        let mut splitter = FrameSplitter::new(1 << 20);
        splitter.push_slice(&u32::MAX.to_be_bytes()[..3]);
        assert!(splitter.next_frame().unwrap().is_none());
        splitter.push_slice(&[0xff]);
        let err = splitter.next_frame().unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { len: u32::MAX, max } if max == 1 << 20));
        assert!(splitter.gathering.capacity() < 1 << 10);
        assert_eq!(err.code(), CODE_FRAME_TOO_LARGE);
    }

    #[test]
    fn splitter_holds_a_partial_frame_until_it_is_complete() {
        let frame = encode_frame(&Envelope::new(Channel::Raft, 1, vec![9u8; 10]), 64).unwrap();
        let mut splitter = FrameSplitter::new(64);
        splitter.push_slice(&frame[..frame.len() - 1]);
        assert!(splitter.next_frame().unwrap().is_none());
        assert_eq!(splitter.buffered(), frame.len() - 1);
        splitter.push_slice(&frame[frame.len() - 1..]);
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

    /// The body of the one frame at the start of `out`.
    fn body_of(out: &[u8]) -> Bytes {
        let mut frames = FrameSplitter::new(u32::MAX);
        frames.push_slice(out);
        let body = frames.next_frame().unwrap().expect("a whole frame");
        assert_eq!(frames.buffered(), 0, "one frame");
        body
    }

    #[test]
    fn requests_and_responses_round_trip_with_their_ids() {
        let e = Envelope::new(Channel::Raft, 3, vec![9u8; 40]);
        let mut out = Vec::new();
        append_request(u64::MAX - 1, &e, 1024, &mut out).unwrap();
        assert_eq!(
            parse_request(&body_of(&out)).unwrap(),
            (u64::MAX - 1, e.clone())
        );

        out.clear();
        append_response(7, Some(&e), 1024, &mut out).unwrap();
        let (id, response) = parse_response(&body_of(&out)).unwrap();
        assert_eq!(id, 7);
        assert!(matches!(response, Response::Answer(answer) if answer == e));

        out.clear();
        append_response(8, None, 1024, &mut out).unwrap();
        let (id, response) = parse_response(&body_of(&out)).unwrap();
        assert_eq!(id, 8);
        assert!(matches!(response, Response::Status(STATUS_NO_RESPONSE)));
    }

    #[test]
    fn the_frame_limit_counts_the_envelope_not_the_id() {
        let e = Envelope::new(Channel::Raft, 3, vec![9u8; 40]);
        let exact = u32::try_from(e.encode().len()).unwrap();
        let mut out = Vec::new();
        append_request(1, &e, exact, &mut out).unwrap();
        assert!(matches!(
            append_request(2, &e, exact - 1, &mut out),
            Err(Error::FrameTooLarge { .. })
        ));
        assert_eq!(
            parse_request(&body_of(&out)).unwrap().0,
            1,
            "left as it was"
        );

        // An answer too large becomes a status frame, and the caller hears why.
        out.clear();
        assert!(matches!(
            append_response(5, Some(&e), exact - 1, &mut out),
            Err(Error::FrameTooLarge { .. })
        ));
        let (id, response) = parse_response(&body_of(&out)).unwrap();
        assert_eq!(id, 5);
        assert!(matches!(response, Response::Status(STATUS_TOO_LARGE)));
    }

    #[test]
    fn malformed_request_and_response_bodies_are_errors() {
        let e = Envelope::new(Channel::Raft, 3, vec![9u8; 4]);
        let mut answer = Vec::new();
        append_response(1, Some(&e), 1024, &mut answer).unwrap();
        let answer = body_of(&answer);
        // Every cut of a well-formed body, and a few forged ones, fail without a panic.
        for cut in 0..answer.len() {
            assert!(parse_response(&answer.slice(..cut)).is_err(), "cut {cut}");
            assert!(parse_request(&answer.slice(..cut.min(REQUEST_HEAD_LEN + 1))).is_err());
        }
        let mut unknown = answer.to_vec();
        unknown[8] = 9;
        assert!(parse_response(&Bytes::from(unknown)).is_err());
        let mut padded_status = vec![0u8; 8];
        padded_status.extend_from_slice(&[STATUS_NO_RESPONSE, 0]);
        assert!(parse_response(&Bytes::from(padded_status)).is_err());
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
