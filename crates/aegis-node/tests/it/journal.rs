//! A single node's journal: writes are durable in it before they apply, a restart
//! replays it, and it drops what the store has made durable.

use std::sync::Arc;

use aegis_log::{Log, LogConfig};
use aegis_node::{
    Clock, Command, JournalError, KvStateMachine, LocalConfig, LocalReplicator, ManualClock,
    Output, ReplicaError, Replicator, SetCondition, StoreOptions,
};

const GROUP: u64 = 1;

fn set(key: &str, value: &[u8]) -> Command {
    Command::Set {
        key: key.as_bytes().to_vec(),
        value: value.to_vec(),
        expire_at_ms: None,
        condition: SetCondition::Always,
    }
}

fn store() -> Arc<KvStateMachine> {
    Arc::new(
        KvStateMachine::in_memory_with(StoreOptions {
            sync_writes: false,
            ..StoreOptions::default()
        })
        .unwrap(),
    )
}

fn clock() -> Arc<dyn Clock> {
    Arc::new(ManualClock::new(1_000))
}

fn open_log(dir: &std::path::Path, config: LogConfig) -> Arc<Log> {
    Arc::new(Log::open(dir, config).unwrap())
}

fn journaled(
    store: &Arc<KvStateMachine>,
    log: &Arc<Log>,
    config: LocalConfig,
) -> Result<LocalReplicator, JournalError> {
    LocalReplicator::with_journal(
        1,
        Arc::clone(store),
        clock(),
        config,
        Arc::clone(log),
        || {},
    )
}

fn value(store: &KvStateMachine, key: &str) -> Option<Vec<u8>> {
    store.get(key.as_bytes(), 1_000).unwrap()
}

#[tokio::test]
async fn a_store_that_lost_its_applies_gets_them_back_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), LogConfig::default());
    let first = store();
    let node = journaled(&first, &log, LocalConfig::default()).unwrap();
    for i in 0..50 {
        let written = node.propose(set(&format!("k{i}"), b"v")).await.unwrap();
        assert_eq!(written, Output::Ok);
    }
    assert_eq!(node.propose(set("k7", b"newer")).await.unwrap(), Output::Ok);
    assert_eq!(
        log.last_index(GROUP),
        Some(51),
        "every write is in the journal"
    );
    drop(node);

    // A store that kept none of them, as after a crash with nothing synced.
    let second = store();
    let node = journaled(&second, &log, LocalConfig::default()).unwrap();
    assert_eq!(second.applied_index(), 51);
    assert_eq!(value(&second, "k7"), Some(b"newer".to_vec()));
    assert_eq!(value(&second, "k49"), Some(b"v".to_vec()));
    // The replay was made durable, so the next write drops it from the journal.
    assert_eq!(second.durable_index(), 51);
    assert_eq!(node.propose(set("k50", b"v")).await.unwrap(), Output::Ok);
    assert_eq!(second.applied_index(), 52);
    assert_eq!(log.first_index(GROUP), Some(52));
    assert_eq!(log.last_index(GROUP), Some(52));
}

#[tokio::test]
async fn the_journal_drops_what_the_store_made_durable() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), LogConfig::default());
    let store = store();
    let config = LocalConfig {
        persist_every_applies: 10,
        ..LocalConfig::default()
    };
    let node = journaled(&store, &log, config).unwrap();
    // Each write starts a persist every ten; its flush runs on a thread of its own, and
    // the append after it finished drops the entries it covers.
    let mut written = 0;
    while log.first_index(GROUP).unwrap_or(1) <= 10 {
        assert!(written < 10_000, "the journal never dropped anything");
        node.propose(set(&format!("k{}", written % 7), b"v"))
            .await
            .unwrap();
        written += 1;
    }
    let first = log.first_index(GROUP).unwrap();
    assert!(
        store.durable_index() >= first - 1,
        "dropped only durable entries"
    );
    assert_eq!(log.last_index(GROUP), Some(written));
    drop(node);

    // What is left still replays onto the store as durably written.
    let node = journaled(&store, &log, config).unwrap();
    assert_eq!(store.applied_index(), written);
    drop(node);
}

