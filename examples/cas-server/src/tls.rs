//! TLS material: loading a rustls server config from PEM files, and making the demo
//! self-signed certificate.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Errors loading TLS material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is unreadable or holds no certificate.
    #[error("cannot load certificate {path}: {message}")]
    Cert {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The key file is unreadable or holds no private key.
    #[error("cannot load private key {path}: {message}")]
    Key {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// rustls refused the pair (e.g. key does not match).
    #[error("invalid certificate/key pair: {0}")]
    Rustls(#[from] rustls::Error),
    /// Generating a certificate failed.
    #[error("cannot generate certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// Builds a TLS acceptor (TLS 1.2 and 1.3, ring provider) from a PEM certificate chain and
/// key.
pub fn load_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    load_acceptor_with_tickets(cert, key, true)
}

/// [`load_acceptor`], choosing whether TLS 1.3 session tickets (NewSessionTicket messages
/// right after the handshake, for resumption) are sent. TLS 1.2 session-ID resumption is
/// unaffected.
pub fn load_acceptor_with_tickets(
    cert: &Path,
    key: &Path,
    tls13_session_tickets: bool,
) -> Result<TlsAcceptor, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Cert {
            path: cert.display().to_string(),
            message: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Cert {
            path: cert.display().to_string(),
            message: "no CERTIFICATE block found".into(),
        });
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.display().to_string(),
        message: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)?;
    if !tls13_session_tickets {
        config.send_tls13_tickets = 0;
    }
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The RFC 5929 `tls-server-end-point` channel bindings of the first (leaf) certificate
/// in the PEM file `cert`: what NTLM clients with Extended Protection bind to.
pub fn channel_bindings(
    cert: &Path,
) -> Result<cas_auth::channel_binding::ChannelBindings, TlsError> {
    let err = |message: String| TlsError::Cert {
        path: cert.display().to_string(),
        message,
    };
    let leaf = CertificateDer::pem_file_iter(cert)
        .map_err(|e| err(e.to_string()))?
        .next()
        .ok_or_else(|| err("no CERTIFICATE block found".into()))?
        .map_err(|e| err(e.to_string()))?;
    cas_auth::channel_binding::ChannelBindings::tls_server_end_point(&leaf)
        .map_err(|e| err(e.to_string()))
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, as (certificate PEM,
/// private key PEM).
pub fn generate_self_signed() -> Result<(String, String), TlsError> {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let mut params = rcgen::CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "cas-rs demo");
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pair_loads() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = generate_self_signed().unwrap();
        std::fs::write(dir.path().join("c.pem"), cert).unwrap();
        std::fs::write(dir.path().join("k.pem"), key).unwrap();
        load_acceptor(&dir.path().join("c.pem"), &dir.path().join("k.pem")).unwrap();
        // ECDSA P-256 with SHA-256: a 32-byte hash after the "tls-server-end-point:" prefix.
        let cb = channel_bindings(&dir.path().join("c.pem")).unwrap();
        assert_eq!(cb.application_data().len(), 21 + 32);
        assert!(channel_bindings(&dir.path().join("k.pem")).is_err());
        let err = load_acceptor(&dir.path().join("k.pem"), &dir.path().join("k.pem"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("certificate"), "{err}");
        let err = load_acceptor(&dir.path().join("c.pem"), &dir.path().join("none.pem"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("private key"), "{err}");
    }
}
