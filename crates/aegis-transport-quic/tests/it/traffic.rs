use std::sync::Arc;
use std::time::Duration;

use aegis_transport::{Channel, Envelope, Error, Incoming, Transport};
use aegis_transport_quic::{CertificateAuthority, QuicConfig, QuicTransport};

use crate::support::{config, mesh, request, seq_of, serve_echo};

#[tokio::test]
async fn two_nodes_request_and_send_both_ways() {
    let ca = CertificateAuthority::generate("traffic").unwrap();
    let nodes = mesh(&ca, &[1, 2]);
    let mut at1 = serve_echo(Arc::clone(&nodes[0]));
    let mut at2 = serve_echo(Arc::clone(&nodes[1]));

    let answer = nodes[0].request(2, request(7)).await.unwrap();
    assert_eq!((answer.kind, seq_of(&answer)), (11, 7));
    let answer = nodes[1].request(1, request(8)).await.unwrap();
    assert_eq!((answer.kind, seq_of(&answer)), (11, 8));

    for seq in 0..200 {
        nodes[0].send(2, request(seq)).await.unwrap();
        nodes[1].send(1, request(1000 + seq)).await.unwrap();
    }
    for seq in 0..200 {
        let (source, envelope) = at2.recv().await.unwrap();
        assert_eq!(
            (source, seq_of(&envelope)),
            (1, seq),
            "one stream per peer keeps order"
        );
        let (source, envelope) = at1.recv().await.unwrap();
        assert_eq!((source, seq_of(&envelope)), (2, 1000 + seq));
    }
}

/// The same traffic through `dyn Transport`, as code generic over transports uses it.
#[tokio::test]
async fn the_trait_object_requests_sends_and_receives() {
    let ca = CertificateAuthority::generate("traffic").unwrap();
    let nodes = mesh(&ca, &[1, 2]);
    let client: Arc<dyn Transport> = nodes[0].clone();
    let server: Arc<dyn Transport> = nodes[1].clone();
    assert_eq!((client.local_id(), server.local_id()), (1, 2));
    let serving = tokio::spawn(async move {
        let Incoming::Request {
            source,
            envelope,
            responder,
        } = server.recv().await.unwrap()
        else {
            panic!("a request comes first");
        };
        assert_eq!((source, seq_of(&envelope)), (1, 5));
        responder.respond(request(6)).unwrap();
        let Incoming::Message { source, envelope } = server.recv().await.unwrap() else {
            panic!("then a message");
        };
        (source, seq_of(&envelope))
    });
    let answer = client.request(2, request(5)).await.unwrap();
    assert_eq!(seq_of(&answer), 6);
    client.send(2, request(7)).await.unwrap();
    assert_eq!(serving.await.unwrap(), (1, 7));
}

#[tokio::test]
async fn try_send_queues_without_waiting_and_refuses_a_full_queue() {
    let ca = CertificateAuthority::generate("traffic").unwrap();
    let mut client_config = config(1);
    client_config.peer_queue_max = 2;
    let client = QuicTransport::bind(client_config, &ca.node_identity(1).unwrap()).unwrap();
    let server = crate::support::node(&ca, 2);
    client.set_peer(2, server.local_addr());
    let mut inbox = serve_echo(Arc::clone(&server));
    // The writer does not run before this task waits, so the queue fills.
    client.try_send(2, request(1)).unwrap();
    client.try_send(2, request(2)).unwrap();
    assert!(matches!(
        client.try_send(2, request(3)),
        Err(Error::QueueFull { peer: 2 })
    ));
    assert!(matches!(
        client.try_send(9, request(3)),
        Err(Error::PeerUnknown { peer: 9 })
    ));
    for seq in [1, 2] {
        assert_eq!(inbox.recv().await.map(|(_, e)| seq_of(&e)), Some(seq));
    }
}

#[tokio::test]
async fn loopback_connections_discover_large_packets() {
    let ca = CertificateAuthority::generate("mtu").unwrap();
    let nodes = mesh(&ca, &[1, 2]);
    let mut at2 = serve_echo(Arc::clone(&nodes[1]));
    assert_eq!(nodes[0].udp_payload_size(2), None, "not connected yet");
    nodes[0].request(2, request(1)).await.unwrap();
    // Discovery runs in the background after the handshake; give it up to ten seconds.
    let mut size = 0;
    for _ in 0..500 {
        size = nodes[0].udp_payload_size(2).unwrap();
        if size > QuicConfig::UDP_PAYLOAD_MAX_NETWORK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        size > QuicConfig::UDP_PAYLOAD_MAX_NETWORK && size <= QuicConfig::UDP_PAYLOAD_MAX_LOOPBACK,
        "path MTU on loopback stayed at {size}"
    );
    // A batch of one-way messages larger than one small packet still arrives whole.
    for seq in 0..2000 {
        nodes[0].send(2, request(seq)).await.unwrap();
    }
    for seq in 0..2000 {
        let (source, envelope) = at2.recv().await.unwrap();
        assert_eq!((source, seq_of(&envelope)), (1, seq));
    }
}

