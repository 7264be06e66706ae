//! `LimitRanger`: containers without requests or limits get the defaults of the namespace's
//! LimitRanges (recorded in the `kubernetes.io/limit-ranger` annotation), and pods and claims
//! outside a LimitRange's min, max or limit/request ratio are refused with upstream's messages.

use ferrokube_api::ApiError;
use ferrokube_api::quantity::Quantity;
use ferrokube_api::quota::{self, ResourceList};
use ferrokube_api::resources::ResourceInfo;
use serde_json::{Value, json};

use crate::object;
use crate::registry::Registry;

const ANNOTATION: &str = "kubernetes.io/limit-ranger";
/// Quantities above this lose precision as milli-values (upstream `resource.MaxMilliValue`).
const MAX_MILLI_VALUE: i64 = i64::MAX / 1000;

fn limit_ranges(reg: &Registry, ns: &str) -> Vec<Value> {
    let mut lrs = super::cached_in_namespace(reg, "", "limitranges", ns);
    lrs.sort_by(|a, b| object::name(a).cmp(object::name(b)));
    lrs
}

fn items(lr: &Value) -> Vec<Value> {
    lr.pointer("/spec/limits")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Applies container defaults from every LimitRange of the pod's namespace.
pub fn default_pod(reg: &Registry, pod: &mut Value) {
    let ns = object::namespace(pod).to_string();
    for lr in limit_ranges(reg, &ns) {
        let mut requests = ResourceList::new();
        let mut limits = ResourceList::new();
        for item in items(&lr) {
            if item.get("type").and_then(Value::as_str) != Some("Container") {
                continue;
            }
            requests.extend(quota::parse_list(item.get("defaultRequest")));
            limits.extend(quota::parse_list(item.get("default")));
        }
        if requests.is_empty() && limits.is_empty() {
            continue;
        }
        let mut notes = Vec::new();
        for (field, prefix) in [
            ("containers", "container"),
            ("initContainers", "init container"),
        ] {
            let Some(cs) = pod
                .pointer_mut(&format!("/spec/{field}"))
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            for c in cs.iter_mut() {
                let name = c
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if !c["resources"].is_object() {
                    c["resources"] = json!({});
                }
                let mut set = |which: &str, defaults: &ResourceList| -> Vec<String> {
                    if !c["resources"][which].is_object() {
                        c["resources"][which] = json!({});
                    }
                    let mut names = Vec::new();
                    for (k, q) in defaults {
                        if c["resources"][which].get(k).is_none() {
                            c["resources"][which][k] = json!(q.to_string());
                            names.push(k.clone());
                        }
                    }
                    if c["resources"][which]
                        .as_object()
                        .is_some_and(|m| m.is_empty())
                        && let Some(r) = c["resources"].as_object_mut()
                    {
                        r.remove(which);
                    }
                    names.sort();
                    names
                };
                let lim = set("limits", &limits);
                let req = set("requests", &requests);
                if !req.is_empty() {
                    notes.push(format!("{} request for {prefix} {name}", req.join(", ")));
                }
                if !lim.is_empty() {
                    notes.push(format!("{} limit for {prefix} {name}", lim.join(", ")));
                }
            }
        }
        if !notes.is_empty() {
            object::meta_mut(pod)
                .entry("annotations")
                .or_insert_with(|| json!({}));
            pod["metadata"]["annotations"][ANNOTATION] =
                json!(format!("LimitRanger plugin set: {}", notes.join("; ")));
        }
    }
}

/// upstream `requestLimitEnforcedValues`: compare as milli-values unless they would overflow.
fn comparable(qs: [Option<&Quantity>; 3]) -> [i64; 3] {
    let values = qs.map(|q| q.map(Quantity::value).unwrap_or(0));
    if values.iter().all(|v| *v <= MAX_MILLI_VALUE) {
        qs.map(|q| q.map(Quantity::milli_value).unwrap_or(0))
    } else {
        values
    }
}

fn min_constraint(
    ty: &str,
    res: &str,
    enforced: &Quantity,
    req: &ResourceList,
    lim: &ResourceList,
) -> Option<String> {
    let (r, l) = (req.get(res), lim.get(res));
    let [rv, lv, ev] = comparable([r, l, Some(enforced)]);
    let Some(r) = r else {
        return Some(format!(
            "minimum {res} usage per {ty} is {enforced}.  No request is specified"
        ));
    };
    if rv < ev {
        return Some(format!(
            "minimum {res} usage per {ty} is {enforced}, but request is {r}"
        ));
    }
    if let Some(l) = l
        && lv < ev
    {
        return Some(format!(
            "minimum {res} usage per {ty} is {enforced}, but limit is {l}"
        ));
    }
    None
}

fn max_constraint(
    ty: &str,
    res: &str,
    enforced: &Quantity,
    req: &ResourceList,
    lim: &ResourceList,
) -> Option<String> {
    let (r, l) = (req.get(res), lim.get(res));
    let [rv, lv, ev] = comparable([r, l, Some(enforced)]);
    let Some(l) = l else {
        return Some(format!(
            "maximum {res} usage per {ty} is {enforced}.  No limit is specified"
        ));
    };
    if lv > ev {
        return Some(format!(
            "maximum {res} usage per {ty} is {enforced}, but limit is {l}"
        ));
    }
    if let Some(r) = r
        && rv > ev
    {
        return Some(format!(
            "maximum {res} usage per {ty} is {enforced}, but request is {r}"
        ));
    }
    None
}

fn max_request_constraint(
    ty: &str,
    res: &str,
    enforced: &Quantity,
    req: &ResourceList,
) -> Option<String> {
    let r = req.get(res);
    let [rv, _, ev] = comparable([r, None, Some(enforced)]);
    let Some(r) = r else {
        return Some(format!(
            "maximum {res} usage per {ty} is {enforced}.  No request is specified"
        ));
    };
    (rv > ev).then(|| format!("maximum {res} usage per {ty} is {enforced}, but request is {r}"))
}

fn ratio_constraint(
    ty: &str,
    res: &str,
    enforced: &Quantity,
    req: &ResourceList,
    lim: &ResourceList,
) -> Option<String> {
    let (r, l) = (req.get(res), lim.get(res));
    let [rv, lv, _] = comparable([r, l, Some(enforced)]);
    if r.is_none() || rv == 0 {
        return Some(format!(
            "{res} max limit to request ratio per {ty} is {enforced}, but no request is specified or request is 0"
        ));
    }
    if l.is_none() || lv == 0 {
        return Some(format!(
            "{res} max limit to request ratio per {ty} is {enforced}, but no limit is specified or limit is 0"
        ));
    }
    let observed = lv as f64 / rv as f64;
    let (scaled, max) = if enforced.value() <= MAX_MILLI_VALUE {
        (observed * 1000.0, enforced.milli_value() as f64)
    } else {
        (observed, enforced.value() as f64)
    };
    (scaled > max).then(|| {
        format!(
            "{res} max limit to request ratio per {ty} is {enforced}, but provided ratio is {observed:.6}"
        )
    })
}

fn check(errs: &mut Vec<String>, ty: &str, item: &Value, req: &ResourceList, lim: &ResourceList) {
    for (res, q) in quota::parse_list(item.get("min")) {
        errs.extend(min_constraint(ty, &res, &q, req, lim));
    }
    for (res, q) in quota::parse_list(item.get("max")) {
        errs.extend(max_constraint(ty, &res, &q, req, lim));
    }
    for (res, q) in quota::parse_list(item.get("maxLimitRequestRatio")) {
        errs.extend(ratio_constraint(ty, &res, &q, req, lim));
    }
}

fn pod_errors(lr: &Value, pod: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    for item in items(lr) {
        match item.get("type").and_then(Value::as_str) {
            Some("Container") => {
                for field in ["containers", "initContainers"] {
                    for c in pod
                        .pointer(&format!("/spec/{field}"))
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let req = quota::parse_list(c.pointer("/resources/requests"));
                        let lim = quota::parse_list(c.pointer("/resources/limits"));
                        check(&mut errs, "Container", &item, &req, &lim);
                    }
                }
            }
            Some("Pod") => {
                let mut p = pod.clone();
                if let Some(s) = p["spec"].as_object_mut() {
                    s.remove("overhead");
                }
                let req = quota::pod_resources(&p, "requests");
                let lim = quota::pod_resources(&p, "limits");
                check(&mut errs, "Pod", &item, &req, &lim);
            }
            _ => {}
        }
    }
    errs
}

