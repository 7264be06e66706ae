//! Scheme defaulting: what upstream's `SetObjectDefaults_*` functions (plus the JSON encoding
//! of Go structs) add to an object before it is stored, so that `kubectl get -o yaml` shows
//! the same fields as on upstream 1.33.
//!
//! [`apply`] is idempotent and must run on every object decoded from a request, and may run
//! again on objects read back from storage (upstream re-defaults on every decode from etcd,
//! which is why, for example, a Job created without labels ends up with its template's
//! generated labels in `metadata.labels`).
//!
//! Three families of behaviour live here:
//!
//! - **scheme defaults** (`pkg/apis/*/v1*/defaults.go`, `zz_generated.defaults.go`), per kind;
//! - **quantity canonicalization**: every `resource.Quantity` is re-emitted in upstream's
//!   serialized form, and `ResourceList`s are rounded up to milli (`SetDefaults_ResourceList`);
//! - **Go encoding artifacts**: fields that Go always emits because they are non-pointer
//!   structs or non-`omitempty` scalars: `resources: {}` in containers,
//!   `metadata: {creationTimestamp: null}` in embedded templates (1.33 still emits the null),
//!   `status: {loadBalancer: {}}` on Services, zero counters in workload statuses.
//!
//! Strategy work that upstream does in `PrepareForCreate` lives in [`prepare_for_create`]
//! because it must *not* be re-applied later (a Namespace's `kubernetes` finalizer is removed
//! during deletion; re-adding it on every read would make deletion hang).
//!
//! # Defaults that upstream applies in admission, not here
//!
//! The server's admission chain does these; they are *not* scheme defaults:
//!
//! - `ServiceAccount` admission: `spec.serviceAccountName: default` (and the deprecated
//!   `spec.serviceAccount` mirror), the projected `kube-api-access-xxxxx` token volume
//!   (serviceAccountToken 3607s + `kube-root-ca.crt` configMap + namespace downwardAPI,
//!   defaultMode 420) and its `volumeMounts` at `/var/run/secrets/kubernetes.io/serviceaccount`
//!   (readOnly) in every container, init container and ephemeral container.
//! - `DefaultTolerationSeconds`: tolerations `node.kubernetes.io/not-ready` and
//!   `node.kubernetes.io/unreachable`, operator Exists, effect NoExecute, tolerationSeconds 300.
//! - `Priority`: `spec.priority` (0, or the value of `spec.priorityClassName` / the global
//!   default class) and `spec.preemptionPolicy: PreemptLowerPriority`.
//! - `DefaultStorageClass`: `spec.storageClassName` on PVCs when a default class exists.
//! - `LimitRanger`: container requests/limits from the namespace's LimitRanges, with the
//!   `kubernetes.io/limit-ranger` annotation.
//! - `PodSecurity`, `TaintNodesByCondition` (`node.kubernetes.io/not-ready:NoSchedule` on new
//!   Nodes), `DefaultIngressClass` (`spec.ingressClassName`), `StorageObjectInUseProtection`
//!   (the `kubernetes.io/pvc-protection` / `kubernetes.io/pv-protection` finalizers).
//!
//! The server itself also sets IP families and cluster IPs on Services, node ports, and the
//! object metadata (uid, creationTimestamp, resourceVersion, generation, managedFields).

mod core;
mod encoding;
mod groups;
mod workloads;

use serde_json::{Map, Value, json};

use crate::quantity::Quantity;

pub use workloads::generate_job_selector;

