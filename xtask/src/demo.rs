//! `cargo xtask demo`: a local 3-node cluster, a leader crash, and recovery.
//!
//! Builds `aegis-node`, makes a cluster CA and node certificates in a temporary
//! directory, starts three nodes on 127.0.0.1, writes keys through the Redis protocol,
//! kills the leader with SIGKILL, shows the new leader and that every acknowledged key
//! survived, restarts the killed node and shows it catching up, then stops everything
//! and removes the directory.

use std::time::{Duration, Instant};

use crate::Result;
use crate::local_cluster::{Cluster, NODES, build_node, expect, resp};

const KEYS: usize = 200;

pub(crate) fn run_demo(args: &[String]) -> Result {
    if let Some(arg) = args.first() {
        return Err(format!("unexpected argument `{arg}`"));
    }
    let started = Instant::now();
    say("building aegis-node");
    let binary = build_node("dev")?;
    let dir = std::env::temp_dir().join(format!("aegis-demo-{}", std::process::id()));
    say("making a cluster CA and node certificates");
    let mut cluster = Cluster::create(binary, dir, "")?;
    let result = story(&mut cluster, started);
    if result.is_err() {
        cluster.stop_all();
        cluster.print_log_tails();
    }
    cluster.destroy();
    result
}

fn story(cluster: &mut Cluster, started: Instant) -> Result {
    for i in 0..cluster.nodes.len() {
        cluster.start(i)?;
    }
    say(&format!(
        "started {NODES} nodes on 127.0.0.1 (data and logs in a temporary directory)"
    ));

    let t = Instant::now();
    let leader = cluster.wait_for_leader(None, Duration::from_secs(30))?;
    say(&format!(
        "node {leader} was elected leader in {:.0?}",
        t.elapsed()
    ));

    let t = Instant::now();
    for k in 0..KEYS {
        let via = &cluster.nodes[k % cluster.nodes.len()];
        let reply = resp(
            &via.client,
            &["SET", &format!("key:{k}"), &format!("value-{k}")],
        )?;
        expect(&reply, "OK", "SET")?;
    }
    let took = t.elapsed();
    say(&format!(
        "wrote {KEYS} keys through all three nodes (followers forward to the leader) in {took:.0?}, {:.0} writes/s one at a time",
        KEYS as f64 / took.as_secs_f64()
    ));

    let victim = cluster.index_of(leader);
    let t = Instant::now();
    cluster.kill(victim);
    say(&format!("killed the leader, node {leader}, with SIGKILL"));
    let new_leader = cluster.wait_for_leader(Some(leader), Duration::from_secs(30))?;
    say(&format!(
        "node {new_leader} took over as leader {:.0?} after the kill",
        t.elapsed()
    ));

    let survivor = cluster.nodes[cluster.index_of(new_leader)].client.clone();
    check_keys(&survivor)?;
    say(&format!("all {KEYS} acknowledged keys are still there"));
    let reply = resp(&survivor, &["INCR", "visits"])?;
    say(&format!(
        "the cluster keeps taking writes: INCR visits -> {}",
        reply.trim()
    ));

    let t = Instant::now();
    cluster.start(victim)?;
    let target = cluster.applied_index(&survivor)?;
    cluster.wait_caught_up(victim, target, Duration::from_secs(30))?;
    say(&format!(
        "restarted node {leader}; it caught up to index {target} in {:.0?}",
        t.elapsed()
    ));
    check_keys(&cluster.nodes[victim].client.clone())?;
    say(&format!("node {leader} serves all {KEYS} keys again"));
    say(&format!(
        "done in {:.1?}; stopping the cluster and cleaning up",
        started.elapsed()
    ));
    Ok(())
}

fn check_keys(client: &str) -> Result {
    for k in 0..KEYS {
        let reply = resp(client, &["GET", &format!("key:{k}")])?;
        expect(&reply, &format!("value-{k}"), "GET")?;
    }
    Ok(())
}

fn say(line: &str) {
    println!("[demo] {line}");
}
