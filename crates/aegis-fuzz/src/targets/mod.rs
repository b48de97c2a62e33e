//! The fuzz targets: every decoder of untrusted bytes in the workspace.

mod crdt;
mod log;
mod node;
mod raft;
mod wire;

use crate::engine::Target;

/// Every target, in the order a full run takes them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "envelope",
        about: "aegis_transport::Envelope::decode, with a round trip",
        iterations_divisor: 1,
        seeds: wire::envelope_seeds,
        fixup: None,
        run: wire::envelope_run,
    },
    Target {
        name: "quic-wire",
        about: "QUIC stream bytes through FrameSplitter, then every frame parser",
        iterations_divisor: 1,
        seeds: wire::quic_seeds,
        fixup: None,
        run: wire::quic_run,
    },
    Target {
        name: "raft-message",
        about: "aegis_raft::Message::decode, with a round trip",
        iterations_divisor: 1,
        seeds: raft::message_seeds,
        fixup: None,
        run: raft::message_run,
    },
    Target {
        name: "conf-change",
        about: "aegis_raft::ConfChangeRecord::decode, with a round trip",
        iterations_divisor: 1,
        seeds: raft::conf_change_seeds,
        fixup: None,
        run: raft::conf_change_run,
    },
    Target {
        name: "node-command",
        about: "aegis_node::Command::decode and LogEntry::decode, with round trips",
        iterations_divisor: 1,
        seeds: node::command_seeds,
        fixup: None,
        run: node::command_run,
    },
    Target {
        name: "node-snapshot",
        about: "KvApplier::restore of a snapshot into a fresh in-memory store (slow: 1/20 of the budget)",
        iterations_divisor: 20,
        seeds: node::snapshot_seeds,
        fixup: Some(node::snapshot_fixup),
        run: node::snapshot_run,
    },
    Target {
        name: "node-hll",
        about: "aegis_node::hll count, merge and add on a value a client may have written",
        iterations_divisor: 1,
        seeds: node::hll_seeds,
        fixup: None,
        run: node::hll_run,
    },
    Target {
        name: "resp",
        about: "aegis_node::resp::next_request until the buffer is used up",
        iterations_divisor: 1,
        seeds: node::resp_seeds,
        fixup: None,
        run: node::resp_run,
    },
    Target {
        name: "log-format",
        about: "aegis_log::format segment headers, frames, records and group state",
        iterations_divisor: 1,
        seeds: log::seeds,
        fixup: Some(log::fixup),
        run: log::run,
    },
    Target {
        name: "crdt",
        about: "aegis_crdt::codec::decode as five CRDT types, with round trips",
        iterations_divisor: 1,
        seeds: crdt::crdt_seeds,
        fixup: None,
        run: crdt::crdt_run,
    },
    Target {
        name: "itc",
        about: "aegis_vclock::Stamp::decode (interval tree clocks), with a round trip",
        iterations_divisor: 1,
        seeds: crdt::itc_seeds,
        fixup: None,
        run: crdt::itc_run,
    },
];

/// The target called `name`.
#[must_use]
pub fn find(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}
