//! Defaults of the smaller API groups: autoscaling, policy, networking, rbac, storage,
//! scheduling, discovery.

use serde_json::{Map, Value, json};

use super::{
    default_nil, default_str, each_obj, ensure_obj, is_empty, obj_mut, quantity_field,
    resource_list, status_zeros, str_of,
};

fn spec(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    obj.as_object_mut().and_then(|m| ensure_obj(m, "spec"))
}

pub(super) fn hpa_v1(obj: &mut Value) {
    let Some(spec) = spec(obj) else { return };
    default_nil(spec, "minReplicas", json!(1));
    // Upstream applies the 80% CPU target while converting to the internal version; it is in
    // every object read back through autoscaling/v1.
    default_nil(spec, "targetCPUUtilizationPercentage", json!(80));
    status_zeros(obj, &["currentReplicas", "desiredReplicas"]);
}

pub(super) fn hpa_v2(obj: &mut Value) {
    let Some(spec) = spec(obj) else { return };
    default_nil(spec, "minReplicas", json!(1));
    if is_empty(spec, "metrics") {
        spec.insert(
            "metrics".into(),
            json!([{
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}
            }]),
        );
    }
    for metric in each_obj(spec, "metrics") {
        for source in [
            "resource",
            "containerResource",
            "pods",
            "object",
            "external",
        ] {
            if let Some(t) = obj_mut(metric, source).and_then(|s| obj_mut(s, "target")) {
                quantity_field(t, "value");
                quantity_field(t, "averageValue");
            }
        }
    }
    if let Some(b) = obj_mut(spec, "behavior") {
        if let Some(up) = ensure_obj(b, "scaleUp") {
            default_nil(up, "stabilizationWindowSeconds", json!(0));
            default_nil(up, "selectPolicy", json!("Max"));
            default_nil(
                up,
                "policies",
                json!([
                    {"type": "Pods", "value": 4, "periodSeconds": 15},
                    {"type": "Percent", "value": 100, "periodSeconds": 15}
                ]),
            );
        }
        if let Some(down) = ensure_obj(b, "scaleDown") {
            default_nil(down, "selectPolicy", json!("Max"));
            default_nil(
                down,
                "policies",
                json!([{"type": "Percent", "value": 100, "periodSeconds": 15}]),
            );
        }
    }
    status_zeros(obj, &["desiredReplicas"]);
}

pub(super) fn pod_disruption_budget(obj: &mut Value) {
    status_zeros(
        obj,
        &[
            "currentHealthy",
            "desiredHealthy",
            "disruptionsAllowed",
            "expectedPods",
        ],
    );
}

pub(super) fn network_policy(obj: &mut Value) {
    let Some(spec) = spec(obj) else { return };
    for dir in ["ingress", "egress"] {
        for rule in each_obj(spec, dir) {
            for p in each_obj(rule, "ports") {
                default_nil(p, "protocol", json!("TCP"));
            }
        }
    }
    if is_empty(spec, "policyTypes") {
        let mut types = vec![json!("Ingress")];
        if !is_empty(spec, "egress") {
            types.push(json!("Egress"));
        }
        spec.insert("policyTypes".into(), Value::Array(types));
    }
}

pub(super) fn ingress(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else { return };
    ensure_obj(m, "spec");
    if let Some(status) = ensure_obj(m, "status") {
        ensure_obj(status, "loadBalancer");
    }
}

pub(super) fn ingress_class(obj: &mut Value) {
    let Some(spec) = spec(obj) else { return };
    if let Some(p) = obj_mut(spec, "parameters") {
        default_nil(p, "scope", json!("Cluster"));
    }
}

pub(super) fn role_binding(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else { return };
    if let Some(r) = obj_mut(m, "roleRef") {
        default_str(r, "apiGroup", "rbac.authorization.k8s.io");
    }
    for s in each_obj(m, "subjects") {
        if str_of(s, "apiGroup").is_empty() && matches!(str_of(s, "kind"), "User" | "Group") {
            s.insert("apiGroup".into(), json!("rbac.authorization.k8s.io"));
        }
    }
}

pub(super) fn storage_class(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else { return };
    default_nil(m, "reclaimPolicy", json!("Delete"));
    default_nil(m, "volumeBindingMode", json!("Immediate"));
}

pub(super) fn csi_driver(obj: &mut Value) {
    let Some(spec) = spec(obj) else { return };
    default_nil(spec, "attachRequired", json!(true));
    default_nil(spec, "podInfoOnMount", json!(false));
    default_nil(spec, "storageCapacity", json!(false));
    default_nil(spec, "fsGroupPolicy", json!("ReadWriteOnceWithFSType"));
    if is_empty(spec, "volumeLifecycleModes") {
        spec.insert("volumeLifecycleModes".into(), json!(["Persistent"]));
    }
    default_nil(spec, "requiresRepublish", json!(false));
    default_nil(spec, "seLinuxMount", json!(false));
}

pub(super) fn volume_attachment(obj: &mut Value) {
    let Some(spec) = spec(obj) else { return };
    if let Some(pv) = obj_mut(spec, "source").and_then(|s| obj_mut(s, "inlineVolumeSpec")) {
        resource_list(pv, "capacity");
        if let Some(h) = obj_mut(pv, "hostPath") {
            default_nil(h, "type", json!(""));
        }
    }
}

pub(super) fn priority_class(obj: &mut Value) {
    if let Some(m) = obj.as_object_mut() {
        default_nil(m, "preemptionPolicy", json!("PreemptLowerPriority"));
    }
}

pub(super) fn endpoint_slice(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else { return };
    for p in each_obj(m, "ports") {
        default_nil(p, "name", json!(""));
        default_nil(p, "protocol", json!("TCP"));
    }
}
