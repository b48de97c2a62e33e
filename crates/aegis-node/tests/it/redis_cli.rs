//! The real `redis-cli` against the server (skipped, with a message, when it is absent).

use std::process::{Command, Output};

use aegis_node::ServerConfig;

use crate::support::start_local;

fn redis_cli_present() -> bool {
    match Command::new("redis-cli").arg("--version").output() {
        Ok(out) => {
            assert!(out.status.success(), "redis-cli --version failed: {out:?}");
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => panic!("cannot run redis-cli: {e}"),
    }
}

/// Runs `redis-cli` with `args` (and optional stdin) on the blocking pool.
async fn redis_cli(port: u16, args: &[&str], stdin: Option<&str>) -> Output {
    let mut full: Vec<String> = vec![
        "-h".into(),
        "127.0.0.1".into(),
        "-p".into(),
        port.to_string(),
    ];
    full.extend(args.iter().map(|a| (*a).to_owned()));
    let stdin = stdin.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = Command::new("redis-cli")
            .args(&full)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("redis-cli starts");
        let mut input = child.stdin.take().expect("piped stdin");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).expect("write stdin");
        }
        drop(input);
        child.wait_with_output().expect("redis-cli finishes")
    })
    .await
    .expect("no panic")
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "redis-cli failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_talks_to_the_server() {
    if !redis_cli_present() {
        println!(
            "SKIPPED redis_cli_talks_to_the_server: redis-cli is not on PATH (apt-get install redis-tools)"
        );
        return;
    }
    let fx = start_local(ServerConfig::default()).await;
    let port = fx.addr.port();
    let run = |args: &'static [&'static str]| redis_cli(port, args, None);
    assert_eq!(stdout(&run(&["PING"]).await), "PONG");
    assert_eq!(
        stdout(&run(&["SET", "greeting", "hello world"]).await),
        "OK"
    );
    assert_eq!(stdout(&run(&["GET", "greeting"]).await), "hello world");
    assert_eq!(stdout(&run(&["SET", "greeting", "x", "NX"]).await), "");
    assert_eq!(stdout(&run(&["INCRBY", "n", "5"]).await), "5");
    assert_eq!(stdout(&run(&["DECR", "n"]).await), "4");
    assert_eq!(stdout(&run(&["MSET", "a", "1", "b", "2"]).await), "OK");
    // A nil prints as an empty line.
    let mget = run(&["MGET", "a", "b", "nope"]).await;
    assert_eq!(String::from_utf8_lossy(&mget.stdout), "1\n2\n\n");
    assert_eq!(stdout(&run(&["EXISTS", "a", "nope"]).await), "1");
    assert_eq!(stdout(&run(&["DEL", "a", "b"]).await), "2");
    assert_eq!(stdout(&run(&["ECHO", "hi"]).await), "hi");
    let info = stdout(&run(&["INFO", "replication"]).await);
    assert!(
        info.contains("role:leader") && info.contains("applied_index:"),
        "{info}"
    );
    assert_eq!(
        stdout(&run(&["GET"]).await),
        "ERR wrong number of arguments for 'get' command"
    );
    assert!(stdout(&run(&["FROB"]).await).starts_with("ERR unknown command 'FROB'"));
    // Commands read from standard input, one per line.
    let batch = redis_cli(port, &[], Some("SET piped yes\nGET piped\nINCR n\n")).await;
    assert_eq!(stdout(&batch), "OK\nyes\n5");
    fx.stop().await;

    let guarded = start_local(ServerConfig {
        password: Some("pw".into()),
        ..ServerConfig::default()
    })
    .await;
    let port = guarded.addr.port();
    let refused = redis_cli(port, &["GET", "k"], None).await;
    assert!(stdout(&refused).starts_with("NOAUTH"), "{refused:?}");
    let allowed = redis_cli(
        port,
        &["-a", "pw", "--no-auth-warning", "SET", "k", "v"],
        None,
    )
    .await;
    assert_eq!(stdout(&allowed), "OK");
    guarded.stop().await;
}

/// `redis-cli`'s monitoring modes: `--stat` reads `INFO` every interval, `--bigkeys`
/// and `--memkeys` walk the keys with `SCAN`, `TYPE`, `STRLEN` and `MEMORY USAGE`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_monitoring_modes_work() {
    if !redis_cli_present() {
        println!(
            "SKIPPED redis_cli_monitoring_modes_work: redis-cli is not on PATH (apt-get install redis-tools)"
        );
        return;
    }
    let fx = start_local(ServerConfig::default()).await;
    let port = fx.addr.port();
    for (key, value) in [("small", "x"), ("big", "0123456789"), ("mid", "abc")] {
        assert_eq!(
            stdout(&redis_cli(port, &["SET", key, value], None).await),
            "OK"
        );
    }
    let bigkeys = stdout(&redis_cli(port, &["--bigkeys"], None).await);
    assert!(
        bigkeys.contains("Biggest string found '\"big\"' has 10 bytes")
            && bigkeys.contains("3 strings with 14 bytes"),
        "{bigkeys}"
    );
    let memkeys = stdout(&redis_cli(port, &["--memkeys"], None).await);
    assert!(
        memkeys.contains("Biggest string found '\"big\"'"),
        "{memkeys}"
    );

    // --stat never ends: read its first row of figures, then stop it.
    let mut child = Command::new("redis-cli")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-i",
            "0.01",
            "--stat",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("redis-cli starts");
    let out = child.stdout.take().expect("piped stdout");
    let first_row = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .find(|line| line.starts_with(|c: char| c.is_ascii_digit()))
    });
    // Only a guard against a hang: a row comes within the first second.
    let row = tokio::time::timeout(std::time::Duration::from_secs(60), first_row).await;
    child.kill().expect("stop redis-cli");
    let status = child.wait_with_output().expect("redis-cli ends");
    let row = row.expect("--stat printed a row").expect("no panic");
    let row = row.unwrap_or_else(|| panic!("--stat printed no figures: {status:?}"));
    // keys, memory, clients, blocked, requests, connections.
    let columns: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(columns.first(), Some(&"3"), "{row}");
    assert_eq!(columns.get(3), Some(&"0"), "blocked clients: {row}");
    fx.stop().await;
}
