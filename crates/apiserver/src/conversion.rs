//! Conversion between the version a client speaks and the version objects are stored in, for
//! the resources served at two versions: HorizontalPodAutoscalers (stored as autoscaling/v2,
//! also served as v1) and Events (stored as core v1, also served as events.k8s.io/v1).
//! Fields the other version cannot express ride along in annotations, as upstream does.

use ferrokube_api::resources::ResourceInfo;
use serde_json::{Map, Value, json};

const HPA_METRICS: &str = "autoscaling.alpha.kubernetes.io/metrics";
const HPA_CURRENT_METRICS: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
const HPA_CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";
const HPA_BEHAVIOR: &str = "autoscaling.alpha.kubernetes.io/behavior";

/// Whether objects of `info` need converting to reach storage.
pub fn needs_conversion(info: &ResourceInfo) -> bool {
    (info.group, info.version) != info.storage_version
}

/// Converts an object in `info`'s version to the storage version.
pub fn to_storage(info: &ResourceInfo, obj: Value) -> Value {
    match (info.group, info.version, info.resource) {
        ("autoscaling", "v1", _) => hpa_v1_to_v2(obj),
        ("events.k8s.io", "v1", _) => event_to_core(obj),
        _ => obj,
    }
}

/// Converts a stored object to `info`'s version.
pub fn from_storage(info: &ResourceInfo, obj: Value) -> Value {
    match (info.group, info.version, info.resource) {
        ("autoscaling", "v1", _) => hpa_v2_to_v1(obj),
        ("events.k8s.io", "v1", _) => event_from_core(obj),
        _ => obj,
    }
}

fn rename(m: &mut Map<String, Value>, from: &str, to: &str) {
    if let Some(v) = m.remove(from) {
        m.insert(to.to_string(), v);
    }
}

fn event_to_core(mut obj: Value) -> Value {
    if let Some(m) = obj.as_object_mut() {
        m.insert("apiVersion".into(), json!("v1"));
        rename(m, "regarding", "involvedObject");
        rename(m, "note", "message");
        rename(m, "deprecatedSource", "source");
        rename(m, "deprecatedFirstTimestamp", "firstTimestamp");
        rename(m, "deprecatedLastTimestamp", "lastTimestamp");
        rename(m, "deprecatedCount", "count");
        rename(m, "reportingController", "reportingComponent");
        m.entry("involvedObject").or_insert_with(|| json!({}));
    }
    obj
}

fn event_from_core(mut obj: Value) -> Value {
    if let Some(m) = obj.as_object_mut() {
        m.insert("apiVersion".into(), json!("events.k8s.io/v1"));
        rename(m, "involvedObject", "regarding");
        rename(m, "message", "note");
        rename(m, "source", "deprecatedSource");
        rename(m, "firstTimestamp", "deprecatedFirstTimestamp");
        rename(m, "lastTimestamp", "deprecatedLastTimestamp");
        rename(m, "count", "deprecatedCount");
        rename(m, "reportingComponent", "reportingController");
        // events.k8s.io requires eventTime; core events written by old clients lack it.
        if !m.contains_key("eventTime") || m["eventTime"].is_null() {
            m.insert("eventTime".into(), Value::Null);
        }
        if m.get("deprecatedSource")
            .is_some_and(|s| s.as_object().is_some_and(Map::is_empty))
        {
            m.remove("deprecatedSource");
        }
    }
    obj
}

fn annotations(obj: &mut Value) -> &mut Map<String, Value> {
    let meta = crate::object::meta_mut(obj);
    let a = meta.entry("annotations").or_insert_with(|| json!({}));
    if !a.is_object() {
        *a = json!({});
    }
    a.as_object_mut()
        .expect("annotations were just made an object")
}

fn tidy_annotations(obj: &mut Value) {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut)
        && m.get("annotations")
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty)
    {
        m.remove("annotations");
    }
}

fn take_json_annotation(obj: &mut Value, key: &str) -> Option<Value> {
    let raw = annotations(obj).remove(key)?;
    raw.as_str().and_then(|s| serde_json::from_str(s).ok())
}

fn is_cpu_utilization(m: &Value) -> bool {
    m.get("type").and_then(Value::as_str) == Some("Resource")
        && m.pointer("/resource/name").and_then(Value::as_str) == Some("cpu")
        && m.pointer("/resource/target/type").and_then(Value::as_str) == Some("Utilization")
}

