//! HTTP handlers: one entry point that authenticates, routes and answers every request, for
//! TLS connections and for the in-process transport alike.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use ferrokube_api::ApiError;
use ferrokube_api::patch::PatchType;
use ferrokube_api::printers;
use ferrokube_api::resources::ResourceInfo;
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::Body as HttpBody;
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::ApiServer;
use crate::authn::UserInfo;
use crate::cache::{EventType, Filter, WatchItem};
use crate::conversion;
use crate::registry::{DeleteOptions, Deleted, WriteCtx};
use crate::request::{self, ListOptions, Query, ResourceRequest, Route};
use crate::response::{self, Body, IncludeObject, Output};

/// Upstream's default limit on request bodies.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Paths anyone may read, as upstream's `system:public-info-viewer` allows.
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/livez" | "/readyz" | "/version" | "/version/"
    ) || path.starts_with("/healthz/")
        || path.starts_with("/livez/")
        || path.starts_with("/readyz/")
}

/// Everything a handler needs from the request besides its body.
pub struct Call {
    pub method: Method,
    pub path: String,
    pub query: Query,
    pub headers: HeaderMap,
    pub user: Option<UserInfo>,
}

/// Handles one request.
pub async fn handle<B>(
    srv: Arc<ApiServer>,
    req: Request<B>,
    user: Option<UserInfo>,
) -> Response<Body>
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    // Bearer tokens: service account tokens this server issued. A token that does not verify
    // is refused outright, as upstream's authenticator chain refuses it.
    let mut user = user;
    if user.is_none()
        && let Some(token) = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
    {
        user = match srv.tokens.get() {
            Some(signer) => crate::serviceaccount::authenticate(signer, &srv.registry, token).await,
            None => None,
        };
        if user.is_none() && !is_public(parts.uri.path()) {
            return response::error_response(&ApiError::unauthorized());
        }
    }
    let call = Call {
        method: parts.method.clone(),
        path: parts.uri.path().to_string(),
        query: Query::parse(parts.uri.query()),
        headers: parts.headers,
        user,
    };
    let (resp, verb, resource) = dispatch(&srv, &call, body).await;
    srv.metrics
        .observe_request(verb, resource, resp.status().as_u16(), started.elapsed());
    resp
}

async fn read_body<B>(body: B) -> Result<Bytes, ApiError>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let limited = http_body_util::Limited::new(body, MAX_BODY_BYTES);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(ApiError::request_entity_too_large(format!(
                    "Request entity too large: limit is {MAX_BODY_BYTES}"
                )))
            } else {
                Err(ApiError::bad_request(format!(
                    "error reading the request body: {e}"
                )))
            }
        }
    }
}

fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Decodes a request body by its Content-Type: JSON (also when absent), YAML or protobuf.
pub fn decode_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match ct.as_str() {
        "" | "application/json" | "*/*" | "text/plain" => {
            serde_json::from_slice(body).map_err(|e| {
                ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
            })
        }
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            serde_yaml::from_slice::<Value>(body).map_err(|e| {
                ApiError::bad_request(format!("error converting YAML to JSON: yaml: {e}"))
            })
        }
        "application/vnd.kubernetes.protobuf" => ferrokube_api::protobuf::decode_object(body)
            .map_err(|e| ApiError::bad_request(e.to_string())),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

async fn dispatch<B>(
    srv: &Arc<ApiServer>,
    call: &Call,
    body: B,
) -> (Response<Body>, &'static str, &'static str)
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let path = call.path.as_str();
    if call.user.is_none() && !is_public(path) {
        return (response::error_response(&ApiError::unauthorized()), "", "");
    }
    if let Some(r) = srv.non_resource(call).await {
        return (r, "get", "");
    }
    let route = match request::route(&call.method, path, &call.query) {
        Ok(r) => r,
        Err(e) => return (response::error_response(&e), "", ""),
    };
    match route {
        Route::NotFound => (not_found_response(), "", ""),
        Route::Discovery {
            group,
            version,
            legacy,
        } => (discovery(srv, call, group, version, legacy), "get", ""),
        Route::Resource(rr) => {
            let verb = rr.verb;
            let resource = rr.info.resource;
            let resp = match resource_request(srv, call, &rr, body).await {
                Ok(r) => r,
                Err(e) => response::error_response(&e),
            };
            (resp, verb, resource)
        }
    }
}

