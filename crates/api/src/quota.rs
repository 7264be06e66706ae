//! Resource quota evaluation as upstream's `pkg/quota/v1` evaluators do it: what an object
//! uses (`count/<resource>`, `pods`, `requests.cpu`, `services.nodeports`, ...), which quota
//! names an evaluator answers for, quota scopes, the pod constraints ("must specify ..."), and
//! the resource-list arithmetic and printing of the admission messages.
//!
//! The API server's `ResourceQuota` admission and the controller manager's resourcequota
//! controller both use this module, so a quota's `status.used` and the admission decision
//! always agree.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::quantity::Quantity;

/// `resource name -> quantity`, sorted as upstream prints it.
pub type ResourceList = BTreeMap<String, Quantity>;

/// The object-count name of a resource: `count/pods`, `count/deployments.apps`.
pub fn object_count_name(group: &str, resource: &str) -> String {
    if group.is_empty() {
        format!("count/{resource}")
    } else {
        format!("count/{resource}.{group}")
    }
}

/// Reads a `ResourceList` field (`spec.hard`, `status.used`, `resources.requests`).
pub fn parse_list(v: Option<&Value>) -> ResourceList {
    let mut out = ResourceList::new();
    if let Some(m) = v.and_then(Value::as_object) {
        for (k, q) in m {
            if let Ok(q) = Quantity::from_json(q) {
                out.insert(k.clone(), q);
            }
        }
    }
    out
}

/// A `ResourceList` as JSON, quantities in upstream's serialized form.
pub fn list_to_json(l: &ResourceList) -> Value {
    let mut m = Map::new();
    for (k, q) in l {
        m.insert(k.clone(), Value::String(q.to_string()));
    }
    Value::Object(m)
}

pub fn add(a: &ResourceList, b: &ResourceList) -> ResourceList {
    let mut out = a.clone();
    for (k, q) in b {
        let sum = match out.get(k) {
            Some(x) => x.add(q),
            None => q.clone(),
        };
        out.insert(k.clone(), sum);
    }
    out
}

pub fn subtract(a: &ResourceList, b: &ResourceList) -> ResourceList {
    let mut out = a.clone();
    for (k, q) in b {
        let d = match out.get(k) {
            Some(x) => x.sub(q),
            None => q.neg(),
        };
        out.insert(k.clone(), d);
    }
    out
}

/// Only the entries whose names are in `names`.
pub fn mask<'a>(l: &ResourceList, names: impl IntoIterator<Item = &'a String>) -> ResourceList {
    let mut out = ResourceList::new();
    for n in names {
        if let Some(q) = l.get(n) {
            out.insert(n.clone(), q.clone());
        }
    }
    out
}

pub fn is_zero(l: &ResourceList) -> bool {
    l.values().all(Quantity::is_zero)
}

/// Names with a negative quantity.
pub fn negative(l: &ResourceList) -> Vec<String> {
    l.iter()
        .filter(|(_, q)| q.sign() < 0)
        .map(|(k, _)| k.clone())
        .collect()
}

/// Whether every entry of `a` is at most its counterpart in `b`; the names that are not.
/// Names missing from `b` are not limited.
pub fn less_than_or_equal(a: &ResourceList, b: &ResourceList) -> (bool, Vec<String>) {
    let mut exceeded = Vec::new();
    for (k, q) in a {
        if let Some(limit) = b.get(k)
            && q > limit
        {
            exceeded.push(k.clone());
        }
    }
    (exceeded.is_empty(), exceeded)
}

