use std::net::SocketAddr;

/// Failures while setting a QUIC transport up: certificates, TLS configuration, binding.
///
/// Failures of traffic on a running transport are [`aegis_transport::Error`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Generating or signing a certificate failed.
    #[error("certificate generation failed: {reason}")]
    Certificate {
        /// What rcgen reported.
        reason: String,
    },
    /// A PEM document could not be read.
    #[error("could not read the {what} PEM: {reason}")]
    Pem {
        /// Which document (CA certificate, node certificate, key).
        what: &'static str,
        /// What was wrong with it.
        reason: String,
    },
    /// rustls or quinn refused the TLS configuration (bad key, unusable certificate).
    #[error("TLS configuration rejected: {reason}")]
    Tls {
        /// What the library reported.
        reason: String,
    },
    /// The UDP socket could not be bound.
    #[error("could not bind {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration: {field}: {reason}")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl From<rcgen::Error> for Error {
    fn from(e: rcgen::Error) -> Self {
        Error::Certificate {
            reason: e.to_string(),
        }
    }
}

impl From<rustls::Error> for Error {
    fn from(e: rustls::Error) -> Self {
        Error::Tls {
            reason: e.to_string(),
        }
    }
}
