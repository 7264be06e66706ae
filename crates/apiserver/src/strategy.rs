//! Per-kind rules of the generic registry, as upstream's `RESTCreateStrategy` /
//! `RESTUpdateStrategy` / `RESTDeleteStrategy` implementations define them: what create resets,
//! how the main resource and its status subresource split an update, which kinds may be created
//! by an update, how pods are deleted gracefully, and what a completed delete returns.

use ferrokube_api::resources::ResourceInfo;
use serde_json::{Value, json};

use crate::object;

/// Resets what a client may not set on create: the status, to what upstream's
/// (pods and namespaces: see `ferrokube_api::defaults::prepare_for_create`)
/// `PrepareForCreate` leaves (Go marshals the zero value of each status struct, so empty
/// statuses of workloads still carry their non-omitempty counters).
pub fn prepare_for_create(info: &ResourceInfo, obj: &mut Value, now: &str) {
    let Some(o) = obj.as_object_mut() else { return };
    let status = match (info.group, info.resource) {
        ("", "services") | ("networking.k8s.io", "ingresses") => json!({"loadBalancer": {}}),
        ("", "persistentvolumes") => json!({"phase": "Pending", "lastPhaseTransitionTime": now}),
        ("", "persistentvolumeclaims") => json!({"phase": "Pending"}),
        ("", "replicationcontrollers") | ("apps", "replicasets") => json!({"replicas": 0}),
        ("apps", "statefulsets") => json!({"availableReplicas": 0, "replicas": 0}),
        ("apps", "daemonsets") => json!({
            "currentNumberScheduled": 0, "desiredNumberScheduled": 0,
            "numberMisscheduled": 0, "numberReady": 0,
        }),
        ("autoscaling", "horizontalpodautoscalers") => json!({"desiredReplicas": 0}),
        ("policy", "poddisruptionbudgets") => json!({
            "currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0,
        }),
        ("apps", "deployments")
        | ("batch", "jobs" | "cronjobs")
        | ("", "resourcequotas")
        | ("certificates.k8s.io", "certificatesigningrequests") => json!({}),
        _ => return,
    };
    o.insert("status".into(), status);
}

/// Splits an update between the main resource and a subresource: an update of the main
/// resource keeps the stored status; an update of `status` keeps everything but the status.
pub fn prepare_for_update(info: &ResourceInfo, new: &mut Value, old: &Value, subresource: &str) {
    let keep_only = |new: &mut Value, pointer: &str| {
        let mut merged = old.clone();
        match new.pointer(pointer).cloned() {
            Some(v) => {
                if let Some(slot) = pointer_parent_insert(&mut merged, pointer) {
                    *slot = v;
                }
            }
            None => remove_pointer(&mut merged, pointer),
        }
        if let Some(rv) = new.pointer("/metadata/resourceVersion").cloned() {
            merged["metadata"]["resourceVersion"] = rv;
        }
        *new = merged;
    };
    match subresource {
        "finalize" => return keep_only(new, "/spec/finalizers"),
        "approval" => return keep_only(new, "/status/conditions"),
        "ephemeralcontainers" => return keep_only(new, "/spec/ephemeralContainers"),
        "resize" => {
            // Only container resources may change through resize.
            let wanted = new.pointer("/spec/containers").cloned();
            let mut merged = old.clone();
            if let (Some(Value::Array(w)), Some(Value::Array(cs))) = (
                wanted,
                merged.pointer_mut("/spec/containers").map(|v| v.take()),
            ) {
                let mut cs = cs;
                for c in cs.iter_mut() {
                    if let Some(src) = w.iter().find(|x| x.get("name") == c.get("name"))
                        && let Some(r) = src.get("resources")
                    {
                        c["resources"] = r.clone();
                    }
                }
                merged["spec"]["containers"] = Value::Array(cs);
            }
            if let Some(rv) = new.pointer("/metadata/resourceVersion").cloned() {
                merged["metadata"]["resourceVersion"] = rv;
            }
            *new = merged;
            return;
        }
        _ => {}
    }
    match subresource {
        "status" => {
            let status = new.get("status").cloned();
            let mut merged = old.clone();
            if let Some(o) = merged.as_object_mut() {
                match status {
                    Some(s) => {
                        o.insert("status".into(), s);
                    }
                    None => {
                        o.remove("status");
                    }
                }
            }
            // Status writers may still change labels, annotations and ownership on some kinds;
            // upstream resets metadata for status updates of every kind we serve.
            if let (Some(m), Some(nm)) = (merged.get_mut("metadata"), new.get("metadata"))
                && let Some(rv) = nm.get("resourceVersion")
            {
                m["resourceVersion"] = rv.clone();
            }
            *new = merged;
        }
        "" if info.has_status() => match old.get("status") {
            Some(s) => {
                new["status"] = s.clone();
            }
            None => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("status");
                }
            }
        },
        _ => {}
    }
    if info.resource == "pods" && subresource == "status" {
        // qosClass is computed from the spec and may not be changed by status writers.
        if let Some(q) = old.pointer("/status/qosClass").cloned() {
            new["status"]["qosClass"] = q;
        }
    }
}

