//! Integration tests of aegis-crdt: algebraic laws, delta equivalence, convergence over
//! a lossy network against sequential specifications, encoding, and state size.

mod anti_entropy;
mod codec;
mod convergence;
mod delta;
mod differential;
mod laws;
mod model;
mod semantics;
mod sim;
mod tombstones;

/// Instantiates a test function body for every model as one test per type.
macro_rules! for_each_model {
    ($check:ident) => {
        #[test]
        fn gcounter() {
            $check::<crate::model::GCounterModel>();
        }
        #[test]
        fn pncounter() {
            $check::<crate::model::PNCounterModel>();
        }
        #[test]
        fn gset() {
            $check::<crate::model::GSetModel>();
        }
        #[test]
        fn orset() {
            $check::<crate::model::ORSetModel>();
        }
        #[test]
        fn rwset() {
            $check::<crate::model::RWSetModel>();
        }
        #[test]
        fn ewflag() {
            $check::<crate::model::EWFlagModel>();
        }
        #[test]
        fn dwflag() {
            $check::<crate::model::DWFlagModel>();
        }
        #[test]
        fn mvregister() {
            $check::<crate::model::MVRegisterModel>();
        }
        #[test]
        fn lwwregister() {
            $check::<crate::model::LWWModel>();
        }
        #[test]
        fn ormap() {
            $check::<crate::model::ORMapModel>();
        }
    };
}
pub(crate) use for_each_model;
