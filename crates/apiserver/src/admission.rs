//! Admission: the built-in plugins that run on every write after defaulting and before
//! validation. `NamespaceLifecycle` refuses content in namespaces that are missing or being
//! deleted and protects the system namespaces. On create, as kube-apiserver's default plugins
//! do: `ServiceAccount` (the pod's service account and its projected token volume),
//! `DefaultTolerationSeconds`, `Priority` and `TaintNodesByCondition`.
//!
//! Not here yet, because each needs a controller this server does not run yet:
//! `StorageObjectInUseProtection` (its finalizers would keep every deleted PVC and PV
//! terminating without the pvc/pv-protection controllers), and the refusal of pods whose
//! service account does not exist (there is no service account controller creating
//! `default` in every namespace): such pods are admitted without a token volume.

use ferrokube_api::ApiError;
use ferrokube_api::resources::ResourceInfo;
use serde_json::{Value, json};

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
    namespace_lifecycle(reg, info, object::namespace(obj), object::name(obj)).await?;
    match (info.group, info.resource) {
        ("", "pods") => {
            service_account(reg, obj).await?;
            default_toleration_seconds(obj);
            priority(reg, obj).await?;
        }
        ("", "nodes") => taint_nodes_by_condition(obj),
        _ => {}
    }
    Ok(())
}

/// `ServiceAccount` admission: the pod runs as `default` unless it names an account, and when
/// the account exists and automounting is on, every container gets the projected
/// `kube-api-access-xxxxx` volume (token, cluster CA, namespace) mounted read-only.
async fn service_account(reg: &Registry, pod: &mut Value) -> Result<(), ApiError> {
    if pod
        .pointer("/metadata/annotations/kubernetes.io~1config.mirror")
        .is_some()
    {
        return Ok(());
    }
    let ns = object::namespace(pod).to_string();
    let mut name = pod
        .pointer("/spec/serviceAccountName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if name.is_empty() {
        name = "default".into();
    }
    pod["spec"]["serviceAccountName"] = json!(name);
    pod["spec"]["serviceAccount"] = json!(name);
    let Some(sa) = reg
        .live_object("", "v1", "serviceaccounts", &ns, &name)
        .await?
    else {
        return Ok(());
    };
    let automount = pod
        .pointer("/spec/automountServiceAccountToken")
        .and_then(Value::as_bool)
        .or_else(|| {
            sa.get("automountServiceAccountToken")
                .and_then(Value::as_bool)
        })
        .unwrap_or(true);
    if !automount {
        return Ok(());
    }
    const MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
    let mounted = |c: &Value| {
        c.get("volumeMounts")
            .and_then(Value::as_array)
            .is_some_and(|ms| ms.iter().any(|m| m["mountPath"] == MOUNT))
    };
    let volume = format!(
        "kube-api-access-{}",
        &crate::registry::generate_name("")[..5]
    );
    let mut added = false;
    for list in ["initContainers", "containers"] {
        if let Some(cs) = pod["spec"].get_mut(list).and_then(Value::as_array_mut) {
            for c in cs.iter_mut().filter(|c| !mounted(c)) {
                if !c["volumeMounts"].is_array() {
                    c["volumeMounts"] = json!([]);
                }
                if let Some(ms) = c["volumeMounts"].as_array_mut() {
                    ms.push(json!({"name": volume, "readOnly": true, "mountPath": MOUNT}));
                    added = true;
                }
            }
        }
    }
    if added {
        if !pod["spec"]["volumes"].is_array() {
            pod["spec"]["volumes"] = json!([]);
        }
        if let Some(vs) = pod["spec"]["volumes"].as_array_mut() {
            vs.push(json!({"name": volume, "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
            ]}}));
        }
    }
    Ok(())
}