#[tokio::test]
async fn one_way_envelopes_at_the_frame_limit_are_sent_or_refused_exactly() {
    let ca = CertificateAuthority::generate("limit").unwrap();
    let mut cfg = config(1);
    cfg.frame_size_max = 1024;
    let sender = Arc::new(QuicTransport::bind(cfg, &ca.node_identity(1).unwrap()).unwrap());
    let receiver = crate::support::node(&ca, 2);
    sender.set_peer(2, receiver.local_addr());
    let mut at2 = serve_echo(Arc::clone(&receiver));
    // The encoded size is the payload plus a few bytes of header: find the largest
    // payload that still fits by encoding, then check the transport agrees on both sides
    // of that line.
    let fits = |len: usize| {
        aegis_transport_quic::wire::encode_frame(
            &Envelope::new(Channel::Raft, 7, vec![1u8; len]),
            1024,
        )
        .is_ok()
    };
    let largest = (0..1024).rev().find(|&len| fits(len)).unwrap();
    assert!(largest > 1000);
    let err = sender
        .send(2, Envelope::new(Channel::Raft, 7, vec![1u8; largest + 1]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::FrameTooLarge { max: 1024, .. }),
        "{err}"
    );
    for len in [largest, largest - 5, 10] {
        sender
            .send(2, Envelope::new(Channel::Raft, 7, vec![2u8; len]))
            .await
            .unwrap();
        let (source, envelope) = at2.recv().await.unwrap();
        assert_eq!((source, envelope.payload.len()), (1, len));
    }
}

#[tokio::test]
async fn three_nodes_all_talk_to_each_other() {
    let ca = CertificateAuthority::generate("traffic").unwrap();
    let nodes = mesh(&ca, &[1, 2, 3]);
    let mut inboxes: Vec<_> = nodes.iter().map(|n| serve_echo(Arc::clone(n))).collect();
    for from in &nodes {
        for to in [1u64, 2, 3] {
            if to == from.local_id() {
                continue;
            }
            let seq = (from.local_id() * 10 + to) as u32;
            let answer = from.request(to, request(seq)).await.unwrap();
            assert_eq!(seq_of(&answer), seq);
            from.send(to, request(seq)).await.unwrap();
        }
    }
    for (index, inbox) in inboxes.iter_mut().enumerate() {
        let me = index as u64 + 1;
        let mut got = vec![inbox.recv().await.unwrap(), inbox.recv().await.unwrap()];
        got.sort_by_key(|(source, _)| *source);
        let sources: Vec<u64> = got.iter().map(|(s, _)| *s).collect();
        let expected: Vec<u64> = [1, 2, 3].into_iter().filter(|&n| n != me).collect();
        assert_eq!(sources, expected);
        for (source, envelope) in got {
            assert_eq!(seq_of(&envelope), (source * 10 + me) as u32);
        }
    }
}

