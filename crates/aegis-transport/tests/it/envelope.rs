use aegis_transport::{Channel, ENVELOPE_VERSION, Envelope, Error};
use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[test]
fn round_trips_every_channel_and_shares_the_payload() {
    let channels = [
        Channel::Raft,
        Channel::Transaction,
        Channel::Membership,
        Channel::Gossip,
        Channel::Client,
        Channel::Application,
    ];
    for (i, channel) in channels.into_iter().enumerate() {
        let original = Envelope::new(channel, 300 + i as u16, vec![i as u8; 1000 * i]);
        let wire = Bytes::from(original.encode());
        assert_eq!(wire[0], ENVELOPE_VERSION);
        assert!(wire.len() <= original.encoded_len_max());
        let decoded = Envelope::decode(&wire).unwrap();
        assert_eq!(decoded, original);
        if !decoded.payload.is_empty() {
            let offset = decoded.payload.as_ptr() as usize - wire.as_ptr() as usize;
            assert!(offset < wire.len(), "payload should point into the frame");
        }
    }
}

#[test]
fn rejects_other_versions() {
    let mut wire = Envelope::new(Channel::Raft, 1, &b"x"[..]).encode();
    wire[0] = ENVELOPE_VERSION + 1;
    let err = Envelope::decode(&Bytes::from(wire)).unwrap_err();
    assert!(
        matches!(err, Error::UnsupportedVersion { version, supported } if version == ENVELOPE_VERSION + 1 && supported == ENVELOPE_VERSION)
    );
}

#[test]
fn rejects_truncated_and_trailing_bytes() {
    let wire = Envelope::new(Channel::Gossip, 9, &b"hello"[..]).encode();
    for cut in 0..wire.len() {
        let err = Envelope::decode(&Bytes::copy_from_slice(&wire[..cut])).unwrap_err();
        assert!(
            matches!(err, Error::Malformed { .. }),
            "cut at {cut}: {err}"
        );
    }
    let mut longer = wire.clone();
    longer.push(0);
    assert!(matches!(
        Envelope::decode(&Bytes::from(longer)),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn garbage_never_panics() {
    let seed = 0x5eed_u64;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for _ in 0..5000 {
        let len = rng.random_range(0..64);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        if rng.random_bool(0.5) && !bytes.is_empty() {
            bytes[0] = ENVELOPE_VERSION;
        }
        // Either outcome is fine; only a panic would fail the test.
        let _ = Envelope::decode(&Bytes::from(bytes));
    }
}
