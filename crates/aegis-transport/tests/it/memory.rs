use std::time::Duration;

use aegis_transport::{
    Channel, Envelope, Error, FaultConfig, Incoming, MemoryConfig, MemoryNetwork, MemoryTransport,
    NodeId, Transport,
};
use tokio::time::{Instant, sleep, timeout};

const SETTLE: Duration = Duration::from_secs(5);

fn message(seq: u32) -> Envelope {
    Envelope::new(Channel::Raft, 7, seq.to_be_bytes().to_vec())
}

fn seq_of(incoming: &Incoming) -> u32 {
    let payload = &incoming.envelope().payload;
    u32::from_be_bytes(payload[..4].try_into().unwrap())
}

fn network(seed: u64, faults: FaultConfig) -> MemoryNetwork {
    let config = MemoryConfig {
        faults,
        ..MemoryConfig::default()
    };
    MemoryNetwork::new(config, seed).unwrap()
}

/// Everything that arrives until the network has been quiet for a (virtual) while.
async fn drain(node: &MemoryTransport) -> Vec<Incoming> {
    let mut out = Vec::new();
    while let Ok(next) = timeout(SETTLE, node.recv()).await {
        out.push(next.unwrap());
    }
    out
}

/// Sends `count` numbered messages from 1 to 2 and returns the sequence numbers received.
async fn run_one_way(seed: u64, faults: FaultConfig, count: u32) -> (Vec<u32>, MemoryNetwork) {
    let net = network(seed, faults);
    let a = net.join(1).unwrap();
    let b = net.join(2).unwrap();
    for seq in 0..count {
        a.send(2, message(seq)).await.unwrap();
    }
    let got = drain(&b).await.iter().map(seq_of).collect();
    (got, net)
}

fn spawn_echo(node: MemoryTransport) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok(incoming) = node.recv().await {
            if let Incoming::Request {
                envelope,
                responder,
                ..
            } = incoming
            {
                let _ = responder.respond(Envelope::new(
                    envelope.channel,
                    envelope.kind + 1,
                    envelope.payload,
                ));
            }
        }
    })
}

#[tokio::test(start_paused = true)]
async fn request_and_one_way_in_both_directions() {
    let net = network(1, FaultConfig::NONE);
    let a = net.join(1).unwrap();
    let b = net.join(2).unwrap();
    a.send(2, message(1)).await.unwrap();
    b.send(1, message(2)).await.unwrap();
    let at_b = b.recv().await.unwrap();
    let at_a = a.recv().await.unwrap();
    assert_eq!((at_b.source(), seq_of(&at_b)), (1, 1));
    assert_eq!((at_a.source(), seq_of(&at_a)), (2, 2));

    let echo_b = spawn_echo(b);
    let answer = a.request(2, message(5)).await.unwrap();
    assert_eq!(
        (answer.kind, &answer.payload[..]),
        (8, &5u32.to_be_bytes()[..])
    );
    echo_b.abort();

    let c = net.join(3).unwrap();
    let echo_a = spawn_echo(a);
    let answer = c.request(1, message(6)).await.unwrap();
    assert_eq!(answer.kind, 8);
    echo_a.abort();
}

#[tokio::test(start_paused = true)]
async fn unknown_peers_and_duplicate_ids_are_errors() {
    let net = network(1, FaultConfig::NONE);
    let a = net.join(1).unwrap();
    assert!(matches!(net.join(1), Err(Error::DuplicateNode { node: 1 })));
    assert!(matches!(
        a.send(99, message(0)).await,
        Err(Error::PeerUnknown { peer: 99 })
    ));
    assert!(matches!(
        a.request(99, message(0)).await,
        Err(Error::PeerUnknown { peer: 99 })
    ));
}

