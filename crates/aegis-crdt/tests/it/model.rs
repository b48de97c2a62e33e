//! One model per CRDT type: how to make a replica, generate and apply a random
//! operation, observe a state, and the sequential specification the observation must
//! match given every operation and what its replica had seen when it ran.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use aegis_crdt::{
    Crdt, DWFlag, EWFlag, GCounter, GSet, LWWRegister, MVRegister, NodeId, ORMap, ORSet, PNCounter,
    RWSet,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// One operation as it ran: which replica, and the ids of the operations it had seen.
#[derive(Debug, Clone)]
pub struct Record<O> {
    pub op: O,
    pub node: NodeId,
    pub known: BTreeSet<usize>,
}

pub trait Model {
    type State: Crdt + Debug + aegis_crdt::codec::Encodable;
    type Op: Debug + Clone;
    type Obs: Debug + PartialEq;

    fn new(node: NodeId) -> Self::State;
    fn random_op(rng: &mut ChaCha8Rng) -> Self::Op;
    /// Applies `op`, returning its delta.
    fn apply(state: &mut Self::State, op: &Self::Op) -> Self::State;
    fn observe(state: &Self::State) -> Self::Obs;
    fn spec(log: &[Record<Self::Op>]) -> Self::Obs;
}

/// The ids of the operations accepted by `on`, that no other operation accepted by `on`
/// has seen: what survives of a key under observed-remove semantics.
fn maximal<O>(log: &[Record<O>], on: impl Fn(&O) -> bool) -> Vec<usize> {
    let ids: Vec<usize> = (0..log.len()).filter(|&i| on(&log[i].op)).collect();
    ids.iter()
        .copied()
        .filter(|&i| !ids.iter().any(|&j| log[j].known.contains(&i)))
        .collect()
}

pub struct GCounterModel;
impl Model for GCounterModel {
    type State = GCounter;
    type Op = u64;
    type Obs = u64;
    fn new(node: NodeId) -> GCounter {
        GCounter::new(node)
    }
    fn random_op(rng: &mut ChaCha8Rng) -> u64 {
        rng.random_range(0..10)
    }
    fn apply(s: &mut GCounter, op: &u64) -> GCounter {
        s.increment(*op)
    }
    fn observe(s: &GCounter) -> u64 {
        s.value()
    }
    fn spec(log: &[Record<u64>]) -> u64 {
        log.iter().map(|r| r.op).sum()
    }
}

pub struct PNCounterModel;
impl Model for PNCounterModel {
    type State = PNCounter;
    type Op = i64;
    type Obs = i128;
    fn new(node: NodeId) -> PNCounter {
        PNCounter::new(node)
    }
    fn random_op(rng: &mut ChaCha8Rng) -> i64 {
        rng.random_range(-10..10)
    }
    fn apply(s: &mut PNCounter, op: &i64) -> PNCounter {
        if *op >= 0 {
            s.increment(op.unsigned_abs())
        } else {
            s.decrement(op.unsigned_abs())
        }
    }
    fn observe(s: &PNCounter) -> i128 {
        s.value()
    }
    fn spec(log: &[Record<i64>]) -> i128 {
        log.iter().map(|r| i128::from(r.op)).sum()
    }
}

pub struct GSetModel;
impl Model for GSetModel {
    type State = GSet<u8>;
    type Op = u8;
    type Obs = Vec<u8>;
    fn new(_: NodeId) -> GSet<u8> {
        GSet::new()
    }
    fn random_op(rng: &mut ChaCha8Rng) -> u8 {
        rng.random_range(0..16)
    }
    fn apply(s: &mut GSet<u8>, op: &u8) -> GSet<u8> {
        s.insert(*op)
    }
    fn observe(s: &GSet<u8>) -> Vec<u8> {
        s.iter().copied().collect()
    }
    fn spec(log: &[Record<u8>]) -> Vec<u8> {
        log.iter()
            .map(|r| r.op)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }
}

/// Add (`true`) or remove (`false`) of a small element.
pub type SetOp = (bool, u8);

fn random_set_op(rng: &mut ChaCha8Rng) -> SetOp {
    (rng.random_bool(0.6), rng.random_range(0..6))
}

pub struct ORSetModel;
impl Model for ORSetModel {
    type State = ORSet<u8>;
    type Op = SetOp;
    type Obs = Vec<u8>;
    fn new(node: NodeId) -> ORSet<u8> {
        ORSet::new(node)
    }
    fn random_op(rng: &mut ChaCha8Rng) -> SetOp {
        random_set_op(rng)
    }
    fn apply(s: &mut ORSet<u8>, op: &SetOp) -> ORSet<u8> {
        if op.0 { s.add(op.1) } else { s.remove(&op.1) }
    }
    fn observe(s: &ORSet<u8>) -> Vec<u8> {
        s.iter().copied().collect()
    }
    fn spec(log: &[Record<SetOp>]) -> Vec<u8> {
        // Add wins: present when some add is not seen by a later op on the element.
        (0..6)
            .filter(|&e| maximal(log, |o| o.1 == e).iter().any(|&i| log[i].op.0))
            .collect()
    }
}

pub struct RWSetModel;
impl Model for RWSetModel {
    type State = RWSet<u8>;
    type Op = SetOp;
    type Obs = Vec<u8>;
    fn new(node: NodeId) -> RWSet<u8> {
        RWSet::new(node)
    }
    fn random_op(rng: &mut ChaCha8Rng) -> SetOp {
        random_set_op(rng)
    }
    fn apply(s: &mut RWSet<u8>, op: &SetOp) -> RWSet<u8> {
        if op.0 { s.add(op.1) } else { s.remove(&op.1) }
    }
    fn observe(s: &RWSet<u8>) -> Vec<u8> {
        s.iter().copied().collect()
    }
    fn spec(log: &[Record<SetOp>]) -> Vec<u8> {
        // Remove wins: present when the latest ops on the element are all adds.
        (0..6)
            .filter(|&e| {
                let top = maximal(log, |o| o.1 == e);
                !top.is_empty() && top.iter().all(|&i| log[i].op.0)
            })
            .collect()
    }
}