/// `pods=1,requests.cpu=500m`, sorted, as the admission messages print lists.
pub fn pretty_print(l: &ResourceList) -> String {
    l.iter()
        .map(|(k, q)| format!("{k}={q}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Resource names sorted and joined with commas.
pub fn pretty_print_names<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    let set: BTreeSet<&String> = names.into_iter().collect();
    set.into_iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

const POD_RESOURCES: &[&str] = &[
    "count/pods",
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
];

/// Quota names whose presence obliges every container to say what it needs (upstream calls
/// this a mistake kept for compatibility).
const POD_VALIDATION_SET: &[&str] = &[
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
];

const STORAGE_CLASS_SUFFIX: &str = ".storageclass.storage.k8s.io/";

fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// The names out of `hard` that the evaluator of `group/resource` accounts for.
pub fn matching_resources(group: &str, resource: &str, hard: &[String]) -> Vec<String> {
    let count = object_count_name(group, resource);
    hard.iter()
        .filter(|n| {
            let n = n.as_str();
            if n == count {
                return true;
            }
            match (group, resource) {
                ("", "pods") => {
                    POD_RESOURCES.contains(&n)
                        || n.starts_with("hugepages-")
                        || n.starts_with("requests.hugepages-")
                        || (n.starts_with("requests.")
                            && !is_native_resource(n.trim_start_matches("requests.")))
                }
                ("", "services") => {
                    matches!(
                        n,
                        "services" | "services.nodeports" | "services.loadbalancers"
                    )
                }
                ("", "persistentvolumeclaims") => {
                    matches!(n, "persistentvolumeclaims" | "requests.storage")
                        || n.ends_with(&format!("{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"))
                        || n.ends_with(&format!("{STORAGE_CLASS_SUFFIX}requests.storage"))
                }
                ("", "configmaps" | "secrets" | "replicationcontrollers" | "resourcequotas") => {
                    n == resource
                }
                _ => false,
            }
        })
        .cloned()
        .collect()
}

/// Whether a quota may limit objects of this resource at all (it names something the
/// evaluator accounts for).
pub fn quota_matches_resource(group: &str, resource: &str, hard: &ResourceList) -> bool {
    let names: Vec<String> = hard.keys().cloned().collect();
    !matching_resources(group, resource, &names).is_empty()
}

fn containers(pod: &Value, field: &str) -> Vec<Value> {
    pod.pointer(&format!("/spec/{field}"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn container_list(c: &Value, which: &str) -> ResourceList {
    parse_list(c.pointer(&format!("/resources/{which}")))
}

fn max_list(a: &ResourceList, b: &ResourceList) -> ResourceList {
    let mut out = a.clone();
    for (k, q) in b {
        match out.get(k) {
            Some(x) if x >= q => {}
            _ => {
                out.insert(k.clone(), q.clone());
            }
        }
    }
    out
}

/// A pod's effective requests or limits (`which`: "requests" / "limits") as upstream's
/// `PodRequests`/`PodLimits`: the sum over app containers and sidecars, at least the largest
/// init container (with the sidecars started before it), plus the pod overhead.
pub fn pod_resources(pod: &Value, which: &str) -> ResourceList {
    if let Some(level) = pod.pointer(&format!("/spec/resources/{which}"))
        && level.as_object().is_some_and(|m| !m.is_empty())
    {
        let mut l = parse_list(Some(level));
        if let Some(o) = pod.pointer("/spec/overhead") {
            l = add(&l, &parse_list(Some(o)));
        }
        return l;
    }
    let mut sum = ResourceList::new();
    for c in containers(pod, "containers") {
        sum = add(&sum, &container_list(&c, which));
    }
    let mut sidecars = ResourceList::new();
    let mut init_max = ResourceList::new();
    for c in containers(pod, "initContainers") {
        let own = container_list(&c, which);
        if c.get("restartPolicy").and_then(Value::as_str) == Some("Always") {
            sidecars = add(&sidecars, &own);
            init_max = max_list(&init_max, &sidecars);
        } else {
            init_max = max_list(&init_max, &add(&sidecars, &own));
        }
    }
    let mut total = max_list(&add(&sum, &sidecars), &init_max);
    if let Some(o) = pod.pointer("/spec/overhead") {
        total = add(&total, &parse_list(Some(o)));
    }
    total
}

/// upstream `podComputeUsageHelper`: the compute names a set of requests and limits fills.
fn pod_compute_usage(requests: &ResourceList, limits: &ResourceList) -> ResourceList {
    let mut r = ResourceList::new();
    r.insert("pods".into(), Quantity::from_i64(1));
    for res in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(q) = requests.get(res) {
            r.insert(res.to_string(), q.clone());
            r.insert(format!("requests.{res}"), q.clone());
        }
        if let Some(q) = limits.get(res) {
            r.insert(format!("limits.{res}"), q.clone());
        }
    }
    for (k, q) in requests {
        if k.starts_with("hugepages-") {
            r.insert(k.clone(), q.clone());
            r.insert(format!("requests.{k}"), q.clone());
        } else if !is_native_resource(k) {
            r.insert(format!("requests.{k}"), q.clone());
        }
    }
    r
}

/// upstream `QuotaV1Pod`: terminal pods, and pods past their deletion grace period, no longer
/// count against compute quota.
pub fn pod_counts_for_compute(pod: &Value, now: jiff::Timestamp) -> bool {
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    if phase == "Succeeded" || phase == "Failed" {
        return false;
    }
    if let (Some(ts), Some(grace)) = (
        pod.pointer("/metadata/deletionTimestamp")
            .and_then(Value::as_str),
        pod.pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64),
    ) && let Ok(t) = ts.parse::<jiff::Timestamp>()
    {
        let deadline = t + jiff::SignedDuration::from_secs(grace);
        if now > deadline {
            return false;
        }
    }
    true
}

/// What one object uses, for the evaluator of `group/resource`.
pub fn usage(group: &str, resource: &str, obj: &Value, now: jiff::Timestamp) -> ResourceList {
    let one = Quantity::from_i64(1);
    let mut r = ResourceList::new();
    r.insert(object_count_name(group, resource), one.clone());
    match (group, resource) {
        ("", "pods") if pod_counts_for_compute(obj, now) => {
            let req = pod_resources(obj, "requests");
            let lim = pod_resources(obj, "limits");
            r = add(&r, &pod_compute_usage(&req, &lim));
        }
        ("", "services") => {
            r.insert("services".into(), one.clone());
            let ty = obj
                .pointer("/spec/type")
                .and_then(Value::as_str)
                .unwrap_or("ClusterIP");
            let ports = obj
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            match ty {
                "NodePort" => {
                    r.insert(
                        "services.nodeports".into(),
                        Quantity::from_i64(ports.len() as i64),
                    );
                }
                "LoadBalancer" => {
                    let allocate = obj
                        .pointer("/spec/allocateLoadBalancerNodePorts")
                        .and_then(Value::as_bool)
                        .unwrap_or(true);
                    let n = if allocate {
                        ports.len()
                    } else {
                        ports
                            .iter()
                            .filter(|p| p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0)
                            .count()
                    };
                    r.insert("services.nodeports".into(), Quantity::from_i64(n as i64));
                    r.insert("services.loadbalancers".into(), one.clone());
                }
                _ => {}
            }
        }
        ("", "persistentvolumeclaims") => {
            r.insert("persistentvolumeclaims".into(), one.clone());
            let class = obj
                .pointer("/spec/storageClassName")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !class.is_empty() {
                r.insert(
                    format!("{class}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"),
                    one.clone(),
                );
            }
            if let Some(q) = obj
                .pointer("/spec/resources/requests/storage")
                .and_then(|v| Quantity::from_json(v).ok())
            {
                r.insert("requests.storage".into(), q.clone());
                if !class.is_empty() {
                    r.insert(format!("{class}{STORAGE_CLASS_SUFFIX}requests.storage"), q);
                }
            }
        }
        ("", "configmaps" | "secrets" | "replicationcontrollers" | "resourcequotas") => {
            r.insert(resource.to_string(), one);
        }
        _ => {}
    }
    r
}

fn is_terminating(pod: &Value) -> bool {
    pod.pointer("/spec/activeDeadlineSeconds")
        .and_then(Value::as_i64)
        .is_some_and(|d| d >= 0)
}

fn is_best_effort(pod: &Value) -> bool {
    let all: Vec<Value> = containers(pod, "containers")
        .into_iter()
        .chain(containers(pod, "initContainers"))
        .collect();
    all.iter().all(|c| {
        ["requests", "limits"].iter().all(|w| {
            container_list(c, w)
                .iter()
                .all(|(k, q)| !(k == "cpu" || k == "memory") || q.is_zero())
        })
    })
}

fn uses_cross_namespace_affinity(pod: &Value) -> bool {
    let Some(aff) = pod.pointer("/spec/affinity") else {
        return false;
    };
    for kind in ["podAffinity", "podAntiAffinity"] {
        for field in [
            "requiredDuringSchedulingIgnoredDuringExecution",
            "preferredDuringSchedulingIgnoredDuringExecution",
        ] {
            for term in aff
                .pointer(&format!("/{kind}/{field}"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let t = term.get("podAffinityTerm").unwrap_or(term);
                if t.get("namespaces")
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty())
                    || t.get("namespaceSelector").is_some()
                {
                    return true;
                }
            }
        }
    }
    false
}

fn pod_matches_scope(pod: &Value, scope: &str, op: &str, values: &[String]) -> bool {
    match scope {
        "Terminating" => is_terminating(pod),
        "NotTerminating" => !is_terminating(pod),
        "BestEffort" => is_best_effort(pod),
        "NotBestEffort" => !is_best_effort(pod),
        "PriorityClass" => {
            let pc = pod
                .pointer("/spec/priorityClassName")
                .and_then(Value::as_str)
                .unwrap_or("");
            match op {
                "Exists" => !pc.is_empty(),
                "DoesNotExist" => pc.is_empty(),
                "In" => values.iter().any(|v| v == pc),
                "NotIn" => !values.iter().any(|v| v == pc),
                _ => false,
            }
        }
        "CrossNamespacePodAffinity" => uses_cross_namespace_affinity(pod),
        _ => false,
    }
}

/// The scope requirements of a quota: `spec.scopes` (operator Exists) and `spec.scopeSelector`.
fn quota_scopes(quota: &Value) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    for s in quota
        .pointer("/spec/scopes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        out.push((s.to_string(), "Exists".to_string(), Vec::new()));
    }
    for e in quota
        .pointer("/spec/scopeSelector/matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = e.get("scopeName").and_then(Value::as_str).unwrap_or("");
        let op = e.get("operator").and_then(Value::as_str).unwrap_or("");
        let values = e
            .get("values")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        out.push((name.to_string(), op.to_string(), values));
    }
    out
}

/// Whether the quota's scopes select `obj` (only pods can be scoped; a scoped quota selects
/// nothing else).
pub fn matches_scopes(quota: &Value, group: &str, resource: &str, obj: &Value) -> bool {
    let scopes = quota_scopes(quota);
    if scopes.is_empty() {
        return true;
    }
    if !(group.is_empty() && resource == "pods") {
        return false;
    }
    scopes
        .iter()
        .all(|(s, op, vals)| pod_matches_scope(obj, s, op, vals))
}

/// upstream `podEvaluator.Constraints`: with cpu or memory under quota, every container must
/// state them. The error text follows `failed quota: NAME: ` in the admission message.
pub fn constraints(
    group: &str,
    resource: &str,
    required: &[String],
    obj: &Value,
) -> Result<(), String> {
    if !(group.is_empty() && resource == "pods") {
        return Ok(());
    }
    if obj
        .pointer("/spec/resources")
        .and_then(Value::as_object)
        .is_some_and(|m| !m.is_empty())
    {
        return Ok(());
    }
    let required: BTreeSet<&str> = required
        .iter()
        .map(String::as_str)
        .filter(|r| POD_VALIDATION_SET.contains(r))
        .collect();
    let mut missing: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for c in containers(obj, "containers")
        .into_iter()
        .chain(containers(obj, "initContainers"))
    {
        let usage = pod_compute_usage(
            &container_list(&c, "requests"),
            &container_list(&c, "limits"),
        );
        for r in &required {
            if !usage.contains_key(*r) {
                missing.entry(r).or_default().insert(
                    c.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                );
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let parts: Vec<String> = missing
        .iter()
        .map(|(r, names)| {
            format!(
                "{r} for: {}",
                names.iter().cloned().collect::<Vec<_>>().join(",")
            )
        })
        .collect();
    Err(format!("must specify {}", parts.join("; ")))
}

/// The resources whose objects quota evaluates specially (everything else only has its
/// `count/...` name).
pub fn has_special_evaluator(group: &str, resource: &str) -> bool {
    group.is_empty()
        && matches!(
            resource,
            "pods"
                | "services"
                | "persistentvolumeclaims"
                | "configmaps"
                | "secrets"
                | "replicationcontrollers"
                | "resourcequotas"
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> jiff::Timestamp {
        "2025-01-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn pod_usage_counts_requests_limits_and_the_pod() {
        let pod = json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m"}}},
            {"name": "b", "resources": {"requests": {"cpu": "150m"}}}
        ]}});
        let u = usage("", "pods", &pod, now());
        assert_eq!(u["pods"].to_string(), "1");
        assert_eq!(u["count/pods"].to_string(), "1");
        assert_eq!(u["requests.cpu"].to_string(), "250m");
        assert_eq!(u["cpu"].to_string(), "250m");
        assert_eq!(u["requests.memory"].to_string(), "64Mi");
        assert_eq!(u["limits.cpu"].to_string(), "200m");
    }

    #[test]
    fn finished_pods_only_count_as_objects() {
        let pod =
            json!({"spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Succeeded"}});
        let u = usage("", "pods", &pod, now());
        assert!(!u.contains_key("pods"));
        assert!(u.contains_key("count/pods"));
    }

    #[test]
    fn init_containers_raise_requests_to_their_maximum() {
        let pod = json!({"spec": {
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "1"}}}],
            "containers": [{"name": "a", "resources": {"requests": {"cpu": "300m"}}}]
        }});
        assert_eq!(pod_resources(&pod, "requests")["cpu"].to_string(), "1");
    }

    #[test]
    fn services_count_node_ports_and_load_balancers() {
        let svc = json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}, {"port": 443}]}});
        let u = usage("", "services", &svc, now());
        assert_eq!(u["services.nodeports"].to_string(), "2");
        assert_eq!(u["services.loadbalancers"].to_string(), "1");
        assert_eq!(u["count/services"].to_string(), "1");
    }

    #[test]
    fn claims_count_storage_per_class() {
        let pvc = json!({"spec": {"storageClassName": "fast", "resources": {"requests": {"storage": "3Gi"}}}});
        let u = usage("", "persistentvolumeclaims", &pvc, now());
        assert_eq!(u["requests.storage"].to_string(), "3Gi");
        assert_eq!(
            u["fast.storageclass.storage.k8s.io/requests.storage"].to_string(),
            "3Gi"
        );
    }

    #[test]
    fn quota_on_cpu_requires_every_container_to_request_it() {
        let pod = json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "1"}}},
            {"name": "b"}
        ]}});
        let err = constraints(
            "",
            "pods",
            &["requests.cpu".into(), "limits.memory".into(), "pods".into()],
            &pod,
        )
        .unwrap_err();
        assert_eq!(
            err,
            "must specify limits.memory for: a,b; requests.cpu for: b"
        );
    }

    #[test]
    fn scopes_select_pods_by_deadline_and_qos() {
        let q = json!({"spec": {"scopes": ["BestEffort", "NotTerminating"]}});
        let be = json!({"spec": {"containers": [{"name": "a"}]}});
        assert!(matches_scopes(&q, "", "pods", &be));
        let burst = json!({"spec": {"containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}]}});
        assert!(!matches_scopes(&q, "", "pods", &burst));
        assert!(!matches_scopes(&q, "", "services", &json!({})));
    }

    #[test]
    fn comparisons_and_printing_follow_upstream() {
        let used = parse_list(Some(&json!({"pods": "2", "requests.cpu": "1"})));
        let hard = parse_list(Some(&json!({"pods": "2", "requests.cpu": "2"})));
        let req = parse_list(Some(&json!({"pods": "1", "requests.cpu": "500m"})));
        let (ok, exceeded) = less_than_or_equal(&add(&used, &req), &hard);
        assert!(!ok);
        assert_eq!(exceeded, vec!["pods".to_string()]);
        assert_eq!(pretty_print(&req), "pods=1,requests.cpu=500m");
        assert_eq!(
            matching_resources(
                "",
                "pods",
                &["pods".into(), "services".into(), "count/pods".into()]
            ),
            vec!["pods".to_string(), "count/pods".to_string()]
        );
        assert_eq!(
            matching_resources("apps", "deployments", &["count/deployments.apps".into()]),
            vec!["count/deployments.apps".to_string()]
        );
    }
}