/// Runs upstream's scheme defaulting for `group/version, Kind=kind` on `obj` in place.
///
/// Unknown kinds are left alone. Fields of the wrong JSON type are left as they are, for
/// validation to report; nothing here panics on odd input.
pub fn apply(group: &str, version: &str, kind: &str, obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else {
        return;
    };
    encoding::meta(m);
    match (group, version, kind) {
        ("", "v1", "Pod") => core::pod(obj),
        ("", "v1", "PodTemplate") => core::pod_template(obj),
        ("", "v1", "ReplicationController") => core::replication_controller(obj),
        ("", "v1", "Service") => core::service(obj),
        ("", "v1", "Namespace") => core::namespace(obj),
        ("", "v1", "Node") => core::node(obj),
        ("", "v1", "PersistentVolume") => core::persistent_volume(obj),
        ("", "v1", "PersistentVolumeClaim") => core::persistent_volume_claim(obj),
        ("", "v1", "Secret") => core::secret(obj),
        ("", "v1", "ConfigMap") => core::config_map(obj),
        ("", "v1", "Endpoints") => core::endpoints(obj),
        ("", "v1", "LimitRange") => core::limit_range(obj),
        ("", "v1", "ResourceQuota") => core::resource_quota(obj),
        ("apps", "v1", "Deployment") => workloads::deployment(obj),
        ("apps", "v1", "ReplicaSet") => workloads::replica_set(obj),
        ("apps", "v1", "DaemonSet") => workloads::daemon_set(obj),
        ("apps", "v1", "StatefulSet") => workloads::stateful_set(obj),
        ("batch", "v1", "Job") => workloads::job(obj),
        ("batch", "v1", "CronJob") => workloads::cron_job(obj),
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => groups::hpa_v1(obj),
        ("autoscaling", "v2", "HorizontalPodAutoscaler") => groups::hpa_v2(obj),
        ("policy", "v1", "PodDisruptionBudget") => groups::pod_disruption_budget(obj),
        ("networking.k8s.io", "v1", "NetworkPolicy") => groups::network_policy(obj),
        ("networking.k8s.io", "v1", "Ingress") => groups::ingress(obj),
        ("networking.k8s.io", "v1", "IngressClass") => groups::ingress_class(obj),
        ("rbac.authorization.k8s.io", "v1", "RoleBinding" | "ClusterRoleBinding") => {
            groups::role_binding(obj)
        }
        ("storage.k8s.io", "v1", "StorageClass") => groups::storage_class(obj),
        ("storage.k8s.io", "v1", "CSIDriver") => groups::csi_driver(obj),
        ("storage.k8s.io", "v1", "VolumeAttachment") => groups::volume_attachment(obj),
        ("scheduling.k8s.io", "v1", "PriorityClass") => groups::priority_class(obj),
        ("discovery.k8s.io", "v1", "EndpointSlice") => groups::endpoint_slice(obj),
        _ => {}
    }
}

