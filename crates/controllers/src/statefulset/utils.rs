//! StatefulSet pod identity and storage (upstream `stateful_set_utils.go`): pods named
//! `<set>-<ordinal>` with the pod-name and pod-index labels, hostname and subdomain, one
//! PersistentVolumeClaim `<template>-<set>-<ordinal>` per claim template, and the revision label.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::ResourceExt;

use crate::clock::Clock;
use crate::controller_utils::{
    is_pod_available, is_pod_ready, new_controller_ref, phase, pod_from_template,
};
use crate::history::CONTROLLER_REVISION_HASH;

pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// `getParentNameAndOrdinal`: `web-3` is ordinal 3 of `web`.
pub fn parent_and_ordinal(name: &str) -> Option<(&str, i32)> {
    let (parent, ord) = name.rsplit_once('-')?;
    if ord.is_empty() || !ord.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((parent, ord.parse().ok()?))
}

pub fn ordinal(p: &Pod) -> i32 {
    parent_and_ordinal(p.metadata.name.as_deref().unwrap_or(""))
        .map(|(_, o)| o)
        .unwrap_or(-1)
}

pub fn is_member_of(set: &StatefulSet, p: &Pod) -> bool {
    parent_and_ordinal(p.metadata.name.as_deref().unwrap_or(""))
        .is_some_and(|(parent, _)| Some(parent) == set.metadata.name.as_deref())
}

pub fn replicas(set: &StatefulSet) -> i32 {
    set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub fn start_ordinal(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.ordinals.as_ref())
        .and_then(|o| o.start)
        .unwrap_or(0)
}

pub fn end_ordinal(set: &StatefulSet) -> i32 {
    start_ordinal(set) + replicas(set) - 1
}

pub fn in_ordinal_range(p: &Pod, set: &StatefulSet) -> bool {
    let o = ordinal(p);
    o >= start_ordinal(set) && o <= end_ordinal(set)
}

pub fn pod_name(set: &StatefulSet, ordinal: i32) -> String {
    format!("{}-{ordinal}", set.name_any())
}

pub fn min_ready_seconds(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

pub fn allows_burst(set: &StatefulSet) -> bool {
    set.spec
        .as_ref()
        .and_then(|s| s.pod_management_policy.as_deref())
        == Some("Parallel")
}

pub fn strategy(set: &StatefulSet) -> &str {
    set.spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.type_.as_deref())
        .unwrap_or("RollingUpdate")
}

/// The rolling update partition, if the strategy has a rollingUpdate block.
pub fn partition(set: &StatefulSet) -> Option<i32> {
    let u = set.spec.as_ref()?.update_strategy.as_ref()?;
    u.rolling_update.as_ref().map(|r| r.partition.unwrap_or(0))
}

pub fn is_created(p: &Pod) -> bool {
    !phase(p).is_empty()
}

pub fn is_terminating(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_some()
}

pub fn is_running_and_ready(p: &Pod) -> bool {
    phase(p) == "Running" && is_pod_ready(p)
}

pub fn is_running_and_available(p: &Pod, min_ready: i32, clock: &Clock) -> bool {
    phase(p) == "Running" && is_pod_available(p, min_ready, clock.now())
}

pub fn is_healthy(p: &Pod) -> bool {
    is_running_and_ready(p) && !is_terminating(p)
}

pub fn pod_revision(p: &Pod) -> &str {
    p.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(CONTROLLER_REVISION_HASH))
        .map(String::as_str)
        .unwrap_or("")
}

/// `getPersistentVolumeClaims`: the claims of one pod, by template name.
pub fn claims_for(set: &StatefulSet, ordinal: i32) -> Vec<(String, PersistentVolumeClaim)> {
    let templates = set
        .spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.clone())
        .unwrap_or_default();
    let sel_labels = set
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default();
    templates
        .into_iter()
        .map(|mut t| {
            let tname = t.metadata.name.clone().unwrap_or_default();
            t.metadata.name = Some(format!("{tname}-{}-{ordinal}", set.name_any()));
            t.metadata.namespace = set.namespace();
            let labels = t.metadata.labels.get_or_insert_with(BTreeMap::new);
            for (k, v) in &sel_labels {
                labels.insert(k.clone(), v.clone());
            }
            t.status = None;
            (tname, t)
        })
        .collect()
}

