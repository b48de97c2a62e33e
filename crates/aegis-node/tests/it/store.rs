//! The state machine: apply, idempotence by index, expiry, persistence.

use aegis_node::{
    Aggregate, BitOp, Command, ExpireCondition, Expiry, HashRead, KeyCounts, KeyExpiry,
    KvStateMachine, NewId, Output, Rejection, Score, ScoreBound, SetCondition, SetOp, SetRead,
    StoreError, StoreOptions, StreamEntry, StreamId, StreamRead, Trim, TrimBy, TxOp, TxRead,
    ValueKind, ZAddOptions, ZRange, ZRangeBy, ZSetRead,
};

use crate::support::hset;

fn set(key: &str, value: &str) -> Command {
    Command::Set {
        key: key.into(),
        value: value.into(),
        expire_at_ms: None,
        condition: SetCondition::Always,
    }
}

fn set_with(key: &str, value: &str, expire_at_ms: Option<u64>, condition: SetCondition) -> Command {
    Command::Set {
        key: key.into(),
        value: value.into(),
        expire_at_ms,
        condition,
    }
}

fn incr(key: &str, delta: i64) -> Command {
    Command::IncrBy {
        key: key.into(),
        delta,
    }
}

fn del(keys: &[&str]) -> Command {
    Command::Del {
        keys: keys.iter().map(|k| k.as_bytes().to_vec()).collect(),
    }
}

fn get(store: &KvStateMachine, key: &str, now_ms: u64) -> Option<String> {
    store
        .get(key.as_bytes(), now_ms)
        .unwrap()
        .map(|v| String::from_utf8(v).unwrap())
}

#[test]
fn apply_runs_every_command_kind() {
    let store = KvStateMachine::in_memory().unwrap();
    assert_eq!(store.apply(1, &set("a", "1"), 0).unwrap(), Output::Ok);
    assert_eq!(
        store.apply(2, &incr("a", 41), 0).unwrap(),
        Output::Integer(42)
    );
    assert_eq!(
        store.apply(3, &incr("fresh", -5), 0).unwrap(),
        Output::Integer(-5)
    );
    let mset = Command::MSet {
        pairs: vec![
            (b"x".to_vec(), b"1".to_vec()),
            (b"y".to_vec(), b"2".to_vec()),
            (b"x".to_vec(), b"3".to_vec()),
        ],
    };
    assert_eq!(store.apply(4, &mset, 0).unwrap(), Output::Ok);
    assert_eq!(get(&store, "x", 0).as_deref(), Some("3"));
    assert_eq!(get(&store, "a", 0).as_deref(), Some("42"));
    assert_eq!(
        store
            .apply(5, &del(&["a", "missing", "y", "a"]), 0)
            .unwrap(),
        Output::Count(2)
    );
    assert_eq!(
        store
            .mget(&[b"a".as_slice(), b"x", b"y", b"fresh"], 0)
            .unwrap(),
        vec![None, Some(b"3".to_vec()), None, Some(b"-5".to_vec())]
    );
    assert_eq!(store.exists(&[b"x".as_slice(), b"x", b"a"], 0).unwrap(), 2);
    assert_eq!(store.applied_index(), 5);
    assert_eq!(store.key_count().unwrap(), 2);
}

/// `RENAME`, `COPY` and `SETRANGE` move and change values with their expiries, and
/// treat an expired key as no key.
#[test]
fn rename_copy_and_setrange() {
    let store = KvStateMachine::in_memory().unwrap();
    let mut index = 0;
    let mut apply = |command: Command, now_ms: u64| {
        index += 1;
        store.apply(index, &command, now_ms).unwrap()
    };
    let rename = |from: &str, to: &str, if_absent: bool| Command::Rename {
        from: from.into(),
        to: to.into(),
        if_absent,
    };
    let copy = |from: &str, to: &str, replace: bool| Command::Copy {
        from: from.into(),
        to: to.into(),
        replace,
    };
    let setrange = |key: &str, offset: u64, value: &str| Command::SetRange {
        key: key.into(),
        offset,
        value: value.into(),
        len_max: 8,
    };
    apply(set_with("a", "1", Some(100), SetCondition::Always), 0);
    apply(set("b", "2"), 0);
    apply(set_with("gone", "x", Some(10), SetCondition::Always), 0);
    // RENAME replaces the target and carries the expiry; RENAMENX does not replace.
    assert_eq!(apply(rename("a", "b", true), 0), Output::Changed(false));
    assert_eq!(apply(rename("a", "b", false), 0), Output::Ok);
    assert_eq!(store.key_expiry(b"b", 0).unwrap(), KeyExpiry::At(100));
    assert_eq!(store.key_expiry(b"a", 0).unwrap(), KeyExpiry::Absent);
    // An expired source is no source; an expired target is no target.
    assert_eq!(
        apply(rename("gone", "c", false), 50),
        Output::Rejected(Rejection::NoSuchKey)
    );
    assert_eq!(
        apply(set_with("old", "o", Some(10), SetCondition::Always), 0),
        Output::Ok
    );
    assert_eq!(apply(rename("b", "old", true), 50), Output::Changed(true));
    assert_eq!(get(&store, "old", 50).as_deref(), Some("1"));
    // Renaming a key to itself changes nothing, but still needs the key.
    assert_eq!(apply(rename("old", "old", false), 50), Output::Ok);
    assert_eq!(
        apply(rename("old", "old", true), 50),
        Output::Changed(false)
    );
    assert_eq!(get(&store, "old", 50).as_deref(), Some("1"));
    assert_eq!(
        apply(rename("none", "none", false), 50),
        Output::Rejected(Rejection::NoSuchKey)
    );
    // COPY keeps the source, carries the expiry, and replaces only when asked.
    assert_eq!(apply(copy("old", "new", false), 50), Output::Changed(true));
    assert_eq!(store.key_expiry(b"new", 50).unwrap(), KeyExpiry::At(100));
    assert_eq!(get(&store, "old", 50).as_deref(), Some("1"));
    apply(set("new", "n"), 50);
    assert_eq!(apply(copy("old", "new", false), 50), Output::Changed(false));
    assert_eq!(get(&store, "new", 50).as_deref(), Some("n"));
    assert_eq!(apply(copy("old", "new", true), 50), Output::Changed(true));
    assert_eq!(get(&store, "new", 50).as_deref(), Some("1"));
    assert_eq!(apply(copy("none", "new", true), 50), Output::Changed(false));
    // SETRANGE pads with zeros, keeps the expiry, and stops at its limit.
    assert_eq!(apply(setrange("old", 3, "ab"), 50), Output::Integer(5));
    assert_eq!(store.get(b"old", 50).unwrap().unwrap(), b"1\0\0ab");
    assert_eq!(store.key_expiry(b"old", 50).unwrap(), KeyExpiry::At(100));
    assert_eq!(apply(setrange("old", 0, "xy"), 50), Output::Integer(5));
    assert_eq!(store.get(b"old", 50).unwrap().unwrap(), b"xy\0ab");
    assert_eq!(
        apply(setrange("old", 7, "ab"), 50),
        Output::Rejected(Rejection::TooLong { len_max: 8 })
    );
    assert_eq!(apply(setrange("old", 1_000, ""), 50), Output::Integer(5));
    assert_eq!(apply(setrange("fresh", 9, ""), 50), Output::Integer(0));
    assert_eq!(store.key_expiry(b"fresh", 50).unwrap(), KeyExpiry::Absent);
    assert_eq!(apply(setrange("fresh", 1, "z"), 50), Output::Integer(2));
    assert_eq!(store.get(b"fresh", 50).unwrap().unwrap(), b"\0z");
    assert_eq!(store.key_expiry(b"fresh", 50).unwrap(), KeyExpiry::Never);
}

/// `SETBIT` grows the value and keeps its expiry; `BITOP` writes its result without one,
/// and an empty result removes the destination.
#[test]
fn setbit_and_bitop() {
    let store = KvStateMachine::in_memory().unwrap();
    let setbit = |key: &str, offset: u64, on: bool| Command::SetBit {
        key: key.into(),
        offset,
        on,
    };
    let bitop = |op: BitOp, dest: &str, keys: &[&str]| Command::BitOp {
        op,
        dest: dest.into(),
        keys: keys.iter().map(|k| k.as_bytes().to_vec()).collect(),
    };
    store
        .apply(1, &set_with("k", "a", Some(100), SetCondition::Always), 0)
        .unwrap();
    // 'a' is 0b0110_0001: bit 1 is set, bit 0 is not.
    assert_eq!(
        store.apply(2, &setbit("k", 1, false), 0).unwrap(),
        Output::Integer(1)
    );
    assert_eq!(
        store.apply(3, &setbit("k", 0, true), 0).unwrap(),
        Output::Integer(0)
    );
    assert_eq!(
        store.apply(4, &setbit("k", 17, true), 0).unwrap(),
        Output::Integer(0)
    );
    assert_eq!(
        store.get(b"k", 0).unwrap().unwrap(),
        [0b1010_0001, 0, 0b0100_0000]
    );
    assert_eq!(store.key_expiry(b"k", 0).unwrap(), KeyExpiry::At(100));
    // A missing key starts empty.
    assert_eq!(
        store.apply(5, &setbit("new", 3, true), 0).unwrap(),
        Output::Integer(0)
    );
    assert_eq!(store.get(b"new", 0).unwrap().unwrap(), [0b0001_0000]);

    assert_eq!(
        store
            .apply(6, &bitop(BitOp::Or, "k", &["k", "new"]), 0)
            .unwrap(),
        Output::Integer(3)
    );
    assert_eq!(
        store.get(b"k", 0).unwrap().unwrap(),
        [0b1011_0001, 0, 0b0100_0000]
    );
    assert_eq!(store.key_expiry(b"k", 0).unwrap(), KeyExpiry::Never);
    assert_eq!(
        store
            .apply(7, &bitop(BitOp::Not, "n", &["new"]), 0)
            .unwrap(),
        Output::Integer(1)
    );
    assert_eq!(store.get(b"n", 0).unwrap().unwrap(), [0b1110_1111]);
    // Only missing sources: an empty result, and the destination goes.
    assert_eq!(
        store
            .apply(8, &bitop(BitOp::And, "n", &["none", "nothing"]), 0)
            .unwrap(),
        Output::Integer(0)
    );
    assert_eq!(store.key_expiry(b"n", 0).unwrap(), KeyExpiry::Absent);
}

