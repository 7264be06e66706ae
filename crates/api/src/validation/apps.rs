//! `apps/v1`: `pkg/apis/apps/validation/validation.go`.

use serde_json::{Map, Value};

use super::core::{pvc_spec, validate_pod_template_spec};
use super::meta::{
    FIELD_IMMUTABLE, go_label_selector, nonnegative, selector_matches, validate_label_selector,
};
use super::names;
use super::{
    Errs, Path, go_int_or_string, go_string_map, int, invalid_go, not_supported_go, obj, objs,
    present, string,
};
use crate::error::{FieldError, FieldErrorType};

pub(super) fn validate(
    errs: &mut Errs,
    kind: &str,
    m: &Map<String, Value>,
    old: Option<&Map<String, Value>>,
) {
    let sp = Path::new("spec");
    let empty = Map::new();
    let spec = obj(errs, m, "spec", &Path::new("")).unwrap_or(&empty);
    match kind {
        "Deployment" => deployment(errs, spec, &sp),
        "ReplicaSet" => replica_set(errs, spec, &sp),
        "DaemonSet" => daemon_set(errs, spec, &sp),
        "StatefulSet" => stateful_set(errs, spec, &sp),
        "ControllerRevision" => {
            if present(m, "data").is_none() && old.is_none() {
                // data may be any object; only the revision is checked upstream
            }
            if let Some(r) = int(errs, m, "revision", &Path::new("")) {
                nonnegative(errs, r, &Path::new("revision"));
            }
        }
        _ => {}
    }
    if let Some(o) = old {
        let os = o.get("spec").and_then(Value::as_object).unwrap_or(&empty);
        if matches!(
            kind,
            "Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet"
        ) {
            selector_immutable(errs, spec, os, &sp);
        }
        if kind == "StatefulSet" {
            stateful_set_update(errs, spec, os, &sp);
        }
        if kind == "ControllerRevision" && m.get("data") != o.get("data") {
            errs.push(FieldError::invalid(
                Path::new("data"),
                Value::Null,
                FIELD_IMMUTABLE,
            ));
        }
    }
}

/// Selectors of apps/v1 workloads cannot change: `spec.selector: Invalid value: ...: field is immutable`.
fn selector_immutable(
    errs: &mut Errs,
    new: &Map<String, Value>,
    old: &Map<String, Value>,
    sp: &Path,
) {
    let n = new.get("selector").filter(|v| !v.is_null());
    let o = old.get("selector").filter(|v| !v.is_null());
    if n != o {
        let rendered = match n.and_then(Value::as_object) {
            Some(sel) => go_label_selector(sel),
            None => "(*v1.LabelSelector)(nil)".to_string(),
        };
        errs.push(invalid_go(
            &sp.child("selector"),
            &rendered,
            FIELD_IMMUTABLE,
        ));
    }
}

fn template_labels(t: Option<&Map<String, Value>>) -> (Vec<(&str, &str)>, bool) {
    match t
        .and_then(|t| t.get("metadata"))
        .and_then(|md| md.get("labels"))
        .and_then(Value::as_object)
    {
        Some(l) => (
            l.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v)))
                .collect(),
            true,
        ),
        None => (Vec::new(), false),
    }
}

/// The selector (validated) and whether it is set.
fn workload_selector<'a>(
    errs: &mut Errs,
    spec: &'a Map<String, Value>,
    sp: &Path,
    what: &str,
    required: bool,
) -> Option<&'a Map<String, Value>> {
    let sel = obj(errs, spec, "selector", sp);
    match sel {
        None if required => errs.push(FieldError::required(sp.child("selector"), "")),
        None => {}
        Some(s) => {
            validate_label_selector(errs, s, &sp.child("selector"));
            let n = s
                .get("matchLabels")
                .and_then(Value::as_object)
                .map_or(0, Map::len)
                + s.get("matchExpressions")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
            if n == 0 {
                errs.push(invalid_go(
                    &sp.child("selector"),
                    &go_label_selector(s),
                    &format!("empty selector is invalid for {what}"),
                ));
            }
        }
    }
    sel
}

