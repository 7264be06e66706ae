//! TLS for the kubelet's server and for the kubelet's own outgoing probes.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubelet TLS: {0}")]
    Config(String),
}

/// Accepts any server certificate: HTTPS probes, as upstream, do not verify the pod's
/// certificate.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client config that does not verify the server.
pub fn insecure_client_config() -> Arc<rustls::ClientConfig> {
    let p = provider();
    let cfg = rustls::ClientConfig::builder_with_provider(p.clone())
        .with_safe_default_protocol_versions()
        .expect("default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoVerify(p)))
        .with_no_client_auth();
    Arc::new(cfg)
}

pub fn parse_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Config(format!("certificates: {e}")))
}

pub fn parse_key(pem: &str) -> Result<PrivateKeyDer<'static>, Error> {
    rustls_pemfile::private_key(&mut pem.as_bytes())
        .map_err(|e| Error::Config(format!("private key: {e}")))?
        .ok_or_else(|| Error::Config("no private key found".into()))
}

/// The server config: the kubelet's serving certificate, and client certificates signed by
/// `client_ca_pem` required (the API server authenticates with one).
pub fn server_config(
    cert_pem: &str,
    key_pem: &str,
    client_ca_pem: &str,
) -> Result<Arc<rustls::ServerConfig>, Error> {
    let mut roots = rustls::RootCertStore::empty();
    for c in parse_certs(client_ca_pem)? {
        roots
            .add(c)
            .map_err(|e| Error::Config(format!("client CA: {e}")))?;
    }
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| Error::Config(format!("client verifier: {e}")))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(parse_certs(cert_pem)?, parse_key(key_pem)?)
        .map_err(|e| Error::Config(format!("serving certificate: {e}")))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// A self-signed serving certificate for `names` (what upstream's kubelet makes when it is given
/// none): returns (cert, key) PEM.
pub fn self_signed(names: &[String]) -> Result<(String, String), Error> {
    let key = rcgen::KeyPair::generate().map_err(|e| Error::Config(e.to_string()))?;
    let mut params =
        rcgen::CertificateParams::new(names.to_vec()).map_err(|e| Error::Config(e.to_string()))?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params
        .self_signed(&key)
        .map_err(|e| Error::Config(e.to_string()))?;
    Ok((cert.pem(), key.serialize_pem()))
}
