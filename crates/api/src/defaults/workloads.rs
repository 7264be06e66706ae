//! `apps/v1` and `batch/v1` defaults, and the Job selector the Job strategy generates.

use serde_json::{Value, json};

use super::core::{pod_template_spec, pvc};
use super::encoding;
use super::{
    default_nil, default_str, each_obj, embedded_meta, ensure_obj, is_empty, obj_mut, status_zeros,
    str_of,
};

fn template(obj: &mut Value) {
    if let Some(t) = obj
        .as_object_mut()
        .and_then(|m| obj_mut(m, "spec"))
        .and_then(|s| obj_mut(s, "template"))
    {
        pod_template_spec(t);
    }
}

pub(super) fn deployment(obj: &mut Value) {
    let Some(spec) = obj.as_object_mut().and_then(|m| ensure_obj(m, "spec")) else {
        return;
    };
    encoding::workload_spec(spec);
    default_nil(spec, "replicas", json!(1));
    if let Some(strategy) = ensure_obj(spec, "strategy") {
        default_str(strategy, "type", "RollingUpdate");
        if str_of(strategy, "type") == "RollingUpdate"
            && let Some(ru) = ensure_obj(strategy, "rollingUpdate")
        {
            default_nil(ru, "maxUnavailable", json!("25%"));
            default_nil(ru, "maxSurge", json!("25%"));
        }
    }
    default_nil(spec, "revisionHistoryLimit", json!(10));
    default_nil(spec, "progressDeadlineSeconds", json!(600));
    template(obj);
    status_zeros(obj, &[]);
}

pub(super) fn replica_set(obj: &mut Value) {
    let Some(spec) = obj.as_object_mut().and_then(|m| ensure_obj(m, "spec")) else {
        return;
    };
    encoding::workload_spec(spec);
    default_nil(spec, "replicas", json!(1));
    template(obj);
    status_zeros(obj, &["replicas"]);
}

pub(super) fn daemon_set(obj: &mut Value) {
    let Some(spec) = obj.as_object_mut().and_then(|m| ensure_obj(m, "spec")) else {
        return;
    };
    encoding::workload_spec(spec);
    if let Some(us) = ensure_obj(spec, "updateStrategy") {
        default_str(us, "type", "RollingUpdate");
        if str_of(us, "type") == "RollingUpdate"
            && let Some(ru) = ensure_obj(us, "rollingUpdate")
        {
            default_nil(ru, "maxUnavailable", json!(1));
            default_nil(ru, "maxSurge", json!(0));
        }
    }
    default_nil(spec, "revisionHistoryLimit", json!(10));
    template(obj);
    status_zeros(
        obj,
        &[
            "currentNumberScheduled",
            "desiredNumberScheduled",
            "numberMisscheduled",
            "numberReady",
        ],
    );
}

pub(super) fn stateful_set(obj: &mut Value) {
    let Some(spec) = obj.as_object_mut().and_then(|m| ensure_obj(m, "spec")) else {
        return;
    };
    encoding::workload_spec(spec);
    default_str(spec, "podManagementPolicy", "OrderedReady");
    if let Some(us) = ensure_obj(spec, "updateStrategy") {
        if str_of(us, "type").is_empty() {
            us.insert("type".into(), json!("RollingUpdate"));
            default_nil(us, "rollingUpdate", json!({}));
        }
        if str_of(us, "type") == "RollingUpdate"
            && let Some(ru) = obj_mut(us, "rollingUpdate")
        {
            default_nil(ru, "partition", json!(0));
        }
    }
    if let Some(p) = ensure_obj(spec, "persistentVolumeClaimRetentionPolicy") {
        default_str(p, "whenDeleted", "Retain");
        default_str(p, "whenScaled", "Retain");
    }
    default_nil(spec, "replicas", json!(1));
    default_nil(spec, "revisionHistoryLimit", json!(10));
    for t in each_obj(spec, "volumeClaimTemplates") {
        // The apps/v1 conversion stamps TypeMeta on every claim template.
        t.insert("apiVersion".into(), json!("v1"));
        t.insert("kind".into(), json!("PersistentVolumeClaim"));
        embedded_meta(t);
        pvc(t);
    }
    template(obj);
    status_zeros(obj, &["replicas", "availableReplicas"]);
}

