//! Raw HTTP/2 connections over TLS with the kubeconfig's client certificate: the bench measures
//! the server, so the client side stays as thin as possible.

use std::time::Duration;

use bytes::Bytes;
use ferrokube_client::Connection;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;

use crate::{Error, Result};

#[derive(Clone)]
pub struct H2 {
    send: SendRequest<Full<Bytes>>,
    authority: String,
}

pub async fn connect(c: &Connection) -> Result<H2> {
    let server = c.server.to_string();
    let err = |m: String| Error::Connect {
        server: server.clone(),
        message: m,
    };
    let host = c
        .server
        .host()
        .ok_or_else(|| err("no host in server URL".into()))?
        .trim_matches(['[', ']'])
        .to_string();
    let port = c.server.port_u16().unwrap_or(443);
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| err(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let name = ServerName::try_from(host.clone()).map_err(|e| err(e.to_string()))?;
    let tls = tokio_rustls::TlsConnector::from(c.tls.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| err(e.to_string()))?;
    let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(8 << 20)
        .initial_connection_window_size(16 << 20)
        .handshake(TokioIo::new(tls))
        .await
        .map_err(|e| err(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(H2 {
        send,
        authority: format!("{host}:{port}"),
    })
}

impl H2 {
    pub fn request(
        &self,
        method: Method,
        path: &str,
        accept: &str,
        body: Option<Bytes>,
    ) -> Request<Full<Bytes>> {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("https://{}{}", self.authority, path))
            .header("accept", accept)
            .header("user-agent", "ferrokube-bench");
        if body.is_some() {
            b = b.header("content-type", "application/json");
        }
        b.body(Full::new(body.unwrap_or_default()))
            .expect("valid request")
    }

    /// Sends a request and reads the whole answer.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        accept: &str,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes)> {
        let what = format!("{method} {path}");
        let mut send = self.send.clone();
        send.ready().await.map_err(|e| Error::Request {
            what: what.clone(),
            message: e.to_string(),
        })?;
        let resp = tokio::time::timeout(
            Duration::from_secs(300),
            send.send_request(self.request(method, path, accept, body)),
        )
        .await
        .map_err(|_| Error::Request {
            what: what.clone(),
            message: "timed out".into(),
        })?
        .map_err(|e| Error::Request {
            what: what.clone(),
            message: e.to_string(),
        })?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| Error::Request {
                what: what.clone(),
                message: e.to_string(),
            })?
            .to_bytes();
        Ok((status, body))
    }

    /// Like `call`, but a non-2xx answer is an error.
    pub async fn ok(&self, method: Method, path: &str, body: Option<Bytes>) -> Result<Bytes> {
        let what = format!("{method} {path}");
        let (status, body) = self.call(method, path, "application/json", body).await?;
        if !status.is_success() {
            return Err(Error::Api {
                what,
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        Ok(body)
    }

    /// Starts a streaming GET and returns the response body once headers arrived.
    pub async fn stream(&self, path: &str) -> Result<hyper::body::Incoming> {
        let what = format!("GET {path}");
        let mut send = self.send.clone();
        send.ready().await.map_err(|e| Error::Request {
            what: what.clone(),
            message: e.to_string(),
        })?;
        let resp = send
            .send_request(self.request(Method::GET, path, "application/json", None))
            .await
            .map_err(|e| Error::Request {
                what: what.clone(),
                message: e.to_string(),
            })?;
        if !resp.status().is_success() {
            return Err(Error::Api {
                what,
                status: resp.status().as_u16(),
                body: String::new(),
            });
        }
        Ok(resp.into_body())
    }
}
