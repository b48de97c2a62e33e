//! Request framing and reply encoding on top of the `redis-protocol` codec.
//!
//! A client request is a RESP2 array of bulk strings (what every Redis client sends) or
//! an inline command line (what a person types into `nc`). Before handing bytes to the
//! codec, a shallow scan checks that shape and the limits: the declared lengths must fit
//! in `request_bytes_max` (so an oversized request is refused as soon as its header
//! arrives, never buffered), the argument count must fit in `request_args_max`, and
//! nested arrays are refused (the codec parses nesting recursively, so a deep nest
//! would otherwise exhaust the stack). Only a complete, well-shaped frame reaches
//! [`redis_protocol::resp2::decode::decode`].

use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::encode::encode;
use redis_protocol::resp2::types::{OwnedFrame, Resp2Frame};

/// Redis's limit on an inline command line.
pub const INLINE_BYTES_MAX: usize = 64 * 1024;
/// The longest length line (`*<n>\r\n` or `$<n>\r\n`) accepted: sign, 19 digits, CRLF.
const LENGTH_LINE_MAX: usize = 24;

/// Limits applied while framing requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// The largest request, in bytes.
    pub request_bytes_max: usize,
    /// The most arguments in one request.
    pub request_args_max: usize,
}

/// A client stream that cannot be framed; the connection is answered and closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The array header's count is not a number or exceeds the argument limit.
    #[error("Protocol error: invalid multibulk length")]
    MultibulkLength,
    /// A bulk string length is not a number or is negative.
    #[error("Protocol error: invalid bulk length")]
    BulkLength,
    /// An array element is not a bulk string.
    #[error("Protocol error: expected '$', got '{found}'")]
    ExpectedBulk {
        /// The byte found instead, shown as a character.
        found: char,
    },
    /// A bulk string is not followed by CRLF.
    #[error("Protocol error: missing CRLF after a bulk string")]
    MissingCrlf,
    /// An inline command line is longer than [`INLINE_BYTES_MAX`].
    #[error("Protocol error: too big inline request")]
    InlineTooBig,
    /// The request's declared size exceeds `request_bytes_max`.
    #[error("Protocol error: request of at least {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The size the request needs, as far as known.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The codec rejected a frame the scan accepted.
    #[error("Protocol error: {reason}")]
    Codec {
        /// The codec's description.
        reason: String,
    },
}

/// One framed request: its arguments (empty for a blank line or `*0`) and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The command name and its arguments.
    pub args: Vec<Vec<u8>>,
    /// How many bytes of the buffer it used.
    pub consumed: usize,
}

fn find_crlf(buf: &[u8], from: usize, max_len: usize) -> Option<usize> {
    let end = buf.len().min(from.saturating_add(max_len));
    buf.get(from..end)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|p| from + p)
}

/// Reads a `<prefix><decimal>\r\n` line at `pos`; `Ok(None)` if more bytes are needed.
fn length_line(
    buf: &[u8],
    pos: usize,
    bad: ProtocolError,
) -> Result<Option<(i64, usize)>, ProtocolError> {
    match find_crlf(buf, pos + 1, LENGTH_LINE_MAX) {
        Some(cr) => {
            let digits = std::str::from_utf8(&buf[pos + 1..cr]).map_err(|_| bad.clone())?;
            let n: i64 = digits.parse().map_err(|_| bad)?;
            Ok(Some((n, cr + 2)))
        }
        None if buf.len() >= pos + 1 + LENGTH_LINE_MAX => Err(bad),
        None => Ok(None),
    }
}

/// Scans a multibulk request; returns its total size once all of it is buffered.
fn scan_multibulk(buf: &[u8], limits: FrameLimits) -> Result<Option<usize>, ProtocolError> {
    debug_assert_eq!(buf.first(), Some(&b'*'));
    let Some((count, mut pos)) = length_line(buf, 0, ProtocolError::MultibulkLength)? else {
        return Ok(None);
    };
    if count > limits.request_args_max as i64 {
        return Err(ProtocolError::MultibulkLength);
    }
    for _ in 0..count.max(0) {
        let Some(&kind) = buf.get(pos) else {
            return Ok(None);
        };
        if kind != b'$' {
            return Err(ProtocolError::ExpectedBulk {
                found: char::from(kind),
            });
        }
        let Some((len, body)) = length_line(buf, pos, ProtocolError::BulkLength)? else {
            return Ok(None);
        };
        let len = usize::try_from(len).map_err(|_| ProtocolError::BulkLength)?;
        let end = body.saturating_add(len).saturating_add(2);
        if end > limits.request_bytes_max {
            return Err(ProtocolError::TooLarge {
                len: end,
                max: limits.request_bytes_max,
            });
        }
        if buf.len() < end {
            return Ok(None);
        }
        if &buf[end - 2..end] != b"\r\n" {
            return Err(ProtocolError::MissingCrlf);
        }
        pos = end;
    }
    Ok(Some(pos))
}

