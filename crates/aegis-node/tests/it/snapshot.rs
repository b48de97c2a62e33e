//! Snapshots: round trip through bounded chunks, atomic restore, garbage rejection.

use aegis_node::snapshot::{SNAPSHOT_MAGIC, SNAPSHOT_VERSION};
use aegis_node::{
    Command, HashRead, KvStateMachine, NewId, Output, SetCondition, SetRead, StoreError,
    StreamEntry, StreamId, StreamRead, Trim, TrimBy, ValueKind,
};
use proptest::prelude::*;

use crate::support::hset;

/// A store with `n` keys of varied sizes, some expiring, at applied index `n`.
fn populated(n: u64) -> KvStateMachine {
    let store = KvStateMachine::in_memory().unwrap();
    for i in 0..n {
        let command = Command::Set {
            key: format!("key:{i:05}").into_bytes(),
            value: vec![b'v'; (i as usize * 37) % 700],
            expire_at_ms: (i % 3 == 0).then_some(1_000 + i),
            condition: SetCondition::Always,
        };
        assert_eq!(store.apply(i + 1, &command, 0).unwrap(), Output::Ok);
    }
    store
}

fn chunks_of(store: &KvStateMachine, chunk_bytes: usize) -> Vec<Vec<u8>> {
    store
        .snapshot(chunk_bytes)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn dump(store: &KvStateMachine) -> Vec<Vec<u8>> {
    chunks_of(store, 1 << 20)
}

#[test]
fn round_trip_through_many_bounded_chunks() {
    let source = populated(300);
    let stream = source.snapshot(4096).unwrap();
    assert_eq!(stream.applied_index(), 300);
    assert_eq!(stream.entry_count(), 300);
    let chunks: Vec<Vec<u8>> = stream.collect::<Result<_, _>>().unwrap();
    assert!(
        chunks.len() > 10,
        "expected many chunks, got {}",
        chunks.len()
    );
    for chunk in &chunks {
        assert_eq!(chunk[..4], SNAPSHOT_MAGIC);
        assert_eq!(chunk[4], SNAPSHOT_VERSION);
        // Payload bound plus the fixed frame (18 bytes).
        assert!(chunk.len() <= 4096 + 18, "chunk of {} bytes", chunk.len());
    }

    // The target holds unrelated data that must disappear.
    let target = KvStateMachine::in_memory().unwrap();
    let other = Command::Set {
        key: b"zzz-not-in-snapshot".to_vec(),
        value: b"x".to_vec(),
        expire_at_ms: Some(5),
        condition: SetCondition::Always,
    };
    target.apply(9_999, &other, 0).unwrap();
    let summary = target.restore(&chunks).unwrap();
    assert_eq!(summary.applied_index, 300);
    assert_eq!(summary.entries, 300);
    assert_eq!(target.applied_index(), 300);
    assert_eq!(dump(&target), dump(&source));
    assert_eq!(target.get(b"zzz-not-in-snapshot", 0).unwrap(), None);
    // The expiry index came along: the earliest expiry is key 0's.
    assert_eq!(target.next_expiry_ms().unwrap(), Some(1_000));
    let purge = Command::PurgeExpired { batch_max: 1_000 };
    assert_eq!(
        target.apply(301, &purge, u64::MAX).unwrap(),
        Output::Count(100)
    );
}

#[test]
fn a_restore_into_a_file_survives_reopen() {
    let chunks = chunks_of(&populated(50), 4096);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    {
        let store = KvStateMachine::open(&path, aegis_node::StoreOptions::default()).unwrap();
        store
            .apply(
                1,
                &Command::Del {
                    keys: vec![b"x".to_vec()],
                },
                0,
            )
            .unwrap();
        store.restore(&chunks).unwrap();
    }
    let store = KvStateMachine::open(&path, aegis_node::StoreOptions::default()).unwrap();
    assert_eq!(store.applied_index(), 50);
    assert_eq!(chunks_of(&store, 4096), chunks);
}

#[test]
fn an_entry_larger_than_the_chunk_size_travels_alone() {
    let source = KvStateMachine::in_memory().unwrap();
    for (i, size) in [10_usize, 20_000, 10].iter().enumerate() {
        let command = Command::Set {
            key: vec![b'a' + i as u8],
            value: vec![7; *size],
            expire_at_ms: None,
            condition: SetCondition::Always,
        };
        source.apply(i as u64 + 1, &command, 0).unwrap();
    }
    let chunks = chunks_of(&source, 4096);
    // header, [a], [b alone], [c], footer
    assert_eq!(chunks.len(), 5);
    let target = KvStateMachine::in_memory().unwrap();
    target.restore(&chunks).unwrap();
    assert!(dump(&target) == dump(&source), "the restored store differs");
}

#[test]
fn empty_store_round_trips() {
    let source = KvStateMachine::in_memory().unwrap();
    let chunks = chunks_of(&source, 4096);
    assert_eq!(chunks.len(), 2, "header and footer");
    let target = populated(5);
    let summary = target.restore(&chunks).unwrap();
    assert_eq!((summary.applied_index, summary.entries), (0, 0));
    assert_eq!(target.key_count().unwrap(), 0);
}

/// Restoring `chunks` into a populated store must fail and leave it untouched.
#[track_caller]
fn assert_rejected(chunks: &[Vec<u8>]) -> StoreError {
    let target = populated(7);
    let before = dump(&target);
    let error = target
        .restore(chunks)
        .expect_err("a damaged snapshot must be rejected");
    assert_eq!(dump(&target), before, "a failed restore changed the state");
    assert_eq!(target.applied_index(), 7);
    error
}

#[test]
fn damaged_streams_are_rejected_atomically() {
    let chunks = chunks_of(&populated(60), 2048);
    assert!(chunks.len() >= 5);
    let last = chunks.len() - 1;

    assert!(matches!(
        assert_rejected(&[]),
        StoreError::SnapshotIncomplete { chunks: 0 }
    ));
    // Truncated: no footer.
    assert!(matches!(
        assert_rejected(&chunks[..last]),
        StoreError::SnapshotIncomplete { .. }
    ));
    // A missing middle chunk, a repeated chunk, two chunks swapped, a chunk after the footer.
    let mut missing = chunks.clone();
    missing.remove(2);
    let mut repeated = chunks.clone();
    repeated.insert(2, chunks[2].clone());
    let mut swapped = chunks.clone();
    swapped.swap(1, 2);
    let mut extra = chunks.clone();
    extra.push(chunks[1].clone());
    for damaged in [missing, repeated, swapped, extra] {
        assert!(matches!(
            assert_rejected(&damaged),
            StoreError::SnapshotCorrupt { .. }
        ));
    }
    // No header at all.
    assert!(matches!(
        assert_rejected(&chunks[1..]),
        StoreError::SnapshotCorrupt { chunk: 0, .. }
    ));
}

#[test]
fn every_flipped_bit_in_a_chunk_is_caught() {
    let chunks = chunks_of(&populated(4), 4096);
    for which in 0..chunks.len() {
        for byte in 0..chunks[which].len() {
            let mut damaged = chunks.clone();
            damaged[which][byte] ^= 0x10;
            let target = KvStateMachine::in_memory().unwrap();
            assert!(
                target.restore(&damaged).is_err(),
                "flip in chunk {which} byte {byte} went unnoticed"
            );
            assert_eq!(target.key_count().unwrap(), 0);
        }
    }
}

#[test]
fn a_future_format_version_is_named() {
    let mut chunks = chunks_of(&populated(2), 4096);
    chunks[0][4] = SNAPSHOT_VERSION + 1;
    // Re-seal the checksum so that only the version is wrong.
    let body = chunks[0].len() - 4;
    let crc = crc32c(&chunks[0][..body]);
    chunks[0][body..].copy_from_slice(&crc.to_le_bytes());
    assert!(matches!(
        assert_rejected(&chunks),
        StoreError::SnapshotVersion { found, expected } if found == SNAPSHOT_VERSION + 1 && expected == SNAPSHOT_VERSION
    ));
}

/// CRC-32C (Castagnoli), bit by bit: an independent check of the format's checksum.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0_u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary chunk streams never panic the decoder and never change the state.
    #[test]
    fn garbage_chunks_never_panic(chunks in proptest::collection::vec(
        proptest::collection::vec(any::<u8>(), 0..200), 0..6)
    ) {
        let target = KvStateMachine::in_memory().unwrap();
        prop_assert!(target.restore(&chunks).is_err());
        prop_assert_eq!(target.key_count().unwrap(), 0);
    }

    /// A valid stream with one chunk's payload replaced by garbage (checksum re-sealed,
    /// so the payload parser itself is exercised) is rejected or, if the garbage happens
    /// to parse, restores without panicking.
    #[test]
    fn resealed_garbage_payloads_never_panic(
        which in 0_usize..3,
        payload in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        let mut chunks = chunks_of(&populated(3), 4096);
        let chunk = &mut chunks[which];
        chunk.truncate(14);
        chunk[10..14].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        chunk.extend_from_slice(&payload);
        let crc = crc32c(chunk);
        chunk.extend_from_slice(&crc.to_le_bytes());
        let target = KvStateMachine::in_memory().unwrap();
        let _ = target.restore(&chunks);
    }
}

