//! `Priority`: a pod's priority and preemption policy come from its PriorityClass (or the
//! global default class, or 0 and PreemptLowerPriority); a pod may not set a different value.

use ferrokube_api::ApiError;
use serde_json::{Value, json};

use crate::object;
use crate::registry::Registry;

/// The PriorityClasses every cluster has.
const SYSTEM_PRIORITY_CLASSES: &[(&str, i64)] = &[
    ("system-node-critical", 2_000_001_000),
    ("system-cluster-critical", 2_000_000_000),
];

/// `Priority`: the pod's priority and preemption policy from its PriorityClass (or the global
/// default class, or 0 and PreemptLowerPriority).
pub async fn admit_pod(reg: &Registry, pod: &mut Value) -> Result<(), ApiError> {
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
