//! Transport bytes: the message envelope and the QUIC stream framing.

use aegis_transport::{Channel, Envelope};
use aegis_transport_quic::wire::{
    self, FrameSplitter, Response, STATUS_NO_RESPONSE, STATUS_TOO_LARGE,
};
use bytes::Bytes;

use crate::engine::Verdict;

/// The frame limit the QUIC target splits with: small, so forged lengths hit it.
const FRAME_SIZE_MAX: u32 = 4096;

fn sample_envelopes() -> Vec<Envelope> {
    let channels = [
        Channel::Raft,
        Channel::Transaction,
        Channel::Membership,
        Channel::Gossip,
        Channel::Client,
        Channel::Application,
    ];
    // Payload sizes and kinds on both sides of the one- and two-byte varint limits.
    let shapes: [(u16, usize); 6] = [
        (0, 0),
        (1, 1),
        (127, 127),
        (128, 128),
        (300, 300),
        (u16::MAX, 1500),
    ];
    shapes
        .iter()
        .zip(channels.iter().cycle())
        .map(|(&(kind, len), &channel)| {
            let payload: Vec<u8> = (0..len)
                .map(|i| (i * 7 + usize::from(kind)) as u8)
                .collect();
            Envelope::new(channel, kind, payload)
        })
        .collect()
}

pub(crate) fn envelope_seeds() -> Vec<Vec<u8>> {
    sample_envelopes().iter().map(Envelope::encode).collect()
}

/// `Envelope::decode`, and a round trip of what it accepts.
pub(crate) fn envelope_run(input: &[u8]) -> Verdict {
    match Envelope::decode(&Bytes::copy_from_slice(input)) {
        Ok(envelope) => {
            let again = Envelope::decode(&Bytes::from(envelope.encode()))
                .expect("a re-encoded envelope decodes");
            assert_eq!(again, envelope, "envelope changed in a round trip");
            Verdict::Accepted
        }
        Err(_) => Verdict::Rejected,
    }
}

pub(crate) fn quic_seeds() -> Vec<Vec<u8>> {
    let envelopes = sample_envelopes();
    let mut seeds = Vec::new();

    // A client's first unidirectional stream: hello, then one-way envelopes.
    let mut one_way = wire::hello_frame(7).to_vec();
    for e in &envelopes[..3] {
        wire::append_frame(e, FRAME_SIZE_MAX, &mut one_way).expect("fits");
    }
    seeds.push(one_way);

    // A request stream with ids at the edges.
    let mut requests = Vec::new();
    for (id, e) in [0, 1, u64::MAX].into_iter().zip(&envelopes[2..]) {
        wire::append_request(id, e, FRAME_SIZE_MAX, &mut requests).expect("fits");
    }
    seeds.push(requests);

    // Its answers: an envelope, no answer, too large.
    let mut responses = Vec::new();
    wire::append_response(1, Some(&envelopes[1]), FRAME_SIZE_MAX, &mut responses).expect("fits");
    wire::append_response(2, None, FRAME_SIZE_MAX, &mut responses).expect("a status fits");
    wire::append_status(3, STATUS_TOO_LARGE, &mut responses);
    seeds.push(responses);

    // Single frames, small and near the limit.
    let mut single = Vec::new();
    wire::append_request(42, &envelopes[0], FRAME_SIZE_MAX, &mut single).expect("fits");
    seeds.push(single);
    let mut big = Vec::new();
    wire::append_frame(&envelopes[5], FRAME_SIZE_MAX, &mut big).expect("fits");
    seeds.push(big);
    seeds.push(wire::hello_frame(u64::MAX).to_vec());
    seeds
}

/// Splits the stream into frames (fed in pieces, as a socket would) and runs every
/// frame parser on each. Accepted when the stream splits cleanly into at least one
/// frame and every frame is accepted by some parser.
pub(crate) fn quic_run(input: &[u8]) -> Verdict {
    let mut splitter = FrameSplitter::new(FRAME_SIZE_MAX);
    // Piece sizes vary with the input so the partial-frame paths are taken too.
    let piece = 1 + input.len() % 61;
    let mut frames = 0_usize;
    let mut every_frame_parsed = true;
    for part in input.chunks(piece) {
        splitter.push_slice(part);
        loop {
            match splitter.next_frame() {
                Ok(Some(body)) => {
                    assert!(
                        body.len() <= FRAME_SIZE_MAX as usize,
                        "frame over the limit"
                    );
                    frames += 1;
                    every_frame_parsed &= parse_frame(&body);
                }
                Ok(None) => break,
                Err(_) => return Verdict::Rejected,
            }
        }
    }
    if frames > 0 && every_frame_parsed && splitter.buffered() == 0 {
        Verdict::Accepted
    } else {
        Verdict::Rejected
    }
}

/// Runs every parser on one frame body; true if any accepted it.
fn parse_frame(body: &Bytes) -> bool {
    let mut accepted = false;
    if let Ok((id, envelope)) = wire::parse_request(body) {
        let mut out = Vec::new();
        wire::append_request(id, &envelope, u32::MAX, &mut out).expect("no limit");
        assert_eq!(
            parse_only_frame(&out).map(|b| wire::parse_request(&b).ok()),
            Some(Some((id, envelope)))
        );
        accepted = true;
    }
    if let Ok((id, response)) = wire::parse_response(body) {
        let mut out = Vec::new();
        match &response {
            Response::Answer(envelope) => {
                wire::append_response(id, Some(envelope), u32::MAX, &mut out).expect("no limit");
            }
            Response::Status(status) => {
                assert!(matches!(*status, STATUS_NO_RESPONSE | STATUS_TOO_LARGE));
                wire::append_status(id, *status, &mut out);
            }
        }
        let again = parse_only_frame(&out).map(|b| wire::parse_response(&b));
        match (again, response) {
            (Some(Ok((again_id, Response::Answer(a)))), Response::Answer(b)) => {
                assert_eq!((again_id, a), (id, b), "response changed in a round trip");
            }
            (Some(Ok((again_id, Response::Status(a)))), Response::Status(b)) => {
                assert_eq!((again_id, a), (id, b), "status changed in a round trip");
            }
            (again, _) => panic!("a re-encoded response did not parse alike: {again:?}"),
        }
        accepted = true;
    }
    if let Some(node) = wire::parse_hello(body) {
        assert_eq!(
            wire::hello_frame(node)[wire::FRAME_HEADER_LEN..],
            body[..],
            "hello changed in a round trip"
        );
        accepted = true;
    }
    if let Ok(envelope) = Envelope::decode(body) {
        assert_eq!(
            Envelope::decode(&Bytes::from(envelope.encode())).ok(),
            Some(envelope)
        );
        accepted = true;
    }
    accepted
}

/// The body of the single frame `bytes` holds, or `None`.
fn parse_only_frame(bytes: &[u8]) -> Option<Bytes> {
    let mut splitter = FrameSplitter::new(u32::MAX);
    splitter.push_slice(bytes);
    let body = splitter.next_frame().ok()??;
    (splitter.buffered() == 0).then_some(body)
}