#[tokio::test]
async fn large_requests_and_responses_arrive_intact() {
    // Larger than a stream's default flow-control window, so both frames arrive in many
    // pieces and the response cannot be written in one go.
    let ca = CertificateAuthority::generate("traffic").unwrap();
    let nodes = mesh(&ca, &[1, 2]);
    let _inbox = serve_echo(Arc::clone(&nodes[1]));
    let payload: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    for round in 0..2u8 {
        let mut body = payload.clone();
        body[0] = round;
        let sent = Envelope::new(Channel::Raft, 10, body);
        let answer = nodes[0].request(2, sent.clone()).await.unwrap();
        assert_eq!(answer.kind, 11);
        assert!(
            answer.payload == sent.payload,
            "round {round}: payload changed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_requests_in_flight_beyond_quic_default_stream_limit() {
    let ca = CertificateAuthority::generate("traffic").unwrap();
    let nodes = mesh(&ca, &[1, 2]);
    let _inbox = serve_echo(Arc::clone(&nodes[1]));
    let mut tasks = tokio::task::JoinSet::new();
    for seq in 0..300u32 {
        let client = Arc::clone(&nodes[0]);
        tasks.spawn(async move { (seq, client.request(2, request(seq)).await) });
    }
    let mut answered = 0;
    while let Some(done) = tasks.join_next().await {
        let (seq, answer) = done.unwrap();
        assert_eq!(seq_of(&answer.unwrap()), seq);
        answered += 1;
    }
    assert_eq!(answered, 300);
}

#[tokio::test]
async fn requests_beyond_the_queue_limit_wait_for_room_and_all_get_answers() {
    let ca = CertificateAuthority::generate("traffic").unwrap();
    let mut client_config = config(1);
    client_config.peer_queue_max = 2;
    let client =
        Arc::new(QuicTransport::bind(client_config, &ca.node_identity(1).unwrap()).unwrap());
    let server = crate::support::node(&ca, 2);
    client.set_peer(2, server.local_addr());
    let _inbox = serve_echo(Arc::clone(&server));
    // Open the channel first, so the burst below queues on it.
    assert_eq!(seq_of(&client.request(2, request(0)).await.unwrap()), 0);
    let mut tasks = tokio::task::JoinSet::new();
    for seq in 1..=100u32 {
        let client = Arc::clone(&client);
        tasks.spawn(async move { (seq, client.request(2, request(seq)).await) });
    }
    let mut answered = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (seq, answer) = done.unwrap();
        assert_eq!(seq_of(&answer.unwrap()), seq);
        answered.push(seq);
    }
    answered.sort_unstable();
    assert_eq!(answered, (1..=100).collect::<Vec<_>>());
}

#[tokio::test]
async fn answers_given_in_another_order_reach_their_own_requests() {
    let ca = CertificateAuthority::generate("traffic").unwrap();
    let nodes = mesh(&ca, &[1, 2]);
    // Node 2 holds 20 requests, then answers the last first.
    let server = Arc::clone(&nodes[1]);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while held.len() < 20 {
            if let Incoming::Request {
                envelope,
                responder,
                ..
            } = server.recv().await.unwrap()
            {
                held.push((envelope, responder));
            }
        }
        for (envelope, responder) in held.into_iter().rev() {
            responder.respond(envelope).unwrap();
        }
    });
    let mut tasks = tokio::task::JoinSet::new();
    for seq in 0..20u32 {
        let client = Arc::clone(&nodes[0]);
        tasks.spawn(async move { (seq, client.request(2, request(seq)).await) });
    }
    while let Some(done) = tasks.join_next().await {
        let (seq, answer) = done.unwrap();
        assert_eq!(seq_of(&answer.unwrap()), seq);
    }
}

#[tokio::test]
async fn a_peer_has_at_most_requests_in_flight_max_unanswered() {
    let ca = CertificateAuthority::generate("traffic").unwrap();
    let client = Arc::new(QuicTransport::bind(config(1), &ca.node_identity(1).unwrap()).unwrap());
    let mut cfg = config(2);
    cfg.requests_in_flight_max = 4;
    let server = QuicTransport::bind(cfg, &ca.node_identity(2).unwrap()).unwrap();
    client.set_peer(2, server.local_addr());
    let mut tasks = tokio::task::JoinSet::new();
    for seq in 0..10u32 {
        let client = Arc::clone(&client);
        tasks.spawn(async move { (seq, client.request(2, request(seq)).await) });
    }
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(server.recv().await.unwrap());
    }
    // Nothing more is read while four are unanswered.
    let fifth = tokio::time::timeout(Duration::from_millis(200), server.recv()).await;
    assert!(fifth.is_err(), "a fifth request was delivered");
    // Answering one lets one more in; answering as they come lets them all through.
    let mut answered = 0;
    while answered < 10 {
        let incoming = match held.pop() {
            Some(incoming) => incoming,
            None => server.recv().await.unwrap(),
        };
        let Incoming::Request {
            envelope,
            responder,
            ..
        } = incoming
        else {
            panic!("expected a request");
        };
        responder.respond(envelope).unwrap();
        answered += 1;
    }
    while let Some(done) = tasks.join_next().await {
        let (seq, answer) = done.unwrap();
        assert_eq!(seq_of(&answer.unwrap()), seq);
    }
}