#[tokio::test(start_paused = true)]
async fn drop_loses_some_messages_the_same_way_for_a_seed() {
    let faults = FaultConfig {
        drop_per_million: 300_000,
        ..FaultConfig::NONE
    };
    for seed in [11_u64, 12, 13] {
        let (got, net) = run_one_way(seed, faults, 200).await;
        let (again, _) = run_one_way(seed, faults, 200).await;
        assert_eq!(got, again, "seed {seed} must replay");
        let stats = net.stats();
        assert_eq!(got.len() as u64 + stats.dropped, 200, "seed {seed}");
        assert!(
            stats.dropped > 20 && stats.dropped < 120,
            "seed {seed}: {stats:?}"
        );
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "seed {seed}: dropping must not reorder"
        );
    }
    let (first, _) = run_one_way(11, faults, 200).await;
    let (second, _) = run_one_way(12, faults, 200).await;
    assert_ne!(first, second);
}

#[tokio::test(start_paused = true)]
async fn delay_holds_messages_for_the_configured_time() {
    let faults = FaultConfig {
        delay_per_million: 1_000_000,
        delay_min: Duration::from_millis(20),
        delay_max: Duration::from_millis(80),
        ..FaultConfig::NONE
    };
    let net = network(21, faults);
    let a = net.join(1).unwrap();
    let b = net.join(2).unwrap();
    let start = Instant::now();
    a.send(2, message(0)).await.unwrap();
    let first = b.recv().await.unwrap();
    let waited = start.elapsed();
    assert_eq!(seq_of(&first), 0);
    assert!(
        waited >= faults.delay_min && waited <= faults.delay_max + Duration::from_millis(1),
        "{waited:?}"
    );

    for seq in 1..50 {
        a.send(2, message(seq)).await.unwrap();
    }
    let mut got: Vec<u32> = drain(&b).await.iter().map(seq_of).collect();
    assert_eq!(net.stats().delayed, 50);
    let in_arrival_order = got.clone();
    got.sort_unstable();
    assert_eq!(got, (1..50).collect::<Vec<_>>());
    assert_ne!(
        in_arrival_order, got,
        "random delays should let later messages overtake"
    );
}

#[tokio::test(start_paused = true)]
async fn duplicate_delivers_extra_copies() {
    let always = FaultConfig {
        duplicate_per_million: 1_000_000,
        ..FaultConfig::NONE
    };
    let (got, net) = run_one_way(31, always, 20).await;
    let expected: Vec<u32> = (0..20).flat_map(|s| [s, s]).collect();
    assert_eq!(got, expected);
    assert_eq!(net.stats().duplicated, 20);

    let half = FaultConfig {
        duplicate_per_million: 500_000,
        ..FaultConfig::NONE
    };
    let (got, net) = run_one_way(32, half, 200).await;
    let duplicated = net.stats().duplicated;
    assert_eq!(got.len() as u64, 200 + duplicated);
    assert!(duplicated > 50 && duplicated < 150, "{duplicated}");
}