/// `DefaultTolerationSeconds`: pods tolerate a not-ready or unreachable node for 300 s.
fn default_toleration_seconds(pod: &mut Value) {
    let tolerations: Vec<Value> = pod
        .pointer("/spec/tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let tolerates = |key: &str| {
        tolerations.iter().any(|t| {
            let k = t.get("key").and_then(Value::as_str).unwrap_or("");
            let e = t.get("effect").and_then(Value::as_str).unwrap_or("");
            (k == key || k.is_empty()) && (e == "NoExecute" || e.is_empty())
        })
    };
    let mut add = Vec::new();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        if !tolerates(key) {
            add.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
        }
    }
    if add.is_empty() {
        return;
    }
    if !pod["spec"]["tolerations"].is_array() {
        pod["spec"]["tolerations"] = json!([]);
    }
    if let Some(ts) = pod["spec"]["tolerations"].as_array_mut() {
        ts.extend(add);
    }
}

/// The PriorityClasses every cluster has.
const SYSTEM_PRIORITY_CLASSES: &[(&str, i64)] = &[
    ("system-node-critical", 2_000_001_000),
    ("system-cluster-critical", 2_000_000_000),
];

/// `Priority`: the pod's priority and preemption policy from its PriorityClass (or the global
/// default class, or 0 and PreemptLowerPriority).
async fn priority(reg: &Registry, pod: &mut Value) -> Result<(), ApiError> {
    let class_name = pod
        .pointer("/spec/priorityClassName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let pod_name = object::name(pod).to_string();
    let (value, policy) = if class_name.is_empty() {
        let classes = reg
            .live_objects("scheduling.k8s.io", "v1", "priorityclasses", "")
            .await?;
        let default = classes
            .iter()
            .filter(|c| c.get("globalDefault").and_then(Value::as_bool) == Some(true))
            .min_by_key(|c| c.get("value").and_then(Value::as_i64).unwrap_or(0));
        match default {
            Some(c) => {
                pod["spec"]["priorityClassName"] = json!(object::name(c));
                (
                    c.get("value").and_then(Value::as_i64).unwrap_or(0),
                    c.get("preemptionPolicy")
                        .and_then(Value::as_str)
                        .map(String::from),
                )
            }
            None => (0, None),
        }
    } else {
        let stored = reg
            .live_object(
                "scheduling.k8s.io",
                "v1",
                "priorityclasses",
                "",
                &class_name,
            )
            .await?;
        match stored {
            Some(c) => (
                c.get("value").and_then(Value::as_i64).unwrap_or(0),
                c.get("preemptionPolicy")
                    .and_then(Value::as_str)
                    .map(String::from),
            ),
            None => match SYSTEM_PRIORITY_CLASSES
                .iter()
                .find(|(n, _)| *n == class_name)
            {
                Some((_, v)) => (*v, None),
                None => {
                    return Err(ApiError::forbidden(
                        "",
                        "pods",
                        &pod_name,
                        &format!("no PriorityClass with name {class_name} was found"),
                    ));
                }
            },
        }
    };
    if let Some(given) = pod.pointer("/spec/priority").and_then(Value::as_i64)
        && given != value
    {
        return Err(ApiError::forbidden(
            "",
            "pods",
            &pod_name,
            &format!(
                "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {value} from the given PriorityClass name"
            ),
        ));
    }
    pod["spec"]["priority"] = json!(value);
    if pod.pointer("/spec/preemptionPolicy").is_none() {
        pod["spec"]["preemptionPolicy"] =
            json!(policy.unwrap_or_else(|| "PreemptLowerPriority".into()));
    }
    Ok(())
}

/// `TaintNodesByCondition`: a new node is not ready until its kubelet says so.
fn taint_nodes_by_condition(node: &mut Value) {
    const KEY: &str = "node.kubernetes.io/not-ready";
    let has = node
        .pointer("/spec/taints")
        .and_then(Value::as_array)
        .is_some_and(|ts| {
            ts.iter()
                .any(|t| t["key"] == KEY && t["effect"] == "NoSchedule")
        });
    if has {
        return;
    }
    if !node["spec"].is_object() {
        node["spec"] = json!({});
    }
    if !node["spec"]["taints"].is_array() {
        node["spec"]["taints"] = json!([]);
    }
    if let Some(ts) = node["spec"]["taints"].as_array_mut() {
        ts.push(json!({"key": KEY, "effect": "NoSchedule"}));
    }
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