#[test]
fn conditional_set_and_rejections() {
    let store = KvStateMachine::in_memory().unwrap();
    let nx = set_with("k", "first", None, SetCondition::IfAbsent);
    assert_eq!(store.apply(1, &nx, 0).unwrap(), Output::Ok);
    let nx_again = set_with("k", "second", None, SetCondition::IfAbsent);
    assert_eq!(store.apply(2, &nx_again, 0).unwrap(), Output::NotSet);
    let xx_missing = set_with("other", "v", None, SetCondition::IfPresent);
    assert_eq!(store.apply(3, &xx_missing, 0).unwrap(), Output::NotSet);
    let xx = set_with("k", "third", None, SetCondition::IfPresent);
    assert_eq!(store.apply(4, &xx, 0).unwrap(), Output::Ok);
    assert_eq!(get(&store, "k", 0).as_deref(), Some("third"));
    assert_eq!(get(&store, "other", 0), None);

    for (i, bad) in [
        "abc",
        "",
        " 1",
        "+1",
        "01",
        "-0",
        "1.5",
        "99999999999999999999",
    ]
    .iter()
    .enumerate()
    {
        let index = 10 + 2 * i as u64;
        store.apply(index, &set("n", bad), 0).unwrap();
        assert_eq!(
            store.apply(index + 1, &incr("n", 1), 0).unwrap(),
            Output::Rejected(Rejection::NotAnInteger),
            "value {bad:?}"
        );
        assert_eq!(
            get(&store, "n", 0).as_deref(),
            Some(*bad),
            "a rejection changes nothing"
        );
    }
    store
        .apply(100, &set("big", &i64::MAX.to_string()), 0)
        .unwrap();
    assert_eq!(
        store.apply(101, &incr("big", 1), 0).unwrap(),
        Output::Rejected(Rejection::Overflow)
    );
    assert_eq!(
        store.apply(102, &incr("big", i64::MIN), 0).unwrap(),
        Output::Integer(-1)
    );
    // A rejected command still consumes its index.
    assert_eq!(store.applied_index(), 102);
}

#[test]
fn apply_is_idempotent_by_index() {
    let store = KvStateMachine::in_memory().unwrap();
    assert_eq!(
        store.apply(1, &incr("n", 1), 0).unwrap(),
        Output::Integer(1)
    );
    // The same index again, or any lower one, changes nothing.
    assert_eq!(
        store.apply(1, &incr("n", 1), 0).unwrap(),
        Output::AlreadyApplied { applied_index: 1 }
    );
    assert_eq!(
        store.apply(7, &incr("n", 1), 0).unwrap(),
        Output::Integer(2)
    );
    for index in [1, 5, 7] {
        assert_eq!(
            store.apply(index, &set("n", "clobbered"), 0).unwrap(),
            Output::AlreadyApplied { applied_index: 7 }
        );
    }
    assert_eq!(get(&store, "n", 0).as_deref(), Some("2"));
    assert!(!store.apply_noop(7).unwrap());
    assert!(store.apply_noop(8).unwrap());
    assert_eq!(store.applied_index(), 8);
    assert_eq!(
        store.apply(8, &incr("n", 1), 0).unwrap(),
        Output::AlreadyApplied { applied_index: 8 }
    );
}

#[test]
fn applied_index_and_data_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    {
        let store = KvStateMachine::open(&path, StoreOptions::default()).unwrap();
        store.apply(1, &set("a", "1"), 0).unwrap();
        store
            .apply(2, &set_with("t", "v", Some(500), SetCondition::Always), 0)
            .unwrap();
        store.apply(3, &incr("a", 1), 0).unwrap();
    }
    let store = KvStateMachine::open(&path, StoreOptions::default()).unwrap();
    assert_eq!(store.applied_index(), 3);
    assert_eq!(get(&store, "a", 0).as_deref(), Some("2"));
    assert_eq!(store.next_expiry_ms().unwrap(), Some(500));
    // A replay of the log from the start after the restart is a no-op.
    for index in 1..=3 {
        assert!(matches!(
            store.apply(index, &incr("a", 100), 0).unwrap(),
            Output::AlreadyApplied { .. }
        ));
    }
    assert_eq!(get(&store, "a", 0).as_deref(), Some("2"));
    store.apply(4, &incr("a", 1), 0).unwrap();
    assert_eq!(get(&store, "a", 0).as_deref(), Some("3"));
}

#[test]
fn expired_keys_are_hidden_then_treated_as_absent() {
    let store = KvStateMachine::in_memory().unwrap();
    let with_ttl = set_with("k", "v", Some(1_000), SetCondition::Always);
    store.apply(1, &with_ttl, 0).unwrap();
    // Redis semantics: alive up to and including the expiry millisecond.
    assert_eq!(get(&store, "k", 1_000).as_deref(), Some("v"));
    assert_eq!(get(&store, "k", 1_001), None);
    assert_eq!(store.exists(&[b"k"], 1_001).unwrap(), 0);
    assert_eq!(store.mget(&[b"k"], 1_001).unwrap(), vec![None]);
    // Still stored until something deletes it deterministically.
    assert_eq!(store.key_count().unwrap(), 1);

    // XX sees an expired key as absent, NX as free.
    let xx = set_with("k", "x", None, SetCondition::IfPresent);
    assert_eq!(store.apply(2, &xx, 1_001).unwrap(), Output::NotSet);
    let nx = set_with("k", "n", None, SetCondition::IfAbsent);
    assert_eq!(store.apply(3, &nx, 1_001).unwrap(), Output::Ok);
    assert_eq!(
        get(&store, "k", u64::MAX).as_deref(),
        Some("n"),
        "NX cleared the TTL"
    );
    assert_eq!(store.next_expiry_ms().unwrap(), None);

    // INCRBY keeps a live key's TTL, and restarts an expired counter from zero without one.
    let counter = set_with("c", "10", Some(2_000), SetCondition::Always);
    store.apply(4, &counter, 0).unwrap();
    assert_eq!(
        store.apply(5, &incr("c", 1), 1_500).unwrap(),
        Output::Integer(11)
    );
    assert_eq!(store.next_expiry_ms().unwrap(), Some(2_000));
    assert_eq!(
        store.apply(6, &incr("c", 1), 2_001).unwrap(),
        Output::Integer(1)
    );
    assert_eq!(store.next_expiry_ms().unwrap(), None);

    // DEL removes an expired key but does not count it.
    store
        .apply(7, &set_with("d", "v", Some(10), SetCondition::Always), 0)
        .unwrap();
    assert_eq!(store.apply(8, &del(&["d"]), 11).unwrap(), Output::Count(0));
    assert_eq!(store.key_count().unwrap(), 2);
}

#[test]
fn purge_removes_only_expired_keys_in_bounded_batches() {
    let store = KvStateMachine::in_memory().unwrap();
    let mut index = 0;
    for i in 0..10_u64 {
        index += 1;
        let key = format!("t{i}");
        let cmd = set_with(&key, "v", Some(100 * (i + 1)), SetCondition::Always);
        store.apply(index, &cmd, 0).unwrap();
    }
    index += 1;
    store.apply(index, &set("forever", "v"), 0).unwrap();
    // At 550, keys expiring at 100..=500 (five of them) are expired.
    let purge = Command::PurgeExpired { batch_max: 3 };
    index += 1;
    assert_eq!(store.apply(index, &purge, 550).unwrap(), Output::Count(3));
    index += 1;
    assert_eq!(store.apply(index, &purge, 550).unwrap(), Output::Count(2));
    index += 1;
    assert_eq!(store.apply(index, &purge, 550).unwrap(), Output::Count(0));
    assert_eq!(store.key_count().unwrap(), 6);
    assert_eq!(store.next_expiry_ms().unwrap(), Some(600));
    assert_eq!(get(&store, "t5", 550).as_deref(), Some("v"));
    // A key expiring exactly at `now` is still alive and stays.
    index += 1;
    assert_eq!(store.apply(index, &purge, 600).unwrap(), Output::Count(0));
    index += 1;
    let everything = Command::PurgeExpired { batch_max: 1000 };
    assert_eq!(
        store.apply(index, &everything, u64::MAX).unwrap(),
        Output::Count(5)
    );
    assert_eq!(store.key_count().unwrap(), 1);
    assert_eq!(store.next_expiry_ms().unwrap(), None);
}

/// EXPIRE, PERSIST and KEEPTTL move a key in the expiry index, so the purge removes
/// exactly the keys whose final expiry has passed.
#[test]
fn expiry_changes_reach_the_purge() {
    let store = KvStateMachine::in_memory().unwrap();
    let expire = |key: &str, at: u64| Command::Expire {
        key: key.into(),
        expire_at_ms: at,
        condition: ExpireCondition::Always,
    };
    let persist = |key: &str| Command::Persist { key: key.into() };
    let keep = |key: &str, value: &str| Command::SetWith {
        key: key.into(),
        value: value.into(),
        expiry: Expiry::Keep,
        condition: SetCondition::Always,
        get: true,
    };
    let log = [
        (set("sooner", "v"), Output::Ok),
        (expire("sooner", 500), Output::Changed(true)),
        (expire("sooner", 200), Output::Changed(true)),
        (
            set_with("kept", "a", Some(300), SetCondition::Always),
            Output::Ok,
        ),
        (keep("kept", "b"), Output::Value(Some(b"a".to_vec()))),
        (
            set_with("saved", "v", Some(100), SetCondition::Always),
            Output::Ok,
        ),
        (persist("saved"), Output::Changed(true)),
        (persist("saved"), Output::Changed(false)),
        (
            set_with("later", "v", Some(100), SetCondition::Always),
            Output::Ok,
        ),
        (expire("later", 5_000), Output::Changed(true)),
        (set("gone", "v"), Output::Ok),
        // At or before the entry's time (10): deleted at once.
        (expire("gone", 10), Output::Changed(true)),
        (expire("gone", 20), Output::Changed(false)),
    ];
    for (i, (command, output)) in log.iter().enumerate() {
        assert_eq!(
            &store.apply(i as u64 + 1, command, 10).unwrap(),
            output,
            "{command:?}"
        );
    }
    assert_eq!(store.key_expiry(b"sooner", 10).unwrap(), KeyExpiry::At(200));
    assert_eq!(store.key_expiry(b"kept", 10).unwrap(), KeyExpiry::At(300));
    assert_eq!(store.key_expiry(b"saved", 10).unwrap(), KeyExpiry::Never);
    assert_eq!(
        store.key_expiry(b"later", 10).unwrap(),
        KeyExpiry::At(5_000)
    );
    assert_eq!(store.key_expiry(b"gone", 10).unwrap(), KeyExpiry::Absent);
    assert_eq!(store.key_expiry(b"sooner", 201).unwrap(), KeyExpiry::Absent);
    assert_eq!(
        store.key_counts().unwrap(),
        KeyCounts {
            keys: 4,
            expiring: 3
        }
    );
    store.persist().unwrap();
    // The same once written to the database.
    assert_eq!(store.key_counts().unwrap().expiring, 3);
    assert_eq!(store.next_expiry_ms().unwrap(), Some(200));

    let purge = Command::PurgeExpired { batch_max: 100 };
    let next = log.len() as u64 + 1;
    assert_eq!(store.apply(next, &purge, 1_000).unwrap(), Output::Count(2));
    assert_eq!(get(&store, "saved", u64::MAX - 1).as_deref(), Some("v"));
    assert_eq!(get(&store, "later", 1_000).as_deref(), Some("v"));
    assert_eq!(store.next_expiry_ms().unwrap(), Some(5_000));
    assert_eq!(
        store.apply(next + 1, &purge, 5_001).unwrap(),
        Output::Count(1)
    );
    assert_eq!(store.key_count().unwrap(), 1);
    assert_eq!(store.next_expiry_ms().unwrap(), None);
}

