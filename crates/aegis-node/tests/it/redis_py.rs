//! redis-py, the Python client, against the server: in its default protocol (RESP3 since
//! redis-py 6) and in RESP2. The Python it runs is `$AEGIS_PYTHON` if set (then it must
//! work: CI sets it), else `python3`; without one that imports `redis` the test is
//! skipped, with a message.

use std::process::Command;

use aegis_node::ServerConfig;

use crate::support::start_local;

/// What applications do with redis-py, checked by Python's own asserts; exits 0 when all
/// of them hold. The port and the protocol come as arguments.
const SCRIPT: &str = r#"
import sys
import redis

port, protocol = int(sys.argv[1]), int(sys.argv[2])
r = redis.Redis(host="127.0.0.1", port=port, protocol=protocol, decode_responses=True)
p = f"p{protocol}:"

assert r.ping()
assert r.set(p + "greeting", "hello")
assert r.get(p + "greeting") == "hello"
assert r.incrbyfloat(p + "price", 0.25) == 0.25
assert r.hset(p + "user", mapping={"name": "ada", "lang": "rust"}) == 2
assert r.hgetall(p + "user") == {"name": "ada", "lang": "rust"}
assert r.hincrby(p + "user", "visits", 2) == 2
assert r.sadd(p + "tags", "a", "b", "a") == 2
assert r.smembers(p + "tags") == {"a", "b"}
assert r.smismember(p + "tags", ["a", "z"]) == [1, 0]
assert r.rpush(p + "jobs", "1", "2", "3") == 3
assert r.lrange(p + "jobs", 0, -1) == ["1", "2", "3"]
assert r.lmove(p + "jobs", p + "done", "LEFT", "RIGHT") == "1"
# Members and scores come as tuples in RESP2 and as lists in RESP3, as from Redis.
pairs = lambda rows: [tuple(row) for row in rows]
assert r.zadd(p + "board", {"ann": 10.5, "bo": 3, "cy": 7}) == 3
assert r.zincrby(p + "board", 0.25, "bo") == 3.25
assert pairs(r.zrange(p + "board", 0, -1, withscores=True)) == [
    ("bo", 3.25), ("cy", 7.0), ("ann", 10.5)
]
assert r.zrevrangebyscore(p + "board", "+inf", 5, start=0, num=1) == ["ann"]
assert r.zscore(p + "board", "cy") == 7.0 and r.zrank(p + "board", "ann") == 2
assert pairs(r.zpopmin(p + "board", 1)) == [("bo", 3.25)]
# A work queue: a blocking pop times out empty, then takes what is pushed.
assert r.blpop([p + "queue"], timeout=0.01) is None
assert r.rpush(p + "queue", "job") == 1
assert tuple(r.brpop([p + "nothing", p + "queue"], timeout=1)) == (p + "queue", "job")

# Pipelines are transactions by default: every reply keeps its Python type.
pipe = r.pipeline()
pipe.hgetall(p + "user").smembers(p + "tags").lrange(p + "done", 0, -1).get(p + "greeting")
pipe.zrange(p + "board", 0, -1, withscores=True).zmscore(p + "board", ["ann", "zed"])
user, tags, done, greeting, board, scores = pipe.execute()
assert pairs(board) == [("cy", 7.0), ("ann", 10.5)], board
assert scores == [10.5, None], scores
assert user == {"name": "ada", "lang": "rust", "visits": "2"}, user
assert tags == {"a", "b"}, tags
assert (done, greeting) == (["1"], "hello")

# A failed command inside a transaction is its own error; the others run.
pipe = r.pipeline()
pipe.incr(p + "greeting").set(p + "after", "x")
results = pipe.execute(raise_on_error=False)
assert isinstance(results[0], redis.ResponseError) and results[1] is True, results

try:
    r.hget(p + "greeting", "f")
    raise AssertionError("HGET on a string must fail")
except redis.ResponseError as e:
    assert str(e).startswith("WRONGTYPE"), e

# The optimistic-locking helper: WATCH, read, MULTI/EXEC.
def double(pipe):
    n = int(pipe.get(p + "n") or 0)
    pipe.multi()
    pipe.set(p + "n", n * 2 + 1)
assert r.transaction(double, p + "n") == [True]
assert r.get(p + "n") == "1"

assert sorted(r.scan_iter(match=p + "*")) == sorted(
    p + k for k in ["greeting", "price", "user", "tags", "jobs", "done", "after", "n", "board"]
)
# Publish and subscribe, through the client's own helper.
ps = r.pubsub()
ps.subscribe(p + "events")
assert ps.get_message(timeout=1)["type"] == "subscribe"
assert r.publish(p + "events", "deployed") == 1
message = ps.get_message(timeout=1)
assert (message["type"], message["channel"], message["data"]) == (
    "message", p + "events", "deployed"
), message
ps.close()
assert r.info()["role"] == "leader"
assert any(c.get("lib-name") == "redis-py" for c in r.client_list())
print("redis-py", redis.__version__, "protocol", protocol, "ok")
"#;

/// The Python to run: `Some` when it imports `redis`.
fn python() -> Option<String> {
    let required = std::env::var("AEGIS_PYTHON").ok();
    let python = required.clone().unwrap_or_else(|| "python3".to_owned());
    let works = Command::new(&python)
        .args(["-c", "import redis"])
        .output()
        .is_ok_and(|out| out.status.success());
    assert!(
        works || required.is_none(),
        "AEGIS_PYTHON={python} cannot import redis"
    );
    works.then_some(python)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_py_works_unchanged() {
    let Some(python) = python() else {
        eprintln!("skipped: no python3 with the redis package (set AEGIS_PYTHON)");
        return;
    };
    let fx = start_local(ServerConfig::default()).await;
    let port = fx.addr.port().to_string();
    for protocol in ["3", "2"] {
        let (python, port) = (python.clone(), port.clone());
        let out = tokio::task::spawn_blocking(move || {
            Command::new(python)
                .args(["-c", SCRIPT, &port, protocol])
                .output()
                .expect("python runs")
        })
        .await
        .expect("no panic");
        assert!(
            out.status.success(),
            "redis-py, protocol {protocol}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    fx.stop().await;
}
