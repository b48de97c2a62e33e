use std::sync::Arc;

use aegis_transport_quic::{CertificateAuthority, wire};

use crate::support::{
    answer_of, mesh, raw_exchange, raw_member, request, request_frame, seq_of, serve_echo,
};

fn reset_code(outcome: Result<bytes::Bytes, String>) -> String {
    outcome.expect_err("the stream must be refused")
}

#[tokio::test]
async fn forged_huge_length_closes_only_that_stream() {
    let ca = CertificateAuthority::generate("streams").unwrap();
    let nodes = mesh(&ca, &[1, 2]);
    let _inbox = serve_echo(Arc::clone(&nodes[0]));
    let member = raw_member(&ca.node_identity(2).unwrap(), 2, 1, nodes[0].local_addr()).await;

    let mut forged = u32::MAX.to_be_bytes().to_vec();
    forged.extend_from_slice(&[7u8; 64]);
    let err = reset_code(raw_exchange(&member.conn, &forged).await);
    assert!(
        err.contains(&format!("Reset({})", wire::CODE_FRAME_TOO_LARGE)),
        "{err}"
    );

    // The same connection still serves a well-formed request.
    let reply = raw_exchange(&member.conn, &request_frame(9, 5))
        .await
        .unwrap();
    assert_eq!(seq_of(&answer_of(&reply, 9)), 5);
}

#[tokio::test]
async fn garbage_closes_that_stream_and_the_node_keeps_serving() {
    let ca = CertificateAuthority::generate("streams").unwrap();
    let nodes = mesh(&ca, &[1, 2, 3]);
    let mut inbox = serve_echo(Arc::clone(&nodes[0]));
    let member = raw_member(&ca.node_identity(2).unwrap(), 2, 1, nodes[0].local_addr()).await;

    // A plausible length followed by bytes that are not an envelope.
    let mut garbage = 12u32.to_be_bytes().to_vec();
    garbage.extend_from_slice(b"not postcard");
    let err = reset_code(raw_exchange(&member.conn, &garbage).await);
    assert!(
        err.contains(&format!("Reset({})", wire::CODE_MALFORMED)),
        "{err}"
    );

    // A stream that ends inside its frame.
    let err = reset_code(raw_exchange(&member.conn, &[0, 0, 0, 50, 1, 2]).await);
    assert!(
        err.contains(&format!("Reset({})", wire::CODE_MALFORMED)),
        "{err}"
    );

    // Garbage on a one-way stream: the node stops that stream.
    let mut oneway = member.conn.open_uni().await.unwrap();
    oneway
        .write_all(&[0, 0, 0, 3, 0xde, 0xad, 0xbf])
        .await
        .unwrap();
    let stopped = oneway.stopped().await.unwrap();
    assert_eq!(
        stopped.map(|code| code.into_inner()),
        Some(u64::from(wire::CODE_MALFORMED))
    );

    // The raw connection, and the other members, are still served.
    let reply = raw_exchange(&member.conn, &request_frame(3, 6))
        .await
        .unwrap();
    assert_eq!(seq_of(&answer_of(&reply, 3)), 6);
    assert_eq!(seq_of(&nodes[2].request(1, request(7)).await.unwrap()), 7);
    nodes[1].send(1, request(8)).await.unwrap();
    let (source, envelope) = inbox.recv().await.unwrap();
    assert_eq!((source, seq_of(&envelope)), (2, 8));
}
