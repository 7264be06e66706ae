//! Serving the OpenAPI documents over HTTP as kube-openapi's handlers do: ETags, `Vary`,
//! immutable caching for hashed URLs, 301 for stale hashes, 304, and gzip when accepted.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};

use crate::openapi;
use crate::response::{self, Body};

fn accepts_gzip(h: &HeaderMap) -> bool {
    h.get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|e| e.trim().split(';').next() == Some("gzip"))
        })
}

fn etag_matches(h: &HeaderMap, etag: &str) -> bool {
    h.get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().trim_matches('"') == etag))
}

fn respond(
    h: &HeaderMap,
    content_type: &str,
    etag: &str,
    plain: impl FnOnce() -> Bytes,
    gz: impl FnOnce() -> Bytes,
) -> Response<Body> {
    if etag_matches(h, etag) {
        let mut r = Response::new(response::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r.headers_mut().insert(header::ETAG, quoted(etag));
        return r;
    }
    let gzip = accepts_gzip(h);
    let mut r = Response::new(response::full(if gzip { gz() } else { plain() }));
    let hs = r.headers_mut();
    hs.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/json")),
    );
    hs.insert(header::ETAG, quoted(etag));
    hs.insert(header::VARY, HeaderValue::from_static("Accept"));
    if gzip {
        hs.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    r
}

fn quoted(etag: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{etag}\"")).unwrap_or(HeaderValue::from_static("\"\""))
}

/// Answers `/openapi/v2`, `/openapi/v3` and `/openapi/v3/<path>`, or None for other paths.
/// Building a document family the first time costs ~100 ms of CPU: done off the async threads.
pub async fn serve(
    path: &str,
    query: &crate::request::Query,
    h: &HeaderMap,
) -> Option<Response<Body>> {
    let path = path.to_string();
    let hash = query.get("hash").map(String::from);
    let h = h.clone();
    tokio::task::spawn_blocking(move || serve_blocking(&path, hash.as_deref(), &h))
        .await
        .ok()
        .flatten()
}

fn serve_blocking(path: &str, hash: Option<&str>, h: &HeaderMap) -> Option<Response<Body>> {
    match path {
        "/openapi/v2" | "/openapi/v2/" | "/swagger.json" => {
            let accept = h
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let Some(fmt) = openapi::v2_negotiate(accept) else {
                return Some(response::error_response(
                    &ferrokube_api::ApiError::not_acceptable(
                        "only the following media types are accepted: application/json, application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                    ),
                ));
            };
            let etag = openapi::v2_etag();
            Some(respond(
                h,
                fmt.content_type(),
                &etag,
                || fmt.body(),
                || fmt.body_gzip(),
            ))
        }
        "/openapi/v3" | "/openapi/v3/" => {
            let index = openapi::v3_index();
            let etag = openapi::etag(&index);
            let mut r = respond(
                h,
                "application/json",
                &etag,
                || index.clone(),
                || gzip(&index),
            );
            if r.status() == StatusCode::OK && !accepts_gzip(h) {
                r.headers_mut().remove(header::CONTENT_ENCODING);
            }
            Some(r)
        }
        p if p.starts_with("/openapi/v3/") => {
            let doc_path = p.trim_start_matches("/openapi/v3/").trim_end_matches('/');
            let (_, etag) = openapi::v3_document_gzip(doc_path)?;
            if let Some(hq) = hash
                && hq != etag
            {
                let mut r = Response::new(response::empty());
                *r.status_mut() = StatusCode::MOVED_PERMANENTLY;
                let loc = format!("/openapi/v3/{doc_path}?hash={etag}");
                r.headers_mut()
                    .insert(header::LOCATION, HeaderValue::from_str(&loc).ok()?);
                return Some(r);
            }
            let mut r = respond(
                h,
                "application/json",
                &etag,
                || {
                    openapi::v3_document(doc_path)
                        .map(|(b, _)| b)
                        .unwrap_or_default()
                },
                || {
                    openapi::v3_document_gzip(doc_path)
                        .map(|(b, _)| b)
                        .unwrap_or_default()
                },
            );
            if hash.is_some() && r.status() == StatusCode::OK {
                r.headers_mut().insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, immutable"),
                );
            }
            Some(r)
        }
        _ => None,
    }
}

fn gzip(data: &[u8]) -> Bytes {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = e.write_all(data);
    Bytes::from(e.finish().unwrap_or_default())
}