/// Two replicas applying the same entries end in byte-identical snapshots.
#[test]
fn replicas_applying_the_same_log_agree() {
    let entries: Vec<(Command, u64)> = vec![
        (set_with("a", "1", Some(150), SetCondition::Always), 100),
        (incr("a", 5), 120),
        (incr("a", 5), 200),
        (set_with("b", "x", None, SetCondition::IfAbsent), 210),
        (Command::PurgeExpired { batch_max: 10 }, 300),
        (del(&["b", "zz"]), 310),
        (set("c", "3"), 320),
    ];
    let replicas: Vec<KvStateMachine> = (0..2)
        .map(|_| KvStateMachine::in_memory().unwrap())
        .collect();
    let mut outputs = Vec::new();
    for replica in &replicas {
        let out: Vec<Output> = entries
            .iter()
            .enumerate()
            .map(|(i, (cmd, now))| replica.apply(i as u64 + 1, cmd, *now).unwrap())
            .collect();
        outputs.push(out);
    }
    assert_eq!(outputs[0], outputs[1]);
    let snaps: Vec<Vec<Vec<u8>>> = replicas
        .iter()
        .map(|r| r.snapshot(4096).unwrap().collect::<Result<_, _>>().unwrap())
        .collect();
    assert_eq!(snaps[0], snaps[1]);
}

#[test]
fn a_batch_applies_in_order_in_one_transaction() {
    use aegis_node::ApplyEntry;
    let store = KvStateMachine::in_memory().unwrap();
    store.apply(2, &set("n", "10"), 0).unwrap();
    let (a, b, c) = (incr("n", 1), incr("n", 5), del(&["n"]));
    let entries = [
        ApplyEntry {
            index: 1,
            command: &a,
            now_ms: 0,
        },
        ApplyEntry {
            index: 2,
            command: &a,
            now_ms: 0,
        },
        ApplyEntry {
            index: 3,
            command: &a,
            now_ms: 0,
        },
        ApplyEntry {
            index: 5,
            command: &b,
            now_ms: 0,
        },
        ApplyEntry {
            index: 5,
            command: &c,
            now_ms: 0,
        },
    ];
    assert_eq!(
        store.apply_batch(&entries).unwrap(),
        vec![
            Output::AlreadyApplied { applied_index: 2 },
            Output::AlreadyApplied { applied_index: 2 },
            Output::Integer(11),
            Output::Integer(16),
            Output::AlreadyApplied { applied_index: 5 },
        ]
    );
    assert_eq!(store.applied_index(), 5);
    assert_eq!(get(&store, "n", 0).as_deref(), Some("16"));
    // A batch of nothing new changes nothing.
    assert_eq!(store.apply_batch(&entries[..2]).unwrap().len(), 2);
    assert_eq!(store.applied_index(), 5);
}

#[test]
fn bounded_reads_stop_at_their_budget() {
    let store = KvStateMachine::in_memory().unwrap();
    store.apply(1, &set("k", &"x".repeat(100)), 0).unwrap();
    store
        .apply(
            2,
            &set_with("gone", &"y".repeat(500), Some(5), SetCondition::Always),
            0,
        )
        .unwrap();
    let keys = [b"k".as_slice(), b"k", b"gone"];
    assert_eq!(store.mget_bounded(&keys, 10, 200).unwrap().len(), 3);
    // Expired values do not count against the budget.
    assert_eq!(
        store.mget_bounded(&[b"gone".as_slice(); 4], 10, 1).unwrap(),
        vec![None; 4]
    );
    assert!(matches!(
        store.mget_bounded(&keys, 10, 199),
        Err(StoreError::ReadTooLarge { bytes_max: 199 })
    ));
}

fn hash(store: &KvStateMachine, key: &str, now_ms: u64) -> Vec<(String, String)> {
    let Output::Values(flat) = store
        .read_hash(key.as_bytes(), &HashRead::GetAll, now_ms, usize::MAX)
        .unwrap()
    else {
        panic!("HGETALL answers with values");
    };
    let text = |v: Option<Vec<u8>>| String::from_utf8(v.unwrap()).unwrap();
    let mut flat = flat.into_iter();
    let mut pairs = Vec::new();
    while let (Some(f), Some(v)) = (flat.next(), flat.next()) {
        pairs.push((text(f), text(v)));
    }
    pairs
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(f, v)| ((*f).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn hashes_apply_and_keep_their_kind() {
    let store = KvStateMachine::in_memory().unwrap();
    let mut index = 0;
    let mut apply = |command: Command, now_ms: u64| {
        index += 1;
        store.apply(index, &command, now_ms).unwrap()
    };
    assert_eq!(
        apply(hset("h", &[("f", "1"), ("g", "2"), ("f", "3")]), 0),
        Output::Count(2)
    );
    assert_eq!(
        apply(hset("h", &[("g", "4"), ("n", "5")]), 0),
        Output::Count(1)
    );
    let nx = |field: &str| Command::HSet {
        key: b"h".to_vec(),
        pairs: vec![(field.into(), b"x".to_vec())],
        if_absent: true,
    };
    assert_eq!(apply(nx("f"), 0), Output::Changed(false));
    assert_eq!(apply(nx("new"), 0), Output::Changed(true));
    let hincr = |field: &str, delta| Command::HIncrBy {
        key: b"h".to_vec(),
        field: field.into(),
        delta,
    };
    assert_eq!(apply(hincr("f", 10), 0), Output::Integer(13));
    assert_eq!(apply(hincr("c", -2), 0), Output::Integer(-2));
    assert_eq!(
        apply(hincr("new", 1), 0),
        Output::Rejected(Rejection::HashNotAnInteger)
    );
    assert_eq!(
        apply(hincr("f", i64::MAX), 0),
        Output::Rejected(Rejection::Overflow)
    );
    let float = |field: &str, by: &str| Command::HIncrByFloat {
        key: b"h".to_vec(),
        field: field.into(),
        increment: by.into(),
    };
    assert_eq!(
        apply(float("f", "0.5"), 0),
        Output::Value(Some(b"13.5".to_vec()))
    );
    assert_eq!(
        apply(float("new", "1"), 0),
        Output::Rejected(Rejection::HashNotAFloat)
    );
    assert_eq!(
        hash(&store, "h", 0),
        pairs(&[
            ("f", "13.5"),
            ("g", "4"),
            ("n", "5"),
            ("new", "x"),
            ("c", "-2")
        ])
    );

    // A string command on a hash, and a hash command on a string, change nothing.
    apply(set("s", "text"), 0);
    for command in [
        incr("h", 1),
        Command::Append {
            key: b"h".to_vec(),
            value: b"x".to_vec(),
            len_max: 100,
        },
        Command::GetDel { key: b"h".to_vec() },
        Command::SetWith {
            key: b"h".to_vec(),
            value: b"v".to_vec(),
            expiry: Expiry::Clear,
            condition: SetCondition::Always,
            get: true,
        },
        Command::BitOp {
            op: BitOp::Or,
            dest: b"d".to_vec(),
            keys: vec![b"s".to_vec(), b"h".to_vec()],
        },
        hset("s", &[("f", "1")]),
        Command::HDel {
            key: b"s".to_vec(),
            fields: vec![b"f".to_vec()],
        },
    ] {
        let shown = format!("{command:?}");
        let output = apply(command, 0);
        assert_eq!(output, Output::Rejected(Rejection::WrongType), "{shown}");
    }
    assert_eq!(hash(&store, "h", 0).len(), 5);
    assert_eq!(get(&store, "s", 0).as_deref(), Some("text"));
    assert_eq!(
        store.get(b"h", 0).unwrap(),
        None,
        "GET-like reads skip a hash"
    );
    assert!(matches!(
        store.get_bounded(b"h", 0, 100),
        Err(StoreError::WrongKind {
            found: ValueKind::Hash
        })
    ));
    assert!(matches!(
        store.read_hash(b"s", &HashRead::Len, 0, 100),
        Err(StoreError::WrongKind {
            found: ValueKind::String
        })
    ));

    // Expiry, renames and copies carry the kind along.
    let expire = Command::Expire {
        key: b"h".to_vec(),
        expire_at_ms: 1_000,
        condition: ExpireCondition::Always,
    };
    assert_eq!(apply(expire, 0), Output::Changed(true));
    let rename = Command::Rename {
        from: b"h".to_vec(),
        to: b"r".to_vec(),
        if_absent: false,
    };
    assert_eq!(apply(rename, 0), Output::Ok);
    let copy = Command::Copy {
        from: b"r".to_vec(),
        to: b"c".to_vec(),
        replace: false,
    };
    assert_eq!(apply(copy, 0), Output::Changed(true));
    apply(Command::Persist { key: b"c".to_vec() }, 0);
    assert_eq!(store.kind(b"r", 0).unwrap(), Some(ValueKind::Hash));
    assert_eq!(store.key_expiry(b"r", 0).unwrap(), KeyExpiry::At(1_000));
    assert_eq!(store.key_expiry(b"c", 0).unwrap(), KeyExpiry::Never);
    assert_eq!(hash(&store, "c", 0), hash(&store, "r", 0));
    // The hash expires whole, and a field write after that starts a new one.
    assert_eq!(store.kind(b"r", 2_000).unwrap(), None);
    assert_eq!(apply(hset("r", &[("a", "1")]), 2_000), Output::Count(1));
    assert_eq!(store.key_expiry(b"r", 2_000).unwrap(), KeyExpiry::Never);

    // Removing the last field removes the key; a plain SET replaces a hash.
    let hdel = |key: &str, fields: &[&str]| Command::HDel {
        key: key.into(),
        fields: fields.iter().map(|f| f.as_bytes().to_vec()).collect(),
    };
    assert_eq!(apply(hdel("r", &["a", "a", "zz"]), 2_000), Output::Count(1));
    assert_eq!(store.kind(b"r", 2_000).unwrap(), None);
    assert_eq!(apply(hdel("r", &["a"]), 2_000), Output::Count(0));
    apply(set("c", "plain"), 2_000);
    assert_eq!(store.kind(b"c", 2_000).unwrap(), Some(ValueKind::String));
}

/// A database written before values had kinds: a table `kv` of `expire_at_ms | value`
/// records and the layout version 1.
#[test]
fn a_strings_only_database_is_rewritten_on_open() {
    const KV: redb::TableDefinition<'_, &[u8], &[u8]> = redb::TableDefinition::new("kv");
    const EXPIRY: redb::TableDefinition<'_, (u64, &[u8]), ()> =
        redb::TableDefinition::new("expiry");
    const META: redb::TableDefinition<'_, &str, u64> = redb::TableDefinition::new("meta");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut kv = txn.open_table(KV).unwrap();
            let record = |expire: u64, value: &[u8]| {
                let mut out = expire.to_le_bytes().to_vec();
                out.extend_from_slice(value);
                out
            };
            kv.insert(&b"a"[..], &record(u64::MAX, b"1")[..]).unwrap();
            kv.insert(&b"t"[..], &record(700, b"soon")[..]).unwrap();
            kv.insert(&b"e"[..], &record(u64::MAX, b"")[..]).unwrap();
            txn.open_table(EXPIRY)
                .unwrap()
                .insert((700, &b"t"[..]), ())
                .unwrap();
            let mut meta = txn.open_table(META).unwrap();
            meta.insert("schema_version", 1).unwrap();
            meta.insert("applied_index", 41).unwrap();
        }
        txn.commit().unwrap();
    }
    for _ in 0..2 {
        let store = KvStateMachine::open(&path, StoreOptions::default()).unwrap();
        assert_eq!(store.applied_index(), 41);
        assert_eq!(get(&store, "a", 0).as_deref(), Some("1"));
        assert_eq!(get(&store, "t", 0).as_deref(), Some("soon"));
        assert_eq!(get(&store, "e", 0).as_deref(), Some(""));
        assert_eq!(store.kind(b"t", 0).unwrap(), Some(ValueKind::String));
        assert_eq!(store.key_count().unwrap(), 3);
        assert_eq!(store.next_expiry_ms().unwrap(), Some(700));
    }
    let store = KvStateMachine::open(&path, StoreOptions::default()).unwrap();
    store.apply(42, &incr("a", 1), 0).unwrap();
    assert_eq!(get(&store, "a", 0).as_deref(), Some("2"));
}

