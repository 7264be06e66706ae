//! port-forward for clients. kubectl opens, per local connection, an error stream and a data
//! stream with the same `requestID` and the target `port`, over SPDY (`portforward.k8s.io`),
//! directly or (kubectl 1.31+) tunnelled through WebSocket binary messages
//! (`SPDY/3.1+portforward.k8s.io`). The Python client uses WebSocket channels instead: for the
//! i-th port of `?ports=`, channel 2i carries data and 2i+1 errors, each first sending the port
//! as two little-endian bytes.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::spdy::{self, Connection};
use super::{Body, Query, negotiate, text, ws};
use crate::kubelet::Kubelet;

const SPDY_PROTOCOLS: &[&str] = &["portforward.k8s.io"];
const WS_PROTOCOLS: &[&str] = &[
    "SPDY/3.1+portforward.k8s.io",
    "v4.channel.k8s.io",
    "portforward.k8s.io",
];

struct Target {
    kubelet: Arc<Kubelet>,
    sandbox_id: String,
    pod: String,
    uid: String,
}

impl Target {
    /// Connects a byte stream to `port` in the pod; the error text if it fails.
    fn connect(
        &self,
        port: u16,
    ) -> (
        tokio::io::DuplexStream,
        tokio::task::JoinHandle<Option<String>>,
    ) {
        let (ours, theirs) = tokio::io::duplex(256 * 1024);
        let rt = self.kubelet.runtime().clone();
        let sandbox = self.sandbox_id.clone();
        let (pod, uid) = (self.pod.clone(), self.uid.clone());
        let task = tokio::spawn(async move {
            match rt.port_forward(&sandbox, port, theirs).await {
                Ok(()) => None,
                Err(e) => Some(format!(
                    "error forwarding port {port} to pod {pod}, uid {uid}: {}",
                    e.message()
                )),
            }
        });
        (ours, task)
    }
}

pub async fn handle(
    kubelet: Arc<Kubelet>,
    mut req: Request<Incoming>,
    ns: String,
    pod: String,
    q: Query,
) -> Response<Body> {
    let Some(p) = kubelet.desired_pod(&ns, &pod) else {
        return text(StatusCode::NOT_FOUND, format!("pod {pod:?} not found"));
    };
    let uid = p.metadata.uid.clone().unwrap_or_default();
    let rt = match crate::runtime_pod::get(&**kubelet.runtime(), &uid).await {
        Ok(r) => r,
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let Some(sandbox) = rt.sandboxes.iter().find(|s| s.ready) else {
        return text(
            StatusCode::BAD_REQUEST,
            format!("pod {pod} does not have a running sandbox"),
        );
    };
    let target = Arc::new(Target {
        kubelet: kubelet.clone(),
        sandbox_id: sandbox.id.clone(),
        pod: pod.clone(),
        uid,
    });
    let on_upgrade = hyper::upgrade::on(&mut req);
    if super::is_websocket(&req) {
        let offered = ws::offered(&req);
        let Some(proto) = negotiate(&offered, WS_PROTOCOLS) else {
            return text(
                StatusCode::BAD_REQUEST,
                format!(
                    "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server supports {WS_PROTOCOLS:?}"
                ),
            );
        };
        let ports: Vec<u16> = q
            .all("ports")
            .iter()
            .chain(q.all("port").iter())
            .flat_map(|p| {
                p.split(',')
                    .map(|s| s.trim().to_string())
                    .collect::<Vec<_>>()
            })
            .filter_map(|p| p.parse().ok())
            .collect();
        let tunnel = proto.starts_with("SPDY/3.1");
        if !tunnel && ports.is_empty() {
            return text(
                StatusCode::BAD_REQUEST,
                "query parameter \"port\" is required",
            );
        }
        tokio::spawn(async move {
            let Some(ws) = ws::upgraded(on_upgrade).await else {
                return;
            };
            if tunnel {
                spdy_session(target, ws::tunnel(ws)).await;
            } else {
                websocket_session(target, ws, ports).await;
            }
        });
        return ws::accept(&req, proto);
    }
    let offered = super::header_values(&req, "x-stream-protocol-version");
    let Some(proto) = negotiate(&offered, SPDY_PROTOCOLS) else {
        return text(
            StatusCode::FORBIDDEN,
            format!(
                "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server supports {SPDY_PROTOCOLS:?}"
            ),
        );
    };
    tokio::spawn(async move {
        if let Ok(up) = on_upgrade.await {
            spdy_session(target, hyper_util::rt::TokioIo::new(up)).await;
        }
    });
    super::remotecommand::spdy_upgrade_response(proto)
}

/// Pairs each request's error and data streams and forwards them.
async fn spdy_session<S>(target: Arc<Target>, io: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (_conn, mut incoming) = Connection::new(io, true);
    let mut pending: HashMap<String, (Option<spdy::Stream>, Option<spdy::Stream>)> = HashMap::new();
    while let Some(s) = incoming.recv().await {
        s.reply(vec![]);
        let rid = spdy::header(&s.headers, "requestID")
            .unwrap_or("")
            .to_string();
        let kind = spdy::header(&s.headers, "streamType")
            .unwrap_or("")
            .to_string();
        let entry = pending.entry(rid.clone()).or_default();
        match kind.as_str() {
            "error" => entry.0 = Some(s),
            "data" => entry.1 = Some(s),
            _ => continue,
        }
        if entry.0.is_some() && entry.1.is_some() {
            let (Some(err), Some(data)) = pending.remove(&rid).unwrap_or_default() else {
                continue;
            };
            let port = spdy::header(&data.headers, "port").and_then(|p| p.parse::<u16>().ok());
            let t = target.clone();
            tokio::spawn(async move {
                let Some(port) = port else {
                    let w = err.writer();
                    let _ = w.write(Bytes::from_static(b"invalid port"));
                    w.close();
                    return;
                };
                forward_spdy(t, port, data, err).await;
            });
        }
    }
}

async fn forward_spdy(t: Arc<Target>, port: u16, data: spdy::Stream, err: spdy::Stream) {
    let (conn, task) = t.connect(port);
    let (mut r, mut w) = tokio::io::split(conn);
    let (mut rx, dw) = data.split();
    let up = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if w.write_all(&b).await.is_err() {
                break;
            }
        }
        let _ = w.shutdown().await;
    });
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if dw.write(Bytes::copy_from_slice(&buf[..n])).is_err() {
                    break;
                }
            }
        }
    }
    dw.close();
    up.abort();
    let ew = err.writer();
    if let Ok(Some(msg)) = task.await {
        let _ = ew.write(Bytes::from(msg));
    }
    ew.close();
}

