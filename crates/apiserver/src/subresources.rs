//! Subresources: `status` (and the other slices of an object written on their own:
//! `namespaces/finalize`, CSR `approval`, pod `ephemeralcontainers` and `resize`), `scale`,
//! `pods/binding` and `pods/eviction`. The streaming pod subresources and node proxy go to the
//! kubelet ([`crate::kubelet_proxy`]).

use std::sync::Arc;

use bytes::Bytes;
use ferrokube_api::ApiError;
use ferrokube_api::patch::PatchType;
use ferrokube_api::resources::ResourceInfo;
use ferrokube_api::selector::LabelSelector;
use http::{Response, StatusCode};
use serde_json::{Value, json};

use crate::ApiServer;
use crate::handlers::{Call, decode_body, write_ctx as ctx};
use crate::object;
use crate::registry::DeleteOptions;
use crate::request::{self, ResourceRequest};
use crate::response::{self, Body, IncludeObject};

pub async fn handle(
    srv: &Arc<ApiServer>,
    call: &Call,
    rr: &ResourceRequest,
    body: Bytes,
) -> Result<Response<Body>, ApiError> {
    let info = rr.info;
    let sub = info
        .subresource(&rr.subresource)
        .ok_or_else(|| ApiError::not_found(info.group, info.resource, &rr.name))?;
    let verb = match (&call.method, rr.subresource.as_str()) {
        (&http::Method::GET, "exec" | "attach" | "portforward") => "get",
        _ => rr.verb,
    };
    if !sub.verbs.contains(&verb) {
        return Err(ApiError::method_not_supported(
            info.group,
            &format!("{}/{}", info.resource, rr.subresource),
            verb,
        ));
    }
    match rr.subresource.as_str() {
        "status" | "finalize" | "approval" | "ephemeralcontainers" | "resize" => {
            slice(srv, call, rr, body).await
        }
        "scale" => scale(srv, call, rr, body).await,
        "binding" => binding(srv, call, rr, body).await,
        "eviction" => eviction(srv, call, rr, body).await,
        "token" => token(srv, call, rr, body).await,
        "log" | "exec" | "attach" | "portforward" | "proxy" => {
            crate::kubelet_proxy::proxy(srv, call, rr, body).await
        }
        _ => Err(ApiError::not_found(info.group, info.resource, &rr.name)),
    }
}

/// A subresource that is a slice of the object itself.
async fn slice(
    srv: &Arc<ApiServer>,
    call: &Call,
    rr: &ResourceRequest,
    body: Bytes,
) -> Result<Response<Body>, ApiError> {
    let info = rr.info;
    let out = response::negotiate(&call.headers)?;
    match rr.verb {
        "get" => {
            let obj = srv
                .registry
                .get(
                    info,
                    &rr.namespace,
                    &rr.name,
                    request::parse_rv(call.query.get("resourceVersion"))?,
                )
                .await?;
            Ok(response::object(
                StatusCode::OK,
                info.group,
                info.resource,
                &obj,
                out,
                IncludeObject::Metadata,
            ))
        }
        "update" => {
            let mut ctx = ctx(call)?;
            let raw = decode_body(&call.headers, &body)?;
            let obj = srv.registry.decode_input(&mut ctx, info, raw, info.kind)?;
            let (o, _) = srv
                .registry
                .update(
                    &mut ctx,
                    info,
                    &rr.namespace,
                    &rr.name,
                    &rr.subresource,
                    obj,
                )
                .await?;
            Ok(response::object(
                StatusCode::OK,
                info.group,
                info.resource,
                &o,
                out,
                IncludeObject::Metadata,
            ))
        }
        "patch" => {
            let mut ctx = ctx(call)?;
            let pt = patch_type(call)?;
            let force = crate::handlers::patch_options(call, pt)?;
            let o = if pt == PatchType::Apply {
                srv.registry
                    .apply(
                        &mut ctx,
                        info,
                        &rr.namespace,
                        &rr.name,
                        &rr.subresource,
                        &body,
                        force,
                    )
                    .await?
                    .0
            } else {
                srv.registry
                    .patch(
                        &mut ctx,
                        info,
                        &rr.namespace,
                        &rr.name,
                        &rr.subresource,
                        pt,
                        &body,
                    )
                    .await?
            };
            Ok(response::object(
                StatusCode::OK,
                info.group,
                info.resource,
                &o,
                out,
                IncludeObject::Metadata,
            ))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

fn patch_type(call: &Call) -> Result<PatchType, ApiError> {
    let ct = call
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    PatchType::from_content_type(ct).ok_or_else(|| ApiError::unsupported_media_type(ct))
}

/// The `autoscaling/v1 Scale` view of a workload.
fn scale_of(info: &ResourceInfo, obj: &Value) -> Value {
    let selector = match obj.pointer("/spec/selector") {
        Some(sel) if info.resource == "replicationcontrollers" => {
            let parts: Vec<String> = sel
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect()
                })
                .unwrap_or_default();
            parts.join(",")
        }
        Some(sel) => LabelSelector::from_structured(Some(sel))
            .map(|s| s.to_string())
            .unwrap_or_default(),
        None => String::new(),
    };
    let mut meta = serde_json::Map::new();
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = object::meta(obj).and_then(|m| m.get(k)) {
            meta.insert(k.into(), v.clone());
        }
    }
    let mut status =
        json!({"replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0)});
    if !selector.is_empty() {
        status["selector"] = json!(selector);
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": meta,
        "spec": {"replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0)},
        "status": status,
    })
}

async fn scale(
    srv: &Arc<ApiServer>,
    call: &Call,
    rr: &ResourceRequest,
    body: Bytes,
) -> Result<Response<Body>, ApiError> {
    let info = rr.info;
    let mut ctx = ctx(call)?;
    // As upstream's scale storage does inside GuaranteedUpdate: each attempt applies the
    // request to the latest object and writes it on condition that the object is unchanged;
    // a write in between (a controller's status) makes it try again on the new object, unless
    // the client named a resourceVersion itself, which then has to match.
    for _ in 0..16 {
        let parent = srv
            .registry
            .get(info, &rr.namespace, &rr.name, None)
            .await?;
        let current = scale_of(info, &parent);
        let wanted = match rr.verb {
            "get" => return Ok(response::json_value(StatusCode::OK, &current)),
            "update" => decode_body(&call.headers, &body)?,
            "patch" => {
                let ty = ferrokube_api::schema::kind_type("autoscaling", "v1", "Scale");
                ferrokube_api::patch::apply(patch_type(call)?, &current, &body, ty)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?
            }
            _ => return Err(ApiError::method_not_allowed()),
        };
        let replicas = match wanted.pointer("/spec/replicas") {
            None => 0,
            Some(v) => v
                .as_i64()
                .ok_or_else(|| ApiError::bad_request("Scale.spec.replicas must be an integer"))?,
        };
        if replicas < 0 {
            return Err(ApiError::invalid(
                "autoscaling",
                "Scale",
                &rr.name,
                &[ferrokube_api::FieldError::invalid(
                    "spec.replicas",
                    replicas,
                    "must be greater than or equal to 0",
                )],
            ));
        }
        // A patch carries the current resourceVersion unless it sets one of its own.
        let asked = object::resource_version(&wanted).to_string();
        let pinned = if rr.verb == "patch" {
            asked != object::resource_version(&current)
        } else {
            !asked.is_empty()
        };
        let rv = if pinned {
            asked
        } else {
            object::resource_version(&parent).to_string()
        };
        let mut obj = parent;
        obj["spec"]["replicas"] = json!(replicas);
        object::set_meta(&mut obj, "resourceVersion", rv);
        match srv
            .registry
            .update(&mut ctx, info, &rr.namespace, &rr.name, "", obj)
            .await
        {
            Err(e) if e.reason == ferrokube_api::error::Reason::Conflict && !pinned => continue,
            r => {
                let (updated, _) = r?;
                return Ok(response::json_value(
                    StatusCode::OK,
                    &scale_of(info, &updated),
                ));
            }
        }
    }
    Err(ApiError::conflict_modified(
        info.group,
        info.resource,
        &rr.name,
    ))
}

fn success(code: u16) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code})
}