fn not_found_response() -> Response<Body> {
    // Upstream answers unknown paths with a plain 404 page, not a Status.
    let mut r = Response::new(response::full("404 page not found\n"));
    *r.status_mut() = StatusCode::NOT_FOUND;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn discovery(
    srv: &ApiServer,
    call: &Call,
    group: Option<String>,
    version: Option<String>,
    legacy: bool,
) -> Response<Body> {
    if call.method != Method::GET && call.method != Method::HEAD {
        return response::error_response(&ApiError::method_not_allowed());
    }
    let doc = match (&group, &version) {
        (None, None) => {
            if let Some(v) = crate::discovery::wants_aggregated(&call.headers) {
                let mut r = response::json_response(
                    StatusCode::OK,
                    crate::discovery::aggregated(legacy, v),
                );
                let ct = format!(
                    "application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList"
                );
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_str(&ct).expect("valid header"),
                );
                r.headers_mut()
                    .insert(header::VARY, HeaderValue::from_static("Accept"));
                return r;
            }
            if legacy {
                Some(crate::discovery::api_versions(
                    &srv.config.advertise_address,
                ))
            } else {
                Some(crate::discovery::group_list())
            }
        }
        (None, Some(v)) if legacy => crate::discovery::resource_list("", v),
        (Some(g), None) => crate::discovery::group(g),
        (Some(g), Some(v)) => crate::discovery::resource_list(g, v),
        _ => None,
    };
    match doc {
        Some(d) => response::json_response(StatusCode::OK, d),
        None => not_found_response(),
    }
}

pub(crate) fn write_ctx(call: &Call) -> Result<WriteCtx, ApiError> {
    let manager = match call.query.get("fieldManager") {
        Some(m) if !m.is_empty() => {
            if m.len() > 128 {
                return Err(ApiError::invalid(
                    "",
                    "",
                    "",
                    &[ferrokube_api::FieldError::too_long("fieldManager", 128)],
                ));
            }
            m.to_string()
        }
        _ => ferrokube_api::managed_fields::manager_from_user_agent(
            call.headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""),
        ),
    };
    Ok(WriteCtx {
        user: call.user.clone().unwrap_or_default(),
        dry_run: request::dry_run(&call.query)?,
        field_manager: manager,
        field_validation: request::field_validation(&call.query)?,
        warnings: Vec::new(),
        applying: false,
        body_scan: None,
    })
}

fn with_warnings(mut r: Response<Body>, warnings: &[String]) -> Response<Body> {
    for w in warnings {
        let v = format!("299 - {}", ferrokube_api::error::go_quote(w));
        if let Ok(h) = HeaderValue::from_str(&v) {
            r.headers_mut().append(header::WARNING, h);
        }
    }
    r
}

