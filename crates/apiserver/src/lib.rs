//! ferrokube-apiserver: the Kubernetes API over HTTPS.
//!
//! Requests are authenticated (client certificates), routed by upstream's path grammar, and
//! served by one generic registry over the store, with lists and watches answered from an
//! in-memory watch cache. Discovery, server-side printing, patches, subresources and metrics
//! follow upstream so that kubectl and client libraries cannot tell the difference.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrokube_store::Backend;
use http::{HeaderValue, Method, Response, StatusCode, header};
use tokio_util::sync::CancellationToken;

pub mod admission;
pub mod authn;
pub mod cache;
pub mod conversion;
pub mod discovery;
pub mod handlers;
pub mod in_process;
pub mod kubernetes_service;
pub mod metrics;
pub mod object;
pub mod openapi;
mod openapi_http;
pub mod registry;
pub mod request;
pub mod response;
pub mod reviews;
pub mod service_alloc;
pub mod serviceaccount;
pub mod strategy;
pub mod subresources;
pub mod tls;
mod watch_store;

pub use authn::UserInfo;
use response::Body;

/// The Kubernetes version this server speaks.
pub const KUBERNETES_VERSION: &str = "v1.33.1";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("datastore: {0}")]
    Store(#[from] ferrokube_store::Error),
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error(transparent)]
    ServiceNetwork(#[from] service_alloc::Error),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How the API server is set up.
#[derive(Clone, Debug)]
pub struct Config {
    /// `host:port` clients are told to use (discovery's serverAddressByClientCIDRs).
    pub advertise_address: String,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    /// CA whose signatures authenticate client certificates.
    pub client_ca_pem: String,
    /// How often old store revisions are compacted.
    pub compaction_interval: Duration,
}

/// Settings beyond [`Config`], with upstream's defaults.
#[derive(Clone, Debug)]
pub struct Options {
    /// `--service-cluster-ip-range` and `--service-node-port-range`.
    pub service_network: service_alloc::ServiceNetwork,
    pub admission: admission::Settings,
    /// Whether this server keeps the `default/kubernetes` Service and its endpoints.
    pub kubernetes_service: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            service_network: service_alloc::ServiceNetwork::default(),
            admission: admission::Settings::default(),
            kubernetes_service: true,
        }
    }
}

pub struct ApiServer {
    pub config: Config,
    /// Signs and checks service account tokens, once enabled with a key.
    pub tokens: std::sync::OnceLock<serviceaccount::TokenSigner>,
    pub store: Arc<dyn Backend>,
    pub caches: Arc<cache::Caches>,
    pub registry: registry::Registry,
    pub metrics: Arc<metrics::Metrics>,
    pub started: Instant,
}

/// Namespaces that exist from the start, as upstream's system namespaces controller keeps them.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

impl ApiServer {
    /// Loads the watch cache from the store, makes sure the system namespaces exist and starts
    /// compaction. Background work stops when `cancel` fires.
    pub async fn new(
        config: Config,
        store: Arc<dyn Backend>,
        cancel: CancellationToken,
    ) -> Result<Arc<Self>> {
        Self::with_options(config, Options::default(), store, cancel).await
    }

    /// [`ApiServer::new`] with explicit [`Options`].
    pub async fn with_options(
        config: Config,
        options: Options,
        store: Arc<dyn Backend>,
        cancel: CancellationToken,
    ) -> Result<Arc<Self>> {
        let metrics = Arc::new(metrics::Metrics::default());
        let store: Arc<dyn Backend> =
            Arc::new(metrics::InstrumentedStore::new(store, metrics.clone()));
        let services = Arc::new(service_alloc::ServiceAllocators::new(
            &options.service_network,
            store.clone(),
        )?);
        let caches = cache::Caches::start(store.clone(), cancel.clone()).await?;
        let registry = registry::Registry::with_options(
            store.clone(),
            caches.clone(),
            services,
            options.admission.clone(),
        );
        let srv = Arc::new(ApiServer {
            config,
            tokens: std::sync::OnceLock::new(),
            store: store.clone(),
            caches,
            registry,
            metrics,
            started: Instant::now(),
        });
        srv.ensure_system_namespaces().await;
        if options.kubernetes_service {
            tokio::spawn(kubernetes_service::run(srv.clone(), cancel.clone()));
        }
        ferrokube_store::Compactor::new(store, srv.config.compaction_interval, cancel).spawn();
        Ok(srv)
    }

    /// Serves `serviceaccounts/token` and accepts the tokens it issues, signed with the key at
    /// `key_path` (created on first start).
    pub fn enable_service_account_tokens(
        &self,
        key_path: &std::path::Path,
    ) -> Result<(), serviceaccount::Error> {
        let signer = serviceaccount::TokenSigner::load_or_create(key_path)?;
        let _ = self.tokens.set(signer);
        Ok(())
    }