/// `serviceaccounts/token`: a TokenRequest answered with a signed token (201).
async fn token(
    srv: &Arc<ApiServer>,
    call: &Call,
    rr: &ResourceRequest,
    body: Bytes,
) -> Result<Response<Body>, ApiError> {
    let Some(signer) = srv.tokens.get() else {
        return Err(ApiError::not_found(
            rr.info.group,
            &format!("{}/token", rr.info.resource),
            &rr.name,
        ));
    };
    let req = decode_body(&call.headers, &body)?;
    let answer =
        crate::serviceaccount::token_request(signer, &srv.registry, &rr.namespace, &rr.name, req)
            .await?;
    Ok(response::json_value(StatusCode::CREATED, &answer))
}

async fn binding(
    srv: &Arc<ApiServer>,
    call: &Call,
    rr: &ResourceRequest,
    body: Bytes,
) -> Result<Response<Body>, ApiError> {
    let b = decode_body(&call.headers, &body)?;
    let target = b
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if target.is_empty() {
        return Err(ApiError::invalid(
            "",
            "Binding",
            &rr.name,
            &[ferrokube_api::FieldError::required("target.name", "")],
        ));
    }
    let target_kind = b
        .pointer("/target/kind")
        .and_then(Value::as_str)
        .unwrap_or("Node");
    if !target_kind.is_empty() && target_kind != "Node" {
        return Err(ApiError::invalid(
            "",
            "Binding",
            &rr.name,
            &[ferrokube_api::FieldError::not_supported(
                "target.kind",
                target_kind,
                &["Node", "<empty>"],
            )],
        ));
    }
    let expected_uid = b
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .map(String::from);
    let annotations = b.pointer("/metadata/annotations").cloned();
    let mut ctx = ctx(call)?;
    srv.registry
        .bind_pod(
            &mut ctx,
            &rr.namespace,
            &rr.name,
            &target,
            expected_uid.as_deref(),
            annotations.as_ref(),
        )
        .await?;
    Ok(response::json_value(StatusCode::CREATED, &success(201)))
}

async fn eviction(
    srv: &Arc<ApiServer>,
    call: &Call,
    rr: &ResourceRequest,
    body: Bytes,
) -> Result<Response<Body>, ApiError> {
    let ev = decode_body(&call.headers, &body)?;
    let body_name = object::name(&ev);
    if !body_name.is_empty() && body_name != rr.name {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Eviction object".to_string(),
        ));
    }
    let del = DeleteOptions::parse(ev.get("deleteOptions"), &call.query)?;
    let mut ctx = ctx(call)?;
    srv.registry
        .evict_pod(&mut ctx, &rr.namespace, &rr.name, &del)
        .await?;
    Ok(response::json_value(StatusCode::CREATED, &success(201)))
}
