//! The RESP server end to end: a real TCP client on loopback against a LocalReplicator.

use std::time::Duration;

use aegis_node::config::ServerSection;
use aegis_node::{LocalReplicator, ReadConsistency, ServerConfig};
use redis_protocol::resp2::types::OwnedFrame;
use redis_protocol::resp3::types::OwnedFrame as Resp3;

use crate::support::{
    Client, FollowerReplicator, START_MS, assert_err_starts, bulk, err, simple, start_local,
    start_with,
};

fn with_password(password: &str) -> ServerConfig {
    ServerConfig {
        password: Some(password.to_owned()),
        ..ServerConfig::default()
    }
}

fn with_server(edit: impl FnOnce(&mut ServerSection)) -> ServerConfig {
    let mut config = ServerConfig::default();
    edit(&mut config.server);
    config
}

#[tokio::test]
async fn ping_echo_and_strings() {
    let fx = start_local(ServerConfig::default()).await;
    let mut c = fx.client().await;
    assert_eq!(c.cmd(&["PING"]).await, simple("PONG"));
    assert_eq!(c.cmd(&["ping", "hello"]).await, bulk("hello"));
    assert_eq!(c.cmd(&["ECHO", "a b"]).await, bulk("a b"));
    assert_eq!(c.cmd(&["SET", "k", "v"]).await, simple("OK"));
    assert_eq!(c.cmd(&["GET", "k"]).await, bulk("v"));
    assert_eq!(c.cmd(&["GET", "missing"]).await, OwnedFrame::Null);
    // Binary-safe keys and values.
    let value: &[u8] = b"\x00\r\n\xff";
    assert_eq!(
        c.cmd_bytes(&[b"SET", b"\x01bin", value]).await,
        simple("OK")
    );
    assert_eq!(
        c.cmd_bytes(&[b"GET", b"\x01bin"]).await,
        OwnedFrame::BulkString(value.to_vec())
    );
    assert_eq!(
        c.cmd(&["EXISTS", "k", "k", "missing"]).await,
        OwnedFrame::Integer(2)
    );
    assert_eq!(
        c.cmd(&["DEL", "k", "missing", "k"]).await,
        OwnedFrame::Integer(1)
    );
    assert_eq!(c.cmd(&["GET", "k"]).await, OwnedFrame::Null);
    assert_eq!(c.cmd(&["MSET", "a", "1", "b", "2"]).await, simple("OK"));
    assert_eq!(
        c.cmd(&["MGET", "a", "nope", "b"]).await,
        OwnedFrame::Array(vec![bulk("1"), OwnedFrame::Null, bulk("2")])
    );
    fx.stop().await;
}

#[tokio::test]
async fn set_options() {
    let fx = start_local(ServerConfig::default()).await;
    let mut c = fx.client().await;
    assert_eq!(c.cmd(&["SET", "k", "1", "NX"]).await, simple("OK"));
    assert_eq!(c.cmd(&["SET", "k", "2", "nx"]).await, OwnedFrame::Null);
    assert_eq!(c.cmd(&["SET", "k", "3", "XX"]).await, simple("OK"));
    assert_eq!(c.cmd(&["SET", "other", "3", "XX"]).await, OwnedFrame::Null);
    assert_eq!(c.cmd(&["GET", "k"]).await, bulk("3"));
    assert_eq!(c.cmd(&["GET", "other"]).await, OwnedFrame::Null);

    let syntax = err("ERR syntax error");
    assert_eq!(c.cmd(&["SET", "k", "v", "NX", "XX"]).await, syntax);
    assert_eq!(
        c.cmd(&["SET", "k", "v", "EX", "1", "PX", "5"]).await,
        syntax
    );
    assert_eq!(c.cmd(&["SET", "k", "v", "EX"]).await, syntax);
    assert_eq!(
        c.cmd(&["SET", "k", "v", "EX", "5", "KEEPTTL"]).await,
        syntax
    );
    assert_eq!(
        c.cmd(&["SET", "k", "v", "KEEPTTL", "PX", "5"]).await,
        syntax
    );
    // The whole syntax is checked before the expiry, as Redis does.
    assert_eq!(
        c.cmd(&["SET", "k", "v", "EX", "soon", "bogus"]).await,
        syntax
    );
    let not_int = err("ERR value is not an integer or out of range");
    assert_eq!(c.cmd(&["SET", "k", "v", "EX", "soon"]).await, not_int);
    // Integers are strict: no sign `+`, no leading zero, no spaces.
    for loose in ["+5", "05", " 5", "5 ", "-0", ""] {
        assert_eq!(
            c.cmd(&["SET", "k", "v", "EX", loose]).await,
            not_int,
            "{loose:?}"
        );
    }
    for bad in ["0", "-5"] {
        assert_eq!(
            c.cmd(&["SET", "k", "v", "PX", bad]).await,
            err("ERR invalid expire time in 'set' command")
        );
    }
    assert_eq!(
        c.cmd(&["SET", "k", "v", "EX", "9223372036854775807"]).await,
        err("ERR invalid expire time in 'set' command")
    );
    // Nothing above changed the value.
    assert_eq!(c.cmd(&["GET", "k"]).await, bulk("3"));
    fx.stop().await;
}

#[tokio::test]
async fn set_get_and_keepttl() {
    let fx = start_local(with_server(|s| s.expire_purge_interval_ms = 0)).await;
    let mut c = fx.client().await;
    // GET answers with the value replaced, or nil.
    assert_eq!(c.cmd(&["SET", "k", "1", "GET"]).await, OwnedFrame::Null);
    assert_eq!(c.cmd(&["SET", "k", "2", "get"]).await, bulk("1"));
    // With a condition, the old value comes back whether or not the write happened.
    assert_eq!(c.cmd(&["SET", "k", "3", "NX", "GET"]).await, bulk("2"));
    assert_eq!(c.cmd(&["GET", "k"]).await, bulk("2"));
    assert_eq!(
        c.cmd(&["SET", "new", "v", "GET", "XX"]).await,
        OwnedFrame::Null
    );
    assert_eq!(c.cmd(&["EXISTS", "new"]).await, OwnedFrame::Integer(0));
    assert_eq!(c.cmd(&["SET", "k", "4", "XX", "GET"]).await, bulk("2"));
    assert_eq!(c.cmd(&["GET", "k"]).await, bulk("4"));

    // KEEPTTL keeps the expiry; a plain SET clears it.
    assert_eq!(c.cmd(&["SET", "t", "a", "PX", "1000"]).await, simple("OK"));
    assert_eq!(c.cmd(&["SET", "t", "b", "KEEPTTL"]).await, simple("OK"));
    assert_eq!(c.cmd(&["PTTL", "t"]).await, OwnedFrame::Integer(1000));
    assert_eq!(c.cmd(&["SET", "t", "c", "KEEPTTL", "GET"]).await, bulk("b"));
    fx.clock.advance(400);
    assert_eq!(c.cmd(&["PTTL", "t"]).await, OwnedFrame::Integer(600));
    assert_eq!(c.cmd(&["SET", "t", "d"]).await, simple("OK"));
    assert_eq!(c.cmd(&["PTTL", "t"]).await, OwnedFrame::Integer(-1));
    // On a key without a live value KEEPTTL keeps nothing: the key never expires.
    assert_eq!(c.cmd(&["SET", "u", "a", "PX", "10"]).await, simple("OK"));
    fx.clock.advance(11);
    assert_eq!(
        c.cmd(&["SET", "u", "b", "KEEPTTL", "GET"]).await,
        OwnedFrame::Null
    );
    assert_eq!(c.cmd(&["PTTL", "u"]).await, OwnedFrame::Integer(-1));

    // Repeating the same expiry option is allowed; the last one counts.
    assert_eq!(
        c.cmd(&["SET", "r", "v", "EX", "10", "ex", "20"]).await,
        simple("OK")
    );
    assert_eq!(c.cmd(&["TTL", "r"]).await, OwnedFrame::Integer(20));
    assert_eq!(
        c.cmd(&["SET", "r", "v", "KEEPTTL", "KEEPTTL", "NX", "NX"])
            .await,
        OwnedFrame::Null
    );
    fx.stop().await;
}

#[tokio::test]
async fn more_string_commands() {
    let fx = start_local(with_server(|s| s.expire_purge_interval_ms = 0)).await;
    let mut c = fx.client().await;
    let int = OwnedFrame::Integer;
    assert_eq!(c.cmd(&["SETNX", "a", "1"]).await, int(1));
    assert_eq!(c.cmd(&["SETNX", "a", "2"]).await, int(0));
    assert_eq!(c.cmd(&["GETSET", "a", "3"]).await, bulk("1"));
    assert_eq!(c.cmd(&["GETSET", "fresh", "x"]).await, OwnedFrame::Null);
    assert_eq!(c.cmd(&["GETDEL", "a"]).await, bulk("3"));
    assert_eq!(c.cmd(&["GETDEL", "a"]).await, OwnedFrame::Null);
    assert_eq!(c.cmd(&["EXISTS", "a"]).await, int(0));

    assert_eq!(c.cmd(&["SETEX", "s", "10", "v"]).await, simple("OK"));
    assert_eq!(c.cmd(&["PTTL", "s"]).await, int(10_000));
    assert_eq!(c.cmd(&["PSETEX", "p", "1500", "v"]).await, simple("OK"));
    assert_eq!(c.cmd(&["PTTL", "p"]).await, int(1_500));
    for (args, message) in [
        (
            ["SETEX", "s", "0", "v"],
            "ERR invalid expire time in 'setex' command",
        ),
        (
            ["PSETEX", "s", "-1", "v"],
            "ERR invalid expire time in 'psetex' command",
        ),
        (
            ["SETEX", "s", "x", "v"],
            "ERR value is not an integer or out of range",
        ),
    ] {
        assert_eq!(c.cmd(&args).await, err(message), "{args:?}");
    }

    // APPEND keeps the expiry and answers with the new length.
    assert_eq!(c.cmd(&["APPEND", "s", "xyz"]).await, int(4));
    assert_eq!(c.cmd(&["GET", "s"]).await, bulk("vxyz"));
    assert_eq!(c.cmd(&["PTTL", "s"]).await, int(10_000));
    assert_eq!(c.cmd(&["APPEND", "new", "abc"]).await, int(3));
    assert_eq!(c.cmd(&["STRLEN", "s"]).await, int(4));
    assert_eq!(c.cmd(&["STRLEN", "missing"]).await, int(0));

    // GETEX changes the expiry and answers with the value; alone, it only reads.
    assert_eq!(c.cmd(&["GETEX", "new", "EX", "100"]).await, bulk("abc"));
    assert_eq!(c.cmd(&["TTL", "new"]).await, int(100));
    assert_eq!(c.cmd(&["GETEX", "new"]).await, bulk("abc"));
    assert_eq!(c.cmd(&["TTL", "new"]).await, int(100));
    assert_eq!(c.cmd(&["GETEX", "new", "persist"]).await, bulk("abc"));
    assert_eq!(c.cmd(&["TTL", "new"]).await, int(-1));
    assert_eq!(
        c.cmd(&["GETEX", "missing", "PX", "5"]).await,
        OwnedFrame::Null
    );
    let syntax = err("ERR syntax error");
    assert_eq!(c.cmd(&["GETEX", "new", "EX", "1", "PX", "2"]).await, syntax);
    assert_eq!(c.cmd(&["GETEX", "new", "PERSIST", "EX", "1"]).await, syntax);
    assert_eq!(
        c.cmd(&["GETEX", "new", "EX", "0"]).await,
        err("ERR invalid expire time in 'getex' command")
    );
    // An absolute expiry already past deletes the key.
    assert_eq!(c.cmd(&["GETEX", "new", "EXAT", "1"]).await, bulk("abc"));
    assert_eq!(c.cmd(&["EXISTS", "new"]).await, int(0));

    // MSETNX sets all or nothing.
    assert_eq!(c.cmd(&["MSETNX", "m1", "1", "m2", "2"]).await, int(1));
    assert_eq!(c.cmd(&["MSETNX", "m2", "3", "m3", "4"]).await, int(0));
    assert_eq!(
        c.cmd(&["MGET", "m1", "m2", "m3"]).await,
        OwnedFrame::Array(vec![bulk("1"), bulk("2"), OwnedFrame::Null])
    );
    assert_eq!(
        c.cmd(&["MSETNX", "m1", "1", "m2"]).await,
        err("ERR wrong number of arguments for 'msetnx' command")
    );
    assert_eq!(c.cmd(&["UNLINK", "m1", "m2", "m3"]).await, int(2));
    // fresh, s, p.
    assert_eq!(c.cmd(&["DBSIZE"]).await, int(3));
    fx.stop().await;
}

/// `RENAME`, `COPY`, `GETRANGE`, `SETRANGE`, `INCRBYFLOAT`, `TOUCH`, `TIME` and `CONFIG
/// GET` answer as Redis 7 does.
#[tokio::test]
async fn keyspace_ranges_and_floats() {
    let fx = start_local(with_server(|s| s.expire_purge_interval_ms = 0)).await;
    let mut c = fx.client().await;
    let int = OwnedFrame::Integer;
    let no_such_key = err("ERR no such key");

    assert_eq!(
        c.cmd(&["SET", "a", "Hello World", "EX", "100"]).await,
        simple("OK")
    );
    assert_eq!(c.cmd(&["RENAME", "a", "b"]).await, simple("OK"));
    assert_eq!(c.cmd(&["TTL", "b"]).await, int(100));
    assert_eq!(c.cmd(&["EXISTS", "a"]).await, int(0));
    assert_eq!(c.cmd(&["RENAME", "a", "b"]).await, no_such_key);
    assert_eq!(c.cmd(&["RENAMENX", "a", "b"]).await, no_such_key);
    assert_eq!(c.cmd(&["RENAME", "b", "b"]).await, simple("OK"));
    assert_eq!(c.cmd(&["SET", "c", "other"]).await, simple("OK"));
    assert_eq!(c.cmd(&["RENAMENX", "b", "c"]).await, int(0));
    assert_eq!(c.cmd(&["RENAMENX", "c", "d"]).await, int(1));

    assert_eq!(c.cmd(&["COPY", "b", "e"]).await, int(1));
    assert_eq!(c.cmd(&["TTL", "e"]).await, int(100));
    assert_eq!(c.cmd(&["COPY", "d", "e"]).await, int(0));
    assert_eq!(
        c.cmd(&["COPY", "d", "e", "db", "0", "REPLACE"]).await,
        int(1)
    );
    assert_eq!(c.cmd(&["GET", "e"]).await, bulk("other"));
    assert_eq!(c.cmd(&["COPY", "missing", "e", "REPLACE"]).await, int(0));
    for (args, message) in [
        (
            &["COPY", "d", "d"][..],
            "ERR source and destination objects are the same",
        ),
        (
            &["COPY", "d", "f", "DB", "1"],
            "ERR DB index is out of range",
        ),
        (
            &["COPY", "d", "f", "DB", "x"],
            "ERR value is not an integer or out of range",
        ),
        (&["COPY", "d", "f", "DB"], "ERR syntax error"),
        (&["COPY", "d", "f", "NOW"], "ERR syntax error"),
    ] {
        assert_eq!(c.cmd(args).await, err(message), "{args:?}");
    }

    for (start, end, picked) in [
        ("0", "4", "Hello"),
        ("-5", "-1", "World"),
        ("-1", "-5", ""),
        ("0", "-1", "Hello World"),
        ("6", "1000", "World"),
        ("100", "200", ""),
        ("-100", "2", "Hel"),
        ("5", "3", ""),
        ("-9223372036854775808", "9223372036854775807", "Hello World"),
    ] {
        assert_eq!(
            c.cmd(&["GETRANGE", "b", start, end]).await,
            bulk(picked),
            "{start} {end}"
        );
    }
    assert_eq!(c.cmd(&["SUBSTR", "b", "0", "4"]).await, bulk("Hello"));
    assert_eq!(c.cmd(&["GETRANGE", "missing", "0", "4"]).await, bulk(""));
    assert_eq!(
        c.cmd(&["GETRANGE", "b", "x", "4"]).await,
        err("ERR value is not an integer or out of range")
    );

    // SETRANGE pads with zero bytes and keeps the expiry; an empty value writes nothing.
    assert_eq!(c.cmd(&["SETRANGE", "b", "6", "Redis"]).await, int(11));
    assert_eq!(c.cmd(&["GET", "b"]).await, bulk("Hello Redis"));
    assert_eq!(c.cmd(&["SETRANGE", "b", "13", "!"]).await, int(14));
    assert_eq!(
        c.cmd_bytes(&[b"GET", b"b"]).await,
        OwnedFrame::BulkString(b"Hello Redis\0\0!".to_vec())
    );
    assert_eq!(c.cmd(&["TTL", "b"]).await, int(100));
    assert_eq!(c.cmd(&["SETRANGE", "none", "5", ""]).await, int(0));
    assert_eq!(c.cmd(&["EXISTS", "none"]).await, int(0));
    assert_eq!(
        c.cmd(&["SETRANGE", "b", "-1", "x"]).await,
        err("ERR offset is out of range")
    );
    assert_err_starts(
        &c.cmd(&["SETRANGE", "b", "536870912", "x"]).await,
        "ERR string exceeds maximum allowed size",
    );

    // INCRBYFLOAT adds in decimal: 0.1 + 0.2 is 0.3.
    assert_eq!(c.cmd(&["INCRBYFLOAT", "f", "0.1"]).await, bulk("0.1"));
    assert_eq!(c.cmd(&["INCRBYFLOAT", "f", "0.2"]).await, bulk("0.3"));
    assert_eq!(c.cmd(&["INCRBYFLOAT", "f", "5.0e3"]).await, bulk("5000.3"));
    assert_eq!(c.cmd(&["INCRBYFLOAT", "f", "-5000.3"]).await, bulk("0"));
    assert_eq!(
        c.cmd(&["INCRBYFLOAT", "b", "1"]).await,
        err("ERR value is not a valid float")
    );
    assert_eq!(
        c.cmd(&["INCRBYFLOAT", "f", "1x"]).await,
        err("ERR value is not a valid float")
    );
    assert_eq!(
        c.cmd(&["INCRBYFLOAT", "f", "-inf"]).await,
        err("ERR increment would produce NaN or Infinity")
    );
    assert_eq!(c.cmd(&["SET", "h", "9e4932"]).await, simple("OK"));
    assert_eq!(
        c.cmd(&["INCRBYFLOAT", "h", "9e4932"]).await,
        err("ERR increment would produce NaN or Infinity")
    );
    assert_eq!(c.cmd(&["GET", "h"]).await, bulk("9e4932"));
    assert_eq!(c.cmd(&["SET", "g", "10", "EX", "50"]).await, simple("OK"));
    assert_eq!(c.cmd(&["INCRBYFLOAT", "g", "0.5"]).await, bulk("10.5"));
    assert_eq!(c.cmd(&["TTL", "g"]).await, int(50));

    // TOUCH counts the keys that hold a value, as EXISTS does.
    assert_eq!(c.cmd(&["TOUCH", "b", "g", "missing", "b"]).await, int(3));
    assert_eq!(c.cmd(&["TOUCH", "f"]).await, int(1));
    let now_s = (START_MS / 1000).to_string();
    let now_us = ((START_MS % 1000) * 1000).to_string();
    assert_eq!(
        c.cmd(&["TIME"]).await,
        OwnedFrame::Array(vec![bulk(&now_s), bulk(&now_us)])
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "maxmemory*", "DATABASES"]).await,
        OwnedFrame::Array(vec![
            bulk("databases"),
            bulk("1"),
            bulk("maxmemory"),
            bulk("0"),
            bulk("maxmemory-policy"),
            bulk("noeviction"),
        ])
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "nothing"]).await,
        OwnedFrame::Array(Vec::new())
    );
    // MEMORY USAGE: the key, the value, the expiry's 8 bytes and the kind's 1.
    assert_eq!(c.cmd(&["MEMORY", "USAGE", "g"]).await, int(1 + 4 + 9));
    assert_eq!(
        c.cmd(&["MEMORY", "usage", "g", "SAMPLES", "0"]).await,
        int(14)
    );
    assert_eq!(
        c.cmd(&["MEMORY", "USAGE", "missing"]).await,
        OwnedFrame::Null
    );
    assert_eq!(
        c.cmd(&["MEMORY", "USAGE", "g", "SAMPLES", "x"]).await,
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(
        c.cmd(&["MEMORY", "USAGE", "g", "x"]).await,
        err("ERR syntax error")
    );
    assert_eq!(
        c.cmd(&["MEMORY", "USAGE"]).await,
        err("ERR wrong number of arguments for 'memory|usage' command")
    );
    assert_err_starts(
        &c.cmd(&["MEMORY", "STATS"]).await,
        "ERR unknown subcommand 'STATS'",
    );
    assert_err_starts(
        &c.cmd(&["CONFIG", "SET", "maxmemory", "1"]).await,
        "ERR CONFIG SET is not supported",
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET"]).await,
        err("ERR wrong number of arguments for 'config|get' command")
    );
    fx.stop().await;
}

