//! The client side of Kubernetes' SPDY streaming protocols, for the runtime's streaming server
//! (containerd serves exec, attach and port-forward at the URL its CRI call returns): an HTTP/1.1
//! upgrade to SPDY/3.1, then `v4.channel.k8s.io` streams for commands and
//! `portforward.k8s.io` streams for ports.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};

use super::spdy::{Connection, Headers};
use crate::cri::{Error, Result, StreamIo, StreamOutcome};

/// A stream with bytes already read in front of it (what followed the upgrade response).
pub struct Prefixed<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Prefixed<S> {
    pub fn new(prefix: Bytes, inner: S) -> Self {
        Prefixed { prefix, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            let chunk = self.prefix.split_to(n);
            buf.put_slice(&chunk);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn stream_err(e: impl std::fmt::Display) -> Error {
    Error::Stream(e.to_string())
}

/// Upgrades a plain HTTP connection to SPDY with one of `protocols`.
async fn upgrade(addr: &str, path: &str, protocol: &str) -> Result<Connection> {
    let mut tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(stream_err)?;
    let _ = tcp.set_nodelay(true);
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: {protocol}\r\nContent-Length: 0\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.map_err(stream_err)?;
    let mut buf = BytesMut::with_capacity(1024);
    let end = loop {
        if buf.len() > 64 * 1024 {
            return Err(Error::Stream("oversized upgrade response".into()));
        }
        let n = tcp.read_buf(&mut buf).await.map_err(stream_err)?;
        if n == 0 {
            return Err(Error::Stream("connection closed during upgrade".into()));
        }
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "101" {
        let body = String::from_utf8_lossy(&buf[end..]).to_string();
        return Err(Error::Stream(format!(
            "the runtime's streaming server refused the upgrade: {} {}",
            head.lines().next().unwrap_or(""),
            body.trim()
        )));
    }
    let rest = buf.split_off(end).freeze();
    let (conn, _incoming) = Connection::new(Prefixed::new(rest, tcp), false);
    Ok(conn)
}

fn h(stream_type: &str) -> Headers {
    vec![("streamType".into(), stream_type.into())]
}

/// Reads a `v4.channel.k8s.io` error stream's Status into an outcome.
pub fn outcome_from_status(text: &str) -> StreamOutcome {
    if text.trim().is_empty() {
        return StreamOutcome::Exited(0);
    }
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return StreamOutcome::Failed(text.trim().to_string());
    };
    if v["status"] == "Success" {
        return StreamOutcome::Exited(0);
    }
    if v["reason"] == "NonZeroExitCode"
        && let Some(code) = v["details"]["causes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["reason"] == "ExitCode")
            .and_then(|c| c["message"].as_str())
            .and_then(|m| m.parse().ok())
    {
        return StreamOutcome::Exited(code);
    }
    StreamOutcome::Failed(v["message"].as_str().unwrap_or(text).to_string())
}

/// Runs an exec or attach session against the runtime's streaming server.
pub async fn remote_command(
    addr: &str,
    path: &str,
    tty: bool,
    mut io: StreamIo,
) -> Result<StreamOutcome> {
    let conn = upgrade(addr, path, "v4.channel.k8s.io").await?;
    let mut error = conn.open(h("error")).await.map_err(stream_err)?;
    let mut stdin_task = None;
    if let Some(mut input) = io.stdin.take() {
        let st = conn.open(h("stdin")).await.map_err(stream_err)?;
        let w = st.writer();
        stdin_task = Some(tokio::spawn(async move {
            while let Some(b) = input.recv().await {
                if w.write(b).is_err() {
                    return;
                }
            }
            w.close();
        }));
    }
    let mut outputs = Vec::new();
    for (kind, sink) in [
        ("stdout", io.stdout.take()),
        ("stderr", if tty { None } else { io.stderr.take() }),
    ] {
        let Some(sink) = sink else { continue };
        let st = conn.open(h(kind)).await.map_err(stream_err)?;
        let (mut rx, w) = st.split();
        w.close();
        outputs.push(tokio::spawn(async move {
            while let Some(b) = rx.recv().await {
                if sink.send(b).await.is_err() {
                    return;
                }
            }
        }));
    }
    if tty && let Some(mut sizes) = io.resize.take() {
        let st = conn.open(h("resize")).await.map_err(stream_err)?;
        let w = st.writer();
        tokio::spawn(async move {
            while let Some(s) = sizes.recv().await {
                let json = serde_json::to_vec(&s).unwrap_or_default();
                if w.write(Bytes::from(json)).is_err() {
                    return;
                }
            }
        });
    }
    error.close_write();
    let mut status = Vec::new();
    while let Some(b) = error.read().await {
        status.extend_from_slice(&b);
    }
    // The command is over: its output streams end too (bounded, should the server not close
    // them); a stdin pump still waiting for input is stopped.
    for t in outputs {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), t).await;
    }
    if let Some(t) = stdin_task {
        t.abort();
    }
    conn.close();
    Ok(outcome_from_status(&String::from_utf8_lossy(&status)))
}

/// Forwards `conn` to `port` through the runtime's streaming server.
pub async fn port_forward(addr: &str, path: &str, port: u16, conn: DuplexStream) -> Result<()> {
    let spdy = upgrade(addr, path, "portforward.k8s.io").await?;
    let headers = |t: &str| -> Headers {
        vec![
            ("streamType".into(), t.into()),
            ("port".into(), port.to_string()),
            ("requestID".into(), "0".into()),
        ]
    };
    let mut error = spdy.open(headers("error")).await.map_err(stream_err)?;
    let data = spdy.open(headers("data")).await.map_err(stream_err)?;
    error.close_write();
    let (mut rx, w) = data.split();
    let (mut r, mut wr) = tokio::io::split(conn);
    let up = tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if w.write(Bytes::copy_from_slice(&buf[..n])).is_err() {
                        break;
                    }
                }
            }
        }
        w.close();
    });
    while let Some(b) = rx.recv().await {
        if wr.write_all(&b).await.is_err() {
            break;
        }
    }
    let _ = wr.shutdown().await;
    let mut msg = Vec::new();
    while let Ok(Some(b)) =
        tokio::time::timeout(std::time::Duration::from_millis(200), error.read()).await
    {
        msg.extend_from_slice(&b);
    }
    up.abort();
    spdy.close();
    if msg.is_empty() {
        Ok(())
    } else {
        Err(Error::Stream(
            String::from_utf8_lossy(&msg).trim().to_string(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_statuses_become_exit_codes() {
        assert_eq!(
            outcome_from_status(r#"{"metadata":{},"status":"Success"}"#),
            StreamOutcome::Exited(0)
        );
        assert_eq!(
            outcome_from_status(
                r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#
            ),
            StreamOutcome::Exited(3)
        );
        assert_eq!(
            outcome_from_status(r#"{"status":"Failure","message":"container not found"}"#),
            StreamOutcome::Failed("container not found".into())
        );
    }

    #[tokio::test]
    async fn prefixed_streams_yield_the_prefix_first() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut p = Prefixed::new(Bytes::from_static(b"abc"), a);
        b.write_all(b"def").await.unwrap();
        drop(b);
        let mut s = String::new();
        p.read_to_string(&mut s).await.unwrap();
        assert_eq!(s, "abcdef");
    }
}
