//! Postcard encodings are part of the wire format: these vectors must never change.

use aegis_vclock::{
    CausalContext, Dot, DvvSet, Hlc, HlcConfig, HlcTimestamp, LwwStamp, Stamp, VectorClock,
    VersionVector,
};

fn enc<T: serde::Serialize>(v: &T) -> Vec<u8> {
    postcard::to_allocvec(v).unwrap()
}

fn dec<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(b)
}

#[test]
fn dot_vector() {
    let d = Dot::new(3, 300);
    assert_eq!(enc(&d), [0x03, 0xAC, 0x02]);
    assert_eq!(dec::<Dot>(&[0x03, 0xAC, 0x02]).unwrap(), d);
}

#[test]
fn vector_clock_vector() {
    let v: VectorClock = [(1, 2), (200, 1)].into_iter().collect();
    let bytes = [0x02, 0x01, 0x02, 0xC8, 0x01, 0x01];
    assert_eq!(enc(&v), bytes);
    assert_eq!(dec::<VectorClock>(&bytes).unwrap(), v);
    assert_eq!(enc(&VectorClock::new()), [0x00]);
    // Unsorted, duplicate and zero entries are rejected.
    assert!(dec::<VectorClock>(&[0x02, 0x05, 0x01, 0x04, 0x01]).is_err());
    assert!(dec::<VectorClock>(&[0x02, 0x05, 0x01, 0x05, 0x01]).is_err());
    assert!(dec::<VectorClock>(&[0x01, 0x05, 0x00]).is_err());
}

#[test]
fn causal_context_vector() {
    let cc: CausalContext = [Dot::new(1, 1), Dot::new(1, 2), Dot::new(2, 4)]
        .into_iter()
        .collect();
    let bytes = [0x01, 0x01, 0x02, 0x01, 0x02, 0x04];
    assert_eq!(enc(&cc), bytes);
    assert_eq!(dec::<CausalContext>(&bytes).unwrap(), cc);
    // A non-compact encoding decodes to the same (compacted) value.
    let loose = [0x01, 0x01, 0x01, 0x02, 0x01, 0x02, 0x02, 0x04];
    assert_eq!(dec::<CausalContext>(&loose).unwrap(), cc);
    assert!(dec::<CausalContext>(&[0x00, 0x01, 0x02, 0x00]).is_err());
}

#[test]
fn hlc_vectors() {
    let t = HlcTimestamp::new(1, 2).unwrap();
    assert_eq!(enc(&t), [0x82, 0x80, 0x04]);
    assert_eq!(dec::<HlcTimestamp>(&[0x82, 0x80, 0x04]).unwrap(), t);
    let mut clock = Hlc::with_last(HlcConfig { offset_ms_max: 3 }, t).unwrap();
    assert_eq!(enc(&clock), [0x03, 0x82, 0x80, 0x04]);
    assert_eq!(dec::<Hlc>(&[0x03, 0x82, 0x80, 0x04]).unwrap(), clock);
    assert!(
        dec::<Hlc>(&[0x00, 0x82, 0x80, 0x04]).is_err(),
        "offset 0 is rejected"
    );
    clock.now(0).unwrap();
    let s = LwwStamp::new(t, 7);
    assert_eq!(enc(&s), [0x82, 0x80, 0x04, 0x07]);
    assert_eq!(dec::<LwwStamp>(&[0x82, 0x80, 0x04, 0x07]).unwrap(), s);
}

#[test]
fn dvv_vector() {
    let mut d: DvvSet<u8> = DvvSet::empty();
    d.update(&VersionVector::new(), 9, 4);
    d.update(&VersionVector::new(), 8, 4);
    let bytes = [0x01, 0x04, 0x02, 0x02, 0x09, 0x08, 0x00];
    assert_eq!(enc(&d), bytes);
    assert_eq!(dec::<DvvSet<u8>>(&bytes).unwrap(), d);
    // More values than writes is rejected.
    assert!(dec::<DvvSet<u8>>(&[0x01, 0x04, 0x01, 0x02, 0x09, 0x08, 0x00]).is_err());
}

#[test]
fn itc_vectors() {
    let (mut a, _) = Stamp::seed().fork();
    a.event().unwrap();
    // id (1, 0) = 1 01 00; event (0, 1, 0) = 1 0 | 0 1 0 0000 | 0 0; zero padded.
    assert_eq!(a.encode(), [0b1010_0100, 0b1000_0000]);
    let bytes = enc(&a);
    assert_eq!(bytes, [0x02, 0b1010_0100, 0b1000_0000]);
    assert_eq!(dec::<Stamp>(&bytes).unwrap(), a);
    assert!(dec::<Stamp>(&[0x01, 0xFF]).is_err());
}

#[test]
fn truncations_and_garbage_are_errors() {
    let cc: CausalContext = [Dot::new(1, 1), Dot::new(2, 4)].into_iter().collect();
    let bytes = enc(&cc);
    for cut in 0..bytes.len() {
        assert!(dec::<CausalContext>(&bytes[..cut]).is_err());
    }
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..5_000 {
        let mut buf = [0u8; 12];
        for b in &mut buf {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let len = (x % 13) as usize;
        let _ = dec::<CausalContext>(&buf[..len]);
        let _ = dec::<VectorClock>(&buf[..len]);
        let _ = dec::<DvvSet<u16>>(&buf[..len]);
        let _ = dec::<Stamp>(&buf[..len]);
    }
}
