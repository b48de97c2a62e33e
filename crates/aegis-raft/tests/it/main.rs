//! Scenario tests for the Raft core: each test reads as a story of one rule.

mod async_writes;
mod chaos;
mod flow_control;
mod harness;
mod membership;
mod paper;
mod pre_vote;
mod quiesce;
mod reads;
mod restart;
mod snapshot;
mod transfer;
