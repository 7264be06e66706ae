//! Core (`v1`) defaults: `pkg/apis/core/v1/defaults.go` and its generated walkers.

use serde_json::{Map, Value, json};

use super::encoding;
use super::{
    default_int, default_nil, default_str, each_obj, embedded_meta, ensure_obj, is_empty, obj_mut,
    quantity_field, resource_list, status_zeros, str_of,
};
use crate::quantity::Quantity;

pub(super) fn pod(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else { return };
    if let Some(spec) = ensure_obj(m, "spec") {
        pod_only(spec);
        pod_spec(spec);
    }
    if let Some(status) = ensure_obj(m, "status") {
        encoding::pod_status(status);
        for key in [
            "initContainerStatuses",
            "containerStatuses",
            "ephemeralContainerStatuses",
        ] {
            for cs in each_obj(status, key) {
                resource_list(cs, "allocatedResources");
                if let Some(r) = obj_mut(cs, "resources") {
                    resource_list(r, "limits");
                    resource_list(r, "requests");
                }
            }
        }
    }
}

/// `SetDefaults_Pod`: the parts that apply to Pods but not to pod templates.
fn pod_only(spec: &mut Map<String, Value>) {
    for key in ["containers", "initContainers"] {
        for c in each_obj(spec, key) {
            let Some(res) = obj_mut(c, "resources") else {
                continue;
            };
            let Some(limits) = res
                .get("limits")
                .and_then(Value::as_object)
                .filter(|l| !l.is_empty())
                .cloned()
            else {
                continue;
            };
            if let Some(req) = ensure_obj(res, "requests") {
                for (k, v) in limits {
                    req.entry(k).or_insert(v);
                }
            }
        }
    }
    default_nil(spec, "enableServiceLinks", json!(true));
    if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
        for key in ["containers", "initContainers"] {
            for c in each_obj(spec, key) {
                for p in each_obj(c, "ports") {
                    if let Some(cp) = p.get("containerPort").cloned() {
                        default_int(p, "hostPort", 0);
                        if p.get("hostPort").and_then(Value::as_i64) == Some(0) {
                            p.insert("hostPort".into(), cp);
                        }
                    }
                }
            }
        }
    }
}

pub(super) fn pod_template_spec(tmpl: &mut Map<String, Value>) {
    embedded_meta(tmpl);
    if let Some(spec) = ensure_obj(tmpl, "spec") {
        pod_spec(spec);
    }
}

/// `SetDefaults_PodSpec` plus everything the generated defaulters reach inside a PodSpec.
pub(super) fn pod_spec(spec: &mut Map<String, Value>) {
    default_str(spec, "dnsPolicy", "ClusterFirst");
    default_str(spec, "restartPolicy", "Always");
    default_nil(spec, "securityContext", json!({}));
    default_nil(spec, "terminationGracePeriodSeconds", json!(30));
    default_str(spec, "schedulerName", "default-scheduler");
    for v in each_obj(spec, "volumes") {
        volume(v);
    }
    for key in ["initContainers", "containers", "ephemeralContainers"] {
        for c in each_obj(spec, key) {
            container(c);
        }
    }
    resource_list(spec, "overhead");
    if let Some(r) = obj_mut(spec, "resources") {
        resource_list(r, "limits");
        resource_list(r, "requests");
    }
    encoding::pod_spec(spec);
}

/// The fields of `v1.VolumeSource`; a volume with none of them set becomes an emptyDir.
const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