/// `SETBIT`, `GETBIT`, `BITCOUNT`, `BITPOS` and `BITOP`, with the answers and errors of
/// Redis 7.0 on the same values.
#[tokio::test]
async fn bitmaps() {
    let fx = start_local(with_server(|s| s.request_bytes_max = 1 << 20)).await;
    let mut c = fx.client().await;
    let int = OwnedFrame::Integer;
    assert_eq!(c.cmd(&["SET", "s", "foobar"]).await, simple("OK"));
    c.cmd_bytes(&[b"SET", b"p", b"\xff\xf0\x00"]).await;
    c.cmd_bytes(&[b"SET", b"q", b"\x00\xff\xf0"]).await;
    c.cmd(&["SET", "z", ""]).await;
    for (args, answer) in [
        (&["BITCOUNT", "s"][..], 26),
        (&["BITCOUNT", "s", "0", "0"], 4),
        (&["BITCOUNT", "s", "1", "1", "BYTE"], 6),
        (&["BITCOUNT", "s", "5", "30", "bit"], 17),
        (&["BITCOUNT", "s", "-2", "-1"], 7),
        (&["BITCOUNT", "s", "-1", "-2"], 0),
        (&["BITPOS", "p", "0"], 12),
        (&["BITPOS", "p", "0", "0", "-1"], 12),
        (&["BITPOS", "p", "1", "1"], 8),
        (&["BITPOS", "q", "1", "0"], 8),
        (&["BITPOS", "q", "1", "2"], 16),
        (&["BITPOS", "q", "1", "7", "15", "BIT"], 8),
        (&["BITPOS", "q", "0", "8", "-1", "BIT"], 20),
        (&["BITPOS", "q", "0", "8", "-9", "BIT"], -1),
        (&["BITPOS", "missing", "0"], 0),
        (&["BITPOS", "missing", "1"], -1),
        (&["BITPOS", "z", "0"], -1),
        (&["GETBIT", "q", "8"], 1),
        (&["GETBIT", "q", "1000"], 0),
        // A key without a value is answered before its range is read.
        (&["BITCOUNT", "missing", "1"], 0),
        // And reversed negative ends count nothing before the unit is read.
        (&["BITCOUNT", "s", "-1", "-2", "NOUNIT"], 0),
        (&["BITPOS", "missing", "1", "x"], -1),
    ] {
        assert_eq!(c.cmd(args).await, int(answer), "{args:?}");
    }
    let not_an_integer = err("ERR value is not an integer or out of range");
    let bad_offset = err("ERR bit offset is not an integer or out of range");
    for (args, refused) in [
        (&["BITCOUNT", "s", "x", "y"][..], not_an_integer.clone()),
        (&["BITCOUNT", "s", "1"], err("ERR syntax error")),
        (&["BITCOUNT", "s", "0", "y", "FOO"], not_an_integer),
        (
            &["BITPOS", "s", "1", "0", "y", "FOO"],
            err("ERR syntax error"),
        ),
        (
            &["BITPOS", "s", "2"],
            err("ERR The bit argument must be 1 or 0."),
        ),
        (&["GETBIT", "s", "-1"], bad_offset.clone()),
        // Offsets stop at the request limit, 1 MiB here: 8,388,608 bits.
        (&["GETBIT", "s", "8388608"], bad_offset.clone()),
        (&["SETBIT", "s", "8388608", "1"], bad_offset),
        (
            &["SETBIT", "s", "1", "2"],
            err("ERR bit is not an integer or out of range"),
        ),
        (
            &["BITOP", "NOT", "d", "a", "b"],
            err("ERR BITOP NOT must be called with a single source key."),
        ),
        (&["BITOP", "NAND", "d", "a"], err("ERR syntax error")),
    ] {
        assert_eq!(c.cmd(args).await, refused, "{args:?}");
    }
    assert_eq!(c.cmd(&["GETBIT", "s", "8388607"]).await, int(0));

    // SETBIT grows the value with zero bytes and keeps the expiry.
    assert_eq!(c.cmd(&["SET", "b", "a", "EX", "100"]).await, simple("OK"));
    assert_eq!(c.cmd(&["SETBIT", "b", "1", "0"]).await, int(1));
    assert_eq!(c.cmd(&["SETBIT", "b", "23", "1"]).await, int(0));
    assert_eq!(
        c.cmd_bytes(&[b"GET", b"b"]).await,
        OwnedFrame::BulkString(vec![0b0010_0001, 0, 1])
    );
    assert_eq!(c.cmd(&["TTL", "b"]).await, int(100));
    // BITOP stores without an expiry; only missing sources remove the destination.
    assert_eq!(c.cmd(&["BITOP", "XOR", "b", "b", "p"]).await, int(3));
    assert_eq!(
        c.cmd_bytes(&[b"GET", b"b"]).await,
        OwnedFrame::BulkString(vec![0b1101_1110, 0xf0, 1])
    );
    assert_eq!(c.cmd(&["TTL", "b"]).await, int(-1));
    assert_eq!(
        c.cmd(&["BITOP", "and", "b", "none", "nothing"]).await,
        int(0)
    );
    assert_eq!(c.cmd(&["EXISTS", "b"]).await, int(0));

    // Inside MULTI, the reads see the writes queued before them.
    assert_eq!(c.cmd(&["MULTI"]).await, simple("OK"));
    c.cmd(&["SETBIT", "m", "7", "1"]).await;
    c.cmd(&["BITCOUNT", "m"]).await;
    c.cmd(&["BITPOS", "m", "1"]).await;
    c.cmd(&["GETBIT", "m", "7"]).await;
    assert_eq!(
        c.cmd(&["EXEC"]).await,
        OwnedFrame::Array(vec![int(0), int(1), int(7), int(1)])
    );
    fx.stop().await;
}

/// APPEND refuses to grow a value past what one request may carry.
#[tokio::test]
async fn hashes() {
    let fx = start_local(ServerConfig::default()).await;
    let mut c = fx.client().await;
    let int = OwnedFrame::Integer;
    let array = |items: &[&str]| OwnedFrame::Array(items.iter().map(|i| bulk(i)).collect());
    let wrong_type = err("WRONGTYPE Operation against a key holding the wrong kind of value");
    assert_eq!(
        c.cmd(&["HSET", "h", "f1", "v1", "f2", "v2", "f1", "v3"])
            .await,
        int(2)
    );
    assert_eq!(c.cmd(&["HSET", "h", "f3", "v3"]).await, int(1));
    for (args, answer) in [
        // Fields in the order they were first set, as Redis keeps a small hash.
        (
            &["HGETALL", "h"][..],
            array(&["f1", "v3", "f2", "v2", "f3", "v3"]),
        ),
        (&["HKEYS", "h"], array(&["f1", "f2", "f3"])),
        (&["HVALS", "h"], array(&["v3", "v2", "v3"])),
        (&["HLEN", "h"], int(3)),
        (&["HGET", "h", "f1"], bulk("v3")),
        (&["HGET", "h", "nope"], OwnedFrame::Null),
        (&["HGET", "nokey", "f"], OwnedFrame::Null),
        (
            &["HMGET", "h", "f1", "nope", "f3"],
            OwnedFrame::Array(vec![bulk("v3"), OwnedFrame::Null, bulk("v3")]),
        ),
        (&["HEXISTS", "h", "f1"], int(1)),
        (&["HEXISTS", "h", "nope"], int(0)),
        (&["HSTRLEN", "h", "f1"], int(2)),
        (&["HSTRLEN", "h", "nope"], int(0)),
        (&["HSETNX", "h", "f1", "x"], int(0)),
        (&["HSETNX", "h", "f9", "x"], int(1)),
        (&["HMSET", "h", "a", "1", "b", "2"], simple("OK")),
        (&["HDEL", "h", "f1", "f1", "nope"], int(1)),
        (&["HDEL", "nokey", "f"], int(0)),
        (&["HGETALL", "nokey"], array(&[])),
        (&["HINCRBY", "h", "a", "5"], int(6)),
        (&["HINCRBY", "h", "new", "-3"], int(-3)),
        (
            &["HINCRBY", "h", "f2", "1"],
            err("ERR hash value is not an integer"),
        ),
        (
            &["HINCRBY", "h", "a", "x"],
            err("ERR value is not an integer or out of range"),
        ),
        (
            &["HINCRBY", "h", "a", "9223372036854775807"],
            err("ERR increment or decrement would overflow"),
        ),
        (&["HINCRBYFLOAT", "h", "a", "1.5"], bulk("7.5")),
        (
            &["HINCRBYFLOAT", "h", "f2", "1"],
            err("ERR hash value is not a float"),
        ),
        (
            &["HINCRBYFLOAT", "h", "a", "abc"],
            err("ERR value is not a valid float"),
        ),
        (
            &["HINCRBYFLOAT", "h", "a", "-inf"],
            err("ERR value is NaN or Infinity"),
        ),
        (
            &["HSET", "h", "a"],
            err("ERR wrong number of arguments for 'hset' command"),
        ),
        (
            &["HMSET", "h", "a", "1", "b"],
            err("ERR wrong number of arguments for 'hmset' command"),
        ),
        (
            &["HSET", "h"],
            err("ERR wrong number of arguments for 'hset' command"),
        ),
        (&["TYPE", "h"], simple("hash")),
        (&["SET", "s", "str"], simple("OK")),
        // A command made for one kind of value, on a key holding the other.
        (&["HGET", "s", "f"], wrong_type.clone()),
        (&["HSET", "s", "f", "v"], wrong_type.clone()),
        (&["HLEN", "s"], wrong_type.clone()),
        (&["HSCAN", "s", "0"], wrong_type.clone()),
        (&["GET", "h"], wrong_type.clone()),
        (&["STRLEN", "h"], wrong_type.clone()),
        (&["APPEND", "h", "x"], wrong_type.clone()),
        (&["INCR", "h"], wrong_type.clone()),
        (&["GETRANGE", "h", "0", "1"], wrong_type.clone()),
        (&["SETBIT", "h", "0", "1"], wrong_type.clone()),
        (&["BITCOUNT", "h"], wrong_type.clone()),
        (&["GETDEL", "h"], wrong_type.clone()),
        (&["SET", "h", "x", "GET"], wrong_type.clone()),
        (&["BITOP", "AND", "dst", "h", "s"], wrong_type.clone()),
        // MGET reads a hash as a key without a string.
        (
            &["MGET", "h", "s"],
            OwnedFrame::Array(vec![OwnedFrame::Null, bulk("str")]),
        ),
        (&["EXISTS", "h", "s"], int(2)),
        (&["EXPIRE", "h", "100"], int(1)),
        (&["TTL", "h"], int(100)),
        (&["RENAME", "h", "h2"], simple("OK")),
        (&["TYPE", "h2"], simple("hash")),
        (&["TTL", "h2"], int(100)),
        (&["COPY", "h2", "h3"], int(1)),
        (&["HLEN", "h3"], int(6)),
        (&["HDEL", "h3", "f2", "f3", "f9", "a", "b", "new"], int(6)),
        (&["EXISTS", "h3"], int(0)),
        (
            &["SCAN", "0", "TYPE", "hash"],
            OwnedFrame::Array(vec![bulk("0"), array(&["h2"])]),
        ),
        (
            &["SCAN", "0", "TYPE", "STRING"],
            OwnedFrame::Array(vec![bulk("0"), array(&["s"])]),
        ),
        (
            &["SCAN", "0", "TYPE", "list"],
            OwnedFrame::Array(vec![bulk("0"), array(&[])]),
        ),
        // A plain SET replaces a hash.
        (&["SET", "h2", "x"], simple("OK")),
        (&["TYPE", "h2"], simple("string")),
    ] {
        assert_eq!(c.cmd(args).await, answer, "{args:?}");
    }
    // HSCAN answers with every field at once and the cursor 0, as Redis does for a
    // small hash, whatever the cursor.
    c.cmd(&["HSET", "big", "a", "1", "b", "2", "c", "3", "ab", "4"])
        .await;
    let scan = |items: &[&str]| OwnedFrame::Array(vec![bulk("0"), array(items)]);
    for (args, answer) in [
        (
            &["HSCAN", "big", "0"][..],
            scan(&["a", "1", "b", "2", "c", "3", "ab", "4"]),
        ),
        (
            &["HSCAN", "big", "17", "MATCH", "a*"],
            scan(&["a", "1", "ab", "4"]),
        ),
        (
            &["HSCAN", "big", "0", "MATCH", "a*", "NOVALUES"],
            scan(&["a", "ab"]),
        ),
        (
            &["HSCAN", "big", "0", "COUNT", "1"],
            scan(&["a", "1", "b", "2", "c", "3", "ab", "4"]),
        ),
        (&["HSCAN", "nokey", "0"], scan(&[])),
        (&["HSCAN", "big", "x"], err("ERR invalid cursor")),
        (
            &["HSCAN", "big", "0", "COUNT", "0"],
            err("ERR syntax error"),
        ),
        (&["HSCAN", "big", "0", "FOO", "1"], err("ERR syntax error")),
    ] {
        assert_eq!(c.cmd(args).await, answer, "{args:?}");
    }
    // Inside a transaction, each answers as alone; HGETALL and HSCAN too.
    assert_eq!(c.cmd(&["MULTI"]).await, simple("OK"));
    for args in [
        &["HSET", "m", "f", "1", "g", "2"][..],
        &["HGETALL", "m"],
        &["HINCRBY", "m", "f", "x"],
        &["HINCRBY", "m", "f", "2"],
        &["HSCAN", "m", "0", "MATCH", "f"],
        &["HGET", "s", "f"],
    ] {
        assert_eq!(c.cmd(args).await, simple("QUEUED"), "{args:?}");
    }
    assert_eq!(
        c.cmd(&["EXEC"]).await,
        OwnedFrame::Array(vec![
            int(2),
            array(&["f", "1", "g", "2"]),
            err("ERR value is not an integer or out of range"),
            int(3),
            scan(&["f", "3"]),
            wrong_type,
        ])
    );
    // In RESP3, HGETALL is a map, alone and inside EXEC.
    let mut three = fx.client().await;
    three.cmd3(&["HELLO", "3"]).await;
    let map = || Resp3::Map {
        data: [("f", "3"), ("g", "2")]
            .into_iter()
            .map(|(f, v)| {
                let blob = |s: &str| Resp3::BlobString {
                    data: s.as_bytes().to_vec(),
                    attributes: None,
                };
                (blob(f), blob(v))
            })
            .collect(),
        attributes: None,
    };
    assert_eq!(three.cmd3(&["HGETALL", "m"]).await, map());
    three.cmd3(&["MULTI"]).await;
    three.cmd3(&["HGETALL", "m"]).await;
    assert_eq!(
        three.cmd3(&["EXEC"]).await,
        Resp3::Array {
            data: vec![map()],
            attributes: None
        }
    );
    // HRANDFIELD: pairs flat in RESP2, as two-item arrays in RESP3.
    for (args, answer) in [
        (&["HRANDFIELD", "nokey"][..], OwnedFrame::Null),
        (&["HRANDFIELD", "nokey", "-3"], array(&[])),
        (&["HRANDFIELD", "m", "0"], array(&[])),
        (
            &["HRANDFIELD", "m", "x"],
            err("ERR value is not an integer or out of range"),
        ),
        (&["HRANDFIELD", "m", "1", "VALUES"], err("ERR syntax error")),
        (
            &["HRANDFIELD", "m", "1", "WITHVALUES", "x"],
            err("ERR syntax error"),
        ),
        (
            &["SRANDMEMBER", "s", "1", "WITHVALUES"],
            err("ERR syntax error"),
        ),
        (
            &["HRANDFIELD", "s"],
            err("WRONGTYPE Operation against a key holding the wrong kind of value"),
        ),
    ] {
        assert_eq!(c.cmd(args).await, answer, "{args:?}");
    }
    let one = c.cmd(&["HRANDFIELD", "m"]).await;
    assert!(one == bulk("f") || one == bulk("g"), "{one:?}");
    let OwnedFrame::Array(mut both) = c.cmd(&["HRANDFIELD", "m", "5", "WITHVALUES"]).await else {
        panic!("HRANDFIELD with a count answers with an array");
    };
    assert_eq!(both.len(), 4);
    if both[0] == bulk("g") {
        both.rotate_left(2);
    }
    assert_eq!(both, vec![bulk("f"), bulk("3"), bulk("g"), bulk("2")]);
    let OwnedFrame::Array(repeated) = c.cmd(&["HRANDFIELD", "m", "-6"]).await else {
        panic!("HRANDFIELD with a count answers with an array");
    };
    assert_eq!(repeated.len(), 6);
    let Resp3::Array { data: pairs, .. } =
        three.cmd3(&["HRANDFIELD", "m", "-3", "WITHVALUES"]).await
    else {
        panic!("HRANDFIELD with values answers with an array");
    };
    assert_eq!(pairs.len(), 3);
    assert!(
        pairs
            .iter()
            .all(|p| matches!(p, Resp3::Array { data, .. } if data.len() == 2))
    );
}

#[tokio::test]
async fn sets() {
    let fx = start_local(ServerConfig::default()).await;
    let mut c = fx.client().await;
    let int = OwnedFrame::Integer;
    let array = |items: &[&str]| OwnedFrame::Array(items.iter().map(|i| bulk(i)).collect());
    let wrong_type = err("WRONGTYPE Operation against a key holding the wrong kind of value");
    assert_eq!(c.cmd(&["SADD", "s", "a", "b", "a", "c"]).await, int(3));
    assert_eq!(c.cmd(&["SADD", "t", "c", "d", "e"]).await, int(3));
    c.cmd(&["SET", "str", "x"]).await;
    for (args, answer) in [
        // Members in the order they were first added.
        (&["SMEMBERS", "s"][..], array(&["a", "b", "c"])),
        (&["SMEMBERS", "nokey"], array(&[])),
        (&["SCARD", "s"], int(3)),
        (&["SISMEMBER", "s", "b"], int(1)),
        (&["SISMEMBER", "s", "z"], int(0)),
        (
            &["SMISMEMBER", "s", "a", "z", "c"],
            OwnedFrame::Array(vec![int(1), int(0), int(1)]),
        ),
        (&["SADD", "s", "a"], int(0)),
        (&["SINTER", "s", "t"], array(&["c"])),
        (&["SINTER", "s", "nokey"], array(&[])),
        (&["SUNION", "s", "t"], array(&["a", "b", "c", "d", "e"])),
        (&["SDIFF", "s", "t"], array(&["a", "b"])),
        (&["SINTERCARD", "2", "s", "t"], int(1)),
        (&["SINTERCARD", "1", "s", "LIMIT", "2"], int(2)),
        (&["SINTERCARD", "1", "s", "LIMIT", "0"], int(3)),
        (
            &["SINTERCARD", "0", "s"],
            err("ERR numkeys should be greater than 0"),
        ),
        (
            &["SINTERCARD", "3", "s"],
            err("ERR Number of keys can't be greater than number of args"),
        ),
        (
            &["SINTERCARD", "1", "s", "LIMIT", "-1"],
            err("ERR LIMIT can't be negative"),
        ),
        (
            &["SINTERCARD", "1", "s", "FOO", "1"],
            err("ERR syntax error"),
        ),
        (&["SINTERSTORE", "i", "s", "t"], int(1)),
        (&["SMEMBERS", "i"], array(&["c"])),
        (&["SDIFFSTORE", "i", "t", "t"], int(0)),
        (&["EXISTS", "i"], int(0)),
        (&["SUNIONSTORE", "str2", "s", "nokey"], int(3)),
        (&["TYPE", "str2"], simple("set")),
        (&["SREM", "s", "a", "z", "a"], int(1)),
        (&["SMOVE", "s", "t", "b"], int(1)),
        (&["SMOVE", "s", "t", "b"], int(0)),
        (&["SMOVE", "nokey", "str", "b"], int(0)),
        (&["SMOVE", "s", "str", "c"], wrong_type.clone()),
        (&["SMOVE", "s", "s", "c"], int(1)),
        (&["SMOVE", "s", "fresh", "c"], int(1)),
        // The source's last member gone, the key is gone.
        (&["EXISTS", "s"], int(0)),
        (&["SMEMBERS", "fresh"], array(&["c"])),
        (&["SADD", "str", "a"], wrong_type.clone()),
        (&["SMEMBERS", "str"], wrong_type.clone()),
        (&["SINTER", "t", "str"], wrong_type.clone()),
        (&["SUNIONSTORE", "d", "t", "str"], wrong_type.clone()),
        (&["GET", "t"], wrong_type.clone()),
        (
            &["SPOP", "t", "-1"],
            err("ERR value is out of range, must be positive"),
        ),
        (&["SPOP", "t", "1", "2"], err("ERR syntax error")),
        (&["SPOP", "nokey"], OwnedFrame::Null),
        (&["SPOP", "nokey", "2"], array(&[])),
        (&["SPOP", "t", "0"], array(&[])),
        (&["SRANDMEMBER", "nokey"], OwnedFrame::Null),
        (&["SRANDMEMBER", "nokey", "-3"], array(&[])),
        (&["SRANDMEMBER", "t", "0"], array(&[])),
        (
            &["SRANDMEMBER", "t", "x"],
            err("ERR value is not an integer or out of range"),
        ),
        (
            &["SSCAN", "t", "0", "MATCH", "[cd]"],
            OwnedFrame::Array(vec![bulk("0"), array(&["c", "d"])]),
        ),
        (&["SSCAN", "t", "0", "NOVALUES"], err("ERR syntax error")),
        (
            &["SCAN", "0", "TYPE", "set"],
            OwnedFrame::Array(vec![bulk("0"), array(&["fresh", "str2", "t"])]),
        ),
    ] {
        assert_eq!(c.cmd(args).await, answer, "{args:?}");
    }
    // Random picks: distinct for a positive count, with repeats for a negative one.
    let members = |frame: OwnedFrame| match frame {
        OwnedFrame::Array(items) => items,
        other => panic!("not an array: {other:?}"),
    };
    let t = ["b", "c", "d", "e"].map(bulk);
    let mut picked = members(c.cmd(&["SRANDMEMBER", "t", "3"]).await);
    assert_eq!(picked.len(), 3);
    picked.sort_by_key(|f| format!("{f:?}"));
    picked.dedup();
    assert_eq!(picked.len(), 3);
    assert!(picked.iter().all(|m| t.contains(m)));
    assert_eq!(members(c.cmd(&["SRANDMEMBER", "t", "10"]).await).len(), 4);
    let repeated = members(c.cmd(&["SRANDMEMBER", "fresh", "-5"]).await);
    assert_eq!(repeated, vec![bulk("c"); 5]);
    assert!(t.contains(&c.cmd(&["SRANDMEMBER", "t"]).await));
    // SPOP removes what it answers.
    let popped = members(c.cmd(&["SPOP", "t", "3"]).await);
    assert_eq!(popped.len(), 3);
    assert_eq!(c.cmd(&["SCARD", "t"]).await, int(1));
    let last = c.cmd(&["SPOP", "t"]).await;
    assert!(t.contains(&last) && !popped.contains(&last));
    assert_eq!(c.cmd(&["EXISTS", "t"]).await, int(0));

    // Inside a transaction; in RESP3 the member lists are sets.
    c.cmd(&["SADD", "m", "x", "y"]).await;
    assert_eq!(c.cmd(&["MULTI"]).await, simple("OK"));
    for args in [
        &["SADD", "m", "z"][..],
        &["SMEMBERS", "m"],
        &["SISMEMBER", "m", "z"],
        &["SMISMEMBER", "m", "x", "q"],
        &["SINTERCARD", "1", "m"],
        &["SUNION", "m", "fresh"],
        &["SSCAN", "m", "0"],
        &["SRANDMEMBER", "fresh", "-2"],
        &["SCARD", "str"],
    ] {
        assert_eq!(c.cmd(args).await, simple("QUEUED"), "{args:?}");
    }
    assert_eq!(
        c.cmd(&["EXEC"]).await,
        OwnedFrame::Array(vec![
            int(1),
            array(&["x", "y", "z"]),
            int(1),
            OwnedFrame::Array(vec![int(1), int(0)]),
            int(3),
            array(&["x", "y", "z", "c"]),
            OwnedFrame::Array(vec![bulk("0"), array(&["x", "y", "z"])]),
            array(&["c", "c"]),
            wrong_type,
        ])
    );
    let mut three = fx.client().await;
    three.cmd3(&["HELLO", "3"]).await;
    let blob = |s: &str| Resp3::BlobString {
        data: s.as_bytes().to_vec(),
        attributes: None,
    };
    let set = |items: &[&str]| Resp3::Set {
        data: items.iter().map(|i| blob(i)).collect(),
        attributes: None,
    };
    assert_eq!(three.cmd3(&["SMEMBERS", "m"]).await, set(&["x", "y", "z"]));
    assert_eq!(three.cmd3(&["SINTER", "m", "fresh"]).await, set(&[]));
    three.cmd3(&["MULTI"]).await;
    three.cmd3(&["SDIFF", "m", "fresh"]).await;
    assert_eq!(
        three.cmd3(&["EXEC"]).await,
        Resp3::Array {
            data: vec![set(&["x", "y", "z"])],
            attributes: None
        }
    );
    assert_eq!(three.cmd3(&["SPOP", "fresh", "5"]).await, set(&["c"]));
}