/// Upstream's `PrepareForCreate` strategy steps that shape what a user sees right after
/// `create`, for the kinds where they are more than "drop status": call it once on create,
/// after [`apply`], before validation. It is not idempotent with respect to later updates and
/// must not run on update or read.
///
/// - Namespace: `spec.finalizers` gains `kubernetes`, `status` becomes `{phase: Active}`.
/// - Pod: `status` becomes `{phase: Pending, qosClass: ...}`, plus the `PodScheduled=False`
///   `SchedulingGated` condition when the pod has scheduling gates.
/// - Job: when `spec.manualSelector` is not true, the server must also call
///   [`generate_job_selector`] once the uid is known.
///
/// Resetting user-supplied `status` on create (every kind with a status subresource) is the
/// server's generic strategy step; call [`apply`] after it to restore the encoded zero values.
pub fn prepare_for_create(group: &str, version: &str, kind: &str, obj: &mut Value) {
    match (group, version, kind) {
        ("", "v1", "Namespace") => {
            let Some(m) = obj.as_object_mut() else { return };
            let spec = ensure_obj(m, "spec");
            if let Some(spec) = spec {
                let fin = spec
                    .entry("finalizers")
                    .or_insert_with(|| Value::Array(Vec::new()));
                if fin.is_null() {
                    *fin = Value::Array(Vec::new());
                }
                if let Some(list) = fin.as_array_mut()
                    && !list.iter().any(|f| f == "kubernetes")
                {
                    list.push(json!("kubernetes"));
                }
            }
            m.insert("status".into(), json!({"phase": "Active"}));
        }
        ("", "v1", "Pod") => {
            let qos = core::pod_qos_class(obj);
            let gated = obj
                .get("spec")
                .and_then(|s| s.get("schedulingGates"))
                .and_then(Value::as_array)
                .is_some_and(|g| !g.is_empty());
            if let Some(m) = obj.as_object_mut() {
                let mut status = json!({"phase": "Pending", "qosClass": qos});
                if gated {
                    status["conditions"] = json!([{
                        "type": "PodScheduled",
                        "status": "False",
                        "lastProbeTime": null,
                        "lastTransitionTime": null,
                        "reason": "SchedulingGated",
                        "message": "Scheduling is blocked due to non-empty scheduling gates"
                    }]);
                }
                m.insert("status".into(), status);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Small helpers over JSON objects, shared by the per-group modules. They never panic: a field
// of the wrong type is simply not defaulted.

/// The object under `key`, if it is one.
pub(crate) fn obj_mut<'a>(
    m: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    m.get_mut(key).and_then(Value::as_object_mut)
}

/// The object under `key`, created empty when absent or null; None when it has another type.
pub(crate) fn ensure_obj<'a>(
    m: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    let slot = m.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
}

/// The array under `key` (each element that is an object), if it is one.
pub(crate) fn each_obj<'a>(
    m: &'a mut Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    m.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flat_map(|a| a.iter_mut().filter_map(Value::as_object_mut))
}

/// Go pointer semantics: set when absent or null.
pub(crate) fn default_nil(m: &mut Map<String, Value>, key: &str, v: Value) {
    match m.get(key) {
        None | Some(Value::Null) => {
            m.insert(key.to_string(), v);
        }
        _ => {}
    }
}

/// Go string semantics: set when absent, null or "".
pub(crate) fn default_str(m: &mut Map<String, Value>, key: &str, v: &str) {
    match m.get(key) {
        None | Some(Value::Null) => {
            m.insert(key.to_string(), Value::from(v));
        }
        Some(Value::String(s)) if s.is_empty() => {
            m.insert(key.to_string(), Value::from(v));
        }
        _ => {}
    }
}

/// Go integer semantics: set when absent, null or 0.
pub(crate) fn default_int(m: &mut Map<String, Value>, key: &str, v: i64) {
    match m.get(key) {
        None | Some(Value::Null) => {
            m.insert(key.to_string(), Value::from(v));
        }
        Some(Value::Number(n)) if n.as_f64() == Some(0.0) => {
            m.insert(key.to_string(), Value::from(v));
        }
        _ => {}
    }
}

/// A string field's value, treating absent/null/wrong type as "".
pub(crate) fn str_of<'a>(m: &'a Map<String, Value>, key: &str) -> &'a str {
    m.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Whether a map/array/string field is absent or empty (Go `len(x) == 0`).
pub(crate) fn is_empty(m: &Map<String, Value>, key: &str) -> bool {
    match m.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::Object(o)) => o.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::String(s)) => s.is_empty(),
        Some(_) => false,
    }
}

/// Re-emits one quantity field in upstream's serialized form; malformed values are left for
/// validation (upstream rejects them while decoding).
pub(crate) fn quantity_field(m: &mut Map<String, Value>, key: &str) {
    if let Some(v) = m.get_mut(key)
        && let Ok(q) = Quantity::from_json(v)
    {
        *v = Value::String(q.to_string());
    }
}

/// `SetDefaults_ResourceList`: every quantity rounded up to milli, then re-emitted.
pub(crate) fn resource_list(m: &mut Map<String, Value>, key: &str) {
    if let Some(list) = obj_mut(m, key) {
        for v in list.values_mut() {
            if let Ok(mut q) = Quantity::from_json(v) {
                q.round_up(-3);
                *v = Value::String(q.to_string());
            }
        }
    }
}

/// Embedded `ObjectMeta` (templates): Go emits `creationTimestamp: null` for the zero time.
pub(crate) fn embedded_meta(m: &mut Map<String, Value>) {
    encoding::meta(m);
    if let Some(meta) = ensure_obj(m, "metadata") {
        meta.entry("creationTimestamp").or_insert(Value::Null);
    }
}

/// Non-omitempty integer fields of a status struct that Go always emits.
pub(crate) fn status_zeros(obj: &mut Value, fields: &[&str]) {
    let Some(m) = obj.as_object_mut() else { return };
    if let Some(status) = ensure_obj(m, "status") {
        for f in fields {
            status.entry(*f).or_insert(json!(0));
        }
    }
}

#[cfg(test)]
mod tests;