pub struct EWFlagModel;
impl Model for EWFlagModel {
    type State = EWFlag;
    type Op = bool;
    type Obs = bool;
    fn new(node: NodeId) -> EWFlag {
        EWFlag::new(node)
    }
    fn random_op(rng: &mut ChaCha8Rng) -> bool {
        rng.random_bool(0.5)
    }
    fn apply(s: &mut EWFlag, op: &bool) -> EWFlag {
        if *op { s.enable() } else { s.disable() }
    }
    fn observe(s: &EWFlag) -> bool {
        s.read()
    }
    fn spec(log: &[Record<bool>]) -> bool {
        maximal(log, |_| true).iter().any(|&i| log[i].op)
    }
}

pub struct DWFlagModel;
impl Model for DWFlagModel {
    type State = DWFlag;
    type Op = bool;
    type Obs = bool;
    fn new(node: NodeId) -> DWFlag {
        DWFlag::new(node)
    }
    fn random_op(rng: &mut ChaCha8Rng) -> bool {
        rng.random_bool(0.5)
    }
    fn apply(s: &mut DWFlag, op: &bool) -> DWFlag {
        if *op { s.enable() } else { s.disable() }
    }
    fn observe(s: &DWFlag) -> bool {
        s.read()
    }
    fn spec(log: &[Record<bool>]) -> bool {
        maximal(log, |_| true).iter().all(|&i| log[i].op)
    }
}

pub struct MVRegisterModel;
impl Model for MVRegisterModel {
    type State = MVRegister<u8>;
    type Op = Option<u8>;
    type Obs = Vec<u8>;
    fn new(node: NodeId) -> MVRegister<u8> {
        MVRegister::new(node)
    }
    fn random_op(rng: &mut ChaCha8Rng) -> Option<u8> {
        rng.random_bool(0.85).then(|| rng.random_range(0..50))
    }
    fn apply(s: &mut MVRegister<u8>, op: &Option<u8>) -> MVRegister<u8> {
        match op {
            Some(v) => s.write(*v),
            None => s.clear(),
        }
    }
    fn observe(s: &MVRegister<u8>) -> Vec<u8> {
        let mut v: Vec<u8> = s.read().into_iter().copied().collect();
        v.sort_unstable();
        v
    }
    fn spec(log: &[Record<Option<u8>>]) -> Vec<u8> {
        let mut v: Vec<u8> = maximal(log, |_| true)
            .iter()
            .filter_map(|&i| log[i].op)
            .collect();
        v.sort_unstable();
        v
    }
}

pub struct LWWModel;
impl Model for LWWModel {
    type State = LWWRegister<u8>;
    /// `(value, timestamp)`; timestamps collide often to exercise the tie-break.
    type Op = (u8, u64);
    type Obs = Option<u8>;
    fn new(node: NodeId) -> LWWRegister<u8> {
        LWWRegister::with_node(node)
    }
    fn random_op(rng: &mut ChaCha8Rng) -> (u8, u64) {
        (rng.random_range(0..50), rng.random_range(0..8))
    }
    fn apply(s: &mut LWWRegister<u8>, op: &(u8, u64)) -> LWWRegister<u8> {
        s.set(op.0, op.1)
    }
    fn observe(s: &LWWRegister<u8>) -> Option<u8> {
        s.get().copied()
    }
    fn spec(log: &[Record<(u8, u64)>]) -> Option<u8> {
        // Greatest (timestamp, writer, value) wins.
        log.iter()
            .map(|r| (r.op.1, r.node, r.op.0))
            .max()
            .map(|(_, _, v)| v)
    }
}

/// Map ops: write a value under a key, or remove the key.
pub type MapOp = (u8, Option<u8>);

pub struct ORMapModel;
impl Model for ORMapModel {
    type State = ORMap<u8, MVRegister<u8>>;
    type Op = MapOp;
    type Obs = BTreeMap<u8, Vec<u8>>;
    fn new(node: NodeId) -> Self::State {
        ORMap::new(node)
    }
    fn random_op(rng: &mut ChaCha8Rng) -> MapOp {
        let key = rng.random_range(0..4);
        (key, rng.random_bool(0.7).then(|| rng.random_range(0..20)))
    }
    fn apply(s: &mut Self::State, op: &MapOp) -> Self::State {
        match op.1 {
            Some(v) => s.update(op.0, |reg| reg.write(v)),
            None => s.remove(&op.0),
        }
    }
    fn observe(s: &Self::State) -> BTreeMap<u8, Vec<u8>> {
        s.keys()
            .map(|k| {
                let reg = s.get(k).expect("listed key");
                let mut v: Vec<u8> = reg.read().into_iter().copied().collect();
                v.sort_unstable();
                (*k, v)
            })
            .collect()
    }
    fn spec(log: &[Record<MapOp>]) -> BTreeMap<u8, Vec<u8>> {
        let mut out = BTreeMap::new();
        for k in 0..4 {
            let mut v: Vec<u8> = maximal(log, |o| o.0 == k)
                .iter()
                .filter_map(|&i| log[i].op.1)
                .collect();
            v.sort_unstable();
            if !v.is_empty() {
                out.insert(k, v);
            }
        }
        out
    }
}