async fn resource_request<B>(
    srv: &Arc<ApiServer>,
    call: &Call,
    rr: &ResourceRequest,
    body: B,
) -> Result<Response<Body>, ApiError>
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let info = rr.info;
    if !rr.subresource.is_empty() {
        return crate::subresources::handle(srv, call, rr, read_body(body).await?).await;
    }
    if !info.is_stored() {
        return crate::reviews::handle(srv, call, rr, read_body(body).await?).await;
    }
    let out = response::negotiate(&call.headers)?;
    let include = IncludeObject::parse(call.query.get("includeObject"))?;
    if !info.allows(rr.verb) {
        return Err(ApiError::method_not_supported(
            info.group,
            info.resource,
            rr.verb,
        ));
    }
    match rr.verb {
        "get" => {
            let rv = request::parse_rv(call.query.get("resourceVersion"))?;
            let obj = srv.registry.get(info, &rr.namespace, &rr.name, rv).await?;
            Ok(response::object(
                StatusCode::OK,
                info.group,
                info.resource,
                &obj,
                out,
                include,
            ))
        }
        "list" => list(srv, call, rr, out, include).await,
        "watch" => watch(srv, call, rr, out, include).await,
        "create" => {
            let mut ctx = write_ctx(call)?;
            let bytes = read_body(body).await?;
            let raw = decode_body(&call.headers, &bytes)?;
            ctx.body_scan = crate::registry::BodyScan::of_body(content_type(&call.headers), &bytes);
            let obj = srv.registry.decode_input(&mut ctx, info, raw, info.kind)?;
            let created = srv
                .registry
                .create(&mut ctx, info, &rr.namespace, obj)
                .await?;
            Ok(with_warnings(
                response::object(
                    StatusCode::CREATED,
                    info.group,
                    info.resource,
                    &created,
                    out,
                    include,
                ),
                &ctx.warnings,
            ))
        }
        "update" => {
            let mut ctx = write_ctx(call)?;
            let bytes = read_body(body).await?;
            let raw = decode_body(&call.headers, &bytes)?;
            ctx.body_scan = crate::registry::BodyScan::of_body(content_type(&call.headers), &bytes);
            let obj = srv.registry.decode_input(&mut ctx, info, raw, info.kind)?;
            let (updated, created) = srv
                .registry
                .update(&mut ctx, info, &rr.namespace, &rr.name, "", obj)
                .await?;
            let code = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(with_warnings(
                response::object(code, info.group, info.resource, &updated, out, include),
                &ctx.warnings,
            ))
        }
        "patch" => {
            let mut ctx = write_ctx(call)?;
            let patch_type = patch_type(&call.headers)?;
            let force = patch_options(call, patch_type)?;
            let raw = read_body(body).await?;
            let (patched, created) = if patch_type == PatchType::Apply {
                srv.registry
                    .apply(&mut ctx, info, &rr.namespace, &rr.name, "", &raw, force)
                    .await?
            } else {
                let p = srv
                    .registry
                    .patch(
                        &mut ctx,
                        info,
                        &rr.namespace,
                        &rr.name,
                        "",
                        patch_type,
                        &raw,
                    )
                    .await?;
                (p, false)
            };
            Ok(with_warnings(
                response::object(
                    if created {
                        StatusCode::CREATED
                    } else {
                        StatusCode::OK
                    },
                    info.group,
                    info.resource,
                    &patched,
                    out,
                    include,
                ),
                &ctx.warnings,
            ))
        }
        "delete" => {
            let mut ctx = write_ctx(call)?;
            let raw = read_body(body).await?;
            let opts_body = if raw.iter().all(u8::is_ascii_whitespace) {
                None
            } else {
                Some(decode_body(&call.headers, &raw)?)
            };
            let opts = DeleteOptions::parse(opts_body.as_ref(), &call.query)?;
            ctx.dry_run |= opts_body
                .as_ref()
                .and_then(|b| b.get("dryRun"))
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|v| v == "All"));
            match srv
                .registry
                .delete(&mut ctx, info, &rr.namespace, &rr.name, &opts)
                .await?
            {
                Deleted::Pending(obj) => Ok(response::object(
                    StatusCode::OK,
                    info.group,
                    info.resource,
                    &obj,
                    out,
                    include,
                )),
                Deleted::Now(obj) => {
                    if crate::strategy::returns_deleted_object(info) {
                        Ok(response::object(
                            StatusCode::OK,
                            info.group,
                            info.resource,
                            &obj,
                            out,
                            include,
                        ))
                    } else {
                        Ok(response::json_value(
                            StatusCode::OK,
                            &success_status(info, &obj),
                        ))
                    }
                }
            }
        }
        "deletecollection" => delete_collection(srv, call, rr, body).await,
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// The `Status` a completed delete answers with for kinds that do not return the object.
pub fn success_status(info: &ResourceInfo, obj: &Value) -> Value {
    let mut details = json!({"name": crate::object::name(obj), "kind": info.resource, "uid": crate::object::uid(obj)});
    if !info.group.is_empty() {
        details["group"] = json!(info.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

/// Checks `PatchOptions` as upstream's `ValidatePatchOptions` does and returns `force`.
pub(crate) fn patch_options(call: &Call, patch_type: PatchType) -> Result<bool, ApiError> {
    use ferrokube_api::FieldError;
    let force = match call.query.get("force") {
        None => None,
        Some("true" | "1") => Some(true),
        Some("false" | "0" | "") => Some(false),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "invalid value for force: {other:?}"
            )));
        }
    };
    let mut errs = Vec::new();
    if patch_type != PatchType::Apply {
        if force.is_some() {
            errs.push(FieldError::forbidden(
                "force",
                "may not be specified for non-apply patch",
            ));
        }
    } else if call.query.get("fieldManager").unwrap_or("").is_empty() {
        errs.push(FieldError::required(
            "fieldManager",
            "is required for apply patch",
        ));
    }
    if !errs.is_empty() {
        return Err(ApiError::invalid("meta.k8s.io", "PatchOptions", "", &errs));
    }
    Ok(force.unwrap_or(false))
}

