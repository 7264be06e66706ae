//! exec and attach for clients: the `v4.channel.k8s.io` protocol over SPDY (one stream per
//! channel, opened by the client) and the channel protocols over WebSocket (`v5` and `v4`: one
//! binary message per chunk, its first byte the channel: 0 stdin, 1 stdout, 2 stderr, 3 error,
//! 4 resize; v5 adds 255 to close a channel). The command's end is reported on the error channel
//! as a Status, with `NonZeroExitCode` carrying the exit code.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::spdy::{self, Connection};
use super::{Body, Query, full, negotiate, text, ws};
use crate::cri::{StreamIo, StreamOutcome, TerminalSize, api};
use crate::kubelet::Kubelet;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Exec,
    Attach,
}

const SPDY_PROTOCOLS: &[&str] = &["v4.channel.k8s.io"];
const WS_PROTOCOLS: &[&str] = &["v5.channel.k8s.io", "v4.channel.k8s.io"];

/// What the client asked to have.
#[derive(Clone, Debug)]
struct Options {
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
    command: Vec<String>,
}

/// The Status JSON written on the error channel when the session ends.
pub fn status_json(outcome: &StreamOutcome, command: &[String]) -> Vec<u8> {
    let v = match outcome {
        StreamOutcome::Exited(0) => serde_json::json!({"metadata": {}, "status": "Success"}),
        StreamOutcome::Exited(code) => serde_json::json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("command terminated with non-zero exit code: error executing command {command:?}, exit code {code}"),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}
        }),
        StreamOutcome::Failed(msg) => serde_json::json!({
            "metadata": {},
            "status": "Failure",
            "message": msg,
            "reason": "InternalError",
            "code": 500
        }),
    };
    serde_json::to_vec(&v).unwrap_or_default()
}

/// Handles an exec or attach request: checks it, answers the upgrade, runs the session.
pub async fn handle(
    kubelet: Arc<Kubelet>,
    mut req: Request<Incoming>,
    kind: Kind,
    ns: String,
    pod: String,
    container: String,
    q: Query,
) -> Response<Body> {
    let tty = q.flag("tty");
    let opts = Options {
        stdin: q.flag("stdin") || q.flag("input"),
        stdout: q.flag("stdout") || q.flag("output"),
        stderr: (q.flag("stderr") || q.flag("error")) && !tty,
        tty,
        command: q.all("command"),
    };
    if kind == Kind::Exec && opts.command.is_empty() {
        return text(
            StatusCode::BAD_REQUEST,
            "you must specify at least one command for the container",
        );
    }
    if !opts.stdin && !opts.stdout && !opts.stderr {
        return text(
            StatusCode::BAD_REQUEST,
            "you must specify at least 1 of stdin, stdout, stderr",
        );
    }
    let info = match super::find_container(&kubelet, &ns, &pod, &container, false).await {
        Ok(i) if i.running() => i,
        Ok(_) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("container not found ({container:?})"),
            );
        }
        Err((code, msg)) => return text(code, msg),
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let runner = Runner {
        kubelet,
        kind,
        container_id: info.id,
        opts: opts.clone(),
    };
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
        let v5 = proto.starts_with("v5");
        tokio::spawn(async move {
            if let Some(ws) = ws::upgraded(on_upgrade).await {
                runner.websocket(ws, v5).await;
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
            runner.spdy(hyper_util::rt::TokioIo::new(up)).await;
        }
    });
    spdy_upgrade_response(proto)
}

/// The 101 answer to a SPDY upgrade.
pub fn spdy_upgrade_response(proto: &str) -> Response<Body> {
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    if let Ok(v) = HeaderValue::from_str(proto) {
        h.insert("x-stream-protocol-version", v);
    }
    r
}

struct Runner {
    kubelet: Arc<Kubelet>,
    kind: Kind,
    container_id: String,
    opts: Options,
}