fn selector_mismatch(
    errs: &mut Errs,
    sel: Option<&Map<String, Value>>,
    t: Option<&Map<String, Value>>,
    tp: &Path,
) {
    let (labels, set) = template_labels(t);
    let empty_selector = sel.is_some_and(|s| {
        s.get("matchLabels")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty)
            && s.get("matchExpressions")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
    });
    if !empty_selector && !selector_matches(sel, &labels) {
        let rendered = go_string_map(set.then_some(labels.as_slice()));
        errs.push(invalid_go(
            &tp.child("metadata").child("labels"),
            &rendered,
            "`selector` does not match template `labels`",
        ));
    }
}

/// `ValidatePodTemplateSpecForReplicaSet`.
fn template_for_replica_set(
    errs: &mut Errs,
    spec: &Map<String, Value>,
    sel: Option<&Map<String, Value>>,
    sp: &Path,
    what: &str,
) {
    let tp = sp.child("template");
    let t = obj(errs, spec, "template", sp);
    selector_mismatch(errs, sel, t, &tp);
    let empty = Map::new();
    let t = t.unwrap_or(&empty);
    validate_pod_template_spec(errs, t, &tp);
    restart_always(errs, t, &tp);
    if t.get("spec")
        .and_then(|s| s.get("activeDeadlineSeconds"))
        .is_some_and(|v| !v.is_null())
    {
        errs.push(FieldError::forbidden(
            tp.child("spec").child("activeDeadlineSeconds"),
            format!("activeDeadlineSeconds in {what} is not Supported"),
        ));
    }
}