pub(crate) fn patch_type(headers: &HeaderMap) -> Result<PatchType, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    PatchType::from_content_type(ct).ok_or_else(|| {
        ApiError::new(
            415,
            ferrokube_api::error::Reason::UnsupportedMediaType,
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json".to_string(),
        )
    })
}

fn list_filter(rr: &ResourceRequest, opts: &ListOptions) -> Filter {
    Filter {
        namespace: rr.namespace.clone(),
        name: opts
            .field_selector
            .required_value("metadata.name")
            .map(String::from),
        labels: opts.label_selector.clone(),
        fields: opts.field_selector.clone(),
    }
}

/// Renders an object of the storage version in `info`'s version (JSON bytes).
fn view_json(info: &ResourceInfo, o: &crate::cache::CachedObject) -> Bytes {
    if conversion::needs_conversion(info) {
        Bytes::from(
            serde_json::to_vec(&conversion::from_storage(info, o.value())).unwrap_or_default(),
        )
    } else {
        o.json.clone()
    }
}

fn view_row(info: &ResourceInfo, o: &crate::cache::CachedObject) -> printers::Row {
    if conversion::needs_conversion(info) {
        printers::row(
            info.group,
            info.resource,
            &conversion::from_storage(info, o.value()),
        )
    } else {
        o.row.clone()
    }
}

async fn list(
    srv: &Arc<ApiServer>,
    call: &Call,
    rr: &ResourceRequest,
    out: Output,
    include: IncludeObject,
) -> Result<Response<Body>, ApiError> {
    let info = rr.info;
    let opts = ListOptions::parse(&call.query, info.group, info.resource)?;
    let filter = list_filter(rr, &opts);
    let res = srv.registry.list(info, &filter, &opts).await?;
    let rv = res.revision.to_string();
    let mut buf = BytesMut::with_capacity(256 + res.items.len() * 1024);
    match out {
        Output::Table { v1beta1 } => {
            response::table_head(
                &mut buf,
                v1beta1,
                &rv,
                res.continue_token.as_deref(),
                res.remaining,
                Some(printers::columns(info.group, info.resource)),
            );
            let now = ferrokube_api::time::now();
            for (i, o) in res.items.iter().enumerate() {
                if i > 0 {
                    buf.put_u8(b',');
                }
                let row = view_row(info, o);
                let json = if include == IncludeObject::Object {
                    view_json(info, o)
                } else {
                    Bytes::new()
                };
                response::write_row(&mut buf, &row, now, include, &o.meta, &json, v1beta1);
            }
            buf.put_slice(b"]}");
        }
        _ => {
            let partial = matches!(out, Output::PartialMetadata { .. });
            let (kind, api_version) = match out {
                Output::PartialMetadata { v1beta1 } => (
                    "PartialObjectMetadataList".to_string(),
                    if v1beta1 {
                        "meta.k8s.io/v1beta1"
                    } else {
                        "meta.k8s.io/v1"
                    }
                    .to_string(),
                ),
                _ => (info.list_kind(), info.api_version()),
            };
            let mut meta = serde_json::Map::new();
            meta.insert("resourceVersion".into(), json!(rv));
            if let Some(c) = &res.continue_token {
                meta.insert("continue".into(), json!(c));
            }
            if let Some(r) = res.remaining {
                meta.insert("remainingItemCount".into(), json!(r));
            }
            buf.put_slice(
                format!("{{\"kind\":\"{kind}\",\"apiVersion\":\"{api_version}\",\"metadata\":")
                    .as_bytes(),
            );
            buf.put_slice(&serde_json::to_vec(&meta).unwrap_or_default());
            buf.put_slice(b",\"items\":[");
            for (i, o) in res.items.iter().enumerate() {
                if i > 0 {
                    buf.put_u8(b',');
                }
                if partial {
                    buf.put_slice(format!("{{\"kind\":\"PartialObjectMetadata\",\"apiVersion\":\"{api_version}\",\"metadata\":").as_bytes());
                    buf.put_slice(&o.meta);
                    buf.put_u8(b'}');
                } else {
                    buf.put_slice(&view_json(info, o));
                }
            }
            buf.put_slice(b"]}");
            if out == Output::Yaml {
                return Ok(response::encoded(StatusCode::OK, buf.freeze(), out));
            }
        }
    }
    Ok(response::json_response(StatusCode::OK, buf.freeze()))
}

