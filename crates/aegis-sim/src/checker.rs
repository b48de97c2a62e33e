//! A linearizability checker: Wing and Gong's search with Lowe's memoisation.
//!
//! A history is a list of operations, each with an invocation time and, if the client
//! saw one, a response time and output. The history is linearizable if there is a total
//! order of the operations that respects real time (an operation that returned before
//! another was invoked comes first) and in which every output is what a sequential
//! [`Model`] would produce.
//!
//! The search walks a doubly linked list of invocation and response events in time
//! order. At an invocation it tries to linearize that operation now (the model must
//! accept its output); at a response whose operation is not yet linearized it is stuck
//! and backtracks. Lowe's memo (a set of `(linearized operations, model state)` pairs
//! already explored) makes the search polynomial on the histories that occur in
//! practice.
//!
//! An operation whose outcome the client never learned (the node crashed, the request
//! timed out) is *indeterminate*: it may have taken effect at any time after its
//! invocation, or never. It is given a response at infinity and an unknown output that
//! the model accepts whatever the state; linearizing it after everything else is the
//! same as it never having happened.

use std::collections::HashSet;
use std::fmt::Debug;
use std::hash::Hash;

/// A sequential specification.
pub trait Model {
    /// The state of the object.
    type State: Clone + Eq + Hash + Debug;
    /// An operation's input.
    type Input: Debug;
    /// An operation's output.
    type Output: Debug;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// Applies `input` to `state`. Returns the new state if `output` is what the
    /// sequential object could answer, or `None` if it could not. An unknown `output`
    /// (`None`) must be accepted from every state.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State>;
}

/// One operation of a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation<I, O> {
    /// Which client issued it (for reports only).
    pub client: u64,
    /// What was asked.
    pub input: I,
    /// When it was invoked.
    pub call: u64,
    /// When it returned and what it returned, or `None` if the outcome is unknown.
    pub response: Option<(u64, O)>,
}

/// The checker's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A valid linearization exists.
    Linearizable,
    /// None exists.
    NotLinearizable {
        /// Index (into the checked slice) of the operation that could not be placed:
        /// the response the deepest search attempt got stuck at.
        stuck_at: usize,
        /// How many operations the deepest attempt had linearized.
        deepest: usize,
    },
    /// The search exceeded its step budget without a verdict.
    GaveUp {
        /// Steps taken.
        steps: u64,
    },
}

#[derive(Debug, Clone, Copy)]
struct Event {
    op: usize,
    is_call: bool,
    /// For a call: the list position of its response event.
    partner: usize,
}

/// A doubly linked list over event positions; position `len` is the head sentinel.
struct EventList {
    events: Vec<Event>,
    next: Vec<usize>,
    prev: Vec<usize>,
}

impl EventList {
    fn head(&self) -> usize {
        self.events.len()
    }

    fn first(&self) -> Option<usize> {
        let n = self.next[self.head()];
        (n != self.head()).then_some(n)
    }

    fn unlink(&mut self, at: usize) {
        let (p, n) = (self.prev[at], self.next[at]);
        self.next[p] = n;
        self.prev[n] = p;
    }

    fn relink(&mut self, at: usize) {
        let (p, n) = (self.prev[at], self.next[at]);
        self.next[p] = at;
        self.prev[n] = at;
    }

    /// Removes a call and its response (Lowe's "lift").
    fn lift(&mut self, call: usize) {
        let ret = self.events[call].partner;
        self.unlink(call);
        self.unlink(ret);
    }

    /// Undoes [`EventList::lift`]; must be called in reverse order of lifts.
    fn unlift(&mut self, call: usize) {
        let ret = self.events[call].partner;
        self.relink(ret);
        self.relink(call);
    }
}

fn build_events<I, O>(ops: &[Operation<I, O>]) -> EventList {
    // (time, tie-break, op, is_call): calls sort before responses at equal times so that
    // operations touching at one instant count as concurrent.
    let mut keyed: Vec<(u64, u8, usize, bool)> = Vec::with_capacity(ops.len() * 2);
    for (i, op) in ops.iter().enumerate() {
        keyed.push((op.call, 0, i, true));
        let ret = op.response.as_ref().map_or(u64::MAX, |(t, _)| *t);
        assert!(ret >= op.call, "operation {i} returns before it is invoked");
        keyed.push((ret, 1, i, false));
    }
    keyed.sort_unstable();
    let mut ret_pos = vec![usize::MAX; ops.len()];
    for (pos, &(_, _, op, is_call)) in keyed.iter().enumerate() {
        if !is_call {
            ret_pos[op] = pos;
        }
    }
    let events: Vec<Event> = keyed
        .iter()
        .map(|&(_, _, op, is_call)| Event {
            op,
            is_call,
            partner: if is_call { ret_pos[op] } else { usize::MAX },
        })
        .collect();
    let n = events.len();
    // Position n is the sentinel: next/prev form a ring through it.
    let next = (0..=n).map(|i| if i == n { 0 } else { i + 1 }).collect();
    let prev = (0..=n).map(|i| if i == 0 { n } else { i - 1 }).collect();
    let mut list = EventList { events, next, prev };
    if n == 0 {
        list.next[0] = 0;
        list.prev[0] = 0;
    }
    list
}