/// `updateStorage`: a PVC volume per claim template, other volumes kept.
pub fn update_storage(set: &StatefulSet, pod: &mut Pod) {
    let claims = claims_for(set, ordinal(pod));
    let spec = pod.spec.get_or_insert_with(Default::default);
    let current = spec.volumes.take().unwrap_or_default();
    let mut volumes: Vec<Volume> = claims
        .iter()
        .map(|(name, c)| Volume {
            name: name.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: c.metadata.name.clone().unwrap_or_default(),
                read_only: None,
            }),
            ..Default::default()
        })
        .collect();
    volumes.extend(
        current
            .into_iter()
            .filter(|v| !claims.iter().any(|(n, _)| *n == v.name)),
    );
    spec.volumes = (!volumes.is_empty()).then_some(volumes);
}

pub fn storage_matches(set: &StatefulSet, pod: &Pod) -> bool {
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or(&[]);
    claims_for(set, ordinal(pod)).iter().all(|(name, c)| {
        volumes.iter().any(|v| {
            v.name == *name
                && v.persistent_volume_claim.as_ref().map(|p| &p.claim_name)
                    == c.metadata.name.as_ref()
        })
    })
}

/// `updateIdentity`: name, namespace and the identity labels.
pub fn update_identity(set: &StatefulSet, pod: &mut Pod) {
    let ord = ordinal(pod);
    let name = pod_name(set, ord);
    pod.metadata.name = Some(name.clone());
    pod.metadata.namespace = set.namespace();
    let labels = pod.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(POD_NAME_LABEL.into(), name);
    labels.insert(POD_INDEX_LABEL.into(), ord.to_string());
}

pub fn identity_matches(set: &StatefulSet, pod: &Pod) -> bool {
    let Some((parent, ord)) = parent_and_ordinal(pod.metadata.name.as_deref().unwrap_or("")) else {
        return false;
    };
    let labels = pod.metadata.labels.as_ref();
    Some(parent) == set.metadata.name.as_deref()
        && pod.metadata.name.as_deref() == Some(pod_name(set, ord).as_str())
        && pod.metadata.namespace == set.namespace()
        && labels.and_then(|l| l.get(POD_NAME_LABEL)) == pod.metadata.name.as_ref()
        && labels.and_then(|l| l.get(POD_INDEX_LABEL)) == Some(&ord.to_string())
}

/// `newStatefulSetPod`.
pub fn new_pod(set: &StatefulSet, ordinal: i32) -> Pod {
    let template = set
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let mut pod = pod_from_template(&template, &set.name_any(), Some(new_controller_ref(set)));
    pod.metadata.generate_name = None;
    pod.metadata.name = Some(pod_name(set, ordinal));
    update_identity(set, &mut pod);
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.hostname = pod.metadata.name.clone();
    spec.subdomain = set
        .spec
        .as_ref()
        .and_then(|s| s.service_name.clone())
        .filter(|s| !s.is_empty());
    update_storage(set, &mut pod);
    pod
}

pub fn set_pod_revision(pod: &mut Pod, revision: &str) {
    pod.metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(CONTROLLER_REVISION_HASH.into(), revision.into());
}

/// `ApplyRevision`: the set with the revision's template.
pub fn apply_revision(set: &StatefulSet, rev: &ControllerRevision) -> StatefulSet {
    let mut s = set.clone();
    if let Some(t) = rev
        .data
        .as_ref()
        .and_then(|d| d.0.pointer("/spec/template"))
    {
        let mut t = t.clone();
        if let Some(o) = t.as_object_mut() {
            o.remove("$patch");
        }
        if let Ok(t) = serde_json::from_value::<PodTemplateSpec>(t)
            && let Some(spec) = s.spec.as_mut()
        {
            spec.template = t;
        }
    }
    s
}

