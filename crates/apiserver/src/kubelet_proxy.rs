//! The streaming pod subresources and node proxy, served by the node's kubelet: `pods/log`,
//! `pods/exec`, `pods/attach`, `pods/portforward`, `nodes/proxy`, and `pods/proxy` to the pod
//! itself. The request is checked here as upstream checks it (container names, container
//! states for logs), then forwarded over HTTPS to the kubelet at the node's InternalIP and
//! `status.daemonEndpoints.kubeletEndpoint.Port`, authenticated with the API server's kubelet
//! client certificate. Upgrades (SPDY, WebSocket) are answered with the kubelet's answer and the
//! two connections joined byte for byte, so every protocol the kubelet speaks reaches clients.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ferrokube_api::ApiError;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::ApiServer;
use crate::handlers::Call;
use crate::request::ResourceRequest;
use crate::response::{self, Body};

/// TLS settings for talking to kubelets.
#[derive(Clone)]
pub struct KubeletClient {
    tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for KubeletClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeletClient").finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl KubeletClient {
    /// A client presenting `cert_pem`/`key_pem`. With `kubelet_ca_pem` kubelets' serving
    /// certificates are verified against it (`--kubelet-certificate-authority`); without, they
    /// are not, which is upstream's default (kubelets often serve self-signed certificates).
    pub fn new(
        cert_pem: &str,
        key_pem: &str,
        kubelet_ca_pem: Option<&str>,
    ) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs = rustls_pemfile::certs(&mut cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("kubelet client certificate: {e}"))?;
        let key = rustls_pemfile::private_key(&mut key_pem.as_bytes())
            .map_err(|e| format!("kubelet client key: {e}"))?
            .ok_or("kubelet client key: none found")?;
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let cfg = match kubelet_ca_pem {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in rustls_pemfile::certs(&mut ca.as_bytes()).flatten() {
                    roots.add(c).map_err(|e| format!("kubelet CA: {e}"))?;
                }
                builder
                    .with_root_certificates(roots)
                    .with_client_auth_cert(certs, key)
            }
            None => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
                .with_client_auth_cert(certs, key),
        }
        .map_err(|e| format!("kubelet client TLS: {e}"))?;
        Ok(KubeletClient { tls: Arc::new(cfg) })
    }
}

/// Where a kubelet listens.
struct Kubelet {
    host: String,
    port: u16,
}

async fn kubelet_of(srv: &Arc<ApiServer>, node: &str) -> Result<Kubelet, ApiError> {
    let info = ferrokube_api::resources::find("", "v1", "nodes").expect("nodes are registered");
    let n = srv
        .registry
        .get(info, "", node, None)
        .await
        .map_err(|_| ApiError::not_found("", "nodes", node))?;
    let addrs = n
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let pick = |t: &str| {
        addrs
            .iter()
            .find(|a| a["type"] == t)
            .and_then(|a| a["address"].as_str())
            .map(String::from)
    };
    let host = pick("InternalIP")
        .or_else(|| pick("ExternalIP"))
        .or_else(|| pick("Hostname"))
        .ok_or_else(|| {
            ApiError::service_unavailable("no preferred addresses found; known addresses: []")
        })?;
    let port = n
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .filter(|p| *p > 0)
        .unwrap_or(10250) as u16;
    Ok(Kubelet { host, port })
}

fn container_names(pod: &Value, key: &str) -> Vec<String> {
    pod.pointer(&format!("/spec/{key}"))
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The container a request is about: the one named, the default-container annotation, or the
/// only one; upstream's errors otherwise.
fn pick_container(pod: &Value, name: &str, asked: Option<&str>) -> Result<String, ApiError> {
    let regular = container_names(pod, "containers");
    let init = container_names(pod, "initContainers");
    let ephemeral = container_names(pod, "ephemeralContainers");
    match asked.filter(|c| !c.is_empty()) {
        Some(c) => {
            if regular
                .iter()
                .chain(&init)
                .chain(&ephemeral)
                .any(|n| n == c)
            {
                Ok(c.to_string())
            } else {
                Err(ApiError::bad_request(format!(
                    "container {c} is not valid for pod {name}"
                )))
            }
        }
        None if regular.len() == 1 => Ok(regular[0].clone()),
        None => {
            if let Some(d) = pod
                .pointer("/metadata/annotations/kubectl.kubernetes.io~1default-container")
                .and_then(Value::as_str)
            {
                return Ok(d.to_string());
            }
            let mut msg = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                regular.join(" ")
            );
            if !init.is_empty() {
                msg.push_str(&format!(
                    " or one of the init containers: [{}]",
                    init.join(" ")
                ));
            }
            if !ephemeral.is_empty() {
                msg.push_str(&format!(
                    " or one of the ephemeral containers: [{}]",
                    ephemeral.join(" ")
                ));
            }
            Err(ApiError::bad_request(msg))
        }
    }
}

