//! Resources that are answered, not stored: access reviews (answered by the server's real
//! authorizer), `SelfSubjectReview` (`kubectl auth whoami`), `TokenReview`, the legacy
//! `bindings` collection and `componentstatuses`.

use std::sync::Arc;

use bytes::Bytes;
use ferrokube_api::ApiError;
use http::{Response, StatusCode};
use serde_json::{Value, json};

use crate::ApiServer;
use crate::authn::UserInfo;
use crate::handlers::{Call, decode_body};
use crate::request::ResourceRequest;
use crate::response::{self, Body};

/// The authorizer of this server: every authenticated user may do everything (RBAC comes with
/// a later issue), anonymous users nothing.
pub fn authorize(user: &UserInfo) -> (bool, &'static str) {
    if user.groups.iter().any(|g| g == "system:authenticated") {
        (true, "")
    } else {
        (false, "anonymous requests are not authorized")
    }
}

pub async fn handle(
    srv: &Arc<ApiServer>,
    call: &Call,
    rr: &ResourceRequest,
    body: Bytes,
) -> Result<Response<Body>, ApiError> {
    let info = rr.info;
    match (info.group, info.resource, rr.verb) {
        ("", "componentstatuses", "list" | "get") => component_statuses(srv, rr).await,
        ("", "bindings", "create") => {
            let b = decode_body(&call.headers, &body)?;
            let pod = crate::object::name(&b).to_string();
            let node = b
                .pointer("/target/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let mut ctx = crate::registry::WriteCtx::system("kube-scheduler");
            ctx.user = call.user.clone().unwrap_or_default();
            srv.registry
                .bind_pod(&mut ctx, &rr.namespace, &pod, &node, None, None)
                .await?;
            Ok(response::json_value(
                StatusCode::CREATED,
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
            ))
        }
        (_, _, "create") => {
            let mut review = decode_body(&call.headers, &body)?;
            let user = call.user.clone().unwrap_or_default();
            review["apiVersion"] = json!(info.api_version());
            review["kind"] = json!(info.kind);
            if !review["metadata"].is_object() {
                review["metadata"] = json!({});
            }
            review["metadata"]["creationTimestamp"] = Value::Null;
            match info.resource {
                "selfsubjectaccessreviews"
                | "subjectaccessreviews"
                | "localsubjectaccessreviews" => {
                    let subject = if info.resource == "selfsubjectaccessreviews" {
                        user
                    } else {
                        UserInfo {
                            name: review
                                .pointer("/spec/user")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_string(),
                            uid: String::new(),
                            groups: review
                                .pointer("/spec/groups")
                                .and_then(Value::as_array)
                                .map(|a| {
                                    a.iter()
                                        .filter_map(|g| g.as_str().map(String::from))
                                        .collect()
                                })
                                .unwrap_or_default(),
                        }
                    };
                    let (allowed, reason) = authorize(&subject);
                    let mut status = json!({"allowed": allowed});
                    if !reason.is_empty() {
                        status["reason"] = json!(reason);
                    }
                    review["status"] = status;
                }
                "selfsubjectrulesreviews" => {
                    let (allowed, _) = authorize(&user);
                    let rules = if allowed {
                        json!({"resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                               "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}], "incomplete": false})
                    } else {
                        json!({"resourceRules": [], "nonResourceRules": [], "incomplete": false})
                    };
                    review["status"] = rules;
                }
                "selfsubjectreviews" => {
                    review["status"] =
                        json!({"userInfo": {"username": user.name, "groups": user.groups}});
                }
                "tokenreviews" => {
                    // Bearer tokens come with service accounts and bootstrap tokens; until then no
                    // token authenticates.
                    review["status"] = json!({"authenticated": false, "user": {},
                        "error": "token authentication is not enabled on this server"});
                }
                _ => {
                    return Err(ApiError::method_not_supported(
                        info.group,
                        info.resource,
                        rr.verb,
                    ));
                }
            }
            Ok(response::json_value(StatusCode::CREATED, &review))
        }
        _ => Err(ApiError::method_not_supported(
            info.group,
            info.resource,
            rr.verb,
        )),
    }
}

async fn component_statuses(
    srv: &Arc<ApiServer>,
    rr: &ResourceRequest,
) -> Result<Response<Body>, ApiError> {
    let store_ok = srv.store.current_revision().await;
    let item = |name: &str, healthy: bool, message: &str| {
        json!({"kind": "ComponentStatus", "apiVersion": "v1",
               "metadata": {"name": name, "creationTimestamp": null},
               "conditions": [{"type": "Healthy", "status": if healthy { "True" } else { "False" },
                               "message": message, "error": if healthy { Value::Null } else { json!(message) }}]})
    };
    let etcd = match &store_ok {
        Ok(_) => item("etcd-0", true, "ok"),
        Err(e) => item("etcd-0", false, &e.to_string()),
    };
    if !rr.name.is_empty() {
        return if rr.name == "etcd-0" {
            Ok(response::json_value(StatusCode::OK, &etcd))
        } else {
            Err(ApiError::not_found("", "componentstatuses", &rr.name))
        };
    }
    Ok(response::json_value(
        StatusCode::OK,
        &json!({"kind": "ComponentStatusList", "apiVersion": "v1", "metadata": {}, "items": [etcd]}),
    ))
}