/// The channel protocol: every requested port connected once for the session.
async fn websocket_session(target: Arc<Target>, ws: ws::Ws, ports: Vec<u16>) {
    let (mut sink, stream) = ws.split();
    let (out_tx, mut out_rx) = mpsc::channel::<(u8, Bytes)>(64);
    let writer = tokio::spawn(async move {
        while let Some((ch, data)) = out_rx.recv().await {
            let mut m = BytesMut::with_capacity(data.len() + 1);
            m.put_u8(ch);
            m.put_slice(&data);
            if sink.send(Message::Binary(m.freeze())).await.is_err() {
                return;
            }
        }
        let _ = sink.send(super::ws::normal_close()).await;
    });
    let mut inputs: Vec<mpsc::Sender<Bytes>> = Vec::new();
    let mut tasks = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let (data_ch, err_ch) = ((2 * i) as u8, (2 * i + 1) as u8);
        let port_bytes = Bytes::copy_from_slice(&port.to_le_bytes());
        let _ = out_tx.send((data_ch, port_bytes.clone())).await;
        let _ = out_tx.send((err_ch, port_bytes)).await;
        let (conn, task) = target.connect(*port);
        let (mut r, mut w) = tokio::io::split(conn);
        let (in_tx, mut in_rx) = mpsc::channel::<Bytes>(16);
        inputs.push(in_tx);
        tokio::spawn(async move {
            while let Some(b) = in_rx.recv().await {
                if w.write_all(&b).await.is_err() {
                    break;
                }
            }
            let _ = w.shutdown().await;
        });
        let out = out_tx.clone();
        tasks.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if out
                            .send((data_ch, Bytes::copy_from_slice(&buf[..n])))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
            if let Ok(Some(msg)) = task.await {
                let _ = out.send((err_ch, Bytes::from(msg))).await;
            }
        }));
    }
    drop(out_tx);
    let reader = tokio::spawn(async move {
        let mut incoming = std::pin::pin!(ws::incoming_data(stream));
        while let Some(data) = incoming.next().await {
            if data.is_empty() || data[0] % 2 == 1 {
                continue;
            }
            let idx = (data[0] / 2) as usize;
            if let Some(tx) = inputs.get(idx) {
                let _ = tx.send(data.slice(1..)).await;
            }
        }
    });
    for t in tasks {
        let _ = t.await;
    }
    reader.abort();
    let _ = writer.await;
}