/// Upstream's log checks against the container's status.
fn check_log_status(
    pod: &Value,
    name: &str,
    container: &str,
    previous: bool,
) -> Result<(), ApiError> {
    let statuses = [
        "containerStatuses",
        "initContainerStatuses",
        "ephemeralContainerStatuses",
    ]
    .iter()
    .filter_map(|k| {
        pod.pointer(&format!("/status/{k}"))
            .and_then(Value::as_array)
    })
    .flatten()
    .find(|s| s["name"] == container)
    .cloned();
    let Some(s) = statuses else {
        return Err(ApiError::bad_request(format!(
            "container {container:?} in pod {name:?} is waiting to start: ContainerCreating"
        )));
    };
    if previous {
        if s.pointer("/lastState/terminated").is_none() {
            return Err(ApiError::bad_request(format!(
                "previous terminated container {container:?} in pod {name:?} not found"
            )));
        }
        return Ok(());
    }
    if let Some(w) = s.pointer("/state/waiting") {
        // A container waiting to restart still has logs to show.
        if s.pointer("/lastState/terminated").is_none() {
            let reason = match w["reason"].as_str().unwrap_or("") {
                "ErrImagePull" | "ImagePullBackOff" => "image can't be pulled",
                r => r,
            };
            let msg =
                format!("container {container:?} in pod {name:?} is waiting to start: {reason}");
            return Err(ApiError::bad_request(msg));
        }
    }
    Ok(())
}

fn pass_query(raw: &str, drop: &[&str]) -> String {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let k = p.split('=').next().unwrap_or("");
            !drop.contains(&k)
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Serves `pods/{log,exec,attach,portforward,proxy}` and `nodes/proxy`.
pub async fn proxy(
    srv: &Arc<ApiServer>,
    call: &Call,
    rr: &ResourceRequest,
    body: Bytes,
) -> Result<Response<Body>, ApiError> {
    let info = rr.info;
    let rest = rr.rest.join("/");
    if info.resource == "nodes" {
        let k = kubelet_of(srv, &rr.name).await?;
        let q = pass_query(&call.raw_query, &[]);
        let path = format!(
            "/{rest}{}",
            if q.is_empty() {
                String::new()
            } else {
                format!("?{q}")
            }
        );
        return forward(srv, call, &k, &path, body).await;
    }
    if info.resource != "pods" {
        return Err(ApiError::service_unavailable(format!(
            "{}/{} is not served by this server",
            info.resource, rr.subresource
        )));
    }
    let pod = srv
        .registry
        .get(info, &rr.namespace, &rr.name, None)
        .await?;
    let node = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if node.is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {} does not have a host assigned",
            rr.name
        )));
    }
    let (ns, name) = (enc(&rr.namespace), enc(&rr.name));
    let path = match rr.subresource.as_str() {
        "log" => {
            let c = pick_container(&pod, &rr.name, call.query.get("container"))?;
            check_log_status(&pod, &rr.name, &c, call.query.flag("previous"))?;
            let q = pass_query(
                &call.raw_query,
                &["container", "insecureSkipTLSVerifyBackend", "pretty"],
            );
            format!("/containerLogs/{ns}/{name}/{}?{q}", enc(&c))
        }
        "exec" | "attach" => {
            let c = pick_container(&pod, &rr.name, call.query.get("container"))?;
            let q = pass_query(&call.raw_query, &["container"]);
            format!("/{}/{ns}/{name}/{}?{q}", rr.subresource, enc(&c))
        }
        "portforward" => {
            let q = pass_query(&call.raw_query, &[]);
            format!("/portForward/{ns}/{name}?{q}")
        }
        "proxy" => return pod_proxy(&pod, &rr.name, &rest, call, body).await,
        _ => return Err(ApiError::not_found("", "pods", &rr.name)),
    };
    let k = kubelet_of(srv, &node).await?;
    forward(srv, call, &k, &path, body).await
}

/// Headers that belong to one hop and are not forwarded.
const HOP: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "authorization",
];

fn is_upgrade(h: &HeaderMap) -> bool {
    h.get(http::header::UPGRADE).is_some()
}