async fn delete_collection<B>(
    srv: &Arc<ApiServer>,
    call: &Call,
    rr: &ResourceRequest,
    body: B,
) -> Result<Response<Body>, ApiError>
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let info = rr.info;
    let ctx = write_ctx(call)?;
    let raw = read_body(body).await?;
    let opts_body = if raw.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(decode_body(&call.headers, &raw)?)
    };
    let del = DeleteOptions::parse(opts_body.as_ref(), &call.query)?;
    let opts = ListOptions::parse(&call.query, info.group, info.resource)?;
    let filter = list_filter(rr, &opts);
    let listed = srv
        .registry
        .list(
            info,
            &filter,
            &ListOptions {
                limit: 0,
                continue_token: None,
                ..opts
            },
        )
        .await?;
    // Deleted in parallel, as upstream's DeleteCollection does with its worker pool.
    let targets: Vec<(String, String)> = listed
        .items
        .iter()
        .map(|o| (o.namespace.clone(), o.name.clone()))
        .collect();
    let futs: Vec<_> = targets
        .into_iter()
        .map(|(ns, name)| {
            let srv = srv.clone();
            let del = del.clone();
            let mut ctx = ctx.fork();
            async move { srv.registry.delete(&mut ctx, info, &ns, &name, &del).await }
        })
        .collect();
    let results: Vec<Result<Deleted, ApiError>> =
        futures::stream::iter(futs).buffered(16).collect().await;
    let mut items = Vec::new();
    for r in results {
        match r {
            Ok(Deleted::Now(v) | Deleted::Pending(v)) => items.push(v),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let list = json!({"kind": info.list_kind(), "apiVersion": info.api_version(),
        "metadata": {"resourceVersion": listed.revision.to_string()}, "items": items});
    Ok(response::json_value(StatusCode::OK, &list))
}

/// Renders one watch event line.
pub(crate) fn watch_line(
    info: &ResourceInfo,
    kind: EventType,
    o: &crate::cache::CachedObject,
    out: Output,
    include: IncludeObject,
    first: &mut bool,
) -> Bytes {
    let mut buf = BytesMut::with_capacity(o.json.len() + 64);
    buf.put_slice(b"{\"type\":\"");
    buf.put_slice(kind.as_str().as_bytes());
    buf.put_slice(b"\",\"object\":");
    match out {
        Output::Table { v1beta1 } => {
            let cols = if *first {
                Some(printers::columns(info.group, info.resource))
            } else {
                None
            };
            *first = false;
            response::table_head(&mut buf, v1beta1, &o.rev.to_string(), None, None, cols);
            let json = if include == IncludeObject::Object {
                view_json(info, o)
            } else {
                Bytes::new()
            };
            response::write_row(
                &mut buf,
                &view_row(info, o),
                ferrokube_api::time::now(),
                include,
                &o.meta,
                &json,
                v1beta1,
            );
            buf.put_slice(b"]}");
        }
        Output::PartialMetadata { v1beta1 } => {
            buf.put_slice(b"{\"kind\":\"PartialObjectMetadata\",\"apiVersion\":\"meta.k8s.io/");
            buf.put_slice(if v1beta1 { b"v1beta1" } else { b"v1" });
            buf.put_slice(b"\",\"metadata\":");
            buf.put_slice(&o.meta);
            buf.put_u8(b'}');
        }
        _ => buf.put_slice(&view_json(info, o)),
    }
    buf.put_slice(b"}\n");
    buf.freeze()
}

fn bookmark_line(info: &ResourceInfo, rev: i64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rev.to_string(), "creationTimestamp": null});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let v = json!({"type": "BOOKMARK", "object": {"kind": info.kind, "apiVersion": info.api_version(), "metadata": meta}});
    let mut b = serde_json::to_vec(&v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

pub(crate) fn error_line(e: &ApiError) -> Bytes {
    let mut b =
        serde_json::to_vec(&json!({"type": "ERROR", "object": e.to_status()})).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

async fn watch(
    srv: &Arc<ApiServer>,
    call: &Call,
    rr: &ResourceRequest,
    out: Output,
    include: IncludeObject,
) -> Result<Response<Body>, ApiError> {
    let info = rr.info;
    let opts = ListOptions::parse(&call.query, info.group, info.resource)?;
    let mut filter = list_filter(rr, &opts);
    if !rr.name.is_empty() {
        filter.name = Some(rr.name.clone());
    }
    let cache = srv
        .caches
        .for_resource(info)
        .ok_or_else(|| ApiError::method_not_supported(info.group, info.resource, "watch"))?
        .clone();
    let rv = opts.rv_number()?;
    let send_initial = opts
        .send_initial_events
        .unwrap_or(matches!(rv, None | Some(0)));
    if opts.send_initial_events == Some(true) && !opts.allow_bookmarks {
        return Err(ApiError::invalid(
            "meta.k8s.io",
            "ListOptions",
            "",
            &[ferrokube_api::FieldError::forbidden(
                "allowWatchBookmarks",
                "allowWatchBookmarks must be set to true when sendInitialEvents is set to true",
            )],
        ));
    }
    // Where the stream starts: the current state (consistent unless rv=0), or after rv.
    let from = match (rv, send_initial) {
        (None, _) => {
            let cur = srv
                .store
                .current_revision()
                .await
                .map_err(ApiError::internal)?;
            srv.caches.wait_for(cur, Duration::from_secs(3)).await;
            None
        }
        (Some(0), _) => None,
        (Some(n), true) => {
            srv.caches.wait_for(n, Duration::from_secs(3)).await;
            None
        }
        (Some(n), false) => {
            if !srv.caches.wait_for(n, Duration::from_secs(3)).await {
                let mut e = ApiError::server_timeout(info.group, info.resource, "watch", 1);
                e.message = format!(
                    "Too large resource version: {n}, current: {}",
                    srv.caches.revision()
                );
                return Err(e.with_cause(
                    "ResourceVersionTooLarge",
                    "Too large resource version",
                    "",
                ));
            }
            Some(n)
        }
    };
    let timeout = opts.timeout.unwrap_or_else(|| {
        // Upstream spreads watch lifetimes between the minimum request timeout and twice it.
        let base = 1800u64;
        Duration::from_secs(base + rand::random::<u64>() % base)
    });
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let metrics = srv.metrics.clone();
    let bookmarks = opts.allow_bookmarks;
    let initial_end_bookmark = opts.send_initial_events == Some(true);
    match cache.watch(filter.clone(), from) {
        Ok((initial, start_rev, mut live)) => {
            tokio::spawn(async move {
                let _open = metrics.open_watch(info.resource);
                let deadline = tokio::time::sleep(timeout);
                tokio::pin!(deadline);
                let mut first = true;
                let mut last_rev = start_rev;
                for item in initial {
                    if let WatchItem::Event(k, o) = item {
                        last_rev = last_rev.max(o.rev);
                        if tx
                            .send(watch_line(info, k, &o, out, include, &mut first))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                }
                if initial_end_bookmark
                    && tx
                        .send(bookmark_line(info, start_rev.max(last_rev), true))
                        .await
                        .is_err()
                {
                    return;
                }
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                tick.tick().await;
                loop {
                    tokio::select! {
                        _ = &mut deadline => {
                            if bookmarks {
                                let _ = tx.send(bookmark_line(info, last_rev, false)).await;
                            }
                            return;
                        }
                        _ = tick.tick(), if bookmarks => {
                            if tx.send(bookmark_line(info, last_rev, false)).await.is_err() {
                                return;
                            }
                        }
                        _ = tx.closed() => return,
                        item = live.recv() => match item {
                            Some(WatchItem::Event(k, o)) => {
                                last_rev = o.rev;
                                if tx.send(watch_line(info, k, &o, out, include, &mut first)).await.is_err() {
                                    return;
                                }
                            }
                            Some(WatchItem::Error(e)) => {
                                let _ = tx.send(error_line(&e)).await;
                                return;
                            }
                            None => return,
                        },
                    }
                }
            });
        }
        Err(crate::cache::StartError::TooOld { .. }) => {
            // Older than the cache's history: replay from the store, which still has it
            // unless compacted.
            let Some(n) = rv else {
                return Err(ApiError::internal("watch from the store needs a revision"));
            };
            let store = srv.store.clone();
            let prefix = info.collection_prefix(&filter.namespace);
            tokio::spawn(async move {
                let _open = metrics.open_watch(info.resource);
                crate::watch_store::run(store, info, prefix, n, filter, tx, timeout, out, include)
                    .await;
            });
        }
    }
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let body = http_body_util::StreamBody::new(futures::StreamExt::map(stream, |b| {
        Ok::<_, std::convert::Infallible>(http_body::Frame::data(b))
    }));
    let mut r = Response::new(BodyExt::boxed(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(r)
}