fn members(store: &KvStateMachine, key: &str) -> Vec<String> {
    let Output::Values(all) = store
        .read_set(key.as_bytes(), &SetRead::Members, 0, usize::MAX)
        .unwrap()
    else {
        panic!("SMEMBERS answers with values");
    };
    all.into_iter()
        .map(|m| String::from_utf8(m.unwrap()).unwrap())
        .collect()
}

fn bytes_of(items: &[&str]) -> Vec<Vec<u8>> {
    items.iter().map(|i| i.as_bytes().to_vec()).collect()
}

#[test]
fn sets_apply_and_pop_alike_on_every_replica() {
    let replicas = [
        KvStateMachine::in_memory().unwrap(),
        KvStateMachine::in_memory().unwrap(),
    ];
    let log = [
        Command::SAdd {
            key: b"s".to_vec(),
            members: bytes_of(&["a", "b", "c", "d", "e", "a"]),
        },
        Command::SAdd {
            key: b"t".to_vec(),
            members: bytes_of(&["d", "e", "f"]),
        },
        Command::SPop {
            key: b"s".to_vec(),
            count: Some(2),
            seed: 42,
        },
        Command::SetStore {
            op: SetOp::Union,
            dest: b"u".to_vec(),
            keys: bytes_of(&["s", "t", "missing"]),
        },
        Command::SMove {
            from: b"t".to_vec(),
            to: b"s".to_vec(),
            member: b"f".to_vec(),
        },
    ];
    let outputs: Vec<Vec<Output>> = replicas
        .iter()
        .map(|store| {
            log.iter()
                .enumerate()
                .map(|(i, command)| store.apply(i as u64 + 1, command, 0).unwrap())
                .collect()
        })
        .collect();
    assert_eq!(outputs[0], outputs[1], "a seeded SPOP picks alike");
    assert_eq!(outputs[0][0], Output::Count(5));
    let Output::Values(popped) = &outputs[0][2] else {
        panic!("SPOP with a count answers with values");
    };
    assert_eq!(popped.len(), 2);
    assert_eq!(members(&replicas[0], "s"), members(&replicas[1], "s"));
    assert_eq!(members(&replicas[0], "s").len(), 4);
    assert_eq!(outputs[0][4], Output::Changed(true));
    assert_eq!(members(&replicas[0], "t"), ["d", "e"]);
    assert_eq!(
        replicas[0]
            .read_sets(SetOp::Inter, &bytes_of(&["s", "t"]), Some(0), 0, usize::MAX)
            .unwrap(),
        Output::Count(
            members(&replicas[0], "s")
                .iter()
                .filter(|m| ["d", "e"].contains(&m.as_str()))
                .count() as u64
        )
    );
    // A set store over a key of another kind changes nothing.
    let store = &replicas[0];
    store.apply(6, &set("str", "x"), 0).unwrap();
    let bad = Command::SetStore {
        op: SetOp::Diff,
        dest: b"u".to_vec(),
        keys: bytes_of(&["s", "str"]),
    };
    assert_eq!(
        store.apply(7, &bad, 0).unwrap(),
        Output::Rejected(Rejection::WrongType)
    );
    assert_eq!(store.kind(b"u", 0).unwrap(), Some(ValueKind::Set));
    // The last member removed, the key is gone.
    let rem = Command::SRem {
        key: b"t".to_vec(),
        members: bytes_of(&["d", "e", "zz"]),
    };
    assert_eq!(store.apply(8, &rem, 0).unwrap(), Output::Count(2));
    assert_eq!(store.kind(b"t", 0).unwrap(), None);
}

#[test]
fn sorted_sets_order_by_score_and_keep_their_kind() {
    let store = KvStateMachine::in_memory().unwrap();
    let score = |value: f64| Score::new(value).unwrap();
    let zadd = |entries: &[(f64, &str)], options: ZAddOptions| Command::ZAdd {
        key: b"z".to_vec(),
        entries: entries
            .iter()
            .map(|(s, m)| (score(*s), m.as_bytes().to_vec()))
            .collect(),
        options,
    };
    let incr = ZAddOptions {
        incr: true,
        ..ZAddOptions::default()
    };
    let all = ZSetRead::Range {
        range: ZRange {
            by: ZRangeBy::Rank { start: 0, stop: -1 },
            rev: false,
            limit: None,
        },
        with_scores: true,
    };
    let read = |read: &ZSetRead| store.read_zset(b"z", read, 0, usize::MAX).unwrap();
    let plain = ZAddOptions::default();
    assert_eq!(
        store
            .apply(1, &zadd(&[(3.0, "c"), (1.0, "a"), (2.0, "b")], plain), 0)
            .unwrap(),
        Output::Count(3)
    );
    assert_eq!(store.kind(b"z", 0).unwrap(), Some(ValueKind::ZSet));
    assert_eq!(
        store.apply(2, &zadd(&[(5.0, "a")], incr), 0).unwrap(),
        Output::Score(Some(score(6.0)))
    );
    assert_eq!(
        read(&all),
        Output::Scored(vec![
            (b"b".to_vec(), score(2.0)),
            (b"c".to_vec(), score(3.0)),
            (b"a".to_vec(), score(6.0)),
        ])
    );
    // An infinity plus its opposite is refused, and nothing changes.
    store
        .apply(3, &zadd(&[(f64::INFINITY, "inf")], plain), 0)
        .unwrap();
    assert_eq!(
        store
            .apply(4, &zadd(&[(f64::NEG_INFINITY, "inf")], incr), 0)
            .unwrap(),
        Output::Rejected(Rejection::ScoreNaN)
    );
    assert_eq!(read(&ZSetRead::Card), Output::Count(4));
    // Another kind of value is refused, and a sorted set refuses other kinds' commands.
    store.apply(5, &set("s", "x"), 0).unwrap();
    let on_string = Command::ZAdd {
        key: b"s".to_vec(),
        entries: vec![(score(1.0), b"a".to_vec())],
        options: plain,
    };
    assert_eq!(
        store.apply(6, &on_string, 0).unwrap(),
        Output::Rejected(Rejection::WrongType)
    );
    let on_zset = Command::SAdd {
        key: b"z".to_vec(),
        members: vec![b"a".to_vec()],
    };
    assert_eq!(
        store.apply(7, &on_zset, 0).unwrap(),
        Output::Rejected(Rejection::WrongType)
    );
    assert!(matches!(
        store.read_zset(b"s", &ZSetRead::Card, 0, usize::MAX),
        Err(StoreError::WrongKind { .. })
    ));
    // A rename keeps the kind; popping the last members removes the key.
    let rename = Command::Rename {
        from: b"z".to_vec(),
        to: b"y".to_vec(),
        if_absent: false,
    };
    store.apply(8, &rename, 0).unwrap();
    assert_eq!(store.kind(b"y", 0).unwrap(), Some(ValueKind::ZSet));
    let pop = Command::ZPop {
        key: b"y".to_vec(),
        max: true,
        count: 10,
    };
    let Output::Scored(popped) = store.apply(9, &pop, 0).unwrap() else {
        panic!("ZPOPMAX answers members and scores");
    };
    let order: Vec<&[u8]> = popped.iter().map(|(m, _)| m.as_slice()).collect();
    assert_eq!(order, [b"inf".as_slice(), b"a", b"c", b"b"]);
    assert_eq!(store.kind(b"y", 0).unwrap(), None);
    // A removal by range.
    store
        .apply(10, &zadd(&[(1.0, "a"), (2.0, "b"), (3.0, "c")], plain), 0)
        .unwrap();
    let by_score = Command::ZRemRange {
        key: b"z".to_vec(),
        by: ZRangeBy::Score {
            min: ScoreBound {
                score: score(1.0),
                exclusive: true,
            },
            max: ScoreBound {
                score: score(f64::INFINITY),
                exclusive: false,
            },
        },
    };
    assert_eq!(store.apply(11, &by_score, 0).unwrap(), Output::Count(2));
    assert_eq!(
        read(&ZSetRead::Rank {
            member: b"a".to_vec(),
            rev: true
        }),
        Output::Ranked(Some((0, score(1.0))))
    );
}

