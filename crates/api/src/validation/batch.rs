//! `batch/v1`: `pkg/apis/batch/validation/validation.go`.

use serde_json::{Map, Value};

use super::core::validate_pod_template_spec;
use super::meta::{
    FIELD_IMMUTABLE, go_label_selector, nonnegative, selector_matches, validate_label_selector,
};
use super::{
    Errs, Path, go_string_map, immutable, int, invalid_go, obj, objs, opt_str, present, string,
};
use crate::error::FieldError;

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
        "Job" => {
            if old.is_none() {
                generated_selector(errs, m, spec);
            }
            job_spec(errs, spec, &sp, true);
            if let Some(o) = old {
                job_update(
                    errs,
                    spec,
                    o.get("spec").and_then(Value::as_object).unwrap_or(&empty),
                    &sp,
                );
            }
        }
        "CronJob" => {
            cron_job(errs, m, spec, &sp);
            if let Some(o) = old {
                let _ = o;
            }
        }
        _ => {}
    }
}

/// `ValidateJobSpec` (`with_selector`: the Job itself; CronJob job templates have none).
pub(super) fn job_spec(errs: &mut Errs, spec: &Map<String, Value>, sp: &Path, with_selector: bool) {
    for f in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
        "maxFailedIndexes",
    ] {
        if let Some(v) = int(errs, spec, f, sp) {
            nonnegative(errs, v, &sp.child(f));
        }
    }
    if present(spec, "maxFailedIndexes").is_some()
        && present(spec, "backoffLimitPerIndex").is_none()
    {
        errs.push(FieldError::required(
            sp.child("backoffLimitPerIndex"),
            "when maxFailedIndexes is specified",
        ));
    }
    let mode = opt_str(errs, spec, "completionMode", sp);
    if let Some(mode) = mode {
        if !matches!(mode, "NonIndexed" | "Indexed") {
            errs.push(FieldError::not_supported(
                sp.child("completionMode"),
                mode,
                &["NonIndexed", "Indexed"],
            ));
        }
        if mode == "Indexed" {
            if present(spec, "completions").is_none() {
                errs.push(FieldError::required(
                    sp.child("completions"),
                    "when completion mode is Indexed",
                ));
            }
            if let Some(p) = spec.get("parallelism").and_then(Value::as_i64)
                && p > 100_000
            {
                errs.push(FieldError::invalid(
                    sp.child("parallelism"),
                    p,
                    "must be less than or equal to 100000 when completion mode is Indexed",
                ));
            }
        }
    }
    if mode.is_none_or(|m| m == "NonIndexed") {
        for f in ["backoffLimitPerIndex", "maxFailedIndexes"] {
            if let Some(v) = spec.get(f).and_then(Value::as_i64) {
                errs.push(FieldError::invalid(
                    sp.child(f),
                    v,
                    "requires indexed completion mode",
                ));
            }
        }
    }
    let has_pfp = present(spec, "podFailurePolicy").is_some();
    if let Some(pfp) = obj(errs, spec, "podFailurePolicy", sp) {
        let pp = sp.child("podFailurePolicy");
        for (rp, rule) in objs(errs, pfp, "rules", &pp) {
            let action = string(errs, rule, "action", &rp);
            let actions = ["Count", "FailIndex", "FailJob", "Ignore"];
            if action.is_empty() {
                errs.push(FieldError::required(
                    rp.child("action"),
                    format!(
                        "valid values: [{}]",
                        actions.map(|a| format!("\"{a}\"")).join(" ")
                    ),
                ));
            } else if action == "FailIndex" {
                if present(spec, "backoffLimitPerIndex").is_none() {
                    errs.push(FieldError::invalid(
                        rp.child("action"),
                        action,
                        "requires the backoffLimitPerIndex to be set",
                    ));
                }
            } else if !actions.contains(&action) {
                errs.push(FieldError::not_supported(
                    rp.child("action"),
                    action,
                    &actions,
                ));
            }
            let has_codes = present(rule, "onExitCodes").is_some();
            let conds = objs(errs, rule, "onPodConditions", &rp);
            for (cp, c) in &conds {
                let status = string(errs, c, "status", cp);
                if status.is_empty() {
                    errs.push(FieldError::required(
                        cp.child("status"),
                        "valid values: [\"False\" \"True\" \"Unknown\"]",
                    ));
                } else if !matches!(status, "True" | "False" | "Unknown") {
                    errs.push(FieldError::not_supported(
                        cp.child("status"),
                        status,
                        &["False", "True", "Unknown"],
                    ));
                }
            }
            if let Some(codes) = obj(errs, rule, "onExitCodes", &rp) {
                let cp = rp.child("onExitCodes");
                let op = string(errs, codes, "operator", &cp);
                if op.is_empty() {
                    errs.push(FieldError::required(
                        cp.child("operator"),
                        "valid values: [\"In\" \"NotIn\"]",
                    ));
                } else if !matches!(op, "In" | "NotIn") {
                    errs.push(FieldError::not_supported(
                        cp.child("operator"),
                        op,
                        &["In", "NotIn"],
                    ));
                }
                if codes
                    .get("values")
                    .and_then(Value::as_array)
                    .is_none_or(Vec::is_empty)
                {
                    errs.push(invalid_go(
                        &cp.child("values"),
                        "[]int32(nil)",
                        "at least one value is required",
                    ));
                }
            }
            if has_codes && !conds.is_empty() {
                errs.push(FieldError {
                    kind: crate::error::FieldErrorType::Invalid,
                    field: rp.to_string(),
                    bad_value: None,
                    detail: "specifying both OnExitCodes and OnPodConditions is not supported"
                        .into(),
                });
            }
            if !has_codes && conds.is_empty() {
                errs.push(FieldError {
                    kind: crate::error::FieldErrorType::Invalid,
                    field: rp.to_string(),
                    bad_value: None,
                    detail: "specifying one of OnExitCodes and OnPodConditions is required".into(),
                });
            }
        }
    }
    if let Some(prp) = opt_str(errs, spec, "podReplacementPolicy", sp) {
        if has_pfp {
            if prp != "Failed" {
                errs.push(FieldError::not_supported(
                    sp.child("podReplacementPolicy"),
                    prp,
                    &["Failed"],
                ));
            }
        } else if !matches!(prp, "Failed" | "TerminatingOrFailed") {
            errs.push(FieldError::not_supported(
                sp.child("podReplacementPolicy"),
                prp,
                &["Failed", "TerminatingOrFailed"],
            ));
        }
    }
    let tp = sp.child("template");
    let empty = Map::new();
    let t = obj(errs, spec, "template", sp).unwrap_or(&empty);
    validate_pod_template_spec(errs, t, &tp);
    let rp = t
        .get("spec")
        .and_then(|s| s.get("restartPolicy"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let rpp = tp.child("spec").child("restartPolicy");
    if rp == "Always" || rp.is_empty() {
        errs.push(FieldError::required(
            rpp,
            "valid values: \"OnFailure\", \"Never\"",
        ));
    } else if !matches!(rp, "OnFailure" | "Never") {
        errs.push(FieldError::not_supported(rpp, rp, &["OnFailure", "Never"]));
    } else if has_pfp && rp != "Never" {
        errs.push(FieldError::invalid(
            rpp,
            rp,
            "only \"Never\" is supported when podFailurePolicy is specified",
        ));
    }
    if with_selector {
        let sel = obj(errs, spec, "selector", sp);
        match sel {
            None => errs.push(FieldError::required(sp.child("selector"), "")),
            Some(s) => validate_label_selector(errs, s, &sp.child("selector")),
        }
        let labels_v = t
            .get("metadata")
            .and_then(|md| md.get("labels"))
            .and_then(Value::as_object);
        let labels: Vec<(&str, &str)> = labels_v
            .map(|l| {
                l.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v)))
                    .collect()
            })
            .unwrap_or_default();
        if !selector_matches(sel, &labels) {
            let rendered = go_string_map(labels_v.map(|_| labels.as_slice()));
            errs.push(invalid_go(
                &tp.child("metadata").child("labels"),
                &rendered,
                "`selector` does not match template `labels`",
            ));
        }
    }
}