fn frame_to_args(frame: OwnedFrame) -> Result<Vec<Vec<u8>>, ProtocolError> {
    let unexpected = || ProtocolError::Codec {
        reason: "request is not an array of bulk strings".to_owned(),
    };
    match frame {
        OwnedFrame::Array(items) => items
            .into_iter()
            .map(|item| match item {
                OwnedFrame::BulkString(bytes) => Ok(bytes),
                _ => Err(unexpected()),
            })
            .collect(),
        OwnedFrame::Null => Ok(Vec::new()),
        _ => Err(unexpected()),
    }
}

fn parse_inline(buf: &[u8], limits: FrameLimits) -> Result<Option<Request>, ProtocolError> {
    let window = &buf[..buf.len().min(INLINE_BYTES_MAX)];
    let Some(newline) = window.iter().position(|&b| b == b'\n') else {
        if buf.len() >= INLINE_BYTES_MAX {
            return Err(ProtocolError::InlineTooBig);
        }
        return Ok(None);
    };
    let line = buf[..newline]
        .strip_suffix(b"\r")
        .unwrap_or(&buf[..newline]);
    let args: Vec<Vec<u8>> = line
        .split(u8::is_ascii_whitespace)
        .filter(|word| !word.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    if args.len() > limits.request_args_max {
        return Err(ProtocolError::MultibulkLength);
    }
    Ok(Some(Request {
        args,
        consumed: newline + 1,
    }))
}

/// Frames the next request at the start of `buf`; `Ok(None)` means "read more".
///
/// Never panics and never asks for more than `request_bytes_max` bytes (or
/// [`INLINE_BYTES_MAX`] for an inline line) to be buffered.
///
/// # Errors
/// [`ProtocolError`] when the bytes cannot be a valid request.
pub fn next_request(buf: &[u8], limits: FrameLimits) -> Result<Option<Request>, ProtocolError> {
    match buf.first() {
        None => Ok(None),
        Some(b'*') => {
            let Some(len) = scan_multibulk(buf, limits)? else {
                return Ok(None);
            };
            let decoded = decode(&buf[..len]).map_err(|e| ProtocolError::Codec {
                reason: e.to_string(),
            })?;
            match decoded {
                Some((frame, consumed)) if consumed == len => Ok(Some(Request {
                    args: frame_to_args(frame)?,
                    consumed,
                })),
                _ => Err(ProtocolError::Codec {
                    reason: "frame boundary disagrees with the codec".to_owned(),
                }),
            }
        }
        Some(_) => parse_inline(buf, limits),
    }
}

/// Appends the RESP2 encoding of `frame` to `out`.
pub fn encode_frame(out: &mut Vec<u8>, frame: &OwnedFrame) {
    let start = out.len();
    let len = frame.encode_len(false);
    out.resize(start + len, 0);
    let written =
        encode(&mut out[start..], frame, false).expect("the buffer was sized by encode_len");
    assert_eq!(written, len, "encode_len and encode disagree");
}

/// The protocol a connection answers in: RESP2 until the client asks `HELLO 3`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Protocol {
    /// RESP2.
    #[default]
    Resp2,
    /// RESP3.
    Resp3,
}

/// Encodes `frame` as a reply in `protocol`. For the replies this server makes, RESP3
/// differs from RESP2 only in how a null is written (`_`), at any depth.
pub fn encode_reply(out: &mut Vec<u8>, frame: &OwnedFrame, protocol: Protocol) {
    match (protocol, frame) {
        (Protocol::Resp3, OwnedFrame::Null) => out.extend_from_slice(b"_\r\n"),
        (Protocol::Resp3, OwnedFrame::Array(items)) => {
            out.extend_from_slice(format!("*{}\r\n", items.len()).as_bytes());
            for item in items {
                encode_reply(out, item, protocol);
            }
        }
        _ => encode_frame(out, frame),
    }
}

/// Encodes `pairs` as a map reply: a RESP3 map, or in RESP2 an array of keys and values.
pub fn encode_map(out: &mut Vec<u8>, pairs: &[(OwnedFrame, OwnedFrame)], protocol: Protocol) {
    match protocol {
        Protocol::Resp2 => out.extend_from_slice(format!("*{}\r\n", pairs.len() * 2).as_bytes()),
        Protocol::Resp3 => out.extend_from_slice(format!("%{}\r\n", pairs.len()).as_bytes()),
    }
    for (key, value) in pairs {
        encode_reply(out, key, protocol);
        encode_reply(out, value, protocol);
    }
}