#[tokio::test]
async fn a_store_ahead_of_its_journal_starts_the_journal_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), LogConfig::default());
    // A store that synced its own applies, as single nodes did before journals.
    let store = store();
    for index in 1..=5 {
        store.apply(index, &set("old", b"v"), 1_000).unwrap();
    }
    let node = journaled(&store, &log, LocalConfig::default()).unwrap();
    assert_eq!(node.propose(set("new", b"v")).await.unwrap(), Output::Ok);
    assert_eq!(store.applied_index(), 6);
    assert_eq!(log.first_index(GROUP), Some(6));
    drop(node);

    // A journal that ends before the store is lined up the same way.
    for index in 7..=9 {
        store.apply(index, &set("older", b"v"), 1_000).unwrap();
    }
    let node = journaled(&store, &log, LocalConfig::default()).unwrap();
    assert_eq!(node.propose(set("new", b"w")).await.unwrap(), Output::Ok);
    assert_eq!(store.applied_index(), 10);
    assert_eq!(log.first_index(GROUP), Some(10));
}

#[test]
fn a_journal_missing_entries_the_store_lacks_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), LogConfig::default());
    log.compact(GROUP, 50).unwrap();
    let error = journaled(&store(), &log, LocalConfig::default()).unwrap_err();
    assert!(
        matches!(
            error,
            JournalError::Gap {
                first: 50,
                applied: 0
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("lost"), "{error}");

    log.append(GROUP, 50, 1, &[1, 2, 3]).unwrap();
    let error = journaled(&store(), &log, LocalConfig::default()).unwrap_err();
    assert!(
        matches!(error, JournalError::Gap { first: 50, .. }),
        "{error:?}"
    );
}

#[test]
fn an_entry_that_does_not_decode_stops_the_replay_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), LogConfig::default());
    log.append(GROUP, 1, 1, &[0xff, 0]).unwrap();
    let error = journaled(&store(), &log, LocalConfig::default()).unwrap_err();
    assert!(
        matches!(error, JournalError::Entry { index: 1, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_write_too_large_for_the_journal_is_refused_alone() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(
        dir.path(),
        LogConfig {
            record_bytes_max: 1024,
            batch_bytes_max: 4096,
            ..LogConfig::default()
        },
    );
    let store = store();
    let node = journaled(&store, &log, LocalConfig::default()).unwrap();
    // Whether or not they share a batch, four fit in one journal write.
    let writes = (0..8)
        .map(|i| {
            if i == 3 {
                set("big", &[7; 2000])
            } else {
                set(&format!("k{i}"), &[1; 900])
            }
        })
        .collect();
    let results = node.propose_batch(writes).await;
    for (i, result) in results.iter().enumerate() {
        if i == 3 {
            assert!(
                matches!(result, Err(ReplicaError::Refused { reason }) if reason.contains("record limit")),
                "{result:?}"
            );
        } else {
            assert_eq!(result.as_ref().unwrap(), &Output::Ok);
        }
    }
    assert_eq!(store.applied_index(), 7);
    assert_eq!(log.last_index(GROUP), Some(7));
    assert_eq!(value(&store, "big"), None);
    drop(node);

    // The indexes stayed dense: all seven replay.
    let fresh = self::store();
    let _node = journaled(&fresh, &log, LocalConfig::default()).unwrap();
    assert_eq!(fresh.applied_index(), 7);
    assert_eq!(value(&fresh, "k7"), Some(vec![1; 900]));
}

/// A journal write that fails leaves the write's outcome unknown, and says so: its bytes
/// may be in the journal, and a restart replays whatever is. Later writes are refused
/// outright until then.
#[tokio::test]
async fn a_failed_journal_write_answers_outcome_unknown_and_refuses_the_rest() {
    use aegis_log::{MemVfs, Vfs};
    let vfs = Arc::new(MemVfs::new());
    let log = Arc::new(
        Log::open_with(
            Arc::clone(&vfs) as Arc<dyn Vfs>,
            "/journal",
            LogConfig::default(),
        )
        .unwrap(),
    );
    let store = store();
    let node = journaled(&store, &log, LocalConfig::default()).unwrap();
    assert_eq!(node.propose(set("a", b"1")).await.unwrap(), Output::Ok);

    vfs.set_fail_syncs(true);
    let failed = node.propose(set("b", b"2")).await;
    assert!(
        matches!(&failed, Err(ReplicaError::OutcomeUnknown { reason }) if reason.contains("journal write failed")),
        "{failed:?}"
    );
    vfs.set_fail_syncs(false);
    let refused = node.propose(set("c", b"3")).await;
    assert!(
        matches!(&refused, Err(ReplicaError::Unavailable { reason }) if reason.contains("restart the node")),
        "{refused:?}"
    );
    // Neither applied here.
    assert_eq!(store.applied_index(), 1);
    assert_eq!(value(&store, "b"), None);
    assert_eq!(value(&store, "c"), None);
}
