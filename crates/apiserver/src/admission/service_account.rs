//! `ServiceAccount`: a pod without a service account runs as `default` (with the deprecated
//! `spec.serviceAccount` mirrored), and — when the server verifies service accounts — a pod
//! naming an account that does not exist is refused, as upstream refuses it.

use std::time::Duration;

use ferrokube_api::ApiError;
use ferrokube_api::resources;
use rand::Rng;
use serde_json::{Value, json};

use crate::object;
use crate::registry::Registry;

const DEFAULT: &str = "default";
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

pub async fn admit_pod(reg: &Registry, pod: &mut Value) -> Result<(), ApiError> {
    let mirror = pod
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .is_some_and(|a| a.contains_key(MIRROR_ANNOTATION));
    if mirror {
        return Ok(());
    }
    if !pod["spec"].is_object() {
        pod["spec"] = json!({});
    }
    let name = match pod
        .pointer("/spec/serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        Some(n) => n.to_string(),
        None => DEFAULT.to_string(),
    };
    pod["spec"]["serviceAccountName"] = json!(name);
    pod["spec"]["serviceAccount"] = json!(name);
    if !reg.admission.verify_service_accounts {
        return Ok(());
    }
    let ns = object::namespace(pod).to_string();
    if exists(reg, &ns, &name).await? {
        return Ok(());
    }
    Err(ApiError::forbidden(
        "",
        "pods",
        object::name(pod),
        &format!(
            "error looking up service account {ns}/{name}: serviceaccount {} not found",
            ferrokube_api::error::go_quote(&name)
        ),
    ))
}

/// Cache first, then the store; the `default` account is looked for ten times over a second
/// or two, since the serviceaccount controller creates it just after its namespace.
async fn exists(reg: &Registry, ns: &str, name: &str) -> Result<bool, ApiError> {
    let info =
        resources::find("", "v1", "serviceaccounts").expect("serviceaccounts are registered");
    let key = info.key(ns, name);
    if reg
        .caches
        .for_resource(info)
        .is_some_and(|c| c.get(&key).is_some())
    {
        return Ok(true);
    }
    let attempts = if name == DEFAULT { 10 } else { 1 };
    let pause = Duration::from_millis(rand::rng().random_range(100..200));
    for i in 0..attempts {
        if i > 0 {
            tokio::time::sleep(pause).await;
        }
        match reg.store.get(&key, 0).await {
            Ok((_, Some(_))) => return Ok(true),
            Ok((_, None)) => {}
            Err(e) => return Err(ApiError::internal(e)),
        }
    }
    Ok(false)
}

/// Mounts the projected `kube-api-access-xxxxx` volume (token, cluster CA, namespace) into
/// every container when the account exists and automounting is on, as upstream does.
pub async fn mount_token(reg: &Registry, pod: &mut Value) -> Result<(), ApiError> {
    if pod
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .is_some_and(|a| a.contains_key(MIRROR_ANNOTATION))
    {
        return Ok(());
    }
    let ns = object::namespace(pod).to_string();
    let name = pod
        .pointer("/spec/serviceAccountName")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT)
        .to_string();
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