#[tokio::test]
async fn sorted_sets() {
    let fx = start_local(ServerConfig::default()).await;
    let mut c = fx.client().await;
    let int = OwnedFrame::Integer;
    let array = |items: &[&str]| OwnedFrame::Array(items.iter().map(|i| bulk(i)).collect());
    let wrong_type = err("WRONGTYPE Operation against a key holding the wrong kind of value");
    c.cmd(&["SET", "str", "x"]).await;
    for (args, answer) in [
        (&["ZADD", "z", "1", "a", "2", "b", "3", "c"][..], int(3)),
        (&["ZADD", "z", "CH", "5", "a", "2", "b", "0.5", "d"], int(2)),
        (&["ZADD", "z", "INCR", "1.1", "d"], bulk("1.6")),
        (&["ZADD", "z", "NX", "INCR", "1", "d"], OwnedFrame::Null),
        (&["ZINCRBY", "z", "-inf", "c"], bulk("-inf")),
        (&["ZSCORE", "z", "a"], bulk("5")),
        (&["ZSCORE", "z", "nope"], OwnedFrame::Null),
        (
            &["ZMSCORE", "z", "b", "nope"],
            OwnedFrame::Array(vec![bulk("2"), OwnedFrame::Null]),
        ),
        (&["ZCARD", "z"], int(4)),
        (&["ZRANGE", "z", "0", "-1"], array(&["c", "d", "b", "a"])),
        (
            &["ZRANGE", "z", "0", "1", "REV", "WITHSCORES"],
            array(&["a", "5", "b", "2"]),
        ),
        (&["ZRANGE", "z", "(2", "+inf", "BYSCORE"], array(&["a"])),
        (
            &["ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", "1", "2"],
            array(&["d", "b"]),
        ),
        (&["ZREVRANGEBYSCORE", "z", "5", "(2"], array(&["a"])),
        (&["ZREVRANGE", "z", "-1", "-1"], array(&["c"])),
        (&["ZCOUNT", "z", "-inf", "(5"], int(3)),
        (&["ZRANK", "z", "a"], int(3)),
        (&["ZREVRANK", "z", "a"], int(0)),
        (
            &["ZRANK", "z", "a", "WITHSCORE"],
            OwnedFrame::Array(vec![int(3), bulk("5")]),
        ),
        (&["ZRANK", "nokey", "a"], OwnedFrame::Null),
        (
            &["ZRANGE", "z", "0", "-1", "LIMIT", "0", "1"],
            err(
                "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
            ),
        ),
        (
            &["ZRANGE", "z", "-", "+", "BYLEX", "WITHSCORES"],
            err("ERR syntax error, WITHSCORES not supported in combination with BYLEX"),
        ),
        (
            &["ZCOUNT", "z", "x", "1"],
            err("ERR min or max is not a float"),
        ),
        (
            &["ZLEXCOUNT", "z", "a", "b"],
            err("ERR min or max not valid string range item"),
        ),
        (
            &["ZADD", "z", "nan", "a"],
            err("ERR value is not a valid float"),
        ),
        (&["ZADD", "z", "1", "a", "2"], err("ERR syntax error")),
        (
            &["ZADD", "z", "NX", "XX", "1", "a"],
            err("ERR XX and NX options at the same time are not compatible"),
        ),
        (
            &["ZADD", "z", "GT", "LT", "1", "a"],
            err("ERR GT, LT, and/or NX options at the same time are not compatible"),
        ),
        (
            &["ZADD", "z", "INCR", "1", "a", "2", "b"],
            err("ERR INCR option supports a single increment-element pair"),
        ),
        (&["ZADD", "inf", "inf", "m"], int(1)),
        (
            &["ZINCRBY", "inf", "-inf", "m"],
            err("ERR resulting score is not a number (NaN)"),
        ),
        (&["ZADD", "str", "1", "a"], wrong_type.clone()),
        (&["ZRANGE", "str", "0", "-1"], wrong_type.clone()),
        (&["SMEMBERS", "z"], wrong_type.clone()),
        (&["TYPE", "z"], simple("zset")),
        (&["ZPOPMIN", "z"], array(&["c", "-inf"])),
        (&["ZPOPMAX", "z", "2"], array(&["a", "5", "b", "2"])),
        (&["ZPOPMIN", "nokey"], array(&[])),
        (
            &["ZPOPMIN", "z", "-1"],
            err("ERR value is out of range, must be positive"),
        ),
        (
            &["ZADD", "l", "0", "a", "0", "b", "0", "c", "0", "d"],
            int(4),
        ),
        (&["ZRANGEBYLEX", "l", "(a", "[c"], array(&["b", "c"])),
        (
            &["ZREVRANGEBYLEX", "l", "+", "-", "LIMIT", "1", "2"],
            array(&["c", "b"]),
        ),
        (&["ZLEXCOUNT", "l", "-", "+"], int(4)),
        (&["ZREMRANGEBYLEX", "l", "[b", "(d"], int(2)),
        (&["ZREMRANGEBYRANK", "l", "0", "0"], int(1)),
        (&["ZREMRANGEBYSCORE", "l", "-inf", "+inf"], int(1)),
        (&["EXISTS", "l"], int(0)),
        (&["ZREM", "z", "d", "nope"], int(1)),
        (&["EXISTS", "z"], int(0)),
        (&["ZADD", "z", "1.5", "x", "2", "y"], int(2)),
        (
            &["ZSCAN", "z", "0"],
            OwnedFrame::Array(vec![bulk("0"), array(&["x", "1.5", "y", "2"])]),
        ),
        (&["ZRANDMEMBER", "z", "-3"], OwnedFrame::Null),
        (&["SADD", "s", "y", "q"], int(2)),
        (
            &["ZUNIONSTORE", "u", "2", "z", "s", "WEIGHTS", "2", "1"],
            int(3),
        ),
        (
            &["ZRANGE", "u", "0", "-1", "WITHSCORES"],
            array(&["q", "1", "x", "3", "y", "5"]),
        ),
        (
            &["ZINTER", "2", "z", "s", "AGGREGATE", "MAX", "WITHSCORES"],
            array(&["y", "2"]),
        ),
        (&["ZDIFF", "2", "z", "s"], array(&["x"])),
        (&["ZINTERCARD", "2", "z", "u", "LIMIT", "1"], int(1)),
        (&["ZDIFFSTORE", "u", "1", "nokey"], int(0)),
        (&["EXISTS", "u"], int(0)),
        (
            &["ZRANGESTORE", "u", "z", "+inf", "(1.5", "BYSCORE", "REV"],
            int(1),
        ),
        (&["ZRANGE", "u", "0", "-1"], array(&["y"])),
        (
            &["ZUNION", "0", "z"],
            err("ERR at least 1 input key is needed for 'zunion' command"),
        ),
        (&["ZUNION", "3", "z"], err("ERR syntax error")),
        (
            &["ZINTERSTORE", "u", "1", "z", "WEIGHTS", "x"],
            err("ERR weight value is not a float"),
        ),
        (
            &["ZDIFF", "1", "z", "WEIGHTS", "1"],
            err("ERR syntax error"),
        ),
        (&["ZUNIONSTORE", "u", "2", "z", "str"], wrong_type.clone()),
        (
            &["ZRANGESTORE", "u", "z", "0", "-1", "WITHSCORES"],
            err("ERR syntax error"),
        ),
    ] {
        let got = c.cmd(args).await;
        if args[0] == "ZRANDMEMBER" {
            let OwnedFrame::Array(picked) = got else {
                panic!("ZRANDMEMBER with a count answers an array");
            };
            assert_eq!(picked.len(), 3);
            assert!(picked.iter().all(|m| *m == bulk("x") || *m == bulk("y")));
            continue;
        }
        assert_eq!(got, answer, "{args:?}");
    }
    // In a transaction, in RESP2.
    c.cmd(&["MULTI"]).await;
    c.cmd(&["ZADD", "m", "1", "a"]).await;
    c.cmd(&["ZSCORE", "m", "a"]).await;
    c.cmd(&["ZRANGE", "m", "0", "-1", "WITHSCORES"]).await;
    assert_eq!(
        c.cmd(&["EXEC"]).await,
        OwnedFrame::Array(vec![int(1), bulk("1"), array(&["a", "1"])])
    );
    // RESP3: scores are doubles, ranges with scores are pairs, a single pop is flat.
    let mut three = fx.client().await;
    three.cmd3(&["HELLO", "3"]).await;
    let blob = |s: &str| Resp3::BlobString {
        data: s.as_bytes().to_vec(),
        attributes: None,
    };
    let double = |d: f64| Resp3::Double {
        data: d,
        attributes: None,
    };
    let resp3_array = |data: Vec<Resp3>| Resp3::Array {
        data,
        attributes: None,
    };
    assert_eq!(three.cmd3(&["ZSCORE", "z", "x"]).await, double(1.5));
    assert_eq!(
        three.cmd3(&["ZRANGE", "z", "0", "-1", "WITHSCORES"]).await,
        resp3_array(vec![
            resp3_array(vec![blob("x"), double(1.5)]),
            resp3_array(vec![blob("y"), double(2.0)]),
        ])
    );
    assert_eq!(
        three.cmd3(&["ZMSCORE", "z", "y", "nope"]).await,
        resp3_array(vec![double(2.0), Resp3::Null])
    );
    three.cmd3(&["MULTI"]).await;
    three.cmd3(&["ZINCRBY", "z", "1", "x"]).await;
    three.cmd3(&["ZPOPMIN", "z"]).await;
    assert_eq!(
        three.cmd3(&["EXEC"]).await,
        resp3_array(vec![double(2.5), resp3_array(vec![blob("y"), double(2.0)]),])
    );
}

/// An array of bulk strings.
fn strings(items: &[&str]) -> OwnedFrame {
    OwnedFrame::Array(items.iter().map(|i| bulk(i)).collect())
}

/// A stream entry as `XRANGE` answers it.
fn stream_entry(id: &str, fields: &[&str]) -> OwnedFrame {
    OwnedFrame::Array(vec![bulk(id), strings(fields)])
}

/// What `XREAD` answers for one key.
fn stream_read(key: &str, entries: Vec<OwnedFrame>) -> OwnedFrame {
    OwnedFrame::Array(vec![OwnedFrame::Array(vec![
        bulk(key),
        OwnedFrame::Array(entries),
    ])])
}

/// Waits until `INFO` counts `n` blocked clients.
async fn wait_for_blocked(c: &mut Client, n: usize) {
    let wanted = format!("blocked_clients:{n}");
    let mut clients = String::new();
    for _ in 0..500 {
        let OwnedFrame::BulkString(info) = c.cmd(&["INFO", "clients"]).await else {
            panic!("INFO answers a bulk string");
        };
        clients = String::from_utf8_lossy(&info).into_owned();
        if clients.contains(&wanted) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never {wanted}: {clients}");
}

/// Inside `MULTI` a blocking pop does not wait, and a pop with a count on a key without
/// a value answers no array: the bytes Redis 7 answers.
#[tokio::test]
async fn blocking_pops_in_a_transaction_and_pop_counts_answer_as_redis_does() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fx = start_local(ServerConfig::default()).await;
    let commands: &[&[&str]] = &[
        &["RPUSH", "l", "a", "b"],
        &["ZADD", "z", "1", "m"],
        &["MULTI"],
        &["BLPOP", "none", "l", "0"],
        &["BRPOP", "none", "0"],
        &["BZPOPMIN", "none", "z", "0"],
        &["BZPOPMAX", "none", "0"],
        &["BLMOVE", "l", "d", "LEFT", "RIGHT", "0"],
        &["BLMOVE", "none", "d", "LEFT", "RIGHT", "0"],
        &["BRPOPLPUSH", "none", "d", "0"],
        &["BLMPOP", "0", "1", "none", "LEFT"],
        &["BZMPOP", "0", "1", "none", "MIN"],
        &["BLPOP", "l", "x"],
        &["EXEC"],
        &["LPOP", "none", "2"],
        &["RPOP", "d", "0"],
    ];
    let expected = [
        ":2\r\n:1\r\n+OK\r\n",
        &"+QUEUED\r\n".repeat(10),
        "*10\r\n*2\r\n$1\r\nl\r\n$1\r\na\r\n*-1\r\n*3\r\n$1\r\nz\r\n$1\r\nm\r\n$1\r\n1\r\n",
        "*-1\r\n$1\r\nb\r\n$-1\r\n$-1\r\n*-1\r\n*-1\r\n",
        "-ERR timeout is not a float or out of range\r\n",
        "*-1\r\n*0\r\n",
    ]
    .concat();
    let mut stream = tokio::net::TcpStream::connect(fx.addr).await.unwrap();
    let mut requests = Vec::new();
    for command in commands {
        let args: Vec<&[u8]> = command.iter().map(|a| a.as_bytes()).collect();
        requests.extend(Client::request(&args));
    }
    stream.write_all(&requests).await.unwrap();
    let mut answered = vec![0; expected.len()];
    stream.read_exact(&mut answered).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&answered), expected);
}

#[tokio::test]
async fn streams() {
    let fx = start_local(ServerConfig::default()).await;
    let mut c = fx.client().await;
    let int = OwnedFrame::Integer;
    let entry = stream_entry;
    let entries = OwnedFrame::Array;
    let no_entries = OwnedFrame::Array(Vec::new());
    let wrong_type = err("WRONGTYPE Operation against a key holding the wrong kind of value");
    let invalid = err("ERR Invalid stream ID specified as stream command argument");
    c.cmd(&["SET", "str", "x"]).await;
    // `*` takes the node's clock, then the sequence after the last ID.
    let now = START_MS.to_string();
    assert_eq!(
        c.cmd(&["XADD", "s", "*", "a", "1"]).await,
        bulk(&format!("{now}-0"))
    );
    assert_eq!(
        c.cmd(&["XADD", "s", "*", "b", "2"]).await,
        bulk(&format!("{now}-1"))
    );
    fx.clock.advance(5);
    let later = (START_MS + 5).to_string();
    assert_eq!(
        c.cmd(&["XADD", "s", "MAXLEN", "=", "2", "*", "c", "3", "d", "4"])
            .await,
        bulk(&format!("{later}-0"))
    );
    assert_eq!(
        c.cmd(&["XRANGE", "s", "-", "+"]).await,
        entries(vec![
            entry(&format!("{now}-1"), &["b", "2"]),
            entry(&format!("{later}-0"), &["c", "3", "d", "4"]),
        ])
    );
    for (args, answer) in [
        (&["XADD", "x", "1-1", "f", "v"][..], bulk("1-1")),
        (&["XADD", "x", "1-*", "f", "w"], bulk("1-2")),
        (&["XADD", "x", "3", "f", "x"], bulk("3-0")),
        (&["XADD", "x", "5-1", "f", "y", "g", "z"], bulk("5-1")),
        (
            &["XADD", "x", "2-0", "f", "v"],
            err("ERR The ID specified in XADD is equal or smaller than the target stream top item"),
        ),
        (
            &["XADD", "x", "0-0", "f", "v"],
            err("ERR The ID specified in XADD must be greater than 0-0"),
        ),
        (
            &["XADD", "x", "*", "f"],
            err("ERR wrong number of arguments for 'xadd' command"),
        ),
        (&["XADD", "x", "1-x", "f", "v"], invalid.clone()),
        (
            &["XADD", "x", "MAXLEN", "1", "LIMIT", "1", "*", "f", "v"],
            err("ERR syntax error, LIMIT cannot be used without the special ~ option"),
        ),
        (
            &["XADD", "x", "MAXLEN", "-1", "*", "f", "v"],
            err("ERR The MAXLEN argument must be >= 0."),
        ),
        (
            &["XADD", "nokey", "NOMKSTREAM", "*", "f", "v"],
            OwnedFrame::Null,
        ),
        (&["EXISTS", "nokey"], int(0)),
        (&["XADD", "str", "*", "f", "v"], wrong_type.clone()),
        (&["XLEN", "x"], int(4)),
        (&["XLEN", "nokey"], int(0)),
        (&["TYPE", "x"], simple("stream")),
        (
            &["XRANGE", "x", "1", "(3-0"],
            entries(vec![entry("1-1", &["f", "v"]), entry("1-2", &["f", "w"])]),
        ),
        (
            &["XREVRANGE", "x", "+", "-", "COUNT", "2"],
            entries(vec![
                entry("5-1", &["f", "y", "g", "z"]),
                entry("3-0", &["f", "x"]),
            ]),
        ),
        (&["XRANGE", "x", "(5-1", "+"], entries(vec![])),
        // No entries asked for: no array for a stream, an empty one without a key.
        (&["XRANGE", "x", "-", "+", "COUNT", "0"], OwnedFrame::Null),
        (
            &["XRANGE", "nokey", "-", "+", "COUNT", "0"],
            no_entries.clone(),
        ),
        (
            &[
                "XRANGE",
                "x",
                "(18446744073709551615-18446744073709551615",
                "+",
            ],
            err("ERR invalid start ID for the interval"),
        ),
        (
            &["XRANGE", "x", "-", "+", "LIMIT", "1"],
            err("ERR syntax error"),
        ),
        (&["XRANGE", "str", "-", "+"], wrong_type.clone()),
        (&["XDEL", "x", "1-2", "9-9", "1-2"], int(1)),
        (&["XDEL", "x", "nope"], invalid.clone()),
        (&["XDEL", "nokey", "nope"], int(0)),
        (&["XDEL", "str", "nope"], wrong_type.clone()),
        (&["XTRIM", "x", "MINID", "3"], int(1)),
        (&["XTRIM", "x", "MAXLEN", "~", "0", "LIMIT", "1"], int(1)),
        (
            &["XTRIM", "x", "LIMIT", "1"],
            err("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"),
        ),
        (
            &["XRANGE", "x", "-", "+"],
            entries(vec![entry("5-1", &["f", "y", "g", "z"])]),
        ),
        // A stream emptied stays, and keeps its last ID.
        (&["XTRIM", "x", "MAXLEN", "0"], int(1)),
        (&["XLEN", "x"], int(0)),
        (&["EXISTS", "x"], int(1)),
        (
            &["XADD", "x", "5-1", "f", "v"],
            err("ERR The ID specified in XADD is equal or smaller than the target stream top item"),
        ),
        (&["XADD", "x", "5-*", "f", "v"], bulk("5-2")),
        (
            &["XREAD", "COUNT", "1", "STREAMS", "x", "s", "0", "$"],
            OwnedFrame::Array(vec![OwnedFrame::Array(vec![
                bulk("x"),
                entries(vec![entry("5-2", &["f", "v"])]),
            ])]),
        ),
        (
            &["XREAD", "STREAMS", "x", "nokey", "5-2", "0"],
            OwnedFrame::Null,
        ),
        (
            &["XREAD", "STREAMS", "str", "x", "0", "nope"],
            wrong_type.clone(),
        ),
        (
            &["XREAD", "STREAMS", "x", "str", "nope", "0"],
            invalid.clone(),
        ),
        (
            &["XREAD", "STREAMS", "x", "y", "0"],
            err(
                "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
            ),
        ),
        (&["XREAD", "COUNT", "1", "x", "0"], err("ERR syntax error")),
    ] {
        assert_eq!(c.cmd(args).await, answer, "{args:?}");
    }
    // Inside a transaction, reads see the writes before them and BLOCK does not wait.
    assert_eq!(c.cmd(&["MULTI"]).await, simple("OK"));
    for args in [
        &["XADD", "t", "1-1", "k", "v"][..],
        &["XREAD", "BLOCK", "0", "STREAMS", "t", "0"],
        &["XLEN", "t"],
    ] {
        assert_eq!(c.cmd(args).await, simple("QUEUED"));
    }
    assert_eq!(
        c.cmd(&["EXEC"]).await,
        OwnedFrame::Array(vec![
            bulk("1-1"),
            OwnedFrame::Array(vec![OwnedFrame::Array(vec![
                bulk("t"),
                entries(vec![entry("1-1", &["k", "v"])]),
            ])]),
            int(1),
        ])
    );
    // RESP3: XREAD answers a map.
    let mut three = fx.client().await;
    three.cmd3(&["HELLO", "3"]).await;
    let Resp3::Map { data, .. } = three.cmd3(&["XREAD", "STREAMS", "t", "0"]).await else {
        panic!("XREAD answers a map in RESP3");
    };
    assert_eq!(data.len(), 1);
    assert_eq!(
        three.cmd3(&["XREAD", "STREAMS", "t", "$"]).await,
        Resp3::Null
    );
}