#[test]
fn the_raft_applier_snapshots_and_restores_the_whole_store() {
    use aegis_cluster::runtime::StateMachine;
    use aegis_node::KvApplier;
    use aegis_raft::LogIndex;
    use std::sync::Arc;

    let source = Arc::new(populated(120));
    let mut applier = KvApplier::new(Arc::clone(&source)).with_snapshot_chunk_bytes(4096);
    assert_eq!(applier.applied_index(), LogIndex(120));
    let bytes = applier.snapshot().expect("the store snapshots");
    let chunks = chunks_of(&source, 4096);
    assert!(chunks.len() > 1);
    assert!(bytes == chunks.concat(), "the chunks laid end to end");

    let target = Arc::new(KvStateMachine::in_memory().unwrap());
    let mut restored = KvApplier::new(Arc::clone(&target));
    // A torn or mislabelled snapshot changes nothing.
    let torn = restored.restore(LogIndex(120), &bytes[..bytes.len() - 3]);
    assert!(torn.is_err());
    assert!(restored.restore(LogIndex(121), &bytes).is_err());
    assert_eq!(restored.applied_index(), LogIndex(0));

    restored.restore(LogIndex(120), &bytes).unwrap();
    assert_eq!(restored.applied_index(), LogIndex(120));
    assert!(dump(&target) == dump(&source), "the restored store differs");
}

