//! Probes and lifecycle hooks: exec (through the runtime), httpGet, tcpSocket and grpc handlers,
//! and one worker per container and probe kind that applies upstream's rules: an initial delay,
//! a period, a timeout, success and failure thresholds, liveness and readiness waiting for the
//! startup probe. A result that crosses a threshold is reported so the pod is synced again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferrokube_client::events::{EventRecorder, EventType};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::{
    Container, GRPCAction, HTTPGetAction, ObjectReference, Probe, TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::cri::Runtime;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

impl ProbeKind {
    fn title(self) -> &'static str {
        match self {
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
            ProbeKind::Startup => "Startup",
        }
    }
}

/// What a handler (probe or hook) came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success(String),
    Failure(String),
}

impl Outcome {
    pub fn ok(&self) -> bool {
        matches!(self, Outcome::Success(_))
    }
}

/// Resolves a probe or hook port: a number, or the name of one of the container's ports.
pub fn resolve_port(port: &IntOrString, container: &Container) -> Result<u16, String> {
    match port {
        IntOrString::Int(p) => u16::try_from(*p).map_err(|_| format!("invalid port number: {p}")),
        IntOrString::String(s) => {
            if let Ok(p) = s.parse::<u16>() {
                return Ok(p);
            }
            container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(s.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok())
                .ok_or_else(|| format!("couldn't find port: {s} in {}", container.name))
        }
    }
}

fn dial_error(addr: &str, e: &std::io::Error) -> String {
    let what = match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connect: connection refused".to_string(),
        std::io::ErrorKind::TimedOut => "i/o timeout".to_string(),
        _ => format!("connect: {e}"),
    };
    format!("dial tcp {addr}: {what}")
}

/// Runs a command in the container.
pub async fn exec(
    runtime: &dyn Runtime,
    container_id: &str,
    cmd: &[String],
    timeout: Duration,
) -> Outcome {
    let run = runtime.exec_sync(container_id, cmd.to_vec(), timeout);
    match tokio::time::timeout(timeout + Duration::from_secs(1), run).await {
        Err(_) => Outcome::Failure(format!("command {cmd:?} timed out")),
        Ok(Err(e)) => Outcome::Failure(e.message()),
        Ok(Ok(r)) => {
            let mut out = String::from_utf8_lossy(&r.stdout).into_owned();
            out.push_str(&String::from_utf8_lossy(&r.stderr));
            if r.exit_code == 0 {
                Outcome::Success(out)
            } else if out.is_empty() {
                Outcome::Failure(format!("command {cmd:?} exited with {}", r.exit_code))
            } else {
                Outcome::Failure(out)
            }
        }
    }
}

/// Connects to host:port.
pub async fn tcp(host: &str, port: u16, timeout: Duration) -> Outcome {
    let addr = join_host_port(host, port);
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addr)).await {
        Err(_) => Outcome::Failure(format!("dial tcp {addr}: i/o timeout")),
        Ok(Err(e)) => Outcome::Failure(dial_error(&addr, &e)),
        Ok(Ok(_)) => Outcome::Success(String::new()),
    }
}

fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// HTTP GET; 200-399 is success.
pub async fn http_get(
    action: &HTTPGetAction,
    default_host: &str,
    container: &Container,
    timeout: Duration,
) -> Outcome {
    let port = match resolve_port(&action.port, container) {
        Ok(p) => p,
        Err(e) => return Outcome::Failure(e),
    };
    let host = action
        .host
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| default_host.to_string());
    let scheme = action.scheme.as_deref().unwrap_or("HTTP").to_lowercase();
    let mut path = action.path.clone().unwrap_or_default();
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    let addr = join_host_port(&host, port);
    let url = format!("{scheme}://{addr}{path}");
    let fut = async {
        let tcp = tokio::net::TcpStream::connect(&addr)
            .await
            .map_err(|e| format!("Get {url:?}: {}", dial_error(&addr, &e)))?;
        let mut req = http::Request::get(&path)
            .header(http::header::HOST, &addr)
            .header(http::header::USER_AGENT, "kube-probe/1.33")
            .header(http::header::ACCEPT, "*/*");
        for h in action.http_headers.iter().flatten() {
            req = req.header(h.name.as_str(), h.value.as_str());
        }
        let req = req
            .body(http_body_util::Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let resp = if scheme == "https" {
            let tls = crate::server::tls::insecure_client_config();
            let connector = tokio_rustls::TlsConnector::from(tls);
            let name =
                rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
            let stream = connector
                .connect(name, tcp)
                .await
                .map_err(|e| format!("Get {url:?}: {e}"))?;
            send(stream, req).await
        } else {
            send(tcp, req).await
        }
        .map_err(|e| format!("Get {url:?}: {e}"))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body[..body.len().min(10 * 1024)]).into_owned();
        Ok::<_, String>((status, text))
    };
    match tokio::time::timeout(timeout, fut).await {
        Err(_) => Outcome::Failure(format!(
            "Get {url:?}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        )),
        Ok(Err(e)) => Outcome::Failure(e),
        Ok(Ok((status, body))) => {
            if (200..400).contains(&status) {
                Outcome::Success(body)
            } else {
                Outcome::Failure(format!("HTTP probe failed with statuscode: {status}"))
            }
        }
    }
}

async fn send<S>(
    io: S,
    req: http::Request<http_body_util::Empty<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    sender.send_request(req).await.map_err(|e| e.to_string())
}

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    service: String,
}

/// `grpc.health.v1.HealthCheckResponse`: `status` is a `ServingStatus` (SERVING is 1).
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    status: i32,
}

/// Dials `addr` until `deadline` as grpc-go's blocking dial does: a refused address is tried
/// again a second later.
async fn dial_until(
    addr: &str,
    deadline: tokio::time::Instant,
) -> std::io::Result<tokio::net::TcpStream> {
    loop {
        match tokio::time::timeout_at(deadline, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => return Ok(tcp),
            Ok(Err(_)) if tokio::time::Instant::now() + Duration::from_secs(1) < deadline => {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(std::io::ErrorKind::TimedOut.into()),
        }
    }
}

/// gRPC health checking (`grpc.health.v1.Health/Check`) over cleartext HTTP/2, as upstream's
/// prober does it: the connection is retried until the timeout, the call must answer SERVING,
/// and the failure texts are upstream's (status codes named as grpc-go prints them).
pub async fn grpc(action: &GRPCAction, host: &str, timeout: Duration) -> Outcome {
    let addr = join_host_port(host, action.port as u16);
    let deadline = tokio::time::Instant::now() + timeout;
    let within = crate::kubelet::go_duration(timeout);
    let dial = addr.clone();
    let connector = tower::service_fn(move |_: http::Uri| {
        let dial = dial.clone();
        async move {
            dial_until(&dial, deadline)
                .await
                .map(hyper_util::rt::TokioIo::new)
        }
    });
    let channel = match tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .and_then(|e| e.user_agent("kube-probe/1.33"))
    {
        // The dial and the HTTP/2 handshake share the probe's time.
        Ok(endpoint) => {
            tokio::time::timeout_at(deadline, endpoint.connect_with_connector(connector))
                .await
                .ok()
                .and_then(Result::ok)
        }
        Err(e) => {
            return Outcome::Failure(format!("error: failed to connect service at {addr:?}: {e}"));
        }
    };
    let Some(channel) = channel else {
        // Any failure to connect is retried by grpc-go until the probe's time is up.
        tokio::time::sleep_until(deadline).await;
        return Outcome::Failure(format!(
            "timeout: failed to connect service {addr:?} within {within}: context deadline \
             exceeded"
        ));
    };
    let mut client = tonic::client::Grpc::new(channel);
    let call = async {
        client
            .ready()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        client
            .unary(
                tonic::Request::new(HealthCheckRequest {
                    service: action.service.clone().unwrap_or_default(),
                }),
                http::uri::PathAndQuery::from_static("/grpc.health.v1.Health/Check"),
                tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default(),
            )
            .await
    };
    let answer = tokio::time::timeout_at(deadline, call)
        .await
        .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("")));
    let status = match answer {
        Ok(response) => response.into_inner().status,
        Err(s) => {
            return Outcome::Failure(match s.code() {
                tonic::Code::DeadlineExceeded => {
                    format!("timeout: health rpc did not complete within {within}")
                }
                tonic::Code::Unimplemented => format!(
                    "error: this server does not implement the grpc health protocol \
                     (grpc.health.v1.Health): {}",
                    s.message()
                ),
                code => format!(
                    "error: health rpc probe failed: rpc error: code = {} desc = {}",
                    // grpc-go spells this one code with one "l".
                    match code {
                        tonic::Code::Cancelled => "Canceled".to_string(),
                        c => format!("{c:?}"),
                    },
                    s.message()
                ),
            });
        }
    };
    let name = match status {
        1 => return Outcome::Success("service healthy".into()),
        0 => "UNKNOWN".to_string(),
        2 => "NOT_SERVING".to_string(),
        3 => "SERVICE_UNKNOWN".to_string(),
        n => n.to_string(),
    };
    Outcome::Failure(format!("service unhealthy (responded with {name:?})"))
}

