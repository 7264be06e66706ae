//! Kubeconfig files with embedded certificates, as kubeadm writes them.

use std::path::Path;

use base64::Engine;
use serde_json::json;

use crate::pki::CertPair;
use crate::{Error, Result};

/// Writes a kubeconfig for one cluster, one user authenticated by a client certificate, and one
/// context selecting them. The file is mode 0600: it holds a private key.
pub fn write_client_cert_kubeconfig(
    path: &Path,
    cluster_name: &str,
    server_url: &str,
    ca_pem: &str,
    user: &str,
    client: &CertPair,
) -> Result<()> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let context = format!("{user}@{cluster_name}");
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": cluster_name,
            "cluster": {"server": server_url, "certificate-authority-data": b64(ca_pem)},
        }],
        "users": [{
            "name": user,
            "user": {
                "client-certificate-data": b64(&client.cert_pem),
                "client-key-data": b64(&client.key_pem),
            },
        }],
        "contexts": [{
            "name": context,
            "context": {"cluster": cluster_name, "user": user},
        }],
        "current-context": context,
        "preferences": {},
    });
    let text = serde_yaml::to_string(&doc).map_err(|e| Error::Kubeconfig {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    crate::pki::write(path, &text, true)
}