fn pvc_errors(lr: &Value, pvc: &Value, old: Option<&Value>) -> Vec<String> {
    let mut errs = Vec::new();
    let req = quota::parse_list(pvc.pointer("/spec/resources/requests"));
    let old_req = old
        .map(|o| quota::parse_list(o.pointer("/spec/resources/requests")))
        .unwrap_or_default();
    let unchanged = |k: &str| matches!((req.get(k), old_req.get(k)), (Some(a), Some(b)) if a == b);
    for item in items(lr) {
        if item.get("type").and_then(Value::as_str) != Some("PersistentVolumeClaim") {
            continue;
        }
        for (res, q) in quota::parse_list(item.get("min")) {
            if !unchanged(&res) {
                errs.extend(min_constraint(
                    "PersistentVolumeClaim",
                    &res,
                    &q,
                    &req,
                    &ResourceList::new(),
                ));
            }
        }
        for (res, q) in quota::parse_list(item.get("max")) {
            if !unchanged(&res) {
                errs.extend(max_request_constraint(
                    "PersistentVolumeClaim",
                    &res,
                    &q,
                    &req,
                ));
            }
        }
    }
    errs
}

/// Checks a new pod (or a claim, new or updated) against every LimitRange of its namespace.
pub fn validate(
    reg: &Registry,
    info: &ResourceInfo,
    obj: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let pods = info.group.is_empty() && info.resource == "pods";
    let pvcs = info.group.is_empty() && info.resource == "persistentvolumeclaims";
    if !pods && !pvcs {
        return Ok(());
    }
    for lr in limit_ranges(reg, object::namespace(obj)) {
        let errs = if pods {
            pod_errors(&lr, obj)
        } else {
            pvc_errors(&lr, obj, old)
        };
        let why = match errs.len() {
            0 => continue,
            1 => errs[0].clone(),
            _ => format!("[{}]", errs.join(", ")),
        };
        return Err(ApiError::forbidden(
            info.group,
            info.resource,
            object::name(obj),
            &why,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lr(limits: Value) -> Value {
        json!({"metadata": {"name": "lr"}, "spec": {"limits": limits}})
    }

    #[test]
    fn container_min_max_and_ratio_use_upstreams_words() {
        let range = lr(json!([{"type": "Container",
            "min": {"cpu": "100m"}, "max": {"memory": "1Gi"}, "maxLimitRequestRatio": {"cpu": "2"}}]));
        let pod = json!({"spec": {"containers": [{"name": "a", "resources": {
            "requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "2Gi"}}}]}});
        assert_eq!(
            pod_errors(&range, &pod),
            vec![
                "minimum cpu usage per Container is 100m, but request is 50m".to_string(),
                "maximum memory usage per Container is 1Gi, but limit is 2Gi".to_string(),
                "cpu max limit to request ratio per Container is 2, but provided ratio is 10.000000".to_string(),
            ]
        );
        let bare = json!({"spec": {"containers": [{"name": "a"}]}});
        assert_eq!(
            pod_errors(&range, &bare)[0],
            "minimum cpu usage per Container is 100m.  No request is specified"
        );
    }

    #[test]
    fn claims_are_held_to_storage_bounds() {
        let range = lr(
            json!([{"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "5Gi"}}]),
        );
        let big = json!({"spec": {"resources": {"requests": {"storage": "10Gi"}}}});
        assert_eq!(
            pvc_errors(&range, &big, None),
            vec![
                "maximum storage usage per PersistentVolumeClaim is 5Gi, but request is 10Gi"
                    .to_string()
            ]
        );
        assert!(
            pvc_errors(&range, &big, Some(&big)).is_empty(),
            "unchanged requests are not checked again"
        );
    }
}