fn hpa_v1_to_v2(mut obj: Value) -> Value {
    let metrics_extra = take_json_annotation(&mut obj, HPA_METRICS);
    let current_extra = take_json_annotation(&mut obj, HPA_CURRENT_METRICS);
    let conditions = take_json_annotation(&mut obj, HPA_CONDITIONS);
    let behavior = take_json_annotation(&mut obj, HPA_BEHAVIOR);
    tidy_annotations(&mut obj);
    obj["apiVersion"] = json!("autoscaling/v2");
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        let mut metrics: Vec<Value> = Vec::new();
        if let Some(Value::Array(extra)) = metrics_extra {
            metrics.extend(extra);
        }
        if let Some(t) = spec
            .remove("targetCPUUtilizationPercentage")
            .filter(|v| !v.is_null())
        {
            metrics.push(json!({"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": t}}}));
        }
        if !metrics.is_empty() {
            spec.insert("metrics".into(), Value::Array(metrics));
        }
        if let Some(b) = behavior {
            spec.insert("behavior".into(), b);
        }
    }
    if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
        let mut current: Vec<Value> = Vec::new();
        if let Some(Value::Array(extra)) = current_extra {
            current.extend(extra);
        }
        if let Some(c) = status
            .remove("currentCPUUtilizationPercentage")
            .filter(|v| !v.is_null())
        {
            current.push(json!({"type": "Resource", "resource": {"name": "cpu",
                "current": {"averageUtilization": c}}}));
        }
        if !current.is_empty() {
            status.insert("currentMetrics".into(), Value::Array(current));
        }
        if let Some(c) = conditions {
            status.insert("conditions".into(), c);
        }
    }
    obj
}

fn hpa_v2_to_v1(mut obj: Value) -> Value {
    obj["apiVersion"] = json!("autoscaling/v1");
    let mut extra_metrics = Vec::new();
    let mut behavior = None;
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        if let Some(Value::Array(metrics)) = spec.remove("metrics") {
            for m in metrics {
                if is_cpu_utilization(&m) && !spec.contains_key("targetCPUUtilizationPercentage") {
                    if let Some(u) = m.pointer("/resource/target/averageUtilization") {
                        spec.insert("targetCPUUtilizationPercentage".into(), u.clone());
                    }
                } else {
                    extra_metrics.push(m);
                }
            }
        }
        behavior = spec.remove("behavior");
    }
    let mut extra_current = Vec::new();
    let mut conditions = None;
    if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
        if let Some(Value::Array(current)) = status.remove("currentMetrics") {
            for m in current {
                let cpu = m.get("type").and_then(Value::as_str) == Some("Resource")
                    && m.pointer("/resource/name").and_then(Value::as_str) == Some("cpu");
                match m.pointer("/resource/current/averageUtilization") {
                    Some(u) if cpu => {
                        status.insert("currentCPUUtilizationPercentage".into(), u.clone());
                    }
                    _ => extra_current.push(m),
                }
            }
        }
        conditions = status.remove("conditions");
        status.entry("currentReplicas").or_insert(json!(0));
    }
    let encode = |v: &Value| Value::String(serde_json::to_string(v).unwrap_or_default());
    if !extra_metrics.is_empty() {
        annotations(&mut obj).insert(HPA_METRICS.into(), encode(&Value::Array(extra_metrics)));
    }
    if !extra_current.is_empty() {
        annotations(&mut obj).insert(
            HPA_CURRENT_METRICS.into(),
            encode(&Value::Array(extra_current)),
        );
    }
    if let Some(c) = conditions.filter(|c| c.as_array().is_some_and(|a| !a.is_empty())) {
        annotations(&mut obj).insert(HPA_CONDITIONS.into(), encode(&c));
    }
    if let Some(b) = behavior {
        annotations(&mut obj).insert(HPA_BEHAVIOR.into(), encode(&b));
    }
    tidy_annotations(&mut obj);
    obj
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hpa_cpu_target_round_trips_between_v1_and_v2() {
        let v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
                     "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 50}});
        let v2 = hpa_v1_to_v2(v1.clone());
        assert_eq!(
            v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            50
        );
        assert!(v2["metadata"].get("annotations").is_none());
        assert_eq!(hpa_v2_to_v1(v2)["spec"], v1["spec"]);
    }

    #[test]
    fn hpa_v2_only_metrics_survive_a_v1_round_trip() {
        let v2 = json!({"apiVersion": "autoscaling/v2", "metadata": {"name": "web"},
            "spec": {"maxReplicas": 3, "metrics": [
                {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}}]}});
        let back = hpa_v1_to_v2(hpa_v2_to_v1(v2.clone()));
        assert_eq!(back["spec"], v2["spec"]);
    }

    #[test]
    fn events_rename_fields_between_groups() {
        let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
            "involvedObject": {"kind": "Pod", "name": "p"}, "message": "hi", "count": 2,
            "source": {"component": "kubelet"}, "reason": "Pulled", "type": "Normal",
            "eventTime": null});
        let ev = event_from_core(core.clone());
        assert_eq!(ev["regarding"]["name"], "p");
        assert_eq!(ev["note"], "hi");
        assert_eq!(ev["deprecatedCount"], 2);
        assert_eq!(event_to_core(ev), core);
    }
}