impl Runner {
    async fn run(&self, io: StreamIo) -> StreamOutcome {
        let rt = self.kubelet.runtime().clone();
        let o = &self.opts;
        let result = match self.kind {
            Kind::Exec => {
                rt.exec(
                    api::ExecRequest {
                        container_id: self.container_id.clone(),
                        cmd: o.command.clone(),
                        tty: o.tty,
                        stdin: o.stdin,
                        stdout: o.stdout,
                        stderr: o.stderr,
                    },
                    io,
                )
                .await
            }
            Kind::Attach => {
                rt.attach(
                    api::AttachRequest {
                        container_id: self.container_id.clone(),
                        stdin: o.stdin,
                        tty: o.tty,
                        stdout: o.stdout,
                        stderr: o.stderr,
                    },
                    io,
                )
                .await
            }
        };
        result.unwrap_or_else(|e| StreamOutcome::Failed(e.message()))
    }

    /// The SPDY side: wait for the client's streams, then run.
    async fn spdy<S>(self, io: S)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
    {
        let (conn, mut incoming) = Connection::new(io, true);
        let o = &self.opts;
        let expected =
            1 + o.stdin as usize + o.stdout as usize + o.stderr as usize + o.tty as usize;
        let mut streams: Vec<spdy::Stream> = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while streams.len() < expected {
            match tokio::time::timeout_at(deadline, incoming.recv()).await {
                Ok(Some(s)) => {
                    s.reply(vec![]);
                    streams.push(s);
                }
                _ => {
                    tracing::debug!("exec: the client did not open its streams");
                    conn.close();
                    return;
                }
            }
        }
        let mut by_type = std::collections::HashMap::new();
        for s in streams {
            let t = spdy::header(&s.headers, "streamType")
                .unwrap_or("")
                .to_string();
            by_type.insert(t, s);
        }
        let Some(error) = by_type.remove("error") else {
            conn.close();
            return;
        };
        let mut io = StreamIo::default();
        let mut pumps = Vec::new();
        if let Some(s) = by_type.remove("stdin") {
            let (tx, rx) = mpsc::channel(16);
            io.stdin = Some(rx);
            let (mut data, _w) = s.split();
            tokio::spawn(async move {
                while let Some(b) = data.recv().await {
                    if tx.send(b).await.is_err() {
                        return;
                    }
                }
            });
        }
        for (name, slot) in [("stdout", &mut io.stdout), ("stderr", &mut io.stderr)] {
            if let Some(s) = by_type.remove(name) {
                let (tx, mut rx) = mpsc::channel::<Bytes>(16);
                *slot = Some(tx);
                let w = s.writer();
                pumps.push(tokio::spawn(async move {
                    while let Some(b) = rx.recv().await {
                        if w.write(b).is_err() {
                            break;
                        }
                    }
                    w.close();
                }));
            }
        }
        if let Some(s) = by_type.remove("resize") {
            let (tx, rx) = mpsc::channel(4);
            io.resize = Some(rx);
            let (mut data, _w) = s.split();
            tokio::spawn(async move {
                let mut buf = BytesMut::new();
                while let Some(b) = data.recv().await {
                    buf.extend_from_slice(&b);
                    // Sizes arrive as concatenated JSON objects.
                    let mut de =
                        serde_json::Deserializer::from_slice(&buf).into_iter::<TerminalSize>();
                    let mut consumed = 0;
                    while let Some(Ok(size)) = de.next() {
                        consumed = de.byte_offset();
                        if tx.send(size).await.is_err() {
                            return;
                        }
                    }
                    let _ = buf.split_to(consumed);
                }
            });
        }
        let outcome = self.run(io).await;
        for p in pumps {
            let _ = tokio::time::timeout(Duration::from_secs(5), p).await;
        }
        let w = error.writer();
        let _ = w.write(Bytes::from(status_json(&outcome, &self.opts.command)));
        w.close();
        // Let the frames drain before the connection goes.
        tokio::time::sleep(Duration::from_millis(50)).await;
        conn.close();
    }