#[tokio::test]
async fn stream_consumer_groups() {
    let fx = start_local(ServerConfig::default()).await;
    let mut c = fx.client().await;
    let int = OwnedFrame::Integer;
    let array = strings;
    let entry = stream_entry;
    let read = stream_read;
    let pending = |id: &str, consumer: &str, idle: i64, deliveries: i64| {
        OwnedFrame::Array(vec![bulk(id), bulk(consumer), int(idle), int(deliveries)])
    };
    c.cmd(&["SET", "str", "x"]).await;
    for (args, answer) in [
        (
            &["XGROUP", "CREATE", "jobs", "workers", "$"][..],
            err(
                "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.",
            ),
        ),
        (
            &["XGROUP", "CREATE", "jobs", "workers", "$", "MKSTREAM"],
            simple("OK"),
        ),
        (
            &["XGROUP", "CREATE", "jobs", "workers", "0"],
            err("BUSYGROUP Consumer Group name already exists"),
        ),
        (
            &["XGROUP", "CREATE", "str", "workers", "0"],
            err("WRONGTYPE Operation against a key holding the wrong kind of value"),
        ),
        (
            &["XGROUP", "SETID", "jobs", "nope", "0"],
            err("NOGROUP No such consumer group 'nope' for key name 'jobs'"),
        ),
        (
            &["XGROUP", "CREATE", "jobs"],
            err("ERR wrong number of arguments for 'xgroup|create' command"),
        ),
        (
            &["XGROUP", "FOO", "jobs"],
            err("ERR unknown subcommand 'FOO'. Try XGROUP HELP."),
        ),
        // As in Redis, each key is looked at before its ID.
        (
            &[
                "XREADGROUP",
                "GROUP",
                "workers",
                "ann",
                "STREAMS",
                "nokey",
                "abc",
            ],
            err(
                "NOGROUP No such key 'nokey' or consumer group 'workers' in XREADGROUP with GROUP option",
            ),
        ),
        (
            &[
                "XREADGROUP",
                "GROUP",
                "workers",
                "ann",
                "STREAMS",
                "jobs",
                "abc",
            ],
            err("ERR Invalid stream ID specified as stream command argument"),
        ),
        (&["XACK", "nokey", "workers", "abc"], int(0)),
        (
            &["XACK", "str", "workers", "abc"],
            err("WRONGTYPE Operation against a key holding the wrong kind of value"),
        ),
        (
            &["XACK", "jobs", "workers", "abc"],
            err("ERR Invalid stream ID specified as stream command argument"),
        ),
        (&["XGROUP", "SETID", "jobs", "workers", "-"], simple("OK")),
        (&["XADD", "jobs", "1-1", "job", "a"], bulk("1-1")),
        (&["XADD", "jobs", "1-2", "job", "b"], bulk("1-2")),
        (&["XADD", "jobs", "1-3", "job", "c"], bulk("1-3")),
        // New entries go to the consumer that asks, each once.
        (
            &[
                "XREADGROUP",
                "GROUP",
                "workers",
                "ann",
                "COUNT",
                "2",
                "STREAMS",
                "jobs",
                ">",
            ],
            read(
                "jobs",
                vec![entry("1-1", &["job", "a"]), entry("1-2", &["job", "b"])],
            ),
        ),
        (
            &[
                "XREADGROUP",
                "GROUP",
                "workers",
                "bob",
                "STREAMS",
                "jobs",
                ">",
            ],
            read("jobs", vec![entry("1-3", &["job", "c"])]),
        ),
        (
            &[
                "XREADGROUP",
                "GROUP",
                "workers",
                "bob",
                "STREAMS",
                "jobs",
                ">",
            ],
            OwnedFrame::Null,
        ),
        (
            &["XREADGROUP", "GROUP", "nope", "ann", "STREAMS", "jobs", ">"],
            err(
                "NOGROUP No such key 'jobs' or consumer group 'nope' in XREADGROUP with GROUP option",
            ),
        ),
        (
            &[
                "XREADGROUP",
                "GROUP",
                "workers",
                "ann",
                "STREAMS",
                "jobs",
                "$",
            ],
            err(
                "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.",
            ),
        ),
    ] {
        assert_eq!(c.cmd(args).await, answer, "{args:?}");
    }
    fx.clock.advance(250);
    for (args, answer) in [
        (
            &["XPENDING", "jobs", "workers"][..],
            OwnedFrame::Array(vec![
                int(3),
                bulk("1-1"),
                bulk("1-3"),
                OwnedFrame::Array(vec![array(&["ann", "2"]), array(&["bob", "1"])]),
            ]),
        ),
        (
            &["XPENDING", "jobs", "workers", "-", "+", "10", "ann"],
            OwnedFrame::Array(vec![
                pending("1-1", "ann", 250, 1),
                pending("1-2", "ann", 250, 1),
            ]),
        ),
        (
            &[
                "XPENDING", "jobs", "workers", "IDLE", "1000", "-", "+", "10",
            ],
            OwnedFrame::Array(Vec::new()),
        ),
        (
            &["XPENDING", "jobs", "nope"],
            err("NOGROUP No such key 'jobs' or consumer group 'nope'"),
        ),
        // Acknowledged entries are no longer pending; an entry deleted meanwhile is
        // read back from the history without its fields, and counts as delivered again
        // only while it is there.
        (&["XACK", "jobs", "workers", "1-1", "9-9"], int(1)),
        (&["XDEL", "jobs", "1-2"], int(1)),
        (
            &[
                "XREADGROUP",
                "GROUP",
                "workers",
                "ann",
                "STREAMS",
                "jobs",
                "0",
            ],
            OwnedFrame::Array(vec![OwnedFrame::Array(vec![
                bulk("jobs"),
                OwnedFrame::Array(vec![OwnedFrame::Array(vec![bulk("1-2"), OwnedFrame::Null])]),
            ])]),
        ),
        (
            &[
                "XREADGROUP",
                "GROUP",
                "workers",
                "bob",
                "STREAMS",
                "jobs",
                "0",
            ],
            read("jobs", vec![entry("1-3", &["job", "c"])]),
        ),
        (
            &["XPENDING", "jobs", "workers", "-", "+", "10"],
            OwnedFrame::Array(vec![
                pending("1-2", "ann", 250, 1),
                pending("1-3", "bob", 0, 2),
            ]),
        ),
        (
            &["XGROUP", "CREATECONSUMER", "jobs", "workers", "cy"],
            int(1),
        ),
        (
            &["XGROUP", "CREATECONSUMER", "jobs", "workers", "cy"],
            int(0),
        ),
        (&["XGROUP", "DELCONSUMER", "jobs", "workers", "bob"], int(1)),
        (&["XGROUP", "SETID", "jobs", "workers", "0"], simple("OK")),
        // Delivered again after SETID: the entry changes hands.
        (
            &[
                "XREADGROUP",
                "GROUP",
                "workers",
                "cy",
                "NOACK",
                "STREAMS",
                "jobs",
                ">",
            ],
            read(
                "jobs",
                vec![entry("1-1", &["job", "a"]), entry("1-3", &["job", "c"])],
            ),
        ),
        (&["XACK", "jobs", "workers", "1-2"], int(1)),
        (
            &["XPENDING", "jobs", "workers"],
            OwnedFrame::Array(vec![
                int(0),
                OwnedFrame::Null,
                OwnedFrame::Null,
                OwnedFrame::Null,
            ]),
        ),
        // Claimed by another consumer once idle long enough; one deleted meanwhile
        // leaves the pending list.
        (&["XGROUP", "SETID", "jobs", "workers", "0"], simple("OK")),
        (
            &[
                "XREADGROUP",
                "GROUP",
                "workers",
                "ann",
                "STREAMS",
                "jobs",
                ">",
            ],
            read(
                "jobs",
                vec![entry("1-1", &["job", "a"]), entry("1-3", &["job", "c"])],
            ),
        ),
        (
            &["XCLAIM", "jobs", "workers", "bob", "100", "1-1", "JUSTID"],
            OwnedFrame::Array(Vec::new()),
        ),
        (
            &[
                "XCLAIM",
                "jobs",
                "workers",
                "bob",
                "0",
                "1-1",
                "RETRYCOUNT",
                "5",
            ],
            OwnedFrame::Array(vec![entry("1-1", &["job", "a"])]),
        ),
        (
            &["XPENDING", "jobs", "workers", "-", "+", "10"],
            OwnedFrame::Array(vec![
                pending("1-1", "bob", 0, 5),
                pending("1-3", "ann", 0, 1),
            ]),
        ),
        (&["XDEL", "jobs", "1-1"], int(1)),
        (
            &[
                "XAUTOCLAIM",
                "jobs",
                "workers",
                "cy",
                "0",
                "0",
                "COUNT",
                "1",
            ],
            OwnedFrame::Array(vec![
                bulk("1-3"),
                OwnedFrame::Array(Vec::new()),
                strings(&["1-1"]),
            ]),
        ),
        (
            &["XAUTOCLAIM", "jobs", "workers", "cy", "0", "1-3", "JUSTID"],
            OwnedFrame::Array(vec![
                bulk("0-0"),
                strings(&["1-3"]),
                OwnedFrame::Array(Vec::new()),
            ]),
        ),
        (
            &["XCLAIM", "jobs", "nope", "cy", "0", "1-3"],
            err("NOGROUP No such key 'jobs' or consumer group 'nope'"),
        ),
        (
            &["XCLAIM", "jobs", "workers", "cy", "0", "1-3", "SOON"],
            err("ERR Unrecognized XCLAIM option 'SOON'"),
        ),
        (
            &[
                "XAUTOCLAIM",
                "jobs",
                "workers",
                "cy",
                "0",
                "0",
                "COUNT",
                "0",
            ],
            err("ERR COUNT must be > 0"),
        ),
        (&["XGROUP", "DESTROY", "jobs", "workers"], int(1)),
        (&["XGROUP", "DESTROY", "jobs", "workers"], int(0)),
        (&["XLEN", "jobs"], int(1)),
    ] {
        assert_eq!(c.cmd(args).await, answer, "{args:?}");
    }
    // A consumer blocked on `>` gets the next entry added; another client's read in a
    // transaction does not wait.
    c.cmd(&["XGROUP", "CREATE", "jobs", "late", "$"]).await;
    let mut waiter = fx.client().await;
    let waiting = tokio::spawn(async move {
        waiter
            .cmd(&[
                "XREADGROUP",
                "GROUP",
                "late",
                "dee",
                "BLOCK",
                "0",
                "STREAMS",
                "jobs",
                ">",
            ])
            .await
    });
    wait_for_blocked(&mut c, 1).await;
    c.cmd(&["XADD", "jobs", "2-1", "job", "d"]).await;
    assert_eq!(
        waiting.await.unwrap(),
        read("jobs", vec![entry("2-1", &["job", "d"])])
    );
    assert_eq!(c.cmd(&["MULTI"]).await, simple("OK"));
    c.cmd(&[
        "XREADGROUP",
        "GROUP",
        "late",
        "eve",
        "BLOCK",
        "0",
        "STREAMS",
        "jobs",
        ">",
    ])
    .await;
    assert_eq!(
        c.cmd(&["EXEC"]).await,
        OwnedFrame::Array(vec![OwnedFrame::Null])
    );
    assert_eq!(
        c.cmd(&[
            "XREADGROUP",
            "GROUP",
            "late",
            "eve",
            "BLOCK",
            "10",
            "STREAMS",
            "jobs",
            ">"
        ])
        .await,
        OwnedFrame::Null
    );
}