fn volume(v: &mut Map<String, Value>) {
    if VOLUME_SOURCES
        .iter()
        .all(|k| matches!(v.get(*k), None | Some(Value::Null)))
    {
        v.insert("emptyDir".into(), json!({}));
    }
    if let Some(e) = obj_mut(v, "emptyDir") {
        quantity_field(e, "sizeLimit");
    }
    if let Some(h) = obj_mut(v, "hostPath") {
        default_nil(h, "type", json!(""));
    }
    if let Some(s) = obj_mut(v, "secret") {
        default_nil(s, "defaultMode", json!(420));
    }
    if let Some(s) = obj_mut(v, "configMap") {
        default_nil(s, "defaultMode", json!(420));
    }
    if let Some(s) = obj_mut(v, "iscsi") {
        default_str(s, "iscsiInterface", "default");
    }
    if let Some(s) = obj_mut(v, "rbd") {
        rbd(s);
    }
    if let Some(s) = obj_mut(v, "azureDisk") {
        azure_disk(s);
    }
    if let Some(s) = obj_mut(v, "scaleIO") {
        scale_io(s);
    }
    if let Some(d) = obj_mut(v, "downwardAPI") {
        default_nil(d, "defaultMode", json!(420));
        downward_items(d);
    }
    if let Some(p) = obj_mut(v, "projected") {
        default_nil(p, "defaultMode", json!(420));
        for src in each_obj(p, "sources") {
            if let Some(d) = obj_mut(src, "downwardAPI") {
                downward_items(d);
            }
            if let Some(t) = obj_mut(src, "serviceAccountToken") {
                default_nil(t, "expirationSeconds", json!(3600));
            }
        }
    }
    if let Some(e) = obj_mut(v, "ephemeral")
        && let Some(t) = obj_mut(e, "volumeClaimTemplate")
    {
        embedded_meta(t);
        if let Some(spec) = ensure_obj(t, "spec") {
            pvc_spec(spec);
        }
    }
}

fn downward_items(d: &mut Map<String, Value>) {
    for item in each_obj(d, "items") {
        if let Some(f) = obj_mut(item, "fieldRef") {
            default_str(f, "apiVersion", "v1");
        }
    }
}

fn rbd(s: &mut Map<String, Value>) {
    default_str(s, "pool", "rbd");
    default_str(s, "user", "admin");
    default_str(s, "keyring", "/etc/ceph/keyring");
}

fn azure_disk(s: &mut Map<String, Value>) {
    default_nil(s, "cachingMode", json!("ReadWrite"));
    default_nil(s, "kind", json!("Shared"));
    default_nil(s, "fsType", json!("ext4"));
    default_nil(s, "readOnly", json!(false));
}

fn scale_io(s: &mut Map<String, Value>) {
    default_str(s, "storageMode", "ThinProvisioned");
    default_str(s, "fsType", "xfs");
}

fn container(c: &mut Map<String, Value>) {
    if matches!(c.get("imagePullPolicy"), None | Some(Value::Null))
        || c.get("imagePullPolicy").and_then(Value::as_str) == Some("")
    {
        let policy = if image_tag(str_of(c, "image")).as_deref() == Some("latest") {
            "Always"
        } else {
            "IfNotPresent"
        };
        c.insert("imagePullPolicy".into(), json!(policy));
    }
    default_str(c, "terminationMessagePath", "/dev/termination-log");
    default_str(c, "terminationMessagePolicy", "File");
    for p in each_obj(c, "ports") {
        default_str(p, "protocol", "TCP");
    }
    for e in each_obj(c, "env") {
        if let Some(vf) = obj_mut(e, "valueFrom")
            && let Some(f) = obj_mut(vf, "fieldRef")
        {
            default_str(f, "apiVersion", "v1");
        }
    }
    if let Some(r) = ensure_obj(c, "resources") {
        resource_list(r, "limits");
        resource_list(r, "requests");
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = obj_mut(c, probe) {
            default_int(p, "timeoutSeconds", 1);
            default_int(p, "periodSeconds", 10);
            default_int(p, "successThreshold", 1);
            default_int(p, "failureThreshold", 3);
            if let Some(h) = obj_mut(p, "httpGet") {
                http_get(h);
            }
            if let Some(g) = obj_mut(p, "grpc") {
                default_nil(g, "service", json!(""));
            }
        }
    }
    if let Some(l) = obj_mut(c, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = obj_mut(l, hook).and_then(|h| obj_mut(h, "httpGet")) {
                http_get(h);
            }
        }
    }
}

fn http_get(h: &mut Map<String, Value>) {
    default_str(h, "path", "/");
    default_str(h, "scheme", "HTTP");
}