    /// The WebSocket side: channels in binary messages.
    async fn websocket(self, ws: ws::Ws, v5: bool) {
        let (mut sink, stream) = ws.split();
        let (out_tx, mut out_rx) = mpsc::channel::<(u8, Bytes)>(32);
        let writer = tokio::spawn(async move {
            while let Some((ch, data)) = out_rx.recv().await {
                let mut m = BytesMut::with_capacity(data.len() + 1);
                m.put_u8(ch);
                m.put_slice(&data);
                if sink.send(Message::Binary(m.freeze())).await.is_err() {
                    return;
                }
            }
            let _ = sink.send(ws::normal_close()).await;
        });
        let mut io = StreamIo::default();
        let (stdin_tx, stdin_rx) = mpsc::channel::<Bytes>(16);
        if self.opts.stdin {
            io.stdin = Some(stdin_rx);
        }
        let (resize_tx, resize_rx) = mpsc::channel(4);
        if self.opts.tty {
            io.resize = Some(resize_rx);
        }
        let mut pumps = Vec::new();
        for (ch, enabled, slot) in [
            (1u8, self.opts.stdout, &mut io.stdout),
            (2u8, self.opts.stderr, &mut io.stderr),
        ] {
            if !enabled {
                continue;
            }
            let (tx, mut rx) = mpsc::channel::<Bytes>(16);
            *slot = Some(tx);
            let out = out_tx.clone();
            pumps.push(tokio::spawn(async move {
                while let Some(b) = rx.recv().await {
                    if out.send((ch, b)).await.is_err() {
                        return;
                    }
                }
            }));
        }
        let reader = tokio::spawn(async move {
            let mut stdin = Some(stdin_tx);
            let mut incoming = std::pin::pin!(ws::incoming_data(stream));
            while let Some(data) = incoming.next().await {
                if data.is_empty() {
                    continue;
                }
                match data[0] {
                    0 => {
                        if let Some(tx) = &stdin
                            && data.len() > 1
                            && tx.send(data.slice(1..)).await.is_err()
                        {
                            stdin = None;
                        }
                    }
                    4 => {
                        if let Ok(size) = serde_json::from_slice::<TerminalSize>(&data[1..]) {
                            let _ = resize_tx.send(size).await;
                        }
                    }
                    255 if v5 && data.get(1) == Some(&0) => {
                        stdin = None;
                    }
                    _ => {}
                }
            }
        });
        let outcome = self.run(io).await;
        for p in pumps {
            let _ = tokio::time::timeout(Duration::from_secs(5), p).await;
        }
        let _ = out_tx
            .send((3, Bytes::from(status_json(&outcome, &self.opts.command))))
            .await;
        drop(out_tx);
        let _ = writer.await;
        reader.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_carry_exit_codes_as_upstream_does() {
        let ok: serde_json::Value =
            serde_json::from_slice(&status_json(&StreamOutcome::Exited(0), &[])).unwrap();
        assert_eq!(ok, serde_json::json!({"metadata": {}, "status": "Success"}));
        let cmd = vec!["sh".to_string(), "-c".to_string(), "exit 3".to_string()];
        let bad: serde_json::Value =
            serde_json::from_slice(&status_json(&StreamOutcome::Exited(3), &cmd)).unwrap();
        assert_eq!(bad["reason"], "NonZeroExitCode");
        assert_eq!(
            bad["details"]["causes"][0],
            serde_json::json!({"reason": "ExitCode", "message": "3"})
        );
        // What the runtime client reads back is the same exit code.
        assert_eq!(
            super::super::spdy_client::outcome_from_status(
                &String::from_utf8(status_json(&StreamOutcome::Exited(3), &cmd)).unwrap()
            ),
            StreamOutcome::Exited(3)
        );
    }
}