fn pointer_parent_insert<'a>(v: &'a mut Value, pointer: &str) -> Option<&'a mut Value> {
    let mut cur = v;
    for seg in pointer.trim_start_matches('/').split('/') {
        if !cur.is_object() {
            *cur = json!({});
        }
        cur = cur
            .as_object_mut()?
            .entry(seg.to_string())
            .or_insert(Value::Null);
    }
    Some(cur)
}

fn remove_pointer(v: &mut Value, pointer: &str) {
    if let Some((parent, last)) = pointer.rsplit_once('/')
        && let Some(p) = v
            .pointer_mut(if parent.is_empty() { "" } else { parent })
            .and_then(Value::as_object_mut)
    {
        p.remove(last);
    }
}

/// Whether PUT of a missing object creates it (upstream `AllowCreateOnUpdate`).
pub fn allow_create_on_update(info: &ResourceInfo) -> bool {
    matches!(
        (info.group, info.resource),
        ("", "endpoints" | "events" | "limitranges")
            | ("events.k8s.io", "events")
            | ("coordination.k8s.io", "leases")
            | ("rbac.authorization.k8s.io", _)
    )
}

/// Whether a completed delete answers with the deleted object rather than a Status.
pub fn returns_deleted_object(info: &ResourceInfo) -> bool {
    matches!(
        (info.group, info.resource),
        (
            "",
            "pods"
                | "services"
                | "serviceaccounts"
                | "persistentvolumes"
                | "persistentvolumeclaims"
                | "podtemplates"
                | "resourcequotas"
        ) | ("storage.k8s.io", "storageclasses")
    )
}

/// The propagation policy a delete uses when the client names none.
pub fn default_propagation(info: &ResourceInfo) -> &'static str {
    match (info.group, info.resource) {
        // Kept from the v1 API for compatibility, as upstream does.
        ("", "replicationcontrollers") => "Orphan",
        _ => "Background",
    }
}

/// The grace period a delete gets, or None when the object is removed at once. Pods bound to a
/// node and not finished get `gracePeriodSeconds` (default: the pod's
/// `terminationGracePeriodSeconds`) so the kubelet can stop their containers.
pub fn graceful_delete_seconds(
    info: &ResourceInfo,
    obj: &Value,
    requested: Option<i64>,
) -> Option<i64> {
    if info.resource != "pods" || !info.group.is_empty() {
        return None;
    }
    let node = obj
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let phase = obj
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    let default = obj
        .pointer("/spec/terminationGracePeriodSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(30);
    let mut grace = requested.unwrap_or(default).max(0);
    if node.is_empty() || phase == "Succeeded" || phase == "Failed" {
        grace = 0;
    }
    // A negative request means "use the default", 0 means "now".
    if requested == Some(0) {
        grace = 0;
    }
    (grace > 0).then_some(grace)
}

/// Namespaces are deleted in two steps: the namespace controller empties them, then removes
/// the `kubernetes` finalizer.
pub fn namespace_on_delete(obj: &mut Value) {
    obj["status"]["phase"] = json!("Terminating");
}

/// Bumps `metadata.generation` when the spec changed (kinds that track it).
pub fn bump_generation(info: &ResourceInfo, new: &mut Value, old: &Value) {
    if !info.tracks_generation {
        return;
    }
    let g = object::generation(old).max(1);
    let next = if object::spec_equal(new, old) {
        g
    } else {
        g + 1
    };
    object::set_meta(new, "generation", next);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bound_running_pods_get_a_grace_period() {
        let pods = ferrokube_api::resources::find("", "v1", "pods").unwrap();
        let unbound = json!({"spec": {}, "status": {"phase": "Pending"}});
        assert_eq!(graceful_delete_seconds(pods, &unbound, None), None);
        let bound = json!({"spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 30}, "status": {"phase": "Running"}});
        assert_eq!(graceful_delete_seconds(pods, &bound, None), Some(30));
        assert_eq!(graceful_delete_seconds(pods, &bound, Some(5)), Some(5));
        assert_eq!(graceful_delete_seconds(pods, &bound, Some(0)), None);
    }
}