/// Checks one history against `model`, giving up after `steps_max` search steps.
pub fn check<M: Model>(
    model: &M,
    ops: &[Operation<M::Input, M::Output>],
    steps_max: u64,
) -> Verdict {
    let mut list = build_events(ops);
    let words = ops.len().div_ceil(64);
    let mut linearized = vec![0_u64; words];
    let mut count = 0_usize;
    let mut state = model.init();
    let mut stack: Vec<(usize, M::State)> = Vec::new();
    let mut memo: HashSet<(Vec<u64>, M::State)> = HashSet::new();
    let (mut deepest, mut stuck_at) = (0_usize, 0_usize);
    let mut steps = 0_u64;
    let mut cursor = list.first();
    while let Some(at) = cursor {
        steps += 1;
        if steps > steps_max {
            return Verdict::GaveUp { steps };
        }
        let event = list.events[at];
        if event.is_call {
            let op = &ops[event.op];
            let output = op.response.as_ref().map(|(_, o)| o);
            if let Some(next_state) = model.step(&state, &op.input, output) {
                linearized[event.op / 64] |= 1 << (event.op % 64);
                if memo.insert((linearized.clone(), next_state.clone())) {
                    stack.push((at, std::mem::replace(&mut state, next_state)));
                    count += 1;
                    list.lift(at);
                    cursor = list.first();
                    continue;
                }
                linearized[event.op / 64] &= !(1 << (event.op % 64));
            }
            cursor = Some(list.next[at]);
        } else {
            // A response whose operation is not linearized: every order tried from the
            // current prefix fails here. Undo the latest choice and try the next call.
            if count >= deepest {
                deepest = count;
                stuck_at = event.op;
            }
            let Some((call, previous)) = stack.pop() else {
                return Verdict::NotLinearizable { stuck_at, deepest };
            };
            let op = list.events[call].op;
            debug_assert!(linearized[op / 64] & (1 << (op % 64)) != 0);
            linearized[op / 64] &= !(1 << (op % 64));
            count -= 1;
            state = previous;
            list.unlift(call);
            cursor = Some(list.next[call]);
        }
        debug_assert!(
            cursor != Some(list.head()),
            "the list always ends in a response"
        );
    }
    assert_eq!(
        count,
        ops.len(),
        "an empty event list means everything is linearized"
    );
    Verdict::Linearizable
}

/// A register of `u64` values that starts empty, the per-key model of the simulated
/// key-value store.
#[derive(Debug, Clone, Copy, Default)]
pub struct RegisterModel;

/// An operation on one register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegisterInput {
    /// Read the value.
    Get,
    /// Overwrite the value.
    Put(u64),
    /// Replace the value with `new` if it is `expect`.
    Cas {
        /// The value required for the swap.
        expect: u64,
        /// The value stored on success.
        new: u64,
    },
}

/// What a register operation returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegisterOutput {
    /// The value read (`None`: never written).
    Value(Option<u64>),
    /// A put was applied.
    Written,
    /// Whether a compare-and-swap swapped.
    Swapped(bool),
}

impl Model for RegisterModel {
    type State = Option<u64>;
    type Input = RegisterInput;
    type Output = RegisterOutput;

    fn init(&self) -> Option<u64> {
        None
    }