async fn connect(
    srv: &Arc<ApiServer>,
    k: &Kubelet,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, ApiError> {
    let client = srv.kubelet_client.read().clone().ok_or_else(|| {
        ApiError::service_unavailable("the API server has no kubelet client credentials")
    })?;
    let host = if k.host.contains(':') {
        format!("[{}]", k.host)
    } else {
        k.host.clone()
    };
    let addr = format!("{host}:{}", k.port);
    let tcp = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect(&addr),
    )
    .await
    .map_err(|_| ApiError::service_unavailable(format!("dial tcp {addr}: i/o timeout")))?
    .map_err(|e| ApiError::service_unavailable(format!("dial tcp {addr}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let name = rustls::pki_types::ServerName::try_from(k.host.clone())
        .map_err(|e| ApiError::internal(format!("kubelet address {}: {e}", k.host)))?;
    tokio_rustls::TlsConnector::from(client.tls)
        .connect(name, tcp)
        .await
        .map_err(|e| ApiError::service_unavailable(format!("error dialing backend: {e}")))
}

/// Forwards a request to a kubelet and its answer back.
async fn forward(
    srv: &Arc<ApiServer>,
    call: &Call,
    k: &Kubelet,
    path: &str,
    body: Bytes,
) -> Result<Response<Body>, ApiError> {
    let stream = connect(srv, k).await?;
    if is_upgrade(&call.headers) {
        return upgrade(call, stream, &format!("{}:{}", k.host, k.port), path).await;
    }
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| ApiError::service_unavailable(format!("error dialing backend: {e}")))?;
    tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(call.method.clone())
        .uri(path)
        .header(http::header::HOST, format!("{}:{}", k.host, k.port));
    for (n, v) in call.headers.iter() {
        if !HOP.contains(&n.as_str()) && n != http::header::CONNECTION {
            req = req.header(n, v);
        }
    }
    let req = req
        .body(http_body_util::Full::new(body))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let resp = sender.send_request(req).await.map_err(|e| {
        ApiError::service_unavailable(format!("error trying to reach the kubelet: {e}"))
    })?;
    let (parts, incoming) = resp.into_parts();
    let stream = http_body_util::BodyStream::new(incoming);
    use futures::StreamExt;
    let frames = stream
        .take_while(|f| futures::future::ready(f.is_ok()))
        .filter_map(|f| futures::future::ready(f.ok().map(Ok::<_, std::convert::Infallible>)));
    let mut out = Response::new(http_body_util::BodyExt::boxed(
        http_body_util::StreamBody::new(frames),
    ));
    *out.status_mut() = parts.status;
    for (n, v) in parts.headers.iter() {
        if !HOP.contains(&n.as_str()) && n != http::header::CONNECTION {
            out.headers_mut().append(n, v.clone());
        }
    }
    Ok(out)
}

/// Replays an upgrade request to the kubelet; on 101, answers the client alike and joins the
/// two connections.
async fn upgrade<S>(
    call: &Call,
    mut kubelet: S,
    host: &str,
    path: &str,
) -> Result<Response<Body>, ApiError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut head = format!("{} {path} HTTP/1.1\r\nHost: {host}\r\n", call.method);
    for (n, v) in call.headers.iter() {
        if HOP.contains(&n.as_str()) {
            continue;
        }
        if let Ok(v) = v.to_str() {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
    }
    head.push_str("\r\n");
    kubelet.write_all(head.as_bytes()).await.map_err(|e| {
        ApiError::service_unavailable(format!("error trying to reach the kubelet: {e}"))
    })?;
    let mut buf = BytesMut::with_capacity(2048);
    let end = loop {
        let n = kubelet.read_buf(&mut buf).await.map_err(|e| {
            ApiError::service_unavailable(format!("error trying to reach the kubelet: {e}"))
        })?;
        if n == 0 {
            return Err(ApiError::service_unavailable(
                "the kubelet closed the connection",
            ));
        }
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        if buf.len() > 64 * 1024 {
            return Err(ApiError::service_unavailable(
                "oversized response from the kubelet",
            ));
        }
    };
    let text = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .unwrap_or(502);
    let mut headers = HeaderMap::new();
    for l in lines {
        if let Some((n, v)) = l.split_once(':')
            && let (Ok(n), Ok(v)) = (
                http::header::HeaderName::from_bytes(n.trim().as_bytes()),
                HeaderValue::from_str(v.trim()),
            )
        {
            headers.append(n, v);
        }
    }
    let rest = buf.split_off(end).freeze();
    if status != 101 {
        // The kubelet said no: its answer (with whatever body followed) is the client's answer.
        let len = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = rest.to_vec();
        while body.len() < len {
            let mut more = vec![0u8; len - body.len()];
            match kubelet.read(&mut more).await {
                Ok(0) | Err(_) => break,
                Ok(n) => body.extend_from_slice(&more[..n]),
            }
        }
        let mut r = Response::new(response::full(body));
        *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
        for (n, v) in headers.iter() {
            if !HOP.contains(&n.as_str()) && n != http::header::CONNECTION {
                r.headers_mut().append(n, v.clone());
            }
        }
        return Ok(r);
    }
    let on_upgrade = call
        .upgrade
        .lock()
        .take()
        .ok_or_else(|| ApiError::bad_request("this connection cannot be upgraded"))?;
    tokio::spawn(async move {
        let Ok(client) = on_upgrade.await else {
            return;
        };
        let mut client = hyper_util::rt::TokioIo::new(client);
        if !rest.is_empty() && client.write_all(&rest).await.is_err() {
            return;
        }
        let _ = tokio::io::copy_bidirectional(&mut client, &mut kubelet).await;
    });
    let mut r = Response::new(response::full(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    for (n, v) in headers.iter() {
        if n != http::header::CONTENT_LENGTH {
            r.headers_mut().append(n, v.clone());
        }
    }
    Ok(r)
}

/// `pods/proxy`: HTTP to the pod itself (`name`, `name:port` or `scheme:name:port`).
async fn pod_proxy(
    pod: &Value,
    name: &str,
    rest: &str,
    call: &Call,
    body: Bytes,
) -> Result<Response<Body>, ApiError> {
    let ip = pod
        .pointer("/status/podIP")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::service_unavailable(format!("address not allowed: pod {name} has no IP"))
        })?
        .to_string();
    let port = pod
        .pointer("/spec/containers/0/ports/0/containerPort")
        .and_then(Value::as_u64)
        .unwrap_or(80);
    let addr = format!("{ip}:{port}");
    let tcp = tokio::net::TcpStream::connect(&addr).await.map_err(|e| {
        ApiError::service_unavailable(format!(
            "error trying to reach service: dial tcp {addr}: {e}"
        ))
    })?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .map_err(|e| ApiError::service_unavailable(e.to_string()))?;
    tokio::spawn(conn);
    let q = pass_query(&call.raw_query, &[]);
    let path = format!(
        "/{rest}{}",
        if q.is_empty() {
            String::new()
        } else {
            format!("?{q}")
        }
    );
    let req = http::Request::builder()
        .method(call.method.clone())
        .uri(path)
        .header(http::header::HOST, addr)
        .body(http_body_util::Full::new(body))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let resp = sender.send_request(req).await.map_err(|e| {
        ApiError::service_unavailable(format!("error trying to reach service: {e}"))
    })?;
    let (parts, b) = resp.into_parts();
    let bytes = b.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    let mut r = Response::new(response::full(bytes));
    *r.status_mut() = parts.status;
    for (n, v) in parts.headers.iter() {
        if !HOP.contains(&n.as_str()) && n != http::header::CONNECTION {
            r.headers_mut().append(n, v.clone());
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_container_is_named_or_the_only_one() {
        let one = json!({"spec": {"containers": [{"name": "web"}]}});
        assert_eq!(pick_container(&one, "p", None).unwrap(), "web");
        let two = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}], "initContainers": [{"name": "i"}]}});
        assert_eq!(
            pick_container(&two, "p", None).unwrap_err().message,
            "a container name must be specified for pod p, choose one of: [a b] or one of the init containers: [i]"
        );
        assert_eq!(
            pick_container(&two, "p", Some("c")).unwrap_err().message,
            "container c is not valid for pod p"
        );
        assert_eq!(pick_container(&two, "p", Some("i")).unwrap(), "i");
    }

    #[test]
    fn logs_of_containers_that_never_ran_are_refused_as_upstream() {
        let pod = json!({"status": {"containerStatuses": [{"name": "c", "state": {"waiting": {"reason": "ContainerCreating"}}}]}});
        assert_eq!(
            check_log_status(&pod, "p", "c", false).unwrap_err().message,
            "container \"c\" in pod \"p\" is waiting to start: ContainerCreating"
        );
        assert_eq!(
            check_log_status(&pod, "p", "c", true).unwrap_err().message,
            "previous terminated container \"c\" in pod \"p\" not found"
        );
        let crashed = json!({"status": {"containerStatuses": [{"name": "c", "state": {"waiting": {"reason": "CrashLoopBackOff"}}, "lastState": {"terminated": {"exitCode": 1}}}]}});
        assert!(check_log_status(&crashed, "p", "c", false).is_ok());
        assert!(check_log_status(&crashed, "p", "c", true).is_ok());
    }

    #[test]
    fn repeated_parameters_pass_through_and_named_ones_are_dropped() {
        assert_eq!(
            pass_query(
                "command=sh&command=-c&container=x&stdout=true",
                &["container"]
            ),
            "command=sh&command=-c&stdout=true"
        );
    }
}