/// A reply that may hold maps or sets, which RESP2's frames cannot (`HGETALL`,
/// `SMEMBERS`, and `EXEC`'s answer to a transaction holding them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A reply that is the same map-free frame in both protocols (but for its nulls).
    Frame(OwnedFrame),
    /// An array of replies.
    Array(Vec<Reply>),
    /// A map, as [`encode_map`] writes it.
    Map(Vec<(OwnedFrame, OwnedFrame)>),
    /// A set: a RESP3 set, or in RESP2 an array.
    Set(Vec<OwnedFrame>),
    /// Pairs that are not a map (`HRANDFIELD ... WITHVALUES`, `ZRANGE ... WITHSCORES`):
    /// in RESP3 an array of two-item arrays, in RESP2 one flat array.
    Pairs(Vec<(Reply, Reply)>),
    /// A double, written out (`ZSCORE`): a RESP3 double, or in RESP2 a bulk string.
    Double(String),
    /// Out-of-band data (a subscriber's messages and confirmations): a RESP3 push, or
    /// in RESP2 an array.
    Push(Vec<Reply>),
    /// No array (`EXEC` of a transaction a watched key aborted, `BLPOP` timed out): a
    /// RESP3 null, or in RESP2 the null array `*-1`.
    NullArray,
    /// Keys and what each holds (`XREAD`): a RESP3 map, or in RESP2 an array of two-item
    /// arrays.
    Keyed(Vec<(OwnedFrame, Reply)>),
}

/// Encodes `reply` in `protocol`.
pub fn encode_tree(out: &mut Vec<u8>, reply: &Reply, protocol: Protocol) {
    match reply {
        Reply::Frame(frame) => encode_reply(out, frame, protocol),
        Reply::Array(items) => encode_items(out, '*', items, protocol),
        Reply::Push(items) => {
            let head = match protocol {
                Protocol::Resp2 => '*',
                Protocol::Resp3 => '>',
            };
            encode_items(out, head, items, protocol);
        }
        Reply::Map(pairs) => encode_map(out, pairs, protocol),
        Reply::Pairs(pairs) => {
            let nested = protocol == Protocol::Resp3;
            let len = if nested { pairs.len() } else { pairs.len() * 2 };
            out.extend_from_slice(format!("*{len}\r\n").as_bytes());
            for (first, second) in pairs {
                if nested {
                    out.extend_from_slice(b"*2\r\n");
                }
                encode_tree(out, first, protocol);
                encode_tree(out, second, protocol);
            }
        }
        Reply::Double(text) => encode_double(out, text, protocol),
        Reply::Keyed(pairs) => {
            let head = match protocol {
                Protocol::Resp3 => '%',
                Protocol::Resp2 => '*',
            };
            out.extend_from_slice(format!("{head}{}\r\n", pairs.len()).as_bytes());
            for (key, value) in pairs {
                if protocol == Protocol::Resp2 {
                    out.extend_from_slice(b"*2\r\n");
                }
                encode_reply(out, key, protocol);
                encode_tree(out, value, protocol);
            }
        }
        Reply::NullArray => match protocol {
            Protocol::Resp2 => out.extend_from_slice(b"*-1\r\n"),
            Protocol::Resp3 => out.extend_from_slice(b"_\r\n"),
        },
        Reply::Set(items) => {
            let head = match protocol {
                Protocol::Resp2 => '*',
                Protocol::Resp3 => '~',
            };
            out.extend_from_slice(format!("{head}{}\r\n", items.len()).as_bytes());
            for item in items {
                encode_reply(out, item, protocol);
            }
        }
    }
}

/// `items` under an aggregate header `head` (`*` for an array, `>` for a push).
fn encode_items(out: &mut Vec<u8>, head: char, items: &[Reply], protocol: Protocol) {
    out.extend_from_slice(format!("{head}{}\r\n", items.len()).as_bytes());
    for item in items {
        encode_tree(out, item, protocol);
    }
}

/// A double written out as `text`: `,text` in RESP3, a bulk string in RESP2.
fn encode_double(out: &mut Vec<u8>, text: &str, protocol: Protocol) {
    match protocol {
        Protocol::Resp2 => out.extend_from_slice(format!("${}\r\n", text.len()).as_bytes()),
        Protocol::Resp3 => out.push(b','),
    }
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// A `+OK` reply.
#[must_use]
pub fn ok() -> OwnedFrame {
    OwnedFrame::SimpleString(b"OK".to_vec())
}

/// An error reply; `message` starts with its code (`ERR`, `NOAUTH`, ...).
#[must_use]
pub fn error(message: impl Into<String>) -> OwnedFrame {
    let mut message: String = message.into();
    // An error line cannot carry a line break.
    message.retain(|c| c != '\r' && c != '\n');
    OwnedFrame::Error(message)
}

/// A bulk string reply.
#[must_use]
pub fn bulk(bytes: Vec<u8>) -> OwnedFrame {
    OwnedFrame::BulkString(bytes)
}
