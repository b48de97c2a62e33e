use aegis_vclock::itc::ITC_DEPTH_MAX_LIMIT;
use aegis_vclock::{Error, ItcDecodeConfig, Ordering, Stamp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[test]
fn fork_event_join_follow_the_paper() {
    let seed = Stamp::seed();
    assert_eq!(seed.to_string(), "(1, 0)");
    let (mut a, b) = seed.fork();
    assert_eq!(a.to_string(), "((1, 0), 0)");
    assert_eq!(b.to_string(), "((0, 1), 0)");
    a.event().unwrap();
    assert_eq!(a.to_string(), "((1, 0), (0, 1, 0))");
    let (mut b1, mut b2) = b.fork();
    b1.event().unwrap();
    b2.event().unwrap();
    assert_eq!(b1.compare(&b2), Ordering::Concurrent);
    assert_eq!(a.compare(&b1), Ordering::Concurrent);
    let b = b1.join(&b2).unwrap();
    assert_eq!(b.to_string(), "((0, 1), (0, 0, 1))");
    let mut all = a.join(&b).unwrap();
    assert_eq!(all.to_string(), "(1, 1)");
    assert!(a.leq(&all) && b.leq(&all));
    all.event().unwrap();
    assert_eq!(all.to_string(), "(1, 2)");
    assert_eq!(a.compare(&all), Ordering::Before);
}

#[test]
fn peek_is_anonymous() {
    let mut s = Stamp::seed();
    s.event().unwrap();
    let mut p = s.peek();
    assert!(p.is_anonymous());
    assert_eq!(p.event(), Err(Error::AnonymousStamp));
    assert_eq!(p.compare(&s), Ordering::Equal);
    // Joining a peek back in changes nothing.
    assert_eq!(s.join(&p).unwrap(), s);
}

#[test]
fn overlapping_ids_are_rejected() {
    let s = Stamp::seed();
    assert_eq!(s.join(&s), Err(Error::OverlappingIds));
    let (a, _b) = s.fork();
    assert_eq!(a.join(&a), Err(Error::OverlappingIds));
}

#[test]
fn encoding_round_trips_and_is_compact() {
    let mut stamps = vec![Stamp::seed()];
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for _ in 0..200 {
        let i = rng.random_range(0..stamps.len());
        match rng.random_range(0..3) {
            0 => {
                let (a, b) = stamps.swap_remove(i).fork();
                stamps.push(a);
                stamps.push(b);
            }
            1 => stamps[i].event().unwrap(),
            _ if stamps.len() > 1 => {
                let a = stamps.swap_remove(i);
                let j = rng.random_range(0..stamps.len());
                let b = stamps.swap_remove(j);
                stamps.push(a.join(&b).unwrap());
            }
            _ => {}
        }
        for s in &stamps {
            let bytes = s.encode();
            assert_eq!(&Stamp::decode(&bytes).unwrap(), s);
        }
    }
    assert_eq!(Stamp::seed().encode(), vec![0b0100_0000]);
}

#[test]
fn decoder_rejects_bad_input() {
    let mut s = Stamp::seed();
    s.event().unwrap();
    let (mut a, _) = s.fork();
    a.event().unwrap();
    let bytes = a.encode();
    for cut in 0..bytes.len() {
        assert!(
            Stamp::decode(&bytes[..cut]).is_err(),
            "prefix of {cut} bytes decoded"
        );
    }
    let mut long = bytes.clone();
    long.push(0);
    assert_eq!(Stamp::decode(&long), Err(Error::TrailingBytes { bytes: 1 }));
    // Id (1, 1) is not normal: bits 1 01 01, event leaf 0: 0 0.
    assert_eq!(Stamp::decode(&[0b1010_1000]), Err(Error::NotNormalized));
    let small = ItcDecodeConfig {
        depth_max: 4,
        len_max: 16,
    };
    assert_eq!(
        Stamp::decode_with(&[0u8; 17], &small),
        Err(Error::TooLong {
            len: 17,
            len_max: 16
        })
    );
    assert!(matches!(
        Stamp::decode_with(
            &[0u8; 4],
            &ItcDecodeConfig {
                depth_max: 0,
                len_max: 8
            }
        ),
        Err(Error::InvalidConfig { .. })
    ));
}

#[test]
fn deep_nesting_is_bounded_not_a_stack_overflow() {
    // An id tree that only ever opens nodes: 1111... for a megabyte.
    let deep = vec![0xFFu8; 1 << 16];
    assert_eq!(
        Stamp::decode(&deep),
        Err(Error::DepthExceeded { depth_max: 128 })
    );
    let cfg = ItcDecodeConfig {
        depth_max: ITC_DEPTH_MAX_LIMIT,
        len_max: 1 << 20,
    };
    let deeper = vec![0xFFu8; 1 << 20];
    assert_eq!(
        Stamp::decode_with(&deeper, &cfg),
        Err(Error::DepthExceeded {
            depth_max: ITC_DEPTH_MAX_LIMIT
        })
    );
    let too_deep = ItcDecodeConfig {
        depth_max: ITC_DEPTH_MAX_LIMIT + 1,
        len_max: 8,
    };
    assert!(matches!(
        too_deep.validate(),
        Err(Error::InvalidConfig { .. })
    ));
}

#[test]
fn deepest_decodable_stamps_work_on_a_default_stack() {
    // Fork a chain as deep as the decoder allows, with an event at every level.
    let mut s = Stamp::seed();
    let mut others = Vec::new();
    for _ in 0..ITC_DEPTH_MAX_LIMIT - 1 {
        let (a, b) = s.fork();
        s = a;
        s.event().unwrap();
        others.push(b);
    }
    let cfg = ItcDecodeConfig {
        depth_max: ITC_DEPTH_MAX_LIMIT,
        len_max: 1 << 20,
    };
    let back = Stamp::decode_with(&s.encode(), &cfg).unwrap();
    assert_eq!(back, s);
    let mut t = back.clone();
    t.event().unwrap();
    assert!(s.leq(&t) && !t.leq(&s));
    let mut all = t.clone();
    while let Some(b) = others.pop() {
        all = all.join(&b).unwrap();
    }
    assert!(
        t.leq(&all) && all.leq(&t),
        "the forked-off halves saw nothing new"
    );
    // With the whole interval back, one event inflates the tree to its maximum: the
    // deepest branch saw one event per fork plus the one on `t`.
    all.event().unwrap();
    assert_eq!(all.to_string(), format!("(1, {})", ITC_DEPTH_MAX_LIMIT));
}

#[test]
fn random_garbage_never_panics() {
    let seed = 0x1dc;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut accepted = 0;
    for _ in 0..20_000 {
        let len = rng.random_range(0..24);
        let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        if let Ok(s) = Stamp::decode(&bytes) {
            accepted += 1;
            assert_eq!(s.encode(), bytes, "decoding is canonical (seed {seed})");
            // Operations on decoded stamps must not panic either.
            let mut t = s.clone();
            let _ = t.event();
            let _ = s.leq(&t);
            let _ = s.fork();
        }
    }
    assert!(accepted > 0, "some random inputs are valid stamps");
}

#[test]
fn huge_counters_error_instead_of_overflowing() {
    // Id 1 (01), leaf (0) holding u64::MAX.
    let mut w = Vec::new();
    let mut bits = String::from("01");
    bits.push('0');
    bits.push('1');
    let mut rest = u64::MAX - 1;
    loop {
        let group = rest & 0xF;
        rest >>= 4;
        bits.push(if rest != 0 { '1' } else { '0' });
        bits.push_str(&format!("{group:04b}"));
        if rest == 0 {
            break;
        }
    }
    while bits.len() % 8 != 0 {
        bits.push('0');
    }
    for chunk in bits.as_bytes().chunks(8) {
        w.push(u8::from_str_radix(std::str::from_utf8(chunk).unwrap(), 2).unwrap());
    }
    let mut s = Stamp::decode(&w).unwrap();
    assert_eq!(s.to_string(), format!("(1, {})", u64::MAX));
    assert_eq!(s.event(), Err(Error::CounterOverflow));
}
