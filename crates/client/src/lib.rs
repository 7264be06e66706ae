//! ferrokube-client: how ferrokube's own components reach the API, on top of kube-rs.
//!
//! Kubeconfig loading (with the same defaults as every ferrokube command: `--kubeconfig`, then
//! `$KUBECONFIG`, then `/var/lib/ferrokube/admin.kubeconfig`), the in-process transport, shared
//! informers, the work queue every controller uses, leader election and the event recorder.

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub mod events;
pub mod informer;
pub mod leader;
pub mod workqueue;

pub use informer::{Change, Informer, Informers, key_of, split_key};
pub use workqueue::{Action, WorkQueue};

/// A kube-rs client over any tower service that answers Kubernetes API requests: components
/// inside the server process use the API server's handler directly, with no sockets or TLS.
pub fn in_process<S, B>(service: S) -> kube::Client
where
    S: tower::Service<http::Request<kube::client::Body>, Response = http::Response<B>>
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    kube::Client::new(service, "default")
}

/// Where ferrokube writes the admin kubeconfig by default.
pub const DEFAULT_KUBECONFIG: &str = "/var/lib/ferrokube/admin.kubeconfig";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig { path: PathBuf, message: String },
    #[error("TLS settings from {path}: {message}")]
    Tls { path: PathBuf, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The kubeconfig a command uses: the flag, then `$KUBECONFIG`, then ferrokube's default.
pub fn kubeconfig_path(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    match std::env::var_os("KUBECONFIG") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(DEFAULT_KUBECONFIG),
    }
}

/// A cluster to talk to: the API server URL and TLS settings carrying the client certificate.
#[derive(Clone)]
pub struct Connection {
    pub config: kube::Config,
    pub server: http::Uri,
    pub tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("server", &self.server)
            .finish()
    }
}

/// A kube-rs client for a kubeconfig file.
pub async fn client(path: &Path) -> Result<kube::Client> {
    let c = load(path).await?;
    kube::Client::try_from(c.config).map_err(|e| Error::Kubeconfig {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Loads the current context of a kubeconfig file.
pub async fn load(path: &Path) -> Result<Connection> {
    use kube::client::ConfigExt;
    let err = |message: String| Error::Kubeconfig {
        path: path.to_path_buf(),
        message,
    };
    let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| err(e.to_string()))?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| err(e.to_string()))?;
    let mut tls = config.rustls_client_config().map_err(|e| Error::Tls {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    tls.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Connection {
        server: config.cluster_url.clone(),
        tls: Arc::new(tls),
        config,
    })
}
