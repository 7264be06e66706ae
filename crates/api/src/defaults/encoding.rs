//! What Go's decode/encode round trip does to an object besides defaulting: conversion aliases
//! (`serviceAccount` mirrors `serviceAccountName`, Secret `stringData` folds into `data`) and
//! `omitempty` fields written with their zero value (`hostNetwork: false`, `ports: []`,
//! `initialDelaySeconds: 0`), which upstream never stores.
//!
//! Only fields known to be non-pointer `omitempty` in the v1 types are pruned; pointer fields
//! keep their zero values (`replicas: 0`, `suspend: false`, `runAsUser: 0`).

use base64::Engine;
use serde_json::{Map, Value};

use super::{each_obj, obj_mut};

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Drops the listed fields when they hold their zero value (or null).
fn prune(m: &mut Map<String, Value>, fields: &[&str]) {
    for f in fields {
        if m.get(*f).is_some_and(is_zero) {
            m.remove(*f);
        }
    }
}

/// Drops the listed fields only when null or an empty collection (maps and slices).
fn prune_empty(m: &mut Map<String, Value>, fields: &[&str]) {
    for f in fields {
        let empty = match m.get(*f) {
            Some(Value::Null) => true,
            Some(Value::Array(a)) => a.is_empty(),
            Some(Value::Object(o)) => o.is_empty(),
            _ => false,
        };
        if empty {
            m.remove(*f);
        }
    }
}

/// ObjectMeta's omitempty collections and strings.
pub(super) fn meta(m: &mut Map<String, Value>) {
    if let Some(md) = obj_mut(m, "metadata") {
        prune_empty(
            md,
            &["labels", "annotations", "finalizers", "ownerReferences"],
        );
        prune(md, &["generateName"]);
    }
}

pub(super) fn pod_spec(spec: &mut Map<String, Value>) {
    // v1 -> internal -> v1: `serviceAccount` is a deprecated alias of `serviceAccountName`.
    let sa_name = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let sa = spec
        .get("serviceAccount")
        .and_then(Value::as_str)
        .unwrap_or("");
    if sa_name.is_empty() && !sa.is_empty() {
        spec.insert("serviceAccountName".into(), Value::from(sa.to_string()));
    }
    if let Some(name) = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
    {
        spec.insert("serviceAccount".into(), Value::from(name));
    }
    prune(
        spec,
        &[
            "hostNetwork",
            "hostPID",
            "hostIPC",
            "nodeName",
            "serviceAccountName",
            "serviceAccount",
            "hostname",
            "subdomain",
            "priorityClassName",
        ],
    );
    prune_empty(
        spec,
        &[
            "volumes",
            "initContainers",
            "ephemeralContainers",
            "nodeSelector",
            "imagePullSecrets",
            "tolerations",
            "hostAliases",
            "readinessGates",
            "overhead",
            "topologySpreadConstraints",
            "schedulingGates",
            "resourceClaims",
        ],
    );
    if let Some(sc) = obj_mut(spec, "securityContext") {
        prune_empty(sc, &["supplementalGroups", "sysctls"]);
    }
    for key in ["initContainers", "containers", "ephemeralContainers"] {
        for c in each_obj(spec, key) {
            container(c);
        }
    }
    for v in each_obj(spec, "volumes") {
        for (src, fields) in [
            ("configMap", &["name", "items"][..]),
            ("secret", &["secretName", "items"][..]),
            ("emptyDir", &["medium"][..]),
            ("persistentVolumeClaim", &["readOnly"][..]),
            ("downwardAPI", &["items"][..]),
            ("nfs", &["readOnly"][..]),
        ] {
            if let Some(s) = obj_mut(v, src) {
                prune(s, fields);
            }
        }
    }
    for t in each_obj(spec, "tolerations") {
        prune(t, &["key", "operator", "value", "effect"]);
    }
}

