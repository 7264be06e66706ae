//! Content negotiation and response bodies: JSON, YAML, `meta.k8s.io` Tables and
//! PartialObjectMetadata, and the one place errors become `Status` responses.

use std::convert::Infallible;

use bytes::{BufMut, Bytes, BytesMut};
use ferrokube_api::ApiError;
use ferrokube_api::printers::{self, Column, Row};
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use jiff::Timestamp;
use serde_json::{Value, json};

pub type Body = BoxBody<Bytes, Infallible>;

pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

/// What the client asked to receive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Json,
    Yaml,
    /// `as=Table` at meta.k8s.io `v1` or `v1beta1`.
    Table {
        v1beta1: bool,
    },
    /// `as=PartialObjectMetadata` / `PartialObjectMetadataList`.
    PartialMetadata {
        v1beta1: bool,
    },
}

/// Picks the first representation the client accepts that the server can produce; 406 when
/// none (upstream's wording).
pub fn negotiate(headers: &HeaderMap) -> Result<Output, ApiError> {
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    if accept.trim().is_empty() {
        return Ok(Output::Json);
    }
    for clause in accept.split(',') {
        let mut parts = clause.split(';').map(str::trim);
        let mime = parts.next().unwrap_or("").to_ascii_lowercase();
        let mut as_ = "";
        let mut g = "";
        let mut v = "";
        for p in parts {
            if let Some((k, val)) = p.split_once('=') {
                match k.trim() {
                    "as" => as_ = val.trim(),
                    "g" => g = val.trim(),
                    "v" => v = val.trim(),
                    _ => {}
                }
            }
        }
        let json_like = matches!(mime.as_str(), "application/json" | "*/*" | "application/*");
        if !as_.is_empty() {
            if !json_like || g != "meta.k8s.io" || !(v == "v1" || v == "v1beta1") {
                continue;
            }
            match as_ {
                "Table" => {
                    return Ok(Output::Table {
                        v1beta1: v == "v1beta1",
                    });
                }
                "PartialObjectMetadata" | "PartialObjectMetadataList" => {
                    return Ok(Output::PartialMetadata {
                        v1beta1: v == "v1beta1",
                    });
                }
                _ => continue,
            }
        }
        match mime.as_str() {
            "application/json"
            | "*/*"
            | "application/*"
            | "application/json-patch+json"
            | "application/merge-patch+json" => return Ok(Output::Json),
            "application/yaml" | "application/x-yaml" | "text/yaml" => return Ok(Output::Yaml),
            _ => {}
        }
    }
    Err(ApiError::not_acceptable(
        "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf",
    ))
}

/// `includeObject` of Table requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(s: Option<&str>) -> Result<Self, ApiError> {
        match s.unwrap_or("") {
            "" | "Metadata" => Ok(IncludeObject::Metadata),
            "None" => Ok(IncludeObject::None),
            "Object" => Ok(IncludeObject::Object),
            other => Err(ApiError::bad_request(format!(
                "includeObject: Unsupported value: {other:?}: supported values: \"Metadata\", \"None\", \"Object\""
            ))),
        }
    }
}

/// The JSON response with a status code.
pub fn json_response(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

pub fn json_value(status: StatusCode, v: &Value) -> Response<Body> {
    json_response(status, serde_json::to_vec(v).unwrap_or_default())
}

/// Encodes a JSON body in the negotiated plain representation (JSON or YAML).
pub fn encoded(status: StatusCode, json: Bytes, out: Output) -> Response<Body> {
    if out == Output::Yaml {
        let yaml = serde_json::from_slice::<Value>(&json)
            .ok()
            .and_then(|v| serde_yaml::to_string(&v).ok())
            .unwrap_or_default();
        let mut r = Response::new(full(yaml));
        *r.status_mut() = status;
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/yaml"),
        );
        return r;
    }
    json_response(status, json)
}