/// `newVersionedStatefulSetPod`: ordinals below the partition stay at the current revision.
pub fn new_versioned_pod(
    current_set: &StatefulSet,
    update_set: &StatefulSet,
    current_revision: &str,
    update_revision: &str,
    ordinal: i32,
) -> Pod {
    let current_replicas = current_set
        .status
        .as_ref()
        .and_then(|s| s.current_replicas)
        .unwrap_or(0);
    let stay = strategy(current_set) == "RollingUpdate"
        && match partition(current_set) {
            None => ordinal < start_ordinal(current_set) + current_replicas,
            Some(p) => ordinal < start_ordinal(current_set) + p,
        };
    let (set, rev) = if stay {
        (current_set, current_revision)
    } else {
        (update_set, update_revision)
    };
    let mut pod = new_pod(set, ordinal);
    set_pod_revision(&mut pod, rev);
    pod
}

/// The PVC retention policy: (whenDeleted, whenScaled), each Retain or Delete.
pub fn retention(set: &StatefulSet) -> (String, String) {
    let p = set
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_claim_retention_policy.as_ref());
    (
        p.and_then(|p| p.when_deleted.clone())
            .unwrap_or_else(|| "Retain".into()),
        p.and_then(|p| p.when_scaled.clone())
            .unwrap_or_else(|| "Retain".into()),
    )
}

pub fn has_owner_ref(c: &PersistentVolumeClaim, uid: Option<&String>) -> bool {
    uid.is_some_and(|u| {
        c.metadata
            .owner_references
            .iter()
            .flatten()
            .any(|r| &r.uid == u)
    })
}

/// `claimOwnerMatchesSetAndPod`.
pub fn claim_owner_matches(c: &PersistentVolumeClaim, set: &StatefulSet, pod: &Pod) -> bool {
    let (deleted, scaled) = retention(set);
    let set_ref = has_owner_ref(c, set.metadata.uid.as_ref());
    let pod_ref = has_owner_ref(c, pod.metadata.uid.as_ref());
    let scaled_down = !in_ordinal_range(pod, set);
    match (scaled.as_str(), deleted.as_str()) {
        ("Retain", "Delete") => set_ref && !pod_ref,
        ("Delete", "Retain") => !set_ref && scaled_down == pod_ref,
        ("Delete", "Delete") => scaled_down != set_ref && scaled_down == pod_ref,
        _ => !set_ref && !pod_ref,
    }
}

fn owner_ref(api_version: &str, kind: &str, name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: api_version.into(),
        kind: kind.into(),
        name: name.into(),
        uid: uid.into(),
        controller: None,
        block_owner_deletion: None,
    }
}

/// `updateClaimOwnerRefForSetAndPod`: returns whether the claim changed.
pub fn update_claim_owner_refs(
    c: &mut PersistentVolumeClaim,
    set: &StatefulSet,
    pod: &Pod,
) -> bool {
    let (deleted, scaled) = retention(set);
    let scaled_down = !in_ordinal_range(pod, set);
    let set_uid = set.metadata.uid.clone().unwrap_or_default();
    let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
    let (want_set, want_pod) = match (scaled.as_str(), deleted.as_str()) {
        ("Retain", "Delete") => (true, false),
        ("Delete", "Retain") => (false, scaled_down),
        ("Delete", "Delete") => (!scaled_down, scaled_down),
        _ => (false, false),
    };
    let refs = c.metadata.owner_references.get_or_insert_with(Vec::new);
    let mut changed = false;
    for (want, uid, r) in [
        (
            want_set,
            &set_uid,
            owner_ref("apps/v1", "StatefulSet", &set.name_any(), &set_uid),
        ),
        (
            want_pod,
            &pod_uid,
            owner_ref("v1", "Pod", &pod.name_any(), &pod_uid),
        ),
    ] {
        if uid.is_empty() {
            continue;
        }
        let has = refs.iter().any(|x| &x.uid == uid);
        if want && !has {
            refs.push(r);
            changed = true;
        } else if !want && has {
            refs.retain(|x| &x.uid != uid);
            changed = true;
        }
    }
    if refs.is_empty() {
        c.metadata.owner_references = None;
    }
    changed
}