#[tokio::test]
async fn xread_block_waits_for_an_add() {
    let fx = start_local(ServerConfig::default()).await;
    let mut c = fx.client().await;
    let entry = |id: &str, field: &str| stream_entry(id, &[field, "v"]);
    let read = stream_read;
    c.cmd(&["XADD", "s", "1-1", "old", "v"]).await;
    // Entries already there: answered at once.
    assert_eq!(
        c.cmd(&["XREAD", "BLOCK", "0", "STREAMS", "s", "0"]).await,
        read("s", vec![entry("1-1", "old")])
    );
    // Nothing after `$`: a null once the timeout passes.
    assert_eq!(
        c.cmd(&["XREAD", "BLOCK", "10", "STREAMS", "s", "$"]).await,
        OwnedFrame::Null
    );
    // Clients waiting after `$` on a stream, and on a key without one, get what is
    // added after they blocked, and nothing from before.
    let mut first = fx.client().await;
    let mut second = fx.client().await;
    let on_s = tokio::spawn(async move {
        first
            .cmd(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"])
            .await
    });
    let on_new = tokio::spawn(async move {
        second
            .cmd(&[
                "XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "other", "new", "0", "$",
            ])
            .await
    });
    wait_for_blocked(&mut c, 2).await;
    // A write to another key gives neither anything.
    c.cmd(&["SET", "unrelated", "x"]).await;
    c.cmd(&["XADD", "s", "2-1", "fresh", "v"]).await;
    c.cmd(&["XADD", "new", "3-1", "first", "v"]).await;
    c.cmd(&["XADD", "new", "3-2", "second", "v"]).await;
    assert_eq!(on_s.await.unwrap(), read("s", vec![entry("2-1", "fresh")]));
    assert_eq!(
        on_new.await.unwrap(),
        read("new", vec![entry("3-1", "first")])
    );
    assert_eq!(
        c.cmd(&["XREAD", "BLOCK", "-1", "STREAMS", "s", "0"]).await,
        err("ERR timeout is negative")
    );
}

#[tokio::test]
async fn blocking_pops_wait_for_a_push() {
    let fx = start_local(ServerConfig::default()).await;
    let mut c = fx.client().await;
    let int = OwnedFrame::Integer;
    let array = |items: &[&str]| OwnedFrame::Array(items.iter().map(|i| bulk(i)).collect());
    c.cmd(&["SET", "str", "x"]).await;
    c.cmd(&["RPUSH", "l", "a", "b"]).await;
    c.cmd(&["ZADD", "z", "1.5", "m", "3", "n"]).await;
    for (args, answer) in [
        // Something to pop: answered at once, from the first key holding a value.
        (&["BLPOP", "nokey", "l", "0"][..], array(&["l", "a"])),
        (&["BRPOP", "l", "0"], array(&["l", "b"])),
        (&["BZPOPMAX", "nokey", "z", "0"], array(&["z", "n", "3"])),
        (&["BZPOPMIN", "z", "0"], array(&["z", "m", "1.5"])),
        // Nothing: a null once the timeout passes.
        (&["BLPOP", "l", "0.01"], OwnedFrame::Null),
        (&["BZPOPMIN", "z", "0.01"], OwnedFrame::Null),
        (
            &["BLMOVE", "l", "d", "LEFT", "RIGHT", "0.01"],
            OwnedFrame::Null,
        ),
        (
            &["BLPOP", "str", "0"],
            err("WRONGTYPE Operation against a key holding the wrong kind of value"),
        ),
        (&["BLPOP", "l", "-1"], err("ERR timeout is negative")),
        (
            &["BLPOP", "l", "soon"],
            err("ERR timeout is not a float or out of range"),
        ),
        (
            &["BLMOVE", "l", "d", "UP", "RIGHT", "0"],
            err("ERR syntax error"),
        ),
    ] {
        assert_eq!(c.cmd(args).await, answer, "{args:?}");
    }
    // Several keys: the first that holds a value, several items at once.
    c.cmd(&["RPUSH", "l2", "x", "y", "z"]).await;
    c.cmd(&["ZADD", "z2", "1", "p", "2", "q"]).await;
    for (args, answer) in [
        (
            &["LMPOP", "2", "nokey", "l2", "RIGHT", "COUNT", "2"][..],
            OwnedFrame::Array(vec![bulk("l2"), array(&["z", "y"])]),
        ),
        (
            &["ZMPOP", "1", "z2", "MIN", "COUNT", "5"],
            OwnedFrame::Array(vec![
                bulk("z2"),
                OwnedFrame::Array(vec![array(&["p", "1"]), array(&["q", "2"])]),
            ]),
        ),
        (&["LMPOP", "1", "nokey", "LEFT"], OwnedFrame::Null),
        (
            &["BLMPOP", "0", "2", "nokey", "l2", "LEFT"],
            OwnedFrame::Array(vec![bulk("l2"), array(&["x"])]),
        ),
        (&["BZMPOP", "0.01", "1", "z2", "MAX"], OwnedFrame::Null),
        (
            &["LMPOP", "0", "l2", "LEFT"],
            err("ERR numkeys should be greater than 0"),
        ),
        (
            &["ZMPOP", "1", "z2", "MIN", "COUNT", "0"],
            err("ERR count should be greater than 0"),
        ),
        (&["LMPOP", "1", "l2", "MIN"], err("ERR syntax error")),
        (
            &["LMPOP", "1", "str", "LEFT"],
            err("WRONGTYPE Operation against a key holding the wrong kind of value"),
        ),
    ] {
        assert_eq!(c.cmd(args).await, answer, "{args:?}");
    }
    // Clients blocked on empty keys get what other clients push, each one item.
    let mut first = fx.client().await;
    let mut second = fx.client().await;
    let mut third = fx.client().await;
    let waiting = tokio::spawn(async move {
        (
            first.cmd(&["BLPOP", "jobs", "0"]).await,
            first.cmd(&["PING"]).await,
        )
    });
    let moving =
        tokio::spawn(async move { second.cmd(&["BRPOPLPUSH", "jobs2", "done", "0"]).await });
    let scoring = tokio::spawn(async move { third.cmd(&["BZPOPMIN", "board", "0"]).await });
    // All three are blocked before anything is pushed.
    wait_for_blocked(&mut c, 3).await;
    assert_eq!(c.cmd(&["RPUSH", "jobs", "j1"]).await, int(1));
    assert_eq!(c.cmd(&["RPUSH", "jobs2", "j2"]).await, int(1));
    assert_eq!(c.cmd(&["ZADD", "board", "7", "ann"]).await, int(1));
    let (popped, after) = waiting.await.unwrap();
    assert_eq!(popped, array(&["jobs", "j1"]));
    assert_eq!(after, simple("PONG"));
    assert_eq!(moving.await.unwrap(), bulk("j2"));
    assert_eq!(scoring.await.unwrap(), array(&["board", "ann", "7"]));
    assert_eq!(c.cmd(&["LRANGE", "done", "0", "-1"]).await, array(&["j2"]));
    assert_eq!(c.cmd(&["EXISTS", "jobs", "jobs2", "board"]).await, int(0));
    // A blocked client that goes away leaves the server as it was.
    let mut gone = fx.client().await;
    gone.send_raw(&Client::request(&[b"BLPOP", b"never", b"0"]))
        .await;
    drop(gone);
    assert_eq!(c.cmd(&["PING"]).await, simple("PONG"));
    // RESP3: the score is a double, the timeout a null.
    let mut three = fx.client().await;
    three.cmd3(&["HELLO", "3"]).await;
    c.cmd(&["ZADD", "z", "2.5", "q"]).await;
    assert_eq!(
        three.cmd3(&["BZPOPMIN", "z", "0"]).await,
        Resp3::Array {
            data: vec![
                Resp3::BlobString {
                    data: b"z".to_vec(),
                    attributes: None
                },
                Resp3::BlobString {
                    data: b"q".to_vec(),
                    attributes: None
                },
                Resp3::Double {
                    data: 2.5,
                    attributes: None
                },
            ],
            attributes: None
        }
    );
    assert_eq!(three.cmd3(&["BLPOP", "l", "0.01"]).await, Resp3::Null);
}

#[tokio::test]
async fn publish_reaches_subscribers_of_channels_and_patterns() {
    let fx = start_local(ServerConfig::default()).await;
    let mut publisher = fx.client().await;
    let mut sub = fx.client().await;
    let int = OwnedFrame::Integer;
    let array = |items: Vec<OwnedFrame>| OwnedFrame::Array(items);
    assert_eq!(
        sub.cmd(&["SUBSCRIBE", "news", "sport"]).await,
        array(vec![bulk("subscribe"), bulk("news"), int(1)])
    );
    assert_eq!(
        sub.read_frame().await,
        Some(array(vec![bulk("subscribe"), bulk("sport"), int(2)]))
    );
    assert_eq!(
        sub.cmd(&["PSUBSCRIBE", "n*"]).await,
        array(vec![bulk("psubscribe"), bulk("n*"), int(3)])
    );
    // A RESP2 subscriber runs only the subscription commands, PING and QUIT.
    assert_eq!(
        sub.cmd(&["GET", "k"]).await,
        err(
            "ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
        )
    );
    assert_eq!(
        sub.cmd(&["PING"]).await,
        array(vec![bulk("pong"), bulk("")])
    );
    let OwnedFrame::BulkString(stats) = publisher.cmd(&["INFO", "stats"]).await else {
        panic!("INFO answers a bulk string");
    };
    let stats = String::from_utf8_lossy(&stats).into_owned();
    assert!(
        stats.contains("pubsub_channels:2\r\n") && stats.contains("pubsub_patterns:1\r\n"),
        "{stats}"
    );
    // Two receive it: the channel's subscriber and the pattern's.
    assert_eq!(publisher.cmd(&["PUBLISH", "news", "hello"]).await, int(2));
    assert_eq!(
        sub.read_frame().await,
        Some(array(vec![bulk("message"), bulk("news"), bulk("hello")]))
    );
    assert_eq!(
        sub.read_frame().await,
        Some(array(vec![
            bulk("pmessage"),
            bulk("n*"),
            bulk("news"),
            bulk("hello")
        ]))
    );
    assert_eq!(publisher.cmd(&["PUBLISH", "nobody", "x"]).await, int(1));
    assert_eq!(publisher.cmd(&["PUBLISH", "weather", "x"]).await, int(0));
    assert_eq!(
        publisher.cmd(&["PUBSUB", "CHANNELS"]).await,
        array(vec![bulk("news"), bulk("sport")])
    );
    assert_eq!(
        publisher
            .cmd(&["PUBSUB", "NUMSUB", "news", "weather"])
            .await,
        array(vec![bulk("news"), int(1), bulk("weather"), int(0)])
    );
    assert_eq!(publisher.cmd(&["PUBSUB", "NUMPAT"]).await, int(1));
    assert_eq!(
        publisher.cmd(&["PUBSUB", "NOPE"]).await,
        err("ERR unknown subcommand 'NOPE'. Try PUBSUB HELP.")
    );
    // In a transaction, a publish is one of its writes.
    publisher.cmd(&["MULTI"]).await;
    publisher.cmd(&["PUBLISH", "sport", "goal"]).await;
    publisher.cmd(&["SET", "k", "v"]).await;
    assert_eq!(
        publisher.cmd(&["EXEC"]).await,
        array(vec![int(1), simple("OK")])
    );
    // The pattern message for `nobody` came before this one.
    assert_eq!(
        sub.read_frame().await,
        Some(array(vec![
            bulk("pmessage"),
            bulk("n*"),
            bulk("nobody"),
            bulk("x")
        ]))
    );
    assert_eq!(
        sub.read_frame().await,
        Some(array(vec![bulk("message"), bulk("sport"), bulk("goal")]))
    );
    // Unsubscribing from everything leaves an ordinary connection.
    assert_eq!(
        sub.cmd(&["PUNSUBSCRIBE"]).await,
        array(vec![bulk("punsubscribe"), bulk("n*"), int(2)])
    );
    sub.cmd(&["UNSUBSCRIBE", "news"]).await;
    assert_eq!(
        sub.cmd(&["UNSUBSCRIBE"]).await,
        array(vec![bulk("unsubscribe"), bulk("sport"), int(0)])
    );
    assert_eq!(
        sub.cmd(&["UNSUBSCRIBE"]).await,
        array(vec![bulk("unsubscribe"), OwnedFrame::Null, int(0)])
    );
    assert_eq!(sub.cmd(&["GET", "k"]).await, bulk("v"));
    assert_eq!(publisher.cmd(&["PUBSUB", "NUMPAT"]).await, int(0));
    // A subscriber that goes away is forgotten.
    let mut gone = fx.client().await;
    gone.cmd(&["SUBSCRIBE", "news"]).await;
    drop(gone);
    let mut left = 1;
    for _ in 0..100 {
        left = match publisher.cmd(&["PUBSUB", "NUMSUB", "news"]).await {
            OwnedFrame::Array(items) => match items.get(1) {
                Some(OwnedFrame::Integer(n)) => *n,
                _ => panic!("NUMSUB answers counts"),
            },
            other => panic!("NUMSUB answers an array: {other:?}"),
        };
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(left, 0);
    // RESP3: confirmations and messages are pushes, and every command runs.
    let mut three = fx.client().await;
    three.cmd3(&["HELLO", "3"]).await;
    let blob = |s: &str| Resp3::BlobString {
        data: s.as_bytes().to_vec(),
        attributes: None,
    };
    assert_eq!(
        three.cmd3(&["SUBSCRIBE", "news"]).await,
        Resp3::Push {
            data: vec![
                blob("subscribe"),
                blob("news"),
                Resp3::Number {
                    data: 1,
                    attributes: None
                }
            ],
            attributes: None
        }
    );
    assert_eq!(three.cmd3(&["GET", "k"]).await, blob("v"));
    publisher.cmd(&["PUBLISH", "news", "pushed"]).await;
    assert_eq!(
        three.read_frame3().await,
        Some(Resp3::Push {
            data: vec![blob("message"), blob("news"), blob("pushed")],
            attributes: None
        })
    );
}

#[tokio::test]
async fn lists() {
    let fx = start_local(ServerConfig::default()).await;
    let mut c = fx.client().await;
    let int = OwnedFrame::Integer;
    let array = |items: &[&str]| OwnedFrame::Array(items.iter().map(|i| bulk(i)).collect());
    let wrong_type = err("WRONGTYPE Operation against a key holding the wrong kind of value");
    c.cmd(&["SET", "str", "x"]).await;
    for (args, answer) in [
        (&["RPUSH", "l", "a", "b", "c"][..], int(3)),
        // Each pushed at the head in turn.
        (&["LPUSH", "l", "y", "z"], int(5)),
        (
            &["LRANGE", "l", "0", "-1"],
            array(&["z", "y", "a", "b", "c"]),
        ),
        (&["LRANGE", "l", "-2", "100"], array(&["b", "c"])),
        (&["LRANGE", "l", "3", "1"], array(&[])),
        (&["LRANGE", "nokey", "0", "-1"], array(&[])),
        (
            &["LRANGE", "l", "x", "1"],
            err("ERR value is not an integer or out of range"),
        ),
        (&["LLEN", "l"], int(5)),
        (&["LINDEX", "l", "-1"], bulk("c")),
        (&["LINDEX", "l", "9"], OwnedFrame::Null),
        (&["LPUSHX", "nokey", "a"], int(0)),
        (&["RPUSHX", "l", "c"], int(6)),
        (&["LPOS", "l", "c"], int(4)),
        (&["LPOS", "l", "c", "RANK", "-1"], int(5)),
        (
            &["LPOS", "l", "c", "COUNT", "0"],
            OwnedFrame::Array(vec![int(4), int(5)]),
        ),
        (&["LPOS", "l", "c", "MAXLEN", "2"], OwnedFrame::Null),
        (
            &["LPOS", "l", "c", "RANK", "0"],
            err(
                "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
            ),
        ),
        (
            &["LPOS", "l", "c", "COUNT", "-1"],
            err("ERR COUNT can't be negative"),
        ),
        (&["LSET", "l", "0", "Z"], simple("OK")),
        (&["LSET", "l", "10", "Z"], err("ERR index out of range")),
        (&["LSET", "nokey", "0", "Z"], err("ERR no such key")),
        (&["LREM", "l", "-1", "c"], int(1)),
        (&["LINSERT", "l", "BEFORE", "a", "ins"], int(6)),
        (&["LINSERT", "l", "AFTER", "nope", "ins"], int(-1)),
        (&["LINSERT", "nokey", "AFTER", "a", "ins"], int(0)),
        (
            &["LINSERT", "l", "NEAR", "a", "ins"],
            err("ERR syntax error"),
        ),
        (
            &["LRANGE", "l", "0", "-1"],
            array(&["Z", "y", "ins", "a", "b", "c"]),
        ),
        (&["LTRIM", "l", "1", "-2"], simple("OK")),
        (&["LRANGE", "l", "0", "-1"], array(&["y", "ins", "a", "b"])),
        (&["LPOP", "l"], bulk("y")),
        (&["RPOP", "l", "2"], array(&["b", "a"])),
        (&["LPOP", "l", "0"], array(&[])),
        (&["LPOP", "nokey"], OwnedFrame::Null),
        (&["LPOP", "nokey", "2"], OwnedFrame::Null),
        (
            &["LPOP", "l", "-1"],
            err("ERR value is out of range, must be positive"),
        ),
        (&["RPUSH", "q", "1", "2", "3"], int(3)),
        (&["LMOVE", "q", "q", "LEFT", "RIGHT"], bulk("1")),
        (&["LRANGE", "q", "0", "-1"], array(&["2", "3", "1"])),
        (&["RPOPLPUSH", "q", "done"], bulk("1")),
        (&["LMOVE", "q", "done", "LEFT", "LEFT"], bulk("2")),
        (&["LRANGE", "done", "0", "-1"], array(&["2", "1"])),
        (&["LMOVE", "nokey", "str", "LEFT", "LEFT"], OwnedFrame::Null),
        (&["LMOVE", "q", "str", "LEFT", "LEFT"], wrong_type.clone()),
        (
            &["LMOVE", "q", "done", "UP", "LEFT"],
            err("ERR syntax error"),
        ),
        // The last item gone, the key is gone.
        (&["LPOP", "l"], bulk("ins")),
        (&["EXISTS", "l"], int(0)),
        (&["LTRIM", "done", "5", "9"], simple("OK")),
        (&["EXISTS", "done"], int(0)),
        (&["TYPE", "q"], simple("list")),
        (&["LPUSH", "str", "a"], wrong_type.clone()),
        (&["LRANGE", "str", "0", "1"], wrong_type.clone()),
        (&["GET", "q"], wrong_type.clone()),
        (
            &["SCAN", "0", "TYPE", "list"],
            OwnedFrame::Array(vec![bulk("0"), array(&["q"])]),
        ),
    ] {
        assert_eq!(c.cmd(args).await, answer, "{args:?}");
    }
    assert_eq!(c.cmd(&["MULTI"]).await, simple("OK"));
    for args in [
        &["RPUSH", "m", "a", "b"][..],
        &["LRANGE", "m", "0", "-1"],
        &["LPOS", "m", "b"],
        &["LPOS", "m", "b", "RANK", "0"],
        &["LLEN", "str"],
    ] {
        assert_eq!(c.cmd(args).await, simple("QUEUED"), "{args:?}");
    }
    assert_eq!(
        c.cmd(&["EXEC"]).await,
        OwnedFrame::Array(vec![
            int(2),
            array(&["a", "b"]),
            int(1),
            err(
                "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"
            ),
            wrong_type,
        ])
    );
}

#[tokio::test]
async fn append_stops_at_the_request_limit() {
    let fx = start_local(with_server(|s| s.request_bytes_max = 1024)).await;
    let mut c = fx.client().await;
    let chunk = "x".repeat(400);
    assert_eq!(
        c.cmd(&["APPEND", "k", &chunk]).await,
        OwnedFrame::Integer(400)
    );
    assert_eq!(
        c.cmd(&["APPEND", "k", &chunk]).await,
        OwnedFrame::Integer(800)
    );
    assert_err_starts(
        &c.cmd(&["APPEND", "k", &chunk]).await,
        "ERR string exceeds maximum allowed size (1024 bytes",
    );
    assert_eq!(c.cmd(&["STRLEN", "k"]).await, OwnedFrame::Integer(800));
    fx.stop().await;
}

#[tokio::test]
async fn hello_client_and_select() {
    let fx = start_local(with_password("s3cret")).await;
    let mut c = fx.client().await;
    assert_eq!(
        c.cmd(&["HELLO", "4", "AUTH", "default", "s3cret"]).await,
        err("NOPROTO unsupported protocol version")
    );
    assert_err_starts(
        &c.cmd(&["HELLO", "2"]).await,
        "NOAUTH HELLO must be called with the client already authenticated",
    );
    assert_eq!(
        c.cmd(&["HELLO", "2", "AUTH", "default", "wrong"]).await,
        err("WRONGPASS invalid username-password pair or user is disabled.")
    );
    assert_eq!(
        c.cmd(&["HELLO", "2", "FOO"]).await,
        err("ERR Syntax error in HELLO option 'FOO'")
    );
    let OwnedFrame::Array(fields) = c
        .cmd(&["HELLO", "2", "AUTH", "default", "s3cret", "SETNAME", "app"])
        .await
    else {
        panic!("HELLO answers with an array");
    };
    assert_eq!(fields[0], bulk("server"));
    assert_eq!(fields[4..6], [bulk("proto"), OwnedFrame::Integer(2)]);
    let OwnedFrame::Integer(id) = fields[7] else {
        panic!("HELLO gives the connection's id: {fields:?}");
    };
    assert_eq!(c.cmd(&["CLIENT", "ID"]).await, OwnedFrame::Integer(id));
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]).await, bulk("app"));
    assert_eq!(c.cmd(&["CLIENT", "SETNAME", "other"]).await, simple("OK"));
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]).await, bulk("other"));
    assert_eq!(
        c.cmd(&["CLIENT", "SETNAME", "a b"]).await,
        err("ERR Client names cannot contain spaces, newlines or special characters.")
    );
    assert_eq!(c.cmd(&["CLIENT", "SETNAME", ""]).await, simple("OK"));
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]).await, OwnedFrame::Null);
    assert_eq!(
        c.cmd(&["CLIENT", "SETINFO", "LIB-NAME", "redis-py"]).await,
        simple("OK")
    );
    assert_eq!(
        c.cmd(&["CLIENT", "PAUSE", "10"]).await,
        err("ERR unknown subcommand 'PAUSE'. Try CLIENT HELP.")
    );
    let mut other = fx.client().await;
    assert_eq!(other.cmd(&["AUTH", "s3cret"]).await, simple("OK"));
    let OwnedFrame::Integer(other_id) = other.cmd(&["CLIENT", "ID"]).await else {
        panic!("CLIENT ID is an integer");
    };
    assert_ne!(other_id, id, "ids are per connection");

    // RESP3: HELLO answers with a map, nulls are RESP3 nulls, the rest as before.
    let mut three = fx.client().await;
    let Resp3::Map { data, .. } = three
        .cmd3(&["HELLO", "3", "AUTH", "default", "s3cret"])
        .await
    else {
        panic!("HELLO 3 answers with a map");
    };
    let proto = Resp3::BlobString {
        data: b"proto".to_vec(),
        attributes: None,
    };
    assert_eq!(
        data.get(&proto),
        Some(&Resp3::Number {
            data: 3,
            attributes: None
        })
    );
    assert_eq!(three.cmd3(&["GET", "missing"]).await, Resp3::Null);
    assert_eq!(
        three.cmd3(&["MGET", "missing"]).await,
        Resp3::Array {
            data: vec![Resp3::Null],
            attributes: None
        }
    );
    assert_eq!(
        three.cmd3(&["SET", "k", "v"]).await,
        Resp3::SimpleString {
            data: b"OK".to_vec(),
            attributes: None
        }
    );
    // And back to RESP2.
    three.cmd3(&["HELLO", "2"]).await;
    assert_eq!(three.cmd(&["GET", "missing"]).await, OwnedFrame::Null);

    // One database: SELECT 0 is fine, any other is refused rather than ignored.
    assert_eq!(c.cmd(&["SELECT", "0"]).await, simple("OK"));
    assert_eq!(
        c.cmd(&["SELECT", "1"]).await,
        err("ERR DB index is out of range")
    );
    assert_eq!(
        c.cmd(&["SELECT", "x"]).await,
        err("ERR value is not an integer or out of range")
    );
    fx.stop().await;
}

#[tokio::test]
async fn multi_exec_runs_the_queued_commands_together() {
    let fx = start_local(ServerConfig::default()).await;
    let mut c = fx.client().await;
    let queued = simple("QUEUED");
    let int = OwnedFrame::Integer;
    assert_eq!(c.cmd(&["EXEC"]).await, err("ERR EXEC without MULTI"));
    assert_eq!(c.cmd(&["DISCARD"]).await, err("ERR DISCARD without MULTI"));
    assert_eq!(c.cmd(&["MULTI"]).await, simple("OK"));
    assert_eq!(
        c.cmd(&["MULTI"]).await,
        err("ERR MULTI calls can not be nested")
    );
    for args in [
        &["SET", "a", "1", "EX", "100"][..],
        &["INCR", "a"],
        &["GET", "a"],
        &["SETNX", "a", "x"],
        &["SET", "s", "text"],
        &["INCR", "s"],
        &["MGET", "a", "nope"],
        &["PTTL", "a"],
        &["EXISTS", "a", "s"],
        &["STRLEN", "s"],
    ] {
        assert_eq!(c.cmd(args).await, queued, "{args:?}");
    }
    // Nothing ran yet.
    assert_eq!(fx.store.applied_index(), 0);
    assert_eq!(
        c.cmd(&["EXEC"]).await,
        OwnedFrame::Array(vec![
            simple("OK"),
            int(2),
            bulk("2"),
            int(0),
            simple("OK"),
            // A command that fails does not stop the others.
            err("ERR value is not an integer or out of range"),
            OwnedFrame::Array(vec![bulk("2"), OwnedFrame::Null]),
            int(100_000),
            int(2),
            int(4),
        ])
    );
    // One entry in the log for the whole transaction.
    assert_eq!(fx.store.applied_index(), 1);

    // An empty transaction, and one discarded.
    assert_eq!(c.cmd(&["MULTI"]).await, simple("OK"));
    assert_eq!(c.cmd(&["EXEC"]).await, OwnedFrame::Array(Vec::new()));
    assert_eq!(c.cmd(&["MULTI"]).await, simple("OK"));
    assert_eq!(c.cmd(&["SET", "a", "gone"]).await, queued);
    assert_eq!(c.cmd(&["DISCARD"]).await, simple("OK"));
    assert_eq!(c.cmd(&["GET", "a"]).await, bulk("2"));

    // The keyspace, range and float commands queue too, and see the writes before them.
    assert_eq!(c.cmd(&["MULTI"]).await, simple("OK"));
    for args in [
        &["RENAME", "s", "t"][..],
        &["GETRANGE", "t", "1", "-2"],
        &["SETRANGE", "t", "4", "s"],
        &["COPY", "t", "u"],
        &["RENAMENX", "u", "t"],
        &["INCRBYFLOAT", "n", "0.5"],
        &["TOUCH", "t", "u", "s"],
        &["SUBSTR", "u", "0", "0"],
    ] {
        assert_eq!(c.cmd(args).await, queued, "{args:?}");
    }
    assert_eq!(
        c.cmd(&["EXEC"]).await,
        OwnedFrame::Array(vec![
            simple("OK"),
            bulk("ex"),
            int(5),
            int(1),
            int(0),
            bulk("0.5"),
            int(2),
            bulk("t"),
        ])
    );

    // An unknown command, a wrong number of arguments or a command that is not data
    // discards the whole transaction at EXEC.
    let abort = err("EXECABORT Transaction discarded because of previous errors.");
    for refused in [&["NOPE"][..], &["GET"], &["CLUSTER", "MEMBERS"]] {
        assert_eq!(c.cmd(&["MULTI"]).await, simple("OK"));
        assert_eq!(c.cmd(&["SET", "a", "changed"]).await, queued);
        assert!(
            matches!(c.cmd(refused).await, OwnedFrame::Error(_)),
            "{refused:?}"
        );
        assert_eq!(c.cmd(&["EXEC"]).await, abort, "{refused:?}");
    }
    assert_eq!(c.cmd(&["GET", "a"]).await, bulk("2"));

    // As in Redis, bad arguments are that command's error at EXEC and the others run;
    // PING, ECHO, TYPE and the expiry reads are answered in place.
    assert_eq!(c.cmd(&["MULTI"]).await, simple("OK"));
    for args in [
        &["SET", "t", "changed", "PX", "5000"][..],
        &["SET", "t", "v", "EX", "0"],
        &["INCRBY", "t", "x"],
        &["BITCOUNT", "t", "0", "1", "WORD"],
        &["PING"],
        &["ECHO", "hi"],
        &["TYPE", "t"],
        &["TYPE", "nothing"],
        &["PEXPIRETIME", "t"],
        &["EXPIRETIME", "nothing"],
        &["GET", "t"],
    ] {
        assert_eq!(c.cmd(args).await, queued, "{args:?}");
    }
    assert_eq!(
        c.cmd(&["EXEC"]).await,
        OwnedFrame::Array(vec![
            simple("OK"),
            err("ERR invalid expire time in 'set' command"),
            err("ERR value is not an integer or out of range"),
            err("ERR syntax error"),
            simple("PONG"),
            bulk("hi"),
            simple("string"),
            simple("none"),
            int(i64::try_from(START_MS).unwrap() + 5_000),
            int(-2),
            bulk("changed"),
        ])
    );
    // Only answers known while queuing: nothing goes to the log.
    let applied = fx.store.applied_index();
    assert_eq!(c.cmd(&["MULTI"]).await, simple("OK"));
    assert_eq!(c.cmd(&["PING", "x"]).await, queued);
    assert_eq!(c.cmd(&["SET", "t", "v", "EX", "-1"]).await, queued);
    assert_eq!(
        c.cmd(&["EXEC"]).await,
        OwnedFrame::Array(vec![
            bulk("x"),
            err("ERR invalid expire time in 'set' command")
        ])
    );
    assert_eq!(fx.store.applied_index(), applied);
    fx.stop().await;
}

/// WATCH: a transaction runs only if the keys watched still hold what they held.
#[tokio::test]
async fn watch_aborts_a_transaction_whose_keys_changed() {
    let fx = start_local(with_server(|s| s.expire_purge_interval_ms = 0)).await;
    let mut c = fx.client().await;
    let mut other = fx.client().await;
    let ok = simple("OK");
    let aborted = OwnedFrame::Null;
    let int = OwnedFrame::Integer;
    assert_eq!(c.cmd(&["SET", "k", "1"]).await, ok);

    // Unchanged: runs.
    assert_eq!(c.cmd(&["WATCH", "k", "absent"]).await, ok);
    assert_eq!(c.cmd(&["MULTI"]).await, ok);
    assert_eq!(c.cmd(&["INCR", "k"]).await, simple("QUEUED"));
    assert_eq!(c.cmd(&["EXEC"]).await, OwnedFrame::Array(vec![int(2)]));

    // Changed by another client, deleted, or expired: aborted, nothing runs.
    let changes: [&[&str]; 3] = [&["SET", "k", "changed"], &["SET", "absent", "now"], &[]];
    for change in changes {
        assert_eq!(c.cmd(&["SET", "t", "v", "PX", "50"]).await, ok);
        assert_eq!(c.cmd(&["WATCH", "k", "t"]).await, ok);
        if change.is_empty() {
            fx.clock.advance(51);
        } else {
            assert_eq!(other.cmd(change).await, ok);
            // The other key changed only in the first case.
            if change[1] == "absent" {
                assert_eq!(c.cmd(&["WATCH", "absent"]).await, ok);
                assert_eq!(other.cmd(&["DEL", "absent"]).await, int(1));
            }
        }
        assert_eq!(c.cmd(&["MULTI"]).await, ok);
        assert_eq!(c.cmd(&["SET", "k", "mine"]).await, simple("QUEUED"));
        assert_eq!(c.cmd(&["EXEC"]).await, aborted, "{change:?}");
        assert_ne!(c.cmd(&["GET", "k"]).await, bulk("mine"), "{change:?}");
        // EXEC forgot the watches: the next transaction runs.
        assert_eq!(c.cmd(&["MULTI"]).await, ok);
        assert_eq!(c.cmd(&["GET", "k"]).await, simple("QUEUED"));
        assert!(matches!(c.cmd(&["EXEC"]).await, OwnedFrame::Array(_)));
    }

    // UNWATCH and DISCARD forget the watches too.
    assert_eq!(c.cmd(&["WATCH", "k"]).await, ok);
    assert_eq!(other.cmd(&["SET", "k", "x"]).await, ok);
    assert_eq!(c.cmd(&["UNWATCH"]).await, ok);
    assert_eq!(c.cmd(&["MULTI"]).await, ok);
    assert_eq!(c.cmd(&["SET", "k", "y"]).await, simple("QUEUED"));
    assert_eq!(c.cmd(&["EXEC"]).await, OwnedFrame::Array(vec![ok.clone()]));
    assert_eq!(c.cmd(&["WATCH", "k"]).await, ok);
    assert_eq!(other.cmd(&["SET", "k", "x"]).await, ok);
    assert_eq!(c.cmd(&["MULTI"]).await, ok);
    assert_eq!(c.cmd(&["DISCARD"]).await, ok);
    assert_eq!(c.cmd(&["MULTI"]).await, ok);
    assert_eq!(c.cmd(&["EXEC"]).await, OwnedFrame::Array(Vec::new()));

    // A key set again to what it held counts as unchanged.
    assert_eq!(c.cmd(&["WATCH", "k"]).await, ok);
    assert_eq!(other.cmd(&["SET", "k", "z"]).await, ok);
    assert_eq!(other.cmd(&["SET", "k", "x"]).await, ok);
    assert_eq!(c.cmd(&["MULTI"]).await, ok);
    assert_eq!(c.cmd(&["EXEC"]).await, OwnedFrame::Array(Vec::new()));

    assert_eq!(c.cmd(&["MULTI"]).await, ok);
    assert_eq!(
        c.cmd(&["WATCH", "k"]).await,
        err("ERR WATCH inside MULTI is not allowed")
    );
    assert_eq!(c.cmd(&["DISCARD"]).await, ok);
    fx.stop().await;
}

