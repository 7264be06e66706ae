//! Admission: the built-in plugins that run on every write, in upstream's order.
//!
//! Mutating plugins run after defaulting and before validation ([`admit_create`],
//! [`admit_update`]): `NamespaceLifecycle`, `LimitRanger` (defaults), `ServiceAccount`,
//! `DefaultTolerationSeconds`, `Priority`, `DefaultStorageClass`, `StorageObjectInUseProtection`,
//! `TaintNodesByCondition`.
//! Validating plugins run after validation passed, just before the write
//! ([`validate_create`], [`validate_update`]): `LimitRanger` (min/max/ratio) and
//! `ResourceQuota`, which charges the write to the namespace's quotas.

use ferrokube_api::ApiError;
use ferrokube_api::resources::{self, ResourceInfo};
use serde_json::Value;

use crate::object;
use crate::registry::{Registry, WriteCtx};

mod limit_ranger;
mod priority;
mod resource_quota;
mod service_account;
mod storage;
mod tolerations;

/// Namespaces that may never be deleted.
const IMMORTAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

/// How the admission chain is set up.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// `--disable-admission-plugins`: upstream plugin names left out.
    pub disabled: Vec<String>,
    /// Whether the `ServiceAccount` plugin refuses pods whose service account does not exist
    /// (upstream behaviour, which needs the serviceaccount controller to create `default` in
    /// every namespace). `ferrokube server` turns it on; an API server without a controller
    /// manager (in-process tests) leaves it off and only fills in the name.
    pub verify_service_accounts: bool,
}

impl Settings {
    pub(crate) fn enabled(&self, plugin: &str) -> bool {
        !self.disabled.iter().any(|d| d == plugin)
    }
}

fn is(info: &ResourceInfo, group: &str, resource: &str) -> bool {
    info.group == group && info.resource == resource
}

pub async fn admit_create(
    reg: &Registry,
    _ctx: &mut WriteCtx,
    info: &ResourceInfo,
    obj: &mut Value,
) -> Result<(), ApiError> {
    let s = &reg.admission;
    if s.enabled("NamespaceLifecycle") {
        namespace_lifecycle(reg, info, object::namespace(obj), object::name(obj)).await?;
    }
    if is(info, "", "pods") {
        if s.enabled("LimitRanger") {
            limit_ranger::default_pod(reg, obj);
        }
        if s.enabled("ServiceAccount") {
            service_account::admit_pod(reg, obj).await?;
            service_account::mount_token(reg, obj).await?;
        }
        if s.enabled("DefaultTolerationSeconds") {
            tolerations::default_toleration_seconds(obj);
        }
        if s.enabled("Priority") {
            priority::admit_pod(reg, obj).await?;
        }
    }
    if is(info, "", "persistentvolumeclaims") {
        if s.enabled("DefaultStorageClass") {
            storage::default_storage_class(reg, obj);
        }
        if s.enabled("StorageObjectInUseProtection") {
            storage::add_finalizer(obj, storage::PVC_PROTECTION);
        }
    }
    if is(info, "", "nodes") && s.enabled("TaintNodesByCondition") {
        taint_new_node(obj);
    }
    if is(info, "", "persistentvolumes") && s.enabled("StorageObjectInUseProtection") {
        storage::add_finalizer(obj, storage::PV_PROTECTION);
    }
    Ok(())
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

/// Validating admission of a create that passed validation.
pub async fn validate_create(
    reg: &Registry,
    ctx: &WriteCtx,
    info: &ResourceInfo,
    obj: &Value,
) -> Result<(), ApiError> {
    let s = &reg.admission;
    if s.enabled("LimitRanger") {
        limit_ranger::validate(reg, info, obj, None)?;
    }
    if s.enabled("ResourceQuota") {
        resource_quota::charge(reg, ctx, info, obj, None).await?;
    }
    Ok(())
}

/// Validating admission of an update (of the main resource) that passed validation.
pub async fn validate_update(
    reg: &Registry,
    ctx: &WriteCtx,
    info: &ResourceInfo,
    new: &Value,
    old: &Value,
    subresource: &str,
) -> Result<(), ApiError> {
    let s = &reg.admission;
    if !subresource.is_empty() {
        return Ok(());
    }
    if s.enabled("LimitRanger") && is(info, "", "persistentvolumeclaims") {
        limit_ranger::validate(reg, info, new, Some(old))?;
    }
    if s.enabled("ResourceQuota") {
        resource_quota::charge(reg, ctx, info, new, Some(old)).await?;
    }
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

/// `TaintNodesByCondition`: a new Node is not ready until the node lifecycle controller has
/// seen its kubelet report, so it starts with `node.kubernetes.io/not-ready:NoSchedule`.
fn taint_new_node(node: &mut Value) {
    const NOT_READY: &str = "node.kubernetes.io/not-ready";
    if !node["spec"].is_object() {
        node["spec"] = serde_json::json!({});
    }
    let taints = node["spec"]
        .as_object_mut()
        .expect("spec is an object")
        .entry("taints")
        .or_insert_with(|| serde_json::json!([]));
    if let Some(list) = taints.as_array_mut()
        && !list.iter().any(|t| {
            t.get("key").and_then(Value::as_str) == Some(NOT_READY)
                && t.get("effect").and_then(Value::as_str) == Some("NoSchedule")
        })
    {
        list.push(serde_json::json!({"key": NOT_READY, "effect": "NoSchedule"}));
    }
}

/// Objects of a resource in a namespace, from the watch cache.
pub(crate) fn cached_in_namespace(
    reg: &Registry,
    group: &str,
    resource: &str,
    ns: &str,
) -> Vec<Value> {
    let Some(info) = resources::RESOURCES
        .iter()
        .find(|r| r.group == group && r.resource == resource && r.is_stored())
    else {
        return Vec::new();
    };
    let Some(cache) = reg.caches.for_resource(info) else {
        return Vec::new();
    };
    let prefix = info.collection_prefix(ns);
    let (_, objects) = cache.snapshot();
    objects
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(_, o)| o.value())
        .collect()
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