fn restart_always(errs: &mut Errs, t: &Map<String, Value>, tp: &Path) {
    let rp = t
        .get("spec")
        .and_then(|s| s.get("restartPolicy"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if rp != "Always" {
        errs.push(FieldError::not_supported(
            tp.child("spec").child("restartPolicy"),
            rp,
            &["Always"],
        ));
    }
}

fn deployment(errs: &mut Errs, spec: &Map<String, Value>, sp: &Path) {
    if let Some(r) = int(errs, spec, "replicas", sp) {
        nonnegative(errs, r, &sp.child("replicas"));
    }
    let sel = workload_selector(errs, spec, sp, "deployment", true);
    template_for_replica_set(errs, spec, sel, sp, "ReplicaSet");
    strategy(errs, spec, sp);
    let min_ready = int(errs, spec, "minReadySeconds", sp).unwrap_or(0);
    nonnegative(errs, min_ready, &sp.child("minReadySeconds"));
    if let Some(r) = int(errs, spec, "revisionHistoryLimit", sp) {
        nonnegative(errs, r, &sp.child("revisionHistoryLimit"));
    }
    if let Some(p) = int(errs, spec, "progressDeadlineSeconds", sp) {
        nonnegative(errs, p, &sp.child("progressDeadlineSeconds"));
        if p <= min_ready {
            errs.push(FieldError::invalid(
                sp.child("progressDeadlineSeconds"),
                p,
                "must be greater than minReadySeconds",
            ));
        }
    }
}

fn strategy(errs: &mut Errs, spec: &Map<String, Value>, sp: &Path) {
    let stp = sp.child("strategy");
    let empty = Map::new();
    let st = obj(errs, spec, "strategy", sp).unwrap_or(&empty);
    let ty = string(errs, st, "type", &stp);
    let ru = obj(errs, st, "rollingUpdate", &stp);
    match ty {
        "Recreate" => {
            if ru.is_some() {
                errs.push(FieldError::forbidden(
                    stp.child("rollingUpdate"),
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match ru {
            None => errs.push(FieldError::required(
                stp.child("rollingUpdate"),
                "this should be defaulted and never be nil",
            )),
            Some(ru) => {
                let rp = stp.child("rollingUpdate");
                let mu = ru.get("maxUnavailable");
                let ms = ru.get("maxSurge");
                int_or_percent(errs, mu, &rp.child("maxUnavailable"));
                int_or_percent(errs, ms, &rp.child("maxSurge"));
                if int_or_percent_value(mu) == 0 && int_or_percent_value(ms) == 0 {
                    errs.push(invalid_go(
                        &rp.child("maxUnavailable"),
                        &go_int_or_string(mu),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                not_more_than_100(errs, mu, &rp.child("maxUnavailable"));
            }
        },
        other => {
            let rendered = format!(
                "apps.DeploymentStrategy{{Type:{}, RollingUpdate:(*apps.RollingUpdateDeployment)({})}}",
                crate::error::go_quote(other),
                if ru.is_some() { "..." } else { "nil" }
            );
            errs.push(not_supported_go(
                &stp,
                &rendered,
                &["Recreate", "RollingUpdate"],
            ));
        }
    }
}

/// `getIntOrPercentValue`: the number, or the percentage for a string (0 when unparsable).
fn int_or_percent_value(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => s
            .strip_suffix('%')
            .and_then(|p| p.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

/// `ValidatePositiveIntOrPercent`.
pub(super) fn int_or_percent(errs: &mut Errs, v: Option<&Value>, path: &Path) {
    match v {
        Some(Value::String(s)) => {
            for msg in names::is_valid_percent(s) {
                errs.push(invalid_go(path, &go_int_or_string(v), &msg));
            }
        }
        Some(Value::Number(n)) => nonnegative(errs, n.as_i64().unwrap_or(-1), path),
        None | Some(Value::Null) => nonnegative(errs, 0, path),
        Some(_) => errs.push(invalid_go(
            path,
            &go_int_or_string(v),
            "must be an integer or percentage (e.g '5%')",
        )),
    }
}

pub(super) fn not_more_than_100(errs: &mut Errs, v: Option<&Value>, path: &Path) {
    if let Some(Value::String(s)) = v
        && let Some(p) = s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok())
        && p > 100
    {
        errs.push(invalid_go(
            path,
            &go_int_or_string(v),
            "must not be greater than 100%",
        ));
    }
}

fn replica_set(errs: &mut Errs, spec: &Map<String, Value>, sp: &Path) {
    if let Some(r) = int(errs, spec, "replicas", sp) {
        nonnegative(errs, r, &sp.child("replicas"));
    }
    if let Some(r) = int(errs, spec, "minReadySeconds", sp) {
        nonnegative(errs, r, &sp.child("minReadySeconds"));
    }
    let sel = workload_selector(errs, spec, sp, "deployment", true);
    template_for_replica_set(errs, spec, sel, sp, "ReplicaSet");
}

fn daemon_set(errs: &mut Errs, spec: &Map<String, Value>, sp: &Path) {
    let sel = workload_selector(errs, spec, sp, "daemonset", false);
    let tp = sp.child("template");
    let t = obj(errs, spec, "template", sp);
    selector_mismatch(errs, sel, t, &tp);
    let empty = Map::new();
    let t = t.unwrap_or(&empty);
    validate_pod_template_spec(errs, t, &tp);
    restart_always(errs, t, &tp);
    if let Some(ad) = t
        .get("spec")
        .and_then(|s| s.get("activeDeadlineSeconds"))
        .filter(|v| !v.is_null())
    {
        errs.push(FieldError::invalid(
            tp.child("spec").child("activeDeadlineSeconds"),
            ad.clone(),
            "activeDeadlineSeconds in DaemonSet is not Supported",
        ));
    }
    if let Some(r) = int(errs, spec, "minReadySeconds", sp) {
        nonnegative(errs, r, &sp.child("minReadySeconds"));
    }
    let up = sp.child("updateStrategy");
    let us = obj(errs, spec, "updateStrategy", sp).unwrap_or(&empty);
    let ty = string(errs, us, "type", &up);
    match ty {
        "OnDelete" => {}
        "RollingUpdate" => match obj(errs, us, "rollingUpdate", &up) {
            None => errs.push(FieldError::required(up.child("rollingUpdate"), "")),
            Some(ru) => {
                let rp = up.child("rollingUpdate");
                let mu = ru.get("maxUnavailable").filter(|v| !v.is_null());
                let ms = ru.get("maxSurge").filter(|v| !v.is_null());
                let has_unavailable = mu.is_some() && int_or_percent_value(mu) != 0;
                let has_surge = ms.is_some() && int_or_percent_value(ms) != 0;
                if has_unavailable {
                    int_or_percent(errs, mu, &rp.child("maxUnavailable"));
                    not_more_than_100(errs, mu, &rp.child("maxUnavailable"));
                }
                if has_surge {
                    int_or_percent(errs, ms, &rp.child("maxSurge"));
                    not_more_than_100(errs, ms, &rp.child("maxSurge"));
                }
                if has_unavailable && has_surge {
                    let rendered = match ms {
                        Some(Value::String(s)) => format!("\"{s}\""),
                        Some(v) => v.to_string(),
                        None => "null".into(),
                    };
                    errs.push(invalid_go(
                        &rp.child("maxSurge"),
                        &rendered,
                        "may not be set when maxUnavailable is non-zero",
                    ));
                } else if !has_unavailable && !has_surge {
                    errs.push(FieldError::required(
                        rp.child("maxUnavailable"),
                        "cannot be 0 when maxSurge is 0",
                    ));
                }
            }
        },
        other => {
            let rendered = format!(
                "apps.DaemonSetUpdateStrategy{{Type:{}, RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}}",
                crate::error::go_quote(other)
            );
            errs.push(not_supported_go(
                &up,
                &rendered,
                &["RollingUpdate", "OnDelete"],
            ));
        }
    }
    if let Some(r) = int(errs, spec, "revisionHistoryLimit", sp) {
        nonnegative(errs, r, &sp.child("revisionHistoryLimit"));
    }
}

fn stateful_set(errs: &mut Errs, spec: &Map<String, Value>, sp: &Path) {
    let pmp = string(errs, spec, "podManagementPolicy", sp);
    match pmp {
        "" => errs.push(FieldError::required(sp.child("podManagementPolicy"), "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(FieldError::invalid(
            sp.child("podManagementPolicy"),
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let up = sp.child("updateStrategy");
    let empty = Map::new();
    let us = obj(errs, spec, "updateStrategy", sp).unwrap_or(&empty);
    let ty = string(errs, us, "type", &up);
    let ru = obj(errs, us, "rollingUpdate", &up);
    match ty {
        "" => errs.push(FieldError::required(&up, "")),
        "OnDelete" => {
            if ru.is_some() {
                errs.push(invalid_go(
                    &up.child("rollingUpdate"),
                    "&apps.RollingUpdateStatefulSetStrategy{...}",
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(ru) = ru {
                let rp = up.child("rollingUpdate");
                if let Some(p) = int(errs, ru, "partition", &rp) {
                    nonnegative(errs, p, &rp.child("partition"));
                }
                if let Some(mu) = ru.get("maxUnavailable").filter(|v| !v.is_null()) {
                    int_or_percent(errs, Some(mu), &rp.child("maxUnavailable"));
                    if int_or_percent_value(Some(mu)) == 0 {
                        errs.push(invalid_go(
                            &rp.child("maxUnavailable"),
                            &go_int_or_string(Some(mu)),
                            "cannot be 0",
                        ));
                    }
                    not_more_than_100(errs, Some(mu), &rp.child("maxUnavailable"));
                }
            }
        }
        other => errs.push(invalid_go(
            &up,
            &format!(
                "apps.StatefulSetUpdateStrategy{{Type:{}, RollingUpdate:(*apps.RollingUpdateStatefulSetStrategy)(nil)}}",
                crate::error::go_quote(other)
            ),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    if let Some(p) = obj(errs, spec, "persistentVolumeClaimRetentionPolicy", sp) {
        let pp = sp.child("persistentVolumeClaimRetentionPolicy");
        for f in ["whenDeleted", "whenScaled"] {
            let v = string(errs, p, f, &pp);
            if !matches!(v, "Retain" | "Delete") {
                errs.push(FieldError::not_supported(
                    pp.child(f),
                    v,
                    &["Retain", "Delete"],
                ));
            }
        }
    }
    if let Some(r) = int(errs, spec, "replicas", sp) {
        nonnegative(errs, r, &sp.child("replicas"));
    }
    if let Some(r) = int(errs, spec, "minReadySeconds", sp) {
        nonnegative(errs, r, &sp.child("minReadySeconds"));
    }
    if let Some(o) = obj(errs, spec, "ordinals", sp)
        && let Some(s) = int(errs, o, "start", &sp.child("ordinals"))
    {
        nonnegative(errs, s, &sp.child("ordinals").child("start"));
    }
    let sel = workload_selector(errs, spec, sp, "statefulset", true);
    let tp = sp.child("template");
    let t = obj(errs, spec, "template", sp);
    selector_mismatch(errs, sel, t, &tp);
    let t = t.unwrap_or(&empty);
    // Claim templates provide volumes the pod template may mount.
    let mut tmpl = t.clone();
    let claims: Vec<Value> = objs(errs, spec, "volumeClaimTemplates", sp)
        .into_iter()
        .filter_map(|(cp, c)| {
            let name = c
                .get("metadata")
                .and_then(|md| md.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if name.is_empty() {
                errs.push(FieldError::required(cp.child("metadata").child("name"), ""));
            }
            if let Some(cs) = obj(errs, c, "spec", &cp) {
                pvc_spec(errs, cs, &cp.child("spec"));
            }
            (!name.is_empty()).then(
                || serde_json::json!({"name": name, "persistentVolumeClaim": {"claimName": name}}),
            )
        })
        .collect();
    if let Some(ts) = tmpl.get_mut("spec").and_then(Value::as_object_mut) {
        let vols = ts
            .entry("volumes")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(v) = vols.as_array_mut() {
            let existing: Vec<String> = v
                .iter()
                .filter_map(|x| x.get("name").and_then(Value::as_str).map(str::to_string))
                .collect();
            for c in claims {
                let n = c
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if !existing.contains(&n) {
                    v.push(c);
                }
            }
        }
    }
    let before = errs.0.len();
    validate_pod_template_spec(errs, &tmpl, &tp);
    // Errors about the claim volumes we added would point at indices the user never wrote.
    let user_vols = t
        .get("spec")
        .and_then(|s| s.get("volumes"))
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let prefix = tp.child("spec").child("volumes").to_string();
    let mut i = before;
    while i < errs.0.len() {
        let f = &errs.0[i].field;
        let idx = f
            .strip_prefix(&format!("{prefix}["))
            .and_then(|r| r.split(']').next())
            .and_then(|n| n.parse::<usize>().ok());
        if idx.is_some_and(|n| n >= user_vols) {
            errs.0.remove(i);
        } else {
            i += 1;
        }
    }
    restart_always(errs, t, &tp);
    if t.get("spec")
        .and_then(|s| s.get("activeDeadlineSeconds"))
        .is_some_and(|v| !v.is_null())
    {
        errs.push(FieldError::forbidden(
            tp.child("spec").child("activeDeadlineSeconds"),
            "activeDeadlineSeconds in StatefulSet is not Supported",
        ));
    }
    if let Some(r) = int(errs, spec, "revisionHistoryLimit", sp) {
        nonnegative(errs, r, &sp.child("revisionHistoryLimit"));
    }
}

/// `ValidateStatefulSetUpdate`: only a handful of spec fields may change.
fn stateful_set_update(
    errs: &mut Errs,
    new: &Map<String, Value>,
    old: &Map<String, Value>,
    sp: &Path,
) {
    let mutable = [
        "replicas",
        "ordinals",
        "template",
        "updateStrategy",
        "persistentVolumeClaimRetentionPolicy",
        "minReadySeconds",
        "revisionHistoryLimit",
        "selector",
    ];
    let strip = |m: &Map<String, Value>| {
        let mut m = m.clone();
        for k in mutable {
            m.remove(k);
        }
        m
    };
    let (mut n, mut o) = (strip(new), strip(old));
    // volumeClaimTemplates are compared without their status and TypeMeta.
    for m in [&mut n, &mut o] {
        if let Some(v) = m
            .get_mut("volumeClaimTemplates")
            .and_then(Value::as_array_mut)
        {
            for t in v.iter_mut().filter_map(Value::as_object_mut) {
                t.remove("status");
                t.remove("apiVersion");
                t.remove("kind");
            }
        }
    }
    if n != o {
        errs.push(FieldError {
            kind: FieldErrorType::Forbidden,
            field: sp.to_string(),
            bad_value: None,
            detail: "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden".into(),
        });
    }
}