/// Runs a probe's handler once.
pub async fn run_probe(
    probe: &Probe,
    runtime: &dyn Runtime,
    container_id: &str,
    container: &Container,
    pod_ip: &str,
) -> Outcome {
    let timeout = Duration::from_secs(probe.timeout_seconds.unwrap_or(1).max(1) as u64);
    if let Some(e) = &probe.exec {
        return exec(
            runtime,
            container_id,
            e.command.as_deref().unwrap_or(&[]),
            timeout,
        )
        .await;
    }
    if let Some(h) = &probe.http_get {
        return http_get(h, pod_ip, container, timeout).await;
    }
    if let Some(TCPSocketAction { host, port }) = &probe.tcp_socket {
        let port = match resolve_port(port, container) {
            Ok(p) => p,
            Err(e) => return Outcome::Failure(e),
        };
        let host = host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| pod_ip.to_string());
        return tcp(&host, port, timeout).await;
    }
    if let Some(g) = &probe.grpc {
        return grpc(g, pod_ip, timeout).await;
    }
    Outcome::Failure("missing probe handler".into())
}

/// Everything a probe worker needs besides the probe.
#[derive(Clone)]
pub struct ProbeTarget {
    pub runtime: Arc<dyn Runtime>,
    pub recorder: Option<EventRecorder>,
    /// The container's reference (with `fieldPath`) for Unhealthy events.
    pub reference: ObjectReference,
    pub container: Container,
    pub container_id: String,
    pub pod_ip: String,
    /// Called when a result changes: the pod needs a sync.
    pub on_change: Arc<dyn Fn() + Send + Sync>,
}

#[derive(Default)]
struct Worker {
    cancel: CancellationToken,
}

/// The probe workers of a node and their latest results, by container id.
#[derive(Default)]
pub struct ProbeManager {
    workers: Mutex<HashMap<(String, ProbeKind), Worker>>,
    results: Mutex<HashMap<(String, ProbeKind), bool>>,
}

impl ProbeManager {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The latest result of a probe; None until one was reached (or no such probe).
    pub fn result(&self, container_id: &str, kind: ProbeKind) -> Option<bool> {
        self.results
            .lock()
            .get(&(container_id.to_string(), kind))
            .copied()
    }

    /// Starts the workers a running container needs, unless they run already.
    pub fn ensure(self: &Arc<Self>, target: ProbeTarget) {
        let c = &target.container;
        let probes = [
            (ProbeKind::Startup, c.startup_probe.clone()),
            (ProbeKind::Liveness, c.liveness_probe.clone()),
            (ProbeKind::Readiness, c.readiness_probe.clone()),
        ];
        let has_startup = c.startup_probe.is_some();
        for (kind, probe) in probes {
            let Some(probe) = probe else { continue };
            let key = (target.container_id.clone(), kind);
            let mut workers = self.workers.lock();
            if workers.contains_key(&key) {
                continue;
            }
            let w = Worker::default();
            let cancel = w.cancel.clone();
            workers.insert(key, w);
            drop(workers);
            let me = self.clone();
            let target = target.clone();
            tokio::spawn(async move {
                me.work(kind, probe, has_startup, target, cancel).await;
            });
        }
    }

