//! Generating a cluster CA and node certificates with rcgen.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::{NodeId, SetupError as Error, TlsIdentity};

/// The DNS name a node's certificate is issued for, and that peers verify when they dial it.
#[must_use]
pub fn node_server_name(node: NodeId) -> String {
    format!("node-{node}.aegis")
}

/// A calendar day (UTC midnight), for certificate validity bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Date {
    /// The year, e.g. 2030.
    pub year: i32,
    /// The month, 1 to 12.
    pub month: u8,
    /// The day of the month, 1 to 31.
    pub day: u8,
}

/// The span a certificate is valid for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    /// First valid day.
    pub not_before: Date,
    /// Last valid day.
    pub not_after: Date,
}

impl Validity {
    fn apply(self, params: &mut CertificateParams) -> Result<(), Error> {
        let day = |d: Date| {
            let ok = (1..=12).contains(&d.month) && (1..=31).contains(&d.day);
            if ok {
                Ok(rcgen::date_time_ymd(d.year, d.month, d.day))
            } else {
                Err(bad_date(d))
            }
        };
        params.not_before = day(self.not_before)?;
        params.not_after = day(self.not_after)?;
        if params.not_before >= params.not_after {
            return Err(Error::InvalidConfig {
                field: "validity",
                reason: "not_before must come before not_after".into(),
            });
        }
        Ok(())
    }
}

fn bad_date(d: Date) -> Error {
    Error::InvalidConfig {
        field: "validity",
        reason: format!("{d:?} is not a calendar date"),
    }
}

/// A cluster's certificate authority: signs the certificate of every node.
pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    cert: CertificateDer<'static>,
    cert_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .finish_non_exhaustive()
    }
}

fn ca_params(cluster_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{cluster_name} cluster CA"));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

impl CertificateAuthority {
    /// Generates a fresh CA (ECDSA P-256) for the cluster called `cluster_name`.
    ///
    /// # Errors
    /// [`Error::Certificate`] when key generation or signing fails.
    pub fn generate(cluster_name: &str) -> Result<Self, Error> {
        let key = KeyPair::generate()?;
        let params = ca_params(cluster_name);
        let cert = params.self_signed(&key)?;
        let (cert_pem, cert) = (cert.pem(), cert.der().clone());
        let key_pem = key.serialize_pem();
        Ok(Self {
            issuer: Issuer::new(params, key),
            cert,
            cert_pem,
            key_pem,
        })
    }

    /// Loads a CA written earlier by [`cert_pem`](Self::cert_pem) and
    /// [`key_pem`](Self::key_pem), to issue more node certificates.
    ///
    /// `cluster_name` must be the name the CA was generated with: the issuer name in new
    /// certificates is rebuilt from it and must match the CA certificate's subject.
    ///
    /// # Errors
    /// [`Error::Pem`] for unreadable documents, [`Error::Certificate`] for a bad key.
    pub fn from_pem(cluster_name: &str, cert_pem: &str, key_pem: &str) -> Result<Self, Error> {
        use rustls::pki_types::pem::PemObject;
        let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| Error::Pem {
            what: "CA certificate",
            reason: e.to_string(),
        })?;
        let key = KeyPair::from_pem(key_pem).map_err(|e| Error::Pem {
            what: "CA key",
            reason: e.to_string(),
        })?;
        Ok(Self {
            issuer: Issuer::new(ca_params(cluster_name), key),
            cert,
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
        })
    }

    /// The CA certificate, DER encoded.
    #[must_use]
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// The CA certificate as PEM.
    #[must_use]
    pub fn cert_pem(&self) -> String {
        self.cert_pem.clone()
    }

    /// The CA's private key as PKCS#8 PEM. Keep it off the nodes.
    #[must_use]
    pub fn key_pem(&self) -> String {
        self.key_pem.clone()
    }

    /// Issues a certificate for `node`, valid for both serving and dialing, with
    /// rcgen's long default validity.
    ///
    /// # Errors
    /// [`Error::Certificate`] when key generation or signing fails.
    pub fn issue_node(&self, node: NodeId) -> Result<NodeCertificate, Error> {
        self.issue(node, None)
    }

    /// Issues a certificate for `node` valid only during `validity`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for impossible dates, [`Error::Certificate`] otherwise.
    pub fn issue_node_valid(
        &self,
        node: NodeId,
        validity: Validity,
    ) -> Result<NodeCertificate, Error> {
        self.issue(node, Some(validity))
    }

    /// Issues a certificate for `node` and returns the identity it needs to run.
    ///
    /// # Errors
    /// As [`issue_node`](Self::issue_node).
    pub fn node_identity(&self, node: NodeId) -> Result<TlsIdentity, Error> {
        Ok(self.issue_node(node)?.identity(self.cert.clone()))
    }

    fn issue(&self, node: NodeId, validity: Option<Validity>) -> Result<NodeCertificate, Error> {
        let name = node_server_name(node);
        let mut params = CertificateParams::new(vec![name.clone()])?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        if let Some(validity) = validity {
            validity.apply(&mut params)?;
        }
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let (cert_pem, cert) = (cert.pem(), cert.der().clone());
        let key_pem = key.serialize_pem();
        let key = PrivatePkcs8KeyDer::from(key.serialize_der());
        Ok(NodeCertificate {
            node,
            cert,
            key,
            cert_pem,
            key_pem,
        })
    }
}

/// A node's certificate and private key, as issued by a [`CertificateAuthority`].
pub struct NodeCertificate {
    node: NodeId,
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
    cert_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for NodeCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCertificate")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl NodeCertificate {
    /// The node the certificate names.
    #[must_use]
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The certificate, DER encoded.
    #[must_use]
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// The certificate as PEM.
    #[must_use]
    pub fn cert_pem(&self) -> String {
        self.cert_pem.clone()
    }

    /// The private key as PKCS#8 PEM.
    #[must_use]
    pub fn key_pem(&self) -> String {
        self.key_pem.clone()
    }

    /// The identity a node runs with: this certificate and key, trusting `ca`.
    #[must_use]
    pub fn identity(&self, ca: CertificateDer<'static>) -> TlsIdentity {
        TlsIdentity::new(
            ca,
            vec![self.cert.clone()],
            PrivateKeyDer::Pkcs8(self.key.clone_key()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_reloads_from_pem_and_keeps_issuing() {
        let ca = CertificateAuthority::generate("test").unwrap();
        let again = CertificateAuthority::from_pem("test", &ca.cert_pem(), &ca.key_pem()).unwrap();
        assert_eq!(again.cert_der(), ca.cert_der());
        let node = again.issue_node(4).unwrap();
        assert_eq!(node.node(), 4);
        let identity =
            TlsIdentity::from_pem(&ca.cert_pem(), &node.cert_pem(), &node.key_pem()).unwrap();
        assert_eq!(identity.ca(), ca.cert_der());
    }

    #[test]
    fn impossible_validity_is_refused() {
        let ca = CertificateAuthority::generate("test").unwrap();
        let d = |year, month, day| Date { year, month, day };
        let backwards = Validity {
            not_before: d(2030, 1, 1),
            not_after: d(2020, 1, 1),
        };
        assert!(matches!(
            ca.issue_node_valid(1, backwards),
            Err(Error::InvalidConfig { .. })
        ));
        let nonsense = Validity {
            not_before: d(2020, 13, 1),
            not_after: d(2030, 1, 1),
        };
        assert!(matches!(
            ca.issue_node_valid(1, nonsense),
            Err(Error::InvalidConfig { .. })
        ));
    }
}
