//! Jump hash laws.

use aegis_hash::JumpHash;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Growing by one bucket moves a key only into the new bucket; shrinking by one
    /// moves only the keys of the last bucket.
    #[test]
    fn append_and_remove_last_move_minimally(key in any::<u64>(), buckets in 1_u32..5000) {
        let before = JumpHash::bucket(key, buckets);
        let after = JumpHash::bucket(key, buckets + 1);
        prop_assert!(before < buckets);
        prop_assert!(after == before || after == buckets, "{before} -> {after}");
    }
}