/// `ValidateJobSpecUpdate`: selector, template (unless suspended), completionMode,
/// podFailurePolicy and a few more are immutable.
fn job_update(errs: &mut Errs, new: &Map<String, Value>, old: &Map<String, Value>, sp: &Path) {
    if new.get("selector") != old.get("selector") {
        let rendered = match new.get("selector").and_then(Value::as_object) {
            Some(s) => go_label_selector(s),
            None => "(*v1.LabelSelector)(nil)".into(),
        };
        errs.push(invalid_go(
            &sp.child("selector"),
            &rendered,
            FIELD_IMMUTABLE,
        ));
    }
    let suspended_before = old.get("suspend").and_then(Value::as_bool) == Some(true);
    let never_started = old.get("startTime").is_none();
    if new.get("template") != old.get("template") && !(suspended_before && never_started) {
        errs.push(FieldError {
            kind: crate::error::FieldErrorType::Invalid,
            field: sp.child("template").to_string(),
            bad_value: None,
            detail: format!("core.PodTemplateSpec{{...}}: {FIELD_IMMUTABLE}"),
        });
    }
    for f in [
        "completionMode",
        "podFailurePolicy",
        "backoffLimitPerIndex",
        "managedBy",
    ] {
        immutable(errs, new.get(f), old.get(f), &sp.child(f));
    }
    let (nc, oc) = (new.get("completions"), old.get("completions"));
    if nc != oc {
        let indexed = new.get("completionMode").and_then(Value::as_str) == Some("Indexed");
        let same_as_parallelism = nc.is_some() && nc == new.get("parallelism");
        if !(indexed && same_as_parallelism) {
            immutable(errs, nc, oc, &sp.child("completions"));
        }
    }
}

