//! The kubelet's HTTPS server: container logs, exec, attach, port-forward, `/stats/summary`,
//! `/metrics` and `/healthz`, for the API server (which proxies `kubectl logs`, `exec`,
//! `attach`, `port-forward`, `top` and `get --raw /api/v1/nodes/N/proxy/...` here). Callers
//! must present a client certificate signed by the cluster CA.
//!
//! Streams speak what the clients speak: SPDY/3.1 (`v4.channel.k8s.io`, `portforward.k8s.io`)
//! for kubectl up to 1.29-1.30, WebSocket (`v5.channel.k8s.io`, `v4.channel.k8s.io`) for
//! kubectl 1.30+ exec and the Python client, and SPDY tunnelled in WebSocket
//! (`SPDY/3.1+portforward.k8s.io`) for kubectl 1.31+ port-forward.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use tokio_util::sync::CancellationToken;

use crate::kubelet::Kubelet;
use crate::runtime_pod;

pub mod portforward;
pub mod remotecommand;
pub mod spdy;
pub mod spdy_client;
pub mod tls;
pub mod ws;

pub type Body = BoxBody<Bytes, Infallible>;

pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

pub fn text(code: StatusCode, body: impl Into<String>) -> Response<Body> {
    let mut r = Response::new(full(body.into()));
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn json(code: StatusCode, v: &serde_json::Value) -> Response<Body> {
    let mut r = Response::new(full(serde_json::to_vec(v).unwrap_or_default()));
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// A streaming body fed by a channel.
pub fn channel_body(rx: tokio::sync::mpsc::Receiver<Bytes>) -> Body {
    let s = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    BodyExt::boxed(StreamBody::new(s))
}

/// Query parameters, multi-valued (`command=sh&command=-c`).
#[derive(Debug, Default)]
pub struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        Query(form_urlencoded_parse(q.unwrap_or("")).into_iter().collect())
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }
    pub fn all(&self, k: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .collect()
    }
    pub fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1" | "True"))
    }
}

fn form_urlencoded_parse(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect()
}

/// Serves HTTPS on `listener` until `cancel` fires.
pub async fn serve(
    kubelet: Arc<Kubelet>,
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    cancel: CancellationToken,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (sock, _peer) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "kubelet server accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = sock.set_nodelay(true);
        let acceptor = acceptor.clone();
        let kubelet = kubelet.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let Ok(Ok(stream)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(sock)).await
            else {
                return;
            };
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let k = kubelet.clone();
                async move { Ok::<_, Infallible>(route(k, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .with_upgrades();
            tokio::select! {
                _ = conn => {}
                _ = cancel.cancelled() => {}
            }
        });
    }
}

