//! `redis`, the Rust client most applications use, against the server: its commands,
//! pipelines, transactions, scans, hashes, sets and INFO parsing, in RESP2 and in RESP3.

use std::collections::{HashMap, HashSet};

use aegis_node::ServerConfig;
use redis::{Commands, InfoDict, RedisResult};

use crate::support::start_local;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_crate_works_unchanged() {
    let fx = start_local(ServerConfig::default()).await;
    let port = fx.addr.port();
    for (url, prefix) in [
        (format!("redis://127.0.0.1:{port}/"), "two"),
        (format!("redis://127.0.0.1:{port}/?protocol=resp3"), "three"),
    ] {
        tokio::task::spawn_blocking(move || exercise(&url, prefix))
            .await
            .expect("no panic")
            .unwrap_or_else(|e| panic!("{prefix}: {e}"));
    }
    fx.stop().await;
}

/// A round of what applications do, on keys that start with `prefix`.
fn exercise(url: &str, prefix: &str) -> RedisResult<()> {
    let key = |name: &str| format!("{prefix}:{name}");
    let mut con = redis::Client::open(url)?.get_connection()?;

    let () = con.set(key("greeting"), "hello")?;
    assert_eq!(con.get::<_, String>(key("greeting"))?, "hello");
    assert_eq!(con.get::<_, Option<String>>(key("missing"))?, None);
    assert_eq!(con.incr::<_, _, i64>(key("n"), 5)?, 5);
    // A float delta is INCRBYFLOAT.
    assert_eq!(con.incr::<_, _, f64>(key("f"), 0.25)?, 0.25);
    assert_eq!(con.incr::<_, _, f64>(key("f"), 0.5)?, 0.75);
    let () = con.set_ex(key("temp"), "x", 100)?;
    assert_eq!(con.ttl::<_, i64>(key("temp"))?, 100);

    // A pipeline, and the same commands as one MULTI/EXEC.
    let (n, greeting): (i64, String) = redis::pipe()
        .incr(key("n"), 1)
        .get(key("greeting"))
        .query(&mut con)?;
    assert_eq!((n, greeting.as_str()), (6, "hello"));
    let (n, greeting): (i64, String) = redis::pipe()
        .atomic()
        .incr(key("n"), 1)
        .get(key("greeting"))
        .query(&mut con)?;
    assert_eq!((n, greeting.as_str()), (7, "hello"));

    // The client's check-and-set helper: WATCH, read, MULTI/EXEC.
    let (doubled,): (i64,) = redis::transaction(&mut con, &[key("n")], |con, pipe| {
        let n: i64 = con.get(key("n"))?;
        pipe.set(key("n"), n * 2).ignore().get(key("n")).query(con)
    })?;
    assert_eq!(doubled, 14);

    for i in 0..25 {
        let () = con.set(key(&format!("user:{i}")), i)?;
    }
    let mut users = con
        .scan_match(key("user:*"))?
        .collect::<RedisResult<Vec<String>>>()?;
    users.sort();
    users.dedup();
    assert_eq!(users.len(), 25);

    let _: bool = con.setbit(key("bits"), 7, true)?;
    assert!(con.getbit::<_, bool>(key("bits"), 7)?);
    assert_eq!(con.bitcount::<_, i64>(key("bits"))?, 1);
    let () = con.rename(key("greeting"), key("welcome"))?;
    let values: Vec<Option<String>> = con.mget(&[key("welcome"), key("greeting")])?;
    assert_eq!(values, [Some("hello".to_owned()), None]);

    // Hashes, read into the client's own maps; inside a transaction too.
    let user = key("profile");
    let () = con.hset_multiple(&user, &[("name", "ada"), ("lang", "rust")])?;
    assert_eq!(con.hincr::<_, _, _, i64>(&user, "visits", 3)?, 3);
    let profile: HashMap<String, String> = con.hgetall(&user)?;
    assert_eq!(profile.len(), 3);
    assert_eq!(profile["lang"], "rust");
    assert_eq!(con.hget::<_, _, String>(&user, "name")?, "ada");
    assert!(!con.hexists::<_, _, bool>(&user, "email")?);
    let (len, all): (i64, HashMap<String, String>) = redis::pipe()
        .atomic()
        .hlen(&user)
        .hgetall(&user)
        .query(&mut con)?;
    assert_eq!((len, all), (3, profile));
    assert_eq!(
        con.hdel::<_, _, i64>(&user, &["name", "lang", "visits"])?,
        3
    );
    assert!(!con.exists::<_, bool>(&user)?);
    let err = con.hget::<_, _, String>(key("welcome"), "f").unwrap_err();
    assert_eq!(err.code(), Some("WRONGTYPE"));

    // Sets, read into the client's own sets.
    let tags = key("tags");
    assert_eq!(con.sadd::<_, _, i64>(&tags, &["red", "blue", "red"])?, 2);
    let members: HashSet<String> = con.smembers(&tags)?;
    assert_eq!(
        members,
        HashSet::from(["red".to_owned(), "blue".to_owned()])
    );
    assert!(con.sismember::<_, _, bool>(&tags, "blue")?);
    let (card, both): (i64, HashSet<String>) = redis::pipe()
        .atomic()
        .scard(&tags)
        .sinter(&[&tags, &tags])
        .query(&mut con)?;
    assert_eq!((card, both), (2, members));
    assert_eq!(con.srem::<_, _, i64>(&tags, &["red", "blue"])?, 2);

    // The client reads INFO into a map of its own.
    let info: InfoDict = redis::cmd("INFO").query(&mut con)?;
    assert_eq!(info.get::<String>("role").as_deref(), Some("leader"));
    assert!(info.get::<i64>("connected_clients").is_some_and(|n| n >= 1));
    assert!(
        info.get::<i64>("total_commands_processed")
            .is_some_and(|n| n > 0)
    );
    Ok(())
}