#[test]
fn sorted_sets_combine_with_sets_and_store_their_results() {
    let store = KvStateMachine::in_memory().unwrap();
    let score = |value: f64| Score::new(value).unwrap();
    let zadd = |key: &str, entries: &[(f64, &str)]| Command::ZAdd {
        key: key.as_bytes().to_vec(),
        entries: entries
            .iter()
            .map(|(s, m)| (score(*s), m.as_bytes().to_vec()))
            .collect(),
        options: ZAddOptions::default(),
    };
    store
        .apply(1, &zadd("a", &[(1.0, "x"), (2.0, "y")]), 0)
        .unwrap();
    let sadd = Command::SAdd {
        key: b"s".to_vec(),
        members: vec![b"y".to_vec(), b"q".to_vec()],
    };
    store.apply(2, &sadd, 0).unwrap();
    store.apply(3, &set("str", "v"), 0).unwrap();
    let union = |keys: &[&str], weights: &[f64], aggregate| Command::ZStore {
        op: SetOp::Union,
        dest: b"d".to_vec(),
        keys: keys.iter().map(|k| k.as_bytes().to_vec()).collect(),
        weights: weights.iter().map(|w| score(*w)).collect(),
        aggregate,
    };
    // A set's members count as scored 1; the destination gets no expiry.
    assert_eq!(
        store
            .apply(4, &union(&["a", "s"], &[1.0, 10.0], Aggregate::Sum), 0)
            .unwrap(),
        Output::Count(3)
    );
    assert_eq!(
        store
            .read_zsets(
                SetOp::Union,
                &[b"d".to_vec()],
                &[],
                Aggregate::Sum,
                true,
                None,
                0,
                usize::MAX
            )
            .unwrap(),
        Output::Scored(vec![
            (b"x".to_vec(), score(1.0)),
            (b"q".to_vec(), score(10.0)),
            (b"y".to_vec(), score(12.0)),
        ])
    );
    assert_eq!(store.key_expiry(b"d", 0).unwrap(), KeyExpiry::Never);
    assert_eq!(
        store
            .apply(5, &union(&["a", "str"], &[], Aggregate::Sum), 0)
            .unwrap(),
        Output::Rejected(Rejection::WrongType)
    );
    assert_eq!(
        store
            .read_zsets(
                SetOp::Inter,
                &[b"a".to_vec(), b"s".to_vec()],
                &[],
                Aggregate::Sum,
                false,
                Some(0),
                0,
                usize::MAX
            )
            .unwrap(),
        Output::Count(1)
    );
    // An empty result removes the destination.
    let inter = Command::ZStore {
        op: SetOp::Inter,
        dest: b"d".to_vec(),
        keys: vec![b"a".to_vec(), b"missing".to_vec()],
        weights: Vec::new(),
        aggregate: Aggregate::Sum,
    };
    assert_eq!(store.apply(6, &inter, 0).unwrap(), Output::Count(0));
    assert_eq!(store.kind(b"d", 0).unwrap(), None);
    let range_store = Command::ZRangeStore {
        dest: b"r".to_vec(),
        source: b"a".to_vec(),
        range: ZRange {
            by: ZRangeBy::Rank { start: 0, stop: 0 },
            rev: true,
            limit: None,
        },
    };
    assert_eq!(store.apply(7, &range_store, 0).unwrap(), Output::Count(1));
    assert_eq!(
        store
            .read_zset(
                b"r",
                &ZSetRead::Score {
                    member: b"y".to_vec()
                },
                0,
                usize::MAX
            )
            .unwrap(),
        Output::Score(Some(score(2.0)))
    );
}

#[tokio::test]
async fn a_key_watch_wakes_only_for_its_keys_getting_a_value() {
    let store = KvStateMachine::in_memory().unwrap();
    let ready = futures_ready;
    let watch = store.watch_keys(&[b"jobs".to_vec(), b"urgent".to_vec()]);
    store.apply(1, &set("other", "x"), 0).unwrap();
    assert!(!ready(&watch).await, "another key changed");
    let push = Command::Push {
        key: b"urgent".to_vec(),
        items: vec![b"j".to_vec()],
        front: false,
        if_exists: false,
    };
    store.apply(2, &push, 0).unwrap();
    assert!(ready(&watch).await, "a watched key got a value");
    assert!(!ready(&watch).await, "one wake per change");
    // A removal gives no value: no wake.
    let del = Command::Del {
        keys: vec![b"urgent".to_vec()],
    };
    store.apply(3, &del, 0).unwrap();
    assert!(!ready(&watch).await);
    // A restore may change anything.
    let source = KvStateMachine::in_memory().unwrap();
    source.apply(1, &set("k", "v"), 0).unwrap();
    let chunks: Vec<Vec<u8>> = source
        .snapshot(1024)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    store.restore(chunks).unwrap();
    assert!(ready(&watch).await);
    // Once dropped, a watch is gone; a new one starts without a wake.
    drop(watch);
    let again = store.watch_keys(&[b"jobs".to_vec()]);
    assert!(!ready(&again).await);
}

/// Whether the watch's change is ready at the first poll.
async fn futures_ready(watch: &aegis_node::KeyWatch) -> bool {
    tokio::time::timeout(std::time::Duration::ZERO, watch.changed())
        .await
        .is_ok()
}

/// A wake comes only once what woke it can be read: a waiter that looks as soon as it is
/// woken finds the value (a wake before the apply is visible would be lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_wakes_after_the_value_is_visible() {
    let store = std::sync::Arc::new(KvStateMachine::in_memory().unwrap());
    for i in 1..=300u64 {
        let key = format!("q{i}").into_bytes();
        let watch = store.watch_keys(std::slice::from_ref(&key));
        let applier = {
            let store = std::sync::Arc::clone(&store);
            let key = key.clone();
            std::thread::spawn(move || {
                let push = Command::Push {
                    key,
                    items: vec![b"j".to_vec()],
                    front: false,
                    if_exists: false,
                };
                store.apply(i, &push, 0).unwrap();
            })
        };
        watch.changed().await;
        assert_eq!(
            store.kind(&key, 0).unwrap(),
            Some(ValueKind::List),
            "woken before the push of {i} was visible"
        );
        applier.join().unwrap();
    }
}

fn sid(ms: u64, seq: u64) -> StreamId {
    StreamId { ms, seq }
}

/// `XADD key id field value ...`, creating the stream, without a trim.
fn xadd(key: &str, id: NewId, fields: &[&str]) -> Command {
    xadd_trim(key, id, fields, None)
}

fn xadd_trim(key: &str, id: NewId, fields: &[&str], trim: Option<Trim>) -> Command {
    Command::XAdd {
        key: key.into(),
        id,
        fields: bytes_of(fields),
        no_mkstream: false,
        trim,
    }
}

fn maxlen(max: u64, limit: u64) -> Trim {
    Trim {
        by: TrimBy::MaxLen(max),
        limit,
    }
}

fn minid(min: StreamId, limit: u64) -> Trim {
    Trim {
        by: TrimBy::MinId(min),
        limit,
    }
}

fn xtrim(key: &str, trim: Trim) -> Command {
    Command::XTrim {
        key: key.into(),
        trim,
    }
}

fn xdel(key: &str, ids: &[StreamId]) -> Command {
    Command::XDel {
        key: key.into(),
        ids: ids.to_vec(),
        bad_id: false,
    }
}

fn entry(id: StreamId, fields: &[&str]) -> StreamEntry {
    StreamEntry {
        id,
        fields: bytes_of(fields),
    }
}

/// `XRANGE key - +`.
const WHOLE: StreamRead = StreamRead::Range {
    start: StreamId::MIN,
    end: StreamId::MAX,
    count: None,
    rev: false,
};

/// The IDs of the entries `key`'s stream holds, in order.
fn stream_ids(store: &KvStateMachine, key: &str, now_ms: u64) -> Vec<StreamId> {
    let Output::Entries(Some(entries)) = store
        .read_stream(key.as_bytes(), &WHOLE, now_ms, usize::MAX)
        .unwrap()
    else {
        panic!("XRANGE answers entries");
    };
    entries.into_iter().map(|e| e.id).collect()
}

fn stream_read(store: &KvStateMachine, key: &str, read: &StreamRead) -> Output {
    store
        .read_stream(key.as_bytes(), read, 0, usize::MAX)
        .unwrap()
}