#[tokio::test(start_paused = true)]
async fn reorder_swaps_neighbours_and_loses_nothing() {
    let always = FaultConfig {
        reorder_per_million: 1_000_000,
        ..FaultConfig::NONE
    };
    let (got, net) = run_one_way(41, always, 7).await;
    // Every odd message is held until the next one passes it; the last waits out the hold.
    assert_eq!(got, vec![1, 0, 3, 2, 5, 4, 6]);
    assert_eq!(net.stats().reordered, 7);

    let some = FaultConfig {
        reorder_per_million: 250_000,
        ..FaultConfig::NONE
    };
    let (mut got, _) = run_one_way(42, some, 100).await;
    assert!(
        !got.windows(2).all(|w| w[0] < w[1]),
        "expected at least one swap"
    );
    got.sort_unstable();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn partition_cuts_links_until_healed() {
    let net = network(51, FaultConfig::NONE);
    let nodes: Vec<MemoryTransport> = (1..=3).map(|id| net.join(id).unwrap()).collect();
    net.partition(&[1], &[2, 3]);
    assert!(net.is_blocked(1, 2) && net.is_blocked(3, 1) && !net.is_blocked(2, 3));

    nodes[0].send(2, message(1)).await.unwrap();
    nodes[2].send(1, message(2)).await.unwrap();
    nodes[1].send(3, message(3)).await.unwrap();
    let at3 = nodes[2].recv().await.unwrap();
    assert_eq!((at3.source(), seq_of(&at3)), (2, 3));
    assert!(drain(&nodes[0]).await.is_empty());
    assert!(drain(&nodes[1]).await.is_empty());
    let err = nodes[0].request(2, message(4)).await.unwrap_err();
    assert!(matches!(err, Error::NoResponse { peer: 2 }), "{err}");
    assert_eq!(net.stats().dropped, 3);

    net.heal();
    nodes[0].send(2, message(5)).await.unwrap();
    let at2 = nodes[1].recv().await.unwrap();
    assert_eq!((at2.source(), seq_of(&at2)), (1, 5));

    net.block(2, 1);
    nodes[1].send(1, message(6)).await.unwrap();
    nodes[0].send(2, message(7)).await.unwrap();
    assert_eq!(seq_of(&nodes[1].recv().await.unwrap()), 7);
    assert!(drain(&nodes[0]).await.is_empty());

    net.heal();
    net.isolate(3);
    nodes[0].send(3, message(8)).await.unwrap();
    assert!(drain(&nodes[2]).await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn full_queues_make_senders_wait() {
    let config = MemoryConfig {
        inbox_max: 2,
        peer_queue_max: 2,
        ..MemoryConfig::default()
    };
    let net = MemoryNetwork::new(config, 61).unwrap();
    let a = net.join(1).unwrap();
    let b = net.join(2).unwrap();
    // Inbox (2) + the item the link task holds (1) + the link queue (2).
    let capacity = 5;
    for seq in 0..capacity {
        a.send(2, message(seq)).await.unwrap();
    }
    let blocked = timeout(Duration::from_secs(10), a.send(2, message(capacity))).await;
    assert!(blocked.is_err(), "a send beyond every queue must wait");
    let first = b.recv().await.unwrap();
    assert_eq!(seq_of(&first), 0);
    timeout(Duration::from_secs(10), a.send(2, message(capacity + 1)))
        .await
        .expect("one slot freed, the send proceeds")
        .unwrap();
    let rest: Vec<u32> = drain(&b).await.iter().map(seq_of).collect();
    assert_eq!(rest, vec![1, 2, 3, 4, 6]);
}

#[tokio::test(start_paused = true)]
async fn unanswered_requests_time_out_and_dropped_ones_say_so() {
    let config = MemoryConfig {
        request_timeout: Duration::from_millis(300),
        ..MemoryConfig::default()
    };
    let net = MemoryNetwork::new(config, 71).unwrap();
    let a = net.join(1).unwrap();
    let b = net.join(2).unwrap();
    let holder = tokio::spawn(async move {
        let kept = b.recv().await.unwrap();
        let dropped = b.recv().await.unwrap();
        drop(dropped);
        sleep(Duration::from_secs(60)).await;
        drop(kept);
        b
    });
    let err = a.request(2, message(1)).await.unwrap_err();
    assert!(
        matches!(err, Error::TimedOut { peer: 2, after } if after == Duration::from_millis(300))
    );
    let err = a.request(2, message(2)).await.unwrap_err();
    assert!(matches!(err, Error::NoResponse { peer: 2 }), "{err}");
    let _b = holder.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_node_that_leaves_loses_traffic_and_can_rejoin() {
    let net = network(81, FaultConfig::NONE);
    let a = net.join(1).unwrap();
    let b = net.join(2).unwrap();
    b.shutdown();
    assert!(matches!(b.recv().await, Err(Error::Shutdown)));
    assert!(matches!(b.send(1, message(0)).await, Err(Error::Shutdown)));
    a.send(2, message(1)).await.unwrap();
    assert!(matches!(
        a.request(2, message(2)).await,
        Err(Error::NoResponse { peer: 2 })
    ));
    drop(b);

    let b = net.join(2).unwrap();
    a.send(2, message(3)).await.unwrap();
    assert_eq!(seq_of(&b.recv().await.unwrap()), 3);
}

#[tokio::test(start_paused = true)]
async fn dyn_transport_is_usable() {
    let net = network(91, FaultConfig::NONE);
    let nodes: Vec<Box<dyn Transport>> = vec![
        Box::new(net.join(1).unwrap()),
        Box::new(net.join(2).unwrap()),
    ];
    let ids: Vec<NodeId> = nodes.iter().map(|n| n.local_id()).collect();
    assert_eq!(ids, vec![1, 2]);
    nodes[0].send(2, message(4)).await.unwrap();
    assert_eq!(seq_of(&nodes[1].recv().await.unwrap()), 4);
}

#[tokio::test(start_paused = true)]
async fn try_send_refuses_a_full_queue_and_works_from_any_thread() {
    let config = MemoryConfig {
        peer_queue_max: 2,
        ..MemoryConfig::default()
    };
    let net = MemoryNetwork::new(config, 3).unwrap();
    let a = std::sync::Arc::new(net.join(1).unwrap());
    let b = net.join(2).unwrap();
    // The link's task does not run before this task waits, so the queue fills.
    a.try_send(2, message(1)).unwrap();
    a.try_send(2, message(2)).unwrap();
    assert!(matches!(
        a.try_send(2, message(3)),
        Err(Error::QueueFull { peer: 2 })
    ));
    assert!(matches!(
        a.try_send(9, message(3)),
        Err(Error::PeerUnknown { peer: 9 })
    ));
    // From a thread outside the runtime, to a peer with no link yet.
    let c = net.join(3).unwrap();
    let sender = std::sync::Arc::clone(&a);
    std::thread::spawn(move || sender.try_send(3, message(4)))
        .join()
        .unwrap()
        .unwrap();
    let got: Vec<u32> = drain(&b).await.iter().map(seq_of).collect();
    assert_eq!(got, vec![1, 2]);
    assert_eq!(seq_of(&c.recv().await.unwrap()), 4);
}

#[test]
fn direct_responders_answer_once_or_report_no_answer() {
    use aegis_transport::Responder;
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<Option<u32>>>> = Arc::default();
    let record = |seen: &Arc<Mutex<Vec<Option<u32>>>>| {
        let seen = Arc::clone(seen);
        Responder::from_fn(move |answer| {
            seen.lock()
                .unwrap()
                .push(answer.as_ref().map(seq_of_envelope));
            Ok(())
        })
    };
    record(&seen).respond(message(9)).unwrap();
    drop(record(&seen));
    assert!(!record(&seen).is_abandoned());
    assert_eq!(*seen.lock().unwrap(), vec![Some(9), None, None]);

    let failing = Responder::from_fn(|_| Err(Error::RequesterGone));
    assert!(matches!(
        failing.respond(message(1)),
        Err(Error::RequesterGone)
    ));
}

#[test]
fn sink_responders_answer_once_with_their_token_or_report_no_answer() {
    use aegis_transport::{AnswerSink, Responder};
    use std::sync::{Arc, Mutex};
    #[derive(Default)]
    struct Record(Mutex<Vec<(u64, Option<u32>)>>);
    impl AnswerSink for Record {
        fn answer(&self, token: u64, answer: Option<Envelope>) -> Result<(), Error> {
            let seq = answer.as_ref().map(seq_of_envelope);
            self.0.lock().unwrap().push((token, seq));
            if token == 99 {
                return Err(Error::RequesterGone);
            }
            Ok(())
        }
    }
    let record = Arc::new(Record::default());
    let sink = || Arc::clone(&record) as Arc<dyn AnswerSink>;
    Responder::from_sink(sink(), 7).respond(message(3)).unwrap();
    drop(Responder::from_sink(sink(), 8));
    let unanswered = Responder::from_sink(sink(), 9);
    assert!(!unanswered.is_abandoned());
    assert!(matches!(
        Responder::from_sink(sink(), 99).respond(message(4)),
        Err(Error::RequesterGone)
    ));
    drop(unanswered);
    assert_eq!(
        *record.0.lock().unwrap(),
        vec![(7, Some(3)), (8, None), (99, Some(4)), (9, None)]
    );
}

fn seq_of_envelope(envelope: &Envelope) -> u32 {
    u32::from_be_bytes(envelope.payload[..4].try_into().unwrap())
}
