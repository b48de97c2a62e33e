//! Request framing: limits, shapes and no panics on arbitrary bytes.

use aegis_node::resp::{FrameLimits, INLINE_BYTES_MAX, ProtocolError, next_request};
use proptest::prelude::*;

const LIMITS: FrameLimits = FrameLimits {
    request_bytes_max: 1024,
    request_args_max: 8,
};

fn args(request: &[u8]) -> Vec<Vec<u8>> {
    let framed = next_request(request, LIMITS).unwrap().expect("complete");
    assert_eq!(framed.consumed, request.len());
    framed.args
}

#[test]
fn multibulk_and_inline_requests() {
    assert_eq!(
        args(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"),
        vec![b"GET".to_vec(), b"k".to_vec()]
    );
    // Binary-safe: CRLF inside a bulk string is data.
    assert_eq!(args(b"*1\r\n$4\r\na\r\nb\r\n"), vec![b"a\r\nb".to_vec()]);
    assert_eq!(args(b"*0\r\n"), Vec::<Vec<u8>>::new());
    assert_eq!(args(b"*-1\r\n"), Vec::<Vec<u8>>::new());
    assert_eq!(
        args(b"SET  a\tb\r\n"),
        vec![b"SET".to_vec(), b"a".to_vec(), b"b".to_vec()]
    );
    assert_eq!(args(b"PING\n"), vec![b"PING".to_vec()]);
    assert_eq!(args(b"\r\n"), Vec::<Vec<u8>>::new());
}

#[test]
fn every_prefix_of_a_request_asks_for_more() {
    let request = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
    for cut in 0..request.len() {
        assert_eq!(
            next_request(&request[..cut], LIMITS),
            Ok(None),
            "cut at {cut}"
        );
    }
    // A pipelined second request is left in the buffer.
    let mut two = request.to_vec();
    two.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
    let first = next_request(&two, LIMITS).unwrap().unwrap();
    assert_eq!(first.consumed, request.len());
}

#[test]
fn oversized_requests_are_refused_from_their_header() {
    // The declared bulk length alone exceeds the limit: refused before the body arrives.
    assert!(matches!(
        next_request(b"*2\r\n$3\r\nGET\r\n$5000\r\n", LIMITS),
        Err(ProtocolError::TooLarge { max: 1024, .. })
    ));
    // Many small arguments that add up past the limit.
    let mut many = b"*8\r\n".to_vec();
    for _ in 0..8 {
        many.extend_from_slice(b"$200\r\n");
        many.extend_from_slice(&[b'x'; 200]);
        many.extend_from_slice(b"\r\n");
    }
    assert!(matches!(
        next_request(&many, LIMITS),
        Err(ProtocolError::TooLarge { .. })
    ));
    assert_eq!(
        next_request(b"*9\r\n", LIMITS),
        Err(ProtocolError::MultibulkLength)
    );
    let long_inline = vec![b'a'; INLINE_BYTES_MAX + 1];
    assert_eq!(
        next_request(&long_inline, LIMITS),
        Err(ProtocolError::InlineTooBig)
    );
    // A length line that never ends is refused after a few bytes.
    assert_eq!(
        next_request(b"*1\r\n$1111111111111111111111111111", LIMITS),
        Err(ProtocolError::BulkLength)
    );
}

#[test]
fn malformed_shapes_are_refused() {
    assert_eq!(
        next_request(b"*1\r\n+PING\r\n", LIMITS),
        Err(ProtocolError::ExpectedBulk { found: '+' })
    );
    assert_eq!(
        next_request(b"*x\r\n", LIMITS),
        Err(ProtocolError::MultibulkLength)
    );
    assert_eq!(
        next_request(b"*1\r\n$-1\r\n", LIMITS),
        Err(ProtocolError::BulkLength)
    );
    assert_eq!(
        next_request(b"*1\r\n$1\r\nabc", LIMITS),
        Err(ProtocolError::MissingCrlf)
    );
    // Deeply nested arrays would recurse in the codec; the scan refuses them at once.
    let nested = b"*1\r\n".repeat(100_000);
    let limits = FrameLimits {
        request_bytes_max: 1 << 20,
        request_args_max: 8,
    };
    assert_eq!(
        next_request(&nested, limits),
        Err(ProtocolError::ExpectedBulk { found: '*' })
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(Some(request)) = next_request(&raw, LIMITS) {
            prop_assert!(request.consumed <= raw.len());
            prop_assert!(request.args.len() <= LIMITS.request_args_max);
        }
    }

    /// RESP-shaped noise reaches deeper into the scanner than uniform bytes do.
    #[test]
    fn resp_shaped_noise_never_panics(parts in proptest::collection::vec(
        prop_oneof![
            Just(b"*".to_vec()), Just(b"$".to_vec()), Just(b"\r\n".to_vec()),
            Just(b"-1".to_vec()), Just(b"3".to_vec()), Just(b"abc".to_vec()),
            Just(b"99999999999999999999".to_vec()),
        ], 0..24)
    ) {
        let raw: Vec<u8> = parts.concat();
        let _ = next_request(&raw, LIMITS);
    }
}