/// The tag upstream's `parsers.ParseImageName` finds: `latest` for an untagged name, None for
/// a digest-only reference or an unparsable one.
pub(crate) fn image_tag(image: &str) -> Option<String> {
    if image.is_empty() || image.len() > 255 + 150 {
        return None;
    }
    let (name_tag, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest {
        let (alg, hex) = d.split_once(':')?;
        let alg_ok = !alg.is_empty()
            && alg.starts_with(|c: char| c.is_ascii_alphabetic())
            && alg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_+.".contains(c));
        if !alg_ok || hex.len() < 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
    }
    let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_tag[last_slash..].rfind(':') {
        Some(i) => (
            &name_tag[..last_slash + i],
            Some(&name_tag[last_slash + i + 1..]),
        ),
        None => (name_tag, None),
    };
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && t.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !ok {
            return None;
        }
    }
    if !valid_repository(name) {
        return None;
    }
    match (tag, digest) {
        (Some(t), _) => Some(t.to_string()),
        (None, Some(_)) => None,
        (None, None) => Some("latest".to_string()),
    }
}

fn valid_repository(name: &str) -> bool {
    if name.is_empty() {
        return false;
    }
    if name.len() == 64
        && name
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    {
        return false;
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 1 {
        let first = parts[0];
        if first.contains('.')
            || first.contains(':')
            || first == "localhost"
            || first.chars().any(|c| c.is_ascii_uppercase())
        {
            let host = first.split(':').next().unwrap_or("");
            let port_ok = match first.split_once(':') {
                Some((_, p)) => !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()),
                None => true,
            };
            let host_ok = !host.is_empty()
                && host.split('.').all(|l| {
                    !l.is_empty()
                        && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                });
            if !(host_ok && port_ok) {
                return false;
            }
            parts.remove(0);
        }
    }
    parts.iter().all(|p| path_component(p))
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn path_component(p: &str) -> bool {
    let b = p.as_bytes();
    if b.is_empty() {
        return false;
    }
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut i = 0;
    let mut need_alnum = true;
    while i < b.len() {
        if alnum(b[i]) {
            need_alnum = false;
            i += 1;
            continue;
        }
        if need_alnum {
            return false;
        }
        // a separator
        let start = i;
        if b[i] == b'.' {
            i += 1;
        } else if b[i] == b'_' {
            i += 1;
            if i < b.len() && b[i] == b'_' {
                i += 1;
            }
        } else if b[i] == b'-' {
            while i < b.len() && b[i] == b'-' {
                i += 1;
            }
        } else {
            return false;
        }
        if i == start {
            return false;
        }
        need_alnum = true;
    }
    !need_alnum
}

pub(super) fn pod_template(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else { return };
    if let Some(t) = ensure_obj(m, "template") {
        pod_template_spec(t);
    }
}

pub(super) fn replication_controller(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else { return };
    let labels = m
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|md| md.get("labels"))
        .filter(|l| l.is_object())
        .cloned();
    if let Some(spec) = ensure_obj(m, "spec") {
        if let Some(l) = &labels
            && is_empty(spec, "selector")
        {
            spec.insert("selector".into(), l.clone());
        }
        default_nil(spec, "replicas", json!(1));
        if let Some(t) = obj_mut(spec, "template") {
            pod_template_spec(t);
        }
    }
    if let Some(l) = labels
        && let Some(meta) = ensure_obj(m, "metadata")
        && is_empty(meta, "labels")
    {
        meta.insert("labels".into(), l);
    }
    status_zeros(obj, &["replicas"]);
}