#[test]
fn streams_add_entries_under_ids_that_only_increase() {
    let store = KvStateMachine::in_memory().unwrap();
    let mut index = 0;
    let mut apply = |command: Command, now_ms: u64| {
        index += 1;
        store.apply(index, &command, now_ms).unwrap()
    };
    let added = |id| Output::StreamId(Some(id));
    // An exact ID, then `ms-*` in the same and in a later millisecond.
    assert_eq!(
        apply(xadd("s", NewId::Exact(sid(5, 1)), &["f", "1"]), 0),
        added(sid(5, 1))
    );
    assert_eq!(store.kind(b"s", 0).unwrap(), Some(ValueKind::Stream));
    assert_eq!(ValueKind::Stream.name(), "stream");
    assert_eq!(store.key_expiry(b"s", 0).unwrap(), KeyExpiry::Never);
    assert_eq!(
        apply(xadd("s", NewId::AutoSeq(5), &["f", "2"]), 0),
        added(sid(5, 2))
    );
    assert_eq!(
        apply(xadd("s", NewId::AutoSeq(7), &["f", "3", "g", ""]), 0),
        added(sid(7, 0))
    );
    // `*` takes the entry's time; in the same millisecond, or with the clock behind the
    // last ID, the ID after the last.
    assert_eq!(
        apply(xadd("s", NewId::Auto, &["f", "4"]), 1_000),
        added(sid(1_000, 0))
    );
    assert_eq!(
        apply(xadd("s", NewId::Auto, &["f", "5"]), 1_000),
        added(sid(1_000, 1))
    );
    assert_eq!(
        apply(xadd("s", NewId::Auto, &["f", "6"]), 10),
        added(sid(1_000, 2))
    );
    // An ID that does not follow the last is refused, and nothing changes.
    for id in [
        NewId::Exact(sid(1_000, 2)),
        NewId::Exact(sid(999, 7)),
        NewId::AutoSeq(999),
    ] {
        assert_eq!(
            apply(xadd("s", id, &["f", "x"]), 0),
            Output::Rejected(Rejection::StreamIdTooSmall),
            "{id:?}"
        );
    }
    assert_eq!(
        stream_ids(&store, "s", 0),
        [
            sid(5, 1),
            sid(5, 2),
            sid(7, 0),
            sid(1_000, 0),
            sid(1_000, 1),
            sid(1_000, 2)
        ]
    );
    assert_eq!(stream_read(&store, "s", &StreamRead::Len), Output::Count(6));
    // `ms-*` after a last ID whose sequence number is the highest is refused; `*` goes
    // on in the next millisecond.
    apply(xadd("t", NewId::Exact(sid(3, u64::MAX)), &["f", "v"]), 0);
    assert_eq!(
        apply(xadd("t", NewId::AutoSeq(3), &["f", "v"]), 0),
        Output::Rejected(Rejection::StreamIdTooSmall)
    );
    assert_eq!(
        apply(xadd("t", NewId::Auto, &["f", "v"]), 0),
        added(sid(4, 0))
    );
    // `*` on a new stream at time 0 is 0-1, the first ID after 0-0; so is `0-*`.
    assert_eq!(
        apply(xadd("z", NewId::Auto, &["f", "v"]), 0),
        added(sid(0, 1))
    );
    assert_eq!(
        apply(xadd("z0", NewId::AutoSeq(0), &["f", "v"]), 0),
        added(sid(0, 1))
    );
    // After the highest ID there is, nothing can be added, whatever the ID asked for.
    assert_eq!(
        apply(xadd("max", NewId::Exact(StreamId::MAX), &["f", "v"]), 0),
        added(StreamId::MAX)
    );
    for id in [
        NewId::Auto,
        NewId::AutoSeq(u64::MAX),
        NewId::Exact(StreamId::MAX),
        NewId::Exact(sid(1, 0)),
    ] {
        assert_eq!(
            apply(xadd("max", id, &["f", "v"]), u64::MAX),
            Output::Rejected(Rejection::StreamExhausted),
            "{id:?}"
        );
    }
    assert_eq!(
        stream_read(&store, "max", &StreamRead::Len),
        Output::Count(1)
    );

    // NOMKSTREAM leaves a missing key alone, and adds to a stream that is there.
    let no_mkstream = |key: &str| Command::XAdd {
        key: key.into(),
        id: NewId::Auto,
        fields: bytes_of(&["f", "v"]),
        no_mkstream: true,
        trim: None,
    };
    assert_eq!(apply(no_mkstream("none"), 2_000), Output::StreamId(None));
    assert_eq!(store.kind(b"none", 2_000).unwrap(), None);
    assert_eq!(store.exists(&[b"none"], 2_000).unwrap(), 0);
    assert_eq!(apply(no_mkstream("s"), 2_000), added(sid(2_000, 0)));

    // Another kind of value is refused, and a stream refuses other kinds' commands.
    apply(set("str", "text"), 0);
    for command in [
        xadd("str", NewId::Auto, &["f", "v"]),
        no_mkstream("str"),
        xdel("str", &[sid(1, 0)]),
        xtrim("str", maxlen(0, 0)),
        Command::XDel {
            key: b"str".to_vec(),
            ids: Vec::new(),
            bad_id: true,
        },
        incr("s", 1),
        hset("s", &[("f", "v")]),
        Command::SAdd {
            key: b"s".to_vec(),
            members: bytes_of(&["m"]),
        },
        Command::Push {
            key: b"s".to_vec(),
            items: bytes_of(&["i"]),
            front: true,
            if_exists: false,
        },
        Command::Append {
            key: b"s".to_vec(),
            value: b"x".to_vec(),
            len_max: 100,
        },
    ] {
        let shown = format!("{command:?}");
        assert_eq!(
            apply(command, 0),
            Output::Rejected(Rejection::WrongType),
            "{shown}"
        );
    }
    assert_eq!(get(&store, "str", 0).as_deref(), Some("text"));
    assert_eq!(stream_read(&store, "s", &StreamRead::Len), Output::Count(7));
    assert!(matches!(
        store.read_stream(b"str", &StreamRead::Len, 0, usize::MAX),
        Err(StoreError::WrongKind {
            found: ValueKind::String
        })
    ));
    assert!(matches!(
        store.get_bounded(b"s", 0, 100),
        Err(StoreError::WrongKind {
            found: ValueKind::Stream
        })
    ));
}

#[test]
fn stream_reads_pick_entries_by_id() {
    let store = KvStateMachine::in_memory().unwrap();
    for (i, (id, fields)) in [
        (sid(1, 0), &["a", "1"][..]),
        (sid(1, 1), &["b", "2", "c", "3"]),
        (sid(2, 0), &["a", ""]),
        (sid(5, 7), &["", "z"]),
    ]
    .into_iter()
    .enumerate()
    {
        store
            .apply(i as u64 + 1, &xadd("s", NewId::Exact(id), fields), 0)
            .unwrap();
    }
    let range = |start, end, count, rev| StreamRead::Range {
        start,
        end,
        count,
        rev,
    };
    assert_eq!(
        stream_read(&store, "s", &WHOLE),
        Output::Entries(Some(vec![
            entry(sid(1, 0), &["a", "1"]),
            entry(sid(1, 1), &["b", "2", "c", "3"]),
            entry(sid(2, 0), &["a", ""]),
            entry(sid(5, 7), &["", "z"]),
        ]))
    );
    // Both ends included; from the highest down with `rev`; at most `count`.
    assert_eq!(
        stream_read(&store, "s", &range(sid(1, 1), sid(2, 0), None, false)),
        Output::Entries(Some(vec![
            entry(sid(1, 1), &["b", "2", "c", "3"]),
            entry(sid(2, 0), &["a", ""]),
        ]))
    );
    assert_eq!(
        stream_read(
            &store,
            "s",
            &range(StreamId::MIN, StreamId::MAX, Some(2), true)
        ),
        Output::Entries(Some(vec![
            entry(sid(5, 7), &["", "z"]),
            entry(sid(2, 0), &["a", ""]),
        ]))
    );
    assert_eq!(
        stream_read(&store, "s", &range(sid(1, 1), sid(9, 0), Some(1), false)),
        Output::Entries(Some(vec![entry(sid(1, 1), &["b", "2", "c", "3"])]))
    );
    assert_eq!(
        stream_read(&store, "s", &range(sid(3, 0), sid(1, 0), None, false)),
        Output::Entries(Some(Vec::new()))
    );
    assert_eq!(
        stream_read(&store, "s", &range(sid(3, 0), sid(5, 6), None, true)),
        Output::Entries(Some(Vec::new()))
    );
    // A count of 0 answers no array at all for a stream, an empty one for a missing key.
    let none = range(StreamId::MIN, StreamId::MAX, Some(0), false);
    assert_eq!(stream_read(&store, "s", &none), Output::Entries(None));
    assert_eq!(
        stream_read(&store, "missing", &none),
        Output::Entries(Some(Vec::new()))
    );
    assert_eq!(
        stream_read(&store, "missing", &WHOLE),
        Output::Entries(Some(Vec::new()))
    );
    assert_eq!(
        stream_read(&store, "missing", &StreamRead::Len),
        Output::Count(0)
    );
    assert_eq!(
        stream_read(&store, "s", &StreamRead::LastId),
        Output::StreamId(Some(sid(5, 7)))
    );
    assert_eq!(
        stream_read(&store, "missing", &StreamRead::LastId),
        Output::StreamId(None)
    );
    // Each entry counts its ID as 41 bytes, besides its fields and values.
    assert_eq!(
        store
            .read_stream(b"s", &range(sid(1, 0), sid(1, 0), None, false), 0, 43)
            .unwrap(),
        Output::Entries(Some(vec![entry(sid(1, 0), &["a", "1"])]))
    );
    assert!(matches!(
        store.read_stream(b"s", &range(sid(1, 0), sid(1, 0), None, false), 0, 42),
        Err(StoreError::ReadTooLarge { bytes_max: 42 })
    ));
}

#[test]
fn stream_trims_remove_the_oldest_entries_and_keep_the_stream() {
    let store = KvStateMachine::in_memory().unwrap();
    let mut index = 0;
    let mut apply = |command: Command| {
        index += 1;
        store.apply(index, &command, 0).unwrap()
    };
    for ms in 1..=5 {
        apply(xadd("s", NewId::Exact(sid(ms, 0)), &["f", "v"]));
    }
    // MAXLEN, with and without a LIMIT on how many go.
    assert_eq!(apply(xtrim("s", maxlen(3, 0))), Output::Count(2));
    assert_eq!(
        stream_ids(&store, "s", 0),
        [sid(3, 0), sid(4, 0), sid(5, 0)]
    );
    assert_eq!(apply(xtrim("s", maxlen(0, 1))), Output::Count(1));
    assert_eq!(stream_ids(&store, "s", 0), [sid(4, 0), sid(5, 0)]);
    assert_eq!(apply(xtrim("s", maxlen(9, 0))), Output::Count(0));
    // MINID: the entries of lower IDs go, the one at the ID stays.
    assert_eq!(apply(xtrim("s", minid(sid(1, 0), 0))), Output::Count(0));
    assert_eq!(apply(xtrim("s", minid(sid(5, 0), 0))), Output::Count(1));
    assert_eq!(stream_ids(&store, "s", 0), [sid(5, 0)]);
    // XADD trims after the add, the new entry counted.
    assert_eq!(
        apply(xadd_trim(
            "s",
            NewId::Exact(sid(6, 0)),
            &["f", "v"],
            Some(maxlen(1, 0))
        )),
        Output::StreamId(Some(sid(6, 0)))
    );
    assert_eq!(stream_ids(&store, "s", 0), [sid(6, 0)]);
    for ms in 7..=9 {
        apply(xadd("s", NewId::Exact(sid(ms, 0)), &["f", "v"]));
    }
    assert_eq!(
        apply(xadd_trim(
            "s",
            NewId::Exact(sid(10, 0)),
            &["f", "v"],
            Some(minid(sid(9, 0), 2))
        )),
        Output::StreamId(Some(sid(10, 0)))
    );
    assert_eq!(
        stream_ids(&store, "s", 0),
        [sid(8, 0), sid(9, 0), sid(10, 0)]
    );
    assert_eq!(
        apply(xadd_trim(
            "s",
            NewId::Exact(sid(11, 0)),
            &["f", "v"],
            Some(maxlen(2, 1))
        )),
        Output::StreamId(Some(sid(11, 0)))
    );
    assert_eq!(
        stream_ids(&store, "s", 0),
        [sid(9, 0), sid(10, 0), sid(11, 0)]
    );
    // A MINID past the new entry takes it too; the stream stays, empty, and remembers
    // the ID it gave.
    assert_eq!(
        apply(xadd_trim(
            "s",
            NewId::Exact(sid(12, 0)),
            &["f", "v"],
            Some(minid(sid(20, 0), 0))
        )),
        Output::StreamId(Some(sid(12, 0)))
    );
    assert!(stream_ids(&store, "s", 0).is_empty());
    assert_eq!(
        stream_read(&store, "s", &StreamRead::LastId),
        Output::StreamId(Some(sid(12, 0)))
    );
    assert_eq!(
        apply(xadd("s", NewId::Exact(sid(12, 0)), &["f", "v"])),
        Output::Rejected(Rejection::StreamIdTooSmall)
    );
    // MAXLEN 0 on a new stream: the key holds an empty stream, which counts as a key
    // and goes on after the ID it gave.
    assert_eq!(
        apply(xadd_trim(
            "e",
            NewId::AutoSeq(3),
            &["f", "v"],
            Some(maxlen(0, 0))
        )),
        Output::StreamId(Some(sid(3, 0)))
    );
    assert_eq!(stream_read(&store, "e", &StreamRead::Len), Output::Count(0));
    assert_eq!(
        stream_read(&store, "e", &WHOLE),
        Output::Entries(Some(Vec::new()))
    );
    assert_eq!(
        stream_read(
            &store,
            "e",
            &StreamRead::Range {
                start: StreamId::MIN,
                end: StreamId::MAX,
                count: Some(0),
                rev: false,
            }
        ),
        Output::Entries(None)
    );
    assert_eq!(store.exists(&[b"e", b"s"], 0).unwrap(), 2);
    assert_eq!(store.kind(b"e", 0).unwrap(), Some(ValueKind::Stream));
    assert_eq!(
        stream_read(&store, "e", &StreamRead::LastId),
        Output::StreamId(Some(sid(3, 0)))
    );
    assert_eq!(
        apply(xadd("e", NewId::AutoSeq(3), &["f", "v"])),
        Output::StreamId(Some(sid(3, 1)))
    );
    assert_eq!(apply(xtrim("e", maxlen(0, 0))), Output::Count(1));
    assert_eq!(store.kind(b"e", 0).unwrap(), Some(ValueKind::Stream));
    // XTRIM of a missing key removes nothing, and makes no key.
    assert_eq!(apply(xtrim("none", maxlen(0, 0))), Output::Count(0));
    assert_eq!(store.kind(b"none", 0).unwrap(), None);
}