/// Another client never sees a transaction half done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_is_seen_whole_or_not_at_all() {
    const INCRS: usize = 20;
    let fx = start_local(ServerConfig::default()).await;
    let mut writer = fx.client().await;
    let mut reader = fx.client().await;
    let write = async move {
        for _ in 0..30 {
            assert_eq!(writer.cmd(&["MULTI"]).await, simple("OK"));
            for _ in 0..INCRS {
                writer.cmd(&["INCR", "n"]).await;
            }
            let OwnedFrame::Array(replies) = writer.cmd(&["EXEC"]).await else {
                panic!("EXEC answers with an array");
            };
            assert_eq!(replies.len(), INCRS);
        }
    };
    let read = async move {
        let mut seen = Vec::new();
        for _ in 0..200 {
            match reader.cmd(&["GET", "n"]).await {
                OwnedFrame::Null => seen.push(0),
                OwnedFrame::BulkString(n) => {
                    seen.push(String::from_utf8(n).unwrap().parse::<usize>().unwrap());
                }
                other => panic!("GET answered {other:?}"),
            }
            tokio::task::yield_now().await;
        }
        seen
    };
    let ((), seen) = tokio::join!(write, read);
    assert!(
        seen.iter().all(|n| n % INCRS == 0),
        "a read saw part of a transaction: {seen:?}"
    );
    fx.stop().await;
}

/// A transaction's size and the values its reads return are bounded.
#[tokio::test]
async fn transactions_are_bounded() {
    let fx = start_local(with_server(|s| {
        s.request_bytes_max = 8192;
        s.reply_bytes_max = 1024;
    }))
    .await;
    let mut c = fx.client().await;
    let value = "v".repeat(600);
    assert_eq!(c.cmd(&["SET", "big", &value]).await, simple("OK"));
    assert_eq!(c.cmd(&["MULTI"]).await, simple("OK"));
    assert_eq!(c.cmd(&["GET", "big"]).await, simple("QUEUED"));
    assert_eq!(c.cmd(&["GET", "big"]).await, simple("QUEUED"));
    assert_eq!(c.cmd(&["SET", "after", "1"]).await, simple("QUEUED"));
    let OwnedFrame::Array(replies) = c.cmd(&["EXEC"]).await else {
        panic!("EXEC answers with an array");
    };
    assert_eq!(replies[0], bulk(&value));
    assert_err_starts(&replies[1], "ERR reply too large");
    assert_eq!(replies[2], simple("OK"));

    assert_eq!(c.cmd(&["MULTI"]).await, simple("OK"));
    let chunk = "x".repeat(1000);
    let mut refused = None;
    for i in 0..10 {
        let reply = c.cmd(&["SET", &format!("k{i}"), &chunk]).await;
        if reply != simple("QUEUED") {
            refused = Some(reply);
            break;
        }
    }
    assert_err_starts(
        &refused.expect("the queue is bounded"),
        "ERR transaction too large",
    );
    assert_eq!(
        c.cmd(&["EXEC"]).await,
        err("EXECABORT Transaction discarded because of previous errors.")
    );
    assert_eq!(c.cmd(&["EXISTS", "k0"]).await, OwnedFrame::Integer(0));
    fx.stop().await;
}

/// FLUSHALL removes every key, buffered or already written to the database, and the
/// store takes writes again after it.
#[tokio::test]
async fn flushall_removes_every_key() {
    let fx = start_local(with_server(|s| s.apply_buffer_keys_max = 4)).await;
    let mut c = fx.client().await;
    for i in 0..10 {
        assert_eq!(
            c.cmd(&["SET", &format!("k{i}"), "v", "EX", "100"]).await,
            simple("OK")
        );
    }
    fx.store.persist().unwrap();
    assert_eq!(c.cmd(&["SET", "after", "v"]).await, simple("OK"));
    assert_eq!(c.cmd(&["FLUSHALL"]).await, simple("OK"));
    assert_eq!(c.cmd(&["DBSIZE"]).await, OwnedFrame::Integer(0));
    assert_eq!(c.cmd(&["KEYS", "*"]).await, OwnedFrame::Array(Vec::new()));
    assert_eq!(fx.store.next_expiry_ms().unwrap(), None);
    assert_eq!(c.cmd(&["SET", "k1", "again"]).await, simple("OK"));
    assert_eq!(c.cmd(&["FLUSHDB", "async"]).await, simple("OK"));
    assert_eq!(c.cmd(&["GET", "k1"]).await, OwnedFrame::Null);
    fx.store.persist().unwrap();
    assert_eq!(fx.store.key_count().unwrap(), 0);
    assert_eq!(c.cmd(&["FLUSHALL", "NOW"]).await, err("ERR syntax error"));
    fx.stop().await;
}