pub(super) fn service(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else { return };
    if let Some(spec) = ensure_obj(m, "spec") {
        default_str(spec, "sessionAffinity", "None");
        match str_of(spec, "sessionAffinity") {
            "None" => {
                spec.remove("sessionAffinityConfig");
            }
            "ClientIP" => {
                let has_timeout = spec
                    .get("sessionAffinityConfig")
                    .and_then(|c| c.get("clientIP"))
                    .and_then(|c| c.get("timeoutSeconds"))
                    .is_some_and(|t| !t.is_null());
                if !has_timeout {
                    spec.insert(
                        "sessionAffinityConfig".into(),
                        json!({"clientIP": {"timeoutSeconds": 10800}}),
                    );
                }
            }
            _ => {}
        }
        default_str(spec, "type", "ClusterIP");
        for p in each_obj(spec, "ports") {
            default_str(p, "protocol", "TCP");
            let unset = match p.get("targetPort") {
                None | Some(Value::Null) => true,
                Some(Value::Number(n)) => n.as_f64() == Some(0.0),
                Some(Value::String(s)) => s.is_empty(),
                _ => false,
            };
            if unset {
                let port = p.get("port").cloned().unwrap_or(json!(0));
                p.insert("targetPort".into(), port);
            }
        }
        let ty = str_of(spec, "type").to_string();
        let externally = ty == "LoadBalancer"
            || ty == "NodePort"
            || (ty == "ClusterIP" && !is_empty(spec, "externalIPs"));
        if externally {
            default_str(spec, "externalTrafficPolicy", "Cluster");
        }
        if matches!(ty.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP") {
            default_nil(spec, "internalTrafficPolicy", json!("Cluster"));
        }
        if ty == "LoadBalancer" {
            default_nil(spec, "allocateLoadBalancerNodePorts", json!(true));
        }
        encoding::service_spec(spec);
    }
    let lb = m
        .get("spec")
        .and_then(|s| s.get("type"))
        .and_then(Value::as_str)
        == Some("LoadBalancer");
    if let Some(status) = ensure_obj(m, "status")
        && let Some(lbs) = ensure_obj(status, "loadBalancer")
        && lb
    {
        for ing in each_obj(lbs, "ingress") {
            if !str_of(ing, "ip").is_empty() {
                default_nil(ing, "ipMode", json!("VIP"));
            }
        }
    }
}

