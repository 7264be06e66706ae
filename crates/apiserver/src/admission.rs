//! Admission: the built-in plugins that run on every write after defaulting and before
//! validation. `NamespaceLifecycle` refuses content in namespaces that are missing or being
//! deleted and protects the system namespaces.

use ferrokube_api::ApiError;
use ferrokube_api::resources::ResourceInfo;
use serde_json::Value;

use crate::object;
use crate::registry::{Registry, WriteCtx};

/// Namespaces that may never be deleted.
const IMMORTAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

pub async fn admit_create(
    reg: &Registry,
    _ctx: &mut WriteCtx,
    info: &ResourceInfo,
    obj: &mut Value,
) -> Result<(), ApiError> {
    namespace_lifecycle(reg, info, object::namespace(obj), object::name(obj)).await
}

pub async fn admit_update(
    _reg: &Registry,
    _ctx: &mut WriteCtx,
    _info: &ResourceInfo,
    _new: &mut Value,
    _old: &Value,
) -> Result<(), ApiError> {
    Ok(())
}

pub fn admit_delete(_reg: &Registry, info: &ResourceInfo, obj: &Value) -> Result<(), ApiError> {
    if info.resource == "namespaces" && info.group.is_empty() {
        let name = object::name(obj);
        if IMMORTAL_NAMESPACES.contains(&name) {
            return Err(ApiError::forbidden(
                "",
                "namespaces",
                name,
                "this namespace may not be deleted",
            ));
        }
    }
    Ok(())
}

/// Creating namespaced content needs a live namespace that is not terminating.
async fn namespace_lifecycle(
    reg: &Registry,
    info: &ResourceInfo,
    ns: &str,
    name: &str,
) -> Result<(), ApiError> {
    if !info.namespaced || ns.is_empty() {
        return Ok(());
    }
    let Some(nsobj) = reg.namespace_object(ns).await? else {
        return Err(ApiError::not_found("", "namespaces", ns));
    };
    let terminating = object::deletion_timestamp(&nsobj).is_some()
        || nsobj.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating");
    // Events about a namespace's teardown are still allowed, as upstream allows them.
    if terminating && (info.resource != "events") {
        return Err(ApiError::forbidden(
            info.group,
            info.resource,
            name,
            &format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ),
        )
        .with_cause(
            "NamespaceTerminating",
            &format!("namespace {ns} is being terminated"),
            "metadata.namespace",
        ));
    }
    Ok(())
}
