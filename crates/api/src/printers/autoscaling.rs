//! autoscaling: horizontalpodautoscalers, stored as autoscaling/v2 (autoscaling/v1 objects are
//! read through the same conversion upstream applies).

use serde_json::{Value, json};

use super::core::{age, cells, col, name, text};
use super::util::{arr_at, get, int_at, opt_int, quantity_ptr_at, str_at};
use super::{AGE_COLUMN, Cell, Column, NAME_COLUMN, Row, docs};

static HPA_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Reference", "string", docs::HPA_SPEC_SCALE_TARGET_REF),
    col("Targets", "string", docs::HPA_SPEC_METRICS),
    col("MinPods", "string", docs::HPA_SPEC_MIN_REPLICAS),
    col("MaxPods", "string", docs::HPA_SPEC_MAX_REPLICAS),
    col("Replicas", "string", docs::HPA_STATUS_CURRENT_REPLICAS),
    AGE_COLUMN,
];

pub(super) fn columns(resource: &str) -> Option<&'static [Column]> {
    (resource == "horizontalpodautoscalers").then_some(HPA_COLUMNS)
}

pub(super) fn row(resource: &str, obj: &Value) -> Option<Row> {
    if resource != "horizontalpodautoscalers" {
        return None;
    }
    let (specs, statuses) = metrics(obj);
    let min_pods = match opt_int(obj, "/spec/minReplicas") {
        Some(n) => n.to_string(),
        None => "<unset>".to_string(),
    };
    Some(cells(vec![
        name(obj),
        text(format!(
            "{}/{}",
            str_at(obj, "/spec/scaleTargetRef/kind"),
            str_at(obj, "/spec/scaleTargetRef/name")
        )),
        text(format_metrics(&specs, &statuses)),
        text(min_pods),
        Cell::Int(int_at(obj, "/spec/maxReplicas")),
        Cell::Int(int_at(obj, "/status/currentReplicas")),
        age(obj),
    ]))
}

/// spec.metrics and status.currentMetrics in autoscaling/v2 form.
fn metrics(obj: &Value) -> (Vec<Value>, Vec<Value>) {
    let is_v1 = match str_at(obj, "/apiVersion") {
        "autoscaling/v1" => true,
        "" => get(obj, "/spec/metrics").is_none(),
        _ => false,
    };
    if !is_v1 {
        return (
            arr_at(obj, "/spec/metrics").to_vec(),
            arr_at(obj, "/status/currentMetrics").to_vec(),
        );
    }
    // autoscaling/v1 carries one CPU utilization target and its current value.
    let specs = match opt_int(obj, "/spec/targetCPUUtilizationPercentage") {
        Some(target) => vec![json!({
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}},
        })],
        None => Vec::new(),
    };
    let statuses = match opt_int(obj, "/status/currentCPUUtilizationPercentage") {
        Some(current) => vec![json!({
            "type": "Resource",
            "resource": {"name": "cpu", "current": {"averageUtilization": current}},
        })],
        None => Vec::new(),
    };
    (specs, statuses)
}

/// `formatHPAMetrics`: `current/target` per metric, the first two, then ` + N more...`.
fn format_metrics(specs: &[Value], statuses: &[Value]) -> String {
    if specs.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 2;
    let mut list: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| format_metric(spec, statuses.get(i)))
        .collect();
    let count = list.len();
    if count > MAX {
        list.truncate(MAX);
        return format!("{} + {} more...", list.join(", "), count - MAX);
    }
    list.join(", ")
}

fn format_metric(spec: &Value, status: Option<&Value>) -> String {
    const UNKNOWN: &str = "<unknown>";
    // The status entry of the same index, when it carries the given source.
    let source = |key: &str| status.and_then(|s| get(s, &format!("/{key}")));
    match str_at(spec, "/type") {
        kind @ ("External" | "Object") => {
            let key = if kind == "External" {
                "external"
            } else {
                "object"
            };
            let target = |field: &str| quantity_ptr_at(spec, &format!("/{key}/target/{field}"));
            if get(spec, &format!("/{key}/target/averageValue")).is_some() {
                let current = source(key)
                    .filter(|s| get(s, "/current/averageValue").is_some())
                    .map(|s| quantity_ptr_at(s, "/current/averageValue"))
                    .unwrap_or_else(|| UNKNOWN.to_string());
                format!("{current}/{} (avg)", target("averageValue"))
            } else {
                let current = source(key)
                    .map(|s| quantity_ptr_at(s, "/current/value"))
                    .unwrap_or_else(|| UNKNOWN.to_string());
                format!("{current}/{}", target("value"))
            }
        }
        "Pods" => {
            let current = source("pods")
                .map(|s| quantity_ptr_at(s, "/current/averageValue"))
                .unwrap_or_else(|| UNKNOWN.to_string());
            format!(
                "{current}/{}",
                quantity_ptr_at(spec, "/pods/target/averageValue")
            )
        }
        kind @ ("Resource" | "ContainerResource") => {
            let key = if kind == "Resource" {
                "resource"
            } else {
                "containerResource"
            };
            let resource_name = str_at(spec, &format!("/{key}/name"));
            if get(spec, &format!("/{key}/target/averageValue")).is_some() {
                let current = source(key)
                    .map(|s| quantity_ptr_at(s, "/current/averageValue"))
                    .unwrap_or_else(|| UNKNOWN.to_string());
                let target = quantity_ptr_at(spec, &format!("/{key}/target/averageValue"));
                format!("{resource_name}: {current}/{target}")
            } else {
                let current = source(key)
                    .and_then(|s| opt_int(s, "/current/averageUtilization"))
                    .map(|u| format!("{u}%"))
                    .unwrap_or_else(|| UNKNOWN.to_string());
                let target = opt_int(spec, &format!("/{key}/target/averageUtilization"))
                    .map(|u| format!("{u}%"))
                    .unwrap_or_else(|| "<auto>".to_string());
                format!("{resource_name}: {current}/{target}")
            }
        }
        _ => "<unknown type>".to_string(),
    }
}