#[test]
fn stream_deletes_count_what_was_there_and_keep_the_stream() {
    let store = KvStateMachine::in_memory().unwrap();
    let mut index = 0;
    let mut apply = |command: Command| {
        index += 1;
        store.apply(index, &command, 0).unwrap()
    };
    for ms in 1..=3 {
        apply(xadd("s", NewId::Exact(sid(ms, 0)), &["f", "v"]));
    }
    let bad_id = |key: &str| Command::XDel {
        key: key.into(),
        ids: Vec::new(),
        bad_id: true,
    };
    // An argument that is not an ID: 0 without a key, WRONGTYPE for another kind, and
    // refused for a stream, which keeps its entries.
    assert_eq!(apply(bad_id("none")), Output::Count(0));
    assert_eq!(store.kind(b"none", 0).unwrap(), None);
    apply(set("str", "x"));
    assert_eq!(apply(bad_id("str")), Output::Rejected(Rejection::WrongType));
    assert_eq!(
        apply(bad_id("s")),
        Output::Rejected(Rejection::InvalidStreamId)
    );
    assert_eq!(
        stream_ids(&store, "s", 0),
        [sid(1, 0), sid(2, 0), sid(3, 0)]
    );
    // Repeated and missing IDs count once and not at all.
    assert_eq!(
        apply(xdel("s", &[sid(2, 0), sid(2, 0), sid(9, 9)])),
        Output::Count(1)
    );
    assert_eq!(stream_ids(&store, "s", 0), [sid(1, 0), sid(3, 0)]);
    assert_eq!(apply(xdel("s", &[sid(2, 0)])), Output::Count(0));
    assert_eq!(apply(xdel("none", &[sid(1, 0)])), Output::Count(0));
    assert_eq!(store.kind(b"none", 0).unwrap(), None);
    // The last entries deleted, the stream stays, and its last ID with it.
    assert_eq!(apply(xdel("s", &[sid(3, 0), sid(1, 0)])), Output::Count(2));
    assert_eq!(store.kind(b"s", 0).unwrap(), Some(ValueKind::Stream));
    assert_eq!(store.exists(&[b"s"], 0).unwrap(), 1);
    assert_eq!(stream_read(&store, "s", &StreamRead::Len), Output::Count(0));
    assert_eq!(
        apply(xadd("s", NewId::Exact(sid(3, 0)), &["f", "v"])),
        Output::Rejected(Rejection::StreamIdTooSmall)
    );
    assert_eq!(
        apply(xadd("s", NewId::AutoSeq(3), &["f", "v"])),
        Output::StreamId(Some(sid(3, 1)))
    );
}

#[test]
fn xread_answers_only_the_streams_with_entries_after_their_ids() {
    let store = KvStateMachine::in_memory().unwrap();
    let log = [
        xadd("a", NewId::Exact(sid(1, 0)), &["f", "1"]),
        xadd("a", NewId::Exact(sid(2, 0)), &["f", "2"]),
        xadd("a", NewId::Exact(sid(3, 0)), &["f", "3"]),
        xadd("b", NewId::Exact(sid(5, 0)), &["g", "5"]),
        xadd_trim(
            "empty",
            NewId::Exact(sid(1, 0)),
            &["f", "v"],
            Some(maxlen(0, 0)),
        ),
        set("str", "x"),
    ];
    for (i, command) in log.iter().enumerate() {
        store.apply(i as u64 + 1, command, 0).unwrap();
    }
    let after = |keys: &[(&str, StreamId)]| -> Vec<(Vec<u8>, StreamId)> {
        keys.iter()
            .map(|(k, id)| (k.as_bytes().to_vec(), *id))
            .collect()
    };
    let read =
        |keys: &[(&str, StreamId)], count| store.read_streams(&after(keys), count, 0, usize::MAX);
    // `b` holds nothing after 5-0, `missing` and `empty` nothing at all.
    assert_eq!(
        read(
            &[
                ("a", sid(1, 0)),
                ("b", sid(5, 0)),
                ("missing", StreamId::MIN),
                ("empty", StreamId::MIN)
            ],
            0
        )
        .unwrap(),
        Output::Streams(vec![(
            b"a".to_vec(),
            vec![entry(sid(2, 0), &["f", "2"]), entry(sid(3, 0), &["f", "3"])]
        )])
    );
    // In the order of the keys asked for, at most `count` from each.
    assert_eq!(
        read(&[("b", sid(4, 9)), ("a", StreamId::MIN)], 1).unwrap(),
        Output::Streams(vec![
            (b"b".to_vec(), vec![entry(sid(5, 0), &["g", "5"])]),
            (b"a".to_vec(), vec![entry(sid(1, 0), &["f", "1"])]),
        ])
    );
    assert_eq!(
        read(&[("a", StreamId::MAX), ("b", sid(9, 0))], 0).unwrap(),
        Output::Streams(Vec::new())
    );
    assert!(matches!(
        read(&[("a", StreamId::MIN), ("str", StreamId::MIN)], 0),
        Err(StoreError::WrongKind {
            found: ValueKind::String
        })
    ));
    // The key and each entry (41 bytes for its ID, besides its fields) count.
    let one = after(&[("b", StreamId::MIN)]);
    assert_eq!(
        store.read_streams(&one, 0, 0, 1 + 41 + 2).unwrap(),
        Output::Streams(vec![(b"b".to_vec(), vec![entry(sid(5, 0), &["g", "5"])])])
    );
    assert!(matches!(
        store.read_streams(&one, 0, 0, 1 + 41 + 1),
        Err(StoreError::ReadTooLarge { .. })
    ));
}

#[test]
fn a_transaction_reads_the_stream_its_own_xadd_wrote() {
    let store = KvStateMachine::in_memory().unwrap();
    store.apply(1, &set("str", "x"), 0).unwrap();
    let transaction = Command::Transaction {
        ops: vec![
            TxOp::Read(TxRead::Stream {
                key: b"s".to_vec(),
                read: StreamRead::LastId,
            }),
            TxOp::Write(xadd("s", NewId::Auto, &["f", "1"])),
            TxOp::Write(xadd("s", NewId::Auto, &["f", "2"])),
            TxOp::Read(TxRead::Stream {
                key: b"s".to_vec(),
                read: StreamRead::Len,
            }),
            TxOp::Read(TxRead::Stream {
                key: b"s".to_vec(),
                read: StreamRead::LastId,
            }),
            TxOp::Read(TxRead::XRead {
                after: vec![
                    (b"s".to_vec(), sid(1_000, 0)),
                    (b"none".to_vec(), StreamId::MIN),
                ],
                count: 0,
            }),
            TxOp::Read(TxRead::Type { key: b"s".to_vec() }),
            TxOp::Write(xdel("s", &[sid(1_000, 0)])),
            TxOp::Read(TxRead::Stream {
                key: b"s".to_vec(),
                read: WHOLE,
            }),
            TxOp::Read(TxRead::Stream {
                key: b"str".to_vec(),
                read: StreamRead::Len,
            }),
            TxOp::Read(TxRead::XRead {
                after: vec![
                    (b"s".to_vec(), StreamId::MIN),
                    (b"str".to_vec(), StreamId::MIN),
                ],
                count: 0,
            }),
        ],
        read_bytes_max: u64::MAX,
        watched: Vec::new(),
    };
    assert_eq!(
        store.apply(2, &transaction, 1_000).unwrap(),
        Output::Each(vec![
            Output::StreamId(None),
            Output::StreamId(Some(sid(1_000, 0))),
            Output::StreamId(Some(sid(1_000, 1))),
            Output::Count(2),
            Output::StreamId(Some(sid(1_000, 1))),
            Output::Streams(vec![(
                b"s".to_vec(),
                vec![entry(sid(1_000, 1), &["f", "2"])]
            )]),
            Output::Value(Some(b"stream".to_vec())),
            Output::Count(1),
            Output::Entries(Some(vec![entry(sid(1_000, 1), &["f", "2"])])),
            Output::Rejected(Rejection::WrongType),
            Output::Rejected(Rejection::WrongType),
        ])
    );
    assert_eq!(stream_ids(&store, "s", 1_000), [sid(1_000, 1)]);
    // The entries a transaction reads count against its budget.
    let bounded = Command::Transaction {
        ops: vec![TxOp::Read(TxRead::Stream {
            key: b"s".to_vec(),
            read: WHOLE,
        })],
        read_bytes_max: 10,
        watched: Vec::new(),
    };
    assert_eq!(
        store.apply(3, &bounded, 1_000).unwrap(),
        Output::Each(vec![Output::Rejected(Rejection::ReadTooLarge {
            bytes_max: 10
        })])
    );
}