    fn step(
        &self,
        state: &Option<u64>,
        input: &RegisterInput,
        output: Option<&RegisterOutput>,
    ) -> Option<Option<u64>> {
        match (input, output) {
            (RegisterInput::Get, None) => Some(*state),
            (RegisterInput::Get, Some(RegisterOutput::Value(v))) => (v == state).then_some(*state),
            (RegisterInput::Put(v), None | Some(RegisterOutput::Written)) => Some(Some(*v)),
            (RegisterInput::Cas { expect, new }, None) => Some(if *state == Some(*expect) {
                Some(*new)
            } else {
                *state
            }),
            (RegisterInput::Cas { expect, new }, Some(RegisterOutput::Swapped(swapped))) => {
                let matches = *state == Some(*expect);
                (matches == *swapped).then_some(if matches { Some(*new) } else { *state })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RegisterInput::{Cas, Get, Put};
    use super::RegisterOutput::{Swapped, Value, Written};
    use super::*;

    type Op = Operation<RegisterInput, RegisterOutput>;

    fn op(client: u64, input: RegisterInput, call: u64, ret: u64, out: RegisterOutput) -> Op {
        Operation {
            client,
            input,
            call,
            response: Some((ret, out)),
        }
    }

    fn unknown(client: u64, input: RegisterInput, call: u64) -> Op {
        Operation {
            client,
            input,
            call,
            response: None,
        }
    }

    fn verdict(ops: &[Op]) -> Verdict {
        check(&RegisterModel, ops, 1_000_000)
    }

    fn assert_linearizable(ops: &[Op]) {
        assert_eq!(verdict(ops), Verdict::Linearizable, "{ops:#?}");
    }

    fn assert_not_linearizable(ops: &[Op]) {
        assert!(
            matches!(verdict(ops), Verdict::NotLinearizable { .. }),
            "accepted a bad history: {ops:#?}"
        );
    }

    #[test]
    fn empty_and_sequential_histories() {
        assert_linearizable(&[]);
        assert_linearizable(&[
            op(0, Get, 0, 1, Value(None)),
            op(0, Put(1), 2, 3, Written),
            op(0, Get, 4, 5, Value(Some(1))),
            op(0, Cas { expect: 1, new: 2 }, 6, 7, Swapped(true)),
            op(0, Cas { expect: 1, new: 3 }, 8, 9, Swapped(false)),
            op(0, Get, 10, 11, Value(Some(2))),
        ]);
    }

    #[test]
    fn stale_read_after_completed_write_is_rejected() {
        assert_not_linearizable(&[op(0, Put(1), 0, 1, Written), op(1, Get, 2, 3, Value(None))]);
    }

    #[test]
    fn read_of_a_value_never_written_is_rejected() {
        assert_not_linearizable(&[op(0, Get, 0, 1, Value(Some(9)))]);
    }

    #[test]
    fn concurrent_reads_may_straddle_a_concurrent_write() {
        // The write overlaps both reads: the first sees the old value, the second the
        // new one.
        assert_linearizable(&[
            op(0, Put(1), 0, 10, Written),
            op(1, Get, 1, 2, Value(None)),
            op(2, Get, 3, 4, Value(Some(1))),
        ]);
    }

    #[test]
    fn new_then_old_read_across_real_time_is_rejected() {
        // Once a read returned the new value, a later read may not see the old one, even
        // though the write is still in flight (the classic linearizability vs.
        // sequential-consistency case).
        assert_not_linearizable(&[
            op(0, Put(1), 0, 10, Written),
            op(1, Get, 1, 2, Value(Some(1))),
            op(2, Get, 3, 4, Value(None)),
        ]);
    }

    #[test]
    fn two_successful_cas_from_the_same_value_is_rejected() {
        assert_not_linearizable(&[
            op(0, Put(0), 0, 1, Written),
            op(1, Cas { expect: 0, new: 1 }, 2, 5, Swapped(true)),
            op(2, Cas { expect: 0, new: 2 }, 3, 6, Swapped(true)),
        ]);
    }

    #[test]
    fn concurrent_cas_chain_in_a_non_obvious_order_is_accepted() {
        // Only the order 2 -> 3 -> 1 works, opposite to the invocation order.
        assert_linearizable(&[
            op(1, Cas { expect: 2, new: 3 }, 0, 10, Swapped(true)),
            op(2, Put(1), 1, 10, Written),
            op(3, Cas { expect: 1, new: 2 }, 2, 10, Swapped(true)),
            op(4, Get, 11, 12, Value(Some(3))),
        ]);
    }

    #[test]
    fn indeterminate_write_may_take_effect_late_or_never() {
        // Observed long after the crash that hid its outcome...
        assert_linearizable(&[
            unknown(0, Put(5), 0),
            op(1, Get, 10, 11, Value(None)),
            op(1, Get, 20, 21, Value(Some(5))),
        ]);
        // ...or never observed at all.
        assert_linearizable(&[unknown(0, Put(5), 0), op(1, Get, 10, 11, Value(None))]);
    }

    #[test]
    fn indeterminate_write_cannot_take_effect_before_its_invocation() {
        assert_not_linearizable(&[op(1, Get, 0, 1, Value(Some(5))), unknown(0, Put(5), 2)]);
    }

    #[test]
    fn indeterminate_write_takes_effect_at_most_once() {
        // 5 appears, is overwritten by 6, and cannot reappear.
        assert_not_linearizable(&[
            unknown(0, Put(5), 0),
            op(1, Get, 1, 2, Value(Some(5))),
            op(1, Put(6), 3, 4, Written),
            op(1, Get, 5, 6, Value(Some(5))),
        ]);
    }

    #[test]
    fn lost_acknowledged_write_is_rejected() {
        assert_not_linearizable(&[
            op(0, Put(1), 0, 1, Written),
            op(0, Put(2), 2, 3, Written),
            op(1, Get, 4, 5, Value(Some(1))),
        ]);
    }

    #[test]
    fn many_concurrent_writers_stay_tractable() {
        // 12 clients each write once, all concurrently, then reads pin the last writer;
        // the memo keeps this far below 12! orders.
        let mut ops: Vec<Op> = (0..12)
            .map(|c| op(c, Put(c), c, 100 + c, Written))
            .collect();
        ops.push(op(99, Get, 200, 201, Value(Some(7))));
        assert_linearizable(&ops);
        ops.push(op(99, Get, 202, 203, Value(Some(3))));
        assert_not_linearizable(&ops);
    }

    #[test]
    fn budget_is_reported_instead_of_running_forever() {
        let ops: Vec<Op> = (0..12)
            .map(|c| op(c, Put(c), c, 100 + c, Written))
            .collect();
        assert!(matches!(
            check(&RegisterModel, &ops, 3),
            Verdict::GaveUp { .. }
        ));
    }

    /// Exhaustive search over orders: the reference the fast checker must agree with.
    fn brute_force(ops: &[Op]) -> bool {
        fn go(ops: &[Op], done: &mut Vec<bool>, state: Option<u64>) -> bool {
            let remaining: Vec<usize> = (0..ops.len()).filter(|&i| !done[i]).collect();
            // Every completed operation placed: the indeterminate rest may never happen.
            if remaining.iter().all(|&i| ops[i].response.is_none()) {
                return true;
            }
            let horizon = remaining
                .iter()
                .filter_map(|&i| ops[i].response.as_ref().map(|(t, _)| *t))
                .min()
                .unwrap_or(u64::MAX);
            for &i in &remaining {
                // Only an operation invoked before every pending response may go next.
                if ops[i].call > horizon {
                    continue;
                }
                let output = ops[i].response.as_ref().map(|(_, o)| o);
                if let Some(next) = RegisterModel.step(&state, &ops[i].input, output) {
                    done[i] = true;
                    let ok = go(ops, done, next);
                    done[i] = false;
                    if ok {
                        return true;
                    }
                }
            }
            false
        }
        go(ops, &mut vec![false; ops.len()], None)
    }

    fn random_history(rng: &mut crate::rng::SimRng) -> Vec<Op> {
        let n = 1 + rng.index(6);
        (0..n)
            .map(|i| {
                let call = rng.below(12);
                let input = match rng.below(3) {
                    0 => Get,
                    1 => Put(rng.below(3)),
                    _ => Cas {
                        expect: rng.below(3),
                        new: rng.below(3),
                    },
                };
                let response = if rng.chance(150) {
                    None
                } else {
                    let output = match input {
                        Get => Value(if rng.chance(250) {
                            None
                        } else {
                            Some(rng.below(3))
                        }),
                        Put(_) => Written,
                        Cas { .. } => Swapped(rng.chance(500)),
                    };
                    Some((call + rng.below(6), output))
                };
                Operation {
                    client: i as u64,
                    input,
                    call,
                    response,
                }
            })
            .collect()
    }

    #[test]
    fn agrees_with_exhaustive_search_on_random_small_histories() {
        let mut rng = crate::rng::SimRng::new(0x5EED);
        let (mut yes, mut no) = (0, 0);
        for case in 0..3000 {
            let ops = random_history(&mut rng);
            let expected = brute_force(&ops);
            let got = verdict(&ops);
            assert_eq!(
                got == Verdict::Linearizable,
                expected,
                "case {case}: checker says {got:?}, exhaustive search {expected}: {ops:#?}"
            );
            if expected {
                yes += 1;
            } else {
                no += 1;
            }
        }
        assert!(
            yes > 300 && no > 300,
            "both outcomes exercised: {yes} yes, {no} no"
        );
    }
}
