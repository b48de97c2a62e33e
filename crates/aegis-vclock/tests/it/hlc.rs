use aegis_vclock::hlc::{LOGICAL_MAX, PHYSICAL_MS_MAX};
use aegis_vclock::{Error, Hlc, HlcConfig, HlcTimestamp, LwwStamp};

fn clock(offset_ms_max: u64) -> Hlc {
    Hlc::new(HlcConfig { offset_ms_max }).unwrap()
}

#[test]
fn layout_is_48_bit_physical_and_16_bit_logical() {
    let t = HlcTimestamp::new(0x1234_5678_9ABC, 0xDEF0).unwrap();
    assert_eq!(t.as_u64(), 0x1234_5678_9ABC_DEF0);
    assert_eq!(t.physical_ms(), 0x1234_5678_9ABC);
    assert_eq!(t.logical(), 0xDEF0);
    assert_eq!(HlcTimestamp::from_u64(t.as_u64()), t);
    assert_eq!(
        HlcTimestamp::new(PHYSICAL_MS_MAX + 1, 0),
        Err(Error::PhysicalTimeOutOfRange {
            physical_ms: PHYSICAL_MS_MAX + 1
        })
    );
    assert_eq!(
        HlcTimestamp::new(0, LOGICAL_MAX + 1),
        Err(Error::LogicalOutOfRange {
            logical: LOGICAL_MAX + 1
        })
    );
}

#[test]
fn now_follows_wall_clock_and_ticks_logically_when_it_stalls() {
    let mut c = clock(100);
    assert_eq!(c.now(1000).unwrap(), HlcTimestamp::new(1000, 0).unwrap());
    assert_eq!(c.now(1000).unwrap(), HlcTimestamp::new(1000, 1).unwrap());
    // The wall clock going backwards does not move the HLC backwards.
    assert_eq!(c.now(990).unwrap(), HlcTimestamp::new(1000, 2).unwrap());
    assert_eq!(c.now(1001).unwrap(), HlcTimestamp::new(1001, 0).unwrap());
}

#[test]
fn update_jumps_past_remote_and_rejects_far_future() {
    let mut c = clock(100);
    c.now(1000).unwrap();
    let remote = HlcTimestamp::new(1050, 7).unwrap();
    assert_eq!(
        c.update(remote, 1000).unwrap(),
        HlcTimestamp::new(1050, 8).unwrap()
    );
    let before = c.clone();
    let far = HlcTimestamp::new(1200, 0).unwrap();
    assert_eq!(
        c.update(far, 1050),
        Err(Error::RemoteTooFarAhead {
            remote_ms: 1200,
            local_ms: 1050,
            offset_ms_max: 100
        })
    );
    assert_eq!(c, before, "a rejected update leaves the clock unchanged");
    // A remote in the past still ticks the clock.
    let t = c.update(HlcTimestamp::new(10, 0).unwrap(), 1000).unwrap();
    assert_eq!(t, HlcTimestamp::new(1050, 9).unwrap());
}

#[test]
fn logical_overflow_moves_to_next_millisecond() {
    let mut c = Hlc::with_last(
        HlcConfig::default(),
        HlcTimestamp::new(500, LOGICAL_MAX - 1).unwrap(),
    )
    .unwrap();
    assert_eq!(
        c.now(500).unwrap(),
        HlcTimestamp::new(500, LOGICAL_MAX).unwrap()
    );
    assert_eq!(c.now(500).unwrap(), HlcTimestamp::new(501, 0).unwrap());
    assert_eq!(c.now(500).unwrap(), HlcTimestamp::new(501, 1).unwrap());
    // Wall clock catches up.
    assert_eq!(c.now(502).unwrap(), HlcTimestamp::new(502, 0).unwrap());
    let mut end = Hlc::with_last(HlcConfig::default(), HlcTimestamp::from_u64(u64::MAX)).unwrap();
    assert_eq!(end.now(5), Err(Error::ClockExhausted));
}

#[test]
fn config_is_validated() {
    assert!(matches!(
        Hlc::new(HlcConfig { offset_ms_max: 0 }),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(HlcConfig::default().validate().is_ok());
}

#[test]
fn lww_stamp_breaks_ties_by_node() {
    let t = HlcTimestamp::new(7, 1).unwrap();
    let later = HlcTimestamp::new(7, 2).unwrap();
    assert!(LwwStamp::new(t, 1) < LwwStamp::new(t, 2));
    assert!(LwwStamp::new(t, 9) < LwwStamp::new(later, 1));
}