    async fn ensure_system_namespaces(&self) {
        let info = ferrokube_api::resources::find("", "v1", "namespaces")
            .expect("namespaces are registered");
        for ns in SYSTEM_NAMESPACES {
            if self
                .store
                .get(&info.key("", ns), 0)
                .await
                .ok()
                .and_then(|(_, kv)| kv)
                .is_some()
            {
                continue;
            }
            let mut ctx = registry::WriteCtx::system("kube-apiserver");
            let obj = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            let result = match self.registry.decode_input(&mut ctx, info, obj, "Namespace") {
                Ok(o) => self
                    .registry
                    .create(&mut ctx, info, "", o)
                    .await
                    .map(|_| ()),
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => {}
                Err(e) if e.code == 409 => {}
                Err(e) => {
                    tracing::warn!(namespace = ns, error = %e, "could not create system namespace")
                }
            }
        }
    }

    /// Serves HTTPS on `listener` until `cancel` fires.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        cancel: CancellationToken,
    ) -> Result<()> {
        let acceptor = tls::acceptor(&self.config)?;
        loop {
            let (sock, peer) = tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = sock.set_nodelay(true);
            let srv = self.clone();
            let acceptor = acceptor.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move {
                let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(sock))
                    .await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
                let user = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(authn::from_client_certificate);
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let srv = srv.clone();
                        let user = user.clone();
                        async move {
                            Ok::<_, std::convert::Infallible>(
                                handlers::handle(srv, req, user).await,
                            )
                        }
                    });
                let io = hyper_util::rt::TokioIo::new(tls);
                let builder = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                );
                let conn = builder.serve_connection_with_upgrades(io, svc);
                tokio::pin!(conn);
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                    }
                    _ = cancel.cancelled() => {
                        conn.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                    }
                }
            });
        }
    }

    /// Endpoints outside the resource API: health, version, metrics.
    pub(crate) async fn non_resource(&self, call: &handlers::Call) -> Option<Response<Body>> {
        let path = call.path.as_str();
        if call.method != Method::GET && call.method != Method::HEAD {
            return None;
        }
        let text = |code: StatusCode, body: String| {
            let mut r = Response::new(response::full(body));
            *r.status_mut() = code;
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            r.headers_mut().insert(
                "x-content-type-options",
                HeaderValue::from_static("nosniff"),
            );
            r
        };
        let health = |name: &str, checks: &[(&str, bool)], verbose: bool| {
            let ok = checks.iter().all(|(_, ok)| *ok);
            if verbose || !ok {
                let mut s = String::new();
                for (c, good) in checks {
                    s.push_str(&format!(
                        "[{}]{} {}\n",
                        if *good { "+" } else { "-" },
                        c,
                        if *good { "ok" } else { "failed" }
                    ));
                }
                s.push_str(&format!(
                    "{name} check {}\n",
                    if ok { "passed" } else { "failed" }
                ));
                text(
                    if ok {
                        StatusCode::OK
                    } else {
                        StatusCode::INTERNAL_SERVER_ERROR
                    },
                    s,
                )
            } else {
                text(StatusCode::OK, "ok".into())
            }
        };
        let verbose = call.query.all().contains_key("verbose");
        if path.starts_with("/openapi/") || path == "/swagger.json" {
            if call.user.is_none() {
                return Some(response::error_response(
                    &ferrokube_api::ApiError::unauthorized(),
                ));
            }
            return Some(
                openapi_http::serve(path, &call.query, &call.headers)
                    .await
                    .unwrap_or_else(|| {
                        response::error_response(&ferrokube_api::ApiError::not_found("", "", path))
                    }),
            );
        }
        match path {
            "/version" | "/version/" => Some(response::json_value(StatusCode::OK, &version_info())),
            "/metrics" => {
                let objects: Vec<(String, usize)> = self
                    .caches
                    .all()
                    .map(|c| (c.info.group_resource(), c.len()))
                    .collect();
                let mut sorted = objects;
                sorted.sort();
                Some(text(StatusCode::OK, self.metrics.render(&sorted)))
            }
            p if p.starts_with("/healthz")
                || p.starts_with("/livez")
                || p.starts_with("/readyz") =>
            {
                let name = p
                    .trim_start_matches('/')
                    .split('/')
                    .next()
                    .unwrap_or("healthz")
                    .to_string();
                let sub = p.trim_start_matches('/').split('/').nth(1).unwrap_or("");
                if sub == "ping" || sub == "log" {
                    return Some(text(StatusCode::OK, "ok".into()));
                }
                let store_ok =
                    tokio::time::timeout(Duration::from_secs(2), self.store.current_revision())
                        .await
                        .is_ok_and(|r| r.is_ok());
                let mut checks = vec![("ping", true), ("etcd", store_ok)];
                if name == "readyz" {
                    checks.push(("informer-sync", true));
                }
                Some(health(&name, &checks, verbose))
            }
            _ => None,
        }
    }
}

/// `/version`, with the build this server mirrors.
pub fn version_info() -> serde_json::Value {
    serde_json::json!({
        "major": "1",
        "minor": "33",
        "gitVersion": format!("{KUBERNETES_VERSION}+ferrokube"),
        "gitCommit": "ferrokube",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": format!("linux/{}", if cfg!(target_arch = "aarch64") { "arm64" } else { "amd64" }),
    })
}