    /// Stops the workers of containers not in `live` and forgets their results.
    pub fn retain(&self, live: &std::collections::HashSet<String>) {
        let mut workers = self.workers.lock();
        workers.retain(|(id, _), w| {
            let keep = live.contains(id);
            if !keep {
                w.cancel.cancel();
            }
            keep
        });
        self.results.lock().retain(|(id, _), _| live.contains(id));
    }

    /// Stops the workers of the given containers.
    pub fn forget(&self, ids: &[String]) {
        let set: std::collections::HashSet<&String> = ids.iter().collect();
        self.workers.lock().retain(|(id, _), w| {
            let drop = set.contains(id);
            if drop {
                w.cancel.cancel();
            }
            !drop
        });
        self.results.lock().retain(|(id, _), _| !set.contains(id));
    }

    fn set(&self, id: &str, kind: ProbeKind, v: bool) -> bool {
        let prev = self.results.lock().insert((id.to_string(), kind), v);
        prev != Some(v)
    }

    async fn work(
        self: Arc<Self>,
        kind: ProbeKind,
        probe: Probe,
        has_startup: bool,
        t: ProbeTarget,
        cancel: CancellationToken,
    ) {
        let period = Duration::from_secs(probe.period_seconds.unwrap_or(10).max(1) as u64);
        let success_threshold = probe.success_threshold.unwrap_or(1).max(1);
        let failure_threshold = probe.failure_threshold.unwrap_or(3).max(1);
        let initial = Duration::from_secs(probe.initial_delay_seconds.unwrap_or(0).max(0) as u64);
        // Upstream's initial results: liveness passes, readiness fails, startup is unknown.
        match kind {
            ProbeKind::Liveness => {
                self.set(&t.container_id, kind, true);
            }
            ProbeKind::Readiness => {
                self.set(&t.container_id, kind, false);
            }
            ProbeKind::Startup => {}
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(initial) => {}
        }
        let (mut successes, mut failures) = (0i32, 0i32);
        loop {
            let startup_done = self.result(&t.container_id, ProbeKind::Startup) == Some(true);
            let skip = match kind {
                ProbeKind::Startup => startup_done,
                _ => has_startup && !startup_done,
            };
            if !skip {
                let outcome = run_probe(
                    &probe,
                    &*t.runtime,
                    &t.container_id,
                    &t.container,
                    &t.pod_ip,
                )
                .await;
                if cancel.is_cancelled() {
                    return;
                }
                match &outcome {
                    Outcome::Success(_) => {
                        successes += 1;
                        failures = 0;
                        let threshold = if kind == ProbeKind::Readiness {
                            success_threshold
                        } else {
                            1
                        };
                        if successes >= threshold && self.set(&t.container_id, kind, true) {
                            (t.on_change)();
                        }
                    }
                    Outcome::Failure(msg) => {
                        failures += 1;
                        successes = 0;
                        if let Some(r) = &t.recorder {
                            r.record_ref(
                                t.reference.clone(),
                                EventType::Warning,
                                "Unhealthy",
                                &format!("{} probe failed: {}", kind.title(), msg.trim_end()),
                            );
                        }
                        if failures >= failure_threshold && self.set(&t.container_id, kind, false) {
                            (t.on_change)();
                        }
                    }
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(period) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cri::fake::FakeRuntime;
    use k8s_openapi::api::core::v1::{ContainerPort, ExecAction};

    #[test]
    fn named_ports_resolve_through_the_container() {
        let c = Container {
            name: "web".into(),
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: 8080,
                ..Default::default()
            }]),
            ..Default::default()
        };
        assert_eq!(
            resolve_port(&IntOrString::String("http".into()), &c),
            Ok(8080)
        );
        assert_eq!(resolve_port(&IntOrString::Int(81), &c), Ok(81));
        assert!(resolve_port(&IntOrString::String("nope".into()), &c).is_err());
    }

    #[tokio::test]
    async fn tcp_and_http_probes_see_what_listens() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = [0u8; 1024];
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    let req = String::from_utf8_lossy(&buf[..n]).to_string();
                    let status = if req.starts_with("GET /healthz") {
                        "200 OK"
                    } else {
                        "503 Service Unavailable"
                    };
                    let _ = s
                        .write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").as_bytes())
                        .await;
                });
            }
        });
        assert!(tcp("127.0.0.1", port, Duration::from_secs(1)).await.ok());
        let c = Container::default();
        let good = HTTPGetAction {
            path: Some("/healthz".into()),
            port: IntOrString::Int(port as i32),
            ..Default::default()
        };
        assert_eq!(
            http_get(&good, "127.0.0.1", &c, Duration::from_secs(2)).await,
            Outcome::Success("ok".into())
        );
        let bad = HTTPGetAction {
            path: Some("/other".into()),
            ..good
        };
        assert_eq!(
            http_get(&bad, "127.0.0.1", &c, Duration::from_secs(2)).await,
            Outcome::Failure("HTTP probe failed with statuscode: 503".into())
        );
        // A port nothing listens on.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let cport = closed.local_addr().unwrap().port();
        drop(closed);
        assert_eq!(
            tcp("127.0.0.1", cport, Duration::from_secs(1)).await,
            Outcome::Failure(format!(
                "dial tcp 127.0.0.1:{cport}: connect: connection refused"
            ))
        );
    }

    /// A gRPC health server as an application runs one (grpc.health.v1.Health/Check over
    /// cleartext HTTP/2): each service name has a serving status; a name it does not know
    /// answers NOT_FOUND "unknown service" as grpc-go's health server does, in a
    /// trailers-only response; any other method is UNIMPLEMENTED.
    async fn health_server(statuses: Arc<Mutex<HashMap<String, i32>>>) -> u16 {
        use http_body_util::{Either, Empty, StreamBody};
        use hyper::body::Frame;
        use prost::Message;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let Ok((s, _)) = l.accept().await else {
                    return;
                };
                let statuses = statuses.clone();
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let statuses = statuses.clone();
                        async move {
                            let only_trailers = |code: &str, msg: &str| {
                                http::Response::builder()
                                    .header("content-type", "application/grpc")
                                    .header("grpc-status", code)
                                    .header("grpc-message", msg)
                                    .body(Either::Left(Empty::<Bytes>::new()))
                            };
                            if req.uri().path() != "/grpc.health.v1.Health/Check" {
                                return only_trailers("12", "unknown method");
                            }
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let service = HealthCheckRequest::decode(&body[5..]).unwrap().service;
                            let Some(status) = statuses.lock().get(&service).copied() else {
                                return only_trailers("5", "unknown%20service");
                            };
                            let reply = HealthCheckResponse { status }.encode_to_vec();
                            let mut msg = vec![0u8];
                            msg.extend_from_slice(&(reply.len() as u32).to_be_bytes());
                            msg.extend_from_slice(&reply);
                            let mut trailers = http::HeaderMap::new();
                            trailers.insert("grpc-status", "0".parse().unwrap());
                            let frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = vec![
                                Ok(Frame::data(Bytes::from(msg))),
                                Ok(Frame::trailers(trailers)),
                            ];
                            http::Response::builder()
                                .header("content-type", "application/grpc")
                                .body(Either::Right(StreamBody::new(futures::stream::iter(
                                    frames,
                                ))))
                        }
                    });
                tokio::spawn(
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(s), svc),
                );
            }
        });
        port
    }

    #[tokio::test]
    async fn grpc_probes_ask_the_health_service_and_fail_as_upstream_does() {
        let statuses = Arc::new(Mutex::new(HashMap::from([
            (String::new(), 1),
            ("db".to_string(), 2),
        ])));
        let port = health_server(statuses.clone()).await;
        let action = |service: Option<&str>| GRPCAction {
            port: port as i32,
            service: service.map(str::to_string),
        };
        let second = Duration::from_secs(1);
        assert_eq!(
            grpc(&action(None), "127.0.0.1", second).await,
            Outcome::Success("service healthy".into())
        );
        assert_eq!(
            grpc(&action(Some("db")), "127.0.0.1", second).await,
            Outcome::Failure("service unhealthy (responded with \"NOT_SERVING\")".into())
        );
        statuses.lock().insert("db".into(), 1);
        assert!(grpc(&action(Some("db")), "127.0.0.1", second).await.ok());
        statuses.lock().insert(String::new(), 0);
        assert_eq!(
            grpc(&action(None), "127.0.0.1", second).await,
            Outcome::Failure("service unhealthy (responded with \"UNKNOWN\")".into())
        );
        assert_eq!(
            grpc(&action(Some("cache")), "127.0.0.1", second).await,
            Outcome::Failure(
                "error: health rpc probe failed: rpc error: code = NotFound desc = unknown service"
                    .into()
            )
        );
        // Nothing listens: the dial is retried until the timeout runs out.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let cport = closed.local_addr().unwrap().port();
        drop(closed);
        let started = std::time::Instant::now();
        let refused = GRPCAction {
            port: cport as i32,
            service: None,
        };
        assert_eq!(
            grpc(&refused, "127.0.0.1", second).await,
            Outcome::Failure(format!(
                "timeout: failed to connect service \"127.0.0.1:{cport}\" within 1s: context \
                 deadline exceeded"
            ))
        );
        assert!(started.elapsed() >= Duration::from_millis(900));
    }

    #[tokio::test]
    async fn grpc_probes_name_a_server_without_the_health_service() {
        // An HTTP/2 server whose every method is unimplemented.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let svc =
                hyper::service::service_fn(|_req: http::Request<hyper::body::Incoming>| async {
                    http::Response::builder()
                        .header("content-type", "application/grpc")
                        .header("grpc-status", "12")
                        .header("grpc-message", "unknown service grpc.health.v1.Health")
                        .body(http_body_util::Empty::<Bytes>::new())
                });
            let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                .await;
        });
        let action = GRPCAction {
            port: port as i32,
            service: None,
        };
        assert_eq!(
            grpc(&action, "127.0.0.1", Duration::from_secs(1)).await,
            Outcome::Failure(
                "error: this server does not implement the grpc health protocol \
                 (grpc.health.v1.Health): unknown service grpc.health.v1.Health"
                    .into()
            )
        );
    }

    #[tokio::test(start_paused = true)]
    async fn liveness_fails_after_the_threshold_and_reports_once() {
        use crate::cri::api;
        let rt = FakeRuntime::new();
        rt.add_image("busybox");
        let sb = rt
            .run_pod_sandbox(api::PodSandboxConfig::default(), "")
            .await
            .unwrap();
        let id = rt
            .create_container(
                &sb,
                api::ContainerConfig {
                    image: Some(api::ImageSpec {
                        image: "busybox".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                Default::default(),
            )
            .await
            .unwrap();
        rt.start_container(&id).await.unwrap();
        let changes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let ch = changes.clone();
        let container = Container {
            name: "c".into(),
            liveness_probe: Some(Probe {
                exec: Some(ExecAction {
                    command: Some(vec!["false".into()]),
                }),
                period_seconds: Some(5),
                failure_threshold: Some(2),
                ..Default::default()
            }),
            ..Default::default()
        };
        let pm = ProbeManager::new();
        pm.ensure(ProbeTarget {
            runtime: Arc::new(rt),
            recorder: None,
            reference: ObjectReference::default(),
            container,
            container_id: id.clone(),
            pod_ip: String::new(),
            on_change: Arc::new(move || {
                ch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }),
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            pm.result(&id, ProbeKind::Liveness),
            Some(true),
            "one failure is below the threshold"
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(pm.result(&id, ProbeKind::Liveness), Some(false));
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert_eq!(changes.load(std::sync::atomic::Ordering::SeqCst), 1);
        pm.forget(std::slice::from_ref(&id));
        assert_eq!(pm.result(&id, ProbeKind::Liveness), None);
    }
}
