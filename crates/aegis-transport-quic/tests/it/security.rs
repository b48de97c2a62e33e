use std::sync::Arc;
use std::time::Duration;

use aegis_transport::Error;
use aegis_transport_quic::{CertificateAuthority, Date, QuicTransport, Validity, tls, wire};

use crate::support::{
    config, mesh, raw_connect, raw_exchange, raw_member, request, request_frame, seq_of,
};

/// Proves nothing from a rejected client reached node 1: the next thing node 1 receives
/// is a one-way message from its legitimate peer 2.
async fn assert_inbox_untouched(nodes: &[Arc<QuicTransport>]) {
    nodes[1].send(1, request(4242)).await.unwrap();
    let first = nodes[0].recv().await.unwrap();
    assert_eq!((first.source(), seq_of(first.envelope())), (2, 4242));
}

fn one_request_frame() -> Vec<u8> {
    request_frame(1, 1)
}

#[tokio::test]
async fn client_without_certificate_is_rejected() {
    let ca = CertificateAuthority::generate("secure").unwrap();
    let nodes = mesh(&ca, &[1, 2]);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert_der().clone()).unwrap();
    let mut crypto = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    crypto.alpn_protocols = vec![tls::ALPN.to_vec()];

    // The TLS 1.3 client may finish its side before the server refuses it, so the
    // refusal can surface on the first stream instead of the handshake.
    let outcome = match raw_connect(crypto, 1, nodes[0].local_addr()).await {
        Err(e) => Err(e.to_string()),
        Ok(client) => raw_exchange(&client.conn, &one_request_frame()).await,
    };
    let err = outcome.expect_err("a client without a certificate must not be served");
    assert!(
        err.to_lowercase().contains("certificate") || err.contains("116") || err.contains("alert"),
        "{err}"
    );
    assert_inbox_untouched(&nodes).await;
}

#[tokio::test]
async fn certificate_from_another_ca_is_rejected() {
    let ca = CertificateAuthority::generate("secure").unwrap();
    let other = CertificateAuthority::generate("intruder").unwrap();
    let nodes = mesh(&ca, &[1, 2]);

    // An intruder trusting our CA but holding another CA's certificate: the server refuses it.
    let forged = other.issue_node(3).unwrap().identity(ca.cert_der().clone());
    let outcome = match raw_connect(
        tls::client_crypto(&forged).unwrap(),
        1,
        nodes[0].local_addr(),
    )
    .await
    {
        Err(e) => Err(e.to_string()),
        Ok(client) => raw_exchange(&client.conn, &one_request_frame()).await,
    };
    assert!(
        outcome.is_err(),
        "server must refuse a certificate from another CA"
    );

    // A whole node of the other cluster: the typed error says what happened.
    let intruder = QuicTransport::bind(config(3), &other.node_identity(3).unwrap()).unwrap();
    intruder.set_peer(1, nodes[0].local_addr());
    let err = intruder.request(1, request(1)).await.unwrap_err();
    assert!(
        matches!(err, Error::CertificateRejected { peer: Some(1), .. }),
        "{err}"
    );
    assert_inbox_untouched(&nodes).await;
}

#[tokio::test]
async fn expired_certificate_is_rejected() {
    let ca = CertificateAuthority::generate("secure").unwrap();
    let nodes = mesh(&ca, &[1, 2]);
    let day = |year| Date {
        year,
        month: 1,
        day: 1,
    };
    let expired = ca
        .issue_node_valid(
            3,
            Validity {
                not_before: day(2000),
                not_after: day(2001),
            },
        )
        .unwrap()
        .identity(ca.cert_der().clone());
    let stale = QuicTransport::bind(config(3), &expired).unwrap();
    stale.set_peer(1, nodes[0].local_addr());
    let err = stale.request(1, request(1)).await.unwrap_err();
    assert!(
        matches!(err, Error::CertificateRejected { peer: Some(1), .. }),
        "{err}"
    );
    assert_inbox_untouched(&nodes).await;
}

#[tokio::test]
async fn a_member_claiming_another_id_is_disconnected() {
    let ca = CertificateAuthority::generate("secure").unwrap();
    let nodes = mesh(&ca, &[1, 2]);
    let identity = ca.node_identity(3).unwrap();
    // Node 3's valid certificate, but a hello claiming to be node 2.
    let liar = raw_member(&identity, 2, 1, nodes[0].local_addr()).await;
    let outcome = raw_exchange(&liar.conn, &one_request_frame()).await;
    assert!(
        outcome.is_err(),
        "a mismatched hello must end the connection"
    );
    let reason = tokio::time::timeout(Duration::from_secs(5), liar.conn.closed())
        .await
        .unwrap();
    match reason {
        quinn::ConnectionError::ApplicationClosed(close) => {
            assert_eq!(
                close.error_code.into_inner(),
                u64::from(wire::CODE_BAD_HELLO)
            );
        }
        other => panic!("expected an application close, got {other}"),
    }
    assert_inbox_untouched(&nodes).await;
}