#[test]
fn the_raft_applier_carries_the_address_book_in_its_snapshots() {
    use aegis_cluster::runtime::StateMachine;
    use aegis_node::{AddressBook, KvApplier};
    use aegis_raft::LogIndex;
    use std::net::SocketAddr;
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let ignore = || -> Arc<dyn Fn(u64, SocketAddr) + Send + Sync> { Arc::new(|_, _| {}) };
    let at = |port: u16| -> SocketAddr { format!("127.0.0.1:{port}").parse().unwrap() };
    // Node 1 knows nodes 2 and 4; it listens at 7001 itself.
    let book = AddressBook::open(
        dir.path().join("one"),
        &[(2, at(7002)), (4, at(7004))],
        ignore(),
    )
    .unwrap()
    .with_own(1, at(7001));
    let source = Arc::new(populated(40));
    let mut applier = KvApplier::new(Arc::clone(&source)).with_address_book(Arc::new(book));
    let bytes = applier.snapshot().expect("the store snapshots");

    // Node 2, which knew only node 1 (at an old address), learns from the snapshot where
    // nodes 1 and 4 are, and leaves itself out.
    let book = Arc::new(
        AddressBook::open(dir.path().join("two"), &[(1, at(6001))], ignore())
            .unwrap()
            .with_own(2, at(7002)),
    );
    let target = Arc::new(KvStateMachine::in_memory().unwrap());
    let mut restored = KvApplier::new(Arc::clone(&target)).with_address_book(Arc::clone(&book));
    // A torn snapshot changes nothing, wherever it was cut.
    for cut in 1..120 {
        assert!(
            restored.restore(LogIndex(40), &bytes[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    assert_eq!(restored.applied_index(), LogIndex(0));
    assert_eq!(book.addresses(), [(1, at(6001)), (2, at(7002))]);

    restored.restore(LogIndex(40), &bytes).unwrap();
    assert!(dump(&target) == dump(&source), "the restored store differs");
    assert_eq!(
        book.addresses(),
        [(1, at(7001)), (2, at(7002)), (4, at(7004))]
    );

    // A snapshot without an address section (from an applier without a book) restores
    // as before.
    let plain = KvApplier::new(Arc::clone(&source)).snapshot().unwrap();
    let target = Arc::new(KvStateMachine::in_memory().unwrap());
    let mut restored = KvApplier::new(Arc::clone(&target)).with_address_book(book);
    restored.restore(LogIndex(40), &plain).unwrap();
    assert!(dump(&target) == dump(&source), "the restored store differs");
}

#[test]
fn hashes_and_sets_keep_their_kind_through_a_snapshot() {
    let source = populated(20);
    let commands = [
        hset("h:1", &[("f", "1"), ("g", "2")]),
        hset("h:2", &[("only", "")]),
        Command::SAdd {
            key: b"s:1".to_vec(),
            members: vec![b"m".to_vec(), Vec::new()],
        },
        Command::Expire {
            key: b"h:2".to_vec(),
            expire_at_ms: 5_000,
            condition: aegis_node::ExpireCondition::Always,
        },
        Command::ZAdd {
            key: b"z:1".to_vec(),
            entries: vec![
                (aegis_node::Score::new(2.5).unwrap(), b"b".to_vec()),
                (aegis_node::Score::new(-1.0).unwrap(), b"a".to_vec()),
            ],
            options: aegis_node::ZAddOptions::default(),
        },
        Command::XAdd {
            key: b"x:1".to_vec(),
            id: NewId::Exact(StreamId { ms: 4, seq: 2 }),
            fields: vec![b"f".to_vec(), b"1".to_vec(), Vec::new(), b"2".to_vec()],
            no_mkstream: false,
            trim: None,
        },
        Command::XAdd {
            key: b"x:1".to_vec(),
            id: NewId::Auto,
            fields: vec![b"g".to_vec(), b"3".to_vec()],
            no_mkstream: false,
            trim: None,
        },
        // A stream left empty stays a key, with its last ID.
        Command::XAdd {
            key: b"x:empty".to_vec(),
            id: NewId::AutoSeq(9),
            fields: vec![b"f".to_vec(), b"v".to_vec()],
            no_mkstream: false,
            trim: Some(Trim {
                by: TrimBy::MaxLen(0),
                limit: 0,
            }),
        },
    ];
    for (i, command) in commands.iter().enumerate() {
        source.apply(21 + i as u64, command, 0).unwrap();
    }
    let target = KvStateMachine::in_memory().unwrap();
    target.restore(chunks_of(&source, 512)).unwrap();
    assert_eq!(dump(&target), dump(&source));
    assert_eq!(target.kind(b"h:1", 0).unwrap(), Some(ValueKind::Hash));
    assert_eq!(
        target.kind(b"key:00001", 0).unwrap(),
        Some(ValueKind::String)
    );
    assert_eq!(target.kind(b"s:1", 0).unwrap(), Some(ValueKind::Set));
    assert_eq!(target.kind(b"z:1", 0).unwrap(), Some(ValueKind::ZSet));
    assert_eq!(target.kind(b"x:1", 0).unwrap(), Some(ValueKind::Stream));
    let whole = StreamRead::Range {
        start: StreamId::MIN,
        end: StreamId::MAX,
        count: None,
        rev: false,
    };
    assert_eq!(
        target.read_stream(b"x:1", &whole, 0, 1 << 20).unwrap(),
        Output::Entries(Some(vec![
            StreamEntry {
                id: StreamId { ms: 4, seq: 2 },
                fields: vec![b"f".to_vec(), b"1".to_vec(), Vec::new(), b"2".to_vec()],
            },
            StreamEntry {
                id: StreamId { ms: 4, seq: 3 },
                fields: vec![b"g".to_vec(), b"3".to_vec()],
            },
        ]))
    );
    assert_eq!(target.kind(b"x:empty", 0).unwrap(), Some(ValueKind::Stream));
    assert_eq!(
        target
            .read_stream(b"x:empty", &StreamRead::Len, 0, 1 << 20)
            .unwrap(),
        Output::Count(0)
    );
    assert_eq!(
        target
            .read_stream(b"x:empty", &StreamRead::LastId, 0, 1 << 20)
            .unwrap(),
        Output::StreamId(Some(StreamId { ms: 9, seq: 0 }))
    );
    assert_eq!(
        target
            .read_zset(
                b"z:1",
                &aegis_node::ZSetRead::Score {
                    member: b"b".to_vec()
                },
                0,
                1 << 20
            )
            .unwrap(),
        Output::Score(aegis_node::Score::new(2.5))
    );
    assert_eq!(
        target.read_set(b"s:1", &SetRead::Card, 0, 1 << 20).unwrap(),
        Output::Count(2)
    );
    assert_eq!(
        target
            .read_hash(b"h:1", &HashRead::GetAll, 0, 1 << 20)
            .unwrap(),
        Output::Values(vec![
            Some(b"f".to_vec()),
            Some(b"1".to_vec()),
            Some(b"g".to_vec()),
            Some(b"2".to_vec()),
        ])
    );
    assert_eq!(
        target.key_expiry(b"h:2", 0).unwrap(),
        aegis_node::KeyExpiry::At(5_000)
    );
    assert_eq!(target.next_expiry_ms().unwrap(), Some(1_000));
}

/// One chunk as the format lays it out, sealed, at `version`.
fn sealed(version: u8, kind: u8, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut chunk = SNAPSHOT_MAGIC.to_vec();
    chunk.push(version);
    chunk.push(kind);
    chunk.extend_from_slice(&seq.to_le_bytes());
    chunk.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    chunk.extend_from_slice(payload);
    let crc = crc32c(&chunk);
    chunk.extend_from_slice(&crc.to_le_bytes());
    chunk
}

fn header_and_footer(version: u8, entries: Vec<u8>, count: u64) -> Vec<Vec<u8>> {
    let mut header = 7_u64.to_le_bytes().to_vec();
    header.extend_from_slice(&count.to_le_bytes());
    vec![
        sealed(version, 1, 0, &header),
        sealed(version, 2, 1, &entries),
        sealed(version, 3, 2, &count.to_le_bytes()),
    ]
}

/// `key_len | key | expire_at_ms | [kind] | value_len | value`.
fn entry(key: &[u8], expire_at_ms: u64, kind: Option<u8>, value: &[u8]) -> Vec<u8> {
    let mut out = (key.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(key);
    out.extend_from_slice(&expire_at_ms.to_le_bytes());
    out.extend(kind);
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value);
    out
}

#[test]
fn a_snapshot_from_before_kinds_restores_as_strings() {
    let mut entries = entry(b"a", u64::MAX, None, b"one");
    entries.extend(entry(b"b", 9_000, None, b"two"));
    let target = KvStateMachine::in_memory().unwrap();
    let summary = target.restore(header_and_footer(1, entries, 2)).unwrap();
    assert_eq!(summary.applied_index, 7);
    assert_eq!(target.get(b"a", 0).unwrap(), Some(b"one".to_vec()));
    assert_eq!(target.get(b"b", 0).unwrap(), Some(b"two".to_vec()));
    assert_eq!(target.kind(b"b", 0).unwrap(), Some(ValueKind::String));
    assert_eq!(target.next_expiry_ms().unwrap(), Some(9_000));
}

#[test]
fn entries_of_unknown_kinds_or_undecodable_hashes_are_refused() {
    let good_hash = [1, 0, 0, 0, 1, 0, 0, 0, b'f', 1, 0, 0, 0, b'v'];
    let target = KvStateMachine::in_memory().unwrap();
    target
        .restore(header_and_footer(
            SNAPSHOT_VERSION,
            entry(b"h", u64::MAX, Some(1), &good_hash),
            1,
        ))
        .unwrap();
    assert_eq!(target.kind(b"h", 0).unwrap(), Some(ValueKind::Hash));
    for bad in [
        entry(b"h", u64::MAX, Some(2), b"x"),
        entry(b"h", u64::MAX, Some(1), &good_hash[..10]),
    ] {
        let chunks = header_and_footer(SNAPSHOT_VERSION, bad, 1);
        assert!(matches!(
            assert_rejected(&chunks),
            StoreError::SnapshotCorrupt { chunk: 1, .. }
        ));
    }
}

/// A stream entry's ID (milliseconds, sequence number) and its fields and values.
type RawEntry<'a> = ((u64, u64), &'a [&'a [u8]]);

/// A stream as the store encodes one (see `aegis_node::stream`): the last ID, how many
/// entries were ever added, the highest deleted ID, no consumer groups, then each
/// entry's ID and strings.
fn stream_value(last: (u64, u64), entries: &[RawEntry<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    let id = |out: &mut Vec<u8>, (ms, seq): (u64, u64)| {
        out.extend_from_slice(&ms.to_le_bytes());
        out.extend_from_slice(&seq.to_le_bytes());
    };
    id(&mut out, last);
    out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    id(&mut out, (0, 0));
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for (at, strings) in entries {
        id(&mut out, *at);
        out.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        for string in *strings {
            out.extend_from_slice(&(string.len() as u32).to_le_bytes());
            out.extend_from_slice(string);
        }
    }
    out
}

#[test]
fn stream_entries_restore_and_damaged_ones_are_refused() {
    let good = stream_value((3, 0), &[((1, 5), &[b"f", b"v"]), ((3, 0), &[b"g", b""])]);
    let target = KvStateMachine::in_memory().unwrap();
    let mut entries = entry(b"empty", 9_000, Some(5), &stream_value((7, 1), &[]));
    entries.extend(entry(b"x", u64::MAX, Some(5), &good));
    target
        .restore(header_and_footer(SNAPSHOT_VERSION, entries, 2))
        .unwrap();
    assert_eq!(target.kind(b"x", 0).unwrap(), Some(ValueKind::Stream));
    assert_eq!(
        target
            .read_stream(
                b"x",
                &StreamRead::Range {
                    start: StreamId::MIN,
                    end: StreamId::MAX,
                    count: None,
                    rev: true,
                },
                0,
                1 << 20
            )
            .unwrap(),
        Output::Entries(Some(vec![
            StreamEntry {
                id: StreamId { ms: 3, seq: 0 },
                fields: vec![b"g".to_vec(), Vec::new()],
            },
            StreamEntry {
                id: StreamId { ms: 1, seq: 5 },
                fields: vec![b"f".to_vec(), b"v".to_vec()],
            },
        ]))
    );
    assert_eq!(
        target
            .read_stream(b"empty", &StreamRead::LastId, 0, 1 << 20)
            .unwrap(),
        Output::StreamId(Some(StreamId { ms: 7, seq: 1 }))
    );
    assert_eq!(target.next_expiry_ms().unwrap(), Some(9_000));
    // The restored stream goes on after its last ID.
    let add = Command::XAdd {
        key: b"x".to_vec(),
        id: NewId::AutoSeq(3),
        fields: vec![b"f".to_vec(), b"v".to_vec()],
        no_mkstream: true,
        trim: None,
    };
    assert_eq!(
        target.apply(8, &add, 0).unwrap(),
        Output::StreamId(Some(StreamId { ms: 3, seq: 1 }))
    );

    for bad in [
        // Cut short, or with a byte too many.
        good[..good.len() - 1].to_vec(),
        [good.as_slice(), &[0]].concat(),
        // Shorter than its header.
        good[..20].to_vec(),
        // IDs out of order, repeated, 0-0, or past the stream's last ID.
        stream_value((3, 0), &[((3, 0), &[b"f", b"v"]), ((1, 5), &[b"g", b""])]),
        stream_value((3, 0), &[((1, 5), &[b"f", b"v"]), ((1, 5), &[b"g", b""])]),
        stream_value((3, 0), &[((0, 0), &[b"f", b"v"])]),
        stream_value((1, 0), &[((1, 5), &[b"f", b"v"])]),
        // An entry without fields, or with a field without a value.
        stream_value((3, 0), &[((1, 5), &[])]),
        stream_value((3, 0), &[((1, 5), &[b"f", b"v", b"g"])]),
    ] {
        let chunks = header_and_footer(SNAPSHOT_VERSION, entry(b"x", u64::MAX, Some(5), &bad), 1);
        assert!(matches!(
            assert_rejected(&chunks),
            StoreError::SnapshotCorrupt { chunk: 1, .. }
        ));
    }
    // A kind past the stream's is not known.
    let chunks = header_and_footer(SNAPSHOT_VERSION, entry(b"x", u64::MAX, Some(6), &good), 1);
    assert!(matches!(
        assert_rejected(&chunks),
        StoreError::SnapshotCorrupt { chunk: 1, .. }
    ));
}