fn cron_job(errs: &mut Errs, m: &Map<String, Value>, spec: &Map<String, Value>, sp: &Path) {
    let name = m
        .get("metadata")
        .and_then(|md| md.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.len() > 52 {
        errs.push(FieldError::invalid(
            Path::new("metadata").child("name"),
            name,
            "must be no more than 52 characters",
        ));
    }
    let schedule = string(errs, spec, "schedule", sp);
    if schedule.is_empty() {
        errs.push(FieldError::required(sp.child("schedule"), ""));
    } else if let Err(e) = check_cron(schedule) {
        errs.push(FieldError::invalid(sp.child("schedule"), schedule, e));
    } else if schedule.contains("TZ") {
        errs.push(FieldError::invalid(
            sp.child("schedule"),
            schedule,
            "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
        ));
    }
    let cp = string(errs, spec, "concurrencyPolicy", sp);
    match cp {
        "Allow" | "Forbid" | "Replace" => {}
        "" => errs.push(FieldError::required(sp.child("concurrencyPolicy"), "")),
        other => errs.push(FieldError::not_supported(
            sp.child("concurrencyPolicy"),
            other,
            &["Allow", "Forbid", "Replace"],
        )),
    }
    for f in [
        "startingDeadlineSeconds",
        "successfulJobsHistoryLimit",
        "failedJobsHistoryLimit",
    ] {
        if let Some(v) = int(errs, spec, f, sp) {
            nonnegative(errs, v, &sp.child(f));
        }
    }
    let jp = sp.child("jobTemplate");
    let empty = Map::new();
    let jt = obj(errs, spec, "jobTemplate", sp).unwrap_or(&empty);
    let js = obj(errs, jt, "spec", &jp).unwrap_or(&empty);
    job_spec(errs, js, &jp.child("spec"), false);
    let jsp = jp.child("spec");
    if let Some(sel) = js.get("selector").and_then(Value::as_object) {
        errs.push(invalid_go(
            &jsp.child("selector"),
            &go_label_selector(sel),
            "`selector` will be auto-generated",
        ));
    }
    if js.get("manualSelector").and_then(Value::as_bool) == Some(true) {
        errs.push(FieldError {
            kind: crate::error::FieldErrorType::NotSupported,
            field: jsp.child("manualSelector").to_string(),
            bad_value: None,
            detail: "true: supported values: \"nil\", \"false\"".into(),
        });
    }
}

/// `validateGeneratedSelector`: unless `manualSelector` is true, the generated labels and
/// selector must be in place (and match the Job's uid and name).
fn generated_selector(errs: &mut Errs, m: &Map<String, Value>, spec: &Map<String, Value>) {
    if spec.get("manualSelector").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let tmp = Path::new("spec").child("template").child("metadata");
    let labels = spec
        .get("template")
        .and_then(|t| t.get("metadata"))
        .and_then(|md| md.get("labels"))
        .and_then(Value::as_object);
    let Some(labels) = labels else {
        errs.push(invalid_go(
            &tmp.child("labels"),
            "map[string]string(nil)",
            "must not be nil",
        ));
        return;
    };
    let Some(sel) = spec.get("selector").and_then(Value::as_object) else {
        return;
    };
    let meta = m.get("metadata");
    let uid = meta
        .and_then(|md| md.get("uid"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let name = meta
        .and_then(|md| md.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if uid.is_empty() {
        errs.push(FieldError::required(Path::new("metadata").child("uid"), ""));
    }
    let pairs: Vec<(&str, &str)> = labels
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v)))
        .collect();
    for (key, want) in [
        ("controller-uid", uid),
        ("job-name", name),
        ("batch.kubernetes.io/controller-uid", uid),
        ("batch.kubernetes.io/job-name", name),
    ] {
        let p = tmp.child("labels").key(key);
        match labels.get(key).and_then(Value::as_str) {
            None => errs.push(FieldError::required(p, want)),
            Some(v) if v != want => errs.push(invalid_go(
                &p,
                &go_string_map(Some(&pairs)),
                &format!("must be '{want}'"),
            )),
            Some(_) => {}
        }
    }
    if !selector_matches(Some(sel), &[("batch.kubernetes.io/controller-uid", uid)]) {
        errs.push(invalid_go(
            &Path::new("spec").child("selector"),
            &go_label_selector(sel),
            "`selector` not auto-generated",
        ));
    }
}

/// A five-field cron expression (or a `@` descriptor), with robfig/cron's error texts.
fn check_cron(s: &str) -> Result<(), String> {
    let s = s.trim();
    let body = match s.strip_prefix("TZ=").or_else(|| s.strip_prefix("CRON_TZ=")) {
        Some(rest) => match rest.split_once(' ') {
            Some((_, b)) => b.trim(),
            None => {
                return Err(format!(
                    "provided bad location {rest}: unknown time zone {rest}"
                ));
            }
        },
        None => s,
    };
    if body.starts_with('@') {
        return match body {
            "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight"
            | "@hourly" => Ok(()),
            b if b.starts_with("@every ") => Ok(()),
            b => Err(format!("unrecognized descriptor: {b}")),
        };
    }
    let fields: Vec<&str> = body.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    const MONTHS: &[&str] = &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let bounds: [(i64, i64, &[&str], i64); 5] = [
        (0, 59, &[], 0),
        (0, 23, &[], 0),
        (1, 31, &[], 0),
        (1, 12, MONTHS, 1),
        (0, 6, DAYS, 0),
    ];
    for (field, (lo, hi, names, offset)) in fields.iter().zip(bounds) {
        for expr in field.split(',') {
            let parse = |v: &str| -> Result<i64, String> {
                if let Some(pos) = names.iter().position(|n| n.eq_ignore_ascii_case(v)) {
                    return Ok(pos as i64 + offset);
                }
                let n: i64 = v.parse().map_err(|_| {
                    format!(
                        "failed to parse int from {v}: strconv.Atoi: parsing \"{v}\": invalid syntax"
                    )
                })?;
                if n < 0 {
                    return Err(format!("negative number ({n}) not allowed: {v}"));
                }
                Ok(n)
            };
            let (range, step) = match expr.split_once('/') {
                Some((r, st)) => (r, Some(parse(st)?)),
                None => (expr, None),
            };
            let (start, end) = if range == "*" || range == "?" {
                (lo, hi)
            } else {
                match range.split_once('-') {
                    Some((a, b)) => (parse(a)?, parse(b)?),
                    None => {
                        let a = parse(range)?;
                        (a, if step.is_some() { hi } else { a })
                    }
                }
            };
            if start < lo {
                return Err(format!(
                    "beginning of range ({start}) below minimum ({lo}): {expr}"
                ));
            }
            if end > hi {
                return Err(format!("end of range ({end}) above maximum ({hi}): {expr}"));
            }
            if start > end {
                return Err(format!(
                    "beginning of range ({start}) beyond end of range ({end}): {expr}"
                ));
            }
            if step == Some(0) {
                return Err(format!("step of range should be a positive number: {expr}"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_cron;

    #[test]
    fn cron_schedules_are_checked_like_robfig_cron() {
        for ok in [
            "*/5 * * * *",
            "0 0 * * 0",
            "@hourly",
            "0 9-17/2 * jan-mar mon-fri",
            "CRON_TZ=UTC 0 * * * *",
        ] {
            assert_eq!(check_cron(ok), Ok(()), "{ok}");
        }
        let table = [
            ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
            ("61 * * * *", "end of range (61) above maximum (59): 61"),
            ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
            (
                "5-1 * * * *",
                "beginning of range (5) beyond end of range (1): 5-1",
            ),
            (
                "*/0 * * * *",
                "step of range should be a positive number: */0",
            ),
            (
                "x * * * *",
                "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax",
            ),
            ("@sometimes", "unrecognized descriptor: @sometimes"),
        ];
        for (input, want) in table {
            assert_eq!(check_cron(input), Err(want.to_string()), "{input}");
        }
    }
}
