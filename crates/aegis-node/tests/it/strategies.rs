//! Proptest strategies for the command types, shared by the tests that generate logs.

use aegis_node::{ExpireCondition, Expiry, SetCondition};
use proptest::prelude::*;

pub fn set_condition() -> impl Strategy<Value = SetCondition> {
    prop_oneof![
        Just(SetCondition::Always),
        Just(SetCondition::IfAbsent),
        Just(SetCondition::IfPresent)
    ]
}

/// An expiry whose absolute times come from `at`.
pub fn expiry(at: impl Strategy<Value = u64>) -> impl Strategy<Value = Expiry> {
    prop_oneof![
        Just(Expiry::Clear),
        Just(Expiry::Keep),
        at.prop_map(Expiry::At),
    ]
}

pub fn expire_condition() -> impl Strategy<Value = ExpireCondition> {
    prop_oneof![
        Just(ExpireCondition::Always),
        Just(ExpireCondition::IfNone),
        Just(ExpireCondition::IfSome),
        Just(ExpireCondition::IfLater),
        Just(ExpireCondition::IfSooner),
        Just(ExpireCondition::IfSomeAndSooner),
    ]
}