#[tokio::test]
async fn keys_and_scan() {
    let fx = start_local(with_server(|s| s.expire_purge_interval_ms = 0)).await;
    let mut c = fx.client().await;
    let names: Vec<String> = (0..10).map(|i| format!("user:{i}")).collect();
    for name in &names {
        assert_eq!(c.cmd(&["SET", name, "v"]).await, simple("OK"));
    }
    assert_eq!(c.cmd(&["SET", "other", "v"]).await, simple("OK"));
    assert_eq!(
        c.cmd(&["SET", "brief", "v", "PX", "10"]).await,
        simple("OK")
    );
    fx.clock.advance(11);
    let sorted = |frame: OwnedFrame| {
        let OwnedFrame::Array(items) = frame else {
            panic!("an array: {frame:?}");
        };
        let mut keys: Vec<String> = items
            .into_iter()
            .map(|item| match item {
                OwnedFrame::BulkString(key) => String::from_utf8(key).unwrap(),
                other => panic!("a key: {other:?}"),
            })
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(sorted(c.cmd(&["KEYS", "user:*"]).await), names);
    assert_eq!(
        sorted(c.cmd(&["KEYS", "*"]).await).len(),
        11,
        "the expired key is left out"
    );
    assert_eq!(
        sorted(c.cmd(&["KEYS", "user:[2-3]"]).await),
        ["user:2", "user:3"]
    );

    // A scan in steps of 3 returns every key once, then cursor 0.
    let mut cursor = "0".to_owned();
    let mut seen = Vec::new();
    let mut calls = 0;
    loop {
        let OwnedFrame::Array(reply) = c
            .cmd(&["SCAN", &cursor, "COUNT", "3", "MATCH", "user:*"])
            .await
        else {
            panic!("SCAN answers with an array");
        };
        let [OwnedFrame::BulkString(next), keys] = <[OwnedFrame; 2]>::try_from(reply).unwrap()
        else {
            panic!("a cursor and the keys");
        };
        seen.extend(sorted(keys));
        cursor = String::from_utf8(next).unwrap();
        calls += 1;
        if cursor == "0" {
            break;
        }
        assert!(calls < 20, "the scan never ended");
    }
    seen.sort();
    assert_eq!(seen, names);
    assert_eq!(
        c.cmd(&["SCAN", "0", "COUNT", "100", "TYPE", "list"]).await,
        OwnedFrame::Array(vec![bulk("0"), OwnedFrame::Array(Vec::new())])
    );
    let OwnedFrame::Array(typed) = c
        .cmd(&["SCAN", "0", "COUNT", "100", "TYPE", "string"])
        .await
    else {
        panic!("SCAN answers with an array");
    };
    assert_eq!(sorted(typed[1].clone()).len(), 11);

    let syntax = err("ERR syntax error");
    for (args, expected) in [
        (&["SCAN", "abc"][..], err("ERR invalid cursor")),
        (&["SCAN", "12345"], err("ERR invalid cursor")),
        (&["SCAN", "0", "COUNT", "0"], syntax.clone()),
        (
            &["SCAN", "0", "COUNT", "x"],
            err("ERR value is not an integer or out of range"),
        ),
        (&["SCAN", "0", "MATCH"], syntax.clone()),
        (&["SCAN", "0", "BOGUS", "1"], syntax),
    ] {
        assert_eq!(c.cmd(args).await, expected, "{args:?}");
    }
    fx.stop().await;
}

#[tokio::test]
async fn expire_persist_and_ttl() {
    let fx = start_local(with_server(|s| s.expire_purge_interval_ms = 0)).await;
    let mut c = fx.client().await;
    let int = OwnedFrame::Integer;
    let now_s = START_MS / 1000;
    assert_eq!(c.cmd(&["SET", "k", "v"]).await, simple("OK"));
    assert_eq!(c.cmd(&["TTL", "k"]).await, int(-1));
    assert_eq!(c.cmd(&["TTL", "missing"]).await, int(-2));
    assert_eq!(c.cmd(&["TYPE", "k"]).await, simple("string"));
    assert_eq!(c.cmd(&["TYPE", "missing"]).await, simple("none"));
    assert_eq!(c.cmd(&["EXPIRE", "missing", "10"]).await, int(0));
    assert_eq!(c.cmd(&["PERSIST", "k"]).await, int(0));

    assert_eq!(c.cmd(&["EXPIRE", "k", "10"]).await, int(1));
    assert_eq!(c.cmd(&["TTL", "k"]).await, int(10));
    assert_eq!(c.cmd(&["PTTL", "k"]).await, int(10_000));
    let at_ms = i64::try_from(START_MS).unwrap() + 10_000;
    assert_eq!(c.cmd(&["PEXPIRETIME", "k"]).await, int(at_ms));
    assert_eq!(c.cmd(&["EXPIRETIME", "k"]).await, int(at_ms / 1000));
    // TTL rounds to the nearest second.
    fx.clock.advance(1_400);
    assert_eq!(c.cmd(&["TTL", "k"]).await, int(9));
    fx.clock.advance(200);
    assert_eq!(c.cmd(&["TTL", "k"]).await, int(8));
    fx.clock.advance(400);
    assert_eq!(c.cmd(&["PTTL", "k"]).await, int(8_000));

    // NX, XX, GT and LT, a key without an expiry counting as expiring never.
    assert_eq!(c.cmd(&["PEXPIRE", "k", "5000", "NX"]).await, int(0));
    assert_eq!(c.cmd(&["PEXPIRE", "k", "9000", "GT"]).await, int(1));
    assert_eq!(c.cmd(&["PEXPIRE", "k", "8000", "GT"]).await, int(0));
    assert_eq!(c.cmd(&["PEXPIRE", "k", "8000", "lt"]).await, int(1));
    assert_eq!(c.cmd(&["PEXPIRE", "k", "8000", "LT"]).await, int(0));
    assert_eq!(c.cmd(&["PTTL", "k"]).await, int(8_000));
    assert_eq!(c.cmd(&["PERSIST", "k"]).await, int(1));
    assert_eq!(c.cmd(&["PTTL", "k"]).await, int(-1));
    assert_eq!(c.cmd(&["EXPIRE", "k", "5", "XX"]).await, int(0));
    assert_eq!(c.cmd(&["EXPIRE", "k", "5", "GT"]).await, int(0));
    assert_eq!(c.cmd(&["EXPIRE", "k", "5", "XX", "LT"]).await, int(0));
    assert_eq!(c.cmd(&["EXPIRE", "k", "5", "LT"]).await, int(1));
    assert_eq!(c.cmd(&["EXPIRE", "k", "7", "XX", "GT"]).await, int(1));
    assert_eq!(c.cmd(&["TTL", "k"]).await, int(7));

    // Absolute times, in seconds and milliseconds since the epoch.
    let at = (now_s + 100).to_string();
    assert_eq!(c.cmd(&["EXPIREAT", "k", &at]).await, int(1));
    assert_eq!(c.cmd(&["TTL", "k"]).await, int(98));
    let at_ms = (START_MS + 50_000).to_string();
    assert_eq!(c.cmd(&["PEXPIREAT", "k", &at_ms]).await, int(1));
    assert_eq!(c.cmd(&["PTTL", "k"]).await, int(48_000));

    // The key lives through its expiry, and is gone after.
    assert_eq!(
        c.cmd(&["SET", "short", "v", "PX", "100"]).await,
        simple("OK")
    );
    fx.clock.advance(100);
    assert_eq!(c.cmd(&["PTTL", "short"]).await, int(0));
    fx.clock.advance(1);
    assert_eq!(c.cmd(&["PTTL", "short"]).await, int(-2));
    assert_eq!(c.cmd(&["TYPE", "short"]).await, simple("none"));
    assert_eq!(c.cmd(&["EXPIRE", "short", "10"]).await, int(0));
    assert_eq!(c.cmd(&["PERSIST", "short"]).await, int(0));

    // An expiry now or in the past deletes the key at once.
    assert_eq!(c.cmd(&["SET", "gone", "v"]).await, simple("OK"));
    assert_eq!(c.cmd(&["EXPIRE", "gone", "-1"]).await, int(1));
    assert_eq!(c.cmd(&["EXISTS", "gone"]).await, int(0));
    assert_eq!(c.cmd(&["SET", "gone", "v"]).await, simple("OK"));
    assert_eq!(c.cmd(&["PEXPIRE", "gone", "0"]).await, int(1));
    assert_eq!(c.cmd(&["GET", "gone"]).await, OwnedFrame::Null);
    assert_eq!(c.cmd(&["SET", "gone", "v"]).await, simple("OK"));
    assert_eq!(c.cmd(&["EXPIREAT", "gone", "-5"]).await, int(1));
    assert_eq!(c.cmd(&["EXISTS", "gone"]).await, int(0));
    let keys_before = fx.store.key_count().unwrap();

    // Errors, in Redis's words, change nothing.
    let cases: &[(&[&str], &str)] = &[
        (
            &["EXPIRE", "k", "10", "NX", "XX"],
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ),
        (
            &["EXPIRE", "k", "10", "GT", "NX"],
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ),
        (
            &["EXPIRE", "k", "10", "GT", "LT"],
            "ERR GT and LT options at the same time are not compatible",
        ),
        (
            &["EXPIRE", "k", "10", "soon"],
            "ERR Unsupported option soon",
        ),
        (
            &["EXPIRE", "k", "ten"],
            "ERR value is not an integer or out of range",
        ),
        (
            &["EXPIRE", "k", "+10"],
            "ERR value is not an integer or out of range",
        ),
        (
            &["EXPIRE", "k", "9223372036854775807"],
            "ERR invalid expire time in 'expire' command",
        ),
        (
            &["PEXPIRE", "k", "9223372036854775807"],
            "ERR invalid expire time in 'pexpire' command",
        ),
        (
            &["EXPIREAT", "k", "-9223372036854775808"],
            "ERR invalid expire time in 'expireat' command",
        ),
    ];
    for (args, message) in cases {
        assert_eq!(c.cmd(args).await, err(message), "{args:?}");
    }
    // 101 ms passed since the PEXPIREAT above.
    assert_eq!(c.cmd(&["PTTL", "k"]).await, int(47_899));
    assert_eq!(fx.store.key_count().unwrap(), keys_before);
    fx.stop().await;
}

#[tokio::test]
async fn expiry_follows_the_clock_and_purge_removes_keys() {
    // No background purge: this test calls it itself.
    let fx = start_local(with_server(|s| s.expire_purge_interval_ms = 0)).await;
    let mut c = fx.client().await;
    assert_eq!(c.cmd(&["SET", "px", "v", "PX", "100"]).await, simple("OK"));
    assert_eq!(c.cmd(&["SET", "ex", "v", "EX", "2"]).await, simple("OK"));
    let at = (START_MS + 300).to_string();
    assert_eq!(
        c.cmd(&["SET", "pxat", "v", "PXAT", &at]).await,
        simple("OK")
    );
    let at_s = (START_MS / 1000 + 5).to_string();
    assert_eq!(
        c.cmd(&["SET", "exat", "v", "EXAT", &at_s]).await,
        simple("OK")
    );
    assert_eq!(c.cmd(&["SET", "keep", "v"]).await, simple("OK"));

    fx.clock.advance(100);
    assert_eq!(c.cmd(&["GET", "px"]).await, bulk("v"));
    fx.clock.advance(1);
    assert_eq!(c.cmd(&["GET", "px"]).await, OwnedFrame::Null);
    assert_eq!(c.cmd(&["EXISTS", "px", "ex"]).await, OwnedFrame::Integer(1));
    // SET without options clears a TTL.
    assert_eq!(c.cmd(&["SET", "ex", "w"]).await, simple("OK"));
    fx.clock.advance(10_000);
    assert_eq!(
        c.cmd(&["MGET", "px", "ex", "pxat", "exat", "keep"]).await,
        OwnedFrame::Array(vec![
            OwnedFrame::Null,
            bulk("w"),
            OwnedFrame::Null,
            OwnedFrame::Null,
            bulk("v")
        ])
    );
    // Hidden but still stored, until the leader's purge removes them.
    assert_eq!(fx.store.key_count().unwrap(), 5);
    assert_eq!(fx.server.purge_expired_once().await.unwrap(), 3);
    assert_eq!(fx.server.purge_expired_once().await.unwrap(), 0);
    assert_eq!(fx.store.key_count().unwrap(), 2);
    fx.stop().await;
}

/// The background task purges expired keys on its own while this node leads.
#[tokio::test]
async fn the_leader_purges_in_the_background() {
    let fx = start_local(with_server(|s| s.expire_purge_interval_ms = 5)).await;
    let mut c = fx.client().await;
    for i in 0..10 {
        let key = format!("k{i}");
        assert_eq!(c.cmd(&["SET", &key, "v", "PX", "50"]).await, simple("OK"));
    }
    assert_eq!(c.cmd(&["SET", "keep", "v"]).await, simple("OK"));
    fx.clock.advance(51);
    // Liveness only: wait (bounded) for the purge to happen, no timing is asserted.
    let mut waited = 0;
    while fx.store.key_count().unwrap() > 1 {
        assert!(waited < 2_000, "expired keys were never purged");
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 1;
    }
    assert_eq!(c.cmd(&["GET", "keep"]).await, bulk("v"));
    assert_eq!(fx.store.next_expiry_ms().unwrap(), None);
    fx.stop().await;
}

#[tokio::test]
async fn counters() {
    let fx = start_local(ServerConfig::default()).await;
    let mut c = fx.client().await;
    assert_eq!(c.cmd(&["INCR", "n"]).await, OwnedFrame::Integer(1));
    assert_eq!(c.cmd(&["INCRBY", "n", "41"]).await, OwnedFrame::Integer(42));
    assert_eq!(c.cmd(&["DECR", "n"]).await, OwnedFrame::Integer(41));
    assert_eq!(c.cmd(&["DECRBY", "n", "50"]).await, OwnedFrame::Integer(-9));
    assert_eq!(
        c.cmd(&["INCRBY", "n", "-1"]).await,
        OwnedFrame::Integer(-10)
    );
    assert_eq!(c.cmd(&["GET", "n"]).await, bulk("-10"));

    let not_int = err("ERR value is not an integer or out of range");
    assert_eq!(c.cmd(&["INCRBY", "n", "1.5"]).await, not_int);
    assert_eq!(c.cmd(&["DECRBY", "n", "x"]).await, not_int);
    // Arguments are as strict as stored values: no sign `+`, no leading zero.
    for loose in ["+1", "01", "-01", "-0", " 1", "1 ", ""] {
        assert_eq!(c.cmd(&["INCRBY", "n", loose]).await, not_int, "{loose:?}");
        assert_eq!(c.cmd(&["DECRBY", "n", loose]).await, not_int, "{loose:?}");
    }
    assert_eq!(c.cmd(&["SET", "s", "hello"]).await, simple("OK"));
    assert_eq!(c.cmd(&["INCR", "s"]).await, not_int);
    assert_eq!(
        c.cmd(&["SET", "max", "9223372036854775807"]).await,
        simple("OK")
    );
    assert_eq!(
        c.cmd(&["INCR", "max"]).await,
        err("ERR increment or decrement would overflow")
    );
    assert_eq!(
        c.cmd(&["DECRBY", "n", "-9223372036854775808"]).await,
        err("ERR decrement would overflow")
    );
    assert_eq!(c.cmd(&["GET", "n"]).await, bulk("-10"));
    fx.stop().await;
}

#[tokio::test]
async fn arity_and_unknown_commands_use_redis_wording() {
    let fx = start_local(ServerConfig::default()).await;
    let mut c = fx.client().await;
    let cases: &[(&[&str], &str)] = &[
        (&["GET"], "get"),
        (&["get", "a", "b"], "get"),
        (&["SET", "k"], "set"),
        (&["DEL"], "del"),
        (&["EXISTS"], "exists"),
        (&["INCR"], "incr"),
        (&["INCRBY", "k"], "incrby"),
        (&["DECR", "a", "b"], "decr"),
        (&["DECRBY", "k"], "decrby"),
        (&["MGET"], "mget"),
        (&["MSET", "a"], "mset"),
        (&["MSET", "a", "1", "b"], "mset"),
        (&["ECHO"], "echo"),
        (&["PING", "a", "b"], "ping"),
        (&["AUTH"], "auth"),
        (&["TTL"], "ttl"),
        (&["PTTL", "a", "b"], "pttl"),
        (&["EXPIRETIME"], "expiretime"),
        (&["PEXPIRETIME"], "pexpiretime"),
        (&["PERSIST"], "persist"),
        (&["TYPE", "a", "b"], "type"),
        (&["EXPIRE", "k"], "expire"),
        (&["PEXPIRE", "k"], "pexpire"),
        (&["EXPIREAT", "k"], "expireat"),
        (&["PEXPIREAT"], "pexpireat"),
        (&["SETNX", "k"], "setnx"),
        (&["SETEX", "k", "1"], "setex"),
        (&["PSETEX", "k", "1"], "psetex"),
        (&["GETSET", "k"], "getset"),
        (&["GETDEL"], "getdel"),
        (&["GETEX"], "getex"),
        (&["APPEND", "k"], "append"),
        (&["STRLEN"], "strlen"),
        (&["UNLINK"], "unlink"),
        (&["MSETNX", "a"], "msetnx"),
        (&["DBSIZE", "x"], "dbsize"),
        (&["CLIENT"], "client"),
        (&["SELECT"], "select"),
    ];
    for (args, name) in cases {
        assert_eq!(
            c.cmd(args).await,
            err(&format!(
                "ERR wrong number of arguments for '{name}' command"
            )),
            "{args:?}"
        );
    }
    assert_eq!(
        c.cmd(&["XINFO", "STREAM", "s"]).await,
        err("ERR unknown command 'XINFO', with args beginning with: 'STREAM' 's' ")
    );
    assert_eq!(
        c.cmd(&["nope"]).await,
        err("ERR unknown command 'nope', with args beginning with: ")
    );
    // Errors do not close the connection.
    assert_eq!(c.cmd(&["PING"]).await, simple("PONG"));
    fx.stop().await;
}

#[tokio::test]
async fn info_reports_replication_state() {
    let fx = start_local(ServerConfig::default()).await;
    let mut c = fx.client().await;
    c.cmd(&["SET", "a", "1"]).await;
    c.cmd(&["INCR", "a"]).await;
    c.cmd(&["SET", "b", "1", "EX", "100"]).await;
    let OwnedFrame::BulkString(text) = c.cmd(&["INFO"]).await else {
        panic!("INFO answers with a bulk string");
    };
    let text = String::from_utf8(text).unwrap();
    for line in [
        "# Replication",
        "role:leader",
        "node_id:1",
        "term:1",
        "leader_id:1",
        "commit_index:3",
        "applied_index:3",
        "snapshot_index:0",
        "snapshots_installed:0",
        "# Keyspace",
        "keys:2",
        "db0:keys=2,expires=1,avg_ttl=0",
        "# Server",
        "redis_version:7.0.0",
        "# Clients",
        "connected_clients:1",
        "blocked_clients:0",
        "# Memory",
        "# Persistence",
        "loading:0",
        "# Stats",
        "total_connections_received:1",
        // The three writes before this INFO.
        "total_commands_processed:3",
        "rejected_connections:0",
    ] {
        assert!(text.contains(line), "INFO lacks `{line}`:\n{text}");
    }
    // Every line ends in CRLF, the last one too, and sections are apart by one more.
    assert!(text.ends_with("avg_ttl=0\r\n"), "{text:?}");
    assert!(text.contains("\r\n\r\n# Keyspace\r\n"), "{text:?}");
    assert!(!text.contains("\r\n\r\n\r\n"), "{text:?}");
    if cfg!(target_os = "linux") {
        let used = text
            .lines()
            .find_map(|line| line.strip_prefix("used_memory:"))
            .expect("INFO has used_memory");
        assert!(used.parse::<u64>().unwrap() > 0, "{used}");
    }
    let OwnedFrame::BulkString(only) = c.cmd(&["INFO", "replication"]).await else {
        panic!("INFO answers with a bulk string");
    };
    let only = String::from_utf8(only).unwrap();
    assert!(only.starts_with("# Replication\r\n"), "{only}");
    assert!(!only.contains("# Server"));
    fx.stop().await;
}

/// `CLIENT LIST`, `CLIENT INFO` and `CLIENT KILL` see and close the server's
/// connections.
#[tokio::test]
async fn client_list_info_and_kill() {
    let fx = start_local(ServerConfig::default()).await;
    let mut a = fx.client().await;
    let mut b = fx.client().await;
    let int = OwnedFrame::Integer;
    assert_eq!(a.cmd(&["CLIENT", "SETNAME", "alpha"]).await, simple("OK"));
    assert_eq!(
        a.cmd(&["CLIENT", "SETINFO", "LIB-NAME", "redis-py"]).await,
        simple("OK")
    );
    assert_eq!(a.cmd(&["GET", "k"]).await, OwnedFrame::Null);
    let OwnedFrame::Integer(b_id) = b.cmd(&["CLIENT", "ID"]).await else {
        panic!("CLIENT ID is an integer");
    };
    let text = |frame: OwnedFrame| match frame {
        OwnedFrame::BulkString(bytes) => String::from_utf8(bytes).unwrap(),
        other => panic!("not a bulk string: {other:?}"),
    };
    let info = text(a.cmd(&["CLIENT", "INFO"]).await);
    for field in [
        "id=1 ",
        "name=alpha ",
        "lib-name=redis-py ",
        "cmd=client ",
        "resp=2 ",
        "laddr=127.0.0.1:",
    ] {
        assert!(info.contains(field), "{field} in {info}");
    }
    assert!(!info.contains('\n'), "{info:?}");
    let list = text(a.cmd(&["CLIENT", "LIST"]).await);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(lines[0].starts_with("id=1 ") && lines[1].starts_with(&format!("id={b_id} ")));
    assert!(
        lines[1].contains("cmd=client ") && lines[1].contains("name= "),
        "{list}"
    );
    let only_b = text(a.cmd(&["CLIENT", "LIST", "ID", &b_id.to_string()]).await);
    assert_eq!(only_b.lines().count(), 1, "{only_b}");
    assert_eq!(text(a.cmd(&["CLIENT", "LIST", "TYPE", "pubsub"]).await), "");
    assert_eq!(
        a.cmd(&["CLIENT", "LIST", "ID", "x"]).await,
        err("ERR Invalid client ID")
    );
    assert_eq!(
        a.cmd(&["CLIENT", "LIST", "TYPE", "other"]).await,
        err("ERR Unknown client type 'other'")
    );

    // KILL spares the caller unless told not to, and B finds its connection closed.
    assert_eq!(a.cmd(&["CLIENT", "KILL", "ID", "1"]).await, int(0));
    assert_eq!(a.cmd(&["CLIENT", "KILL", "TYPE", "replica"]).await, int(0));
    assert_eq!(
        a.cmd(&["CLIENT", "KILL", "ID", &b_id.to_string()]).await,
        int(1)
    );
    assert_eq!(
        b.read_frame().await,
        None,
        "a killed client is disconnected"
    );
    assert_eq!(
        a.cmd(&["CLIENT", "KILL", "127.0.0.1:1"]).await,
        err("ERR No such client")
    );
    // Three words are the old form, whatever the third.
    assert_eq!(
        a.cmd(&["CLIENT", "KILL", "ID"]).await,
        err("ERR No such client")
    );
    assert_eq!(
        a.cmd(&["CLIENT", "KILL", "ID", "1", "ADDR"]).await,
        err("ERR syntax error")
    );
    assert_eq!(
        a.cmd(&["CLIENT", "KILL", "USER", "nobody"]).await,
        err("ERR No such user 'nobody'")
    );
    // The old form by address, which is how redis-cli users kill one connection.
    let mut c = fx.client().await;
    let c_info = text(c.cmd(&["CLIENT", "INFO"]).await);
    let c_addr = c_info
        .split(' ')
        .find_map(|field| field.strip_prefix("addr="))
        .unwrap()
        .to_owned();
    assert_eq!(a.cmd(&["CLIENT", "KILL", &c_addr]).await, simple("OK"));
    assert_eq!(c.read_frame().await, None);
    // And itself, after the reply.
    assert_eq!(
        a.cmd(&["CLIENT", "KILL", "ID", "1", "SKIPME", "no"]).await,
        int(1)
    );
    assert_eq!(a.read_frame().await, None);
    fx.stop().await;
}

/// With `idle_timeout_secs`, a client that sends nothing is disconnected; one that keeps
/// talking is not.
#[tokio::test]
async fn idle_clients_are_disconnected() {
    let fx = start_local(with_server(|s| s.idle_timeout_secs = 1)).await;
    let mut idle = fx.client().await;
    assert_eq!(idle.cmd(&["PING"]).await, simple("PONG"));
    // Only a guard against a hang: the server closes it about a second from now.
    let closed = tokio::time::timeout(Duration::from_secs(60), idle.read_frame()).await;
    assert_eq!(closed.expect("the idle client was disconnected"), None);
    fx.stop().await;
}

/// `SHUTDOWN` answers by closing the connection, and the server stops serving.
#[tokio::test]
async fn shutdown_stops_the_server() {
    let fx = start_local(ServerConfig::default()).await;
    let mut c = fx.client().await;
    let syntax = err("ERR syntax error");
    assert_eq!(c.cmd(&["SHUTDOWN", "SAVE", "NOSAVE"]).await, syntax);
    assert_eq!(c.cmd(&["SHUTDOWN", "LATER"]).await, syntax);
    assert_eq!(
        c.cmd(&["SHUTDOWN", "ABORT"]).await,
        err("ERR No shutdown in progress.")
    );
    assert_eq!(c.cmd(&["SET", "k", "v"]).await, simple("OK"));
    let mut other = fx.client().await;
    c.send_raw(b"SHUTDOWN NOSAVE NOW\r\n").await;
    assert_eq!(c.read_frame().await, None, "SHUTDOWN closes the connection");
    // The server stopped on its own: serve returned and closed the other clients.
    fx.stopped_by_itself().await;
    assert_eq!(other.read_frame().await, None);
}

#[tokio::test]
async fn auth_gates_every_command() {
    let fx = start_local(with_password("s3cret")).await;
    let mut c = fx.client().await;
    let noauth = err("NOAUTH Authentication required.");
    assert_eq!(c.cmd(&["PING"]).await, noauth);
    assert_eq!(c.cmd(&["SET", "k", "v"]).await, noauth);
    assert_eq!(c.cmd(&["GET", "k"]).await, noauth);
    assert_eq!(c.cmd(&["INFO"]).await, noauth);
    assert_eq!(c.cmd(&["MADEUP"]).await, noauth);
    let wrongpass = err("WRONGPASS invalid username-password pair or user is disabled.");
    assert_eq!(c.cmd(&["AUTH", "guess"]).await, wrongpass);
    assert_eq!(c.cmd(&["AUTH", "admin", "s3cret"]).await, wrongpass);
    assert_eq!(
        c.cmd(&["AUTH", "a", "b", "c"]).await,
        err("ERR syntax error")
    );
    assert_eq!(fx.store.applied_index(), 0, "nothing was written");
    assert_eq!(c.cmd(&["AUTH", "s3cret"]).await, simple("OK"));
    assert_eq!(c.cmd(&["SET", "k", "v"]).await, simple("OK"));
    // Authentication is per connection.
    let mut other = fx.client().await;
    assert_eq!(other.cmd(&["GET", "k"]).await, noauth);
    assert_eq!(
        other.cmd(&["AUTH", "default", "s3cret"]).await,
        simple("OK")
    );
    assert_eq!(other.cmd(&["GET", "k"]).await, bulk("v"));
    fx.stop().await;

    let open = start_local(ServerConfig::default()).await;
    let mut c = open.client().await;
    assert_err_starts(
        &c.cmd(&["AUTH", "x"]).await,
        "ERR AUTH <password> called without any password configured",
    );
    // Without a password the default user takes any password, and no other user exists.
    assert_eq!(c.cmd(&["AUTH", "default", "any"]).await, simple("OK"));
    assert_eq!(
        c.cmd(&["AUTH", "admin", "any"]).await,
        err("WRONGPASS invalid username-password pair or user is disabled.")
    );
    open.stop().await;
}

#[tokio::test]
async fn quit_and_command() {
    let fx = start_local(ServerConfig::default()).await;
    let mut c = fx.client().await;
    assert_eq!(c.cmd(&["COMMAND"]).await, OwnedFrame::Array(vec![]));
    assert_eq!(c.cmd(&["COMMAND", "DOCS"]).await, OwnedFrame::Array(vec![]));
    assert_eq!(c.cmd(&["COMMAND", "COUNT"]).await, OwnedFrame::Integer(194));
    assert_eq!(c.cmd(&["QUIT"]).await, simple("OK"));
    assert_eq!(c.read_frame().await, None, "QUIT closes the connection");
    fx.stop().await;
}

#[tokio::test]
async fn pipelined_and_inline_requests() {
    let fx = start_local(ServerConfig::default()).await;
    let mut c = fx.client().await;
    let mut batch = Vec::new();
    for i in 0..200 {
        batch.extend(Client::request(&[b"INCR", b"p"]));
        if i % 50 == 0 {
            batch.extend_from_slice(b"PING\r\n");
        }
    }
    c.send_raw(&batch).await;
    for i in 0..200 {
        assert_eq!(c.read_frame().await, Some(OwnedFrame::Integer(i + 1)));
        if i % 50 == 0 {
            assert_eq!(c.read_frame().await, Some(simple("PONG")));
        }
    }
    c.send_raw(b"SET inline  yes\r\nGET inline\r\n\r\n*0\r\nECHO done\n")
        .await;
    assert_eq!(c.read_frame().await, Some(simple("OK")));
    assert_eq!(c.read_frame().await, Some(bulk("yes")));
    assert_eq!(c.read_frame().await, Some(bulk("done")));
    fx.stop().await;
}

/// Pipelined writes are proposed in batches, yet every reply keeps its place and every
/// read sees the writes sent before it.
#[tokio::test]
async fn pipelined_writes_and_reads_keep_their_order() {
    for batch_max in [1, 3, 256] {
        let fx = start_local(with_server(|s| s.pipeline_batch_max = batch_max)).await;
        let mut c = fx.client().await;
        let script: &[&[&str]] = &[
            &["SET", "a", "1"],
            &["INCR", "a"],
            &["INCRBY", "a", "x"],
            &["SET", "b", "x", "NX"],
            &["SET", "b", "y", "NX"],
            &["SET", "c", "1", "BOGUS"],
            &["GET", "a"],
            &["MSET", "m", "1", "n", "2"],
            &["DEL", "a", "m"],
            &["INCR", "n"],
            &["MGET", "a", "b", "n"],
            &["DECR", "n"],
            // Consecutive reads share one read fence, then a write, then reads again.
            &["GET", "n"],
            &["EXISTS", "a", "b", "n"],
            &["MGET", "n"],
            &["SET", "z", "9"],
            &["GET", "z"],
            &["PING"],
            &["GET", "n"],
        ];
        let mut batch = Vec::new();
        for args in script {
            let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
            batch.extend(Client::request(&args));
        }
        c.send_raw(&batch).await;
        let expected = [
            simple("OK"),
            OwnedFrame::Integer(2),
            err("ERR value is not an integer or out of range"),
            simple("OK"),
            OwnedFrame::Null,
            err("ERR syntax error"),
            bulk("2"),
            simple("OK"),
            OwnedFrame::Integer(2),
            OwnedFrame::Integer(3),
            OwnedFrame::Array(vec![OwnedFrame::Null, bulk("x"), bulk("3")]),
            OwnedFrame::Integer(2),
            bulk("2"),
            OwnedFrame::Integer(2),
            OwnedFrame::Array(vec![bulk("2")]),
            simple("OK"),
            bulk("9"),
            simple("PONG"),
            bulk("2"),
        ];
        for (i, want) in expected.iter().enumerate() {
            assert_eq!(
                c.read_frame().await.as_ref(),
                Some(want),
                "reply {i} with batch_max {batch_max}"
            );
        }
        fx.stop().await;
    }
}

#[tokio::test]
async fn oversized_and_malformed_streams_close_only_their_connection() {
    let config = with_server(|s| s.request_bytes_max = 4096);
    let fx = start_local(config).await;
    let mut bystander = fx.client().await;
    assert_eq!(bystander.cmd(&["SET", "k", "v"]).await, simple("OK"));

    // Declared too large: refused before the body is sent.
    let mut big = fx.client().await;
    big.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n")
        .await;
    assert_err_starts(
        &big.read_frame().await.unwrap(),
        "ERR Protocol error: request of",
    );
    assert_eq!(big.read_frame().await, None);

    // Many arguments adding up past the limit.
    let mut wide = fx.client().await;
    let chunk = "x".repeat(1000);
    let args: Vec<&str> = std::iter::once("MSET")
        .chain(std::iter::repeat_n(chunk.as_str(), 6))
        .collect();
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    wide.send_raw(&Client::request(&args)).await;
    assert_err_starts(
        &wide.read_frame().await.unwrap(),
        "ERR Protocol error: request of",
    );
    assert_eq!(wide.read_frame().await, None);

    let cases: &[(&[u8], &str)] = &[
        (
            b"*1\r\n+PING\r\n",
            "ERR Protocol error: expected '$', got '+'",
        ),
        (b"*abc\r\n", "ERR Protocol error: invalid multibulk length"),
        (b"*1\r\n$x\r\n", "ERR Protocol error: invalid bulk length"),
        (b"*1\r\n$2\r\nabcd\r\n", "ERR Protocol error: missing CRLF"),
    ];
    for (garbage, expected) in cases {
        let mut bad = fx.client().await;
        bad.send_raw(garbage).await;
        assert_err_starts(&bad.read_frame().await.unwrap(), expected);
        assert_eq!(bad.read_frame().await, None, "the connection closes");
    }
    // A deep nest that would blow the codec's stack is refused and closes the connection.
    let mut nest = fx.client().await;
    nest.send_raw(&b"*1\r\n".repeat(1000)).await;
    assert_err_starts(
        &nest.read_frame().await.unwrap(),
        "ERR Protocol error: expected '$'",
    );
    assert_eq!(nest.read_frame().await, None);
    // An inline line without an end.
    let mut endless = fx.client().await;
    endless.send_raw(&vec![b'a'; 70_000]).await;
    assert_err_starts(
        &endless.read_frame().await.unwrap(),
        "ERR Protocol error: too big inline",
    );
    assert_eq!(endless.read_frame().await, None);

    // The bystander and the server carry on.
    assert_eq!(bystander.cmd(&["GET", "k"]).await, bulk("v"));
    let mut fresh = fx.client().await;
    assert_eq!(fresh.cmd(&["PING"]).await, simple("PONG"));
    // A value just under the limit still works.
    let value = "y".repeat(3000);
    assert_eq!(fresh.cmd(&["SET", "big", &value]).await, simple("OK"));
    assert_eq!(fresh.cmd(&["GET", "big"]).await, bulk(&value));
    fx.stop().await;
}

#[tokio::test]
async fn replies_are_bounded() {
    let fx = start_local(with_server(|s| s.reply_bytes_max = 2048)).await;
    let mut c = fx.client().await;
    let value = "v".repeat(1500);
    assert_eq!(c.cmd(&["SET", "big", &value]).await, simple("OK"));
    assert_eq!(c.cmd(&["GET", "big"]).await, bulk(&value));
    assert_err_starts(&c.cmd(&["MGET", "big", "big"]).await, "ERR reply too large");
    assert_eq!(
        c.cmd(&["MGET", "big", "missing"]).await,
        OwnedFrame::Array(vec![bulk(&value), OwnedFrame::Null])
    );
    // EXISTS does not read values, so it has no such bound.
    assert_eq!(
        c.cmd(&["EXISTS", "big", "big", "big"]).await,
        OwnedFrame::Integer(3)
    );
    fx.stop().await;
}

#[tokio::test]
async fn connection_limit_refuses_extra_clients() {
    let fx = start_local(with_server(|s| s.connections_max = 1)).await;
    let mut first = fx.client().await;
    assert_eq!(first.cmd(&["PING"]).await, simple("PONG"));
    let mut second = fx.client().await;
    assert_eq!(
        second.read_frame().await,
        Some(err("ERR max number of clients reached"))
    );
    assert_eq!(second.read_frame().await, None);
    assert_eq!(first.cmd(&["PING"]).await, simple("PONG"));
    fx.stop().await;
}

/// Linearizable reads go through the replicator's read fence; stale reads do not.
/// Writes always go through `propose`.
#[tokio::test]
async fn read_consistency_decides_whether_reads_are_fenced() {
    let make = |store, clock| FollowerReplicator {
        inner: LocalReplicator::new(1, store, clock),
    };
    let linearizable = start_with(ServerConfig::default(), make).await;
    let mut c = linearizable.client().await;
    let not_leader = "NOTLEADER this node is not the leader; the leader is node 2";
    assert_eq!(c.cmd(&["GET", "k"]).await, err(not_leader));
    assert_eq!(c.cmd(&["MGET", "k"]).await, err(not_leader));
    assert_eq!(c.cmd(&["EXISTS", "k"]).await, err(not_leader));
    assert_eq!(c.cmd(&["SET", "k", "v"]).await, err(not_leader));
    assert_eq!(c.cmd(&["INCR", "k"]).await, err(not_leader));
    let OwnedFrame::BulkString(info) = c.cmd(&["INFO", "replication"]).await else {
        panic!("INFO answers with a bulk string");
    };
    let info = String::from_utf8(info).unwrap();
    assert!(
        info.contains("role:follower") && info.contains("leader_id:2") && info.contains("term:7")
    );
    // A follower does not propose purges.
    assert_eq!(linearizable.server.purge_expired_once().await.unwrap(), 0);
    linearizable.stop().await;

    let stale_config = with_server(|s| s.read_consistency = ReadConsistency::Stale);
    let stale = start_with(stale_config, make).await;
    stale
        .store
        .apply(
            1,
            &aegis_node::Command::Set {
                key: b"k".to_vec(),
                value: b"local".to_vec(),
                expire_at_ms: None,
                condition: aegis_node::SetCondition::Always,
            },
            0,
        )
        .unwrap();
    let mut c = stale.client().await;
    assert_eq!(c.cmd(&["GET", "k"]).await, bulk("local"));
    assert_eq!(c.cmd(&["EXISTS", "k"]).await, OwnedFrame::Integer(1));
    assert_eq!(c.cmd(&["SET", "k", "v"]).await, err(not_leader));
    stale.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_get_dense_indexes() {
    let fx = start_local(ServerConfig::default()).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let mut c = fx.client().await;
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                assert!(matches!(
                    c.cmd(&["INCR", "shared"]).await,
                    OwnedFrame::Integer(_)
                ));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let mut c = fx.client().await;
    assert_eq!(c.cmd(&["GET", "shared"]).await, bulk("200"));
    assert_eq!(fx.store.applied_index(), 200);
    fx.stop().await;
}

/// Seeded random garbage on many connections never takes the server down.
#[tokio::test]
async fn random_garbage_never_takes_the_server_down() {
    for seed in [0x5eed_0001_u64, 0x5eed_0002, 0x5eed_0003] {
        garbage_round(seed).await;
    }
}

async fn garbage_round(seed: u64) {
    println!("garbage seed {seed:#x}");
    let mut state = seed;
    let mut next = move || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let fx = start_local(with_server(|s| s.request_bytes_max = 4096)).await;
    let alphabet: &[u8] = b"*$+-:\r\n0123456789-abcSETGET ";
    for round in 0..40 {
        let len = (next() % 300) as usize;
        let blob: Vec<u8> = (0..len)
            .map(|_| {
                let r = next();
                if r % 3 == 0 {
                    r as u8
                } else {
                    alphabet[(r >> 8) as usize % alphabet.len()]
                }
            })
            .collect();
        let mut c = fx.client().await;
        c.send_raw(&blob).await;
        // Half the time, hang up at once; otherwise end the stream and drain the replies.
        if round % 2 == 0 {
            drop(c);
        } else {
            c.finish_sending().await;
            while c.read_frame().await.is_some() {}
        }
    }
    let mut c = fx.client().await;
    assert_eq!(c.cmd(&["PING"]).await, simple("PONG"), "seed {seed:#x}");
    assert_eq!(c.cmd(&["SET", "alive", "yes"]).await, simple("OK"));
    fx.stop().await;
}

#[tokio::test]
async fn cluster_commands_on_a_single_node_are_clear_errors() {
    let fx = start_local(with_password("pw")).await;
    let mut c = fx.client().await;
    assert_err_starts(&c.cmd(&["CLUSTER", "MEMBERS"]).await, "NOAUTH");
    assert_eq!(c.cmd(&["AUTH", "pw"]).await, simple("OK"));
    assert_err_starts(
        &c.cmd(&["CLUSTER", "MEMBERS"]).await,
        "ERR a membership needs a replicated node",
    );
    assert_err_starts(
        &c.cmd(&["CLUSTER", "MEET", "2", "127.0.0.1:7000"]).await,
        "ERR an address book needs a replicated node",
    );
    assert_err_starts(
        &c.cmd(&["CLUSTER", "MEET", "2", "127.0.0.1:7000", "LOCAL"])
            .await,
        "ERR an address book needs a replicated node",
    );
    assert_err_starts(
        &c.cmd(&["CLUSTER", "MEET", "2", "127.0.0.1:7000", "EVERYWHERE"])
            .await,
        "ERR syntax error",
    );
    assert_err_starts(
        &c.cmd(&["CLUSTER", "ADDLEARNER", "2"]).await,
        "ERR changing the membership needs a replicated node",
    );
    assert_err_starts(
        &c.cmd(&["CLUSTER", "PROMOTE"]).await,
        "ERR wrong number of arguments for 'cluster|promote'",
    );
    assert_err_starts(
        &c.cmd(&["CLUSTER", "NODES"]).await,
        "ERR unknown subcommand",
    );
    assert_err_starts(&c.cmd(&["CLUSTER"]).await, "ERR wrong number of arguments");
    assert_err_starts(&c.cmd(&["CLUSTER", "REMOVE", "-3"]).await, "ERR node id");
    // The connection is still usable.
    assert_eq!(c.cmd(&["PING"]).await, simple("PONG"));
    fx.stop().await;
}

#[tokio::test]
async fn hyperloglogs() {
    let fx = start_local(ServerConfig::default()).await;
    let mut c = fx.client().await;
    let int = OwnedFrame::Integer;
    assert_eq!(c.cmd(&["PFADD", "h", "a", "b", "c"]).await, int(1));
    assert_eq!(c.cmd(&["PFADD", "h", "a", "c"]).await, int(0));
    assert_eq!(c.cmd(&["PFADD", "h"]).await, int(0));
    assert_eq!(c.cmd(&["PFCOUNT", "h"]).await, int(3));
    assert_eq!(c.cmd(&["PFCOUNT", "missing"]).await, int(0));
    // A key is made even without elements.
    assert_eq!(c.cmd(&["PFADD", "none"]).await, int(1));
    assert_eq!(c.cmd(&["PFCOUNT", "none"]).await, int(0));
    assert_eq!(c.cmd(&["TYPE", "h"]).await, simple("string"));

    // The stored bytes are Redis's: the same sparse value for the same elements.
    let mut redis_bytes = b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80".to_vec();
    redis_bytes.extend_from_slice(b"\\\xb3\x90D>\x80C\xc1\x8cB^\x80B:\x88HR\x84K\xfb\x80BZ");
    let elements = ["a", "b", "c", "foo", "bar", "hello world", "12345678"];
    let mut add = vec!["PFADD", "r"];
    add.extend(elements);
    assert_eq!(c.cmd(&add).await, int(1));
    assert_eq!(
        c.cmd(&["GET", "r"]).await,
        OwnedFrame::BulkString(redis_bytes.clone())
    );
    // So a value taken from Redis counts here.
    c.cmd_bytes(&[b"SET", b"copied", &redis_bytes]).await;
    assert_eq!(c.cmd(&["PFCOUNT", "copied"]).await, int(7));

    // 2,000 elements make it dense; counts and unions are Redis's to the unit.
    let many: Vec<String> = (0..2000).map(|i| format!("e{i}")).collect();
    let mut add = vec!["PFADD", "big"];
    add.extend(many.iter().map(String::as_str));
    assert_eq!(c.cmd(&add).await, int(1));
    assert_eq!(c.cmd(&["STRLEN", "big"]).await, int(12304));
    assert_eq!(c.cmd(&["PFCOUNT", "big"]).await, int(2000));
    assert_eq!(c.cmd(&["PFCOUNT", "h", "big", "missing"]).await, int(2003));
    assert_eq!(c.cmd(&["PFMERGE", "m", "h", "big"]).await, simple("OK"));
    assert_eq!(c.cmd(&["PFCOUNT", "m"]).await, int(2003));
    assert_eq!(c.cmd(&["STRLEN", "m"]).await, int(12304));
    // The destination is a source too, and keeps its expiry.
    assert_eq!(c.cmd(&["EXPIRE", "h", "1000"]).await, int(1));
    assert_eq!(c.cmd(&["PFMERGE", "h", "r"]).await, simple("OK"));
    assert_eq!(c.cmd(&["PFCOUNT", "h"]).await, int(7));
    assert_eq!(c.cmd(&["PFADD", "h", "new"]).await, int(1));
    assert_eq!(c.cmd(&["TTL", "h"]).await, int(1000));

    // What is not a HyperLogLog.
    let not_hll = err("WRONGTYPE Key is not a valid HyperLogLog string value.");
    let wrong_type = err("WRONGTYPE Operation against a key holding the wrong kind of value");
    c.cmd(&["SET", "s", "hello"]).await;
    c.cmd(&["RPUSH", "l", "x"]).await;
    assert_eq!(c.cmd(&["PFADD", "s", "x"]).await, not_hll);
    assert_eq!(c.cmd(&["PFCOUNT", "s"]).await, not_hll);
    assert_eq!(c.cmd(&["PFCOUNT", "h", "s"]).await, not_hll);
    assert_eq!(c.cmd(&["PFMERGE", "h", "s"]).await, not_hll);
    assert_eq!(c.cmd(&["PFADD", "l", "x"]).await, wrong_type);
    assert_eq!(c.cmd(&["PFMERGE", "l"]).await, wrong_type);
    assert_eq!(c.cmd(&["GET", "s"]).await, bulk("hello"));
    // A sparse value whose runs cover one register too many, its cached count stale.
    let mut damaged = b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80\x7f\xff".to_vec();
    damaged.push(0);
    c.cmd_bytes(&[b"SET", b"bad", &damaged]).await;
    let corrupt = err("INVALIDOBJ Corrupted HLL object detected");
    assert_eq!(c.cmd(&["PFCOUNT", "bad"]).await, corrupt);
    assert_eq!(c.cmd(&["PFCOUNT", "bad", "h"]).await, corrupt);
    assert_eq!(c.cmd(&["PFMERGE", "m", "bad"]).await, corrupt);
    assert_eq!(
        c.cmd(&["PFCOUNT", "m"]).await,
        int(2003),
        "a refused merge writes nothing"
    );
    assert_eq!(c.cmd(&["PFADD", "bad"]).await, int(0));
    assert_err_starts(&c.cmd(&["PFADD"]).await, "ERR wrong number of arguments");

    // In a transaction, a count sees the transaction's adds.
    assert_eq!(c.cmd(&["MULTI"]).await, simple("OK"));
    assert_eq!(c.cmd(&["PFADD", "t", "x", "y"]).await, simple("QUEUED"));
    assert_eq!(c.cmd(&["PFCOUNT", "t"]).await, simple("QUEUED"));
    assert_eq!(c.cmd(&["PFCOUNT", "t", "h"]).await, simple("QUEUED"));
    assert_eq!(
        c.cmd(&["EXEC"]).await,
        OwnedFrame::Array(vec![int(1), int(2), int(10)])
    );
    fx.stop().await;
}

#[tokio::test]
async fn geospatial_indexes() {
    let fx = start_local(ServerConfig::default()).await;
    let mut c = fx.client().await;
    let int = OwnedFrame::Integer;
    let arr = OwnedFrame::Array;
    let add = [
        "GEOADD",
        "Sicily",
        "13.361389",
        "38.115556",
        "Palermo",
        "15.087269",
        "37.502669",
        "Catania",
    ];
    assert_eq!(c.cmd(&add).await, int(2));
    // The scores, positions, hashes and distances are Redis's, to the digit.
    assert_eq!(
        c.cmd(&["ZSCORE", "Sicily", "Palermo"]).await,
        bulk("3479099956230698")
    );
    assert_eq!(
        c.cmd(&["GEOPOS", "Sicily", "Palermo", "nosuch"]).await,
        arr(vec![
            arr(vec![
                bulk("13.36138933897018433"),
                bulk("38.11555639549629859")
            ]),
            OwnedFrame::Null,
        ])
    );
    assert_eq!(
        c.cmd(&["GEOHASH", "Sicily", "Palermo", "Catania"]).await,
        arr(vec![bulk("sqc8b49rny0"), bulk("sqdtr74hyu0")])
    );
    assert_eq!(
        c.cmd(&["GEODIST", "Sicily", "Palermo", "Catania", "km"])
            .await,
        bulk("166.2742")
    );
    assert_eq!(
        c.cmd(&["GEODIST", "Sicily", "Palermo", "nosuch"]).await,
        OwnedFrame::Null
    );
    assert_eq!(
        c.cmd(&[
            "GEOADD",
            "Sicily",
            "NX",
            "CH",
            "13.361389",
            "38.115556",
            "Palermo",
            "12",
            "37",
            "Agrigento"
        ])
        .await,
        int(1)
    );

    // Searches, sorted and not, with each option.
    assert_eq!(
        c.cmd(&[
            "GEORADIUS",
            "Sicily",
            "15",
            "37",
            "200",
            "km",
            "WITHDIST",
            "ASC"
        ])
        .await,
        arr(vec![
            arr(vec![bulk("Catania"), bulk("56.4413")]),
            arr(vec![bulk("Palermo"), bulk("190.4424")]),
        ])
    );
    assert_eq!(
        c.cmd(&[
            "GEOSEARCH",
            "Sicily",
            "FROMMEMBER",
            "Agrigento",
            "BYBOX",
            "400",
            "400",
            "km",
            "DESC",
            "COUNT",
            "2",
            "WITHHASH"
        ])
        .await,
        arr(vec![
            arr(vec![bulk("Palermo"), int(3479099956230698)]),
            arr(vec![bulk("Agrigento"), int(3475952690022668)]),
        ])
    );
    assert_eq!(
        c.cmd(&["GEORADIUSBYMEMBER", "Sicily", "Agrigento", "100", "km"])
            .await,
        arr(vec![bulk("Agrigento")])
    );
    assert_eq!(
        c.cmd(&[
            "GEOSEARCH",
            "nokey",
            "FROMMEMBER",
            "x",
            "BYRADIUS",
            "1",
            "km"
        ])
        .await,
        arr(vec![])
    );

    // Stores, through the log.
    assert_eq!(
        c.cmd(&[
            "GEOSEARCHSTORE",
            "near",
            "Sicily",
            "FROMLONLAT",
            "15",
            "37",
            "BYRADIUS",
            "200",
            "km",
            "STOREDIST"
        ])
        .await,
        int(2)
    );
    assert_eq!(
        c.cmd(&["ZRANGE", "near", "0", "0", "WITHSCORES"]).await,
        arr(vec![bulk("Catania"), bulk("56.4412578701582")])
    );
    assert_eq!(
        c.cmd(&[
            "GEORADIUS",
            "Sicily",
            "15",
            "37",
            "200",
            "km",
            "STORE",
            "copy"
        ])
        .await,
        int(2)
    );
    assert_eq!(
        c.cmd(&["ZSCORE", "copy", "Palermo"]).await,
        bulk("3479099956230698")
    );
    // Nothing found removes the destination.
    assert_eq!(
        c.cmd(&[
            "GEOSEARCHSTORE",
            "copy",
            "Sicily",
            "FROMLONLAT",
            "0",
            "0",
            "BYRADIUS",
            "1",
            "m"
        ])
        .await,
        int(0)
    );
    assert_eq!(c.cmd(&["EXISTS", "copy"]).await, int(0));

    // Faults, in Redis's order.
    for (args, refused) in [
        (
            &["GEOADD", "Sicily", "181", "10", "x"][..],
            "ERR invalid longitude,latitude pair 181.000000,10.000000",
        ),
        (
            &["GEOADD", "Sicily", "NX", "XX", "1", "2", "x"],
            "ERR syntax error",
        ),
        (
            &["GEODIST", "Sicily", "a", "b", "yards"],
            "ERR unsupported unit provided. please use M, KM, FT, MI",
        ),
        (
            &[
                "GEOSEARCH",
                "Sicily",
                "FROMMEMBER",
                "nosuch",
                "BYRADIUS",
                "1",
                "km",
                "BOGUS",
            ],
            "ERR could not decode requested zset member",
        ),
        (
            &[
                "GEOSEARCH",
                "Sicily",
                "FROMLONLAT",
                "1",
                "2",
                "BYRADIUS",
                "-1",
                "km",
            ],
            "ERR radius cannot be negative",
        ),
        (
            &[
                "geosearch",
                "Sicily",
                "BYRADIUS",
                "1",
                "km",
                "WITHDIST",
                "ASC",
            ],
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for geosearch",
        ),
        (
            &[
                "GEOSEARCH",
                "Sicily",
                "FROMLONLAT",
                "1",
                "2",
                "BYRADIUS",
                "1",
                "km",
                "ANY",
            ],
            "ERR the ANY argument requires COUNT argument",
        ),
        (
            &[
                "GEORADIUS_RO",
                "Sicily",
                "15",
                "37",
                "1",
                "km",
                "STORE",
                "x",
            ],
            "ERR syntax error",
        ),
        (
            &[
                "GEOSEARCHSTORE",
                "d",
                "Sicily",
                "FROMMEMBER",
                "nosuch",
                "BYRADIUS",
                "1",
                "km",
            ],
            "ERR could not decode requested zset member",
        ),
        (
            &[
                "GEOSEARCHSTORE",
                "d",
                "Sicily",
                "FROMLONLAT",
                "1",
                "2",
                "BYRADIUS",
                "1",
                "km",
                "WITHDIST",
            ],
            "ERR GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
        ),
    ] {
        assert_eq!(c.cmd(args).await, err(refused), "{args:?}");
    }
    c.cmd(&["SET", "str", "x"]).await;
    let wrong_type = err("WRONGTYPE Operation against a key holding the wrong kind of value");
    // The kind of value comes before the arguments.
    assert_eq!(
        c.cmd(&["GEOSEARCH", "str", "BOGUS", "a", "b", "c", "d"])
            .await,
        wrong_type
    );
    assert_eq!(c.cmd(&["GEOPOS", "str", "a"]).await, wrong_type);

    // In a transaction, reads see the transaction's adds.
    assert_eq!(c.cmd(&["MULTI"]).await, simple("OK"));
    assert_eq!(
        c.cmd(&["GEOADD", "t", "0", "0", "a", "0", "1", "b"]).await,
        simple("QUEUED")
    );
    assert_eq!(c.cmd(&["GEODIST", "t", "a", "b"]).await, simple("QUEUED"));
    assert_eq!(
        c.cmd(&[
            "GEOSEARCH",
            "t",
            "FROMMEMBER",
            "a",
            "BYRADIUS",
            "200",
            "km",
            "DESC"
        ])
        .await,
        simple("QUEUED")
    );
    assert_eq!(
        c.cmd(&["EXEC"]).await,
        arr(vec![
            int(2),
            bulk("111226.0989"),
            arr(vec![bulk("b"), bulk("a")]),
        ])
    );
    fx.stop().await;
}

#[tokio::test]
async fn lua_scripts() {
    let fx = start_local(ServerConfig::default()).await;
    let mut c = fx.client().await;
    let int = OwnedFrame::Integer;
    let arr = OwnedFrame::Array;
    // A lock taken and released only by its holder: the script every lock library runs.
    let take = "return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', 30000)";
    let release = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
                   return redis.call('DEL', KEYS[1]) else return 0 end";
    assert_eq!(
        c.cmd(&["EVAL", take, "1", "lock", "me"]).await,
        simple("OK")
    );
    assert_eq!(
        c.cmd(&["EVAL", take, "1", "lock", "you"]).await,
        OwnedFrame::Null
    );
    assert_eq!(c.cmd(&["EVAL", release, "1", "lock", "you"]).await, int(0));
    assert_eq!(c.cmd(&["EVAL", release, "1", "lock", "me"]).await, int(1));
    assert_eq!(c.cmd(&["EXISTS", "lock"]).await, int(0));

    // Replies convert as in Redis, and a script sees its own writes.
    assert_eq!(
        c.cmd(&["EVAL", "redis.call('RPUSH', KEYS[1], 'a', 'b') return {redis.call('LRANGE', KEYS[1], 0, -1), 3.7, true, false, 'x'}", "1", "l"])
            .await,
        arr(vec![
            arr(vec![bulk("a"), bulk("b")]),
            int(3),
            int(1),
            OwnedFrame::Null,
            bulk("x"),
        ])
    );
    assert_eq!(
        c.cmd(&["EVAL", "return redis.status_reply('FINE')", "0"])
            .await,
        simple("FINE")
    );
    assert_eq!(
        c.cmd(&["EVAL", "return redis.pcall('INCR', KEYS[1])", "1", "l"])
            .await,
        err("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
    // An error raised by a call names the script and the line, as Redis 7 does.
    let script = "local x = 1\nreturn redis.call('INCR', KEYS[1])";
    let sha = aegis_node::script::sha1_hex(script.as_bytes());
    assert_eq!(
        c.cmd(&["EVAL", script, "1", "l"]).await,
        err(&format!(
            "WRONGTYPE Operation against a key holding the wrong kind of value script: {sha}, on @user_script:2."
        ))
    );
    // Writes before an error stay written, as in Redis.
    assert_err_starts(
        &c.cmd(&["EVAL", "redis.call('SET', 'before', 1) error('stop')", "0"])
            .await,
        "ERR user_script:1: stop script: ",
    );
    assert_eq!(c.cmd(&["GET", "before"]).await, bulk("1"));

    // EVALSHA finds what EVAL ran and SCRIPT LOAD loaded on this node.
    let sha = aegis_node::script::sha1_hex(b"return ARGV[1]");
    assert_eq!(
        c.cmd(&["SCRIPT", "LOAD", "return ARGV[1]"]).await,
        bulk(&sha)
    );
    assert_eq!(
        c.cmd(&["EVALSHA", &sha.to_uppercase(), "0", "hi"]).await,
        bulk("hi")
    );
    assert_eq!(
        c.cmd(&["SCRIPT", "EXISTS", &sha, "ffff"]).await,
        arr(vec![int(1), int(0)])
    );
    assert_eq!(c.cmd(&["SCRIPT", "FLUSH"]).await, simple("OK"));
    let no_script = err("NOSCRIPT No matching script. Please use EVAL.");
    assert_eq!(c.cmd(&["EVALSHA", &sha, "0", "hi"]).await, no_script);
    assert_eq!(c.cmd(&["EVALSHA", "abc", "x"]).await, no_script);

    // Read-only scripts, numbers of keys, and commands a script may not call.
    assert_eq!(
        c.cmd(&["EVAL_RO", "return redis.call('GET', 'before')", "0"])
            .await,
        bulk("1")
    );
    assert_err_starts(
        &c.cmd(&["EVAL_RO", "return redis.call('DEL', 'before')", "0"])
            .await,
        "ERR Write commands are not allowed from read-only scripts.",
    );
    for (args, refused) in [
        (
            &["EVAL", "return 1", "x"][..],
            "ERR value is not an integer or out of range",
        ),
        (
            &["EVAL", "return 1", "-1"],
            "ERR Number of keys can't be negative",
        ),
        (
            &["EVAL", "return 1", "2", "k"],
            "ERR Number of keys can't be greater than number of args",
        ),
    ] {
        assert_eq!(c.cmd(args).await, err(refused), "{args:?}");
    }
    for call in ["BLPOP', 'l', '0", "EVAL', 'return 1', '0", "MULTI"] {
        let script = format!("return redis.call('{call}')");
        assert_err_starts(
            &c.cmd(&["EVAL", &script, "0"]).await,
            "ERR This Redis command is not allowed from script",
        );
    }
    // JSON, as lua-cjson writes and reads it.
    assert_eq!(
        c.cmd(&[
            "EVAL",
            "return cjson.encode(cjson.decode(ARGV[1]))",
            "0",
            r#"{"a": [1, 2.5, {"b": null}], "s": "x/y"}"#
        ])
        .await,
        bulk(r#"{"a":[1,2.5,{"b":null}],"s":"x\/y"}"#)
    );
    assert_err_starts(
        &c.cmd(&["EVAL", "return cjson.decode('[1, 2')", "0"]).await,
        "ERR user_script:1: Expected comma or array end but found T_END at character 6",
    );

    // Runs stop, the same way on every replica.
    assert_err_starts(
        &c.cmd(&["EVAL", "while true do end", "0"]).await,
        "ERR Script killed",
    );

    // In a transaction, EVAL, and EVALSHA of what this node knows.
    let get = "return redis.call('GET', KEYS[1])";
    let sha = aegis_node::script::sha1_hex(get.as_bytes());
    assert_eq!(c.cmd(&["SCRIPT", "LOAD", get]).await, bulk(&sha));
    assert_eq!(c.cmd(&["MULTI"]).await, simple("OK"));
    assert_eq!(c.cmd(&["SET", "n", "5"]).await, simple("QUEUED"));
    assert_eq!(
        c.cmd(&[
            "EVAL",
            "return redis.call('INCRBY', KEYS[1], ARGV[1])",
            "1",
            "n",
            "10"
        ])
        .await,
        simple("QUEUED")
    );
    assert_eq!(c.cmd(&["EVALSHA", &sha, "1", "n"]).await, simple("QUEUED"));
    let unknown = "ffffffffffffffffffffffffffffffffffffffff";
    assert_eq!(c.cmd(&["EVALSHA", unknown, "0"]).await, simple("QUEUED"));
    assert_eq!(
        c.cmd(&["EXEC"]).await,
        arr(vec![
            simple("OK"),
            int(15),
            bulk("15"),
            err("NOSCRIPT No matching script. Please use EVAL."),
        ])
    );
    fx.stop().await;
}