/// A stream keeps its expiry through adds, deletes and trims, expires whole, and moves
/// with `RENAME` and `COPY`.
#[test]
fn streams_keep_their_expiry_and_move_whole() {
    let store = KvStateMachine::in_memory().unwrap();
    let mut index = 0;
    let mut apply = |command: Command, now_ms: u64| {
        index += 1;
        store.apply(index, &command, now_ms).unwrap()
    };
    apply(xadd("s", NewId::Exact(sid(5, 0)), &["f", "v"]), 0);
    let expire = Command::Expire {
        key: b"s".to_vec(),
        expire_at_ms: 1_000,
        condition: ExpireCondition::Always,
    };
    assert_eq!(apply(expire, 0), Output::Changed(true));
    apply(xadd("s", NewId::Exact(sid(6, 0)), &["f", "v"]), 0);
    apply(xdel("s", &[sid(5, 0)]), 0);
    apply(xtrim("s", maxlen(0, 0)), 0);
    assert_eq!(store.key_expiry(b"s", 0).unwrap(), KeyExpiry::At(1_000));
    let copy = Command::Copy {
        from: b"s".to_vec(),
        to: b"c".to_vec(),
        replace: false,
    };
    assert_eq!(apply(copy, 0), Output::Changed(true));
    let rename = Command::Rename {
        from: b"s".to_vec(),
        to: b"r".to_vec(),
        if_absent: false,
    };
    assert_eq!(apply(rename, 0), Output::Ok);
    assert_eq!(store.kind(b"r", 0).unwrap(), Some(ValueKind::Stream));
    assert_eq!(store.kind(b"c", 0).unwrap(), Some(ValueKind::Stream));
    assert_eq!(store.key_expiry(b"r", 0).unwrap(), KeyExpiry::At(1_000));
    assert_eq!(
        stream_read(&store, "c", &StreamRead::LastId),
        Output::StreamId(Some(sid(6, 0)))
    );
    // Expired, the stream is gone: an XADD starts a new one, with no expiry and from
    // 0-0, and NOMKSTREAM finds no stream.
    assert_eq!(store.kind(b"r", 1_001).unwrap(), None);
    let no_mkstream = Command::XAdd {
        key: b"r".to_vec(),
        id: NewId::Auto,
        fields: bytes_of(&["f", "v"]),
        no_mkstream: true,
        trim: None,
    };
    assert_eq!(apply(no_mkstream, 1_001), Output::StreamId(None));
    assert_eq!(
        apply(xadd("r", NewId::Exact(sid(1, 0)), &["f", "v"]), 1_001),
        Output::StreamId(Some(sid(1, 0)))
    );
    assert_eq!(store.key_expiry(b"r", 1_001).unwrap(), KeyExpiry::Never);
    assert_eq!(stream_ids(&store, "r", 1_001), [sid(1, 0)]);
}

/// A stream survives a restart; a stream record damaged in the file is reported as
/// corrupt by the reads and writes that look at what is damaged, and such a write is
/// not applied.
#[test]
fn a_damaged_stream_record_is_reported_as_corrupt() {
    use redb::ReadableTable;
    const RECORDS: redb::TableDefinition<'_, &[u8], &[u8]> = redb::TableDefinition::new("records");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    {
        let store = KvStateMachine::open(&path, StoreOptions::default()).unwrap();
        for (i, key) in ["s", "h"].into_iter().enumerate() {
            let at = i as u64 * 3;
            store
                .apply(at + 1, &xadd(key, NewId::Exact(sid(1, 0)), &["f", "v"]), 0)
                .unwrap();
            store
                .apply(at + 2, &xadd(key, NewId::Exact(sid(2, 0)), &["g", "w"]), 0)
                .unwrap();
            store.apply(at + 3, &xdel(key, &[sid(1, 0)]), 0).unwrap();
        }
    }
    {
        let store = KvStateMachine::open(&path, StoreOptions::default()).unwrap();
        assert_eq!(store.applied_index(), 6);
        for key in ["s", "h"] {
            assert_eq!(
                stream_read(&store, key, &WHOLE),
                Output::Entries(Some(vec![entry(sid(2, 0), &["g", "w"])]))
            );
            assert_eq!(
                stream_read(&store, key, &StreamRead::LastId),
                Output::StreamId(Some(sid(2, 0)))
            );
        }
        assert_eq!(
            store
                .apply(7, &xadd("s", NewId::Exact(sid(2, 0)), &["f", "v"]), 0)
                .unwrap(),
            Output::Rejected(Rejection::StreamIdTooSmall)
        );
    }
    {
        // A record is `expire_at_ms u64 | kind u8 | value`. `s` loses its last byte, so
        // its entry is cut short; `h` keeps 20 bytes of its value, part of its header.
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut records = txn.open_table(RECORDS).unwrap();
            let s = records.get(&b"s"[..]).unwrap().unwrap().value().to_vec();
            records.insert(&b"s"[..], &s[..s.len() - 1]).unwrap();
            let h = records.get(&b"h"[..]).unwrap().unwrap().value().to_vec();
            records.insert(&b"h"[..], &h[..9 + 20]).unwrap();
        }
        txn.commit().unwrap();
    }
    let store = KvStateMachine::open(&path, StoreOptions::default()).unwrap();
    for key in ["s", "h"] {
        assert_eq!(
            store.kind(key.as_bytes(), 0).unwrap(),
            Some(ValueKind::Stream)
        );
        // The length and last ID come from the header alone: `s`'s is whole.
        let header_reads = if key == "s" {
            Vec::new()
        } else {
            vec![StreamRead::Len, StreamRead::LastId]
        };
        for read in header_reads.into_iter().chain([WHOLE]) {
            let result = store.read_stream(key.as_bytes(), &read, 0, usize::MAX);
            assert!(
                matches!(result, Err(StoreError::CorruptRecord { .. })),
                "{key} {read:?}: {result:?}"
            );
        }
        let result = store.read_streams(&[(key.into(), StreamId::MIN)], 0, 0, usize::MAX);
        assert!(
            matches!(result, Err(StoreError::CorruptRecord { .. })),
            "{key}: {result:?}"
        );
        let mut writes = vec![
            xdel(key, &[sid(2, 0)]),
            xtrim(key, maxlen(0, 0)),
            // A trim that removes entries reads them all.
            xadd_trim(key, NewId::Auto, &["f", "v"], Some(maxlen(0, 0))),
        ];
        if key == "h" {
            // Without its header, nothing can be added.
            writes.push(xadd(key, NewId::Auto, &["f", "v"]));
        }
        for command in writes {
            let result = store.apply(8, &command, 0);
            assert!(
                matches!(result, Err(StoreError::CorruptRecord { .. })),
                "{command:?}: {result:?}"
            );
            assert_eq!(store.applied_index(), 7);
        }
    }
}

/// A stream command, as the model below takes it.
#[derive(Debug, Clone)]
enum StreamOp {
    Add(NewId, Option<Trim>, u64),
    Del(Vec<StreamId>),
    Trim(Trim),
}

fn stream_op() -> impl proptest::strategy::Strategy<Value = StreamOp> {
    use crate::strategies::{new_id, stream_id, trim};
    use proptest::prelude::*;
    prop_oneof![
        4 => (new_id(), proptest::option::of(trim()), 0u64..300)
            .prop_map(|(id, trim, now_ms)| StreamOp::Add(id, trim, now_ms)),
        1 => proptest::collection::vec(stream_id(), 1..3).prop_map(StreamOp::Del),
        1 => trim().prop_map(StreamOp::Trim),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    /// Adds, deletes and trims through the store give the answers, entries and last ID
    /// of a plain model of a stream.
    #[test]
    fn stream_writes_match_a_model(ops in proptest::collection::vec(stream_op(), 1..40)) {
        let store = KvStateMachine::in_memory().unwrap();
        // The entries (each with its number as its value) and the last ID, once there
        // is a stream.
        let mut model: Option<(Vec<(StreamId, u64)>, StreamId)> = None;
        let trimmed = |entries: &mut Vec<(StreamId, u64)>, trim: &Trim| {
            let over = match trim.by {
                TrimBy::MaxLen(max) => entries.len().saturating_sub(max as usize),
                TrimBy::MinId(min) => entries.iter().filter(|(id, _)| *id < min).count(),
            };
            let gone = if trim.limit == 0 { over } else { over.min(trim.limit as usize) };
            entries.drain(..gone);
            gone as u64
        };
        for (n, op) in ops.iter().enumerate() {
            let index = n as u64 + 1;
            let (command, now_ms, expected) = match op {
                StreamOp::Add(id, trim, now_ms) => {
                    let (entries, last) = model.get_or_insert_with(|| (Vec::new(), StreamId::MIN));
                    let given = match *id {
                        _ if *last == StreamId::MAX => Err(Rejection::StreamExhausted),
                        NewId::Auto if *now_ms > last.ms => Ok(sid(*now_ms, 0)),
                        NewId::Auto => Ok(last.next().unwrap()),
                        NewId::AutoSeq(ms) if ms == last.ms => last
                            .seq
                            .checked_add(1)
                            .map(|seq| sid(ms, seq))
                            .ok_or(Rejection::StreamIdTooSmall),
                        NewId::AutoSeq(ms) => Ok(sid(ms, 0)),
                        NewId::Exact(id) => Ok(id),
                    }
                    .and_then(|id| {
                        if id > *last { Ok(id) } else { Err(Rejection::StreamIdTooSmall) }
                    });
                    let expected = match given {
                        Ok(id) => {
                            *last = id;
                            entries.push((id, index));
                            if let Some(trim) = trim {
                                trimmed(entries, trim);
                            }
                            Output::StreamId(Some(id))
                        }
                        Err(refused) => {
                            // A refused add to a new stream makes none.
                            if entries.is_empty() && *last == StreamId::MIN {
                                model = None;
                            }
                            Output::Rejected(refused)
                        }
                    };
                    let fields = vec![b"n".to_vec(), index.to_string().into_bytes()];
                    let command = Command::XAdd {
                        key: b"s".to_vec(),
                        id: *id,
                        fields,
                        no_mkstream: false,
                        trim: *trim,
                    };
                    (command, *now_ms, expected)
                }
                StreamOp::Del(ids) => {
                    let gone = model.as_mut().map_or(0, |(entries, _)| {
                        let before = entries.len();
                        entries.retain(|(id, _)| !ids.contains(id));
                        (before - entries.len()) as u64
                    });
                    (xdel("s", ids), 0, Output::Count(gone))
                }
                StreamOp::Trim(trim) => {
                    let gone = model.as_mut().map_or(0, |(entries, _)| trimmed(entries, trim));
                    (xtrim("s", *trim), 0, Output::Count(gone))
                }
            };
            proptest::prop_assert_eq!(store.apply(index, &command, now_ms).unwrap(), expected, "{:?}", op);
            let (entries, last) = match &model {
                Some((entries, last)) => (
                    entries
                        .iter()
                        .map(|(id, n)| StreamEntry {
                            id: *id,
                            fields: vec![b"n".to_vec(), n.to_string().into_bytes()],
                        })
                        .collect(),
                    Some(*last),
                ),
                None => (Vec::new(), None),
            };
            proptest::prop_assert_eq!(
                store.kind(b"s", 0).unwrap(),
                last.map(|_| ValueKind::Stream)
            );
            proptest::prop_assert_eq!(stream_read(&store, "s", &WHOLE), Output::Entries(Some(entries)));
            proptest::prop_assert_eq!(
                stream_read(&store, "s", &StreamRead::LastId),
                Output::StreamId(last)
            );
        }
    }
}