/// The one place an error becomes a response.
pub fn error_response(e: &ApiError) -> Response<Body> {
    let mut r = json_value(
        StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &e.to_status(),
    );
    if let Some(s) = e.retry_after_seconds {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    r
}

/// Column definitions in a Table.
pub fn column_json(cols: &[Column]) -> Value {
    Value::Array(
        cols.iter()
            .map(|c| {
                json!({
                    "name": c.name, "type": c.type_, "format": c.format,
                    "description": c.description, "priority": c.priority,
                })
            })
            .collect(),
    )
}

/// One table row's JSON: cells rendered at `now`, plus the row object.
pub fn write_row(
    buf: &mut BytesMut,
    row: &Row,
    now: Timestamp,
    include: IncludeObject,
    meta: &[u8],
    obj: &[u8],
    v1beta1: bool,
) {
    buf.put_slice(b"{\"cells\":");
    buf.put_slice(&serde_json::to_vec(&row.render_cells(now)).unwrap_or_default());
    if !row.conditions.is_empty() {
        let conds: Vec<Value> = row.conditions.iter().map(|c| c.render()).collect();
        buf.put_slice(b",\"conditions\":");
        buf.put_slice(&serde_json::to_vec(&conds).unwrap_or_default());
    }
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            buf.put_slice(
                b",\"object\":{\"kind\":\"PartialObjectMetadata\",\"apiVersion\":\"meta.k8s.io/",
            );
            buf.put_slice(if v1beta1 { b"v1beta1" } else { b"v1" });
            buf.put_slice(b"\",\"metadata\":");
            buf.put_slice(meta);
            buf.put_slice(b"}");
        }
        IncludeObject::Object => {
            buf.put_slice(b",\"object\":");
            buf.put_slice(obj);
        }
    }
    buf.put_slice(b"}");
}

/// The opening of a Table up to its rows array.
pub fn table_head(
    buf: &mut BytesMut,
    v1beta1: bool,
    rv: &str,
    cont: Option<&str>,
    remaining: Option<i64>,
    cols: Option<&[Column]>,
) {
    buf.put_slice(b"{\"kind\":\"Table\",\"apiVersion\":\"meta.k8s.io/");
    buf.put_slice(if v1beta1 { b"v1beta1" } else { b"v1" });
    buf.put_slice(b"\",\"metadata\":");
    let mut meta = serde_json::Map::new();
    if !rv.is_empty() {
        meta.insert("resourceVersion".into(), json!(rv));
    }
    if let Some(c) = cont {
        meta.insert("continue".into(), json!(c));
    }
    if let Some(r) = remaining {
        meta.insert("remainingItemCount".into(), json!(r));
    }
    buf.put_slice(&serde_json::to_vec(&meta).unwrap_or_default());
    buf.put_slice(b",\"columnDefinitions\":");
    match cols {
        Some(cols) => buf.put_slice(&serde_json::to_vec(&column_json(cols)).unwrap_or_default()),
        None => buf.put_slice(b"[]"),
    }
    buf.put_slice(b",\"rows\":[");
}

/// A Table of one object (get, create, update responses).
pub fn single_table(
    group: &str,
    resource: &str,
    obj: &Value,
    include: IncludeObject,
    v1beta1: bool,
) -> Bytes {
    let row = printers::row(group, resource, obj);
    let meta = serde_json::to_vec(obj.get("metadata").unwrap_or(&Value::Null)).unwrap_or_default();
    let json = serde_json::to_vec(obj).unwrap_or_default();
    let rv = obj
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut buf = BytesMut::new();
    table_head(
        &mut buf,
        v1beta1,
        rv,
        None,
        None,
        Some(printers::columns(group, resource)),
    );
    write_row(
        &mut buf,
        &row,
        ferrokube_api::time::now(),
        include,
        &meta,
        &json,
        v1beta1,
    );
    buf.put_slice(b"]}");
    buf.freeze()
}

/// `PartialObjectMetadata` of one object.
pub fn partial_metadata(obj: &Value, v1beta1: bool) -> Bytes {
    let v = json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": if v1beta1 { "meta.k8s.io/v1beta1" } else { "meta.k8s.io/v1" },
        "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
    });
    Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
}

/// Renders an object in the negotiated form.
pub fn object(
    status: StatusCode,
    group: &str,
    resource: &str,
    obj: &Value,
    out: Output,
    include: IncludeObject,
) -> Response<Body> {
    match out {
        Output::Table { v1beta1 } => {
            json_response(status, single_table(group, resource, obj, include, v1beta1))
        }
        Output::PartialMetadata { v1beta1 } => {
            json_response(status, partial_metadata(obj, v1beta1))
        }
        _ => encoded(
            status,
            Bytes::from(serde_json::to_vec(obj).unwrap_or_default()),
            out,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(s: &str) -> Result<Output, ApiError> {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(s).unwrap());
        negotiate(&h)
    }

    #[test]
    fn kubectl_get_asks_for_a_table() {
        assert_eq!(
            accept("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json").unwrap(),
            Output::Table { v1beta1: false }
        );
        assert_eq!(
            accept("application/vnd.kubernetes.protobuf, application/json").unwrap(),
            Output::Json
        );
        assert_eq!(accept("application/yaml").unwrap(), Output::Yaml);
        assert_eq!(
            accept("application/vnd.kubernetes.protobuf")
                .unwrap_err()
                .code,
            406
        );
    }
}
