//! TLS for the API server: the serving certificate, and client certificates verified against
//! the cluster CA when offered (a client without one is anonymous, not refused at handshake,
//! so it gets upstream's 401 Status).

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio_rustls::TlsAcceptor;

use crate::{Config, Error, Result};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub fn acceptor(config: &Config) -> Result<TlsAcceptor> {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(config.serving_cert_pem.as_bytes())
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::Tls(format!("serving certificate: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(config.serving_key_pem.as_bytes())
        .map_err(|e| Error::Tls(format!("serving key: {e}")))?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(config.client_ca_pem.as_bytes()) {
        let ca = ca.map_err(|e| Error::Tls(format!("client CA: {e}")))?;
        roots
            .add(ca)
            .map_err(|e| Error::Tls(format!("client CA: {e}")))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .allow_unauthenticated()
        .build()
        .map_err(|e| Error::Tls(format!("client verifier: {e}")))?;
    let mut sc = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| Error::Tls(format!("serving certificate: {e}")))?;
    sc.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(sc)))
}