pub(super) fn job(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else { return };
    let labels = m
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|md| md.get("labels"))
        .filter(|l| l.is_object())
        .cloned();
    if let Some(spec) = ensure_obj(m, "spec") {
        job_spec(spec);
    }
    if let Some(l) = labels
        && let Some(meta) = ensure_obj(m, "metadata")
        && is_empty(meta, "labels")
    {
        meta.insert("labels".into(), l);
    }
    template(obj);
    status_zeros(obj, &[]);
}

/// `SetDefaults_Job` on the spec (CronJob job templates do not get it).
fn job_spec(spec: &mut serde_json::Map<String, Value>) {
    let unset =
        |k: &str, s: &serde_json::Map<String, Value>| matches!(s.get(k), None | Some(Value::Null));
    if unset("completions", spec) && unset("parallelism", spec) {
        spec.insert("completions".into(), json!(1));
        spec.insert("parallelism".into(), json!(1));
    }
    default_nil(spec, "parallelism", json!(1));
    if unset("backoffLimit", spec) {
        let v = if unset("backoffLimitPerIndex", spec) {
            6
        } else {
            i64::from(i32::MAX)
        };
        spec.insert("backoffLimit".into(), json!(v));
    }
    default_nil(spec, "completionMode", json!("NonIndexed"));
    default_nil(spec, "suspend", json!(false));
    let has_failure_policy = !unset("podFailurePolicy", spec);
    if let Some(pfp) = obj_mut(spec, "podFailurePolicy") {
        for rule in each_obj(pfp, "rules") {
            for pat in each_obj(rule, "onPodConditions") {
                default_str(pat, "status", "True");
            }
        }
    }
    let policy = if has_failure_policy {
        "Failed"
    } else {
        "TerminatingOrFailed"
    };
    default_nil(spec, "podReplacementPolicy", json!(policy));
}

pub(super) fn cron_job(obj: &mut Value) {
    let Some(spec) = obj.as_object_mut().and_then(|m| ensure_obj(m, "spec")) else {
        return;
    };
    default_str(spec, "concurrencyPolicy", "Allow");
    default_nil(spec, "suspend", json!(false));
    default_nil(spec, "successfulJobsHistoryLimit", json!(3));
    default_nil(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(jt) = ensure_obj(spec, "jobTemplate") {
        embedded_meta(jt);
        if let Some(js) = ensure_obj(jt, "spec")
            && let Some(t) = ensure_obj(js, "template")
        {
            pod_template_spec(t);
        }
    }
    status_zeros(obj, &[]);
}

/// The Job strategy's `generateSelector`, for Jobs whose `spec.manualSelector` is not true:
/// call it on create, after the uid is assigned and [`super::apply`] has run.
///
/// Adds `batch.kubernetes.io/controller-uid`, `controller-uid`, `batch.kubernetes.io/job-name`
/// and `job-name` to the pod template's labels (keeping any the user set, which validation then
/// checks), selects on `batch.kubernetes.io/controller-uid`, and, as upstream's re-defaulting on
/// read does, copies the template labels to `metadata.labels` when those are empty.
pub fn generate_job_selector(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else { return };
    let meta = m.get("metadata");
    let name = meta
        .and_then(|md| md.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let uid = meta
        .and_then(|md| md.get("uid"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let Some(spec) = ensure_obj(m, "spec") else {
        return;
    };
    if spec.get("manualSelector").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let Some(tmpl) = ensure_obj(spec, "template") else {
        return;
    };
    let Some(tmeta) = ensure_obj(tmpl, "metadata") else {
        return;
    };
    let Some(labels) = ensure_obj(tmeta, "labels") else {
        return;
    };
    for key in ["job-name", "batch.kubernetes.io/job-name"] {
        labels.entry(key).or_insert_with(|| json!(name));
    }
    for key in ["controller-uid", "batch.kubernetes.io/controller-uid"] {
        labels.entry(key).or_insert_with(|| json!(uid));
    }
    let labels = labels.clone();
    if let Some(sel) = ensure_obj(spec, "selector")
        && let Some(ml) = ensure_obj(sel, "matchLabels")
    {
        ml.entry("batch.kubernetes.io/controller-uid")
            .or_insert_with(|| json!(uid));
    }
    if let Some(meta) = ensure_obj(m, "metadata")
        && is_empty(meta, "labels")
    {
        meta.insert("labels".into(), Value::Object(labels));
    }
}