pub(super) fn namespace(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else { return };
    let name = m
        .get("metadata")
        .and_then(|md| md.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !name.is_empty()
        && let Some(meta) = ensure_obj(m, "metadata")
        && let Some(labels) = ensure_obj(meta, "labels")
    {
        labels.insert("kubernetes.io/metadata.name".into(), json!(name));
    }
    ensure_obj(m, "spec");
    if let Some(status) = ensure_obj(m, "status") {
        default_str(status, "phase", "Active");
    }
}

pub(super) fn node(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else { return };
    if let Some(spec) = ensure_obj(m, "spec") {
        encoding::node_spec(spec);
    }
    let Some(status) = ensure_obj(m, "status") else {
        return;
    };
    if matches!(status.get("allocatable"), None | Some(Value::Null))
        && let Some(cap) = status.get("capacity").filter(|c| c.is_object()).cloned()
    {
        status.insert("allocatable".into(), cap);
    }
    resource_list(status, "capacity");
    resource_list(status, "allocatable");
    if let Some(de) = ensure_obj(status, "daemonEndpoints")
        && let Some(ke) = ensure_obj(de, "kubeletEndpoint")
    {
        ke.entry("Port").or_insert(json!(0));
    }
    if let Some(info) = ensure_obj(status, "nodeInfo") {
        for f in [
            "architecture",
            "bootID",
            "containerRuntimeVersion",
            "kernelVersion",
            "kubeProxyVersion",
            "kubeletVersion",
            "machineID",
            "operatingSystem",
            "osImage",
            "systemUUID",
        ] {
            info.entry(f).or_insert(json!(""));
        }
    }
}

pub(super) fn persistent_volume(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else { return };
    if let Some(status) = ensure_obj(m, "status") {
        default_str(status, "phase", "Pending");
    }
    if let Some(spec) = ensure_obj(m, "spec") {
        default_str(spec, "persistentVolumeReclaimPolicy", "Retain");
        default_nil(spec, "volumeMode", json!("Filesystem"));
        resource_list(spec, "capacity");
        if let Some(h) = obj_mut(spec, "hostPath") {
            default_nil(h, "type", json!(""));
        }
        if let Some(s) = obj_mut(spec, "rbd") {
            rbd(s);
        }
        if let Some(s) = obj_mut(spec, "iscsi") {
            default_str(s, "iscsiInterface", "default");
        }
        if let Some(s) = obj_mut(spec, "azureDisk") {
            azure_disk(s);
        }
        if let Some(s) = obj_mut(spec, "scaleIO") {
            scale_io(s);
        }
    }
}

pub(super) fn pvc_spec(spec: &mut Map<String, Value>) {
    default_nil(spec, "volumeMode", json!("Filesystem"));
    if let Some(r) = ensure_obj(spec, "resources") {
        resource_list(r, "limits");
        resource_list(r, "requests");
    }
}

/// A whole PVC (also the entries of a StatefulSet's `volumeClaimTemplates`).
pub(super) fn pvc(m: &mut Map<String, Value>) {
    if let Some(status) = ensure_obj(m, "status") {
        default_str(status, "phase", "Pending");
        resource_list(status, "capacity");
        resource_list(status, "allocatedResources");
    }
    if let Some(spec) = ensure_obj(m, "spec") {
        pvc_spec(spec);
    }
}

pub(super) fn persistent_volume_claim(obj: &mut Value) {
    if let Some(m) = obj.as_object_mut() {
        pvc(m);
    }
}

pub(super) fn secret(obj: &mut Value) {
    if let Some(m) = obj.as_object_mut() {
        encoding::secret(m);
        default_str(m, "type", "Opaque");
    }
}

pub(super) fn config_map(obj: &mut Value) {
    if let Some(m) = obj.as_object_mut() {
        encoding::config_map(m);
    }
}

pub(super) fn endpoints(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else { return };
    for ss in each_obj(m, "subsets") {
        for p in each_obj(ss, "ports") {
            default_str(p, "protocol", "TCP");
        }
    }
}

pub(super) fn limit_range(obj: &mut Value) {
    let Some(spec) = obj.as_object_mut().and_then(|m| obj_mut(m, "spec")) else {
        return;
    };
    for item in each_obj(spec, "limits") {
        if str_of(item, "type") == "Container" {
            let max = item
                .get("max")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let min = item
                .get("min")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let Some(default) = ensure_obj(item, "default") else {
                continue;
            };
            for (k, v) in max {
                default.entry(k).or_insert(v);
            }
            let default = default.clone();
            let Some(req) = ensure_obj(item, "defaultRequest") else {
                continue;
            };
            for (k, v) in default {
                req.entry(k).or_insert(v);
            }
            for (k, v) in min {
                req.entry(k).or_insert(v);
            }
            // Go drops the empty maps it created here (omitempty).
            for key in ["default", "defaultRequest"] {
                if item
                    .get(key)
                    .and_then(Value::as_object)
                    .is_some_and(Map::is_empty)
                {
                    item.remove(key);
                }
            }
        }
        for key in [
            "max",
            "min",
            "default",
            "defaultRequest",
            "maxLimitRequestRatio",
        ] {
            resource_list(item, key);
        }
    }
}

pub(super) fn resource_quota(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else { return };
    if let Some(spec) = obj_mut(m, "spec") {
        resource_list(spec, "hard");
    }
    if let Some(status) = obj_mut(m, "status") {
        resource_list(status, "hard");
        resource_list(status, "used");
    }
}

/// Upstream `qos.ComputePodQOS` (without pod-level resources, alpha in 1.33).
pub(crate) fn pod_qos_class(pod: &Value) -> &'static str {
    use std::collections::BTreeMap;
    let mut requests: BTreeMap<&str, Quantity> = BTreeMap::new();
    let mut limits: BTreeMap<&str, Quantity> = BTreeMap::new();
    let mut guaranteed = true;
    let spec = pod.get("spec");
    let containers = ["containers", "initContainers"].into_iter().flat_map(|k| {
        spec.and_then(|s| s.get(k))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    });
    let zero = Quantity::from_i64(0);
    for c in containers {
        let res = c.get("resources");
        let list = |k: &str| res.and_then(|r| r.get(k)).and_then(Value::as_object);
        for (name, q) in list("requests").into_iter().flatten() {
            if name != "cpu" && name != "memory" {
                continue;
            }
            let Ok(q) = Quantity::from_json(q) else {
                continue;
            };
            if q > zero {
                let sum = requests.get(name.as_str()).map_or(q.clone(), |s| q.add(s));
                requests.insert(name.as_str(), sum);
            }
        }
        let mut found = 0;
        for (name, q) in list("limits").into_iter().flatten() {
            if name != "cpu" && name != "memory" {
                continue;
            }
            let Ok(q) = Quantity::from_json(q) else {
                continue;
            };
            if q > zero {
                found += 1;
                let sum = limits.get(name.as_str()).map_or(q.clone(), |s| q.add(s));
                limits.insert(name.as_str(), sum);
            }
        }
        if found < 2 {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed && requests.iter().any(|(k, r)| limits.get(k) != Some(r)) {
        guaranteed = false;
    }
    if guaranteed && requests.len() == limits.len() {
        "Guaranteed"
    } else {
        "Burstable"
    }
}
