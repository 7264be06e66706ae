//! WebSocket plumbing: accepting the upgrade on a hyper request, and turning a WebSocket into a
//! plain byte stream (kubectl 1.31+ tunnels SPDY through binary messages).

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::{Body, full};

pub type Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// The protocols the client offers in `Sec-WebSocket-Protocol`.
pub fn offered(req: &Request<Incoming>) -> Vec<String> {
    super::header_values(req, "sec-websocket-protocol")
}

/// The 101 answer accepting a WebSocket with `protocol`.
pub fn accept(req: &Request<Incoming>, protocol: &str) -> Response<Body> {
    let key = req
        .headers()
        .get("sec-websocket-key")
        .map(|k| k.as_bytes().to_vec())
        .unwrap_or_default();
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) =
        HeaderValue::from_str(&tokio_tungstenite::tungstenite::handshake::derive_accept_key(&key))
    {
        h.insert("sec-websocket-accept", v);
    }
    if !protocol.is_empty()
        && let Ok(v) = HeaderValue::from_str(protocol)
    {
        h.insert("sec-websocket-protocol", v);
    }
    r
}

/// The WebSocket once hyper hands the connection over.
pub async fn upgraded(on: hyper::upgrade::OnUpgrade) -> Option<Ws> {
    let up = on.await.ok()?;
    Some(WebSocketStream::from_raw_socket(TokioIo::new(up), Role::Server, None).await)
}

/// The data of a client's messages until it closes the WebSocket or the connection fails:
/// binary and text messages alike (clients may send a channel's data as text, as the Python
/// client does for str data, and upstream reads both the same way); control messages skipped.
pub fn incoming_data(
    stream: futures::stream::SplitStream<Ws>,
) -> impl futures::Stream<Item = Bytes> {
    stream
        .take_while(|m| std::future::ready(matches!(m, Ok(m) if !m.is_close())))
        .filter_map(|m| {
            std::future::ready(match m {
                Ok(Message::Binary(b)) => Some(b),
                Ok(Message::Text(t)) => Some(Bytes::copy_from_slice(t.as_bytes())),
                _ => None,
            })
        })
}

/// Bridges a WebSocket's binary messages to a byte stream: what is written to the returned end
/// goes out as binary messages, what arrives comes out of it.
pub fn tunnel(ws: Ws) -> DuplexStream {
    let (ours, theirs) = tokio::io::duplex(256 * 1024);
    let (mut sink, stream) = ws.split();
    let (mut r, mut w) = tokio::io::split(theirs);
    tokio::spawn(async move {
        let mut incoming = std::pin::pin!(incoming_data(stream));
        while let Some(b) = incoming.next().await {
            if w.write_all(&b).await.is_err() {
                break;
            }
        }
        let _ = w.shutdown().await;
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sink
                        .send(Message::Binary(Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        let _ = sink.send(normal_close()).await;
    });
    ours
}

/// A close frame with status 1000: client-go treats any other end (even a close frame without a
/// status) as an error of the streams still open.
pub fn normal_close() -> Message {
    Message::Close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
        code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Normal,
        reason: "".into(),
    }))
}