fn container(c: &mut Map<String, Value>) {
    prune(c, &["image", "workingDir", "stdin", "stdinOnce", "tty"]);
    prune_empty(
        c,
        &[
            "command",
            "args",
            "ports",
            "envFrom",
            "env",
            "resizePolicy",
            "volumeMounts",
            "volumeDevices",
        ],
    );
    for p in each_obj(c, "ports") {
        prune(p, &["name", "hostPort", "hostIP"]);
    }
    for e in each_obj(c, "env") {
        prune(e, &["value"]);
    }
    for m in each_obj(c, "volumeMounts") {
        prune(m, &["readOnly", "subPath", "subPathExpr"]);
    }
    if let Some(r) = obj_mut(c, "resources") {
        prune_empty(r, &["limits", "requests", "claims"]);
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = obj_mut(c, probe) {
            prune(p, &["initialDelaySeconds"]);
            if let Some(h) = obj_mut(p, "httpGet") {
                prune(h, &["host"]);
                prune_empty(h, &["httpHeaders"]);
            }
        }
    }
}

pub(super) fn service_spec(spec: &mut Map<String, Value>) {
    prune(
        spec,
        &[
            "publishNotReadyAddresses",
            "healthCheckNodePort",
            "loadBalancerIP",
            "externalName",
        ],
    );
    prune_empty(
        spec,
        &[
            "ports",
            "selector",
            "externalIPs",
            "loadBalancerSourceRanges",
            "clusterIPs",
            "ipFamilies",
        ],
    );
    for p in each_obj(spec, "ports") {
        prune(p, &["name", "nodePort"]);
    }
}

/// `minReadySeconds` and `paused` are plain omitempty scalars in the apps/v1 specs.
pub(super) fn workload_spec(spec: &mut Map<String, Value>) {
    prune(spec, &["minReadySeconds", "paused"]);
}

/// Convert_v1_Secret_To_core_Secret: `stringData` overwrites `data` and is never stored.
pub(super) fn secret(m: &mut Map<String, Value>) {
    if let Some(Value::Object(sd)) = m.remove("stringData") {
        if sd.is_empty() {
            return;
        }
        let data = m.entry("data").or_insert_with(|| Value::Object(Map::new()));
        if data.is_null() {
            *data = Value::Object(Map::new());
        }
        if let Some(d) = data.as_object_mut() {
            for (k, v) in sd {
                let s = v.as_str().unwrap_or_default();
                let enc = base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
                d.insert(k, Value::from(enc));
            }
        }
    } else if m.get("stringData").is_some_and(Value::is_null) {
        m.remove("stringData");
    }
    prune_empty(m, &["data"]);
}

pub(super) fn config_map(m: &mut Map<String, Value>) {
    prune_empty(m, &["data", "binaryData"]);
}

/// Node `podCIDR` and `podCIDRs` mirror each other through conversion.
pub(super) fn node_spec(spec: &mut Map<String, Value>) {
    let single = spec
        .get("podCIDR")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let first = spec
        .get("podCIDRs")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .map(str::to_string);
    match first {
        None if !single.is_empty() => {
            spec.insert("podCIDRs".into(), Value::Array(vec![Value::from(single)]));
        }
        Some(f) if single.is_empty() => {
            spec.insert("podCIDR".into(), Value::from(f));
        }
        _ => {}
    }
    prune(spec, &["unschedulable", "podCIDR", "providerID"]);
    prune_empty(spec, &["taints", "podCIDRs"]);
}

/// Pod status `podIP`/`podIPs` and `hostIP`/`hostIPs` mirror each other through conversion.
pub(super) fn pod_status(status: &mut Map<String, Value>) {
    for (single, plural) in [("podIP", "podIPs"), ("hostIP", "hostIPs")] {
        let one = status
            .get(single)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let first = status
            .get(plural)
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(|v| v.get("ip"))
            .and_then(Value::as_str)
            .map(str::to_string);
        match first {
            None if !one.is_empty() => {
                status.insert(
                    plural.into(),
                    Value::Array(vec![serde_json::json!({ "ip": one })]),
                );
            }
            Some(f) if one.is_empty() => {
                status.insert(single.into(), Value::from(f));
            }
            _ => {}
        }
    }
}
