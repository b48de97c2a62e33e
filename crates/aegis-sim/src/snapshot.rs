//! Snapshots and compaction in simulated runs: how often hosts snapshot their state
//! machine, and the snapshot's bytes.
//!
//! A snapshot holds the key-value registers and the fingerprints of the log it covers,
//! so that a node that installs one keeps a complete log view for the oracle's checks.

use aegis_raft::Config;
use bytes::Bytes;

use crate::kv::KvStore;
use crate::rng::SimRng;
use crate::view::LogView;

/// When a host snapshots its state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SnapshotPolicy {
    /// A host takes a snapshot once it applied this many entries past its last one.
    pub(crate) every: u64,
}

/// Draws whether the run snapshots, how often, and the snapshot-related limits of
/// `config` (small chunks and windows, short tails, so that lagging or restarted nodes
/// catch up by long, chunked streams).
pub(crate) fn draw(rng: &mut SimRng, config: &mut Config) -> Option<SnapshotPolicy> {
    if !rng.chance(750) {
        return None;
    }
    config.compaction_tail_entries = rng.range_inclusive(0, 8);
    config.snapshot_chunk_bytes_max = [512, 1024, 2048, 8192][rng.index(4)];
    config.snapshot_inflight_chunks_max = rng.range_inclusive(1, 4) as usize;
    Some(SnapshotPolicy {
        every: rng.range_inclusive(3, 40),
    })
}

fn put(out: &mut Vec<u8>, word: u64) {
    out.extend_from_slice(&word.to_le_bytes());
}

/// The bytes of a snapshot at `index`: the registers and the log's fingerprints.
pub(crate) fn encode(kv: &KvStore, view: &LogView, index: u64) -> Bytes {
    let registers: Vec<(u64, u64)> = kv.iter().collect();
    let mut out = Vec::with_capacity(16 + registers.len() * 16 + index as usize * 16);
    put(&mut out, registers.len() as u64);
    for (key, value) in registers {
        put(&mut out, key);
        put(&mut out, value);
    }
    put(&mut out, index);
    for i in 1..=index {
        let print = view
            .get(i)
            .expect("a snapshot covers only entries in the log");
        put(&mut out, print.term);
        put(&mut out, print.entry);
    }
    out.into()
}

/// Reads [`encode`]'s output back.
pub(crate) fn decode(data: &[u8]) -> Result<(KvStore, LogView, u64), String> {
    let mut words = data
        .chunks_exact(8)
        .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")));
    let bad = || "malformed snapshot".to_owned();
    if !data.len().is_multiple_of(8) {
        return Err(bad());
    }
    let registers = words.next().ok_or_else(bad)?;
    let mut values = Vec::new();
    for _ in 0..registers {
        values.push((words.next().ok_or_else(bad)?, words.next().ok_or_else(bad)?));
    }
    let index = words.next().ok_or_else(bad)?;
    let mut prints = Vec::new();
    for _ in 0..index {
        prints.push((words.next().ok_or_else(bad)?, words.next().ok_or_else(bad)?));
    }
    if words.next().is_some() {
        return Err(bad());
    }
    let mut view = LogView::default();
    if index > 0 {
        view.splice(1, prints);
    }
    Ok((KvStore::from_values(values), view, index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_round_trip() {
        let kv = KvStore::from_values([(1, 5), (3, 9)]);
        let mut view = LogView::default();
        view.splice(1, [(1, 10), (1, 11), (2, 12)]);
        let data = encode(&kv, &view, 2);
        let (kv2, view2, index) = decode(&data).unwrap();
        assert_eq!((kv2, index), (kv, 2));
        assert_eq!(view2.chain(2), view.chain(2));
        assert_eq!(view2.last_index(), 2);
        assert!(decode(&data[..data.len() - 8]).is_err());
    }
}
