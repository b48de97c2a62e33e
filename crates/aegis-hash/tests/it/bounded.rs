//! Bounded loads: the bound holds and balance improves over the plain ring.

use aegis_hash::{BoundedLoadConfig, BoundedLoadRing, Error};

use crate::support::key_hashes;

#[test]
fn no_node_exceeds_the_bound() {
    let config = BoundedLoadConfig {
        load_factor: 1.1,
        vnodes: 20,
    };
    let mut ring = BoundedLoadRing::<u64>::new(config).unwrap();
    for n in 0..10 {
        ring.add_node(n);
    }
    for (i, h) in key_hashes(10_000, 5).into_iter().enumerate() {
        let cap = ring.capacity();
        let node = *ring.assign_by_hash(h).unwrap();
        assert!(ring.loads().all(|(_, l)| l <= cap), "after key {i}");
        assert!(ring.loads().any(|(n, _)| *n == node));
    }
    assert_eq!(ring.total_load(), 10_000);
    // ceil(1.1 * 10_000 / 10) = 1100.
    let max = ring.loads().map(|(_, l)| l).max().unwrap();
    assert!(max <= 1100, "max load {max}");
    // With only 20 vnodes the plain ring is far more skewed.
    let mut plain = [0_u64; 10];
    for h in key_hashes(10_000, 5) {
        plain[*ring.ring().get_node_by_hash(h).unwrap() as usize] += 1;
    }
    assert!(*plain.iter().max().unwrap() > 1100, "{plain:?}");
}

#[test]
fn release_and_membership() {
    let mut ring = BoundedLoadRing::<String>::new(BoundedLoadConfig::default()).unwrap();
    assert!(ring.assign("k").is_none());
    ring.add_node("a".into());
    assert!(!ring.add_node("a".into()));
    let node = ring.assign("k").unwrap().clone();
    assert_eq!(ring.lookup("k"), Some(&node));
    ring.release(&node).unwrap();
    assert_eq!(
        ring.release(&node),
        Err(Error::LoadUnderflow {
            node: "\"a\"".into()
        })
    );
    assert!(matches!(
        ring.release(&"zz".to_string()),
        Err(Error::NodeUnknown { .. })
    ));
    ring.assign("k");
    ring.add_node("b".into());
    assert_eq!(ring.remove_node(&"a".to_string()), Some(1));
    assert_eq!(ring.total_load(), 0);
    for c in [0.99, f64::NAN] {
        let bad = BoundedLoadConfig {
            load_factor: c,
            ..BoundedLoadConfig::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(Error::LoadFactorInvalid { .. })
        ));
    }
}