#[tokio::test]
async fn a_restarted_peer_is_reached_again() {
    let ca = CertificateAuthority::generate("traffic").unwrap();
    let nodes = mesh(&ca, &[1, 2]);
    let client = Arc::clone(&nodes[0]);
    let _inbox = serve_echo(Arc::clone(&nodes[1]));
    assert_eq!(seq_of(&client.request(2, request(1)).await.unwrap()), 1);
    let addr = nodes[1].local_addr();
    nodes[1].shutdown().await;
    drop(nodes);

    // While it is down, requests fail with a typed error instead of hanging.
    let err = client.request(2, request(2)).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unreachable { peer: 2, .. } | Error::TimedOut { peer: 2, .. }
        ),
        "{err}"
    );

    let mut restarted = None;
    for _ in 0..100 {
        let mut cfg = config(2);
        cfg.listen = addr;
        if let Ok(node) = QuicTransport::bind(cfg, &ca.node_identity(2).unwrap()) {
            restarted = Some(Arc::new(node));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let restarted = restarted.expect("the old port frees up once the endpoint is gone");
    restarted.set_peer(1, client.local_addr());
    let mut inbox = serve_echo(Arc::clone(&restarted));

    let mut answer = None;
    for attempt in 0..200 {
        match client.request(2, request(3)).await {
            Ok(reply) => {
                answer = Some(reply);
                break;
            }
            Err(Error::Unreachable { .. } | Error::TimedOut { .. }) => {
                tokio::time::sleep(Duration::from_millis(10 + attempt)).await;
            }
            Err(other) => panic!("unexpected error while reconnecting: {other}"),
        }
    }
    assert_eq!(seq_of(&answer.expect("reconnected within the attempts")), 3);
    client.send(2, request(4)).await.unwrap();
    let (source, envelope) = inbox.recv().await.unwrap();
    assert_eq!((source, seq_of(&envelope)), (1, 4));
}

#[tokio::test]
async fn unanswered_and_dropped_requests_are_typed() {
    let ca = CertificateAuthority::generate("traffic").unwrap();
    let mut cfg = config(1);
    cfg.request_timeout = Duration::from_millis(300);
    let client = QuicTransport::bind(cfg, &ca.node_identity(1).unwrap()).unwrap();
    let server = Arc::new(QuicTransport::bind(config(2), &ca.node_identity(2).unwrap()).unwrap());
    client.set_peer(2, server.local_addr());
    let holder = {
        let server = Arc::clone(&server);
        tokio::spawn(async move {
            let kept = server.recv().await.unwrap();
            drop(server.recv().await.unwrap());
            kept
        })
    };
    let err = client.request(2, request(1)).await.unwrap_err();
    assert!(matches!(err, Error::TimedOut { peer: 2, .. }), "{err}");
    let err = client.request(2, request(2)).await.unwrap_err();
    assert!(matches!(err, Error::NoResponse { peer: 2 }), "{err}");
    let kept = holder.await.unwrap();
    let Incoming::Request { responder, .. } = kept else {
        panic!("expected a request")
    };
    // A late answer is harmless: it goes to a stream nobody reads, or is refused as such.
    let late = responder.respond(request(0));
    assert!(
        matches!(late, Ok(()) | Err(Error::RequesterGone)),
        "{late:?}"
    );
}

#[tokio::test]
async fn unknown_unreachable_and_oversized_are_typed() {
    let ca = CertificateAuthority::generate("traffic").unwrap();
    let mut cfg = config(1);
    cfg.connect_timeout = Duration::from_millis(300);
    cfg.reconnect_backoff_min = Duration::from_secs(60);
    cfg.reconnect_backoff_max = Duration::from_secs(60);
    cfg.frame_size_max = 1024;
    let client = QuicTransport::bind(cfg, &ca.node_identity(1).unwrap()).unwrap();
    assert!(matches!(
        client.request(9, request(0)).await,
        Err(Error::PeerUnknown { peer: 9 })
    ));
    assert!(matches!(
        client.send(9, request(0)).await,
        Err(Error::PeerUnknown { peer: 9 })
    ));

    // A bound socket that never answers: the dial times out, then the peer backs off.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_peer(2, silent.local_addr().unwrap());
    let err = client.request(2, request(0)).await.unwrap_err();
    assert!(matches!(err, Error::Unreachable { peer: 2, .. }), "{err}");
    let err = client.request(2, request(0)).await.unwrap_err();
    assert!(
        matches!(&err, Error::Unreachable { reason, .. } if reason.contains("backing off")),
        "{err}"
    );

    let big = Envelope::new(Channel::Raft, 1, vec![0u8; 2048]);
    assert!(matches!(
        client.send(2, big.clone()).await,
        Err(Error::FrameTooLarge { max: 1024, .. })
    ));
    assert!(matches!(
        client.request(2, big).await,
        Err(Error::FrameTooLarge { max: 1024, .. })
    ));
}

#[tokio::test]
async fn shutdown_stops_everything() {
    let ca = CertificateAuthority::generate("traffic").unwrap();
    let nodes = mesh(&ca, &[1, 2]);
    let _inbox = serve_echo(Arc::clone(&nodes[1]));
    nodes[0].request(2, request(1)).await.unwrap();
    let waiting = {
        let node = Arc::clone(&nodes[0]);
        tokio::spawn(async move { node.recv().await })
    };
    nodes[0].shutdown().await;
    assert!(matches!(waiting.await.unwrap(), Err(Error::Shutdown)));
    assert!(matches!(nodes[0].recv().await, Err(Error::Shutdown)));
    assert!(matches!(
        nodes[0].send(2, request(2)).await,
        Err(Error::Shutdown)
    ));
    assert!(matches!(
        nodes[0].request(2, request(3)).await,
        Err(Error::Shutdown)
    ));
    // The other side sees the connection go and reports it as unreachable, not a hang.
    let err = nodes[1].request(1, request(4)).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unreachable { peer: 1, .. } | Error::TimedOut { peer: 1, .. }
        ),
        "{err}"
    );
}