/// `/a/b/c` split into segments.
fn segments(path: &str) -> Vec<String> {
    path.trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

/// Answers one request.
pub async fn route(kubelet: Arc<Kubelet>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let query = Query::parse(req.uri().query());
    let seg = segments(&path);
    let s: Vec<&str> = seg.iter().map(String::as_str).collect();
    match (req.method(), s.as_slice()) {
        (&Method::GET, ["healthz"]) | (&Method::GET, ["healthz", _]) => text(StatusCode::OK, "ok"),
        (&Method::GET, ["metrics"]) => {
            let pid = *kubelet.runtime_pid.lock();
            let mut r = text(StatusCode::OK, kubelet.metrics.render(pid));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        (&Method::GET, ["metrics", "resource"]) => {
            let summary = crate::stats::summary(&kubelet).await;
            let mut r = text(StatusCode::OK, crate::stats::resource_metrics(&summary));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        (&Method::GET, ["stats", "summary"]) => {
            let summary = crate::stats::summary(&kubelet).await;
            json(
                StatusCode::OK,
                &serde_json::to_value(summary).unwrap_or_default(),
            )
        }
        (&Method::GET, ["pods"]) => {
            let items: Vec<serde_json::Value> = kubelet
                .desired_pods()
                .iter()
                .map(|p| serde_json::to_value(&**p).unwrap_or_default())
                .collect();
            json(
                StatusCode::OK,
                &serde_json::json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}),
            )
        }
        (&Method::GET, ["containerLogs", ns, pod, container]) => {
            container_logs(&kubelet, ns, pod, container, &query).await
        }
        (_, ["exec", ns, pod, container]) | (_, ["exec", ns, pod, _, container]) => {
            let (ns, pod, container) = (ns.to_string(), pod.to_string(), container.to_string());
            remotecommand::handle(
                kubelet,
                req,
                remotecommand::Kind::Exec,
                ns,
                pod,
                container,
                query,
            )
            .await
        }
        (_, ["attach", ns, pod, container]) | (_, ["attach", ns, pod, _, container]) => {
            let (ns, pod, container) = (ns.to_string(), pod.to_string(), container.to_string());
            remotecommand::handle(
                kubelet,
                req,
                remotecommand::Kind::Attach,
                ns,
                pod,
                container,
                query,
            )
            .await
        }
        (_, ["portForward", ns, pod]) | (_, ["portForward", ns, pod, _]) => {
            let (ns, pod) = (ns.to_string(), pod.to_string());
            portforward::handle(kubelet, req, ns, pod, query).await
        }
        _ => text(StatusCode::NOT_FOUND, "404 page not found\n"),
    }
}

/// The runtime container a stream or log request is about: `previous` picks the instance
/// before the newest.
pub async fn find_container(
    kubelet: &Kubelet,
    ns: &str,
    pod: &str,
    container: &str,
    previous: bool,
) -> Result<runtime_pod::ContainerInfo, (StatusCode, String)> {
    let p = kubelet
        .desired_pod(ns, pod)
        .ok_or_else(|| (StatusCode::NOT_FOUND, format!("pod {pod:?} not found")))?;
    let spec = p.spec.clone().unwrap_or_default();
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .any(|c| c.name == container);
    if !init && !spec.containers.iter().any(|c| c.name == container) {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("container {container} is not valid for pod {pod}"),
        ));
    }
    let uid = p.metadata.uid.clone().unwrap_or_default();
    let rt = runtime_pod::get(&**kubelet.runtime(), &uid)
        .await
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let found = if previous {
        rt.previous(container, init)
    } else {
        rt.latest(container, init)
    };
    found.cloned().ok_or_else(|| {
        if previous {
            (
                StatusCode::BAD_REQUEST,
                format!("previous terminated container {container:?} in pod {pod:?} not found"),
            )
        } else {
            (
                StatusCode::BAD_REQUEST,
                format!(
                    "container {container:?} in pod {pod:?} is waiting to start: ContainerCreating"
                ),
            )
        }
    })
}

async fn container_logs(
    kubelet: &Arc<Kubelet>,
    ns: &str,
    pod: &str,
    container: &str,
    q: &Query,
) -> Response<Body> {
    let info = match find_container(kubelet, ns, pod, container, q.flag("previous")).await {
        Ok(i) => i,
        Err((code, msg)) => return text(code, msg),
    };
    if info.log_path.is_empty() {
        return text(
            StatusCode::NOT_FOUND,
            format!("container {container:?} in pod {pod:?} has no log"),
        );
    }
    let since = q
        .get("sinceSeconds")
        .and_then(|s| s.parse::<i64>().ok())
        .map(|s| crate::clock::now_nanos() - s * 1_000_000_000)
        .or_else(|| {
            q.get("sinceTime")
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .map(|t| t.as_nanosecond() as i64)
        });
    let opts = crate::logs::LogOptions {
        follow: q.flag("follow"),
        tail_lines: q.get("tailLines").and_then(|s| s.parse().ok()),
        limit_bytes: q.get("limitBytes").and_then(|s| s.parse().ok()),
        since,
        timestamps: q.flag("timestamps"),
    };
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let runtime = kubelet.runtime().clone();
    let id = info.id.clone();
    tokio::spawn(crate::logs::stream(
        std::path::PathBuf::from(info.log_path),
        opts,
        tx,
        move || {
            let rt = runtime.clone();
            let id = id.clone();
            async move {
                rt.container_status(&id).await.is_ok_and(|s| {
                    s.state == crate::cri::api::ContainerState::ContainerRunning as i32
                })
            }
        },
    ));
    let mut r = Response::new(channel_body(rx));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

/// Headers of a request, lower-cased names, all values.
pub fn header_values(req: &Request<Incoming>, name: &str) -> Vec<String> {
    req.headers()
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// Whether a request asks for a WebSocket.
pub fn is_websocket(req: &Request<Incoming>) -> bool {
    header_values(req, "upgrade")
        .iter()
        .any(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Picks the first protocol of `ours` the client offers.
pub fn negotiate<'a>(offered: &[String], ours: &[&'a str]) -> Option<&'a str> {
    ours.iter()
        .find(|p| offered.iter().any(|o| o == *p))
        .copied()
}

/// The answer to a failed upgrade.
pub fn upgrade_error(code: StatusCode, msg: &str) -> Response<Body> {
    text(code, msg.to_string())
}
