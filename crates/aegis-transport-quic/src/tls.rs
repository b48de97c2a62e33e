//! TLS 1.3 configurations with mutual authentication against the cluster CA, built on
//! the ring provider passed explicitly (never a process-wide default provider).

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::{NodeId, SetupError as Error, certs::node_server_name};

/// The ALPN protocol both sides must offer.
pub const ALPN: &[u8] = b"aegis/1";

/// What a node needs for mutual TLS: the cluster CA it trusts, and its own certificate
/// chain and private key.
pub struct TlsIdentity {
    ca: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for TlsIdentity {
    fn clone(&self) -> Self {
        Self {
            ca: self.ca.clone(),
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// Builds an identity from DER parts. `chain` starts with the node's own certificate.
    #[must_use]
    pub fn new(
        ca: CertificateDer<'static>,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Self {
        assert!(
            !chain.is_empty(),
            "a certificate chain holds at least the node's certificate"
        );
        Self { ca, chain, key }
    }

    /// Reads an identity from PEM text: the CA certificate, the node's certificate (chain)
    /// and its private key.
    ///
    /// # Errors
    /// [`Error::Pem`] naming the document that did not parse or was empty.
    pub fn from_pem(ca_pem: &str, cert_pem: &str, key_pem: &str) -> Result<Self, Error> {
        let pem_err = |what| {
            move |e: rustls::pki_types::pem::Error| Error::Pem {
                what,
                reason: e.to_string(),
            }
        };
        let ca =
            CertificateDer::from_pem_slice(ca_pem.as_bytes()).map_err(pem_err("CA certificate"))?;
        let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(pem_err("node certificate"))?;
        if chain.is_empty() {
            return Err(Error::Pem {
                what: "node certificate",
                reason: "no certificate found".into(),
            });
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(pem_err("node key"))?;
        Ok(Self { ca, chain, key })
    }

    /// The trusted cluster CA certificate.
    #[must_use]
    pub fn ca(&self) -> &CertificateDer<'static> {
        &self.ca
    }

    fn roots(&self) -> Result<Arc<RootCertStore>, Error> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone())?;
        Ok(Arc::new(roots))
    }
}

/// The crypto provider every configuration is built with.
#[must_use]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS 1.3 client configuration presenting `identity` and trusting only its CA.
///
/// # Errors
/// [`Error::Tls`] when the certificate or key is unusable.
pub fn client_crypto(identity: &TlsIdentity) -> Result<ClientConfig, Error> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(identity.roots()?)
        .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// A TLS 1.3 server configuration presenting `identity` and requiring every client to
/// present a certificate signed by the same CA.
///
/// # Errors
/// [`Error::Tls`] when the certificate or key is unusable.
pub fn server_crypto(identity: &TlsIdentity) -> Result<ServerConfig, Error> {
    let verifier = WebPkiClientVerifier::builder_with_provider(identity.roots()?, provider())
        .build()
        .map_err(|e| Error::Tls {
            reason: e.to_string(),
        })?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// Checks that a verified client certificate chain also names the node id the client
/// claims. The handshake already proved the chain leads to the cluster CA; this binds the
/// claimed id to it.
pub(crate) struct IdentityCheck {
    verifier: Arc<WebPkiServerVerifier>,
}

impl IdentityCheck {
    pub(crate) fn new(identity: &TlsIdentity) -> Result<Self, Error> {
        let verifier = WebPkiServerVerifier::builder_with_provider(identity.roots()?, provider())
            .build()
            .map_err(|e| Error::Tls {
                reason: e.to_string(),
            })?;
        Ok(Self { verifier })
    }

    pub(crate) fn verify(
        &self,
        chain: &[CertificateDer<'static>],
        claimed: NodeId,
    ) -> Result<(), String> {
        let (end_entity, intermediates) = chain.split_first().ok_or("no client certificate")?;
        let name = ServerName::try_from(node_server_name(claimed)).map_err(|e| e.to_string())?;
        self.verifier
            .verify_server_cert(end_entity, intermediates, &name, &[], UnixTime::now())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CertificateAuthority;

    #[test]
    fn unreadable_pem_names_the_document() {
        let ca = CertificateAuthority::generate("pem").unwrap();
        let node = ca.issue_node(1).unwrap();
        let err = TlsIdentity::from_pem("junk", &node.cert_pem(), &node.key_pem()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Pem {
                    what: "CA certificate",
                    ..
                }
            ),
            "{err}"
        );
        let err = TlsIdentity::from_pem(&ca.cert_pem(), "", &node.key_pem()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Pem {
                    what: "node certificate",
                    ..
                }
            ),
            "{err}"
        );
        let err = TlsIdentity::from_pem(&ca.cert_pem(), &node.cert_pem(), "junk").unwrap_err();
        assert!(
            matches!(
                err,
                Error::Pem {
                    what: "node key",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn both_sides_offer_our_alpn() {
        let identity = CertificateAuthority::generate("tls")
            .unwrap()
            .node_identity(1)
            .unwrap();
        assert_eq!(
            client_crypto(&identity).unwrap().alpn_protocols,
            vec![ALPN.to_vec()]
        );
        assert_eq!(
            server_crypto(&identity).unwrap().alpn_protocols,
            vec![ALPN.to_vec()]
        );
    }

    #[test]
    fn identity_check_binds_the_claimed_id_to_the_certificate() {
        let ca = CertificateAuthority::generate("id").unwrap();
        let identity = ca.node_identity(7).unwrap();
        let check = IdentityCheck::new(&identity).unwrap();
        assert!(check.verify(&identity.chain, 7).is_ok());
        assert!(check.verify(&identity.chain, 8).is_err());
        assert!(check.verify(&[], 7).is_err());
        let stranger = CertificateAuthority::generate("other")
            .unwrap()
            .node_identity(7)
            .unwrap();
        assert!(check.verify(&stranger.chain, 7).is_err());
    }
}
